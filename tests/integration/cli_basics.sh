#!/usr/bin/env bash
# The CLI skeleton: --help lists the subcommand table, version names Cloister and OpenSSL,
# unknown commands and options exit 2 with a clear message, and the self-test passes.
set -euo pipefail
: "${CLOISTER:?CLOISTER must point at the cloister binary}"
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

help=$("$CLOISTER" --help)
for cmd in version selftest keygen encrypt decrypt inspect serve sim evidence; do
    grep -qE "^  $cmd " <<<"$help" || fail "--help does not list '$cmd'"
done
grep -q "exit status" <<<"$help" || fail "--help does not explain exit codes"
[ "$("$CLOISTER" help)" = "$help" ] || fail "'cloister help' differs from --help"

ver=$("$CLOISTER" version)
grep -qE '^cloister [0-9]+\.[0-9]+\.[0-9]+$' <<<"$ver" || fail "version line missing: $ver"
grep -q '^OpenSSL 3\.' <<<"$ver" || fail "OpenSSL version missing: $ver"
[ "$("$CLOISTER" --version)" = "$ver" ] || fail "--version differs from version"

expect_usage() { # expect_usage "message regex" args...
    local re=$1; shift
    local out rc=0
    out=$("$CLOISTER" "$@" 2>&1) || rc=$?
    [ "$rc" -eq 2 ] || fail "'cloister $*' exited $rc, expected 2"
    grep -qE -e "$re" <<<"$out" || fail "'cloister $*' said '$out', expected /$re/"
}
expect_usage "unknown command 'frobnicate'" frobnicate
expect_usage "unknown option '--frobnicate'" --frobnicate
expect_usage "--log-level needs one of" --log-level loud version
expect_usage "unexpected argument 'extra'" version extra
rc=0; "$CLOISTER" >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 2 ] || fail "no command exited $rc, expected 2"

"$CLOISTER" --log-level debug version >/dev/null || fail "--log-level debug rejected"
out=$("$CLOISTER" selftest) || fail "selftest failed: $out"
grep -qE '^[0-9]+ checks, 0 failed' <<<"$out" || fail "selftest summary missing: $out"
# The two binaries: cloister runs the data path with only OpenSSL, jansson and cjose loaded and
# hands other commands to cloister-full beside it (same process: exec, same exit status).
full="$(dirname "$CLOISTER")/cloister-full"
[ -x "$full" ] || fail "cloister-full is not beside $CLOISTER"
if command -v ldd >/dev/null; then
    libs=$(ldd "$CLOISTER")
    for heavy in libcurl libmicrohttpd libgnutls libtss2 libsqlite3; do
        if grep -q "$heavy" <<<"$libs"; then
            fail "cloister loads $heavy (it should be linked --as-needed without it)"
        fi
    done
fi
out=$("$CLOISTER" --log-level info policy --help) || fail "a forwarded --help failed"
grep -q "usage: cloister policy" <<<"$out" || fail "forwarded help: $out"
expect_usage "unknown argument|unknown option|usage" key --frobnicate
[ "$("$full" --help)" = "$help" ] || fail "cloister-full --help differs from cloister --help"
rc=0; out=$(CLOISTER_URL=https://127.0.0.1:1 CLOISTER_TOKEN=x "$CLOISTER" encrypt \
    --key vault:k -o /dev/null /dev/null 2>&1) || rc=$?
[ "$rc" -eq 1 ] || fail "encrypt --key vault: with no vault exited $rc, want 1: $out"
grep -qiE "connect|refused|vault" <<<"$out" || fail "encrypt --key vault: said '$out'"

echo "cli_basics: ok"
