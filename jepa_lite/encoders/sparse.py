"""Chapter 02 — the sparse context encoder: a ResNet that never sees the masked patches.

Paper, IV-A: "Sparse convolutions are implemented by zeroing out the outputs of each
convolutional layer using a mask appropriately upscaled to the layer's activation
dimensions." BatchNorm is made sparse too: its statistics come from visible positions only
(as in SparK), otherwise the zeros at masked positions would shift every mean and variance.

``sparse_trunk(arch)`` has the same ``state_dict`` keys and shapes as the plain trunk
(``backbone.dense_trunk``, the EMA target encoder), so weights move freely between the two.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from jepa_lite.encoders.resnet import Trunk
from jepa_lite.errors import UsageError


# --------------------------------------------------------------------------- sparse layers
class MaskState:
    """The current batch's visible-cell mask, shared by every sparse layer of one trunk.

    ``at(x)`` gives it at ``x``'s resolution as a float ``[B, 1, H, W]`` (1 = visible), by
    nearest-neighbour repetition; computed once per resolution and forward pass.
    """

    def __init__(self):
        self.visible: torch.Tensor | None = None  # [B, 1, gh, gw], 1.0 = context cell
        self._cache: dict = {}

    def set(self, mask: torch.Tensor, dtype: torch.dtype) -> None:
        self.visible = (~mask).unsqueeze(1).to(dtype)
        self._cache = {}

    def clear(self) -> None:
        self.visible, self._cache = None, {}

    def at(self, x: torch.Tensor) -> torch.Tensor:
        if self.visible is None:
            raise RuntimeError("a sparse layer ran outside SparseTrunk.forward(images, mask)")
        key = (x.shape[-2], x.shape[-1], x.dtype)
        if key not in self._cache:
            gh, gw = self.visible.shape[-2:]
            fh, fw = x.shape[-2] // gh, x.shape[-1] // gw
            m = self.visible.repeat_interleave(fh, dim=2).repeat_interleave(fw, dim=3)
            self._cache[key] = m.to(x.dtype)
        return self._cache[key]


class _MaskedOutput:
    """Mixin: run the wrapped layer densely, then zero its output at masked positions."""

    def __init__(self, state: MaskState, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.mask_state = state

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = super().forward(x)
        return out * self.mask_state.at(out)


class SparseConv2d(_MaskedOutput, nn.Conv2d):
    """Masked dense convolution: the output is zeroed at masked positions of its stage."""


class SparseMaxPool2d(_MaskedOutput, nn.MaxPool2d):
    """Max pooling whose output is zeroed at masked positions."""


class SparseBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm whose batch statistics (and running averages) use visible positions only.

    Its input is a sparse convolution's output, so it is already zero at masked positions:
    the visible sums are plain sums, one pass for ``x`` and one for ``x**2``, with no
    gathering, no data-dependent shapes and so no host-device synchronisation. The training
    forward and backward are one :class:`SparseBatchNormFunction`, which saves only its
    input for backward (the lean form; see ``docs/benchmarks.md``).

    ``synchronized`` (``--sync-bn`` under torchrun): the statistics are those of the visible
    positions of every rank's batch. Each rank's count, mean and centred sum of squares are
    gathered and merged (Chan's parallel variance), with gradients flowing back to every rank;
    torch's SyncBatchNorm would count the masked zeros. Built without a mask state, the layer
    is a plain BatchNorm2d that can be synchronised the same way (the predictor's and the
    target encoder's BatchNorms under ``--sync-bn``; torch's SyncBatchNorm needs a GPU). The
    synchronised form is written with plain autograd ops (more memory, kept simple).
    """

    def __init__(self, state: MaskState | None, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.mask_state = state
        self.synchronized = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch_stats = self.training or not self.track_running_stats
        if self.mask_state is None or self.synchronized:
            return self._composite_forward(x)
        keep = self.mask_state.at(x)
        if not batch_stats:  # evaluation: the running statistics, then the mask
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight,
                                self.bias, False, 0.0, self.eps) * keep
        with torch.no_grad():
            n, mean, m2 = visible_moments(x, keep)
            if self.training and self.track_running_stats:
                self._track(n.clamp_min(2.0), mean, m2)
        weight = self.weight if self.affine else torch.ones_like(mean)
        bias = self.bias if self.affine else torch.zeros_like(mean)
        return SparseBatchNormFunction.apply(x, keep, n, mean, m2, weight, bias, self.eps)

    def _track(self, n: torch.Tensor, mean: torch.Tensor, m2: torch.Tensor) -> None:
        """Update the running mean and (unbiased) variance, as BatchNorm2d does."""
        with torch.no_grad():
            self.num_batches_tracked.add_(1)
            m = (1.0 / self.num_batches_tracked.float() if self.momentum is None
                 else self.momentum)
            self.running_mean.lerp_(mean.to(self.running_mean.dtype), m)
            self.running_var.lerp_((m2 / (n - 1)).to(self.running_var.dtype), m)

    def _composite_forward(self, x: torch.Tensor) -> torch.Tensor:
        """The same layer in plain autograd ops (mask-free or synchronised)."""
        xf = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x  # stats in >= fp32
        keep = None if self.mask_state is None else self.mask_state.at(xf)
        if self.training or not self.track_running_stats:
            if keep is None:
                n = torch.full((), float(x.numel() // x.shape[1]), device=x.device)
                mean = xf.mean((0, 2, 3))
                m2 = (xf - mean[:, None, None]).square().sum((0, 2, 3))
            else:
                n = keep.sum()  # visible positions per channel (B x H x W)
                mean = (xf * keep).sum((0, 2, 3)) / n.clamp_min(1.0)
                m2 = ((xf - mean[:, None, None]) * keep).square().sum((0, 2, 3))
            if self.synchronized:
                n, mean, m2 = _merge_over_ranks(n, mean, m2)
            n = n.clamp_min(2.0)
            var = m2 / n  # biased, for normalising
            if self.training and self.track_running_stats:
                self._track(n, mean.detach(), m2.detach())
        else:
            mean, var = self.running_mean.to(xf.dtype), self.running_var.to(xf.dtype)
        y = (xf - mean[:, None, None]) * torch.rsqrt(var[:, None, None] + self.eps)
        if self.affine:
            y = y * self.weight[:, None, None] + self.bias[:, None, None]
        return (y if keep is None else y * keep).to(x.dtype)


def visible_moments(x: torch.Tensor, keep: torch.Tensor):
    """Count ``n``, mean and centred sum of squares ``m2`` per channel of the visible
    positions of ``x`` (zero wherever ``keep`` is 0), in float32 (float64 for float64 input).

    The masked zeros add nothing to the sums, so one reduction each of ``x`` and ``x**2``
    over all positions gives the visible ones': ``m2 = sum(x**2) - sum(x) * mean``. That
    subtraction cancels when the mean dominates the spread: the relative error of ``m2`` is
    about 1e-7 x mean**2 / var (5e-5 at a mean of 30 standard deviations, far under the
    3.9e-3 of bf16's rounding; ``tests/test_sparse_bn.py``)."""
    xf = x if x.dtype in (torch.float32, torch.float64) else x.float()
    s1 = xf.sum((0, 2, 3))
    s2 = (xf * xf).sum((0, 2, 3))
    n = keep.sum(dtype=xf.dtype)  # visible positions per channel (B x H x W)
    mean = s1 / n.clamp_min(1.0)
    return n, mean, (s2 - s1 * mean).clamp_min(0.0)


class SparseBatchNormFunction(torch.autograd.Function):
    """Normalise ``x`` with its visible statistics, then zero the masked positions.

    Forward: one fused scale-and-shift (``F.batch_norm`` with the statistics given), then the
    mask, in place. Saved for backward: ``x`` itself (plus per-channel vectors and the shared
    mask). Backward, with ``g = dy * keep``, ``xhat = (x - mean) * invstd`` and the visible
    count ``n`` (the batch-norm gradient over the visible positions only)::

        dbias = sum(g)      dweight = sum(g * xhat)
        dx = keep * weight * invstd * (g - dbias / n - xhat * dweight / n)
    """

    @staticmethod
    def forward(ctx, x, keep, n, mean, m2, weight, bias, eps):
        var = m2 / n.clamp_min(2.0)  # biased, for normalising
        y = F.batch_norm(x, mean, var, weight, bias, False, 0.0, eps)
        y.mul_(keep)
        ctx.save_for_backward(x, keep, n, mean, var, weight)
        ctx.eps = eps
        return y

    @staticmethod
    def backward(ctx, dy):
        x, keep, n, mean, var, weight = ctx.saved_tensors
        g = dy * keep
        invstd = torch.rsqrt(var + ctx.eps)
        # eval-mode BatchNorm's backward (the statistics held fixed): g * weight * invstd,
        # sum(g * xhat), sum(g). The CPU kernel reads mean and var, the CUDA one mean and
        # invstd: both are given.
        dx, dweight, dbias = torch.ops.aten.native_batch_norm_backward(
            g, x, weight, mean, var, mean, invstd, False, ctx.eps, [True, True, True])
        # the terms that come through mean and var: keep * (x * scale + shift), where x is
        # already zero at masked positions
        a = weight * invstd / n.clamp_min(1.0)
        scale = (a * invstd * dweight)[:, None, None]
        shift = (a * (dbias - mean * invstd * dweight))[:, None, None]
        dx.addcmul_(x, scale, value=-1.0).addcmul_(keep, shift, value=-1.0)
        return dx, None, None, None, None, dweight, dbias, None


def _merge_over_ranks(n: torch.Tensor, mean: torch.Tensor, m2: torch.Tensor):
    """Count, mean and centred sum of squares of the union of every rank's positions."""
    from jepa_lite.distributed import all_gather_with_grad

    parts = all_gather_with_grad(torch.stack([n.expand_as(mean), mean, m2]))  # [W, 3, C]
    ns, means, m2s = parts.unbind(1)
    total = ns.sum(0)
    merged = (ns * means).sum(0) / total.clamp_min(1.0)
    return total, merged, (m2s + ns * (means - merged).square()).sum(0)


def synchronize_batchnorm(module: nn.Module) -> nn.Module:
    """``--sync-bn``: every BatchNorm below ``module`` takes its statistics over all ranks
    (plain ones become mask-free :class:`SparseBatchNorm2d`, same ``state_dict``). Call it
    before moving the module to its device."""
    for name, child in module.named_children():
        if isinstance(child, SparseBatchNorm2d):
            child.synchronized = True
        elif isinstance(child, nn.BatchNorm2d):
            new = SparseBatchNorm2d(None, child.num_features, child.eps, child.momentum,
                                    child.affine, child.track_running_stats)
            new.load_state_dict(child.state_dict())
            for p_new, p_old in zip(new.parameters(), child.parameters()):
                p_new.requires_grad_(p_old.requires_grad)  # the EMA target stays frozen
            new.synchronized = True
            setattr(module, name, new)
        else:
            synchronize_batchnorm(child)
    return module


def _sparsify(module: nn.Module, state: MaskState) -> None:
    """Replace every Conv2d / BatchNorm2d / MaxPool2d below ``module`` by its sparse twin."""
    for name, child in module.named_children():
        if isinstance(child, nn.Conv2d):
            new = SparseConv2d(state, child.in_channels, child.out_channels, child.kernel_size,
                               child.stride, child.padding, child.dilation, child.groups,
                               child.bias is not None)
        elif isinstance(child, nn.BatchNorm2d):
            new = SparseBatchNorm2d(state, child.num_features, child.eps, child.momentum,
                                    child.affine, child.track_running_stats)
        elif isinstance(child, nn.MaxPool2d):
            new = SparseMaxPool2d(state, child.kernel_size, child.stride, child.padding,
                                  child.dilation, ceil_mode=child.ceil_mode)
        else:
            _sparsify(child, state)
            continue
        new.load_state_dict(child.state_dict())
        setattr(module, name, new)


class SparseTrunk(Trunk):
    """The context encoder: ``enc(images, mask) -> [B, C, gh, gw]``, masked cells zero."""

    def __init__(self, arch: str, zero_init_residual: bool = False):
        super().__init__(arch, zero_init_residual)
        self.mask_state = MaskState()
        _sparsify(self, self.mask_state)

    def forward(self, images: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, _, h, w = images.shape
        p = self.patch
        if mask.dtype != torch.bool or mask.shape != (b, h // p, w // p) or h % p or w % p:
            raise UsageError(
                f"mask must be bool [B, H/{p}, W/{p}] = [{b}, {h / p:g}, {w / p:g}] for "
                f"images {tuple(images.shape)}; got {mask.dtype} {tuple(mask.shape)} (image "
                f"sizes must be multiples of {p})")
        self.mask_state.set(mask, images.dtype)
        try:
            return super().forward(images * self.mask_state.at(images))  # targets zeroed
        finally:
            self.mask_state.clear()


def sparse_trunk(arch: str = "resnet50", zero_init_residual: bool = False) -> SparseTrunk:
    """The sparse context encoder, called as ``enc(images, mask)``."""
    return SparseTrunk(arch, zero_init_residual)
