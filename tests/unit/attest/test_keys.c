/*
 * Unit tests for src/attest/keys.c: sealing (round trip; another kid, another key, any flipped
 * byte or a truncation fail), the x5c certificate (self-signed, the key's, P-256 ES256, not a CA),
 * the kid (RFC 7638 thumbprint), and the rotation schedule with a fixed clock: the next key is
 * published a day before it signs, the old one stays published a token lifetime (+ skew) after,
 * then disappears from the JWKS and the database; forced rotation; keys survive a reopen.
 */
#include "attest_fixture.h"

#include <openssl/x509v3.h>

static void
test_seal(void **state)
{
    (void)state;
    uint8_t key[32], other[32];
    memset(key, 7, sizeof(key));
    memset(other, 8, sizeof(other));
    const uint8_t pt[] = "private key bytes";
    struct clst_buf sealed, out;
    struct clst_err err = {0};
    clst_buf_init(&sealed, 1024);
    clst_buf_init_secret(&out, 1024);
    assert_int_equal(attest_key_seal(key, "kid1", pt, sizeof(pt), &sealed), CLST_OK);
    assert_int_equal(sealed.size, sizeof(pt) + 12 + 16);
    assert_int_equal(attest_key_unseal(key, "kid1", sealed.data, sealed.size, &out, &err), CLST_OK);
    assert_memory_equal(out.data, pt, sizeof(pt));
    clst_buf_reset(&out);
    assert_int_equal(attest_key_unseal(key, "kid2", sealed.data, sealed.size, &out, &err),
                     CLST_E_VERIFY);
    assert_non_null(strstr(err.msg, "master key"));
    assert_int_equal(attest_key_unseal(other, "kid1", sealed.data, sealed.size, &out, &err),
                     CLST_E_VERIFY);
    for (size_t i = 0; i < sealed.size; i++) {
        sealed.data[i] ^= 0x80;
        assert_int_equal(attest_key_unseal(key, "kid1", sealed.data, sealed.size, &out, &err),
                         CLST_E_VERIFY);
        sealed.data[i] ^= 0x80;
    }
    for (size_t n = 0; n < sealed.size; n++) {
        assert_int_equal(attest_key_unseal(key, "kid1", sealed.data, n, &out, &err),
                         CLST_E_VERIFY);
    }
    assert_int_equal(out.size, 0);
    clst_buf_cleanup(&sealed);
    clst_buf_cleanup(&out);
}

static void
test_cert(void **state)
{
    (void)state;
    EVP_PKEY *k = NULL;
    X509 *c = NULL;
    struct clst_err err = {0};
    assert_int_equal(clst_ec_generate(CLST_CURVE_P256, &k), CLST_OK);
    assert_int_equal(attest_key_cert(k, FX_T0, FX_T0 + 86400, &c, &err), CLST_OK);
    assert_true(clst_pkey_public_equal(X509_get0_pubkey(c), k));
    assert_int_equal(X509_verify(c, X509_get0_pubkey(c)), 1); /* self-signed */
    assert_int_equal(X509_NAME_cmp(X509_get_subject_name(c), X509_get_issuer_name(c)), 0);
    assert_int_equal(X509_check_ca(c), 0);
    assert_int_equal(X509_get_signature_nid(c), NID_ecdsa_with_SHA256);
    assert_int_equal(ASN1_TIME_cmp_time_t(X509_get0_notBefore(c), (time_t)FX_T0), 0);
    assert_int_equal(ASN1_TIME_cmp_time_t(X509_get0_notAfter(c), (time_t)(FX_T0 + 86400)), 0);
    X509_free(c);
    EVP_PKEY_free(k);
}

static size_t
jwks_count(struct clst_attest *a)
{
    json_t *j = NULL;
    assert_int_equal(clst_attest_jwks(a, &j, NULL), CLST_OK);
    size_t n = json_array_size(json_object_get(j, "keys"));
    json_decref(j);
    return n;
}

static char *
jwks_kid(struct clst_attest *a, size_t i)
{
    json_t *j = NULL;
    assert_int_equal(clst_attest_jwks(a, &j, NULL), CLST_OK);
    const char *kid = json_string_value(json_object_get(json_array_get(json_object_get(j, "keys"), i),
                                                        "kid"));
    char *copy = kid ? strdup(kid) : NULL;
    json_decref(j);
    return copy;
}

static char *
current(struct clst_attest *a)
{
    char *kid = NULL;
    assert_int_equal(clst_attest_current_kid(a, &kid, NULL), CLST_OK);
    return kid;
}

