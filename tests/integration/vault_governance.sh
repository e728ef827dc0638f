#!/usr/bin/env bash
# Vault governance rules end to end (docs/operations.md, "Governance rules"):
#   1. a vault without rules gets objects that will break them (RSA 2048, no expiry, no tags, an
#      exportable key with a mutable policy that admits debug TEEs) and compliant ones;
#   2. `cloister admin policy check` lists exactly the violations, with the server stopped and
#      (later) running, exit 1; 0 with rules they pass; usage errors exit 2;
#   3. `cloister serve --governance FILE` refuses a bad rules file, naming the file and field;
#   4. with the rules on, every rule broken on create / import / update / rotate / secret set /
#      secret update is a 403 ForbiddenByPolicy naming the rule, compliant requests succeed, and
#      an object from before the rules can still be disabled; a restored backup must pass them.
# Needs: curl, jq, node (to make JWKs for import). Fails, never skips.
set -euo pipefail

: "${CLOISTER:?CLOISTER must point at the cloister binary}"
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/serve.sh"
need_tools curl node
tmp=$(mktemp -d)
data="$tmp/data"
pid="" server_pid=""

cleanup() {
    [[ -n "$pid" ]] || pid=${server_pid:-} # a server still starting (serve_start)
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

on_fail() { # after the FAIL line
    for f in "$tmp"/serve.out "$tmp"/serve.err "$tmp"/body "$tmp"/check.out "$tmp"/check.err; do
        [[ -f "$f" ]] && { echo "--- $f" >&2; tail -n 40 "$f" >&2; }
    done
}
passed=0
ok() {
    passed=$((passed + 1))
    echo "ok $passed - $*"
}

start_server() {
    serve_start "$tmp/serve.out" "$tmp/serve.err" --data "$data" --listen 127.0.0.1:0 "$@"
    pid=$server_pid
}
stop_server() {
    kill -TERM "$pid"
    wait "$pid" || fail "serve exited non-zero on SIGTERM"
    pid="" server_pid=""
}

API="api-version=2025-07-01"
# api METHOD PATH [BODY]: prints the status; the body goes to $tmp/body.
api() {
    local method=$1 path=$2 body=${3-}
    local args=(-sS --cacert "$data/ca.pem" -X "$method" -o "$tmp/body" -w '%{http_code}'
        -H "Authorization: Bearer $admin")
    if [[ -n "$body" ]]; then
        args+=(-H 'Content-Type: application/json' --data-binary "$body")
    fi
    curl "${args[@]}" "$url$path?$API"
}
expect_ok() {
    local got
    got=$(api "$@") || fail "curl $1 $2 failed"
    [[ "$got" == 200 ]] || fail "$1 $2: status $got, want 200: $(cat "$tmp/body")"
}
# expect_refused RULE METHOD PATH [BODY]: 403 ForbiddenByPolicy whose message names RULE.
expect_refused() {
    local rule=$1 got
    shift
    got=$(api "$@") || fail "curl $1 $2 failed"
    [[ "$got" == 403 ]] || fail "$1 $2: status $got, want 403 for rule $rule: $(cat "$tmp/body")"
    grep -qF '"code":"ForbiddenByPolicy"' "$tmp/body" ||
        fail "$1 $2: want code ForbiddenByPolicy: $(cat "$tmp/body")"
    grep -qF "rule '$rule'" "$tmp/body" || fail "$1 $2: the message does not name rule $rule: $(cat "$tmp/body")"
}
b64url() { printf '%s' "$1" | base64 -w0 | tr '+/' '-_' | tr -d '='; }
jwk() { # jwk rsa BITS | jwk ec CURVE: a private JWK
    node -e '
const c = require("node:crypto");
const [kind, p] = process.argv.slice(1);
const { privateKey } = kind === "rsa" ? c.generateKeyPairSync("rsa", { modulusLength: Number(p) })
                                      : c.generateKeyPairSync("ec", { namedCurve: p });
process.stdout.write(JSON.stringify(privateKey.export({ format: "jwk" })));' "$@"
}

now=$(date +%s)
exp_ok=$((now + 30 * 86400))
exp_long=$((now + 400 * 86400))
tags='{"owner": "ops", "cost-center": "42"}'
good_policy='{"version":"1.0.0","anyOf":[{"authority":"https://127.0.0.1:8443","allOf":[
  {"claim":"x-ms-attestation-type","equals":"sim"},
  {"claim":"x-cloister-sim-is-debuggable","equals":false}]}]}'
