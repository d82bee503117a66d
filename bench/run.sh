#!/usr/bin/env bash
# Benchmarks in one go on this machine: the raw model, the server with dynamic batching at several
# concurrencies, the server with batching disabled, and an open-loop run at half of saturation, for
# the default model and for the ESM-2 8M architecture (random weights: speed only). Writes
# bench/results/<date>-<host>.md with the table and the exact commands.
#
#   bash bench/run.sh                 # needs a build (scripts/build.sh)
#   DURATION=30s bash bench/run.sh    # longer runs
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${DURATION:-15s}"
WARMUP="${WARMUP:-3s}"
WORKERS="${WORKERS:-$(nproc)}"   # model workers (batches side by side)
THREADS="${THREADS:-1}"          # Torch intra-op threads per worker
RAW_SEQUENCES="${RAW_SEQUENCES:-500}"
BIN=build/bin
PY=/usr/bin/python3
work="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

fasta="${BENCH_FASTA:-data/cluster40/test.fasta}"
if [ ! -s "$fasta" ]; then
  echo "building the data set for its test split ($fasta)"
  PYTHONPATH=training $PY -m argtrain dataset --split cluster --identity 0.4 --coverage 0.8 --out data/cluster40
fi

mkdir -p build/bench
esm8m=build/bench/esm2-t6-8M-random.pt
if [ ! -s "$esm8m" ]; then
  PYTHONPATH=training $PY -m argtrain export --random-init --num-layers 6 --embed-dim 320 --attention-heads 20 \
    --classes "$(grep '^>' "$fasta" | sed 's/.*|//' | sort -u | paste -sd,)" --name esm2-t6-8M-random \
    --out "$esm8m" > /dev/null
fi

out="bench/results/$(date +%Y-%m-%d)-$(hostname -s).md"
log="$work/log.md"
run() {  # Runs a command, records it and its output line.
  echo "\$ $*" >> "$log.commands"
  "$@" | tee -a "$log.lines"
}

start_server() {  # model, extra flags...
  local model="$1"; shift
  rm -f "$work/ports"
  $BIN/argserve --model="$model" --address=127.0.0.1:0 --metrics_address=127.0.0.1:0 --port_file="$work/ports" \
    --workers="$WORKERS" --intra_op_threads="$THREADS" "$@" 2> "$work/server.log" &
  server_pid=$!
  for _ in $(seq 1 600); do [ -s "$work/ports" ] && break; sleep 0.1; done
  grpc_port="$(sed -n 's/.*grpc=\([0-9]*\).*/\1/p' "$work/ports")"
  metrics_port="$(sed -n 's/.*metrics=\([0-9]*\).*/\1/p' "$work/ports")"
  echo "\$ argserve --model=$model --workers=$WORKERS --intra_op_threads=$THREADS $*" >> "$log.commands"
}
stop_server() { kill -TERM "$server_pid"; wait "$server_pid" || true; }
json_get() {  # file, Python expression over its JSON as d
  $PY -c "import json, sys; d = json.load(open(sys.argv[1])); print($2)" "$1"
}

load() {  # label, flags...
  local label="$1"; shift
  run $BIN/argserve-bench --target="127.0.0.1:$grpc_port" --metrics_url_port="$metrics_port" --fasta="$fasta" \
    --duration="$DURATION" --warmup="$WARMUP" --label="$label" --json_out="$work/last.json" "$@" || true
}

# The machine's matrix-product ceiling, the scale every throughput here is bounded by.
gemm_ceiling="$(OPENBLAS_NUM_THREADS="$(nproc)" $PY - <<'PYEOF'
import time, torch
a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
for _ in range(3):
    a @ b
start, n = time.perf_counter(), 10
for _ in range(n):
    a @ b
print(f"{2 * 2048**3 * n / (time.perf_counter() - start) / 1e9:.0f}")
PYEOF
)"

