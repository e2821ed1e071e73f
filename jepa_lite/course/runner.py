"""The course: every chapter executed in order with papermill, outputs under one folder.

Layout of a course run (``jepa-lite course --out OUT``)::

    OUT/<chapter>.ipynb          the executed notebook (kept when the chapter fails)
    OUT/<chapter>/*.png          the chapter's figures
    OUT/<chapter>/metrics.json   the chapter's key numbers
    OUT/summary.md, summary.json chapter, status, duration, key metrics

A chapter talks to the runner only through ``jepa_lite.course.chapter.ChapterRun`` (figures and
metrics.json).
"""

from __future__ import annotations

import functools
import json
import os
import re
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch

from jepa_lite import repo_root
from jepa_lite.course.chapter import ChapterConfig, resolve
from jepa_lite.course.report import fmt_metric, git_commit, summary_rows
from jepa_lite.errors import UsageError
from jepa_lite.progress import HEADLESS_ENV, STATUS_ENV, watch
from jepa_lite.runtime import device_name

CHAPTER_FILE = re.compile(r"^(\d\d)_[a-z0-9_]+\.py$")


def notebooks_dir() -> Path:
    """The chapters' folder: ``$JEPA_LITE_NOTEBOOKS``, the checkout's, or ./notebooks."""
    env = os.environ.get("JEPA_LITE_NOTEBOOKS")
    candidates = [Path(env)] if env else []
    root = repo_root()
    candidates += [root / "notebooks"] if root else []
    candidates += [Path.cwd() / "notebooks"]
    for c in candidates:
        if c.is_dir():
            return c
    raise FileNotFoundError(
        "no notebooks/ folder found: run the course from a clone of the jepa_lite repository, "
        "or set JEPA_LITE_NOTEBOOKS to its notebooks/ folder"
    )


def list_chapters(folder: Path | None = None) -> list[Path]:
    """The chapter sources (``NN_name.py``, jupytext percent format) in order."""
    folder = folder or notebooks_dir()
    return sorted(p for p in folder.iterdir() if CHAPTER_FILE.match(p.name))


def select_chapters(only: list[str] | None, folder: Path | None = None) -> list[Path]:
    """Chapters picked by number (``1``, ``01``), name (``masking``) or both (``01_masking``);
    all when ``only`` is empty."""
    chapters = list_chapters(folder)
    if not only:
        return chapters
    picked = []
    for key in only:
        number = key.zfill(2) if key.isdigit() else None
        match = [c for c in chapters if key in (c.stem, c.stem.split("_", 1)[1])
                 or c.stem.split("_")[0] == number]
        if not match:
            names = ", ".join(c.stem for c in chapters)
            raise UsageError(f"unknown chapter {key!r}; the chapters are: {names}")
        picked += [m for m in match if m not in picked]
    return sorted(picked)


@dataclass
class ChapterResult:
    """One chapter's run, with what made it: the commit, the device's name, torch's version
    and when it ended (UTC), so that a course assembled from runs on several machines and
    commits says which chapter ran where."""

    chapter: str
    status: str  # "ok" or "failed"
    seconds: float
    error: str = ""
    metrics: dict = field(default_factory=dict)
    commit: str = ""
    device: str = ""
    torch: str = ""
    finished: str = ""  # e.g. 2026-12-04T18:15:06Z
    seed: int | None = None


@contextmanager
def _kernel_env(**values):
    """Environment for the chapter kernels (they inherit ours)."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def declared_parameters(nb) -> list[str]:
    """The names a chapter's ``parameters`` cell assigns (literals only, by convention)."""
    import ast

    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    return [t.id for c in cells for stmt in ast.parse(c.source).body
            if isinstance(stmt, ast.Assign) for t in stmt.targets if isinstance(t, ast.Name)]


