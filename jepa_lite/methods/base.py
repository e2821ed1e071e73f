"""What every method gives the training loop (``jepa_lite.train``), and nothing more.

A method is a small ``nn.Module`` whose ``forward(*batch)`` returns the loss of one
micro-batch and a feature tensor for the collapse diagnostics; ``update_target`` moves its
EMA target (a no-op for methods without one); ``views`` says what the data loader hands it
(the transform of one image and the collate of a micro-batch); ``encoder_prefix`` names the
encoder that the probes read from a checkpoint. The loop never asks which method it runs.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn


class Method(nn.Module):
    name: ClassVar[str]
    encoder_prefix: ClassVar[str]  # state-dict prefix of the encoder the probes use
    has_target: ClassVar[bool] = False  # an EMA target that update_target moves
    options: ClassVar[tuple[str, ...]] = ()  # configuration fields only this method reads
    defaults: ClassVar[dict] = {}  # optimizer, lr, weight_decay, ema_per_epoch
    min_micro_batch: ClassVar[int] = 1  # images per forward pass the loss needs
    why_min_micro_batch: ClassVar[str] = ""  # and why, for the error message

    @classmethod
    def from_config(cls, cfg) -> Method:
        raise NotImplementedError

    @staticmethod
    def views(cfg):
        """``(transform, collate)``: one image -> what a sample holds; samples -> a batch."""
        raise NotImplementedError

    def forward(self, *batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def named_trainable_parameters(self) -> list[tuple[str, nn.Parameter]]:
        return [(n, p) for n, p in self.named_parameters() if p.requires_grad]

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for _, p in self.named_trainable_parameters()]

    @torch.no_grad()
    def update_target(self, momentum: float) -> None:
        """Move the EMA target towards the online weights (nothing to move by default)."""

    def encoder(self) -> nn.Module:
        """The encoder the probes use."""
        return self.get_submodule(self.encoder_prefix.rstrip("."))
