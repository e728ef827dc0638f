#!/usr/bin/env bash
# The audit log of `cloister serve` (docs/operations.md, "Audit"):
#   1. requests are recorded (attempt + outcome, names and hashes, never secret values), the log
#      rotates (--audit-max-size) and `cloister audit verify --data DIR` checks it across files,
#      also with batches held for announced records (--audit-commit-delay; out of range refused);
#      `audit tail --filter` reads it and `audit tail -f` follows it; a release denial carries the
#      token hash and decision;
#   2. an edited, deleted or reordered record, a truncated log (whole line or mid-line) and the
#      wrong key are detected, and verify names the first bad record;
#   3. a full filesystem (a 256 KiB tmpfs mounted on the audit directory; this test needs root for
#      mount, and fails without it) makes requests fail with 503 and change nothing: the keys
#      whose creation was refused do not exist once there is room again, nor after a restart;
#   4. kill -9 under load: every acknowledged (200) key creation has its outcome record, and the
#      chain verifies (--allow-open: no closing checkpoint after a crash), then after a restart.
#
# Needs curl, jq, mount (root). Fails, never skips.
set -euo pipefail

CLOISTER=${CLOISTER:?set CLOISTER to the cloister binary}
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/serve.sh"
API=7.5

ok() { echo "ok: $*"; }
need_tools curl jq mount umount

