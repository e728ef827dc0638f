#!/usr/bin/env bash
# bench/vault: vault operations over HTTPS with wrk, beside nginx serving a fixed 200 over TLS on
# the same machine in the same run, and `openssl speed` for the RSA reference and the P-256
# signing floor (issue #9 item 5).
#
#   bench/vault/run.sh [-d SECONDS] [-c CONNECTIONS] [-t WRK_THREADS] [--no-audit-too]
#
# Environment: CLOISTER (the cloister binary; default build-rel/cloister, then build/cloister).
# It starts `cloister serve` (audit on when the binary has the audit log) in a temporary data
# directory on a free loopback port, creates an AES-256 (oct), an EC P-256 and an RSA-2048 key,
# and runs wrk (keep-alive connections over TLS; wrk does not verify certificates) for:
# AES-256-GCM encrypt and decrypt of 128 bytes, ES256 sign, RS256 and PS256 sign with RSA-2048,
# and durable key creation (a new oct key per request). nginx (Debian's nginx-light) serves
# `return 200 "ok"` over TLS with a self-signed EC P-256 certificate, 2 workers, measured before
# and after the vault runs (the table uses the mean). --no-audit-too repeats encrypt, the ES256
# and RS256 signatures and key creation with `--no-audit` (when the binary has it) to show what
# the audit log costs.
#
# Prints a table with the targets and, per row, the server's own CPU time per request (from
# /proc/PID/stat around each wrk run: comparable across runs even on a loaded machine); exit
# status 0 even when a target is missed (a benchmark, not a test). A second table shows, per run,
# the machine's idle share and the audit log's records per fdatasync and mean sync time (from the
# server's /metrics), which say whether a run was bound by CPU or by waiting for the disk.
# BENCH_KEEP=DIR keeps the raw wrk and openssl outputs. Needs wrk, curl, jq, openssl, python3, basenc,
# pgrep, /usr/sbin/nginx.
set -euo pipefail

DURATION=10
CONNS=16
THREADS=2
NO_AUDIT_TOO=0
while [ $# -gt 0 ]; do
    case $1 in
    -d) DURATION=$2; shift 2 ;;
    -c) CONNS=$2; shift 2 ;;
    -t) THREADS=$2; shift 2 ;;
    --no-audit-too) NO_AUDIT_TOO=1; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
if [ -z "${CLOISTER:-}" ]; then
    for c in "$root/build-rel/cloister" "$root/build/cloister"; do
        [ -x "$c" ] && { CLOISTER=$c; break; }
    done
fi
[ -n "${CLOISTER:-}" ] && [ -x "$CLOISTER" ] || { echo "set CLOISTER to the cloister binary" >&2; exit 2; }
NGINX=${NGINX:-/usr/sbin/nginx}
for tool in wrk curl jq openssl python3 basenc pgrep "$NGINX"; do
    command -v "$tool" >/dev/null || { echo "$tool is missing (scripts/deps.sh)" >&2; exit 2; }
done

