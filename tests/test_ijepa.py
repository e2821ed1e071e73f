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


def test_a_supervised_vit_learns_its_labels_and_is_probed_as_a_vit(root, tmp_path):
    """The supervised reference on I-JEPA's ViT (the bench's row beside I-JEPA's step): the
    one loop trains it until its loss falls well below its first epoch's; the probes read
    its trunk as a ViT (mean of the tokens); a ResNet-only geometry check does not refuse
    it, a size of no whole patches does."""
    from jepa_lite import methods
    from jepa_lite.encoders.vit import ViT
    from jepa_lite.errors import UsageError
    from jepa_lite.eval import probes

    cfg = TrainConfig(method="supervised").with_changes(
        arch="vit_micro", image_size=64, epochs=8, batch_size=8, warmup_epochs=0, workers=0,
        seed=3, checkpoint_every_steps=0, num_classes=3)
    assert methods.get("supervised").encodes("vit_micro")
    train.pretrain(cfg, root, tmp_path / "sup", device="cpu")
    losses = [r["loss"] for r in checkpoint.read_metrics(tmp_path / "sup")]
    assert len(losses) == 8 and sum(losses[-3:]) / 3 < 0.7 * losses[0], losses
    encoder = probes.encoder_from_checkpoint(tmp_path / "sup" / "last.pt")
    assert isinstance(encoder, ViT) and encoder.pool(encoder(torch.zeros(2, 3, 64, 64))).shape \
        == (2, 64)
    with pytest.raises(UsageError, match="multiple of 16"):
        methods.get("supervised").check(cfg.with_changes(image_size=72))


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_a_half_precision_step_follows_the_fp32_step(precision):
    """The GPU's paths on the CPU: bf16 autocast, fp16 autocast with the GradScaler. The loss
    is computed in fp32 from half-precision activations: within a few percent of the fp32
    step's, not equal to it; every weight stays finite after the step."""
    cfg = TrainConfig(method="ijepa").with_changes(**SMALL, image_size=64, seed=2,
                                                   compile=False)
    g = torch.Generator().manual_seed(2)
    images = torch.randn(4, 3, 64, 64, generator=g)
    batch = dict(zip(("images", "context", "targets"),
                     (images, *IJEPA.views(cfg).masks.draw(4, 2))))
    cpu = torch.device("cpu")
    full, half = (train.build(cfg.with_changes(precision=p), cpu) for p in ("fp32", precision))
    a, _ = train.train_step(full, [batch], 1, 0.99)
    b, _ = train.train_step(half, [batch], 1, 0.99)
    assert b.dtype == torch.float32 and b.item() == pytest.approx(a.item(), rel=0.05)
    assert b.item() != a.item()
    assert all(torch.isfinite(p).all() for p in half.model.parameters())
