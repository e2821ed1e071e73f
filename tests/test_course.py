"""The course runner: every chapter through papermill with the smoke profile, as `make course`
runs it; failures are reported by chapter and cell and lose nothing."""

import json
import re
import shutil
import subprocess
import sys

import pytest
import torch

from jepa_lite.course import runner
from jepa_lite.course.profiles import PROFILES

pytestmark = pytest.mark.slow  # the smoke course through papermill: minutes

# Smoke chapter 05, top-1 of the pretrained encoder minus its random init. k-NN, measured with
# the smoke recipe (`python -m tests.test_learning SEED --size 128 --epochs 5 --set
# batch_size=16`, the same data, scenes 10 x 100 at 128 px; docs/experiments.md): with the
# device pipeline (issue 21) +0.030 (seed 0, the course's), +0.105 (seed 1), +0.155 (seed 2);
# with the PIL pipeline it had been +0.115, +0.065, +0.095 (seed 0 today: +0.135). The same
# augmentation drawn with other random numbers: seed 0's gap is the smallest of six. The course
# (seed 0) must keep at least half its own gap in k-NN, and half its linear-probe gap (0.28 ->
# 0.39 in the course) -- the latter the firmer check of the two
SMOKE_MARGIN = 0.015
SMOKE_LINEAR_MARGIN = 0.05

def _course(out, run, *only):
    return subprocess.run([sys.executable, "-m", "jepa_lite.cli", "course", "--profile", "smoke",
                           "--out", str(out), "--device", "cpu", "--run", str(run),
                           *(["--only", *only] if only else [])],
                          capture_output=True, text=True, timeout=1200)


@pytest.fixture(scope="module")
def smoke_course(tmp_path_factory):
    """The smoke course through the console script, as `make course` runs it, after chapter
    06, which reads both chapter 04's run and chapter 05's probes, ran alone in an empty
    output folder: it trains chapter 04's run itself (none exists yet; chapter 05 calls the
    same ChapterRun.pretrained) and probes it itself (chapter 05's results are not in its
    folder). The whole course then finds the run finished, so the smoke pretraining happens
    once. Chapters 00-04 and 07-09 read nothing of another chapter's."""
    base = tmp_path_factory.mktemp("course")
    alone = {ch: (base / f"alone{ch}", _course(base / f"alone{ch}", base / "run", ch))
             for ch in ("06",)}
    out = base / "outputs"
    return out, _course(out, base / "run"), alone


def test_every_chapter_runs(smoke_course):
    out, proc, _ = smoke_course
    assert proc.returncode == 0, proc.stderr[-3000:]
    chapters = [p.stem for p in runner.list_chapters()]
    summary = (out / "summary.md").read_text()
    for ch in chapters:
        assert (out / f"{ch}.ipynb").is_file()
        assert f"| {ch} | ok |" in summary
        metrics = json.loads((out / ch / "metrics.json").read_text())
        assert metrics["chapter"] == ch and metrics["profile"] == "smoke"
        for fig in metrics["figures"]:
            assert (out / ch / fig).stat().st_size > 1000
    data = json.loads((out / "summary.json").read_text())
    assert [c["chapter"] for c in data["chapters"]] == chapters
    assert all(c["status"] == "ok" for c in data["chapters"])


def test_executed_notebooks_are_parameterised_and_widget_free(smoke_course):
    out, _, _ = smoke_course
    for ch in runner.list_chapters():
        nb = json.loads((out / f"{ch.stem}.ipynb").read_text())
        injected = [c for c in nb["cells"]
                    if "injected-parameters" in c["metadata"].get("tags", [])]
        assert len(injected) == 1 and "INTERACTIVE = False" in "".join(injected[0]["source"])
        assert "widgets" not in nb["metadata"]
        assert nb["metadata"]["kernelspec"]["name"] == "python3"
        assert "application/vnd.jupyter.widget-view+json" not in json.dumps(nb)


def test_masking_chapter_numbers(smoke_course):
    out, _, _ = smoke_course
    m = json.loads((out / "01_masking" / "metrics.json").read_text())
    met = m["metrics"]
    assert met["p_target_last_row_col_official"] == 0.0
    assert met["p_target_last_row_col"] > 0.05
    assert abs(met["target_fraction_multiblock_official"] - 0.44) < 0.03
    assert 0.35 < met["target_fraction_mixed"] < 0.55
    assert met["target_fraction_random"] == pytest.approx(29 / 49)
    assert met["block_shapes_official"] < met["block_shapes"]
    assert {"grid.png", "blocks_union.png", "strategies.png", "stages.png",
            "target_heatmaps.png", "target_fraction_hist.png", "block_shapes.png",
            "explorer_static.png"} <= set(m["figures"])


