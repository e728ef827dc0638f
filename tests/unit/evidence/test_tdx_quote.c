/*
 * Unit tests for src/evidence/tdx_quote.c (the "tdx" kind) through clst_evidence_verify, which
 * drives dcap_verify.c: real TDX quotes v4/v5 with Intel's collateral (tests/vectors/tdx/, each
 * README's expected outcome and fixed time), and synthetic quotes from test_dcap_fixture.h for
 * what real hardware did not give us.
 *
 * Negative cases: the upstream mutation recipes (go-tdx-guest README), a flipped byte in each
 * signed region (header and TD body, quote signature, attestation key, QE report, its signature,
 * QE auth data, PCK chain, tcbInfo, QE identity), ECDSA r or s zero or >= n in each signature,
 * the pretty-printed QE identity, a valid quote with another platform's PCK chain, the wrong
 * product's root, a root taken from the evidence, times outside every validity window, oversized
 * input, unbound report data, unknown versions and body types, debug TDs, every TCB status
 * against the policy (Revoked never), TDX module identity mismatches, QE identity mismatches,
 * collateral for another FMSPC / TEE / QE, a revoked PCK, a PCK CRL of another CA, a TCB signing
 * chain that is not the TCB Signing certificate.
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_dcap_fixture.h"

#define T_2025_03_01 INT64_C(1740787200)
#define T_2024_06_01 INT64_C(1717200000)
#define T_2023_07_01 INT64_C(1688173200) /* 2023-07-01T01:00:00Z */
#define T_2026_02_03 INT64_C(1770080400) /* 2026-02-03T01:00:00Z */

#define Q00806F "tdx/dcap-rs/quote_v4_tdx_00806f050000.dat"
#define Q90C06F "tdx/dcap-rs/quote_v4_tdx_90c06f000000.dat"
#define QSPR    "tdx/go-tdx-guest/tdx_prod_quote_SPR_E4.dat"
#define QV5     "tdx/go-tdx-guest/quote_v5_sample.dat"
#define QCOS    "tdx/go-tdx-guest/ccel/cos-113-tdx-quote.dat"
#define C25     "tdx/dcap-rs/collateral-2025-02/"
#define C24     "tdx/dcap-rs/collateral-2024-05/"
#define GTG     "tdx/go-tdx-guest/"

static STACK_OF(X509) *intel_roots;

static int
setup(void **state)
{
    if (clst_evidence_intel_roots(&intel_roots, NULL) != CLST_OK) {
        return -1;
    }
    *state = fx_new();
    return 0;
}

static int
teardown(void **state)
{
    fx_free(*state);
    sk_X509_pop_free(intel_roots, X509_free);
    return 0;
}

static enum clst_status
run(const struct clst_evidence_input *in, json_t **claims, struct clst_err *err)
{
    json_t *c = NULL;
    clst_err_clear(err);
    enum clst_status rc = clst_evidence_verify(CLST_EVIDENCE_TDX, in, &c, err);
    if (rc == CLST_OK) {
        assert_non_null(c);
    } else {
        assert_null(c);
        assert_int_equal(err->status, rc);
        assert_true(strlen(err->msg) > 10);
    }
    if (claims != NULL) {
        *claims = c;
    } else {
        json_decref(c);
    }
    return rc;
}

static void
expect(const struct clst_evidence_input *in, enum clst_status want, const char *msg_part)
{
    struct clst_err err = {0};
    enum clst_status rc = run(in, NULL, &err);
    if (rc != want || (msg_part != NULL && strstr(err.msg, msg_part) == NULL)) {
        fail_msg("want %s (\"%s\"), got %s: %s", clst_status_str(want),
                 msg_part != NULL ? msg_part : "", clst_status_str(rc), err.msg);
    }
}

static void
expect_str(const json_t *claims, const char *name, const char *value)
{
    const char *got = json_string_value(json_object_get(claims, name));
    if (got == NULL || strcmp(got, value) != 0) {
        fail_msg("claim %s: want %s, got %s", name, value, got != NULL ? got : "(none)");
    }
}

/* A real quote with its collateral. */
struct real {
    unsigned char *quote;
    size_t size;
    struct clst_buf bundle;
    struct clst_evidence_input in;
};

static void
real_load(struct real *r, const char *quote, const char *tcb_info, const char *qe_identity,
          const char *chain, const char *pck_crl, const char *root_crl, int64_t at)
{
    memset(r, 0, sizeof(*r));
    r->quote = fx_vector(quote, &r->size);
    fx_vector_bundle(tcb_info, qe_identity, chain, pck_crl, root_crl, &r->bundle);
    r->in.evidence = r->quote;
    r->in.evidence_size = r->size;
    r->in.endorsements = r->bundle.data;
    r->in.endorsements_size = r->bundle.size;
    r->in.roots = intel_roots;
    r->in.at = at;
}

static void
real_00806f(struct real *r)
{
    real_load(r, Q00806F, C25 "tcbinfov3_00806f050000.json", C25 "qeidentityv2_apiv4.json",
              "tdx/dcap-rs/tcb_signing_cert.pem", C25 "pck_platform_crl.der",
              C25 "intel_root_ca_crl.der", T_2025_03_01);
}

static void
real_free(struct real *r)
{
    free(r->quote);
    clst_buf_cleanup(&r->bundle);
}

/* The 00806f quote at 2025-03-01 with its 2025-02 collateral, except each file named (NULL: the
 * genuine one), under the TCB policy `tcb_statuses` (NULL: the default), must give `want`. */
static void
expect_00806f_with(const char *tcb_info, const char *qe_identity, const char *chain,
                   const char *pck_crl, const char *tcb_statuses, enum clst_status want,
                   const char *msg_part)
{
    struct real r;
    real_load(&r, Q00806F, tcb_info != NULL ? tcb_info : C25 "tcbinfov3_00806f050000.json",
              qe_identity != NULL ? qe_identity : C25 "qeidentityv2_apiv4.json",
              chain != NULL ? chain : "tdx/dcap-rs/tcb_signing_cert.pem",
              pck_crl != NULL ? pck_crl : C25 "pck_platform_crl.der", C25 "intel_root_ca_crl.der",
              T_2025_03_01);
    r.in.tcb_statuses = tcb_statuses;
    expect(&r.in, want, msg_part);
    real_free(&r);
}

