#!/usr/bin/env bash
# Secure key release end to end: `cloister serve --trust-sim` (which trusts its own attestation
# service) plus a second, file-configured authority; a sim TEE with an RSA key in its runtime
# data gets a token from POST /attest/SimEnclave; an exportable key with a release policy pinned
# to x-cloister-sim-mrenclave is released, and node's crypto alone (plus `openssl verify` for the
# certificate) checks the JWS and unwraps key_hsm with the TEE's private key: the released key
# decrypts what the vault encrypts. Then every refusal: another mrenclave (403 naming the claim),
# dry runs, forged / expired / not-yet-valid / untrusted / alg-none / HMAC tokens, an EC-only and
# a key-less runtime, a nonce that does not match, a non-exportable key, an immutable policy
# update; a hardware (SEV-SNP) policy with a token from the second authority and the sim token
# against it; the decision log; and the official SDK's releaseKey (sdk/release.test.mjs).
#
# Needs: curl, openssl, node (>= 20) and the SDK packages of sdk/ (npm ci as sdk_interop.sh does).
# Fails, never skips.
set -euo pipefail

CLOISTER=${CLOISTER:?set CLOISTER to the cloister binary}
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/serve.sh"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
sdk=$here/sdk
need_tools curl openssl node

work=$(mktemp -d)
server_pid=""
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

