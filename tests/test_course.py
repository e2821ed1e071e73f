"""The course runner: every chapter through papermill with the smoke profile, as `make course`
runs it; failures are reported by chapter and cell and lose nothing."""

import json
import re
import shutil
import subprocess
import sys
import textwrap
import time

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

HEADER = """# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---
"""
PARAMS = """
# %% tags=["parameters"]
PROFILE = "smoke"
DATA_ROOT = None
OUT_DIR = None
DEVICE = "auto"
SEED = 0
INTERACTIVE = True
"""


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


def _chapter(body: str) -> str:
    return HEADER + PARAMS + textwrap.dedent(body)


def test_failing_chapter_is_named_and_others_kept(tmp_path, monkeypatch, capsys):
    """A failing chapter is named with its cell and the others still run; the progress bars
    inside a chapter (and in processes it starts) reach the terminal of `jepa-lite course` as
    they move, at most one line per LOG_EVERY in a log, while the notebook stays quiet."""
    nbdir = tmp_path / "notebooks"
    nbdir.mkdir()
    ok = """
    # %%
    from jepa_lite.course.chapter import start_chapter
    run = start_chapter(NAME, PROFILE, DATA_ROOT, OUT_DIR, DEVICE, SEED)
    run.log(answer=42)
    """
    bars = """
    # %%
    import subprocess, sys, time
    from jepa_lite.progress import progress
    bar = progress(total=40, desc="epochs", unit="epoch")
    for i in range(40):
        time.sleep(0.1)
        bar.update()
        bar.set_postfix(loss=f"{1 / (i + 1):.3f}")
    bar.close()
    child = "from jepa_lite.progress import progress; import time\\n" \\
            "for _ in progress(range(30), desc='child steps'): time.sleep(0.1)"
    done = subprocess.run([sys.executable, "-c", child], check=True)
    """
    (nbdir / "00_first.py").write_text(_chapter(ok.replace("NAME", "'00_first'") + bars))
    (nbdir / "01_broken.py").write_text(_chapter(ok.replace("NAME", "'01_broken'") + """
    # %%
    x = 1

    # %%
    raise ValueError("image size 250 is not a multiple of 32")
    """))
    (nbdir / "02_after.py").write_text(_chapter(ok.replace("NAME", "'02_after'")))
    monkeypatch.setenv("JEPA_LITE_NOTEBOOKS", str(nbdir))
    monkeypatch.setattr(runner, "LOG_EVERY", 0.7)
    out = tmp_path / "out"
    start = time.monotonic()
    results, summary = runner.run_course("smoke", out_dir=out, device="cpu")
    seconds = time.monotonic() - start
    status = {r.chapter: r.status for r in results}
    assert status == {"00_first": "ok", "01_broken": "failed", "02_after": "ok"}
    broken = results[1]
    assert "ValueError: image size 250 is not a multiple of 32" in broken.error
    assert "cell" in broken.error and "raise ValueError" in broken.error
    assert broken.metrics == {"answer": 42}  # what ran before the failure is kept
    text = summary.read_text()
    assert "01_broken | **FAILED**" in text and "02_after | ok" in text
    for ch in ("00_first", "01_broken", "02_after"):
        assert (out / f"{ch}.ipynb").is_file()
    assert json.loads((out / "02_after" / "metrics.json").read_text())["metrics"] == {"answer": 42}
    # the runner's terminal (a log here) shows the chapter's bars as they move, throttled
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("  00_first | ")]
    assert any(re.search(r"epochs \d+/40 epoch, loss=0\.\d+, .*elapsed, ~.* left", ln)
               for ln in lines), err[-2000:]
    assert any(re.search(r"child steps \d+/30 it", ln) for ln in lines), err[-2000:]
    assert len(lines) <= seconds / 0.7 + 1  # no flood
    assert not list(out.glob(".status/*"))  # nothing left behind
    # ... and do not flood the executed notebooks / papermill logs
    cells = json.loads((out / "00_first.ipynb").read_text())["cells"]
    bar_cell = [c for c in cells if "desc=\"epochs\"" in "".join(c["source"])][0]
    assert {o["output_type"] for o in bar_cell["outputs"]} == {"stream"}  # text, no widget
    text = "".join("".join(o["text"]) for o in bar_cell["outputs"])
    assert "40/40" in text and text.count("\r") <= 3  # start and end only, no flood


