#!/usr/bin/env bash
# build_reference.sh SRC_DIR OUT_DIR: the reference Go agent (Oakestra's NetManager v0.4.411),
# built unmodified by SRC_DIR/build.sh into OUT_DIR/NetManager. A test fixture: it never goes into
# the product. Exit 77 (skipped, with the reason) when SRC_DIR has no sources or the Go toolchain
# packages cannot be installed here; exit 1 when they are installed and the build still fails.
set -uo pipefail
src=${1:?usage: build_reference.sh SRC_DIR OUT_DIR} out=${2:?usage: build_reference.sh SRC_DIR OUT_DIR}
if [ ! -f "$src/build.sh" ] || [ ! -f "$src/sources.tar.gz" ]; then
  echo "SKIP: no reference agent sources in '$src' (configure with -DNM_REFERENCE_DIR=DIR)"
  exit 77
fi
if [ -x "$out/NetManager" ] && [ "$out/NetManager" -nt "$src/sources.tar.gz" ] && [ "$out/NetManager" -nt "$src/build.sh" ]; then
  echo "reference agent up to date: $out/NetManager"
  exit 0
fi
mkdir -p "$out" || exit 1
if ! bash "$src/build.sh" "$out" >"$out/build.log" 2>&1; then
  if ! dpkg-query -W -f='${Status}' golang-go 2>/dev/null | grep -q 'ok installed'; then
    echo "SKIP: the Go toolchain packages (golang-go, golang-*-dev; scripts/setup.sh) could not be installed:"
    tail -n 5 "$out/build.log"
    exit 77
  fi
  echo "FAIL: the reference agent does not build:"
  tail -n 20 "$out/build.log"
  exit 1
fi
echo "built $out/NetManager ($(stat -c %s "$out/NetManager") bytes)"
