"""Chapter 04 — the pretraining loop: one plain loop for one process or many (torchrun).

A step is one global batch of ``batch_size`` images (the paper's 512), cut into micro-batches
of ``micro_batch`` images (one forward pass each: the BatchNorm group, the paper's 128 per
GPU). Each process computes its share of the micro-batches and accumulates their gradients;
DistributedDataParallel averages them over processes; the optimizer steps; the EMA moves the
target encoder. Which images, crops and masks a micro-batch holds depends on neither the
number of processes nor the number of loader workers (``jepa_lite.distributed``), so one GPU
accumulating 4 x 128 and four GPUs computing 1 x 128 run the same optimizer steps.

In torchvision's shape: :func:`build` makes the model, optimizer, scaler and precision from a
configuration (``bench`` and ``compare`` use it too), :func:`restore` continues from a
checkpoint, :func:`train_one_epoch` trains, :func:`save` writes; :func:`pretrain` strings
them together. Rank 0 alone writes ``config.json``, ``metrics.jsonl`` (one line per epoch)
and ``last.pt`` (every epoch, and every ``checkpoint_every_steps`` steps); a resumed run
continues exactly where it stopped (bit for bit on a CPU in one process), and refuses a
change that would make another run.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from itertools import islice
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from jepa_lite import distributed, methods, optim
from jepa_lite.checkpoint import (
    FORMAT,
    RUN_FOLDER,
    RunLock,
    atomic_save,
    check_out_folder,
    check_resume,
    read_metrics,
    resume_checkpoint,
)
from jepa_lite.config import TrainConfig
from jepa_lite.data.decoding import DecodedCache, decoded_cache
from jepa_lite.data.folders import image_folder
from jepa_lite.data.pipeline import Views, on_device
from jepa_lite.encoders.sparse import synchronize_batchnorm
from jepa_lite.errors import UsageError
from jepa_lite.eval.diagnostics import DIAGNOSTIC_ROWS, collapse_stats
from jepa_lite.methods import Method
from jepa_lite.progress import progress
from jepa_lite.runtime import (
    autocast,
    default_workers,
    device_name,
    grad_scaler,
    memory_format,
    resolve_device,
    resolve_precision,
)


class NonFiniteLossError(UsageError):
    pass


# --------------------------------------------------------------------------- checks
def check_config(cfg: TrainConfig) -> None:
    """What a configuration cannot check by itself (``config.TrainConfig`` checks each
    field): what the method's :meth:`~jepa_lite.methods.Method.check` refuses on this run's
    geometry, and the micro-batch its loss needs. Raises a UsageError that names the fix."""
    method = methods.get(cfg.method.name)
    method.check(cfg)
    if cfg.micro_batch is not None:
        method.check_micro_batch(cfg.micro_batch)


def resolved(cfg: TrainConfig, world: int) -> TrainConfig:
    """``cfg`` as this run carries it out on ``world`` processes: the micro-batch (default:
    the batch split over the processes) and the loader workers (default: the CPU cores, at
    most 8) filled in, and what the world size makes impossible refused."""

    if cfg.sync_bn and world == 1:
        raise UsageError("--sync-bn merges BatchNorm statistics over the processes that torchrun "
                         "starts; this is a single process: drop --sync-bn, or run torchrun "
                         "--nproc_per_node N -m jepa_lite.pretrain ...")
    micro = cfg.micro_batch_on(world)
    methods.get(cfg.method.name).check_micro_batch(micro, world)
    distributed.check_batch(cfg.batch_size, micro, world)
    workers = cfg.workers if cfg.workers is not None else default_workers()
    return replace(cfg, micro_batch=micro, workers=workers)


def geometry(cfg: TrainConfig) -> str:
    """The run's grid and, for a masking method, its block sizes, in one line."""
    return methods.get(cfg.method.name).describe(cfg)


# --------------------------------------------------------------------------- build
@dataclass
class Run:
    """What a training process holds. ``model`` is the method (its weights, its EMA);
    ``net`` runs the forward pass: the model, or its DistributedDataParallel wrapper, either
    possibly compiled."""

    cfg: TrainConfig
    device: torch.device
    precision: str
    model: Method
    net: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    world: int = 1


