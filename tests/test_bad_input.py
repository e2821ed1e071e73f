"""Bad input, tried as a new user would (issue 20's table): every case ends in one line that
names the problem and the fix, or in the right behaviour, and loses nothing already made."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from jepa_lite import checkpoint, cli, data, features, probes, train
from jepa_lite.backbone import dense_trunk
from jepa_lite.config import TrainConfig

SPEC = data.SyntheticSpec(classes=3, per_class=8, val_per_class=2, size=64, seed=11)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return data.make_synthetic(tmp_path_factory.mktemp("bad") / "syn", SPEC)


def pretrain_args(root, out, *extra):
    return ["pretrain", "--data-root", str(root), "--out", str(out), "--arch", "resnet10",
            "--image-size", "64", "--batch-size", "8", "--epochs", "2", "--warmup-epochs",
            "1", "--predictor-layers", "1", "--workers", "0", "--device", "cpu", *extra]


def one_line_error(capsys, *words) -> str:
    """The command's stderr: one line, naming every one of ``words``, no traceback and no
    'please report' (which is for bugs)."""
    err = capsys.readouterr().err
    lines = [part for line in err.splitlines() for part in line.split("\r")  # progress bars
             if part.strip() and "it/s]" not in part and "%|" not in part]
    assert len(lines) == 1, err
    assert "Traceback" not in err and "please report" not in err, err
    for w in words:
        assert w in lines[0], (w, lines[0])
    return lines[0]


def run_cli(argv) -> int:
    """``jepa-lite ARGV``'s exit status, also when argparse itself refuses (SystemExit)."""
    try:
        return cli.main(argv)
    except SystemExit as e:
        return e.code


@pytest.mark.parametrize("epochs", ["0", "-1"])
def test_no_epochs_is_refused_before_anything_is_written(epochs, root, tmp_path, capsys):
    args = pretrain_args(root, tmp_path / "run")
    args[args.index("--epochs") + 1] = epochs
    assert run_cli(args) == 2
    one_line_error(capsys, f"--epochs {epochs}", "at least 1")
    assert not (tmp_path / "run").exists()


def test_an_ema_momentum_outside_zero_one_is_refused(root, tmp_path, capsys):
    assert run_cli(pretrain_args(root, tmp_path / "run", "--ema", "1.5", "0.5")) == 2
    one_line_error(capsys, "--ema 1.5 0.5", "at most 1")
    assert run_cli(pretrain_args(root, tmp_path / "run", "--ema", "0.99", "0.9")) == 2
    one_line_error(capsys, "--ema 0.99 0.9", "must not be smaller")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("option, value", [("--k", "0"), ("--k", "-5"), ("--epochs", "0"),
                                           ("--temperature", "0"), ("--workers", "-1")])
def test_impossible_probe_options_are_refused_while_parsing(option, value, root, tmp_path,
                                                            capsys):
    argv = ["probe", "--random-init", "--arch", "resnet10", "--data-root", str(root), "--out",
            str(tmp_path / "p"), option, value]
    assert run_cli(argv) == 2
    one_line_error(capsys, f"argument {option}: {value}")
    assert not (tmp_path / "p").exists()


@pytest.mark.parametrize("option", ["--steps", "--batch-size", "--loader-batches"])
def test_impossible_bench_options_are_refused_while_parsing(option, capsys):
    assert run_cli(["bench", option, "0"]) == 2
    one_line_error(capsys, f"argument {option}: 0 is less than 1")


def test_no_drawing_threads_is_refused_while_parsing(tmp_path, capsys):
    assert run_cli(["make-data", "synthetic", "--out", str(tmp_path / "d"), "--workers",
                    "0"]) == 2
    one_line_error(capsys, "argument --workers: 0 is less than 1")
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize("argv", [
    ["pretrain", "--data-root", "D", "--out", "{file}"],
    ["pretrain", "--data-root", "D", "--out", "{file}/run"],
    ["probe", "--random-init", "--data-root", "D", "--out", "{file}"],
    ["course", "--out", "{file}"],
    ["sweep", "--out", "{file}"],
    ["make-data", "synthetic", "--out", "{file}/data"],
    ["results", "outputs", "--dest", "{file}"],
])
def test_an_output_folder_that_is_a_file_is_named(argv, tmp_path, capsys):
    file = tmp_path / "notes.txt"
    file.write_text("keep me")
    assert run_cli([a.replace("{file}", str(file)) for a in argv]) == 2
    one_line_error(capsys, f"{file} is a file, not a folder")
    assert file.read_text() == "keep me"