work=$(mktemp -d)
server_pid=""
client_pids=()
mounted=""
cleanup() {
    for p in "${client_pids[@]}"; do
        kill "$p" 2>/dev/null || true
    done
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill -KILL "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    if [ -n "$mounted" ]; then
        umount "$mounted" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# start_server DATA [options...]: sets server_pid, url, ca, token
start_server() {
    local data=$1
    shift
    serve_start --append-err "$work/serve.out" "$work/serve.err" \
        --data "$data" --listen 127.0.0.1:0 "$@"
    ca=$data/ca.pem
    token=$(cat "$data/admin-token")
}

# stop_server: SIGTERM, returns the server's exit status in $stop_status
stop_server() {
    kill -TERM "$server_pid"
    stop_status=0
    wait "$server_pid" || stop_status=$?
    server_pid=""
}

# call METHOD PATH [BODYFILE] -> status in $code, body in $work/resp
call() {
    local args=(-sS --max-time 20 --cacert "$ca" -o "$work/resp" -w '%{http_code}' -X "$1"
        -H "Authorization: Bearer $token")
    if [ -n "${3:-}" ]; then
        args+=(-H 'Content-Type: application/json' --data-binary "@$3")
    fi
    code=$(curl "${args[@]}" "$url$2")
}

expect() { # expect STATUS METHOD PATH [BODYFILE]
    call "$2" "$3" "${4:-}"
    [ "$code" = "$1" ] || fail "$2 $3 answered $code, expected $1: $(head -c 300 "$work/resp")"
}

# ---- 1. recording, rotation, verify, tail ---------------------------------------------------
data=$work/data
# The commit delay is bounded: a value past it is a usage error that names the range.
if "$CLOISTER" serve --data "$work/unused" --audit-commit-delay 100001 >"$work/bad.out" 2>&1; then
    fail "serve accepted --audit-commit-delay 100001"
fi
grep -q 'audit-commit-delay takes microseconds from 0 (off) to 100000' "$work/bad.out" ||
    fail "no clear error for a commit delay out of range: $(cat "$work/bad.out")"
[ ! -e "$work/unused" ] || fail "a refused serve left a data directory behind"
start_server "$data" --audit-max-size 8192 --audit-checkpoint-every 7 --audit-commit-delay 5000
grep -q '^audit log: ' "$work/serve.out" || fail "serve does not announce its audit log"
[ -f "$data/audit.key" ] && [ -f "$data/audit.pub" ] || fail "no audit key in the data directory"
[ "$(stat -c %a "$data/audit.key")" = 600 ] || fail "audit.key is not 0600"
# `audit tail -f` follows the live log: records overwrite the zeros the server writes ahead of
# them, and the log rotates under it.
"$CLOISTER" audit tail -f --data "$data" --filter op=secrets.set --filter type=outcome \
    >"$work/follow.out" 2>"$work/follow.err" &
follow_pid=$!
client_pids+=("$follow_pid")
printf '{"kty":"oct","key_size":256}' >"$work/oct.json"
expect 200 POST "/keys/k1/create?api-version=$API" "$work/oct.json"
printf '{"alg":"A256GCM","value":"aGVsbG8gd29ybGQ"}' >"$work/enc.json"
version=$(jq -r .key.kid "$work/resp" | sed 's|.*/||')
expect 200 POST "/keys/k1/$version/encrypt?api-version=$API" "$work/enc.json"
secret_value="audit-must-never-see-this-$(date +%s%N)"
printf '{"value":"%s"}' "$secret_value" >"$work/secret.json"
expect 200 PUT "/secrets/s1?api-version=$API" "$work/secret.json"
expect 200 GET "/secrets/s1?api-version=$API"
expect 404 GET "/keys/nope?api-version=$API"
code=$(curl -sS --cacert "$ca" -o /dev/null -w '%{http_code}' "$url/keys?api-version=$API")
[ "$code" = 401 ] || fail "GET /keys without a token answered $code"
code=$(curl -sS --cacert "$ca" -o /dev/null -w '%{http_code}' "$url/no/such/route")
[ "$code" = 404 ] || fail "an unknown route answered $code"
# A release denial (the target is not a token from a trusted authority) records the decision.
pol64=$(printf '{"version":"1.0.0","anyOf":[{"authority":"https://nowhere.example","allOf":[{"claim":"x-ms-attestation-type","equals":"sevsnpvm"}]}]}' |
    base64 -w0 | tr '+/' '-_' | tr -d '=')
printf '{"kty":"RSA","key_size":2048,"attributes":{"exportable":true},"release_policy":{"data":"%s"}}' \
    "$pol64" >"$work/skr.json"
expect 200 POST "/keys/skr/create?api-version=$API" "$work/skr.json"
printf '{"target":"eyJhbGciOiJSUzI1NiJ9.eyJqdGkiOiJ4In0.c2ln"}' >"$work/rel.json"
expect 403 POST "/keys/skr/release?api-version=$API" "$work/rel.json"
# Enough requests to rotate a few times, and to leave at least 8 records in the newest file.
gets=()
for i in $(seq 1 10); do
    gets+=(-o /dev/null "$url/keys/k1?api-version=$API")
done
for round in $(seq 1 12); do
    codes=$(curl -sS --cacert "$ca" -H "Authorization: Bearer $token" -w '%{http_code}\n' "${gets[@]}")
    [ "$(echo "$codes" | grep -c '^200$')" = 10 ] || fail "GET /keys/k1 x10 answered: $codes"
    newest=$(ls "$data"/audit/audit-*.jsonl | tail -1)
    [ "$round" -ge 3 ] && [ "$(wc -l <"$newest")" -ge 8 ] && break
done
expect 200 PUT "/secrets/s2?api-version=$API" "$work/secret.json"
newest=$(ls "$data"/audit/audit-*.jsonl | tail -1)
records=$(tr -d '\0' <"$newest" | wc -c)
[ $(($(stat -c %s "$newest") - records)) -ge 65536 ] ||
    fail "the live file has no 64 KiB of room written ahead ($records bytes of records, $(stat -c %s "$newest") in all)"
cat "$data"/audit/audit-*.jsonl | tr -d '\0' | tail -3 | grep -q '"type":"outcome".*"name":"s2"' ||
    fail "s2's outcome is not among the last records"
for _ in $(seq 1 50); do
    grep -q 's2 by' "$work/follow.out" && break
    sleep 0.2
done
grep -q 'secrets.set  *s1 by .* -> 200 ok' "$work/follow.out" || fail "tail -f missed s1: $(cat "$work/follow.out" "$work/follow.err")"
grep -q 'secrets.set  *s2 by .* -> 200 ok' "$work/follow.out" || fail "tail -f missed s2 after rotations: $(cat "$work/follow.out" "$work/follow.err")"
[ "$(wc -l <"$work/follow.out")" = 2 ] || fail "tail -f printed: $(cat "$work/follow.out")"
kill "$follow_pid"
wait "$follow_pid" 2>/dev/null || true
ok "audit tail -f followed the live log across rotations"
# s2 may have rotated the log: fill the newest file again for the tampering tests below.
for _ in $(seq 1 6); do
    newest=$(ls "$data"/audit/audit-*.jsonl | tail -1)
    [ "$(tr -d '\0' <"$newest" | wc -l)" -ge 8 ] && break
    codes=$(curl -sS --cacert "$ca" -H "Authorization: Bearer $token" -w '%{http_code}\n' "${gets[@]}")
    [ "$(echo "$codes" | grep -c '^200$')" = 10 ] || fail "GET /keys/k1 x10 answered: $codes"
done
stop_server
[ "$stop_status" = 0 ] || fail "serve exited $stop_status at stop: $(tail -3 "$work/serve.err")"
nfiles=$(ls "$data/audit" | grep -c '^audit-.*\.jsonl$')
[ "$nfiles" -ge 3 ] || fail "the log did not rotate ($nfiles file(s) for 8 KiB files)"
"$CLOISTER" audit verify --data "$data" >"$work/verify.out" ||
    fail "audit verify failed on an untouched log: $(cat "$work/verify.out")"
grep -q '^OK: ' "$work/verify.out" && grep -q '^closed' "$work/verify.out" ||
    fail "unexpected verify output: $(cat "$work/verify.out")"
ok "audit verify: $(head -1 "$work/verify.out")"
cat "$data"/audit/audit-*.jsonl >"$work/all.jsonl"
grep -q "$secret_value" "$work/all.jsonl" && fail "a secret value is in the audit log"
grep -q "$token" "$work/all.jsonl" && fail "the bearer token is in the audit log"
grep -q 'aGVsbG8gd29ybGQ' "$work/all.jsonl" && fail "request data is in the audit log"
jq -e -s '[.[] | select(.type=="outcome" and .op=="keys.create" and .name=="k1" and .status==200
    and .result=="ok" and (.identity|length>0) and .client=="127.0.0.1" and (.rid|length==32))]
    | length == 1' "$work/all.jsonl" >/dev/null || fail "no outcome record for the creation of k1"
