/* Unit tests for src/crypto/rsawrap.c (CKM_RSA_AES_KEY_WRAP): round trips for SHA-1/256/384 with
 * RSA-2048 and RSA-3072, wrong keys and hashes, every truncation, flipped bytes, and an
 * independent check of the wire format in both directions with plain EVP calls (RSA-OAEP, then
 * the "AES-256-WRAP-PAD" cipher). The RSA keys are Wycheproof's (no key generation here). */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include <cloister/crypto.h>

#include "test_util.h"

struct keys {
    EVP_PKEY *k2048, *k3072, *other2048, *pub2048, *pub3072;
};

static EVP_PKEY *
load_key(const char *file, size_t group)
{
    json_t *j = tu_load_json(file);
    assert_non_null(j);
    const char *hex = json_string_value(json_object_get(
        json_array_get(json_object_get(j, "testGroups"), group), "privateKeyPkcs8"));
    assert_non_null(hex);
    size_t size = 0;
    uint8_t *der = tu_hex(hex, &size);
    EVP_PKEY *key = NULL;
    assert_int_equal(clst_pkey_from_der(der, size, &key, NULL), CLST_OK);
    free(der);
    json_decref(j);
    return key;
}

static int
setup(void **state)
{
    struct keys *k = calloc(1, sizeof(*k));
    if (k == NULL) {
        return -1;
    }
    k->k2048 = load_key("wycheproof/rsa_oaep_2048_sha256_mgf1sha256_test.json", 0);
    k->k3072 = load_key("wycheproof/rsa_oaep_3072_sha256_mgf1sha256_test.json", 0);
    k->other2048 = load_key("wycheproof/rsa_pkcs1_2048_test.json", 0);
    if (clst_pkey_public_copy(k->k2048, &k->pub2048) != CLST_OK ||
        clst_pkey_public_copy(k->k3072, &k->pub3072) != CLST_OK) {
        return -1;
    }
    *state = k;
    return 0;
}

static int
teardown(void **state)
{
    struct keys *k = *state;
    EVP_PKEY_free(k->k2048);
    EVP_PKEY_free(k->k3072);
    EVP_PKEY_free(k->other2048);
    EVP_PKEY_free(k->pub2048);
    EVP_PKEY_free(k->pub3072);
    free(k);
    return 0;
}

static const enum clst_hash wrap_hashes[3] = {CLST_HASH_SHA1, CLST_HASH_SHA256, CLST_HASH_SHA384};
static const char *wrap_md[3] = {"SHA1", "SHA256", "SHA384"};

static void
fill(uint8_t *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (uint8_t)(seed >> 16);
    }
}

static void
test_roundtrip(void **state)
{
    struct keys *k = *state;
    EVP_PKEY *privs[2] = {k->k2048, k->k3072};
    EVP_PKEY *pubs[2] = {k->pub2048, k->pub3072};
    size_t mods[2] = {256, 384};
    size_t sizes[] = {1, 7, 8, 16, 32, 33, 256, 1217};
    uint8_t material[1217];
    fill(material, sizeof(material), 7);

    for (int ki = 0; ki < 2; ki++) {
        for (int hi = 0; hi < 3; hi++) {
            for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
                size_t n = sizes[si];
                struct clst_buf w, w2, u;
                clst_buf_init(&w, 4096);
                clst_buf_init(&w2, 4096);
                clst_buf_init_secret(&u, 4096);
                assert_int_equal(clst_rsa_aes_wrap(pubs[ki], wrap_hashes[hi], material, n, &w),
                                 CLST_OK);
                assert_int_equal(w.size, mods[ki] + (n + 7) / 8 * 8 + 8);
                /* Fresh AES key and OAEP seed every time. */
                assert_int_equal(clst_rsa_aes_wrap(pubs[ki], wrap_hashes[hi], material, n, &w2),
                                 CLST_OK);
                assert_int_equal(w2.size, w.size);
                assert_memory_not_equal(w.data, w2.data, mods[ki]);
                assert_memory_not_equal(w.data + mods[ki], w2.data + mods[ki], w.size - mods[ki]);
                assert_int_equal(
                    clst_rsa_aes_unwrap(privs[ki], wrap_hashes[hi], w.data, w.size, &u), CLST_OK);
                assert_int_equal(u.size, n);
                assert_memory_equal(u.data, material, n);
                /* The wrong hash does not unwrap it. */
                clst_buf_reset(&u);
                assert_int_equal(
                    clst_rsa_aes_unwrap(privs[ki], wrap_hashes[(hi + 1) % 3], w.data, w.size, &u),
                    CLST_E_VERIFY);
                assert_int_equal(u.size, 0);
                clst_buf_cleanup(&w);
                clst_buf_cleanup(&w2);
                clst_buf_cleanup(&u);
            }
        }
    }
}

