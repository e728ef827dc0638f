#!/usr/bin/env bash
# The two confidential workloads of issue #10, end to end with the real parts: a sim platform,
# `cloister serve --trust-sim` (attestation service + vault), both example enclaves signed and
# measured, oct keys in the vault with release policies pinned to each enclave's measurement, the
# data owner's RSA key pair, data encrypted with `cloister encrypt --key vault:NAME`, the enclaves
# run with `cloister run` by a host principal that may only ask for releases, and the results
# decrypted by the owner and checked:
#   finance  per-card and per-merchant totals against a reference computed here with awk from
#            the plaintext CSV; exactly the injected fraud patterns flagged (not the controls);
#            tokens consistent; no card number in anything the host saw or wrote unencrypted
#            (the run's stdout/stderr, its output files, the server's data directory and log)
#   health   held-out accuracy >= 0.90 from the decrypted evaluation; a prediction request
#            answered (encrypted) and the answers right for held-out records; a tampered sealed
#            model refused
#   refusals an enclave signed with another svn (so another measurement) is denied its key and
#            the error names x-cloister-sim-mrenclave; an image modified after signing does not
#            load; a host that hands in its own public key as "owner" gets nothing
#   records  the release decision log and, after shutdown, the audit log (verified) hold the
#            grants and the denial
#
# Needs: jq, openssl, awk; the build's finance-enclave.so, health-ml-enclave.so and
# gen-transactions ($CLST_BUILD_DIR). Fails, never skips.
set -euo pipefail

CLOISTER=${CLOISTER:?set CLOISTER to the cloister binary}
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/serve.sh"
build=${CLST_BUILD_DIR:?set CLST_BUILD_DIR to the build directory}
src=${CLST_SOURCE_DIR:?set CLST_SOURCE_DIR to the source directory}

