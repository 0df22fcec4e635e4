#!/usr/bin/env bash
# The IPv6 environment of a dual-stack node (issue 20 point 1), checked with the kernel's tools,
# ping -6 and curl -6:  ipv6_env.sh CASE
# Host 1's agent runs with --subnet6 fc00::100/120 and a static table holding a remote instance
# with IPv6 addresses; it deploys namespaces "one" (port mapping 8080) and "two".
#   namespaces    the deploy answers carry nsAddressv6 from the /120; each namespace has its
#                 address and IPv6 routes via the bridge; ping -6 reaches the bridge and the other
#                 namespace; the TUN has fcef::dead:beef/7 and the IPv6 routes; GET /table and
#                 GET /status show the IPv6 addresses
#   port_mapping  the port mapping answers curl -6 from host 2 at host 1's IPv6 underlay address
#   names         dig AAAA answers a job's ServiceIPs' Address_v6, NOERROR without records for
#                 names without one; mDNS answers on ff02::fb (docs/names.md)
#   leftovers     stopping the agent removes every IPv6 address and route, the ip6 table, the
#                 ip6tables FORWARD accepts and restores IPv6 forwarding; after kill -9 a new agent
#                 removes what the dead one left and starts clean
prefix="v$(($$ % 100000))"
source "$(dirname "$0")/common.sh"

host1=$prefix-h1
agent=$(nm_agent_prefix "$prefix" 1)
ns_one=$(nm_app_ns "$prefix" 1 one)
ns_two=$(nm_app_ns "$prefix" 1 two)
dump_logs() {
  tail_logs
  echo "--- host 1"; nm_in "$host1" ip -6 addr; nm_in "$host1" ip -6 route; nm_in "$host1" nft list ruleset
}
ping6() { nm_in "$1" ping -6 -n -q -c 1 -W 2 "$2" >/dev/null 2>&1; }
# deploy NAME INSTANCE [PORTMAPPINGS]: the answer's body
deploy() {
  echo "$(nm_app_ns "$prefix" 1 "$1")" >>"$(nm_state "$prefix")/appns"
  nm_api "$prefix" 1 POST /netns/deploy \
    "{\"name\":\"$1\",\"serviceName\":\"app.ns.web.default\",\"instanceNumber\":$2,\"portMappings\":\"${3:-}\"}"
}
# What of the agent's IPv6 state host 1 shows (addresses, routes, nft tables, FORWARD accepts).
v6_state() {
  nm_in "$host1" ip -6 -o addr show scope global | grep -v ' ul0 '
  nm_in "$host1" ip -6 route show | grep -e fc00 -e fdff -e fcef
  nm_in "$host1" nft list tables | grep netmanager_
  nm_in "$host1" nft list chain ip6 filter FORWARD | grep "netmanager_$agent"
  ls /run/netns | grep "^$agent-"
}
start_agent() {
  nm_agent_start "$prefix" 1 "$table" --subnet6 fc00::100/120 || { dump_logs; exit 1; }
}

nm_hosts_up "$prefix" 2 || exit 1
# Docker's hosts have ip6tables' FORWARD policy DROP: the agent's accepts must let the bridge through.
nm_in "$host1" ip6tables -P FORWARD DROP || { echo "FAIL: ip6tables -P FORWARD DROP"; exit 1; }
forwarding_before=$(nm_in "$host1" sysctl -n net.ipv6.conf.all.forwarding)
table="$(nm_state "$prefix")/table.json"
cat >"$table" <<EOF
[{"appname": "app", "appns": "ns", "servicename": "far", "servicenamespace": "default",
  "instancenumber": 0, "nodeip": "10.250.0.2", "nodeport": $NM_TUNNEL_PORT,
  "nsip": "10.18.2.12", "nsipv6": "fc00::202",
  "serviceip": [{"IpType": "RR", "Address": "10.30.0.9", "Address_v6": "fdff:2000::9"},
                {"IpType": "InstanceNumber", "Address": "10.30.1.9", "Address_v6": "fdff::9"}]}]
EOF
start_agent
one=$(deploy one 0 8080) || { echo "FAIL: deploy one: $one"; dump_logs; exit 1; }
two=$(deploy two 1) || { echo "FAIL: deploy two: $two"; dump_logs; exit 1; }

