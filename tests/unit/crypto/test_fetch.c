/*
 * Unit tests for src/crypto/fetch.c: the algorithms fetched once per process are there, are the
 * same objects every time, from any thread, and work; unknown names are not invented.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/evp.h>

#include "crypto/fetch_int.h"

static void *
from_thread(void *arg)
{
    (void)arg;
    return (void *)clst_fetched_cipher("AES-256-GCM");
}

static void
test_same_objects(void **state)
{
    (void)state;
    const EVP_CIPHER *gcm = clst_fetched_cipher("AES-256-GCM");
    assert_non_null(gcm);
    assert_ptr_equal(gcm, clst_fetched_cipher("AES-256-GCM"));
    assert_int_equal(EVP_CIPHER_get_key_length(gcm), 32);
    assert_true(EVP_CIPHER_is_a(gcm, "AES-256-GCM"));
    pthread_t t;
    void *other = NULL;
    assert_int_equal(pthread_create(&t, NULL, from_thread, NULL), 0);
    assert_int_equal(pthread_join(t, &other), 0);
    assert_ptr_equal(other, gcm);
    const char *names[] = {"AES-128-GCM",      "AES-192-GCM",     "AES-128-WRAP",
                           "AES-192-WRAP",     "AES-256-WRAP",    "AES-128-WRAP-PAD",
                           "AES-192-WRAP-PAD", "AES-256-WRAP-PAD"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        assert_non_null(clst_fetched_cipher(names[i]));
    }
    assert_null(clst_fetched_cipher("AES-256-CBC")); /* not cached: callers fetch it themselves */
    assert_null(clst_fetched_cipher(""));
    assert_non_null(clst_fetched_hmac());
}

static void
test_digests(void **state)
{
    (void)state;
    static const struct {
        enum clst_hash h;
        int size;
    } want[] = {{CLST_HASH_SHA1, 20},
                {CLST_HASH_SHA256, 32},
                {CLST_HASH_SHA384, 48},
                {CLST_HASH_SHA512, 64}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const EVP_MD *md = clst_fetched_md(want[i].h);
        assert_non_null(md);
        assert_ptr_equal(md, clst_hash_md(want[i].h)); /* the public accessor hands it out */
        assert_int_equal(EVP_MD_get_size(md), want[i].size);
    }
    assert_null(clst_fetched_md((enum clst_hash)99));
    /* SHA-256("abc"), FIPS 180-2 appendix B.1, through the cached object. */
    static const uint8_t abc256[32] = {0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea,
                                       0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
                                       0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c,
                                       0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
    uint8_t out[32];
    unsigned int len = 0;
    assert_int_equal(EVP_Digest("abc", 3, out, &len, clst_fetched_md(CLST_HASH_SHA256), NULL), 1);
    assert_int_equal(len, 32);
    assert_memory_equal(out, abc256, 32);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_objects),
        cmocka_unit_test(test_digests),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
