/*
 * Unit tests for src/evidence/sevsnp_certs.c: products and TCB layouts, the VCEK/VLEK extension
 * reader on the stored real certificates (Milan x3, Turin, the two edited-hwID negatives, and
 * certificates that are not leaves), and the certificate pool: PEM bundles, concatenated DER and
 * certificate tables as endorsements, with each malformed form and each limit.
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_sevsnp_fixture.h"

static void
test_products(void **state)
{
    (void)state;
    assert_string_equal(evidence_sevsnp_product_name(SEVSNP_PRODUCT_MILAN), "Milan");
    assert_string_equal(evidence_sevsnp_product_name(SEVSNP_PRODUCT_GENOA), "Genoa");
    assert_string_equal(evidence_sevsnp_product_name(SEVSNP_PRODUCT_TURIN), "Turin");
    assert_null(evidence_sevsnp_product_name(SEVSNP_PRODUCT_UNKNOWN));
    assert_int_equal(evidence_sevsnp_product_from_cpuid(0x19, 0x01), SEVSNP_PRODUCT_MILAN);
    assert_int_equal(evidence_sevsnp_product_from_cpuid(0x19, 0x00), SEVSNP_PRODUCT_MILAN);
    assert_int_equal(evidence_sevsnp_product_from_cpuid(0x19, 0x11), SEVSNP_PRODUCT_GENOA);
    assert_int_equal(evidence_sevsnp_product_from_cpuid(0x19, 0xA0), SEVSNP_PRODUCT_GENOA);
    assert_int_equal(evidence_sevsnp_product_from_cpuid(0x1A, 0x02), SEVSNP_PRODUCT_TURIN);
    assert_int_equal(evidence_sevsnp_product_from_cpuid(0x1A, 0x11), SEVSNP_PRODUCT_TURIN);
    assert_int_equal(evidence_sevsnp_product_from_cpuid(0x19, 0x21), SEVSNP_PRODUCT_UNKNOWN);
    assert_int_equal(evidence_sevsnp_product_from_cpuid(0x17, 0x31), SEVSNP_PRODUCT_UNKNOWN);
    assert_int_equal(evidence_sevsnp_product_from_cpuid(0x1A, 0x40), SEVSNP_PRODUCT_UNKNOWN);
    assert_int_equal(evidence_sevsnp_product_from_cpuid(0, 0), SEVSNP_PRODUCT_UNKNOWN);
}

static void
test_tcb(void **state)
{
    (void)state;
    struct sevsnp_tcb t;
    /* The stored reports: raw 0x4405000000000002 = bl 2, tee 0, snp 5, ucode 68 (Milan). */
    assert_true(evidence_sevsnp_tcb_decode(SEVSNP_PRODUCT_MILAN, UINT64_C(0x4405000000000002), &t));
    assert_int_equal(t.bootloader, 2);
    assert_int_equal(t.tee, 0);
    assert_int_equal(t.snp, 5);
    assert_int_equal(t.microcode, 68);
    assert_int_equal(t.fmc, 0);
    assert_int_equal(evidence_sevsnp_tcb_encode(SEVSNP_PRODUCT_MILAN, &t),
                     UINT64_C(0x4405000000000002));
    assert_true(evidence_sevsnp_tcb_decode(SEVSNP_PRODUCT_GENOA, UINT64_C(0xce08000000000003), &t));
    assert_int_equal(t.microcode, 206);
    /* Turin: byte 0 FMC, 1 BL, 2 TEE, 3 SNP, 7 UCODE. */
    assert_true(evidence_sevsnp_tcb_decode(SEVSNP_PRODUCT_TURIN, UINT64_C(0x4800000001020304), &t));
    assert_int_equal(t.fmc, 4);
    assert_int_equal(t.bootloader, 3);
    assert_int_equal(t.tee, 2);
    assert_int_equal(t.snp, 1);
    assert_int_equal(t.microcode, 0x48);
    assert_int_equal(evidence_sevsnp_tcb_encode(SEVSNP_PRODUCT_TURIN, &t),
                     UINT64_C(0x4800000001020304));
    /* Reserved bytes of each layout. */
    for (unsigned b = 2; b <= 5; b++) {
        assert_false(evidence_sevsnp_tcb_decode(SEVSNP_PRODUCT_MILAN, UINT64_C(1) << (8 * b), &t));
    }
    for (unsigned b = 4; b <= 6; b++) {
        assert_false(evidence_sevsnp_tcb_decode(SEVSNP_PRODUCT_TURIN, UINT64_C(1) << (8 * b), &t));
    }
}

