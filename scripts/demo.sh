#!/usr/bin/env bash
# The demonstration behind `make demo`: the crypto self-test, then the whole confidential-computing
# flow on real parts (examples/run-demo.sh): a sim TEE, `cloister serve` on a free loopback port,
# keys with release policies pinned to enclave measurements, encrypted card transactions and
# patient records processed inside enclaves, the denial of a modified enclave, and the audit
# trail verified. Everything it starts is stopped when it ends.
# Usage: scripts/demo.sh [BUILD_DIR]
set -euo pipefail
build=${1:-build}
build=$(cd "$build" && pwd)
cloister="$build/cloister"
if [ ! -x "$cloister" ]; then
    echo "demo: $cloister not found; run 'make build' first" >&2
    exit 1
fi
echo "== Cloister demo =="
"$cloister" version
echo
echo "== 1. The crypto layer checks itself =="
"$cloister" selftest
echo
exec env CLOISTER="$cloister" BUILD_DIR="$build" "$(dirname "$0")/../examples/run-demo.sh" "$build"
