#!/usr/bin/env bash
# The cloud key vault's official JavaScript SDKs (@azure/keyvault-keys, @azure/keyvault-secrets,
# pinned in sdk/package-lock.json) against a fresh `cloister serve`: keys of every type, every
# CryptographyClient operation (including those the SDK does locally and the vault undoes),
# soft delete / recover / purge, paging, and secrets. The tests are in sdk/*.test.mjs.
#
# Needs node >= 20 and npm (the packages are installed into sdk/node_modules with `npm ci` the
# first time, or when sdk/package-lock.json changes). Fails, never skips, when anything is
# missing or the server does not serve the vault API.
set -euo pipefail

CLOISTER=${CLOISTER:?set CLOISTER to the cloister binary}
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/serve.sh"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
sdk=$here/sdk

# ---- node and the SDK packages ---------------------------------------------------------------
command -v node >/dev/null || fail "node is not installed (the SDK interop test needs Node.js >= 20)"
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || fail "node $(node --version) is too old: the SDK interop test needs Node.js >= 20"

# npm ci when node_modules is missing or older than the lock file. Several test runs (build and
# build-asan, other checkouts' runs) may start at once: serialize the install on a lock.
if [ ! -f "$sdk/node_modules/.package-lock.json" ] ||
    [ "$sdk/package-lock.json" -nt "$sdk/node_modules/.package-lock.json" ]; then
    command -v npm >/dev/null || fail "npm is not installed (needed once to install the SDK packages)"
    (
        flock 9
        if [ ! -f "$sdk/node_modules/.package-lock.json" ] ||
            [ "$sdk/package-lock.json" -nt "$sdk/node_modules/.package-lock.json" ]; then
            echo "sdk_interop: installing the SDK packages (npm ci in $sdk)"
            (cd "$sdk" && npm ci --no-audit --no-fund --loglevel=error) ||
                fail "npm ci failed in $sdk (is the npm registry reachable?)"
        fi
    ) 9<"$sdk/package.json"
fi

# ---- a fresh server ----------------------------------------------------------------------------
work=$(mktemp -d)
server_pid=""
trap cleanup_server_and_work EXIT

show_server_log() {
    echo "---- cloister serve stdout ----" >&2
    cat "$work/serve.out" >&2 || true
    echo "---- cloister serve stderr (last 40 lines) ----" >&2
    tail -n 40 "$work/serve.err" >&2 || true
}

data=$work/data # created by cloister serve itself (0700)
# Waits up to 30 s (the default) for the listening line: key generation under ASan can be slow.
serve_start "$work/serve.out" "$work/serve.err" --data "$data" --listen 127.0.0.1:0
[ "$url" = "https://127.0.0.1:$(cat "$data/serve.port")" ] ||
    fail "the printed URL $url does not match $data/serve.port ($(cat "$data/serve.port"))"
[ -s "$data/ca.pem" ] || fail "$data/ca.pem (the CA certificate clients pin) is missing"
[ -s "$data/admin-token" ] || fail "$data/admin-token (the first administrator token) is missing"
token=$(cat "$data/admin-token")

# ---- preflight: the server answers, and the vault API is there ------------------------------
health=$(curl -sS --cacert "$data/ca.pem" -o /dev/null -w '%{http_code}' "$url/healthz") ||
    fail "GET $url/healthz failed (TLS with $data/ca.pem?)"
[ "$health" = 200 ] || fail "GET /healthz answered $health, want 200"

probe=$(curl -sS --cacert "$data/ca.pem" -D "$work/probe.headers" -o "$work/probe.body" \
    -w '%{http_code}' "$url/keys?api-version=2025-07-01") || fail "GET $url/keys failed"
if [ "$probe" != 401 ] || ! grep -qi '^www-authenticate: Bearer authorization="' "$work/probe.headers"; then
    echo "GET /keys without a token answered $probe: $(cat "$work/probe.body")" >&2
    fail "the server does not serve the key vault API yet (want 401 with a 'WWW-Authenticate: Bearer authorization=\"…\", resource=\"…\"' challenge); the SDK interop tests cannot pass"
fi

# ---- the SDK tests -----------------------------------------------------------------------------
status=0
(
    cd "$sdk"
    CLOISTER_URL=$url CLOISTER_TOKEN=$token NODE_EXTRA_CA_CERTS=$data/ca.pem \
        NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost \
        node --test --test-concurrency=1 --test-timeout=180000 keys.test.mjs secrets.test.mjs
) || status=$?

# ---- a clean stop ------------------------------------------------------------------------------
kill -TERM "$server_pid"
serve_status=0
wait "$server_pid" || serve_status=$?
server_pid=""
if [ "$status" -ne 0 ]; then
    show_server_log
    fail "the SDK interop tests failed (node --test exited $status)"
fi
[ "$serve_status" -eq 0 ] || {
    show_server_log
    fail "cloister serve exited $serve_status on SIGTERM, want 0"
}
[ ! -e "$data/serve.port" ] || fail "cloister serve left $data/serve.port behind after a clean stop"
echo "sdk_interop: all SDK tests passed against $url"
