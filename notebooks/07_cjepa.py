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
# # 07 — Collapse, and C-JEPA's regulariser against it
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/jepa-lite/jepa_lite/blob/main/notebooks/07_cjepa.ipynb)
#
# **One idea:** a JEPA can cheat by giving every image the same features (*complete*
# collapse) or features that use only a few directions (*dimensional* collapse); each kind
# is seen by its own statistic. Three ingredients stand against collapse: the stop-gradient
# on the target, the predictor and the EMA. This chapter removes them one at a time and
# reads what happens; then C-JEPA, which adds VICReg's variance and covariance terms to the
# JEPA loss so that a collapsed batch costs something in the loss itself (at C-JEPA's
# weight, a small cost: section 5). From the C-JEPA abstract (Shentong Mo et al., 2024,
# arXiv:2410.19560; the abstract is all of the paper this course has, the rest of what we
# say about C-JEPA is our reading of secondary sources, `docs/paper.md`):
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
# representations accurately, is what VICReg's invariance term answers in C-JEPA, in our
# reading: it asks the pooled (mean) representations of different views of one image to
# agree, which the per-cell JEPA loss asks only cell by cell. In reading A below the
# "views" are the target blocks of one image and the invariance term compares their mean
# predictions.
#
# C-JEPA was built on I-JEPA (a ViT); this chapter puts it on CNN-JEPA's ResNet and grid.
# Code: `jepa_lite/eval/diagnostics.py` (`spectrum`, `collapse_flags`), `jepa_lite/methods/cjepa.py`,
# `jepa_lite/losses.py` (VICReg's terms), `jepa_lite/course/compare.py`.

# %% tags=["parameters"]
PROFILE = "smoke"  # smoke | demo | gpu | full (used when TRAIN is True)
DATA_ROOT = None  # ImageFolder root (train/, val/); None: smoke/demo generate their data
OUT_DIR = None  # None: outputs/ of the checkout
DEVICE = "auto"  # auto | cpu | cuda
SEED = 0
INTERACTIVE = True  # False under papermill: static figures only
TRAIN = False  # False: read the committed demo run (docs/results/demo, seconds); True: train

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

from jepa_lite import losses, masking, schedules, train
from jepa_lite.course import bundle, compare, runs, viz
from jepa_lite.course.chapter import start_chapter
from jepa_lite.eval import diagnostics

stored = None if TRAIN else bundle.committed("07_cjepa")  # the demo course's runs, committed
run = start_chapter("07_cjepa", stored.profile if stored else PROFILE, DATA_ROOT, OUT_DIR,
                    DEVICE, SEED)
cfg = run.config
tcfg = cfg.train_config("cjepa", many_runs=True)  # a config.TrainConfig
jepa = cfg.train_config("cnn-jepa", many_runs=True)
grid = masking.grid_of(tcfg.image_size, tcfg.arch)
o = tcfg.method  # C-JEPA's options: config.CJEPAOptions
if stored:
    print(f"reading {stored.describe()} (docs/results/{stored.profile}/data/07_cjepa): "
          f"nothing is trained; set TRAIN = True to train the {PROFILE} profile's runs here")
    for change in bundle.config_changes(stored, "C-JEPA", tcfg):
        print("  the committed runs differ from this checkout's profile:", change)
print(f"{cfg.profile.name}: {tcfg.arch} at {tcfg.image_size} px (a {grid[0]}x{grid[1]} grid), "
      f"{tcfg.epochs} epochs, batch {tcfg.batch_size}, masking {o.strategy}; C-JEPA "
      f"reading {o.reading}, beta {o.beta}, weights {o.vicreg_weights}")
print(train.geometry(tcfg))

# %% [markdown]
# ## 1. Two kinds of collapse, two statistics
#
# Three sets of 256 feature vectors of 512 channels, made to order: one vector plus a
# little noise (every image alike: complete collapse), vectors on three directions only
# (dimensional collapse), and vectors spread in a positive cone, as ReLU features are (no
# collapse). Each statistic sees one kind and is blind to the other:

