"""Feature banks: a frozen encoder's pooled features, in fp16, memory-mapped on disk.

A bank is a folder ``OUT/features/<split>-<image size>/`` with ``features.npy`` (``[N, C]``
float16, written block by block into a memory map, never assembled in memory), ``labels.npy``
and ``meta.json`` (which encoder, which data set). ImageNet-1k's training bank is
1.28 M x 2048 x 2 bytes = 5.2 GB; the probes read it in chunks (``jepa_lite.probes``).

Under torchrun every rank extracts a contiguous share of the images into the same file (on
its own GPU, under autocast); rank 0 then marks the bank complete.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset

from jepa_lite import distributed
from jepa_lite.backbone import encoder_patch
from jepa_lite.data import eval_transform, image_folder
from jepa_lite.progress import progress
from jepa_lite.runtime import autocast, resolve_precision


@dataclass
class Bank:
    """An opened bank: ``features`` is a read-only memory map (rows are read when used)."""

    path: Path
    features: np.ndarray  # [N, C] float16, memory-mapped
    labels: torch.Tensor  # [N] int64
    classes: list[str]
    meta: dict

    def __len__(self) -> int:
        return len(self.labels)

    def rows(self, start: int = 0, stop: int | None = None) -> torch.Tensor:
        """Rows ``start:stop`` as a float32 tensor (a copy of just those rows)."""
        return torch.from_numpy(np.array(self.features[start:stop])).float()


def bank_dir(out_dir, split: str, image_size: int) -> Path:
    return Path(out_dir) / "features" / f"{split}-{image_size}"


def open_bank(path: str | os.PathLike) -> Bank:
    """Open a complete bank (read-only)."""
    path = Path(path)
    meta = json.loads((path / "meta.json").read_text())
    if not meta.get("complete"):
        raise ValueError(f"the feature bank {path} is incomplete (its extraction stopped): "
                         f"extract it again")
    return Bank(path, np.load(path / "features.npy", mmap_mode="r"),
                torch.from_numpy(np.load(path / "labels.npy")).long(), meta["classes"], meta)


def extract(encoder: torch.nn.Module, key: str, data_root, split: str, out_dir,
            image_size: int = 224, batch_size: int = 256, device: str | torch.device = "cpu",
            workers: int = 0, overwrite: bool = False) -> Bank:
    """The bank of ``encoder`` (named ``key``) on ``data_root/split``, extracted once.

    Features: the encoder in eval mode on resized and centre-cropped images, global average
    pooled. A complete bank of the same encoder and data is reused; a bank of another
    encoder or data set is an error (it may be gigabytes of work) unless ``overwrite``.
    """
    device = torch.device(device)
    folder = bank_dir(out_dir, split, image_size)
    dataset = image_folder(data_root, split, eval_transform(image_size, encoder_patch(encoder)))
    if len(dataset) == 0:
        raise ValueError(f"the {split}/ split of {data_root} has no images")
    source = {"data_root": str(Path(data_root).resolve()), "files": len(dataset),
              "fingerprint": dataset.fingerprint}
    meta_path = folder / "meta.json"
    if meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        same = meta["encoder"] == key and meta["source"] == source
        if same and meta.get("complete"):
            return open_bank(folder)
        if not same and meta.get("complete") and not overwrite:
            if meta["classes"] != dataset.classes:
                what = (f"computed on other classes ({len(meta['classes'])} classes, e.g. "
                        f"{meta['classes'][:3]}) than {data_root} has ({len(dataset.classes)}, "
                        f"e.g. {dataset.classes[:3]})")
            elif meta["encoder"] == key:
                what = (f"computed on {meta['source']['data_root']} "
                        f"({meta['source']['files']} files), not on {source['data_root']} "
                        f"({source['files']} files)")
            else:
                what = f"extracted from {meta['encoder']}, not from {key}"
            raise ValueError(
                f"the {split} features in {folder} were {what}: use another --out, delete "
                f"{folder}, or replace them (jepa-lite probe --overwrite-features)")
    distributed.barrier()  # every rank has read meta.json before rank 0 rewrites it
    rank, world = distributed.rank(), distributed.world_size()
    n, dim = len(dataset), encoder.out_channels
    partial = folder / "features.npy.partial"
    if rank == 0:
        folder.mkdir(parents=True, exist_ok=True)
        meta_path.write_text(json.dumps({"encoder": key, "source": source, "split": split,
                                         "image_size": image_size, "classes": dataset.classes,
                                         "shape": [n, dim], "dtype": "float16",
                                         "complete": False}, indent=1))
        np.lib.format.open_memmap(partial, mode="w+", dtype=np.float16, shape=(n, dim)).flush()
        np.save(folder / "labels.npy", np.asarray(dataset.targets, dtype=np.int64))
    distributed.barrier()
    start, stop = n * rank // world, n * (rank + 1) // world  # this rank's share
    loader = DataLoader(Subset(dataset, range(start, stop)), batch_size, shuffle=False,
                        num_workers=workers, pin_memory=device.type == "cuda")
    bank = np.load(partial, mmap_mode="r+")
    encoder = encoder.to(device).eval()
    precision = resolve_precision(device)
    row = start
    with torch.no_grad():
        for images, _ in progress(loader, desc=f"features {split}", leave=False,
                                  disable=rank != 0):
            with autocast(device, precision):
                f = encoder(images.to(device, non_blocking=True))
            f = f.float().mean((2, 3))
            if not torch.isfinite(f.half()).all():
                raise ValueError(f"pooled features of {split} images {row}-{row + len(f)} do "
                                 f"not fit in float16 (largest |value| "
                                 f"{f.abs().max().item():.3g}); this encoder's features are "
                                 f"not usable for a float16 bank")
            bank[row:row + len(f)] = f.half().cpu().numpy()
            row += len(f)
    bank.flush()
    del bank
    distributed.barrier()
    if rank == 0:
        os.replace(partial, folder / "features.npy")
        meta = json.loads(meta_path.read_text())
        meta_path.write_text(json.dumps({**meta, "complete": True}, indent=1))
    distributed.barrier()
    return open_bank(folder)


def write_bank(path, blocks, n: int, dim: int, classes: list[str],
               encoder: str = "generated") -> Bank:
    """A bank of ``n`` rows from an iterable of ``(features [b, dim], labels [b])`` blocks,
    written block by block as :func:`extract` writes (generated banks for benchmarks and
    tests: nothing of size ``n x dim`` is ever held in memory)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    bank = np.lib.format.open_memmap(path / "features.npy.partial", mode="w+",
                                     dtype=np.float16, shape=(n, dim))
    labels, row = np.empty(n, dtype=np.int64), 0
    for f, y in blocks:
        bank[row:row + len(f)] = np.asarray(f, dtype=np.float16)
        labels[row:row + len(f)] = np.asarray(y)
        row += len(f)
    if row != n:
        raise ValueError(f"the blocks held {row} rows, not {n}")
    bank.flush()
    del bank
    np.save(path / "labels.npy", labels)
    os.replace(path / "features.npy.partial", path / "features.npy")
    (path / "meta.json").write_text(json.dumps({
        "encoder": encoder, "source": {"data_root": "generated", "files": n},
        "classes": classes, "shape": [n, dim], "dtype": "float16", "complete": True}))
    return open_bank(path)
