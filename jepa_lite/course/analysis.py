"""The numbers behind the chapters' figures, apart from the layers they analyse.

* chapter 02: what a dense and a sparse trunk see (:func:`masked_pixel_influence`,
  :func:`zero_filled_vs_sparse`), receptive fields, forward time;
* chapter 03: the predictor's cost and reach (:func:`predictor_costs`,
  :func:`predictor_receptive_field`, :func:`predictor_influence`);
* (the collapse diagnostics of chapters 04 and 07 are the library's:
  ``jepa_lite.eval.diagnostics``).
"""

from __future__ import annotations

import copy
import time

import torch
from torch import nn

from jepa_lite.encoders.predictor import ConvPredictor
from jepa_lite.encoders.resnet import TRUNK_PARTS, Trunk
from jepa_lite.encoders.sparse import SparseTrunk
from jepa_lite.masking import upsample_mask


# --------------------------------------------------------------------------- chapter 02
def receptive_fields(trunk: Trunk) -> dict[str, tuple[int, int]]:
    """Receptive field and stride (pixels) of every stage, along the main (widest) path."""
    rf, jump, out = 1, 1, {}

    def grow(kernel, stride, dilation=1):
        nonlocal rf, jump
        k = kernel if isinstance(kernel, int) else kernel[0]
        s = stride if isinstance(stride, int) else stride[0]
        d = dilation if isinstance(dilation, int) else dilation[0]
        rf += (k - 1) * d * jump
        jump *= s

    grow(trunk.conv1.kernel_size, trunk.conv1.stride)
    out["conv1"] = (rf, jump)
    if isinstance(trunk.maxpool, nn.MaxPool2d):  # the small-image stem has none
        grow(trunk.maxpool.kernel_size, trunk.maxpool.stride)
    out["maxpool"] = (rf, jump)
    for name in ("layer1", "layer2", "layer3", "layer4"):
        for block in getattr(trunk, name):
            for child_name, conv in block.named_children():
                if isinstance(conv, nn.Conv2d) and child_name.startswith("conv"):
                    grow(conv.kernel_size, conv.stride, conv.dilation)
        out[name] = (rf, jump)
    return out


def stage_outputs(trunk: Trunk, images: torch.Tensor, mask: torch.Tensor | None = None):
    """Every part's output of a trunk, in order (for figures and tests). Copies: the trunk's
    ReLU works in place and would turn the kept ``bn1`` output into its own."""
    outs = {}
    hooks = [getattr(trunk, n).register_forward_hook(
        lambda _m, _i, o, n=n: outs.__setitem__(n, o.clone())) for n in TRUNK_PARTS]
    try:
        trunk(images) if mask is None else trunk(images, mask)
    finally:
        for h in hooks:
            h.remove()
    return outs


@torch.no_grad()
def masked_pixel_influence(trunk: Trunk, images: torch.Tensor, altered: torch.Tensor,
                           mask: torch.Tensor) -> dict[str, torch.Tensor]:
    """How much each stage's output changes, per position, when ``images`` becomes ``altered``
    (which differs only inside masked patches). Dense trunks see the full image; sparse
    trunks get the mask. Zero everywhere = nothing leaks."""
    args = () if not isinstance(trunk, SparseTrunk) else (mask,)
    a = stage_outputs(trunk, images, *args)
    b = stage_outputs(trunk, altered, *args)
    return {k: (a[k] - b[k]).abs().amax(dim=(0, 1)) for k in a}


def cell_distance(mask: torch.Tensor) -> torch.Tensor:
    """``[B, gh, gw]``: each cell's distance, in cells (Chebyshev), to the nearest masked cell
    of its image (0 at masked cells; ``gh + gw`` where nothing is masked)."""
    b, gh, gw = mask.shape
    rows = torch.arange(gh)[:, None].expand(gh, gw).reshape(-1)
    cols = torch.arange(gw)[None, :].expand(gh, gw).reshape(-1)
    d = torch.maximum((rows[:, None] - rows[None, :]).abs(), (cols[:, None] - cols[None, :]).abs())
    far = torch.full_like(d, gh + gw)
    per = torch.where(mask.reshape(b, 1, -1), d[None], far[None])  # [B, cell, masked cell]
    return per.amin(-1).reshape(b, gh, gw)


