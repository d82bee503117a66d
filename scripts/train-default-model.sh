#!/usr/bin/env bash
# Rebuilds the embedded default model from Debian packages alone, in resumable stages:
#   data      the labelled data sets: homology-aware (40% identity clusters) and random splits
#   corpus    the pretraining corpus: Swiss-Prot (metastudent-data) + the data sets' train/valid
#             proteins, minus every relative of a test protein; extra Swiss-Prot non-ARGs
#   relatives known non-ARG relatives of the ARGs for the reference sets: the corpus's extra
#             Swiss-Prot non-ARGs that align to an ARG, clustered (argtrain relatives)
#   hard-negatives  per split, the known non-ARGs (its training split's and the relatives) that
#             align to its training ARGs: extra weight in fine-tuning (argtrain hard-negatives)
#   proteomes whole proteomes the evidence rule is chosen on: Prodigal's proteins of two
#             Klebsiella pneumoniae genomes of kleborate-examples; and of the other two, held
#             out (reported for the bounded DIAMOND baseline, bench/genome_calls.sh for argserve)
#   pretrain  masked-LM pretraining of the backbone, PRETRAIN_MINUTES in all, across as many runs
#             as it takes: a killed run continues from runs/default-model/pretrain/last.pt, or, on a
#             fresh machine, from the committed model/default/backbone.pt
#   finetune  LoRA fine-tuning on each split, calibration on its validation set, FINETUNE_MINUTES
#             per split in all across runs (finetune-cluster40 / finetune-random: one split)
#   calibrate the calibration again, on validation proteins as served (full length, float32), for
#             a checkpoint calibrated otherwise; evaluate does it when needed
#   evaluate  the evidence rule chosen on validation and a Swiss-Prot background
#             and whole proteomes (scripts/choose-evidence-rule.py), then both test splits,
#             next to the DIAMOND best-hit and k-mer baselines, with reference-only and combined calls
#             (reference set: the split's training ARGs, and the training non-ARGs and the
#             relatives aligning to them)
#   export    model/default/: artifact (the cluster40 model, with every labelled ARG of the data set
#             and the labelled non-ARGs and relatives aligning to them as its reference set),
#             backbone, metrics, confusion matrices, perplexity curve
#
#   bash scripts/train-default-model.sh              # every stage not yet done
#   bash scripts/train-default-model.sh pretrain     # one stage
#   bash scripts/train-default-model.sh keep-backbone  # copy the pretraining state to model/default/
#   bash scripts/train-default-model.sh keep-finetune  # copy the fine-tuning state to model/default/
#
# Each stage's outputs are under runs/default-model/; a stage that finished is skipped on reruns.
# Long stages belong in the background: nice -n 19 bash scripts/train-default-model.sh &
set -euo pipefail
cd "$(dirname "$0")/.."

PY=/usr/bin/python3
export PYTHONPATH=training
RUN=runs/default-model
SEED="${SEED:-42}"
THREADS="${THREADS:-2}"
# Backbone: chosen by pilots (docs/model-card: quality per CPU-hour under the speed target).
LAYERS="${LAYERS:-4}"
DIM="${DIM:-128}"
HEADS="${HEADS:-2}"
PRETRAIN_MINUTES="${PRETRAIN_MINUTES:-200}"
FINETUNE_MINUTES="${FINETUNE_MINUTES:-72}"  # the shipped model's budget (MODEL_CARD.md)
FINETUNE_THREADS="${FINETUNE_THREADS:-$THREADS}"
EXTRA_NONARGS=20000  # Swiss-Prot non-ARGs fine-tuning draws; the rest are the rule's background
LORA_RANK="${LORA_RANK:-16}"  # alpha twice the rank
PATIENCE="${PATIENCE:-12}"    # epochs without a better validation macro-F1
# Fine-tuning's hard negatives (stage hard-negatives) count this many times each among the non-ARG
# draws; 0 leaves them out, as for the shipped model (docs/training-pilots.md, "Hard negatives").
HARD_NEGATIVE_REPEAT="${HARD_NEGATIVE_REPEAT:-0}"
SERVED_RESIDUES=1022  # the artifacts' max_residues: calibration sees validation proteins so long
BF16="${BF16:---bf16}"   # bfloat16 autocast (fast on CPUs with AMX, docs/training-pilots.md); empty to disable
mkdir -p "$RUN"
log() { echo "[$(date +%H:%M:%S)] $*" | tee -a "$RUN/recipe.log"; }