/* ---- real quotes: expected outcomes ----------------------------------------------------------- */

static void
test_real_00806f_out_of_date(void **state)
{
    (void)state;
    struct real r;
    struct clst_err err = {0};
    json_t *claims = NULL;
    real_00806f(&r);

    /* Default policy: UpToDate only. */
    expect(&r.in, CLST_E_VERIFY, "TCB status is OutOfDate");
    r.in.tcb_statuses = "UpToDate,SWHardeningNeeded";
    expect(&r.in, CLST_E_VERIFY, "OutOfDate");

    r.in.tcb_statuses = "UpToDate,OutOfDate";
    assert_int_equal(run(&r.in, &claims, &err), CLST_OK);
    expect_str(claims, "x-ms-attestation-type", "tdxvm");
    expect_str(claims, "tdx_mrtd",
               "935be7742dd89c6a4df6dba8353d89041ae0f052beef993b1e7f4524d3bc57650df20e5582158352e"
               "1240b3f1fed55d8");
    expect_str(claims, "tdx_tee_tcb_svn", "04010700000000000000000000000000");
    expect_str(claims, "tdx_td_attributes", "0000001000000000");
    expect_str(claims, "tdx_xfam", "e700060000000000");
    expect_str(claims, "attester_tcb_status", "OutOfDate");
    expect_str(claims, "attester_tcb_date", "2023-08-09T00:00:00Z");
    char zeros[129];
    memset(zeros, '0', 128);
    zeros[128] = 0;
    expect_str(claims, "tdx_report_data", zeros);
    const json_t *ids = json_object_get(claims, "attester_advisory_ids");
    assert_int_equal(json_array_size(ids), 3);
    assert_string_equal(json_string_value(json_array_get(ids, 0)), "INTEL-SA-00960");
    assert_string_equal(json_string_value(json_array_get(ids, 1)), "INTEL-SA-00982");
    assert_string_equal(json_string_value(json_array_get(ids, 2)), "INTEL-SA-00986");
    assert_true(json_is_false(json_object_get(claims, "tdx_td_attributes_debug")));
    assert_true(json_is_true(json_object_get(claims, "tdx_td_attributes_septve_disable")));
    assert_int_equal(json_integer_value(json_object_get(claims, "tdx_seamsvn")), 0x0104);
    const json_t *coll = json_object_get(claims, "tdx_collateral");
    assert_int_equal(json_integer_value(json_object_get(coll, "tcbevaluationdatanumber")), 17);
    assert_int_equal(strlen(json_string_value(json_object_get(coll, "quotehash"))), 64);
    json_decref(claims);

    /* The expected report data and runtime binding of the README (64 zero bytes). */
    static const uint8_t rd[64] = {0};
    r.in.report_data = rd;
    r.in.report_data_size = sizeof(rd);
    assert_int_equal(run(&r.in, NULL, &err), CLST_OK);
    static uint8_t other[64] = {1};
    r.in.report_data = other;
    expect(&r.in, CLST_E_VERIFY, "report data");
    r.in.report_data = NULL;
    r.in.runtime_data = (const uint8_t *)"runtime";
    r.in.runtime_data_size = 7;
    expect(&r.in, CLST_E_VERIFY, "runtime data");

    /* A policy that names no real status, or Revoked, is the caller's error. */
    r.in.runtime_data = NULL;
    r.in.runtime_data_size = 0;
    r.in.tcb_statuses = "UpToDate,Bogus";
    expect(&r.in, CLST_E_INVAL, "not a TCB status");
    r.in.tcb_statuses = "Revoked";
    expect(&r.in, CLST_E_INVAL, "Revoked");
    real_free(&r);
}

static void
test_real_90c06f_up_to_date(void **state)
{
    (void)state;
    struct real r;
    struct clst_err err = {0};
    json_t *claims = NULL;
    real_load(&r, Q90C06F, C24 "tcbinfov3_90c06f000000.json",
              C24 "qeidentityv2_apiv4.compact.json", "tdx/dcap-rs/tcb_signing_cert.pem",
              C24 "pck_platform_crl.der", C24 "intel_root_ca_crl.der", T_2024_06_01);
    assert_int_equal(run(&r.in, &claims, &err), CLST_OK);
    expect_str(claims, "attester_tcb_status", "UpToDate");
    expect_str(claims, "attester_tcb_date", "2024-03-13T00:00:00Z");
    expect_str(claims, "tdx_mrtd",
               "f2dd2696f69b950645832bdc095ffd11247eeff687eeacdb57a58d2ddb9a9f94fea40c961e19460c"
               "00ffa31420ecbc18");
    expect_str(claims, "tdx_tee_tcb_svn", "04010200000000000000000000000000");
    assert_true(json_is_true(json_object_get(claims, "tdx_td_attributes_perfmon")));
    assert_int_equal(json_array_size(json_object_get(claims, "attester_advisory_ids")), 0);
    json_decref(claims);
    real_free(&r);

    /* The pretty-printed QE identity (upstream's copy) does not verify over its raw bytes. */
    real_load(&r, Q90C06F, C24 "tcbinfov3_90c06f000000.json", C24 "qeidentityv2_apiv4.json",
              "tdx/dcap-rs/tcb_signing_cert.pem", C24 "pck_platform_crl.der",
              C24 "intel_root_ca_crl.der", T_2024_06_01);
    expect(&r.in, CLST_E_VERIFY, "signature over \"enclaveIdentity\"");
    real_free(&r);

    /* TCB recovery: with the 2025-02 tcbInfo no level matches any more. */
    real_load(&r, Q90C06F, C25 "tcbinfov3_90c06f000000.json", C25 "qeidentityv2_apiv4.json",
              "tdx/dcap-rs/tcb_signing_cert.pem", C25 "pck_platform_crl.der",
              C25 "intel_root_ca_crl.der", T_2025_03_01);
    expect(&r.in, CLST_E_VERIFY, "below every TCB level");
    real_free(&r);
}

