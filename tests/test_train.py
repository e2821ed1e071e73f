"""The pretraining loop: metrics, checkpoints, exact resume, clear errors (chapter 04)."""

import json

import pytest
import torch

from jepa_lite import checkpoint, cli, data, schedules, train

SPEC = data.SyntheticSpec(classes=3, per_class=8, val_per_class=2, size=64, seed=5)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return data.make_synthetic(tmp_path_factory.mktemp("d") / "syn", SPEC)


def tiny(**kw) -> train.TrainConfig:
    base = dict(arch="resnet10", image_size=64, epochs=3, batch_size=8, warmup_epochs=1,
                predictor_layers=1, checkpoint_every=2, log_every=1, seed=1)
    return train.TrainConfig(**{**base, **kw})


def test_run_writes_metrics_and_checkpoints(root, tmp_path):
    seen = []
    last = train.pretrain(tiny(), root, tmp_path, device="cpu", callbacks=[seen.append])
    rows = train.read_metrics(tmp_path)
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
             for r in train.read_metrics(tmp_path / "straight")]
    again = [{k: v for k, v in r.items() if k not in ("seconds", "images_per_s")}
             for r in train.read_metrics(tmp_path / "resumed")]
    assert strip == again


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(root, tmp_path, monkeypatch):
    good = schedules.learning_rate
    monkeypatch.setattr(schedules, "learning_rate",
                        lambda step, *a: float("inf") if step >= 3 else good(step, *a))
    with pytest.raises(train.NonFiniteLossError, match="loss became nan.*last good checkpoint"):
        train.pretrain(tiny(), root, tmp_path, device="cpu")
    assert checkpoint.load_checkpoint(tmp_path / "last.pt")["epoch"] == 1
    assert [r["epoch"] for r in train.read_metrics(tmp_path)] == [1]


def test_errors(root, tmp_path):
    with pytest.raises(ValueError, match="batch size 64 is larger than the data set \\(24 images"):
        train.pretrain(tiny(batch_size=64), root, tmp_path / "a", device="cpu")
    with pytest.raises(FileNotFoundError, match="--resume: no checkpoint"):
        train.pretrain(tiny(), root, tmp_path / "b", device="cpu", resume=True)
    with pytest.raises(ValueError, match="unsupported architecture 'resnet9'"):
        train.pretrain(tiny(arch="resnet9"), root, tmp_path / "c", device="cpu")
    with pytest.raises(ValueError, match="image size 100 is not a multiple of 32"):
        train.pretrain(tiny(image_size=100), root, tmp_path / "d", device="cpu")
    (tmp_path / "nosplit" / "val" / "x").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="no 'train/' folder"):
        train.pretrain(tiny(), tmp_path / "nosplit", tmp_path / "e", device="cpu")
    train.pretrain(tiny(epochs=1), root, tmp_path / "f", device="cpu")
    with pytest.raises(FileExistsError, match="pass --resume"):
        train.pretrain(tiny(epochs=1), root, tmp_path / "f", device="cpu")
    with pytest.raises(ValueError, match="trained with resnet10, not resnet18"):
        train.pretrain(tiny(epochs=1, arch="resnet18"), root, tmp_path / "f", device="cpu",
                       resume=True)
    bad = tmp_path / "f" / "evil.pt"  # a checkpoint is never unpickled beyond plain data
    torch.save({"x": object()}, bad)
    with pytest.raises(Exception, match="[Ww]eights only"):
        checkpoint.load_checkpoint(bad)


def test_cli_pretrain(root, tmp_path, capsys):
    args = ["pretrain", "--data-root", str(root), "--arch", "resnet10", "--image-size", "64",
            "--epochs", "1", "--batch-size", "8", "--out", str(tmp_path), "--device", "cpu",
            "--workers", "0", "--predictor-layers", "1"]
    assert cli.main(args) == 0
    assert "done:" in capsys.readouterr().out
    assert json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[0])["epoch"] == 1
    assert cli.main(args) == 2 and "pass --resume" in capsys.readouterr().err
    assert cli.main(args[:-4] + ["--resume", "--arch", "resnet18"]) == 2
    assert "trained with resnet10" in capsys.readouterr().err
