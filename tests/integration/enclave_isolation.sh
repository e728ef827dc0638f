#!/usr/bin/env bash
# Isolation of sim enclaves from other processes of the same (unprivileged) user, and the sandbox,
# with the real binary. Everything runs as the user nobody (runuser -u nobody, which drops every
# uid; root would bypass the protections under test):
#   - a control process of nobody CAN be ptrace-attached and its /proc/PID/mem opened by another
#     process of nobody (so the refusals below are the enclave's doing, not the test's);
#   - an enclave of nobody can NOT: PTRACE_ATTACH fails with EPERM, /proc/PID/mem, maps and
#     environ fail with EACCES;
#   - a --debug enclave can be attached (the same mechanism, deliberately off);
#   - an enclave that calls open() is killed and the host says which call and entry point;
#   - memory cannot be locked under nobody's 8 MiB RLIMIT_MEMLOCK and the host says so (sanitizer
#     builds never lock, and say that instead).
set -euo pipefail

CLOISTER=${CLOISTER:?set CLOISTER to the cloister binary}
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
BUILD=${CLST_BUILD_DIR:?set CLST_BUILD_DIR to the build directory}
if [ "$(id -u)" -ne 0 ]; then
    echo "enclave_isolation: SKIPPED: switching to the user nobody needs root (CI runs as root)"
    exit 0
fi
for f in "$BUILD/misbehave-enclave.so" "$BUILD/cloister-enclave-loader"; do
    [ -e "$f" ] || fail "$f is not built"
done
"$CLOISTER" enclave --help >/dev/null 2>&1 ||
    fail "$CLOISTER has no 'enclave' command (src/cli/main.c needs the cmd_enclave and cmd_run entries)"
need_tools runuser perl mkfifo pgrep openssl
case "$(uname -m)" in
x86_64) SYS_ptrace=101 ;;
aarch64) SYS_ptrace=117 ;;
*) fail "unknown ptrace syscall number on $(uname -m)" ;;
esac

work=$(mktemp -d)
pids=()
# kill_tree PID: kills PID and everything under it (runuser -> cloister -> enclave), children
# first, so that a test that fails before it has learned the inner pids leaves nothing running.
kill_tree() {
    local c
    for c in $(pgrep -P "$1" 2>/dev/null); do
        kill_tree "$c"
    done
    kill -9 "$1" 2>/dev/null || true
}
cleanup() {
    for p in "${pids[@]}"; do
        kill_tree "$p"
    done
    rm -rf "$work"
}
trap cleanup EXIT
chmod 755 "$work"
cd "$work"

as_nobody() {
    runuser -u nobody -- "$@"
}

# Copies of the binaries where nobody can reach them (the build tree may be under /root).
mkdir bin
cp "$CLOISTER" bin/cloister
# `cloister` hands most commands (run among them) to cloister-full beside it (src/cli/main.c).
if [ -e "$(dirname "$CLOISTER")/cloister-full" ]; then
    cp "$(dirname "$CLOISTER")/cloister-full" bin/
