# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: tags,-all
#     formats: ipynb,py:percent
#     notebook_metadata_filter: kernelspec,-jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 06 — The reproduction report
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/jepa-lite/jepa_lite/blob/main/notebooks/06_reproduction.ipynb)
#
# **One idea:** a number is only as good as the facts beside it. This chapter puts the
# paper's tables (`data/paper_results.csv`, every row with its source) next to our runs,
# with the commit, profile, epochs, device and wall time that produced them. Runs of the
# `smoke` and `demo` profiles use generated data and small encoders: they are marked *not
# comparable* — they show that the pipeline works, not what CNN-JEPA achieves.
#
# Without an hour to spare: [docs/results](../docs/results/README.md) holds every number and
# figure of complete course runs, a page per profile: the `demo` profile on a CPU, and the
# `gpu` profile (busy scenes at 224 px on the paper's 7x7 grid, where one H100 run of its
# CNN-JEPA recipe beat random init: docs/benchmarks.md, "The gpu profile") once
# a GPU run has made its page (commit, device, wall time; `make results PROFILE=gpu` makes
# it).
#
# Code: `jepa_lite/course/report.py`.

# %% tags=["parameters"]
PROFILE = "smoke"  # smoke | demo | gpu | full
DATA_ROOT = None  # ImageFolder root (train/, val/); None: smoke/demo generate their data
OUT_DIR = None  # None: outputs/ of the checkout
DEVICE = "auto"  # auto | cpu | cuda
SEED = 0
INTERACTIVE = True  # False under papermill: static figures only
RUN_DIR = None  # chapter 04's run folder; None: inside OUT_DIR (04_pretraining/run)

# %%
import sys

if "google.colab" in sys.modules:  # Colab: install the package once; torch is already there
    import importlib
    import subprocess

    subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                    "jepa-lite @ git+https://github.com/jepa-lite/jepa_lite@main"], check=True)
    importlib.invalidate_caches()

# %%
import json

import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from jepa_lite.course import report, viz
from jepa_lite.course.chapter import start_chapter

run = start_chapter("06_reproduction", PROFILE, DATA_ROOT, OUT_DIR, DEVICE, SEED, RUN_DIR)
cfg = run.config
paper = report.paper_results()

# %% [markdown]
# ## 1. Our run next to the paper
#
# Our numbers come from chapter 04's run (its folder, `RUN_DIR`) and chapter 05's probes
# in the same output folder. The paper's rows beside them are Table I's for the data set
# the run used: ImageNet-1k for a 1000-class run, else ImageNet-100 (the reproduction's
# target, also the reference of a run on generated data). The device is the one the run
# trained on, read from its own records (`metrics.jsonl`), not the one this chapter runs on.
# In the figure, dotted lines are chance in each panel (1/100 on ImageNet-100) and dashed
# lines the same network at random initialisation, probed as ours (chapter 05); the paper
# gives no random-init numbers, so its panel has none.

# %%
run_dir = cfg.run_dir()
probe = run.probed()  # chapter 05's results; made here first if chapters 04-05 have not run
probe_json = cfg.out_dir / "05_probes" / "pretrained" / "probe.json"
facts = report.run_facts(run_dir, probe_json, PROFILE, str(cfg.device))
reference = report.paper_dataset(facts["num_classes"])
paper_cnn_jepa = report.paper_cnn_jepa(reference)
print(f"data: {facts['dataset']} ({facts['num_classes']} classes), read against Table I's "
      f"{reference} rows; trained on {facts['device']}, probed on {facts['probe_device']}")
rows = report.comparison_rows(probe, facts)
display(Markdown(report.markdown_table(rows, ["method", "backbone", "dataset", "source",
                                              "linear_top1", "knn_top1",
                                              "linear_honest_top1"])))
display(Markdown(report.markdown_table([facts], list(facts))))
random_json = cfg.out_dir / "05_probes" / "random_init" / "probe.json"  # chapter 05's floor
floor = json.loads(random_json.read_text()) if random_json.is_file() else None
if floor is None:
    print("no random-init probes (chapter 05 makes them): the figure has no floor")
classes = {reference: 1000 if reference == "ImageNet-1k" else 100,
           facts.get("dataset", "generated data"): facts["num_classes"]}