def test_pretraining_probe_and_report_chapters(smoke_course):
    out, _, _ = smoke_course
    m4 = json.loads((out / "04_pretraining" / "metrics.json").read_text())["metrics"]
    assert m4["epochs"] == 5 and m4["final_loss"] < m4["first_loss"]
    run = out.parent / "run"  # --run: trained in a process of its own, read by 05 and 06
    assert m4["checkpoint"] == str(run / "last.pt") and (run / "train.log").is_file()
    assert not (out / "04_pretraining" / "run").exists()
    m5 = json.loads((out / "05_probes" / "metrics.json").read_text())["metrics"]
    probe = json.loads((out / "05_probes" / "pretrained" / "probe.json").read_text())
    for key in ("knn_top1", "knn_top1_random", "linear_top1", "linear_top1_random"):
        hits = m5[key] * probe["val_images"]  # a share of 200 images (float32 k-NN)
        assert abs(hits - round(hits)) < 1e-4 and 0 <= hits <= 200, (key, m5[key])
    assert m5["linear_top1"] == probe["linear_top1"] and m5["knn_top1"] == probe["knn_top1"]
    assert probe["num_classes"] == 10 and probe["train_images"] == 1000
    m6 = json.loads((out / "06_reproduction" / "metrics.json").read_text())["metrics"]
    assert m6["comparable"] is False and m6["paper_linear_top1"] == 73.26
    assert "NOT comparable" in (out / "06_reproduction" / "report.md").read_text()


def test_cjepa_and_comparison_chapters(smoke_course):
    out, _, _ = smoke_course
    m7 = json.loads((out / "07_cjepa" / "metrics.json").read_text())["metrics"]
    runs7 = ("CNN-JEPA", "C-JEPA", "CNN-JEPA, no EMA", "C-JEPA, no EMA")
    for name in runs7:
        assert f"{name} knn_top1" in m7 and m7[f"{name} effective_rank"] >= 1
    history = [json.loads(line) for line in (out / "07_cjepa" / "runs" / "c-jepa-no-ema"
                                             / "metrics.jsonl").read_text().splitlines()]
    assert len(history) == 4 and history[0]["momentum"] is not None
    comparison = json.loads((out / "08_comparison" / "comparison.json").read_text())
    methods = ["CNN-JEPA", "C-JEPA", "SimCLR", "BYOL", "VICReg"]
    assert [r["method"] for r in comparison["rows"]] == methods
    assert comparison["comparable"] is False
    assert all("NOT comparable" in r["source"] for r in comparison["rows"])
    assert all(comparison["seconds_per_epoch"][m] > 0 for m in methods)
    # the time per epoch says which part is the loader (the step fed by it, minus the step)
    assert all(0 <= comparison["loader_seconds_per_epoch"][m] < comparison["seconds_per_epoch"][m]
               and comparison["seconds_per_step_fed"][m] > 0 for m in methods)
    # what learned: every method and both references read against the random-init floor
    assert list(comparison["references"]) == ["random init", "supervised"]
    verdicts = {v["method"]: v for v in comparison["verdicts"]}
    assert list(verdicts) == [*methods, "supervised"]
    assert all(v[f"{p}_vs_random"].rsplit(": ", 1)[1] in
               ("learned", "within noise", "below random init")
               for v in verdicts.values() for p in ("knn", "linear"))
    # the supervised reference, trained by the loop on this chapter's data (smoke keeps a
    # data set of its own for chapters 07-09: not chapter 05's run, whose head is wider)
    sup = out / "08_comparison" / "runs" / "supervised"
    assert (sup / "last.pt").is_file() and (sup / "probe" / "probe.json").is_file()
    heads = {c: json.loads((out / c / "runs" / "supervised" / "config.json").read_text())[
        "method"]["num_classes"] for c in ("05_probes", "08_comparison")}
    assert heads == {"05_probes": PROFILES["smoke"].synthetic.classes,
                     "08_comparison": PROFILES["smoke"].many_runs_data.classes}
    for m in ("simclr", "byol", "vicreg", "cjepa", "cnn-jepa"):
        ckpt = out / "08_comparison" / "runs" / m / "last.pt"
        assert ckpt.is_file() and (ckpt.parent / "probe" / "probe.json").is_file()
    # the smoke recipe of CNN-JEPA and C-JEPA is chapter 07's: linked, not trained twice
    for m, m7 in (("cnn-jepa", "cnn-jepa"), ("cjepa", "c-jepa")):
        run8 = out / "08_comparison" / "runs" / m
        assert run8.is_symlink() and run8.resolve() == (out / "07_cjepa" / "runs" / m7).resolve()
    assert (out / "09_ablations" / "runs" / "default").resolve() == (
        out / "07_cjepa" / "runs" / "cnn-jepa").resolve()
    report = (out / "06_reproduction" / "report.md").read_text()  # chapter 08 added its rows
    assert "All five methods (chapter 08)" in report and "| VICReg |" in report


