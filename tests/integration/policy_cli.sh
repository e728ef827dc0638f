#!/usr/bin/env bash
# End to end with the real binary: cloister policy check / hash / test. Release and appraisal
# policies against claims files and tokens (unverified with --no-verify, verified with --jwks),
# the exit status (0 allow, 1 deny or error, 2 usage), the trace and the denial in text and
# JSON, redaction, and the canonical hash checked against openssl.
set -euo pipefail

CLOISTER=${CLOISTER:?set CLOISTER to the cloister binary}
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

# run WANT_STATUS CMD...: runs CMD with stdout in out.txt and stderr in err.txt.
run() {
    local want=$1
    shift
    local status=0
    "$@" >out.txt 2>err.txt || status=$?
    [ "$status" -eq "$want" ] ||
        fail "'$*' exited $status, want $want (stdout: $(cat out.txt); stderr: $(cat err.txt))"
}
has() { grep -qF -- "$1" "$2" || fail "$2 lacks '$1': $(cat "$2")"; }
lacks() { ! grep -qF -- "$1" "$2" || fail "$2 has '$1': $(cat "$2")"; }
b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }

if "$CLOISTER" policy --help >/dev/null 2>err.txt; then :; else
    grep -q "unknown command 'policy'" err.txt &&
        fail "the binary has no 'policy' command: src/cli/main.c needs {\"policy\", ..., cmd_policy}"
    fail "cloister policy --help failed: $(cat err.txt)"
fi

cat >release.json <<'EOF'
{
  "version": "1.0.0",
  "anyOf": [
    {
      "authority": "https://attest.one.example/",
      "allOf": [
        {"claim": "x-ms-attestation-type", "equals": "sevsnpvm"},
        {"anyOf": [
          {"claim": "x-ms-sevsnpvm-launchmeasurement", "equals": "aa11"},
          {"claim": "x-ms-sevsnpvm-launchmeasurement", "equals": "bb22"}
        ]},
        {"claim": "x-ms-sevsnpvm-is-debuggable", "equals": false}
      ]
    },
    {
      "authority": "https://attest.two.example",
      "allOf": [{"claim": "x-cloister-sim-svn", "greaterOrEquals": 2}]
    }
  ]
}
EOF
cat >snp.json <<'EOF'
{"iss": "https://attest.one.example", "x-ms-attestation-type": "sevsnpvm",
 "x-ms-sevsnpvm-launchmeasurement": "bb22", "x-ms-sevsnpvm-is-debuggable": false}
EOF
cat >snp-debug.json <<'EOF'
{"iss": "https://attest.one.example", "x-ms-attestation-type": "sevsnpvm",
 "x-ms-sevsnpvm-launchmeasurement": "bb22", "x-ms-sevsnpvm-is-debuggable": true}
EOF

# ---- usage -----------------------------------------------------------------------------------
run 0 "$CLOISTER" policy --help
has "cloister policy test --policy FILE" out.txt
run 2 "$CLOISTER" policy
run 2 "$CLOISTER" policy frobnicate
has "unknown subcommand 'frobnicate'" err.txt
run 2 "$CLOISTER" policy test --claims snp.json
has "--policy FILE is required" err.txt
run 2 "$CLOISTER" policy test --policy release.json
has "exactly one of --claims FILE and --token JWT" err.txt
run 2 "$CLOISTER" policy test --policy release.json --claims snp.json --token x.y.z
run 2 "$CLOISTER" policy test --policy release.json --token x.y.z
has "--token needs --jwks FILE to verify its signature, or --no-verify" err.txt
run 2 "$CLOISTER" policy test --policy release.json --token x.y.z --no-verify --jwks k.json
run 2 "$CLOISTER" policy test --policy release.json --claims snp.json --no-verify
run 2 "$CLOISTER" policy test --policy release.json --claims snp.json --kind other
has "--kind must be 'release' or 'appraisal'" err.txt
run 2 "$CLOISTER" policy test --policy release.json --claims snp.json --bogus
run 2 "$CLOISTER" policy test --policy
run 2 "$CLOISTER" policy test --policy - --claims - </dev/null
has "only one input can come from standard input" err.txt
run 2 "$CLOISTER" policy check
run 2 "$CLOISTER" policy hash --policy release.json extra

