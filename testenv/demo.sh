#!/usr/bin/env bash
# The main job. Until the two-host demo lands, it builds and shows the agent's help.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake --preset default >/dev/null && cmake --build --preset default >/dev/null
./build/default/netmanager --help
