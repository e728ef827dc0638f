/*
 * Unit tests for the helpers of src/evidence/dcap_verify.c (the whole verification is exercised
 * through the kinds in test_tdx_quote.c and test_sgx_quote.c): the PCK certificate's SGX
 * extension parser on real PCK certificates (README values) and on every truncation and defect
 * of a synthetic one; TCB level matching on the real tcbInfo files (the SGX 2024-06 snapshot,
 * which is never valid as a whole, is tested here: SWHardeningNeeded with INTEL-SA-00615; the
 * 2025-02 one: OutOfDate; the TDX 90c06f platform after TCB recovery: no level); the QVL status
 * convergence table; the TCB policy parser.
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_dcap_fixture.h"

/* The PCK (first certificate) of a real quote's chain, and its SGX extension. */
static void
real_pck_info(const char *quote_rel, struct dcap_pck_info *out)
{
    size_t n = 0;
    unsigned char *d = fx_vector(quote_rel, &n);
    struct dcap_quote *q = calloc(1, sizeof(*q));
    struct clst_err err = {0};
    assert_non_null(q);
    assert_int_equal(dcap_quote_parse(d, n, q, &err), CLST_OK);
    STACK_OF(X509) *chain = NULL;
    assert_int_equal(clst_x509_stack_from_pem(q->pck_chain, q->pck_chain_size, &chain, &err),
                     CLST_OK);
    X509 *pck = sk_X509_value(chain, 0);
    ASN1_OBJECT *obj = OBJ_txt2obj("1.2.840.113741.1.13.1", 1);
    const ASN1_OCTET_STRING *ext =
        X509_EXTENSION_get_data(X509_get_ext(pck, X509_get_ext_by_OBJ(pck, obj, -1)));
    assert_int_equal(dcap_pck_extension_parse(ASN1_STRING_get0_data(ext),
                                              (size_t)ASN1_STRING_length(ext), out, &err),
                     CLST_OK);
    ASN1_OBJECT_free(obj);
    sk_X509_pop_free(chain, X509_free);
    free(q);
    free(d);
}

static void
test_pck_extension_real(void **state)
{
    (void)state;
    struct dcap_pck_info pi;
    real_pck_info("tdx/go-tdx-guest/tdx_prod_quote_SPR_E4.dat", &pi);
    static const uint8_t spr_svn[8] = {3, 3, 2, 2, 2, 1, 0, 2};
    static const uint8_t spr_fmspc[6] = {0x50, 0x80, 0x6f, 0, 0, 0};
    assert_memory_equal(pi.sgx_svn, spr_svn, 8);
    assert_int_equal(pi.pcesvn, 11);
    assert_memory_equal(pi.fmspc, spr_fmspc, 6);
    assert_int_equal(pi.pceid[0] | pi.pceid[1], 0);

    real_pck_info("sgx/dcap-rs/quote_v3_sgx_00606a000000.bin", &pi);
    static const uint8_t sgx_svn[8] = {12, 12, 3, 3, 255, 255, 1, 0};
    static const uint8_t sgx_fmspc[6] = {0x00, 0x60, 0x6a, 0, 0, 0};
    assert_memory_equal(pi.sgx_svn, sgx_svn, 8);
    assert_int_equal(pi.pcesvn, 13);
    assert_memory_equal(pi.fmspc, sgx_fmspc, 6);

    real_pck_info("tdx/dcap-rs/quote_v4_tdx_00806f050000.dat", &pi);
    static const uint8_t t_svn[8] = {6, 6, 2, 2, 3, 1, 0, 3};
    assert_memory_equal(pi.sgx_svn, t_svn, 8);
    assert_int_equal(pi.pcesvn, 11);
}

