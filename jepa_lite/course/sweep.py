"""Chapter 09 — the authors' ablations as a sweep: one factor changed at a time.

The authors' ablation runs (their repository's W&B runs; the paper's text names only the
winner, IV-A) vary one setting of its default (a 3-layer depthwise-separable predictor with
3x3 kernels, mixed masking) at a time: predictor depth 1-6, kernel 3/5/7/9, standard convs,
and the masking strategy. :func:`points` turns such axes into runs (the default once),
:func:`run` trains and probes each in its own folder (``compare.run_method``: resumed where
it stopped, skipped when done) and records every finished point in ``sweep.json`` at once,
so a sweep that stops part-way goes on where it stopped.

    jepa-lite course --only 09 --profile demo          # the profile's grid
    jepa-lite sweep --profile demo --axis kernel_size 3 5 7 9   # a grid of your own
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from jepa_lite.checkpoint import differences
from jepa_lite.config import STRATEGIES, TrainConfig
from jepa_lite.course import compare
from jepa_lite.course.profiles import ABLATION_DEFAULT as DEFAULT
from jepa_lite.course.profiles import PAPER_GRID
from jepa_lite.errors import UsageError

LABELS = {"predictor_layers": "predictor depth", "kernel_size": "kernel size",
          "depthwise_separable": "depthwise-separable", "strategy": "masking"}


@dataclass(frozen=True)
class Point:
    """One run of a sweep: the default with ``factor`` set to ``value`` (or the default)."""

    factor: str | None
    value: object = None

    @property
    def settings(self) -> dict:
        return {**DEFAULT, **({self.factor: self.value} if self.factor else {})}

    @property
    def name(self) -> str:
        """Its run folder's name."""
        if self.factor is None:
            return "default"
        if isinstance(self.value, bool):
            return f"{self.factor}-{'on' if self.value else 'off'}"
        return f"{self.factor}-{self.value}"

    @property
    def label(self) -> str:
        if self.factor is None:
            return "default"
        return f"{LABELS[self.factor]} {self.shown}"

    @property
    def shown(self) -> str:
        if self.factor == "depthwise_separable":
            return "on" if self.value else "off (standard convs)"
        return str(self.value)

    def config(self, base: TrainConfig) -> TrainConfig:
        """The run of this point: ``base`` (the default) with its factor changed."""
        return base.with_changes(**({self.factor: self.value} if self.factor else {}))

    def paper_setting(self, factor: str | None = None) -> str:
        """The ``setting`` of this point in ``data/paper_results.csv``; the default point
        belongs to every factor's row set, so ``factor`` says which one."""
        factor, value = (self.factor, self.value) if self.factor else (
            factor, DEFAULT.get(factor))
        if factor == "predictor_layers":
            return f"predictor depth {value}"
        if factor == "kernel_size":
            return f"kernel {value}"
        if factor == "depthwise_separable":
            return "standard convs (not depthwise-separable)" if not value else "kernel 3"
        if factor == "strategy":
            return f"masking {value.replace('multiblock', 'multi-block')}"
        return ""


def check_axes(axes: dict) -> dict:
    """Axes as ``{factor: [values]}``; an error naming the factor or value that is wrong."""
    checked = {}
    for factor, values in axes.items():
        if factor not in DEFAULT:
            raise UsageError(f"unknown ablation factor {factor!r}; the factors are "
                             f"{', '.join(DEFAULT)}")
        values = list(values) if isinstance(values, (list, tuple)) else [values]
        if not values:
            raise UsageError(f"ablation factor {factor} has no values: give at least one")
        for v in values:
            ok = {"predictor_layers": lambda v: isinstance(v, int) and v >= 1,
                  "kernel_size": lambda v: isinstance(v, int) and v >= 1 and v % 2 == 1,
                  "depthwise_separable": lambda v: isinstance(v, bool),
                  "strategy": lambda v: v in STRATEGIES}[factor](v)
            if not ok:
                need = {"predictor_layers": "a whole number of layers >= 1",
                        "kernel_size": "an odd whole number (3, 5, 7, 9)",
                        "depthwise_separable": "true or false",
                        "strategy": f"one of {', '.join(STRATEGIES)}"}[factor]
                raise UsageError(f"ablation {factor}={v!r} is not {need}")
        checked[factor] = values
    return checked


def points(axes: dict) -> list[Point]:
    """The runs of a one-factor-at-a-time sweep: the default first (once, however many axes
    contain it), then every other value of every axis, in the order given."""
    axes = check_axes(axes)
    out = [Point(None)]
    for factor, values in axes.items():
        out += [Point(factor, v) for v in dict.fromkeys(values) if v != DEFAULT[factor]]
    return out


