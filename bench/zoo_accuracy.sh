#!/usr/bin/env bash
# The seeds' table: every zoo config trained at its own epochs on 2 local ranks, its test
# accuracy next to the accuracy its source reports (../shared/DESIGN.md section 4), with the
# training time and the wall time. usage: bash bench/zoo_accuracy.sh [CONFIG...] [-- --set ...]
# (a config's name without .yaml; default: all seven, cifar10_cnn last: about 2.5 h alone).
set -euo pipefail
cd "$(dirname "$0")/.."
configs=(); extra=()
while [ $# -gt 0 ]; do
  if [ "$1" = "--" ]; then shift; extra=("$@"); break; fi
  configs+=("$1"); shift
done
[ ${#configs[@]} -gt 0 ] || configs=(mnist_mlp mnist_convnet mnist_cnn mnist_cnn3conv mnist_cnn5x5 cifar10_small cifar10_cnn)
declare -A REF=([mnist_mlp]="98.21%" [mnist_convnet]="~99% (99.25% val)" [mnist_cnn]="99.2%"
  [mnist_cnn5x5]="~99%" [mnist_cnn3conv]="98.85%" [cifar10_cnn]="86.87%" [cifar10_small]="68%")
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
echo "CPU: $(bash bench/cpu_name.sh); $(date -u +%Y-%m-%d); 2 ranks"
echo
echo "| config | epochs | test accuracy | reported | training time | wall time |"
echo "|---|---|---|---|---|---|"
for c in "${configs[@]}"; do
  out=runs/zoo-$c
  start=$(date +%s)
  mpirun -np 2 --bind-to core ./build/dptrain train configs/$c.yaml --set run_dir=$out --overwrite \
      --set checkpoint.every_epochs=0 "${extra[@]}" > $out.log 2>&1 || { echo "| $c | failed: see $out.log |||||"; continue; }
  wall=$(( $(date +%s) - start ))
  awk -v c="$c" -v ref="${REF[$c]:-}" -v wall="$wall" '
    /^epochs_run:/ {e = $2} /^test_accuracy:/ {a = $2} /^seconds_per_epoch:/ {s = $2}
    END {printf "| %s | %d | %.2f%% | %s | %.0f s | %d s |\n", c, e, 100 * a, ref, e * s, wall}' $out/summary.yaml
done