def test_only_selects_by_number_or_name():
    for key in ("01", "1", "masking", "01_masking"):
        assert [p.stem for p in runner.select_chapters([key])] == ["01_masking"]
    assert [p.stem for p in runner.select_chapters(["01_masking", "00"])] == [
        "00_overview", "01_masking"]
    with pytest.raises(ValueError, match="unknown chapter '42'.*00_overview"):
        runner.select_chapters(["42"])


def test_no_notebooks_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("JEPA_LITE_NOTEBOOKS", str(tmp_path / "nowhere"))
    monkeypatch.setattr(runner, "repo_root", lambda: None)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="clone of the jepa_lite repository"):
        runner.notebooks_dir()


def test_stale_metrics_are_not_reported(tmp_path, monkeypatch):
    nbdir = tmp_path / "notebooks"
    nbdir.mkdir()
    (nbdir / "00_early_failure.py").write_text(_chapter("""
    # %%
    import jepa_lite.no_such_module
    """))
    monkeypatch.setenv("JEPA_LITE_NOTEBOOKS", str(nbdir))
    out = tmp_path / "out"
    (out / "00_early_failure").mkdir(parents=True)
    (out / "00_early_failure" / "metrics.json").write_text('{"metrics": {"old": 1}}')
    results, summary = runner.run_course("smoke", out_dir=out, device="cpu")
    assert results[0].status == "failed" and results[0].metrics == {}
    assert "ModuleNotFoundError" in results[0].error and "old=1" not in summary.read_text()


def test_partial_run_keeps_earlier_chapters_in_the_summary(tmp_path, monkeypatch):
    nbdir = tmp_path / "notebooks"
    nbdir.mkdir()
    body = """
    # %%
    from jepa_lite.course.chapter import start_chapter
    run = start_chapter(NAME, PROFILE, DATA_ROOT, OUT_DIR, DEVICE, SEED)
    run.log(value=SEED)
    """
    for name in ("00_a", "01_b"):
        (nbdir / f"{name}.py").write_text(_chapter(body.replace("NAME", repr(name))))
    monkeypatch.setenv("JEPA_LITE_NOTEBOOKS", str(nbdir))
    out = tmp_path / "out"
    runner.run_course("smoke", out_dir=out, device="cpu", seed=1)
    runner.run_course("smoke", only=["1"], out_dir=out, device="cpu", seed=2)
    rows = json.loads((out / "summary.json").read_text())["chapters"]
    assert [(r["chapter"], r["metrics"]["value"]) for r in rows] == [("00_a", 1), ("01_b", 2)]
    assert "00_a | ok (earlier run)" in (out / "summary.md").read_text()
    runner.run_course("demo", only=["1"], out_dir=out, device="cpu")  # another profile
    rows = json.loads((out / "summary.json").read_text())["chapters"]
    assert [r["chapter"] for r in rows] == ["01_b"]


