#!/usr/bin/env bash
# The CLI skeleton: --help lists the subcommand table, version names Cloister and OpenSSL,
# unknown commands and options exit 2 with a clear message, and the self-test passes.
set -euo pipefail
: "${CLOISTER:?CLOISTER must point at the cloister binary}"
fail() { echo "FAIL: $*" >&2; exit 1; }

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
echo "cli_basics: ok"
