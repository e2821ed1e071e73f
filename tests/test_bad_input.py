"""Bad input, tried as a new user would (issue 20's table): every case ends in one line that
names the problem and the fix, or in the right behaviour, and loses nothing already made."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from jepa_lite import checkpoint, cli, train
from jepa_lite.config import TrainConfig
from jepa_lite.data import decoding, scenes
from jepa_lite.encoders.resnet import dense_trunk
from jepa_lite.eval import features, probes

SPEC = scenes.SyntheticSpec(classes=3, per_class=8, val_per_class=2, size=64, seed=11)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return scenes.make_synthetic(tmp_path_factory.mktemp("bad") / "syn", SPEC)


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


# --------------------------------------------------------------------------- issue 32's table
def png16(array: np.ndarray, path) -> None:
    """A 16-bit PNG (grey, RGB or RGBA), written by hand: PIL writes no 16-bit colour PNG."""
    import struct
    import zlib

    a = array if array.ndim == 3 else array[..., None]
    h, w, c = a.shape
    raw = b"".join(b"\x00" + a[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind, body):
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", w, h, 16, {1: 0, 3: 2, 4: 6}[c], 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_a_16_bit_image_reads_as_its_high_byte_in_every_path(channels, tmp_path):
    """The training loader's decoder (decode, read_for_device) and the probes' PIL reader
    read a 16-bit PNG alike: its high byte, never the white that clipping would give."""
    g = np.random.default_rng(channels)
    a = g.integers(0, 65536, (32, 32, channels) if channels > 1 else (32, 32)).astype(np.uint16)
    path = tmp_path / "deep.png"
    png16(a, path)
    want = torch.from_numpy((a >> 8).astype(np.uint8))
    want = (want[None].expand(3, -1, -1) if channels == 1 else want[..., :3].permute(2, 0, 1))
    for name, got in (("decode", decoding.decode(str(path))),
                      ("read_for_device", decoding.read_for_device(str(path))[0]),
                      ("PIL", torch.from_numpy(np.array(decoding.open_rgb(str(path))))
                       .permute(2, 0, 1))):
        assert got.dtype == torch.uint8 and got.shape == (3, 32, 32), name
        assert (got.int() - want.int()).abs().max() <= 1, name  # PIL rounds RGB its own way
    assert want.float().mean() < 200  # not the white of a clipped 16-bit image


def test_a_data_set_of_16_bit_images_trains_and_probes(root, tmp_path, capsys):
    import shutil

    copy = shutil.copytree(root, tmp_path / "deep")
    for i, image in enumerate(sorted(copy.rglob("*.png"))):
        if i % 2:  # every other image 16-bit, as a mixed download would be
            grey = np.asarray(Image.open(image).convert("L")).astype(np.uint16) * 257
            png16(grey, image)
    assert run_cli(pretrain_args(copy, tmp_path / "run", "--epochs", "1",
                                 "--warmup-epochs", "0")) == 0
    assert run_cli(["probe", "--checkpoint", str(tmp_path / "run" / "last.pt"),
                    "--data-root", str(copy), "--out", str(tmp_path / "p"), "--epochs", "1",
                    "--k", "2", "--workers", "0", "--device", "cpu"]) == 0


def test_a_floating_point_image_is_refused_by_name(root, tmp_path, capsys):
    import shutil

    copy = shutil.copytree(root, tmp_path / "f")
    victim = sorted((copy / "train").rglob("*.png"))[2].with_suffix(".tiff")
    Image.fromarray(np.random.default_rng(0).random((64, 64)).astype(np.float32)).save(victim)
    assert run_cli(pretrain_args(copy, tmp_path / "run")) == 2
    one_line_error(capsys, f"image {victim} holds floating-point pixels", "convert it")


def huge_png(path, side=14_000) -> None:
    """A PNG whose header says ``side`` x ``side`` pixels (its data is not needed: the size
    is refused from the header, before anything is decoded)."""
    import struct
    import zlib

    def chunk(kind, body):
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(
        ">IIBBBBB", side, side, 8, 0, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b""))


@pytest.mark.parametrize("split, side", [("train", 14_000), ("val", 14_000), ("train", 10_000)])
def test_one_large_image_policy_for_pretraining_and_probing(split, side, root, tmp_path,
                                                           capsys):
    """Above PIL's decompression-bomb limit (89 M pixels), an image is refused by name in
    pretraining (whatever the decoder) and in probing alike."""
    import shutil

    copy = shutil.copytree(root, tmp_path / "big")
    victim = sorted((copy / split).rglob("*.png"))[1]
    huge_png(victim, side)
    if split == "train":
        for cache in ("none", "host"):
            assert run_cli(pretrain_args(copy, tmp_path / f"run-{cache}", "--cache",
                                         cache)) == 2
            one_line_error(capsys, f"image {victim} is", "decompression-bomb limit",
                           "resize it")
    assert run_cli(["probe", "--random-init", "--arch", "resnet10", "--data-root", str(copy),
                    "--image-size", "64", "--out", str(tmp_path / "p"), "--epochs", "1",
                    "--k", "2", "--workers", "0", "--device", "cpu"]) == 2
    one_line_error(capsys, f"image {victim} is", "resize it")


def test_a_symbolic_link_loop_in_a_class_folder_is_refused(root, tmp_path, capsys):
    import shutil

    copy = shutil.copytree(root, tmp_path / "loop")
    klass = sorted((copy / "train").iterdir())[0]
    (klass / "again").symlink_to(klass, target_is_directory=True)
    assert run_cli(pretrain_args(copy, tmp_path / "run")) == 2
    one_line_error(capsys, "symbolic link loop", "remove the link")
    assert not (tmp_path / "run").exists()


def test_a_data_set_of_one_class_is_refused_for_probing(root, tmp_path, capsys):
    import shutil

    one = tmp_path / "one"
    for split in ("train", "val"):
        shutil.copytree(sorted((root / split).iterdir())[0], one / split / "only")
    assert run_cli(["probe", "--random-init", "--arch", "resnet10", "--data-root", str(one),
                    "--image-size", "64", "--out", str(tmp_path / "p"), "--device", "cpu"]) == 2
    one_line_error(capsys, "holds 1 class folder", "at least two classes")
    assert not (tmp_path / "p").exists()


@pytest.mark.parametrize("content, words", [
    ("[1, 2]", ("holds a JSON list, not an object",)),
    ('{"epochs": 2, "warmup_epochs": 1, "foo": 1}', ("unknown key(s) foo",)),
    ('{"method": {"name": "cnn-jepa", "bar": 1}}', ("unknown key(s) method.bar",)),
    ('{"method": {"name": "nonsense"}}', ("unknown method 'nonsense'",)),
    ('{"epochs": 2, "warmup_epochs": 1, "lr": NaN}', ("--lr nan", "finite")),
    ("not json", ("is not JSON",)),
])
def test_a_config_file_must_be_an_object_of_known_keys(content, words, root, tmp_path, capsys):
    config = tmp_path / "c.json"
    config.write_text(content)
    assert run_cli(pretrain_args(root, tmp_path / "run", "--config", str(config))) == 2
    one_line_error(capsys, f"--config {config}", *words)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("option, value", [("--cache-gib", "nan"), ("--lr", "inf"),
                                           ("--block-scale", "nan"), ("--seed", "-1")])
def test_nan_infinity_and_negative_seeds_are_refused(option, value, root, tmp_path, capsys):
    argv = pretrain_args(root, tmp_path / "run", option, value)
    if option == "--block-scale":
        argv += ["0.1"]
    assert run_cli(argv) == 2
    one_line_error(capsys, option)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_a_probe_temperature_must_be_finite(value, root, tmp_path, capsys):
    assert run_cli(["probe", "--random-init", "--arch", "resnet10", "--data-root", str(root),
                    "--out", str(tmp_path / "p"), f"--temperature={value}"]) == 2
    one_line_error(capsys, f"argument --temperature: {value} is not a finite number")


def test_a_foreign_out_folder_is_refused_and_a_new_run_starts_its_metrics_afresh(
        root, tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "config.json").write_text('{"my": "own settings"}')
    assert run_cli(pretrain_args(root, mine)) == 2
    one_line_error(capsys, f"{mine / 'config.json'} is not a jepa-lite run's configuration")
    assert (mine / "config.json").read_text() == '{"my": "own settings"}'
    (mine / "config.json").unlink()
    (mine / "notes.txt").write_text("keep me")
    assert run_cli(pretrain_args(root, mine)) == 2
    one_line_error(capsys, f"{mine} is not empty and holds no jepa-lite run (notes.txt)")
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]
    assert run_cli(["probe", "--random-init", "--arch", "resnet10", "--data-root", str(root),
                    "--out", str(mine)]) == 2
    one_line_error(capsys, "holds no probe results (notes.txt)")
    # a run whose last.pt was deleted starts again: its metrics too
    run = tmp_path / "run"
    one_epoch = ("--epochs", "1", "--warmup-epochs", "0")
    assert run_cli(pretrain_args(root, run, *one_epoch)) == 0
    (run / "last.pt").unlink()
    assert run_cli(pretrain_args(root, run, *one_epoch)) == 0
    assert [m["epoch"] for m in checkpoint.read_metrics(run)] == [1]


@pytest.mark.parametrize("what, holds", [
    ("a torchvision state_dict", "a plain state_dict of"),
    ("a dict without weights", "no model"),
    ("a list", "a list"),
    ("weights of another architecture", "does not hold the weights of the resnet10 encoder"),
])
def test_a_foreign_checkpoint_is_named_not_a_jepa_lite_checkpoint(what, holds, finished, root,
                                                                   tmp_path, capsys):
    import shutil

    ckpt = checkpoint.load_checkpoint(finished / "last.pt")
    foreign = {"a torchvision state_dict": dense_trunk("resnet10").state_dict(),
               "a dict without weights": {"config": ckpt["config"], "epoch": 3},
               "a list": [1, 2, 3],
               "weights of another architecture": {
                   **ckpt, "model": {"target_encoder." + k: v for k, v in
                                     dense_trunk("resnet18").state_dict().items()}}}[what]
    path = tmp_path / "their.pt"
    torch.save(foreign, path)
    assert run_cli(["probe", "--checkpoint", str(path), "--data-root", str(root), "--out",
                    str(tmp_path / "p"), "--device", "cpu"]) == 2
    one_line_error(capsys, f"{path}", holds)
    assert not (tmp_path / "p").exists()
    if what != "weights of another architecture":  # as last.pt of a run to resume
        run = shutil.copytree(finished, tmp_path / "run")
        for kept in run.glob("epoch_*.pt"):
            kept.unlink()
        shutil.copy(path, run / "last.pt")
        assert run_cli(["pretrain", "--out", str(run), "--resume", "--device", "cpu"]) == 2
        one_line_error(capsys, f"{run / 'last.pt'} is not a jepa-lite checkpoint: it holds")


def test_a_full_disk_while_checkpointing_leaves_the_last_checkpoint_and_no_temporary_file(
        finished, root, tmp_path, capsys, monkeypatch):
    import errno
    import shutil

    run = shutil.copytree(finished, tmp_path / "run")
    (run / "epoch_0004.pt").unlink()  # a run stopped after epoch 2, to be resumed
    shutil.copy(run / "epoch_0002.pt", run / "last.pt")
    before = (run / "last.pt").read_bytes()

    def full_disk_open(path, mode="r", *args, **kw):  # the disk fills up while writing
        f = open(path, mode, *args, **kw)
        if "w" not in mode:
            return f

        class Full:
            def __enter__(self):
                return self

            def __exit__(self, *exc):
                f.close()

            def write(self, data):
                f.write(bytes(data[:100]))
                raise OSError(errno.ENOSPC, "No space left on device")

        return Full()

    monkeypatch.setattr(checkpoint, "open", full_disk_open, raising=False)
    assert run_cli(["pretrain", "--out", str(run), "--resume", "--device", "cpu"]) == 2
    one_line_error(capsys, f"cannot write {run / 'last.pt'}", "no space is left",
                   "free some space")
    assert (run / "last.pt").read_bytes() == before and not list(run.glob("*.tmp"))


def test_a_probe_onto_a_full_disk_is_an_error_not_a_crash(root, tmp_path, capsys,
                                                          monkeypatch):
    """The feature bank reserves its space before the memory map is written (a full disk
    would kill the process with SIGBUS): a disk without room is one line, no file left."""
    import errno
    import os

    def no_room(fd, offset, length):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", no_room, raising=False)
    assert run_cli(["probe", "--random-init", "--arch", "resnet10", "--data-root", str(root),
                    "--image-size", "64", "--out", str(tmp_path / "p"), "--device", "cpu"]) == 2
    one_line_error(capsys, "cannot write", "features.npy.partial", "no space is left")
    assert not list((tmp_path / "p").rglob("*.partial"))


@pytest.mark.parametrize("command", ["pretrain", "probe", "make-data"])
def test_a_read_only_out_folder_is_named_in_one_line(command, root, tmp_path, capsys,
                                                     monkeypatch):
    import errno
    import pathlib

    ro = tmp_path / "ro"

    def read_only(self, *args, **kw):
        raise OSError(errno.EROFS, "Read-only file system", str(self))

    monkeypatch.setattr(pathlib.Path, "mkdir", read_only)
    argv = {"pretrain": pretrain_args(root, ro / "run"),
            "probe": ["probe", "--random-init", "--arch", "resnet10", "--data-root", str(root),
                      "--image-size", "64", "--out", str(ro / "p"), "--device", "cpu"],
            "make-data": ["make-data", "synthetic", "--out", str(ro / "d"), "--classes", "2",
                          "--per-class", "2", "--size", "32"]}[command]
    assert run_cli(argv) == 2
    one_line_error(capsys, "cannot write", str(ro), "read-only", "choose a writable folder")
    assert not ro.exists()


def test_out_of_memory_on_a_cpu_gets_the_advice_in_one_line(root, tmp_path, capsys,
                                                           monkeypatch):
    def no_memory(*args, **kw):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: "
                           "not enough memory: you tried to allocate 1099511627776 bytes.")

    monkeypatch.setattr(train, "train_step", no_memory)
    assert run_cli(pretrain_args(root, tmp_path / "run")) == 2
    one_line_error(capsys, "the device ran out of memory", "lower --micro-batch",
                   "--image-size")


def test_a_bank_is_keyed_by_the_encoders_weights_and_the_images_content(root, tmp_path):
    """The README's Python example names its encoder "toy": a second model probed into the
    same folder under that name is refused, not given the first one's features; an image
    written again with its size and time set back is seen too (its change time moved)."""
    import os
    import shutil

    copy = shutil.copytree(root, tmp_path / "data")
    torch.manual_seed(0)
    first, second = dense_trunk("resnet10"), dense_trunk("resnet10")
    probes.evaluate(first, "toy", copy, tmp_path / "p", 64, k=2, epochs=1)
    with pytest.raises(ValueError, match="when its weights were others"):
        probes.evaluate(second, "toy", copy, tmp_path / "p", 64, k=2, epochs=1)
    again = probes.evaluate(first, "toy", copy, tmp_path / "p", 64, k=2, epochs=1)
    assert again["knn_top1"] == json.loads((tmp_path / "p" / "probe.json").read_text())[
        "knn_top1"]  # the same model: its bank reused
    image = sorted((copy / "val").rglob("*.png"))[0]
    st = image.stat()
    image.write_bytes(image.read_bytes())  # written again, same size
    os.utime(image, ns=(st.st_atime_ns, st.st_mtime_ns))  # and its time set back
    assert image.stat().st_size == st.st_size and image.stat().st_mtime_ns == st.st_mtime_ns
    with pytest.raises(ValueError, match="before a file was written again"):
        probes.evaluate(first, "toy", copy, tmp_path / "p", 64, k=2, epochs=1)


def test_a_diverging_run_keeps_its_last_good_checkpoint_and_names_it(root, tmp_path, capsys):
    """--lr 1e30 --checkpoint-every-steps 1: the run stops in one line naming the checkpoint
    it keeps, whose weights are all finite."""
    run = tmp_path / "run"
    assert run_cli(pretrain_args(root, run, "--lr", "1e30", "--checkpoint-every-steps",
                                 "1")) == 2
    line = one_line_error(capsys, "stopped", "lower --lr")
    if (run / "last.pt").is_file():
        assert f"The last good checkpoint is {run / 'last.pt'}" in line
        ckpt = checkpoint.load_checkpoint(run / "last.pt")
        assert all(torch.isfinite(t).all() for t in ckpt["model"].values())
    else:
        assert "No checkpoint was written" in line
    assert not list(run.glob("*.tmp"))


def test_make_data_onto_a_full_disk_names_the_file_and_leaves_nothing(tmp_path, capsys,
                                                                     monkeypatch):
    import errno

    def full(self, path, *args, **kw):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", full)
    assert run_cli(["make-data", "synthetic", "--out", str(tmp_path / "d"), "--classes", "2",
                    "--per-class", "2", "--size", "32", "--workers", "1"]) == 2
    one_line_error(capsys, "cannot write", ".png", "no space is left")
    assert list(tmp_path.iterdir()) == []  # the temporary folder removed, no --out made
