#!/usr/bin/env bash
# Closest by measured round trips (issue 22), on three simulated hosts joined by a delay line
# (testenv/delay_line.py; the kernel has no netem):  closest_rtt.sh CASE
# Service web has instances on host 1 (myapp1, 10.18.1.12) and host 2 (10.18.2.12) behind the
# Closest ServiceIP 10.30.0.2; the client (myapp2, 10.18.3.15) is on host 3, which has no web
# instance. Each host's port of the delay line adds its one-way delay in both directions, so
# with h1 10 ms, h2 1 ms, h3 0 ms host 1 is 20 ms and host 2 2 ms away from host 3. The agents
# probe every second (--rtt-probe-interval 1000).
prefix="c$(($$ % 100000))"
source "$(dirname "$0")/common.sh"

fetch() { nm_in "$(app 3 myapp2)" curl -sS --max-time 5 "http://10.30.0.2:8080/id"; }
udp_from() { nm_in "$(app 3 myapp2)" python3 "$here/service.py" udp-ask 10.30.0.2 8080 "$1"; }
status_of() { nm_api "$prefix" "$1" GET /status; }
# peer HOST NODE FIELD: that field of host's rtt.peers entry for node (null when absent)
peer() {
  status_of "$1" | python3 -c '
import json, sys
node, field = sys.argv[1], sys.argv[2]
peers = {p["node_ip"]: p for p in json.load(sys.stdin).get("rtt", {}).get("peers", [])}
print(json.dumps(peers.get(node, {}).get(field)))' "$(nm_underlay_ip "$2")" "$3"
}
measured() { [ "$(peer 3 1 state)" = '"measured"' ] && [ "$(peer 3 2 state)" = '"measured"' ]; }
host1_stale() { [ "$(peer 3 1 state)" = '"stale"' ]; }
goes_to_host1() { [ "$(fetch)" = web-h1 ]; }
report() {  # the estimates host 3 reports, next to the emulated round trips
  echo "emulated: host 1 $1 ms, host 2 $2 ms; host 3 reports: host 1 $(peer 3 1 rtt_ms) ms" \
    "(last sample $(peer 3 1 last_sample_ms), $(peer 3 1 probe_replies) probe replies," \
    "$(peer 3 1 passive_samples) passive), host 2 $(peer 3 2 rtt_ms) ms (last sample" \
    "$(peer 3 2 last_sample_ms), $(peer 3 2 probe_replies) probe replies, $(peer 3 2 passive_samples) passive)"
}
near_now() { between "$(peer 3 "$1" rtt_ms)" "$2" "$3"; }
near() {  # near HOST MS LOW HIGH: host 3's estimate of HOST lies in LOW..HIGH ms (emulated: MS)
  # The estimate is smoothed: a sample delayed by a loaded machine takes a few probes (one a
  # second) to fade, so it may settle within 10 s.
  wait_until 10 near_now "$1" "$3" "$4"
  check "host 3 reports host $1 near its emulated $2 ms ($(peer 3 "$1" rtt_ms))" near_now "$1" "$3" "$4"
}
between() { python3 -c 'import sys; v = sys.argv[1]; sys.exit(0 if v != "null" and float(sys.argv[2]) <= float(v) <= float(sys.argv[3]) else 1)' "$@"; }

NM_UNDERLAY=delay nm_hosts_up "$prefix" 3 || exit 1
nm_delay_line_start "$prefix" || exit 1
case $case_name in
  turns) nm_delay_set "$prefix" "h1 10 noecho" "h2 1 noecho" "h3 0" ;;
  *) nm_delay_set "$prefix" "h1 10" "h2 1" "h3 0" ;;
esac
table="$(nm_state "$prefix")/table.json"
python3 - "$table" "$NM_TUNNEL_PORT" <<'PY' || exit 1
import json, sys
path, port = sys.argv[1], int(sys.argv[2])
def entry(service, instance, host, octet, ips):
    return {"appname": "app", "appns": "ns", "servicename": service, "servicenamespace": "default",
            "instancenumber": instance, "nodeip": f"10.250.0.{host}", "nodeport": port,
            "nsip": f"10.18.{host}.{octet}",
            "serviceip": [{"IpType": t, "Address": a} for t, a in ips]}
