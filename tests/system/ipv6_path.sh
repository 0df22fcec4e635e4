#!/usr/bin/env bash
# IPv6 through the tunnel (issue 20 points 3-4): two dual-stack simulated hosts, a netmanager on
# each with --subnet6 fc00::<i>00/120, real clients in the app namespaces:  ipv6_path.sh CASE
# Host i runs web (myapp1, fc00::<i>02; HTTP + UDP echo and iperf3 on 8080/5201) and a client
# (myapp2, fc00::<i>03). ServiceIPs of web: RR fdff:2000::1, Closest fdff:2000::2, InstanceNumber
# fdff::1:<i>; of client: RR fdff:2000::3, InstanceNumber fdff::2:<i> (and the seed's IPv4 ones).
#   curl_rr        curl -6 through the RR ServiceIP reaches both instances in turn, the server
#                  sees the client's IPv6 instance ServiceIP, UDP is answered from the ServiceIP
#   instance       curl -6 through an InstanceNumber ServiceIP always reaches that instance
#   iperf          iperf3 -6 TCP and UDP, both ways, through an InstanceNumber ServiceIP (iperf3's
#                  data connection must reach the instance of its control connection, which RR
#                  with two instances does not promise: curl_rr covers RR)
#   transfer       100 MB over IPv6 byte-exact both ways between an agent with offloads and one
#                  with --no-offload; no TCP/UDP checksum errors at the receivers
#   mixed          one client's IPv4 and IPv6 transfers at the same time, both byte-exact
#   pmtu           a hop narrower than the tunnel (1300 < 1450) in front of the receiver: the
#                  kernel's packet too big is carried back through both agents, the sender's
#                  route cache takes the lower MTU, and 10 MB (iperf3 -6, client sending) and
#                  1 MB (curl -6, server sending) cross it
#   underlay       the underlay link narrower than the tunnel (1400 < 1450 + 28), set after the
#                  agents started: each agent learns the path MTU toward the other and answers
#                  inner packets that would not fit with a packet too big (IPv6) or fragmentation
#                  needed (IPv4, DF), the senders lower their path MTU, and iperf3 -6 -n 10M,
#                  IPv4 iperf3 -n 10M and a 1 MB curl -6 (server sending) all cross it
#   fragments      3000-byte UDP datagrams (two IPv6 fragments each at MTU 1450) arrive whole and
#                  so do their echoes, through an InstanceNumber ServiceIP and through RR: the
#                  later fragment, without ports, goes the way its first fragment went (the
#                  echo's is given the RR ServiceIP as source), counted as forwarded
prefix="p$(($$ % 100000))"
source "$(dirname "$0")/common.sh"

fetch6() { in_client "$1" curl -6 -sS --max-time ${3:-5} "http://[$2]:8080${4:-/id}"; }
dump_logs() {
  tail_logs
  for h in 1 2; do echo "--- host $h"; nm_api "$prefix" "$h" GET /metrics | grep -E 'drop|handoff' | grep -v ' 0$'; done
}
# Checksum errors the kernel counted in a namespace (TCP for both families; UDP of IPv6).
csum_errors() {
  local tcp udp6
  tcp=$(nm_in "$1" nstat -az TcpInCsumErrors | awk '/TcpInCsumErrors/ { print $2 }')
  udp6=$(nm_in "$1" awk '$1 == "Udp6InCsumErrors" { print $2 }' /proc/net/snmp6)
  echo $((${tcp:-0} + ${udp6:-0}))
}

nm_hosts_up "$prefix" 2 || exit 1
export NM_SEED_V6=1  # testenv/lib.sh: the seed table and agents dual-stack
table="$(nm_state "$prefix")/table.json"
nm_seed_table 2 "$table" || exit 1
for h in 1 2; do
  extra=()
  [ "$case_name" = transfer ] && [ "$h" = 2 ] && extra=(--no-offload)
  nm_agent_start "$prefix" "$h" "$table" "${extra[@]}" || { dump_logs; exit 1; }
done
for h in 1 2; do
  nm_app_deploy "$prefix" "$h" myapp1 "$NM_SEED_WEB" $((h - 1)) "$(nm_seed_nsip "$h" myapp1)" || exit 1
  nm_app_deploy "$prefix" "$h" myapp2 "$NM_SEED_CLIENT" $((h - 1)) "$(nm_seed_nsip "$h" myapp2)" || exit 1
  for name in myapp1 myapp2; do
    want="$(nm_seed_nsip6 "$h" "$name")/120"
    got=$(nm_in "$(app "$h" "$name")" ip -6 -o addr show dev eth0 scope global | awk '{ print $4 }')
    [ "$got" = "$want" ] || { echo "FAIL: $name on host $h has '$got', the table says $want"; dump_logs; exit 1; }
  done