debug_policy='{"version":"1.0.0","anyOf":[{"authority":"https://127.0.0.1:8443","allOf":[
  {"claim":"x-ms-attestation-type","equals":"sim"},
  {"claim":"x-cloister-sim-mrenclave","equals":"aa"}]}]}'
good_b64=$(b64url "$good_policy")
debug_b64=$(b64url "$debug_policy")

cat >"$tmp/rules.json" <<'EOF'
{
  "version": 1,
  "description": "integration test rules",
  "key-types": {"RSA": [3072, 4096], "EC": ["P-256", "P-384"], "oct": [256]},
  "max-validity-days": 365,
  "require-expiry": true,
  "exportable-needs-immutable-policy": true,
  "release-policy-non-debug": true,
  "required-tags": ["owner", "cost-center"]
}
EOF

# ---- 1. a vault without rules -------------------------------------------------------------------
start_server
admin=$(cat "$data/admin-token")
expect_ok POST /keys/legacy-rsa/create '{"kty": "RSA", "key_size": 2048}'
expect_ok POST /keys/legacy-export/create "{\"kty\": \"oct\", \"key_size\": 256,
  \"attributes\": {\"exportable\": true}, \"release_policy\": {\"data\": \"$debug_b64\"}}"
expect_ok PUT /secrets/legacy-secret '{"value": "s3cret"}'
expect_ok POST /keys/good/create "{\"kty\": \"RSA\", \"key_size\": 3072,
  \"attributes\": {\"exp\": $exp_ok}, \"tags\": $tags}"
expect_ok PUT /secrets/good-secret "{\"value\": \"v\", \"attributes\": {\"exp\": $exp_ok}, \"tags\": $tags}"
ok "objects written before the rules"
stop_server

# ---- 2. admin policy check ----------------------------------------------------------------------
check() { # check [ARGS...]: runs the check; its exit status in $rc
    rc=0
    "$CLOISTER" admin policy check "$@" >"$tmp/check.out" 2>"$tmp/check.err" || rc=$?
}
expect_findings() {
    [[ "$rc" == 1 ]] || fail "admin policy check exited $rc, want 1"
    local want=(
        "key legacy-export exportable-needs-immutable-policy"
        "key legacy-export release-policy-non-debug"
        "key legacy-export require-expiry"
        "key legacy-export required-tags"
        "key legacy-rsa key-types"
        "key legacy-rsa require-expiry"
        "key legacy-rsa required-tags"
        "secret legacy-secret require-expiry"
        "secret legacy-secret required-tags"
    )
    # KIND NAME VERSION RULE: the version is 32 hex characters
    local got
    got=$(awk 'length($3) == 32 && $3 ~ /^[0-9a-f]+$/ { sub(":", "", $4); print $1, $2, $4 }' "$tmp/check.out" | sort)
    local expected
    expected=$(printf '%s\n' "${want[@]}" | sort)
    [[ "$got" == "$expected" ]] || fail "admin policy check findings:
$got
want:
$expected"
    [[ $(wc -l <"$tmp/check.out") == "${#want[@]}" ]] || fail "unexpected extra lines in the check output"
    ! grep -q " good" "$tmp/check.out" || fail "a compliant object was reported"
    grep -qF "checked 5 key and secret versions against 6 rules" "$tmp/check.err" ||
        fail "no summary on stderr"
}
check --data "$data" --rules "$tmp/rules.json"
expect_findings
grep -qE '^key legacy-rsa [0-9a-f]{32} key-types: RSA 2048-bit keys are not allowed; use one of: RSA 3072, 4096' \
    "$tmp/check.out" || fail "the key-types detail is not as documented"
