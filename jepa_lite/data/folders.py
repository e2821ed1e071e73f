"""Image folders in the ImageNet layout and the paper's evaluation transform.

Every data set here is an ImageFolder root in the ImageNet layout::

    ROOT/train/<class>/<image>   ROOT/val/<class>/<image>
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torchvision import datasets, transforms
from torchvision.datasets.folder import IMG_EXTENSIONS, has_file_allowed_extension
from torchvision.transforms.v2 import functional as TF

from jepa_lite.data.decoding import open_rgb
from jepa_lite.errors import UsageError
from jepa_lite.masking import PATCH, check_image_size

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
SPLITS = ("train", "val")


# --------------------------------------------------------------------------- transforms
def eval_transform(image_size: int = 224, patch: int = PATCH) -> transforms.Compose:
    """Resize to 256/224 of the size, centre crop, normalise (224 -> Resize 256, crop 224)."""
    return transforms.Compose([*eval_pixels(image_size, patch).transforms[:2],
                               transforms.ToTensor(),
                               transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


def eval_pixels(image_size: int = 224, patch: int = PATCH) -> transforms.Compose:
    """:func:`eval_transform` up to its pixels: resized, centre-cropped, ``uint8``
    ``[3, H, W]``; :func:`eval_normalize` does the rest on a whole batch, where it runs."""
    h, w = check_image_size(image_size, patch)
    return transforms.Compose([
        transforms.Resize(round(min(h, w) * 256 / 224)),
        transforms.CenterCrop((h, w)),
        transforms.PILToTensor(),
    ])


def eval_normalize(pixels: torch.Tensor) -> torch.Tensor:
    """``ToTensor`` then ``Normalize`` of :func:`eval_transform` on a ``uint8`` batch
    ``[B, 3, H, W]``, on its device: the same operations in the same order (on the CPU the
    same numbers, tested), and a loader worker hands over a quarter of the bytes."""
    x = pixels.to(torch.get_default_dtype())  # ToTensor's dtype
    # 255 as a tensor on the device: CUDA divides by a Python number as x * (1 / 255),
    # which differs from x / 255 in the last bit for half of the values
    x.div_(torch.full((), 255.0, dtype=x.dtype, device=x.device))
    return TF.normalize(x, list(IMAGENET_MEAN), list(IMAGENET_STD), inplace=True)


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
        super().__init__(found.folder, transform=transform, loader=open_rgb, allow_empty=True)
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