def corrupt_copy(root, tmp_path, split):
    """A copy of the data set with one image of ``split`` cut short (a broken download)."""
    import shutil

    copy = shutil.copytree(root, tmp_path / "copy")
    victim = sorted((copy / split).rglob("*.png"))[3]
    victim.write_bytes(victim.read_bytes()[:40])
    return copy, victim


@pytest.mark.parametrize("workers", ["0", "2"])
def test_a_corrupt_training_image_is_named_in_one_line(workers, root, tmp_path, capsys):
    copy, victim = corrupt_copy(root, tmp_path, "train")
    args = pretrain_args(copy, tmp_path / "run")
    args[args.index("--workers") + 1] = workers  # also when a loader worker meets it
    assert run_cli(args) == 2
    line = one_line_error(capsys, f"cannot read image {victim}", "delete or replace this file")
    assert line.index(str(victim)) < 60  # the file first, not at the end of a traceback


def test_a_corrupt_validation_image_is_named_in_one_line(root, tmp_path, capsys):
    copy, victim = corrupt_copy(root, tmp_path, "val")
    assert run_cli(["probe", "--random-init", "--arch", "resnet10", "--data-root", str(copy),
                    "--image-size", "64", "--out", str(tmp_path / "p"), "--epochs", "1",
                    "--k", "2", "--workers", "2", "--device", "cpu"]) == 2
    one_line_error(capsys, f"cannot read image {victim}")


@pytest.fixture(scope="module")
def finished(root, tmp_path_factory):
    """A finished 4-epoch run with epoch_0002.pt and epoch_0004.pt kept beside last.pt."""
    out = tmp_path_factory.mktemp("finished") / "run"
    assert cli.main(pretrain_args(root, out, "--epochs", "4", "--checkpoint-every", "2")) == 0
    return out


def test_a_truncated_checkpoint_is_named_when_probed(finished, root, tmp_path, capsys):
    import shutil

    run = shutil.copytree(finished, tmp_path / "run")
    last = run / "last.pt"
    last.write_bytes(last.read_bytes()[:1000])
    assert run_cli(["probe", "--checkpoint", str(last), "--data-root", str(root), "--out",
                    str(tmp_path / "p"), "--device", "cpu"]) == 2
    one_line_error(capsys, f"checkpoint {last} is damaged", str(run / "epoch_0004.pt"))