def test_ablation_chapter_sweeps_the_profiles_grid_and_resumes(smoke_course):
    """Chapter 09 in the smoke course: one run per point of the smoke grid, each recorded
    in sweep.json; `jepa-lite sweep` into the same folder goes on where the record stops
    (a point whose entry is gone is taken from its finished run folder, not retrained)."""
    from jepa_lite.course import sweep

    out, _, _ = smoke_course
    folder = out / "09_ablations"
    grid = sweep.points(PROFILES["smoke"].ablations)
    done = sweep.load(folder)
    assert list(done) == [p.name for p in grid]
    m9 = json.loads((folder / "metrics.json").read_text())
    assert m9["metrics"]["runs"] == len(grid) and "sweep.png" in m9["figures"]
    for p in grid:
        hits = done[p.name]["knn_top1"] * m9["metrics"]["val_images"]
        assert abs(hits - round(hits)) < 1e-4
        assert (folder / "runs" / p.name / "last.pt").is_file()
    cfg = torch.load(folder / "runs" / "strategy-random" / "last.pt", weights_only=False,
                     mmap=True)["config"]
    assert cfg["method"]["strategy"] == "random" and cfg["method"]["predictor_layers"] == 3
    stamps = {p.name: (folder / "runs" / p.name / "last.pt").stat().st_mtime for p in grid}
    (folder / "sweep.json").write_text(json.dumps({"points": {k: v for k, v in done.items()
                                                             if k != grid[-1].name}}))
    proc = subprocess.run([sys.executable, "-m", "jepa_lite.cli", "sweep", "--out", str(out),
                           "--device", "cpu"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    executed = (out / "09_ablations.ipynb").read_text()
    assert executed.count("finished earlier") == len(grid) - 1
    assert list(sweep.load(folder)) == [p.name for p in grid]
    assert stamps == {p.name: (folder / "runs" / p.name / "last.pt").stat().st_mtime
                      for p in grid}  # nothing trained again


def test_chapters_opened_alone_make_what_they_need(smoke_course):
    """Issue 10: chapter 06 in an empty folder trains chapter 04's run and probes it, saying
    so each time, instead of stopping; the course after it makes neither again."""
    out, _, alone = smoke_course
    folder, proc = alone["06"]
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "| 06_reproduction | ok |" in (folder / "summary.md").read_text()
    assert not (folder / "04_pretraining").exists()  # nothing of chapter 04 in its folder
    text06 = (folder / "06_reproduction.ipynb").read_text()
    assert "this chapter needs it, so it trains it now" in text06
    assert "probing it now, as chapter 05 would" in text06
    assert (folder / "05_probes" / "pretrained" / "probe.json").is_file()
    for name in ("04_pretraining", "05_probes", "06_reproduction"):
        text = (out / f"{name}.ipynb").read_text()
        assert "trains it now" not in text and "probing it now" not in text


def test_smoke_pretraining_beats_random_init(smoke_course):
    """Issue 10, bullet 2: the smoke course's chapter 05 shows the pretrained encoder ahead of
    the same network at its random initialisation (k-NN and linear-probe top-1)."""
    out, _, _ = smoke_course
    m5 = json.loads((out / "05_probes" / "metrics.json").read_text())["metrics"]
    assert m5["knn_top1"] >= m5["knn_top1_random"] + SMOKE_MARGIN, m5
    assert m5["linear_top1"] >= m5["linear_top1_random"] + SMOKE_LINEAR_MARGIN, m5


def test_results_page_of_the_smoke_course(smoke_course, tmp_path):
    """`jepa-lite results`: a page of every chapter's numbers and figures, with the run's
    commit, device and wall time; every figure it links is copied next to it."""

    from jepa_lite import cli
    from jepa_lite.course import report

    out, _, _ = smoke_course
    data = json.loads((out / "summary.json").read_text())
    if data["commit"].endswith("+dirty"):  # a developer's checkout: as if committed
        shutil.copytree(out, tmp_path / "out", symlinks=True)
        out = tmp_path / "out"
        data["commit"] = data["commit"].removesuffix("+dirty")
        for row in data["chapters"]:
            row["commit"] = row["commit"].removesuffix("+dirty")
        (out / "summary.json").write_text(json.dumps(data))
    results = tmp_path / "results"
    dest = results / "smoke"
    (dest / "figures" / "99_old").mkdir(parents=True)  # an older run's figures go
    assert cli.main(["results", str(out), "--dest", str(results)]) == 0
    page = (dest / "README.md").read_text()
    assert f"| {data['commit']} | cpu |" in page
    index = (results / "README.md").read_text()  # every profile, a link where a page is
    assert "[smoke/README.md](smoke/README.md)" in index and "`gpu` | not made yet" in index
    notebook = re.search(r"\[notebook\]\(([^)]+)\)", page).group(1)
    assert notebook.endswith("notebooks/00_overview.py")
    wall = sum(c["seconds"] for c in data["chapters"]) / 60
    assert f"| {wall:.1f} min |" in page
    assert "NOT comparable" in page  # chapter 06's report, with its marks
    for c in data["chapters"]:
        assert f"## {c['chapter']}" in page
    m5 = json.loads((out / "05_probes" / "metrics.json").read_text())["metrics"]
    assert f"| knn_top1 | {report.fmt_metric(m5['knn_top1'])} |" in page
    links = re.findall(r"!\[[^]]*\]\(([^)]+)\)", page)
    figures = sum(len(json.loads((out / c["chapter"] / "metrics.json").read_text())["figures"])
                  for c in data["chapters"])
    assert len(links) == figures > 20
    assert all((dest / link).stat().st_size > 1000 for link in links)
    assert not (dest / "figures" / "99_old").exists()
    # every chapter's executed notebook, outputs included, is linked and copied beside the page
    executed = re.findall(r"\[executed, with its outputs\]\(([^)]+)\)", page)
    assert len(executed) == len(data["chapters"])
    for link in executed:
        nb = json.loads((dest / link).read_text())
        assert any(c.get("outputs") for c in nb["cells"] if c["cell_type"] == "code")
    # the runs chapters 07-09 read without training, loadable from the page's folder
    from jepa_lite.course import bundle

    for name in ("07_cjepa", "08_comparison", "09_ablations"):
        assert f"[its runs' results](data/{name}/runs.json)" in page
        stored = bundle.load(dest / "data" / name)
        assert stored.chapter == name and stored.profile == "smoke" and stored.runs
    assert set(bundle.load(dest / "data" / "07_cjepa").features) == {
        "random init", "CNN-JEPA", "CNN-JEPA, no EMA", "CNN-JEPA, no predictor",
        "CNN-JEPA, gradient through the target", "C-JEPA", "C-JEPA, no EMA"}


def test_ijepa_chapter(smoke_course):
    """Issue 34: chapter 10's leak test sees what it claims (zero for the ViT on its visible
    tokens and the sparse CNN, not zero for both given everything), its step by hand is the
    loop's, both methods are probed against their own random init on the same data, and
    Table I's rows stand beside ours, ours marked not comparable, in chapter 06's report."""
    from jepa_lite.course import report

    out, _, _ = smoke_course
    record = json.loads((out / "10_ijepa" / "metrics.json").read_text())
    m = record["metrics"]
    assert m["vit_leak_kept"] == 0 and m["cnn_leak_sparse"] == 0
    assert m["vit_leak_all_tokens"] > 0 and m["cnn_leak_dense"] > 0
    assert m["step_by_hand_loss_gap"] <= 1e-6 and m["step_by_hand_grad_gap"] <= 1e-6
    for name in ("I-JEPA (vit_micro)", "CNN-JEPA (resnet10)", "random init (vit_micro)",
                 "random init (resnet10)"):
        assert 0 <= m[f"{name} knn_top1"] <= 1 and 0 <= m[f"{name} linear_top1"] <= 1
    assert set(record["figures"]) == {"two_encoders.png", "masks_side_by_side.png", "costs.png",
                                 "probes.png"}
    runs = out / "10_ijepa" / "runs"
    # CNN-JEPA's run is chapter 08's (the same recipe and data): linked, not trained again
    assert (runs / "cnn-jepa").resolve() == (out / "08_comparison" / "runs" / "cnn-jepa"
                                             ).resolve()
    assert not (runs / "ijepa").is_symlink() and (runs / "ijepa" / "last.pt").is_file()
    cfg = json.loads((runs / "ijepa" / "config.json").read_text())
    assert (cfg["method"]["name"], cfg["arch"]) == ("ijepa", "vit_micro")
    rows = json.loads((out / "10_ijepa" / "ijepa.json").read_text())["rows"]
    paper = [(r["method"], r["backbone"], r["linear_top1"]) for r in rows
             if r["source"] == "paper, Table I"]
    assert paper == [("CNN-JEPA", "ResNet-50", 73.26), ("I-JEPA", "ViT-Small", 42.3),
                     ("I-JEPA", "ViT-Base", 46.36)]
    ours = [r for r in rows if r["source"] != "paper, Table I"]
    assert [r["backbone"] for r in ours] == ["vit_micro", "resnet10"]
    assert all("NOT comparable" in r["source"] for r in ours)
    text = (out / "06_reproduction" / "report.md").read_text()
    assert text.count(report.IJEPA_HEADING) == 1 and text.count(report.OTHERS_HEADING) == 1
