"""Evaluation (chapters 05-09): probe curves, confusion, retrieval, feature maps, comparisons with
the paper, ablations, sweeps, time per epoch."""

from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from PIL import Image

from jepa_lite.course.viz.style import BLOCK_COLOURS, two_se


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
