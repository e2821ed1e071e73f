"""k-NN and linear probes, the probe CLI and its errors (chapter 05)."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from jepa_lite import cli, runtime, train
from jepa_lite.checkpoint import load_checkpoint
from jepa_lite.data import folders, scenes
from jepa_lite.eval import features, probes


def brute_force_knn(bank, bank_labels, queries, num_classes, k, t):
    bank, queries = F.normalize(bank, dim=1), F.normalize(queries, dim=1)
    out = torch.zeros(len(queries), num_classes)
    for i, q in enumerate(queries):
        sims = sorted([(float(q @ b), int(y)) for b, y in zip(bank, bank_labels)], reverse=True)
        for s, y in sims[:k]:  # exp(s / t), each query's votes divided by exp(best / t)
            out[i, y] += torch.exp(torch.tensor((s - sims[0][0]) / t))
    return out


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(5, 60), q=st.integers(1, 30),
       c=st.integers(2, 6), k=st.integers(1, 80), chunk=st.integers(1, 16),
       bank_chunk=st.integers(1, 70), memmap=st.booleans())
def test_knn_equals_brute_force(seed, n, q, c, k, chunk, bank_chunk, memmap):
    g = torch.Generator().manual_seed(seed)
    bank, queries = torch.randn(n, 8, generator=g), torch.randn(q, 8, generator=g)
    labels = torch.randint(0, c, (n,), generator=g)
    if memmap:  # a float16 array read chunk by chunk, as a bank on disk is
        bank = bank.half().float()
        source = bank.half().numpy()
    else:
        source = bank
    got = probes.knn_classify(source, labels, queries, c, k, 0.1, chunk_size=chunk,
                              bank_chunk=bank_chunk)
    want = brute_force_knn(bank, labels, queries, c, min(k, n), 0.1)
    assert torch.allclose(got, want, rtol=1e-4)
    assert torch.equal(got.argmax(1), want.argmax(1))


@pytest.mark.parametrize("temperature", [1.0, 0.1, 0.011, 1e-3, 1e-6])
def test_knn_is_stable_at_any_positive_temperature(temperature):
    """No weight overflows however small T is (exp(1 / 0.001) would): the vote tends to the
    nearest neighbour's label as T goes to 0, never to a tie of infinities."""
    g = torch.Generator().manual_seed(0)
    bank, queries = torch.randn(200, 16, generator=g), torch.randn(50, 16, generator=g)
    labels = torch.randint(0, 5, (200,), generator=g)
    scores = probes.knn_classify(bank, labels, queries, 5, k=20, temperature=temperature)
    assert torch.isfinite(scores).all()
    nearest = labels[probes.nearest(bank, queries, k=1)[:, 0]]
    if temperature <= 1e-3:
        assert torch.equal(scores.argmax(1), nearest)
    assert scores.max(1).values.min() >= 1.0  # the nearest's own vote: exp(0) = 1


@pytest.mark.parametrize("temperature", [0.0, -0.1, float("nan"), float("inf")])
def test_knn_refuses_a_temperature_that_is_not_positive_and_finite(temperature):
    with pytest.raises(ValueError, match="temperature"):
        probes.knn_classify(torch.randn(4, 3), torch.zeros(4, dtype=torch.long),
                            torch.randn(2, 3), 2, k=2, temperature=temperature)


def test_topk_accuracy():
    scores = torch.tensor([[0.1, 0.9, 0.0], [0.8, 0.1, 0.05], [0.2, 0.3, 0.5]])
    acc = probes.topk_accuracy(scores, torch.tensor([1, 1, 0]), ks=(1, 2))
    assert acc == {1: pytest.approx(1 / 3), 2: pytest.approx(2 / 3)}


