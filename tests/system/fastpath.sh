#!/usr/bin/env bash
# The kernel fast path (--datapath auto, issue 23) across two simulated hosts, checked with real
# clients and the programs' own counters:  fastpath.sh CASE
# Seed layout as system.sh: web (myapp1, HTTP + UDP echo on 8080) and client (myapp2) on both
# hosts; web's ServiceIPs RR 10.30.0.1, InstanceNumber 10.30.1.<host>.
prefix="f$(($$ % 100000))"
source "$(dirname "$0")/common.sh"

fetch() { in_client "$1" curl -sS --max-time 5 "http://$2:8080${3:-/id}"; }
fp_bytes() { nm_api "$prefix" "$1" GET /metrics | awk -v m="netmanager_fastpath_bytes_total{direction=\"$2\"}" '$1 == m { v = $2 } END { printf "%.0f\n", v }'; }
ingress_bytes() { fp_bytes "$1" ingress; }
fast() { metric "$1" "netmanager_fastpath_packets_total{direction=\"$2\",outcome=\"${3:-fast}\"}"; }
status_field() { nm_api "$prefix" "$1" GET /status | /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin).get('$2', ''))"; }
# The host ends of a host's app veths (<agent prefix>v<n>).
veths() {
  nm_in "$(nm_host "$prefix" "$1")" ip -o link show |
    awk -F': ' -v p="$(nm_agent_prefix "$prefix" "$1")v" 'index($2, p) == 1 { split($2, a, "@"); print a[1] }'
}
# The tc filters on a host's underlay device, its agent's bridge and its app veths.
filters() {
  local h=$1 dev
  nm_in "$(nm_host "$prefix" "$h")" tc filter show dev ul0 ingress 2>/dev/null
  nm_in "$(nm_host "$prefix" "$h")" tc filter show dev "$(nm_agent_prefix "$prefix" "$h")br" ingress 2>/dev/null
  for dev in $(veths "$h"); do
    nm_in "$(nm_host "$prefix" "$h")" tc filter show dev "$dev" ingress 2>/dev/null
  done
}
# The id of host H's kernel map NAME (its first 15 characters, as the kernel keeps it), found
# through the programs on its underlay and its bridge.
map_id() {
  local id m
  for id in $(filters "$1" | grep -o ' id [0-9]*' | cut -d' ' -f3); do
    for m in $(bpftool prog show id "$id" | grep -o 'map_ids [0-9,]*' | cut -d' ' -f2 | tr ',' ' '); do
      bpftool -j map show id "$m" | jq -e --arg n "${2:0:15}" '.name == $n' >/dev/null && { echo "$m"; return; }
    done
  done
}
# Deletes every entry of host H's kernel map NAME (as an LRU eviction would); prints how many.
clear_map() {
  local id n=0 key
  id=$(map_id "$1" "$2")
  [ -n "$id" ] || return 1
  while read -r key; do
    [ -n "$key" ] || continue
    # shellcheck disable=SC2086 # one argument per key byte
    bpftool map delete id "$id" key $key && n=$((n + 1))
  done < <(bpftool -j map dump id "$id" | jq -r '.[] | .key | join(" ")')
  echo "$n"
}
# How many entries of host H's egress map are flows to port PORT.
flows_to() {
  local id
  id=$(map_id "$1" nm_egress_flows)
  bpftool -j map dump id "$id" | jq --arg p "$(printf '0x%02x 0x%02x' $(($2 >> 8)) $(($2 & 255)))" '[.[] | select((.key[10:12] | join(" ")) == $p)] | length'
}
# How many entries of host H's egress map are flows from or to port PORT.
flows_with() {
  local id
  id=$(map_id "$1" nm_egress_flows)
  bpftool -j map dump id "$id" | jq --arg p "$(printf '0x%02x 0x%02x' $(($2 >> 8)) $(($2 & 255)))" '[.[] | select((.key[8:10] | join(" ")) == $p or (.key[10:12] | join(" ")) == $p)] | length'
}
# What a running fast-path agent attaches on host H: nm_ingress on the underlay,
# nm_egress_br on the bridge, nm_egress on each app veth (with N: on N of them).
attached_ok() {
  local f
  f=$(filters "$1")
  test "$(grep -c 'nm_ingress' <<<"$f")" -eq 1 && test "$(grep -c 'nm_egress_br' <<<"$f")" -eq 1 &&
    test "$(grep -c 'nm_egress[^_]' <<<"$f")" -eq "${2:-$(veths "$1" | wc -l)}" &&
    test "$(veths "$1" | wc -l)" -ge "${2:-2}"
}

nm_hosts_up "$prefix" 2 || exit 1
# A veth "wire" passes packets on whole, super-segments and partial checksums included, which
# no real wire does: a NIC segments them and finishes the checksums. Between two fast paths that
# is what a kernel tunnel sees too (the receiving program hands the super-segment on whole); a
# userspace agent, though, would read one huge datagram with an unfinished inner checksum. Where
# one host runs userspace only (interop, kill9, fallback) the underlay segments and finishes
# checksums as a NIC would.
if [[ $case_name =~ ^(interop|kill9|fallback)$ ]]; then
  for h in 1 2; do
    nm_in "$(nm_host "$prefix" "$h")" ethtool -K ul0 tx off >/dev/null || exit 1
  done
