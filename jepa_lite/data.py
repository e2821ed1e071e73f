"""Image folders, the paper's transforms, the generated data set and the ImageNet-100 subset.

Every data set here is an ImageFolder root in the ImageNet layout::

    ROOT/train/<class>/<image>   ROOT/val/<class>/<image>
"""

from __future__ import annotations

import colorsys
import hashlib
import io
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
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter, UnidentifiedImageError
from torchvision import datasets, transforms
from torchvision.datasets.folder import IMG_EXTENSIONS, has_file_allowed_extension
from torchvision.io import ImageReadMode, decode_image, read_file
from torchvision.transforms.functional import pil_to_tensor
from torchvision.transforms.v2.functional import to_dtype

from jepa_lite.backbone import PATCHES
from jepa_lite.config import SyntheticSpec
from jepa_lite.errors import ImageError, UsageError, cannot_write
from jepa_lite.masking import PATCH, check_image_size
from jepa_lite.progress import progress

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
SPLITS = ("train", "val")


# --------------------------------------------------------------------------- transforms
def eval_transform(image_size: int = 224, patch: int = PATCH) -> transforms.Compose:
    """Resize to 256/224 of the size, centre crop, normalise (224 -> Resize 256, crop 224)."""
    h, w = check_image_size(image_size, patch)
    return transforms.Compose([
        transforms.Resize(round(min(h, w) * 256 / 224)),
        transforms.CenterCrop((h, w)),
        transforms.ToTensor(),
        transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
    ])


# --------------------------------------------------------------------------- image folders
# One policy for every decoder (torchvision's, PIL's, nvJPEG's): images of more pixels than
# PIL's decompression-bomb limit are refused, naming the file; images of more than 8 bits
# per channel are scaled to 8 (their high byte, as PIL itself reads 16-bit RGB files).
MAX_PIXELS = Image.MAX_IMAGE_PIXELS  # 89,478,485 (PIL's default)
SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def check_pixels(path: str, height: int, width: int) -> None:
    if height * width > MAX_PIXELS:
        raise ImageError(too_large(path, f"{width} x {height} = {height * width:,} pixels"))


def too_large(path: str, size: str) -> str:
    return (f"image {path} is {size}, more than the {MAX_PIXELS:,} pixels this package "
            f"decodes (PIL's decompression-bomb limit, for pretraining and probing alike): "
            f"resize it (e.g. to 1024 px on its short side) or remove it")


def as_rgb(im: Image.Image, path: str) -> Image.Image:
    """An opened image as 8-bit RGB: 16-bit greyscale scaled to 8 bits (PIL's own conversion
    would clip it to white); floating-point and out-of-range integer images refused."""
    if im.mode in SIXTEEN_BIT:
        a = np.asarray(im)
        if a.size and (a.min() < 0 or a.max() > 65535):
            raise ImageError(f"image {path} holds {im.mode} values outside 0-65535 "
                             f"({a.min()}..{a.max()}): convert it to an 8- or 16-bit image")
        return Image.fromarray((a.astype(np.uint32) >> 8).astype(np.uint8), "L").convert("RGB")
    if im.mode == "F":
        raise ImageError(f"image {path} holds floating-point pixels (mode F), which have no "
                         f"standard range: convert it to an 8- or 16-bit image")
    return im.convert("RGB")


def _open_rgb(path: str) -> Image.Image:
    try:
        with open(path, "rb") as f:
            im = Image.open(f)
            check_pixels(path, im.height, im.width)
            return as_rgb(im, path)
    except Image.DecompressionBombError as e:  # past twice the limit: Image.open refuses
        raise ImageError(too_large(path, f"too large ({e})")) from e
    except ImageError:  # our own verdict on the header (a ValueError too)
        raise
    except (OSError, SyntaxError, ValueError) as e:
        raise _unreadable(path, e) from e


JPEG_MAGIC = b"\xff\xd8\xff"


