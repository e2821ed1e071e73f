"""The generated data sets: scenes of objects drawn by class (``SyntheticSpec`` says which
and how many), the two painters (plain ``scenes``, photograph-like ``busy`` clutter), and
``make_synthetic`` / ``ensure_synthetic``, which write them once as ImageFolder roots::

    ROOT/train/<class>/<image>.png   ROOT/val/<class>/<image>.png   ROOT/dataset.json
"""

from __future__ import annotations

import colorsys
import dataclasses
import functools
import json
import math
import multiprocessing
import os
import shutil
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from jepa_lite.data.decoding import generation_workers
from jepa_lite.data.folders import SPLITS, scan
from jepa_lite.encoders.resnet import PATCHES
from jepa_lite.errors import UsageError, cannot_write
from jepa_lite.masking import check_image_size
from jepa_lite.progress import progress

# Bumped whenever render_synthetic (render_busy) draws different images: part of every
# generated data set's name, so a data set cached by an older version is never mistaken for
# the current one.
GENERATOR_VERSION = 2
BUSY_VERSION = 1


@dataclass(frozen=True)
class SyntheticSpec:
    """A generated data set: scenes of several objects of one kind per class. ``kind``:
    ``scenes`` (``render_synthetic``) or ``busy`` (``render_busy``)."""

    classes: int = 10
    per_class: int = 64  # training images per class
    val_per_class: int = 16
    size: int = 64  # pixels (square)
    seed: int = 0
    kind: str = "scenes"

    @property
    def name(self) -> str:
        stem = (f"synthetic-v{GENERATOR_VERSION}" if self.kind == "scenes"
                else f"synthetic-{self.kind}-v{BUSY_VERSION}")
        return (f"{stem}-c{self.classes}-n{self.per_class}"
                f"-v{self.val_per_class}-s{self.size}-seed{self.seed}")

    def meta(self) -> dict:
        """What ``dataset.json`` records (``kind`` only when not the original scenes, so that
        data sets generated before it existed are still recognised)."""
        spec = dataclasses.asdict(self)
        if self.kind == "scenes":
            del spec["kind"]
        version = GENERATOR_VERSION if self.kind == "scenes" else BUSY_VERSION
        return {"kind": "synthetic", "generator": version, **spec,
                **({} if self.kind == "scenes" else {"scene_kind": self.kind})}


KINDS = ("scenes", "busy")  # pale objects on plain grey; objects in photograph-like clutter


def _polygon(n: int, radius: float, star: float = 1.0) -> np.ndarray:
    """Regular n-gon (or 2n-point star when star < 1) around the origin, unit orientation."""
    k = n * 2 if star < 1 else n
    t = np.arange(k) * 2 * np.pi / k - np.pi / 2
    r = np.where(np.arange(k) % 2, radius * star, radius) if star < 1 else np.full(k, radius)
    return np.stack([r * np.cos(t), r * np.sin(t)], 1)


def _cross(r: float) -> np.ndarray:
    a, b = r, r / 3
    return np.array([(-b, -a), (b, -a), (b, -b), (a, -b), (a, b), (b, b), (b, a), (-b, a),
                     (-b, b), (-a, b), (-a, -b), (-b, -b)])


def _arrow(r: float) -> np.ndarray:
    return np.array([(-r, -r / 4), (0.1 * r, -r / 4), (0.1 * r, -0.7 * r), (r, 0),
                     (0.1 * r, 0.7 * r), (0.1 * r, r / 4), (-r, r / 4)])


# One object kind per class. Each entry: (name, outline polygon or None for round shapes).
SHAPES = {
    "disc": None,
    "ring": None,
    "crescent": None,
    "square": lambda r: _polygon(4, r * 1.15),
    "triangle": lambda r: _polygon(3, r * 1.2),
    "hexagon": lambda r: _polygon(6, r),
    "star": lambda r: _polygon(5, r * 1.2, star=0.45),
    "cross": _cross,
    "arrow": _arrow,
    "bars": lambda r: np.array([(-r, -r), (-r / 3, -r), (-r / 3, r), (-r, r)]),
}
OBJECTS_PER_IMAGE = (3, 5)  # inclusive
OBJECT_RADIUS = (0.11, 0.19)  # fraction of the image side
BACKGROUND = 125.0  # grey level of every background


def _object_colour(rng: np.random.Generator) -> tuple[int, int, int]:
    """A pale tint of random hue, drawn per object: it never tells the class."""
    rgb = colorsys.hsv_to_rgb(rng.uniform(0, 1), rng.uniform(0, 0.15), rng.uniform(0.85, 1))
    return tuple(int(255 * c) for c in rgb)