fi
table="$(nm_state "$prefix")/table.json"
nm_seed_table 2 "$table" || exit 1
# interop: host 1 on the fast path, host 2 userspace only; otherwise both on the fast path.
# fallback: host 1 names a node address no interface holds, so the programs have no underlay.
# idle, local_idle: both agents expire connectionless flows idle for 2 s (--flow-idle), in the
# kernel too.
extra=() both=()
[ "$case_name" = fallback ] && extra=(--node-ip 10.250.0.99)
[[ $case_name =~ ^(idle|local_idle)$ ]] && both=(--flow-idle 2000)
nm_agent_start "$prefix" 1 "$table" --datapath auto "${extra[@]}" "${both[@]}" || { dump_logs; exit 1; }
if [ "$case_name" = interop ]; then
  nm_agent_start "$prefix" 2 "$table" --datapath userspace || { dump_logs; exit 1; }
else
  nm_agent_start "$prefix" 2 "$table" --datapath auto "${both[@]}" || { dump_logs; exit 1; }
fi
for h in 1 2; do
  nm_app_deploy "$prefix" "$h" myapp1 "$NM_SEED_WEB" $((h - 1)) "$(nm_seed_nsip "$h" myapp1)" || exit 1
  nm_app_deploy "$prefix" "$h" myapp2 "$NM_SEED_CLIENT" $((h - 1)) "$(nm_seed_nsip "$h" myapp2)" || exit 1
done
head -c 1048576 /dev/urandom >"$work/blob"
for h in 1 2; do
  serve_web "$h" || exit 1
done
datapath=$(status_field 1 datapath)
if [ "$case_name" = fallback ]; then
  refused=$(status_field 1 fast_path_refused)
  check "host 1 runs userspace only and /status says why ($datapath: $refused)" \
    test "$datapath" = userspace -a -n "$refused"
  check "its log says so" grep -q "datapath auto: no kernel fast path (.*10.250.0.99.*); the userspace data path carries every packet" "$(nm_state "$prefix")/agent1.log"
  out=$(fetch 1 10.30.1.2)
  check "and it carries traffic to the other host on the userspace path ($out)" test "$out" = web-h2
  [ "$failures" -eq 0 ] || dump_logs
  exit $((failures > 0))
fi
check "host 1 says in /status that the eBPF fast path runs ($datapath $(status_field 1 fast_path_refused))" test "$datapath" = ebpf
check "host 1's log says so" grep -q "the kernel fast path runs" "$(nm_state "$prefix")/agent1.log"
if [ "$datapath" != ebpf ]; then dump_logs; exit 1; fi