static void
test_negative(void **state)
{
    struct keys *k = *state;
    uint8_t material[40];
    fill(material, sizeof(material), 3);
    struct clst_buf w, u;
    clst_buf_init(&w, 4096);
    clst_buf_init_secret(&u, 4096);

    assert_int_equal(clst_rsa_aes_wrap(k->pub2048, CLST_HASH_SHA256, material, 40, &w), CLST_OK);
    assert_int_equal(w.size, 256 + 48);

    /* Wrong key (same size), and a key of another size. */
    assert_int_equal(clst_rsa_aes_unwrap(k->other2048, CLST_HASH_SHA256, w.data, w.size, &u),
                     CLST_E_VERIFY);
    assert_int_not_equal(clst_rsa_aes_unwrap(k->k3072, CLST_HASH_SHA256, w.data, w.size, &u),
                         CLST_OK);
    /* Every truncation fails: too short for the RSA part or for KWP, a KWP part that is not whole
     * semiblocks (MALFORMED), or a KWP part that fails its integrity check (VERIFY). */
    for (size_t n = 0; n < w.size; n++) {
        enum clst_status rc = clst_rsa_aes_unwrap(k->k2048, CLST_HASH_SHA256, w.data, n, &u);
        if (n < 256 + 16 || (n - 256) % 8 != 0) {
            assert_int_equal(rc, CLST_E_MALFORMED);
        } else {
            assert_int_equal(rc, CLST_E_VERIFY);
        }
    }
    /* Extra bytes: 1..7 (not semiblocks) and 8 (one more semiblock). */
    uint8_t longer[256 + 48 + 8];
    memcpy(longer, w.data, w.size);
    memset(longer + w.size, 0, 8);
    for (size_t extra = 1; extra <= 8; extra++) {
        assert_int_not_equal(
            clst_rsa_aes_unwrap(k->k2048, CLST_HASH_SHA256, longer, w.size + extra, &u), CLST_OK);
    }
    /* A flipped bit in every byte: the RSA part fails OAEP, the KWP part its integrity check. */
    for (size_t i = 0; i < w.size; i++) {
        w.data[i] ^= 0x40;
        assert_int_equal(clst_rsa_aes_unwrap(k->k2048, CLST_HASH_SHA256, w.data, w.size, &u),
                         CLST_E_VERIFY);
        w.data[i] ^= 0x40;
    }
    /* The two halves of two wraps do not mix. */
    struct clst_buf w2;
    clst_buf_init(&w2, 4096);
    assert_int_equal(clst_rsa_aes_wrap(k->pub2048, CLST_HASH_SHA256, material, 40, &w2), CLST_OK);
    memcpy(longer, w.data, 256);
    memcpy(longer + 256, w2.data + 256, 48);
    assert_int_equal(clst_rsa_aes_unwrap(k->k2048, CLST_HASH_SHA256, longer, 304, &u),
                     CLST_E_VERIFY);
    assert_int_equal(u.size, 0);
    clst_buf_cleanup(&w2);

    /* Output cap too small: LIMIT, nothing written. */
    struct clst_buf tiny;
    clst_buf_init_secret(&tiny, 39);
    assert_int_equal(clst_rsa_aes_unwrap(k->k2048, CLST_HASH_SHA256, w.data, w.size, &tiny),
                     CLST_E_LIMIT);
    assert_int_equal(tiny.size, 0);
    clst_buf_cleanup(&tiny);
    struct clst_buf small_w;
    clst_buf_init(&small_w, 300);
    assert_int_equal(clst_rsa_aes_wrap(k->pub2048, CLST_HASH_SHA256, material, 40, &small_w),
                     CLST_E_LIMIT);
    assert_int_equal(small_w.size, 0);
    clst_buf_cleanup(&small_w);

    /* Intact, it still unwraps. */
    assert_int_equal(clst_rsa_aes_unwrap(k->k2048, CLST_HASH_SHA256, w.data, w.size, &u), CLST_OK);
    assert_memory_equal(u.data, material, 40);
    clst_buf_reset(&u);

    /* Contract violations. */
    assert_int_equal(clst_rsa_aes_wrap(k->pub2048, CLST_HASH_SHA512, material, 40, &w),
                     CLST_E_INVAL);
    assert_int_equal(clst_rsa_aes_wrap(k->pub2048, (enum clst_hash)0, material, 40, &w),
                     CLST_E_INVAL);
    assert_int_equal(clst_rsa_aes_wrap(k->pub2048, CLST_HASH_SHA256, material, 0, &w),
                     CLST_E_INVAL);
    assert_int_equal(clst_rsa_aes_wrap(k->pub2048, CLST_HASH_SHA256, NULL, 40, &w), CLST_E_INVAL);
    assert_int_equal(clst_rsa_aes_wrap(NULL, CLST_HASH_SHA256, material, 40, &w), CLST_E_INVAL);
    assert_int_equal(clst_rsa_aes_unwrap(k->pub2048, CLST_HASH_SHA256, w.data, w.size, &u),
                     CLST_E_INVAL);
    assert_int_equal(clst_rsa_aes_unwrap(k->k2048, CLST_HASH_SHA512, w.data, w.size, &u),
                     CLST_E_INVAL);
    EVP_PKEY *ec = NULL;
    assert_int_equal(clst_ec_generate(CLST_CURVE_P256, &ec), CLST_OK);
    assert_int_equal(clst_rsa_aes_wrap(ec, CLST_HASH_SHA256, material, 40, &w), CLST_E_INVAL);
    assert_int_equal(clst_rsa_aes_unwrap(ec, CLST_HASH_SHA256, w.data, w.size, &u), CLST_E_INVAL);
    EVP_PKEY_free(ec);
    assert_int_equal(u.size, 0);
    clst_buf_cleanup(&w);
    clst_buf_cleanup(&u);
}

