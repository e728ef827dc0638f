#!/usr/bin/env bash
# The attestation service end to end: `cloister serve --trust-sim` with a fresh sim platform,
# evidence from `cloister sim report`, the REST endpoints with curl, `cloister attest` and
# `cloister token verify`, node's crypto verifying the ES256 token independently (JWK and x5c),
# every bad input the issue lists, nonces (single use, expiry, replay across a restart),
# administration (reference values, policy set/get/reset, denials that name the rule), the JWT
# checklist against `cloister token verify`, and signing-key rotation with overlap.
#
# Needs: curl, openssl, node (>= 18, for its crypto module). Fails, never skips.
set -euo pipefail

CLOISTER=${CLOISTER:?set CLOISTER to the cloister binary}
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/serve.sh"
need_tools curl openssl node

work=$(mktemp -d)
server_pid=""
# A graceful stop must exit 0 (under ASan this also catches leaks and memory errors).
stop_server() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
        local rc=0
        wait "$server_pid" 2>/dev/null || rc=$?
        server_pid=""
        [ "$rc" = 0 ] || fail "cloister serve exited with status $rc after SIGTERM"
    fi
    server_pid=""
}
trap cleanup_server_and_work EXIT
on_fail() { # after the FAIL line
    [ -f "$work/serve.err" ] || return 0
    echo "---- cloister serve stderr (last 30 lines) ----" >&2
    tail -n 30 "$work/serve.err" >&2 || true
}
cd "$work"
data=$work/data
passed=0
ok() {
    passed=$((passed + 1))
    echo "ok $passed - $*"
}

