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
# # 01 — Masking geometry at 32-pixel patches
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/jepa-lite/jepa_lite/blob/main/notebooks/01_masking.ipynb)
#
# **One idea:** a CNN-JEPA mask lives on the grid of the ResNet's *last* feature map. Which
# cells are hidden decides what the predictor has to infer — and two small bugs in the
# authors' public code change that distribution in a way you can see.
#
# > "In order to keep the masking consistent with feature map resolution, we use masks with
# > a patch size of 32x32 pixels, which corresponds to 1x1 spatial dimensions ('pixels') for
# > final feature maps." (III-E)
#
# Code: `jepa_lite/masking.py` (`sample_masks`, `block_size`, `draw_blocks`, `stage_masks`).

# %% tags=["parameters"]
PROFILE = "smoke"  # smoke | demo | gpu | full
DATA_ROOT = None  # not used by this chapter
OUT_DIR = None  # None: outputs/ of the checkout
DEVICE = "auto"  # auto | cpu | cuda
SEED = 0
INTERACTIVE = True  # False under papermill: static figures, no widget

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
from IPython.display import display

from jepa_lite import masking
from jepa_lite.course import viz
from jepa_lite.course.chapter import start_chapter

run = start_chapter("01_masking", PROFILE, DATA_ROOT, OUT_DIR, DEVICE, SEED)
cfg = run.config
IMAGE_SIZE = 224  # the paper's resolution: a 7x7 grid
grid = masking.grid_size(IMAGE_SIZE)
image = viz.load_image("grace_hopper", IMAGE_SIZE)
gen = torch.Generator().manual_seed(SEED)
print(f"profile {PROFILE}: {cfg.profile.mask_draws} masks per statistic; grid {grid}")

# %% [markdown]
# ## 1. Patches of 32 pixels
#
# A ResNet halves the resolution five times (conv1, max-pool, layer2, layer3, layer4):
# 224 px become 7x7. One mask cell is one 32x32 patch, so a hidden patch is exactly one
# position of the final feature map. Image sizes must therefore be multiples of 32.

# %%
fig = viz.fig_grid(image, IMAGE_SIZE)
run.savefig(fig, "grid")
plt.show()

# %% [markdown]
# ## 2. Multi-block masking: four blocks, one target
#
# I-JEPA draws *four target blocks* and predicts each separately. CNN-JEPA keeps the four
# blocks but treats their **union as one target region**; the context is everything
# outside it. The block size is drawn **once per batch** (a target area of 0.15–0.2 of the
# grid and an aspect ratio of 0.75–1.5, rounded to whole cells); positions are drawn per
# image, each block independently of the others, so two blocks can land on the same cells
# (the figure names such a block). Rounding matters on a 7x7 grid: the blocks come out at 6
# to 12 cells (12–24.5 % of the grid), mostly 3x3 = 9 cells (section 5 draws the shapes of
# 2,000 draws).

# %%
size = masking.block_size(grid, (0.15, 0.2), (0.75, 1.5), gen)
blocks = masking.draw_blocks(1, grid, size, num_blocks=4, generator=gen)[0]
print(f"block size this batch: {size[0]} x {size[1]} cells")
print(masking.describe_geometry(IMAGE_SIZE, 32))
fig = viz.fig_blocks(image, blocks)
run.savefig(fig, "blocks_union")
plt.show()

# %% [markdown]
# The size rule, for a grid of $H \times W$ cells, with $s \sim U(0.15, 0.2)$ and
# $a \sim U(0.75, 1.5)$ drawn once per batch (`masking.block_size`, after I-JEPA's code):
#
# $$\text{area} = \lfloor s\,H W \rfloor, \qquad h = \operatorname{round}\bigl(\sqrt{
#   \text{area} \cdot a}\bigr), \qquad w = \operatorname{round}\bigl(\sqrt{\text{area} / a}
#   \bigr),$$
#
# each side then kept between 1 and one cell less than the grid's. On 7x7, $s$ from 0.15 to
# 0.2 gives an area of 7 to 9 cells; the square roots and the rounding turn that into five
# shapes, 3x3 most often, then 3x2, 2x3, 4x3 and 4x2 (`block_shapes` below counts them).
# The rule written out, checked against the package on 2,000 draws of $(s, a)$:

