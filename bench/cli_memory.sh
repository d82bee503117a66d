#!/usr/bin/env bash
# Peak memory of argserve-cli over input size: the same random proteins (100-500 residues), 10,000
# and 200,000 of them, classified through a server on a small random model (the client's memory is
# what is measured, not the model's speed). Writes bench/results/<date>-<host>-cli-memory.md.
#
#   bash bench/cli_memory.sh          # needs a build (scripts/build.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=build/bin
PY=/usr/bin/python3
work="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

model=build/bench/cli-memory-model.pt
mkdir -p build/bench
[ -s "$model" ] || PYTHONPATH=training $PY -m argtrain export --random-init --num-layers 1 --embed-dim 16 \
  --attention-heads 2 --classes beta-lactam,nonarg --name cli-memory --out "$model" > /dev/null
$BIN/argserve --model="$model" --address=127.0.0.1:0 --metrics_address= --port_file="$work/ports" \
  2> "$work/server.log" &
for _ in $(seq 1 600); do [ -s "$work/ports" ] && break; sleep 0.1; done
port="$(sed -n 's/.*grpc=\([0-9]*\).*/\1/p' "$work/ports")"

out="bench/results/$(date +%Y-%m-%d)-$(hostname -s)-cli-memory.md"
{
  echo "# argserve-cli peak memory by input size ($(date -u +%Y-%m-%d), $(nproc) cores)"
  echo
  echo '`bash bench/cli_memory.sh`: random proteins of 100-500 residues, TSV to a file; peak RSS'
  echo 'from GNU time (`%M`).'
  echo
  echo "| proteins | input MB | mode | seconds | peak RSS MiB |"
  echo "| ---: | ---: | --- | ---: | ---: |"
} > "$work/report.md"
for n in 10000 200000; do
  $PY - "$n" "$work/in.faa" <<'PYEOF'
import random, sys
n, path = int(sys.argv[1]), sys.argv[2]
rng = random.Random(1)
with open(path, "w") as f:
    for i in range(n):
        f.write(f">p{i}\n{''.join(rng.choices('ACDEFGHIKLMNPQRSTVWY', k=rng.randint(100, 500)))}\n")
PYEOF
  for mode in unary stream; do
    flag=""; [ "$mode" = stream ] && flag="--stream"
    /usr/bin/time -f "%e %M" -o "$work/time" $BIN/argserve-cli classify --target "127.0.0.1:$port" -q $flag \
      --concurrency 4 -o "$work/out.tsv" "$work/in.faa"
    read -r seconds kib < "$work/time"
    mb="$(du -m "$work/in.faa" | cut -f1)"
    echo "| $n | $mb | $mode | $seconds | $((kib / 1024)) |" >> "$work/report.md"
  done
done
cp "$work/report.md" "$out"
cat "$out"
