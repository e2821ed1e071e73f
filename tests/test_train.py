"""The pretraining loop: metrics, checkpoints, exact resume, clear errors (chapter 04)."""

import dataclasses
import json
import os
from pathlib import Path

import pytest
import torch

from jepa_lite import checkpoint, cli, config, masking, methods, train
from jepa_lite.checkpoint import read_metrics
from jepa_lite.config import TrainConfig
from jepa_lite.course.profiles import PROFILES
from jepa_lite.data import scenes
from jepa_lite.encoders.resnet import patch_of
from jepa_lite.errors import UsageError
from jepa_lite.eval import diagnostics, probes

SPEC = scenes.SyntheticSpec(classes=3, per_class=8, val_per_class=2, size=64, seed=5)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return scenes.make_synthetic(tmp_path_factory.mktemp("d") / "syn", SPEC)


def tiny(**kw) -> TrainConfig:
    base = dict(arch="resnet10", image_size=64, epochs=3, batch_size=8, warmup_epochs=1,
                predictor_layers=1, checkpoint_every=2, log_every=1, seed=1, workers=0)
    return TrainConfig().with_changes(**{**base, **kw})


def stop_at(step: int):
    """An ``on_step`` callback: a preemption (Ctrl-C) just before global step ``step``."""
    def on_step(run, info):
        if info.step == step:
            raise KeyboardInterrupt
    return on_step


def test_run_writes_metrics_and_checkpoints(root, tmp_path):
    seen = []
    last = train.pretrain(tiny(), root, tmp_path, device="cpu", callbacks=[seen.append])
    rows = read_metrics(tmp_path)
    assert [r["epoch"] for r in rows] == [1, 2, 3] == [r["epoch"] for r in seen]
    for r in rows:
        assert {"loss", "lr", "momentum", "target_std", "effective_rank", "images_per_s"} <= set(r)
        assert 0 < r["loss"] < 2 and 0.996 <= r["momentum"] <= 1.0
    assert rows[0]["momentum"] < rows[1]["momentum"] < rows[2]["momentum"]
    assert rows[-1]["momentum"] > 0.9998  # cosine to 1.0 at the last step
    ckpt = checkpoint.load_checkpoint(last)  # weights_only=True
    assert ckpt["epoch"] == 3 and ckpt["config"]["arch"] == "resnet10"
    assert sorted(p.name for p in tmp_path.glob("*.pt")) == ["epoch_0002.pt", "last.pt"]
    assert not list(tmp_path.glob("*.tmp"))
    model = train.build_model(tiny())
    model.load_state_dict(ckpt["model"])


@pytest.mark.parametrize("seed", range(10))
def test_the_diagnostics_keep_the_last_256_rows_of_an_epoch(seed):
    """Whatever the micro-batch size and the number of steps, the collapse diagnostics read
    the newest rows, one pooled row per image, at most DIAGNOSTIC_ROWS of them; a resumed
    epoch that carries them reads the same rows."""
    g = torch.Generator().manual_seed(seed)
    micro, steps = int(torch.randint(1, 200, (1,), generator=g)), int(torch.randint(1, 40, (1,),
                                                                              generator=g))
    parts = [torch.randn(micro, 8, generator=g) for _ in range(steps)]  # pooled [B, D]
    rows = train.DiagnosticRows()
    for i, p in enumerate(parts):
        rows.add(p)
        if i == steps // 2:
            rows = train.DiagnosticRows(rows.kept())  # a mid-epoch checkpoint, resumed
    every = torch.cat(parts)
    n = min(len(every), diagnostics.DIAGNOSTIC_ROWS)
    assert torch.equal(rows.kept(), every[-n:])
    assert sum(len(p) for p in rows.parts[1:]) < n  # the oldest part kept only if needed
    assert train.DiagnosticRows().kept() is None
    with pytest.raises(ValueError, match=r"pooled features \[B, D\].*got \(4, 8, 2, 2\)"):
        rows.add(torch.randn(4, 8, 2, 2))  # a grid of cells: refused, not mis-measured


def test_an_epochs_diagnostics_read_every_image_of_a_short_epoch(root, tmp_path):
    train.pretrain(tiny(epochs=1, warmup_epochs=0), root, tmp_path, device="cpu")  # 3 x 8
    assert read_metrics(tmp_path)[0]["diagnostic_rows"] == 24


