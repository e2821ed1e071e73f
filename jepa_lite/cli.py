"""The ``jepa-lite`` console script: the one place that parses arguments.

``jepa-lite pretrain``'s options are generated from the fields of ``config.TrainConfig`` and
of the methods' options (one schema: each field's flag, help and bounds); every other
command's options are written here. Values a run cannot use are refused while parsing, with
one line that names the option and the fix.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import traceback
import typing
from pathlib import Path

from jepa_lite import config
from jepa_lite.config import TrainConfig
from jepa_lite.course.profiles import PROFILES
from jepa_lite.data import scenes
from jepa_lite.errors import UsageError, hint, keep_tracebacks, user_message


# --------------------------------------------------------------------------- value types
def _number(kind, low=None, above=None, what="a number"):
    """An argparse type: ``kind`` of the text, at least ``low`` / more than ``above``."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text} is not a finite number")
        if low is not None and value < low:
            raise argparse.ArgumentTypeError(f"{text} is less than {low}: give {low} or more")
        if above is not None and value <= above:
            raise argparse.ArgumentTypeError(f"{text} must be more than {above}")
        return value
    return parse


positive_int = _number(int, low=1, what="a whole number")
count = _number(int, low=0, what="a whole number")
positive_float = _number(float, above=0)


def folder(text: str) -> Path:
    """A folder to write into: it may not exist yet, but it may not be a file (nor lie
    below one)."""
    path = Path(text).expanduser()
    for p in (path, *path.parents):
        if p.exists() and not p.is_dir():
            raise argparse.ArgumentTypeError(
                f"{p} is a file, not a folder: choose a folder"
                + ("" if p == path else f" for {path}"))
    return path


DEVICES = ["auto", "cpu", "cuda"]
BENCH_KINDS = ("supervised", "cnn-jepa", "authors'")  # bench.KINDS, without importing torch
VITS = ("vit_micro", "vit_tiny", "vit_small", "vit_base")  # encoders.vit.SIZES, likewise


# --------------------------------------------------------------------------- pretrain
def add_config_options(p: argparse.ArgumentParser) -> None:
    """One option per field of a run (``config.schema``): the run's own fields, then the
    methods' options, each saying which methods read it and its defaults."""
    p.add_argument("--data-root", help="ImageFolder root with train/ (default: the profile's "
                                       "generated data, or the checkpoint's with --resume)")
    p.add_argument("--out", required=True, type=folder,
                   help="run folder: config.json, last.pt, metrics.jsonl")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out with its own settings")
    p.add_argument("--config", metavar="FILE",
                   help="start from a configuration file (a run folder's config.json)")
    p.add_argument("--profile", choices=list(PROFILES),
                   help="start from a profile's recipe instead of the paper's defaults")
    p.add_argument("--paper-exact", action="store_true",
                   help="the authors' code where it differs from our defaults: official masks, "
                        "EMA stepped per epoch, zero-initialised residual BatchNorm, "
                        "micro-batch 128")
    p.add_argument("--device", default="auto", choices=DEVICES,
                   help="auto: the GPU when there is one (under torchrun: cuda:LOCAL_RANK)")
    base = TrainConfig()
    for flag, f, kind, defaults in config.schema():
        kw: dict = {"dest": f.name, "default": argparse.SUPPRESS}
        text = f.metadata["help"]
        if defaults:
            methods = list(defaults)
            shown = {str(_shown(v)) for v in defaults.values()}
            default = (_shown(next(iter(defaults.values()))) if len(shown) == 1 else
                       ", ".join(f"{m} {_shown(v)}" for m, v in defaults.items()))
            tag = "" if len(methods) == len(config.METHOD_OPTIONS) else f"[{', '.join(methods)}] "
            text = f"{tag}{text} (default: {default})"
        elif f.name != "method" and getattr(base, f.name) is not None:
            text += f" (default: {_shown(getattr(base, f.name))})"
        args = typing.get_args(kind)
        if f.name == "method":
            kw["choices"] = list(config.METHOD_OPTIONS)
            text += " (default: cnn-jepa)"
        elif kind is bool:
            kw["action"] = argparse.BooleanOptionalAction
        elif typing.get_origin(kind) is typing.Literal:
            kw["choices"] = list(args)
        elif typing.get_origin(kind) is tuple:
            kw.update(type=args[0], nargs=len(args), metavar=f.metadata["metavar"])
        else:
            number = next((a for a in (kind, *args) if a in (int, float)), str)
            kw.update(type={float: _number(float)}.get(number, number),
                      metavar={int: "N", float: "X"}.get(number, "NAME"))
        p.add_argument(flag, help=text, **kw)