# A state change has an attempt record (durable before the handler ran) that its outcome names.
jq -e -s '([.[] | select(.type=="attempt" and .op=="keys.create" and .name=="k1")] | .[0].seq) as $a
    | [.[] | select(.type=="outcome" and .op=="keys.create" and .name=="k1" and .attempt==$a)]
    | length == 1' "$work/all.jsonl" >/dev/null || fail "k1's creation has no attempt record"
# A read-only operation has its outcome only (its answer waited for it).
jq -e -s '[.[] | select(.op=="keys.encrypt" and .name=="k1" and .version=="'"$version"'")]
    | length == 1 and .[0].type == "outcome" and .[0].status == 200' "$work/all.jsonl" \
    >/dev/null || fail "no single outcome record for the encryption with k1/$version"
jq -e -s '[.[] | select(.type=="outcome" and .status==401 and .result=="unauthenticated")]
    | length == 1' "$work/all.jsonl" >/dev/null || fail "the 401 has no outcome record"
jq -e -s '[.[] | select(.type=="outcome" and .op=="unrouted" and .status==404)] | length == 1' \
    "$work/all.jsonl" >/dev/null || fail "the unrouted 404 has no outcome record"
jq -e -s '[.[] | select(.type=="outcome" and .op=="keys.release" and .status==403
    and .decision=="deny" and .notes["release.stage"]=="token"
    and (.notes["release.token_sha256"]|length>0))] | length == 1' "$work/all.jsonl" >/dev/null ||
    fail "the release denial has no outcome record with its decision and token hash"
ok "records: attempts and outcomes with names, identity, client, status; release decision; no secrets"
"$CLOISTER" audit tail --data "$data" --filter op=keys.create --filter type=outcome >"$work/tail.out"
[ "$(wc -l <"$work/tail.out")" = 2 ] || fail "tail --filter: $(cat "$work/tail.out")"
grep -q 'keys.create.*k1 by .* -> 200 ok' "$work/tail.out" || fail "tail output: $(cat "$work/tail.out")"
first=$(ls "$data"/audit/audit-*.jsonl | head -1)
"$CLOISTER" audit tail --raw "$first" | jq -e -s 'length > 0' >/dev/null || fail "tail --raw"
ok "audit tail --filter and --raw"

