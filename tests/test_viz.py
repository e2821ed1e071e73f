"""Figures and the masking explorer, driven without a browser."""

import html
import random
import re
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import torch

from jepa_lite import analysis, masking, viz
from jepa_lite.predictor import ConvPredictor


@pytest.fixture(scope="module")
def image():
    return viz.load_image("grace_hopper", 224)


@pytest.mark.parametrize("name", viz.sample_images())
@pytest.mark.parametrize("size", [64, 224])
def test_load_image(name, size):
    img = viz.load_image(name, size)
    assert img.size == (size, size) and img.mode == "RGB"


def test_load_image_errors():
    with pytest.raises(ValueError, match="unknown image 'cat'"):
        viz.load_image("cat")
    with pytest.raises(ValueError, match="not a multiple of 32"):
        viz.load_image("grace_hopper", 100)


def test_figures(image):
    g = torch.Generator().manual_seed(0)
    blocks = masking.draw_blocks(1, (7, 7), (2, 3), 4, g)[0]
    assert len(viz.fig_blocks(image, blocks).axes) == 6
    masks = {s: masking.sample_masks(3, (7, 7), s, g) for s in masking.STRATEGIES}
    assert len(viz.fig_strategies(image, masks).axes) == 9
    assert len(viz.fig_stages(image, masks["mixed"][0]).axes) == 6
    p, f = masking.target_statistics(200, (7, 7), generator=g)
    assert len(viz.fig_heatmaps({"a": p, "b": p}).axes) == 3  # two panels + colour bar
    assert len(viz.fig_fraction_hist({"a": f}, (7, 7)).axes) == 1
    assert len(viz.fig_fraction_hist({"a": f, "b": f, "c": f}, (7, 7)).axes) == 3  # apart
    assert len(viz.fig_block_shapes({"a": [(2, 3), (3, 2)]}, (7, 7)).axes) == 1
    assert len(viz.fig_grid(image, 224).axes) == 1
    assert len(viz.pipeline_figure().axes) == 1
    png = viz.fig_to_png(viz.render_masks(image, masks["random"]))
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_draw_mask_tints_only_targets(image):
    mask = torch.zeros(7, 7, dtype=torch.bool)
    mask[0, 0] = True
    fig = matplotlib.figure.Figure()
    ax = fig.subplots()
    viz.draw_mask(ax, image, mask)
    shown = ax.images[0].get_array()
    original = torch.tensor(np.asarray(image), dtype=torch.float32) / 255
    shown = torch.as_tensor(shown, dtype=torch.float32)
    assert not torch.allclose(shown[:32, :32], original[:32, :32])
    assert torch.allclose(shown[32:, 32:], original[32:, 32:], atol=1e-6)


# --------------------------------------------------------------------------- the explorer
@pytest.fixture
def explorer():
    return viz.MaskExplorer(image_size=224, samples=4)


@pytest.fixture
def mask_explorer(monkeypatch):
    """The explorer with its picture reduced to the mask's bytes: for the tests of masks and
    messages over many redraws, where drawing the figure is most of the time."""
    monkeypatch.setattr(viz, "render_masks", lambda image, masks: masks)
    monkeypatch.setattr(viz, "fig_to_png", lambda masks: masks.numpy().tobytes())
    return viz.MaskExplorer(image_size=224, samples=4)


def test_explorer_renders_on_creation(explorer):
    assert explorer.png[:4] == b"\x89PNG" and explorer.mask.shape == (4, 7, 7)
    assert explorer.error is None and "mean target fraction" in explorer.status.value


def test_explorer_seed_control_redraws(explorer):
    before_png, before_mask = explorer.png, explorer.mask
    explorer.controls["seed"].value = 17
    expected = masking.sample_masks(4, (7, 7), "mixed", torch.Generator().manual_seed(17),
                                    **explorer.options())
    assert torch.equal(explorer.mask, expected)
    assert not torch.equal(explorer.mask, before_mask) and explorer.png != before_png