def _shown(value) -> str:
    return " ".join(map(str, value)) if isinstance(value, tuple) else str(value)


def pretrain_config(args: argparse.Namespace) -> tuple[TrainConfig, Path]:
    """``(TrainConfig, data_root)`` of ``jepa-lite pretrain``'s options: the paper's defaults,
    or a configuration file, a profile's recipe, or (``--resume``) the checkpoint's own
    configuration; then ``--paper-exact`` and the options given on the command line. A
    configuration the run cannot use is refused here, before anything is loaded."""
    from jepa_lite import train
    from jepa_lite.checkpoint import resume_checkpoint

    stored = resume_checkpoint(Path(args.out), mmap=True, say=False) if args.resume else None
    given = {f.name: getattr(args, f.name) for _, f, _, _ in config.schema()
             if hasattr(args, f.name)}
    given = {k: tuple(v) if isinstance(v, list) else v for k, v in given.items()}
    cfg = TrainConfig.from_dict(stored["config"]) if stored is not None else TrainConfig()
    if args.config:  # a whole configuration: it replaces the defaults (a checkpoint's too)
        cfg = TrainConfig.from_file(args.config)
    method = given.pop("method", cfg.method.name)
    if method != cfg.method.name:
        cfg = cfg.with_changes(method=method)  # its defaults, none of the other's settings
    if args.profile:
        cfg = cfg.with_changes(strict=False, **PROFILES[args.profile].changes(method))
    if args.paper_exact:
        cfg = config.paper_exact(cfg)
    cfg = cfg.with_changes(**given)
    train.check_config(cfg)
    data_root = args.data_root
    if data_root is None and stored is not None:
        data_root = stored["data"]["root"]
    if data_root is None and args.profile and PROFILES[args.profile].synthetic is not None:
        from jepa_lite.data.scenes import ensure_synthetic

        data_root = ensure_synthetic(PROFILES[args.profile].synthetic)
    if data_root is None:
        raise UsageError("pretrain needs --data-root DIR (an ImageFolder root with train/), "
                         "or --profile smoke|demo for generated data")
    return cfg, Path(data_root)


def _pretrain(args) -> int:
    from jepa_lite import distributed, train

    cfg, data_root = pretrain_config(args)
    try:
        last = train.pretrain(cfg, data_root, args.out, resume=args.resume, device=args.device)
        if distributed.is_main():
            print(f"done: {last}; metrics in {last.parent / 'metrics.jsonl'}")
    finally:
        distributed.teardown()
    return 0


def _pretrain_parser(sub, defaults: dict) -> None:
    p = sub.add_parser("pretrain", help="pretrain an encoder (CNN-JEPA or another method; "
                                        "torchrun: many GPUs)",
                       description="Pretrain a ResNet with CNN-JEPA (or C-JEPA, SimCLR, BYOL, "
                                   "VICReg, or the supervised reference: --method), in one "
                                   "process or many. Under torchrun: "
                                   "torchrun --nproc_per_node N -m jepa_lite.pretrain [the "
                                   "same options]. Options marked [method, ...] belong to "
                                   "those methods only.")
    add_config_options(p)
    p.set_defaults(func=_pretrain)