def build_model(cfg: TrainConfig) -> Method:
    return methods.get(cfg.method.name).from_config(cfg)


def make_optimizer(model: Method, cfg: TrainConfig, device: torch.device):
    """The method's optimizer (AdamW, fused on a GPU, or LARS) on the trainable parameters."""
    o = cfg.method
    return optim.build(o.optimizer, model.param_groups(), o.lr, o.weight_decay, device,
                       model.decay_norms)


def tune(device: torch.device) -> None:
    """GPU settings: cuDNN picks the fastest kernels for the fixed input size (no effect on
    a CPU)."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True


def maybe_compile(net: torch.nn.Module, compile: bool) -> torch.nn.Module:
    """``--compile``: ``torch.compile`` the model (or its DDP wrapper). On a GPU it fuses the
    sparse encoder's masks and BatchNorm arithmetic into few kernels, a faster step at the
    price of minutes of compiling when the run starts (both measured in docs/benchmarks.md,
    "--compile"). Off
    by default: on a CPU it gains little and needs a C++ compiler."""
    return torch.compile(net) if compile else net


def build(cfg: TrainConfig, device: torch.device, world: int = 1) -> Run:
    """The model (seeded by ``cfg.seed``; BatchNorm synchronised under ``sync_bn``) on the
    device (channels_last on a GPU), its optimizer and gradient scaler, the precision, and
    the module that runs it: wrapped in DistributedDataParallel on more than one process,
    compiled under ``compile``."""
    torch.manual_seed(cfg.seed)
    model = build_model(cfg)
    if cfg.sync_bn:
        synchronize_batchnorm(model)
    model = model.to(device, memory_format=memory_format(device))
    tune(device)
    precision = resolve_precision(device, cfg.precision)
    net = model if world == 1 else DistributedDataParallel(
        model, device_ids=[device.index] if device.type == "cuda" else None)
    return Run(cfg, device, precision, model, maybe_compile(net, cfg.compile),
               make_optimizer(model, cfg, device), grad_scaler(device, precision), world)


def make_cache(cfg: TrainConfig, dataset, device: torch.device) -> DecodedCache | None:
    """``--cache``: every training image decoded once, kept in host memory or on the
    device (refused above ``--cache-gib``)."""
    return decoded_cache(cfg.cache, dataset, device, cfg.cache_gib)


def make_loader(dataset, sampler, cfg: TrainConfig, device: torch.device,
                views: Views | None = None, cache: DecodedCache | None = None) -> DataLoader:
    """The training loader, built once for the whole run: workers persist across epochs and
    prefetch; batches land in pinned memory on a GPU; images, crops and masks come from the
    sampler's seeds, not from the workers; the method's :class:`~jepa_lite.data.pipeline.Views` say
    what a sample holds and how a batch is collated (``views.inputs`` then augments each
    micro-batch on the device: :func:`~jepa_lite.data.pipeline.on_device`)."""
    views = views or methods.get(cfg.method.name).views(cfg)
    return seeded_loader(views.dataset(dataset, device, cache), sampler, views.collate,
                         cfg.workers or 0, device, cfg.seed)


def seeded_loader(items, sampler, collate, workers: int, device: torch.device,
                  seed: int) -> DataLoader:
    """A loader of ``sampler``'s batches: persistent, prefetching workers, pinned memory on a
    GPU, its own generator (never the global RNG)."""
    return DataLoader(items, batch_sampler=sampler, num_workers=workers, collate_fn=collate,
                      pin_memory=device.type == "cuda", persistent_workers=workers > 0,
                      prefetch_factor=4 if workers > 0 else None,
                      generator=torch.Generator().manual_seed(seed))


# --------------------------------------------------------------------------- one step
def train_step(run: Run, micro_batches: Iterable, accumulation: int,
               momentum: float) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimizer step over this process's ``accumulation`` micro-batches: forward under
    autocast, backward of each loss / ``accumulation`` (gradients add up; under DDP they are
    averaged over processes at the last one), the optimizer, then the method's EMA update
    (if it has a target). A micro-batch is the method's forward inputs by name, already on
    the device (``Views.inputs``: images and masks, or two views).
    Returns the mean loss and the first micro-batch's features for the collapse
    diagnostics (no host sync: :class:`DiagnosticRows`)."""
    inner = getattr(run.net, "_orig_mod", run.net)  # torch.compile's wrapper holds the module
    ddp = isinstance(inner, DistributedDataParallel)
    run.optimizer.zero_grad(set_to_none=True)
    total, first, done = None, None, 0
    for batch in micro_batches:
        done += 1
        no_sync = inner.no_sync() if ddp and done < accumulation else nullcontext()
        with no_sync:
            with autocast(run.device, run.precision):
                loss, features = run.net(**batch)
            run.scaler.scale(loss / accumulation).backward()
        loss = loss.detach()
        total = loss if total is None else total + loss
        first = features if first is None else first
    if done != accumulation:
        raise RuntimeError(f"a step needs {accumulation} micro-batches, the loader gave {done}")
    run.scaler.step(run.optimizer)
    run.scaler.update()
    run.model.update_target(momentum)
    return total / accumulation, first


