"""Projection and prediction heads: small MLPs whose widths follow the backbone's.

The CNN-JEPA authors' heads were sized for ResNet-50's 2048 channels; here every width is
written as a multiple of the backbone's channel count ``C`` so that ResNet-10/18 (C = 512)
get heads of the same shape, a quarter as wide (SimCLR 2048-2048-128 -> 512-512-32).
"""

from __future__ import annotations

from torch import nn


def mlp(dims: list[int], bn_last: bool = False) -> nn.Sequential:
    """Linear-BN-ReLU between ``dims``; the last Linear alone, or followed by a BN
    (``bn_last``, SimCLR's projector)."""
    layers: list[nn.Module] = []
    for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:], strict=False)):
        last = i == len(dims) - 2
        layers.append(nn.Linear(d_in, d_out, bias=last and not bn_last))
        if not last:
            layers += [nn.BatchNorm1d(d_out), nn.ReLU(inplace=True)]
        elif bn_last:
            layers.append(nn.BatchNorm1d(d_out))
    return nn.Sequential(*layers)


def scaled(channels: int, *multiples: float) -> list[int]:
    """``[C, m1 * C, m2 * C, ...]``: a head's widths for a backbone of ``channels``."""
    return [channels] + [max(1, round(m * channels)) for m in multiples]

