#!/usr/bin/env bash
# Installs exactly the Debian 12 packages that Cloister's build, tests, benchmarks and demo need.
# Idempotent: does nothing when every package is present, and runs `apt-get update` only when
# something is missing. Add a package here in the same change that starts using it, with its reason
# in docs/dependencies.md.
set -euo pipefail

packages=(
    # build
    build-essential cmake pkg-config clang
    # libraries (see docs/dependencies.md)
    libssl-dev libjansson-dev libcjose-dev libmicrohttpd-dev libcurl4-openssl-dev libsqlite3-dev
    libseccomp-dev libcbor-dev libtss2-dev libp11-kit-dev
    # tests
    libcmocka-dev libclang-rt-14-dev curl openssl sqlite3 jq
    swtpm tpm2-tools softhsm2
    procps xxd  # pgrep (enclave_isolation), xxd (enclave_release): not in a minimal Debian
    # benchmarks
    age wrk nginx-light python3
    # development (make format)
    clang-format git
)

# The SDK interop tests run the cloud vendors' npm SDKs on Node.js. Use the machine's node when it
# has one (this project's machines ship Node 20); otherwise Debian's nodejs and npm.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    packages+=(nodejs npm)
fi

missing=()
for p in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    if [ "$status" != "install ok installed" ]; then
        missing+=("$p")
    fi
done

if [ "${#missing[@]}" -eq 0 ]; then
    echo "deps: all ${#packages[@]} packages present"
    exit 0
fi

echo "deps: missing: ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
    echo "deps: installing packages needs root; run 'sudo scripts/deps.sh' (or install the packages above) and retry" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "deps: installed ${#missing[@]} package(s)"
