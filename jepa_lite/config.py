"""Configuration as data: what a pretraining run is, the paper's constants, the generated data
sets' specification (the course's profiles are ``jepa_lite.course.profiles``).

Nothing here imports the rest of the package but its errors (a test checks it): every other
module reads
these dataclasses, none of them writes into them. A run is a :class:`TrainConfig`; the
settings that belong to one method only (its optimizer as the CNN-JEPA authors ran it, its
loss's knobs, CNN-JEPA's masks and predictor) are that method's own options dataclass,
nested in it, so a configuration can never carry one method's settings into another's run::

    TrainConfig()                                   # CNN-JEPA, the paper's ResNet-50 setting
    TrainConfig(method="simclr")                    # SimCLR with the authors' LARS 1.7
    cfg.with_changes(epochs=5, lr=0.002)            # a field of the run or of its method
    profiles.PROFILES["smoke"].config("byol")       # a profile's recipe for a method

Every field carries its command-line flag, help and bounds (:func:`option`): ``jepa-lite
pretrain``'s options are generated from them (``jepa_lite.cli``), and an impossible value is
refused when the configuration is made, naming the flag. A run folder keeps its
configuration as ``config.json`` (:meth:`TrainConfig.to_dict`, :meth:`TrainConfig.from_dict`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from dataclasses import MISSING, dataclass, field, fields, replace
from pathlib import Path
from typing import ClassVar, Literal

from jepa_lite.errors import UsageError


# --------------------------------------------------------------------------- the schema
def option(default=MISSING, *, flag: str, help: str, factory=MISSING, low=None, high=None,
           above=None, ordered: bool = False, operational: bool = False, metavar=None):
    """A configuration field with its command-line ``flag`` and ``help``. Bounds, checked
    when the configuration is made (for a pair: each value): ``low <= v``, ``v <= high``,
    ``above < v``; ``ordered``: a pair's first value is at most its second. ``operational``:
    how a run is carried out, not what it computes (may change when it resumes)."""
    meta = {"flag": flag, "help": help, "low": low, "high": high, "above": above,
            "ordered": ordered, "operational": operational, "metavar": metavar}
    return field(default=default, default_factory=factory, metadata=meta)


def _checked(obj, path: str = "") -> None:
    """Check every field of a configuration dataclass against its type and bounds (a nested
    group of options checked itself when it was made); the error names the flag, the value
    and what would do."""
    hints = typing.get_type_hints(type(obj))
    for f in fields(obj):
        value, meta = getattr(obj, f.name), f.metadata
        if "flag" not in meta or dataclasses.is_dataclass(value):
            continue
        flag = meta["flag"]
        shown = " ".join(map(str, value)) if isinstance(value, tuple) else value
        kind = hints[f.name]
        choices = _choices(kind)
        if choices and value not in choices:
            raise UsageError(f"{flag} {shown}: {path}{f.name} must be one of "
                             f"{', '.join(map(str, choices))}")
        if not _fits(value, kind):
            raise UsageError(f"{flag} {shown}: {path}{f.name} must be {_describe(kind)}, not "
                             f"{type(value).__name__}")
        values = value if isinstance(value, tuple) else (value,)
        for v in values:
            if v is None or isinstance(v, (bool, str)):
                continue
            if not math.isfinite(v):  # NaN passes every bound: refused by name
                raise UsageError(f"{flag} {shown}: {path}{f.name} must be a finite number")
            if meta["low"] is not None and v < meta["low"]:
                raise UsageError(f"{flag} {shown}: {path}{f.name} must be at least "
                                 f"{meta['low']}")
            if meta["high"] is not None and v > meta["high"]:
                raise UsageError(f"{flag} {shown}: {path}{f.name} must be at most "
                                 f"{meta['high']}")
            if meta["above"] is not None and v <= meta["above"]:
                raise UsageError(f"{flag} {shown}: {path}{f.name} must be more than "
                                 f"{meta['above']}")
        if meta["ordered"] and values[0] > values[1]:
            raise UsageError(f"{flag} {shown}: {path}{f.name} goes from its first value to "
                             f"its second, which must not be smaller: e.g. {flag} "
                             f"{values[1]} {values[0]}")


def _choices(kind) -> tuple:
    return typing.get_args(kind) if typing.get_origin(kind) is Literal else ()


def _fits(value, kind) -> bool:
    """Whether ``value`` is of the annotated ``kind`` (ints count as floats)."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is Literal:
        return True  # checked against the choices
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, a) for a in args)
    if kind is type(None):
        return value is None
    if origin is tuple:
        return isinstance(value, tuple) and len(value) == len(args) and all(
            _fits(v, a) for v, a in zip(value, args))
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def _describe(kind) -> str:
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is tuple:
        return f"{len(args)} numbers"
    if origin is not None:
        return " or ".join(_describe(a) for a in args)
    return {int: "a whole number", float: "a number", bool: "true or false", str: "a text",
            type(None): "None"}.get(kind, kind.__name__)


