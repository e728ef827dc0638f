/*
 * Unit tests for src/evidence/amd_roots.c: the AMD roots compiled into the build. Each parses,
 * matches its pinned SHA-256 fingerprint (also written out here, independently of the source),
 * is byte for byte the ARK in the stored KDS chains, is self-signed with RSASSA-PSS SHA-384 by an
 * RSA-4096 key, and is named ARK-<product>; clst_evidence_sevsnp_roots() hands out all three.
 * Every stored KDS bundle's ASK and ASVK chains to its own product's built-in ARK and to no other.
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_sevsnp_fixture.h"

static const struct {
    enum sevsnp_product product;
    const char *cn;
    const char *sha256;
    const char *chain; /* a stored KDS chain whose second certificate is this ARK */
} expected[] = {
    {SEVSNP_PRODUCT_MILAN, "ARK-Milan",
     "69d063b45344d26a2e94e1f4210de49ef555308287d4c174445c95639a540bcd",
     "go-sev-guest/ask_ark_milan.pem"},
    {SEVSNP_PRODUCT_GENOA, "ARK-Genoa",
     "4c6598d19c18719c5dfd4a7d335f674e5bfe1d8f800cea2cf270c10d103db2f1",
     "go-sev-guest/ask_ark_genoa.pem"},
    {SEVSNP_PRODUCT_TURIN, "ARK-Turin",
     "1f084161a44bb6d93778a904877d4819cafa5d05ef4193b2ded9dd9c73dd3f6a",
     "virtee-sev/cert_chain_turin"},
};

static void
test_builtin(void **state)
{
    (void)state;
    const struct sevsnp_roots *roots = NULL;
    const struct sevsnp_roots *again = NULL;
    assert_int_equal(evidence_sevsnp_builtin_roots(&roots, NULL), CLST_OK);
    assert_int_equal(evidence_sevsnp_builtin_roots(&again, NULL), CLST_OK);
    assert_ptr_equal(roots, again); /* parsed once */
    for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++) {
        X509 *ark = roots->ark[expected[i].product - 1];
        uint8_t want[32];
        struct clst_buf der;
        assert_non_null(ark);
        assert_int_equal(clst_hex_decode_fixed(expected[i].sha256, 64, want, 32), CLST_OK);
        assert_memory_equal(roots->ark_sha256[expected[i].product - 1], want, 32);
        const uint8_t *pinned = NULL;
        assert_non_null(evidence_sevsnp_builtin_ark_pem(expected[i].product, &pinned));
        assert_memory_equal(pinned, want, 32);

        /* The fingerprint of the parsed DER. */
        clst_buf_init(&der, 1u << 16);
        assert_int_equal(snp_x509_der(ark, &der), 0);
        uint8_t got[32];
        assert_int_equal(clst_sha256(der.data, der.size, got), CLST_OK);
        assert_memory_equal(got, want, 32);

        /* Byte for byte the ARK of the stored KDS chain. */
        size_t size = 0;
        uint8_t *pem = snp_read(expected[i].chain, &size);
        struct clst_buf stored;
        clst_buf_init(&stored, 1u << 16);
        assert_int_equal(snp_pem_cert_der(pem, size, 1, &stored), 0);
        assert_int_equal(stored.size, der.size);
        assert_memory_equal(stored.data, der.data, der.size);
        clst_buf_cleanup(&stored);
        free(pem);

        /* Self-signed ARK-<product>, RSA-4096, RSASSA-PSS with SHA-384. */
        char cn[64];
        assert_true(X509_NAME_get_text_by_NID(X509_get_subject_name(ark), NID_commonName, cn,
                                              sizeof(cn)) > 0);
        assert_string_equal(cn, expected[i].cn);
        assert_int_equal(X509_NAME_cmp(X509_get_subject_name(ark), X509_get_issuer_name(ark)), 0);
        assert_int_equal(X509_verify(ark, X509_get0_pubkey(ark)), 1);
        assert_int_equal(clst_pkey_kind(X509_get0_pubkey(ark)), CLST_KEY_RSA);
        assert_int_equal(clst_pkey_bits(X509_get0_pubkey(ark)), 4096);
        int md = 0, pk = 0;
        assert_int_equal(X509_get_signature_info(ark, &md, &pk, NULL, NULL), 1);
        assert_int_equal(pk, EVP_PKEY_RSA_PSS);
        assert_int_equal(md, NID_sha384);
        clst_buf_cleanup(&der);
    }
    assert_null(evidence_sevsnp_builtin_ark_pem(SEVSNP_PRODUCT_UNKNOWN, NULL));
    assert_int_equal(evidence_sevsnp_builtin_roots(NULL, NULL), CLST_E_INVAL);
}

