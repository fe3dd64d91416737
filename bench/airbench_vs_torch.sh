#!/usr/bin/env bash
# Time to accuracy of cifar10_fast against its PyTorch reference (issue 25, part 3), in one run on
# the same cores: dptrain on 2 local ranks (bench/time_to_accuracy.sh), then
# bench/peers/airbench_torch.py (the same recipe in PyTorch, one process with 2 threads,
# channels-last, in the precision dptrain chose), both evaluating the test set with
# flip+translate TTA after every epoch (PyTorch from TORCH_EVAL_FROM on); prints each tool's
# training time to every target and how many times sooner dptrain got there.
# usage: [TORCH_EVAL_FROM=1] bash bench/airbench_vs_torch.sh [CONFIG] [SEED] [TARGETS: 0.89,0.90]
set -euo pipefail
cd "$(dirname "$0")/.."
config=${1:-configs/cifar10_fast.yaml}
config_abs=$(realpath "$config")
seed=${2:-1}
targets=${3:-0.89,0.90}
source bench/peer_setup.sh
name=$(basename "$config" .yaml)
mkdir -p runs
echo "CPU: $(bash bench/cpu_name.sh); $name, seed $seed, targets $targets"
bash bench/time_to_accuracy.sh "$config" "$targets" --set train.seed="$seed" > runs/vs-torch-$name-dptrain-s$seed.txt
cat runs/vs-torch-$name-dptrain-s$seed.txt
# The reference computes in the precision dptrain's precision: auto chose on this CPU.
precision=fp32
grep -q "precision bf16" runs/tta-$name.log && precision=bf16
log=runs/vs-torch-$name-torch-s$seed.log
start=$(date +%s.%N)
(cd bench/peers && OMP_NUM_THREADS=2 ../../$TORCH airbench_torch.py "$config_abs" \
    "$seed" 2 cl "${TORCH_EVAL_FROM:-1}" $precision) > "$log" 2>&1 || { tail -20 "$log"; exit 1; }
end=$(date +%s.%N)
awk -v targets="$targets" -v total="$(echo "$end - $start" | bc)" -f bench/tta_report.awk "$log" \
  > runs/vs-torch-$name-torch-s$seed.txt
cat runs/vs-torch-$name-torch-s$seed.txt
# One row per target: each tool's epoch and training seconds, and PyTorch's time over dptrain's.
awk -v targets="$targets" '
  BEGIN { n = split(targets, want, ",");
          print "| target | dptrain (2 ranks) | PyTorch reference (1 x 2 threads) | dptrain sooner by |";
          print "|---|---|---|---|" }
  /^reached/ { sub(":", "", $5); tool = FILENAME == ARGV[1] ? "d" : "t"
               at[tool, $2] = "epoch " $5 ", " $6 " s"; s[tool, $2] = $6 }
  END { for (i = 1; i <= n; ++i) {
          d = (("d", want[i]) in at) ? at["d", want[i]] : "not reached"
          t = (("t", want[i]) in at) ? at["t", want[i]] : "not reached"
          r = (("d", want[i]) in s && ("t", want[i]) in s) ? sprintf("%.2fx", s["t", want[i]] / s["d", want[i]]) : "-"
          printf "| %s | %s | %s | %s |\n", want[i], d, t, r } }' runs/vs-torch-$name-dptrain-s$seed.txt runs/vs-torch-$name-torch-s$seed.txt