def _tuples(data: dict) -> dict:
    """JSON lists back into tuples (pairs and triples of numbers)."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}


# --------------------------------------------------------------------------- groups
@dataclass(frozen=True)
class Options:
    """A group of settings (a method's options, or a group nested in them, such as
    :class:`MaskOptions`): every field an :func:`option`, checked when the group is made.
    A field whose type is another ``Options`` is a nested group; the configuration machinery
    (:meth:`TrainConfig.with_changes`, :func:`schema`, :meth:`TrainConfig.from_dict`) reaches
    its fields as it reaches the group's own."""

    where: ClassVar[str] = ""  # how messages name the group's fields ("masking.num_blocks")

    def __post_init__(self):
        _checked(self, self.where)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def groups(kind: type) -> dict[str, type[Options]]:
    """The nested groups of an options class: field name -> its ``Options`` class."""
    hints = typing.get_type_hints(kind)
    return {f.name: hints[f.name] for f in fields(kind)
            if isinstance(hints[f.name], type) and issubclass(hints[f.name], Options)}


# --------------------------------------------------------------------------- masking
STRATEGIES = ("multiblock", "random", "mixed")


@dataclass(frozen=True)
class MaskOptions(Options):
    """Knobs of the three masking strategies; the defaults are the official CNN-JEPA ones.
    Their limits on a given grid are checked by ``masking.resolve_options``."""

    where: ClassVar[str] = "masking."

    num_blocks: int = option(4, flag="--num-blocks", low=1,
                             help="multi-block: blocks whose union is the target region")
    block_scale: tuple[float, float] = option(
        (0.15, 0.2), flag="--block-scale", above=0, high=1, ordered=True, metavar=("LO", "HI"),
        help="multi-block: block area / grid area")
    aspect_ratio: tuple[float, float] = option(
        (0.75, 1.5), flag="--aspect-ratio", above=0, ordered=True, metavar=("LO", "HI"),
        help="multi-block: block height / width")
    min_context: int | None = option(
        None, flag="--min-context", low=0,
        help="context cells kept at least (default: 5, the official min_keep; fewer on grids "
             "under 15 cells)")
    mask_ratio: float = option(0.6, flag="--mask-ratio", above=0, high=1,
                               help="random: fraction of target cells (29 of 49 at 7x7)")
    multiblock_prob: float = option(0.75, flag="--multiblock-prob", low=0, high=1,
                                    help="mixed: probability of multi-block per micro-batch")
    max_tries: int = option(20, flag="--max-tries", low=0,
                            help="multi-block: redraws of positions that leave too little "
                                 "context")


# --------------------------------------------------------------------------- methods
# Options several methods share, written once: a method that has one declares it with its
# helper (its own default as the argument), so that its flag means the same everywhere.
def optimizer_option(default: str):
    return option(default, flag="--optimizer",
                  help="AdamW (CNN-JEPA, C-JEPA, BYOL) or LARS (SimCLR, VICReg) as the "
                       "CNN-JEPA authors ran each method")


def lr_option(default: float):
    return option(default, flag="--lr", above=0,
                  help="peak learning rate, not batch-scaled (as the official code)")


def weight_decay_option(default: float):
    return option(default, flag="--weight-decay", low=0,
                  help="weight decay (LARS: not on norms and biases)")


