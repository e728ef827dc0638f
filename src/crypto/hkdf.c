/*
 * HKDF (RFC 5869) over EVP_KDF "HKDF", with the extract and expand steps available separately
 * (EVP_KDF_HKDF_MODE_EXTRACT_ONLY / EXPAND_ONLY) for formats that keep the PRK.
 *
 * CT: OpenSSL's HMAC is constant time in the key and data; only sizes influence control flow.
 */
#include <cloister/crypto.h>

#include <string.h>

#include <openssl/core_names.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

/* RFC 5869 section 2.3: L <= 255 * HashLen. */
#define HKDF_MAX_BLOCKS 255

/*
 * The one place where const is dropped, for clarity rather than hidden in a union:
 * OSSL_PARAM_construct_octet_string() takes a `void *` because OSSL_PARAM serves both
 * directions, but KDF inputs are only read (and copied) by OpenSSL. OpenSSL also rejects a NULL
 * pointer even for an empty string, so empty inputs point at a dummy byte.
 */
static void *
param_ptr(const uint8_t *p, size_t size)
{
    static const uint8_t empty_input[1];

    if (size == 0 || p == NULL) {
        return (void *)empty_input;
    }
    return (void *)p;
}

/*
 * One EVP_KDF derivation in `mode`. `key` is the IKM (extract) or the PRK (expand); salt is
 * used by extract only, info by expand only.
 */
static enum clst_status
derive(enum clst_hash h, int mode, const uint8_t *salt, size_t salt_size, const uint8_t *key,
       size_t key_size, const uint8_t *info, size_t info_size, uint8_t *out, size_t out_size)
{
    enum clst_status rc = CLST_E_CRYPTO;
    const char *name = clst_hash_name(h);
    EVP_KDF *kdf = NULL;
    EVP_KDF_CTX *kctx = NULL;
    char digest[16];
    OSSL_PARAM params[6];
    size_t n = 0;

    if (name == NULL) {
        return CLST_E_INVAL;
    }
    memcpy(digest, name, strlen(name) + 1); /* names are at most 6 characters */
    kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    if (kdf == NULL) {
        goto out;
    }
    kctx = EVP_KDF_CTX_new(kdf);
    if (kctx == NULL) {
        rc = CLST_E_NOMEM;
        goto out;
    }
    params[n++] = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode);
    params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0);
    params[n++] =
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, param_ptr(key, key_size), key_size);
    if (salt_size > 0) {
        /* An absent salt is HashLen zero bytes inside OpenSSL, as RFC 5869 says. */
        params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
                                                        param_ptr(salt, salt_size), salt_size);
    }
    if (info_size > 0) {
        params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO,
                                                        param_ptr(info, info_size), info_size);
    }
    params[n] = OSSL_PARAM_construct_end();
    if (EVP_KDF_derive(kctx, out, out_size, params) != 1) {
        OPENSSL_cleanse(out, out_size);
        goto out;
    }
    rc = CLST_OK;
out:
    EVP_KDF_CTX_free(kctx); /* wipes the copied key, salt and info */
    EVP_KDF_free(kdf);
    return rc;
}

enum clst_status
clst_hkdf_extract(enum clst_hash h, const uint8_t *salt, size_t salt_size, const uint8_t *ikm,
                  size_t ikm_size, uint8_t *prk)
{
    size_t hsize = clst_hash_size(h);

    if (hsize == 0 || prk == NULL || (salt == NULL && salt_size > 0) ||
        (ikm == NULL && ikm_size > 0)) {
        return CLST_E_INVAL;
    }
    return derive(h, EVP_KDF_HKDF_MODE_EXTRACT_ONLY, salt, salt_size, ikm, ikm_size, NULL, 0, prk,
                  hsize);
}

enum clst_status
clst_hkdf_expand(enum clst_hash h, const uint8_t *prk, size_t prk_size, const uint8_t *info,
                 size_t info_size, uint8_t *out, size_t out_size)
{
    size_t hsize = clst_hash_size(h);

    /* RFC 5869 section 2.3: the PRK is at least HashLen bytes (a shorter one is not the output
     * of extract, and is most likely a caller bug). */
    if (hsize == 0 || prk == NULL || prk_size < hsize || out == NULL || out_size == 0 ||
        (info == NULL && info_size > 0)) {
        return CLST_E_INVAL;
    }
    if (out_size > HKDF_MAX_BLOCKS * hsize) {
        return CLST_E_LIMIT;
    }
    return derive(h, EVP_KDF_HKDF_MODE_EXPAND_ONLY, NULL, 0, prk, prk_size, info, info_size, out,
                  out_size);
}

enum clst_status
clst_hkdf(enum clst_hash h, const uint8_t *salt, size_t salt_size, const uint8_t *ikm,
          size_t ikm_size, const uint8_t *info, size_t info_size, uint8_t *out, size_t out_size)
{
    enum clst_status rc = CLST_E_INVAL;
    uint8_t prk[CLST_HASH_MAX_SIZE];
    size_t hsize = clst_hash_size(h);

    /* Check everything (including the output limit) before deriving anything. */
    if (hsize == 0 || out == NULL || out_size == 0 || (salt == NULL && salt_size > 0) ||
        (ikm == NULL && ikm_size > 0) || (info == NULL && info_size > 0)) {
        return CLST_E_INVAL;
    }
    if (out_size > HKDF_MAX_BLOCKS * hsize) {
        return CLST_E_LIMIT;
    }
    rc = clst_hkdf_extract(h, salt, salt_size, ikm, ikm_size, prk);
    if (rc != CLST_OK) {
        goto out;
    }
    rc = clst_hkdf_expand(h, prk, hsize, info, info_size, out, out_size);
out:
    OPENSSL_cleanse(prk, sizeof(prk));
    return rc;
}
