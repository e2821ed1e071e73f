"""The supervised reference (not a method of the paper): the same trunk trained *with* labels,
the ceiling the probes of the self-supervised methods are read against (chapters 05 and 08).

A method like the others, so that the one training loop trains it (micro-batches, torchrun,
precision, the decoded cache, checkpoints, exact resume) and the course caches and links
its run like every run: a linear head over the trunk's pooled features, cross-entropy on
the class labels the pipeline hands it by name (``labels``), CNN-JEPA's views (random
resized crop and flip), AdamW 1e-3 / 0.01 (``config.SupervisedOptions``). The trunk is a
ResNet or, with a ViT ``--arch``, I-JEPA's ViT on all its tokens, mean-pooled (chapter 10 and
the bench read the two side by side).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from jepa_lite.config import SupervisedOptions
from jepa_lite.data.augment import CROP_ONLY
from jepa_lite.data.pipeline import Views
from jepa_lite.encoders import vit
from jepa_lite.encoders.resnet import dense_trunk, patch_of
from jepa_lite.masking import check_image_size
from jepa_lite.methods.base import Method


def trunk_of(arch: str, zero_init_residual: bool = False) -> nn.Module:
    """A ResNet trunk, or a ViT (``vit_*``) on all its tokens."""
    return vit.ViT(arch) if arch in vit.SIZES else dense_trunk(arch, zero_init_residual)


class Supervised(Method):
    label = "supervised"
    Options = SupervisedOptions
    name = Options.name
    encoder_prefix = "trunk."
    reference = True  # read against, not compared (chapter 08's table lists it apart)

    def __init__(self, arch: str = "resnet50", num_classes: int = 1000,
                 zero_init_residual: bool = False):
        super().__init__()
        self.trunk = trunk_of(arch, zero_init_residual)
        self.head = nn.Linear(self.trunk.dim, num_classes)

    @classmethod
    def from_config(cls, cfg) -> Supervised:
        return cls(cfg.arch, cfg.method.num_classes, cfg.zero_init_residual)

    @classmethod
    def encodes(cls, arch: str) -> bool:
        return arch in vit.SIZES or super().encodes(arch)

    @classmethod
    def check(cls, cfg) -> None:
        if cfg.arch in vit.SIZES:
            check_image_size(cfg.image_size, vit.PATCH)
        else:
            super().check(cfg)

    @classmethod
    def describe(cls, cfg) -> str:
        if cfg.arch not in vit.SIZES:
            return super().describe(cfg)
        h, w = check_image_size(cfg.image_size, vit.PATCH)
        return f"{cfg.image_size} px: {h // vit.PATCH}x{w // vit.PATCH} tokens (no masks)"

    @classmethod
    def views(cls, cfg) -> Views:
        patch = vit.PATCH if cfg.arch in vit.SIZES else patch_of(cfg.arch)
        return Views((CROP_ONLY,), cfg.image_size, patch, num_classes=cfg.method.num_classes)

    @classmethod
    def probe_encoder(cls, cfg) -> nn.Module:
        return trunk_of(cfg.arch)

    def forward(self, images: torch.Tensor, labels: torch.Tensor):
        pooled = self.trunk.pool(self.trunk(images))
        loss = F.cross_entropy(self.head(pooled).float(), labels)
        return loss, pooled.detach()
