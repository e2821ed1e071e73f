"""Where and how a step runs: the device, its precision, and what to tell the user about it."""

from __future__ import annotations

import torch


def resolve_device(name: str | None = "auto") -> torch.device:
    """``auto``: the GPU when there is one, else the CPU. ``cuda`` without a GPU is an error."""
    name = (name or "auto").lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(
            "device 'cuda' was asked for but PyTorch sees no GPU: use --device cpu (or "
            "DEVICE = 'auto'); on Colab choose Runtime > Change runtime type > GPU"
        )
    if name not in ("cpu", "mps") and not name.startswith("cuda"):
        raise ValueError(f"unknown device {name!r}; choose auto, cpu or cuda")
    return torch.device(name)


def device_report(device: torch.device) -> str:
    """One line on the device, with what to do when there is no GPU."""
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        bf16 = "bf16 autocast" if torch.cuda.is_bf16_supported() else "fp16 + GradScaler"
        return f"GPU {props.name}, {props.total_memory / 2**30:.0f} GiB, {bf16}"
    hint = "" if torch.cuda.is_available() else (
        " (no GPU found; on Colab: Runtime > Change runtime type > GPU)")
    return f"CPU, {torch.get_num_threads()} threads{hint}"


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """bf16 where the GPU supports it, else fp16 (with a grad scaler); None (fp32) on CPU."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
