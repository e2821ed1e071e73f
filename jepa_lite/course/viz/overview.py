"""Chapter 00's map of the method."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch


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
