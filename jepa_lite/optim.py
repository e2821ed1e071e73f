"""Optimizers: AdamW (CNN-JEPA, C-JEPA, BYOL) and LARS (SimCLR, VICReg), which torch lacks.

LARS (You et al. 2017) is SGD with momentum in which every weight tensor's step is scaled by
its trust ratio ``eta * ||w|| / (||g|| + wd * ||w||)``: a layer moves by about ``eta * lr``
of its own norm, whatever its gradient's scale. As in lightly's LARS (which the CNN-JEPA
authors ran, momentum 0.9, eta 0.001), a parameter group with weight decay 0 (the norms and
biases) is neither decayed nor scaled.
"""

from __future__ import annotations

import torch
from torch import nn

from jepa_lite.errors import UsageError


class LARS(torch.optim.Optimizer):
    def __init__(self, params, lr: float, momentum: float = 0.9, weight_decay: float = 0.0,
                 trust_coefficient: float = 0.001, eps: float = 1e-8):
        if lr < 0:
            raise UsageError(f"LARS: learning rate {lr} is negative")
        super().__init__(params, {"lr": lr, "momentum": momentum, "weight_decay": weight_decay,
                                  "trust_coefficient": trust_coefficient, "eps": eps})

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            wd, eta = group["weight_decay"], group["trust_coefficient"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                d = p.grad
                if wd != 0:
                    w_norm, g_norm = torch.linalg.vector_norm(p), torch.linalg.vector_norm(d)
                    ratio = eta * w_norm / (g_norm + wd * w_norm + group["eps"])
                    # a tensor at 0 (or with no gradient yet) keeps the plain step; no host sync
                    ratio = torch.where((w_norm > 0) & (g_norm > 0), ratio,
                                        torch.ones_like(ratio))
                    d = (d + wd * p) * ratio
                state = self.state[p]
                if group["momentum"] != 0:
                    if "momentum_buffer" not in state:
                        state["momentum_buffer"] = d.clone()
                    else:
                        state["momentum_buffer"].mul_(group["momentum"]).add_(d)
                    d = state["momentum_buffer"]
                p.add_(d, alpha=-group["lr"])
        return loss


def decay_groups(params: list[tuple[str, nn.Parameter]], weight_decay: float) -> list[dict]:
    """Two groups: weights (decayed, LARS-scaled) and norms and biases (neither): every
    parameter with one dimension. The second keeps its 0 under a weight-decay schedule
    (``fixed``: the keys ``train.apply`` leaves alone)."""
    decay = [p for _, p in params if p.ndim > 1]
    rest = [p for _, p in params if p.ndim <= 1]
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": rest, "weight_decay": 0.0, "fixed": ("weight_decay",)}]


OPTIMIZERS = ("adamw", "lars")


def build(kind: str, named_params: list[tuple[str, nn.Parameter]], lr: float,
          weight_decay: float, device: torch.device,
          decay_norms: bool = True) -> torch.optim.Optimizer:
    """``adamw`` on every parameter (the fused kernel on a GPU), as the authors' CNN-JEPA and
    BYOL, or with norms and biases undecayed (``decay_norms`` False: I-JEPA); ``lars`` with
    momentum 0.9, no decay or scaling of norms and biases, as their SimCLR and VICReg."""
    if kind == "adamw":
        params = ([p for _, p in named_params] if decay_norms
                  else decay_groups(named_params, weight_decay))
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay,
                                 fused=device.type == "cuda")
    if kind == "lars":
        return LARS(decay_groups(named_params, weight_decay), lr=lr)
    raise UsageError(f"unknown optimizer {kind!r}; choose one of {', '.join(OPTIMIZERS)}")
