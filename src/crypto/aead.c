/*
 * AES-GCM over a reusable EVP_CIPHER_CTX.
 *
 * The envelope format seals every 16 KiB chunk with its own nonce, so this is a hot path: the
 * cipher is fetched and the key schedule (and GHASH key) computed once in clst_aead_new(); each
 * seal/open only re-initializes the context with a new nonce (EVP_CipherInit_ex2 with a NULL
 * cipher and key keeps both) and allocates nothing. The IV length is set only when it changes.
 *
 * CT: OpenSSL's GCM is constant time in the key, nonce, data and tag (the tag is compared with
 * CRYPTO_memcmp inside the provider); only sizes influence control flow here.
 */
#include <cloister/crypto.h>

#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/params.h>

#include "crypto/fetch_int.h"

/* The provider's IV buffer (GCM_IV_MAX_SIZE): 1024 bits. */
#define GCM_MAX_NONCE_SIZE 128
/* NIST SP 800-38D: plaintext of at most 2^39 - 256 bits per invocation. */
#define GCM_MAX_INPUT_SIZE ((UINT64_C(1) << 36) - 32)
/* EVP_CipherUpdate takes an int length: larger inputs are fed in pieces of this size. */
#define UPDATE_CHUNK_SIZE ((size_t)1 << 30)

struct clst_aead {
    EVP_CIPHER_CTX *ctx; /* holds the key schedule and a reference to the fetched cipher */
    size_t nonce_size;   /* the IV length the context is currently configured for */
};

enum clst_status
clst_aead_new(const uint8_t *key, size_t key_size, struct clst_aead **out)
{
    enum clst_status rc = CLST_E_CRYPTO;
    struct clst_aead *a = NULL;
    const EVP_CIPHER *cipher = NULL;
    EVP_CIPHER *fetched = NULL; /* ours to free when the cached one was not there */
    const char *name;

    if (key == NULL || out == NULL) {
        return CLST_E_INVAL;
    }
    switch (key_size) {
    case 16:
        name = "AES-128-GCM";
        break;
    case 24:
        name = "AES-192-GCM";
        break;
    case 32:
        name = "AES-256-GCM";
        break;
    default:
        return CLST_E_INVAL;
    }
    a = calloc(1, sizeof(*a));
    if (a == NULL) {
        rc = CLST_E_NOMEM;
        goto out;
    }
    cipher = clst_fetched_cipher(name);
    if (cipher == NULL && (cipher = fetched = EVP_CIPHER_fetch(NULL, name, NULL)) == NULL) {
        goto out;
    }
    a->ctx = EVP_CIPHER_CTX_new();
    if (a->ctx == NULL) {
        rc = CLST_E_NOMEM;
        goto out;
    }
    /* Key only: the nonce comes with each message. The context keeps its own reference to the
     * cipher, so ours (when we fetched it here) is dropped below. */
    if (EVP_CipherInit_ex2(a->ctx, cipher, key, NULL, 1, NULL) != 1) {
        goto out;
    }
    a->nonce_size = CLST_GCM_NONCE_SIZE; /* GCM's default IV length */
    *out = a;
    a = NULL;
    rc = CLST_OK;
out:
    EVP_CIPHER_free(fetched);
    clst_aead_free(a);
    return rc;
}

void
clst_aead_free(struct clst_aead *a)
{
    if (a == NULL) {
        return;
    }
    EVP_CIPHER_CTX_free(a->ctx); /* the provider wipes the key schedule */
    free(a);
}

/* True when [in, in+size) and [out, out+size) overlap without being the same buffer. */
static bool
overlaps_partially(const uint8_t *in, const uint8_t *out, size_t size)
{
    uintptr_t i = (uintptr_t)in;
    uintptr_t o = (uintptr_t)out;

    if (size == 0 || i == o) {
        return false;
    }
    return i < o ? o - i < size : i - o < size;
}

