#!/usr/bin/env bash
# Time to accuracy: trains CONFIG on 2 local ranks, evaluating the test set after every epoch
# (eval.test_every_epoch, for this benchmark only: the model is never chosen by it), and prints
# when the test accuracy first reached TARGET: training time (the sum of epoch times) and total
# wall time, plus the final accuracy. usage: bench/time_to_accuracy.sh CONFIG TARGET [--set ...]
set -euo pipefail
cd "$(dirname "$0")/.."
config=${1:?usage: bench/time_to_accuracy.sh CONFIG TARGET [--set key=value ...]}
target=${2:?usage: bench/time_to_accuracy.sh CONFIG TARGET}
shift 2
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
ranks=${RANKS:-2}
name=$(basename "$config" .yaml)
out=runs/tta-$name
log=$out.log
mkdir -p runs
start=$(date +%s.%N)
mpirun -np "$ranks" --bind-to core ./build/dptrain train "$config" --set run_dir="$out" --overwrite \
    --set eval.test_every_epoch=true --set checkpoint.every_epochs=0 "$@" > "$log" 2>&1 || {
  tail -20 "$log"; exit 1; }
end=$(date +%s.%N)
# Lines: "Epoch test: epoch E - accuracy: A - loss: L - training time T s - since start W s"
awk -v target="$target" -v total="$(echo "$end - $start" | bc)" -v cpu="$(bash bench/cpu_name.sh)" '
  /^Epoch test:/ {
    e = $4; a = $7; t = $14; w = $19; last = a
    if (!hit && a + 0 >= target + 0) { hit = 1; he = e; ht = t; hw = w }
  }
  END {
    printf "CPU: %s\n", cpu
    if (hit) printf "reached %s at epoch %s: %.1f s of training, %.1f s since start\n", target, he, ht, hw
    else printf "did NOT reach %s\n", target
    printf "final test accuracy %s; whole command %.1f s\n", last, total
  }' "$log"
