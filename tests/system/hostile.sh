#!/usr/bin/env bash
# A hostile underlay (issue 19): three simulated hosts on a bridged underlay, agents on hosts 1
# and 2 (the seed's app namespaces, testenv/lib.sh), host 3 an attacker that forges datagrams
# with scapy.  hostile.sh CASE
prefix="x$(($$ % 100000))"
source "$(dirname "$0")/common.sh"

drops() { metric "$1" "netmanager_drops_total{reason=\"$2\"}"; }

# Listeners that must hear only the genuine datagram: in host 1's web namespace, and in host 1
# itself (any address: its underlay address, the bridge, the TUN; IPv4 and IPv6).
listen() {
  nm_spawn "$prefix" listen_app "$(app 1 myapp1)" "$work/app" python3 "$here/service.py" udp-listen 9999 30 || return 1
  nm_spawn "$prefix" listen_host "$prefix-h1" "$work/host" python3 "$here/service.py" udp-listen 9999 30 || return 1
  sleep 0.5
}
# forge 'SOURCE DESTINATION TEXT'...: host 3 sends 20 datagrams of each from host 2's underlay
# address (a node of host 1's table) to host 1's tunnel port, the inner packet UDP to port 9999
# (IPv6 when the destination is).
forge() {
  nm_in "$prefix-h3" /usr/bin/python3 - "$(nm_underlay_ip 2)" "$(nm_underlay_ip 1)" "$NM_TUNNEL_PORT" "$@" <<'PY'
import sys
from scapy.all import IP, IPv6, UDP, Raw, send
forged, victim, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
packets = []
for case in sys.argv[4:]:
    src, dst, text = case.split()
    family = IPv6 if ":" in dst else IP
    inner = bytes(family(src=src, dst=dst) / UDP(sport=4444, dport=9999) / Raw(text.encode()))
    packets += [IP(src=forged, dst=victim) / UDP(sport=40000, dport=port) / Raw(inner)] * 20
send(packets, verbose=False)
PY
}
# Genuine traffic: host 2's client sends "genuine" to ADDRESS:9999.
genuine() {
  nm_in "$(app 2 myapp2)" /usr/bin/python3 -c '
import socket, sys
to = sys.argv[1]
s = socket.socket(socket.AF_INET6 if ":" in to else socket.AF_INET, socket.SOCK_DGRAM)
s.sendto(b"genuine", (to, 9999))' "$1"
}

