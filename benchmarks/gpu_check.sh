#!/usr/bin/env bash
# The project's GPU evidence in one call on a lent GPU, inside 8 minutes (docs/benchmarks.md,
# "The GPU check", and docs/results/gpu are made from its files). The parts, most important
# first; a part starts only when the time left holds its estimate, so a run cut short leaves
# every part before it (parts.tsv says what ran, how long, and what was skipped):
#   bench     jepa-lite bench, ResNet-50 at 224 px, batch 128, bf16, eager: the step table
#             and each method's loader on the device pipeline (loader alone, loader + step,
#             step alone), without and with the decoded cache in GPU memory
#   course    chapters 04 and 05 of the gpu profile (jepa-lite course --pending): CNN-JEPA's
#             40 epochs on the busy scenes, its probes against random init and the
#             supervised reference; the course folder comes back without checkpoints
#   methods   every method end to end for a fixed number of steps, two epochs of 20 steps
#             (jepa-lite pretrain on the first 256 busy scenes of each class of the gpu
#             profile's: images/s with its loader, the second epoch's beside the first,
#             past the workers' start and cuDNN's first search), then their steps alone
#             (benchmarks/methods_step.py --runs: the two side by side in methods.md)
#   compiled  the bench's step table again, compiled (--compile)
# Usage, from the repository's root (wheels in .whl/, if any, are installed first: the
# packages a bare GPU machine lacks, papermill and jupytext among them; docs/benchmarks.md says
# how to fetch them), JEPA_LITE_COMMIT naming the commit of the tree sent:
#     OUT=dir JEPA_LITE_COMMIT=abc1234 bash benchmarks/gpu_check.sh
# then, on the same machine while it is warm, what the first call left (the course goes on
# where it stopped): PARTS="course methods compiled" with the same WORK folder. All of it
# does not fit one call on an H200 (the course alone took 483 s there): docs/benchmarks.md,
# "The GPU check on one H200", gives the two calls a 15-minute lease holds.
# TINY=1 DEVICE=cpu runs the same at tiny sizes on a CPU (tests/test_gpu_check.py).
set -uo pipefail
START=$SECONDS
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 JEPA_LITE_HEADLESS=1
OUT=${OUT:-/tmp/gpu_check}; mkdir -p "$OUT"
W=${WORK:-/tmp/gpu_check_work}; mkdir -p "$W"  # everything that comes back, then packed
RUNS=${W%/}.runs  # the methods part's runs, beside W (their checkpoints stay here)
DEVICE=${DEVICE:-cuda}
DEADLINE=${DEADLINE:-470}  # seconds from the start: every part ends before it
PARTS=${PARTS:-bench course methods compiled}
PY=${PYTHON:-python3}
WHEELS=${WHEELS-.whl}  # WHEELS= : install none
if [ -n "$WHEELS" ] && ls "$WHEELS"/*.whl >/dev/null 2>&1; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/gpu_check_site "$WHEELS"/*.whl \
        && export PYTHONPATH=$PYTHONPATH:/tmp/gpu_check_site
fi
if [ -n "${TINY:-}" ]; then  # sizes that run in a minute on a CPU
    PROFILE=smoke CHAPTERS=${CHAPTERS:-00} ARCH=resnet18 VIT=vit_micro SIZE=64 BATCH=8 STEPS=(1 1)
    LOADER=(--loader-images 16 --loader-batches 1 --workers 0) M_ARCH=resnet10 M_SIZE=64
    M_EPOCHS=2 M_WORKERS=0 EST=(1 1 1 1)
    M_DATA="SyntheticSpec(classes=4, per_class=8, val_per_class=2, size=64)"
else
    # the step table: ResNet-50 (CNN-JEPA, supervised, the authors' form) beside ViT-S/16
    # (I-JEPA, supervised), the encoders of the paper's Table I, at 224 px
    PROFILE=gpu CHAPTERS=${CHAPTERS:-04 05} ARCH=resnet50 VIT=vit_small SIZE=224 BATCH=128
    STEPS=(6 2)
    LOADER=(--loader-images 512 --loader-batches 4 --workers 8) M_ARCH=resnet18 M_SIZE=224
    # seconds each part needs at least, in order: measured on one H200 (docs/benchmarks.md,
    # "The GPU check on one H200"): bench 109 s, chapter 04 317 s (then 05 166 s, which a
    # first call does not fit: a second call on the same machine goes on with --pending);
    # methods: 134 s there before the deadline cut its steps alone (the four one-epoch runs'
    # epochs were 35.5 s of it; process starts and each run decoding 10,000 images the rest);
    # the part as it is now (2,580 scenes drawn, five runs of two 20-step epochs, the steps
    # alone) is computed at about 120 s, not measured; compiled not measured
    M_EPOCHS=2 M_WORKERS=8 EST=(110 320 120 150)
    # the gpu profile's scenes, 256 of each class (20 steps of 128): a scene is drawn from
    # its own seed, so these are the first 256 of each class of the course's data set
    M_DATA="replace(get_profile('gpu').synthetic, per_class=256, val_per_class=2)"
fi
{ date -u +%FT%TZ; "$PY" -c "import os, torch, torchvision; print('torch', torch.__version__,
'torchvision', torchvision.__version__, 'cores', os.cpu_count())"; if [ "$DEVICE" = cuda ]; then
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; fi
echo "commit ${JEPA_LITE_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}"
} | tee "$W/machine.txt"
printf "part\tstatus\tseconds\n" > "$W/parts.tsv"

pack() {  # what comes back: small files only (no checkpoints, feature banks or data)
    tar czf "$OUT/gpu_check.tgz.tmp" -C "$W" --exclude='*.pt' --exclude='*.npy' \
        --exclude='*.npz' --exclude='.lock' --exclude='.status' . \
        && mv "$OUT/gpu_check.tgz.tmp" "$OUT/gpu_check.tgz"
    cp "$W/parts.tsv" "$OUT/"
}

set -m  # each part in a process group of its own, so that the deadline stops all of it
part() {  # part NAME ESTIMATE COMMAND...: run it if the time left holds the estimate
    local name=$1 estimate=$2; shift 2
    local left=$((DEADLINE - (SECONDS - START)))
    if [[ " $PARTS " != *" $name "* ]]; then return; fi
    if (( left < estimate )); then
        printf "%s\tskipped: %ss left, needs about %ss\t0\n" "$name" "$left" "$estimate" \
            >> "$W/parts.tsv"
        echo "== $name skipped: ${left}s left, needs about ${estimate}s"; pack; return
    fi
    echo "== $name (at $((SECONDS - START)) s, ${left}s left)"
    local t0=$SECONDS
    rm -f "$W/.cut"
    "$@" &
    local pid=$!
    (sleep "$left"; touch "$W/.cut"; kill -INT -- -"$pid"; sleep 10; kill -KILL -- -"$pid"
    ) >/dev/null 2>&1 &
    local watcher=$!
    wait "$pid"
    local rc=$?
    { kill -- -"$watcher"; wait "$watcher"; } 2>/dev/null
    local status=ok
    if [ -e "$W/.cut" ]; then status="cut at the deadline"; elif (( rc != 0 )); then
        status="failed (rc $rc)"; fi
    printf "%s\t%s\t%s\n" "$name" "$status" "$((SECONDS - t0))" >> "$W/parts.tsv"
    pack
}

bench() {  # bench NAME [more options]
    local name=$1; shift
    "$PY" -m jepa_lite.cli bench --device "$DEVICE" --arch "$ARCH" --image-size "$SIZE" \
        --batch-size "$BATCH" --precisions bf16 --steps "${STEPS[0]}" --warmup "${STEPS[1]}" \
        --json "$W/$name.json" "$@" 2>&1 | tee "$W/$name.md"
}

bench_eager() {
    bench bench "${LOADER[@]}" --vit "$VIT" && bench bench_cache "${LOADER[@]}" --kinds --cache device
}

course() {
    # shellcheck disable=SC2086
    "$PY" -m jepa_lite.cli course --profile "$PROFILE" --only $CHAPTERS --out "$W/course" \
        --device "$DEVICE" --pending 2>&1 | tee "$W/course.log"
}

methods() {
    local data
    data=$("$PY" -c "from dataclasses import replace
from jepa_lite.data.scenes import SyntheticSpec, ensure_synthetic
from jepa_lite.course.profiles import get_profile
print(ensure_synthetic($M_DATA))") || return 1
    local names
    names=$("$PY" -c "from jepa_lite import methods; print(*methods.compared('$M_ARCH'))") \
        && [ -n "$names" ] || return 1
    rm -rf "$RUNS"
    for m in $names; do
        "$PY" -m jepa_lite.cli pretrain --method "$m" --data-root "$data" \
            --out "$RUNS/$m" --arch "$M_ARCH" --image-size "$M_SIZE" \
            --batch-size "$BATCH" --epochs "$M_EPOCHS" --warmup-epochs 0 \
            --workers "$M_WORKERS" --cache device --device "$DEVICE" 2>&1 \
            | tee "$W/methods_$m.log" | tail -3
        mkdir -p "$W/methods/$m"
        cp "$RUNS/$m/metrics.jsonl" "$RUNS/$m/config.json" \
            "$W/methods/$m/" || return 1
    done
    "$PY" benchmarks/methods_step.py --device "$DEVICE" --arch "$M_ARCH" \
        --image-size "$M_SIZE" --batch-size "$BATCH" --steps "${STEPS[0]}" \
        --data-root "$data" --runs "$RUNS" 2>&1 | tee "$W/methods.md"
}

compiled() {
    bench bench_compiled --kinds supervised cnn-jepa --workers --compile
}

part bench "${EST[0]}" bench_eager
part course "${EST[1]}" course
part methods "${EST[2]}" methods
part compiled "${EST[3]}" compiled
echo "== done in $((SECONDS - START)) s"
cat "$W/parts.tsv"
pack
