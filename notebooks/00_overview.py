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
# # 00 — CNN-JEPA in one afternoon
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/jepa-lite/jepa_lite/blob/main/notebooks/00_overview.ipynb)
#
# This workbook reproduces **CNN-JEPA** (Kalapos & Gyires-Tóth, 2024): self-supervised
# pretraining of a ResNet with a *Joint-Embedding Predictive Architecture*. Each chapter
# teaches one idea, shows it in figures, and calls the small `jepa_lite` package where the
# logic lives and is tested.
#
# **One idea:** hide part of an image and predict, from what is visible, the *features* a
# second network computes for the hidden part, not its pixels.
#
# > "The proposed method trains an encoder by masking patches of the input image and
# > predicting the latent representation of the masked patches using a predictor." (III-A)
#
# Unlike masked autoencoders, CNN-JEPA predicts **features, not pixels**; unlike SimCLR,
# BYOL or VICReg, it needs **no augmentation zoo and no projector**: the paper names "only
# random resized crop and masking"; the authors' code adds a horizontal flip, and so do we
# (`docs/paper.md`).

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
import matplotlib.pyplot as plt
import torch
from IPython.display import Markdown, display

from jepa_lite import runtime
from jepa_lite.course import profiles, viz
from jepa_lite.course.chapter import start_chapter

run = start_chapter("00_overview", PROFILE, DATA_ROOT, OUT_DIR, DEVICE, SEED)
cfg = run.config
print("device:", runtime.device_report(cfg.device))
print("outputs:", run.dir)

# %% [markdown]
# ## The method in one figure
#
# An image is cut into 32x32-pixel patches — one patch per cell of a ResNet's final 7x7
# feature map at 224 px. Some cells are **targets**, the rest are the **context**.
#
# 1. The **context encoder** sees only the context: it is a *sparse* CNN whose every
#    convolution and pooling output is zeroed at the masked positions, so nothing leaks
#    from the hidden patches (chapter 02).
# 2. Target cells of its feature map are filled with one learnable **mask token**, and a
#    small fully convolutional **predictor** predicts the features there (chapter 03).
# 3. The **target encoder** — an exponential moving average (EMA) of the context encoder —
#    sees the full image; its features at the target cells are what the predictor must hit.
#    The loss counts target cells only (chapter 04).
#
# After pretraining, the target encoder's pooled features are evaluated with frozen
# linear and k-NN probes (chapter 05) and compared with the paper (chapter 06).

# %%
fig = viz.pipeline_figure()
run.savefig(fig, "pipeline")
plt.show()

