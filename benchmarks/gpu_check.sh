#!/usr/bin/env bash
# Issue 31's GPU check as one prepared run, under 8 minutes on one H100/H200 (the device tool's machines have
# PyTorch, torchvision and pandas: nothing to install):
#     bash benchmarks/gpu_check.sh              # writes $OUT/ (the device tool sets it) or ./gpu-check/
#     DRY=1 PY=.venv/bin/python bash benchmarks/gpu_check.sh    # the CPU: a smoke test of the script, tiny sizes
# 1. benchmarks/gpu_check.py: one epoch of every problem of the demon-paper preset at full size (random data at
#    the real sizes, the plan's own specs: models at the papers' sizes, bf16 and CUDA graphs as `auto` picks):
#    samples/s, seconds per epoch, peak GPU memory, and the projected GPU-hours of the demon-paper preset and
#    of `make study`, one run at a time.
# 2. benchmarks/throughput.py on CIFAR-10 shapes at width 64: the bare step, the trainer and the article loop,
#    images/s, the trainer's share of the bare step, peak GPU memory; 2 and 4 trainer processes sharing the GPU.
# Without CUDA it stops at once with an error (unless DRY=1).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-check}
PY=${PY:-python3}
DRY=${DRY:-}
mkdir -p "$OUT"
export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1

if [[ -z $DRY ]] && ! "$PY" -c "import torch, sys; sys.exit(not torch.cuda.is_available())"; then
    echo "gpu_check.sh: no CUDA device visible to $PY (torch.cuda.is_available() is False): this check measures" \
         "a GPU. Run it on a GPU machine, or DRY=1 for a CPU smoke test of the script." >&2
    exit 2
fi
{ nvidia-smi -L 2>/dev/null || echo "no GPU (dry run)"; "$PY" -c "import torch; print('torch', torch.__version__)"; } \
    | tee "$OUT/device.txt"

if [[ -n $DRY ]]; then
    "$PY" benchmarks/gpu_check.py --dry --out "$OUT/epochs" --problems mnist-vae ptb-lstm 2>"$OUT/epochs.log" \
        | tee "$OUT/epochs.txt"
    "$PY" benchmarks/throughput.py --device cpu --widths 8 --steps 2 --rounds 1 --images 256 --article \
        2>&1 | tee "$OUT/throughput.txt"
else
    "$PY" benchmarks/gpu_check.py --out "$OUT/epochs" 2>"$OUT/epochs.log" | tee "$OUT/epochs.txt"
    "$PY" benchmarks/throughput.py --widths 64 --steps 200 --rounds 1 --article --processes 2 4 \
        --process-threads 2 2>&1 | tee "$OUT/throughput.txt"
fi