def run_chapter(source: Path, cfg: ChapterConfig, timeout: int | None = None,
                micro_batch: int | None = None, extra: dict | None = None) -> ChapterResult:
    """Execute one chapter with papermill; the executed notebook is kept even on failure.
    A chapter gets the parameters its ``parameters`` cell declares (RUN_DIR and MICRO_BATCH
    only where it uses them; TRAIN = True where a chapter can read committed runs instead of
    training: the course trains); ``extra``: more of them, e.g. chapter 09's AXES, or
    ``{"TRAIN": False}``, for the chapters that declare them."""
    import jupytext
    import papermill as pm

    name = source.stem
    nb = jupytext.read(source)  # the .py is the source of truth
    params = {"PROFILE": cfg.profile.name, "OUT_DIR": str(cfg.out_dir.resolve()),
              "DEVICE": str(cfg.device), "SEED": cfg.seed, "INTERACTIVE": False,
              "DATA_ROOT": None if cfg.data_root_arg is None else str(cfg.data_root_arg),
              "RUN_DIR": None if cfg.run_dir_arg is None else str(cfg.run_dir_arg.resolve()),
              "MICRO_BATCH": micro_batch, "TRAIN": True, **(extra or {})}
    declared = declared_parameters(nb)
    params = {k: v for k, v in params.items() if k in declared}
    metrics_file = cfg.out_dir / name / "metrics.json"
    metrics_file.unlink(missing_ok=True)  # never report a previous run's numbers as this one's
    start = time.perf_counter()
    error = ""
    try:
        # headless: jepa_lite.progress bars print rarely instead of flooding the notebook/log
        with _kernel_env(**{HEADLESS_ENV: "1", STATUS_ENV: str(cfg.out_dir / ".status"),
                            "TQDM_MININTERVAL": "30",
                            "MPLBACKEND": "module://matplotlib_inline.backend_inline"}):
            pm.execute_notebook(nb, str(cfg.out_dir / f"{name}.ipynb"), parameters=params,
                                kernel_name="python3", language="python", cwd=str(source.parent),
                                progress_bar=False, execution_timeout=timeout,
                                store_widget_state=False)
    except pm.PapermillExecutionError as e:
        cell = _failing_cell(cfg.out_dir / f"{name}.ipynb", e.cell_index)
        error = f"{cell}: {e.ename}: {e.evalue}"
    except Exception as e:  # kernel died, timeout, ...: still report and go on
        error = f"{type(e).__name__}: {e}"
    metrics = json.loads(metrics_file.read_text())["metrics"] if metrics_file.is_file() else {}
    return ChapterResult(name, "failed" if error else "ok", time.perf_counter() - start,
                         error, metrics, course_commit(), device_name(cfg.device),
                         torch.__version__, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                         cfg.seed)


def _failing_cell(executed: Path, fallback_index: int) -> str:
    """Name the cell that raised: its index in the executed notebook and its first line."""
    try:
        cells = json.loads(executed.read_text())["cells"]
    except (OSError, ValueError, KeyError):
        return f"cell {fallback_index}"
    for i, cell in enumerate(cells):
        if any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
            source = "".join(cell["source"]).strip().splitlines() or [""]
            return f"cell {i} (`{source[0][:60]}`)"
    return f"cell {fallback_index}"


def _earlier_results(cfg: ChapterConfig, keep_out: set[str]) -> list[ChapterResult]:
    """Results of chapters run before into the same folder with the same profile."""
    path = cfg.out_dir / "summary.json"
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    if old.get("config", {}).get("profile", {}).get("name") != cfg.profile.name:
        return []
    return [ChapterResult(**r) for r in summary_rows(old) if r["chapter"] not in keep_out]


@functools.cache
def course_commit() -> str:
    """The code the course runs: read once per process, when a course starts (not at
    import), so that commits made while it runs do not change what it reports."""
    return git_commit()


def write_summary(results: list[ChapterResult], cfg: ChapterConfig,
                  earlier: list[ChapterResult] = ()) -> Path:
    """``summary.md`` (for people) and ``summary.json`` (for scripts), in chapter order;
    ``earlier`` holds chapters of a previous run into the same folder that this run skipped."""
    rows = sorted([*earlier, *results], key=lambda r: r.chapter)
    lines = [f"# jepa_lite course — profile `{cfg.profile.name}`", "",
             f"device `{cfg.device}`, seed {cfg.seed}, outputs in `{cfg.out_dir}`", "",
             "| chapter | status | duration | commit | device | key metrics |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        shown = [f"{k}={fmt_metric(v)}" for k, v in list(r.metrics.items())[:6]
                 if isinstance(v, (int, float, str))]
        error = " ".join(r.error.split()).replace("|", "\\|")  # one table row, whatever it says
        status = r.status if r.status == "ok" else f"**FAILED** — {error}"
        if r in earlier:
            status += " (earlier run)"
        lines.append(f"| {r.chapter} | {status} | {r.seconds:.1f} s | {r.commit} | {r.device} "
                     f"| {'; '.join(shown)} |")
    path = cfg.out_dir / "summary.md"
    path.write_text("\n".join(lines) + "\n")
    (cfg.out_dir / "summary.json").write_text(json.dumps(
        {"config": cfg.to_dict(), "commit": course_commit(),
         "chapters": [r.__dict__ for r in rows]}, indent=1))
    return path


