#!/usr/bin/env bash
# ARG calls on whole bacterial proteomes: the four complete Klebsiella pneumoniae genomes
# (chromosome and plasmids) of Debian's kleborate-examples, genes called by Prodigal (single
# genome mode), every protein classified through the server on the shipped model. The calls are
# held against what a ResFinder-style search finds (DIAMOND blastp --sensitive against the
# artifact's own ARG references: >= 90% identity over >= 60% of the reference, ResFinder's default
# thresholds) and against DIAMOND's best hit at E <= 1e-5 (the evaluation's baseline rule).
# Results: bench/results/<date>-<time>-<host>-genomes.md; KEEP=DIR keeps the proteins, the
# calls and DIAMOND's hits there.
#
#   bash bench/genome_calls.sh    # needs a build (bash scripts/build.sh)
set -euo pipefail
cd "$(dirname "$0")/.."

DATA="${GENOMES:-/usr/share/doc/kleborate/examples/data}"
model="${BENCH_MODEL:-model/default/argserve-default.pt}"
BIN=build/bin
THREADS="${THREADS:-2}"
ls "$DATA"/*.fna.xz > /dev/null || {
  echo "no genomes in $DATA: install kleborate-examples (bash scripts/install-deps.sh)" >&2
  exit 2
}
work="$(mktemp -d)"
trap 'kill $(cat "$work"/*.pid 2>/dev/null) 2>/dev/null || true; rm -rf "$work"' EXIT
# shellcheck source=bench/lib.sh
. bench/lib.sh

# The artifact's ARG references (references.tsv inside its zip, read without loading the model)
# as FASTA, ">id|class".
PYTHONPATH=training /usr/bin/python3 - "$model" "$work/references.faa" <<'PY'
import sys
import zipfile

from argtrain.labelled import NONARG
from argtrain.references import FILE_NAME, parse_references_tsv

with zipfile.ZipFile(sys.argv[1]) as z:
    name = next(n for n in z.namelist() if n.endswith(f"/extra/{FILE_NAME}"))
    refs = parse_references_tsv(z.read(name).decode("utf-8"))
with open(sys.argv[2], "w") as out:
    out.writelines(f">{r.id}|{r.label}\n{r.residues}\n" for r in refs if r.label != NONARG)
PY

# Proteins of every genome, named <genome>:<Prodigal's id>, without the final '*'.
bash scripts/genome-proteins.sh "$work/proteins.faa" "$DATA"/*.fna.xz

diamond makedb --quiet --in "$work/references.faa" -d "$work/references"
diamond blastp --quiet --sensitive --evalue 1e-5 --max-target-seqs 1 --threads "$THREADS" \
  -d "$work/references" -q "$work/proteins.faa" -o "$work/diamond.tsv" \
  --outfmt 6 qseqid sseqid pident slen sstart send

port="$(start_server server)"
start=$(date +%s.%N)
$BIN/argserve-cli classify --target "127.0.0.1:$port" -q --long-sequences window \
  -o "$work/calls.tsv" "$work/proteins.faa"
seconds=$(echo "$(date +%s.%N) - $start" | bc)
stop_server server

if [ -n "${KEEP:-}" ]; then
  mkdir -p "$KEEP" && cp "$work"/{proteins.faa,calls.tsv,diamond.tsv} "$KEEP/"
fi
out="bench/results/$(date +%Y-%m-%d-%H%M)-$(hostname -s)-genomes.md"
PYTHONPATH=training /usr/bin/python3 bench/genome_calls_summary.py --calls "$work/calls.tsv" \
  --diamond "$work/diamond.tsv" --model "$model" --seconds "$seconds" \
  --choice Klebs_Kp1084 NTUH-K2044 > "$out"  # scripts/train-default-model.sh's CHOICE_GENOMES
cat "$out"
