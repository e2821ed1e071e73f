"""The benchmark scripts run and print their figures (no timing is asserted)."""

import re
import subprocess
import sys

from tests.conftest import REPO


def test_pretrain_cost_prints_estimates():
    out = subprocess.run([sys.executable, str(REPO / "benchmarks" / "pretrain_cost.py"),
                          "--arch", "resnet10", "--image-size", "64", "--batch-sizes", "2", "4",
                          "--device", "cpu"], check=True, capture_output=True, text=True).stdout
    assert "resnet10 at 64 px on CPU" in out
    assert len(re.findall(r"batch +\d+: peak +[\d.]+ GiB", out)) == 2
    peaks = [float(x) for x in re.findall(r"estimated peak at batch \d+: ([\d.]+) GiB", out)]
    assert len(peaks) == 2 or "did not grow" in out  # tiny runs: RSS noise can hide the slope
    assert all(p > 0 for p in peaks)
    assert "ImageNet-100 x 200 epochs" in out
