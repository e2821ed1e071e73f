"""The sparse context encoder's guarantees (chapter 02), each over random masks and inputs."""

import pytest
import torch

from jepa_lite.course import analysis
from jepa_lite.encoders import resnet, sparse
from jepa_lite.masking import sample_masks, stage_masks

SMALL = "resnet10"


def pair(arch=SMALL, dtype=torch.float64, seed=0):
    torch.manual_seed(seed)
    dense, sp = resnet.dense_trunk(arch).to(dtype), sparse.sparse_trunk(arch).to(dtype)
    sp.load_state_dict(dense.state_dict())
    return dense, sp


@pytest.mark.parametrize("arch", [*resnet.ARCHS, "resnet10-s16", "resnet50-s16"])
def test_state_dicts_match(arch):
    d, s = resnet.dense_trunk(arch).state_dict(), sparse.sparse_trunk(arch).state_dict()
    assert list(d) == list(s)
    assert all(d[k].shape == s[k].shape for k in d)
    plain = resnet.dense_trunk(arch.removesuffix("-s16")).state_dict()  # the same weights
    assert list(plain) == list(d) and all(plain[k].shape == d[k].shape for k in d)


@pytest.mark.parametrize("arch", ["resnet10", "resnet18", "resnet50"])
def test_small_image_stem_gives_the_paper_grid_at_half_the_size(arch):
    """``-s16`` drops the max-pool: 112 px -> 7x7 cells of 16 px, as 224 px -> 7x7 of 32."""
    small, plain = resnet.dense_trunk(arch + "-s16").eval(), resnet.dense_trunk(arch).eval()
    assert (small.patch, plain.patch) == (16, 32)
    assert resnet.patch_of(arch + "-s16") == 16 and resnet.patch_of(arch) == 32
    assert small(torch.randn(1, 3, 112, 112)).shape[-2:] == (7, 7)
    assert plain(torch.randn(1, 3, 224, 224)).shape[-2:] == (7, 7)
    assert small(torch.randn(1, 3, 96, 64)).shape[-2:] == (6, 4)


def test_unsupported_arch_lists_the_supported():
    with pytest.raises(ValueError, match="unsupported architecture 'vgg16'; supported: resnet10"):
        sparse.sparse_trunk("vgg16")
    with pytest.raises(ValueError, match="each also as NAME-s16 .*resnet18-s16 at 112 px"):
        resnet.patch_of("resnet18-s8")


def stage_strides(trunk) -> dict[str, int]:
    """Stride (pixels) of every part's output, from the trunk's own layer arithmetic."""
    fields = analysis.receptive_fields(trunk)
    return {"bn1": fields["conv1"][1], "relu": fields["conv1"][1],
            **{k: stride for k, (_, stride) in fields.items()}}


@pytest.mark.parametrize("arch", [SMALL, SMALL + "-s16"])
@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("seed", range(3))
def test_masked_cells_of_every_stage_are_zero(arch, mode, seed):
    _, s = pair(arch, seed=seed)
    s.train(mode == "train")
    g = torch.Generator().manual_seed(seed)
    p = s.patch
    x = torch.randn(4, 3, 3 * p, 4 * p, dtype=torch.float64, generator=g)
    m = sample_masks(4, (3, 4), generator=g)
    outs = analysis.stage_outputs(s, x, m)
    strides = stage_strides(s)
    if arch == SMALL:
        assert strides == {"conv1": 2, "bn1": 2, "relu": 2, "maxpool": 4, "layer1": 4,
                           "layer2": 8, "layer3": 16, "layer4": 32}
    masks = stage_masks(m, set(strides.values()), p)
    for name, out in outs.items():
        hidden = masks[strides[name]].unsqueeze(1).expand_as(out)
        assert out[hidden].abs().max() == 0, name
    assert outs["layer4"].shape[-2:] == (3, 4)


@pytest.mark.parametrize("arch", [SMALL, SMALL + "-s16"])
@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("seed", range(3))
def test_masked_pixels_change_nothing(arch, mode, seed):
    _, s = pair(arch, seed=seed)
    s.train(mode == "train")
    g = torch.Generator().manual_seed(100 + seed)
    p = s.patch
    x = torch.randn(3, 3, 3 * p, 3 * p, dtype=torch.float64, generator=g)
    m = sample_masks(3, (3, 3), generator=g)
    hidden = (m.repeat_interleave(p, 1).repeat_interleave(p, 2)).unsqueeze(1)
    x2 = torch.where(hidden, torch.randn_like(x) * 50 + 7, x)  # only masked pixels differ
    state = {k: v.clone() for k, v in s.state_dict().items()}
    a = s(x, m)
    s.load_state_dict(state)  # same running statistics for the second pass
    b = s(x2, m)
    assert torch.equal(a, b)
    if mode == "train":  # and the running statistics they leave behind are the same too
        s.load_state_dict(state)
        s(x, m)
        after_a = {k: v.clone() for k, v in s.state_dict().items()}
        s.load_state_dict(state)
        s(x2, m)
        assert all(torch.equal(after_a[k], v) for k, v in s.state_dict().items())