def ema_option():
    return option((0.996, 1.0), flag="--ema", low=0, high=1, ordered=True,
                  metavar=("START", "END"),
                  help="EMA momentum of the target: cosine from START to END")


def ema_per_epoch_option(default: bool):
    return option(default, flag="--ema-per-epoch",
                  help="step the EMA momentum once per epoch, as the official code")


def jitter_strength_option():
    return option(1.0, flag="--jitter-strength", low=0,
                  help="colour jitter of both views scaled by s (SimCLR's colour distortion "
                       "strength; 1: as the authors ran it, 0.5: SimCLR on CIFAR-10)")


def vicreg_weights_option():
    return option((25.0, 25.0, 1.0), flag="--vicreg-weights", low=0,
                  metavar=("INV", "VAR", "COV"),
                  help="weights of VICReg's invariance, variance and covariance terms")


@dataclass(frozen=True)
class MethodOptions(Options):
    """What every method sets for itself: its optimizer, peak learning rate and weight decay
    (each method's defaults are as the CNN-JEPA authors ran it). Each method has its own
    subclass (its ``name``), adding its own fields and overriding these defaults."""

    name: ClassVar[str]
    optimizer: Literal["adamw", "lars"] = optimizer_option("adamw")
    lr: float = lr_option(0.01)
    weight_decay: float = weight_decay_option(0.01)


@dataclass(frozen=True)
class EMAOptions(MethodOptions):
    """A method with an EMA target: its momentum, a cosine from ``ema[0]`` to ``ema[1]``."""

    ema: tuple[float, float] = ema_option()
    ema_per_epoch: bool = ema_per_epoch_option(False)


@dataclass(frozen=True)
class TwoViewOptions(MethodOptions):
    """A method that compares two augmented views of each image (``TwoViewMethod``)."""

    jitter_strength: float = jitter_strength_option()


@dataclass(frozen=True)
class CNNJEPAOptions(EMAOptions):
    """CNN-JEPA (the paper): AdamW 0.01 / 0.01, EMA 0.996 -> 1, mixed masking, a 3-layer
    depthwise-separable 3x3 predictor, the official loss."""

    name: ClassVar[str] = "cnn-jepa"
    target_ema: bool = option(True, flag="--target-ema",
                              help="the target encoder follows the context encoder by EMA; "
                                   "--no-target-ema copies it after every step (the ablation)")
    target_gradient: bool = option(
        False, flag="--target-gradient",
        help="ablation (chapter 07): no stop-gradient; the target is the context encoder run "
             "densely on the whole image, with gradient (the target encoder is then a copy, "
             "kept for the probes)")
    strategy: Literal["multiblock", "random", "mixed"] = option(
        "mixed", flag="--masking", help="masking strategy")
    official_masks: bool = option(False, flag="--official-masks",
                                  help="the official code's two masking quirks")
    masking: MaskOptions = field(default_factory=MaskOptions)
    predictor_layers: int = option(3, flag="--predictor-layers", low=0,
                                   help="predictor depth (0: no predictor, the ablation of "
                                        "chapter 07: the mask token is the prediction)")
    kernel_size: int = option(3, flag="--kernel-size", low=1,
                              help="predictor kernel size (odd)")
    depthwise_separable: bool = option(True, flag="--depthwise-separable",
                                       help="the predictor's convolutions are depthwise-"
                                            "separable (--no-depthwise-separable: standard)")
    loss: Literal["official", "l2"] = option(
        "official", flag="--loss",
        help="official: smooth-L1 of L2-normalised features; l2: squared error")

    def __post_init__(self):
        super().__post_init__()
        if self.kernel_size % 2 == 0:
            raise UsageError(f"--kernel-size {self.kernel_size}: kernel_size must be odd (3, "
                             f"5, 7, 9), so that the grid keeps its size")


