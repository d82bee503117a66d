#!/usr/bin/env bash
# Installs every dependency of argserve from Debian (bookworm) packages. Idempotent: packages that
# are already installed are skipped, and apt is not touched at all when nothing is missing.
set -euo pipefail

PACKAGES=(
  # build toolchain
  build-essential cmake pkg-config git ca-certificates clang-format clang-tidy
  # C++ libraries
  libtorch-dev libopenblas0-pthread libjemalloc-dev
  libgrpc++-dev libgrpc-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev prometheus-cpp-dev zlib1g-dev nlohmann-json3-dev
  libgtest-dev libgmock-dev libmicrohttpd-dev libcli11-dev
  # alignment of proteins to the reference set: parasail (shortlist scores), Striped
  # Smith-Waterman (traceback), SeqAn (BLOSUM62)
  libparasail-dev libssw-dev libseqan2-dev
  # Python side: training and the Python client
  python3 python3-torch python3-numpy python3-matplotlib python3-tqdm python3-pytest
  python3-grpcio python3-protobuf python3-threadpoolctl python3-h2
  # data and homology tools used by training and tests
  resfinder-db mmseqs2-examples mmseqs2 diamond-aligner
  # gene calling for the CLI's --input contigs
  prodigal
  # the pretraining corpus: Swiss-Prot as BLAST databases, and blastdbcmd to read them
  metastudent-data ncbi-blast+
  # monitoring (deployment integration test)
  prometheus docker-compose python3-yaml
  # misc tools the tests use
  curl openssl clang libclang-rt-14-dev
  # benchmarks: timing whole commands; whole bacterial genomes (Klebsiella pneumoniae)
  hyperfine kleborate-examples
)

if [ "$(id -u)" -eq 0 ]; then SUDO=(); else SUDO=(sudo); fi

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages already installed"
  exit 0
fi

echo "install-deps: installing ${#missing[@]} packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "install-deps: done"
