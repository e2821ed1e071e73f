"""Chapter 03 — the predictor and the mask token.

Paper, IV-A: "we use 3 depthwise separable convolutional layers with kernel size 3x3, Batch
Normalization, and ReLU activation ... 3 x (DepthwiseConv -> PointwiseConv -> BatchNorm ->
ReLU)". III-D: "the mask token is a parameter vector with the same dimensionality as the depth
of the feature maps and is shared across all masked locations and samples of a minibatch."
"""

from __future__ import annotations

import torch
from torch import nn

from jepa_lite.errors import UsageError


class ConvPredictor(nn.Sequential):
    """``layers`` x (depthwise conv -> pointwise conv -> BN -> ReLU), or standard convs.

    12,662,784 parameters at 2048 channels with the defaults; 113,264,640 with
    ``depthwise_separable=False``. The spatial size is kept (``padding = kernel_size // 2``).
    ``layers=0`` is no predictor at all (the identity; chapter 07's ablation).
    """

    def __init__(self, channels: int, layers: int = 3, kernel_size: int = 3,
                 depthwise_separable: bool = True):
        if layers < 0 or kernel_size < 1 or kernel_size % 2 == 0:
            raise UsageError(f"layers={layers} must be >= 0 and kernel_size={kernel_size} a "
                             f"positive odd number (so the 7x7 grid keeps its size)")
        blocks = []
        for _ in range(layers):
            if depthwise_separable:
                convs = [nn.Conv2d(channels, channels, kernel_size, padding=kernel_size // 2,
                                   groups=channels),  # depthwise: one filter per channel
                         nn.Conv2d(channels, channels, 1)]  # pointwise: mixes channels
            else:
                convs = [nn.Conv2d(channels, channels, kernel_size, padding=kernel_size // 2)]
            blocks += [*convs, nn.BatchNorm2d(channels), nn.ReLU(inplace=True)]
        super().__init__(*blocks)


class MaskToken(nn.Module):
    """One learnable vector that fills every target cell of the context features."""

    def __init__(self, channels: int):
        super().__init__()
        self.token = nn.Parameter(torch.zeros(channels))
        nn.init.trunc_normal_(self.token, std=0.02)

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``features`` [B, C, gh, gw]; ``mask`` bool [B, gh, gw], True = target."""
        m = mask.unsqueeze(1).to(features.dtype)
        return features * (1 - m) + self.token.to(features.dtype)[:, None, None] * m
