/*
 * Unit tests for src/evidence/dcap_collateral.c: the collateral bundle (round trip; every
 * truncation, wrong magic, version, count, duplicate or unknown item, empty item, trailing
 * bytes: CLST_E_MALFORMED; item and total caps: CLST_E_LIMIT) and the directory loader (a real
 * collateral directory; a missing, empty or oversized file).
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <unistd.h>

#include "test_dcap_fixture.h"

static void
sample(struct clst_buf *out)
{
    static const char *const items[DCAP_COLL_ITEM_COUNT] = {"tcb", "qe!", "chain", "pck-crl",
                                                            "root-crl"};
    struct dcap_collateral c;
    memset(&c, 0, sizeof(c));
    for (size_t i = 0; i < DCAP_COLL_ITEM_COUNT; i++) {
        c.item[i] = (const uint8_t *)items[i];
        c.item_size[i] = strlen(items[i]);
    }
    clst_buf_init(out, 4096);
    assert_int_equal(dcap_collateral_encode(&c, out), CLST_OK);
}

static void
expect(const uint8_t *d, size_t n, enum clst_status want, const char *msg)
{
    struct dcap_collateral c;
    struct clst_err err = {0};
    enum clst_status rc = dcap_collateral_parse(d, n, &c, &err);
    if (rc != want || (msg != NULL && strstr(err.msg, msg) == NULL)) {
        fail_msg("want %s (%s), got %s: %s", clst_status_str(want), msg ? msg : "",
                 clst_status_str(rc), err.msg);
    }
}

static void
test_round_trip_and_defects(void **state)
{
    (void)state;
    struct clst_buf b;
    struct dcap_collateral c;
    sample(&b);
    assert_int_equal(b.size, 8 + 5 * 6 + 3 + 3 + 5 + 7 + 8);
    assert_int_equal(dcap_collateral_parse(b.data, b.size, &c, NULL), CLST_OK);
    assert_int_equal(c.item_size[DCAP_COLL_PCK_CRL - 1], 7);
    assert_memory_equal(c.item[DCAP_COLL_TCB_CHAIN - 1], "chain", 5);
    for (size_t n = 0; n < b.size; n++) {
        expect(b.data, n, CLST_E_MALFORMED, NULL);
    }
    expect(b.data, 0, CLST_E_MALFORMED, "--collateral");
    b.data[0] = 'X';
    expect(b.data, b.size, CLST_E_MALFORMED, "magic");
    b.data[0] = 'C';
    b.data[4] = 2;
    expect(b.data, b.size, CLST_E_MALFORMED, "version");
    b.data[4] = 1;
    b.data[6] = 4;
    expect(b.data, b.size, CLST_E_MALFORMED, "items");
    b.data[6] = 5;
    b.data[8] = 2; /* item 1 typed as item 2: item 2 then appears twice */
    expect(b.data, b.size, CLST_E_MALFORMED, "twice");
    b.data[8] = 6;
    expect(b.data, b.size, CLST_E_MALFORMED, "unknown type");
    b.data[8] = 0;
    expect(b.data, b.size, CLST_E_MALFORMED, "unknown type");
    b.data[8] = 1;
    assert_int_equal(dcap_collateral_parse(b.data, b.size, &c, NULL), CLST_OK);
    clst_put_le32(b.data + 10, DCAP_COLL_JSON_MAX + 1);
    expect(b.data, b.size, CLST_E_LIMIT, "limit");
    clst_put_le32(b.data + 10, 0);
    expect(b.data, b.size, CLST_E_MALFORMED, "empty");
    clst_put_le32(b.data + 10, 3);
    assert_int_equal(clst_buf_append_byte(&b, 0), CLST_OK);
    expect(b.data, b.size, CLST_E_MALFORMED, "after the last item");
    expect(b.data, DCAP_COLL_MAX_SIZE + 1, CLST_E_LIMIT, NULL); /* refused before reading */
    assert_int_equal(dcap_collateral_parse(NULL, 3, &c, NULL), CLST_E_INVAL);
    assert_string_equal(dcap_collateral_item_name(DCAP_COLL_ROOT_CRL), "root_ca_crl.der");
    assert_string_equal(dcap_collateral_item_name((enum dcap_coll_item)0), "?");
    c.item[0] = NULL;
    assert_int_equal(dcap_collateral_encode(&c, &b), CLST_E_INVAL);
    clst_buf_cleanup(&b);
}

