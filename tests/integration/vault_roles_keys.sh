#!/usr/bin/env bash
# The role matrix of the vault's key endpoints against a fresh `cloister serve`: every key
# endpoint (and /rng) called by a principal holding each of the seven built-in roles at "/", plus
# key-scoped assignments, must be allowed exactly where src/vault/rbac.c's table says and
# answered 403 Forbidden (naming the permission) everywhere else; authorization comes before any
# lookup, so a denied principal learns nothing about which keys exist. Also: unknown, malformed
# and revoked tokens get 401 with the challenge.
#
# Needs curl and jq. Fails, never skips.
set -euo pipefail

CLOISTER=${CLOISTER:?set CLOISTER to the cloister binary}
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/serve.sh"
API=7.5
need_tools curl jq basenc openssl

work=$(mktemp -d)
server_pid=""
trap cleanup_server_and_work EXIT

data=$work/data
serve_start "$work/serve.out" "$work/serve.err" --data "$data" --listen 127.0.0.1:0
ca=$data/ca.pem
admin=$(cat "$data/admin-token")

# call TOKEN METHOD PATH [BODY]: sets $code; the body is in $work/resp.
call() {
    local tok=$1 method=$2 path=$3 body=${4-}
    local sep='?'
    [[ $path == *\?* ]] && sep='&'
    local args=(-sS --cacert "$ca" -o "$work/resp" -w '%{http_code}' -X "$method")
    [ -n "$tok" ] && args+=(-H "Authorization: Bearer $tok")
    [ -n "$body" ] && args+=(-H 'Content-Type: application/json' --data-binary "$body")
    code=$(curl "${args[@]}" "$url$path${sep}api-version=$API")
}
as_admin() {
    local want=$1
    shift
    call "$admin" "$@"
    [ "$code" = "$want" ] || fail "admin $1 $2: $code, want $want: $(head -c 400 "$work/resp")"
}
j() { jq -r "$1" "$work/resp"; }
b64u() { basenc --base64url -w0 | tr -d '='; }

probe=$(curl -sS --cacert "$ca" -o /dev/null -w '%{http_code}' "$url/keys?api-version=$API")
[ "$probe" = 401 ] || fail "the server does not serve the vault's key API (GET /keys answered $probe)"

# ---- principals ---------------------------------------------------------------------------------
roles=("Administrator" "Crypto Officer" "Crypto User" "Crypto Service Release User" "Crypto Auditor"
    "Secrets Officer" "Secrets User")
declare -A tok
# mkprincipal ID ROLES_JSON
mkprincipal() {
    as_admin 200 POST /principals "{\"id\":\"$1\",\"name\":\"$1\",\"roles\":$2}"
    tok[$1]=$(j .token)
    [ -n "${tok[$1]}" ] && [ "${tok[$1]}" != null ] || fail "no token for $1"
}
for i in "${!roles[@]}"; do
    mkprincipal "r$i" "[{\"role\":\"${roles[$i]}\",\"scope\":\"/\"}]"
done
mkprincipal scoped '[{"role":"Crypto User","scope":"/keys/K1"}]'
mkprincipal scoped-officer '[{"role":"Crypto Officer","scope":"/keys/k2"}]'
mkprincipal nothing '[]'

# ---- fixtures (made by the administrator) -------------------------------------------------------
as_admin 200 POST /keys/k1/create '{"kty":"RSA"}'
as_admin 200 POST /keys/k2/create '{"kty":"oct","key_size":256}'
as_admin 200 POST /keys/k1//encrypt "{\"alg\":\"RSA-OAEP-256\",\"value\":\"$(printf secret | b64u)\"}"
ct=$(j .value)
as_admin 200 POST /keys/k1//wrapkey "{\"alg\":\"RSA-OAEP\",\"value\":\"$(printf 0123456789abcdef | b64u)\"}"
wrapped=$(j .value)
digest=$(printf 'x' | openssl dgst -sha256 -binary | b64u)
as_admin 200 POST /keys/k1//sign "{\"alg\":\"RS256\",\"value\":\"$digest\"}"
sig=$(j .value)
jwk='{"kty":"oct","k":"AAECAwQFBgcICQoLDA0ODw"}'

