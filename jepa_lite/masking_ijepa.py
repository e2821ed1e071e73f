"""I-JEPA's multi-block masks (chapter 10): token indices, not a mask image.

CNN-JEPA's masks (``masking.py``) are boolean maps of the cell grid, one union target per
image, because a CNN needs the whole grid and re-masks it. A ViT takes lists of tokens: per
image, one *context* block (the tokens the context encoder sees) and four *target* blocks
(each predicted on its own), every target token removed from the context.

As facebookresearch/ijepa's ``src/masks/multiblock.py`` (``MaskCollator``; docs/paper.md,
"I-JEPA"): per micro-batch one target block size (scale 0.15-0.2 of the grid, aspect ratio
0.75-1.5) and one context block size (scale 0.85-1, aspect 1); per image four target blocks
placed independently, then a context block from which every target token is removed; a
block must keep more than ``min_keep`` tokens or is placed again (after 20 failures one
fewer target is removed from the context, then another...); every image's index lists are
cut to the micro-batch's shortest, so that they stack. Its quirks, kept: one random number
draws both a block's scale and its aspect ratio; a block's corner is drawn in
``[0, H - h)``, so no block reaches the last row or column, and a block is never the full
height or width. One change: the official collator places blocks with the process's global
generator (the masks then depend on which worker collates); here everything comes from the
micro-batch's seed, so the masks are the same for any number of workers and processes.
"""

from __future__ import annotations

import math

import torch

from jepa_lite.errors import UsageError

TRIES = 20  # placements before one constraint is relaxed [code: og_timeout]


def size_at(grid: tuple[int, int], scale: tuple[float, float], aspect: tuple[float, float],
            u: float) -> tuple[int, int]:
    """[code] ``_sample_block_size`` for the random number ``u``, which sets the scale *and*
    the aspect ratio (``h / w``); the block is at most ``H - 1`` by ``W - 1``."""
    keep = int(grid[0] * grid[1] * (scale[0] + u * (scale[1] - scale[0])))
    ratio = aspect[0] + u * (aspect[1] - aspect[0])
    h, w = round(math.sqrt(keep * ratio)), round(math.sqrt(keep / ratio))
    return min(h, grid[0] - 1), min(w, grid[1] - 1)


def block_size(grid: tuple[int, int], scale: tuple[float, float],
               aspect: tuple[float, float], g: torch.Generator) -> tuple[int, int]:
    """One block size of a micro-batch (:func:`size_at` of one draw)."""
    return size_at(grid, scale, aspect, torch.rand(1, generator=g).item())


def place_block(grid: tuple[int, int], size: tuple[int, int], min_keep: int,
                g: torch.Generator, allowed: list[torch.Tensor] = ()) -> tuple[torch.Tensor,
                                                                               torch.Tensor]:
    """[code] ``_sample_block_mask``: a block of ``size`` at a random corner, cut by the
    ``allowed`` regions (each ``[H, W]``, 1 where the block may be), placed again until it
    keeps more than ``min_keep`` tokens; after every :data:`TRIES` failures one region fewer
    (the last ones first) cuts it. Returns the block's token indices (raster order) and its
    complement ``[H, W]`` (1 outside the uncut block)."""
    (H, W), (h, w) = grid, size
    relaxed, left = 0, TRIES
    while True:
        top = int(torch.randint(0, H - h, (1,), generator=g))
        lft = int(torch.randint(0, W - w, (1,), generator=g))
        mask = torch.zeros(H, W, dtype=torch.int32)
        mask[top:top + h, lft:lft + w] = 1
        for region in allowed[:max(len(allowed) - relaxed, 0)]:
            mask *= region
        index = mask.flatten().nonzero().squeeze(1)
        if len(index) > min_keep:
            break
        left -= 1
        if left == 0:
            relaxed, left = relaxed + 1, TRIES
    outside = torch.ones(H, W, dtype=torch.int32)
    outside[top:top + h, lft:lft + w] = 0
    return index, outside


def check_geometry(grid: tuple[int, int], pred_scale: tuple[float, float],
                   aspect: tuple[float, float], min_keep: int) -> None:
    """Refuse a grid where a target block may keep no more than ``min_keep`` tokens (the
    official collator would then draw forever), naming the fix."""
    smallest = min(math.prod(size_at(grid, pred_scale, aspect, i / 100)) for i in range(101))
    if smallest <= min_keep:
        raise UsageError(
            f"a {grid[0]}x{grid[1]} token grid makes target blocks of {smallest} tokens at "
            f"scale {pred_scale[0]:g}, not more than --min-keep {min_keep}: use a larger "
            f"--image-size or a --min-keep below {smallest}")


def multiblock(n: int, grid: tuple[int, int], g: torch.Generator, targets: int = 4,
               pred_scale=(0.15, 0.2), enc_scale=(0.85, 1.0), aspect=(0.75, 1.5),
               min_keep: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """[code] ``MaskCollator.__call__`` for ``n`` images: ``(context [n, Kc], targets [n,
    targets, Kt])`` token indices, each image's lists cut to the shortest of the
    micro-batch (context and targets apart)."""
    pred = block_size(grid, pred_scale, aspect, g)
    enc = block_size(grid, enc_scale, (1.0, 1.0), g)
    all_targets, contexts = [], []
    for _ in range(n):
        blocks, outside = zip(*(place_block(grid, pred, min_keep, g) for _ in range(targets)))
        all_targets.append(blocks)
        contexts.append(place_block(grid, enc, min_keep, g, list(outside))[0])
    kt = min(len(b) for blocks in all_targets for b in blocks)
    kc = min(len(c) for c in contexts)
    return (torch.stack([c[:kc] for c in contexts]),
            torch.stack([torch.stack([b[:kt] for b in blocks]) for blocks in all_targets]))


def to_grid(index: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Token indices ``[..., K]`` -> a boolean map ``[..., H, W]``, True at the listed tokens
    (to draw them, or to compare them with CNN-JEPA's cell masks)."""
    flat = torch.zeros(*index.shape[:-1], grid[0] * grid[1], dtype=torch.bool,
                       device=index.device)
    return flat.scatter(-1, index, True).view(*index.shape[:-1], *grid)


def from_grid(keep: torch.Tensor) -> torch.Tensor:
    """A boolean map ``[B, H, W]`` -> the indices ``[B, K]`` of its True tokens, raster order;
    every image must keep the same number ``K`` (they stack)."""
    counts = keep.flatten(1).sum(1)
    if len(counts.unique()) > 1:
        raise ValueError(f"every image must keep as many tokens to stack; got {counts.tolist()}")
    return keep.flatten(1).nonzero()[:, 1].view(len(keep), -1)


class BlockCollator:
    """I-JEPA's masks for the loader (``data/pipeline.py``'s mask-collator contract): each
    micro-batch's ``context`` ``[n, Kc]`` and ``targets`` ``[n, P, Kt]`` token indices,
    drawn from the micro-batch's seed."""

    names = ("context", "targets")

    def __init__(self, grid: tuple[int, int], **options):
        self.grid, self.options = tuple(grid), options
        check_geometry(self.grid, options.get("pred_scale", (0.15, 0.2)),
                       options.get("aspect", (0.75, 1.5)), options.get("min_keep", 10))

    def draw(self, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        return multiblock(n, self.grid, torch.Generator().manual_seed(seed), **self.options)
