#!/usr/bin/env bash
# The vault's master key in an HSM, end to end with a real SoftHSM2 token (made here, in a temp
# directory, with softhsm2-util) and the real `cloister serve --pkcs11-*` and CLI:
#   1. the HSM unavailable at start (module missing, token absent, wrong PIN, PIN file readable
#      by others, options given halfway): the server refuses to start and says why;
#   2. a vault under the HSM from its first start: keys and secrets made through the REST API
#      read back after a restart; every wrapped key in the database names the HSM key; the file
#      key cannot open it;
#   3. `cloister admin rewrap`: a vault made under DIR/master.key (keys with several versions,
#      secrets, a deleted secret, a key backup) moved to the HSM; rewraps that fail (wrong PIN,
#      missing module, missing token, server running) change nothing; afterwards the server
#      starts only with the HSM, and every key, secret, old version, the deleted secret, the
#      backup and an old signature all still work; a second rewrap is refused; and back to the
#      file key with --to-file.
#
# Needs softhsm2 (softhsm2-util, /usr/lib/softhsm/libsofthsm2.so), curl, jq and sqlite3. Fails,
# never skips, when something is missing.
set -euo pipefail

CLOISTER=${CLOISTER:?set CLOISTER to the cloister binary}
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/serve.sh"
MODULE=/usr/lib/softhsm/libsofthsm2.so
TOKEN=cloister-it
PIN=it-pin-4711
need_tools softhsm2-util curl jq sqlite3
[ -f "$MODULE" ] || fail "$MODULE is missing (apt-get install softhsm2)"

work=$(mktemp -d)
chmod 700 "$work"
server_pid=""
trap cleanup_server_and_work EXIT

checks=0
ok() { checks=$((checks + 1)); }

# ---- a SoftHSM2 token of our own -----------------------------------------------------------------
mkdir -m 700 "$work/tokens"
cat >"$work/softhsm2.conf" <<EOF
directories.tokendir = $work/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
EOF
export SOFTHSM2_CONF=$work/softhsm2.conf
softhsm2-util --init-token --free --label "$TOKEN" --pin "$PIN" --so-pin so-pin-0815 >/dev/null
(umask 077 && printf '%s\n' "$PIN" >"$work/pin")
(umask 077 && printf 'not-the-pin\n' >"$work/badpin")
P11=(--pkcs11-module "$MODULE" --pkcs11-token "$TOKEN" --pkcs11-pin-file "$work/pin")

# ---- helpers ---------------------------------------------------------------------------------------
show_log() {
    echo "---- cloister serve output (last 30 lines) ----" >&2
    tail -n 30 "$work/serve.out" "$work/serve.err" >&2 || true
}
# start DATA [ARGS...]: a server on a free port; sets server_pid and the CLI's environment.
start() {
    local data=$1
    shift
    local url="" # serve_start sets this local
    serve_start "$work/serve.out" "$work/serve.err" --data "$data" --listen 127.0.0.1:0 "$@"
    export CLOISTER_URL=$url CLOISTER_CA=$data/ca.pem CLOISTER_TOKEN
    CLOISTER_TOKEN=$(cat "$data/admin-token")
}
stop() {
    kill -TERM "$server_pid"
    local rc=0
    wait "$server_pid" || rc=$?
    server_pid=""
    [ "$rc" = 0 ] || { show_log; fail "cloister serve stopped with status $rc"; }
}
# refuses WHY PATTERN DATA [ARGS...]: serve must exit non-zero, never listen, and say PATTERN.
refuses() {
    local why=$1 pattern=$2 data=$3
    shift 3
    local rc=0
    timeout 60 "$CLOISTER" serve --data "$data" --listen 127.0.0.1:0 "$@" >"$work/r.out" \
        2>"$work/r.err" || rc=$?
    [ "$rc" != 0 ] || fail "$why: cloister serve started (status 0)"
    [ "$rc" != 124 ] || fail "$why: cloister serve did not exit"
    if grep -q '^listening on' "$work/r.out"; then fail "$why: the server listened"; fi
    grep -q -- "$pattern" "$work/r.err" ||
        fail "$why: the message does not say '$pattern': $(cat "$work/r.err")"
    ok
}
# admin_fails WHY PATTERN ARGS...: `cloister admin` must fail (status 1) saying PATTERN.
admin_fails() {
    local why=$1 pattern=$2
    shift 2
    local rc=0
    "$CLOISTER" admin "$@" >"$work/a.out" 2>"$work/a.err" || rc=$?
    [ "$rc" = 1 ] || fail "$why: cloister admin exited with $rc, want 1: $(cat "$work/a.err")"
    grep -q -- "$pattern" "$work/a.err" ||
        fail "$why: the message does not say '$pattern': $(cat "$work/a.err")"
    ok
}
# The wrapping of every stored key (the rows a rewrap may change), as text.
wrapping() {
    sqlite3 "$1/vault.db" "SELECT 'v', seq, mk_id, hex(wrapped_key), hex(ciphertext), hex(mac)
        FROM versions UNION ALL SELECT 'm', name, '', hex(value), '', hex(mac) FROM meta
        ORDER BY 1, 2"
}
secret_is() {
    local got
    got=$("$CLOISTER" secret get "$@")
    [ "$got" = "$want" ] || fail "secret get $*: '$got', want '$want'"
    ok
}

