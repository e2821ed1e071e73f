"""Chapter 03 — the predictor and the mask token.

Paper, IV-A: "we use 3 depthwise separable convolutional layers with kernel size 3x3, Batch
Normalization, and ReLU activation ... 3 x (DepthwiseConv -> PointwiseConv -> BatchNorm ->
ReLU)". III-D: "the mask token is a parameter vector with the same dimensionality as the depth
of the feature maps and is shared across all masked locations and samples of a minibatch."
"""

from __future__ import annotations

import torch
from torch import nn


class ConvPredictor(nn.Sequential):
    """``layers`` x (depthwise conv -> pointwise conv -> BN -> ReLU), or standard convs.

    12,662,784 parameters at 2048 channels with the defaults; 113,264,640 with
    ``depthwise_separable=False``. The spatial size is kept (``padding = kernel_size // 2``).
    """

    def __init__(self, channels: int, layers: int = 3, kernel_size: int = 3,
                 depthwise_separable: bool = True):
        if layers < 1 or kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"layers={layers} must be >= 1 and kernel_size={kernel_size} a "
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


def num_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def predictor_costs(channels: int = 2048, grid: tuple[int, int] = (7, 7), layers: int = 3,
                    kernel_size: int = 3) -> list[dict]:
    """Parameters and multiply-accumulates of both predictor kinds on a grid (one image)."""
    rows = []
    for dw in (True, False):
        p = ConvPredictor(channels, layers, kernel_size, dw)
        macs = sum(m.weight.numel() * grid[0] * grid[1]  # each weight used once per cell
                   for m in p.modules() if isinstance(m, nn.Conv2d))
        rows.append({"predictor": "depthwise-separable" if dw else "standard conv",
                     "parameters": num_parameters(p), "macs_per_image": macs})
    return rows


def receptive_field(layers: int = 3, kernel_size: int = 3) -> int:
    """Cells of the grid (per side) that can reach one output cell of the predictor."""
    return 1 + layers * (kernel_size - 1)


def influence(predictor: nn.Module, grid: tuple[int, int], cell: tuple[int, int],
              channels: int) -> torch.Tensor:
    """Bool [gh, gw]: which input cells change the prediction at ``cell`` (by autograd, over
    a few random inputs so that no inactive ReLU hides a path)."""
    predictor.eval()
    x = torch.randn(8, channels, *grid, requires_grad=True)
    out = predictor(x)
    (g,) = torch.autograd.grad(out[:, :, cell[0], cell[1]].sum(), x)
    return g.abs().sum((0, 1)) > 0