stage_data() {
  [ -s data/cluster40/manifest.json ] || $PY -m argtrain dataset --split cluster --identity 0.4 \
    --coverage 0.8 --seed "$SEED" --out data/cluster40
  [ -s data/random/manifest.json ] || $PY -m argtrain dataset --split random --seed "$SEED" \
    --out data/random
}

stage_corpus() {
  [ -s data/pretrain/manifest.json ] && return 0
  local splits=(data/cluster40/train.fasta data/cluster40/valid.fasta data/random/train.fasta
                data/random/valid.fasta)
  $PY -m argtrain corpus --out data/pretrain --include "${splits[@]}" \
    --exclude-like data/cluster40/test.fasta data/random/test.fasta \
    --arg-reference "${splits[@]}" --seed "$SEED" --threads "$THREADS"
}

RELATIVES=data/pretrain/nonarg-relatives.fasta
PROTEOMES=data/proteomes/choice.faa
CHOICE_GENOMES=(Klebs_Kp1084 NTUH-K2044)  # bench/genome_calls.sh reports the others apart
HELD_OUT_PROTEOMES=data/proteomes/held-out.faa
HELD_OUT_GENOMES=(Klebs_HS11286 MGH78578)

stage_relatives() {
  [ -s "$RELATIVES" ] && return 0
  stage_corpus
  $PY -m argtrain relatives --extra data/pretrain/nonarg-extra.fasta \
    --arg-reference data/cluster40/{train,valid}.fasta data/random/{train,valid}.fasta \
    --finetune-extra-max "$EXTRA_NONARGS" --finetune-seed "$SEED" --threads "$THREADS" \
    --out "$RELATIVES.tmp"
  mv "$RELATIVES.tmp" "$RELATIVES"
}

stage_hard_negatives() {  # split
  [ -s "data/$1/hard-negatives.fasta" ] && return 0
  stage_relatives
  $PY -m argtrain hard-negatives --arg-reference "data/$1/train.fasta" \
    --candidates "data/$1/train.fasta" "$RELATIVES" --threads "$THREADS" \
    --out "data/$1/hard-negatives.fasta.tmp"
  mv "data/$1/hard-negatives.fasta.tmp" "data/$1/hard-negatives.fasta"
}

proteomes() {  # out genome...: Prodigal's proteins of kleborate-examples' genomes
  local data=/usr/share/doc/kleborate/examples/data out="$1" genome genomes=()
  shift
  [ -s "$out" ] && return 0
  for genome in "$@"; do genomes+=("$data/$genome.fna.xz"); done
  mkdir -p "$(dirname "$out")"
  : > "$out.tmp"
  bash scripts/genome-proteins.sh "$out.tmp" "${genomes[@]}"
  mv "$out.tmp" "$out"
}

stage_proteomes() {
  proteomes "$PROTEOMES" "${CHOICE_GENOMES[@]}"
  proteomes "$HELD_OUT_PROTEOMES" "${HELD_OUT_GENOMES[@]}"
}

