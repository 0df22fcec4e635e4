#!/usr/bin/env bash
# Builds the DNS query fuzzer with clang++-14 (libFuzzer + ASan + UBSan) straight from the
# sources it needs, then fuzzes for a bounded time. Fails on any crash or sanitizer report.
# Usage: run.sh BUILD_DIR [SECONDS]
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
fuzz_init dns_query "$@"

sources=(
  src/core/address.cpp src/core/error.cpp src/table/entry.cpp src/table/service_group.cpp
  src/table/translation_table.cpp
  src/mdns/names_index.cpp src/mdns/dns_message.cpp src/mdns/reply_cache.cpp
  fuzz/dns_query/fuzz_dns_query.cpp
)
fuzz_build 'src/mdns/*.hpp src/table/*.hpp fuzz/dns_query/*' -lldns

# Seeds: queries for an RR name, an instance name (QU bit set), a forwarded name, AAAA.
seed rr       '\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03web\x07default\x03app\x02ns\x05local\x00\x00\x01\x00\x01'
seed instance '\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x0ainstance-1\x03web\x07default\x03app\x02ns\x05local\x00\x00\x01\x80\x01'
seed forward  '\xab\xcd\x01\x00\x00\x01\x00\x00\x00\x00\x00\x01\x07example\x03org\x00\x00\x01\x00\x01\x00\x00\x29\x10\x00\x00\x00\x00\x00\x00\x00'
seed aaaa     '\x00\x07\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07closest\xc0\x0c\x00\x1c\x00\x01'

fuzz_run 1
