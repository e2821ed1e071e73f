"""Figures and the masking explorer, driven without a browser."""

import html
import random
import re
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import torch

from jepa_lite import masking
from jepa_lite.course import analysis, viz
from jepa_lite.encoders.predictor import ConvPredictor


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
    monkeypatch.setattr(viz.explorer, "render_masks", lambda image, masks: masks)
    monkeypatch.setattr(viz.explorer, "fig_to_png", lambda masks: masks.numpy().tobytes())
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
    from jepa_lite.course import analysis

    d = analysis.cell_distance(m)
    fig = viz.fig_hole_filling(filled, err, d, ~m)
    left, right = fig.axes
    assert len(left.patches) == 4  # 2 encoders x 2 stages
    assert len(right.patches) == 2 * len({int(v) for v in d[~m].tolist()})
    assert right.get_xlabel().startswith("visible cell's distance")


@pytest.mark.parametrize("n_rows", [16, 128, 1000])
def test_training_curves_start_at_zero_and_draw_the_collapse_bounds(n_rows):
    """The std panel draws 0, where complete collapse is flagged and 1/sqrt(C); the rank
    panel the most N rows can span and where dimensional collapse is flagged; the rows are
    stated above the panels, the labels at a readable size."""
    from jepa_lite.eval.diagnostics import COMPLETE_STD_SHARE, DIMENSIONAL_RANK_SHARE

    rows = [{"epoch": e, "loss": 0.5 - 0.01 * e, "target_std": 0.03 + 0.0001 * e,
             "effective_rank": min(10 + e, n_rows - 1), "diagnostic_rows": n_rows}
            for e in range(1, 5)]
    fig = viz.fig_training(rows, channels=512)
    loss, std, rank = fig.axes
    assert all(ax.get_ylim()[0] == 0 for ax in fig.axes)  # noise is not blown up
    refs = {round(line.get_ydata()[0], 6) for line in std.get_lines()[1:]}
    assert refs == {0.0, round(512 ** -0.5, 6), round(COMPLETE_STD_SHARE * 512 ** -0.5, 6)}
    cap = min(n_rows - 1, 512)  # the rank N rows can reach, not the channel count
    assert {round(line.get_ydata()[0], 6) for line in rank.get_lines()[1:]} == {
        cap, round(DIMENSIONAL_RANK_SHARE * cap, 6)}
    assert rank.get_ylim()[1] >= cap and std.get_ylim()[1] >= 512 ** -0.5  # bounds in view
    assert f"the last {n_rows} training images" in fig._suptitle.get_text()
    assert "complete collapse" in std.get_title() and "dimensional" in rank.get_title()
    assert min(ax.yaxis.label.get_fontsize() for ax in fig.axes) >= 8


def test_runs_give_each_loss_its_own_axis_and_keep_the_legend_off_the_curves():
    run = [{"epoch": 1, "loss": 1.0, "target_std": 0.03, "effective_rank": 9.0,
            "diagnostic_rows": 16}, {"epoch": 2, "loss": 0.9, "target_std": 0.03,
                                     "effective_rank": 9.0, "diagnostic_rows": 16}]
    big = [{**r, "loss": 20 + r["loss"]} for r in run]
    fig = viz.fig_runs({"a": run, "b": big, "c": run})
    *losses, std, rank = fig.axes
    assert len(losses) == 3 and [len(ax.get_lines()) for ax in losses] == [1, 1, 1]
    assert losses[1].get_ylim()[0] > 15 > losses[0].get_ylim()[1]  # each its own scale
    assert [t.get_text() for t in rank.texts] == ["the most 16 rows can span (15)",
                                                  "dimensional collapse below (10% of that)"]
    assert len(fig.legends) == 1 and fig.legends[0]._loc_used_default is False
    other = [{**run[0], "diagnostic_rows": 32}]
    fig = viz.fig_runs({"a": run, "b": other})
    assert "differs" in fig._suptitle.get_text() and not fig.axes[-1].texts


def test_run_styles_keep_a_methods_colour_and_tell_runs_apart():
    a = viz.run_styles(["CNN-JEPA", "C-JEPA", "SimCLR", "BYOL", "VICReg"])
    b = viz.run_styles(["CNN-JEPA", "CNN-JEPA, no EMA", "CNN-JEPA, no predictor",
                        "CNN-JEPA, gradient through the target", "C-JEPA", "C-JEPA, no EMA"])
    assert a["CNN-JEPA"]["color"] == b["CNN-JEPA"]["color"]
    assert a["C-JEPA"]["color"] == b["C-JEPA"]["color"] != a["CNN-JEPA"]["color"]
    for styles in (a, b):
        assert len({st["color"] for st in styles.values()}) == len(styles)


