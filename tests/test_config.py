"""Profiles resolve into complete configurations; bad parameters are clear errors."""

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
def test_profile_multiblock_blocks_are_not_all_single_cells(name, request):
    """The paper's multi-block geometry needs blocks of several cells (issue 10, bullet 1)."""
    if name in ("smoke", "demo"):  # 2x2 and 3x3 grids today; a fix makes this test XPASS
        request.applymarker(pytest.mark.xfail(
            strict=True, reason="issue 10: smoke (64 px) and demo (96 px) train on 2x2 / 3x3 "
                                "grids, where every block is one cell"))
    cfg = train.profile_config(config.PROFILES[name])
    sizes = masking.block_sizes(cfg.grid, masking.MaskOptions(**cfg.masking),
                                cfg.official_masks)
    assert set(sizes) != {(1, 1)}, cfg.geometry()


@pytest.mark.parametrize("name", list(config.PROFILES))
def test_knn_k_fits_the_feature_bank(name):
    """k = 200 neighbours among 144 training images would vote with every image."""
    p = config.PROFILES[name]
    bank = p.synthetic.classes * p.synthetic.per_class if p.synthetic else 126_689  # IN-100
    assert p.knn_k <= bank // 4, (p.knn_k, bank)
    if p.synthetic:
        assert p.knn_k <= p.synthetic.per_class  # no more neighbours than images of a class