def test_explorer_one_block_gives_rectangles(mask_explorer):
    explorer = mask_explorer
    c = explorer.controls
    c["strategy"].value = "multiblock"
    c["num_blocks"].value = 1
    for seed in range(10):
        c["seed"].value = seed
        for m in explorer.mask:
            rows, cols = m.any(1).sum(), m.any(0).sum()
            assert m.sum() == rows * cols  # a single filled rectangle


def test_explorer_scale_and_aspect_controls(explorer):
    c = explorer.controls
    c["strategy"].value = "multiblock"
    c["num_blocks"].value = 1
    c["block_scale"].value = (0.5, 0.55)
    big = explorer.mask.sum((1, 2)).float().mean()
    c["block_scale"].value = (0.05, 0.06)
    small = explorer.mask.sum((1, 2)).float().mean()
    assert big > 3 * small
    c["aspect_ratio"].value = (3.0, 3.5)  # tall blocks
    assert (explorer.mask.any(2).sum(1) >= explorer.mask.any(1).sum(1)).all()


def test_explorer_official_checkbox_shows_the_edge_quirk(mask_explorer):
    explorer = mask_explorer
    c = explorer.controls
    c["strategy"].value = "multiblock"
    c["official"].value = True
    hits = 0
    for seed in range(40):
        c["seed"].value = seed
        hits += int(explorer.mask[:, -1].sum() + explorer.mask[:, :, -1].sum())
    assert hits == 0
    c["official"].value = False
    for seed in range(40):
        c["seed"].value = seed
        hits += int(explorer.mask[:, -1].sum() + explorer.mask[:, :, -1].sum())
    assert hits > 0


def test_explorer_reports_impossible_options_and_keeps_last_picture(explorer):
    png = explorer.png
    assert explorer.controls["min_context"].max == 48  # one cell must stay a target
    explorer.controls["min_context"].value = 30  # random masking keeps only 20 context cells
    assert explorer.error and "'min context' = 30" in explorer.error
    assert "'min context' = 30" in html.unescape(explorer.status.value)
    assert "change 'mask ratio (random)' or 'min context'" in explorer.error
    assert explorer.png == png  # the last good picture stays
    for seed in range(5):  # whichever branch of "mixed" a seed draws: always reported
        explorer.controls["seed"].value = seed
        assert explorer.error
    explorer.controls["strategy"].value = "multiblock"
    assert explorer.error is None and explorer.png != png
    explorer.controls["min_context"].value = 5
    assert explorer.error is None


def test_explorer_image_control(explorer):
    png = explorer.png
    explorer.controls["image"].value = "generated:star"
    assert explorer.png != png


def test_hole_filling_figure_has_a_bar_per_encoder_and_stage():
    g = torch.Generator().manual_seed(0)
    m = masking.sample_masks(2, (3, 3), generator=g)
    filled = {"dense, zero-filled": {"conv1": 0.1, "layer4": 0.5}, "sparse": {"conv1": 0.0,
                                                                              "layer4": 0.0}}
    err = {k: torch.rand(2, 3, 3, generator=g) for k in filled}
    from jepa_lite import analysis

    d = analysis.cell_distance(m)
    fig = viz.fig_hole_filling(filled, err, d, ~m)
    left, right = fig.axes
    assert len(left.patches) == 4  # 2 encoders x 2 stages
    assert len(right.patches) == 2 * len({int(v) for v in d[~m].tolist()})
    assert right.get_xlabel().startswith("visible cell's distance")


