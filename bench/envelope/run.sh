#!/usr/bin/env bash
# Builds the optimized `cloister` and `bench_envelope` (RelWithDebInfo, as `make bench` does) and
# runs the envelope benchmark. Run it on a quiet machine; see docs/benchmarks.md.
#   usage: bench/envelope/run.sh [BUILD_DIR] [-- bench_envelope options: --dir DIR --runs N --skip-5g]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$root/build
if [ $# -gt 0 ] && [ "$1" != "--" ]; then
    build=$1
    shift
fi
[ "${1:-}" = "--" ] && shift
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j2 --target cloister bench_envelope >/dev/null
echo "commit: $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo 'none')"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) vCPUs"
echo "openssl: $(openssl version), age: $(age --version)"
exec "$build/bench_envelope" --cloister "$build/cloister" "$@"
