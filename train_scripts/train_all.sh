#!/usr/bin/env bash
# Train the three models from scratch with the clean-selection recipe (choices made on a slice of FER+ train, FER+
# valid only reported), then export each the way weights/ holds it. One command, CPU or GPU, one output folder,
# resumable: run it again after a stop or a crash and every stage continues from its last checkpoint (finished
# stages are skipped). The shipped weights' own commands are on their cards (weights/*/README.md).
#
#   bash train_scripts/train_all.sh                         # into $FER_RUNS (default ~/.cache/fer/runs)
#   FERPLUS=/data/ferplus bash train_scripts/train_all.sh   # FER+ elsewhere than $FER_DATA/ferplus
#   RUNS=/data/runs THREADS=1 bash train_scripts/train_all.sh ddamfn   # one stage: teach|ddamfn|resnet_dda|fusion|export
#
# On a 2-core CPU the two branches train side by side, one thread each; the fusion needs both branches first.
# Recipe: FER+ vote distributions, distillation from the teachers' calibrated probabilities (TEACHERS, default
# the shipped three), EMA, selection on the shipped slice of train (--select ferplus). Wall time: the weights' cards.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
RUNS=${RUNS:-${FER_RUNS:-$HOME/.cache/fer/runs}}
FERPLUS=${FERPLUS:-${FER_DATA:-$HOME/.cache/fer/data}/ferplus}  # fer-data layout writes it (docs/training.md)
MAJORITY=.data/ferplus.npz.xz
VOTES=.data/ferplus_prob.npz.xz
TEACHER=.data/teacher_ferplus_train.npz
TEACHERS=${TEACHERS:-weights/ddamfn weights/resnet_dda weights/fusion}
OUT_WEIGHTS=${OUT_WEIGHTS:-$RUNS/weights}
STAGE=${1:-all}
THREADS=${THREADS:-1}
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 FER_RUNS=$RUNS
mkdir -p "$RUNS"

[[ -f $MAJORITY ]] || $PY train_scripts/prepare_data.py "ferplus:$FERPLUS" --splits train,valid --out $MAJORITY
[[ -f $VOTES ]] || $PY train_scripts/prepare_data.py "ferplus:$FERPLUS" --splits train --protocol probability --out $VOTES

COMMON=(--data "cache:$VOTES" --protocol probability --val-data "cache:$MAJORITY" --select ferplus
        --distill "$TEACHER" --distill-weight 0.5 --batch-size 128 --ema-decay 0.998 --save-every 50 --seed 0)

train() {  # NAME ARGS...: one resumable run in $RUNS/NAME, skipped once exported
  local name=$1; shift
  if [[ -f $RUNS/$name/export/config.json ]]; then echo "$name: done ($RUNS/$name/export)"; return; fi
  $PY train_scripts/train.py --name "$name" --resume --threads "$THREADS" "$@" > "$RUNS/$name.log" 2>&1 \
    || { echo "$name failed: see $RUNS/$name.log" >&2; return 1; }
  echo "$name: $(grep -a '^best epoch' "$RUNS/$name.log" | tail -1)"
}

teach() {
  [[ -f $TEACHER ]] || $PY train_scripts/teach.py --teachers $TEACHERS --data "cache:$VOTES" --out $TEACHER
}
ddamfn() {
  train ddamfn64_kd "${COMMON[@]}" --model ddamfn --model-args '{"zero_init_residual":true}' --input-size 64 \
    --epochs 25 --lr 0.05 --warmup-epochs 2 --amp off --compile
}
resnet_dda() {
  train resnet80_kd "${COMMON[@]}" --model resnet18_dda --model-args '{"dda_stages":[3,4],"drop_rate":0.4}' \
    --input-size 80 --epochs 30 --lr 0.1 --warmup-epochs 1 --amp auto
}
# RUN DEST STORAGE [ARGS]: the balanced reading fitted on the slice, then stored, measured, carded. ResNet+DDA is
# stored as per-channel int8, which held FER+ valid within 0.1 point for the shipped weights at half the bytes of
# float16 (docs/experiments.md).
export_one() {
  $PY train_scripts/fit_balance.py "$RUNS/$1/export"
  FER_WEIGHTS_DIR=$OUT_WEIGHTS $PY train_scripts/export.py "$RUNS/$1/export" "$OUT_WEIGHTS/$2" --storage "$3" \
    --fer-crop --ferplus "$FERPLUS" "${@:4}"
}
fusion() {  # from the exported, stored branches, on the same slice
  train fusion_kd --model fusion --branch-a "$OUT_WEIGHTS/ddamfn" --branch-b "$OUT_WEIGHTS/resnet_dda" \
    --data "cache:$MAJORITY" --select ferplus --epochs 1 --batch-size 128 --lr 0.01 --warmup-epochs 0.1 --seed 0
}

case $STAGE in
  teach) teach ;;
  ddamfn) teach; ddamfn ;;
  resnet_dda) teach; resnet_dda ;;
  fusion) fusion ;;
  export)
    export_one ddamfn64_kd ddamfn float16
    export_one resnet80_kd resnet_dda int8 ;;
  all)
    teach
    ddamfn & a=$!; resnet_dda & b=$!; wait $a; wait $b
    export_one ddamfn64_kd ddamfn float16
    export_one resnet80_kd resnet_dda int8
    fusion
    export_one fusion_kd fusion float16 --branch-refs branch_a=ddamfn,branch_b=resnet_dda ;;
  *) echo "unknown stage $STAGE (teach|ddamfn|resnet_dda|fusion|export|all)" >&2; exit 2 ;;
esac
