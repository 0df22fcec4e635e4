# shellcheck shell=bash
# Simulated hosts for NetManager: network namespaces on a private underlay.
# Source this file; it defines functions and changes no shell options.
#
#   nm_hosts_up PREFIX N        hosts PREFIX-h1..hN, underlay 10.250.0.<i>/24 on "ul0", MTU 1500;
#                               returns 2 (nothing made) when PREFIX is already up
#                               (NM_UNDERLAY=delay: the hosts' ports are joined by a delay line
#                               instead of a bridge, see nm_delay_line_start)
#   nm_hosts_down PREFIX        stop what nm_spawn started, remove every namespace made (exact names)
#   nm_delay_line_start PREFIX  testenv/delay_line.py switching the underlay ports h1..hN of
#                               PREFIX-ul, each port's one-way delay from nm_delay_set
#   nm_delay_set PREFIX "hI MS [noecho]"...  set the delays (a round trip between hosts i and j
#                               takes 2 * (MS_i + MS_j) ms more), applied at once
#   nm_spawn PREFIX LABEL NETNS LOG CMD...   start CMD in NETNS, PID recorded under LABEL
#   nm_spawn_etc PREFIX LABEL NETNS LOG ETCDIR CMD...   the same in a mount namespace of its own
#                               whose /etc is the host's with ETCDIR laid over it (an agent
#                               installed as the reference is: /etc/netmanager per host)
#   nm_broker_start PREFIX LABEL NETNS IP PORT LOG [CONF]   mosquitto on IP:PORT, waits until it listens
#   nm_stop PREFIX LABEL [SECS] SIGTERM, then SIGKILL after SECS (default 10); by PID only
#   nm_in NETNS CMD...          run CMD in NETNS in the foreground
#   nm_agent_start PREFIX I TABLE [ARGS...]   netmanager on host I (contract in docs/benchmarks.md)
#                               (NM_DATAPATH=auto|userspace: --datapath for every agent; ARGS win)
#   nm_agent_stop PREFIX I      SIGTERM the agent and wait; it removes its app namespaces
#   nm_api PREFIX I METHOD PATH [BODY]        the agent's HTTP API over its unix socket
#   nm_app_deploy PREFIX I NAME SERVICE INSTANCE NSADDR   app namespace through the agent
#   nm_seed_table N FILE        the standard translation table (below) for N hosts
#   nm_seed_up PREFIX N [ARGS...]   agents on all hosts with that table, seed app namespaces deployed
#   NM_SEED_V6=1                the seed dual-stack: table entries with nsipv6 and Address_v6 (below),
#                               agents with --subnet6 fc00::<i>00/120
#   nm_seed_down PREFIX         stop all agents of PREFIX
#
# Names: hosts PREFIX-h<i>, underlay bridge namespace PREFIX-ul (only when N != 2),
# agent prefix PREFIX<i> (TUN PREFIX<i>tun, bridge PREFIX<i>br, app namespaces
# PREFIX<i>-<name>), API socket /run/PREFIX-h<i>.sock. State (namespaces made, PIDs
# started, table file) lives in /run/nm-testenv/PREFIX so `down` works from another shell.
# Nothing is ever added to the root namespace: veths are created inside the namespaces.
#
# Failures return 1 and leave a one-line reason in NM_ERROR (also printed to stderr).
#
# Seed layout (the seed's dev setup on the reference's address plan, extended to N hosts:
# containers in 10.16.0.0/12, node subnets /26, ServiceIPs in 10.30.0.0/16, TUN 10.19.1.254;
# standalone, so host i takes the /26 10.18.<i>.0 itself): host i has subnet 10.18.<i>.0/26,
# app namespace myapp1 at 10.18.<i>.12 (instance i-1 of service app.ns.web.default) and
# myapp2 at 10.18.<i>.15 (instance i-1 of app.ns.client.default). ServiceIPs:
#   web:    RR 10.30.0.1, Closest 10.30.0.2, InstanceNumber 10.30.1.<i>
#   client: RR 10.30.0.3, Closest 10.30.0.4, InstanceNumber 10.30.2.<i>
# With NM_SEED_V6=1 also IPv6 (deployed in that order, myapp1 takes fc00::<i>02 and myapp2
# fc00::<i>03 of host i's /120):
#   web:    RR fdff:2000::1, Closest fdff:2000::2, InstanceNumber fdff::1:<i>
#   client: RR fdff:2000::3, Closest fdff:2000::4, InstanceNumber fdff::2:<i>

