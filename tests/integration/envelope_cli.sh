#!/usr/bin/env bash
# Integration test of `cloister keygen | encrypt | decrypt | inspect` (the .clst envelope):
# round trips of 0 B .. 32 MiB through files and pipes with a local key and both recipient kinds,
# one and two threads; failures (wrong key, tampered, truncated, extended, not a .clst file)
# exit 1 and leave no plaintext file behind; usage errors exit 2; key file permissions; --force;
# --help texts; inspect.
set -euo pipefail

: "${CLOISTER:?set CLOISTER to the cloister binary}"
work=$(mktemp -d /tmp/clst-envelope-cli.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"

fails=0
# flip_byte FILE OFFSET: inverts every bit of one byte (writing a constant would change nothing
# when the byte already held it: a 1-in-256 false pass of the tamper checks).
flip_byte() {
    local b
    b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
    printf "$(printf '\\%03o' $((b ^ 255)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}
pass() { printf 'ok   %s\n' "$1"; }
fail() { printf 'FAIL %s\n' "$1"; fails=$((fails + 1)); }
# expect CODE DESCRIPTION CMD...: runs CMD, checks its exit status.
expect() {
    local want=$1 what=$2
    shift 2
    local got=0
    "$@" >"$work/.out" 2>"$work/.err" || got=$?
    if [ "$got" -eq "$want" ]; then
        pass "$what"
    else
        fail "$what (exit $got, wanted $want): $(head -c 400 "$work/.err")"
    fi
}
# expect_err PATTERN DESCRIPTION: the last command's stderr matches PATTERN.
expect_err() {
    if grep -q -- "$1" "$work/.err"; then pass "$2"; else fail "$2: stderr was: $(head -c 400 "$work/.err")"; fi
}

# ---- keys --------------------------------------------------------------------------------------
expect 0 "keygen symmetric" "$CLOISTER" keygen -o sym.key
[ "$(stat -c %a sym.key)" = 600 ] && pass "key file mode 0600" || fail "key file mode $(stat -c %a sym.key)"
grep -qE '^cloister-key-v1:[0-9a-f]{64}$' sym.key && pass "key file format" || fail "key file format"
keyid=$(sed -n 's/^key id: //p' "$work/.out")
[ "${#keyid}" -eq 32 ] && pass "key id printed" || fail "key id printed: '$keyid'"
cp sym.key sym.key.orig
expect 1 "keygen refuses to overwrite" "$CLOISTER" keygen -o sym.key
expect_err "already exists" "keygen says why"
cmp -s sym.key sym.key.orig && pass "existing key untouched" || fail "existing key was changed"
expect 0 "keygen --force replaces" "$CLOISTER" keygen -o other.key
expect 0 "keygen --force" "$CLOISTER" keygen --force -o other.key
expect 0 "keygen rsa" "$CLOISTER" keygen --type rsa --bits 2048 -o rsa.pem --public-out rsa.pub
expect 0 "keygen p256" "$CLOISTER" keygen --type p256 -o ec.pem --public-out ec.pub
[ "$(stat -c %a rsa.pem)" = 600 ] && pass "private key mode 0600" || fail "private key mode"
grep -q "BEGIN PRIVATE KEY" rsa.pem && pass "PKCS#8 private key" || fail "PKCS#8 private key"
grep -q "BEGIN PUBLIC KEY" ec.pub && pass "SPKI public key" || fail "SPKI public key"
expect 0 "keygen p256 (second pair)" "$CLOISTER" keygen --type p256 -o ec2.pem --public-out ec2.pub
expect 2 "keygen without -o" "$CLOISTER" keygen
expect 2 "keygen bad type" "$CLOISTER" keygen --type dsa -o x
expect 2 "keygen bad bits" "$CLOISTER" keygen --type rsa --bits 1024 -o x
# openssl-made keys work too (traditional and PKCS#8 forms).
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ossl.pem 2>/dev/null
chmod 600 ossl.pem
openssl pkey -in ossl.pem -pubout -out ossl.pub 2>/dev/null

# ---- round trips -------------------------------------------------------------------------------
sizes="0 1 100 16383 16384 16385 32768 65537 1048576 5000000 33554432"
for n in $sizes; do
    head -c "$n" /dev/urandom >"p$n"
done
for n in $sizes; do
    ok=1
    "$CLOISTER" encrypt -q --key-file sym.key "p$n" -o "c$n.clst" || ok=0
    "$CLOISTER" decrypt -q --key-file sym.key "c$n.clst" -o "d$n" || ok=0
    cmp -s "p$n" "d$n" || ok=0
    # Ciphertext size: header + 56 + plaintext + 16 per chunk (the final short chunk included).
    hs=$("$CLOISTER" inspect "c$n.clst" | sed -n 's/^header: *\([0-9]*\) bytes/\1/p')
    want=$((hs + 56 + n + 16 * (n / 16384 + 1)))
    [ "$(stat -c %s "c$n.clst")" -eq "$want" ] || ok=0
    [ $ok = 1 ] && pass "round trip $n bytes (file, local key)" || fail "round trip $n bytes"
done
for n in 0 16384 5000000; do
    for t in 1 2; do
        ok=1
        "$CLOISTER" encrypt -q --threads $t -r rsa.pub "p$n" -o "r$n.$t.clst" || ok=0
        "$CLOISTER" decrypt -q --threads $((3 - t)) -k rsa.pem "r$n.$t.clst" -o "rd$n.$t" || ok=0
        cmp -s "p$n" "rd$n.$t" || ok=0
        [ $ok = 1 ] && pass "round trip $n bytes, RSA recipient, threads $t" || fail "RSA $n $t"
    done
done
for n in 0 16385 1048576; do
    ok=1
    "$CLOISTER" encrypt -r ec.pub "p$n" -o "e$n.clst" || ok=0
    "$CLOISTER" decrypt -k ec.pem "e$n.clst" -o "ed$n" || ok=0
    cmp -s "p$n" "ed$n" || ok=0
    [ $ok = 1 ] && pass "round trip $n bytes, P-256 recipient" || fail "P-256 $n"
done
ok=1
"$CLOISTER" encrypt -r ossl.pub p16385 -o o.clst && "$CLOISTER" decrypt -k ossl.pem o.clst -o od || ok=0
cmp -s p16385 od || ok=0
[ $ok = 1 ] && pass "openssl-generated P-256 key pair" || fail "openssl-generated key pair"

# stdin / stdout
for n in 0 1 16383 16384 16385 5000000; do
    if "$CLOISTER" encrypt -k sym.key <"p$n" | "$CLOISTER" decrypt -k sym.key | cmp -s - "p$n"; then
        pass "pipe round trip $n bytes"
    else
        fail "pipe round trip $n bytes"
    fi
done
"$CLOISTER" encrypt -k sym.key - -o - <p100 >s.clst
"$CLOISTER" decrypt -k sym.key -o - s.clst | cmp -s - p100 && pass "explicit '-' for stdin and stdout" || fail "explicit -"
# default output names
cp p1048576 report.csv
expect 0 "encrypt with the default output name" "$CLOISTER" encrypt -k sym.key report.csv
[ -f report.csv.clst ] && pass "INPUT.clst created" || fail "INPUT.clst created"
mv report.csv report.orig
expect 0 "decrypt with the default output name" "$CLOISTER" decrypt -k sym.key report.csv.clst
cmp -s report.csv report.orig && pass "INPUT without .clst restored" || fail "default decrypt name"
[ "$(stat -c %a report.csv)" = 600 ] && pass "decrypted file mode 0600" || fail "decrypted file mode"
expect 2 "decrypt of a name without .clst needs -o" "$CLOISTER" decrypt -k sym.key p100
# several keys: the right one is picked
expect 0 "decrypt with several --key-file" "$CLOISTER" decrypt -k other.key -k ec.pem -k rsa.pem r16384.1.clst -o multi
cmp -s multi p16384 && pass "the matching key was used" || fail "several keys"
# metadata
expect 0 "encrypt with metadata" "$CLOISTER" encrypt -k sym.key -m content-type=text/csv -m 'note=a "quoted" value' p100 -o m.clst
expect 0 "inspect" "$CLOISTER" inspect m.clst
grep -q 'content-type = "text/csv"' "$work/.out" && pass "inspect shows metadata" || fail "inspect metadata"
grep -q "local key id $keyid" "$work/.out" && pass "inspect shows the key id" || fail "inspect key id"
grep -q "plaintext: *100 bytes" "$work/.out" && pass "inspect shows the plaintext size" || fail "inspect size"
grep -q "not authenticated\|nothing above is authenticated" "$work/.out" && pass "inspect says it is unauthenticated" || fail "inspect caveat"
expect 0 "inspect from stdin" sh -c "'$CLOISTER' inspect - < r16384.1.clst"
grep -q "RSA recipient SHA256:" "$work/.out" && pass "inspect shows the recipient" || fail "inspect recipient"
expect 2 "bad metadata name" "$CLOISTER" encrypt -k sym.key -m novalue p100 -o x.clst
expect 1 "metadata name outside the alphabet" "$CLOISTER" encrypt -k sym.key -m Upper=1 p100 -o x.clst
[ ! -e x.clst ] && pass "no output after a refused encrypt" || fail "output left after refused encrypt"

# ---- failures: exit 1, message, and no plaintext left behind ---------------------------------------
nothing_left() {
    # $1: output path that must not exist; no temporary files either.
    if [ -e "$1" ] || ls -a | grep -q '^\.cloister-\|^\..*\.[A-Za-z0-9]\{6\}$'; then
        fail "$2: output or temporary file left behind: $(ls -a | tr '\n' ' ')"
    else
        pass "$2: nothing left on disk"
    fi
}
expect 1 "wrong local key" "$CLOISTER" decrypt -k other.key c16385.clst -o out1
expect_err "encrypted for local key id $keyid, but the key given has id" "wrong key message names both ids"
nothing_left out1 "wrong key"
expect 1 "wrong recipient" "$CLOISTER" decrypt -k ec2.pem e16385.clst -o out2
expect_err "P-256 recipient SHA256:" "wrong recipient message"
nothing_left out2 "wrong recipient"
expect 1 "local key for a recipient file" "$CLOISTER" decrypt -k sym.key r16384.1.clst -o out3
nothing_left out3 "local key for a recipient file"

size=$(stat -c %s c5000000.clst)
for off in 10 100 $((size / 2)) $((size - 1)); do
    cp c5000000.clst t.clst
    flip_byte t.clst "$off"
    for t in 1 2; do
        expect 1 "tampered byte at $off (threads $t)" "$CLOISTER" decrypt --threads $t -k sym.key t.clst -o out4
        nothing_left out4 "tampered byte at $off"
    done
done
hs=$("$CLOISTER" inspect c5000000.clst | sed -n 's/^header: *\([0-9]*\) bytes/\1/p')
for cut in 0 5 $((hs - 1)) $hs $((hs + 56)) $((hs + 56 + 16400)) $((hs + 56 + 16400 * 100)) $((size - 1)); do
    head -c "$cut" c5000000.clst >t.clst
    expect 1 "truncated to $cut bytes" "$CLOISTER" decrypt -k sym.key t.clst -o out5
    nothing_left out5 "truncated to $cut"
done
cp c5000000.clst t.clst
printf 'garbage' >>t.clst
expect 1 "appended garbage" "$CLOISTER" decrypt -k sym.key t.clst -o out6
nothing_left out6 "appended garbage"
# chunks swapped between two files of the same key and size
"$CLOISTER" encrypt -q -k sym.key p1048576 -o a.clst
head -c 1048576 /dev/urandom >p1048576b
"$CLOISTER" encrypt -q -k sym.key p1048576b -o b.clst
hs=$("$CLOISTER" inspect a.clst | sed -n 's/^header: *\([0-9]*\) bytes/\1/p')
cp a.clst t.clst
dd if=b.clst of=t.clst bs=1 skip=$((hs + 56 + 16400 * 3)) seek=$((hs + 56 + 16400 * 3)) count=16400 conv=notrunc 2>/dev/null
expect 1 "chunk from another file" "$CLOISTER" decrypt -k sym.key t.clst -o out7
nothing_left out7 "chunk from another file"
expect 1 "not a .clst file" "$CLOISTER" decrypt -k sym.key -o out8 p100
expect_err "not a .clst file" "not-a-clst message"
expect 1 "empty input" sh -c "'$CLOISTER' decrypt -k sym.key </dev/null"
expect 1 "inspect of a non-.clst file" "$CLOISTER" inspect p100

# on stdout: exit 1 and the caveat
cp c5000000.clst t.clst
flip_byte t.clst $((size / 2))
rc=0
"$CLOISTER" decrypt -k sym.key <t.clst >partial 2>"$work/.err" || rc=$?
[ $rc -eq 1 ] && pass "stdout decrypt of a tampered file exits 1" || fail "stdout tampered exit $rc"
expect_err "may already have been written to standard output" "stdout caveat printed"
psize=$(stat -c %s partial)
[ "$psize" -lt 5000000 ] && [ $((psize % 16384)) -eq 0 ] && cmp -s partial <(head -c "$psize" p5000000) \
    && pass "only a verified prefix reached stdout ($psize bytes)" || fail "stdout prefix ($psize bytes)"

# ---- key file permissions ----------------------------------------------------------------------
cp sym.key loose.key
chmod 644 loose.key
expect 1 "group/other-readable key file refused" "$CLOISTER" decrypt -k loose.key c100.clst -o out9
expect_err "chmod 600" "permission message says what to do"
expect 1 "group/other-readable key file refused for encrypt" "$CLOISTER" encrypt -k loose.key p100 -o out9.clst
chmod 600 loose.key
expect 0 "after chmod 600 it works" "$CLOISTER" decrypt -k loose.key c100.clst -o out9

# ---- outputs -----------------------------------------------------------------------------------
expect 1 "existing output refused" "$CLOISTER" decrypt -k sym.key c100.clst -o out9
expect_err "use --force" "existing output message"
expect 0 "--force replaces" "$CLOISTER" decrypt -k sym.key --force c100.clst -o out9
cmp -s out9 p100 && pass "replaced content" || fail "replaced content"
expect 0 "output to /dev/null" "$CLOISTER" decrypt -k sym.key c100.clst -o /dev/null

# ---- usage -------------------------------------------------------------------------------------
for c in keygen encrypt decrypt inspect; do
    expect 0 "$c --help" "$CLOISTER" "$c" --help
    grep -q "exit status" "$work/.out" && pass "$c --help explains exit codes" || fail "$c --help exit codes"
    expect 2 "$c unknown option" "$CLOISTER" "$c" --no-such-option
done
"$CLOISTER" decrypt --help | tr '\n' ' ' | grep -q "ALREADY HAVE BEEN WRITTEN" && pass "decrypt --help has the stdout caveat" || fail "stdout caveat in help"
expect 2 "encrypt without a key" "$CLOISTER" encrypt p100
expect 2 "encrypt with two key kinds" "$CLOISTER" encrypt -k sym.key -r ec.pub p100
expect 2 "decrypt without a key" "$CLOISTER" decrypt c100.clst
expect 2 "two inputs" "$CLOISTER" encrypt -k sym.key p100 p1
expect 2 "bad --threads" "$CLOISTER" encrypt -k sym.key --threads 3 p100
expect 2 "inspect without a file" "$CLOISTER" inspect

echo "envelope_cli: $fails failure(s)"
[ "$fails" -eq 0 ]
