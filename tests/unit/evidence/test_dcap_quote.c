/*
 * Unit tests for src/evidence/dcap_quote.c, the DCAP quote parser (pure: no signatures here).
 *
 * Every real quote of tests/vectors/{tdx,sgx}/ parses with the fields its README gives, trailing
 * bytes after the declared length included; every truncation inside the declared length is
 * CLST_E_MALFORMED; each reserved field set, an unknown version, attestation key type, TEE type,
 * vendor id, v5 body type or size, certification data type, and inconsistent declared sizes are
 * CLST_E_MALFORMED; the size caps are CLST_E_LIMIT; the encoders round-trip.
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_dcap_fixture.h"

static const struct {
    const char *file;
    uint16_t version;
    enum dcap_body_type body;
    size_t quote_size, trailing;
} reals[] = {
    {"tdx/dcap-rs/quote_v4_tdx_00806f050000.dat", 4, DCAP_BODY_TD10, 4935, 3065},
    {"tdx/dcap-rs/quote_v4_tdx_90c06f000000.dat", 4, DCAP_BODY_TD10, 4936, 70},
    {"tdx/go-tdx-guest/tdx_prod_quote_SPR_E4.dat", 4, DCAP_BODY_TD10, 4935, 39},
    {"tdx/go-tdx-guest/quote_v5_sample.dat", 5, DCAP_BODY_TD15, 5006, 0},
    {"tdx/go-tdx-guest/ccel/cos-113-tdx-quote.dat", 4, DCAP_BODY_TD10, 4935, 3065},
    {"sgx/dcap-rs/quote_v3_sgx_00606a000000.bin", 3, DCAP_BODY_SGX, 4734, 0},
};
#define REAL_COUNT (sizeof(reals) / sizeof(reals[0]))

static struct dcap_quote *
new_quote(void)
{
    struct dcap_quote *q = calloc(1, sizeof(*q));
    assert_non_null(q);
    return q;
}

static void
expect_parse(const uint8_t *d, size_t n, enum clst_status want, const char *msg)
{
    struct dcap_quote *q = new_quote();
    struct clst_err err = {0};
    enum clst_status rc = dcap_quote_parse(d, n, q, &err);
    if (rc != want || (msg != NULL && strstr(err.msg, msg) == NULL)) {
        fail_msg("want %s (%s), got %s: %s", clst_status_str(want), msg ? msg : "",
                 clst_status_str(rc), err.msg);
    }
    if (rc != CLST_OK) {
        /* cleared on failure */
        static const struct dcap_quote zero;
        assert_memory_equal(q, &zero, sizeof(zero));
    }
    free(q);
}

static void
test_real_quotes(void **state)
{
    (void)state;
    for (size_t i = 0; i < REAL_COUNT; i++) {
        size_t size = 0;
        unsigned char *d = fx_vector(reals[i].file, &size);
        struct dcap_quote *q = new_quote();
        struct clst_err err = {0};
        assert_int_equal(dcap_quote_parse(d, size, q, &err), CLST_OK);
        assert_int_equal(q->version, reals[i].version);
        assert_int_equal(q->body_type, reals[i].body);
        assert_int_equal(q->quote_size, reals[i].quote_size);
        assert_int_equal(q->trailing_size, reals[i].trailing);
        assert_int_equal(q->att_key_type, 2);
        assert_int_equal(q->qe_auth_size, 32);
        assert_true(q->pck_chain_size > 3000);
        assert_ptr_equal(q->result, &q->result_store);
        assert_memory_equal(q->qe_report_raw, d + q->quote_size - q->pck_chain_size - 6 - 34 - 64 -
                                                  384,
                            384);
        if (reals[i].version == 3) {
            assert_int_equal(q->qe_svn, 9);
            assert_int_equal(q->pce_svn, 14);
            assert_int_equal(q->signed_size, 0x1B0);
        } else if (reals[i].version == 4) {
            assert_int_equal(q->signed_size, 0x278);
        } else {
            assert_int_equal(q->signed_size, 0x2BE);
        }
        /* Every truncation inside the declared length. */
        for (size_t n = 0; n < q->quote_size; n++) {
            struct dcap_quote *t = new_quote();
            enum clst_status rc = dcap_quote_parse(d, n, t, &err);
            if (rc != CLST_E_MALFORMED || strstr(err.msg, "truncated") == NULL) {
                fail_msg("%s truncated to %zu: %s: %s", reals[i].file, n, clst_status_str(rc),
                         err.msg);
            }
            free(t);
        }
        free(q);
        free(d);
    }
    /* The README values of the SPR quote. */
    size_t size = 0;
    unsigned char *d = fx_vector("tdx/go-tdx-guest/tdx_prod_quote_SPR_E4.dat", &size);
    struct dcap_quote *q = new_quote();
    assert_int_equal(dcap_quote_parse(d, size, q, NULL), CLST_OK);
    static const uint8_t svn[4] = {3, 0, 4, 0}, attr[8] = {0, 0, 0, 0x40, 0, 0, 0, 0};
    assert_memory_equal(q->td.tee_tcb_svn, svn, 4);
    assert_memory_equal(q->td.td_attributes, attr, 8);
    assert_int_equal(q->td.mrtd[0], 0x63);
    assert_int_equal(q->td.report_data[0], 0x6c);
    assert_int_equal(q->qe_report.isvprodid, 2);
    assert_int_equal(q->qe_report.isvsvn, 4);
    free(q);
    free(d);
}

