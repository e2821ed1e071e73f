"""The benchmark scripts run and print their figures (no timing is asserted)."""

import json
import os
import re
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow  # the benchmark scripts, each in a process of its own


def test_pretrain_cost_prints_estimates():
    out = subprocess.run([sys.executable, str(REPO / "benchmarks" / "pretrain_cost.py"),
                          "--arch", "resnet10", "--image-size", "64", "--batch-sizes", "2", "4",
                          "--device", "cpu"], check=True, capture_output=True, text=True).stdout
    assert "resnet10 at 64 px on CPU" in out and ", fp32" in out
    assert len(re.findall(r"batch +\d+: peak +[\d.]+ GiB", out)) == 2
    peaks = [float(x) for x in re.findall(r"estimated peak at micro-batch \d+: ([\d.]+) GiB",
                                          out)]
    assert len(peaks) == 2 or "did not grow" in out  # tiny runs: RSS noise can hide the slope
    assert all(p > 0 for p in peaks) and peaks == sorted(peaks)  # 128 needs more than 32
    found = re.search(r"saved for backward: ([\d.]+) MiB per image; weights, gradients and "
                      r"AdamW state ([\d.]+) GiB", out)
    saved, state = float(found[1]), float(found[2])
    assert saved > 0 and state > 0
    estimates = re.findall(r"GPU estimate at micro-batch (\d+) in fp32: ([\d.]+) GiB", out)
    assert [int(b) for b, _ in estimates] == [32, 64, 128]
    for b, gib in estimates:  # the arithmetic it prints: state + micro-batch x saved per image
        assert abs(float(gib) - (state + int(b) * saved / 1024)) <= 0.06, (b, gib, saved, state)
    assert "ImageNet-100 x 200 epochs" in out


def test_probe_memory_prints_the_extrapolation():
    out = subprocess.run([sys.executable, str(REPO / "benchmarks" / "probe_memory.py"),
                          "--sizes", "2000", "4000", "--dim", "64", "--classes", "10",
                          "--val", "300"], check=True, capture_output=True, text=True).stdout
    assert out.count("| 2,000 |") == 1 and out.count("| 4,000 |") == 1
    assert re.search(r"peak_rss: -?\d+ bytes per bank row .* at 1,281,167 rows", out)
    assert re.search(r"peak_anon: -?\d+ bytes per bank row", out)


def test_methods_step_prints_every_method_beside_the_paper():
    out = subprocess.run([sys.executable, str(REPO / "benchmarks" / "methods_step.py"),
                          "--arch", "resnet10", "--image-size", "64", "--batch-size", "4",
                          "--steps", "1", "--device", "cpu"],
                         check=True, capture_output=True, text=True).stdout
    rows = dict(re.findall(r"\| (CNN-JEPA|C-JEPA|SimCLR|BYOL|VICReg) \| ([\d.]+) \|", out))
    assert set(rows) == {"CNN-JEPA", "C-JEPA", "SimCLR", "BYOL", "VICReg"}
    assert all(float(v) > 0 for v in rows.values())
    assert "| SimCLR |" in out and "| 1.20 |" in out  # the paper's 0.0775 / 0.0644


def test_methods_step_puts_each_run_with_its_loader_beside_its_step_alone(tmp_path):
    """--runs: a constructed run folder (its last epoch at 40 images/s) is read back, its
    ratio to the step alone is the printed figures' ratio; a run of another batch is
    refused by name; a method without a run is said to have none."""
    run = tmp_path / "runs" / "simclr"
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"arch": "resnet10", "image_size": 64,
                                                 "batch_size": 4}))
    (run / "metrics.jsonl").write_text("".join(json.dumps({"epoch": e, "images_per_s": v}) + "\n"
                                               for e, v in ((1, 10.0), (2, 40.0))))
    args = [sys.executable, str(REPO / "benchmarks" / "methods_step.py"), "--arch",
            "resnet10", "--image-size", "64", "--steps", "1", "--device", "cpu", "--runs",
            str(tmp_path / "runs")]
    out = subprocess.run(args + ["--batch-size", "4"], check=True, capture_output=True,
                         text=True).stdout
    seconds = float(re.search(r"\| SimCLR \| ([\d.]+) \|", out).group(1))
    alone, fed, ratio = re.search(r"\| SimCLR \| ([\d.]+) \| ([\d.]+) \| 2 of 2 \| "
                                  r"([\d.]+) \|", out).groups()
    assert float(fed) == 40.0 and float(alone) == pytest.approx(4 / seconds, rel=0.05)
    assert float(ratio) == pytest.approx(40.0 / float(alone), abs=0.011)
    assert re.search(r"\| BYOL \| [\d.]+ \| no run in \S+byol \| - \| - \|", out), out
    refused = subprocess.run(args + ["--batch-size", "8"], capture_output=True, text=True)
    assert refused.returncode != 0
    assert "trained resnet10 at 64 px, batch 4; these steps are resnet10 at 64 px, batch 8" \
        in refused.stderr


def test_jitter_contrast_prints_a_row_per_strength_and_half_strength_keeps_more():
    out = subprocess.run([sys.executable, str(REPO / "benchmarks" / "jitter_contrast.py"),
                          "--strengths", "1", "0.5", "0", "--images", "6", "--draws", "10",
                          "--size", "64"], check=True, capture_output=True, text=True).stdout
    rows = {float(s): (float(m), float(a), float(b)) for s, m, a, b in
            re.findall(r"\| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \|", out)}
    assert set(rows) == {1.0, 0.5, 0.0}, out
    assert rows[0.0] == (1.0, 0.0, 0.0)  # no jitter leaves every image as it was
    assert rows[0.5][0] > rows[1.0][0] and rows[0.5][1] <= rows[1.0][1], out