case $case_name in
  namespaces)
    check "the deploy answers carry nsAddressv6 from the node's /120 ($one; $two)" \
      test "$(jq -r .nsAddressv6 <<<"$one") $(jq -r .nsAddressv6 <<<"$two")" = "fc00::102 fc00::103"
    check "the bridge has base+1 of the /120" \
      grep -q "inet6 fc00::101/120" <<<"$(nm_in "$host1" ip -6 -o addr show dev "${agent}br")"
    addr=$(nm_in "$ns_one" ip -6 -o addr show dev eth0 scope global)
    check "namespace one has fc00::102/120 on eth0, without duplicate address detection ($addr)" \
      bash -c "grep -q 'inet6 fc00::102/120' <<<'$addr' && ! grep -q tentative <<<'$addr'"
    routes=$(nm_in "$ns_one" ip -6 route show)
    check "namespace one routes fc00::/7, fdff::/16 and its default via the bridge" \
      bash -c "grep -q 'fc00::/7 via fc00::101' <<<'$routes' && grep -q 'fdff::/16 via fc00::101' <<<'$routes' && grep -q 'default via fc00::101' <<<'$routes'"
    check "ping -6 from namespace one reaches the bridge" ping6 "$ns_one" fc00::101
    check "ping -6 from namespace one reaches namespace two" ping6 "$ns_one" fc00::103
    check "ping -6 from namespace two reaches namespace one" ping6 "$ns_two" fc00::102
    check "namespace one has its IPv4 address as before" \
      grep -q "inet 10.18.1.2/26" <<<"$(nm_in "$ns_one" ip -4 -o addr show dev eth0)"
    check "the TUN has fcef::dead:beef/7" \
      grep -q "inet6 fcef::dead:beef/7" <<<"$(nm_in "$host1" ip -6 -o addr show dev "${agent}tun")"
    check "the IPv6 ServiceIPs go to the TUN" \
      grep -q "dev ${agent}tun" <<<"$(nm_in "$host1" ip -6 route get fdff:2000::9)"
    check "other nodes' namespaces go to the TUN, this node's to the bridge" \
      bash -c "nsenter --net=/run/netns/$host1 ip -6 route get fc00::202 | grep -q 'dev ${agent}tun' &&
               nsenter --net=/run/netns/$host1 ip -6 route get fc00::103 | grep -q 'dev ${agent}br'"
    check "IPv6 forwarding is on" test "$(nm_in "$host1" sysctl -n net.ipv6.conf.all.forwarding)" = 1
    entries=$(nm_api "$prefix" 1 GET /table)
    check "GET /table shows the deployed instance's nsipv6" \
      test "$(jq -r '.[] | select(.servicename == "web" and .instancenumber == 0) | .nsipv6' <<<"$entries")" = fc00::102
    check "GET /table shows the static table's nsipv6 and Address_v6" \
      test "$(jq -r '.[] | select(.servicename == "far") | .nsipv6 + " " + .serviceip[0].Address_v6' <<<"$entries")" = "fc00::202 fdff:2000::9"
    check "GET /status shows the instances' nsAddressv6" \
      test "$(nm_api "$prefix" 1 GET /status | jq -r '[.instances[].nsAddressv6] | sort | join(" ")')" = "fc00::102 fc00::103"
    ;;
  port_mapping)
    nm_in "$host1" ip addr add fd50::1/64 dev ul0 nodad &&
      nm_in "$prefix-h2" ip addr add fd50::2/64 dev ul0 nodad || { echo "FAIL: IPv6 underlay"; exit 1; }
    mkdir -p "$work/www" && echo web-v6 >"$work/www/id"
    nm_spawn "$prefix" web "$ns_one" "$(nm_state "$prefix")/web.log" \
      python3 -m http.server 8080 --bind :: --directory "$work/www" || exit 1
    nm_wait_listen "$ns_one" 8080 || exit 1
    out=$(nm_in "$prefix-h2" curl -6 -sS --max-time 5 "http://[fd50::1]:8080/id" 2>&1)
    check "curl -6 from host 2 to host 1's port 8080 reaches namespace one ($out)" test "$out" = web-v6
    out=$(nm_in "$prefix-h2" curl -4 -sS --max-time 5 "http://10.250.0.1:8080/id" 2>&1)
    check "and curl -4 to the same port too ($out)" test "$out" = web-v6
    check "the ip6 table maps 8080 to fc00::102" \
      grep -q "8080 : fc00::102 . 8080" <<<"$(nm_in "$host1" nft list table ip6 "netmanager_$agent")"
    nm_api "$prefix" 1 POST /netns/undeploy '{"serviceName":"app.ns.web.default","instanceNumber":0}' >/dev/null
    out=$(nm_in "$prefix-h2" curl -6 -sS --max-time 2 "http://[fd50::1]:8080/id" 2>&1)
    check "after undeploy the port no longer answers ($out)" test "$out" != web-v6
    ;;
  leftovers)
    check "while it runs, the bridge is accepted in ip6tables' FORWARD chain" \
      grep -q "iifname \"${agent}br\"" <<<"$(nm_in "$host1" nft list chain ip6 filter FORWARD)"
    check "and its ip6 table exists" grep -q "table ip6 netmanager_$agent" <<<"$(nm_in "$host1" nft list tables)"
    nm_agent_stop "$prefix" 1
    left=$(v6_state)
    check "a stopped agent leaves no IPv6 address, route, table, accept or namespace ('$left')" test -z "$left"
    check "and IPv6 forwarding is as it was" \
      test "$(nm_in "$host1" sysctl -n net.ipv6.conf.all.forwarding)" = "$forwarding_before"

    start_agent
    deploy one 0 8080 >/dev/null && deploy two 1 >/dev/null || { echo "FAIL: deploy again"; exit 1; }
    read -r pid _ <"$(nm_state "$prefix")/pids/agent1"
    kill -KILL "$pid"
    nm_stop "$prefix" agent1
    check "kill -9 leaves the ip6 table behind" grep -q "table ip6 netmanager_$agent" <<<"$(nm_in "$host1" nft list tables)"
    start_agent
    log="$(nm_state "$prefix")/agent1.log"
    check "a new agent removes the dead one's ip6 table" grep -q "removed leftover.*table ip6 netmanager_$agent" "$log"
    check "and its namespaces" grep -q "removed leftover.*namespace $ns_one" "$log"
    check "and its ip6tables accepts" grep -q "rules tagged netmanager_$agent" "$log"
    accepts=$(nm_in "$host1" nft list chain ip6 filter FORWARD | grep -c "netmanager_$agent")
    check "the new agent has exactly its own two accepts ($accepts)" test "$accepts" = 2
    one=$(deploy one 0 8080)
    check "and deploys again from the start of the /120 ($one)" test "$(jq -r .nsAddressv6 <<<"$one")" = fc00::102
    nm_agent_stop "$prefix" 1
    left=$(v6_state)
    check "stopped again, nothing of it is left ('$left')" test -z "$left"
    ;;
  names)
    far=far.default.app.ns.local
    dig1() { nm_in "$ns_one" dig +time=2 +tries=1 @10.18.1.1 "$@"; }
    short() { dig1 +short "$@" | tr '\n' ' ' | sed 's/ $//'; }
    status() { dig1 "$@" | sed -n 's/.*status: \([A-Z]*\),.*/\1/p'; }
    check "dig AAAA of far's RR name is its Address_v6 ($(short AAAA $far))" test "$(short AAAA $far)" = fdff:2000::9
    check "dig AAAA of instance-0.far is the instance's Address_v6" test "$(short AAAA instance-0.$far)" = fdff::9
    check "dig +tcp AAAA the same" test "$(short +tcp AAAA instance-0.$far)" = fdff::9
    check "dig A of far is still its IPv4 ServiceIP" test "$(short A $far)" = 10.30.0.9
    check "dig AAAA of closest.far (no Closest ServiceIP) is NOERROR without records" \
      test "$(status AAAA closest.$far)/$(short AAAA closest.$far)" = NOERROR/
    check "dig AAAA of a deployed job without IPv6 ServiceIPs is NOERROR without records" \
      test "$(status AAAA web.default.app.ns.local)/$(short AAAA web.default.app.ns.local)" = NOERROR/
    check "dig AAAA of an instance the table lacks is NXDOMAIN" test "$(status AAAA instance-3.$far)" = NXDOMAIN
    probe() { nm_in "$ns_one" /usr/bin/python3 "$here/mdns_probe.py" "$@"; }
    out=$(probe -6 --aaaa qm $far)
    check "mDNS over IPv6: a QM question to ff02::fb is answered to the group ($out)" test "$out" = "ff02::fb fdff:2000::9"
    out=$(probe -6 qm instance-0.$far $far)
    check "  two A questions in one query, both answered ($out)" test "$out" = "ff02::fb 10.30.1.9 10.30.0.9"
    out=$(probe -6 --aaaa qu instance-0.$far)
    check "  a QU question is answered by unicast to the asker ($out)" \
      bash -c "[[ '$out' =~ ^(fc00::102|fe80:.*)\ fdff::9$ ]]"
    out=$(probe -6 --aaaa qm someone-else.local)
    check "  a name that is not ours gets no response ($out)" test "$out" = none
    ;;
  *)
    echo "unknown case $case_name"
    exit 2
    ;;
esac
[ "$failures" -eq 0 ] || dump_logs
exit $((failures > 0))
