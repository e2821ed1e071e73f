"""LARS, written once (issue 9): against lightly's step, and what the trust ratio means."""

import pytest
import torch
from lightly.utils.lars import LARS as LightlyLARS
from torch import nn

from jepa_lite import optim


def model(seed):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))


@pytest.mark.parametrize("seed", range(10))
def test_lars_steps_like_lightly(seed):
    ours, theirs = model(seed), model(seed)
    kw = {"lr": 0.3 + seed / 10, "momentum": 0.9}
    wd = 10 ** -(seed % 4 + 1)
    opt_a = optim.LARS(optim.decay_groups(list(ours.named_parameters()), wd), **kw)
    opt_b = LightlyLARS(optim.decay_groups(list(theirs.named_parameters()), wd), **kw)
    g = torch.Generator().manual_seed(seed)
    for _ in range(5):
        x = torch.randn(16, 6, generator=g)
        for m, opt in ((ours, opt_a), (theirs, opt_b)):
            opt.zero_grad()
            m(x).square().mean().backward()
            opt.step()
    for p, q in zip(ours.parameters(), theirs.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-7)


def test_norms_and_biases_are_neither_decayed_nor_scaled():
    m = model(0)
    groups = optim.decay_groups(list(m.named_parameters()), 1e-6)
    assert all(p.ndim > 1 for p in groups[0]["params"]) and groups[0]["weight_decay"] == 1e-6
    assert all(p.ndim == 1 for p in groups[1]["params"]) and groups[1]["weight_decay"] == 0


@pytest.mark.parametrize("scale", [1e-3, 1.0, 1e3])
def test_a_layer_moves_by_eta_lr_of_its_norm_whatever_the_gradient_scale(scale):
    w = nn.Parameter(torch.randn(20, 20))
    opt = optim.LARS([{"params": [w], "weight_decay": 1e-9}], lr=1.0, momentum=0.0)
    before = w.detach().clone()
    w.grad = torch.randn(20, 20) * scale
    opt.step()
    moved = (w.detach() - before).norm() / before.norm()
    assert moved == pytest.approx(0.001, rel=1e-3)


def test_unknown_optimizer_is_named():
    with pytest.raises(ValueError, match="unknown optimizer 'sgd'.*adamw, lars"):
        optim.build("sgd", [], 0.1, 0.0, torch.device("cpu"))


def test_a_weight_decay_schedule_leaves_norms_and_biases_undecayed(tmp_path):
    """train.apply sets a scheduled weight decay on the decayed group only, and the marks
    survive a checkpoint: norms and biases keep 0 after a resume too."""
    from jepa_lite.train import apply

    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    opt = optim.build("lars", list(model.named_parameters()), 0.1, 1e-6, torch.device("cpu"))
    apply(opt, {"lr": 0.5, "weight_decay": 0.04, "ema_momentum": 0.99})
    assert [(g["lr"], g["weight_decay"]) for g in opt.param_groups] == [(0.5, 0.04), (0.5, 0.0)]
    torch.save(opt.state_dict(), tmp_path / "opt.pt")
    again = optim.build("lars", list(model.named_parameters()), 0.1, 1e-6, torch.device("cpu"))
    again.load_state_dict(torch.load(tmp_path / "opt.pt", weights_only=True))
    apply(again, {"weight_decay": 0.4})
    assert [g["weight_decay"] for g in again.param_groups] == [0.4, 0.0]
