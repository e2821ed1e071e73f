"""Figures and the interactive explorers used by the chapters.

Figure functions return a matplotlib ``Figure``; the chapter shows it and saves it through
:class:`jepa_lite.course.ChapterRun`. Widgets are built from ipywidgets core controls so tests
can set a control's value and check the result without a browser.
"""

from __future__ import annotations

import html
import io
import re
import textwrap

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Rectangle
from PIL import Image

from jepa_lite import masking
from jepa_lite.errors import UsageError
from jepa_lite.scenes import SHAPES, render_synthetic

TARGET_RGB = np.array([0.90, 0.15, 0.15])  # red means target, in every figure
TARGET_HEX = "#e62626"
HIDDEN_RGB = np.array([0.35, 0.35, 0.35])  # what the context encoder does not see
BLOCK_COLOURS = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6",
                 "#bfef45"]
LINE_STYLES = ["-", "--", "-.", ":"]
# runs and methods (Okabe-Ito, told apart by colour-blind readers too): the five methods keep
# their colour in every figure, other runs (chapter 07's variants) take the free ones in order
RUN_COLOURS = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#000000",
               "#F0E442"]
METHOD_COLOURS = {"CNN-JEPA": "#0072B2", "C-JEPA": "#D55E00", "SimCLR": "#009E73",
                  "BYOL": "#CC79A7", "VICReg": "#E69F00", "supervised": "#000000"}
FLOOR = "#7f7f7f"  # random init, the floor, in every figure


def run_styles(names) -> dict[str, dict]:
    """A line style per run, the same in every figure that draws these runs: a method keeps
    its colour (:data:`METHOD_COLOURS`), other runs take the colours left, in order; line
    style and marker follow the position, so that runs drawn on top of each other stay
    visible."""
    names = list(names)
    taken = {METHOD_COLOURS[n] for n in names if n in METHOD_COLOURS}
    free = iter([c for c in RUN_COLOURS if c not in taken] + RUN_COLOURS)
    return {n: {"color": METHOD_COLOURS[n] if n in METHOD_COLOURS else next(free),
                "ls": LINE_STYLES[i % 4], "marker": "os^vDP"[i % 6]}
            for i, n in enumerate(names)}


def two_se(top1: float, n: int) -> float:
    """Two binomial standard errors of an accuracy ``top1`` measured on ``n`` images."""
    return 2 * (top1 * (1 - top1) / max(n, 1)) ** 0.5


# --------------------------------------------------------------------------- images
def sample_images() -> list[str]:
    """Names accepted by :func:`load_image`."""
    return ["grace_hopper"] + [f"generated:{s}" for s in SHAPES]


def load_image(name: str = "grace_hopper", size: int = 224) -> Image.Image:
    """A square RGB image: the Grace Hopper photograph shipped with matplotlib (US Navy,
    public domain), or one generated object (``generated:<shape>``)."""
    masking.check_image_size(size)
    if name == "grace_hopper":
        from matplotlib import cbook

        with cbook.get_sample_data("grace_hopper.jpg") as f:
            img = Image.open(f).convert("RGB")
        side = min(img.size)  # centre-square crop, then resize
        left, top = (img.width - side) // 2, (img.height - side) // 4
        return img.crop((left, top, left + side, top + side)).resize(
            (size, size), Image.Resampling.BICUBIC)
    if name.startswith("generated:") and name.split(":", 1)[1] in SHAPES:
        rng = np.random.default_rng(7)
        return render_synthetic(name.split(":", 1)[1], rng, size)
    raise UsageError(f"unknown image {name!r}; choose one of {sample_images()}")


def _as_array(image) -> np.ndarray:
    return np.asarray(image, dtype=np.float32) / 255.0


# --------------------------------------------------------------------------- masks on images
def draw_grid(ax, image, grid=None, title: str | None = None) -> None:
    """The image with its 32-pixel patch grid."""
    arr = _as_array(image)
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
    arr = _as_array(image)
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
    size = _as_array(image).shape[0]
    gh, gw = mask.shape
    fig, axes = plt.subplots(1, len(stages) + 1, figsize=(2.3 * (len(stages) + 1), 2.8))
    draw_mask(axes[0], image, mask, f"image {size} px")
    windows = [(r, c) for r in range(gh - 1) for c in range(gw - 1)
               if 0 < int(mask[r:r + 2, c:c + 2].sum()) < 4] or [(0, 0)]
    r0, c0 = windows[0]
    ph, pw = size // gh, _as_array(image).shape[1] // gw  # pixels per cell
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
    from jepa_lite.data import image_folder

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
    from jepa_lite.scenes import render_busy, render_synthetic

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


def fig_to_png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return buf.getvalue()


# --------------------------------------------------------------------------- chapter 00
def pipeline_figure() -> Figure:
    """CNN-JEPA in one picture: masked image -> sparse context encoder -> mask token ->
    predictor vs. the EMA target encoder on the full image; loss on target cells only."""
    fig, ax = plt.subplots(figsize=(11, 4.2))
    ax.set_xlim(0, 11)
    ax.set_ylim(0, 4.2)
    ax.axis("off")

    def box(x, y, w, h, text, colour):
        ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.05", fc=colour,
                                    ec="black", lw=1))
        ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=9)

    def arrow(x0, y0, x1, y1, style="-|>", ls="-"):
        ax.add_patch(FancyArrowPatch((x0, y0), (x1, y1), arrowstyle=style, mutation_scale=14,
                                     lw=1.3, ls=ls))

    box(0.1, 1.6, 1.5, 1.0, "image\n224 px\n(crop + flip)", "#f5f5f5")
    box(2.1, 2.7, 1.8, 1.0, "mask targets\n(32 px patches,\n7x7 grid)", "#fde0dc")
    box(4.4, 2.7, 1.9, 1.0, "sparse context\nencoder (ResNet)\nmasked conv + BN", "#dbe9f6")
    box(6.7, 2.7, 1.6, 1.0, "fill targets\nwith mask token", "#fff3c4")
    box(8.7, 2.7, 1.9, 1.0, "conv predictor\n3 x (dw -> pw\n-> BN -> ReLU)", "#e4f4dc")
    box(4.4, 0.5, 1.9, 1.0, "target encoder\n(EMA copy, dense,\nno gradient)", "#e8e1f5")
    box(8.7, 0.5, 1.9, 1.0, "loss on target\ncells only\n(1 - cos)", "#fde0dc")
    arrow(1.6, 2.3, 2.1, 3.2)
    arrow(3.9, 3.2, 4.4, 3.2)
    arrow(6.3, 3.2, 6.7, 3.2)
    arrow(8.3, 3.2, 8.7, 3.2)
    arrow(9.65, 2.7, 9.65, 1.5)
    arrow(1.6, 1.9, 4.4, 1.0)
    arrow(6.3, 1.0, 8.7, 1.0)
    arrow(5.35, 2.7, 5.35, 1.5, style="-|>", ls="--")
    ax.text(5.45, 2.05, "EMA of weights", fontsize=8, style="italic")
    ax.text(2.6, 1.2, "full image", fontsize=8, style="italic")
    ax.text(7.0, 1.15, "B x 2048 x 7 x 7", fontsize=8)
    ax.text(6.8, 3.85, "B x 2048 x 7 x 7", fontsize=8)
    return fig


