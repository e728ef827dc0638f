#!/usr/bin/env bash
# GET /metrics end to end against a fresh `cloister serve`: the exposition is checked by a strict
# awk parser of the Prometheus text format 0.0.4 (HELP/TYPE once per contiguous family, sample
# syntax, label escapes, histogram buckets cumulative with le increasing and +Inf = _count), and
# real requests made with curl move the counters by exactly the right amounts: key create,
# encrypt, a 404, a 401, an unmatched path, an attestation request. Then the access modes:
# `--metrics auth` (401 without a bearer token, 200 with one) and `--metrics off` (404).
#
# Needs curl and jq. Fails, never skips, when something is missing.
set -euo pipefail

: "${CLOISTER:?CLOISTER must point at the cloister binary}"
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/serve.sh"
API=7.5

on_fail() { # after the FAIL line
    if [ -f "${work:-/nonexistent}/serve.err" ]; then
        echo "---- cloister serve stderr (last 30 lines) ----" >&2
        tail -n 30 "$work/serve.err" >&2 || true
    fi
}
need_tools curl jq awk

work=$(mktemp -d)
server_pid=""
stop_server() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    server_pid=""
}
cleanup() {
    stop_server
    rm -rf "$work"
}
trap cleanup EXIT

data=$work/data
# start_server [extra args…]: sets $url.
start_server() {
    serve_start "$work/serve.out" "$work/serve.err" --data "$data" --listen 127.0.0.1:0 "$@"
}

checks=0
ok() {
    checks=$((checks + 1))
    echo "ok $checks - $*"
}

