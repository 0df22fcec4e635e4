# The preamble the system test scripts share: the simulated-host library, a work folder, cleanup
# on exit (the caller's `prefix` hosts and the folder), check() and wait_until(). Set `prefix`
# before sourcing.
source "$(dirname "${BASH_SOURCE[0]}")/../../testenv/lib.sh"
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