# %% tags=["block-size"]
def block_size_by_hand(grid, u_scale, u_aspect, scale=(0.15, 0.2), aspect=(0.75, 1.5)):
    """A block's (h, w) on ``grid`` from two uniform numbers in [0, 1): the size rule."""
    gh, gw = grid
    s = scale[0] + u_scale * (scale[1] - scale[0])
    a = aspect[0] + u_aspect * (aspect[1] - aspect[0])
    area = math.floor(s * gh * gw)
    h, w = round(math.sqrt(area * a)), round(math.sqrt(area / a))
    return max(1, min(h, gh - 1)), max(1, min(w, gw - 1))


# %%
draws, agree = torch.Generator().manual_seed(SEED), 0
for _ in range(2000):
    u_scale, u_aspect = torch.rand(2, generator=draws.clone_state()).tolist()
    agree += block_size_by_hand(grid, u_scale, u_aspect) == masking.block_size(
        grid, (0.15, 0.2), (0.75, 1.5), draws)
print(f"by hand and masking.block_size agree on {agree} of 2000 draws")

# %% [markdown]
# ## 3. Random, multi-block, mixed
#
# *Random* masking hides 60 % of the cells (29 of 49) scattered anywhere; *multi-block*
# hides a few contiguous regions; *mixed* uses multi-block for a batch with probability 0.75
# and random otherwise. **Paper vs code:** the paper describes multi-block masking only
# (III-E); the authors' code defaults to mixed (`docs/paper.md`), and so do we. Their
# ablation runs (their repository's W&B notebook, `WandbPlots.ipynb`, in
# `data/paper_results.csv`) give on ImageNet-100, linear top-1, mixed 73.26 %, multi-block
# 73.02 %, random 57.64 %, with no spread. The paper gives neither these numbers nor a
# reason. I-JEPA's own ablation of masking strategies found multi-block well ahead of random
# for ViTs, and argued that a target must be large enough to be about the object rather than
# its texture (Assran et al. 2023).
#
# Our own short runs do **not** reproduce the ordering: in the `demo` sweep of chapter 09
# (generated scenes, ResNet-10 at 128 px, a 4x4 grid, 4 epochs, one run each, 400
# validation images; docs/results/demo) random masking scored 52.75 % linear top-1, mixed
# 48.5 % and multi-block 55.25 %. On a 4x4 grid a "block" is one to four cells, so the
# strategies differ far less than on 7x7, and 10 to 27 of 400 images is within one short
# run's noise (two standard errors of a difference there: about 7 points). Whether the authors' gap comes from block size can only be tested at the
# paper's grid (the `gpu` and `full` profiles).

# %%
examples = {s: torch.cat([masking.sample_masks(1, grid, s, gen) for _ in range(5)])
            for s in ("random", "multiblock", "mixed")}
fig = viz.fig_strategies(image, examples)
run.savefig(fig, "strategies")
plt.show()

# %% [markdown]
# ## 4. The mask at every ResNet stage
#
# The sparse encoder (chapter 02) multiplies every conv and pooling output by the mask at
# that layer's resolution: the 7x7 mask repeated to 112, 56, 28, 14 and 7 at 224 px. The
# pattern is the same at every stage; what changes is how many feature positions one mask
# cell covers. The panels zoom on the 2x2 cells framed in black, one square per position.

# %%
fig = viz.fig_stages(image, examples["multiblock"][0])
run.savefig(fig, "stages")
plt.show()

# %% [markdown]
# ## 5. Paper vs code: two quirks of the official code, measured
#
# > **A note on the authors' implementation, not on the method.** The masking described
# > above is the paper's; the code that made the paper's tables differs in two details,
# > which change which cells are ever targets. Skip to section 6 if you only want the idea.
# >
# > The authors' code (inherited from I-JEPA) has two quirks; `official=True` reproduces
# > them, the default fixes them:
# >
# > 1. **Scale and aspect ratio come from one random number**, so size and shape are
# >    perfectly correlated: a big block is always a tall one.
# > 2. **Block positions use an exclusive upper bound that is one too small**
# >    (`randint(0, H - h)`), so a block never reaches the last row or column.
#
# First the block shapes each version can produce:

# %%
shapes = {name: [masking.block_size(grid, (0.15, 0.2), (0.75, 1.5), gen, official=off)
                 for _ in range(2000)]
          for name, off in (("official (one random number)", True),
                            ("corrected (independent)", False))}
fig = viz.fig_block_shapes(shapes, grid)
run.savefig(fig, "block_shapes")
plt.show()

