"""Pretrain a ResNet with CNN-JEPA (or C-JEPA, SimCLR, BYOL, VICReg: ``--method``), in one
process or many (torchrun).

    jepa-lite pretrain --data-root DIR --out RUN [options]
    python -m jepa_lite.pretrain --data-root DIR --out RUN [options]
    torchrun --nproc_per_node 4 -m jepa_lite.pretrain --data-root DIR --out RUN [options]

Every field of :class:`jepa_lite.train.TrainConfig` has an option. The configuration starts
from the paper's defaults, or from a profile's recipe (``--profile``), or, with ``--resume``,
from the checkpoint's own configuration; ``--paper-exact`` and the options given on the
command line are applied on top. A resumed run refuses any option that would change it.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import traceback
from dataclasses import asdict, replace
from pathlib import Path

from jepa_lite import distributed
from jepa_lite.backbone import ALL_ARCHS
from jepa_lite.config import PROFILES
from jepa_lite.errors import USER_ERRORS, hint
from jepa_lite.masking import STRATEGIES, MaskOptions
from jepa_lite.methods import METHODS, owners
from jepa_lite.optim import OPTIMIZERS
from jepa_lite.runtime import PRECISIONS

BOOL = argparse.BooleanOptionalAction

# config field (masking options as "masking.<name>") -> (option, argparse keywords, help)
OPTIONS: dict[str, tuple[str, dict, str]] = {
    "method": ("--method", {"choices": list(METHODS)},
               "what to pretrain: cnn-jepa (the paper), cjepa (+ VICReg), or a baseline of the "
               "paper's Table I (simclr, byol, vicreg)"),
    "arch": ("--arch", {"choices": list(ALL_ARCHS)},
             "ResNet trunk; NAME-s16: without the max-pool (16 px patches, 112 px -> 7x7)"),
    "image_size": ("--image-size", {"type": int}, "pixels, a multiple of 32 (224: a 7x7 grid)"),
    "epochs": ("--epochs", {"type": int}, "epochs of pretraining"),
    "batch_size": ("--batch-size", {"type": int},
                   "global batch: images per optimizer step, over all processes"),
    "micro_batch": ("--micro-batch", {"type": int},
                    "images per forward pass = the BatchNorm group; the rest of the batch is "
                    "gradient accumulation (None: batch size / processes)"),
    "optimizer": ("--optimizer", {"choices": list(OPTIMIZERS)},
                  "default: the method's (AdamW for cnn-jepa, cjepa, byol; LARS for simclr, "
                  "vicreg)"),
    "lr": ("--lr", {"type": float}, "peak learning rate, not batch-scaled (default: the "
                                    "method's: 0.01; simclr 1.7; vicreg 0.5)"),
    "weight_decay": ("--weight-decay", {"type": float},
                     "default: the method's: 0.01; simclr and vicreg 1e-6 (LARS: not on norms "
                     "and biases)"),
    "warmup_epochs": ("--warmup-epochs", {"type": float}, "linear warm-up"),
    "final_lr_ratio": ("--final-lr-ratio", {"type": float},
                       "the cosine ends at this fraction of the peak"),
    "ema": ("--ema", {"type": float, "nargs": 2, "metavar": ("START", "END")},
            "EMA momentum: cosine from START to END"),
    "ema_per_epoch": ("--ema-per-epoch", {"action": BOOL},
                      "step the EMA momentum once per epoch, as the official code (default: "
                      "per step for cnn-jepa / cjepa, per epoch for byol)"),
    "target_ema": ("--target-ema", {"action": BOOL},
                   "cnn-jepa / cjepa: the target encoder follows the context encoder by EMA; "
                   "--no-target-ema copies it after every step (the ablation)"),
    "strategy": ("--masking", {"choices": list(STRATEGIES)}, "masking strategy"),
    "official_masks": ("--official-masks", {"action": BOOL},
                       "the official code's two masking quirks"),
    "masking.num_blocks": ("--num-blocks", {"type": int}, "multi-block: blocks per image"),
    "masking.block_scale": ("--block-scale", {"type": float, "nargs": 2, "metavar": ("LO", "HI")},
                            "multi-block: block area / grid area"),
    "masking.aspect_ratio": ("--aspect-ratio",
                             {"type": float, "nargs": 2, "metavar": ("LO", "HI")},
                             "multi-block: block height / width"),
    "masking.min_context": ("--min-context", {"type": int},
                            "context cells kept at least (default: 5, fewer on tiny grids)"),
    "masking.mask_ratio": ("--mask-ratio", {"type": float}, "random: fraction of target cells"),
    "masking.multiblock_prob": ("--multiblock-prob", {"type": float},
                                "mixed: probability of multi-block per micro-batch"),
    "masking.max_tries": ("--max-tries", {"type": int},
                          "multi-block: redraws of positions that leave too little context"),
    "predictor_layers": ("--predictor-layers", {"type": int}, "predictor depth"),
    "kernel_size": ("--kernel-size", {"type": int}, "predictor kernel size"),
    "depthwise_separable": ("--standard-convs", {"action": "store_false"},
                            "predictor with standard instead of depthwise-separable convs"),
    "loss": ("--loss", {"choices": ["official", "l2"]},
             "official: smooth-L1 of L2-normalised features; l2: squared error"),
    "cjepa_beta": ("--beta", {"type": float}, "cjepa: weight of the VICReg term"),
    "cjepa_reading": ("--cjepa-reading", {"choices": ["A", "B"]},
                      "cjepa: A = VICReg between the projected block means of the prediction "
                      "(Algorithm 1); B = invariance is the JEPA loss, variance and covariance of "
                      "the pooled context encoder (pseudocode)"),
    "vicreg_weights": ("--vicreg-weights", {"type": float, "nargs": 3,
                                            "metavar": ("INV", "VAR", "COV")},
                       "vicreg / cjepa: weights of invariance, variance, covariance"),
    "temperature": ("--temperature", {"type": float}, "simclr: NT-Xent temperature"),
    "jitter_strength": ("--jitter-strength", {"type": float},
                        "simclr / byol / vicreg: colour jitter scaled by s (SimCLR's colour "
                        "distortion strength; 1: as the authors ran it, 0.5: SimCLR on CIFAR-10)"),
    "zero_init_residual": ("--zero-init-residual", {"action": BOOL},
                           "start the last BatchNorm of every residual block at 0 (timm)"),
    "sync_bn": ("--sync-bn", {"action": BOOL},
                "BatchNorm statistics over all processes (torchrun), masked positions excluded"),
    "precision": ("--precision", {"choices": list(PRECISIONS)},
                  "auto: bf16 on GPUs that compute it natively, fp16 + GradScaler on older "
                  "GPUs, fp32 on a CPU"),
    "workers": ("--workers", {"type": int}, "data-loader processes per training process "
                                            "(default: up to 8; profiles set their own)"),
    "seed": ("--seed", {"type": int}, "seeds every random draw of the run"),
    "checkpoint_every": ("--checkpoint-every", {"type": int},
                         "keep epoch_NNNN.pt every N epochs (last.pt: every epoch)"),
    "checkpoint_every_steps": ("--checkpoint-every-steps", {"type": int},
                               "also rewrite last.pt every N steps (0: only per epoch)"),
    "log_every": ("--log-every", {"type": int}, "steps between progress updates"),
    "compile": ("--compile", {"action": BOOL},
                "torch.compile the model: on a GPU about 2.5x faster steps after minutes of "
                "compiling (docs/benchmarks.md); off by default"),
}


def keep_hint(field: str, value) -> str | None:
    """The option that sets ``field`` back to ``value`` (for resume errors)."""
    if field not in OPTIONS or value is None:
        return None
    flag, kwargs, _ = OPTIONS[field]
    if field == "depthwise_separable":  # the option says the opposite
        return "dropping --standard-convs" if value else "--standard-convs"
    if kwargs.get("action") is BOOL:
        return flag if value else "--no-" + flag[2:]
    if isinstance(value, (list, tuple)):
        return f"{flag} {' '.join(str(v) for v in value)}"
    return f"{flag} {value}"


def as_options(fields: dict) -> list[str]:
    """Command-line options that set ``fields`` (``{"epochs": 1}`` -> ``["--epochs", "1"]``)."""
    args = []
    for name, value in fields.items():
        if name not in OPTIONS or name == "depthwise_separable":
            raise ValueError(f"{name!r} cannot be passed as an option here; set it in the "
                             f"profile's recipe instead")
        args += keep_hint(name, value).split()
    return args


def _dest(name: str) -> str:
    return "cfg__" + name.replace(".", "__")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``jepa-lite pretrain`` (shared with ``python -m jepa_lite.pretrain``)."""
    from jepa_lite.train import TrainConfig

    p.add_argument("--data-root", help="ImageFolder root with train/ (default: the profile's "
                                       "generated data, or the checkpoint's with --resume)")
    p.add_argument("--out", required=True, help="run folder: last.pt, metrics.jsonl")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out with its own settings")
    p.add_argument("--profile", choices=list(PROFILES),
                   help="start from a profile's recipe instead of the paper's defaults")
    p.add_argument("--paper-exact", action="store_true",
                   help="the authors' code where it differs from our defaults: official masks, "
                        "EMA stepped per epoch, zero-initialised residual BatchNorm, "
                        "micro-batch 128")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                   help="auto: the GPU when there is one (under torchrun: cuda:LOCAL_RANK)")
    defaults = asdict(TrainConfig())
    for name, (flag, kwargs, text) in OPTIONS.items():
        if name.startswith("masking."):
            default = defaults["masking"][name.split(".", 1)[1]]
        else:
            default = defaults[name]
        if name == "depthwise_separable":
            default = False
        elif isinstance(default, tuple):
            default = " ".join(str(v) for v in default)
        if kwargs.get("type") in (int, float) and "metavar" not in kwargs:
            kwargs = {**kwargs, "metavar": "N" if kwargs["type"] is int else "X"}
        shown = "" if default is None or "default" in text else f" (default: {default})"
        p.add_argument(flag, dest=_dest(name), default=argparse.SUPPRESS, help=text + shown,
                       **kwargs)


