/*
 * CKM_RSA_AES_KEY_WRAP (PKCS#11 v2.40 2.1.21), as the cloud key vault uses it for secure key
 * release:
 *
 *   wrapped = RSA-OAEP(pub, hash h, MGF1(h), empty label; K) || AES-KWP(K; key material)
 *
 * where K is a fresh random AES-256 key. The first part is exactly the modulus size; the second is
 * RFC 5649 output, a multiple of 8 bytes and at least 16. h is SHA-1 ("CKM_RSA_AES_KEY_WRAP"),
 * SHA-256 ("RSA_AES_KEY_WRAP_256") or SHA-384 ("RSA_AES_KEY_WRAP_384"); other hashes have no name
 * in that protocol and are refused.
 *
 * Unwrap: shape errors (length not modulus + a multiple of 8 >= 16) are CLST_E_MALFORMED; a failed
 * RSA decryption, a decrypted key that is not 32 bytes, and a failed KWP integrity check are all
 * CLST_E_VERIFY, without telling which.
 *
 * CT: OAEP decoding and AES-KWP are OpenSSL's; K lives on the stack only and is wiped.
 */
#include <cloister/crypto.h>

#include <stdlib.h>

#include <openssl/crypto.h>

#define WRAP_AES_KEY_SIZE 32
/* Key material to wrap: an RSA-8192 private key in PKCS#8 is under 5 KB; 64 KiB is ample. */
#define WRAP_MAX_KEY_SIZE (64u * 1024u)

static bool
wrap_hash_ok(enum clst_hash h)
{
    return h == CLST_HASH_SHA1 || h == CLST_HASH_SHA256 || h == CLST_HASH_SHA384;
}

static size_t
modulus_size(const EVP_PKEY *key)
{
    int size;

    if (clst_pkey_kind(key) != CLST_KEY_RSA) {
        return 0;
    }
    size = EVP_PKEY_get_size(key);
    return size > 0 ? (size_t)size : 0;
}

enum clst_status
clst_rsa_aes_wrap(EVP_PKEY *pub, enum clst_hash h, const uint8_t *key, size_t key_size,
                  struct clst_buf *out)
{
    enum clst_status rc;
    uint8_t kek[WRAP_AES_KEY_SIZE];
    struct clst_buf rsa_part;
    uint8_t *kwp = NULL;
    size_t kwp_cap, kwp_size = 0;
    size_t k = modulus_size(pub);

    clst_buf_init(&rsa_part, k);
    if (k == 0 || !wrap_hash_ok(h) || key == NULL || key_size == 0 || out == NULL) {
        return CLST_E_INVAL;
    }
    if (key_size > WRAP_MAX_KEY_SIZE) {
        return CLST_E_LIMIT;
    }
    kwp_cap = (key_size + 7) / 8 * 8 + 8;
    kwp = malloc(kwp_cap);
    if (kwp == NULL) {
        return CLST_E_NOMEM;
    }
    rc = clst_random(kek, sizeof(kek));
    if (rc != CLST_OK) {
        goto out;
    }
    rc = clst_rsa_oaep_encrypt(pub, h, kek, sizeof(kek), &rsa_part);
    if (rc != CLST_OK) {
        goto out;
    }
    if (rsa_part.size != k) {
        rc = CLST_E_INTERNAL;
        goto out;
    }
    rc = clst_aes_kwp_wrap(kek, sizeof(kek), key, key_size, kwp, kwp_cap, &kwp_size);
    if (rc != CLST_OK) {
        goto out;
    }
    /* Reserve first so that the output is written whole or not at all. */
    rc = clst_buf_reserve(out, k + kwp_size);
    if (rc != CLST_OK) {
        goto out;
    }
    rc = clst_buf_append(out, rsa_part.data, k);
    if (rc == CLST_OK) {
        rc = clst_buf_append(out, kwp, kwp_size);
    }
out:
    OPENSSL_cleanse(kek, sizeof(kek));
    free(kwp);
    clst_buf_cleanup(&rsa_part);
    return rc;
}

enum clst_status
clst_rsa_aes_unwrap(EVP_PKEY *priv, enum clst_hash h, const uint8_t *in, size_t in_size,
                    struct clst_buf *out)
{
    enum clst_status rc;
    struct clst_buf kek;
    uint8_t *plain = NULL;
    size_t plain_cap = 0, plain_size = 0;
    size_t k = modulus_size(priv);

    /* The AES key is decrypted into secret memory; anything longer than 32 bytes is refused. */
    clst_buf_init_secret(&kek, k);
    if (k == 0 || !wrap_hash_ok(h) || in == NULL || out == NULL || !clst_pkey_has_private(priv)) {
        return CLST_E_INVAL;
    }
    if (in_size < k || in_size - k < 16 || (in_size - k) % 8 != 0 ||
        in_size - k > WRAP_MAX_KEY_SIZE + 16) {
        return CLST_E_MALFORMED;
    }
    rc = clst_rsa_oaep_decrypt(priv, h, in, k, &kek);
    if (rc != CLST_OK) {
        goto out;
    }
    if (kek.size != WRAP_AES_KEY_SIZE) {
        rc = CLST_E_VERIFY;
        goto out;
    }
    plain_cap = in_size - k - 8;
    plain = clst_secret_alloc_raw(plain_cap);
    if (plain == NULL) {
        rc = CLST_E_NOMEM;
        goto out;
    }
    rc =
        clst_aes_kwp_unwrap(kek.data, kek.size, in + k, in_size - k, plain, plain_cap, &plain_size);
    if (rc != CLST_OK) {
        if (rc == CLST_E_MALFORMED) {
            rc = CLST_E_VERIFY;
        }
        goto out;
    }
    rc = clst_buf_append(out, plain, plain_size);
out:
    if (plain != NULL) {
        clst_secret_free_raw(plain, plain_cap);
    }
    clst_buf_cleanup(&kek);
    return rc;
}
