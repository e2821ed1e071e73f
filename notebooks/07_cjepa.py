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
# # 07 — C-JEPA: a regulariser against collapse
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/jepa-lite/jepa_lite/blob/main/notebooks/07_cjepa.ipynb)
#
# **One idea:** a JEPA can cheat by giving every image the same features. Three ingredients
# stand against it: the stop-gradient on the target, the predictor and the EMA. This chapter
# removes them one at a time and reads what happens; then C-JEPA, which adds VICReg's
# variance and covariance terms to the JEPA loss so that a collapsed batch costs something
# in the loss itself (at C-JEPA's weight, a small cost: section 1). From the abstract (Mo &
# Tong, NeurIPS 2024, arXiv:2410.19560; the abstract is all of the paper this course has,
# the rest of what we say about C-JEPA is our reading of secondary sources, `docs/paper.md`):
#
# > "two primary limitations have been identified: the inefficacy of Exponential Moving
# > Average (EMA) from I-JEPA in preventing entire collapse and the inadequacy of I-JEPA
# > prediction in accurately learning the mean of patch representations. [...] C-JEPA
# > (Contrastive-JEPA) [...] integrates the Image-based Joint-Embedding Predictive
# > Architecture with the Variance-Invariance-Covariance Regularization (VICReg) strategy.
# > This integration is designed to effectively learn the variance/covariance for
# > preventing entire collapse and ensuring invariance in the mean of augmented views"
#
# The abstract names two limitations of I-JEPA. The first, collapse, is this chapter's
# subject. The second, that I-JEPA's prediction does not learn the *mean* of the patch
# representations accurately, is what VICReg's invariance term answers in C-JEPA: it asks
# the pooled (mean) representations of different views of one image to agree, a quantity
# the per-cell JEPA loss never constrains directly. In reading A below the "views" are the
# target blocks of one image and the invariance term compares their mean predictions.
#
# C-JEPA was built on I-JEPA (a ViT); this chapter puts it on CNN-JEPA's ResNet and grid.
# Code: `jepa_lite/methods/cjepa.py`, `jepa_lite/losses.py` (VICReg's terms),
# `jepa_lite/compare.py`, `jepa_lite/analysis.py` (`spectrum`).

# %% tags=["parameters"]
PROFILE = "smoke"  # smoke | demo | gpu | full
DATA_ROOT = None  # ImageFolder root (train/, val/); None: smoke/demo generate their data
OUT_DIR = None  # None: outputs/ of the checkout
DEVICE = "auto"  # auto | cpu | cuda
SEED = 0
INTERACTIVE = True  # False under papermill: static figures only

# %%
import sys

if "google.colab" in sys.modules:  # Colab: install the package once; torch is already there
    import importlib
    import subprocess

    subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                    "jepa-lite @ git+https://github.com/jepa-lite/jepa_lite@main"], check=True)
    importlib.invalidate_caches()

# %%
import math

import matplotlib.pyplot as plt
import torch
from IPython.display import Markdown, display

from jepa_lite import analysis, backbone, compare, masking, probes, runs, schedules, train, viz
from jepa_lite.course import start_chapter
from jepa_lite.data import scan

run = start_chapter("07_cjepa", PROFILE, DATA_ROOT, OUT_DIR, DEVICE, SEED)
cfg = run.config
data_root = cfg.data_root(many_runs=True)  # the profile may keep a smaller set for them
tcfg = cfg.train_config("cjepa", many_runs=True)  # a config.TrainConfig
nproc = runs.processes(tcfg.batch_size, tcfg.micro_batch, cfg.device.type)
grid = masking.grid_of(tcfg.image_size, tcfg.arch)
o = tcfg.method  # C-JEPA's options: config.CJEPAOptions
print(f"{PROFILE}: {tcfg.arch} at {tcfg.image_size} px (a {grid[0]}x{grid[1]} grid), "
      f"{tcfg.epochs} epochs, batch {tcfg.batch_size}, masking {o.strategy}; C-JEPA "
      f"reading {o.reading}, beta {o.beta}, weights {o.vicreg_weights}")
