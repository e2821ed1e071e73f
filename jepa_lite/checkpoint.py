"""A run folder's files: checkpoints written atomically and loaded safely, the checks that
keep a resumed run the same run, and the lock that keeps two trainers out of one folder."""

from __future__ import annotations

import fcntl
import fnmatch
import io
import json
import os
from pathlib import Path

import torch

from jepa_lite.config import TrainConfig, flag_of
from jepa_lite.errors import UsageError, cannot_write

# Bumped when a checkpoint can no longer continue a run exactly (2: the seeded micro-batch
# loader; a format-1 checkpoint's run drew its images and masks differently).
FORMAT = 2


RUN_FOLDER = ("config.json", "metrics.jsonl", "train.log", ".lock", "last.pt", "last.pt.tmp",
              "epoch_*.pt", "epoch_*.pt.tmp", "probe")  # what a run folder may hold
PROBE_FOLDER = ("probe.json", "probe.json.tmp", "features")


def check_out_folder(out: Path, known: tuple[str, ...], what: str) -> None:
    """``--out`` protected: a folder that exists, holds something and holds anything but
    ``known`` names (glob patterns) is someone else's, refused before anything is written
    there."""
    out = Path(out)
    if not out.is_dir():
        return
    foreign = sorted(p.name for p in out.iterdir()
                     if not any(fnmatch.fnmatch(p.name, k) for k in known))
    if foreign:
        raise FileExistsError(f"{out} is not empty and holds no {what} ({', '.join(foreign[:4])}"
                              f"{', ...' if len(foreign) > 4 else ''}): choose a new or empty "
                              f"--out; nothing was written there")


def atomic_write(path: Path, data: bytes | str) -> None:
    """Write ``data`` to a temporary file beside ``path``, then rename: a crash never leaves
    half a file. A write the machine refuses (a full disk, a read-only folder) removes the
    temporary file and names the path; the file written before stays as it was."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
        os.replace(tmp, path)
    except OSError as e:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass  # a read-only folder: nothing was made there either
        raise cannot_write(path, e) from None


def atomic_save(obj, path: Path) -> None:
    """``torch.save`` by :func:`atomic_write`, serialised in memory first: torch's own writer
    reports a full disk as "unexpected pos", Python's as the OSError it is."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write(path, buffer.getbuffer())


class DamagedCheckpointError(UsageError):
    """A checkpoint file that cannot be read (cut short by a full disk or a copy that
    stopped, or not a checkpoint at all)."""


