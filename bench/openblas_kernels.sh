#!/usr/bin/env bash
# What OpenBLAS's kernel choice does to the server: the same test split through two servers with
# evidence, one with OpenBLAS's matrix kernels pinned (OPENBLAS_CORETYPE, default Haswell: some
# machine images pin it because older OpenBLAS builds misbehave on newer CPUs) and one with
# OpenBLAS's own choice for the CPU (OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset). Checks that
# both answer the same and times them with hyperfine. Writes
# bench/results/<date>-<time>-<host>-openblas-kernels.md.
#
#   bash bench/openblas_kernels.sh              # needs a build (scripts/build.sh) and data/
#   PINNED=SkylakeX RUNS=5 bash bench/openblas_kernels.sh
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS="${RUNS:-3}"
PINNED="${PINNED:-Haswell}"
BIN=build/bin
fasta="${BENCH_FASTA:-data/cluster40/test.fasta}"
model="${BENCH_MODEL:-model/default/argserve-default.pt}"
work="$(mktemp -d)"
# The servers start in command substitutions (subshells), so their pids are kept in files.
trap 'kill $(cat "$work"/*.pid 2>/dev/null) 2>/dev/null || true; rm -rf "$work"' EXIT

# shellcheck source=bench/lib.sh
. bench/lib.sh
# OPENBLAS_VERBOSE=2 makes OpenBLAS name the kernels it chose in each server's log.
pinned_port="$(OPENBLAS_VERBOSE=2 OPENBLAS_CORETYPE="$PINNED" start_server pinned \
  --long_sequences=truncate)"
own_port="$(unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
  OPENBLAS_VERBOSE=2 start_server own --long_sequences=truncate)"
kernels() { sed -n 's/^Core: //p' "$work/$1.log" | head -1; }
cli() { echo "$BIN/argserve-cli classify --target 127.0.0.1:$1 -q -o /dev/null $fasta"; }

"$BIN/argserve-cli" classify --target "127.0.0.1:$pinned_port" -q --format jsonl \
  -o "$work/pinned.jsonl" "$fasta"
"$BIN/argserve-cli" classify --target "127.0.0.1:$own_port" -q --format jsonl \
  -o "$work/own.jsonl" "$fasta"
agreement="$(/usr/bin/python3 - "$work/pinned.jsonl" "$work/own.jsonl" <<'PY'
import json
import sys


def rows(path):
    with open(path) as f:
        return {row["id"]: row for row in map(json.loads, f)}


def numbers(value):
    if isinstance(value, float):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from numbers(v)
    elif isinstance(value, list):
        for v in value:
            yield from numbers(v)


def words(row):
    return {k: v for k, v in row.items() if isinstance(v, (str, bool))}


a, b = rows(sys.argv[1]), rows(sys.argv[2])
same = sum(words(a[i]) == words(b.get(i, {})) for i in a)
largest = max((abs(x - y) for i in a if i in b for x, y in zip(numbers(a[i]), numbers(b[i]))),
              default=0.0)
print(f"{same} of {len(a)} proteins with the same call, class, tier and references; "
      f"largest difference in any probability, identity or score: {largest:.1e}")
PY
)"

out="bench/results/$(date +%Y-%m-%d-%H%M)-$(hostname -s)-openblas-kernels.md"
hyperfine --style basic --runs "$RUNS" --warmup 1 --export-markdown "$work/table.md" \
  -n "pinned-$PINNED" "$(cli "$pinned_port")" -n openblas-own-choice "$(cli "$own_port")" \
  > "$work/report.txt"
proteins="$(grep -c '^>' "$fasta")"
{
  echo "# OpenBLAS's kernels pinned or chosen for the CPU ($(date -u +%Y-%m-%d), $(nproc) cores)"
  echo
  echo "$proteins proteins of \`$fasta\` through two servers with evidence, default flags, model"
  echo "\`$model\`: OpenBLAS kernels $(kernels pinned) (\`OPENBLAS_CORETYPE=$PINNED\`) against"
  echo "OpenBLAS's own choice for this CPU, $(kernels own) (\`OPENBLAS_CORETYPE\` and"
  echo "\`OPENBLAS_L2_SIZE\` unset). $agreement."
  echo
  echo '```'
  echo "\$ RUNS=$RUNS PINNED=$PINNED bash bench/openblas_kernels.sh"
  cat "$work/report.txt"
  echo '```'
  echo
  cat "$work/table.md"
} > "$out"
cat "$out"