# ---- 1. the HSM unavailable at start ---------------------------------------------------------------
d0=$work/d0
refuses "module missing" "/nonexistent/libsofthsm2.so" "$d0" --pkcs11-module \
    /nonexistent/libsofthsm2.so --pkcs11-token "$TOKEN" --pkcs11-pin-file "$work/pin"
grep -q -- "--pkcs11-module" "$work/r.err" || fail "module missing: no hint at --pkcs11-module"
refuses "token absent" "no token labelled 'absent-token'" "$d0" --pkcs11-module "$MODULE" \
    --pkcs11-token absent-token --pkcs11-pin-file "$work/pin"
grep -q "'$TOKEN'" "$work/r.err" || fail "token absent: the tokens present are not listed"
refuses "wrong PIN" "PIN in $work/badpin is wrong" "$d0" --pkcs11-module "$MODULE" \
    --pkcs11-token "$TOKEN" --pkcs11-pin-file "$work/badpin"
chmod 644 "$work/badpin"
refuses "PIN file readable by others" "chmod 600" "$d0" --pkcs11-module "$MODULE" \
    --pkcs11-token "$TOKEN" --pkcs11-pin-file "$work/badpin"
refuses "PIN file missing" "$work/nopin" "$d0" --pkcs11-module "$MODULE" \
    --pkcs11-token "$TOKEN" --pkcs11-pin-file "$work/nopin"
rc=0
"$CLOISTER" serve --data "$d0" --listen 127.0.0.1:0 --pkcs11-module "$MODULE" \
    >/dev/null 2>"$work/r.err" || rc=$?
[ "$rc" = 2 ] || fail "--pkcs11-module alone: status $rc, want 2 (usage)"
ok

# ---- 2. a vault under the HSM from its first start -------------------------------------------------
d1=$work/d1
start "$d1" "${P11[@]}"
grep -q "^vault master key: pkcs11:[0-9a-f]\{32\} (PKCS#11 token '$TOKEN')" "$work/serve.out" ||
    fail "the server does not say it uses the HSM key"
hsm_id=$(sed -n "s/^vault master key: \(pkcs11:[0-9a-f]*\) .*/\1/p" "$work/serve.out")
"$CLOISTER" key create hk --kty EC --curve P-256 >/dev/null
"$CLOISTER" secret set hs --value "held by the HSM" >/dev/null
echo "message signed under the HSM" >"$work/m1"
sig1=$("$CLOISTER" key sign hk --alg ES256 --in "$work/m1")
stop
start "$d1" "${P11[@]}"
want="held by the HSM" secret_is hs
[ "$("$CLOISTER" key verify hk --alg ES256 --signature "$sig1" --in "$work/m1")" = valid ] ||
    fail "the HSM vault's key does not verify its own signature after a restart"
ok
"$CLOISTER" key sign hk --alg ES256 --in "$work/m1" >/dev/null # the private key unwraps
ok
stop
# Every wrapped key in the database names the HSM key.
[ "$(sqlite3 "$d1/vault.db" "SELECT count(*) FROM versions WHERE mk_id <> '$hsm_id'")" = 0 ] ||
    fail "a version of the HSM vault is wrapped by another key"
[ "$(sqlite3 "$d1/vault.db" "SELECT count(*) FROM versions")" = 2 ] || fail "expected 2 versions"
ok
# The data directory's file key cannot open it.
refuses "file key on an HSM vault" "$hsm_id" "$d1"

