"""Checkpoints: written atomically, loaded safely, and checked before a run resumes."""

from __future__ import annotations

import os
from pathlib import Path

import torch


def atomic_save(obj, path: Path) -> None:
    """``torch.save`` to a temporary file, then rename: a crash never leaves half a file."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Load a checkpoint safely (``weights_only=True``: tensors and plain values only)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    return torch.load(path, map_location="cpu", weights_only=True)


def check_resume(cfg, ckpt: dict, path: Path) -> None:
    """Refuse to resume ``ckpt`` with settings that would make it another run."""
    old = ckpt["config"]
    if old["arch"] != cfg.arch:
        raise ValueError(f"checkpoint {path} was trained with {old['arch']}, not {cfg.arch}: "
                         f"use --arch {old['arch']}, or another --out for a new run")
    changed = [k for k in ("image_size", "epochs", "batch_size", "lr", "seed", "strategy")
               if old.get(k) != getattr(cfg, k)]
    if changed:
        raise ValueError(f"--resume with other settings than {path} ({', '.join(changed)}); "
                         f"resume with the same settings, or start a new run in another --out")
