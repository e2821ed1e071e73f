"""The device pipeline on a GPU, against the same code on the CPU: nvJPEG against the CPU's
JPEG decoder, ``augment.apply`` on the GPU against the CPU (same images, same parameters),
every method's inputs from JPEG bytes and from a GPU cache, and the GPU time of augmenting
a micro-batch. Prints a short report; needs a GPU.

    python benchmarks/device_pipeline_check.py [--images 64] [--batch 128] [--size 224]
"""

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

import torch

from jepa_lite import distributed, methods
from jepa_lite.config import TrainConfig
from jepa_lite.course.bench import make_jpegs
from jepa_lite.data import augment, decoding, folders
from jepa_lite.data.pipeline import decode_on


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--size", type=int, default=224)
    args = ap.parse_args()
    gpu, cpu = torch.device("cuda"), torch.device("cpu")
    with tempfile.TemporaryDirectory() as tmp:
        root = make_jpegs(Path(tmp), args.images)
        folder = folders.image_folder(root, "train")
        paths = [p for p, _ in folder.samples]
        raw = [decoding.read_for_device(p)[0] for p in paths]
        on_gpu = decode_on(raw, gpu)
        on_cpu = [decoding.decode(p) for p in paths]
        diff = torch.cat([(g.cpu().int() - c.int()).abs().flatten()
                          for g, c in zip(on_gpu, on_cpu)]).float()
        print(f"nvJPEG vs CPU decode, {len(paths)} JPEGs 500x375: mean |diff| "
              f"{diff.mean():.3f}, max {diff.max():.0f} grey levels, "
              f"{(diff > 0).float().mean():.1%} of values differ")
        recipe = augment.ViewRecipe(jitter=(0.8, 0.8, 0.8, 0.2), solarize_p=0.2)
        rng = random.Random(0)
        images = [on_cpu[i % len(on_cpu)] for i in range(args.batch)]
        draws = augment.ViewParams.of([augment.draw(recipe, *im.shape[1:], rng) for im in images])
        size = (args.size, args.size)
        a = augment.apply([im.to(gpu) for im in images], draws, size, gpu)
        b = augment.apply(images, draws, size, cpu)
        err = (a.cpu() - b).abs()
        print(f"augment.apply GPU vs CPU, SimCLR's recipe, {args.batch} images at {args.size} "
              f"px: max |diff| {err.max():.2e}, mean {err.mean():.2e} (normalised units)")
        stacked = torch.stack([im[:, :256, :256] for im in images]).to(gpu)
        square = augment.ViewParams.of([augment.draw(recipe, 256, 256, rng) for _ in images])
        times, launch = [], []
        for _ in range(12):
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            augment.apply(stacked, square, size, gpu)
            launch.append(time.perf_counter() - t0)
            torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        print(f"one view of {args.batch} images on the GPU: {1e3 * statistics.median(times):.1f}"
              f" ms (of which the CPU's launching {1e3 * statistics.median(launch):.1f} ms)")
        for name in methods.METHODS:
            cfg = TrainConfig(method=name, arch="resnet18", image_size=args.size)
            views = methods.get(name).views(cfg)
            cache = decoding.DecodedCache(folder, gpu)
            for how, ds in (("jpeg bytes", views.dataset(folder, gpu)),
                            ("GPU cache", views.dataset(folder, gpu, cache))):
                batch = views.collate([ds[distributed.Draw(i, i, 1)] for i in range(8)])
                out = views.inputs(batch, gpu)
                shapes = {k: tuple(t.shape) for k, t in out.items()}
                assert all(t.device.type == gpu.type for t in out.values()), name
                first = next(iter(out.values()))  # the images, or the first view
                assert first.is_contiguous(memory_format=torch.channels_last), name
                print(f"{name:8s} {how:10s}: inputs {shapes}")


if __name__ == "__main__":
    main()