# ---- 2. tampering ---------------------------------------------------------------------------
# Work on one file with several records (the last one, ending with the closing checkpoint), with
# the files before it given too so that the chain is whole.
mapfile -t files < <(ls "$data"/audit/audit-*.jsonl)
last=${files[-1]}
lines=$(wc -l <"$last")
[ "$lines" -ge 5 ] || fail "the last file is too short to tamper with ($lines lines)"
tamper() { # tamper NAME: runs $work/t/last through stdin filter "$@"; expects verify to fail
    local name=$1 expect_line=$2
    shift 2
    rm -rf "$work/t" && mkdir "$work/t"
    cp "${files[@]}" "$work/t/"
    local t=$work/t/$(basename "$last")
    "$@" "$t"
    if "$CLOISTER" audit verify --key "$data/audit.pub" "$work"/t/audit-*.jsonl >"$work/v.out" \
        2>"$work/v.err"; then
        fail "$name was not detected: $(cat "$work/v.out")"
    fi
    grep -q "^BAD: $(basename "$last") line $expect_line " "$work/v.out" ||
        fail "$name: expected the first bad record at line $expect_line: $(cat "$work/v.out")"
    ok "$name detected: $(cat "$work/v.out")"
}
edit3() { sed -i '3s/"type":"[a-z]*"/"type":"forged"/' "$1"; }
delete3() { sed -i '3d' "$1"; }
swap34() { awk 'NR==3{h=$0; next} NR==4{print; print h; next} {print}' "$1" >"$1.x" && mv "$1.x" "$1"; }
drop_last() { head -n -1 "$1" >"$1.x" && mv "$1.x" "$1"; }
cut_mid() { truncate -s -20 "$1"; }
tamper "an edited record" 3 edit3
tamper "a deleted record" 3 delete3
tamper "reordered records" 3 swap34
tamper "a truncated log (last record removed)" "$lines" drop_last
tamper "a truncated log (mid-record)" "$lines" cut_mid
# An edited record whose own hash was recomputed: caught by the next record's prev.
rehash3() {
    local l prefix h
    l=$(sed -n 3p "$1" | sed 's/"time":"[^"]*"/"time":"2000-01-01T00:00:00.000Z"/')
    prefix=${l%,\"hash\":*}
    h=$(printf '%s' "$prefix" | sha256sum | cut -d' ' -f1)
    awk -v n=3 -v r="$prefix,\"hash\":\"$h\"}" 'NR==n{print r; next} {print}' "$1" >"$1.x" &&
        mv "$1.x" "$1"
}
tamper "an edited record with a recomputed hash" 4 rehash3
# Zeros where records were (the pages of a write lost in a power failure) with records after
# them: verify names the line, tail refuses instead of waiting or skipping.
zero3() {
    local off
    off=$(head -n 2 "$1" | wc -c)
    dd if=/dev/zero of="$1" bs=1 seek="$off" count="$(sed -n 3p "$1" | wc -c)" conv=notrunc 2>/dev/null
}
tamper "zeros before later records" 3 zero3
status=0
"$CLOISTER" audit tail "$work/t/$(basename "$last")" >"$work/tail.out" 2>"$work/tail.err" || status=$?
[ "$status" = 1 ] && grep -q 'are followed by data: the file is damaged' "$work/tail.err" ||
    fail "audit tail on zeros before records: exit $status, $(cat "$work/tail.err")"
status=0
timeout 10 "$CLOISTER" audit tail -f "$work/t/$(basename "$last")" >"$work/tail.out" 2>"$work/tail.err" ||
    status=$?
[ "$status" = 1 ] && grep -q 'are followed by data: the file is damaged' "$work/tail.err" ||
    fail "audit tail -f on zeros before records: exit $status (124: it waited), $(cat "$work/tail.err")"
ok "audit tail and tail -f refuse zeros followed by records"
# The wrong public key.
openssl ecparam -name prime256v1 -genkey -noout 2>/dev/null | openssl pkey -pubout >"$work/other.pub"
if "$CLOISTER" audit verify --key "$work/other.pub" "${files[@]}" >"$work/v.out" 2>&1; then
    fail "verify accepted the log with another key"
fi
grep -q 'not the given public key' "$work/v.out" || fail "wrong key: $(cat "$work/v.out")"
ok "the wrong audit key is detected"

# ---- 3. a full filesystem -------------------------------------------------------------------
# The same data directory, with its audit log in a 256 KiB tmpfs (--audit-dir; a new chain there).
data2=$data
fulldir=$work/full-audit
mkdir -m 700 "$fulldir"
mount -t tmpfs -o size=256k,mode=0700 tmpfs "$fulldir" ||
    fail "cannot mount a tmpfs for the full-disk test (this test needs root)"
mounted=$fulldir
start_server "$data2" --audit-dir "$fulldir"
expect 200 POST "/keys/before-full/create?api-version=$API" "$work/oct.json"
# Fill the tmpfs (dd stops at ENOSPC). The log keeps a reserve allocated past its end for the
# outcomes of requests already under way; once it cannot renew it, new requests are refused.
dd if=/dev/zero of="$fulldir/filler" bs=4k 2>/dev/null || true
i=0
while :; do
    i=$((i + 1))
    call POST "/keys/fill-$i/create?api-version=$API" "$work/oct.json"
    [ "$code" = 503 ] && break
    [ "$code" = 200 ] || fail "creating fill-$i answered $code"
    [ "$i" -lt 40 ] || fail "the audit log never ran out of space"
done
refused=fill-$i
grep -q 'file system is full' "$work/resp" || fail "503 body: $(cat "$work/resp")"
expect 503 POST "/keys/during-full/create?api-version=$API" "$work/oct.json"
expect 503 GET "/keys/before-full?api-version=$API"
code=$(curl -sS --cacert "$ca" -o /dev/null -w '%{http_code}' "$url/healthz")
[ "$code" = 200 ] || fail "/healthz answered $code while the audit disk is full"
ok "full filesystem: requests refused with 503 ($refused was the first)"
# Room again: the service accepts requests without a restart; the refused ones changed nothing.
rm -f "$fulldir/filler"
expect 200 POST "/keys/after-room/create?api-version=$API" "$work/oct.json"
expect 404 GET "/keys/$refused?api-version=$API"
expect 404 GET "/keys/during-full?api-version=$API"
expect 200 GET "/keys/before-full?api-version=$API"
stop_server
[ "$stop_status" = 0 ] || fail "serve exited $stop_status: $(tail -3 "$work/serve.err")"
"$CLOISTER" audit verify --key "$data/audit.pub" "$fulldir"/audit-*.jsonl >"$work/v.out" ||
    fail "the log after the disk filled does not verify: $(cat "$work/v.out")"
cat "$fulldir"/audit-*.jsonl >"$work/all2.jsonl"
for k in "$refused" during-full; do
    jq -e -s --arg k "$k" '[.[] | select(.name==$k and .op=="keys.create")] | length == 0' "$work/all2.jsonl" \
        >/dev/null || fail "$k was refused but has a record: $(grep -F "\"name\":\"$k\"" "$work/all2.jsonl")"
