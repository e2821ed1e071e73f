"""CNN-JEPA in one module: sparse context encoder -> mask token -> predictor, against the
dense EMA target encoder, loss on target cells only."""

from __future__ import annotations

import torch

from jepa_lite.config import CNNJEPAOptions
from jepa_lite.data.augment import CROP_ONLY
from jepa_lite.data.pipeline import MaskCollator, Views
from jepa_lite.encoders.predictor import ConvPredictor, MaskToken
from jepa_lite.encoders.resnet import dense_trunk, patch_of
from jepa_lite.encoders.sparse import sparse_trunk
from jepa_lite.losses import jepa_loss
from jepa_lite.masking import describe_geometry, grid_of, sample_masks
from jepa_lite.methods.base import Method


class CNNJEPA(Method):
    label = "CNN-JEPA"
    encoder_prefix = "target_encoder."  # the paper probes the EMA target encoder
    Options = CNNJEPAOptions
    name = Options.name
    min_micro_batch = 1

    def __init__(self, arch: str = "resnet50", predictor_layers: int = 3,
                 kernel_size: int = 3, depthwise_separable: bool = True,
                 loss: str = "official", zero_init_residual: bool = False,
                 target_ema: bool = True, target_gradient: bool = False):
        super().__init__()
        self.arch, self.loss_kind, self.target_ema = arch, loss, target_ema
        self.target_gradient = target_gradient
        self.context_encoder = sparse_trunk(arch, zero_init_residual)
        # Paper, III-B: "the target network's weights are updated using an exponential moving
        # average of the context weights" -- same weights to start, no gradient ever.
        self.target_encoder = dense_trunk(arch, zero_init_residual)
        self.target_encoder.load_state_dict(self.context_encoder.state_dict())
        self.target_encoder.requires_grad_(False)
        channels = self.context_encoder.dim
        self.mask_token = MaskToken(channels)
        self.predictor = ConvPredictor(channels, predictor_layers, kernel_size,
                                       depthwise_separable)

    @classmethod
    def from_config(cls, cfg) -> CNNJEPA:
        o = cfg.method
        return cls(cfg.arch, o.predictor_layers, o.kernel_size, o.depthwise_separable, o.loss,
                   cfg.zero_init_residual, o.target_ema, o.target_gradient)

    @classmethod
    def check(cls, cfg) -> None:
        """The grid, and the masking strategy's limits on it, whichever branch is drawn."""
        super().check(cfg)
        o = cfg.method
        sample_masks(1, grid_of(cfg.image_size, cfg.arch), o.strategy,
                     torch.Generator().manual_seed(0), o.official_masks, **o.masking.to_dict())

    @classmethod
    def describe(cls, cfg) -> str:
        """The grid and the multi-block block sizes, in one line."""
        o = cfg.method
        return describe_geometry(cfg.image_size, patch_of(cfg.arch), o.masking,
                                 o.official_masks)

    @classmethod
    def views(cls, cfg) -> Views:
        """Paper: "only random resized crop" (+ flip), one per image; the collate draws the
        micro-batch's masks."""
        o = cfg.method
        masks = MaskCollator(grid_of(cfg.image_size, cfg.arch), o.strategy, o.official_masks,
                             o.masking.to_dict(), blocks=cls.draws_blocks(cfg))
        return Views((CROP_ONLY,), cfg.image_size, patch_of(cfg.arch), masks)

    @classmethod
    def draws_blocks(cls, cfg) -> bool:
        """Whether the collate also hands the multi-block target blocks (C-JEPA's reading A)."""
        return False

    def predict(self, images: torch.Tensor, mask: torch.Tensor):
        """``(context, prediction, target)`` feature maps ``[B, C, gh, gw]`` of one batch."""
        context = self.context_encoder(images, mask)  # zero at target cells
        pred = self.predictor(self.mask_token(context, mask))
        if self.target_gradient:  # the ablation: the same weights, dense, WITH gradient
            return context, pred, self.context_encoder(images, torch.zeros_like(mask))
        with torch.no_grad():
            target = self.target_encoder(images)  # the full image, dense
        return context, pred, target

    def forward(self, images: torch.Tensor, mask: torch.Tensor):
        """Loss of one batch, plus the pooled target features (for collapse diagnostics)."""
        _, pred, target = self.predict(images, mask)
        pooled = self.target_encoder.pool(target.detach().float())
        return jepa_loss(pred, target, mask, self.loss_kind), pooled

    def ema_pairs(self):
        """The target encoder follows the context encoder (the predictor has no target)."""
        return [(self.target_encoder, self.context_encoder)]

    def update_target(self, momentum: float) -> None:
        """The EMA step (:meth:`Method.update_target`). Without ``target_ema`` the target is a
        copy of the context encoder after every step (momentum 0; a stop-gradient and
        nothing else: the ablation that invites collapse); nor with ``target_gradient``,
        where the target encoder only keeps the trained weights for the probes."""
        ema = self.target_ema and not self.target_gradient
        super().update_target(momentum if ema else 0.0)