@torch.no_grad()
def zero_filled_vs_sparse(trunk: Trunk, images: torch.Tensor, mask: torch.Tensor,
                          train_mode: bool = True) -> dict[str, dict]:
    """The honest alternative to sparse layers, measured. A dense trunk on the zero-filled
    image cannot see hidden pixels either; what differs is what happens to the zeros.

    ``filled``: per encoder and stage, the fraction of masked positions whose output is not
    zero (SparK's "mask pattern vanishing": the dense trunk fills the hole with values made
    from its edge and from BatchNorm's shift; the sparse trunk keeps it empty).
    ``error``: per encoder, for every cell of the last stage, ``|f - t| / |t|`` between its
    feature ``f`` and the target's ``t`` (the same weights, dense, on the whole image).
    ``train_mode``: BatchNorm uses batch statistics, as in pretraining (the trunk's running
    statistics are left as they were)."""
    dense = copy.deepcopy(trunk).train(train_mode)
    context = SparseTrunk(trunk.arch).to(images.device, images.dtype).train(train_mode)
    context.load_state_dict(trunk.state_dict())
    target = copy.deepcopy(dense)(images)
    context.mask_state.set(mask, images.dtype)
    zero_filled = images * context.mask_state.at(images)
    context.mask_state.clear()
    outs = {"dense, zero-filled": stage_outputs(dense, zero_filled),
            "sparse": stage_outputs(context, images, mask)}
    hidden = {}
    for name, out in outs["sparse"].items():
        factor = out.shape[-1] // mask.shape[-1]
        hidden[name] = upsample_mask(mask, factor).unsqueeze(1).expand_as(out)
    norm = target.norm(dim=1).clamp_min(1e-12)
    def filled(out, h):  # no masked position: nothing filled
        return ((out != 0) & h).sum().item() / max(1, h.sum().item())

    return {"filled": {enc: {name: filled(o, hidden[name]) for name, o in stages.items()}
                       for enc, stages in outs.items()},
            "error": {enc: (stages["layer4"] - target).norm(dim=1) / norm
                      for enc, stages in outs.items()}}


def forward_seconds(trunk: Trunk, images: torch.Tensor, mask: torch.Tensor | None = None,
                    repeats: int = 3) -> float:
    """Best-of-``repeats`` wall time of one forward pass (no gradient)."""
    best = float("inf")
    with torch.no_grad():
        for _ in range(repeats):
            t = time.perf_counter()
            trunk(images) if mask is None else trunk(images, mask)
            best = min(best, time.perf_counter() - t)
    return best


# --------------------------------------------------------------------------- chapter 03
def num_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def predictor_costs(channels: int = 2048, grid: tuple[int, int] = (7, 7), layers: int = 3,
                    kernel_size: int = 3) -> list[dict]:
    """Parameters and multiply-accumulates of both predictor kinds on a grid (one image)."""
    rows = []
    for dw in (True, False):
        p = ConvPredictor(channels, layers, kernel_size, dw)
        macs = sum(m.weight.numel() * grid[0] * grid[1]  # each weight used once per cell
                   for m in p.modules() if isinstance(m, nn.Conv2d))
        rows.append({"predictor": "depthwise-separable" if dw else "standard conv",
                     "parameters": num_parameters(p), "macs_per_image": macs})
    return rows


def predictor_receptive_field(layers: int = 3, kernel_size: int = 3) -> int:
    """Cells of the grid (per side) that can reach one output cell of the predictor."""
    return 1 + layers * (kernel_size - 1)


def predictor_influence(predictor: nn.Module, grid: tuple[int, int], cell: tuple[int, int],
                        channels: int) -> torch.Tensor:
    """Bool [gh, gw]: which input cells are connected to the prediction at ``cell`` through
    the predictor's layers (by autograd, on a copy whose convolutions average their inputs
    with equal positive weights and whose BatchNorms are the identity, fed positive inputs: no
    inactive ReLU and no zero weight can hide a path, and no depth overflows, so the answer is
    the architecture's, the same for any weights)."""
    probe = copy.deepcopy(predictor).eval()
    with torch.no_grad():
        for m in probe.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.fill_(1.0 / m.weight[0].numel())
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, nn.BatchNorm2d):
                m.reset_parameters()  # weight 1, bias 0, running mean 0, running var 1
    probe.requires_grad_(False)
    x = torch.ones(1, channels, *grid, requires_grad=True)
    (g,) = torch.autograd.grad(probe(x)[:, :, cell[0], cell[1]].sum(), x)
    return g.abs().sum((0, 1)) > 0


