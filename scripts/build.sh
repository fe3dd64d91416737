#!/usr/bin/env bash
# Configures and builds dptrain (Release) into build/; used by the main-job and test scripts.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release "$@" > build-config.log 2>&1 || { cat build-config.log; exit 1; }
grep -E "DPT_|CUDA" build-config.log || true
cmake --build build -j "$(nproc)"