print(train.geometry(tcfg))
if cfg.profile.many_runs:  # four runs: the profile shortens each (chapter 04 trains one)
    print(f"each run here: {cfg.profile.many_runs} on {data_root.name}; chapter 04's run: "
          f"{cfg.train_config().epochs} epochs at "
          f"{cfg.image_size} px on {getattr(cfg.profile.synthetic, 'name', 'DATA_ROOT')}")

# %% [markdown]
# ## 1. Which tensors each VICReg term sees
#
# Secondary sources report that the C-JEPA paper's pseudocode and its Algorithm 1 disagree on where VICReg applies (no code is public; `docs/paper.md` lists three readings,
# each with how many sources agree). We implement two and say which runs here. Under reading
# A, the default, the "views" VICReg compares are the target blocks of one image: the
# predictor's output averaged over each block, for the blocks of one multi-block draw on
# this run's grid:

# %%
cell = torch.Generator().manual_seed(SEED)
mask, blocks = masking.sample_masks(1, grid, "multiblock", cell, return_blocks=True)
fig = viz.fig_blocks(viz.load_image("grace_hopper", tcfg.image_size), blocks[0])
run.savefig(fig, "vicreg_views")
plt.show()
print(f"one multi-block draw on the {grid[0]}x{grid[1]} grid: {blocks.shape[1]} blocks of "
      f"{int(blocks[0, 0].sum())} cell(s); their union covers {int(mask.sum())} cells")

# %% [markdown]
# The loss adds the three VICReg terms, weighted as VICReg weights them, to the JEPA loss:
#
# $$\mathcal{L} = \mathcal{L}_\text{JEPA} + \beta\,\bigl(25\,\mathcal{L}_\text{inv}
#   + 25\,\mathcal{L}_\text{var} + \mathcal{L}_\text{cov}\bigr), \qquad \beta = 0.001$$
#
# ($\beta$ as secondary sources give the C-JEPA paper's value; one re-implementation
# uses $(1 - \beta)\,\mathcal{L}_\text{JEPA}$ instead, not done here). Variance and
# covariance are taken over this process's micro-batch, never gathered. What each term sees,
# under each reading:
#
# | | reading A (default, Algorithm 1) | reading B (`--cjepa-reading B`, pseudocode) |
# |---|---|---|
# | "views" | the target blocks of one image | none |
# | input | the predictor's output, mean-pooled over each multi-block target block | the context encoder's output, mean-pooled over the grid |
# | head | a projector (Linear-BN-ReLU x 2, Linear; width C) | none |
# | invariance | mean squared difference between the projections of two blocks of the same image | the JEPA loss itself |
# | variance | hinge on the std over the micro-batch of each block's projection | hinge on the std over the micro-batch of the pooled context |
# | covariance | off-diagonal covariance over the micro-batch of each block's projection | the same, of the pooled context |
# | averaged over | all pairs of blocks (i != j) | - |
#
# **Under random masking there are no blocks.** With reading A, a micro-batch masked at
# random gets no VICReg term at all: C-JEPA with `--masking random` *is* CNN-JEPA, and with
# `mixed` (the default, 75 % multi-block) the term acts on the multi-block micro-batches only.
# **On a small grid the blocks are single cells** (every block on a 2x2 or 3x3 grid), so the
# "mean over a block" is one cell's prediction: the smoke profile's runs here are 64 px, a
# 2x2 grid; a 4x4 grid (demo, 128 px) has blocks of 1-4 cells (a quarter of single cells),
# the paper's 7x7 grid blocks of 6-12 cells, mostly 9 (`masking.describe_geometry`; this
# run's is printed above).