def profile_fields(name: str, method: str = "cnn-jepa") -> dict:
    """The config fields a profile sets for a method (its recipe; not the seed)."""
    return PROFILES[name].recipe(method)


def check_method_options(given: list[str], method: str) -> None:
    """Refuse an option that only another method reads (``--temperature`` with byol)."""
    for name in given:
        readers = owners(name)
        if readers and method not in readers:
            flag = OPTIONS[name][0]
            names = " and ".join([", ".join(readers[:-1]), readers[-1]] if readers[1:] else readers)
            raise ValueError(f"{flag} is an option of {names}; {method} does not "
                             f"use it: drop {flag}, or choose --method {readers[0]}")


def config_from_args(args: argparse.Namespace):
    """``(TrainConfig, data_root)`` from the parsed options (see the module docstring)."""
    from jepa_lite.checkpoint import load_checkpoint
    from jepa_lite.train import PAPER_EXACT, TrainConfig

    last = Path(args.out).expanduser() / "last.pt"
    if args.resume and not last.is_file():
        raise FileNotFoundError(f"--resume: no checkpoint {last} to resume from; drop --resume "
                                f"to start a new run there")
    stored = load_checkpoint(last, mmap=True) if args.resume else None
    if stored is not None and "data" not in stored:
        stored = None  # an old checkpoint: pretrain() explains why it cannot resume it
    given = [name for name in OPTIONS if hasattr(args, _dest(name))]
    cli = {name: getattr(args, _dest(name)) for name in given}
    cli = {k: tuple(v) if isinstance(v, list) else v for k, v in cli.items()}
    method = cli.get("method") or (stored["config"].get("method", "cnn-jepa") if stored
                                   else "cnn-jepa")
    check_method_options(given, method)
    fields = dict(stored["config"]) if stored else {}
    if args.profile:
        fields.update(profile_fields(args.profile, method))
    if args.paper_exact:
        fields.update(PAPER_EXACT)
    masking = dict(fields.get("masking", MaskOptions().to_dict()))
    for name, value in cli.items():
        if name.startswith("masking."):
            masking[name.split(".", 1)[1]] = value
        else:
            fields[name] = value
    fields["masking"] = MaskOptions(**masking).to_dict()
    fields["method"] = method
    cfg = TrainConfig(**fields)
    if stored is None and "warmup_epochs" not in cli:
        cfg = replace(cfg, warmup_epochs=min(cfg.warmup_epochs, cfg.epochs))
    if stored is None and not args.profile and "workers" not in cli:
        cfg = replace(cfg, workers=min(8, os.cpu_count() or 1))  # loader processes
    data_root = args.data_root
    if data_root is None and stored is not None:
        data_root = stored["data"]["root"]
    if data_root is None and args.profile and PROFILES[args.profile].synthetic is not None:
        from jepa_lite.data import ensure_synthetic

        data_root = ensure_synthetic(PROFILES[args.profile].synthetic)
    if data_root is None:
        raise ValueError("pretrain needs --data-root DIR (an ImageFolder root with train/), "
                         "or --profile smoke|demo for generated data")
    return cfg, data_root


