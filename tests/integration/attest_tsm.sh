#!/usr/bin/env bash
# `cloister evidence get --tee sev-snp|tdx` (configfs-tsm) against a directory that imitates a
# report entry: inblob and outblob are FIFOs served by a background job playing the kernel (it
# records what cloister writes to inblob, advances `generation`, and writes outblob: a real
# SEV-SNP report from tests/vectors), then the collected evidence is verified offline with the
# report data it was asked for. Negative cases: a concurrent writer (generation advanced twice),
# another provider, no configfs-tsm directory, an entry without attributes (removed again).
set -euo pipefail

CLOISTER=${CLOISTER:?set CLOISTER to the cloister binary}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
vec=${CLST_VECTORS:-$here/../vectors}
. "$here/lib/common.sh"

work=$(mktemp -d)
kpid=""
cleanup() {
    if [ -n "$kpid" ] && kill -0 "$kpid" 2>/dev/null; then
        kill "$kpid" 2>/dev/null || true
        wait "$kpid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

report=$vec/sev-snp/virtee-sev/report_milan.bin
# The report's own REPORT_DATA (offset 0x50, 64 bytes): what a guest would have asked for.
rd=$(od -An -tx1 -v -j 80 -N 64 "$report" | tr -d ' \n')
[ ${#rd} = 128 ] || fail "cannot read the report data of $report"

tsm=$work/tsm
entry=$tsm/e1
# fake_entry PROVIDER GEN BUMP: a report entry whose kernel advances generation by BUMP
fake_entry() {
    rm -rf "$entry"
    mkdir -p "$entry"
    echo "$1" >"$entry/provider"
    echo "$2" >"$entry/generation"
    mkfifo "$entry/inblob" "$entry/outblob"
    (
        head -c 64 <"$entry/inblob" >"$work/inblob.got"
        echo $(($2 + $3)) >"$entry/generation.tmp"
        mv "$entry/generation.tmp" "$entry/generation"
        cat "$report" >"$entry/outblob"
    ) &
    kpid=$!
}

fake_entry sev_guest 7 1
"$CLOISTER" evidence get --tee sev-snp --report-data "$rd" --tsm-dir "$tsm" --tsm-entry e1 \
    -o "$work/ev.bin" 2>"$work/get.err" || fail "evidence get: $(cat "$work/get.err")"
wait "$kpid"
kpid=""
[ "$(od -An -tx1 -v "$work/inblob.got" | tr -d ' \n')" = "$rd" ] || fail "inblob is not the report data"
cmp -s "$work/ev.bin" "$report" || fail "the evidence is not the outblob"
mkdir -p "$work/vcek"
cp "$vec/sev-snp/virtee-sev/vcek_milan.der" "$vec/sev-snp/go-sev-guest/ask_ark_milan.pem" "$work/vcek/"
"$CLOISTER" evidence verify --type sevsnp "$work/ev.bin" --certs "$work/vcek" \
    --time 2024-01-01T00:00:00Z --report-data "$rd" >"$work/verify.out" ||
    fail "the collected evidence does not verify: $(cat "$work/verify.out")"

# Shorter report data is zero-padded to 64 bytes.
fake_entry sev_guest 1 1
"$CLOISTER" evidence get --tee sev-snp --report-data 0102 --tsm-dir "$tsm" --tsm-entry e1 \
    -o "$work/ev2.bin" 2>"$work/get.err" || fail "evidence get (short): $(cat "$work/get.err")"
wait "$kpid"
kpid=""
[ "$(od -An -tx1 -v "$work/inblob.got" | tr -d ' \n')" = "0102$(printf '00%.0s' $(seq 62))" ] ||
    fail "short report data was not zero-padded"

# A concurrent writer: generation moved by 2 while we wrote once.
fake_entry sev_guest 7 2
if "$CLOISTER" evidence get --tee sev-snp --report-data "$rd" --tsm-dir "$tsm" --tsm-entry e1 \
    -o "$work/ev3.bin" 2>"$work/get.err"; then
    fail "a concurrent writer was not detected"
fi
wait "$kpid"
kpid=""
grep -q "another process wrote" "$work/get.err" || fail "conflict message: $(cat "$work/get.err")"
[ ! -e "$work/ev3.bin" ] || fail "evidence was written despite the conflict"

# Another TEE's provider: refused before inblob is written.
rm -rf "$entry"
mkdir -p "$entry"
echo tdx_guest >"$entry/provider"
echo 0 >"$entry/generation"
: >"$entry/inblob"
if "$CLOISTER" evidence get --tee sev-snp --report-data 00 --tsm-dir "$tsm" --tsm-entry e1 \
    -o "$work/ev4.bin" 2>"$work/get.err"; then
    fail "another provider was accepted"
fi
grep -q "tdx_guest" "$work/get.err" || fail "provider message: $(cat "$work/get.err")"
[ ! -s "$entry/inblob" ] || fail "inblob was written for the wrong provider"

# No configfs-tsm at all, and a plain directory (the fresh entry has no attributes).
if "$CLOISTER" evidence get --tee tdx --report-data 00 --tsm-dir "$work/none" -o "$work/x" 2>"$work/get.err"; then
    fail "a missing configfs-tsm directory was accepted"
fi
grep -q "configfs-tsm needs Linux" "$work/get.err" || fail "message: $(cat "$work/get.err")"
mkdir -p "$work/plain"
if "$CLOISTER" evidence get --tee tdx --report-data 00 --tsm-dir "$work/plain" -o "$work/x" 2>"$work/get.err"; then
    fail "a plain directory was accepted"
fi
[ -z "$(ls -A "$work/plain")" ] || fail "the report entry cloister created was not removed"
# Usage errors.
if "$CLOISTER" evidence get --tee tdx --report-data "$(printf 'ab%.0s' $(seq 65))" --tsm-dir "$tsm" \
    -o "$work/x" 2>/dev/null; then
    fail "65 bytes of report data were accepted"
fi
if "$CLOISTER" evidence get --tee sev-snp --report-data 00 --privlevel 4 -o "$work/x" 2>/dev/null; then
    fail "privlevel 4 was accepted"
fi

# --source sev-guest (the /dev/sev-guest ioctls). No SEV-SNP guest here: only the refusals are
# exercised end to end (the ioctl marshalling is unit-tested with an injected ioctl).
rc=0
"$CLOISTER" evidence get --tee sev-snp --source sev-guest --device "$work/no-such-device" \
    --report-data 00 -o "$work/x" 2>"$work/get.err" || rc=$?
[ "$rc" = 1 ] || fail "a missing sev-guest device: exit $rc"
if ! grep -q "no-such-device" "$work/get.err" || ! grep -q "configfs-tsm" "$work/get.err"; then
    fail "missing device message: $(cat "$work/get.err")"
fi
: >"$work/regular-file"
rc=0
"$CLOISTER" evidence get --tee sev-snp --source sev-guest --device "$work/regular-file" \
    --report-data 00 -o "$work/x" 2>"$work/get.err" || rc=$?
[ "$rc" = 1 ] || fail "a regular file as the sev-guest device: exit $rc"
grep -q "not the SEV-SNP guest device" "$work/get.err" || fail "ENOTTY message: $(cat "$work/get.err")"
[ ! -e "$work/x" ] || fail "evidence was written although the ioctl failed"
rc=0
"$CLOISTER" evidence get --tee sev-snp --source sev-guest --no-certs --device "$work/regular-file" \
    --report-data 00 -o "$work/x" 2>"$work/get.err" || rc=$?
[ "$rc" = 1 ] || fail "--no-certs with a regular file: exit $rc"
grep -q "SNP_GET_REPORT:" "$work/get.err" || fail "--no-certs: $(cat "$work/get.err")"
# Usage errors: sev-guest is SEV-SNP only; --device is for sev-guest; an unknown source.
for args in "--tee tdx --source sev-guest" "--tee sev-snp --source configfs-tsm --device /dev/null" \
    "--tee sev-snp --source ioctl" "--tee sev-snp --source sev-guest --tsm-dir $tsm" \
    "--tee sev-snp --source configfs-tsm --no-certs"; do
    rc=0
    # shellcheck disable=SC2086
    "$CLOISTER" evidence get $args --report-data 00 -o "$work/x" 2>/dev/null || rc=$?
    [ "$rc" = 2 ] || fail "evidence get $args: exit $rc, not a usage error"
done
echo "attest_tsm: ok"
