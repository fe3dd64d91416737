#!/usr/bin/env bash
# dptrain against its peers, side by side in one run on this machine: training images/s of
# mnist_convnet, mnist_cnn, mnist_mlp and cifar10_cnn in PyTorch (newest from PyPI: fp32,
# channels-last, bf16 autocast, torch.compile in NCHW and channels-last, 1 process x all cores;
# DDP gloo 2 x 1 thread), in Keras 3 on
# TensorFlow (1 process) and in dptrain (fp32 and bf16; 1 process and 2 ranks). The peers train
# on in-memory random tensors (no data loading), dptrain on real shards, as docs/RESULTS.md says.
# Installs torch and tensorflow-cpu + keras into venvs under build/ (a benchmark dependency,
# not a test one). Prints one Markdown table with the CPU model and dptrain's ratio to the best
# peer. usage: bash bench/compare_peers.sh [MODELS...]
set -euo pipefail
cd "$(dirname "$0")/.."
models=("$@")
[ ${#models[@]} -gt 0 ] || models=(mnist_convnet mnist_cnn mnist_mlp cifar10_cnn)
source bench/peer_setup.sh
peers=bench/peers
cores=$(nproc)

dptrain_ips() {  # CONFIG RANKS PRECISION
  local out=runs/peers-$1-$2-$3 launcher=()
  [ "$2" -gt 1 ] && launcher=(mpirun -np "$2" --bind-to core)
  "${launcher[@]}" ./build/dptrain train configs/$1.yaml --set run_dir=$out --overwrite \
      --set train.epochs=2 --set data.max_train_samples=4000 --set checkpoint.every_epochs=0 \
      --set train.precision=$3 > $out.log 2>&1 || {
    # bf16 on a CPU without native bf16 is refused at start (train.precision: auto picks fp32).
    if grep -q "needs a CPU with AVX512-BF16 or AMX" $out.log; then echo "no bf16"; else echo failed; fi
    return; }
  awk '/^images_per_sec:/ {printf "%.0f", $2}' $out/summary.yaml
}

echo "CPU: $(bash bench/cpu_name.sh); $(date -u +%Y-%m-%d)"
echo "PyTorch $($TORCH -c 'import torch; print(torch.__version__)'), Keras $($TF -c 'import keras; print(keras.__version__)') / TensorFlow $($TF -c 'import tensorflow as tf; print(tf.__version__)' 2>/dev/null | tail -1)"
echo
echo "| model | PyTorch 1x$cores | PyTorch channels-last | PyTorch bf16 autocast | PyTorch torch.compile (NCHW / channels-last) | PyTorch DDP 2x1 | Keras-TF 1x$cores | dptrain fp32 1x$cores | dptrain fp32 2x1 | dptrain bf16 1x$cores | dptrain bf16 2x1 | dptrain best / best peer |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
for m in "${models[@]}"; do
  c=configs/$m.yaml
  t32=$(cd $peers && THREADS=$cores ../../$TORCH torch_bench.py ../../$c fp32)
  tcl=$(cd $peers && THREADS=$cores ../../$TORCH torch_bench.py ../../$c fp32cl)
  tbf=$(cd $peers && THREADS=$cores ../../$TORCH torch_bench.py ../../$c bf16)
  # Inductor's compile messages go to stderr; a compile that fails says so in its cell.
  tco=$(cd $peers && THREADS=$cores ../../$TORCH torch_bench.py ../../$c compile 2>/dev/null | grep -E '^[0-9]+$' || echo failed)
  tcc=$(cd $peers && THREADS=$cores ../../$TORCH torch_bench.py ../../$c compilecl 2>/dev/null | grep -E '^[0-9]+$' || echo failed)
  tddp=$(cd $peers && OMP_NUM_THREADS=1 ../../build/bench-venv-torch/bin/torchrun --nproc-per-node 2 torch_bench.py ../../$c ddp 2>/dev/null | tail -1)
  ker=$(cd $peers && ../../$TF keras_bench.py ../../$c 2>/dev/null | tail -1)
  d1=$(OMP_NUM_THREADS=$cores dptrain_ips $m 1 fp32); d2=$(dptrain_ips $m 2 fp32)
  b1=$(OMP_NUM_THREADS=$cores dptrain_ips $m 1 bf16); b2=$(dptrain_ips $m 2 bf16)
  best_peer=$(printf "%s\n" $t32 $tcl $tbf $tco $tcc $tddp $ker | grep -E '^[0-9]+$' | sort -n | tail -1)
  best_ours=$(printf "%s\n" "$d1" "$d2" "$b1" "$b2" | grep -E '^[0-9]+$' | sort -n | tail -1)
  ratio=$(echo "scale=2; $best_ours / $best_peer" | bc)
  echo "| $m | $t32 | $tcl | $tbf | $tco / $tcc | $tddp | $ker | $d1 | $d2 | $b1 | $b2 | ${ratio}x |"
done
