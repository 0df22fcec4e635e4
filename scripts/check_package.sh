#!/usr/bin/env bash
# Builds the Debian package from a built tree and checks it: the binary, the systemd unit and
# both default config files are in it, the config files are conffiles, Depends is computed, and
# the binary unpacked from it starts (version, --help, the shipped config files accepted).
# Usage: check_package.sh BUILD_DIR [OUT_DIR]   (OUT_DIR default BUILD_DIR/package; keeps the .deb)
set -euo pipefail
build=$(cd "${1:?usage: check_package.sh BUILD_DIR [OUT_DIR]}" && pwd)
out=${2:-$build/package}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
failures=0
check() {  # check DESCRIPTION COMMAND...
  local what=$1; shift
  if "$@"; then echo "ok: $what"; else echo "FAIL: $what"; failures=$((failures + 1)); fi
}
contains_all() {  # contains_all TEXT WORD...: every WORD occurs in TEXT
  local text=$1 w; shift
  for w; do [[ $text == *"$w"* ]] || return 1; done
}
reference_defaults() {  # reference_defaults DIR: DIR's netcfg.json and tuncfg.json hold them
  /usr/bin/python3 - "$1" <<'PY'
import json, sys
d = sys.argv[1]
net = json.load(open(f"{d}/netcfg.json"))
tun = json.load(open(f"{d}/tuncfg.json"))
want_net = {"NodePublicAddress": "0.0.0.0", "NodePublicPort": "50103", "ClusterUrl": "0.0.0.0",
            "ClusterMqttPort": "10003", "DefaultInterface": "", "Debug": False,
            "PublicIPNetworking": False, "MqttCert": "", "MqttKey": ""}
want_tun = {"HostTunnelDeviceName": "goProxyTun", "TunnelIP": "10.19.1.254",
            "ProxySubnetwork": "10.30.0.0", "ProxySubnetworkMask": "255.255.0.0",
            "TunnelPort": 50103, "MTUsize": 1450, "TunNetIPv6": "fcef::dead:beef",
            "ProxySubnetworkIPv6": "fcef::", "ProxySubnetworkIPv6Prefix": 21}
bad = [(k, v, f.get(k)) for f, want in ((net, want_net), (tun, want_tun)) for k, v in want.items() if f.get(k) != v]
for k, v, got in bad: print(f"  {k}: want {v!r}, got {got!r}")
sys.exit(1 if bad else 0)
PY
}

rm -f "$out"/netmanager_*.deb
cpack --config "$build/CPackConfig.cmake" -G DEB -B "$out" >"$out/cpack.log" 2>&1 ||
  { cat "$out/cpack.log"; echo "FAIL: cpack -G DEB"; exit 1; }
debs=("$out"/netmanager_*.deb)
if [ ${#debs[@]} -ne 1 ] || [ ! -f "${debs[0]}" ]; then
  echo "FAIL: expected one netmanager_*.deb in $out"; exit 1
fi
deb=${debs[0]}
echo "package: $deb ($(du -h "$deb" | cut -f1))"

contents=$(dpkg-deb -c "$deb" | awk '{ print $NF }')
for f in ./usr/bin/netmanager ./usr/lib/systemd/system/netmanager.service \
         ./etc/netmanager/netcfg.json ./etc/netmanager/tuncfg.json; do
  check "the package holds $f" grep -qxF "$f" <<<"$contents"
done
info=$(dpkg-deb -I "$deb")
echo "$info" | sed -n '/^ Package:/,$p'
check "the package is named netmanager" grep -qx ' Package: netmanager' <<<"$info"
depends=$(dpkg-deb -f "$deb" Depends)
check "Depends is computed from the binary's libraries ($depends)" \
  contains_all "$depends" libc6 libstdc++6 liburing libnl-route-3 libmosquitto libnftables libboost-json
conffiles=$(dpkg-deb --ctrl-tarfile "$deb" | tar -xOf - ./conffiles)
check "both config files are conffiles" \
  test "$conffiles" = $'/etc/netmanager/netcfg.json\n/etc/netmanager/tuncfg.json'

dpkg -x "$deb" "$root"
bin=$root/usr/bin/netmanager
project=$(sed -n 's/^project(netmanager VERSION \([0-9.]*\).*/\1/p' "$here/../CMakeLists.txt")
version=$("$bin" version) || true
check "the installed binary prints its version ($version)" grep -q "^netmanager $project" <<<"$version"
check "the installed binary's --help lists status, logs and version" \
  test "$("$bin" --help | grep -cE '^ +netmanager (status|logs|version) ')" -eq 3
check "the installed binary accepts the installed config files" \
  "$bin" -c "$root/etc/netmanager/netcfg.json" -c "$root/etc/netmanager/tuncfg.json" --help >/dev/null
status_rc=0
"$bin" status --api-socket "$root/netmanager.sock" >/dev/null 2>&1 || status_rc=$?
check "the installed binary's status says no agent runs on an unused socket (exit $status_rc)" \
  test "$status_rc" -eq 1
unit=$root/usr/lib/systemd/system/netmanager.service
for line in ExecStart=/usr/bin/netmanager User=root After=network-online.target Restart=on-failure; do
  check "the unit says $line" grep -qx "$line" "$unit"
done
check "the config files hold the reference defaults" reference_defaults "$root/etc/netmanager"
[ "$failures" -eq 0 ] || { echo "$failures check(s) failed"; exit 1; }
echo "package ok"
