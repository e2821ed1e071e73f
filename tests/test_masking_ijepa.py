"""I-JEPA's multi-block masks (``jepa_lite.masking_ijepa``) over many draws: one target size
per micro-batch within its scale and aspect ratio, targets never in the context, equal
counts across the micro-batch, the official quirks, the same masks from the same seed."""

import math

import pytest
import torch

from jepa_lite.errors import UsageError
from jepa_lite.masking_ijepa import (
    BlockCollator,
    check_geometry,
    from_grid,
    multiblock,
    size_at,
    to_grid,
)

GRIDS = [(14, 14), (8, 8), (7, 10), (12, 9)]


def rectangle(index: torch.Tensor, w: int) -> tuple[int, int, int, int]:
    rows, cols = index // w, index % w
    return rows.min().item(), rows.max().item(), cols.min().item(), cols.max().item()


@pytest.mark.parametrize("grid", GRIDS)
def test_multiblock_masks_over_many_draws(grid):
    h, w = grid
    min_keep = 4
    for seed in range(40):
        g = torch.Generator().manual_seed(seed)
        context, targets = multiblock(6, grid, g, min_keep=min_keep)
        assert context.dtype == targets.dtype == torch.int64
        assert context.shape[0] == targets.shape[0] == 6 and targets.shape[1] == 4
        assert context.shape[1] > min_keep and targets.shape[2] > min_keep
        for c, ts in zip(context, targets):
            assert 0 <= c.min() and c.max() < h * w and len(set(c.tolist())) == len(c)
            assert torch.equal(c, c.sort().values)  # raster order
            for t in ts:
                assert not set(t.tolist()) & set(c.tolist())  # no target in the context
                top, bottom, left, right = rectangle(t, w)
                assert bottom < h - 1 and right < w - 1  # [code] corners in [0, H - h)
                assert torch.equal(t, t.sort().values)


def test_one_target_size_per_micro_batch_within_its_scale_and_aspect():
    """Before the cut to equal counts every target of a micro-batch is one h x w rectangle,
    its area the scale's share of the grid and its ratio the aspect's, from one number."""
    grid, n = (14, 14), 196
    for i in range(101):
        u = i / 100
        h, w = size_at(grid, (0.15, 0.2), (0.75, 1.5), u)
        keep = int(n * (0.15 + u * 0.05))
        assert abs(h * w - keep) <= h + w  # rounding of each side
        assert h / w == pytest.approx(0.75 + u * 0.75, abs=0.35)
    for seed in range(10):  # the uncut blocks of one micro-batch share their size
        g = torch.Generator().manual_seed(seed)
        _, targets = multiblock(1, grid, g, min_keep=0)
        sizes = {(rectangle(t, 14)[1] - rectangle(t, 14)[0] + 1,
                  rectangle(t, 14)[3] - rectangle(t, 14)[2] + 1) for t in targets[0]}
        assert len(sizes) == 1 and math.prod(sizes.pop()) == targets.shape[2]


def test_the_same_seed_draws_the_same_masks_and_another_does_not():
    a = BlockCollator((14, 14)).draw(8, 123)
    b = BlockCollator((14, 14)).draw(8, 123)
    c = BlockCollator((14, 14)).draw(8, 124)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not all(x.shape == y.shape and torch.equal(x, y) for x, y in zip(a, c))
    assert BlockCollator.names == ("context", "targets")


def test_a_grid_too_small_for_its_targets_is_refused():
    check_geometry((14, 14), (0.15, 0.2), (0.75, 1.5), 10)
    with pytest.raises(UsageError, match="8x8 token grid.*--min-keep 10.*below 9"):
        BlockCollator((8, 8))
    BlockCollator((8, 8), min_keep=4).draw(2, 0)


@pytest.mark.parametrize("seed", range(20))
def test_token_indices_and_maps_are_each_others_inverse(seed):
    g = torch.Generator().manual_seed(seed)
    grid = tuple(int(v) for v in torch.randint(2, 15, (2,), generator=g))
    context, targets = multiblock(3, grid, g, min_keep=0)
    maps = to_grid(targets, grid)  # [3, 4, H, W]
    assert maps.shape == (3, 4, *grid)
    assert torch.equal(maps.flatten(2).sum(-1), torch.full((3, 4), targets.shape[-1]))
    assert torch.equal(from_grid(to_grid(context, grid)), context.sort(1).values)
    with pytest.raises(ValueError, match="as many tokens"):
        from_grid(torch.tensor([[[True, False]], [[True, True]]]))