# %%
g = torch.Generator().manual_seed(SEED)
kinds = {"one vector + 0.1 % noise": torch.randn(1, 512, generator=g)
         + 1e-3 * torch.randn(256, 512, generator=g),
         "three directions": torch.randn(256, 3, generator=g) @ torch.randn(3, 512, generator=g),
         "spread (ReLU of noise)": torch.randn(256, 512, generator=g).relu()}
examples = {name: diagnostics.spectrum(f) for name, f in kinds.items()}
fig = viz.fig_collapse_kinds(examples)
run.savefig(fig, "collapse_kinds")
plt.show()
for name, sp in examples.items():
    print(f"{name:26s} std {sp['std']:.5f}  effective rank {sp['effective_rank']:6.1f}  "
          f"flags {diagnostics.flags_of(sp)}")

# %% [markdown]
# Over the $N$ rows $z_i$ of L2-normalised features with $C$ channels (`diagnostics.spectrum`):
#
# $$\text{std} = \frac1C \sum_{c=1}^{C} \operatorname{std}_i(z_{ic}), \qquad
#   \text{effective rank} = \exp\Bigl(-\sum_k p_k \log p_k\Bigr),\;
#   p_k = \frac{\sigma_k}{\sum_j \sigma_j},$$
#
# with $\sigma_k$ the singular values of the centred $z$. The std is 0 when every row is the
# same vector and $1/\sqrt{C}$ for rows spread evenly over the sphere. The effective rank
# reads only the *shares* $p_k$ of the singular values, not their size: rows that differ by
# a little noise have noise in every direction, evenly, and so a rank as high as spread
# features have, near the $\min(N - 1, C)$ directions that $N$ rows can span. The rank measures
# dimensional collapse (Hua et al. 2021; Jing et al. 2022), the std complete collapse;
# `diagnostics.collapse_flags` flags complete collapse below 2 % of $1/\sqrt{C}$ and
# dimensional collapse below 10 % of the reachable rank. With few rows the rank cannot tell:
# 16 rows span at most 15 directions. The diagnostics below read up to 256 training images
# per epoch and every validation image (both counts are printed; the `smoke` runs here have
# 128 and 48, too few for their rank to say much).
#
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
# | C-JEPA, and C-JEPA without the EMA | as CNN-JEPA | 3 layers | the VICReg terms (section 5) |
#
# What earlier work leads one to expect: BYOL reported that with its target an exact copy
# of the online network its representation collapsed; SimSiam then trained with no moving
# average at all, a stop-gradient and a predictor being enough, and collapsed when either was
# removed. A JEPA differs in one way that matters here: the predictor is the only path from
# the visible cells to the target cells (the sparse encoder's output is zero there), so
# without it the context encoder receives no gradient and does not train at all. Every run
# is probed as in chapter 05.
#
# > **How the runs are carried out.** With `TRAIN = False` (the default) nothing trains:
# > the cell below reads the runs of the `demo` course committed in
# > `docs/results/demo/data/07_cjepa` (each run's metrics and probes, and its pooled
# > validation features: a few MB), made by `make results PROFILE=demo` at the commit
# > the cell below prints. With `TRAIN = True` each run trains in its own process and folder
# > (resumed if stopped); a run the course already finished (chapter 04's, say) is linked,
# > not trained again; then the same files are written under this chapter's output folder
# > and read back.

# %%
if stored is None:
    data_root = cfg.data_root(many_runs=True)  # the profile may keep a smaller set for them
    nproc = runs.processes(tcfg.batch_size, tcfg.micro_batch, cfg.device.type)
    k = cfg.profile.knn_k  # the authors' code's 200; 20 on the small generated sets
    trained = {}
    for name, variant in compare.collapse_variants(jepa, tcfg).items():
        folder = run.dir / "runs" / name.lower().replace(", ", "-").replace(" ", "-")
        trained[name] = compare.run_method(variant, folder, data_root, cfg.device,
                                           cfg.profile.probe_epochs, k=k, nproc=nproc,
                                           twins=cfg.course_runs())
    floor = compare.probe_random_init(tcfg, data_root, run.dir / "random",
                                      tcfg.image_size, cfg.device, cfg.profile.probe_epochs,
                                      k=k, seed=SEED)
    made = compare.results_bundle(
        "07_cjepa", cfg, tcfg, trained, {"random init": floor},
        with_features={"random init": run.dir / "random",
                       **{n: r["probe_dir"] for n, r in trained.items()}})
    stored = bundle.load(bundle.save(run.dir / "results", made))
