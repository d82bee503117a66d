#!/usr/bin/env bash
# Installs dependencies, builds, and runs every test (C++ unit, Python training, integration, lint)
# with ctest. This is the README's test command and what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
cd build
ctest --output-on-failure -j"${ARGSERVE_TEST_JOBS:-2}" --timeout 900