def test_pending_goes_on_where_a_course_stopped_and_each_chapter_names_what_made_it(
        tmp_path, monkeypatch):
    """--pending runs only the chapters not yet ok into OUT (profile and seed alike); each
    chapter's row keeps the commit, device, torch and end time of its own run."""
    nbdir = tmp_path / "notebooks"
    nbdir.mkdir()
    body = """
    # %%
    import os
    from jepa_lite.course.chapter import start_chapter
    run = start_chapter(NAME, PROFILE, DATA_ROOT, OUT_DIR, DEVICE, SEED)
    run.log(value=SEED)
    assert NAME != os.environ.get("BREAK"), "broken on purpose"
    """
    for name in ("00_a", "01_b", "02_c"):
        (nbdir / f"{name}.py").write_text(_chapter(body.replace("NAME", repr(name))))
    monkeypatch.setenv("JEPA_LITE_NOTEBOOKS", str(nbdir))
    out = tmp_path / "out"

    def runs(commit, **kw):
        monkeypatch.setattr(runner, "git_commit", lambda: commit)
        runner.course_commit.cache_clear()
        return [r.chapter for r in runner.run_course("smoke", out_dir=out, device="cpu",
                                                     pending=True, **kw)[0]]

    monkeypatch.setenv("BREAK", "01_b")
    assert runs("aaaa111", only=["0", "1"]) == ["00_a", "01_b"]  # 01_b fails
    monkeypatch.delenv("BREAK")
    assert runs("bbbb222") == ["01_b", "02_c"]  # not 00_a: it ran ok
    assert runs("bbbb222") == []
    assert runs("cccc333", seed=3) == ["00_a", "01_b", "02_c"]  # another seed: all again
    rows = json.loads((out / "summary.json").read_text())["chapters"]
    assert [(r["chapter"], r["commit"], r["seed"]) for r in rows] == [
        ("00_a", "cccc333", 3), ("01_b", "cccc333", 3), ("02_c", "cccc333", 3)]
    monkeypatch.setattr(runner, "git_commit", lambda: "dddd444")
    runner.course_commit.cache_clear()
    runner.run_course("smoke", only=["2"], out_dir=out, device="cpu", seed=3)
    rows = {r["chapter"]: r for r in json.loads((out / "summary.json").read_text())["chapters"]}
    assert rows["00_a"]["commit"] == "cccc333" and rows["02_c"]["commit"] == "dddd444"
    for r in rows.values():
        assert r["device"] == "cpu" and r["torch"] == torch.__version__
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", r["finished"])
    assert "| 00_a | ok (earlier run) | " in (out / "summary.md").read_text()
    assert "| cccc333 | cpu |" in (out / "summary.md").read_text()


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


def test_chapters_get_the_parameters_they_declare(tmp_path, monkeypatch):
    nbdir = tmp_path / "notebooks"
    nbdir.mkdir()
    show = """
    # %%
    from jepa_lite.course.chapter import start_chapter
    run = start_chapter(NAME, PROFILE, DATA_ROOT, OUT_DIR, DEVICE, SEED)
    run.log(**{k: v for k, v in globals().items() if k in ("RUN_DIR", "MICRO_BATCH")})
    """
    extra = "RUN_DIR = None\nMICRO_BATCH = None\n"
    (nbdir / "00_plain.py").write_text(_chapter(show.replace("NAME", "'00_plain'")))
    (nbdir / "01_run.py").write_text(HEADER + PARAMS + extra + textwrap.dedent(
        show.replace("NAME", "'01_run'")))
    monkeypatch.setenv("JEPA_LITE_NOTEBOOKS", str(nbdir))
    results, _ = runner.run_course("smoke", out_dir=tmp_path / "out", device="cpu",
                                   run_dir=tmp_path / "r", micro_batch=32)
    assert [r.status for r in results] == ["ok", "ok"]
    assert results[0].metrics == {}  # not declared: not injected (papermill would warn)
    assert results[1].metrics == {"RUN_DIR": str((tmp_path / "r").resolve()), "MICRO_BATCH": 32}