def load_checkpoint(path: str | os.PathLike, mmap: bool = False) -> dict:
    """Load a checkpoint safely (``weights_only=True``: tensors and plain values only).
    ``mmap``: tensors are mapped, not read (a ResNet-50 run's checkpoint is ~0.5 GB; its
    configuration and progress are read in milliseconds). A file that cannot be read is a
    :class:`DamagedCheckpointError` that names it and what is beside it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as e:  # zip, pickle, EOF and weights-only errors of many kinds
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0].split(". ")[0]
        others = sorted(p.name for p in path.parent.glob("epoch_*.pt"))
        beside = (f"; the newest checkpoint beside it is {path.parent / others[-1]}" if others
                  else "")
        raise DamagedCheckpointError(f"checkpoint {path} is damaged or not a jepa_lite "
                                     f"checkpoint ({reason}){beside}") from None


class NotACheckpointError(DamagedCheckpointError):
    """A file that loads but is not a jepa-lite pretraining checkpoint (a torchvision
    ``state_dict``, a list, a dict without weights or configuration)."""


# what a resumed run reads (an older format is told apart by check_resume, by its number)
RUN_KEYS = ("run_id", "model", "optimizer", "scaler", "epoch", "step", "partial", "config",
            "data", "world_size", "precision")


def _holds(obj) -> str:
    """What a loaded file holds, in a few words."""
    if not isinstance(obj, dict):
        return f"a {type(obj).__name__}"
    if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return f"a plain state_dict of {len(obj)} tensors, without a configuration"
    return f"a dict of {', '.join(map(str, list(obj)[:6]))}{', ...' if len(obj) > 6 else ''}"


def check_run_checkpoint(ckpt, path, resume: bool = False) -> dict:
    """``ckpt`` when it is a jepa-lite pretraining checkpoint: a dict with its weights
    (tensors), a configuration that reads back, and (``resume``) everything a resumed run
    reads; else a :class:`NotACheckpointError` that says what the file holds."""
    need = RUN_KEYS if resume else ("model", "config")
    problem = None
    if not isinstance(ckpt, dict) or any(k not in ckpt for k in need):
        missing = [k for k in need if not isinstance(ckpt, dict) or k not in ckpt]
        problem = f"it holds {_holds(ckpt)} (no {', '.join(missing[:4])})"
    elif not isinstance(ckpt["model"], dict) or not ckpt["model"] or not all(
            isinstance(v, torch.Tensor) for v in ckpt["model"].values()):
        problem = "its 'model' is not a set of weights"
    else:
        try:
            TrainConfig.from_dict(ckpt["config"])
        except (TypeError, ValueError, AttributeError) as e:
            problem = f"its configuration does not read back ({e})"
    if problem:
        use = ("a jepa-lite run's last.pt (or epoch_NNNN.pt)" if not resume else
               "start the run in another --out, or put the run's own last.pt back")
        raise NotACheckpointError(f"{path} is not a jepa-lite checkpoint: {problem}; {use}")
    return ckpt


def load_run_checkpoint(path: str | os.PathLike, mmap: bool = False) -> dict:
    """A pretraining checkpoint, loaded safely and checked for what it holds."""
    return check_run_checkpoint(load_checkpoint(path, mmap), path)


def resume_checkpoint(out: Path, mmap: bool = False, say: bool = True) -> dict:
    """The checkpoint a resumed run continues from: ``last.pt``, or, when that file is
    damaged, the newest intact ``epoch_NNNN.pt`` beside it (said on the console; the epochs
    after it are trained again)."""
    last = out / "last.pt"
    if not last.is_file():
        raise FileNotFoundError(f"--resume: no checkpoint {last} to resume from; drop --resume "
                                f"to start a new run there")
    try:
        return check_run_checkpoint(load_checkpoint(last, mmap), last, resume=True)
    except DamagedCheckpointError as damaged:
        for kept in sorted(out.glob("epoch_*.pt"), reverse=True):
            try:
                ckpt = check_run_checkpoint(load_checkpoint(kept, mmap), kept, resume=True)
            except DamagedCheckpointError:
                continue
            if say:
                print(f"{damaged}: resuming from {kept} (epoch {ckpt['epoch']}), the newest "
                      f"intact checkpoint; the epochs after it are trained again")
            return ckpt
        raise DamagedCheckpointError(f"{damaged}, and no intact epoch_NNNN.pt is beside it: "
                                     f"start the run again in another --out (or drop --resume "
                                     f"after moving {last} away)") from None


def read_metrics(out_dir) -> list[dict]:
    """The per-epoch metrics of a run (``metrics.jsonl``)."""
    path = Path(out_dir) / "metrics.jsonl"
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:  # a line cut short by a kill: its epoch is in no checkpoint either
            continue
    return rows


def _plain(value):
    return json.loads(json.dumps(value))  # tuples and lists compare equal


def _flat(config: dict, prefix: str = "") -> dict:
    """Nested options (a method's, its masking) as ``masking.<name>`` fields; the method's
    own fields keep their names (they are its settings, named as its options name them)."""
    out = {}
    for k, v in config.items():
        if isinstance(v, dict):
            out.update(_flat(v, "" if k == "method" else f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def differences(stored: dict, wanted: dict, ignore=()) -> list[tuple[str, object, object]]:
    """Is a stored artifact what would be made now? ``(key, stored, wanted)`` for every key
    that differs (none: it is), the ``ignore`` ones aside; nested dicts compared key by key
    (``masking.num_blocks``; a configuration's method by its ``name``), tuples equal to
    lists. The project's one identity check (a resumed run, a run folder a chapter reads, a
    sweep's point, the supervised reference, a feature bank); each caller says it its way."""
    stored, wanted = _flat(stored), _flat(wanted)
    return [(k, stored.get(k), wanted.get(k)) for k in dict.fromkeys([*wanted, *stored])
            if k not in ignore and _plain(stored.get(k)) != _plain(wanted.get(k))]


def keeps(field: str, value) -> str | None:
    """The command-line option that sets ``field`` (``masking.num_blocks``) back to
    ``value``, for the resume error."""
    if value is None:
        return None
    if field == "name":
        return f"--method {value}"
    try:
        flag = flag_of(field.rsplit(".", 1)[-1])
    except ValueError:
        return None
    if isinstance(value, bool):
        return flag if value else "--no-" + flag[2:]
    if isinstance(value, (list, tuple)):
        return f"{flag} {' '.join(str(v) for v in value)}"
    return f"{flag} {value}"


def check_resume(cfg: TrainConfig, ckpt: dict, out: Path, data: dict) -> None:
    """Refuse to resume ``ckpt`` with anything that would make it another run: another
    method, a changed field of the configuration (each named, with the option that sets it
    back) or another data set. Operational fields (workers, logging, checkpoint cadence,
    precision, compile) may change."""
    path = out / "last.pt"
    if ckpt.get("format") != FORMAT:
        raise UsageError(
            f"{path} was written by an older jepa_lite (checkpoint format "
            f"{ckpt.get('format', 1)}, now {FORMAT}) that drew images and masks differently: "
            f"it cannot continue exactly. Start a new run in another --out (its encoder can "
            f"still be probed: jepa-lite probe --checkpoint {path})")
    stored = TrainConfig.from_dict(ckpt["config"])
    if stored.method.name != cfg.method.name:
        raise UsageError(f"{out} holds a {stored.method.name} run; it cannot be resumed as "
                         f"{cfg.method.name}: drop --method (or pass --method "
                         f"{stored.method.name}) to continue it, or start the "
                         f"{cfg.method.name} run in another --out")
    changes = differences(stored.to_dict(), cfg.to_dict(), cfg.operational())
    if changes:
        said = "; ".join(
            f"{k}: {_plain(a)} in the checkpoint, {_plain(b)} now"
            + (f" ({h} keeps it)" if (h := keeps(k, a)) else "")
            for k, a, b in changes)
        raise UsageError(f"--resume would change the run in {out}: {said}. Resume with the "
                         f"checkpoint's settings, or start a new run in another --out")
    old = ckpt["data"]
    if old["fingerprint"] != data["fingerprint"]:
        where = (f"in the middle of epoch {ckpt['epoch'] + 1} (step {ckpt['step']}); the steps "
                 f"left index a permutation of its images" if ckpt["step"] else
                 f"after epoch {ckpt['epoch']}")
        raise UsageError(
            f"{path} stopped {where}, on the data set {old['root']} ({old['images']} images, "
            f"fingerprint {old['fingerprint']}); --data-root {data['root']} holds another one, "
            f"or the same folder with files added, removed or changed since ({data['images']} "
            f"images, fingerprint {data['fingerprint']}). Resume with --data-root "
            f"{old['root']} as it was (or a copy that kept its files' times: cp -a, rsync -a), "
            f"or start a new run in another --out")


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
