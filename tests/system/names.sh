#!/usr/bin/env bash
# Service names (docs/names.md) with real clients:  names.sh CASE
# Two simulated hosts with the seed's agents and app namespaces (testenv/lib.sh): web (myapp1,
# HTTP on 8080 answering its host) and client (myapp2) on each. web's names:
#   web.default.app.ns.local (RR 10.30.0.1), closest.web... (10.30.0.2),
#   instance-<i-1>.web.default.app.ns.local (10.30.1.<i>). Host i's bridge is 10.18.<i>.1.
prefix="n$(($$ % 100000))"
source "$(dirname "$0")/common.sh"
web=web.default.app.ns.local

dig_short() { in_client "$1" dig +short +time=2 +tries=1 "${@:2}" | tr '\n' ' ' | sed 's/ $//'; }
dig_status() { in_client "$1" dig +time=2 +tries=1 "${@:2}" | sed -n 's/.*status: \([A-Z]*\),.*/\1/p'; }
# CMD in host 2's client namespace with /etc/resolv.conf naming a resolver unrelated to the
# agent (as a container runtime may have written it): only the agent's redirect can answer.
printf 'nameserver 192.0.2.53\n' >"$work/resolv.conf"
unmodified() {
  nsenter --net="/run/netns/$(app 2 myapp2)" -- unshare --mount --propagation private -- \
    /bin/sh -c 'mount --bind "$0" /etc/resolv.conf && exec "$@"' "$work/resolv.conf" "$@"
}

# mDNS clients (avahi_ns.sh): a private avahi-daemon in host HOST's client namespace (myapp2);
# in_avahi runs a client beside it (its network namespace and its mounts: /run, /etc).
avahi_up() {  # avahi_up HOST
  local dir="$work/avahi$1"
  mkdir -p "$dir"
  nm_spawn "$prefix" "avahi$1" "$(app "$1" myapp2)" "$dir/holder.log" \
    unshare --mount --propagation private -- bash "$here/avahi_ns.sh" "$dir" || return 1
  wait_until 10 grep -qs "Server startup complete" "$dir/avahi.log" ||
    { echo "avahi-daemon in host $1 did not start: $(tail -n 3 "$dir"/*.log | tr '\n' ' ')"; return 1; }
}
in_avahi() { nsenter -t "$(nm_pid_of "$prefix" "avahi$1")" -m -n -- "${@:2}"; }  # in_avahi HOST CMD...
needs() {  # needs CASE COMMAND...: exit 77 (ctest SKIP) naming what is missing
  local c missing=()
  for c in "${@:2}"; do command -v "$c" >/dev/null || missing+=("$c"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "SKIP: case $1 needs ${missing[*]} (scripts/setup.sh installs them)"
  exit 77
}
case $case_name in
  avahi) needs avahi avahi-daemon avahi-resolve dbus-daemon ;;
  nss_mdns)
    needs nss_mdns avahi-daemon dbus-daemon getent
    ldconfig -p | grep -q libnss_mdns4.so || { echo "SKIP: case nss_mdns needs libnss-mdns (scripts/setup.sh installs it)"; exit 77; }
    ;;
  podman)
    needs podman podman runc busybox
    ldd /bin/busybox >/dev/null 2>&1 && { echo "SKIP: case podman needs a static /bin/busybox (busybox-static)"; exit 77; }
    ;;
esac

nm_hosts_up "$prefix" 2 || exit 1
if [ "$case_name" = forward ]; then
  # The node's upstream: a dnsmasq on host 2's underlay address, with names of its own.
  printf '192.0.2.99 upstream.example\n' >"$work/hosts"
  nm_spawn "$prefix" dnsmasq "$prefix-h2" "$(nm_state "$prefix")/dnsmasq.log" dnsmasq \
    --keep-in-foreground --no-daemon --conf-file=/dev/null --no-resolv --no-hosts \
    --addn-hosts="$work/hosts" --local=/example/ --listen-address=10.250.0.2 --bind-interfaces --port=53 \
    --user=root --pid-file="$work/dnsmasq.pid" || exit 1
  export DnsUpstream=10.250.0.2
fi
nm_seed_up "$prefix" 2 || { dump_logs; exit 1; }
for h in 1 2; do
  serve_web "$h" || exit 1
