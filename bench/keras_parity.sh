#!/usr/bin/env bash
# Keras parity of a zoo model's accuracy (issue 25, part 3): trains CONFIG (default
# configs/cifar10_cnn.yaml) for EPOCHS (10) with the seed's recipe (no augmentation, the config's
# Adam and batch) in dptrain (1 process, so batch norm sees the same batch as Keras) and in
# Keras 3 on TensorFlow, on the same shards and the same train/validation split, for each seed,
# and prints one Markdown row per run: the test accuracy of the final weights. Accuracy is the
# point here, not speed (bench/compare_peers.sh measures that): the runs may share a busy machine.
# usage: [DPTRAIN=binary] [TOOLS="dptrain keras"] bash bench/keras_parity.sh [CONFIG] [EPOCHS] [SEEDS...]
# TOOLS names the tools to run (both by default), to fill in one tool's missing seed.
set -euo pipefail
cd "$(dirname "$0")/.."
config=${1:-configs/cifar10_cnn.yaml}
epochs=${2:-10}
shift $(( $# < 2 ? $# : 2 ))
seeds=("$@")
[ ${#seeds[@]} -gt 0 ] || seeds=(1 2)
source bench/peer_setup.sh
name=$(basename "$config" .yaml)
config_abs=$(realpath "$config")
mkdir -p runs
echo "CPU: $(bash bench/cpu_name.sh); $name, $epochs epochs, no augmentation"
echo "| tool | seed | test accuracy (%) |"
echo "|---|---|---|"
tools=" ${TOOLS:-dptrain keras} "
for seed in "${seeds[@]}"; do
  if [[ $tools == *" dptrain "* ]]; then
    out=runs/parity-$name-dptrain-s$seed
    "${DPTRAIN:-./build/dptrain}" train "$config" --set run_dir=$out --overwrite --set train.epochs=$epochs \
        --set train.seed=$seed --set data.augment.random_crop=0 \
        --set data.augment.horizontal_flip=false --set checkpoint.every_epochs=0 > $out.log 2>&1 \
      || { tail -5 $out.log; exit 1; }
    acc=$(awk '/test_accuracy:/ {print $2}' $out/summary.yaml)
    echo "| dptrain | $seed | $(awk -v a="$acc" 'BEGIN {printf "%.2f", 100 * a}') |"
  fi
  [[ $tools == *" keras "* ]] || continue
  log=runs/parity-$name-keras-s$seed.log
  (cd bench/peers && ../../$TF keras_parity.py "$config_abs" "$epochs" "$seed") \
      > $log 2>&1 || { tail -5 $log; exit 1; }
  awk -v s="$seed" '/^keras_parity:/ {printf "| Keras-TF | %s | %s |\n", s, $6}' $log
done
