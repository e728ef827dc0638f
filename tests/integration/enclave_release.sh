#!/usr/bin/env bash
# Secure key release inside an enclave, end to end: a real `cloister serve --trust-sim`, a sim
# platform, the signed hello-enclave measured with `cloister enclave measure`, exportable keys
# whose release policy pins that measurement, and `cloister run ... -- release KEY`, where the
# enclave makes its key pair, gets evidence, has the host relay attestation and release, verifies
# the JWS and unwraps the key inside. Checked against paths the test computes independently:
#   - a .clst file encrypted on the host with `cloister encrypt --key vault:KEY` is decrypted
#     inside the enclave, which prints the plaintext's SHA-256 (compared with sha256sum);
#   - the same key released through the documented external path (`cloister sim report` for the
#     same measurement, POST /attest/SimEnclave, `cloister key release` with a TEE key the test
#     holds) has the SHA-256 the enclave printed, and its bytes (hex, base64, base64url) appear
#     nowhere in what the host process printed or logged with --log-level debug.
# Refusals: a policy pinned to another measurement (the error names the failing claim), a wrong
# vault URL, a CA that does not match the server, a wrong CA pin, no relay at all.
# Needs: curl, openssl, base64, sha256sum, xxd. Fails, never skips.
set -euo pipefail

CLOISTER=${CLOISTER:?set CLOISTER to the cloister binary}
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/serve.sh"
BUILD=${CLST_BUILD_DIR:?set CLST_BUILD_DIR to the build directory}
HELLO=$BUILD/hello-enclave.so
need_tools curl openssl base64 sha256sum xxd
for f in "$HELLO" "$BUILD/cloister-enclave-loader"; do
    [ -e "$f" ] || fail "$f is not built"
done

