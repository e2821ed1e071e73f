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
# Code: `jepa_lite/report.py`.

# %% tags=["parameters"]
PROFILE = "smoke"  # smoke | demo | full
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

from jepa_lite import report, runs, viz
from jepa_lite.course import start_chapter

run = start_chapter("06_reproduction", PROFILE, DATA_ROOT, OUT_DIR, DEVICE, SEED, RUN_DIR)
cfg = run.config
paper = report.paper_results()

# %% [markdown]
# ## 1. The paper's Table I (ResNet-50 unless noted; top-1 %)

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
# ## 2. Ablations and costs

# %%
for prefix, title, name in (("predictor depth", "predictor depth (layers)", "ablation_depth"),
                            ("kernel", "predictor kernel size", "ablation_kernel"),
                            ("masking", "masking strategy", "ablation_masking")):
    fig = viz.fig_ablation(paper, prefix, title)
    run.savefig(fig, name)
    plt.show()
costs = [r for r in paper if r["table"] == "cost"]
display(Markdown(report.markdown_table(costs, ["method", "dataset", "setting", "metric",
                                               "value", "unit", "source"])))

# %% [markdown]
# ## 3. Our run next to the paper
#
# Our numbers come from chapter 04's run (its folder, `RUN_DIR`) and chapter 05's probes
# in the same output folder.

# %%
run_dir = cfg.run_dir()
runs.require_complete(run_dir)
probe_json = cfg.out_dir / "05_probes" / "pretrained" / "probe.json"
if not probe_json.is_file():
    raise FileNotFoundError(f"no {probe_json}: run chapters 04 and 05 first "
                            f"(jepa-lite course --only 04 05 --profile {PROFILE})")
probe = json.loads(probe_json.read_text())
facts = report.run_facts(run_dir, probe_json, PROFILE, str(cfg.device))
rows = report.comparison_rows(probe, facts)
display(Markdown(report.markdown_table(rows, ["method", "backbone", "dataset", "source",
                                              "linear_top1", "knn_top1",
                                              "linear_honest_top1"])))
display(Markdown(report.markdown_table([facts], list(facts))))
fig = viz.fig_comparison(rows)
run.savefig(fig, "paper_vs_ours")
plt.show()

# %% [markdown]
# ## 4. The other methods (chapter 08)
#
# Chapter 08 trains C-JEPA, SimCLR, BYOL and VICReg on the same backbone, data and probes;
# once it has run in this output folder, its rows appear here next to Table I's.

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
        knn_top1=100 * probe["knn_top1"], paper_linear_top1=73.26, paper_knn_top1=59.22,
        epochs=facts["epochs"], pretrain_hours=facts["pretrain_hours"], commit=facts["commit"])
print("report:", run.dir / "report.md")

# %% [markdown]
# ## Reproducing the paper
#
# The `full` profile is the documented way: see the README section *Reproducing the
# paper's ImageNet-100 table* for the exact commands, the expected time and memory.