NM_TESTENV_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
NM_ROOT=$(cd "$NM_TESTENV_DIR/.." && pwd)
NM_STATE_ROOT=${NM_STATE_ROOT:-/run/nm-testenv}
NM_AGENT_BIN=${NM_AGENT_BIN:-$NM_ROOT/build/default/netmanager}
NM_TUNNEL_PORT=${NM_TUNNEL_PORT:-50103}
NM_ERROR=

NM_SEED_WEB=app.ns.web.default
NM_SEED_CLIENT=app.ns.client.default
NM_SEED_WEB_RR=10.30.0.1
NM_SEED_WEB_CLOSEST=10.30.0.2
NM_SEED_CLIENT_RR=10.30.0.3
NM_SEED_CLIENT_CLOSEST=10.30.0.4
nm_seed_web_ip() { echo "10.30.1.$1"; }      # InstanceNumber ServiceIP of web on host $1
nm_seed_client_ip() { echo "10.30.2.$1"; }   # InstanceNumber ServiceIP of client on host $1
nm_seed_nsip() { case $2 in myapp1) echo "10.18.$1.12" ;; myapp2) echo "10.18.$1.15" ;; esac; }
nm_seed_web_ip6() { echo "fdff::1:$1"; }     # IPv6 InstanceNumber ServiceIP of web on host $1
nm_seed_nsip6() { case $2 in myapp1) echo "fc00::${1}02" ;; myapp2) echo "fc00::${1}03" ;; esac; }

nm_fail() {
  NM_ERROR="$*"
  echo "testenv: $*" >&2
  return 1
}

nm_state() { echo "$NM_STATE_ROOT/$1"; }
nm_host() { echo "$1-h$2"; }
nm_underlay_ip() { echo "10.250.0.$1"; }
nm_agent_prefix() { echo "$1$2"; }
nm_agent_socket() { echo "/run/$1-h$2.sock"; }
nm_state_file_rm() {  # PREFIX I: the agent's restart state file (src/node/state_file.cpp)
  local f="/run/netmanager/state-$(nm_agent_prefix "$1" "$2").json"
  rm -f "$f" "$f.tmp"
}
nm_app_ns() { echo "$1$2-$3"; }   # PREFIX I NAME: the app namespace the agent makes

nm_check_prefix() {
  # Short so that "<prefix><i>tun" and the agent's own veth names stay within 15 characters.
  [[ $1 =~ ^[a-z][a-z0-9]{0,5}$ ]] || nm_fail "prefix '$1' must be 1-6 characters [a-z0-9], starting with a letter"
}

nm_in() {
  local ns=$1; shift
  nsenter --net="/run/netns/$ns" -- "$@"
}

# Records a namespace as ours before creating it, so a half-done setup is still removed.
nm_netns_add() {
  local prefix=$1 ns=$2 out
  if [ -e "/run/netns/$ns" ]; then
    nm_fail "namespace $ns already exists (leftover? run: testenv/hosts.sh down $prefix)"
    return 1
  fi
  echo "$ns" >>"$(nm_state "$prefix")/netns"
  out=$(ip netns add "$ns" 2>&1) || { nm_fail "ip netns add $ns: $out"; return 1; }
  ip -n "$ns" link set lo up
}

