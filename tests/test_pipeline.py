"""The device pipeline from files to a method's forward inputs (``jepa_lite.data.pipeline``):
the same inputs however the images reach the device (decoded in the workers, JPEG bytes decoded at
the step, a cache in host memory), with 0 or 2 workers; every method's inputs; and the
errors of the cache."""

import random

import pytest
import torch
from torch.utils.data import DataLoader

from jepa_lite import distributed, methods
from jepa_lite.config import TrainConfig
from jepa_lite.course.bench import make_jpegs
from jepa_lite.data import augment, decoding, folders, scenes
from jepa_lite.data.pipeline import DecodedViews, Packed, on_device
from tests import pil_reference as pil

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def jpegs(tmp_path_factory):
    return make_jpegs(tmp_path_factory.mktemp("jpegs"), 12)


@pytest.fixture(scope="module")
def pngs(tmp_path_factory):
    spec = scenes.SyntheticSpec(classes=2, per_class=6, val_per_class=1, size=64, kind="busy")
    return scenes.make_synthetic(tmp_path_factory.mktemp("pngs") / "busy", spec)


def inputs_of(root, method: str, workers: int = 0, jpeg_bytes=None, cache=None, **changes):
    """Every micro-batch of one epoch as the method's forward inputs."""
    cfg = TrainConfig(method=method, arch="resnet10", image_size=64, batch_size=8,
                      micro_batch=4, workers=workers).with_changes(**changes)
    folder = folders.image_folder(root, "train")
    views = methods.get(method).views(cfg)
    sampler = distributed.MicroBatchSampler(folder, 8, 4, seed=2)
    sampler.set_epoch(1)
    loader = DataLoader(views.dataset(folder, CPU, cache, jpeg_bytes), batch_sampler=sampler,
                        num_workers=workers, collate_fn=views.collate)
    return list(on_device(loader, views, CPU))


def assert_same(a, b):
    assert len(a) == len(b)
    for xs, ys in zip(a, b):
        assert list(xs) == list(ys) and all(torch.equal(xs[k], ys[k]) for k in xs)


@pytest.mark.parametrize("method", ["cnn-jepa", "simclr"])
def test_the_inputs_do_not_depend_on_how_images_reach_the_device(jpegs, method):
    """Decoded in the workers, or JPEG bytes decoded at the step (as nvJPEG on a GPU), or
    gathered from a cache; 0 or 2 workers: the same tensors, bit for bit."""
    decoded = inputs_of(jpegs, method)
    assert_same(decoded, inputs_of(jpegs, method, jpeg_bytes=True))
    assert_same(decoded, inputs_of(jpegs, method, workers=2))
    folder = folders.image_folder(jpegs, "train")
    cache = decoding.DecodedCache(folder, CPU)
    assert isinstance(cache.images, torch.Tensor)  # one size: one stacked tensor
    assert_same(decoded, inputs_of(jpegs, method, cache=cache))


def test_a_cache_of_images_of_many_sizes_keeps_each_alone(tmp_path):
    root = tmp_path / "mixed"
    for i, (h, w) in enumerate([(40, 50), (64, 64), (33, 90), (70, 41)]):
        (root / "train" / f"c{i % 2}").mkdir(parents=True, exist_ok=True)
        pixels = torch.randint(0, 256, (h, w, 3), dtype=torch.uint8).numpy()
        from PIL import Image

        Image.fromarray(pixels).save(root / "train" / f"c{i % 2}" / f"{i}.png")
    folder = folders.image_folder(root, "train")
    cache = decoding.DecodedCache(folder, CPU)
    assert isinstance(cache.images, list) and cache.nbytes == sum(
        3 * h * w for h, w in [(40, 50), (64, 64), (33, 90), (70, 41)])
    for i, (path, _) in enumerate(folder.samples):
        assert torch.equal(cache.images[i], decoding.decode(path))
    got = cache.gather(torch.tensor([3, 0]))
    assert [tuple(t.shape) for t in got] == [tuple(cache.images[3].shape),
                                             tuple(cache.images[0].shape)]


