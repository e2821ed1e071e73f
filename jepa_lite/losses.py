"""The JEPA loss, on target cells only (chapter 04).

Paper, III-A: "minimize the L2 loss between the predicted and target latent representations at
the masked locations. Loss is not computed for non-masked patches." The authors' code
L2-normalises prediction and target per cell and takes smooth-L1 summed over channels; for
unit vectors that is 0.5 * ||p - h||^2 = 1 - cos(p, h) (where every |p_c - h_c| < 1).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

LOSSES = ("official", "l2")


def jepa_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
              kind: str = "official") -> torch.Tensor:
    """Mean over all target cells of the batch. ``pred``, ``target``: [B, C, gh, gw];
    ``mask``: bool [B, gh, gw], True = target. ``kind``: ``official`` or ``l2`` (plain squared
    error summed over channels)."""
    if kind not in LOSSES:
        raise ValueError(f"unknown loss {kind!r}; choose one of {LOSSES}")
    pred, target = pred.float(), target.float()
    if kind == "official":
        pred, target = F.normalize(pred, dim=1), F.normalize(target, dim=1)
        per_cell = F.smooth_l1_loss(pred, target, reduction="none", beta=1.0).sum(1)
    else:
        per_cell = (pred - target).square().sum(1)
    m = mask.to(per_cell.dtype)
    return (per_cell * m).sum() / m.sum().clamp_min(1.0)  # no boolean indexing: no host sync
