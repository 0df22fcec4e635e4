#!/usr/bin/env bash
# Two simulated hosts, a netmanager on each, the seed's app namespaces (testenv/lib.sh), and one
# behaviour of the data path checked with real clients:  system.sh CASE
# Host 1 and host 2 each run the "web" service (myapp1, HTTP + UDP echo on 8080, answering its
# name) and a "client" namespace (myapp2). ServiceIPs of web: RR 10.30.0.1, Closest 10.30.0.2,
# InstanceNumber 10.30.1.<host>.
prefix="s$(($$ % 100000))"
source "$(dirname "$0")/common.sh"

fetch() { in_client "$1" curl -sS --max-time 5 "http://$2:8080${3:-/id}"; }
sha_of() { sha256sum | cut -d' ' -f1; }
# byte_exact MB: MB of random bytes over TCP from host 1's web to host 2's client and back
# (InstanceNumber), and through the RR ServiceIP from each instance, arrive byte-exact.
byte_exact() {
  local want got
  head -c "${1}000000" /dev/urandom >"$work/big"
  want=$(sha_of <"$work/big")
  got=$(in_client 2 curl -sS --max-time 60 http://10.30.1.1:8080/big | sha_of)
  check "$1 MB over TCP from host 1 to host 2 (InstanceNumber) arrive byte-exact" test "$got" = "$want"
  got=$(in_client 1 curl -sS --max-time 60 http://10.30.1.2:8080/big | sha_of)
  check "$1 MB over TCP from host 2 to host 1 arrive byte-exact" test "$got" = "$want"
  got=$(for k in 1 2; do in_client 1 curl -sS --max-time 60 http://10.30.0.1:8080/big | sha_of; done | sort -u)
  check "$1 MB through the RR ServiceIP, to each instance, arrive byte-exact" test "$got" = "$want"
}
# UDP to each host's InstanceNumber ServiceIP from the other is answered from that ServiceIP.
udp_both_ways() {
  local out
  out=$(in_client 2 python3 "$here/service.py" udp-ask 10.30.1.1 8080)
  check "UDP from host 2 to host 1 is answered from the ServiceIP ($out)" test "$out" = "web-h1 ping"
  out=$(in_client 1 python3 "$here/service.py" udp-ask 10.30.1.2 8080)
  check "UDP from host 1 to host 2 is answered from the ServiceIP ($out)" test "$out" = "web-h2 ping"
}

nm_hosts_up "$prefix" 2 || exit 1
if [ "$case_name" = offload_interop ]; then
  # Host 1's agent with TUN/UDP offloads, host 2's without: they must understand each other.
  table="$(nm_state "$prefix")/table.json"
  nm_seed_table 2 "$table" || exit 1
  nm_agent_start "$prefix" 1 "$table" || { dump_logs; exit 1; }
  nm_agent_start "$prefix" 2 "$table" --no-offload || { dump_logs; exit 1; }
  for h in 1 2; do
    nm_app_deploy "$prefix" "$h" myapp1 "$NM_SEED_WEB" $((h - 1)) "$(nm_seed_nsip "$h" myapp1)" || exit 1
    nm_app_deploy "$prefix" "$h" myapp2 "$NM_SEED_CLIENT" $((h - 1)) "$(nm_seed_nsip "$h" myapp2)" || exit 1
  done
elif [ "$case_name" = uring_io ]; then
  # Both agents move tunnel packets through their shards' own io_uring.
  nm_seed_up "$prefix" 2 --io uring || { dump_logs; exit 1; }
elif [ "$case_name" = idle_api ]; then
  # Idle API connections time out after 300 ms; the cap is above the 1000 a round opens.
  nm_seed_up "$prefix" 2 --api-idle-timeout 300 --api-max-connections 2000 || { dump_logs; exit 1; }
else
  nm_seed_up "$prefix" 2 || { dump_logs; exit 1; }
fi
head -c 1048576 /dev/urandom >"$work/blob"
for h in 1 2; do
  serve_web "$h" || exit 1
done
if [ "${NM_DATAPATH:-}" = auto ]; then
  # Run with every agent on --datapath auto (ctest's "(datapath auto)" cases): the kernel must
  # have taken the programs, or these cases would test the userspace path twice.
  for h in 1 2; do
    dp=$(nm_api "$prefix" $h GET /status | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin).get("datapath"))')
    check "host $h runs the eBPF fast path ($dp)" test "$dp" = ebpf
  done
fi

case $case_name in
  tcp_rr)
    out=$(fetch 2 10.30.0.1)
    check "TCP through the RR ServiceIP from host 2 reaches a web instance ($out)" \
      test "$out" = web-h1 -o "$out" = web-h2
    seen=$(for k in 1 2 3 4; do fetch 2 10.30.0.1; echo; done | tr '\n' ' ')
    check "new flows through RR take the instances in turn ($seen)" \
      test "$seen" = "web-h1 web-h2 web-h1 web-h2 " -o "$seen" = "web-h2 web-h1 web-h2 web-h1 "
    ;;
  udp_rr)
    # A connected UDP socket accepts only datagrams from the address it sent to: an answer at
    # all means the reply came back from the ServiceIP the client used.
    out=$(in_client 2 python3 "$here/service.py" udp-ask 10.30.0.1 8080)
    check "UDP through the RR ServiceIP is answered from that ServiceIP ($out)" \
      test "${out%% *}" = web-h1 -o "${out%% *}" = web-h2
    ;;
  reply_source)
    out=$(in_client 2 python3 "$here/service.py" udp-ask 10.30.1.1 8080)
    check "the reply to an InstanceNumber ServiceIP comes from that ServiceIP ($out)" test "$out" = "web-h1 ping"
    ;;
  instance_number)
    seen=$(for k in 1 2 3 4 5; do fetch 2 10.30.1.1; echo; done | sort -u | tr '\n' ' ')
    check "InstanceNumber 10.30.1.1 always reaches host 1's instance ($seen)" test "$seen" = "web-h1 "
    seen=$(for k in 1 2 3 4 5; do fetch 1 10.30.1.2; echo; done | sort -u | tr '\n' ' ')
    check "InstanceNumber 10.30.1.2 always reaches host 2's instance ($seen)" test "$seen" = "web-h2 "
    ;;
  closest)
    seen=$(for k in 1 2 3 4 5 6; do fetch 2 10.30.0.2; echo; done | sort -u | tr '\n' ' ')
    check "Closest from host 2 always picks host 2's local instance ($seen)" test "$seen" = "web-h2 "
    seen=$(for k in 1 2 3 4 5 6; do fetch 1 10.30.0.2; echo; done | sort -u | tr '\n' ' ')
    check "Closest from host 1 always picks host 1's local instance ($seen)" test "$seen" = "web-h1 "
    ;;
  local_delivery)
    before=$(metric 1 'netmanager_packets_total{direction="wire_out"}')
    out=$(fetch 1 10.30.1.1)
    check "a ServiceIP whose instance is on the same host answers ($out)" test "$out" = web-h1
    local_n=$(metric 1 'netmanager_packets_total{direction="local"}')
    after=$(metric 1 'netmanager_packets_total{direction="wire_out"}')
    check "it was delivered locally ($local_n packets), not through the socket ($before -> $after)" \
      test "$local_n" -gt 0 -a "$before" = "$after"
    ;;
  direct_nsip)
    out=$(fetch 2 10.18.1.12)
    check "host 2's namespace reaches host 1's namespace by its nsip ($out)" test "$out" = web-h1
    ;;
  rr_spread)
    for k in $(seq 200); do fetch 2 10.30.0.1; echo; done >"$work/spread"
    n1=$(grep -c '^web-h1$' "$work/spread"); n2=$(grep -c '^web-h2$' "$work/spread")
    check "200 connections through RR split evenly (h1 $n1, h2 $n2; each within 90..110)" \
      test "$n1" -ge 90 -a "$n1" -le 110 -a "$n2" -ge 90 -a "$n2" -le 110
    ;;
  unknown_service)
    before=$(metric 2 'netmanager_drops_total{reason="unknown_service"}')
    check "a connection to an unknown ServiceIP fails" \
      bash -c "! nsenter --net=/run/netns/$(app 2 myapp2) curl -sS --max-time 2 http://10.30.9.9:8080/id 2>/dev/null"
    after=$(metric 2 'netmanager_drops_total{reason="unknown_service"}')
    check "and is counted as unknown_service ($before -> $after)" test "$after" -gt "$before"
    ;;
  spoofed_source)
    listen_log="$work/listen"
    nm_spawn "$prefix" listen "$(app 1 myapp1)" "$listen_log" python3 "$here/service.py" udp-listen 9999 30
    sleep 0.5
    # The same inner packet from an address no table entry names, then from host 2's own
    # address (from an ephemeral port, as a Go agent sends).
    nm_in "$prefix-h2" /usr/bin/python3 - "$(nm_seed_nsip 2 myapp2)" "$(nm_seed_nsip 1 myapp1)" \
      "$(nm_underlay_ip 2)" "$(nm_underlay_ip 1)" "$NM_TUNNEL_PORT" <<'PY'
