#!/usr/bin/env bash
# The step profile the scaling model needs: per zoo config, its trainable parameters (gradient
# bytes = 4 x params) and the measured time of one training step on one rank, here.
# Usage: bench/scaling_profile.sh [OUT.csv]  (default docs/scaling_profile.csv; needs
# data/mnist and data/cifar10, made by dptrain prepare). Then: bench/scaling.py OUT.csv
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-docs/scaling_profile.csv}
threads=${OMP_NUM_THREADS:-$(nproc)}
cpu=$(bash bench/cpu_name.sh)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
echo "# step profile: 1 rank x $threads threads on $cpu, $(date -u +%F)" > "$out"
echo "config,batch,trainable_params,ms_per_step" >> "$out"
for cfg in configs/*.yaml; do
  name=$(basename "$cfg" .yaml)
  params=$(./build/dptrain summary "$cfg" | sed -n 's/^Trainable params: //p' | tr -d ,)
  batch=$(sed -n 's/^  batch_size: \([0-9]*\).*/\1/p' "$cfg" | head -1)
  [ -n "$batch" ] || { echo "scaling_profile: no '  batch_size: N' line under train: in $cfg" >&2; exit 1; }
  # 40 steps (8 of the 1024-image batches): max_train_samples counts per shard (4 shards,
  # up to 10% of them validation).
  steps=40; [ "$batch" -gt 256 ] && steps=8
  per_shard=$(( batch * steps / 4 * 10 / 9 + 1 ))
  OMP_NUM_THREADS=$threads ./build/dptrain train "$cfg" --set run_dir="$tmp/$name" \
    --set train.epochs=1 --set data.max_train_samples=$per_shard --set data.max_test_samples=100 \
    --set checkpoint.every_epochs=0 --set train.tensorboard=false > "$tmp/$name.log" 2>&1 || {
      echo "scaling_profile: $name failed:" >&2; tail -5 "$tmp/$name.log" >&2; exit 1; }
  ips=$(sed -n 's/^images_per_sec: //p' "$tmp/$name/summary.yaml")
  ms=$(awk -v b="$batch" -v i="$ips" 'BEGIN { printf "%.2f", 1000 * b / i }')
  echo "$name,$batch,$params,$ms" | tee -a "$out"
done
