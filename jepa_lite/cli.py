"""The ``jepa-lite`` console script: parses arguments and calls the package."""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from pathlib import Path

from jepa_lite import pretrain
from jepa_lite.config import PROFILES
from jepa_lite.errors import USER_ERRORS, hint


def _course(args) -> int:
    from jepa_lite.course import run_course

    results, summary = run_course(args.profile, args.only, args.data_root, args.out,
                                  args.device, args.seed, args.timeout,
                                  getattr(args, "run", None), getattr(args, "micro_batch", None))
    failed = [r for r in results if r.status != "ok"]
    for r in failed:
        print(f"chapter {r.chapter} FAILED at {r.error}", file=sys.stderr)
    print(f"{len(results) - len(failed)} of {len(results)} chapters ok; summary: {summary}")
    return 1 if failed else 0


def _sweep(args) -> int:
    from jepa_lite import sweep
    from jepa_lite.course import run_course

    axes = dict(sweep.parse_axis(factor, values) for factor, *values in args.axis or [])
    results, summary = run_course(args.profile, ["09"], args.data_root, args.out, args.device,
                                  args.seed, args.timeout, extra={"AXES": axes or None})
    for r in results:
        if r.status != "ok":
            print(f"chapter {r.chapter} FAILED at {r.error}", file=sys.stderr)
    print(f"sweep {'done' if all(r.status == 'ok' for r in results) else 'stopped'}; "
          f"summary: {summary}; points: {summary.parent / '09_ablations' / 'sweep.json'}")
    return 0 if all(r.status == "ok" for r in results) else 1