/* Everything but the context and the key, so the one-shot forms can check before keying. */
static enum clst_status
check_args(const uint8_t *nonce, size_t nonce_size, const uint8_t *aad, size_t aad_size,
           const uint8_t *in, size_t in_size, const uint8_t *out, const uint8_t *tag,
           size_t tag_size)
{
    if (nonce == NULL || nonce_size == 0 || nonce_size > GCM_MAX_NONCE_SIZE || tag == NULL ||
        tag_size < CLST_GCM_MIN_TAG_SIZE || tag_size > CLST_GCM_TAG_SIZE ||
        (aad == NULL && aad_size > 0) || (in_size > 0 && (in == NULL || out == NULL))) {
        return CLST_E_INVAL;
    }
    if (overlaps_partially(in, out, in_size)) {
        return CLST_E_INVAL;
    }
    if ((uint64_t)in_size > GCM_MAX_INPUT_SIZE) {
        return CLST_E_LIMIT;
    }
    return CLST_OK;
}

/* Re-arms the context for one message: same key, new nonce, direction `enc`. */
static bool
start(struct clst_aead *a, const uint8_t *nonce, size_t nonce_size, int enc)
{
    if (nonce_size != a->nonce_size) {
        size_t n = nonce_size;
        OSSL_PARAM params[2] = {
            OSSL_PARAM_construct_size_t(OSSL_CIPHER_PARAM_AEAD_IVLEN, &n),
            OSSL_PARAM_construct_end(),
        };
        if (EVP_CIPHER_CTX_set_params(a->ctx, params) != 1) {
            return false;
        }
        a->nonce_size = nonce_size;
    }
    return EVP_CipherInit_ex2(a->ctx, NULL, NULL, nonce, enc, NULL) == 1;
}

static bool
feed_aad(EVP_CIPHER_CTX *ctx, const uint8_t *aad, size_t size)
{
    while (size > 0) {
        size_t chunk = size < UPDATE_CHUNK_SIZE ? size : UPDATE_CHUNK_SIZE;
        int outl = 0;
        if (EVP_CipherUpdate(ctx, NULL, &outl, aad, (int)chunk) != 1) {
            return false;
        }
        aad += chunk;
        size -= chunk;
    }
    return true;
}

static bool
feed_data(EVP_CIPHER_CTX *ctx, const uint8_t *in, size_t size, uint8_t *out)
{
    while (size > 0) {
        size_t chunk = size < UPDATE_CHUNK_SIZE ? size : UPDATE_CHUNK_SIZE;
        int outl = 0;
        /* GCM is a stream mode: every input byte comes out at once. */
        if (EVP_CipherUpdate(ctx, out, &outl, in, (int)chunk) != 1 || outl < 0 ||
            (size_t)outl != chunk) {
            return false;
        }
        in += chunk;
        out += chunk;
        size -= chunk;
    }
    return true;
}

enum clst_status
clst_aead_seal(struct clst_aead *a, const uint8_t *nonce, size_t nonce_size, const uint8_t *aad,
               size_t aad_size, const uint8_t *in, size_t in_size, uint8_t *out, uint8_t *tag,
               size_t tag_size)
{
    enum clst_status rc =
        check_args(nonce, nonce_size, aad, aad_size, in, in_size, out, tag, tag_size);
    uint8_t final_block[CLST_GCM_TAG_SIZE];
    int outl = 0;
    OSSL_PARAM params[2];

    if (a == NULL) {
        return CLST_E_INVAL;
    }
    if (rc != CLST_OK) {
        return rc;
    }
    rc = CLST_E_CRYPTO;
    if (!start(a, nonce, nonce_size, 1) || !feed_aad(a->ctx, aad, aad_size) ||
        !feed_data(a->ctx, in, in_size, out)) {
        goto out;
    }
    if (EVP_CipherFinal_ex(a->ctx, final_block, &outl) != 1 || outl != 0) {
        goto out;
    }
    /* A shorter tag is the leading tag_size bytes of the full one (SP 800-38D 5.2.1.2). */
    params[0] = OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, tag, tag_size);
    params[1] = OSSL_PARAM_construct_end();
    if (EVP_CIPHER_CTX_get_params(a->ctx, params) != 1) {
        goto out;
    }
    rc = CLST_OK;