/* A synthetic v4/v5/v3 quote for field mutations. */
static void
build(uint16_t v, enum dcap_body_type body, struct clst_buf *out)
{
    static struct fx *f;
    if (f == NULL) {
        f = fx_new();
    }
    struct fx_quote q;
    fx_quote_init(&q, v, body);
    fx_quote_build(f, &q, out);
}

static void
test_reserved_and_types(void **state)
{
    (void)state;
    struct clst_buf b;
    struct dcap_quote *q = new_quote();

    build(4, DCAP_BODY_TD10, &b);
    expect_parse(b.data, b.size, CLST_OK, NULL);
    for (size_t i = 8; i < 12; i++) {
        b.data[i] = 1;
        expect_parse(b.data, b.size, CLST_E_MALFORMED, "reserved header bytes");
        b.data[i] = 0;
    }
    /* The QE report's reserved ranges (after the type-6 header at 0x2FC). */
    static const size_t qe_res[] = {20, 31, 96, 127, 160, 191, 262, 303};
    for (size_t i = 0; i < sizeof(qe_res) / sizeof(qe_res[0]); i++) {
        b.data[0x302 + qe_res[i]] = 0x80;
        expect_parse(b.data, b.size, CLST_E_MALFORMED, "QE report reserved");
        b.data[0x302 + qe_res[i]] = 0;
    }
    /* version, key type, TEE type, vendor */
    b.data[0] = 7;
    expect_parse(b.data, b.size, CLST_E_MALFORMED, "unknown quote version");
    b.data[0] = 3;
    expect_parse(b.data, b.size, CLST_E_MALFORMED, "TEE type");
    b.data[0] = 4;
    b.data[2] = 3;
    expect_parse(b.data, b.size, CLST_E_MALFORMED, "attestation key type");
    b.data[2] = 2;
    b.data[4] = 0;
    expect_parse(b.data, b.size, CLST_E_MALFORMED, "TEE type");
    b.data[4] = 0x81;
    b.data[12] ^= 1;
    expect_parse(b.data, b.size, CLST_E_MALFORMED, "vendor");
    b.data[12] ^= 1;
    /* certification data types and sizes */
    b.data[0x2FC] = 5;
    expect_parse(b.data, b.size, CLST_E_MALFORMED, "not 6");
    b.data[0x2FC] = 6;
    b.data[0x2FE] ^= 1;
    expect_parse(b.data, b.size, CLST_E_MALFORMED, "does not match");
    b.data[0x2FE] ^= 1;
    size_t t5 = 0x302 + 384 + 64 + 2 + 32;
    b.data[t5] = 6;
    expect_parse(b.data, b.size, CLST_E_MALFORMED, "not 5");
    b.data[t5] = 5;
    /* the inner chain size: 0, over the cap, one short (bytes left over) */
    uint8_t saved[4];
    memcpy(saved, b.data + t5 + 2, 4);
    clst_put_le32(b.data + t5 + 2, 0);
    expect_parse(b.data, b.size, CLST_E_MALFORMED, "outside");
    clst_put_le32(b.data + t5 + 2, DCAP_CERT_DATA_MAX_SIZE + 1);
    expect_parse(b.data, b.size, CLST_E_LIMIT, "outside");
    uint32_t cs = (uint32_t)saved[0] | (uint32_t)saved[1] << 8 | (uint32_t)saved[2] << 16;
    clst_put_le32(b.data + t5 + 2, cs - 1);
    expect_parse(b.data, b.size, CLST_E_MALFORMED, "unexpected bytes");
    memcpy(b.data + t5 + 2, saved, 4);
    /* QE auth data over the cap */
    clst_put_le16(b.data + t5 - 34, DCAP_QE_AUTH_MAX_SIZE + 1);
    expect_parse(b.data, b.size, CLST_E_LIMIT, "authentication data");
    clst_put_le16(b.data + t5 - 34, 32);
    /* the signature data length says more than there is, or less */
    clst_put_le32(b.data + 0x278, (uint32_t)(b.size - 0x27C + 1));
    expect_parse(b.data, b.size, CLST_E_MALFORMED, "only");
    clst_put_le32(b.data + 0x278, (uint32_t)(b.size - 0x27C - 1));
    expect_parse(b.data, b.size, CLST_E_MALFORMED, NULL);
    clst_put_le32(b.data + 0x278, (uint32_t)(b.size - 0x27C));
    expect_parse(b.data, b.size, CLST_OK, NULL);
    /* trailing bytes (any content) are accepted and counted */
    assert_int_equal(clst_buf_append(&b, "tail", 4), CLST_OK);
    assert_int_equal(dcap_quote_parse(b.data, b.size, q, NULL), CLST_OK);
    assert_int_equal(q->trailing_size, 4);
    clst_buf_cleanup(&b);

    /* v5 body descriptor */
    build(5, DCAP_BODY_TD15, &b);
    expect_parse(b.data, b.size, CLST_OK, NULL);
    static const struct {
        uint16_t type;
        uint32_t size;
    } bad[] = {{1, 384}, {2, 648}, {3, 584}, {4, 648}, {0, 0}, {3, 649}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint8_t save[6];
        memcpy(save, b.data + 48, 6);
        clst_put_le16(b.data + 48, bad[i].type);
        clst_put_le32(b.data + 50, bad[i].size);
        expect_parse(b.data, b.size, CLST_E_MALFORMED, "body type");
        memcpy(b.data + 48, save, 6);
    }
    b.data[8] = 1;
    expect_parse(b.data, b.size, CLST_E_MALFORMED, "reserved header bytes");
    clst_buf_cleanup(&b);

    /* v3: the ISV enclave report's reserved ranges; type 6 is not allowed */
    build(3, DCAP_BODY_SGX, &b);
    expect_parse(b.data, b.size, CLST_OK, NULL);
    static const size_t isv_res[] = {20, 31, 96, 127, 160, 191, 262, 303};
    for (size_t i = 0; i < sizeof(isv_res) / sizeof(isv_res[0]); i++) {
        b.data[48 + isv_res[i]] = 0x01;
        expect_parse(b.data, b.size, CLST_E_MALFORMED, "ISV enclave report reserved");
        b.data[48 + isv_res[i]] = 0;
    }
    b.data[4] = 0x81;
    expect_parse(b.data, b.size, CLST_E_MALFORMED, "TEE type");
    b.data[4] = 0;
    clst_buf_cleanup(&b);
    free(q);
}

