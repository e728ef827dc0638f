#!/usr/bin/env bash
# Hardware attestation through `cloister serve` and `cloister attest`, with real evidence from
# tests/vectors at the fixed times their READMEs give (--test-fixed-time: certificates and
# collateral in these files expire):
#   2025-03-01  --collateral (SGX 00606a + TDX 00806f05 sets): TdxVm UpToDate -> token;
#               SgxEnclave OutOfDate -> denied by the default policy, admitted once the policy
#               allows OutOfDate; Tpm without --tpm-ak-roots, AzureVm, sim evidence as SevSnpVm
#               -> 400 with the reason
#   2024-01-01  --vcek-cache: SevSnpVm (raw report, and the cloud clients' JSON form with
#               VcekCertChain on a server without the cache) -> token; flipped byte -> 400
#   2024-09-07  NitroEnclave -> token; the debug document -> 400
#   2026-01-01  AzureVm (trustee's real Azure CVM evidence) -> token with x-ms-isolation-tee
set -euo pipefail

CLOISTER=${CLOISTER:?set CLOISTER to the cloister binary}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
vec=${CLST_VECTORS:-$here/../vectors}
. "$here/lib/common.sh"
. "$here/lib/serve.sh"

work=$(mktemp -d)
pids=() server_pid=""
cleanup() {
    # $server_pid: a server still starting (serve_start), not yet in pids
    for pid in "${pids[@]}" "$server_pid"; do
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
    rm -rf "$work"
}
trap cleanup EXIT

# start NAME ARGS...: starts a server on DIR=$work/NAME (it runs until the end); sets $url
start() {
    local name=$1
    shift
    serve_start --wait 10 "$work/$name.out" "$work/$name.err" \
        --data "$work/$name" --listen 127.0.0.1:0 "$@"
    pids+=("$server_pid")
    server_pid=""
}

# attest NAME TYPE FILE: the token on stdout, or fails with the service's reason
attest() {
    "$CLOISTER" attest --type "$2" --evidence "$3" --data "$work/$1" 2>"$work/attest.err"
}

# attest_refused NAME TYPE FILE PATTERN
attest_refused() {
    if attest "$1" "$2" "$3" >/dev/null; then
        fail "$2 evidence $3 was accepted by $1"
    fi
    grep -q -- "$4" "$work/attest.err" || fail "$2: expected '$4' in: $(cat "$work/attest.err")"
}