out:
    return rc;
}

enum clst_status
clst_aead_open(struct clst_aead *a, const uint8_t *nonce, size_t nonce_size, const uint8_t *aad,
               size_t aad_size, const uint8_t *in, size_t in_size, const uint8_t *tag,
               size_t tag_size, uint8_t *out)
{
    enum clst_status rc =
        check_args(nonce, nonce_size, aad, aad_size, in, in_size, out, tag, tag_size);
    uint8_t expected[CLST_GCM_TAG_SIZE]; /* a writable copy: OSSL_PARAM takes a void * */
    uint8_t final_block[CLST_GCM_TAG_SIZE];
    int outl = 0;
    OSSL_PARAM params[2];

    if (a == NULL) {
        return CLST_E_INVAL;
    }
    if (rc != CLST_OK) {
        return rc;
    }
    rc = CLST_E_CRYPTO;
    memcpy(expected, tag, tag_size);
    if (!start(a, nonce, nonce_size, 0)) {
        goto out;
    }
    params[0] = OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, expected, tag_size);
    params[1] = OSSL_PARAM_construct_end();
    if (EVP_CIPHER_CTX_set_params(a->ctx, params) != 1 || !feed_aad(a->ctx, aad, aad_size) ||
        !feed_data(a->ctx, in, in_size, out)) {
        goto out;
    }
    /* The provider compares the computed tag with `expected` (CRYPTO_memcmp, tag_size bytes). */
    if (EVP_CipherFinal_ex(a->ctx, final_block, &outl) != 1 || outl != 0) {
        rc = CLST_E_VERIFY;
        goto out;
    }
    rc = CLST_OK;
out:
    if (rc != CLST_OK && in_size > 0) {
        /* Unauthenticated plaintext never reaches the caller. */
        OPENSSL_cleanse(out, in_size);
    }
    return rc;
}

enum clst_status
clst_aes_gcm_seal(const uint8_t *key, size_t key_size, const uint8_t *nonce, size_t nonce_size,
                  const uint8_t *aad, size_t aad_size, const uint8_t *in, size_t in_size,
                  uint8_t *out, uint8_t *tag, size_t tag_size)
{
    struct clst_aead *a = NULL;
    /* Argument errors are reported before any key schedule is computed. */
    enum clst_status rc =
        check_args(nonce, nonce_size, aad, aad_size, in, in_size, out, tag, tag_size);

    if (rc != CLST_OK) {
        return rc;
    }
    rc = clst_aead_new(key, key_size, &a);
    if (rc != CLST_OK) {
        goto out;
    }
    rc = clst_aead_seal(a, nonce, nonce_size, aad, aad_size, in, in_size, out, tag, tag_size);
out:
    clst_aead_free(a);
    return rc;
}

enum clst_status
clst_aes_gcm_open(const uint8_t *key, size_t key_size, const uint8_t *nonce, size_t nonce_size,
                  const uint8_t *aad, size_t aad_size, const uint8_t *in, size_t in_size,
                  const uint8_t *tag, size_t tag_size, uint8_t *out)
{
    struct clst_aead *a = NULL;
    enum clst_status rc =
        check_args(nonce, nonce_size, aad, aad_size, in, in_size, out, tag, tag_size);

    if (rc != CLST_OK) {
        return rc;
    }
    rc = clst_aead_new(key, key_size, &a);
    if (rc != CLST_OK) {
        goto out;
    }
    rc = clst_aead_open(a, nonce, nonce_size, aad, aad_size, in, in_size, tag, tag_size, out);
out:
    clst_aead_free(a);
    return rc;
}
