"""Chapter 05 — frozen-feature probes: k-NN and linear classifiers on the target encoder.

Paper, IV-B: "we use linear and k-nearest neighbor (k-NN) classification probes on top of the
encoder's frozen features. We train the fully connected layer of the linear probe for 90
epochs and report the best top-1 and top-5 accuracies." The "best over epochs" is chosen on
the validation set itself (optimistic); :func:`linear_probe` also reports an honest variant
that picks the epoch on a held-out part of the training set.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from jepa_lite.data import eval_transform, image_folder
from jepa_lite.progress import progress
from jepa_lite.sparse import Trunk, dense_trunk


# --------------------------------------------------------------------------- features
def encoder_from_checkpoint(path: str | os.PathLike) -> Trunk:
    """The target (EMA) encoder of a pretraining checkpoint, as a dense trunk."""
    from jepa_lite.checkpoint import load_checkpoint

    ckpt = load_checkpoint(path)
    arch = ckpt["config"]["arch"]
    enc = dense_trunk(arch)
    prefix = "target_encoder."
    enc.load_state_dict({k[len(prefix):]: v for k, v in ckpt["model"].items()
                         if k.startswith(prefix)})
    return enc


def checkpoint_key(path: str | os.PathLike) -> str:
    """Identifies a checkpoint file's contents for the feature cache (path, size, mtime)."""
    st = Path(path).stat()
    return f"checkpoint:{Path(path).resolve()}:{st.st_size}:{st.st_mtime_ns}"


