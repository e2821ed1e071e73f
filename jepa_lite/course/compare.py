"""Chapters 07-08 — several methods on the same backbone, data and probes.

* :func:`run_method`: one method's pretraining run, in its own process and folder, started,
  followed and resumed as chapter 04's (``jepa_lite.course.runs``), then probed; a run that another
  chapter already finished with the same configuration on the same data (:func:`find_twin`)
  is linked, not trained again.
* :func:`recipe_changes`: where a profile's recipe of a method departs from the authors'.
* :func:`collapse_variants`: chapter 07's controlled experiment (EMA, copied target, no
  predictor, gradient through the target; C-JEPA with and without the EMA), and
  :func:`collapse_reading`: which collapse a run's validation spectrum shows, each by its
  own statistic, and how it stands against random init's.
* :func:`step_seconds`: the time of one training step of every method, measured side by side
  in one process on one device (round robin, so that a noisy machine slows all alike), and
  the time per epoch it implies; :func:`fed_seconds`: the same step fed by its own training
  loader, so that the loader's part of an epoch shows.
"""

from __future__ import annotations

import dataclasses
import json
import math
from functools import partial
from pathlib import Path

import torch

from jepa_lite import methods, train
from jepa_lite.checkpoint import read_metrics
from jepa_lite.config import TrainConfig
from jepa_lite.course import bundle, runs
from jepa_lite.course.bench import round_robin
from jepa_lite.data.folders import image_folder, scan
from jepa_lite.distributed import Draw, mix
from jepa_lite.encoders.resnet import dense_trunk
from jepa_lite.eval import features, probes
from jepa_lite.eval.diagnostics import flags_of
from jepa_lite.runtime import device_name


def recipe_changes(profile) -> dict[str, dict[str, tuple]]:
    """``{label: {option: (authors' value, profile's value)}}`` for every method of the
    profile's backbone whose options the profile changes (the short-run settings of
    ``demo``; none in ``full``); a method of another encoder (I-JEPA's ViT) is left out."""
    out = {}
    for m in methods.compared(profile.config().arch):
        authors = TrainConfig(method=m).method
        options = {f.name for f in dataclasses.fields(authors)}
        changes = {f: (getattr(authors, f), v) for f, v in profile.methods.get(m, {}).items()
                   if f in options}
        if changes:
            out[methods.get(m).label] = changes
    return out


def collapse_variants(jepa: TrainConfig, cjepa: TrainConfig) -> dict[str, TrainConfig]:
    """Chapter 07's runs: the same short CNN-JEPA run with one ingredient removed at a time
    (the EMA: the target a copy after every step; the predictor; the stop-gradient), and
    C-JEPA with and without the EMA."""
    return {"CNN-JEPA": jepa,
            "CNN-JEPA, no EMA": jepa.with_changes(target_ema=False),
            "CNN-JEPA, no predictor": jepa.with_changes(predictor_layers=0),
            "CNN-JEPA, gradient through the target": jepa.with_changes(target_gradient=True),
            "C-JEPA": cjepa,
            "C-JEPA, no EMA": cjepa.with_changes(target_ema=False)}


def collapse_reading(spectrum: dict, random_init: dict) -> str:
    """A run's validation spectrum (``analysis.spectrum``) read for each kind of collapse by
    the statistic that sees it (``analysis.collapse_flags``): ``complete collapse`` (the
    std), ``dimensional collapse`` (the rank), else each against the same network's at
    random initialisation: ``partly`` when the std or the rank is under half of random
    init's, with both ratios. Collapse is about the spread of the features, not their use:
    a run can be ``not collapsed`` and still worse than random init on the probes."""
    flags = flags_of(spectrum)
    if flags["complete"]:
        return "complete collapse"
    if flags["dimensional"]:
        return "dimensional collapse"
    std = spectrum["std"] / random_init["std"]
    rank = spectrum["effective_rank"] / random_init["effective_rank"]
    low = [name for name, ratio in (("std", std), ("rank", rank)) if ratio < 0.5]
    ratios = f"std {std:.2f}x, rank {rank:.2f}x random init's"
    return f"partly ({' and '.join(low)} under half): {ratios}" if low else \
        f"not collapsed: {ratios}"


