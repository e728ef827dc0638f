# shellcheck shell=bash
# What the integration tests share. Sourced, never run (CMake runs only tests/integration/*.sh as
# tests), by a test that has set -euo pipefail, before anything that can fail (and before
# lib/serve.sh, if the test starts a server):
#     . "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
# It provides:
#
#   fail MESSAGE...
#       Prints "FAIL: MESSAGE" to stderr, then runs the test's on_fail function if the test has
#       defined one (to show a server's log, say: define it once what it shows exists), then
#       exits 1, which runs the test's EXIT trap.
#   need_tools TOOL...
#       Fails with "TOOL is not installed (scripts/deps.sh)" for the first TOOL not on PATH.
#   quietly WHAT COMMAND [ARG...]
#       Runs a set-up command with its stderr kept aside; fails with WHAT and that stderr if the
#       command fails.
#   cleanup_server_and_work
#       An EXIT trap for a test with a work directory $work and at most one server at a time,
#       $server_pid (keep it global; serve_start sets it): stops the server with SIGTERM if it
#       still runs, waits for it, and removes $work. Install it once both are set:
#           work=$(mktemp -d)
#           server_pid=""
#           trap cleanup_server_and_work EXIT
#       A test with more to stop (other servers, clients, swtpm, a mount) or that stops its
#       server another way keeps its own trap.

fail() {
    echo "FAIL: $*" >&2
    if declare -F on_fail >/dev/null; then
        on_fail || true
    fi
    exit 1
}

need_tools() {
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null || fail "$tool is not installed (scripts/deps.sh)"
    done
}

# shellcheck disable=SC2154 # $work and $server_pid are the test's
cleanup_server_and_work() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}

# quietly WHAT COMMAND [ARG...]: runs a set-up COMMAND with its stderr kept aside (openssl's
# progress output, say); if it fails, fails the test with WHAT, its exit status and the last
# lines it printed on stderr. Redirect its stdout as you would the command's.
quietly() {
    local what=$1 err rc=0 said
    shift
    err=$(mktemp)
    "$@" 2>"$err" || rc=$?
    said=$(tail -n 5 "$err")
    rm -f "$err"
    [ "$rc" -eq 0 ] || fail "$what failed (exit $rc): $said"
}
