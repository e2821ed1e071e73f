"""Feature banks: a frozen encoder's pooled features, memory-mapped on disk.

A bank is a folder ``OUT/features/<split>-<image size>/`` with ``features.npy`` (``[N, C]``
float16, written block by block into a memory map, never assembled in memory; float32 for
an encoder whose features exceed float16's 65504, said when it happens), ``labels.npy``
and ``meta.json`` (which encoder, which data set). ImageNet-1k's training bank is
1.28 M x 2048 x 2 bytes = 5.2 GB; the probes read it in chunks (``jepa_lite.eval.probes``).

Under torchrun every rank extracts a contiguous share of the images into the same file (on
its own GPU, under autocast); rank 0 then marks the bank complete.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset

from jepa_lite import distributed
from jepa_lite.checkpoint import differences
from jepa_lite.data.folders import eval_normalize, eval_pixels, image_folder
from jepa_lite.errors import UsageError, cannot_write
from jepa_lite.progress import progress
from jepa_lite.runtime import autocast, memory_format, resolve_precision


@dataclass
class Bank:
    """An opened bank: ``features`` is a read-only memory map (rows are read when used)."""

    path: Path
    features: np.ndarray  # [N, C] float16 (or float32), memory-mapped
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
        raise UsageError(f"the feature bank {path} is incomplete (its extraction stopped): "
                         f"extract it again")
    return Bank(path, np.load(path / "features.npy", mmap_mode="r"),
                torch.from_numpy(np.load(path / "labels.npy")).long(), meta["classes"], meta)


def create(path: Path, dtype: str, shape: tuple[int, int]) -> np.memmap:
    """A new memory-mapped ``.npy`` file, its disk space reserved before anything is written
    into it: a memory map written on a full disk kills the process (SIGBUS) instead of
    raising. A disk without the space is an error that names the file (removed) and what to
    do."""
    try:
        bank = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)
        if hasattr(os, "posix_fallocate"):  # macOS, Windows: a sparse file, as numpy made it
            with open(path, "r+b") as f:
                try:
                    os.posix_fallocate(f.fileno(), 0, os.path.getsize(path))
                except OSError as e:
                    if e.errno not in (errno.EOPNOTSUPP, errno.EINVAL):  # a file system
                        raise  # without it keeps the sparse file
        return bank
    except OSError as e:
        path.unlink(missing_ok=True)
        raise cannot_write(path, e) from None


def weights_digest(encoder: torch.nn.Module) -> str:
    """A digest of every tensor of ``encoder``'s state (weights and BatchNorm statistics):
    the encoder a bank was extracted from, whatever its name (``key``)."""
    h = hashlib.sha256()
    for name, t in encoder.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def extract(encoder: torch.nn.Module, key: str, data_root, split: str, out_dir,
            image_size: int = 224, batch_size: int = 256, device: str | torch.device = "cpu",
            workers: int = 0, overwrite: bool = False) -> Bank:
    """The bank of ``encoder`` (named ``key``) on ``data_root/split``, extracted once.

    Features: the encoder in eval mode on resized and centre-cropped images, global average
    pooled. A complete bank of the same encoder (by the digest of its weights, not only its
    name ``key``) and the same files (names, sizes, times and change times: a file written
    again is another) is reused; a bank of another encoder or data is an error (it may be
    gigabytes of work) unless ``overwrite``.
    """
    device = torch.device(device)
    folder = bank_dir(out_dir, split, image_size)
    dataset = image_folder(data_root, split, eval_pixels(image_size, encoder.patch))
    if len(dataset) == 0:
        raise UsageError(f"the {split}/ split of {data_root} has no images")
    source = {"data_root": str(Path(data_root).resolve()), "files": len(dataset),
              "fingerprint": dataset.fingerprint, "content": dataset.content}
    weights = weights_digest(encoder)
    meta_path = folder / "meta.json"
    if meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        same = not differences({k: meta.get(k) for k in ("encoder", "weights", "source")},
                               {"encoder": key, "weights": weights, "source": source})
        if same and meta.get("complete"):
            return open_bank(folder)
        if not same and meta.get("complete") and not overwrite:
            if meta["classes"] != dataset.classes:
                what = (f"computed on other classes ({len(meta['classes'])} classes, e.g. "
                        f"{meta['classes'][:3]}) than {data_root} has ({len(dataset.classes)}, "
                        f"e.g. {dataset.classes[:3]})")
            elif meta["encoder"] != key:
                what = f"extracted from {meta['encoder']}, not from {key}"
            elif meta.get("weights") != weights:
                what = (f"extracted from {key} when its weights were others (the same name, "
                        f"another model)")
            elif meta["source"]["data_root"] != source["data_root"]:
                what = (f"computed on {meta['source']['data_root']} "
                        f"({meta['source']['files']} files), not on {source['data_root']} "
                        f"({source['files']} files)")
            elif meta["source"].get("fingerprint") == source["fingerprint"]:
                what = (f"computed on {source['data_root']} before a file was written again "
                        f"(the same names, sizes and times, but new contents)")
            else:
                what = (f"computed on {source['data_root']} when its files were others "
                        f"({meta['source']['files']} files, fingerprint "
                        f"{meta['source'].get('fingerprint')}; now {source['files']} files, "
                        f"fingerprint {source['fingerprint']}: a file was added, removed, "
                        f"renamed or rewritten since)")
            raise UsageError(
                f"the {split} features in {folder} were {what}: use another --out, delete "
                f"{folder}, or replace them (jepa-lite probe --overwrite-features)")
    distributed.barrier()  # every rank has read meta.json before rank 0 rewrites it
    meta = {"encoder": key, "weights": weights, "source": source, "split": split,
            "image_size": image_size, "classes": dataset.classes,
            "shape": [len(dataset), encoder.dim]}
    for dtype in ("float16", "float32"):
        largest = _extract_into(folder, meta, dtype, encoder, dataset, batch_size, device,
                                workers)
        if largest is None:
            break
        if distributed.is_main():
            print(f"note: {split} features reach |value| {largest:.3g}, more than float16 "
                  f"holds (65504): the bank is extracted again in float32 (twice the disk)")
    distributed.barrier()
    if distributed.is_main():
        os.replace(folder / "features.npy.partial", folder / "features.npy")
        meta_path.write_text(json.dumps({**meta, "dtype": dtype, "complete": True}, indent=1))
    distributed.barrier()
    return open_bank(folder)


def _extract_into(folder: Path, meta: dict, dtype: str, encoder, dataset, batch_size: int,
                  device: torch.device, workers: int) -> float | None:
    """Every rank writes its contiguous share of the pooled features into one ``dtype``
    memory map; returns None, or (on every rank) the largest |value| of any rank when some
    feature does not fit ``dtype``. A non-finite feature is an error."""
    rank, world = distributed.rank(), distributed.world_size()
    n, dim = meta["shape"]
    partial = folder / "features.npy.partial"
    if rank == 0:
        folder.mkdir(parents=True, exist_ok=True)
        create(partial, dtype, (n, dim)).flush()  # its disk space first
        (folder / "meta.json").write_text(json.dumps({**meta, "dtype": dtype,
                                                      "complete": False}, indent=1))
        np.save(folder / "labels.npy", np.asarray(dataset.targets, dtype=np.int64))
    distributed.barrier()
    start, stop = n * rank // world, n * (rank + 1) // world  # this rank's share
    loader = DataLoader(Subset(dataset, range(start, stop)), batch_size, shuffle=False,
                        num_workers=workers, pin_memory=device.type == "cuda")
    bank = np.load(partial, mmap_mode="r+")
    # the inference layout (runtime.memory_format); the encoder is left so, in evaluation
    # mode, on the device
    layout = memory_format(device, training=False)
    encoder = encoder.to(device, memory_format=layout).eval()
    precision = resolve_precision(device)
    limit = float(np.finfo(dtype).max)
    row, largest = start, torch.zeros((), device=device)
    with torch.no_grad():
        for images, _ in progress(loader, desc=f"features {meta['split']} ({dtype})",
                                  leave=False, disable=rank != 0):
            images = eval_normalize(images.to(device, non_blocking=True))  # uint8 until here
            with autocast(device, precision):
                f = encoder(images.contiguous(memory_format=layout))
            f = encoder.pool(f.float())
            if not torch.isfinite(f).all():
                raise UsageError(f"pooled features of {meta['split']} images {row}-"
                                 f"{row + len(f)} are not finite (inf or nan): the encoder "
                                 f"{meta['encoder']} has diverged; probe an earlier checkpoint")
            largest = torch.maximum(largest, f.abs().max())
            bank[row:row + len(f)] = f.to(getattr(torch, dtype)).cpu().numpy()
            row += len(f)
    bank.flush()
    del bank
    seen = distributed.all_reduce_max(largest).item()
    return seen if seen > limit else None


def write_bank(path, blocks, n: int, dim: int, classes: list[str],
               encoder: str = "generated", dtype: str = "float16") -> Bank:
    """A bank of ``n`` rows from an iterable of ``(features [b, dim], labels [b])`` blocks,
    written block by block as :func:`extract` writes (generated banks for benchmarks and
    tests: nothing of size ``n x dim`` is ever held in memory)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    bank = create(path / "features.npy.partial", dtype, (n, dim))
    labels, row = np.empty(n, dtype=np.int64), 0
    for f, y in blocks:
        bank[row:row + len(f)] = np.asarray(f, dtype=dtype)
        labels[row:row + len(f)] = np.asarray(y)
        row += len(f)
    if row != n:
        raise UsageError(f"the blocks held {row} rows, not {n}")
    bank.flush()
    del bank
    np.save(path / "labels.npy", labels)
    os.replace(path / "features.npy.partial", path / "features.npy")
    (path / "meta.json").write_text(json.dumps({
        "encoder": encoder, "source": {"data_root": "generated", "files": n},
        "classes": classes, "shape": [n, dim], "dtype": dtype, "complete": True}))
    return open_bank(path)
