"""What the probes, features and diagnostics read of an encoder.

An encoder maps images to a grid of features and says three things of itself: ``patch``
(pixels per output cell: the side of one mask patch), ``dim`` (features per cell) and
``pool`` (its grid -> one row ``[B, dim]`` per image).
"""

from __future__ import annotations

import torch
from torch import nn


class Encoder(nn.Module):
    """What is read of an encoder: ``forward(images)`` a grid of features, ``patch`` pixels
    per cell, ``dim`` features per cell, :meth:`pool` one row per image."""

    patch: int
    dim: int

    def pool(self, features: torch.Tensor) -> torch.Tensor:
        """Global average pooling of the encoder's output: ``[B, dim, h, w] -> [B, dim]``;
        any other shape is refused."""
        if features.dim() != 4 or features.shape[1] != self.dim:
            raise ValueError(f"{type(self).__name__}.pool takes [B, {self.dim}, h, w] "
                             f"features; got {tuple(features.shape)}")
        return features.mean((2, 3))
