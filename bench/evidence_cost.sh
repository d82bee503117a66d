#!/usr/bin/env bash
# What nearest-reference evidence costs the server: the same test split classified through two
# servers, one with --evidence=true and one with --evidence=false, in turns (farm-bench --vs), on
# a model of the default architecture carrying the split's training ARGs as its reference set
# (random weights: the forward costs the same). Writes bench/results/<date>-<host>-evidence.md.
#
#   bash bench/evidence_cost.sh         # needs a build (scripts/build.sh) and data/ (the recipe's data stage)
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS="${RUNS:-5}"
BIN=build/bin
PY=/usr/bin/python3
fasta="${BENCH_FASTA:-data/cluster40/test.fasta}"
train="${BENCH_REFERENCES:-data/cluster40/train.fasta}"
work="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

model=build/bench/default-architecture-with-references.pt
mkdir -p build/bench
if [ ! -s "$model" ]; then
  PYTHONPATH=training $PY -m argtrain export --random-init --num-layers 4 --embed-dim 128 --attention-heads 2 \
    --classes "$(grep '^>' "$train" | sed 's/.*|//' | sort -u | grep -v '^nonarg$' | paste -sd,),nonarg" \
    --references "$train" --name default-architecture --out "$model" > /dev/null
fi

start_server() {  # name, flags...
  local name="$1"; shift
  $BIN/argserve --model="$model" --address=127.0.0.1:0 --metrics_address= --port_file="$work/$name.ports" \
    --long_sequences=truncate "$@" > "$work/$name.out" 2> "$work/$name.log" &
  for _ in $(seq 1 600); do [ -s "$work/$name.ports" ] && break; sleep 0.1; done
  sed -n 's/.*grpc=\([0-9]*\).*/\1/p' "$work/$name.ports"
}
with_port="$(start_server with --evidence=true)"
without_port="$(start_server without --evidence=false)"
proteins="$(grep -c '^>' "$fasta")"
cli() { echo "$BIN/argserve-cli classify --target 127.0.0.1:$1 -q -o /dev/null $fasta"; }

out="bench/results/$(date +%Y-%m-%d)-$(hostname -s)-evidence.md"
report="$(farm-bench -n "$RUNS" --timeout 1200 --vs "$(cli "$without_port")" -- $(cli "$with_port"))"
{
  echo "# Cost of nearest-reference evidence ($(date -u +%Y-%m-%d), $(nproc) cores)"
  echo
  echo "$proteins proteins of \`$fasta\` through the server, default flags; A: \`--evidence=true\`"
  echo "(reference set: the ARGs of \`$train\`, $(grep -c '^>' "$train") records incl. non-ARGs), B:"
  echo "\`--evidence=false\`; the same model, A and B in turns."
  echo
  echo '```'
  echo "\$ bash bench/evidence_cost.sh"
  echo "$report"
  echo '```'
} > "$out"
cat "$out"