@pytest.mark.parametrize("seed", range(5))
def test_sparse_batchnorm_statistics_are_those_of_visible_positions(seed):
    g = torch.Generator().manual_seed(seed)
    state = sparse.MaskState()
    bn = sparse.SparseBatchNorm2d(state, 6, momentum=0.3).double()
    ref = torch.nn.BatchNorm2d(6, momentum=0.3).double()
    m = sample_masks(5, (4, 4), generator=g)
    state.set(m, torch.float64)
    # its input is a sparse convolution's output: zero at masked positions
    x = (torch.randn(5, 6, 8, 8, dtype=torch.float64, generator=g) * 3 + 1) * state.at(
        torch.empty(5, 6, 8, 8, dtype=torch.float64))
    y = bn(x)
    keep = state.at(x).bool().expand_as(x)
    visible = x.permute(1, 0, 2, 3)[keep.permute(1, 0, 2, 3)].view(6, -1)  # C x N visible
    ref_out = ref(visible.T.reshape(-1, 6, 1, 1))  # BN over the visible positions alone
    assert torch.allclose(bn.running_mean, ref.running_mean)
    assert torch.allclose(bn.running_var, ref.running_var)
    got = y.permute(1, 0, 2, 3)[keep.permute(1, 0, 2, 3)].view(6, -1)
    assert torch.allclose(got, ref_out.reshape(-1, 6).T)
    assert y[~keep].abs().max() == 0


