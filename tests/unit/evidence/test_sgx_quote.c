/*
 * Unit tests for src/evidence/sgx_quote.c (the "sgx" kind) through clst_evidence_verify: the real
 * SGX quote v3 of tests/vectors/sgx/dcap-rs/ with both collateral snapshots (README: 2025-02 ->
 * OutOfDate at 2025-03-01; 2024-06 -> SWHardeningNeeded, a snapshot that is never valid as a
 * whole, so its TCB matching is tested through dcap_tcb_level_match in test_dcap_verify.c and
 * here it must be rejected), and synthetic SGX quotes (test_dcap_fixture.h) for the debug
 * enclave, the claims, the binding, the QE identity kind and flipped bytes.
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_dcap_fixture.h"

#define T_2025_03_01 INT64_C(1740787200)
#define QSGX         "sgx/dcap-rs/quote_v3_sgx_00606a000000.bin"
#define S25          "sgx/dcap-rs/collateral-2025-02/"
#define S24          "sgx/dcap-rs/collateral-2024-06/"

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
    enum clst_status rc = clst_evidence_verify(CLST_EVIDENCE_SGX, in, &c, err);
    if (rc == CLST_OK) {
        assert_non_null(c);
    } else {
        assert_null(c);
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

static void
test_real_sgx_2025(void **state)
{
    (void)state;
    size_t size = 0;
    unsigned char *quote = fx_vector(QSGX, &size);
    struct clst_buf bundle;
    struct clst_err err = {0};
    json_t *claims = NULL;
    fx_vector_bundle(S25 "tcbinfov2.json", S25 "qeidentityv2.json",
                     "sgx/dcap-rs/tcb_signing_cert.pem", S25 "pck_platform_crl.der",
                     S25 "intel_root_ca_crl.der", &bundle);
    struct clst_evidence_input in;
    memset(&in, 0, sizeof(in));
    in.evidence = quote;
    in.evidence_size = size;
    in.endorsements = bundle.data;
    in.endorsements_size = bundle.size;
    in.roots = intel_roots;
    in.at = T_2025_03_01;

    expect(&in, CLST_E_VERIFY, "TCB status is OutOfDate (platform OutOfDate, quoting enclave "
                               "UpToDate)");
    in.tcb_statuses = "OutOfDate";
    assert_int_equal(run(&in, &claims, &err), CLST_OK);
    expect_str(claims, "x-ms-attestation-type", "sgx");
    expect_str(claims, "x-ms-sgx-mrenclave",
               "a4f45c39dac622cb1dd32ddb35a52ec92db41d0fa88a1c911c49e59c534f61cd");
    expect_str(claims, "x-ms-sgx-mrsigner",
               "1bda23eb3a807dfe735ddcebbfa2eac05e04a00df2804296612f770b594180ba");
    assert_int_equal(json_integer_value(json_object_get(claims, "x-ms-sgx-product-id")), 0);
    assert_int_equal(json_integer_value(json_object_get(claims, "x-ms-sgx-svn")), 0);
    assert_true(json_is_false(json_object_get(claims, "x-ms-sgx-is-debuggable")));
    expect_str(claims, "attester_tcb_status", "OutOfDate");
    expect_str(claims, "attester_tcb_date", "2023-08-09T00:00:00Z");
    const json_t *coll = json_object_get(claims, "x-ms-sgx-collateral");
    assert_non_null(json_object_get(coll, "qeidcertshash"));
    assert_non_null(json_object_get(coll, "tcbinfocertshash"));
    assert_int_equal(json_integer_value(json_object_get(coll, "tcbevaluationdatanumber")), 17);
    json_decref(claims);

    /* The same quote as tdx evidence, and a TDX QE identity for it. */
    assert_int_equal(clst_evidence_verify(CLST_EVIDENCE_TDX, &in, &claims, &err),
                     CLST_E_MALFORMED);
    clst_buf_cleanup(&bundle);
    fx_vector_bundle(S25 "tcbinfov2.json", "tdx/dcap-rs/collateral-2025-02/qeidentityv2_apiv4.json",
                     "sgx/dcap-rs/tcb_signing_cert.pem", S25 "pck_platform_crl.der",
                     S25 "intel_root_ca_crl.der", &bundle);
    in.endorsements = bundle.data;
    in.endorsements_size = bundle.size;
    expect(&in, CLST_E_VERIFY, "TD_QE");

    /* Flipped bytes: header+report, signature, key, QE report (v3 offsets). */
    clst_buf_cleanup(&bundle);
    fx_vector_bundle(S25 "tcbinfov2.json", S25 "qeidentityv2.json",
                     "sgx/dcap-rs/tcb_signing_cert.pem", S25 "pck_platform_crl.der",
                     S25 "intel_root_ca_crl.der", &bundle);
    in.endorsements = bundle.data;
    in.endorsements_size = bundle.size;
    static const struct {
        size_t from, to, step;
    } regions[] = {{0, 0x1B0, 5}, {0x1B4, 0x1F4, 3}, {0x1F4, 0x234, 3}, {0x234, 0x3B4, 5},
                   {0x3B4, 0x3F4, 3}, {0x3F6, 0x416, 2}, {0x41C, 0x41C + 3682, 47}};
    for (size_t k = 0; k < sizeof(regions) / sizeof(regions[0]); k++) {
        for (size_t i = regions[k].from; i < regions[k].to; i += regions[k].step) {
            quote[i] ^= 0x24;
            if (run(&in, NULL, &err) == CLST_OK) {
                fail_msg("byte %zu flipped: accepted", i);
            }
            quote[i] ^= 0x24;
        }
    }
    assert_int_equal(run(&in, NULL, &err), CLST_OK);

    /* Every truncation fails to parse. */
    for (size_t n = 0; n < size; n++) {
        in.evidence_size = n;
        if (run(&in, NULL, &err) != CLST_E_MALFORMED) {
            fail_msg("truncated to %zu: %s", n, err.msg);
        }
    }
    clst_buf_cleanup(&bundle);
    free(quote);
}

