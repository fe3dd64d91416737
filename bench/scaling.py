#!/usr/bin/env python3
"""Predicted data-parallel scaling of the zoo from a measured step profile (alpha-beta model).

Usage: bench/scaling.py [docs/scaling_profile.csv]   (made by bench/scaling_profile.sh)
Prints the Markdown tables of docs/DISTRIBUTED.md, "Scaling".

Ring all-reduce of n bytes over p ranks: T = 2(p-1)*alpha + 2(p-1)/p * n/B, where alpha is the
per-message latency and B the bandwidth one rank achieves. No overlap with backward is assumed,
so efficiencies are lower bounds for dptrain's overlapped buckets (backward is about 2/3 of a
step, which bounds what overlap can hide).
"""
import csv
import sys

# (name, alpha seconds, achievable bytes/s per rank, where the numbers come from)
NETWORKS = [
    ("25 Gb/s Ethernet (TCP)", 25e-6, 25e9 / 8 * 0.9,
     "line rate 3.125 GB/s at 90%; ~25 us MPI latency over TCP"),
    ("200 Gb/s InfiniBand (HDR)", 2e-6, 200e9 / 8 * 0.92,
     "line rate 25 GB/s at 92%; ~2 us MPI latency over RDMA"),
    ("NVLink 4 (H100/H200)", 8e-6, 360e9,
     "450 GB/s per direction per GPU, ~360 GB/s NCCL bus bandwidth; ~8 us NCCL step latency; "
     "an HGX node links 8 GPUs, beyond 8 only an NVLink Switch system (NVL72: 72) does, so "
     "64 is such a system and 1,024 hypothetical"),
]
RANKS = [2, 8, 64, 1024]


def ring(p, nbytes, alpha, bw):
    return 2 * (p - 1) * alpha + 2 * (p - 1) / p * nbytes / bw


def load(path):
    """The profile's comment line (where and how it was measured) and its rows."""
    with open(path) as f:
        lines = f.read().splitlines()
    header = next((l.lstrip("# ") for l in lines if l.startswith("#")), "unknown machine")
    rows = []
    for r in csv.DictReader(l for l in lines if not l.startswith("#")):
        rows.append((r["config"], int(r["batch"]), int(r["trainable_params"]),
                     float(r["ms_per_step"]) / 1e3))
    return header, rows


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "docs/scaling_profile.csv"
    header, rows = load(path)
    print(f"Measured {header}.\n")
    for net, alpha, bw, source in NETWORKS:
        print(f"**{net}** (alpha {alpha * 1e6:g} us, B {bw / 1e9:.3g} GB/s: {source})\n")
        print("| config | batch | gradient MB | step ms (1 rank) | all-reduce ms at "
              + " / ".join(map(str, RANKS)) + " ranks | efficiency, batch per rank fixed, at "
              + " / ".join(map(str, RANKS)) + " | global batch fixed: most ranks (at most the batch) at >= 50% "
              "| per-rank batch below which 1,024 ranks spend over half the step communicating |")
        print("|---|---|---|---|---|---|---|---|")
        for name, batch, params, step in rows:
            n = 4 * params
            t = [ring(p, n, alpha, bw) for p in RANKS]
            weak = [step / (step + x) for x in t]
            # Strong scaling: per-rank compute step * (batch/p)/batch while batch/p >= 1.
            most = max([p for p in (2 ** k for k in range(11)) if p <= batch and
                        (step / p) / (step / p + ring(p, n, alpha, bw)) >= 0.5] or [1])
            per_sample = step / batch
            half = ring(1024, n, alpha, bw) / per_sample
            print(f"| {name} | {batch} | {n / 2**20:.2f} | {step * 1e3:.1f} | "
                  + " / ".join(f"{x * 1e3:.2f}" for x in t) + " | "
                  + " / ".join(f"{w:.0%}" for w in weak) + f" | {most} | {half:,.0f} |")
        print()


if __name__ == "__main__":
    main()