# ---- the strict exposition checker -------------------------------------------------------------
# check_exposition FILE: exit status 0 when FILE is valid text format 0.0.4, else a message.
check_exposition() {
    awk '
    function bad(msg) { printf "line %d: %s: %s\n", NR, msg, $0 > "/dev/stderr"; failed = 1; exit 1 }
    function endhist() {
        if (inbuckets && !infseen) bad("histogram series without an le=\"+Inf\" bucket")
    }
    BEGIN { name = "[a-zA-Z_:][a-zA-Z0-9_:]*"; lname = "[a-zA-Z_][a-zA-Z0-9_]*"
            lval = "\"([^\"\\\\]|\\\\[\\\\\"n])*\""
            label = lname "=" lval
            labels = "\\{(" label "(," label ")*)?\\}"
            value = "([-+]?([0-9]+\\.?[0-9]*|\\.[0-9]+)([eE][-+]?[0-9]+)?|[-+]Inf|NaN)"
            samplere = "^" name "(" labels ")? " value "$" }
    /^$/ { bad("empty line") }
    /^#/ {
        if ($0 !~ "^# (HELP|TYPE) " name " ") bad("a comment that is not HELP or TYPE")
        kind = $2; fam = $3
        if (fam in closed) bad("family " fam " is not contiguous")
        if (cur != "" && cur != fam) { endhist(); closed[cur] = 1; inbuckets = 0 }
        cur = fam
        if (kind == "HELP") { if (fam in help) bad("second HELP"); help[fam] = 1; next }
        if (fam in type) bad("second TYPE")
        if (NF != 4 || $4 !~ /^(counter|gauge|histogram|summary|untyped)$/) bad("bad TYPE")
        type[fam] = $4; next
    }
    {
        if ($0 !~ samplere) bad("not a sample line")
        if (cur == "" || !(cur in type)) bad("sample before its # TYPE")
        sname = $0; sub(/[{ ].*/, "", sname)
        v = $NF
        lbl = ""
        if (index($0, "{") > 0) { lbl = $0; sub(/^[^{]*\{/, "", lbl); sub(/\} [^ ]*$/, "", lbl) }
        t = type[cur]
        if (t != "histogram") {
            if (sname != cur) bad("sample " sname " outside its family " cur)
            if (lbl ~ /(^|,)le="/) bad("le label outside a histogram")
            if (t == "counter" && v + 0 < 0) bad("negative counter")
            next
        }
        suffix = substr(sname, length(cur) + 1)
        if (substr(sname, 1, length(cur)) != cur) bad("sample outside its family")
        rest = lbl; le = ""
        if (match(rest, /(^|,)le="[^"]*"$/)) {
            le = substr(rest, RSTART, RLENGTH); sub(/^,/, "", le); sub(/^le="/, "", le); sub(/"$/, "", le)
            rest = substr(rest, 1, RSTART - 1)
        }
        if (suffix == "_bucket") {
            if (le == "") bad("bucket without le")
            lev = (le == "+Inf") ? 1e308 : le + 0
            if (!inbuckets || rest != hlabels) {
                endhist(); hlabels = rest; inbuckets = 1; infseen = 0; lastle = -1; lastcount = 0
            } else if (!(lev > lastle)) bad("le not increasing")
            if (v + 0 < lastcount) bad("buckets not cumulative")
            lastle = lev; lastcount = v + 0
            if (le == "+Inf") { infseen = 1; infcount = v + 0 }
            next
        }
        if (le != "") bad("le on " sname)
        if (suffix == "_sum") { endhist(); next }
        if (suffix == "_count") {
            if (!infseen || rest != hlabels) bad("_count without its buckets")
            if (v + 0 != infcount) bad("_count differs from the +Inf bucket")
            inbuckets = 0; next
        }
        bad("unexpected histogram sample")
    }
    END { if (failed) exit 1; if (NR == 0) { print "empty exposition" > "/dev/stderr"; exit 1 }
          if (inbuckets) { print "histogram without _count at the end" > "/dev/stderr"; exit 1 } }
    ' "$1"
}

# The checker refuses broken expositions (so that its "valid" means something).
neg=0
while IFS= read -r case; do
    printf '%b' "$case" >"$work/neg.txt"
    if check_exposition "$work/neg.txt" 2>/dev/null; then
        fail "the checker accepted: $case"
    fi
    neg=$((neg + 1))
done <<'EOF'
a 1\n
# TYPE a counter\na{x="1} 1\n
# TYPE a counter\na{x="\\t"} 1\n
# TYPE a counter\na 1x\n
# TYPE a counter\nb 1\n
# TYPE a counter\n# TYPE a counter\n
# TYPE a wrong\n
# TYPE a counter\n# TYPE b gauge\n# HELP a x\n
# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="2"} 1\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 2\n
# TYPE h histogram\nh_bucket{le="2"} 1\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n
# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 1\nh_count 1\n
# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 3\n
# TYPE a counter\n\na 1\n
# other comment\n
EOF
[ "$neg" -eq 14 ] || fail "ran $neg negative checker cases, expected 14"
printf '# HELP a x\n# TYPE a counter\na{b="\\"\\\\\\n"} 1\n# TYPE h histogram\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 2\nh_sum 0.5\nh_count 2\n' >"$work/pos.txt"
check_exposition "$work/pos.txt" || fail "the checker refused a valid exposition"
ok "the exposition checker refuses 14 broken expositions and accepts a valid one"

# ---- a fresh server, metrics public on loopback by default --------------------------------------
start_server
ca=$data/ca.pem
token=$(cat "$data/admin-token")
grep -q '^metrics: GET /metrics (no authentication)$' "$work/serve.out" ||
    fail "serve does not say that /metrics is public: $(cat "$work/serve.out")"

# scrape FILE: GET /metrics (no token) into FILE, checks status, content type and syntax.
scrape() {
    local out=$1 code ctype
    shift
    code=$(curl -sS --cacert "$ca" -o "$out" -D "$work/scrape.h" -w '%{http_code}' "$@" "$url/metrics")
    [ "$code" = 200 ] || fail "GET /metrics answered $code: $(head -c 300 "$out")"
    ctype=$(tr -d '\r' <"$work/scrape.h" | sed -n 's/^[Cc]ontent-[Tt]ype: //p')
    [ "$ctype" = "text/plain; version=0.0.4; charset=utf-8" ] || fail "content type '$ctype'"
    check_exposition "$out" || fail "invalid exposition in $out"
}
# value FILE SAMPLE: the value of the line "SAMPLE VALUE" (0 when absent).
value() {
    awk -v s="$2" 'substr($0, 1, length(s) + 1) == s " " { v = $NF; found = 1 }
                   END { print found ? v : 0 }' "$1"
}
# delta NAME SAMPLE WANT: the sample moved by exactly WANT between before.txt and after.txt.
delta() {
    local b a
    b=$(value "$work/before.txt" "$2")
    a=$(value "$work/after.txt" "$2")
    [ "$(awk -v a="$a" -v b="$b" 'BEGIN { print a - b }')" = "$3" ] ||
        fail "$1: $2 went from $b to $a, expected +$3"
    ok "$1: $2 +$3"
}
# api METHOD PATH [BODY]: with the admin token; sets $code, body in $work/resp.
api() {
    local method=$1 path=$2 body=${3-}
    local args=(-sS --cacert "$ca" -o "$work/resp" -w '%{http_code}' -X "$method"
        -H "Authorization: Bearer $token")
    if [ -n "$body" ]; then
        args+=(-H 'Content-Type: application/json' --data-binary "$body")
    fi
    code=$(curl "${args[@]}" "$url$path?api-version=$API")
}
expect() {
    local want=$1
    shift
    api "$@"
    [ "$code" = "$want" ] || fail "$1 $2 answered $code, want $want: $(head -c 300 "$work/resp")"
}

scrape "$work/before.txt"
ok "GET /metrics is public on a loopback listener and its exposition is valid"
for fam in cloister_http_requests_total cloister_http_request_duration_seconds \
    cloister_http_server_errors_total cloister_key_releases_total cloister_attestations_total \
    cloister_audit_queue_depth cloister_audit_sync_seconds cloister_storage_errors_total \
    cloister_http_requests_in_flight; do
    grep -q "^# TYPE $fam " "$work/before.txt" || fail "no # TYPE line for $fam"
done
ok "every documented family has its TYPE line"

# Requests with known outcomes.
expect 200 POST /keys/mk1/create '{"kty":"oct","key_size":256}'
kid_version=$(jq -r .key.kid "$work/resp" | sed 's#.*/##')
for _ in 1 2 3; do
    expect 200 POST "/keys/mk1/$kid_version/encrypt" '{"alg":"A256GCM","value":"AAECAwQFBgcICQoLDA0ODw"}'
done
expect 400 POST "/keys/mk1/$kid_version/encrypt" '{"alg":"RSA-OAEP","value":"AAEC"}'
expect 404 GET /keys/no-such-key
code=$(curl -sS --cacert "$ca" -o /dev/null -w '%{http_code}' "$url/keys/mk1?api-version=$API")
[ "$code" = 401 ] || fail "an unauthenticated GET /keys/mk1 answered $code"
code=$(curl -sS --cacert "$ca" -o /dev/null -w '%{http_code}' "$url/no/such/path/here")
[ "$code" = 404 ] || fail "an unknown path answered $code"
code=$(curl -sS --cacert "$ca" -o /dev/null -w '%{http_code}' -X POST \
    -H 'Content-Type: application/json' --data-binary '{"evidence":"AAAA"}' \
    "$url/attest/SimEnclave?api-version=2022-08-01")
[[ "$code" == 4?? ]] || fail "garbage sim evidence answered $code, expected a 4xx"
attest_code=$code
code=$(curl -sS --cacert "$ca" -o /dev/null -w '%{http_code}' -X POST \
    -H 'Content-Type: application/json' --data-binary '{}' "$url/attest/NoSuchType?api-version=2022-08-01")
[ "$code" = 404 ] || fail "an unknown attestation type answered $code"

scrape "$work/after.txt"
delta create 'cloister_http_requests_total{op="POST /keys/{name}/create",status="200"}' 1
delta encrypt 'cloister_http_requests_total{op="POST /keys/{name}/{version}/encrypt",status="200"}' 3
delta "bad encrypt" 'cloister_http_requests_total{op="POST /keys/{name}/{version}/encrypt",status="400"}' 1
delta latency 'cloister_http_request_duration_seconds_count{op="POST /keys/{name}/{version}/encrypt"}' 4
delta latency-inf 'cloister_http_request_duration_seconds_bucket{op="POST /keys/{name}/{version}/encrypt",le="+Inf"}' 4
delta "not found" 'cloister_http_requests_total{op="GET /keys/{name}",status="404"}' 1
delta unauthenticated 'cloister_http_requests_total{op="GET /keys/{name}",status="401"}' 1
delta unmatched 'cloister_http_requests_total{op="unmatched",status="404"}' 1
delta scrape 'cloister_http_requests_total{op="GET /metrics",status="200"}' 1
delta attest "cloister_http_requests_total{op=\"POST /attest/{type}\",status=\"$attest_code\"}" 1
delta "attest result" 'cloister_attestations_total{type="SimEnclave",result="rejected"}' 1
delta "attest unknown type" 'cloister_attestations_total{type="_unknown",result="rejected"}' 1
delta "no 5xx" 'cloister_http_server_errors_total{op="POST /keys/{name}/{version}/encrypt"}' 0
grep -q 'NoSuchType\|/no/such/path' "$work/after.txt" && fail "a client-chosen name became a label"
ok "client-chosen paths and types never become label values"
# The request path is never a label: only route patterns.
grep -q 'mk1' "$work/after.txt" && fail "a key name appears outside the release family"
ok "object names do not appear in operation labels"
# The sum of the latency histogram is positive and the buckets are consistent (checked above).
sum=$(value "$work/after.txt" 'cloister_http_request_duration_seconds_sum{op="POST /keys/{name}/{version}/encrypt"}')
awk -v s="$sum" 'BEGIN { exit !(s > 0 && s < 60) }' || fail "encrypt latency sum $sum"
ok "encrypt latency sum is $sum s"
# The audit log's numbers (when this serve has the audit log wired: it says "audit log: …").
if grep -q '^audit log: ' "$work/serve.out"; then
    rb=$(value "$work/before.txt" cloister_audit_records_total)
    ra=$(value "$work/after.txt" cloister_audit_records_total)
    # create, 4 encrypts, the 404: 6 handled vault requests, each an attempt and an outcome record
    [ $((ra - rb)) -ge 12 ] || fail "cloister_audit_records_total moved by $((ra - rb)), expected >= 12"
    [ "$(value "$work/after.txt" cloister_audit_syncs_total)" -ge 1 ] || fail "no audit syncs counted"
    [ "$(value "$work/after.txt" cloister_audit_failed)" = 0 ] || fail "the audit log reports failure"
    # Held batches are some of the commits (how many depends on timing: at most all of them).
    held=$(value "$work/after.txt" cloister_audit_held_batches_total)
    [ -n "$held" ] && [ "$held" -le "$(value "$work/after.txt" cloister_audit_syncs_total)" ] ||
        fail "cloister_audit_held_batches_total is '$held'"
    awk -v s="$(value "$work/after.txt" cloister_audit_sync_time_seconds_total)" 'BEGIN { exit !(s > 0) }' ||
        fail "no audit sync time counted"
    hc=$(value "$work/after.txt" cloister_audit_sync_seconds_count)
    [ "$hc" -ge 1 ] && [ "$hc" -le "$(value "$work/after.txt" cloister_audit_syncs_total)" ] ||
        fail "cloister_audit_sync_seconds_count is $hc: each commit should be observed once"
    [ "$(value "$work/after.txt" 'cloister_audit_sync_seconds_bucket{le="+Inf"}')" = "$hc" ] ||
        fail "the sync histogram's +Inf bucket differs from its count"
    ok "audit metrics: records +$((ra - rb)), syncs, sync time and the sync histogram ($hc) counted, not failed"
else
    echo "# note: this cloister serve has no audit log wired: audit metrics not checked"
fi
in_flight=$(value "$work/after.txt" cloister_http_requests_in_flight)
[ "$in_flight" -ge 1 ] || fail "in-flight gauge $in_flight during a scrape"
ok "in-flight gauge counts the scrape ($in_flight)"
stop_server

# ---- --metrics auth: a bearer token is required -------------------------------------------------
start_server --metrics auth
grep -q '^metrics: GET /metrics (bearer token required)$' "$work/serve.out" ||
    fail "serve does not say that /metrics needs a token"
code=$(curl -sS --cacert "$ca" -o "$work/resp" -w '%{http_code}' "$url/metrics")
[ "$code" = 401 ] || fail "--metrics auth: an anonymous scrape answered $code"
code=$(curl -sS --cacert "$ca" -o "$work/resp" -w '%{http_code}' -H 'Authorization: Bearer nope' "$url/metrics")
[ "$code" = 401 ] || fail "--metrics auth: a bad token answered $code"
scrape "$work/auth.txt" -H "Authorization: Bearer $token"
[ "$(value "$work/auth.txt" 'cloister_http_requests_total{op="GET /metrics",status="401"}')" = 2 ] ||
    fail "the refused scrapes are not counted"
ok "--metrics auth: 401 without a valid token, 200 with the admin token"
stop_server

# ---- --metrics off: no route --------------------------------------------------------------------
start_server --metrics off
code=$(curl -sS --cacert "$ca" -o /dev/null -w '%{http_code}' "$url/metrics")
[ "$code" = 404 ] || fail "--metrics off: GET /metrics answered $code"
ok "--metrics off: GET /metrics is 404"
stop_server

code=0
"$CLOISTER" serve --data "$data" --listen 127.0.0.1:0 --metrics maybe >/dev/null 2>&1 || code=$?
[ "$code" = 2 ] || fail "--metrics maybe exited $code, expected 2 (usage)"
ok "--metrics with a bad value is a usage error"

echo "metrics: $checks checks passed"
