#!/usr/bin/env bash
# End to end with the real binary: cloister enclave sign / measure, cloister run with files,
# sealing across enclave versions through the CLI, and rejections (tampered image or manifest,
# unsigned image, sandbox violations, a hung enclave, usage errors) with the documented exit
# statuses and messages. The enclaves are the build's hello-enclave.so and misbehave-enclave.so.
set -euo pipefail

CLOISTER=${CLOISTER:?set CLOISTER to the cloister binary}
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
BUILD=${CLST_BUILD_DIR:?set CLST_BUILD_DIR to the build directory}
HELLO=$BUILD/hello-enclave.so
BAD=$BUILD/misbehave-enclave.so
"$CLOISTER" enclave --help >/dev/null 2>&1 ||
    fail "$CLOISTER has no 'enclave' command (src/cli/main.c needs the cmd_enclave and cmd_run entries)"
for f in "$HELLO" "$BAD" "$BUILD/cloister-enclave-loader"; do
    [ -e "$f" ] || fail "$f is not built"
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

# Runs a command that must exit with status $1 and print $2 on stderr.
expect_status() {
    local want=$1 msg=$2
    shift 2
    local status=0
    "$@" >out.txt 2>err.txt || status=$?
    [ "$status" -eq "$want" ] || fail "'$*' exited $status, want $want ($(cat err.txt))"
    [ -z "$msg" ] || grep -q -- "$msg" err.txt || fail "'$*': stderr '$(cat err.txt)' lacks '$msg'"
}

# Flips the low bit of the byte at offset $2 of file $1.
flip_byte() {
    perl -e 'open(my $f, "+<", $ARGV[0]) or die; binmode $f; seek($f, $ARGV[1], 0);
             read($f, my $b, 1) == 1 or die; seek($f, $ARGV[1], 0);
             print $f chr(ord($b) ^ 1); close($f) or die' "$1" "$2"
}

quietly "openssl genpkey (signer.pem)" \
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out signer.pem
quietly "openssl genpkey (other.pem)" \
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out other.pem

# ---- sign and measure -----------------------------------------------------------------------
"$CLOISTER" enclave --help | grep -q "SHA-384 over the image bytes" || fail "enclave --help"
"$CLOISTER" enclave sign "$HELLO" --key signer.pem --product-id 1 --svn 2 -o v2.so >sign.txt
grep -q "^mrenclave   [0-9a-f]\{96\}$" sign.txt || fail "sign output: $(cat sign.txt)"
"$CLOISTER" enclave measure v2.so >measure.txt
grep -q "x-cloister-sim-mrenclave" measure.txt || fail "measure lacks the policy claims"
mre=$(awk '$1 == "mrenclave" {print $2}' measure.txt)
mrs=$(awk '$1 == "mrsigner" {print $2}' measure.txt)
[ "$(awk '$1 == "mrenclave" {print $2}' sign.txt)" = "$mre" ] || fail "sign and measure differ"
# The signer id is SHA-256 of the DER public key.
want_mrs=$(openssl pkey -in signer.pem -pubout -outform DER 2>/dev/null | sha256sum | cut -d' ' -f1)
[ "$mrs" = "$want_mrs" ] || fail "mrsigner $mrs is not SHA-256(SPKI) $want_mrs"
"$CLOISTER" enclave measure --json v2.so | grep -q "\"mrenclave\":\"$mre\",\"mrsigner\":\"$mrs\",\"product_id\":1,\"svn\":2,\"debug\":false" ||
    fail "measure --json"
# In place (re-signing replaces the manifest): same size as a fresh signature.
cp "$HELLO" inplace.so
"$CLOISTER" enclave sign inplace.so --key signer.pem --product-id 1 --svn 2 >/dev/null
"$CLOISTER" enclave sign inplace.so --key signer.pem --product-id 1 --svn 3 --heap 64 >/dev/null
[ "$(stat -c %s inplace.so)" = "$(stat -c %s v2.so)" ] || fail "re-signing stacked manifests"
"$CLOISTER" enclave measure inplace.so | grep -q "^svn         3$" || fail "re-signed svn"
"$CLOISTER" enclave sign "$HELLO" --key signer.pem --product-id 1 --svn 3 -o v3.so >/dev/null
"$CLOISTER" enclave sign "$HELLO" --key signer.pem --product-id 1 --svn 1 -o v1.so >/dev/null
"$CLOISTER" enclave sign "$HELLO" --key other.pem --product-id 1 --svn 2 -o other.so >/dev/null
"$CLOISTER" enclave sign "$BAD" --key signer.pem --product-id 9 --svn 1 -o bad.so >/dev/null