done

case $case_name in
  dig)
    check "dig over UDP: the RR name is web's RR ServiceIP" test "$(dig_short 2 @10.18.2.1 $web)" = 10.30.0.1
    check "dig over TCP: the same" test "$(dig_short 2 +tcp @10.18.2.1 $web)" = 10.30.0.1
    check "instance-0 is host 1's instance ServiceIP" test "$(dig_short 2 @10.18.2.1 instance-0.$web)" = 10.30.1.1
    check "instance-1 is host 2's" test "$(dig_short 2 +tcp @10.18.2.1 instance-1.$web)" = 10.30.1.2
    check "closest is web's Closest ServiceIP" test "$(dig_short 2 @10.18.2.1 closest.$web)" = 10.30.0.2
    out=$(in_client 2 dig +time=2 +tries=1 @10.18.2.1 WEB.Default.APP.ns.LOCAL)
    check "matching ignores case and the answer keeps the job's spelling" \
      grep -Eq "^web.default.app.ns.local.[[:space:]]+5[[:space:]]+IN[[:space:]]+A[[:space:]]+10.30.0.1" <<<"$out"
    check "an unknown job is NXDOMAIN" test "$(dig_status 2 @10.18.2.1 nope.default.app.ns.local)" = NXDOMAIN
    check "an unknown instance is NXDOMAIN" test "$(dig_status 2 @10.18.2.1 instance-9.$web)" = NXDOMAIN
    check "AAAA of a name without IPv6 is NOERROR with no records" \
      test "$(dig_status 2 @10.18.2.1 AAAA $web)/$(dig_short 2 @10.18.2.1 AAAA $web)" = "NOERROR/"
    check "the answers are counted" test "$(metric 2 netmanager_dns_answered_total)" -ge 6
    ;;
  intercept)
    out=$(unmodified getent hosts $web)
    check "getent hosts through a resolv.conf naming 192.0.2.53 gets web's RR ServiceIP ($out)" \
      test "${out%% *}" = 10.30.0.1
    seen=$(for k in 1 2 3 4; do unmodified curl -sS --max-time 5 "http://$web:8080/id"; echo; done | tr '\n' ' ')
    check "curl by name reaches web, new connections alternating between the instances ($seen)" \
      test "$seen" = "web-h1 web-h2 web-h1 web-h2 " -o "$seen" = "web-h2 web-h1 web-h2 web-h1 "
    out=$(unmodified curl -sS --max-time 5 "http://instance-0.$web:8080/id")
    check "curl by instance name reaches exactly that instance ($out)" test "$out" = web-h1
    check "a query to any address's port 53 is answered by the agent" \
      test "$(dig_short 2 @10.250.0.1 closest.$web)" = 10.30.0.2
    ;;
  search_domain)
    ns=$(app 2 myapp2)
    check "the agent wrote the namespace's resolv.conf (nameserver, search app.ns.local)" \
      grep -qx "search app.ns.local" "/etc/netns/$ns/resolv.conf"
    out=$(ip netns exec "$ns" getent hosts web.default)
    check "inside an instance of app.ns the short name web.default resolves ($out)" test "${out%% *}" = 10.30.0.1
    out=$(ip netns exec "$ns" curl -sS --max-time 5 "http://instance-1.web.default:8080/id")
    check "and curl by short instance name reaches it ($out)" test "$out" = web-h2
    nm_api "$prefix" 2 POST /netns/undeploy '{"name":"myapp2","serviceName":"app.ns.client.default","instanceNumber":1}' >/dev/null
    check "undeploy removes the namespace's resolv.conf" test ! -e "/etc/netns/$ns/resolv.conf"
    ;;
  forward)
    check "a name that is not ours is forwarded to the node's upstream (dnsmasq on host 2)" \
      test "$(dig_short 1 @10.18.1.1 upstream.example)" = 192.0.2.99
    out=$(unmodified getent hosts upstream.example)
    check "also for an unmodified client ($out)" test "${out%% *}" = 192.0.2.99
    check "an unknown outside name keeps the upstream's NXDOMAIN" \
      test "$(dig_status 1 @10.18.1.1 nothing.example)" = NXDOMAIN
    check "the forwarding is counted" test "$(metric 1 netmanager_dns_forward_answers_total)" -ge 2
    ;;
  not_open)
    before=$(metric 1 netmanager_dns_answered_total)
    check "the node itself gets no answer from the bridge address" \
      bash -c "! nsenter --net=/run/netns/$prefix-h1 dig +short +time=1 +tries=1 @10.18.1.1 $web 2>/dev/null | grep -qE '^[0-9.]+\$'"
    ip -n "$prefix-h2" route add 10.18.1.1/32 via 10.250.0.1
    check "another host routed to the bridge address gets no answer" \
      bash -c "! nsenter --net=/run/netns/$prefix-h2 dig +short +time=1 +tries=1 @10.18.1.1 $web 2>/dev/null | grep -qE '^[0-9.]+\$'"
    check "nor over TCP" \
      bash -c "! nsenter --net=/run/netns/$prefix-h2 dig +short +tcp +time=1 +tries=1 @10.18.1.1 example.org 2>/dev/null | grep -qE '^[0-9.]+\$'"
    after=$(metric 1 netmanager_dns_answered_total)
    check "none of them was answered ($before -> $after)" test "$after" = "$before"
    check "the node's own query was dropped as not_local" \
      test "$(metric 1 'netmanager_dns_dropped_total{reason="not_local"}')" -ge 1
    ;;
  malformed)
    in_client 2 python3 - <<'PY'
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
q = bytes.fromhex("123401000001000000000000") + b"\x03web\x07default\x03app\x02ns\x05local\x00\x00\x01\x00\x01"
for d in [b"\x01", q[:-3], q[:2] + b"\x81" + q[3:], q[:4] + b"\xff\xff" + q[6:],
          bytes.fromhex("123401000001000000000000c00c00010001")]:
    s.sendto(d, ("10.18.2.1", 53))
