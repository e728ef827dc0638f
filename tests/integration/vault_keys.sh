#!/usr/bin/env bash
# The vault's key API end to end against a fresh `cloister serve`, with curl and the CLI:
# every endpoint, every key type and size, every algorithm (with independent checks by openssl
# where it can: RSA encryption, PKCS#1/PSS/ECDSA signatures, RFC 3394 key wrap), bad input
# (malformed JSON, wrong types, unknown algorithms, bad base64url, oversized bodies, bad names,
# wrong-length inputs), key state (disabled, not yet valid, expired), key_ops, soft delete /
# recover / purge, backup / restore, random bytes, import, and a row edited in the database file
# (refused with a 500, nothing decrypted).
#
# Needs curl, openssl, jq and sqlite3. Fails, never skips, when something is missing or the
# server does not serve the vault's key API.
set -euo pipefail

CLOISTER=${CLOISTER:?set CLOISTER to the cloister binary}
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/serve.sh"
API=7.5
need_tools curl openssl jq sqlite3 basenc od

work=$(mktemp -d)
server_pid=""
trap cleanup_server_and_work EXIT

show_server_log() {
    echo "---- cloister serve stderr (last 30 lines) ----" >&2
    tail -n 30 "$work/serve.err" >&2 || true
}

checks=0
ok() { checks=$((checks + 1)); }

# ---- a fresh server ----------------------------------------------------------------------------
data=$work/data
serve_start "$work/serve.out" "$work/serve.err" --data "$data" --listen 127.0.0.1:0
ca=$data/ca.pem
token=$(cat "$data/admin-token")

