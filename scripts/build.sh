#!/usr/bin/env bash
# Configures and builds argserve into build/ (binaries in build/bin/). Two parallel jobs by default;
# set ARGSERVE_JOBS to change it.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -DCMAKE_BUILD_TYPE="${ARGSERVE_BUILD_TYPE:-RelWithDebInfo}" > build.log.tmp 2>&1 \
  || { cat build.log.tmp; rm -f build.log.tmp; exit 1; }
rm -f build.log.tmp
cmake --build build -j"${ARGSERVE_JOBS:-2}"