static X509 *
load_der(const char *rel)
{
    size_t size = 0;
    uint8_t *d = snp_read(rel, &size);
    X509 *x = NULL;
    assert_non_null(d);
    assert_int_equal(clst_x509_from_der(d, size, &x, NULL), CLST_OK);
    free(d);
    return x;
}

static void
test_cert_info_real(void **state)
{
    (void)state;
    struct sevsnp_cert_info info;
    uint8_t chip[64];

    X509 *x = load_der("go-sev-guest/vcek.der");
    assert_int_equal(evidence_sevsnp_cert_info(x, &info, NULL), CLST_OK);
    assert_int_equal(info.role, SEVSNP_KEY_VCEK);
    assert_int_equal(info.product, SEVSNP_PRODUCT_MILAN);
    assert_string_equal(info.product_name, "Milan-B0");
    assert_int_equal(info.tcb.bootloader, 2);
    assert_int_equal(info.tcb.tee, 0);
    assert_int_equal(info.tcb.snp, 5);
    assert_int_equal(info.tcb.microcode, 68);
    assert_int_equal(info.hwid_size, 64);
    assert_int_equal(clst_hex_decode_fixed("3ac3fe21e13fb0990eb28a802e3fb6a29483a6b0753590c951bdd3"
                                           "b8e53786184ca39e359669a2b76a1936776b564ea464cdce40c05f"
                                           "63c9b610c5068b006b5d",
                                           128, chip, 64),
                     CLST_OK);
    assert_memory_equal(info.hwid, chip, 64);
    /* Serial number 0, RSA-PSS: accepted by the chain check (tested in test_sevsnp_verify.c). */
    assert_int_equal(ASN1_INTEGER_get(X509_get0_serialNumber(x)), 0);
    X509_free(x);

    x = load_der("trustee/test-vcek.der");
    assert_int_equal(evidence_sevsnp_cert_info(x, &info, NULL), CLST_OK);
    assert_int_equal(info.tcb.bootloader, 3);
    assert_int_equal(info.tcb.snp, 8);
    assert_int_equal(info.tcb.microcode, 115);
    X509_free(x);

    x = load_der("virtee-sev/vcek_milan.der");
    assert_int_equal(evidence_sevsnp_cert_info(x, &info, NULL), CLST_OK);
    assert_int_equal(info.product, SEVSNP_PRODUCT_MILAN);
    X509_free(x);

    /* Turin: fmcSPL, an 8-byte hwID, productName "Turin". */
    x = load_der("virtee-sev/vcek_turin.der");
    assert_int_equal(evidence_sevsnp_cert_info(x, &info, NULL), CLST_OK);
    assert_int_equal(info.product, SEVSNP_PRODUCT_TURIN);
    assert_string_equal(info.product_name, "Turin");
    assert_true((info.tcb_present & SEVSNP_TCB_HAS_FMC) != 0);
    assert_int_equal(info.hwid_size, 8);
    assert_int_equal(clst_hex_decode_fixed("1e550a8ee5cf9f4d", 16, chip, 8), CLST_OK);
    assert_memory_equal(info.hwid, chip, 8);
    /* Its chain to the pinned ARK-Turin, through the stored SEV-Turin, at 2025-01-01. */
    size_t csize = 0;
    uint8_t *chain = snp_read("virtee-sev/cert_chain_turin", &csize);
    STACK_OF(X509) *certs = NULL, *anchor = sk_X509_new_null();
    const struct sevsnp_roots *roots = NULL;
    assert_int_equal(evidence_sevsnp_builtin_roots(&roots, NULL), CLST_OK);
    assert_int_equal(clst_x509_stack_from_pem(chain, csize, &certs, NULL), CLST_OK);
    assert_true(sk_X509_push(anchor, roots->ark[SEVSNP_PRODUCT_TURIN - 1]) > 0);
    assert_int_equal(clst_x509_verify_chain(x, certs, anchor, NULL, SNP_T_2025, NULL, NULL),
                     CLST_OK);
    /* Not before the Turin VCEK was issued (2024-11-06). */
    assert_int_equal(clst_x509_verify_chain(x, certs, anchor, NULL, SNP_T_2024, NULL, NULL),
                     CLST_E_VERIFY);
    sk_X509_free(anchor);
    sk_X509_pop_free(certs, X509_free);
    free(chain);
    X509_free(x);

    /* The edited VCEKs parse (legacy raw hwID, and the "new" DER-wrapped 04 40 form). */
    const char *edited[2] = {"trustee/test-vcek-invalid-legacy.der",
                             "trustee/test-vcek-invalid-new.der"};
    for (size_t k = 0; k < 2; k++) {
        x = load_der(edited[k]);
        assert_int_equal(evidence_sevsnp_cert_info(x, &info, NULL), CLST_OK);
        assert_int_equal(info.hwid_size, 64);
        assert_int_equal(info.hwid[0], 0);
        assert_int_equal(info.hwid[63], 63);
        X509_free(x);
    }

    /* Certificates that are not VCEKs: the ASK (issued by ARK-Milan) and the ARK itself. */
    uint8_t *pem = snp_read("go-sev-guest/ask_ark_milan.pem", &csize);
    assert_int_equal(clst_x509_stack_from_pem(pem, csize, &certs, NULL), CLST_OK);
    for (int i = 0; i < 2; i++) {
        struct clst_err err = {0};
        assert_int_equal(evidence_sevsnp_cert_info(sk_X509_value(certs, i), &info, &err),
                         CLST_E_MALFORMED);
        assert_non_null(strstr(err.msg, "not an AMD ASK or ASVK"));
    }
    sk_X509_pop_free(certs, X509_free);
    free(pem);
    assert_int_equal(evidence_sevsnp_cert_info(NULL, &info, NULL), CLST_E_INVAL);
}