def _make_data(args) -> int:
    from jepa_lite import data

    if args.kind == "synthetic":
        spec = data.SyntheticSpec(classes=args.classes, per_class=args.per_class,
                                  val_per_class=args.val_per_class or max(2, args.per_class // 4),
                                  size=args.size, seed=args.seed, kind=args.scenes)
        existed = (Path(args.out) / "dataset.json").is_file()
        out = data.make_synthetic(args.out, spec)
        print(f"{'reusing' if existed else 'generated'} data set {spec.name} in {out}")
    else:
        if args.imagenet is None:
            raise ValueError("make-data imagenet100 needs --imagenet ROOT (the ImageNet-1k "
                             "folder holding train/ and val/)")
        out = data.make_imagenet100(args.imagenet, args.out)
        print(f"ImageNet-100 subset (100 classes, symlinks) in {out}")
    return 0


def _probe(args) -> int:
    import torch

    from jepa_lite import distributed, probes
    from jepa_lite.backbone import dense_trunk
    from jepa_lite.runtime import resolve_device

    if args.random_init == (args.checkpoint is not None):
        raise ValueError("probe needs either --checkpoint CKPT or --random-init --arch ARCH")
    device = distributed.setup(resolve_device(args.device))  # under torchrun: one rank
    try:
        size = args.image_size
        if args.random_init:
            torch.manual_seed(args.seed)
            encoder, key = dense_trunk(args.arch), f"random-init:{args.arch}:seed{args.seed}"
        else:
            encoder = probes.encoder_from_checkpoint(args.checkpoint)
            key = probes.checkpoint_key(args.checkpoint)
            if size is None:
                from jepa_lite.checkpoint import load_checkpoint

                size = load_checkpoint(args.checkpoint, mmap=True)["config"].get("image_size")
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


def _results(args) -> int:
    from jepa_lite.report import results_page

    print(f"results page: {results_page(args.outputs, args.dest)}")
    return 0


def _bench(args) -> int:
    from jepa_lite import bench

    print(bench.report(bench.from_args(args)))
    return 0


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive number of seconds")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="jepa-lite",
        description="CNN-JEPA workbook: run the chapters, prepare data, pretrain.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    defaults = {"formatter_class": argparse.ArgumentDefaultsHelpFormatter}
    c = sub.add_parser("course", help="run the chapters with papermill", **defaults)
    c.add_argument("--profile", default="smoke", choices=list(PROFILES),
                   help="how big a run is (see README: Profiles)")
    c.add_argument("--only", nargs="+", metavar="CHAPTER",
                   help="chapter numbers or names, e.g. --only 0 01 masking")
    c.add_argument("--data-root", help="ImageFolder root (train/, val/); smoke/demo generate "
                                       "their own data when omitted")
    c.add_argument("--out", default=None, help="output folder; outputs/ when omitted")
    c.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                   help="auto: the GPU when there is one, else the CPU")
    c.add_argument("--seed", type=int, default=0, help="random seed of every chapter")
    c.add_argument("--timeout", type=_positive_int, default=None,
                   help="seconds per cell; none when omitted")
    c.add_argument("--run", metavar="DIR", default=argparse.SUPPRESS,
                   help="chapter 04's pretraining run folder, trained in a process of its own "
                        "and resumed where it stopped; chapters 05-06 read it (default: "
                        "OUT/04_pretraining/run)")
    c.add_argument("--micro-batch", type=int, default=argparse.SUPPRESS,
                   help="chapter 04: images per forward pass, e.g. 64 on a 16 GB GPU "
                        "(default: the profile's; full: 128)")
    c.set_defaults(func=_course)

    from jepa_lite.sweep import DEFAULT

    s = sub.add_parser("sweep", help="chapter 09's ablations over a grid of your own "
                                     "(papermill), resumed where it stopped", **defaults,
                       description="Runs chapter 09 with papermill: one pretraining run per "
                                   "setting, each factor changed alone from the paper's "
                                   "default (" + ", ".join(f"{k}={v}" for k, v in
                                                           DEFAULT.items()) + "), each run "
                                   "probed; finished runs are kept in OUT/09_ablations/"
                                   "sweep.json, so running it again goes on where it stopped.")
    s.add_argument("--profile", default="smoke", choices=list(PROFILES),
                   help="the recipe and data of every run (the profile's many-run recipe)")
    s.add_argument("--axis", nargs="+", action="append", metavar=("FACTOR", "VALUE"),
                   help="a factor and its values, e.g. --axis kernel_size 3 5 7 9; repeat for "
                        "more factors (" + ", ".join(DEFAULT) + "); none: the profile's grid")
    s.add_argument("--data-root", help="ImageFolder root (train/, val/); smoke/demo generate "
                                       "their own data when omitted")
    s.add_argument("--out", default=None, help="output folder; outputs/ when omitted")
    s.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    s.add_argument("--seed", type=int, default=0, help="random seed of every run")
    s.add_argument("--timeout", type=_positive_int, default=None,
                   help="seconds per cell; none when omitted")
    s.set_defaults(func=_sweep)

    t = sub.add_parser("pretrain", help="pretrain a CNN-JEPA encoder (torchrun: many GPUs)",
                       description=pretrain.__doc__.split("\n\n")[0] + " Under torchrun: "
                       "torchrun --nproc_per_node N -m jepa_lite.pretrain [the same options]")
    pretrain.add_arguments(t)
    t.set_defaults(func=pretrain.run)

    pr = sub.add_parser("probe", help="k-NN and linear probes of a frozen encoder", **defaults,
                        description="k-NN and linear probes of a frozen encoder. Under "
                                    "torchrun (torchrun --nproc_per_node N -m jepa_lite.cli "
                                    "probe ...) every process extracts a share of the features.")
    pr.add_argument("--checkpoint", help="a pretraining checkpoint (its EMA target encoder)")
    pr.add_argument("--random-init", action="store_true",
                    help="probe a randomly initialised encoder of --arch instead")
    pr.add_argument("--arch", default="resnet50", help="with --random-init")
    pr.add_argument("--data-root", required=True, help="ImageFolder root with train/ and val/")
    pr.add_argument("--image-size", type=int, default=None,
                    help="evaluation size (default: the checkpoint's pretraining size; 224 "
                         "with --random-init)")
    pr.add_argument("--out", required=True, help="folder for probe.json and cached features")
    pr.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    pr.add_argument("--k", type=int, default=200, help="k-NN neighbours")
    pr.add_argument("--temperature", type=float, default=0.1, help="k-NN temperature")
    pr.add_argument("--epochs", type=int, default=90, help="linear-probe epochs")
    pr.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1))
    pr.add_argument("--seed", type=int, default=0)
    pr.add_argument("--overwrite-features", action="store_true",
                    help="replace feature banks in --out that another encoder or data set made")
    pr.set_defaults(func=_probe)

    d = sub.add_parser("make-data", help="generate or prepare a data set", **defaults)
    d.add_argument("kind", choices=["synthetic", "imagenet100"])
    d.add_argument("--out", required=True)
    d.add_argument("--imagenet", help="imagenet100: the ImageNet-1k root (train/, val/)")
    d.add_argument("--classes", type=int, default=10, help="synthetic: object kinds (2-10)")
    d.add_argument("--per-class", type=int, default=64, help="training images per class")
    d.add_argument("--val-per-class", type=int, default=None,
                   help="validation images per class; per-class / 4 (at least 2) when omitted")
    d.add_argument("--size", type=int, default=64, help="image side in pixels, a multiple of 16 "
                                                            "(112: a 7x7 grid for -s16 trunks)")
    d.add_argument("--seed", type=int, default=0, help="synthetic: the same seed, the same files")
    d.add_argument("--scenes", choices=["scenes", "busy"], default="scenes",
                   help="synthetic: pale objects on plain grey (scenes), or objects among "
                        "textures, distractors, occluders and uneven light (busy)")
    d.set_defaults(func=_make_data)

    r = sub.add_parser("results", help="a Markdown page of a finished course's numbers and "
                                       "figures (docs/results)", **defaults)
    r.add_argument("outputs", help="the course's output folder (its --out)")
    r.add_argument("--dest", default="docs/results", help="folder of the page and its figures")
    r.set_defaults(func=_results)

    from jepa_lite import bench

    b = sub.add_parser("bench", help="a CNN-JEPA step against a supervised step and the "
                                     "authors' form: speed, memory, the loader", **defaults,
                       description=bench.DESCRIPTION)
    bench.add_arguments(b)
    b.set_defaults(func=_bench)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except USER_ERRORS as e:  # bad input: its message says what to change, no traceback
        print(f"jepa-lite {args.command}: error: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # a bug or an out-of-memory: the traceback, then a hint
        traceback.print_exc()
        print(f"jepa-lite {args.command}: {hint(e)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        if args.command == "pretrain":
            print(f"jepa-lite pretrain: {pretrain.stopped_message(args.out)}", file=sys.stderr)
        else:
            print(f"jepa-lite {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