# Per-principal fixtures: a key to delete, a deleted key to recover, one to purge, and a backup of
# a purged key to restore (so that every allowed call can succeed).
fixtures() {
    local p=$1
    as_admin 200 POST "/keys/del-$p/create" '{"kty":"EC"}'
    as_admin 200 POST "/keys/rec-$p/create" '{"kty":"EC"}'
    as_admin 200 DELETE "/keys/rec-$p"
    as_admin 200 POST "/keys/pur-$p/create" '{"kty":"EC"}'
    as_admin 200 DELETE "/keys/pur-$p"
    as_admin 200 POST "/keys/rst-$p/create" '{"kty":"EC"}'
    as_admin 200 POST "/keys/rst-$p/backup"
    j .value >"$work/blob-$p"
    as_admin 200 DELETE "/keys/rst-$p"
    as_admin 204 DELETE "/deletedkeys/rst-$p"
}

# The endpoints: name|permission|method|path|body|success status. @P is the principal's id.
endpoints=(
    "list|keys/read|GET|/keys||200"
    "get|keys/read|GET|/keys/k1/||200"
    "versions|keys/read|GET|/keys/k1/versions||200"
    "create|keys/create|POST|/keys/new-@P/create|{\"kty\":\"EC\"}|200"
    "import|keys/import|PUT|/keys/imp-@P|{\"key\":$jwk}|200"
    "update|keys/write|PATCH|/keys/k1/|{\"tags\":{\"by\":\"@P\"}}|200"
    "rotate|keys/rotate|POST|/keys/k2/rotate||200"
    "backup|keys/backup|POST|/keys/k1/backup||200"
    "restore|keys/restore|POST|/keys/restore|@BLOB|200"
    "delete|keys/delete|DELETE|/keys/del-@P||200"
    "encrypt|keys/encrypt|POST|/keys/k1//encrypt|{\"alg\":\"RSA-OAEP-256\",\"value\":\"eA\"}|200"
    "decrypt|keys/decrypt|POST|/keys/k1//decrypt|{\"alg\":\"RSA-OAEP-256\",\"value\":\"$ct\"}|200"
    "wrapkey|keys/wrap|POST|/keys/k2//wrapkey|{\"alg\":\"A256KW\",\"value\":\"AAAAAAAAAAAAAAAAAAAAAA\"}|200"
    "unwrapkey|keys/unwrap|POST|/keys/k1//unwrapkey|{\"alg\":\"RSA-OAEP\",\"value\":\"$wrapped\"}|200"
    "sign|keys/sign|POST|/keys/k1//sign|{\"alg\":\"RS256\",\"value\":\"$digest\"}|200"
    "verify|keys/verify|POST|/keys/k1//verify|{\"alg\":\"RS256\",\"digest\":\"$digest\",\"value\":\"$sig\"}|200"
    "deleted-list|keys/deletedKeys/read|GET|/deletedkeys||200"
    "deleted-get|keys/deletedKeys/read|GET|/deletedkeys/rec-@P||200"
    "recover|keys/deletedKeys/recover|POST|/deletedkeys/rec-@P/recover||200"
    "purge|keys/deletedKeys/delete|DELETE|/deletedkeys/pur-@P||204"
    "rng|rng|POST|/rng|{\"count\":16}|200"
)

# What rbac.c grants: permission → roles (by index in $roles).
declare -A grants=(
    [keys/read]="0 1 2 4" [keys/create]="0 1 2" [keys/import]="0 1 2" [keys/write]="0 1 2"
    [keys/rotate]="0 1 2" [keys/delete]="0 1 2" [keys/backup]="0 1 2" [keys/restore]="0 1 2"
    [keys/encrypt]="0 2" [keys/decrypt]="0 2" [keys/wrap]="0 2" [keys/unwrap]="0 2"
    [keys/sign]="0 2" [keys/verify]="0 2" [keys/deletedKeys/read]="0 1 2 4"
    [keys/deletedKeys/recover]="0 1" [keys/deletedKeys/delete]="0 1" [rng]="0 2"
)

