"""The five methods on one loop (issue 9): heads, views, targets, C-JEPA's readings, the CLI
for every method (train, resume) and the errors a user meets."""

import itertools
from dataclasses import replace

import pytest
import torch
from torch import nn
from torchvision import transforms

from jepa_lite import checkpoint, cli, losses, masking, methods, train
from jepa_lite.config import METHOD_OPTIONS, EMAOptions, TrainConfig
from jepa_lite.data import folders, scenes
from jepa_lite.data.augment import with_jitter_strength
from jepa_lite.errors import UsageError
from jepa_lite.eval import probes
from jepa_lite.methods.cjepa import block_means
from tests.pil_reference import TwoViews, stack_views

VIEW_RECIPES = {m.name: m.view_recipes for m in methods.METHODS.values()
                if hasattr(m, "view_recipes")}  # the baselines' two views

SPEC = scenes.SyntheticSpec(classes=3, per_class=8, val_per_class=2, size=64, seed=5)
ALL = list(methods.METHODS)
# I-JEPA trains a ViT: the small one; on a 4x4 grid its target blocks are 1-3 tokens
VIT = ("--arch", "vit_micro", "--min-keep", "0", "--predictor-width", "64",
       "--predictor-depth", "1")


def own_encoder(method: str) -> dict:
    """The changes that give ``method`` an encoder it trains at 64 px (I-JEPA: a ViT)."""
    if methods.get(method).encodes("resnet10"):
        return {}
    return {"arch": "vit_micro", "min_keep": 0, "predictor_width": 64, "predictor_depth": 1}


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return scenes.make_synthetic(tmp_path_factory.mktemp("d") / "syn", SPEC)


def tiny(method, **kw) -> TrainConfig:
    base = dict(method=method, arch="resnet10", image_size=64, epochs=2, batch_size=8,
                warmup_epochs=1, checkpoint_every=0, log_every=1, seed=1, workers=0,
                **({"predictor_layers": 1} if "jepa" in method else {}))
    return TrainConfig().with_changes(**{**base, **kw})


def linears(module: nn.Module) -> list[tuple[int, int]]:
    return [(m.in_features, m.out_features) for m in module.modules() if isinstance(m, nn.Linear)]


