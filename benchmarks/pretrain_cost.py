"""Memory and speed of one CNN-JEPA pretraining step, extrapolated to the paper's batch.

    python benchmarks/pretrain_cost.py [--arch resnet50] [--image-size 224]
        [--batch-sizes 4 8] [--device auto]

Each batch size runs in a fresh process (so peak figures do not mix). Peak memory is
``torch.cuda.max_memory_allocated`` on a GPU (bf16 or fp16 autocast, channels_last, as in
training) and the process's peak resident memory on a CPU (fp32: about twice a GPU's
activation memory). Memory grows linearly with the batch, so two batch sizes give the cost
per image and the fixed cost (weights, AdamW state, the runtime), and from them the peak at
batch 128 (the paper's per GPU) and 512 (the paper's total).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch

from jepa_lite import masking, train
from jepa_lite.runtime import device_report, grad_scaler, resolve_device, resolve_precision


def one_run(arch: str, image_size: int, batch: int, device: str) -> dict:
    """Two training steps at ``batch``; peak memory (bytes) and the second step's seconds."""
    dev = resolve_device(device)
    torch.manual_seed(0)
    cfg = train.TrainConfig(arch=arch, image_size=image_size, batch_size=batch)
    model = train.build_model(cfg).to(dev)
    images = torch.randn(batch, 3, image_size, image_size, device=dev)
    if dev.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
        torch.cuda.reset_peak_memory_stats(dev)
    masks = masking.sample_masks(batch, masking.grid_size(image_size)).to(dev)
    opt = train.make_optimizer(model, cfg, dev)
    precision = resolve_precision(dev)
    scaler = grad_scaler(dev, precision)
    seconds = 0.0
    for _ in range(2):  # the first step allocates AdamW's state and warms up kernels
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        t0 = time.perf_counter()
        loss, _ = train.train_step(model, opt, scaler, [(images, masks)], 1, dev, precision,
                                   0.996)
        loss.item()
        seconds = time.perf_counter() - t0
    if dev.type == "cuda":
        peak = torch.cuda.max_memory_allocated(dev)
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    return {"batch": batch, "peak_bytes": peak, "step_seconds": seconds,
            "device": device_report(dev)}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", default="resnet50")
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--batch-sizes", type=int, nargs=2, default=(4, 8))
    p.add_argument("--device", default="auto")
    p.add_argument("--child", type=int, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child:
        print(json.dumps(one_run(a.arch, a.image_size, a.child, a.device)))
        return
    runs = []
    for b in a.batch_sizes:
        out = subprocess.run([sys.executable, __file__, "--arch", a.arch, "--image-size",
                              str(a.image_size), "--device", a.device, "--child", str(b)],
                             check=True, capture_output=True, text=True).stdout
        runs.append(json.loads(out.strip().splitlines()[-1]))
    (b1, m1), (b2, m2) = [(r["batch"], r["peak_bytes"]) for r in runs]
    per_image = (m2 - m1) / (b2 - b1)
    fixed = m1 - per_image * b1
    gib = 2**30
    print(f"{a.arch} at {a.image_size} px on {runs[0]['device']}")
    for r in runs:
        print(f"  batch {r['batch']:4d}: peak {r['peak_bytes'] / gib:6.2f} GiB, step "
              f"{r['step_seconds']:.3f} s, {r['batch'] / r['step_seconds']:.1f} images/s")
    if per_image <= 0:
        print(f"  peak memory did not grow from batch {b1} to {b2} (noise): pass larger "
              f"--batch-sizes to estimate the cost per image")
    else:
        print(f"  per image {per_image / 2**20:.1f} MiB, fixed {fixed / gib:.2f} GiB")
        for b in (128, 512):
            print(f"  estimated peak at batch {b}: {(fixed + per_image * b) / gib:.1f} GiB")
    ips = runs[-1]["batch"] / runs[-1]["step_seconds"]
    for name, n, epochs in (("ImageNet-100", 126_689, 200), ("ImageNet-1k", 1_281_167, 100)):
        print(f"  {name} x {epochs} epochs at {ips:.1f} images/s: "
              f"{n * epochs / ips / 3600:.1f} h (data loading not included)")


if __name__ == "__main__":
    main()