checks=0
# run PRINCIPAL ALLOWED(yes/no) ENDPOINT
run() {
    local p=$1 allowed=$2 e=$3
    IFS='|' read -r what perm method path body want <<<"$e"
    path=${path//@P/$p}
    body=${body//@P/$p}
    if [ "$body" = @BLOB ]; then
        body="{\"value\":\"$(cat "$work/blob-$p")\"}"
    fi
    call "${tok[$p]}" "$method" "$path" "$body"
    if [ "$allowed" = yes ]; then
        [ "$code" = "$want" ] || fail "$p ($what) $method $path: $code, want $want: $(head -c 300 "$work/resp")"
    else
        [ "$code" = 403 ] || fail "$p ($what) $method $path: $code, want 403: $(head -c 300 "$work/resp")"
        [ "$(j .error.code)" = Forbidden ] || fail "$p ($what): error.code $(j .error.code)"
        grep -q "may not $perm" "$work/resp" || fail "$p ($what): the 403 does not name $perm: $(cat "$work/resp")"
    fi
    checks=$((checks + 1))
}

for i in "${!roles[@]}"; do
    p=r$i
    fixtures "$p"
    for e in "${endpoints[@]}"; do
        IFS='|' read -r _ perm _ <<<"$e"
        allowed=no
        for g in ${grants[$perm]}; do
            [ "$g" = "$i" ] && allowed=yes
        done
        run "$p" "$allowed" "$e"
    done
done

# ---- a principal with no role: everything 403, even for names that do not exist -----------------
fixtures nothing
for e in "${endpoints[@]}"; do
    run nothing no "$e"
done
call "${tok[nothing]}" GET /keys/no-such-key/
[ "$code" = 403 ] || fail "a denied principal must not learn that a key does not exist ($code)"
checks=$((checks + 1))

# ---- key-scoped assignments -----------------------------------------------------------------------
# Crypto User at /keys/K1 (scopes are case-insensitive like names): k1 only, nothing vault-wide.
call "${tok[scoped]}" GET /keys/k1/ && [ "$code" = 200 ] || fail "scoped get k1: $code"
call "${tok[scoped]}" POST /keys/k1//sign "{\"alg\":\"RS256\",\"value\":\"$digest\"}" && [ "$code" = 200 ] ||
    fail "scoped sign k1: $code"
call "${tok[scoped]}" GET /keys/k1/versions && [ "$code" = 200 ] || fail "scoped versions k1: $code"
call "${tok[scoped]}" POST /keys/k1/create '{"kty":"RSA"}' && [ "$code" = 200 ] || fail "scoped new version of k1: $code"
for req in "GET /keys/k2/" "GET /keys" "GET /deletedkeys" "POST /keys/k3/create" "POST /keys/k2/rotate"; do
    call "${tok[scoped]}" ${req% *} "${req#* }" '{"kty":"EC"}'
    [ "$code" = 403 ] || fail "scoped $req: $code, want 403"
    checks=$((checks + 1))
done
call "${tok[scoped]}" POST /rng '{"count":8}'
[ "$code" = 403 ] || fail "rng is vault-wide only ($code)"
# Crypto Officer at /keys/k2: can back up k2 and restore k2's backup, not another key's
call "${tok[scoped-officer]}" POST /keys/k2/backup && [ "$code" = 200 ] || fail "scoped officer backup: $code"
call "${tok[scoped-officer]}" POST /keys/restore "{\"value\":\"$(cat "$work/blob-r0")\"}"
[ "$code" = 403 ] || fail "a key-scoped officer restored another key's backup ($code)"
grep -q 'may not keys/restore on /keys/rst-r0' "$work/resp" || fail "restore 403 message: $(cat "$work/resp")"
call "${tok[scoped-officer]}" POST /keys/k2//encrypt '{"alg":"A256GCM","value":"eA"}'
[ "$code" = 403 ] || fail "Crypto Officer may not use keys ($code)"
checks=$((checks + 5))

# ---- authentication --------------------------------------------------------------------------------
for t in "" "not-a-token" "${tok[r2]}x" "Zm9v"; do
    code=$(curl -sS --cacert "$ca" -D "$work/h" -o "$work/resp" -w '%{http_code}' \
        ${t:+-H "Authorization: Bearer $t"} "$url/keys/k1/?api-version=$API")
    [ "$code" = 401 ] || fail "token '$t': $code, want 401"
    grep -qi '^www-authenticate: Bearer authorization="' "$work/h" || fail "401 without the challenge"
    checks=$((checks + 1))
done
code=$(curl -sS --cacert "$ca" -o "$work/resp" -w '%{http_code}' -H "Authorization: Basic ${tok[r2]}" "$url/keys/k1/?api-version=$API")
[ "$code" = 401 ] || fail "Basic auth: $code"
# a removed principal's token stops working at once
as_admin 200 DELETE /principals/r2
call "${tok[r2]}" GET /keys/k1/
[ "$code" = 401 ] || fail "a deleted principal's token still works ($code)"
checks=$((checks + 2))

kill -TERM "$server_pid"
wait "$server_pid" || fail "cloister serve exited non-zero on SIGTERM"
server_pid=""
echo "vault_roles_keys: $checks checks passed"