# --------------------------------------------------------------------------- heads
def test_heads_are_the_authors_at_resnet50_and_scale_with_width():
    r50 = {m: methods.get(m)("resnet50") for m in ("simclr", "byol", "vicreg")}
    assert linears(r50["simclr"].projector) == [(2048, 2048), (2048, 128)]
    assert isinstance(r50["simclr"].projector[-1], nn.BatchNorm1d)  # BN on the output too
    assert linears(r50["byol"].projector) == [(2048, 1024), (1024, 256)]
    assert linears(r50["byol"].predictor) == [(256, 1024), (1024, 256)]
    assert linears(r50["vicreg"].projector) == [(2048, 8192), (8192, 8192), (8192, 8192)]
    r18 = {m: methods.get(m)("resnet18") for m in ("simclr", "byol", "vicreg")}
    for m in r18:  # ResNet-18 has 512 channels: every width a quarter
        assert [(a // 4, b // 4) for a, b in linears(r50[m].projector)] == \
            linears(r18[m].projector)


def test_defaults_are_the_authors_per_method():
    got = {m: (o.optimizer, o.lr, o.weight_decay, getattr(o, "ema_per_epoch", None))
           for m in ALL for o in [TrainConfig(method=m).method]}
    assert got == {"cnn-jepa": ("adamw", 0.01, 0.01, False), "cjepa": ("adamw", 0.01, 0.01, False),
                   "simclr": ("lars", 1.7, 1e-6, None), "byol": ("adamw", 0.01, 0.01, True),
                   "vicreg": ("lars", 0.5, 1e-6, None), "ijepa": ("adamw", 1e-3, 0.04, False),
                   "supervised": ("adamw", 1e-3, 0.01, None)}  # the course's reference
    assert TrainConfig(method="simclr").with_changes(lr=0.3).method.lr == 0.3  # a given value
    # switching the method never keeps another method's settings: SimCLR gets LARS 1.7
    for switched in (replace(TrainConfig(), method="simclr"),
                     TrainConfig().with_changes(lr=0.5).with_changes(method="simclr")):
        assert (switched.method.optimizer, switched.method.lr) == ("lars", 1.7)


def test_every_method_has_its_options_and_one_registry_line():
    assert list(methods.METHODS) == list(METHOD_OPTIONS)
    for name, m in methods.METHODS.items():
        assert m.Options is METHOD_OPTIONS[name] and m.name == name
        # a method with EMA options has an EMA target, and the schedule that moves it
        has_ema = issubclass(m.Options, EMAOptions)
        cfg = TrainConfig(method=name, arch="resnet10", image_size=64, epochs=2,
                          warmup_epochs=1).with_changes(**own_encoder(name))
        assert has_ema == bool(m.from_config(cfg).ema_pairs())
        assert has_ema == ("ema_momentum" in m.schedules(cfg, 10))


# --------------------------------------------------------------------------- views
def test_two_views_are_seeded_and_differ(root):
    folder = folders.image_folder(root, "train")
    image = folder.loader(folder.samples[0][0])
    for name, recipes in VIEW_RECIPES.items():
        t = TwoViews(*recipes, 64)
        torch.manual_seed(3)
        a1, b1 = t(image)
        torch.manual_seed(3)
        a2, b2 = t(image)
        assert torch.equal(a1, a2) and torch.equal(b1, b2), name
        assert a1.shape == (3, 64, 64) and not torch.equal(a1, b1), name
    batch = stack_views([((torch.zeros(3, 4, 4), torch.ones(3, 4, 4)), 0)] * 5)
    assert batch[0].shape == (5, 3, 4, 4) and batch[1].sum() == 5 * 48


def test_view_recipes_follow_the_authors_probabilities():
    simclr, byol, vicreg = (VIEW_RECIPES[m] for m in ("simclr", "byol", "vicreg"))
    assert simclr[0].jitter == (0.8, 0.8, 0.8, 0.2) and simclr[0].solarize_p == 0
    assert (byol[0].blur_p, byol[1].blur_p, byol[0].solarize_p, byol[1].solarize_p) == \
        (1.0, 0.1, 0.0, 0.2)
    assert vicreg[0] == vicreg[1] and vicreg[0].solarize_p == 0.1 and vicreg[0].blur_p == 0.5
    for r in (*simclr, *byol, *vicreg):
        assert r.crop_scale == (0.08, 1.0) and r.jitter_p == 0.8 and r.grey_p == 0.2


@pytest.mark.parametrize("strength", [0.0, 0.25, 0.5, 1.0, 2.5])
def test_jitter_strength_scales_every_colour_jitter(strength):
    """``--jitter-strength s`` multiplies brightness, contrast, saturation and hue of both
    views of every two-view method (SimCLR's colour-distortion strength); the rest stays."""
    for name, recipes in VIEW_RECIPES.items():
        t = TwoViews(*recipes, 64, jitter_strength=strength)
        for recipe, compose in zip(recipes, (t.first, t.second)):
            apply = next(x for x in compose.transforms if isinstance(x, transforms.RandomApply)
                         and isinstance(x.transforms[0], transforms.ColorJitter))
            jitter = apply.transforms[0]
            b, c, sat, hue = (strength * j for j in recipe.jitter)
            if b == 0:
                assert jitter.brightness is None, name
            else:
                assert jitter.brightness == pytest.approx((max(0, 1 - b), 1 + b)), name
                assert jitter.contrast == pytest.approx((max(0, 1 - c), 1 + c)), name
                assert jitter.saturation == pytest.approx((max(0, 1 - sat), 1 + sat)), name
                assert jitter.hue == pytest.approx((-hue, hue)), name
            assert apply.p == recipe.jitter_p, name
        assert with_jitter_strength(recipes[0], 1.0) == recipes[0]


def test_jitter_strength_out_of_range_is_named():
    with pytest.raises(ValueError, match=r"jitter strength 3 gives a hue jitter of 0.6; hue "
                                         r"jitter must lie in \[0, 0.5\]: choose "
                                         r"--jitter-strength between 0 and 2.5"):
        TwoViews(*VIEW_RECIPES["simclr"], 64, jitter_strength=3)
    with pytest.raises(ValueError, match="jitter strength -1 "):
        TwoViews(*VIEW_RECIPES["vicreg"], 64, jitter_strength=-1)


# --------------------------------------------------------------------------- BYOL
def test_byol_target_gets_no_gradient_and_follows_the_ema():
    torch.manual_seed(0)
    model = methods.BYOL("resnet10")
    a, b = torch.randn(4, 3, 64, 64), torch.randn(4, 3, 64, 64)
    loss, feats = model(a, b)
    loss.backward()
    target = [*model.target_backbone.parameters(), *model.target_projector.parameters()]
    assert all(p.grad is None and not p.requires_grad for p in target)
    assert all(p.grad is not None for p in model.predictor.parameters())
    assert not {id(p) for p in target} & {id(p) for p in model.trainable_parameters()}
    with torch.no_grad():
        for p in model.backbone.parameters():
            p.add_(torch.randn_like(p))
    before = [p.clone() for p in target]
    online = [p.clone() for p in (*model.backbone.parameters(), *model.projector.parameters())]
    model.update_target(0.9)
    for t, t0, o in zip(target, before, online, strict=True):
        torch.testing.assert_close(t, 0.9 * t0 + 0.1 * o)
    assert feats.shape == (4, 512)


# --------------------------------------------------------------------------- C-JEPA
@pytest.mark.parametrize("seed", range(10))
def test_block_means_are_the_mean_over_each_block(seed):
    g = torch.Generator().manual_seed(seed)
    pred = torch.randn(3, 5, 4, 4, generator=g, dtype=torch.float64)
    _, blocks = masking.sample_masks(3, (4, 4), "multiblock", g, return_blocks=True)
    means = block_means(pred, blocks)
    for m, b in itertools.product(range(blocks.shape[1]), range(3)):
        cells = pred[b][:, blocks[b, m]]
        torch.testing.assert_close(means[m, b], cells.mean(1))


@pytest.mark.parametrize("seed", range(10))
def test_returned_blocks_are_those_whose_union_is_the_mask(seed):
    g1, g2 = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed)
    for strategy in ("multiblock", "mixed", "random"):
        mask, blocks = masking.sample_masks(8, (7, 7), strategy, g1, return_blocks=True)
        assert torch.equal(mask, masking.sample_masks(8, (7, 7), strategy, g2))  # same draws
        if blocks.shape[1]:
            assert torch.equal(blocks.any(1), mask) and blocks.shape[1] == 4
        else:
            assert blocks.shape == (8, 0, 7, 7)


def cjepa_batch(seed, strategy="multiblock"):
    g = torch.Generator().manual_seed(seed)
    images = torch.randn(4, 3, 96, 96, generator=g)
    mask, blocks = masking.sample_masks(4, (3, 3), strategy, g, return_blocks=True)
    return images, mask, blocks


def test_cjepa_is_cnn_jepa_plus_beta_times_vicreg_of_projected_block_means():
    torch.manual_seed(0)
    cj = methods.CJEPA("resnet10", predictor_layers=1, beta=0.5, weights=(2.0, 3.0, 4.0))
    cn = methods.CNNJEPA("resnet10", predictor_layers=1)
    cn.load_state_dict(cj.state_dict(), strict=False)
    images, mask, blocks = cjepa_batch(1)
    l_cj, _ = cj(images, mask, blocks)
    l_cn, _ = cn(images, mask)
    pred = cj.predictor(cj.mask_token(cj.context_encoder(images, mask), mask))
    z = [cj.projector(p) for p in block_means(pred, blocks)]
    pairs = [losses.vicreg_loss(z[i], z[j], (2.0, 3.0, 4.0))
             for i, j in itertools.permutations(range(len(z)), 2)]  # ordered pairs, i != j
    torch.testing.assert_close(l_cj, l_cn + 0.5 * torch.stack(pairs).mean(), rtol=1e-5,
                               atol=1e-6)


def test_cjepa_under_random_masking_is_cnn_jepa():
    torch.manual_seed(0)
    cj = methods.CJEPA("resnet10", predictor_layers=1)
    cn = methods.CNNJEPA("resnet10", predictor_layers=1)
    cn.load_state_dict(cj.state_dict(), strict=False)
    images, mask, blocks = cjepa_batch(2, "random")
    l_cj, _ = cj(images, mask, blocks)
    l_cj.backward()
    assert torch.equal(l_cj, cn(images, mask)[0])
    assert all(p.grad is not None for p in cj.projector.parameters())  # in the graph, x 0


def test_cjepa_reading_b_regularises_the_pooled_context():
    torch.manual_seed(0)
    cj = methods.CJEPA("resnet10", predictor_layers=1, reading="B", beta=1.0,
                       weights=(1.0, 1.0, 1.0))
    assert not hasattr(cj, "projector")
    images, mask, _ = cjepa_batch(3)
    loss, pooled_target = cj(images, mask)
    target = cj.target_encoder(images)
    torch.testing.assert_close(pooled_target, target.mean((2, 3)))  # the diagnostics' rows
    context = cj.context_encoder(images, mask).mean((2, 3))
    l_jepa = losses.jepa_loss(cj.predictor(cj.mask_token(cj.context_encoder(images, mask),
                                                         mask)), target, mask)
    expected = 2 * l_jepa + losses.variance(context) + losses.covariance(context)
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-6)