LOG_EVERY = 60.0  # seconds between two progress lines of a chapter when stderr is a log


def _shower(bar, chapter: str, tty: bool):
    """What shows a chapter's progress: in a terminal, the course bar's postfix, redrawn in
    place; in a log (CI, a file), a line at most every LOG_EVERY seconds."""
    from tqdm.auto import tqdm

    last = [time.monotonic()]

    def show(line: str) -> None:
        if tty:
            bar.set_postfix_str(f"{chapter} | {line}" if line else chapter)
        elif line and time.monotonic() - last[0] >= LOG_EVERY:
            last[0] = time.monotonic()
            tqdm.write(f"  {chapter} | {line}", file=sys.stderr)

    return show


def run_course(profile: str = "smoke", only: list[str] | None = None, data_root=None,
               out_dir=None, device: str | None = "auto", seed: int = 0,
               timeout: int | None = None, run_dir=None, micro_batch: int | None = None,
               extra: dict | None = None, pending: bool = False
               ) -> tuple[list[ChapterResult], Path]:
    """Run the chapters in order; a failing chapter is reported and the others still run.
    ``run_dir``: chapter 04's pretraining run folder (default: inside ``out_dir``), which
    chapters 05-06 read; ``micro_batch`` overrides the profile's (e.g. 32 on a 16 GB GPU);
    ``pending``: only the chapters (of ``only``, else all) that have not yet run ok into
    ``out_dir`` with this profile and seed, so that a course cut short (a Colab session
    that ended) goes on chapter by chapter where it stopped."""
    from tqdm.auto import tqdm

    course_commit()  # the checkout as the course starts
    cfg = resolve(profile, data_root, out_dir, device, seed, run_dir)
    chapters = select_chapters(only)
    if pending:
        done = {r.chapter for r in _earlier_results(cfg, set())
                if r.status == "ok" and r.seed == cfg.seed}
        chapters = [c for c in chapters if c.stem not in done]
    if cfg.data_root_arg is not None:
        cfg.data_root()  # a wrong --data-root fails here, before any chapter runs
    cfg.out_dir.mkdir(parents=True, exist_ok=True)
    results: list[ChapterResult] = []
    earlier = _earlier_results(cfg, {c.stem for c in chapters})  # kept in the summary
    summary = write_summary(results, cfg, earlier)
    tty = sys.stderr.isatty()
    bar = tqdm(chapters, desc=f"course ({cfg.profile.name})", unit="chapter", file=sys.stderr,
               mininterval=0.5 if tty else LOG_EVERY)
    try:
        for source in bar:
            bar.set_postfix_str(source.stem)
            with watch(cfg.out_dir / ".status", _shower(bar, source.stem, tty)):
                result = run_chapter(source, cfg, timeout, micro_batch, extra)
            results.append(result)
            msg = f"{result.chapter}: {result.status} in {result.seconds:.1f} s"
            tqdm.write(msg + (f" — {result.error}" if result.error else ""), file=sys.stderr)
            write_summary(results, cfg, earlier)  # after each chapter: nothing is lost
    except KeyboardInterrupt:
        from jepa_lite.checkpoint import is_locked

        run = cfg.run_dir()
        if is_locked(run):  # chapter 04 started it in a session of its own: it goes on
            who = (run / ".lock").read_text().strip()
            tqdm.write(f"interrupted; the pretraining run in {run} goes on ({who}): run the "
                       f"course again to follow it, or stop it with kill {who.split()[1]}",
                       file=sys.stderr)
        raise
    return results, summary
