"""Chapters 07-08's helpers: collapse diagnostics, side-by-side step times, the report rows,
runs shared between chapters."""

import dataclasses
import shutil

import pytest
import torch

from jepa_lite import methods
from jepa_lite.config import TrainConfig
from jepa_lite.course import compare, profiles, report
from jepa_lite.data import scenes
from jepa_lite.encoders.resnet import dense_trunk
from jepa_lite.eval import diagnostics

SPEC = scenes.SyntheticSpec(classes=3, per_class=8, val_per_class=2, size=64, seed=5)


@pytest.mark.parametrize("seed", range(10))
def test_spectrum_tells_collapsed_from_spread_features(seed):
    g = torch.Generator().manual_seed(seed)
    spread = diagnostics.spectrum(torch.randn(200, 16, generator=g))
    line = diagnostics.spectrum(torch.randn(200, 1, generator=g) * torch.randn(1, 16, generator=g)
                            + 5 * torch.ones(1, 16))
    same = diagnostics.spectrum(torch.ones(200, 16))
    assert spread["effective_rank"] > 12 and line["effective_rank"] < 2  # an arc, once normalised
    assert same["std"] < 1e-6 < line["std"] < spread["std"]
    eig = spread["eigenvalues"]
    assert len(eig) == 16 and eig == sorted(eig, reverse=True)
    assert len(diagnostics.spectrum(torch.randn(5, 16, generator=g))["eigenvalues"]) == 4  # N - 1


@pytest.mark.parametrize("seed", range(5))
def test_collapse_stats_read_one_pooled_row_per_image_for_every_method(seed):
    """Every method's diagnostics read the same kind of rows: one pooled row per image
    ([B, D], the encoder's pool, which each method's forward returns); a grid of cells or
    tokens is refused, never read as B x h x w rows or as something else."""
    g = torch.Generator().manual_seed(seed)
    cells = torch.randn(16, 32, 4, 4, generator=g)
    with pytest.raises(ValueError, match=r"pooled rows \[N, D\]; got \(16, 32, 4, 4\)"):
        diagnostics.collapse_stats(cells)
    a = diagnostics.collapse_stats(cells.mean((2, 3)))
    assert a["diagnostic_rows"] == 16
    assert a["effective_rank"] <= 15 + 1e-6  # 16 centred rows span at most 15 directions
    same = diagnostics.collapse_stats(torch.randn(1, 32, generator=g).expand(16, 32))
    assert same["target_std"] < 1e-6


def flags(features):
    sp = diagnostics.spectrum(features)
    return sp, diagnostics.flags_of(sp)


@pytest.mark.parametrize("seed", range(20))
def test_complete_collapse_is_flagged_by_the_std_and_missed_by_the_rank(seed):
    """Near-constant rows (one vector plus noise of 0.01-1 % of its size) are complete
    collapse: the std flags it; the rank, which is scale-free, reads them as spread out."""
    g = torch.Generator().manual_seed(seed)
    channels = int(torch.randint(64, 2049, (1,), generator=g))
    rows = diagnostics.DIAGNOSTIC_ROWS
    c = torch.randn(1, channels, generator=g) * 10 ** (4 * torch.rand(1, generator=g) - 2)
    noise = 10 ** (-4 + 2 * torch.rand(1, generator=g).item())
    sp, f = flags(c + noise * c.norm() / channels ** 0.5 * torch.randn(rows, channels,
                                                                      generator=g))
    assert f["complete"] and not f["dimensional"]
    assert sp["effective_rank"] > 0.5 * f["reachable_rank"]  # the rank sees nothing wrong


