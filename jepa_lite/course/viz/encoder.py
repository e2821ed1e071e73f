"""The sparse encoder and the predictor (chapters 02-04): leaks, hole filling, receptive fields,
BatchNorm statistics, reach, cell agreement, feature norms."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from jepa_lite import masking
from jepa_lite.course.viz.style import HIDDEN_RGB, TARGET_HEX, run_styles


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
