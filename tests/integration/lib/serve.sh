# shellcheck shell=bash
# Starting `cloister serve` for the integration tests. Sourced, never run (CMake runs only
# tests/integration/*.sh as tests), by a test that has set -euo pipefail and $CLOISTER:
#     . "$(dirname "${BASH_SOURCE[0]}")/lib/serve.sh"
# It provides:
#
#   serve_start [--wait SECONDS] [--append-out] [--append-err] OUT ERR [SERVE_ARGS...]
#       Runs "$CLOISTER" serve SERVE_ARGS... in the background (give it --data and --listen
#       127.0.0.1:0 yourself) with stdout to OUT (truncated, or appended with --append-out) and
#       stderr to ERR (truncated, or appended with --append-err), then waits up to SECONDS
#       (default 30) for its "listening on https://127.0.0.1:PORT" line. With --append-out,
#       only what this start writes to OUT counts (OUT's size is noted before the start), so
#       the line of an earlier start in OUT is never taken for this one's (stop the earlier
#       server first: it would still append to OUT). Sets $server_pid as soon as the server
#       runs (for the caller's EXIT trap: keep $server_pid global) and $url
#       (https://127.0.0.1:PORT); a caller may declare `local url`.
#       If the server exits first, or does not print the line in time, it prints
#       "FAIL: ..." saying which and after how long, then the last 30 lines of ERR, to stderr;
#       stops the server if it still runs (and empties $server_pid); and exits 1, which runs
#       the caller's EXIT trap.

serve_start() {
    local _ss_wait=30 _ss_append=0 _ss_append_out=0 _ss_off=0
    while [ $# -gt 0 ]; do
        case $1 in
        --wait)
            if [ $# -lt 2 ] || ! [[ $2 =~ ^[1-9][0-9]*$ ]]; then
                _serve_fail "" "serve_start: --wait takes a whole number of seconds (got '${2-}')"
            fi
            _ss_wait=$2
            shift 2
            ;;
        --append-out)
            _ss_append_out=1
            shift
            ;;
        --append-err)
            _ss_append=1
            shift
            ;;
        *) break ;;
        esac
    done
    [ $# -ge 2 ] || _serve_fail "" "usage: serve_start [--wait SECONDS] [--append-out] [--append-err] OUT ERR [SERVE_ARGS...]"
    local _ss_out=$1 _ss_err=$2
    shift 2
    : "${CLOISTER:?set CLOISTER to the cloister binary}"

    # OUT exists before the first look at it, whenever the server gets to open it; when it is
    # appended to, only the bytes after _ss_off are this start's.
    if [ "$_ss_append_out" = 1 ]; then
        : >>"$_ss_out"
        _ss_off=$(wc -c <"$_ss_out")
        _ss_off=$((_ss_off))
    else
        : >"$_ss_out"
    fi
    if [ "$_ss_append" = 1 ]; then
        "$CLOISTER" serve "$@" >>"$_ss_out" 2>>"$_ss_err" &
    else
        "$CLOISTER" serve "$@" >>"$_ss_out" 2>"$_ss_err" &
    fi
    server_pid=$!
    url=""
    local _ss_start=$SECONDS _ss_rc
    while ((SECONDS - _ss_start <= _ss_wait)); do # at least _ss_wait s: SECONDS counts whole seconds
        url=$(_serve_url "$_ss_out" "$_ss_off")
        [ -n "$url" ] && return 0
        if ! kill -0 "$server_pid" 2>/dev/null; then
            _ss_rc=0
            wait "$server_pid" 2>/dev/null || _ss_rc=$?
            server_pid=""
            if [ -n "$(_serve_url "$_ss_out" "$_ss_off")" ]; then
                _serve_fail "$_ss_err" "cloister serve exited with status $_ss_rc right after its 'listening on' line (about $((SECONDS - _ss_start)) s after the start)"
            fi
            _serve_fail "$_ss_err" "cloister serve exited with status $_ss_rc after about $((SECONDS - _ss_start)) s, before printing its 'listening on https://127.0.0.1:PORT' line"
        fi
        sleep 0.1
    done
    url=$(_serve_url "$_ss_out" "$_ss_off")
    [ -n "$url" ] && return 0
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
    _serve_fail "$_ss_err" "cloister serve did not print its 'listening on https://127.0.0.1:PORT' line within $_ss_wait s (killed it)"
}

# _serve_url OUT [OFFSET]: prints the URL of the first "listening on" line of OUT after its
# first OFFSET bytes (default 0), or nothing. awk reads to the end, so that tail never gets
# SIGPIPE (which pipefail would turn into a failure).
_serve_url() {
    tail -c "+$((${2:-0} + 1))" "$1" |
        awk '!found && /^listening on https:\/\/127\.0\.0\.1:[0-9]+$/ {
            print substr($0, length("listening on ") + 1)
            found = 1
        }'
}

# _serve_fail ERR MESSAGE: FAIL: MESSAGE and the last 30 lines of ERR (if any) on stderr; exit 1.
_serve_fail() {
    echo "FAIL: $2" >&2
    if [ -n "$1" ] && [ -f "$1" ]; then
        echo "---- cloister serve stderr ($1, last 30 lines) ----" >&2
        tail -n 30 "$1" >&2 || true
    fi
    exit 1
}
