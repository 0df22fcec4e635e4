# The preamble the system test scripts share: strict mode, the case to run (the script's first
# argument, as `case_name`; `usage_cases` names them in the usage line, default CASE), `here`
# (this folder), the simulated-host library, a work folder, cleanup on exit (the caller's `prefix`
# hosts and the folder), check() and wait_until(), and the helpers for the seed's hosts below.
# Set `prefix` before sourcing:  prefix="s$(($$ % 100000))"; source "$(dirname "$0")/common.sh"
set -uo pipefail
case_name=${1:?usage: ${0##*/} ${usage_cases:-CASE}}
system_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
here=$system_dir
source "$system_dir/../../testenv/lib.sh"
export NM_AGENT_SHARDS=${NM_AGENT_SHARDS:-2}
failures=0
work=$(mktemp -d)
cleanup() {
  nm_hosts_down "$prefix"
  rm -rf "$work"
}
trap cleanup EXIT

check() {  # check DESCRIPTION COMMAND...: passes when COMMAND succeeds
  local what=$1; shift
  if "$@"; then echo "ok: $what"; else echo "FAIL: $what"; failures=$((failures + 1)); fi
}

wait_until() {  # wait_until SECS COMMAND...: polls every 0.1 s
  local t limit=$(($1 * 10)); shift
  for ((t = 0; t < limit; t++)); do "$@" && return 0; sleep 0.1; done
  return 1
}

app() { nm_app_ns "$prefix" "$1" "$2"; }            # app HOST NAME -> namespace
in_client() { nm_in "$(app "$1" myapp2)" "${@:2}"; }  # in_client HOST CMD...
metric() {  # metric HOST 'name{labels}' -> value (0 when absent)
  nm_api "$prefix" "$1" GET /metrics | awk -v m="$2" '$1 == m { v = $2 } END { print v + 0 }'
}
tail_logs() {  # tail_logs [N]: the last N (20) lines of each log in the hosts' state folder
  local f
  for f in "$(nm_state "$prefix")"/*.log; do echo "--- $f"; tail -n "${1:-20}" "$f"; done
}
dump_logs() { tail_logs; }  # what a failing case prints; a script may print more
serve_web() {  # serve_web HOST [DIR]: web-hHOST (service.py: HTTP, files from DIR or $work, and
  # UDP echo on 8080) in host's web namespace (myapp1), listening
  nm_spawn "$prefix" "web$1" "$(app "$1" myapp1)" "$(nm_state "$prefix")/web$1.log" \
    python3 "$system_dir/service.py" serve 8080 "web-h$1" "${2:-$work}" || return 1
  nm_wait_listen "$(app "$1" myapp1)" 8080
}