# %% [markdown]
# Now the probability that each cell is a target, over many draws. With the official
# code the last row and column are **never** targets under multi-block masking: the
# predictor is never asked about the bottom and right edges of the image. The corrected
# masks reach every cell, but not evenly: a block covers a corner cell only from the one
# position in that corner, and a centre cell from every position that overlaps it, so the
# corners are targets far less often than the centre (printed below the figures). That
# *centre bias* is the geometry of placing blocks inside the grid, not a bug; it stays in
# the fixed masks too. It means the predictor learns to fill the middle of an image far
# more often than its corners, and that a corner target, when it comes, has context on two
# sides only.

# %%
stats = {}
for strategy in ("multiblock", "mixed", "random"):
    for name, off in (("official", True), ("corrected", False)):
        stats[strategy, name] = masking.target_statistics(
            cfg.profile.mask_draws, grid, strategy, generator=gen, official=off)
fig = viz.fig_heatmaps({f"{s}, {n}": p for (s, n), (p, _) in stats.items() if s != "random"})
run.savefig(fig, "target_heatmaps")
plt.show()

# %%
fig = viz.fig_fraction_hist({f"{s}, {n}": f for (s, n), (_, f) in stats.items()
                             if (s, n) != ("random", "official")}, grid)
run.savefig(fig, "target_fraction_hist")
plt.show()

