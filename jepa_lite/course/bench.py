"""``jepa-lite bench``: what one CNN-JEPA step costs next to a supervised ResNet step (and,
with ``--vit``, I-JEPA's step next to a supervised step of the same ViT).

In one process, on one device, round robin (so a noisy machine slows every row alike):

- ``supervised``: the same ResNet trunk + a linear classifier, cross-entropy (the reference,
  ``methods/supervised.py``);
- ``cnn-jepa``: our pretraining step (``train.train_step``: sparse context encoder with the
  lean sparse BatchNorm, predictor, EMA target, AdamW);
- ``authors'``: the same step with the authors' gather / scatter BatchNorm
  (``GatherScatterBatchNorm2d``, kept here as the reference);
- with ``--vit``: ``supervised`` on that ViT and ``ijepa`` (``methods/ijepa.py``), the
  paper's two architectures side by side at one image size (chapter 10).

Each in fp32 and in bf16 autocast (channels_last on a GPU, as training runs): images per
second, the ratio to the supervised step, the bytes autograd saves for backward per image
(a property of the step, the same on every device), on a GPU the peak memory, the encoder's
parameters and the step's floating-point operations per image. Then the
data loader alone (decode + RandomResizedCrop + flip of generated ImageNet-sized JPEGs) and
the loader feeding the step.
"""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils import flop_counter

from jepa_lite import distributed, masking, train
from jepa_lite.config import TrainConfig
from jepa_lite.data.pipeline import to_device
from jepa_lite.encoders import sparse
from jepa_lite.encoders.resnet import patch_of
from jepa_lite.encoders.vit import PATCH, check_vit
from jepa_lite.errors import UsageError
from jepa_lite.runtime import (
    autocast,
    device_name,
    device_report,
    memory_format,
    resolve_device,
)

DESCRIPTION = ("What one CNN-JEPA step costs next to a supervised ResNet step and the authors' "
               "gather / scatter form (images/s, saved-for-backward bytes, GPU memory, "
               "parameters, FLOPs; with --vit, I-JEPA's step beside a supervised step of "
               "that ViT), and the data loader of every method: alone, feeding its step, "
               "and that step alone.")
MiB = 2**20
GiB = 2**30
KINDS = ("supervised", "cnn-jepa", "authors'")


# ------------------------------------------------------------------ saved-for-backward bytes
def saved_bytes(forward: Callable[[], torch.Tensor], exclude: Iterable[torch.Tensor] = ()
                ) -> int:
    """Bytes of the distinct storages autograd keeps for backward while ``forward()`` runs,
    the storages of ``exclude`` (the parameters) left out: a step's activation memory.
    Two saved views of one storage count once; the graph is freed before returning."""
    skip = {t.untyped_storage().data_ptr() for t in exclude}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in skip:
            seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = forward()
    del out
    return sum(seen.values())


