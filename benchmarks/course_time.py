"""What a profile's course trains, run by run, and the time that implies at given speeds:
computed, not measured.

    python benchmarks/course_time.py --profile gpu --images-per-s 2239
    python benchmarks/course_time.py --profile gpu --bench bench.json   # jepa-lite bench --json

The runs are the chapters' (04: one; 05: the supervised reference; 07: six; 08: five; 09:
the sweep), counted once when two chapters train the same configuration on the same data
(the course links the second to the first). Each run costs epochs x training images /
its method's images per second: one figure for all (``--images-per-s``), or each method's
"loader + step" rate from a ``jepa-lite bench --json`` file (the supervised reference at
CNN-JEPA's rate: one view, one dense pass, no predictor, so no slower). Probing, data
generation, caching and starting processes are left out and said so.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from jepa_lite.config import TrainConfig  # noqa: E402
from jepa_lite.course import compare, sweep
from jepa_lite.course.profiles import PROFILES, Profile
from jepa_lite.methods import METHODS, compared  # noqa: E402


def _key(cfg: TrainConfig) -> str:
    """A run's identity as the course links twins: everything but the operational fields."""
    d = cfg.to_dict()
    return json.dumps({k: v for k, v in d.items() if k not in cfg.operational()},
                      sort_keys=True, default=str)


def course_runs(profile: Profile, train_images: int | None = None) -> list[dict]:
    """Every distinct training run of the profile's course, in chapter order:
    ``{"chapter", "name", "method", "epochs", "images"}`` (images per epoch;
    ``train_images`` for a profile that reads DATA_ROOT)."""
    def images(many: bool) -> int:
        spec = (profile.many_runs_data if many and profile.many_runs_data else
                profile.synthetic)
        if spec is None:
            if train_images is None:
                raise SystemExit(f"the {profile.name} profile reads DATA_ROOT: give "
                                 f"--train-images (ImageNet-100: 126689)")
            return train_images
        return spec.classes * spec.per_class

    planned = [("04", "CNN-JEPA", profile.config(), False)]
    jepa, cjepa = profile.config(many_runs=True), profile.config("cjepa", many_runs=True)
    planned += [("07", n, c, True) for n, c in compare.collapse_variants(jepa, cjepa).items()]
    planned += [("08", m, profile.config(m, many_runs=True), True)
                for m in compared(profile.config(many_runs=True).arch)]
    planned += [("09", p.name, p.config(jepa), True)
                for p in sweep.points(sweep.check_axes(profile.ablations))]
    seen, runs = set(), []
    for chapter, name, cfg, many in planned:
        key = (_key(cfg), images(many))
        if key in seen:
            continue
        seen.add(key)
        runs.append({"chapter": chapter, "name": name, "method": cfg.method.name,
                     "epochs": cfg.epochs, "images": images(many)})
    if profile.supervised_epochs:  # chapter 08 reuses it when its data is chapter 05's
        for chapter, many in (("05", False), ("08", True)):
            if chapter == "08" and images(True) == images(False) and not profile.many_runs_data:
                continue
            runs.append({"chapter": chapter, "name": "supervised", "method": "supervised",
                         "epochs": profile.supervised_epochs, "images": images(many)})
    return sorted(runs, key=lambda r: r["chapter"])


def bench_rates(path: Path, cfg: TrainConfig) -> dict[str, float]:
    """Each method's loader + step images/s from a ``jepa-lite bench --json`` file (the
    device pipeline's best row of each method: its fastest worker count), refused when the
    bench measured another backbone, image size or batch than the profile trains."""
    rates: dict[str, float] = {}
    found = json.loads(path.read_text())
    measured = (found.get("arch"), found.get("image_size"), found.get("batch"))
    if measured != (cfg.arch, cfg.image_size, cfg.batch_size):
        raise SystemExit(f"{path} measured {measured[0]} at {measured[1]} px, batch "
                         f"{measured[2]}; the profile trains {cfg.arch} at {cfg.image_size} px, "
                         f"batch {cfg.batch_size}: run jepa-lite bench --arch {cfg.arch} "
                         f"--image-size {cfg.image_size} --batch-size {cfg.batch_size}")
    for row in found["loader"]:
        if row.get("pipeline", "device") == "device" and row.get("with_step_images_per_s"):
            m = row["method"]
            rates[m] = max(rates.get(m, 0.0), float(row["with_step_images_per_s"]))
    return rates


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="gpu", choices=list(PROFILES))
    rate = ap.add_mutually_exclusive_group(required=True)
    rate.add_argument("--images-per-s", type=float, help="one training speed for every run")
    rate.add_argument("--bench", type=Path, help="a jepa-lite bench --json file")
    ap.add_argument("--train-images", type=int,
                    help="training images of the DATA_ROOT a profile reads (full)")
    args = ap.parse_args(argv)
    profile = PROFILES[args.profile]
    runs = course_runs(profile, args.train_images)
    rates = (bench_rates(args.bench, profile.config()) if args.bench else
             {m: args.images_per_s for m in METHODS})
    rates.setdefault("supervised", rates.get("cnn-jepa", 0.0))
    missing = sorted({r["method"] for r in runs} - {m for m, v in rates.items() if v > 0})
    if missing:
        raise SystemExit(f"no images/s for {', '.join(missing)} in {args.bench}")
    total = 0.0
    print(f"profile {args.profile}: {len(runs)} training runs (computed, not measured)")
    for r in runs:
        seconds = r["epochs"] * r["images"] / rates[r["method"]]
        total += seconds
        print(f"  ch{r['chapter']} {r['name']:18s} {r['epochs']:3d} epochs x {r['images']:6d} "
              f"images at {rates[r['method']]:7.0f} images/s: {seconds:7.0f} s")
    print(f"training: {total:.0f} s = {total / 60:.1f} min; not counted: probes, data "
          f"generation, decoding into the cache, starting processes and kernels")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