static void
test_rotation(void **state)
{
    (void)state;
    struct fx f;
    struct clst_err err = {0};
    const int64_t day = 86400, period = CLST_ATTEST_DEFAULT_KEY_PERIOD;
    const int64_t lifetime = 8 * 3600 + CLST_ATTEST_CLOCK_SKEW;
    fx_setup(&f);
    char *k0 = current(f.a);
    assert_int_equal(jwks_count(f.a), 1);
    /* The kid is the RFC 7638 thumbprint of the published key. */
    struct clst_jwks *set = fx_jwks(f.a);
    uint8_t th[CLST_SHA256_SIZE];
    struct clst_buf enc;
    clst_buf_init(&enc, 64);
    assert_int_equal(clst_jwk_thumbprint(clst_jwks_get(set, 0), th), CLST_OK);
    assert_int_equal(clst_b64url_encode(th, sizeof(th), &enc), CLST_OK);
    assert_int_equal(clst_buf_terminate(&enc), CLST_OK);
    assert_string_equal((const char *)enc.data, k0);
    assert_int_equal(clst_jwk_alg(clst_jwks_get(set, 0)), CLST_JWS_ES256);
    assert_false(clst_jwk_has_private(clst_jwks_get(set, 0)));
    assert_int_equal(clst_jwk_x5c_count(clst_jwks_get(set, 0)), 1);
    clst_jwks_free(set);
    clst_buf_cleanup(&enc);

    /* Until a day before the end of its period, one key. */
    f.clock.fixed = FX_T0 + period - day - 1;
    assert_int_equal(jwks_count(f.a), 1);
    /* Then the next key is published (second), but the first still signs. */
    f.clock.fixed = FX_T0 + period - day;
    assert_int_equal(jwks_count(f.a), 2);
    char *k1 = jwks_kid(f.a, 1);
    char *c = current(f.a);
    assert_string_equal(c, k0);
    assert_string_not_equal(k1, k0);
    free(c);
    /* At the end of the period the next key signs; the old one is still published. */
    f.clock.fixed = FX_T0 + period;
    c = current(f.a);
    assert_string_equal(c, k1);
    free(c);
    char *first = jwks_kid(f.a, 0);
    char *second = jwks_kid(f.a, 1);
    assert_string_equal(first, k1);
    assert_string_equal(second, k0);
    free(first);
    free(second);
    /* A token signed by the old key just before rotation verifies until it expires. */
    f.clock.fixed = FX_T0 + period + lifetime - 1;
    assert_int_equal(jwks_count(f.a), 2);
    f.clock.fixed = FX_T0 + period + lifetime;
    assert_int_equal(jwks_count(f.a), 1);

    /* Reopening loads the same keys (sealed in attest.db). */
    clst_attest_free(f.a);
    f.a = NULL;
    assert_int_equal(fx_engine_new(&f, true, 0, &f.a, &err), CLST_OK);
    c = current(f.a);
    assert_string_equal(c, k1);
    free(c);

    /* Forced rotation: a new key signs now, the old one stays published a token lifetime. */
    f.clock.fixed = FX_T0 + period + 2 * day;
    assert_int_equal(clst_attest_keys_rotate(f.a, &err), CLST_OK);
    char *k2 = current(f.a);
    assert_string_not_equal(k2, k1);
    assert_int_equal(jwks_count(f.a), 2);
    f.clock.fixed += lifetime;
    assert_int_equal(jwks_count(f.a), 1);
    /* Rotating when the next key was already published makes that one current. */
    f.clock.fixed = FX_T0 + period + 2 * day + period - day / 2;
    assert_int_equal(jwks_count(f.a), 2);
    char *k3 = jwks_kid(f.a, 1);
    assert_int_equal(clst_attest_keys_rotate(f.a, &err), CLST_OK);
    c = current(f.a);
    assert_string_equal(c, k3);
    free(c);

    /* A long gap (server off for months): a new key from now; old keys are gone. */
    f.clock.fixed = FX_T0 + 10 * period;
    c = current(f.a);
    assert_string_not_equal(c, k3);
    assert_int_equal(jwks_count(f.a), 1);
    free(c);

    free(k0);
    free(k1);
    free(k2);
    free(k3);
    fx_teardown(&f);
}

static void
test_token_lifetime_overlap(void **state)
{
    (void)state;
    struct fx f;
    struct clst_err err = {0};
    fx_setup_platform(&f);
    assert_int_equal(fx_engine_new(&f, true, 600, &f.a, &err), CLST_OK);
    char *k0 = current(f.a);
    assert_int_equal(clst_attest_keys_rotate(f.a, &err), CLST_OK);
    assert_int_equal(jwks_count(f.a), 2);
    f.clock.fixed = FX_T0 + 600 + CLST_ATTEST_CLOCK_SKEW - 1;
    assert_int_equal(jwks_count(f.a), 2);
    f.clock.fixed = FX_T0 + 600 + CLST_ATTEST_CLOCK_SKEW;
    assert_int_equal(jwks_count(f.a), 1);
    char *k = jwks_kid(f.a, 0);
    assert_string_not_equal(k, k0);
    free(k);
    free(k0);
    fx_teardown(&f);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seal),
        cmocka_unit_test(test_cert),
        cmocka_unit_test(test_rotation),
        cmocka_unit_test(test_token_lifetime_overlap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