# ---- check and hash --------------------------------------------------------------------------
run 0 "$CLOISTER" policy check --policy release.json
has "valid release policy: 2 authorities, 5 conditions" out.txt
sed 's/"equals": false/"equal": false/' release.json >typo.json
run 1 "$CLOISTER" policy check --policy typo.json
has "typo.json: invalid release policy: anyOf[0].allOf[2]: unknown operator 'equal' (did you mean 'equals'?)" err.txt
run 1 "$CLOISTER" policy check --policy release.json --kind appraisal
has "invalid appraisal policy: policy: 'anyOf' at the top level is a release policy" err.txt
run 1 "$CLOISTER" policy check --policy missing.json
has "cannot open missing.json" err.txt

# The hash is SHA-256 of the canonical JSON (sorted members, no whitespace), base64url.
canonical='{"anyOf":[{"allOf":[{"claim":"x-ms-attestation-type","equals":"sevsnpvm"},{"anyOf":[{"claim":"x-ms-sevsnpvm-launchmeasurement","equals":"aa11"},{"claim":"x-ms-sevsnpvm-launchmeasurement","equals":"bb22"}]},{"claim":"x-ms-sevsnpvm-is-debuggable","equals":false}],"authority":"https://attest.one.example/"},{"allOf":[{"claim":"x-cloister-sim-svn","greaterOrEquals":2}],"authority":"https://attest.two.example"}],"version":"1.0.0"}'
want=$(printf '%s' "$canonical" | openssl dgst -sha256 -binary | b64url)
run 0 "$CLOISTER" policy hash --policy release.json
[ "$(cat out.txt)" = "$want" ] || fail "hash $(cat out.txt), want $want"
printf '%s' "$canonical" >compact.json
run 0 "$CLOISTER" policy hash --policy compact.json
[ "$(cat out.txt)" = "$want" ] || fail "the compact form hashes differently"
run 0 "$CLOISTER" policy hash --policy - <release.json
[ "$(cat out.txt)" = "$want" ] || fail "the policy from standard input hashes differently"
sed 's/bb22/bb23/' release.json >changed.json
run 0 "$CLOISTER" policy hash --policy changed.json
[ "$(cat out.txt)" != "$want" ] || fail "a changed value kept the hash"
run 0 "$CLOISTER" policy check --policy release.json
has "hash: $want" out.txt

# ---- test: allow, deny, trace ------------------------------------------------------------------
run 0 "$CLOISTER" policy test --policy release.json --claims snp.json
has "decision: ALLOW" out.txt
has "reason:   allowed by anyOf[0] (authority 'https://attest.one.example/')" out.txt
has "policy:   release $want (sha-256, base64url)" out.txt
has "true   anyOf[0].allOf[1].anyOf[1]  claim 'x-ms-sevsnpvm-launchmeasurement' equals \"bb22\"  => holds (actual \"bb22\")" out.txt
has "false  anyOf[1]  authority 'https://attest.two.example'  => fails: issuer mismatch: the token's issuer is 'https://attest.one.example'" out.txt
[ "$(grep -c '=>' out.txt)" -eq 11 ] || fail "the trace has $(grep -c '=>' out.txt) nodes, want 11"

run 1 "$CLOISTER" policy test --policy release.json --claims snp-debug.json
has "decision: DENY" out.txt
has "reason:   denied at anyOf[0].allOf[2]: claim 'x-ms-sevsnpvm-is-debuggable' equals false: fails: actual true" out.txt
has "<== denial" out.txt
[ "$(grep -c '<== denial' out.txt)" -eq 1 ] || fail "more than one denial marker"

# Typed comparison: the string "false" is not the boolean false.
sed 's/"equals": false/"equals": "false"/' release.json >stringly.json
run 1 "$CLOISTER" policy test --policy stringly.json --claims snp.json
has "fails: type mismatch: expected string, got boolean (actual false)" out.txt