results, random_init = stored.runs, stored.references["random init"]
n_train, n_val = stored.facts["train_images"], stored.facts["val_images"]
print(f"{len(results)} runs of {n_train} training images, probed on {n_val} validation "
      f"images (k = {stored.facts['k']}); "
      + ("trained here" if TRAIN else f"committed runs of commit {stored.facts['commit']}"))

# %% [markdown]
# ## 3. Collapse diagnostics over training
#
# Per epoch, on the probed encoder's features of the last 256 training images of the epoch
# (pooled: one row per image, as for every method in chapter 08; fewer when an epoch has
# fewer images, as the figure says): the std and the effective rank of section 1. Each
# run's loss has its own panel: C-JEPA's includes beta x VICReg, so its curve is not a
# better or worse JEPA.

# %%
channels = stored.facts["channels"]
fig = viz.fig_runs({n: r["history"] for n, r in results.items()}, channels=channels)
run.savefig(fig, "training")
plt.show()
for name, r in results.items():  # the last epoch's rows, read by section 1's flags
    last = r["history"][-1]
    flags = diagnostics.collapse_flags(last["target_std"], last["effective_rank"],
                                    last["diagnostic_rows"], channels)
    said = [kind for kind in ("complete", "dimensional") if flags[kind]]
    print(f"{name:40s} std {last['target_std']:.5f}  rank {last['effective_rank']:6.1f} of "
          f"{flags['reachable_rank']}: {' and '.join(said) + ' collapse' if said else 'neither'}")

# %% [markdown]
# Training and validation need not agree: the training rows come from the training crops,
# with BatchNorm's batch statistics, the validation rows (section 4) from centre crops with
# its running statistics. In the committed `demo` runs the gradient-through-the-target run's
# training std falls under the complete-collapse line while its rank stays among the
# highest of the six: the rank does not see it. On the validation images its std is higher
# (read below).

# %% [markdown]
# ## 4. After training: the validation features against random init
#
# On the validation images (the encoder the probes use, pooled features), next to the same
# network at its random initialisation. How far can an EMA target have moved from its
# initialisation? After $T$ steps of $\xi \leftarrow m_t\,\xi + (1 - m_t)\,\theta$, the
# initial weights still carry $\prod_t m_t$ of the target (if the context encoder had
# moved away entirely); the line below computes it for this run's schedule.

# %%
per_epoch = n_train // jepa.batch_size
steps = per_epoch * jepa.epochs
carried = math.prod(schedules.ema_momentum_at(t, per_epoch, jepa.epochs,
                                              jepa.method.ema_per_epoch, *jepa.method.ema)
                    for t in range(steps))
print(f"{steps} steps, EMA {jepa.method.ema[0]} -> {jepa.method.ema[1]}: the initial weights "
      f"still carry {carried:.0%} of the target encoder at the end")
spectra = {name: diagnostics.spectrum(f) for name, f in stored.features.items()}
fig = viz.fig_spectra(spectra)
run.savefig(fig, "spectra")
plt.show()

# %% [markdown]
# For each run: complete collapse read from the std, dimensional collapse from the effective
# rank (section 1's flags, on these validation rows), then both against random init's
# (`compare.collapse_reading`: *partly* when either is under half of random init's), and
# each probe against random init's with two standard errors of the difference on this many
# validation images (`compare.learned_rows`). In the bar chart the error bars are two
# standard errors, the dashed lines and bands random init.