case $case_name in
  tcp_udp)
    seen=$(for k in 1 2 3 4; do fetch 2 10.30.0.1; echo; done | tr '\n' ' ')
    check "new TCP flows through RR take the instances in turn ($seen)" \
      test "$seen" = "web-h1 web-h2 web-h1 web-h2 " -o "$seen" = "web-h2 web-h1 web-h2 web-h1 "
    want=$(sha256sum <"$work/blob" | cut -d' ' -f1)
    before_out=$(fast 2 egress) before_in=$(fast 2 ingress) before_remote=$(fast 1 ingress)
    got=$(in_client 2 curl -sS --max-time 20 http://10.30.1.1:8080/blob | sha256sum | cut -d' ' -f1)
    check "1 MiB over TCP from host 1 to host 2 arrives byte-exact" test "$got" = "$want"
    after_out=$(fast 2 egress) after_in=$(fast 2 ingress) after_remote=$(fast 1 ingress)
    check "host 2 sent the transfer's ACKs in the kernel ($before_out -> $after_out)" test "$after_out" -gt "$((before_out + 10))"
    check "host 2 took the transfer's data in the kernel ($before_in -> $after_in)" test "$after_in" -gt "$((before_in + 10))"
    check "host 1 took the client's ACKs in the kernel ($before_remote -> $after_remote)" test "$after_remote" -gt "$((before_remote + 10))"
    check "host 1 sent the data in the kernel ($(fast 1 egress))" test "$(fast 1 egress)" -gt 4
    for k in 1 2 3 4 5; do out=$(in_client 2 python3 "$here/service.py" udp-ask 10.30.0.1 8080 40001); echo "$out"; done >"$work/udp"
    answers=$(sort -u "$work/udp" | tr '\n' ' ')
    check "five UDP datagrams of one flow through RR are answered by one instance ($answers)" \
      test "$answers" = "web-h1 ping " -o "$answers" = "web-h2 ping "
    udp_fast=$(fast 2 egress)
    in_client 2 python3 "$here/service.py" udp-ask 10.30.0.1 8080 40001 >/dev/null
    check "the flow's next datagram leaves host 2 in the kernel ($udp_fast -> $(fast 2 egress))" test "$(fast 2 egress)" -gt "$udp_fast"
    for h in 1 2; do
      errors=$(nm_in "$(app "$h" myapp2)" nstat -az TcpInCsumErrors | awk '/TcpInCsumErrors/ { print $2 }')
      check "no TCP checksum errors in host $h's client namespace (${errors:-none})" test "${errors:-0}" -eq 0
      check "host $h's fast path dropped nothing" test "$(fast "$h" egress error)" -eq 0 -a "$(fast "$h" ingress error)" -eq 0
    done
    ;;
  interop)
    check "host 2 runs userspace only ($(status_field 2 datapath))" test "$(status_field 2 datapath)" = userspace
    head -c 100000000 /dev/urandom >"$work/big"
    want=$(sha256sum <"$work/big" | cut -d' ' -f1)
    before=$(fast 1 egress)
    got=$(in_client 2 curl -sS --max-time 60 http://10.30.1.1:8080/big | sha256sum | cut -d' ' -f1)
    check "100 MB from the fast-path host to the userspace one arrive byte-exact" test "$got" = "$want"
    check "host 1 sent them in the kernel ($before -> $(fast 1 egress))" test "$(fast 1 egress)" -gt "$((before + 1000))"
    before=$(fast 1 ingress)
    got=$(in_client 1 curl -sS --max-time 60 http://10.30.1.2:8080/big | sha256sum | cut -d' ' -f1)
    check "100 MB from the userspace host to the fast-path one arrive byte-exact" test "$got" = "$want"
    check "host 1 took them in the kernel ($before -> $(fast 1 ingress))" test "$(fast 1 ingress)" -gt "$((before + 1000))"
    out=$(in_client 2 python3 "$here/service.py" udp-ask 10.30.1.1 8080)
    check "UDP from the userspace host to the fast-path one is answered ($out)" test "$out" = "web-h1 ping"
    out=$(in_client 1 python3 "$here/service.py" udp-ask 10.30.1.2 8080)
    check "UDP from the fast-path host to the userspace one is answered ($out)" test "$out" = "web-h2 ping"
    for h in 1 2; do
      for n in myapp1 myapp2; do
        errors=$(nm_in "$(app "$h" $n)" nstat -az TcpInCsumErrors | awk '/TcpInCsumErrors/ { print $2 }')
        check "no TCP checksum errors in host $h's $n (${errors:-none})" test "${errors:-0}" -eq 0
      done
    done
    ;;
  undeploy)
    # One UDP flow from host 2's client to host 1's web instance, then web is undeployed on host 1.
    for k in 1 2 3; do in_client 2 python3 "$here/service.py" udp-ask 10.30.1.1 8080 40002 >/dev/null; done
    before=$(fast 1 ingress)
    out=$(in_client 2 python3 "$here/service.py" udp-ask 10.30.1.1 8080 40002)
    check "the flow is answered ($out)" test "$out" = "web-h1 ping"
    check "and host 1 took its datagram in the kernel ($before -> $(fast 1 ingress))" test "$(fast 1 ingress)" -gt "$before"
    flows=$(metric 1 netmanager_fastpath_flows)
    check "host 1's kernel holds the flow ($flows entries)" test "$flows" -ge 1
    nm_api "$prefix" 1 POST /netns/undeploy "{\"serviceName\":\"$NM_SEED_WEB\",\"instanceNumber\":0}" >/dev/null
    check "the undeploy pruned the flow from host 1's kernel at once ($(metric 1 netmanager_fastpath_pruned_total) pruned, $(metric 1 netmanager_fastpath_flows) left)" \
      test "$(metric 1 netmanager_fastpath_pruned_total)" -ge 1 -a "$(metric 1 netmanager_fastpath_flows)" -lt "$flows"
    fast_before=$(fast 1 ingress) miss_before=$(fast 1 ingress miss)
    in_client 2 python3 "$here/service.py" udp-ask 10.30.1.1 8080 40002 >/dev/null 2>&1
    check "the flow's next datagram is not carried by host 1's kernel ($fast_before -> $(fast 1 ingress))" test "$(fast 1 ingress)" -eq "$fast_before"
    check "it is counted as a miss, on to the slow path ($miss_before -> $(fast 1 ingress miss))" test "$(fast 1 ingress miss)" -gt "$miss_before"
    ;;
  reoffer)
    # A TCP connection whose request comes 2 s after its handshake: its SYN makes the offer, its
    # data crosses in the kernel, and its FIN, seconds later, takes the userspace path as every
    # SYN/FIN/RST does, while the kernel entry stays: nothing to offer again.
    offers1=$(metric 1 netmanager_fastpath_offers_total) offers2=$(metric 2 netmanager_fastpath_offers_total)
    control=$(fast 2 egress control)
    out=$(in_client 2 python3 "$here/service.py" tcp-later 10.30.1.1 8080 2 | tail -n 1)
    check "the connection is answered 2 s after its handshake ($out)" test "$out" = web-h1
    sleep 0.5  # the last ACKs
    check "host 2's kernel left its FIN to the userspace path ($control -> $(fast 2 egress control))" \
      test "$(fast 2 egress control)" -gt "$control"
    check "host 2 offered the flow once, at its SYN, not again for the FIN ($offers2 -> $(metric 2 netmanager_fastpath_offers_total))" \
      test "$(metric 2 netmanager_fastpath_offers_total)" -eq "$((offers2 + 1))"
    check "host 1 offered the replies' flow once too ($offers1 -> $(metric 1 netmanager_fastpath_offers_total))" \
      test "$(metric 1 netmanager_fastpath_offers_total)" -eq "$((offers1 + 1))"
    ;;
  reply_reoffer)
    # An iperf3 TCP transfer from host 2's client to host 1's web instance: its ACKs come back
    # into host 2 in the kernel. Host 2's reply entries are deleted mid-flow (as the LRU evicts
    # one alone): the next ACK takes the userspace path, which offers the flow again, and the
    # ACKs after it are the kernel's again.
    nm_spawn "$prefix" iperf "$(app 1 myapp1)" "$work/iperf.log" iperf3 -s -p 5201 || exit 1
    nm_wait_listen "$(app 1 myapp1)" 5201 || exit 1
    nm_spawn "$prefix" client "$(app 2 myapp2)" "$work/client.json" iperf3 -c 10.30.1.1 -p 5201 -t 6 -b 200M -J || exit 1
    sleep 2
    offers=$(metric 2 netmanager_fastpath_offers_total) miss=$(fast 2 ingress miss)
    deleted=$(clear_map 2 nm_ingress_flows)
    check "host 2's reply entries are deleted mid-transfer (${deleted:-none})" test "${deleted:-0}" -ge 1
    sleep 1.5
    before=$(fast 2 ingress)
    sleep 1.5
    after=$(fast 2 ingress)
    check "the next ACKs took the userspace path ($miss -> $(fast 2 ingress miss) misses)" test "$(fast 2 ingress miss)" -gt "$miss"
    check "which offered the flow again ($offers -> $(metric 2 netmanager_fastpath_offers_total) offers)" \
      test "$(metric 2 netmanager_fastpath_offers_total)" -gt "$offers"
    check "and the ACKs are carried into host 2 in the kernel again ($before -> $after)" test "$after" -gt "$((before + 100))"
    check "the transfer completes" wait_until 8 jq -e '.end.sum_received.bytes > 0' "$work/client.json"
    ;;
  peer_rst)
    # A TCP connection that host 1's server aborts (SO_LINGER 0: an RST, no FIN), the client
    # sending nothing after: only host 2's reply entry sees the RST, yet the flow must expire
    # after the closing grace (10 s), not after TCP's hour.
    nm_spawn "$prefix" reset "$(app 1 myapp1)" "$work/reset.log" python3 "$here/service.py" tcp-reset 8090 || exit 1
    nm_wait_listen "$(app 1 myapp1)" 8090 || exit 1
    control=$(fast 2 ingress control)
    out=$(in_client 2 python3 "$here/service.py" tcp-hello 10.30.1.1 8090)
    closed=$(date +%s%N)
    held=$(flows_to 2 8090)
    check "the client reads the answer, then the server's RST ($out)" test "$out" = "bye reset"
    check "host 2's kernel holds the flow after the RST ($held entries to port 8090)" test "$held" -eq 1
    check "host 2's kernel left the RST to the userspace path ($control -> $(fast 2 ingress control))" \
      test "$(fast 2 ingress control)" -gt "$control"
    gone() { test "$(flows_to 2 8090)" -eq 0; }
    check "it expires from host 2's kernel" wait_until 25 gone
    after=$((($(date +%s%N) - closed) / 1000000))
    check "after the closing grace and a tick ($after ms after the RST)" test "$after" -ge 9000 -a "$after" -le 18000
    ;;
  path_mtu)
    # Host 1 knows its path to host 2 allows 1400-byte datagrams (a locked route MTU, as a path
    # MTU learned from a hop would be), and the wire into host 2 indeed drops larger ones
    # (its underlay MTU). Host 1's underlay segments as a NIC does (tx off), so what crosses
    # the wire is what the path must carry. An IPv4 iperf3 from host 1's client: the fast path
    # must leave packets, and TCP super-segments, too big for the path to the userspace path,
    # which answers fragmentation needed, so none is lost on the wire.
    nm_in "$(nm_host "$prefix" 1)" ethtool -K ul0 tx off >/dev/null || exit 1
    nm_in "$(nm_host "$prefix" 1)" ip route add "$(nm_underlay_ip 2)/32" dev ul0 mtu lock 1400 || exit 1
    nm_in "$(nm_host "$prefix" 2)" ip link set ul0 mtu 1400 || exit 1
    dropped() { nm_in "$(nm_host "$prefix" 1)" ip -s -j link show ul0 | jq '.[0].stats64.tx.dropped'; }
    too_big=$(metric 1 netmanager_packets_too_big_total) drops=$(dropped) before=$(fp_bytes 1 egress)
    nm_spawn "$prefix" iperf "$(app 2 myapp1)" "$work/iperf.log" iperf3 -s -p 5201 || exit 1
    nm_wait_listen "$(app 2 myapp1)" 5201 || exit 1
    out=$(in_client 1 timeout 60 iperf3 -c 10.30.1.2 -p 5201 -n 10M -J 2>&1)
    bytes=$(jq -r '.end.sum_sent.bytes // 0' <<<"$out" 2>/dev/null)
    check "IPv4 iperf3 -n 10M from host 1 across the 1400-byte path completes (${bytes:-0} bytes)" test "${bytes:-0}" -ge 10485760
    check "host 1's agent answered fragmentation needed ($too_big -> $(metric 1 netmanager_packets_too_big_total))" \
      test "$(metric 1 netmanager_packets_too_big_total)" -gt "$too_big"
    route=$(in_client 1 ip route get 10.30.1.2 | tr '\n' ' ')
    check "the client's route cache holds the tunnel's path MTU over 1400, 1372 ($route)" bash -c "[[ '$route' == *'mtu 1372'* ]]"
    check "no datagram too big for the path left host 1 ($drops -> $(dropped) dropped by the wire)" test "$(dropped)" -eq "$drops"
    check "host 1's kernel carried the transfer ($before -> $(fp_bytes 1 egress) bytes)" test "$(fp_bytes 1 egress)" -gt "$((before + 5000000))"
    ;;
  local)
    # Both ends on host 2: its client and its web instance, through web's InstanceNumber
    # ServiceIP 10.30.1.2. The agent offers each direction when it records it; the kernel then
    # hands the packets from one namespace straight into the other, translated.
    head -c 20000000 /dev/urandom >"$work/big"
    want=$(sha256sum <"$work/big" | cut -d' ' -f1)
    tun() { metric 2 'netmanager_packets_total{direction="tun_read"}'; }
    tun_before=$(tun) local_before=$(fast 2 local) offers=$(metric 2 netmanager_fastpath_offers_total)
    got=$(in_client 2 curl -sS --max-time 30 http://10.30.1.2:8080/big | sha256sum | cut -d' ' -f1)
    check "20 MB from host 2's web instance to its client through 10.30.1.2 arrive byte-exact" test "$got" = "$want"
    check "host 2 offered both directions, once each ($offers -> $(metric 2 netmanager_fastpath_offers_total))" \
      test "$(metric 2 netmanager_fastpath_offers_total)" -eq "$((offers + 2))"
    check "its kernel carried them between the namespaces ($local_before -> $(fast 2 local) packets)" \
      test "$(fast 2 local)" -gt "$((local_before + 100))"
    check "the TUN read only the handshake's and the close's SYN and FIN ($tun_before -> $(tun))" \
      test "$(tun)" -le "$((tun_before + 6))"
    errors=$(in_client 2 nstat -az TcpInCsumErrors | awk '/TcpInCsumErrors/ { print $2 }')
    check "no TCP checksum errors in the client's namespace (${errors:-none})" test "${errors:-0}" -eq 0
    check "host 2's fast path dropped nothing" test "$(fast 2 egress error)" -eq 0
    # A TCP stream through 10.30.1.2 that never pauses (1000 bytes from the client every 20 ms,
    # echoed back), and web undeployed on host 2 mid-flow: both directions leave the kernel at
    # once, and the client's next packet takes the userspace path, which drops it.
    nm_spawn "$prefix" echo "$(app 2 myapp1)" "$work/echo.log" python3 "$here/service.py" tcp-echo 8092 || exit 1
    nm_wait_listen "$(app 2 myapp1)" 8092 || exit 1
    moving=$(fast 2 local)
    nm_spawn "$prefix" drip "$(app 2 myapp2)" "$work/drip" python3 "$here/service.py" tcp-drip 10.30.1.2 8092 20 || exit 1
    echoed() { grep -E '^[0-9]+$' "$work/drip" | tail -n 1; }
    streaming() { test "$(fast 2 local)" -gt "$((moving + 100))" -a "$(echoed)" -gt 50000; }
    check "mid-stream the kernel carries it between the namespaces, echoed" wait_until 10 streaming
    check "host 2's kernel holds both directions of it ($(flows_with 2 8092) entries)" test "$(flows_with 2 8092)" -eq 2
    pruned=$(metric 2 netmanager_fastpath_pruned_total) miss=$(fast 2 egress miss)
    dropped=$(metric 2 'netmanager_drops_total{reason="unknown_service"}')
    nm_api "$prefix" 2 POST /netns/undeploy "{\"serviceName\":\"$NM_SEED_WEB\",\"instanceNumber\":1}" >/dev/null
    check "the undeploy pruned both directions from the kernel at once ($pruned -> $(metric 2 netmanager_fastpath_pruned_total) pruned, $(flows_with 2 8092) left)" \
      test "$(metric 2 netmanager_fastpath_pruned_total)" -ge "$((pruned + 2))" -a "$(flows_with 2 8092)" -eq 0
    stopped=$(fast 2 local)
    missed() { test "$(fast 2 egress miss)" -gt "$miss"; }
    check "the client's next packet misses the kernel ($miss -> $(fast 2 egress miss))" wait_until 5 missed
    echoes=$(echoed)
    dropped_slow() { test "$(metric 2 'netmanager_drops_total{reason="unknown_service"}')" -gt "$dropped"; }
    check "and the userspace path drops it: web is gone ($dropped -> $(metric 2 'netmanager_drops_total{reason="unknown_service"}'))" wait_until 5 dropped_slow
    sleep 1
    check "the kernel carries nothing of it afterwards ($stopped -> $(fast 2 local))" test "$(fast 2 local)" -eq "$stopped"
    check "nothing more is echoed ($echoes -> $(echoed) bytes)" test "$(echoed)" -eq "$echoes"
    ;;
  local_idle)
    # --flow-idle 2000 on both hosts. A flow between two namespaces of host 2 is two egress
    # entries in its kernel, one a direction, but one flow. UDP: the client asks web once
    # through 10.30.1.2, and web then streams to it for 5 s: the client's direction, idle all
    # along, stays while the other is busy, and both expire together once the stream stops.
    nm_spawn "$prefix" stream "$(app 2 myapp1)" "$work/stream.log" python3 "$here/service.py" udp-stream 8093 5 || exit 1
    udp_listening() { test -n "$(nm_in "$(app 2 myapp1)" ss -Hlun 'sport = :8093')"; }
    wait_until 5 udp_listening || exit 1
    expired=$(metric 2 netmanager_fastpath_expired_total) local_fast=$(fast 2 local)
    nm_spawn "$prefix" hold "$(app 2 myapp2)" "$work/hold" python3 "$here/service.py" udp-hold 10.30.1.2 8093 3 || exit 1
    streamed() { test "$(grep -c tick "$work/hold")" -ge "$1"; }
    check "the client gets web's stream through 10.30.1.2 for 4 s" wait_until 8 streamed 14
    check "host 2's kernel carries the stream ($local_fast -> $(fast 2 local) packets)" test "$(fast 2 local)" -gt "$((local_fast + 10))"
    check "the client's direction, idle for 4 s (twice --flow-idle), stays in the kernel with the busy one ($(flows_with 2 8093) entries, $expired -> $(metric 2 netmanager_fastpath_expired_total) expired)" \
      test "$(flows_with 2 8093)" -eq 2
    # Waits up to $2 s for both directions of the flow with port $1 to leave the kernel, noting
    # in $work/alone a moment one was there without the other.
    both_gone() {
      local n end=$((SECONDS + $2))
      while [ "$SECONDS" -lt "$end" ]; do
        n=$(flows_with 2 "$1")
        [ "$n" -ne 1 ] || echo "$1" >"$work/alone"
        [ "$n" -ne 0 ] || return 0
        sleep 0.1
      done
      return 1
    }
    : >"$work/alone"
    check "once the stream stops both expire from the kernel" both_gone 8093 8
    check "together, counted as two expired entries ($expired -> $(metric 2 netmanager_fastpath_expired_total); one alone: $(cat "$work/alone"))" \
      test "$(metric 2 netmanager_fastpath_expired_total)" -eq "$((expired + 2))" -a ! -s "$work/alone"
    # TCP: web answers a connection and aborts it (an RST, no FIN), the client sending nothing
    # after. Only web's direction saw the RST, yet both expire after the closing grace (10 s),
    # not after TCP's hour.
    nm_spawn "$prefix" reset "$(app 2 myapp1)" "$work/reset.log" python3 "$here/service.py" tcp-reset 8090 || exit 1
    nm_wait_listen "$(app 2 myapp1)" 8090 || exit 1
    out=$(in_client 2 python3 "$here/service.py" tcp-hello 10.30.1.2 8090)
    closed=$(date +%s%N)
    check "the client reads web's answer, then its RST ($out)" test "$out" = "bye reset"
    check "host 2's kernel holds both directions after the RST ($(flows_with 2 8090) entries)" test "$(flows_with 2 8090)" -eq 2
    : >"$work/alone"
    check "both expire from the kernel" both_gone 8090 25
    after=$((($(date +%s%N) - closed) / 1000000))
    check "after the closing grace and a tick ($after ms after the RST), together (one alone: $(cat "$work/alone"))" \
      test "$after" -ge 9000 -a "$after" -le 18000 -a ! -s "$work/alone"
    ;;
  idle)
    # --flow-idle 2000 on both hosts. A UDP flow kept busy in the kernel for twice that: the
    # programs' stamps keep it there, so it is offered once and never expires meanwhile.
    offers=$(metric 2 netmanager_fastpath_offers_total) fast_before=$(fast 2 egress) expired=$(metric 2 netmanager_fastpath_expired_total)
    start=$SECONDS
    while [ $((SECONDS - start)) -lt 5 ]; do
      in_client 2 python3 "$here/service.py" udp-ask 10.30.1.1 8080 40003 >>"$work/busy" || echo failed >>"$work/busy"
      sleep 0.3
    done
    answers=$(sort -u "$work/busy" | tr '\n' ' ')
    check "a UDP flow asked every ~0.5 s for 5 s is always answered ($answers)" test "$answers" = "web-h1 ping "
    asked=$(wc -l <"$work/busy")
    check "host 2's kernel carried all but the first of its $asked datagrams ($fast_before -> $(fast 2 egress))" \
      test "$asked" -ge 3 -a "$(fast 2 egress)" -ge "$((fast_before + asked - 1))"
    check "it was offered once: busy in the kernel, it never expired ($offers -> $(metric 2 netmanager_fastpath_offers_total) offers, $expired -> $(metric 2 netmanager_fastpath_expired_total) expired)" \
      test "$(metric 2 netmanager_fastpath_offers_total)" -eq "$((offers + 1))" -a "$(metric 2 netmanager_fastpath_expired_total)" -eq "$expired"
    gone_from() { test "$(metric "$1" netmanager_fastpath_flows)" -eq 0 -a "$(metric "$1" netmanager_fastpath_reply_flows)" -eq 0; }
    check "once idle it expires from host 2's kernel within 2 s and a tick" wait_until 5 gone_from 2
    check "counted as expired ($expired -> $(metric 2 netmanager_fastpath_expired_total))" \
      test "$(metric 2 netmanager_fastpath_expired_total)" -ge "$((expired + 1))"
    check "and from host 1's (its replies' flow)" wait_until 3 gone_from 1
    out=$(in_client 2 python3 "$here/service.py" udp-ask 10.30.1.1 8080 40003)
    check "the flow's next datagram is answered ($out) and offered again ($(metric 2 netmanager_fastpath_offers_total) offers)" \
      test "$out" = "web-h1 ping" -a "$(metric 2 netmanager_fastpath_offers_total)" -eq "$((offers + 2))"
    # TCP: a connection closed (FIN) expires after the 10 s closing grace; one open but idle
    # stays (an hour).
    nm_spawn "$prefix" later "$(app 2 myapp2)" "$work/later" python3 "$here/service.py" tcp-later 10.30.1.1 8080 16
    wait_until 5 grep -q connected "$work/later"
    out=$(fetch 2 10.30.1.1)
    check "a TCP request is answered ($out)" test "$out" = web-h1
    flows=$(metric 2 netmanager_fastpath_flows)
    check "host 2's kernel holds both TCP flows, the closed one and the open one ($flows)" test "$flows" -ge 2
    one_left() { test "$(metric 2 netmanager_fastpath_flows)" -eq 1; }
    check "the closed one expires after the closing grace, the open one stays" wait_until 14 one_left
    check "the open connection, idle for 16 s, is still answered" wait_until 10 grep -q web-h1 "$work/later"
    ;;
  sigterm)
    fetch 2 10.30.1.1 >/dev/null
    check "host 1 has the programs attached while running, one on each of its $(veths 1 | wc -l) app veths ($(filters 1 | grep -c nm_) filters)" attached_ok 1
    nm_agent_stop "$prefix" 1
    check "after SIGTERM no program of ours is attached on host 1 ($(filters 1 | grep -c nm_) left)" test "$(filters 1 | grep -c nm_)" -eq 0
    ;;
  iperf)
    # iperf3 through host 1's InstanceNumber ServiceIP, both ways: the TCP super-segments
    # (TSO) cross the tunnel whole, segmented once if at all.
    nm_spawn "$prefix" iperf "$(app 1 myapp1)" "$work/iperf.log" iperf3 -s -p 5201 || exit 1
    nm_wait_listen "$(app 1 myapp1)" 5201 || exit 1
    for way in "" -R; do
      before=$(fast 1 ingress) before_bytes=$(ingress_bytes 1)
      out=$(in_client 2 iperf3 -c 10.30.1.1 -p 5201 -t 2 $way -J 2>&1)
      bps=$(jq -r '.end.sum_received.bits_per_second // 0' <<<"$out" 2>/dev/null)
      check "iperf3 ${way:-forward} TCP through 10.30.1.1 moves data ($bps bit/s)" \
        /usr/bin/python3 -c "import sys; sys.exit(0 if float('${bps:-0}') > 1e6 else 1)"
      packets=$(($(fast 1 ingress) - before)) bytes=$(($(ingress_bytes 1) - before_bytes))
      check "host 1's kernel carried it ($packets packets)" test "$packets" -gt 100
      if [ -z "$way" ]; then
        check "as super-segments, whole (on average $((bytes / packets)) bytes a packet, the MTU is 1450)" \
          test "$((bytes / packets))" -gt 1450
      fi
      out=$(in_client 2 iperf3 -u -b 50M -c 10.30.1.1 -p 5201 -t 2 $way -J 2>&1)
      pkts=$(jq -r '.end.sum.packets // 0' <<<"$out" 2>/dev/null)
      lost=$(jq -r '.end.sum.lost_percent // 100' <<<"$out" 2>/dev/null)
      check "iperf3 ${way:-forward} UDP through 10.30.1.1 arrives ($pkts datagrams, $lost % lost)" \
        /usr/bin/python3 -c "import sys; sys.exit(0 if int('${pkts:-0}') > 100 and float('${lost:-100}') < 20 else 1)"
    done
    for h in 1 2; do
      for n in myapp1 myapp2; do
        errors=$(nm_in "$(app "$h" $n)" nstat -az TcpInCsumErrors | awk '/TcpInCsumErrors/ { print $2 }')
        check "no TCP checksum errors in host $h's $n (${errors:-none})" test "${errors:-0}" -eq 0
      done
      check "host $h's fast path dropped nothing" test "$(fast "$h" egress error)" -eq 0 -a "$(fast "$h" ingress error)" -eq 0
    done
    ;;
  spoofed)
    # A UDP flow from host 2's client to host 1's web instance, held open: host 2's kernel
    # knows its replies (from 10.30.1.1:8080, sent by host 1's node).
    hold="$work/hold"
    nm_spawn "$prefix" hold "$(app 2 myapp2)" "$hold" python3 "$here/service.py" udp-hold 10.30.1.1 8080 20
    wait_until 5 test -s "$hold"
    read -r port who _ <"$hold"
    check "host 2's client holds a UDP flow answered by $who" test "$who" = web-h1
    before=$(fast 2 ingress) wrong=$(fast 2 ingress wrong_node) drops=$(metric 2 'netmanager_drops_total{reason="unknown_node"}')
    # That flow's reply, from the right node's tunnel port (genuine), then forged from an
    # address of no node, for the known flow and for one the kernel does not know.
    nm_in "$prefix-h1" /usr/bin/python3 - "$(nm_seed_nsip 2 myapp2)" "$port" "$(nm_underlay_ip 1)" \
      "$(nm_underlay_ip 2)" "$NM_TUNNEL_PORT" <<'PY'