def _unreadable(path: str, e: Exception) -> ImageError:
    reason = ("not an image file PIL can identify" if isinstance(e, UnidentifiedImageError)
              else str(e))  # (PIL's own message repeats the path)
    return ImageError(f"cannot read image {path} ({reason}): delete or replace this file")


def decode(path: str, data: torch.Tensor | None = None) -> torch.Tensor:
    """An image file as a ``uint8`` tensor ``[3, h, w]`` (RGB), decoded on the CPU by
    torchvision (libjpeg-turbo, libpng, libwebp) or, for the other formats, by PIL; the
    size checked first (:data:`MAX_PIXELS`), 16-bit images scaled to 8 bits."""
    data = read_file(path) if data is None else data
    try:  # the header only: how large the image is
        with Image.open(io.BytesIO(data.numpy().tobytes())) as im:
            check_pixels(path, im.height, im.width)
    except Image.DecompressionBombError as e:
        raise ImageError(too_large(path, f"too large ({e})")) from e
    except ImageError:  # our own verdict on the header (a ValueError too)
        raise
    except (OSError, SyntaxError, ValueError):
        pass  # not for PIL: torchvision's decoder says what it is
    try:
        image = decode_image(data, mode=ImageReadMode.RGB)
    except RuntimeError:  # a format torchvision.io does not decode (BMP, TIFF, ...)
        return pil_to_tensor(_open_rgb(path))
    if image.dtype != torch.uint8:  # a 16-bit PNG: its high byte, as PIL reads 16-bit RGB
        image = to_dtype(image, torch.uint8, scale=True)
    return image


def read_for_device(path: str) -> tuple[torch.Tensor, tuple[int, int]]:
    """What a data-loader worker hands a GPU's JPEG decoder: a baseline or progressive
    RGB / greyscale JPEG's bytes (``uint8 [n]``) and its ``(height, width)`` from the header;
    any other file (PNG, a CMYK JPEG, ...) decoded here on the CPU (``[3, h, w]``)."""
    data = read_file(path)
    if bytes(data[:3].tolist()) == JPEG_MAGIC:
        try:
            with Image.open(io.BytesIO(data.numpy().tobytes())) as im:  # the header only
                if im.format == "JPEG" and im.mode in ("RGB", "L"):
                    check_pixels(path, im.height, im.width)
                    return data, (im.height, im.width)
        except Image.DecompressionBombError as e:
            raise ImageError(too_large(path, f"too large ({e})")) from e
        except ImageError:  # our own verdict on the header (a ValueError too)
            raise
        except (OSError, SyntaxError, ValueError) as e:
            raise _unreadable(path, e) from e
    return decode(path, data), None


class DecodedCache:
    """Every image of a folder, decoded once into ``uint8`` tensors, in host memory or on
    the GPU (``--cache host`` / ``--cache device``): an epoch then costs no reading and no
    decoding. Images of one size are stacked into one tensor ``[N, 3, h, w]`` (a
    micro-batch is one gather); others are kept one tensor each. Refused, before anything
    is decoded, when the images would take more than ``limit_gib``."""

    def __init__(self, folder, device: torch.device, limit_gib: float = 8.0):
        paths = [p for p, _ in folder.samples]
        sizes = list(ThreadPoolExecutor(16).map(_header_size, paths))
        need = sum(3 * h * w for h, w in sizes)
        if need > limit_gib * 2**30:
            raise UsageError(
                f"the decoded images of {folder.root} take {need / 2**30:.1f} GiB, more than "
                f"--cache-gib {limit_gib:g}: raise --cache-gib if the {device.type} memory "
                f"holds them, or train without --cache")
        with ThreadPoolExecutor(generation_workers(None)) as pool:  # decoders drop the GIL
            images = list(progress(pool.map(decode, paths), total=len(paths),
                                   desc="decoding into the cache", unit="image", leave=False))
        same = len({tuple(im.shape) for im in images}) == 1
        self.images = (torch.stack(images).to(device) if same
                       else [im.to(device) for im in images])
        self.device, self.nbytes = device, need

    def __len__(self) -> int:
        return len(self.images)

    def gather(self, index: torch.Tensor):
        """The images of a micro-batch (``index``: a CPU tensor), on the cache's device."""
        if isinstance(self.images, torch.Tensor):
            return self.images[index.to(self.device, non_blocking=True)]
        return [self.images[i] for i in index.tolist()]