# %% [markdown]
# ## Where CNN-JEPA sits: latent targets against pixel targets
#
# The paper places itself between two families (II): *reconstruction* methods, which mask
# part of an image and predict its **pixels** (MAE for ViTs, adapted to CNNs by SparK), and
# *instance-discriminative* methods (SimCLR, BYOL, VICReg), which make two augmented views
# agree. I-JEPA "combines the benefits of both approaches by performing masked image
# modeling in the latent space"; CNN-JEPA does that with a ResNet. What each masked-image
# method predicts, and what it does with the hidden part of the input:
#
# | method | encoder | predicts, at the hidden part | the hidden part of the input | predictor / decoder |
# |---|---|---|---|---|
# | MAE (He et al. 2022) | ViT | its **pixels** | dropped: the encoder sees the visible tokens only | a light ViT decoder, with mask tokens |
# | SparK (Tian et al. 2023) | ResNet | its **pixels** | sparse convolutions keep it empty at every layer; before decoding, *densification* fills the holes with learned mask embeddings | a hierarchical CNN decoder |
# | I-JEPA (Assran et al. 2023) | ViT | the **features** a target encoder (EMA) gives each of 4 target blocks, each block predicted separately | dropped from the context block | a narrow ViT, with a mask token and positional embeddings per target |
# | CNN-JEPA (this paper) | ResNet | the **features** the target encoder (EMA) gives the hidden cells: the union of 4 blocks, one target | sparse (masked) convolutions, re-masked after every layer (chapter 02); one mask token fills the hidden cells | 3 depthwise-separable conv layers (chapter 03) |
#
# A CNN cannot drop tokens the way a ViT does: a convolution mixes every position under its
# kernel, so the hidden part must be masked again after every layer, as SparK's encoder
# does too. Where SparK then fills the holes and decodes pixels, CNN-JEPA fills them with
# one token and predicts features. Sources: the CNN-JEPA paper (II, III), the I-JEPA paper
# and code (`docs/paper.md`), the MAE and SparK papers (references below).
#
# ## Chapters
#
# | chapter | idea | package module |
# |---|---|---|
# | 00 overview | this page | `config`, `course` |
# | 01 masking | which 32 px cells are targets: multi-block, random, mixed | `masking` |
# | 02 sparse encoder | masked convolution and visible-only batch norm | `sparse` |
# | 03 predictor | depthwise-separable conv predictor and the mask token | `predictor` |
# | 04 pretraining | EMA, schedules, the training loop, collapse checks | `train`, `methods/cnn_jepa` |
# | 05 probes | frozen-feature k-NN and linear probes | `probes` |
# | 06 reproduction | our numbers next to the paper's | `report` |
# | 07 C-JEPA | VICReg's terms added to the JEPA loss, against collapse | `methods/cjepa`, `losses` |
# | 08 comparison | CNN-JEPA, C-JEPA, SimCLR, BYOL, VICReg on one backbone and probes | `methods/`, `compare` |
# | 09 ablations | the authors' ablations (predictor, kernel, convs, masking) as a sweep | `sweep` |
#
# Chapters 05 and 06 read chapter 04's run and chapter 05's probes; opened on their own,
# they make what is missing first (chapter 04's run with the profile's recipe, chapter 05's
# probes) and say so. Chapters 07, 08 and 09 compare many runs: opened on their own they
# read the runs a `demo` course committed (`docs/results/demo/data`, seconds), and train
# their own only when asked (`TRAIN = True`; the course runner trains).

# %% [markdown]
# ## Profiles: one notebook, four sizes
#
# Every chapter starts with a **parameters** cell of plain literals. `PROFILE` picks how big
# a run is; the package resolves it into a full configuration (`jepa_lite.config`).

# %%
display(Markdown(profiles.profiles_table()))

# %% [markdown]
# ## The data of this profile
#
# `smoke` and `demo` need no download: they generate an ImageFolder data set once and reuse
# it. Each image is a scene of 3-5 objects of one kind (the class), each with its own tint,
# position, size and rotation. The kind is the one thing that the visible part of a scene
# tells about its hidden part, so it is what a JEPA can learn here (chapter 05 says, with two
# standard errors, whether this run did).
# `full` reads ImageNet-100 from `DATA_ROOT`.

# %%
if cfg.profile.synthetic is None and DATA_ROOT is None:
    print(f"the {PROFILE} profile reads DATA_ROOT; set it to see samples of the data set")
else:
    data_root = cfg.data_root()
    print("data root:", data_root)
    fig = viz.fig_dataset(data_root)
    run.savefig(fig, "data_samples")
    plt.show()

# %% [markdown]
# The `gpu` profile trains on *busy* scenes instead (right): the same kinds of object in any
# colour, on textured and unevenly lit backgrounds, among distractors, partly hidden by
# occluders. Photographs look more like the right half. At CPU sizes no self-supervised
# method learned them beyond chance (docs/experiments.md, "Busy scenes"), which is why
# `smoke` and `demo` use the plain ones.

# %%
fig = viz.fig_scene_kinds(size=cfg.profile.image_size, seed=SEED)
run.savefig(fig, "scene_kinds")
plt.show()

