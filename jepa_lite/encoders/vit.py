"""I-JEPA's encoder: a Vision Transformer that drops the tokens it must not see (chapter 10).

A CNN cannot simply leave the hidden patches out: every convolution mixes neighbours, so
CNN-JEPA re-masks after every layer (``encoders/sparse.py``). A ViT can: its image is a set of
tokens, and attention only mixes the tokens it is given, so the context encoder runs on the
kept tokens alone and nothing of a hidden patch reaches it, by construction.

As facebookresearch/ijepa's ``src/models/vision_transformer.py`` (docs/paper.md, "I-JEPA"):
no class token; a 16 px patch embedding by a strided convolution; fixed 2-D sine-cosine
positional embeddings, added *before* the kept tokens are gathered; pre-norm blocks; a final
LayerNorm. Linear and convolution weights start truncated-normal (std 0.02), biases 0, and
each block's two output projections are divided by sqrt(2 x its depth). The blocks are
torchvision's (``EncoderBlock``: ``nn.MultiheadAttention``, which runs torch's fused
``scaled_dot_product_attention``).
"""

from __future__ import annotations

import math
from functools import cache

import torch
from torch import nn
from torchvision.models.vision_transformer import EncoderBlock

from jepa_lite.encoders.base import Encoder
from jepa_lite.errors import UsageError

PATCH = 16  # pixels per token side, as I-JEPA's ViT-S/16 and ViT-B/16
# name -> (width, depth, heads), as the official vit_tiny / vit_small / vit_base;
# vit_micro: ours, for a CPU (trains in seconds at 64-128 px)
SIZES = {"vit_micro": (64, 2, 4), "vit_tiny": (192, 12, 3), "vit_small": (384, 12, 6),
         "vit_base": (768, 12, 12)}
MLP_RATIO = 4
INIT_STD = 0.02


def check_vit(arch: str) -> str:
    if arch not in SIZES:
        raise UsageError(f"unsupported ViT {arch!r}; supported: {', '.join(SIZES)} (patch "
                         f"{PATCH})")
    return arch


