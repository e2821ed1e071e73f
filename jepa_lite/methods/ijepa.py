"""I-JEPA (Assran et al. 2023) in one module, beside CNN-JEPA (chapter 10): a ViT context
encoder on the context block's tokens only, a narrow ViT predictor that predicts each of four
target blocks on its own, against the EMA target encoder's layer-normed tokens.

What differs from CNN-JEPA (``methods/cnn_jepa.py``), each as facebookresearch/ijepa runs it
(docs/paper.md, "I-JEPA"): the encoder drops the tokens it must not see instead of re-masking
a grid (``encoders/vit.py``); the masks are token indices, a context block and four target
blocks instead of one union target (``masking_ijepa.py``); the loss is smooth L1 on
layer-normed tokens instead of on L2-normalised cells; AdamW leaves norms and biases
undecayed, the weight decay rises by a cosine (0.04 -> 0.4), the learning rate warms up from
``start_lr`` and the EMA momentum rises linearly (0.996 -> 1). The only augmentation is a
random resized crop (scale 0.3-1, no flip).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from jepa_lite import schedules
from jepa_lite.config import IJEPAOptions
from jepa_lite.data.augment import ViewRecipe
from jepa_lite.data.pipeline import Views
from jepa_lite.encoders.vit import PATCH, SIZES, ViT, ViTPredictor, gather_tokens
from jepa_lite.errors import UsageError
from jepa_lite.losses import ijepa_loss
from jepa_lite.masking import check_image_size
from jepa_lite.masking_ijepa import BlockCollator, check_geometry, size_at
from jepa_lite.methods.base import Method, Schedules

# [code] configs: RandomResizedCrop scale 0.3-1, no flip, colour or blur
CROP = ViewRecipe(jitter_p=0.0, grey_p=0.0, blur_p=0.0, crop_scale=(0.3, 1.0), flip_p=0.0)


def token_grid(cfg) -> tuple[int, int]:
    """The run's grid of tokens (16 px patches)."""
    h, w = check_image_size(cfg.image_size, PATCH)
    return h // PATCH, w // PATCH


class IJEPA(Method):
    label = "I-JEPA"
    encoder_prefix = "target_encoder."  # I-JEPA probes its target encoder, as CNN-JEPA
    Options = IJEPAOptions
    name = Options.name
    decay_norms = False  # [code] helper.init_opt: biases and 1-D parameters undecayed

    def __init__(self, arch: str = "vit_small", predictor_width: int = 384,
                 predictor_depth: int = 6):
        super().__init__()
        self.context_encoder = ViT(arch)
        self.target_encoder = ViT(arch)  # same weights to start, no gradient ever
        self.target_encoder.load_state_dict(self.context_encoder.state_dict())
        self.target_encoder.requires_grad_(False)
        # [code] init_model: the predictor has the encoder's number of heads
        self.predictor = ViTPredictor(self.context_encoder.dim, predictor_width,
                                      predictor_depth, self.context_encoder.heads)

    @classmethod
    def from_config(cls, cfg) -> IJEPA:
        o = cfg.method
        return cls(cfg.arch, o.predictor_width, o.predictor_depth)

    @classmethod
    def encodes(cls, arch: str) -> bool:
        return arch in SIZES

    @classmethod
    def check(cls, cfg) -> None:
        """A ViT, an image of whole 16 px patches, and target blocks that can keep more
        than ``min_keep`` tokens on its grid."""
        if not cls.encodes(cfg.arch):
            raise UsageError(f"--method ijepa trains a ViT, not {cfg.arch!r}: use --arch "
                             f"{' / '.join(SIZES)} (16 px patches)")
        o = cfg.method
        check_geometry(token_grid(cfg), o.target_scale, o.target_aspect, o.min_keep)

    @classmethod
    def describe(cls, cfg) -> str:
        o, grid = cfg.method, token_grid(cfg)
        small, large = (size_at(grid, o.target_scale, o.target_aspect, u) for u in (0.0, 1.0))
        return (f"{cfg.image_size} px: {grid[0]}x{grid[1]} tokens of {PATCH} px; "
                f"{o.target_blocks} target blocks of {small[0]}x{small[1]} to "
                f"{large[0]}x{large[1]} tokens, one context block without them")

    @classmethod
    def views(cls, cfg) -> Views:
        o = cfg.method
        masks = BlockCollator(token_grid(cfg), targets=o.target_blocks,
                              pred_scale=o.target_scale, enc_scale=o.context_scale,
                              aspect=o.target_aspect, min_keep=o.min_keep)
        return Views((CROP,), cfg.image_size, PATCH, masks)

    @classmethod
    def schedules(cls, cfg, steps_per_epoch: int) -> Schedules:
        """[code] src/helper.py init_opt: the learning rate warmed up from ``start_lr``, then
        cosine; the weight decay cosine from ``weight_decay`` to ``final_weight_decay``; the
        EMA momentum linear from ``ema[0]`` to ``ema[1]``."""
        o, total = cfg.method, steps_per_epoch * cfg.epochs
        warmup = round(cfg.warmup_epochs * steps_per_epoch)
        return {"lr": lambda step: schedules.learning_rate(step, total, warmup, o.lr,
                                                           cfg.final_lr_ratio, o.start_lr),
                "weight_decay": lambda step: schedules.cosine(step, total, o.weight_decay,
                                                              o.final_weight_decay),
                "ema_momentum": lambda step: schedules.linear(step, total, *o.ema)}

    @classmethod
    def probe_encoder(cls, cfg) -> ViT:
        return ViT(cfg.arch)

    def forward(self, images: torch.Tensor, context: torch.Tensor, targets: torch.Tensor):
        """Loss of one micro-batch (``context`` ``[B, Kc]``, ``targets`` ``[B, P, Kt]`` token
        indices) and the target encoder's pooled tokens (for the collapse diagnostics)."""
        b, p, kt = targets.shape
        with torch.no_grad():
            h = self.target_encoder(images)  # every token
            normed = F.layer_norm(h.float(), h.shape[-1:])  # [code]: no affine
            target = gather_tokens(normed, targets.reshape(b, p * kt)).view(b, p, kt, -1)
        z = self.context_encoder(images, context)  # the context block's tokens only
        grid = (images.shape[-2] // PATCH, images.shape[-1] // PATCH)
        pred = self.predictor(z, context, targets, grid)
        return ijepa_loss(pred, target), self.target_encoder.pool(h.detach().float())

    def ema_pairs(self):
        return [(self.target_encoder, self.context_encoder)]