static void
test_limits_and_args(void **state)
{
    (void)state;
    struct dcap_quote *q = new_quote();
    uint8_t *big = calloc(1, DCAP_QUOTE_MAX_SIZE + 1);
    assert_non_null(big);
    expect_parse(big, DCAP_QUOTE_MAX_SIZE + 1, CLST_E_LIMIT, "limit");
    expect_parse(big, 0, CLST_E_MALFORMED, "truncated");
    assert_int_equal(dcap_quote_parse(NULL, 5, q, NULL), CLST_E_INVAL);
    assert_int_equal(dcap_quote_parse(big, 5, NULL, NULL), CLST_E_INVAL);
    free(big);
    free(q);
}

static void
test_encoders_round_trip(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    struct fx_quote p;
    struct clst_buf b;
    struct dcap_quote *q = new_quote();
    fx_quote_init(&p, 5, DCAP_BODY_TD15);
    for (size_t i = 0; i < 48; i++) {
        p.td.mrconfigid[i] = (uint8_t)i;
        p.td.mrowner[i] = (uint8_t)(2 * i);
        p.td.mrownerconfig[i] = (uint8_t)(3 * i);
        p.td.mrsignerseam[i] = (uint8_t)(5 * i);
    }
    p.td.seam_attributes[7] = 0x80;
    fx_quote_build(f, &p, &b);
    assert_int_equal(dcap_quote_parse(b.data, b.size, q, NULL), CLST_OK);
    assert_memory_equal(&q->td, &p.td, sizeof(p.td));
    clst_buf_cleanup(&b);

    fx_quote_init(&p, 3, DCAP_BODY_SGX);
    p.sgx.miscselect = 0x01020304;
    p.sgx.configsvn = 0x0506;
    p.sgx.isvfamilyid[15] = 9;
    fx_quote_build(f, &p, &b);
    assert_int_equal(dcap_quote_parse(b.data, b.size, q, NULL), CLST_OK);
    assert_memory_equal(&q->sgx, &p.sgx, sizeof(p.sgx));
    assert_int_equal(q->qe_report.isvsvn, p.qe.isvsvn);
    assert_memory_equal(q->qe_auth, p.auth, 32);
    assert_int_equal(q->pck_chain_size, strlen(f->pck_chain));
    assert_memory_equal(q->pck_chain, f->pck_chain, q->pck_chain_size);
    clst_buf_cleanup(&b);
    free(q);
    fx_free(f);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_quotes),
        cmocka_unit_test(test_reserved_and_types),
        cmocka_unit_test(test_limits_and_args),
        cmocka_unit_test(test_encoders_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
