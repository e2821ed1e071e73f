"""Chapter 05 — frozen-feature probes: k-NN and linear classifiers on the target encoder.

Paper, IV-B: "we use linear and k-nearest neighbor (k-NN) classification probes on top of the
encoder's frozen features. We train the fully connected layer of the linear probe for 90
epochs and report the best top-1 and top-5 accuracies." The "best over epochs" is chosen on
the validation set itself (optimistic); :func:`linear_probe` also reports an honest variant
that picks the epoch on a held-out part of the training set.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torchvision import datasets

from jepa_lite import distributed, methods
from jepa_lite.checkpoint import (
    NotACheckpointError,
    load_checkpoint,
    load_run_checkpoint,
)
from jepa_lite.config import TrainConfig
from jepa_lite.data.folders import check_data_root
from jepa_lite.encoders.resnet import Trunk
from jepa_lite.errors import UsageError
from jepa_lite.eval import features
from jepa_lite.runtime import default_workers


# --------------------------------------------------------------------------- encoders
def random_init(cfg: TrainConfig, seed: int = 0) -> tuple[torch.nn.Module, str]:
    """The floor every probe is read against: the encoder the probes read of ``cfg``'s
    method (``Method.probe_encoder``: a ResNet trunk for the five methods) at its seeded
    random initialisation, and the name its feature bank is kept under."""
    torch.manual_seed(seed)
    encoder = methods.get(cfg.method.name).probe_encoder(cfg)
    return encoder, f"random-init:{cfg.arch}:seed{seed}"


def encoder_from_checkpoint(path: str | os.PathLike) -> Trunk:
    """The encoder a pretraining checkpoint's method is probed with, as a dense trunk: the
    EMA target encoder of CNN-JEPA and C-JEPA (as the paper), the (online) backbone of
    SimCLR, BYOL and VICReg."""
    ckpt = load_run_checkpoint(path)
    cfg = TrainConfig.from_dict(ckpt["config"])
    method = methods.get(cfg.method.name)
    enc, prefix = method.probe_encoder(cfg), method.encoder_prefix
    weights = {k[len(prefix):]: v for k, v in ckpt["model"].items() if k.startswith(prefix)}
    try:
        enc.load_state_dict(weights)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise NotACheckpointError(
            f"{path} does not hold the weights of the {cfg.arch} encoder its configuration "
            f"names ({len(weights)} tensors under '{prefix}': {first}); pass a jepa-lite "
            f"run's last.pt (or epoch_NNNN.pt)") from None
    return enc


def checkpoint_config(path: str | os.PathLike) -> TrainConfig:
    """The configuration a pretraining checkpoint was trained with (read, not its weights)."""
    return TrainConfig.from_dict(load_run_checkpoint(path, mmap=True)["config"])


def checkpoint_key(path: str | os.PathLike) -> str:
    """Names a checkpoint's encoder for the feature banks: its run and how far it had
    trained (a pretraining checkpoint), else the file's path, size and time."""
    path = Path(path)
    ckpt = load_checkpoint(path, mmap=True)
    if "run_id" in ckpt:
        when = (f"after epoch {ckpt['epoch']}" if not ckpt["step"] else
                f"in epoch {ckpt['epoch'] + 1} after {ckpt['step']} steps")
        return f"run {ckpt['run_id']} {when} ({path.resolve()})"
    st = path.stat()
    return f"checkpoint:{path.resolve()}:{st.st_size}:{st.st_mtime_ns}"


# --------------------------------------------------------------------------- rows
def _tensor(x, device) -> torch.Tensor:
    """``x`` (a tensor or a memory-mapped array) as a float32 tensor on ``device``."""
    t = x if isinstance(x, torch.Tensor) else torch.from_numpy(np.array(x))  # a copy
    return t.to(device).float()


def _take(x, idx: torch.Tensor, device) -> torch.Tensor:
    """Rows ``idx`` (sorted: a memory map reads them front to back) of a tensor or a memory
    map, as float32 on ``device``."""
    if isinstance(x, torch.Tensor):
        return x[idx.to(x.device)].to(device).float()
    return _tensor(x[idx.numpy()], device)