# Redaction hides every value, keeps names and paths.
run 1 "$CLOISTER" policy test --policy release.json --claims snp-debug.json --redact
lacks "bb22" out.txt
lacks "sevsnpvm\"" out.txt
has "claim 'x-ms-sevsnpvm-is-debuggable' equals <boolean>: fails: actual <boolean>" out.txt

# The issuer: from the claims unless --issuer says otherwise.
run 1 "$CLOISTER" policy test --policy release.json --claims snp.json --issuer https://evil.example
has "denied at anyOf[0]: authority 'https://attest.one.example/': fails: issuer mismatch: the token's issuer is 'https://evil.example' (and no other of the 2 authorities matches)" out.txt
run 0 "$CLOISTER" policy test --policy release.json --claims snp.json --issuer https://attest.one.example/

# JSON: parse it back with the policy engine itself, as claims, to check its structure.
run 1 "$CLOISTER" policy test --policy release.json --claims snp-debug.json --json
cp out.txt result.json
cat >check-result.json <<'EOF'
{"anyOf": [{"authority": "self", "allOf": [
  {"claim": "decision", "equals": "deny"},
  {"claim": "denial.path", "equals": "anyOf[0].allOf[2]"},
  {"claim": "denial.claim", "equals": "x-ms-sevsnpvm-is-debuggable"},
  {"claim": "denial.operator", "equals": "equals"},
  {"claim": "denial.outcome", "equals": "fails"},
  {"claim": "denial.expected", "equals": false},
  {"claim": "denial.actual", "equals": true},
  {"claim": "denial.actualType", "equals": "boolean"},
  {"claim": "trace", "exists": true},
  {"claim": "redacted", "exists": false}
]}]}
EOF
run 0 "$CLOISTER" policy test --policy check-result.json --claims result.json --issuer self
run 1 "$CLOISTER" policy test --policy release.json --claims snp-debug.json --json --redact
cp out.txt redacted.json
lacks "bb22" redacted.json
cat >check-redacted.json <<'EOF'
{"anyOf": [{"authority": "self", "allOf": [
  {"claim": "denial.redacted", "equals": true},
  {"claim": "denial.expected", "exists": false},
  {"claim": "denial.actual", "exists": false},
  {"claim": "denial.expectedType", "equals": "boolean"}
]}]}
EOF
run 0 "$CLOISTER" policy test --policy check-redacted.json --claims redacted.json --issuer self

# Bad claims files.
echo '[1,2]' >array.json
run 1 "$CLOISTER" policy test --policy release.json --claims array.json
has "the claims must be a JSON object" err.txt
echo '{"a":1,"a":2}' >dup.json
run 1 "$CLOISTER" policy test --policy release.json --claims dup.json
has "not valid JSON" err.txt

# ---- appraisal policies --------------------------------------------------------------------------
cat >appraisal.json <<'EOF'
{"version": "1.0.0",
 "authorizationRules": {"allOf": [
   {"claim": "x-cloister-sim-is-debuggable", "equals": false},
   {"claim": "x-cloister-sim-svn", "greaterOrEquals": 2}]},
 "referenceValues": {"sim": {"x-cloister-sim-mrenclave": ["a1a1", "b2b2"]}}}
EOF
echo '{"x-ms-attestation-type":"sim","x-cloister-sim-mrenclave":"b2b2","x-cloister-sim-is-debuggable":false,"x-cloister-sim-svn":2}' >sim.json
echo '{"x-ms-attestation-type":"sim","x-cloister-sim-mrenclave":"c3c3","x-cloister-sim-is-debuggable":false,"x-cloister-sim-svn":2}' >sim-bad.json
run 0 "$CLOISTER" policy test --kind appraisal --policy appraisal.json --claims sim.json
has "policy:   appraisal" out.txt
run 1 "$CLOISTER" policy test --kind=appraisal --policy=appraisal.json --claims=sim-bad.json
has "denied at referenceValues.sim[\"x-cloister-sim-mrenclave\"]: claim 'x-cloister-sim-mrenclave' oneOf [\"a1a1\",\"b2b2\"]: fails: actual \"c3c3\"" out.txt
run 0 "$CLOISTER" policy check --kind appraisal --policy appraisal.json
has "valid appraisal policy: 3 conditions" out.txt

