"""The extension point (issue 33): a method added from outside the package -- its own module
(tests/extension/barlow.py: the method and its options) and one ``methods.register`` line --
trains, resumes exactly and is probed through the CLI; the contract refuses a flag declared
otherwise than the methods before it."""

from dataclasses import dataclass
from typing import ClassVar

import pytest
import torch

from jepa_lite import checkpoint, cli, config, methods, train
from jepa_lite.config import METHOD_OPTIONS, MethodOptions, option
from jepa_lite.data import scenes
from tests.extension.barlow import BarlowTwins

SPEC = scenes.SyntheticSpec(classes=3, per_class=8, val_per_class=2, size=64, seed=5)


@pytest.fixture
def registered():
    """The one registry line, undone afterwards (other tests see the five methods)."""
    methods.register(BarlowTwins)
    yield BarlowTwins
    methods.METHODS.pop(BarlowTwins.name)
    METHOD_OPTIONS.pop(BarlowTwins.name)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return scenes.make_synthetic(tmp_path_factory.mktemp("d") / "syn", SPEC)


def args(root, out, *extra):
    return ["pretrain", "--data-root", str(root), "--out", str(out), "--method", "barlow",
            "--barlow-lambda", "0.01", "--arch", "resnet10", "--image-size", "64", "--epochs",
            "2", "--batch-size", "8", "--warmup-epochs", "1", "--checkpoint-every", "0",
            "--seed", "3", "--workers", "0", *extra]


def test_a_method_from_outside_trains_resumes_and_is_probed_from_the_cli(registered, root,
                                                                         tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["pretrain", "--help"])
    shown = capsys.readouterr().out
    assert "--barlow-lambda" in shown and "barlow" in shown  # its flag, and a --method choice
    assert cli.main(args(root, tmp_path / "straight")) == 0
    cfg, _ = cli.pretrain_config(cli.build_parser().parse_args(args(root, tmp_path / "resumed")))
    assert cfg.method == registered.Options(off_diagonal=0.01)
    assert cfg.with_changes(barlow_lambda=0.02).method.off_diagonal == 0.02  # the flag's name

    def stop_in_epoch_2(run, step):
        if step.epoch == 1 and step.step == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train.pretrain(cfg, root, tmp_path / "resumed", device="cpu", on_step=stop_in_epoch_2)
    assert cli.main(["pretrain", "--out", str(tmp_path / "resumed"), "--resume"]) == 0
    a = checkpoint.load_checkpoint(tmp_path / "straight" / "last.pt")
    b = checkpoint.load_checkpoint(tmp_path / "resumed" / "last.pt")
    assert a["config"]["method"] == {"name": "barlow", **cfg.method.to_dict()}
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    rows = checkpoint.read_metrics(tmp_path / "straight")
    assert [r["epoch"] for r in rows] == [1, 2] and rows[0]["momentum"] is None  # no EMA
    capsys.readouterr()
    assert cli.main(["probe", "--checkpoint", str(tmp_path / "straight" / "last.pt"),
                     "--data-root", str(root), "--out", str(tmp_path / "probe"), "--epochs", "2",
                     "--k", "5", "--device", "cpu", "--workers", "0"]) == 0
    assert (tmp_path / "probe" / "probe.json").is_file()


def test_the_option_bounds_of_an_outside_method_are_checked_when_made(registered):
    with pytest.raises(ValueError, match="--barlow-lambda -1: off_diagonal must be at least 0"):
        registered.Options(off_diagonal=-1)
    with pytest.raises(ValueError, match="--barlow-lambda is an option of barlow; cnn-jepa does "
                                         "not use it"):
        train.TrainConfig().with_changes(off_diagonal=0.1)


def test_a_flag_declared_otherwise_than_before_is_refused():
    """Flags are shared by name: ``--lr`` must mean what it means for every method."""
    @dataclass(frozen=True)
    class Other(MethodOptions):
        name: ClassVar[str] = "other"
        lr: float = option(0.1, flag="--lr", low=0, help="something else")

    with pytest.raises(TypeError, match="Other.lr declares --lr otherwise"):
        config.register_options(Other)

    @dataclass(frozen=True)
    class Clash(MethodOptions):
        name: ClassVar[str] = "clash"
        epochs: int = option(3, flag="--epochs", help="epochs of pretraining")

    with pytest.raises(TypeError, match="a flag of the run itself"):
        config.register_options(Clash)
    assert "other" not in METHOD_OPTIONS and "clash" not in METHOD_OPTIONS


def test_the_registered_methods_declare_each_flag_one_way():
    """Every flag of the five methods: one field, type, help and bounds (only defaults differ)."""
    for kind in list(METHOD_OPTIONS.values()):
        assert config.register_options(kind) is kind  # registering again finds no conflict
