"""One sparse BatchNorm layer, forward + backward, in several eager formulations, against
torch's own BatchNorm2d (dense) on the same input: which formulation to ship.

    python benchmarks/sparse_bn_variants.py [--device cuda] [--batch-size 128]

Shapes are ResNet-50's at 224 px (bf16, channels_last on a GPU). Each variant's output and
input gradient are checked against the shipped ``SparseBatchNormFunction`` first.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from jepa_lite.encoders import sparse
from jepa_lite.masking import sample_masks

SHAPES = [(256, 56), (512, 28), (1024, 14), (2048, 7), (64, 112)]


def moments_sum_norm(x, keep):
    """No float32 copy: the reductions cast as they read."""
    n = keep.sum(dtype=torch.float32)
    s1 = x.sum((0, 2, 3), dtype=torch.float32)
    s2 = torch.linalg.vector_norm(x, 2, (0, 2, 3), dtype=torch.float32).square()
    mean = s1 / n
    return n, mean, (s2 - s1 * mean).clamp_min(0.0)


def moments_bn_stats(x, keep):
    """torch's BatchNorm statistics over all positions (one Welford pass), then the zeros
    taken out (CUDA only: torch.batch_norm_stats)."""
    total = x.numel() // x.shape[1]
    mean_all, invstd_all = torch.batch_norm_stats(x, 1e-30)
    var_all = invstd_all.pow(-2)
    n = keep.sum(dtype=torch.float32)
    mean = mean_all * (total / n)
    return n, mean, (total * var_all - mean.square() * (n * (total - n) / total)).clamp_min(0)


class CastBackward(sparse.SparseBatchNormFunction):
    """The shipped function with the backward's per-channel terms in the input's dtype."""

    @staticmethod
    def backward(ctx, dy):
        x, keep, n, mean, var, weight = ctx.saved_tensors
        g = dy * keep
        invstd = torch.rsqrt(var + ctx.eps)
        dx, dweight, dbias = torch.ops.aten.native_batch_norm_backward(
            g, x, weight, mean, var, mean, invstd, False, ctx.eps, [True, True, True])
        a = weight * invstd / n.clamp_min(1.0)
        scale = (a * invstd * dweight)[:, None, None].to(x.dtype)
        shift = (a * (dbias - mean * invstd * dweight))[:, None, None].to(x.dtype)
        dx.addcmul_(x, scale, value=-1.0).addcmul_(keep, shift, value=-1.0)
        return dx, None, None, None, None, dweight, dbias, None


class CudaKernels(torch.autograd.Function):
    """torch's SyncBatchNorm kernels (CUDA only) with the visible count."""

    @staticmethod
    def forward(ctx, x, keep, n, mean, m2, weight, bias, eps):
        invstd = torch.rsqrt(m2 / n + eps)
        y = torch.batch_norm_elemt(x, weight, bias, mean, invstd, eps)
        y.mul_(keep)
        ctx.save_for_backward(x, keep, n, mean, invstd, weight)
        return y

    @staticmethod
    def backward(ctx, dy):
        x, keep, n, mean, invstd, weight = ctx.saved_tensors
        g = dy * keep
        sum_dy, sum_dy_xmu, dweight, dbias = torch.batch_norm_backward_reduce(
            g, x, mean, invstd, weight, True, True, True)
        dx = torch.batch_norm_backward_elemt(g, x, mean, invstd, weight, sum_dy, sum_dy_xmu,
                                             n.round().int().reshape(1))
        # the masked positions hold terms through mean and var; the conv's mask zeroes them
        return dx.mul_(keep), None, None, None, None, dweight, dbias, None


def run_variant(fn, moments, x, keep, weight, bias):
    with torch.no_grad():
        n, mean, m2 = moments(x, keep)
    return fn.apply(x, keep, n, mean, m2, weight, bias, 1e-5)


def timed(f, device, repeats=20) -> float:
    for _ in range(3):
        f()
    torch.cuda.synchronize() if device.type == "cuda" else None
    t0 = time.perf_counter()
    for _ in range(repeats):
        f()
    torch.cuda.synchronize() if device.type == "cuda" else None
    return (time.perf_counter() - t0) / repeats * 1e3


def measure(c, s, batch, dev, dtype, variants) -> str:
    """One table row: the dense layer and every variant at channels c, side s."""
    g = torch.Generator().manual_seed(c)
    state = sparse.MaskState()
    state.set(sample_masks(batch, (7, 7), generator=g).to(dev), dtype)
    x = torch.randn(batch, c, s, s, generator=g).to(dev, dtype)
    x = x.contiguous(memory_format=torch.channels_last) if dev.type == "cuda" else x
    keep = state.at(x)
    x = (x * keep).requires_grad_()
    dy = torch.randn(x.shape, generator=g).to(dev, dtype).contiguous(
        memory_format=torch.channels_last if dev.type == "cuda" else torch.contiguous_format)
    weight = torch.rand(c, device=dev).requires_grad_()
    bias = torch.rand(c, device=dev).requires_grad_()
    ref_y = run_variant(sparse.SparseBatchNormFunction, sparse.visible_moments, x, keep,
                        weight, bias)
    ref_dx, = torch.autograd.grad(ref_y, x, dy)
    row = []
    for fn, moments in variants.values():
        y = run_variant(fn, moments, x, keep, weight, bias)
        dx, = torch.autograd.grad(y, x, dy)
        ey = ((y - ref_y).float().norm() / ref_y.float().norm()).item()
        ex = ((dx * keep - ref_dx).float().norm() / ref_dx.float().norm()).item()

        def step(fn=fn, moments=moments):
            out = run_variant(fn, moments, x, keep, weight, bias)
            torch.autograd.grad(out, x, dy)

        row.append(f"{timed(step, dev):.3f} ms (err {max(ey, ex):.0e})")

    def dense():
        out = F.batch_norm(x, None, None, weight, bias, True, 0.1, 1e-5)
        torch.autograd.grad(out, x, dy)

    return (f"| {batch}x{c}x{s}x{s} | {timed(dense, dev):.3f} ms | " + " | ".join(row)
            + " |")



def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--batch-size", type=int, default=128)
    a = p.parse_args(argv)
    dev = torch.device(a.device)
    dtype = torch.bfloat16
    variants = {"shipped": (sparse.SparseBatchNormFunction, sparse.visible_moments),
                "sum+norm moments": (sparse.SparseBatchNormFunction, moments_sum_norm),
                "cast backward": (CastBackward, sparse.visible_moments)}
    if dev.type == "cuda":
        variants["bn_stats moments"] = (sparse.SparseBatchNormFunction, moments_bn_stats)
        variants["cuda kernels + bn_stats"] = (CudaKernels, moments_bn_stats)
    print(f"| shape | dense BatchNorm2d | {' | '.join(variants)} |")
    print("|---|---|" + "---|" * len(variants))
    for c, s in SHAPES:
        print(measure(c, s, a.batch_size, dev, dtype, variants))

if __name__ == "__main__":
    main()
