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
# # 02 — The sparse encoder: a CNN that never sees the targets
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/jepa-lite/jepa_lite/blob/main/notebooks/02_sparse_encoder.ipynb)
#
# **One idea:** a convolution mixes every pixel under its kernel, so a plain ResNet lets
# the hidden patches leak into the features of the visible ones. CNN-JEPA's context
# encoder zeroes every conv and pooling output at the masked positions, and computes batch
# norm statistics from visible positions only.
#
# > "In practice, we implement sparse convolutions by selectively masking the outputs of
# > standard convolutional layers." (III-B)
#
# Code: `jepa_lite/encoders/sparse.py` (`sparse_trunk`, `SparseBatchNorm2d`), `jepa_lite/encoders/resnet.py`
# (`dense_trunk`), `jepa_lite/course/analysis.py` (the numbers behind the figures).

# %% tags=["parameters"]
PROFILE = "smoke"  # smoke | demo | gpu | full
DATA_ROOT = None  # not used by this chapter
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
import copy

import matplotlib.pyplot as plt
import torch

from jepa_lite import masking
from jepa_lite.course import analysis, viz
from jepa_lite.course.chapter import start_chapter
from jepa_lite.data import folders
from jepa_lite.encoders import resnet, sparse

run = start_chapter("02_sparse_encoder", PROFILE, DATA_ROOT, OUT_DIR, DEVICE, SEED)
cfg = run.config
ARCH = cfg.train_config().arch
IMAGE_SIZE = 224
grid = masking.grid_size(IMAGE_SIZE, resnet.patch_of(ARCH))
gen = torch.Generator().manual_seed(SEED)
dense = resnet.dense_trunk(ARCH).eval()
context = sparse.sparse_trunk(ARCH).eval()
context.load_state_dict(dense.state_dict())  # the same weights: only the layers differ
image = folders.eval_transform(IMAGE_SIZE)(viz.load_image("grace_hopper", IMAGE_SIZE))[None]
mask = masking.sample_masks(1, grid, "multiblock", gen)
print(f"{ARCH} trunk, {sum(p.numel() for p in dense.parameters()) / 1e6:.1f} M parameters")

# %% [markdown]
# ## 1. A dense CNN leaks the hidden patches
#
# Change only the pixels *inside* the target patches and watch every stage's output. In a
# dense ResNet the change spreads with the receptive field until, at the last stage, the
# features of visible cells depend on what is hidden — the predictor could simply read the
# answer. In the sparse encoder nothing changes, anywhere, at any stage.

# %%
hidden = masking.pixel_mask(mask).unsqueeze(1)
altered = torch.where(hidden, torch.randn_like(image) * 2, image)  # new content in targets
influence = {"dense": analysis.masked_pixel_influence(dense, image, altered, mask),
             "sparse": analysis.masked_pixel_influence(context, image, altered, mask)}
stages = ["conv1", "maxpool", "layer1", "layer2", "layer3", "layer4"]
fig = viz.fig_leak({k: {s: v[s] for s in stages} for k, v in influence.items()}, mask[0])
run.savefig(fig, "leak")
plt.show()

# %%
visible7 = ~mask[0]
leak_dense = influence["dense"]["layer4"][visible7].max().item()
leak_sparse = max(v.max().item() for v in influence["sparse"].values())
print(f"largest change of a visible layer4 feature: dense {leak_dense:.3g}, "
      f"sparse {leak_sparse:.3g} (at any stage)")

# %% [markdown]
# ## 1b. The honest alternative: a dense CNN on the zero-filled image
#
# Feeding the dense trunk the whole image is a straw man: nobody would. The real alternative
# to sparse layers is to zero the hidden pixels and run a plain dense CNN (the comparison
# SparK makes). It cannot see the hidden content either. What differs is what happens to the
# zeros: a dense layer treats them as image. Its convolutions spread the edge's features into
# the hole and BatchNorm turns the zeros into non-zero values (and averages them into its
# statistics: section 3), so after a few layers much of the hole holds values made from
# its edge, which the next layers read as content. The sparse trunk keeps the hole empty at every
# stage. Left: the share of masked positions that are not zero, per stage. Right: how far the
# visible cells' last-stage features are from the target encoder's (the same weights on the
# whole image), by their distance to the hole. Both with batch statistics, as in pretraining
# (`analysis.zero_filled_vs_sparse`).

# %%
scenes = [folders.eval_transform(IMAGE_SIZE)(viz.load_image(f"generated:{kind}", IMAGE_SIZE))
          for kind in ("star", "disc", "ring")]