def test_resume_falls_back_to_the_newest_intact_checkpoint(finished, root, tmp_path, capsys):
    """last.pt of a stopped run is cut short: --resume says so and continues from the newest
    epoch_NNNN.pt, training the epochs after it again, to the same weights."""
    import shutil

    run = shutil.copytree(finished, tmp_path / "run")
    straight = checkpoint.load_checkpoint(run / "last.pt")
    (run / "epoch_0004.pt").unlink()  # stopped after epoch 3: last.pt is epoch 3's
    last = run / "last.pt"
    last.write_bytes(last.read_bytes()[:5000])  # the disk filled up while writing it
    capsys.readouterr()
    assert cli.main(["pretrain", "--out", str(run), "--resume", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert f"checkpoint {last} is damaged" in out
    assert f"resuming from {run / 'epoch_0002.pt'} (epoch 2), the newest intact checkpoint" \
        in out
    resumed = checkpoint.load_checkpoint(last)
    assert resumed["epoch"] == 4
    for k, v in straight["model"].items():
        assert torch.equal(v, resumed["model"][k]), k
    assert [m["epoch"] for m in checkpoint.read_metrics(run)] == [1, 2, 3, 4]
    # nothing intact at all: one line that says what to do
    for f in run.glob("*.pt"):
        f.write_bytes(b"not a checkpoint")
    assert run_cli(["pretrain", "--out", str(run), "--resume", "--device", "cpu"]) == 2
    one_line_error(capsys, "is damaged", "no intact epoch_NNNN.pt")


def test_an_image_rewritten_in_place_is_not_probed_with_stale_features(finished, root,
                                                                       tmp_path, capsys):
    import shutil

    copy = shutil.copytree(root, tmp_path / "data")
    probe = ["probe", "--checkpoint", str(finished / "last.pt"), "--data-root", str(copy),
             "--out", str(tmp_path / "p"), "--epochs", "2", "--k", "3", "--workers", "0",
             "--device", "cpu"]
    assert cli.main(probe) == 0
    first = json.loads((tmp_path / "p" / "probe.json").read_text())
    image = sorted((copy / "val").rglob("*.png"))[0]
    flipped = np.asarray(Image.open(image))[::-1]
    Image.fromarray(flipped).save(image)  # the same name, other pixels
    capsys.readouterr()
    assert run_cli(probe) == 2
    one_line_error(capsys, "when its files were others", "--overwrite-features")
    assert json.loads((tmp_path / "p" / "probe.json").read_text()) == first  # kept
    assert cli.main([*probe, "--overwrite-features"]) == 0
    # and a run is not resumed on the changed data either
    run = shutil.copytree(finished, tmp_path / "run")
    ckpt = checkpoint.load_checkpoint(run / "last.pt")
    ckpt["data"]["root"] = str(copy.resolve())
    checkpoint.atomic_save(ckpt, run / "last.pt")
    image = sorted((copy / "train").rglob("*.png"))[0]  # pretraining reads train/
    Image.fromarray(np.asarray(Image.open(image))[:, ::-1]).save(image)
    with pytest.raises(ValueError, match="files added, removed or changed since"):
        train.pretrain(TrainConfig.from_dict(ckpt["config"]), copy, run, resume=True,
                       device="cpu")


def test_a_warm_up_as_long_as_the_run_is_refused(root, tmp_path, capsys):
    args = pretrain_args(root, tmp_path / "run")
    args[args.index("--warmup-epochs") + 1] = "2"
    assert run_cli(args) == 2
    one_line_error(capsys, "--warmup-epochs 2 is not shorter than the run (--epochs 2)",
                   "use --warmup-epochs 0.1")
    args = [a for a in pretrain_args(root, tmp_path / "run") if a != "--warmup-epochs"]
    args.remove("1")  # the default warm-up, 10 epochs, in a 2-epoch run
    assert run_cli(args) == 2
    one_line_error(capsys, "--warmup-epochs 10 is not shorter")
    assert not (tmp_path / "run").exists()


def test_make_data_into_a_folder_whose_images_changed(tmp_path, capsys):
    args = ["make-data", "synthetic", "--out", str(tmp_path / "d"), "--classes", "2",
            "--per-class", "2", "--size", "32"]
    assert cli.main(args) == 0 and "generated data set" in capsys.readouterr().out
    assert cli.main(args) == 0 and "reusing data set" in capsys.readouterr().out
    image = sorted((tmp_path / "d" / "val").rglob("*.png"))[0]
    image.write_bytes(sorted((tmp_path / "d" / "train").rglob("*.png"))[0].read_bytes())
    assert run_cli(args) == 2
    one_line_error(capsys, "files of its val/ changed since it was generated",
                   f"delete {tmp_path / 'd'}")


def test_a_bank_holds_features_that_overflow_float16(root, tmp_path, capsys):
    """An encoder whose pooled features exceed float16 (a BYOL checkpoint after a short run
    reached 7.6e4) gets a float32 bank, said once, and is probed; a diverged one is named."""
    torch.manual_seed(0)
    enc = dense_trunk("resnet10")
    with torch.no_grad():
        enc.layer4[-1].bn2.bias.fill_(1e5)  # every pooled feature about 1e5
    bank = features.extract(enc, "huge", root, "train", tmp_path, 64, device="cpu")
    assert bank.features.dtype == np.float32 and bank.meta["dtype"] == "float32"
    assert float(np.abs(bank.features).max()) > 65504
    assert "more than float16 holds (65504): the bank is extracted again in float32" in \
        capsys.readouterr().out
    r = probes.evaluate(enc, "huge", root, tmp_path, 64, "cpu", k=3, epochs=2)
    assert 0 <= r["knn_top1"] <= 1 and 0 <= r["linear_top1"] <= 1
    assert features.extract(dense_trunk("resnet10"), "plain", root, "train",
                            tmp_path / "plain", 64).features.dtype == np.float16
    with torch.no_grad():
        enc.layer4[-1].bn2.bias.fill_(float("nan"))
    with pytest.raises(ValueError, match="are not finite .* has diverged"):
        features.extract(enc, "nan", root, "val", tmp_path / "nan", 64)
