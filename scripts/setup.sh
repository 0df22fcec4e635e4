#!/usr/bin/env bash
# Installs every Debian package NetManager needs to build, test, benchmark and demo.
# Idempotent: when everything is present it installs nothing and says so.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config g++-12 clang-14 libclang-rt-14-dev
  clang-format-14 clang-tidy-14
  libboost1.81-dev libboost-json1.81-dev
  liburing-dev libnl-3-dev libnl-route-3-dev libexpected-dev catch2
  libbpf-dev ethtool  # the kernel fast path (src/fastpath, bpf/) and its tests
  libmosquitto-dev mosquitto mosquitto-clients openssl
  nftables libnftables-dev libldns-dev iptables
  iproute2 iperf3 curl dnsutils util-linux procps kmod iputils-ping
  dnsperf dnsmasq-base  # bench/dns_qps and the names tests (an upstream resolver, the anchor)
  avahi-daemon avahi-utils libnss-mdns dbus  # names tests: mDNS clients (avahi-resolve, getent)
  podman runc busybox-static jq  # names tests: a container attached by PID; the tests read JSON
  python3 python3-scapy python3-paho-mqtt
  libbenchmark-dev openvpn netcat-openbsd iptables linux-perf
  dpkg-dev file  # cpack -G DEB (dpkg-shlibdeps) and scripts/check_package.sh
  # The Go reference agent the conformance tests and the benchmark build (a test fixture only).
  golang-go golang-github-coreos-go-iptables-dev golang-github-eclipse-paho.mqtt.golang-dev
  golang-github-google-gopacket-dev golang-github-gorilla-mux-dev golang-github-spf13-cobra-dev
  golang-github-vishvananda-netlink-dev golang-github-vishvananda-netns-dev golang-github-ghodss-yaml-dev
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "setup: missing packages (${missing[*]}); run this script as root" >&2
  exit 1
fi

echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The Debian mosquitto package starts a broker on port 1883; tests start their own.
if command -v systemctl >/dev/null && systemctl is-active --quiet mosquitto 2>/dev/null; then
  systemctl stop mosquitto || true
fi
# avahi-daemon would answer and ask by mDNS on the machine's own links; the names tests start
# their own, inside namespaces.
if command -v systemctl >/dev/null && systemctl is-enabled --quiet avahi-daemon.service 2>/dev/null; then
  systemctl disable --now avahi-daemon.service avahi-daemon.socket || true
fi
echo "setup: done"
