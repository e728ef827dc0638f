#!/usr/bin/env bash
# cloister serve end to end: first start creates the data directory (permissions, printed CA
# fingerprint and administrator token), /healthz over TLS with the CA pinned, a restart reuses the
# same CA, SIGTERM/SIGINT stop it with exit status 0, unsafe data directories are refused.
set -euo pipefail

: "${CLOISTER:?CLOISTER must point at the cloister binary}"
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/serve.sh"
tmp=$(mktemp -d)
data="$tmp/data"
pid="" server_pid=""

cleanup() {
    [[ -n "$pid" ]] || pid=${server_pid:-} # a server still starting (serve_start)
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

on_fail() { # after the FAIL line
    for f in "$tmp"/out* "$tmp"/err*; do
        [[ -f "$f" ]] && { echo "--- $f" >&2; cat "$f" >&2; }
    done
}

# start_server NAME [extra args...]: starts serve in the background, waits for its
# "listening on https://127.0.0.1:PORT" line and sets $pid and $port.
start_server() {
    local name=$1
    shift
    serve_start --wait 10 "$tmp/out.$name" "$tmp/err.$name" --data "$data" --listen 127.0.0.1:0 "$@"
    pid=$server_pid
    port=${url##*:}
}

# stop_server SIGNAL: sends it and checks the exit status is 0.
stop_server() {
    kill -"$1" "$pid"
    local rc=0
    wait "$pid" || rc=$?
    pid="" server_pid=""
    [[ $rc -eq 0 ]] || fail "serve exited with status $rc after SIG$1 (expected 0)"
}

mode() { stat -c %a "$1"; }

# ---- usage -----------------------------------------------------------------------------------
"$CLOISTER" serve --help >"$tmp/help" || fail "serve --help failed"
grep -q -- '--listen HOST:PORT' "$tmp/help" || fail "--help does not document --listen"
rc=0; "$CLOISTER" serve --bogus >/dev/null 2>&1 || rc=$?
[[ $rc -eq 2 ]] || fail "an unknown option should exit 2, got $rc"
rc=0; "$CLOISTER" serve --data "$data" --listen nowhere:1 >/dev/null 2>"$tmp/err.listen" || rc=$?
[[ $rc -eq 2 ]] || fail "a bad --listen should exit 2, got $rc"
[[ ! -e "$data" ]] || fail "a usage error must not create the data directory"

# ---- first start -------------------------------------------------------------------------------
start_server first
out="$tmp/out.first"
[[ "$(cat "$data/serve.port")" == "$port" ]] || fail "serve.port does not hold $port"
grep -q '^created data directory' "$out" || fail "first start did not say it created the directory"

# Permissions: directory 0700, secrets 0600.
[[ "$(mode "$data")" == 700 ]] || fail "data dir mode $(mode "$data"), expected 700"
for f in master.key admin-token admin-token.sha256 ca.key server.key; do
    [[ "$(mode "$data/$f")" == 600 ]] || fail "$f mode $(mode "$data/$f"), expected 600"
done
[[ "$(stat -c %s "$data/master.key")" == 32 ]] || fail "master.key is not 32 bytes"

# The token was printed once and saved; the server keeps only its SHA-256.
token=$(grep -A1 '^administrator token' "$out" | tail -1 | tr -d ' ')
[[ "$token" =~ ^[A-Za-z0-9_-]{43}$ ]] || fail "printed token '$token' is not 43 base64url characters"
[[ "$(cat "$data/admin-token")" == "$token" ]] || fail "admin-token differs from the printed token"
hash=$(printf '%s' "$token" | sha256sum | cut -d' ' -f1)
[[ "$(cat "$data/admin-token.sha256")" == "$hash" ]] || fail "admin-token.sha256 is not SHA-256(token)"

# The printed fingerprint is the CA certificate's.
printed=$(sed -n 's/^CA SHA-256 fingerprint: //p' "$out")
expected=$(openssl x509 -in "$data/ca.pem" -noout -fingerprint -sha256 | sed 's/^[^=]*=//')
[[ -n "$printed" && "$printed" == "$expected" ]] || fail "fingerprint '$printed' != openssl's '$expected'"

# /healthz over TLS with the CA pinned; without the pin the certificate is not trusted.
body=$(curl -sS --fail --cacert "$data/ca.pem" "https://127.0.0.1:$port/healthz")
[[ "$body" == '{"status":"ok"}' ]] || fail "healthz answered '$body'"
body=$(curl -sS --fail --cacert "$data/ca.pem" "https://localhost:$port/healthz")
[[ "$body" == '{"status":"ok"}' ]] || fail "healthz via localhost answered '$body'"
rc=0; curl -sS -o /dev/null "https://127.0.0.1:$port/healthz" 2>/dev/null || rc=$?
[[ $rc -eq 60 ]] || fail "an unpinned client should fail certificate verification (60), got $rc"
# TLS 1.1 is refused (a TLS 1.2 client with the same settings is the control).
rc=0; curl -sS -o /dev/null --cacert "$data/ca.pem" --tlsv1.1 --tls-max 1.1 \
    --ciphers 'DEFAULT:@SECLEVEL=0' "https://127.0.0.1:$port/healthz" 2>/dev/null || rc=$?
[[ $rc -ne 0 ]] || fail "a TLS 1.1 client was served"
curl -sS -o /dev/null --fail --cacert "$data/ca.pem" --tlsv1.2 --tls-max 1.2 \
    --ciphers 'DEFAULT:@SECLEVEL=0' "https://127.0.0.1:$port/healthz" || fail "TLS 1.2 refused"
# Errors are JSON with the right status.
code=$(curl -sS -o "$tmp/body" -w '%{http_code}' --cacert "$data/ca.pem" \
    "https://127.0.0.1:$port/no/such/path")
[[ "$code" == 404 ]] || fail "unknown path gave $code"
grep -q '"code":"NotFound"' "$tmp/body" || fail "404 body is not the JSON error: $(cat "$tmp/body")"

# A second server on the same directory is refused while the first runs.
rc=0; "$CLOISTER" serve --data "$data" --listen 127.0.0.1:0 >/dev/null 2>"$tmp/err.second" || rc=$?
[[ $rc -eq 1 ]] || fail "a second serve on the same data dir should fail with 1, got $rc"
grep -q 'in use' "$tmp/err.second" || fail "the second serve did not say the directory is in use"

cp "$data/ca.pem" "$tmp/ca.first.pem"
stop_server TERM
grep -q 'stopped' "$tmp/err.first" || fail "no 'stopped' message after SIGTERM"
[[ ! -e "$data/serve.port" ]] || fail "serve.port left behind after a clean stop"

# ---- restart: same CA, no new token, body cap ----------------------------------------------------
start_server second --max-body 64
out="$tmp/out.second"
cmp -s "$data/ca.pem" "$tmp/ca.first.pem" || fail "the restart changed the CA certificate"
grep -q "^CA SHA-256 fingerprint: $expected\$" "$out" || fail "the restart printed another fingerprint"
if grep -q 'administrator token' "$out"; then fail "the token was printed again on restart"; fi
if grep -q -- "$token" "$out" "$tmp/err.second"; then fail "the token leaked into the output"; fi
curl -sS --fail --cacert "$tmp/ca.first.pem" "https://127.0.0.1:$port/healthz" >/dev/null \
    || fail "healthz with the first start's CA failed after restart"
head -c 100 /dev/zero >"$tmp/big"
code=$(curl -sS -o "$tmp/body" -w '%{http_code}' --cacert "$data/ca.pem" --data-binary @"$tmp/big" \
    "https://127.0.0.1:$port/healthz")
[[ "$code" == 413 ]] || fail "a body over --max-body gave $code"
grep -q '"code":"RequestTooLarge"' "$tmp/body" || fail "413 body: $(cat "$tmp/body")"
stop_server INT

# ---- unsafe or broken data directories are refused ------------------------------------------------
chmod 644 "$data/master.key"
rc=0; "$CLOISTER" serve --data "$data" --listen 127.0.0.1:0 >"$tmp/out.bad" 2>"$tmp/err.bad" || rc=$?
[[ $rc -eq 1 ]] || fail "a 0644 master key should be refused with status 1, got $rc"
grep -q 'master.key has mode 0644' "$tmp/err.bad" || fail "no clear message: $(cat "$tmp/err.bad")"
grep -q 'chmod 600' "$tmp/err.bad" || fail "the message does not say how to fix it"
if grep -q '^listening' "$tmp/out.bad"; then fail "it listened with a 0644 master key"; fi
chmod 600 "$data/master.key"

chmod 755 "$data"
rc=0; "$CLOISTER" serve --data "$data" --listen 127.0.0.1:0 >/dev/null 2>"$tmp/err.dir" || rc=$?
[[ $rc -eq 1 ]] || fail "a 0755 data dir should be refused, got $rc"
grep -q 'chmod 700' "$tmp/err.dir" || fail "no clear message: $(cat "$tmp/err.dir")"
chmod 700 "$data"

mv "$data/master.key" "$tmp/master.key.saved"
rc=0; "$CLOISTER" serve --data "$data" --listen 127.0.0.1:0 >/dev/null 2>"$tmp/err.missing" || rc=$?
[[ $rc -eq 1 ]] || fail "a missing master key should be refused, got $rc"
grep -q 'master.key is missing' "$tmp/err.missing" || fail "no clear message: $(cat "$tmp/err.missing")"
mv "$tmp/master.key.saved" "$data/master.key"

# Back to a good state: it serves again.
start_server third
curl -sS --fail --cacert "$data/ca.pem" "https://127.0.0.1:$port/healthz" >/dev/null || fail "third start"
stop_server TERM
echo "serve_basic: ok"