@pytest.mark.parametrize("n_rows", [16, 128, 1000])
def test_training_curves_start_at_zero_and_draw_the_collapse_bounds(n_rows):
    rows = [{"epoch": e, "loss": 0.5 - 0.01 * e, "target_std": 0.03 + 0.0001 * e,
             "effective_rank": min(10 + e, n_rows - 1), "diagnostic_rows": n_rows}
            for e in range(1, 5)]
    fig = viz.fig_training(rows, channels=512)
    loss, std, rank = fig.axes
    assert all(ax.get_ylim()[0] <= 0 for ax in fig.axes)  # noise is not blown up
    refs = {round(line.get_ydata()[0], 4) for line in std.get_lines()[1:]}
    assert refs == {0.0, round(512 ** -0.5, 4)}
    cap = min(n_rows - 1, 512)  # the rank N rows can reach, not the channel count
    assert {line.get_ydata()[0] for line in rank.get_lines()[1:]} == {1, cap}
    assert rank.get_ylim()[1] >= cap and std.get_ylim()[1] >= 512 ** -0.5  # bounds in view
    assert f"{n_rows} images" in rank.get_ylabel()


def test_runs_of_several_methods_share_one_rank_ceiling_only_when_their_rows_agree():
    run = [{"epoch": 1, "loss": 1.0, "target_std": 0.03, "effective_rank": 9.0,
            "diagnostic_rows": 16}]
    fig = viz.fig_runs({"a": run, "b": run})
    assert "16 images" in fig.axes[2].get_ylabel()
    assert any(t.get_text() == "highest possible (15)" for t in fig.axes[2].texts)
    other = [{**run[0], "diagnostic_rows": 32}]
    fig = viz.fig_runs({"a": run, "b": other})
    assert "images" not in fig.axes[2].get_ylabel() and not fig.axes[2].texts


def test_confusion_matrix_is_titled_and_row_normalised():
    pred, labels = torch.tensor([0, 1, 1, 1]), torch.tensor([0, 0, 1, 1])
    fig = viz.fig_confusion(pred, labels, ["a", "b"])
    ax = fig.axes[0]
    assert "rows normalised" in ax.get_title() and ax.get_xlabel() == "predicted class"
    cm = ax.get_images()[0].get_array()
    assert np.allclose(cm.sum(1), 1) and np.allclose(cm[0], [0.5, 0.5])


def test_feature_map_axes_say_the_explained_variance():
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(60, 16, generator=g) * torch.linspace(3, 0.1, 16)
    fig = viz.fig_feature_map({"enc": (feats, torch.arange(60) % 3)}, ["a", "b", "c"])
    ax = fig.axes[0]
    import re

    shares = [int(re.search(r"\((\d+)% of the variance", t).group(1))
              for t in (ax.get_xlabel(), ax.get_ylabel())]
    assert shares[0] >= shares[1] > 0 and sum(shares) <= 100


def test_comparison_sets_runs_that_are_not_comparable_apart():
    paper = {"method": "SimCLR", "backbone": "ResNet-50", "source": "paper",
             "linear_top1": 76.2, "knn_top1": 67.26}
    ours = {"method": "CNN-JEPA", "backbone": "resnet10", "linear_top1": 30.0,
            "knn_top1": 25.0, "source": "ours (smoke, NOT comparable)"}
    fig = viz.fig_comparison([paper, ours])
    left, right = fig.axes
    assert "NOT comparable" in right.get_title() and len(right.patches) == 2
    assert len(left.patches) == 2 and all(p.get_hatch() == "//" for p in right.patches)
    assert len(viz.fig_comparison([paper, {**ours, "source": "ours"}]).axes) == 1


def test_comparison_draws_our_random_init_floor_and_each_panels_chance():
    paper = {"method": "SimCLR", "backbone": "ResNet-50", "source": "paper",
             "dataset": "ImageNet-100", "linear_top1": 76.2, "knn_top1": 67.26}
    ours = {"method": "CNN-JEPA", "backbone": "resnet10", "linear_top1": 30.0,
            "knn_top1": 25.0, "source": "ours (smoke, NOT comparable)",
            "dataset": "generated data"}
    fig = viz.fig_comparison([paper, ours], {"linear_top1": 0.2, "knn_top1": 0.15},
                             {"ImageNet-100": 100, "generated data": 10})
    left, right = fig.axes
    hlines = lambda ax: sorted(round(ln.get_ydata()[0], 6) for ln in ax.get_lines())  # noqa
    assert hlines(left) == [1.0]  # chance on ImageNet-100; no floor: the paper gives none
    assert hlines(right) == [10.0, 15.0, 20.0]  # chance 1/10, random init k-NN and linear


