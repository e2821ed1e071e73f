"""Chapter 04 — the pretraining loop: one plain loop for one process or many (torchrun).

A step is one global batch of ``batch_size`` images (the paper's 512), cut into micro-batches
of ``micro_batch`` images (one forward pass each: the BatchNorm group, the paper's 128 per
GPU). Each process computes its share of the micro-batches and accumulates their gradients;
DistributedDataParallel averages them over processes; AdamW steps; the EMA moves the target
encoder. Which images, crops and masks a micro-batch holds depends on neither the number of
processes nor the number of loader workers (``jepa_lite.distributed``), so one GPU
accumulating 4 x 128 and four GPUs computing 1 x 128 run the same optimizer steps.

Rank 0 alone writes ``metrics.jsonl`` (one line per epoch) and ``last.pt`` (every epoch, and
every ``checkpoint_every_steps`` steps); ``--resume`` continues exactly where it stopped
(bit for bit on a CPU in one process), and refuses a change that would make another run.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, replace
from itertools import islice
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from jepa_lite import distributed, masking, methods, optim, schedules
from jepa_lite.analysis import collapse_stats
from jepa_lite.backbone import check_arch, trunk_stride
from jepa_lite.checkpoint import FORMAT, RunLock, atomic_save, check_resume, load_checkpoint
from jepa_lite.data import image_folder
from jepa_lite.errors import UsageError
from jepa_lite.masking import MaskOptions
from jepa_lite.methods import CNNJEPA, Method  # noqa: F401  (train.CNNJEPA: tests patch it)
from jepa_lite.progress import progress
from jepa_lite.runtime import autocast, device_name, grad_scaler, resolve_device, resolve_precision
from jepa_lite.sparse import synchronize_batchnorm
from jepa_lite.views import SeededViews


@dataclass
class TrainConfig:
    """Defaults are the paper's (ResNet-50, 224 px, AdamW 0.01 / 0.01, batch 512). ``None``
    in ``optimizer``, ``lr``, ``weight_decay`` and ``ema_per_epoch`` means the method's own
    setting as the CNN-JEPA authors ran it (``jepa_lite.methods``: SimCLR LARS 1.7, ...)."""

    method: str = "cnn-jepa"  # cnn-jepa | cjepa | simclr | byol | vicreg
    arch: str = "resnet50"
    image_size: int = 224
    epochs: int = 200
    batch_size: int = 512  # global: images per optimizer step, over all processes
    micro_batch: int | None = None  # images per forward pass = BN group; None: batch / processes
    optimizer: str | None = None  # adamw | lars
    lr: float | None = None  # peak, not batch-scaled (as the official code)
    weight_decay: float | None = None
    warmup_epochs: float = 10
    final_lr_ratio: float = 0.001
    ema: tuple[float, float] = (0.996, 1.0)
    ema_per_epoch: bool | None = None  # the official code steps the momentum once per epoch
    target_ema: bool = True  # cnn-jepa / cjepa: False copies the context encoder every step
    strategy: str = "mixed"
    official_masks: bool = False
    masking: dict = field(default_factory=lambda: MaskOptions().to_dict())
    predictor_layers: int = 3
    kernel_size: int = 3
    depthwise_separable: bool = True
    loss: str = "official"
    cjepa_beta: float = 0.001  # cjepa: weight of the VICReg term
    cjepa_reading: str = "A"  # cjepa: A (blocks of the prediction) or B (context encoder)
    vicreg_weights: tuple[float, float, float] = (25.0, 25.0, 1.0)  # inv / var / cov
    temperature: float = 0.1  # simclr: NT-Xent temperature
    jitter_strength: float = 1.0  # simclr / byol / vicreg: colour jitter x s (views.py)
    zero_init_residual: bool = False  # timm's default: last BN of each block starts at 0
    sync_bn: bool = False  # BatchNorm statistics over all processes (torchrun only)
    precision: str = "auto"  # auto | fp32 | bf16 | fp16 (runtime.resolve_precision)
    workers: int = 0
    seed: int = 0
    checkpoint_every: int = 10  # epochs between kept checkpoints (last.pt is every epoch)
    checkpoint_every_steps: int = 0  # also rewrite last.pt every N steps (0: only per epoch)
    log_every: int = 20  # steps between progress-bar updates (each one syncs with the GPU)
    compile: bool = False  # torch.compile the model (maybe_compile)

    def __post_init__(self):
        for name, value in methods.get(self.method).defaults.items():
            if getattr(self, name) is None:
                setattr(self, name, value)

    @property
    def patch(self) -> int:
        """Pixels per mask cell: the trunk's total stride."""
        return trunk_stride(self.arch)

    @property
    def grid(self) -> tuple[int, int]:
        """The mask grid of the run's images (raises on an image size the trunk cannot tile)."""
        return masking.grid_size(self.image_size, self.patch)

    def geometry(self) -> str:
        """The grid and the multi-block block sizes of the run, in one line."""
        return masking.describe_geometry(self.image_size, self.patch,
                                         MaskOptions(**self.masking), self.official_masks)


