#!/usr/bin/env bash
# Training throughput of one config on 1 and 2 local ranks (same global batch); prints
# summary.yaml of each run. Usage: bench/throughput.sh CONFIG EPOCHS [extra --set ...]
# Results are recorded by hand in docs/RESULTS.md, with the machine they were measured on.
set -euo pipefail
cd "$(dirname "$0")/.."
config=${1:?config}; epochs=${2:?epochs}; shift 2
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
name=$(basename "$config" .yaml)
for ranks in 1 2; do
  out=runs/bench-$name-$ranks
  rm -rf "$out"
  if [ "$ranks" = 1 ]; then launcher=(); else launcher=(mpirun -np "$ranks" --bind-to core); fi
  "${launcher[@]}" ./build/dptrain train "$config" --set run_dir="$out" \
      --set train.epochs="$epochs" --set checkpoint.every_epochs=0 "$@" > "$out.log" 2>&1
  echo "== $name, $ranks rank(s):"; grep -E "^[0-9]+/[0-9]+ -|Test:|Throughput" "$out.log" | tail -4
done
