"""benchmarks/gpu_check.sh, the GPU evidence in one call, run on the CPU at tiny sizes (TINY=1):
its parts run in order and come back packed without checkpoints, the course part leaves a
partial course that `jepa-lite results` turns into a page, and a part that would pass the
deadline is cut (or skipped) with what ran before it kept. The compiled part is left out here
(minutes of compiling on 2 cores); tests/test_train.py compiles on the CPU."""

import csv
import json
import os
import re
import subprocess
import sys
import tarfile

import pytest

from jepa_lite import cli, methods, repo_root
from jepa_lite.course import runner

pytestmark = pytest.mark.slow  # a minute of bench, chapter and pretraining processes


def _check(tmp_path, name, **env):
    out, work = tmp_path / f"{name}_out", tmp_path / f"{name}_work"
    proc = subprocess.run(
        ["bash", "benchmarks/gpu_check.sh"], cwd=repo_root(), capture_output=True, text=True,
        timeout=900, env={**os.environ, "TINY": "1", "DEVICE": "cpu", "WHEELS": "",
                          "OUT": str(out), "WORK": str(work), "JEPA_LITE_COMMIT": "abc1234",
                          "PYTHON": sys.executable, **env})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    with open(out / "parts.tsv") as f:
        parts = {r["part"]: r for r in csv.DictReader(f, delimiter="\t")}
    unpacked = tmp_path / f"{name}_unpacked"
    with tarfile.open(out / "gpu_check.tgz") as tar:
        tar.extractall(unpacked, filter="data")
    return parts, unpacked


def test_the_gpu_check_runs_end_to_end_at_tiny_sizes(tmp_path):
    parts, got = _check(tmp_path, "all", PARTS="bench course methods")
    assert {p: r["status"] for p, r in parts.items()} == {
        "bench": "ok", "course": "ok", "methods": "ok"}
    assert not [p for p in got.rglob("*") if p.suffix in (".pt", ".npy", ".npz")]
    assert "commit abc1234" in (got / "machine.txt").read_text()
    # (a) the step table, then each method's loader without and with the decoded cache
    bench = json.loads((got / "bench.json").read_text())
    assert [(r["kind"], r["arch"]) for r in bench["rows"]] == [
        ("supervised", "resnet18"), ("cnn-jepa", "resnet18"), ("authors'", "resnet18"),
        ("supervised", "vit_micro"), ("ijepa", "vit_micro")]
    for name, cache in (("bench", "none"), ("bench_cache", "device")):
        rows = json.loads((got / f"{name}.json").read_text())["loader"]
        assert sorted(r["method"] for r in rows) == sorted(methods.for_arch("resnet18")), name
        assert all(r["cache"] == cache for r in rows), rows
        for r in rows:
            assert min(r["images_per_s"], r["with_step_images_per_s"],
                       r["step_images_per_s"]) > 0
    # (b) the chapters, as a partial course a results page is made of
    summary = json.loads((got / "course" / "summary.json").read_text())
    assert [(c["chapter"], c["status"], c["commit"]) for c in summary["chapters"]] == [
        ("00_overview", "ok", "abc1234")]
    assert cli.main(["results", str(got / "course"), "--dest", str(tmp_path / "r")]) == 0
    page = (tmp_path / "r" / "smoke" / "README.md").read_text()
    chapters = len(runner.list_chapters())
    assert f"1 of {chapters} chapters; not run yet: 01_masking" in page
    assert "| abc1234 | cpu |" in page
    # (c) every method end to end for a fixed number of steps (two epochs), with its loader,
    # then its steps alone, the two side by side
    for m in methods.compared("resnet10"):
        rows = [json.loads(line) for line in
                (got / "methods" / m / "metrics.jsonl").read_text().splitlines()]
        assert [r["epoch"] for r in rows] == [1, 2] and rows[-1]["images_per_s"] > 0
        assert rows[-1]["step"] == 2 * 32 // 8  # 4 classes x 8 images, batch 8
    table = (got / "methods.md").read_text()
    fed = re.findall(r"\| (\S+) \| ([\d.]+) \| ([\d.]+) \| 2 of 2 \| ([\d.]+) \|", table)
    assert sorted(label for label, *_ in fed) == sorted(
        methods.get(m).label for m in methods.compared("resnet10")), table
    assert all(float(r) > 0 for *_, r in fed)


def test_a_part_past_the_deadline_is_cut_and_the_rest_skipped(tmp_path):
    parts, got = _check(tmp_path, "cut", PARTS="bench course methods", DEADLINE="6")
    assert parts["bench"]["status"] == "cut at the deadline"
    assert int(parts["bench"]["seconds"]) <= 6 + 12  # the deadline, then INT's grace
    for p in ("course", "methods"):
        assert parts[p]["status"].startswith("skipped: "), parts[p]
    assert (got / "machine.txt").is_file()  # what ran before is packed
