"""Image folders, the paper's transforms, decoding and caches, and the ImageNet-100 subset
(the generated data sets: ``jepa_lite.scenes``).

Every data set here is an ImageFolder root in the ImageNet layout::

    ROOT/train/<class>/<image>   ROOT/val/<class>/<image>
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torchvision import datasets, transforms
from torchvision.datasets.folder import IMG_EXTENSIONS, has_file_allowed_extension
from torchvision.io import ImageReadMode, decode_image, read_file
from torchvision.transforms.functional import pil_to_tensor
from torchvision.transforms.v2.functional import to_dtype

from jepa_lite.errors import ImageError, UsageError
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


def generation_workers(workers: int | None = None) -> int:
    """Threads for work per image (drawing a generated data set, decoding into a cache):
    ``workers``, else one per CPU core."""
    if workers is not None and workers < 1:
        raise UsageError(f"workers={workers}: at least 1 thread draws the images (--workers)")
    return workers or os.cpu_count() or 1


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