# --------------------------------------------------------------------------- chapters 02-04
def fig_leak(influence: dict[str, dict[str, torch.Tensor]], mask: torch.Tensor) -> Figure:
    """Rows: encoders; columns: stages; colour: largest feature change per position when
    only the masked pixels change (each panel on its own scale, its maximum written under
    it). The target region is outlined in cyan."""
    rows = list(influence)
    stages = list(next(iter(influence.values())))
    fig, axes = plt.subplots(len(rows), len(stages), figsize=(1.9 * len(stages),
                                                              2.3 * len(rows)), squeeze=False,
                             layout="constrained")
    for r, name in enumerate(rows):
        for c, stage in enumerate(stages):
            d = influence[name][stage].float().numpy()
            ax = axes[r, c]
            ax.imshow(d, cmap="inferno", vmin=0, vmax=max(d.max(), 1e-12))
            m = masking.upsample_mask(mask, d.shape[0] // mask.shape[0]).float().numpy()
            # padded, so that the outline closes along the image border too
            ax.contour(np.pad(m, 1), levels=[0.5], colors="cyan", linewidths=0.8,
                       extent=(-1.5, m.shape[1] + 0.5, m.shape[0] + 0.5, -1.5))
            ax.set_xlim(-0.5, m.shape[1] - 0.5)
            ax.set_ylim(m.shape[0] - 0.5, -0.5)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlabel(f"max change {d.max():.2g}", fontsize=7)
            if r == 0:
                ax.set_title(stage, fontsize=9)
            if c == 0:
                ax.set_ylabel(name, fontsize=9)
    fig.suptitle("change of each stage's output when only the hidden pixels change "
                 "(cyan: target region)", fontsize=9)
    return fig


def fig_hole_filling(filled: dict[str, dict[str, float]],
                     error: dict[str, torch.Tensor], distance: torch.Tensor,
                     visible: torch.Tensor) -> Figure:
    """Left: per stage, the share of masked positions that are not zero (bars per encoder).
    Right: how far visible last-stage features are from the target's, by the cell's distance
    (in cells) to the nearest masked cell (mean over the cells of that distance)."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.2))
    names = list(filled)
    stages = list(next(iter(filled.values())))
    x = np.arange(len(stages))
    width = 0.8 / len(names)
    colours = ["#e6194b", "#4363d8", "#3cb44b"]
    for i, name in enumerate(names):
        bars = a.bar(x + (i - (len(names) - 1) / 2) * width,
                     [100 * filled[name][s] for s in stages], width, color=colours[i % 3],
                     label=name)
        a.bar_label(bars, fmt="%.0f", fontsize=6)  # a sparse trunk's 0 would be invisible
    a.set_xticks(x, stages, fontsize=8)
    a.set_ylabel("masked positions not zero (%)")
    a.set_ylim(0, 100)
    a.set_title("what the encoder puts in the hole", fontsize=9)
    a.legend(fontsize=7)
    ds = sorted({int(d) for d in distance[visible].tolist()})
    xd = np.arange(len(ds))
    for i, name in enumerate(error):
        means = [error[name][visible & (distance == d)].mean().item() for d in ds]
        b.bar(xd + (i - (len(error) - 1) / 2) * width, means, width, color=colours[i % 3],
              label=name)
    b.set_xticks(xd, [str(d) for d in ds])
    b.set_xlabel("visible cell's distance to the nearest masked cell (cells)")
    b.set_ylabel("|feature - target| / |target|")
    b.set_title("visible last-stage features vs the target's", fontsize=9)
    b.legend(fontsize=7)
    fig.tight_layout()
    return fig


def fig_receptive_fields(fields: dict[str, tuple[int, int]], image_size: int = 224) -> Figure:
    """Receptive field of every stage against the image size."""
    fig, ax = plt.subplots(figsize=(6, 3))
    names = list(fields)
    ax.bar(names, [rf for rf, _ in fields.values()], color="#4363d8")
    ax.axhline(image_size, color="#e6194b", ls="--", label=f"image {image_size} px")
    ax.axhline(masking.PATCH, color="grey", ls=":", label="one 32 px patch")
    for i, (rf, stride) in enumerate(fields.values()):
        ax.text(i, rf, f"{rf}px\n/{stride}", ha="center", va="bottom", fontsize=7)
    ax.set_ylabel("receptive field (px)")
    ax.legend(fontsize=8)
    return fig


def fig_bn_statistics(dense_mean, visible_mean, visible_fraction: float) -> Figure:
    """Per-channel means of a BN input: over all positions (zeros included) vs visible only."""
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.scatter(visible_mean, dense_mean, s=6, alpha=0.6)
    lim = [min(visible_mean.min(), dense_mean.min()), max(visible_mean.max(), dense_mean.max())]
    ax.plot(lim, lim, "k--", lw=0.8, label="equal")
    ax.plot(lim, [v * visible_fraction for v in lim], "r-", lw=0.8,
            label=f"x {visible_fraction:.2f} (visible fraction)")
    ax.set_xlabel("mean over visible positions (sparse BN)")
    ax.set_ylabel("mean over all positions (dense BN)")
    ax.legend(fontsize=8)
    return fig


def _draw_reach(ax, reach: torch.Tensor, cell: tuple[int, int], title: str,
                image: torch.Tensor | None = None, mask: torch.Tensor | None = None) -> None:
    """One predicted cell (the star) and the cells that reach it (green), over ``image``
    when given, the target cells of ``mask`` outlined in red and the context within reach
    counted in the title."""
    gh, gw = reach.shape
    extent = (-0.5, gw - 0.5, gh - 0.5, -0.5)
    if image is not None:
        ax.imshow(image.permute(1, 2, 0).clamp(0, 1).numpy(), extent=extent)
        ax.imshow(reach.float().numpy(), cmap="Greens", vmin=0, vmax=1, alpha=0.45,
                  extent=extent)
    else:
        ax.imshow(reach.float().numpy(), cmap="Greens", vmin=0, vmax=1.3, extent=extent)
    title = f"{title}: {int(reach.sum())} of {reach.numel()} cells"
    if mask is not None:
        for rr, cc in torch.nonzero(mask).tolist():
            ax.add_patch(Rectangle((cc - 0.5, rr - 0.5), 1, 1, fill=False, ec=TARGET_HEX,
                                   lw=1.2))
        title += f"\n{int((reach & ~mask).sum())} context cells within reach"
    ax.scatter([cell[1]], [cell[0]], marker="*", s=120, color=TARGET_HEX)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=8)


def fig_influence(rows: dict[tuple[int, int], dict[str, torch.Tensor]],
                  image: torch.Tensor | None = None, mask: torch.Tensor | None = None) -> Figure:
    """Which grid cells reach a predicted cell (the star): one row per predicted cell, one
    panel per predictor; drawn over ``image`` ``[3, H, W]`` (in [0, 1]) when given, with the
    target cells of ``mask`` ``[gh, gw]`` outlined in red and the context cells within reach
    counted."""
    ncol = max(len(maps) for maps in rows.values())
    fig, axes = plt.subplots(len(rows), ncol, figsize=(2.6 * ncol, 2.6 * len(rows)),
                             squeeze=False)
    for r, (cell, maps) in enumerate(rows.items()):
        for ax, (name, m) in zip(axes[r], maps.items()):
            _draw_reach(ax, m, cell, name, image, mask)
        for ax in axes[r][len(maps):]:
            ax.axis("off")
        axes[r][0].set_ylabel(f"predicted cell {cell}", fontsize=8)
    fig.tight_layout()
    return fig


def fig_reach_on_grids(image: torch.Tensor, grids: dict[str, dict]) -> Figure:
    """One predictor's reach on several grids of the same image: a column per grid
    (``{"mask": [gh, gw], "reach": {row label: (cell, bool [gh, gw])}}``), a row per
    predicted cell (e.g. centre and corner), the grid's target cells outlined."""
    labels = list(dict.fromkeys(r for g in grids.values() for r in g["reach"]))
    fig, axes = plt.subplots(len(labels), len(grids), figsize=(3.0 * len(grids),
                                                               2.9 * len(labels)),
                             squeeze=False)
    for c, (name, g) in enumerate(grids.items()):
        for r, label in enumerate(labels):
            if label not in g["reach"]:
                axes[r, c].axis("off")
                continue
            cell, reach = g["reach"][label]
            _draw_reach(axes[r, c], reach, cell, name, image, g["mask"])
            if c == 0:
                axes[r, c].set_ylabel(f"{label} cell", fontsize=8)
    fig.tight_layout()
    return fig


def fig_cell_agreement(results: dict[str, dict]) -> Figure:
    """Mean cosine between prediction and target per target cell, against the cell's distance
    to the nearest context cell, one line per model (``analysis.cell_agreement``), with two
    standard errors and the number of cells at each distance. Beside each, lighter and
    dashed: a predictor that ignores the context and always predicts the mean target (the
    mean of that model's target features over every target cell): what the context adds is
    the gap between the two."""
    fig, ax = plt.subplots(figsize=(7.5, 3.6))
    styles = run_styles(results)
    for i, (name, r) in enumerate(results.items()):
        dist = r["distance"]
        ds = sorted(set(dist.tolist()))
        for key, label, extra in (("cosine", name, {}),
                                  ("mean_cosine", f"{name}: always the mean target",
                                   {"ls": ":", "alpha": 0.6, "mfc": "white"})):
            if key not in r:
                continue
            cos = r[key]
            means = [cos[dist == d].mean().item() for d in ds]
            errs = [2 * cos[dist == d].std().item() / int((dist == d).sum()) ** 0.5
                    if int((dist == d).sum()) > 1 else 0.0 for d in ds]
            style = {**styles[name], **extra}
            ax.errorbar(ds, means, yerr=errs, capsize=3, label=label, **style)
            if i == 0 and key == "cosine":
                for d, m in zip(ds, means):
                    ax.annotate(f"{int((dist == d).sum())} cells", (d, m), fontsize=7,
                                textcoords="offset points", xytext=(4, 6))
    ax.axhline(0, color="grey", lw=0.8, ls=":")
    every = sorted({d for r in results.values() for d in r["distance"].tolist()})
    ax.set_xlim(every[0] - 0.3, every[-1] + 0.6)  # room for the last count
    ax.set_xlabel("target cell's distance to the nearest context cell (cells)")
    ax.set_ylabel("cosine(prediction, target)")
    ax.set_title("what is predicted, where: mean over target cells, +- 2 standard errors",
                 fontsize=9)
    ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    return fig


def fig_cell_agreement_map(images: torch.Tensor, results: dict[str, dict],
                           count: int = 4) -> Figure:
    """Per target cell, on the image: the cosine between prediction and target (colour and
    number), the context cells greyed out, for the first ``count`` images; a row per model
    (``analysis.cell_agreement``'s ``cosine_map``, NaN outside the targets)."""
    from matplotlib import colormaps

    n = min(count, len(images))
    fig, axes = plt.subplots(len(results), n, figsize=(2.4 * n + 0.8, 2.5 * len(results)),
                             squeeze=False, layout="constrained")
    cmap = colormaps["viridis"]
    for r, (name, res) in enumerate(results.items()):
        for c in range(n):
            ax = axes[r, c]
            cos = res["cosine_map"][c]
            gh, gw = cos.shape
            extent = (-0.5, gw - 0.5, gh - 0.5, -0.5)
            ax.imshow(images[c].permute(1, 2, 0).clamp(0, 1).numpy(), extent=extent)
            for (rr, cc), v in np.ndenumerate(cos.numpy()):
                if np.isnan(v):  # context: what the predictor saw
                    ax.add_patch(Rectangle((cc - 0.5, rr - 0.5), 1, 1, color=HIDDEN_RGB,
                                           alpha=0.55, lw=0))
                else:
                    ax.add_patch(Rectangle((cc - 0.5, rr - 0.5), 1, 1,
                                           color=cmap(max(0.0, float(v))), alpha=0.75, lw=0))
                    ax.text(cc, rr, f"{v:.2f}", ha="center", va="center",
                            fontsize=8 if gw <= 5 else 6,
                            color="white" if v < 0.6 else "black")
            ax.set_xlim(-0.5, gw - 0.5)
            ax.set_ylim(gh - 0.5, -0.5)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(name, fontsize=9)
    fig.colorbar(plt.cm.ScalarMappable(cmap=cmap, norm=plt.Normalize(0, 1)), ax=axes,
                 shrink=0.8, label="cosine(prediction, target) at a target cell")
    fig.suptitle("per target cell (coloured); grey: the context the predictor saw", fontsize=9)
    return fig


def fig_feature_norms(panels: dict[str, torch.Tensor], mask: torch.Tensor | None = None,
                      own_scale: tuple[str, ...] = ()) -> Figure:
    """Per-cell L2 norm over channels of feature maps ``[C, gh, gw]``, one panel each, on one
    colour scale except the panels named in ``own_scale`` (a colour bar each, so that a small
    change is not drawn as nothing); target cells (``mask``) outlined in red."""
    norms = {name: f.float().norm(dim=0).numpy() for name, f in panels.items()}
    shared = [n for name, n in norms.items() if name not in own_scale]
    vmax = max((float(n.max()) for n in shared), default=1.0) or 1.0
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels) + 0.8, 3),
                             squeeze=False, layout="constrained")
    shared_axes, im_shared = [], None
    for ax, (name, n) in zip(axes[0], norms.items()):
        own = name in own_scale
        im = ax.imshow(n, cmap="magma" if own else "viridis", vmin=0,
                       vmax=(float(n.max()) or 1.0) if own else vmax)
        if own:
            fig.colorbar(im, ax=ax, shrink=0.8, label="L2 norm (own scale)")
        else:
            shared_axes.append(ax)
            im_shared = im
        if mask is not None:
            for r, c in torch.nonzero(mask).tolist():
                ax.add_patch(Rectangle((c - 0.5, r - 0.5), 1, 1, fill=False, ec=TARGET_HEX,
                                       lw=1.2))
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(name, fontsize=9)
    if im_shared is not None:
        fig.colorbar(im_shared, ax=shared_axes, shrink=0.8, label="L2 norm over channels")
    if mask is not None:
        fig.suptitle("red outline: target cells", fontsize=8)
    return fig