def test_small_figures_keep_their_information_visible(image):
    """Issue 23's figures: the random-masking histogram does not flatten the others (each
    panel its own share axis); the probe-curve legend sits outside the axes; the stage panels
    differ (positions per cell); spectra colour runs as fig_runs does, random init apart."""
    f_rand, f_block = torch.full((500,), 29 / 49), torch.rand(500) * 0.5
    fig = viz.fig_fraction_hist({"random": f_rand, "multi-block": f_block}, (7, 7))
    tops = [ax.get_ylim()[1] for ax in fig.axes]
    assert tops[0] > 0.9 and tops[1] < 0.5  # the multi-block panel is scaled to itself
    r = {"curve_val_top1": [0.3, 0.4], "curve_honest_holdout_top1": [0.3, 0.35],
         "num_classes": 10}
    ax = viz.fig_probe_curves({"a": r, "b": r}).axes[0]
    assert ax.get_legend().get_bbox_to_anchor().x0 > ax.get_window_extent().x1 - 1
    m = torch.zeros(7, 7, dtype=torch.bool)
    m[2:5, 2:5] = True
    stages = viz.fig_stages(image, m)
    pictures = [ax.get_images()[0].get_array().shape for ax in stages.axes[1:]]
    assert pictures == [(32, 32), (16, 16), (8, 8), (4, 4), (2, 2)]  # 2x2 cells each
    sp = {"eigenvalues": [1.0, 0.5], "effective_rank": 1.9, "std": 0.1, "channels": 2}
    spectra = viz.fig_spectra({"random init": sp, "A": sp, "B": sp}).axes[0].get_lines()
    runs = viz.fig_runs({"A": [{"epoch": 1, "loss": 1, "target_std": 0.1,
                                "effective_rank": 2}],
                         "B": [{"epoch": 1, "loss": 1, "target_std": 0.1,
                                "effective_rank": 2}]}).axes[0].get_lines()
    assert spectra[0].get_color() == "grey"
    assert [ln.get_color() for ln in spectra[1:]] == [ln.get_color() for ln in runs[:2]]


def test_ablation_is_bars_of_categories_not_a_line():
    from jepa_lite import report

    fig = viz.fig_ablation(report.paper_results(), "predictor depth", "depth")
    ax = fig.axes[0]
    assert not ax.get_lines() and len(ax.patches) == 6  # six depths, linear only
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2", "3", "4", "5", "6"]
    assert ax.get_ylim()[0] == 0


