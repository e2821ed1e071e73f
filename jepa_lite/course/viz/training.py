"""Training (chapters 04, 07, 08): schedules, loss and collapse curves, spectra."""

from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from jepa_lite.course.viz.style import FLOOR, RUN_COLOURS, TARGET_HEX, run_styles


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
    from jepa_lite.eval.diagnostics import COMPLETE_STD_SHARE, DIMENSIONAL_RANK_SHARE

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
    from jepa_lite.eval.diagnostics import flags_of

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
