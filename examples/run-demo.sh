#!/usr/bin/env bash
# The confidential-computing journey of `make demo`, narrated: a sim TEE, the attestation service
# and key vault (`cloister serve`), two enclaves signed and measured, keys with release policies
# pinned to the measurements, data encrypted by its owner, the enclaves run (attest -> release ->
# decrypt -> compute -> encrypt), the results decrypted by the owner; then a modified enclave
# denied (the denial names the failing claim) and the audit trail verified. Everything runs in a
# temporary directory and everything started here is stopped on exit.
#
# usage: CLOISTER=build/cloister BUILD_DIR=build examples/run-demo.sh
#    or: examples/run-demo.sh BUILD_DIR
# Needs: openssl, jq; BUILD_DIR holds cloister, finance-enclave.so, health-ml-enclave.so and
# gen-transactions. Takes about half a minute.
set -euo pipefail

BUILD_DIR=${BUILD_DIR:-${1:-build}}
BUILD_DIR=$(cd "$BUILD_DIR" && pwd)
CLOISTER=${CLOISTER:-$BUILD_DIR/cloister}
case "$CLOISTER" in /*) ;; *) CLOISTER=$(pwd)/$CLOISTER ;; esac
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

die() {
    echo "demo: $*" >&2
    exit 1
}
[ -x "$CLOISTER" ] || die "$CLOISTER not found; build first (make build)"
for f in finance-enclave.so health-ml-enclave.so gen-transactions; do
    [ -e "$BUILD_DIR/$f" ] || die "$BUILD_DIR/$f not found; build first (make build)"
done
for tool in openssl jq; do
    command -v "$tool" >/dev/null || die "$tool is not installed (make deps)"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/cloister-demo.XXXXXX")
server_pid=""
cleanup() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
cd "$work"
started=$(date +%s)

# Presentation: a heading per step, the command as a person would type it, an excerpt of what it
# printed (indented). `cloister` below is the binary under test.
cloister() { "$CLOISTER" "$@"; }
n=0
# Bold headings on a terminal only (NO_COLOR honoured); plain text in logs and pipes.
if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold='' plain=''; fi
step() {
    n=$((n + 1))
    printf '\n%s%d. %s%s\n' "$bold" "$n" "$*" "$plain"
}
say() { printf '   %s\n' "$*"; }
# Long hex strings (measurements, fingerprints) shortened for the eye.
short() { sed -E 's/([0-9a-f]{12})[0-9a-f]{40,}/\1.../g'; }
# run LINES CMD...: show and run CMD, print its first LINES lines of output; fail the demo on error
run() {
    local lines=$1 shown="" a
    shift
    for a in "$@"; do
        case "$a" in *" "*) shown="$shown '$a'" ;; *) shown="$shown $a" ;; esac
    done
    printf '   $%s\n' "$shown" | short
    if ! "$@" >"$work/out" 2>&1; then
        sed 's/^/     /' "$work/out" >&2
        die "that command failed"
    fi
    if [ "$lines" -gt 0 ]; then
        head -n "$lines" "$work/out" | short | cut -c1-150 | sed 's/^/     /'
        if [ "$(wc -l <"$work/out")" -gt "$lines" ]; then
            printf '     ...\n'
        fi
    fi
}
sha256_of() { sha256sum | cut -d' ' -f1; }

echo "== Cloister: confidential computing you host yourself =="
say "Two workloads on private data: card-transaction analytics and a model trained on patient"
say "records. The data stays encrypted outside the enclave; keys are released only to the"
say "enclave whose measurement the data owner pinned. TEE: sim (development only: a sandboxed"
say "process, protected from other users' processes but not from root or the kernel)."
say "Working in $work"

# ---------------------------------------------------------------------------------------------------
step "Set up a TEE platform (sim: a locally generated platform key signs the evidence)"
run 3 cloister sim init plat

step "Start the attestation service and key vault on a free loopback port"
printf '   $ cloister serve --data data --listen 127.0.0.1:0 --trust-sim plat/root.pem &\n'
"$CLOISTER" serve --data data --listen 127.0.0.1:0 --trust-sim plat/root.pem \
    >serve.out 2>serve.err &
server_pid=$!
url=""
for _ in $(seq 1 300); do
    url=$(sed -n 's/^listening on \(https:\/\/127\.0\.0\.1:[0-9][0-9]*\)$/\1/p' serve.out)
    [ -n "$url" ] && break
    kill -0 "$server_pid" 2>/dev/null || { cat serve.err >&2; die "cloister serve exited"; }
    sleep 0.1
done
[ -n "$url" ] || die "cloister serve did not start within 30 s"
grep -E '^(attestation|key release|CA SHA-256|listening)' serve.out | sed 's/^/     /'
export CLOISTER_URL=$url CLOISTER_CA=$work/data/ca.pem
CLOISTER_TOKEN=$(cat data/admin-token)
export CLOISTER_TOKEN
say "(the administrator's token is in data/admin-token; clients pin data/ca.pem)"

# ---------------------------------------------------------------------------------------------------
step "Sign both enclaves and print what the platform will measure"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out signer.pem 2>/dev/null
cp "$BUILD_DIR/finance-enclave.so" "$BUILD_DIR/health-ml-enclave.so" .
run 1 cloister enclave sign finance-enclave.so --key signer.pem --product-id 10 --svn 1 -o finance.so
run 1 cloister enclave sign health-ml-enclave.so --key signer.pem --product-id 11 --svn 1 -o health.so
run 6 cloister enclave measure finance.so
fin_mre=$("$CLOISTER" enclave measure finance.so --json | jq -r .mrenclave)
hml_mre=$("$CLOISTER" enclave measure health.so --json | jq -r .mrenclave)

step "Keep the keys in the vault, each with a release policy pinned to one enclave's measurement"
policy() {
    cat >"$2" <<EOF
{"version":"1.0.0","anyOf":[{"authority":"$url","allOf":[
  {"claim":"x-ms-attestation-type","equals":"sim"},
  {"claim":"x-cloister-sim-is-debuggable","equals":false},
  {"claim":"x-cloister-sim-mrenclave","equals":"$1"}]}]}
EOF
}
policy "$fin_mre" finance-policy.json
policy "$hml_mre" health-policy.json
say "finance-policy.json:"
short <finance-policy.json | sed 's/^/     /'
run 3 cloister key create finance-data --kty oct --size 256 --exportable --release-policy finance-policy.json
run 0 cloister key create finance-tokens --kty oct --size 256 --exportable --release-policy finance-policy.json
run 0 cloister key create health-data --kty oct --size 256 --exportable --release-policy health-policy.json
say "(finance-tokens, the card tokenization key, and health-data were created the same way)"
say "The host that runs the enclaves gets a principal that may only ask for key releases:"
run 0 cloister principal create --name workload-host --json \
    --role 'Crypto Service Release User@/keys/finance-data' \
    --role 'Crypto Service Release User@/keys/finance-tokens' \
    --role 'Crypto Service Release User@/keys/health-data'
(umask 077 && jq -r .token out >host-token)
say "created principal workload-host (token in host-token)"

# ---------------------------------------------------------------------------------------------------
step "The data owner: a key pair for the results, then the data, encrypted under the vault keys"
run 0 cloister keygen --type rsa --bits 3072 -o owner.pem --public-out owner.pub.pem
"$BUILD_DIR/gen-transactions" --seed 42 -o tx.csv --truth truth.csv
say "\$ gen-transactions --seed 42 -o tx.csv --truth truth.csv     # $(($(wc -l <tx.csv) - 1)) transactions"
head -n 3 tx.csv | cut -c1-150 | sed 's/^/     /'
owner_fpr=$(openssl pkey -pubin -in owner.pub.pem -outform DER | sha256_of)
ca_fpr=$(openssl x509 -in data/ca.pem -outform DER | sha256_of)
say "The owner names the results' recipient and the vault (its CA) in authenticated metadata:"
run 0 cloister encrypt --key vault:finance-data --meta "owner-key=SHA256:$owner_fpr" \
    --meta "vault-ca=SHA256:$ca_fpr" -o tx.csv.clst tx.csv
run 8 cloister inspect tx.csv.clst
cp "$here/health-ml/data/breast_cancer.csv" wdbc.csv
run 0 cloister encrypt --key vault:health-data --meta "owner-key=SHA256:$owner_fpr" \
    --meta "vault-ca=SHA256:$ca_fpr" -o wdbc.csv.clst wdbc.csv
say "wdbc.csv (569 real patient records, Breast Cancer Wisconsin) encrypted to wdbc.csv.clst"

# ---------------------------------------------------------------------------------------------------
runargs=(--platform plat --attest-url "$url" --vault-url "$url" --ca data/ca.pem --token-file host-token)
step "Run the card-analytics enclave: attest -> key release -> decrypt -> analyse -> encrypt"
run 5 cloister run finance.so "${runargs[@]}" --in transactions=tx.csv.clst \
    --in owner=owner.pub.pem --out report=report.clst -- analyze
say "The host got report.clst ($(wc -c <report.clst) bytes of ciphertext) and the lines above."

step "The owner decrypts the report"
run 0 cloister decrypt --key-file owner.pem -o report.json report.clst
jq -c '.summary' report.json | sed 's/^/     summary: /'
jq -r '.alerts[] | "     alert: \(.rule) \(.card) \(.token): \(.detail)"' report.json
jq -c '.cards | sort_by(-.total) | .[0]' report.json | sed 's/^/     top card: /'
jq -c '.merchants | sort_by(-.total) | .[0]' report.json | sed 's/^/     top merchant: /' | cut -c1-150
say "Injected by the generator (truth.csv): $(grep -c -E 'velocity|geography' truth.csv) patterns;" \
    "controls not to flag: $(grep -c -E 'near-miss|commuter' truth.csv)"

step "Train a model on the patient records inside the health-ml enclave; seal it"
run 4 cloister run health.so "${runargs[@]}" --in records=wdbc.csv.clst --in owner=owner.pub.pem \
    --out model=model.sealed --out report=eval.clst -- train
run 0 cloister decrypt --key-file owner.pem -o eval.json eval.clst
jq -r '"     held-out accuracy \(.test_accuracy * 1000 | round / 10)% (\(.confusion.true_malignant + .confusion.true_benign) of \(.split.test) records; \(.split.rule)); training accuracy \(.train_accuracy * 1000 | round / 10)%"' eval.json
jq -c '.confusion' eval.json | sed 's/^/     confusion: /'

step "Ask the sealed model for predictions; the request and the answers are encrypted too"
awk -F, 'NR > 1 && (NR - 2) % 5 == 4 && n < 5 { n++; sub(/,[01]$/, ""); print }' wdbc.csv >request.csv
run 0 cloister encrypt --key vault:health-data --meta "owner-key=SHA256:$owner_fpr" \
    --meta "vault-ca=SHA256:$ca_fpr" -o request.clst request.csv
run 2 cloister run health.so "${runargs[@]}" --in model=model.sealed --in request=request.clst \
    --in owner=owner.pub.pem --out predictions=predictions.clst -- predict
run 6 cloister decrypt --key-file owner.pem -o - predictions.clst
say "(the five held-out patients' recorded diagnoses:" \
    "$(awk -F, 'NR > 1 && (NR - 2) % 5 == 4 && n < 5 { n++; printf "%s ", ($31 == 0 ? "malignant" : "benign") }' wdbc.csv))"

# ---------------------------------------------------------------------------------------------------
step "A modified enclave: the same code signed as svn 2 measures differently, so no key for it"
run 0 cloister enclave sign finance-enclave.so --key signer.pem --product-id 10 --svn 2 -o finance-v2.so
printf '   $ cloister run finance-v2.so ... -- analyze\n'
rc=0
"$CLOISTER" run finance-v2.so "${runargs[@]}" --in transactions=tx.csv.clst \
    --in owner=owner.pub.pem --out report=denied.clst -- analyze >denied.out 2>&1 || rc=$?
[ "$rc" != 0 ] || die "the modified enclave was not denied"
short <denied.out | fold -s -w 140 | sed -n '1,8s/^/     /p'
grep -q 'x-cloister-sim-mrenclave' denied.out || die "the denial does not name the failing claim"
say "exit status $rc: the vault refused; the failing claim is x-cloister-sim-mrenclave."
say "Its decision log, data/release-decisions.jsonl, holds every grant and denial:"
jq -r '"\(.decision)  key \(.keyName)  \(.reason // "")"' data/release-decisions.jsonl | tail -n 4 |
    short | cut -c1-200 | sed 's/^/     /'

# ---------------------------------------------------------------------------------------------------
if command -v curl >/dev/null &&
    curl -s --cacert data/ca.pem "$url/metrics" 2>/dev/null | grep '^cloister_key_releases_total' >metrics.txt; then
    step "Monitor: the service's Prometheus metrics count every release decision"
    printf '   $ curl --cacert data/ca.pem %s/metrics | grep ^cloister_key_releases_total\n' "$url"
    sed 's/^/     /' metrics.txt
fi

step "Stop the services"
kill -TERM "$server_pid"
wait "$server_pid" || die "cloister serve did not stop cleanly"
server_pid=""
say "cloister serve stopped (the temporary directory is removed on exit)."
# The audit log (cloister audit; docs/operations.md), where this build's server keeps one.
if "$CLOISTER" audit --help 2>/dev/null | grep 'verify' >/dev/null && [ -d data/audit ]; then
    step "Verify the vault's audit trail (hash-chained and signed), now that the vault is stopped"
    run 8 cloister audit verify --data data
    say "The key releases it recorded:"
    run 8 cloister audit tail --data data --filter op=keys.release
fi

printf '\nDemo finished in %d s: both workloads ran on encrypted data; the modified enclave was denied.\n' \
    $(($(date +%s) - started))
