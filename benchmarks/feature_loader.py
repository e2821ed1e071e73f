"""Images per second of the feature extraction's loader, handing over normalised float32
images (the eval transform whole, in the workers) against uint8 pixels normalised as a batch
on the device (what ``features.extract`` does), in one run: the loader alone, no encoder.

    python benchmarks/feature_loader.py [--images 2048] [--size 224] [--batch-size 256]
        [--workers 8] [--rounds 3] [--device cpu|cuda] [--data-root DIR]

The two alternate ``--rounds`` times (the median is kept), so that a busy machine slows both
alike; each round reads the same images. Without --data-root, busy scenes of the size are
generated (in the cache folder). The numbers the two hand over are the same (tested in
tests/test_data.py); only where the float work runs, and how many bytes cross, differ.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset

from jepa_lite.data import folders
from jepa_lite.data.scenes import SyntheticSpec, ensure_synthetic
from jepa_lite.runtime import device_report, resolve_device


def images_per_s(dataset, batch_size: int, workers: int, device: torch.device,
                 normalize: bool) -> float:
    loader = DataLoader(dataset, batch_size, num_workers=workers,
                        pin_memory=device.type == "cuda")
    start = time.perf_counter()
    n = 0
    for images, _ in loader:
        images = images.to(device, non_blocking=True)
        if normalize:
            images = folders.eval_normalize(images)
        n += len(images)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return n / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=int, default=2048)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--workers", type=int, default=8)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--data-root", default=None)
    args = p.parse_args()
    device = resolve_device(args.device)
    per_class = -(-args.images // 10)
    root = args.data_root or ensure_synthetic(SyntheticSpec(
        classes=10, per_class=per_class, val_per_class=1, size=args.size, kind="busy"))
    whole = folders.image_folder(root, "train", folders.eval_transform(args.size))
    pixels = folders.image_folder(root, "train", folders.eval_pixels(args.size))
    n = min(args.images, len(whole))
    ways = {"float32 from the workers": (Subset(whole, range(n)), False),
            "uint8, normalised as a batch": (Subset(pixels, range(n)), True)}
    speeds = {name: [] for name in ways}
    for _ in range(args.rounds):
        for name, (dataset, normalize) in ways.items():
            speeds[name].append(images_per_s(dataset, args.batch_size, args.workers, device,
                                             normalize))
    print(f"{n} images at {args.size} px, batch {args.batch_size}, {args.workers} workers, "
          f"on {device_report(device)}; median of {args.rounds} rounds")
    first = None
    for name, values in speeds.items():
        v = float(np.median(values))
        first = first or v
        print(f"{name:30s}: {v:8.1f} images/s  x{v / first:.2f}")


if __name__ == "__main__":
    main()
