#!/usr/bin/env bash
# Installs every build and test dependency of dptrain from Debian packages (idempotent).
set -euo pipefail
PKGS=(build-essential cmake ninja-build pkg-config libdnnl-dev libopenmpi-dev openmpi-bin
      libhdf5-dev hdf5-tools libyaml-cpp-dev libcli11-dev libgtest-dev libbenchmark-dev
      zlib1g-dev libssl-dev liblapack-dev libarchive-dev libminizip-dev libonnx-dev libprotobuf-dev protobuf-compiler nlohmann-json3-dev ocl-icd-opencl-dev opencl-headers python3-h5py python3-numpy python3-matplotlib python3-yaml python3-venv debootstrap slurm-wlm munge iproute2)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  echo "install-deps: installing ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
