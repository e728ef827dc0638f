#!/usr/bin/env bash
# The vault's secrets and principals end to end against a fresh `cloister serve`, driven with curl
# (wire format, status codes, the 401 challenge) and with the CLI (`cloister secret`,
# `cloister principal`): set/get/list/versions/update/delete/recover/purge, the 25 KiB cap, bad
# names, malformed JSON, wrong types, bad api-version, principals and revocation.
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
    for f in "$tmp"/serve.out "$tmp"/serve.err "$tmp"/body "$tmp"/cli.out "$tmp"/cli.err; do
        [[ -f "$f" ]] && { echo "--- $f" >&2; tail -n 40 "$f" >&2; }
    done
}

serve_start "$tmp/serve.out" "$tmp/serve.err" --data "$data" --listen 127.0.0.1:0
pid=$server_pid
ca="$data/ca.pem"
admin=$(cat "$data/admin-token")
API="api-version=2025-07-01"

# api METHOD PATH [BODY] [TOKEN]: prints the status; the body goes to $tmp/body, headers to
# $tmp/headers. TOKEN "-" sends no Authorization header.
api() {
    local method=$1 path=$2 body=${3-} token=${4-$admin}
    local args=(-sS --cacert "$ca" --path-as-is -X "$method" -o "$tmp/body" -D "$tmp/headers"
        -w '%{http_code}')
    [[ "$token" != "-" ]] && args+=(-H "Authorization: Bearer $token")
    if [[ -n "$body" ]]; then
        args+=(-H 'Content-Type: application/json' --data-binary "$body")
    fi
    curl "${args[@]}" "$url$path"
}

# expect STATUS CODE METHOD PATH [BODY] [TOKEN]: CODE is the error code or "-".
expect() {
    local want=$1 code=$2
    shift 2
    local got
    got=$(api "$@") || fail "curl $1 $2 failed"
    [[ "$got" == "$want" ]] || fail "$1 $2: status $got, want $want: $(cat "$tmp/body")"
    if [[ "$code" != "-" ]]; then
        grep -qF "\"code\":\"$code\"" "$tmp/body" || fail "$1 $2: want error code $code: $(cat "$tmp/body")"
    fi
}

body_has() { grep -qF -- "$1" "$tmp/body" || fail "response lacks $1: $(cat "$tmp/body")"; }
body_lacks() { ! grep -qF -- "$1" "$tmp/body" || fail "response has $1: $(cat "$tmp/body")"; }

# Preflight: a server without the vault routes answers 404 here, not 401.
probe=$(curl -sS --cacert "$ca" -o /dev/null -w '%{http_code}' "$url/secrets?api-version=2025-07-01") ||
    fail "GET /secrets failed"
[[ "$probe" == 401 ]] || fail "GET /secrets without a token answered $probe, want 401: this cloister serve does not serve the vault API (is clst_vault_register wired into src/cli/cmd_serve.c?)"

# ---- authentication: the cloud vault's challenge, exactly ------------------------------------
expect 401 Unauthorized GET "/secrets?$API" "" -
grep -qx $'WWW-Authenticate: Bearer authorization="https://login.cloister.invalid/cloister", resource="https://vault.cloister.invalid"\r' "$tmp/headers" ||
    fail "401 without the exact challenge header: $(cat "$tmp/headers")"
# The SDK's first request: body-less PUT without a token.
expect 401 Unauthorized PUT "/secrets/s1?$API" "" -
expect 401 Unauthorized GET "/secrets?$API" "" "not-a-token"
expect 401 Unauthorized GET "/principals" "" "-"
expect 200 - GET "/secrets?$API"

# ---- api-version -------------------------------------------------------------------------------
expect 400 BadParameter GET "/secrets"
expect 400 BadParameter GET "/secrets?api-version=2016-10-01"
expect 200 - GET "/secrets?api%2Dversion=7.6"

