#!/usr/bin/env bash
# Train the three shipped models and the fusion baselines with the shipped recipes, then export each the way
# weights/ holds it. One command, CPU or GPU, one output folder, resumable: run it again after a stop or a crash
# and every stage continues from its last checkpoint (finished stages are skipped).
#
#   bash train_scripts/train_all.sh                         # into $FER_RUNS (default ~/.cache/fer/runs)
#   RUNS=/data/runs THREADS=1 bash train_scripts/train_all.sh ddamfn   # one stage: ddamfn|resnet_dda|fusion|baselines|export
#
# On a 2-core CPU the two branches train side by side, one thread each (STAGES=parallel, the default there);
# the fusion and its baselines need both branches first. Wall time on a 2-core CPU: see BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
RUNS=${RUNS:-${FER_RUNS:-$HOME/.cache/fer/runs}}
DATA=${DATA:-cache:.data/ferplus.npz.xz}
FERPLUS=${FERPLUS:-../shared/datasets/ferplus}
OUT_WEIGHTS=${OUT_WEIGHTS:-$RUNS/weights}
STAGE=${1:-all}
THREADS=${THREADS:-1}
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
mkdir -p "$RUNS"

if [[ ! -f ${DATA#cache:} && $DATA == cache:* ]]; then
  $PY train_scripts/prepare_data.py "ferplus:$FERPLUS" --splits train,valid --out "${DATA#cache:}"
fi

train() {  # NAME ARGS...: one resumable run in $RUNS/NAME, skipped once exported
  local name=$1; shift
  if [[ -f $RUNS/$name/export/config.json ]]; then echo "$name: done ($RUNS/$name/export)"; return; fi
  $PY train_scripts/train.py --data "$DATA" --out "$RUNS/$name" --resume --save-every 50 --threads "$THREADS" "$@" \
    > "$RUNS/$name.log" 2>&1 || { echo "$name failed: see $RUNS/$name.log" >&2; return 1; }
  echo "$name: $(grep -a '^best epoch' "$RUNS/$name.log" | tail -1)"
}

ddamfn() {
  train ddamfn --model ddamfn --model-args '{"zero_init_residual": true}' --input-size 64 --epochs 20 \
    --batch-size 128 --lr 0.05 --warmup-epochs 2 --amp off --compile --seed 0
}
resnet_dda() {
  train resnet_dda --model resnet18_dda --model-args '{"dda_stages": [3, 4], "drop_rate": 0.4}' --input-size 64 \
    --epochs 30 --batch-size 128 --lr 0.1 --warmup-epochs 1 --amp auto --seed 0
}
fusion() {  # MODE [NAME]: the fusion (attention) or a baseline, from the exported, stored branches
  local mode=$1 name=${2:-fusion_$1}
  train "$name" --model fusion --fusion-mode "$mode" --branch-a "$OUT_WEIGHTS/ddamfn" \
    --branch-b "$OUT_WEIGHTS/resnet_dda" --epochs 6 --batch-size 128 --lr 0.01 --warmup-epochs 0.5 --seed 0
}
export_one() {  # RUN DEST [ARGS]
  $PY train_scripts/export.py "$RUNS/$1/export" "$OUT_WEIGHTS/$2" --storage float16 --ferplus "$FERPLUS" "${@:3}"
}

case $STAGE in
  ddamfn) ddamfn ;;
  resnet_dda) resnet_dda ;;
  fusion) fusion attention fusion ;;
  baselines) for m in late early joint; do fusion "$m"; done ;;
  export)
    export_one ddamfn ddamfn
    export_one resnet_dda resnet_dda ;;
  all)
    ddamfn & a=$!; resnet_dda & b=$!; wait $a; wait $b
    export_one ddamfn ddamfn
    export_one resnet_dda resnet_dda
    fusion attention fusion
    export_one fusion fusion --branch-refs branch_a=../ddamfn,branch_b=../resnet_dda
    for m in late early joint; do fusion "$m"; done ;;
  *) echo "unknown stage $STAGE (ddamfn|resnet_dda|fusion|baselines|export|all)" >&2; exit 2 ;;
esac