fig = viz.fig_comparison(rows, floor, classes)
run.savefig(fig, "paper_vs_ours")
plt.show()

# %% [markdown]
# ## 2. The paper's Table I (ResNet-50 unless noted; top-1 %)

# %%
table = {}
for r in paper:
    if r["table"] == "I":
        row = table.setdefault((r["method"], r["backbone"]),
                               {"method": r["method"], "backbone": r["backbone"]})
        row[f"{r['dataset']} {r['metric']}"] = r["value"]
columns = ["method", "backbone", "ImageNet-100 linear_top1", "ImageNet-100 knn_top1",
           "ImageNet-1k linear_top1", "ImageNet-1k knn_top1"]
display(Markdown(report.markdown_table(list(table.values()), columns)))

# %% [markdown]
# ## 3. Costs
#
# The hours behind the paper's claim of 17-35 % less pretraining time, and the wall time of
# its runs, each with its source (the authors' ablations, also in this file, are drawn
# and swept in chapter 09):

# %%
costs = [r for r in paper if r["table"] == "cost"]
display(Markdown(report.markdown_table(costs, ["method", "dataset", "setting", "metric",
                                               "value", "unit", "source"])))

# %% [markdown]
# ## 4. The other methods (chapter 08)
#
# Chapter 08 trains C-JEPA, SimCLR, BYOL and VICReg on the same backbone, data and probes.
# A course runs this chapter before chapter 08, so their rows appear here next to Table I's
# only when this chapter runs again after chapter 08 in the same output folder (exercise 2);
# until then the cell below says that they are missing.

# %%
others_file = report.comparison_file(cfg.out_dir)
others = json.loads(others_file.read_text()) if others_file.is_file() else None
other_columns = ["method", "source", "linear_top1", "knn_top1", "paper_linear_top1",
                 "paper_knn_top1"]
if others is None:
    print(f"no {others_file} yet: run chapter 08 (jepa-lite course --only 08 --profile "
          f"{PROFILE}), then this chapter again")
else:
    display(Markdown(report.markdown_table(others["rows"], other_columns)))

# %%
lines = ["# Reproduction report", "", report.markdown_table(rows, [
    "method", "backbone", "dataset", "source", "linear_top1", "knn_top1",
    "linear_honest_top1"]), "", report.markdown_table([facts], list(facts)), ""]
text = "\n".join(lines)
if others is not None:
    text = report.with_method_rows(text, others["rows"])
(run.dir / "report.md").write_text(text)
run.log(comparable=facts["comparable"], linear_top1=100 * probe["linear_top1"],
        knn_top1=100 * probe["knn_top1"], paper_linear_top1=paper_cnn_jepa["linear_top1"],
        paper_knn_top1=paper_cnn_jepa["knn_top1"], paper_dataset=reference,
        epochs=facts["epochs"], pretrain_hours=facts["pretrain_hours"], device=facts["device"],
        commit=facts["commit"])
print("report:", run.dir / "report.md")

# %% [markdown]
# ## Reproducing the paper
#
# The `full` profile is the documented way: see the README section *Reproducing the
# paper's ImageNet-100 table* for the commands, docs/cli.md for each step from the shell
# and docs/benchmarks.md for the expected time and memory.

