#!/usr/bin/env bash
# Prints this machine's CPU for benchmark headers: model name, family/model and its bf16 ISA,
# since "AMD EPYC" alone names neither the generation nor what oneDNN can dispatch.
field() { grep -m1 -E "^$1\s*:" /proc/cpuinfo | cut -d: -f2 | xargs; }
isa=$(grep -m1 -o -w -E 'amx_bf16|avx512_bf16' /proc/cpuinfo | head -1 || true)
echo "$(field 'model name') (family $(field 'cpu family') model $(field model), ${isa:-no bf16 ISA}), $(nproc) cores"
