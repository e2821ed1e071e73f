"""Evidence that CNN-JEPA, C-JEPA and VICReg learn, in CPU-sized runs (issues 4 and 9).

A ResNet-10 pretrained for 12 epochs (372 steps) on the generated scenes must find neighbours
of the same class clearly more often than the very same network at its random initialisation.
SimCLR and BYOL did not with the authors' settings (docs/experiments.md, "Evidence that it
learns": 0.200 and 0.175 vs 0.240); they did with those in :data:`SHORT_RUN` (SimCLR with
half its colour jitter 0.445, BYOL with LARS 0.360), not asserted here to keep CI in its
time. Seed 0, k-NN
top-1: C-JEPA 0.240 -> 0.400, VICReg (the authors' settings) 0.240 -> 0.430. With the
device pipeline (issue 21, 2026-11-26): C-JEPA 0.240 -> 0.440 (12 epochs, 150 s), 0.300 (8
epochs, 112 s: under the margin); VICReg 0.415 (12 epochs, 222 s), 0.350 (6 epochs, 186
steps, 118 s). The test runs VICReg for 6 epochs (`python -m tests.test_learning 0 --methods
vicreg --epochs 6`; 8 epochs with the PIL loader: 0.390), C-JEPA for 12. Since 2026-11-27
they are marked ``learning`` and run by ``make test-learning``, not by CI's ``make test``:
with chapter 07's collapse runs and chapter 04's step the whole suite took 1273 s on this
2-core machine, the two learning runs 165 s and 138 s of it, and CI has 20 minutes.

Measured on a 2-core CPU (``python -m tests.test_learning 0 1 2`` prints them again), k-NN
top-1 on 200 validation images of 10 classes (chance 0.10), random init -> pretrained:
seed 0: 0.240 -> 0.420, seed 1: 0.145 -> 0.400, seed 2: 0.145 -> 0.310 (155-162 s of
pretraining each; with the seeded micro-batch loader of issue 8, which draws other crops and
masks than the loader before it: 0.335 / 0.435 / 0.315 then). The test runs seed 0 of C-JEPA
and VICReg (CNN-JEPA's margin: the smoke course, tests/test_course.py) and asks for half
the smallest gap (CNN-JEPA's 0.165; C-JEPA's 0.16).
Before the generator drew scenes of several pale objects on a plain background, the
pretrained encoder matched images by background tone and did not beat random init.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
import torch

from jepa_lite import masking, train
from jepa_lite.checkpoint import read_metrics
from jepa_lite.config import TrainConfig
from jepa_lite.course import profiles
from jepa_lite.data.scenes import KINDS, SyntheticSpec, make_synthetic
from jepa_lite.eval import probes

SPEC = SyntheticSpec(classes=10, per_class=100, val_per_class=20, size=96, seed=0)
K = 20  # neighbours: 200 (the paper's k, for 1,300 images per class) would span two classes here
MARGIN = 0.08  # half the smallest measured gap (see the module docstring)


# Short-run settings where a method's own do not suit 372 steps: the demo profile's (its
# SimCLR and BYOL settings learn here but are not asserted; see the docstring)
SHORT_RUN = dict(profiles.get_profile("demo").methods)


def config(seed: int, epochs: int = 12, method: str = "cnn-jepa", arch: str = "resnet10",
           size: int = SPEC.size, overrides: dict | None = None) -> train.TrainConfig:
    """Short-run settings (:data:`SHORT_RUN`): for CNN-JEPA a faster EMA start (0.99 instead
    of 0.996) and a lower peak lr (0.002 instead of 0.01) than the paper, since the run is 372
    steps instead of 50,000; the other methods as the demo profile says; ``overrides`` last
    (any field of the run, of the method or of its masking options)."""
    base = dict(method=method, arch=arch, image_size=size, epochs=epochs, batch_size=32,
                warmup_epochs=1, checkpoint_every=0, log_every=50, seed=seed, workers=0)
    return TrainConfig().with_changes(**{**base, **SHORT_RUN.get(method, {}),
                                         **(overrides or {})})


_RANDOM: list[tuple[dict, tuple, dict]] = []  # (weights, (data, size), probe) of floors probed


def random_init_probe(encoder, root: Path, out: Path, size: int) -> dict:
    """The probe of a random encoder; the same weights on the same data are probed once
    (C-JEPA's and VICReg's runs start from the same seeded ResNet-10)."""
    weights = {k: v.clone() for k, v in encoder.state_dict().items()}
    for seen, where, result in _RANDOM:
        if where == (root, size) and seen.keys() == weights.keys() and all(
                torch.equal(seen[k], weights[k]) for k in weights):
            return result
    result = probes.evaluate(encoder, "random", root, out / "random", image_size=size,
                             k=K, epochs=1)
    _RANDOM.append((weights, (root, size), result))
    return result


def learning_run(root: Path, out: Path, seed: int, epochs: int = 12,
                 method: str = "cnn-jepa", arch: str = "resnet10",
                 size: int = SPEC.size, overrides: dict | None = None) -> dict:
    """k-NN top-1 of the pretrained encoder and of its own random initialisation."""
    cfg = config(seed, epochs, method, arch, size, overrides)
    torch.manual_seed(cfg.seed)  # as pretrain() does: the random encoder is its starting point
    start = train.build_model(cfg).encoder()
    before = random_init_probe(start, root, out, size)
    t0 = time.perf_counter()
    last = train.pretrain(cfg, root, out / "run", device="cpu")
    seconds = time.perf_counter() - t0
    after = probes.evaluate(probes.encoder_from_checkpoint(last), "jepa", root, out / "jepa",
                            image_size=size, k=K, epochs=1)
    return {"method": method, "arch": arch, "size": size, "seed": seed,
            "grid": masking.grid_of(size, arch),
            "overrides": overrides or {},
            "random_knn_top1": before["knn_top1"],
            "jepa_knn_top1": after["knn_top1"], "pretrain_seconds": round(seconds, 1)}


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    return make_synthetic(tmp_path_factory.mktemp("learn") / "scenes", SPEC)


@pytest.mark.slow
@pytest.mark.learning  # make test-learning; not in CI's make test (its 20 minutes)
@pytest.mark.parametrize("method, epochs", [("cjepa", 12), ("vicreg", 6)])
def test_pretraining_beats_random_init(method, epochs, scenes, tmp_path):
    """CNN-JEPA's own margin is asserted by the smoke course (tests/test_course.py,
    chapter 05 at 128 px), which CI runs anyway; here the other two methods."""
    r = learning_run(scenes, tmp_path, seed=0, epochs=epochs, method=method)
    assert r["jepa_knn_top1"] >= r["random_knn_top1"] + MARGIN, r
    assert r["jepa_knn_top1"] >= 2.5 / SPEC.classes, r  # and well above chance (measured >= 0.3)


if __name__ == "__main__":  # python -m tests.test_learning SEED... [options]
    import argparse
    import ast
    import dataclasses
    import tempfile

    parser = argparse.ArgumentParser(description="the learning runs of docs/experiments.md")
    parser.add_argument("seeds", type=int, nargs="+")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--methods", nargs="+", default=["cnn-jepa"])
    parser.add_argument("--arch", default="resnet10", help="e.g. resnet10-s16")
    parser.add_argument("--size", type=int, default=SPEC.size, help="image (and data) size")
    parser.add_argument("--scenes", default="scenes", choices=KINDS,
                        help="busy: the photograph-like generated set")
    parser.add_argument("--supervised", type=int, default=0, metavar="EPOCHS",
                        help="also train the same trunk with labels for EPOCHS and probe it")
    parser.add_argument("--set", nargs="+", default=[], metavar="FIELD=VALUE",
                        help="configuration fields, e.g. lr=0.001 ema=(0.996,1.0) "
                             "predictor_layers=1 mask_ratio=0.4")
    parser.add_argument("--per-class", type=int, default=SPEC.per_class)
    args = parser.parse_args()
    overrides = {}
    for item in args.set:
        key, _, value = item.partition("=")
        try:
            overrides[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            overrides[key] = value  # a plain word: strategy=multiblock
    spec = dataclasses.replace(SPEC, size=args.size, kind=args.scenes, per_class=args.per_class)
    with tempfile.TemporaryDirectory() as tmp:
        root = make_synthetic(Path(tmp) / "scenes", spec)
        for m in args.methods:
            for s in args.seeds:
                print(learning_run(root, Path(tmp) / f"{m}{s}", s, args.epochs, m, args.arch,
                                   args.size, overrides), flush=True)
        if args.supervised:
            t0 = time.perf_counter()
            cfg = config(args.seeds[0], args.supervised, "supervised", args.arch, args.size,
                         {"num_classes": spec.classes, "warmup_epochs": 0})
            last = train.pretrain(cfg, root, Path(tmp) / "sup", device="cpu")
            seconds = time.perf_counter() - t0
            losses = [r["loss"] for r in read_metrics(Path(tmp) / "sup")]
            sup = probes.evaluate(probes.encoder_from_checkpoint(last), "supervised", root,
                                  Path(tmp) / "sup" / "probe", image_size=args.size, k=K,
                                  epochs=1)
            print({"supervised_epochs": args.supervised, "knn_top1": sup["knn_top1"],
                   "final_loss": round(losses[-1], 3), "seconds": round(seconds, 1)},
                  flush=True)
    sys.exit(0)