def test_without_target_ema_the_target_is_a_copy_after_each_step():
    model = methods.CNNJEPA("resnet10", predictor_layers=1, target_ema=False)
    with torch.no_grad():
        for p in model.context_encoder.parameters():
            p.add_(1.0)
    model.update_target(0.996)
    for t, c in zip(model.target_encoder.parameters(), model.context_encoder.parameters(),
                    strict=True):
        assert torch.equal(t, c)


# --------------------------------------------------------------------------- the CLI
def cli_args(root, out, method, *extra):
    return ["pretrain", "--data-root", str(root), "--out", str(out), "--method", method, "--arch",
            "resnet10", "--image-size", "64", "--epochs", "2", "--batch-size", "8",
            "--warmup-epochs", "1", "--checkpoint-every", "0", "--seed", "3", "--workers", "0",
            *(() if methods.get(method).encodes("resnet10") else VIT), *extra]


@pytest.mark.parametrize("method", ALL)
def test_every_method_trains_resumes_exactly_and_is_probed_from_the_cli(method, root, tmp_path):
    assert cli.main(cli_args(root, tmp_path / "straight", method)) == 0
    cfg, _ = cli.pretrain_config(cli.build_parser().parse_args(
        cli_args(root, tmp_path / "resumed", method)))

    def stop_in_epoch_2(run, step):  # Ctrl-C in the last step of epoch 2, before it is saved
        if step.step == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train.pretrain(cfg, root, tmp_path / "resumed", device="cpu", on_step=stop_in_epoch_2)
    assert checkpoint.load_checkpoint(tmp_path / "resumed" / "last.pt")["epoch"] == 1
    assert cli.main(["pretrain", "--out", str(tmp_path / "resumed"), "--resume"]) == 0
    a = checkpoint.load_checkpoint(tmp_path / "straight" / "last.pt")
    b = checkpoint.load_checkpoint(tmp_path / "resumed" / "last.pt")
    assert a["config"]["method"]["name"] == method and a["epoch"] == b["epoch"] == 2
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), (method, k)
    rows = checkpoint.read_metrics(tmp_path / "straight")
    assert len(rows) == 2 and all(r["loss"] == r["loss"] for r in rows)  # finite
    assert (rows[0]["momentum"] is None) == (not issubclass(methods.get(method).Options,
                                                            EMAOptions))
    enc = probes.encoder_from_checkpoint(tmp_path / "straight" / "last.pt")
    prefix = methods.get(method).encoder_prefix
    for k, v in enc.state_dict().items():
        assert torch.equal(v, a["model"][prefix + k]), k