@dataclass(frozen=True)
class CJEPAOptions(CNNJEPAOptions):
    """C-JEPA: CNN-JEPA plus beta x VICReg (reading A or B, ``methods/cjepa.py``)."""

    name: ClassVar[str] = "cjepa"
    beta: float = option(0.001, flag="--beta", low=0, help="weight of the VICReg term")
    reading: Literal["A", "B"] = option(
        "A", flag="--cjepa-reading",
        help="A = VICReg between the projected block means of the prediction (Algorithm 1); "
             "B = invariance is the JEPA loss, variance and covariance of the pooled context "
             "encoder (pseudocode)")
    vicreg_weights: tuple[float, float, float] = vicreg_weights_option()


@dataclass(frozen=True)
class SimCLROptions(TwoViewOptions):
    """SimCLR as the CNN-JEPA authors ran it: LARS 1.7 / 1e-6, NT-Xent at 0.1."""

    name: ClassVar[str] = "simclr"
    optimizer: Literal["adamw", "lars"] = optimizer_option("lars")
    lr: float = lr_option(1.7)
    weight_decay: float = weight_decay_option(1e-6)
    temperature: float = option(0.1, flag="--temperature", above=0,
                                help="NT-Xent temperature")


@dataclass(frozen=True)
class BYOLOptions(EMAOptions, TwoViewOptions):
    """BYOL as the CNN-JEPA authors ran it: AdamW 0.01 / 0.01, EMA 0.996 -> 1 per epoch."""

    name: ClassVar[str] = "byol"
    ema_per_epoch: bool = ema_per_epoch_option(True)


@dataclass(frozen=True)
class VICRegOptions(TwoViewOptions):
    """VICReg as the CNN-JEPA authors ran it: LARS 0.5 / 1e-6, weights 25 / 25 / 1."""

    name: ClassVar[str] = "vicreg"
    optimizer: Literal["adamw", "lars"] = optimizer_option("lars")
    lr: float = lr_option(0.5)
    weight_decay: float = weight_decay_option(1e-6)
    vicreg_weights: tuple[float, float, float] = vicreg_weights_option()


@dataclass(frozen=True)
class SupervisedOptions(MethodOptions):
    """The course's reference, not a method of the paper: the trunk trained *with* labels
    (cross-entropy on a linear head over its pooled features), AdamW 1e-3 / 0.01 (torch's
    AdamW defaults), CNN-JEPA's crop and flip; ``num_classes``: the head's outputs (as
    torchvision's classifiers, 1000 unless told; the course sets its data set's)."""

    name: ClassVar[str] = "supervised"
    lr: float = lr_option(1e-3)
    num_classes: int = option(1000, flag="--num-classes", low=2,
                              help="classes of the supervised reference's linear head: at "
                                   "least the training set's class folders")


@dataclass(frozen=True)
class IJEPAOptions(EMAOptions):
    """I-JEPA (Assran et al. 2023) as facebookresearch/ijepa's configs run it
    (docs/paper.md, "I-JEPA"): AdamW with norms and biases undecayed, the learning rate
    warmed up from ``start_lr`` to ``lr`` 1e-3, weight decay cosine from 0.04 to 0.4, EMA
    0.996 -> 1 linear; four target blocks (scale 0.15-0.2, aspect 0.75-1.5), one context
    block (scale 0.85-1) without them, more than 10 tokens each; a predictor of width 384."""

    name: ClassVar[str] = "ijepa"
    lr: float = lr_option(1e-3)
    weight_decay: float = weight_decay_option(0.04)
    start_lr: float = option(2e-4, flag="--start-lr", low=0,
                             help="learning rate at the start of the warm-up (I-JEPA)")
    final_weight_decay: float = option(0.4, flag="--final-weight-decay", low=0,
                                       help="weight decay at the end: cosine from "
                                            "--weight-decay (I-JEPA)")
    target_blocks: int = option(4, flag="--target-blocks", low=1,
                                help="target blocks per image, each predicted on its own")
    target_scale: tuple[float, float] = option(
        (0.15, 0.2), flag="--target-scale", above=0, high=1, ordered=True, metavar=("MIN", "MAX"),
        help="a target block's share of the token grid")
    target_aspect: tuple[float, float] = option(
        (0.75, 1.5), flag="--target-aspect", above=0, ordered=True, metavar=("MIN", "MAX"),
        help="a target block's height / width")
    context_scale: tuple[float, float] = option(
        (0.85, 1.0), flag="--context-scale", above=0, high=1, ordered=True,
        metavar=("MIN", "MAX"), help="the context block's share of the grid, before the "
                                     "targets are removed from it")
    min_keep: int = option(10, flag="--min-keep", low=0,
                           help="a block keeps more than this many tokens or is drawn again")
    predictor_width: int = option(384, flag="--predictor-width", low=1,
                                  help="width of I-JEPA's ViT predictor (divisible by the "
                                       "encoder's heads)")
    predictor_depth: int = option(6, flag="--predictor-depth", low=1,
                                  help="blocks of I-JEPA's ViT predictor")


