#!/usr/bin/env bash
# Builds the DNS query fuzzer with clang++-14 (libFuzzer + ASan + UBSan) straight from the
# sources it needs, then fuzzes for a bounded time. Fails on any crash or sanitizer report.
# Usage: run.sh BUILD_DIR [SECONDS]
set -euo pipefail
src="$(cd "$(dirname "$0")/../.." && pwd)"
out="${1:?build directory}/fuzz_dns_query"
seconds="${2:-60}"
mkdir -p "$out/corpus"

sources=(
  src/core/address.cpp src/core/error.cpp src/table/entry.cpp src/table/translation_table.cpp
  src/mdns/names_index.cpp src/mdns/dns_message.cpp src/mdns/reply_cache.cpp
  fuzz/dns_query/fuzz_dns_query.cpp
)
binary="$out/fuzz_dns_query"
newest=$(cd "$src" && ls -t "${sources[@]}" src/mdns/*.hpp src/table/*.hpp fuzz/dns_query/* | head -1)
if [[ ! -x "$binary" || "$src/$newest" -nt "$binary" ]]; then
  echo "building $binary"
  (cd "$src" && clang++-14 -std=c++2b -O1 -g -fno-omit-frame-pointer \
      -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
      -Isrc "${sources[@]}" -lldns -o "$binary")
fi

# Seeds: queries for an RR name, an instance name (QU bit set), a forwarded name, AAAA.
seed() { printf "$2" > "$out/corpus/$1"; }
seed rr       '\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03web\x07default\x03app\x02ns\x05local\x00\x00\x01\x00\x01'
seed instance '\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x0ainstance-1\x03web\x07default\x03app\x02ns\x05local\x00\x00\x01\x80\x01'
seed forward  '\xab\xcd\x01\x00\x00\x01\x00\x00\x00\x00\x00\x01\x07example\x03org\x00\x00\x01\x00\x01\x00\x00\x29\x10\x00\x00\x00\x00\x00\x00\x00'
seed aaaa     '\x00\x07\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07closest\xc0\x0c\x00\x1c\x00\x01'

cd "$out"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  "$binary" -max_total_time="$seconds" -rss_limit_mb=1024 -print_final_stats=1 corpus
