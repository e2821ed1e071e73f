"""A method added from outside the package, as docs/development.md's "Adding a method" says:
this module (the method and its options) and one ``methods.register(BarlowTwins)`` line,
nothing else. Barlow Twins (Zbontar et al. 2021): the cross-correlation of two views'
standardised embeddings pushed towards the identity."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import torch

from jepa_lite.config import (
    TwoViewOptions,
    lr_option,
    optimizer_option,
    option,
    weight_decay_option,
)
from jepa_lite.data.augment import ViewRecipe
from jepa_lite.methods.base import TwoViewMethod
from jepa_lite.methods.heads import mlp, scaled


@dataclass(frozen=True)
class BarlowTwinsOptions(TwoViewOptions):
    """Barlow Twins: LARS as VICReg's, lambda 0.005 (its paper)."""

    name: ClassVar[str] = "barlow"
    optimizer: Literal["adamw", "lars"] = optimizer_option("lars")  # the shared flags,
    lr: float = lr_option(0.5)  # with this method's defaults
    weight_decay: float = weight_decay_option(1e-6)
    off_diagonal: float = option(0.005, flag="--barlow-lambda", low=0,
                                 help="weight of the off-diagonal terms of the "
                                      "cross-correlation")


class BarlowTwins(TwoViewMethod):
    label = "Barlow Twins"
    view_recipes = (ViewRecipe(), ViewRecipe(solarize_p=0.2))
    Options = BarlowTwinsOptions
    name = Options.name
    why_min_micro_batch = "its standardisation is over the micro-batch"

    def __init__(self, arch: str, off_diagonal: float, zero_init_residual: bool = False):
        super().__init__(arch, zero_init_residual)
        self.off_diagonal = off_diagonal
        self.projector = mlp(scaled(self.backbone.dim, 1, 1))

    @classmethod
    def from_config(cls, cfg) -> BarlowTwins:
        return cls(cfg.arch, cfg.method.off_diagonal, cfg.zero_init_residual)

    def forward(self, view_a: torch.Tensor, view_b: torch.Tensor):
        h_a, h_b = self.pooled(view_a), self.pooled(view_b)
        z_a, z_b = self.projector(h_a).float(), self.projector(h_b).float()
        z_a = (z_a - z_a.mean(0)) / (z_a.std(0) + 1e-5)
        z_b = (z_b - z_b.mean(0)) / (z_b.std(0) + 1e-5)
        c = z_a.T @ z_b / len(z_a)
        on = (torch.diagonal(c) - 1).pow(2).sum()
        off = c.pow(2).sum() - torch.diagonal(c).pow(2).sum()
        return on + self.off_diagonal * off, h_a.detach()