def separable(n_per_class=60, classes=4, dim=16, seed=0):
    """Two samples (train, val) of the same well-separated classes."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(classes, dim, generator=g) * 4
    y = torch.arange(classes).repeat_interleave(n_per_class)
    return [(centres[y] + torch.randn(len(y), dim, generator=g), y) for _ in range(2)]


def test_linear_probe_learns_separable_features():
    (x, y), (vx, vy) = separable()
    r = probes.linear_probe(x, y, vx, vy, 4, epochs=30, batch_size=16)
    assert r["linear_top1"] > 0.95 and r["linear_honest_top1"] > 0.9
    assert r["linear_top5"] == 1.0 and len(r["curve_val_top1"]) == 30
    assert r["linear_top1"] == max(r["curve_val_top1"])  # official = best over epochs
    assert r["linear_final_top1"] == r["curve_val_top1"][-1]


def test_linear_probe_at_chance_on_noise():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(400, 16, generator=g), torch.randint(0, 4, (400,), generator=g)
    vx, vy = torch.randn(400, 16, generator=g), torch.randint(0, 4, (400,), generator=g)
    r = probes.linear_probe(x, y, vx, vy, 4, epochs=10, batch_size=16)
    assert r["linear_honest_top1"] < 0.4  # the honest protocol does not pick a lucky epoch


KNN_PEAK = """
import os, sys, torch
from jepa_lite.eval import probes
torch.manual_seed(0)
bank, labels = torch.randn(100_000, 32), torch.randint(0, 100, (100_000,))
queries = torch.randn(1500, 32)
page = os.sysconf("SC_PAGE_SIZE")
before = int(open("/proc/self/statm").read().split()[1]) * page
open("/proc/self/clear_refs", "w").write("5")  # reset the peak (VmHWM) to the current RSS
scores = probes.knn_classify(bank, labels, queries, 100, chunk_size=int(sys.argv[1]),
                             bank_chunk=int(sys.argv[2]))
peak = [int(line.split()[1]) * 1024 for line in open("/proc/self/status")
        if line.startswith("VmHWM")][0]