static void
test_public_stack(void **state)
{
    (void)state;
    STACK_OF(X509) *roots = NULL;
    const struct sevsnp_roots *builtin = NULL;
    assert_int_equal(clst_evidence_sevsnp_roots(&roots, NULL), CLST_OK);
    assert_int_equal(evidence_sevsnp_builtin_roots(&builtin, NULL), CLST_OK);
    assert_int_equal(sk_X509_num(roots), SEVSNP_PRODUCT_COUNT);
    for (int i = 0; i < SEVSNP_PRODUCT_COUNT; i++) {
        assert_int_equal(X509_cmp(sk_X509_value(roots, i), builtin->ark[i]), 0);
    }
    sk_X509_pop_free(roots, X509_free);
    /* The built-in roots survive the caller freeing its stack. */
    assert_int_equal(X509_verify(builtin->ark[0], X509_get0_pubkey(builtin->ark[0])), 1);
    assert_int_equal(clst_evidence_sevsnp_roots(NULL, NULL), CLST_E_INVAL);
}

/* Every stored KDS bundle: its intermediates (ASK "SEV-<p>", ASVK "SEV-VLEK-<p>") chain to the
 * built-in ARK of their product at 2025-01-01 and to no other product's; the ARK in each bundle
 * is the built-in one. */
static void
test_stored_intermediates(void **state)
{
    (void)state;
    static const struct {
        const char *file;
        enum sevsnp_product product;
        const char *cns[3]; /* in file order; "ARK" marks the root */
    } bundles[] = {
        {"go-sev-guest/ask_ark_milan.pem", SEVSNP_PRODUCT_MILAN, {"SEV-Milan", "ARK", NULL}},
        {"go-sev-guest/ask_ark_genoa.pem", SEVSNP_PRODUCT_GENOA, {"SEV-Genoa", "ARK", NULL}},
        {"go-sev-guest/ask_ark_turin_vcek.pem", SEVSNP_PRODUCT_TURIN, {"SEV-Turin", "ARK", NULL}},
        {"go-sev-guest/ask_ark_milan_vlek.pem",
         SEVSNP_PRODUCT_MILAN,
         {"SEV-VLEK-Milan", "ARK", NULL}},
        {"go-sev-guest/ask_ark_genoa_vlek.pem",
         SEVSNP_PRODUCT_GENOA,
         {"SEV-VLEK-Genoa", "ARK", NULL}},
        {"go-sev-guest/ask_ark_turin_vlek.pem",
         SEVSNP_PRODUCT_TURIN,
         {"SEV-VLEK-Turin", "ARK", NULL}},
        {"trustee/milan_ask_ark_asvk.pem",
         SEVSNP_PRODUCT_MILAN,
         {"SEV-Milan", "ARK", "SEV-VLEK-Milan"}},
        {"trustee/genoa_ask_ark_asvk.pem",
         SEVSNP_PRODUCT_GENOA,
         {"SEV-Genoa", "ARK", "SEV-VLEK-Genoa"}},
        {"trustee/turin_ask_ark_asvk.pem",
         SEVSNP_PRODUCT_TURIN,
         {"SEV-Turin", "ARK", "SEV-VLEK-Turin"}},
        {"virtee-sev/cert_chain_milan", SEVSNP_PRODUCT_MILAN, {"SEV-Milan", "ARK", NULL}},
        {"virtee-sev/cert_chain_turin", SEVSNP_PRODUCT_TURIN, {"SEV-Turin", "ARK", NULL}},
    };
    const struct sevsnp_roots *roots = NULL;
    assert_int_equal(evidence_sevsnp_builtin_roots(&roots, NULL), CLST_OK);
    for (size_t b = 0; b < sizeof(bundles) / sizeof(bundles[0]); b++) {
        size_t size = 0;
        uint8_t *pem = snp_read(bundles[b].file, &size);
        STACK_OF(X509) *certs = NULL;
        assert_non_null(pem);
        assert_int_equal(clst_x509_stack_from_pem(pem, size, &certs, NULL), CLST_OK);
        int want = bundles[b].cns[2] != NULL ? 3 : 2;
        assert_int_equal(sk_X509_num(certs), want);
        for (int i = 0; i < want; i++) {
            X509 *x = sk_X509_value(certs, i);
            if (strcmp(bundles[b].cns[i], "ARK") == 0) {
                assert_int_equal(X509_cmp(x, roots->ark[bundles[b].product - 1]), 0);
                continue;
            }
            char cn[64];
            assert_true(X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn,
                                                  sizeof(cn)) > 0);
            assert_string_equal(cn, bundles[b].cns[i]);
            for (int p = SEVSNP_PRODUCT_MILAN; p <= SEVSNP_PRODUCT_TURIN; p++) {
                STACK_OF(X509) *anchor = sk_X509_new_null();
                assert_true(sk_X509_push(anchor, roots->ark[p - 1]) > 0);
                struct clst_err err = {0};
                enum clst_status rc =
                    clst_x509_verify_chain(x, NULL, anchor, NULL, SNP_T_2025, NULL, &err);
                if (p == (int)bundles[b].product) {
                    if (rc != CLST_OK) {
                        fail_msg("%s %s: %s", bundles[b].file, cn, err.msg);
                    }
                } else {
                    assert_int_equal(rc, CLST_E_VERIFY);
                }
                sk_X509_free(anchor);
            }
        }
        sk_X509_pop_free(certs, X509_free);
        free(pem);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_builtin),
        cmocka_unit_test(test_public_stack),
        cmocka_unit_test(test_stored_intermediates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
