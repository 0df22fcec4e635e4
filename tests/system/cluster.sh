#!/usr/bin/env bash
# Cluster mode end to end:  cluster.sh CASE
# Two simulated hosts (testenv/lib.sh). Host 1 also runs the cluster: mosquitto on
# 10.250.0.1:10003 and a fake service manager (fake_manager.py) on it. Each host runs a real
# netmanager registered over MQTT (node ids node1, node2). The manager answers as the cluster's
# root: bare /26 bases, a new one for every request; node<i>'s first request gets 10.18.0.<64 i>
# (node1 10.18.0.64/26, bridge 10.18.0.65; node2 10.18.0.128/26, bridge 10.18.0.129), later
# requests the next free ones, so a second request shows. App namespaces are deployed through the agents' API with no ServiceIPs and
# no table: everything the agents know of other services comes from table queries.
# Jobs, as the manager numbers them: web (k=1) RR 10.30.0.1, instance n 10.30.1.<n+1>;
# client (k=2) RR 10.30.0.2; api (k=3) RR 10.30.0.3.
prefix="c$(($$ % 100000))"
source "$(dirname "$0")/common.sh"
broker=10.250.0.1
port=10003
web=app.ns.web.default
client=app.ns.client.default
api=app.ns.api.default
mlog=$work/mqtt.jsonl   # every message the manager got or sent
quiet() { "$@" >/dev/null; }
die() { echo "FAIL: $*"; dump_logs; exit 1; }
state() { nm_state "$prefix"; }
dump_logs() {
  local f
  for f in "$(state)"/*.log; do echo "--- $f"; tail -n 30 "$f" | cut -c1-400; done
  echo "--- MQTT messages"; tail -n 40 "$mlog" 2>/dev/null | cut -c1-400
  for f in 1 2; do
    echo "--- host $f drops and table queries"
    nm_api "$prefix" "$f" GET /metrics 2>/dev/null | grep -E '^netmanager_(drops_total|table_query_)' | awk '$2 != 0'
  done
}
fm() { /usr/bin/python3 "$here/fake_manager.py" "$@"; }
publish() {  # publish TOPIC PAYLOAD: one message to the broker, from host 1
  printf '%s' "$2" >"$work/payload"
  nm_in "$prefix-h1" /usr/bin/python3 "$here/fake_manager.py" publish --host "$broker" --port "$port" "$1" "$work/payload"
}
queries_for() { mqtt_count "node$1/net/tablequery/request" "sname=$2"; }   # queries_for HOST JOB
more_queries_for() { test "$(queries_for "$1" "$2")" -gt "$3"; }
mqtt_count() { fm count "$mlog" "$@"; }   # mqtt_count SUFFIX [FIELD=VALUE]...
mqtt_seen() { test "$(mqtt_count "$@")" -ge 1; }   # mqtt_seen SUFFIX [FIELD=VALUE]...
api_json() { nm_api "$prefix" "$@"; }    # api_json HOST METHOD PATH [BODY]
status_field() { api_json "$1" GET /status | jq -r ".$2"; }
metric() {  # metric HOST 'name{labels}' -> value (0 when absent)
  api_json "$1" GET /metrics | awk -v m="$2" '$1 == m { v = $2 } END { print v + 0 }'
}
ns_of() { nm_app_ns "$prefix" "$1" "$2"; }   # ns_of HOST NAME
subnet_of() { echo "10.18.0.$((64 * $1))/26"; }     # subnet_of HOST: its first assignment
bridge_of() { echo "10.18.0.$((64 * $1 + 1))/26"; }  # bridge_of HOST: base + 1
fetch() { nm_in "$(ns_of "$1" "$2")" curl -sS --max-time "${4:-5}" "http://$3:8080/id"; }  # HOST NS IP

broker_runs=0
broker_start() {  # broker_start [MORE CONFIG LINES]
  broker_runs=$((broker_runs + 1))
  nm_broker_start "$prefix" broker "$prefix-h1" "$broker" "$port" "$(state)/broker$broker_runs.log" "${1:-}" ||
    die "mosquitto: $NM_ERROR"
}
broker_stop() { nm_stop "$prefix" broker 5; }

manager_start() {  # manager_start [fake_manager.py serve flags]
  nm_spawn "$prefix" manager "$prefix-h1" "$(state)/manager.log" /usr/bin/python3 "$here/fake_manager.py" serve \
    --host "$broker" --port "$port" --log "$mlog" --job "$web" --job "$client" --job "$api" \
    --subnet node1=1 --subnet node2=2 "$@" || die "fake manager: $NM_ERROR"
  manager_subscribed 1 || die "the fake manager did not subscribe within 10 s"
}
manager_events_at_least() { test "$(fm events "$mlog" 2>/dev/null || echo 0)" -ge "$1"; }
manager_subscribed() { wait_until 10 manager_events_at_least "$1"; }

agent_start() {  # agent_start HOST [ARGS...]: netmanager on the host, waits for its API
  local i=$1 sock
  shift
  sock=$(nm_agent_socket "$prefix" "$i")
  nm_spawn "$prefix" "agent$i" "$prefix-h$i" "$(state)/agent$i.log" "$NM_AGENT_BIN" \
    --node-ip "$(nm_underlay_ip "$i")" --prefix "$prefix$i" --tun "$prefix${i}tun" --bridge "$prefix${i}br" \
    --api-socket "$sock" --shards "$NM_AGENT_SHARDS" "$@" || die "agent $i: $NM_ERROR"
  wait_until 10 nm_api "$prefix" "$i" GET /status >/dev/null 2>&1 || die "agent $i does not answer GET /status"
}
cluster_agent() { agent_start "$1" --cluster "$broker" --node-id "node$1" "${@:2}"; }
registered() { test "$(status_field "$1" state 2>/dev/null)" = running; }
connected() { test "$(status_field "$1" cluster_connected 2>/dev/null)" = "$2"; }  # connected HOST true|false
wait_registered() { wait_until "${2:-15}" registered "$1" || die "agent $1 did not register within ${2:-15} s"; }

deploy() {  # deploy HOST NAME JOB INSTANCE [NSADDR]: app namespace through /netns/deploy
  local i=$1 name=$2 job=$3 n=$4 addr=${5:-}
  ns_of "$i" "$name" >>"$(state)/appns"
  api_json "$i" POST /netns/deploy \
    "{\"name\":\"$name\",\"serviceName\":\"$job\",\"instanceNumber\":$n${addr:+,\"nsAddress\":\"$addr\"}}"
}
serve() {  # serve HOST NAME ANSWER: service.py in an app namespace, waits until it listens
  nm_spawn "$prefix" "srv-$1-$2" "$(ns_of "$1" "$2")" "$(state)/srv-$1-$2.log" \
    python3 "$here/service.py" serve 8080 "$3" "$work" || die "server $2: $NM_ERROR"
  nm_wait_listen "$(ns_of "$1" "$2")" 8080 || die "server $2 on host $1 does not listen"
}
agent_alive() { nm_running "$prefix" "agent$1"; }

# Both hosts, the cluster, both agents registered; web on host 1 and a client on host 2.
two_hosts_with_web() {
  broker_start
  manager_start "$@"
  cluster_agent 1
  cluster_agent 2
  wait_registered 1
  wait_registered 2
  deploy 1 web "$web" 0 >/dev/null || die "deploy web on host 1"
  deploy 2 cli "$client" 0 >/dev/null || die "deploy client on host 2"
  serve 1 web web-h1
}
latency_pair() {  # latency_pair HOST: "<sum seconds> <count>" of the table query latency summary
  api_json "$1" GET /metrics | awk '$1 == "netmanager_table_query_latency_seconds_sum" { s = $2 }
    $1 == "netmanager_table_query_latency_seconds_count" { c = $2 } END { print s + 0, c + 0 }'
}
latency_ms() {  # latency_ms HOST: mean table query latency (agent side) in ms
  local m
  m=$(api_json "$1" GET /metrics)
  awk '$1 == "netmanager_table_query_latency_seconds_sum" { s = $2 }
       $1 == "netmanager_table_query_latency_seconds_count" { c = $2 }
       END { if (c > 0) printf "%.2f ms over %d queries", 1000 * s / c, c; else print "no queries" }' <<<"$m"
}

nm_hosts_up "$prefix" 2 || exit 1

case $case_name in
  register)
    # Host 1 registers itself (--cluster), host 2 waits for POST /register (the node engine's way).
    broker_start
    manager_start
    cluster_agent 1
    agent_start 2
    check "an agent without --cluster waits for registration" test "$(status_field 2 state)" = "waiting for registration"
    out=$(api_json 2 POST /register '{"client_id":"node2","cluster_address":"10.250.0.1"}') || die "POST /register: $out"
    wait_registered 1
    wait_registered 2
    sleep 1  # a second request would show: the manager hands out a new subnet for each
    for i in 1 2; do
      check "host $i asked the cluster for its subnet exactly once ($(mqtt_count "node$i/net/subnet" METHOD=GET) requests)" \
        test "$(mqtt_count "node$i/net/subnet")" -eq 1 -a "$(mqtt_count "node$i/net/subnet" METHOD=GET)" -eq 1
      check "host $i's status shows the assigned subnet" test "$(status_field "$i" subnet)" = "$(subnet_of "$i")"
      check "host $i's status shows cluster mode, connected, as node$i" \
        test "$(status_field "$i" mode)/$(status_field "$i" cluster_connected)/$(status_field "$i" client_id)" = "cluster/true/node$i"
      addr=$(ip -n "$prefix-h$i" -4 -o addr show dev "$prefix${i}br" | awk '{ print $4 }')
      check "host $i's bridge has base+1 $(bridge_of "$i") in the host namespace ($addr)" test "$addr" = "$(bridge_of "$i")"
    done
    check "POST /register again with the same client_id answers 200" \
      quiet api_json 2 POST /register '{"client_id":"node2","cluster_address":"10.250.0.1"}'
    check "POST /register with another client_id answers 400" bash -c "
      code=\$(curl -s -o /dev/null -w '%{http_code}' --unix-socket $(nm_agent_socket "$prefix" 2) \
        -H 'Content-Type: application/json' -d '{\"client_id\":\"other\",\"cluster_address\":\"10.250.0.1\"}' \
        http://nm/register); test \"\$code\" = 400"
    check "no second subnet was asked for by the repeated registration" test "$(mqtt_count node2/net/subnet)" -eq 1
    check "host 2 keeps its first subnet" test "$(status_field 2 subnet)" = "$(subnet_of 2)"
    ;;

  register_fallback)
    # The node engine's /register without a broker (absent or empty cluster_address): the agent
    # uses ClusterUrl, from netcfg.json on host 1 and from the environment variable of that name
    # on host 2 (over the file's "0.0.0.0"), and answers 200 within the node engine's 10 s.
    broker_start
    manager_start
    printf '{"NodePublicAddress": "0.0.0.0", "NodePublicPort": "50103", "ClusterUrl": "%s", "ClusterMqttPort": "%s"}' \
      "$broker" "$port" >"$work/netcfg1.json"
    printf '{"NodePublicAddress": "0.0.0.0", "NodePublicPort": "50103", "ClusterUrl": "0.0.0.0", "ClusterMqttPort": "%s"}' \
      "$port" >"$work/netcfg2.json"
    agent_start 1 -c "$work/netcfg1.json"
    export ClusterUrl=$broker
    agent_start 2 -c "$work/netcfg2.json"
    unset ClusterUrl
    sock() { nm_agent_socket "$prefix" "$1"; }
    register() {  # register HOST BODY -> "<http code> <seconds>"
      curl -s -o "$work/register$1.out" -w '%{http_code} %{time_total}' --max-time 10 --unix-socket "$(sock "$1")" \
        -H 'Content-Type: application/json' -d "$2" http://nm/register
    }
    read -r code1 took1 < <(register 1 '{"client_id": "node1"}')
    check "host 1: /register without cluster_address answers 200 ($code1 in $took1 s: $(cat "$work/register1.out"))" \
      test "$code1" = 200
    check "within the node engine's 10 s" awk -v t="$took1" 'BEGIN { exit !(t > 0 && t < 10) }'
    read -r code2 took2 < <(register 2 '{"client_id": "node2", "cluster_address": ""}')
    check "host 2: /register with an empty cluster_address answers 200 ($code2 in $took2 s: $(cat "$work/register2.out"))" \
      test "$code2" = 200
    check "within the node engine's 10 s" awk -v t="$took2" 'BEGIN { exit !(t > 0 && t < 10) }'
    for i in 1 2; do
      check "host $i is registered at once, with its subnet ($(status_field "$i" state), $(status_field "$i" subnet))" \
        test "$(status_field "$i" state)/$(status_field "$i" subnet)" = "running/$(subnet_of "$i")"
      addr=$(ip -n "$prefix-h$i" -4 -o addr show dev "$prefix${i}br" | awk '{ print $4 }')
      check "host $i's bridge is at base+1 ($addr)" test "$addr" = "$(bridge_of "$i")"
      check "host $i asked for one subnet" test "$(mqtt_count "node$i/net/subnet" METHOD=GET)" -eq 1
    done
    ;;

  no_self_register)
    # ClusterUrl in netcfg.json (as shipped "0.0.0.0", or even a reachable broker) never makes
    # the agent register by itself: it waits for the node engine's /register.
    broker_start
    manager_start
    printf '{"NodePublicAddress": "0.0.0.0", "NodePublicPort": "50103", "ClusterUrl": "0.0.0.0", "ClusterMqttPort": "10003", "DefaultInterface": "", "Debug": false, "PublicIPNetworking": false, "MqttCert": "", "MqttKey": ""}' \
      >"$work/netcfg1.json"
    printf '{"ClusterUrl": "%s"}' "$broker" >"$work/netcfg2.json"
    agent_start 1 -c "$work/netcfg1.json"
    agent_start 2 -c "$work/netcfg2.json"
    sleep 3
    for i in 1 2; do
      check "host $i (ClusterUrl $(jq -r .ClusterUrl "$work/netcfg$i.json")) waits for registration" \
        test "$(status_field "$i" state)/$(status_field "$i" mode)" = "waiting for registration/unregistered"
    done
    check "neither asked the cluster for a subnet" test "$(mqtt_count net/subnet)" -eq 0
    check "host 1 is alive" agent_alive 1
    out=$(api_json 2 POST /register '{"client_id": "node2"}') || die "POST /register on host 2: $out"
    check "host 2 registers once the node engine asks" \
      test "$(status_field 2 state)/$(status_field 2 subnet)" = "running/$(subnet_of 2)"
    ;;

  default_files)
    # An agent installed as the reference is: /etc/netmanager/netcfg.json and tuncfg.json (here
    # in a per-host overlay on /etc) are read without -c, keys in any case; TUN_MTU_SIZE sets the
    # bridge and veth MTU, MTUsize the TUN's. A bad default file stops the start with exit 2.
    broker_start
    manager_start
    etc1=$(state)/etc1
    mkdir -p "$etc1/netmanager"
    printf '{"clusterurl": "%s", "ClusterMqttPort": "%s"}' "$broker" "$port" >"$etc1/netmanager/netcfg.json"
    printf '{"MTUSIZE": 1400, "TunnelIP": "10.19.1.254"}' >"$etc1/netmanager/tuncfg.json"
    export TUN_MTU_SIZE=1300
    nm_spawn_etc "$prefix" agent1 "$prefix-h1" "$(state)/agent1.log" "$etc1" "$NM_AGENT_BIN" \
      --node-ip "$(nm_underlay_ip 1)" --prefix "${prefix}1" --tun "${prefix}1tun" --bridge "${prefix}1br" \
      --api-socket "$(nm_agent_socket "$prefix" 1)" --shards "$NM_AGENT_SHARDS" || die "agent 1: $NM_ERROR"
    agent_pid=$NM_PID
    unset TUN_MTU_SIZE
    wait_until 10 nm_api "$prefix" 1 GET /status >/dev/null 2>&1 || die "agent 1 does not answer GET /status"
    out=$(api_json 1 POST /register '{"client_id": "node1"}') || die "POST /register: $out"
    check "the broker came from /etc/netmanager/netcfg.json's clusterurl: registered ($(status_field 1 subnet))" \
      test "$(status_field 1 state)/$(status_field 1 subnet)" = "running/$(subnet_of 1)"
    mtu() { ip -n "$prefix-h1" -o link show dev "$1" | sed -n 's/.* mtu \([0-9]*\).*/\1/p'; }
    check "the TUN has tuncfg.json's MTUSIZE ($(mtu "${prefix}1tun"))" test "$(mtu "${prefix}1tun")" = 1400
    check "the bridge has TUN_MTU_SIZE ($(mtu "${prefix}1br"))" test "$(mtu "${prefix}1br")" = 1300
    deploy 1 web "$web" 0 >/dev/null || die "deploy web on host 1"
    link=$(api_json 1 GET /status | jq -r '.instances[0].hostLink')
    # The app namespace is mounted in the agent's own mount namespace.
    inner=$(nsenter -t "$agent_pid" -m -- nsenter --net="/run/netns/$(ns_of 1 web)" ip -o link show | awk '$2 != "lo:" { for (f = 1; f < NF; f++) if ($f == "mtu") print $(f + 1) }')
    check "and both ends of the veth ($(mtu "$link"), $inner)" test "$(mtu "$link")/$inner" = 1300/1300
    etc2=$(state)/etc2
    mkdir -p "$etc2/netmanager" "$etc2.work"
    printf '{"NodePublicPort": "fifty"}' >"$etc2/netmanager/netcfg.json"
    out=$(nm_in "$prefix-h2" unshare --mount --propagation private -- /bin/sh -c \
      'mount -t overlay overlay -o "lowerdir=/etc,upperdir=$0,workdir=$1" /etc && shift && exec "$@"' \
      "$etc2" "$etc2.work" timeout 10 "$NM_AGENT_BIN" --node-ip "$(nm_underlay_ip 2)" --prefix "${prefix}x" \
      --tun "${prefix}xtun" --bridge "${prefix}xbr" --api-socket "$work/bad.sock" 2>&1)
    rc=$?
    check "a bad /etc/netmanager/netcfg.json stops the start with exit 2 (exit $rc)" test "$rc" = 2
    check "naming the file and the key ($out)" grep -q "/etc/netmanager/netcfg.json: field 'NodePublicPort'" <<<"$out"
    check "and builds nothing" test -z "$(ip -n "$prefix-h2" -o link show | grep -E "${prefix}x(tun|br)")"
    ;;

  register_reconnect)
    # The connection drops after the subnet request and before the answer (the manager answers
    # after 5 s; mosquitto_pub connecting as "node2" makes the broker drop the agent's session):
    # the clean session lost the answer, so the agent asks once more after reconnecting, and no
    # more than that.
    broker_start
    manager_start --subnet-delay-ms 5000
    agent_start 2
    curl -s -o "$work/out" -w '%{http_code}' --max-time 10 --unix-socket "$(nm_agent_socket "$prefix" 2)" \
      -H 'Content-Type: application/json' -d '{"client_id": "node2", "cluster_address": "10.250.0.1"}' \
      http://nm/register >"$work/code" &
    register_pid=$!
    wait_until 5 mqtt_seen node2/net/subnet || die "no subnet request from host 2"
    nm_in "$prefix-h1" mosquitto_pub -h "$broker" -p "$port" -i node2 -t "$prefix/kick" -m "" ||
      die "could not take over node2's session"
    check "the agent noticed the dropped session before the answer came" \
      wait_until 4 grep -q "dropped before subnetwork/result" "$(state)/agent2.log"
    wait_registered 2 15
    wait "$register_pid"
    echo "/register answered $(cat "$work/code"): $(cat "$work/out")"
    sleep 6  # every answer the manager owes has come by now
    check "host 2 asked exactly twice: once, and once after the reconnect ($(mqtt_count node2/net/subnet))" \
      test "$(mqtt_count node2/net/subnet)" -eq 2 -a "$(status_field 2 subnet_requests)" = 2
    got=$(status_field 2 subnet)
    given=$(jq -r 'select(.dir == "out" and (.topic | endswith("node2/net/subnetwork/result"))) | .payload | fromjson | .address' "$mlog" | tr '\n' ' ')
    check "it took one of the subnets it was given ($got of $given)" grep -qwF "${got%/26}" <<<"$given"
    ;;

  register_no_subnet)
    # A broker but no cluster behind it: /register answers a clear non-200 before the node
    # engine's 10 s, having asked once; the same client_id later waits on the same request.
    broker_start
    agent_start 2
    code=$(curl -s -o "$work/out" -w '%{http_code} %{time_total}' --max-time 10 --unix-socket "$(nm_agent_socket "$prefix" 2)" \
      -H 'Content-Type: application/json' -d '{"client_id": "node2", "cluster_address": "10.250.0.1"}' http://nm/register)
    read -r code took <<<"$code"
    check "/register answers 504 when no subnet arrives ($code in $took s)" test "$code" = 504
    check "before the node engine's 10 s" awk -v t="$took" 'BEGIN { exit !(t > 0 && t < 10) }'
    check "and says why ($(jq -r .error "$work/out"))" grep -q "has not assigned a subnet" "$work/out"
    check "the agent asked exactly once" test "$(status_field 2 subnet_requests)" = 1
    check "the agent is alive and not registered" test "$(status_field 2 state)" = "waiting for registration"
    ;;

  deploy)
    broker_start
    manager_start
    cluster_agent 1
    wait_registered 1
    out=$(deploy 1 web "$web" 3 10.18.0.100) || die "deploy: $out"
    check "deploy answers the namespace address ($out)" test "$(jq -r .nsAddress <<<"$out")" = 10.18.0.100
    wait_until 5 mqtt_seen service/deployed
    for kv in appname="$web" instance_number=3 nsip=10.18.0.100 host_ip=10.250.0.1 host_port=50103 status=DEPLOYED; do
      got=$(fm field "$mlog" node1/net/service/deployed "${kv%%=*}")
      check "service/deployed carries ${kv%%=*} ${kv#*=} ($got)" test "$got" = "${kv#*=}"
    done
    check "exactly one service/deployed was published" test "$(mqtt_count service/deployed)" -eq 1
    # Without an address the agent picks one; the notice must carry that one.
    out=$(deploy 1 web2 "$web" 4) || die "deploy without address: $out"
    picked=$(jq -r .nsAddress <<<"$out")
    wait_until 5 mqtt_seen service/deployed instance_number=4
    got=$(fm field "$mlog" node1/net/service/deployed nsip instance_number=4)
    check "an address the agent picked ($picked) is the one announced ($got)" test "$got" = "$picked" -a -n "$picked"
    inside=$(nm_in "$(ns_of 1 web2)" ip -4 -o addr show | awk '$2 != "lo" { sub("/.*", "", $4); print $4 }')
    check "and the one inside the namespace ($inside)" test "$inside" = "$picked"
    ;;

  restart)
    # Host 1's agent is killed and started again with the same flags (as systemd does): it
    # resumes its registration and subnet from its state file (docs/restart.md) instead of
    # asking for a new subnet, keeps web's namespace and is reached through web's RR again.
    two_hosts_with_web
    check "host 2's client reaches web on host 1" wait_until 10 fetch 2 cli 10.30.0.1
    pid=$(nm_pid_of "$prefix" agent1)
    kill -KILL "$pid"
    wait "$pid" 2>/dev/null
    rm -f "$(state)/pids/agent1"
    cluster_agent 1
    wait_registered 1
    check "host 1 asked the cluster for a subnet once in all ($(mqtt_count node1/net/subnet))" \
      test "$(mqtt_count node1/net/subnet)" -eq 1
    check "host 1 kept its subnet ($(status_field 1 subnet))" test "$(status_field 1 subnet)" = "$(subnet_of 1)"
    check "host 1 lists web again" test "$(api_json 1 GET /status | jq -r '.instances[].serviceName')" = "$web"
    check "host 2's client reaches web on host 1 again" wait_until 10 fetch 2 cli 10.30.0.1
    check "the restarted agent resumed its registration" grep -q "resuming the registration as node1" "$(state)/agent1.log"
    ;;

  unikernel)
    # The node engine's unikernel runtime: /unikernel/deploy with pid 0, announced like a container.
    broker_start
    manager_start
    cluster_agent 1
    wait_registered 1
    uk="app.ns.uk$prefix.default"
    echo "$uk.instance.5" >>"$(state)/appns"
    out=$(api_json 1 POST /unikernel/deploy "{\"pid\":0,\"serviceName\":\"$uk\",\"instanceNumber\":5,\"portMappings\":\"\"}") ||
      die "unikernel deploy: $out"
    picked=$(jq -r .nsAddress <<<"$out")
    check "the unikernel's namespace $uk.instance.5 exists" test -e "/run/netns/$uk.instance.5"
    wait_until 5 mqtt_seen service/deployed instance_number=5
    for kv in appname="$uk" instance_number=5 nsip="$picked" host_ip=10.250.0.1 host_port=50103 status=DEPLOYED; do
      got=$(fm field "$mlog" node1/net/service/deployed "${kv%%=*}" instance_number=5)
      check "service/deployed of the unikernel carries ${kv%%=*} ${kv#*=} ($got)" test "$got" = "${kv#*=}"
    done
    check "POST /unikernel/undeploy answers 200" quiet api_json 1 POST /unikernel/undeploy "{\"serviceName\":\"$uk\",\"instanceNumber\":5}"
    wait_until 5 mqtt_seen service/undeployed instance_number=5
    check "service/undeployed is published for it" test "$(mqtt_count node1/net/service/undeployed appname="$uk" instance_number=5)" -eq 1
    check "and its namespace is gone" test ! -e "/run/netns/$uk.instance.5"
    ;;

  deploy_pid)
    # The v0.4 node engine's way: a process in its own network namespace, deployed by PID.
    broker_start
    manager_start
    cluster_agent 1
    wait_registered 1
    nm_spawn "$prefix" sleeper "$prefix-h1" "$(state)/sleeper.log" unshare --net sleep 600 || die "unshare: $NM_ERROR"
    pid=$NM_PID
    # Once the PID runs sleep, unshare has made its namespace.
    wait_until 5 bash -c "test \"\$(readlink /proc/$pid/exe)\" = $(readlink -f "$(command -v sleep)")" ||
      die "sleep under unshare --net did not start"
    check "the process has a network namespace of its own" \
      test "$(stat -L -c %i "/proc/$pid/ns/net")" != "$(stat -L -c %i "/run/netns/$prefix-h1")"
    out=$(api_json 1 POST /container/deploy "{\"pid\":$pid,\"serviceName\":\"$api\",\"instanceNumber\":0}") ||
      die "container deploy: $out"
    answered=$(jq -r .nsAddress <<<"$out")
    inside=$(nsenter -t "$pid" -n ip -4 -o addr show | awk '$2 != "lo" { sub("/.*", "", $4); print $4 }')
    check "the process's namespace got the answered address ($answered, inside: $inside)" \
      test -n "$answered" -a "$inside" = "$answered"
    wait_until 5 mqtt_seen service/deployed appname="$api"
    got=$(fm field "$mlog" node1/net/service/deployed nsip appname="$api")
    check "service/deployed carries that nsip ($got)" test "$got" = "$answered"
    got=$(fm field "$mlog" node1/net/service/deployed host_ip appname="$api"):$(fm field "$mlog" node1/net/service/deployed host_port appname="$api")
    check "and this node's tunnel endpoint ($got)" test "$got" = 10.250.0.1:50103
    # Nothing listens there: "connection refused" (curl exit 7) proves the bridge answered.
    nsenter -t "$pid" -n curl -s --max-time 2 http://10.18.0.65:1/ >/dev/null
    check "the deployed process's namespace reaches its bridge (curl exit $?, want 7)" test $? -eq 7
    check "POST /container/undeploy answers 200" \
      quiet api_json 1 POST /container/undeploy "{\"serviceName\":\"$api\",\"instanceNumber\":0}"
    wait_until 5 mqtt_seen service/undeployed appname="$api" instance_number=0
    check "service/undeployed names the job and instance" \
      test "$(mqtt_count service/undeployed appname="$api" instance_number=0)" -eq 1
    left=$(nsenter -t "$pid" -n ip -4 -o addr show | awk '$2 != "lo"' | wc -l)
    check "the process's namespace has no container address left ($left)" test "$left" -eq 0
    # The node engine undeploys with pid -1 and portMappings ""; the reference answers 200 for an
    # instance it does not have.
    out=$(api_json 1 POST /container/undeploy "{\"pid\":-1,\"serviceName\":\"$api\",\"instanceNumber\":0,\"portMappings\":\"\"}" 2>&1)
    check "undeploying it again as the node engine does answers 200 ($out)" test "$out" = "{}"
    sleep 0.5
    check "and publishes nothing" test "$(mqtt_count service/undeployed appname="$api" instance_number=0)" -eq 1
    check "and the log says nothing was deployed under that name" \
      grep -q "undeploy: nothing to remove, $api instance 0 is not deployed here" "$(state)/agent1.log"
    ;;

  undeploy)
    broker_start
    manager_start
    cluster_agent 1
    wait_registered 1
    deploy 1 web "$web" 0 >/dev/null || die "deploy"
    check "POST /netns/undeploy answers 200" quiet api_json 1 POST /netns/undeploy "{\"serviceName\":\"$web\",\"instanceNumber\":0}"
    wait_until 5 mqtt_seen service/undeployed
    check "service/undeployed is published once with appname and instance_number" \
      test "$(mqtt_count node1/net/service/undeployed appname="$web" instance_number=0)" -eq 1
    check "the agent removed the namespace" test ! -e "/run/netns/$(ns_of 1 web)"
    check "and the instance" test "$(status_field 1 'instances | length')" -eq 0
    check "undeploying it again answers 404 and publishes nothing" bash -c "
      code=\$(curl -s -o /dev/null -w '%{http_code}' --unix-socket $(nm_agent_socket "$prefix" 1) \
        -H 'Content-Type: application/json' -d '{\"serviceName\":\"$web\",\"instanceNumber\":0}' http://nm/netns/undeploy)
      sleep 0.5; test \"\$code\" = 404 -a \"\$(/usr/bin/python3 $here/fake_manager.py count $mlog service/undeployed)\" -eq 1"
    ;;

  names)
    # docs/names.md: host 2's client has never used web; its name is learnt from the cluster.
    two_hosts_with_web
    ask() { nm_in "$(ns_of 2 cli)" dig +time=3 +tries=1 @10.18.0.129 "$@"; }
    out=$(ask +short web.default.app.ns.local)
    check "a name only the cluster knows is answered after a table query by name ($out)" test "$out" = 10.30.0.1
    check "host 2 asked the cluster for $web by name once" \
      test "$(mqtt_count node2/net/tablequery/request sname=$web)" -eq 1
    out=$(ask +short instance-0.WEB.default.app.ns.local)
    check "another of its names, in another case, is answered from the table ($out)" test "$out" = 10.30.1.1
    check "without another query" test "$(mqtt_count node2/net/tablequery/request sname=$web)" -eq 1
    out=$(ip netns exec "$(ns_of 2 cli)" curl -sS --max-time 5 http://web.default:8080/id)
    check "curl by the short name from the client's namespace reaches web ($out)" test "$out" = web-h1
    st=$(ask nope.default.app.ns.local | sed -n 's/.*status: \([A-Z]*\),.*/\1/p')
    check "a job the cluster does not know is NXDOMAIN ($st)" test "$st" = NXDOMAIN
    st=$(ask nope.default.app.ns.local | sed -n 's/.*status: \([A-Z]*\),.*/\1/p')
    check "and again, from the negative cache ($st)" test "$st" = NXDOMAIN
    check "after one query for it" \
      test "$(mqtt_count node2/net/tablequery/request sname=app.ns.nope.default)" -eq 1
    ;;
  cross_host)
    two_hosts_with_web
    t1=$(nm_in "$(ns_of 2 cli)" curl -sS -o "$work/first" -w '%{time_connect} %{time_total}' --max-time 5 http://10.30.0.1:8080/id)
    check "the first connection to web's RR ServiceIP from host 2 gets through ($(cat "$work/first" 2>/dev/null))" \
      test "$(cat "$work/first" 2>/dev/null)" = web-h1
    t2=$(nm_in "$(ns_of 2 cli)" curl -sS -o "$work/second" -w '%{time_connect} %{time_total}' --max-time 5 http://10.30.0.1:8080/id)
    check "and the second ($(cat "$work/second" 2>/dev/null))" test "$(cat "$work/second" 2>/dev/null)" = web-h1
    # A dropped first SYN would be retransmitted after 1 s: faster means the first packet waited.
    check "the first SYN waited for the query instead of being dropped (connect ${t1%% *} s < 1 s)" \
      awk -v t="${t1%% *}" 'BEGIN { exit !(t > 0 && t < 1) }'
    for i in 1 2; do
      d=0
      for reason in unknown_service unknown_nsip no_sender_entry unknown_node query_failed backlog_full; do
        d=$((d + $(metric "$i" "netmanager_drops_total{reason=\"$reason\"}")))
      done
      check "host $i dropped no packet for want of a table entry ($d)" test "$d" -eq 0
    done
    check "host 2 asked for 10.30.0.1 exactly once" test "$(mqtt_count node2/net/tablequery/request sip=10.30.0.1)" -eq 1
    check "host 1 learnt the client (it asked about its address once)" \
      test "$(mqtt_count node1/net/tablequery/request sip=10.30.2.1)" -eq 1
    echo "first-packet table query latency (agent side, metrics): host 2 $(latency_ms 2); host 1 $(latency_ms 1)"
    echo "curl connect/total seconds: first $t1, second $t2"
    # A second web instance appears on host 1: the manager's updates_available notice makes
    # host 2 refresh web, and new flows through the RR ServiceIP reach both instances.
    before=$(queries_for 2 "$web")
    deploy 1 web2 "$web" 1 >/dev/null || die "deploy a second web instance"
    serve 1 web2 web-h1b
    check "host 2 refreshed web after the manager's notice" wait_until 5 more_queries_for 2 "$web" "$before"
    seen=$(for k in 1 2 3 4; do fetch 2 cli 10.30.0.1; echo; done | sort -u | tr '\n' ' ')
    check "new flows through RR reach both instances ($seen)" test "$seen" = "web-h1 web-h1b "
    check "without another query by address" test "$(mqtt_count node2/net/tablequery/request sip=10.30.0.1)" -eq 1
    ;;

  busy_interest)
    # Host 2 has no web instance: its interest in web lives on the data path's use alone. One UDP
    # flow through web's RR ServiceIP, a datagram every 0.5 s for 15 s (longer than the 10 s
    # idle time) with no table lookup: the interest stays. Once the flow stops, host 2 drops web
    # 10 s later (interest/remove) and removes its entries; a new flow asks again.
    two_hosts_with_web
    check "host 2 reaches web" test "$(fetch 2 cli 10.30.0.1)" = web-h1
    answered=$(nm_in "$(ns_of 2 cli)" python3 - <<'PY'
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect(("10.30.0.1", 8080))
s.settimeout(1)
answered, end = 0, time.time() + 15
while time.time() < end:
    s.send(b"ping")
    try:
        s.recv(100)
        answered += 1
    except socket.timeout:
        pass
    time.sleep(0.5)
print(answered)
PY
)
    check "the flow was answered throughout ($answered of ~30 datagrams)" test "${answered:-0}" -ge 25
    n=$(mqtt_count node2/net/interest/remove appname="$web")
    check "host 2 kept its interest in web while the flow ran 15 s ($n interest/remove)" test "$n" -eq 0
    check "host 2 looked web up by address once only" test "$(mqtt_count node2/net/tablequery/request sip=10.30.0.1)" -eq 1
    stopped=$(date +%s.%N)
    check "host 2 drops its interest in web within 15 s of the flow's end" \
      wait_until 15 mqtt_seen node2/net/interest/remove appname="$web"
    echo "interest/remove $(awk -v a="$stopped" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s after the last datagram"
    check "and no longer holds web's entries" test "$(api_json 2 GET /table | jq "[.[] | select(.appname == \"web\")] | length")" -eq 0
    check "host 1 kept its interest in web, which runs there" test "$(mqtt_count node1/net/interest/remove appname="$web")" -eq 0
    check "a new connection asks again and gets through" test "$(fetch 2 cli 10.30.0.1)" = web-h1
    check "with a second query by address" test "$(mqtt_count node2/net/tablequery/request sip=10.30.0.1)" -eq 2
    ;;

  latency)
    # First-packet latency of a table query, on a fresh key each round: a new job (lat<r>, the
    # manager's job 3+r, RR 10.30.0.<3+r>) appears on host 1; host 2's client opens a first
    # connection to its RR ServiceIP (unknown to host 2: one query) and then a second (known).
    two_hosts_with_web
    rounds=10
    read -r sum0 count0 < <(latency_pair 2)
    for r in $(seq 1 $rounds); do
      sip=10.30.0.$((3 + r))
      deploy 1 "l$r" "app.ns.lat$r.default" 0 >/dev/null || die "deploy job lat$r"
      serve 1 "l$r" "lat$r"
      first=$(nm_in "$(ns_of 2 cli)" curl -sS -o /dev/null -w '%{time_connect}' --max-time 5 "http://$sip:8080/id") ||
        { check "round $r: first connection to $sip succeeds" false; continue; }
      second=$(nm_in "$(ns_of 2 cli)" curl -sS -o /dev/null -w '%{time_connect}' --max-time 5 "http://$sip:8080/id")
      echo "round $r: connect first $(awk -v t="$first" 'BEGIN { printf "%.2f", t * 1000 }') ms, second $(awk -v t="$second" 'BEGIN { printf "%.2f", t * 1000 }') ms"
      echo "$first $second" >>"$work/times"
    done
    check "all $rounds first connections got through" test "$(wc -l <"$work/times")" -eq "$rounds"
    awk '{ f += $1; s += $2; n++ } END { if (n) printf "first-connection connect time %.2f ms, second %.2f ms, difference (query cost) %.2f ms (mean of %d)\n", 1000 * f / n, 1000 * s / n, 1000 * (f - s) / n, n }' "$work/times"
    read -r sum1 count1 < <(latency_pair 2)
    awk -v s="$sum0" -v c="$count0" -v s1="$sum1" -v c1="$count1" 'BEGIN {
      if (c1 > c) printf "table query latency on host 2 (agent side, request to answer): %.2f ms mean over the %d first-packet queries\n", 1000 * (s1 - s) / (c1 - c), c1 - c }'
    check "each round's first packet caused exactly one query on host 2 ($((count1 - count0)) for $rounds rounds)" \
      test "$((count1 - count0))" -eq "$rounds"
    ;;

  coalesce)
    # The manager answers after 300 ms, so all flows start while the query is in flight.
    two_hosts_with_web --delay-ms 300
    # A server whose backlog takes the burst: the parked SYNs are all released at once.
    nm_spawn "$prefix" burst "$(ns_of 1 web)" "$(state)/burst.log" python3 "$here/flows.py" serve 8081 web-h1 ||
      die "burst server: $NM_ERROR"
    nm_wait_listen "$(ns_of 1 web)" 8081 || die "burst server does not listen"
    out=$(nm_in "$(ns_of 2 cli)" python3 "$here/flows.py" tcp 200 10.30.0.1 8081)
    echo "answers: $(tr '\n' ' ' <<<"$out")"
    check "200 concurrent connections to a not-yet-known ServiceIP all succeed ($(head -n1 <<<"$out"))" \
      test "$(head -n1 <<<"$out")" = "ok 200 fail 0"
    n=$(mqtt_count node2/net/tablequery/request sip=10.30.0.1)
    check "they caused exactly one tablequery/request for 10.30.0.1 from host 2 ($n)" test "$n" -eq 1
    n=$(mqtt_count node2/net/tablequery/request sname=)
    check "and no other query by address from host 2 ($n in all)" test "$n" -eq 1
    deploy 1 api "$api" 0 >/dev/null || die "deploy api on host 1"
    serve 1 api api-h1
    out=$(nm_in "$(ns_of 2 cli)" python3 "$here/flows.py" udp 1000 10.30.0.3 8080)
    check "1000 concurrent UDP flows to another not-yet-known ServiceIP all get answers ($(head -n1 <<<"$out"))" \
      test "$(head -n1 <<<"$out")" = "ok 1000 fail 0"
    n=$(mqtt_count node2/net/tablequery/request sip=10.30.0.3)
    check "and cause exactly one query ($n)" test "$n" -eq 1
    echo "host 2: coalesced resolves $(metric 2 netmanager_table_query_coalesced_total), packets dropped while parked $(metric 2 'netmanager_drops_total{reason="backlog_full"}'), negative hits $(metric 2 netmanager_table_query_negative_hits_total); query latency host 2 $(latency_ms 2)"
    ;;

  flood)
    # Datagrams from host 2's address whose inner sources no one knows, 20000 distinct ones in
    # a burst, while the manager takes 2 s per answer: host 1 may ask for at most its cap per
    # asker (16 for one sending node) at once, its memory stays near idle, and a line a second
    # is logged per reason.
    two_hosts_with_web --delay-ms 2000
    pid=$(nm_pid_of "$prefix" agent1)
    rss() { awk '$1 == "VmRSS:" { print $2 }' "/proc/$pid/status"; }
    before_queries=$(mqtt_count node1/net/tablequery/request)
    before_rss=$(rss)
    before_log=$(wc -l <"$(state)/agent1.log")
    flood_start=$(date +%s.%N)
    nm_in "$prefix-h2" /usr/bin/python3 - "$(nm_underlay_ip 2)" "$(nm_underlay_ip 1)" <<'PY'