nm_hosts_up() {
  local prefix=$1 n=${2:-2} i state out
  nm_check_prefix "$prefix" || return 1
  [[ $n =~ ^[1-9][0-9]?$ && $n -le 50 ]] || { nm_fail "host count '$n' must be 1..50"; return 1; }
  [ "$(id -u)" -eq 0 ] || { nm_fail "must run as root (creates network namespaces)"; return 1; }
  state=$(nm_state "$prefix")
  # Return 2: nothing was made, so the caller must not tear down (those hosts are someone else's).
  [ -e "$state" ] && { nm_fail "$state exists: hosts for prefix $prefix are up (or left over); run: testenv/hosts.sh down $prefix"; return 2; }
  mkdir -p "$state/pids" && echo "$n" >"$state/hosts" || { nm_fail "cannot create $state"; return 1; }
  # No agent of these hosts runs yet: a state file under their names is a killed run's, with
  # another process id of the same value, and must not be adopted by this run's agents.
  for ((i = 1; i <= n; i++)); do nm_state_file_rm "$prefix" "$i"; done
  for ((i = 1; i <= n; i++)); do
    nm_netns_add "$prefix" "$(nm_host "$prefix" "$i")" || return 1
  done
  if [ "$n" -eq 2 ] && [ "${NM_UNDERLAY:-}" != bridge ]; then
    # Two hosts: one veth pair, the same underlay the reference numbers were measured on.
    out=$(ip -n "$prefix-h1" link add ul0 mtu 1500 type veth peer name ul0 mtu 1500 netns "$prefix-h2" 2>&1) ||
      { nm_fail "veth $prefix-h1/ul0 <-> $prefix-h2/ul0: $out"; return 1; }
  else
    nm_netns_add "$prefix" "$prefix-ul" || return 1
    local master=(master br0)
    if [ "${NM_UNDERLAY:-}" = delay ]; then
      master=()  # the delay line switches between the ports
    else
      out=$(ip -n "$prefix-ul" link add br0 mtu 1500 type bridge 2>&1 && ip -n "$prefix-ul" link set br0 up 2>&1) ||
        { nm_fail "bridge in $prefix-ul: $out"; return 1; }
    fi
    for ((i = 1; i <= n; i++)); do
      out=$(ip -n "$prefix-ul" link add "h$i" mtu 1500 type veth peer name ul0 mtu 1500 netns "$prefix-h$i" 2>&1 &&
        ip -n "$prefix-ul" link set "h$i" "${master[@]}" up 2>&1) ||
        { nm_fail "underlay port h$i for $prefix-h$i: $out"; return 1; }
    done
  fi
  for ((i = 1; i <= n; i++)); do
    out=$(ip -n "$prefix-h$i" addr add "$(nm_underlay_ip "$i")/24" dev ul0 2>&1 &&
      ip -n "$prefix-h$i" link set ul0 up 2>&1) ||
      { nm_fail "address on $prefix-h$i/ul0: $out"; return 1; }
  done
}

nm_delay_line_start() {
  local prefix=$1 state n i ports=() t
  state=$(nm_state "$prefix")
  n=$(cat "$state/hosts")
  for ((i = 1; i <= n; i++)); do ports+=("h$i"); done
  touch "$state/delays"
  # Real-time priority (the lowest) so that a loaded machine does not add its wake-up latency
  # to the emulated delays; the program sleeps between frames and handles little traffic.
  nm_spawn "$prefix" delayline "$prefix-ul" "$state/delayline.log" chrt -f 1 \
    /usr/bin/python3 "$NM_TESTENV_DIR/delay_line.py" "$state/delays" "$state/delayline.json" "${ports[@]}" || return 1
  for ((t = 0; t < 50; t++)); do
    [ -s "$state/delayline.json" ] && return 0
    sleep 0.1
  done
  nm_fail "delay line in $prefix-ul did not start: $(tail -n 2 "$state/delayline.log" | tr '\n' ' ')"
}

nm_delay_set() {
  local prefix=$1 state pid
  shift
  state=$(nm_state "$prefix")
  printf '%s\n' "$@" >"$state/delays.tmp" && mv "$state/delays.tmp" "$state/delays"
  pid=$(nm_pid_of "$prefix" delayline) || { nm_fail "no delay line runs for $prefix"; return 1; }
  kill -HUP "$pid"
}

nm_pid_alive() {
  # A zombie counts as gone: the process has finished its cleanup.
  local pid=$1 start=$2 stat f
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  read -r -a f <<<"$stat"
  [ "${f[0]}" != Z ] && [ "${f[19]}" = "$start" ]
}

