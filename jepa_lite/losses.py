"""Every method's loss, one function each: the JEPA loss (chapter 04), VICReg's three terms
(VICReg, C-JEPA), NT-Xent (SimCLR) and the negative cosine (BYOL). Written plainly: the tests
check each against lightly's implementation.

The JEPA loss, on target cells only. Paper, III-A: "minimize the L2 loss between the
predicted and target latent representations at the masked locations. Loss is not computed
for non-masked patches." The authors' code L2-normalises prediction and target per cell and
takes smooth-L1 summed over channels; for unit vectors that is 0.5 * ||p - h||^2 =
1 - cos(p, h) (where every |p_c - h_c| < 1).
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from jepa_lite.errors import UsageError

LOSSES = ("official", "l2")


def jepa_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
              kind: str = "official") -> torch.Tensor:
    """Mean over all target cells of the batch. ``pred``, ``target``: [B, C, gh, gw];
    ``mask``: bool [B, gh, gw], True = target. ``kind``: ``official`` or ``l2`` (plain squared
    error summed over channels)."""
    if kind not in LOSSES:
        raise UsageError(f"unknown loss {kind!r}; choose one of {LOSSES}")
    pred, target = pred.float(), target.float()
    if kind == "official":
        pred, target = F.normalize(pred, dim=1), F.normalize(target, dim=1)
        per_cell = F.smooth_l1_loss(pred, target, reduction="none", beta=1.0).sum(1)
    else:
        per_cell = (pred - target).square().sum(1)
    m = mask.to(per_cell.dtype)
    return (per_cell * m).sum() / m.sum().clamp_min(1.0)  # no boolean indexing: no host sync


def ijepa_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """I-JEPA's loss ([code] src/train.py): smooth L1 (beta 1) between the predicted tokens and
    the target encoder's tokens, layer-normed over the features (no affine) before the target
    blocks are gathered, averaged over every feature of every predicted token. ``pred``,
    ``target``: ``[B, P, Kt, D]`` (the normalised targets already gathered)."""
    return F.smooth_l1_loss(pred.float(), target.float())


def _full(x: torch.Tensor) -> torch.Tensor:
    """At least float32."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def full_precision(loss):
    """Compute ``loss`` in float32 (or float64) even inside an autocast region: bf16 logits
    divided by a temperature of 0.1, or a covariance summed over 8192^2 entries, lose too much."""
    @functools.wraps(loss)
    def wrapper(z_a: torch.Tensor, z_b: torch.Tensor, *args, **kw):
        with torch.autocast(z_a.device.type, enabled=False):
            return loss(_full(z_a), _full(z_b), *args, **kw)
    return wrapper


# --------------------------------------------------------------------------- VICReg
def invariance(z_a: torch.Tensor, z_b: torch.Tensor) -> torch.Tensor:
    """VICReg's invariance: the mean squared difference of the two embeddings."""
    return F.mse_loss(z_a, z_b)


def variance(z: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """VICReg's variance: a hinge that keeps every dimension's std over the batch at >= 1."""
    std = torch.sqrt(z.var(dim=0) + eps)
    return F.relu(1.0 - std).mean()


def covariance(z: torch.Tensor) -> torch.Tensor:
    """VICReg's covariance: the squared off-diagonal covariances over the batch, / dim."""
    n, d = z.shape
    z = z - z.mean(dim=0)
    if n < d:  # the same sum from the n x n Gram matrix (:func:`covariance_by_gram`)
        return covariance_by_gram(z) / d
    cov = (z.T @ z) / (n - 1)
    off = cov - torch.diag(torch.diagonal(cov))
    return off.square().sum() / d


def covariance_by_gram(z: torch.Tensor) -> torch.Tensor:
    """The sum of the squared off-diagonal covariances of centred ``z`` ``[n, d]``, without
    the ``d x d`` matrix: all squared entries, ``||Z^T Z||^2 = ||Z Z^T||^2`` (the same
    trace), minus the squared variances. For a micro-batch smaller than the projector (VICReg:
    8192 wide) it is ``n^2 d`` work instead of ``n d^2`` (measured in docs/benchmarks.md)."""
    n = z.shape[0]
    total = (z @ z.T).square().sum()
    variances = z.square().sum(dim=0)
    return (total - variances.square().sum()) / (n - 1) ** 2


@full_precision
def vicreg_terms(z_a: torch.Tensor, z_b: torch.Tensor, eps: float = 1e-4) -> dict:
    """The three terms as VICReg (and lightly) define them: the variance averaged over the
    two branches, the covariance summed over them. ``z_*``: ``[batch, dim]`` on this process
    only (the CNN-JEPA authors did not gather them across GPUs)."""
    z_a, z_b = _full(z_a), _full(z_b)
    return {"invariance": invariance(z_a, z_b),
            "variance": 0.5 * (variance(z_a, eps) + variance(z_b, eps)),
            "covariance": covariance(z_a) + covariance(z_b)}


def vicreg_loss(z_a: torch.Tensor, z_b: torch.Tensor, weights=(25.0, 25.0, 1.0),
                eps: float = 1e-4) -> torch.Tensor:
    """lambda * invariance + mu * variance + nu * covariance (VICReg: 25 / 25 / 1)."""
    t = vicreg_terms(z_a, z_b, eps)
    return weights[0] * t["invariance"] + weights[1] * t["variance"] + weights[2] * t["covariance"]


# --------------------------------------------------------------------------- SimCLR
@full_precision
def nt_xent(z_a: torch.Tensor, z_b: torch.Tensor, temperature: float = 0.1,
            gather=None) -> torch.Tensor:
    """SimCLR's NT-Xent: each of the 2N views must pick its partner among the other 2N - 1
    (cosine similarity / temperature, cross-entropy), averaged over the views.

    ``gather`` (``distributed.all_gather_with_grad`` under torchrun) brings every process's
    embeddings in as negatives; each process's anchors are its own rows, and the labels are
    their positions in the gathered batch. Its gradient reaches every process's rows, so the
    gradients DistributedDataParallel averages are those of the loss over the global batch.
    """
    a, b = F.normalize(_full(z_a), dim=1), F.normalize(_full(z_b), dim=1)
    n = len(a)
    if gather is None:
        all_a, all_b, offset = a, b, 0
    else:
        ga, gb = gather(a), gather(b)  # [world, n, d]
        rank = _rank()
        all_a, all_b, offset = ga.flatten(0, 1), gb.flatten(0, 1), rank * n
    labels = torch.arange(n, device=a.device) + offset
    # an anchor is not its own negative (a comparison, not one_hot: no host sync on a GPU)
    self_mask = labels[:, None] == torch.arange(len(all_a), device=a.device)[None, :]
    logits_a = torch.cat([a @ all_b.T, (a @ all_a.T).masked_fill(self_mask, -torch.inf)], 1)
    logits_b = torch.cat([b @ all_a.T, (b @ all_b.T).masked_fill(self_mask, -torch.inf)], 1)
    logits = torch.cat([logits_a, logits_b]) / temperature
    return F.cross_entropy(logits, labels.repeat(2))


def _rank() -> int:
    import torch.distributed as dist

    return dist.get_rank() if dist.is_initialized() else 0


# --------------------------------------------------------------------------- BYOL
@full_precision
def negative_cosine(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """BYOL's loss of one direction: minus the mean cosine similarity (the target ``z``
    carries no gradient: the caller passes it detached or computed without one)."""
    return -F.cosine_similarity(_full(p), _full(z), dim=1).mean()