# ---- helpers -------------------------------------------------------------------------------------
# api METHOD PATH [BODY|@FILE]: sets $code; the response body is in $work/resp.
api() {
    local method=$1 path=$2 body=${3-}
    local sep='?'
    [[ $path == *\?* ]] && sep='&'
    local args=(-sS --cacert "$ca" -o "$work/resp" -w '%{http_code}' -X "$method"
        -H "Authorization: Bearer $token")
    if [ -n "$body" ]; then
        args+=(-H 'Content-Type: application/json' --data-binary "$body")
    fi
    code=$(curl "${args[@]}" "$url$path${sep}api-version=$API")
}
# expect STATUS METHOD PATH [BODY]: the request must answer STATUS.
expect() {
    local want=$1
    shift
    api "$@"
    [ "$code" = "$want" ] || fail "$1 $2 answered $code, want $want: $(head -c 600 "$work/resp")"
    ok
}
# expect_err STATUS CODE METHOD PATH [BODY]: an error with that error.code.
expect_err() {
    local want=$1 ecode=$2
    shift 2
    expect "$want" "$@"
    [ "$(jq -r .error.code "$work/resp")" = "$ecode" ] ||
        fail "$1 $2: error.code $(jq -r .error.code "$work/resp"), want $ecode"
    [ -n "$(jq -r '.error.message // empty' "$work/resp")" ] || fail "$1 $2: no error.message"
}
j() { jq -r "$1" "$work/resp"; }
b64u() { basenc --base64url -w0 | tr -d '='; }
unb64u() {
    local s=$1
    case $((${#s} % 4)) in 2) s="$s==" ;; 3) s="$s=" ;; esac
    printf '%s' "$s" | basenc --base64url -d
}
hex() { od -An -v -tx1 | tr -d ' \n'; }
unhex() { printf '%b' "$(printf '%s' "$1" | sed 's/../\\x&/g')"; }
rnd() { openssl rand "$1" | b64u; }
# flip_b64u B64U [HEXPOS]: the same bytes with one hex digit changed.
flip_b64u() {
    local h p c n
    h=$(unb64u "$1" | hex)
    p=${2:-2}
    c=${h:$p:1}
    n=f
    [ "$c" = f ] && n=0
    unhex "${h:0:$p}$n${h:$((p + 1))}" | b64u
}

# The preflight: the key API is there (401 with the challenge without a token).
probe=$(curl -sS --cacert "$ca" -D "$work/h" -o /dev/null -w '%{http_code}' "$url/keys?api-version=$API")
if [ "$probe" != 401 ] || ! grep -qi '^www-authenticate: Bearer authorization="' "$work/h"; then
    fail "the server does not serve the vault's key API (GET /keys without a token answered $probe)"
fi
db=$data/vault.db # where cloister serve keeps the vault (src/cli/cmd_serve.c)
[ -f "$db" ] || fail "no vault database at $db"

# ---- create every type and size -----------------------------------------------------------------
for size in 2048 3072 4096; do
    expect 200 POST "/keys/rsa$size/create" "{\"kty\":\"RSA\",\"key_size\":$size,\"attributes\":{}}"
    kid=$(j .key.kid)
    [[ $kid =~ ^$url/keys/rsa$size/[0-9a-f]{32}$ ]] || fail "kid $kid"
    [ "$(unb64u "$(j .key.n)" | wc -c)" = $((size / 8)) ] || fail "n of rsa$size"
    [ "$(j .key.e)" = AQAB ] || fail "e of rsa$size"
    [ "$(j '.key.key_ops | join(",")')" = "encrypt,decrypt,sign,verify,wrapKey,unwrapKey" ] ||
        fail "default key_ops of RSA: $(j .key.key_ops)"
    [ "$(j '.key | has("d") or has("p") or has("q") or has("dp") or has("dq") or has("qi")')" = false ] ||
        fail "private members in a key bundle"
    [ "$(j .attributes.recoveryLevel)" = "Recoverable+Purgeable" ] || fail "recoveryLevel"
    [ "$(j .attributes.recoverableDays)" = 90 ] || fail "recoverableDays"
done
declare -A coord=([P-256]=32 [P-384]=48 [P-521]=66)
for crv in P-256 P-384 P-521; do
    n=ec${crv#P-}
    expect 200 POST "/keys/$n/create" "{\"kty\":\"EC\",\"crv\":\"$crv\"}"
    [ "$(j .key.crv)" = "$crv" ] || fail "crv"
    [ "$(unb64u "$(j .key.x)" | wc -c)" = "${coord[$crv]}" ] || fail "x of $crv"
    [ "$(unb64u "$(j .key.y)" | wc -c)" = "${coord[$crv]}" ] || fail "y of $crv"
    [ "$(j '.key.key_ops | join(",")')" = "sign,verify" ] || fail "default key_ops of EC"
    [ "$(j '.key | has("d")')" = false ] || fail "d in an EC bundle"
done
for size in 128 192 256; do
    expect 200 POST "/keys/oct$size/create" "{\"kty\":\"oct\",\"key_size\":$size}"
    [ "$(j '.key | has("k")')" = false ] || fail "k in an oct bundle"
    [ "$(j '.key.key_ops | join(",")')" = "encrypt,decrypt,wrapKey,unwrapKey" ] ||
        fail "default key_ops of oct"
done
# defaults: RSA 2048, EC P-256
expect 200 POST /keys/rsa-default/create '{"kty":"RSA"}'
[ "$(unb64u "$(j .key.n)" | wc -c)" = 256 ] || fail "default RSA size"
expect 200 POST /keys/ec-default/create '{"kty":"EC"}'
[ "$(j .key.crv)" = P-256 ] || fail "default curve"

# names are case-insensitive, and keep their case
expect 200 GET /keys/RSA2048/
[ "$(j .key.kid)" = "$(curl -sS --cacert "$ca" -H "Authorization: Bearer $token" "$url/keys/rsa2048?api-version=$API" | jq -r .key.kid)" ] ||
    fail "names are case-insensitive"

# ---- bad create requests -------------------------------------------------------------------------
bad_create=(
    '{"kty":"RSA","key_size":1024}' '{"kty":"RSA","key_size":2049}' '{"kty":"RSA","key_size":"2048"}'
    '{"kty":"RSA","public_exponent":3}' '{"kty":"EC","crv":"P-192"}' '{"kty":"EC","crv":"secp256k1"}'
    '{"kty":"oct","key_size":64}' '{"kty":"bogus"}' '{"kty":"RSA-HSM"}' '{"kty":"oct-HSM"}' '{}'
    '{"kty":null}' '{"kty":["RSA"]}' '{"kty":"RSA","key_ops":["fly"]}' '{"kty":"EC","key_ops":["encrypt"]}'
    '{"kty":"RSA","key_ops":"sign"}' '{"kty":"RSA","attributes":{"enabled":"true"}}'
    '{"kty":"RSA","attributes":{"nbf":"tomorrow"}}' '{"kty":"RSA","attributes":{"exportable":true}}'
    '{"kty":"RSA","tags":{"a":1}}' '{"kty":"RSA","tags":"x"}' '{"kty":"RSA","release_policy":{"data":"e30"}}'
    '{"kty":"RSA"' 'not json' '[]' '"RSA"' '{"kty":"RSA","kty":"EC"}'
)
for b in "${bad_create[@]}"; do
    expect_err 400 BadParameter POST /keys/bad-create/create "$b"
done
expect_err 400 BadParameter POST /keys/bad-create/create ''
expect 404 GET /keys/bad-create/
for name in bad_name a.b 'a%20b' '%C3%A4' "$(printf 'k%.0s' {1..128})" '-%2F..'; do
    expect_err 400 BadParameter POST "/keys/$name/create" '{"kty":"EC"}'
done
expect 200 POST "/keys/$(printf 'k%.0s' {1..127})/create" '{"kty":"EC"}'
# path traversal is refused by the server before any route
api POST '/keys/..%2Fsecrets/create' '{"kty":"EC"}'
[[ $code == 400 || $code == 404 ]] || fail "encoded slash answered $code"
ok
code=$(curl -sS --path-as-is --cacert "$ca" -o "$work/resp" -w '%{http_code}' -X POST \
    -H "Authorization: Bearer $token" "$url/keys/../keys/x/create?api-version=$API" -d '{"kty":"EC"}')
[ "$code" = 400 ] || fail "dot-dot answered $code"
expect_err 404 KeyNotFound GET /keys/x/
ok
# api-version is required and checked
code=$(curl -sS --cacert "$ca" -o "$work/resp" -w '%{http_code}' -H "Authorization: Bearer $token" "$url/keys")
[ "$code" = 400 ] || fail "missing api-version answered $code"
code=$(curl -sS --cacert "$ca" -o "$work/resp" -w '%{http_code}' -H "Authorization: Bearer $token" "$url/keys?api-version=1999-01-01")
[ "$code" = 400 ] || fail "unknown api-version answered $code"
ok
# oversized body: 413
head -c 1100000 /dev/zero | tr '\0' 'a' >"$work/big"
printf '{"alg":"A128GCM","value":"%s"}' "$(cat "$work/big")" >"$work/big.json"
expect 413 POST /keys/oct128//encrypt "@$work/big.json"

# ---- get, update, versions, rotate, list ---------------------------------------------------------
expect_err 404 KeyNotFound GET /keys/no-such-key/
expect_err 404 KeyNotFound GET /keys/rsa2048/0123456789abcdef0123456789abcdef
expect_err 404 KeyNotFound GET /keys/rsa2048/not-a-version
expect 200 POST /keys/upd/create '{"kty":"EC","tags":{"a":"1"}}'
v1=$(basename "$(j .key.kid)")
created=$(j .attributes.created)
expect 200 PATCH "/keys/upd/$v1" '{"tags":{"b":"2","c":"3"},"key_ops":["verify"],"attributes":{"enabled":false,"nbf":1000,"exp":4000000000}}'
[ "$(j '.tags | keys | join(",")')" = b,c ] || fail "tags are replaced"
[ "$(j '.key.key_ops | join(",")')" = verify ] || fail "key_ops updated"
[ "$(j .attributes.enabled)" = false ] || fail "enabled updated"
[ "$(j .attributes.nbf)" = 1000 ] && [ "$(j .attributes.exp)" = 4000000000 ] || fail "nbf/exp"
[ "$(j .attributes.created)" = "$created" ] || fail "created changed"
[ "$(basename "$(j .key.kid)")" = "$v1" ] || fail "an update keeps the version"
expect 200 PATCH /keys/upd/ '{"attributes":{"enabled":true,"exp":null}}'
[ "$(j .attributes.exp)" = null ] || fail "exp cleared"
[ "$(j '.key.key_ops | join(",")')" = verify ] || fail "members left out are kept"
expect_err 400 BadParameter PATCH /keys/upd/ '{"attributes":{"exportable":true}}'
expect_err 400 BadParameter PATCH /keys/upd/ '{"key_ops":["decrypt"]}'
expect_err 400 BadParameter PATCH /keys/upd/ '{"attributes":{"nbf":5000000000,"exp":4000000000}}'
expect_err 404 KeyNotFound PATCH /keys/no-such-key/ '{"tags":{}}'

expect 200 POST /keys/upd/rotate
v2=$(basename "$(j .key.kid)")
[ "$v2" != "$v1" ] || fail "rotate made no new version"
[ "$(j .key.crv)" = P-256 ] || fail "rotation keeps the curve"
[ "$(j '.key.key_ops | join(",")')" = verify ] || fail "rotation keeps key_ops"
[ "$(j '.tags.b')" = 2 ] || fail "rotation keeps tags"
expect 200 POST /keys/rsa3072/rotate
[ "$(unb64u "$(j .key.n)" | wc -c)" = 384 ] || fail "rotation keeps the RSA size"
expect 200 POST /keys/oct192/rotate
expect_err 404 KeyNotFound POST /keys/no-such-key/rotate
expect 200 GET /keys/upd/versions
[ "$(j '.value | length')" = 2 ] || fail "two versions"
[ "$(j '[.value[].kid | test("/keys/upd/[0-9a-f]{32}$")] | all')" = true ] || fail "version kids"
expect 200 "GET" "/keys/upd/versions?maxresults=1"
[ "$(j '.value | length')" = 1 ] && [ "$(j .nextLink)" != null ] || fail "paged versions"
expect_err 404 KeyNotFound GET /keys/no-such-key/versions

# the whole list, one per page, following nextLink
seen=()
next="$url/keys?api-version=$API&maxresults=1"
pages=0
while [ "$next" != null ]; do
    code=$(curl -sS --cacert "$ca" -o "$work/resp" -w '%{http_code}' -H "Authorization: Bearer $token" "$next")
    [ "$code" = 200 ] || fail "page $pages: $code"
    [ "$(j '.value | length')" -le 1 ] || fail "a page larger than maxresults"
    [ "$(j '[.value[].kid | test("/keys/[^/]+$")] | all')" = true ] || fail "list kids carry no version"
    seen+=($(j '.value[].kid'))
    next=$(j .nextLink)
    pages=$((pages + 1))
done
expect 200 GET /keys
[ "${#seen[@]}" = "$(j '.value | length')" ] || fail "pages add up to ${#seen[@]}, list has $(j '.value | length')"
[ "$(printf '%s\n' "${seen[@]}" | sort -u | wc -l)" = "${#seen[@]}" ] || fail "duplicates across pages"
ok
for q in maxresults=0 maxresults=26 maxresults=x; do
    expect_err 400 BadParameter GET "/keys?$q"
done
expect 200 GET '/keys?maxresults=2'
tampered=$(j .nextLink | sed 's/skiptoken=\(.\)/skiptoken=A\1/')
code=$(curl -sS --cacert "$ca" -o "$work/resp" -w '%{http_code}' -H "Authorization: Bearer $token" "$tampered")
[ "$code" = 400 ] || fail "an edited skiptoken answered $code"
ok

# ---- RSA operations, checked against openssl -----------------------------------------------------
pem() { "$CLOISTER" key get "$1" --pem --url "$url" --token "$token" --ca "$ca" >"$work/$1.pem"; }
printf 'thirty-two bytes of key, okay!!!' >"$work/pt"
pt64=$(b64u <"$work/pt")
# The whole matrix with the 2048-bit key; the larger keys get one of each kind of check (the
# code paths do not depend on the size; the run time does).
for size in 2048 3072 4096; do
    k=rsa$size
    pem "$k"
    enc_algs=(RSA-OAEP RSA-OAEP-256 RSA1_5)
    sig_algs=(RS256 RS384 RS512 PS256 PS384 PS512)
    if [ "$size" != 2048 ]; then
        enc_algs=(RSA-OAEP)
        sig_algs=(PS512)
    fi
    # openssl-made ciphertexts, the vault decrypts (RSA-OAEP = SHA-1)
    for alg in "${enc_algs[@]}"; do
        case $alg in
        RSA-OAEP) opts=(-pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha1) ;;
        RSA-OAEP-256) opts=(-pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256) ;;
        RSA1_5) opts=(-pkeyopt rsa_padding_mode:pkcs1) ;;
        esac
        ct=$(openssl pkeyutl -encrypt -pubin -inkey "$work/$k.pem" "${opts[@]}" -in "$work/pt" | b64u)
        for op in decrypt unwrapkey; do
            expect 200 POST "/keys/$k//$op" "{\"alg\":\"$alg\",\"value\":\"$ct\"}"
            [ "$(j .value)" = "$pt64" ] || fail "$k $alg $op of openssl's ciphertext"
            [[ $(j .kid) =~ ^$url/keys/$k/[0-9a-f]{32}$ ]] || fail "the result's kid is versioned"
        done
        # the vault's own encryption round-trips
        for pair in encrypt:decrypt wrapkey:unwrapkey; do
            expect 200 POST "/keys/$k//${pair%%:*}" "{\"alg\":\"$alg\",\"value\":\"$pt64\"}"
            c2=$(j .value)
            [ "$(unb64u "$c2" | wc -c)" = $((size / 8)) ] || fail "ciphertext size"
            expect 200 POST "/keys/$k//${pair##*:}" "{\"alg\":\"$alg\",\"value\":\"$c2\"}"
            [ "$(j .value)" = "$pt64" ] || fail "$k $alg round trip"
        done
        # tampering and wrong lengths
        expect_err 400 BadParameter POST "/keys/$k//decrypt" "{\"alg\":\"$alg\",\"value\":\"$(flip_b64u "$ct" 40)\"}"
        expect_err 400 BadParameter POST "/keys/$k//decrypt" "{\"alg\":\"$alg\",\"value\":\"$(unb64u "$ct" | head -c $((size / 8 - 1)) | b64u)\"}"
    done
    # OAEP with SHA-1 is not OAEP-256
    ct=$(openssl pkeyutl -encrypt -pubin -inkey "$work/$k.pem" -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha1 -in "$work/pt" | b64u)
    expect_err 400 BadParameter POST "/keys/$k//decrypt" "{\"alg\":\"RSA-OAEP-256\",\"value\":\"$ct\"}"
    # too long for OAEP-256: k - 66 bytes at most
    long=$(head -c $((size / 8 - 65)) /dev/zero | b64u)
    expect_err 400 BadParameter POST "/keys/$k//encrypt" "{\"alg\":\"RSA-OAEP-256\",\"value\":\"$long\"}"
    # signatures: the vault signs a digest; openssl verifies over the message
    printf 'message signed by %s' "$k" >"$work/msg"
    for alg in "${sig_algs[@]}"; do
        md=sha${alg:2}
        dg=$(openssl dgst "-$md" -binary "$work/msg" | b64u)
        expect 200 POST "/keys/$k//sign" "{\"alg\":\"$alg\",\"value\":\"$dg\"}"
        sig=$(j .value)
        unb64u "$sig" >"$work/sig"
        [ "$(wc -c <"$work/sig")" = $((size / 8)) ] || fail "signature size"
        vopts=()
        [[ $alg == PS* ]] && vopts=(-sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:digest)
        openssl dgst "-$md" -verify "$work/$k.pem" "${vopts[@]}" -signature "$work/sig" "$work/msg" >/dev/null ||
            fail "openssl does not verify the vault's $alg signature"
        ok
        expect 200 POST "/keys/$k//verify" "{\"alg\":\"$alg\",\"digest\":\"$dg\",\"value\":\"$sig\"}"
        [ "$(j .value)" = true ] || fail "$alg verify"
        expect 200 POST "/keys/$k//verify" "{\"alg\":\"$alg\",\"digest\":\"$dg\",\"value\":\"$(flip_b64u "$sig" 20)\"}"
        [ "$(j .value)" = false ] || fail "$alg: a bad signature is false"
        expect 200 POST "/keys/$k//verify" "{\"alg\":\"$alg\",\"digest\":\"$(flip_b64u "$dg")\",\"value\":\"$sig\"}"
        [ "$(j .value)" = false ] || fail "$alg: another digest is false"
        expect_err 400 BadParameter POST "/keys/$k//sign" "{\"alg\":\"$alg\",\"value\":\"$(rnd 20)\"}"
    done
    expect_err 400 BadParameter POST "/keys/$k//sign" "{\"alg\":\"ES256\",\"value\":\"$(rnd 32)\"}"
    expect_err 400 BadParameter POST "/keys/$k//encrypt" "{\"alg\":\"A128GCM\",\"value\":\"$pt64\"}"
    expect_err 400 BadParameter POST "/keys/$k//wrapkey" "{\"alg\":\"A256KW\",\"value\":\"$pt64\"}"
done

# ---- EC signatures: raw r||s, verified by openssl after DER encoding ------------------------------
# der_int HEX: a DER INTEGER of the big-endian unsigned HEX.
der_int() {
    local h=$1
    while [ "${h:0:2}" = 00 ] && [ ${#h} -gt 2 ]; do h=${h:2}; done
    [ $((16#${h:0:1})) -ge 8 ] && h=00$h
    printf '02%02x%s' $((${#h} / 2)) "$h"
}
raw_to_der() {
    local raw half r s body len
    raw=$(hex <"$1")
    half=$((${#raw} / 2))
    r=$(der_int "${raw:0:$half}")
    s=$(der_int "${raw:$half}")
    body=$r$s
    len=$((${#body} / 2))
    if [ "$len" -lt 128 ]; then
        unhex "30$(printf '%02x' "$len")$body"
    else
        unhex "3081$(printf '%02x' "$len")$body"
    fi
}
declare -A ecalg=([256]=ES256 [384]=ES384 [521]=ES512)
declare -A echash=([256]=sha256 [384]=sha384 [521]=sha512)
for bits in 256 384 521; do
    k=ec$bits
    alg=${ecalg[$bits]}
    md=${echash[$bits]}
    pem "$k"
    printf 'message signed by %s' "$k" >"$work/msg"
    dg=$(openssl dgst "-$md" -binary "$work/msg" | b64u)
    expect 200 POST "/keys/$k//sign" "{\"alg\":\"$alg\",\"value\":\"$dg\"}"
    sig=$(j .value)
    unb64u "$sig" >"$work/sig"
    [ "$(wc -c <"$work/sig")" = $((2 * ((bits + 7) / 8))) ] || fail "$alg signature is not r||s"
    raw_to_der "$work/sig" >"$work/sig.der"
    openssl dgst "-$md" -verify "$work/$k.pem" -signature "$work/sig.der" "$work/msg" >/dev/null ||
        fail "openssl does not verify the vault's $alg signature"
    ok
    expect 200 POST "/keys/$k//verify" "{\"alg\":\"$alg\",\"digest\":\"$dg\",\"value\":\"$sig\"}"
    [ "$(j .value)" = true ] || fail "$alg verify"
    other=$(openssl dgst "-$md" -binary /dev/null | b64u)
    expect 200 POST "/keys/$k//verify" "{\"alg\":\"$alg\",\"digest\":\"$other\",\"value\":\"$sig\"}"
    [ "$(j .value)" = false ] || fail "$alg verify of another digest"
    expect 200 POST "/keys/$k//verify" "{\"alg\":\"$alg\",\"digest\":\"$dg\",\"value\":\"$(rnd 10)\"}"
    [ "$(j .value)" = false ] || fail "$alg: a short signature is false"
    wrong=$([ "$alg" = ES256 ] && echo ES384 || echo ES256)
    expect_err 400 BadParameter POST "/keys/$k//sign" "{\"alg\":\"$wrong\",\"value\":\"$dg\"}"
    expect_err 400 BadParameter POST "/keys/$k//sign" "{\"alg\":\"RS256\",\"value\":\"$(rnd 32)\"}"
    expect_err 400 BadParameter POST "/keys/$k//sign" "{\"alg\":\"$alg\",\"value\":\"$(rnd 20)\"}"
    expect_err 403 Forbidden POST "/keys/$k//encrypt" "{\"alg\":\"RSA-OAEP\",\"value\":\"$pt64\"}"
done

# ---- oct: AES-GCM and AES key wrap ---------------------------------------------------------------
for size in 128 192 256; do
    k=oct$size
    gcm=A${size}GCM
    kw=A${size}KW
    aad=$(printf 'header' | b64u)
    expect 200 POST "/keys/$k//encrypt" "{\"alg\":\"$gcm\",\"value\":\"$pt64\",\"aad\":\"$aad\"}"
    c=$(j .value) iv=$(j .iv) tag=$(j .tag)
    [ "$(unb64u "$iv" | wc -c)" = 12 ] && [ "$(unb64u "$tag" | wc -c)" = 16 ] || fail "GCM iv/tag sizes"
    [ "$(j .aad)" = "$aad" ] || fail "aad echoed"
    dec() { printf '{"alg":"%s","value":"%s","iv":"%s","tag":"%s"%s}' "$gcm" "$1" "$2" "$3" "${4:+,\"aad\":\"$4\"}"; }
    expect 200 POST "/keys/$k//decrypt" "$(dec "$c" "$iv" "$tag" "$aad")"
    [ "$(j .value)" = "$pt64" ] || fail "$gcm round trip"
    expect 200 POST "/keys/$k//encrypt" "{\"alg\":\"$gcm\",\"value\":\"$pt64\"}"
    [ "$(j .iv)" != "$iv" ] || fail "a fresh IV"
    if [ "$size" = 256 ]; then # the failure matrix once; the code does not depend on the size
    expect_err 400 BadParameter POST "/keys/$k//decrypt" "$(dec "$c" "$iv" "$tag")"
    expect_err 400 BadParameter POST "/keys/$k//decrypt" "$(dec "$c" "$iv" "$tag" "$(printf 'Header' | b64u)")"
    expect_err 400 BadParameter POST "/keys/$k//decrypt" "$(dec "$c" "$iv" "$(flip_b64u "$tag")" "$aad")"
    expect_err 400 BadParameter POST "/keys/$k//decrypt" "$(dec "$c" "$(flip_b64u "$iv")" "$tag" "$aad")"
    expect_err 400 BadParameter POST "/keys/$k//decrypt" "$(dec "$(flip_b64u "$c" 30)" "$iv" "$tag" "$aad")"
    expect_err 400 BadParameter POST "/keys/$k//decrypt" "$(dec "$c" "$(rnd 16)" "$tag" "$aad")"
    expect_err 400 BadParameter POST "/keys/$k//decrypt" "$(dec "$c" "$iv" "$(rnd 12)" "$aad")"
    expect_err 400 BadParameter POST "/keys/$k//decrypt" "{\"alg\":\"$gcm\",\"value\":\"$c\",\"iv\":\"$iv\"}"
    expect_err 400 BadParameter POST "/keys/$k//encrypt" "{\"alg\":\"$gcm\",\"value\":\"$pt64\",\"iv\":\"$(rnd 12)\"}"
    fi
    lens=(16 24 32 64)
    [ "$size" = 256 ] || lens=(32)
    for len in "${lens[@]}"; do
        cek=$(rnd $len)
        expect 200 POST "/keys/$k//wrapkey" "{\"alg\":\"$kw\",\"value\":\"$cek\"}"
        w=$(j .value)
        [ "$(unb64u "$w" | wc -c)" = $((len + 8)) ] || fail "KW adds 8 bytes"
        expect 200 POST "/keys/$k//unwrapkey" "{\"alg\":\"$kw\",\"value\":\"$w\"}"
        [ "$(j .value)" = "$cek" ] || fail "$kw round trip"
    done
    expect_err 400 BadParameter POST "/keys/$k//unwrapkey" "{\"alg\":\"$kw\",\"value\":\"$(rnd 40)\"}"
    bad_lens=(8 15 17)
    [ "$size" = 256 ] || bad_lens=(15)
    for len in "${bad_lens[@]}"; do
        expect_err 400 BadParameter POST "/keys/$k//wrapkey" "{\"alg\":\"$kw\",\"value\":\"$(rnd $len)\"}"
    done
    other=$([ $size = 256 ] && echo 128 || echo 256)
    expect_err 400 BadParameter POST "/keys/$k//encrypt" "{\"alg\":\"A${other}GCM\",\"value\":\"$pt64\"}"
    expect_err 400 BadParameter POST "/keys/$k//wrapkey" "{\"alg\":\"A${other}KW\",\"value\":\"$(rnd 32)\"}"
    expect_err 400 BadParameter POST "/keys/$k//encrypt" "{\"alg\":\"RSA-OAEP-256\",\"value\":\"$pt64\"}"
    expect_err 400 BadParameter POST "/keys/$k//encrypt" "{\"alg\":\"$kw\",\"value\":\"$pt64\"}"
    expect_err 403 Forbidden POST "/keys/$k//sign" "{\"alg\":\"RS256\",\"value\":\"$(rnd 32)\"}"
done
# RFC 3394 and openssl agree with the vault's AES key wrap (an imported, known key)
expect 200 PUT /keys/kw-known '{"key":{"kty":"oct","k":"AAECAwQFBgcICQoLDA0ODw"}}'
expect 200 POST /keys/kw-known//wrapkey "{\"alg\":\"A128KW\",\"value\":\"$(unhex 00112233445566778899AABBCCDDEEFF | b64u)\"}"
[ "$(unb64u "$(j .value)" | hex)" = 1fa68b0a8112b447aef34bd8fb5a7b829d3e862371d2cfe5 ] || fail "RFC 3394 4.1"
cek=$(openssl rand -hex 32)
expect 200 POST /keys/kw-known//wrapkey "{\"alg\":\"A128KW\",\"value\":\"$(unhex "$cek" | b64u)\"}"
mine=$(unhex "$cek" | openssl enc -id-aes128-wrap -K 000102030405060708090A0B0C0D0E0F -iv A6A6A6A6A6A6A6A6 -nopad | hex)
[ "$(unb64u "$(j .value)" | hex)" = "$mine" ] || fail "openssl's AES key wrap differs"
ok

# ---- malformed operation requests --------------------------------------------------------------
for b in '{"alg":"A128GCM"}' '{"value":"eA"}' '{"alg":"A128CBC","value":"eA"}' '{"alg":"RSA-OAEP-512","value":"eA"}' \
    '{"alg":"A128GCM","value":"e A"}' '{"alg":"A128GCM","value":"eA+/"}' '{"alg":"A128GCM","value":12}' \
    '{"alg":"A128GCM","value":"eA","aad":false}' '{"alg":"A128GCM","value":""}' 'nope' '{"alg":"A128GCM","value":"eA"'; do
    expect_err 400 BadParameter POST /keys/oct128//encrypt "$b"
done
expect_err 400 BadParameter POST /keys/ec256//verify "{\"alg\":\"ES256\",\"value\":\"$(rnd 64)\"}"
expect_err 404 KeyNotFound POST /keys/no-such-key//encrypt "{\"alg\":\"A128GCM\",\"value\":\"$pt64\"}"
expect_err 404 KeyNotFound POST /keys/oct128/0123456789abcdef0123456789abcdef/encrypt "{\"alg\":\"A128GCM\",\"value\":\"$pt64\"}"

# ---- key state: disabled, not yet valid, expired; key_ops -----------------------------------------
now=$(date +%s)
expect 200 POST /keys/state/create '{"kty":"oct","key_size":256}'
expect 200 POST /keys/state//encrypt "{\"alg\":\"A256GCM\",\"value\":\"$pt64\"}"
c=$(j .value) iv=$(j .iv) tag=$(j .tag)
gcm=A256GCM
expect 200 PATCH /keys/state/ '{"attributes":{"enabled":false}}'
expect_err 403 Forbidden POST /keys/state//encrypt "{\"alg\":\"A256GCM\",\"value\":\"$pt64\"}"
expect_err 403 Forbidden POST /keys/state//decrypt "$(dec "$c" "$iv" "$tag")"
expect 200 GET /keys/state/
expect 200 PATCH /keys/state/ "{\"attributes\":{\"enabled\":true,\"nbf\":$((now + 3600))}}"
expect_err 403 Forbidden POST /keys/state//encrypt "{\"alg\":\"A256GCM\",\"value\":\"$pt64\"}"
expect_err 403 Forbidden POST /keys/state//decrypt "$(dec "$c" "$iv" "$tag")"
expect 200 PATCH /keys/state/ "{\"attributes\":{\"nbf\":null,\"exp\":$((now - 10))}}"
expect_err 403 Forbidden POST /keys/state//encrypt "{\"alg\":\"A256GCM\",\"value\":\"$pt64\"}"
expect_err 403 Forbidden POST /keys/state//wrapkey "{\"alg\":\"A256KW\",\"value\":\"$(rnd 32)\"}"
expect 200 POST /keys/state//decrypt "$(dec "$c" "$iv" "$tag")"
[ "$(j .value)" = "$pt64" ] || fail "an expired key still decrypts"
expect 200 PATCH /keys/state/ '{"attributes":{"exp":null},"key_ops":["decrypt"]}'
expect_err 403 Forbidden POST /keys/state//encrypt "{\"alg\":\"A256GCM\",\"value\":\"$pt64\"}"
expect_err 403 Forbidden POST /keys/state//wrapkey "{\"alg\":\"A256KW\",\"value\":\"$(rnd 32)\"}"
expect 200 POST /keys/state//decrypt "$(dec "$c" "$iv" "$tag")"
expect 200 PATCH /keys/state/ '{"key_ops":[]}'
expect_err 403 Forbidden POST /keys/state//decrypt "$(dec "$c" "$iv" "$tag")"
expect 200 POST /keys/opsk/create '{"kty":"EC","key_ops":["verify"]}'
expect_err 403 Forbidden POST /keys/opsk//sign "{\"alg\":\"ES256\",\"value\":\"$(rnd 32)\"}"

# ---- exportable keys and release policies -------------------------------------------------------
policy='{"version":"1.0.0","anyOf":[{"authority":"https://attest.example","allOf":[{"claim":"x-ms-attestation-type","equals":"sevsnpvm"}]}]}'
p64=$(printf '%s' "$policy" | b64u)
expect 200 POST /keys/exp1/create "{\"kty\":\"RSA\",\"attributes\":{\"exportable\":true},\"release_policy\":{\"data\":\"$p64\",\"immutable\":true}}"
[ "$(j .attributes.exportable)" = true ] || fail "exportable"
[ "$(j .release_policy.immutable)" = true ] || fail "immutable"
[ "$(unb64u "$(j .release_policy.data)" | jq -c -S .)" = "$(printf '%s' "$policy" | jq -c -S .)" ] || fail "policy round trip"
other=$(printf '%s' '{"version":"1.0.0","anyOf":[{"authority":"https://x.example","allOf":[{"claim":"a","equals":"b"}]}]}' | b64u)
expect_err 409 Conflict PATCH /keys/exp1/ "{\"release_policy\":{\"data\":\"$other\"}}"
expect 200 PATCH /keys/exp1/ "{\"release_policy\":{\"data\":\"$p64\"}}"
expect_err 400 BadParameter POST /keys/exp2/create "{\"kty\":\"RSA\",\"release_policy\":{\"data\":\"$(printf '{"anyOf":[]}' | b64u)\"}}"

# ---- soft delete, recover, purge ----------------------------------------------------------------
expect 200 POST /keys/del/create '{"kty":"EC","crv":"P-384","tags":{"x":"y"}}'
kid=$(j .key.kid)
expect 200 DELETE /keys/del
[ "$(j .recoveryId)" = "$url/deletedkeys/del" ] || fail "recoveryId"
[ "$(j .key.kid)" = "$kid" ] || fail "deleted bundle kid"
dd=$(j .deletedDate) sp=$(j .scheduledPurgeDate)
[ "$sp" = $((dd + 90 * 86400)) ] || fail "scheduledPurgeDate is deletedDate + 90 days"
expect_err 404 KeyNotFound GET /keys/del/
expect_err 404 KeyNotFound DELETE /keys/del
expect_err 404 KeyNotFound POST /keys/del//sign "{\"alg\":\"ES384\",\"value\":\"$(rnd 48)\"}"
expect_err 409 Conflict POST /keys/del/create '{"kty":"EC"}'
expect 200 GET /deletedkeys/del
[ "$(j .key.crv)" = P-384 ] && [ "$(j .deletedDate)" = "$dd" ] || fail "get deleted"
expect 200 GET '/deletedkeys?maxresults=1'
[ "$(j '.value | length')" = 1 ] || fail "deleted list page"
expect 200 GET /deletedkeys
[ "$(j '[.value[] | select(.kid == "'"$url"'/keys/del")] | length')" = 1 ] || fail "deleted list"
[ "$(j '.value[0].recoveryId != null and .value[0].deletedDate != null')" = true ] || fail "deleted items"
expect 200 GET /keys
[ "$(j '[.value[] | select(.kid == "'"$url"'/keys/del")] | length')" = 0 ] || fail "deleted keys are not listed"
expect 200 POST /deletedkeys/del/recover
[ "$(j .key.kid)" = "$kid" ] || fail "recover brings back the version"
expect 200 GET /keys/del/
expect_err 404 KeyNotFound GET /deletedkeys/del
expect_err 404 KeyNotFound DELETE /deletedkeys/del
expect_err 404 KeyNotFound POST /deletedkeys/del/recover
expect 200 DELETE /keys/del
expect 204 DELETE /deletedkeys/del
[ ! -s "$work/resp" ] || fail "204 with a body"
expect_err 404 KeyNotFound DELETE /deletedkeys/del
expect_err 404 KeyNotFound GET /deletedkeys/del
expect 200 POST /keys/del/create '{"kty":"EC"}'
[ "$(j .key.kid)" != "$kid" ] || fail "a purged name starts over"
expect 200 GET /keys/del/versions
[ "$(j '.value | length')" = 1 ] || fail "one version after a purge"

# ---- backup and restore -----------------------------------------------------------------------
expect 200 POST /keys/bak/create '{"kty":"RSA","tags":{"keep":"me"}}'
bv1=$(basename "$(j .key.kid)")
expect 200 POST /keys/bak/rotate
bv2=$(basename "$(j .key.kid)")
expect 200 POST /keys/bak/$bv1/encrypt "{\"alg\":\"RSA-OAEP-256\",\"value\":\"$pt64\"}"
oldct=$(j .value)
expect 200 POST /keys/bak/backup
blob=$(j .value)
[ "$(unb64u "$blob" | head -c 8)" = CLSTKBK1 ] || fail "backup blob magic"
if unb64u "$blob" | grep -q 'keep'; then fail "the backup is not encrypted"; fi
expect_err 409 Conflict POST /keys/restore "{\"value\":\"$blob\"}"
expect 200 DELETE /keys/bak
expect_err 409 Conflict POST /keys/restore "{\"value\":\"$blob\"}"
expect 204 DELETE /deletedkeys/bak
expect_err 404 KeyNotFound POST /keys/bak/backup
mid=$(($(unb64u "$blob" | wc -c) / 2))
expect_err 400 BadParameter POST /keys/restore "{\"value\":\"$(flip_b64u "$blob" $((mid * 2)))\"}"
expect_err 400 BadParameter POST /keys/restore "{\"value\":\"$(flip_b64u "$blob" 20)\"}"
expect_err 400 BadParameter POST /keys/restore "{\"value\":\"$(printf 'not a backup' | b64u)\"}"
expect_err 400 BadParameter POST /keys/restore '{"value":"***"}'
expect_err 400 BadParameter POST /keys/restore '{}'
expect 200 POST /keys/restore "{\"value\":\"$blob\"}"
[ "$(basename "$(j .key.kid)")" = "$bv2" ] || fail "restore: the latest version"
[ "$(j .tags.keep)" = me ] || fail "restore: tags"
expect 200 GET /keys/bak/versions
[ "$(j '[.value[].kid | split("/") | last] | sort | join(",")')" = "$(printf '%s\n' "$bv1" "$bv2" | sort | paste -sd,)" ] ||
    fail "restore: the same versions"
expect 200 POST /keys/bak/$bv1/decrypt "{\"alg\":\"RSA-OAEP-256\",\"value\":\"$oldct\"}"
[ "$(j .value)" = "$pt64" ] || fail "restore: the same material"

# ---- random bytes ------------------------------------------------------------------------------
for n in 1 32 128; do
    expect 200 POST /rng "{\"count\":$n}"
    [ "$(unb64u "$(j .value)" | wc -c)" = "$n" ] || fail "rng $n"
done
for b in '{"count":0}' '{"count":129}' '{"count":"8"}' '{"count":-1}' '{}' '{"count":1.5}'; do
    expect_err 400 BadParameter POST /rng "$b"
done

# ---- import ------------------------------------------------------------------------------------
quietly "openssl genpkey (imp-rsa.pem)" \
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$work/imp-rsa.pem"
quietly "openssl genpkey (imp-ec.pem)" \
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out "$work/imp-ec.pem"
export CLOISTER_URL=$url CLOISTER_TOKEN=$token CLOISTER_CA=$ca
"$CLOISTER" key import imp-rsa --pem "$work/imp-rsa.pem" --ops sign,verify,decrypt --tag src=pem >"$work/out"
grep -q '^type *RSA 2048 bits' "$work/out" || fail "import: $(cat "$work/out")"
printf 'imported' >"$work/msg"
dg=$(openssl dgst -sha256 -binary "$work/msg" | b64u)
expect 200 POST /keys/imp-rsa//sign "{\"alg\":\"RS256\",\"value\":\"$dg\"}"
unb64u "$(j .value)" >"$work/sig"
openssl dgst -sha256 -sign "$work/imp-rsa.pem" -out "$work/sig2" "$work/msg"
cmp -s "$work/sig" "$work/sig2" || fail "the imported key signs like the original (RS256 is deterministic)"
ok
"$CLOISTER" key import imp-ec --pem "$work/imp-ec.pem" --json >"$work/out"
[ "$(jq -r .key.crv "$work/out")" = P-384 ] || fail "import EC"
expect 200 GET /keys/imp-ec/
expect_err 400 BadParameter PUT /keys/imp-pub "{\"key\":$(jq -c '.key | del(.kid, .key_ops)' "$work/resp")}"
expect_err 400 BadParameter PUT /keys/imp-bad '{"key":{"kty":"oct","k":"AAEC"}}'
expect_err 400 BadParameter PUT /keys/imp-bad '{"key":{"kty":"oct","k":"AAECAwQFBgcICQoLDA0ODw"},"Hsm":true}'
expect_err 400 BadParameter PUT /keys/imp-bad '{"key":"x"}'

# ---- the CLI -----------------------------------------------------------------------------------
K() { "$CLOISTER" key "$@"; }
K create cli-oct --kty oct --size 256 --tag team=data >"$work/out"
grep -q '^kid .*/keys/cli-oct/[0-9a-f]\{32\}$' "$work/out" || fail "CLI create: $(cat "$work/out")"
K get cli-oct --json | jq -e '.key.kty == "oct"' >/dev/null || fail "CLI get --json"
K list | grep -q '^cli-oct ' || fail "CLI list"
K list --json | jq -e '.value | length > 10' >/dev/null || fail "CLI list --json follows nextLink"
printf 'CLI secret data\n' >"$work/clip"
K encrypt cli-oct --alg A256GCM --in "$work/clip" --aad ctx --out "$work/clip.json"
jq -e '.iv and .tag and .kid and .alg == "A256GCM"' "$work/clip.json" >/dev/null || fail "CLI encrypt document"
K rotate cli-oct >"$work/out"
grep -q 'rotated' "$work/out" || fail "CLI rotate"
K decrypt cli-oct --in "$work/clip.json" --out "$work/clip.out"
cmp -s "$work/clip" "$work/clip.out" || fail "CLI decrypt after rotation (the document's version)"
[ "$(stat -c %a "$work/clip.out")" = 600 ] || fail "CLI output mode"
jq '.aad = "eA"' "$work/clip.json" >"$work/clip.bad"
if K decrypt cli-oct --in "$work/clip.bad" --out "$work/x" 2>"$work/err"; then fail "CLI decrypt with the wrong aad"; fi
grep -q 'HTTP 400' "$work/err" || fail "CLI error message: $(cat "$work/err")"
K versions cli-oct | grep -c '^[0-9a-f]\{32\} ' | grep -q '^2$' || fail "CLI versions"
head -c 32 /dev/urandom >"$work/cek"
K wrap rsa2048 --alg RSA-OAEP-256 --in "$work/cek" --out "$work/cek.json"
K unwrap rsa2048 --in "$work/cek.json" --out "$work/cek.out"
cmp -s "$work/cek" "$work/cek.out" || fail "CLI wrap/unwrap"
K sign ec384 --alg ES384 --in "$work/clip" --out "$work/clip.sig"
K verify ec384 --alg ES384 --in "$work/clip" --signature-file "$work/clip.sig" | grep -qx valid || fail "CLI verify"
if K verify ec384 --alg ES384 --in "$work/clip.json" --signature-file "$work/clip.sig" >"$work/out"; then
    fail "CLI verify of other data succeeded"
fi
grep -qx invalid "$work/out" || fail "CLI says invalid"
K update cli-oct --disable --tag a=b >/dev/null
K get cli-oct | grep -q '^enabled *no' || fail "CLI update --disable"
K update cli-oct --enable --ops encrypt,decrypt >/dev/null
K backup cli-oct --out "$work/cli.bak" 2>/dev/null
K delete cli-oct | grep -q 'deleted' || fail "CLI delete"
K list --deleted | grep -q '^cli-oct ' || fail "CLI list --deleted"
K recover cli-oct | grep -q recovered || fail "CLI recover"
K delete cli-oct >/dev/null
K purge cli-oct | grep -q purged || fail "CLI purge"
K restore --in "$work/cli.bak" >"$work/out"
grep -q '^kid .*/keys/cli-oct/' "$work/out" || fail "CLI restore"
K get rsa2048 --pem | openssl pkey -pubin -noout 2>/dev/null || fail "CLI get --pem"
ok
# errors and usage
if K get no-such-key 2>"$work/err"; then fail "CLI get of a missing key"; fi
grep -q 'HTTP 404 KeyNotFound' "$work/err" || fail "CLI 404 message: $(cat "$work/err")"
set +e
K get rsa2048 --token wrong >/dev/null 2>"$work/err"
rc=$?
K bogus >/dev/null 2>&1
rc2=$?
K create >/dev/null 2>&1
rc3=$?
env -u CLOISTER_TOKEN "$CLOISTER" key list >/dev/null 2>&1
rc4=$?
set -e
[ "$rc" = 1 ] && grep -q 'HTTP 401' "$work/err" || fail "CLI with a wrong token: $rc $(cat "$work/err")"
[ "$rc2" = 2 ] && [ "$rc3" = 2 ] && [ "$rc4" = 2 ] || fail "CLI usage errors exit 2 ($rc2 $rc3 $rc4)"
ok
unset CLOISTER_URL CLOISTER_TOKEN CLOISTER_CA
"$CLOISTER" key get rsa2048 --url "$url" --token "$token" --ca "$ca" >/dev/null || fail "CLI --url/--token/--ca"
ok

# ---- a row edited in the database file ----------------------------------------------------------
# The server reads rows again at most CLST_VAULT_CACHE_TTL_MS (1 s) after another process edited
# the file (src/vault/store_cache.c): each edit waits that long before the next request.
edit_db() {
    sqlite3 "$db" "$1"
    sleep 1.2
}
expect 200 POST /keys/tamper/create '{"kty":"oct","key_size":256}'
expect 200 POST /keys/tamper//encrypt "{\"alg\":\"A256GCM\",\"value\":\"$pt64\"}"
c=$(j .value) iv=$(j .iv) tag=$(j .tag)
gcm=A256GCM
edit_db "UPDATE versions SET enabled = 1 - enabled WHERE object_id = (SELECT id FROM objects WHERE name = 'tamper');"
expect_err 500 InternalError GET /keys/tamper/
expect_err 500 InternalError POST /keys/tamper//decrypt "$(dec "$c" "$iv" "$tag")"
if grep -q "$pt64" "$work/resp"; then fail "plaintext in the answer for a tampered row"; fi
grep -q 'failed its integrity check' "$work/serve.err" || fail "the server log says why"
edit_db "UPDATE versions SET enabled = 1 - enabled WHERE object_id = (SELECT id FROM objects WHERE name = 'tamper');"
expect 200 POST /keys/tamper//decrypt "$(dec "$c" "$iv" "$tag")"
edit_db "UPDATE versions SET nonce = zeroblob(12) WHERE object_id = (SELECT id FROM objects WHERE name = 'tamper');"
expect_err 500 InternalError POST /keys/tamper//decrypt "$(dec "$c" "$iv" "$tag")"
if grep -q "$pt64" "$work/resp"; then fail "plaintext in the answer for a tampered seal"; fi
[ "$(sqlite3 "$db" 'PRAGMA integrity_check')" = ok ] || fail "integrity_check"
ok

# ---- a clean stop --------------------------------------------------------------------------------
kill -TERM "$server_pid"
wait "$server_pid" || { show_server_log; fail "cloister serve exited non-zero on SIGTERM"; }
server_pid=""
echo "vault_keys: $checks checks passed"
