"""The course runner on small made-up chapters and partial courses: failures named by chapter
and cell, nothing lost, runs resumed, results pages (tests/test_course.py runs every chapter;
apart, so that the two files run side by side under `make test`)."""

import json
import re
import subprocess
import sys
import textwrap
import time

import pytest
import torch

from jepa_lite.course import runner
from jepa_lite.course.profiles import PROFILES

pytestmark = pytest.mark.slow  # the smoke course through papermill: minutes


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