# %%
fig = viz.fig_probe_bars(results, random_init, f"{cfg.profile.name} profile: k = "
                         f"{stored.facts['k']}", n_val)
run.savefig(fig, "probes")
plt.show()
rows = {r["method"]: r for r in compare.learned_rows(results, random_init, n_val)}
readings = {n: compare.collapse_reading(spectra[n], spectra["random init"]) for n in results}
table = ["| run | std | effective rank | collapse | k-NN vs random init | linear vs random init |",
         "|---|---|---|---|---|---|",
         f"| random init | {spectra['random init']['std']:.4f} | "
         f"{spectra['random init']['effective_rank']:.1f} | | "
         f"{100 * random_init['knn_top1']:.2f} % | {100 * random_init['linear_top1']:.2f} % |"]
table += [f"| {n} | {spectra[n]['std']:.4f} | {spectra[n]['effective_rank']:.1f} | "
          f"{readings[n]} | {100 * results[n]['knn_top1']:.2f} % ({rows[n]['knn_vs_random']}) | "
          f"{100 * results[n]['linear_top1']:.2f} % ({rows[n]['linear_vs_random']}) |"
          for n in results]
flagged = diagnostics.collapse_flags(0.0, 0.0, n_val, channels)["reachable_rank"]
display(Markdown(f"{cfg.profile.name} profile, {n_val} validation images, {channels} channels "
                 f"(complete collapse below std "
                 f"{diagnostics.COMPLETE_STD_SHARE / channels ** 0.5:.5f}, dimensional below rank "
                 f"{diagnostics.DIMENSIONAL_RANK_SHARE * flagged:.1f}):\n\n" + "\n".join(table)))
run.log(**{f"{n} {m}": results[n][m] for n in results for m in ("knn_top1", "linear_top1")},
        **{f"{n} effective_rank": spectra[n]["effective_rank"] for n in spectra},
        **{f"{n} std": spectra[n]["std"] for n in spectra},
        **{f"{n} collapse": readings[n] for n in results},
        random_knn_top1=random_init["knn_top1"], ema_initial_weight_left=carried,
        source="trained here" if TRAIN else f"committed ({stored.facts['commit']})")

# %% [markdown]
# Read the table, not a sentence written in advance: it is the numbers of the runs you see.
# What the `demo` runs on record showed, in four points (the whole account, with the
# `smoke` runs and earlier pages: docs/experiments.md, "The collapse experiment"):
#
# - With a gradient through the target both branches moved towards a constant: the one run
#   whose validation std fell well below random init's (partly collapsed by both ratios; on
#   the training rows of section 3 the same run is flagged as complete collapse), and whose
#   probes fell below random init's beyond noise.
# - Without the predictor nothing but the mask token trains: the target keeps random init's
#   weights, shrunk by weight decay, but with BatchNorm statistics of the data (random init
#   keeps 0 and 1), which alone moves its std and rank away from random init's.
# - Copying the target after every step (no EMA) kept the features spread, yet did not
#   beat random init: what the EMA run gained (k-NN and linear beyond two standard errors)
#   was lost. Spread is necessary for useful features, not sufficient.
# - At beta = 0.001 C-JEPA's VICReg term did not move the std, the rank or the probes beyond
#   noise, with or without the EMA, measured against CNN-JEPA's run (k-NN 33.25 % against
#   38.50 %: a gap of 0.053, inside two standard errors of a difference of two such
#   accuracies, about 0.068). Against random init the verdicts differ: C-JEPA's
#   k-NN gain of +0.038 is within noise where CNN-JEPA's +0.090 is not; their linear gains
#   are equal (+0.122). Two runs near a noise threshold can fall on either side of it.
#
# ## 5. C-JEPA: which tensors each VICReg term sees
#
# Secondary sources report that the C-JEPA paper's pseudocode and its Algorithm 1 disagree
# on where VICReg applies (no code is public; `docs/paper.md` lists three readings, each
# with how many sources agree). We implement two and say which runs here. Under reading A,
# the default, the "views" VICReg compares are the target blocks of one image: the
# predictor's output averaged over each block, for the blocks of one multi-block draw on
# this run's grid (blocks are placed independently, so two can coincide; the figure says
# when):

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
# uses $(1 - \beta)\,\mathcal{L}_\text{JEPA}$ instead, not done here). For two batches of
# embeddings $Z, Z'$ of $N$ rows and $D$ dimensions (VICReg, Bardes et al. 2022):
#
# $$\mathcal{L}_\text{inv} = \frac{1}{N D}\sum_{i} \lVert z_i - z'_i \rVert^2, \qquad
#   v(Z) = \frac1D \sum_{d} \max\bigl(0,\, 1 - \sqrt{\operatorname{Var}_i(z_{id}) + \epsilon}
#   \bigr), \qquad \mathcal{L}_\text{var} = \tfrac12\bigl(v(Z) + v(Z')\bigr),$$
#
# $$c(Z) = \frac1D \sum_{d \ne e} \operatorname{Cov}(Z)_{de}^2, \qquad
#   \mathcal{L}_\text{cov} = c(Z) + c(Z'), \qquad \epsilon = 10^{-4} .$$
#
# The variance term is the one that sees complete collapse (section 1): if every row is the
# same, every $\operatorname{Var}$ is 0 and $v$ takes its largest value. The three terms
# written out, checked against the package's (`losses.vicreg_terms`, itself checked
# against lightly's in the tests):

