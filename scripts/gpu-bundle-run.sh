#!/usr/bin/env bash
# The GPU bundle's runner (built into build/gpu-bundle/run.sh by scripts/gpu-bundle.sh): unpacks
# the bundle beside itself into a temporary folder, finds the node's CUDA libraries, checks that
# every library resolves, then runs the GPU checks, each one time-boxed, and writes log.txt and
# results.md into RESULTS_DIR. Needs only bash, coreutils, tar and gzip (and the loader).
# usage: bash run.sh RESULTS_DIR
# exit: 0 every GPU step passed; 1 a step failed (or a library is missing); 77 no GPU visible
# (after the steps that need none).
set -u
out=${1:?usage: bash run.sh RESULTS_DIR}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mkdir -p "$out" || exit 1
out=$(cd "$out" && pwd)
log=$out/log.txt table=$out/results.md
: > "$log"
say() { echo "$*" | tee -a "$log"; }
start_all=$(date +%s)
# Every step is time-boxed, and no box reaches past this: the whole run ends within 8 minutes.
deadline=$((start_all + ${DPT_BUNDLE_SECONDS:-450}))
rows=()  # "| step | result | seconds | detail |"
row() { rows+=("| $1 | $2 | $3 | $4 |"); say "run.sh: $1: $2 ($3 s) $4"; }

write_table() {
  {
    echo "# dptrain GPU bundle: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "Host: $(uname -n), $(nproc) CPU cores; ${gpu_line:-no GPU line}"
    echo
    echo "| step | result | seconds | detail |"
    echo "|---|---|---|---|"
    printf '%s\n' "${rows[@]}"
    echo
    echo "Whole run: $(( $(date +%s) - start_all )) s. Exit code: $1."
  } > "$table"
}

# --- Unpack (and check that nothing was damaged on the way) ------------------------------
root=$(mktemp -d "${TMPDIR:-/tmp}/dptrain-bundle.XXXXXX") || exit 1
cleanup() { rm -rf "$root"; }
trap cleanup EXIT
t0=$(date +%s)
if ! tar -xzf "$here/dptrain-gpu.tar.gz" -C "$root" >> "$log" 2>&1 ||
   ! (cd "$root" && sha256sum --quiet -c MANIFEST >> "$log" 2>&1); then
  row unpack FAILED $(( $(date +%s) - t0 )) "the archive is damaged (see log.txt)"
  write_table 1
  exit 1
fi
row unpack passed $(( $(date +%s) - t0 )) "$(cat "$root/BUILD")"

# --- CUDA libraries: the toolkit's, else the Python wheels' (site-packages/nvidia/*/lib) ---
cuda_dirs=()
for d in ${CUDA_HOME:+"$CUDA_HOME/lib64"} /usr/local/cuda/lib64 /usr/local/cuda/lib /usr/lib/x86_64-linux-gnu; do
  [ -e "$d/libcudart.so.13" ] || [ -e "$d/libcublas.so.13" ] || [ -e "$d/libcudnn.so.9" ] ||
    [ -e "$d/libnccl.so.2" ] || continue
  d=$(cd "$d" && pwd -P)
  [[ " ${cuda_dirs[*]} " == *" $d "* ]] || cuda_dirs+=("$d")