ok "admin policy check lists every violation (server stopped), exit 1"

echo '{"required-tags": ["nobody-has-this"], "require-expiry": false}' >"$tmp/tags.json"
check --data "$data" --rules "$tmp/tags.json"
[[ "$rc" == 1 && $(wc -l <"$tmp/check.out") == 5 ]] || fail "tag-only rules: exit $rc, $(wc -l <"$tmp/check.out") lines"
echo '{"key-types": {"RSA": [2048, 3072], "oct": [256]}}' >"$tmp/loose.json"
check --data "$data" --rules "$tmp/loose.json"
[[ "$rc" == 0 && ! -s "$tmp/check.out" ]] || fail "rules every object passes: exit $rc: $(cat "$tmp/check.out")"
grep -qF "0 violations" "$tmp/check.err" || fail "no '0 violations' summary"
ok "admin policy check exits 0 when nothing breaks the rules"

check --data "$data"
[[ "$rc" == 2 ]] || fail "no --rules: exit $rc, want 2"
check --data "$data" --rules "$tmp/rules.json" --bogus
[[ "$rc" == 2 ]] || fail "unknown option: exit $rc, want 2"
check --data "$tmp/nowhere" --rules "$tmp/rules.json"
[[ "$rc" == 1 ]] && grep -qF "no vault database at $tmp/nowhere/vault.db" "$tmp/check.err" ||
    fail "missing data directory: exit $rc: $(cat "$tmp/check.err")"
[[ ! -e "$tmp/nowhere" ]] || fail "the check created a data directory"
echo '{"max-validity-days": "forever"}' >"$tmp/bad.json"
check --data "$data" --rules "$tmp/bad.json"
[[ "$rc" == 1 ]] && grep -qF "$tmp/bad.json" "$tmp/check.err" && grep -qF "max-validity-days" "$tmp/check.err" ||
    fail "bad rules file in the check: exit $rc: $(cat "$tmp/check.err")"
"$CLOISTER" admin policy check --help >"$tmp/check.out" || fail "admin policy check --help failed"
grep -qF "usage: cloister admin policy check" "$tmp/check.out" || fail "--help prints no usage"
ok "admin policy check: usage errors exit 2, a missing vault or bad rules exit 1 with the reason"

# ---- 3. a bad rules file refuses to start the server --------------------------------------------
for bad in '{"max-validity-days": 0}|max-validity-days' \
           '{"key-types": {"RSA": [1024]}}|key-types.RSA' \
           '{"required_tags": ["owner"]}|required_tags' \
           '{"require-expiry": "yes"}|require-expiry' \
           'not json|not valid JSON'; do
    printf '%s' "${bad%%|*}" >"$tmp/bad.json"
    rc=0
    "$CLOISTER" serve --data "$data" --listen 127.0.0.1:0 --governance "$tmp/bad.json" \
        >"$tmp/serve.out" 2>"$tmp/serve.err" || rc=$?
    [[ "$rc" != 0 ]] || fail "serve started with a bad rules file (${bad%%|*})"
    grep -qF "$tmp/bad.json" "$tmp/serve.err" && grep -qF "${bad##*|}" "$tmp/serve.err" ||
        fail "serve's refusal does not name the file and '${bad##*|}': $(cat "$tmp/serve.err")"
done
rc=0
"$CLOISTER" serve --data "$data" --listen 127.0.0.1:0 --governance "$tmp/missing.json" \
    >"$tmp/serve.out" 2>"$tmp/serve.err" || rc=$?