static void
test_real_cos_quote(void **state)
{
    (void)state;
    struct real r;
    struct clst_err err = {0};
    json_t *claims = NULL;
    size_t nonce_size = 0;
    real_load(&r, QCOS, C25 "tcbinfov3_00806f050000.json", C25 "qeidentityv2_apiv4.json",
              "tdx/dcap-rs/tcb_signing_cert.pem", C25 "pck_platform_crl.der",
              C25 "intel_root_ca_crl.der", T_2025_03_01);
    unsigned char *nonce = fx_vector(GTG "ccel/nonce.dat", &nonce_size);
    r.in.report_data = nonce;
    r.in.report_data_size = nonce_size;
    assert_int_equal(run(&r.in, &claims, &err), CLST_OK);
    expect_str(claims, "attester_tcb_status", "UpToDate");
    expect_str(claims, "tdx_mrtd",
               "dae67181d3d65e073ad8f95b7907d5e927bfe9761c9ff3e9b89734a45d8954dba41394c7717cb273"
               "5396c1d04231f94a");
    expect_str(claims, "tdx_rtmr0",
               "3fa2f61f395b7f5feefb4ec2df61297f109ad8abcd6410c1b7df60f21f37b19297fc35e544039c7e"
               "1edece752afd17f6");
    expect_str(claims, "tdx_rtmr2",
               "4969684dc87381fc3b3134176c8d8806eaf0a901859f5f70cfae8d17714b46c10a8de219048c9fc0"
               "9f11f381a6fbe7c1");
    json_decref(claims);
    free(nonce);
    real_free(&r);
}

static void
test_real_spr_e4(void **state)
{
    (void)state;
    struct real r;
    real_load(&r, QSPR, GTG "sample_tcbInfo_response", GTG "sample_qeIdentity_response",
              GTG "tcbinfo_issuer_chain.pem", GTG "pckcrl", GTG "rootcrl.der", T_2023_07_01);
    /* Every signature and the chain verify; the platform's SVNs are below every level. */
    expect(&r.in, CLST_E_VERIFY, "below every TCB level");
    /* At 2053 everything has expired. */
    r.in.at = INT64_C(2635203600);
    expect(&r.in, CLST_E_VERIFY, NULL);
    r.in.at = T_2023_07_01;

    /* Upstream's negative table (verify_test.go TestNegativeVerification). */
    static const struct {
        size_t off;
        uint8_t value;
        enum clst_status want;
        const char *msg;
    } muts[] = {
        {0x00, 3, CLST_E_MALFORMED, "TEE type"},
        {0x278, 0x10, CLST_E_MALFORMED, NULL},
        {0x1343, 0x32, CLST_E_VERIFY, "PCK certificate chain"},
        {0x1329, 0x32, CLST_E_VERIFY, "PCK certificate chain"},
        {0xF5F, 0x32, CLST_E_VERIFY, "PCK certificate chain"},
        {0xB77, 0x32, CLST_E_VERIFY, "PCK certificate chain"},
        {0x1E, 0x32, CLST_E_VERIFY, "quote signature"},
        {0x3C, 0x32, CLST_E_VERIFY, "quote signature"},
    };
    for (size_t i = 0; i < sizeof(muts) / sizeof(muts[0]); i++) {
        uint8_t saved = r.quote[muts[i].off];
        r.quote[muts[i].off] = muts[i].value;
        struct clst_err err = {0};
        enum clst_status rc = run(&r.in, NULL, &err);
        /* A broken PEM may fail to parse (MALFORMED) rather than to verify. */
        bool ok = rc == muts[i].want || (muts[i].want == CLST_E_VERIFY && rc == CLST_E_MALFORMED);
        if (!ok || (muts[i].msg != NULL && strstr(err.msg, muts[i].msg) == NULL) ||
            strstr(err.msg, "below every TCB level") != NULL) {
            fail_msg("mutation 0x%zx=0x%02x: got %s: %s", muts[i].off, muts[i].value,
                     clst_status_str(rc), err.msg);
        }
        r.quote[muts[i].off] = saved;
    }

    /* FMSPC of the tcbInfo not the PCK's: the dcap-rs tcbInfo for another FMSPC. */
    real_free(&r);
    real_load(&r, QSPR, C25 "tcbinfov3_00806f050000.json", GTG "sample_qeIdentity_response",
              GTG "tcbinfo_issuer_chain.pem", GTG "pckcrl", GTG "rootcrl.der", T_2023_07_01);
    expect(&r.in, CLST_E_VERIFY, NULL); /* tcbInfo not valid in 2023, and another FMSPC */
    real_free(&r);
}

/* The v5 sample: the collateral stored with it cannot all be valid at one instant (the TCB Signing
 * certificate expired in 2025, the CRLs in 2023/2024), so the whole pipeline rejects it; its
 * signatures, binding, chain and TCB level are checked one by one here. */