@pytest.mark.parametrize("seed", range(20))
def test_dimensional_collapse_is_flagged_by_the_rank_and_missed_by_the_std(seed):
    g = torch.Generator().manual_seed(seed)
    channels = int(torch.randint(64, 2049, (1,), generator=g))
    k = int(torch.randint(1, 6, (1,), generator=g))  # the directions the features use
    rows = diagnostics.DIAGNOSTIC_ROWS
    low = torch.randn(rows, k, generator=g) @ torch.randn(k, channels, generator=g)
    sp, f = flags(low + 1e-3 * torch.randn(rows, channels, generator=g))
    assert f["dimensional"] and not f["complete"]
    assert sp["std"] > 0.5 / channels ** 0.5  # the std sees nothing wrong


@pytest.mark.parametrize("seed", range(20))
def test_spread_features_are_not_flagged(seed):
    g = torch.Generator().manual_seed(seed)
    channels = int(torch.randint(64, 2049, (1,), generator=g))
    x = torch.randn(diagnostics.DIAGNOSTIC_ROWS, channels, generator=g)
    for features in (x, x.relu(), x.exp()):  # any sign, a positive cone, heavy tails
        assert flags(features)[1] == {"complete": False, "dimensional": False,
                                      "reachable_rank": min(x.shape[0] - 1, channels)}


def test_a_random_resnet_on_photograph_like_scenes_is_not_flagged(tmp_path):
    """A healthy encoder on busy, photograph-like generated scenes: random init's pooled
    features sit in a narrow cone (ReLU outputs), yet neither collapse is flagged."""
    spec = scenes.SyntheticSpec(classes=4, per_class=2, val_per_class=64, size=64, kind="busy")
    root = scenes.make_synthetic(tmp_path / "busy", spec)
    for arch, seed in (("resnet10", 0), ("resnet18", 1)):
        torch.manual_seed(seed)
        f = diagnostics.pooled_features(dense_trunk(arch), root, 64, torch.device("cpu"))
        assert len(f) == 256
        assert flags(f)[1] == {"complete": False, "dimensional": False, "reachable_rank": 255}


def test_sixteen_rows_cannot_tell_dimensional_collapse():
    """Why the diagnostics read 256 rows: features on two directions, 16 rows at a time,
    have a rank of 2 out of a reachable 15, within the band a healthy run can show."""
    g = torch.Generator().manual_seed(0)
    low = torch.randn(256, 2, generator=g) @ torch.randn(2, 512, generator=g)
    assert flags(low)[1]["dimensional"] and not flags(low[:16])[1]["dimensional"]


def test_collapse_reading_names_each_kind_of_collapse_by_its_statistic():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 128, generator=g)
    healthy = diagnostics.spectrum(x.relu())
    c = torch.randn(1, 128, generator=g)
    read = {name: compare.collapse_reading(diagnostics.spectrum(f), healthy) for name, f in {
        "constant": c + 1e-4 * torch.randn(256, 128, generator=g),
        "two directions": torch.randn(256, 2, generator=g) @ torch.randn(2, 128, generator=g),
        "narrower": c.abs() + 0.3 * x.relu(),  # a narrower cone: std down, rank kept
        "same": x.relu()}.items()}
    assert read["constant"] == "complete collapse"
    assert read["two directions"] == "dimensional collapse"
    assert read["narrower"].startswith("partly (std under half)")
    assert read["same"] == "not collapsed: std 1.00x, rank 1.00x random init's"


def test_step_seconds_times_every_method_on_the_same_device(tmp_path):
    root = scenes.make_synthetic(tmp_path / "syn", SPEC)
    configs = {m: TrainConfig(method=m, arch="resnet10", image_size=64, batch_size=8,
                              micro_batch=4) for m in methods.for_arch("resnet10")}
    seconds = compare.step_seconds(configs, root, torch.device("cpu"), steps=1, warmup=0)
    assert list(seconds) == list(configs) and all(s > 0 for s in seconds.values())
    # the same steps fed by their loaders, two micro-batches each (train_step refuses fewer)
    fed = compare.fed_seconds(configs, root, torch.device("cpu"), steps=2)
    assert list(fed) == list(configs) and all(s > 0 for s in fed.values())


