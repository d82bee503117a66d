#!/usr/bin/env bash
# Builds the libFuzzer targets with clang and runs each for a bounded time on its seed corpus.
# Usage: scripts/fuzz.sh [BUILD_DIR] [SECONDS_PER_TARGET]
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-build-fuzz}"
seconds="${2:-60}"
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ -DARGSERVE_WITH_TORCH=OFF \
  -DARGSERVE_BUILD_TESTS=OFF -DARGSERVE_FUZZ=ON > "$dir.configure.log" 2>&1 || { cat "$dir.configure.log"; exit 1; }
cmake --build "$dir" -j"${ARGSERVE_JOBS:-2}" --target fasta_fuzzer request_fuzzer > "$dir.build.log" 2>&1 \
  || { tail -50 "$dir.build.log"; exit 1; }
for target in fasta request; do
  # New inputs go to a scratch corpus; the committed seeds stay as they are.
  scratch="$(mktemp -d)"
  "$dir/bin/${target}_fuzzer" -max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 "$scratch" "tests/fuzz/corpus/$target" 2>&1 | tail -12
  rm -rf "$scratch"
done
