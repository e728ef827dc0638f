#!/usr/bin/env bash
# The role matrix for secrets and principals: for each of the seven built-in roles, one principal
# holding it vault-wide ("/") and one holding it on a single object (/secrets/target for roles
# that apply to secrets, /keys/target for the key-only roles); every secret and principal
# endpoint is called by each, and must answer as the table in docs/vault.md says: the success
# status when allowed, 403 Forbidden when denied. Before each call an administrator puts the
# secret into the state the endpoint needs (live or deleted), so that an allowed call has exactly
# one right answer. The key endpoints are in vault_roles_keys.sh.
set -euo pipefail

: "${CLOISTER:?CLOISTER must point at the cloister binary}"
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/serve.sh"
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
    [[ -f "$tmp/serve.err" ]] && { echo "--- serve.err" >&2; tail -n 20 "$tmp/serve.err" >&2; }
}

serve_start "$tmp/serve.out" "$tmp/serve.err" --data "$data" --listen 127.0.0.1:0
pid=$server_pid
ca="$data/ca.pem"
admin=$(cat "$data/admin-token")
API="api-version=2025-07-01"

api_status() { # api_status TOKEN METHOD PATH
    curl -sS --cacert "$ca" -X "$2" -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $1" "$url$3"
}

# Preflight: a server without the vault routes answers 404 here, not 401.
probe=$(curl -sS --cacert "$ca" -o /dev/null -w '%{http_code}' "$url/secrets?api-version=2025-07-01") ||
    fail "GET /secrets failed"
[[ "$probe" == 401 ]] || fail "GET /secrets without a token answered $probe, want 401: this cloister serve does not serve the vault API (is clst_vault_register wired into src/cli/cmd_serve.c?)"

# ---- batches: one curl process, one kept-alive TLS connection ----------------------------------
# Every request is appended to a curl config file (add TOKEN METHOD PATH BODY WANT WHAT) together
# with its expected status; run_batch sends them in order and checks every answer. The answers
# of request N land in $tmp/r/N.
mkdir -p "$tmp/r"
n=0
cfg="$tmp/batch.cfg"
: >"$cfg"
WANT=()
WHAT=()
DENIED=()
add() {
    local token=$1 method=$2 path=$3 body=$4 want=$5 what=$6 denied=${7-no}
    n=$((n + 1))
    {
        [[ -s "$cfg" ]] && echo "next"
        echo "url = \"$url$path\""
        echo "cacert = \"$ca\""
        echo "request = \"$method\""
        echo "header = \"Authorization: Bearer $token\""
        if [[ -n "$body" ]]; then
            echo 'header = "Content-Type: application/json"'
            printf 'data-binary = "%s"\n' "${body//\"/\\\"}"
        fi
        echo "output = \"$tmp/r/$n\""
        echo 'write-out = "%{http_code}\n"'
    } >>"$cfg"
    WANT[$n]=$want
    WHAT[$n]=$what
    DENIED[$n]=$denied
}
run_batch() {
    local statuses i=0 got
    curl -sS -K "$cfg" >"$tmp/statuses" || true
    mapfile -t statuses <"$tmp/statuses"
    for ((i = first; i <= n; i++)); do
        got=${statuses[$((i - first))]-none}
        [[ "$got" == "${WANT[$i]}" ]] ||
            fail "${WHAT[$i]}: answered $got, want ${WANT[$i]}: $(cat "$tmp/r/$i" 2>/dev/null)"
        if [[ "${DENIED[$i]}" == yes ]]; then
            grep -qF '"code":"Forbidden"' "$tmp/r/$i" || fail "${WHAT[$i]}: 403 without Forbidden"
            # The message names what was refused and the roles that would allow it.
            grep -q 'may not .*that needs one of the roles' "$tmp/r/$i" ||
                fail "${WHAT[$i]}: 403 message: $(cat "$tmp/r/$i")"
        fi
    done
    : >"$cfg"
    first=$((n + 1))
}
first=1