static void
test_real_v5_quote(void **state)
{
    (void)state;
    struct real r;
    real_load(&r, QV5, GTG "sample_tcbinfo_response_v5", GTG "sample_qeIdentity_response",
              GTG "tcbinfo_issuer_chain.pem", GTG "pckcrl", GTG "rootcrl.der", T_2026_02_03);
    expect(&r.in, CLST_E_VERIFY, "CRL has expired");

    struct dcap_quote *q = calloc(1, sizeof(*q));
    struct clst_err err = {0};
    assert_non_null(q);
    assert_int_equal(dcap_quote_parse(r.quote, r.size, q, &err), CLST_OK);
    assert_int_equal(q->version, 5);
    assert_int_equal(q->body_type, DCAP_BODY_TD15);
    assert_int_equal(q->signed_size, 0x2BE);
    assert_int_equal(q->trailing_size, 0);
    static const uint8_t svn2[4] = {0x0d, 0x01, 0x04, 0x00};
    assert_memory_equal(q->td.tee_tcb_svn2, svn2, 4);

    /* Quote signature, QE report signature, binding, chain (no CRLs) at upstream's time. */
    uint8_t point[65] = {0x04};
    EVP_PKEY *att = NULL;
    memcpy(point + 1, q->att_key, 64);
    assert_int_equal(clst_ec_point_decode(CLST_CURVE_P256, point, sizeof(point), &att), CLST_OK);
    assert_int_equal(clst_ecdsa_verify(att, CLST_HASH_SHA256, CLST_SIG_RAW, r.quote,
                                       q->signed_size, q->signature, 64),
                     CLST_OK);
    STACK_OF(X509) *chain = NULL;
    assert_int_equal(clst_x509_stack_from_pem(q->pck_chain, q->pck_chain_size, &chain, &err),
                     CLST_OK);
    X509 *pck = sk_X509_value(chain, 0);
    assert_int_equal(clst_ecdsa_verify(X509_get0_pubkey(pck), CLST_HASH_SHA256, CLST_SIG_RAW,
                                       q->qe_report_raw, 384, q->qe_report_sig, 64),
                     CLST_OK);
    uint8_t bind[96];
    uint8_t digest[32];
    memcpy(bind, q->att_key, 64);
    memcpy(bind + 64, q->qe_auth, q->qe_auth_size);
    assert_int_equal(q->qe_auth_size, 32);
    assert_int_equal(clst_sha256(bind, 96, digest), CLST_OK);
    assert_memory_equal(digest, q->qe_report.report_data, 32);
    STACK_OF(X509) *untrusted = sk_X509_new_null();
    assert_true(sk_X509_push(untrusted, sk_X509_value(chain, 1)) > 0);
    assert_int_equal(
        clst_x509_verify_chain(pck, untrusted, intel_roots, NULL, T_2026_02_03, NULL, &err),
        CLST_OK);

    /* The v5 tcbInfo verifies with the (expired) TCB Signing key and gives UpToDate. */
    const ASN1_OCTET_STRING *ext = NULL;
    ASN1_OBJECT *obj = OBJ_txt2obj("1.2.840.113741.1.13.1", 1);
    ext = X509_EXTENSION_get_data(X509_get_ext(pck, X509_get_ext_by_OBJ(pck, obj, -1)));
    ASN1_OBJECT_free(obj);
    struct dcap_pck_info pi;
    assert_int_equal(dcap_pck_extension_parse(ASN1_STRING_get0_data(ext),
                                              (size_t)ASN1_STRING_length(ext), &pi, &err),
                     CLST_OK);
    static const uint8_t fmspc[6] = {0x90, 0xc0, 0x6f, 0, 0, 0};
    assert_memory_equal(pi.fmspc, fmspc, 6);
    size_t tsize = 0, off = 0, len = 0;
    unsigned char *tj = fx_vector(GTG "sample_tcbinfo_response_v5", &tsize);
    uint8_t sig[64];
    assert_int_equal(dcap_signed_json_split(tj, tsize, "tcbInfo", &off, &len, sig, &err), CLST_OK);
    STACK_OF(X509) *tcbchain = NULL;
    size_t csize = 0;
    unsigned char *cpem = fx_vector(GTG "tcbinfo_issuer_chain.pem", &csize);
    assert_int_equal(clst_x509_stack_from_pem(cpem, csize, &tcbchain, &err), CLST_OK);
    assert_int_equal(clst_ecdsa_verify(X509_get0_pubkey(sk_X509_value(tcbchain, 0)),
                                       CLST_HASH_SHA256, CLST_SIG_RAW, tj + off, len, sig, 64),
                     CLST_OK);
    struct dcap_tcb_info *info = calloc(1, sizeof(*info));
    assert_non_null(info);
    assert_int_equal(dcap_tcb_info_parse(tj + off, len, info, &err), CLST_OK);
    size_t level = 99;
    assert_int_equal(dcap_tcb_level_match(info, &pi, q->td.tee_tcb_svn, &level, &err), CLST_OK);
    assert_int_equal(level, 0);
    assert_int_equal(info->level[0].status, DCAP_TCB_UP_TO_DATE);

    free(info);
    free(tj);
    free(cpem);
    sk_X509_pop_free(tcbchain, X509_free);
    sk_X509_free(untrusted);
    sk_X509_pop_free(chain, X509_free);
    EVP_PKEY_free(att);
    free(q);
    real_free(&r);
}

/* ---- real quote: mutations ------------------------------------------------------------------- */

/* Flips byte i (stride `step`) of [from, to) in `buf` and expects a rejection each time. */
static void
flip_region(struct clst_evidence_input *in, uint8_t *buf, size_t from, size_t to, size_t step,
            const char *region)
{
    size_t count = 0;
    for (size_t i = from; i < to; i += step) {
        buf[i] ^= 0x5A;
        struct clst_err err = {0};
        enum clst_status rc = run(in, NULL, &err);
        buf[i] ^= 0x5A;
        if (rc == CLST_OK) {
            fail_msg("%s: flipping byte %zu was accepted", region, i);
        }
        count++;
    }
    assert_true(count > 0);
}

static void
test_real_flipped_bytes(void **state)
{
    (void)state;
    struct real r;
    real_00806f(&r);
    r.in.tcb_statuses = "UpToDate,OutOfDate"; /* so that the unmodified quote passes */
    struct clst_err err = {0};
    assert_int_equal(run(&r.in, NULL, &err), CLST_OK);

    /* Offsets of the v4 quote: header+body 0..0x277, length, signature 0x27C, key 0x2BC, type-6
     * header 0x2FC, QE report 0x302, its signature 0x482, auth size 0x4C2, auth data 0x4C4
     * (32 bytes), type-5 header 0x4E4, PEM chain 0x4EA (3677 bytes). */
    flip_region(&r.in, r.quote, 0, 0x278, 7, "header and TD body");
    flip_region(&r.in, r.quote, 0x27C, 0x2BC, 3, "quote signature");
    flip_region(&r.in, r.quote, 0x2BC, 0x2FC, 3, "attestation key");
    flip_region(&r.in, r.quote, 0x302, 0x482, 5, "QE report");
    flip_region(&r.in, r.quote, 0x482, 0x4C2, 3, "QE report signature");
    flip_region(&r.in, r.quote, 0x4C4, 0x4E4, 2, "QE auth data");
    flip_region(&r.in, r.quote, 0x4EA, 0x4EA + 3677, 41, "PCK chain");

    /* The signed collateral: the tcbInfo and QE identity members inside the bundle. */
    struct dcap_collateral c;
    assert_int_equal(dcap_collateral_parse(r.bundle.data, r.bundle.size, &c, &err), CLST_OK);
    size_t base = (size_t)(c.item[DCAP_COLL_TCB_INFO - 1] - r.bundle.data);
    size_t off = 0, len = 0;
    uint8_t sig[64];
    assert_int_equal(dcap_signed_json_split(c.item[0], c.item_size[0], "tcbInfo", &off, &len, sig,
                                            &err),
                     CLST_OK);
    flip_region(&r.in, r.bundle.data, base + off, base + off + len, 31, "tcbInfo");
    base = (size_t)(c.item[DCAP_COLL_QE_IDENTITY - 1] - r.bundle.data);
    assert_int_equal(dcap_signed_json_split(c.item[1], c.item_size[1], "enclaveIdentity", &off,
                                            &len, sig, &err),
                     CLST_OK);
    flip_region(&r.in, r.bundle.data, base + off, base + off + len, 11, "QE identity");
    assert_int_equal(run(&r.in, NULL, &err), CLST_OK);
    real_free(&r);
}