# ---- 3. rewrap: file master key -> HSM -------------------------------------------------------------
d2=$work/d2
start "$d2"
"$CLOISTER" key create wk --kty RSA --size 2048 >/dev/null
"$CLOISTER" key rotate wk >/dev/null
"$CLOISTER" key create ok --kty oct --size 256 >/dev/null
"$CLOISTER" secret set db-pass --value "first password" >/dev/null
v1=$("$CLOISTER" secret set db-pass --value "second password" --json | jq -r .id | sed 's|.*/||')
"$CLOISTER" secret set db-pass --value "third password" >/dev/null
"$CLOISTER" secret set gone --value "deleted but recoverable" >/dev/null
"$CLOISTER" secret delete gone >/dev/null
echo "message signed under the file key" >"$work/m2"
sig2=$("$CLOISTER" key sign wk --alg PS256 --in "$work/m2")
quietly "cloister key backup wk" "$CLOISTER" key backup wk --out "$work/wk.backup" >/dev/null
printf 'data key bytes 0123456789abcdef!' >"$work/dk"
"$CLOISTER" key wrap ok --alg A256KW --in "$work/dk" >"$work/dk.wrapped"
file_id=$(sqlite3 "$d2/vault.db" "SELECT DISTINCT mk_id FROM versions")
case $file_id in file:*) ;; *) fail "the new vault's keys are not under the file key: $file_id" ;; esac
versions=$(sqlite3 "$d2/vault.db" "SELECT count(*) FROM versions")
[ "$versions" = 7 ] || fail "expected 7 versions, found $versions"
for s in store.integrity_key vault.key-backup-key.v1 vault.release-signing-key.v1; do
    [ "$(sqlite3 "$d2/vault.db" "SELECT count(*) FROM meta WHERE name = '$s'")" = 1 ] ||
        fail "the vault has no setting $s to re-wrap"
done
ok

# Not while the server runs (the data directory's lock).
admin_fails "server running" "in use by a running cloister serve" rewrap --data "$d2" "${P11[@]}"
stop
before=$(wrapping "$d2")
admin_fails "PIN file readable by others" "chmod 600" rewrap --data "$d2" \
    --pkcs11-module "$MODULE" --pkcs11-token "$TOKEN" --pkcs11-pin-file "$work/badpin"
chmod 600 "$work/badpin"
admin_fails "wrong PIN" "PIN in $work/badpin is wrong" rewrap --data "$d2" \
    --pkcs11-module "$MODULE" --pkcs11-token "$TOKEN" --pkcs11-pin-file "$work/badpin"
admin_fails "missing module" "/nonexistent/p11.so" rewrap --data "$d2" \
    --pkcs11-module /nonexistent/p11.so --pkcs11-token "$TOKEN" --pkcs11-pin-file "$work/pin"
admin_fails "missing token" "no token labelled 'nope'" rewrap --data "$d2" \
    --pkcs11-module "$MODULE" --pkcs11-token nope --pkcs11-pin-file "$work/pin"
admin_fails "--to-file on a vault under the file key" "already under master key '$file_id'" \
    rewrap --to-file --data "$d2" "${P11[@]}"
[ "$(wrapping "$d2")" = "$before" ] || fail "a failed rewrap changed the vault database"
ok
rc=0
"$CLOISTER" admin rewrap --data "$d2" >/dev/null 2>&1 || rc=$?
[ "$rc" = 2 ] || fail "rewrap without the HSM options: status $rc, want 2"
ok

# The rewrap.
"$CLOISTER" admin rewrap --data "$d2" "${P11[@]}" >"$work/rewrap.out" 2>"$work/rewrap.err" ||
    fail "rewrap failed: $(cat "$work/rewrap.err")"
report="re-wrapped 7 key and secret versions and 3 internal vault keys"
grep -q "^$report from master key $file_id to master key $hsm_id" "$work/rewrap.out" ||
    fail "unexpected rewrap report: $(cat "$work/rewrap.out")"
grep -q "master.key no longer protects any vault key or secret" "$work/rewrap.out" ||
    fail "the rewrap does not tell the operator about master.key"
[ -f "$d2/master.key" ] || fail "master.key was removed (the attestation service still needs it)"
ok
after=$(wrapping "$d2")
[ "$after" != "$before" ] || fail "the rewrap changed nothing"
[ "$(sqlite3 "$d2/vault.db" "SELECT count(*) FROM versions WHERE mk_id = '$hsm_id'")" = 7 ] ||
    fail "not every version is wrapped by the HSM key"
# Values (ciphertexts) and MACs are untouched: only the wrapping changed.
[ "$(sqlite3 "$d2/vault.db" "SELECT group_concat(hex(ciphertext) || hex(mac)) FROM versions")" = \
    "$(printf '%s\n' "$before" | awk -F'|' '$1 == "v" { printf "%s%s%s", sep, $5, $6; sep="," }')" ] ||
    fail "the rewrap changed a value or a MAC"
