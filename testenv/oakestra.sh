# shellcheck shell=bash
# An Oakestra v0.4.411 node and cluster around simulated hosts (testenv/lib.sh, sourced first):
# agents installed as the reference is, the cluster stand-in and the node engine stand-in of
# tests/conformance/. Used by tests/conformance/conformance.sh and bench/tunnel_throughput.
#
#   nm_oak_cluster_start PREFIX LOG NAME=COUNT...   mosquitto on 10.250.0.1:10003 in host 1 and
#                               oakestra_cluster.py (jobs NAME with COUNT scheduled instances),
#                               waits until it subscribed; LOG is its message log
#   nm_oak_agent_start PREFIX I BIN   the agent BIN on host I as a node runs it: the shipped
#                               netcfg.json and tuncfg.json in /etc/netmanager of a mount namespace
#                               of its own, no flags, a default route on the host; waits for
#                               /etc/netmanager/netmanager.sock. Label agent<I>; sets NM_PID
#   nm_oak_in PREFIX I CMD...   CMD in host I's network namespace and its agent's mount namespace
#   nm_oak_ne PREFIX I ARGS...  node_engine.py ARGS on host I's agent socket (prints "<status> <s>")
#   nm_oak_register PREFIX I ID the node engine's /register with worker id ID; fails unless 200
#   nm_oak_sip LOG JOB rr|ip N  a job's RR ServiceIP or instance N's instance_ip, as scheduled
# Each host's /etc overlay lives in /run/nm-testenv/PREFIX/etc<I>.

NM_OAK_DIR=$NM_ROOT/tests/conformance
NM_OAK_BROKER=10.250.0.1
NM_OAK_PORT=10003

nm_oak_cluster_start() {
  local prefix=$1 log=$2 j args=() t
  shift 2
  for j in "$@"; do args+=(--job "$j"); done
  nm_broker_start "$prefix" broker "$prefix-h1" "$NM_OAK_BROKER" "$NM_OAK_PORT" "$(nm_state "$prefix")/broker.log" || return 1
  nm_spawn "$prefix" cluster "$prefix-h1" "$(nm_state "$prefix")/cluster.log" /usr/bin/python3 \
    "$NM_OAK_DIR/oakestra_cluster.py" serve --host "$NM_OAK_BROKER" --port "$NM_OAK_PORT" --log "$log" "${args[@]}" || return 1
  for ((t = 0; t < 100; t++)); do
    [ "$(/usr/bin/python3 "$NM_ROOT/tests/system/fake_manager.py" events "$log" 2>/dev/null || echo 0)" -ge 1 ] && return 0
    sleep 0.1
  done
  nm_fail "the cluster stand-in did not subscribe within 10 s: $(tail -n 2 "$(nm_state "$prefix")/cluster.log" | tr '\n' ' ')"
}

nm_oak_agent_start() {
  local prefix=$1 i=$2 bin=$3 etc t out
  etc="$(nm_state "$prefix")/etc$i"
  [ -x "$bin" ] || { nm_fail "agent binary $bin missing"; return 1; }
  # NodePublicAddress 0.0.0.0: the agent takes the address of the default route, as on a node.
  out=$(ip -n "$prefix-h$i" route replace default via 10.250.0.254 dev ul0 2>&1) || { nm_fail "default route on host $i: $out"; return 1; }
  mkdir -p "$etc/netmanager" && cp "$NM_OAK_DIR/etc/netcfg.json" "$NM_OAK_DIR/etc/tuncfg.json" "$etc/netmanager/" ||
    { nm_fail "cannot write $etc"; return 1; }
  nm_spawn_etc "$prefix" "agent$i" "$prefix-h$i" "$(nm_state "$prefix")/agent$i.log" "$etc" "$bin" || return 1
  for ((t = 0; t < 100; t++)); do
    [ -S "$etc/netmanager/netmanager.sock" ] && return 0
    nm_running "$prefix" "agent$i" || break
    sleep 0.1
  done
  nm_fail "the agent on host $i made no /etc/netmanager/netmanager.sock: $(tail -n 3 "$(nm_state "$prefix")/agent$i.log" | tr '\n' ' ')"
}

nm_oak_in() {
  local prefix=$1 i=$2
  shift 2
  nsenter --mount="/proc/$(nm_pid_of "$prefix" "agent$i")/ns/mnt" --net="/run/netns/$prefix-h$i" -- "$@"
}

nm_oak_ne() {
  nm_oak_in "$1" "$2" /usr/bin/python3 "$NM_OAK_DIR/node_engine.py" /etc/netmanager/netmanager.sock "${@:3}"
}

nm_oak_register() {
  local out
  out=$(nm_oak_ne "$1" "$2" register "$3" "$NM_OAK_BROKER") || { nm_fail "host $2: /register answered '$out'"; return 1; }
  echo "$out"
}

nm_oak_sip() {
  /usr/bin/python3 "$NM_OAK_DIR/oakestra_cluster.py" job "$@"
}