static void
test_real_sgx_2024_snapshot(void **state)
{
    (void)state;
    size_t size = 0;
    unsigned char *quote = fx_vector(QSGX, &size);
    struct clst_buf bundle;
    fx_vector_bundle(S24 "tcbinfov3_sgx.json", S24 "qeidentityv2.json",
                     "sgx/dcap-rs/tcb_signing_cert.pem", S24 "pck_platform_crl.der",
                     S24 "intel_root_ca_crl.der", &bundle);
    struct clst_evidence_input in;
    memset(&in, 0, sizeof(in));
    in.evidence = quote;
    in.evidence_size = size;
    in.endorsements = bundle.data;
    in.endorsements_size = bundle.size;
    in.roots = intel_roots;
    in.tcb_statuses = "SWHardeningNeeded";
    /* The README: no instant has every item valid. At 2024-06-14 the PCK CRL has expired; at
     * 2024-06-01 the tcbInfo is not yet valid. */
    in.at = INT64_C(1718323200);
    expect(&in, CLST_E_VERIFY, "CRL has expired");
    in.at = INT64_C(1717200000);
    expect(&in, CLST_E_VERIFY, "tcb_info.json is valid from");
    clst_buf_cleanup(&bundle);
    free(quote);
}

static void
test_synth_sgx(void **state)
{
    struct fx *f = *state;
    struct fx_quote q;
    struct fx_case c;
    struct clst_err err = {0};
    json_t *claims = NULL;

    fx_quote_init(&q, 3, DCAP_BODY_SGX);
    memset(q.sgx.configid, 0xC1, 64);
    q.sgx.configsvn = 9;
    memset(q.sgx.isvfamilyid, 0xF1, 16);
    memset(q.sgx.isvextprodid, 0xE2, 16);
    fx_case_make(f, &q, &c);
    assert_int_equal(run(&c.in, &claims, &err), CLST_OK);
    expect_str(claims, "attester_tcb_status", "UpToDate");
    assert_int_equal(json_integer_value(json_object_get(claims, "x-ms-sgx-product-id")), 3);
    assert_int_equal(json_integer_value(json_object_get(claims, "x-ms-sgx-svn")), 2);
    assert_int_equal(json_integer_value(json_object_get(claims, "x-ms-sgx-config-svn")), 9);
    expect_str(claims, "x-ms-sgx-isv-family-id", "f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1");
    expect_str(claims, "x-ms-sgx-isv-extended-product-id", "e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2");
    assert_int_equal(strlen(json_string_value(json_object_get(claims, "x-ms-sgx-config-id"))), 128);
    json_decref(claims);
    /* A TDX quote is not sgx evidence. */
    fx_case_cleanup(&c);
    fx_quote_init(&q, 4, DCAP_BODY_TD10);
    fx_case_make(f, &q, &c);
    expect(&c.in, CLST_E_MALFORMED, "TDX quote");
    fx_case_cleanup(&c);

    /* Debug enclave: refused by default. */
    fx_quote_init(&q, 3, DCAP_BODY_SGX);
    q.sgx.attributes[0] |= DCAP_SGX_ATTR_DEBUG;
    fx_case_make(f, &q, &c);
    expect(&c.in, CLST_E_VERIFY, "debuggable");
    c.in.allow_debug = true;
    assert_int_equal(run(&c.in, &claims, &err), CLST_OK);
    assert_true(json_is_true(json_object_get(claims, "x-ms-sgx-is-debuggable")));
    json_decref(claims);
    fx_case_cleanup(&c);

    /* Unbound QE report data; report data mismatch. */
    fx_quote_init(&q, 3, DCAP_BODY_SGX);
    q.bad_binding = true;
    fx_case_make(f, &q, &c);
    expect(&c.in, CLST_E_VERIFY, "not bound");
    fx_case_cleanup(&c);
    fx_quote_init(&q, 3, DCAP_BODY_SGX);
    fx_case_make(f, &q, &c);
    uint8_t rd[64];
    memset(rd, 0x77, sizeof(rd));
    c.in.report_data = rd;
    c.in.report_data_size = sizeof(rd);
    assert_int_equal(run(&c.in, NULL, &err), CLST_OK);
    rd[63] ^= 1;
    expect(&c.in, CLST_E_VERIFY, "report data");
    c.in.report_data = NULL;

    /* The TDX tcbInfo for an SGX quote. */
    clst_buf_cleanup(&c.tcb_info);
    fx_tcb_info(f, "TDX", "00906ED50000", FX_TDX_LEVELS, FX_MODULES, FX_T0 - FX_DAY,
                FX_T0 + 30 * FX_DAY, &c.tcb_info);
    fx_case_rebundle(f, &c);
    expect(&c.in, CLST_E_VERIFY, "TDX TCB info");
    fx_case_cleanup(&c);

    /* Reserved bytes of the enclave report: rejected by the parser (before any signature). */
    fx_quote_init(&q, 3, DCAP_BODY_SGX);
    fx_case_make(f, &q, &c);
    static const size_t reserved[] = {48 + 20, 48 + 96, 48 + 160, 48 + 262, 48 + 303};
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
        c.quote.data[reserved[i]] = 1;
        expect(&c.in, CLST_E_MALFORMED, "reserved");
        c.quote.data[reserved[i]] = 0;
    }
    assert_int_equal(run(&c.in, NULL, &err), CLST_OK);
    fx_case_cleanup(&c);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_sgx_2025),
        cmocka_unit_test(test_real_sgx_2024_snapshot),
        cmocka_unit_test(test_synth_sgx),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
