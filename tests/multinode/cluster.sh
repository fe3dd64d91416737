#!/usr/bin/env bash
# A cluster of "nodes" on this machine for tests: each node is a network namespace with its own
# host name and an address on a veth into a switch namespace that holds only a bridge. Each exec
# on a node also gets a private /dev/shm and node-local scratch DIR/local (tmpfs): what one
# launcher starts there (orted and its ranks, slurmd and its steps) shares them, nothing on
# another node does. The rest of the file system is shared.
#   cluster.sh probe               exit 0 if this machine can make a node (namespaces, mounts)
#   cluster.sh up DIR N            N nodes node1..nodeN (10.99.0.K/24); state in DIR
#   cluster.sh exec DIR NODE CMD…  run CMD on NODE (DIR/NODE.setup, if present, runs first)
#   cluster.sh link DIR NODE up|down   plug or pull NODE's cable (at the switch)
#   cluster.sh kill DIR NODE       kill -9 every process on NODE (by PID, from its namespace)
#   cluster.sh pids DIR NODE [NAME]    PIDs of the processes on NODE (named NAME)
#   cluster.sh slurm DIR           Slurm on it: slurmctld on node1, a slurmd on every node;
#                                  DIR/slurm/slurm.conf (SLURM_CONF) for sbatch run on node1
#   cluster.sh down DIR            end every process on the nodes, remove namespaces and files
# DIR/rsh-agent is Open MPI's plm_rsh_agent for it: "ssh NODE CMD" becomes an exec on NODE.
# Nothing is routed: the switch namespace has no address, the nodes have no default route, and
# the machine's own namespace is never touched, so traffic stays between the nodes.
set -euo pipefail
cmd=${1:?probe|up|exec|link|kill|down}
if [ "$cmd" = probe ]; then
  # What exec needs: a network namespace, entered with a private mount namespace. A chroot
  # (its / is no mount point) or a container without CAP_SYS_ADMIN cannot.
  p=dpt-probe-$$
  ip netns add "$p" || exit 1
  nsenter --net="/run/netns/$p" unshare --mount --uts --propagation slave -- true
  rc=$?
  ip netns del "$p"
  exit $rc
fi
dir=${2:?state dir}
here=$(cd "$(dirname "$0")" && pwd)

state() { # PREFIX and N of the cluster in DIR
  [ -f "$dir/cluster.env" ] || { echo "cluster.sh: no cluster in $dir" >&2; exit 1; }
  # shellcheck disable=SC1091
  . "$dir/cluster.env"
}
ns_of() { echo "$PREFIX-$1"; }  # node1 -> dpt1234-node1

case "$cmd" in
up)
  n=${3:?number of nodes}
  mkdir -p "$dir" "$dir/local"
  PREFIX=dpt$$
  echo "PREFIX=$PREFIX; N=$n" > "$dir/cluster.env"
  sw=$PREFIX-sw
  ip netns add "$sw"
  ip -n "$sw" link add br0 type bridge
  ip -n "$sw" link set br0 up
  hosts="127.0.0.1 localhost"
  for k in $(seq "$n"); do hosts+=$'\n'"10.99.0.$k node$k"; done
  for k in $(seq "$n"); do
    ns=$PREFIX-node$k
    ip netns add "$ns"
    # Bound over /etc/hosts on the node (see exec): each node resolves the others.
    mkdir -p "/etc/netns/$ns"
    printf '%s\n' "$hosts" > "/etc/netns/$ns/hosts"
    ip -n "$sw" link add "n$k" type veth peer name dpt0 netns "$ns"
    ip -n "$sw" link set "n$k" master br0 up
    ip -n "$ns" addr add "10.99.0.$k/24" dev dpt0
    ip -n "$ns" link set dpt0 up
    ip -n "$ns" link set lo up
    # A cluster's own kernel setting (per network namespace): TCP gives up on a peer that
    # stopped acknowledging after ~13 s instead of Linux's default ~15 min (tcp_retries2=15).
    # mpirun's teardown after a partition waits for exactly that (docs/DISTRIBUTED.md).
    nsenter --net="/run/netns/$ns" sysctl -qw net.ipv4.tcp_retries2=5
  done
  cat > "$dir/rsh-agent" <<AGENT
#!/bin/sh
# Open MPI's plm_rsh_agent for the cluster in $dir: "ssh NODE CMD" runs CMD on NODE.
host=\$1; shift
exec "$here/cluster.sh" exec "$dir" "\$host" sh -c "\$*"
AGENT
  chmod +x "$dir/rsh-agent"
  ;;