stage_pretrain() {
  [ -e "$RUN/pretrain.done" ] && return 0
  stage_data
  stage_corpus  # rebuilt byte for byte on a fresh machine (its sha256 is in the manifest)
  local from=()
  if [ -s "$RUN/pretrain/last.pt" ]; then
    from=(--resume)
  elif [ -s model/default/backbone.pt ]; then
    from=(--resume-from model/default/backbone.pt)
  fi
  log "pretrain ${LAYERS}x${DIM}, ${HEADS} heads, ${PRETRAIN_MINUTES} min in all ${from[*]}"
  $PY -m argtrain pretrain --train data/pretrain/train.fasta --valid data/pretrain/valid.fasta \
    --valid-max 1000 --num-layers "$LAYERS" --embed-dim "$DIM" --attention-heads "$HEADS" \
    --max-length 512 --max-tokens 8192 --lr 1e-3 --warmup-fraction 0.02 \
    --max-minutes "$PRETRAIN_MINUTES" --eval-every 200 --save-every 200 \
    --num-threads "$THREADS" --seed "$SEED" $BF16 --no-progress --out "$RUN/pretrain" "${from[@]}"
  touch "$RUN/pretrain.done"
}

keep_finetune() {
  # The fine-tuning state of both splits (weights, optimizer, progress: about 9 MB each), so that
  # the next session, perhaps on a fresh machine, continues instead of starting over.
  for split in cluster40 random; do
    mkdir -p "model/default/finetune-state/$split"
    cp "$RUN/finetune-$split"/{last.pt,best.pt,history.jsonl,metrics.json} \
      "model/default/finetune-state/$split/"
  done
  log "kept the fine-tuning state: model/default/finetune-state/"
}

keep_backbone() {
  # The portable state (weights, progress, perplexity history; no optimizer) is both the shipped
  # backbone and where a fresh machine resumes.
  cp "$RUN/pretrain/portable.pt" model/default/backbone.pt
  cp "$RUN/pretrain/history.jsonl" model/default/pretrain-history.jsonl
  log "kept the backbone: model/default/backbone.pt"
}