PY
    sleep 0.5
    for reason in truncated not_query counts compression; do
      check "a malformed query is dropped as $reason" \
        test "$(metric 2 "netmanager_dns_dropped_total{reason=\"$reason\"}")" -ge 1
    done
    check "and the server still answers" test "$(dig_short 2 @10.18.2.1 $web)" = 10.30.0.1
    ;;
  mdns)
    # dig 9.18 connects its socket to the server it is given, so it can only hear a response from
    # the group address itself, which no responder sends from; it asks the responder directly
    # (RFC 6762 5.5), a one-shot query from another port (legacy unicast, 6.7).
    out=$(dig_short 2 -p 5353 @10.18.2.1 $web)
    check "dig -p 5353 at the responder gets web's RR ServiceIP by mDNS ($out)" test "$out" = 10.30.0.1
    out=$(in_client 2 /usr/bin/python3 "$here/mdns_probe.py" qu "closest.$web")
    check "a QU question from port 5353 is answered by unicast ($out)" test "$out" = "10.18.2.15 10.30.0.2"
    out=$(in_client 2 /usr/bin/python3 "$here/mdns_probe.py" qm "instance-0.$web")
    check "a QM question is answered to the group ($out)" test "$out" = "224.0.0.251 10.30.1.1"
    out=$(in_client 2 /usr/bin/python3 "$here/mdns_probe.py" qm "instance-1.$web" "closest.$web")
    check "a query with two questions gets both answers in one response ($out)" test "$out" = "224.0.0.251 10.30.1.2 10.30.0.2"
    out=$(in_client 2 /usr/bin/python3 "$here/mdns_probe.py" qm "someone-else.local")
    check "a name that is not ours gets no response ($out)" test "$out" = none
    ;;
  avahi)
    # avahi-resolve asks its avahi-daemon over D-Bus, which asks the link by mDNS (224.0.0.251).
    for h in 1 2; do avahi_up "$h" || exit 1; done
    resolve() { in_avahi "$1" avahi-resolve -4 -n "$2" 2>&1 | cut -f2; }
    for h in 1 2; do
      o=$((3 - h))
      before=$(metric "$h" 'netmanager_dns_queries_total{transport="mdns"}')
      udp=$(metric "$h" 'netmanager_dns_queries_total{transport="udp"}')
      out=$(resolve "$h" $web)
      check "host $h: avahi-resolve gets web's RR ServiceIP ($out)" test "$out" = 10.30.0.1
      out=$(resolve "$h" "instance-$((h - 1)).$web")
      check "host $h: its own instance's name gets that instance's ServiceIP ($out)" test "$out" = "10.30.1.$h"
      out=$(resolve "$h" "instance-$((o - 1)).$web")
      check "host $h: the name of the instance on host $o gets its ServiceIP ($out)" test "$out" = "10.30.1.$o"
      out=$(resolve "$h" "closest.$web")
      check "host $h: the closest name gets web's Closest ServiceIP ($out)" test "$out" = 10.30.0.2
      out=$(resolve "$h" nope.default.app.ns.local)
      check "host $h: an unknown name is not resolved ($out)" grep -q "Failed to resolve" <<<"$out"
      after=$(metric "$h" 'netmanager_dns_queries_total{transport="mdns"}')
      check "host $h: the agent got them by mDNS ($before -> $after mDNS queries)" test "$after" -ge $((before + 5))
      check "host $h: and no unicast DNS query" test "$(metric "$h" 'netmanager_dns_queries_total{transport="udp"}')" = "$udp"
    done
    ;;
  nss_mdns)
    # getent through libnss-mdns, which asks its avahi-daemon over /run/avahi-daemon/socket.
    avahi_up 2 || exit 1
    hosts() { in_avahi 2 sed -i "s/^hosts:.*/hosts: $1/" /etc/nsswitch.conf; }
    nss() { in_avahi 2 getent ahostsv4 "$1" | awk 'NR == 1 { print $1 }'; }
    queries() { echo "$(metric 2 'netmanager_dns_queries_total{transport="mdns"}')/$(metric 2 'netmanager_dns_queries_total{transport="udp"}')"; }
    in_avahi 2 sh -c 'printf "nameserver 192.0.2.53\n" >/etc/resolv.conf'
    # Debian's line: mdns4_minimal asks avahi only for names of two labels (host.local); longer
    # .local names go on to unicast DNS (the agent, through the redirect).
    hosts "files mdns4_minimal [NOTFOUND=return] dns"
    before=$(queries)
    out=$(nss $web)
    check "with Debian's hosts line web's RR name resolves ($out)" test "$out" = 10.30.0.1
    check "  but by unicast DNS, not mDNS (mDNS/UDP queries $before -> $(queries))" \
      test "$(queries)" = "${before%/*}/$((${before#*/} + 1))"
    in_avahi 2 sh -c 'printf ".local.\n.local\n" >/etc/mdns.allow'
    before=$(queries)
    out=$(nss $web)
    check "  /etc/mdns.allow does not change that: mdns4_minimal ignores it ($before -> $(queries))" \
      test "$out/$(queries)" = "10.30.0.1/${before%/*}/$((${before#*/} + 1))"
    # mdns4 reads /etc/mdns.allow: with ".local" there it asks avahi for every .local name.
    hosts "files mdns4_minimal [NOTFOUND=return] mdns4 [NOTFOUND=return] dns"
    before=$(queries)
    out=$(nss $web)
    check "with mdns4 and .local in /etc/mdns.allow, getent gets web's RR ServiceIP ($out)" test "$out" = 10.30.0.1
    out=$(nss "instance-1.$web")
    check "  this host's instance name gets its ServiceIP ($out)" test "$out" = 10.30.1.2
    out=$(nss "instance-0.$web")
    check "  the name of the instance on host 1 gets its ServiceIP ($out)" test "$out" = 10.30.1.1
    out=$(nss nope.default.app.ns.local)
    check "  an unknown name is not found ($out)" test -z "$out"
    after=$(queries)
    check "  all of them by mDNS, no unicast DNS query ($before -> $after)" \
      test "${after#*/}" = "${before#*/}" -a "${after%/*}" -ge $((${before%/*} + 4))
    ;;
  podman)
    # A podman container as an Oakestra node engine starts one: a network namespace of its own
    # (--network none: only lo), then the agent attaches it by PID (POST /container/deploy). Its
    # /etc/resolv.conf names a resolver unrelated to the agent and the app's search domain.
    # Podman's state lives in $work; the container's root is a folder with busybox-static's busybox
    # (--rootfs: no image, no registry).
    pod=(podman --root "$work/podman/root" --runroot "$work/podman/run" --tmpdir "$work/podman/tmp"
      --storage-driver vfs --cgroup-manager cgroupfs --events-backend none --runtime runc)
    box="$prefix-box"
    trap '"${pod[@]}" rm -f -t 0 "$box" >/dev/null 2>&1; cleanup' EXIT
    mkdir -p "$work/rootfs/bin" "$work/rootfs/etc" "$work/rootfs/tmp" "$work/podman/tmp"
    cp /bin/busybox "$work/rootfs/bin/"
    for a in sh sleep nslookup wget; do ln -s busybox "$work/rootfs/bin/$a"; done
    printf 'nameserver 192.0.2.53\nsearch app.ns.local\noptions ndots:2\n' >"$work/box-resolv.conf"
    # Limits at or below the caller's own: a runtime cannot raise them without CAP_SYS_RESOURCE.
    out=$("${pod[@]}" run -d --name "$box" --network none --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 \
      -v "$work/box-resolv.conf:/etc/resolv.conf:ro" --rootfs "$work/rootfs" /bin/sleep 600 2>&1) ||
      { echo "podman run: $out"; exit 1; }
    pid=$("${pod[@]}" inspect -f '{{.State.Pid}}' "$box")
    check "the container runs in a network namespace of its own (pid $pid)" \
      test "$(stat -L -c %i "/proc/$pid/ns/net")" != "$(stat -L -c %i "/run/netns/$prefix-h2")"
    out=$(nm_api "$prefix" 2 POST /container/deploy "{\"pid\":$pid,\"serviceName\":\"app.ns.box.default\",\"instanceNumber\":0}" 2>&1)
    nsip=$(jq -r .nsAddress <<<"$out" 2>/dev/null)
    check "the agent attaches it by PID ($out)" test -n "$nsip" -a "$nsip" != null
    # The job's table entry, as the cluster would spread it: host 1 answers it through the tunnel.
    entry="{\"appname\":\"app\",\"appns\":\"ns\",\"servicename\":\"box\",\"servicenamespace\":\"default\",
      \"instancenumber\":0,\"nodeip\":\"$(nm_underlay_ip 2)\",\"nodeport\":$NM_TUNNEL_PORT,\"nsip\":\"$nsip\",
      \"serviceip\":[{\"IpType\":\"InstanceNumber\",\"Address\":\"10.30.3.1\"},{\"IpType\":\"RR\",\"Address\":\"10.30.0.5\"}]}"
    for h in 1 2; do nm_api "$prefix" "$h" POST /table "[$entry]" >/dev/null || { echo "FAIL: POST /table on host $h"; exit 1; }; done
    in_box() { timeout 10 "${pod[@]}" exec "$box" "$@" 2>&1; }
    lookup() { in_box nslookup "$1" | awk '/^Name:/ { n = 1 } n && /^Address/ { print $2; exit }'; }
    out=$(lookup $web)
    check "busybox nslookup in the container resolves web's RR name through 192.0.2.53 ($out)" test "$out" = 10.30.0.1
    out=$(lookup "instance-0.$web")
    check "and the name of web's instance on host 1 ($out)" test "$out" = 10.30.1.1
    out=$(in_box wget -q -O - "http://instance-0.$web:8080/id")
    check "busybox wget by name fetches from the instance on host 1 ($out)" test "$out" = web-h1
    out=$(in_box wget -q -O - "http://instance-0.web.default:8080/id")
    # busybox wget resolves with getaddrinfo, which applies the search domain (nslookup does not).
    check "and by its short name ($out)" test "$out" = web-h1
    seen=$(for k in 1 2 3 4; do in_box wget -q -O - "http://web.default:8080/id"; echo; done | tr '\n' ' ')
    check "by web's short RR name new connections alternate between the hosts ($seen)" \
      test "$seen" = "web-h1 web-h2 web-h1 web-h2 " -o "$seen" = "web-h2 web-h1 web-h2 web-h1 "
    ;;
  *)
    echo "unknown case $case_name"
    exit 2
    ;;
esac
[ "$failures" -eq 0 ] || { dump_logs; exit 1; }