/* RSA-OAEP with plain EVP calls. */
static size_t
evp_oaep(EVP_PKEY *key, bool decrypt, const char *md, const uint8_t *in, size_t in_size,
         uint8_t *out, size_t out_cap)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
    size_t len = out_cap;
    assert_non_null(ctx);
    assert_int_equal(decrypt ? EVP_PKEY_decrypt_init(ctx) : EVP_PKEY_encrypt_init(ctx), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_oaep_md_name(ctx, md, NULL), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_mgf1_md_name(ctx, md, NULL), 1);
    if (decrypt) {
        assert_int_equal(EVP_PKEY_decrypt(ctx, out, &len, in, in_size), 1);
    } else {
        assert_int_equal(EVP_PKEY_encrypt(ctx, out, &len, in, in_size), 1);
    }
    EVP_PKEY_CTX_free(ctx);
    return len;
}

/* AES-256 key wrap with padding (RFC 5649) with the plain EVP cipher. */
static size_t
evp_kwp(bool unwrap, const uint8_t key[32], const uint8_t *in, size_t in_size, uint8_t *out)
{
    EVP_CIPHER *cipher = EVP_CIPHER_fetch(NULL, "AES-256-WRAP-PAD", NULL);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int len = 0, fin = 0;
    assert_non_null(cipher);
    assert_non_null(ctx);
    EVP_CIPHER_CTX_set_flags(ctx, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
    assert_int_equal(EVP_CipherInit_ex2(ctx, cipher, key, NULL, unwrap ? 0 : 1, NULL), 1);
    assert_int_equal(EVP_CipherUpdate(ctx, out, &len, in, (int)in_size), 1);
    assert_int_equal(EVP_CipherFinal_ex(ctx, out + len, &fin), 1);
    EVP_CIPHER_CTX_free(ctx);
    EVP_CIPHER_free(cipher);
    return (size_t)(len + fin);
}

static void
test_wire_format_independent(void **state)
{
    struct keys *k = *state;
    EVP_PKEY *privs[2] = {k->k2048, k->k3072};
    EVP_PKEY *pubs[2] = {k->pub2048, k->pub3072};
    size_t mods[2] = {256, 384};
    uint8_t material[77];
    fill(material, sizeof(material), 11);

    for (int ki = 0; ki < 2; ki++) {
        for (int hi = 0; hi < 3; hi++) {
            /* Ours -> plain EVP: the first modulus-size bytes are RSA-OAEP(h, MGF1 h) of a 32-byte
             * AES key, the rest is AES-256-KWP of the material under it. */
            struct clst_buf w;
            clst_buf_init(&w, 4096);
            assert_int_equal(clst_rsa_aes_wrap(pubs[ki], wrap_hashes[hi], material, 77, &w),
                             CLST_OK);
            uint8_t aes[512], plain[128];
            size_t aes_len =
                evp_oaep(privs[ki], true, wrap_md[hi], w.data, mods[ki], aes, sizeof(aes));
            assert_int_equal(aes_len, 32);
            size_t plain_len = evp_kwp(true, aes, w.data + mods[ki], w.size - mods[ki], plain);
            assert_int_equal(plain_len, 77);
            assert_memory_equal(plain, material, 77);
            clst_buf_cleanup(&w);

            /* Plain EVP -> ours. */
            uint8_t kek[32], blob[512 + 128];
            assert_int_equal(RAND_bytes(kek, 32), 1);
            size_t rsa_len = evp_oaep(pubs[ki], false, wrap_md[hi], kek, 32, blob, 512);
            assert_int_equal(rsa_len, mods[ki]);
            size_t kwp_len = evp_kwp(false, kek, material, 77, blob + rsa_len);
            assert_int_equal(kwp_len, 88);
            struct clst_buf u;
            clst_buf_init_secret(&u, 4096);
            assert_int_equal(
                clst_rsa_aes_unwrap(privs[ki], wrap_hashes[hi], blob, rsa_len + kwp_len, &u),
                CLST_OK);
            assert_int_equal(u.size, 77);
            assert_memory_equal(u.data, material, 77);
            clst_buf_cleanup(&u);

            /* A 16-byte AES key under RSA (AES-128 KWP) is not this mechanism: refused. */
            rsa_len = evp_oaep(pubs[ki], false, wrap_md[hi], kek, 16, blob, 512);
            clst_buf_init_secret(&u, 4096);
            assert_int_equal(
                clst_rsa_aes_unwrap(privs[ki], wrap_hashes[hi], blob, rsa_len + kwp_len, &u),
                CLST_E_VERIFY);
            assert_int_equal(u.size, 0);
            clst_buf_cleanup(&u);
        }
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_negative),
        cmocka_unit_test(test_wire_format_independent),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
