#!/usr/bin/env bash
# The one command for the first machine with a GPU: builds with CUDA, runs every GPU test (and
# the 2-GPU ones when there are 2+ GPUs), trains mnist_convnet and cifar10_cnn for one epoch on
# the GPU, and appends what it saw to docs/RESULTS.md (section "GPU"). Exits non-zero if any
# GPU test failed. usage: bash scripts/gpu-check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
bash scripts/build.sh -DDPT_WITH_CUDA=ON || exit 1
log=$(mktemp /tmp/gpu-check.XXXXXX)
trap 'rm -f "$log"' EXIT
gpus=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | wc -l)
gpu_name=$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -1)
echo "gpu-check: $gpus GPU(s): $gpu_name" | tee -a "$log"
[ "$gpus" -ge 1 ] || { echo "gpu-check: no GPU visible (nvidia-smi); nothing to check"; exit 1; }

rc=0
( cd build && ctest --output-on-failure -R "CudaVsCpu|GpuRun|TwoGpus" ) 2>&1 | tee -a "$log" || rc=1
if [ "$gpus" -ge 2 ]; then
  mpirun --oversubscribe -np 2 build/tests/dpt_mpi_tests --gtest_filter='TwoRanks.Nccl*' 2>&1 | tee -a "$log" || rc=1
fi

./build/dptrain --version | tee -a "$log"
bash scripts/fetch-data.sh mnist data/raw/mnist > /dev/null
bash scripts/fetch-data.sh cifar10 data/raw/cifar10 > /dev/null
./build/dptrain prepare mnist --raw data/raw/mnist --out data/mnist --shards 4 > /dev/null
./build/dptrain prepare cifar10 --raw data/raw/cifar10 --out data/cifar10 --shards 4 > /dev/null
results=""
for cfg in mnist_convnet cifar10_cnn; do
  for ranks in 1 $([ "$gpus" -ge 2 ] && echo 2); do
    out=runs/gpu-check-$cfg-$ranks
    launcher=""; [ "$ranks" -gt 1 ] && launcher="mpirun --oversubscribe -np $ranks"
    $launcher ./build/dptrain train configs/$cfg.yaml --set train.backend=cuda --set train.epochs=1 \
        --set run_dir=$out --overwrite 2>&1 | tee -a "$log" | grep -E "img/s|Test:|error" || rc=1
    ips=$(grep -m1 '^images_per_sec:' $out/summary.yaml 2>/dev/null | awk '{printf "%.0f", $2}')
    acc=$(grep -m1 '^test_accuracy:' $out/summary.yaml 2>/dev/null | awk '{print $2}')
    results+="| $cfg | $ranks | ${ips:-failed} | ${acc:-failed} |"$'\n'
  done
done

{
  echo
  echo "## GPU: scripts/gpu-check.sh on $(date -u +%Y-%m-%d) ($gpus x $gpu_name; CPU $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs))"
  echo
  echo "GPU tests: $([ $rc -eq 0 ] && echo passed || echo FAILED, see the log of this run)."
  echo
  echo "| config | GPUs (ranks) | train img/s (1 epoch) | test accuracy after 1 epoch |"
  echo "|---|---|---|---|"
  printf "%s" "$results"
} >> docs/RESULTS.md
echo "gpu-check: results appended to docs/RESULTS.md; exit $rc"
exit $rc