batch4 = torch.stack([image[0], *scenes])
masks4 = masking.sample_masks(4, grid, "multiblock", gen)
honest = analysis.zero_filled_vs_sparse(dense, batch4, masks4)
distance = analysis.cell_distance(masks4)
fig = viz.fig_hole_filling(honest["filled"], honest["error"], distance, ~masks4)
run.savefig(fig, "zero_filled_vs_sparse")
plt.show()
for name, stages in honest["filled"].items():
    print(f"{name:20s} masked positions not zero:",
          ", ".join(f"{s} {100 * v:.0f}%" for s, v in stages.items()))
running = analysis.zero_filled_vs_sparse(dense, batch4, masks4, train_mode=False)
for mode, errors in (("batch statistics", honest["error"]),
                     ("running statistics", running["error"])):
    print(f"|f - t| / |t| of visible cells by distance to the hole, {mode}:")
    for name, err in errors.items():
        print(f"  {name:20s}", ", ".join(
            f"{int(d)}: {err[~masks4 & (distance == d)].mean().item():.2f}"
            for d in distance[~masks4].unique()))

# %% [markdown]
# Read the right panel as a measurement, not a foregone conclusion. Sparse layers do not
# promise visible features equal to the target's: near the hole, both encoders' windows hold
# zeros where the target saw image, and which of the two ends up closer depends on the
# weights (here: random initialisation), the masks and BatchNorm's mode. Compare the two
# printouts: with batch statistics, as in pretraining, and with running statistics. What
# sparse layers promise is the left panel: the hole
# stays a hole, so neither its content nor values invented from its edge reach the context
# representation, and BatchNorm's statistics are those of the image.

# %% [markdown]
# ## 2. Receptive fields: why one masked patch reaches everything
#
# Each stage sees a wider window of the image (printed below for this trunk). Once the window
# is wider than the image, a feature near the centre sees every patch; well before that,
# every feature sees patches far from its own cell, so without sparse layers hidden pixels
# reach the context features. Where that happens depends on the trunk (our layer arithmetic,
# `analysis.receptive_fields`, checked against the gradient in the tests): ResNet-50, the
# paper's, has a 267 px window at `layer3` and 427 px at `layer4`; the small ResNet-10 of the
# CPU profiles 99 px at `layer3` and 195 px at `layer4`, never wider than a 224 px image.

# %%
fields = analysis.receptive_fields(dense)
fig = viz.fig_receptive_fields(fields, IMAGE_SIZE)
run.savefig(fig, "receptive_fields")
plt.show()
for name, (rf, stride) in fields.items():
    print(f"{name:8s} receptive field {rf:4d} px, stride {stride:2d}")
wider = [name for name, (rf, _) in fields.items() if rf > IMAGE_SIZE]
print(f"{ARCH}: the first stage whose window is wider than {IMAGE_SIZE} px: "
      f"{wider[0] if wider else 'none'}")

# %% [markdown]
# The recursion behind the bars (`analysis.receptive_fields`, layer by layer along the main
# path; $k$ kernel, $d$ dilation, $s$ stride, $j$ the distance in input pixels between
# neighbouring outputs, $r_0 = j_0 = 1$):
#
# $$r_l = r_{l-1} + (k_l - 1)\, d_l\, j_{l-1}, \qquad j_l = j_{l-1}\, s_l .$$
#
# conv1 (7x7, stride 2): $r = 1 + 6 = 7$, $j = 2$; the 3x3 stride-2 max-pool adds
# $2 \cdot 2 = 4$: $r = 11$, $j = 4$, the printed `maxpool` row. The tests check every
# stage against the reach of the gradient.
#
# ## 3. The sparse batch norm
#
# After masking, most positions of a feature map are zeros that carry no information. A
# dense BatchNorm would average them in: its mean shrinks by the visible fraction and its
# variance is distorted, and both would change with the mask. `SparseBatchNorm2d` computes
# mean and variance over visible positions only (as masked sums: no data-dependent shapes,
# so no GPU synchronisation) and keeps the masked positions at zero.

# %%
train_batch = folders.eval_transform(IMAGE_SIZE)(viz.load_image("generated:star", IMAGE_SIZE))
batch = torch.cat([image, train_batch[None]])
masks = masking.sample_masks(2, grid, "multiblock", gen)
conv_out = analysis.stage_outputs(context, batch, masks)["conv1"]  # input of bn1, zeros masked
keep = masking.stage_masks(masks)[2].unsqueeze(1).logical_not().float()
visible_mean = (conv_out * keep).sum((0, 2, 3)) / keep.sum()
dense_mean = conv_out.mean((0, 2, 3))
fraction = keep.mean().item()
fig = viz.fig_bn_statistics(dense_mean.detach(), visible_mean.detach(), fraction)
run.savefig(fig, "bn_statistics")
plt.show()

