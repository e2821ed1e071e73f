"""How much of a generated scene's contrast the two-view colour jitter leaves (not a speed
benchmark: the measurement behind docs/experiments.md's reading of why SimCLR learned with half its
colour jitter and not with all of it).

    python benchmarks/jitter_contrast.py [--strengths 1 0.5] [--images 20] [--draws 50]

For each colour-distortion strength s (``--jitter-strength``), SimCLR's ColorJitter
(0.8 s, 0.8 s, 0.8 s, 0.2 s) is applied ``--draws`` times to each of ``--images`` generated
scenes; printed: the grey-level standard deviation of the jittered image over that of the
original (how far the objects still stand out from the background), its median and the
fraction of draws below 0.5 and 0.3. The jitter is applied to 80 % of views in training.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from torchvision import transforms

from jepa_lite.data import scenes
from jepa_lite.data.augment import with_jitter_strength
from jepa_lite.methods import SimCLR


def contrast_left(images, strength: float, draws: int, seed: int = 0) -> np.ndarray:
    """Grey-level std after SimCLR's colour jitter at ``strength`` / before, per draw."""
    jitter = transforms.ColorJitter(*with_jitter_strength(SimCLR.view_recipes[0],
                                                          strength).jitter)
    spread = [np.asarray(im.convert("L"), dtype=float).std() for im in images]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return np.array([np.asarray(jitter(im).convert("L"), dtype=float).std() / s
                         for im, s in zip(images, spread) for _ in range(draws)])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--strengths", type=float, nargs="+", default=[1.0, 0.5])
    p.add_argument("--images", type=int, default=20)
    p.add_argument("--draws", type=int, default=50)
    p.add_argument("--size", type=int, default=96)
    args = p.parse_args()
    rng = np.random.default_rng(0)
    shapes = list(scenes.SHAPES)
    images = [scenes.render_synthetic(shapes[i % len(shapes)], rng, args.size)
              for i in range(args.images)]
    print(f"{args.images} generated scenes ({args.size} px) x {args.draws} draws of SimCLR's "
          f"colour jitter\n")
    print("| strength | median contrast left | draws < 0.5 | draws < 0.3 |")
    print("|---|---|---|---|")
    for s in args.strengths:
        r = contrast_left(images, s, args.draws)
        print(f"| {s:g} | {np.median(r):.2f} | {(r < 0.5).mean():.3f} | {(r < 0.3).mean():.3f} |")


if __name__ == "__main__":
    main()