fi
cp "$BUILD/cloister-enclave-loader" bin/
chmod 755 bin bin/*
quietly "openssl genpkey (signer.pem)" \
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out signer.pem
bin/cloister enclave sign "$BUILD/misbehave-enclave.so" --key signer.pem --product-id 1 --svn 1 \
    -o bad.so >/dev/null
bin/cloister enclave sign "$BUILD/misbehave-enclave.so" --key signer.pem --product-id 1 --svn 1 \
    --debug -o debug.so >/dev/null
chmod 644 bad.so debug.so

# ptrace_attach PID: prints OK (and detaches) or ERR <errno text>.
ptrace_attach() {
    as_nobody perl -e '
        my ($nr, $pid) = map { $_ + 0 } @ARGV;
        if (syscall($nr, 16, $pid, 0, 0) == -1) { print "ERR $!\n"; exit 0; }
        waitpid($pid, 0);
        syscall($nr, 17, $pid, 0, 0);
        print "OK\n";' "$SYS_ptrace" "$1"
}
# open_proc PID FILE: opens and reads /proc/PID/FILE; prints OK or ERR <errno text>.
open_proc() {
    as_nobody perl -e '
        open(my $f, "<", "/proc/$ARGV[0]/$ARGV[1]") or do { print "ERR $!\n"; exit 0 };
        my $n = sysread($f, my $buf, 64);
        if (!defined $n) { print "ERR $!\n"; exit 0 }
        print "OK\n";' "$1" "$2"
}

# wait_for_enclave RUNNER: waits until the enclave started by `runuser ... cloister run` (the
# child of the child of RUNNER) is fully set up (its final seccomp filter, the third after the
# self-signal and first ones, is in place, which comes after every other step) and prints the pids
# of the host and the enclave.
wait_for_enclave() {
    local i host="" pid=""
    for i in $(seq 1 200); do
        [ -n "$host" ] || host=$(pgrep -P "$1" -x 'cloister(-full)?' || true)
        [ -z "$host" ] || pid=$(pgrep -P "$host" -x clst-enclave || true)
        if [ -n "$pid" ] && grep -q "^Seccomp_filters:[[:space:]]*3$" /proc/"$pid"/status 2>/dev/null; then
            echo "$host $pid"
            return 0
        fi
        sleep 0.05
    done
    return 1
}

# ---- control: an ordinary process of nobody ---------------------------------------------------
runuser -u nobody -- sleep 60 &
runner=$!
pids+=("$runner")
control=""
for i in $(seq 1 100); do
    control=$(pgrep -P "$runner" -x sleep || true)
    [ -n "$control" ] && break
    sleep 0.05
done
[ -n "$control" ] || fail "the control process did not start"
pids+=("$control")
[ "$(ptrace_attach "$control")" = "OK" ] || fail "control: nobody cannot ptrace nobody here; the test cannot judge"
[ "$(open_proc "$control" maps)" = "OK" ] || fail "control: nobody cannot read /proc/PID/maps of nobody"
as_nobody perl -e 'open(my $f, "<", "/proc/$ARGV[0]/mem") or die "mem: $!"' "$control" ||
    fail "control: nobody cannot open /proc/PID/mem of nobody"
kill -9 "$control" 2>/dev/null || true
wait "$runner" 2>/dev/null || true

# ---- an enclave of nobody, waiting inside a host service ----------------------------------------
mkfifo ctl
chmod 666 ctl
runuser -u nobody -- bin/cloister run bad.so --in ctl=ctl -- wait >run.out 2>run.err &
runner=$!
pids+=("$runner")
read -r host enclave < <(wait_for_enclave "$runner") || fail "no enclave process ($(cat run.err))"
pids+=("$host" "$enclave")
# Non-dumpable: files under /proc/PID belong to root, though it runs as nobody.
owner=$(stat -c %U /proc/"$enclave"/mem)
[ "$owner" = "root" ] || fail "/proc/PID/mem of the enclave belongs to $owner, not root"
[ "$(ps -o user= -p "$enclave")" = "nobody" ] || fail "the enclave does not run as nobody"
r=$(ptrace_attach "$enclave")
case "$r" in "ERR Operation not permitted") ;; *) fail "ptrace of the enclave: $r" ;; esac
for f in mem maps environ; do
    r=$(open_proc "$enclave" "$f")
    case "$r" in "ERR Permission denied") ;; *) fail "/proc/PID/$f of the enclave: $r" ;; esac
done
# Let it finish: the enclave reads "ctl" through the host and prints to stdout.
echo go >ctl
wait "$runner" || fail "the waiting enclave failed: $(cat run.err)"
grep -q "secret-marker-0x5ec7e7" run.out || fail "the enclave's output is missing: $(cat run.out)"
# nobody's RLIMIT_MEMLOCK (8 MiB) is too small to lock everything; sanitizer builds never lock.
grep -Eq "enclave memory is not locked \((RLIMIT_MEMLOCK is [0-9]+ KiB|not attempted in this build \(sanitizers\))" run.err ||
    fail "the host did not say that memory is not locked: $(cat run.err)"

# ---- a debug enclave is attachable: the protection above is PR_SET_DUMPABLE, deliberately off here
rm -f ctl
mkfifo ctl
chmod 666 ctl
runuser -u nobody -- bin/cloister run debug.so --in ctl=ctl -- wait >run.out 2>run.err &
runner=$!
pids+=("$runner")
read -r host enclave < <(wait_for_enclave "$runner") || fail "no debug enclave ($(cat run.err))"
pids+=("$host" "$enclave")
[ "$(ptrace_attach "$enclave")" = "OK" ] || fail "a debug enclave should be attachable"
echo go >ctl
wait "$runner" || fail "the debug enclave failed: $(cat run.err)"
grep -q "DEBUG enclave" run.err || fail "the host did not warn about a debug enclave"

# ---- the sandbox, as nobody -------------------------------------------------------------------
status=0
as_nobody bin/cloister run bad.so -- open >out.txt 2>err.txt || status=$?
[ "$status" -eq 1 ] || fail "open(): exit $status ($(cat err.txt))"
grep -q "entry point 'clst.main': the enclave died: killed by the sandbox: system call openat" err.txt ||
    fail "open(): $(cat err.txt)"
echo "enclave_isolation: all checks passed"
