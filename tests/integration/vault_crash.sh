#!/usr/bin/env bash
# Crash safety of the vault: several clients create keys and set secrets as fast as they can while
# `cloister serve` is killed with SIGKILL. Every write the server acknowledged (HTTP 200) must be
# there after a restart, and usable: each acknowledged key encrypts and decrypts, each acknowledged
# secret reads back its value. SQLite's PRAGMA integrity_check must say "ok" right after the crash
# and at the end.
#
# Needs curl, jq and sqlite3. Fails, never skips.
set -euo pipefail

CLOISTER=${CLOISTER:?set CLOISTER to the cloister binary}
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/serve.sh"
API=7.5
CLIENTS=4
RUN_SECONDS=${VAULT_CRASH_SECONDS:-4}
ROUNDS=${VAULT_CRASH_ROUNDS:-2}
need_tools curl jq sqlite3

work=$(mktemp -d)
server_pid=""
client_pids=()
cleanup() {
    for p in "${client_pids[@]}"; do
        kill "$p" 2>/dev/null || true
    done
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill -KILL "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

data=$work/data
start_server() {
    serve_start --append-err "$work/serve.out" "$work/serve.err" --data "$data" --listen 127.0.0.1:0
}

start_server
ca=$data/ca.pem
token=$(cat "$data/admin-token")
probe=$(curl -sS --cacert "$ca" -o /dev/null -w '%{http_code}' "$url/keys?api-version=$API")
[ "$probe" = 401 ] || fail "the server does not serve the vault API (GET /keys answered $probe)"
db=$data/vault.db # where cloister serve keeps the vault (src/cli/cmd_serve.c)
[ -f "$db" ] || fail "no vault database at $db"

# One client: creates keys and sets secrets until the server is gone, recording what was
# acknowledged (the name is written only after a 200).
client() {
    local c=$1 round=$2 i=0 code
    while :; do
        i=$((i + 1))
        local k="r$round-c$c-k$i" s="r$round-c$c-s$i"
        code=$(curl -sS --max-time 20 --cacert "$ca" -o /dev/null -w '%{http_code}' -X POST \
            -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
            --data-binary '{"kty":"oct","key_size":256}' \
            "$url/keys/$k/create?api-version=$API" 2>/dev/null) || return 0
        [ "$code" = 200 ] && echo "$k" >>"$work/ack-keys"
        code=$(curl -sS --max-time 20 --cacert "$ca" -o /dev/null -w '%{http_code}' -X PUT \
            -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
            --data-binary "{\"value\":\"value of $s\"}" \
            "$url/secrets/$s?api-version=$API" 2>/dev/null) || return 0
        [ "$code" = 200 ] && echo "$s" >>"$work/ack-secrets"
    done
}

: >"$work/ack-keys"
: >"$work/ack-secrets"
for round in $(seq 1 "$ROUNDS"); do
    client_pids=()
    for c in $(seq 1 "$CLIENTS"); do
        client "$c" "$round" &
        client_pids+=($!)
    done
    sleep "$RUN_SECONDS"
    kill -KILL "$server_pid"
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
    for p in "${client_pids[@]}"; do
        wait "$p" 2>/dev/null || true
    done
    client_pids=()
    [ "$(sqlite3 "$db" 'PRAGMA integrity_check')" = ok ] || fail "integrity_check after the crash of round $round"
    echo "vault_crash: round $round: killed the server with $(wc -l <"$work/ack-keys") keys and $(wc -l <"$work/ack-secrets") secrets acknowledged so far"
    start_server
done

keys=$(wc -l <"$work/ack-keys")
secrets=$(wc -l <"$work/ack-secrets")
[ "$keys" -gt 0 ] && [ "$secrets" -gt 0 ] || fail "no write was acknowledged before the crash ($keys keys, $secrets secrets)"

# Every acknowledged write is there and usable.
pt=$(printf 'survives a crash' | basenc --base64url -w0 | tr -d '=')
while read -r k; do
    code=$(curl -sS --cacert "$ca" -o "$work/resp" -w '%{http_code}' -X POST \
        -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
        --data-binary "{\"alg\":\"A256GCM\",\"value\":\"$pt\"}" "$url/keys/$k//encrypt?api-version=$API")
    [ "$code" = 200 ] || fail "acknowledged key $k: encrypt answered $code: $(cat "$work/resp")"
    body=$(jq -c '{alg:"A256GCM", value, iv, tag}' "$work/resp")
    code=$(curl -sS --cacert "$ca" -o "$work/resp" -w '%{http_code}' -X POST \
        -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
        --data-binary "$body" "$url/keys/$k//decrypt?api-version=$API")
    [ "$code" = 200 ] && [ "$(jq -r .value "$work/resp")" = "$pt" ] || fail "acknowledged key $k does not decrypt"
done <"$work/ack-keys"
while read -r s; do
    code=$(curl -sS --cacert "$ca" -o "$work/resp" -w '%{http_code}' \
        -H "Authorization: Bearer $token" "$url/secrets/$s/?api-version=$API")
    [ "$code" = 200 ] && [ "$(jq -r .value "$work/resp")" = "value of $s" ] ||
        fail "acknowledged secret $s: $code $(cat "$work/resp")"
done <"$work/ack-secrets"

kill -TERM "$server_pid"
wait "$server_pid" || fail "cloister serve exited non-zero on SIGTERM after the crashes"
server_pid=""
[ "$(sqlite3 "$db" 'PRAGMA integrity_check')" = ok ] || fail "integrity_check at the end"
echo "vault_crash: $keys acknowledged keys and $secrets acknowledged secrets survived $ROUNDS crashes"
