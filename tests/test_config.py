"""Profiles resolve into complete configurations; bad parameters are clear errors."""

from dataclasses import asdict

import pytest
import torch

from jepa_lite import config, masking, train


@pytest.mark.parametrize("name", ["smoke", "demo", "full"])
def test_profiles_resolve(name, tmp_path):
    cfg = config.resolve(name, out_dir=tmp_path, device="cpu", seed=3)
    assert cfg.profile.name == name and cfg.seed == 3 and cfg.device == torch.device("cpu")
    assert cfg.image_size % 32 == 0 and cfg.grid == (cfg.image_size // 32,) * 2
    assert cfg.out_dir == tmp_path
    assert cfg.to_dict()["profile"]["name"] == name


def test_profiles_grow():
    s, d, f = (config.PROFILES[n] for n in ("smoke", "demo", "full"))
    assert s.mask_draws < d.mask_draws < f.mask_draws
    assert s.image_size <= d.image_size <= f.image_size == 224
    assert f.synthetic is None and s.synthetic is not None


def test_unknown_profile():
    with pytest.raises(ValueError, match="unknown profile 'smok'; choose one of smoke, demo, full"):
        config.resolve("smok")


def test_smoke_generates_its_data_once(tmp_path):
    cfg = config.resolve("smoke", out_dir=tmp_path, device="cpu")
    root = cfg.data_root()
    assert (root / "train").is_dir() and (root / "val").is_dir()
    stamp = (root / "dataset.json").stat().st_mtime_ns
    assert config.resolve("smoke", out_dir=tmp_path).data_root() == root
    assert (root / "dataset.json").stat().st_mtime_ns == stamp


def test_full_profile_needs_a_data_root(tmp_path):
    cfg = config.resolve("full", out_dir=tmp_path, device="cpu")
    with pytest.raises(ValueError, match="needs DATA_ROOT.*make-data imagenet100"):
        cfg.data_root()


def test_data_root_is_checked(tmp_path):
    cfg = config.resolve("full", data_root=tmp_path / "missing", out_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        cfg.data_root()


def test_default_out_dir_is_in_the_checkout():
    assert config.repo_root() is not None
    assert config.default_out_dir() == config.repo_root() / "outputs"


def test_profiles_table_lists_every_profile():
    table = config.profiles_table()
    assert all(f"`{n}`" in table for n in config.PROFILES)


@pytest.mark.parametrize("name", list(config.PROFILES))
def test_profile_multiblock_blocks_are_not_all_single_cells(name):
    """The paper's multi-block geometry needs blocks of several cells (issue 10, bullet 1):
    the run of chapter 04 must have some (smoke and demo: a 4x4 grid at 128 px)."""
    cfg = train.profile_config(config.PROFILES[name])
    sizes = masking.block_sizes(cfg.grid, masking.MaskOptions(**cfg.masking),
                                cfg.official_masks)
    assert set(sizes) != {(1, 1)}, cfg.geometry()


@pytest.mark.parametrize("name", list(config.PROFILES))
def test_knn_k_fits_the_feature_bank(name):
    """k = 200 neighbours among 144 training images would vote with every image."""
    p = config.PROFILES[name]
    for spec in (p.synthetic, p.many_runs_data):
        bank = spec.classes * spec.per_class if spec else 126_689  # ImageNet-100
        assert p.knn_k <= bank // 4, (p.knn_k, bank)
    if p.synthetic:
        assert p.knn_k <= p.synthetic.per_class  # no more neighbours than images of a class


@pytest.mark.parametrize("name", list(config.PROFILES))
def test_many_run_chapters_get_the_recipe_with_the_profiles_changes(name, tmp_path):
    """Chapters 07 and 08 train the recipe plus ``many_runs``, on ``many_runs_data`` where
    the profile has one; the CLI options they pass set exactly those fields."""
    from jepa_lite import pretrain

    p = config.PROFILES[name]
    for method in ("cnn-jepa", "simclr"):
        one, many = train.profile_config(p, 0, method), train.profile_config(p, 0, method, True)
        assert {k: v for k, v in asdict(many).items() if asdict(one)[k] != v} == {
            k: v for k, v in p.many_runs.items() if getattr(one, k) != v}
        args = pretrain.build_parser().parse_args(
            ["--out", str(tmp_path / "r"), "--profile", name, "--method", method,
             "--data-root", str(tmp_path), *pretrain.as_options(p.many_runs)])
        assert pretrain.config_from_args(args)[0] == many
    cfg = config.resolve(name, out_dir=tmp_path, device="cpu")
    if p.many_runs_data is not None:
        assert p.many_runs_data.name != p.synthetic.name
        assert cfg.data_root(many_runs=True).name == p.many_runs_data.name
    mine = config.resolve(name, data_root=tmp_path, out_dir=tmp_path, device="cpu")
    for split in ("train", "val"):
        (tmp_path / split / "a").mkdir(parents=True, exist_ok=True)
    assert mine.data_root(many_runs=True) == mine.data_root()  # DATA_ROOT wins


def test_as_options_refuses_what_the_cli_cannot_say():
    from jepa_lite import pretrain

    assert pretrain.as_options({"epochs": 1, "ema": (0.99, 1.0)}) == [
        "--epochs", "1", "--ema", "0.99", "1.0"]
    with pytest.raises(ValueError, match="'notes' cannot be passed as an option"):
        pretrain.as_options({"notes": "x"})
