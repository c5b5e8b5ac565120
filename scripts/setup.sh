#!/usr/bin/env bash
# setup.sh: prepares a fresh Debian 12 machine (as root) to build and test
# Octet, then builds it into build/.  Idempotent: packages already present
# are not reinstalled, an existing .venv is reused, the build is incremental.
#
#   scripts/setup.sh            install, create .venv, configure, build
#   OCTET_SKIP_APT=1 ...        skip the apt step (no root: install the
#                               APT_PACKAGES below some other way first)
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  build-essential cmake pkg-config
  protobuf-c-compiler libprotobuf-c-dev   # the ONNX protobuf in C
  libonnx-dev                             # /usr/include/onnx/onnx.proto
  libonnx-testdata                        # 932 ONNX backend node tests
  dataset-fashion-mnist                   # data of the bundled model (scripts/demo.py)
  llvm-19-dev clang-19 libclang-rt-19-dev # backend, fuzzing, sanitizers
  libcjson-dev libcmocka-dev zlib1g-dev
  graphviz                                # dot -Tsvg in the inspect tests
  python3 python3-venv                    # the test oracles' environment
  valgrind time                           # memcheck; GNU time for peak-memory tests
)

if [ -z "${OCTET_SKIP_APT:-}" ]; then
  missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi

# Test oracles (onnx, onnxruntime, numpy), pinned, in .venv from Debian's python.
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import onnx, onnxruntime, numpy' 2>/dev/null \
   || ! cmp -s scripts/requirements.txt .venv/.requirements; then
  echo "setup: creating .venv with the test oracles"
  /usr/bin/python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check -r scripts/requirements.txt
  cp scripts/requirements.txt .venv/.requirements
fi

cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo ${OCTET_CMAKE_ARGS:-} >/dev/null
cmake --build build -j"$(nproc)"
echo "setup: built build/octet ($(build/octet --version))"