table = [entry("web", 0, 1, 12, [("InstanceNumber", "10.30.1.1"), ("Closest", "10.30.0.2")]),
         entry("web", 1, 2, 12, [("InstanceNumber", "10.30.1.2"), ("Closest", "10.30.0.2")]),
         entry("client", 0, 3, 15, [("InstanceNumber", "10.30.2.3")])]
json.dump(table, open(path, "w"), indent=1)
PY
for h in 1 2 3; do
  nm_agent_start "$prefix" "$h" "$table" --rtt-probe-interval 1000 || { dump_logs; exit 1; }
done
for h in 1 2; do
  nm_app_deploy "$prefix" "$h" myapp1 "$NM_SEED_WEB" $((h - 1)) "10.18.$h.12" || { dump_logs; exit 1; }
  serve_web "$h" || exit 1
done
nm_app_deploy "$prefix" 3 myapp2 "$NM_SEED_CLIENT" 0 10.18.3.15 || exit 1

case $case_name in
  swap)
    check "host 3 measures both web hosts within 10 s" wait_until 10 measured
    # The estimate is the least of three samples: one reply alone may carry a scheduling delay.
    three_replies() { [ "$(peer 3 1 probe_replies)" -ge 3 ] 2>/dev/null && [ "$(peer 3 2 probe_replies)" -ge 3 ] 2>/dev/null; }
    check "and has three probe replies from each within 10 s more" wait_until 10 three_replies
    report 20 2
    near 1 20 18 30
    near 2 2 1.5 6
    seen=$(for k in 1 2 3 4 5 6; do fetch; echo; done | sort | uniq -c | tr -s ' \n' ' ')
    check "new flows to the Closest ServiceIP from host 3 go to host 2, 2 ms away ($seen)" test "$seen" = " 6 web-h2 "
    # A connection opened now asks for its answer only after the swap has been followed.
    held="$(nm_state "$prefix")/held.out"
    nm_spawn "$prefix" held "$(app 3 myapp2)" "$held" \
      python3 "$here/service.py" tcp-later 10.30.0.2 8080 20 || exit 1
    check "a TCP connection is opened before the swap" wait_until 10 grep -q connected "$held"

    nm_delay_set "$prefix" "h1 1" "h2 10" "h3 0"
    start=$(date +%s.%N)
    wait_until 15 goes_to_host1
    took=$(python3 -c "import sys, time; print(round(time.time() - float(sys.argv[1]), 1))" "$start")
    check "after the delays swap, new flows go to host 1 within the re-measurement period (${took} s <= 10 s)" \
      python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) <= 10 else 1)" "$took"
    sleep 5  # let the estimates settle for the report
    report 2 20
    near 1 2 1.5 6
    near 2 20 15 30
    seen=$(for k in 1 2 3 4 5 6; do fetch; echo; done | sort | uniq -c | tr -s ' \n' ' ')
    check "new flows now all go to host 1 ($seen)" test "$seen" = " 6 web-h1 "
    fresh=$(udp_from 40002)
    check "a new UDP flow goes to host 1 as well ($fresh)" test "$fresh" = "web-h1 ping"
    wait_until 25 grep -q web "$held"
    check "the TCP connection opened before the swap kept its instance on host 2 ($(tr '\n' ' ' <"$held"))" \
      grep -qx web-h2 "$held"
    check "/metrics shows the estimate of each peer" test \
      "$(nm_api "$prefix" 3 GET /metrics | grep -c '^netmanager_peer_rtt_seconds{node="10.250.0.[12]"}')" = 2
    ;;
  turns)
    # No ICMP through host 1's and host 2's ports, and UDP carries no handshake: nothing measured.
    sleep 3
    seen=$(for p in 41001 41002 41003 41004 41005 41006; do udp_from "$p"; done | tr '\n' ' ')
    check "with no local and no measured instance, new flows take turns ($seen)" test \
      "$seen" = "web-h1 ping web-h2 ping web-h1 ping web-h2 ping web-h1 ping web-h2 ping " -o \
      "$seen" = "web-h2 ping web-h1 ping web-h2 ping web-h1 ping web-h2 ping web-h1 ping "
    check "host 3 probed both nodes and none answered ($(peer 3 1 probes_sent), $(peer 3 2 probes_sent) sent)" \
      test "$(peer 3 1 state)$(peer 3 2 state)" = '"unmeasured""unmeasured"' -a "$(peer 3 1 probes_sent)" -ge 2 \
      -a "$(peer 3 2 probe_replies)" = 0
    # Both answer, host 1 2 ms and host 2 20 ms away: host 1 wins.
    nm_delay_set "$prefix" "h1 1" "h2 10" "h3 0"
    check "once they answer, both are measured" wait_until 5 measured
    seen=$(for p in 42001 42002 42003 42004; do udp_from "$p"; done | sort | uniq -c | tr -s ' \n' ' ')
    check "and new flows go to host 1, 2 ms away ($seen)" test "$seen" = " 4 web-h1 ping "
    # Host 1 stops answering: it ages out and ranks last, below host 2's 20 ms.
    nm_delay_set "$prefix" "h1 1 noecho" "h2 10" "h3 0"
    check "a node that stops answering ages out (stale within 8 s)" \
      wait_until 8 host1_stale
    check "and leaves /metrics' estimates" test \
      "$(nm_api "$prefix" 3 GET /metrics | grep -c '^netmanager_peer_rtt_seconds{node="10.250.0.1"}')" = 0
    seen=$(for p in 43001 43002 43003 43004; do udp_from "$p"; done | sort | uniq -c | tr -s ' \n' ' ')
    check "new flows go to host 2, 20 ms away, rather than the silent host 1 ($seen)" test "$seen" = " 4 web-h2 ping "
    ;;
  bounded)
    stats="$(nm_state "$prefix")/delayline.json"
    echoes() { python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["echo_requests"].get(sys.argv[2], 0))' "$stats" "$1"; }
    wait_until 10 measured
    a=$(echoes 10.250.0.3\>10.250.0.1); b=$(echoes 10.250.0.1\>10.250.0.3)
    sleep 12
    a=$(($(echoes 10.250.0.3\>10.250.0.1) - a)); b=$(($(echoes 10.250.0.1\>10.250.0.3) - b))
    check "host 3 probes host 1 about once a second, jittered ($a echo requests in 12 s: 8..17)" \
      test "$a" -ge 8 -a "$a" -le 17
    check "and host 1 probes host 3 as often ($b in 12 s)" test "$b" -ge 8 -a "$b" -le 17
    # A burst of handshakes: each shard keeps at most 64 samples between two collections (every
    # 250 ms here), the rest are counted as dropped.
    before=$(( $(peer 3 1 passive_samples) + $(peer 3 2 passive_samples) ))
    nm_in "$(app 3 myapp2)" python3 - <<'PY'
