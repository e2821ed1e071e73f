"""A pretraining run folder, seen from outside the training process (chapter 04).

Chapter 04 does not hold a multi-day run inside a notebook cell: it starts the run as its own
process (``python -m jepa_lite.pretrain``, or torchrun with one process per GPU), in its own
session so that a stopped kernel does not stop it, logs to ``RUN/train.log``, and follows
``RUN/metrics.jsonl``. Run the chapter again and it finds the run complete (and goes on),
running (and follows it) or stopped, e.g. by a preemption (and resumes it from the last
checkpoint). The same command, printed by the chapter, resumes it from a shell.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from jepa_lite.checkpoint import (
    DamagedCheckpointError,
    differences,
    is_locked,
    load_run_checkpoint,
    resume_checkpoint,
)
from jepa_lite.config import TrainConfig
from jepa_lite.data.folders import scan
from jepa_lite.errors import UsageError
from jepa_lite.progress import progress


def state(run_dir) -> dict:
    """``status``: ``new``, ``running`` (a trainer holds the folder), ``stopped`` (a
    checkpoint, no trainer) or ``complete``; with the epoch and step reached."""
    run_dir = Path(run_dir)
    last = run_dir / "last.pt"
    info = {"status": "new", "epoch": 0, "step": 0, "epochs": None, "run_dir": str(run_dir)}
    if last.is_file():
        try:
            ckpt = resume_checkpoint(run_dir, mmap=True, say=False)
        except DamagedCheckpointError as e:  # resuming says what it can do about it
            return {**info, "status": "stopped", "damaged": str(e)}
        info.update(epoch=ckpt["epoch"], step=ckpt.get("step", 0),
                    epochs=ckpt["config"]["epochs"], status="stopped")
        if info["epoch"] == info["epochs"] and info["step"] == 0:
            info["status"] = "complete"
    if is_locked(run_dir):
        info["status"] = "running"
    return info


def describe(info: dict) -> str:
    where = f"epoch {info['epoch']} of {info['epochs']}" if info["epochs"] else "no checkpoint"
    if info["step"]:
        where += f" and {info['step']} steps"
    return f"the run in {info['run_dir']} is {info['status']} ({where})"


def require_complete(run_dir) -> Path:
    """``RUN/last.pt`` of a finished run, or an error that says what to do."""
    info = state(run_dir)
    if info["status"] == "complete":
        return Path(run_dir) / "last.pt"
    todo = {"new": "run chapter 04 first (jepa-lite course --only 04 ...)",
            "running": f"wait for it (tail -f {Path(run_dir) / 'train.log'}), then run this "
                       f"chapter again",
            "stopped": f"resume it (run chapter 04 again, or jepa-lite pretrain --resume --out "
                       f"{run_dir}), then run this chapter again"}[info["status"]]
    raise UsageError(f"{describe(info)}: {todo}")


def processes(batch_size: int, micro_batch: int | None, device: str) -> int:
    """Training processes for this machine: one per GPU, as many GPUs as split the global
    batch into whole micro-batches (4 of 8 GPUs for 512 = 4 x 128); one on a CPU."""
    gpus = torch.cuda.device_count() if device != "cpu" and torch.cuda.is_available() else 0
    if gpus <= 1:
        return 1
    micro = micro_batch or batch_size // gpus
    return max(n for n in range(1, gpus + 1) if batch_size % (n * micro) == 0)


def command(options: list[str], nproc: int = 1) -> list[str]:
    """The command that trains with ``options`` (``jepa-lite pretrain``'s)."""
    if nproc > 1:
        return [sys.executable, "-m", "torch.distributed.run", "--standalone",
                "--nproc_per_node", str(nproc), "-m", "jepa_lite.pretrain", *options]
    return [sys.executable, "-m", "jepa_lite.pretrain", *options]


def check_settings(cfg: TrainConfig, run_dir, data_root, nproc: int = 1,
                   fingerprint: str | None = None) -> None:
    """An error when ``run_dir`` holds a run made with other settings or data than ``cfg``
    on ``data_root`` (a course run must not read another experiment's run); ``fingerprint``:
    the data's (``data.scan``), when the caller has it already."""
    last = Path(run_dir) / "last.pt"
    if not last.is_file():
        return
    cfg = replace(cfg, micro_batch=cfg.micro_batch_on(nproc))
    ckpt = load_run_checkpoint(last, mmap=True)
    stored = TrainConfig.from_dict(ckpt["config"])
    said = [f"{k}: {a} there, {b} here" for k, a, b in
            differences(stored.to_dict(), cfg.to_dict(), cfg.operational())]
    fingerprint = fingerprint or scan(data_root, "train").fingerprint
    if ckpt.get("data", {}).get("fingerprint") != fingerprint:
        said.append(f"data: {ckpt.get('data', {}).get('root')} there, {data_root} here")
    if said:
        raise UsageError(f"{run_dir} holds a run made with other settings than these "
                         f"({'; '.join(said[:6])}{'; ...' if len(said) > 6 else ''}): choose "
                         f"another run folder (RUN_DIR, --run), or move that one away")


def follow(run_dir, process: subprocess.Popen | None = None, poll: float = 1.0) -> dict:
    """Show the run's epochs as they finish, until its trainer exits; returns its state."""
    run_dir = Path(run_dir)
    metrics = run_dir / "metrics.jsonl"
    bar, seen = None, 0
    while True:
        done = process.poll() is not None if process is not None else not is_locked(run_dir)
        lines = metrics.read_text().splitlines() if metrics.is_file() else []
        if bar is None and lines:
            epochs = state(run_dir)["epochs"] or len(lines)
            bar = progress(total=epochs, initial=len(lines) - 1, desc="pretraining",
                           unit="epoch")
            seen = len(lines) - 1
        if bar is not None and len(lines) > seen:
            last = json.loads(lines[-1])
            bar.update(len(lines) - seen)
            bar.set_postfix(loss=f"{last['loss']:.4f}", img_s=f"{last['images_per_s']:.0f}")
            seen = len(lines)
        if done:
            break
        if process is None:
            time.sleep(poll)
        else:  # wakes as soon as the trainer exits, not at the next poll
            try:
                process.wait(timeout=poll)
            except subprocess.TimeoutExpired:
                pass
    if bar is not None:
        bar.close()
    info = state(run_dir)
    if process is not None and process.returncode != 0:
        log = run_dir / "train.log"
        tail = "\n".join(log.read_text().splitlines()[-15:]) if log.is_file() else ""
        raise UsageError(f"the training process exited with code {process.returncode}; "
                           f"{describe(info)}. The end of {log}:\n{tail}")
    return info


def train(cfg: TrainConfig, run_dir, data_root, device: str = "auto", nproc: int = 1,
          wait: bool = True) -> dict:
    """Start or resume the run of ``cfg`` on ``data_root`` in ``run_dir``, in a process of its
    own (``RUN/config.json`` holds the configuration it starts from), or follow it if it is
    running, or leave it if it is complete. Returns its state."""
    run_dir = Path(run_dir)
    check_settings(cfg, run_dir, data_root, nproc)
    info = state(run_dir)
    if info["status"] == "complete":
        print(f"{describe(info)}: nothing to train")
        return info
    if info["status"] == "running":
        print(f"{describe(info)}: following it")
        return follow(run_dir) if wait else info
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(cfg.to_dict(), indent=1))
    options = ["--config", str(run_dir / "config.json"), "--data-root", str(data_root),
               "--device", str(device), "--out", str(run_dir)]
    options += ["--resume"] if info["status"] == "stopped" else []
    cmd = command(options, nproc)
    shown = shlex.join(["jepa-lite", "pretrain", *options] if nproc == 1 else
                       ["torchrun", *cmd[3:]])
    print(f"{'resuming' if '--resume' in options else 'starting'}: {shown}\n"
          f"log: {run_dir / 'train.log'}")
    with open(run_dir / "train.log", "a") as log:
        process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)  # a stopped kernel leaves it be
    return follow(run_dir, process) if wait else state(run_dir)


def stopped_message(out) -> str:
    """What an interrupted run has kept, and the command that continues it."""
    info = state(out)
    if info["epochs"] is None:
        return f"stopped before the first checkpoint: nothing in {out} to resume"
    return (f"stopped: {describe({**info, 'status': 'stopped'})} in its last checkpoint; "
            f"continue with: jepa-lite pretrain --out {out} --resume")