def test_resume_is_bit_identical_on_cpu(root, tmp_path):
    train.pretrain(tiny(), root, tmp_path / "straight", device="cpu")

    def interrupt(metrics):
        if metrics["epoch"] == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train.pretrain(tiny(), root, tmp_path / "resumed", device="cpu", callbacks=[interrupt])
    assert checkpoint.load_checkpoint(tmp_path / "resumed" / "last.pt")["epoch"] == 1
    train.pretrain(tiny(), root, tmp_path / "resumed", device="cpu", resume=True)
    a = checkpoint.load_checkpoint(tmp_path / "straight" / "last.pt")
    b = checkpoint.load_checkpoint(tmp_path / "resumed" / "last.pt")
    assert a["model"].keys() == b["model"].keys()
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    strip = [{k: v for k, v in r.items() if k not in ("seconds", "images_per_s")}
             for r in read_metrics(tmp_path / "straight")]
    again = [{k: v for k, v in r.items() if k not in ("seconds", "images_per_s")}
             for r in read_metrics(tmp_path / "resumed")]
    assert strip == again


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(root, tmp_path):
    def diverge(run, info):  # from step 3 on, an infinite learning rate
        if info.step >= 3:
            for group in run.optimizer.param_groups:
                group["lr"] = float("inf")

    with pytest.raises(train.NonFiniteLossError, match="loss became nan.*last good checkpoint "
                       "is .*last.pt \\(after epoch 1\\)"):
        train.pretrain(tiny(), root, tmp_path, device="cpu", on_step=diverge)
    assert checkpoint.load_checkpoint(tmp_path / "last.pt")["epoch"] == 1
    assert [r["epoch"] for r in read_metrics(tmp_path)] == [1]


@pytest.mark.parametrize("diverge_at", [1, 4])
def test_a_step_checkpoint_is_never_written_with_non_finite_weights(diverge_at, root, tmp_path):
    """--lr 1e30 --checkpoint-every-steps 1: the weights turn non-finite between two logged
    losses; no checkpoint holds them, and the error names the one that is good."""
    def diverge(run, info):
        if info.step >= diverge_at:
            for group in run.optimizer.param_groups:
                group["lr"] = 1e30

    cfg = tiny(checkpoint_every_steps=1, log_every=50)
    with pytest.raises(train.NonFiniteLossError, match="nan|not finite") as e:
        train.pretrain(cfg, root, tmp_path, device="cpu", on_step=diverge)
    ckpt = checkpoint.load_checkpoint(tmp_path / "last.pt")
    assert all(torch.isfinite(t).all() for t in ckpt["model"].values())
    where = (f"in epoch {ckpt['epoch'] + 1} after {ckpt['step']} steps" if ckpt["step"]
             else f"after epoch {ckpt['epoch']}")
    assert f"The last good checkpoint is {tmp_path / 'last.pt'} ({where})" in str(e.value)
    assert not list(tmp_path.glob("*.tmp"))


def test_no_checkpoint_at_all_is_said_when_the_first_step_diverges(root, tmp_path):
    def diverge(run, info):  # the first step already makes the weights infinite
        for group in run.optimizer.param_groups:
            group["lr"] = float("inf")

    with pytest.raises(train.NonFiniteLossError, match="No checkpoint was written"):
        train.pretrain(tiny(checkpoint_every_steps=1), root, tmp_path, device="cpu",
                       on_step=diverge)
    assert not (tmp_path / "last.pt").exists()