tmp=$(mktemp -d /tmp/bench-vault.XXXXXX)
serve_pid=""
nginx_pid=""
cleanup() {
    for p in "$serve_pid" "$nginx_pid"; do
        if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then
            kill -TERM "$p" 2>/dev/null || true
            wait "$p" 2>/dev/null || true
        fi
    done
    rm -rf "$tmp"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# ---- cloister serve --------------------------------------------------------------------------
audit_state="not available in this binary"
serve_help=$("$CLOISTER" serve --help 2>/dev/null || true)
if grep -q -- '--no-audit' <<<"$serve_help"; then
    audit_state="on"
fi

start_serve() { # start_serve NAME [args…]: sets url, token, ca
    local name=$1
    shift
    "$CLOISTER" serve --data "$tmp/data-$name" --listen 127.0.0.1:0 "$@" >"$tmp/serve-$name.out" 2>"$tmp/serve-$name.err" &
    serve_pid=$!
    url=""
    for _ in $(seq 1 300); do
        url=$(sed -n 's/^listening on \(https:\/\/127\.0\.0\.1:[0-9][0-9]*\)$/\1/p' "$tmp/serve-$name.out")
        [ -n "$url" ] && break
        kill -0 "$serve_pid" 2>/dev/null || { cat "$tmp/serve-$name.err" >&2; echo "serve exited" >&2; exit 1; }
        sleep 0.1
    done
    [ -n "$url" ] || { echo "serve did not start" >&2; exit 1; }
    token=$(cat "$tmp/data-$name/admin-token")
    export BENCH_TOKEN=$token
    ca=$tmp/data-$name/ca.pem
}
stop_serve() {
    kill -TERM "$serve_pid" 2>/dev/null || true
    wait "$serve_pid" 2>/dev/null || true
    serve_pid=""
}
api() { # api PATH BODY -> response on stdout; fails on non-200
    local out code
    out=$(curl -sS --cacert "$ca" -w '\n%{http_code}' -X POST -H "Authorization: Bearer $token" \
        -H 'Content-Type: application/json' --data-binary "$2" "$url$1?api-version=7.5")
    code=${out##*$'\n'}
    [ "$code" = 200 ] || { echo "POST $1 answered $code: ${out%$'\n'*}" >&2; exit 1; }
    printf '%s' "${out%$'\n'*}"
}
b64u() { basenc --base64url -w0 | tr -d '='; }

# ---- nginx -------------------------------------------------------------------------------------
start_nginx() {
    nport=$(free_port)
    mkdir -p "$tmp/nginx/logs" "$tmp/nginx/body"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
        -keyout "$tmp/nginx/key.pem" -out "$tmp/nginx/cert.pem" 2>/dev/null
    cat >"$tmp/nginx/nginx.conf" <<EOF
worker_processes 2;
daemon off;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/logs/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $tmp/nginx/body;
    keepalive_requests 100000000;
    keepalive_timeout 60s;
    server {
        listen 127.0.0.1:$nport ssl;
        ssl_certificate $tmp/nginx/cert.pem;
        ssl_certificate_key $tmp/nginx/key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
        location / { return 200 "ok"; }
    }
}
EOF
    "$NGINX" -p "$tmp/nginx" -e "$tmp/nginx/logs/error.log" -c "$tmp/nginx/nginx.conf" &
    nginx_pid=$!
    for _ in $(seq 1 100); do
        curl -sk -o /dev/null "https://127.0.0.1:$nport/" 2>/dev/null && return 0
        sleep 0.05
    done
    cat "$tmp/nginx/logs/error.log" >&2
    echo "nginx did not start" >&2
    exit 1
}

# ---- wrk and its output ------------------------------------------------------------------------
# cpu_ticks: user + system clock ticks of the server under test ($serve_pid, or nginx's master
# and workers), so that the CPU cost per request can be shown whatever the machine's load.
cpu_ticks() {
    local pids p t=0
    if [ -n "$serve_pid" ]; then
        pids=$serve_pid
    else
        pids="$nginx_pid $(pgrep -P "$nginx_pid" | tr '\n' ' ')"
    fi
    for p in $pids; do
        [ -r "/proc/$p/stat" ] || continue
        t=$((t + $(awk '{ print $14 + $15 }' "/proc/$p/stat")))
    done
    echo "$t"
}
# run_wrk NAME SCRIPT URL: runs wrk, keeps its output in $tmp/wrk-NAME.txt and the server's CPU
# ticks used during the run in $tmp/cpu-NAME.txt.
run_wrk() {
    local name=$1 script=$2 target=$3 t0 t1
    local args=(-t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency)
    [ -n "$script" ] && args+=(-s "$script")
    echo "\$ wrk ${args[*]} $target" >>"$tmp/commands.txt"
    local m0 m1 s0 s1
    m0=$(audit_metrics)
    s0=$(machine_ticks)
    t0=$(cpu_ticks)
    wrk "${args[@]}" "$target" >"$tmp/wrk-$name.txt" 2>&1 || true
    t1=$(cpu_ticks)
    s1=$(machine_ticks)
    m1=$(audit_metrics)
    echo $((t1 - t0)) >"$tmp/cpu-$name.txt"
    # idle share of the whole machine (idle + iowait ticks over all ticks, every CPU)
    awk -v a="$s0" -v b="$s1" 'BEGIN { split(a, x, " "); split(b, y, " ");
        t = y[1] - x[1]; i = y[2] - x[2]; printf "%.0f", (t > 0 ? 100 * i / t : 0) }' >"$tmp/idle-$name.txt"
    # audit records, syncs and sync seconds during the run (empty without audit)
    if [ -n "$m0" ] && [ -n "$m1" ]; then
        awk -v a="$m0" -v b="$m1" 'BEGIN { split(a, x, " "); split(b, y, " ");
            r = y[1] - x[1]; n = y[2] - x[2]; s = y[3] - x[3];
            if (n > 0) printf "%.1f %.2f %d", r / n, 1000 * s / n, n }' >"$tmp/audit-$name.txt"
    fi
}
# machine_ticks: "ALL IDLE" clock ticks of every CPU (idle counts iowait too), from /proc/stat.
machine_ticks() {
    awk '$1 == "cpu" { t = 0; for (i = 2; i <= NF; i++) t += $i; print t, $5 + $6; exit }' /proc/stat
}
# audit_metrics: "RECORDS SYNCS SYNC_SECONDS" from the server's /metrics (empty for nginx or
# when the server has no audit log).
audit_metrics() {
    [ -n "$serve_pid" ] || return 0
    curl -sS --cacert "$ca" -H "Authorization: Bearer $token" "$url/metrics" 2>/dev/null | awk '
        $1 == "cloister_audit_records_total" { r = $2 }
        $1 == "cloister_audit_syncs_total" { n = $2 }
        $1 == "cloister_audit_sync_seconds_sum" { s = $2 }
        END { if (n != "") print r, n, s }'
}
# cpu_per_req NAME: server CPU microseconds per completed request.
cpu_per_req() {
    awk -v t="$(cat "$tmp/cpu-$1.txt")" -v hz="$(getconf CLK_TCK)" '
        /requests in/ { n = $1 } END { if (n > 0) printf "%.0f", 1e6 * t / hz / n; else print "?" }' "$tmp/wrk-$1.txt"
}
# rate NAME, pct NAME P (in ms), non2xx NAME
rate() { awk '/^Requests\/sec:/ { print $2 }' "$tmp/wrk-$1.txt"; }
pct() {
    awk -v p="$2%" '$1 == p {
        v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v)
        if (u == "us") v /= 1000; else if (u == "s") v *= 1000; else if (u == "m") v *= 60000
        printf "%.2f", v }' "$tmp/wrk-$1.txt"
}
errors() {
    local n s
    n=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' "$tmp/wrk-$1.txt")
    s=$(grep -o 'Socket errors:.*' "$tmp/wrk-$1.txt" || true)
    echo "${n:-0}${s:+ ($s)}"
}

