"""The lean sparse BatchNorm: its gradient, its exactness against the authors' gather /
scatter form, its precondition and what it keeps for backward."""

import pytest
import torch

from jepa_lite.course import bench
from jepa_lite.encoders import sparse
from jepa_lite.masking import sample_masks

ARCHS = ["resnet10", "resnet10-s16"]


def masked_input(seed, shape=(4, 5, 8, 8), grid=(4, 4), dtype=torch.float64, scale=2.0,
                 shift=0.5):
    """A random input and mask state, the input zero at masked positions (as a sparse
    convolution's output is)."""
    g = torch.Generator().manual_seed(seed)
    state = sparse.MaskState()
    state.set(sample_masks(shape[0], grid, generator=g), dtype)
    x = torch.randn(shape, dtype=dtype, generator=g) * scale + shift
    return x * state.at(x), state


@pytest.mark.parametrize("seed", range(4))
def test_gradcheck_in_float64(seed):
    """The analytic backward against finite differences, through the statistics too."""
    x, state = masked_input(seed, (3, 4, 4, 4), (2, 2))
    keep = state.at(x)
    g = torch.Generator().manual_seed(100 + seed)

    def layer(z, weight, bias):  # z masked first, as the convolution before it does
        z = z * keep
        with torch.no_grad():  # as in SparseBatchNorm2d.forward
            n, mean, m2 = sparse.visible_moments(z, keep)
        return sparse.SparseBatchNormFunction.apply(z, keep, n, mean, m2, weight, bias, 1e-5)

    args = (x.clone().requires_grad_(),
            torch.randn(4, generator=g, dtype=torch.float64).requires_grad_(),
            torch.randn(4, generator=g, dtype=torch.float64).requires_grad_())
    assert torch.autograd.gradcheck(layer, args)


def reference_pair(arch, dtype=torch.float64, seed=0):
    torch.manual_seed(seed)
    lean = sparse.sparse_trunk(arch).to(dtype)
    ref = bench.gather_scatter_trunk(arch).to(dtype)
    ref.load_state_dict(lean.state_dict())
    g = torch.Generator().manual_seed(seed)
    for p_lean, p_ref in zip(lean.parameters(), ref.parameters()):  # BN weights not 1 / 0
        with torch.no_grad():
            p_lean.add_(0.1 * torch.randn(p_lean.shape, generator=g, dtype=dtype))
            p_ref.copy_(p_lean)
    return lean, ref


def loss_and_grads(trunk, images, mask, target, autocast_dtype=None):
    trunk.zero_grad()
    with torch.autocast("cpu", dtype=autocast_dtype or torch.bfloat16,
                        enabled=autocast_dtype is not None):
        out = trunk(images, mask)
    loss = ((out.float() - target) ** 2).mean()
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in trunk.named_parameters()}


def rel(a, b):
    return ((a.double() - b.double()).norm() / b.double().norm().clamp_min(1e-30)).item()


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("seed", range(3))
def test_equal_to_the_gather_scatter_reference_in_float64(arch, seed):
    lean, ref = reference_pair(arch, seed=seed)
    g = torch.Generator().manual_seed(seed)
    images = torch.randn(3, 3, 64, 64, dtype=torch.float64, generator=g)
    grid = 64 // lean.patch
    mask = sample_masks(3, (grid, grid), generator=g)
    target = torch.randn(3, lean.dim, grid, grid, dtype=torch.float64, generator=g)
    (la, ga), (lb, gb) = (loss_and_grads(t, images, mask, target) for t in (lean, ref))
    assert rel(la, lb) < 1e-12
    assert max(rel(ga[k], gb[k]) for k in ga) < 1e-9
    for k, v in lean.state_dict().items():  # running statistics too
        assert torch.allclose(v.double(), ref.state_dict()[k].double(), rtol=1e-12), k


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_as_accurate_as_the_reference_in_fp32_bf16_and_channels_last(precision, channels_last):
    """Both forms against the reference in float64: the lean one is no less accurate (bf16
    autocast rounds every layer's output to 8 bits, both forms alike)."""
    lean, ref = reference_pair("resnet10", torch.float32, seed=1)
    exact = bench.gather_scatter_trunk("resnet10").double()
    exact.load_state_dict(ref.state_dict())
    g = torch.Generator().manual_seed(1)
    images = torch.randn(4, 3, 64, 64, generator=g)
    mask = sample_masks(4, (2, 2), generator=g)
    target = torch.randn(4, 512, 2, 2, generator=g)
    l64, g64 = loss_and_grads(exact, images.double(), mask, target.double())
    if channels_last:
        lean, ref = (t.to(memory_format=torch.channels_last) for t in (lean, ref))
        images = images.contiguous(memory_format=torch.channels_last)
    dtype = torch.bfloat16 if precision == "bf16" else None
    errors = {}
    for name, trunk in (("lean", lean), ("reference", ref)):
        loss, grads = loss_and_grads(trunk, images, mask, target, dtype)
        errors[name] = (rel(loss, l64), sum(rel(grads[k], g64[k]) for k in grads) / len(grads))
    floor = 1e-6 if precision == "fp32" else 1e-3
    for lean_error, ref_error in zip(errors["lean"], errors["reference"]):
        assert lean_error <= 1.2 * ref_error + floor, errors
    if precision == "fp32":
        assert max(errors["lean"]) < 1e-4
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype is not None):
        out = lean(images, mask)
    assert out.dtype == (torch.bfloat16 if dtype else torch.float32)
    assert out[mask.unsqueeze(1).expand_as(out)].abs().max() == 0


