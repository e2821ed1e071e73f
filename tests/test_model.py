"""Predictor, mask token, loss, schedules and the CNN-JEPA module (chapters 03-04)."""

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from jepa_lite import schedules
from jepa_lite.course.analysis import num_parameters
from jepa_lite.encoders.predictor import ConvPredictor, MaskToken
from jepa_lite.losses import jepa_loss
from jepa_lite.masking import sample_masks
from jepa_lite.methods.cnn_jepa import CNNJEPA


def test_predictor_parameter_counts_match_the_paper():
    assert num_parameters(ConvPredictor(2048)) == 12_662_784
    assert num_parameters(ConvPredictor(2048, depthwise_separable=False)) == 113_264_640


@pytest.mark.parametrize("layers,k,dw", [(1, 3, True), (3, 5, True), (2, 3, False)])
def test_predictor_structure_and_shape(layers, k, dw):
    p = ConvPredictor(16, layers, k, dw)
    kinds = [type(m).__name__ for m in p]
    block = (["Conv2d", "Conv2d"] if dw else ["Conv2d"]) + ["BatchNorm2d", "ReLU"]
    assert kinds == block * layers
    if dw:
        assert p[0].groups == 16 and p[0].kernel_size == (k, k) and p[1].kernel_size == (1, 1)
    assert p(torch.randn(2, 16, 7, 7)).shape == (2, 16, 7, 7)


def test_predictor_bad_kernel():
    with pytest.raises(ValueError, match="kernel_size=4"):
        ConvPredictor(8, kernel_size=4)


def test_mask_token_fills_only_target_cells():
    torch.manual_seed(0)
    assert abs(MaskToken(2048).token.std().item() - 0.02) < 0.002  # (truncated) normal, 0.02
    tok = MaskToken(8)
    f = torch.randn(3, 8, 4, 4)
    m = sample_masks(3, (4, 4))
    out = tok(f, m)
    mm = m.unsqueeze(1).expand_as(f)
    assert torch.equal(out[~mm], f[~mm])
    assert torch.equal(out.permute(0, 2, 3, 1)[m], tok.token.detach().expand(int(m.sum()), 8))


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), c=st.integers(2, 64))
def test_official_loss_is_one_minus_cosine_on_target_cells(seed, c):
    g = torch.Generator().manual_seed(seed)
    p, h = torch.randn(3, c, 4, 4, generator=g), torch.randn(3, c, 4, 4, generator=g)
    m = sample_masks(3, (4, 4), generator=g)
    d = F.normalize(p, dim=1) - F.normalize(h, dim=1)
    per_cell = torch.where(d.abs() < 1, 0.5 * d**2, d.abs() - 0.5).sum(1)  # smooth-L1, beta 1
    assert torch.allclose(jepa_loss(p, h, m), per_cell[m].mean(), atol=1e-5)
    # where every channel differs by less than 1 (always, in high dimension) it is 1 - cos
    small = (d.abs() < 1).all(1) & m
    cos = F.cosine_similarity(p, h, dim=1)
    assert torch.allclose(per_cell[small], (1 - cos)[small], atol=1e-5)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_loss_ignores_context_cells(seed):
    g = torch.Generator().manual_seed(seed)
    p, h = torch.randn(2, 8, 3, 3, generator=g), torch.randn(2, 8, 3, 3, generator=g)
    m = sample_masks(2, (3, 3), generator=g)
    p2 = torch.where(m.unsqueeze(1), p, torch.randn_like(p) * 100)
    for kind in ("official", "l2"):
        assert torch.equal(jepa_loss(p, h, m, kind), jepa_loss(p2, h, m, kind))
    l2 = ((p - h) ** 2).sum(1)[m].mean()
    assert torch.allclose(jepa_loss(p, h, m, "l2"), l2)
    with pytest.raises(ValueError, match="unknown loss"):
        jepa_loss(p, h, m, "cosine")


def test_ema_momentum_schedule():
    assert schedules.ema_momentum(0, 100) == pytest.approx(0.996)
    assert schedules.ema_momentum(100, 100) == pytest.approx(1.0)
    assert schedules.ema_momentum(50, 100) == pytest.approx(0.998)
    vals = [schedules.ema_momentum(s, 100) for s in range(101)]
    assert all(a <= b for a, b in zip(vals, vals[1:]))
    per_epoch = [schedules.ema_momentum_at(s, 10, 5, per_epoch=True) for s in range(50)]
    assert len(set(per_epoch[:10])) == 1 and per_epoch[10] > per_epoch[9]


def test_learning_rate_schedule():
    lr = [schedules.learning_rate(s, 1000, 100, 0.01) for s in range(1000)]
    assert lr[0] == pytest.approx(0.0001) and lr[99] == pytest.approx(0.01)
    assert all(a < b for a, b in zip(lr[:99], lr[1:100]))  # linear warm-up
    assert all(a >= b for a, b in zip(lr[100:], lr[101:]))  # cosine down
    assert schedules.learning_rate(1000, 1000, 100, 0.01) == pytest.approx(1e-5)
    assert lr[550] == pytest.approx(1e-5 + (0.01 - 1e-5) / 2, rel=1e-2)


def test_cnn_jepa_step_trains_context_not_target():
    torch.manual_seed(0)
    model = CNNJEPA("resnet10", predictor_layers=1)
    x, m = torch.randn(4, 3, 64, 64), sample_masks(4, (2, 2))
    loss, target = model(x, m)
    assert loss.ndim == 0 and math.isfinite(loss.item()) and target.shape == (4, 512)  # pooled rows
    loss.backward()
    assert all(p.grad is None for p in model.target_encoder.parameters())
    assert model.mask_token.token.grad is not None
    assert model.context_encoder.conv1.weight.grad.abs().sum() > 0
    ids = {id(p) for p in model.trainable_parameters()}
    assert not ids & {id(p) for p in model.target_encoder.parameters()}


