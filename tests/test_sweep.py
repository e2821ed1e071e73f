"""Chapter 09's sweep: the grid is one factor at a time, every point's configuration is the
run it names, the paper's numbers are found for each, and a stopped sweep resumes."""

import json
import random

import pytest

from jepa_lite import cli
from jepa_lite.course import report, sweep, viz
from jepa_lite.course.profiles import PROFILES


def _random_axes(rng: random.Random) -> dict:
    pool = {"predictor_layers": list(range(1, 9)), "kernel_size": [1, 3, 5, 7, 9, 11],
            "depthwise_separable": [True, False],
            "strategy": ["mixed", "multiblock", "random"]}
    factors = rng.sample(list(pool), rng.randint(1, 4))
    return {f: rng.sample(pool[f], rng.randint(1, len(pool[f]))) for f in factors}


def test_points_change_one_factor_from_the_default():
    rng = random.Random(0)
    for _ in range(200):
        axes = _random_axes(rng)
        grid = sweep.points(axes)
        assert grid[0].factor is None and grid[0].settings == sweep.DEFAULT
        assert len({p.name for p in grid}) == len(grid)  # one folder per run
        expected = 1 + sum(len(set(v) - {sweep.DEFAULT[f]}) for f, v in axes.items())
        assert len(grid) == expected
        for p in grid[1:]:
            changed = {k for k, v in p.settings.items() if v != sweep.DEFAULT[k]}
            assert changed == {p.factor}


@pytest.mark.parametrize("point", sweep.points(sweep.PAPER_GRID), ids=lambda p: p.name)
def test_each_point_is_its_run(point):
    """A point's configuration is the default run with its one factor changed."""
    base = PROFILES["smoke"].config(many_runs=True)
    cfg = point.config(base)
    assert {k: getattr(cfg.method, k) for k in sweep.DEFAULT} == point.settings
    assert cfg == base.with_changes(**point.settings)


def test_every_paper_grid_point_has_the_papers_numbers():
    settings = {r["setting"] for r in report.paper_results() if r["table"] == "ablation"}
    grid = sweep.points(sweep.PAPER_GRID)
    for p in grid[1:]:
        assert p.paper_setting() in settings, p
    for factor in sweep.DEFAULT:
        assert grid[0].paper_setting(factor) in settings
    assert PROFILES["full"].ablations == sweep.PAPER_GRID


@pytest.mark.parametrize("axes, words", [
    ({"depth": [1]}, "unknown ablation factor 'depth'"),
    ({"kernel_size": [4]}, "kernel_size=4 is not an odd"),
    ({"strategy": ["blocks"]}, "strategy='blocks' is not one of"),
    ({"predictor_layers": []}, "has no values"),
    ({"depthwise_separable": ["no"]}, "true or false"),
])
def test_bad_axes_are_named(axes, words):
    with pytest.raises(ValueError, match=words):
        sweep.points(axes)


def test_parse_axis_types_the_values():
    assert sweep.parse_axis("kernel_size", ["3", "5"]) == ("kernel_size", [3, 5])
    assert sweep.parse_axis("depthwise_separable", ["on", "false"])[1] == [True, False]
    assert sweep.parse_axis("strategy", ["random"])[1] == ["random"]
    with pytest.raises(ValueError, match="whole numbers, not 'three'"):
        sweep.parse_axis("predictor_layers", ["three"])


class FakeRuns:
    """compare.run_method without training: a result per configuration, a stop at call
    ``stop``."""

    def __init__(self, stop=None):
        self.calls, self.stop = [], stop

    def __call__(self, cfg, run_dir, *args, **kwargs):
        if self.stop is not None and len(self.calls) == self.stop:
            raise KeyboardInterrupt
        self.calls.append(run_dir.name)
        acc = (hash(json.dumps(cfg.to_dict())) % 1000) / 1000
        return {"knn_top1": acc, "linear_top1": 1 - acc, "linear_honest_top1": acc,
                "history": [{"seconds": 1.5, "loss": 0.3}], "checkpoint": "x"}


def test_a_stopped_sweep_resumes_where_it_stopped(tmp_path):
    grid = sweep.points(sweep.PAPER_GRID)
    smoke = PROFILES["smoke"].config(many_runs=True)
    where = (tmp_path / "data", "cpu", 2, 5)
    for stop in random.Random(1).sample(range(len(grid)), 4):
        out = tmp_path / f"stop{stop}"
        with pytest.raises(KeyboardInterrupt):
            sweep.run(grid, smoke, out, *where, run_method=FakeRuns(stop=stop))
        assert list(sweep.load(out)) == [p.name for p in grid[:stop]]  # nothing lost
        second = FakeRuns()
        results = sweep.run(grid, smoke, out, *where, run_method=second)
        assert second.calls == [p.name for p in grid[stop:]]  # only what was left
        assert list(results) == [p.name for p in grid]
        fresh = FakeRuns()
        assert sweep.run(grid, smoke, out, *where, run_method=fresh) == results
        assert not fresh.calls
    # a point whose configuration changed (another recipe) is run again
    again = FakeRuns()
    sweep.run(grid, PROFILES["demo"].config(many_runs=True), tmp_path / f"stop{stop}", *where,
              run_method=again)
    assert again.calls == [p.name for p in grid]


def test_table_puts_the_default_in_every_factor_and_the_papers_numbers_beside(tmp_path):
    axes = {"strategy": ["random", "mixed", "multiblock"], "predictor_layers": [6, 1]}
    grid = sweep.points(axes)
    results = sweep.run(grid, PROFILES["smoke"].config(), tmp_path, tmp_path, "cpu", 2, 5,
                        run_method=FakeRuns())
    paper = report.paper_results()
    rows = sweep.table(grid, results, paper)
    assert [(r["factor"], r["value"]) for r in rows] == [
        ("masking", "mixed (default)"), ("masking", "multiblock"), ("masking", "random"),
        ("predictor depth", "1"), ("predictor depth", "3 (default)"),
        ("predictor depth", "6")]
    by = {(r["factor"], r["value"]): r for r in rows}
    assert by["masking", "random"]["authors_linear_top1"] == 57.64
    assert by["masking", "random"]["authors_knn_top1"] == 36.64
    assert by["predictor depth", "6"]["authors_knn_top1"] is None  # their runs give none
    assert by["predictor depth", "1"]["linear_top1"] == \
        100 * results["predictor_layers-1"]["linear_top1"]
    fig = viz.fig_sweep(rows, "fake")
    for ax in fig.axes:
        assert all(line.get_linestyle() == "None" for line in ax.get_lines())  # not joined
        assert ax.get_ylim() == (0, 100)
    assert len(fig.axes[0].patches) == 2 * 3 and len(fig.axes[1].patches) == 2 * 3


def test_cli_sweep_refuses_a_bad_axis_before_running(tmp_path, capsys):
    assert cli.main(["sweep", "--axis", "kernel_size", "4", "--out", str(tmp_path)]) == 2
    assert "kernel_size=4 is not an odd" in capsys.readouterr().err
    assert cli.main(["sweep", "--axis", "width", "2", "--out", str(tmp_path)]) == 2
    assert "unknown ablation factor 'width'" in capsys.readouterr().err
    assert not (tmp_path / "09_ablations").exists()


def test_every_profile_has_a_valid_grid():
    for p in PROFILES.values():
        grid = sweep.points(p.ablations)
        assert len(grid) >= 2 and grid[0].factor is None  # the default and another point
        assert len({pt.name for pt in grid}) == len(grid)
        json.dumps([pt.settings for pt in grid])