import socket, time
socks = []
for i in range(600):
    s = socket.socket(); s.setblocking(False)
    s.connect_ex(("10.30.0.2", 8080)); socks.append(s)
time.sleep(2)
for s in socks: s.close()
PY
    sleep 1.5
    taken=$(( $(peer 3 1 passive_samples) + $(peer 3 2 passive_samples) - before ))
    dropped=$(metric 3 netmanager_rtt_samples_dropped_total)
    # How many of the 600 SYNs complete a handshake within the burst depends on the server's
    # backlog and the machine's load (297 under ctest -j2 in CI): the check is that the burst
    # overflowed the 2 x 64 buffered samples and the excess was counted, not its exact size.
    check "600 handshakes at once: $taken passive samples taken, $dropped dropped at the cap" \
      test "$taken" -gt 0 -a "$dropped" -gt 0 -a $((taken + dropped)) -gt 128
    # The web server may still be draining the burst's 600 connections from its backlog: retry.
    fetches_web_h2() { [ "$(fetch 2>/dev/null)" = web-h2 ]; }
    check "and the agent carries on (a fetch through the ServiceIP answers web-h2 within 15 s)" \
      wait_until 15 fetches_web_h2
    ;;
  *) echo "unknown case $case_name"; exit 2 ;;
esac
[ "$failures" -eq 0 ] || dump_logs
exit "$failures"
