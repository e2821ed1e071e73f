#!/usr/bin/env bash
# The GPU checks of a change, in one call on a lent GPU (docs/benchmarks.md records the
# figures): the bench of this tree (and of OLD, an earlier tree of the package, on the same
# machine, for a ratio that a noisy machine cancels), the five methods' steps side by side,
# and a run through the command line as a user makes it: generated busy scenes, pretraining
# in bf16 with loader workers, a resume, the probes. Usage, from the repository's root:
#     OUT=results_dir bash benchmarks/gpu_check.sh [OLD]
set -euo pipefail
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 JEPA_LITE_HEADLESS=1  # bars: start and end only
OUT=${OUT:-/tmp/gpu_check}; mkdir -p "$OUT"
OLD=${1:-}
STEPS=${STEPS:-bench methods e2e}  # which parts to run
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__)"
if [[ $STEPS == *bench* ]]; then
BENCH=(bench --device cuda --arch resnet50 --image-size 224 --batch-size 128 --precisions bf16
       --steps 10 --warmup 3 --workers 8 --loader-images 256 --loader-batches 8)
python3 -m jepa_lite.cli "${BENCH[@]}" --json "$OUT/bench_new.json" | tee "$OUT/bench_new.md"
if [ -n "$OLD" ]; then
    (cd "$OLD" && PYTHONPATH=$PWD python3 -m jepa_lite.cli "${BENCH[@]}" \
        --json "$OUT/bench_old.json" | tee "$OUT/bench_old.md")
fi
fi
if [[ $STEPS == *methods* ]]; then
python3 benchmarks/methods_step.py --device cuda --arch resnet50 --image-size 224 \
    --batch-size 128 --steps 5 | tee "$OUT/methods_step.md"
fi
[[ $STEPS == *e2e* ]] || exit 0
D=/tmp/gpu_check_data; R=/tmp/gpu_check_run; rm -rf "$R"
python3 -m jepa_lite.cli make-data synthetic --scenes busy --out "$D" --classes 10 \
    --per-class 100 --val-per-class 20 --size 128
python3 -m jepa_lite.cli pretrain --data-root "$D" --out "$R" --arch resnet18 --image-size 128 \
    --epochs 4 --warmup-epochs 1 --batch-size 64 --workers 8 --checkpoint-every 2 \
    --device cuda 2>&1 | tee "$OUT/pretrain.log"
rm "$R/epoch_0004.pt"  # as if stopped after epoch 3 while writing last.pt:
head -c 2000 "$R/last.pt" > "$R/last.pt.cut" && mv "$R/last.pt.cut" "$R/last.pt"
python3 -m jepa_lite.cli pretrain --out "$R" --resume --device cuda 2>&1 | tee -a "$OUT/pretrain.log"
python3 -m jepa_lite.cli probe --checkpoint "$R/last.pt" --data-root "$D" --out "$R/probe" \
    --k 20 --epochs 20 --device cuda 2>&1 | tee "$OUT/probe.log"
cp "$R/metrics.jsonl" "$R/config.json" "$OUT/"
# the same run compiled (--compile: torch.compile of the training model), 2 epochs
python3 -m jepa_lite.cli pretrain --data-root "$D" --out "$R-compiled" --arch resnet18 \
    --image-size 128 --epochs 2 --warmup-epochs 1 --batch-size 64 --workers 8 --compile \
    --device cuda 2>&1 | tee "$OUT/pretrain_compiled.log"