# ---- tokens ------------------------------------------------------------------------------------
header=$(printf '{"alg":"RS256","kid":"k1","typ":"JWT"}' | b64url)
payload=$(b64url <snp.json)
unsigned_token="$header.$payload.AAAA"
run 0 "$CLOISTER" policy test --policy release.json --token "$unsigned_token" --no-verify
has "token:    UNVERIFIED (--no-verify): claims may be forged" out.txt
has "decision: ALLOW" out.txt
has "WARNING: the token's signature was NOT verified" err.txt
printf '%s\n' "$unsigned_token" >token.txt
run 0 "$CLOISTER" policy test --policy release.json --token @token.txt --no-verify
run 0 "$CLOISTER" policy test --policy release.json --token - --no-verify <token.txt
run 0 "$CLOISTER" policy test --policy release.json --token "$unsigned_token" --no-verify --json
has '"tokenVerified": false' out.txt
run 1 "$CLOISTER" policy test --policy release.json --token "not-a-token" --no-verify
has "not a token" err.txt
run 1 "$CLOISTER" policy test --policy release.json --token "$header.!!!.AAAA" --no-verify
has "not a token" err.txt

# Verified with a JWK set: an RSA key made here, the JWT signed with openssl (RS256).
quietly "openssl genpkey (key.pem)" \
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out key.pem
modulus=$(openssl rsa -in key.pem -noout -modulus | sed 's/^Modulus=//')
n=$(printf '%b' "$(printf '%s' "$modulus" | sed 's/../\\x&/g')" | b64url)
printf '{"keys":[{"kty":"RSA","kid":"k1","use":"sig","alg":"RS256","n":"%s","e":"AQAB"}]}' "$n" >jwks.json
sign() { # sign PAYLOAD_FILE -> token
    local p
    p=$(b64url <"$1")
    printf '%s' "$header.$p" >signing-input
    printf '%s.%s' "$header.$p" "$(openssl dgst -sha256 -sign key.pem signing-input | b64url)"
}
now=$(date +%s)
printf '{"iss":"https://attest.one.example","iat":%d,"exp":%d,"x-ms-attestation-type":"sevsnpvm","x-ms-sevsnpvm-launchmeasurement":"aa11","x-ms-sevsnpvm-is-debuggable":false}' \
    "$now" $((now + 3600)) >signed-claims.json
token=$(sign signed-claims.json)
run 0 "$CLOISTER" policy test --policy release.json --token "$token" --jwks jwks.json
has "token:    signature verified with the --jwks keys" out.txt
has "decision: ALLOW" out.txt
lacks "WARNING" err.txt
run 0 "$CLOISTER" policy test --policy release.json --token "$token" --jwks jwks.json --json
has '"tokenVerified": true' out.txt
# Another payload under the same signature: refused before any evaluation.
forged="$header.$(b64url <snp-debug.json).${token##*.}"
run 1 "$CLOISTER" policy test --policy release.json --token "$forged" --jwks jwks.json
has "the token does not verify" err.txt
lacks "decision" out.txt
# Expired.
printf '{"iss":"https://attest.one.example","exp":%d}' $((now - 7200)) >expired-claims.json
run 1 "$CLOISTER" policy test --policy release.json --token "$(sign expired-claims.json)" --jwks jwks.json
has "the token does not verify" err.txt
# A token naming an audience needs --audience.
printf '{"iss":"https://attest.two.example","aud":"vault","x-cloister-sim-svn":3}' >aud-claims.json
run 1 "$CLOISTER" policy test --policy release.json --token "$(sign aud-claims.json)" --jwks jwks.json
has "the token does not verify" err.txt
run 0 "$CLOISTER" policy test --policy release.json --token "$(sign aud-claims.json)" --jwks jwks.json --audience vault
has "allowed by anyOf[1] (authority 'https://attest.two.example')" out.txt
run 1 "$CLOISTER" policy test --policy release.json --token "$(sign aud-claims.json)" --jwks jwks.json --audience other
run 2 "$CLOISTER" policy test --policy release.json --claims snp.json --audience vault

echo "policy_cli: all checks passed"