# %%
p_off, f_off = stats["multiblock", "official"]
p_fix, f_fix = stats["multiblock", "corrected"]
run.log(
    grid=f"{grid[0]}x{grid[1]}",
    mask_draws=cfg.profile.mask_draws,
    target_fraction_multiblock_official=f_off.mean().item(),
    target_fraction_multiblock=f_fix.mean().item(),
    target_fraction_mixed=stats["mixed", "corrected"][1].mean().item(),
    target_fraction_random=stats["random", "corrected"][1].mean().item(),
    # mean P(target) of the cells in the last row and the last column, multi-block masks
    p_target_last_row_col_official=torch.cat([p_off[-1], p_off[:, -1]]).mean().item(),
    p_target_last_row_col=torch.cat([p_fix[-1], p_fix[:, -1]]).mean().item(),
    min_context_cells=int(((1 - f_fix) * grid[0] * grid[1]).round().min().item()),
    # the centre bias of the corrected multi-block masks: corner cells against the centre
    p_target_corners=torch.stack([p_fix[0, 0], p_fix[0, -1], p_fix[-1, 0],
                                  p_fix[-1, -1]]).mean().item(),
    p_target_centre=p_fix[grid[0] // 2, grid[1] // 2].item(),
    block_shapes_official=len(set(shapes["official (one random number)"])),
    block_shapes=len(set(shapes["corrected (independent)"])),
)
for k, v in run.metrics.items():
    print(f"{k:38s} {v}")

# %% [markdown]
# The official multi-block masks hide about 44 % of the grid, the corrected ones a little
# more (the edge cells are now available); random masking always hides 29 of 49 cells.
#
# ## 6. Explore
#
# Change the strategy, the number of blocks, the scale and aspect ranges, the mask ratio of
# random masking, the probability of multi-block in mixed masking, the seed and the image;
# tick *official code* to see the quirks. Impossible settings (for example a *min context*
# larger than random masking leaves: 20 of 49 cells at mask ratio 0.6) are reported above
# the picture, which keeps the last good draw.

# %%
if INTERACTIVE:
    explorer = viz.MaskExplorer(image_size=IMAGE_SIZE)
    display(explorer.widget)
else:  # papermill / CI: a static picture of the explorer's first view (seed 0), no widgets
    first_view = masking.sample_masks(4, grid, "mixed", torch.Generator().manual_seed(0))
    fig = viz.render_masks(image, first_view)
    run.savefig(fig, "explorer_static")
    display(fig)

# %% [markdown]
# ## Summary
#
# - A mask is a grid of cells, one per patch of the trunk's total stride: 32 px for a ResNet
#   (224 px -> 7x7), 16 px for the small-image trunks (`-s16`, 112 px -> 7x7).
# - Multi-block: 4 blocks of a target area of 15-20 % of the grid, rounded to whole cells (6-12
#   cells on 7x7, mostly 9; aspect 0.75-1.5; one size per batch); their union is the target,
#   everything else the context, with at least `min_context` cells.
# - Random hides 60 % of the cells anywhere; mixed, the authors' default, is multi-block for a
#   batch with probability 0.75. The authors' ablation runs (their repository): mixed 73.26,
#   multi-block 73.02, random 57.64 linear top-1 (ImageNet-100).
# - The official code has two quirks: scale and aspect ratio come from one random number, and
#   blocks never touch the last row or column. Fixed, every cell can be a target, the
#   corners still far less often than the centre: the geometry of blocks inside a grid.
#
# ## Check your understanding
#
# 1. Why is the grid 7x7 at 224 px for a ResNet-50?
#    <details><summary>Answer</summary>
#
#    The trunk halves the resolution five times (stride-2 conv1, the max-pool, three stride-2
#    stages): 224 / 32 = 7. A mask cell must be one cell of the last feature map, so that a
#    target cell is exactly one predicted feature vector.
#
#    </details>
# 2. Four blocks of at most 12 cells each: why is the target usually well under 48 of 49 cells?
#    <details><summary>Answer</summary>
#
#    The blocks are placed independently and overlap; the target is their union, which is
#    smaller than the sum of their areas.
#
#    </details>
# 3. At 96 px with a plain ResNet the grid is 3x3. What does multi-block masking become?
#    <details><summary>Answer</summary>
#
#    Every block is a single cell (the block area, 15-20 % of 9 cells, rounds down to one cell),
#    so it is scattered one-cell masking, close to random masking, the setting that scored
#    worst. The `-s16` trunks give 112 px a 7x7 grid. The smoke and demo profiles pretrain at
#    128 px, a 4x4 grid with blocks of 1-4 cells (a quarter of them one cell:
#    `masking.describe_geometry(128, 32)`); smoke's many-run chapters (07-09) train at 64 px,
#    a 2x2 grid of one-cell blocks.
#
#    </details>
#
# ## Exercises
#
# 1. **Derive** which block shapes the size rule of section 2 can give on the 4x4 grid of
#    the `smoke` and `demo` profiles (128 px), by running the rule over a fine grid of
#    scales and aspect ratios. Which share of single-cell blocks do you expect?
#    <details><summary>Solution</summary>
#
#    The area is $\lfloor 16 s \rfloor$ = 2 or 3 cells for $s$ in 0.15-0.2 (2 up to
#    $s = 0.1875$); the square roots round to 1x1, 1x2, 2x1 or 2x2, the shapes
#    `masking.block_sizes` draws. A 2-cell area gives 1x1 when $\sqrt{2a}$ and
#    $\sqrt{2/a}$ both round down, that is $a < 1.125$ and $a > 0.89$ together: about a
#    quarter of the draws.
#
#    ```python
#    import math
#
#    from jepa_lite import masking
#
#
#    def shape(grid, s, a):
#        area = math.floor(s * grid[0] * grid[1])
#        h, w = round(math.sqrt(area * a)), round(math.sqrt(area / a))
#        return max(1, min(h, grid[0] - 1)), max(1, min(w, grid[1] - 1))
#
#
#    steps = 300
#    shapes = [shape((4, 4), 0.15 + 0.05 * i / steps, 0.75 + 0.75 * j / steps)
#              for i in range(steps) for j in range(steps)]
#    assert set(shapes) == {(1, 1), (1, 2), (2, 1), (2, 2)} == set(masking.block_sizes((4, 4)))
#    single = shapes.count((1, 1)) / len(shapes)
#    assert abs(single - masking.block_sizes((4, 4))[(1, 1)]) < 0.05
#    print(f"single-cell blocks: {single:.0%}")
#    ```
#
#    </details>
# 2. Set *blocks* to 1 and the scale to 0.5-0.6: how much context is left, and why would the
#    predictor find this task harder?
#    <details><summary>Hint</summary>
#
#    Count the cells of one block on a 7x7 grid at scale 0.55, and how far the centre of the
#    block is from the nearest context cell.
#
#    </details>
# 3. With `official=True`, what is P(target) of the bottom-right cell? Which part of the image
#    does the encoder therefore never learn to predict?
#    <details><summary>Hint</summary>
#
#    Look at the heat map of P(target) with the quirks: the last row and column.
#
#    </details>
# 4. In the explorer, raise *min context* to 40 of 49 cells under multi-block masking. What do
#    the masks become, and why?
#    <details><summary>Hint</summary>
#
#    Four blocks of about 9 cells rarely leave 40 cells free: `masking.sample_masks` redraws
#    the positions of such an image a few times, then keeps one block only (and shrinks a block
#    that alone would leave too little context).
#
#    </details>
#
# ## References
#
# - Kalapos et al. (2024). CNN-JEPA: Self-Supervised Pretraining Convolutional Neural Networks
#   Using Joint Embedding Predictive Architecture.
# - Assran et al. (2023). Self-Supervised Learning From Images With a Joint-Embedding Predictive
#   Architecture (I-JEPA). CVPR 2023.
#
# **Next:** chapter 02 builds the sparse encoder that uses these masks.
