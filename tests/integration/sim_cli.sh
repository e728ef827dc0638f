#!/usr/bin/env bash
# End to end with the real binary: cloister sim init -> sim report -> evidence verify, the
# permissions of the created platform, and rejections (tampering, wrong root, expired time,
# runtime data mismatch, debug, oversized input, too-open key files) with exit 1 and a message.
set -euo pipefail

CLOISTER=${CLOISTER:?set CLOISTER to the cloister binary}
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

# Runs a command that must fail with exit status 1 and print a message containing $1.
expect_reject() {
    local want=$1
    shift
    local status=0
    "$@" >out.txt 2>err.txt || status=$?
    [ "$status" -eq 1 ] || fail "'$*' exited $status, want 1 ($(cat err.txt))"
    grep -q -- "$want" err.txt || fail "'$*': message '$(cat err.txt)' lacks '$want'"
}

mode() { stat -c %a "$1"; }

hex_repeat() { # hex_repeat BYTE COUNT
    local s=""
    for ((i = 0; i < $2; i++)); do s+=$1; done
    printf '%s' "$s"
}

MRENCLAVE=$(hex_repeat a1 48)
MRSIGNER=$(hex_repeat 5e 32)

# ---- help texts say what sim is --------------------------------------------------------------
# (captured first: grep -q would close the pipe early and pipefail would report the writer's SIGPIPE)
help=$("$CLOISTER" sim --help)
grep -q "DEVELOPMENT AND CI ONLY" <<<"$help" || fail "sim --help lacks the warning"
help=$("$CLOISTER" evidence --help)
grep -q "DEVELOPMENT-ONLY" <<<"$help" || fail "evidence --help lacks the warning"

# ---- init: files and permissions -------------------------------------------------------------
"$CLOISTER" sim init plat >init.txt || fail "cloister sim init plat failed"
grep -q "platform id" init.txt || fail "init output lacks the platform id"
[ "$(mode plat)" = 700 ] || fail "platform directory mode $(mode plat)"
for f in root-key.pem platform-key.pem sealing.key; do
    [ "$(mode plat/$f)" = 600 ] || fail "$f mode $(mode plat/$f)"
done
for f in root.pem platform.pem; do
    [ "$(mode plat/$f)" = 644 ] || fail "$f mode $(mode plat/$f)"
done
[ "$(stat -c %s plat/sealing.key)" = 32 ] || fail "sealing.key is not 32 bytes"
[ "$(ls -A plat | wc -l)" = 5 ] || fail "unexpected files in plat: $(ls -A plat)"
openssl x509 -in plat/root.pem -noout -text | grep -q "CA:TRUE" || fail "root is not a CA"
openssl verify -CAfile plat/root.pem plat/platform.pem >/dev/null || fail "openssl rejects the chain"

# A second init refuses to overwrite; --force replaces.
expect_reject "--force" "$CLOISTER" sim init plat
cp plat/root.pem old-root.pem
"$CLOISTER" sim init plat --force >/dev/null || fail "cloister sim init plat --force failed"
cmp -s old-root.pem plat/root.pem && fail "--force kept the old root"
[ "$(mode plat/platform-key.pem)" = 600 ] || fail "platform-key.pem mode after --force"

# ---- report -> verify ------------------------------------------------------------------------
printf '{"keys":[{"kty":"EC","kid":"tee-ephemeral"}]}' >runtime.json
"$CLOISTER" sim report --platform plat --mrenclave "$MRENCLAVE" --mrsigner "$MRSIGNER" \
    --product-id 42 --svn 3 --runtime-data runtime.json -o ev.bin 2>err.txt ||
    fail "cloister sim report -o ev.bin failed: $(cat err.txt)"
[ "$(head -c 4 ev.bin)" = CSIM ] || fail "evidence does not start with the magic"

"$CLOISTER" evidence verify --type sim ev.bin --root plat/root.pem --runtime-data runtime.json \
    >verify.txt
grep -q "sim evidence verified" verify.txt || fail "no success line"
grep -q "DEVELOPMENT-ONLY" verify.txt || fail "success output does not say sim is development-only"

"$CLOISTER" evidence verify --type sim ev.bin --root plat/root.pem --json >claims.json 2>err.txt ||
    fail "evidence verify --json failed: $(cat err.txt)"
# The claims, exactly (plain grep: the test needs nothing beyond coreutils and openssl).
claim() { # claim NAME JSON-VALUE
    grep -qxF "  \"$1\": $2," claims.json || grep -qxF "  \"$1\": $2" claims.json ||
        fail "claim $1 is not $2: $(cat claims.json)"
}
RUNTIME_RD="$(sha256sum runtime.json | cut -c1-64)$(hex_repeat 00 32)"
claim x-ms-attestation-type '"sim"'
claim x-cloister-sim-mrenclave "\"$MRENCLAVE\""
claim x-cloister-sim-mrsigner "\"$MRSIGNER\""
claim x-cloister-sim-product-id 42
claim x-cloister-sim-svn 3
claim x-cloister-sim-is-debuggable false
claim x-cloister-sim-report-data "\"$RUNTIME_RD\""
# No hardware claim names: every claim is the attestation type or x-cloister-sim-*.
if grep -E '^  "' claims.json | grep -vE '^  "(x-ms-attestation-type|x-cloister-sim-[a-z-]+)": '; then
    fail "claims outside the sim namespace"
fi