METHOD_OPTIONS: dict[str, type[MethodOptions]] = {}


def register_options(kind: type[MethodOptions]) -> type[MethodOptions]:
    """Add a method's options to :data:`METHOD_OPTIONS` (``jepa_lite.methods.register`` does
    it for a new method). Flags are shared by name (``--lr`` is every method's): a flag this
    class declares must mean what it means elsewhere (the same field, type, help and bounds;
    its default is the method's own), and must not be one of the run's flags."""
    if not (isinstance(kind, type) and issubclass(kind, MethodOptions)) or not getattr(
            kind, "name", None):
        raise TypeError(f"{kind!r} is not a MethodOptions subclass with a name")
    known = {f.metadata["flag"]: _declaration(f, hint)
             for other in METHOD_OPTIONS.values() if other is not kind
             for f, hint, _ in _options_fields(other)}
    run_flags = {f.metadata["flag"] for f in fields(TrainConfig)}
    for f, hint, _ in _options_fields(kind):
        flag = f.metadata["flag"]
        if flag in run_flags:
            raise TypeError(f"{kind.__name__}.{f.name} declares {flag}, a flag of the run itself")
        if flag in known and known[flag] != _declaration(f, hint):
            raise TypeError(f"{kind.__name__}.{f.name} declares {flag} otherwise than the methods "
                            f"registered before it ({known[flag]} there, {_declaration(f, hint)} "
                            f"here): share the declaration, or choose another flag")
    METHOD_OPTIONS[kind.name] = kind
    return kind


def _declaration(f: dataclasses.Field, hint) -> tuple:
    """What must agree wherever a flag is declared: all but the default."""
    return (f.name, hint, tuple(sorted((k, v) for k, v in f.metadata.items())))


def method_options(name: str) -> type[MethodOptions]:
    if name not in METHOD_OPTIONS:
        raise UsageError(f"unknown method {name!r}; choose one of {', '.join(METHOD_OPTIONS)} "
                         f"(--method)")
    return METHOD_OPTIONS[name]