import socket, struct, sys, time
from scapy.all import IP, UDP, Raw
me, peer = sys.argv[1:3]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((me, 0))
template = bytes(IP(src="10.30.0.0", dst="10.18.0.66") / UDP(sport=4444, dport=8080) / Raw(b"flood"))
for k in range(20000):
    inner = bytearray(template)
    inner[12:16] = struct.pack("!BBH", 10, 30, 256 + k)  # distinct unknown sources (header
    # checksum left stale: the agent parses, it does not verify)
    s.sendto(bytes(inner), (peer, 50103))
PY
    # The agent works through the datagrams queued at its socket for a while after the sender
    # is done (15 s under ASan at load 14): the flood lasts, for the agent, until its refusal
    # count stops growing. A query is refused on the flooded shard when the shards' budget of
    # queries in flight is spent (core/budget.hpp), or by the query client on shard 0.
    refused() {
      echo $(($(metric 1 netmanager_table_query_refused_total) + $(metric 1 netmanager_table_queries_over_budget_total)))
    }
    last=$(refused) flood_end=$(date +%s.%N) still=0
    while [ "$still" -lt 4 ] && [ $(($(date +%s) - ${flood_start%.*})) -lt 90 ]; do
      sleep 0.5
      now=$(refused)
      if [ "$now" = "$last" ]; then still=$((still + 1)); else last=$now flood_end=$(date +%s.%N) still=0; fi
    done
    sleep 1
    # At most 16 in flight, each answered after 2 s: a flood that lasts T seconds (long on a
    # loaded machine or under ASan) may start 16 more every 2 s, so at most 16 * (1 + ceil(T / 2)).
    rounds=$(/usr/bin/python3 -c 'import math, sys; print(1 + math.ceil((float(sys.argv[2]) - float(sys.argv[1])) / 2))' "$flood_start" "$flood_end")
    n=$(($(mqtt_count node1/net/tablequery/request) - before_queries))
    check "20000 datagrams with unknown inner sources cause at most 16 table queries per 2 s answer time ($n in $rounds rounds)" \
      test "$n" -le $((16 * rounds)) -a "$n" -ge 1
    n=$(refused)
    check "the rest are refused at once and counted ($n: $(metric 1 netmanager_table_queries_over_budget_total) over the shards' budget)" test "$n" -ge 1000
    # The flood's memory goes back (its queries are refused on their shards before anything is
    # queued on shard 0: core/budget.hpp; the RSS grew by ~30 MB before, then trimmed). An AddressSanitizer agent keeps freed memory in its quarantine: there
    # the RSS is only reported.
    near_idle() { test "$(rss)" -le $((before_rss + 8192)); }
    if ldd "$NM_AGENT_BIN" | grep -q libasan; then
      echo "host 1 RSS: ${before_rss} kB before the flood, $(rss) kB after it (AddressSanitizer)"
    else
      check "host 1's RSS returns to within 8 MB of its level before the flood (${before_rss} kB before, $(rss) kB after)" \
        wait_until 10 near_idle
    fi
    lines=$(($(wc -l <"$(state)/agent1.log") - before_log))
    check "the flood logged a few lines, not one per datagram ($lines)" test "$lines" -le 40
    out=$(fetch 2 cli 10.30.0.1 10)  # two queries, answered after 2 s each
    check "host 2's client still reaches web through its RR ServiceIP ($out)" test "$out" = web-h1
    ;;

  broker_late)
    # The agents start while no broker runs; the broker comes up 3 s later, and the cluster's
    # manager only after both agents asked for a subnet: those requests reach no subscriber and
    # are lost, so each agent asks again after 10 s (as the reference's restart after its 10 s
    # timeout would).
    cluster_agent 1
    cluster_agent 2
    sleep 3
    check "host 1 waits for registration while the broker is down" test "$(status_field 1 state)" = "waiting for registration"
    check "and is still alive" agent_alive 1
    broker_start
    asked() { grep -q "asked the cluster at .* for a subnet" "$(state)/agent$1.log"; }
    wait_until 30 asked 1 && wait_until 30 asked 2 || die "the agents did not ask for a subnet"
    manager_start
    wait_registered 1 30
    wait_registered 2 30
    check "both hosts registered once the broker came up" registered 1
    check "host 1 asked again after its first request went unanswered" \
      grep -q "no subnetwork/result from .* within 10 s; asking again" "$(state)/agent1.log"
    check "host 2 got its subnet" test "$(status_field 2 subnet)" = 10.18.0.128/26
    deploy 1 web "$web" 0 >/dev/null || die "deploy web on host 1"
    deploy 2 cli "$client" 0 >/dev/null || die "deploy client on host 2"
    serve 1 web web-h1
    check "and traffic flows through a queried ServiceIP" test "$(fetch 2 cli 10.30.0.1)" = web-h1
    ;;

  broker_restart)
    two_hosts_with_web
    check "before the restart: host 2 reaches web" test "$(fetch 2 cli 10.30.0.1)" = web-h1
    broker_stop
    check "while the broker is down: known ServiceIPs still work" test "$(fetch 2 cli 10.30.0.1)" = web-h1
    wait_until 10 connected 2 false
    check "host 2 noticed the broker is gone" test "$(status_field 2 cluster_connected)" = false
    events=$(fm events "$mlog")
    broker_start
    manager_subscribed $((events + 1)) || die "the fake manager did not come back to the broker"
    check "host 1 reconnects to the restarted broker" wait_until 20 connected 1 true
    check "host 2 reconnects to the restarted broker" wait_until 20 connected 2 true
    check "after the restart: traffic still flows" test "$(fetch 2 cli 10.30.0.1)" = web-h1
    deploy 1 api "$api" 0 >/dev/null || die "deploy api on host 1 after the restart"
    serve 1 api api-h1
    wait_until 5 mqtt_seen node1/net/service/deployed appname="$api"
    check "the deploy after the restart reached the cluster" test "$(mqtt_count node1/net/service/deployed appname="$api")" -eq 1
    check "a new service is resolved after the restart" test "$(fetch 2 cli 10.30.0.3 5)" = api-h1
    check "host 2 asked the restarted cluster about it" test "$(mqtt_count node2/net/tablequery/request sip=10.30.0.3)" -eq 1
    # The job subscriptions taken before the restart must be renewed on the new broker.
    before=$(queries_for 2 "$web")
    publish "jobs/$web/updates_available" '{"type": "update"}' || die "publish updates_available"
    check "host 2 still follows web's updates after the restart (a notice makes it query web again)" \
      wait_until 5 more_queries_for 2 "$web" "$before"
    ;;

  malformed)
    two_hosts_with_web
    check "host 2 reaches web (so it is subscribed to web's updates)" test "$(fetch 2 cli 10.30.0.1)" = web-h1
    table_before=$(api_json 2 GET /table | jq -S .)
    subnet_before=$(status_field 2 subnet)
    malformed_before=$(metric 2 netmanager_table_query_malformed_total)
    # One file per payload (a NUL byte or 200 kB do not fit in an argument).
    mkdir "$work/bad"
    payloads=(
      'not json' '' '[]' '"text"' 'null' '{}' '{"address": 5}' '{"address": "999.1.1.0"}'
      '{"address": "10.18.9.0", "addressv6": ""}'
      '{"app_name": 7, "instance_list": []}' '{"app_name": "x", "instance_list": "nope"}'
      '{"app_name": "app.ns.web.default", "query_key": "10.30.0.1", "instance_list": [{"instance_number": "zero"}]}'
      '{"app_name": "app.ns.web.default", "query_key": "10.30.0.1", "instance_list": [{"instance_number": 0, "namespace_ip": "10.9.9.9", "host_ip": "10.250.0.9", "host_port": 50103, "service_ip": [{"IpType": "RR", "Address": "10.30.0.1"}]}]}'
      '{"app_name": "app.ns.web.default", "query_key": "10.30.0.1", "instance_list": [{"instance_number": 0, "namespace_ip": "10.18.0.66", "host_ip": "10.250.0.1", "host_port": 0, "service_ip": [{"IpType": "Bogus", "Address": "10.30.0.1"}]}]}'
      '{"app_name": "bad name", "instance_list": [{}]}'
      '{"app_name": "app.ns.web.default", "query_key": "10.30.0.1", "instance_list": [{"instance_number": 0, "namespace_ip": "10.18.0.66", "host_ip": "10.250.0.1", "host_port": 50103, "service_ip": [{"IpType": "RR", "Address": "8.8.8.8"}]}]}'
    )
    k=0
    for p in "${payloads[@]}"; do k=$((k + 1)); printf '%s' "$p" >"$work/bad/$k"; done
    printf '\xff\xfe\x00binary{"address":' >"$work/bad/binary"
    { printf '{"address": "'; head -c 200000 /dev/zero | tr '\0' 'x'; printf '"}'; } >"$work/bad/big"
    nbad=$(find "$work/bad" -type f | wc -l)
    topics=(nodes/node2/net/subnetwork/result nodes/node2/net/tablequery/result "jobs/$web/updates_available")
    for topic in "${topics[@]}"; do
      nm_in "$prefix-h1" /usr/bin/python3 "$here/fake_manager.py" publish --host "$broker" --port "$port" "$topic" "$work"/bad/* ||
        die "could not publish to $topic"
    done
    sleep 1
    check "host 2's agent is alive after $nbad bad payloads on each of ${#topics[@]} topics" agent_alive 2
    check "still registered with the same subnet" test "$(status_field 2 state)/$(status_field 2 subnet)" = "running/$subnet_before"
    check "its table is unchanged" test "$(api_json 2 GET /table | jq -S .)" = "$table_before"
    malformed_after=$(metric 2 netmanager_table_query_malformed_total)
    check "bad tablequery/results were counted as malformed ($malformed_before -> $malformed_after)" \
      test "$malformed_after" -gt "$malformed_before"
    n=$(grep -c 'malformed' "$(state)/agent2.log")
    check "and logged ($n log lines say malformed)" test "$n" -ge 2
    longest=$(awk '{ if (length($0) > m) m = length($0) } END { print m + 0 }' "$(state)/agent2.log")
    check "a 200 kB payload does not become a 200 kB log line (longest line: $longest characters)" test "$longest" -le 4096
    n=$(mqtt_count node2/net/tablequery/request sname="$web")
    echo "$nbad updates_available notices for web caused $n table queries for it"
    check "updates_available notices, whatever their payload, refresh the job (not more often than notices came)" \
      test "$n" -ge 1 -a "$n" -le "$nbad"
    check "traffic still flows" test "$(fetch 2 cli 10.30.0.1)" = web-h1
    deploy 1 api "$api" 0 >/dev/null || die "deploy api on host 1"
    serve 1 api api-h1
    check "and a new service is still resolved" test "$(fetch 2 cli 10.30.0.3 5)" = api-h1
    ;;

  tls)
    # The broker also listens with TLS on 8883 and asks clients for a certificate of its CA.
    # Host 1's agent holds one (MqttCert/MqttKey/MqttCa in a config file), host 2's is signed
    # by another CA. The fake manager stays on the plain listener: both reach the same topics.
    d=$work/tls
    mkdir -p "$d"
    ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
    for ca in ca other; do
      openssl req -x509 "${ec[@]}" -days 2 -subj "/CN=test $ca" -keyout "$d/$ca.key" -out "$d/$ca.crt" 2>/dev/null ||
        die "openssl: cannot make the $ca CA"
    done
    issue() {  # issue NAME CA CN [SAN]: a key and a certificate signed by CA
      openssl req "${ec[@]}" -subj "/CN=$3" ${4:+-addext "subjectAltName=$4"} -keyout "$d/$1.key" \
        -out "$d/$1.csr" 2>/dev/null &&
        openssl x509 -req -in "$d/$1.csr" -CA "$d/$2.crt" -CAkey "$d/$2.key" -CAcreateserial -days 2 \
          -copy_extensions copyall -out "$d/$1.crt" 2>/dev/null || die "openssl: cannot issue $1"
    }
    issue broker ca broker "IP:$broker"
    issue node1 ca node1
    issue node2 other node2
    # mosquitto started as root reads its certificates as the user mosquitto (throwaway test keys).
    chmod 711 "$work" && chmod -R a+rX "$d"
    broker_start "listener 8883 $broker
cafile $d/ca.crt
certfile $d/broker.crt
keyfile $d/broker.key
require_certificate true"
    nm_wait_listen "$prefix-h1" 8883 || die "mosquitto does not listen on $broker:8883"
    manager_start
    for i in 1 2; do
      printf '{"MqttCert": "%s", "MqttKey": "%s", "MqttCa": "%s"}' "$d/node$i.crt" "$d/node$i.key" "$d/ca.crt" >"$work/netcfg$i.json"
    done
    cluster_agent 1 -c "$work/netcfg1.json" --mqtt-port 8883
    wait_registered 1
    check "host 1 registered through the TLS listener and got its subnet" \
      test "$(status_field 1 subnet)" = 10.18.0.64/26
    check "the broker saw a client connect on port 8883" grep -q "on port 8883" "$(state)/broker1.log"
    check "host 1's log says MQTT runs over TLS" grep -q "MQTT over TLS" "$(state)/agent1.log"
    cluster_agent 2 -c "$work/netcfg2.json" --mqtt-port 8883
    sleep 4
    check "host 2, whose certificate another CA signed, is not registered" \
      test "$(status_field 2 state)" = "waiting for registration"
    check "and is not connected" connected 2 false
    check "and is still alive, retrying" agent_alive 2
    check "it asked for no subnet" test "$(mqtt_count node2/net/subnet)" -eq 0
    # A certificate without its key is a configuration error, reported at start.
    printf '{"MqttCert": "%s"}' "$d/node1.crt" >"$work/netcfg-half.json"
    out=$(nm_in "$prefix-h2" timeout 10 "$NM_AGENT_BIN" -c "$work/netcfg-half.json" --cluster "$broker" \
      --mqtt-port 8883 --node-id node3 --node-ip "$(nm_underlay_ip 2)" --prefix "${prefix}x" --tun "${prefix}xtun" --bridge "${prefix}xbr" \
      --api-socket "$work/half.sock" 2>&1)
    rc=$?
    check "an agent with MqttCert and no MqttKey stops at start (exit $rc)" test "$rc" -ne 0 -a "$rc" -ne 124
    check "and says why" grep -q "needs both a certificate (MqttCert) and its key (MqttKey)" <<<"$out"
    check "and leaves no TUN or bridge behind" \
      test -z "$(ip -n "$prefix-h2" -o link show | grep -E "${prefix}x(tun|br)")"
    ;;

  *) echo "unknown case $case_name" >&2; exit 2 ;;
esac

if [ "$failures" -gt 0 ]; then
  dump_logs
  exit 1
fi