def _resident(x, device: torch.device, block: int = 65536):
    """On a GPU with room for it, the whole bank (in its dtype) on the GPU, copied block by block
    (the host never holds more than a block); else ``x`` as it is (a memory map is then read
    batch by batch)."""
    if device.type != "cuda" or isinstance(x, torch.Tensor):
        return x
    free, _ = torch.cuda.mem_get_info(device)
    if x.nbytes > free // 2:
        return x
    out = torch.empty(x.shape, dtype=getattr(torch, str(x.dtype)), device=device)
    for s in range(0, len(x), block):
        out[s:s + block] = torch.from_numpy(np.array(x[s:s + block])).to(device)
    return out


# --------------------------------------------------------------------------- k-NN
def neighbours(bank, queries, k: int, chunk_size: int = 1024, bank_chunk: int = 16384,
               device: str | torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Cosine similarities and indices ``[Q, k]`` of every query's ``k`` nearest bank rows.

    ``bank`` may be a memory map: it is read once, ``bank_chunk`` rows at a time, while every
    query keeps its running top ``k``; queries go ``chunk_size`` at a time. Memory: the
    queries, ``Q x k`` best matches and one ``chunk_size x bank_chunk`` block of
    similarities, on ``device`` (the GPU when given)."""
    device = torch.device(device) if device is not None else (
        queries.device if isinstance(queries, torch.Tensor) else torch.device("cpu"))
    q = F.normalize(_tensor(queries, device), dim=1)
    k = min(k, len(bank))
    best_sim = torch.full((len(q), k), -float("inf"), device=device)
    best_idx = torch.zeros((len(q), k), dtype=torch.long, device=device)
    for start in range(0, len(bank), bank_chunk):
        b = F.normalize(_tensor(bank[start:start + bank_chunk], device), dim=1)
        for qs in range(0, len(q), chunk_size):
            sim, idx = (q[qs:qs + chunk_size] @ b.T).topk(min(k, len(b)), dim=1)
            sims = torch.cat([best_sim[qs:qs + chunk_size], sim], 1)
            idxs = torch.cat([best_idx[qs:qs + chunk_size], idx + start], 1)
            top, where = sims.topk(k, dim=1)
            best_sim[qs:qs + chunk_size], best_idx[qs:qs + chunk_size] = top, idxs.gather(1, where)
    return best_sim, best_idx


def knn_classify(bank, bank_labels: torch.Tensor, queries, num_classes: int, k: int = 200,
                 temperature: float = 0.1, chunk_size: int = 1024, bank_chunk: int = 16384,
                 device: str | torch.device | None = None) -> torch.Tensor:
    """Weighted k-NN scores ``[Q, num_classes]``: cosine similarity of L2-normalised features;
    each of the ``k`` nearest bank entries votes for its label with weight exp(sim / T),
    scaled per query by exp(-best sim / T) (the same ranking of classes, and no weight
    overflows, whatever the positive temperature). The bank is read in chunks
    (:func:`neighbours`)."""
    if not (temperature > 0 and math.isfinite(temperature)):
        raise UsageError(f"k-NN temperature {temperature}: it must be a positive finite number "
                         f"(the authors' code uses 0.1)")
    sim, idx = neighbours(bank, queries, k, chunk_size, bank_chunk, device)
    votes = torch.zeros(len(sim), num_classes, device=sim.device)
    votes.scatter_add_(1, torch.as_tensor(bank_labels).to(sim.device)[idx],
                       ((sim - sim[:, :1]) / temperature).exp())  # sim[:, 0]: the nearest
    return votes


def nearest(bank, queries, k: int = 5) -> torch.Tensor:
    """Indices ``[Q, k]`` of the most cosine-similar bank entries of every query."""
    return neighbours(bank, queries, k)[1]


def topk_accuracy(scores: torch.Tensor, labels: torch.Tensor, ks=(1, 5)) -> dict[int, float]:
    """Fraction of rows whose label is among the ``k`` highest scores."""
    top = scores.topk(min(max(ks), scores.shape[1]), dim=1).indices
    hit = top == labels.to(top.device)[:, None]
    return {k: hit[:, :k].any(1).float().mean().item() for k in ks}


# --------------------------------------------------------------------------- linear probe
@torch.no_grad()
def _accuracy(head, x, rows, y, device, chunk: int = 65536) -> dict[int, float]:
    """Top-1 and top-5 of ``head`` on rows ``rows`` of ``x`` (all rows when None), in chunks."""
    rows = torch.arange(len(x)) if rows is None else rows
    hits, ks = {1: 0, 5: 0}, (1, 5)
    for part in rows.split(chunk):
        scores = head(_take(x, part, device))
        top = scores.topk(min(5, scores.shape[1]), dim=1).indices
        hit = top == y[part].to(device)[:, None]
        for k in ks:
            hits[k] += int(hit[:, :k].any(1).sum())
    return {k: hits[k] / len(rows) for k in ks}


def _fit_linear(x, rows: torch.Tensor, y: torch.Tensor, evals: dict, num_classes: int,
                epochs: int, lr: float, batch_size: int, seed: int, device) -> dict:
    """Train Linear(C, classes) with Adam (no weight decay) on rows ``rows`` of ``x`` (a
    tensor or a memory map: each batch's rows are read when it comes); top-1 / top-5 on
    ``evals`` (name -> (x, rows or None, y)) after every epoch."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    head = torch.nn.Linear(x.shape[1], num_classes).to(device)
    opt = torch.optim.Adam(head.parameters(), lr=lr, weight_decay=0.0)
    curves = {name: [] for name in evals}
    for _ in range(epochs):
        head.train()
        for idx in rows[torch.randperm(len(rows), generator=g)].split(batch_size):
            idx = idx.sort().values  # a batch is a set; sorted rows read a memory map in order
            loss = F.cross_entropy(head(_take(x, idx, device)), y[idx].to(device))
            opt.zero_grad()
            loss.backward()
            opt.step()
        head.eval()
        for name, (ex, erows, ey) in evals.items():
            curves[name].append(_accuracy(head, ex, erows, ey, device))
    return curves


def linear_probe(train_x, train_y, val_x, val_y, num_classes: int, epochs: int = 90,
                 lr: float = 1e-3, batch_size: int = 256, holdout: float = 0.1,
                 seed: int = 0, device: str | torch.device = "cpu") -> dict:
    """Both protocols on frozen features (tensors or memory-mapped banks; a bank is never
    copied whole into host memory, and sits on the GPU when there is room).

    official: train on all of train, report the best validation accuracy over the epochs
    (and the final one). honest: choose the epoch on ``holdout`` of train, then report
    validation accuracy at that epoch, once.
    """
    if len(val_x) == 0:
        raise UsageError("the validation split is empty: a probe needs images in val/")
    device = torch.device(device)
    x = _resident(train_x, device)
    train_y, val_y = torch.as_tensor(train_y), torch.as_tensor(val_y)
    val = (_tensor(val_x, device), None, val_y)
    official = _fit_linear(x, torch.arange(len(train_y)), train_y, {"val": val}, num_classes,
                           epochs, lr, batch_size, seed, device)["val"]
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(train_y), generator=g)
    n_hold = max(1, int(len(train_y) * holdout))
    hold, rest = perm[:n_hold].sort().values, perm[n_hold:]
    honest = _fit_linear(x, rest, train_y, {"holdout": (x, hold, train_y), "val": val},
                         num_classes, epochs, lr, batch_size, seed, device)
    best_official = max(range(epochs), key=lambda e: official[e][1])
    chosen = max(range(epochs), key=lambda e: honest["holdout"][e][1])
    return {
        "linear_top1": official[best_official][1], "linear_top5": official[best_official][5],
        "linear_best_epoch": best_official + 1,
        "linear_final_top1": official[-1][1], "linear_final_top5": official[-1][5],
        "linear_honest_top1": honest["val"][chosen][1],
        "linear_honest_top5": honest["val"][chosen][5], "linear_honest_epoch": chosen + 1,
        "curve_val_top1": [c[1] for c in official],
        "curve_honest_holdout_top1": [c[1] for c in honest["holdout"]],
    }


def most_confused(pred: torch.Tensor, labels: torch.Tensor, classes: list[str],
                  n: int = 3) -> list[tuple[str, str, float]]:
    """The ``n`` largest off-diagonal cells of the row-normalised confusion matrix:
    ``(true class, predicted class, fraction of the true class's images)``, largest first."""
    k = len(classes)
    counts = torch.bincount(labels.long() * k + pred.long(), minlength=k * k).view(k, k).float()
    rates = counts / counts.sum(1, keepdim=True).clamp_min(1)
    rates.fill_diagonal_(-1)
    top = rates.flatten().topk(min(n, k * (k - 1)))
    return [(classes[i // k], classes[i % k], v.item())
            for v, i in zip(top.values, top.indices.tolist()) if v > 0]


def probe_batch_size(train_size: int) -> int:
    """256 (the usual), or a tenth of a small training set (at least 16), so that even a
    tiny data set gets about ten optimiser steps per epoch."""
    return max(16, min(256, train_size // 10))


# --------------------------------------------------------------------------- everything
def check_classes(data_root) -> None:
    """A probe tells classes apart: fewer than two make every accuracy 1.0, whatever the
    encoder. Refused before any feature is extracted."""
    folder = check_data_root(data_root, ("train",)) / "train"
    classes, _ = datasets.folder.find_classes(str(folder))
    if len(classes) < 2:
        raise UsageError(f"{folder} holds {len(classes)} class folder ({', '.join(classes)}): "
                         f"a probe needs at least two classes (with one, k-NN and linear top-1 "
                         f"are 1.0 for any encoder); add class folders, one per class")


def evaluate(encoder: Trunk, key: str, data_root, out_dir, image_size: int = 224,
             device: str | torch.device = "cpu", k: int = 200, temperature: float = 0.1,
             epochs: int = 90, batch_size: int = 256, workers: int | None = None,
             seed: int = 0, overwrite: bool = False) -> dict | None:
    """k-NN and linear probes of one encoder; writes ``OUT/probe.json`` and returns it.

    Features go to memory-mapped banks under ``OUT/features/`` (:mod:`jepa_lite.eval.features`);
    under torchrun every rank extracts its share, then rank 0 alone runs the probes (on its
    GPU when there is one) and the other ranks return None. ``workers``: loader processes
    that decode and resize (default: none on a CPU, where they would share its cores with
    the encoder; as many as CPU cores, at most 8, for a GPU).
    """
    out = Path(out_dir)
    check_classes(data_root)
    workers = default_workers(device, training=False) if workers is None else workers
    kw = {"image_size": image_size, "device": device, "batch_size": batch_size,
          "workers": workers, "overwrite": overwrite}
    bank = features.extract(encoder, key, data_root, "train", out, **kw)
    val = features.extract(encoder, key, data_root, "val", out, **kw)
    if val.classes != bank.classes:
        raise UsageError(f"train/ and val/ of {data_root} have different classes")
    if not distributed.is_main():
        return None
    classes = bank.classes
    scores = knn_classify(bank.features, bank.labels, val.features, len(classes), k,
                          temperature, device=device)
    knn = topk_accuracy(scores, val.labels)
    result = {"knn_top1": knn[1], "knn_top5": knn[5], "knn_k": min(k, len(bank)),
              "knn_temperature": temperature,
              **linear_probe(bank.features, bank.labels, val.features, val.labels,
                             len(classes), epochs, batch_size=probe_batch_size(len(bank)),
                             seed=seed, device=device),
              "num_classes": len(classes), "train_images": len(bank), "val_images": len(val),
              "image_size": image_size, "encoder": key, "data_root": str(data_root)}
    out.mkdir(parents=True, exist_ok=True)
    (out / "probe.json").write_text(json.dumps(result, indent=1))
    return result
