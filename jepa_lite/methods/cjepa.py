"""C-JEPA (Shentong Mo et al. 2024, arXiv:2410.19560) on CNN-JEPA's grid: the JEPA loss plus
a VICReg term.

Abstract: C-JEPA "integrates the Image-based Joint-Embedding Predictive Architecture with the
Variance-Invariance-Covariance Regularization (VICReg) strategy ... to effectively learn the
variance/covariance for preventing entire collapse and ensuring invariance in the mean of
augmented views". No code is public and the paper's pseudocode and Algorithm 1 disagree on
where VICReg applies (docs/paper.md). Both readings are here:

* ``A`` (default; Algorithm 1, Eqs. 21-22): mean-pool the predictor's output over each target
  block -> a projector (Linear-BN-ReLU, Linear-BN-ReLU, Linear, C wide) -> full VICReg on
  every pair of blocks (i != j), averaged over the pairs. The blocks play the "augmented
  views"; no extra encoder pass. CNN-JEPA's blocks are the multi-block targets on the grid
  (their union is the target region, but each is drawn alone). A micro-batch masked at
  random has no blocks: its VICReg term is zero, so under ``--masking random`` C-JEPA is
  CNN-JEPA, and under ``mixed`` (the default) the term acts on the multi-block draws only.
* ``B`` (the pseudocode): invariance = the JEPA prediction loss itself; variance and
  covariance of the mean-pooled context-encoder output (no projector).

L = L_JEPA + beta * (w_inv * invariance + w_var * variance + w_cov * covariance), beta 0.001,
weights 25 / 25 / 1. The EMA target is kept; ``target_ema=False`` (the paper's ablation)
copies the context encoder into the target after every step.
"""

from __future__ import annotations

import itertools

import torch

from jepa_lite.config import CJEPAOptions
from jepa_lite.errors import UsageError
from jepa_lite.losses import jepa_loss, vicreg_terms
from jepa_lite.methods.cnn_jepa import CNNJEPA
from jepa_lite.methods.heads import mlp, scaled

READINGS = ("A", "B")


def block_means(pred: torch.Tensor, blocks: torch.Tensor) -> torch.Tensor:
    """``[M, B, C]``: the mean of ``pred`` ``[B, C, gh, gw]`` over each block ``[B, M, gh, gw]``."""
    b = blocks.to(pred.dtype)
    sums = torch.einsum("bchw,bmhw->mbc", pred, b)
    return sums / b.sum((2, 3)).T.unsqueeze(-1).clamp_min(1.0)


class CJEPA(CNNJEPA):
    label = "C-JEPA"
    Options = CJEPAOptions
    name = Options.name
    min_micro_batch = 2
    why_min_micro_batch = "its VICReg variance is taken over the micro-batch"

    def __init__(self, arch: str = "resnet50", predictor_layers: int = 3,
                 kernel_size: int = 3, depthwise_separable: bool = True,
                 loss: str = "official", zero_init_residual: bool = False,
                 target_ema: bool = True, beta: float = 0.001, weights=(25.0, 25.0, 1.0),
                 reading: str = "A", target_gradient: bool = False):
        super().__init__(arch, predictor_layers, kernel_size, depthwise_separable, loss,
                         zero_init_residual, target_ema, target_gradient)
        if reading not in READINGS:
            raise UsageError(f"unknown C-JEPA reading {reading!r}; choose A or B")
        self.beta, self.weights, self.reading = beta, tuple(weights), reading
        c = self.context_encoder.dim
        if reading == "A":
            self.projector = mlp(scaled(c, 1, 1, 1))

    @classmethod
    def from_config(cls, cfg) -> CJEPA:
        o = cfg.method
        return cls(cfg.arch, o.predictor_layers, o.kernel_size, o.depthwise_separable, o.loss,
                   cfg.zero_init_residual, o.target_ema, o.beta, o.vicreg_weights, o.reading,
                   o.target_gradient)

    @classmethod
    def draws_blocks(cls, cfg) -> bool:
        return cfg.method.reading == "A"

    def forward(self, images: torch.Tensor, mask: torch.Tensor, blocks=None):
        context, pred, target = self.predict(images, mask)
        l_jepa = jepa_loss(pred, target, mask, self.loss_kind)
        terms = self.regulariser(pred, context, blocks, l_jepa)
        w = self.weights
        reg = w[0] * terms["invariance"] + w[1] * terms["variance"] + w[2] * terms["covariance"]
        return l_jepa + self.beta * reg, self.target_encoder.pool(target.detach().float())

    def regulariser(self, pred, context, blocks, l_jepa) -> dict:
        """The three VICReg terms of this micro-batch, as the reading places them."""
        if self.reading == "B":
            pooled = self.context_encoder.pool(context.float())  # zero at target cells
            t = vicreg_terms(pooled, pooled)
            return {"invariance": l_jepa, "variance": t["variance"],
                    "covariance": 0.5 * t["covariance"]}  # one branch, not two
        m = blocks.shape[1]
        if m < 2:  # random masking: no blocks; the projector still runs, times 0 (DDP needs
            z = self.projector(self.context_encoder.pool(pred.float()))  # every parameter used)
            return {k: v * 0.0 for k, v in vicreg_terms(z, z).items()}
        z = [self.projector(p) for p in block_means(pred.float(), blocks)]
        pairs = list(itertools.combinations(range(m), 2))  # VICReg(i, j) = VICReg(j, i)
        per_pair = [vicreg_terms(z[i], z[j]) for i, j in pairs]
        return {k: torch.stack([t[k] for t in per_pair]).mean() for k in per_pair[0]}
