"""Colours, line styles and the images the figures draw on, shared by every figure."""

from __future__ import annotations

import io

import numpy as np
from matplotlib.figure import Figure
from PIL import Image

from jepa_lite import masking
from jepa_lite.data.scenes import SHAPES, render_synthetic
from jepa_lite.errors import UsageError

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


def as_array(image) -> np.ndarray:
    return np.asarray(image, dtype=np.float32) / 255.0


def fig_to_png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return buf.getvalue()