# claim TOKEN NAME: the claim's JSON value
claim() {
    local p=${1#*.}
    p=${p%%.*}
    p=$(printf '%s' "$p" | tr '_-' '/+')
    while [ $((${#p} % 4)) -ne 0 ]; do p="$p="; done
    printf '%s' "$p" | base64 -d | jq -c --arg n "$2" '.[$n]'
}

# ---- DCAP collateral: one directory per TEE/FMSPC ----
sgx=$vec/sgx/dcap-rs
tdx=$vec/tdx/dcap-rs
mkdir -p "$work/coll/sgx" "$work/coll/tdx"
cp "$sgx/collateral-2025-02/tcbinfov2.json" "$work/coll/sgx/tcb_info.json"
cp "$sgx/collateral-2025-02/qeidentityv2.json" "$work/coll/sgx/qe_identity.json"
cp "$sgx/tcb_signing_cert.pem" "$work/coll/sgx/tcb_signing_chain.pem"
cp "$sgx/collateral-2025-02/pck_platform_crl.der" "$work/coll/sgx/pck_crl.der"
cp "$sgx/collateral-2025-02/intel_root_ca_crl.der" "$work/coll/sgx/root_ca_crl.der"
cp "$tdx/collateral-2025-02/tcbinfov3_00806f050000.json" "$work/coll/tdx/tcb_info.json"
cp "$tdx/collateral-2025-02/qeidentityv2_apiv4.json" "$work/coll/tdx/qe_identity.json"
cp "$tdx/tcb_signing_cert.pem" "$work/coll/tdx/tcb_signing_chain.pem"
cp "$tdx/collateral-2025-02/pck_platform_crl.der" "$work/coll/tdx/pck_crl.der"
cp "$tdx/collateral-2025-02/intel_root_ca_crl.der" "$work/coll/tdx/root_ca_crl.der"

start dcap --test-fixed-time 2025-03-01T00:00:00Z --collateral "$work/coll"

tok=$(attest dcap tdx "$vec/tdx/go-tdx-guest/ccel/cos-113-tdx-quote.dat") ||
    fail "TdxVm: $(cat "$work/attest.err")"
[ "$(claim "$tok" x-ms-attestation-type)" = '"tdxvm"' ] || fail "TdxVm: wrong attestation type"
[ "$(claim "$tok" attester_tcb_status)" = '"UpToDate"' ] || fail "TdxVm: not UpToDate"
[ "$(claim "$tok" iat)" = 1740787200 ] || fail "TdxVm: iat is not the fixed time"
claim "$tok" tdx_mrtd | grep -Eq '^"[0-9a-f]{96}"$' || fail "TdxVm: no tdx_mrtd"

attest_refused dcap sgx "$sgx/quote_v3_sgx_00606a000000.bin" 'attester_tcb_status'
cat >"$work/sgx-policy.json" <<'EOF'
{"version":"1.0.0","authorizationRules":{"allOf":[
 {"claim":"x-ms-attestation-type","equals":"sgx"},
 {"claim":"x-ms-sgx-is-debuggable","equals":false},
 {"anyOf":[{"claim":"attester_tcb_status","equals":"UpToDate"},
           {"claim":"attester_tcb_status","equals":"OutOfDate"}]}]}}
EOF
"$CLOISTER" attest policy set --type sgx "$work/sgx-policy.json" --data "$work/dcap" >/dev/null ||
    fail "policy set"
tok=$(attest dcap sgx "$sgx/quote_v3_sgx_00606a000000.bin") || fail "SgxEnclave: $(cat "$work/attest.err")"
[ "$(claim "$tok" x-ms-sgx-mrenclave)" = '"a4f45c39dac622cb1dd32ddb35a52ec92db41d0fa88a1c911c49e59c534f61cd"' ] ||
    fail "SgxEnclave: wrong mrenclave"
[ "$(claim "$tok" attester_tcb_status)" = '"OutOfDate"' ] || fail "SgxEnclave: status"
# A flipped byte in the signed report body.
cp "$sgx/quote_v3_sgx_00606a000000.bin" "$work/sgx-flip.bin"
printf '\x01' | dd of="$work/sgx-flip.bin" bs=1 seek=112 conv=notrunc status=none
attest_refused dcap sgx "$work/sgx-flip.bin" 'evidence rejected'
# The SGX quote is not TDX evidence; a TPM needs its AK roots; an SNP report is not AzureVm's.
attest_refused dcap tdx "$sgx/quote_v3_sgx_00606a000000.bin" 'evidence rejected'
attest_refused dcap tpm "$vec/tpm2/containers/gce-nonce9009-sha256.json" 'tpm-ak-roots'
attest_refused dcap azure-vtpm "$vec/sev-snp/virtee-sev/report_milan.bin" 'evidence rejected'

# AzureVm on TDX (trustee's real Azure TDX CVM evidence, its TD quote inside; FMSPC 00806F050000):
# the service verifies the TD quote with its TDX collateral set and accepts UpToDate only for
# AzureVm on TDX; this platform is OutOfDate in the 2025-02 collateral, so it is refused for that.
attest_refused dcap azure-vtpm "$vec/azure/tdx/evidence-v1.json" 'OutOfDate'
# Offline, the TCB policy is a flag: accepted with OutOfDate allowed, refused without.
"$CLOISTER" evidence verify --type azure-vtpm "$vec/azure/tdx/evidence-v1.json" \
    --collateral "$work/coll/tdx" --tcb-status UpToDate,OutOfDate --time 2025-03-01T00:00:00Z \
    --report-data 6368616c6c656e6765 --json >"$work/aztdx.json" 2>"$work/aztdx.err" ||
    fail "azure-vtpm (TDX) offline: $(cat "$work/aztdx.err")"
[ "$(jq -r '."x-ms-isolation-tee"."x-ms-attestation-type"' "$work/aztdx.json")" = tdxvm ] ||
    fail "azure-vtpm (TDX): x-ms-isolation-tee is not tdxvm"
[ "$(jq -r '."x-ms-attestation-type"' "$work/aztdx.json")" = azurevm ] || fail "azure-vtpm (TDX): type"
if "$CLOISTER" evidence verify --type azure-vtpm "$vec/azure/tdx/evidence-v1.json" \
    --collateral "$work/coll/tdx" --time 2025-03-01T00:00:00Z >/dev/null 2>"$work/aztdx.err"; then
    fail "azure-vtpm (TDX): OutOfDate accepted by the default TCB policy"
fi
grep -q OutOfDate "$work/aztdx.err" || fail "azure-vtpm (TDX): $(cat "$work/aztdx.err")"

# Sim evidence is never verified as hardware.
"$CLOISTER" sim init "$work/plat" >/dev/null || fail "cloister sim init $work/plat failed"
"$CLOISTER" sim report --platform "$work/plat" --mrenclave "$(printf 'c3%.0s' $(seq 48))" \
    --mrsigner "$(printf '5a%.0s' $(seq 32))" --product-id 1 --svn 1 \
    --report-data "$(printf '00%.0s' $(seq 64))" -o "$work/sim.bin" >/dev/null 2>"$work/sim.err" ||
    fail "sim report: $(cat "$work/sim.err")"
attest_refused dcap sevsnp "$work/sim.bin" 'evidence rejected'
attest_refused dcap sim "$work/sim.bin" 'trust-sim'

# ---- SEV-SNP ----
mkdir -p "$work/vcek"
cp "$vec/sev-snp/virtee-sev/vcek_milan.der" "$work/vcek/"
cp "$vec/sev-snp/go-sev-guest/ask_ark_milan.pem" "$work/vcek/"
start snp --test-fixed-time 2024-01-01T00:00:00Z --vcek-cache "$work/vcek"
tok=$(attest snp sevsnp "$vec/sev-snp/virtee-sev/report_milan.bin") ||
    fail "SevSnpVm: $(cat "$work/attest.err")"
[ "$(claim "$tok" x-ms-sevsnpvm-launchmeasurement)" = '"7a1e5c266c0108dbc9bb94fa926951320940915d0aafb42464bd88b579ea158d3e1a0dc39b2c60bd95b9c480cd81841f"' ] ||
    fail "SevSnpVm: wrong measurement"
[ "$(claim "$tok" x-ms-sevsnpvm-is-debuggable)" = false ] || fail "SevSnpVm: debuggable"
cp "$vec/sev-snp/virtee-sev/report_milan.bin" "$work/snp-flip.bin"
printf '\x80' | dd of="$work/snp-flip.bin" bs=1 seek=21 conv=notrunc status=none
attest_refused snp sevsnp "$work/snp-flip.bin" 'evidence rejected'

# The cloud clients' JSON form, on a server without the cache: the chain comes in the request.
start snp2 --test-fixed-time 2024-01-01T00:00:00Z
snp2url=$url
b64u() { base64 -w0 | tr '+/' '-_' | tr -d '='; }
chain=$( (openssl x509 -inform DER -in "$vec/sev-snp/virtee-sev/vcek_milan.der";
    cat "$vec/sev-snp/go-sev-guest/ask_ark_milan.pem") | b64u)
inner=$(jq -nc --arg r "$(b64u <"$vec/sev-snp/virtee-sev/report_milan.bin")" --arg c "$chain" \
    '{SnpReport: $r, VcekCertChain: $c}' | b64u)
code=$(jq -nc --arg r "$inner" '{report: $r}' | curl -sS --cacert "$work/snp2/ca.pem" \
    -o "$work/snp2.json" -w '%{http_code}' -H 'Content-Type: application/json' --data-binary @- \
    "$snp2url/attest/SevSnpVm?api-version=2022-08-01")
[ "$code" = 200 ] || fail "SevSnpVm JSON form: HTTP $code $(cat "$work/snp2.json")"
tok=$(jq -r .token "$work/snp2.json")
[ "$(claim "$tok" x-ms-attestation-type)" = '"sevsnpvm"' ] || fail "SevSnpVm JSON form: type"
# Without VcekCertChain and without a cache there is no VCEK: refused.
inner=$(jq -nc --arg r "$(b64u <"$vec/sev-snp/virtee-sev/report_milan.bin")" '{SnpReport: $r}' | b64u)
code=$(jq -nc --arg r "$inner" '{report: $r}' | curl -sS --cacert "$work/snp2/ca.pem" \
    -o "$work/snp2.json" -w '%{http_code}' -H 'Content-Type: application/json' --data-binary @- \
    "$snp2url/attest/SevSnpVm?api-version=2022-08-01")
[ "$code" = 400 ] || fail "SevSnpVm without a VCEK: HTTP $code"

# ---- Nitro ----
start nitro --test-fixed-time 2024-09-07T15:00:00Z
tok=$(attest nitro nitro "$vec/nitro/blocky-nitrite/nitro_attestation.cose.bin") ||
    fail "NitroEnclave: $(cat "$work/attest.err")"
[ "$(claim "$tok" x-ms-attestation-type)" = '"nitro"' ] || fail "NitroEnclave: type"
claim "$tok" aws-nitro-pcr0 | grep -q '^"e72a46ca80a260fb' || fail "NitroEnclave: pcr0"
attest_refused nitro nitro "$vec/nitro/blocky-nitrite/nitro_attestation_debug.cose.bin" 'evidence rejected'

# ---- AzureVm (real Azure CVM evidence from trustee, its VCEK inside) ----
start azure --test-fixed-time 2026-01-01T00:00:00Z
tok=$(attest azure azure-vtpm "$vec/azure/evidence-v1.json") || fail "AzureVm: $(cat "$work/attest.err")"
[ "$(claim "$tok" x-ms-attestation-type)" = '"azurevm"' ] || fail "AzureVm: type"
[ "$(claim "$tok" x-ms-isolation-tee | jq -r '."x-ms-attestation-type"')" = sevsnpvm ] ||
    fail "AzureVm: x-ms-isolation-tee"
sed 's/"version"/"versio"/' "$vec/azure/evidence-v1.json" >"$work/azure-bad.json"
attest_refused azure azure-vtpm "$work/azure-bad.json" 'evidence rejected'
# A TDX CVM's evidence at a service without Intel collateral: refused, saying so.
attest_refused azure azure-vtpm "$vec/azure/tdx/evidence-v1.json" 'collateral'

echo "attest_hw: ok"