import socket, sys
from scapy.all import IP, UDP, Raw, send
src, dst, me, peer, port = sys.argv[1:]
inner = lambda text: bytes(IP(src=src, dst=dst) / UDP(sport=4444, dport=9999) / Raw(text))
send(IP(src="10.250.0.77", dst=peer) / UDP(sport=40000, dport=int(port)) / Raw(inner(b"spoofed")), verbose=False)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((me, 0))
s.sendto(inner(b"genuine"), (peer, int(port)))
PY
    check "a datagram from host 2's address is delivered" wait_until 5 grep -q genuine "$listen_log"
    sleep 0.5
    check "a datagram from an address of no node is not" bash -c "! grep -q spoofed '$listen_log'"
    n=$(metric 1 'netmanager_drops_total{reason="unknown_node"}')
    check "and is counted as unknown_node ($n)" test "$n" -ge 1
    ;;
  ephemeral_peer)
    # A Go agent sends every datagram from an ephemeral port of a connected socket: a datagram
    # from host 1's address but not its tunnel port is host 1's, and a reply gets translated.
    hold="$work/hold"
    nm_spawn "$prefix" hold "$(app 2 myapp2)" "$hold" python3 "$here/service.py" udp-hold "$NM_SEED_WEB_RR" 8080 20
    wait_until 5 test -s "$hold"
    read -r port who _ <"$hold"
    check "host 2's client asked the RR ServiceIP and $who answered from port 8080" test -n "$who"
    # Another reply of that flow, as the chosen instance's agent would send it, but from an
    # ephemeral port of that host's address (the instance's ServiceIP is only that host's to send
    # from): host 2 must give it the RR ServiceIP as its source, or the client's connected socket
    # would not take it.
    from=${who#web-h}
    nm_in "$prefix-h$from" /usr/bin/python3 - "$(nm_seed_web_ip "$from")" "$(nm_seed_nsip 2 myapp2)" \
      "$port" "$(nm_underlay_ip "$from")" "$(nm_underlay_ip 2)" "$NM_TUNNEL_PORT" <<'PY'
import socket, sys
from scapy.all import IP, UDP, Raw
src, dst, dport, me, peer, port = sys.argv[1:]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((me, 0))
s.sendto(bytes(IP(src=src, dst=dst) / UDP(sport=8080, dport=int(dport)) / Raw(b"from-ephemeral-port")), (peer, int(port)))
PY
    check "the datagram from host $from's ephemeral port reached the client through the RR ServiceIP" \
      wait_until 5 grep -q from-ephemeral-port "$hold"
    n=$(metric 2 'netmanager_drops_total{reason="unknown_node"}')
    check "and nothing was dropped as unknown_node ($n)" test "$n" -eq 0
    ;;
  transfer_1mb)
    want=$(sha_of <"$work/blob")
    got=$(in_client 2 curl -sS --max-time 20 http://10.30.0.1:8080/blob | sha_of)
    check "1 MiB through the RR ServiceIP arrives byte-exact" test "$got" = "$want"
    got=$(in_client 1 curl -sS --max-time 20 http://10.30.1.2:8080/blob | sha_of)
    check "1 MiB from host 2 to host 1 arrives byte-exact" test "$got" = "$want"
    ;;
  steering)
    # 16 TCP flows from one peer node: the kernel's own choice would give every datagram of that
    # peer to one socket; steered by inner flow, each reaches its owner shard's socket directly,
    # and each packet read from the TUN its owner shard's queue, the first ones included.
    # Packets in: through the socket, or (datapath auto) taken by the kernel's fast path.
    packets_in() { echo $(($(metric 1 'netmanager_packets_total{direction="wire_in"}') + $(metric 1 'netmanager_fastpath_packets_total{direction="ingress",outcome="fast"}'))); }
    before=$(packets_in)
    for k in $(seq 16); do fetch 2 10.30.1.1 >/dev/null; done
    after=$(packets_in)
    check "16 connections crossed the tunnel ($((after - before)) packets in)" test $((after - before)) -ge 64
    n=$(metric 1 'netmanager_handoffs_total{from="wire"}')
    check "no datagram was handed between host 1's shards ($n)" test "$n" -eq 0
    n=$(metric 2 'netmanager_handoffs_total{from="wire"}')
    check "no datagram was handed between host 2's shards ($n)" test "$n" -eq 0
    for h in 1 2; do
      n=$(metric $h 'netmanager_handoffs_total{from="tun"}')
      check "no packet read from host $h's TUN was handed between its shards ($n)" test "$n" -eq 0
    done
    ;;
  offload_interop)
    off=$(nm_api "$prefix" 1 GET /status | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["offloads"])')
    check "host 1 runs with offloads ($off)" bash -c "[[ '$off' == *tso4* ]]"
    off=$(nm_api "$prefix" 2 GET /status | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["offloads"])')
    check "host 2 runs without ($off)" test "$off" = off
    byte_exact 100
    for h in 1 2; do
      errors=$(nm_in "$(app "$h" myapp2)" nstat -az TcpInCsumErrors | awk '/TcpInCsumErrors/ { print $2 }')
      check "no TCP checksum errors in host $h's client namespace (${errors:-none})" test "${errors:-0}" -eq 0
      errors=$(nm_in "$(app "$h" myapp1)" nstat -az TcpInCsumErrors | awk '/TcpInCsumErrors/ { print $2 }')
      check "no TCP checksum errors in host $h's server namespace (${errors:-none})" test "${errors:-0}" -eq 0
    done
    udp_both_ways
    ;;
  uring_io)
    for h in 1 2; do
      io=$(nm_api "$prefix" $h GET /status | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["io"])')
      check "host $h's agent runs with uring I/O ($io)" test "$io" = uring
    done
    byte_exact 50
    udp_both_ways
    # With the kernel fast path (datapath auto) the rings carry each flow's first and control
    # packets only; the bulk never reaches them.
    least=1000
    [ "${NM_DATAPATH:-}" = auto ] && least=20
    for h in 1 2; do
      n=$(metric $h 'netmanager_uring_stray_completions_total')
      check "host $h's rings delivered no completion without its operation ($n)" test "$n" -eq 0
      n=$(metric $h 'netmanager_uring_completions_total')
      check "host $h's rings completed the tunnel I/O ($n completions)" test "$n" -gt "$least"
      errors=$(nm_in "$(app "$h" myapp2)" nstat -az TcpInCsumErrors | awk '/TcpInCsumErrors/ { print $2 }')
      check "no TCP checksum errors in host $h's client namespace (${errors:-none})" test "${errors:-0}" -eq 0
    done
    # Stopping cancels and drains every ring operation in flight: the shards run dry at once.
    log="$(nm_state "$prefix")/agent1.log"
    t0=$(date +%s%N)
    nm_agent_stop "$prefix" 1
    took=$((($(date +%s%N) - t0) / 1000000))
    check "SIGTERM stops host 1's agent in $took ms without a hard stop" test "$took" -lt 4000
    check "and its log shows no ring operation left behind" \
      bash -c "! grep -E 'stopping it hard|still in flight|did not finish after cancel' '$log'"
    ;;
  idle_api)
    # Issue 16: rounds of 1000 idle API connections that time out once wedged an agent on Asio's
    # io_uring backend (its cancels completed unrelated waits: accept, TUN and UDP loops ended).
    sock=$(nm_agent_socket "$prefix" 1)
    read -r pid _ <"$(nm_state "$prefix")/pids/agent1"
    fds_before=$(ls /proc/"$pid"/fd | wc -l)
    for round in $(seq 10); do
      out=$(/usr/bin/python3 - "$sock" <<'PY'
import socket, sys, time
conns = []
for _ in range(1000):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sys.argv[1])
    s.settimeout(10)
    conns.append(s)