# ---- node helpers: JSON access, independent JWT verification, forged tokens ------------------
cat >"$work/t.mjs" <<'EOF'
import crypto from 'node:crypto';
import fs from 'node:fs';
const [cmd, ...args] = process.argv.slice(2);
const b64u = (b) => Buffer.from(b).toString('base64url');
const read = (p) => fs.readFileSync(p, 'utf8').trim();
const get = (obj, path) => path.split('.').reduce((o, k) => (o == null ? undefined : o[k]), obj);
if (cmd === 'get') {            // get FILE PATH: prints a JSON member (strings raw)
    const v = get(JSON.parse(read(args[0])), args[1]);
    if (v === undefined) process.exit(3);
    console.log(typeof v === 'string' ? v : JSON.stringify(v));
} else if (cmd === 'claims') {  // claims TOKENFILE: the payload, unverified
    console.log(Buffer.from(read(args[0]).split('.')[1], 'base64url').toString());
} else if (cmd === 'verify') {  // verify TOKENFILE JWKSFILE ISSUER: ES256 with node's crypto
    const [h, p, s] = read(args[0]).split('.');
    const header = JSON.parse(Buffer.from(h, 'base64url'));
    const claims = JSON.parse(Buffer.from(p, 'base64url'));
    const jwks = JSON.parse(read(args[1]));
    if (header.alg !== 'ES256' || header.typ !== 'JWT') throw new Error('header ' + JSON.stringify(header));
    if (header.jku !== args[2] + '/certs') throw new Error('jku ' + header.jku);
    const jwk = jwks.keys.find((k) => k.kid === header.kid);
    if (!jwk) throw new Error('no key ' + header.kid);
    const key = crypto.createPublicKey({ key: jwk, format: 'jwk' });
    const good = crypto.verify('sha256', Buffer.from(h + '.' + p), { key, dsaEncoding: 'ieee-p1363' },
                               Buffer.from(s, 'base64url'));
    if (!good) throw new Error('bad signature');
    // The x5c certificate: self-signed, and its key is the JWK.
    const cert = new crypto.X509Certificate(Buffer.from(jwk.x5c[0], 'base64'));
    if (!cert.verify(cert.publicKey)) throw new Error('x5c is not self-signed');
    if (cert.publicKey.export({ format: 'jwk' }).x !== jwk.x) throw new Error('x5c key is not the JWK');
    const good2 = crypto.verify('sha256', Buffer.from(h + '.' + p),
                                { key: cert.publicKey, dsaEncoding: 'ieee-p1363' }, Buffer.from(s, 'base64url'));
    if (!good2) throw new Error('x5c key does not verify');
    if (claims.iss !== args[2]) throw new Error('iss ' + claims.iss);
    const now = Math.floor(Date.now() / 1000) + Number(args[3] || 0);
    if (!(claims.iat <= now + 60 && claims.nbf <= now + 60 && claims.exp > now)) throw new Error('times');
    console.log('node: ES256 signature and x5c verified, kid ' + header.kid);
} else if (cmd === 'forge') {   // forge TOKENFILE KIND [JWKSFILE]: tokens that must be refused
    const [h, p, s] = read(args[0]).split('.');
    const header = JSON.parse(Buffer.from(h, 'base64url'));
    const kind = args[1];
    let out;
    if (kind === 'none') {
        out = b64u(JSON.stringify({ ...header, alg: 'none' })) + '.' + p + '.';
    } else if (kind === 'hs256') {
        // HMAC "signed" with the service's public key as the secret (key confusion).
        const jwks = JSON.parse(read(args[2]));
        const pem = crypto.createPublicKey({ key: jwks.keys[0], format: 'jwk' }).export({ type: 'spki', format: 'pem' });
        const h2 = b64u(JSON.stringify({ ...header, alg: 'HS256' }));
        out = h2 + '.' + p + '.' + crypto.createHmac('sha256', pem).update(h2 + '.' + p).digest('base64url');
    } else if (kind === 'kid') {
        out = b64u(JSON.stringify({ ...header, kid: 'not-a-key' })) + '.' + p + '.' + s;
    } else if (kind === 'payload') {
        const c = JSON.parse(Buffer.from(p, 'base64url'));
        c['x-cloister-sim-svn'] = 99;
        out = h + '.' + b64u(JSON.stringify(c)) + '.' + s;
    } else if (kind === 'ownkey') {
        // Signed by a key of our own, announced in the header: never trusted.
        const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
        const h2 = b64u(JSON.stringify({ ...header, jwk: publicKey.export({ format: 'jwk' }) }));
        out = h2 + '.' + p + '.' + crypto.sign('sha256', Buffer.from(h2 + '.' + p),
                                             { key: privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url');
    } else throw new Error('kind');
    console.log(out);
} else if (cmd === 'body') {    // body EVIDENCE [RUNTIME TYPE] [NONCE] [EXTRA-JSON]: a request body
    const body = { report: fs.readFileSync(args[0]).toString('base64url') };
    if (args[1] && args[1] !== '-') body.runtimeData = { data: fs.readFileSync(args[1]).toString('base64url'), dataType: args[2] };
    if (args[3] && args[3] !== '-') body.nonce = args[3];
    if (args[4]) Object.assign(body, JSON.parse(args[4]));
    console.log(JSON.stringify(body));
} else if (cmd === 'patch') {   // patch IN OUT OFFSET HEXBYTE: evidence with one byte replaced
    const b = fs.readFileSync(args[0]);
    b[Number(args[2])] = parseInt(args[3], 16);
    fs.writeFileSync(args[1], b);
} else throw new Error('unknown ' + cmd);
EOF
t() { node "$work/t.mjs" "$@"; }

# ---- a sim platform, a second (untrusted) one, evidence ----------------------------------------
"$CLOISTER" sim init "$work/plat" >/dev/null || fail "cloister sim init $work/plat failed"
"$CLOISTER" sim init "$work/other" >/dev/null || fail "cloister sim init $work/other failed"
MR=$(printf 'a1%.0s' $(seq 48))
MS=$(printf '5a%.0s' $(seq 32))
printf '{"keys":[{"kty":"EC","crv":"P-256","kid":"tee","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}' >rt.json
report() { # report OUT PLATFORM RUNTIME [extra sim report args]
    local out=$1 plat=$2 rt=$3
    shift 3
    "$CLOISTER" sim report --platform "$plat" --mrenclave "$MR" --mrsigner "$MS" --product-id 1 \
        --svn 2 --runtime-data "$rt" -o "$out" "$@" >/dev/null ||
        fail "cloister sim report -o $out failed"
}
report ev.bin "$work/plat" rt.json
report ev-debug.bin "$work/plat" rt.json --debug
report ev-other.bin "$work/other" rt.json

# ---- the server ----------------------------------------------------------------------------------
# start_server [serve options...]: sets $server_pid and $url; serve.out and serve.err collect
# every start's output.
start_server() {
    serve_start --wait 10 --append-out --append-err "$work/serve.out" "$work/serve.err" \
        --data "$data" --listen 127.0.0.1:0 "$@"
}
start_server --trust-sim "$work/plat/root.pem"
grep -q "sim evidence (DEVELOPMENT-ONLY TEE)" "$work/serve.out" || fail "serve does not say it trusts a sim root"
ok "serve --trust-sim started on $url"
CURL=(curl -sS --cacert "$data/ca.pem" --max-time 30)
AV="api-version=2022-08-01"

# status BODYFILE METHOD PATH [curl args...]: prints the HTTP status, body to BODYFILE
status() {
    local out=$1 method=$2 path=$3
    shift 3
    "${CURL[@]}" -o "$out" -w '%{http_code}' -X "$method" "$url$path" "$@"
}
expect_error() { # expect_error STATUS TEXT BODYFILE METHOD PATH [curl args]
    local want=$1 text=$2
    shift 2
    local got
    got=$(status "$@")
    [ "$got" = "$want" ] || fail "$2 $3: status $got, want $want: $(cat "$1")"
    grep -q -- "$text" "$1" || fail "$2 $3: the error does not mention '$text': $(cat "$1")"
}

# ---- metadata: /certs with x5c, OpenID configuration ----------------------------------------------
[ "$(status certs.json GET /certs)" = 200 ] || fail "GET /certs"
[ "$(t get certs.json keys.0.kty)" = EC ] && [ "$(t get certs.json keys.0.crv)" = P-256 ] &&
    [ "$(t get certs.json keys.0.alg)" = ES256 ] && [ "$(t get certs.json keys.0.use)" = sig ] ||
    fail "/certs key: $(cat certs.json)"
t get certs.json keys.0.x5c.0 >/dev/null || fail "/certs key has no x5c"
t get certs.json keys.0.d >/dev/null && fail "/certs publishes a private key"
t get certs.json keys.0.x5c.0 | base64 -d >x5c.der
openssl x509 -inform DER -in x5c.der -noout -subject | grep -q "Cloister" || fail "x5c certificate"
openssl verify -CAfile <(openssl x509 -inform DER -in x5c.der) -partial_chain <(openssl x509 -inform DER -in x5c.der) >/dev/null ||
    fail "x5c is not self-signed"
ok "GET /certs: EC P-256 ES256 key with a self-signed x5c certificate, no private members"
[ "$(status oidc.json GET /.well-known/openid-configuration)" = 200 ] || fail "openid-configuration"
[ "$(t get oidc.json issuer)" = "$url" ] && [ "$(t get oidc.json jwks_uri)" = "$url/certs" ] ||
    fail "openid-configuration: $(cat oidc.json)"
t get oidc.json claims_supported | grep -q x-ms-runtime || fail "claims_supported lacks x-ms-runtime"
ok "GET /.well-known/openid-configuration: issuer, jwks_uri, claims_supported"

# ---- attest: CLI, curl, token verify, node ----------------------------------------------------------
"$CLOISTER" attest --type sim --evidence ev.bin --runtime-data rt.json --data "$data" >token.txt 2>attest.err ||
    fail "cloister attest: $(cat attest.err)"
grep -q "development-only" attest.err || fail "cloister attest does not say sim is development-only"
"$CLOISTER" token verify token.txt --jwks "$url/certs" --ca "$data/ca.pem" --issuer "$url" >verify.out 2>verify.err ||
    fail "cloister token verify: $(cat verify.err)"
grep -q '"sim"' verify.out && grep -q "x-cloister-sim-mrenclave" verify.out && grep -q "development-only" verify.err ||
    fail "token verify output: $(cat verify.out verify.err)"
t claims token.txt >claims.json
[ "$(t get claims.json x-ms-attestation-type)" = sim ] && [ "$(t get claims.json x-ms-ver)" = 1.0 ] &&
    [ "$(t get claims.json x-cloister-sim-mrenclave)" = "$MR" ] &&
    [ "$(t get claims.json x-cloister-sim-svn)" = 2 ] &&
    [ "$(t get claims.json x-cloister-sim-is-debuggable)" = false ] &&
    [ "$(t get claims.json x-ms-runtime.keys.0.kid)" = tee ] || fail "claims: $(cat claims.json)"
for c in iss iat nbf exp jti x-ms-policy-hash x-cloister-sim-mrsigner x-cloister-sim-product-id; do
    t get claims.json "$c" >/dev/null || fail "claim $c missing"
done
[ $(($(t get claims.json exp) - $(t get claims.json iat))) = 28800 ] || fail "default lifetime is not 8 h"
t verify token.txt certs.json "$url" || fail "node could not verify the token"
ok "cloister attest -> token; cloister token verify and node's crypto (JWK and x5c) verify it"
t body ev.bin rt.json JSON >body.json
[ "$(status resp.json POST "/attest/SimEnclave?$AV" -H 'Content-Type: application/json' --data-binary @body.json)" = 200 ] ||
    fail "curl attest: $(cat resp.json)"
t get resp.json token >token2.txt
"$CLOISTER" token verify token2.txt --jwks certs.json --issuer "$url" >/dev/null 2>&1 || fail "curl token"
t body ev.bin rt.json Binary >body.json
[ "$(status resp.json POST "/attest/SimEnclave?$AV" --data-binary @body.json)" = 200 ] || fail "binary runtime data"
t get resp.json token >token3.txt
t claims token3.txt >claims3.json
t get claims3.json x-ms-runtime >/dev/null && fail "binary runtime data must not be x-ms-runtime"
[ "$(t get claims3.json x-cloister-sim-ehd)" = "$(node -e "process.stdout.write(require('fs').readFileSync('rt.json').toString('base64url'))")" ] ||
    fail "x-cloister-sim-ehd"
ok "POST /attest/SimEnclave with curl: JSON and binary runtime data"

# ---- bad input ----------------------------------------------------------------------------------------
printf '{"keys":[]}' >rt-other.json
t body ev.bin rt-other.json JSON >b.json
expect_error 400 "evidence rejected" r.json POST "/attest/SimEnclave?$AV" --data-binary @b.json
t body ev-debug.bin rt.json JSON >b.json
expect_error 400 "debug" r.json POST "/attest/SimEnclave?$AV" --data-binary @b.json
t body ev-other.bin rt.json JSON >b.json
expect_error 400 "evidence rejected" r.json POST "/attest/SimEnclave?$AV" --data-binary @b.json
t patch ev.bin ev-v2.bin 4 02
t body ev-v2.bin rt.json JSON >b.json
expect_error 400 "version" r.json POST "/attest/SimEnclave?$AV" --data-binary @b.json
t patch ev.bin ev-res.bin 120 01
t body ev-res.bin rt.json JSON >b.json
expect_error 400 "reserved" r.json POST "/attest/SimEnclave?$AV" --data-binary @b.json
t patch ev.bin ev-alg.bin 6 02
t body ev-alg.bin rt.json JSON >b.json
expect_error 400 "algorithm" r.json POST "/attest/SimEnclave?$AV" --data-binary @b.json
size=$(stat -c %s ev.bin)
t patch ev.bin ev-sig.bin $((size - 1)) 00
t body ev-sig.bin rt.json JSON >b.json
expect_error 400 "evidence rejected" r.json POST "/attest/SimEnclave?$AV" --data-binary @b.json
head -c $((size - 1)) ev.bin >ev-cut.bin
t body ev-cut.bin rt.json JSON >b.json
expect_error 400 "evidence rejected" r.json POST "/attest/SimEnclave?$AV" --data-binary @b.json
head -c 5000 /dev/urandom >ev-big.bin
t body ev-big.bin rt.json JSON >b.json
expect_error 400 "too large" r.json POST "/attest/SimEnclave?$AV" --data-binary @b.json
ok "rejected: other runtime data, debug, untrusted platform, version, reserved bytes, signature algorithm, signature, truncation, oversized evidence"
head -c 300000 /dev/zero | tr '\0' 'a' >big.txt
expect_error 400 "request body" r.json POST "/attest/SimEnclave?$AV" --data-binary @big.txt
expect_error 400 "JSON object" r.json POST "/attest/SimEnclave?$AV" --data-binary 'not json'
t body ev.bin rt.json JSON - '{"draftPolicyForAttestation":"x"}' >b.json
expect_error 400 "draftPolicyForAttestation" r.json POST "/attest/SimEnclave?$AV" --data-binary @b.json
t body ev.bin rt.json JSON - '{"extra":1}' >b.json
expect_error 400 "unknown member" r.json POST "/attest/SimEnclave?$AV" --data-binary @b.json
t body ev.bin rt.json JSON - '{"quote":"AAAA"}' >b.json
expect_error 400 "exactly one" r.json POST "/attest/SimEnclave?$AV" --data-binary @b.json
t body ev.bin rt.json JSON - '{"initTimeData":{"data":"AAAA","dataType":"Binary"}}' >b.json
expect_error 400 "initTimeData" r.json POST "/attest/SimEnclave?$AV" --data-binary @b.json
t body ev.bin rt.json JSON >body.json
expect_error 400 "api-version" r.json POST "/attest/SimEnclave" --data-binary @body.json
expect_error 400 "api-version" r.json POST "/attest/SimEnclave?api-version=1999-01-01" --data-binary @body.json
expect_error 404 "unknown attestation type" r.json POST "/attest/NoSuchTee?$AV" --data-binary @body.json
expect_error 400 "start the service with --collateral DIR" r.json POST "/attest/SgxEnclave?$AV" --data-binary @body.json
expect_error 400 "start the service with --tpm-ak-roots PEM" r.json POST "/attest/Tpm?$AV" --data-binary @body.json
# Sim evidence is never verified as hardware (the SNP verifier refuses to parse it).
expect_error 400 "evidence rejected" r.json POST "/attest/SevSnpVm?$AV" --data-binary @body.json
ok "rejected: oversized body, not JSON, unsupported and unknown members, two evidence members, initTimeData, api-version, unknown type, unconfigured hardware types, sim evidence as SevSnpVm"

# ---- nonces: single use, bound, replay across a restart ----------------------------------------------
[ "$(status ch.json POST "/attest/challenge?$AV")" = 200 ] || fail "challenge: $(cat ch.json)"
nonce=$(t get ch.json nonce)
t get ch.json expiresAt | grep -qE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T' || fail "expiresAt"
printf '{"keys":[],"nonce":"%s"}' "$nonce" >rt-n.json
report ev-n.bin "$work/plat" rt-n.json
"$CLOISTER" attest --type sim --evidence ev.bin --runtime-data rt.json --nonce "$nonce" --data "$data" >/dev/null 2>a.err &&
    fail "a nonce not bound in the runtime data was accepted"
grep -q "not bound" a.err || fail "unbound nonce message: $(cat a.err)"
"$CLOISTER" attest --type sim --evidence ev-n.bin --runtime-data rt-n.json --nonce "$nonce" --data "$data" >tn.txt 2>a.err ||
    fail "attest with a nonce: $(cat a.err)"
t claims tn.txt >cn.json
[ "$(t get cn.json nonce)" = "$nonce" ] || fail "the token does not carry the nonce"
"$CLOISTER" attest --type sim --evidence ev-n.bin --runtime-data rt-n.json --nonce "$nonce" --data "$data" >/dev/null 2>a.err &&
    fail "a replayed nonce was accepted"
grep -q "already used" a.err || fail "replay message: $(cat a.err)"
fake=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA
printf '{"nonce":"%s"}' "$fake" >rt-f.json
report ev-f.bin "$work/plat" rt-f.json
"$CLOISTER" attest --type sim --evidence ev-f.bin --runtime-data rt-f.json --nonce "$fake" --data "$data" >/dev/null 2>a.err &&
    fail "a nonce the service never issued was accepted"
grep -q "unknown nonce" a.err || fail "unknown nonce message: $(cat a.err)"
ok "nonce: issued, bound, used once; replay, unbound and unknown nonces refused"
stop_server
start_server --trust-sim "$work/plat/root.pem"
"$CLOISTER" attest --type sim --evidence ev-n.bin --runtime-data rt-n.json --nonce "$nonce" --data "$data" >/dev/null 2>a.err &&
    fail "a used nonce was accepted after a restart"
grep -q "already used" a.err || fail "replay after restart: $(cat a.err)"
ok "nonce replay refused after a server restart"

# ---- untrusted sim root ---------------------------------------------------------------------------
stop_server
start_server
"$CLOISTER" attest --type sim --evidence ev.bin --runtime-data rt.json --data "$data" >/dev/null 2>a.err &&
    fail "sim evidence accepted without --trust-sim"
grep -q -- "--trust-sim" a.err || fail "untrusted sim message: $(cat a.err)"
stop_server
start_server --trust-sim "$work/other/root.pem"
"$CLOISTER" attest --type sim --evidence ev.bin --runtime-data rt.json --data "$data" >/dev/null 2>a.err &&
    fail "sim evidence accepted with another platform's root"
ok "sim evidence refused without --trust-sim (saying so) and with another sim root"
stop_server
start_server --trust-sim "$work/plat/root.pem" --token-lifetime 600

# ---- administration: reference values, policy, denials ----------------------------------------------
expect_error 401 "" r.json GET "/attest/refvals/SimEnclave?$AV"
expect_error 401 "" r.json GET "/policies/SimEnclave?$AV" -H "Authorization: Bearer not-a-token"
ok "administration needs a bearer token (401 without or with a wrong one)"
"$CLOISTER" attest refval list --type sim --data "$data" | grep -q "(none" || fail "refval list (empty)"
other_mr=$(printf 'b2%.0s' $(seq 48))
"$CLOISTER" attest refval add --type sim "$other_mr" --note "release 1" --data "$data" >/dev/null || fail "refval add"
"$CLOISTER" attest refval add --type sim "$other_mr" --data "$data" >/dev/null 2>&1 && fail "duplicate refval accepted"
"$CLOISTER" attest refval add --type sim "abc" --data "$data" >/dev/null 2>&1 && fail "short mrenclave accepted"
"$CLOISTER" attest --type sim --evidence ev.bin --runtime-data rt.json --data "$data" >/dev/null 2>a.err &&
    fail "a measurement outside the reference values was accepted"
grep -q "x-cloister-sim-mrenclave = \"$MR\" is not one of the 1 reference values" a.err || fail "refval denial: $(cat a.err)"
"$CLOISTER" attest refval add --type sim "${MR^^}" --data "$data" >/dev/null || fail "refval add (upper case)"
"$CLOISTER" attest refval list --type sim --data "$data" | grep -q "$MR" || fail "refval list shows lower case"
"$CLOISTER" attest --type sim --evidence ev.bin --runtime-data rt.json --data "$data" >tr.txt 2>a.err || fail "refval allow: $(cat a.err)"
"$CLOISTER" attest refval remove --type sim "$MR" --data "$data" >/dev/null || fail "refval remove"
"$CLOISTER" attest refval remove --type sim "$MR" --data "$data" >/dev/null 2>&1 && fail "removing twice succeeded"
"$CLOISTER" attest --type sim --evidence ev.bin --runtime-data rt.json --data "$data" >/dev/null 2>&1 &&
    fail "accepted after its reference value was removed"
"$CLOISTER" attest refval remove --type sim "$other_mr" --data "$data" >/dev/null || fail "refval remove 2"
ok "reference values: add/list/remove; a measurement not listed is denied with its value named"
"$CLOISTER" attest policy get --type sim --data "$data" >pol-default.json 2>pg.err || fail "policy get: $(cat pg.err)"
grep -q "the default" pg.err || fail "policy get does not say it is the default"
grep -q x-cloister-sim-is-debuggable pol-default.json || fail "default policy: $(cat pol-default.json)"
cat >pol.json <<'EOF'
{"version": "1.0.0",
 "authorizationRules": {"allOf": [{"claim": "x-ms-attestation-type", "equals": "sim"},
                                  {"claim": "x-cloister-sim-svn", "greaterOrEquals": 3}]}}
EOF
"$CLOISTER" attest policy set --type sim pol.json --data "$data" >ps.out || fail "policy set"
new_hash=$(sed -n 's/.*x-ms-policy-hash now //p' ps.out)
"$CLOISTER" attest --type sim --evidence ev.bin --runtime-data rt.json --data "$data" >/dev/null 2>a.err &&
    fail "the policy (svn >= 3) allowed svn 2"
grep -q "authorizationRules.allOf\[1\]" a.err && grep -q "x-cloister-sim-svn" a.err && grep -q "actual 2" a.err ||
    fail "the denial does not name the rule: $(cat a.err)"
printf '{"version":"1.0.0","authorizationRules":{"allOf":[{"claim":"x","equal":1}]}}' >bad-pol.json
"$CLOISTER" attest policy set --type sim bad-pol.json --data "$data" >/dev/null 2>a.err && fail "a bad policy was set"
grep -q "equal" a.err || fail "bad policy message: $(cat a.err)"
"$CLOISTER" sim report --platform "$work/plat" --mrenclave "$MR" --mrsigner "$MS" --product-id 1 \
    --svn 3 --runtime-data rt.json -o ev-svn3.bin >/dev/null ||
    fail "cloister sim report -o ev-svn3.bin failed"
"$CLOISTER" attest --type sim --evidence ev-svn3.bin --runtime-data rt.json --data "$data" >t3.txt 2>a.err || fail "svn 3: $(cat a.err)"
t claims t3.txt >c3.json
[ "$(t get c3.json x-ms-policy-hash)" = "$new_hash" ] || fail "x-ms-policy-hash is not the policy in force"
[ $(($(t get c3.json exp) - $(t get c3.json iat))) = 600 ] || fail "--token-lifetime 600 not applied"
# The cloud's policy shape: PUT an unsecured JWS {"AttestationPolicy": base64url(policy)}.
jws=$(node -e "const b=(s)=>Buffer.from(s).toString('base64url');process.stdout.write(b('{\"alg\":\"none\"}')+'.'+b(JSON.stringify({AttestationPolicy:b(require('fs').readFileSync('pol-default.json'))}))+'.')")
admin=$(cat "$data/admin-token")
[ "$(status pp.json PUT "/policies/SimEnclave?$AV" -H "Authorization: Bearer $admin" -H 'Content-Type: text/plain' --data-binary "$jws")" = 200 ] ||
    fail "PUT /policies with a JWS: $(cat pp.json)"
t get pp.json token >pt.txt
"$CLOISTER" token verify pt.txt --jwks "$url/certs" --ca "$data/ca.pem" >/dev/null 2>&1 || fail "policy result token"
[ "$(t claims pt.txt | node -e "process.stdout.write(JSON.parse(require('fs').readFileSync(0))['x-ms-policy-result'])")" = Updated ] ||
    fail "x-ms-policy-result"
"$CLOISTER" attest --type sim --evidence ev.bin --runtime-data rt.json --data "$data" >/dev/null 2>&1 || fail "after PUT JWS"
"$CLOISTER" attest policy set --type sim pol.json --data "$data" >/dev/null || fail "policy set again"
"$CLOISTER" attest policy reset --type sim --data "$data" >/dev/null || fail "policy reset"
"$CLOISTER" attest --type sim --evidence ev.bin --runtime-data rt.json --data "$data" >/dev/null 2>&1 || fail "after reset"
ok "policy: get (default), set (CLI JSON and the cloud's JWS form), denial naming the rule, reset; x-ms-policy-hash follows"

# ---- the JWT checklist against cloister token verify ----------------------------------------------
"${CURL[@]}" --fail-with-body -o certs.json "$url/certs" || fail "GET /certs: $(cat certs.json)"
"$CLOISTER" attest --type sim --evidence ev.bin --runtime-data rt.json --data "$data" \
    >tok.txt 2>a.err || fail "cloister attest: $(cat a.err)"
"$CLOISTER" token verify tok.txt --jwks certs.json --issuer "$url" >/dev/null 2>&1 || fail "fresh token"
refuse() { # refuse WHY TOKENFILE [options]: token verify must exit 1
    local why=$1 tf=$2
    shift 2
    if "$CLOISTER" token verify "$tf" --jwks certs.json "$@" >/dev/null 2>r.err; then
        fail "token verify accepted $why"
    fi
    grep -q "token refused" r.err || fail "$why: $(cat r.err)"
}
for kind in none hs256 kid payload ownkey; do
    t forge tok.txt "$kind" certs.json >forged.txt
    refuse "a forged token ($kind)" forged.txt --issuer "$url"
done
iat=$(t claims tok.txt | node -e "process.stdout.write(String(JSON.parse(require('fs').readFileSync(0)).iat))")
refuse "an expired token" tok.txt --time $((iat + 600 + 3600))
refuse "a token not yet valid" tok.txt --time $((iat - 3600))
refuse "a token of another issuer" tok.txt --issuer https://evil.example
"$CLOISTER" token verify tok.txt --jwks certs.json --time $((iat + 300)) >/dev/null 2>&1 || fail "token within its lifetime"
ok "token verify refuses alg none, HMAC with the public key, an unknown kid, a changed payload, a key from the header, expired, not yet valid, wrong issuer"

# ---- an expired nonce (fixed test clock) ------------------------------------------------------------
stop_server
now=$(date +%s)
start_server --trust-sim "$work/plat/root.pem" --test-fixed-time "$now"
grep -q "test-fixed-time" "$work/serve.err" || fail "serve does not warn about --test-fixed-time"
[ "$(status ch.json POST "/attest/challenge?$AV")" = 200 ] || fail "challenge"
nonce=$(t get ch.json nonce)
[ "$(t get ch.json expiresOn)" = $((now + 300)) ] || fail "a nonce lives 300 s: $(cat ch.json)"
printf '{"nonce":"%s"}' "$nonce" >rt-e.json
report ev-e.bin "$work/plat" rt-e.json
stop_server
start_server --trust-sim "$work/plat/root.pem" --test-fixed-time $((now + 300))
"$CLOISTER" attest --type sim --evidence ev-e.bin --runtime-data rt-e.json --nonce "$nonce" --data "$data" >/dev/null 2>a.err &&
    fail "an expired nonce was accepted"
grep -q "expired" a.err || fail "expired nonce message: $(cat a.err)"
ok "an expired nonce is refused"

# ---- signing-key rotation with overlap (fixed test clock) ------------------------------------------
stop_server
start_server --trust-sim "$work/plat/root.pem" --test-fixed-time "$now"
"${CURL[@]}" --fail-with-body -o k0.json "$url/certs" || fail "GET /certs: $(cat k0.json)"
kid0=$(t get k0.json keys.0.kid)
stop_server
t_pre=$((now + 30 * 86400 - 3600)) # inside the last day of the first key's period
start_server --trust-sim "$work/plat/root.pem" --test-fixed-time "$t_pre"
"${CURL[@]}" --fail-with-body -o k1.json "$url/certs" || fail "GET /certs: $(cat k1.json)"
[ "$(t get k1.json keys.0.kid)" = "$kid0" ] || fail "the first key should still sign"
kid1=$(t get k1.json keys.1.kid) || fail "the next key is not published before it signs: $(cat k1.json)"
stop_server
t_post=$((now + 30 * 86400 + 3600))
start_server --trust-sim "$work/plat/root.pem" --test-fixed-time "$t_post"
"${CURL[@]}" --fail-with-body -o k2.json "$url/certs" || fail "GET /certs: $(cat k2.json)"
[ "$(t get k2.json keys.0.kid)" = "$kid1" ] || fail "the next key does not sign after rotation"
[ "$(t get k2.json keys.1.kid)" = "$kid0" ] || fail "the old key is not published after rotation: $(cat k2.json)"
"$CLOISTER" attest --type sim --evidence ev.bin --runtime-data rt.json --data "$data" >tk.txt 2>/dev/null || fail "attest after rotation"
"$CLOISTER" token verify tk.txt --jwks k2.json --time "$t_post" >/dev/null 2>&1 || fail "token after rotation"
stop_server
start_server --trust-sim "$work/plat/root.pem" --test-fixed-time $((now + 31 * 86400))
"${CURL[@]}" --fail-with-body -o k3.json "$url/certs" || fail "GET /certs: $(cat k3.json)"
t get k3.json keys.1.kid >/dev/null && fail "the old key is still published a day after rotation"
ok "rotation: the next key is published before it signs, the old one stays published for a token lifetime"
stop_server

echo "attest_service: $passed passed, 0 failed"
