#!/usr/bin/env bash
# The forward's settings one at a time against the server's defaults, on the raw model (no gRPC):
# batch order, autograd mode, TorchScript passes, executor, precision. Each variant runs REPEATS
# times, interleaved with the others so that drift on the machine spreads over all of them; the
# median is reported. Writes bench/results/<date>-<host>-steps.md.
#
#   bash bench/steps.sh                      # needs a build (scripts/build.sh) and the test split
#   REPEATS=5 SEQUENCES=500 bash bench/steps.sh
set -euo pipefail
cd "$(dirname "$0")/.."

REPEATS="${REPEATS:-3}"
SEQUENCES="${SEQUENCES:-300}"
WORKERS="${WORKERS:-$(nproc)}"
BIN=build/bin
PY=/usr/bin/python3
fasta="${BENCH_FASTA:-data/cluster40/test.fasta}"
esm8m=build/bench/esm2-t6-8M-random.pt
[ -s "$fasta" ] || { echo "missing $fasta: run bench/run.sh once, or set BENCH_FASTA" >&2; exit 2; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# name|flags (the server's defaults: sorted batches of up to 64 rows and 1,024 tokens, InferenceMode,
# no TorchScript passes, the profiling executor, fp32)
variants=(
  "defaults|"
  "order=drawn|--order=drawn"
  "batch 1|--max_batch_size=1"
  "grad_mode=no_grad|--grad_mode=no_grad"
  "graph_passes=freeze|--graph_passes=freeze"
  "graph_passes=optimize|--graph_passes=optimize"
  "executor=legacy|--executor=legacy"
  "precision=bf16|--precision=bf16"
)

out="bench/results/$(date +%Y-%m-%d)-$(hostname -s)-steps.md"
: > "$work/results.tsv"
: > "$work/commands"
for model in model/default/argserve-default.pt "$esm8m"; do
  [ -s "$model" ] || { echo "skipping missing $model (bench/run.sh exports it)"; continue; }
  for repeat in $(seq 1 "$REPEATS"); do
    for v in "${variants[@]}"; do
      name="${v%%|*}"
      read -r -a flags <<< "${v#*|}"
      cmd=("$BIN/argserve-raw-bench" --model="$model" --fasta="$fasta" --sequences="$SEQUENCES"
           --workers="$WORKERS" --threads=1 --max_batch_size=64 --max_batch_tokens=1024 "${flags[@]}"
           --json_out="$work/last.json")
      [ "$repeat" = 1 ] && echo "\$ ${cmd[*]}" | sed "s|$work/last.json|out.json|" >> "$work/commands"
      "${cmd[@]}" > /dev/null
      $PY -c "import json, sys; d = json.load(open(sys.argv[1]));
print('\t'.join(map(str, [sys.argv[2], sys.argv[3], d['tokens_per_second'], d['padding_efficiency']])))" \
        "$work/last.json" "$(basename "$model" .pt)" "$name" >> "$work/results.tsv"
      echo "$(basename "$model" .pt) $name: $(tail -1 "$work/results.tsv" | cut -f3 | cut -d. -f1) tokens/s"
    done
  done
done

{
  echo "# argserve forward settings, $(date -u +%Y-%m-%dT%H:%MZ), $(hostname -s)"
  echo
  echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; raw model" \
       "(\`argserve-raw-bench\`), $WORKERS workers x 1 Torch thread, OpenBLAS 1 thread, $SEQUENCES sequences" \
       "drawn from \`$fasta\`; median of $REPEATS interleaved runs; ratio against the defaults."
  echo
  $PY - "$work/results.tsv" <<'PYEOF'
import collections, statistics, sys
runs = collections.defaultdict(list)
padding = {}
for line in open(sys.argv[1]):
    model, name, tps, eff = line.rstrip("\n").split("\t")
    runs[model, name].append(float(tps))
    padding[model, name] = float(eff)
for model in dict.fromkeys(m for m, _ in runs):
    print(f"## {model}\n")
    print("| variant | tokens/s (median) | runs | vs defaults | padding efficiency |")
    print("| --- | ---: | --- | ---: | ---: |")
    base = statistics.median(runs[model, "defaults"])
    for (m, name), values in runs.items():
        if m != model:
            continue
        median = statistics.median(values)
        listed = ", ".join(f"{v:.0f}" for v in values)
        print(f"| {name} | {median:.0f} | {listed} | {median / base:.3f} | {padding[m, name]:.3f} |")
    print()
PYEOF
  echo "Commands (each run $REPEATS times, interleaved):"
  echo
  echo '```'
  cat "$work/commands"
  echo '```'
} > "$out"
echo "wrote $out"
