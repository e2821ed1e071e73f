"""What it costs a data-loader worker to hand over a micro-batch as one tensor per image
against one packed tensor (every tensor that leaves a worker is a shared-memory segment and
a file descriptor): why ``pipeline.Collate`` packs JPEG bytes and images of many sizes.

    python benchmarks/loader_transfer.py [--workers 2] [--bytes 110000] [--batch 128]
"""

import argparse
import time

import torch
from torch.utils.data import DataLoader, Dataset


class Blobs(Dataset):
    def __init__(self, n: int, size: int):
        self.n, self.size = n, size

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> torch.Tensor:
        return torch.full((self.size,), i % 256, dtype=torch.uint8)


def as_list(batch):
    return batch


def packed(batch):
    return torch.cat(batch)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--bytes", type=int, default=110_000, help="per image (a JPEG's size)")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--batches", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    data = Blobs(args.batch * args.batches, args.bytes)
    for _ in range(args.rounds):  # alternated, so that a busy machine slows both alike
        for name, collate in (("one tensor per image", as_list), ("one packed tensor", packed)):
            loader = DataLoader(data, batch_size=args.batch, num_workers=args.workers,
                                collate_fn=collate, prefetch_factor=4)
            it = iter(loader)
            next(it)  # the workers' start is not timed
            t0, n = time.perf_counter(), 0
            for _ in it:
                n += 1
            print(f"{name:22s}: {(time.perf_counter() - t0) / n * 1e3:6.1f} ms per batch of "
                  f"{args.batch} x {args.bytes} bytes, {args.workers} workers")


if __name__ == "__main__":
    main()