def test_method_rows_sit_beside_table_one_and_say_when_not_comparable():
    res = {m.label: {"linear_top1": 0.5, "knn_top1": 0.25} for m in methods.METHODS.values()}
    rows = report.method_rows(res, report.paper_results(), "ImageNet-100", False, "smoke")
    by = {r["method"]: r for r in rows}
    assert by["SimCLR"]["paper_linear_top1"] == 76.20 and by["BYOL"]["paper_knn_top1"] == 68.20
    assert by["CNN-JEPA"]["paper_linear_top1"] == 73.26 and by["C-JEPA"]["paper_knn_top1"] is None
    assert all(r["linear_top1"] == 50 and "NOT comparable" in r["source"] for r in rows)
    in1k = report.method_rows(res, report.paper_results(), "ImageNet-1k", True, "full")
    assert {r["method"]: r["paper_linear_top1"] for r in in1k}["BYOL"] == 60.22
    text = report.with_method_rows("# report\n\nfirst part\n", rows)
    again = report.with_method_rows(text, rows[:1])  # replaced, not appended twice
    assert again.count(report.OTHERS_HEADING) == 1 and "first part" in again
    assert "SimCLR" in text and "SimCLR" not in again


@pytest.mark.parametrize("name", list(profiles.PROFILES))
def test_recipe_changes_name_every_departure_from_the_authors(name):
    profile = profiles.PROFILES[name]
    changes = compare.recipe_changes(profile)
    for m in methods.METHODS:
        tc = profile.config(m).method
        authors = TrainConfig(method=m).method
        for f, (theirs, ours) in changes.get(methods.get(m).label, {}).items():
            assert theirs == getattr(authors, f) and ours == getattr(tc, f) != theirs, (m, f)
    if name == "full":
        assert changes == {}  # the reproduction runs the authors' recipes
    if name == "demo":
        assert changes["SimCLR"] == {"jitter_strength": (1.0, 0.5)}


@pytest.mark.slow  # two trainers in processes of their own
def test_a_run_another_chapter_finished_is_linked_not_trained_again(tmp_path):
    """compare.run_method with ``twins``: the same configuration on the same data is linked
    (nothing trained or probed again, the same numbers); another seed, another data set or
    a twin that was removed is trained as usual; a different worker count is the same run."""
    root = scenes.make_synthetic(tmp_path / "syn", SPEC)
    other = scenes.make_synthetic(tmp_path / "other", dataclasses.replace(SPEC, seed=6))
    cfg = TrainConfig(arch="resnet10", image_size=64, batch_size=8, epochs=2, warmup_epochs=1,
                      workers=0, checkpoint_every=0)
    cpu = torch.device("cpu")
    first = tmp_path / "07" / "runs" / "cnn-jepa"
    a = compare.run_method(cfg, first, root, cpu, probe_epochs=2, k=3)
    stamps = {p.name: p.stat().st_mtime_ns for p in (first / "last.pt", first / "probe" /
                                                      "probe.json")}
    linked = tmp_path / "08" / "runs" / "cnn-jepa"
    b = compare.run_method(cfg.with_changes(workers=2), linked, root, cpu, probe_epochs=2, k=3,
                           twins=[tmp_path / "nothing", first])
    assert linked.is_symlink() and linked.resolve() == first.resolve()
    assert {k: b[k] for k in ("knn_top1", "linear_top1")} == {k: a[k] for k in
                                                              ("knn_top1", "linear_top1")}
    assert stamps == {p.name: p.stat().st_mtime_ns for p in (first / "last.pt", first /
                                                             "probe" / "probe.json")}
    assert compare.find_twin(cfg.with_changes(seed=1), root, [first]) is None
    assert compare.find_twin(cfg, other, [first]) is None
    assert compare.find_twin(cfg, root, [linked]) is None  # a link is never a twin itself
    shutil.rmtree(first)  # the twin is gone: the link goes, and the run is trained here
    c = compare.run_method(cfg, linked, root, cpu, probe_epochs=2, k=3, twins=[first])
    assert not linked.is_symlink() and (linked / "last.pt").is_file()
    assert c["knn_top1"] == a["knn_top1"]  # the same seeded run