def fig_schedules(lr: list[float], momentum: dict[str, list[float]],
                  steps_per_epoch: int) -> Figure:
    """Learning rate and EMA momentum over training steps; the titles read the curves drawn
    (peak and last learning rate, first and last momentum), never a constant."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3))
    a.plot(lr)
    peak = max(lr)
    a.set_title(f"learning rate: warm-up to {peak:.3g}, cosine to {lr[-1]:.3g} "
                f"({lr[-1] / peak:.3g} x peak) at the last step", fontsize=9)
    for name, m in momentum.items():
        b.plot(m, label=name)
    first = next(iter(momentum.values()))
    b.set_title(f"EMA momentum: cosine {first[0]:.4g} -> {first[-1]:.4g}", fontsize=9)
    b.legend(fontsize=8)
    for ax in (a, b):
        ax.set_xlabel(f"step ({steps_per_epoch} per epoch)")
    fig.tight_layout()
    return fig


def _rows_said(histories: list[list[dict]]) -> tuple[str, int | None]:
    """What the diagnostics were computed on, for the figure to state, and their number N
    where every epoch of every run used the same N rows (``diagnostic_rows``)."""
    rows = {r.get("diagnostic_rows") for h in histories for r in h}
    if len(rows) == 1 and None not in rows:
        n = rows.pop()
        return (f"pooled features, one row per image: the last {n} training images of each "
                f"epoch"), n
    return "pooled features, one row per image; the number of rows differs between epochs", None


def _collapse_panels(std_ax, rank_ax, rows: int | None, channels: int | None,
                     xlabel: str = "epoch") -> None:
    """Titles, labels and reference lines of the two collapse panels: the std sees complete
    collapse (0: every image the same; drawn: where ``analysis.collapse_flags`` says
    complete, and 1 / sqrt(C) of features spread evenly), the effective rank dimensional
    collapse (drawn: the most N rows can span, and where the flags say dimensional)."""
    from jepa_lite.analysis import COMPLETE_STD_SHARE, DIMENSIONAL_RANK_SHARE

    std_ax.set_title("complete collapse? per-channel std", fontsize=9)
    std_ax.set_ylabel("std of the L2-normalised rows", fontsize=8)
    rank_ax.set_title("dimensional collapse? effective rank", fontsize=9)
    rank_ax.set_ylabel("effective rank (scale-free: blind\nto complete collapse)", fontsize=8)
    std_ax.axhline(0, color="grey", lw=0.8, ls=":")
    refs: dict = {std_ax: [], rank_ax: []}
    if channels:
        refs[std_ax] += [
            std_ax.axhline(channels ** -0.5, color="grey", ls="--",
                           label=f"spread evenly (1/sqrt({channels}))"),
            std_ax.axhline(COMPLETE_STD_SHARE * channels ** -0.5, color=TARGET_HEX, ls=":",
                           label=f"complete collapse below ({COMPLETE_STD_SHARE:.0%} of that)")]
    if rows:
        cap = min(rows - 1, channels or rows - 1)
        refs[rank_ax] += [
            rank_ax.axhline(cap, color="grey", ls="--",
                            label=f"the most {rows} rows can span ({cap})"),
            rank_ax.axhline(DIMENSIONAL_RANK_SHARE * cap, color=TARGET_HEX, ls=":",
                            label=f"dimensional collapse below ({DIMENSIONAL_RANK_SHARE:.0%} "
                                  f"of that)")]
    for ax in (std_ax, rank_ax):  # from 0, the references in view: a change at its true size
        top = max([ax.get_ylim()[1], *(ln.get_ydata()[0] * 1.08 for ln in ax.get_lines()
                                       if len(ln.get_ydata()) == 2)])
        ax.set_ylim(0, top)
        ax.set_xlabel(xlabel)
        for ref in refs[ax]:  # written on their line, where no curve is hidden by a legend
            ax.annotate(ref.get_label(), (0.99, ref.get_ydata()[0]), fontsize=7, ha="right",
                        va="bottom", color=ref.get_color(),
                        xycoords=("axes fraction", "data"))


def fig_training(rows: list[dict], channels: int | None = None) -> Figure:
    """Loss and collapse diagnostics per epoch of a pretraining run: the loss, the std
    (complete collapse) and the effective rank (dimensional collapse) of the target
    encoder's pooled features, each from 0 with its references drawn; the rows they were
    computed on are stated above the panels."""
    from matplotlib.ticker import MaxNLocator

    ep = [r["epoch"] for r in rows]
    what, n = _rows_said([rows])
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    for ax, key in zip(axes, ("loss", "target_std", "effective_rank")):
        ax.plot(ep, [r[key] for r in rows], "o-", color=RUN_COLOURS[0])
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0].set_title("loss (target cells)", fontsize=9)
    axes[0].set_ylabel("smooth-L1 of normalised vectors", fontsize=8)
    axes[0].set_xlabel("epoch")
    axes[0].set_ylim(0, axes[0].get_ylim()[1])
    _collapse_panels(axes[1], axes[2], n, channels)
    fig.suptitle(f"target encoder, {what}", fontsize=9)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- chapters 05-06
def fig_probe_curves(results: dict[str, dict]) -> Figure:
    """Linear-probe validation accuracy per epoch (official) and the honest hold-out curve."""
    fig, ax = plt.subplots(figsize=(6.5, 3.2))
    for i, (name, r) in enumerate(results.items()):
        c = BLOCK_COLOURS[i % len(BLOCK_COLOURS)]
        ep = range(1, len(r["curve_val_top1"]) + 1)
        ax.plot(ep, r["curve_val_top1"], color=c, label=f"{name}: validation")
        ax.plot(ep, r["curve_honest_holdout_top1"], color=c, ls="--",
                label=f"{name}: held-out train")
    classes = next(iter(results.values())).get("num_classes")
    if classes:
        ax.axhline(1 / classes, color="grey", lw=0.8, ls=":", label=f"chance (1/{classes})")
    ax.set_ylim(0, 1)  # the whole scale: a few points of top-1 should look like a few points
    ax.set_xlabel("linear-probe epoch")
    ax.set_ylabel("top-1 (fraction)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0)
    fig.tight_layout()  # the legend beside the axes: it hides no curve
    return fig


def fig_confusion(pred: torch.Tensor, labels: torch.Tensor, classes: list[str],
                  title: str = "k-NN on the validation images") -> Figure:
    """Confusion matrix, each row normalised to 1 (the share of a true class predicted as
    each class); the diagonal is the per-class recall."""
    n = len(classes)
    cm = torch.zeros(n, n)
    cm.index_put_((labels, pred), torch.ones(len(labels)), accumulate=True)
    cm = cm / cm.sum(1, keepdim=True).clamp_min(1)
    fig, ax = plt.subplots(figsize=(0.45 * n + 2.5, 0.45 * n + 2.3))
    im = ax.imshow(cm.numpy(), cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), classes, rotation=90, fontsize=7)
    ax.set_yticks(range(n), classes, fontsize=7)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(f"{title}\n(rows normalised: share of each true class)", fontsize=9)
    fig.colorbar(im, ax=ax, shrink=0.8, label="share of the true class")
    return fig


def fig_retrieval(query_paths: list[str], match_paths: list[list[str]], hits) -> Figure:
    """Each row: a query image, then its nearest training images (green: same class)."""
    rows, cols = len(query_paths), 1 + len(match_paths[0])
    fig, axes = plt.subplots(rows, cols, figsize=(1.3 * cols, 1.35 * rows), squeeze=False)
    for r in range(rows):
        axes[r, 0].imshow(Image.open(query_paths[r]).convert("RGB"))
        axes[r, 0].set_title("query", fontsize=7)
        for c, path in enumerate(match_paths[r], start=1):
            ax = axes[r, c]
            ax.imshow(Image.open(path).convert("RGB"))
            for spine in ax.spines.values():
                spine.set_edgecolor("#3cb44b" if hits[r][c - 1] else "#e6194b")
                spine.set_linewidth(3)
        for ax in axes[r]:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    return fig


def fig_feature_map(maps: dict[str, tuple[torch.Tensor, torch.Tensor]],
                    classes: list[str]) -> Figure:
    """2-D PCA of the L2-normalised features, coloured by class, one panel per encoder; each
    axis says the share of the variance its principal component explains."""
    fig, axes = plt.subplots(1, len(maps), figsize=(4.2 * len(maps), 4.2), squeeze=False)
    for ax, (name, (feats, labels)) in zip(axes[0], maps.items()):
        f = torch.nn.functional.normalize(feats.float(), dim=1)
        f = f - f.mean(0)
        _, sv, v = torch.linalg.svd(f, full_matrices=False)
        share = (sv.square() / sv.square().sum().clamp_min(1e-12)).tolist()
        xy = (f @ v[:2].T).numpy()
        for c in range(len(classes)):
            sel = (labels == c).numpy()
            ax.scatter(xy[sel, 0], xy[sel, 1], s=8, label=classes[c])
        ax.set_title(name, fontsize=9)
        ax.set_xlabel(f"PC 1 ({share[0]:.0%} of the variance)", fontsize=8)
        ax.set_ylabel(f"PC 2 ({share[1]:.0%} of the variance)", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0, -1].legend(fontsize=6, loc="center left", bbox_to_anchor=(1, 0.5))
    fig.tight_layout()
    return fig


def fig_comparison(rows: list[dict], random_init: dict | None = None,
                   classes: dict[str, int] | None = None) -> Figure:
    """Linear and k-NN top-1 of the paper's methods and ours. Runs that are not comparable
    (generated data, a small backbone) get their own panel, hatched, never the paper's axis.
    Where our run is, ``random_init`` (its probes' top-1 as fractions) is drawn as dashed
    lines; each panel's chance, 100 / ``classes[dataset]`` %, as a dotted one."""
    apart = [r for r in rows if "NOT comparable" in str(r.get("source"))]
    together = [r for r in rows if r not in apart]
    panels = [(together, "Table I (ImageNet) and comparable runs", "")]
    if apart:
        panels.append((apart, "NOT comparable: generated data, small backbone", "//"))
    fig, axes = plt.subplots(1, len(panels), figsize=(8 + 2.5 * (len(panels) - 1), 3.6),
                             squeeze=False, width_ratios=[max(1, len(p[0])) for p in panels])
    for ax, (sel, title, hatch) in zip(axes[0], panels):
        names = [f"{r['method']}\n{r['backbone']}\n({r['source'].split(' (')[0]})"
                 for r in sel]
        x = np.arange(len(sel))
        for off, key, colour in ((-0.2, "linear_top1", "#4363d8"),
                                 (0.2, "knn_top1", "#f58231")):
            vals = [r.get(key) or 0 for r in sel]
            ax.bar(x + off, vals, 0.4, label=key.replace("_", " "), color=colour, hatch=hatch,
                   edgecolor="white" if hatch else None)
        ax.set_xticks(x, names, fontsize=7)
        ax.set_ylim(0, 100)
        ax.set_title(title, fontsize=9)
        ours = any(str(r.get("source", "")).startswith("ours") for r in sel)
        if ours and random_init is not None:
            for key, colour in (("linear_top1", "#4363d8"), ("knn_top1", "#f58231")):
                ax.axhline(100 * random_init[key], color=colour, ls="--", lw=1,
                           label=f"random init, {key.replace('_top1', '')}")
        for n in sorted({classes[r["dataset"]] for r in sel if r.get("dataset") in
                         (classes or {})}):
            ax.axhline(100 / n, color="grey", ls=":", lw=1, label=f"chance (1/{n})")
        ax.legend(fontsize=7)
    axes[0, 0].set_ylabel("top-1 (%)")
    fig.tight_layout()
    return fig


def fig_ablation(rows: list[dict], setting_prefix: str, title: str) -> Figure:
    """One ablation of the authors' runs (e.g. predictor depth), linear and k-NN where
    reported, as bars centred on their setting (the settings are categories, not points on
    a line), the rows' source under the title."""
    sel = [r for r in rows if r["table"] == "ablation" and r["setting"].startswith(setting_prefix)]
    settings = list(dict.fromkeys(r["setting"] for r in sel))
    labels = [s.replace(setting_prefix, "").strip() for s in settings]
    metrics = [m for m in ("linear_top1", "knn_top1") if any(r["metric"] == m for r in sel)]
    fig, ax = plt.subplots(figsize=(max(5, 0.9 * len(settings) + 2), 3.4))
    x = np.arange(len(settings))
    width = 0.8 / len(metrics)
    for i, metric in enumerate(metrics):
        off = (i - (len(metrics) - 1) / 2) * width
        vals = {r["setting"]: r["value"] for r in sel if r["metric"] == metric}
        bars = ax.bar([x[j] + off for j, s in enumerate(settings) if s in vals],
                      [vals[s] for s in settings if s in vals], width,
                      color={"linear_top1": "#0072B2", "knn_top1": "#E69F00"}[metric],
                      label=metric.replace("_", " "))
        ax.bar_label(bars, fmt="%.2f", fontsize=6)
    ax.set_xticks(x, labels, fontsize=8)
    ax.set_ylim(0, 100)
    sources = sorted({r["source"].split(" (")[0] for r in sel})
    ax.set_title(f"{title}\n{'; '.join(sources)}: the authors' W&B runs, ResNet-50",
                 fontsize=8)
    ax.set_ylabel("top-1 (%), ImageNet-100")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def fig_sweep(rows: list[dict], ours: str, floor: dict | None = None,
              n_val: int | None = None) -> Figure:
    """Chapter 09: one panel per factor; our linear and k-NN top-1 as bars (the values are
    categories) with two binomial standard errors on ``n_val`` validation images, the
    random-init ``floor`` as dashed lines in a band of two standard errors, and the authors'
    runs (their repository's W&B runs, ResNet-50, ImageNet-100) as unjoined markers on the
    same axis. ``ours`` names our data."""
    factors = list(dict.fromkeys(r["factor"] for r in rows))
    widths = [sum(r["factor"] == f for r in rows) for f in factors]
    fig, axes = plt.subplots(1, len(factors), figsize=(3.5 + 1.1 * sum(widths), 3.6),
                             squeeze=False, width_ratios=widths, sharey=True)
    colours = {"linear_top1": "#0072B2", "knn_top1": "#E69F00"}
    for ax, factor in zip(axes[0], factors):
        sel = [r for r in rows if r["factor"] == factor]
        x = np.arange(len(sel))
        for off, (key, colour) in zip((-0.2, 0.2), colours.items()):
            vals = [r[key] for r in sel]
            bars = ax.bar(x + off, vals, 0.4, color=colour,
                          label=f"ours, {key.replace('_top1', '')}",
                          yerr=[100 * two_se(v / 100, n_val) for v in vals] if n_val else None,
                          error_kw={"capsize": 2, "lw": 0.8})
            ax.bar_label(bars, fmt="%.0f", fontsize=6, padding=6 if n_val else 0)
            authors = [(i + off, r[f"authors_{key}"]) for i, r in enumerate(sel)
                       if r.get(f"authors_{key}") is not None]
            if authors:
                ax.plot(*zip(*authors), ls="none", marker="D", ms=5, color="black",
                        markerfacecolor=colour,
                        label=f"the authors' runs, {key.replace('_top1', '')}")
        _floor_lines(ax, floor, n_val, colours, -0.6, len(sel) - 0.4)
        ax.set_xlim(-0.6, len(sel) - 0.4)
        ax.set_xticks(x, [r["value"].replace(" (", "\n(") for r in sel], fontsize=7)
        ax.set_title(factor, fontsize=9)
        ax.set_ylim(0, 100)
    axes[0, 0].set_ylabel("top-1 (%)")
    handles = {h.get_label(): h for ax in axes[0] for h in ax.get_legend_handles_labels()[0]}
    axes[0, -1].legend(list(handles.values()), list(handles), fontsize=6, loc="upper left",
                       bbox_to_anchor=(1.02, 1))
    band = f"; bars and bands: 2 standard errors on {n_val} images" if n_val else ""
    fig.suptitle(f"bars: ours ({ours}){band}; diamonds: the authors' W&B runs (their "
                 "repository; ResNet-50, ImageNet-100)", fontsize=8)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- chapters 07-08
def fig_runs(histories: dict[str, list[dict]], channels: int | None = None) -> Figure:
    """Several runs per epoch: each run's loss in a panel of its own (each method has its own
    objective and scale: one axis would flatten most of them), then the std (complete
    collapse) and the effective rank (dimensional collapse) of each run's probed encoder,
    pooled, with their references (:func:`fig_training`'s); the legend below the panels."""
    from matplotlib.ticker import MaxNLocator

    n = len(histories)
    styles = run_styles(histories)
    fig = plt.figure(figsize=(max(10.0, 2.0 * n), 6.6), layout="constrained")
    grid = fig.add_gridspec(2, 2 * n, height_ratios=[1, 1.5])
    loss_axes = [fig.add_subplot(grid[0, 2 * i:2 * i + 2]) for i in range(n)]
    std_ax, rank_ax = fig.add_subplot(grid[1, :n]), fig.add_subplot(grid[1, n:])
    for ax, (name, rows) in zip(loss_axes, histories.items(), strict=True):
        ep = [r["epoch"] for r in rows]
        ax.plot(ep, [r["loss"] for r in rows], ms=4, **styles[name])
        ax.set_title(textwrap.fill(name, 22), fontsize=8)
        ax.tick_params(labelsize=7)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        for key, ax2 in (("target_std", std_ax), ("effective_rank", rank_ax)):
            ax2.plot(ep, [r[key] for r in rows], ms=4, label=name, **styles[name])
    loss_axes[0].set_ylabel("training loss\n(its own objective)", fontsize=8)
    for ax in (std_ax, rank_ax):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    what, rows_n = _rows_said(list(histories.values()))
    _collapse_panels(std_ax, rank_ax, rows_n, channels)
    handles, labels = std_ax.get_legend_handles_labels()
    runs = [(h, lab) for h, lab in zip(handles, labels) if lab in histories]
    fig.legend(*zip(*runs), loc="outside lower center", ncol=min(n, 3), fontsize=8)
    fig.suptitle(f"probed encoder of each run, {what}", fontsize=9)
    return fig


def fig_collapse_kinds(spectra: dict[str, dict]) -> Figure:
    """The two statistics side by side for a few sets of features (``analysis.spectrum`` of
    each): the std, which sees complete collapse, and the effective rank, which sees
    dimensional collapse, each with the references of :func:`fig_training` (where
    ``analysis.collapse_flags`` draws its line); a flagged bar is red."""
    from jepa_lite.analysis import flags_of

    names = list(spectra)
    fig, (a, b) = plt.subplots(1, 2, figsize=(10.5, 3.4))
    x = np.arange(len(names))
    for ax, key in ((a, "std"), (b, "effective_rank")):
        flags = [flags_of(spectra[n]) for n in names]
        colour = [TARGET_HEX if f["complete" if key == "std" else "dimensional"] else "#0072B2"
                  for f in flags]
        bars = ax.bar(x, [spectra[n][key] for n in names], 0.6, color=colour)
        ax.bar_label(bars, fmt="%.2g" if key == "std" else "%.1f", fontsize=7)
        ax.set_xticks(x, [textwrap.fill(n, 18) for n in names], fontsize=8)
    channels, rows = spectra[names[0]]["channels"], spectra[names[0]]["rows"]
    _collapse_panels(a, b, rows, channels, xlabel="")
    fig.suptitle(f"{rows} rows of {channels} channels each; dotted red: where each kind of "
                 "collapse is flagged", fontsize=9)
    fig.tight_layout()
    return fig


def fig_spectra(spectra: dict[str, dict]) -> Figure:
    """Covariance eigenvalues of normalised pooled features, largest first (log scale):
    features on a few directions (dimensional collapse) put everything in the first few;
    features all alike (complete collapse) have every eigenvalue small. Runs are coloured as
    :func:`fig_runs` colours them, random init in grey; the legend beside the axes."""
    fig, ax = plt.subplots(figsize=(8.5, 3.4))
    styles = run_styles([n for n in spectra if n != "random init"])
    rows = {sp.get("rows") for sp in spectra.values()}
    for name, sp in spectra.items():
        eig = np.clip(np.array(sp["eigenvalues"]), 1e-12, None)
        style = {"color": FLOOR, "ls": ":", "lw": 2} if name not in styles else {
            "color": styles[name]["color"], "ls": styles[name]["ls"]}
        ax.plot(np.arange(1, len(eig) + 1), eig, **style,
                label=f"{name} (rank {sp['effective_rank']:.1f}, std {sp['std']:.4f})")
    ax.set_yscale("log")
    ax.set_xlabel("eigenvalue index (largest first)")
    ax.set_ylabel("eigenvalue")
    counted = f"{rows.pop()} validation images" if len(rows) == 1 and None not in rows else \
        "validation images"
    ax.set_title(f"covariance spectrum of pooled, normalised features ({counted})", fontsize=9)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    return fig


def _floor_lines(ax, floor: dict | None, n_val: int | None, colours: dict, x0: float,
                 x1: float) -> None:
    """Random init's top-1 per probe as a dashed line, with a band of two standard errors
    when ``n_val`` is known."""
    if floor is None:
        return
    for key, colour in colours.items():
        y = 100 * floor[key]
        ax.axhline(y, color=colour, ls="--", lw=1,
                   label=f"random init, {key.replace('_top1', '')}")
        if n_val:
            band = 100 * two_se(floor[key], n_val)
            ax.fill_between([x0, x1], y - band, y + band, color=colour, alpha=0.12, lw=0,
                            zorder=0)  # behind the bars


def fig_probe_bars(results: dict[str, dict], random_init: dict | None = None,
                   title: str = "", n_val: int | None = None) -> Figure:
    """k-NN and linear top-1 (%) per run, as bars with two binomial standard errors on
    ``n_val`` validation images (default: the results' ``val_images``); the random-init
    floor as dashed lines, in a band of two standard errors; the legend beside the axes."""
    names = list(results)
    n_val = n_val or next((r.get("val_images") for r in results.values()
                           if r.get("val_images")), None)
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * len(names) + 2.5), 3.4))
    colours = {"knn_top1": "#E69F00", "linear_top1": "#0072B2"}
    for off, (key, colour) in zip((-0.2, 0.2), colours.items()):
        vals = [results[n][key] for n in names]
        ax.bar(x + off, [100 * v for v in vals], 0.4, color=colour,
               label=key.replace("_top1", " top-1"),
               yerr=[100 * two_se(v, n_val) for v in vals] if n_val else None,
               error_kw={"capsize": 3, "lw": 1})
    _floor_lines(ax, random_init, n_val, colours, -0.6, len(names) - 0.4)
    ax.set_xlim(-0.6, len(names) - 0.4)
    ax.set_xticks(x, [textwrap.fill(n, 16) for n in names], fontsize=8)
    ax.set_ylabel("top-1 (%)")
    ax.set_ylim(0, 100)
    said = f"; error bars and bands: 2 standard errors on {n_val} images" if n_val else ""
    ax.set_title(title + said, fontsize=9)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    return fig


