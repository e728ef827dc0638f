#!/usr/bin/env bash
# The TPM 2.0 round trip against a real (software) TPM: starts swtpm on free loopback ports,
# collects evidence with `cloister evidence get --tee tpm` for each AK algorithm, verifies it with
# `cloister evidence verify --type tpm` (enrolled AK, and an AK certificate from a CA made here),
# cross-checks the quote with tpm2-tools (tpm2_checkquote; openssl for RSAPSS, see below) and the
# PCR values with tpm2_pcrread, and checks that a wrong nonce, a wrong AK, a wrong root, altered PCR
# values and a SHA-1 bank without --allow-sha1 are rejected. swtpm is killed by the trap.
set -euo pipefail
: "${CLOISTER:?CLOISTER must point at the cloister binary}"
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

command -v swtpm >/dev/null || fail "swtpm is not installed (scripts/deps.sh installs it)"
have_tools=1
command -v tpm2_checkquote >/dev/null && command -v tpm2_pcrread >/dev/null || have_tools=0

work=$(mktemp -d)
swtpm_pid=""
cleanup() {
    if [ -n "$swtpm_pid" ]; then
        kill "$swtpm_pid" 2>/dev/null || true
        wait "$swtpm_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# Free ports: let swtpm itself try to bind (no race with a separate probe); retry elsewhere when
# it cannot. The server port P and the control port P+1.
port=""
for attempt in $(seq 1 20); do
    p=$(( 20000 + (RANDOM % 20000) * 2 ))
    mkdir -p "$work/state"
    swtpm socket --tpmstate dir="$work/state" --tpm2 \
        --server type=tcp,port=$p,bindaddr=127.0.0.1 \
        --ctrl type=tcp,port=$((p + 1)),bindaddr=127.0.0.1 \
        --flags not-need-init,startup-clear >"$work/swtpm.log" 2>&1 &
    swtpm_pid=$!
    for _ in $(seq 1 50); do
        if ! kill -0 "$swtpm_pid" 2>/dev/null; then
            break
        fi
        if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            port=$p
            break
        fi
        sleep 0.1
    done
    [ -n "$port" ] && break
    kill "$swtpm_pid" 2>/dev/null || true
    wait "$swtpm_pid" 2>/dev/null || true
    swtpm_pid=""
done
[ -n "$port" ] || fail "could not start swtpm on a free port: $(cat "$work/swtpm.log")"
tcti="swtpm:host=127.0.0.1,port=$port"
export TPM2TOOLS_TCTI="$tcti"

nonce=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
field() { # field NAME FILE: the base64 member NAME of a container, decoded
    sed -n "s/^ *\"$1\": \"\\(.*\\)\",\\{0,1\\}\$/\\1/p" "$2" | base64 -d
}
expect_reject() { # expect_reject "message regex" args...
    local re=$1; shift
    local out rc=0
    out=$("$CLOISTER" "$@" 2>&1) || rc=$?
    [ "$rc" -eq 1 ] || fail "'cloister $*' exited $rc, expected 1 (rejected): $out"
    grep -qE -e "$re" <<<"$out" || fail "'cloister $*' said '$out', expected /$re/"
}

# Something in the PCRs first, so the values are not all zero.
if [ "$have_tools" = 1 ]; then
    tpm2_pcrextend 1:sha256=$(printf 'cloister' | sha256sum | cut -d' ' -f1) \
        || fail "tpm2_pcrextend failed"
fi

for alg in rsassa rsapss ecdsa; do
    ev="$work/ev-$alg.json"
    "$CLOISTER" evidence get --tee tpm --tcti "$tcti" --pcrs sha256:0,1,2,3,4,5,6,7 \
        --nonce "$nonce" --ak-alg "$alg" --ak-pub-out "$work/ak-$alg.pem" -o "$ev" \
        || fail "evidence get ($alg) failed"
    out=$("$CLOISTER" evidence verify --type tpm "$ev" --ak-pub "$work/ak-$alg.pem" \
        --report-data "$nonce" --json) || fail "verify ($alg) failed: $out"
    grep -q '"x-ms-attestation-type": "tpm"' <<<"$out" || fail "no tpm claims: $out"
    grep -q "\"x-cloister-tpm-sig-alg\": \"$alg\"" <<<"$out" || fail "sig alg not $alg: $out"
    grep -q "\"x-cloister-tpm-extra-data\": \"$nonce\"" <<<"$out" || fail "nonce claim: $out"
    grep -q '"aikValidated": false' <<<"$out" || fail "aikValidated should be false: $out"

    # The same AK on every call (a primary key from a fixed template): enrollable.
    "$CLOISTER" evidence get --tee tpm --tcti "$tcti" --pcrs sha256:0 --ak-alg "$alg" \
        --ak-pub-out "$work/ak2-$alg.pem" -o /dev/null || fail "second get ($alg) failed"
    cmp -s "$work/ak-$alg.pem" "$work/ak2-$alg.pem" || fail "the $alg AK changed between calls"

    # Rejections: another nonce, another AK.
    expect_reject "report data" evidence verify --type tpm "$ev" --ak-pub "$work/ak-$alg.pem" \
        --report-data "00$nonce"
    other=rsassa; [ "$alg" = rsassa ] && other=ecdsa
    if [ -f "$work/ak-$other.pem" ]; then
        expect_reject "rejected" evidence verify --type tpm "$ev" --ak-pub "$work/ak-$other.pem"
    fi

    # Independent checks with tpm2-tools / openssl.
    if [ "$have_tools" = 1 ]; then
        field quote "$ev" >"$work/quote.bin"
        field signature "$ev" >"$work/sig.bin"
        if [ "$alg" = rsapss ]; then
            # tpm2_checkquote 5.4 verifies RSAPSS with the maximum salt; the TPM (libtpms) signs
            # with a salt of the digest size (both are allowed). openssl checks it instead.
            tail -c 256 "$work/sig.bin" >"$work/sig.raw"
            openssl dgst -sha256 -verify "$work/ak-$alg.pem" -sigopt rsa_padding_mode:pss \
                -sigopt rsa_pss_saltlen:digest -signature "$work/sig.raw" "$work/quote.bin" \
                >/dev/null || fail "openssl does not verify the $alg quote"
        else
            tpm2_checkquote -u "$work/ak-$alg.pem" -m "$work/quote.bin" -s "$work/sig.bin" \
                -g sha256 -q "$nonce" >/dev/null || fail "tpm2_checkquote rejects the $alg quote"
        fi
    fi
done

ev="$work/ev-rsassa.json"
# PCR values as tpm2_pcrread reads them.
if [ "$have_tools" = 1 ]; then
    tpm2_pcrread sha256:0,1,2,3,4,5,6,7 -o "$work/pcrs.bin" >/dev/null || fail "tpm2_pcrread"
    want=$(od -An -v -tx1 "$work/pcrs.bin" | tr -d ' \n')
    got=$(for i in 0 1 2 3 4 5 6 7; do
        sed -n "s/^ *\"$i\": \"\\([0-9a-f]*\\)\",\\{0,1\\}\$/\\1/p" "$ev"
    done | tr -d '\n')
    [ "$want" = "$got" ] || fail "PCR values differ from tpm2_pcrread: $got vs $want"
else
    echo "note: tpm2-tools not installed; the tpm2_checkquote / tpm2_pcrread cross-checks" \
        "did not run" >&2
fi

# An altered PCR value no longer hashes to the quoted digest.
sed 's/^\( *"1": "\)\(.\)/\1f/' "$ev" >"$work/altered.json"
cmp -s "$ev" "$work/altered.json" && sed 's/^\( *"1": "\)\(.\)/\10/' "$ev" >"$work/altered.json"
expect_reject "pcrDigest" evidence verify --type tpm "$work/altered.json" \
    --ak-pub "$work/ak-rsassa.pem"

# The SHA-1 bank only with --allow-sha1.
"$CLOISTER" evidence get --tee tpm --tcti "$tcti" --pcrs sha1:0,1+sha256:0 -o "$work/sha1.json" \
    --ak-pub-out "$work/ak.pem" || fail "get with a sha1 bank failed"
expect_reject "SHA-1" evidence verify --type tpm "$work/sha1.json" --ak-pub "$work/ak.pem"
"$CLOISTER" evidence verify --type tpm "$work/sha1.json" --ak-pub "$work/ak.pem" --allow-sha1 \
    >/dev/null || fail "--allow-sha1 did not accept the sha1 bank"

# An AK certificate from a CA made here: verified with --root, refused with another root.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$work/ca.key" \
    -out "$work/ca.pem" -subj "/CN=cloister test AK CA" -days 2 2>/dev/null || fail "CA"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$work/ca2.key" \
    -out "$work/ca2.pem" -subj "/CN=another CA" -days 2 2>/dev/null || fail "CA 2"
openssl req -new -key "$work/ca.key" -subj "/CN=TPM AK" 2>/dev/null |
    openssl x509 -req -CA "$work/ca.pem" -CAkey "$work/ca.key" -CAcreateserial \
        -force_pubkey "$work/ak-rsassa.pem" -days 1 -out "$work/ak.crt" 2>/dev/null \
    || fail "cannot issue the AK certificate"
"$CLOISTER" evidence get --tee tpm --tcti "$tcti" --pcrs sha256:0,7 --nonce "$nonce" \
    --ak-cert "$work/ak.crt" -o "$work/cert.json" || fail "get with --ak-cert failed"
out=$("$CLOISTER" evidence verify --type tpm "$work/cert.json" --root "$work/ca.pem" \
    --report-data "$nonce" --json) || fail "verify with the AK certificate failed: $out"
grep -q '"aikValidated": true' <<<"$out" || fail "aikValidated should be true: $out"
expect_reject "chain" evidence verify --type tpm "$work/cert.json" --root "$work/ca2.pem"
# The certificate from standard input ("-") gives the same evidence contents.
"$CLOISTER" evidence get --tee tpm --tcti "$tcti" --pcrs sha256:0,7 --nonce "$nonce" \
    --ak-cert - -o "$work/cert-stdin.json" <"$work/ak.crt" || fail "get with --ak-cert - failed"
out=$("$CLOISTER" evidence verify --type tpm "$work/cert-stdin.json" --root "$work/ca.pem" \
    --report-data "$nonce" --json) || fail "verify of --ak-cert - evidence failed: $out"
grep -q '"aikValidated": true' <<<"$out" || fail "aikValidated should be true (stdin): $out"
# A missing input file is named, under the command that was run.
rc=0
"$CLOISTER" evidence get --tee tpm --tcti "$tcti" --ak-cert "$work/no-such.crt" -o /dev/null \
    2>"$work/err.txt" || rc=$?
[ "$rc" -eq 1 ] && grep -q "^cloister evidence get: cannot open $work/no-such.crt" "$work/err.txt" ||
    fail "missing --ak-cert: exit $rc, $(cat "$work/err.txt")"
rc=0
"$CLOISTER" evidence verify --type tpm "$work/cert.json" --ak-pub "$work/no-such.pem" \
    >/dev/null 2>"$work/err.txt" || rc=$?
[ "$rc" -eq 1 ] && grep -q "^cloister evidence verify: cannot open $work/no-such.pem" "$work/err.txt" ||
    fail "missing --ak-pub: exit $rc, $(cat "$work/err.txt")"
# A certificate for another key is refused at collection.
rc=0
"$CLOISTER" evidence get --tee tpm --tcti "$tcti" --pcrs sha256:0 --ak-alg ecdsa \
    --ak-cert "$work/ak.crt" -o /dev/null 2>"$work/err.txt" || rc=$?
[ "$rc" -eq 1 ] && grep -q "another key" "$work/err.txt" || fail "mismatched --ak-cert accepted"

# Usage errors.
rc=0; "$CLOISTER" evidence get --tee sevsnp >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 2 ] || fail "--tee sevsnp exited $rc, expected 2"
rc=0; "$CLOISTER" evidence get --tee tpm --pcrs sha256:24 >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 2 ] || fail "--pcrs sha256:24 exited $rc, expected 2"
rc=0; "$CLOISTER" evidence verify --type tpm "$ev" >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 2 ] || fail "verify without --root or --ak-pub exited $rc, expected 2"
# No TPM at the other end.
rc=0
"$CLOISTER" evidence get --tee tpm --tcti "swtpm:host=127.0.0.1,port=1" -o /dev/null \
    2>"$work/err.txt" || rc=$?
[ "$rc" -eq 1 ] || fail "get without a TPM exited $rc, expected 1"

# Nothing was left loaded in the TPM (no resource manager here).
if [ "$have_tools" = 1 ]; then
    left=$(tpm2_getcap handles-transient)
    [ -z "$left" ] || fail "transient objects left in the TPM: $left"
fi
echo "tpm_swtpm: ok"
