"""`jepa-lite bench`: its saved-bytes counter, its smoke run on the CPU and its arithmetic
(no timing is asserted: speed is measured by the bench, not by tests)."""

import json
import math
import re

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from jepa_lite import methods
from jepa_lite.cli import main as cli
from jepa_lite.course import bench


@pytest.mark.parametrize("batch", [1, 3, 7])
def test_saved_bytes_of_a_hand_counted_network(batch):
    """Linear saves its input, ReLU its output, the second Linear that same output (one
    storage, counted once); the weights are left out: 4 * (4 + 8) bytes per row in fp32."""
    torch.manual_seed(batch)
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    x = torch.randn(batch, 4)
    assert bench.saved_bytes(lambda: net(x).sum(), net.parameters()) == batch * 4 * (4 + 8)
    # counted with the weights: only the second Linear's (its input needs a gradient; the
    # first Linear's input does not, so its weight is not saved)
    with_weights = bench.saved_bytes(lambda: net(x).sum())
    assert with_weights == batch * 4 * (4 + 8) + 4 * 8 * 3


def test_saved_bytes_count_a_view_once_and_nothing_without_grad():
    w = torch.randn(16, requires_grad=True)
    x = torch.randn(16)
    assert bench.saved_bytes(lambda: (w * x).sum() + (w * x[:8].repeat(2)).sum(), [w]) == \
        16 * 4 + 16 * 4  # x and the repeated copy (a new storage); w excluded
    with torch.no_grad():
        assert bench.saved_bytes(lambda: (w * x).sum(), [w]) == 0


def test_saved_bytes_per_image_of_our_step_is_within_the_goal():
    """The issue's memory goal at a small size: the CNN-JEPA step saves at most 1.15x the
    supervised step's bytes per image, in fp32 and bf16 (the same code the bench runs)."""
    dev = torch.device("cpu")
    for precision in ("fp32", "bf16"):
        per_image = {kind: bench.Step(kind, "resnet10", 128, 4, dev,
                                      precision).saved_per_image()
                     for kind in ("supervised", "cnn-jepa")}
        assert 0 < per_image["cnn-jepa"] <= 1.15 * per_image["supervised"], per_image


@pytest.mark.parametrize(("kind", "arch", "batch"), [
    ("ijepa", "vit_micro", 4), ("ijepa", "vit_micro", 6), ("cnn-jepa", "resnet10", 4),
    ("supervised", "vit_micro", 4)])
def test_saved_bytes_per_image_is_the_slope_of_the_steps_own_masks(kind, arch, batch):
    """Bytes per image are those of the step's batch and masks: the same as the slope from
    the batch to the batch twice over (its masks repeated). I-JEPA cuts its blocks to the
    batch's smallest, so halves drawn apart would keep other token counts (and did: 104
    against 58 MiB per image for ViT-S/16 at 224 px, batch 2 and 4)."""
    step = bench.Step(kind, arch, 128, batch, torch.device("cpu"), "fp32")

    def saved(inputs):
        return bench.saved_bytes(lambda: step.model(**inputs)[0], step.model.parameters())

    twice = {name: torch.cat([t, t]) for name, t in step.inputs.items()}
    slope = (saved(twice) - saved(step.inputs)) / batch
    assert step.saved_per_image() == pytest.approx(slope, rel=1e-6)


def test_bench_smoke_run_prints_finite_positive_figures(capsys, tmp_path):
    assert cli(["bench", "--device", "cpu", "--arch", "resnet10", "--image-size", "64",
                "--batch-size", "4", "--steps", "1", "--warmup", "1", "--workers", "0",
                "--loader-images", "12", "--loader-batches", "2", "--data",
                str(tmp_path / "jpegs"), "--json", str(tmp_path / "bench.json"),
                "--vit", "vit_micro"]) == 0
    out = capsys.readouterr().out
    rows = re.findall(r"\| (supervised|cnn-jepa|authors'|ijepa) \| (resnet10|vit_micro) \| "
                      r"(fp32|bf16) \| ([^|]+) \| ([^|]+) \| ([^|]+) \| ([^|]+) \| not a GPU \| "
                      r"([^|]+) M \| ([^|]+) \|", out)
    steps = [(k, "resnet10") for k in bench.KINDS] + [("supervised", "vit_micro"),
                                                      ("ijepa", "vit_micro")]
    assert [(k, a, p) for k, a, p, *_ in rows] == [(k, a, p) for p in ("fp32", "bf16")
                                                   for k, a in steps]
    for _, _, _, *figures in rows:
        assert all(math.isfinite(float(f)) and float(f) > 0 for f in figures), figures
    # each against the supervised step of its own encoder
    assert all(float(ratio) == 1.0 for k, _, _, _, ratio, _, rel, *_ in rows
               if k == "supervised" for ratio in (ratio, rel))
    params = {a: {float(r[7]) for r in rows if r[1] == a} for a in ("resnet10", "vit_micro")}
    assert all(len(v) == 1 for v in params.values()), params  # one encoder, one count
    assert max(params["resnet10"]) > max(params["vit_micro"])
    # the loader of every method, by default, as --json rows and as a table
    loader = json.loads((tmp_path / "bench.json").read_text())["loader"]
    assert {(r["method"], r["workers"]) for r in loader} == {
        (m, 0) for m in methods.for_arch("resnet10")}  # loader workers: test_pipeline.py
    for r in loader:
        assert {"method", "workers", "device", "cache", "images_per_s",
                "with_step_images_per_s"} <= set(r) and r["cache"] == "none"
        assert r["device"].startswith("cpu")
        assert all(math.isfinite(r[k]) and r[k] > 0
                   for k in ("images_per_s", "with_step_images_per_s", "step_images_per_s"))
    table = re.findall(r"\| (cnn-jepa|cjepa|simclr|byol|vicreg|supervised) \| none \| (0) \|",
                       out)
    assert len(table) == len(loader)
    assert len(list((tmp_path / "jpegs" / "train").rglob("*.jpg"))) == 12
    assert (tmp_path / "bench.json").read_text().count('"kind"') == 10
    assert len(re.findall(r"= micro-batch \d+", out)) == 8  # CNN-JEPA's and I-JEPA's


