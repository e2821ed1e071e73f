"""VICReg (Bardes et al. 2022), as the CNN-JEPA authors ran it: two augmented views, a
projector of three 8192-wide layers (Linear-BN-ReLU twice, then Linear), the loss
25 * invariance + 25 * variance + 1 * covariance on this process's micro-batch (the variance
and covariance are not gathered across GPUs), LARS (lr 0.5, weight decay 1e-6)."""

from __future__ import annotations

import torch

from jepa_lite.backbone import dense_trunk
from jepa_lite.losses import vicreg_loss
from jepa_lite.methods.base import Method
from jepa_lite.methods.heads import mlp, pool, scaled
from jepa_lite.views import VIEW_RECIPES, TwoViews, stack_views


class VICReg(Method):
    name = "vicreg"
    encoder_prefix = "backbone."
    options = ("vicreg_weights", "jitter_strength")
    defaults = {"optimizer": "lars", "lr": 0.5, "weight_decay": 1e-6, "ema_per_epoch": False}
    min_micro_batch = 2
    why_min_micro_batch = "its variance and covariance are taken over the micro-batch"

    def __init__(self, arch: str = "resnet50", weights=(25.0, 25.0, 1.0),
                 zero_init_residual: bool = False):
        super().__init__()
        self.weights = tuple(weights)
        self.backbone = dense_trunk(arch, zero_init_residual)
        c = self.backbone.out_channels
        self.projector = mlp(scaled(c, 4, 4, 4))  # 3 x 8192 at C = 2048

    @classmethod
    def from_config(cls, cfg) -> VICReg:
        return cls(cfg.arch, cfg.vicreg_weights, cfg.zero_init_residual)

    @staticmethod
    def views(cfg):
        return TwoViews(*VIEW_RECIPES["vicreg"], cfg.image_size, cfg.jitter_strength,
                        cfg.patch), stack_views

    def forward(self, view_a: torch.Tensor, view_b: torch.Tensor):
        h_a, h_b = pool(self.backbone(view_a)), pool(self.backbone(view_b))
        loss = vicreg_loss(self.projector(h_a), self.projector(h_b), self.weights)
        return loss, h_a.detach()