# %% [markdown]
# ## 2. What keeps a JEPA from collapsing: one ingredient removed at a time
#
# The same short run (backbone, data, seed, schedule), six times:
#
# | run | target | predictor | what it tests |
# |---|---|---|---|
# | CNN-JEPA | EMA of the context encoder, no gradient | 3 layers | the recipe |
# | no EMA (`--no-target-ema`) | a copy of the context encoder after every step, no gradient | 3 layers | is the stop-gradient with a predictor enough, as in SimSiam? |
# | no predictor (`--predictor-layers 0`) | EMA, no gradient | none: the mask token is the prediction | what the predictor does |
# | gradient through the target (`--target-gradient`) | the context encoder itself, densely, **with** gradient | 3 layers | the stop-gradient |
# | C-JEPA, and C-JEPA without the EMA | as CNN-JEPA | 3 layers | the VICReg terms |
#
# What earlier work leads one to expect: BYOL reported that with its target an exact copy
# of the online network its representation collapsed; SimSiam then trained with no moving
# average at all, a stop-gradient and a predictor being enough, and collapsed when either was
# removed. A JEPA differs in one way that matters here: the predictor is the only path from
# the visible cells to the target cells (the sparse encoder's output is zero there), so
# without it the context encoder receives no gradient and does not train at all. Every run
# is probed as in chapter 05.
#
# > **How the runs are carried out.** Each run trains in its own process and folder (resumed
# > if stopped); a run the course already finished (chapter 04's, say) is linked, not
# > trained again.

# %%
jepa, cjepa = cfg.train_config("cnn-jepa", many_runs=True), tcfg
variants = compare.collapse_variants(jepa, cjepa)
k = cfg.profile.knn_k  # the paper's 200; 20 on the small generated sets
results = {}
for name, variant in variants.items():
    folder = run.dir / "runs" / name.lower().replace(", ", "-").replace(" ", "-")
    results[name] = compare.run_method(variant, folder, data_root, cfg.device,
                                       cfg.profile.probe_epochs, k=k, nproc=nproc,
                                       twins=cfg.course_runs())
random_init = compare.probe_random_init(tcfg.arch, data_root, run.dir / "random",
                                        tcfg.image_size, cfg.device, cfg.profile.probe_epochs,
                                        k=k, seed=SEED)

# %% [markdown]
# ## 3. Collapse diagnostics over training
#
# Per epoch, on the probed encoder's features of the epoch's last micro-batch (pooled: one
# row per image, as for every method in chapter 08): the per-channel std of the
# L2-normalised features (0 = every image the same) and the effective rank (1 = everything
# on one line; at most the number of images minus one). The loss panel shows each run's own
# objective: C-JEPA's includes beta x VICReg, so its curve is not a better or worse JEPA.

# %%
fig = viz.fig_runs({n: r["history"] for n, r in results.items()})
run.savefig(fig, "training")
plt.show()

# %% [markdown]
# After training, on the validation images (the encoder the probes use, pooled features),
# next to the same network at its random initialisation. How far can an EMA target have moved
# from its initialisation? After $T$ steps of $\xi \leftarrow m_t\,\xi + (1 - m_t)\,\theta$,
# the initial weights still carry $\prod_t m_t$ of the target (if the context encoder had
# moved away entirely); the line below computes it for this run's schedule.

# %%
per_epoch = len(scan(data_root, "train").samples) // jepa.batch_size
steps = per_epoch * jepa.epochs
carried = math.prod(schedules.ema_momentum_at(t, per_epoch, jepa.epochs,
                                              jepa.method.ema_per_epoch, *jepa.method.ema)
                    for t in range(steps))
print(f"{steps} steps, EMA {jepa.method.ema[0]} -> {jepa.method.ema[1]}: the initial weights "
      f"still carry {carried:.0%} of the target encoder at the end")
torch.manual_seed(SEED)
spectra = {"random init": analysis.spectrum(analysis.pooled_features(
    backbone.dense_trunk(tcfg.arch), data_root, tcfg.image_size, cfg.device))}
for name, r in results.items():
    feats = analysis.pooled_features(probes.encoder_from_checkpoint(r["checkpoint"]), data_root,
                                    tcfg.image_size, cfg.device)
    spectra[name] = analysis.spectrum(feats)
fig = viz.fig_spectra(spectra)
run.savefig(fig, "spectra")
plt.show()

# %% [markdown]
# ## 4. What happened, run by run
#
# For each run: the spread of its validation features (std and effective rank, pooled, one
# row per image, the same for every run) read against random init's
# (`compare.collapse_reading`: *collapsed* under rank 2, *partly* under half of random init's
# rank or std), and each probe against random init's with two standard errors of the
# difference on this many validation images (`compare.learned_rows`). The dashed lines of the
# bar chart are random init.

# %%
fig = viz.fig_probe_bars(results, random_init, f"{PROFILE} profile: k = {k}, "
                         f"{cfg.profile.probe_epochs} linear-probe epochs")
