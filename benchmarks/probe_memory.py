"""Peak host memory and time of the probes on a feature bank of ImageNet-1k's shape.

    python benchmarks/probe_memory.py [--sizes 50000 100000 200000] [--dim 2048]
        [--classes 1000] [--val 10000] [--epochs 1] [--device cpu]

For every bank size, a fresh process generates a float16 bank of ``size x dim`` features
(class centres plus noise), written block by block to a memory-mapped file as
``jepa-lite probe`` writes extracted features, and a validation bank; then runs the k-NN
probe (k = 200, every validation image a query) and the linear probe (official and honest,
``--epochs`` epochs) exactly as ``jepa-lite probe`` does. It reports the peak resident
memory (VmHWM: file pages of the memory map included) and the peak anonymous memory
(sampled every 10 ms), fits a line through them against the bank size and extrapolates to
ImageNet-1k's 1,281,167 training images. Timings are of this machine.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

from jepa_lite.eval import features, probes

IMAGENET_1K = 1_281_167


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def _blocks(n: int, dim: int, classes: int, seed: int, block: int = 16384):
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(0).normal(size=(classes, dim)).astype(np.float32)
    for s in range(0, n, block):
        y = rng.integers(0, classes, min(block, n - s))
        yield np.maximum(centres[y] + 2 * rng.normal(size=(len(y), dim)), 0), y


def one_size(n: int, dim: int, classes: int, val: int, epochs: int, device: str) -> dict:
    peak_anon = [0]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak_anon[0] = max(peak_anon[0], _status("RssAnon"))
            time.sleep(0.01)

    threading.Thread(target=sample, daemon=True).start()
    names = [f"c{i}" for i in range(classes)]
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        bank = features.write_bank(Path(tmp) / "train", _blocks(n, dim, classes, 1), n, dim, names)
        vbank = features.write_bank(Path(tmp) / "val", _blocks(val, dim, classes, 2), val, dim,
                                    names)
        t1 = time.perf_counter()
        scores = probes.knn_classify(bank.features, bank.labels, vbank.features, classes,
                                     device=device)
        knn = probes.topk_accuracy(scores, vbank.labels)[1]
        del scores
        t2 = time.perf_counter()
        lin = probes.linear_probe(bank.features, bank.labels, vbank.features, vbank.labels,
                                  classes, epochs, batch_size=256, device=device)
        t3 = time.perf_counter()
    done.set()
    return {"bank": n, "dim": dim, "val": val, "peak_rss": _status("VmHWM"),
            "peak_anon": peak_anon[0], "write_s": t1 - t0, "knn_s": t2 - t1,
            "linear_s": t3 - t2, "knn_top1": knn, "linear_top1": lin["linear_top1"],
            "bank_bytes": n * dim * 2, "threads": torch.get_num_threads()}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[50_000, 100_000, 200_000])
    p.add_argument("--dim", type=int, default=2048)
    p.add_argument("--classes", type=int, default=1000)
    p.add_argument("--val", type=int, default=10_000)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--child", type=int, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child:
        print(json.dumps(one_size(a.child, a.dim, a.classes, a.val, a.epochs, a.device)))
        return
    runs = []
    for n in a.sizes:
        out = subprocess.run([sys.executable, __file__, "--child", str(n), "--dim", str(a.dim),
                              "--classes", str(a.classes), "--val", str(a.val), "--epochs",
                              str(a.epochs), "--device", a.device],
                             check=True, capture_output=True, text=True).stdout
        runs.append(json.loads(out.strip().splitlines()[-1]))
    gib = 2**30
    print(f"feature banks of {a.dim}-d float16 rows, {a.classes} classes, {a.val} validation "
          f"rows (all k-NN queries), linear probe {a.epochs} epoch(s), device {a.device}, "
          f"{runs[0]['threads']} threads")
    print("| bank rows | bank file | peak RSS | peak anonymous | write | k-NN | linear (both) |")
    print("|---|---|---|---|---|---|---|")
    for r in runs:
        print(f"| {r['bank']:,} | {r['bank_bytes'] / gib:.2f} GiB | {r['peak_rss'] / gib:.2f} GiB"
              f" | {r['peak_anon'] / gib:.2f} GiB | {r['write_s']:.0f} s | {r['knn_s']:.0f} s | "
              f"{r['linear_s']:.0f} s |")
    if len(runs) >= 2:
        x = np.array([r["bank"] for r in runs], dtype=float)
        for key in ("peak_rss", "peak_anon"):
            slope, icept = np.polyfit(x, [r[key] for r in runs], 1)
            print(f"{key}: {slope:.0f} bytes per bank row + {icept / gib:.2f} GiB; at "
                  f"{IMAGENET_1K:,} rows (ImageNet-1k): {(icept + slope * IMAGENET_1K) / gib:.2f}"
                  f" GiB")


if __name__ == "__main__":
    main()
