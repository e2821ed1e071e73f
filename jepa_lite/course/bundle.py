"""A chapter's runs as data, small enough to commit: chapters 07-09 explorable in seconds.

Chapters 07-09 train many runs (their times: docs/results/demo). What their analysis reads
of those runs fits in a few MB: each run's metrics per epoch, its probe results and, where a
chapter draws them, its pooled validation features. A chapter that trains writes them here
(:func:`save`) and reads them back (:func:`load`) for its figures and tables; a reader who
does not train reads the ones a ``make results PROFILE=demo`` run committed in
``docs/results/demo/data/<chapter>`` (:func:`committed`), with the commit, device and date
that made them.

    <folder>/runs.json      facts (commit, profile, device, date), sizes, each run's
                            metrics and probe results, the chapter's own extras
    <folder>/features.npz   pooled validation features per run, float16 (optional)
"""

from __future__ import annotations

import io
import json
import os
import shutil
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from jepa_lite import REPO_URL, repo_root
from jepa_lite.checkpoint import atomic_write
from jepa_lite.errors import UsageError

FORMAT = 1
COMMITTED_PROFILE = "demo"  # the profile whose runs the repository commits
RAW_URL = REPO_URL.replace("github.com", "raw.githubusercontent.com") + "/main"
FILES = ("runs.json", "features.npz")  # in this order


@dataclass
class Bundle:
    """What a chapter's analysis reads of its runs. ``runs``: name -> the run's probe results
    with its ``history`` (``metrics.jsonl`` rows); ``references``: the same for what the
    runs are read against (random init, the supervised reference); ``features``: name ->
    pooled validation features ``[N, C]``; ``facts``: where the numbers come from;
    ``extra``: whatever else the chapter measured (step times, the sweep's grid)."""

    chapter: str
    profile: str
    facts: dict
    runs: dict[str, dict]
    references: dict[str, dict] = field(default_factory=dict)
    features: dict[str, torch.Tensor] = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    def describe(self) -> str:
        f = self.facts
        return (f"the {self.profile} profile's runs of commit {f.get('commit')}, on "
                f"{f.get('device')}, {f.get('date')}")


def facts(profile: str, device: str, seed: int, **more) -> dict:
    """Where a bundle's numbers come from: the code's commit, the device, torch, the date."""
    from jepa_lite.course.report import git_commit

    return {"commit": git_commit(), "profile": profile, "device": device, "seed": seed,
            "torch": torch.__version__, "date": time.strftime("%Y-%m-%d"), **more}


def _plain(run: dict) -> dict:
    """A run's results without what only this machine can read (its paths)."""
    return {k: v for k, v in run.items() if k not in ("checkpoint", "probe_dir")}


def save(folder, bundle: Bundle) -> Path:
    """Write ``bundle`` into ``folder`` (replacing what was there); returns the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    names = {name: f"f{i}" for i, name in enumerate(bundle.features)}
    data = {"format": FORMAT, "chapter": bundle.chapter, "profile": bundle.profile,
            "facts": bundle.facts, "runs": {n: _plain(r) for n, r in bundle.runs.items()},
            "references": {n: _plain(r) for n, r in bundle.references.items()},
            "features": names, "extra": bundle.extra}
    atomic_write(folder / "runs.json", json.dumps(data, indent=1))
    if bundle.features:
        arrays = {key: bundle.features[name].float().cpu().numpy().astype(np.float16)
                  for name, key in names.items()}
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)
        atomic_write(folder / "features.npz", buffer.getvalue())
    else:
        (folder / "features.npz").unlink(missing_ok=True)
    return folder


def load(folder) -> Bundle:
    """Read a bundle written by :func:`save`; a clear error when it is not one."""
    folder = Path(folder)
    try:
        data = json.loads((folder / "runs.json").read_text())
    except (OSError, ValueError) as e:
        raise FileNotFoundError(f"{folder} holds no chapter results (runs.json: {e}); train "
                                f"the runs (TRAIN = True) to make them") from None
    if data.get("format") != FORMAT:
        raise UsageError(f"{folder / 'runs.json'} is of format {data.get('format')!r}, this "
                         f"package reads {FORMAT}: train the runs again (TRAIN = True)")
    features = {}
    if data["features"]:
        with np.load(folder / "features.npz") as arrays:
            features = {name: torch.from_numpy(arrays[key].astype(np.float32))
                        for name, key in data["features"].items()}
    return Bundle(data["chapter"], data["profile"], data["facts"], data["runs"],
                  data["references"], features, data["extra"])


def config_changes(stored: Bundle, run: str, cfg) -> list[str]:
    """Where the configuration a committed run was made with differs from ``cfg`` (this
    checkout's recipe of that run), as a resumed run would see it (the operational fields,
    such as loader workers, aside; the micro-batch the run's default split): one line per
    field, empty when they agree."""
    from dataclasses import replace

    from jepa_lite.checkpoint import differences as changes

    then = stored.runs[run]["config"]
    cfg = replace(cfg, micro_batch=cfg.micro_batch or then.get("micro_batch"))
    return [f"{k}: {a!r} committed, {b!r} here"
            for k, a, b in changes(then, cfg.to_dict(), cfg.operational())]


def committed_dir(chapter: str, profile: str = COMMITTED_PROFILE) -> Path | None:
    """The checkout's committed results of ``chapter`` (``docs/results/<profile>/data``)."""
    root = repo_root()
    return root / "docs" / "results" / profile / "data" / chapter if root else None


def committed(chapter: str, profile: str = COMMITTED_PROFILE) -> Bundle:
    """The results of ``chapter`` that a complete ``profile`` course run committed: from the
    checkout, else (an installed package, Colab) downloaded once from the repository into
    the cache (``$JEPA_LITE_CACHE/committed``)."""
    local = committed_dir(chapter, profile)
    if local is not None and (local / "runs.json").is_file():
        return load(local)
    from jepa_lite.data.scenes import cache_dir

    cached = cache_dir() / "committed" / profile / chapter
    if not (cached / "runs.json").is_file():
        _download(f"{os.environ.get('JEPA_LITE_RAW_URL', RAW_URL)}/docs/results/{profile}/"
                  f"data/{chapter}", cached)
    return load(cached)


def _download(url: str, folder: Path) -> None:
    """``runs.json`` and, when it names features, ``features.npz`` from ``url`` into
    ``folder`` (whole or not at all)."""
    tmp = folder.with_name(folder.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        for name in FILES:
            if name == "features.npz" and not json.loads(
                    (tmp / "runs.json").read_text()).get("features"):
                break
            with urllib.request.urlopen(f"{url}/{name}", timeout=60) as r:
                (tmp / name).write_bytes(r.read())
    except (OSError, ValueError) as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise FileNotFoundError(
            f"no committed results of this chapter here, and downloading them from {url} "
            f"failed ({e}): train the runs instead (TRAIN = True)") from None
    shutil.rmtree(folder, ignore_errors=True)
    tmp.replace(folder)