# --------------------------------------------------------------------------- one epoch
@dataclass
class Schedule:
    """Steps of the run, and the value of each of the method's schedules at each step
    (:meth:`~jepa_lite.methods.Method.schedules`: the learning rate, the EMA momentum, ...)."""

    cfg: TrainConfig
    steps_per_epoch: int

    def __post_init__(self):
        self.schedules = methods.get(self.cfg.method.name).schedules(self.cfg,
                                                                     self.steps_per_epoch)

    @property
    def total_steps(self) -> int:
        return self.steps_per_epoch * self.cfg.epochs

    def at(self, step: int) -> dict[str, float]:
        return {key: f(step) for key, f in self.schedules.items()}


def apply(optimizer: torch.optim.Optimizer, values: dict[str, float]) -> None:
    """Set every scheduled value on every parameter group (``ema_momentum`` moves the target,
    not the optimizer); a group keeps the keys it lists in its ``fixed`` (a group without
    weight decay keeps 0 under a weight-decay schedule)."""
    for group in optimizer.param_groups:
        for key, value in values.items():
            if key != "ema_momentum" and key not in group.get("fixed", ()):
                group[key] = value


@dataclass
class Position:
    """Where a run stands: ``epoch`` epochs done, ``step`` steps of the next, the loss sum
    and seconds of those steps (``partial``), and the run's id."""

    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    epoch: int = 0
    step: int = 0
    partial: dict = field(default_factory=dict)


@dataclass
class StepInfo:
    """What the ``on_step`` callback of :func:`pretrain` sees before each optimizer step."""

    epoch: int  # 0-based
    step: int  # global step
    lr: float
    momentum: float | None


