"""Chapter 04 — the pretraining loop: AMP, EMA update, metrics.jsonl, checkpoints, resume.

One epoch = one pass over ``train/`` in batches (last partial batch dropped). Every epoch
reseeds all randomness from ``(seed, epoch)``, so a run resumed from ``last.pt`` continues
exactly as if it had never stopped (bit for bit on a CPU).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from jepa_lite import masking, schedules
from jepa_lite.checkpoint import atomic_save, check_resume, load_checkpoint
from jepa_lite.data import image_folder, pretrain_transform
from jepa_lite.masking import MaskOptions
from jepa_lite.model import CNNJEPA
from jepa_lite.progress import progress
from jepa_lite.runtime import autocast_dtype, resolve_device
from jepa_lite.sparse import check_arch
from jepa_lite.views import MaskCollator


@dataclass
class TrainConfig:
    """Defaults are the paper's (ResNet-50, 224 px, AdamW 0.01 / 0.01, batch 512)."""

    arch: str = "resnet50"
    image_size: int = 224
    epochs: int = 200
    batch_size: int = 512
    lr: float = 0.01  # peak, not batch-scaled (as the official code)
    weight_decay: float = 0.01
    warmup_epochs: float = 10
    final_lr_ratio: float = 0.001
    ema: tuple[float, float] = (0.996, 1.0)
    ema_per_epoch: bool = False  # the official code steps the momentum once per epoch
    strategy: str = "mixed"
    official_masks: bool = False
    masking: dict = field(default_factory=lambda: MaskOptions().to_dict())
    predictor_layers: int = 3
    kernel_size: int = 3
    depthwise_separable: bool = True
    loss: str = "official"
    workers: int = 0
    seed: int = 0
    checkpoint_every: int = 10  # epochs between kept checkpoints (last.pt is every epoch)
    log_every: int = 20  # steps between progress-bar updates (each one syncs with the GPU)


def profile_config(profile, seed: int = 0) -> TrainConfig:
    """The training configuration of a profile (``jepa_lite.config.PROFILES``)."""
    return TrainConfig(image_size=profile.image_size, seed=seed, strategy=profile.strategy,
                       masking=profile.masking.to_dict(), **profile.pretrain)


class NonFiniteLossError(RuntimeError):
    pass


def collapse_stats(features: torch.Tensor) -> dict:
    """Per-channel std of L2-normalised target features (0 = collapse) and effective rank
    (exp of the entropy of normalised singular values; 1 = everything on one line)."""
    f = features.float().permute(0, 2, 3, 1).reshape(-1, features.shape[1])
    f = torch.nn.functional.normalize(f, dim=1)
    std = f.std(0).mean()
    s = torch.linalg.svdvals(f - f.mean(0))
    p = s / s.sum().clamp_min(1e-12)
    rank = torch.exp(-(p * torch.log(p.clamp_min(1e-12))).sum())
    return {"target_std": std.item(), "effective_rank": rank.item()}


def build_model(cfg: TrainConfig) -> CNNJEPA:
    return CNNJEPA(cfg.arch, cfg.predictor_layers, cfg.kernel_size, cfg.depthwise_separable,
                   cfg.loss)


def train_step(model: CNNJEPA, opt: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
               images: torch.Tensor, masks: torch.Tensor, amp: torch.dtype | None,
               momentum: float) -> tuple[torch.Tensor, torch.Tensor]:
    """One step: forward (autocast on a GPU), backward, AdamW, then the EMA update of the
    target encoder. Returns the loss and the target features (no host sync)."""
    with torch.autocast(images.device.type, dtype=amp, enabled=amp is not None):
        loss, target = model(images, masks)
    opt.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(opt)
    scaler.update()
    model.update_target(momentum)
    return loss, target


