"""Milliseconds to draw one generated scene, this tree's painters against another commit's,
in one run (the two alternate, so that a busy machine slows both alike), and whether the two
draw the same pixels.

    python benchmarks/draw_speed.py [--against HEAD~1] [--sizes 64 224] [--images 40]
        [--repeats 5]

For each kind (``scenes``, ``busy``) and size: the median over ``--repeats`` of the mean
time per image over ``--images`` images (one thread, no file written), both painters on the
same seeds. A generated data set's name promises its pixels (``scenes.BUSY_VERSION``,
``GENERATOR_VERSION``): a change that draws other pixels must bump the version.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from jepa_lite.data import scenes

REPO = Path(__file__).resolve().parents[1]


def module_at(rev: str):
    """``jepa_lite/data/scenes.py`` as it was at git revision ``rev``, imported apart."""
    source = subprocess.run(["git", "show", f"{rev}:jepa_lite/data/scenes.py"], cwd=REPO,
                            check=True, capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "scenes_then.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("jepa_lite.data.scenes_then", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def draw_all(render, size: int, images: int) -> tuple[float, str]:
    """Seconds per image and a digest of every pixel drawn."""
    digest = hashlib.sha256()
    shapes = list(scenes.SHAPES)
    start = time.perf_counter()
    for i in range(images):
        img = render(shapes[i % len(shapes)], np.random.default_rng(i), size)
        digest.update(np.asarray(img).tobytes())
    return (time.perf_counter() - start) / images, digest.hexdigest()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--against", default="HEAD~1", help="the git revision to compare with")
    p.add_argument("--sizes", type=int, nargs="+", default=[64, 224])
    p.add_argument("--images", type=int, default=40)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    then = module_at(args.against)
    print(f"ms per image, one thread; this tree against {args.against}")
    print("| kind | size | then | now | then / now | same pixels |")
    print("|---|---|---|---|---|---|")
    for kind in scenes.RENDERERS:
        for size in args.sizes:
            times = {"then": [], "now": []}
            digests = {}
            for _ in range(args.repeats):
                for name, module in (("then", then), ("now", scenes)):
                    seconds, digests[name] = draw_all(module.RENDERERS[kind], size,
                                                      args.images)
                    times[name].append(seconds)
            a, b = np.median(times["then"]) * 1e3, np.median(times["now"]) * 1e3
            same = "yes" if digests["then"] == digests["now"] else "**no**"
            print(f"| {kind} | {size} | {a:.2f} | {b:.2f} | {a / b:.2f} | {same} |")


if __name__ == "__main__":
    main()
