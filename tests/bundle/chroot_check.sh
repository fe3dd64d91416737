#!/usr/bin/env bash
# The GPU bundle proven without a GPU (ctest label bundle): builds build/gpu-bundle, then runs it
# in a bare Debian 12 chroot (debootstrap minbase: none of dptrain's Debian packages, no MPI,
# HDF5, oneDNN, yaml-cpp or Python), with only the CUDA toolkit bound in as a GPU node has it.
# There the runner must resolve every library, run dptrain --version and a CPU training that
# learns, report every GPU step as "no GPU" and exit 77, leaving its log and table. Then the
# same bundle with one library taken out must fail its library check, naming that library.
# usage: tests/bundle/chroot_check.sh SOURCE_DIR BUILD_DIR; exit 77 (skip) with the reason when
# this machine cannot make the chroot (not root, no CUDA build, no Debian base system).
set -uo pipefail
src=${1:?usage: chroot_check.sh SOURCE_DIR BUILD_DIR}
build=${2:?usage: chroot_check.sh SOURCE_DIR BUILD_DIR}
skip() { echo "SKIPPED: $*"; exit 77; }
fail() { echo "FAILED: $*"; exit 1; }

[ "$(id -u)" -eq 0 ] || skip "needs root for chroot and bind mounts"
grep -q "^DPT_WITH_CUDA:BOOL=ON" "$build/CMakeCache.txt" 2>/dev/null ||
  skip "$build is not a CUDA build: the bundle is the CUDA build"
cuda=$(readlink -f /usr/local/cuda 2>/dev/null)
[ -d "$cuda/lib64" ] || skip "no CUDA toolkit at /usr/local/cuda to bind into the chroot"

# A minimal Debian 12: fresh-machine.sh's cache when this machine has one, else our own.
base=/var/cache/fresh-machine/bookworm-minbase
if [ ! -f "$base/.complete" ]; then
  base=$build/bundle-base
  if [ ! -f "$base/.complete" ]; then
    command -v debootstrap > /dev/null || skip "debootstrap is not installed (scripts/install-deps.sh)"
    mirror=$(grep -h -m1 -oE '^URIs: *[^ ]+/debian$' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}')
    [ -n "$mirror" ] || mirror=$(grep -h -m1 -oE '^deb +[^ ]+/debian ' /etc/apt/sources.list 2>/dev/null | awk '{print $2}')
    [ -n "$mirror" ] || skip "no Debian mirror in this machine's apt sources for debootstrap"
    rm -rf "$base"
    echo "chroot_check: debootstrap --variant=minbase bookworm (once, into $base)"
    debootstrap --variant=minbase bookworm "$base" "$mirror" > "$build/bundle-base.log" 2>&1 ||
      skip "debootstrap failed (see $build/bundle-base.log)"
    touch "$base/.complete"
  fi
fi

(cd "$src" && bash scripts/gpu-bundle.sh "$build") || fail "scripts/gpu-bundle.sh failed"
bundle=$src/build/gpu-bundle

root=$(mktemp -d /tmp/dpt-bundle-root.XXXXXX)
mounts=()
cleanup() {
  for m in "${mounts[@]}"; do umount -l "$m" 2>/dev/null; done
  if awk -v r="$root/" 'index($2, r) == 1 {found = 1} END {exit !found}' /proc/mounts; then
    echo "chroot_check: mounts remain under $root; not deleting it" >&2
    return
  fi
  rm -rf --one-file-system "$root"
}
trap cleanup EXIT
cp -a "$base/." "$root/" || fail "cannot copy the base system"
rm -f "$root/.complete"
for m in proc dev; do
  mkdir -p "$root/$m"
  mount --rbind "/$m" "$root/$m" && mount --make-rslave "$root/$m" && mounts=("$root/$m" "${mounts[@]}")
done
mkdir -p "$root/usr/local/cuda"
mount --bind "$cuda" "$root/usr/local/cuda" && mount -o remount,bind,ro "$root/usr/local/cuda" &&
  mounts=("$root/usr/local/cuda" "${mounts[@]}")
