#!/usr/bin/env bash
# `cloister encrypt --key vault:NAME` / `cloister decrypt --key vault:NAME | --vault` against a
# real `cloister serve`: RSA and oct vault keys, a pinned version, rotation (old files still open
# with the version that wrapped them), the header naming the vault key, and the refusals: no
# token, a wrong token, a key without wrapKey, a missing key, a tampered file, a file encrypted
# to another key, an untrusted CA. The input key is wrapped by the vault, so each success also
# proves that decryption went through the vault.
set -euo pipefail

CLOISTER=${CLOISTER:?set CLOISTER to the cloister binary}
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/serve.sh"
need_tools cmp head od

work=$(mktemp -d)
server_pid=""
trap cleanup_server_and_work EXIT

checks=0
ok() { checks=$((checks + 1)); }

data=$work/data
serve_start "$work/serve.out" "$work/serve.err" --data "$data" --listen 127.0.0.1:0
export CLOISTER_URL=$url CLOISTER_CA=$data/ca.pem
tokfile=$data/admin-token

# expect_fail WHAT PATTERN CMD...: the command must fail and its stderr must match PATTERN.
expect_fail() {
    local what=$1 pattern=$2
    shift 2
    if "$@" >"$work/out" 2>"$work/err"; then
        fail "$what: succeeded, want a failure"
    fi
    grep -qE -- "$pattern" "$work/err" || fail "$what: stderr lacks /$pattern/: $(cat "$work/err")"
    ok
}

head -c 200000 /dev/urandom >"$work/plain"
printf 'short' >"$work/small"

"$CLOISTER" key create rsa-data --kty RSA --size 3072 --ops wrapKey,unwrapKey \
    --token-file "$tokfile" >/dev/null
"$CLOISTER" key create oct-data --kty oct --size 256 --ops wrapKey,unwrapKey \
    --token-file "$tokfile" >/dev/null
"$CLOISTER" key create signer --kty EC --curve P-256 --ops sign,verify \
    --token-file "$tokfile" >/dev/null
"$CLOISTER" key create enc-only --kty RSA --size 2048 --ops encrypt,decrypt \
    --token-file "$tokfile" >/dev/null

for key in rsa-data oct-data; do
    "$CLOISTER" encrypt --key "vault:$key" --token-file "$tokfile" -o "$work/$key.clst" \
        "$work/plain"
    "$CLOISTER" inspect "$work/$key.clst" >"$work/inspect" 2>&1
    grep -q "$key" "$work/inspect" || fail "inspect does not name the vault key: $(cat "$work/inspect")"
    grep -q "${url#https://}" "$work/inspect" || fail "inspect does not name the vault: $(cat "$work/inspect")"
    ok
    "$CLOISTER" decrypt --key "vault:$key" --token-file "$tokfile" -o "$work/$key.out" \
        "$work/$key.clst"
    cmp -s "$work/plain" "$work/$key.out" || fail "$key: decrypted data differs"
    ok
    "$CLOISTER" decrypt --vault --token-file "$tokfile" -o "$work/$key.any" "$work/$key.clst"
    cmp -s "$work/plain" "$work/$key.any" || fail "$key (--vault): decrypted data differs"
    ok
done

# The token from the environment instead of a file; standard input and output.
CLOISTER_TOKEN=$(cat "$tokfile") "$CLOISTER" encrypt --key vault:oct-data -o - <"$work/small" \
    >"$work/small.clst"
CLOISTER_TOKEN=$(cat "$tokfile") "$CLOISTER" decrypt --vault -o - <"$work/small.clst" \
    >"$work/small.out"
cmp -s "$work/small" "$work/small.out" || fail "stdin/stdout round trip differs"
ok

