"""A chapter's runs as data (jepa_lite.course.bundle): written, read back, found in the checkout or
downloaded once, refused with a clear error when missing."""

import json

import pytest
import torch

from jepa_lite.config import TrainConfig
from jepa_lite.course import bundle


def made(features=True) -> bundle.Bundle:
    g = torch.Generator().manual_seed(0)
    cfg = TrainConfig().with_changes(arch="resnet10", image_size=64, micro_batch=8)
    runs = {"A": {"knn_top1": 0.5, "linear_top1": 0.6, "history": [{"epoch": 1, "loss": 0.4}],
                  "config": json.loads(json.dumps(cfg.to_dict())), "checkpoint": "/x/last.pt",
                  "probe_dir": "/x/probe"}}
    feats = {"A": torch.randn(20, 8, generator=g), "random init": torch.randn(20, 8, generator=g)}
    return bundle.Bundle("07_cjepa", "demo", {"commit": "abc1234", "device": "cpu",
                                              "date": "2026-12-04"}, runs,
                         {"random init": {"knn_top1": 0.3}}, feats if features else {},
                         {"axes": {"kernel_size": [3, 5]}})


@pytest.mark.parametrize("features", [True, False])
def test_a_bundle_reads_back_what_was_written(tmp_path, features):
    b = made(features)
    back = bundle.load(bundle.save(tmp_path / "r", b))
    assert (back.chapter, back.profile, back.facts, back.extra) == (
        b.chapter, b.profile, b.facts, b.extra)
    assert back.references == b.references
    assert "checkpoint" not in back.runs["A"] and "probe_dir" not in back.runs["A"]  # paths
    assert back.runs["A"]["history"] == b.runs["A"]["history"]
    assert set(back.features) == set(b.features)
    for name, f in b.features.items():  # float16 on disk
        assert torch.allclose(back.features[name], f, atol=2e-3, rtol=1e-3)
    assert (tmp_path / "r" / "features.npz").is_file() == features
    assert "2026-12-04" in back.describe() and "abc1234" in back.describe()


def test_a_missing_or_foreign_bundle_says_to_train(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"TRAIN = True"):
        bundle.load(tmp_path / "none")
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "runs.json").write_text(json.dumps({"format": 99}))
    with pytest.raises(ValueError, match=r"format 99.*TRAIN = True"):
        bundle.load(tmp_path / "r")


def test_config_changes_name_what_the_committed_run_did_differently():
    b = made()
    cfg = TrainConfig().with_changes(arch="resnet10", image_size=64)  # micro-batch: default
    assert bundle.config_changes(b, "A", cfg) == []
    said = bundle.config_changes(b, "A", cfg.with_changes(lr=0.5, epochs=70))
    assert len(said) == 2 and any(line.startswith("epochs:") for line in said)
    assert any("lr: 0.01 committed, 0.5 here" in line for line in said)


def test_committed_results_come_from_the_checkout_else_are_downloaded_once(tmp_path,
                                                                          monkeypatch):
    served = tmp_path / "served" / "docs" / "results" / "demo" / "data" / "07_cjepa"
    bundle.save(served, made())
    monkeypatch.setattr(bundle, "committed_dir", lambda chapter, profile="demo": None)
    monkeypatch.setenv("JEPA_LITE_RAW_URL", (tmp_path / "served").as_uri())
    monkeypatch.setenv("JEPA_LITE_CACHE", str(tmp_path / "cache"))
    got = bundle.committed("07_cjepa")  # an installed package: fetched into the cache
    assert got.runs["A"]["knn_top1"] == 0.5 and set(got.features) == {"A", "random init"}
    cached = tmp_path / "cache" / "committed" / "demo" / "07_cjepa"
    assert (cached / "runs.json").is_file() and (cached / "features.npz").is_file()
    monkeypatch.setenv("JEPA_LITE_RAW_URL", (tmp_path / "gone").as_uri())
    assert bundle.committed("07_cjepa").runs == got.runs  # read from the cache, not fetched
    with pytest.raises(FileNotFoundError, match=r"downloading them from .* failed.*TRAIN"):
        bundle.committed("08_comparison")
    assert not list((tmp_path / "cache" / "committed" / "demo").glob("*partial"))
    monkeypatch.setattr(bundle, "committed_dir", lambda chapter, profile="demo": served)
    assert bundle.committed("07_cjepa").runs == got.runs  # a checkout reads its own copy


@pytest.mark.parametrize("chapter, runs, references", [
    ("07_cjepa", {"CNN-JEPA", "CNN-JEPA, no EMA", "CNN-JEPA, no predictor",
                  "CNN-JEPA, gradient through the target", "C-JEPA", "C-JEPA, no EMA"},
     {"random init"}),
    ("08_comparison", {"CNN-JEPA", "C-JEPA", "SimCLR", "BYOL", "VICReg"},
     {"random init", "supervised"}),
    ("09_ablations", None, {"random init"})])
def test_the_committed_demo_runs_are_complete_small_and_say_where_they_come_from(
        chapter, runs, references):
    folder = bundle.committed_dir(chapter)
    stored = bundle.load(folder)
    assert stored.chapter == chapter and stored.profile == "demo"
    commit = stored.facts["commit"]
    assert len(commit) >= 7 and not commit.endswith("+dirty") and commit != "unknown"
    assert {"device", "date", "torch", "train_images", "val_images", "channels"} <= set(
        stored.facts)
    assert set(stored.references) == references
    if runs is not None:
        assert set(stored.runs) == runs
    else:  # the sweep: its own grid, the default first
        from jepa_lite.course import sweep

        grid = sweep.points(stored.extra["axes"])
        assert [p.name for p in grid] == list(stored.runs) and grid[0].name == "default"
    for r in stored.runs.values():
        assert "config" in r and 0 <= r["knn_top1"] <= 1 and 0 <= r["linear_top1"] <= 1
    size = sum(f.stat().st_size for f in folder.iterdir())
    assert size < 4 * 2 ** 20  # a few MB at most, features float16
    if chapter == "07_cjepa":
        assert set(stored.features) == runs | references
        assert all(f.shape == (stored.facts["val_images"], stored.facts["channels"])
                   for f in stored.features.values())