def test_an_interrupted_course_says_that_its_run_goes_on(tmp_path, monkeypatch, capsys):
    from jepa_lite.checkpoint import RunLock

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "run_chapter", interrupted)
    with RunLock(tmp_path / "run"):  # as chapter 04's training process holds it
        with pytest.raises(KeyboardInterrupt):
            runner.run_course("smoke", only=["04"], out_dir=tmp_path / "out", device="cpu",
                              run_dir=tmp_path / "run")
    err = capsys.readouterr().err
    assert f"the pretraining run in {tmp_path / 'run'} goes on (pid " in err
    assert "run the course again to follow it, or stop it with kill " in err
    assert (tmp_path / "out" / "summary.md").is_file()


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


def test_results_page_refuses_a_run_with_nothing_to_show_or_of_unnamed_code(tmp_path):
    from jepa_lite.course import report

    with pytest.raises(FileNotFoundError, match="run the course first"):
        report.results_page(tmp_path / "nothing", tmp_path / "r")
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "summary.json").write_text(json.dumps({"config": {}, "chapters": [
        {"chapter": "04_pretraining", "status": "failed", "seconds": 1.0, "metrics": {}}]}))
    with pytest.raises(ValueError, match="chapters 04_pretraining failed .* nothing to show"):
        report.results_page(tmp_path / "o", tmp_path / "r")
    for commit, why in (("abc1234+dirty", "uncommitted changes"), (None, "no git checkout"),
                        ("unknown", "no git checkout")):
        (tmp_path / "o" / "summary.json").write_text(json.dumps({
            "config": {}, "commit": commit, "chapters": [
                {"chapter": "04_pretraining", "status": "ok", "seconds": 1.0, "metrics": {}}]}))
        with pytest.raises(ValueError, match=f"{why}; a results page names the commit"):
            report.results_page(tmp_path / "o", tmp_path / "r")
    assert not (tmp_path / "r").exists()  # nothing written



def test_a_results_page_grows_chapter_by_chapter_and_names_what_made_each(
        tmp_path, monkeypatch, capsys):
    """A partial smoke course makes a page that lists the chapters not run yet; the rest,
    run from another commit, joins it; a chapter on the page from another commit is kept
    unless --replace; each chapter names its commit, device and date."""
    from jepa_lite import cli

    nbdir = tmp_path / "notebooks"
    nbdir.mkdir()
    body = """
    # %%
    import os
    import matplotlib.pyplot as plt
    from jepa_lite.course.chapter import start_chapter
    run = start_chapter(NAME, PROFILE, DATA_ROOT, OUT_DIR, DEVICE, SEED)
    run.log(value=len(os.environ["JEPA_LITE_COMMIT"]))
    fig, ax = plt.subplots()
    ax.plot([0, 1, 0])
    run.savefig(fig, "curve_" + os.environ["JEPA_LITE_COMMIT"])
    """
    for name in ("00_a", "01_b", "02_c"):
        (nbdir / f"{name}.py").write_text(_chapter(body.replace("NAME", repr(name))))
    monkeypatch.setenv("JEPA_LITE_NOTEBOOKS", str(nbdir))
    out, dest = tmp_path / "out", tmp_path / "results"

    def course_from(commit, *only):
        monkeypatch.setenv("JEPA_LITE_COMMIT", commit)
        runner.course_commit.cache_clear()
        runner.run_course("smoke", only=list(only), out_dir=out, device="cpu", pending=True)

    course_from("aaaa111", "0", "1")
    assert cli.main(["results", str(out), "--dest", str(dest)]) == 0
    page_dir = dest / "smoke"
    page = (page_dir / "README.md").read_text()
    assert "2 of 3 chapters; not run yet: 02_c" in page and "| 02_c | not run yet | |" in page
    assert "| aaaa111 | cpu |" in page and "| 00, 01 |" in page
    assert "2 chapters: aaaa111, cpu" in (dest / "README.md").read_text()

    course_from("bbbb222", "1", "2")  # --pending: only 02_c runs
    assert cli.main(["results", str(out), "--dest", str(dest)]) == 0
    page = (page_dir / "README.md").read_text()
    assert "3 of 3 chapters." in page and "not run yet" not in page
    assert "| aaaa111 | cpu |" in page and "| bbbb222 | cpu |" in page
    assert "commit bbbb222" in page and "commit aaaa111" in page
    assert (page_dir / "figures" / "02_c" / "curve_bbbb222.png").is_file()

    course_from("cccc333")  # all three ran ok before: --pending runs none
    assert json.loads((out / "summary.json").read_text())["chapters"][0]["commit"] == "aaaa111"
    runner.course_commit.cache_clear()
    runner.run_course("smoke", only=["1"], out_dir=out, device="cpu")  # 01_b again, at cccc333
    capsys.readouterr()
    assert cli.main(["results", str(out), "--dest", str(dest)]) == 0
    assert "01_b: kept the page's run of aaaa111" in capsys.readouterr().out
    manifest = json.loads((page_dir / "chapters.json").read_text())
    assert [manifest[c]["commit"] for c in ("00_a", "01_b", "02_c")] == [
        "aaaa111", "aaaa111", "bbbb222"]
    assert cli.main(["results", str(out), "--dest", str(dest), "--replace"]) == 0
    manifest = json.loads((page_dir / "chapters.json").read_text())
    assert manifest["01_b"]["commit"] == "cccc333"
    assert sorted(p.name for p in (page_dir / "figures" / "01_b").iterdir()) == [
        "curve_cccc333.png"]  # the older run's figure is gone
    page = (page_dir / "README.md").read_text()
    assert "![01_b: curve_cccc333.png](figures/01_b/curve_cccc333.png)" in page
    for e in manifest.values():
        assert e["device"] == "cpu" and e["torch"] == torch.__version__ and e["notebook"]
        assert (page_dir / "notebooks" / f"{e['chapter']}.ipynb").is_file()
    assert not list(page_dir.rglob("*.pt"))


