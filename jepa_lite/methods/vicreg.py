"""VICReg (Bardes et al. 2022), as the CNN-JEPA authors ran it: two augmented views, a
projector of three 8192-wide layers (Linear-BN-ReLU twice, then Linear), the loss
25 * invariance + 25 * variance + 1 * covariance on this process's micro-batch (the variance
and covariance are not gathered across GPUs), LARS (lr 0.5, weight decay 1e-6)."""

from __future__ import annotations

import torch

from jepa_lite.config import VICRegOptions
from jepa_lite.data.augment import ViewRecipe
from jepa_lite.losses import vicreg_loss
from jepa_lite.methods.base import TwoViewMethod
from jepa_lite.methods.heads import mlp, scaled


class VICReg(TwoViewMethod):
    label = "VICReg"
    # docs/paper.md, "views": solarisation with p 0.1 on both views
    view_recipes = (ViewRecipe(solarize_p=0.1),) * 2
    Options = VICRegOptions
    name = Options.name
    why_min_micro_batch = "its variance and covariance are taken over the micro-batch"

    def __init__(self, arch: str = "resnet50", weights=(25.0, 25.0, 1.0),
                 zero_init_residual: bool = False):
        super().__init__(arch, zero_init_residual)
        self.weights = tuple(weights)
        c = self.backbone.dim
        self.projector = mlp(scaled(c, 4, 4, 4))  # 3 x 8192 at C = 2048

    @classmethod
    def from_config(cls, cfg) -> VICReg:
        return cls(cfg.arch, cfg.method.vicreg_weights, cfg.zero_init_residual)

    def forward(self, view_a: torch.Tensor, view_b: torch.Tensor):
        h_a, h_b = self.pooled(view_a), self.pooled(view_b)
        loss = vicreg_loss(self.projector(h_a), self.projector(h_b), self.weights)
        return loss, h_a.detach()