@pytest.mark.parametrize("arch", ARCHS)
def test_every_sparse_batchnorm_gets_zeros_at_masked_positions(arch):
    """The lean statistics sum over every position: they are the visible ones' only because
    each SparseBatchNorm2d follows a sparse convolution."""
    trunk = sparse.sparse_trunk(arch)
    seen = []

    def check(module, inputs, _out):
        x = inputs[0]
        seen.append(bool((x * (1 - module.mask_state.at(x))).abs().max() == 0))

    hooks = [m.register_forward_hook(check) for m in trunk.modules()
             if isinstance(m, sparse.SparseBatchNorm2d)]
    for seed in range(3):
        g = torch.Generator().manual_seed(seed)
        trunk(torch.randn(2, 3, 128, 128, generator=g),
              sample_masks(2, (128 // trunk.patch,) * 2, generator=g))
    for h in hooks:
        h.remove()
    assert len(seen) == 3 * len(hooks) and all(seen)


@pytest.mark.parametrize("seed", range(5))
def test_visible_moments_keep_their_precision(seed):
    """Taking the masked zeros out of all positions' variance cancels when the mean
    dominates the spread: the error stays within float32's rounding times mean^2 / var (in
    bf16 far under the input's own rounding, 3.9e-3), and float64 input stays exact."""
    for dtype in (torch.float32, torch.bfloat16, torch.float64):
        for shift in (0.0, 3.0, 30.0, 100.0):
            x, state = masked_input(seed, (8, 16, 16, 16), (4, 4), torch.float64, 1.0, shift)
            x = x.to(dtype)
            keep = state.at(x)
            n, mean, m2 = sparse.visible_moments(x, keep)
            vis = x.double().permute(1, 0, 2, 3)[keep.bool().expand_as(x).permute(1, 0, 2, 3)]
            vis = vis.view(16, -1)
            ref_mean = vis.mean(1)
            ref_m2 = (vis - ref_mean[:, None]).square().sum(1)
            assert n.item() == vis.shape[1]
            assert mean.dtype == m2.dtype == (torch.float64 if dtype == torch.float64
                                                else torch.float32)
            rounding = 1e-15 if dtype == torch.float64 else 2e-7
            assert rel(mean, ref_mean) < 4 * rounding
            assert rel(m2, ref_m2) < rounding * (1 + shift**2), (dtype, shift)


def test_saves_its_input_and_no_other_activation():
    """Saved for backward: the input itself (no copy, no upcast); besides it only the shared
    mask and per-channel vectors."""
    x, state = masked_input(0, (4, 5, 8, 8), dtype=torch.float32)
    for dtype in (torch.float32, torch.bfloat16):
        z = x.detach().to(dtype).requires_grad_()
        bn = sparse.SparseBatchNorm2d(state, 5)
        state.set(state.visible[:, 0] == 0, dtype)  # the same mask, at the input's dtype
        inp = z * 1  # a non-leaf, as a convolution's output is
        saved: list[torch.Tensor] = []

        def pack(t, saved=saved):
            saved.append(t)
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            y = bn(inp)
        big = [t for t in saved if t.numel() == x.numel()]
        assert len(big) == 1 and big[0].dtype == dtype
        assert big[0].untyped_storage().data_ptr() == inp.untyped_storage().data_ptr()
        assert all(t.numel() <= x.numel() // 5 for t in saved if t.numel() != x.numel())
        y.sum().backward()
        assert z.grad is not None and torch.isfinite(z.grad).all()


@pytest.mark.parametrize("seed", range(3))
def test_masked_pixels_change_nothing_in_bf16_and_channels_last(seed):
    """The leak guarantee under the GPU's settings (bf16 autocast, channels_last), on the
    CPU: output, input gradient of the visible pixels and running statistics are bitwise
    the same whatever the hidden pixels hold."""
    torch.manual_seed(seed)
    trunk = sparse.sparse_trunk("resnet10").to(memory_format=torch.channels_last)
    g = torch.Generator().manual_seed(100 + seed)
    x = torch.randn(3, 3, 96, 96, generator=g).contiguous(memory_format=torch.channels_last)
    m = sample_masks(3, (3, 3), generator=g)
    hidden = m.repeat_interleave(32, 1).repeat_interleave(32, 2).unsqueeze(1)
    x2 = torch.where(hidden, torch.randn_like(x) * 50 + 7, x)
    state = {k: v.clone() for k, v in trunk.state_dict().items()}
    results = []
    for images in (x, x2):
        trunk.load_state_dict(state)
        images = images.clone().requires_grad_()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = trunk(images, m)
        out.float().square().sum().backward()
        results.append((out.detach(), images.grad.masked_fill(hidden, 0),
                        [b.clone() for b in trunk.buffers()]))
    (a, ga, ba), (b, gb, bb) = results
    assert a.dtype == torch.bfloat16 and torch.equal(a, b) and torch.equal(ga, gb)
    assert all(torch.equal(u, v) for u, v in zip(ba, bb))


def test_masks_are_saved_once_per_resolution_not_per_layer():
    """The mask at each resolution is computed once per forward pass and shared: among the
    tensors a sparse trunk saves for backward, those shaped like a mask ([B, 1, H, W]) are
    at most one storage per resolution and dtype."""
    trunk = sparse.sparse_trunk("resnet18")
    x = torch.randn(2, 3, 128, 128).requires_grad_()
    m = sample_masks(2, (4, 4), generator=torch.Generator().manual_seed(0))
    masks: dict[int, tuple] = {}

    def pack(t):
        if t.dim() == 4 and t.shape[1] == 1 and t.shape[0] == 2:
            masks[t.untyped_storage().data_ptr()] = (tuple(t.shape[-2:]), t.dtype)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        trunk(x, m)
    keys = list(masks.values())
    assert len(keys) == len(set(keys)) and len(keys) >= 4, keys  # 64, 32, 16, 8, 4 px grids