# ---- the state of /secrets/target, kept by the administrator -----------------------------------
state=absent
ensure() {
    case "$1:$state" in
    live:live | deleted:deleted | any:*) ;;
    live:absent) add "$admin" PUT "/secrets/target?$API" '{"value":"v"}' 200 "setup: set" ;;
    live:deleted) add "$admin" POST "/deletedsecrets/target/recover?$API" "" 200 "setup: recover" ;;
    deleted:absent)
        add "$admin" PUT "/secrets/target?$API" '{"value":"v"}' 200 "setup: set"
        add "$admin" DELETE "/secrets/target?$API" "" 200 "setup: delete"
        ;;
    deleted:live) add "$admin" DELETE "/secrets/target?$API" "" 200 "setup: delete" ;;
    *) fail "ensure $1 from $state" ;;
    esac
    [[ "$1" == any ]] || state=$1
}

# ---- the endpoints -------------------------------------------------------------------------------
# id|method|path|body|permission|scope (named/vault)|needs (live/deleted/any)|status|state after
ENDPOINTS=(
    "set|PUT|/secrets/target?$API|{\"value\":\"new\"}|set|named|live|200|live"
    "get|GET|/secrets/target/?$API||get|named|live|200|live"
    "update|PATCH|/secrets/target/?$API|{\"tags\":{\"k\":\"v\"}}|update|named|live|200|live"
    "versions|GET|/secrets/target/versions?$API||read|named|live|200|live"
    "list|GET|/secrets?$API||read|vault|any|200|-"
    "delete|DELETE|/secrets/target?$API||delete|named|live|200|deleted"
    "deleted-get|GET|/deletedsecrets/target?$API||dread|named|deleted|200|deleted"
    "deleted-list|GET|/deletedsecrets?$API||dread|vault|any|200|-"
    "recover|POST|/deletedsecrets/target/recover?$API||recover|named|deleted|200|live"
    "purge|DELETE|/deletedsecrets/target?$API||purge|named|deleted|204|absent"
    "principal-list|GET|/principals||pread|vault|any|200|-"
    "principal-get|GET|/principals/admin||pread|vault|any|200|-"
    "principal-create|POST|/principals|{\"name\":\"made by test\"}|pwrite|vault|any|200|-"
    "principal-delete|DELETE|/principals/VICTIM||pwrite|vault|any|200|-"
)

# What each role grants on secrets and principals (docs/vault.md, written out independently of
# src/vault/rbac.c).
declare -A GRANTS=(
    ["Administrator"]="set get update read delete dread recover purge pread pwrite"
    ["Crypto Officer"]=""
    ["Crypto User"]=""
    ["Crypto Service Release User"]=""
    ["Crypto Auditor"]="read dread"
    ["Secrets Officer"]="set get update read delete dread recover purge"
    ["Secrets User"]="read get"
)
declare -A SCOPED_AT=(
    ["Administrator"]="/secrets/target"
    ["Crypto Officer"]="/keys/target"
    ["Crypto User"]="/keys/target"
    ["Crypto Service Release User"]="/keys/target"
    ["Crypto Auditor"]="/secrets/target"
    ["Secrets Officer"]="/secrets/target"
    ["Secrets User"]="/secrets/target"
)
ROLES=("Administrator" "Crypto Officer" "Crypto User" "Crypto Service Release User"
    "Crypto Auditor" "Secrets Officer" "Secrets User")

# ---- principals: one per (role, scope), and a victim for every principal-delete call ---------
declare -A TOKEN
add "$admin" PUT "/secrets/other?$API" '{"value":"o"}' 200 "setup: other secret"
for role in "${ROLES[@]}"; do
    for scope in "/" "${SCOPED_AT[$role]}"; do
        add "$admin" POST "/principals" \
            "{\"name\":\"$role at $scope\",\"roles\":[{\"role\":\"$role\",\"scope\":\"$scope\"}]}" \
            200 "create $role at $scope"
        TOKEN["$role|$scope"]=$n
    done