/* P-256 group order n. */
static const uint8_t p256_n[32] = {
    0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xBC, 0xE6, 0xFA, 0xAD, 0xA7, 0x17, 0x9E, 0x84, 0xF3, 0xB9, 0xCA, 0xC2, 0xFC, 0x63, 0x25, 0x51,
};

/* r or s (half 0/1) set to 0, n, n+1 and 2^256-1 at sig: each must be rejected. */
static void
bad_scalars(struct clst_evidence_input *in, uint8_t *sig, const char *what)
{
    uint8_t saved[64];
    memcpy(saved, sig, 64);
    for (int half = 0; half < 2; half++) {
        for (int kind = 0; kind < 4; kind++) {
            memcpy(sig, saved, 64);
            uint8_t *x = sig + 32 * half;
            if (kind == 0) {
                memset(x, 0, 32);
            } else if (kind == 3) {
                memset(x, 0xFF, 32);
            } else {
                memcpy(x, p256_n, 32);
                x[31] = (uint8_t)(x[31] + (kind == 2 ? 1 : 0));
            }
            struct clst_err err = {0};
            enum clst_status rc = run(in, NULL, &err);
            if (rc != CLST_E_VERIFY) {
                fail_msg("%s with %s = %s: got %s: %s", what, half ? "s" : "r",
                         kind == 0 ? "0" : kind == 1 ? "n" : kind == 2 ? "n+1" : "2^256-1",
                         clst_status_str(rc), err.msg);
            }
        }
    }
    memcpy(sig, saved, 64);
}

static void
test_real_bad_ecdsa_scalars(void **state)
{
    (void)state;
    struct real r;
    struct clst_err err = {0};
    real_00806f(&r);
    r.in.tcb_statuses = "UpToDate,OutOfDate";
    bad_scalars(&r.in, r.quote + 0x27C, "quote signature");
    bad_scalars(&r.in, r.quote + 0x482, "QE report signature");

    /* The tcbInfo signature is hex inside the JSON: rewrite it. */
    struct dcap_collateral c;
    assert_int_equal(dcap_collateral_parse(r.bundle.data, r.bundle.size, &c, &err), CLST_OK);
    uint8_t *tj = r.bundle.data + (c.item[0] - r.bundle.data);
    char *hex = strstr((char *)tj, "\"signature\":\"");
    assert_non_null(hex);
    hex += strlen("\"signature\":\"");
    char saved[129];
    memcpy(saved, hex, 128);
    memset(hex, '0', 64);
    expect(&r.in, CLST_E_VERIFY, "signature over \"tcbInfo\"");
    memcpy(hex, saved, 128);
    memset(hex + 64, 'f', 64);
    expect(&r.in, CLST_E_VERIFY, "signature over \"tcbInfo\"");
    memcpy(hex, saved, 128);
    assert_int_equal(run(&r.in, NULL, &err), CLST_OK);
    real_free(&r);
}

static void
test_real_mismatched_certificate(void **state)
{
    (void)state;
    struct real r;
    struct clst_err err = {0};
    real_00806f(&r);
    r.in.tcb_statuses = "UpToDate,OutOfDate";
    /* Another platform's genuine PCK chain (the SGX quote's) in place of this one: the quote and
     * its lengths stay consistent, so the QE report signature is what fails. */
    size_t csize = 0;
    unsigned char *other = fx_vector("tdx/dcap-rs/pck_certchain.pem", &csize);
    struct dcap_quote *q = calloc(1, sizeof(*q));
    assert_non_null(q);
    assert_int_equal(dcap_quote_parse(r.quote, r.size, q, &err), CLST_OK);
    struct clst_buf b;
    clst_buf_init(&b, 1 << 16);
    size_t head = 0x4E4; /* up to and excluding the type-5 header */
    assert_int_equal(clst_buf_append(&b, r.quote, head), CLST_OK);
    uint8_t h[6];
    clst_put_le16(h, 5);
    clst_put_le32(h + 2, (uint32_t)csize);
    assert_int_equal(clst_buf_append(&b, h, 6), CLST_OK);
    assert_int_equal(clst_buf_append(&b, other, csize), CLST_OK);
    /* fix the two lengths: signature data and type-6 certification data */
    size_t sig_size = b.size - 0x27C;
    clst_put_le32(b.data + 0x278, (uint32_t)sig_size);
    clst_put_le32(b.data + 0x2FE, (uint32_t)(b.size - 0x302));
    r.in.evidence = b.data;
    r.in.evidence_size = b.size;
    expect(&r.in, CLST_E_VERIFY, "QE report signature");
    clst_buf_cleanup(&b);
    free(q);
    free(other);
    real_free(&r);
}

