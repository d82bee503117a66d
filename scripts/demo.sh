#!/usr/bin/env bash
# The main job, end to end: install dependencies, build, start argserve on the embedded default
# model, classify examples/proteins.fasta, print the predictions next to the expected classes, stop.
set -euo pipefail
cd "$(dirname "$0")/.."

MODEL="${ARGSERVE_MODEL:-model/default/argserve-default.pt}"
INPUT="${1:-examples/proteins.fasta}"

bash scripts/install-deps.sh
bash scripts/build.sh

workdir="$(mktemp -d)"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$workdir"
}
trap cleanup EXIT

echo "== starting argserve on $MODEL"
build/bin/argserve --model="$MODEL" --address=127.0.0.1:0 --metrics_address=127.0.0.1:0 \
  --port_file="$workdir/ports" 2> "$workdir/server.log" &
server_pid=$!
for _ in $(seq 1 600); do
  [ -s "$workdir/ports" ] && break
  if ! kill -0 "$server_pid" 2>/dev/null; then cat "$workdir/server.log" >&2; exit 1; fi
  sleep 0.1
done
[ -s "$workdir/ports" ] || { echo "argserve did not start in 60 s" >&2; cat "$workdir/server.log" >&2; exit 1; }
port="$(sed -n 's/.*grpc=\([0-9]*\).*/\1/p' "$workdir/ports")"
target="127.0.0.1:$port"

build/bin/argserve-cli health --target "$target" > /dev/null
build/bin/argserve-cli info --target "$target"
echo
echo "== classifying $INPUT"
build/bin/argserve-cli classify --quiet --target "$target" --top-k 2 -o "$workdir/calls.tsv" "$INPUT"

# Expected classes come from the 'expected=CLASS' words of the example headers, when present.
grep '^>' "$INPUT" | sed -n 's/^>\([^ ]*\).*expected=\([^ ]*\).*/\1\t\2/p' > "$workdir/expected.tsv"
awk -F'\t' '
  NR == FNR { expected[$1] = $2; next }
  FNR == 1 {
    for (i = 1; i <= NF; i++) col[$i] = i
    printf "%-26s %-15s %-7s %-9s %-22s %-15s %s\n", "id", "predicted", "P(ARG)", "tier",
           "nearest reference", "expected", ""
    next
  }
  {
    want = ($1 in expected) ? expected[$1] : "-"
    got = $col["predicted_class"]
    mark = (want == "-") ? "" : (want == got ? "ok" : "MISS")
    near = $col["reference_gene"] == "" ? "-" : $col["reference_gene"] " " int($col["identity"] + 0.5) "%"
    printf "%-26s %-15s %-7s %-9s %-22s %-15s %s\n", $1, got, $col["arg_probability"], $col["tier"],
           near, want, mark
  }' "$workdir/expected.tsv" "$workdir/calls.tsv"

kill -TERM "$server_pid"
wait "$server_pid"
server_pid=""
echo "== server stopped"