# %% [markdown]
# With $k_{nhw} \in \{0, 1\}$ the mask at a layer's resolution (1 = visible; chapter 01's
# mask repeated), the image enters with its hidden pixels zeroed, and a sparse convolution
# and the sparse batch norm after it compute, per channel $c$:
#
# $$y = k \odot (W * x), \qquad
#   \mu_c = \frac{\sum_{n,h,w} k_{nhw}\, y_{nchw}}{\sum_{n,h,w} k_{nhw}}, \qquad
#   \sigma_c^2 = \frac{\sum_{n,h,w} k_{nhw} (y_{nchw} - \mu_c)^2}{\sum_{n,h,w} k_{nhw}},$$
#
# $$\operatorname{BN}(y)_{nchw} = k_{nhw} \Bigl(\gamma_c \frac{y_{nchw} - \mu_c}
#   {\sqrt{\sigma_c^2 + \epsilon}} + \beta_c\Bigr).$$
#
# A dense BatchNorm divides by all $N H W$ positions instead of the $\sum k$ visible ones:
# its mean is the visible mean times the visible fraction (the red line above), and its
# $\beta_c$ would fill the hole again. Both layers written out, against the package's sparse
# trunk on the same images and masks (its `conv1` and `bn1`, training mode):

# %% tags=["sparse-bn"]
def masked_conv(conv, x, keep):
    """A sparse convolution: the dense convolution, then zero where ``keep`` is 0."""
    return conv._conv_forward(x, conv.weight, conv.bias) * keep


def masked_batch_norm(y, keep, weight, bias, eps=1e-5):
    """BatchNorm with the mean and variance of the visible positions only, re-masked."""
    n = keep.sum()  # visible positions (the same for every channel)
    mean = (y * keep).sum((0, 2, 3)) / n
    var = ((y - mean[:, None, None]) * keep).square().sum((0, 2, 3)) / n
    normalised = (y - mean[:, None, None]) / torch.sqrt(var[:, None, None] + eps)
    return keep * (weight[:, None, None] * normalised + bias[:, None, None])


# %%
trainable = copy.deepcopy(context).train()  # batch statistics, as in pretraining
pixels = batch * masking.pixel_mask(masks).unsqueeze(1).logical_not()  # hidden pixels zeroed
by_hand = masked_batch_norm(masked_conv(trainable.conv1, pixels, keep), keep,
                            trainable.bn1.weight, trainable.bn1.bias, trainable.bn1.eps)
package = analysis.stage_outputs(trainable, batch, masks)["bn1"]
print(f"largest difference, by hand vs sparse.SparseBatchNorm2d: "
      f"{(by_hand - package).abs().max().item():.1e} (outputs up to "
      f"{package.abs().max().item():.1f}); masked positions of the package's output: "
      f"{package[(keep == 0).expand_as(package)].abs().max().item():.1f}")

# %% [markdown]
# ## 4. What "sparse" costs
#
# This sparse convolution is a masked *dense* convolution: it computes every position and
# then zeroes some. It saves no compute or memory — it only guarantees that nothing leaks —
# and adds an element-wise multiplication after every convolution and pooling, plus the
# masked statistics of every batch norm. Whether that shows in the time depends on the
# device and the size; the cell below measures both trunks on this one. A ratio below 1
# would mean that the timing is noisy at this size, not that masking saves work (every
# dense multiplication still runs); on a CPU that other work shares, either ratio can be
# far from the cost of the masks alone:

# %%
batch8 = image.repeat(4, 1, 1, 1)
mask8 = masking.sample_masks(4, grid, generator=gen)
t_dense = analysis.forward_seconds(dense, batch8)
t_sparse = analysis.forward_seconds(context, batch8, mask8)
print(f"forward of 4 images at {IMAGE_SIZE} px on {cfg.device}: dense {t_dense * 1e3:.0f} ms, "
      f"sparse {t_sparse * 1e3:.0f} ms (x{t_sparse / t_dense:.2f})")

# %%
run.log(arch=ARCH, leak_dense_layer4=leak_dense, leak_sparse=leak_sparse,
        receptive_field_layer4=fields["layer4"][0], visible_fraction_bn1=fraction,
        sparse_over_dense_time=t_sparse / t_dense)