def decoded_cache(kind: str, folder, device: torch.device,
                  limit_gib: float = 8.0) -> DecodedCache | None:
    """``--cache``: ``none`` (None), ``host`` (a :class:`DecodedCache` in host memory) or
    ``device`` (on ``device``)."""
    if kind == "none":
        return None
    return DecodedCache(folder, device if kind == "device" else torch.device("cpu"), limit_gib)


def _header_size(path: str) -> tuple[int, int]:
    try:
        with Image.open(path) as im:
            check_pixels(path, im.height, im.width)
            return im.height, im.width
    except Image.DecompressionBombError as e:
        raise ImageError(too_large(path, f"too large ({e})")) from e
    except ImageError:  # our own verdict on the header (a ValueError too)
        raise
    except (OSError, SyntaxError, ValueError) as e:
        raise _unreadable(path, e) from e


def check_data_root(root: str | os.PathLike, splits=("train",)) -> Path:
    """Raise a clear error unless ``root`` holds the given ImageNet-layout splits."""
    root = Path(root).expanduser()
    make = f"`jepa-lite make-data synthetic --out {root}`"
    if not root.is_dir():
        raise FileNotFoundError(
            f"data root {root} does not exist: pass a folder in the ImageNet layout "
            f"(ROOT/train/<class>/<image>), or generate one with {make}"
        )
    for split in splits:
        if not (root / split).is_dir():
            found = sorted(p.name for p in root.iterdir())[:5]
            raise FileNotFoundError(
                f"data root {root} has no '{split}/' folder (found {found or 'nothing'}): "
                f"expected ROOT/{split}/<class>/<image> as in ImageNet"
            )
        if not any(p.is_dir() for p in (root / split).iterdir()):
            raise FileNotFoundError(
                f"{root / split} is empty: put one folder of images per class in it, "
                f"or generate a data set with {make}"
            )
    return root


@dataclass(frozen=True)
class Scan:
    """The files of one split: class names, ``(path, class)`` pairs and a fingerprint of
    every file's relative path, size and modification time (the data set's identity,
    wherever it lies: a copy that keeps the files' times, ``cp -a``, has the same)."""

    folder: str
    classes: list
    samples: list
    fingerprint: str
    content: str = ""  # the fingerprint with every file's inode and change time (below)


def _list_class(folder: str) -> list[tuple[str, int, int]]:
    """``(path, size, mtime_ns)`` of every image below a class folder, in torchvision's
    order (``os.walk``, sorted, symbolic links followed); a folder reached twice (a link
    loop, or two links to one folder, which would count its images twice) is refused."""
    walked, seen = [], {}
    for root, dirs, names in os.walk(folder, followlinks=True):
        real = os.path.realpath(root)
        if real in seen:
            raise UsageError(f"{root} is {seen[real]} again (a symbolic link loop, or two "
                             f"links to one folder): its images would be counted more than "
                             f"once; remove the link")
        seen[real] = root
        walked.append((root, dirs, names))
    found = []
    for root, _, names in sorted(walked):
        for name in sorted(names):
            if has_file_allowed_extension(name, IMG_EXTENSIONS):
                path = os.path.join(root, name)
                st = os.stat(path)
                found.append((path, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino))
    return found