# ---- secrets over the wire -----------------------------------------------------------------------
expect 200 - PUT "/secrets/db-pw?$API" '{"value":"hunter2","contentType":"text/plain","tags":{"env":"test"},"attributes":{}}'
body_has '"value":"hunter2"'
body_has "\"id\":\"$url/secrets/db-pw/"
body_has '"recoveryLevel":"Recoverable+Purgeable"'
v1=$(sed -n 's/.*"id":"[^"]*\/secrets\/db-pw\/\([0-9a-f]\{32\}\)".*/\1/p' "$tmp/body")
[[ -n "$v1" ]] || fail "no 32-hex version in $(cat "$tmp/body")"
expect 200 - PUT "/secrets/db-pw?$API" '{"value":"second"}'
expect 200 - GET "/secrets/db-pw/?$API"
body_has '"value":"second"'
expect 200 - GET "/secrets/db-pw/$v1?$API"
body_has '"value":"hunter2"'
expect 200 - GET "/secrets/db-pw/versions?$API"
[[ $(grep -o '"id":' "$tmp/body" | wc -l) -eq 2 ]] || fail "want 2 versions: $(cat "$tmp/body")"
body_lacks '"value":"hunter2"'
expect 200 - GET "/secrets?$API"
body_has "\"id\":\"$url/secrets/db-pw\""
body_lacks 'second'
expect 200 - PATCH "/secrets/db-pw/$v1?$API" '{"attributes":{"enabled":false}}'
body_lacks '"value"'
expect 403 Forbidden GET "/secrets/db-pw/$v1?$API"
expect 200 - GET "/secrets/db-pw?$API"

# 25 KiB is the cap: 25600 bytes pass, 25601 do not.
value=$(head -c 25600 /dev/zero | tr '\0' 'x')
expect 200 - PUT "/secrets/big?$API" "{\"value\":\"$value\"}"
expect 400 BadParameter PUT "/secrets/big?$API" "{\"value\":\"${value}x\"}"
body_has '25600'

# Names: the cloud's rule, traversal and odd characters.
for name in bad_name a.b "a%20b" "%C3%A9" "..%2Fkeys" "a%2Fb" "$(head -c 128 /dev/zero | tr '\0' n)"; do
    expect 400 BadParameter PUT "/secrets/$name?$API" '{"value":"v"}'
done
expect 400 - GET "/secrets/../keys?$API"
expect 400 - GET "/secrets/./x?$API"

# Malformed JSON, wrong types, wrong shapes.
expect 400 BadParameter PUT "/secrets/s?$API" '{"value":'
expect 400 BadParameter PUT "/secrets/s?$API" '["value"]'
expect 400 BadParameter PUT "/secrets/s?$API" '{"value":1}'
expect 400 BadParameter PUT "/secrets/s?$API" '{"value":"v","tags":"x"}'
expect 400 BadParameter PUT "/secrets/s?$API" '{"value":"v","attributes":{"enabled":"yes"}}'
expect 400 BadParameter PUT "/secrets/s?$API" '{"value":"v","attributes":{"exp":"tomorrow"}}'
expect 400 BadParameter PUT "/secrets/s?$API" '{"value":"v","contentType":["x"]}'
expect 400 BadParameter PATCH "/secrets/db-pw/?$API" '{"value":"changed"}'
expect 404 SecretNotFound GET "/secrets/s/?$API"
expect 404 SecretNotFound GET "/secrets/db-pw/0123456789abcdef0123456789abcdef?$API"
expect 400 BadParameter GET "/secrets?$API&maxresults=26"
expect 400 BadParameter GET "/secrets?$API&%24skiptoken=forged"

# Soft delete, recover, purge.
expect 200 - DELETE "/secrets/db-pw?$API"
body_has "\"recoveryId\":\"$url/deletedsecrets/db-pw\""
body_has '"scheduledPurgeDate":'
expect 404 SecretNotFound GET "/secrets/db-pw/?$API"
expect 409 Conflict PUT "/secrets/db-pw?$API" '{"value":"x"}'
expect 200 - GET "/deletedsecrets/db-pw?$API"
expect 200 - GET "/deletedsecrets?$API"
body_has "$url/deletedsecrets/db-pw"
expect 200 - POST "/deletedsecrets/db-pw/recover?$API"
expect 200 - GET "/secrets/db-pw/?$API"
expect 200 - DELETE "/secrets/db-pw?$API"
expect 204 - DELETE "/deletedsecrets/db-pw?$API"
[[ ! -s "$tmp/body" ]] || fail "204 with a body"
expect 404 SecretNotFound DELETE "/deletedsecrets/db-pw?$API"
expect 404 SecretNotFound POST "/deletedsecrets/db-pw/recover?$API"

# ---- the CLI ------------------------------------------------------------------------------------
export CLOISTER_URL="$url" CLOISTER_CA="$ca"
cli() { "$CLOISTER" "$@" >"$tmp/cli.out" 2>"$tmp/cli.err"; }
cli_fails() {
    local rc=0
    "$CLOISTER" "$@" >"$tmp/cli.out" 2>"$tmp/cli.err" || rc=$?
    [[ $rc -eq 1 ]] || fail "cloister $*: exit $rc, want 1"
}

