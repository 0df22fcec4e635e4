#!/usr/bin/env bash
# The main job: two simulated hosts, a netmanager on each, services talking through ServiceIPs.
# Builds the agent if needed, runs as root, and removes everything it made on exit.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/testenv/lib.sh"
prefix=${DEMO_PREFIX:-demo}
export NM_AGENT_BIN=${NM_AGENT_BIN:-$root/build/default/netmanager}
work=$(mktemp -d)

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }
cleanup() {
  say "cleaning up"
  nm_hosts_down "$prefix"
  rm -rf "$work"
  echo "namespaces left with prefix $prefix: $(ip netns list | grep -c "^$prefix" || true)"
}

[ "$(id -u)" -eq 0 ] || { echo "demo: run as root (it creates network namespaces)" >&2; exit 1; }
if [ ! -x "$NM_AGENT_BIN" ] || [ -n "$(find "$root/src" -newer "$NM_AGENT_BIN" -name '*.[ch]pp' | head -1)" ]; then
  say "building netmanager"
  cmake --preset default -S "$root" >/dev/null && cmake --build "$root/build/default" --target netmanager || exit 1
fi

trap cleanup EXIT
say "two hosts ($prefix-h1 10.250.0.1, $prefix-h2 10.250.0.2), a netmanager on each, app namespaces myapp1/myapp2"
nm_hosts_up "$prefix" 2 || exit 1
nm_seed_up "$prefix" 2 || { tail -n 20 "$(nm_state "$prefix")"/agent*.log; exit 1; }
app() { nm_app_ns "$prefix" "$1" "$2"; }
for h in 1 2; do
  mkdir -p "$work/h$h" && echo "hello from host $h's myapp1 ($(nm_seed_nsip "$h" myapp1))" >"$work/h$h/index.html"
  nm_spawn "$prefix" "http$h" "$(app "$h" myapp1)" "$work/http$h.log" python3 -m http.server 8080 -d "$work/h$h" || exit 1
  nm_wait_listen "$(app "$h" myapp1)" 8080 || exit 1
done
run ip netns exec "$(app 2 myapp2)" ip -brief address
say "host 1: bridge at its /26 base+1, TUN at 10.19.1.254, containers 10.16.0.0/12 and ServiceIPs 10.30.0.0/16 routed to the TUN"
run nm_in "$prefix-h1" ip -4 -brief address show
run nm_in "$prefix-h1" ip -4 route show

say "curl from host 2's myapp2 through the RR ServiceIP 10.30.0.1 (each new flow: the next instance)"
for k in 1 2 3 4; do run nm_in "$(app 2 myapp2)" curl -sS --max-time 5 http://10.30.0.1:8080/; done
say "through host 1's InstanceNumber ServiceIP 10.30.1.1, and Closest 10.30.0.2 (the local instance)"
run nm_in "$(app 2 myapp2)" curl -sS --max-time 5 http://10.30.1.1:8080/
run nm_in "$(app 2 myapp2)" curl -sS --max-time 5 http://10.30.0.2:8080/

say "host 1's translation table (GET /table)"
nm_api "$prefix" 1 GET /table | /usr/bin/python3 -c '
import json, sys
for e in json.load(sys.stdin):
    job = ".".join(e[k] for k in ("appname", "appns", "servicename", "servicenamespace"))
    sips = ", ".join(s["IpType"] + " " + s["Address"] for s in e["serviceip"])
    print("  %s #%d: nsip %s on %s:%d  [%s]" % (job, e["instancenumber"], e["nsip"], e["nodeip"], e["nodeport"], sips))'

say "iperf3 for 3 s from host 2's myapp2 to host 1's web instance (InstanceNumber 10.30.1.1)"
nm_spawn "$prefix" iperf "$(app 1 myapp1)" "$work/iperf.log" iperf3 -s -p 5201 || exit 1
nm_wait_listen "$(app 1 myapp1)" 5201 || exit 1
run nm_in "$(app 2 myapp2)" iperf3 -c 10.30.1.1 -p 5201 -t 3 -f g | tail -n 4

say "host 2's counters (GET /metrics, non-zero)"
nm_api "$prefix" 2 GET /metrics | grep -v '^#' | awk '$2 != 0' | head -n 40