def test_probe_bars_carry_two_standard_errors_and_the_floor_band():
    res = {"A": {"knn_top1": 0.5, "linear_top1": 0.6, "val_images": 400},
           "B": {"knn_top1": 0.3, "linear_top1": 0.2, "val_images": 400}}
    fig = viz.fig_probe_bars(res, {"knn_top1": 0.25, "linear_top1": 0.3}, "t")
    ax = fig.axes[0]
    caps = [c for c in ax.containers if hasattr(c, "has_yerr") and c.has_yerr]
    assert len(caps) == 2  # one error-bar set per probe
    seg = caps[0].lines[2][0].get_segments()[0]  # k-NN of A: 50 % +- 2 s.e. on 400 images
    assert abs(seg[1][1] - seg[0][1]) == pytest.approx(2 * 100 * viz.two_se(0.5, 400))
    assert len(ax.collections) >= 2 + 2  # the two floor bands
    assert "2 standard errors on 400 images" in ax.get_title()
    assert ax.get_legend().get_bbox_to_anchor().x0 > ax.get_window_extent().x1 - 1


def test_sweep_draws_the_floor_and_error_bars_and_names_the_authors_runs():
    rows = [{"factor": "masking", "value": "mixed (default)", "linear_top1": 50.0,
             "knn_top1": 40.0, "authors_linear_top1": 73.26, "authors_knn_top1": 56.26},
            {"factor": "masking", "value": "random", "linear_top1": 45.0, "knn_top1": 35.0,
             "authors_linear_top1": 57.64, "authors_knn_top1": None}]
    fig = viz.fig_sweep(rows, "ours", {"linear_top1": 0.3, "knn_top1": 0.25}, 400)
    ax = fig.axes[0]
    assert sorted(round(ln.get_ydata()[0], 3) for ln in ax.get_lines()
                  if ln.get_linestyle() == "--") == [25.0, 30.0]
    assert sum(getattr(c, "has_yerr", False) for c in ax.containers) == 2
    labels = ax.get_legend_handles_labels()[1]
    assert "the authors' runs, linear" in labels and not any("paper" in t for t in labels)
    assert "authors' W&B runs" in fig._suptitle.get_text()


def test_ablation_bars_sit_on_their_ticks_and_name_their_source():
    from jepa_lite.course import report

    for prefix, metrics in (("predictor depth", 1), ("masking", 2)):
        ax = viz.fig_ablation(report.paper_results(), prefix, prefix).axes[0]
        ticks = list(ax.get_xticks())
        centres = sorted(p.get_x() + p.get_width() / 2 for p in ax.patches)
        if metrics == 1:
            assert centres == pytest.approx(ticks)
        else:  # a pair around each tick
            assert [round((a + b) / 2, 6) for a, b in zip(centres[::2], centres[1::2])] == \
                pytest.approx(ticks)
        assert "WandbPlots.ipynb" in ax.get_title() and "authors" in ax.get_title()


def test_coinciding_blocks_are_named(image):
    b = torch.zeros(4, 7, 7, dtype=torch.bool)
    b[0, 1:4, 1:3] = b[2, 1:4, 1:3] = True
    b[1, 0:3, 4:7] = b[3, 4:6, 0:3] = True
    titles = [ax.get_title() for ax in viz.fig_blocks(image, b).axes]
    assert titles[2].startswith("block 3 = block 1") and titles[0] == "block 1"
    assert "3 distinct blocks" in titles[4]


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
                                "effective_rank": 2}]}).axes[2].get_lines()  # the std panel
    assert spectra[0].get_color() == viz.FLOOR
    assert [ln.get_color() for ln in spectra[1:]] == [ln.get_color() for ln in runs[:2]]


def test_ablation_is_bars_of_categories_not_a_line():
    from jepa_lite.course import report

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
    with_mean = {"trained": {"cosine": torch.tensor([.9, .7, .5, .6, .4, .2]), "distance": dist,
                             "mean_cosine": torch.full((6,), 0.8)}}
    ax = viz.fig_cell_agreement(with_mean).axes[0]
    assert [c.get_label() for c in ax.containers] == [
        "trained", "trained: always the mean target"]
    assert list(ax.containers[1].lines[0].get_ydata()) == pytest.approx([0.8] * 3)


def test_cell_agreement_map_colours_target_cells_and_greys_the_context():
    cos = torch.full((2, 4, 4), float("nan"))
    cos[0, :2, :2] = torch.tensor([[0.9, 0.1], [0.5, 0.3]])
    cos[1, 3, 3] = 0.7
    fig = viz.fig_cell_agreement_map(torch.rand(2, 3, 64, 64), {"trained": {"cosine_map": cos},
                                                                 "random init": {
                                                                     "cosine_map": cos * 0}})
    first = fig.axes[0]
    assert sorted(t.get_text() for t in first.texts) == ["0.10", "0.30", "0.50", "0.90"]
    assert len(first.patches) == 16  # every cell: four coloured targets, twelve grey
    assert len(fig.axes) == 2 * 2 + 1  # two models x two images, and the colour bar


