#!/usr/bin/env bash
# Thread layout sweep of the raw model: model workers x Torch intra-op threads x OpenBLAS threads,
# at several batch sizes, for the default model and the ESM-2 8M architecture. This is the
# measurement behind the server's defaults (--workers, --intra_op_threads, --blas_threads).
# Appends to bench/results/<date>-<host>-threads.md.
#
#   bash bench/threads.sh          # needs a build; builds the 8M artifact if missing
#   MODELS=build/bench/esm2-t6-8M-random.pt LAYOUTS="2 1 1" bash bench/threads.sh   # a subset
# A layout is "workers threads blas"; blas 0 (OpenBLAS's default) is one thread per core.
set -euo pipefail
cd "$(dirname "$0")/.."
SEQUENCES="${SEQUENCES:-300}"
LAYOUTS="${LAYOUTS:-1 1 1,1 2 1,1 1 2,1 2 2,1 2 0,2 1 1}"
fasta="${BENCH_FASTA:-data/cluster40/test.fasta}"
esm8m=build/bench/esm2-t6-8M-random.pt
if [ ! -s "$esm8m" ]; then
  mkdir -p build/bench
  PYTHONPATH=training /usr/bin/python3 -m argtrain export --random-init --num-layers 6 --embed-dim 320 \
    --attention-heads 20 --classes "$(grep '^>' "$fasta" | sed 's/.*|//' | sort -u | paste -sd,)" \
    --name esm2-t6-8M-random --out "$esm8m" > /dev/null
fi
MODELS="${MODELS:-model/default/argserve-default.pt $esm8m}"
out="bench/results/$(date +%Y-%m-%d)-$(hostname -s)-threads.md"
{
  echo "# Thread layout sweep, $(date -u +%Y-%m-%dT%H:%MZ), $(hostname -s), $(nproc) cores"
  echo
  echo "\`bash bench/threads.sh\`: argserve-raw-bench on $SEQUENCES sequences from \`$fasta\`, best of 2 passes."
  echo "Columns: workers (batches side by side), Torch threads per worker, OpenBLAS threads"
  echo "(0 = its default, one per core), largest batch."
  echo
  echo '```'
} >> "$out"
IFS=, read -r -a layouts <<< "$LAYOUTS"
for model in $MODELS; do
  for layout in "${layouts[@]}"; do
    read -r workers threads blas <<< "$layout"
    for batch in 1 8 64; do
      build/bin/argserve-raw-bench --model="$model" --fasta="$fasta" --sequences="$SEQUENCES" \
        --workers="$workers" --threads="$threads" --blas_threads="$blas" --max_batch_size="$batch" \
        | sed "s/^raw model /blas=$blas /" | tee -a "$out"
    done
  done
done
echo '```' >> "$out"
echo "wrote $out"
