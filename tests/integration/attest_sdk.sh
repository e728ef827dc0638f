#!/usr/bin/env bash
# The cloud attestation service's official JavaScript SDK (@azure/attestation, pinned in
# attest-sdk/package-lock.json) against a fresh `cloister serve --trust-sim`: getOpenIdMetadata,
# getAttestationSigners, the SDK's token validation of a token from `cloister attest`, and the
# administration client's getPolicy/setPolicy/resetPolicy (tests in attest-sdk/attest.test.mjs).
# Then attestSgxEnclave with a real SGX quote (tests/vectors/sgx/dcap-rs) against a second server
# started with `--test-fixed-time 2025-03-01T00:00:00Z --collateral DIR` (Intel's 2025-02
# collateral for that platform), the SDK validating the token (attest-sdk/attest_sgx.test.mjs).
#
# Needs node >= 20 and npm (installed into attest-sdk/node_modules with `npm ci` the first time,
# or when the lock file changes). Fails, never skips.
set -euo pipefail

CLOISTER=${CLOISTER:?set CLOISTER to the cloister binary}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
sdk=$here/attest-sdk
. "$here/lib/common.sh"
. "$here/lib/serve.sh"

command -v node >/dev/null || fail "node is not installed (the SDK test needs Node.js >= 20)"
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || fail "node $(node --version) is too old: the SDK test needs Node.js >= 20"
if [ ! -f "$sdk/node_modules/.package-lock.json" ] ||
    [ "$sdk/package-lock.json" -nt "$sdk/node_modules/.package-lock.json" ]; then
    command -v npm >/dev/null || fail "npm is not installed (needed once to install the SDK)"
    (
        flock 9
        if [ ! -f "$sdk/node_modules/.package-lock.json" ] ||
            [ "$sdk/package-lock.json" -nt "$sdk/node_modules/.package-lock.json" ]; then
            echo "attest_sdk: installing the SDK (npm ci in $sdk)"
            (cd "$sdk" && npm ci --no-audit --no-fund --loglevel=error) ||
                fail "npm ci failed in $sdk (is the npm registry reachable?)"
        fi
    ) 9<"$sdk/package.json"
fi

work=$(mktemp -d)
server_pid=""
hw_pid=""
cleanup() {
    for pid in "$server_pid" "$hw_pid"; do
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
    rm -rf "$work"
}
trap cleanup EXIT

"$CLOISTER" sim init "$work/plat" >/dev/null || fail "cloister sim init $work/plat failed"
printf '{"keys":[{"kty":"EC","crv":"P-256","kid":"tee","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}' >"$work/rt.json"
"$CLOISTER" sim report --platform "$work/plat" --mrenclave "$(printf 'c3%.0s' $(seq 48))" \
    --mrsigner "$(printf '5a%.0s' $(seq 32))" --product-id 1 --svn 1 --runtime-data "$work/rt.json" \
    -o "$work/ev.bin" >/dev/null 2>"$work/sim.err" ||
    fail "cloister sim report failed: $(cat "$work/sim.err")"

data=$work/data
serve_start --wait 10 "$work/serve.out" "$work/serve.err" \
    --data "$data" --listen 127.0.0.1:0 --trust-sim "$work/plat/root.pem"

"$CLOISTER" attest --type sim --evidence "$work/ev.bin" --runtime-data "$work/rt.json" --data "$data" \
    >"$work/token.txt" 2>"$work/attest.err" || fail "cloister attest: $(cat "$work/attest.err")"
curl -sS --cacert "$data/ca.pem" -o "$work/certs.json" "$url/certs" || fail "GET /certs"

status=0
CLOISTER_URL=$url CLOISTER_TOKEN=$(cat "$data/admin-token") NODE_EXTRA_CA_CERTS=$data/ca.pem \
    ATTEST_TOKEN_FILE=$work/token.txt ATTEST_CERTS_FILE=$work/certs.json \
    node --test --test-reporter=spec "$sdk/attest.test.mjs" || status=$?
kill -TERM "$server_pid" 2>/dev/null || true
serve_rc=0
wait "$server_pid" 2>/dev/null || serve_rc=$?
server_pid=""
if [ "$status" != 0 ] || [ "$serve_rc" != 0 ]; then
    echo "---- cloister serve stderr (last 30 lines) ----" >&2
    tail -n 30 "$work/serve.err" >&2 || true
    [ "$status" = 0 ] || fail "the SDK tests failed"
    fail "cloister serve exited with status $serve_rc after SIGTERM"
fi

# ---- attestSgxEnclave with a real quote, on a server with a fixed clock and DCAP collateral ----
vec=${CLST_VECTORS:-$here/../vectors}
sgx=$vec/sgx/dcap-rs
coll=$work/collateral/sgx-00606a000000
{
    mkdir -p "$coll" &&
        cp "$sgx/collateral-2025-02/tcbinfov2.json" "$coll/tcb_info.json" &&
        cp "$sgx/collateral-2025-02/qeidentityv2.json" "$coll/qe_identity.json" &&
        cp "$sgx/tcb_signing_cert.pem" "$coll/tcb_signing_chain.pem" &&
        cp "$sgx/collateral-2025-02/pck_platform_crl.der" "$coll/pck_crl.der" &&
        cp "$sgx/collateral-2025-02/intel_root_ca_crl.der" "$coll/root_ca_crl.der"
} || fail "cannot copy the SGX collateral from $sgx into $coll"
fixed=1740787200 # 2025-03-01T00:00:00Z: every certificate, CRL and collateral item is valid

hwdata=$work/hwdata
serve_start --wait 10 "$work/hw.out" "$work/hw.err" \
    --data "$hwdata" --listen 127.0.0.1:0 --test-fixed-time "$fixed" --collateral "$work/collateral"
hw_pid=$server_pid server_pid="" # the EXIT trap stops it as $hw_pid from here on
hwurl=$url

status=0
CLOISTER_HW_URL=$hwurl CLOISTER_HW_TOKEN=$(cat "$hwdata/admin-token") \
    NODE_EXTRA_CA_CERTS=$hwdata/ca.pem SGX_QUOTE_FILE=$sgx/quote_v3_sgx_00606a000000.bin \
    SGX_FIXED_TIME=$fixed node --test --test-reporter=spec "$sdk/attest_sgx.test.mjs" || status=$?
kill -TERM "$hw_pid" 2>/dev/null || true
serve_rc=0
wait "$hw_pid" 2>/dev/null || serve_rc=$?
hw_pid=""
if [ "$status" != 0 ] || [ "$serve_rc" != 0 ]; then
    echo "---- cloister serve --collateral stderr (last 30 lines) ----" >&2
    tail -n 30 "$work/hw.err" >&2 || true
    [ "$status" = 0 ] || fail "the SDK attestSgxEnclave tests failed"
    fail "cloister serve --collateral exited with status $serve_rc after SIGTERM"
fi
