#!/usr/bin/env bash
# A private avahi-daemon and the D-Bus system bus it needs, for the names tests' mDNS clients
# (avahi-resolve talks to avahi over D-Bus, libnss-mdns over /run/avahi-daemon/socket).
#   unshare --mount --propagation private -- bash avahi_ns.sh DIR
# Run it inside a network namespace (an app namespace of a simulated host), in a mount namespace
# of its own: /run becomes a tmpfs (the bus's and avahi's sockets never touch the machine's /run)
# and /etc an overlay whose changes land in DIR/etc (nsswitch.conf, mdns.allow), so nothing
# outside changes. Clients join it with `nsenter -t PID -m -n`. SIGTERM stops both daemons.
set -euo pipefail
dir=$1
mkdir -p "$dir/etc" "$dir/etc.work"
mount -t overlay overlay -o "lowerdir=/etc,upperdir=$dir/etc,workdir=$dir/etc.work" /etc
mount -t tmpfs -o mode=755 tmpfs /run
mkdir -p /run/dbus /run/avahi-daemon

# A system bus that lets everything through: only this namespace's processes can reach it.
cat >"$dir/dbus.conf" <<'EOF'
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=/run/dbus/system_bus_socket</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
  </policy>
</busconfig>
EOF
# A resolver only: IPv4 mDNS on the namespace's interface, nothing published (no host name
# probing), no wide-area (unicast DNS) lookups.
cat >"$dir/avahi-daemon.conf" <<'EOF'
[server]
use-ipv4=yes
use-ipv6=no
enable-dbus=yes
[wide-area]
enable-wide-area=no
[publish]
disable-publishing=yes
EOF

# Both daemons get SIGTERM when this script ends, however it ends (--pdeathsig).
setpriv --pdeathsig TERM dbus-daemon --config-file="$dir/dbus.conf" --nofork --nopidfile >"$dir/dbus.log" 2>&1 &
bus=$!
for _ in $(seq 50); do [ -S /run/dbus/system_bus_socket ] && break; sleep 0.1; done
setpriv --pdeathsig TERM avahi-daemon -f "$dir/avahi-daemon.conf" --no-drop-root --no-chroot --no-rlimits >"$dir/avahi.log" 2>&1 &
avahi=$!
trap 'kill -TERM $avahi $bus 2>/dev/null; wait $avahi $bus 2>/dev/null; exit 0' TERM INT
wait $avahi $bus
