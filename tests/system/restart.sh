#!/usr/bin/env bash
# Restarts that keep workloads (issue 19 point 4, docs/restart.md): two simulated hosts with the
# seed's app namespaces (testenv/lib.sh); host 1's agent is killed with SIGKILL and started
# again.  restart.sh CASE
prefix="r$(($$ % 100000))"
usage_cases="kill_iperf|workload_gone|sigterm|bad_state"
source "$(dirname "$0")/common.sh"
agent_prefix=$(nm_agent_prefix "$prefix" 1)
state_file=/run/netmanager/state-$agent_prefix.json
cleanup() {
  nm_hosts_down "$prefix"
  rm -f "$state_file" "$state_file.tmp" "/run/netmanager/state-$(nm_agent_prefix "$prefix" 2).json"
  rm -rf "$work"
}

log1() { cat "$(nm_state "$prefix")/agent1.log"; }
dump_logs() { tail_logs 30; }
inode() { stat -L -c %i "/run/netns/$1"; }
host_veths() { ip -n "$prefix-h1" -o link show type veth | grep -c " $agent_prefix"v || true; }
listed() {  # listed JOB INSTANCE: host 1's /status lists that instance
  nm_api "$prefix" 1 GET /status | python3 -c '
import json, sys
s = json.load(sys.stdin)
sys.exit(0 if any(i["serviceName"] == sys.argv[1] and i["instanceNumber"] == int(sys.argv[2])
                  for i in s["instances"]) else 1)' "$1" "$2"
}
not_listed() { ! listed "$@"; }
api_up() { nm_api "$prefix" 1 GET /status >/dev/null; }
kill_agent1() {  # SIGKILL, as a crash: nothing is cleaned up
  local pid
  pid=$(nm_pid_of "$prefix" agent1)
  kill -KILL "$pid"
  wait "$pid" 2>/dev/null
  rm -f "$(nm_state "$prefix")/pids/agent1"
}
start_agent1() { nm_agent_start "$prefix" 1 "$(nm_state "$prefix")/table.json"; }

nm_hosts_up "$prefix" 2 || exit 1

case $case_name in
  kill_iperf)
    if [ "${NM_DATAPATH:-}" = auto ]; then
      # The restarted agent's kernel maps start empty, so its userspace path takes host 2's
      # fast-path packets of the flow until it offers the flow again; a veth underlay would hand
      # them over with the inner checksum unfinished (fastpath.sh, docs/design.md): finish
      # checksums at the underlay as a NIC does.
      for h in 1 2; do
        nm_in "$(nm_host "$prefix" "$h")" ethtool -K ul0 tx off >/dev/null || exit 1
      done
    fi
    nm_seed_up "$prefix" 2 || { dump_logs; exit 1; }
    web=$(app 1 myapp1)
    before=$(inode "$web")
    nm_spawn "$prefix" server "$web" "$work/server.log" iperf3 -s -1 -p 5201 || exit 1
    server=$NM_PID
    nm_wait_listen "$web" 5201 || exit 1
    # Host 2's client receives from host 1's web instance through its InstanceNumber ServiceIP,
    # reporting every 0.1 s, while host 1's agent is killed and started again.
    nm_spawn "$prefix" client "$(app 2 myapp2)" "$work/client.json" \
      iperf3 -c "$(nm_seed_web_ip 1)" -p 5201 -R -t 8 -i 0.1 -b 20M -J || exit 1
    client=$NM_PID
    sleep 2
    kill_agent1
    t0=$(date +%s.%N)
    start_agent1 || { dump_logs; exit 1; }
    t1=$(date +%s.%N)
    echo "agent 1 answered again $(python3 -c "print(round($t1 - $t0, 3))") s after SIGKILL"
    wait "$client"
    status=$?
    check "iperf3 completes with status 0 ($status)" test "$status" -eq 0
    python3 - "$work/client.json" >"$work/pause" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
if "error" in r:
    print("error:", r["error"]); sys.exit(1)
longest, start = 0.0, None
for i in r["intervals"]:
    s = i["sum"]
    if s["bytes"] == 0:
        start = s["start"] if start is None else start
        longest = max(longest, s["end"] - start)
    else:
        start = None
