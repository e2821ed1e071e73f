"""Seconds per training step of the five methods, side by side on one device.

    python benchmarks/methods_step.py [--arch resnet50] [--image-size 224] [--batch-size 32]
        [--micro-batch N] [--steps 5] [--device cpu|cuda] [--data-root DIR]

Every method's model is built first; then steps go round robin (CNN-JEPA, C-JEPA, SimCLR,
BYOL, VICReg, CNN-JEPA, ...) on the same real images, each method with its own views, masks
and optimizer (``jepa_lite.course.compare.step_seconds``), so that a busy machine slows all of them
alike; the median per method is kept. Printed: seconds per step and the ratio to CNN-JEPA's,
next to the paper's ratio of hours per epoch (4 GPUs, ImageNet-100). Without --data-root a
generated data set of the image size is made (in the cache folder).

With ``--runs DIR`` (``DIR/<method>/``: a ``jepa-lite pretrain`` run of each method at the
same encoder, size and batch), a second table: each method's step alone in images/s beside
the last epoch of its run, fed by its loader, and their ratio (1.00: the loader costs the
step nothing).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from jepa_lite import methods, train
from jepa_lite.checkpoint import read_metrics
from jepa_lite.course import compare, report
from jepa_lite.data.scenes import SyntheticSpec, ensure_synthetic
from jepa_lite.runtime import device_report, resolve_device


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", default="resnet50")
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--micro-batch", type=int, default=None)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--data-root", default=None)
    p.add_argument("--runs", default=None,
                   help="a folder of pretrain runs, one per method (DIR/<method>/)")
    args = p.parse_args()
    device = resolve_device(args.device)
    root = args.data_root or ensure_synthetic(SyntheticSpec(
        classes=4, per_class=max(2, args.batch_size // 4 + 1), val_per_class=2,
        size=args.image_size))
    configs = {methods.get(m).label: train.TrainConfig(
        method=m, arch=args.arch, image_size=args.image_size, batch_size=args.batch_size,
        micro_batch=args.micro_batch) for m in methods.compared(args.arch)}
    seconds = compare.step_seconds(configs, root, device, steps=args.steps)
    paper = compare.paper_hours_per_epoch(report.paper_results())
    print(f"{args.arch} at {args.image_size} px, batch {args.batch_size}, {args.steps} steps "
          f"each, on {device_report(device)}; torch {torch.__version__}")
    print("| method | s / step | x CNN-JEPA | paper h / epoch, x CNN-JEPA |")
    print("|---|---|---|---|")
    for name, s in seconds.items():
        ref = f"{paper[name] / paper['CNN-JEPA']:.2f}" if name in paper else "-"
        print(f"| {name} | {s:.3f} | {s / seconds['CNN-JEPA']:.2f} | {ref} |")
    if args.runs:
        print()
        print(fed_table(Path(args.runs), seconds, args))


def fed_table(runs: Path, seconds: dict[str, float], args) -> str:
    """Markdown: each method's step alone against its run's last epoch (with its loader)."""
    rows = ["| method | step alone, images/s | its run with its loader, images/s | epoch "
            "| with loader / alone |", "|---|---|---|---|---|"]
    for m in methods.compared(args.arch):
        label, folder = methods.get(m).label, runs / m
        alone = args.batch_size / seconds[label]
        history = read_metrics(folder)
        if not history:
            rows.append(f"| {label} | {alone:.1f} | no run in {folder} | - | - |")
            continue
        config = json.loads((folder / "config.json").read_text())
        ran = (config["arch"], config["image_size"], config["batch_size"])
        if ran != (args.arch, args.image_size, args.batch_size):
            raise SystemExit(f"the run in {folder} trained {ran[0]} at {ran[1]} px, batch "
                             f"{ran[2]}; these steps are {args.arch} at {args.image_size} px, "
                             f"batch {args.batch_size}: run both alike")
        last = history[-1]
        fed = last["images_per_s"]
        rows.append(f"| {label} | {alone:.1f} | {fed:.1f} | {last['epoch']} of {len(history)} "
                    f"| {fed / alone:.2f} |")
    return "\n".join(rows)


if __name__ == "__main__":
    main()