/* ---- the pool ------------------------------------------------------------------------------- */

static enum clst_status
add(struct sevsnp_pool *pool, const void *data, size_t size, const char *needle)
{
    struct clst_err err = {0};
    enum clst_status rc = evidence_sevsnp_pool_add_endorsements(pool, data, size, &err);
    if (rc != CLST_OK && needle != NULL && strstr(err.msg, needle) == NULL) {
        fail_msg("message \"%s\" lacks \"%s\"", err.msg, needle);
    }
    return rc;
}

static void
test_pool(void **state)
{
    (void)state;
    struct sevsnp_pool pool;
    size_t psize = 0, vsize = 0;
    uint8_t *pem = snp_read("trustee/milan_ask_ark_asvk.pem", &psize);
    uint8_t *vcek = snp_read("trustee/test-vcek.der", &vsize);
    struct clst_buf der;
    clst_buf_init(&der, 1u << 20);

    /* PEM: three certificates; their DER equals the stored certificates'. */
    evidence_sevsnp_pool_init(&pool);
    assert_int_equal(add(&pool, pem, psize, NULL), CLST_OK);
    assert_int_equal(pool.count, 3);
    for (int i = 0; i < 3; i++) {
        clst_buf_reset(&der);
        assert_int_equal(snp_pem_cert_der(pem, psize, i, &der), 0);
        assert_int_equal(pool.certs[i].size, der.size);
        assert_memory_equal(pool.certs[i].der, der.data, der.size);
        assert_int_equal(pool.certs[i].hint, SEVSNP_GUID_OTHER);
    }
    evidence_sevsnp_pool_cleanup(&pool);

    /* Concatenated DER. */
    clst_buf_reset(&der);
    assert_int_equal(clst_buf_append(&der, vcek, vsize), CLST_OK);
    assert_int_equal(snp_pem_cert_der(pem, psize, 0, &der), 0);
    evidence_sevsnp_pool_init(&pool);
    assert_int_equal(add(&pool, der.data, der.size, NULL), CLST_OK);
    assert_int_equal(pool.count, 2);
    assert_int_equal(pool.certs[0].size, vsize);
    evidence_sevsnp_pool_cleanup(&pool);
    /* Every truncation of it. */
    for (size_t n = 1; n < der.size; n++) {
        if (n == vsize) {
            continue; /* the VCEK alone is fine */
        }
        evidence_sevsnp_pool_init(&pool);
        assert_int_equal(add(&pool, der.data, n, NULL), CLST_E_MALFORMED);
        evidence_sevsnp_pool_cleanup(&pool);
    }
    /* Indefinite and oversized lengths. */
    const uint8_t indefinite[] = {0x30, 0x80, 0x00, 0x00};
    const uint8_t huge[] = {0x30, 0x84, 0x00, 0x00, 0x10, 0x00};
    const uint8_t toolong[] = {0x30, 0x82, 0x40, 0x00};
    evidence_sevsnp_pool_init(&pool);
    assert_int_equal(add(&pool, indefinite, sizeof(indefinite), "indefinite"), CLST_E_MALFORMED);
    assert_int_equal(add(&pool, huge, sizeof(huge), "indefinite or oversized"), CLST_E_MALFORMED);
    assert_int_equal(add(&pool, toolong, sizeof(toolong), "limit"), CLST_E_LIMIT);
    evidence_sevsnp_pool_cleanup(&pool);

    /* A certificate table as endorsements. */
    enum sevsnp_guid_role roles[1] = {SEVSNP_GUID_VCEK};
    const uint8_t *certs[1] = {vcek};
    size_t sizes[1] = {vsize};
    struct clst_buf table;
    clst_buf_init(&table, 1u << 16);
    assert_int_equal(evidence_sevsnp_table_encode(roles, certs, sizes, 1, &table), CLST_OK);
    evidence_sevsnp_pool_init(&pool);
    assert_int_equal(add(&pool, table.data, table.size, NULL), CLST_OK);
    assert_int_equal(pool.count, 1);
    assert_int_equal(pool.certs[0].hint, SEVSNP_GUID_VCEK);
    /* Garbage that is neither PEM, DER nor a table. */
    assert_int_equal(add(&pool, "\x01\x02\x03", 3, "certificate table"), CLST_E_MALFORMED);
    evidence_sevsnp_pool_cleanup(&pool);
    clst_buf_cleanup(&table);

    /* PEM blocks that are not certificates, and broken PEM. */
    const char crl[] = "-----BEGIN X509 CRL-----\nMAA=\n-----END X509 CRL-----\n";
    const char broken[] = "-----BEGIN CERTIFICATE-----\nMAA@@@\n-----END CERTIFICATE-----\n";
    const char unterminated[] = "-----BEGIN CERTIFICATE-----\nMAA=\n";
    evidence_sevsnp_pool_init(&pool);
    assert_int_equal(add(&pool, crl, strlen(crl), "not a CERTIFICATE"), CLST_E_MALFORMED);
    evidence_sevsnp_pool_cleanup(&pool);
    evidence_sevsnp_pool_init(&pool);
    assert_int_equal(add(&pool, broken, strlen(broken), "malformed"), CLST_E_MALFORMED);
    evidence_sevsnp_pool_cleanup(&pool);
    evidence_sevsnp_pool_init(&pool);
    assert_int_equal(add(&pool, unterminated, strlen(unterminated), "malformed"), CLST_E_MALFORMED);
    evidence_sevsnp_pool_cleanup(&pool);

    /* Limits: more than SEVSNP_POOL_MAX certificates; more than the size limit; nothing. */
    clst_buf_reset(&der);
    for (int i = 0; i <= SEVSNP_POOL_MAX; i++) {
        assert_int_equal(clst_buf_append(&der, vcek, vsize), CLST_OK);
    }
    evidence_sevsnp_pool_init(&pool);
    assert_int_equal(add(&pool, der.data, der.size, "more than"), CLST_E_LIMIT);
    evidence_sevsnp_pool_cleanup(&pool);
    uint8_t *big = calloc(1, SEVSNP_ENDORSEMENTS_MAX_SIZE + 1);
    assert_non_null(big);
    big[0] = 0x30;
    evidence_sevsnp_pool_init(&pool);
    assert_int_equal(add(&pool, big, SEVSNP_ENDORSEMENTS_MAX_SIZE + 1, "limit"), CLST_E_LIMIT);
    assert_int_equal(add(&pool, NULL, 0, NULL), CLST_OK);
    assert_int_equal(pool.count, 0);
    assert_int_equal(add(&pool, NULL, 5, NULL), CLST_E_INVAL);
    evidence_sevsnp_pool_cleanup(&pool);
    free(big);

    clst_buf_cleanup(&der);
    free(pem);
    free(vcek);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_products),
        cmocka_unit_test(test_tcb),
        cmocka_unit_test(test_cert_info_real),
        cmocka_unit_test(test_pool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
