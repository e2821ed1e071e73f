"""What every method gives the training loop (``jepa_lite.train``): the contract.

A method is a small ``nn.Module`` behind these answers, so that the loop, the probes and the
configuration never ask which method they run:

* ``Options`` (its settings, a :class:`~jepa_lite.config.MethodOptions`), ``name`` (its
  ``--method``), ``label`` (its name in the paper's tables), and the micro-batch its loss needs
  (``min_micro_batch``, ``why_min_micro_batch``);
* :meth:`encodes` says which encoders it trains (a ResNet, or I-JEPA's ViT);
* :meth:`from_config` builds it, :meth:`check` refuses what this run's geometry cannot do,
  :meth:`describe` says that geometry in one line, :meth:`views` says what the loader hands it;
* :meth:`schedules`: each hyperparameter as a function of the step; the loop sets every key
  on the optimizer's parameter groups, except ``ema_momentum``, which moves the target;
* :meth:`param_groups` (what the optimizer trains), :meth:`ema_pairs` (what its EMA target
  follows; :meth:`update_target`, written once here, moves them);
* ``forward(**batch)`` takes a micro-batch by name (``Views.names``: ``images``, ``mask``,
  ``blocks``, or ``view_a``, ``view_b``; ``labels`` for a supervised method) and returns
  its loss and pooled features ``[B, D]`` for the collapse diagnostics;
* :meth:`probe_encoder` and ``encoder_prefix``: the encoder the probes read from a checkpoint;
* ``reference``: True for a reference the self-supervised methods are read against (the
  supervised one), not one of them (``methods.compared``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import torch
from torch import nn
from torch.optim.swa_utils import get_ema_multi_avg_fn

from jepa_lite import masking, schedules
from jepa_lite.config import EMAOptions, MethodOptions, TwoViewOptions
from jepa_lite.data.augment import ViewRecipe, with_jitter_strength
from jepa_lite.data.pipeline import Views
from jepa_lite.encoders.resnet import ALL_ARCHS, check_arch, dense_trunk, patch_of
from jepa_lite.errors import UsageError

Schedules = dict[str, Callable[[int], float]]


class Method(nn.Module):
    name: ClassVar[str]  # --method
    label: ClassVar[str]  # as the paper's tables (data/paper_results.csv) name it
    encoder_prefix: ClassVar[str]  # state-dict prefix of the encoder the probes use
    Options: ClassVar[type[MethodOptions]]  # its settings (jepa_lite.config), cfg.method
    min_micro_batch: ClassVar[int] = 1  # images per forward pass the loss needs
    why_min_micro_batch: ClassVar[str] = ""  # and why, for the error message
    reference: ClassVar[bool] = False  # a reference the methods are read against (supervised)
    decay_norms: ClassVar[bool] = True  # AdamW decays norms and biases too (False: I-JEPA)

    @classmethod
    def from_config(cls, cfg) -> Method:
        raise NotImplementedError

    @classmethod
    def encodes(cls, arch: str) -> bool:
        """Whether this method trains the encoder ``arch`` (here: a ResNet trunk)."""
        return arch in ALL_ARCHS

    @classmethod
    def check(cls, cfg) -> None:
        """Refuse (:class:`~jepa_lite.errors.UsageError`, naming the fix) what this method
        cannot do on the run's geometry; the run's fields and the options have checked
        themselves. Here: the trunk, and the grid it makes of the image."""
        check_arch(cfg.arch)
        masking.grid_of(cfg.image_size, cfg.arch)

    @classmethod
    def check_micro_batch(cls, micro: int, world: int = 1) -> None:
        """A method whose loss compares the images of a forward pass needs at least two."""
        if micro < cls.min_micro_batch:
            raise UsageError(f"micro-batch {micro} (images per forward pass on each of {world} "
                             f"process(es)) is too small for {cls.name}: "
                             f"{cls.why_min_micro_batch}; use --micro-batch "
                             f"{cls.min_micro_batch} or more (and a --batch-size that is a "
                             f"multiple of it times the processes)")

    @classmethod
    def describe(cls, cfg) -> str:
        """The run's geometry in one line."""
        grid = masking.grid_of(cfg.image_size, cfg.arch)
        return f"{cfg.image_size} px: a {grid[0]}x{grid[1]} grid ({cls.name} draws no masks)"

    @classmethod
    def views(cls, cfg) -> Views:
        """What the loader hands the step and how it becomes the forward's inputs."""
        raise NotImplementedError

    @classmethod
    def schedules(cls, cfg, steps_per_epoch: int) -> Schedules:
        """Each scheduled hyperparameter as a function of the global step: the learning rate
        (linear warm-up, then cosine to ``final_lr_ratio`` of the peak) and, for a method
        with an EMA target (:class:`~jepa_lite.config.EMAOptions`), ``ema_momentum``."""
        o, total = cfg.method, steps_per_epoch * cfg.epochs
        warmup = round(cfg.warmup_epochs * steps_per_epoch)
        out: Schedules = {"lr": lambda step: schedules.learning_rate(
            step, total, warmup, o.lr, cfg.final_lr_ratio)}
        if isinstance(o, EMAOptions):
            out["ema_momentum"] = lambda step: schedules.ema_momentum_at(
                step, steps_per_epoch, cfg.epochs, o.ema_per_epoch, *o.ema)
        return out

    @classmethod
    def probe_encoder(cls, cfg) -> nn.Module:
        """A fresh encoder of the kind the probes read (weights: ``encoder_prefix`` of a
        checkpoint's model, or its random initialisation)."""
        return dense_trunk(cfg.arch)

    def forward(self, **batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def named_trainable_parameters(self) -> list[tuple[str, nn.Parameter]]:
        return [(n, p) for n, p in self.named_parameters() if p.requires_grad]

    def param_groups(self) -> list[tuple[str, nn.Parameter]]:
        """The named parameters the optimizer trains (``jepa_lite.optim`` splits them into
        groups with and without weight decay)."""
        return self.named_trainable_parameters()

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for _, p in self.named_trainable_parameters()]

    def ema_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        """``(target, online)`` module pairs: each target follows its online module by EMA."""
        return []

    @torch.no_grad()
    def update_target(self, momentum: float) -> None:
        """target <- momentum * target + (1 - momentum) * online, for every parameter of every
        pair (BatchNorm's running statistics are buffers: not averaged)."""
        pairs = self.ema_pairs()
        if not pairs:
            return
        targets = [p for target, _ in pairs for p in target.parameters()]
        online = [p for _, module in pairs for p in module.parameters()]
        get_ema_multi_avg_fn(momentum)(targets, online, None)

    def encoder(self) -> nn.Module:
        """The encoder the probes use."""
        return self.get_submodule(self.encoder_prefix.rstrip("."))


class TwoViewMethod(Method):
    """The baselines (SimCLR, BYOL, VICReg): a dense ``backbone`` sees two augmented views of
    every image, each view made by one of ``view_recipes``; the probes read the backbone. Its
    options are :class:`~jepa_lite.config.TwoViewOptions` (``--jitter-strength``)."""

    encoder_prefix = "backbone."
    Options: ClassVar[type[TwoViewOptions]]
    view_recipes: ClassVar[tuple[ViewRecipe, ViewRecipe]]
    min_micro_batch = 2

    def __init__(self, arch: str, zero_init_residual: bool = False):
        super().__init__()
        self.backbone = dense_trunk(arch, zero_init_residual)

    @classmethod
    def views(cls, cfg) -> Views:
        """Two views of every image, each by its recipe, the colour jitter scaled by
        ``--jitter-strength``."""
        recipes = tuple(with_jitter_strength(r, cfg.method.jitter_strength)
                        for r in cls.view_recipes)
        return Views(recipes, cfg.image_size, patch_of(cfg.arch))

    def pooled(self, view: torch.Tensor) -> torch.Tensor:
        """The backbone's globally average-pooled features of one view, ``[B, C]``."""
        return self.backbone.pool(self.backbone(view))
