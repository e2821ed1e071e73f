"""Generated data set, ImageFolder loading, transforms, the ImageNet-100 builder."""

import hashlib
import json
import os
import random
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from jepa_lite.data import decoding, folders, imagenet100, scenes
from jepa_lite.data.augment import CROP_ONLY
from jepa_lite.errors import ImageError
from tests.pil_reference import view_transform

SMALL = scenes.SyntheticSpec(classes=4, per_class=6, val_per_class=2, size=64, seed=3)


def tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def small_set(tmp_path_factory) -> Path:
    return scenes.make_synthetic(tmp_path_factory.mktemp("syn") / "small", SMALL)


def test_synthetic_layout(small_set):
    for split, count in (("train", 6), ("val", 2)):
        classes = sorted(p.name for p in (small_set / split).iterdir())
        assert classes == ["00_disc", "01_ring", "02_crescent", "03_square"]
        for c in classes:
            files = list((small_set / split / c).iterdir())
            assert len(files) == count
            with Image.open(files[0]) as im:
                assert im.size == (64, 64) and im.mode == "RGB"


@pytest.mark.parametrize("workers,processes", [(1, None), (3, None), (2, True)])
def test_synthetic_is_deterministic_for_a_seed(small_set, tmp_path, workers, processes):
    """The same files with one drawing thread, several, or several processes (what a big
    data set gets; small_set: a thread per core)."""
    again = scenes.make_synthetic(tmp_path / "again", SMALL, workers=workers, processes=processes)
    images = {k: v for k, v in tree_digest(again).items() if k != "dataset.json"}
    assert images == {k: v for k, v in tree_digest(small_set).items() if k != "dataset.json"}
    meta = [json.loads((r / "dataset.json").read_text()) for r in (again, small_set)]
    assert [m.pop("fingerprints").keys() for m in meta] == [{"train", "val"}] * 2  # the times
    assert meta[0] == meta[1]  # of the files differ, not what was generated
    other = scenes.make_synthetic(tmp_path / "other", scenes.SyntheticSpec(
        classes=4, per_class=6, val_per_class=2, size=64, seed=4))
    a, b = tree_digest(other), tree_digest(small_set)
    assert sum(a[k] != b[k] for k in a if k.endswith(".png")) == len(a) - 1  # all images differ


def test_each_file_holds_the_render_of_its_own_seed(small_set):
    """Image i of class c in split s is ``render(shape, default_rng([seed, s, c, i]))``,
    pixel for pixel, whichever thread drew it."""
    for split_id, split in enumerate(folders.SPLITS):
        for c, folder in enumerate(sorted((small_set / split).iterdir())):
            for i, path in enumerate(sorted(folder.iterdir())):
                shape = folder.name.split("_", 1)[1]
                want = scenes.render_synthetic(shape, np.random.default_rng(
                    [SMALL.seed, split_id, c, i]), SMALL.size)
                assert np.array_equal(np.asarray(Image.open(path)), np.asarray(want)), path


def test_generation_workers_are_checked():
    assert decoding.generation_workers(None) == (os.cpu_count() or 1)
    assert decoding.generation_workers(5) == 5
    with pytest.raises(ValueError, match="at least 1 thread"):
        decoding.generation_workers(0)


def test_synthetic_images_vary_within_a_class(tmp_path):
    root = scenes.make_synthetic(tmp_path / "v", scenes.SyntheticSpec(classes=3, per_class=20,
                                                                  val_per_class=1))
    imgs = np.stack([np.asarray(Image.open(p), dtype=np.float32)
                     for p in sorted((root / "train" / "00_disc").iterdir())])
    diffs = [np.abs(imgs[i] - imgs[j]).mean() for i in range(5) for j in range(i + 1, 5)]
    assert min(diffs) > 10, "images of one class must differ (position, colour, background)"