static void
test_real_roots_and_time(void **state)
{
    struct fx *f = *state;
    struct real r;
    real_00806f(&r);
    r.in.tcb_statuses = "UpToDate,OutOfDate";

    /* The wrong product's root (the synthetic test root): the quote carries Intel's root in its
     * chain, which must never be trusted on its own. */
    r.in.roots = f->roots;
    expect(&r.in, CLST_E_VERIFY, "certificate chain");
    r.in.roots = NULL;
    expect(&r.in, CLST_E_INVAL, "no trust roots");
    r.in.roots = intel_roots;

    /* Outside the windows: before the PCK and CRLs, after the collateral expired. */
    r.in.at = INT64_C(1704067200); /* 2024-01-01 */
    expect(&r.in, CLST_E_VERIFY, NULL);
    r.in.at = INT64_C(1742083200); /* 2025-03-16: CRL and tcbInfo expired */
    expect(&r.in, CLST_E_VERIFY, NULL);
    r.in.at = T_2025_03_01;

    /* No collateral, or the collateral of another quote. */
    r.in.endorsements = NULL;
    r.in.endorsements_size = 0;
    expect(&r.in, CLST_E_MALFORMED, "--collateral");
    real_free(&r);

    /* The SGX collateral (tcbInfo "SGX", QE identity "QE") for a TDX quote. */
    expect_00806f_with("sgx/dcap-rs/collateral-2025-02/tcbinfov2.json", NULL, NULL, NULL, NULL,
                       CLST_E_VERIFY, "SGX TCB info");
    expect_00806f_with(NULL, "sgx/dcap-rs/collateral-2025-02/qeidentityv2.json", NULL, NULL,
                       "UpToDate,OutOfDate", CLST_E_VERIFY, "QE identity");

    /* A PCK CRL of the wrong issuer (the root's CRL twice): the PCK has no CRL. */
    expect_00806f_with(NULL, NULL, NULL, C25 "intel_root_ca_crl.der", "UpToDate,OutOfDate",
                       CLST_E_VERIFY, "CRL");

    /* The PCK chain offered as TCB signing chain. */
    expect_00806f_with(NULL, NULL, "tdx/dcap-rs/pck_certchain.pem", NULL, "UpToDate,OutOfDate",
                       CLST_E_VERIFY, "tcb_signing_chain.pem");
}

static void
test_oversized_and_truncated(void **state)
{
    (void)state;
    struct real r;
    real_00806f(&r);
    r.in.tcb_statuses = "UpToDate,OutOfDate";
    /* Over the limit: refused before parsing (the bytes are all 0xFF, not a quote at all). */
    uint8_t *big = malloc(DCAP_QUOTE_MAX_SIZE + 1);
    assert_non_null(big);
    memset(big, 0xFF, DCAP_QUOTE_MAX_SIZE + 1);
    r.in.evidence = big;
    r.in.evidence_size = DCAP_QUOTE_MAX_SIZE + 1;
    expect(&r.in, CLST_E_LIMIT, "limit");
    /* The real quote with its trailing zeros extended to exactly the limit still verifies. */
    memset(big, 0, DCAP_QUOTE_MAX_SIZE);
    memcpy(big, r.quote, r.size);
    r.in.evidence_size = DCAP_QUOTE_MAX_SIZE;
    struct clst_err err = {0};
    assert_int_equal(run(&r.in, NULL, &err), CLST_OK);
    /* Every truncation inside the declared length (the parser tests cover each length; here a
     * sample runs the whole pipeline). */
    for (size_t n = 0; n < 4935; n += 97) {
        r.in.evidence = r.quote;
        r.in.evidence_size = n;
        expect(&r.in, CLST_E_MALFORMED, "truncated");
    }
    free(big);
    real_free(&r);
}

/* A synthetic case made from q must give `want` (with msg_part in the message). */
static void
expect_case(const struct fx *f, const struct fx_quote *q, enum clst_status want,
            const char *msg_part)
{
    struct fx_case c;
    fx_case_make(f, q, &c);
    expect(&c.in, want, msg_part);
    fx_case_cleanup(&c);
}

/* Replaces the case's tcbInfo with a TDX one for `fmspc_hex` with `levels`, valid [issue, next],
 * and rebuilds the bundle. */
static void
set_tcb_info(const struct fx *f, struct fx_case *c, const char *fmspc_hex, const char *levels,
             int64_t issue, int64_t next)
{
    clst_buf_cleanup(&c->tcb_info);
    fx_tcb_info(f, "TDX", fmspc_hex, levels, FX_MODULES, issue, next, &c->tcb_info);
    fx_case_rebundle(f, c);
}

/* ---- synthetic quotes ------------------------------------------------------------------------- */

static void
test_synth_ok_v4_v5(void **state)
{
    struct fx *f = *state;
    struct fx_quote q;
    struct fx_case c;
    struct clst_err err = {0};
    json_t *claims = NULL;

    fx_quote_init(&q, 4, DCAP_BODY_TD10);
    fx_case_make(f, &q, &c);
    assert_int_equal(run(&c.in, &claims, &err), CLST_OK);
    expect_str(claims, "attester_tcb_status", "UpToDate");
    assert_null(json_object_get(claims, "tdx_tee_tcb_svn2"));
    json_decref(claims);
    /* The embedded root is not what is trusted: another root refuses the same evidence. */
    struct fx *other = fx_new();
    c.in.roots = other->roots;
    expect(&c.in, CLST_E_VERIFY, "certificate chain");
    fx_free(other);
    fx_case_cleanup(&c);

    fx_quote_init(&q, 5, DCAP_BODY_TD10);
    fx_case_make(f, &q, &c);
    assert_int_equal(run(&c.in, NULL, &err), CLST_OK);
    fx_case_cleanup(&c);

    fx_quote_init(&q, 5, DCAP_BODY_TD15);
    fx_case_make(f, &q, &c);
    assert_int_equal(run(&c.in, &claims, &err), CLST_OK);
    expect_str(claims, "tdx_tee_tcb_svn2", "02020202020202020202020202020202");
    assert_non_null(json_object_get(claims, "tdx_mrservicetd"));
    json_decref(claims);
    fx_case_cleanup(&c);

    /* The runtime-data binding: report data = SHA-256(runtime data) || zeros. */
    fx_quote_init(&q, 4, DCAP_BODY_TD10);
    assert_int_equal(clst_evidence_report_data_bind((const uint8_t *)"key", 3, q.td.report_data),
                     CLST_OK);
    fx_case_make(f, &q, &c);
    c.in.runtime_data = (const uint8_t *)"key";
    c.in.runtime_data_size = 3;
    assert_int_equal(run(&c.in, NULL, &err), CLST_OK);
    c.in.runtime_data = (const uint8_t *)"kez";
    expect(&c.in, CLST_E_VERIFY, "runtime data");
    fx_case_cleanup(&c);
}

static void
test_synth_debug(void **state)
{
    struct fx *f = *state;
    struct fx_quote q;
    struct fx_case c;
    struct clst_err err = {0};
    json_t *claims = NULL;
    fx_quote_init(&q, 4, DCAP_BODY_TD10);
    q.td.td_attributes[0] |= 1; /* DEBUG */
    fx_case_make(f, &q, &c);
    expect(&c.in, CLST_E_VERIFY, "debuggable");
    c.in.allow_debug = true;
    assert_int_equal(run(&c.in, &claims, &err), CLST_OK);
    assert_true(json_is_true(json_object_get(claims, "tdx_td_attributes_debug")));
    assert_true(json_is_true(json_object_get(claims, "tdx_is_debuggable")));
    json_decref(claims);
    fx_case_cleanup(&c);
}