# %% [markdown]
# ## Summary
#
# - A dense CNN lets hidden pixels reach visible features through its receptive fields; the
#   context encoder must not see the targets.
# - The sparse trunk multiplies every convolution's and pooling's output by the mask at its
#   resolution and computes BatchNorm statistics over visible positions only (masked sums, no
#   host synchronisation).
# - A dense CNN on the zero-filled image cannot see hidden pixels either, but fills the hole
#   with values made from its edge and from BatchNorm's shift; the sparse trunk keeps it empty
#   at every stage.
# - Sparse and dense trunks share their weights (the same `state_dict`), so the EMA target
#   encoder is a plain dense copy.
#
# ## Check your understanding
#
# 1. Why is zeroing the hidden pixels of the input not enough for a CNN?
#    <details><summary>Answer</summary>
#
#    After the first convolution, masked positions receive values from their visible neighbours
#    and from BatchNorm's shift, so later layers treat the hole as content. To keep it empty,
#    every layer's output must be masked again.
#
#    </details>
# 2. Why must BatchNorm's statistics leave out the masked positions?
#    <details><summary>Answer</summary>
#
#    The zeros would pull the mean towards 0 and distort the variance by an amount that depends
#    on how much is masked, so the visible features would be normalised differently from image
#    to image and from the target encoder's.
#
#    </details>
# 3. Does the sparse trunk make the visible features equal to the target encoder's?
#    <details><summary>Answer</summary>
#
#    No: near the hole its windows hold zeros where the target saw image (section 1b measures
#    how far apart they are). It guarantees that hidden content, and values invented from the
#    hole's edge, never reach the context features.
#
#    </details>
#
# ## Exercises
#
# 1. **Derive** how a dense BatchNorm's mean relates to the sparse one's, for an input that
#    is zero at the masked positions (a sparse convolution's output), and check it on a
#    random masked tensor. What does the dense variance become?
#    <details><summary>Solution</summary>
#
#    The masked positions add nothing to the sum, so the dense mean is the visible sum over
#    all $NHW$ positions: $\mu_\text{dense} = f\,\mu_\text{visible}$ with $f = \sum k /
#    NHW$ the visible fraction. The dense second moment is $f$ times the visible one, so
#    $\sigma^2_\text{dense} = f(\sigma^2_\text{visible} + \mu^2_\text{visible}) -
#    f^2 \mu^2_\text{visible}$: it grows with the mean and depends on how much is masked.
#
#    ```python
#    import torch
#    from jepa_lite import masking
#
#    g = torch.Generator().manual_seed(0)
#    mask = masking.sample_masks(4, (7, 7), "multiblock", g)
#    keep = masking.upsample_mask(~mask, 8).unsqueeze(1).float()  # 56 x 56, 1 = visible
#    y = (torch.randn(4, 16, 56, 56, generator=g) + 3) * keep
#    f = keep.mean()
#    mu = (y * keep).sum((0, 2, 3)) / keep.sum()
#    var = ((y - mu[:, None, None]) * keep).square().sum((0, 2, 3)) / keep.sum()
#    assert torch.allclose(y.mean((0, 2, 3)), f * mu, atol=1e-4)
#    dense_var = y.var((0, 2, 3), unbiased=False)
#    assert torch.allclose(dense_var, f * (var + mu ** 2) - f ** 2 * mu ** 2, atol=1e-3)
#    print(f"visible fraction {f:.2f}: dense mean = {f:.2f} x the visible mean")
#    ```
#
#    </details>
# 2. Make `bn1` a plain `BatchNorm2d` in the sparse trunk: which guarantee breaks first?
#    <details><summary>Hint</summary>
#
#    Run the tests in `tests/test_sparse.py` after the change, starting with the one about
#    masked pixels changing nothing in training mode.
#
#    </details>
# 3. With nothing masked, is the sparse trunk equal to the dense one?
#    <details><summary>Hint</summary>
#
#    `tests/test_sparse.py::test_nothing_masked_equals_dense`.
#
#    </details>
# 4. Without `SparseMaxPool2d`, masked positions after the max-pool would hold values of their
#    visible neighbours. Would that leak target content? Which guarantee would break?
#    <details><summary>Hint</summary>
#
#    A max over a window holding only visible values carries no hidden content, but the masked
#    cells would no longer be zero: compare with the left panel of section 1b.
#
#    </details>
#
# ## References
#
# - Kalapos et al. (2024). CNN-JEPA: Self-Supervised Pretraining Convolutional Neural Networks
#   Using Joint Embedding Predictive Architecture.
# - Tian et al. (2023). Designing BERT for Convolutional Networks: Sparse and Hierarchical
#   Masked Modeling (SparK). ICLR 2023.
# - Liu et al. (2015). Sparse Convolutional Neural Networks. CVPR 2015 (cited by CNN-JEPA for
#   sparse convolutions).
# - He et al. (2016). Deep Residual Learning for Image Recognition. CVPR 2016.
#
# **Next:** chapter 03, the predictor that fills in the hidden cells.
