/*
 * SHA-1/SHA-2 digests (one-shot and incremental) and HMAC over EVP_MAC.
 *
 * CT: digest and HMAC computations are OpenSSL's constant-time implementations; nothing here
 * branches on the data or the key, only on sizes.
 */
#include <cloister/crypto.h>

#include <string.h>

#include <openssl/core_names.h>
#include <openssl/params.h>

#include "crypto/fetch_int.h"

size_t
clst_hash_size(enum clst_hash h)
{
    switch (h) {
    case CLST_HASH_SHA1:
        return CLST_SHA1_SIZE;
    case CLST_HASH_SHA256:
        return CLST_SHA256_SIZE;
    case CLST_HASH_SHA384:
        return CLST_SHA384_SIZE;
    case CLST_HASH_SHA512:
        return CLST_SHA512_SIZE;
    }
    return 0;
}

const char *
clst_hash_name(enum clst_hash h)
{
    switch (h) {
    case CLST_HASH_SHA1:
        return "SHA1";
    case CLST_HASH_SHA256:
        return "SHA256";
    case CLST_HASH_SHA384:
        return "SHA384";
    case CLST_HASH_SHA512:
        return "SHA512";
    }
    return NULL;
}

const EVP_MD *
clst_hash_md(enum clst_hash h)
{
    const EVP_MD *md = clst_fetched_md(h); /* fetched once: no provider lookup per use */
    if (md != NULL) {
        return md;
    }
    switch (h) {
    case CLST_HASH_SHA1:
        return EVP_sha1();
    case CLST_HASH_SHA256:
        return EVP_sha256();
    case CLST_HASH_SHA384:
        return EVP_sha384();
    case CLST_HASH_SHA512:
        return EVP_sha512();
    }
    return NULL;
}

enum clst_status
clst_hash(enum clst_hash h, const void *data, size_t size, uint8_t *out)
{
    const EVP_MD *md = clst_hash_md(h);
    unsigned int len = 0;

    if (md == NULL || out == NULL || (data == NULL && size > 0)) {
        return CLST_E_INVAL;
    }
    if (EVP_Digest(data, size, out, &len, md, NULL) != 1) {
        return CLST_E_CRYPTO;
    }
    if (len != clst_hash_size(h)) {
        return CLST_E_INTERNAL;
    }
    return CLST_OK;
}

enum clst_status
clst_sha256(const void *data, size_t size, uint8_t out[static CLST_SHA256_SIZE])
{
    return clst_hash(CLST_HASH_SHA256, data, size, out);
}

enum clst_status
clst_hash_init(struct clst_hash_ctx *ctx, enum clst_hash h)
{
    enum clst_status rc = CLST_E_CRYPTO;
    const EVP_MD *md = clst_hash_md(h);
    EVP_MD_CTX *mctx = NULL;

    if (ctx == NULL || md == NULL) {
        return CLST_E_INVAL;
    }
    mctx = EVP_MD_CTX_new();
    if (mctx == NULL) {
        rc = CLST_E_NOMEM;
        goto out;
    }
    if (EVP_DigestInit_ex(mctx, md, NULL) != 1) {
        goto out;
    }
    ctx->md = mctx;
    ctx->h = h;
    mctx = NULL;
    rc = CLST_OK;
out:
    EVP_MD_CTX_free(mctx);
    return rc;
}

enum clst_status
clst_hash_update(struct clst_hash_ctx *ctx, const void *data, size_t size)
{
    if (ctx == NULL || ctx->md == NULL || (data == NULL && size > 0)) {
        return CLST_E_INVAL;
    }
    if (size == 0) {
        return CLST_OK;
    }
    if (EVP_DigestUpdate(ctx->md, data, size) != 1) {
        return CLST_E_CRYPTO;
    }
    return CLST_OK;
}

enum clst_status
clst_hash_final(struct clst_hash_ctx *ctx, uint8_t *out)
{
    enum clst_status rc = CLST_E_CRYPTO;
    unsigned int len = 0;

    if (ctx == NULL || ctx->md == NULL || out == NULL) {
        return CLST_E_INVAL;
    }
    if (EVP_DigestFinal_ex(ctx->md, out, &len) != 1) {
        goto out;
    }
    if (len != clst_hash_size(ctx->h)) {
        rc = CLST_E_INTERNAL;
        goto out;
    }
    rc = CLST_OK;
out:
    /* The context is released whatever happened, so a failed final cannot leak it. */
    clst_hash_cleanup(ctx);
    return rc;
}

void
clst_hash_cleanup(struct clst_hash_ctx *ctx)
{
    if (ctx == NULL) {
        return;
    }
    EVP_MD_CTX_free(ctx->md); /* also wipes the hash state */
    ctx->md = NULL;
}

enum clst_status
clst_hmac(enum clst_hash h, const uint8_t *key, size_t key_size, const void *data, size_t size,
          uint8_t *out)
{
    /* OpenSSL's HMAC treats a NULL key as "keep the previous key" and then fails on a fresh
     * context; an empty key is legitimate (RFC 2104), so it is passed as a valid pointer. */
    static const uint8_t empty[1] = {0};
    enum clst_status rc = CLST_E_CRYPTO;
    const char *name = clst_hash_name(h);
    size_t hsize = clst_hash_size(h);
    EVP_MAC *mac = NULL;
    EVP_MAC_CTX *mctx = NULL;
    size_t len = 0;
    char digest[16]; /* OSSL_PARAM wants a non-const string; OpenSSL only reads it */
    OSSL_PARAM params[2];

    if (name == NULL || out == NULL || (key == NULL && key_size > 0) ||
        (data == NULL && size > 0)) {
        return CLST_E_INVAL;
    }
    EVP_MAC *shared = clst_fetched_hmac();
    if (shared == NULL && (mac = EVP_MAC_fetch(NULL, "HMAC", NULL)) == NULL) {
        goto out;
    }
    mctx = EVP_MAC_CTX_new(shared != NULL ? shared : mac);
    if (mctx == NULL) {
        rc = CLST_E_NOMEM;
        goto out;
    }
    memcpy(digest, name, strlen(name) + 1); /* names are at most 6 characters */
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0);
    params[1] = OSSL_PARAM_construct_end();
    if (EVP_MAC_init(mctx, key_size > 0 ? key : empty, key_size, params) != 1) {
        goto out;
    }
    if (size > 0 && EVP_MAC_update(mctx, data, size) != 1) {
        goto out;
    }
    if (EVP_MAC_final(mctx, out, &len, hsize) != 1) {
        goto out;
    }
    if (len != hsize) {
        rc = CLST_E_INTERNAL;
        goto out;
    }
    rc = CLST_OK;
out:
    EVP_MAC_CTX_free(mctx); /* wipes the keyed state */
    EVP_MAC_free(mac);
    return rc;
}