# ------------------------------------------------------------------ the authors' BatchNorm
class GatherScatterBatchNorm2d(nn.BatchNorm1d):
    """The authors' sparse BatchNorm (SparK's): gather the visible positions into an
    ``N x C`` batch, normalise it with BatchNorm1d, scatter it back into zeros. The reference
    :class:`SparseBatchNorm2d` is tested and benchmarked against (same ``state_dict``); its
    boolean indexing makes a host-device synchronisation in every layer."""

    def __init__(self, state: sparse.MaskState, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.mask_state = state

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        visible = self.mask_state.at(x)[:, 0].bool()  # [B, H, W]
        channels_last = x.permute(0, 2, 3, 1)
        out = torch.zeros_like(channels_last)
        out[visible] = super().forward(channels_last[visible]).to(x.dtype)
        return out.permute(0, 3, 1, 2)


def gather_scatter_trunk(arch: str = "resnet50", zero_init_residual: bool = False
                         ) -> sparse.SparseTrunk:
    """A sparse trunk with the authors' gather / scatter BatchNorm (the reference)."""
    trunk = sparse.SparseTrunk(arch, zero_init_residual)
    for name, module in list(trunk.named_modules()):
        if isinstance(module, sparse.SparseBatchNorm2d):
            parent, _, child = name.rpartition(".")
            new = GatherScatterBatchNorm2d(trunk.mask_state, module.num_features, module.eps,
                                           module.momentum, module.affine,
                                           module.track_running_stats)
            new.load_state_dict(module.state_dict())
            setattr(trunk.get_submodule(parent), child, new)
    return trunk


# ------------------------------------------------------------------ the steps
def step_config(kind: str, arch: str, image_size: int, batch: int, precision: str = "fp32",
                seed: int = 0, compile: bool = False, changes: dict | None = None
                ) -> TrainConfig:
    """The configuration of a step of the table: ``kind`` a method (``authors'``: CNN-JEPA's)
    on ``arch``, at the paper's settings with ``changes`` (a profile's, say). I-JEPA on a
    grid smaller than its 14x14 keeps target blocks of one token or more (``min_keep`` 0,
    as the CPU profiles)."""
    method = "cnn-jepa" if kind == "authors'" else kind
    cfg = TrainConfig(method=method).with_changes(strict=False, **(changes or {})).with_changes(
        arch=arch, image_size=image_size, batch_size=batch, micro_batch=None, seed=seed,
        precision=precision, compile=compile)
    if method == "ijepa" and image_size // PATCH < 14:
        cfg = cfg.with_changes(min_keep=0)
    return cfg


class Step:
    """One kind of training step, built on a device as training builds it (``train.build``):
    ``run()`` is one optimizer step (``train.train_step``) of ``kind`` (a method, or the
    authors' form of CNN-JEPA's) on the encoder ``arch``."""

    def __init__(self, kind: str, arch: str, image_size: int, batch: int,
                 device: torch.device, precision: str, seed: int = 0, compile: bool = False,
                 changes: dict | None = None):
        from jepa_lite import methods

        self.kind, self.arch, self.device, self.precision = kind, arch, device, precision
        self.batch, self.image_size = batch, image_size
        self.cfg = step_config(kind, arch, image_size, batch, precision, seed, compile, changes)
        self.views = methods.get(self.cfg.method.name).views(self.cfg)
        self.run_ = train.build(self.cfg, device)  # the supervised reference included
        if kind == "authors'":  # the same weights, the gather / scatter BatchNorm
            model = self.run_.model
            trunk = gather_scatter_trunk(arch)
            trunk.load_state_dict(model.context_encoder.state_dict())
            model.context_encoder = trunk.to(device)
            model.to(memory_format=memory_format(device))
            self.run_.optimizer = train.make_optimizer(model, self.cfg, device)
        # torch.compile fuses the masks and BatchNorm's element-wise work into few kernels;
        # the saved-bytes count always reads the eager model (the same function)
        self.model = self.run_.model
        self.inputs = self.batch_of(batch, image_size)

    def batch_of(self, batch: int, image_size: int) -> dict[str, torch.Tensor]:
        """Random images and what the method's views add to them by name (its masks, drawn
        as its loader draws them; class labels for the supervised step)."""
        g = torch.Generator().manual_seed(batch)
        images = torch.randn(batch, 3, image_size, image_size, generator=g)
        masks = self.views.masks.draw(batch, batch) if self.views.masks else ()
        labels = (() if self.views.num_classes is None else
                  (torch.randint(0, self.views.num_classes, (batch,), generator=g),))
        return dict(zip(self.views.names, (to_device(t, self.device)
                                           for t in (images, *masks, *labels)), strict=True))

    def run(self, inputs=None) -> torch.Tensor:
        loss, _ = train.train_step(self.run_, [inputs or self.inputs], 1, 0.996)
        return loss

    def saved_per_image(self) -> float:
        """Saved-for-backward bytes per image: the slope between the first half of the
        step's batch and the whole of it (fixed costs, such as the weights autocast casts to
        bf16, cancel). The two share their images' masks: I-JEPA's blocks are cut to the
        batch's smallest, so masks drawn for another batch would keep other token counts."""
        small = self.batch // 2
        counts = []
        for b in (small, small * 2):
            inputs = {name: t[:b].clone() for name, t in self.inputs.items()}

            def forward(inputs=inputs):
                with autocast(self.device, self.precision):
                    return self.model(**inputs)[0]

            counts.append(saved_bytes(forward, self.model.parameters()))
        return (counts[1] - counts[0]) / small

    def flops_per_image(self) -> float:
        """Floating-point operations of one training step (forward and backward of every
        network in it), per image, as torch counts them (:func:`step_flops`), on a copy on
        the meta device: shapes only, nothing computed, so the same count on every device
        in no time (attention counted as its matrix products). The authors' BatchNorm
        gathers the kept cells, shapes that depend on the masks: counted where it runs."""
        if self.kind == "authors'":
            return step_flops(lambda: self.model(**self.inputs)[0]) / self.batch
        model = copy.deepcopy(self.model).to("meta")
        inputs = {name: t.to("meta") for name, t in self.inputs.items()}
        return step_flops(lambda: model(**inputs)[0]) / self.batch

    def trunk(self) -> nn.Module:
        return self.model.trunk if self.kind == "supervised" else self.model.context_encoder

    def parameters_of_encoder(self) -> int:
        return sum(p.numel() for p in self.trunk().parameters())

    def counts(self) -> dict[str, float]:
        """What the step costs whatever the device's load: the encoder's parameters, and
        per image the step's GFLOPs and saved-for-backward MiB."""
        return {"encoder_params_m": self.parameters_of_encoder() / 1e6,
                "gflops_per_image": self.flops_per_image() / 1e9,
                "saved_mib_per_image": self.saved_per_image() / MiB}

    def static_bytes(self) -> int:
        """fp32 weights, gradients and AdamW's two moments of what trains (16 bytes per
        parameter), plus the frozen EMA target's weights (4)."""
        params = list(self.model.parameters())
        trainable = sum(p.numel() for p in params if p.requires_grad)
        return trainable * 16 + (sum(p.numel() for p in params) - trainable) * 4


def step_flops(loss: Callable[[], torch.Tensor]) -> int:
    """Floating-point operations of ``loss()`` and its backward, as
    ``torch.utils.flop_counter`` counts them: matrix products, convolutions and attention,
    two per multiply-add; element-wise work (norms, activations, the optimizer) not counted."""
    with flop_counter.FlopCounterMode(display=False) as counter:
        loss().backward()
    return counter.get_total_flops()


def cost_rows(steps: list[Step], repeats: int = 0, warmup: int = 1) -> list[dict]:
    """What each step costs (chapter 10), at its batch (I-JEPA keeps fewer tokens per image
    in a larger one): its encoder's parameters, the step's GFLOPs and
    saved-for-backward MiB per image and, when ``repeats``, images per second (median of
    ``repeats`` steps, round robin on their device; None otherwise: not measured)."""
    seconds = (round_robin({i: s.run for i, s in enumerate(steps)}, repeats, warmup,
                           steps[0].device) if repeats else {})
    return [{"kind": s.kind, "arch": s.arch, "image_size": s.image_size, "batch": s.batch,
             **s.counts(), "images_per_s": s.batch / seconds[i] if i in seconds else None}
            for i, s in enumerate(steps)]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def round_robin(calls: dict[str, Callable[[], object]], repeats: int, warmup: int,
                device: torch.device, peaks: dict[str, int] | None = None
                ) -> dict[str, float]:
    """Median seconds of each call (the project's one step timer): round robin (1, 2, ...,
    1, 2, ...), so that a noisy machine slows every call alike; the device synchronised
    around each call; ``warmup`` rounds first, untimed (cuDNN's benchmark mode tries kernels
    and workspaces there). ``peaks``, on a GPU: filled with each call's peak memory."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    for i in range(warmup + repeats):
        for name, call in calls.items():
            if peaks is not None and device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            sync(device)
            t0 = time.perf_counter()
            call()
            sync(device)
            if i < warmup:
                continue
            times[name].append(time.perf_counter() - t0)
            if peaks is not None and device.type == "cuda":
                peaks[name] = max(peaks.get(name, 0), torch.cuda.max_memory_allocated(device))
    return {name: statistics.median(t) for name, t in times.items()}


def time_steps(steps: dict[str, Step], repeats: int, warmup: int) -> dict[str, dict]:
    """Median seconds per step of each, round robin; peak GPU memory of each."""
    peaks: dict[str, int] = {}
    device = next(iter(steps.values())).device
    seconds = round_robin({name: step.run for name, step in steps.items()}, repeats, warmup,
                          device, peaks)
    return {name: {"seconds": seconds[name], "peak_bytes": peaks.get(name) or None}
            for name in steps}


# ------------------------------------------------------------------ the loader
def make_jpegs(root: Path, count: int, seed: int = 0) -> Path:
    """``count`` ImageNet-sized JPEGs (500 x 375, quality 90, about the size of an average
    ImageNet photograph) of generated busy scenes, as ``root/train/class/*.jpg``; drawn on
    threads, each image from its own seed."""
    from concurrent.futures import ThreadPoolExecutor

    from PIL import Image

    from jepa_lite.data.decoding import generation_workers
    from jepa_lite.data.scenes import SHAPES, render_busy

    folder = root / "train"

    def write(i: int) -> None:
        rng = np.random.default_rng((seed, i))
        shape = list(SHAPES)[i % len(SHAPES)]
        out = folder / shape / f"{i:05d}.jpg"
        image = render_busy(shape, rng, 256).resize((500, 375), Image.BICUBIC)
        noise = rng.normal(0, 6, (375, 500, 3))  # sensor-like grain: JPEG sizes as photos
        pixels = np.clip(np.asarray(image, np.float32) + noise, 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(out, quality=90)

    done = folder.is_dir() and sum(1 for _ in folder.rglob("*.jpg")) == count
    if not done:
        for shape in list(SHAPES)[:count]:
            (folder / shape).mkdir(parents=True, exist_ok=True)
        with ThreadPoolExecutor(generation_workers()) as pool:
            list(pool.map(write, range(count)))
    return root


def method_config(method: str, arch: str, image_size: int, batch: int, workers: int,
                  precision: str, compile: bool = False, cache: str = "none") -> TrainConfig:
    """A method's configuration for the loader rows: the paper's settings of the method,
    the bench's trunk, size and batch (one micro-batch a step)."""
    return TrainConfig(method=method, arch=arch, image_size=image_size, batch_size=batch,
                       micro_batch=batch, workers=workers, precision=precision,
                       compile=compile, cache=cache)


def loader_speed(root: Path, cfg: TrainConfig, batches: int, device: torch.device,
                 run: train.Run | None = None) -> float:
    """Images per second of a method's training loader (``train.make_loader``: read, decode,
    draw; then ``Views.inputs`` on the device: decode JPEGs on a GPU, augment, masks), alone
    or feeding ``run``'s optimizer steps (``cfg.batch_size`` images each, in micro-batches of
    ``cfg.micro_batch``, as training runs them: no host sync between two steps, so the CPU
    prepares the next micro-batch while the device computes). An image of a two-view method
    counts once (two views). ``batches`` steps are timed; the first (workers starting,
    cuDNN's search) is not: the device is synchronised after it and after the last."""
    from itertools import islice

    from jepa_lite import methods
    from jepa_lite.data.folders import image_folder
    from jepa_lite.data.pipeline import on_device

    dataset = image_folder(root, "train")
    if len(dataset) < cfg.batch_size:
        raise UsageError(f"the loader needs at least one batch of {cfg.batch_size} images; "
                         f"{root / 'train'} holds {len(dataset)}: raise --loader-images")
    micro = cfg.micro_batch_on(1)
    sampler = distributed.MicroBatchSampler(dataset, cfg.batch_size, micro, 0)
    views = methods.get(cfg.method.name).views(cfg)
    loader = train.make_loader(dataset, sampler, cfg, device, views,
                               train.make_cache(cfg, dataset, device))
    accumulation = cfg.batch_size // micro
    done, t0, epoch = 0, 0.0, 0
    while done <= batches:
        sampler.set_epoch(epoch)
        inputs = on_device(loader, views, device)
        for _ in range(len(dataset) // cfg.batch_size):
            group = list(islice(inputs, accumulation))
            if run is not None:
                train.train_step(run, group, accumulation, 0.996)
            if done == 0:
                sync(device)
                t0 = time.perf_counter()
            done += 1
            if done > batches:
                break
        epoch += 1
    sync(device)
    return batches * cfg.batch_size / (time.perf_counter() - t0)


def step_speed(run: train.Run, inputs, steps: int, warmup: int) -> float:
    """Images per second of ``run``'s step alone, on one micro-batch already on the device
    (median of ``steps`` timed steps)."""
    seconds = round_robin({"step": lambda: train.train_step(run, [inputs], 1, 0.996)}, steps,
                          warmup, run.device)["step"]
    return run.cfg.batch_size / seconds


def loader_rows(root: Path, methods_: Iterable[str], workers: Iterable[int],
                arch: str, image_size: int, batch: int,
                batches: int, device: torch.device, precision: str, steps: int, warmup: int,
                compile: bool = False, cache: str = "none") -> list[dict]:
    """One row per method and number of workers: the loader alone, the loader
    feeding the method's step, and that step alone (on a batch the loader made)."""
    from jepa_lite import methods
    from jepa_lite.data.folders import image_folder

    rows = []
    for method in methods_:
        cfg = method_config(method, arch, image_size, batch, 0, precision, compile=compile)
        run = train.build(train.resolved(cfg, 1), device)
        views = methods.get(method).views(cfg)
        items = views.dataset(image_folder(root, "train"), device)
        first = views.inputs(views.collate([items[distributed.Draw(i, i, 0)]
                                            for i in range(batch)]), device)
        alone = step_speed(run, first, steps, warmup)
        for w in workers:
            cfg = method_config(method, arch, image_size, batch, w, precision, compile, cache)
            rows.append({
                "method": method, "workers": w, "device": device_name(device),
                "cache": cfg.cache, "precision": precision,
                "images_per_s": loader_speed(root, cfg, batches, device),
                "with_step_images_per_s": loader_speed(root, cfg, batches, device, run),
                "step_images_per_s": alone})
        del run
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return rows


# ------------------------------------------------------------------ the report
def run(device: str = "auto", arch: str = "resnet18", image_size: int = 128, batch: int = 16,
        steps: int = 5, warmup: int = 2, precisions: Iterable[str] = ("fp32", "bf16"),
        workers: Iterable[int] = (1, 2), loader_images: int = 128, loader_batches: int = 6,
        data: Path | None = None, compile: bool = False,
        methods_: Iterable[str] | None = None,
        loader_root: Path | None = None, cache: str = "none", kinds: Iterable[str] = KINDS,
        vit: str | None = None) -> dict:
    """Every figure of the bench, as a dict (what ``main`` prints and ``--json`` writes).
    ``vit``: also a supervised step and I-JEPA's step on that ViT, in the same round robin."""
    from jepa_lite import methods

    dev = resolve_device(device)
    train.tune(dev)
    masking.grid_size(image_size, patch_of(arch))  # a bad size fails first
    if vit is not None:
        check_vit(vit)
    result = {"device": device_report(dev), "torch": torch.__version__, "arch": arch,
              "vit": vit, "image_size": image_size, "batch": batch, "steps": steps,
              "date": time.strftime("%Y-%m-%d"), "rows": [], "loader": [],
              "compile": compile}
    pairs = [(kind, arch) for kind in kinds] + ([("supervised", vit), ("ijepa", vit)]
                                                if vit else [])
    for precision in precisions if pairs else ():
        built = {f"{kind} {a}": Step(kind, a, image_size, batch, dev, precision,
                                     compile=compile and kind != "authors'")
                 for kind, a in pairs}
        timed = time_steps(built, steps, warmup)
        for name, step in built.items():
            # the supervised step on the same encoder (the first row where there is none)
            ref = timed.get(f"supervised {step.arch}", next(iter(timed.values())))["seconds"]
            result["rows"].append({
                "kind": step.kind, "arch": step.arch, "precision": precision,
                "images_per_s": batch / timed[name]["seconds"],
                "ratio": ref / timed[name]["seconds"],
                "peak_gib": (timed[name]["peak_bytes"] or 0) / GiB or None,
                "static_gib": step.static_bytes() / GiB, **step.counts()})
        del built
        if dev.type == "cuda":
            torch.cuda.empty_cache()
    if (loader_images or loader_root) and workers:
        import tempfile

        with tempfile.TemporaryDirectory(prefix="jepa-bench-") as scratch:
            if loader_root is not None:  # an image folder of the user's: read, never written
                root = Path(loader_root)
            else:
                root = make_jpegs(Path(data) if data else Path(scratch), loader_images)
            result["loader_data"] = (str(root) if loader_root is not None else
                                     f"{loader_images} generated 500 x 375 JPEGs")
            result["loader"] = loader_rows(
                root, list(methods_ or methods.for_arch(arch)), workers, arch, image_size,
                batch, loader_batches, dev, list(precisions)[-1], steps, warmup, compile, cache)
    return result


def fits(static_gib: float, saved_mib: float, memory_gib: float, slack: float = 0.8) -> int:
    """The largest micro-batch whose saved activations and static state fill at most
    ``slack`` of a GPU's memory (the rest: allocator slack, cuDNN workspaces, the forward's
    transient tensors)."""
    return max(0, int((memory_gib * slack - static_gib) * 1024 / saved_mib))


def report(r: dict) -> str:
    """The bench's figures as markdown tables, with the memory arithmetic."""
    encoders = r["arch"] + (f" and {r['vit']}" if r.get("vit") else "")
    lines = [f"# jepa-lite bench: {encoders} at {r['image_size']} px, batch {r['batch']}, "
             f"median of {r['steps']} steps", f"device: {r['device']}; torch {r['torch']}; "
             f"{r['date']}" + ("; torch.compile (supervised, cnn-jepa)" if r.get("compile")
                               else ""), "",
             "| step | encoder | precision | images/s | x supervised | saved for backward, "
             "MiB per image | x supervised | peak GPU memory | encoder parameters | GFLOPs per "
             "image and step |", "|---|---|---|---|---|---|---|---|---|---|"]
    ref = {(row["precision"], row.get("arch", r["arch"])): row for row in r["rows"]
           if row["kind"] == "supervised"}
    for row in r["rows"]:
        arch = row.get("arch", r["arch"])
        base = ref.get((row["precision"], arch), row)
        peak = "not a GPU" if row["peak_gib"] is None else f"{row['peak_gib']:.2f} GiB"
        extra = (f"{row['encoder_params_m']:.1f} M | {row['gflops_per_image']:.2f} |"
                 if "gflops_per_image" in row else "not measured | not measured |")
        lines.append(f"| {row['kind']} | {arch} | {row['precision']} | "
                     f"{row['images_per_s']:.1f} | {row['ratio']:.2f} | "
                     f"{row['saved_mib_per_image']:.2f} | "
                     f"{row['saved_mib_per_image'] / base['saved_mib_per_image']:.2f} | "
                     f"{peak} | {extra}")
    lines += ["", "x supervised: against the supervised step on the same encoder. GFLOPs: one "
              "training step's forward and backward as torch.utils.flop_counter counts them "
              "(matrix products, convolutions, attention; 2 per multiply-add).",
              "", "Memory (a JEPA step): static state (fp32 weights, gradients, AdamW moments; "
              "EMA target weights) + saved activations x micro-batch <= 80 % of the GPU:"]
    for row in r["rows"]:
        if row["kind"] not in ("cnn-jepa", "ijepa"):
            continue
        for name, gib in (("16 GB (T4)", 15.0), ("80 GB (A100 / H100)", 79.0)):
            b = fits(row["static_gib"], row["saved_mib_per_image"], gib)
            lines.append(f"- {row['kind']} {row.get('arch', r['arch'])}, {row['precision']}, "
                         f"{name}: ({gib:.0f} GiB x 0.8 - {row['static_gib']:.2f} GiB) / "
                         f"{row['saved_mib_per_image']:.2f} MiB = micro-batch {b}")
    if r["loader"]:
        lines += ["", f"The loader of each method ({r.get('loader_data', 'generated JPEGs')}), "
                  f"images/s (a two-view method's image counts once):", "",
                  "| method | cache | workers | loader alone | loader + step | step alone | "
                  "loader / step | ms per image, loader alone |",
                  "|---|---|---|---|---|---|---|---|"]
        for row in r["loader"]:
            lines.append(f"| {row['method']} | {row.get('cache', 'none')} | {row['workers']} | "
                         f"{row['images_per_s']:.1f} | {row['with_step_images_per_s']:.1f} | "
                         f"{row['step_images_per_s']:.1f} | "
                         f"{row['images_per_s'] / row['step_images_per_s']:.2f} | "
                         f"{1000 / row['images_per_s']:.2f} |")
    return "\n".join(lines)