def run(args: argparse.Namespace) -> int:
    from jepa_lite import train

    cfg, data_root = config_from_args(args)
    try:
        last = train.pretrain(cfg, data_root, args.out, resume=args.resume, device=args.device,
                              hint=keep_hint)
        if distributed.is_main():
            print(f"done: {last}; metrics in {last.parent / 'metrics.jsonl'}")
    finally:
        distributed.teardown()
    return 0


def build_parser(prog: str = "python -m jepa_lite.pretrain") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    add_arguments(p)
    return p


def stopped_message(out) -> str:
    """What an interrupted run has kept, and the command that continues it."""
    from jepa_lite import runs

    info = runs.state(out)
    if info["epochs"] is None:
        return f"stopped before the first checkpoint: nothing in {out} to resume"
    return (f"stopped: {runs.describe({**info, 'status': 'stopped'})} in its last checkpoint; "
            f"continue with: jepa-lite pretrain --out {out} --resume")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def terminate(signum, frame):  # a preemption notice (or torchrun stopping its children)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    who = f" (rank {os.environ['RANK']})" if distributed.launched() else ""
    try:
        return run(args)
    except USER_ERRORS as e:  # bad input: its message says what to change, no traceback
        print(f"jepa-lite pretrain{who}: error: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # a bug or an out-of-memory: the traceback, then a hint
        traceback.print_exc()
        print(f"jepa-lite pretrain{who}: {hint(e)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        if distributed.rank() == 0 and os.environ.get("RANK", "0") == "0":
            print(f"jepa-lite pretrain: {stopped_message(args.out)}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