@pytest.mark.parametrize("extra, message", [
    (["--method", "byol", "--temperature", "0.2"],
     "--temperature is an option of simclr; byol does not use it: drop it"),
    (["--method", "simclr", "--masking", "random"],
     "--masking is an option of cnn-jepa and cjepa; simclr does not use it"),
    (["--method", "vicreg", "--num-blocks", "2"], "--num-blocks is an option of cnn-jepa"),
    (["--method", "simclr", "--beta", "0.1"], "--beta is an option of cjepa"),
    (["--method", "cjepa", "--jitter-strength", "0.5"],
     "--jitter-strength is an option of simclr, byol and vicreg; cjepa does not use it"),
    (["--method", "simclr", "--jitter-strength", "4"],
     r"jitter strength 4 gives a hue jitter of 0.8; .* --jitter-strength between 0 and 2.5"),
    (["--method", "cnn-jepa", "--vicreg-weights", "1", "1", "1"],
     "--vicreg-weights is an option of cjepa and vicreg"),
    (["--method", "vicreg", "--micro-batch", "1"],
     "micro-batch 1 .* too small for vicreg: its variance and covariance .* --micro-batch 2"),
    (["--method", "simclr", "--micro-batch", "1"],
     "too small for simclr: an anchor needs at least one negative"),
])
def test_bad_method_options_are_named(extra, message, root, tmp_path, capsys):
    base = ["pretrain", "--data-root", str(root), "--out", str(tmp_path / "r"), "--arch",
            "resnet10", "--image-size", "64", "--epochs", "2", "--warmup-epochs", "1",
            "--batch-size", "8"]
    assert cli.main(base + extra) == 2
    err = capsys.readouterr().err
    assert pytest.importorskip("re").search(message, err), err
    assert not (tmp_path / "r" / "last.pt").exists()