def test_class_is_not_given_away_by_colour(tmp_path):
    """Mean colour predicts the class at chance level: the class is in the shape."""
    spec = scenes.SyntheticSpec(classes=10, per_class=40, val_per_class=20, seed=1)
    root = scenes.make_synthetic(tmp_path / "c", spec)

    def feats(split):
        ds = folders.image_folder(root, split)
        x = np.stack([np.asarray(Image.open(p), dtype=np.float32).mean((0, 1))
                      for p, _ in ds.samples])
        return x, np.asarray(ds.targets)

    xtr, ytr = feats("train")
    xva, yva = feats("val")
    centroids = np.stack([xtr[ytr == c].mean(0) for c in range(10)])
    pred = np.argmin(((xva[:, None] - centroids[None]) ** 2).sum(-1), 1)
    assert (pred == yva).mean() < 0.3  # chance is 0.1


def test_existing_same_data_set_is_reused(small_set):
    before = {p: p.stat().st_mtime_ns for p in small_set.rglob("*.png")}
    assert scenes.make_synthetic(small_set, SMALL) == small_set
    assert {p: p.stat().st_mtime_ns for p in small_set.rglob("*.png")} == before


def test_never_overwrites_other_content(tmp_path):
    (tmp_path / "busy").mkdir()
    keep = tmp_path / "busy" / "notes.txt"
    keep.write_text("mine")
    with pytest.raises(FileExistsError, match="choose another --out"):
        scenes.make_synthetic(tmp_path / "busy", SMALL)
    assert keep.read_text() == "mine"


@pytest.mark.parametrize("kwargs,match", [({"classes": 11}, "choose 2 to 10"),
                                          ({"classes": 1}, "choose 2 to 10"),
                                          ({"size": 100}, "not a multiple of 16"),
                                          ({"per_class": 0}, "at least 1")])
