"""What every method gives the training loop (``jepa_lite.train``), and nothing more.

A method is a small ``nn.Module`` whose ``forward(*batch)`` returns the loss of one
micro-batch and a feature tensor for the collapse diagnostics; ``ema_pairs`` names the
modules its EMA target follows (none for methods without one), and :meth:`update_target`,
written once here, moves them; ``views`` says what the data loader hands it (the transform of
one image and the collate of a micro-batch); ``encoder_prefix`` names the encoder that the
probes read from a checkpoint; ``label`` is the method's name in the paper's tables. The loop
never asks which method it runs.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn
from torch.optim.swa_utils import get_ema_multi_avg_fn

from jepa_lite.augment import ViewRecipe
from jepa_lite.backbone import dense_trunk, trunk_stride
from jepa_lite.config import MethodOptions
from jepa_lite.methods.heads import pool
from jepa_lite.views import Views, with_jitter_strength


class Method(nn.Module):
    name: ClassVar[str]  # --method
    label: ClassVar[str]  # as the paper's tables (data/paper_results.csv) name it
    encoder_prefix: ClassVar[str]  # state-dict prefix of the encoder the probes use
    has_target: ClassVar[bool] = False  # an EMA target (``ema_pairs``) that update_target moves
    Options: ClassVar[type[MethodOptions]]  # its settings (jepa_lite.config), cfg.method
    min_micro_batch: ClassVar[int] = 1  # images per forward pass the loss needs
    why_min_micro_batch: ClassVar[str] = ""  # and why, for the error message

    @classmethod
    def from_config(cls, cfg) -> Method:
        raise NotImplementedError

    @classmethod
    def views(cls, cfg) -> Views:
        """What the loader hands the step and how it becomes the forward's inputs."""
        raise NotImplementedError

    def forward(self, *batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def named_trainable_parameters(self) -> list[tuple[str, nn.Parameter]]:
        return [(n, p) for n, p in self.named_parameters() if p.requires_grad]

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for _, p in self.named_trainable_parameters()]

    def ema_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        """``(target, online)`` module pairs: each target follows its online module by EMA."""
        return []

    @torch.no_grad()
    def update_target(self, momentum: float) -> None:
        """target <- momentum * target + (1 - momentum) * online, for every parameter of every
        pair (BatchNorm's running statistics are buffers: not averaged)."""
        pairs = self.ema_pairs()
        if not pairs:
            return
        targets = [p for target, _ in pairs for p in target.parameters()]
        online = [p for _, module in pairs for p in module.parameters()]
        get_ema_multi_avg_fn(momentum)(targets, online, None)

    def encoder(self) -> nn.Module:
        """The encoder the probes use."""
        return self.get_submodule(self.encoder_prefix.rstrip("."))


class TwoViewMethod(Method):
    """The baselines (SimCLR, BYOL, VICReg): a dense ``backbone`` sees two augmented views of
    every image, each view made by one of ``view_recipes``; the probes read the backbone."""

    encoder_prefix = "backbone."
    view_recipes: ClassVar[tuple[ViewRecipe, ViewRecipe]]
    min_micro_batch = 2

    def __init__(self, arch: str, zero_init_residual: bool = False):
        super().__init__()
        self.backbone = dense_trunk(arch, zero_init_residual)

    @classmethod
    def views(cls, cfg) -> Views:
        """Two views of every image, each by its recipe, the colour jitter scaled by
        ``--jitter-strength``."""
        recipes = tuple(with_jitter_strength(r, cfg.method.jitter_strength)
                        for r in cls.view_recipes)
        return Views(recipes, cfg.image_size, trunk_stride(cfg.arch), pipeline=cfg.pipeline)

    def pooled(self, view: torch.Tensor) -> torch.Tensor:
        """The backbone's globally average-pooled features of one view, ``[B, C]``."""
        return pool(self.backbone(view))
