"""BYOL (Grill et al. 2020), as the CNN-JEPA authors ran it: an online backbone, projector
(2048-1024-256) and predictor (256-1024-256); a target backbone and projector that follow
them by EMA (0.996 -> 1, cosine, stepped per epoch); the negative cosine between the online
prediction of one view and the target projection of the other, symmetrised and halved; AdamW
(lr 0.01, weight decay 0.01). The probes read the online backbone."""

from __future__ import annotations

import copy

import torch

from jepa_lite.config import BYOLOptions
from jepa_lite.data.augment import ViewRecipe
from jepa_lite.losses import negative_cosine
from jepa_lite.methods.base import TwoViewMethod
from jepa_lite.methods.heads import mlp, scaled


class BYOL(TwoViewMethod):
    label = "BYOL"
    # docs/paper.md, "views": blur always on the first view, solarise the second
    view_recipes = (ViewRecipe(blur_p=1.0, solarize_p=0.0), ViewRecipe(blur_p=0.1, solarize_p=0.2))
    Options = BYOLOptions
    name = Options.name
    why_min_micro_batch = "its heads' BatchNorm needs two images"

    def __init__(self, arch: str = "resnet50", zero_init_residual: bool = False):
        super().__init__(arch, zero_init_residual)
        c = self.backbone.dim
        self.projector = mlp(scaled(c, 1 / 2, 1 / 8))  # 2048-1024-256
        self.predictor = mlp([round(c / 8), round(c / 2), round(c / 8)])  # 256-1024-256
        self.target_backbone = copy.deepcopy(self.backbone).requires_grad_(False)
        self.target_projector = copy.deepcopy(self.projector).requires_grad_(False)

    @classmethod
    def from_config(cls, cfg) -> BYOL:
        return cls(cfg.arch, cfg.zero_init_residual)

    def forward(self, view_a: torch.Tensor, view_b: torch.Tensor):
        h_a, h_b = self.pooled(view_a), self.pooled(view_b)
        p_a, p_b = self.predictor(self.projector(h_a)), self.predictor(self.projector(h_b))
        with torch.no_grad():
            z_a = self.target_projector(self.target_backbone.pool(self.target_backbone(view_a)))
            z_b = self.target_projector(self.target_backbone.pool(self.target_backbone(view_b)))
        loss = 0.5 * (negative_cosine(p_a, z_b) + negative_cosine(p_b, z_a))
        return loss, h_a.detach()

    def ema_pairs(self):
        """The target backbone and projector follow the online ones."""
        return [(self.target_backbone, self.backbone), (self.target_projector, self.projector)]