grep -q 'cloister secret <action>' <<<"$("$CLOISTER" secret --help)" || fail "secret --help"
grep -q 'cloister principal <action>' <<<"$("$CLOISTER" principal --help)" || fail "principal --help"
rc=0
"$CLOISTER" secret frobnicate x >/dev/null 2>&1 || rc=$?
[[ $rc -eq 2 ]] || fail "unknown action: exit $rc, want 2"
rc=0
CLOISTER_TOKEN= "$CLOISTER" secret list >/dev/null 2>&1 || rc=$?
[[ $rc -eq 2 ]] || fail "no token: exit $rc, want 2"

export CLOISTER_TOKEN="$admin"
printf 'line one\nline "two"\n' >"$tmp/value.txt"
cli secret set app-config --file "$tmp/value.txt" --content-type text/plain --tag team=data ||
    fail "secret set --file"
grep -q '^secret app-config: version [0-9a-f]\{32\} set$' "$tmp/cli.out" || fail "set output"
cli secret get app-config --out "$tmp/got.txt" || fail "secret get --out"
cmp -s "$tmp/value.txt" "$tmp/got.txt" || fail "secret get --out: value differs"
[[ $(stat -c %a "$tmp/got.txt") == 600 ]] || fail "--out file is not 0600"
# An existing, readable file is made private before the secret is written into it.
printf 'old' >"$tmp/shared.txt"
chmod 644 "$tmp/shared.txt"
cli secret get app-config --out "$tmp/shared.txt" || fail "secret get --out over a file"
[[ $(stat -c %a "$tmp/shared.txt") == 600 ]] || fail "--out over a 0644 file left it $(stat -c %a "$tmp/shared.txt")"
cmp -s "$tmp/value.txt" "$tmp/shared.txt" || fail "secret get --out over a file: value differs"
printf 'from stdin' | cli secret set app-config --stdin || fail "secret set --stdin"
cli secret get app-config || fail "secret get"
[[ "$(cat "$tmp/cli.out")" == "from stdin" ]] || fail "secret get printed '$(cat "$tmp/cli.out")'"
cli secret versions app-config || fail "secret versions"
[[ $(grep -c '^[0-9a-f]\{32\} ' "$tmp/cli.out") -eq 2 ]] || fail "versions: want 2 rows"
cli secret list --json || fail "secret list --json"
grep -q "\"id\": \"$url/secrets/app-config\"" "$tmp/cli.out" || fail "list --json"
! grep -q 'from stdin' "$tmp/cli.out" || fail "list shows a value"
cli secret list || fail "secret list"
grep -q '^app-config ' "$tmp/cli.out" || fail "list text"
cli secret update app-config --disable --tag owner=ops || fail "secret update"
grep -q '^enabled *no$' "$tmp/cli.out" || fail "update output"
cli_fails secret get app-config
grep -q '403 Forbidden' "$tmp/cli.err" || fail "disabled get: $(cat "$tmp/cli.err")"
cli secret update app-config --enable || fail "secret update --enable"
# A tag name that is not UTF-8 is refused before anything is sent (it was once dropped silently).
rc=0
"$CLOISTER" secret update app-config --tag $'\xff=v' >"$tmp/cli.out" 2>"$tmp/cli.err" || rc=$?
[[ $rc -eq 2 ]] && grep -q 'tags must be UTF-8' "$tmp/cli.err" ||
    fail "non-UTF-8 tag name: exit $rc, $(cat "$tmp/cli.err")"
cli secret delete app-config || fail "secret delete"
grep -q 'deleted; it can be recovered until' "$tmp/cli.out" || fail "delete output"
cli secret list --deleted || fail "secret list --deleted"
grep -q '^app-config ' "$tmp/cli.out" || fail "list --deleted"
cli secret recover app-config || fail "secret recover"
cli secret get app-config || fail "get after recover"
cli secret delete app-config && cli secret purge app-config || fail "delete + purge"
cli_fails secret get app-config
grep -q '404 SecretNotFound' "$tmp/cli.err" || fail "get after purge: $(cat "$tmp/cli.err")"
cli_fails secret set bad_name --value v
grep -q '400 BadParameter' "$tmp/cli.err" || fail "bad name via CLI: $(cat "$tmp/cli.err")"
head -c 25601 /dev/zero | tr '\0' 'y' >"$tmp/big.txt"
cli_fails secret set too-big --file "$tmp/big.txt"
grep -q '25600' "$tmp/cli.err" || fail "oversized value via CLI: $(cat "$tmp/cli.err")"
# The CLI verifies the server against the pinned CA: another CA fails.
CLOISTER_CA=/etc/ssl/certs/ca-certificates.crt cli_fails secret list
grep -q -- '--ca' "$tmp/cli.err" || fail "wrong CA: $(cat "$tmp/cli.err")"
# --token-file
printf '%s\n' "$admin" >"$tmp/token"
CLOISTER_TOKEN= cli secret list --token-file "$tmp/token" || fail "--token-file"

