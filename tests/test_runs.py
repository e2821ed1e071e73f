"""Chapter 04's run folder from outside: started in its own process, followed, resumed after
a stop, never trained twice at once; chapters 05-06 read only a finished run."""

import json
import time

import pytest
import torch

from jepa_lite import checkpoint, train
from jepa_lite.config import TrainConfig
from jepa_lite.course import runs
from jepa_lite.data import scenes
from jepa_lite.errors import UsageError

pytestmark = pytest.mark.slow  # trainers started in processes of their own

SPEC = scenes.SyntheticSpec(classes=3, per_class=8, val_per_class=2, size=64, seed=8)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return scenes.make_synthetic(tmp_path_factory.mktemp("r") / "syn", SPEC)


def tiny(epochs=2, **kw) -> TrainConfig:
    return TrainConfig(arch="resnet10", image_size=64, epochs=epochs, batch_size=8,
                       warmup_epochs=1, workers=0, checkpoint_every=0).with_changes(
        predictor_layers=1, **kw)


def options(root, epochs=2):
    """The same run as ``tiny`` on the command line."""
    return ["--data-root", str(root), "--arch", "resnet10", "--image-size", "64", "--epochs",
            str(epochs), "--batch-size", "8", "--predictor-layers", "1", "--warmup-epochs", "1",
            "--device", "cpu", "--workers", "0", "--checkpoint-every", "0"]


def test_a_new_run_is_started_in_its_own_process_and_then_left_alone(root, tmp_path, capsys):
    run = tmp_path / "run"
    assert runs.state(run)["status"] == "new"
    with pytest.raises(UsageError, match="is new.*run chapter 04 first"):
        runs.require_complete(run)
    info = runs.train(tiny(), run, root, "cpu")
    assert info["status"] == "complete" and (info["epoch"], info["epochs"]) == (2, 2)
    out = capsys.readouterr().out
    assert f"starting: jepa-lite pretrain --config {run / 'config.json'}" in out
    assert "--resume" not in out
    assert TrainConfig.from_dict(json.loads((run / "config.json").read_text())) \
        == tiny().with_changes(micro_batch=8)  # the run's configuration, resolved
    assert "done:" in (run / "train.log").read_text()
    assert runs.require_complete(run) == run / "last.pt"
    stamp = (run / "last.pt").stat().st_mtime_ns
    assert runs.train(tiny(), run, root, "cpu")["status"] == "complete"
    assert "nothing to train" in capsys.readouterr().out
    assert (run / "last.pt").stat().st_mtime_ns == stamp


def test_a_stopped_run_is_resumed(root, tmp_path, capsys):
    run = tmp_path / "run"
    cfg = tiny(checkpoint_every_steps=1)

    def preempted(run, info):  # in epoch 2, before its second step
        if info.step == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train.pretrain(cfg, root, run, device="cpu", on_step=preempted)
    info = runs.state(run)
    assert (info["status"], info["epoch"], info["step"]) == ("stopped", 1, 1)
    with pytest.raises(UsageError, match=r"is stopped \(epoch 1 of 2 and 1 steps\): resume "
                                           r"it.*--resume"):
        runs.require_complete(run)
    assert runs.train(cfg, run, root, "cpu")["status"] == "complete"
    assert "resuming: jepa-lite pretrain" in capsys.readouterr().out
    assert [r["epoch"] for r in checkpoint.read_metrics(run)] == [1, 2]


def test_a_running_run_is_followed_not_started_again(root, tmp_path, capsys):
    run = tmp_path / "run"
    runs.train(tiny(3), run, root, "cpu", wait=False)
    deadline = time.time() + 60
    while runs.state(run)["status"] != "running" and time.time() < deadline:
        time.sleep(0.05)
    assert checkpoint.is_locked(run)
    with pytest.raises(UsageError, match="is running.*wait for it.*train.log"):
        runs.require_complete(run)
    info = runs.train(tiny(3), run, root, "cpu")  # follows the one that runs
    assert info["status"] == "complete"
    out = capsys.readouterr().out
    assert out.count("starting:") == 1 and "following it" in out
    assert (run / "train.log").read_text().count("done:") == 1


def test_a_failing_run_shows_its_log(root, tmp_path):
    with pytest.raises(UsageError, match="(?s)exited with code 2.*image size 100 is not a "
                                           "multiple of 32"):
        runs.train(tiny(image_size=100), tmp_path / "bad", root, "cpu")


def test_one_process_per_gpu_that_the_batch_splits_into(monkeypatch):
    assert runs.processes(512, 128, "cpu") == 1
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    for gpus, expected in ((1, 1), (2, 2), (3, 2), (4, 4), (8, 4)):
        monkeypatch.setattr(torch.cuda, "device_count", lambda g=gpus: g)
        assert runs.processes(512, 128, "cuda") == expected
    assert runs.command(["--out", "x"], 4)[1:7] == ["-m", "torch.distributed.run",
                                                    "--standalone", "--nproc_per_node", "4",
                                                    "-m"]


def test_a_run_folder_of_other_settings_is_not_taken_for_this_one(root, tmp_path):
    run = tmp_path / "run"
    runs.train(tiny(), run, root, "cpu")
    with pytest.raises(ValueError, match="holds a run made with other settings than these "
                                         r"\(epochs: 2 there, 3 here\): choose another run "
                                         "folder"):
        runs.train(tiny(3), run, root, "cpu")
    other = scenes.make_synthetic(tmp_path / "other", scenes.SyntheticSpec(
        classes=3, per_class=8, val_per_class=2, size=64, seed=9))
    with pytest.raises(ValueError, match=f"data: {root.resolve()} there, {other} here"):
        runs.train(tiny(), run, other, "cpu")
    assert runs.train(tiny(workers=1), run, root, "cpu")["status"] == "complete"


def test_a_terminated_trainer_says_how_to_continue(root, tmp_path):
    """SIGTERM (a preemption notice, or torchrun stopping its processes) ends the run with
    the command that continues it; its last checkpoint is kept."""
    import signal
    import subprocess
    import sys

    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "jepa_lite.pretrain", *options(root, 50),
                             "--checkpoint-every-steps", "1", "--out", str(run)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (run / "last.pt").is_file() and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert f"continue with: jepa-lite pretrain --out {run} --resume" in err
    assert runs.state(run)["status"] == "stopped"


def test_follow_returns_when_the_trainer_exits_with_every_epoch_shown(tmp_path, capsys):
    """Not at its next poll: with a poll of ten minutes, a trainer that writes two epochs and
    exits is followed to its end at once, and the bar counts both epochs."""
    import subprocess
    import sys

    run = tmp_path / "run"
    run.mkdir()
    line = json.dumps({"loss": 0.5, "images_per_s": 10.0})
    writer = (f"import time, pathlib; p = pathlib.Path({str(run / 'metrics.jsonl')!r})\n"
              f"for _ in range(2):\n    time.sleep(0.3)\n"
              f"    with open(p, 'a') as f: f.write({line!r} + '\\n')\n")
    proc = subprocess.Popen([sys.executable, "-c", writer])
    start = time.monotonic()
    info = runs.follow(run, proc, poll=600)
    assert time.monotonic() - start < 300 and proc.returncode == 0  # not the 600 s poll
    assert info["status"] == "new"  # no checkpoint: the fake trainer wrote only metrics
    last_bar = capsys.readouterr().err.replace("\n", "\r").strip("\r ").split("\r")[-1]
    assert "2/2" in last_bar, last_bar  # the epoch written just before the exit is shown