load_before=$(cat /proc/loadavg)
{
    echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
    echo "loadavg before: $load_before"
    echo "cloister: $CLOISTER ($("$CLOISTER" version 2>/dev/null | head -1))"
    echo "nginx: $("$NGINX" -v 2>&1)"
    echo "wrk: -t$THREADS -c$CONNS -d${DURATION}s --latency, keep-alive over TLS"
    echo "audit log: $audit_state"
} | tee "$tmp/header.txt"

# nginx first (the reference), then the vault, then nginx again.
start_nginx
serve_pid=""
run_wrk nginx1 "" "https://127.0.0.1:$nport/"

start_serve main
# create_keys: the three benchmark keys in the running server; sets aes_path, ec_path, rsa_path
# (/keys/NAME/VERSION).
create_keys() {
    local kid
    kid=$(api /keys/bench-aes/create '{"kty":"oct","key_size":256}' | jq -r .key.kid)
    aes_path=/keys/bench-aes/${kid##*/}
    kid=$(api /keys/bench-ec/create '{"kty":"EC","crv":"P-256"}' | jq -r .key.kid)
    ec_path=/keys/bench-ec/${kid##*/}
    kid=$(api /keys/bench-rsa/create '{"kty":"RSA","key_size":2048}' | jq -r .key.kid)
    rsa_path=/keys/bench-rsa/${kid##*/}
}
create_keys
plain=$(openssl rand 128 | b64u)
digest=$(openssl rand 32 | b64u)
enc_body="{\"alg\":\"A256GCM\",\"value\":\"$plain\"}"
ct=$(api "$aes_path/encrypt" "$enc_body")
dec_body=$(jq -c '{alg: "A256GCM", value: .value, iv: .iv, tag: .tag}' <<<"$ct")
[ "$(api "$aes_path/decrypt" "$dec_body" | jq -r .value)" = "$plain" ] || { echo "decrypt check failed" >&2; exit 1; }

bench_post() { # bench_post NAME PATH BODY
    BENCH_BODY=$3 run_wrk "$1" "$here/post.lua" "$url$2?api-version=7.5"
}
bench_post encrypt "$aes_path/encrypt" "$enc_body"
bench_post decrypt "$aes_path/decrypt" "$dec_body"
sign_body() { echo "{\"alg\":\"$1\",\"value\":\"$digest\"}"; }
bench_post es256 "$ec_path/sign" "$(sign_body ES256)"
bench_post rs256 "$rsa_path/sign" "$(sign_body RS256)"
bench_post ps256 "$rsa_path/sign" "$(sign_body PS256)"
BENCH_PREFIX="b$(date +%s)" BENCH_CREATE_BODY='{"kty":"oct","key_size":256}' \
    run_wrk create "$here/create.lua" "$url/keys"
created=$(curl -sS --cacert "$ca" -H "Authorization: Bearer $token" "$url/keys?api-version=7.5&maxresults=25" | jq '.value | length')
stop_serve

if [ "$NO_AUDIT_TOO" = 1 ] && [ "$audit_state" = on ]; then
    start_serve noaudit --no-audit
    create_keys
    bench_post encrypt-noaudit "$aes_path/encrypt" "$enc_body"
    bench_post es256-noaudit "$ec_path/sign" "$(sign_body ES256)"
    bench_post rs256-noaudit "$rsa_path/sign" "$(sign_body RS256)"
    BENCH_PREFIX="n$(date +%s)" BENCH_CREATE_BODY='{"kty":"oct","key_size":256}' \
        run_wrk create-noaudit "$here/create.lua" "$url/keys"
    stop_serve
fi

run_wrk nginx2 "" "https://127.0.0.1:$nport/"
kill -TERM "$nginx_pid" 2>/dev/null || true
wait "$nginx_pid" 2>/dev/null || true
nginx_pid=""

echo "\$ openssl speed -multi 2 -seconds 5 rsa2048" >>"$tmp/commands.txt"
openssl speed -multi 2 -seconds 5 rsa2048 >"$tmp/speed.txt" 2>/dev/null || true
rsa_ref=$(awk '/^rsa 2048 bits/ { print $6 }' "$tmp/speed.txt" | tail -1)
# P-256 signing by openssl alone: not a target, the floor an ES256 row stands on
echo "\$ openssl speed -multi 2 -seconds 5 ecdsap256" >>"$tmp/commands.txt"
openssl speed -multi 2 -seconds 5 ecdsap256 >"$tmp/speed-ec.txt" 2>/dev/null || true
ec_ref=$(awk '$1 == "256" && $3 == "ecdsa" { print $7 }' "$tmp/speed-ec.txt" | tail -1)
load_after=$(cat /proc/loadavg)

# ---- the table -----------------------------------------------------------------------------------
n1=$(rate nginx1)
n2=$(rate nginx2)
nginx_rate=$(awk -v a="$n1" -v b="$n2" 'BEGIN { printf "%.0f", (a + b) / 2 }')
echo
echo "nginx fixed 200 over TLS: $n1/s before, $n2/s after, mean $nginx_rate/s (p50 $(pct nginx1 50)/$(pct nginx2 50) ms, p99 $(pct nginx1 99)/$(pct nginx2 99) ms; nginx CPU $(cpu_per_req nginx1)/$(cpu_per_req nginx2) us/request)"
echo "openssl speed -multi 2 rsa2048: $rsa_ref sign/s"
echo "openssl speed -multi 2 ecdsap256: ${ec_ref:-?} sign/s (no target: what P-256 signing alone reaches on both cores)"
echo
printf '%-30s %9s %8s %8s %9s %7s %8s  %-34s %s\n' operation "rate/s" "p50 ms" "p99 ms" "nginx/s" "ratio" "CPU us" target result
row() { # row LABEL NAME TARGET-TEXT CHECK-EXPR(rate, p99, nginx, ref)
    local r p50 p99 ratio verdict e
    r=$(rate "$2")
    p50=$(pct "$2" 50)
    p99=$(pct "$2" 99)
    e=$(errors "$2")
    ratio=$(awk -v r="${r:-0}" -v n="$nginx_rate" 'BEGIN { x = 0; if (n > 0) x = 100 * r / n; printf "%.1f%%", x }')
    if awk -v r="${r:-0}" -v p="${p99:-1e9}" -v n="$nginx_rate" -v ref="${rsa_ref:-0}" "BEGIN { exit !($4) }"; then
        verdict=met
    else
        verdict=MISSED
    fi
    [ "$e" != 0 ] && verdict="$verdict, non-2xx: $e"
    printf '%-30s %9s %8s %8s %9s %7s %8s  %-34s %s\n' "$1" "${r:-?}" "${p50:-?}" "${p99:-?}" "$nginx_rate" "$ratio" "$(cpu_per_req "$2")" "$3" "$verdict"
}
row "AES-256-GCM encrypt 128 B" encrypt ">= 20% nginx, p99 <= 2 ms" 'r >= 0.2 * n && p <= 2'
row "AES-256-GCM decrypt 128 B" decrypt ">= 20% nginx, p99 <= 2 ms" 'r >= 0.2 * n && p <= 2'
row "ES256 sign (P-256)" es256 ">= 15000/s" 'r >= 15000'
row "RS256 sign (RSA-2048)" rs256 ">= 60% openssl ($rsa_ref/s)" 'r >= 0.6 * ref'
row "PS256 sign (RSA-2048)" ps256 ">= 60% openssl ($rsa_ref/s)" 'r >= 0.6 * ref'
row "key create (oct-256, durable)" create ">= 1000/s" 'r >= 1000'
if [ -f "$tmp/wrk-encrypt-noaudit.txt" ]; then
    row "encrypt 128 B, --no-audit" encrypt-noaudit "(comparison: audit off)" 'r >= 0.2 * n && p <= 2'
    row "ES256 sign, --no-audit" es256-noaudit "(comparison: audit off)" 'r >= 15000'
    row "RS256 sign, --no-audit" rs256-noaudit "(comparison: audit off)" 'r >= 0.6 * ref'
    row "key create, --no-audit" create-noaudit "(comparison: audit off)" 'r >= 1000'
fi
echo "(CPU us = the server's user+system CPU time per completed request during the run: a"
echo " cost that depends far less on the machine's load than rates do; on 2 cores, 2e6 / CPU us is"
echo " the rate an idle machine could reach if the server were CPU-bound and wrk cost nothing)"
echo
printf '%-30s %7s %14s %12s %8s\n' "during the run" "idle %" "records/sync" "sync ms" syncs
for n in nginx1 encrypt decrypt es256 rs256 ps256 create encrypt-noaudit es256-noaudit rs256-noaudit create-noaudit nginx2; do
    [ -f "$tmp/idle-$n.txt" ] || continue
    per="" ms="" cnt=""
    [ -s "$tmp/audit-$n.txt" ] && read -r per ms cnt <"$tmp/audit-$n.txt" || true
    printf '%-30s %7s %14s %12s %8s\n' "$n" "$(cat "$tmp/idle-$n.txt")" "${per:--}" "${ms:--}" "${cnt:--}"
done
echo "(idle % = the whole machine's idle and I/O-wait share during the run: wrk, the server and"
echo " everything else together; records/sync and sync ms = the audit log's group commit from the"
echo " server's /metrics: how many records one fdatasync made durable, and its mean wall time)"
echo
echo "loadavg after: $load_after"
echo "(keys listed after the create run, first page: $created)"
echo
echo "commands:"
sed 's/^/  /' "$tmp/commands.txt"
if [ -n "${BENCH_KEEP:-}" ]; then
    mkdir -p "$BENCH_KEEP"
    cp "$tmp"/wrk-*.txt "$tmp/speed.txt" "$tmp/speed-ec.txt" "$BENCH_KEEP"/
    echo "raw wrk and openssl outputs kept in $BENCH_KEEP"
fi