def test_errors(root, tmp_path):
    with pytest.raises(ValueError, match="batch size 64 is larger than the data set \\(24 images"):
        train.pretrain(tiny(batch_size=64), root, tmp_path / "a", device="cpu")
    with pytest.raises(FileNotFoundError, match="--resume: no checkpoint"):
        train.pretrain(tiny(), root, tmp_path / "b", device="cpu", resume=True)
    with pytest.raises(ValueError, match="unsupported architecture 'resnet9'"):
        train.pretrain(tiny(arch="resnet9"), root, tmp_path / "c", device="cpu")
    with pytest.raises(ValueError, match="image size 100 is not a multiple of 32"):
        train.pretrain(tiny(image_size=100), root, tmp_path / "d", device="cpu")
    with pytest.raises(ValueError, match="image size 120 is not a multiple of 16 .* use e.g. "
                                         "128 .*112 gives the paper's 7x7 grid"):
        train.pretrain(tiny(arch="resnet10-s16", image_size=120), root, tmp_path / "d",
                       device="cpu")
    (tmp_path / "nosplit" / "val" / "x").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="no 'train/' folder"):
        train.pretrain(tiny(), tmp_path / "nosplit", tmp_path / "e", device="cpu")
    train.pretrain(tiny(epochs=1, warmup_epochs=0), root, tmp_path / "f", device="cpu")
    with pytest.raises(FileExistsError, match="pass --resume"):
        train.pretrain(tiny(epochs=1, warmup_epochs=0), root, tmp_path / "f", device="cpu")
    with pytest.raises(ValueError, match="arch: resnet10 in the checkpoint, resnet18 now"):
        train.pretrain(tiny(epochs=1, warmup_epochs=0, arch="resnet18"), root, tmp_path / "f",
                       device="cpu", resume=True)
    bad = tmp_path / "f" / "evil.pt"  # a checkpoint is never unpickled beyond plain data
    torch.save({"x": object()}, bad)
    with pytest.raises(Exception, match="[Ww]eights only"):
        checkpoint.load_checkpoint(bad)


def test_cli_pretrain(root, tmp_path, capsys):
    args = ["pretrain", "--data-root", str(root), "--arch", "resnet10", "--image-size", "64",
            "--epochs", "1", "--warmup-epochs", "0", "--batch-size", "8", "--out",
            str(tmp_path), "--device", "cpu", "--workers", "0", "--predictor-layers", "1"]
    assert cli.main(args) == 0
    assert "done:" in capsys.readouterr().out
    assert json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[0])["epoch"] == 1
    assert cli.main(args) == 2 and "pass --resume" in capsys.readouterr().err
    assert cli.main(args[:-4] + ["--resume", "--arch", "resnet18"]) == 2
    assert "arch: resnet10 in the checkpoint, resnet18 now (--arch resnet10 keeps it)" in \
        capsys.readouterr().err


def strip(rows):
    return [{k: v for k, v in r.items() if k not in ("seconds", "images_per_s")} for r in rows]


def test_mid_epoch_checkpoint_resumes_bit_for_bit(root, tmp_path):
    cfg = tiny(epochs=2, checkpoint_every_steps=1)  # 24 images, batch 8: 3 steps per epoch
    train.pretrain(cfg, root, tmp_path / "straight", device="cpu")
    with pytest.raises(KeyboardInterrupt):  # in epoch 2, before its second step
        train.pretrain(cfg, root, tmp_path / "resumed", device="cpu", on_step=stop_at(4))
    ckpt = checkpoint.load_checkpoint(tmp_path / "resumed" / "last.pt")
    assert (ckpt["epoch"], ckpt["step"]) == (1, 1) and ckpt["metrics"] is None
    train.pretrain(cfg, root, tmp_path / "resumed", device="cpu", resume=True)
    a = checkpoint.load_checkpoint(tmp_path / "straight" / "last.pt")
    b = checkpoint.load_checkpoint(tmp_path / "resumed" / "last.pt")
    for k in a["model"]:  # BatchNorm running buffers included: one process, the same steps
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert strip(read_metrics(tmp_path / "straight")) == \
        strip(read_metrics(tmp_path / "resumed"))