static void
test_pck_extension_defects(void **state)
{
    (void)state;
    struct clst_buf ext;
    struct dcap_pck_info pi;
    struct clst_err err = {0};
    static const uint8_t svn[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 255};
    clst_buf_init(&ext, 8192);
    fx_sgx_extension(svn, 300, fx_fmspc, &ext);
    assert_int_equal(dcap_pck_extension_parse(ext.data, ext.size, &pi, &err), CLST_OK);
    assert_memory_equal(pi.sgx_svn, svn, 16);
    assert_int_equal(pi.pcesvn, 300);
    assert_memory_equal(pi.fmspc, fx_fmspc, 6);
    assert_memory_equal(pi.cpusvn, svn, 16);
    for (size_t n = 0; n < ext.size; n++) {
        if (dcap_pck_extension_parse(ext.data, n, &pi, &err) != CLST_E_MALFORMED) {
            fail_msg("truncated to %zu accepted", n);
        }
    }
    assert_int_equal(clst_buf_append_byte(&ext, 0), CLST_OK);
    assert_int_equal(dcap_pck_extension_parse(ext.data, ext.size, &pi, &err), CLST_E_MALFORMED);
    ext.size--;
    /* Each byte flipped: either still a valid extension with other values, or refused; never a
     * crash (the fuzz harness covers more). Flipping the FMSPC OID arc removes FMSPC. */
    uint8_t *fm = NULL;
    for (size_t i = 0; i + 10 < ext.size; i++) {
        static const uint8_t fm_oid[] = {0x06, 0x0A, 0x2A, 0x86, 0x48, 0x86, 0xF8, 0x4D,
                                         0x01, 0x0D, 0x01, 0x04};
        if (memcmp(ext.data + i, fm_oid, sizeof(fm_oid)) == 0) {
            fm = ext.data + i + sizeof(fm_oid) - 1;
        }
    }
    assert_non_null(fm);
    *fm = 0x09;
    assert_int_equal(dcap_pck_extension_parse(ext.data, ext.size, &pi, &err), CLST_E_MALFORMED);
    assert_non_null(strstr(err.msg, "missing"));
    *fm = 0x04;
    /* A long-form length that is not minimal. */
    static const uint8_t nonmin[] = {0x30, 0x81, 0x03, 0x02, 0x01, 0x00};
    assert_int_equal(dcap_pck_extension_parse(nonmin, sizeof(nonmin), &pi, &err),
                     CLST_E_MALFORMED);
    /* SVN 256 does not fit. */
    static const uint8_t big[16] = {0};
    clst_buf_reset(&ext);
    fx_sgx_extension(big, 70000 & 0xFFFF, fx_fmspc, &ext);
    assert_int_equal(dcap_pck_extension_parse(ext.data, ext.size, &pi, &err), CLST_OK);
    assert_int_equal(pi.pcesvn, 70000 & 0xFFFF);
    clst_buf_cleanup(&ext);
}

static struct dcap_tcb_info *
tcb_info(const char *rel)
{
    size_t n = 0, off = 0, len = 0;
    uint8_t sig[64];
    unsigned char *d = fx_vector(rel, &n);
    struct dcap_tcb_info *t = calloc(1, sizeof(*t));
    assert_non_null(t);
    assert_int_equal(dcap_signed_json_split(d, n, "tcbInfo", &off, &len, sig, NULL), CLST_OK);
    assert_int_equal(dcap_tcb_info_parse(d + off, len, t, NULL), CLST_OK);
    free(d);
    return t;
}