[[ "$rc" != 0 ]] && grep -qF "$tmp/missing.json" "$tmp/serve.err" || fail "serve started without its rules file"
ok "serve --governance refuses bad rules files, naming the file and the field"

# ---- 4. enforcement -----------------------------------------------------------------------------
start_server --governance "$tmp/rules.json"
grep -qF "governance rules: $tmp/rules.json (6 rules)" "$tmp/serve.out" || fail "serve does not say which rules it enforces"

# the check works while the server runs
check --data "$data" --rules "$tmp/rules.json"
expect_findings
ok "admin policy check with the server running"

# create
expect_refused key-types POST /keys/k1/create "{\"kty\": \"RSA\", \"key_size\": 2048, \"attributes\": {\"exp\": $exp_ok}, \"tags\": $tags}"
expect_refused key-types POST /keys/k1/create "{\"kty\": \"EC\", \"crv\": \"P-521\", \"attributes\": {\"exp\": $exp_ok}, \"tags\": $tags}"
expect_refused require-expiry POST /keys/k1/create "{\"kty\": \"RSA\", \"key_size\": 3072, \"tags\": $tags}"
expect_refused max-validity-days POST /keys/k1/create "{\"kty\": \"RSA\", \"key_size\": 3072, \"attributes\": {\"exp\": $exp_long}, \"tags\": $tags}"
expect_refused required-tags POST /keys/k1/create "{\"kty\": \"RSA\", \"key_size\": 3072, \"attributes\": {\"exp\": $exp_ok}, \"tags\": {\"owner\": \"ops\"}}"
grep -qF "lacks the required tag 'cost-center'" "$tmp/body" || fail "the required-tags message does not name the tag"
expect_refused exportable-needs-immutable-policy POST /keys/x1/create "{\"kty\": \"oct\", \"key_size\": 256,
  \"attributes\": {\"exp\": $exp_ok, \"exportable\": true}, \"tags\": $tags,
  \"release_policy\": {\"data\": \"$good_b64\"}}"
expect_refused release-policy-non-debug POST /keys/x1/create "{\"kty\": \"oct\", \"key_size\": 256,
  \"attributes\": {\"exp\": $exp_ok, \"exportable\": true}, \"tags\": $tags,
  \"release_policy\": {\"data\": \"$debug_b64\", \"immutable\": true}}"
grep -qF "x-cloister-sim-is-debuggable" "$tmp/body" || fail "the non-debug message does not name the claim to pin"
code=$(api GET /keys/k1) || true
[[ "$code" == 404 ]] || fail "a refused create stored a key (GET answered $code)"
expect_ok POST /keys/k1/create "{\"kty\": \"EC\", \"crv\": \"P-256\", \"attributes\": {\"exp\": $exp_ok}, \"tags\": $tags}"
expect_ok POST /keys/x1/create "{\"kty\": \"oct\", \"key_size\": 256,
  \"attributes\": {\"exp\": $exp_ok, \"exportable\": true}, \"tags\": $tags,
  \"release_policy\": {\"data\": \"$good_b64\", \"immutable\": true}}"
ok "create: each rule refused with 403 ForbiddenByPolicy naming it; compliant keys created"

# import
expect_refused key-types PUT /keys/imp "{\"key\": $(jwk rsa 2048), \"attributes\": {\"exp\": $exp_ok}, \"tags\": $tags}"
expect_refused required-tags PUT /keys/imp "{\"key\": $(jwk ec P-384), \"attributes\": {\"exp\": $exp_ok}}"
expect_ok PUT /keys/imp "{\"key\": $(jwk ec P-384), \"attributes\": {\"exp\": $exp_ok}, \"tags\": $tags}"
ok "import: refused and accepted by the same rules"