# --------------------------------------------------------------------------- the others
def _course(args) -> int:
    from jepa_lite.course.runner import run_course

    results, summary = run_course(args.profile, args.only, args.data_root, args.out,
                                  args.device, args.seed, args.timeout,
                                  getattr(args, "run", None), getattr(args, "micro_batch", None),
                                  pending=args.pending)
    failed = [r for r in results if r.status != "ok"]
    for r in failed:
        print(f"chapter {r.chapter} FAILED at {r.error}", file=sys.stderr)
    print(f"{len(results) - len(failed)} of {len(results)} chapters ok; summary: {summary}")
    return 1 if failed else 0


def _course_parser(sub, defaults: dict) -> None:
    p = sub.add_parser("course", help="run the chapters with papermill", **defaults)
    p.add_argument("--profile", default="smoke", choices=list(PROFILES),
                   help="how big a run is (README.md, \"Profiles\")")
    p.add_argument("--only", nargs="+", metavar="CHAPTER",
                   help="chapter numbers or names, e.g. --only 0 01 masking")
    p.add_argument("--data-root", help="ImageFolder root (train/, val/); smoke/demo generate "
                                       "their own data when omitted")
    p.add_argument("--out", default=None, type=folder,
                   help="output folder; outputs/ when omitted")
    p.add_argument("--device", default="auto", choices=DEVICES,
                   help="auto: the GPU when there is one, else the CPU")
    p.add_argument("--seed", type=count, default=0, help="random seed of every chapter")
    p.add_argument("--pending", action="store_true",
                   help="only the chapters (of --only, else all) not yet run ok into --out with "
                        "this profile and seed: a course cut short goes on where it stopped")
    p.add_argument("--timeout", type=positive_int, default=None,
                   help="seconds per cell; none when omitted")
    p.add_argument("--run", metavar="DIR", default=argparse.SUPPRESS, type=folder,
                   help="chapter 04's pretraining run folder, trained in a process of its own "
                        "and resumed where it stopped; chapters 05-06 read it (default: "
                        "OUT/04_pretraining/run)")
    p.add_argument("--micro-batch", type=positive_int, default=argparse.SUPPRESS,
                   help="chapter 04: images per forward pass, e.g. 64 on a 16 GB GPU "
                        "(default: the profile's; full: 128)")
    p.set_defaults(func=_course)


def _sweep(args) -> int:
    from jepa_lite.course import sweep
    from jepa_lite.course.runner import run_course

    axes = dict(sweep.parse_axis(factor, values) for factor, *values in args.axis or [])
    results, summary = run_course(args.profile, ["09"], args.data_root, args.out, args.device,
                                  args.seed, args.timeout, extra={"AXES": axes or None})
    for r in results:
        if r.status != "ok":
            print(f"chapter {r.chapter} FAILED at {r.error}", file=sys.stderr)
    print(f"sweep {'done' if all(r.status == 'ok' for r in results) else 'stopped'}; "
          f"summary: {summary}; points: {summary.parent / '09_ablations' / 'sweep.json'}")
    return 0 if all(r.status == "ok" for r in results) else 1


def _sweep_parser(sub, defaults: dict) -> None:
    from jepa_lite.course.profiles import ABLATION_DEFAULT

    p = sub.add_parser("sweep", help="chapter 09's ablations over a grid of your own "
                                     "(papermill), resumed where it stopped", **defaults,
                       description="Runs chapter 09 with papermill: one pretraining run per "
                                   "setting, each factor changed alone from the paper's "
                                   "default (" + ", ".join(f"{k}={v}" for k, v in
                                                           ABLATION_DEFAULT.items()) + "), "
                                   "each run probed; finished runs are kept in "
                                   "OUT/09_ablations/sweep.json, so running it again goes on "
                                   "where it stopped.")
    p.add_argument("--profile", default="smoke", choices=list(PROFILES),
                   help="the recipe and data of every run (the profile's many-run recipe)")
    p.add_argument("--axis", nargs="+", action="append", metavar=("FACTOR", "VALUE"),
                   help="a factor and its values, e.g. --axis kernel_size 3 5 7 9; repeat for "
                        "more factors (" + ", ".join(ABLATION_DEFAULT) + "); none: the "
                        "profile's grid")
    p.add_argument("--data-root", help="ImageFolder root (train/, val/); smoke/demo generate "
                                       "their own data when omitted")
    p.add_argument("--out", default=None, type=folder,
                   help="output folder; outputs/ when omitted")
    p.add_argument("--device", default="auto", choices=DEVICES)
    p.add_argument("--seed", type=count, default=0, help="random seed of every run")
    p.add_argument("--timeout", type=positive_int, default=None,
                   help="seconds per cell; none when omitted")
    p.set_defaults(func=_sweep)