def train_one_epoch(run: Run, batches, sched: Schedule, epoch: int, start: Position,
                    checkpoint: Callable[[Position], None],
                    on_step: Callable[[Run, StepInfo], None] | None = None) -> dict:
    """Train the steps of one epoch that ``start`` has not done; returns the epoch's metrics.
    ``checkpoint`` writes a mid-epoch checkpoint every ``checkpoint_every_steps`` steps."""
    cfg, main = run.cfg, distributed.is_main()
    per_epoch, accumulation = sched.steps_per_epoch, cfg.batch_size // (
        cfg.micro_batch * run.world)
    first = start.step if epoch == start.epoch else 0
    carried = start.partial if first else {}
    loss_sum = torch.full((), carried.get("loss_sum", 0.0), device=run.device)
    spent, t0 = carried.get("seconds", 0.0), time.perf_counter()
    run.net.train()
    bar = progress(range(first, per_epoch), desc=f"epoch {epoch + 1}/{cfg.epochs}",
                   leave=False, disable=not main)
    rows = DiagnosticRows(carried.get("diagnostic_rows"))
    lr = momentum = None
    for i in bar:
        step = epoch * per_epoch + i
        values = sched.at(step)
        lr, momentum = values["lr"], values.get("ema_momentum")
        apply(run.optimizer, values)
        if on_step is not None:
            on_step(run, StepInfo(epoch, step, lr, momentum))
        loss, step_features = train_step(run, islice(batches, accumulation), accumulation,
                                         momentum if momentum is not None else 1.0)
        loss_sum += loss
        if main:
            rows.add(step_features)
        if (i + 1) % cfg.log_every == 0 or i + 1 == per_epoch:
            value = distributed.all_reduce_sum(loss).item() / run.world  # a host sync
            if not math.isfinite(value):
                raise NonFiniteLossError(
                    f"the loss became {value} at epoch {epoch + 1}, step {step}: stopped; "
                    f"lower --lr or check the data")
            bar.set_postfix(loss=f"{value:.4f}", lr=f"{lr:.2e}",
                            **({"m": f"{momentum:.5f}"} if momentum is not None else {}))
        every = cfg.checkpoint_every_steps
        if every and (step + 1) % every == 0 and i + 1 < per_epoch:
            checkpoint(Position(start.run_id, epoch, i + 1, {
                "loss_sum": loss_sum, "seconds": spent + time.perf_counter() - t0,
                "diagnostic_rows": rows.kept()}))
    seconds = spent + time.perf_counter() - t0
    mean_loss = distributed.all_reduce_sum(loss_sum).item() / run.world / per_epoch
    if not math.isfinite(mean_loss):
        raise NonFiniteLossError(f"the mean loss of epoch {epoch + 1} is {mean_loss}: "
                                 f"stopped; lower --lr or check the data")
    return {"epoch": epoch + 1, "step": (epoch + 1) * per_epoch, "loss": mean_loss, "lr": lr,
            "momentum": momentum, "seconds": seconds,
            "images_per_s": (per_epoch - first) * cfg.batch_size / (time.perf_counter() - t0),
            "processes": run.world, "precision": run.precision,
            "device": device_name(run.device, run.world),
            **(collapse_stats(rows.kept()) if main else {})}


class DiagnosticRows:
    """The collapse diagnostics' rows: one pooled row per image of the first micro-batch of
    each step (on rank 0 that is micro-batch 0 of the step, whatever the number of
    processes), the last :data:`~jepa_lite.eval.diagnostics.DIAGNOSTIC_ROWS` of the epoch (all of
    them in a shorter epoch). Kept on the device, no host sync; a mid-epoch checkpoint
    carries them (``kept``), so a resumed epoch is diagnosed on the same rows."""

    def __init__(self, carried: torch.Tensor | None = None):
        self.parts: list[torch.Tensor] = [] if carried is None else [carried]

    def add(self, features: torch.Tensor) -> None:
        if features.dim() != 2:
            raise ValueError(f"a method's forward returns pooled features [B, D] for the "
                             f"diagnostics; got {tuple(features.shape)}")
        self.parts.append(features.detach().float())
        while sum(len(p) for p in self.parts[1:]) >= DIAGNOSTIC_ROWS:
            self.parts.pop(0)  # the newer parts alone hold enough rows

    def kept(self) -> torch.Tensor | None:
        """The last ``DIAGNOSTIC_ROWS`` rows, ``[N, C]``, on the CPU (None before any)."""
        if not self.parts:
            return None
        return torch.cat([p.to("cpu") for p in self.parts])[-DIAGNOSTIC_ROWS:]


# --------------------------------------------------------------------------- save, restore
def save(run: Run, out: Path, at: Position, data: dict, metrics: dict | None) -> None:
    """Every rank calls it (the partial loss is summed over ranks); rank 0 writes ``last.pt``
    and, every ``checkpoint_every`` epochs, ``epoch_NNNN.pt``. A state whose weights or
    partial loss are not finite is never written (:class:`NonFiniteLossError`): the last
    checkpoint stays the last good one."""
    partial = dict(at.partial)
    if "loss_sum" in partial:
        partial["loss_sum"] = distributed.all_reduce_sum(
            torch.as_tensor(partial["loss_sum"], device=run.device)).item() / run.world
    where = f"epoch {at.epoch + 1}, step {at.step}" if at.step else f"the end of epoch {at.epoch}"
    if not math.isfinite(partial.get("loss_sum", 0.0)) or not finite_weights(run.model):
        raise NonFiniteLossError(f"the loss or the weights are not finite at {where}: stopped "
                                 f"before writing a checkpoint; lower --lr or check the data")
    if not distributed.is_main():
        return
    state = {"format": FORMAT, "run_id": at.run_id, "model": run.model.state_dict(),
             "optimizer": run.optimizer.state_dict(), "scaler": run.scaler.state_dict(),
             "epoch": at.epoch, "step": at.step, "partial": partial,
             "config": run.cfg.to_dict(), "data": data, "world_size": run.world,
             "precision": run.precision, "device": device_name(run.device, run.world),
             "metrics": metrics}
    atomic_save(state, out / "last.pt")
    every = run.cfg.checkpoint_every
    if metrics and every and at.epoch % every == 0:
        atomic_save(state, out / f"epoch_{at.epoch:04d}.pt")


