#!/usr/bin/env bash
# The demonstration behind `make demo`. Today: the crypto layer's self-test, end to end, narrated.
# Usage: scripts/demo.sh [BUILD_DIR]
set -euo pipefail
build=${1:-build}
cloister="$build/cloister"
if [ ! -x "$cloister" ]; then
    echo "demo: $cloister not found; run 'make build' first" >&2
    exit 1
fi
echo "== Cloister demo =="
"$cloister" version
echo
"$cloister" selftest
