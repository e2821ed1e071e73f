#!/usr/bin/env bash
# Issue 21's GPU checks in one call on a lent GPU (docs/benchmarks.md records the figures):
# the device pipeline on the GPU against the CPU (benchmarks/device_pipeline_check.py); the
# loaders of the five methods (the device pipeline, 8 workers) next to
# their eager bf16 steps, ResNet-18 at 224 px, batch 128; the same with a GPU cache; then
# CNN-JEPA's full-profile step (ResNet-50, 224 px, --compile) fed by its loader. Usage, from
# the repository's root:   OUT=results_dir bash benchmarks/gpu_loader_check.sh
set -uo pipefail
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 JEPA_LITE_HEADLESS=1
OUT=${OUT:-/tmp/gpu_loader_check}; mkdir -p "$OUT"
STEPS=${STEPS:-check loaders cache full}
J=/tmp/gpu_loader_jpegs
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, torchvision, os; print('torch', torch.__version__, 'torchvision', torchvision.__version__, 'cores', os.cpu_count())"
COMMON=(--device cuda --image-size 224 --batch-size 128 --precisions bf16 --steps 10 --warmup 3
        --workers 8 --loader-images 1536 --loader-batches 8 --data "$J" --kinds)
if [[ $STEPS == *check* ]]; then
python3 benchmarks/device_pipeline_check.py 2>&1 | grep -v "decoding into" | tee "$OUT/check.txt" \
    || echo "check FAILED"
fi
if [[ $STEPS == *loaders* ]]; then
python3 -m jepa_lite.cli bench "${COMMON[@]}" --arch resnet18 \
    --json "$OUT/loaders.json" 2>&1 | tail -14 | tee "$OUT/loaders.md" || echo "loaders FAILED"
fi
if [[ $STEPS == *cache* ]]; then
python3 -m jepa_lite.cli bench "${COMMON[@]}" --arch resnet18 --methods simclr cnn-jepa \
    --cache device --json "$OUT/cache.json" 2>&1 | tail -4 | tee "$OUT/cache.md" \
    || echo "cache FAILED"
fi
if [[ $STEPS == *full* ]]; then
python3 -m jepa_lite.cli bench "${COMMON[@]}" --arch resnet50 --methods cnn-jepa --compile \
    --json "$OUT/full.json" 2>&1 | tail -3 | tee "$OUT/full.md" || echo "full FAILED"
fi