done
victims_from=$((n + 1))
for ((k = 0; k < 2 * ${#ROLES[@]}; k++)); do
    add "$admin" POST "/principals" '{"name":"victim"}' 200 "create victim $k"
done
run_batch
for key in "${!TOKEN[@]}"; do
    t=$(sed -n 's/^{"token":"\([A-Za-z0-9_-]\{43\}\)".*/\1/p' "$tmp/r/${TOKEN[$key]}")
    [[ -n "$t" ]] || fail "no token for $key: $(cat "$tmp/r/${TOKEN[$key]}")"
    TOKEN[$key]=$t
done
VICTIMS=()
for ((k = 0; k < 2 * ${#ROLES[@]}; k++)); do
    v=$(sed -n 's/.*"id":"\(p-[0-9a-f]\{16\}\)".*/\1/p' "$tmp/r/$((victims_from + k))")
    [[ -n "$v" ]] || fail "no victim id"
    VICTIMS+=("$v")
done

# ---- the matrix ------------------------------------------------------------------------------------
checks=0
allowed_count=0
victim=0
for role in "${ROLES[@]}"; do
    for scope in "/" "${SCOPED_AT[$role]}"; do
        token=${TOKEN["$role|$scope"]}
        for e in "${ENDPOINTS[@]}"; do
            IFS='|' read -r id method path body perm kind needs status after <<<"$e"
            allowed=no
            if [[ " ${GRANTS[$role]} " == *" $perm "* ]]; then
                if [[ "$scope" == "/" ]]; then
                    allowed=yes
                elif [[ "$kind" == named && "$scope" == /secrets/* ]]; then
                    allowed=yes
                fi
            fi
            ensure "$needs"
            if [[ "$id" == principal-delete ]]; then
                path=${path/VICTIM/${VICTIMS[$victim]}}
                victim=$((victim + 1))
            fi
            checks=$((checks + 1))
            if [[ $allowed == yes ]]; then
                allowed_count=$((allowed_count + 1))
                add "$token" "$method" "$path" "$body" "$status" "$role at $scope: $id (allowed)"
                [[ "$after" == - ]] || state=$after
            else
                add "$token" "$method" "$path" "$body" 403 "$role at $scope: $id (denied)" yes
            fi
        done
        # A scoped principal has nothing on another secret.
        if [[ "$scope" != "/" ]]; then
            add "$token" GET "/secrets/other/?$API" "" 403 "$role at $scope: get other" yes
            add "$token" PUT "/secrets/other?$API" '{"value":"x"}' 403 "$role at $scope: set other" yes
            add "$token" DELETE "/secrets/other?$API" "" 403 "$role at $scope: delete other" yes
            checks=$((checks + 3))
        fi
    done
done
run_batch

# 7 roles x 2 scopes x 14 endpoints + 7 x 3 calls on the other secret.
[[ $checks -eq $((7 * 2 * ${#ENDPOINTS[@]} + 7 * 3)) ]] || fail "ran $checks checks"
# Allowed cells, vault-wide + scoped: Administrator 14 + 8 (the named secret endpoints),
# Crypto Auditor 4 + 2 (versions, deleted-get), Secrets Officer 10 + 8, Secrets User 3 + 2
# (get, versions); the key-only roles none.
[[ $allowed_count -eq $((22 + 6 + 18 + 5)) ]] || fail "$allowed_count allowed cells, want 51"
# The vault-wide Administrator really deleted its victim; the others' victims are still there.
[[ $(api_status "$admin" GET "/principals/${VICTIMS[0]}") == 404 ]] || fail "victim 0 not deleted"
[[ $(api_status "$admin" GET "/principals/${VICTIMS[2]}") == 200 ]] || fail "victim 2 deleted"

kill -TERM "$pid"
wait "$pid" || fail "serve exited non-zero on SIGTERM"
pid="" server_pid=""
echo "vault_roles: ok ($checks checks, $allowed_count allowed)"