# --------------------------------------------------------------------------- a run
@dataclass(frozen=True)
class TrainConfig:
    """A pretraining run. Defaults are the paper's (CNN-JEPA, ResNet-50, 224 px, batch 512,
    200 epochs). ``method`` is the method's options (a method's name is taken as its
    options at their defaults)."""

    method: MethodOptions = field(
        default_factory=CNNJEPAOptions,
        metadata={"flag": "--method", "help": "what to pretrain: cnn-jepa (the paper), cjepa "
                  "(+ VICReg), a baseline of the paper's Table I (simclr, byol, vicreg, "
                  "ijepa with a ViT), or the supervised reference (supervised)"})
    arch: str = option("resnet50", flag="--arch",
                       help="ResNet trunk; NAME-s16: without the max-pool (16 px patches, "
                            "112 px -> 7x7); for ijepa a ViT: vit_micro, vit_tiny, vit_small, "
                            "vit_base (16 px patches)")
    image_size: int = option(224, flag="--image-size", low=1,
                             help="pixels, a multiple of the trunk's stride (224: a 7x7 grid)")
    epochs: int = option(200, flag="--epochs", low=1, help="epochs of pretraining")
    batch_size: int = option(512, flag="--batch-size", low=1,
                             help="global batch: images per optimizer step, over all processes")
    micro_batch: int | None = option(
        None, flag="--micro-batch", low=1,
        help="images per forward pass = the BatchNorm group; the rest of the batch is gradient "
             "accumulation (default: batch size / processes)")
    warmup_epochs: float = option(10, flag="--warmup-epochs", low=0,
                                  help="linear warm-up, shorter than the run")
    final_lr_ratio: float = option(0.001, flag="--final-lr-ratio", low=0, high=1,
                                   help="the cosine ends at this fraction of the peak")
    zero_init_residual: bool = option(False, flag="--zero-init-residual",
                                      help="start the last BatchNorm of every residual block "
                                           "at 0 (timm)")
    sync_bn: bool = option(False, flag="--sync-bn",
                           help="BatchNorm statistics over all processes (torchrun), masked "
                                "positions excluded")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = option(
        "auto", flag="--precision", operational=True,
        help="auto: bf16 on GPUs that compute it natively, fp16 + GradScaler on older GPUs, "
             "fp32 on a CPU")
    workers: int | None = option(None, flag="--workers", low=0, operational=True,
                                 help="data-loader processes per training process (default: "
                                      "as many as CPU cores, at most 8)")
    cache: Literal["none", "host", "device"] = option(
        "none", flag="--cache", operational=True,
        help="keep every decoded image (uint8) in host memory or on the device after one pass: "
             "no decoding after that (data sets under --cache-gib)")
    cache_gib: float = option(8.0, flag="--cache-gib", above=0, operational=True,
                              help="the most GiB of decoded images --cache may hold")
    seed: int = option(0, flag="--seed", low=0, help="seeds every random draw of the run")
    checkpoint_every: int = option(10, flag="--checkpoint-every", low=0, operational=True,
                                   help="keep epoch_NNNN.pt every N epochs (last.pt: every "
                                        "epoch; 0: none)")
    checkpoint_every_steps: int = option(0, flag="--checkpoint-every-steps", low=0,
                                         operational=True,
                                         help="also rewrite last.pt every N steps (0: only per "
                                              "epoch)")
    log_every: int = option(20, flag="--log-every", low=1, operational=True,
                            help="steps between progress updates (each one waits for the GPU)")
    compile: bool = option(False, flag="--compile", operational=True,
                           help="torch.compile the model: on a GPU about 2.5x faster steps "
                                "after minutes of compiling (docs/benchmarks.md); on by default "
                                "in the full profile (--no-compile)")

    def __post_init__(self):
        if isinstance(self.method, str):
            object.__setattr__(self, "method", method_options(self.method)())
        elif isinstance(self.method, dict):
            object.__setattr__(self, "method", _method_from_dict(self.method))
        _checked(self)
        if self.warmup_epochs and self.warmup_epochs >= self.epochs:
            raise UsageError(
                f"--warmup-epochs {self.warmup_epochs:g} is not shorter than the run "
                f"(--epochs {self.epochs}): the learning rate would never reach its cosine "
                f"decay; use --warmup-epochs {self.epochs / 20:g} (the paper's 5 %: 10 of 200) "
                f"or another value below {self.epochs}")

    def with_changes(self, strict: bool = True, **changes) -> TrainConfig:
        """This configuration with some fields changed, each wherever it lives: the run's
        own fields, its method's options, or a group nested in them (``masking``'s
        :class:`MaskOptions`; the group itself takes its class or a dict). A name may also be
        its flag's (``masking="random"`` as ``--masking random`` sets ``strategy``).
        ``method``: another method's name or options (its defaults, not this method's
        settings), applied first. A field that only other methods have is an error, or
        skipped when ``strict`` is False (``--paper-exact`` on a baseline)."""
        changes = dict(changes)
        cfg = self
        if "method" in changes:
            cfg = replace(cfg, method=changes.pop("method"))
        kind, top, own, nested = type(cfg.method), {}, {}, {}
        for name, value in changes.items():
            value = tuple(value) if isinstance(value, list) else value
            if name in _TOP_FIELDS:
                top[name] = value
                continue
            found = _locate(kind, name, value)
            if found is None:
                readers = [m for m, o in METHOD_OPTIONS.items()
                           if _locate(o, name, value) is not None]
                if not readers:
                    raise UsageError(f"unknown configuration field {name!r}")
                if strict:
                    names = ", ".join(readers[:-1]) + " and " * (len(readers) > 1) + readers[-1]
                    raise UsageError(f"{flag_of(name)} is an option of {names}; "
                                     f"{cfg.method.name} does not use it: drop it, or choose "
                                     f"--method {readers[0]}")
                continue
            group, field_name = found
            if group is None and field_name in groups(kind):  # a whole group
                group_kind = groups(kind)[field_name]
                own[field_name] = (value if isinstance(value, group_kind) else
                                   replace(getattr(cfg.method, field_name), **_tuples(value)))
            elif group is None:
                own[field_name] = value
            else:
                nested.setdefault(group, {})[field_name] = value
        for group, values in nested.items():
            own[group] = replace(own.get(group, getattr(cfg.method, group)), **values)
        return replace(cfg, method=replace(cfg.method, **own), **top)

    def to_dict(self) -> dict:
        """Plain data (``config.json``, checkpoints): the method's options with its name."""
        out = dataclasses.asdict(self)
        out["method"] = {"name": self.method.name, **out["method"]}
        return out

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        """A configuration from :meth:`to_dict`'s data (``config.json``, a checkpoint's
        ``config``); fields left out take their defaults. A run that drew its views with the
        PIL pipeline (removed) is refused in one line."""
        data = dict(data)
        if not isinstance(data.get("method"), dict):
            raise UsageError("this configuration was written by an older jepa_lite (its method's "
                             "options are not nested under 'method'): start the run again in a "
                             "new --out")
        if data.pop("pipeline", "device") == "pil":  # (every nested form records "pipeline")
            raise UsageError("this run drew its views with the PIL pipeline, which jepa_lite no "
                             "longer has: start the run again in a new --out")
        return cls(**_tuples(data))

    @classmethod
    def from_file(cls, path) -> TrainConfig:
        """``--config FILE``: a JSON object of the run's fields, the method's options nested
        under ``method`` (``config.json``'s form, with the method's ``name``) or beside the
        run's fields (as the flags set them); fields left out take their defaults. Anything
        else is refused, naming it: not JSON, not an object, a key no field has."""
        where = f"--config {path}"
        try:
            data = json.loads(Path(path).expanduser().read_text())
        except ValueError as e:
            raise UsageError(f"{where} is not JSON ({e}): write an object such as "
                             f'{{"epochs": 20, "method": {{"name": "cnn-jepa", "lr": 0.002}}}} '
                             f"(a run's config.json is one)") from None
        if not isinstance(data, dict):
            raise UsageError(f"{where} holds a JSON {type(data).__name__}, not an object of "
                             f"settings: write {{\"field\": value, ...}} (a run's config.json "
                             f"is one)")
        method = data.get("method", "cnn-jepa")
        nested = isinstance(method, dict)
        name = method.get("name", "cnn-jepa") if nested else method
        try:
            kind = method_options(name)
        except ValueError as e:
            raise UsageError(f"{where}: {e}") from None
        own = {f.name for f in fields(kind)} | {"name"}
        keys = (set(data) - {"method"}) | ({f"method.{k}" for k in set(method) - own}
                                           if nested else set())
        unknown = sorted(k for k in keys if k not in _TOP_FIELDS
                         and (nested or k not in own - {"name"}))
        if unknown:
            raise UsageError(f"{where}: unknown key(s) {', '.join(unknown)}; a configuration "
                             f"holds the run's fields ({', '.join(sorted(_TOP_FIELDS))}) and "
                             f"{name}'s options ({', '.join(sorted(own - {'name'}))}), under "
                             f"\"method\" or beside the run's fields")
        if not nested:
            data = {**{k: v for k, v in data.items() if k in _TOP_FIELDS},
                    "method": {"name": name, **{k: v for k, v in data.items()
                                                if k in own and k != "name"}}}
        try:
            return cls(**_tuples(data))
        except (TypeError, ValueError) as e:  # a value out of range, a nested key unknown
            raise UsageError(f"{where}: {e}") from None

    def micro_batch_on(self, world: int) -> int:
        """Images per forward pass on each of ``world`` processes: ``micro_batch``, or by
        default the batch split over the processes (the one place that default is made)."""
        return self.micro_batch or max(1, self.batch_size // world)

    def operational(self) -> set[str]:
        """The fields that may change when a run resumes."""
        return {f.name for f in fields(self) if f.metadata.get("operational")}


_TOP_FIELDS = {f.name for f in fields(TrainConfig)} - {"method"}


def _locate(kind: type[MethodOptions], name: str, value=None) -> tuple[str | None, str] | None:
    """Where ``name`` lives in a method's options: ``(None, field)`` for its own field (a
    nested group too, when ``value`` is the group or a dict), ``(group, field)`` for a field
    of a nested group; a flag's name (``masking`` of ``--masking``) is taken as its field's.
    None when the method has no such setting."""
    own, nested = {f.name for f in fields(kind)}, groups(kind)
    if name in nested and (isinstance(value, (dict, Options)) or value is None):
        return None, name
    name = _field_of_flag(name) if name not in own or name in nested else name
    if name in own and name not in nested:
        return None, name
    for group, group_kind in nested.items():
        if name in {f.name for f in fields(group_kind)}:
            return group, name
    return None


def _method_from_dict(data: dict) -> MethodOptions:
    data = dict(data)
    kind = method_options(data.pop("name", "cnn-jepa"))
    for name, group_kind in groups(kind).items():
        if isinstance(data.get(name), dict):
            data[name] = group_kind(**_tuples(data[name]))
    return kind(**_tuples(data))


def _options_fields(kind: type) -> list[tuple[dataclasses.Field, object, str | None]]:
    """Every setting of an options class, its nested groups' fields in place of the group:
    ``(field, type, group)``."""
    hints, nested, out = typing.get_type_hints(kind), groups(kind), []
    for f in fields(kind):
        if f.name in nested:
            sub = typing.get_type_hints(nested[f.name])
            out += [(g, sub[g.name], f.name) for g in fields(nested[f.name])]
        else:
            out.append((f, hints[f.name], None))
    return out


for _kind in (CNNJEPAOptions, CJEPAOptions, SimCLROptions, BYOLOptions, VICRegOptions,
              IJEPAOptions, SupervisedOptions):
    register_options(_kind)


def schema() -> list[tuple[str, dataclasses.Field, object, dict]]:
    """Every option of a run, once per flag: ``(flag, field, type, defaults)``; ``defaults``
    maps each method whose options hold it to its default there (empty for the run's own
    fields), in the order of the fields."""
    seen: dict[str, tuple] = {}
    top = typing.get_type_hints(TrainConfig)
    for f in fields(TrainConfig):
        seen[f.metadata["flag"]] = (f, top[f.name], {})
    for name, kind in METHOD_OPTIONS.items():
        own = kind()
        for f, hint, group in _options_fields(kind):
            default = getattr(getattr(own, group) if group else own, f.name)
            seen.setdefault(f.metadata["flag"], (f, hint, {}))[2][name] = default
    return [(flag, *rest) for flag, rest in seen.items()]


def _field_of_flag(name: str) -> str:
    """The field a flag's name sets (``cjepa_reading`` of ``--cjepa-reading``: ``reading``);
    any other name as it is."""
    for flag, f, _, _ in schema():
        if flag[2:].replace("-", "_") == name:
            return f.name
    return name


def flag_of(name: str) -> str:
    """The command-line flag of a field of the run, of a method or of the masking options."""
    for flag, f, _, _ in schema():
        if f.name == name:
            return flag
    raise UsageError(f"unknown configuration field {name!r}")


# --------------------------------------------------------------------------- the paper
# --paper-exact: the authors' code where it differs from our defaults (docs/paper.md): both
# masking quirks, the EMA momentum stepped once per epoch, timm's zero-initialised last
# BatchNorm of each residual block, and BatchNorm groups of 128 (their batch per GPU).
PAPER_EXACT = {"official_masks": True, "ema_per_epoch": True, "zero_init_residual": True,
               "micro_batch": 128}


def paper_exact(cfg: TrainConfig) -> TrainConfig:
    """``cfg`` with the authors' behaviour (:data:`PAPER_EXACT`, where its method has it)."""
    return cfg.with_changes(strict=False, **PAPER_EXACT)
