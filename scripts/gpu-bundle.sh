#!/usr/bin/env bash
# Builds the self-contained GPU bundle for a GPU node without a package registry (docs/GPU.md):
# build/gpu-bundle/run.sh and build/gpu-bundle/dptrain-gpu.tar.gz, at most 56 MiB together,
# holding dptrain and the GPU test binaries (CUDA build: Hopper sm_90 machine code and PTX among
# its architectures), every shared library they need except glibc, libstdc++/libgcc and CUDA's
# own (which the node has: its toolkit, or the wheels of its Python venv), MNIST, a CIFAR-10
# subset, the configs and the PyTorch peer. usage: bash scripts/gpu-bundle.sh [BUILD_DIR]
# (default build/, built here with CUDA if it is not a CUDA build yet).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
out=build/gpu-bundle
datasets=${DPT_DATASETS:-../shared/datasets}
limit_mib=56

if ! grep -q "^DPT_WITH_CUDA:BOOL=ON" "$build/CMakeCache.txt" 2>/dev/null; then
  [ "$build" = build ] || { echo "gpu-bundle: $build is not a CUDA build of dptrain" >&2; exit 1; }
  [ -x /usr/local/cuda/bin/nvcc ] || {
    echo "gpu-bundle: the bundle needs the CUDA build, and this machine has no CUDA toolkit" \
         "(/usr/local/cuda)" >&2; exit 1; }
  bash scripts/build.sh -DDPT_WITH_CUDA=ON
fi
binaries=(dptrain tests/dpt_unit_models tests/dpt_unit_trainer tests/dpt_e2e_tests)
cmake --build "$build" --target dptrain dpt_unit_models dpt_unit_trainer dpt_e2e_tests > /dev/null
# The fatbin names its architectures; the PTX says ".target sm_90" (what a newer GPU compiles).
arch="$(strings -n 5 "$build/dptrain" | grep -oE 'sm_[0-9]+' | sort -u | tr '\n' ' ')"
ptx=$(strings -n 5 "$build/dptrain" | grep -c '\.target sm_90' || true)
[ "${ptx:-0}" -gt 0 ] && arch+="+ PTX sm_90"
[[ "$arch" == *"sm_90 "* && "$arch" == *"PTX sm_90"* ]] ||
  { echo "gpu-bundle: $build/dptrain lacks sm_90 code or PTX ($arch)" >&2; exit 1; }

stage=$(mktemp -d /tmp/gpu-bundle.XXXXXX)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,lib,data/mnist,data/cifar10,configs,peers}
for b in "${binaries[@]}"; do cp "$build/$b" "$stage/bin/"; done

# Libraries: what the loader resolves for every binary, minus the base system (glibc, the
# compiler's runtime) and CUDA's libraries, which must be the node's own.
for b in "$stage"/bin/*; do ldd "$b"; done | awk '/=> \// {print $3}' | sort -u | while read -r lib; do
  case "$(basename "$lib")" in
    linux-vdso*|ld-linux*|libc.so*|libm.so*|libpthread.so*|libdl.so*|librt.so*|libresolv.so*|\
    libstdc++.so*|libgcc_s.so*|libcuda.so*|libcudart.so*|libcublas*.so*|libcudnn*.so*|\
    libnccl.so*|libnvrtc*.so*|libnvJitLink*.so*|libcufft*|libcurand*|libcusparse*|libcusolver*)
      continue ;;
  esac
  cp -L "$lib" "$stage/lib/"
done

# Data: MNIST as the official files; CIFAR-10 as a prepared subset (2,500 train, 1,000 test),
# since the whole of it is larger than what a run may copy.
cp "$datasets"/mnist/*-ubyte.gz "$stage/data/mnist/"
"$build/dptrain" prepare cifar10 --raw "$datasets/cifar10" --out "$stage/data/cifar10" --shards 1 \
    --max-train-samples 2500 --max-test-samples 1000 > /dev/null
cp configs/*.yaml "$stage/configs/"
cp bench/peers/torch_bench.py bench/peers/zoo.py "$stage/peers/"
for cfg in mnist_convnet cifar10_cnn; do  # no PyYAML needed on the node
  /usr/bin/python3 bench/peers/zoo.py "configs/$cfg.yaml" "$stage/peers/$cfg.json"
done
echo "dptrain $(git describe --always --dirty 2>/dev/null || echo '?'), built $(date -u +%Y-%m-%d)" \
     "on $(bash bench/cpu_name.sh); CUDA code: ${arch:-unknown}" > "$stage/BUILD"
(cd "$stage" && find . -type f ! -name MANIFEST -printf '%P\n' | sort | xargs sha256sum > MANIFEST)

rm -rf "$out"
mkdir -p "$out"
tar -C "$stage" -cf - . | gzip -9 > "$out/dptrain-gpu.tar.gz"
cp scripts/gpu-bundle-run.sh "$out/run.sh"
size=$(du -cb "$out"/* | tail -1 | cut -f1)
echo "gpu-bundle: $out: $(ls "$stage/lib" | wc -l) libraries, $((size / 1048576)) MiB ($size bytes)"
if [ "$size" -gt $((limit_mib * 1048576)) ]; then
  echo "gpu-bundle: the bundle is over $limit_mib MiB" >&2
  exit 1
fi
