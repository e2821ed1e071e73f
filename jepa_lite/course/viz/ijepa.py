"""I-JEPA beside CNN-JEPA (chapter 10): what each encoder is given of one masked image, their
masks on one image, and what a step of each costs."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

from jepa_lite import masking
from jepa_lite.course.viz.images import draw_mask
from jepa_lite.course.viz.style import TARGET_HEX

STAGE_NAMES = {2: "conv1", 4: "layer1", 8: "layer2", 16: "layer3", 32: "layer4"}


def fig_two_encoders(image, cells: torch.Tensor, tokens: torch.Tensor) -> Figure:
    """One masked image, two encoders. ``cells``: CNN-JEPA's target cells ``[gh, gw]``;
    ``tokens``: the same pixels as ViT tokens ``[th, tw]`` (True = hidden). The ViT is given
    the visible tokens and nothing else; the sparse CNN keeps the whole grid and its mask at
    every stage's resolution (``masking.stage_masks``), zeroing the hidden positions."""
    stages = masking.stage_masks(cells[None])
    fig, axes = plt.subplots(1, len(stages) + 2, figsize=(2.2 * (len(stages) + 2), 2.9))
    kept = int((~tokens).sum())
    draw_mask(axes[0], image, cells, f"the masked image\n({int(cells.sum())} of "
              f"{cells.numel()} cells of 32 px hidden)")
    draw_mask(axes[1], image, tokens, f"ViT: {kept} of {tokens.numel()} tokens\nenter; "
              f"the rest do not exist", hide=True)
    cmap = ListedColormap(["#dddddd", TARGET_HEX])
    for ax, (stride, m) in zip(axes[2:], stages.items()):
        ax.imshow(m[0].numpy(), cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(f"sparse CNN, {STAGE_NAMES.get(stride, '')}\n{m.shape[-2]}x"
                     f"{m.shape[-1]}, red re-zeroed", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes[:2]:
        ax.title.set_fontsize(8)
    fig.tight_layout()
    return fig


def fig_masks_side_by_side(image, context: torch.Tensor, targets: torch.Tensor,
                           cells: torch.Tensor, cell_blocks: torch.Tensor) -> Figure:
    """I-JEPA's masks (``context`` ``[th, tw]`` and ``targets`` ``[P, th, tw]``, token maps)
    next to CNN-JEPA's (``cells`` the union target ``[gh, gw]``, ``cell_blocks`` its blocks),
    on the same image: the context, each target block predicted on its own, then CNN-JEPA's
    one union target and its context."""
    p = len(targets)
    fig, axes = plt.subplots(1, p + 3, figsize=(2.2 * (p + 3), 2.9))
    unused = ~context & ~targets.any(0)
    draw_mask(axes[0], image, ~context, f"I-JEPA context: {int(context.sum())} tokens\n"
              f"({int(unused.sum())} neither context\nnor target)", hide=True)
    for k in range(p):
        draw_mask(axes[k + 1], image, targets[k], f"target block {k + 1}: "
                  f"{int(targets[k].sum())} tokens\npredicted on its own",
                  blocks=targets[k:k + 1])
    draw_mask(axes[p + 1], image, cells, f"CNN-JEPA: one union target\n{int(cells.sum())} of "
              f"{cells.numel()} cells", blocks=cell_blocks)
    draw_mask(axes[p + 2], image, cells, f"CNN-JEPA context: the other\n"
              f"{int((~cells).sum())} cells", hide=True)
    for ax in axes:
        ax.title.set_fontsize(8)
    fig.tight_layout()
    return fig


def fig_costs(rows: list[dict]) -> Figure:
    """One panel per cost (encoder parameters, GFLOPs per image and step, saved-for-backward
    MiB per image, images per second where measured), one bar per step (``rows`` of
    ``bench``: kind, arch, image size); log scales: the sizes differ by orders of magnitude."""
    panels = [("encoder_params_m", "encoder parameters (M)"),
              ("gflops_per_image", "GFLOPs per image and step"),
              ("saved_mib_per_image", "saved for backward,\nMiB per image"),
              ("images_per_s", "images per second\n(this device)")]
    labels = [f"{r['kind']}\n{r['arch']}, {r['image_size']} px"
              + (f", batch {r['batch']}" if "batch" in r else "") for r in rows]
    colours = ["#0072B2" if r["arch"].startswith("vit") else "#D55E00" for r in rows]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.6))
    y = np.arange(len(rows))
    for ax, (key, title) in zip(axes, panels):
        values = [r.get(key) for r in rows]
        ax.barh(y, [v or 0 for v in values], color=colours)
        for i, v in enumerate(values):
            ax.text(v or 0, i, f" {v:.3g}" if v else " not measured", va="center",
                    fontsize=7)
        ax.set_xscale("log" if all(values) else "linear")
        ax.set_yticks(y, labels if ax is axes[0] else [""] * len(rows), fontsize=7)
        ax.invert_yaxis()
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig
