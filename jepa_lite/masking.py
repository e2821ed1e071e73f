"""Chapter 01 — which 32-pixel cells the predictor must predict.

A ResNet downsamples by 32, so a 224 px image becomes a 7x7 feature map; CNN-JEPA masks the
image in 32x32 patches, one patch per cell of that map. A mask is a bool tensor ``[B, gh, gw]``
with ``True`` = target (masked) cell; the context is every other cell.

Paper, III-E: "We consider the union of the blocks as the masked region and predict the latent
representations in it. The context for the prediction is patches outside any masked patch."
"""

from __future__ import annotations

import math
import numbers
from dataclasses import fields

import torch

from jepa_lite.config import STRATEGIES, MaskOptions
from jepa_lite.encoders.resnet import (  # PATCH: pixels per mask cell, a ResNet's stride
    PATCH,
    patch_of,
)
from jepa_lite.errors import UsageError

STAGE_STRIDES = (2, 4, 8, 16, 32)  # conv1, layer1 (after max-pool), layer2, layer3, layer4
def check_image_size(image_size: int | tuple[int, int], patch: int = PATCH) -> tuple[int, int]:
    """Return ``(height, width)``; raise if a side is not a multiple of ``patch`` (the trunk's
    total stride: 32 for a ResNet) of at least two patches."""
    h, w = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    for side in (h, w):
        if not isinstance(side, int) or side < 2 * patch or side % patch:
            lo = max(2, round(side / patch)) * patch if isinstance(side, (int, float)) else 224
            raise UsageError(
                f"image size {side} is not a multiple of {patch} of at least {2 * patch}: "
                f"a ResNet downsamples by {patch}, so use e.g. {lo} ({7 * patch} gives the "
                f"paper's 7x7 grid)"
            )
    return h, w


def grid_size(image_size: int | tuple[int, int], patch: int = PATCH) -> tuple[int, int]:
    """Mask grid of an image: one cell per ``patch`` x ``patch`` pixels (224 px -> 7x7)."""
    h, w = check_image_size(image_size, patch)
    return h // patch, w // patch


def grid_of(image_size: int, arch: str) -> tuple[int, int]:
    """The mask grid of a run: its images in patches of its trunk's stride."""
    return grid_size(image_size, patch_of(arch))


def _check_grid(grid: int | tuple[int, int]) -> tuple[int, int]:
    cells = (grid, grid) if isinstance(grid, int) else tuple(grid)
    if len(cells) != 2 or not all(isinstance(c, numbers.Integral) for c in cells):
        raise TypeError(f"grid must be an int or a pair of ints (rows, columns), got {grid!r}")
    gh, gw = cells
    if gh < 2 or gw < 2:
        raise UsageError(
            f"grid {gh}x{gw} is too small: masking needs at least 2x2 cells, i.e. images of "
            f"at least {2 * PATCH} px"
        )
    return int(gh), int(gw)


def default_min_context(num_cells: int) -> int:
    """Official ``min_keep`` = 5 context cells, relaxed to a third of the grid on tiny grids."""
    return min(5, num_cells // 3)


def resolve_options(grid: tuple[int, int], options: MaskOptions) -> tuple[MaskOptions, int]:
    """Check the options' limits on a grid (their own bounds :class:`MaskOptions` checked
    when it was made); return them with ``min_context`` resolved."""
    n = grid[0] * grid[1]
    o = options
    min_ctx = default_min_context(n) if o.min_context is None else int(o.min_context)
    problems = []
    if min_ctx > n - 1:
        problems.append(
            f"min_context={min_ctx} is larger than the {grid[0]}x{grid[1]} grid allows "
            f"({n} cells, at least one must be a target): use at most {n - 1}"
        )
    if problems:
        raise UsageError("impossible mask options: " + "; ".join(problems))
    return o, min_ctx


def block_size(
    grid: tuple[int, int],
    scale: tuple[float, float],
    aspect_ratio: tuple[float, float],
    generator: torch.Generator | None = None,
    official: bool = False,
) -> tuple[int, int]:
    """Draw one block size ``(h, w)`` for a whole batch.

    ``official=True`` uses one uniform number for both scale and aspect ratio (the authors'
    code, inherited from I-JEPA), so big blocks are always tall ones.
    """
    gh, gw = grid
    if official:
        r_scale = r_aspect = torch.rand(1, generator=generator).item()
    else:
        r_scale, r_aspect = torch.rand(2, generator=generator).tolist()
    s = scale[0] + r_scale * (scale[1] - scale[0])
    ar = aspect_ratio[0] + r_aspect * (aspect_ratio[1] - aspect_ratio[0])
    area = int(gh * gw * s)
    h = int(round(math.sqrt(area * ar)))
    w = int(round(math.sqrt(area / ar)))
    # As in I-JEPA: a block never spans the whole grid; at least one cell on tiny grids.
    return max(1, min(h, gh - 1)), max(1, min(w, gw - 1))


def block_sizes(grid: tuple[int, int], options: MaskOptions = MaskOptions(),
                official: bool = False, draws: int = 2000, seed: int = 0) -> dict:
    """How often each multi-block block size ``(h, w)`` is drawn on ``grid`` (fractions,
    most frequent first): on small grids every block is one cell, and multi-block masking
    degenerates into scattered single cells."""
    grid = _check_grid(grid)
    g = torch.Generator().manual_seed(seed)
    counts: dict = {}
    for _ in range(draws):
        hw = block_size(grid, options.block_scale, options.aspect_ratio, g, official)
        counts[hw] = counts.get(hw, 0) + 1
    return {hw: n / draws for hw, n in sorted(counts.items(), key=lambda kv: -kv[1])}


def describe_geometry(image_size: int, patch: int, options: MaskOptions = MaskOptions(),
                      official: bool = False) -> str:
    """One line for a chapter: the grid and the multi-block block sizes of a run."""
    grid = grid_size(image_size, patch)
    sizes = block_sizes(grid, options, official)
    shown = ", ".join(f"{h}x{w} {f:.0%}" for (h, w), f in list(sizes.items())[:4])
    line = (f"{image_size} px in {patch} px patches = a {grid[0]}x{grid[1]} grid; "
            f"multi-block blocks (cells): {shown}")
    if set(sizes) == {(1, 1)}:
        line += (" -- every block is a single cell, so multi-block masking is scattered "
                 "one-cell masking here (the paper's grid is 7x7)")
    return line


def draw_blocks(
    batch_size: int,
    grid: tuple[int, int],
    size: tuple[int, int],
    num_blocks: int = 4,
    generator: torch.Generator | None = None,
    official: bool = False,
) -> torch.Tensor:
    """``num_blocks`` blocks of one size at random positions per sample: ``[B, blocks, gh, gw]``."""
    (gh, gw), (h, w) = grid, size
    # Official quirk 2: torch.randint's upper bound is exclusive, and the authors pass gh - h,
    # so a block's top row is at most gh - h - 1 and targets never reach the last row/column.
    top_hi, left_hi = (gh - h, gw - w) if official else (gh - h + 1, gw - w + 1)
    top = torch.randint(0, top_hi, (batch_size, num_blocks, 1), generator=generator)
    left = torch.randint(0, left_hi, (batch_size, num_blocks, 1), generator=generator)
    rows, cols = torch.arange(gh), torch.arange(gw)
    in_rows = (rows >= top) & (rows < top + h)  # [B, blocks, gh]
    in_cols = (cols >= left) & (cols < left + w)  # [B, blocks, gw]
    return in_rows[..., :, None] & in_cols[..., None, :]


def multiblock_masks(batch_size, grid, options, generator=None, official=False,
                     return_blocks: bool = False):
    """Targets = union of ``num_blocks`` blocks; size drawn per batch, positions per sample.
    ``return_blocks``: also the blocks themselves, ``[B, num_blocks, gh, gw]`` (C-JEPA pools
    the prediction over each; where the last resort keeps one block, every slot holds it)."""
    options, min_ctx = resolve_options(grid, options)
    gh, gw = grid
    n = gh * gw
    h, w = block_size(grid, options.block_scale, options.aspect_ratio, generator, official)
    while h * w > n - min_ctx:  # a single block must leave min_context cells
        h, w = (h - 1, w) if h >= w else (h, w - 1)
    def draw():  # the union of the blocks is ONE target region; keep block 0 as a fallback
        blocks = draw_blocks(batch_size, grid, (h, w), options.num_blocks, generator, official)
        return blocks.any(dim=1), blocks

    mask, blocks = draw()
    for _ in range(options.max_tries):  # redraw positions of samples with too little context
        bad = (n - mask.sum((1, 2))) < min_ctx
        if not bad.any():
            break
        new_mask, new_blocks = draw()
        mask = torch.where(bad[:, None, None], new_mask, mask)
        blocks = torch.where(bad[:, None, None, None], new_blocks, blocks)
    bad = (n - mask.sum((1, 2))) < min_ctx
    first = blocks[:, :1].expand_as(blocks)
    blocks = torch.where(bad[:, None, None, None], first, blocks)
    mask = torch.where(bad[:, None, None], first[:, 0], mask)  # last resort: one block only
    return (mask, blocks) if return_blocks else mask


def random_context_cells(grid: tuple[int, int], options: MaskOptions) -> int:
    """Context cells per sample under random masking; raise if that breaks ``min_context``."""
    options, min_ctx = resolve_options(grid, options)
    n = grid[0] * grid[1]
    keep = round(n * (1 - options.mask_ratio))  # official: round(49 * 0.4) = 20 context cells
    if keep < min_ctx or keep >= n:
        raise UsageError(
            f"impossible mask options: mask_ratio={options.mask_ratio} keeps {keep} of {n} "
            f"cells as context on a {grid[0]}x{grid[1]} grid; random masking needs between "
            f"min_context={min_ctx} and {n - 1}: change mask_ratio or min_context"
        )
    return keep


def random_masks(batch_size, grid, options, generator=None):
    """Per sample, ``round(mask_ratio * cells)`` uniformly chosen target cells."""
    keep = random_context_cells(grid, options)
    gh, gw = grid
    n = gh * gw
    order = torch.rand(batch_size, n, generator=generator).argsort(dim=1)
    mask = torch.zeros(batch_size, n, dtype=torch.bool)
    mask.scatter_(1, order[:, : n - keep], True)
    return mask.view(batch_size, gh, gw)


def sample_masks(
    batch_size: int,
    grid: int | tuple[int, int] = (7, 7),
    strategy: str = "mixed",
    generator: torch.Generator | None = None,
    official: bool = False,
    return_blocks: bool = False,
    **options,
) -> torch.Tensor:
    """Draw a batch of target masks, bool ``[B, gh, gw]`` with ``True`` = target cell.
    ``return_blocks``: ``(masks, blocks)``, the blocks ``[B, num_blocks, gh, gw]`` of a
    multi-block draw, ``[B, 0, gh, gw]`` under random masking (it has no blocks).

    ``strategy``: ``"multiblock"``, ``"random"`` or ``"mixed"`` (multi-block with probability
    ``multiblock_prob`` per batch, else random). ``official=True`` reproduces the authors'
    code exactly, quirks included; ``options`` are the fields of :class:`MaskOptions`.
    """
    known = {f.name for f in fields(MaskOptions)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise TypeError(f"unknown mask option(s) {unknown}; known: {sorted(known)}")
    if strategy not in STRATEGIES:
        raise UsageError(f"unknown masking strategy {strategy!r}; choose one of {STRATEGIES}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise UsageError(f"batch_size={batch_size!r} must be an int of at least 1")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {generator!r}")
    grid = _check_grid(grid)
    opts = MaskOptions(**{k: tuple(v) if isinstance(v, list) else v for k, v in options.items()})
    resolve_options(grid, opts)  # fail early, whichever branch is drawn
    if strategy == "random" or (strategy == "mixed" and opts.multiblock_prob < 1):
        random_context_cells(grid, opts)
    if strategy == "mixed":
        use_blocks = torch.rand(1, generator=generator).item() < opts.multiblock_prob
        strategy = "multiblock" if use_blocks else "random"
    if strategy == "multiblock":
        return multiblock_masks(batch_size, grid, opts, generator, official, return_blocks)
    mask = random_masks(batch_size, grid, opts, generator)
    return (mask, mask.new_zeros(batch_size, 0, *grid)) if return_blocks else mask


def upsample_mask(mask: torch.Tensor, factor: int) -> torch.Tensor:
    """Nearest-neighbour upsampling of ``[..., gh, gw]`` by an integer factor."""
    if mask.dim() < 2:
        raise UsageError(f"a mask has shape [..., gh, gw]; got {tuple(mask.shape)}")
    return mask.repeat_interleave(factor, dim=-2).repeat_interleave(factor, dim=-1)


def stage_masks(mask: torch.Tensor, strides=STAGE_STRIDES,
                patch: int = PATCH) -> dict[int, torch.Tensor]:
    """The mask at every ResNet stage, keyed by stride: 112, 56, 28, 14, 7 px at 224 px."""
    return {s: upsample_mask(mask, patch // s) for s in strides}


def pixel_mask(mask: torch.Tensor, patch: int = PATCH) -> torch.Tensor:
    """The mask at image resolution (each cell becomes a ``patch`` x ``patch`` square)."""
    return upsample_mask(mask, patch)


def target_fraction(mask: torch.Tensor) -> torch.Tensor:
    """Fraction of target cells per sample."""
    return mask.float().mean(dim=(-2, -1))


def target_statistics(
    draws: int,
    grid: int | tuple[int, int] = (7, 7),
    strategy: str = "mixed",
    batch_size: int = 128,
    generator: torch.Generator | None = None,
    official: bool = False,
    **options,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw ``draws`` masks in batches; return P(target) per cell and every target fraction."""
    counts, fractions, done = None, [], 0
    while done < draws:
        b = min(batch_size, draws - done)
        m = sample_masks(b, grid, strategy, generator, official, **options)
        counts = m.sum(0) if counts is None else counts + m.sum(0)
        fractions.append(target_fraction(m))
        done += b
    return counts.float() / draws, torch.cat(fractions)
