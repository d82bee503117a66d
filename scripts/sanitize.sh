#!/usr/bin/env bash
# Builds the Torch-free tests (tokenizer, FASTA, batcher, gRPC service with a fake model) with a
# sanitizer and runs them. Usage: scripts/sanitize.sh address|thread [BUILD_DIR]
#   address: AddressSanitizer + UndefinedBehaviorSanitizer (leaks included)
#   thread:  ThreadSanitizer, with tests/tsan.supp for races inside uninstrumented system libraries
set -euo pipefail
cd "$(dirname "$0")/.."
sanitizer="${1:?usage: sanitize.sh address|thread [build-dir]}"
dir="${2:-build-$sanitizer}"
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DARGSERVE_WITH_TORCH=OFF \
  -DARGSERVE_SANITIZE="$sanitizer" > "$dir.configure.log" 2>&1 || { cat "$dir.configure.log"; exit 1; }
cmake --build "$dir" -j"${ARGSERVE_JOBS:-2}" --target torch_free_tests > "$dir.build.log" 2>&1 \
  || { tail -50 "$dir.build.log"; exit 1; }
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$PWD/tests/tsan.supp"
for tests in common_tests model_core_tests server_tests client_tests; do
  "$dir/bin/$tests" --gtest_brief=1
done
