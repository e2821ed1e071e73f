"""Masks on images (chapter 01) and the data sets' samples (chapter 00)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from jepa_lite import masking
from jepa_lite.course.viz.style import BLOCK_COLOURS, HIDDEN_RGB, TARGET_HEX, TARGET_RGB, as_array
from jepa_lite.data.scenes import render_synthetic


def draw_grid(ax, image, grid=None, title: str | None = None) -> None:
    """The image with its 32-pixel patch grid."""
    arr = as_array(image)
    gh, gw = grid or (arr.shape[0] // masking.PATCH, arr.shape[1] // masking.PATCH)
    ax.imshow(arr)
    for i in range(1, gh):
        ax.axhline(i * arr.shape[0] / gh, color="white", lw=0.8, alpha=0.9)
    for j in range(1, gw):
        ax.axvline(j * arr.shape[1] / gw, color="white", lw=0.8, alpha=0.9)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)


def draw_mask(ax, image, mask: torch.Tensor, title: str | None = None,
              blocks: torch.Tensor | None = None, hide: bool = False) -> None:
    """Targets tinted red (``hide``: greyed out, as the context encoder sees the image),
    context as is; optional block outlines in colour."""
    arr = as_array(image)
    gh, gw = mask.shape[-2:]
    ph, pw = arr.shape[0] // gh, arr.shape[1] // gw
    tint = np.kron(mask.cpu().numpy().astype(np.float32), np.ones((ph, pw)))[..., None]
    colour, strength = (HIDDEN_RGB, 0.85) if hide else (TARGET_RGB, 0.6)
    ax.imshow(arr * (1 - strength * tint) + strength * tint * colour)
    for i in range(1, gh):
        ax.axhline(i * ph, color="white", lw=0.5, alpha=0.7)
    for j in range(1, gw):
        ax.axvline(j * pw, color="white", lw=0.5, alpha=0.7)
    if blocks is not None:
        for k, b in enumerate(blocks):
            rows, cols = torch.nonzero(b.any(1)).flatten(), torch.nonzero(b.any(0)).flatten()
            if len(rows):
                ax.add_patch(Rectangle((cols[0] * pw, rows[0] * ph), len(cols) * pw,
                                       len(rows) * ph, fill=False, lw=2,
                                       ec=BLOCK_COLOURS[k % len(BLOCK_COLOURS)]))
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)


def fig_grid(image, size: int) -> Figure:
    fig, ax = plt.subplots(figsize=(4, 4))
    gh, gw = masking.grid_size(size)
    draw_grid(ax, image, (gh, gw), f"{size} px = {gh}x{gw} patches of 32 px")
    return fig


def fig_blocks(image, blocks: torch.Tensor) -> Figure:
    """Each block on its own, then their union (the target) and its complement (context).
    Blocks are placed independently, so two can land on the same cells: such a block's
    title names the block it repeats."""
    n = len(blocks)
    fig, axes = plt.subplots(1, n + 2, figsize=(2.3 * (n + 2), 2.6))
    same = {k: next(j for j in range(k + 1) if torch.equal(blocks[j], blocks[k]))
            for k in range(n)}  # the first block each one equals (itself if none)
    for k in range(n):
        title = f"block {k + 1}" + (f" = block {same[k] + 1}\n(placed independently)"
                                    if same[k] != k else "")
        draw_mask(axes[k], image, blocks[k], title, blocks=blocks[k:k + 1])
    union = blocks.any(0)
    distinct = len(set(same.values()))
    draw_mask(axes[n], image, union, f"union = target\n({int(union.sum())} cells"
              + (f"; {distinct} distinct blocks)" if distinct < n else ")"), blocks=blocks)
    draw_mask(axes[n + 1], image, union, f"context ({int((~union).sum())} cells)\n"
              f"targets hidden", hide=True)
    for ax in axes:
        ax.title.set_fontsize(8)
    fig.tight_layout()
    return fig


def fig_strategies(image, masks: dict[str, torch.Tensor]) -> Figure:
    """Rows: strategies; columns: independent draws."""
    rows, cols = len(masks), max(len(m) for m in masks.values())
    fig, axes = plt.subplots(rows, cols, figsize=(2.1 * cols, 2.2 * rows), squeeze=False)
    for r, (name, ms) in enumerate(masks.items()):
        for c in range(cols):
            ax = axes[r, c]
            if c < len(ms):
                frac = masking.target_fraction(ms[c]).item()
                draw_mask(ax, image, ms[c], f"{name}: {frac:.0%} target")
            else:
                ax.axis("off")
    fig.tight_layout()
    return fig


def fig_stages(image, mask: torch.Tensor) -> Figure:
    """The mask on the image, then what one mask cell is at every ResNet stage: the same 2x2
    cells (a window holding both a target and a context cell where there is one) at the
    stage's resolution, one square per feature position, cells outlined. The pattern is the
    same at every stage; the number of positions per cell is what changes."""
    stages = masking.stage_masks(mask)
    size = as_array(image).shape[0]
    gh, gw = mask.shape
    fig, axes = plt.subplots(1, len(stages) + 1, figsize=(2.3 * (len(stages) + 1), 2.8))
    draw_mask(axes[0], image, mask, f"image {size} px")
    windows = [(r, c) for r in range(gh - 1) for c in range(gw - 1)
               if 0 < int(mask[r:r + 2, c:c + 2].sum()) < 4] or [(0, 0)]
    r0, c0 = windows[0]
    ph, pw = size // gh, as_array(image).shape[1] // gw  # pixels per cell
    axes[0].add_patch(Rectangle((c0 * pw, r0 * ph), 2 * pw, 2 * ph, fill=False, ec="black",
                                lw=2))
    cmap = ListedColormap(["#dddddd", TARGET_HEX])
    names = {2: "conv1", 4: "layer1", 8: "layer2", 16: "layer3", 32: "layer4"}
    for ax, (stride, m) in zip(axes[1:], stages.items()):
        per = m.shape[-1] // gw  # feature positions per mask cell, per side
        window = m[r0 * per:(r0 + 2) * per, c0 * per:(c0 + 2) * per]
        ax.imshow(window.numpy(), cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
        for k in range(1, 2 * per):  # one line per feature position
            lw = 1.6 if k == per else 0.3
            ax.axhline(k - 0.5, color="white" if k != per else "black", lw=lw)
            ax.axvline(k - 0.5, color="white" if k != per else "black", lw=lw)
        ax.set_title(f"{names.get(stride, '')} /{stride}: {m.shape[-2]}x{m.shape[-1]}\n"
                     f"a cell = {per}x{per} position{'s' if per > 1 else ''}", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


def fig_heatmaps(probs: dict[str, torch.Tensor]) -> Figure:
    """P(target) of every cell, one panel per setting, same colour scale."""
    fig, axes = plt.subplots(1, len(probs), figsize=(3.2 * len(probs), 3.2), squeeze=False)
    vmax = max(float(p.max()) for p in probs.values())
    for ax, (name, p) in zip(axes[0], probs.items()):
        im = ax.imshow(p.numpy(), cmap="magma", vmin=0, vmax=vmax)
        for (i, j), v in np.ndenumerate(p.numpy()):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=6,
                    color="white" if v < 0.6 * vmax else "black")
        ax.set_title(name, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8, label="P(target)")
    return fig


def fig_fraction_hist(fractions: dict[str, torch.Tensor], grid: tuple[int, int]) -> Figure:
    """Histogram of the per-sample target fraction, one panel per setting (a shared x axis,
    not overlaid), the mean marked. Each panel's y axis is its own share of samples: random
    masking puts every sample in one bin, which on a shared axis flattens the others."""
    n = grid[0] * grid[1]
    bins = (np.arange(n + 2) - 0.5) / n
    fig, axes = plt.subplots(len(fractions), 1, figsize=(6.5, 1.2 * len(fractions) + 0.8),
                             sharex=True, squeeze=False)
    for ax, (name, f) in zip(axes[:, 0], fractions.items()):
        ax.hist(f.numpy(), bins=bins, color="#4363d8",
                weights=np.full(len(f), 1 / max(len(f), 1)))
        ax.axvline(f.mean().item(), color=TARGET_HEX, lw=1)
        ax.set_title(f"{name}: mean {f.mean():.2f}", fontsize=8, loc="left")
        ax.set_ylabel("share", fontsize=7)
    axes[-1, 0].set_xlabel("target fraction of the grid (red line: mean)")
    fig.tight_layout()
    return fig


def fig_block_shapes(sizes: dict[str, list[tuple[int, int]]], grid: tuple[int, int]) -> Figure:
    """How often each block shape (height x width) is drawn, one panel per setting."""
    fig, axes = plt.subplots(1, len(sizes), figsize=(3.3 * len(sizes), 3.1), squeeze=False)
    for ax, (name, hw) in zip(axes[0], sizes.items()):
        counts = np.zeros(grid)
        for h, w in hw:
            counts[h - 1, w - 1] += 1
        ax.imshow(counts / max(len(hw), 1), cmap="Blues", origin="lower",
                  extent=(0.5, grid[1] + 0.5, 0.5, grid[0] + 0.5))
        for (i, j), v in np.ndenumerate(counts):
            if v:
                ax.text(j + 1, i + 1, f"{v / len(hw):.0%}", ha="center", va="center", fontsize=7)
        ax.set_xlabel("block width (cells)")
        ax.set_ylabel("block height (cells)")
        ax.set_title(name, fontsize=9)
    fig.tight_layout()
    return fig


def render_masks(image, masks: torch.Tensor) -> Figure:
    """A row of masks over one image, drawn without pyplot (safe inside widget callbacks)."""
    fig = Figure(figsize=(2.4 * len(masks), 2.6))
    axes = np.atleast_1d(fig.subplots(1, len(masks)))
    for ax, m in zip(axes, masks):
        draw_mask(ax, image, m, f"{masking.target_fraction(m).item():.0%} target")
    return fig


def fig_dataset(root, split: str = "train", per_class: int = 6) -> Figure:
    """A few images of every class of an ImageFolder root, one row per class."""
    from jepa_lite.data.folders import image_folder

    ds = image_folder(root, split)
    by_class: dict[int, list[str]] = {}
    for path, label in ds.samples:
        if len(by_class.setdefault(label, [])) < per_class:
            by_class[label].append(path)
    rows = min(len(ds.classes), 10)
    fig, axes = plt.subplots(rows, per_class, figsize=(1.3 * per_class, 1.35 * rows),
                             squeeze=False)
    for r in range(rows):
        for c in range(per_class):
            ax = axes[r, c]
            ax.axis("off")
            if c < len(by_class.get(r, [])):
                ax.imshow(ds.loader(by_class[r][c]))
        axes[r, 0].set_title(ds.classes[r], fontsize=8, loc="left")
    fig.tight_layout()
    return fig


def fig_scene_kinds(shapes: tuple[str, ...] = ("disc", "triangle", "star", "cross"),
                    per_kind: int = 3, size: int = 128, seed: int = 0) -> Figure:
    """The two generated data sets side by side, one row per class: ``scenes`` (pale objects
    on plain grey) and ``busy`` (any colour, textured and unevenly lit backgrounds,
    distractors, occluders)."""
    from jepa_lite.data.scenes import render_busy

    rng = np.random.default_rng(seed)
    fig, axes = plt.subplots(len(shapes), 2 * per_kind, figsize=(1.5 * 2 * per_kind,
                                                                 1.5 * len(shapes)),
                             squeeze=False)
    for r, shape in enumerate(shapes):
        for c in range(2 * per_kind):
            render = render_synthetic if c < per_kind else render_busy
            axes[r, c].imshow(render(shape, rng, size))
            axes[r, c].set_xticks([]), axes[r, c].set_yticks([])
        axes[r, 0].set_ylabel(shape, fontsize=9)
    axes[0, 0].set_title("scenes (smoke, demo)", fontsize=9, loc="left")
    axes[0, per_kind].set_title("busy (--scenes busy)", fontsize=9, loc="left")
    fig.tight_layout()
    return fig