# ---- node helpers ------------------------------------------------------------------------------
cat >"$work/t.mjs" <<'EOF'
import crypto from 'node:crypto';
import fs from 'node:fs';
const [cmd, ...args] = process.argv.slice(2);
const read = (p) => fs.readFileSync(p, 'utf8').trim();
const b64u = (b) => Buffer.from(b).toString('base64url');
const get = (obj, path) => path.split('.').reduce((o, k) => (o == null ? undefined : o[k]), obj);
const OAEP = { CKM_RSA_AES_KEY_WRAP: 'sha1', RSA_AES_KEY_WRAP_256: 'sha256', RSA_AES_KEY_WRAP_384: 'sha384' };
if (cmd === 'get') {                 // get FILE PATH
    const v = get(JSON.parse(read(args[0])), args[1]);
    if (v === undefined) process.exit(3);
    console.log(typeof v === 'string' ? v : JSON.stringify(v));
} else if (cmd === 'runtime') {      // runtime PEM KIND(rsa|ec|none) OUT: {"keys":[public JWK]}
    let rt;
    if (args[1] === 'none') {
        rt = { purpose: 'no keys here' };
    } else {
        const jwk = crypto.createPublicKey(read(args[0])).export({ format: 'jwk' });
        rt = { keys: [{ ...jwk, kid: 'tee-' + args[1], key_ops: ['encrypt'] }] };
    }
    fs.writeFileSync(args[2], JSON.stringify(rt));
} else if (cmd === 'authority') {    // authority DIR KID: a P-256 key and its JWKS
    const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
    fs.writeFileSync(args[0] + '/key.pem', privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const jwk = { ...publicKey.export({ format: 'jwk' }), kid: args[1], alg: 'ES256', use: 'sig' };
    fs.writeFileSync(args[0] + '/jwks.json', JSON.stringify({ keys: [jwk] }));
} else if (cmd === 'jwt') {          // jwt KEYPEM KID ISS TEEPEM TYPE EXP_OFFSET NBF_OFFSET [ALG]
    const [keyPem, kid, iss, teePem, type, expOff, nbfOff, alg = 'ES256'] = args;
    const now = Math.floor(Date.now() / 1000);
    const jwk = crypto.createPublicKey(read(teePem)).export({ format: 'jwk' });
    const claims = {
        iss, iat: now - 5, nbf: now + Number(nbfOff), exp: now + Number(expOff), jti: crypto.randomBytes(8).toString('hex'),
        'x-ms-attestation-type': type, 'x-ms-sevsnpvm-is-debuggable': false,
        'x-ms-sevsnpvm-launchmeasurement': 'ab'.repeat(48),
        'x-ms-runtime': { keys: [{ ...jwk, kid: 'snp-tee', key_ops: ['encrypt'] }] },
    };
    const h = b64u(JSON.stringify({ alg, kid, typ: 'JWT' }));
    const p = b64u(JSON.stringify(claims));
    let sig;
    if (alg === 'ES256') {
        sig = crypto.sign('sha256', Buffer.from(h + '.' + p), { key: crypto.createPrivateKey(read(keyPem)), dsaEncoding: 'ieee-p1363' });
    } else if (alg === 'HS256') {    // keyed with the authority's public JWKS text (the confusion)
        sig = crypto.createHmac('sha256', read(keyPem)).update(h + '.' + p).digest();
    } else {
        sig = Buffer.alloc(0);
    }
    console.log(h + '.' + p + '.' + b64u(sig));
} else if (cmd === 'open') {         // open RELEASE.json TEEPEM OUTDIR: verify the JWS, unwrap key_hsm
    const jws = JSON.parse(read(args[0])).value;
    const [h, p, s] = jws.split('.');
    const header = JSON.parse(Buffer.from(h, 'base64url'));
    if (header.alg !== 'RS256') throw new Error('alg ' + header.alg);
    const leaf = new crypto.X509Certificate(Buffer.from(header.x5c[0], 'base64'));
    fs.writeFileSync(args[2] + '/leaf.pem', leaf.toString());
    if (!crypto.verify('sha256', Buffer.from(h + '.' + p), leaf.publicKey, Buffer.from(s, 'base64url')))
        throw new Error('the release JWS does not verify with its x5c leaf');
    const payload = JSON.parse(Buffer.from(p, 'base64url'));
    fs.writeFileSync(args[2] + '/payload.json', JSON.stringify(payload));
    const kh = JSON.parse(Buffer.from(payload.response.key.key.key_hsm, 'base64url'));
    if (kh.header.alg !== 'dir' || kh.header.enc !== payload.request.enc || kh.schema_version !== '1.0')
        throw new Error('key_hsm header ' + JSON.stringify(kh));
    const ct = Buffer.from(kh.ciphertext, 'base64url');
    const tee = crypto.createPrivateKey(read(args[1]));
    const mod = tee.asymmetricKeyDetails.modulusLength / 8;
    const aes = crypto.privateDecrypt({ key: tee, padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: OAEP[payload.request.enc] }, ct.subarray(0, mod));
    const d = crypto.createDecipheriv('id-aes256-wrap-pad', aes, Buffer.from('A65959A6', 'hex'));
    const material = Buffer.concat([d.update(ct.subarray(mod)), d.final()]);
    fs.writeFileSync(args[2] + '/material.der', material);
    console.log(kh.header.kid);
} else if (cmd === 'decrypt') {      // decrypt MATERIAL.der ENC.json: RSA-OAEP-256 with the released key
    const key = crypto.createPrivateKey({ key: fs.readFileSync(args[0]), format: 'der', type: 'pkcs8' });
    const enc = JSON.parse(read(args[1]));
    process.stdout.write(crypto.privateDecrypt({ key, padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, Buffer.from(enc.value, 'base64url')));
} else if (cmd === 'flip') {         // flip TOKENFILE: one character of the signature changed
    const t = read(args[0]);
    const i = t.length - 3;
    console.log(t.slice(0, i) + (t[i] === 'A' ? 'B' : 'A') + t.slice(i + 1));
} else {
    throw new Error('unknown helper command ' + cmd);
}
EOF
js() { node "$work/t.mjs" "$@"; }

"$CLOISTER" serve --help 2>/dev/null | grep -q -- '--trust-authority' ||
    fail "this cloister serve has no key release options (--trust-authority): the serve wiring of the release engine is missing"

# ---- a sim platform, a second authority, the server ---------------------------------------------
"$CLOISTER" sim init "$work/simplat" >/dev/null || fail "cloister sim init"
mkdir -p "$work/auth" "$work/stranger"
js authority "$work/auth" snp-1
js authority "$work/stranger" snp-1 # the same kid, another key
snp_iss=https://snp-attestation.example
# A fixed issuer for this server's own tokens, so that they stay valid across the restart below.
iss=https://attest.key-release.test
start_server() {
    serve_start "$work/serve.out" "$work/serve.err" \
        --data "$data" --listen 127.0.0.1:0 --trust-sim "$work/simplat/root.pem" \
        --issuer "$iss" --trust-authority "$snp_iss=$work/auth/jwks.json" "$@"
}
stop_server() {
    kill -TERM "$server_pid"
    local rc=0
    wait "$server_pid" || rc=$?
    server_pid=""
    [ "$rc" = 0 ] || fail "cloister serve exited $rc on SIGTERM"
}
start_server
grep -q "key release: trusting this server's attestation service and 1 other" "$work/serve.out" ||
    fail "serve does not say which authorities key release trusts: $(cat "$work/serve.out")"
ca=$data/ca.pem
admin=$(cat "$data/admin-token")
ok "serve trusts its own attestation service and $snp_iss"

# call METHOD PATH [BODYFILE] -> body in $work/resp, status echoed
call() {
    local method=$1 path=$2 body=${3:-}
    local sep='?'
    case "$path" in *\?*) sep='&' ;; esac
    if [ -n "$body" ]; then
        curl -sS --cacert "$ca" -o "$work/resp" -w '%{http_code}' -X "$method" \
            -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' \
            --data-binary "@$body" "$url$path${sep}api-version=7.6"
    else
        curl -sS --cacert "$ca" -o "$work/resp" -w '%{http_code}' -X "$method" \
            -H "Authorization: Bearer $admin" "$url$path${sep}api-version=7.6"
    fi
}
expect() { # expect STATUS METHOD PATH [BODY] -- what
    local want=$1
    shift
    local got
    got=$(call "$@")
    [ "$got" = "$want" ] || fail "$2 $3 answered $got, want $want: $(cat "$work/resp")"
}

# ---- the TEE: an RSA key in its runtime data, sim evidence, a token ---------------------------
quietly "openssl genpkey (tee.pem)" \
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$work/tee.pem"
quietly "openssl genpkey (tee-ec.pem)" \
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/tee-ec.pem"
mre1=$(printf 'a1%.0s' $(seq 1 48))
mre2=$(printf 'b2%.0s' $(seq 1 48))
mrs=$(printf 'c3%.0s' $(seq 1 32))
attest_token() { # attest_token MRENCLAVE RUNTIME.json OUT
    "$CLOISTER" sim report --platform "$work/simplat" --mrenclave "$1" --mrsigner "$mrs" \
        --product-id 1 --svn 2 --runtime-data "$2" -o "$work/ev.bin" >/dev/null 2>"$work/sim.err" ||
        fail "cloister sim report: $(cat "$work/sim.err")"
    local b64 rt
    b64=$(base64 -w0 <"$work/ev.bin" | tr '+/' '-_' | tr -d '=')
    rt=$(base64 -w0 <"$2" | tr '+/' '-_' | tr -d '=')
    printf '{"report":"%s","runtimeData":{"data":"%s","dataType":"JSON"}}' "$b64" "$rt" >"$work/att.json"
    local st
    st=$(curl -sS --cacert "$ca" -o "$work/att.out" -w '%{http_code}' -X POST \
        -H 'Content-Type: application/json' --data-binary "@$work/att.json" \
        "$url/attest/SimEnclave?api-version=2022-08-01")
    [ "$st" = 200 ] || fail "POST /attest/SimEnclave answered $st: $(cat "$work/att.out")"
    js get "$work/att.out" token >"$3"
}
js runtime "$work/tee.pem" rsa "$work/rt-rsa.json"
js runtime "$work/tee-ec.pem" ec "$work/rt-ec.json"
js runtime "$work/tee.pem" none "$work/rt-none.json"
attest_token "$mre1" "$work/rt-rsa.json" "$work/token1"
attest_token "$mre2" "$work/rt-rsa.json" "$work/token2"
attest_token "$mre1" "$work/rt-ec.json" "$work/token-ec"
attest_token "$mre1" "$work/rt-none.json" "$work/token-none"
ok "sim tokens from POST /attest/SimEnclave (RSA, EC-only and key-less runtime data)"

# ---- an exportable key whose release policy pins the sim enclave ------------------------------
cat >"$work/policy.json" <<EOF
{"version":"1.0.0","anyOf":[{"authority":"$iss","allOf":[
  {"claim":"x-ms-attestation-type","equals":"sim"},
  {"claim":"x-cloister-sim-is-debuggable","equals":false},
  {"claim":"x-cloister-sim-mrenclave","equals":"$mre1"}]}]}
EOF
pol64=$(base64 -w0 <"$work/policy.json" | tr '+/' '-_' | tr -d '=')
printf '{"kty":"RSA","key_size":2048,"attributes":{"exportable":true},"release_policy":{"data":"%s"}}' \
    "$pol64" >"$work/create.json"
expect 200 POST /keys/skr/create "$work/create.json"
kid=$(js get "$work/resp" key.kid)
version=${kid##*/}
ok "created exportable key skr ($version) with a release policy"

# ---- release, verified and unwrapped independently ---------------------------------------------
release_body() { # release_body TOKENFILE [NONCE] [ENC] -> $work/rel.json
    local extra=""
    [ -n "${2:-}" ] && extra="$extra,\"nonce\":\"$2\""
    [ -n "${3:-}" ] && extra="$extra,\"enc\":\"$3\""
    printf '{"target":"%s"%s}' "$(cat "$1")" "$extra" >"$work/rel.json"
}
release_body "$work/token1"
expect 200 POST /keys/skr/release "$work/rel.json"
cp "$work/resp" "$work/release1.json"
mkdir -p "$work/open"
teekid=$(js open "$work/release1.json" "$work/tee.pem" "$work/open") || fail "node could not open the release"
[ "$teekid" = tee-rsa ] || fail "key_hsm names TEE key '$teekid', want tee-rsa"
openssl verify -CAfile "$ca" "$work/open/leaf.pem" >/dev/null 2>&1 ||
    fail "the release-signing certificate does not chain to the vault's CA"
[ "$(js get "$work/open/payload.json" response.key.key.kid)" = "$kid" ] || fail "released kid"
js get "$work/open/payload.json" response.key.key.d >/dev/null 2>&1 && fail "the payload has a private member"
[ "$(js get "$work/open/payload.json" request.enc)" = CKM_RSA_AES_KEY_WRAP ] || fail "default enc"
ok "release JWS verified by node (RS256, x5c chains to ca.pem per openssl) and key_hsm unwrapped"
printf '{"alg":"RSA-OAEP-256","value":"%s"}' "$(printf 'attested eyes only' | base64 -w0 | tr '+/' '-_' | tr -d '=')" >"$work/enc.json"
expect 200 POST "/keys/skr/$version/encrypt" "$work/enc.json"
[ "$(js decrypt "$work/open/material.der" "$work/resp")" = "attested eyes only" ] ||
    fail "the released key does not decrypt what the vault encrypted"
# the same with openssl: the released PKCS#8 is the vault key's private half
openssl pkey -inform DER -in "$work/open/material.der" -out "$work/released.pem" 2>/dev/null ||
    fail "openssl cannot read the released PKCS#8"
node -e 'process.stdout.write(Buffer.from(process.argv[1], "base64url"))' \
    "$(js get "$work/resp" value)" >"$work/ct.bin"
[ "$(openssl pkeyutl -decrypt -inkey "$work/released.pem" -in "$work/ct.bin" \
    -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256)" = "attested eyes only" ] ||
    fail "openssl: the released key does not decrypt what the vault encrypted"
ok "the released key decrypts what the vault encrypts (node and openssl)"

# the TEE-side tool: cloister key release (verifies the JWS against the pinned CA, unwraps)
"$CLOISTER" key release skr --url "$url" --ca "$ca" --token-file "$data/admin-token" \
    --token "$work/token1" --tee-key "$work/tee.pem" -o "$work/released.jwk" 2>"$work/cli.err" ||
    fail "cloister key release: $(cat "$work/cli.err")"
[ "$(stat -c %a "$work/released.jwk")" = 600 ] || fail "the released JWK is not 0600"
node -e '
const crypto = require("crypto"), fs = require("fs");
const jwk = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
if (!jwk.d || jwk.kid !== process.argv[3]) throw new Error("not the private key " + jwk.kid);
const der = crypto.createPrivateKey({ key: jwk, format: "jwk" }).export({ type: "pkcs8", format: "der" });
if (!der.equals(fs.readFileSync(process.argv[2]))) throw new Error("another key");
' "$work/released.jwk" "$work/open/material.der" "$kid" || fail "the CLI's JWK is not the released key"
quietly "openssl genpkey (other-tee.pem)" \
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$work/other-tee.pem"
if "$CLOISTER" key release skr --url "$url" --ca "$ca" --token-file "$data/admin-token" \
    --token "$work/token1" --tee-key "$work/other-tee.pem" -o "$work/nope.jwk" 2>"$work/cli.err"; then
    fail "cloister key release unwrapped with a key that is not the TEE's"
fi
grep -q 'does not unwrap' "$work/cli.err" || fail "wrong TEE key message: $(cat "$work/cli.err")"
if "$CLOISTER" key release skr --url "$url" --ca "$work/simplat/root.pem" --token-file "$data/admin-token" \
    --token "$work/token1" --tee-key "$work/tee.pem" -o "$work/nope.jwk" 2>"$work/cli.err"; then
    fail "cloister key release accepted a server it does not pin"
fi
ok "cloister key release verifies, unwraps and writes the key (0600); a wrong TEE key fails"

# keys that never leave: unwrapkey for a recipient TEE
dek=$(node -e 'process.stdout.write(require("crypto").randomBytes(32).toString("base64url"))')
printf '{"alg":"RSA-OAEP-256","value":"%s"}' "$dek" >"$work/wrap.json"
expect 200 POST "/keys/skr/$version/wrapkey" "$work/wrap.json"
wrapped=$(js get "$work/resp" value)
printf '{"alg":"RSA-OAEP-256","value":"%s","target":"%s"}' "$wrapped" "$(cat "$work/token1")" >"$work/unwrap.json"
expect 200 POST "/keys/skr/$version/unwrapkey" "$work/unwrap.json"
js get "$work/resp" value >/dev/null 2>&1 && fail "unwrapkey for a recipient returned the plaintext"
[ "$(js get "$work/resp" recipient)" = tee-rsa ] || fail "recipient: $(cat "$work/resp")"
node -e '
const crypto = require("crypto"), fs = require("fs");
const r = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
const ct = Buffer.from(r.ciphertextForRecipient, "base64url");
const tee = crypto.createPrivateKey(fs.readFileSync(process.argv[2]));
const aes = crypto.privateDecrypt({ key: tee, padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha1" }, ct.subarray(0, 256));
const d = crypto.createDecipheriv("id-aes256-wrap-pad", aes, Buffer.from("A65959A6", "hex"));
const dek = Buffer.concat([d.update(ct.subarray(256)), d.final()]);
if (dek.toString("base64url") !== process.argv[3]) throw new Error("another DEK");
' "$work/resp" "$work/tee.pem" "$dek" || fail "the TEE could not open ciphertextForRecipient"
printf '{"alg":"RSA-OAEP-256","value":"%s","target":"%s"}' "$wrapped" "$(cat "$work/token2")" >"$work/unwrap.json"
expect 403 POST "/keys/skr/$version/unwrapkey" "$work/unwrap.json"
[ "$(js get "$work/resp" error.denial.stage)" = policy ] || fail "recipient denial: $(cat "$work/resp")"
ok "unwrapkey with a target: the DEK reaches only the TEE (node unwraps it); another enclave: 403"

for enc in RSA_AES_KEY_WRAP_256 RSA_AES_KEY_WRAP_384; do
    release_body "$work/token1" "" "$enc"
    expect 200 POST "/keys/skr/$version/release" "$work/rel.json"
    cp "$work/resp" "$work/rel-$enc.json"
    rm -rf "$work/open2" && mkdir -p "$work/open2"
    js open "$work/rel-$enc.json" "$work/tee.pem" "$work/open2" >/dev/null || fail "open $enc"
    cmp -s "$work/open/material.der" "$work/open2/material.der" || fail "$enc released other material"
done
ok "RSA_AES_KEY_WRAP_256 and _384 on /keys/skr/{version}/release give the same material"

# ---- refusals -------------------------------------------------------------------------------------
release_body "$work/token2"
expect 403 POST /keys/skr/release "$work/rel.json"
grep -q 'anyOf\[0\].allOf\[2\]' "$work/resp" || fail "the denial does not name the path: $(cat "$work/resp")"
[ "$(js get "$work/resp" error.denial.denial.claim)" = x-cloister-sim-mrenclave ] || fail "claim"
[ "$(js get "$work/resp" error.denial.denial.expected)" = "$mre1" ] || fail "expected value"
[ "$(js get "$work/resp" error.denial.denial.actual)" = "$mre2" ] || fail "actual value"
ok "another mrenclave: 403 naming anyOf[0].allOf[2], the claim, expected and actual"

expect 200 POST '/keys/skr/release?dryRun=true' "$work/rel.json"
[ "$(js get "$work/resp" decision)" = deny ] || fail "dry run decision: $(cat "$work/resp")"
js get "$work/resp" trace >/dev/null || fail "the dry run has no trace"
release_body "$work/token1"
expect 200 POST '/keys/skr/release?dryRun=true' "$work/rel.json"
[ "$(js get "$work/resp" decision)" = allow ] || fail "dry run allow"
js get "$work/resp" value >/dev/null 2>&1 && fail "a dry run released something"
ok "dryRun explains both decisions and releases nothing"

js flip "$work/token1" >"$work/token-forged"
release_body "$work/token-forged"
expect 403 POST /keys/skr/release "$work/rel.json"
[ "$(js get "$work/resp" error.denial.stage)" = token ] || fail "forged: $(cat "$work/resp")"
ok "a forged token: 403 at the token stage"

for t in ec none; do
    release_body "$work/token-$t"
    expect 403 POST /keys/skr/release "$work/rel.json"
    [ "$(js get "$work/resp" error.denial.stage)" = tee-key ] || fail "$t runtime: $(cat "$work/resp")"
done
ok "EC-only and key-less runtime data: 403 at the tee-key stage"

release_body "$work/token1" "a-fresh-nonce"
expect 403 POST /keys/skr/release "$work/rel.json"
[ "$(js get "$work/resp" error.denial.stage)" = nonce ] || fail "nonce: $(cat "$work/resp")"
ok "a request nonce the token does not carry (a replay): 403 at the nonce stage"

# the second authority: a hardware (SEV-SNP) policy
cat >"$work/snp-policy.json" <<EOF
{"version":"1.0.0","anyOf":[{"authority":"$snp_iss","allOf":[
  {"claim":"x-ms-attestation-type","equals":"sevsnpvm"},
  {"claim":"x-ms-sevsnpvm-is-debuggable","equals":false}]}]}
EOF
pol64=$(base64 -w0 <"$work/snp-policy.json" | tr '+/' '-_' | tr -d '=')
printf '{"kty":"oct","key_size":256,"attributes":{"exportable":true},"release_policy":{"data":"%s"}}' \
    "$pol64" >"$work/create-snp.json"
expect 200 POST /keys/snpkey/create "$work/create-snp.json"
js jwt "$work/auth/key.pem" snp-1 "$snp_iss" "$work/tee.pem" sevsnpvm 600 -10 >"$work/tok-snp"
release_body "$work/tok-snp"
expect 200 POST /keys/snpkey/release "$work/rel.json"
cp "$work/resp" "$work/release-snp.json"
rm -rf "$work/open3" && mkdir -p "$work/open3"
[ "$(js open "$work/release-snp.json" "$work/tee.pem" "$work/open3")" = snp-tee ] || fail "snp open"
[ "$(stat -c %s "$work/open3/material.der")" = 32 ] || fail "an AES-256 key is 32 bytes"
ok "a SEV-SNP token from the file-configured authority releases a key under a hardware policy"
release_body "$work/token1"
expect 403 POST /keys/snpkey/release "$work/rel.json"
[ "$(js get "$work/resp" error.denial.stage)" = policy ] || fail "sim vs hardware: $(cat "$work/resp")"
ok "the sim token against the hardware policy: denied"

js jwt "$work/auth/key.pem" snp-1 "$snp_iss" "$work/tee.pem" sevsnpvm -3600 -7200 >"$work/tok-exp"
js jwt "$work/auth/key.pem" snp-1 "$snp_iss" "$work/tee.pem" sevsnpvm 7200 3600 >"$work/tok-nbf"
js jwt "$work/stranger/key.pem" snp-1 "$snp_iss" "$work/tee.pem" sevsnpvm 600 -10 >"$work/tok-stranger"
js jwt "$work/stranger/key.pem" snp-1 https://untrusted.example "$work/tee.pem" sevsnpvm 600 -10 >"$work/tok-untrusted"
js jwt "$work/auth/key.pem" snp-1 "$snp_iss" "$work/tee.pem" sevsnpvm 600 -10 none >"$work/tok-none"
js jwt "$work/auth/jwks.json" snp-1 "$snp_iss" "$work/tee.pem" sevsnpvm 600 -10 HS256 >"$work/tok-hmac"
js jwt "$work/auth/key.pem" snp-9 "$snp_iss" "$work/tee.pem" sevsnpvm 600 -10 >"$work/tok-kid"
for t in exp:expired nbf:'not valid before' stranger:'not valid' untrusted:'not a trusted' none:'' hmac:'' kid:'unknown kid'; do
    name=${t%%:*}
    needle=${t#*:}
    release_body "$work/tok-$name"
    expect 403 POST /keys/snpkey/release "$work/rel.json"
    [ "$(js get "$work/resp" error.denial.stage)" = token ] || fail "$name: $(cat "$work/resp")"
    [ -z "$needle" ] || grep -q "$needle" "$work/resp" || fail "$name: no '$needle' in $(cat "$work/resp")"
done
ok "expired, not yet valid, stranger-signed, untrusted, alg none, HMAC and unknown-kid tokens: 403"

# the key's own state and the cloud's rules
printf '{"kty":"RSA","attributes":{"exportable":true}}' >"$work/c1.json"
expect 400 POST /keys/noexp/create "$work/c1.json"
grep -q 'AKV.SKR.1004' "$work/resp" || fail "exportable without policy: $(cat "$work/resp")"
printf '{"kty":"RSA","release_policy":{"data":"%s"}}' "$pol64" >"$work/c1.json"
expect 400 POST /keys/nopol/create "$work/c1.json"
grep -q 'AKV.SKR.1005' "$work/resp" || fail "policy without exportable: $(cat "$work/resp")"
printf '{"kty":"RSA"}' >"$work/c2.json"
expect 200 POST /keys/plain/create "$work/c2.json"
release_body "$work/token1"
expect 403 POST /keys/plain/release "$work/rel.json"
[ "$(js get "$work/resp" error.denial.stage)" = key ] || fail "non-exportable: $(cat "$work/resp")"
ok "exportable keys need a policy and policies need exportable keys (400); a non-exportable key is never released (403)"

printf '{"kty":"RSA","attributes":{"exportable":true},"release_policy":{"data":"%s","immutable":true}}' \
    "$(base64 -w0 <"$work/policy.json" | tr '+/' '-_' | tr -d '=')" >"$work/c3.json"
expect 200 POST /keys/fixed/create "$work/c3.json"
printf '{"release_policy":{"data":"%s"}}' "$pol64" >"$work/u1.json"
expect 409 PATCH /keys/fixed "$work/u1.json"
ok "an immutable release policy cannot be changed (409)"

expect 404 POST /keys/nosuchkey/release "$work/rel.json"
printf '{"target":"x","bogus":1}' >"$work/bad.json"
expect 400 POST /keys/skr/release "$work/bad.json"
printf '{"target":"x","enc":"RSA-OAEP"}' >"$work/bad.json"
expect 400 POST /keys/skr/release "$work/bad.json"
ok "unknown keys (404) and bad bodies (400)"

# the release permission
printf '{"name":"tee-host","roles":[{"role":"Crypto User","scope":"/keys/skr"}]}' >"$work/p.json"
expect 200 POST /principals "$work/p.json"
ptoken=$(js get "$work/resp" token)
st=$(curl -sS --cacert "$ca" -o "$work/resp" -w '%{http_code}' -X POST -H "Authorization: Bearer $ptoken" \
    -H 'Content-Type: application/json' --data-binary "@$work/rel.json" "$url/keys/skr/release?api-version=7.6")
[ "$st" = 403 ] && grep -q 'keys/release' "$work/resp" || fail "a Crypto User released: $st $(cat "$work/resp")"
printf '{"name":"skr-agent","roles":[{"role":"Crypto Service Release User","scope":"/keys/skr"}]}' >"$work/p.json"
expect 200 POST /principals "$work/p.json"
rtoken=$(js get "$work/resp" token)
st=$(curl -sS --cacert "$ca" -o "$work/resp" -w '%{http_code}' -X POST -H "Authorization: Bearer $rtoken" \
    -H 'Content-Type: application/json' --data-binary "@$work/rel.json" "$url/keys/skr/release?api-version=7.6")
[ "$st" = 200 ] || fail "the release user could not release: $st $(cat "$work/resp")"
ok "releasing needs the Crypto Service Release User role (Crypto User is refused)"

# ---- the decision log ------------------------------------------------------------------------------
log=$data/release-decisions.jsonl
[ -s "$log" ] || fail "no decision log at $log"
[ "$(stat -c %a "$log")" = 600 ] || fail "the decision log is not 0600"
node -e '
const fs = require("fs");
const lines = fs.readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse);
const token = fs.readFileSync(process.argv[2], "utf8").trim();
if (lines.length < 20) throw new Error("only " + lines.length + " decisions");
if (!lines.some((l) => l.decision === "allow" && l.principal && l.principal !== "admin")) throw new Error("no grant by the release user");
const deny = lines.find((l) => l.stage === "policy" && l.keyName === "skr");
if (!deny || !/x-cloister-sim-mrenclave/.test(deny.reason) || !deny.jti || !deny.tokenSha256 || !deny.policyHash)
    throw new Error("policy denial record: " + JSON.stringify(deny));
if (fs.readFileSync(process.argv[1], "utf8").includes(token)) throw new Error("a token is in the log");
' "$log" "$work/token1" || fail "decision log: $(tail -n 3 "$log")"
ok "every grant and denial is in DIR/release-decisions.jsonl (jti, token hash, policy hash; no tokens)"

# ---- the official SDK --------------------------------------------------------------------------------
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || fail "node $(node --version) is too old for the SDK test (need >= 20)"
if [ ! -f "$sdk/node_modules/.package-lock.json" ] ||
    [ "$sdk/package-lock.json" -nt "$sdk/node_modules/.package-lock.json" ]; then
    command -v npm >/dev/null || fail "npm is not installed (needed once to install the SDK packages)"
    (
        flock 9
        if [ ! -f "$sdk/node_modules/.package-lock.json" ] ||
            [ "$sdk/package-lock.json" -nt "$sdk/node_modules/.package-lock.json" ]; then
            (cd "$sdk" && npm ci --no-audit --no-fund --loglevel=error) || fail "npm ci failed in $sdk"
        fi
    ) 9<"$sdk/package.json"
fi
(
    cd "$sdk"
    CLOISTER_URL=$url CLOISTER_TOKEN=$admin NODE_EXTRA_CA_CERTS=$ca \
        SKR_TOKEN=$work/token1 SKR_TOKEN_OTHER=$work/token2 SKR_TEE_KEY=$work/tee.pem \
        SKR_POLICY=$work/policy.json NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost \
        node --test --test-concurrency=1 --test-timeout=180000 release.test.mjs
) >"$work/sdk.out" 2>&1 || {
    cat "$work/sdk.out" >&2
    fail "the SDK release tests failed"
}
ok "@azure/keyvault-keys releaseKey (sdk/release.test.mjs)"

# ---- redacted denials (a restart: the signing key and the keys persist) ------------------------------
stop_server
start_server --redact-denials
grep -q 'denials redacted' "$work/serve.out" || fail "serve does not say denials are redacted"
release_body "$work/token2"
expect 403 POST /keys/skr/release "$work/rel.json"
grep -q "$mre2" "$work/resp" && fail "a redacted denial shows the actual value: $(cat "$work/resp")"
grep -q "$mre1" "$work/resp" && fail "a redacted denial shows the expected value: $(cat "$work/resp")"
[ "$(js get "$work/resp" error.denial.denial.claim)" = x-cloister-sim-mrenclave ] || fail "redacted claim"
[ "$(js get "$work/resp" error.denial.denial.path)" = 'anyOf[0].allOf[2]' ] || fail "redacted path"
release_body "$work/token1"
expect 200 POST /keys/skr/release "$work/rel.json"
rm -rf "$work/open4" && mkdir -p "$work/open4"
js open "$work/resp" "$work/tee.pem" "$work/open4" >/dev/null || fail "open after restart"
cmp -s "$work/open/leaf.pem" "$work/open4/leaf.pem" && fail "the signing certificate was not re-issued at start"
node -e '
const crypto = require("crypto"), fs = require("fs");
const a = new crypto.X509Certificate(fs.readFileSync(process.argv[1])), b = new crypto.X509Certificate(fs.readFileSync(process.argv[2]));
if (!a.publicKey.equals(b.publicKey)) throw new Error("the release-signing key changed across a restart");
' "$work/open/leaf.pem" "$work/open4/leaf.pem" || fail "signing key persistence"
ok "--redact-denials keeps the path and claim but not the values; the signing key survives a restart"

stop_server
echo "key_release: all $passed checks passed"