# What the chroot has, as a check that it is bare.
for f in usr/lib/x86_64-linux-gnu/libdnnl.so.2 usr/lib/x86_64-linux-gnu/libmpi.so.40 \
         usr/lib/x86_64-linux-gnu/libhdf5_serial.so.103 usr/bin/python3 usr/bin/mpirun; do
  [ -e "$root/$f" ] && fail "the chroot is not bare: it has /$f"
done

in_chroot() {  # DIR_IN_CHROOT OUT_IN_CHROOT: runs the bundle there, prints its output
  chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
      LANG=C.UTF-8 bash "$1/run.sh" "$2"
}

# 1. The bundle as built.
cp -r "$bundle" "$root/bundle"
in_chroot /bundle /results
rc=$?
[ $rc -eq 77 ] || fail "run.sh exited $rc in the bare chroot, expected 77 (no GPU)"
table=$root/results/results.md
[ -s "$table" ] && [ -s "$root/results/log.txt" ] || fail "no results.md/log.txt in RESULTS_DIR"
for line in "| libraries | passed |" "| dptrain --version | passed |" \
            "| prepare MNIST (the official files, 2 shards) | passed |" \
            "| CPU: mnist_convnet, 1 epoch on 6,000 images per shard | passed |"; do
  grep -qF "$line" "$table" || fail "results.md lacks '$line'"
done
gpu_rows=$(grep -cF "| no GPU |" "$table")
[ "$gpu_rows" -eq 11 ] || fail "expected 11 GPU steps reported as 'no GPU', found $gpu_rows"
grep -qE "test accuracy 0\.(8|9)" "$table" || fail "the CPU training did not learn"
echo "chroot_check: the bundle ran in a bare Debian 12: exit 77, $gpu_rows GPU steps 'no GPU'"

# 2. One library missing: the runner names it before anything runs.
pack=$(mktemp -d /tmp/dpt-bundle-pack.XXXXXX)
tar -xzf "$bundle/dptrain-gpu.tar.gz" -C "$pack" && rm "$pack/lib/libyaml-cpp.so.0.7" &&
  mkdir -p "$root/broken" && tar -C "$pack" -cf - . | gzip -1 > "$root/broken/dptrain-gpu.tar.gz"
rm -rf "$pack"
cp "$bundle/run.sh" "$root/broken/run.sh"
# The manifest still lists the library: the damaged archive is refused as such.
msg=$(in_chroot /broken /results-broken 2>&1)
rc=$?
[ $rc -eq 1 ] || fail "a bundle without libyaml-cpp exited $rc, expected 1: $msg"
grep -qF "the archive is damaged" "$root/results-broken/results.md" ||
  fail "the runner did not refuse the incomplete archive: $(cat "$root/results-broken/results.md")"
# And without the manifest's line for it: the library check names it.
pack=$(mktemp -d /tmp/dpt-bundle-pack.XXXXXX)
tar -xzf "$bundle/dptrain-gpu.tar.gz" -C "$pack" && rm "$pack/lib/libyaml-cpp.so.0.7" &&
  grep -v "lib/libyaml-cpp.so.0.7" "$pack/MANIFEST" > "$pack/MANIFEST.new" && mv "$pack/MANIFEST.new" "$pack/MANIFEST" &&
  tar -C "$pack" -cf - . | gzip -1 > "$root/broken/dptrain-gpu.tar.gz"
rm -rf "$pack"
msg=$(in_chroot /broken /results-broken2 2>&1)
rc=$?
[ $rc -eq 1 ] || fail "a bundle without libyaml-cpp exited $rc, expected 1: $msg"
grep -qF "missing: libyaml-cpp.so.0.7" "$root/results-broken2/results.md" ||
  fail "the library check did not name libyaml-cpp.so.0.7: $(cat "$root/results-broken2/results.md")"
echo "chroot_check: a missing library is named: $(grep -F '| libraries |' "$root/results-broken2/results.md")"
echo "PASSED"
