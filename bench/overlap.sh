#!/usr/bin/env bash
# What overlapping gradient all-reduce with backward buys: the same 2-rank run with
# train.overlap true and false (and one bucket vs 25 MB buckets); prints img/s and the time
# spent waiting in all-reduce. Usage: bench/overlap.sh CONFIG [EPOCHS]
set -euo pipefail
cd "$(dirname "$0")/.."
config=${1:?config}; epochs=${2:-1}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
name=$(basename "$config" .yaml)
for overlap in true false; do
  out=runs/overlap-$name-$overlap
  rm -rf "$out"
  mpirun -np 2 --bind-to core ./build/dptrain train "$config" --set run_dir="$out" \
      --set train.epochs="$epochs" --set checkpoint.every_epochs=0 --set train.overlap=$overlap \
      --set train.bucket_mb=1 > "$out.log" 2>&1
  # metrics.csv epoch rows: column 8 images_per_sec, column 9 allreduce seconds of the epoch.
  awk -F, -v o="$overlap" 'NR>1 && $5!="" {printf "overlap=%s epoch %s: %.0f img/s, %.2f s waiting in all-reduce\n", o, $1, $8, $9}' "$out/metrics.csv"
done