def pretrain(cfg: TrainConfig, data_root, out_dir, resume: bool = False,
             device: str | None = "auto", callbacks=()) -> Path:
    """Pretrain a CNN-JEPA model; returns the path of ``last.pt``.

    ``callbacks`` are called with each epoch's metrics dict after its checkpoint is written.
    """
    check_arch(cfg.arch)
    grid = masking.grid_size(cfg.image_size)
    dev = resolve_device(device)
    out = Path(out_dir).expanduser()
    last = out / "last.pt"
    if resume and not last.is_file():
        raise FileNotFoundError(f"--resume: no checkpoint {last} to resume from; drop --resume "
                                f"to start a new run there")
    if not resume and last.is_file():
        raise FileExistsError(f"{out} already holds a run ({last}); pass --resume to continue "
                              f"it, or choose another --out")
    dataset = image_folder(data_root, "train", pretrain_transform(cfg.image_size))
    if cfg.batch_size > len(dataset):
        raise ValueError(f"batch size {cfg.batch_size} is larger than the data set "
                         f"({len(dataset)} images in {Path(data_root) / 'train'}); use "
                         f"--batch-size {len(dataset)} or less")
    steps_per_epoch = len(dataset) // cfg.batch_size
    total_steps = steps_per_epoch * cfg.epochs
    warmup_steps = round(cfg.warmup_epochs * steps_per_epoch)

    torch.manual_seed(cfg.seed)
    model = build_model(cfg).to(dev)
    if dev.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.trainable_parameters(), lr=cfg.lr,
                            weight_decay=cfg.weight_decay)
    amp = autocast_dtype(dev)
    scaler = torch.amp.GradScaler("cuda", enabled=amp == torch.float16)
    start_epoch = 0
    if resume:
        ckpt = load_checkpoint(last)
        check_resume(cfg, ckpt, last)
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        if ckpt.get("scaler"):
            scaler.load_state_dict(ckpt["scaler"])
        start_epoch = ckpt["epoch"]
        kept = [m for m in read_metrics(out) if m["epoch"] <= start_epoch]  # drop a lost epoch
        (out / "metrics.jsonl").write_text("".join(json.dumps(m) + "\n" for m in kept))
    out.mkdir(parents=True, exist_ok=True)
    collate = MaskCollator(grid, cfg.strategy, cfg.official_masks, cfg.masking)

    for epoch in range(start_epoch, cfg.epochs):
        seed = cfg.seed * 100_003 + epoch  # every epoch reseeded: resume is exact
        torch.manual_seed(seed)
        loader = DataLoader(dataset, cfg.batch_size, shuffle=True, drop_last=True,
                            num_workers=cfg.workers, collate_fn=collate,
                            generator=torch.Generator().manual_seed(seed),
                            pin_memory=dev.type == "cuda")
        model.train()
        t0, loss_sum = time.perf_counter(), torch.zeros((), device=dev)
        bar = progress(loader, desc=f"epoch {epoch + 1}/{cfg.epochs}", leave=False)
        for i, (images, masks) in enumerate(bar):
            step = epoch * steps_per_epoch + i
            lr = schedules.learning_rate(step, total_steps, warmup_steps, cfg.lr,
                                         cfg.final_lr_ratio)
            for group in opt.param_groups:
                group["lr"] = lr
            images = images.to(dev, non_blocking=True)
            if dev.type == "cuda":
                images = images.contiguous(memory_format=torch.channels_last)
            masks = masks.to(dev, non_blocking=True)
            momentum = schedules.ema_momentum_at(step, steps_per_epoch, cfg.epochs,
                                                 cfg.ema_per_epoch, *cfg.ema)
            loss, target = train_step(model, opt, scaler, images, masks, amp, momentum)
            loss_sum += loss.detach()
            if (i + 1) % cfg.log_every == 0 or i + 1 == steps_per_epoch:
                value = loss.item()  # the only host sync, every log_every steps
                if not math.isfinite(value):
                    kept = last if last.is_file() else "none yet"
                    raise NonFiniteLossError(
                        f"the loss became {value} at epoch {epoch + 1}, step {step}: stopped. "
                        f"The last good checkpoint is kept ({kept}); lower --lr or check the data")
                bar.set_postfix(loss=f"{value:.4f}", lr=f"{lr:.2e}", m=f"{momentum:.5f}")
        seconds = time.perf_counter() - t0
        metrics = {"epoch": epoch + 1, "step": (epoch + 1) * steps_per_epoch,
                   "loss": (loss_sum / steps_per_epoch).item(), "lr": lr,
                   "momentum": momentum, "seconds": seconds,
                   "images_per_s": steps_per_epoch * cfg.batch_size / seconds,
                   **collapse_stats(target)}
        if not math.isfinite(metrics["loss"]):
            raise NonFiniteLossError(f"the mean loss of epoch {epoch + 1} is {metrics['loss']}:"
                                     f" stopped; the last good checkpoint is kept")
        state = {"model": model.state_dict(), "optimizer": opt.state_dict(),
                 "scaler": scaler.state_dict(), "epoch": epoch + 1, "config": asdict(cfg),
                 "metrics": metrics}
        atomic_save(state, last)
        if cfg.checkpoint_every and (epoch + 1) % cfg.checkpoint_every == 0:
            atomic_save(state, out / f"epoch_{epoch + 1:04d}.pt")
        with open(out / "metrics.jsonl", "a") as f:
            f.write(json.dumps(metrics) + "\n")
        for cb in callbacks:
            cb(metrics)
    return last


def read_metrics(out_dir) -> list[dict]:
    """The per-epoch metrics of a run (``metrics.jsonl``)."""
    path = Path(out_dir) / "metrics.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