# ---- run ------------------------------------------------------------------------------------
"$CLOISTER" run --help | grep -q "RLIMIT_MEMLOCK" || fail "run --help does not explain locked memory"
out=$("$CLOISTER" run v2.so -- greet ci)
echo "$out" | grep -q "hello, ci, from inside the enclave" || fail "greet: $out"
echo "$out" | grep -q "mrenclave $mre" || fail "the enclave does not see its measurement"
printf 'line one\nline two\nline three\n' >data.txt
want_sum=$(sha256sum data.txt | cut -d' ' -f1)
want_size=$(stat -c %s data.txt)
out=$("$CLOISTER" run v2.so --in input=data.txt -- wc)
[ "$out" = "bytes=$want_size lines=3 sha256=$want_sum" ] || fail "wc to stdout: $out"
"$CLOISTER" run v2.so --in input=data.txt --out output=report.txt -- wc
[ "$(cat report.txt)" = "bytes=$want_size lines=3 sha256=$want_sum" ] || fail "wc to a file"
[ "$(stat -c %a report.txt)" = "600" ] || fail "output file mode"
# An existing output file is made private before the enclave writes into it; a symbolic link
# (one planted in a shared directory, say) is refused and its target left alone.
printf 'old\n' >shared.txt
chmod 644 shared.txt
"$CLOISTER" run v2.so --in input=data.txt --out output=shared.txt -- wc
[ "$(stat -c %a shared.txt)" = "600" ] || fail "an existing output kept mode $(stat -c %a shared.txt)"
grep -q "lines=3" shared.txt || fail "the existing output was not written"
printf 'target\n' >target.txt
ln -s target.txt link.txt
status=0
"$CLOISTER" run v2.so --in input=data.txt --out output=link.txt -- wc >out.txt 2>err.txt || status=$?
[ "$status" -ne 0 ] || fail "an output through a symbolic link was accepted"
grep -q "not written through symbolic links" err.txt || fail "symlink output: $(cat err.txt)"
[ "$(cat target.txt)" = target ] || fail "the symbolic link's target was written"
# main's return value is the exit status.
expect_status 2 "" "$CLOISTER" run v2.so -- no-such-command

# ---- sealing across versions, through the CLI -----------------------------------------------
"$CLOISTER" sim init plat >/dev/null || fail "cloister sim init plat failed"
head -c 5000 /dev/urandom >secret.bin
"$CLOISTER" run v2.so --platform plat --in input=secret.bin --out output=sealed.bin -- seal
"$CLOISTER" run v3.so --platform plat --in input=sealed.bin --out output=opened.bin -- unseal
cmp -s secret.bin opened.bin || fail "svn 3 could not unseal svn 2's data"
expect_status 3 "newer than this enclave" \
    "$CLOISTER" run v1.so --platform plat --in input=sealed.bin --out output=x.bin -- unseal
expect_status 4 "another signer" \
    "$CLOISTER" run other.so --platform plat --in input=sealed.bin --out output=x.bin -- unseal
# Without a platform there is no sealing, and the enclave is told what to do.
expect_status 4 "cloister sim init" \
    "$CLOISTER" run v2.so --in input=secret.bin --out output=x.bin -- seal
# Another platform (another sealing secret) cannot unseal.
"$CLOISTER" sim init plat2 >/dev/null || fail "cloister sim init plat2 failed"
expect_status 4 "authentication failed" \
    "$CLOISTER" run v2.so --platform plat2 --in input=sealed.bin --out output=x.bin -- unseal

# ---- rejections -----------------------------------------------------------------------------
cp v2.so tampered.so
flip_byte tampered.so 2000
expect_status 1 "modified after signing" "$CLOISTER" run tampered.so -- greet
expect_status 1 "modified after signing" "$CLOISTER" enclave measure tampered.so
cp v2.so badmanifest.so
size=$(stat -c %s "$HELLO")
flip_byte badmanifest.so $((size + 14)) # the manifest's svn
expect_status 1 "manifest signature is invalid" "$CLOISTER" run badmanifest.so -- greet
expect_status 1 "not signed" "$CLOISTER" run "$HELLO" -- greet
expect_status 1 "killed by the sandbox: system call openat" "$CLOISTER" run bad.so -- open
grep -q "entry point 'clst.main'" err.txt || fail "the dead entry point is not named"
expect_status 1 "system call socket" "$CLOISTER" run bad.so -- socket
expect_status 1 "system call execve" "$CLOISTER" run bad.so -- exec
expect_status 1 "SIGSEGV" "$CLOISTER" run bad.so -- crash
expect_status 1 "did not answer within 1000 ms" "$CLOISTER" run --timeout 1 bad.so -- hang
expect_status 1 "not supported by this build" "$CLOISTER" run --tee sevsnp v2.so
expect_status 2 "expected NAME=PATH" "$CLOISTER" run v2.so --in nonsense -- wc
expect_status 2 "needs IMAGE, --key" "$CLOISTER" enclave sign v2.so --key signer.pem
expect_status 2 "not a number" "$CLOISTER" enclave sign v2.so --key signer.pem --product-id 70000 --svn 1
expect_status 2 "unknown subcommand" "$CLOISTER" enclave frobnicate
echo "enclave_cli: all checks passed"
