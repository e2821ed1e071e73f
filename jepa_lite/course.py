"""The course: every chapter executed in order with papermill, outputs under one folder.

Layout of a course run (``jepa-lite course --out OUT``)::

    OUT/<chapter>.ipynb          the executed notebook (kept when the chapter fails)
    OUT/<chapter>/*.png          the chapter's figures
    OUT/<chapter>/metrics.json   the chapter's key numbers
    OUT/summary.md, summary.json chapter, status, duration, key metrics

A chapter talks to the runner only through :class:`ChapterRun` (figures and metrics.json).
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from jepa_lite import probes, repo_root, runs
from jepa_lite.config import TrainConfig
from jepa_lite.data import check_data_root
from jepa_lite.errors import UsageError
from jepa_lite.masking import grid_of
from jepa_lite.profiles import Profile, get_profile
from jepa_lite.progress import HEADLESS_ENV, STATUS_ENV, watch
from jepa_lite.report import fmt_metric, git_commit
from jepa_lite.runtime import device_name, resolve_device, skip_final_collection
from jepa_lite.scenes import ensure_synthetic

CHAPTER_FILE = re.compile(r"^(\d\d)_[a-z0-9_]+\.py$")


# --------------------------------------------------------------------------- a chapter's settings
def default_out_dir() -> Path:
    """``outputs/`` of the checkout, else of the working directory."""
    return (repo_root() or Path.cwd()) / "outputs"


@dataclass
class ChapterConfig:
    """Everything a chapter needs, resolved from a profile and the parameters cell."""

    profile: Profile
    out_dir: Path
    device: torch.device
    seed: int = 0
    data_root_arg: Path | None = None
    run_dir_arg: Path | None = None

    def run_dir(self) -> Path:
        """Chapter 04's pretraining run: RUN_DIR if given, else inside the outputs."""
        return self.run_dir_arg or self.out_dir / "04_pretraining" / "run"

    def course_runs(self) -> list[Path]:
        """The course's run folders: chapter 04's and those of the chapters that train many
        (``OUT/<chapter>/runs/<run>``); ``compare.run_method`` links a run to one of them
        made with the same configuration on the same data instead of training it again."""
        return [self.run_dir(), *sorted(self.out_dir.glob("*/runs/*"))]

    def train_config(self, method: str = "cnn-jepa", many_runs: bool = False) -> TrainConfig:
        """The profile's recipe of a run (``Profile.config``) with this chapter's seed."""
        return self.profile.config(method, self.seed, many_runs)

    @property
    def image_size(self) -> int:
        return self.profile.image_size

    @property
    def grid(self) -> tuple[int, int]:
        return grid_of(self.image_size, self.train_config().arch)

    def data_root(self, many_runs: bool = False) -> Path:
        """The data set: DATA_ROOT if given, else the profile's generated one (made once);
        ``many_runs``: the one of the chapters that train many runs, where the profile has
        its own for them."""
        if self.data_root_arg is not None:
            return check_data_root(self.data_root_arg, ("train", "val"))
        if many_runs and self.profile.many_runs_data is not None:
            return ensure_synthetic(self.profile.many_runs_data)
        if self.profile.synthetic is None:
            raise UsageError(
                f"the {self.profile.name} profile needs DATA_ROOT (--data-root): an "
                f"{self.profile.dataset} folder, e.g. built with `jepa-lite make-data "
                f"imagenet100 --imagenet /path/to/imagenet --out /path/to/imagenet100`"
            )
        return ensure_synthetic(self.profile.synthetic)

    def to_dict(self) -> dict:
        return {"profile": asdict(self.profile), "out_dir": str(self.out_dir),
                "device": str(self.device), "seed": self.seed,
                "data_root": None if self.data_root_arg is None else str(self.data_root_arg),
                "run_dir": str(self.run_dir())}


def resolve(profile: str = "smoke", data_root: str | os.PathLike | None = None,
            out_dir: str | os.PathLike | None = None, device: str | None = "auto",
            seed: int = 0, run_dir: str | os.PathLike | None = None) -> ChapterConfig:
    """Turn the literal parameters of a chapter (or the CLI) into a :class:`ChapterConfig`."""
    return ChapterConfig(
        profile=get_profile(profile),
        out_dir=Path(out_dir).expanduser() if out_dir else default_out_dir(),
        device=resolve_device(device),
        seed=int(seed),
        data_root_arg=Path(data_root).expanduser() if data_root else None,
        run_dir_arg=Path(run_dir).expanduser() if run_dir else None,
    )


