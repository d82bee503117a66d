#!/usr/bin/env bash
# False ARG calls on a proteome-like background: Swiss-Prot non-ARGs (the recipe's
# data/pretrain/nonarg-extra.fasta: no antibiotic GO term, no ARG homolog at >= 30% identity over
# half of either protein) that fine-tuning never saw (the recipe samples 20,000 of them with its
# seed; these are drawn from the rest). Classified through the server on the shipped model with
# evidence on and off; the counts by tier and class go to
# bench/results/<date>-<time>-<host>-background.md.
#
#   bash bench/background_calls.sh    # needs a build and the recipe's corpus stage
set -euo pipefail
cd "$(dirname "$0")/.."

PROTEINS="${PROTEINS:-10000}"
model="${BENCH_MODEL:-model/default/argserve-default.pt}"
BIN=build/bin
work="$(mktemp -d)"
trap 'kill $(cat "$work"/*.pid 2>/dev/null) 2>/dev/null || true; rm -rf "$work"' EXIT
# shellcheck source=bench/lib.sh
. bench/lib.sh

PYTHONPATH=training /usr/bin/python3 - "$PROTEINS" "$work/background.fasta" <<'PY'
import sys

from argtrain.background import unseen_background

# The recipe's fine-tuning sample: argtrain finetune --extra-max 20000 --seed 42.
drawn = unseen_background("data/pretrain/nonarg-extra.fasta", int(sys.argv[1]), 20000, 42)
with open(sys.argv[2], "w") as out:
    out.writelines(f">{r.id}\n{r.seq}\n" for r in drawn)
PY

classify() {  # evidence true|false -> $work/summary-*.md (a table row), $work/calls-*.md
  local port
  port="$(start_server "$1" --evidence="$1" --long_sequences=window)"
  $BIN/argserve-cli classify --target "127.0.0.1:$port" -q --long-sequences window \
    -o "$work/$1.tsv" "$work/background.fasta"
  stop_server "$1"
  /usr/bin/python3 - "$work/$1.tsv" "$1" "$work/summary-$1.md" "$work/calls-$1.md" <<'PY'
import collections
import csv
import sys

rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
calls = [r for r in rows if r["is_arg"] == "true"]
tiers = collections.Counter(r["tier"] for r in calls)
classes = collections.Counter(r["predicted_class"] for r in calls)
with open(sys.argv[3], "w") as out:
    out.write(f"| {sys.argv[2]} | {len(rows)} | {len(calls)} ({len(calls) / len(rows):.2%}) | "
              f"{dict(sorted(tiers.items()))} | {dict(classes.most_common())} |\n")
with open(sys.argv[4], "w") as out:
    out.write(f"\nCalls with evidence={sys.argv[2]} (id, class, tier, P(ARG), nearest reference, "
              f"identity %):\n\n")
    for r in calls:
        out.write(f"- {r['id']} {r['predicted_class']} {r['tier']} "
                  f"{float(r['arg_probability']):.3f} {r['reference_gene'] or '-'} "
                  f"{r['identity'] or '-'}\n")
PY
}

classify true
classify false
out="bench/results/$(date +%Y-%m-%d-%H%M)-$(hostname -s)-background.md"
{
  echo "# ARG calls on $PROTEINS Swiss-Prot non-ARGs unseen in fine-tuning ($(date -u +%Y-%m-%d))"
  echo
  echo "Model \`$model\`; \`bash bench/background_calls.sh\`. Every call is a false positive"
  echo "by the data set's labels (some may be unannotated resistance proteins)."
  echo
  echo "| evidence | proteins | called ARG | by tier | by class |"
  echo "| --- | ---: | ---: | --- | --- |"
  cat "$work"/summary-true.md "$work"/summary-false.md "$work"/calls-true.md "$work"/calls-false.md
} > "$out"
cat "$out"