work=$(mktemp -d)
server_pid=""
trap cleanup_server_and_work EXIT
cd "$work"
passed=0
ok() {
    passed=$((passed + 1))
    echo "ok $passed - $*"
}
on_fail() { # after the FAIL line
    if [ -f "$work/serve.err" ]; then
        echo "---- cloister serve stderr (last 20 lines) ----" >&2
        tail -n 20 "$work/serve.err" >&2 || true
    fi
}
b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }
unb64url() {
    local p=$1
    while [ $((${#p} % 4)) != 0 ]; do p="$p="; done
    printf '%s' "$p" | tr -- '-_' '+/' | base64 -d
}
# Prints member PATH (a.b.c) of the JSON file $1 as text (strings bare), with node if present,
# else a small perl JSON::PP reader.
jget() {
    perl -MJSON::PP -e '
        local $/; open(my $f, "<", $ARGV[0]) or die; my $j = JSON::PP->new->decode(<$f>);
        for my $k (split /\./, $ARGV[1]) { $j = ref($j) eq "HASH" ? $j->{$k} : undef; }
        exit 3 unless defined $j;
        print ref($j) ? JSON::PP->new->canonical->encode($j) : $j, "\n";' "$1" "$2"
}

# ---- platform, server, signed enclave --------------------------------------------------------
"$CLOISTER" sim init "$work/plat" >/dev/null || fail "cloister sim init"
data=$work/data
iss=https://attest.enclave-release.test
serve_start "$work/serve.out" "$work/serve.err" \
    --data "$data" --listen 127.0.0.1:0 --trust-sim "$work/plat/root.pem" --issuer "$iss"
ca=$data/ca.pem
admin=$(cat "$data/admin-token")
printf '%s\n' "$admin" >"$work/token"
ok "cloister serve --trust-sim listens at $url"

quietly "openssl genpkey (signer.pem)" \
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out signer.pem
"$CLOISTER" enclave sign "$HELLO" --key signer.pem --product-id 7 --svn 3 -o hello.so >/dev/null ||
    fail "cloister enclave sign"
"$CLOISTER" enclave measure hello.so >measure.txt
mre=$(awk '$1 == "mrenclave" {print $2}' measure.txt)
mrs=$(awk '$1 == "mrsigner" {print $2}' measure.txt)
[ ${#mre} = 96 ] && [ ${#mrs} = 64 ] || fail "measure: $(cat measure.txt)"
other=$(printf 'b2%.0s' $(seq 1 48))
ok "hello-enclave signed and measured ($mre)"

# ---- keys with release policies ---------------------------------------------------------------
call() { # call METHOD PATH BODYFILE -> status; body in $work/resp
    curl -sS --cacert "$ca" -o "$work/resp" -w '%{http_code}' -X "$1" \
        -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' \
        --data-binary "@$3" "$url$2?api-version=7.6"
}
make_key() { # make_key NAME KTY SIZE MRENCLAVE
    cat >"$work/policy-$1.json" <<EOF
{"version":"1.0.0","anyOf":[{"authority":"$iss","allOf":[
  {"claim":"x-ms-attestation-type","equals":"sim"},
  {"claim":"x-cloister-sim-is-debuggable","equals":false},
  {"claim":"x-cloister-sim-mrenclave","equals":"$4"},
  {"claim":"x-cloister-sim-mrsigner","equals":"$mrs"}]}]}
EOF
    local pol size_member=key_size
    pol=$(b64url <"$work/policy-$1.json")
    printf '{"kty":"%s","%s":%s,"key_ops":["encrypt","decrypt","wrapKey","unwrapKey"],"attributes":{"exportable":true},"release_policy":{"data":"%s"}}' \
        "$2" "$size_member" "$3" "$pol" >"$work/create.json"
    local st
    st=$(call POST "/keys/$1/create" "$work/create.json")
    [ "$st" = 200 ] || fail "creating key $1: HTTP $st $(cat "$work/resp")"
    jget "$work/resp" key.kid
}
kid_aes=$(make_key dbkey oct 256 "$mre")
kid_rsa=$(make_key rsakey RSA 2048 "$mre")
kid_other=$(make_key otherkey oct 256 "$other")
ok "exportable keys dbkey (AES-256) and rsakey (RSA-2048) pinned to the enclave; otherkey to another"

# ---- the data owner encrypts to the vault keys on the host -------------------------------------
head -c 100000 /dev/urandom >plain.bin
printf 'the patients of ward 7\n' >>plain.bin
want_sum=$(sha256sum plain.bin | cut -d' ' -f1)
for k in dbkey rsakey; do
    "$CLOISTER" encrypt --key "vault:$k" --url "$url" --ca "$ca" --token-file "$work/token" \
        -o "plain-$k.clst" plain.bin 2>enc.err || fail "cloister encrypt --key vault:$k: $(cat enc.err)"
done
ok "plain.bin encrypted with cloister encrypt --key vault:dbkey and vault:rsakey"

# ---- the enclave gets the keys released and decrypts inside ------------------------------------
ca_pin=$(openssl x509 -in "$ca" -outform DER | sha256sum | cut -d' ' -f1)
run_release() { # run_release KEY [extra cloister run options...] -- [extra enclave args]
    local key=$1
    shift
    "$CLOISTER" --log-level debug run hello.so --platform "$work/plat" --attest-url "$url" \
        --vault-url "$url" --ca "$ca" --token-file "$work/token" "$@"
}
for k in dbkey rsakey; do
    status=0
    run_release "$k" --in input="plain-$k.clst" -- release "$k" --pin "$ca_pin" \
        >"run-$k.out" 2>"run-$k.err" || status=$?
    [ "$status" = 0 ] || fail "cloister run release $k exited $status: $(cat "run-$k.err")"
    grep -q "^decrypted $(stat -c %s plain.bin) bytes sha256=$want_sum$" "run-$k.out" ||
        fail "the enclave did not decrypt plain-$k.clst: $(cat "run-$k.out") $(cat "run-$k.err")"
    grep -q "no vault CA pin" "run-$k.err" && fail "a pinned release logged the no-pin warning"
done
kid_line=$(grep '^released ' run-dbkey.out)
[ "$(echo "$kid_line" | awk '{print $2}')" = "$kid_aes" ] || fail "released kid: $kid_line, want $kid_aes"
echo "$kid_line" | grep -q ' kty=oct\(-HSM\)\? size=32 ' || fail "AES-256 material: $kid_line"
grep -q "^released $kid_rsa kty=RSA\(-HSM\)\? " run-rsakey.out || fail "RSA: $(cat run-rsakey.out)"
grep -q "relay: release request from the enclave for key 'dbkey'" run-dbkey.err ||
    fail "the host did not log its relay (--log-level debug): $(cat run-dbkey.err)"
ok "cloister run: the enclave got dbkey and rsakey released and decrypted both files inside"

# Without a pin, the enclave trusts the CA the host relays, and says so.
run_release dbkey -- release dbkey >nopin.out 2>nopin.err || fail "release without a pin: $(cat nopin.err)"
grep -q "no vault CA pin" nopin.err || fail "no warning without a pin: $(cat nopin.err)"
grep -q "^released $kid_aes " nopin.out || fail "release without a pin: $(cat nopin.out)"
ok "without a pin the release works with the host's CA, and the enclave logs a warning"

# A named version, and a key the vault does not have.
run_release dbkey -- release dbkey --version "${kid_aes##*/}" --pin "$ca_pin" >ver.out 2>ver.err ||
    fail "release of version ${kid_aes##*/}: $(cat ver.err)"
grep -q "^released $kid_aes " ver.out || fail "versioned release: $(cat ver.out)"
status=0
run_release nokey -- release nokey --pin "$ca_pin" >nokey.out 2>nokey.err || status=$?
[ "$status" = 4 ] || fail "release of a missing key exited $status: $(cat nokey.err)"
grep -q "release denied: HTTP 404" nokey.err || fail "missing key: $(cat nokey.err)"
ok "a named version is released; a key the vault lacks: release denied with the vault's 404"

# ---- the same material through the external path, and the host never saw it --------------------
quietly "openssl genpkey (tee.pem)" \
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out tee.pem
quietly "openssl pkey (tee.der)" \
    openssl pkey -in tee.pem -pubout -outform DER >tee.der
# runtime data with the TEE's public JWK (n, e from the DER: the last 256+ bytes hold n)
n64=$(openssl rsa -pubin -inform DER -in tee.der -modulus -noout 2>/dev/null | cut -d= -f2 |
    xxd -r -p | b64url)
printf '{"keys":[{"e":"AQAB","key_ops":["encrypt"],"kid":"test-tee","kty":"RSA","n":"%s"}]}' "$n64" >rt.json
"$CLOISTER" sim report --platform "$work/plat" --mrenclave "$mre" --mrsigner "$mrs" \
    --product-id 7 --svn 3 --runtime-data rt.json -o ev.bin >/dev/null 2>sim.err ||
    fail "cloister sim report: $(cat sim.err)"
printf '{"report":"%s","runtimeData":{"data":"%s","dataType":"JSON"}}' "$(b64url <ev.bin)" \
    "$(b64url <rt.json)" >att.json
st=$(curl -sS --cacert "$ca" -o att.out -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
    --data-binary @att.json "$url/attest/SimEnclave?api-version=2022-08-01")
[ "$st" = 200 ] || fail "POST /attest/SimEnclave: $st $(cat att.out)"
jget att.out token >ext-token
"$CLOISTER" key release dbkey --url "$url" --ca "$ca" --token-file "$work/token" \
    --token ext-token --tee-key tee.pem -o ext.jwk 2>ext.err || fail "cloister key release: $(cat ext.err)"
k64=$(jget ext.jwk k)
key_hex=$(unb64url "$k64" | xxd -p -c 256)
[ ${#key_hex} = 64 ] || fail "the externally released AES key is not 32 bytes ($key_hex)"
ext_sum=$(printf '%s' "$key_hex" | xxd -r -p | sha256sum | cut -d' ' -f1)
echo "$kid_line" | grep -q "sha256=$ext_sum$" ||
    fail "the enclave's material (${kid_line##*sha256=}) is not the key the vault releases ($ext_sum)"
key_b64=$(printf '%s' "$key_hex" | xxd -r -p | base64 -w0)
for f in run-dbkey.out run-dbkey.err nopin.out nopin.err; do
    for needle in "$key_hex" "$(printf '%s' "$key_hex" | tr a-f A-F)" "$key_b64" "$k64"; do
        grep -qF -- "$needle" "$f" && fail "the key's bytes appear in the host's $f"
    done
done
ok "the enclave's material is the key the vault releases; the host's output and debug log never held it"

# ---- refusals ----------------------------------------------------------------------------------
expect_fail() { # expect_fail STATUS NEEDLE command...
    local want=$1 needle=$2
    shift 2
    local status=0
    "$@" >neg.out 2>neg.err || status=$?
    [ "$status" = "$want" ] || fail "'$*' exited $status, want $want: $(cat neg.err)"
    grep -q -- "$needle" neg.err || fail "'$*': stderr lacks '$needle': $(cat neg.err)"
}
expect_fail 3 "release denied: .*x-cloister-sim-mrenclave" \
    run_release otherkey -- release otherkey --pin "$ca_pin"
grep -q "anyOf\[0\].allOf\[2\]" neg.err || fail "the denial does not name the rule: $(cat neg.err)"
ok "a policy pinned to another measurement: the run fails naming x-cloister-sim-mrenclave"

bad_pin=$(printf '%s' "$ca_pin" | sha256sum | cut -d' ' -f1)
expect_fail 4 "release signature invalid: .*pinned vault CA" \
    run_release dbkey -- release dbkey --pin "$bad_pin"
ok "a CA pin that is not the vault's: release signature invalid"

# A port nobody listens on (bind and release one).
dead_port=$(perl -MIO::Socket::INET -e '$s = IO::Socket::INET->new(Listen => 1, LocalAddr => "127.0.0.1:0") or die; print $s->sockport')
expect_fail 4 "release failed: the host could not reach the vault at https://127.0.0.1:$dead_port" \
    "$CLOISTER" run hello.so --platform "$work/plat" --attest-url "$url" \
    --vault-url "https://127.0.0.1:$dead_port" --ca "$ca" --token-file "$work/token" -- release dbkey
ok "a wrong vault URL: the enclave reports that the host could not reach the vault"

expect_fail 4 "attestation failed: the host could not reach the attestation service" \
    "$CLOISTER" run hello.so --platform "$work/plat" --attest-url "$url" --vault-url "$url" \
    --ca "$work/plat/root.pem" --token-file "$work/token" -- release dbkey
ok "a CA that is not the server's: TLS fails and the enclave says which service"

expect_fail 4 "attestation failed: the host offers no clst.attest relay" \
    "$CLOISTER" run hello.so --platform "$work/plat" -- release dbkey
ok "no relay: the enclave says which options are missing"

printf 'not-a-valid-token\n' >badtoken
expect_fail 3 "release denied: HTTP 401" \
    "$CLOISTER" run hello.so --platform "$work/plat" --attest-url "$url" --vault-url "$url" \
    --ca "$ca" --token-file badtoken -- release dbkey --pin "$ca_pin"
ok "a bad vault credential: release denied with the vault's 401"

echo "all $passed enclave release checks passed"
