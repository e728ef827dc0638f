/*
 * Unit tests for src/evidence/intel_roots.c: the pinned Intel SGX Root CA is byte-identical to
 * Intel's published certificate (the DER and PEM copies in tests/vectors, from two upstream
 * projects), self-signed, and the only anchor the real quotes verify to.
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_dcap_fixture.h"

static void
test_pinned_root(void **state)
{
    (void)state;
    STACK_OF(X509) *roots = NULL;
    struct clst_err err = {0};
    assert_int_equal(clst_evidence_intel_roots(&roots, &err), CLST_OK);
    assert_int_equal(sk_X509_num(roots), 1);
    X509 *root = sk_X509_value(roots, 0);
    unsigned char *der = NULL;
    int der_size = i2d_X509(root, &der);
    size_t n = 0;
    unsigned char *cer =
        fx_vector("tdx/dcap-rs/Intel_SGX_Provisioning_Certification_RootCA.cer", &n);
    assert_int_equal((size_t)der_size, n);
    assert_memory_equal(der, cer, n);
    uint8_t digest[32];
    assert_int_equal(clst_sha256(der, n, digest), CLST_OK);
    static const uint8_t fp[4] = {0x44, 0xA0, 0x19, 0x6B};
    assert_memory_equal(digest, fp, 4);
    assert_int_equal(digest[31], 0xD3);
    free(cer);
    OPENSSL_free(der);

    unsigned char *pem = fx_vector("tdx/go-tdx-guest/trusted_root.pem", &n);
    X509 *other = NULL;
    assert_int_equal(clst_x509_from_pem(pem, n, &other, &err), CLST_OK);
    assert_int_equal(X509_cmp(root, other), 0);
    X509_free(other);
    free(pem);

    assert_true((X509_get_extension_flags(root) & EXFLAG_SS) != 0);
    assert_int_equal(clst_pkey_kind(X509_get0_pubkey(root)), CLST_KEY_EC_P256);
    /* The root verifies itself at a time inside its validity only. */
    assert_int_equal(clst_x509_verify_chain(root, NULL, roots, NULL, 1740787200, NULL, &err),
                     CLST_OK);
    assert_int_equal(clst_x509_verify_chain(root, NULL, roots, NULL, 2524608000 /* 2050 */, NULL,
                                            &err),
                     CLST_E_VERIFY);
    sk_X509_pop_free(roots, X509_free);
    assert_int_equal(clst_evidence_intel_roots(NULL, &err), CLST_E_INVAL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pinned_root),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
