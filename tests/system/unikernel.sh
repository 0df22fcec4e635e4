#!/usr/bin/env bash
# A unikernel deployed through POST /unikernel/deploy, its guest behind the agent's tap0, reached
# from another host through the job's ServiceIPs:  unikernel.sh CASE
# Two simulated hosts with the seed's agents and app namespaces (testenv/lib.sh). Host 1 deploys
# job app.ns.uk<prefix>.default instance 0 as a unikernel; the guest is tap_guest.py on the
# agent's tap0 with a guest namespace's kernel as its network stack (192.168.1.2). Both hosts'
# tables learn the instance (nsip from the deploy answer) with InstanceNumber 10.30.3.1 and
# RR 10.30.0.5.
#   unikernel  deploy, traffic both ways through the NAT, a port mapping, failed deploys that
#              change nothing, undeploy (also of an unknown instance)
prefix="k$(($$ % 100000))"
source "$(dirname "$0")/common.sh"

job="app.ns.uk$prefix.default"
uk_ns="$job.instance.0"
guest=$prefix-guest
ask() { in_client "$1" curl -sS --max-time 5 "http://$2:8080${3:-/id}"; }
api_code() {  # api_code HOST PATH BODY -> HTTP status, body in $work/answer
  curl -sS -o "$work/answer" -w '%{http_code}' --max-time 10 --unix-socket "$(nm_agent_socket "$prefix" "$1")" \
    -H 'Content-Type: application/json' -d "$3" "http://nm$2"
}
dump_logs() {
  tail_logs
  [ -e "/run/netns/$uk_ns" ] && { echo "--- $uk_ns"; nm_in "$uk_ns" ip -br addr; nm_in "$uk_ns" nft list ruleset; }
}

nm_hosts_up "$prefix" 2 || exit 1
nm_seed_up "$prefix" 2 || { dump_logs; exit 1; }
echo "$uk_ns" >>"$(nm_state "$prefix")/appns"   # removed on exit should the agent not
mkdir -p "$work/www"
head -c 1048576 /dev/urandom >"$work/www/blob"
for h in 1 2; do
  serve_web "$h" "$work/www" || exit 1
done

code=$(api_code 1 /unikernel/deploy "{\"pid\":0,\"serviceName\":\"$job\",\"instanceNumber\":0,\"portMappings\":\"9090:8080\"}")
answer=$(cat "$work/answer")
check "POST /unikernel/deploy answers 200 ($code $answer)" test "$code" = 200
nsip=$(jq -r .nsAddress <<<"$answer")
check "with serviceName, nsAddress and nsAddressv6" \
  test "$(jq -r '[.serviceName, (.nsAddressv6 | type)] | join(" ")' <<<"$answer")" = "$job string" -a -n "$nsip"
check "the agent created namespace $uk_ns" test -e "/run/netns/$uk_ns"
check "with the instance's address on its veth" bash -c "nsenter --net=/run/netns/$uk_ns ip -4 -o addr show eth0 | grep -q 'inet $nsip/'"

entry="{\"appname\":\"app\",\"appns\":\"ns\",\"servicename\":\"uk$prefix\",\"servicenamespace\":\"default\",
  \"instancenumber\":0,\"nodeip\":\"$(nm_underlay_ip 1)\",\"nodeport\":$NM_TUNNEL_PORT,\"nsip\":\"$nsip\",
  \"serviceip\":[{\"IpType\":\"InstanceNumber\",\"Address\":\"10.30.3.1\"},{\"IpType\":\"RR\",\"Address\":\"10.30.0.5\"}]}"
for h in 1 2; do nm_api "$prefix" "$h" POST /table "[$entry]" >/dev/null || { echo "FAIL: POST /table on host $h"; exit 1; }; done

# The guest: its own namespace's kernel behind the agent's tap0.
nm_netns_add "$prefix" "$guest" || exit 1
nm_spawn "$prefix" guest "$guest" "$(nm_state "$prefix")/guest.log" python3 "$here/tap_guest.py" "$uk_ns" "$guest" || exit 1
for ((t = 0; t < 50; t++)); do grep -q ready "$(nm_state "$prefix")/guest.log" && break; sleep 0.1; done
check "a process opened the agent's tap0 ($(head -c 300 "$(nm_state "$prefix")/guest.log"))" grep -q ready "$(nm_state "$prefix")/guest.log"
ip -n "$guest" addr add 192.168.1.2/30 dev guest0 && ip -n "$guest" link set guest0 up &&
  ip -n "$guest" route add default via 192.168.1.1 || { echo "FAIL: guest network"; dump_logs; exit 1; }