exec)
  state
  node=${3:?node}; shift 3
  ns=$(ns_of "$node")
  [ -e "/run/netns/$ns" ] || { echo "cluster.sh: no node $node in $dir" >&2; exit 1; }
  # The node's network; a mount namespace of its own (slave to the machine's, so mounts made
  # here stay on this node) with its /etc/hosts and a private /dev/shm: no shared memory
  # between nodes. (Not `ip netns exec`: it remounts /sys, hiding the cgroups slurmd needs.)
  exec nsenter --net="/run/netns/$ns" unshare --mount --uts --propagation slave -- sh -c '
    set -e
    hostname "$1"; mount --bind "/etc/netns/$3/hosts" /etc/hosts
    mount -t tmpfs -o size=1g,mode=1777 shm /dev/shm
    mount -t tmpfs -o size=1g local "$2/local"
    if [ -f "$2/$1.setup" ]; then . "$2/$1.setup"; fi
    shift 3; exec "$@"' node-exec "$node" "$dir" "$ns" "$@"
  ;;
link)
  state
  node=${3:?node}; how=${4:?up|down}
  ip -n "$PREFIX-sw" link set "n${node#node}" "$how"
  if [ "$how" = up ]; then  # until the switch forwards on that port again
    for _ in $(seq 50); do
      bridge -n "$PREFIX-sw" link show dev "n${node#node}" | grep -q "state forwarding" && break
      sleep 0.1
    done
    sleep 1
  fi
  ;;
kill)
  state
  pids=$(ip netns pids "$(ns_of "${3:?node}")" || true)
  [ -z "$pids" ] || kill -9 $pids 2>/dev/null || true
  ;;
slurm)
  state
  s=$dir/slurm
  mkdir -p "$s/state" "$s/log"
  for k in $(seq "$N"); do mkdir -p "$s/spool-node$k"; done
  bash "$here/../slurm/munge.sh" start "$s"  # munge's socket is a file: every node reaches it
  nodes=""
  for k in $(seq "$N"); do
    nodes+="NodeName=node$k NodeAddr=10.99.0.$k CPUs=2 RealMemory=4000 State=UNKNOWN"$'\n'
  done
  # Ports are per network namespace: the defaults serve every test cluster at once.
  cat > "$s/slurm.conf" <<CONF
ClusterName=dptnodes
SlurmctldHost=node1(10.99.0.1)
$(bash "$here/../slurm/conf_common.sh")
SlurmdTimeout=10
StateSaveLocation=$s/state
SlurmdSpoolDir=$s/spool-%n
SlurmctldPidFile=$s/slurmctld.pid
SlurmdPidFile=$s/slurmd-%n.pid
SlurmctldLogFile=$s/log/slurmctld.log
SlurmdLogFile=$s/log/slurmd-%n.log
TmpFS=$dir/local
KillWait=5
${nodes}PartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
CONF
  export SLURM_CONF=$s/slurm.conf
  "$0" exec "$dir" node1 slurmctld -c -f "$SLURM_CONF"
  for k in $(seq "$N"); do "$0" exec "$dir" "node$k" slurmd -c -f "$SLURM_CONF" -N "node$k"; done
  for _ in $(seq 150); do
    idle=$("$0" exec "$dir" node1 sinfo -h -N -o "%N %t" 2>/dev/null | grep -c " idle" || true)
    [ "$idle" -ge "$N" ] && exit 0
    sleep 0.2
  done
  echo "cluster.sh: the nodes did not become idle; logs:" >&2
  tail -20 "$s"/log/*.log >&2
  exit 1
  ;;
pids)
  state
  for p in $(ip netns pids "$(ns_of "${3:?node}")" || true); do
    if [ -z "${4:-}" ] || [ "$(cat "/proc/$p/comm" 2>/dev/null)" = "$4" ]; then echo "$p"; fi
  done
  ;;
down)
  [ -f "$dir/cluster.env" ] || exit 0
  state
  for k in $(seq "$N"); do
    ns=$PREFIX-node$k
    rm -rf "/etc/netns/$ns"
    [ -e "/run/netns/$ns" ] || continue
    # Processes in our namespaces are ours: end them by PID, until none is left (once the
    # namespace is gone, a survivor could no longer be found by it).
    for _ in $(seq 50); do
      pids=$(ip netns pids "$ns" || true)
      [ -z "$pids" ] && break
      kill -9 $pids 2>/dev/null || true
      sleep 0.2
    done
    pids=$(ip netns pids "$ns" || true)
    [ -z "$pids" ] || echo "cluster.sh: processes on node$k would not end: $pids" >&2
    ip netns del "$ns" || true
  done
  ip netns del "$PREFIX-sw" 2>/dev/null || true
  [ -d "$dir/slurm" ] && bash "$here/../slurm/munge.sh" stop "$dir/slurm"
  rm -f "$dir/cluster.env" "$dir/rsh-agent"
  ;;
*) echo "cluster.sh: unknown command $cmd" >&2; exit 2 ;;
esac