# Fields that change how a run is carried out, not what it computes: they may differ when a
# run resumes. (The device and the number of processes are not fields; they may change too.)
OPERATIONAL = ("workers", "checkpoint_every", "checkpoint_every_steps", "log_every",
               "precision", "compile")

# --paper-exact: the authors' code where it differs from our defaults (reference/
# cnn_jepa_spec.md): both masking quirks, the EMA momentum stepped once per epoch, timm's
# zero-initialised last BatchNorm of each residual block, and BatchNorm groups of 128 (their
# batch per GPU).
PAPER_EXACT = {"official_masks": True, "ema_per_epoch": True, "zero_init_residual": True,
               "micro_batch": 128}


def paper_exact(cfg: TrainConfig) -> TrainConfig:
    """``cfg`` with the authors' behaviour (:data:`PAPER_EXACT`)."""
    return replace(cfg, **PAPER_EXACT)


def profile_config(profile, seed: int = 0, method: str = "cnn-jepa",
                   many_runs: bool = False) -> TrainConfig:
    """The training configuration of a profile (``jepa_lite.config.PROFILES``) for a method;
    ``many_runs``: with the profile's changes for the chapters that train many runs."""
    return TrainConfig(method=method, seed=seed, **profile.recipe(method, many_runs))


class NonFiniteLossError(UsageError):
    pass


def build_model(cfg: TrainConfig) -> Method:
    return methods.get(cfg.method).from_config(cfg)


def make_optimizer(model: Method, cfg: TrainConfig, device: torch.device):
    """The method's optimizer (``cfg.optimizer``: AdamW, fused on a GPU, or LARS) on the
    trainable parameters."""
    return optim.build(cfg.optimizer, model.named_trainable_parameters(), cfg.lr,
                       cfg.weight_decay, device)


def tune(device: torch.device) -> None:
    """GPU settings: cuDNN picks the fastest kernels for the fixed input size (no effect on
    a CPU)."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True


def make_loader(dataset, sampler, cfg: TrainConfig, device: torch.device) -> DataLoader:
    """The training loader, built once for the whole run: workers persist across epochs and
    prefetch; batches land in pinned memory on a GPU; images, crops and masks come from the
    sampler's seeds (:class:`~jepa_lite.views.SeededViews`), not from the workers; the
    method says what a sample holds (a crop, or two views) and how a batch is collated."""
    transform, collate = methods.get(cfg.method).views(cfg)
    return DataLoader(SeededViews(dataset, transform),
                      batch_sampler=sampler, num_workers=cfg.workers, collate_fn=collate,
                      pin_memory=device.type == "cuda", persistent_workers=cfg.workers > 0,
                      prefetch_factor=4 if cfg.workers > 0 else None,
                      generator=torch.Generator().manual_seed(cfg.seed))  # not the global RNG


def maybe_compile(net: torch.nn.Module, compile: bool) -> torch.nn.Module:
    """``--compile``: ``torch.compile`` the model (or its DDP wrapper). On a GPU it fuses the
    sparse encoder's masks and BatchNorm arithmetic into few kernels (ResNet-50, 224 px,
    batch 128, bf16, one H100: 2.5x the images/s of the eager step; docs/benchmarks.md), at
    the price of minutes of compiling when the run starts (175 s for ResNet-50 there). Off
    by default: on a CPU it gains little and needs a C++ compiler."""
    return torch.compile(net) if compile else net


def train_step(net, opt: torch.optim.Optimizer, scaler: torch.amp.GradScaler, micro_batches,
               accumulation: int, device: torch.device, precision: str,
               momentum: float) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimizer step over this process's ``accumulation`` micro-batches: forward under
    autocast, backward of each loss / ``accumulation`` (gradients add up; under DDP they are
    averaged over processes at the last one), the optimizer, then the method's EMA update
    (if it has a target). A micro-batch is whatever the method's collate made (images and
    masks, or two views): its tensors go to the device and into the method's forward.
    Returns the mean loss and the first micro-batch's features for the collapse
    diagnostics (no host sync). ``net`` is the model or its DistributedDataParallel
    wrapper, either of them possibly compiled (:func:`maybe_compile`)."""
    inner = getattr(net, "_orig_mod", net)  # torch.compile's wrapper holds the module
    ddp = isinstance(inner, DistributedDataParallel)
    model = inner.module if ddp else inner
    opt.zero_grad(set_to_none=True)
    total, first, done = None, None, 0
    for batch in micro_batches:
        batch = [_to_device(t, device) for t in batch]
        done += 1
        last = done == accumulation
        no_sync = inner.no_sync() if ddp and not last \
            else nullcontext()
        with no_sync:
            with autocast(device, precision):
                loss, target = net(*batch)
            scaler.scale(loss / accumulation).backward()
        loss = loss.detach()
        total = loss if total is None else total + loss
        first = target if first is None else first
    if done != accumulation:
        raise RuntimeError(f"a step needs {accumulation} micro-batches, the loader gave {done}")
    scaler.step(opt)
    scaler.update()
    model.update_target(momentum)
    return total / accumulation, first