# %% [markdown]
# ## Reading Table I critically
#
# - CNN-JEPA does not beat the baselines in the paper: on ImageNet-100 it trails all three
#   (linear 73.26 against 74.18-79.02; k-NN 59.22 against 64.32-68.20), and on ImageNet-1k
#   too (54.23 against 59.81-60.22). The claim is that it *approaches* them.
# - The paper reports no seeds and no spread, so a difference of a point may be noise; and
#   its CNN-JEPA k-NN looks like the best over several runs (below), so "one run each"
#   cannot be assumed either.
# - The paper's 17-35 % is time per epoch, all methods at 200 epochs; it is not time to reach
#   an accuracy. The hours behind it are in the authors' W&B runs (their repository): 0.0644 h
#   against 0.0775 and 0.0991 per epoch on 4 GPUs.
# - The default row of the authors' ablation runs (their repository) and Table I give the
#   same linear top-1 (73.26) but different k-NN (56.26 against 59.22). In the authors'
#   runs 59.22 is the 2-layer predictor's k-NN: Table I looks like each metric's best over
#   runs, taken separately (our reading, chapter 03 and `docs/paper.md`); the paper does not
#   say so.
# - The I-JEPA rows are ViT-Small and ViT-Base on ImageNet-100, run by the CNN-JEPA
#   authors; ImageNet-1k has none. Table I's footnote: I-JEPA's authors "only published
#   ImageNet-1k results for larger ViT models", and the CNN-JEPA authors could not obtain
#   ViT-Small and ViT-Base results with I-JEPA's official code on their hardware. For scale:
#   secondary sources quote the C-JEPA paper giving I-JEPA 72.9 linear for a ViT-B/16
#   pretrained 600 epochs on ImageNet-1k (a figure from I-JEPA's own paper, Assran et al.
#   2023; checked against neither text here; `data/paper_results.csv`), where CNN-JEPA's ResNet-50 trained 100 epochs on ImageNet-1k
#   for 54.23: six times the epochs, another architecture, not a comparison.
#
# ## Summary
#
# - Table I's ResNet-50 rows (the paper), the ablations and the hours per epoch (the authors'
#   repository) come from `data/paper_results.csv`, each with its source.
# - Our run's row carries its profile, device, epochs and commit; smoke and demo rows are marked
#   not comparable and drawn in their own panel.
# - Read critically, the paper shows a cheaper method that comes close, without seeds or
#   spread.
#
# ## Check your understanding
#
# 1. Does CNN-JEPA beat SimCLR, BYOL or VICReg in Table I?
#    <details><summary>Answer</summary>
#
#    No: it trails all three on both data sets; the paper's claim is that it approaches them at
#    17-35 % less time per epoch.
#
#    </details>
# 2. Where do 17 % and 35 % come from?
#    <details><summary>Answer</summary>
#
#    1 - 0.0644 / 0.0775 = 17 % (against SimCLR) and 1 - 0.0644 / 0.0991 = 35 % (against BYOL),
#    hours per epoch on 4 GPUs from the authors' W&B runs (their repository; the paper prints
#    only the percentages).
#
#    </details>
# 3. Why can a smoke or demo row not be set beside Table I's?
#    <details><summary>Answer</summary>
#
#    Generated data, a small backbone and a few epochs: it shows that the pipeline runs (and,
#    by chapter 05's verdicts, whether it learned these scenes), not what the method reaches
#    on ImageNet.
#
#    </details>
#
# ## Exercises
#
# 1. **Derive** the saving against VICReg from the costs table, as question 2 derives the
#    paper's 17 % and 35 %. Is it inside the paper's range?
#    <details><summary>Solution</summary>
#
#    From the authors' W&B hours (their repository): $1 - 0.0644 / 0.0845 = 24$ %, inside
#    the 17-35 % that the paper states against SimCLR and BYOL only.
#
#    ```python
#    from jepa_lite.course import compare, report
#
#    hours = compare.paper_hours_per_epoch(report.paper_results())
#    saving = {m: 1 - hours["CNN-JEPA"] / h for m, h in hours.items() if m != "CNN-JEPA"}
#    assert round(100 * saving["SimCLR"]) == 17 and round(100 * saving["BYOL"]) == 35
#    assert 0.17 < saving["VICReg"] < 0.35
#    print({m: f"{v:.0%}" for m, v in saving.items()})
#    ```
#
#    </details>
# 2. Run chapter 08 and then this chapter again: where do the other methods' rows appear?
#    <details><summary>Hint</summary>
#
#    Section 4 reads `08_comparison/comparison.json` from the same output folder.
#
#    </details>
#
# ## References
#
# - Kalapos et al. (2024). CNN-JEPA: Self-Supervised Pretraining Convolutional Neural Networks
#   Using Joint Embedding Predictive Architecture.
# - Assran et al. (2023). Self-Supervised Learning From Images With a Joint-Embedding Predictive
#   Architecture (I-JEPA). CVPR 2023.
# - Chen et al. (2020). A Simple Framework for Contrastive Learning of Visual Representations
#   (SimCLR). ICML 2020.
# - Grill et al. (2020). Bootstrap Your Own Latent: A New Approach to Self-Supervised Learning
#   (BYOL). NeurIPS 2020.
# - Bardes, Ponce and LeCun (2022). VICReg: Variance-Invariance-Covariance Regularization for
#   Self-Supervised Learning. ICLR 2022.