{
  echo "# argserve benchmark, $(date -u +%Y-%m-%dT%H:%MZ), $(hostname -s)"
  echo
  echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores;" \
       "sequences drawn from \`$fasta\` ($(grep -c '^>' "$fasta") proteins); $WORKERS workers x $THREADS Torch thread(s), OpenBLAS 1 thread;" \
       "runs of $DURATION after $WARMUP warm-up."
  echo
  echo "fp32 GEMM ceiling (2048^3, OpenBLAS, all cores): $gemm_ceiling GFLOP/s"
  echo
} > "$out"

for model in model/default/argserve-default.pt "$esm8m"; do
  [ -s "$model" ] || { echo "skipping missing $model"; continue; }
  : > "$log.lines"; : > "$log.commands"
  # The raw model's best batching: sorted and packed, at the server's largest batch and at
  # smaller ones (on CPU, small batches are often faster per token); the best one is the reference.
  raw_sps=0
  for raw_batch in 1 8 64; do
    run $BIN/argserve-raw-bench --model="$model" --fasta="$fasta" --workers="$WORKERS" --threads="$THREADS" \
      --sequences="$RAW_SEQUENCES" --max_batch_size="$raw_batch" --json_out="$work/raw.json"
    raw_sps="$(json_get "$work/raw.json" "max($raw_sps, d['sequences_per_second'])")"
  done
  mean_tokens="$(json_get "$work/raw.json" "d['tokens_per_second'] / d['sequences_per_second']")"

  start_server "$model"
  load single --mode=closed --concurrency=1
  single_p50="$(json_get "$work/last.json" "d['latency_seconds']['p50']")"
  single_p99="$(json_get "$work/last.json" "d['latency_seconds']['p99']")"
  load batching --mode=closed --concurrency=8
  at8="$(json_get "$work/last.json" "d['sequences_per_second']")"
  load batching --mode=closed --concurrency=32
  saturated="$(json_get "$work/last.json" "d['sequences_per_second']")"
  saturated_tokens="$(json_get "$work/last.json" "d['residues_per_second'] + 2 * d['sequences_per_second']")"
  load batching --mode=closed --concurrency=64
  half="$($PY -c "print(max(1.0, $saturated / 2))")"
  load half-load --mode=open --rate="$half"
  half_p99="$(json_get "$work/last.json" "d['latency_seconds']['p99']")"
  stop_server

  start_server "$model" --max_batch_size=1
  load no-batching --mode=closed --concurrency=32
  unbatched="$(json_get "$work/last.json" "d['sequences_per_second']")"
  stop_server

  # bfloat16 autocast, same worker layout.
  for raw_batch in 1 8; do
    run $BIN/argserve-raw-bench --model="$model" --fasta="$fasta" --workers="$WORKERS" --threads="$THREADS" \
      --sequences="$RAW_SEQUENCES" --max_batch_size="$raw_batch" --precision=bf16
  done
  start_server "$model" --precision=bf16
  load batching-bf16 --mode=closed --concurrency=32
  bf16_tokens="$(json_get "$work/last.json" "d['residues_per_second'] + 2 * d['sequences_per_second']")"
  stop_server

  # The yardstick of the ESM-2 8M target: the official forward, eager in Python, PyTorch defaults.
  official_tps=0
  if [ "$model" = "$esm8m" ]; then
    echo "\$ PYTHONPATH=training:training/tests $PY bench/official_eager.py --fasta=$fasta --sequences=$RAW_SEQUENCES --rounds=1" \
      >> "$log.commands"
    PYTHONPATH=training:training/tests $PY bench/official_eager.py --fasta="$fasta" --sequences="$RAW_SEQUENCES" \
      --rounds=1 --json-out="$work/official.json" | tee -a "$log.lines"
    official_tps="$(json_get "$work/official.json" "d['best_tokens_per_second']")"
  fi

  {
    echo "## $(basename "$model")"
    echo
    echo '```'
    cat "$log.lines"
    echo '```'
    echo
    $PY - "$raw_sps" "$saturated" "$single_p50" "$single_p99" "$half_p99" "$unbatched" "$saturated_tokens" \
      "$bf16_tokens" "$at8" "$official_tps" "$mean_tokens" "$gemm_ceiling" <<'PYEOF'
import sys
raw, sat, p50, p99, half_p99, unbatched, sat_tok, bf16_tok, at8, official, mean_tokens, ceiling = map(
    float, sys.argv[1:])
print(f"- server at saturation (32 callers) / best raw model: {sat:.1f} / {raw:.1f} seq/s = {sat / raw:.3f};"
      f" at 8 callers {at8:.1f} / {raw:.1f} = {at8 / raw:.3f}")
print(f"- dynamic batching / batching disabled (32 callers): {sat:.1f} / {unbatched:.1f} seq/s = {sat / unbatched:.3f}")
print(f"- single request: p50 {p50 * 1e3:.1f} ms, p99 {p99 * 1e3:.1f} ms; at half of saturation p99 "
      f"{half_p99 * 1e3:.1f} ms = {half_p99 / p50:.1f}x single p50, {half_p99 / p99:.1f}x single p99")
print(f"- server end to end at 32 callers: {sat_tok:.0f} tokens/s fp32, {bf16_tok:.0f} tokens/s bf16")
if official > 0:
    print(f"- server end to end / official eager fp32 forward: {sat_tok:.0f} / {official:.0f} tokens/s"
          f" = {sat_tok / official:.2f}x")
    # ESM-2 8M: 6 layers of width 320; 2 FLOP per weight per token in the projections and MLP
    # (12 d^2 weights a layer) plus 4 d FLOP per token pair in attention, at the mean length.
    layers, dim = 6, 320
    flops_per_token = 2 * 12 * layers * dim * dim + 4 * layers * dim * mean_tokens
    print(f"- server end to end in FLOP: {sat_tok * flops_per_token / 1e9:.0f} GFLOP/s"
          f" ({flops_per_token / 1e6:.1f} MFLOP per token at the mean {mean_tokens:.0f} tokens)"
          f" = {sat_tok * flops_per_token / 1e9 / ceiling:.2f} of the {ceiling:.0f} GFLOP/s GEMM ceiling")
PYEOF
    echo
    echo "Commands:"
    echo
    echo '```'
    cat "$log.commands"
    echo '```'
    echo
  } >> "$out"
done
echo "wrote $out"