# Explicit report data, and standard output.
RD=$(hex_repeat 07 64)
"$CLOISTER" sim report --platform plat --mrenclave "$MRENCLAVE" --mrsigner "$MRSIGNER" \
    --product-id 1 --svn 1 --report-data "$RD" -o - >rd.bin ||
    fail "cloister sim report -o - failed"
"$CLOISTER" evidence verify --type sim rd.bin --root plat/root.pem --report-data "$RD" >/dev/null
"$CLOISTER" evidence verify --type sim - --root plat/root.pem <rd.bin >/dev/null

# A time within the platform certificate's validity.
"$CLOISTER" evidence verify --type sim ev.bin --root plat/root.pem \
    --time "$(date -u -d '+1 year' +%Y-%m-%dT%H:%M:%SZ)" >/dev/null

# flip_byte FILE OFFSET: inverts every bit of one byte (writing a constant would change nothing
# when the byte already held it: a 1-in-256 false pass of the tamper checks).
flip_byte() {
    local b
    b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
    printf "$(printf '\\%03o' $((b ^ 255)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

# ---- rejections: exit 1 with a reason --------------------------------------------------------
# Tampered: one byte of the measurement, of the certificate, of the signature.
for off in 20 400 $(($(stat -c %s ev.bin) - 5)); do
    cp ev.bin tampered.bin
    flip_byte tampered.bin "$off"
    expect_reject "evidence rejected" "$CLOISTER" evidence verify --type sim tampered.bin \
        --root plat/root.pem
done
# Truncated and extended.
head -c 500 ev.bin >short.bin
expect_reject "truncated" "$CLOISTER" evidence verify --type sim short.bin --root plat/root.pem
{ cat ev.bin; printf 'x'; } >long.bin
expect_reject "after the signature" "$CLOISTER" evidence verify --type sim long.bin \
    --root plat/root.pem
head -c 100000 /dev/zero >huge.bin
expect_reject "limit" "$CLOISTER" evidence verify --type sim huge.bin --root plat/root.pem
# Another platform's root, the old root, an expired time.
"$CLOISTER" sim init other >/dev/null || fail "cloister sim init other failed"
expect_reject "untrusted platform certificate" "$CLOISTER" evidence verify --type sim ev.bin \
    --root other/root.pem
expect_reject "untrusted platform certificate" "$CLOISTER" evidence verify --type sim ev.bin \
    --root old-root.pem
expect_reject "expired" "$CLOISTER" evidence verify --type sim ev.bin --root plat/root.pem \
    --time "$(date -u -d '+3 years' +%Y-%m-%dT%H:%M:%SZ)"
# Runtime data and report data that do not match.
printf 'other' >other.json
expect_reject "runtime data" "$CLOISTER" evidence verify --type sim ev.bin --root plat/root.pem \
    --runtime-data other.json
expect_reject "report data" "$CLOISTER" evidence verify --type sim rd.bin --root plat/root.pem \
    --report-data "$(hex_repeat 08 64)"
# Debug: refused unless allowed.
"$CLOISTER" sim report --platform plat --mrenclave "$MRENCLAVE" --mrsigner "$MRSIGNER" \
    --product-id 1 --svn 1 --debug --report-data "$RD" -o debug.bin 2>err.txt ||
    fail "cloister sim report --debug failed: $(cat err.txt)"
expect_reject "debuggable" "$CLOISTER" evidence verify --type sim debug.bin --root plat/root.pem
"$CLOISTER" evidence verify --type sim debug.bin --root plat/root.pem --allow-debug --json \
    2>/dev/null | grep -q '"x-cloister-sim-is-debuggable": true' || fail "debug claim"
# Sim evidence presented as hardware evidence: each hardware parser refuses it by its own rules.
expect_reject "azure-vtpm evidence" "$CLOISTER" evidence verify --type azure-vtpm ev.bin
expect_reject "sevsnp" "$CLOISTER" evidence verify --type sevsnp ev.bin

# ---- the platform refuses unsafe permissions ---------------------------------------------------
chmod 640 plat/platform-key.pem
expect_reject "chmod 600" "$CLOISTER" sim report --platform plat --mrenclave "$MRENCLAVE" \
    --mrsigner "$MRSIGNER" --product-id 1 --svn 1 --report-data "$RD" -o x.bin
chmod 600 plat/platform-key.pem
chmod 750 plat
expect_reject "chmod 700" "$CLOISTER" sim report --platform plat --mrenclave "$MRENCLAVE" \
    --mrsigner "$MRSIGNER" --product-id 1 --svn 1 --report-data "$RD" -o x.bin
chmod 700 plat
mkdir -m 755 open-dir
expect_reject "chmod 700" "$CLOISTER" sim init open-dir

# ---- usage errors exit 2 ---------------------------------------------------------------------
status=0
"$CLOISTER" sim report --platform plat --mrenclave ab --mrsigner "$MRSIGNER" --product-id 1 \
    --svn 1 --report-data "$RD" -o x.bin 2>/dev/null || status=$?
[ "$status" -eq 2 ] || fail "short --mrenclave exited $status, want 2"
status=0
"$CLOISTER" evidence verify --type sim ev.bin 2>/dev/null || status=$?
[ "$status" -eq 2 ] || fail "verify without --root exited $status, want 2"
status=0
"$CLOISTER" sim report --platform plat --mrenclave "$MRENCLAVE" --mrsigner "$MRSIGNER" \
    --product-id 65536 --svn 1 --report-data "$RD" -o x.bin 2>/dev/null || status=$?
[ "$status" -eq 2 ] || fail "--product-id 65536 exited $status, want 2"

echo "sim_cli: all checks passed"