@pytest.mark.parametrize("method", list(methods.METHODS))
def test_every_method_gets_normalised_views_of_the_configured_size(pngs, method):
    vit = not methods.get(method).encodes("resnet10")  # I-JEPA: a ViT, token-index masks
    batches = inputs_of(pngs, method, **({"arch": "vit_micro", "min_keep": 0} if vit else {}))
    assert len(batches) == 2  # 12 images, steps of 8: one step, two micro-batches of 4
    two, labels = method in ("simclr", "byol", "vicreg"), method == "supervised"
    masks = (() if two or labels else ("context", "targets") if vit else ("mask", "blocks")
             if method == "cjepa" else ("mask",))
    assert tuple(batches[0]) == (("view_a", "view_b") if two else ("images",)) + masks + (
        ("labels",) if labels else ())
    views = [batches[0][k] for k in ("view_a", "view_b")] if two else [batches[0]["images"]]
    for v in views:
        assert v.shape == (4, 3, 64, 64) and v.dtype == torch.float32
        assert -2.2 < v.min() and v.max() < 2.7  # ImageNet-normalised [0, 1] images
    if len(views) == 2:
        assert not torch.equal(views[0], views[1])  # two views, drawn apart
    elif vit:  # token indices of the 4x4 grid, the targets never in the context
        context, targets = batches[0]["context"], batches[0]["targets"]
        assert context.dtype == targets.dtype == torch.int64 and targets.shape[:2] == (4, 4)
        assert all(not set(t.flatten().tolist()) & set(c.tolist())
                   for c, t in zip(context, targets))
    elif not labels:
        assert batches[0]["mask"].dtype == torch.bool  # the masks follow the images


@pytest.mark.parametrize("workers", [0, 2])
def test_a_supervised_micro_batch_carries_each_images_class(pngs, workers):
    """The labels of a micro-batch are its images' classes, in its order, whoever loads it
    (a head narrower than the data set's classes: tests/test_methods.py)."""
    folder = folders.image_folder(pngs, "train")
    batches = inputs_of(pngs, "supervised", workers, num_classes=2)
    sampler = distributed.MicroBatchSampler(folder, 8, 4, seed=2)
    sampler.set_epoch(1)
    for batch, draws in zip(batches, sampler, strict=True):
        assert batch["labels"].dtype == torch.int64
        assert batch["labels"].tolist() == [folder.targets[d.index] for d in draws]
    assert {t for b in batches for t in b["labels"].tolist()} <= {0, 1}


def test_a_jpeg_decoded_at_the_step_equals_one_decoded_in_a_worker(jpegs):
    folder = folders.image_folder(jpegs, "train")
    path = folder.samples[0][0]
    raw, size = decoding.read_for_device(path)
    assert raw.dim() == 1 and size == (375, 500)
    from jepa_lite.data.pipeline import decode_on

    (decoded,) = decode_on([raw], CPU)
    assert torch.equal(decoded, decoding.decode(path))
    png = decoding.read_for_device(str(next((jpegs / "train").rglob("*.jpg"))))[0]
    assert png.dim() == 1  # a JPEG stays bytes; a PNG is decoded in the worker:
    item = DecodedViews(folder, (augment.CROP_ONLY,), jpeg_bytes=True)[distributed.Draw(0, 1, 2)]
    assert item[0].dim() == 1 and item[2] == 2 and item[3] == 0


def test_the_draws_of_an_image_depend_on_its_seed_alone(pngs):
    folder = folders.image_folder(pngs, "train")
    ds = DecodedViews(folder, (augment.CROP_ONLY, augment.ViewRecipe()))
    a, b = ds[distributed.Draw(3, 11, 0)], ds[distributed.Draw(3, 11, 5)]
    assert a[1] == b[1] and a[1][0] != a[1][1]
    assert ds[distributed.Draw(3, 12, 0)][1] != a[1]
    rng = random.Random(11)
    assert a[1][0] == augment.draw(augment.CROP_ONLY, 64, 64, rng)


def test_cache_errors_name_the_fix(pngs):
    folder = folders.image_folder(pngs, "train")
    with pytest.raises(ValueError, match=r"take 0\.0 GiB, more than --cache-gib 1e-06"):
        decoding.DecodedCache(folder, CPU, limit_gib=1e-6)