nm_pid_start() {
  local stat f
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  read -r -a f <<<"$stat"
  echo "${f[19]}"
}

# Sets NM_PID. Call it directly, not inside $( ), so the process is this shell's child.
nm_spawn() {
  local prefix=$1 label=$2 ns=$3 log=$4 pidfile
  shift 4
  pidfile="$(nm_state "$prefix")/pids/$label"
  [ -e "$pidfile" ] && { nm_fail "a process labelled $label already runs for $prefix"; return 1; }
  [ -e "/run/netns/$ns" ] || { nm_fail "no namespace $ns"; return 1; }
  nsenter --net="/run/netns/$ns" -- "$@" >"$log" 2>&1 </dev/null &
  NM_PID=$!
  # nsenter execs the command, so this PID is the command's; the start time guards against reuse.
  echo "$NM_PID $(nm_pid_start "$NM_PID")" >"$pidfile"
}

nm_spawn_etc() {
  local prefix=$1 label=$2 ns=$3 log=$4 upper=$5 out
  shift 5
  out=$(mkdir -p "$upper" "$upper.work" "$upper.run" 2>&1) || { nm_fail "cannot create $upper: $out"; return 1; }
  # unshare and sh exec the command, so the PID nm_spawn records is the command's. The agent
  # also gets a /run/netmanager of its own: agents started as a real node all use the default
  # prefix, and one's restart state file must not be read by another's start.
  nm_spawn "$prefix" "$label" "$ns" "$log" unshare --mount --propagation private -- /bin/sh -c \
    'mount -t overlay overlay -o "lowerdir=/etc,upperdir=$0,workdir=$1" /etc && mkdir -p /run/netmanager &&
     mount --bind "$2" /run/netmanager && shift 2 && exec "$@"' \
    "$upper" "$upper.work" "$upper.run" "$@"
}

nm_broker_start() {
  local prefix=$1 label=$2 ns=$3 ip=$4 port=$5 log=$6 conf
  conf="$(nm_state "$prefix")/$label.conf"
  cat >"$conf" <<EOF
listener $port $ip
allow_anonymous true
persistence false
set_tcp_nodelay true
log_dest stderr
log_type error
log_type warning
log_type notice
log_type information
${7:-}
EOF
  nm_spawn "$prefix" "$label" "$ns" "$log" mosquitto -c "$conf" || return 1
  nm_wait_listen "$ns" "$port" || { nm_fail "mosquitto does not listen on $ip:$port: $(tail -n 2 "$log" | tr '\n' ' ')"; return 1; }
}

nm_pid_of() {
  local pidfile
  pidfile="$(nm_state "$1")/pids/$2"
  [ -f "$pidfile" ] && read -r pid _ <"$pidfile" && echo "$pid"
}

nm_running() {
  local pidfile pid start
  pidfile="$(nm_state "$1")/pids/$2"
  [ -f "$pidfile" ] && read -r pid start <"$pidfile" && nm_pid_alive "$pid" "$start"
}

nm_stop() {
  local prefix=$1 label=$2 secs=${3:-10} pidfile pid start t
  pidfile="$(nm_state "$prefix")/pids/$label"
  [ -f "$pidfile" ] || return 0
  read -r pid start <"$pidfile"
  if nm_pid_alive "$pid" "$start"; then
    kill -TERM "$pid" 2>/dev/null
    for ((t = 0; t < secs * 10; t++)); do
      nm_pid_alive "$pid" "$start" || break
      sleep 0.1
    done
    if nm_pid_alive "$pid" "$start"; then
      echo "testenv: $label (pid $pid) ignored SIGTERM for ${secs}s, killing it" >&2
      kill -KILL "$pid" 2>/dev/null
    fi
  fi
  wait "$pid" 2>/dev/null   # reap it if it is our child
  rm -f "$pidfile"
  return 0
}