def _make_data(args) -> int:
    from jepa_lite.data import imagenet100

    if args.kind == "synthetic":
        spec = scenes.SyntheticSpec(classes=args.classes, per_class=args.per_class,
                                  val_per_class=args.val_per_class or max(2, args.per_class // 4),
                                  size=args.size, seed=args.seed, kind=args.scenes)
        existed = (Path(args.out) / "dataset.json").is_file()
        out = scenes.make_synthetic(args.out, spec, args.workers)
        print(f"{'reusing' if existed else 'generated'} data set {spec.name} in {out}")
    else:
        if args.imagenet is None:
            raise UsageError("make-data imagenet100 needs --imagenet ROOT (the ImageNet-1k "
                             "folder holding train/ and val/)")
        out = imagenet100.make_imagenet100(args.imagenet, args.out)
        print(f"ImageNet-100 subset (100 classes, symlinks) in {out}")
    return 0


def _make_data_parser(sub, defaults: dict) -> None:
    p = sub.add_parser("make-data", help="generate or prepare a data set", **defaults)
    p.add_argument("kind", choices=["synthetic", "imagenet100"])
    p.add_argument("--out", required=True, type=folder)
    p.add_argument("--imagenet", help="imagenet100: the ImageNet-1k root (train/, val/)")
    p.add_argument("--classes", type=positive_int, default=10,
                   help="synthetic: object kinds (2-10)")
    p.add_argument("--per-class", type=positive_int, default=64,
                   help="training images per class")
    p.add_argument("--val-per-class", type=positive_int, default=None,
                   help="validation images per class; per-class / 4 (at least 2) when omitted")
    p.add_argument("--size", type=positive_int, default=64,
                   help="image side in pixels, a multiple of 16 (112: a 7x7 grid for -s16 "
                        "trunks)")
    p.add_argument("--seed", type=count, default=0, help="synthetic: the same seed, the same files")
    p.add_argument("--scenes", choices=["scenes", "busy"], default="scenes",
                   help="synthetic: pale objects on plain grey (scenes), or objects among "
                        "textures, distractors, occluders and uneven light (busy)")
    p.add_argument("--workers", type=positive_int, default=None,
                   help="synthetic: threads that draw the images (default: one per CPU core); "
                        "the files are the same with any number")
    p.set_defaults(func=_make_data)


def _probe(args) -> int:

    from jepa_lite import distributed
    from jepa_lite.eval import probes
    from jepa_lite.runtime import resolve_device

    if args.random_init == (args.checkpoint is not None):
        raise UsageError("probe needs either --checkpoint CKPT or --random-init --arch ARCH")
    from jepa_lite.checkpoint import PROBE_FOLDER, check_out_folder

    check_out_folder(args.out, PROBE_FOLDER, "probe results")
    device = distributed.setup(resolve_device(args.device))  # under torchrun: one rank
    try:
        size = args.image_size
        if args.random_init:
            encoder, key = probes.random_init(TrainConfig(arch=args.arch), args.seed)
        else:
            encoder = probes.encoder_from_checkpoint(args.checkpoint)
            key = probes.checkpoint_key(args.checkpoint)
            size = size or probes.checkpoint_config(args.checkpoint).image_size
        result = probes.evaluate(encoder, key, args.data_root, args.out, size or 224,
                                 device, args.k, args.temperature, args.epochs,
                                 workers=args.workers, seed=args.seed,
                                 overwrite=args.overwrite_features)
    finally:
        distributed.teardown()
    if result is not None:
        print(f"k-NN top-1 {result['knn_top1']:.4f}  linear top-1 {result['linear_top1']:.4f} "
              f"(honest {result['linear_honest_top1']:.4f}); {Path(args.out) / 'probe.json'}")
    return 0


def _probe_parser(sub, defaults: dict) -> None:
    p = sub.add_parser("probe", help="k-NN and linear probes of a frozen encoder", **defaults,
                        description="k-NN and linear probes of a frozen encoder. Under "
                                    "torchrun (torchrun --nproc_per_node N -m jepa_lite.cli "
                                    "probe ...) every process extracts a share of the features.")
    p.add_argument("--checkpoint", help="a pretraining checkpoint (the encoder the paper "
                                         "probes: CNN-JEPA's EMA target, a baseline's backbone)")
    p.add_argument("--random-init", action="store_true",
                    help="probe a randomly initialised encoder of --arch instead")
    p.add_argument("--arch", default="resnet50", help="with --random-init")
    p.add_argument("--data-root", required=True, help="ImageFolder root with train/ and val/")
    p.add_argument("--image-size", type=positive_int, default=None,
                    help="evaluation size (default: the checkpoint's pretraining size; 224 "
                         "with --random-init)")
    p.add_argument("--out", required=True, type=folder,
                    help="folder for probe.json and cached features")
    p.add_argument("--device", default="auto", choices=DEVICES)
    p.add_argument("--k", type=positive_int, default=200, help="k-NN neighbours")
    p.add_argument("--temperature", type=positive_float, default=0.1, help="k-NN temperature")
    p.add_argument("--epochs", type=positive_int, default=90, help="linear-probe epochs")
    p.add_argument("--workers", type=count, default=None,
                   help="loader processes for the features (default: none on a CPU, whose "
                        "cores the encoder needs; a core each, at most 8, on a GPU)")
    p.add_argument("--seed", type=count, default=0)
    p.add_argument("--overwrite-features", action="store_true",
                    help="replace feature banks in --out that another encoder or data set made")
    p.set_defaults(func=_probe)


def _results(args) -> int:
    from jepa_lite.course.report import results_page
    from jepa_lite.course.runner import list_chapters

    try:
        chapters = [c.stem for c in list_chapters()]
    except FileNotFoundError:  # no notebooks folder: the page lists the chapters it has
        chapters = None
    print(f"results page: {results_page(args.outputs, args.dest, args.replace, chapters)}")
    return 0


def _results_parser(sub, defaults: dict) -> None:
    p = sub.add_parser("results", help="a Markdown page of a course's numbers and figures "
                                       "(docs/results), chapter by chapter", **defaults)
    p.add_argument("outputs", help="the course's output folder (its --out)")
    p.add_argument("--dest", default="docs/results", type=folder,
                   help="folder of the page and its figures")
    p.add_argument("--replace", action="store_true",
                   help="a chapter already on the page from another commit is replaced by "
                        "this course's run of it (kept otherwise)")
    p.set_defaults(func=_results)


def _bench(args) -> int:
    from jepa_lite.course import bench

    if args.batch_size < 4:
        raise UsageError(f"--batch-size {args.batch_size}: the bench needs at least 4 (the "
                         f"saved bytes per image are the slope between batch / 2 and batch, "
                         f"and the authors' BatchNorm needs two visible positions in that half)")
    r = bench.run(args.device, args.arch, args.image_size, args.batch_size, args.steps,
                  args.warmup, args.precisions, args.workers, args.loader_images,
                  args.loader_batches, args.data, args.compile, args.methods,
                  args.loader_root, args.cache, args.kinds, args.vit)
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=1))
    print(bench.report(r))
    return 0


