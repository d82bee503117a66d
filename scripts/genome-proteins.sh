#!/usr/bin/env bash
# Proteins of whole genomes for the proteome checks: Prodigal (single genome mode) on each
# xz-compressed nucleotide FASTA, the proteins named <genome>:<Prodigal's id> (the genome's file
# name without .fna.xz) and without the final '*', appended to OUT.
#
#   bash scripts/genome-proteins.sh OUT.faa GENOME.fna.xz...
set -euo pipefail
out="$1"; shift
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
for genome in "$@"; do
  name="$(basename "$genome" .fna.xz)"
  xzcat "$genome" > "$work/genome.fna"
  prodigal -q -p single -i "$work/genome.fna" -a "$work/$name.faa" -o /dev/null
  sed -e "s/^>\([^ ]*\).*/>$name:\1/" -e 's/\*$//' "$work/$name.faa" >> "$out"
done