def train_run(cfg: TrainConfig, run_dir, data_root, device: torch.device, nproc: int = 1,
              twins=()) -> Path:
    """Train ``cfg`` in ``run_dir`` (in a process of its own, resumed if stopped, skipped
    if done: ``runs.train``); returns its final checkpoint. ``twins``: finished run folders
    (other chapters' runs): when one of them was made with this configuration on this data,
    ``run_dir`` becomes a link to it and nothing is trained again."""
    run_dir = Path(run_dir)
    if run_dir.is_symlink() and not run_dir.exists():
        run_dir.unlink()  # its twin was removed: train here
    if twins and not run_dir.exists():
        twin = find_twin(cfg, data_root, twins, nproc)
        if twin is not None:
            run_dir.parent.mkdir(parents=True, exist_ok=True)
            run_dir.symlink_to(twin.resolve(), target_is_directory=True)
            print(f"{run_dir.name}: the same configuration on the same data finished in "
                  f"{twin}; linked, not trained again")
    runs.train(cfg, run_dir, data_root, device.type, nproc)
    return runs.require_complete(run_dir)


def run_method(cfg: TrainConfig, run_dir, data_root, device: torch.device, probe_epochs: int,
               k: int = 200, nproc: int = 1, twins=()) -> dict:
    """Train ``cfg`` in ``run_dir`` (:func:`train_run`: resumed, skipped if done, linked to a
    twin) and probe the run's encoder at its image size, seeded by its seed; returns the
    probe's results with the run's metrics. A linked twin's probe is not made again."""
    run_dir = Path(run_dir)
    last = train_run(cfg, run_dir, data_root, device, nproc, twins)
    probe_json = run_dir / "probe" / "probe.json"
    key = probes.checkpoint_key(last)  # of the resolved path: a linked twin's probe counts
    result = json.loads(probe_json.read_text()) if probe_json.is_file() else None
    if result is None or result.get("encoder") != key:
        result = probes.evaluate(probes.encoder_from_checkpoint(last), key, data_root,
                                 run_dir / "probe", image_size=cfg.image_size, device=device,
                                 k=k, epochs=probe_epochs, seed=cfg.seed, overwrite=True)
    return {**result, "history": read_metrics(run_dir), "checkpoint": str(last),
            "config": json.loads((run_dir / "config.json").read_text()),
            "probe_dir": str(run_dir / "probe")}


def find_twin(cfg: TrainConfig, data_root, folders, nproc: int = 1) -> Path | None:
    """The first of ``folders`` that holds a complete run of ``cfg`` on ``data_root``: the
    same settings and data as ``runs.check_settings`` compares them (the operational ones,
    such as workers, aside), or None. Links are skipped (a twin is a real folder)."""
    fingerprint = None  # the data's, scanned once (every file is stat()ed)
    for folder in map(Path, folders):
        if folder.is_symlink() or runs.state(folder)["status"] != "complete":
            continue
        fingerprint = fingerprint or scan(data_root, "train").fingerprint
        try:
            runs.check_settings(cfg, folder, data_root, nproc, fingerprint)
        except ValueError:
            continue
        return folder
    return None


def probe_random_init(cfg: TrainConfig, data_root, out_dir, image_size: int,
                      device: torch.device, probe_epochs: int, k: int = 200, seed: int = 0
                      ) -> dict:
    """The floor: the same probes on the encoder of ``cfg``'s method at its random
    initialisation (seeded; ``probes.random_init``)."""
    encoder, key = probes.random_init(cfg, seed)
    return probes.evaluate(encoder, key, data_root, out_dir, image_size=image_size,
                           device=device, k=k, epochs=probe_epochs, seed=seed)


def validation_features(probe_dir, image_size: int) -> torch.Tensor:
    """The pooled validation features ``[N, C]`` a probe read (its feature bank): one row per
    image, the encoder in eval mode on centre crops, the same for every run."""
    return features.open_bank(features.bank_dir(probe_dir, "val", image_size)).rows()


