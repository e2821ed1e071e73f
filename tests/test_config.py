"""Configuration as data: profiles resolve into complete configurations, a method's options
never leak into another's run, and bad values are refused when a configuration is made."""

import dataclasses
import random
from dataclasses import replace

import pytest
import torch

from jepa_lite import config, masking, train
from jepa_lite.config import METHOD_OPTIONS, TrainConfig
from jepa_lite.course import chapter, profiles
from jepa_lite.course.profiles import PROFILES
from jepa_lite.encoders.resnet import patch_of


@pytest.mark.parametrize("name", ["smoke", "demo", "full"])
def test_profiles_resolve(name, tmp_path):
    cfg = chapter.resolve(name, out_dir=tmp_path, device="cpu", seed=3)
    assert cfg.profile.name == name and cfg.seed == 3 and cfg.device == torch.device("cpu")
    assert cfg.image_size % 32 == 0 and cfg.grid == (cfg.image_size // 32,) * 2
    assert cfg.out_dir == tmp_path
    assert cfg.to_dict()["profile"]["name"] == name


def test_profiles_grow():
    s, d, f = (profiles.PROFILES[n] for n in ("smoke", "demo", "full"))
    assert s.mask_draws < d.mask_draws < f.mask_draws
    assert s.image_size <= d.image_size <= f.image_size == 224
    assert f.synthetic is None and s.synthetic is not None


def test_unknown_profile():
    with pytest.raises(ValueError,
                       match="unknown profile 'smok'; choose one of smoke, demo, gpu, full"):
        chapter.resolve("smok")


def test_smoke_generates_its_data_once(tmp_path):
    cfg = chapter.resolve("smoke", out_dir=tmp_path, device="cpu")
    root = cfg.data_root()
    assert (root / "train").is_dir() and (root / "val").is_dir()
    stamp = (root / "dataset.json").stat().st_mtime_ns
    assert chapter.resolve("smoke", out_dir=tmp_path).data_root() == root
    assert (root / "dataset.json").stat().st_mtime_ns == stamp


def test_full_profile_needs_a_data_root(tmp_path):
    cfg = chapter.resolve("full", out_dir=tmp_path, device="cpu")
    with pytest.raises(ValueError, match="needs DATA_ROOT.*make-data imagenet100"):
        cfg.data_root()


def test_data_root_is_checked(tmp_path):
    cfg = chapter.resolve("full", data_root=tmp_path / "missing", out_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        cfg.data_root()


def test_default_out_dir_is_in_the_checkout():
    assert chapter.repo_root() is not None
    assert chapter.default_out_dir() == chapter.repo_root() / "outputs"


def test_profiles_table_lists_every_profile():
    table = profiles.profiles_table()
    assert all(f"`{n}`" in table for n in profiles.PROFILES)


@pytest.mark.parametrize("name", list(profiles.PROFILES))
def test_profile_multiblock_blocks_are_not_all_single_cells(name):
    """The paper's multi-block geometry needs blocks of several cells (issue 10, bullet 1):
    the run of chapter 04 must have some (smoke and demo: a 4x4 grid at 128 px)."""
    cfg = profiles.PROFILES[name].config()
    sizes = masking.block_sizes(masking.grid_of(cfg.image_size, cfg.arch), cfg.method.masking,
                                cfg.method.official_masks)
    assert set(sizes) != {(1, 1)}, train.geometry(cfg)


@pytest.mark.parametrize("name", list(profiles.PROFILES))
def test_knn_k_fits_the_feature_bank(name):
    """k = 200 neighbours among 144 training images would vote with every image."""
    p = profiles.PROFILES[name]
    for spec in (p.synthetic, p.many_runs_data):
        bank = spec.classes * spec.per_class if spec else 126_689  # ImageNet-100
        assert p.knn_k <= bank // 4, (p.knn_k, bank)
    if p.synthetic:
        assert p.knn_k <= p.synthetic.per_class  # no more neighbours than images of a class


@pytest.mark.parametrize("name", list(profiles.PROFILES))
def test_many_run_chapters_get_the_recipe_with_the_profiles_changes(name, tmp_path):
    """Chapters 07-09 train the recipe plus ``many_runs``, on ``many_runs_data`` where the
    profile has one."""
    p = profiles.PROFILES[name]
    for method in METHOD_OPTIONS:
        one, many = p.config(method), p.config(method, many_runs=True)
        changed = {f.name for f in dataclasses.fields(one)
                   if getattr(one, f.name) != getattr(many, f.name)}
        assert changed == {k for k, v in p.many_runs.items() if getattr(one, k) != v}
        train.check_config(one)  # the trunk tiles the image; the masks fit the grid
        train.check_config(many)
    cfg = chapter.resolve(name, out_dir=tmp_path, device="cpu")
    if p.many_runs_data is not None:
        assert p.many_runs_data.name != p.synthetic.name
        assert cfg.data_root(many_runs=True).name == p.many_runs_data.name
    mine = chapter.resolve(name, data_root=tmp_path, out_dir=tmp_path, device="cpu")
    for split in ("train", "val"):
        (tmp_path / split / "a").mkdir(parents=True, exist_ok=True)
    assert mine.data_root(many_runs=True) == mine.data_root()  # DATA_ROOT wins


@pytest.mark.parametrize("name", list(profiles.PROFILES))
def test_a_profile_sets_each_method_its_own_recipe(name):
    p = PROFILES[name]
    for method in METHOD_OPTIONS:
        cfg = p.config(method, seed=4)
        assert cfg.method.name == method and cfg.seed == 4 and cfg.image_size == p.image_size
        for field, value in p.methods.get(method, {}).items():  # the method's or the run's
            assert getattr(cfg if field == "arch" else cfg.method, field) == value
        if hasattr(cfg.method, "masking"):
            assert cfg.method.masking == p.masking and cfg.method.strategy == p.strategy


def test_the_configuration_module_is_data():
    """``config`` imports nothing of the package, and its dataclasses are frozen."""
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(config))
    imported = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert [m for m in imported if m and m.startswith("jepa_lite")] == ["jepa_lite.errors"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        TrainConfig().epochs = 3


@pytest.mark.parametrize("seed", range(20))
def test_switching_the_method_never_keeps_another_methods_settings(seed):
    """Over random pairs of methods and random changes to the first: the second method's
    options are its own defaults, whichever way the method is switched."""
    rng = random.Random(seed)
    first, second = rng.sample(list(METHOD_OPTIONS), 2)
    cfg = TrainConfig(method=first).with_changes(lr=rng.choice([0.1, 0.3, 3.0]),
                                                 weight_decay=rng.choice([0.0, 0.2]))
    for switched in (replace(cfg, method=second), cfg.with_changes(method=second),
                     TrainConfig.from_dict({**cfg.to_dict(), "method": {"name": second}})):
        assert switched.method == METHOD_OPTIONS[second]()
        assert (switched.epochs, switched.arch) == (cfg.epochs, cfg.arch)


@pytest.mark.parametrize("seed", range(20))
def test_a_configuration_survives_its_json(seed):
    """``to_dict`` -> JSON -> ``from_dict`` is the identity, for random valid changes."""
    import json

    rng = random.Random(seed)
    method = rng.choice(list(METHOD_OPTIONS))
    changes = {"epochs": rng.randint(11, 300), "seed": rng.randint(0, 9),
               "micro_batch": rng.choice([None, 4, 32]), "lr": rng.uniform(1e-4, 1)}
    if method in ("cnn-jepa", "cjepa"):
        changes.update(num_blocks=rng.randint(1, 6), block_scale=(0.1, rng.uniform(0.1, 0.3)),
                       strategy=rng.choice(config.STRATEGIES))
    cfg = TrainConfig(method=method).with_changes(**changes)
    assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


@pytest.mark.parametrize("changes, message", [
    ({"epochs": 0}, "--epochs 0: epochs must be at least 1"),
    ({"epochs": -1}, "--epochs -1: epochs must be at least 1"),
    ({"ema": (1.5, 0.5)}, "--ema 1.5 0.5: ema must be at most 1"),
    ({"ema": (0.9, 0.5)}, "--ema 0.9 0.5: ema goes from its first value to its second"),
    ({"lr": 0}, "--lr 0: lr must be more than 0"),
    ({"batch_size": 0}, "--batch-size 0"),
    ({"num_blocks": 0}, "--num-blocks 0: masking.num_blocks must be at least 1"),
    ({"block_scale": (0.3, 0.2)}, "--block-scale 0.3 0.2"),
    ({"kernel_size": 4}, "--kernel-size 4: kernel_size must be odd"),
    ({"strategy": "blocks"}, "--masking blocks: strategy must be one of multiblock, random"),
    ({"precision": "fp8"}, "--precision fp8: precision must be one of auto"),
    ({"epochs": "5"}, "--epochs 5: epochs must be a whole number, not str"),
    ({"epochs": 2}, r"--warmup-epochs 10 is not shorter than the run \(--epochs 2\).*"
                    r"use --warmup-epochs 0.1"),
    ({"warmup_epochs": 5, "epochs": 5}, "--warmup-epochs 5 is not shorter"),
    ({"temperature": 0.5}, "--temperature is an option of simclr; cnn-jepa does not use it"),
    ({"notes": "x"}, "unknown configuration field 'notes'"),
])
def test_impossible_values_are_refused_when_the_configuration_is_made(changes, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig().with_changes(**changes)


def test_every_profile_image_size_tiles_its_trunk():
    for p in PROFILES.values():
        cfg = p.config()
        assert cfg.image_size % patch_of(cfg.arch) == 0


@pytest.mark.parametrize("make, message", [
    (lambda: config.MaskOptions(num_blocks=0), "--num-blocks 0: masking.num_blocks must be at "
                                               "least 1"),
    (lambda: config.CNNJEPAOptions(lr=-1.0), "--lr -1.0: lr must be more than 0"),
    (lambda: config.SimCLROptions(temperature=0), "--temperature 0: temperature must be more"),
    (lambda: config.BYOLOptions(ema=(1.0, 0.9)), "--ema 1.0 0.9: ema goes from its first"),
    (lambda: config.CJEPAOptions(reading="C"), "--cjepa-reading C: reading must be one of A, B"),
])
def test_every_options_class_checks_itself_when_made(make, message):
    """Options are checked where they are made, not only when nested in a TrainConfig."""
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize("name, value, where", [
    ("masking", "random", ("strategy", "random")),  # --masking random
    ("strategy", "multiblock", ("strategy", "multiblock")),
    ("cjepa_reading", "B", ("reading", "B")),  # --cjepa-reading B
    ("num_blocks", 2, ("masking", config.MaskOptions(num_blocks=2))),
    ("masking", {"num_blocks": 3}, ("masking", config.MaskOptions(num_blocks=3))),
])
def test_with_changes_takes_what_the_flag_takes(name, value, where):
    cfg = TrainConfig(method="cjepa").with_changes(**{name: value})
    assert getattr(cfg.method, where[0]) == where[1]


def test_the_configuration_machinery_names_no_options_class():
    """Nested option groups are found by their type (config.groups), not by name: the
    machinery (with_changes, schema, from_dict) never names MaskOptions or a method."""
    import ast
    import inspect
    import textwrap

    for function in (TrainConfig.with_changes, TrainConfig.from_dict, config.schema,
                     config._locate, config._method_from_dict, config._options_fields):
        source = textwrap.dedent(inspect.getsource(function))
        names = {n.id for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Name)}
        assert not names & {"MaskOptions", "CNNJEPAOptions", "CJEPAOptions", "SimCLROptions",
                            "BYOLOptions", "VICRegOptions"}, function.__name__