@pytest.mark.parametrize("n_val,accuracy", [(400, 0.3), (2000, 0.1), (2000, 0.5)])
def test_a_probe_that_did_not_learn_is_rarely_called_learned(n_val, accuracy):
    """Two encoders of the same true accuracy, each measured on n_val images: 'learned' (or
    'below') in about 2.3 % of draws each (two standard errors, one-sided); a true gain of
    four standard errors is called learned nearly always."""
    g = torch.Generator().manual_seed(n_val)
    draws = 4000

    def measured(p):
        return (torch.rand(draws, n_val, generator=g) < p).float().mean(1).tolist()

    floor, same = measured(accuracy), measured(accuracy)
    verdicts = [compare.against_floor(a, b, n_val)[2] for a, b in zip(same, floor)]
    for verdict in ("learned", "below random init"):
        assert 0.01 < verdicts.count(verdict) / draws < 0.04, (verdict, verdicts.count(verdict))
    se = (2 * accuracy * (1 - accuracy) / n_val) ** 0.5
    better = measured(accuracy + 4 * se)
    verdicts = [compare.against_floor(a, b, n_val)[2] for a, b in zip(better, floor)]
    assert verdicts.count("learned") / draws > 0.95
    rows = compare.learned_rows({"m": {"knn_top1": better[0], "linear_top1": floor[0]}},
                                {"knn_top1": floor[0], "linear_top1": floor[0]}, n_val)
    two_se = 2 * compare.against_floor(floor[0], floor[0], n_val)[1]
    assert rows[0]["linear_vs_random"] == f"+0.000 ± {two_se:.3f}: within noise"


def test_report_sections_are_replaced_in_place_and_others_kept():
    """Chapters 08 and 10 each add their section to chapter 06's report; running either
    again replaces its own section and keeps the other's."""
    rows = [{"method": "SimCLR", "linear_top1": 50.0}]
    text = report.with_method_rows("# report\n\nfirst part\n", rows)
    ij = report.ijepa_rows({"I-JEPA (vit_micro)": {
        "linear_top1": 0.4, "knn_top1": 0.3, "config": {"arch": "vit_micro"},
        "data_root": "/data/scenes"}}, report.paper_results(), "ImageNet-100", "smoke", False)
    both = report.with_ijepa_rows(text, ij)
    again = report.with_method_rows(report.with_ijepa_rows(both, ij[:1]), rows)
    for t in (both, again):
        assert t.count(report.OTHERS_HEADING) == 1 and t.count(report.IJEPA_HEADING) == 1
        assert t.startswith("# report\n\nfirst part\n") and "SimCLR" in t
    assert "vit_micro" in both and "vit_micro" not in again  # its rows replaced
    paper = {(r["method"], r["backbone"]): (r["linear_top1"], r["knn_top1"]) for r in ij
             if r["source"] == "paper, Table I"}
    assert paper == {("CNN-JEPA", "ResNet-50"): (73.26, 59.22),
                     ("I-JEPA", "ViT-Small"): (42.30, 34.84),
                     ("I-JEPA", "ViT-Base"): (46.36, 31.36)}
    ours = ij[-1]
    assert (ours["method"], ours["backbone"], ours["dataset"]) == ("I-JEPA", "vit_micro",
                                                                   "scenes")
    assert ours["linear_top1"] == 40 and "NOT comparable" in ours["source"]
    full = report.ijepa_rows({"I-JEPA (vit_small)": {
        "linear_top1": 0.4, "knn_top1": 0.3, "config": {"arch": "vit_small"}}},
        report.paper_results(), "ImageNet-100", "full", True)
    assert full[-1]["source"] == "ours"