run.savefig(fig, "probes")
plt.show()
n_val = len(scan(data_root, "val").samples)
rows = {r["method"]: r for r in compare.learned_rows(results, random_init, n_val)}
readings = {n: compare.collapse_reading(spectra[n], spectra["random init"]) for n in results}
table = ["| run | std | effective rank | spread | k-NN vs random init | linear vs random init |",
         "|---|---|---|---|---|---|",
         f"| random init | {spectra['random init']['std']:.4f} | "
         f"{spectra['random init']['effective_rank']:.1f} | | "
         f"{100 * random_init['knn_top1']:.1f} % | {100 * random_init['linear_top1']:.1f} % |"]
table += [f"| {n} | {spectra[n]['std']:.4f} | {spectra[n]['effective_rank']:.1f} | "
          f"{readings[n]} | {100 * results[n]['knn_top1']:.1f} % ({rows[n]['knn_vs_random']}) | "
          f"{100 * results[n]['linear_top1']:.1f} % ({rows[n]['linear_vs_random']}) |"
          for n in results]
channels = spectra["random init"]["channels"]
display(Markdown(f"{PROFILE} profile, {n_val} validation images, {channels} channels:\n\n"
                 + "\n".join(table)))
run.log(**{f"{n} {m}": results[n][m] for n in results for m in ("knn_top1", "linear_top1")},
        **{f"{n} effective_rank": spectra[n]["effective_rank"] for n in spectra},
        **{f"{n} spread": readings[n] for n in results},
        random_knn_top1=random_init["knn_top1"], ema_initial_weight_left=carried)

