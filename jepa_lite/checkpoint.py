"""A run folder's files: checkpoints written atomically and loaded safely, the checks that
keep a resumed run the same run, and the lock that keeps two trainers out of one folder."""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

import torch

from jepa_lite.errors import UsageError

# Bumped when a checkpoint can no longer continue a run exactly (2: the seeded micro-batch
# loader; a format-1 checkpoint's run drew its images and masks differently).
FORMAT = 2


def atomic_save(obj, path: Path) -> None:
    """``torch.save`` to a temporary file, then rename: a crash never leaves half a file."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | os.PathLike, mmap: bool = False) -> dict:
    """Load a checkpoint safely (``weights_only=True``: tensors and plain values only).
    ``mmap``: tensors are mapped, not read (a ResNet-50 run's checkpoint is ~0.5 GB; its
    configuration and progress are read in milliseconds)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)


def _plain(value):
    return json.loads(json.dumps(value))  # tuples and lists compare equal


def _flat(config: dict) -> dict:
    """Nested option groups (``masking``) as ``masking.<name>`` fields."""
    out = {}
    for k, v in config.items():
        if isinstance(v, dict):
            out.update({f"{k}.{kk}": vv for kk, vv in v.items()})
        else:
            out[k] = v
    return out


def config_changes(old: dict, new: dict, operational=()) -> list[tuple[str, object, object]]:
    """``(field, old, new)`` for every field that differs, except the ``operational`` ones
    (nested groups compared field by field: ``masking.num_blocks``)."""
    old, new = _flat(old), _flat(new)
    return [(k, old.get(k), v) for k, v in new.items()
            if k not in operational and _plain(old.get(k)) != _plain(v)]


def check_resume(config: dict, ckpt: dict, path: Path, data: dict, operational=(),
                 hint=None) -> None:
    """Refuse to resume ``ckpt`` with anything that would make it another run: a changed
    field of the configuration (each named, with ``hint(field, value)``: the option that
    sets it back) or another data set. ``operational`` fields (workers, logging, checkpoint
    cadence) may change."""
    if ckpt.get("format") != FORMAT:
        raise ValueError(
            f"{path} was written by an older jepa_lite (checkpoint format "
            f"{ckpt.get('format', 1)}, now {FORMAT}) that drew images and masks differently: "
            f"it cannot continue exactly. Start a new run in another --out (its encoder can "
            f"still be probed: jepa-lite probe --checkpoint {path})")
    changes = config_changes(ckpt["config"], config, operational)
    if changes:
        said = "; ".join(
            f"{k}: {_plain(a)} in the checkpoint, {_plain(b)} now"
            + (f" ({h} keeps it)" if hint and (h := hint(k, a)) else "")
            for k, a, b in changes)
        raise ValueError(f"--resume would change the run in {path.parent}: {said}. Resume "
                         f"with the checkpoint's settings, or start a new run in another --out")
    old = ckpt["data"]
    if old["fingerprint"] != data["fingerprint"]:
        where = (f"in the middle of epoch {ckpt['epoch'] + 1} (step {ckpt['step']}); the steps "
                 f"left index a permutation of its images" if ckpt["step"] else
                 f"after epoch {ckpt['epoch']}")
        raise ValueError(
            f"{path} stopped {where}, on the data set {old['root']} ({old['images']} images, "
            f"fingerprint {old['fingerprint']}); --data-root {data['root']} holds another one "
            f"({data['images']} images, fingerprint {data['fingerprint']}). Resume with "
            f"--data-root {old['root']} (or a copy of it), or start a new run in another --out")


class RunLock:
    """An exclusive lock on a run folder (``OUT/.lock``), held while a trainer writes there;
    released by the operating system when the process ends, however it ends."""

    def __init__(self, out: Path):
        self.path = out / ".lock"
        self._file = None

    def acquire(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        f = open(self.path, "a+")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            who = f.read().strip() or "another process"
            f.close()
            raise UsageError(f"{self.path.parent} is being trained by {who}: wait for it to "
                               f"finish (or stop it), or choose another --out") from None
        except OSError as e:  # a file system without locks (some network and FUSE mounts)
            f.close()
            print(f"note: {self.path.parent} cannot be locked ({e}); make sure no other "
                  f"trainer writes there")
            return self
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()} on {os.uname().nodename}")
        f.flush()
        self._file = f
        return self

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


def is_locked(out: Path) -> bool:
    """Whether a trainer holds ``out``'s lock right now."""
    path = Path(out) / ".lock"
    if not path.is_file():
        return False
    with open(path) as f:
        try:
            fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        except OSError:  # no locks on this file system: nobody can be seen training
            return False
        fcntl.flock(f, fcntl.LOCK_UN)
    return False