def scan(root: str | os.PathLike, split: str = "train") -> Scan:
    """The files of ``root/split``, as torchvision's ImageFolder finds them, with one ``stat``
    per file: the fingerprint changes when any file is added, removed, renamed, or
    rewritten in place (its size or time changes), so features and runs of another state of
    the data are refused. Class folders are listed in parallel threads (a network disk
    answers many ``stat`` calls at once); nothing is cached between calls."""
    folder = str((check_data_root(root, (split,)) / split).resolve())
    classes, _ = datasets.folder.find_classes(folder)
    with ThreadPoolExecutor(max_workers=16) as pool:
        listed = list(pool.map(_list_class, [os.path.join(folder, c) for c in classes]))
    samples = [(path, c) for c, files in enumerate(listed) for path, *_ in files]
    stamp = [[os.path.relpath(path, folder), size, mtime] for files in listed
             for path, size, mtime, _, _ in files]
    digest = hashlib.sha256(json.dumps([classes, stamp]).encode()).hexdigest()[:16]
    # the content: a file written again changes its change time, even when its size and
    # modification time are set back (only the clock sets ctime), so what features were
    # computed from is told apart without reading every image again
    written = [[*s, ctime, ino] for s, (_, _, _, ctime, ino) in
               zip(stamp, (f for files in listed for f in files))]
    content = hashlib.sha256(json.dumps([classes, written]).encode()).hexdigest()[:16]
    return Scan(folder, classes, samples, digest, content)


class ScannedImageFolder(datasets.ImageFolder):
    """torchvision's ImageFolder, fed by :func:`scan` instead of walking the folders."""

    def __init__(self, found: Scan, transform=None):
        self._found = found
        super().__init__(found.folder, transform=transform, loader=_open_rgb, allow_empty=True)
        self.fingerprint, self.content = found.fingerprint, found.content

    def find_classes(self, directory):
        return self._found.classes, {c: i for i, c in enumerate(self._found.classes)}

    def make_dataset(self, directory, class_to_idx, extensions=None, is_valid_file=None,
                     allow_empty=False):
        return list(self._found.samples)


def image_folder(
    root: str | os.PathLike, split: str = "train", transform=None
) -> datasets.ImageFolder:
    """An ImageFolder over ``root/split``; every class folder must hold at least one image."""
    root = check_data_root(root, (split,))
    ds = ScannedImageFolder(scan(root, split), transform)
    counts = np.bincount(np.asarray(ds.targets, dtype=np.int64), minlength=len(ds.classes))
    empty = [ds.classes[i] for i in np.flatnonzero(counts == 0)]
    if empty:
        raise FileNotFoundError(
            f"class folder {root / split / empty[0]} holds no images "
            f"({len(empty)} empty class folder(s): {empty[:5]}); add images "
            f"({', '.join(IMG_EXTENSIONS[:4])}, ...) or remove the folder"
        )
    return ds


# --------------------------------------------------------------------------- generated data
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
    bg = BACKGROUND + np.kron(grain, np.ones((8, 8, 1)))
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


def _background(rng: np.random.Generator, s: int) -> np.ndarray:
    """A colour gradient, low-frequency colour blotches and one texture (stripes, checks or
    grain), each with its own random colours, frequency and orientation."""
    yy, xx = np.mgrid[0:s, 0:s] / s
    a = rng.uniform(0, 2 * np.pi)
    t = np.cos(a) * xx + np.sin(a) * yy
    t = (t - t.min()) / (np.ptp(t) + 1e-9)
    img = (rng.uniform(30, 225, 3) * (1 - t[..., None]) + rng.uniform(30, 225, 3) * t[..., None])
    blotches = Image.fromarray(np.uint8(np.clip(128 + rng.normal(0, 40, (5, 5, 3)), 0, 255)))
    img += np.asarray(blotches.resize((s, s), Image.Resampling.BICUBIC), np.float64) - 128
    b = rng.uniform(0, 2 * np.pi)
    texture = rng.integers(3)
    if texture == 0:  # stripes
        tex = np.sin(2 * np.pi * rng.uniform(3, 14) * (np.cos(b) * xx + np.sin(b) * yy))
    elif texture == 1:  # checks
        f = rng.integers(3, 10)
        tex = 2.0 * (((xx * f).astype(int) + (yy * f).astype(int)) % 2) - 1
    else:  # grain
        tex = rng.normal(0, 1, (s, s))
    return img + tex[..., None] * rng.uniform(8, 35)


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
    img = Image.fromarray(np.uint8(np.clip(_background(rng, s), 0, 255)))
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
    yy, xx = np.mgrid[0:s, 0:s] / s  # lighting: a soft spot of light, darker elsewhere
    cx, cy = rng.uniform(0, 1, 2)
    light = 0.55 + 0.65 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / rng.uniform(0.1, 0.5))
    arr = np.clip(np.asarray(img, np.float64) * light[..., None], 0, 255)
    return Image.fromarray(np.uint8(arr)).resize((size, size), Image.Resampling.LANCZOS)


