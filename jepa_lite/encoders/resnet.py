"""The ResNet trunks every method of the paper trains (each an
:class:`~jepa_lite.encoders.base.Encoder`).

A trunk is a torchvision ResNet
without its pooling and classifier; its patch is its total stride (32, or 16 for the
small-image stem ``NAME-s16``): :func:`patch_of` is the one place that says so.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models import resnet

from jepa_lite.encoders.base import Encoder
from jepa_lite.errors import UsageError

PATCH = 32  # a ResNet's total downsampling: pixels per mask cell
ARCHS = {
    "resnet10": lambda **kw: resnet.ResNet(resnet.BasicBlock, [1, 1, 1, 1], **kw),  # for CPUs
    "resnet18": resnet.resnet18,
    "resnet34": resnet.resnet34,
    "resnet50": resnet.resnet50,
    "resnet101": resnet.resnet101,
    "resnet152": resnet.resnet152,
    "wide_resnet50_2": resnet.wide_resnet50_2,
}
TRUNK_PARTS = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")
# "resnet18-s16": the small-image stem. Without the max-pool the trunk downsamples by 16, so
# a 112 px image gives the paper's 7x7 grid (16 px patches) as 224 px does with 32 px ones;
# the weights (and state_dict keys) are the same as the plain trunk's.
SMALL_STEM = "-s16"
ALL_ARCHS = (*ARCHS, *(a + SMALL_STEM for a in ARCHS))
PATCHES = (PATCH // 2, PATCH)  # every trunk's patch


def check_arch(arch: str) -> str:
    if arch not in ALL_ARCHS:
        raise UsageError(f"unsupported architecture {arch!r}; supported: {', '.join(ARCHS)}, "
                         f"each also as NAME{SMALL_STEM} (no max-pool: total stride 16, for "
                         f"small images, e.g. resnet18{SMALL_STEM} at 112 px for a 7x7 grid)")
    return arch


def patch_of(arch: str) -> int:
    """Pixels per cell of the trunk's output: the mask's patch size (32; 16 for ``-s16``)."""
    return PATCH // 2 if check_arch(arch).endswith(SMALL_STEM) else PATCH


class Trunk(Encoder):
    """A torchvision ResNet without its pooling and classifier: ``[B, 3, H, W] -> [B, C, H/32,
    W/32]`` (``H/16`` with the small-image stem, ``-s16``). ``zero_init_residual``: the last
    BatchNorm of every residual block starts with weight 0, so every block starts as the
    identity (timm's default, which the authors used)."""

    def __init__(self, arch: str, zero_init_residual: bool = False):
        super().__init__()
        net = ARCHS[check_arch(arch).removesuffix(SMALL_STEM)](
            zero_init_residual=zero_init_residual)
        if arch.endswith(SMALL_STEM):
            net.maxpool = nn.Identity()  # conv1's stride 2 stays: 16 px per output cell
        self.arch = arch
        for name in TRUNK_PARTS:
            self.add_module(name, getattr(net, name))
        self.dim = net.fc.in_features  # channels of the output
        self.patch = patch_of(arch)  # pixels per cell of the output (and of the mask)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images
        for name in TRUNK_PARTS:
            x = getattr(self, name)(x)
        return x


def dense_trunk(arch: str = "resnet50", zero_init_residual: bool = False) -> Trunk:
    """The dense trunk, called as ``enc(images)``; used for the EMA target encoder."""
    return Trunk(arch, zero_init_residual)
