#!/usr/bin/env bash
# The operational subcommands against a real agent in a simulated host:  cli.sh CASE
#   status   `netmanager status` prints what the agent's GET /status says; without an agent it
#            fails with a clear message and exit status 1
#   logs     `netmanager logs --log-file F` shows the log an agent started with --log-file F writes
#   version  `netmanager version` and `--version` print the build's version
set -uo pipefail
cli_dir=$(cd "$(dirname "$0")" && pwd)
case_name=${1:?usage: cli.sh CASE}
prefix="c$(($$ % 100000))"
source "$cli_dir/../system/common.sh"
bin=$NM_AGENT_BIN

start_agent() {  # one host, the seed table, one app namespace; extra args to the agent
  table="$(nm_state "$prefix")/table.json"
  nm_hosts_up "$prefix" 1 || exit 1
  nm_seed_table 1 "$table" || exit 1
  nm_agent_start "$prefix" 1 "$table" "$@" || exit 1
  nm_app_deploy "$prefix" 1 myapp1 "$NM_SEED_WEB" 0 "$(nm_seed_nsip 1 myapp1)" || exit 1
  sock=$(nm_agent_socket "$prefix" 1)
}
field() { /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

case $case_name in
  status)
    start_agent
    api_state=$(nm_api "$prefix" 1 GET /status | field state)
    api_ip=$(nm_api "$prefix" 1 GET /status | field node_ip)
    out=$("$bin" status --api-socket "$sock"); rc=$?
    echo "$out"
    check "status exits 0 with an agent running" test "$rc" -eq 0
    check "status names the socket it asked" grep -qxF "netmanager agent at $sock" <<<"$out"
    check "status prints the agent's state ($api_state)" grep -qE "^state +$api_state\$" <<<"$out"
    check "status prints the agent's node_ip ($api_ip)" grep -qE "^node_ip +$api_ip\$" <<<"$out"
    check "status lists the deployed instance" \
      grep -qE "^  - serviceName=$NM_SEED_WEB +instanceNumber=0 +nsAddress=$(nm_seed_nsip 1 myapp1)" <<<"$out"
    json=$("$bin" status --api-socket "$sock" --json)
    check "status --json is the agent's JSON" test "$(field node_ip <<<"$json")" = "$api_ip"
    nm_agent_stop "$prefix" 1
    err=$("$bin" status --api-socket "$sock" 2>&1 >/dev/null); rc=$?
    echo "$err"
    check "status exits 1 once the agent is stopped (exit $rc)" test "$rc" -eq 1
    check "status says no agent runs and names the socket" \
      grep -q "no agent is running" <<<"$err"
    check "the error names the socket" grep -qF "$sock" <<<"$err"
    ;;
  logs)
    log="$work/netmanager.log"
    start_agent --log-file "$log"
    out=$("$bin" logs --log-file "$log" -n 1000); rc=$?
    check "logs --log-file exits 0" test "$rc" -eq 0
    check "logs shows the agent's start line" grep -q "netmanager $("$bin" version | cut -d' ' -f2-) starting" <<<"$out"
    check "logs shows the deploy the agent logged" grep -q "deployed $NM_SEED_WEB instance 0" <<<"$out"
    check "logs -n 1 shows one line" test "$("$bin" logs --log-file "$log" -n 1 | wc -l)" -eq 1
    # Follow: a line the agent logs after `logs -f` started appears in its output.
    "$bin" logs --log-file "$log" -n 0 -f >"$work/follow.out" &
    follower=$!
    # Until the follower has the file open, a line could fall before its -n 0 starting point.
    for _ in $(seq 100); do ls -l "/proc/$follower/fd" 2>/dev/null | grep -qF "$log" && break; sleep 0.1; done
    sleep 0.2
    nm_api "$prefix" 1 POST /netns/undeploy "{\"serviceName\":\"$NM_SEED_WEB\",\"instanceNumber\":0}" >/dev/null
    for _ in $(seq 150); do grep -q undeployed "$work/follow.out" && break; sleep 0.1; done
    kill "$follower"; wait "$follower" 2>/dev/null
    cat "$work/follow.out"
    check "logs -f prints lines logged after it started" grep -q "undeployed $NM_SEED_WEB instance 0" "$work/follow.out"
    err=$("$bin" logs --log-file "$work/none.log" 2>&1); rc=$?
    check "logs of a missing file exits 1 naming it" test "$rc" -eq 1 -a -n "$(grep -F "$work/none.log" <<<"$err")"
    ;;
  version)
    v=$("$bin" version)
    project=$(sed -n 's/^project(netmanager VERSION \([0-9.]*\).*/\1/p' "$cli_dir/../../CMakeLists.txt")
    check "version prints 'netmanager $project...' ($v)" grep -q "^netmanager $project\( (git [^)]*)\)\?\$" <<<"$v"
    check "--version prints the same" test "$("$bin" --version)" = "$v"
    check "--help lists the subcommands" test "$("$bin" --help | grep -cE '^ +netmanager (status|logs|version)|^Usage: netmanager')" -ge 4
    for c in status logs; do
      check "$c --help explains $c" grep -q "^Usage: netmanager $c" <<<"$("$bin" $c --help)"
    done
    ;;
  *) echo "unknown case $case_name"; exit 2 ;;
esac
exit $((failures > 0))
