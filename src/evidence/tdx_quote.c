/*
 * The "tdx" evidence kind: Intel TDX quotes v4 (TD report 1.0) and v5 (TD report 1.0 or 1.5),
 * verified with Intel's DCAP collateral (dcap_verify.c; docs/evidence-dcap.md). Claims use the
 * names of the cloud attestation service's TDX profile (tdx_*, x-ms-attestation-type "tdxvm",
 * attester_tcb_status) plus Intel Trust Authority's attester_tcb_date, attester_advisory_ids and
 * tdx_collateral.
 */
#include <string.h>

#include "evidence/dcap_int.h"

/* TD attributes (the 8 bytes are a little-endian u64). */
#define TD_ATTR_DEBUG           0
#define TD_ATTR_SEPT_VE_DISABLE 28
#define TD_ATTR_PKS             30
#define TD_ATTR_KL              31
#define TD_ATTR_PERFMON         63

static bool
td_attr_bit(const struct dcap_td_report *td, unsigned bit)
{
    return (((unsigned)td->td_attributes[bit / 8] >> (bit % 8)) & 1u) != 0;
}

static enum clst_status
tdx_parse(const uint8_t *data, size_t size, void *parsed, struct clst_err *err)
{
    struct dcap_quote *q = parsed;
    enum clst_status rc = dcap_quote_parse(data, size, q, err);
    if (rc != CLST_OK) {
        return rc;
    }
    if (q->tee_type != DCAP_TEE_TDX) {
        memset(q, 0, sizeof(*q));
        return clst_err_set(err, CLST_E_MALFORMED,
                            "tdx evidence: this is an SGX quote (version 3, TEE type 0); verify it "
                            "as sgx evidence");
    }
    return CLST_OK;
}

static enum clst_status
tdx_verify(const void *parsed, const uint8_t *data, size_t size,
           const struct clst_evidence_input *in, struct clst_err *err)
{
    return dcap_verify(parsed, data, size, in, "tdx", err);
}

static bool
tdx_is_debuggable(const void *parsed)
{
    return td_attr_bit(&((const struct dcap_quote *)parsed)->td, TD_ATTR_DEBUG);
}

static const uint8_t *
tdx_report_data(const void *parsed, size_t *out_size)
{
    const struct dcap_quote *q = parsed;
    *out_size = sizeof(q->td.report_data);
    return q->td.report_data;
}

static enum clst_status
set_bool(json_t *claims, const char *name, bool v)
{
    return json_object_set_new(claims, name, json_boolean(v)) == 0 ? CLST_OK : CLST_E_NOMEM;
}

static enum clst_status
tdx_claims(const void *parsed, json_t *claims, struct clst_err *err)
{
    const struct dcap_quote *q = parsed;
    const struct dcap_td_report *td = &q->td;
    enum clst_status rc = CLST_OK;
    static const char *const rtmr_names[4] = {"tdx_rtmr0", "tdx_rtmr1", "tdx_rtmr2", "tdx_rtmr3"};

    if (json_object_set_new(claims, CLST_CLAIM_ATTESTATION_TYPE, json_string("tdxvm")) != 0) {
        rc = CLST_E_NOMEM;
    }
    const struct {
        const char *name;
        const uint8_t *bytes;
        size_t size;
    } hex[] = {
        {"tdx_mrtd", td->mrtd, sizeof(td->mrtd)},
        {"tdx_mrconfigid", td->mrconfigid, sizeof(td->mrconfigid)},
        {"tdx_mrowner", td->mrowner, sizeof(td->mrowner)},
        {"tdx_mrownerconfig", td->mrownerconfig, sizeof(td->mrownerconfig)},
        {"tdx_mrseam", td->mrseam, sizeof(td->mrseam)},
        {"tdx_mrsignerseam", td->mrsignerseam, sizeof(td->mrsignerseam)},
        {"tdx_seam_attributes", td->seam_attributes, sizeof(td->seam_attributes)},
        {"tdx_td_attributes", td->td_attributes, sizeof(td->td_attributes)},
        {"tdx_xfam", td->xfam, sizeof(td->xfam)},
        {"tdx_report_data", td->report_data, sizeof(td->report_data)},
        {"tdx_tee_tcb_svn", td->tee_tcb_svn, sizeof(td->tee_tcb_svn)},
    };
    for (size_t i = 0; rc == CLST_OK && i < sizeof(hex) / sizeof(hex[0]); i++) {
        rc = dcap_claim_hex(claims, hex[i].name, hex[i].bytes, hex[i].size);
    }
    for (size_t i = 0; rc == CLST_OK && i < 4; i++) {
        rc = dcap_claim_hex(claims, rtmr_names[i], td->rtmr[i], sizeof(td->rtmr[i]));
    }
    if (rc == CLST_OK && q->body_type == DCAP_BODY_TD15) {
        rc = dcap_claim_hex(claims, "tdx_tee_tcb_svn2", td->tee_tcb_svn2, sizeof(td->tee_tcb_svn2));
        if (rc == CLST_OK) {
            rc = dcap_claim_hex(claims, "tdx_mrservicetd", td->mrservicetd,
                                sizeof(td->mrservicetd));
        }
    }
    /* The TDX module's SVN: TEE_TCB_SVN[0] (minor) and [1] (major) as a little-endian u16, as
     * Intel Trust Authority reports it ("0d01..." -> 269). */
    if (rc == CLST_OK &&
        json_object_set_new(claims, "tdx_seamsvn",
                            json_integer((json_int_t)(td->tee_tcb_svn[0] |
                                                      td->tee_tcb_svn[1] << 8))) != 0) {
        rc = CLST_E_NOMEM;
    }
    if (rc == CLST_OK) {
        rc = set_bool(claims, "tdx_td_attributes_debug", td_attr_bit(td, TD_ATTR_DEBUG));
    }
    if (rc == CLST_OK) {
        rc = set_bool(claims, "tdx_td_attributes_septve_disable",
                      td_attr_bit(td, TD_ATTR_SEPT_VE_DISABLE));
    }
    if (rc == CLST_OK) {
        rc = set_bool(claims, "tdx_td_attributes_protection_keys", td_attr_bit(td, TD_ATTR_PKS));
    }
    if (rc == CLST_OK) {
        rc = set_bool(claims, "tdx_td_attributes_key_locker", td_attr_bit(td, TD_ATTR_KL));
    }
    if (rc == CLST_OK) {
        rc = set_bool(claims, "tdx_td_attributes_perfmon", td_attr_bit(td, TD_ATTR_PERFMON));
    }
    if (rc == CLST_OK) {
        rc = set_bool(claims, "tdx_is_debuggable", td_attr_bit(td, TD_ATTR_DEBUG));
    }
    if (rc == CLST_OK) {
        rc = dcap_claims_common(q->result, claims, "tdx_collateral", "certhash");
    }
    if (rc != CLST_OK) {
        return clst_err_set(err, rc, "tdx evidence: cannot build the claim set");
    }
    return CLST_OK;
}

const struct evidence_ops evidence_tdx_ops = {
    .kind = CLST_EVIDENCE_TDX,
    .name = "tdx",
    .max_size = DCAP_QUOTE_MAX_SIZE,
    .parsed_size = sizeof(struct dcap_quote),
    .parse = tdx_parse,
    .verify = tdx_verify,
    .is_debuggable = tdx_is_debuggable,
    .report_data = tdx_report_data,
    .claims = tdx_claims,
};
