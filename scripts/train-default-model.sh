#!/usr/bin/env bash
# Rebuilds the embedded default model from Debian packages alone, end to end:
#   1. data sets: homology-aware (40% identity clusters) and random splits
#   2. masked-LM pretraining of a small ESM-2 on proteins that are in neither test split
#   3. LoRA fine-tuning of the classifier on each split's training set
#   4. evaluation of both next to the DIAMOND best-hit baseline
#   5. export of the homology-split model to model/default/ with its metrics
# Wall time on 2 CPU cores: about 75 minutes (budgets below). Outputs under runs/default-model/;
# a finished pretraining is kept when the script runs again.
#
#   bash scripts/train-default-model.sh
#   PRETRAIN_MINUTES=60 FINETUNE_MINUTES=30 bash scripts/train-default-model.sh   # better, slower
set -euo pipefail
cd "$(dirname "$0")/.."

PY=/usr/bin/python3
export PYTHONPATH=training
RUN=runs/default-model
SEED="${SEED:-42}"
THREADS="${THREADS:-2}"
PRETRAIN_MINUTES="${PRETRAIN_MINUTES:-30}"
FINETUNE_MINUTES="${FINETUNE_MINUTES:-16}"
RANDOM_FINETUNE_MINUTES="${RANDOM_FINETUNE_MINUTES:-12}"
# Backbone: chosen by measured inference speed (>= 10x the 8M ESM-2 on the same CPU) and quality.
LAYERS="${LAYERS:-4}"
DIM="${DIM:-96}"
HEADS="${HEADS:-2}"
BF16="${BF16:---bf16}"   # bfloat16 autocast: ~2x faster training on CPUs with AMX; empty to disable
mkdir -p "$RUN"
log() { echo "[$(date +%H:%M:%S)] $*" | tee -a "$RUN/recipe.log"; }

log "data sets"
[ -s data/cluster40/manifest.json ] || $PY -m argtrain dataset --split cluster --identity 0.4 --coverage 0.8 \
  --seed "$SEED" --out data/cluster40
[ -s data/random/manifest.json ] || $PY -m argtrain dataset --split random --seed "$SEED" --out data/random

log "pretraining corpus: cluster40 train+valid without any protein of either test split"
$PY - <<'PYEOF'
from argtrain.fasta import read_fasta, write_fasta
held_out = {seq for path in ("data/cluster40/test.fasta", "data/random/test.fasta") for _, seq in read_fasta(path)}
kept, dropped = [], 0
for path in ("data/cluster40/train.fasta", "data/cluster40/valid.fasta"):
    for header, seq in read_fasta(path):
        if seq in held_out:
            dropped += 1
        else:
            kept.append((header, seq))
write_fasta("runs/default-model/pretrain.fasta", kept)
print(f"pretraining corpus: {len(kept)} proteins ({dropped} dropped: in a test split)")
PYEOF

if [ -e "$RUN/pretrain.done" ]; then
  log "pretrain: done before, kept (remove $RUN/pretrain.done to redo)"
else
log "pretrain ${LAYERS}x${DIM}, ${HEADS} heads, ${PRETRAIN_MINUTES} min"
$PY -m argtrain pretrain --train "$RUN/pretrain.fasta" --valid-fraction 0.02 --valid-max 300 \
  --num-layers "$LAYERS" --embed-dim "$DIM" --attention-heads "$HEADS" --max-length 512 --lr 2e-3 \
  --warmup-fraction 0.05 --max-minutes "$PRETRAIN_MINUTES" --eval-every 300 --save-every 300 \
  --num-threads "$THREADS" --seed "$SEED" $BF16 --no-progress --out "$RUN/pretrain"
touch "$RUN/pretrain.done"
fi

finetune() {  # split, minutes
  log "LoRA fine-tune on $1 (${2} min)"
  $PY -m argtrain finetune --train "data/$1/train.fasta" --valid "data/$1/valid.fasta" \
    --backbone "$RUN/pretrain" --lora-targets q,k,v,out,fc1,fc2 --lora-rank 16 --lora-alpha 32 \
    --lr 2e-3 --class-weights sqrt --max-per-class 3000 --max-residues 512 --epochs 20 --patience 4 \
    --max-minutes "$2" --num-threads "$THREADS" --seed "$SEED" $BF16 --no-progress --out "$RUN/finetune-$1"
  $PY -m argtrain export --checkpoint "$RUN/finetune-$1" --name "argserve-default-$1" \
    --max-residues 1022 --out "$RUN/model-$1.pt"
  log "evaluate $1 (model and DIAMOND baseline)"
  $PY -m argtrain evaluate --test "data/$1/test.fasta" --model "$RUN/model-$1.pt" \
    --baseline-train "data/$1/train.fasta" --num-threads "$THREADS" --out "$RUN/eval-$1"
}
finetune cluster40 "$FINETUNE_MINUTES"
finetune random "$RANDOM_FINETUNE_MINUTES"

log "export the default model with both evaluations"
$PY - <<'PYEOF'
import json
metrics = {split: json.load(open(f"runs/default-model/eval-{split}/evaluation.json")) for split in ("cluster40", "random")}
json.dump({"homology_split_40": metrics["cluster40"], "random_split": metrics["random"]},
          open("runs/default-model/metrics.json", "w"), indent=1)
PYEOF
mkdir -p model/default
$PY -m argtrain export --checkpoint "$RUN/finetune-cluster40" --name argserve-default \
  --metrics-json "$RUN/metrics.json" --max-residues 1022 --out model/default/argserve-default.pt
cp "$RUN/metrics.json" model/default/metrics.json
cp "$RUN/eval-cluster40/confusion.png" model/default/confusion-homology-split.png
cp "$RUN/eval-random/confusion.png" model/default/confusion-random-split.png
log "done: model/default/argserve-default.pt"