# update
expect_refused required-tags PATCH /keys/k1 '{"tags": {"owner": "ops"}}'
expect_refused require-expiry PATCH /keys/k1 '{"attributes": {"exp": null}}'
expect_refused max-validity-days PATCH /keys/k1 "{\"attributes\": {\"exp\": $exp_long}}"
expect_ok PATCH /keys/k1 "{\"attributes\": {\"exp\": $((exp_ok + 86400))}}"
expect_refused release-policy-non-debug PATCH /keys/x1 "{\"release_policy\": {\"data\": \"$debug_b64\", \"immutable\": true}}"
# an object from before the rules can still be disabled; retagging it must bring every tag
expect_ok PATCH /keys/legacy-rsa '{"attributes": {"enabled": false}}'
expect_refused required-tags PATCH /keys/legacy-rsa '{"tags": {"owner": "ops"}}'
expect_ok PATCH /keys/legacy-rsa "{\"tags\": $tags}"
ok "update: checked against the rules about what it changes"

# rotate: the new version must pass; the validity period is carried over
expect_ok POST /keys/good/rotate
grep -qE '"exp":[0-9]+' "$tmp/body" || fail "the rotated version has no exp: $(cat "$tmp/body")"
expect_refused key-types POST /keys/legacy-rsa/rotate
ok "rotate: a new version gets an expiry and must pass every rule"

# secrets
expect_refused require-expiry PUT /secrets/s1 "{\"value\": \"v\", \"tags\": $tags}"
expect_refused required-tags PUT /secrets/s1 "{\"value\": \"v\", \"attributes\": {\"exp\": $exp_ok}}"
expect_refused max-validity-days PUT /secrets/s1 "{\"value\": \"v\", \"attributes\": {\"exp\": $exp_long}, \"tags\": $tags}"
expect_ok PUT /secrets/s1 "{\"value\": \"v\", \"attributes\": {\"exp\": $exp_ok}, \"tags\": $tags}"
expect_refused required-tags PATCH /secrets/s1 '{"tags": {}}'
expect_refused require-expiry PATCH /secrets/s1 '{"attributes": {"exp": null}}'
expect_ok PATCH /secrets/s1 '{"contentType": "text/plain"}'
expect_ok PATCH /secrets/legacy-secret '{"attributes": {"enabled": false}}'
ok "secrets: set and update refused and accepted by the rules"

# restore: the versions in a backup must pass the rules too; nothing is restored otherwise
restore_blob() { # restore_blob NAME: backs the key up, deletes and purges it, prints the blob
    expect_ok POST "/keys/$1/backup"
    local blob
    blob=$(jq -r .value "$tmp/body")
    [[ -n "$blob" && "$blob" != null ]] || fail "no backup blob for $1"
    expect_ok DELETE "/keys/$1"
    local got
    got=$(api DELETE "/deletedkeys/$1")
    [[ "$got" == 204 ]] || fail "purge $1: status $got"
    printf '%s' "$blob"
}
blob=$(restore_blob legacy-export)
expect_refused exportable-needs-immutable-policy POST /keys/restore "{\"value\": \"$blob\"}"
grep -qF "rule 'release-policy-non-debug'" "$tmp/body" || fail "restore: not every broken rule named"
got=$(api GET /keys/legacy-export)
[[ "$got" == 404 ]] || fail "a refused restore left key legacy-export behind (status $got)"
blob=$(restore_blob good)
expect_ok POST /keys/restore "{\"value\": \"$blob\"}"
expect_ok GET /keys/good
ok "restore: a backup that breaks the rules is refused whole, a compliant one restored"

stop_server
# after the fixes the check still names what remains: legacy-rsa lost required-tags
check --data "$data" --rules "$tmp/rules.json"
[[ "$rc" == 1 ]] || fail "check after the fixes exited $rc"
! grep -q "^key legacy-rsa [0-9a-f]* required-tags" "$tmp/check.out" || fail "a fixed violation is still listed"
grep -q "^key legacy-rsa [0-9a-f]* key-types" "$tmp/check.out" || fail "a remaining violation is not listed"
ok "admin policy check follows the fixes"
echo "all $passed governance checks passed"