def results_bundle(chapter: str, chapter_cfg, train_cfg: TrainConfig,
                   results: dict[str, dict], references: dict[str, dict],
                   with_features: dict | None = None, **extra) -> bundle.Bundle:
    """A chapter's runs as a :class:`~jepa_lite.course.bundle.Bundle` (what its analysis reads; the
    course commits it for the ``demo`` profile): each run's metrics, probe results and
    configuration, the references (random init, supervised), the pooled validation features
    of the runs named in ``with_features`` (name -> its probe folder), ``extra`` as given;
    its facts say where they come from and the data's sizes (``train_cfg``: the runs'
    recipe, for their trunk)."""
    probed = next(r for r in (*references.values(), *results.values()) if "train_images" in r)
    feats = {name: validation_features(folder, train_cfg.image_size)
             for name, folder in (with_features or {}).items()}
    facts = bundle.facts(chapter_cfg.profile.name, device_name(chapter_cfg.device),
                         chapter_cfg.seed, train_images=probed["train_images"],
                         val_images=probed["val_images"], classes=probed["num_classes"],
                         k=probed["knn_k"], channels=dense_trunk(train_cfg.arch).dim)
    return bundle.Bundle(chapter, chapter_cfg.profile.name, facts, results, references, feats,
                         extra)


def against_floor(top1: float, floor: float, n_val: int) -> tuple[float, float, str]:
    """How a probe's top-1 reads against the random-init floor's, both measured on the same
    ``n_val`` validation images: ``(gain, se, verdict)``. ``se`` is the standard error of
    the difference of two binomial accuracies; the verdict is ``learned`` above two of them,
    ``below random init`` under minus two, else ``within noise``."""
    se = math.sqrt((top1 * (1 - top1) + floor * (1 - floor)) / n_val)
    gain = top1 - floor
    verdict = ("learned" if gain > 2 * se else "below random init" if gain < -2 * se
               else "within noise")
    return gain, se, verdict


def learned_rows(results: dict[str, dict], floor: dict, n_val: int) -> list[dict]:
    """A row per run: its probes, and each probe's gain over the random-init ``floor`` with
    its verdict (:func:`against_floor`)."""
    rows = []
    for name, r in results.items():
        row = {"method": name, "knn_top1": r["knn_top1"], "linear_top1": r["linear_top1"]}
        for key in ("knn", "linear"):
            gain, se, verdict = against_floor(r[f"{key}_top1"], floor[f"{key}_top1"], n_val)
            row[f"{key}_vs_random"] = f"{gain:+.3f} ± {2 * se:.3f}: {verdict}"
        rows.append(row)
    return rows


def step_seconds(configs: dict[str, TrainConfig], data_root, device: torch.device,
                 steps: int = 5, warmup: int = 2) -> dict[str, float]:
    """Seconds per optimizer step of every method, measured side by side: all runs are
    built first (``train.build``, as training builds them), then steps go round robin
    (method 1, 2, ..., 1, 2, ...) on the same real images (each method's own views and
    masks), and the median per method is kept. One process."""
    dataset = image_folder(data_root, "train")
    built = {}
    for name, cfg in configs.items():
        cfg = train.resolved(cfg, 1)
        run = train.build(cfg, device)
        views = methods.get(cfg.method.name).views(cfg)
        items = views.dataset(dataset, device)
        accumulation = cfg.batch_size // cfg.micro_batch
        batches = [views.inputs(views.collate([items[_draw(i, j, cfg.micro_batch, len(dataset))]
                                               for i in range(cfg.micro_batch)]), device)
                   for j in range(accumulation)]
        built[name] = (run, batches)
    return round_robin({name: partial(train.train_step, run, batches, len(batches), 0.996)
                        for name, (run, batches) in built.items()}, steps, warmup, device)


def fed_seconds(configs: dict[str, TrainConfig], data_root, device: torch.device,
                steps: int = 5) -> dict[str, float]:
    """Seconds per optimizer step of every method fed by its own training loader, as
    training runs it (``bench.loader_speed``: the run's workers, the device pipeline's
    decoding and augmentation); against :func:`step_seconds`, the difference is what the
    loader adds to a step. One method after the other; the first step is not timed."""
    from jepa_lite.course.bench import loader_speed

    root = Path(data_root)
    seconds = {}
    for name, cfg in configs.items():
        cfg = train.resolved(cfg, 1)
        run = train.build(cfg, device)
        seconds[name] = cfg.batch_size / loader_speed(root, cfg, steps, device, run)
        del run
    return seconds


def _draw(i: int, j: int, micro: int, n: int):
    index = (j * micro + i) % n
    return Draw(index, mix(7, j, i), mix(7, j))


def paper_hours_per_epoch(rows: list[dict]) -> dict[str, float]:
    """The paper's hours per epoch on ImageNet-100 (4 GPUs), by method."""
    return {r["method"]: r["value"] for r in rows
            if r["table"] == "cost" and r["metric"] == "hours_per_epoch"}
