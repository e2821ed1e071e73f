"""Where the time of one CNN-JEPA step goes, next to a supervised step (torch.profiler).

    python benchmarks/step_profile.py [--device cuda] [--arch resnet50] [--image-size 224]
        [--batch-size 128] [--precision bf16] [--rows 25]

Runs ``jepa_lite.course.bench``'s steps (3 warm-up steps, then 3 profiled ones) and prints, for
each, the operators that took the most device time (self time; CPU time on a CPU), and the
time of the step's parts measured alone: the context encoder forward + backward, the target
encoder forward, the optimizer and the EMA update.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.profiler import ProfilerActivity, profile

from jepa_lite.course import bench
from jepa_lite.runtime import autocast, resolve_device


def timed(fn, device, repeats: int = 5) -> float:
    """Median milliseconds of ``fn()``."""
    out = []
    for _ in range(repeats + 2):
        bench.sync(device)
        t0 = time.perf_counter()
        fn()
        bench.sync(device)
        out.append(time.perf_counter() - t0)
    return sorted(out[2:])[len(out[2:]) // 2] * 1e3


def parts(step: bench.Step) -> dict[str, float]:
    m, dev, prec = step.model, step.device, step.precision
    images, mask = step.inputs

    def context():
        with autocast(dev, prec):
            out = m.context_encoder(images, mask)
        out.float().square().mean().backward()

    def target():
        with torch.no_grad(), autocast(dev, prec):
            m.target_encoder(images)

    return {"context encoder forward + backward": timed(context, dev),
            "target encoder forward": timed(target, dev),
            "optimizer step": timed(step.opt.step, dev),
            "EMA update": timed(lambda: m.update_target(0.996), dev),
            "whole step": timed(step.run, dev)}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--arch", default="resnet50")
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--precision", default="bf16", choices=["fp32", "bf16", "fp16"])
    p.add_argument("--rows", type=int, default=25)
    a = p.parse_args(argv)
    dev = resolve_device(a.device)
    torch.backends.cudnn.benchmark = True
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if dev.type == "cuda" else [])
    key = "self_cuda_time_total" if dev.type == "cuda" else "self_cpu_time_total"
    for kind in ("supervised", "cnn-jepa"):
        step = bench.Step(kind, a.arch, a.image_size, a.batch_size, dev, a.precision)
        for _ in range(3):
            step.run()
        bench.sync(dev)
        with profile(activities=acts) as prof:
            for _ in range(3):
                step.run()
            bench.sync(dev)
        print(f"== {kind}: {a.arch}, {a.image_size} px, batch {a.batch_size}, {a.precision}, "
              f"{dev} (3 steps)")
        print(prof.key_averages().table(sort_by=key, row_limit=a.rows, max_name_column_width=60))
        if kind == "cnn-jepa":
            for name, ms in parts(step).items():
                print(f"  {name}: {ms:.1f} ms")
        else:
            print(f"  whole step: {timed(step.run, dev):.1f} ms")
        del step
        if dev.type == "cuda":
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
