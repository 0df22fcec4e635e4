#!/usr/bin/env bash
# Conformance with a released Oakestra v0.4.411 node and cluster (issue 17):  conformance.sh CASE
#
# Two simulated hosts (testenv/lib.sh). Each agent is installed as the reference is: the shipped
# netcfg.json and tuncfg.json (etc/ beside this script, unchanged) in /etc/netmanager of a mount
# namespace of its own, started without flags, API on /etc/netmanager/netmanager.sock. Host 1 also
# runs the cluster: mosquitto on 10.250.0.1:10003 and oakestra_cluster.py (what the root and
# cluster service managers answer). The node engine is node_engine.py on the agent's socket.
# Containers are processes started with `unshare --net` and deployed by PID; their servers are
# tests/system/service.py (HTTP /id and a UDP echo on 8080), their clients curl and nc.
# NM_REFERENCE_BIN names the Go reference agent for the mixed case and for reference_<case>, which
# runs a case with two reference agents (exit 77, skipped, without it).
set -uo pipefail
conformance_dir=$(cd "$(dirname "$0")" && pwd)
system=$(cd "$conformance_dir/../system" && pwd)
case_name=${1:?usage: conformance.sh CASE}
prefix="k$(($$ % 100000))"
source "$system/common.sh"
source "$conformance_dir/../../testenv/oakestra.sh"
broker=$NM_OAK_BROKER
log=$work/cluster.jsonl   # every message the cluster stand-in received or sent
# Jobs named as real task ids are (upper case); the root numbers ServiceIPs from 10.30.0.0.
W=oakestragaming.2LDX3BEFPZBXTOLNBUG4Z7OOF4.MightyWavesJump.default
C=oakestragaming.2LDX3BEFPZBXTOLNBUG4Z7OOF4.QuietHarbourClient.default
V=oakestragaming.2LDX3BEFPZBXTOLNBUG4Z7OOF4.SlowRiverEcho.default
ids=(- 6756c1a9e2f0b3d4a5c6e701 6756c1a9e2f0b3d4a5c6e702)   # the hosts' worker ids (24 hex)
# The agents a case runs: ours, or the Go reference for reference_<case> (the same case against the
# real agent: the stand-ins ask nothing of ours that the reference does not do).
kind=ours
if [[ $case_name == reference_* ]]; then
  kind=reference case_name=${case_name#reference_}
  [ -x "${NM_REFERENCE_BIN:-}" ] || { echo "SKIP: no reference agent (NM_REFERENCE_BIN='${NM_REFERENCE_BIN:-}')"; exit 77; }
fi
declare -A PID           # container label -> PID

state() { nm_state "$prefix"; }
dump_logs() {
  local f
  for f in "$(state)"/*.log; do echo "--- $f"; tail -n 25 "$f" | cut -c1-300; done
  echo "--- cluster messages"; tail -n 40 "$log" 2>/dev/null | cut -c1-500
}
die() { echo "FAIL: $*"; dump_logs; exit 1; }
fm() { /usr/bin/python3 "$system/fake_manager.py" "$@"; }
oc() { /usr/bin/python3 "$conformance_dir/oakestra_cluster.py" "$@"; }
count() { fm count "$log" "$@"; }   # count SUFFIX [FIELD=VALUE]...: messages the cluster received
seen() { test "$(count "$1")" -ge "${2:-1}"; }   # seen SUFFIX [N]: at least N such messages
sip() { nm_oak_sip "$log" "$@"; }   # sip JOB rr | sip JOB ip N

cluster_start() {  # cluster_start NAME=INSTANCES...: broker and cluster stand-in on host 1
  nm_oak_cluster_start "$prefix" "$log" "$@" || die "cluster: $NM_ERROR"
}
agent_start() {  # agent_start HOST [ours|reference]: installed as the reference, no flags
  local bin=$NM_AGENT_BIN
  [ "${2:-$kind}" = reference ] && bin=$NM_REFERENCE_BIN
  nm_oak_agent_start "$prefix" "$1" "$bin" || die "${2:-$kind} agent on host $1: $NM_ERROR"
}
agent_alive() { nm_running "$prefix" "agent$1"; }
in_agent() { nm_oak_in "$prefix" "$@"; }   # in_agent HOST CMD...
ne() { nm_oak_ne "$prefix" "$@"; }         # ne HOST node_engine.py ARGS...
register() { nm_oak_register "$prefix" "$1" "${ids[$1]}" || die "$NM_ERROR"; }
subnet_requests() { count "${ids[$1]}/net/subnet" METHOD=GET; }
bridge_addr() { ip -n "$prefix-h$1" -4 -o addr show dev goProxyBridge 2>/dev/null | awk '{ print $4 }'; }

proc_start() {  # proc_start HOST LABEL CMD...: CMD in a network namespace of its own, as a container
  local i=$1 label=$2
  shift 2
  nm_spawn "$prefix" "$label" "$prefix-h$i" "$(state)/$label.log" unshare --net -- "$@" || die "$label: $NM_ERROR"
  PID[$label]=$NM_PID
  wait_until 5 own_netns "$NM_PID" "$i" || die "$label did not get a network namespace of its own"
}
own_netns() {
  local mine host
  mine=$(stat -L -c %i "/proc/$1/ns/net" 2>/dev/null) && host=$(stat -L -c %i "/run/netns/$prefix-h$2") && [ "$mine" != "$host" ]
}
in_proc() { local p=${PID[$1]}; shift; nsenter -t "$p" -n -- "$@"; }
serve() {  # serve HOST LABEL ANSWER [PORT]: service.py (port 8080) in a container, not yet deployed
  proc_start "$1" "$2" python3 "$system/service.py" serve "${4:-8080}" "$3" "$work"
}
client() { proc_start "$1" "$2" sleep 600; }
deploy() {  # deploy HOST LABEL JOB INSTANCE [PORTMAPPINGS]: the node engine's container deploy
  local out
  out=$(ne "$1" deploy "${PID[$2]}" "$3" "$4" "${5:-}") || die "host $1: deploy of $2 answered '$out'"
}
addr_of() { in_proc "$1" ip -4 -o addr show scope global | awk '{ sub("/.*", "", $4); print $4 }'; }
in_subnet() {  # in_subnet IP BASE: IP is a namespace address of the /26 at BASE (not base, bridge or broadcast)
  /usr/bin/python3 -c 'import ipaddress, sys
ip, net = ipaddress.ip_address(sys.argv[1]), ipaddress.ip_network(sys.argv[2] + "/26")
sys.exit(0 if ip in net and int(ip) - int(net.network_address) not in (0, 1, 63) else 1)' "$1" "$2" 2>/dev/null
}
addr6_of() { in_proc "$1" ip -6 -o addr show scope global | awk '{ sub("/.*", "", $4); print $4 }'; }
in_subnet6() {  # in_subnet6 IP BASE: IP is a namespace address of the /120 at BASE (not base or bridge)
  /usr/bin/python3 -c 'import ipaddress, sys
ip, net = ipaddress.ip_address(sys.argv[1]), ipaddress.ip_network(sys.argv[2] + "/120")
sys.exit(0 if ip in net and int(ip) - int(net.network_address) not in (0, 1) else 1)' "$1" "$2" 2>/dev/null
}
http_id() { in_proc "$1" curl -sS --max-time 5 "http://$2:8080/id" 2>&1; }       # http_id CLIENT IP
udp_echo() { in_proc "$1" nc -u -W 1 -w 3 "$2" 8080 <<<"ping" 2>&1; }            # udp_echo CLIENT IP
rr_spread() {  # rr_spread "A:n B:m " A B: only A and B answered, both did; ours: in turn (equal counts)
  local got=$1 a=$2 b=$3 na nb
  [[ $got =~ ^$a:([0-9]+)\ $b:([0-9]+)\ $ ]] || return 1
  na=${BASH_REMATCH[1]} nb=${BASH_REMATCH[2]}
  [ "$kind" = reference ] || [ "$na" -eq "$nb" ]
}
no_violations() {
  local v
  v=$(oc violations "$log") && return 0
  echo "$v" | sed 's/^/  cluster: /'
  return 1
}
pending_in_answers() {  # how many instances with a null namespace_ip the cluster's answers carried
  /usr/bin/python3 -c 'import json, sys
n = 0
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r["dir"] == "out" and r["topic"].endswith("/tablequery/result"):
        n += sum(1 for i in json.loads(r["payload"])["instance_list"] if i.get("namespace_ip") is None)
print(n)' "$log"
}
common_checks() {  # the cluster's view after a case: shapes it can read, one subnet per registration
  local i
  check "every message the agents published is one the real cluster reads" no_violations
  for i in "$@"; do
    check "host $i asked for exactly one subnet ($(subnet_requests "$i"))" test "$(subnet_requests "$i")" -eq 1
  done
}

nm_hosts_up "$prefix" 2 || exit 1

case $case_name in
  register)
    cluster_start
    agent_start 1
    agent_start 2
    sleep 2
    check "with the shipped files (ClusterUrl 0.0.0.0) no agent registers by itself" test "$(count subnet)" -eq 0
    check "host 1's agent waits for the node engine" agent_alive 1
    check "host 2's agent waits for the node engine" agent_alive 2
    for i in 1 2; do
      out=$(ne "$i" register "${ids[$i]}" "$broker")
      check "host $i: /register answers 200 within the node engine's 10 s ($out)" test "${out%% *}" = 200
    done
    check "host 1's bridge is the first subnet's base+1 (10.18.0.1/26: $(bridge_addr 1))" test "$(bridge_addr 1)" = 10.18.0.1/26
    check "host 2's bridge is the second subnet's base+1 (10.18.0.65/26: $(bridge_addr 2))" test "$(bridge_addr 2)" = 10.18.0.65/26
    for i in 1 2; do
      tun=$(ip -n "$prefix-h$i" -4 -o addr show dev goProxyTun 2>/dev/null | awk '{ sub("/.*", "", $4); print $4 }')
      check "host $i's goProxyTun has the TunnelIP 10.19.1.254 ($tun)" test "$tun" = 10.19.1.254
      for dst in 10.30.0.7 10.18.3.2; do   # a ServiceIP, another node's container
        dev=$(ip -n "$prefix-h$i" -4 route get "$dst" 2>/dev/null | grep -o 'dev [^ ]*')
        check "host $i routes $dst to goProxyTun ($dev)" test "$dev" = "dev goProxyTun"
      done
    done
    out=$(ne 2 register "${ids[2]}" "$broker")
    check "/register again with the same worker id answers 200 ($out)" test "${out%% *}" = 200
    out=$(ne 2 register 6756c1a9e2f0b3d4a5c6e7ff "$broker")
    check "/register with another worker id answers 400 ($out)" test "${out%% *}" = 400
    check "and asks for no subnet" test "$(count 6756c1a9e2f0b3d4a5c6e7ff/net/subnet)" -eq 0
    check "the cluster received its own answers back (it subscribes to nodes/+/net/#)" \
      test "$(count subnetwork/result)" -ge 2
    common_checks 1 2
    ;;

  container)
    cluster_start "$W=2"
    agent_start 1
    agent_start 2
    register 1 >/dev/null
    register 2 >/dev/null
    serve 1 w0 W0 9080
    out=$(ne 1 deploy "${PID[w0]}" "$W" 0 9080)
    check "a container deploy by PID with portMappings \"9080\" answers 200 ($out)" test "${out%% *}" = 200
    addr=$(addr_of w0)
    check "the container got an address of host 1's /26 ($addr)" in_subnet "$addr" 10.18.0.0
    gw=$(in_proc w0 ip -4 route show default | awk '{ print $3 }')
    check "and a default route via the bridge ($gw)" test "$gw" = 10.18.0.1
    addr6=$(addr6_of w0)
    check "the container got an IPv6 address of host 1's /120 ($addr6)" in_subnet6 "$addr6" fc00::
    gw6=$(in_proc w0 ip -6 route show default | awk '{ print $3 }')
    check "and an IPv6 default route via the bridge ($gw6)" test "$gw6" = fc00::1
    wait_until 5 seen service/deployed
    for kv in appname="$W" status=DEPLOYED instance_number=0 nsip="$addr" nsipv6="$addr6" host_ip=10.250.0.1; do
      got=$(fm field "$log" "${ids[1]}/net/service/deployed" "${kv%%=*}")
      check "service/deployed carries ${kv%%=*} ${kv#*=} ($got)" test -n "$got" -a "$got" = "${kv#*=}"
    done
    hp=$(fm field "$log" "${ids[1]}/net/service/deployed" host_port)
    check "and a host_port the cluster's int() reads as the tunnel port ($hp)" \
      /usr/bin/python3 -c "import sys; sys.exit(int(sys.argv[1]) != 50103)" "$hp"
    got=$(nm_in "$prefix-h2" curl -sS --max-time 5 http://10.250.0.1:9080/id 2>&1)
    check "the bare port mapping 9080 serves the container on host 1's port 9080 from host 2 ($got)" test "$got" = W0
    out=$(ne 1 undeploy "$W" 0)
    check "the node engine's undeploy (pid -1, portMappings \"\") answers 200 ($out)" test "${out%% *}" = 200
    check "the container's address is gone ($(addr_of w0))" test -n "$addr" -a -z "$(addr_of w0)"
    check "and so is the port mapping" bash -c "! nsenter --net=/run/netns/$prefix-h2 curl -s --max-time 2 http://10.250.0.1:9080/id"
    out=$(ne 1 undeploy "$W" 1)
    check "undeploy of an instance the agent never had answers 200 as the reference ($out)" test "${out%% *}" = 200
    common_checks 1 2
    ;;

  unikernel)
    cluster_start "$W=1"
    agent_start 1
    register 1 >/dev/null
    out=$(ne 1 unikernel-deploy "$W" 0 "")
    check "a unikernel deploy (pid 0) answers 200 ($out)" test "${out%% *}" = 200
    ns="$W.instance.0"
    uk() { in_agent 1 nsenter --net="/run/netns/$ns" -- "$@"; }
    check "it made the namespace $ns" in_agent 1 test -e "/run/netns/$ns"
    addr=$(uk ip -4 -o addr show scope global | awk '$2 != "virbr0" { sub("/.*", "", $4); print $4 }')
    check "with an address of host 1's /26 on the veth ($addr)" in_subnet "$addr" 10.18.0.0
    gw=$(uk ip -4 route show default | awk '{ print $3 }')
    check "a default route via the bridge ($gw)" test "$gw" = 10.18.0.1
    vb=$(uk ip -4 -o addr show dev virbr0 2>/dev/null | awk '{ print $4 }')
    check "virbr0 with 192.168.1.1/30 ($vb)" test "$vb" = 192.168.1.1/30
    tap=$(uk ip -o link show tap0 2>&1)
    check "and tap0 on virbr0 (${tap:0:120})" grep -q "master virbr0" <<<"$tap"
    wait_until 5 seen service/deployed
    got=$(fm field "$log" "${ids[1]}/net/service/deployed" nsip appname="$W")
    check "service/deployed carries the instance's address ($got)" test -n "$addr" -a "$got" = "$addr"
    out=$(ne 1 unikernel-undeploy "$W" 0)
    check "unikernel undeploy answers 200 ($out)" test "${out%% *}" = 200
    check "and removes the namespace" test -n "$addr" -a "$(in_agent 1 ls /run/netns/ | grep -cxF "$ns")" -eq 0
    out=$(ne 1 unikernel-undeploy "$W" 0)
    check "undeploying it again answers 200 ($out)" test "${out%% *}" = 200
    common_checks 1
    ;;

  service_ips)
    # W: instance 0 on host 1, 1 on host 2, 2 scheduled but never deployed (null in every answer).
    # C (clients): instance 0 on host 2, 1 on host 1. No port mappings: the reference's DNAT for a
    # host port matches any destination, so it would catch ServiceIP flows to that port too.
    cluster_start "$W=3" "$C=2"
    agent_start 1
    agent_start 2
    register 1 >/dev/null
    register 2 >/dev/null
    serve 1 w0 W0
    serve 2 w1 W1
    client 2 c0
    client 1 c1
    deploy 1 w0 "$W" 0
    deploy 2 w1 "$W" 1
    deploy 2 c0 "$C" 0
    deploy 1 c1 "$C" 1
    rr=$(sip "$W" rr) w0ip=$(sip "$W" ip 0) w1ip=$(sip "$W" ip 1) c0ip=$(sip "$C" ip 0)
    echo "W: RR $rr, instance_ip $w0ip (host 1), $w1ip (host 2), $(sip "$W" ip 2) (pending); C: RR $(sip "$C" rr)"
    got=$(for k in 1 2 3; do http_id c0 "$w0ip"; echo; done | sort | uniq -c | tr -s ' \n' ' ')
    check "TCP: host 2's client reaches instance 0 on host 1 through its instance_ip, every time ($got)" test "$got" = " 3 W0 "
    got=$(udp_echo c0 "$w0ip")
    check "UDP: the same through instance_ip, answered from it ($got)" test "$got" = "W0 ping"
    got=$(for k in 1 2 3; do http_id c1 "$w1ip"; echo; done | sort | uniq -c | tr -s ' \n' ' ')
    check "TCP: host 1's client reaches instance 1 on host 2 through its instance_ip ($got)" test "$got" = " 3 W1 "
    got=$(udp_echo c1 "$w1ip")
    check "UDP: the same through instance_ip ($got)" test "$got" = "W1 ping"
    # RR: ours takes the instances in turn (protocol.md); the reference picks one at random, so
    # for it 10 flows must reach both (all on one: 2 in 1024).
    for c in c0 c1; do
      got=$(for k in $(seq 10); do http_id "$c" "$rr"; echo; done | sort | uniq -c | awk '{ printf "%s:%s ", $2, $1 }')
      check "TCP: 10 new flows from $c through the RR ServiceIP $rr are all answered by the running instances ($got)" \
        rr_spread "$got" W0 W1
      got=$(for k in $(seq 10); do udp_echo "$c" "$rr"; done | sort | uniq -c | awk '{ printf "%s:%s ", $2, $1 }')
      check "UDP: the same, answered from the RR ServiceIP ($got)" rr_spread "$got" W0 W1
    done
    # A ServiceIP no job has: the cluster answers an empty list (app_name "", the request's sname),
    # and, as it answers a query without "sname", app_name null: the agent carries on.
    http_id c0 10.30.200.1 >/dev/null
    printf '{"app_name": null, "instance_list": [], "query_key": "10.30.200.2"}' >"$work/null-result"
    nm_in "$prefix-h1" /usr/bin/python3 "$system/fake_manager.py" publish --host "$broker" --port "$NM_OAK_PORT" \
      "nodes/${ids[2]}/net/tablequery/result" "$work/null-result" || die "publish"
    check "the query for a ServiceIP no job has was answered with an empty list and app_name \"\"" \
      test "$(count "${ids[2]}/net/tablequery/result" query_key=10.30.200.1 app_name=)" -ge 1
    got=$(http_id c0 "$w0ip")
    check "after that answer and one with app_name null, host 2 still reaches instance 0 ($got)" test "$got" = W0
    pending=$(pending_in_answers)
    check "the cluster's answers carried the pending instance with null addresses ($pending)" test "$pending" -ge 1
    check "the cluster received its own table query answers back" test "$(count tablequery/result)" -ge 1
    check "host 2's agent is still the one that took these flows (it did not restart)" agent_alive 2
    common_checks 1 2
    ;;

  mixed)
    [ -x "${NM_REFERENCE_BIN:-}" ] || { echo "SKIP: no reference agent (NM_REFERENCE_BIN='${NM_REFERENCE_BIN:-}')"; exit 77; }
    # The reference agent on host 1, ours on host 2. W runs on host 1 (instance 1 is pending), V
    # on host 2; C's instance 0 is a client on host 2, instance 1 one on host 1.
    cluster_start "$W=2" "$V=1" "$C=2"
    agent_start 1 reference
    agent_start 2
    out=$(register 1)
    check "the reference agent registers with the cluster stand-in ($out)" test "${out%% *}" = 200
    register 2 >/dev/null
    check "its bridge is 10.18.0.1/26 ($(bridge_addr 1))" test "$(bridge_addr 1)" = 10.18.0.1/26
    serve 1 w0 W0
    serve 2 v0 V0
    client 2 c0
    client 1 c1
    deploy 1 w0 "$W" 0
    deploy 2 v0 "$V" 0
    deploy 2 c0 "$C" 0
    deploy 1 c1 "$C" 1
    wait_until 5 seen service/deployed 4
    gov6=$(fm field "$log" "${ids[1]}/net/service/deployed" nsipv6 appname="$W")
    ourv6=$(fm field "$log" "${ids[2]}/net/service/deployed" nsipv6 appname="$C")
    check "the reference announces W.0 with an nsipv6 of its /120 ($gov6)" in_subnet6 "$gov6" fc00::
    check "ours announces C.0 with an nsipv6 of its /120 ($ourv6)" in_subnet6 "$ourv6" fc00::100
    wrr=$(sip "$W" rr) w0ip=$(sip "$W" ip 0) c0ip=$(sip "$C" ip 0) vrr=$(sip "$V" rr) v0ip=$(sip "$V" ip 0)
    # Ours -> reference: our translated packets reach the reference's instance, from our client's
    # instance_ip, through RR and instance_ip; the reference keeps our client's entry (it has an
    # nsipv6), so it translates the answers back.
    for target in "$w0ip:instance_ip" "$wrr:RR"; do
      ip=${target%%:*} via=${target#*:}
      before=$(in_proc w0 awk '/^Tcp:/ && ++n == 2 { print $11 }' /proc/net/snmp)
      in_proc c0 curl -s --max-time 3 -o "$work/tcp-$via" "http://$ip:8080/id"
      after=$(in_proc w0 awk '/^Tcp:/ && ++n == 2 { print $11 }' /proc/net/snmp)
      check "TCP ours->reference via $via: our client's SYN reaches the reference's instance (TCP segments in: $before -> $after)" \
        test "$after" -gt "$before"
      nsenter -t "${PID[w0]}" -n python3 "$system/service.py" udp-listen 8081 3 >"$work/udp-$via" &
      listener=$!
      # On a loaded machine python takes a while to bind: send once it listens.
      wait_until 10 bash -c "nsenter -t ${PID[w0]} -n ss -Hlun 'sport = :8081' | grep -q ."
      for k in 1 2; do in_proc c0 nc -u -w 1 "$ip" 8081 <<<"ping-$via" >/dev/null 2>&1; done
      wait "$listener"
      from=$(awk '{ split($1, a, ":"); print a[1]; exit }' "$work/udp-$via")
      check "UDP ours->reference via $via: the datagram reaches the reference's instance from our client's instance_ip ($from, want $c0ip)" \
        test "$from" = "$c0ip"
      got_tcp=$(cat "$work/tcp-$via" 2>/dev/null) got_udp=$(udp_echo c0 "$ip")
      check "TCP ours->reference via $via: the answer comes back ($got_tcp)" test "$got_tcp" = W0
      check "UDP ours->reference via $via: the echo comes back ($got_udp)" test "$got_udp" = "W0 ping"
    done
    # Reference -> ours: the reference accepts our instances' table entries (they have nsipv6).
    for target in "$v0ip:instance_ip" "$vrr:RR"; do
      ip=${target%%:*} via=${target#*:}
      got_tcp=$(http_id c1 "$ip") got_udp=$(udp_echo c1 "$ip")
      check "TCP reference->ours via $via ($got_tcp)" test "$got_tcp" = V0
      check "UDP reference->ours via $via ($got_udp)" test "$got_udp" = "V0 ping"
    done
    dropped=$(grep -c 'Invalid Entry, wrong nsipv6' "$(state)/agent1.log")
    check "the reference dropped no table entry for want of nsipv6 ($dropped)" test "$dropped" = 0
    common_checks 1 2
    ;;

  *) echo "unknown case $case_name" >&2; exit 2 ;;
esac

if [ "$failures" -gt 0 ]; then
  dump_logs
  exit 1
fi