done
for py in python3 python; do
  command -v "$py" > /dev/null 2>&1 || continue
  wheels=$("$py" -c 'import os, nvidia
for p in nvidia.__path__:
    for d in sorted(os.listdir(p)):
        if os.path.isdir(os.path.join(p, d, "lib")): print(os.path.join(p, d, "lib"))' 2>/dev/null)
  while IFS= read -r d; do [ -n "$d" ] && cuda_dirs+=("$d"); done <<< "$wheels"
  [ -n "$wheels" ] && break
done
libpath=$root/lib
for d in "${cuda_dirs[@]}"; do libpath+=":$d"; done
export LD_LIBRARY_PATH=$libpath${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
say "run.sh: library path: $LD_LIBRARY_PATH"

# --- Every library of every binary resolves ------------------------------------------------
t0=$(date +%s)
list_deps() {  # ldd, or the loader itself where ldd is missing
  if command -v ldd > /dev/null 2>&1; then ldd "$1"; else /lib64/ld-linux-x86-64.so.2 --list "$1"; fi
}
missing=""
for b in "$root"/bin/*; do
  while IFS= read -r line; do
    if [[ $line == *"not found"* ]]; then
      name=${line%%=>*}
      name=${name//[[:space:]]/}
      [[ " $missing " == *" $name "* ]] || missing+=" $name"
    fi
  done < <(list_deps "$b" 2>&1)
done
if [ -n "$missing" ]; then
  row libraries FAILED $(( $(date +%s) - t0 )) "missing:$missing (CUDA libraries are searched in the toolkit's lib64 and the Python wheels' nvidia/*/lib; set CUDA_HOME)"
  write_table 1
  exit 1
fi
row libraries passed $(( $(date +%s) - t0 )) "every library of $(ls "$root/bin" | tr '\n' ' ')resolves"

# --- The bundle's data and binaries, for the tests (Note [test locations]) -----------------
export DPT_BINARY=$root/bin/dptrain DPT_SOURCE_DIR=$root DPT_DATASETS=$root/data
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(nproc)}
dptrain=$root/bin/dptrain
work=$root/work
mkdir -p "$work"
fails=0
# run_step NAME SECONDS COMMAND...: time-boxed (and never past the deadline), output into the
# log; sets $rc (124: ran out of time) and $secs.
run_step() {
  local name=$1 limit=$2
  shift 2
  local t=$(date +%s)
  local left=$((deadline - t - 12))
  [ $left -lt $limit ] && limit=$left
  if [ $limit -lt 5 ]; then
    say "run.sh: --- $name: not started, the run's time is used up"
    rc=124 secs=0
    return
  fi
  say "run.sh: --- $name (at most $limit s): $*"
  timeout --kill-after=10 "$limit" "$@" >> "$log" 2>&1
  rc=$?
  secs=$(( $(date +%s) - t ))
  if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then say "run.sh: $name ran past its $limit s"; fi
}
# A value of summary.yaml ("images_per_sec: 1234.5" -> 1234).
summary_value() {
  local key=$2 line
  while IFS= read -r line; do
    [[ $line == "$key: "* ]] && { local v=${line#*: }; echo "${v%%.*}"; return; }
  done < "$1/summary.yaml"
}
summary_text() {
  local key=$2 line
  while IFS= read -r line; do
    [[ $line == "$key: "* ]] && { echo "${line#*: }"; return; }
  done < "$1/summary.yaml"
}

run_step version 20 "$dptrain" --version
if [ $rc -eq 0 ]; then
  version=$("$dptrain" --version 2>&1)
  row "dptrain --version" passed $secs "$(echo "$version" | head -1)"
else
  row "dptrain --version" FAILED $secs "exit $rc"
  fails=$((fails + 1))
fi
gpus=0
[[ ${version:-} =~ ([0-9]+)\ GPU\(s\)\ visible ]] && gpus=${BASH_REMATCH[1]}
gpu_line=$(echo "${version:-}" | while IFS= read -r l; do [[ $l == "CUDA runtime"* ]] && echo "$l"; done)

# --- CPU: prepare the bundle's MNIST and train one epoch (needs no GPU) --------------------
run_step prepare 60 "$dptrain" prepare mnist --raw "$root/data/mnist" --out "$work/mnist" --shards 2
if [ $rc -eq 0 ]; then
  row "prepare MNIST (the official files, 2 shards)" passed $secs ""
else
  row "prepare MNIST (the official files, 2 shards)" FAILED $secs "exit $rc"
  fails=$((fails + 1))
fi
run_step cpu-train 90 "$dptrain" train "$root/configs/mnist_convnet.yaml" --set data.dir="$work/mnist" \
    --set run_dir="$work/cpu" --set train.epochs=1 --set data.max_train_samples=6000 \
    --set data.max_test_samples=2000 --set train.backend=cpu
acc=$(summary_text "$work/cpu" test_accuracy 2>/dev/null)
if [ $rc -eq 0 ] && [[ ${acc:-0} =~ ^0\.(9|8) ]]; then
  row "CPU: mnist_convnet, 1 epoch on 6,000 images per shard" passed $secs "test accuracy $acc"
else
  row "CPU: mnist_convnet, 1 epoch on 6,000 images per shard" FAILED $secs "exit $rc, test accuracy ${acc:-none}"
  fails=$((fails + 1))
fi

gpu_steps=("CUDA vs CPU, op by op and whole steps" "GPU bf16 and tf32 against CPU fp32"
           "GpuRun: a whole run against the CPU's" "1 rank over NCCL"
           "mnist_convnet fp32" "mnist_convnet tf32" "mnist_convnet bf16"
           "cifar10_cnn fp32" "cifar10_cnn tf32" "cifar10_cnn bf16" "PyTorch peer on the same GPU")
if [ "$gpus" -eq 0 ]; then
  for s in "${gpu_steps[@]}"; do row "$s" "no GPU" 0 "dptrain sees 0 GPUs"; done
  code=77
  [ $fails -gt 0 ] && code=1
  write_table $code
  say "run.sh: no GPU visible; exit $code"
  exit $code
fi

# --- GPU tests -----------------------------------------------------------------------------
gtest() {  # NAME SECONDS BINARY FILTER
  run_step "$1" "$2" "$root/bin/$3" --gtest_filter="$4" --gtest_brief=1
  local detail="exit $rc"
  [ $rc -eq 0 ] && detail="$4"
  if [ $rc -eq 0 ]; then row "$1" passed $secs "$detail"; else row "$1" FAILED $secs "$detail"; fails=$((fails + 1)); fi
}
gtest "${gpu_steps[0]}" 90 dpt_unit_trainer 'CudaVsCpu.*'
gtest "${gpu_steps[1]}" 30 dpt_unit_models 'Precision.Gpu*'
gtest "${gpu_steps[2]}" 60 dpt_e2e_tests 'GpuRun.*'

# --- Trainings on the GPU: one epoch each, img/s from summary.yaml -------------------------
run_step nccl 40 env DPT_NCCL_ALWAYS=1 "$dptrain" train "$root/configs/mnist_convnet.yaml" \
    --set data.dir="$work/mnist" --set run_dir="$work/nccl" --set train.epochs=1 --set train.backend=cuda
if [ $rc -eq 0 ] && [ -f "$work/nccl/log.txt" ] && [[ $(< "$work/nccl/log.txt") == *"all-reduced with nccl"* ]]; then
  row "${gpu_steps[3]}" passed $secs "$(summary_value "$work/nccl" images_per_sec) img/s, test accuracy $(summary_text "$work/nccl" test_accuracy)"
else
  row "${gpu_steps[3]}" FAILED $secs "exit $rc"
  fails=$((fails + 1))
fi
i=4
for cfg in mnist_convnet cifar10_cnn; do
  data=$work/mnist
  [ $cfg = cifar10_cnn ] && data=$root/data/cifar10
  for p in fp32 tf32 bf16; do
    run_step "$cfg-$p" 30 "$dptrain" train "$root/configs/$cfg.yaml" --set data.dir="$data" \
        --set run_dir="$work/$cfg-$p" --set train.epochs=1 --set train.backend=cuda \
        --set train.precision=$p --set checkpoint.every_epochs=0
    if [ $rc -eq 0 ]; then
      row "${gpu_steps[$i]}" passed $secs "$(summary_value "$work/$cfg-$p" images_per_sec) img/s, test accuracy $(summary_text "$work/$cfg-$p" test_accuracy)"
    else
      row "${gpu_steps[$i]}" FAILED $secs "exit $rc"
      fails=$((fails + 1))
    fi
    i=$((i + 1))
  done
done

# --- The PyTorch peer on the same GPU, where the node's Python has torch ---------------------
torch_py=""
for py in python3 python; do
  command -v "$py" > /dev/null 2>&1 && "$py" -c 'import torch; assert torch.cuda.is_available()' 2>/dev/null &&
    { torch_py=$py; break; }
done
if [ -z "$torch_py" ]; then
  row "${gpu_steps[10]}" skipped 0 "no Python with torch and CUDA on this node"
else
  peer=""
  t=$(date +%s)
  for cfg in mnist_convnet cifar10_cnn; do
    for mode in cuda-fp32 cuda-tf32 cuda-bf16; do
      left=$((deadline - $(date +%s) - 12))
      [ $left -ge 10 ] || { peer+=" $cfg $mode not run (out of time);"; continue; }
      v=$(cd "$root/peers" && timeout $((left < 60 ? left : 60)) "$torch_py" torch_bench.py "$cfg.json" $mode 2>> "$log" | tail -1)
      peer+=" $cfg $mode ${v:-failed} img/s;"
    done
  done
  say "run.sh: PyTorch peer:$peer"
  row "${gpu_steps[10]}" measured $(( $(date +%s) - t )) "$("$torch_py" -c 'import torch; print("torch", torch.__version__)' 2>/dev/null):$peer"
fi

code=0
[ $fails -gt 0 ] && code=1
write_table $code
say "run.sh: $fails step(s) failed; exit $code"
exit $code