def pil_inputs_of(root, method: str) -> list[dict]:
    """The same epoch as :func:`inputs_of`, its views made by the PIL reference in the
    loader (tests/pil_reference.py) instead of ``augment`` on the device."""
    cfg = TrainConfig(method=method, arch="resnet10", image_size=64, batch_size=8,
                      micro_batch=4)
    folder = folders.image_folder(root, "train")
    views = methods.get(method).views(cfg)
    if views.masks is not None:
        transform, collate = (pil.view_transform(views.recipes[0], 64),
                              pil.mask_collate(views.masks))
    else:
        transform, collate = pil.TwoViews(*views.recipes, 64), pil.stack_views
    sampler = distributed.MicroBatchSampler(folder, 8, 4, seed=2)
    sampler.set_epoch(1)
    loader = DataLoader(pil.SeededViews(folder, transform), batch_sampler=sampler,
                        collate_fn=collate)
    return [dict(zip(views.names, batch, strict=True)) for batch in loader]


@pytest.mark.parametrize("method", ["cnn-jepa", "vicreg"])
def test_the_pil_reference_gives_inputs_of_the_same_form(pngs, method):
    """The reference the device pipeline replaced: the same micro-batches and masks, the
    views made by PIL in the workers instead (other random numbers: other crops)."""
    device, reference = inputs_of(pngs, method), pil_inputs_of(pngs, method)
    assert [{k: (t.shape, t.dtype) for k, t in b.items()} for b in device] == [
        {k: (t.shape, t.dtype) for k, t in b.items()} for b in reference]
    if method == "cnn-jepa":  # the masks come from the micro-batch's seed either way
        assert all(torch.equal(a["mask"], b["mask"]) for a, b in zip(device, reference))
    first = next(iter(device[0]))
    assert not torch.equal(device[0][first], reference[0][first])


def test_packed_images_come_back_as_they_went(jpegs):
    """Images of many sizes and JPEG bytes cross from a worker as one flat tensor."""
    g = torch.Generator().manual_seed(0)
    images = [torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=g)
              for h, w in [(5, 7), (64, 3), (1, 1)]]
    images.insert(1, decoding.read_for_device(str(next((jpegs / "train").rglob("*.jpg"))))[0])
    packed = Packed.of(images)
    assert packed.flat.dim() == 1 and packed.meta.shape == (5, 3)
    back = packed.unpack()
    assert len(back) == 4 and all(torch.equal(a, b) for a, b in zip(images, back))
    draws = [augment.draw(augment.ViewRecipe(solarize_p=0.5), 50, 60, random.Random(i))
             for i in range(9)]
    p = augment.ViewParams.of(draws)
    assert p.box.tolist() == [list(d[0]) for d in draws] and p.order.dtype == torch.int64
    assert p.sigma.tolist() == [d[6] for d in draws] and p.flip.tolist() == [d[1] for d in draws]


def test_a_run_recorded_with_the_pil_pipeline_is_refused_in_one_line():
    new = TrainConfig(method="simclr").to_dict()
    assert "pipeline" not in new and TrainConfig.from_dict(new) == TrainConfig(method="simclr")
    with pytest.raises(ValueError, match="PIL pipeline, which jepa_lite no longer has: "
                                         "start the run again in a new --out"):
        TrainConfig.from_dict({**new, "pipeline": "pil"})
    # a run of the device pipeline recorded while there were two: resumed as it ran
    assert TrainConfig.from_dict({**new, "pipeline": "device"}) == TrainConfig(method="simclr")


def test_a_jpeg_no_decoder_takes_is_named_with_its_file(jpegs, monkeypatch):
    """A JPEG whose header reads but whose data neither nvJPEG nor the CPU decodes (here both
    decoders made to refuse it) stops the step with the file's name, not a bare error."""
    from jepa_lite.data import pipeline as V
    from jepa_lite.errors import ImageError

    def refuse(*args, **kwargs):
        raise RuntimeError("Unsupported marker type 0xd5\nmore lines")

    cfg = TrainConfig(method="cnn-jepa", arch="resnet10", image_size=64)
    views = methods.get("cnn-jepa").views(cfg)
    folder = folders.image_folder(jpegs, "train")
    items = views.dataset(folder, CPU, jpeg_bytes=True)
    batch = views.collate([items[distributed.Draw(i, i, 0)] for i in (4, 2)])
    assert isinstance(batch[0], Packed) and batch[0].index.tolist() == [4, 2]
    monkeypatch.setattr(V, "decode_jpeg", refuse)
    monkeypatch.setattr(V, "decode_image", refuse)
    with pytest.raises(ImageError, match=r"cannot decode image .*\.jpg \(Unsupported marker "
                                         r"type 0xd5\): delete or replace this file"):
        views.inputs(batch, CPU)