def finite_weights(model: torch.nn.Module) -> bool:
    """Whether every parameter of ``model`` is finite (one host sync)."""
    return bool(torch.stack([torch.isfinite(p).all() for p in model.parameters()]).all())


def restore(run: Run, ckpt: dict) -> Position:
    """Load a checkpoint's weights, optimizer and scaler state into ``run``; where it stood."""
    run.model.load_state_dict(ckpt["model"])
    run.optimizer.load_state_dict(ckpt["optimizer"])
    run.scaler.load_state_dict(ckpt["scaler"])
    return Position(ckpt["run_id"], ckpt["epoch"], ckpt["step"], ckpt["partial"])


def data_identity(dataset, root) -> dict:
    """What a checkpoint records of its data set (the fingerprint covers every file's name,
    size and modification time)."""
    return {"root": str(Path(root).expanduser().resolve()), "images": len(dataset),
            "classes": len(dataset.classes), "fingerprint": dataset.fingerprint}


# --------------------------------------------------------------------------- the run
def pretrain(cfg: TrainConfig, data_root, out_dir, resume: bool = False,
             device: str | None = "auto", callbacks=(),
             on_step: Callable[[Run, StepInfo], None] | None = None) -> Path:
    """Pretrain ``cfg``'s method on ``data_root/train`` into ``out_dir``; returns ``last.pt``.

    In a process started by torchrun this is one rank of a DistributedDataParallel run
    (joined here); otherwise the one process. ``callbacks`` are called with each epoch's
    metrics dict after its checkpoint is written; ``on_step(run, StepInfo)`` before each
    optimizer step (a test's way in: stop a run, watch its batches).
    """
    check_config(cfg)
    dev = distributed.setup(resolve_device(device))
    world, main = distributed.world_size(), distributed.is_main()
    cfg = resolved(cfg, world)
    out = Path(out_dir).expanduser()
    dataset = image_folder(data_root, "train")
    data = data_identity(dataset, data_root)
    ckpt = resume_checkpoint(out) if resume else _refuse_existing(out)
    if ckpt is not None:
        check_resume(cfg, ckpt, out, data)
    sched = _schedule(cfg, dataset, data_root)
    lock = RunLock(out).acquire() if main else None
    try:
        run = build(cfg, dev, world)
        at = Position()
        if ckpt is not None:
            at = restore(run, ckpt)
            if main:
                _say_resumed(out, ckpt, at, cfg, world, run.precision)
        if main:
            (out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=1))
            if ckpt is None:  # a new run: its epochs, not an earlier attempt's
                (out / "metrics.jsonl").unlink(missing_ok=True)
        sampler = distributed.MicroBatchSampler(dataset, cfg.batch_size, cfg.micro_batch,
                                                cfg.seed, world, distributed.rank())
        views = methods.get(cfg.method.name).views(cfg)
        loader = make_loader(dataset, sampler, cfg, dev, views, make_cache(cfg, dataset, dev))

        good = [at if ckpt is not None else None]  # what last.pt holds: the last good state

        def checkpoint(position: Position) -> None:
            save(run, out, position, data, None)
            good[0] = position

        for epoch in range(at.epoch, cfg.epochs):
            sampler.set_epoch(epoch, at.step if epoch == at.epoch else 0)
            try:
                metrics = train_one_epoch(run, on_device(loader, views, dev), sched, epoch, at,
                                          checkpoint, on_step)
                save(run, out, Position(at.run_id, epoch + 1), data, metrics)
            except NonFiniteLossError as e:
                raise NonFiniteLossError(f"{e}. {_last_good(out, good[0])}") from None
            good[0] = Position(at.run_id, epoch + 1)
            if main:
                with open(out / "metrics.jsonl", "a") as f:
                    f.write(json.dumps(metrics) + "\n")
                print(_epoch_line(metrics, cfg.epochs), flush=True)  # a line per epoch in a log
            for cb in callbacks:
                cb(metrics)
    finally:
        if lock is not None:
            lock.release()
    return out / "last.pt"