import sys, time
from scapy.all import IP, UDP, Raw, send
dst, dport, me, peer, port = sys.argv[1:]
inner = lambda text, sport=8080: bytes(IP(src="10.30.1.1", dst=dst) / UDP(sport=sport, dport=int(dport)) / Raw(text))
# Checksums finished (a socket's would be left to the veth, which the fast path hands on).
send(IP(src=me, dst=peer) / UDP(sport=40000, dport=int(port)) / Raw(inner(b"genuine")), verbose=False)
time.sleep(0.2)
for k in range(3):
    send(IP(src="10.250.0.77", dst=peer) / UDP(sport=int(port), dport=int(port)) / Raw(inner(b"spoofed-known")), verbose=False)
    send(IP(src="10.250.0.77", dst=peer) / UDP(sport=int(port), dport=int(port)) / Raw(inner(b"spoofed-unknown", 8081)), verbose=False)
PY
    check "the genuine reply reached the client" wait_until 5 grep -q genuine "$hold"
    check "host 2's kernel carried it ($before -> $(fast 2 ingress))" test "$(fast 2 ingress)" -gt "$before"
    sleep 1
    check "no forged datagram reached the client's namespace" bash -c "! grep -q spoofed '$hold'"
    check "the forged ones of the known flow went to the slow path as from the wrong node ($wrong -> $(fast 2 ingress wrong_node))" \
      test "$(fast 2 ingress wrong_node)" -ge "$((wrong + 3))"
    check "which dropped all six as from no node ($drops -> $(metric 2 'netmanager_drops_total{reason="unknown_node"}'))" \
      test "$(metric 2 'netmanager_drops_total{reason="unknown_node"}')" -eq "$((drops + 6))"
    ;;
  bounded)
    # 100 000 UDP flows (50 000 source ports to two ports of 10.30.1.1) from host 2's client:
    # each is offered to the kernel, whose LRU maps keep at most their bound.
    max=$(metric 2 netmanager_fastpath_flows_max)
    check "host 2's flow maps have a bound ($max entries)" test "$max" -ge 1024 -a "$max" -lt 100000
    in_client 2 /usr/bin/python3 - "$(nm_seed_nsip 2 myapp2)" <<'PY'