nm_hosts_down() {
  local prefix=$1 state label ns n i sock
  nm_check_prefix "$prefix" || return 1
  state=$(nm_state "$prefix")
  [ -d "$state" ] || return 0
  # Servers and clients first (they may live in app namespaces), then the agents, gracefully:
  # each removes its own app namespaces and nftables table.
  for label in "$state"/pids/*; do
    [[ -e $label && ${label##*/} != agent* ]] && nm_stop "$prefix" "${label##*/}" 5
  done
  for label in "$state"/pids/agent*; do
    [ -e "$label" ] && nm_stop "$prefix" "${label##*/}" 15
  done
  # App namespaces an agent that died could not remove (recorded by nm_app_deploy).
  if [ -f "$state/appns" ]; then
    while read -r ns; do
      [ -e "/run/netns/$ns" ] && ip netns del "$ns"
    done <"$state/appns"
  fi
  n=$(cat "$state/hosts" 2>/dev/null || echo 0)
  for ((i = 1; i <= n; i++)); do
    sock=$(nm_agent_socket "$prefix" "$i")
    [ -S "$sock" ] && rm -f "$sock"
    nm_state_file_rm "$prefix" "$i"  # left by an agent that had to be killed
  done
  if [ -f "$state/netns" ]; then
    # Reverse order: the underlay bridge namespace goes last. Deleting a namespace deletes its veths.
    tac "$state/netns" | while read -r ns; do
      [ -e "/run/netns/$ns" ] && ip netns del "$ns"
    done
  fi
  rm -rf "$state"
}

nm_api() {
  local prefix=$1 i=$2 method=$3 path=$4 body=${5:-}
  local args=(-sS --max-time 10 --fail-with-body --unix-socket "$(nm_agent_socket "$prefix" "$i")" -X "$method")
  [ -n "$body" ] && args+=(-H 'Content-Type: application/json' -d "$body")
  curl "${args[@]}" "http://nm$path"
}

nm_agent_start() {
  local prefix=$1 i=$2 table=$3 label="agent$2" host log sock t out
  shift 3
  host=$(nm_host "$prefix" "$i")
  [ -x "$NM_AGENT_BIN" ] || { nm_fail "agent binary $NM_AGENT_BIN missing (build: cmake --build build/default --target netmanager)"; return 1; }
  [ -f "$table" ] || { nm_fail "table file $table missing"; return 1; }
  sock=$(nm_agent_socket "$prefix" "$i")
  log="$(nm_state "$prefix")/$label.log"
  # Every simulated host numbers the shared cores from a different one: as a connection's owner
  # shard index is the same at both ends, its two agent threads run on different cores, as they
  # would on two machines (NM_AGENT_ROTATE_CPUS=0: every agent pins shard i to core i).
  local cores k first=$((i - 1)) cpus=
  cores=$(nproc)
  [ "${NM_AGENT_ROTATE_CPUS:-1}" = 0 ] && first=0
  for ((k = 0; k < cores; k++)); do cpus+=${cpus:+,}$(((first + k) % cores)); done
  nm_spawn "$prefix" "$label" "$host" "$log" "$NM_AGENT_BIN" --cpus "$cpus" \
    --subnet "10.18.$i.0/26" --node-ip "$(nm_underlay_ip "$i")" \
    --prefix "$(nm_agent_prefix "$prefix" "$i")" --tun "$(nm_agent_prefix "$prefix" "$i")tun" \
    --bridge "$(nm_agent_prefix "$prefix" "$i")br" --api-socket "$sock" --table "$table" \
    --shards "${NM_AGENT_SHARDS:-2}" ${NM_SEED_V6:+--subnet6 "fc00::${i}00/120"} \
    ${NM_DATAPATH:+--datapath "$NM_DATAPATH"} "$@" || return 1
  local pid=$NM_PID status
  for ((t = 0; t < 100; t++)); do
    if ! nm_running "$prefix" "$label"; then
      wait "$pid" 2>/dev/null
      status=$?
      out=$(tail -n 3 "$log" | tr '\n' ' ')
      nm_stop "$prefix" "$label"
      nm_fail "agent on $host exited at startup (status $status): ${out:-no output}"
      return 1
    fi
    [ -S "$sock" ] && nm_api "$prefix" "$i" GET /status >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  out=$(tail -n 3 "$log" | tr '\n' ' ')
  nm_stop "$prefix" "$label"
  nm_fail "agent on $host did not answer GET /status on $sock within 10 s: $out"
}

