"""I-JEPA as a method of the loop (``jepa_lite/methods/ijepa.py``): its loss against the
formula, each target block predicted on its own, its schedules and its optimiser's groups
as the official code sets them, the same masks however the loader runs (its resume and
probing: tests/test_methods.py's every-method test)."""

import pytest
import torch
import torch.nn.functional as F

from jepa_lite import checkpoint, train
from jepa_lite.config import TrainConfig
from jepa_lite.data import scenes
from jepa_lite.encoders.vit import ViTPredictor
from jepa_lite.losses import ijepa_loss
from jepa_lite.methods.ijepa import IJEPA
from tests.test_pipeline import assert_same, inputs_of

SPEC = scenes.SyntheticSpec(classes=3, per_class=8, val_per_class=2, size=64, seed=5)
SMALL = {"arch": "vit_micro", "min_keep": 0, "predictor_width": 64, "predictor_depth": 1}


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return scenes.make_synthetic(tmp_path_factory.mktemp("ij") / "syn", SPEC)


def test_the_loss_is_smooth_l1_averaged_over_every_feature():
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        pred, target = (torch.randn(3, 4, 5, 8, generator=g) * 2 for _ in range(2))
        d = (pred - target).abs()
        by_hand = torch.where(d < 1, 0.5 * d ** 2, d - 0.5).mean()
        torch.testing.assert_close(ijepa_loss(pred, target), by_hand)
        torch.testing.assert_close(ijepa_loss(pred, target), F.smooth_l1_loss(pred, target))


def test_each_target_block_is_predicted_on_its_own():
    """Moving one target block's positions changes that block's predictions only; the
    context reaches every block."""
    torch.manual_seed(0)
    predictor = ViTPredictor(dim=32, width=32, depth=2, heads=4).double().eval()
    g = torch.Generator().manual_seed(1)
    context = torch.randn(2, 5, 32, generator=g, dtype=torch.float64)
    where = torch.stack([torch.randperm(36, generator=g)[:5] for _ in range(2)])
    targets = torch.randint(0, 36, (2, 3, 4), generator=g)
    out = predictor(context, where, targets, (6, 6))
    assert out.shape == (2, 3, 4, 32)
    moved = targets.clone()
    moved[:, 1] = (moved[:, 1] + 7) % 36
    again = predictor(context, where, moved, (6, 6))
    assert torch.equal(out[:, [0, 2]], again[:, [0, 2]]) and not torch.equal(out[:, 1],
                                                                              again[:, 1])
    other = predictor(context + 1, where, targets, (6, 6))
    assert all(not torch.equal(out[:, p], other[:, p]) for p in range(3))


def test_schedules_are_the_official_ones():
    """[code] init_opt: lr warmed up from start_lr to lr, then cosine to final_lr_ratio x lr;
    weight decay cosine from 0.04 to 0.4; EMA momentum a straight line from 0.996 to 1."""
    cfg = TrainConfig(method="ijepa", epochs=10, warmup_epochs=2, arch="vit_small")
    s = IJEPA.schedules(cfg, steps_per_epoch=10)
    assert s["lr"](0) == pytest.approx(2e-4 + (1e-3 - 2e-4) / 20)
    assert s["lr"](19) == pytest.approx(1e-3) and s["lr"](100) == pytest.approx(1e-6)
    assert s["weight_decay"](0) == pytest.approx(0.04) and s["weight_decay"](100) == 0.4
    assert s["weight_decay"](50) == pytest.approx(0.22)  # the cosine's middle
    assert [s["ema_momentum"](k) for k in (0, 50, 100)] == pytest.approx([0.996, 0.998, 1.0])


def test_norms_and_biases_stay_undecayed_while_the_weights_follow_the_schedule(root, tmp_path):
    cfg = TrainConfig(method="ijepa", image_size=64, epochs=2, batch_size=8, warmup_epochs=1,
                      workers=0, seed=1, checkpoint_every=0).with_changes(**SMALL)
    train.pretrain(cfg, root, tmp_path / "run", device="cpu")
    groups = checkpoint.load_checkpoint(tmp_path / "run" / "last.pt")["optimizer"][
        "param_groups"]
    per_epoch = SPEC.classes * SPEC.per_class // cfg.batch_size  # 3 steps, 6 in all
    last = IJEPA.schedules(cfg, per_epoch)["weight_decay"](2 * per_epoch - 1)
    assert groups[0]["weight_decay"] == pytest.approx(last) and last > 0.04
    assert groups[1]["weight_decay"] == 0.0 and tuple(groups[1]["fixed"]) == ("weight_decay",)
    model = train.build_model(cfg)
    undecayed = {n for n, p in model.param_groups() if p.ndim <= 1}
    assert any(n.endswith("bias") for n in undecayed) and any("norm" in n for n in undecayed)
    assert len(groups[1]["params"]) == len(undecayed)


@pytest.mark.parametrize("workers", [0, 2])
def test_the_masks_do_not_depend_on_the_loader(root, workers):
    one = inputs_of(root, "ijepa", 0, **SMALL)
    assert_same(one, inputs_of(root, "ijepa", workers, **SMALL))
    assert set(one[0]) == {"images", "context", "targets"}
    with torch.no_grad():
        loss, pooled = IJEPA("vit_micro", 64, 1)(**one[0])
    assert loss.ndim == 0 and pooled.shape == (4, 64)