# none_through TEXT PATTERN [REASON COUNT WHAT]...: a second on, no forged datagram (its text
# matching PATTERN) reached host 1's web namespace (checked as TEXT) nor a socket of host 1, and
# host 1 counted COUNT drops for each REASON (checked as WHAT with the count seen).
none_through() {
  local n
  sleep 1
  check "$1" bash -c "! grep -qE '$2' '$work/app'"
  check "none reached a socket of host 1 itself" test ! -s "$work/host"
  shift 2
  while (($# >= 3)); do
    n=$(drops 1 "$1")
    check "$3 ($n)" test "$n" -eq "$2"
    shift 3
  done
}

NM_UNDERLAY=bridge nm_hosts_up "$prefix" 3 || exit 1

case $case_name in
  ingress)
    nm_seed_up "$prefix" 2 || { dump_logs; exit 1; }
    listen || exit 1
    # Inner sources that are not host 2's, and inner destinations that are no namespace.
    forge "1.2.3.4 10.18.1.12 foreign" \
      "10.18.1.15 10.18.1.12 neighbour" \
      "10.30.2.1 10.18.1.12 neighbour-sip" \
      "10.30.2.2 10.18.1.1 bridge" \
      "10.30.2.2 10.19.1.254 tun" \
      "10.30.2.2 $(nm_underlay_ip 1) host"
    # (no container or service address; host 1's own client namespace; that namespace's
    # InstanceNumber ServiceIP; host 2's client to host 1's bridge, the TUN, host 1's address)
    # Genuine traffic still crosses: host 2's client to web's InstanceNumber ServiceIP on host 1.
    genuine 10.30.1.1
    check "host 2's client reaches host 1's web namespace through its ServiceIP" wait_until 5 grep -q genuine "$work/app"
    none_through "no forged datagram reached host 1's web namespace" 'foreign|neighbour|bridge|tun|host' \
      foreign_source 20 "a foreign inner source is counted as foreign_source" \
      spoofed_source 40 "host 1's own addresses as inner source are counted as spoofed_source" \
      not_namespace 20 "the bridge as inner destination is counted as not_namespace" \
      misdelivered 40 "the TUN and the host as inner destination are counted as misdelivered"
    ;;
  ingress6)
    # The same rules for IPv6 inner packets, on dual-stack agents (testenv/lib.sh NM_SEED_V6).
    export NM_SEED_V6=1
    nm_seed_up "$prefix" 2 || { dump_logs; exit 1; }
    listen || exit 1
    forge "2001:db8::1 fc00::102 foreign" \
      "fe80::1 fc00::102 linklocal" \
      "fc00::103 fc00::102 neighbour" \
      "fdff::2:1 fc00::102 neighbour-sip" \
      "fdff:2000::3 fc00::102 shared-sip" \
      "fdff::2:2 fc00::101 bridge" \
      "fdff::2:2 fc00::100 base" \
      "fdff::2:2 fcef::dead:beef tun" \
      "fdff::2:2 ff02::1 allnodes"
    # (outside fc00::/7; link-local; host 1's web is fc00::102, its own client namespace
    # fc00::103 and that one's InstanceNumber ServiceIP fdff::2:1; the client's RR ServiceIP,
    # shared by all instances; host 2's client to host 1's bridge, the /120's base, the TUN and
    # all nodes)
    genuine fdff::1:1
    check "host 2's client reaches host 1's web namespace through its IPv6 ServiceIP" wait_until 5 grep -q genuine "$work/app"
    check "it arrives from host 2's client's IPv6 InstanceNumber ServiceIP" grep -q '^fdff::2:2:' "$work/app"
    none_through "no forged IPv6 datagram reached host 1's web namespace" \
      'foreign|linklocal|neighbour|shared|bridge|base|tun|allnodes' \
      foreign_source 40 "global and link-local inner sources are counted as foreign_source" \
      spoofed_source 60 "host 1's own addresses and a shared ServiceIP are counted as spoofed_source" \
      not_namespace 40 "the bridge and the /120's base are counted as not_namespace" \
      misdelivered 40 "the TUN and all-nodes multicast are counted as misdelivered"
    ;;
  idle_flows)
    # Flows expire on each shard's own timer: 2 s idle, and no packet after the last one.
    nm_seed_up "$prefix" 2 --flow-idle 2000 || { dump_logs; exit 1; }
    nm_spawn "$prefix" web1 "$(app 1 myapp1)" "$work/web1.log" python3 "$here/service.py" serve 8080 web-h1 "$work" || exit 1
    nm_wait_listen "$(app 1 myapp1)" 8080 || exit 1
    nm_in "$(app 2 myapp2)" /usr/bin/python3 -c '
import socket
kept = []  # open until all are sent: a closed socket frees its port for the next (one flow of two)
for k in range(200):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.sendto(b"x", ("10.30.1.1", 8080))
    kept.append(s)'
    flows_are() { test "$(metric "$1" netmanager_flows)" "$2" "$3"; }  # flows_are HOST OP N
    created() { test "$(metric "$1" netmanager_new_flows_total)" -ge "$2"; }
    # Counted by the monotonic counter: the gauge may already be falling when a loaded machine
    # polls late, 2 s after the last datagram.
    check "200 UDP flows from host 2's client are converted" wait_until 3 created 2 200
    start=$(date +%s%N)
    check "with no traffic at all they are gone after the 2 s idle timeout" wait_until 8 flows_are 2 -eq 0
    echo "flows gone after $((($(date +%s%N) - start) / 1000000)) ms"
    check "the agent on host 1 expired the replies' flows too" wait_until 3 flows_are 1 -eq 0
    ;;
  *)
    echo "unknown case $case_name"
    exit 2
    ;;
esac
[ "$failures" -eq 0 ] || { dump_logs; exit 1; }