def test_unknown_method_is_named(root, tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli.main(["pretrain", "--out", str(tmp_path), "--method", "dino"])
    assert "invalid choice: 'dino'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="unknown method 'dino'; choose one of cnn-jepa, cjepa"):
        TrainConfig(method="dino")


def test_a_run_of_one_method_is_not_resumed_as_another(root, tmp_path, capsys):
    assert cli.main(cli_args(root, tmp_path, "simclr")) == 0
    before = (tmp_path / "last.pt").read_bytes()
    assert cli.main(["pretrain", "--out", str(tmp_path), "--resume", "--method", "byol"]) == 2
    err = capsys.readouterr().err
    assert "holds a simclr run; it cannot be resumed as byol: drop --method" in err
    assert (tmp_path / "last.pt").read_bytes() == before  # nothing lost


def test_a_checkpoint_from_before_the_nested_options_is_refused_in_one_line(root, tmp_path,
                                                                            capsys):
    """Checkpoints of the flat configuration (jepa_lite before nested method options) are no
    longer read: resuming one says how to start again, and loses nothing."""
    cfg = tiny("cnn-jepa", epochs=1, warmup_epochs=0)
    train.pretrain(cfg, root, tmp_path, device="cpu")
    ckpt = checkpoint.load_checkpoint(tmp_path / "last.pt")
    flat = {k: v for k, v in ckpt["config"].items() if k != "method"}
    flat.update({k: v for k, v in ckpt["config"]["method"].items() if k != "name"})
    ckpt["config"] = flat
    checkpoint.atomic_save(ckpt, tmp_path / "last.pt")
    before = (tmp_path / "last.pt").read_bytes()
    with pytest.raises(ValueError, match="older jepa_lite.*start the run again in a new --out"):
        TrainConfig.from_dict(flat)
    assert cli.main(["pretrain", "--out", str(tmp_path), "--resume"]) == 2
    assert "start the run again in a new --out" in capsys.readouterr().err
    assert (tmp_path / "last.pt").read_bytes() == before


def test_the_supervised_reference_learns_its_labels_through_the_loop(root, tmp_path):
    """The ceiling of chapters 05 and 08 is a method the one loop trains (its resume is in
    the test above): its loss falls well below its first epoch's (the labels are learned);
    bf16 autocast (the GPU's path, here on the CPU) computes the same loss to a few percent;
    a data set with more classes than its head is refused, naming the flag."""
    cfg = TrainConfig(method="supervised", arch="resnet10", image_size=64, epochs=8,
                      batch_size=8, warmup_epochs=0, workers=0, seed=3,
                      checkpoint_every_steps=0).with_changes(num_classes=3)
    train.pretrain(cfg, root, tmp_path / "fp32", device="cpu")
    losses = [r["loss"] for r in checkpoint.read_metrics(tmp_path / "fp32")]
    assert len(losses) == 8 and sum(losses[-3:]) / 3 < 0.7 * losses[0], losses
    one = cfg.with_changes(epochs=1)
    train.pretrain(one.with_changes(precision="bf16"), root, tmp_path / "bf16", device="cpu")
    bf16 = checkpoint.read_metrics(tmp_path / "bf16")[0]["loss"]
    assert bf16 == pytest.approx(losses[0], rel=0.05) and bf16 != losses[0]
    with pytest.raises(UsageError, match="holds 3 classes.*--num-classes 3"):
        train.pretrain(one.with_changes(num_classes=2), root, tmp_path / "two", device="cpu")
    assert methods.compared() == [m for m in ALL if m != "supervised"]
