#!/usr/bin/env bash
# Puts the official raw files of a dataset in DEST: from a local mirror when one exists
# (--mirror DIR, or ../shared/datasets beside the repo), otherwise downloaded and checksummed.
# usage: scripts/fetch-data.sh mnist|fashion-mnist|cifar10 DEST [--mirror DIR]
set -euo pipefail
dataset=${1:?usage: fetch-data.sh mnist|fashion-mnist|cifar10 DEST [--mirror DIR]}
dest=${2:?usage: fetch-data.sh DATASET DEST}
mirror=""
[ "${3:-}" = "--mirror" ] && mirror=${4:?--mirror needs a directory}
root="$(cd "$(dirname "$0")/.." && pwd)"
[ -z "$mirror" ] && [ -d "$root/../shared/datasets" ] && mirror="$root/../shared/datasets"
mkdir -p "$dest"

# MD5 of the official compressed downloads (the decompressed contents are verified again,
# against data/checksums.cpp, by `dptrain prepare`).
declare -A MD5=(
  [mnist/train-images-idx3-ubyte.gz]=f68b3c2dcbeaaa9fbdd348bbdeb94873
  [mnist/train-labels-idx1-ubyte.gz]=d53e105ee54ea40749a09fcbcd1e9432
  [mnist/t10k-images-idx3-ubyte.gz]=9fb629c4189551a2d022fa330f9573f3
  [mnist/t10k-labels-idx1-ubyte.gz]=ec29112dd5afa0611ce80d1b7f02629c
)
case "$dataset" in
  mnist) url=https://ossci-datasets.s3.amazonaws.com/mnist
         files="train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz";;
  fashion-mnist) url=http://fashion-mnist.s3-website.eu-central-1.amazonaws.com
         files="train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz"
         # Debian ships it: apt-get install dataset-fashion-mnist
         [ -z "$mirror" ] && [ -d /usr/share/datasets/fashion-mnist ] && mirror=/usr/share/datasets;;
  cifar10) url=https://www.cs.toronto.edu/~kriz; files="cifar-10-binary.tar.gz";;
  *) echo "fetch-data: unknown dataset '$dataset'" >&2; exit 2;;
esac

for f in $files; do
  if [ -s "$dest/$f" ]; then continue; fi
  if [ -n "$mirror" ] && [ -s "$mirror/$dataset/$f" ]; then
    ln -sf "$(cd "$mirror/$dataset" && pwd)/$f" "$dest/$f"
    echo "fetch-data: $f from mirror $mirror/$dataset"
    continue
  fi
  echo "fetch-data: downloading $url/$f"
  curl -fL --retry 3 -o "$dest/$f.part" "$url/$f"
  want=${MD5[$dataset/$f]:-}
  if [ -n "$want" ]; then
    got=$(md5sum "$dest/$f.part" | cut -d' ' -f1)
    [ "$got" = "$want" ] || { echo "fetch-data: $f: md5 $got, expected $want" >&2; rm -f "$dest/$f.part"; exit 1; }
  fi
  mv "$dest/$f.part" "$dest/$f"
done
