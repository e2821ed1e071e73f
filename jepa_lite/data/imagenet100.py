"""The ImageNet-100 subset of ImageNet (CMC's 100 classes), built as class-folder symlinks."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from jepa_lite.data.folders import SPLITS


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