# A pinned version, then rotation: a new file uses the new version, old files still open.
v1=$("$CLOISTER" key get rsa-data --token-file "$tokfile" | sed -n 's/.*\/keys\/rsa-data\/\([0-9a-f]\{32\}\).*/\1/p' | head -n1)
[ ${#v1} -eq 32 ] || fail "could not read the key's version"
"$CLOISTER" key rotate rsa-data --token-file "$tokfile" >/dev/null
"$CLOISTER" encrypt --key "vault:rsa-data/$v1" --token-file "$tokfile" -o "$work/pinned.clst" \
    "$work/small"
"$CLOISTER" inspect "$work/pinned.clst" 2>&1 | grep -q "$v1" || fail "the header lacks the pinned version"
ok
"$CLOISTER" encrypt --key vault:rsa-data --token-file "$tokfile" -o "$work/new.clst" "$work/small"
if "$CLOISTER" inspect "$work/new.clst" 2>&1 | grep -q "$v1"; then
    fail "after rotation a new file still names the old version"
fi
ok
for f in rsa-data pinned new; do
    "$CLOISTER" decrypt --vault --token-file "$tokfile" -o "$work/$f.rot" "$work/$f.clst"
done
cmp -s "$work/plain" "$work/rsa-data.rot" && cmp -s "$work/small" "$work/pinned.rot" &&
    cmp -s "$work/small" "$work/new.rot" || fail "files do not open after rotation"
ok

# Refusals.
expect_fail "no token" "no token" env -u CLOISTER_TOKEN "$CLOISTER" encrypt --key vault:oct-data \
    -o "$work/x.clst" "$work/small"
[ ! -e "$work/x.clst" ] || fail "a refused encryption left $work/x.clst"
echo "not-the-token" >"$work/badtok"
expect_fail "wrong token" "401|[Uu]nauthori|token" "$CLOISTER" encrypt --key vault:oct-data \
    --token-file "$work/badtok" -o "$work/x.clst" "$work/small"
[ ! -e "$work/x.clst" ] || fail "a refused encryption left $work/x.clst"
expect_fail "bad reference" "vault:" "$CLOISTER" encrypt --key vault:bad_name! \
    --token-file "$tokfile" -o "$work/x.clst" "$work/small"
expect_fail "missing key" "not found|NotFound|no key|does not exist" "$CLOISTER" encrypt \
    --key vault:nope --token-file "$tokfile" -o "$work/x.clst" "$work/small"
expect_fail "EC key cannot wrap" "wrap|EC" "$CLOISTER" encrypt --key vault:signer \
    --token-file "$tokfile" -o "$work/x.clst" "$work/small"
expect_fail "key without wrapKey" "wrapKey|not allowed|key_ops|operation" "$CLOISTER" encrypt \
    --key vault:enc-only --token-file "$tokfile" -o "$work/x.clst" "$work/small"
[ ! -e "$work/x.clst" ] || fail "a refused encryption left $work/x.clst"
expect_fail "two key sources" "exactly one" "$CLOISTER" encrypt --key vault:oct-data \
    --key-file "$work/small" -o "$work/x.clst" "$work/small"
expect_fail "decrypt with the other vault key" "rsa-data|oct-data|key" "$CLOISTER" decrypt \
    --key vault:oct-data --token-file "$tokfile" -o "$work/x.out" "$work/rsa-data.clst"
[ ! -e "$work/x.out" ] || fail "a failed decryption left plaintext"
other_ca=$work/other-ca.pem
quietly "openssl req (other CA)" \
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=other \
    -keyout "$work/other.key" -out "$other_ca" -days 1
expect_fail "untrusted CA" "certificate|TLS|SSL|verify" "$CLOISTER" decrypt --vault \
    --ca "$other_ca" --token-file "$tokfile" -o "$work/x.out" "$work/rsa-data.clst"
[ ! -e "$work/x.out" ] || fail "a failed decryption left plaintext"
# A byte flipped in the body: the vault unwraps, the body fails, nothing is written.
cp "$work/oct-data.clst" "$work/flip.clst"
size=$(stat -c %s "$work/flip.clst")
pos=$((size - 100))
byte=$(od -An -tu1 -j "$pos" -N1 "$work/flip.clst" | tr -d ' ')
printf "$(printf '\\%03o' $(((byte ^ 1) & 255)))" |
    dd of="$work/flip.clst" bs=1 seek="$pos" conv=notrunc 2>/dev/null
expect_fail "tampered body" "authenticat|tamper|modified|corrupt" "$CLOISTER" decrypt --vault \
    --token-file "$tokfile" -o "$work/x.out" "$work/flip.clst"
[ ! -e "$work/x.out" ] || fail "a failed decryption left plaintext"

echo "envelope_vault: $checks checks passed"
