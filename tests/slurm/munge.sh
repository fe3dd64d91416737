#!/usr/bin/env bash
# munge for test clusters: one daemon for the machine, run as user munge (it refuses root).
#   munge.sh start DIR   start munged unless one answers; DIR/munge.ours marks that we did
#   munge.sh stop DIR    stop it again, by its PID file, only if DIR/munge.ours says we started it
set -euo pipefail
cmd=${1:?start|stop}; dir=${2:?scratch dir}
case "$cmd" in
start)
  if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then exit 0; fi
  mkdir -p /run/munge /var/log/munge /var/lib/munge /etc/munge
  [ -s /etc/munge/munge.key ] || dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 2>/dev/null
  chown -R munge:munge /run/munge /var/log/munge /var/lib/munge /etc/munge
  chmod 0700 /etc/munge /var/log/munge /var/lib/munge
  chmod 0400 /etc/munge/munge.key
  chmod 0755 /run/munge
  su -s /bin/sh munge -c "munged --force"
  touch "$dir/munge.ours"
  for _ in $(seq 50); do munge -n | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
  ;;
stop)
  if [ -f "$dir/munge.ours" ]; then
    [ -s /run/munge/munged.pid ] && kill "$(cat /run/munge/munged.pid)" 2>/dev/null || true
    rm -f "$dir/munge.ours"
  fi
  ;;
esac
