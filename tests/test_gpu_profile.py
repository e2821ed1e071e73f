"""The `gpu` profile: the paper's geometry on busy scenes, and its recipe shortened to run on
a CPU end to end (pretraining from the decoded cache, the supervised reference, the probes)."""

import json

import pytest
import torch

from jepa_lite import masking, methods, train
from jepa_lite.course import compare
from jepa_lite.course.profiles import PROFILES
from jepa_lite.data import scenes
from jepa_lite.data.scenes import SyntheticSpec
from jepa_lite.eval import probes

GPU = PROFILES["gpu"]


def test_gpu_profile_is_the_papers_grid_with_the_authors_optimizer_on_busy_scenes():
    cfg = GPU.config()
    assert masking.grid_of(cfg.image_size, cfg.arch) == (7, 7)
    assert (cfg.arch, cfg.image_size, cfg.batch_size, cfg.epochs) == ("resnet18", 224, 128, 40)
    o = cfg.method
    assert (o.optimizer, o.lr, o.weight_decay, o.ema, o.strategy) == (
        "adamw", 0.01, 0.01, (0.996, 1.0), "mixed")
    assert GPU.synthetic.kind == "busy" and GPU.synthetic.size == cfg.image_size
    assert GPU.synthetic.classes * GPU.synthetic.per_class == 10_000
    assert GPU.many_runs == {} and GPU.many_runs_data is None  # chapters 07-09: the same recipe
    assert GPU.supervised_epochs > 0  # chapter 05's ceiling
    # the ResNet methods train the same epochs on the same data at the same batch, and
    # I-JEPA as long, on its own encoder (the ViT-S/16 of Table I)
    recipes = {m: GPU.config(m, many_runs=True) for m in methods.METHODS}
    assert {(c.epochs, c.batch_size, c.image_size, c.arch) for m, c in recipes.items()
            if m != "ijepa"} == {(40, 128, 224, "resnet18")}
    ijepa = recipes["ijepa"]
    assert (ijepa.epochs, ijepa.batch_size, ijepa.image_size, ijepa.arch) == (
        40, 128, 224, "vit_small")
    # the LARS baselines' learning rates follow the batch (a quarter of the authors' 512)
    for m in ("simclr", "vicreg"):
        ours, theirs = GPU.config(m).method.lr, PROFILES["full"].config(m).method.lr
        assert ours == pytest.approx(theirs * 128 / 512)


def test_gpu_profile_blocks_span_several_cells_of_its_grid():
    """On 2x2 or 3x3 grids every multi-block block is one cell; on the profile's 7x7 grid
    (the paper's) they are several, as C-JEPA's block means need."""
    cfg = GPU.config("cjepa")
    o = cfg.method
    grid = masking.grid_of(cfg.image_size, cfg.arch)
    g = torch.Generator().manual_seed(0)
    _, blocks = masking.sample_masks(2000, grid, "multiblock", g, return_blocks=True,
                                     **o.masking.to_dict())
    cells = blocks.flatten(2).sum(-1).flatten().float()
    assert cells.min() >= 4 and cells.mean() >= 6, cells.unique()
    # and what the C-JEPA loader hands its step has those blocks
    collate = methods.get("cjepa").views(cfg.with_changes(strategy="multiblock")).masks
    masks, drawn = collate.draw(64, seed=1)[:2]
    assert masks.shape[-2:] == grid and drawn.flatten(2).sum(-1).min() >= 4


def test_a_shortened_gpu_recipe_runs_end_to_end_on_the_cpu(tmp_path, monkeypatch):
    """The profile's recipe (ResNet-18, 224 px, 7x7 grid, AdamW, the decoded-images cache),
    shortened to one epoch on a few busy scenes: pretraining, the supervised reference and
    the probes run through the code a GPU runs (bf16 autocast, here on the CPU)."""
    monkeypatch.setenv("JEPA_LITE_CACHE", str(tmp_path / "cache"))
    spec = SyntheticSpec(**{**GPU.synthetic.__dict__, "per_class": 2, "val_per_class": 1,
                            "classes": 4})
    root = scenes.ensure_synthetic(spec)
    cfg = GPU.config().with_changes(epochs=1, batch_size=8, warmup_epochs=0, workers=0,
                                    precision="bf16")
    assert cfg.cache == "device"  # on the CPU: the training device's memory is the host's
    last = train.pretrain(cfg, root, tmp_path / "run", device="cpu")
    history = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    assert len(history) == 1 and torch.isfinite(torch.tensor(history[0]["loss"]))
    result = probes.evaluate(probes.encoder_from_checkpoint(last), probes.checkpoint_key(last),
                             root, tmp_path / "probe", cfg.image_size, "cpu", k=GPU.knn_k,
                             epochs=2)
    assert result["image_size"] == 224 and result["val_images"] == 4
    sup_cfg = GPU.config("supervised").with_changes(epochs=1, batch_size=8, warmup_epochs=0,
                                                    workers=0, precision="bf16", num_classes=4)
    assert sup_cfg.cache == "device" and sup_cfg.arch == cfg.arch
    sup = compare.run_method(sup_cfg, tmp_path / "sup", root, torch.device("cpu"), 2,
                             k=GPU.knn_k)
    assert len(sup["history"]) == 1 and 0 <= sup["linear_top1"] <= 1
    floor = compare.probe_random_init(cfg, root, tmp_path / "random", cfg.image_size,
                                      torch.device("cpu"), 2, k=GPU.knn_k)
    rows = compare.learned_rows({"CNN-JEPA": result, "supervised": sup}, floor, 4)
    assert [r["method"] for r in rows] == ["CNN-JEPA", "supervised"]