@torch.no_grad()
def extract_features(encoder: Trunk, data_root, split: str, image_size: int = 224,
                     batch_size: int = 256, device: str | torch.device = "cpu",
                     workers: int = 0) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Global-average-pooled features of the encoder in eval mode: ``[N, C]``, labels, classes."""
    dataset = image_folder(data_root, split, eval_transform(image_size))
    if len(dataset) == 0:
        raise ValueError(f"the {split}/ split of {data_root} has no images")
    loader = DataLoader(dataset, batch_size, shuffle=False, num_workers=workers,
                        pin_memory=torch.device(device).type == "cuda")
    encoder = encoder.to(device).eval()
    feats, labels = [], []
    for images, y in progress(loader, desc=f"features {split}", leave=False):
        f = encoder(images.to(device, non_blocking=True))
        feats.append(f.float().mean((2, 3)).cpu())
        labels.append(y)
    return torch.cat(feats), torch.cat(labels), dataset.classes


def _fingerprint(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def cached_features(encoder: Trunk, key: str, cache_dir, data_root, split: str,
                    image_size: int = 224, **kwargs):
    """:func:`extract_features`, cached in ``cache_dir`` per encoder ``key``, split and size.

    A cache made from other classes, another data root or another number of images is an
    error, never silently reused.
    """
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / f"features-{split}-{image_size}-{_fingerprint(key, split, image_size)}.pt"
    folders = sorted(p for p in (Path(data_root) / split).iterdir() if p.is_dir())
    classes_now = [p.name for p in folders]
    source = {"data_root": str(Path(data_root).resolve()),
              "files": sum(len(os.listdir(p)) for p in folders)}
    if path.is_file():
        cached = torch.load(path, weights_only=True)
        if cached["classes"] != classes_now:
            raise ValueError(
                f"the cached {split} features in {path} were computed on other classes "
                f"({len(cached['classes'])} classes, e.g. {cached['classes'][:3]}) than "
                f"{data_root} has ({len(classes_now)}, e.g. {classes_now[:3]}): use another "
                f"--out, or delete {path}")
        if cached.get("source", source) != source:
            raise ValueError(
                f"the cached {split} features in {path} were computed on "
                f"{cached['source']['data_root']} ({cached['source']['files']} files), not on "
                f"{source['data_root']} ({source['files']} files): use another --out, or "
                f"delete {path}")
        return cached["features"], cached["labels"], cached["classes"]
    feats, labels, classes = extract_features(encoder, data_root, split, image_size, **kwargs)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"features": feats, "labels": labels, "classes": classes, "source": source}, tmp)
    os.replace(tmp, path)
    return feats, labels, classes


# --------------------------------------------------------------------------- k-NN
def knn_classify(bank: torch.Tensor, bank_labels: torch.Tensor, queries: torch.Tensor,
                 num_classes: int, k: int = 200, temperature: float = 0.1,
                 chunk_size: int = 1024) -> torch.Tensor:
    """Weighted k-NN scores ``[Q, num_classes]``: cosine similarity of L2-normalised features;
    each of the ``k`` nearest bank entries votes for its label with weight exp(sim / T).
    Queries are processed in chunks, so memory stays at ``chunk_size x len(bank)``."""
    bank = F.normalize(bank.float(), dim=1)
    k = min(k, len(bank))
    scores = []
    for start in range(0, len(queries), chunk_size):
        q = F.normalize(queries[start:start + chunk_size].float().to(bank.device), dim=1)
        sim, idx = (q @ bank.T).topk(k, dim=1)  # [q, k]
        weights = (sim / temperature).exp()
        votes = torch.zeros(len(q), num_classes, device=bank.device)
        votes.scatter_add_(1, bank_labels.to(bank.device)[idx], weights)
        scores.append(votes)
    return torch.cat(scores)


def nearest(bank: torch.Tensor, queries: torch.Tensor, k: int = 5) -> torch.Tensor:
    """Indices ``[Q, k]`` of the most cosine-similar bank entries of every query."""
    sim = F.normalize(queries.float(), dim=1) @ F.normalize(bank.float(), dim=1).T
    return sim.topk(min(k, len(bank)), dim=1).indices


def topk_accuracy(scores: torch.Tensor, labels: torch.Tensor, ks=(1, 5)) -> dict[int, float]:
    """Fraction of rows whose label is among the ``k`` highest scores."""
    top = scores.topk(min(max(ks), scores.shape[1]), dim=1).indices
    hit = top == labels.to(top.device)[:, None]
    return {k: hit[:, :k].any(1).float().mean().item() for k in ks}


# --------------------------------------------------------------------------- linear probe
def _fit_linear(x_train, y_train, evals: dict, num_classes: int, epochs: int, lr: float,
                batch_size: int, seed: int):
    """Train Linear(C, classes) with Adam (no weight decay); accuracy on ``evals`` per epoch."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    head = torch.nn.Linear(x_train.shape[1], num_classes)
    opt = torch.optim.Adam(head.parameters(), lr=lr, weight_decay=0.0)
    curves = {name: [] for name in evals}
    for _ in range(epochs):
        head.train()
        for idx in torch.randperm(len(x_train), generator=g).split(batch_size):
            loss = F.cross_entropy(head(x_train[idx]), y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        head.eval()
        with torch.no_grad():
            for name, (x, y) in evals.items():
                curves[name].append(topk_accuracy(head(x), y))
    return curves


def linear_probe(train_x, train_y, val_x, val_y, num_classes: int, epochs: int = 90,
                 lr: float = 1e-3, batch_size: int = 256, holdout: float = 0.1,
                 seed: int = 0) -> dict:
    """Both protocols on cached features.

    official: train on all of train, report the best validation accuracy over the epochs
    (and the final one). honest: choose the epoch on ``holdout`` of train, then report
    validation accuracy at that epoch, once.
    """
    if len(val_x) == 0:
        raise ValueError("the validation split is empty: a probe needs images in val/")
    official = _fit_linear(train_x, train_y, {"val": (val_x, val_y)}, num_classes, epochs, lr,
                           batch_size, seed)["val"]
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(train_x), generator=g)
    n_hold = max(1, int(len(train_x) * holdout))
    hold, rest = perm[:n_hold], perm[n_hold:]
    honest = _fit_linear(train_x[rest], train_y[rest],
                         {"holdout": (train_x[hold], train_y[hold]), "val": (val_x, val_y)},
                         num_classes, epochs, lr, batch_size, seed)
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