def _bench_parser(sub, defaults: dict) -> None:
    from jepa_lite.course.bench import DESCRIPTION

    p = sub.add_parser("bench", help="a CNN-JEPA step against a supervised step and the "
                                     "authors' form: speed, memory, the loader", **defaults,
                       description=DESCRIPTION)
    p.add_argument("--device", default="auto", choices=DEVICES,
                   help="auto: the GPU when there is one")
    p.add_argument("--arch", default="resnet18", help="ResNet trunk, e.g. resnet50")
    p.add_argument("--image-size", type=positive_int, default=128,
                   help="pixels, a multiple of 32")
    p.add_argument("--batch-size", type=positive_int, default=16,
                   help="images per step (at least 4)")
    p.add_argument("--steps", type=positive_int, default=5,
                   help="timed steps of each kind (median)")
    p.add_argument("--warmup", type=count, default=2, help="untimed steps of each kind first")
    p.add_argument("--precisions", nargs="+", default=["fp32", "bf16"],
                   choices=["fp32", "bf16", "fp16"], help="autocast precisions to measure")
    p.add_argument("--workers", type=count, nargs="*", default=[1, 2],
                   help="loader workers to measure (none: skip the loader)")
    p.add_argument("--loader-images", type=count, default=128,
                   help="generated 500 x 375 JPEGs for the loader (0: skip the loader)")
    p.add_argument("--loader-batches", type=positive_int, default=6,
                   help="timed batches per loader measurement")
    p.add_argument("--data", type=folder, help="folder for the generated JPEGs (kept, reused); "
                                               "a temporary folder when omitted")
    p.add_argument("--loader-root", type=folder,
                   help="measure the loaders on this image folder (ROOT/train/<class>/<image>, "
                        "e.g. ImageNet-100) instead of generated JPEGs; nothing is written")
    p.add_argument("--methods", nargs="+", choices=list(config.METHOD_OPTIONS), default=None,
                   help="methods whose loader to measure (default: every method that "
                        "trains the --arch ResNet)")
    p.add_argument("--cache", choices=["none", "host", "device"], default="none",
                   help="the device pipeline's decoded-image cache")
    p.add_argument("--kinds", nargs="*", choices=list(BENCH_KINDS), default=list(BENCH_KINDS),
                   help="steps of the step table (none: skip it)")
    p.add_argument("--vit", choices=VITS, default=None,
                   help="also I-JEPA's step and a supervised step on this ViT (16 px "
                        "patches), in the same run (chapter 10)")
    p.add_argument("--json", help="also write every figure to this file")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the supervised and our step (the authors' stays eager)")
    p.set_defaults(func=_bench)


# --------------------------------------------------------------------------- the parser
class Parser(argparse.ArgumentParser):
    """argparse, with a bad option said in one line (and where the options are listed)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (options: {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """``jepa-lite``'s parser: one small function per subcommand, beside its handler."""
    p = Parser(
        prog="jepa-lite",
        description="CNN-JEPA workbook: run the chapters, prepare data, pretrain, probe.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    defaults = {"formatter_class": argparse.ArgumentDefaultsHelpFormatter}
    for add in (_course_parser, _sweep_parser, _pretrain_parser, _probe_parser,
                _make_data_parser, _results_parser, _bench_parser):
        add(sub, defaults)
    return p


def main(argv: list[str] | None = None) -> int:
    from jepa_lite import distributed, runtime

    runtime.skip_final_collection()
    args = build_parser().parse_args(argv)
    who = f" (rank {os.environ['RANK']})" if distributed.launched() else ""
    if args.command == "pretrain":
        def terminate(signum, frame):  # a preemption notice (or torchrun stopping its children)
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, terminate)
    try:
        return args.func(args)
    except Exception as e:
        if keep_tracebacks():
            raise
        said = user_message(e)  # bad input, a full disk, no memory: what to change, one line
        if said is not None:
            print(f"jepa-lite {args.command}{who}: error: {said}", file=sys.stderr)
            return 2
        traceback.print_exc()  # a bug: the traceback, then where to report it
        print(f"jepa-lite {args.command}{who}: {hint(e)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        if args.command != "pretrain":
            print(f"jepa-lite {args.command}: interrupted", file=sys.stderr)
        elif distributed.rank() == 0 and os.environ.get("RANK", "0") == "0":
            from jepa_lite.course.runs import stopped_message

            print(f"jepa-lite pretrain: {stopped_message(args.out)}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
