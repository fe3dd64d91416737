#!/usr/bin/env bash
# Time to accuracy: trains CONFIG on 2 local ranks, evaluating the test set after every epoch
# (eval.test_every_epoch, for this benchmark only: the model is never chosen by it), and prints
# when the test accuracy first reached TARGET (or each of TARGET,TARGET2,...): training time (the
# sum of epoch times) and total wall time, plus the final accuracy. usage: bench/time_to_accuracy.sh CONFIG TARGET [--set ...]
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
awk -v targets="$target" -v total="$(echo "$end - $start" | bc)" -v cpu="$(bash bench/cpu_name.sh)" \
    -f bench/tta_report.awk "$log"