nm_agent_stop() {
  nm_stop "$1" "agent$2" 15
}

nm_app_deploy() {
  local prefix=$1 i=$2 name=$3 service=$4 instance=$5 nsaddr=$6 ns out
  ns=$(nm_app_ns "$prefix" "$i" "$name")
  echo "$ns" >>"$(nm_state "$prefix")/appns"
  out=$(nm_api "$prefix" "$i" POST /netns/deploy \
    "{\"name\":\"$name\",\"serviceName\":\"$service\",\"instanceNumber\":$instance,\"nsAddress\":\"$nsaddr\"}" 2>&1) ||
    { nm_fail "deploy $name on $(nm_host "$prefix" "$i"): $out"; return 1; }
  [ -e "/run/netns/$ns" ] || { nm_fail "agent answered deploy of $name but /run/netns/$ns does not exist: $out"; return 1; }
}

nm_seed_table() {
  local n=$1 file=$2
  /usr/bin/python3 - "$n" "$file" "$NM_TUNNEL_PORT" "${NM_SEED_V6:-}" <<'EOF'
import json, sys
n, path, port, v6 = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4] != ""
services = [  # (service name, last octet of nsip, RR, Closest, InstanceNumber third octet,
              #  the IPv6 nsip's last byte, IPv6 RR and Closest)
    ("web", 12, "10.30.0.1", "10.30.0.2", 1, 2, "fdff:2000::1", "fdff:2000::2"),
    ("client", 15, "10.30.0.3", "10.30.0.4", 2, 3, "fdff:2000::3", "fdff:2000::4"),
]
table = []
for host in range(1, n + 1):
    for name, octet, rr, closest, third, low6, rr6, closest6 in services:
        entry = {
            "appname": "app", "appns": "ns", "servicename": name, "servicenamespace": "default",
            "instancenumber": host - 1, "nodeip": f"10.250.0.{host}", "nodeport": port,
            "nsip": f"10.18.{host}.{octet}",
            "serviceip": [
                {"IpType": "InstanceNumber", "Address": f"10.30.{third}.{host}"},
                {"IpType": "RR", "Address": rr},
                {"IpType": "Closest", "Address": closest},
            ],
        }
        if v6:
            entry["nsipv6"] = f"fc00::{host}{low6:02x}"
            for sip, address in zip(entry["serviceip"], (f"fdff::{third}:{host}", rr6, closest6)):
                sip["Address_v6"] = address
        table.append(entry)
with open(path, "w") as f:
    json.dump(table, f, indent=1)
EOF
}

nm_seed_up() {
  local prefix=$1 n=$2 table i
  shift 2
  table="$(nm_state "$prefix")/table.json"
  nm_seed_table "$n" "$table" || { nm_fail "cannot write $table"; return 1; }
  for ((i = 1; i <= n; i++)); do
    nm_agent_start "$prefix" "$i" "$table" "$@" || return 1
  done
  for ((i = 1; i <= n; i++)); do
    nm_app_deploy "$prefix" "$i" myapp1 "$NM_SEED_WEB" $((i - 1)) "$(nm_seed_nsip "$i" myapp1)" || return 1
    nm_app_deploy "$prefix" "$i" myapp2 "$NM_SEED_CLIENT" $((i - 1)) "$(nm_seed_nsip "$i" myapp2)" || return 1
  done
}

nm_seed_down() {
  local prefix=$1 n i
  n=$(cat "$(nm_state "$prefix")/hosts" 2>/dev/null || echo 0)
  for ((i = 1; i <= n; i++)); do
    nm_agent_stop "$prefix" "$i"
  done
}

# Waits until a TCP port listens in a namespace (servers started with nm_spawn).
nm_wait_listen() {
  local ns=$1 port=$2 t
  for ((t = 0; t < 50; t++)); do
    [ -n "$(nm_in "$ns" ss -Hltn "sport = :$port" 2>/dev/null)" ] && return 0
    sleep 0.1
  done
  nm_fail "nothing listens on TCP port $port in $ns after 5 s"
}