restore_finetune() {  # split: a fresh machine continues from the committed state (keep-finetune)
  if [ ! -s "$RUN/finetune-$1/last.pt" ] && [ -s "model/default/finetune-state/$1/last.pt" ]; then
    mkdir -p "$RUN/finetune-$1"
    cp model/default/finetune-state/"$1"/* "$RUN/finetune-$1/"
  fi
}

finetune() {  # split
  # Settings from the fine-tuning pilots (docs/training-pilots.md). FINETUNE_MINUTES is the budget
  # in all: a killed run continues from its last.pt, with the schedule refitted to what is left.
  [ -s "$RUN/finetune-$1/best.pt" ] && [ -e "$RUN/finetune-$1.done" ] && return 0
  stage_data
  stage_corpus
  local backbone="$RUN/pretrain/best.pt" from=() hard=()
  if [ "$HARD_NEGATIVE_REPEAT" -gt 0 ]; then
    stage_hard_negatives "$1"
    hard=(--hard-negatives "data/$1/hard-negatives.fasta"
          --hard-negative-repeat "$HARD_NEGATIVE_REPEAT")
  fi
  [ -s "$backbone" ] || backbone=model/default/backbone.pt
  # The committed state is the shipped settings' run; a variant starts afresh (in an empty $RUN).
  if [ "$LORA_RANK" = 16 ] && [ "$HARD_NEGATIVE_REPEAT" = 0 ]; then restore_finetune "$1"; fi
  [ -s "$RUN/finetune-$1/last.pt" ] && from=(--resume)
  rm -f "$RUN/evidence-rule-$1.json"  # chosen for the previous best.pt
  log "LoRA fine-tune on $1 (${FINETUNE_MINUTES} min in all, ${FINETUNE_THREADS} threads) ${from[*]}"
  $PY -m argtrain finetune --train "data/$1/train.fasta" --valid "data/$1/valid.fasta" \
    --extra-train data/pretrain/nonarg-extra.fasta --extra-max "$EXTRA_NONARGS" \
    "${hard[@]}" \
    --backbone "$backbone" --pooling max --head-hidden 256 --standardize-pooled \
    --head-warmup-epochs 30 \
    --lora-targets q,k,v,out,fc1,fc2 --lora-rank "$LORA_RANK" \
    --lora-alpha "$((2 * LORA_RANK))" --train-norms --lr 5e-4 --sampling sqrt --epoch-size 4000 \
    --max-residues 256 --calibration-max-residues "$SERVED_RESIDUES" --epochs 400 \
    --patience "$PATIENCE" \
    --max-minutes "$FINETUNE_MINUTES" \
    --num-threads "$FINETUNE_THREADS" --seed "$SEED" $BF16 --no-progress \
    --out "$RUN/finetune-$1" "${from[@]}"
  touch "$RUN/finetune-$1.done"
}

calibrate() {  # split: unless best.pt is already calibrated at the served length
  restore_finetune "$1"
  $PY -c "import sys, torch
c = torch.load(sys.argv[1], map_location='cpu', weights_only=False).get('calibration') or {}
sys.exit(0 if c.get('max_residues') == int(sys.argv[2]) else 1)" "$RUN/finetune-$1/best.pt" \
    "$SERVED_RESIDUES" && return 0
  log "calibrate $1 on validation at $SERVED_RESIDUES residues"
  rm -f "$RUN/evidence-rule-$1.json"  # chosen with the old calibration
  $PY -m argtrain calibrate --checkpoint "$RUN/finetune-$1" --valid "data/$1/valid.fasta" \
    --max-residues "$SERVED_RESIDUES" --num-threads "$THREADS" | tee -a "$RUN/recipe.log"
}

evidence_rule() {  # split: when a reference decides, and what a call without one needs (validation)
  [ -s "$RUN/evidence-rule-$1.json" ] && return 0
  stage_corpus  # its Swiss-Prot non-ARGs that fine-tuning did not draw are the background
  stage_relatives
  stage_proteomes
  $PY -m argtrain export --checkpoint "$RUN/finetune-$1" --name "argserve-default-$1" \
    --max-residues "$SERVED_RESIDUES" --references "data/$1/train.fasta" \
    --nonarg-references "data/$1/train.fasta" "$RELATIVES" --out "$RUN/model-$1.pt"
  # The proteome meets the reference set as shipped: every labelled ARG, not the training split's.
  $PY -m argtrain export --checkpoint "$RUN/finetune-$1" --name "argserve-default-$1" \
    --max-residues "$SERVED_RESIDUES" --references "data/$1/"{train,valid,test}.fasta \
    --nonarg-references "data/$1/"{train,valid,test}.fasta "$RELATIVES" \
    --out "$RUN/model-$1-all-references.pt"
  $PY scripts/choose-evidence-rule.py --model "$RUN/model-$1.pt" --valid "data/$1/valid.fasta" \
    --background data/pretrain/nonarg-extra.fasta --finetune-extra-max "$EXTRA_NONARGS" \
    --finetune-seed "$SEED" --proteome "$PROTEOMES" \
    --proteome-references "$RUN/model-$1-all-references.pt" --threads "$THREADS" \
    --out "$RUN/evidence-rule-$1.json" | tee "$RUN/evidence-rule-$1.txt"
}

rule_flags() {  # split: argtrain export's flags for the chosen rule
  $PY -c "import json, sys
rule = json.load(open(sys.argv[1]))
keys = ('reference_min_identity', 'homolog_min_arg_probability', 'novel_min_arg_probability')
print(' '.join(f\"--{k.replace('_', '-')} {rule[k]}\" for k in keys if rule.get(k) is not None))" \
    "$RUN/evidence-rule-$1.json"
}

evaluate() {  # split
  calibrate "$1"
  evidence_rule "$1"
  local rule
  read -ra rule < <(rule_flags "$1")
  $PY -m argtrain export --checkpoint "$RUN/finetune-$1" --name "argserve-default-$1" \
    --max-residues "$SERVED_RESIDUES" --references "data/$1/train.fasta" \
    --nonarg-references "data/$1/train.fasta" "$RELATIVES" \
    "${rule[@]}" --out "$RUN/model-$1.pt"
  log "evaluate $1 (model, DIAMOND and k-mer baselines)"
  # baseline_bounded: DIAMOND with floors chosen under the evidence rule's bounds, the proteome
  # searched against every labelled protein as a DIAMOND user would deploy them.
  $PY -m argtrain evaluate --test "data/$1/test.fasta" --model "$RUN/model-$1.pt" \
    --baseline-train "data/$1/train.fasta" --baseline-valid "data/$1/valid.fasta" \
    --baseline-proteome "$PROTEOMES" --baseline-held-out-proteome "$HELD_OUT_PROTEOMES" \
    --baseline-proteome-references "data/$1/"{train,valid,test}.fasta \
    --num-threads "$THREADS" --threads "$THREADS" --seed "$SEED" --out "$RUN/eval-$1"
}

stage_export() {
  $PY - <<'PYEOF'
import json
metrics = {split: json.load(open(f"runs/default-model/eval-{split}/evaluation.json"))
           for split in ("cluster40", "random")}
json.dump({"homology_split_40": metrics["cluster40"], "random_split": metrics["random"]},
          open("runs/default-model/metrics.json", "w"), indent=1)
PYEOF
  mkdir -p model/default
  local rule
  read -ra rule < <(rule_flags cluster40)
  # The shipped reference set is every labelled ARG (ResFinder), not only the training split: the
  # weights are the evaluated ones; the test metrics come from model-cluster40.pt (train only).
  $PY -m argtrain export --checkpoint "$RUN/finetune-cluster40" --name argserve-default \
    --metrics-json "$RUN/metrics.json" --max-residues "$SERVED_RESIDUES" \
    --references data/cluster40/{train,valid,test}.fasta \
    --nonarg-references data/cluster40/{train,valid,test}.fasta "$RELATIVES" \
    "${rule[@]}" --out model/default/argserve-default.pt
  cp "$RUN/metrics.json" model/default/metrics.json
  cp "$RUN/eval-cluster40/confusion.png" model/default/confusion-homology-split.png
  cp "$RUN/eval-random/confusion.png" model/default/confusion-random-split.png
  # The committed backbone is already the one fine-tuned from when pretraining ran elsewhere.
  if [ -s "$RUN/pretrain/portable.pt" ]; then keep_backbone; fi
  log "done: model/default/argserve-default.pt"
}

case "${1:-all}" in
  data) stage_data ;;
  corpus) stage_corpus ;;
  relatives) stage_relatives ;;
  proteomes) stage_proteomes ;;
  hard-negatives) stage_hard_negatives cluster40; stage_hard_negatives random ;;
  pretrain) stage_pretrain ;;
  keep-backbone) keep_backbone ;;
  keep-finetune) keep_finetune ;;
  finetune) finetune cluster40; finetune random ;;
  finetune-cluster40) finetune cluster40 ;;  # the two splits can run side by side,
  finetune-random) finetune random ;;        # e.g. FINETUNE_THREADS=1 each on 2 cores
  calibrate) calibrate cluster40; calibrate random ;;
  calibrate-cluster40) calibrate cluster40 ;;
  calibrate-random) calibrate random ;;
  evaluate) evaluate cluster40; evaluate random ;;
  evaluate-cluster40) evaluate cluster40 ;;  # side by side, e.g. THREADS=1 each
  evaluate-random) evaluate random ;;
  export) stage_export ;;
  all)
    log "data sets"; stage_data
    log "pretraining corpus"; stage_corpus
    stage_relatives; stage_proteomes
    stage_pretrain
    finetune cluster40; finetune random
    evaluate cluster40; evaluate random
    stage_export ;;
  *) echo "usage: $0 [all|data|corpus|relatives|proteomes|hard-negatives|pretrain|keep-backbone|keep-finetune|finetune|finetune-cluster40|finetune-random|calibrate|calibrate-cluster40|calibrate-random|evaluate|evaluate-cluster40|evaluate-random|export]" >&2
     exit 2 ;;
esac