print(f'{longest:.2f} {r["end"]["sum_received"]["bytes"]}')
PY
    check "iperf3 reports no error (same connection, no reset): $(cat "$work/pause")" test $? -eq 0
    read -r pause bytes <"$work/pause"
    echo "longest pause: $pause s, $bytes bytes received"
    # The 2 s target is the optimized build's. An AddressSanitizer agent on a loaded machine
    # may take most of it just to start (1.7 s at load 12): there the transfer must resume
    # within 1 s of the agent answering again.
    limit=2
    if ldd "$NM_AGENT_BIN" | grep -q libasan; then
      limit=$(python3 -c "print(max(2.0, round($t1 - $t0 + 1, 2)))")
    fi
    check "the transfer pauses less than $limit s ($pause s)" python3 -c "import sys; sys.exit(0 if float('$pause') < $limit else 1)"
    wait "$server"
    status=$?
    check "the server, started before the kill, served its one test to the end ($status)" test "$status" -eq 0
    for h in 1 2; do echo "host $h: $(nm_api "$prefix" $h GET /metrics | grep -E '^netmanager_drops_total' | grep -v ' 0$' | tr '\n' ' ')"; done
    check "web's namespace is the same namespace" test "$(inode "$web" 2>/dev/null)" = "$before"
    check "the restarted agent lists web instance 0" listed "$NM_SEED_WEB" 0
    check "the restarted agent says it adopted it" grep -q "adopted $NM_SEED_WEB instance 0" <(log1)
    check "the client namespace without a process was removed" test ! -e "/run/netns/$(app 1 myapp2)"
    check "the state file lists the adopted instance" grep -q "\"host_link\"" "$state_file"
    [ "$failures" -eq 0 ] || dump_logs
    ;;
  workload_gone)
    nm_seed_up "$prefix" 2 || { dump_logs; exit 1; }
    nm_spawn "$prefix" sleeper1 "$(app 1 myapp1)" /dev/null sleep 300 || exit 1
    nm_spawn "$prefix" sleeper2 "$(app 1 myapp2)" /dev/null sleep 300 || exit 1
    kill_agent1
    nm_stop "$prefix" sleeper2 2  # client's workload ends while no agent runs
    check "both namespaces outlive the killed agent" test -e "/run/netns/$(app 1 myapp1)" -a -e "/run/netns/$(app 1 myapp2)"
    start_agent1 || { dump_logs; exit 1; }
    check "the namespace whose workload is gone is removed" test ! -e "/run/netns/$(app 1 myapp2)"
    check "the namespace whose workload lives is kept" test -e "/run/netns/$(app 1 myapp1)"
    check "web instance 0 is listed" listed "$NM_SEED_WEB" 0
    check "client instance 0 is not" not_listed "$NM_SEED_CLIENT" 0
    n=$(host_veths)
    check "one host veth is left, the kept one's ($n)" test "$n" -eq 1
    check "the log says why the other was not adopted" grep -q "no process runs in namespace $(app 1 myapp2)" <(log1)
    # The kept namespace still reaches host 2 through the tunnel.
    nm_spawn "$prefix" udp2 "$(app 2 myapp2)" "$work/udp2" python3 "$here/service.py" udp-listen 9999 10 || exit 1
    reached() {  # one datagram (again, until the listener is up and has it)
      nm_in "$(app 1 myapp1)" python3 -c '
import socket
socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"after-restart", ("10.30.2.2", 9999))'
      grep -q after-restart "$work/udp2"
    }
    check "the kept namespace reaches host 2's client through its ServiceIP" wait_until 10 reached
    [ "$failures" -eq 0 ] || dump_logs
    ;;
  sigterm)
    # Host 1's own ip_forward before any agent ran (a new namespace's: 0).
    original=$(nm_in "$prefix-h1" cat /proc/sys/net/ipv4/ip_forward)
    nm_seed_up "$prefix" 2 || { dump_logs; exit 1; }
    nm_spawn "$prefix" sleeper1 "$(app 1 myapp1)" /dev/null sleep 300 || exit 1
    kill_agent1
    check "ip_forward stays as the killed agent set it" test "$(nm_in "$prefix-h1" cat /proc/sys/net/ipv4/ip_forward)" = 1
    start_agent1 || { dump_logs; exit 1; }
    check "the restarted agent adopted web" listed "$NM_SEED_WEB" 0
    nm_agent_stop "$prefix" 1
    n=$(host_veths)
    check "SIGTERM leaves no host veth, though a process still runs in web's namespace ($n)" test "$n" -eq 0
    check "the process in it still runs" nm_running "$prefix" sleeper1
    now=$(nm_in "$prefix-h1" cat /proc/sys/net/ipv4/ip_forward)
    check "ip_forward is $original again, its value before the first start ($now)" test "$now" = "$original"
    check "the state file is removed" test ! -e "$state_file"
    [ "$failures" -eq 0 ] || dump_logs
    ;;
  bad_state)
    nm_seed_up "$prefix" 2 || { dump_logs; exit 1; }
    nm_spawn "$prefix" sleeper1 "$(app 1 myapp1)" /dev/null sleep 300 || exit 1
    for bad in '{"version": 1, "prefix": ' '{"version": 99}' "$(head -c 64 /dev/urandom | base64)"; do
      kill_agent1
      printf '%s' "$bad" >"$state_file"
      start_agent1 || { dump_logs; exit 1; }
      check "a state file '${bad:0:20}...' gives a clear log line" grep -q "state file not usable, adopting nothing" <(log1)
      check "... and the leftovers are removed as without a state file" test ! -e "/run/netns/$(app 1 myapp1)"
      check "... and the agent serves its API" api_up
      nm_app_deploy "$prefix" 1 myapp1 "$NM_SEED_WEB" 0 "$(nm_seed_nsip 1 myapp1)" || exit 1
      nm_stop "$prefix" sleeper1 2
      nm_spawn "$prefix" sleeper1 "$(app 1 myapp1)" /dev/null sleep 300 || exit 1
    done
    grep "state file" <(log1)
    [ "$failures" -eq 0 ] || dump_logs
    ;;
  *)
    echo "unknown case $case_name"
    exit 2
    ;;
esac
[ "$failures" -eq 0 ]
