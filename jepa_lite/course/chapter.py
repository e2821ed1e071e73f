"""What a chapter calls: its settings (:class:`ChapterConfig`, from a profile and the
parameters cell) and what it writes (:class:`ChapterRun`: figures and ``metrics.json`` under
``OUT/<chapter>/``). A chapter talks to the course runner (``jepa_lite.course.runner``) only
through them.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from jepa_lite import repo_root
from jepa_lite.config import TrainConfig
from jepa_lite.course import runs
from jepa_lite.course.profiles import Profile, get_profile
from jepa_lite.data.folders import check_data_root, scan
from jepa_lite.data.scenes import ensure_synthetic
from jepa_lite.errors import UsageError
from jepa_lite.eval import probes
from jepa_lite.masking import grid_of
from jepa_lite.runtime import resolve_device, skip_final_collection


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

    def supervised_config(self, many_runs: bool = False) -> TrainConfig:
        """The supervised reference's run (chapters 05 and 08): the profile's recipe of the
        ``supervised`` method for ``supervised_epochs``, its head as wide as the data set's
        classes (``many_runs``: of the data of the chapters that train many runs). The
        recipe is the same for both chapters, so that chapter 08 links chapter 05's run when
        their data are the same."""
        if not self.profile.supervised_epochs:
            raise UsageError(f"the {self.profile.name} profile trains no supervised reference "
                             f"(supervised_epochs 0)")
        classes = len(scan(self.data_root(many_runs), "train").classes)
        return self.train_config("supervised").with_changes(
            epochs=self.profile.supervised_epochs, num_classes=classes)

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
