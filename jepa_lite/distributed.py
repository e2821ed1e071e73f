"""One process or many: torchrun's environment, the micro-batch sampler, seeds, collectives.

Started by ``torchrun --nproc_per_node N -m jepa_lite.pretrain ...``, every process finds
``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE`` in its environment and joins the process group
(NCCL on GPUs, gloo on CPUs). Started plainly, it is rank 0 of a world of one, and every
function here does the one-process thing, so the training loop has no second code path.

The run does not depend on the world size. Each epoch has one global permutation of the
images; step ``s`` takes the next ``batch_size`` of them and splits them into micro-batches
of ``micro_batch`` images (the BatchNorm group); micro-batch ``j`` holds the same images,
augmentations and masks whether one process accumulates it or rank ``j`` computes it, because
every random draw is seeded by (seed, epoch, step, micro-batch, position), never by rank.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import NamedTuple

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data.distributed import DistributedSampler

from jepa_lite.errors import UsageError


# --------------------------------------------------------------------------- the world
def launched() -> bool:
    """True in a process started by torchrun (it sets ``WORLD_SIZE`` and ``RANK``)."""
    return "WORLD_SIZE" in os.environ and "RANK" in os.environ


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def is_main() -> bool:
    """Rank 0 alone writes logs, metrics and checkpoints."""
    return rank() == 0


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", 0))


def setup(device: torch.device) -> torch.device:
    """Join torchrun's process group if this process was started by it; returns the device
    of this rank (``cuda:LOCAL_RANK`` on GPUs). A plain process is returned ``device``."""
    if not launched() or dist.is_initialized():
        if dist.is_initialized() and device.type == "cuda":
            return torch.device("cuda", local_rank())
        return device
    if device.type == "cuda":
        device = torch.device("cuda", local_rank())
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend, timeout=timedelta(minutes=30))
    return device


def teardown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """The sum over ranks (a new tensor; the input is untouched). Identity in one process."""
    tensor = tensor.clone()
    if dist.is_initialized():
        dist.all_reduce(tensor)
    return tensor


def all_reduce_max(tensor: torch.Tensor) -> torch.Tensor:
    """The largest value over ranks (a new tensor). Identity in one process."""
    tensor = tensor.clone()
    if dist.is_initialized():
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return tensor


class _SumOverRanks(torch.autograd.Function):
    """``all_reduce(SUM)`` with its gradient: the backward of a sum over ranks is the sum over
    ranks of the gradients."""

    @staticmethod
    def forward(ctx, tensor):
        tensor = tensor.clone()
        dist.all_reduce(tensor)
        return tensor

    @staticmethod
    def backward(ctx, grad):
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


def all_gather_with_grad(tensor: torch.Tensor) -> torch.Tensor:
    """``[world, *tensor.shape]``: every rank's tensor, with a gradient that reaches each
    rank's own input from every rank's use of it.

    Each rank writes its tensor into its own slot of a zero ``[world, ...]`` tensor and the
    slots are summed over ranks (:class:`_SumOverRanks`); the backward of that sum hands
    rank r the gradient of all ranks with respect to slot r. (torch's differentiable
    all_gather needs all-to-all, which gloo lacks.) Identity with a new axis in one process.
    """
    if not dist.is_initialized():
        return tensor.unsqueeze(0)
    slots = [torch.zeros_like(tensor)] * dist.get_world_size()
    slots[dist.get_rank()] = tensor
    return _SumOverRanks.apply(torch.stack(slots))


# --------------------------------------------------------------------------- seeds
def mix(*numbers: int) -> int:
    """One 63-bit seed from several integers (numpy's SeedSequence: well spread, so
    (seed, epoch) pairs never collide the way ``seed + epoch`` does)."""
    return int(np.random.SeedSequence([int(n) for n in numbers]).generate_state(
        1, dtype=np.uint64)[0] >> 1)


# streams of random draws, kept apart: the permutation, each image's augmentation, the masks
PERMUTATION, AUGMENT, MASKS = 1, 2, 3


class Draw(NamedTuple):
    """One image of one micro-batch: what to load and the seeds of its random draws."""

    index: int  # into the data set
    seed: int  # of this image's augmentation
    batch_seed: int  # of the micro-batch's masks (the same for all its images)


class MicroBatchSampler(DistributedSampler):
    """This rank's micro-batches of one epoch, as lists of :class:`Draw`; a ``batch_sampler``.

    A DistributedSampler (``set_epoch``, one permutation per epoch from the seed), except for
    how the permutation is split: torch's sampler deals images to ranks in turn
    (``indices[rank::world]``), which makes a micro-batch's images depend on the world size.
    Here step ``s`` is ``perm[s * batch_size:(s + 1) * batch_size]``, micro-batch ``j`` is its
    ``j``-th slice of ``micro_batch`` images, and rank ``r`` computes micro-batches
    ``r * A ... r * A + A - 1`` (``A`` = accumulation steps). The last partial batch is dropped.
    """

    def __init__(self, dataset, batch_size: int, micro_batch: int, seed: int,
                 num_replicas: int = 1, rank: int = 0):
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True,
                         seed=seed, drop_last=True)
        self.batch_size, self.micro_batch = batch_size, micro_batch
        self.accumulation = check_batch(batch_size, micro_batch, num_replicas)
        self.steps = len(dataset) // batch_size
        self.start_step = 0

    def set_epoch(self, epoch: int, start_step: int = 0) -> None:
        """Like DistributedSampler's; ``start_step`` skips the steps a checkpoint already did."""
        super().set_epoch(epoch)
        self.start_step = start_step

    def __iter__(self):
        g = torch.Generator().manual_seed(mix(self.seed, PERMUTATION, self.epoch))
        perm = torch.randperm(len(self.dataset), generator=g).tolist()
        m, a = self.micro_batch, self.accumulation
        for step in range(self.start_step, self.steps):
            for j in range(self.rank * a, (self.rank + 1) * a):
                start = step * self.batch_size + j * m
                key = (self.seed, self.epoch, step, j)
                yield [Draw(perm[start + p], mix(*key, AUGMENT, p), mix(*key, MASKS))
                       for p in range(m)]

    def __len__(self) -> int:
        return (self.steps - self.start_step) * self.accumulation


def check_batch(batch_size: int, micro_batch: int, world: int) -> int:
    """Accumulation steps per rank for a global batch; a clear error when it does not split."""
    if batch_size < 1 or micro_batch < 1:
        raise UsageError(f"--batch-size {batch_size} and --micro-batch {micro_batch} must be "
                         f"positive")
    if batch_size % (world * micro_batch):
        fits = [m for m in range(micro_batch, 0, -1) if batch_size % (world * m) == 0][:1]
        hint = f"--micro-batch {fits[0]}" if fits else "another --batch-size"
        raise UsageError(
            f"the global batch {batch_size} does not split into {world} process(es) x "
            f"micro-batches of {micro_batch} (it must be a multiple of {world * micro_batch}): "
            f"use {hint}, a --batch-size that is a multiple of {world * micro_batch}, or "
            f"another number of processes")
    return batch_size // (world * micro_batch)