# --------------------------------------------------------------------------- chapter side
class ChapterRun:
    """What a chapter writes: figures and ``metrics.json`` under ``OUT_DIR/<chapter>/``."""

    def __init__(self, chapter: str, config: ChapterConfig):
        self.chapter, self.config = chapter, config
        self.dir = config.out_dir / chapter
        self.dir.mkdir(parents=True, exist_ok=True)
        self.metrics: dict = {}
        self.figures: list[str] = []
        self._write()

    def savefig(self, fig, name: str) -> Path:
        """Save a matplotlib figure as ``<name>.png`` in the chapter's folder."""
        path = self.dir / f"{name}.png"
        fig.savefig(path, dpi=110, bbox_inches="tight")
        if path.name not in self.figures:
            self.figures.append(path.name)
        self._write()
        return path

    def log(self, **metrics) -> None:
        """Record key numbers; ``metrics.json`` is rewritten at once, so nothing is lost."""
        self.metrics.update({k: _plain(v) for k, v in metrics.items()})
        self._write()

    def pretrained(self, micro_batch: int | None = None) -> Path:
        """Chapter 04's finished run (``RUN/last.pt``). A chapter opened on its own trains it
        first when it is missing or stopped (and says so), with the profile's recipe, exactly
        as chapter 04 does: the same configuration, folder and resume rules (``runs.train``)."""
        cfg = self.config
        tcfg = cfg.train_config()
        if micro_batch:
            tcfg = tcfg.with_changes(micro_batch=micro_batch)
        info = runs.state(cfg.run_dir())
        if info["status"] != "complete" and self.chapter != "04_pretraining":
            print(f"{runs.describe(info)}; this chapter needs it, so it trains it now with "
                  f"the {cfg.profile.name} recipe, as chapter 04 would")
        runs.train(tcfg, cfg.run_dir(), cfg.data_root(), cfg.device.type,
                   runs.processes(tcfg.batch_size, tcfg.micro_batch, cfg.device.type))
        return runs.require_complete(cfg.run_dir())

    def probed(self) -> dict:
        """Chapter 05's probe results of the pretrained encoder (``probe.json``); made here,
        in chapter 05's folder and with its settings, when that chapter has not run."""
        cfg = self.config
        out = cfg.out_dir / "05_probes" / "pretrained"
        checkpoint = self.pretrained()
        if (out / "probe.json").is_file():
            found = json.loads((out / "probe.json").read_text())
            if found.get("encoder") == probes.checkpoint_key(checkpoint):
                return found
        print(f"no probe results of {checkpoint} in {out}; probing it now, as chapter 05 would")
        return probes.evaluate(probes.encoder_from_checkpoint(checkpoint),
                               probes.checkpoint_key(checkpoint), cfg.data_root(), out,
                               cfg.image_size, cfg.device, k=cfg.profile.knn_k,
                               epochs=cfg.profile.probe_epochs, seed=cfg.seed, overwrite=True)

    def _write(self) -> None:
        data = {"chapter": self.chapter, "profile": self.config.profile.name,
                "seed": self.config.seed, "device": str(self.config.device),
                "metrics": self.metrics, "figures": self.figures}
        tmp = self.dir / "metrics.json.tmp"
        tmp.write_text(json.dumps(data, indent=1))
        tmp.replace(self.dir / "metrics.json")


def _plain(value):
    """JSON-friendly scalars (tensors and numpy numbers to Python numbers)."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def start_chapter(chapter: str, profile: str = "smoke", data_root=None, out_dir=None,
                  device: str | None = "auto", seed: int = 0, run_dir=None) -> ChapterRun:
    """Called by every chapter right after its parameters cell."""
    skip_final_collection()  # the kernel's shutdown: a second sooner
    torch.manual_seed(seed)
    return ChapterRun(chapter, resolve(profile, data_root, out_dir, device, seed, run_dir))


# --------------------------------------------------------------------------- runner side
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
    made = old.get("config", {})
    if made.get("profile", {}).get("name") != cfg.profile.name:
        return []
    older = {"commit": old.get("commit", ""), "seed": made.get("seed")}  # one for all, before
    return [ChapterResult(**{**older, **c})
            for c in old.get("chapters", []) if c["chapter"] not in keep_out]


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
