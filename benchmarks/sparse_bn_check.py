"""The lean sparse BatchNorm against the authors' gather / scatter form, on any device.

    python benchmarks/sparse_bn_check.py [--device cuda] [--arch resnet50] [--image-size 224]

The same comparison as ``tests/test_sparse_bn.py``, where a GPU is: one forward and
backward of the sparse trunk under fp32 and bf16 autocast (channels_last on a GPU), each
form's loss and gradients against the same weights in float64; then the lean form's
forward and backward once more under ``torch.cuda.set_sync_debug_mode("error")``, which
raises at any host-device synchronisation (the gather / scatter form, for comparison).
"""

from __future__ import annotations

import argparse

import torch

from jepa_lite.course import bench
from jepa_lite.encoders import sparse
from jepa_lite.masking import grid_size, sample_masks
from jepa_lite.runtime import resolve_device


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.double() - b.double()).norm() / b.double().norm().clamp_min(1e-30)).item()


def loss_and_grads(trunk, images, mask, target, dtype=None):
    trunk.zero_grad()
    with torch.autocast(images.device.type, dtype=dtype or torch.bfloat16,
                        enabled=dtype is not None):
        out = trunk(images, mask)
    loss = ((out.float() - target.float()) ** 2).mean()
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in trunk.named_parameters()}


def syncs(trunk, images, mask) -> str:
    if images.device.type != "cuda":
        return "not a GPU"
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        out = trunk(images, mask)
        out.float().square().mean().backward()
        return "none"
    except RuntimeError as e:
        return f"synchronises ({str(e).splitlines()[0][:60]})"
    finally:
        torch.cuda.set_sync_debug_mode("default")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--arch", default="resnet50")
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--batch-size", type=int, default=16)
    a = p.parse_args(argv)
    dev = resolve_device(a.device)
    torch.backends.cudnn.allow_tf32 = False  # fp32 means fp32 here (TF32 rounds to 10 bits)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.manual_seed(0)
    lean = sparse.sparse_trunk(a.arch)
    with torch.no_grad():  # BatchNorm weights away from 1 / 0, so their gradients matter
        for m in lean.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    ref = bench.gather_scatter_trunk(a.arch)
    ref.load_state_dict(lean.state_dict())
    exact = bench.gather_scatter_trunk(a.arch).double()
    exact.load_state_dict(lean.state_dict())
    g = torch.Generator().manual_seed(0)
    images = torch.randn(a.batch_size, 3, a.image_size, a.image_size, generator=g)
    grid = grid_size(a.image_size, lean.patch)
    mask = sample_masks(a.batch_size, grid, generator=g)
    target = torch.randn(a.batch_size, lean.dim, *grid, generator=g)
    exact.to(dev)
    l64, g64 = loss_and_grads(exact, images.double().to(dev), mask.to(dev),
                              target.double().to(dev))
    del exact
    lean.to(dev)
    ref.to(dev)
    images, mask, target = images.to(dev), mask.to(dev), target.to(dev)
    if dev.type == "cuda":
        lean.to(memory_format=torch.channels_last)
        ref.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    print(f"{a.arch} at {a.image_size} px, batch {a.batch_size}, {dev}; torch "
          f"{torch.__version__}; errors relative to float64")
    print("| form | precision | loss error | gradient error (mean over tensors) | max |")
    print("|---|---|---|---|---|")
    for precision, dtype in (("fp32", None), ("bf16", torch.bfloat16)):
        for name, trunk in (("lean", lean), ("gather / scatter", ref)):
            loss, grads = loss_and_grads(trunk, images, mask, target, dtype)
            errors = [rel(grads[k], g64[k]) for k in grads]
            print(f"| {name} | {precision} | {rel(loss, l64):.2e} | "
                  f"{sum(errors) / len(errors):.2e} | {max(errors):.2e} |")
    print(f"host-device synchronisations, lean: {syncs(lean, images, mask)}; "
          f"gather / scatter: {syncs(ref, images, mask)}")


if __name__ == "__main__":
    main()
