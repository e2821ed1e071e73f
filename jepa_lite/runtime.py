"""Where and how a step runs: the device, its precision, and what to tell the user about it."""

from __future__ import annotations

import atexit
import gc
import os

import torch

from jepa_lite.errors import UsageError


def resolve_device(name: str | None = "auto") -> torch.device:
    """``auto``: the GPU when there is one, else the CPU. ``cuda`` without a GPU is an error."""
    name = (name or "auto").lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(
            "device 'cuda' was asked for but PyTorch sees no GPU: use --device cpu (or "
            "DEVICE = 'auto'); on Colab choose Runtime > Change runtime type > GPU"
        )
    if name not in ("cpu", "mps") and not name.startswith("cuda"):
        raise UsageError(f"unknown device {name!r}; choose auto, cpu or cuda")
    return torch.device(name)


_EXIT_HOOKED = False


def skip_final_collection() -> None:
    """At this process's exit, freeze the heap: the interpreter's last garbage collections
    would walk every object torch imported, a second of a small CPU's time (measured in
    docs/benchmarks.md). Exit handlers still run; objects in
    reference cycles are not finalised (files here are closed by ``with`` blocks)."""
    global _EXIT_HOOKED
    if not _EXIT_HOOKED:
        atexit.register(gc.freeze)
        _EXIT_HOOKED = True


PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def native_bf16(device: torch.device) -> bool:
    """Whether the GPU computes bf16 natively: NVIDIA compute capability 8.0 (Ampere) or newer.

    ``torch.cuda.is_bf16_supported()`` is not asked: by default it also counts emulation, and
    says True on a T4 (7.5), where bf16 runs slowly and fp16 with a gradient scaler is the
    right choice.
    """
    return device.type == "cuda" and torch.cuda.get_device_capability(device) >= (8, 0)


def resolve_precision(device: torch.device, requested: str = "auto") -> str:
    """``auto``: bf16 autocast on a GPU that computes it natively, fp16 (+ GradScaler) on an
    older GPU, fp32 on a CPU. ``fp32``, ``bf16`` and ``fp16`` are taken as asked, on any
    device (bf16 and fp16 autocast exist on a CPU too: that is how the tests run them)."""
    if requested not in PRECISIONS:
        raise UsageError(f"unknown precision {requested!r}; choose one of {', '.join(PRECISIONS)}")
    if requested != "auto":
        return requested
    if device.type != "cuda":
        return "fp32"
    return "bf16" if native_bf16(device) else "fp16"


def autocast_dtype(precision: str) -> torch.dtype | None:
    """The autocast dtype of a resolved precision; None for fp32 (no autocast)."""
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def autocast(device: torch.device, precision: str):
    """``torch.autocast`` for the device and a resolved precision (disabled for fp32)."""
    dtype = autocast_dtype(precision)
    return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)


def grad_scaler(device: torch.device, precision: str) -> torch.amp.GradScaler:
    """A GradScaler, enabled for fp16 only (bf16 has fp32's range and needs none)."""
    return torch.amp.GradScaler(device.type, enabled=precision == "fp16")


def device_name(device: torch.device, processes: int = 1) -> str:
    """What a run trained on, for its records: ``cpu``, or the GPU's name (``2 x NVIDIA
    A100-SXM4-80GB`` for two processes)."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else device.type
    return f"{processes} x {name}" if processes > 1 else name


def device_report(device: torch.device) -> str:
    """One line on the device, with what to do when there is no GPU."""
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        amp = {"bf16": "bf16 autocast", "fp16": "fp16 autocast + GradScaler"}[
            resolve_precision(device)]
        return (f"GPU {props.name} (compute capability {props.major}.{props.minor}), "
                f"{props.total_memory / 2**30:.0f} GiB, {amp}")
    hint = "" if torch.cuda.is_available() else (
        " (no GPU found; on Colab: Runtime > Change runtime type > GPU)")
    return f"CPU, {torch.get_num_threads()} threads{hint}"


def memory_format(device: torch.device, training: bool = True) -> torch.memory_format:
    """The layout of images and weights, decided here for every caller: channels_last
    (cuDNN's fast layout) on a GPU; on a CPU only for inference (oneDNN's layout: faster
    feature extraction), while training stays contiguous there (channels_last was slower;
    both measured in docs/benchmarks.md)."""
    if device.type == "cuda" or not training:
        return torch.channels_last
    return torch.contiguous_format


def default_workers(device: str | torch.device | None = None, training: bool = True) -> int:
    """Data-loader processes when none are asked for, decided here for every loader: for
    training, one per CPU core, at most 8; for feature extraction (``training=False``) the
    same to keep a GPU fed, none on a CPU (they would take its cores from the encoder)."""
    if not training and torch.device(device).type != "cuda":
        return 0
    return min(8, os.cpu_count() or 1)