def parse_axis(factor: str, texts: list[str]) -> tuple[str, list]:
    """``--axis kernel_size 3 5`` -> ``("kernel_size", [3, 5])``: values typed per factor."""
    if factor not in DEFAULT:
        raise UsageError(f"unknown ablation factor {factor!r}; the factors are "
                         f"{', '.join(DEFAULT)}")
    kind = type(DEFAULT[factor])
    values = []
    for t in texts:
        if kind is bool:
            if t.lower() not in ("true", "false", "on", "off", "1", "0"):
                raise UsageError(f"--axis {factor} takes true or false, not {t!r}")
            values.append(t.lower() in ("true", "on", "1"))
        elif kind is int:
            try:
                values.append(int(t))
            except ValueError:
                raise UsageError(f"--axis {factor} takes whole numbers, not {t!r}") from None
        else:
            values.append(t)
    return factor, check_axes({factor: values})[factor]


def load(out_dir) -> dict:
    """The points finished so far (``sweep.json``), by folder name."""
    path = Path(out_dir) / "sweep.json"
    return json.loads(path.read_text())["points"] if path.is_file() else {}


def _save(out_dir: Path, done: dict) -> None:
    tmp = out_dir / "sweep.json.tmp"
    tmp.write_text(json.dumps({"points": done}, indent=1))
    tmp.replace(out_dir / "sweep.json")  # a stop between two points loses nothing


def run(grid: list[Point], base: TrainConfig, out_dir, data_root, device, probe_epochs: int,
        k: int, nproc: int = 1, run_method=compare.run_method, twins=()) -> dict[str, dict]:
    """Train and probe every point (``base``: the default run, on which each point changes
    its factor) in ``OUT/runs/<point>`` with ``run_method`` (``compare.run_method``); points
    finished with the same configuration are read from ``sweep.json``, not run again, and
    a point that one of ``twins`` (other chapters' runs) already trained is linked to it.
    Returns ``{point name: result}`` with the probe's numbers and each point's wall time."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    done = load(out_dir)
    results = {}
    for i, point in enumerate(grid, 1):
        cfg = point.config(base)
        recorded = json.loads(json.dumps(cfg.to_dict()))  # as sweep.json holds it
        if point.name in done and not differences(done[point.name].get("config") or {},
                                                  recorded):
            print(f"[{i}/{len(grid)}] {point.label}: finished earlier "
                  f"({done[point.name]['seconds']:.0f} s), read from sweep.json")
            results[point.name] = done[point.name]
            continue
        print(f"[{i}/{len(grid)}] {point.label}")
        start = time.perf_counter()
        r = run_method(cfg, out_dir / "runs" / point.name, data_root, device, probe_epochs,
                       k=k, nproc=nproc, twins=twins)
        history = r.pop("history")
        results[point.name] = done[point.name] = {
            "factor": point.factor, "value": point.value, "label": point.label,
            "config": recorded, "seconds": time.perf_counter() - start,
            "pretrain_seconds": sum(h["seconds"] for h in history),
            "final_loss": history[-1]["loss"] if history else None,
            **{m: r[m] for m in ("knn_top1", "linear_top1", "linear_honest_top1")}}
        _save(out_dir, done)
    return results


def table(grid: list[Point], results: dict[str, dict], paper: list[dict]) -> list[dict]:
    """Rows for a Markdown table: each factor's values (the default among them) with our
    numbers (%) beside the authors' runs' (their repository's W&B runs, ImageNet-100,
    ResNet-50; blank where they report none)."""
    rows = []
    factors = list(dict.fromkeys(p.factor for p in grid if p.factor))
    for factor in factors:
        shown = [Point(None)] + [p for p in grid if p.factor == factor]
        for p in sorted(shown, key=lambda p: _order(factor, p)):
            r = results[p.name]
            setting = p.paper_setting(factor)
            ref = {row["metric"]: row["value"] for row in paper
                   if row["table"] == "ablation" and row["setting"] == setting
                   and row["backbone"] == "ResNet-50"}
            value = DEFAULT[factor] if p.factor is None else p.value
            rows.append({"factor": LABELS[factor],
                         "value": Point(factor, value).shown + (" (default)" if p.factor is None
                                                                else ""),
                         "linear_top1": 100 * r["linear_top1"], "knn_top1": 100 * r["knn_top1"],
                         "authors_linear_top1": ref.get("linear_top1"),
                         "authors_knn_top1": ref.get("knn_top1"),
                         "minutes": r["seconds"] / 60})
    return rows


def _order(factor: str, p: Point) -> tuple:
    """The authors' order of a factor's values; values they did not try come after, sorted."""
    value = DEFAULT[factor] if p.factor is None else p.value
    order = PAPER_GRID[factor]
    return (0, order.index(value), "") if value in order else (1, 0, str(value).zfill(8))