static void
test_synth_binding_and_signers(void **state)
{
    struct fx *f = *state;
    struct fx_quote q;

    fx_quote_init(&q, 4, DCAP_BODY_TD10);
    q.bad_binding = true;
    expect_case(f, &q, CLST_E_VERIFY, "not bound");

    /* A valid report whose QE report is signed by a key that is not the PCK's. */
    fx_quote_init(&q, 4, DCAP_BODY_TD10);
    q.qe_signer = f->att_key;
    expect_case(f, &q, CLST_E_VERIFY, "QE report signature");

    /* A PCK chain whose leaf is the TCB Signing certificate (no SGX extension). */
    fx_quote_init(&q, 4, DCAP_BODY_TD10);
    X509 *bad[2] = {f->tcb, f->root};
    char *pem = fx_pem(bad, 2);
    q.pck_chain = pem;
    expect_case(f, &q, CLST_E_VERIFY, "not a PCK certificate");
    free(pem);

    /* QE identity mismatches: mrsigner, product id, a debug QE, an old QE. */
    fx_quote_init(&q, 4, DCAP_BODY_TD10);
    q.qe.mrsigner[0] ^= 1;
    expect_case(f, &q, CLST_E_VERIFY, "MRSIGNER");
    fx_quote_init(&q, 4, DCAP_BODY_TD10);
    q.qe.isvprodid = 1;
    expect_case(f, &q, CLST_E_VERIFY, "ISVPRODID");
    fx_quote_init(&q, 4, DCAP_BODY_TD10);
    q.qe.attributes[0] |= 0x02;
    expect_case(f, &q, CLST_E_VERIFY, "ATTRIBUTES");
    fx_quote_init(&q, 4, DCAP_BODY_TD10);
    q.qe.isvsvn = 1;
    expect_case(f, &q, CLST_E_VERIFY, "ISVSVN");
    fx_quote_init(&q, 4, DCAP_BODY_TD10);
    q.qe.isvsvn = 3; /* QE OutOfDate: the converged status is OutOfDate */
    expect_case(f, &q, CLST_E_VERIFY,
                "TCB status is OutOfDate (platform UpToDate, quoting enclave "
                "OutOfDate");
}

static void
test_synth_tdx_module(void **state)
{
    struct fx *f = *state;
    struct fx_quote q;
    struct fx_case c;
    struct clst_err err = {0};
    json_t *claims = NULL;

    fx_quote_init(&q, 4, DCAP_BODY_TD10);
    q.td.tee_tcb_svn[1] = 2; /* TDX_02 is not in tcbInfo */
    expect_case(f, &q, CLST_E_VERIFY, "TDX_02");

    fx_quote_init(&q, 4, DCAP_BODY_TD10);
    q.td.tee_tcb_svn[0] = 3; /* TDX_01 level isvsvn 2: OutOfDate, with its advisory */
    fx_case_make(f, &q, &c);
    c.in.tcb_statuses = "OutOfDate";
    assert_int_equal(run(&c.in, &claims, &err), CLST_OK);
    expect_str(claims, "attester_tcb_status", "OutOfDate");
    const json_t *ids = json_object_get(claims, "attester_advisory_ids");
    assert_int_equal(json_array_size(ids), 1);
    assert_string_equal(json_string_value(json_array_get(ids, 0)), "INTEL-SA-01036");
    json_decref(claims);
    fx_case_cleanup(&c);

    fx_quote_init(&q, 4, DCAP_BODY_TD10);
    q.td.tee_tcb_svn[0] = 1; /* below every TDX_01 level */
    expect_case(f, &q, CLST_E_VERIFY, "below every TCB level of TDX_01");

    fx_quote_init(&q, 4, DCAP_BODY_TD10);
    q.td.mrsignerseam[5] = 1; /* not Intel's module */
    expect_case(f, &q, CLST_E_VERIFY, "MRSIGNERSEAM");

    fx_quote_init(&q, 4, DCAP_BODY_TD10);
    q.td.tee_tcb_svn[2] = 6; /* TDX late microcode below level 0, meets level 1 */
    expect_case(f, &q, CLST_E_VERIFY, "TCB status is OutOfDate (platform OutOfDate");
}

/* One level with the given status at the top: each status against the default and an explicit
 * policy. */
static void
test_synth_every_status(void **state)
{
    struct fx *f = *state;
    static const char *const statuses[] = {
        "UpToDate",  "SWHardeningNeeded",           "ConfigurationNeeded",
        "ConfigurationAndSWHardeningNeeded",        "OutOfDate",
        "OutOfDateConfigurationNeeded",             "Revoked",
    };
    for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
        char levels[2048];
        snprintf(levels, sizeof(levels),
                 "[{\"tcb\":{\"sgxtcbcomponents\":" FX_COMPS(7, 7, 2, 2, 3, 1, 0, 3)
                 ",\"pcesvn\":11,\"tdxtcbcomponents\":" FX_COMPS(5, 0, 7, 0, 0, 0, 0, 0)
                 "},\"tcbDate\":\"2024-03-13T00:00:00Z\",\"tcbStatus\":\"%s\","
                 "\"advisoryIDs\":[\"INTEL-SA-0%04zu\"]}]",
                 statuses[i], i);
        struct fx_quote q;
        struct fx_case c;
        struct clst_err err = {0};
        json_t *claims = NULL;
        fx_quote_init(&q, 4, DCAP_BODY_TD10);
        fx_case_make(f, &q, &c);
        set_tcb_info(f, &c, "00906ED50000", levels, FX_T0 - FX_DAY, FX_T0 + 30 * FX_DAY);
        if (i == 0) {
            assert_int_equal(run(&c.in, NULL, &err), CLST_OK);
        } else {
            expect(&c.in, CLST_E_VERIFY, statuses[i]);
        }
        if (strcmp(statuses[i], "Revoked") == 0) {
            c.in.tcb_statuses = "UpToDate,SWHardeningNeeded,ConfigurationNeeded,"
                                "ConfigurationAndSWHardeningNeeded,OutOfDate,"
                                "OutOfDateConfigurationNeeded";
            expect(&c.in, CLST_E_VERIFY, "Revoked");
        } else {
            c.in.tcb_statuses = statuses[i];
            assert_int_equal(run(&c.in, &claims, &err), CLST_OK);
            expect_str(claims, "attester_tcb_status", statuses[i]);
            assert_int_equal(json_array_size(json_object_get(claims, "attester_advisory_ids")), 1);
            json_decref(claims);
        }
        fx_case_cleanup(&c);
    }
}