# %% tags=["vicreg-terms"]
def vicreg_by_hand(z_a, z_b, eps=1e-4):
    """VICReg's three terms of two [N, D] batches of embeddings, as the formulas say."""
    n, d = z_a.shape

    def v(z):  # a hinge on each dimension's std over the batch
        return torch.relu(1 - torch.sqrt(z.var(dim=0) + eps)).mean()

    def c(z):  # the squared off-diagonal covariances, / D
        centred = z - z.mean(dim=0)
        cov = centred.T @ centred / (n - 1)
        return (cov.square().sum() - cov.diagonal().square().sum()) / d

    return {"invariance": (z_a - z_b).square().sum() / (n * d),
            "variance": (v(z_a) + v(z_b)) / 2, "covariance": c(z_a) + c(z_b)}


# %%
z_a, z_b = torch.randn(2, 32, 64, generator=torch.Generator().manual_seed(SEED)).unbind(0)
mine, theirs = vicreg_by_hand(z_a, z_b), losses.vicreg_terms(z_a, z_b)
for term in mine:
    print(f"{term:10s} by hand {mine[term].item():.6f}  losses.vicreg_terms "
          f"{theirs[term].item():.6f}")

# %% [markdown]
# Variance and covariance are taken over this process's micro-batch, never gathered. What
# each term sees, under each reading:
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
# run's is printed at the top).
#
# Secondary sources quote the C-JEPA paper's gains for ViTs on ImageNet-1k (our reading, not
# checked against its full text, which this course does not have: linear 72.9 -> 73.7 for
# ViT-B/16 at 600 epochs; docs/paper.md, `data/paper_results.csv`); nobody has measured
# them for CNN-JEPA, and this chapter at `smoke` or `demo` scale does not either.
#
# ## Summary
#
# - Complete collapse (every image the same features) shows as a per-channel std near 0;
#   dimensional collapse (features on a few directions) as an effective rank far below the
#   `min(N - 1, C)` that N rows can span. The rank is scale-free and blind to complete
#   collapse; the std is blind to dimensional collapse; both need many rows (up to 256
#   training images per epoch here, and every validation image).
# - Three ingredients stand against collapse in CNN-JEPA: the stop-gradient on the target, the
#   predictor (here also the only path from the visible cells to the target cells) and the
#   EMA. The table of section 4 shows what removing each did in the runs you see.
# - Collapse diagnostics catch a collapse, not every failure: a run can keep its spread and
#   fail to beat random init.
# - C-JEPA adds VICReg's invariance, variance and covariance terms to the JEPA loss, weighted by
#   beta = 0.001 (25 / 25 / 1 inside): collapse then costs something in the loss, a little.
#   Where the terms apply is ambiguous (secondary sources; our reading); under random
#   masking reading A adds nothing.
#
# ## Check your understanding
#
# 1. A run's loss falls to almost 0 and its effective rank stays near the most its rows can
#    span. Can it have collapsed?
#    <details><summary>Answer</summary>
#
#    Yes, completely: near-constant features plus noise have noise in every direction, so
#    the rank, which reads only the shares of the singular values, is high. The std of the
#    normalised features is what shows it (near 0), and a loss near 0 is what a constant
#    target allows.
#
#    </details>
# 2. Which tensors does the variance term see in reading A?
#    <details><summary>Answer</summary>
#
#    The projections of each target block's mean prediction, over the images of the micro-batch:
#    a hinge on their per-dimension standard deviation.
#
#    </details>
# 3. How does the variance term act against collapse differently from the EMA?
#    <details><summary>Answer</summary>
#
#    If every image had the same features, the standard deviation over the batch would be 0 and
#    the hinge would add its largest penalty, so collapse costs something in the loss; the EMA
#    adds no term at all, it only changes how the target moves. At beta = 0.001 the penalty is
#    at most 0.025 per micro-batch (25 x 1 x 0.001), small next to the JEPA loss (printed in
#    each run's loss panel of section 3), so it discourages collapse rather than forbidding it.
#
#    </details>
#
# ## Exercises
#
# 1. **Derive** the largest value of VICReg's variance term $v(Z)$ and show that a completely
#    collapsed batch reaches it. Then compute it for this chapter's "one vector + 0.1 % noise"
#    features after scaling them to unit norm: does the term see that collapse?
#    <details><summary>Solution</summary>
#
#    Each hinge $\max(0, 1 - \sqrt{\operatorname{Var} + \epsilon})$ is largest when the
#    variance is 0: $1 - \sqrt{\epsilon} = 0.99$. A batch of identical rows has every
#    variance 0, so $v = 0.99$, the largest value. Near-constant unit vectors have variances
#    of about $10^{-6}/C$, so their $v$ is 0.99 too: the term sees complete collapse.
#
#    ```python
#    import torch
#    from jepa_lite import losses
#
#    same = torch.full((16, 8), 3.0)
#    top = 1 - 1e-4 ** 0.5
#    assert abs(losses.variance(same).item() - top) < 1e-6
#    g = torch.Generator().manual_seed(0)
#    near = torch.randn(1, 512, generator=g) + 1e-3 * torch.randn(256, 512, generator=g)
#    near = torch.nn.functional.normalize(near, dim=1)
#    assert abs(losses.variance(near).item() - top) < 1e-3
#    print("largest variance term:", top)
#    ```
#
#    </details>
# 2. Raise `--beta` to 0.01 and 0.1 (`TRAIN = True`, or `jepa-lite pretrain --method cjepa
#    --beta 0.1`). When does the regulariser start to change the std or the effective rank?
#    What does it do to the JEPA part of the loss?
#    <details><summary>Hint</summary>
#
#    Compare `metrics.jsonl` of the runs: the std and rank columns, and the loss minus beta
#    times the VICReg terms.
#
#    </details>
# 3. Switch to reading B (`--cjepa-reading B`): the variance now acts on the context encoder,
#    the network the probes do not read. Does the target's std follow?
#    <details><summary>Hint</summary>
#
#    The target is an average of the context encoder's past weights, so it follows, slowly.
#
#    </details>
#
# ## References
#
# - Mo et al. (2024). Connecting Joint-Embedding Predictive Architecture with Contrastive
#   Self-supervised Learning (C-JEPA). arXiv:2410.19560.
# - Hua et al. (2021). On Feature Decorrelation in Self-Supervised Learning. ICCV 2021.
# - Jing et al. (2022). Understanding Dimensional Collapse in Contrastive Self-supervised
#   Learning. ICLR 2022.
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