def _draw_object(img: Image.Image, shape: str, colour, r: float, cx: float, cy: float,
                 rng: np.random.Generator) -> None:
    draw = ImageDraw.Draw(img)
    if shape == "disc":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour)
    elif shape == "ring":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), outline=colour, width=max(2, int(r / 3)))
    elif shape == "crescent":  # a disc minus an offset disc, pasted through a mask
        cut = Image.new("L", img.size, 0)
        cut_draw = ImageDraw.Draw(cut)
        cut_draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=255)
        a = rng.uniform(0, 2 * np.pi)
        ox, oy = cx + 0.55 * r * math.cos(a), cy + 0.55 * r * math.sin(a)
        cut_draw.ellipse((ox - 0.85 * r, oy - 0.85 * r, ox + 0.85 * r, oy + 0.85 * r), fill=0)
        img.paste(colour, (0, 0), cut)
    else:
        pts = SHAPES[shape](r)
        # "bars": two parallel bars, the second the mirror image of the first
        outlines = [pts, pts * np.array([-1, 1])] if shape == "bars" else [pts]
        rot = rng.uniform(0, 2 * np.pi)
        rmat = np.array([[math.cos(rot), -math.sin(rot)], [math.sin(rot), math.cos(rot)]])
        for p in outlines:
            draw.polygon([tuple(v) for v in p @ rmat.T + (cx, cy)], fill=colour)