def test_synthetic_bad_spec(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        scenes.make_synthetic(tmp_path / "x", scenes.SyntheticSpec(**kwargs))
    assert not (tmp_path / "x").exists()


def test_ensure_synthetic_caches(tmp_path, monkeypatch):
    monkeypatch.setenv("JEPA_LITE_CACHE", str(tmp_path))
    root = scenes.ensure_synthetic(SMALL)
    assert root.parent == tmp_path and root.name == SMALL.name
    stamp = (root / "dataset.json").stat().st_mtime_ns
    assert scenes.ensure_synthetic(SMALL) == root
    assert (root / "dataset.json").stat().st_mtime_ns == stamp
    assert [p.name for p in tmp_path.iterdir()] == [SMALL.name]  # no temporary leftovers


@pytest.mark.parametrize("size", [64, 96, 224])
def test_transforms_give_the_requested_size(small_set, size):
    ds = folders.image_folder(small_set, "train", view_transform(CROP_ONLY, size))
    x, y = ds[0]
    assert x.shape == (3, size, size) and x.dtype == torch.float32 and y == 0
    ev = folders.image_folder(small_set, "val", folders.eval_transform(size))
    assert ev[0][0].shape == (3, size, size)


def test_the_pil_view_is_random_eval_is_not(small_set):
    img = Image.open(next((small_set / "train" / "00_disc").iterdir())).convert("RGB")
    t, e = view_transform(CROP_ONLY, 64), folders.eval_transform(64)
    torch.manual_seed(0)
    assert not torch.equal(t(img), t(img))
    assert torch.equal(e(img), e(img))
    # normalised with the ImageNet statistics: mean of a mid-grey image maps near 0
    grey = Image.new("RGB", (64, 64), (124, 116, 104))
    assert e(grey).mean().abs() < 0.05


def test_eval_transform_resizes_like_the_paper():
    resize = folders.eval_transform(224).transforms[0]
    assert resize.size == 256


def test_eval_pixels_then_normalize_give_the_eval_transforms_numbers():
    """The features' loader hands over uint8 pixels and normalises the batch where it runs:
    bit for bit what eval_transform gives each image, over images of many sizes and colours
    (a resize up, down, or none; the crop square or not)."""
    rng = np.random.default_rng(0)
    for trial in range(12):
        size = int(rng.choice([64, 96, 128]))
        images = [Image.fromarray(rng.integers(0, 256, (int(h), int(w), 3), dtype=np.uint8))
                  for h, w in rng.integers(size // 2, 3 * size, (4, 2))]
        flat = tuple(int(v) for v in rng.integers(256, size=3))
        images.append(Image.new("RGB", (size, size), flat))
        whole = torch.stack([folders.eval_transform(size)(im) for im in images])
        pixels = torch.stack([folders.eval_pixels(size)(im) for im in images])
        assert pixels.dtype == torch.uint8 and pixels.shape == whole.shape
        assert torch.equal(folders.eval_normalize(pixels), whole), (trial, size)


@pytest.mark.parametrize("factory", [lambda size: view_transform(CROP_ONLY, size),
                                     folders.eval_transform, folders.eval_pixels])
def test_transform_rejects_bad_size(factory):
    with pytest.raises(ValueError, match="image size 250 is not a multiple of 32"):
        factory(250)


def test_missing_root(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist.*make-data synthetic"):
        folders.image_folder(tmp_path / "nope")


def test_missing_split(tmp_path):
    (tmp_path / "val").mkdir()
    with pytest.raises(FileNotFoundError, match="no 'train/' folder"):
        folders.image_folder(tmp_path, "train")


def test_empty_split(tmp_path):
    (tmp_path / "train").mkdir()
    with pytest.raises(FileNotFoundError, match="is empty"):
        folders.image_folder(tmp_path, "train")


def test_class_folder_without_images(small_set, tmp_path):
    root = tmp_path / "root"
    (root / "train" / "cats").mkdir(parents=True)
    (root / "train" / "dogs").mkdir()
    Image.new("RGB", (8, 8)).save(root / "train" / "cats" / "a.png")
    (root / "train" / "dogs" / "readme.txt").write_text("not an image")
    with pytest.raises(FileNotFoundError, match=r"class folder .*dogs holds no images"):
        folders.image_folder(root, "train")


def test_unreadable_image_is_named(tmp_path):
    (tmp_path / "train" / "a").mkdir(parents=True)
    bad = tmp_path / "train" / "a" / "broken.jpg"
    bad.write_bytes(b"this is not a jpeg")
    ds = folders.image_folder(tmp_path, "train")
    with pytest.raises(ImageError, match=r"cannot read image .*broken\.jpg.*delete or replace"):
        ds[0]


# --------------------------------------------------------------------------- ImageNet-100
def fake_imagenet(root: Path, wnids, flat_val=False) -> Path:
    for split in ("train", "val"):
        if split == "val" and flat_val:
            (root / "val").mkdir(parents=True)
            Image.new("RGB", (8, 8)).save(root / "val" / "ILSVRC2012_val_00000001.JPEG")
            continue
        for w in wnids:
            (root / split / w).mkdir(parents=True)
            Image.new("RGB", (8, 8), (int(w[-2:]), 0, 0)).save(root / split / w / f"{w}_1.JPEG")
    return root


def test_imagenet100_class_list():
    wnids = imagenet100.imagenet100_classes()
    assert len(wnids) == 100 == len(set(wnids))
    assert all(w.startswith("n") and len(w) == 9 for w in wnids)
    shipped = (Path(__file__).parent.parent / "data" / "imagenet100_classes.txt").read_text()
    assert shipped.split() == wnids


def test_imagenet100_builder(tmp_path):
    wnids = imagenet100.imagenet100_classes()
    src = fake_imagenet(tmp_path / "in1k", wnids + ["n99999999"])  # one extra class
    out = imagenet100.make_imagenet100(src, tmp_path / "in100")
    for split in ("train", "val"):
        links = sorted((out / split).iterdir())
        assert [p.name for p in links] == sorted(wnids)
        assert all(p.is_symlink() and p.resolve() == (src / split / p.name).resolve()
                   for p in links)
        ds = folders.image_folder(out, split, folders.eval_transform(64))
        assert len(ds.classes) == 100 and len(ds) == 100
    assert imagenet100.make_imagenet100(src, tmp_path / "in100") == out  # idempotent


def test_imagenet100_missing_classes(tmp_path):
    wnids = imagenet100.imagenet100_classes()
    src = fake_imagenet(tmp_path / "in1k", wnids[:97])
    with pytest.raises(FileNotFoundError, match="3 of the 100 ImageNet-100 classes are missing"):
        imagenet100.make_imagenet100(src, tmp_path / "in100")
    assert not (tmp_path / "in100").exists()  # checked before anything is written


def test_imagenet100_flat_val(tmp_path):
    src = fake_imagenet(tmp_path / "in1k", imagenet100.imagenet100_classes(), flat_val=True)
    with pytest.raises(FileNotFoundError, match="sort the validation images"):
        imagenet100.make_imagenet100(src, tmp_path / "in100")


def test_imagenet100_missing_root(tmp_path):
    with pytest.raises(FileNotFoundError, match="--imagenet"):
        imagenet100.make_imagenet100(tmp_path / "nothing", tmp_path / "out")


def test_imagenet100_does_not_replace_foreign_files(tmp_path):
    wnids = imagenet100.imagenet100_classes()
    src = fake_imagenet(tmp_path / "in1k", wnids)
    (tmp_path / "out" / "train" / wnids[0]).mkdir(parents=True)
    with pytest.raises(FileExistsError, match="not a link"):
        imagenet100.make_imagenet100(src, tmp_path / "out")
    assert (tmp_path / "out" / "train" / wnids[0]).is_dir()
    assert not os.path.islink(tmp_path / "out" / "train" / wnids[0])


def test_scan_lists_what_imagefolder_lists(tmp_path):
    from torchvision import datasets

    root = scenes.make_synthetic(tmp_path / "s", scenes.SyntheticSpec(
        classes=3, per_class=4, val_per_class=2, seed=4))
    (root / "train" / "00_disc" / "notes.txt").write_text("not an image")
    (root / "train" / "01_ring" / "deeper").mkdir()
    shutil.copy(root / "train" / "00_disc" / "00000.png", root / "train" / "01_ring" / "deeper")
    ours, theirs = folders.scan(root, "train"), datasets.ImageFolder(root / "train")
    assert ours.classes == theirs.classes
    assert [(Path(p).resolve(), c) for p, c in ours.samples] == \
        [(Path(p).resolve(), c) for p, c in theirs.samples]


@pytest.mark.parametrize("seed", range(6))
def test_fingerprint_follows_every_change_to_any_file(seed, tmp_path):
    """Over random edits: a file rewritten in place (same name: the folder's time does not
    change), touched, grown, added, removed or renamed changes the fingerprint; a copy that
    keeps the files' times (cp -a) has the same one."""
    rng = random.Random(seed)
    root = scenes.make_synthetic(tmp_path / "s", scenes.SyntheticSpec(classes=2, per_class=3,
                                                                   val_per_class=2, seed=seed))
    first = folders.scan(root, "train").fingerprint
    copy = shutil.copytree(root, tmp_path / "copy")  # copy2 keeps the times
    assert folders.scan(copy, "train").fingerprint == first
    files = sorted((root / "train").rglob("*.png"))
    target = rng.choice(files)
    edit = rng.choice(["rewrite", "touch", "grow", "add", "remove", "rename"])
    st = target.stat()
    if edit == "rewrite":  # other pixels, the same size, then a later time
        target.write_bytes(bytes(reversed(target.read_bytes())))
        os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    elif edit == "touch":
        os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    elif edit == "grow":
        with open(target, "ab") as f:
            f.write(b"\0")
        os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))  # only the size tells
    elif edit == "add":
        shutil.copy2(target, target.with_name("extra.png"))
    elif edit == "remove":
        target.unlink()
    else:
        target.rename(target.with_name("renamed.png"))
    assert folders.scan(root, "train").fingerprint != first, edit
    assert folders.scan(root, "val").fingerprint == folders.scan(copy, "val").fingerprint


def _std(img) -> float:
    return float(np.asarray(img.convert("L"), dtype=float).std())


def test_busy_scenes_are_busier_than_the_plain_ones_and_deterministic():
    """Issue 10: a generated set that looks more like photographs; the class is still the
    kind of object. Over many draws: far more spread in grey level, far less plain grey."""
    busy, plain = [], []
    for i, shape in enumerate(list(scenes.SHAPES) * 3):
        b = scenes.render_busy(shape, np.random.default_rng(i), 64)
        assert np.array_equal(np.asarray(b), np.asarray(
            scenes.render_busy(shape, np.random.default_rng(i), 64)))
        busy.append(b)
        plain.append(scenes.render_synthetic(shape, np.random.default_rng(i), 64))
    grey = [float((np.abs(np.asarray(im, float) - scenes.BACKGROUND) < 8).all(-1).mean())
            for im in (*busy, *plain)]
    n = len(busy)
    assert np.mean(grey[:n]) < 0.05 < 0.3 < np.mean(grey[n:])  # plain grey: rare vs common
    hues = [np.asarray(im.convert("HSV"))[..., 1].mean() for im in busy]
    assert np.mean(hues) > 60  # saturated colours, not pale tints on grey
    assert len({np.asarray(im).tobytes() for im in busy}) == n


def test_busy_data_set_has_its_own_name_and_marker(tmp_path):
    spec = scenes.SyntheticSpec(classes=2, per_class=2, val_per_class=1, size=32, kind="busy")
    assert spec.name.startswith("synthetic-busy-v1-") and spec.name != replace(
        spec, kind="scenes").name
    root = scenes.make_synthetic(tmp_path / "b", spec)
    by_processes = scenes.make_synthetic(tmp_path / "p", spec, workers=2, processes=True)
    assert {k: v for k, v in tree_digest(root).items() if k != "dataset.json"} == \
        {k: v for k, v in tree_digest(by_processes).items() if k != "dataset.json"}
    meta = json.loads((root / "dataset.json").read_text())
    assert meta["scene_kind"] == "busy" and sorted(p.name for p in (root / "train").iterdir()) \
        == ["00_disc", "01_ring"]
    assert "scene_kind" not in replace(spec, kind="scenes").meta()  # old sets still match
    with pytest.raises(ValueError, match="unknown kind of generated data 'foggy'; choose one "
                                         "of scenes, busy"):
        scenes.make_synthetic(tmp_path / "f", replace(spec, kind="foggy"))


# What each painter draws, frozen: a generated data set's name promises its pixels (its
# version is part of the name), so a painter made faster must draw the same bytes, and one
# that draws others must bump scenes.GENERATOR_VERSION / BUSY_VERSION and these digests.
FROZEN = {("scenes", scenes.GENERATOR_VERSION): {32: "bec6df8f59741946", 224: "48c9261ac8cce556"},
          ("busy", scenes.BUSY_VERSION): {32: "4408aee593f9ae03", 224: "f82d3a1fa7894263"}}


@pytest.mark.parametrize("kind", scenes.KINDS)
def test_each_painter_draws_the_pixels_its_version_promises(kind):
    version = scenes.GENERATOR_VERSION if kind == "scenes" else scenes.BUSY_VERSION
    assert (kind, version) in FROZEN, (f"{kind} is at version {version}: record its digests "
                                       f"in FROZEN")
    for size, want in FROZEN[kind, version].items():
        digest = hashlib.sha256()
        shapes = list(scenes.SHAPES) if size < 100 else list(scenes.SHAPES)[:2]
        for i, shape in enumerate(shapes):  # every class at 32 px, two at 224 px
            img = scenes.RENDERERS[kind](shape, np.random.default_rng((0, 0, i, i)), size)
            digest.update(np.asarray(img).tobytes())
        assert digest.hexdigest()[:16] == want, (
            f"the {kind} painter draws other pixels at {size} px than version {version} "
            f"did: restore them, or bump the version (and these digests)")