# %% [markdown]
# ## Running the course, and Colab
#
# > **Engineering notes** (how the chapters are run; none of it is part of the method)
# >
# > From a clone of the repository, the course runner executes every chapter with papermill
# > and writes executed notebooks, figures and a summary:
# >
# > ```bash
# > jepa-lite course --profile smoke --out outputs            # CPU, minutes, generated data
# > jepa-lite course --profile full --data-root /data/imagenet100 --device cuda
# > jepa-lite course --only 01 --profile demo                  # one chapter
# > ```
# >
# > `outputs/<chapter>.ipynb` is the executed notebook, `outputs/<chapter>/` holds its
# > figures and `metrics.json`, and `outputs/summary.md` lists every chapter's status,
# > duration and key numbers. A failing chapter is reported by name and cell; the others
# > still run and keep their outputs.
# >
# > **Colab.**
# >
# > The badge at the top opens a chapter in Colab. The install cell above runs only there;
# > it installs `jepa_lite` and leaves Colab's PyTorch alone. For a GPU choose
# > *Runtime > Change runtime type > GPU*; Colab's T4 has no fast bf16, so training uses
# > fp16 with a gradient scaler there. On a GPU, set `PROFILE = "gpu"` in every chapter's
# > parameters cell (or run `jepa-lite course --profile gpu`): busy generated scenes at
# > 224 px on the paper's 7x7 grid, long enough that CNN-JEPA's features beat random init
# > (this profile on one H200: linear probe 0.380 against 0.124 for random init, chapters 04
# > and 05 in 8.1 minutes; `docs/results/gpu`, `docs/benchmarks.md`, "The gpu profile"). The
# > training images are decoded once into GPU memory, so Colab's 2 vCPUs only draw random
# > numbers.

# %%
run.log(device=str(cfg.device), cuda_available=torch.cuda.is_available(),
        torch_version=torch.__version__, profiles=len(profiles.PROFILES),
        device_name=runtime.device_name(cfg.device))
print(run.metrics)

# %% [markdown]
# ## Exercises
#
# 1. **Implement** the mask grid of an image: for an image of `size` pixels and a trunk of
#    total stride 32, how many cells per side does it have, and which sizes are refused?
#    Check your function against `masking.grid_size`, and find the size that gives the
#    paper's 7x7 grid.
#    <details><summary>Solution</summary>
#
#    One cell per 32x32 patch: `size // 32` cells per side, for sizes that are multiples of
#    32 with at least two cells (masking needs a context and a target). 224 px gives 7x7.
#
#    ```python
#    import pytest
#    from jepa_lite import masking
#
#
#    def cells_per_side(size, stride=32):
#        if size % stride or size < 2 * stride:
#            raise ValueError(f"image size {size} is not a multiple of {stride} of at least "
#                             f"{2 * stride}")
#        return size // stride
#
#
#    for size in range(32, 513, 16):
#        if size % 32 or size < 64:
#            with pytest.raises(ValueError):
#                masking.grid_size(size)
#            with pytest.raises(ValueError):
#                cells_per_side(size)
#        else:
#            assert masking.grid_size(size) == (cells_per_side(size),) * 2
#    assert cells_per_side(224) == 7
#    ```
#
#    </details>
#
# ## References
#
# - Kalapos et al. (2024). CNN-JEPA: Self-Supervised Pretraining Convolutional Neural Networks
#   Using Joint Embedding Predictive Architecture.
# - Mo et al. (2024). Connecting Joint-Embedding Predictive Architecture with Contrastive
#   Self-supervised Learning (C-JEPA). arXiv:2410.19560.
# - Assran et al. (2023). Self-Supervised Learning From Images With a Joint-Embedding Predictive
#   Architecture (I-JEPA). CVPR 2023.
# - Tian et al. (2023). Designing BERT for Convolutional Networks: Sparse and Hierarchical
#   Masked Modeling (SparK). ICLR 2023.
# - Liu et al. (2015). Sparse Convolutional Neural Networks. CVPR 2015 (cited by CNN-JEPA for
#   sparse convolutions).
# - Grill et al. (2020). Bootstrap Your Own Latent: A New Approach to Self-Supervised Learning
#   (BYOL). NeurIPS 2020.
# - Chen et al. (2020). A Simple Framework for Contrastive Learning of Visual Representations
#   (SimCLR). ICML 2020.
# - Bardes, Ponce and LeCun (2022). VICReg: Variance-Invariance-Covariance Regularization for
#   Self-Supervised Learning. ICLR 2022.
# - Tian, Chen and Ganguli (2021). Understanding Self-Supervised Learning Dynamics without
#   Contrastive Pairs. ICML 2021.
# - He et al. (2022). Masked Autoencoders Are Scalable Vision Learners. CVPR 2022.
# - He et al. (2016). Deep Residual Learning for Image Recognition. CVPR 2016.