import socket, struct, sys, time
src = socket.inet_aton(sys.argv[1])
dst = socket.inet_aton("10.30.1.1")
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP)
def csum(b):
    if len(b) % 2: b += b"\0"
    t = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while t >> 16: t = (t & 0xffff) + (t >> 16)
    return ~t & 0xffff
n = 0
for dport in (8080, 8081):
    for sport in range(10000, 60000):
        udp = struct.pack("!HHHH", sport, dport, 9, 0) + b"x"
        c = csum(src + dst + struct.pack("!BBH", 0, 17, 9) + udp) or 0xffff
        s.sendto(udp[:6] + struct.pack("!H", c) + udp[8:], ("10.30.1.1", 0))
        n += 1
        if n % 500 == 0: time.sleep(0.01)  # the slow path takes each new flow
PY
    offers=$(metric 2 netmanager_fastpath_offers_total)
    check "host 2 offered more flows than the maps hold ($offers offers)" test "$offers" -gt "$max"
    flows=$(metric 2 netmanager_fastpath_flows) replies=$(metric 2 netmanager_fastpath_reply_flows)
    check "its egress map holds at most its bound ($flows <= $max)" test "$flows" -le "$max" -a "$flows" -gt 0
    check "its reply map too ($replies <= $max)" test "$replies" -le "$max" -a "$replies" -gt 0
    ids=$(nm_in "$(nm_host "$prefix" 2)" tc filter show dev ul0 ingress | grep -o 'id [0-9]*' | cut -d' ' -f2)
    maps=$(for id in $ids; do bpftool prog show id "$id" | grep -o 'map_ids [0-9,]*' | cut -d' ' -f2 | tr ',' ' '; done)
    limits=$(for m in $maps; do bpftool map show id "$m" | grep -q 'lru_hash' && bpftool map show id "$m" | grep -o 'max_entries [0-9]*' | cut -d' ' -f2; done | sort -u | tr '\n' ' ')
    check "the kernel's LRU flow maps are created with that bound ($limits)" test "$limits" = "$max "
    out=$(in_client 2 python3 "$here/service.py" udp-ask 10.30.1.1 8080 40009)
    check "a new flow afterwards is still answered ($out)" test "$out" = "web-h1 ping"
    ;;
  kill9)
    fetch 2 10.30.1.1 >/dev/null
    read -r pid _ <"$(nm_state "$prefix")/pids/agent1"
    kill -KILL "$pid"
    nm_stop "$prefix" agent1
    check "kill -9 leaves host 1's programs attached" grep -q nm_ingress <<<"$(filters 1)"
    check "on its app veths too" grep -q 'nm_egress[^_]' <<<"$(filters 1)"
    nm_agent_start "$prefix" 1 "$table" --datapath userspace || { dump_logs; exit 1; }
    check "a new agent, userspace only, removes it ($(filters 1 | grep -c nm_) left)" test "$(filters 1 | grep -c nm_)" -eq 0
    # The new agent adopts the dead one's namespaces (their web server runs on).
    out=$(fetch 2 10.30.1.1)
    check "and traffic to host 1 flows on its userspace path ($out)" test "$out" = web-h1
    ;;
  kill9_auto)
    fetch 2 10.30.1.1 >/dev/null
    old=$(filters 1 | grep -o 'id [0-9]*' | cut -d' ' -f2 | tr '\n' ' ')
    read -r pid _ <"$(nm_state "$prefix")/pids/agent1"
    kill -KILL "$pid"
    nm_stop "$prefix" agent1
    check "kill -9 leaves host 1's programs attached (ids $old)" test -n "$old"
    nm_agent_start "$prefix" 1 "$table" --datapath auto || { dump_logs; exit 1; }
    # It adopts the web namespace (its server runs on) and drops the client's (nothing runs there).
    check "a new agent on the fast path runs its own programs, on the adopted namespace's veth too ($(filters 1 | grep -c nm_) attached)" attached_ok 1 1
    for id in $old; do
      check "the dead agent's program $id is gone from the kernel" wait_until 5 bash -c "! bpftool prog show id $id >/dev/null 2>&1"
    done
    before=$(fast 1 ingress)
    got=$(in_client 2 curl -sS --max-time 20 http://10.30.1.1:8080/blob | sha256sum | cut -d' ' -f1)
    check "1 MiB from host 1 arrives byte-exact after the restart" test "$got" = "$(sha256sum <"$work/blob" | cut -d' ' -f1)"
    check "and host 1's new programs carried its ACKs ($before -> $(fast 1 ingress))" test "$(fast 1 ingress)" -gt "$before"
    new=$(filters 1 | grep -o 'id [0-9]*' | cut -d' ' -f2 | tr '\n' ' ')
    nm_agent_stop "$prefix" 1
    check "after SIGTERM no program of ours is attached on host 1 ($(filters 1 | grep -c nm_) left)" test "$(filters 1 | grep -c nm_)" -eq 0
    for id in $new; do
      check "and its program $id is gone from the kernel" wait_until 5 bash -c "! bpftool prog show id $id >/dev/null 2>&1"
    done
    ;;
  *)
    echo "unknown case $case_name"
    exit 2
    ;;
esac

if [ "$failures" -gt 0 ]; then
  for h in 1 2; do
    echo "--- host $h's fast path and drops"
    nm_api "$prefix" "$h" GET /metrics | grep -E '^netmanager_(fastpath|drops)' | grep -v ' 0$'
  done
  dump_logs
  exit 1
fi