done
start_server "$data2" --audit-dir "$fulldir"
expect 404 GET "/keys/$refused?api-version=$API"
expect 404 GET "/keys/during-full?api-version=$API"
expect 200 GET "/keys/after-room?api-version=$API"
stop_server
"$CLOISTER" audit verify --key "$data/audit.pub" "$fulldir"/audit-*.jsonl >"$work/v.out" ||
    fail "the log does not verify after the restart: $(cat "$work/v.out")"
umount "$fulldir"
mounted=""
ok "nothing changed while the log was full (also after a restart); the chain verifies"

# ---- 4. kill -9 under load ------------------------------------------------------------------
# The first data directory again: its log continues.
data3=$data
start_server "$data3"
client() {
    local c=$1 i=0 code
    while :; do
        i=$((i + 1))
        code=$(curl -sS --max-time 20 --cacert "$ca" -o /dev/null -w '%{http_code}' -X POST \
            -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
            --data-binary '{"kty":"oct","key_size":256}' \
            "$url/keys/c$c-k$i/create?api-version=$API" 2>/dev/null) || return 0
        [ "$code" = 200 ] && echo "c$c-k$i" >>"$work/acked"
    done
}
: >"$work/acked"
for c in 1 2 3 4; do
    client "$c" &
    client_pids+=($!)
done
sleep 3
kill -KILL "$server_pid"
wait "$server_pid" 2>/dev/null || true
server_pid=""
for p in "${client_pids[@]}"; do
    wait "$p" 2>/dev/null || true
done
client_pids=()
acked=$(wc -l <"$work/acked")
[ "$acked" -ge 4 ] || fail "only $acked acknowledged creations under load"
"$CLOISTER" audit verify --data "$data3" --allow-open >"$work/v.out" ||
    fail "the chain does not verify after kill -9: $(cat "$work/v.out")"
cat "$data3"/audit/audit-*.jsonl | jq -r 'select(.type=="outcome" and .op=="keys.create"
    and .status==200) | .name' | sort -u >"$work/recorded"
missing=$(sort -u "$work/acked" | comm -23 - "$work/recorded" | wc -l)
[ "$missing" = 0 ] || fail "$missing acknowledged creations have no outcome record"
if "$CLOISTER" audit verify --data "$data3" >/dev/null 2>&1; then
    fail "strict verify accepted a log without its closing checkpoint"
fi
start_server "$data3"
stop_server
"$CLOISTER" audit verify --data "$data3" >"$work/v.out" ||
    fail "the log does not verify after the restart: $(cat "$work/v.out")"
ok "kill -9 under load: all $acked acknowledged creations recorded; the chain verifies"
echo "PASS"