# %% [markdown]
# Read the table, not a sentence written in advance: it is this run's numbers. What the
# runs on record showed (docs/experiments.md, "Collapse experiment", with their profile and
# commit):
#
# - **Copying the target (no EMA) did not collapse it, and still did harm.** In the `demo`
#   run of docs/results (commit 668d9d6, 4 epochs = 500 steps, 400 validation images, two
#   standard errors about 6.5 points) the copied-target encoder kept an effective rank of
#   170.7 (189.6 with the EMA, 253.2 at random init) yet probed *below* random init: k-NN
#   25.5 % against 29.5 %, linear 32.75 % against 36.25 %, each within two standard errors;
#   an earlier demo page (commit 4b85d31, another data loader) had k-NN 19.5 % against
#   29.5 %, beyond them. The collapse diagnostics do not see this failure; only the probes
#   do. Spread is necessary for useful features, not sufficient.
# - **Without the predictor nothing trains** but the mask token: the context encoder's
#   output is zero at the target cells, so no gradient reaches it, and the target stays the
#   random network, slowly shrunk by weight decay, with one difference: its BatchNorm
#   running statistics are the data's (every training forward pass updates them; random
#   init keeps 0 and 1). That alone moves its spread away from random init's (demo: std
#   0.0155 against 0.0059, rank 311.1 against 253.2) and its probes stay within noise of
#   it (k-NN 33.25 % against 29.5 %, linear 40.25 % against 36.25 %).
# - **With a gradient through the target** the two branches met at a near-constant in the
#   demo run: the loss fell to 0.0006 (CNN-JEPA's: 0.19), the std to 0.0024 and the rank to
#   85.9, and both probes fell far below random init (k-NN 12.75 % against 29.5 %, linear
#   17.25 % against 36.25 %, beyond two standard errors). The stop-gradient is the
#   ingredient whose removal collapsed a run here; in smoke's 16 steps it had only begun.
# - With beta = 0.001 the VICReg term is small next to the JEPA loss (25 x a variance hinge
#   of at most 1, times 0.001): it makes collapse cost something, it does not forbid it, and
#   under reading A it acts only on multi-block micro-batches. Our runs have not shown it
#   raising the rank or the probes beyond noise (the demo run above: rank 185.9 against
#   189.6, k-NN 33.25 % against 38.5 %, linear 48.5 % both; without the EMA, like
#   CNN-JEPA without it, within noise below random init: k-NN 23.5 %, linear 34.5 %).
#
# Secondary sources quote the C-JEPA paper's gains for ViTs on ImageNet-1k (our reading, not
# checked against its full text, which this course does not have: linear 72.9 -> 73.7 for
# ViT-B/16 at 600 epochs; docs/paper.md, `data/paper_results.csv`); nobody has measured
# them for CNN-JEPA, and this chapter at `smoke` or `demo` scale does not either.
#
# ## Summary
#
# - Three ingredients stand against collapse in CNN-JEPA: the stop-gradient on the target, the
#   predictor (here also the only path from the visible cells to the target cells) and the EMA.
#   The table of section 4 shows what removing each did in this run.
# - Collapse diagnostics (std, effective rank) catch a collapse, not every failure: a run can
#   keep its spread and probe below random init.
# - C-JEPA adds VICReg's invariance, variance and covariance terms to the JEPA loss, weighted by
#   beta = 0.001 (25 / 25 / 1 inside): collapse then costs something in the loss, a little.
# - Where the terms apply is ambiguous (secondary sources; our reading); reading A (default)
#   regularises the projected block means of the prediction, reading B the pooled context
#   encoder. Under random masking there are no blocks, so reading A adds nothing.
#
# ## Check your understanding
#
# 1. Which tensors does the variance term see in reading A?
#    <details><summary>Answer</summary>
#
#    The projections of each target block's mean prediction, over the images of the micro-batch:
#    a hinge on their per-dimension standard deviation.
#
#    </details>
# 2. How does the variance term act against collapse differently from the EMA?
#    <details><summary>Answer</summary>
#
#    If every image had the same features, the standard deviation over the batch would be 0 and
#    the hinge would add its largest penalty, so collapse costs something in the loss; the EMA
#    adds no term at all, it only changes how the target moves. At beta = 0.001 the penalty is
#    at most 0.025 per micro-batch (25 x 1 x 0.001), small next to the JEPA loss (0.42
#    falling to 0.19 in chapter 04's `demo` run, docs/results/demo), so it discourages
#    collapse rather than forbidding it.
#
#    </details>
# 3. Why is beta = 0.001 so small?
#    <details><summary>Answer</summary>
#
#    The VICReg terms, with weights 25 / 25 / 1, are large next to the JEPA loss (a smooth-L1
#    of unit vectors: at most 2, usually well below 1); beta scales them to a regulariser
#    instead of the main objective.
#
#    </details>
#
# ## Exercises
#
# 1. Raise `--beta` to 0.01 and 0.1. When does the regulariser start to change the effective
#    rank? What does it do to the JEPA part of the loss?
#    <details><summary>Hint</summary>
#
#    Compare `metrics.jsonl` of the runs: the effective rank column, and the loss minus beta
#    times the VICReg terms.
#
#    </details>
# 2. Train C-JEPA with `--masking random`: compare its weights with CNN-JEPA's after one step
#    from the same seed.
#    <details><summary>Hint</summary>
#
#    Section 1: under random masking the term is zero and the projector stays in the graph
#    multiplied by 0.
#
#    </details>
# 3. Switch to reading B (`--cjepa-reading B`): the variance now acts on the context encoder,
#    the network the probes do not read. Does the target's effective rank follow?
#    <details><summary>Hint</summary>
#
#    The target is an average of the context encoder's past weights, so it follows, slowly.
#
#    </details>
#
# ## References
#
# - Mo et al. (2024). Connecting Joint-Embedding Predictive Architecture with Contrastive
#   Self-supervised Learning (C-JEPA). NeurIPS 2024.
# - Chen and He (2021). Exploring Simple Siamese Representation Learning (SimSiam). CVPR 2021.
# - Grill et al. (2020). Bootstrap Your Own Latent (BYOL). NeurIPS 2020.
# - Bardes, Ponce and LeCun (2022). VICReg: Variance-Invariance-Covariance Regularization for
#   Self-Supervised Learning. ICLR 2022.
# - Assran et al. (2023). Self-Supervised Learning From Images With a Joint-Embedding Predictive
#   Architecture (I-JEPA). CVPR 2023.
# - Kalapos et al. (2024). CNN-JEPA: Self-Supervised Pretraining Convolutional Neural Networks
#   Using Joint Embedding Predictive Architecture.
#
# **Next:** chapter 08 trains all five methods on the same backbone and data.