def test_loader_transfer_prints_both_ways_of_handing_over_a_batch():
    out = subprocess.run([sys.executable, str(REPO / "benchmarks" / "loader_transfer.py"),
                          "--workers", "1", "--batch", "8", "--batches", "4", "--rounds", "1",
                          "--bytes", "1000"], check=True, capture_output=True, text=True).stdout
    rows = re.findall(r"(one tensor per image|one packed tensor) *: +([\d.]+) ms per batch of "
                      r"8 x 1000 bytes, 1 workers", out)
    assert [name for name, _ in rows] == ["one tensor per image", "one packed tensor"], out
    assert all(float(ms) > 0 for _, ms in rows)


def test_course_time_counts_each_run_once_and_uses_the_bench_rates(tmp_path, capsys):
    """The gpu course: chapter 04's run, the supervised reference, five more in 07, three
    baselines in 08, one ablation in 09 (the others are linked twins). In this process: the
    script only counts."""
    import importlib.util
    import json

    spec = importlib.util.spec_from_file_location("course_time",
                                                  REPO / "benchmarks" / "course_time.py")
    course_time = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(course_time)
    assert course_time.main(["--profile", "gpu", "--images-per-s", "1000"]) == 0
    out = capsys.readouterr().out
    runs = re.findall(r"ch(\d\d) (.+?) +(\d+) epochs x +(\d+) images .*: +(\d+) s", out)
    assert [(c, n.strip()) for c, n, *_ in runs] == [
        ("04", "CNN-JEPA"), ("05", "supervised"), ("07", "CNN-JEPA, no EMA"),
        ("07", "CNN-JEPA, no predictor"), ("07", "CNN-JEPA, gradient through the target"),
        ("07", "C-JEPA"), ("07", "C-JEPA, no EMA"), ("08", "simclr"), ("08", "byol"),
        ("08", "vicreg"), ("09", "strategy-random")]
    assert all(int(s) == round(int(e) * int(i) / 1000) for *_, e, i, s in runs)
    bench = {"arch": "resnet18", "image_size": 224, "batch": 128, "loader": [
        {"method": m, "pipeline": p, "with_step_images_per_s": r} for m, p, r in (
            ("cnn-jepa", "device", 2000.0), ("cjepa", "device", 1000.0),
            ("simclr", "device", 500.0), ("byol", "device", 400.0), ("vicreg", "device", 500.0),
            ("simclr", "device", 250.0), ("simclr", "pil", 5000.0))]}  # the device's best
    (tmp_path / "b.json").write_text(json.dumps(bench))
    assert course_time.main(["--profile", "gpu", "--bench", str(tmp_path / "b.json")]) == 0
    out = capsys.readouterr().out
    assert re.search(r"ch08 simclr +40 epochs x +10000 images at +500 images/s: +800 s", out)
    assert re.search(r"ch05 supervised +20 epochs x +10000 images at +2000 images/s: +100 s",
                     out)
    total = 200 + 100 + 200 + 200 + 200 + 400 + 400 + 800 + 1000 + 800 + 200
    assert f"training: {total} s" in out

    (tmp_path / "small.json").write_text(json.dumps({**bench, "image_size": 128}))
    with pytest.raises(SystemExit, match="measured resnet18 at 128 px, batch 128; the profile "
                                         "trains resnet18 at 224 px"):
        course_time.main(["--profile", "gpu", "--bench", str(tmp_path / "small.json")])
    with pytest.raises(SystemExit, match="reads DATA_ROOT: give --train-images"):
        course_time.main(["--profile", "full", "--images-per-s", "1000"])
    assert course_time.main(["--profile", "full", "--images-per-s", "1000",
                             "--train-images", "126689"]) == 0
    assert "ch04 CNN-JEPA           200 epochs x 126689 images" in capsys.readouterr().out


def test_draw_speed_compares_both_painters_with_another_commit():
    out = subprocess.run([sys.executable, str(REPO / "benchmarks" / "draw_speed.py"),
                          "--against", "HEAD", "--sizes", "32", "--images", "3", "--repeats",
                          "1"], check=True, capture_output=True, text=True, cwd=REPO).stdout
    rows = re.findall(r"\| (scenes|busy) \| 32 \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \| (\S+) \|",
                      out)
    assert [r[0] for r in rows] == ["scenes", "busy"], out
    assert all(float(then) > 0 and float(now) > 0 for _, then, now, _, _ in rows)


def test_draw_speed_tells_other_pixels_from_the_same():
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import draw_speed
    finally:
        sys.path.pop(0)
    from jepa_lite.data import scenes

    def brighter(shape, rng, size):
        return scenes.render_busy(shape, rng, size).point(lambda v: min(255, v + 1))

    _, a = draw_speed.draw_all(scenes.render_busy, 32, 3)
    _, b = draw_speed.draw_all(scenes.render_busy, 32, 3)
    _, c = draw_speed.draw_all(brighter, 32, 3)
    assert a == b != c


def test_feature_loader_prints_both_ways_of_handing_over_pixels(tmp_path):
    env = {**os.environ, "JEPA_LITE_CACHE": str(tmp_path)}
    out = subprocess.run([sys.executable, str(REPO / "benchmarks" / "feature_loader.py"),
                          "--images", "20", "--size", "64", "--batch-size", "8", "--workers",
                          "1", "--rounds", "1", "--device", "cpu"], check=True,
                         capture_output=True, text=True, env=env).stdout
    rows = re.findall(r"(float32 from the workers|uint8, normalised as a batch) *: +([\d.]+) "
                      r"images/s", out)
    assert [name for name, _ in rows] == ["float32 from the workers",
                                          "uint8, normalised as a batch"], out
    assert all(float(v) > 0 for _, v in rows) and "20 images at 64 px" in out