@cache
def _sincos(dim: int, h: int, w: int) -> torch.Tensor:
    """[code] ``get_2d_sincos_pos_embed``: ``[h * w, dim]`` in raster order; the first half of
    the channels encodes a token's column, the second its row, each as sines then cosines
    of the position times ``1 / 10000^(i / (dim / 4))``."""
    if dim % 4:
        raise ValueError(f"a 2-D sine-cosine embedding needs a width divisible by 4; got {dim}")
    omega = 1.0 / 10000 ** (torch.arange(dim // 4, dtype=torch.float64) / (dim / 4))
    rows, cols = torch.meshgrid(torch.arange(h, dtype=torch.float64),
                                torch.arange(w, dtype=torch.float64), indexing="ij")

    def one(pos):
        out = pos.reshape(-1, 1) * omega
        return torch.cat([out.sin(), out.cos()], 1)

    return torch.cat([one(cols), one(rows)], 1)


def positions(dim: int, grid: tuple[int, int], like: torch.Tensor) -> torch.Tensor:
    """The fixed positional embedding of a ``grid`` of tokens, ``[h * w, dim]``, on ``like``'s
    device and in its dtype."""
    return _sincos(dim, *grid).to(like.device, like.dtype)


def gather_tokens(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """[code] ``apply_masks``: the tokens ``index`` ``[B, K]`` (raster positions) of ``x``
    ``[B, N, D]`` -> ``[B, K, D]``."""
    return torch.gather(x, 1, index.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


def init_weights(module: nn.Module, blocks: nn.ModuleList) -> None:
    """[code] ``_init_weights`` and ``fix_init_weight``."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            nn.init.trunc_normal_(m.weight, std=INIT_STD)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.MultiheadAttention):  # the official qkv is one nn.Linear
            nn.init.trunc_normal_(m.in_proj_weight, std=INIT_STD)
            nn.init.zeros_(m.in_proj_bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    with torch.no_grad():
        for depth, block in enumerate(blocks, start=1):
            block.self_attention.out_proj.weight.div_(math.sqrt(2.0 * depth))
            block.mlp[3].weight.div_(math.sqrt(2.0 * depth))


def blocks_of(width: int, depth: int, heads: int) -> nn.ModuleList:
    return nn.ModuleList(EncoderBlock(heads, width, MLP_RATIO * width, 0.0, 0.0)
                         for _ in range(depth))


class ViT(Encoder):
    """``forward(images, keep=None)``: ``[B, 3, H, W]`` -> tokens ``[B, N, dim]`` (``N = H/16
    x W/16``, raster order), or only the tokens ``keep`` ``[B, K]`` names, ``[B, K, dim]``:
    the others never enter a block. ``pool``: the mean of the tokens, ``[B, dim]``."""

    def __init__(self, arch: str = "vit_small"):
        super().__init__()
        width, depth, heads = SIZES[check_vit(arch)]
        self.arch, self.dim, self.patch, self.heads = arch, width, PATCH, heads
        self.patch_embed = nn.Conv2d(3, width, PATCH, PATCH)
        self.blocks = blocks_of(width, depth, heads)
        self.norm = nn.LayerNorm(width, eps=1e-6)
        init_weights(self, self.blocks)

    def tokens(self, images: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """Patch embedding plus positions, before any block: ``[B, N, dim]`` and the grid."""
        x = self.patch_embed(images)
        grid = tuple(x.shape[-2:])
        x = x.flatten(2).transpose(1, 2)
        return x + positions(self.dim, grid, x), grid

    def forward(self, images: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        x, _ = self.tokens(images)
        if keep is not None:  # the context: the kept tokens only, after their positions
            x = gather_tokens(x, keep)
        for block in self.blocks:
            x = block(x)
        return self.norm(x)

    def pool(self, features: torch.Tensor) -> torch.Tensor:
        """The mean of the tokens: ``[B, N, dim] -> [B, dim]``; any other shape is refused."""
        if features.dim() != 3 or features.shape[-1] != self.dim:
            raise ValueError(f"{type(self).__name__}.pool takes [B, N, {self.dim}] tokens; "
                             f"got {tuple(features.shape)}")
        return features.mean(1)


class ViTPredictor(nn.Module):
    """I-JEPA's predictor, a narrow ViT ([code] ``VisionTransformerPredictor``): the context
    tokens mapped to ``width`` plus their positions; for each target block, one learned
    mask token plus the position of each target token; blocks over both; LayerNorm; back to
    the encoder's width; the outputs at the target tokens are the predictions. Each target
    block is predicted on its own (the context repeated once per block), as the official
    one does."""

    def __init__(self, dim: int, width: int = 384, depth: int = 6, heads: int = 6):
        super().__init__()
        if width % heads or width % 4:
            raise UsageError(f"a predictor width of {width} does not split into {heads} heads "
                             f"(and 4 position parts): use --predictor-width "
                             f"{max(heads * 4, width - width % (heads * 4))}")
        self.width = width
        self.embed = nn.Linear(dim, width)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, width))
        self.blocks = blocks_of(width, depth, heads)
        self.norm = nn.LayerNorm(width, eps=1e-6)
        self.proj = nn.Linear(width, dim)
        init_weights(self, self.blocks)
        nn.init.trunc_normal_(self.mask_token, std=INIT_STD)

    def forward(self, context: torch.Tensor, context_index: torch.Tensor,
                target_index: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """``context`` ``[B, Kc, dim]`` at ``context_index`` ``[B, Kc]``; ``target_index``
        ``[B, P, Kt]`` -> predictions ``[B, P, Kt, dim]``."""
        b, p, kt = target_index.shape
        pos = positions(self.width, grid, context).expand(b, -1, -1)
        x = self.embed(context) + gather_tokens(pos, context_index)
        x = x.repeat(p, 1, 1)  # block-major: [P * B, Kc, width], as the official repeat
        where = target_index.transpose(0, 1).reshape(p * b, kt)
        queries = self.mask_token + gather_tokens(pos.repeat(p, 1, 1), where)
        x = torch.cat([x, queries], 1)
        for block in self.blocks:
            x = block(x)
        out = self.proj(self.norm(x[:, -kt:]))  # [P * B, Kt, dim]
        return out.view(p, b, kt, -1).transpose(0, 1)