static void
write_file(const char *dir, const char *name, const void *data, size_t size)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, size, f), size);
    assert_int_equal(fclose(f), 0);
}

static void
copy_vector(const char *dir, const char *name, const char *rel)
{
    size_t n = 0;
    unsigned char *d = fx_vector(rel, &n);
    write_file(dir, name, d, n);
    free(d);
}

static void
test_directory(void **state)
{
    (void)state;
    char dir[] = "/tmp/clst-dcap-XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct clst_buf b;
    struct clst_err err = {0};
    clst_buf_init(&b, 16u << 20);
    /* missing files */
    assert_int_equal(clst_evidence_dcap_collateral_load(dir, &b, &err), CLST_E_IO);
    assert_non_null(strstr(err.msg, "tcb_info.json"));
    copy_vector(dir, DCAP_FILE_TCB_INFO, "tdx/dcap-rs/collateral-2025-02/tcbinfov3_00806f050000.json");
    copy_vector(dir, DCAP_FILE_QE_IDENTITY, "tdx/dcap-rs/collateral-2025-02/qeidentityv2_apiv4.json");
    copy_vector(dir, DCAP_FILE_TCB_CHAIN, "tdx/dcap-rs/tcb_signing_cert.pem");
    copy_vector(dir, DCAP_FILE_PCK_CRL, "tdx/dcap-rs/collateral-2025-02/pck_platform_crl.der");
    assert_int_equal(clst_evidence_dcap_collateral_load(dir, &b, &err), CLST_E_IO);
    assert_non_null(strstr(err.msg, "root_ca_crl.der"));
    assert_int_equal(b.size, 0);
    copy_vector(dir, DCAP_FILE_ROOT_CRL, "tdx/dcap-rs/collateral-2025-02/intel_root_ca_crl.der");
    assert_int_equal(clst_evidence_dcap_collateral_load(dir, &b, &err), CLST_OK);
    struct dcap_collateral c;
    assert_int_equal(dcap_collateral_parse(b.data, b.size, &c, &err), CLST_OK);
    assert_int_equal(c.item_size[DCAP_COLL_ROOT_CRL - 1], 294);
    assert_int_equal(c.item_size[DCAP_COLL_TCB_CHAIN - 1], 1891);

    /* The bundle verifies the real quote (the same as the CLI's --collateral DIR). */
    STACK_OF(X509) *roots = NULL;
    assert_int_equal(clst_evidence_intel_roots(&roots, &err), CLST_OK);
    size_t qn = 0;
    unsigned char *quote = fx_vector("tdx/dcap-rs/quote_v4_tdx_00806f050000.dat", &qn);
    struct clst_evidence_input in;
    memset(&in, 0, sizeof(in));
    in.evidence = quote;
    in.evidence_size = qn;
    in.endorsements = b.data;
    in.endorsements_size = b.size;
    in.roots = roots;
    in.at = INT64_C(1740787200);
    in.tcb_statuses = "OutOfDate";
    json_t *claims = NULL;
    assert_int_equal(clst_evidence_verify(CLST_EVIDENCE_TDX, &in, &claims, &err), CLST_OK);
    json_decref(claims);
    free(quote);
    sk_X509_pop_free(roots, X509_free);

    /* empty and oversized files */
    clst_buf_reset(&b);
    write_file(dir, DCAP_FILE_QE_IDENTITY, "", 0);
    assert_int_equal(clst_evidence_dcap_collateral_load(dir, &b, &err), CLST_E_MALFORMED);
    char *big = calloc(1, DCAP_COLL_JSON_MAX + 1);
    assert_non_null(big);
    write_file(dir, DCAP_FILE_QE_IDENTITY, big, DCAP_COLL_JSON_MAX + 1);
    assert_int_equal(clst_evidence_dcap_collateral_load(dir, &b, &err), CLST_E_LIMIT);
    free(big);
    assert_int_equal(clst_evidence_dcap_collateral_load(NULL, &b, &err), CLST_E_INVAL);

    static const char *const names[] = {DCAP_FILE_TCB_INFO, DCAP_FILE_QE_IDENTITY,
                                        DCAP_FILE_TCB_CHAIN, DCAP_FILE_PCK_CRL,
                                        DCAP_FILE_ROOT_CRL};
    for (size_t i = 0; i < 5; i++) {
        char path[1024];
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        unlink(path);
    }
    rmdir(dir);
    clst_buf_cleanup(&b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_and_defects),
        cmocka_unit_test(test_directory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
