"""Feature banks on disk (fp16, memory-mapped), read in chunks by the probes; extracted in
shares under torchrun; never mistaken for another run's."""

import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from jepa_lite import train
from jepa_lite.data import scenes
from jepa_lite.eval import features, probes
from tests.test_distributed import spawn

SPEC = scenes.SyntheticSpec(classes=3, per_class=8, val_per_class=3, size=64, seed=2)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return scenes.make_synthetic(tmp_path_factory.mktemp("f") / "syn", SPEC)


@pytest.fixture(scope="module")
def two_runs(root, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    return [train.pretrain(train.TrainConfig(arch="resnet10", image_size=64, epochs=1,
                                             batch_size=8, warmup_epochs=0, workers=0,
                                             checkpoint_every=0, seed=seed).with_changes(
                                                 predictor_layers=1),
                           root, out / name, device="cpu") for seed, name in enumerate("ab")]


def test_a_bank_of_another_run_is_refused_then_replaced_on_request(root, two_runs, tmp_path):
    a, b = two_runs
    enc_a, enc_b = probes.encoder_from_checkpoint(a), probes.encoder_from_checkpoint(b)
    key_a, key_b = probes.checkpoint_key(a), probes.checkpoint_key(b)
    assert key_a.startswith("run ") and key_a != key_b and " after epoch 1 (" in key_a
    first = features.extract(enc_a, key_a, root, "train", tmp_path, 64)
    assert features.extract(enc_a, key_a, root, "train", tmp_path, 64).meta == first.meta
    with pytest.raises(ValueError, match=f"extracted from {key_a[:16]}.*not from "
                                         f"{key_b[:16]}.*--overwrite-features"):
        features.extract(enc_b, key_b, root, "train", tmp_path, 64)
    again = features.extract(enc_b, key_b, root, "train", tmp_path, 64, overwrite=True)
    assert again.meta["encoder"] == key_b
    assert not np.array_equal(np.asarray(again.features), np.asarray(first.features))


def test_an_interrupted_extraction_is_done_again(root, tmp_path):
    torch.manual_seed(0)
    from jepa_lite.encoders.resnet import dense_trunk

    enc = dense_trunk("resnet10")
    bank = features.extract(enc, "random", root, "val", tmp_path, 64)
    meta = json.loads((bank.path / "meta.json").read_text())
    (bank.path / "meta.json").write_text(json.dumps({**meta, "complete": False}))
    with pytest.raises(ValueError, match="incomplete"):
        features.open_bank(bank.path)
    redone = features.extract(enc, "random", root, "val", tmp_path, 64)
    assert redone.meta["complete"] and np.array_equal(redone.features, bank.features)


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 1000))
def test_linear_probe_reads_a_memory_map_as_it_reads_a_tensor(seed, tmp_path_factory):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(4, 16, generator=g) * 3
    y = torch.randint(0, 4, (200,), generator=g)
    x = (centres[y] + torch.randn(200, 16, generator=g)).half()
    vy = torch.randint(0, 4, (60,), generator=g)
    vx = (centres[vy] + torch.randn(60, 16, generator=g)).half()
    path = tmp_path_factory.mktemp("bank")
    bank = features.write_bank(path, [(x[:128], y[:128]), (x[128:], y[128:])], 200, 16,
                               ["a", "b", "c", "d"])
    assert isinstance(bank.features, np.memmap) and torch.equal(bank.labels, y)
    on_disk = probes.linear_probe(bank.features, bank.labels, vx, vy, 4, epochs=3,
                                  batch_size=32, seed=seed)
    in_memory = probes.linear_probe(x.float(), y, vx.float(), vy, 4, epochs=3, batch_size=32,
                                    seed=seed)
    assert on_disk["curve_val_top1"] == pytest.approx(in_memory["curve_val_top1"], abs=1 / 60)
    assert on_disk["curve_honest_holdout_top1"] == pytest.approx(
        in_memory["curve_honest_holdout_top1"], abs=1 / 20)


def _sharded_worker(rank, world, root, out):
    from jepa_lite import distributed
    from jepa_lite.encoders.resnet import dense_trunk

    distributed.setup(torch.device("cpu"))  # as `jepa-lite probe` does under torchrun
    torch.manual_seed(0)
    encoder, seen = dense_trunk("resnet10"), []
    encoder.register_forward_pre_hook(lambda m, args: seen.append(len(args[0])))
    result = probes.evaluate(encoder, "random", root, out, 64, epochs=2, batch_size=5)
    assert (result is None) == (rank != 0)  # rank 0 alone runs the probes
    (out / f"images-seen-by-rank{rank}.json").write_text(json.dumps(sum(seen)))


def test_extraction_is_shared_between_ranks(root, tmp_path):
    spawn(_sharded_worker, root, tmp_path / "two")
    _sharded_worker(0, 1, root, tmp_path / "one")
    for split in ("train", "val"):
        a = features.open_bank(tmp_path / "one" / "features" / f"{split}-64")
        b = features.open_bank(tmp_path / "two" / "features" / f"{split}-64")
        assert torch.equal(a.labels, b.labels)
        assert np.allclose(a.features, b.features, rtol=2e-3, atol=1e-4)  # float16 rows
    seen = [json.loads((tmp_path / "two" / f"images-seen-by-rank{r}.json").read_text())
            for r in range(2)]
    assert seen == [12 + 4, 12 + 5]  # each rank its share of 24 train and 9 val images
    one = json.loads((tmp_path / "one" / "probe.json").read_text())
    two = json.loads((tmp_path / "two" / "probe.json").read_text())
    assert one["knn_top1"] == two["knn_top1"] and one["train_images"] == 24
