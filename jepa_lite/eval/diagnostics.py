"""Collapse diagnostics: what the training loop logs of its pooled features (chapters 04, 07)."""

from __future__ import annotations

import math

import torch

from jepa_lite.data.folders import eval_transform, image_folder

# Two kinds of collapse, each seen by its own statistic (Hua et al. 2021; Jing et al. 2022):
# *complete* collapse, every image mapped to (nearly) the same vector, shows as a per-channel
# std near 0; *dimensional* collapse, the features spread along a few directions only, shows
# as an effective rank far below what the rows could span. The rank is scale-free (it reads
# the singular values' shares): near-constant rows plus noise have the *highest* rank, so it
# cannot see complete collapse, and the std cannot see dimensional collapse.
DIAGNOSTIC_ROWS = 256  # pooled rows (one per image) the training loop's diagnostics read
COMPLETE_STD_SHARE = 0.02  # std under 2 % of 1 / sqrt(C) (features spread evenly): complete
DIMENSIONAL_RANK_SHARE = 0.1  # effective rank under 10 % of min(N - 1, C): dimensional


def collapse_stats(features: torch.Tensor) -> dict:
    """The training loop's collapse diagnostics, on the same kind of rows for every method:
    one pooled row per image, ``[N, D]`` (``Encoder.pool``): the per-channel std of the
    L2-normalised rows (complete collapse: 0), their effective rank (dimensional collapse: far
    below ``diagnostic_rows - 1``) and the number of rows. Any other shape is refused (a grid
    of cells or tokens would be measured as something else)."""
    if features.dim() != 2:
        raise ValueError(f"collapse_stats takes pooled rows [N, D]; got {tuple(features.shape)}: "
                         f"pool them first (the encoder's pool)")
    f = features.float().cpu()  # [N, D]: small; float64 on the CPU
    sp = spectrum(f)
    return {"target_std": sp["std"], "effective_rank": sp["effective_rank"],
            "diagnostic_rows": len(f)}


def collapse_flags(std: float, effective_rank: float, rows: int, channels: int) -> dict:
    """Which collapse the statistics of ``rows`` L2-normalised pooled rows of ``channels``
    channels show: ``complete`` (std under :data:`COMPLETE_STD_SHARE` of the 1 / sqrt(C) of
    features spread evenly over the sphere) and ``dimensional`` (not complete, and an
    effective rank under :data:`DIMENSIONAL_RANK_SHARE` of the ``min(rows - 1, C)``
    directions the rows can span). Few rows cannot tell: 16 rows span at most 15 directions,
    so use :data:`DIAGNOSTIC_ROWS` or more."""
    complete = std < COMPLETE_STD_SHARE / math.sqrt(channels)
    reachable = max(min(rows - 1, channels), 1)
    dimensional = not complete and effective_rank < DIMENSIONAL_RANK_SHARE * reachable
    return {"complete": complete, "dimensional": dimensional,
            "reachable_rank": reachable}


def flags_of(sp: dict) -> dict:
    """:func:`collapse_flags` of a :func:`spectrum`."""
    return collapse_flags(sp["std"], sp["effective_rank"], sp["rows"], sp["channels"])


@torch.no_grad()
def pooled_features(encoder: torch.nn.Module, data_root, image_size: int,
                    device: torch.device, split: str = "val", limit: int = 10_000,
                    batch_size: int = 256) -> torch.Tensor:
    """Global-average-pooled features ``[N, C]`` of (up to ``limit``) images of a split."""
    folder = image_folder(data_root, split)
    transform = eval_transform(image_size, encoder.patch)
    encoder = encoder.to(device).eval()
    n = min(limit, len(folder))
    out = []
    for s in range(0, n, batch_size):
        x = torch.stack([transform(folder.loader(folder.samples[i][0]))
                         for i in range(s, min(n, s + batch_size))])
        out.append(encoder.pool(encoder(x.to(device))).float().cpu())
    return torch.cat(out)


def spectrum(features: torch.Tensor) -> dict:
    """Collapse diagnostics of ``[N, C]`` features: per-channel std of the L2-normalised
    features (complete collapse: 0; 1 / sqrt(C) for features spread evenly over the sphere),
    effective rank (exp of the entropy of the normalised singular values of the centred
    rows: 1 = a line, min(N - 1, C) = all directions alike; scale-free, so it sees
    dimensional collapse, not complete collapse) and the covariance eigenvalues, largest
    first (the min(N - 1, C) that N images can make non-zero)."""
    f = torch.nn.functional.normalize(features.double(), dim=1)
    centred = f - f.mean(0)
    s = torch.linalg.svdvals(centred)
    p = s / s.sum().clamp_min(1e-12)
    rank = torch.exp(-(p * torch.log(p.clamp_min(1e-12))).sum())
    eig = (s.square() / max(len(f) - 1, 1))[:max(min(len(f) - 1, f.shape[1]), 1)]
    return {"std": f.std(0).mean().item(), "effective_rank": rank.item(),
            "eigenvalues": eig.tolist(), "channels": f.shape[1], "rows": len(f)}