on_fail() { # after the FAIL line
    if [ -f "${work:-/nonexistent}/serve.err" ]; then
        echo "---- cloister serve stderr (last 20 lines) ----" >&2
        tail -n 20 "$work/serve.err" >&2 || true
    fi
}
# flip_byte FILE OFFSET: inverts every bit of one byte (writing a constant would change nothing
# when the byte already held it).
flip_byte() {
    local b
    b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
    printf "$(printf '\\%03o' $((b ^ 255)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

need_tools jq openssl awk
for f in finance-enclave.so health-ml-enclave.so gen-transactions; do
    [ -e "$build/$f" ] || fail "$build/$f is missing: build the examples (CMake targets finance-enclave, health-ml-enclave, gen-transactions)"
done
"$CLOISTER" run --help | grep -- '--attest-url' >/dev/null ||
    fail "this cloister run has no --attest-url: in-enclave key release is not wired"

work=$(mktemp -d)
server_pid=""
trap cleanup_server_and_work EXIT
cd "$work"
passed=0
ok() {
    passed=$((passed + 1))
    echo "ok $passed - $*"
}
sha256_of() { sha256sum | cut -d' ' -f1; }

# ---- the platform, the services ----------------------------------------------------------------
"$CLOISTER" sim init "$work/plat" >/dev/null || fail "cloister sim init"
data=$work/data
serve_start "$work/serve.out" "$work/serve.err" \
    --data "$data" --listen 127.0.0.1:0 --trust-sim "$work/plat/root.pem"
export CLOISTER_URL=$url CLOISTER_CA=$data/ca.pem
CLOISTER_TOKEN=$(cat "$data/admin-token")
export CLOISTER_TOKEN
ok "sim platform and cloister serve --trust-sim at $url"

# ---- the enclaves: signed, measured --------------------------------------------------------------
quietly "openssl genpkey (signer.pem)" \
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/signer.pem"
"$CLOISTER" enclave sign "$build/finance-enclave.so" --key "$work/signer.pem" --product-id 10 \
    --svn 1 -o "$work/finance.so" >/dev/null || fail "sign finance"
"$CLOISTER" enclave sign "$build/health-ml-enclave.so" --key "$work/signer.pem" --product-id 11 \
    --svn 1 -o "$work/health.so" >/dev/null || fail "sign health"
mre() { "$CLOISTER" enclave measure "$1" --json | jq -r .mrenclave; }
fin_mre=$(mre "$work/finance.so")
hml_mre=$(mre "$work/health.so")
[ ${#fin_mre} = 96 ] && [ ${#hml_mre} = 96 ] && [ "$fin_mre" != "$hml_mre" ] ||
    fail "measurements: '$fin_mre' '$hml_mre'"
ok "both enclaves signed and measured"

# ---- keys with release policies pinned to the measurements ----------------------------------------
policy() { # policy MRENCLAVE OUT
    cat >"$2" <<EOF
{"version":"1.0.0","anyOf":[{"authority":"$url","allOf":[
  {"claim":"x-ms-attestation-type","equals":"sim"},
  {"claim":"x-cloister-sim-is-debuggable","equals":false},
  {"claim":"x-cloister-sim-mrenclave","equals":"$1"}]}]}
EOF
}
policy "$fin_mre" "$work/fin-policy.json"
policy "$hml_mre" "$work/hml-policy.json"
for k in finance-data:fin finance-tokens:fin health-data:hml; do
    "$CLOISTER" key create "${k%%:*}" --kty oct --size 256 --exportable \
        --release-policy "$work/${k#*:}-policy.json" >"$work/key.out" 2>&1 ||
        fail "key create ${k%%:*}: $(cat "$work/key.out")"
done
# The host that runs the enclaves may only ask for releases (it cannot wrap, unwrap or read).
"$CLOISTER" principal create --name workload-host --json \
    --role 'Crypto Service Release User@/keys/finance-data' \
    --role 'Crypto Service Release User@/keys/finance-tokens' \
    --role 'Crypto Service Release User@/keys/health-data' >"$work/principal.json" ||
    fail "principal create"
(umask 077 && jq -r .token "$work/principal.json" >"$work/host-token")
ok "keys finance-data, finance-tokens, health-data (oct, exportable, policies pinned); a release-only host principal"

# ---- the data owner: a key pair, the data, encrypted under the vault keys ---------------------------
"$CLOISTER" keygen --type rsa --bits 3072 -o "$work/owner.pem" --public-out "$work/owner.pub.pem" \
    >/dev/null || fail "keygen"
owner_fpr=$(openssl pkey -pubin -in "$work/owner.pub.pem" -outform DER | sha256_of)
ca_fpr=$(openssl x509 -in "$data/ca.pem" -outform DER | sha256_of)
"$build/gen-transactions" --seed 42 --cards 200 --days 30 -o "$work/tx.csv" --truth "$work/truth.csv"
rows=$(($(wc -l <"$work/tx.csv") - 1))
[ "$rows" -gt 1000 ] || fail "the generator made only $rows transactions"
# every card number is Luhn-valid and in a test range
awk -F, 'NR > 1 { n = $3; s = 0
    for (i = length(n); i >= 1; i--) { d = substr(n, i, 1) + 0; if ((length(n) - i) % 2) { d *= 2; if (d > 9) d -= 9 }; s += d }
    if (s % 10 || n !~ /^(411111|424242|400000|555555|510510|222300)/) bad++ }
    END { exit bad > 0 }' "$work/tx.csv" || fail "the generator wrote a card number that is not Luhn-valid or not a test number"
cmp -s "$work/tx.csv" <("$build/gen-transactions" --seed 42 --cards 200 --days 30) ||
    fail "the generator is not deterministic for a seed"
encrypt() { # encrypt KEY IN OUT
    "$CLOISTER" encrypt --key "vault:$1" --meta "owner-key=SHA256:$owner_fpr" \
        --meta "vault-ca=SHA256:$ca_fpr" -o "$3" "$2" 2>"$work/enc.err" ||
        fail "cloister encrypt --key vault:$1: $(cat "$work/enc.err")"
}
encrypt finance-data "$work/tx.csv" "$work/tx.csv.clst"
cp "$src/examples/health-ml/data/breast_cancer.csv" "$work/wdbc.csv"
encrypt health-data "$work/wdbc.csv" "$work/wdbc.csv.clst"
ok "owner key pair; $rows transactions (Luhn-valid test cards) and 569 patient records encrypted under vault keys"

run_enclave() { # run_enclave NAME IMAGE [cloister run args...] -- ARGS: stdout/stderr in $work/NAME.*
    local name=$1 image=$2
    shift 2
    local rc=0
    "$CLOISTER" run "$image" --platform "$work/plat" --attest-url "$url" --vault-url "$url" \
        --ca "$data/ca.pem" --token-file "$work/host-token" --timeout 60 "$@" \
        >"$work/$name.stdout" 2>"$work/$name.stderr" || rc=$?
    return $rc
}

# ---- finance ----------------------------------------------------------------------------------------
run_enclave finance "$work/finance.so" --in transactions="$work/tx.csv.clst" \
    --in owner="$work/owner.pub.pem" --out report="$work/report.clst" -- analyze ||
    fail "the finance enclave failed: $(cat "$work/finance.stderr")"
grep -q "analysed $rows transactions" "$work/finance.stdout" ||
    fail "finance stdout: $(cat "$work/finance.stdout")"
"$CLOISTER" decrypt --key-file "$work/owner.pem" -o "$work/report.json" "$work/report.clst" ||
    fail "the owner cannot decrypt the report"
jq -e . "$work/report.json" >/dev/null || fail "the report is not JSON"
[ "$(jq -r .computed_in.mrenclave "$work/report.json")" = "$fin_mre" ] ||
    fail "the report does not name the enclave's measurement"
ok "finance enclave: attested, keys released, report encrypted to the owner and decrypted"

# Reference totals, independently: awk over the plaintext CSV (cents, integer arithmetic).
awk -F, 'NR > 1 { split($9, a, "."); c = a[1] * 100 + substr(a[2] "00", 1, 2)
    card = substr($3, 1, 6) "******" substr($3, length($3) - 3); n[card]++; s[card] += c
    m[$4]++; t[$4] += c; all += c }
    END { for (k in n) printf "card %s %d %d\n", k, n[k], s[k]
          for (k in m) printf "merchant %s %d %d\n", k, m[k], t[k]
          printf "total %d %d\n", NR - 1, all }' "$work/tx.csv" | sort >"$work/ref.txt"
jq -r '(.cards[] | "card \(.card) \(.transactions) \(.total * 100 | round)"),
       (.merchants[] | "merchant \(.merchant_id) \(.transactions) \(.total * 100 | round)"),
       "total \(.summary.transactions) \(.summary.total * 100 | round)"' "$work/report.json" |
    sort >"$work/got.txt"
diff "$work/ref.txt" "$work/got.txt" >"$work/diff.txt" ||
    fail "the report's totals differ from the awk reference: $(head -n 20 "$work/diff.txt")"
ok "per-card, per-merchant and overall totals equal the awk reference ($(grep -c '^card' "$work/ref.txt") cards, $(grep -c '^merchant' "$work/ref.txt") merchants)"

awk -F, '$2 == "velocity" || $2 == "geography" { print $1, $2 }' "$work/truth.csv" | sort >"$work/want-alerts.txt"
[ "$(wc -l <"$work/want-alerts.txt")" = 6 ] || fail "the truth file lists $(wc -l <"$work/want-alerts.txt") patterns, want 6"
jq -r '.alerts[] | "\(.card) \(.rule)"' "$work/report.json" | sort >"$work/got-alerts.txt"
diff "$work/want-alerts.txt" "$work/got-alerts.txt" >"$work/diff.txt" ||
    fail "fraud alerts differ from the injected patterns (< injected, > flagged): $(cat "$work/diff.txt")"
for control in near-miss commuter; do
    c=$(awk -F, -v p="$control" '$2 == p { print $1 }' "$work/truth.csv")
    [ -n "$c" ] || fail "no $control control in the truth file"
    jq -e --arg c "$c" '[.alerts[] | select(.card == $c)] | length == 0' "$work/report.json" >/dev/null ||
        fail "the $control control card $c was flagged"
done
jq -e '[.alerts[] | select(.rule == "geography") | .detail | test("[0-9]+ km$")] | all' \
    "$work/report.json" >/dev/null || fail "geography alerts do not give the distance"
ok "exactly the 3 velocity and 3 geography patterns flagged; the near-miss and commuter controls not"

jq -e '[.cards[].token | test("^tok_[0-9a-f]{16}$")] | all' "$work/report.json" >/dev/null ||
    fail "tokens are not tok_ + 16 hex"
jq -e '(.cards | length) == ([.cards[].token] | unique | length)' "$work/report.json" >/dev/null ||
    fail "two cards share a token"
jq -e '(.cards | map({(.token): .card}) | add) as $t | [.alerts[] | $t[.token] == .card] | all' \
    "$work/report.json" >/dev/null || fail "an alert's token is not its card's token"
ok "card numbers replaced by distinct keyed tokens, consistent between cards and alerts"

# No card number anywhere the host could look: the run's output, its files, the server.
cut -d, -f3 "$work/tx.csv" | tail -n +2 | sort -u >"$work/pans.txt"
grep -q -F -f "$work/pans.txt" "$work/report.json" && fail "the decrypted report holds a card number"
for f in finance.stdout finance.stderr report.clst tx.csv.clst serve.out serve.err; do
    if grep -a -q -F -f "$work/pans.txt" "$work/$f"; then
        fail "a card number appears in $f"
    fi
done
if grep -r -a -q -F -f "$work/pans.txt" "$data"; then
    fail "a card number appears in the server's data directory"
fi
ok "no card number in the run's stdout/stderr, its output, the server's log or data directory"

# ---- health-ml: train, predict -------------------------------------------------------------------
run_enclave train "$work/health.so" --in records="$work/wdbc.csv.clst" \
    --in owner="$work/owner.pub.pem" --out model="$work/model.sealed" \
    --out report="$work/eval.clst" -- train ||
    fail "training failed: $(cat "$work/train.stderr")"
"$CLOISTER" decrypt --key-file "$work/owner.pem" -o "$work/eval.json" "$work/eval.clst" ||
    fail "the owner cannot decrypt the evaluation"
acc=$(jq -r .test_accuracy "$work/eval.json")
jq -e '.test_accuracy >= 0.90 and .split.train + .split.test == 569 and .split.test == 113' \
    "$work/eval.json" >/dev/null || fail "evaluation: $(cat "$work/eval.json")"
jq -e '.confusion | .true_malignant + .false_malignant + .true_benign + .false_benign == 113' \
    "$work/eval.json" >/dev/null || fail "confusion matrix: $(cat "$work/eval.json")"
if grep -a -q '17.99,10.38' "$work/model.sealed" "$work/train.stdout" "$work/train.stderr"; then
    fail "a patient record appears in what the host got"
fi
ok "logistic regression trained inside; held-out accuracy $acc (>= 0.90) on 113 records; model sealed"

# A request: 20 held-out records (every 5th, as the enclave's split), features only.
awk -F, 'NR > 1 && (NR - 2) % 5 == 4 && n < 20 { n++; sub(/,[01]$/, ""); print }' "$work/wdbc.csv" \
    >"$work/request.csv"
awk -F, 'NR > 1 && (NR - 2) % 5 == 4 && n < 20 { n++; print ($31 == 0 ? "malignant" : "benign") }' \
    "$work/wdbc.csv" >"$work/request-truth.txt"
encrypt health-data "$work/request.csv" "$work/request.clst"
run_enclave predict "$work/health.so" --in model="$work/model.sealed" \
    --in request="$work/request.clst" --in owner="$work/owner.pub.pem" \
    --out predictions="$work/pred.clst" -- predict ||
    fail "predict failed: $(cat "$work/predict.stderr")"
"$CLOISTER" decrypt --key-file "$work/owner.pem" -o "$work/pred.csv" "$work/pred.clst" ||
    fail "the owner cannot decrypt the predictions"
[ "$(head -n 1 "$work/pred.csv")" = "row,p_malignant,prediction" ] || fail "predictions header"
[ "$(tail -n +2 "$work/pred.csv" | wc -l)" = 20 ] || fail "want 20 predictions: $(cat "$work/pred.csv")"
right=$(tail -n +2 "$work/pred.csv" | cut -d, -f3 | paste -d' ' - "$work/request-truth.txt" |
    awk '$1 == $2 { n++ } END { print n + 0 }')
[ "$right" -ge 18 ] || fail "only $right of 20 held-out predictions are right"
ok "an encrypted prediction request answered: $right of 20 held-out records right"

cp "$work/model.sealed" "$work/model.bad"
flip_byte "$work/model.bad" 200
if run_enclave badmodel "$work/health.so" --in model="$work/model.bad" \
    --in request="$work/request.clst" --in owner="$work/owner.pub.pem" \
    --out predictions="$work/pred2.clst" -- predict; then
    fail "predict accepted a tampered sealed model"
fi
grep -q 'does not unseal' "$work/badmodel.stderr" || fail "tampered model: $(cat "$work/badmodel.stderr")"
ok "a tampered sealed model is refused"

# ---- refusals ----------------------------------------------------------------------------------------
# The same code signed with another svn: another measurement, so the policy does not match.
"$CLOISTER" enclave sign "$build/finance-enclave.so" --key "$work/signer.pem" --product-id 10 \
    --svn 2 -o "$work/finance-svn2.so" >/dev/null || fail "sign svn 2"
rc=0
run_enclave denied "$work/finance-svn2.so" --in transactions="$work/tx.csv.clst" \
    --in owner="$work/owner.pub.pem" --out report="$work/denied.clst" -- analyze || rc=$?
[ "$rc" = 3 ] || fail "the modified enclave exited $rc, want 3 (release denied): $(cat "$work/denied.stderr")"
grep -q 'x-cloister-sim-mrenclave' "$work/denied.stderr" ||
    fail "the denial does not name the failing claim: $(cat "$work/denied.stderr")"
[ ! -s "$work/denied.clst" ] || fail "the denied enclave wrote a report"
ok "an enclave with another measurement is denied; the error names x-cloister-sim-mrenclave"

# An image changed after signing does not even load.
cp "$work/finance.so" "$work/finance-patched.so"
flip_byte "$work/finance-patched.so" 4096
if run_enclave patched "$work/finance-patched.so" --in transactions="$work/tx.csv.clst" \
    --in owner="$work/owner.pub.pem" --out report="$work/patched.clst" -- analyze; then
    fail "an image modified after signing ran"
fi
grep -q 'modified after signing' "$work/patched.stderr" ||
    fail "patched image: $(cat "$work/patched.stderr")"
ok "an image modified after signing does not load"

# A host that hands in its own key as the report's recipient.
quietly "openssl genpkey (mallory.pem)" \
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$work/mallory.pem"
openssl pkey -in "$work/mallory.pem" -pubout -out "$work/mallory.pub.pem"
if run_enclave mallory "$work/finance.so" --in transactions="$work/tx.csv.clst" \
    --in owner="$work/mallory.pub.pem" --out report="$work/mallory.clst" -- analyze; then
    fail "the enclave encrypted the report to a key the owner did not name"
fi
grep -q 'not the recipient the data owner named' "$work/mallory.stderr" ||
    fail "substituted owner key: $(cat "$work/mallory.stderr")"
[ ! -s "$work/mallory.clst" ] || fail "a report was written for the substituted key"
ok "a substituted recipient key is refused; nothing is written"

# The decision log has the grants and the denial.
log=$data/release-decisions.jsonl
[ -s "$log" ] || fail "no release decision log"
jq -s -e '[.[] | select(.decision == "allow")] | length >= 4' "$log" >/dev/null ||
    fail "fewer than 4 grants logged"
jq -s -e '[.[] | select(.decision == "deny" and (.reason | test("x-cloister-sim-mrenclave")))] | length >= 1' \
    "$log" >/dev/null || fail "the denial is not in the decision log"
ok "every release decision is logged (grants and the denial naming the claim)"

kill -TERM "$server_pid"
rc=0
wait "$server_pid" || rc=$?
server_pid=""
[ "$rc" = 0 ] || fail "cloister serve exited $rc on SIGTERM"
"$CLOISTER" audit verify --data "$data" >"$work/audit.out" 2>&1 ||
    fail "the audit log does not verify: $(cat "$work/audit.out")"
"$CLOISTER" audit tail --data "$data" --filter op=keys.release >"$work/audit-tail.out" 2>&1 ||
    fail "audit tail: $(cat "$work/audit-tail.out")"
grep -q 'finance-data .*403' "$work/audit-tail.out" ||
    fail "the audit log has no 403 release of finance-data: $(cat "$work/audit-tail.out")"
[ "$(grep -c '200 ok' "$work/audit-tail.out")" -ge 4 ] ||
    fail "the audit log has fewer than 4 granted releases: $(cat "$work/audit-tail.out")"
if grep -r -a -q -F -f "$work/pans.txt" "$data"; then
    fail "a card number appears in the server's data directory (after shutdown)"
fi
ok "the audit log verifies (chain and signed checkpoints) and records the grants and the denial"
echo "workloads: all $passed checks passed"