def _last_good(out: Path, at: Position | None) -> str:
    if at is None:
        return "No checkpoint was written: nothing to resume; start again with a lower --lr"
    when = (f"in epoch {at.epoch + 1} after {at.step} steps" if at.step else
            f"after epoch {at.epoch}")
    return (f"The last good checkpoint is {out / 'last.pt'} ({when}); resuming it with a "
            f"lower --lr is a change --resume refuses: start a new run, or probe that one")


def _refuse_existing(out: Path) -> None:
    """A new run goes into a new or empty folder, or one that holds a run of ours that never
    wrote a checkpoint (its configuration, log and metrics, which start again); anything else
    is refused before a file is written."""
    if (out / "last.pt").is_file():
        raise FileExistsError(f"{out} already holds a run ({out / 'last.pt'}); pass --resume to "
                              f"continue it, or choose another --out")
    check_out_folder(out, RUN_FOLDER, "jepa-lite run")
    stale = sorted(out.glob("epoch_*.pt")) if out.is_dir() else []
    if stale:
        raise FileExistsError(f"{out} holds checkpoints of an earlier run ({stale[-1].name}) but "
                              f"no last.pt: move them away, or choose another --out")
    config = out / "config.json"
    if config.is_file():
        try:
            TrainConfig.from_file(config)  # every key one of ours
        except ValueError:
            raise FileExistsError(f"{config} is not a jepa-lite run's configuration: choose a "
                                  f"new or empty --out; nothing was written there") from None
    return None


def _schedule(cfg: TrainConfig, dataset, data_root) -> Schedule:
    if cfg.batch_size > len(dataset):
        group = cfg.micro_batch * distributed.world_size()
        fits = len(dataset) // group * group
        raise UsageError(f"batch size {cfg.batch_size} is larger than the data set "
                         f"({len(dataset)} images in {Path(data_root) / 'train'}); use "
                         + (f"--batch-size {fits} or less" if fits else
                            "a smaller --micro-batch and --batch-size"))
    return Schedule(cfg, len(dataset) // cfg.batch_size)


def _epoch_line(m: dict, epochs: int) -> str:
    ema = f"momentum {m['momentum']:.5f}, " if m["momentum"] is not None else ""
    return (f"epoch {m['epoch']}/{epochs}: loss {m['loss']:.4f}, lr {m['lr']:.2e}, {ema}"
            f"{m['images_per_s']:.0f} images/s")


def _say_resumed(out: Path, ckpt: dict, at: Position, cfg: TrainConfig, world: int,
                 precision: str) -> None:
    """Where the run goes on, and what resuming elsewhere changes; ``metrics.jsonl`` keeps
    the epochs the checkpoint holds."""
    where = (f"epoch {at.epoch + 1}, step {at.step}" if at.epoch < cfg.epochs
             else "the end: the run is complete, nothing to do")
    print(f"resuming {out} at {where}")
    if ckpt["world_size"] != world:
        print(f"resuming a run of {ckpt['world_size']} process(es) on {world}: the same images, "
              f"masks and micro-batches; gradients are summed in another order, so the weights "
              f"agree to float rounding, not bit for bit")
    if ckpt["precision"] != precision:
        print(f"resuming a {ckpt['precision']} run in {precision}: the arithmetic changes "
              f"(another device?), the schedule and the data do not")
    kept = [m for m in read_metrics(out) if m["epoch"] <= at.epoch]
    (out / "metrics.jsonl").write_text("".join(json.dumps(m) + "\n" for m in kept))