def test_reach_on_two_grids_of_one_image():
    image = torch.rand(3, 224, 224)
    grids = {}
    for grid in ((4, 4), (7, 7)):
        mask = torch.zeros(grid, dtype=torch.bool)
        mask[1:3, 1:3] = True
        centre, corner = (grid[0] // 2, grid[1] // 2), (0, 0)
        grids[f"{grid[0]}x{grid[1]}"] = {"mask": mask, "reach": {
            label: (cell, analysis.predictor_influence(ConvPredictor(4, 3), grid, cell, 4))
            for label, cell in (("centre", centre), ("corner", corner))}}
    fig = viz.fig_reach_on_grids(image, grids)
    titles = [ax.get_title().split("\n")[0] for ax in fig.axes]
    assert titles == ["4x4: 16 of 16 cells", "7x7: 49 of 49 cells",
                      "4x4: 16 of 16 cells", "7x7: 16 of 49 cells"]  # rows: centre, corner


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
    from jepa_lite.course import viz

    for module in Path(viz.__file__).parent.glob("*.py"):
        assert literal_numbers_in_figure_text(module.read_text()) == [], module.name


def test_chapter_10s_figures_draw_what_they_are_given(image):
    from jepa_lite import masking_ijepa

    g = torch.Generator().manual_seed(0)
    cells = masking.sample_masks(1, (7, 7), "multiblock", g)[0]
    tokens = masking.upsample_mask(cells[None], 2)[0]
    fig = viz.fig_two_encoders(image, cells, tokens)
    assert len(fig.axes) == 7  # the image, the ViT's tokens, five stages
    assert f"{int((~tokens).sum())} of 196 tokens" in fig.axes[1].get_title()
    assert [ax.images[0].get_array().shape for ax in fig.axes[2:]] == [
        (112, 112), (56, 56), (28, 28), (14, 14), (7, 7)]
    context, targets = masking_ijepa.multiblock(1, (14, 14), g)
    fig = viz.fig_masks_side_by_side(image, masking_ijepa.to_grid(context, (14, 14))[0],
                                     masking_ijepa.to_grid(targets, (14, 14))[0],
                                     *(t[0] for t in masking.sample_masks(
                                         1, (7, 7), "multiblock", g, return_blocks=True)))
    assert len(fig.axes) == 4 + 3
    assert f"context: {context.shape[1]} tokens" in fig.axes[0].get_title()
    assert all(f"{targets.shape[-1]} tokens" in ax.get_title() for ax in fig.axes[1:5])
    rows = [{"kind": "ijepa", "arch": "vit_micro", "image_size": 64, "encoder_params_m": 0.1,
             "gflops_per_image": 0.02, "saved_mib_per_image": 0.2, "images_per_s": None},
            {"kind": "cnn-jepa", "arch": "resnet10", "image_size": 64, "encoder_params_m": 4.9,
             "gflops_per_image": 0.6, "saved_mib_per_image": 1.4, "images_per_s": 170.0}]
    fig = viz.fig_costs(rows)
    assert len(fig.axes) == 4
    texts = [t.get_text() for t in fig.axes[3].texts]
    assert texts == [" not measured", " 170"]  # a step not timed says so


def test_mask_shares_add_up_over_many_draws():
    for seed in range(3):
        shares = analysis.mask_shares((14, 14), (7, 7), draws=4, batch=8, seed=seed)
        i, c = shares["I-JEPA"], shares["CNN-JEPA"]
        assert c["context"] + c["target"] == pytest.approx(1)
        assert all(0 < v < 1 for v in (*i.values(), *c.values()))
        # context and targets are disjoint at 14x14 (no constraint relaxed), so the three
        # shares cover the grid once; one block is at most their union
        assert i["context"] + i["targets"] + i["neither"] == pytest.approx(1)
        assert 0.15 * 0.5 < i["one target block"] <= i["targets"]


def test_kept_tokens_are_the_shortest_list_of_the_micro_batch():
    """Every image's list is cut to the micro-batch's shortest: over a few draws, images in
    micro-batches of 64 keep fewer context tokens than images drawn alone; a target block
    stays within its scale of the 14x14 grid."""
    for seed in range(3):
        kept = analysis.kept_tokens_by_batch((14, 14), [1, 64], draws=8, seed=seed)
        assert kept[64]["context"] < kept[1]["context"] <= 196
        for b in (1, 64):
            assert 1 <= kept[b]["target block"] <= 0.2 * 196