static void
test_level_match_real(void **state)
{
    (void)state;
    struct dcap_pck_info sgx, tdx;
    struct clst_err err = {0};
    size_t level = 99;
    real_pck_info("sgx/dcap-rs/quote_v3_sgx_00606a000000.bin", &sgx);

    struct dcap_tcb_info *t = tcb_info("sgx/dcap-rs/collateral-2024-06/tcbinfov3_sgx.json");
    assert_int_equal(dcap_tcb_level_match(t, &sgx, NULL, &level, &err), CLST_OK);
    assert_int_equal(level, 0);
    assert_int_equal(t->level[0].status, DCAP_TCB_SW_HARDENING_NEEDED);
    assert_string_equal(t->adv.id[t->level[0].adv_first], "INTEL-SA-00615");
    free(t);
    t = tcb_info("sgx/dcap-rs/collateral-2024-06/tcbinfov2.json");
    assert_int_equal(dcap_tcb_level_match(t, &sgx, NULL, &level, &err), CLST_OK);
    assert_int_equal(t->level[level].status, DCAP_TCB_SW_HARDENING_NEEDED);
    free(t);
    t = tcb_info("sgx/dcap-rs/collateral-2025-02/tcbinfov2.json");
    assert_int_equal(dcap_tcb_level_match(t, &sgx, NULL, &level, &err), CLST_OK);
    assert_int_equal(level, 2);
    assert_int_equal(t->level[level].status, DCAP_TCB_OUT_OF_DATE);
    /* One component lower than every level: no match. */
    struct dcap_pck_info low = sgx;
    low.sgx_svn[0] = 3;
    assert_int_equal(dcap_tcb_level_match(t, &low, NULL, &level, &err), CLST_E_VERIFY);
    low = sgx;
    low.pcesvn = 4;
    assert_int_equal(dcap_tcb_level_match(t, &low, NULL, &level, &err), CLST_E_VERIFY);
    free(t);

    /* TDX: 90c06f after TCB recovery has no level; TEE_TCB_SVN decides between levels. */
    real_pck_info("tdx/dcap-rs/quote_v4_tdx_90c06f000000.dat", &tdx);
    t = tcb_info("tdx/dcap-rs/collateral-2025-02/tcbinfov3_90c06f000000.json");
    static const uint8_t svn[16] = {4, 1, 2};
    assert_int_equal(dcap_tcb_level_match(t, &tdx, svn, &level, &err), CLST_E_VERIFY);
    free(t);
    real_pck_info("tdx/dcap-rs/quote_v4_tdx_00806f050000.dat", &tdx);
    t = tcb_info("tdx/dcap-rs/collateral-2025-02/tcbinfov3_00806f050000.json");
    struct dcap_pck_info up = tdx;
    memset(up.sgx_svn, 7, 2);
    static const uint8_t svn7[16] = {4, 1, 7}, svn6[16] = {4, 1, 6}, svn_legacy[16] = {3, 0, 7};
    assert_int_equal(dcap_tcb_level_match(t, &up, svn7, &level, &err), CLST_OK);
    assert_int_equal(level, 0);
    assert_int_equal(dcap_tcb_level_match(t, &up, svn6, &level, &err), CLST_OK);
    assert_int_equal(level, 1);
    /* Major version 0: TEE_TCB_SVN[0] is compared too (5 needed for level 0). */
    assert_int_equal(dcap_tcb_level_match(t, &up, svn_legacy, &level, &err), CLST_OK);
    assert_int_equal(level, 1);
    free(t);
}

static void
test_converge_and_policy(void **state)
{
    (void)state;
    enum dcap_tcb_status U = DCAP_TCB_UP_TO_DATE, SW = DCAP_TCB_SW_HARDENING_NEEDED,
                         C = DCAP_TCB_CONFIGURATION_NEEDED,
                         CSW = DCAP_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED,
                         O = DCAP_TCB_OUT_OF_DATE, OC = DCAP_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED,
                         R = DCAP_TCB_REVOKED;
    assert_int_equal(dcap_tcb_status_converge(U, U), U);
    assert_int_equal(dcap_tcb_status_converge(SW, U), SW);
    assert_int_equal(dcap_tcb_status_converge(U, O), O);
    assert_int_equal(dcap_tcb_status_converge(SW, O), O);
    assert_int_equal(dcap_tcb_status_converge(C, O), OC);
    assert_int_equal(dcap_tcb_status_converge(CSW, O), OC);
    assert_int_equal(dcap_tcb_status_converge(O, O), O);
    assert_int_equal(dcap_tcb_status_converge(OC, O), OC);
    assert_int_equal(dcap_tcb_status_converge(U, R), R);
    assert_int_equal(dcap_tcb_status_converge(R, U), R);
    assert_int_equal(dcap_tcb_status_converge(C, SW), C);

    unsigned mask = 0;
    struct clst_err err = {0};
    assert_int_equal(dcap_tcb_policy_parse(NULL, &mask, &err), CLST_OK);
    assert_int_equal(mask, 1u << U);
    assert_int_equal(dcap_tcb_policy_parse("", &mask, &err), CLST_OK);
    assert_int_equal(mask, 1u << U);
    assert_int_equal(dcap_tcb_policy_parse("OutOfDate,SWHardeningNeeded", &mask, &err), CLST_OK);
    assert_int_equal(mask, (1u << O) | (1u << SW));
    static const char *const bad[] = {"UpToDate,", ",UpToDate", "UpToDate, OutOfDate",
                                      "uptodate", "Revoked", "UpToDate,Revoked"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(dcap_tcb_policy_parse(bad[i], &mask, &err), CLST_E_INVAL);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pck_extension_real),
        cmocka_unit_test(test_pck_extension_defects),
        cmocka_unit_test(test_level_match_real),
        cmocka_unit_test(test_converge_and_policy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
