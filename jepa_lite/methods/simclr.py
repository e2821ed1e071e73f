"""SimCLR (Chen et al. 2020), as the CNN-JEPA authors ran it: two augmented views, a projector
2048-2048-128 with BatchNorm on every layer, NT-Xent at temperature 0.1 with the negatives
gathered from every GPU, LARS (lr 1.7, weight decay 1e-6).

The negatives of an anchor are the other views of its micro-batch on every process: a run of
4 GPUs x 128 sees 2 x 512 - 2 negatives per anchor, one GPU accumulating 4 x 128 sees
2 x 128 - 2. Unlike CNN-JEPA's, SimCLR's loss depends on how the batch is split.
"""

from __future__ import annotations

import torch

from jepa_lite import distributed
from jepa_lite.config import SimCLROptions
from jepa_lite.data.augment import ViewRecipe
from jepa_lite.losses import nt_xent
from jepa_lite.methods.base import TwoViewMethod
from jepa_lite.methods.heads import mlp, scaled


class SimCLR(TwoViewMethod):
    label = "SimCLR"
    # docs/paper.md, "views": SimCLR's strong colour jitter on both views
    view_recipes = (ViewRecipe(jitter=(0.8, 0.8, 0.8, 0.2)),) * 2
    Options = SimCLROptions
    name = Options.name
    why_min_micro_batch = "an anchor needs at least one negative"

    def __init__(self, arch: str = "resnet50", temperature: float = 0.1,
                 zero_init_residual: bool = False):
        super().__init__(arch, zero_init_residual)
        self.temperature = temperature
        c = self.backbone.dim
        self.projector = mlp(scaled(c, 1, 1 / 16), bn_last=True)  # 2048-2048-128 at C = 2048

    @classmethod
    def from_config(cls, cfg) -> SimCLR:
        return cls(cfg.arch, cfg.method.temperature, cfg.zero_init_residual)

    def forward(self, view_a: torch.Tensor, view_b: torch.Tensor):
        h_a, h_b = self.pooled(view_a), self.pooled(view_b)
        loss = nt_xent(self.projector(h_a), self.projector(h_b), self.temperature,
                       gather=distributed.all_gather_with_grad)
        return loss, h_a.detach()
