/*
 * The "sgx" evidence kind: Intel SGX ECDSA quotes v3, verified with Intel's DCAP collateral
 * (dcap_verify.c; docs/evidence-dcap.md). Claims use the cloud attestation service's SGX names
 * (x-ms-sgx-*, x-ms-attestation-type "sgx", x-ms-sgx-collateral) plus attester_tcb_status,
 * attester_tcb_date and attester_advisory_ids.
 */
#include <string.h>

#include "evidence/dcap_int.h"

static enum clst_status
sgx_parse(const uint8_t *data, size_t size, void *parsed, struct clst_err *err)
{
    struct dcap_quote *q = parsed;
    enum clst_status rc = dcap_quote_parse(data, size, q, err);
    if (rc != CLST_OK) {
        return rc;
    }
    if (q->tee_type != DCAP_TEE_SGX) {
        memset(q, 0, sizeof(*q));
        return clst_err_set(err, CLST_E_MALFORMED,
                            "sgx evidence: this is a TDX quote (TEE type 0x81); verify it as tdx "
                            "evidence");
    }
    return CLST_OK;
}

static enum clst_status
sgx_verify(const void *parsed, const uint8_t *data, size_t size,
           const struct clst_evidence_input *in, struct clst_err *err)
{
    return dcap_verify(parsed, data, size, in, "sgx", err);
}

static bool
sgx_is_debuggable(const void *parsed)
{
    return (((const struct dcap_quote *)parsed)->sgx.attributes[0] & DCAP_SGX_ATTR_DEBUG) != 0;
}

static const uint8_t *
sgx_report_data(const void *parsed, size_t *out_size)
{
    const struct dcap_quote *q = parsed;
    *out_size = sizeof(q->sgx.report_data);
    return q->sgx.report_data;
}

static enum clst_status
set_new(json_t *claims, const char *name, json_t *value)
{
    return json_object_set_new(claims, name, value) == 0 ? CLST_OK : CLST_E_NOMEM;
}

static enum clst_status
sgx_claims(const void *parsed, json_t *claims, struct clst_err *err)
{
    const struct dcap_quote *q = parsed;
    const struct dcap_sgx_report *r = &q->sgx;
    enum clst_status rc;

    rc = set_new(claims, CLST_CLAIM_ATTESTATION_TYPE, json_string("sgx"));
    if (rc == CLST_OK) {
        rc = set_new(claims, "x-ms-sgx-is-debuggable",
                     json_boolean((r->attributes[0] & DCAP_SGX_ATTR_DEBUG) != 0));
    }
    if (rc == CLST_OK) {
        rc = dcap_claim_hex(claims, "x-ms-sgx-mrenclave", r->mrenclave, sizeof(r->mrenclave));
    }
    if (rc == CLST_OK) {
        rc = dcap_claim_hex(claims, "x-ms-sgx-mrsigner", r->mrsigner, sizeof(r->mrsigner));
    }
    if (rc == CLST_OK) {
        rc = set_new(claims, "x-ms-sgx-product-id", json_integer(r->isvprodid));
    }
    if (rc == CLST_OK) {
        rc = set_new(claims, "x-ms-sgx-svn", json_integer(r->isvsvn));
    }
    if (rc == CLST_OK) {
        rc = dcap_claim_hex(claims, "x-ms-sgx-report-data", r->report_data,
                            sizeof(r->report_data));
    }
    if (rc == CLST_OK) {
        rc = dcap_claim_hex(claims, "x-ms-sgx-config-id", r->configid, sizeof(r->configid));
    }
    if (rc == CLST_OK) {
        rc = set_new(claims, "x-ms-sgx-config-svn", json_integer(r->configsvn));
    }
    if (rc == CLST_OK) {
        rc = dcap_claim_hex(claims, "x-ms-sgx-isv-extended-product-id", r->isvextprodid,
                            sizeof(r->isvextprodid));
    }
    if (rc == CLST_OK) {
        rc = dcap_claim_hex(claims, "x-ms-sgx-isv-family-id", r->isvfamilyid,
                            sizeof(r->isvfamilyid));
    }
    if (rc == CLST_OK) {
        rc = dcap_claims_common(q->result, claims, "x-ms-sgx-collateral", "certshash");
    }
    if (rc != CLST_OK) {
        return clst_err_set(err, rc, "sgx evidence: cannot build the claim set");
    }
    return CLST_OK;
}

const struct evidence_ops evidence_sgx_ops = {
    .kind = CLST_EVIDENCE_SGX,
    .name = "sgx",
    .max_size = DCAP_QUOTE_MAX_SIZE,
    .parsed_size = sizeof(struct dcap_quote),
    .parse = sgx_parse,
    .verify = sgx_verify,
    .is_debuggable = sgx_is_debuggable,
    .report_data = sgx_report_data,
    .claims = sgx_claims,
};