@pytest.mark.parametrize("seed", range(5))
def test_step_flops_count_matrix_products_and_attention(seed):
    """Two linear layers: 2 per multiply-add, forward and backward (no gradient for an input
    that needs none). Attention on the meta device (where a step is counted): its two
    matrix products, each three times with its backward."""
    g = torch.Generator().manual_seed(seed)
    n, i, h, o = (int(v) for v in torch.randint(1, 9, (4,), generator=g))
    net = nn.Sequential(nn.Linear(i, h), nn.Linear(h, o))
    x = torch.randn(n, i, generator=g)
    forward = 2 * n * (i * h + h * o)
    backward = 2 * n * i * h + 2 * 2 * n * h * o  # weights of both, the input of the second
    assert bench.step_flops(lambda: net(x).sum()) == forward + backward
    b, heads, s, d = (int(v) for v in torch.randint(1, 6, (4,), generator=g))
    q, k, v = (torch.randn(b, heads, s, d, device="meta").requires_grad_() for _ in range(3))
    counted = bench.step_flops(lambda: F.scaled_dot_product_attention(q, k, v).sum())
    assert counted == 3 * 4 * b * heads * s * s * d


@pytest.mark.parametrize(("kind", "arch", "size"), [
    ("supervised", "resnet10", 64), ("cnn-jepa", "resnet10", 64), ("authors'", "resnet10", 64),
    ("supervised", "vit_micro", 64), ("ijepa", "vit_micro", 96)])
def test_a_step_counted_on_the_meta_device_is_counted_as_on_the_cpu(kind, arch, size):
    """The count on a meta copy (shapes only) is the count of the real step on the CPU
    with attention as its plain matrix products: nothing data-dependent is lost."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    step = bench.Step(kind, arch, size, 4, torch.device("cpu"), "fp32")
    with sdpa_kernel(SDPBackend.MATH):
        on_cpu = bench.step_flops(lambda: step.model(**step.inputs)[0]) / step.batch
    assert on_cpu > 0
    assert step.flops_per_image() == on_cpu


def test_cost_rows_count_every_step_and_time_only_when_asked():
    """Chapter 10's costs: the counts do not depend on timing; I-JEPA's step does more per
    image than a supervised step of its ViT (a target encoder and a predictor besides)."""
    cpu = torch.device("cpu")
    steps = [bench.Step(kind, "vit_micro", 64, 2, cpu, "fp32")
             for kind in ("supervised", "ijepa")]
    untimed, timed = bench.cost_rows(steps), bench.cost_rows(steps, repeats=1, warmup=0)
    assert all(r["images_per_s"] is None for r in untimed)
    assert all(r["images_per_s"] > 0 for r in timed)
    for a, b in zip(untimed, timed, strict=True):
        assert {k: v for k, v in a.items() if k != "images_per_s"} == {
            k: v for k, v in b.items() if k != "images_per_s"}
    sup, ij = untimed
    assert sup["encoder_params_m"] == ij["encoder_params_m"]  # the same ViT
    assert ij["gflops_per_image"] > sup["gflops_per_image"] > 0


@pytest.mark.parametrize("batches", [1, 3])
def test_the_fed_loop_syncs_the_device_only_around_its_timed_steps(batches, tmp_path,
                                                                    monkeypatch):
    """Training never waits for the device between two steps (the CPU prepares the next
    micro-batch meanwhile); the bench's loader + step loop must not either, or it measures
    a loop in which the GPU waits for every launch: one sync after the untimed first step,
    one after the last, whatever the number of steps; and every step is taken."""
    from jepa_lite import train
    from jepa_lite.data.scenes import SyntheticSpec, make_synthetic

    root = make_synthetic(tmp_path / "d", SyntheticSpec(classes=2, per_class=4,
                                                        val_per_class=1, size=64))
    cfg = train.resolved(train.TrainConfig(method="cnn-jepa", arch="resnet10", image_size=64,
                                           batch_size=4, workers=0), 1)
    run = train.build(cfg, torch.device("cpu"))
    calls = {"sync": 0, "step": 0}
    step = train.train_step

    def counted_step(*args, **kwargs):
        calls["step"] += 1
        return step(*args, **kwargs)

    monkeypatch.setattr(bench, "sync", lambda device: calls.__setitem__("sync",
                                                                        calls["sync"] + 1))
    monkeypatch.setattr(train, "train_step", counted_step)
    assert bench.loader_speed(root, cfg, batches, torch.device("cpu"), run) > 0
    assert calls == {"sync": 2, "step": batches + 1}