static void
test_synth_collateral_checks(void **state)
{
    struct fx *f = *state;
    struct fx_quote q;
    struct fx_case c;
    fx_quote_init(&q, 4, DCAP_BODY_TD10);
    fx_case_make(f, &q, &c);

    /* Another FMSPC. */
    set_tcb_info(f, &c, "00806F050000", FX_TDX_LEVELS, FX_T0 - FX_DAY, FX_T0 + 30 * FX_DAY);
    expect(&c.in, CLST_E_VERIFY, "FMSPC");

    /* Expired and not yet valid tcbInfo (everything else valid). */
    set_tcb_info(f, &c, "00906ED50000", FX_TDX_LEVELS, FX_T0 - 40 * FX_DAY, FX_T0 - 10 * FX_DAY);
    expect(&c.in, CLST_E_VERIFY, "tcb_info.json is valid from");
    set_tcb_info(f, &c, "00906ED50000", FX_TDX_LEVELS, FX_T0 + FX_DAY, FX_T0 + 30 * FX_DAY);
    expect(&c.in, CLST_E_VERIFY, "tcb_info.json is valid from");
    clst_buf_cleanup(&c.qe_identity);
    clst_buf_cleanup(&c.tcb_info);
    fx_tcb_info(f, "TDX", "00906ED50000", FX_TDX_LEVELS, FX_MODULES, FX_T0 - FX_DAY,
                FX_T0 + 30 * FX_DAY, &c.tcb_info);
    fx_qe_identity(f, "TD_QE", FX_QE_LEVELS, FX_T0 - 40 * FX_DAY, FX_T0 - FX_DAY, &c.qe_identity);
    fx_case_rebundle(f, &c);
    expect(&c.in, CLST_E_VERIFY, "qe_identity.json is valid from");

    /* tcbInfo signed by the PCK key, not the TCB Signing key. */
    clst_buf_cleanup(&c.qe_identity);
    fx_qe_identity(f, "TD_QE", FX_QE_LEVELS, FX_T0 - FX_DAY, FX_T0 + 30 * FX_DAY, &c.qe_identity);
    struct clst_buf forged;
    fx_signed_json(f->pck_key, "tcbInfo", "{\"id\":\"TDX\"}", &forged);
    clst_buf_cleanup(&c.tcb_info);
    c.tcb_info = forged;
    fx_case_rebundle(f, &c);
    expect(&c.in, CLST_E_VERIFY, "TCB Signing key");
    fx_case_cleanup(&c);

    /* Times: after the CRLs, before the PCK. */
    fx_quote_init(&q, 4, DCAP_BODY_TD10);
    fx_case_make(f, &q, &c);
    c.in.at = FX_T0 + 31 * FX_DAY;
    expect(&c.in, CLST_E_VERIFY, "CRL has expired");
    c.in.at = FX_T0 - 366 * FX_DAY;
    expect(&c.in, CLST_E_VERIFY, "not yet valid");
    fx_case_cleanup(&c);
}

static void
test_synth_revoked_pck(void **state)
{
    struct fx *f = *state;
    struct fx_quote q;
    struct clst_buf saved = f->ca_crl;
    fx_crl(f->ca_key, f->ca, 100, FX_T0 - FX_DAY, FX_T0 + 30 * FX_DAY, &f->ca_crl);
    fx_quote_init(&q, 4, DCAP_BODY_TD10);
    expect_case(f, &q, CLST_E_VERIFY, "revoked");
    clst_buf_cleanup(&f->ca_crl);
    f->ca_crl = saved;
}

static void
test_synth_versions(void **state)
{
    struct fx *f = *state;
    struct fx_quote q;
    struct fx_case c;
    fx_quote_init(&q, 4, DCAP_BODY_TD10);
    fx_case_make(f, &q, &c);
    static const uint16_t bad[] = {0, 1, 2, 6, 0xFFFF};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        clst_put_le16(c.quote.data, bad[i]);
        expect(&c.in, CLST_E_MALFORMED, "unknown quote version");
    }
    clst_put_le16(c.quote.data, 4);
    /* An SGX quote handed to the tdx kind. */
    fx_case_cleanup(&c);
    fx_quote_init(&q, 3, DCAP_BODY_SGX);
    expect_case(f, &q, CLST_E_MALFORMED, "SGX quote");
    /* v5 with a body type this build does not read (1: SGX, 4: unknown). */
    fx_quote_init(&q, 5, DCAP_BODY_TD10);
    fx_case_make(f, &q, &c);
    clst_put_le16(c.quote.data + 48, 1);
    expect(&c.in, CLST_E_MALFORMED, "body type");
    clst_put_le16(c.quote.data + 48, 4);
    expect(&c.in, CLST_E_MALFORMED, "body type");
    fx_case_cleanup(&c);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_00806f_out_of_date),
        cmocka_unit_test(test_real_90c06f_up_to_date),
        cmocka_unit_test(test_real_cos_quote),
        cmocka_unit_test(test_real_spr_e4),
        cmocka_unit_test(test_real_v5_quote),
        cmocka_unit_test(test_real_flipped_bytes),
        cmocka_unit_test(test_real_bad_ecdsa_scalars),
        cmocka_unit_test(test_real_mismatched_certificate),
        cmocka_unit_test(test_real_roots_and_time),
        cmocka_unit_test(test_oversized_and_truncated),
        cmocka_unit_test(test_synth_ok_v4_v5),
        cmocka_unit_test(test_synth_debug),
        cmocka_unit_test(test_synth_binding_and_signers),
        cmocka_unit_test(test_synth_tdx_module),
        cmocka_unit_test(test_synth_every_status),
        cmocka_unit_test(test_synth_collateral_checks),
        cmocka_unit_test(test_synth_revoked_pck),
        cmocka_unit_test(test_synth_versions),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