ok

# The file key no longer opens the vault; the HSM does.
refuses "file key after rewrap" "$hsm_id" "$d2"
start "$d2" "${P11[@]}"
want="third password" secret_is db-pass
want="second password" secret_is db-pass --version "$v1"
"$CLOISTER" secret recover gone >/dev/null
want="deleted but recoverable" secret_is gone
[ "$("$CLOISTER" key verify wk --alg PS256 --signature "$sig2" --in "$work/m2")" = valid ] ||
    fail "an old signature does not verify after the rewrap"
ok
"$CLOISTER" key sign wk --alg PS256 --in "$work/m2" >/dev/null
"$CLOISTER" key unwrap ok --in "$work/dk.wrapped" --out "$work/dk.back"
cmp -s "$work/dk" "$work/dk.back" || fail "an AES key wrapped before the rewrap unwraps differently"
ok
# The key-backup key came along: a backup made before the rewrap restores.
"$CLOISTER" key delete wk >/dev/null
"$CLOISTER" key purge wk >/dev/null
"$CLOISTER" key restore --in "$work/wk.backup" >/dev/null
[ "$("$CLOISTER" key verify wk --alg PS256 --signature "$sig2" --in "$work/m2")" = valid ] ||
    fail "the restored key does not verify the old signature"
ok
"$CLOISTER" secret set db-pass --value "fourth password" >/dev/null
stop

# A second rewrap has nothing to do.
admin_fails "rewrap twice" "already under master key '$hsm_id'" rewrap --data "$d2" "${P11[@]}"

# ---- and back: HSM -> file key -------------------------------------------------------------------
"$CLOISTER" admin rewrap --to-file --data "$d2" "${P11[@]}" >"$work/back.out" 2>&1 ||
    fail "rewrap --to-file failed: $(cat "$work/back.out")"
report="re-wrapped 8 key and secret versions and 3 internal vault keys"
grep -q "^$report from master key $hsm_id to master key $file_id" "$work/back.out" ||
    fail "unexpected report: $(cat "$work/back.out")"
refuses "HSM after rewrap --to-file" "$file_id" "$d2" "${P11[@]}"
start "$d2"
want="fourth password" secret_is db-pass
want="second password" secret_is db-pass --version "$v1"
[ "$("$CLOISTER" key verify wk --alg PS256 --signature "$sig2" --in "$work/m2")" = valid ] ||
    fail "the old signature does not verify after moving back to the file key"
ok
stop

# ---- 4. master.key retired: the attestation seal key wrapped by the HSM --------------------------
# The first start with the HSM wraps the attestation service's seal key into attest-seal.key;
# after that DIR/master.key can be destroyed and the attestation signing keys stay the same.
d3=$work/d3
start "$d3" "${P11[@]}"
grep -q "attestation seal key: now wrapped by the HSM" "$work/serve.out" ||
    fail "the first HSM start did not wrap the seal key: $(cat "$work/serve.out")"
curl -sS --cacert "$d3/ca.pem" "$CLOISTER_URL/certs" >"$work/certs1" || fail "GET /certs failed"
"$CLOISTER" secret set kept --value "still here" >/dev/null
stop
[ -f "$d3/attest-seal.key" ] || fail "no attest-seal.key after an HSM start"
[ "$(stat -c %a "$d3/attest-seal.key")" = 600 ] || fail "attest-seal.key is not 0600"
if cmp -s "$d3/attest-seal.key" "$d3/master.key"; then fail "the seal key was stored in clear"; fi
rm -f "$d3/master.key"
refuses "master.key gone, no HSM options" "start with the --pkcs11-\* options" "$d3"
start "$d3" "${P11[@]}"
if grep -q "attestation seal key: now wrapped" "$work/serve.out"; then
    fail "the seal key was wrapped again"
fi
curl -sS --cacert "$d3/ca.pem" "$CLOISTER_URL/certs" >"$work/certs2" || fail "GET /certs failed"
cmp -s "$work/certs1" "$work/certs2" || fail "the attestation signing keys changed without master.key"
want="still here" secret_is kept
ok
stop
# A seal key the HSM did not wrap (here: truncated) is refused with the file named.
truncate -s 10 "$d3/attest-seal.key"
refuses "damaged attest-seal.key" "attest-seal.key cannot be unwrapped" "$d3" "${P11[@]}"

echo "vault_hsm: $checks checks passed"