@pytest.mark.parametrize("arch", ["resnet10", "resnet50", "resnet10-s16"])
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_nothing_masked_equals_dense(arch, mode):
    d, s = pair(arch)
    if mode == "eval":  # give the running statistics something to hold first
        x0 = torch.randn(4, 3, 64, 64, dtype=torch.float64)
        d(x0)
        s.load_state_dict(d.state_dict())
    d.train(mode == "train")
    s.train(mode == "train")
    x = torch.randn(2, 3, 64, 96, dtype=torch.float64)
    none = torch.zeros(2, 64 // d.patch, 96 // d.patch, dtype=torch.bool)
    assert torch.allclose(d(x), s(x, none), rtol=1e-9, atol=1e-9)
    for k, v in d.state_dict().items():  # running statistics updated identically
        assert torch.allclose(v.double(), s.state_dict()[k].double(), rtol=1e-9, atol=1e-12), k


def test_weights_move_between_sparse_and_dense():
    d, s = pair()
    s2 = sparse.sparse_trunk(SMALL).double()
    s2.load_state_dict(d.state_dict())
    x, none = torch.randn(2, 3, 64, 64, dtype=torch.float64), torch.zeros(2, 2, 2, dtype=torch.bool)
    s.eval()
    s2.eval()
    assert torch.equal(s(x, none), s2(x, none))


def test_no_host_sync_ops_in_the_sparse_layers():
    """No .item(), nonzero or boolean indexing in the forward: checked by tracing the ops."""
    from torch.profiler import ProfilerActivity, profile

    _, s = pair(dtype=torch.float32)
    x, m = torch.randn(2, 3, 64, 64), sample_masks(2, (2, 2))
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        s(x, m)
    names = {e.key for e in prof.key_averages()}
    assert not names & {"aten::nonzero", "aten::item", "aten::_local_scalar_dense",
                        "aten::masked_select", "aten::index"}


def test_bad_mask_shape_is_explained():
    _, s = pair()
    with pytest.raises(ValueError, match=r"mask must be bool \[B, H/32, W/32\] = \[2, 2, 2\]"):
        s(torch.randn(2, 3, 64, 64, dtype=torch.float64), torch.zeros(2, 7, 7, dtype=torch.bool))
    with pytest.raises(ValueError, match="multiples of 32"):
        s(torch.randn(2, 3, 72, 64, dtype=torch.float64), torch.zeros(2, 2, 2, dtype=torch.bool))
    _, s16 = pair(SMALL + "-s16")
    with pytest.raises(ValueError, match=r"mask must be bool \[B, H/16, W/16\] = \[2, 7, 7\]"):
        s16(torch.randn(2, 3, 112, 112, dtype=torch.float64),
            torch.zeros(2, 4, 4, dtype=torch.bool))


def test_sparse_layer_outside_the_trunk_is_an_error():
    bn = sparse.SparseBatchNorm2d(sparse.MaskState(), 3)
    with pytest.raises(RuntimeError, match="outside SparseTrunk.forward"):
        bn(torch.randn(1, 3, 4, 4))


@pytest.mark.parametrize("arch", ["resnet10", "resnet18", "resnet10-s16"])
def test_receptive_fields_match_the_gradient(arch):
    """The layer arithmetic agrees with where the centre unit's gradient reaches the input."""
    t = resnet.dense_trunk(arch).eval()
    x = torch.randn(1, 3, 512, 512, requires_grad=True)
    outs = analysis.stage_outputs(t, x)
    for name, (rf, stride) in analysis.receptive_fields(t).items():
        o = outs[name]
        h, w = o.shape[-2:]
        (g,) = torch.autograd.grad(o[0, :, h // 2, w // 2].sum(), x, retain_graph=True)
        rows = g[0].abs().sum((0, 2)).nonzero()
        assert rows.max() - rows.min() + 1 == rf, name
        assert 512 // h == stride


def test_resnet50_receptive_field_is_427():
    assert analysis.receptive_fields(resnet.dense_trunk("resnet50"))["layer4"] == (427, 32)


def test_synchronize_batchnorm_keeps_weights_and_frozen_parameters():
    from jepa_lite.methods.cnn_jepa import CNNJEPA

    torch.manual_seed(0)
    model = CNNJEPA("resnet10", predictor_layers=1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    sparse.synchronize_batchnorm(model)
    after = model.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in after)
    assert frozen == {n for n, p in model.named_parameters() if not p.requires_grad}
    assert frozen and all(n.startswith("target_encoder.") for n in frozen)
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and all(isinstance(m, sparse.SparseBatchNorm2d) and m.synchronized for m in bns)
    # in a world of one process it changes nothing
    plain = CNNJEPA("resnet10", predictor_layers=1)
    plain.load_state_dict(before)
    x, m = torch.randn(4, 3, 64, 64), torch.zeros(4, 2, 2, dtype=torch.bool)
    m[:, 0, 0] = True
    assert torch.allclose(model(x, m)[0], plain(x, m)[0], atol=1e-6)


@pytest.mark.parametrize("seed", range(20))
def test_cell_distance_is_the_distance_to_the_nearest_masked_cell(seed):
    g = torch.Generator().manual_seed(seed)
    grid = (int(torch.randint(2, 8, (1,), generator=g)), int(torch.randint(2, 8, (1,),
                                                                           generator=g)))
    m = torch.rand(3, *grid, generator=g) < 0.3
    d = analysis.cell_distance(m)
    for b in range(3):
        cells = m[b].nonzero().tolist()
        for i in range(grid[0]):
            for j in range(grid[1]):
                want = min((max(abs(i - r), abs(j - c)) for r, c in cells),
                           default=sum(grid))
                assert d[b, i, j] == want, (b, i, j)


@pytest.mark.parametrize("train_mode", [True, False])
@pytest.mark.parametrize("seed", range(3))
def test_zero_filled_dense_trunk_fills_the_hole_and_the_sparse_one_does_not(train_mode, seed):
    dense, _ = pair(seed=seed)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(3, 3, 96, 96, dtype=torch.float64, generator=g)
    m = sample_masks(3, (3, 3), generator=g)
    before = {k: v.clone() for k, v in dense.state_dict().items()}
    r = analysis.zero_filled_vs_sparse(dense, x, m, train_mode)
    assert all(v == 0 for v in r["filled"]["sparse"].values())
    assert r["filled"]["dense, zero-filled"]["layer1"] > 0.2  # the hole fills up
    assert r["error"]["sparse"].shape == m.shape
    assert all(torch.equal(before[k], v) for k, v in dense.state_dict().items())  # untouched
    none = torch.zeros_like(m)  # nothing hidden: both are the target itself
    r0 = analysis.zero_filled_vs_sparse(dense, x, none, train_mode)
    for err in r0["error"].values():
        assert err.max() < 1e-9


@pytest.mark.parametrize("seed", range(3))
def test_stage_outputs_keep_each_part_as_it_left_that_part(seed):
    """bn1's kept output is BatchNorm's (negative values and all), not what the in-place ReLU
    after it made of the same tensor; relu's is its max(0, bn1)."""
    from jepa_lite.encoders.resnet import dense_trunk

    torch.manual_seed(seed)
    outs = analysis.stage_outputs(dense_trunk("resnet10").eval(), torch.randn(2, 3, 64, 64))
    assert (outs["bn1"] < 0).any()
    assert torch.equal(outs["relu"], outs["bn1"].clamp_min(0))
