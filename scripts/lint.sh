#!/usr/bin/env bash
# clang-format check and clang-tidy over the C++ sources (needs a configured build/ for
# compile_commands.json). Slow: clang-tidy parses the Torch headers for model/torch_classifier.cc.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t sources < <(git ls-files 'common/*.cc' 'evidence/*.cc' 'model/*.cc' 'server/*.cc' 'client/*.cc' 'bench/*.cc' 'tests/*.cc')
mapfile -t all < <(git ls-files '*.cc' '*.h' | grep -v '^training/')
clang-format --dry-run --Werror "${all[@]}"
clang-tidy -p build --quiet "${sources[@]}"
