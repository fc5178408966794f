#!/usr/bin/env bash
# One GPU session's training run (issue: train the three models on FER+), meant for the device tool:
# everything it needs travels in the checkout plus .data/ferplus.npz.xz (prepare_data.py), and everything it
# makes lands in $OUT (logs, metrics, exported weights). Run it on a GPU machine from the repository root:
#
#   python3 train_scripts/prepare_data.py ferplus:../shared/datasets/ferplus --splits train,valid --out .data/ferplus.npz.xz
#   OUT=/tmp/out bash train_scripts/gpu_session.sh [ddamfn|resnet|fusion|all]
#
# Each stage's command is the one recorded in its exported config.json.
set -euo pipefail
OUT=${OUT:?set OUT to a folder}
DATA=${DATA:-cache:.data/ferplus.npz.xz}
STAGE=${1:-all}
EPOCHS_DDAMFN=${EPOCHS_DDAMFN:-40}
EPOCHS_RESNET=${EPOCHS_RESNET:-40}
EPOCHS_FUSION=${EPOCHS_FUSION:-8}
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$OUT/gpu.txt" || true
if [[ $STAGE == ddamfn || $STAGE == all ]]; then
  python3 train_scripts/train.py --model ddamfn --data "$DATA" --epochs "$EPOCHS_DDAMFN" --batch-size 256 --lr 0.1 \
    --label-smoothing 0.1 --attention-loss-weight 0.1 --ema-decay 0.999 --export-storage float16 \
    --out "$OUT/ddamfn" --log-every 50 2>&1 | tee "$OUT/ddamfn.log"
fi
if [[ $STAGE == resnet || $STAGE == all ]]; then
  python3 train_scripts/train.py --model resnet18_dda --input-size 112 --model-args '{"drop_rate": 0.4}' \
    --data "$DATA" --epochs "$EPOCHS_RESNET" --batch-size 256 --lr 0.1 --ema-decay 0.999 --export-storage int8 \
    --out "$OUT/resnet_dda" --log-every 50 2>&1 | tee "$OUT/resnet_dda.log"
fi
if [[ $STAGE == fusion || $STAGE == all ]]; then
  for mode in attention late early; do
    python3 train_scripts/train.py --model fusion --fusion-mode "$mode" --branch-a "$OUT/ddamfn/export" \
      --branch-b "$OUT/resnet_dda/export" --data "$DATA" --epochs "$EPOCHS_FUSION" --batch-size 256 --lr 0.01 \
      --warmup-epochs 0.5 --out "$OUT/fusion_$mode" --log-every 50 2>&1 | tee "$OUT/fusion_$mode.log"
  done
fi