def test_results_index_links_every_page_and_names_the_missing_ones(tmp_path):
    from jepa_lite.course import report
    from jepa_lite.course.profiles import PROFILES

    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "README.md").write_text(
        "# x\n\n| commit | device | torch | seed | date | wall time |\n|---|---|---|---|---|---|\n"
        "| abc1234 | NVIDIA T4 | 2.4 | 0 | 2026-11-26 | 61.0 min |\n")
    (tmp_path / "gpu").mkdir()
    (tmp_path / "gpu" / "README.md").write_text("# a page of another layout\n")
    index = report.results_index(tmp_path).read_text()
    assert "| `demo` | [demo/README.md](demo/README.md) | abc1234, NVIDIA T4, 61.0 min |" in index
    assert "| `gpu` | [gpu/README.md](gpu/README.md) | ? |" in index
    assert "| `full` | not made yet: `make results PROFILE=full` on a GPU |" in index
    assert all(f"`{name}`" in index for name in PROFILES)


def test_chapters_07_to_09_read_the_committed_demo_runs_without_training(tmp_path):
    """TRAIN = False, a reader's default: chapters 07-09 draw every figure and table from the
    demo course committed in docs/results/demo/data, and train nothing."""
    from jepa_lite.course import bundle

    results, _ = runner.run_course("smoke", ["07", "08", "09"], out_dir=tmp_path, device="cpu",
                                   extra={"TRAIN": False})
    assert [r.status for r in results] == ["ok"] * 3, [r.error for r in results]
    for r in results:
        commit = bundle.committed(r.chapter).facts["commit"]
        assert r.metrics["source"] == f"committed ({commit})"
        meta = json.loads((tmp_path / r.chapter / "metrics.json").read_text())
        assert meta["profile"] == "demo" and len(meta["figures"]) >= 3
        assert not (tmp_path / r.chapter / "runs").exists()  # nothing trained
    m7 = results[0].metrics
    stored = bundle.committed("07_cjepa")
    assert m7["CNN-JEPA knn_top1"] == stored.runs["CNN-JEPA"]["knn_top1"]
