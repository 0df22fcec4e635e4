#!/usr/bin/env bash
# The node API is private (issue 19 point 3), on simulated hosts with real curl:  private_api.sh CASE
#   address: with --api-port alone the TCP API answers on the node's loopback only, not to an app
#            namespace at its gateway nor to another host on the underlay; exposed on 0.0.0.0
#            with --api-token-file it answers 401 without the token, 200 with it, and the unix
#            socket needs none.
#   claims:  a deployment may not take another job's ServiceIP nor map a host port the agent
#            listens on (409, nothing built); a deployment that claims neither is accepted.
prefix="p$(($$ % 100000))"
usage_cases="address|claims"
source "$(dirname "$0")/common.sh"

api_port=7070
host1=$(nm_host "$prefix" 1)
gateway=10.18.1.1
table="$(nm_state "$prefix")/table.json"
dump_logs() { tail -n 20 "$(nm_state "$prefix")"/*.log; }
tcp_status() {  # tcp_status NS URL [curl args...] -> HTTP status, or "refused" when curl cannot connect
  local ns=$1 url=$2 code
  shift 2
  code=$(nm_in "$ns" curl -s -o /dev/null -w '%{http_code}' --max-time 3 "$@" "$url")
  [ "$code" = 000 ] && code=refused
  echo "$code"
}

nm_hosts_up "$prefix" 2 || exit 1
nm_seed_table 2 "$table" || exit 1

case $case_name in
  address)
    nm_agent_start "$prefix" 1 "$table" --api-port "$api_port" || { dump_logs; exit 1; }
    nm_app_deploy "$prefix" 1 myapp2 "$NM_SEED_CLIENT" 0 "$(nm_seed_nsip 1 myapp2)" || exit 1
    app=$(nm_app_ns "$prefix" 1 myapp2)
    s=$(tcp_status "$host1" "http://127.0.0.1:$api_port/status")
    check "the TCP API answers on the node's loopback ($s)" test "$s" = 200
    s=$(tcp_status "$app" "http://$gateway:$api_port/status")
    check "an app namespace cannot reach the API at its gateway $gateway ($s)" test "$s" = refused
    s=$(tcp_status "$(nm_host "$prefix" 2)" "http://$(nm_underlay_ip 1):$api_port/status")
    check "another host cannot reach the API on the underlay ($s)" test "$s" = refused
    check "the log says where the API listens" \
      grep -q "serving the node API on 127.0.0.1:$api_port" "$(nm_state "$prefix")/agent1.log"
    nm_agent_stop "$prefix" 1

    # Exposed on purpose: then only with the token.
    token=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
    printf '%s\n' "$token" >"$work/token"
    chmod 600 "$work/token"
    nm_agent_start "$prefix" 1 "$table" --api-port "$api_port" --api-address 0.0.0.0 \
      --api-token-file "$work/token" || { dump_logs; exit 1; }
    nm_app_deploy "$prefix" 1 myapp2 "$NM_SEED_CLIENT" 0 "$(nm_seed_nsip 1 myapp2)" || exit 1
    url="http://$gateway:$api_port/status"
    s=$(tcp_status "$app" "$url")
    check "without a token the exposed API answers 401 ($s)" test "$s" = 401
    hdr=$(nm_in "$app" curl -s -D - -o /dev/null --max-time 3 "$url" | tr -d '\r' | grep -i '^www-authenticate:')
    check "the 401 names the Bearer scheme ($hdr)" test "$hdr" = "WWW-Authenticate: Bearer"
    s=$(tcp_status "$app" "$url" -H "Authorization: Bearer ${token}x")
    check "a wrong token is refused ($s)" test "$s" = 401
    s=$(tcp_status "$app" "http://$gateway:$api_port/netns/deploy" -X POST -H 'Content-Type: application/json' \
      -d '{"name":"x","serviceName":"app.ns.evil.default","instanceNumber":0}')
    check "a deploy without the token is refused before anything is built ($s)" test "$s" = 401
    check "  and no namespace was made" test ! -e "/run/netns/$(nm_app_ns "$prefix" 1 x)"
    s=$(tcp_status "$app" "$url" -H "Authorization: Bearer $token")
    check "the right token is answered ($s)" test "$s" = 200
    s=$(tcp_status "$app" "$url" -H "authorization: bearer $token")
    check "the header and scheme match case-insensitively ($s)" test "$s" = 200
    check "the unix socket needs no token" nm_api "$prefix" 1 GET /status
    mode=$(stat -c %a "$(nm_agent_socket "$prefix" 1)")
    check "the unix socket is root-only (mode $mode)" test "$mode" = 600
    nm_agent_stop "$prefix" 1

    nm_agent_start "$prefix" 1 "$table" --api-port "$api_port" --api-address 0.0.0.0 || { dump_logs; exit 1; }
    check "exposing the API without a token is warned about" \
      grep -q "without a token" "$(nm_state "$prefix")/agent1.log"
    ;;
  claims)
    nm_agent_start "$prefix" 1 "$table" --api-port "$api_port" || { dump_logs; exit 1; }
    before=$(nm_api "$prefix" 1 GET /table)
    out=$(nm_api "$prefix" 1 POST /netns/deploy \
      '{"name":"thief","serviceName":"evil.ns.steal.default","instanceNumber":0,"serviceIp":[{"IpType":"RR","Address":"10.30.0.1"}]}' 2>&1)
    check "claiming web's RR ServiceIP is refused with 409 naming its job ($out)" \
      grep -q '409\|belongs to app.ns.web.default' <<<"$out"
    check "  the error names the job that holds it" grep -q 'belongs to app.ns.web.default' <<<"$out"
    check "  no namespace was made" test ! -e "/run/netns/$(nm_app_ns "$prefix" 1 thief)"
    check "  the table is unchanged" test "$(nm_api "$prefix" 1 GET /table)" = "$before"

    # A process in a namespace of its own, as a container runtime leaves it for the node engine.
    nm_netns_add "$prefix" "$prefix-ctr" || exit 1
    nm_spawn "$prefix" ctr "$prefix-ctr" "$work/ctr.log" sleep 600 || exit 1
    pid=$NM_PID
    links_before=$(ip -n "$host1" -o link show | wc -l)
    for mapping in "$NM_TUNNEL_PORT/udp" "$api_port:80" "9000:80;$api_port" "53/udp" "9001:80;53:5300"; do
      out=$(nm_api "$prefix" 1 POST /container/deploy \
        "{\"pid\":$pid,\"serviceName\":\"app.ns.box.default\",\"instanceNumber\":0,\"portMappings\":\"$mapping\"}" 2>&1)
      check "mapping host port $mapping of the agent's own is refused ($out)" grep -q "is the .*'s" <<<"$out"
    done
    check "  no veth was made for the refused deploys" test "$(ip -n "$host1" -o link show | wc -l)" = "$links_before"
    check "  the process's namespace got no interface" test "$(ip -n "$prefix-ctr" -o link show | wc -l)" = 1
    out=$(nm_api "$prefix" 1 POST /container/deploy \
      "{\"pid\":$pid,\"serviceName\":\"app.ns.box.default\",\"instanceNumber\":0,\"portMappings\":\"9000:80;$NM_TUNNEL_PORT/tcp\"}" 2>&1)
    check "a deploy mapping free ports (the tunnel's number over TCP is free) is accepted ($out)" \
      grep -q '"nsAddress"' <<<"$out"
    out=$(nm_api "$prefix" 1 POST /netns/deploy \
      '{"name":"own","serviceName":"app.ns.web.default","instanceNumber":7,"serviceIp":[{"IpType":"RR","Address":"10.30.0.1"}]}' 2>&1)
    check "web's own new instance may carry web's RR ServiceIP ($out)" grep -q '"nsAddress"' <<<"$out"
    echo "$(nm_app_ns "$prefix" 1 own)" >>"$(nm_state "$prefix")/appns"
    ;;
  *)
    echo "unknown case $case_name"
    exit 2
    ;;
esac
((failures == 0)) || dump_logs
exit $((failures > 0))