def render_synthetic(shape: str, rng: np.random.Generator, size: int = 64) -> Image.Image:
    """One image: 3-5 objects of one ``shape`` (the class) on a plain grey background.

    JEPA learns what the visible part of an image predicts about its hidden part, so the
    scene is built to make the class that thing. Every object has its own tint, position,
    size and rotation (none of which the rest of the image predicts); the kind of object is
    shared by all of them (which the rest of the image does predict). An earlier version with
    one object on a varied background taught the encoder the background (see the note in
    tests/test_learning.py).
    """
    s = size * 2  # draw at 2x, then downsample: anti-aliased edges
    grain = rng.normal(0, 6, (s // 8, s // 8, 3))  # fine noise, so no two backgrounds match
    bg = BACKGROUND + grain.repeat(8, 0).repeat(8, 1)  # each value over 8 x 8 pixels
    img = Image.fromarray(np.clip(bg, 0, 255).astype(np.uint8)).filter(ImageFilter.BLUR)
    for _ in range(rng.integers(OBJECTS_PER_IMAGE[0], OBJECTS_PER_IMAGE[1] + 1)):
        colour = _object_colour(rng)
        r = s * rng.uniform(*OBJECT_RADIUS)
        cx, cy = rng.uniform(r, s - r, 2)  # fully inside; objects may overlap
        _draw_object(img, shape, colour, r, cx, cy, rng)
    return img.resize((size, size), Image.Resampling.LANCZOS)


def _random_colour(rng: np.random.Generator) -> tuple[int, int, int]:
    rgb = colorsys.hsv_to_rgb(rng.uniform(0, 1), rng.uniform(0.2, 1), rng.uniform(0.25, 1))
    return tuple(int(255 * c) for c in rgb)


@functools.lru_cache(maxsize=4)
def _unit_grid(s: int) -> tuple[np.ndarray, np.ndarray]:
    """``np.mgrid[0:s, 0:s] / s`` (rows, columns), made once per size and read only."""
    yy, xx = np.mgrid[0:s, 0:s] / s
    yy.flags.writeable = xx.flags.writeable = False
    return yy, xx


def _background(rng: np.random.Generator, s: int) -> np.ndarray:
    """A colour gradient, low-frequency colour blotches and one texture (stripes, checks or
    grain), each with its own random colours, frequency and orientation. (Computed in place,
    operation for operation as first written: the same draws give the same pixels.)"""
    yy, xx = _unit_grid(s)
    a = rng.uniform(0, 2 * np.pi)
    t = xx * np.cos(a)
    t += yy * np.sin(a)
    low, span = t.min(), np.ptp(t)
    t -= low
    t /= span + 1e-9
    img = np.empty((3, s, s))  # channels first: numpy's fast loops run along rows
    first, second = rng.uniform(30, 225, 3), rng.uniform(30, 225, 3)
    np.multiply(1 - t, first[:, None, None], out=img)
    img += t * second[:, None, None]
    blotches = Image.fromarray(np.uint8(np.clip(128 + rng.normal(0, 40, (5, 5, 3)), 0, 255)))
    tint = np.array(blotches.resize((s, s), Image.Resampling.BICUBIC), np.float64)
    tint -= 128
    img += tint.transpose(2, 0, 1)
    b = rng.uniform(0, 2 * np.pi)
    texture = rng.integers(3)
    if texture == 0:  # stripes
        tex = xx * np.cos(b)
        tex += yy * np.sin(b)
        tex *= 2 * np.pi * rng.uniform(3, 14)
        np.sin(tex, out=tex)
    elif texture == 1:  # checks
        f = rng.integers(3, 10)
        tex = 2.0 * (((xx * f).astype(int) + (yy * f).astype(int)) % 2) - 1
    else:  # grain
        tex = rng.normal(0, 1, (s, s))
    tex *= rng.uniform(8, 35)
    img += tex
    return img.transpose(1, 2, 0)  # height, width, channel


def _blob(draw: ImageDraw.ImageDraw, rng: np.random.Generator, x: float, y: float,
          radius: float) -> None:
    """An irregular polygon of 7-11 jittered vertices: a shape no class has."""
    k = rng.integers(7, 12)
    r = radius * rng.uniform(0.5, 1.3, k)
    t = np.sort(rng.uniform(0, 2 * np.pi, k))
    draw.polygon(list(zip(x + r * np.cos(t), y + r * np.sin(t))), fill=_random_colour(rng))


def render_busy(shape: str, rng: np.random.Generator, size: int = 64) -> Image.Image:
    """One image that looks more like a photograph than :func:`render_synthetic`'s: 2-4
    objects of one ``shape`` (the class), in any colour, on a textured, unevenly lit
    background, among distractors (lines, blobs, dots: none of them a class shape), partly
    hidden by occluders drawn over them. The class is still the kind of object."""
    s = size * 2
    background = _background(rng, s)
    img = Image.fromarray(np.uint8(np.clip(background, 0, 255, out=background)))
    draw = ImageDraw.Draw(img)
    for _ in range(rng.integers(3, 7)):  # distractors
        what, colour = rng.integers(3), _random_colour(rng)
        x, y = rng.uniform(0, s, 2)
        if what == 0:
            x2, y2 = rng.uniform(0, s, 2)
            draw.line((x, y, x2, y2), fill=colour, width=int(rng.integers(2, max(3, s // 30))))
        elif what == 1:
            _blob(draw, rng, x, y, s * rng.uniform(0.04, 0.1))
        else:
            r = s * rng.uniform(0.01, 0.025)
            draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
    for _ in range(rng.integers(2, 5)):  # the class
        r = s * rng.uniform(*OBJECT_RADIUS)
        cx, cy = rng.uniform(r, s - r, 2)
        _draw_object(img, shape, _random_colour(rng), r, cx, cy, rng)
    draw = ImageDraw.Draw(img)
    for _ in range(rng.integers(1, 3)):  # occluders over the objects: big irregular blobs
        _blob(draw, rng, *rng.uniform(0, s, 2), s * rng.uniform(0.08, 0.16))
    yy, xx = _unit_grid(s)  # lighting: a soft spot of light, darker elsewhere
    cx, cy = rng.uniform(0, 1, 2)
    light = xx - cx
    light **= 2
    dy = yy - cy
    dy **= 2
    light += dy
    np.negative(light, out=light)
    light /= rng.uniform(0.1, 0.5)
    np.exp(light, out=light)
    light *= 0.65
    light += 0.55
    arr = np.array(img, np.float64)
    arr *= light[..., None]
    np.clip(arr, 0, 255, out=arr)
    return Image.fromarray(np.uint8(arr)).resize((size, size), Image.Resampling.LANCZOS)


RENDERERS = {"scenes": render_synthetic, "busy": render_busy}


# zlib's fastest level, lossless like any: faster to write than the default 6, files a little
# larger (docs/benchmarks.md, "The test suite's time on 2 cores")
PNG_LEVEL = 1


# Above this many images a generated data set is drawn by processes, below it by threads:
# the drawing holds the GIL part of its time, and a process first spends a second or two
# importing torch (the same section of docs/benchmarks.md)
PROCESS_MIN_IMAGES = 2_000


def _write_image(job, render, size: int) -> None:
    path, shape, seed = job
    try:
        render(shape, np.random.default_rng(seed), size).save(path, compress_level=PNG_LEVEL)
    except OSError as e:  # a full disk: the file named (the temporary folder is removed)
        raise cannot_write(path, e) from None


def _drawing_pool(workers: int, images: int, processes: bool | None):
    """Threads for a small data set, processes for a big one (``processes``: force either):
    forked on Linux (the children draw with numpy and PIL only, never torch or CUDA; spawned
    processes would import the caller's script again), Python's default elsewhere."""
    if processes is None:
        processes = workers > 1 and images >= PROCESS_MIN_IMAGES
    if processes:
        context = multiprocessing.get_context("fork" if sys.platform == "linux" else None)
        return ProcessPoolExecutor(workers, mp_context=context)
    return ThreadPoolExecutor(max_workers=workers)


def make_synthetic(out: str | os.PathLike, spec: SyntheticSpec = SyntheticSpec(),
                   workers: int | None = None, processes: bool | None = None) -> Path:
    """Write the generated data set to ``out`` (train/ and val/), deterministic for a seed:
    the same pixels with any number of ``workers`` (default one per core; threads, or
    processes from :data:`PROCESS_MIN_IMAGES` images on, or as ``processes`` says).

    An existing ``out`` holding the same data set, with its files as they were generated
    (``dataset.json`` records their fingerprint), is reused; one holding anything else, or
    files changed since, is an error, never overwritten. Written to a temporary folder
    first, then renamed: an interrupted run leaves nothing half-written.
    """
    out = Path(out).expanduser()
    names = list(SHAPES)
    if not 2 <= spec.classes <= len(names):
        raise UsageError(f"classes={spec.classes}: the generator knows {len(names)} object "
                         f"kinds ({', '.join(names)}); choose 2 to {len(names)}")
    if spec.per_class < 1 or spec.val_per_class < 1:
        raise UsageError(f"per_class={spec.per_class} (--per-class) and val_per_class="
                         f"{spec.val_per_class} (--val-per-class) must be at least 1")
    check_image_size(spec.size, min(PATCHES))  # any trunk's patch tiles it
    if spec.kind not in RENDERERS:
        raise UsageError(f"unknown kind of generated data {spec.kind!r}; choose one of "
                         f"{', '.join(RENDERERS)} (--kind)")
    render = RENDERERS[spec.kind]
    meta = spec.meta()
    if out.exists():
        marker = out / "dataset.json"
        found = json.loads(marker.read_text()) if marker.is_file() else None
        recorded = found.pop("fingerprints", None) if found else None
        if found == meta:
            now = {split: scan(out, split).fingerprint for split in SPLITS}
            if recorded is None:
                raise UsageError(f"{out} was generated by an older jepa_lite (its dataset.json "
                                 f"records no fingerprints): delete {out} to generate it again")
            if recorded != now:
                changed = [split for split in SPLITS if recorded.get(split) != now[split]]
                raise UsageError(
                    f"{out} holds the generated data set {spec.name}, but files of its "
                    f"{' and '.join(changed)}/ changed since it was generated (added, removed "
                    f"or rewritten): delete {out} to generate it again, or choose another "
                    f"--out")
            return out
        if any(out.iterdir()):
            raise FileExistsError(
                f"{out} already exists and holds something else than {spec.name}; "
                f"choose another --out or delete that folder first"
            )
        out.rmdir()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        jobs = []  # (file, shape, seed): every image is seeded on its own, so any order will do
        for split_id, (split, count) in enumerate(
            (("train", spec.per_class), ("val", spec.val_per_class))
        ):
            for c, shape in enumerate(names[: spec.classes]):
                folder = tmp / split / f"{c:02d}_{shape}"
                folder.mkdir(parents=True)
                jobs += [(folder / f"{i:05d}.png", shape, (spec.seed, split_id, c, i))
                         for i in range(count)]

        write = partial(_write_image, render=render, size=spec.size)
        n = generation_workers(workers)
        with _drawing_pool(n, len(jobs), processes) as pool:
            chunk = max(1, min(64, len(jobs) // (4 * n)))  # a process takes jobs in chunks
            for _ in progress(pool.map(write, jobs, chunksize=chunk), total=len(jobs),
                              desc=spec.name, unit="image", leave=False):
                pass
        prints = {split: scan(tmp, split).fingerprint for split in SPLITS}
        (tmp / "dataset.json").write_text(json.dumps({**meta, "fingerprints": prints},
                                                     indent=1))
        try:
            tmp.rename(out)
        except OSError:  # another process finished the same data set first
            if not (out / "dataset.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def cache_dir() -> Path:
    """Where generated data sets live: ``$JEPA_LITE_CACHE`` or ``~/.cache/jepa_lite``."""
    env = os.environ.get("JEPA_LITE_CACHE")
    base = Path(env) if env else Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")) / "jepa_lite"
    return base.expanduser()


def ensure_synthetic(spec: SyntheticSpec, workers: int | None = None) -> Path:
    """The generated data set for ``spec``, made once in the cache and reused after."""
    return make_synthetic(cache_dir() / spec.name, spec, workers)
