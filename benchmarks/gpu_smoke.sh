#!/usr/bin/env bash
# GPU readiness in one command (< 5 minutes on one GPU): fine-tunes a torchvision AlexNet
# (random initialisation: nothing is downloaded) on a synthetic 10-class image folder for two
# epochs in bf16 and one in fp16, checks that the training loss falls and that --resume
# continues the run, trains with DDP on 2 processes when 2 GPUs exist, and prints images/s.
#
#   bash benchmarks/gpu_smoke.sh                       # CUDA, 2,000 images of 96 px
#   bash benchmarks/gpu_smoke.sh --device cpu --n 60   # a CPU smoke run (tiny)
#
# Options: --device cuda|cpu, --n IMAGES, --workers N, --batch B, --out DIR.
set -euo pipefail

DEVICE=cuda N=2000 WORKERS=4 BATCH=64 OUT=""
while [ $# -gt 0 ]; do
    case "$1" in
        --device) DEVICE=$2; shift 2 ;;
        --n) N=$2; shift 2 ;;
        --workers) WORKERS=$2; shift 2 ;;
        --batch) BATCH=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
OUT=${OUT:-$(mktemp -d)}
BF=bf16  # bf16 autocast runs on CUDA and on CPUs
echo "gpu_smoke: device=$DEVICE n=$N workers=$WORKERS batch=$BATCH in $OUT"

python - "$OUT/photos" "$N" <<'PY'
"""A synthetic 10-class image folder: each class a colour and stripe orientation, plus noise."""
import sys
from pathlib import Path

import numpy as np
from PIL import Image

root, n = Path(sys.argv[1]), int(sys.argv[2])
rng = np.random.default_rng(0)
yy, xx = np.mgrid[0:96, 0:96]
for i in range(n):
    label = i % 10
    colour = np.array([(label * 37) % 256, (label * 91) % 256, (label * 53) % 256], float)
    angle = np.pi * label / 10
    stripes = (np.sin((np.cos(angle) * xx + np.sin(angle) * yy) / 4.0) > 0)[..., None]
    pixels = np.clip(colour * stripes + rng.normal(0, 40, (96, 96, 3)), 0, 255).astype(np.uint8)
    folder = root / f"class{label}"
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(folder / f"{i}.png")
PY

common=(--dataset image-folder --data-dir "$OUT/photos" --backbone alexnet --weights none
        --transform deephash --loss dpsh --quantization hswd --bits 32 --batch-size "$BATCH"
        --lr 1e-4 --schedule none --patience 0 --num-workers "$WORKERS" --device "$DEVICE"
        --quiet)

report() {  # report RUN LABEL: loss per epoch and images/s from result.json
    python - "$1" "$2" <<'PY'
import json, sys
run, label = sys.argv[1], sys.argv[2]
result = json.load(open(f"{run}/result.json"))
config = json.load(open(f"{run}/config.json"))
hist = result["history"]
n = config["n_train"]
rate = n * len(hist) / sum(h["seconds"] for h in hist)
losses = ", ".join(f"{h['loss']:.4f}" for h in hist)
print(f"{label}: {len(hist)} epochs, loss {losses}, {rate:.1f} training images/s "
      f"(one process; epoch time includes loading), best val mAP {result['best_map']:.3f}")
PY
}

fail() { echo "gpu_smoke FAILED: $*" >&2; exit 1; }

# 1. bf16, two epochs: the loss falls.
hashlearn train "${common[@]}" --precision "$BF" --epochs 2 --output "$OUT/bf16" >/dev/null
report "$OUT/bf16" "$BF fine-tuning"
python -c "
import json, sys
h = json.load(open('$OUT/bf16/result.json'))['history']
sys.exit(0 if h[1]['loss'] < h[0]['loss'] else 1)" || fail "the $BF training loss did not fall"

# 2. --resume continues the run to a third epoch.
hashlearn train "${common[@]}" --precision "$BF" --epochs 3 --output "$OUT/bf16" --resume >/dev/null
python -c "
import json, sys
r = json.load(open('$OUT/bf16/result.json'))
sys.exit(0 if r['epoch'] == 3 and len(r['history']) == 3 else 1)" || fail "--resume did not continue"
echo "resume: continued to epoch 3"

# 3. fp16 with the gradient scaler (CUDA only: fp16 autocast is a GPU feature).
if [ "$DEVICE" != cpu ]; then
    hashlearn train "${common[@]}" --precision fp16 --epochs 2 --output "$OUT/fp16" >/dev/null
    report "$OUT/fp16" "fp16 fine-tuning"
fi

# 4. DDP on 2 processes when 2 GPUs exist (gloo on CPU is covered by the test suite).
GPUS=$(python -c "import torch; print(torch.cuda.device_count())")
if [ "$DEVICE" != cpu ] && [ "$GPUS" -ge 2 ]; then
    torchrun --nproc-per-node 2 --no-python hashlearn train "${common[@]}" --distributed \
        --precision "$BF" --epochs 2 --output "$OUT/ddp" >/dev/null
    report "$OUT/ddp" "DDP x2 ($BF; per process)"
else
    echo "DDP: skipped ($GPUS GPU(s) visible on $DEVICE)"
fi
hashlearn evaluate --model "$OUT/bf16" --quiet >/dev/null && echo "evaluate --model: ok"
echo "gpu_smoke: OK ($OUT)"