def fig_time_per_epoch(ours: dict[str, float], paper: dict[str, float], device: str,
                       loader: dict[str, float] | None = None) -> Figure:
    """Time per epoch relative to CNN-JEPA's: our measurement beside the authors' (their
    W&B runs, in their repository; the paper prints only the percentages). With
    ``loader`` (seconds per epoch the loader adds to each method's steps), our bars stack the
    steps (solid) and the loader's part (hatched), and the ratios are of the totals."""
    names = list(ours)
    loader = loader or {}
    total = {n: ours[n] + loader.get(n, 0.0) for n in names}
    x = np.arange(len(names))
    base_o, base_p = total["CNN-JEPA"], paper["CNN-JEPA"]
    fig, ax = plt.subplots(figsize=(6.5, 3.2))
    ax.bar(x - 0.2, [ours[n] / base_o for n in names], 0.4, color="#4363d8",
           label=f"ours, the step ({device})")
    if loader:
        ax.bar(x - 0.2, [loader.get(n, 0.0) / base_o for n in names], 0.4,
               bottom=[ours[n] / base_o for n in names], color="white", edgecolor="#4363d8",
               hatch="///", label="ours, what the loader adds")
    ax.bar(x + 0.2, [paper[n] / base_p if n in paper else 0 for n in names], 0.4,
           color="#a9a9a9", label="the authors' W&B runs (4 GPUs, ImageNet-100)")
    for i, n in enumerate(names):
        ax.text(i - 0.2, total[n] / base_o, f"{total[n] / base_o:.2f}", ha="center",
                va="bottom", fontsize=7)
        label, height = (f"{paper[n] / base_p:.2f}", paper[n] / base_p) if n in paper else (
            "not in\ntheir runs", 0)
        ax.text(i + 0.2, height, label, ha="center", va="bottom", fontsize=7)
    ax.axhline(1, color="grey", lw=0.8, ls=":")
    ax.set_xticks(x, names, fontsize=8)
    ax.set_ylabel("time per epoch / CNN-JEPA's")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- the explorer