def stored_config(ckpt: dict) -> dict:
    """A checkpoint's configuration with the fields added since it was written (method,
    optimizer, ...) at their defaults: what that run was."""
    return asdict(TrainConfig(**ckpt["config"]))


def check_micro_batch(cfg: TrainConfig, world: int) -> None:
    """A method whose loss compares the images of a forward pass needs at least two."""
    method = methods.get(cfg.method)
    need = method.min_micro_batch
    if cfg.micro_batch < need:
        raise ValueError(f"micro-batch {cfg.micro_batch} (images per forward pass on each of "
                         f"{world} process(es)) is too small for {cfg.method}: "
                         f"{method.why_min_micro_batch}; use "
                         f"--micro-batch {need} or more (and a --batch-size that is a "
                         f"multiple of it times the processes)")


def _to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A batch tensor on the device; images (4-d floats) channels_last on a GPU."""
    t = t.to(device, non_blocking=True)
    if device.type == "cuda" and t.dim() == 4 and t.is_floating_point():
        t = t.contiguous(memory_format=torch.channels_last)
    return t


def data_identity(dataset, root) -> dict:
    """What a checkpoint records of its data set (the fingerprint covers the file names)."""
    return {"root": str(Path(root).expanduser().resolve()), "images": len(dataset),
            "classes": len(dataset.classes), "fingerprint": dataset.fingerprint}


def pretrain(cfg: TrainConfig, data_root, out_dir, resume: bool = False,
             device: str | None = "auto", callbacks=(), hint=None) -> Path:
    """Pretrain ``cfg.method``'s model; returns the path of ``last.pt``.

    In a process started by torchrun this is one rank of a DistributedDataParallel run
    (joined here); otherwise the one process. ``callbacks`` are called with each epoch's
    metrics dict after its checkpoint is written. ``hint(field, value)`` names the option that
    sets a field back to a value, for the resume error (``jepa_lite.pretrain.keep_hint``).
    """
    check_arch(cfg.arch)
    masking.grid_size(cfg.image_size, cfg.patch)  # a bad image size fails before anything else
    dev = distributed.setup(resolve_device(device))
    world, rank, main = distributed.world_size(), distributed.rank(), distributed.is_main()
    if cfg.sync_bn and world == 1:
        raise ValueError("--sync-bn merges BatchNorm statistics over the processes that torchrun "
                         "starts; this is a single process: drop --sync-bn, or run torchrun "
                         "--nproc_per_node N -m jepa_lite.pretrain ...")
    group = world * (cfg.micro_batch or 1)  # a global batch must be a multiple of this
    micro = cfg.micro_batch or max(1, cfg.batch_size // world)
    cfg = replace(cfg, micro_batch=micro)  # the resolved value is what the checkpoint keeps
    check_micro_batch(cfg, world)
    out = Path(out_dir).expanduser()
    last = out / "last.pt"
    if resume and not last.is_file():
        raise FileNotFoundError(f"--resume: no checkpoint {last} to resume from; drop --resume "
                                f"to start a new run there")
    if not resume and last.is_file():
        raise FileExistsError(f"{out} already holds a run ({last}); pass --resume to continue "
                              f"it, or choose another --out")
    dataset = image_folder(data_root, "train")
    data = data_identity(dataset, data_root)
    ckpt = None
    if resume:  # a changed setting is named before any other complaint about it
        ckpt = load_checkpoint(last)
        was = ckpt.get("config", {}).get("method", "cnn-jepa")
        if was != cfg.method:
            raise ValueError(f"{out} holds a {was} run; it cannot be resumed as {cfg.method}: "
                             f"drop --method (or pass --method {was}) to continue it, or start "
                             f"the {cfg.method} run in another --out")
        if ckpt.get("format") == FORMAT:
            ckpt["config"] = stored_config(ckpt)
        check_resume(asdict(cfg), ckpt, last, data, OPERATIONAL, hint)
    accumulation = distributed.check_batch(cfg.batch_size, micro, world)
    if cfg.batch_size > len(dataset):
        fits = len(dataset) // group * group
        raise ValueError(f"batch size {cfg.batch_size} is larger than the data set "
                         f"({len(dataset)} images in {Path(data_root) / 'train'}); use "
                         + (f"--batch-size {fits} or less" if fits else
                            "a smaller --micro-batch and --batch-size"))
    steps_per_epoch = len(dataset) // cfg.batch_size
    total_steps = steps_per_epoch * cfg.epochs
    warmup_steps = round(cfg.warmup_epochs * steps_per_epoch)
    precision = resolve_precision(dev, cfg.precision)
    lock = RunLock(out).acquire() if main else None
    try:
        torch.manual_seed(cfg.seed)
        model = build_model(cfg)
        if cfg.sync_bn:
            synchronize_batchnorm(model)
        model = model.to(dev)
        if dev.type == "cuda":
            model = model.to(memory_format=torch.channels_last)
        tune(dev)
        opt = make_optimizer(model, cfg, dev)
        scaler = grad_scaler(dev, precision)
        run_id, start_epoch, start_step, carried = uuid.uuid4().hex[:12], 0, 0, {}
        if ckpt is not None:
            model.load_state_dict(ckpt["model"])
            opt.load_state_dict(ckpt["optimizer"])
            scaler.load_state_dict(ckpt["scaler"])
            run_id, start_epoch, start_step = ckpt["run_id"], ckpt["epoch"], ckpt["step"]
            carried = ckpt["partial"]
            if main:
                where = (f"epoch {start_epoch + 1}, step {start_step}" if start_epoch <
                         cfg.epochs else "the end: the run is complete, nothing to do")
                print(f"resuming {out} at {where}")
                _say_what_changed(ckpt, world, precision)
                kept = [m for m in read_metrics(out) if m["epoch"] <= start_epoch]
                (out / "metrics.jsonl").write_text("".join(json.dumps(m) + "\n" for m in kept))
        net = model if world == 1 else DistributedDataParallel(
            model, device_ids=[dev.index] if dev.type == "cuda" else None)
        net = maybe_compile(net, cfg.compile)

        sampler = distributed.MicroBatchSampler(dataset, cfg.batch_size, micro, cfg.seed,
                                                world, rank)
        loader = make_loader(dataset, sampler, cfg, dev)

        def save(epoch_done: int, step: int, partial: dict, metrics: dict | None):
            """Every rank calls it (the partial loss is summed over ranks); rank 0 writes."""
            partial = {**partial, "loss_sum": distributed.all_reduce_sum(
                partial["loss_sum"]).item() / world}
            if not main:
                return
            state = {"format": FORMAT, "run_id": run_id, "model": model.state_dict(),
                     "optimizer": opt.state_dict(), "scaler": scaler.state_dict(),
                     "epoch": epoch_done, "step": step, "partial": partial,
                     "config": asdict(cfg), "data": data, "world_size": world,
                     "precision": precision, "device": device_name(dev, world),
                     "metrics": metrics}
            atomic_save(state, last)
            if metrics and cfg.checkpoint_every and epoch_done % cfg.checkpoint_every == 0:
                atomic_save(state, out / f"epoch_{epoch_done:04d}.pt")

        for epoch in range(start_epoch, cfg.epochs):
            first_step = start_step if epoch == start_epoch else 0
            sampler.set_epoch(epoch, first_step)
            net.train()
            # the loss summed over this epoch's steps (each the mean over ranks) and the
            # seconds spent: carried over from a mid-epoch checkpoint
            before = carried if first_step else {}
            loss_sum = torch.full((), before.get("loss_sum", 0.0), device=dev)
            spent, t0 = before.get("seconds", 0.0), time.perf_counter()
            batches = iter(loader)
            bar = progress(range(first_step, steps_per_epoch), desc=f"epoch {epoch + 1}/"
                           f"{cfg.epochs}", leave=False, disable=not main)
            target = lr = momentum = None
            for i in bar:
                step = epoch * steps_per_epoch + i
                lr = schedules.learning_rate(step, total_steps, warmup_steps, cfg.lr,
                                             cfg.final_lr_ratio)
                for group in opt.param_groups:
                    group["lr"] = lr
                momentum = schedules.ema_momentum_at(step, steps_per_epoch, cfg.epochs,
                                                     cfg.ema_per_epoch, *cfg.ema)
                loss, step_target = train_step(net, opt, scaler, islice(batches, accumulation),
                                               accumulation, dev, precision, momentum)
                loss_sum += loss
                target = step_target if i + 1 == steps_per_epoch else None
                if (i + 1) % cfg.log_every == 0 or i + 1 == steps_per_epoch:
                    value = distributed.all_reduce_sum(loss).item() / world  # a host sync
                    if not math.isfinite(value):
                        kept = last if last.is_file() else "none yet"
                        raise NonFiniteLossError(
                            f"the loss became {value} at epoch {epoch + 1}, step {step}: "
                            f"stopped. The last good checkpoint is kept ({kept}); lower --lr "
                            f"or check the data")
                    bar.set_postfix(loss=f"{value:.4f}", lr=f"{lr:.2e}",
                                    **({"m": f"{momentum:.5f}"} if model.has_target else {}))
                if (cfg.checkpoint_every_steps and (step + 1) % cfg.checkpoint_every_steps == 0
                        and i + 1 < steps_per_epoch):
                    seconds = spent + time.perf_counter() - t0
                    save(epoch, i + 1, {"loss_sum": loss_sum, "seconds": seconds}, None)
            seconds = spent + time.perf_counter() - t0
            images = (steps_per_epoch - first_step) * cfg.batch_size
            mean_loss = distributed.all_reduce_sum(loss_sum).item() / world / steps_per_epoch
            metrics = {"epoch": epoch + 1, "step": (epoch + 1) * steps_per_epoch,
                       "loss": mean_loss, "lr": lr,
                       "momentum": momentum if model.has_target else None, "seconds": seconds,
                       "images_per_s": images / (time.perf_counter() - t0),
                       "processes": world, "precision": precision,
                       "device": device_name(dev, world), **collapse_stats(target)}
            if not math.isfinite(metrics["loss"]):
                raise NonFiniteLossError(f"the mean loss of epoch {epoch + 1} is "
                                         f"{metrics['loss']}: stopped; the last good "
                                         f"checkpoint is kept")
            save(epoch + 1, 0, {"loss_sum": torch.zeros((), device=dev), "seconds": 0.0}, metrics)
            if main:
                with open(out / "metrics.jsonl", "a") as f:
                    f.write(json.dumps(metrics) + "\n")
                ema = f"momentum {momentum:.5f}, " if model.has_target else ""
                print(f"epoch {epoch + 1}/{cfg.epochs}: loss {mean_loss:.4f}, lr {lr:.2e}, "
                      f"{ema}{metrics['images_per_s']:.0f} images/s",
                      flush=True)  # one line per epoch in a log (train.log)
            for cb in callbacks:
                cb(metrics)
    finally:
        if lock is not None:
            lock.release()
    return last


def _say_what_changed(ckpt: dict, world: int, precision: str) -> None:
    """Resuming on another number of processes or precision is allowed; say what it does."""
    if ckpt["world_size"] != world:
        print(f"resuming a run of {ckpt['world_size']} process(es) on {world}: the same images, "
              f"masks and micro-batches; gradients are summed in another order, so the weights "
              f"agree to float rounding, not bit for bit")
    if ckpt["precision"] != precision:
        print(f"resuming a {ckpt['precision']} run in {precision}: the arithmetic changes "
              f"(another device?), the schedule and the data do not")


def read_metrics(out_dir) -> list[dict]:
    """The per-epoch metrics of a run (``metrics.jsonl``)."""
    path = Path(out_dir) / "metrics.jsonl"
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:  # a line cut short by a kill: its epoch is in no checkpoint either
            continue
    return rows
