/*
 * Unit tests for src/enclave/rt_keypair.c, called directly (the key pair needs no channel): key
 * sizes and kids, the runtime data's exact shape (public JWK only, sorted compact JSON, optional
 * nonce), unwrapping each CKM_RSA_AES_KEY_WRAP variant, and refusals: wrong algorithm, another
 * key pair, every truncation, bit flips, small output buffers, bad arguments.
 */
#define _GNU_SOURCE
#include "encl_fixture.h"

static struct clst_enclave_keypair *kp;

static int
setup(void **state)
{
    (void)state;
    return clst_enclave_keypair_new(2048, "test-kid", &kp, NULL) == CLST_OK ? 0 : -1;
}

static int
teardown(void **state)
{
    (void)state;
    clst_enclave_keypair_free(kp);
    return 0;
}

static void
test_new_arguments(void **state)
{
    (void)state;
    struct clst_enclave_keypair *x = NULL;
    struct clst_err err = {0};
    assert_int_equal(clst_enclave_keypair_new(1024, NULL, &x, &err), CLST_E_INVAL);
    assert_int_equal(clst_enclave_keypair_new(2049, NULL, &x, &err), CLST_E_INVAL);
    assert_int_equal(clst_enclave_keypair_new(8192, NULL, &x, &err), CLST_E_INVAL);
    assert_int_equal(clst_enclave_keypair_new(2048, "", &x, &err), CLST_E_INVAL);
    assert_int_equal(clst_enclave_keypair_new(2048, NULL, NULL, &err), CLST_E_INVAL);
    assert_null(x);
    clst_enclave_keypair_free(NULL);
}

static void
test_runtime_data(void **state)
{
    (void)state;
    uint8_t out[2048];
    size_t n = 0;
    struct clst_err err = {0};
    assert_int_equal(clst_enclave_keypair_runtime_data(kp, NULL, out, sizeof(out), &n, &err),
                     CLST_OK);
    json_error_t jerr;
    json_t *doc = json_loadb((const char *)out, n, 0, &jerr);
    assert_non_null(doc);
    assert_int_equal(json_object_size(doc), 1);
    json_t *keys = json_object_get(doc, "keys");
    assert_int_equal(json_array_size(keys), 1);
    json_t *jwk = json_array_get(keys, 0);
    assert_string_equal(json_string_value(json_object_get(jwk, "kid")), "test-kid");
    assert_string_equal(json_string_value(json_object_get(jwk, "kty")), "RSA");
    assert_string_equal(json_string_value(json_object_get(jwk, "e")), "AQAB");
    assert_int_equal(json_object_size(jwk), 5); /* e, key_ops, kid, kty, n: nothing private */
    /* Canonical text: sorted keys, no spaces, so it hashes the same everywhere. */
    assert_memory_equal(out, "{\"keys\":[{\"e\":\"AQAB\",\"key_ops\":[\"encrypt\"],\"kid\":", 49);
    json_decref(doc);
    /* Deterministic for one key; the nonce is added when given. */
    uint8_t again[2048];
    size_t m = 0;
    assert_int_equal(clst_enclave_keypair_runtime_data(kp, NULL, again, sizeof(again), &m, &err),
                     CLST_OK);
    assert_int_equal(m, n);
    assert_memory_equal(out, again, n);
    assert_int_equal(clst_enclave_keypair_runtime_data(kp, "n0nce", again, sizeof(again), &m, &err),
                     CLST_OK);
    assert_non_null(memmem(again, m, "\"nonce\":\"n0nce\"", 15));
    /* Too small an output. */
    assert_int_equal(clst_enclave_keypair_runtime_data(kp, NULL, out, n - 1, &m, &err),
                     CLST_E_LIMIT);
}

static EVP_PKEY *
public_key(void)
{
    uint8_t out[2048];
    size_t n = 0;
    EVP_PKEY *pub = NULL;
    assert_int_equal(clst_enclave_keypair_runtime_data(kp, NULL, out, sizeof(out), &n, NULL),
                     CLST_OK);
    json_t *doc = json_loadb((const char *)out, n, 0, NULL);
    assert_non_null(doc);
    assert_int_equal(
        clst_pkey_from_jwk(json_array_get(json_object_get(doc, "keys"), 0), &pub, NULL), CLST_OK);
    json_decref(doc);
    return pub;
}

