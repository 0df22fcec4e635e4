#!/usr/bin/env bash
# Builds the packet-core fuzzer with clang++-14 (libFuzzer + ASan + UBSan) straight from the
# sources it needs, then fuzzes for a bounded time. Fails on any crash or sanitizer report.
# Usage: run.sh BUILD_DIR [SECONDS]
set -euo pipefail
src="$(cd "$(dirname "$0")/../.." && pwd)"
out="${1:?build directory}/fuzz_packet_core"
seconds="${2:-60}"
mkdir -p "$out/corpus"

sources=(
  src/core/packet.cpp src/core/checksum.cpp src/core/address.cpp src/core/error.cpp
  src/table/entry.cpp src/table/translation_table.cpp src/tunnel/conversion_cache.cpp
  src/tunnel/balancer.cpp src/tunnel/path_counters.cpp src/tunnel/outgoing.cpp
  src/tunnel/incoming.cpp fuzz/packet_core/fuzz_packet_core.cpp
)
binary="$out/fuzz_packet_core"
newest=$(cd "$src" && ls -t "${sources[@]}" src/core/*.hpp src/table/*.hpp src/tunnel/*.hpp fuzz/packet_core/* | head -1)
if [[ ! -x "$binary" || "$src/$newest" -nt "$binary" ]]; then
  echo "building $binary"
  (cd "$src" && clang++-14 -std=c++2b -O1 -g -fno-omit-frame-pointer \
      -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
      -Isrc "${sources[@]}" -o "$binary")
fi

# A few seeds: mode/addresses prefix (9 bytes), then an IPv4 TCP SYN, a UDP datagram, ICMP echo.
seed() { printf "$2" > "$out/corpus/$1"; }
seed tcp  '\x06\xac\x1e\x01\x00\xac\x13\x01\x0a\x45\x00\x00\x28\x00\x01\x00\x00\x40\x06\x00\x00\xac\x13\x01\x02\xac\x1e\x00\x0a\x9c\x40\x00\x50\x00\x00\x00\x01\x00\x00\x00\x00\x50\x02\xff\xff\x00\x00\x00\x00'
seed udp  '\x16\xac\x1e\x01\x00\xac\x13\x01\x0a\x45\x00\x00\x20\x00\x01\x00\x00\x40\x11\x00\x00\xac\x13\x01\x02\xac\x1e\x00\x0b\x13\x89\x00\x35\x00\x0c\x00\x00\x61\x62\x63\x64'
seed icmp '\x27\xac\x1e\x01\x00\xac\x13\x01\x0a\x45\x00\x00\x1c\x00\x01\x20\x00\x40\x01\x00\x00\xac\x13\x01\x02\xac\x1e\x02\x01\x08\x00\x00\x00\x12\x34\x00\x01'

cd "$out"
ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  "$binary" -max_total_time="$seconds" -rss_limit_mb=1024 -print_final_stats=1 corpus