done
head -c 100000000 /dev/urandom >"$work/big"
for h in 1 2; do
  serve_web "$h" || exit 1
  nm_spawn "$prefix" "iperf$h" "$(app "$h" myapp1)" "$(nm_state "$prefix")/iperf$h.log" \
    iperf3 -s -p 5201 || exit 1
  nm_wait_listen "$(app "$h" myapp1)" 5201 || exit 1
done

case $case_name in
  curl_rr)
    out=$(fetch6 2 fdff:2000::1)
    check "curl -6 through the RR ServiceIP from host 2 reaches a web instance ($out)" \
      test "$out" = web-h1 -o "$out" = web-h2
    seen=$(for k in 1 2 3 4; do fetch6 2 fdff:2000::1; echo; done | tr '\n' ' ')
    check "new IPv6 flows through RR take the instances in turn ($seen)" \
      test "$seen" = "web-h1 web-h2 web-h1 web-h2 " -o "$seen" = "web-h2 web-h1 web-h2 web-h1 "
    out=$(fetch6 2 fdff::1:1 5 /peer)
    check "the server sees the client's IPv6 InstanceNumber ServiceIP ($out)" test "$out" = fdff::2:2
    out=$(in_client 2 python3 "$here/service.py" udp-ask fdff:2000::1 8080)
    check "UDP over IPv6 through RR is answered from that ServiceIP ($out)" \
      test "${out%% *}" = web-h1 -o "${out%% *}" = web-h2
    out=$(fetch6 1 fdff:2000::2)
    check "Closest over IPv6 from host 1 picks host 1's instance ($out)" test "$out" = web-h1
    ;;
  instance)
    seen=$(for k in 1 2 3 4 5; do fetch6 2 fdff::1:1; echo; done | sort -u | tr '\n' ' ')
    check "fdff::1:1 always reaches host 1's instance ($seen)" test "$seen" = "web-h1 "
    seen=$(for k in 1 2 3 4 5; do fetch6 1 fdff::1:2; echo; done | sort -u | tr '\n' ' ')
    check "fdff::1:2 always reaches host 2's instance ($seen)" test "$seen" = "web-h2 "
    out=$(in_client 2 python3 "$here/service.py" udp-ask fdff::1:1 8080)
    check "UDP over IPv6 to an InstanceNumber ServiceIP is answered by it ($out)" test "$out" = "web-h1 ping"
    ;;
  iperf)
    for way in "" -R; do
      target=fdff::1:1
      out=$(in_client 2 iperf3 -6 -c "$target" -p 5201 -t 2 $way -J 2>&1)
      bps=$(jq -r '.end.sum_received.bits_per_second // 0' <<<"$out" 2>/dev/null)
      check "iperf3 -6 $way TCP through $target moves data ($bps bit/s)" \
        /usr/bin/python3 -c "import sys; sys.exit(0 if float('${bps:-0}') > 1e6 else 1)"
      out=$(in_client 2 iperf3 -6 -u -b 50M -c "$target" -p 5201 -t 2 $way -J 2>&1)
      pkts=$(jq -r '.end.sum.packets // 0' <<<"$out" 2>/dev/null)
      lost=$(jq -r '.end.sum.lost_percent // 100' <<<"$out" 2>/dev/null)
      check "iperf3 -6 $way UDP through $target arrives ($pkts datagrams, $lost % lost)" \
        /usr/bin/python3 -c "import sys; sys.exit(0 if int('${pkts:-0}') > 100 and float('${lost:-100}') < 20 else 1)"
    done
    ;;
  transfer)
    off=$(nm_api "$prefix" 1 GET /status | jq -r .offloads)
    check "host 1 runs with offloads ($off)" bash -c "[[ '$off' == *tso6* ]]"
    check "host 2 runs without ($(nm_api "$prefix" 2 GET /status | jq -r .offloads))" \
      test "$(nm_api "$prefix" 2 GET /status | jq -r .offloads)" = off
    want=$(sha256sum <"$work/big" | cut -d' ' -f1)
    got=$(fetch6 2 fdff::1:1 90 /big | sha256sum | cut -d' ' -f1)
    check "100 MB over IPv6 from the offloading host to the plain one arrive byte-exact" test "$got" = "$want"
    got=$(fetch6 1 fdff::1:2 90 /big | sha256sum | cut -d' ' -f1)
    check "100 MB over IPv6 from the plain host to the offloading one arrive byte-exact" test "$got" = "$want"
    out=$(in_client 1 iperf3 -6 -u -b 100M -l 1300 -c fdff::1:2 -p 5201 -t 2 -J 2>&1)
    pkts=$(jq -r '.end.sum.packets // 0' <<<"$out" 2>/dev/null)
    check "UDP over IPv6 into the plain host arrives (${pkts:-no} datagrams${pkts:+}; ${out:0:120})" \
      test "${pkts:-0}" -gt 100
    for h in 1 2; do
      for name in myapp1 myapp2; do
        n=$(csum_errors "$(app "$h" "$name")")
        check "no TCP or UDP6 checksum errors in host $h's $name ($n)" test "$n" -eq 0
      done
    done
    ;;
  mixed)
    want=$(sha256sum <"$work/big" | cut -d' ' -f1)
    in_client 2 curl -4 -sS --max-time 90 "http://10.30.1.1:8080/big" -o "$work/got4" &
    v4=$!
    in_client 2 curl -6 -sS --max-time 90 "http://[fdff::1:1]:8080/big" -o "$work/got6" &
    v6=$!
    wait $v4; r4=$?
    wait $v6; r6=$?
    check "the IPv4 transfer (curl exit $r4) arrives byte-exact" \
      test "$(sha256sum <"$work/got4" | cut -d' ' -f1)" = "$want"
    check "the IPv6 transfer of the same client at the same time (curl exit $r6) arrives byte-exact" \
      test "$(sha256sum <"$work/got6" | cut -d' ' -f1)" = "$want"
    out=$(in_client 2 python3 "$here/service.py" udp-ask 10.30.1.1 8080)
    check "and UDP over IPv4 still answers ($out)" test "$out" = "web-h1 ping"
    ;;
  pmtu)
    # Host 1's routes to its two namespaces (TUN -> bridge) get MTU 1300: its kernel answers a
    # 1450-byte packet with an ICMPv6 packet too big, which reaches the sender only if both agents
    # carry it back through the flow (quote and outer addresses translated). Two separate pairs
    # of namespaces, so that one sender's lowered path MTU does not shrink the other's MSS.
    for name in myapp1 myapp2; do
      nm_in "$prefix-h1" ip -6 route add "$(nm_seed_nsip6 1 $name)/128" dev "${prefix}1br" mtu 1300 ||
        exit 1
    done
    too_big() { nm_in "$prefix-h1" nstat -az Icmp6OutPktTooBigs | awk '/Icmp6OutPktTooBigs/ { print $2 }'; }
    out=$(in_client 2 iperf3 -6 -c fdff::1:1 -p 5201 -n 10M -J 2>&1)
    bytes=$(jq -r '.end.sum_sent.bytes // 0' <<<"$out" 2>/dev/null)
    check "iperf3 -6 -n 10M from host 2's client into host 1's narrower hop completes (${bytes:-0} bytes)" \
      test "${bytes:-0}" -ge 10485760
    sent=$(too_big)
    check "host 1's kernel did answer packets too big ($sent)" test "${sent:-0}" -gt 0
    route=$(in_client 2 ip -6 route get fdff::1:1)
    check "the client's route cache holds the lowered path MTU ($route)" \
      bash -c "[[ '$route' == *' mtu 1300 '* ]]"
    head -c 1000000 /dev/urandom >"$work/mb"
    want=$(sha256sum <"$work/mb" | cut -d' ' -f1)
    got=$(fetch6 1 fdff::1:2 30 /mb | sha256sum | cut -d' ' -f1)
    check "1 MB fetched with curl -6 by host 1's client through its narrower hop arrives byte-exact" \
      test "$got" = "$want"
    check "more packets too big were answered ($(too_big) after $sent)" test "$(too_big)" -gt "$sent"
    route=$(nm_in "$(app 2 myapp1)" ip -6 route get fdff::2:1)
    check "the server's route cache holds the lowered path MTU ($route)" \
      bash -c "[[ '$route' == *' mtu 1300 '* ]]"
    ;;
  underlay)
    for h in 1 2; do nm_in "$prefix-h$h" ip link set ul0 mtu 1400 || exit 1; done
    too_big() { metric "$1" netmanager_packets_too_big_total; }
    refused() { metric "$1" 'netmanager_drops_total{reason="udp_send_error"}'; }
    b1=$(too_big 1) b2=$(too_big 2)
    out=$(in_client 2 timeout 60 iperf3 -6 -c fdff::1:1 -p 5201 -n 10M -J 2>&1)
    bytes=$(jq -r '.end.sum_sent.bytes // 0' <<<"$out" 2>/dev/null)
    rate=$(jq -r '.end.sum_received.bits_per_second // 0 | floor' <<<"$out" 2>/dev/null)
    check "iperf3 -6 -n 10M from host 2 across the 1400-byte underlay completes (${bytes:-0} bytes, ${rate:-?} bit/s)" \
      test "${bytes:-0}" -ge 10485760
    check "host 2's agent answered packets too big ($b2 -> $(too_big 2))" test "$(too_big 2)" -gt "$b2"
    route=$(in_client 2 ip -6 route get fdff::1:1)
    check "the IPv6 client's route cache holds the tunnel's path MTU over 1400, 1372 ($route)" \
      bash -c "[[ '$route' == *' mtu 1372 '* ]]"
    out=$(in_client 1 timeout 60 iperf3 -c 10.30.1.2 -p 5201 -n 10M -J 2>&1)
    bytes=$(jq -r '.end.sum_sent.bytes // 0' <<<"$out" 2>/dev/null)
    rate=$(jq -r '.end.sum_received.bits_per_second // 0 | floor' <<<"$out" 2>/dev/null)
    check "IPv4 iperf3 -n 10M from host 1 across it completes (${bytes:-0} bytes, ${rate:-?} bit/s)" \
      test "${bytes:-0}" -ge 10485760
    check "host 1's agent answered fragmentation needed ($b1 -> $(too_big 1))" test "$(too_big 1)" -gt "$b1"
    route=$(in_client 1 ip route get 10.30.1.2)
    check "the IPv4 client's route cache holds 1372 ($(tr '\n' ' ' <<<"$route"))" \
      bash -c "[[ '$(tr '\n' ' ' <<<"$route")' == *'mtu 1372'* ]]"
    b2=$(too_big 2)
    head -c 1000000 /dev/urandom >"$work/mb"
    want=$(sha256sum <"$work/mb" | cut -d' ' -f1)
    got=$(fetch6 1 fdff::1:2 30 /mb | sha256sum | cut -d' ' -f1)
    check "1 MB fetched with curl -6 from host 2's server across it arrives byte-exact" test "$got" = "$want"
    check "host 2's agent told its server too ($b2 -> $(too_big 2))" test "$(too_big 2)" -gt "$b2"
    check "sends refused as too big stayed few (host 1: $(refused 1), host 2: $(refused 2))" \
      test "$(($(refused 1) + $(refused 2)))" -lt 20
    ;;
  fragments)
    # 3000 bytes exceed the path MTU of 1450: the client's kernel sends each datagram as a first
    # fragment (with the UDP header) and a later one (without), the server's echo likewise.
    forwarded() { metric "$1" netmanager_fragments_forwarded_total; }
    dropped() { metric 2 'netmanager_drops_total{reason="fragment"}'; }
    f1=$(forwarded 1) f2=$(forwarded 2) d=$(dropped)
    out=$(in_client 2 python3 "$here/service.py" udp-ask fdff::1:1 8080 0 3000)
    check "a fragmented 3000-byte datagram to an InstanceNumber ServiceIP arrives whole and so does its echo ($out)" \
      test "$out" = "web-h1 3000 intact"
    check "host 2 sent the request's later fragment on ($f2 -> $(forwarded 2))" test "$(forwarded 2)" -gt "$f2"
    check "host 1 sent the echo's later fragment on ($f1 -> $(forwarded 1))" test "$(forwarded 1)" -gt "$f1"
    f1=$(forwarded 1) f2=$(forwarded 2)
    out=$(in_client 2 python3 "$here/service.py" udp-ask fdff:2000::1 8080 0 3000 2>&1)
    check "a fragmented datagram to the RR ServiceIP arrives whole and so does its echo, from the ServiceIP ($out)" \
      bash -c "[[ '$out' =~ ^web-h[12]' 3000 intact'$ ]]"
    check "host 2 sent the request's later fragment the way of its first and gave the echo's its source ($f2 -> $(forwarded 2))" \
      test "$(forwarded 2)" -ge $((f2 + 2))
    check "no fragment was dropped ($d -> $(dropped))" test "$(dropped)" -eq "$d"
    out=$(in_client 2 python3 "$here/service.py" udp-ask fdff:2000::1 8080 0 1000)
    check "an unfragmented 1000-byte datagram through RR still arrives whole ($out)" \
      bash -c "[[ '$out' =~ ^web-h[12]' 1000 intact'$ ]]"
    ;;
  *)
    echo "unknown case $case_name"; exit 2 ;;
esac
[ "$failures" -eq 0 ] || dump_logs
exit $((failures > 0))
