#!/usr/bin/env bash
# The test suite: install dependencies, build with tests, run everything through ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
bash scripts/setup-pyenv.sh build/pyenv  # Python packages of the sharing tests; never fails
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
cd build && ctest --output-on-failure -j 2 "$@"
