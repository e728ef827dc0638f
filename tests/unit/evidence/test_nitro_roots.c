/*
 * Unit tests for src/evidence/aws_roots.c: the pinned AWS Nitro Enclaves Root-G1 parses, has the
 * SHA-256 fingerprint recorded beside it (and in the vectors README), is byte-identical to the copy
 * in tests/vectors/nitro/blocky-nitrite/aws_nitro_root_g1.pem and to cabundle[0] of each of the
 * three AWS-issued documents stored there, is a self-signed P-384 CA valid 2019-10-28..2049-10-28,
 * and clst_evidence_nitro_roots() hands out exactly it, as a stack the caller owns.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_nitro_fixture.h"

static void
test_builtin_root(void **state)
{
    (void)state;
    const uint8_t *pinned = NULL;
    const char *pem = evidence_nitro_builtin_root_pem(&pinned);
    assert_non_null(pem);
    assert_non_null(pinned);

    /* The fingerprint the README states. */
    size_t fp_size = 0;
    uint8_t *fp =
        tu_hex("641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b", &fp_size);
    assert_non_null(fp);
    assert_int_equal(fp_size, CLST_SHA256_SIZE);
    assert_memory_equal(pinned, fp, CLST_SHA256_SIZE);
    free(fp);

    X509 *root = NULL;
    struct clst_err err = {0};
    assert_int_equal(evidence_nitro_builtin_root(&root, &err), CLST_OK);
    assert_non_null(root);
    X509 *again = NULL;
    assert_int_equal(evidence_nitro_builtin_root(&again, &err), CLST_OK);
    assert_ptr_equal(root, again); /* parsed once */
    assert_int_equal(evidence_nitro_builtin_root(NULL, &err), CLST_E_INVAL);

    /* Its DER hashes to the pinned fingerprint. */
    struct clst_buf der;
    uint8_t digest[CLST_SHA256_SIZE];
    clst_buf_init(&der, 1u << 16);
    assert_int_equal(nx_der(root, &der), 0);
    assert_int_equal(clst_sha256(der.data, der.size, digest), CLST_OK);
    assert_memory_equal(digest, pinned, sizeof(digest));

    /* The same bytes as the stored copy. */
    size_t size = 0;
    uint8_t *file = nx_read("aws_nitro_root_g1.pem", &size);
    assert_non_null(file);
    X509 *stored = NULL;
    assert_int_equal(clst_x509_from_pem(file, size, &stored, &err), CLST_OK);
    struct clst_buf stored_der;
    clst_buf_init(&stored_der, 1u << 16);
    assert_int_equal(nx_der(stored, &stored_der), 0);
    assert_int_equal(stored_der.size, der.size);
    assert_memory_equal(stored_der.data, der.data, der.size);
    X509_free(stored);
    clst_buf_cleanup(&stored_der);
    free(file);

    /* What it is. */
    EVP_PKEY *key = X509_get0_pubkey(root);
    assert_int_equal(clst_pkey_kind(key), CLST_KEY_EC_P384);
    assert_int_equal(X509_check_ca(root), 1);
    assert_int_equal(X509_check_issued(root, root), X509_V_OK);
    char cn[64];
    assert_true(
        X509_NAME_get_text_by_NID(X509_get_subject_name(root), NID_commonName, cn, sizeof(cn)) > 0);
    assert_string_equal(cn, "aws.nitro-enclaves");
    /* Valid from 2019-10-28T13:28:05Z to 2049-10-28T14:28:05Z. */
    assert_int_equal(ASN1_TIME_cmp_time_t(X509_get0_notBefore(root), 1572269285), 0);
    assert_int_equal(ASN1_TIME_cmp_time_t(X509_get0_notAfter(root), 2519044085), 0);

    /* cabundle[0] of every AWS-issued document is this certificate, byte for byte. */
    static const char *const docs[] = {
        "nitro_attestation.cose.bin",
        "nitro_attestation_debug.cose.bin",
        "nitro_attestation_2024-05.cose.bin",
    };
    struct nitro_doc *doc = calloc(1, sizeof(*doc));
    assert_non_null(doc);
    for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        uint8_t *d = nx_read(docs[i], &size);
        assert_non_null(d);
        assert_int_equal(evidence_nitro_parse(d, size, doc, &err), CLST_OK);
        assert_int_equal(doc->cabundle_size[0], der.size);
        assert_memory_equal(doc->cabundle[0], der.data, der.size);
        free(d);
    }
    free(doc);
    clst_buf_cleanup(&der);
}

static void
test_public_roots(void **state)
{
    (void)state;
    STACK_OF(X509) *roots = NULL;
    struct clst_err err = {0};
    X509 *root = NULL;
    assert_int_equal(clst_evidence_nitro_roots(&roots, &err), CLST_OK);
    assert_int_equal(sk_X509_num(roots), 1);
    assert_int_equal(evidence_nitro_builtin_root(&root, &err), CLST_OK);
    assert_int_equal(X509_cmp(sk_X509_value(roots, 0), root), 0);
    /* The caller owns the stack and its reference: freeing it leaves the built-in intact. */
    sk_X509_pop_free(roots, X509_free);
    assert_int_equal(clst_evidence_nitro_roots(&roots, &err), CLST_OK);
    assert_int_equal(X509_cmp(sk_X509_value(roots, 0), root), 0);
    sk_X509_pop_free(roots, X509_free);
    assert_int_equal(clst_evidence_nitro_roots(NULL, &err), CLST_E_INVAL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_builtin_root),
        cmocka_unit_test(test_public_roots),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