nm_spawn "$prefix" guestweb "$guest" "$(nm_state "$prefix")/guestweb.log" \
  python3 "$here/service.py" serve 8080 unikernel "$work/www" || exit 1
nm_wait_listen "$guest" 8080 || exit 1

out=$(ask 2 10.30.3.1)
check "host 2 reaches the guest through the instance's InstanceNumber ServiceIP ($out)" test "$out" = unikernel
out=$(ask 2 10.30.0.5)
check "and through its RR ServiceIP ($out)" test "$out" = unikernel
out=$(ask 2 10.30.3.1 /peer)
check "the guest sees host 2's client by its ServiceIP ($out)" test "$out" = "$(nm_seed_client_ip 2)"
want=$(sha256sum <"$work/www/blob" | cut -d' ' -f1)
got=$(in_client 2 curl -sS --max-time 20 http://10.30.3.1:8080/blob | sha256sum | cut -d' ' -f1)
check "1 MiB from the guest arrives byte-exact on host 2" test "$got" = "$want"
out=$(nm_in "$prefix-h2" curl -sS --max-time 5 "http://$(nm_underlay_ip 1):9090/id")
check "host 1's port 9090 (portMappings 9090:8080) reaches the guest from the underlay ($out)" test "$out" = unikernel
out=$(nm_in "$guest" curl -sS --max-time 5 "http://$(nm_seed_web_ip 2):8080/id")
check "the guest reaches host 2's web through its InstanceNumber ServiceIP ($out)" test "$out" = web-h2
out=$(nm_in "$guest" curl -sS --max-time 5 "http://$(nm_seed_web_ip 2):8080/peer")
check "which sees it as the instance's InstanceNumber ServiceIP ($out)" test "$out" = 10.30.3.1

# Failures change nothing and say why.
code=$(api_code 1 /unikernel/deploy "{\"pid\":0,\"serviceName\":\"$job\",\"instanceNumber\":0}")
check "deploying the same instance again answers 409 ($code $(cat "$work/answer"))" \
  bash -c "test $code = 409 && grep -q 'already deployed' '$work/answer'"
echo "$job.instance.1" >>"$(nm_state "$prefix")/appns"
ip netns add "$job.instance.1"
before=$(nm_api "$prefix" 1 GET /status | jq -c '.instances')
code=$(api_code 1 /unikernel/deploy "{\"pid\":0,\"serviceName\":\"$job\",\"instanceNumber\":1}")
check "a deploy whose namespace name is taken answers 409 naming it ($code $(cat "$work/answer"))" \
  bash -c "test $code = 409 && grep -q '$job.instance.1' '$work/answer'"
check "and leaves the node as it was" test "$(nm_api "$prefix" 1 GET /status | jq -c '.instances')" = "$before"
ip netns del "$job.instance.1"
code=$(api_code 1 /unikernel/deploy "{\"pid\":0,\"serviceName\":\"$job\",\"instanceNumber\":1}")
check "once the name is free the same deploy works ($code)" test "$code" = 200
code=$(api_code 1 /unikernel/undeploy "{\"serviceName\":\"$job\",\"instanceNumber\":1}")
check "and is undeployed ($code)" test "$code" = 200 -a ! -e "/run/netns/$job.instance.1"

code=$(api_code 1 /unikernel/undeploy "{\"serviceName\":\"$job\",\"instanceNumber\":0}")
check "POST /unikernel/undeploy answers 200 ($code)" test "$code" = 200
check "and the namespace is gone" test ! -e "/run/netns/$uk_ns"
check "and so is the instance" test "$(nm_api "$prefix" 1 GET /status | jq '.instances | length')" -eq 2
code=$(api_code 1 /unikernel/undeploy "{\"serviceName\":\"$job\",\"instanceNumber\":0}")
check "undeploying it again answers 200, as the reference does ($code)" test "$code" = 200
code=$(api_code 1 /unikernel/undeploy "{\"serviceName\":\"$NM_SEED_WEB\",\"instanceNumber\":0}")
check "/unikernel/undeploy of a namespace deployment answers 200 and leaves it ($code)" \
  test "$code" = 200 -a -e "/run/netns/$(app 1 myapp1)"

if [ "$failures" -gt 0 ]; then
  dump_logs
  exit 1
fi