start = time.monotonic()
closed = sum(1 for s in conns if s.recv(1) == b"")  # the server closes each idle one
print(closed, round(time.monotonic() - start, 1))
PY
)
      check "round $round: the agent closed all 1000 idle API connections ($out: closed, seconds)" \
        test "${out%% *}" = 1000
    done
    check "GET /status still answers after 10 rounds" test -n "$(nm_api "$prefix" 1 GET /status)"
    st=$(nm_api "$prefix" 1 GET /status | /usr/bin/python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["state"], *[v for l in s["shard_loops"] for v in l.values()])')
    check "the agent and every shard's loops still run ($st)" bash -c "[[ '$st' =~ ^running( running)+\$ ]]"
    up=$(metric 1 netmanager_up)
    check "netmanager_up is 1 ($up)" test "$up" = 1
    seen=$(for k in 1 2 3 4; do fetch 2 10.30.0.1; echo; done | sort -u | tr '\n' ' ')
    check "TCP flows through the RR ServiceIP reach both instances ($seen)" test "$seen" = "web-h1 web-h2 "
    seen=$(for k in 1 2 3 4; do fetch 1 10.30.0.1; echo; done | sort -u | tr '\n' ' ')
    check "and from host 1 too ($seen)" test "$seen" = "web-h1 web-h2 "
    fds_after=$(ls /proc/"$pid"/fd | wc -l)
    check "the agent's descriptors did not grow ($fds_before -> $fds_after)" test "$fds_after" -le $((fds_before + 5))
    ;;
  tun_gone)
    # A loop that ends never ends silently: with its TUN device gone, host 1's agent says which
    # loop stopped and why, and exits with an error instead of forwarding on half its shards.
    log="$(nm_state "$prefix")/agent1.log"
    read -r pid _ <"$(nm_state "$prefix")/pids/agent1"
    nm_in "$prefix-h1" ip link del "$(nm_agent_prefix "$prefix" 1)tun"
    for t in $(seq 50); do nm_running "$prefix" agent1 || break; sleep 0.1; done
    check "host 1's agent exited once its TUN was deleted" bash -c "! kill -0 $pid 2>/dev/null"
    wait "$pid" 2>/dev/null
    status=$?
    check "with status 1 ($status)" test "$status" = 1
    check "its log names the loop that stopped and the kernel's reason" \
      grep -qE "shard [0-9]+: the tun loop stopped on a permanent failure: read from TUN: File descriptor in bad state" "$log"
    check "and says the agent stops" grep -q "the agent stops" "$log"
    ;;
  *) echo "unknown case $case_name" >&2; exit 2 ;;
esac

if [ "$failures" -gt 0 ]; then
  dump_logs
  exit 1
fi