class MaskExplorer:
    """Interactive masking explorer: strategy, blocks, scale and aspect ranges, min context,
    seed, image, official quirks.

    ``explorer.widget`` is the ipywidgets box to display; ``explorer.controls`` maps names to
    controls; ``explorer.mask`` is the last drawn batch, ``explorer.png`` its rendering.
    """

    def __init__(self, image_size: int = 224, samples: int = 4, official: bool = False):
        import ipywidgets as w

        self.image_size, self.samples = image_size, samples
        self.grid = masking.grid_size(image_size)
        opts = masking.MaskOptions()
        n = self.grid[0] * self.grid[1]
        slider = {"continuous_update": False, "style": {"description_width": "initial"}}
        self.controls = {
            "strategy": w.Dropdown(options=list(masking.STRATEGIES), value="mixed",
                                   description="strategy"),
            "num_blocks": w.IntSlider(value=opts.num_blocks, min=1, max=8,
                                      description="blocks", **slider),
            "block_scale": w.FloatRangeSlider(value=opts.block_scale, min=0.02, max=0.6,
                                              step=0.01, description="block scale", **slider),
            "aspect_ratio": w.FloatRangeSlider(value=opts.aspect_ratio, min=0.25, max=4.0,
                                               step=0.05, description="aspect ratio",
                                               **slider),
            "min_context": w.IntSlider(value=masking.default_min_context(n), min=0, max=n - 1,
                                       description="min context", **slider),
            "mask_ratio": w.FloatSlider(value=opts.mask_ratio, min=0.05, max=0.95, step=0.05,
                                        description="mask ratio (random)", **slider),
            "multiblock_prob": w.FloatSlider(value=opts.multiblock_prob, min=0.0, max=1.0,
                                             step=0.05, description="P(multi-block) (mixed)",
                                             **slider),
            "seed": w.IntSlider(value=0, min=0, max=999, description="seed", **slider),
            "image": w.Dropdown(options=sample_images(), value="grace_hopper",
                                description="image"),
            "official": w.Checkbox(value=official, description="official code (quirks)"),
        }
        self.image = w.Image(format="png")
        self.status = w.HTML()
        self.mask: torch.Tensor | None = None
        self.error: str | None = None
        for c in self.controls.values():
            c.observe(self._on_change, names="value")
        self.widget = w.VBox([w.HBox([w.VBox(list(self.controls.values())[:5]),
                                      w.VBox(list(self.controls.values())[5:])]),
                              self.status, self.image])
        self.update()

    @property
    def png(self) -> bytes:
        return self.image.value

    def options(self) -> dict:
        c = self.controls
        return {"num_blocks": c["num_blocks"].value, "block_scale": tuple(c["block_scale"].value),
                "aspect_ratio": tuple(c["aspect_ratio"].value),
                "min_context": c["min_context"].value, "mask_ratio": c["mask_ratio"].value,
                "multiblock_prob": c["multiblock_prob"].value}

    def in_control_names(self, message: str) -> str:
        """A masking error with option names (``min_context=30``) replaced by the labels of
        the controls that set them (``'min context' = 30``)."""
        for name, control in self.controls.items():
            message = re.sub(rf"\b{name}\b(=?)", lambda m, c=control: f"'{c.description}'"
                             + (" = " if m.group(1) else ""), message)
        return message

    def _on_change(self, change) -> None:
        self.update()

    def update(self) -> None:
        """Redraw masks from the controls; impossible options are shown, not raised."""
        c = self.controls
        g = torch.Generator().manual_seed(c["seed"].value)
        try:
            self.mask = masking.sample_masks(self.samples, self.grid, c["strategy"].value, g,
                                             official=c["official"].value, **self.options())
            self.error = None
        except ValueError as e:  # said with the names of the explorer's own controls
            self.error = self.in_control_names(str(e))
            self.status.value = f"<b style='color:#b00'>{html.escape(self.error)}</b>"
            return
        img = load_image(c["image"].value, self.image_size)
        self.image.value = fig_to_png(render_masks(img, self.mask))
        fr = masking.target_fraction(self.mask)
        self.status.value = (f"{c['strategy'].value}: mean target fraction {fr.mean():.2f} "
                             f"over {self.samples} samples, grid {self.grid[0]}x{self.grid[1]}")