RENDERERS = {"scenes": render_synthetic, "busy": render_busy}


# zlib's fastest level, lossless like any: 0.9 ms to write a 128 px image instead of 3.2 ms
# at the default 6, files 16 % larger
PNG_LEVEL = 1


def generation_workers(workers: int | None = None) -> int:
    """Threads that draw a generated data set: ``workers``, else one per CPU core."""
    if workers is not None and workers < 1:
        raise UsageError(f"workers={workers}: at least 1 thread draws the images (--workers)")
    return workers or os.cpu_count() or 1


# Above this many images a generated data set is drawn by processes, below it by threads:
# the drawing holds the GIL a third of its time (threads: 1.9x on 2 cores), and a process
# costs a second or two of importing torch before its first image
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


# --------------------------------------------------------------------------- ImageNet-100
def imagenet100_classes() -> list[str]:
    """The standard ImageNet-100 class list (CMC), 100 WordNet ids."""
    text = resources.files("jepa_lite").joinpath("resources/imagenet100_classes.txt").read_text()
    return text.split()


def make_imagenet100(imagenet: str | os.PathLike, out: str | os.PathLike,
                     classes: list[str] | None = None) -> Path:
    """Build the ImageNet-100 subset of an ImageNet root as class-folder symlinks.

    ``imagenet`` must hold ``train/`` and ``val/`` sorted into WordNet-id class folders. Every
    class is checked in both splits before anything is written.
    """
    src, out = Path(imagenet).expanduser().resolve(), Path(out).expanduser()
    wnids = classes or imagenet100_classes()
    if not src.is_dir():
        raise FileNotFoundError(f"ImageNet root {src} does not exist: pass --imagenet ROOT, "
                                f"the folder that holds train/ and val/")
    for split in SPLITS:
        folder = src / split
        if not folder.is_dir():
            raise FileNotFoundError(f"ImageNet root {src} has no {split}/ folder")
        missing = [w for w in wnids if not (folder / w).is_dir()]
        if missing and any(p.suffix.upper() == ".JPEG" for p in folder.iterdir()):
            raise FileNotFoundError(
                f"{folder} holds images directly, not class folders: sort the validation "
                f"images into <wnid>/ folders first (e.g. with the widely used valprep.sh)"
            )
        if missing:
            raise FileNotFoundError(
                f"{len(missing)} of the {len(wnids)} ImageNet-100 classes are missing from "
                f"{folder}: {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}; "
                f"is {src} a full ImageNet-1k root?"
            )
        empty = [w for w in wnids if not any((folder / w).iterdir())]
        if empty:
            raise FileNotFoundError(f"class folder {folder / empty[0]} is empty "
                                    f"({len(empty)} empty in {split}/)")
    for split in SPLITS:
        (out / split).mkdir(parents=True, exist_ok=True)
        for w in wnids:
            link, target = out / split / w, src / split / w
            if link.is_symlink() and Path(os.readlink(link)) == target:
                continue
            if link.exists() or link.is_symlink():
                raise FileExistsError(f"{link} already exists and is not a link to {target}; "
                                      f"choose another --out")
            link.symlink_to(target, target_is_directory=True)
    (out / "classes.txt").write_text("\n".join(wnids) + "\n")
    return out