# ---- principals -----------------------------------------------------------------------------------
cli secret set shared --value one && cli secret set other --value two || fail "setup secrets"
cli principal create --name reader --role 'Secrets User@/secrets/shared' --json ||
    fail "principal create"
reader=$(sed -n 's/^ *"token": "\([A-Za-z0-9_-]*\)",\{0,1\}$/\1/p' "$tmp/cli.out")
reader_id=$(sed -n 's/^ *"id": "\([^"]*\)",\{0,1\}$/\1/p' "$tmp/cli.out")
[[ ${#reader} -eq 43 && -n "$reader_id" ]] || fail "create --json: $(cat "$tmp/cli.out")"
cli principal list || fail "principal list"
grep -q "^$reader_id " "$tmp/cli.out" || fail "list lacks $reader_id"
grep -q 'Secrets User at /secrets/shared' "$tmp/cli.out" || fail "list lacks the role"
cli principal list --json || fail "principal list --json"
! grep -q "$reader" "$tmp/cli.out" || fail "principal list shows a token"
cli principal show "$reader_id" || fail "principal show"

CLOISTER_TOKEN="$reader" cli secret get shared || fail "reader get shared"
[[ "$(cat "$tmp/cli.out")" == "one" ]] || fail "reader got '$(cat "$tmp/cli.out")'"
CLOISTER_TOKEN="$reader" cli_fails secret get other
grep -q '403 Forbidden.*Secrets User' "$tmp/cli.err" || fail "reader get other: $(cat "$tmp/cli.err")"
CLOISTER_TOKEN="$reader" cli_fails secret list
CLOISTER_TOKEN="$reader" cli_fails principal list
expect 403 Forbidden POST "/principals" '{"name":"x"}' "$reader"

# Bad principal requests.
expect 400 BadParameter POST "/principals" '{"name":"x","roles":[{"role":"Owner"}]}'
expect 400 BadParameter POST "/principals" '{"name":"x","roles":[{"role":"Secrets User","scope":"/keys/k"}]}'
expect 400 BadParameter POST "/principals" '{"roles":[]}'
expect 400 BadParameter POST "/principals" '{"name":'
expect 409 Conflict POST "/principals" '{"name":"x","id":"admin"}'
expect 409 Conflict DELETE "/principals/admin"
expect 404 NotFound DELETE "/principals/nobody"
rc=0
"$CLOISTER" principal create --name x --role '' >/dev/null 2>&1 || rc=$?
[[ $rc -eq 2 ]] || fail "empty --role: exit $rc, want 2"

# A deleted principal's token stops working at once.
cli principal delete "$reader_id" || fail "principal delete"
CLOISTER_TOKEN="$reader" cli_fails secret get shared
grep -q '401' "$tmp/cli.err" || fail "deleted principal: $(cat "$tmp/cli.err")"
expect 401 Unauthorized GET "/secrets/shared/?$API" "" "$reader"

cli secret set canary --value canary-plaintext-7f3a9c || fail "set canary"

# ---- restart: everything persisted, the admin token still works ---------------------------------
kill -TERM "$pid"
wait "$pid" || fail "serve exited non-zero on SIGTERM"
pid="" server_pid=""
serve_start "$tmp/serve.out" "$tmp/serve.err" --data "$data" --listen 127.0.0.1:0
pid=$server_pid
CLOISTER_URL="$url" cli secret get shared || fail "get after restart"
[[ "$(cat "$tmp/cli.out")" == "one" ]] || fail "after restart got '$(cat "$tmp/cli.out")'"
CLOISTER_URL="$url" cli principal list || fail "principal list after restart"
[[ $(grep -c '^admin ' "$tmp/cli.out") -eq 1 ]] || fail "admin missing or duplicated after restart"
# The database is private.
[[ $(stat -c %a "$data/vault.db") == 600 ]] || fail "vault.db is not 0600"
for f in "$data"/vault.db*; do
    ! grep -q 'canary-plaintext-7f3a9c' "$f" || fail "a secret value is readable in $f"
done

kill -TERM "$pid"
wait "$pid" || fail "serve exited non-zero on SIGTERM"
pid="" server_pid=""
echo "vault_secrets: ok"