static void
test_unwrap(void **state)
{
    (void)state;
    EVP_PKEY *pub = public_key();
    struct clst_err err = {0};
    uint8_t key[48], out[64];
    size_t n = 0;
    assert_int_equal(clst_random(key, sizeof(key)), CLST_OK);
    static const struct {
        const char *enc;
        enum clst_hash h;
    } algs[] = {{"CKM_RSA_AES_KEY_WRAP", CLST_HASH_SHA1},
                {"RSA_AES_KEY_WRAP_256", CLST_HASH_SHA256},
                {"RSA_AES_KEY_WRAP_384", CLST_HASH_SHA384}};
    for (size_t i = 0; i < 3; i++) {
        enum clst_enclave_wrap_alg alg, other;
        struct clst_buf w;
        assert_int_equal(clst_enclave_wrap_alg_parse(algs[i].enc, &alg), CLST_OK);
        assert_int_equal(clst_enclave_wrap_alg_parse(algs[(i + 1) % 3].enc, &other), CLST_OK);
        clst_buf_init(&w, 4096);
        assert_int_equal(clst_rsa_aes_wrap(pub, algs[i].h, key, sizeof(key), &w), CLST_OK);
        assert_int_equal(
            clst_enclave_keypair_unwrap(kp, alg, w.data, w.size, out, sizeof(out), &n, &err),
            CLST_OK);
        assert_int_equal(n, sizeof(key));
        assert_memory_equal(out, key, sizeof(key));
        /* The wrong OAEP hash, a small output, truncations, a flipped bit. */
        assert_int_equal(
            clst_enclave_keypair_unwrap(kp, other, w.data, w.size, out, sizeof(out), &n, &err),
            CLST_E_VERIFY);
        assert_int_equal(clst_enclave_keypair_unwrap(kp, alg, w.data, w.size, out, 10, &n, &err),
                         CLST_E_LIMIT);
        for (size_t cut = 1; cut < w.size; cut += 37) {
            assert_int_not_equal(clst_enclave_keypair_unwrap(kp, alg, w.data, w.size - cut, out,
                                                             sizeof(out), &n, &err),
                                 CLST_OK);
        }
        w.data[w.size / 2] ^= 0x20;
        assert_int_not_equal(
            clst_enclave_keypair_unwrap(kp, alg, w.data, w.size, out, sizeof(out), &n, &err),
            CLST_OK);
        clst_buf_cleanup(&w);
    }
    /* Wrapped to another key pair. */
    struct clst_enclave_keypair *other = NULL;
    EVP_PKEY *other_pub = NULL;
    assert_int_equal(clst_enclave_keypair_new(2048, NULL, &other, &err), CLST_OK);
    struct clst_buf w;
    clst_buf_init(&w, 4096);
    assert_int_equal(clst_rsa_aes_wrap(pub, CLST_HASH_SHA256, key, sizeof(key), &w), CLST_OK);
    assert_int_equal(clst_enclave_keypair_unwrap(other, CLST_WRAP_RSA_AES_KEY_WRAP_256, w.data,
                                                 w.size, out, sizeof(out), &n, &err),
                     CLST_E_VERIFY);
    assert_non_null(strstr(err.msg, "does not open"));
    assert_int_equal(clst_enclave_keypair_unwrap(kp, (enum clst_enclave_wrap_alg)9, w.data, w.size,
                                                 out, sizeof(out), &n, &err),
                     CLST_E_INVAL);
    enum clst_enclave_wrap_alg a;
    assert_int_equal(clst_enclave_wrap_alg_parse("RSA-OAEP", &a), CLST_E_NOTFOUND);
    clst_buf_cleanup(&w);
    clst_enclave_keypair_free(other);
    EVP_PKEY_free(other_pub);
    EVP_PKEY_free(pub);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_arguments),
        cmocka_unit_test(test_runtime_data),
        cmocka_unit_test(test_unwrap),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
