#!/usr/bin/env bash
# What nearest-reference evidence costs the server: the same test split classified through two
# servers on the same model, one with --evidence=true and one with --evidence=false, timed with
# hyperfine, and the servers' CPU time per protein from /proc. The model is the shipped default
# (its reference set as shipped); BENCH_MODEL names another artifact. Writes
# bench/results/<date>-<time>-<host>-evidence.md.
#
#   bash bench/evidence_cost.sh         # needs a build (scripts/build.sh) and data/ (the recipe's data stage)
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS="${RUNS:-5}"
BIN=build/bin
fasta="${BENCH_FASTA:-data/cluster40/test.fasta}"
model="${BENCH_MODEL:-model/default/argserve-default.pt}"
work="$(mktemp -d)"
# The servers start in command substitutions (subshells), so their pids are kept in files.
trap 'kill $(cat "$work"/*.pid 2>/dev/null) 2>/dev/null || true; rm -rf "$work"' EXIT

# shellcheck source=bench/lib.sh
. bench/lib.sh
with_port="$(start_server with --long_sequences=truncate --evidence=true)"
without_port="$(start_server without --long_sequences=truncate --evidence=false)"
proteins="$(grep -c '^>' "$fasta")"
cli() { echo "$BIN/argserve-cli classify --target 127.0.0.1:$1 -q -o /dev/null $fasta"; }

# CPU seconds a server has used (all its threads), from /proc.
cpu_seconds() {
  awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$(cat "$work/$1.pid")/stat"
}
with_cpu="$(cpu_seconds with)"
without_cpu="$(cpu_seconds without)"

out="bench/results/$(date +%Y-%m-%d-%H%M)-$(hostname -s)-evidence.md"
hyperfine --style basic --runs "$RUNS" --warmup 1 --export-markdown "$work/table.md" \
  -n with-evidence "$(cli "$with_port")" -n without-evidence "$(cli "$without_port")" > "$work/report.txt"
# Per protein, over the warm-up and the timed runs.
cpu_ms() {
  awk -v a="$1" -v b="$2" -v n="$(( proteins * (RUNS + 1) ))" 'BEGIN {printf "%.2f", 1000 * (b - a) / n}'
}
with_ms="$(cpu_ms "$with_cpu" "$(cpu_seconds with)")"
without_ms="$(cpu_ms "$without_cpu" "$(cpu_seconds without)")"
references="$(PYTHONPATH=training /usr/bin/python3 -c "import json, sys
from argtrain.evaluate import load_artifact
meta = load_artifact(sys.argv[1])[1]['references']
print(f\"{meta['count']} proteins, version {meta['version']}: {meta['source']}\")" "$model")"
{
  echo "# Cost of nearest-reference evidence ($(date -u +%Y-%m-%d), $(nproc) cores)"
  echo
  echo "$proteins proteins of \`$fasta\` through the server, default flags, model \`$model\`"
  echo "(reference set: $references); \`--evidence=true\` against \`--evidence=false\`."
  echo
  echo '```'
  echo "\$ RUNS=$RUNS bash bench/evidence_cost.sh"
  cat "$work/report.txt"
  echo '```'
  echo
  cat "$work/table.md"
  echo
  echo "Server CPU time per protein (all threads, /proc): $with_ms ms with evidence, $without_ms ms without"
  echo "(the evidence: $(awk -v a="$with_ms" -v b="$without_ms" 'BEGIN {printf "%.2f", a - b}') ms)."
} > "$out"
cat "$out"