torch.save(scores, sys.argv[3])
print((peak - before) / 2**20)
"""


@pytest.mark.slow  # two processes measuring their peak memory
def test_knn_bounded_memory_for_a_large_bank(tmp_path):
    """Measured, not assumed: the peak memory k-NN adds over its inputs, for 1,500 queries
    against 100,000 bank rows, chunked (the defaults' block: 256 x 16,384 similarities =
    16 MiB) and in one block (1,500 x 100,000 = 572 MiB); the same scores either way."""
    def peak_mib(chunk: int, bank_chunk: int, name: str) -> float:
        out = subprocess.run([sys.executable, "-c", KNN_PEAK, str(chunk), str(bank_chunk),
                              str(tmp_path / name)], capture_output=True, text=True, check=True)
        return float(out.stdout.split()[-1])

    chunked = peak_mib(256, 16384, "chunked.pt")
    whole = peak_mib(1500, 100_000, "whole.pt")
    assert chunked < 120, chunked  # the block, the running top-200 and the votes
    assert whole > 450, whole  # the measurement sees a 572 MiB block when there is one
    a, b = torch.load(tmp_path / "chunked.pt"), torch.load(tmp_path / "whole.pt")
    assert a.shape == b.shape == (1500, 100)
    # the same votes, but for neighbours tied in float32 at the 200th place
    assert (a.argmax(1) == b.argmax(1)).float().mean() > 0.99
    assert torch.allclose(a.sum(1), b.sum(1), rtol=1e-3)


def test_empty_validation_split():
    (x, y), _ = separable()
    with pytest.raises(ValueError, match="validation split is empty"):
        probes.linear_probe(x, y, x[:0], y[:0], 4)


SPEC = scenes.SyntheticSpec(classes=3, per_class=8, val_per_class=3, size=64, seed=2)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return scenes.make_synthetic(tmp_path_factory.mktemp("p") / "syn", SPEC)


@pytest.fixture(scope="module")
def checkpoint(root, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    cfg = train.TrainConfig(arch="resnet10", image_size=64, epochs=1, batch_size=8,
                            warmup_epochs=0, checkpoint_every=0, workers=0).with_changes(
        predictor_layers=1)
    return train.pretrain(cfg, root, out, device="cpu")


def test_probe_cli_schema(root, checkpoint, tmp_path):
    for args in (["--checkpoint", str(checkpoint)], ["--random-init", "--arch", "resnet10"]):
        out = tmp_path / args[0]
        assert cli.main(["probe", *args, "--data-root", str(root), "--image-size", "64",
                         "--out", str(out), "--epochs", "3", "--workers", "0",
                         "--device", "cpu"]) == 0
        r = json.loads((out / "probe.json").read_text())
        assert r["num_classes"] == 3 and r["val_images"] == 9 and r["train_images"] == 24
        for key in ("knn_top1", "knn_top5", "linear_top1", "linear_top5",
                    "linear_final_top1", "linear_honest_top1", "linear_honest_top5"):
            hits = r[key] * r["val_images"]  # a share of the 9 validation images
            assert 0 <= round(hits) <= 9 and abs(hits - round(hits)) < 1e-4, (key, r[key])
        for probe in ("knn", "linear", "linear_honest"):
            assert r[f"{probe}_top5"] == 1.0  # 3 classes: the true one is always in the top 5
        assert r["linear_top1"] >= r["linear_final_top1"]  # the official protocol's best epoch
        bank = np.load(out / "features" / "train-64" / "features.npy", mmap_mode="r")
        assert bank.dtype == np.float16 and bank.shape == (24, 512)


def test_features_are_those_of_the_target_encoder(root, checkpoint, tmp_path):
    enc = probes.encoder_from_checkpoint(checkpoint)
    model = train.build_model(train.TrainConfig(arch="resnet10").with_changes(predictor_layers=1))
    model.load_state_dict(load_checkpoint(checkpoint)["model"])
    for k, v in model.target_encoder.state_dict().items():
        assert torch.equal(enc.state_dict()[k], v)
    bank = features.extract(enc, "ckpt", root, "val", tmp_path, 64, batch_size=4)
    assert bank.features.shape == (9, 512) and isinstance(bank.features, np.memmap)
    assert bank.classes == ["00_disc", "01_ring", "02_crescent"] and not enc.training
    images = torch.stack([img for img, _ in folders.image_folder(root, "val",
                                                              folders.eval_transform(64))])
    with torch.no_grad():
        direct = enc(images).mean((2, 3))
    assert torch.allclose(bank.rows(), direct, rtol=1e-3, atol=1e-3)  # stored in float16
    assert bank.labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]


def test_probe_errors(root, checkpoint, tmp_path, capsys):
    base = ["probe", "--data-root", str(root), "--image-size", "64", "--epochs", "1",
            "--workers", "0", "--device", "cpu"]
    assert cli.main([*base, "--checkpoint", str(tmp_path / "none.pt"), "--out",
                     str(tmp_path / "a")]) == 2
    assert "no checkpoint at" in capsys.readouterr().err
    assert cli.main([*base, "--out", str(tmp_path / "b")]) == 2
    assert "either --checkpoint" in capsys.readouterr().err
    # a cached bank from other classes is refused, not silently reused
    out = tmp_path / "c"
    assert cli.main([*base, "--checkpoint", str(checkpoint), "--out", str(out)]) == 0
    other = scenes.make_synthetic(tmp_path / "other", scenes.SyntheticSpec(
        classes=4, per_class=8, val_per_class=3, size=64, seed=2))
    args = [*base, "--checkpoint", str(checkpoint), "--out", str(out)]
    args[args.index("--data-root") + 1] = str(other)
    assert cli.main(args) == 2
    assert "computed on other classes" in capsys.readouterr().err
    # the same classes with other images: refused too
    same_classes = scenes.make_synthetic(tmp_path / "same", scenes.SyntheticSpec(
        classes=3, per_class=5, val_per_class=3, size=64, seed=9))
    args[args.index("--data-root") + 1] = str(same_classes)
    assert cli.main(args) == 2
    assert f"not on {same_classes.resolve()} (15 files)" in capsys.readouterr().err
    empty = tmp_path / "emptyval"
    (empty / "val").mkdir(parents=True)
    import shutil
    for c in ("a", "b"):
        (empty / "train" / c).mkdir(parents=True)
        for p in list((root / "train" / "00_disc").iterdir())[:2]:
            shutil.copy(p, empty / "train" / c)
    assert cli.main([*base[:2], str(empty), *base[3:], "--random-init", "--arch", "resnet10",
                     "--out", str(tmp_path / "d")]) == 2
    assert "is empty" in capsys.readouterr().err


def test_probe_evaluates_at_the_checkpoints_image_size(root, checkpoint, tmp_path):
    assert cli.main(["probe", "--checkpoint", str(checkpoint), "--data-root", str(root),
                     "--out", str(tmp_path), "--epochs", "1", "--workers", "0",
                     "--device", "cpu"]) == 0
    assert json.loads((tmp_path / "probe.json").read_text())["image_size"] == 64
    assert (tmp_path / "features" / "train-64" / "features.npy").is_file()


def test_feature_extraction_feeds_a_gpu_with_workers_and_leaves_a_cpu_alone(monkeypatch):
    monkeypatch.setattr(runtime.os, "cpu_count", lambda: 16)
    assert runtime.default_workers() == 8  # training: a core each, at most 8
    assert runtime.default_workers("cpu", training=False) == 0
    assert runtime.default_workers(torch.device("cuda", 1), training=False) == 8
    monkeypatch.setattr(runtime.os, "cpu_count", lambda: 2)  # Colab
    assert runtime.default_workers("cuda", training=False) == 2


@pytest.mark.parametrize("seed", range(5))
def test_most_confused_names_the_largest_off_diagonal_rates(seed):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 4, (200,), generator=g)
    pred = torch.where(torch.rand(200, generator=g) < 0.6, labels,
                       torch.randint(0, 4, (200,), generator=g))
    classes = ["a", "b", "c", "d"]
    got = probes.most_confused(pred, labels, classes, n=3)
    cm = torch.zeros(4, 4)
    for t, p in zip(labels.tolist(), pred.tolist()):
        cm[t, p] += 1
    rates = cm / cm.sum(1, keepdim=True)
    off = sorted(((rates[t, p].item(), classes[t], classes[p]) for t in range(4)
                  for p in range(4) if t != p and rates[t, p] > 0), reverse=True)[:3]
    assert [r for _, _, r in got] == pytest.approx([r for r, _, _ in off])
    assert all(t != p for t, p, _ in got)
    assert probes.most_confused(labels, labels, classes) == []  # nothing confused


def test_the_random_init_floor_is_the_encoder_its_method_probes(monkeypatch):
    """probes.random_init asks the method for its probe encoder (a ViT's method would give
    a ViT), seeded: the same seed, the same weights; the bank's name keeps arch and seed."""
    from jepa_lite import methods

    a, key = probes.random_init(train.TrainConfig(arch="resnet10"), seed=3)
    b, _ = probes.random_init(train.TrainConfig(arch="resnet10"), seed=3)
    c, _ = probes.random_init(train.TrainConfig(arch="resnet10"), seed=4)
    assert key == "random-init:resnet10:seed3"
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(),
                                                  b.state_dict().values()))
    assert not all(torch.equal(x, y) for x, y in zip(a.state_dict().values(),
                                                      c.state_dict().values()))
    simclr = methods.get("simclr")
    monkeypatch.setattr(simclr, "probe_encoder", classmethod(lambda cls, cfg: nn.Linear(2, 3)))
    encoder, _ = probes.random_init(train.TrainConfig(method="simclr"), seed=0)
    assert isinstance(encoder, nn.Linear)