@torch.no_grad()
def cell_agreement(model: nn.Module, images: torch.Tensor, mask: torch.Tensor) -> dict:
    """What is predicted, where (chapter 04): for every target cell of ``mask``, the cosine
    between a JEPA's prediction and its target encoder's feature (``cosine``), the cell's
    distance in cells (Chebyshev, the predictor's reach) to the nearest context cell
    (``distance``), the cosine a predictor that ignores the context would score by always
    predicting the mean target feature of these cells (``mean_cosine``: features of a narrow
    cone score high without using anything), and the cosines as maps ``[B, gh, gw]``, NaN at
    context cells (``cosine_map``). Eval mode (BatchNorm's running statistics), the model's
    mode restored after."""
    was = model.training
    model.eval()
    try:
        _, pred, target = model.predict(images, mask)
    finally:
        model.train(was)
    pred, target, mask = pred.float().cpu(), target.float().cpu(), mask.cpu()
    cos = torch.nn.functional.cosine_similarity(pred, target, dim=1)  # [B, gh, gw]
    targets = target.permute(0, 2, 3, 1)[mask]  # [cells, C]
    mean = torch.nn.functional.cosine_similarity(targets, targets.mean(0, keepdim=True), dim=1)
    return {"cosine": cos[mask], "distance": cell_distance(~mask)[mask], "mean_cosine": mean,
            "cosine_map": cos.masked_fill(~mask, float("nan"))}


# --------------------------------------------------------------------------- chapter 10
def mask_shares(tokens: tuple[int, int], cells: tuple[int, int], draws: int = 64,
                batch: int = 16, seed: int = 0) -> dict[str, dict[str, float]]:
    """How much of an image each method reads and predicts, over ``draws`` micro-batches of
    ``batch`` images with the default masks: I-JEPA's (``tokens`` grid: context, the union
    of its targets, the tokens in neither, one target block) and CNN-JEPA's multi-block
    masks (``cells`` grid: target, context). Shares of the grid, averaged over images."""
    from jepa_lite import masking, masking_ijepa

    g = torch.Generator().manual_seed(seed)
    sums = {"I-JEPA": dict.fromkeys(("context", "targets", "neither", "one target block"),
                                    0.0), "CNN-JEPA": {"context": 0.0, "target": 0.0}}
    n = tokens[0] * tokens[1]
    for _ in range(draws):
        context, targets = masking_ijepa.multiblock(batch, tokens, g)
        c = masking_ijepa.to_grid(context, tokens).flatten(1)
        t = masking_ijepa.to_grid(targets, tokens).flatten(2)
        union = t.any(1)
        i = sums["I-JEPA"]
        i["context"] += c.float().mean().item()
        i["targets"] += union.float().mean().item()
        i["neither"] += (~c & ~union).float().mean().item()
        i["one target block"] += targets.shape[-1] / n
        target = masking.sample_masks(batch, cells, "multiblock", g).float().mean().item()
        sums["CNN-JEPA"]["target"] += target
        sums["CNN-JEPA"]["context"] += 1 - target
    return {m: {k: v / draws for k, v in s.items()} for m, s in sums.items()}


def kept_tokens_by_batch(tokens: tuple[int, int], batches: list[int], draws: int = 20,
                         seed: int = 0) -> dict[int, dict[str, float]]:
    """I-JEPA's tokens per image by micro-batch size, mean of ``draws`` micro-batches of
    default masks: the context's and one target block's, after every image's list is cut
    to the micro-batch's shortest (the official collator's rule, so that they stack)."""
    from jepa_lite import masking_ijepa

    g = torch.Generator().manual_seed(seed)
    out = {}
    for b in batches:
        drawn = [masking_ijepa.multiblock(b, tokens, g) for _ in range(draws)]
        out[b] = {"context": sum(c.shape[1] for c, _ in drawn) / draws,
                  "target block": sum(t.shape[-1] for _, t in drawn) / draws}
    return out
