#!/usr/bin/env bash
# Simulated hosts from the command line (as root). The functions live in testenv/lib.sh.
#
#   testenv/hosts.sh up PREFIX [N] [--seed [AGENT ARGS...]]
#       N hosts (default 2) PREFIX-h1..hN on the underlay 10.250.0.0/24; with --seed also a
#       netmanager per host (extra AGENT ARGS passed on, e.g. --no-offload) and the seed's app
#       namespaces myapp1/myapp2 (layout in lib.sh). A failed `up` removes what it made.
#   testenv/hosts.sh down PREFIX
#       stops the processes it started (by PID) and removes every namespace it made.
#   testenv/hosts.sh status PREFIX
#       lists the namespaces and processes of PREFIX.
set -uo pipefail
source "$(dirname "$0")/lib.sh"

usage() {
  sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

[ $# -ge 2 ] || usage
cmd=$1 prefix=$2
shift 2
case $cmd in
  up)
    n=2
    if [ $# -gt 0 ] && [[ $1 != --* ]]; then n=$1; shift; fi
    seed=0
    if [ $# -gt 0 ]; then
      [ "$1" = --seed ] || usage
      seed=1
      shift
    fi
    nm_hosts_up "$prefix" "$n"
    rc=$?
    if [ $rc -ne 0 ]; then
      [ $rc -eq 2 ] || nm_hosts_down "$prefix"
      exit 1
    fi
    if [ $seed -eq 1 ] && ! nm_seed_up "$prefix" "$n" "$@"; then
      nm_hosts_down "$prefix"
      exit 1
    fi
    echo "hosts up: $(ip netns list | awk -v p="^$prefix-" '$1 ~ p {print $1}' | sort | tr '\n' ' ')"
    ;;
  down)
    nm_hosts_down "$prefix" || exit 1
    ;;
  status)
    nm_check_prefix "$prefix" || exit 1
    state=$(nm_state "$prefix")
    [ -d "$state" ] || { echo "$prefix: not up"; exit 0; }
    echo "namespaces: $(cat "$state/netns" "$state/appns" 2>/dev/null | tr '\n' ' ')"
    for f in "$state"/pids/*; do
      [ -e "$f" ] || continue
      read -r pid _ <"$f"
      if nm_running "$prefix" "${f##*/}"; then s=running; else s=exited; fi
      echo "process ${f##*/}: pid $pid $s"
    done
    ;;
  *) usage ;;
esac
