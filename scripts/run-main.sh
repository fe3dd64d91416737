#!/usr/bin/env bash
# The main job: install dependencies, build, prepare real MNIST into HDF5 shards, and train
# configs/mnist_convnet.yaml (the Keras example) data-parallel on 2 local MPI ranks.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
bash scripts/fetch-data.sh mnist data/raw/mnist
./build/dptrain prepare mnist --raw data/raw/mnist --out data/mnist --shards 4
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# --overwrite: running the main job again starts a fresh run, moving the previous one aside
# into runs/mnist_convnet/overwritten-DATE/ (a fresh run never mixes with another's files).
mpirun -np 2 --oversubscribe ./build/dptrain train configs/mnist_convnet.yaml --overwrite "$@"