def test_workers_do_not_change_the_run(root, tmp_path):
    train.pretrain(tiny(epochs=1, warmup_epochs=0, workers=0), root, tmp_path / "w0", device="cpu")
    train.pretrain(tiny(epochs=1, warmup_epochs=0, workers=2), root, tmp_path / "w2", device="cpu")
    a = checkpoint.load_checkpoint(tmp_path / "w0" / "last.pt")["model"]
    b = checkpoint.load_checkpoint(tmp_path / "w2" / "last.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_refuses_every_change_that_alters_the_run(root, tmp_path):
    out = tmp_path / "run"
    train.pretrain(tiny(epochs=2), root, out, device="cpu")
    changed = tiny(epochs=2, ema=(0.99, 1.0), weight_decay=0.05, loss="l2",
                   num_blocks=2, zero_init_residual=True, micro_batch=4)
    with pytest.raises(ValueError) as e:
        train.pretrain(changed, root, out, device="cpu", resume=True)
    msg = str(e.value)
    for said in ("micro_batch: 8 in the checkpoint, 4 now (--micro-batch 8 keeps it)",
                 "weight_decay: 0.01 in the checkpoint, 0.05 now (--weight-decay 0.01",
                 "ema: [0.996, 1.0] in the checkpoint, [0.99, 1.0] now (--ema 0.996 1.0",
                 "loss: official in the checkpoint, l2 now (--loss official",
                 "zero_init_residual: False in the checkpoint, True now "
                 "(--no-zero-init-residual keeps it)",
                 "masking.num_blocks: 4 in the checkpoint, 2 now (--num-blocks 4 keeps it)",
                 "start a new run in another --out"):
        assert said in msg, (said, msg)
    assert "lr" not in [part.split(":")[0].strip() for part in msg.split(";")]
    assert "masking.block_scale" not in msg  # only what changed
    for field, value, said in (("depthwise_separable", False, "--no-depthwise-separable"),
                               ("depthwise_separable", True, "--depthwise-separable"),
                               ("ema_per_epoch", True, "--ema-per-epoch"),
                               ("official_masks", False, "--no-official-masks"),
                               ("masking.block_scale", (0.1, 0.2), "--block-scale 0.1 0.2")):
        assert checkpoint.keeps(field, value) == said
    # how the run is carried out may change: workers, logging, checkpoint cadence
    train.pretrain(tiny(epochs=3, workers=1, log_every=3, checkpoint_every_steps=2), root,
                   tmp_path / "other", device="cpu")
    with pytest.raises(ValueError, match="epochs: 3 in the checkpoint, 4 now"):
        train.pretrain(tiny(epochs=4), root, tmp_path / "other", device="cpu", resume=True)


def test_resume_refuses_another_data_set_and_old_checkpoints(root, tmp_path):
    other = scenes.make_synthetic(tmp_path / "other", scenes.SyntheticSpec(
        classes=3, per_class=8, val_per_class=2, size=64, seed=6))  # same classes, other images
    cfg = tiny(epochs=2, checkpoint_every_steps=1)
    with pytest.raises(KeyboardInterrupt):
        train.pretrain(cfg, root, tmp_path / "run", device="cpu", on_step=stop_at(1))
    with pytest.raises(ValueError, match=r"stopped in the middle of epoch 1 \(step 1\).*24 "
                                         r"images.*holds another one.*--data-root " +
                                         str(root.resolve())):
        train.pretrain(cfg, other, tmp_path / "run", device="cpu", resume=True)
    ckpt = checkpoint.load_checkpoint(tmp_path / "run" / "last.pt")
    del ckpt["format"]  # as written before the seeded loader
    torch.save(ckpt, tmp_path / "run" / "last.pt")
    with pytest.raises(ValueError, match="older jepa_lite.*cannot continue exactly.*jepa-lite "
                                         "probe"):
        train.pretrain(cfg, root, tmp_path / "run", device="cpu", resume=True)


def test_one_trainer_per_run_folder(root, tmp_path):
    with checkpoint.RunLock(tmp_path):
        assert checkpoint.is_locked(tmp_path)
        with pytest.raises(UsageError, match=f"is being trained by pid {os.getpid()}"):
            train.pretrain(tiny(epochs=1, warmup_epochs=0), root, tmp_path, device="cpu")
    assert not checkpoint.is_locked(tmp_path)
    train.pretrain(tiny(epochs=1, warmup_epochs=0), root, tmp_path, device="cpu")
    assert not checkpoint.is_locked(tmp_path)  # released at the end


def test_micro_batch_is_the_batchnorm_group(root, tmp_path):
    seen = []

    def watch(run, info):  # before the first step: every BatchNorm group is recorded
        if info.step == 0:
            model = run.model
            for m in (model.context_encoder.bn1, model.target_encoder.bn1, model.predictor[2]):
                m.register_forward_hook(lambda mod, inp, out: seen.append(inp[0].shape[0]))

    train.pretrain(tiny(epochs=1, warmup_epochs=0, batch_size=8, micro_batch=2), root, tmp_path,
                   device="cpu", on_step=watch)
    assert seen == [2] * (3 * 4 * 3)  # 3 steps x 4 micro-batches x 3 BatchNorms
    with pytest.raises(ValueError, match="global batch 8 does not split.*micro-batches of 3"):
        train.pretrain(tiny(micro_batch=3), root, tmp_path / "x", device="cpu")


def test_paper_exact_reproduces_the_authors_code(root, tmp_path):
    cfg = config.paper_exact(TrainConfig())
    assert (cfg.method.official_masks, cfg.method.ema_per_epoch, cfg.zero_init_residual,
            cfg.micro_batch) == (True, True, True, 128)
    # zero_init_residual: every residual block starts as the identity, in both encoders
    model = train.build_model(config.paper_exact(tiny()))
    for enc in (model.context_encoder, model.target_encoder):
        blocks = [b for layer in (enc.layer1, enc.layer2, enc.layer3, enc.layer4) for b in layer]
        assert all(b.bn2.weight.abs().max() == 0 and b.bn1.weight.min() == 1 for b in blocks)
    assert train.build_model(tiny()).context_encoder.layer1[0].bn2.weight.min() == 1
    # the official masks and the EMA momentum stepped once per epoch, seen in a run
    masks, momenta = [], []

    def watch(run, info):
        momenta.append(info.momentum)
        if info.step == 0:
            run.model.register_forward_pre_hook(
                lambda module, args, kwargs: masks.append(kwargs["mask"]), with_kwargs=True)

    run = config.paper_exact(tiny(epochs=3, image_size=96, strategy="multiblock")).with_changes(
        micro_batch=4)  # the paper's 128 is too many for a CPU test
    root96 = scenes.make_synthetic(tmp_path / "d96", scenes.SyntheticSpec(
        classes=3, per_class=8, val_per_class=2, size=96, seed=5))
    train.pretrain(run, root96, tmp_path / "run", device="cpu", on_step=watch)
    m = torch.cat(masks)
    assert m.any() and not m[:, -1, :].any() and not m[:, :, -1].any()  # quirk 2
    assert [len(set(momenta[e * 3:(e + 1) * 3])) for e in range(3)] == [1, 1, 1]
    assert momenta[0] < momenta[3] < momenta[6]
    # and without it: targets reach the last row, the momentum moves every step
    masks.clear()
    momenta.clear()
    train.pretrain(tiny(epochs=3, image_size=96, micro_batch=4, strategy="multiblock"), root96,
                   tmp_path / "ours", device="cpu", on_step=watch)
    assert torch.cat(masks)[:, -1, :].any() and len(set(momenta)) == len(momenta)


def other_value(value, kind):
    """A value of ``kind`` unlike ``value`` that every field's bounds admit."""
    import typing

    args = typing.get_args(kind)
    if kind is bool:
        return not value
    if typing.get_origin(kind) is typing.Literal:
        return next(a for a in args if a != value)
    if typing.get_origin(kind) is tuple:
        return tuple(round(v * 0.5, 4) + 0.0001 * i if isinstance(v, float) else v + 1
                     for i, v in enumerate(value))
    if isinstance(value, str):
        return {"resnet50": "resnet18"}[value]
    base = value if value is not None else 2
    return type(base)(base * 0.5) if isinstance(base, float) else base + 1


def test_every_option_is_generated_from_a_field_and_sets_it():
    """One schema: every field of the run and of every method's options has exactly one
    option, and passing it on the command line sets that field (and nothing else)."""
    parser = cli.build_parser()
    seen = set()
    mask_fields = {g.name for g in dataclasses.fields(config.MaskOptions)}
    for flag, f, kind, owners in config.schema():
        if f.name == "method":
            continue
        method = next(iter(owners), "cnn-jepa")
        arch = "resnet50" if methods.get(method).encodes("resnet50") else "vit_small"  # I-JEPA
        base = TrainConfig(method=method, epochs=20, arch=arch)

        def holder(c, f=f, owners=owners):  # where the field lives: run, method, masking
            return c.method.masking if f.name in mask_fields else c.method if owners else c

        value = other_value(getattr(holder(base), f.name), kind)
        value = {"kernel_size": 5, "image_size": 256}.get(f.name, value)  # odd; tiles 32 px
        text = ([flag] if value is True else ["--no-" + flag[2:]] if value is False else
                [flag, *map(str, value if isinstance(value, tuple) else [value])])
        args = parser.parse_args(["pretrain", "--out", "x", "--data-root", "d", "--method",
                                  method, "--epochs", "20", "--arch", arch, *text])
        cfg, _ = cli.pretrain_config(args)
        assert getattr(holder(cfg), f.name) == pytest.approx(value), flag
        assert cfg == base.with_changes(**{f.name: getattr(holder(cfg), f.name)}), flag
        seen.add(f.name)
    every = {g.name for g in dataclasses.fields(TrainConfig)} - {"method"}
    every |= {g.name for o in config.METHOD_OPTIONS.values() for g in dataclasses.fields(o)}
    every |= {g.name for g in dataclasses.fields(config.MaskOptions)}
    assert seen == every - {"masking"}


def test_cli_resume_takes_the_checkpoints_settings(root, tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["pretrain", "--data-root", str(root), "--arch", "resnet10", "--image-size",
                     "64", "--epochs", "1", "--warmup-epochs", "0", "--batch-size", "8",
                     "--micro-batch", "4", "--out", str(out), "--device", "cpu", "--workers",
                     "0", "--predictor-layers", "1", "--ema", "0.99", "1.0", "--num-blocks", "2",
                     "--paper-exact"]) == 0
    parser = cli.build_parser()
    cfg, data_root = cli.pretrain_config(parser.parse_args(["pretrain", "--out", str(out),
                                                            "--resume"]))
    assert Path(data_root) == root.resolve()
    assert (cfg.arch, cfg.micro_batch, cfg.method.ema, cfg.method.masking.num_blocks) == \
        ("resnet10", 4, (0.99, 1.0), 2)
    assert cfg.method.official_masks and cfg.method.ema_per_epoch and cfg.zero_init_residual
    assert TrainConfig.from_dict(json.loads((out / "config.json").read_text())) == cfg
    assert cli.main(["pretrain", "--out", str(out), "--resume", "--epochs", "3",
                     "--device", "cpu"]) == 2
    assert "epochs: 1 in the checkpoint, 3 now (--epochs 1 keeps it)" in capsys.readouterr().err
    # a profile's recipe, with its generated data
    cfg, data_root = cli.pretrain_config(parser.parse_args(
        ["pretrain", "--out", str(tmp_path / "s"), "--profile", "smoke", "--lr", "0.003"]))
    smoke = PROFILES["smoke"]
    assert (cfg.arch, cfg.image_size, cfg.epochs, cfg.method.lr) == (
        smoke.pretrain["arch"], smoke.image_size, smoke.pretrain["epochs"], 0.003)
    assert cfg.method.ema == smoke.methods["cnn-jepa"]["ema"]  # the rest of the method's recipe
    assert (Path(data_root) / "train").is_dir()
    with pytest.raises(ValueError, match="needs --data-root"):
        cli.pretrain_config(parser.parse_args(["pretrain", "--out", str(tmp_path / "f"),
                                               "--profile", "full"]))
    # a run folder's config.json starts another run with the same settings
    cfg2, _ = cli.pretrain_config(parser.parse_args(
        ["pretrain", "--out", str(tmp_path / "again"), "--config", str(out / "config.json"),
         "--data-root", str(root)]))
    assert cfg2 == TrainConfig.from_dict(json.loads((out / "config.json").read_text()))


def test_small_image_stem_trains_on_the_paper_grid_and_is_probed(root, tmp_path):
    """``resnet10-s16`` at 112 px: the paper's 7x7 grid with 16 px patches, end to end."""
    cfg = tiny(arch="resnet10-s16", image_size=112, epochs=1, warmup_epochs=0,
               strategy="multiblock")
    assert patch_of(cfg.arch) == 16 and masking.grid_of(cfg.image_size, cfg.arch) == (7, 7)
    assert methods.get(cfg.method.name).views(cfg).masks.grid == (7, 7)
    train.pretrain(cfg, root, tmp_path, device="cpu")
    enc = probes.encoder_from_checkpoint(tmp_path / "last.pt")
    assert enc.patch == 16 and enc(torch.randn(1, 3, 112, 112)).shape[-2:] == (7, 7)
    r = probes.evaluate(enc, "s16", root, tmp_path / "probe", image_size=112, k=5, epochs=1)
    assert r["image_size"] == 112 and r["encoder"] == "s16"
    assert list((tmp_path / "probe").rglob("val-112"))  # the bank was made at 112 px
