#!/usr/bin/env bash
# Node egress and forwarding under a host firewall:  node_egress.sh CASE
# Two simulated hosts with the seed's agents and app namespaces (testenv/lib.sh). Host 1 also
# has an uplink `up0` to a "server" namespace on the far side (10.251.0.2), which is host 1's
# default route; the agents run with DefaultInterface empty, so host 1's must find up0 itself.
#   egress        an app namespace reaches the server, which sees host 1's address
#   forward_drop  the same, and cross-host ServiceIP traffic, with iptables' FORWARD policy DROP
#                 (iptables-nft, as Docker leaves it) on both hosts; stopping the agents leaves
#                 the hosts' iptables exactly as they were
prefix="e$(($$ % 100000))"
source "$(dirname "$0")/common.sh"

server=$prefix-srv
ask() { in_client "$1" curl -sS --max-time 5 "http://$2:8080${3:-/id}"; }
iptables_in() { nm_in "$prefix-h$1" iptables "${@:2}"; }
dump_logs() {
  tail_logs
  for f in 1 2; do echo "--- host $f ruleset"; nm_in "$prefix-h$f" nft list ruleset; done
}

nm_hosts_up "$prefix" 2 || exit 1
# The server namespace and host 1's uplink to it.
nm_netns_add "$prefix" "$server" || exit 1
ip -n "$prefix-h1" link add up0 type veth peer name eth0 netns "$server" &&
  ip -n "$prefix-h1" addr add 10.251.0.1/24 dev up0 && ip -n "$prefix-h1" link set up0 up &&
  ip -n "$server" addr add 10.251.0.2/24 dev eth0 && ip -n "$server" link set eth0 up &&
  ip -n "$prefix-h1" route add default via 10.251.0.2 || { echo "FAIL: uplink setup"; exit 1; }

if [ "$case_name" = forward_drop ]; then
  for h in 1 2; do iptables_in "$h" -P FORWARD DROP || { echo "FAIL: iptables -P FORWARD DROP"; exit 1; }; done
  before1=$(iptables_in 1 -S FORWARD)
  before2=$(iptables_in 2 -S FORWARD)
fi
nm_seed_up "$prefix" 2 || { dump_logs; exit 1; }
mkdir -p "$work/www"
nm_spawn "$prefix" server "$server" "$(nm_state "$prefix")/server.log" \
  python3 "$here/service.py" serve 8080 server "$work/www" || exit 1
nm_wait_listen "$server" 8080 || exit 1
for h in 1 2; do
  serve_web "$h" "$work/www" || exit 1
done

table=$(nm_in "$prefix-h1" nft list table ip "netmanager_$(nm_agent_prefix "$prefix" 1)")
check "host 1's agent masquerades its subnet out of up0, the default route's link" \
  grep -q "oifname \"up0\" ip saddr .* masquerade" <<<"$table"
out=$(nm_api "$prefix" 1 GET /status | jq -r .uplink)
check "and says so in its status ($out)" test "$out" = up0
out=$(nm_api "$prefix" 2 GET /status | jq -r .uplink)
check "host 2, without a default route, masquerades nowhere ('$out')" test -z "$out"
out=$(ask 1 10.251.0.2 /peer)
check "an app namespace reaches the server beyond host 1, which sees host 1's address ($out)" \
  test "$out" = 10.251.0.1

if [ "$case_name" = forward_drop ]; then
  tag="netmanager_$(nm_agent_prefix "$prefix" 1)"
  br="$(nm_agent_prefix "$prefix" 1)br"
  rules=$(iptables_in 1 -S FORWARD 2>&1)
  check "host 1's FORWARD chain, still readable by iptables, accepts its bridge ($(tr '\n' ' ' <<<"$rules"))" \
    grep -q -- "-A FORWARD -i $br -m comment --comment $tag -j ACCEPT" <<<"$rules"
  out=$(ask 2 "$NM_SEED_WEB_RR")
  check "TCP through the RR ServiceIP crosses hosts ($out)" test "$out" = web-h1 -o "$out" = web-h2
  out=$(ask 2 "$(nm_seed_web_ip 1)")
  check "host 2 reaches host 1's instance through its InstanceNumber ServiceIP ($out)" test "$out" = web-h1
  out=$(ask 1 "$(nm_seed_web_ip 2)")
  check "host 1 reaches host 2's instance through its InstanceNumber ServiceIP ($out)" test "$out" = web-h2
  # Control: without the agent's accept rules the DROP policy stops the same traffic.
  for dir in -i -o; do iptables_in 1 -D FORWARD "$dir" "$br" -m comment --comment "$tag" -j ACCEPT; done
  check "without host 1's accept rules, host 2 no longer reaches host 1's instance" \
    bash -c "! nsenter --net=/run/netns/$(app 2 myapp2) curl -sS --max-time 2 http://$(nm_seed_web_ip 1):8080/id 2>/dev/null"
  check "nor does egress work" \
    bash -c "! nsenter --net=/run/netns/$(app 1 myapp2) curl -sS --max-time 2 http://10.251.0.2:8080/peer 2>/dev/null"
  # Put back as the agent wrote them (iptables -I would write the comment in its own form).
  for dir in oifname iifname; do
    nm_in "$prefix-h1" nft insert rule ip filter FORWARD "$dir" "\"$br\"" counter accept comment "\"$tag\""
  done
  out=$(ask 2 "$(nm_seed_web_ip 1)")
  check "with them back it works again ($out)" test "$out" = web-h1

  nm_seed_down "$prefix"
  check "after the agents stop, host 1's FORWARD chain is as before ($(iptables_in 1 -S FORWARD | tr '\n' ' '))" \
    test "$(iptables_in 1 -S FORWARD)" = "$before1"
  check "and host 2's" test "$(iptables_in 2 -S FORWARD)" = "$before2"
  for h in 1 2; do
    check "no nftables table of the agent is left in host $h" \
      bash -c "! nsenter --net=/run/netns/$prefix-h$h nft list tables | grep -q netmanager_"
  done
fi

if [ "$failures" -gt 0 ]; then
  dump_logs
  exit 1
fi