@pytest.mark.parametrize("seed", range(3))
def test_the_collapse_ablations_change_only_what_they_name(seed):
    """Chapter 07's controlled experiment: without a predictor the context encoder gets no
    gradient at all (the mask token is the prediction); with a gradient through the target the
    same loss also trains the encoder through the target's dense pass, and the target encoder
    is then a plain copy; the default and the copied target (no EMA) differ only after the
    step."""
    x = torch.randn(4, 3, 64, 64, generator=torch.Generator().manual_seed(seed))
    m = sample_masks(4, (2, 2), "random", torch.Generator().manual_seed(seed))

    def grads(**kw):
        torch.manual_seed(seed)
        model = CNNJEPA("resnet10", predictor_layers=kw.pop("layers", 1), **kw)
        loss, target = model(x, m)
        assert not target.requires_grad  # diagnostics never carry the graph
        loss.backward()
        return model, loss, {n: p.grad for n, p in model.context_encoder.named_parameters()}

    _, loss, base = grads()
    _, loss_no_pred, no_pred = grads(layers=0)
    assert all(g is None or not g.any() for g in no_pred.values())  # nothing reaches it
    assert ConvPredictor(8, 0)(torch.ones(1, 8, 2, 2)).equal(torch.ones(1, 8, 2, 2))
    model, loss_grad, through = grads(target_gradient=True)
    assert loss_grad.item() == pytest.approx(loss.item(), abs=1e-5)  # the same forward value
    assert not torch.allclose(through["conv1.weight"], base["conv1.weight"])
    with torch.no_grad():
        for p in model.context_encoder.parameters():
            p.add_(0.5)
    model.update_target(0.996)  # the momentum is ignored: the target is a copy
    ctx = dict(model.context_encoder.named_parameters())
    assert all(torch.equal(p, ctx[n]) for n, p in model.target_encoder.named_parameters())


def test_ema_update_averages_parameters_not_buffers():
    torch.manual_seed(0)
    model = CNNJEPA("resnet10", predictor_layers=1)
    with torch.no_grad():
        for p in model.context_encoder.parameters():
            p.add_(1.0)
    before_t = {k: v.clone() for k, v in model.target_encoder.state_dict().items()}
    ctx = model.context_encoder.state_dict()
    model.context_encoder.bn1.running_mean.fill_(5.0)
    model.update_target(0.9)
    after = model.target_encoder.state_dict()
    for name, _ in model.target_encoder.named_parameters():
        assert torch.allclose(after[name], 0.9 * before_t[name] + 0.1 * ctx[name])
    assert torch.equal(after["bn1.running_mean"], before_t["bn1.running_mean"])


def test_predictor_costs_and_reach():
    from jepa_lite.course import analysis

    dw, std = analysis.predictor_costs(2048, (7, 7))
    assert dw["parameters"] == 12_662_784 and std["parameters"] == 113_264_640
    assert std["macs_per_image"] == 3 * 2048 * 2048 * 9 * 49
    assert dw["macs_per_image"] == 3 * (2048 * 9 + 2048 * 2048) * 49
    for layers, k in [(1, 3), (2, 3), (3, 3), (2, 5)]:
        reach = analysis.predictor_influence(ConvPredictor(4, layers, k), (9, 9), (4, 4), 4)
        side = analysis.predictor_receptive_field(layers, k)
        assert int(reach.sum()) == min(side, 9) ** 2
        assert reach[4, 4] and not reach[4, 4 + side // 2 + 1:].any()


@pytest.mark.parametrize("seed", range(3))
def test_cell_agreement_reads_each_target_cell_and_its_distance(seed):
    """Without a predictor the prediction at a target cell is the mask token, so the cosine
    there is cos(token, target feature): checked cell by cell; the model's mode is kept."""
    from jepa_lite.course import analysis

    torch.manual_seed(seed)
    model = CNNJEPA("resnet10", predictor_layers=0).train()
    x = torch.randn(3, 3, 128, 128, generator=torch.Generator().manual_seed(seed))
    m = sample_masks(3, (4, 4), "multiblock", torch.Generator().manual_seed(seed))
    got = analysis.cell_agreement(model, x, m)
    assert model.training
    assert len(got["cosine"]) == int(m.sum()) == len(got["distance"])
    assert (got["distance"] >= 1).all()  # a target cell is at least one cell from the context
    model.eval()
    with torch.no_grad():
        target = model.target_encoder(x)
    token = model.mask_token.token
    want = F.cosine_similarity(token[None, :, None, None].expand_as(target), target, dim=1)[m]
    assert torch.allclose(got["cosine"], want, atol=1e-5)
    cells = target.permute(0, 2, 3, 1)[m]  # the constant predictor: the mean target feature
    mean = F.cosine_similarity(cells, cells.mean(0, keepdim=True).expand_as(cells), dim=1)
    assert torch.allclose(got["mean_cosine"], mean, atol=1e-5)
    assert torch.equal(got["cosine_map"][m], got["cosine"]) and got["cosine_map"][~m].isnan().all()


def test_predictor_reach_is_structural_at_any_depth_and_width():
    """The reach of a deep, wide predictor is its receptive field clipped to the grid: no
    overflow, no dead path, whatever its weights."""
    from jepa_lite.course import analysis

    for layers, k in ((12, 3), (3, 5)):
        reach = analysis.predictor_influence(ConvPredictor(64, layers, k), (7, 7), (0, 0), 64)
        side = min(7, 1 + layers * (k - 1) // 2)
        assert int(reach.sum()) == side * side
