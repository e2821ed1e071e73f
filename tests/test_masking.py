"""Properties of the masks over many random draws (chapter 01)."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from jepa_lite import masking
from jepa_lite.masking import sample_masks

grids = st.tuples(st.integers(2, 10), st.integers(2, 10))
seeds = st.integers(0, 2**31 - 1)
strategy_names = st.sampled_from(masking.STRATEGIES)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@settings(max_examples=150, deadline=None)
@given(grid=grids, batch=st.integers(1, 33), strategy=strategy_names, seed=seeds,
       official=st.booleans())
def test_shape_dtype_and_context_bounds(grid, batch, strategy, seed, official):
    m = sample_masks(batch, grid, strategy, gen(seed), official)
    assert m.shape == (batch, *grid) and m.dtype == torch.bool
    n = grid[0] * grid[1]
    targets = m.sum((1, 2))
    assert (targets >= 1).all(), "every sample has at least one target cell"
    assert (n - targets >= masking.default_min_context(n)).all(), "min_context violated"


@settings(max_examples=100, deadline=None)
@given(grid=st.tuples(st.integers(3, 9), st.integers(3, 9)), batch=st.integers(1, 16),
       seed=seeds, min_context=st.integers(0, 8), num_blocks=st.integers(1, 6),
       scale=st.tuples(st.floats(0.05, 0.6), st.floats(0.0, 0.3)))
def test_min_context_holds_for_any_options(grid, batch, seed, min_context, num_blocks, scale):
    lo, hi = scale[0], min(1.0, scale[0] + scale[1])
    min_context = min(min_context, grid[0] * grid[1] - 1)
    m = sample_masks(batch, grid, "multiblock", gen(seed), num_blocks=num_blocks,
                     block_scale=(lo, hi), min_context=min_context)
    assert ((~m).sum((1, 2)) >= min_context).all()
    assert (m.sum((1, 2)) >= 1).all()


@settings(max_examples=60, deadline=None)
@given(batch=st.integers(1, 32), seed=seeds, official=st.booleans())
def test_multiblock_is_the_union_of_same_size_blocks(batch, seed, official):
    """Size drawn once per batch, positions per sample, target = union of the 4 blocks."""
    m = sample_masks(batch, (7, 7), "multiblock", gen(seed), official)
    g = gen(seed)
    size = masking.block_size((7, 7), (0.15, 0.2), (0.75, 1.5), g, official)
    blocks = masking.draw_blocks(batch, (7, 7), size, 4, g, official)
    assert torch.equal(m, blocks.any(1))
    h, w = size
    for k in range(4):  # every block is an h x w rectangle
        b = blocks[:, k]
        assert (b.sum((1, 2)) == h * w).all()
        assert (b.any(2).sum(1) == h).all() and (b.any(1).sum(1) == w).all()
    context = ~m
    assert torch.equal(context, ~blocks.any(1)), "context = complement of the union"


@settings(max_examples=50, deadline=None)
@given(grid=grids, strategy=strategy_names, seed=seeds, official=st.booleans())
def test_same_generator_seed_same_masks(grid, strategy, seed, official):
    a = sample_masks(8, grid, strategy, gen(seed), official)
    b = sample_masks(8, grid, strategy, gen(seed), official)
    assert torch.equal(a, b)


def test_different_seeds_differ():
    a = sample_masks(64, generator=gen(1))
    b = sample_masks(64, generator=gen(2))
    assert not torch.equal(a, b)


@pytest.mark.parametrize("grid", [(7, 7), (3, 5), (4, 4), (2, 2)])
@pytest.mark.parametrize("strategy", masking.STRATEGIES)
def test_every_cell_reachable_by_default(grid, strategy):
    p, _ = masking.target_statistics(4000, grid, strategy, generator=gen(0))
    assert (p > 0).all(), f"unreachable cells:\n{p}"


@pytest.mark.parametrize("grid", [(7, 7), (3, 3), (5, 8), (10, 6)])
def test_official_multiblock_never_masks_last_row_or_column(grid):
    p, _ = masking.target_statistics(4000, grid, "multiblock", generator=gen(0), official=True)
    assert p[-1].max() == 0 and p[:, -1].max() == 0
    assert (p[:-1, :-1].sum() > 0)


def test_mean_target_fraction_in_paper_range():
    for official in (False, True):
        for strategy in ("mixed", "multiblock"):
            _, f = masking.target_statistics(20_000, (7, 7), strategy, generator=gen(3),
                                             official=official)
            assert 0.35 < f.mean() < 0.55, (strategy, official, f.mean())
    _, f = masking.target_statistics(20_000, (7, 7), "multiblock", generator=gen(4),
                                     official=True)
    assert abs(f.mean().item() - 0.44) < 0.02  # the spec's ~0.44 for the official masks


@settings(max_examples=30, deadline=None)
@given(batch=st.integers(1, 40), seed=seeds)
def test_random_masks_hide_29_of_49(batch, seed):
    m = sample_masks(batch, (7, 7), "random", gen(seed))
    assert (m.sum((1, 2)) == 29).all()


def test_mixed_uses_both_strategies_at_about_three_to_one():
    g, random_batches, n = gen(5), 0, 2000
    for _ in range(n):
        m = sample_masks(4, (7, 7), "mixed", g)
        # random masks have exactly 29 targets in every sample; multi-block almost never do
        random_batches += bool((m.sum((1, 2)) == 29).all())
    assert abs(random_batches / n - 0.25) < 0.04


def test_official_scale_and_aspect_share_one_random_number():
    g_off, g_ref = gen(11), gen(11)
    shapes_off, shapes_fix = set(), set()
    for _ in range(3000):
        r = torch.rand(1, generator=g_ref).item()
        area = int(49 * (0.15 + 0.05 * r))
        ar = 0.75 + 0.75 * r
        expected = (round(math.sqrt(area * ar)), round(math.sqrt(area / ar)))
        got = masking.block_size((7, 7), (0.15, 0.2), (0.75, 1.5), g_off, official=True)
        assert got == expected
        shapes_off.add(got)
    g = gen(12)
    for _ in range(3000):
        shapes_fix.add(masking.block_size((7, 7), (0.15, 0.2), (0.75, 1.5), g))
    assert shapes_off < shapes_fix  # independent draws reach shapes the official code cannot


@settings(max_examples=40, deadline=None)
@given(grid=grids, seed=seeds)
def test_stage_masks_repeat_the_grid(grid, seed):
    m = sample_masks(3, grid, generator=gen(seed))
    stages = masking.stage_masks(m)
    assert list(stages) == [2, 4, 8, 16, 32]
    for stride, sm in stages.items():
        f = masking.PATCH // stride
        assert sm.shape == (3, grid[0] * f, grid[1] * f)
        assert torch.equal(sm[:, ::f, ::f], m)  # every cell becomes an f x f square
        assert torch.equal(sm.view(3, grid[0], f, grid[1], f).all(4).all(2), m)
    assert masking.pixel_mask(m).shape == (3, grid[0] * 32, grid[1] * 32)


def test_stage_resolutions_at_224():
    m = sample_masks(1, masking.grid_size(224))
    assert [s.shape[-1] for s in masking.stage_masks(m).values()] == [112, 56, 28, 14, 7]


@pytest.mark.parametrize("size,grid", [(224, (7, 7)), (64, (2, 2)), ((96, 160), (3, 5))])
def test_grid_size(size, grid):
    assert masking.grid_size(size) == grid


@pytest.mark.parametrize("size", [250, 200, 32, 0, -64])
def test_bad_image_size_names_the_fix(size):
    with pytest.raises(ValueError, match=rf"image size {size} is not a multiple of 32"):
        masking.grid_size(size)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"min_context": 49}, "min_context=49 is larger than the 7x7 grid allows"),
        ({"min_context": 60, "strategy": "random"}, "use at most 48"),
        ({"min_context": 25, "strategy": "random"}, "keeps 20 of 49 cells"),
        ({"grid": (1, 7)}, "grid 1x7 is too small"),
        ({"strategy": "blocks"}, "unknown masking strategy 'blocks'"),
        ({"block_scale": (0.3, 0.2)}, "block_scale"),
        ({"aspect_ratio": (0, 1)}, "aspect_ratio"),
        ({"num_blocks": 0}, "--num-blocks 0: masking.num_blocks must be at least 1"),
        ({"mask_ratio": 0.95, "strategy": "random"}, "mask_ratio=0.95 keeps 2 of 49"),
        ({"mask_ratio": 1.5}, "--mask-ratio 1.5: masking.mask_ratio must be at most 1"),
        ({"batch_size": 0}, "batch_size=0"),
    ],
)
def test_impossible_options_are_clear_errors(kwargs, match):
    args = {"batch_size": 4, "grid": (7, 7), "strategy": "mixed", **kwargs}
    with pytest.raises(ValueError, match=match):
        sample_masks(args.pop("batch_size"), args.pop("grid"), args.pop("strategy"),
                     generator=gen(0), **args)


@pytest.mark.parametrize("seed", range(12))
def test_mixed_rejects_options_impossible_for_either_branch(seed):
    """Whichever branch a seed draws, an option that breaks one branch is an error."""
    with pytest.raises(ValueError, match="random masking needs between min_context=30"):
        sample_masks(4, strategy="mixed", min_context=30, generator=gen(seed))
    m = sample_masks(4, strategy="multiblock", min_context=30, generator=gen(seed))
    assert ((~m).sum((1, 2)) >= 30).all()
    m = sample_masks(4, strategy="mixed", min_context=30, multiblock_prob=1.0, generator=gen(seed))
    assert ((~m).sum((1, 2)) >= 30).all()


@pytest.mark.parametrize("kwargs,error,match", [
    ({"batch_size": 2.5}, ValueError, "batch_size=2.5 must be an int"),
    ({"generator": 3}, TypeError, "generator must be a torch.Generator"),
    ({"grid": (7, 7, 7)}, TypeError, "grid must be an int or a pair of ints"),
    ({"grid": (2.7, 3.9)}, TypeError, "grid must be an int or a pair of ints"),
    ({"min_context": -1}, ValueError, "--min-context -1: masking.min_context must be at least 0"),
])
def test_wrong_types_are_named(kwargs, error, match):
    args = {"batch_size": 4, **kwargs}
    with pytest.raises(error, match=match):
        sample_masks(**args)


def test_stage_masks_needs_a_grid():
    with pytest.raises(ValueError, match=r"\[\.\.\., gh, gw\]"):
        masking.stage_masks(torch.zeros(5, dtype=torch.bool))


def test_unknown_option_is_named():
    with pytest.raises(TypeError, match="num_block"):
        sample_masks(2, num_block=3)


def test_global_rng_used_without_generator():
    torch.manual_seed(0)
    a = sample_masks(4)
    torch.manual_seed(0)
    assert torch.equal(a, sample_masks(4))


@pytest.mark.parametrize("grid", [(2, 2), (3, 3), (3, 5), (6, 6), (7, 7), (8, 6), (14, 14)])
@pytest.mark.parametrize("official", [False, True])
def test_block_sizes_are_a_distribution_of_possible_blocks(grid, official):
    sizes = masking.block_sizes(grid, official=official, draws=500, seed=sum(grid))
    assert sum(sizes.values()) == pytest.approx(1.0)
    assert all(1 <= h <= grid[0] - 1 and 1 <= w <= grid[1] - 1 for h, w in sizes)
    assert list(sizes.values()) == sorted(sizes.values(), reverse=True)
    g = torch.Generator().manual_seed(sum(grid))  # the same draws as block_size makes
    first = masking.block_size(grid, (0.15, 0.2), (0.75, 1.5), g, official)
    assert first in sizes
    single = set(sizes) == {(1, 1)}
    assert single == (grid[0] * grid[1] * 0.2 < 2)  # a block of < 2 cells' area is one cell


@pytest.mark.parametrize("size, patch, grid, single", [(64, 32, 2, True), (96, 32, 3, True),
                                                       (224, 32, 7, False),
                                                       (112, 16, 7, False)])
def test_describe_geometry_names_the_grid_and_single_cell_blocks(size, patch, grid, single):
    line = masking.describe_geometry(size, patch)
    assert line.startswith(f"{size} px in {patch} px patches = a {grid}x{grid} grid")
    assert ("every block is a single cell" in line) == single
