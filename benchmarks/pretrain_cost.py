"""Memory and speed of one CNN-JEPA pretraining step, extrapolated to the paper's batch.

    python benchmarks/pretrain_cost.py [--arch resnet50] [--image-size 224]
        [--batch-sizes 4 8] [--device auto] [--precision auto]

Each batch size runs in a fresh process (so peak figures do not mix). Peak memory is
``torch.cuda.max_memory_allocated`` on a GPU (bf16 or fp16 autocast, channels_last, as in
training) and the process's peak resident memory on a CPU. Memory grows linearly with the
micro-batch (a global batch beyond it is gradient accumulation), so two batch sizes give the
cost per image and the fixed cost, and from them the peak at micro-batch 32 and 128 (the
paper's per GPU). Also measured: the bytes autograd saves for backward per image, which do
not depend on the device (``--precision fp16`` on a CPU gives a T4's activation memory),
and from them a GPU estimate.
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
from jepa_lite.config import TrainConfig
from jepa_lite.course.bench import saved_bytes
from jepa_lite.data.pipeline import to_device
from jepa_lite.runtime import (
    autocast,
    device_report,
    resolve_device,
)


def saved_for_backward(model, images, masks, dev, precision: str) -> int:
    """Bytes autograd keeps for backward in one forward pass, parameters excluded
    (``jepa_lite.course.bench.saved_bytes``): the activation memory of a step, whatever the
    device."""

    def forward():
        with autocast(dev, precision):
            return model(images, masks)[0]

    return saved_bytes(forward, model.parameters())


def one_run(arch: str, image_size: int, batch: int, device: str, precision: str) -> dict:
    """Two training steps at ``batch``; peak memory (bytes), the second step's seconds and
    the bytes saved for backward."""
    dev = resolve_device(device)
    cfg = TrainConfig(arch=arch, image_size=image_size, batch_size=batch, precision=precision)
    run = train.build(cfg, dev)  # as training builds it: channels_last on a GPU, seeded
    model = run.model
    images = to_device(torch.randn(batch, 3, image_size, image_size), dev)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    masks = masking.sample_masks(batch, masking.grid_of(image_size, arch)).to(dev)
    precision = run.precision
    seconds = 0.0
    for _ in range(2):  # the first step allocates AdamW's state and warms up kernels
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        t0 = time.perf_counter()
        loss, _ = train.train_step(run, [{"images": images, "mask": masks}], 1, 0.996)
        loss.item()
        seconds = time.perf_counter() - t0
    if dev.type == "cuda":
        peak = torch.cuda.max_memory_allocated(dev)
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    trainable = sum(p.numel() for p in model.trainable_parameters())
    frozen = sum(p.numel() for p in model.target_encoder.parameters())
    return {"batch": batch, "peak_bytes": peak, "step_seconds": seconds,
            "device": device_report(dev), "precision": precision,
            "saved_bytes": saved_for_backward(model, images, masks, dev, precision),
            # fp32 weights, gradients and AdamW's two moments; the EMA target's weights
            "static_bytes": trainable * 16 + frozen * 4}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", default="resnet50")
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--batch-sizes", type=int, nargs=2, default=(4, 8))
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"],
                   help="auto: as training picks it (fp32 on a CPU)")
    p.add_argument("--child", type=int, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child:
        print(json.dumps(one_run(a.arch, a.image_size, a.child, a.device, a.precision)))
        return
    runs = []
    for b in a.batch_sizes:
        out = subprocess.run([sys.executable, __file__, "--arch", a.arch, "--image-size",
                              str(a.image_size), "--device", a.device, "--precision",
                              a.precision, "--child", str(b)],
                             check=True, capture_output=True, text=True).stdout
        runs.append(json.loads(out.strip().splitlines()[-1]))
    (b1, m1), (b2, m2) = [(r["batch"], r["peak_bytes"]) for r in runs]
    per_image = (m2 - m1) / (b2 - b1)
    fixed = m1 - per_image * b1
    saved = (runs[1]["saved_bytes"] - runs[0]["saved_bytes"]) / (b2 - b1)
    gib = 2**30
    print(f"{a.arch} at {a.image_size} px on {runs[0]['device']}, {runs[0]['precision']}")
    for r in runs:
        print(f"  batch {r['batch']:4d}: peak {r['peak_bytes'] / gib:6.2f} GiB, step "
              f"{r['step_seconds']:.3f} s, {r['batch'] / r['step_seconds']:.1f} images/s")
    if per_image <= 0:
        print(f"  peak memory did not grow from batch {b1} to {b2} (noise): pass larger "
              f"--batch-sizes to estimate the cost per image")
    else:
        print(f"  per image {per_image / 2**20:.1f} MiB, fixed {fixed / gib:.2f} GiB")
        for b in (32, 128):
            print(f"  estimated peak at micro-batch {b}: {(fixed + per_image * b) / gib:.1f} GiB")
    # A GPU's memory is the activations autograd saves, per image, plus the weights,
    # gradients and AdamW state; allocator slack and cuDNN workspaces come on top.
    print(f"  saved for backward: {saved / 2**20:.1f} MiB per image; weights, gradients and "
          f"AdamW state {runs[0]['static_bytes'] / gib:.2f} GiB")
    for b in (32, 64, 128):
        print(f"  GPU estimate at micro-batch {b} in {runs[0]['precision']}: "
              f"{(runs[0]['static_bytes'] + saved * b) / gib:.1f} GiB + allocator slack")
    ips = runs[-1]["batch"] / runs[-1]["step_seconds"]
    for name, n, epochs in (("ImageNet-100", 126_689, 200), ("ImageNet-1k", 1_281_167, 100)):
        print(f"  {name} x {epochs} epochs at {ips:.1f} images/s: "
              f"{n * epochs / ips / 3600:.1f} h (data loading not included)")


if __name__ == "__main__":
    main()