def test_red_means_target_in_every_mask_panel(image):
    """The context panel greys the targets out instead of tinting the context red."""
    g = torch.Generator().manual_seed(1)
    blocks = masking.draw_blocks(1, (7, 7), (2, 3), 4, g)[0]
    fig = viz.fig_blocks(image, blocks)
    union = blocks.any(0)
    r, c = torch.nonzero(union)[0].tolist()
    patch = 224 // 7
    for ax, tinted in ((fig.axes[-2], True), (fig.axes[-1], False)):  # union, context
        px = ax.get_images()[0].get_array()[r * patch + patch // 2, c * patch + patch // 2]
        redness = px[0] - (px[1] + px[2]) / 2
        assert (redness > 0.25) == tinted, (ax.get_title(), px)


def test_feature_norm_panels_share_one_scale_and_outline_targets():
    m = torch.zeros(3, 3, dtype=torch.bool)
    m[1, 1] = True
    a, b = torch.ones(4, 3, 3), torch.ones(4, 3, 3) * 2
    fig = viz.fig_feature_norms({"a": a, "b": b}, m)
    images = [ax.get_images()[0] for ax in fig.axes if ax.get_images()]
    assert len({im.get_clim() for im in images}) == 1  # one colour scale
    assert all(len(ax.patches) == 1 for ax in fig.axes if ax.get_images())
    # a small change on its own scale is drawn at full range, not as nothing
    tiny = torch.full((4, 3, 3), 0.001)
    fig = viz.fig_feature_norms({"a": a, "b": b, "change": tiny}, m, own_scale=("change",))
    clims = {ax.get_title(): ax.get_images()[0].get_clim() for ax in fig.axes if ax.get_images()}
    assert clims["a"] == clims["b"] and clims["a"][1] == pytest.approx(4.0)
    assert clims["change"][1] == pytest.approx(0.002)


def test_influence_rows_draw_each_predicted_cell_with_its_own_reach():
    grid = (7, 7)
    rows = {cell: {f"{n} layers": analysis.predictor_influence(ConvPredictor(4, n), grid, cell, 4)
                   for n in (3, 6)} for cell in ((3, 3), (0, 0))}
    fig = viz.fig_influence(rows)
    titles = [ax.get_title() for ax in fig.axes if ax.get_images()]
    assert titles == ["3 layers: 49 of 49 cells", "6 layers: 49 of 49 cells",
                      "3 layers: 16 of 49 cells", "6 layers: 49 of 49 cells"]
    stars = [ax.collections[0].get_offsets()[0].tolist() for ax in fig.axes if ax.get_images()]
    assert stars == [[3, 3], [3, 3], [0, 0], [0, 0]]


def test_probe_curves_use_the_whole_scale_with_chance_marked():
    r = {"curve_val_top1": [0.30, 0.32, 0.33], "curve_honest_holdout_top1": [0.3, 0.31, 0.31],
         "num_classes": 6}
    ax = viz.fig_probe_curves({"pretrained": r}).axes[0]
    assert ax.get_ylim() == (0, 1)
    assert any(abs(line.get_ydata()[0] - 1 / 6) < 1e-9 for line in ax.get_lines())


def test_scene_kinds_put_plain_and_busy_scenes_side_by_side():
    """One row per class; the busy half is visibly busier: its neighbouring pixels differ
    more than on the plain scenes' grey backgrounds."""
    fig = viz.fig_scene_kinds(("disc", "star"), per_kind=2, size=64, seed=1)
    axes = np.array(fig.axes).reshape(2, 4)
    assert [ax.get_ylabel() for ax in axes[:, 0]] == ["disc", "star"]
    bg = [np.median(np.abs(np.diff(ax.get_images()[0].get_array().astype(float).mean(-1),
                                   axis=1))) for ax in axes.ravel()]
    bg = np.array(bg).reshape(2, 4)  # the typical step between neighbouring pixels:
    assert bg[:, 2:].min() > bg[:, :2].max()  # textured backgrounds, nearly flat grey ones


def test_explorer_messages_name_only_its_own_controls(mask_explorer):
    """Over random impossible settings, a message never names an option the explorer has no
    control for (no raw option names), and every control it names exists."""
    from dataclasses import fields

    explorer = mask_explorer
    rng = random.Random(0)
    labels = {c.description for c in explorer.controls.values()}
    options = {f.name for f in fields(masking.MaskOptions)}
    c = explorer.controls
    seen = 0
    for _ in range(60):
        c["strategy"].value = rng.choice(["mixed", "random", "multiblock"])
        c["mask_ratio"].value = round(rng.uniform(0.05, 0.95), 2)
        c["min_context"].value = rng.randint(0, 48)
        c["seed"].value = rng.randint(0, 999)
        if explorer.error is None:
            continue
        seen += 1
        assert not any(re.search(rf"\\b{o}\\b", explorer.error) for o in options)
        named = set(re.findall(r"'([^']+)'", explorer.error))
        assert named and named <= labels, explorer.error
    assert seen >= 10


def test_explorer_mask_ratio_sets_the_random_target_fraction(explorer):
    c = explorer.controls
    c["strategy"].value = "random"
    c["min_context"].value = 1
    for ratio in (0.2, 0.5, 0.8):
        c["mask_ratio"].value = ratio
        assert explorer.error is None
        assert (explorer.mask.sum((1, 2)) == 49 - round(49 * (1 - ratio))).all()


@pytest.mark.parametrize("start,peak", [(0.99, 0.002), (0.996, 0.01), (0.9, 0.5)])
def test_schedule_titles_read_the_curves_they_draw(start, peak):
    from jepa_lite import schedules

    total, spe = 60, 10
    lr = [schedules.learning_rate(s, total, 10, peak) for s in range(total)]
    mom = {"per step": [schedules.ema_momentum_at(s, spe, 6, False, start) for s in range(total)]}
    a, b = viz.fig_schedules(lr, mom, spe).axes
    assert f"warm-up to {peak:.3g}" in a.get_title()
    assert max(a.get_lines()[0].get_ydata()) == pytest.approx(peak)
    drawn = b.get_lines()[0].get_ydata()
    assert drawn[0] == pytest.approx(start)
    assert f"cosine {start:.4g} -> {drawn[-1]:.4g}" in b.get_title()


def test_cell_agreement_figure_draws_one_line_per_model_over_the_distances():
    dist = torch.tensor([1, 1, 2, 2, 2, 3])
    fig = viz.fig_cell_agreement({"trained": {"cosine": torch.tensor([.9, .7, .5, .6, .4, .2]),
                                              "distance": dist},
                                  "random init": {"cosine": torch.zeros(6), "distance": dist}})
    ax = fig.axes[0]
    lines = [c.lines[0] for c in ax.containers]  # one error-bar line per model
    assert len(lines) == 2 and list(lines[0].get_ydata()) == pytest.approx([0.8, 0.5, 0.2])
    assert list(lines[0].get_xdata()) == [1, 2, 3]
    assert [t.get_text() for t in ax.texts] == ["2 cells", "3 cells", "1 cells"]
    assert "distance to the nearest context cell" in ax.get_xlabel()


def test_reach_over_a_masked_image_counts_the_context_it_can_use():
    grid = (7, 7)
    mask = torch.zeros(grid, dtype=torch.bool)
    mask[:3, :3] = True  # a 3x3 target block in the corner
    reach = {(0, 0): {"3 layers": analysis.predictor_influence(ConvPredictor(4, 3), grid,
                                                                (0, 0), 4)}}
    fig = viz.fig_influence(reach, torch.rand(3, 224, 224), mask)
    ax = fig.axes[0]
    assert "7 context cells within reach" in ax.get_title()  # 16 in reach, 9 of them hidden
    assert len(ax.patches) == 9


def literal_numbers_in_figure_text(source: str) -> list[tuple[int, str]]:
    """Decimal numbers written as literals into a title, axis label, text or legend label of
    ``source``: a number a figure states must come from the values it draws."""
    import ast

    number = re.compile(r"\d+\.\d+")
    found = []
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        texts = list(node.args[:1]) if node.func.attr in (
            "set_title", "suptitle", "set_xlabel", "set_ylabel", "text", "annotate") else []
        texts += [k.value for k in node.keywords if k.arg == "label"]
        for t in texts:
            parts = ([t.value] if isinstance(t, ast.Constant) and isinstance(t.value, str) else
                     [v.value for v in t.values if isinstance(v, ast.Constant)]
                     if isinstance(t, ast.JoinedStr) else [])
            found += [(node.lineno, p) for p in parts if number.search(p)]
    return found


def test_no_figure_writes_a_number_it_does_not_draw():
    assert literal_numbers_in_figure_text(
        'ax.set_title("EMA momentum: cosine 0.996 -> 1")\nax.plot(x, label=f"{a} 0.5 x")') == [
        (1, "EMA momentum: cosine 0.996 -> 1"), (2, " 0.5 x")]
    from jepa_lite import viz as module

    assert literal_numbers_in_figure_text(Path(module.__file__).read_text()) == []
