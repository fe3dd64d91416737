#!/usr/bin/env bash
# A real one-node Slurm cluster for tests: munge + slurmctld + slurmd from Debian's packages,
# configured in a scratch directory. usage: cluster.sh start DIR | stop DIR
# After `start`, `source DIR/env.sh` points sbatch/squeue/sacct at it.
set -euo pipefail
cmd=${1:?start|stop}; dir=${2:?scratch dir}

# The processes of this cluster: slurmd starts every slurmstepd (and they their tasks) with the
# environment it was started with, so they all carry SLURM_CONF=$dir/slurm.conf; nothing else on
# the machine does. This shell and its ancestors (the test that called it) are never listed.
ours() {
  local keep=" $$ " p=$$
  while [ "$p" -gt 1 ]; do p=$(awk '/^PPid:/ {print $2}' /proc/$p/status 2>/dev/null || echo 1); keep+="$p "; done
  for e in /proc/[0-9]*/environ; do
    local pid=${e#/proc/}; pid=${pid%/environ}
    case "$keep" in *" $pid "*) continue ;; esac
    if tr '\0' '\n' 2>/dev/null < "$e" | grep -qxF "SLURM_CONF=$dir/slurm.conf"; then echo "$pid"; fi
  done
  return 0
}

stop() {
  # Jobs first, while the daemons still run; then whatever of their steps is left, by PID.
  SLURM_CONF=$dir/slurm.conf scancel --full --quiet --user "$(id -un)" 2>/dev/null || true
  for pidfile in "$dir"/slurmd.pid "$dir"/slurmctld.pid; do
    [ -s "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
  done
  sleep 1
  for pidfile in "$dir"/slurmd.pid "$dir"/slurmctld.pid; do
    [ -s "$pidfile" ] && kill -9 "$(cat "$pidfile")" 2>/dev/null || true
    rm -f "$pidfile"
  done
  # Leftover step daemons and tasks of this cluster's jobs.
  local left; left=$(ours)
  if [ -n "$left" ]; then
    kill $left 2>/dev/null || true
    sleep 1
    left=$(ours)
    [ -z "$left" ] || kill -9 $left 2>/dev/null || true
  fi
  bash "$(dirname "$0")/munge.sh" stop "$dir"
}

if [ "$cmd" = stop ]; then stop; exit 0; fi

mkdir -p "$dir"/{spool,state,log}
bash "$(dirname "$0")/munge.sh" start "$dir"

cpus=$(nproc)
cat > "$dir/slurm.conf" <<CONF
ClusterName=dpttest
SlurmctldHost=localhost
$(bash "$(dirname "$0")/conf_common.sh")
SlurmctldPort=$(( 16817 + RANDOM % 1000 ))
SlurmdPort=$(( 17817 + RANDOM % 1000 ))
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
KillWait=30
NodeName=localhost CPUs=$cpus RealMemory=4000 State=UNKNOWN
PartitionName=test Nodes=localhost Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
CONF
cat > "$dir/env.sh" <<ENV
export SLURM_CONF=$dir/slurm.conf
ENV
export SLURM_CONF=$dir/slurm.conf
slurmctld -c -f "$SLURM_CONF"
slurmd -c -f "$SLURM_CONF"
for _ in $(seq 100); do
  sinfo -h -o %t 2>/dev/null | grep -qE "^idle" && exit 0
  sleep 0.2
done
echo "cluster.sh: the node did not become idle; logs:" >&2
tail -20 "$dir"/log/*.log >&2
stop
exit 1