def probe_batch_size(train_size: int) -> int:
    """256 (the usual), or a tenth of a small training set (at least 16), so that even a
    tiny data set gets about ten optimiser steps per epoch."""
    return max(16, min(256, train_size // 10))


# --------------------------------------------------------------------------- supervised
def train_supervised(arch: str, data_root, image_size: int = 224, epochs: int = 10,
                     batch_size: int = 64, lr: float = 1e-3, device: str | torch.device = "cpu",
                     seed: int = 0, workers: int = 0,
                     save: str | os.PathLike | None = None) -> tuple[Trunk, list[float]]:
    """The ceiling for the probes: the same trunk trained *with* labels (cross-entropy on a
    linear head over pooled features, AdamW, the pretraining augmentation). Returns the trunk
    and the mean training loss of every epoch. With ``save``, the result is written there and
    a later call with the same settings loads it instead of training again."""
    from jepa_lite.data import pretrain_transform

    settings = {"arch": arch, "data_root": str(Path(data_root).resolve()),
                "image_size": image_size, "epochs": epochs, "batch_size": batch_size,
                "lr": lr, "seed": seed}
    if save is not None and Path(save).is_file():
        saved = torch.load(save, map_location="cpu", weights_only=True)
        if saved["settings"] == settings:
            trunk = dense_trunk(arch)
            trunk.load_state_dict(saved["trunk"])
            return trunk.to(device).eval(), saved["losses"]
    dataset = image_folder(data_root, "train", pretrain_transform(image_size))
    torch.manual_seed(seed)
    trunk = dense_trunk(arch).to(device)
    head = torch.nn.Linear(trunk.out_channels, len(dataset.classes)).to(device)
    params = list(trunk.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=lr)
    loader = DataLoader(dataset, min(batch_size, len(dataset)), shuffle=True, drop_last=True,
                        num_workers=workers, generator=torch.Generator().manual_seed(seed))
    losses = []
    trunk.train()
    for _ in progress(range(epochs), desc="supervised", leave=False):
        total = torch.zeros((), device=device)
        for images, y in loader:
            logits = head(trunk(images.to(device)).mean((2, 3)))
            loss = F.cross_entropy(logits, y.to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.detach()
        losses.append(total.item() / len(loader))
    if save is not None:
        Path(save).parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(save).with_name(Path(save).name + ".tmp")
        torch.save({"settings": settings, "trunk": trunk.state_dict(), "losses": losses}, tmp)
        os.replace(tmp, save)
    return trunk.eval(), losses


# --------------------------------------------------------------------------- everything
def evaluate(encoder: Trunk, key: str, data_root, out_dir, image_size: int = 224,
             device: str | torch.device = "cpu", k: int = 200, temperature: float = 0.1,
             epochs: int = 90, batch_size: int = 256, workers: int = 0, seed: int = 0) -> dict:
    """k-NN and linear probes of one encoder; writes ``OUT/probe.json`` and returns it."""
    out = Path(out_dir)
    kw = {"image_size": image_size, "device": device, "batch_size": batch_size,
          "workers": workers}
    bank, bank_y, classes = cached_features(encoder, key, out / "features", data_root, "train",
                                            **kw)
    val, val_y, val_classes = cached_features(encoder, key, out / "features", data_root, "val",
                                              **kw)
    if val_classes != classes:
        raise ValueError(f"train/ and val/ of {data_root} have different classes")
    knn = topk_accuracy(knn_classify(bank, bank_y, val, len(classes), k, temperature), val_y)
    result = {"knn_top1": knn[1], "knn_top5": knn[5], "knn_k": min(k, len(bank)),
              "knn_temperature": temperature,
              **linear_probe(bank, bank_y, val, val_y, len(classes), epochs,
                             batch_size=probe_batch_size(len(bank)), seed=seed),
              "num_classes": len(classes), "train_images": len(bank), "val_images": len(val),
              "image_size": image_size, "encoder": key, "data_root": str(data_root)}
    out.mkdir(parents=True, exist_ok=True)
    (out / "probe.json").write_text(json.dumps(result, indent=1))
    return result
