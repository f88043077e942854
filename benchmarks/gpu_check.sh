#!/usr/bin/env bash
# Issue 7's GPU measurements as one prepared run (the device tool's machines have PyTorch, torchvision,
# pandas and tqdm: nothing to install). About 8 minutes on an H100/H200:
#     bash benchmarks/gpu_check.sh                      # writes $OUT/ (device tool) or ./gpu-check/
# 1. benchmarks/throughput.py at the article's batch size: the trainer (CUDA graphs, bf16, channels-last)
#    against the article-style loop on CIFAR ResNet18 width 64, and N trainer processes side by side
#    (the best train.runs_per_gpu).
# 2. Two epochs of one real-size run through the trainer (CIFAR-sized synthetic data: 50,000 + 10,000
#    images): the second epoch's seconds project the article's study (7 optimizers x 3 seeds x 50 epochs).
# A CPU smoke run of the script itself:
#     WIDTH=8 STEPS=10 TRAIN=512 TEST=128 PROCESSES=2 PY=.venv/bin/python bash benchmarks/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-check}
PY=${PY:-python3}
WIDTH=${WIDTH:-64} STEPS=${STEPS:-200} TRAIN=${TRAIN:-50000} TEST=${TEST:-10000} PROCESSES=${PROCESSES:-2 4}
DATA=$(mktemp -d)
mkdir -p "$OUT"
export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
trap 'rm -rf "$DATA"' EXIT

{ nvidia-smi -L 2>/dev/null || echo "no GPU"; "$PY" -c "import torch; print('torch', torch.__version__)"; } | tee "$OUT/device.txt"

# shellcheck disable=SC2086  # PROCESSES is a list
"$PY" benchmarks/throughput.py --model resnet18_cifar --width "$WIDTH" --steps "$STEPS" --threads 2 \
    --processes $PROCESSES --process-threads 2 2>&1 | tee "$OUT/throughput.txt"

"$PY" - "$DATA" "$TRAIN" "$TEST" <<'EOF'
import sys
from optimbench import data
folder, train_size, test_size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
archive = data.make_synthetic_archive(f"{folder}/{data.ARCHIVE_NAME}", train_size=train_size, test_size=test_size)
data.prepare({"source": "archive", "archive": str(archive)}, f"{folder}/data.npz", f"{folder}/data.json")
EOF
SPEC=$(printf '{"dataset": "synthetic", "data": "%s/data.npz", "model": "resnet18_cifar", "width": %d, "epochs": 2, "batch_size": 64, "eval_batch_size": 1000, "seed": 0, "optimizer_name": "SGD", "optimizer": {"class": "SGD", "kwargs": {"lr": 0.01, "momentum": 0.9}}}' "$DATA" "$WIDTH")
"$PY" -m optimbench.train --spec "$SPEC" --out "$DATA/run" --threads 2 2>"$OUT/train.log"
cp "$DATA/run/metrics.csv" "$DATA/run/run.json" "$OUT/"
"$PY" - "$OUT/metrics.csv" <<'EOF' | tee "$OUT/projection.txt"
import sys
import pandas as pd
last = pd.read_csv(sys.argv[1]).iloc[-1]  # epoch 2: compiled graphs and cuDNN choices are warm
per_epoch = last.epoch_seconds + last.eval_seconds
print(f"epoch 2: {last.epoch_seconds:.2f} s training ({last.samples_per_second:.0f} samples/s) + "
      f"{last.eval_seconds:.2f} s evaluation")
print(f"article study, 7 optimizers x 3 seeds x 50 epochs, one run at a time: {7 * 3 * 50 * per_epoch / 3600:.2f} h")
EOF
