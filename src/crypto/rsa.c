/*
 * RSA encryption (OAEP; PKCS#1 v1.5 for interoperability only) and signatures (PKCS#1 v1.5,
 * PSS) over EVP_PKEY with OSSL_PARAM settings.
 *
 * Every failure to decrypt or verify after the operation was set up is CLST_E_VERIFY, with no
 * distinction between causes (wrong length, bad padding, bad signature), so that callers cannot
 * build a padding oracle from our return codes. Ciphertexts and signatures must be exactly the
 * modulus size (RFC 8017 7.1.2 step 1, 8.2.2 step 1).
 *
 * SHA-1 is accepted for OAEP only (CKM_RSA_AES_KEY_WRAP and JWE "RSA-OAEP" require it); signatures
 * use SHA-256/384/512.
 *
 * CT: padding checks are OpenSSL's constant-time implementations. PKCS#1 v1.5 decryption with
 * explicit errors is inherently an oracle risk (Bleichenbacher); it exists only for the vault's
 * "RSA1_5" interoperability. Where OpenSSL offers implicit rejection (3.2+) it is turned off so
 * that the function keeps its documented behaviour (CLST_E_VERIFY on bad padding).
 */
#include <cloister/crypto.h>

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <openssl/params.h>
#include <openssl/rsa.h>

#define MD_NAME_CAP 16

enum clst_status
clst_rsa_public_from_ne(const uint8_t *n_be, size_t n_size, uint32_t e_word, EVP_PKEY **out)
{
    enum clst_status rc = CLST_E_CRYPTO;
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    BIGNUM *n = NULL, *e = NULL;
    EVP_PKEY *key = NULL;

    if (n_be == NULL || n_size == 0 || n_size > INT_MAX || out == NULL) {
        return CLST_E_INVAL;
    }
    n = BN_bin2bn(n_be, (int)n_size, NULL);
    e = BN_new();
    bld = OSSL_PARAM_BLD_new();
    ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    if (n != NULL && e != NULL && bld != NULL && ctx != NULL && BN_set_word(e, e_word) == 1 &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) == 1 &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) == 1 &&
        (params = OSSL_PARAM_BLD_to_param(bld)) != NULL && EVP_PKEY_fromdata_init(ctx) == 1 &&
        EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) == 1) {
        *out = key;
        key = NULL;
        rc = CLST_OK;
    }
    EVP_PKEY_free(key);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(e);
    ERR_clear_error();
    return rc;
}

/* Modulus size in bytes of an RSA key, or 0 when key is not an RSA key. */
static size_t
rsa_size(const EVP_PKEY *key)
{
    int size;

    if (clst_pkey_kind(key) != CLST_KEY_RSA) {
        return 0;
    }
    size = EVP_PKEY_get_size(key);
    return size > 0 ? (size_t)size : 0;
}

/* Copies OpenSSL's name for h into buf; false for an unknown h, or SHA-1 unless allowed. */
static bool
md_name(enum clst_hash h, bool allow_sha1, char buf[static MD_NAME_CAP])
{
    const char *name = clst_hash_name(h);

    if (name == NULL || (h == CLST_HASH_SHA1 && !allow_sha1) || strlen(name) >= MD_NAME_CAP) {
        return false;
    }
    memcpy(buf, name, strlen(name) + 1);
    return true;
}

/* OpenSSL must not be handed a NULL pointer even for empty input. */
static const uint8_t empty_input[1];

/* ---- encryption ----------------------------------------------------------------------------- */

/*
 * Encrypts or decrypts with the given padding parameters. For decryption, the plaintext is
 * produced in secret memory and every failure of the operation itself is CLST_E_VERIFY.
 */
static enum clst_status
rsa_crypt(EVP_PKEY *key, bool decrypt, const OSSL_PARAM *params, const uint8_t *in, size_t in_size,
          struct clst_buf *out)
{
    enum clst_status rc = CLST_E_CRYPTO;
    EVP_PKEY_CTX *ctx = NULL;
    size_t k = rsa_size(key);
    uint8_t *tmp = NULL;
    size_t tmp_size = 0;

    ctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
    if (ctx == NULL) {
        rc = CLST_E_NOMEM;
        goto out;
    }
    if ((decrypt ? EVP_PKEY_decrypt_init_ex(ctx, params) : EVP_PKEY_encrypt_init_ex(ctx, params)) !=
        1) {
        goto out;
    }
    tmp = decrypt ? clst_secret_alloc_raw(k) : malloc(k);
    if (tmp == NULL) {
        rc = CLST_E_NOMEM;
        goto out;
    }
    tmp_size = k;
    if (decrypt) {
        if (EVP_PKEY_decrypt(ctx, tmp, &tmp_size, in, in_size) != 1 || tmp_size > k) {
            tmp_size = 0;
            rc = CLST_E_VERIFY;
            goto out;
        }
    } else if (EVP_PKEY_encrypt(ctx, tmp, &tmp_size, in, in_size) != 1 || tmp_size != k) {
        tmp_size = 0;
        goto out;
    }
    rc = clst_buf_append(out, tmp, tmp_size);
out:
    if (tmp != NULL) {
        if (decrypt) {
            clst_secret_free_raw(tmp, k); /* wipes */
        } else {
            free(tmp);
        }
    }
    EVP_PKEY_CTX_free(ctx);
    ERR_clear_error();
    return rc;
}

/* OAEP padding parameters: hash h for the label and for MGF1. */
static void
oaep_params(OSSL_PARAM params[4], char pad[static 8], char md[static MD_NAME_CAP])
{
    memcpy(pad, OSSL_PKEY_RSA_PAD_MODE_OAEP, sizeof(OSSL_PKEY_RSA_PAD_MODE_OAEP));
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_ASYM_CIPHER_PARAM_PAD_MODE, pad, 0);
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST, md, 0);
    params[2] = OSSL_PARAM_construct_utf8_string(OSSL_ASYM_CIPHER_PARAM_MGF1_DIGEST, md, 0);
    params[3] = OSSL_PARAM_construct_end();
}

enum clst_status
clst_rsa_oaep_encrypt(EVP_PKEY *key, enum clst_hash h, const uint8_t *in, size_t in_size,
                      struct clst_buf *out)
{
    char pad[8], md[MD_NAME_CAP];
    OSSL_PARAM params[4];
    size_t k = rsa_size(key);
    size_t hlen = clst_hash_size(h);

    if (k == 0 || out == NULL || (in == NULL && in_size > 0) || !md_name(h, true, md)) {
        return CLST_E_INVAL;
    }
    if (k < 2 * hlen + 2) {
        return CLST_E_INVAL;
    }
    if (in_size > k - 2 * hlen - 2) {
        return CLST_E_LIMIT; /* RFC 8017 7.1.1: mLen <= k - 2hLen - 2 */
    }
    oaep_params(params, pad, md);
    return rsa_crypt(key, false, params, in != NULL ? in : empty_input, in_size, out);
}

enum clst_status
clst_rsa_oaep_decrypt(EVP_PKEY *key, enum clst_hash h, const uint8_t *in, size_t in_size,
                      struct clst_buf *out)
{
    char pad[8], md[MD_NAME_CAP];
    OSSL_PARAM params[4];
    size_t k = rsa_size(key);

    if (k == 0 || out == NULL || (in == NULL && in_size > 0) || !md_name(h, true, md) ||
        !clst_pkey_has_private(key)) {
        return CLST_E_INVAL;
    }
    if (in_size != k) {
        return CLST_E_VERIFY;
    }
    oaep_params(params, pad, md);
    return rsa_crypt(key, true, params, in, in_size, out);
}

enum clst_status
clst_rsa_pkcs1_encrypt(EVP_PKEY *key, const uint8_t *in, size_t in_size, struct clst_buf *out)
{
    char pad[] = OSSL_PKEY_RSA_PAD_MODE_PKCSV15;
    OSSL_PARAM params[2];
    size_t k = rsa_size(key);

    if (k == 0 || out == NULL || (in == NULL && in_size > 0)) {
        return CLST_E_INVAL;
    }
    if (k < 11 || in_size > k - 11) {
        return CLST_E_LIMIT; /* RFC 8017 7.2.1: mLen <= k - 11 */
    }
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_ASYM_CIPHER_PARAM_PAD_MODE, pad, 0);
    params[1] = OSSL_PARAM_construct_end();
    return rsa_crypt(key, false, params, in != NULL ? in : empty_input, in_size, out);
}

enum clst_status
clst_rsa_pkcs1_decrypt(EVP_PKEY *key, const uint8_t *in, size_t in_size, struct clst_buf *out)
{
    char pad[] = OSSL_PKEY_RSA_PAD_MODE_PKCSV15;
    OSSL_PARAM params[3];
    size_t n = 0;
    size_t k = rsa_size(key);

    if (k == 0 || out == NULL || (in == NULL && in_size > 0) || !clst_pkey_has_private(key)) {
        return CLST_E_INVAL;
    }
    if (in_size != k) {
        return CLST_E_VERIFY;
    }
    params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_ASYM_CIPHER_PARAM_PAD_MODE, pad, 0);
#ifdef OSSL_ASYM_CIPHER_PARAM_IMPLICIT_REJECTION
    unsigned int implicit = 0;
    params[n++] = OSSL_PARAM_construct_uint(OSSL_ASYM_CIPHER_PARAM_IMPLICIT_REJECTION, &implicit);
#endif
    params[n] = OSSL_PARAM_construct_end();
    return rsa_crypt(key, true, params, in, in_size, out);
}

/* ---- signatures ----------------------------------------------------------------------------- */

static enum clst_status
rsa_sign(EVP_PKEY *key, const char *md, const OSSL_PARAM *params, const void *msg, size_t msg_size,
         struct clst_buf *out)
{
    enum clst_status rc = CLST_E_CRYPTO;
    EVP_MD_CTX *mdctx = NULL;
    size_t k = rsa_size(key);
    uint8_t *sig = NULL;
    size_t sig_size = k;

    mdctx = EVP_MD_CTX_new();
    sig = malloc(k);
    if (mdctx == NULL || sig == NULL) {
        rc = CLST_E_NOMEM;
        goto out;
    }
    if (EVP_DigestSignInit_ex(mdctx, NULL, md, NULL, NULL, key, params) != 1 ||
        EVP_DigestSign(mdctx, sig, &sig_size, msg, msg_size) != 1 || sig_size != k) {
        goto out;
    }
    rc = clst_buf_append(out, sig, sig_size);
out:
    free(sig);
    EVP_MD_CTX_free(mdctx);
    ERR_clear_error();
    return rc;
}

static enum clst_status
rsa_verify(EVP_PKEY *key, const char *md, const OSSL_PARAM *params, const void *msg,
           size_t msg_size, const uint8_t *sig, size_t sig_size)
{
    enum clst_status rc = CLST_E_CRYPTO;
    EVP_MD_CTX *mdctx = NULL;

    if (sig_size != rsa_size(key)) {
        return CLST_E_VERIFY;
    }
    mdctx = EVP_MD_CTX_new();
    if (mdctx == NULL) {
        rc = CLST_E_NOMEM;
        goto out;
    }
    if (EVP_DigestVerifyInit_ex(mdctx, NULL, md, NULL, NULL, key, params) != 1) {
        goto out;
    }
    /* 0 is a bad signature, < 0 a malformed one: both are "invalid" to the caller. */
    rc = EVP_DigestVerify(mdctx, sig, sig_size, msg, msg_size) == 1 ? CLST_OK : CLST_E_VERIFY;
out:
    EVP_MD_CTX_free(mdctx);
    ERR_clear_error();
    return rc;
}

enum clst_status
clst_rsa_pkcs1_sign(EVP_PKEY *key, enum clst_hash h, const void *msg, size_t msg_size,
                    struct clst_buf *out)
{
    char pad[] = OSSL_PKEY_RSA_PAD_MODE_PKCSV15, md[MD_NAME_CAP];
    OSSL_PARAM params[2];

    if (rsa_size(key) == 0 || out == NULL || (msg == NULL && msg_size > 0) ||
        !md_name(h, false, md) || !clst_pkey_has_private(key)) {
        return CLST_E_INVAL;
    }
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_SIGNATURE_PARAM_PAD_MODE, pad, 0);
    params[1] = OSSL_PARAM_construct_end();
    return rsa_sign(key, md, params, msg != NULL ? msg : empty_input, msg_size, out);
}

enum clst_status
clst_rsa_pkcs1_verify(EVP_PKEY *key, enum clst_hash h, const void *msg, size_t msg_size,
                      const uint8_t *sig, size_t sig_size)
{
    char pad[] = OSSL_PKEY_RSA_PAD_MODE_PKCSV15, md[MD_NAME_CAP];
    OSSL_PARAM params[2];

    if (rsa_size(key) == 0 || (msg == NULL && msg_size > 0) || (sig == NULL && sig_size > 0) ||
        !md_name(h, false, md)) {
        return CLST_E_INVAL;
    }
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_SIGNATURE_PARAM_PAD_MODE, pad, 0);
    params[1] = OSSL_PARAM_construct_end();
    return rsa_verify(key, md, params, msg != NULL ? msg : empty_input, msg_size, sig, sig_size);
}

/* PSS parameters; false when the salt cannot fit the key (RFC 8017 9.1.1 step 3). */
static bool
pss_params(OSSL_PARAM params[4], char pad[static 4], char md[static MD_NAME_CAP], int *salt,
           size_t salt_size, const EVP_PKEY *key, size_t hlen)
{
    int bits = clst_pkey_bits(key);
    /* emLen = ceil((modBits - 1) / 8); sLen <= emLen - hLen - 2. */
    size_t em_len = bits > 1 ? ((size_t)bits - 1 + 7) / 8 : 0;

    if (em_len < hlen + 2 || salt_size > em_len - hlen - 2 || salt_size > INT_MAX) {
        return false;
    }
    *salt = (int)salt_size;
    memcpy(pad, OSSL_PKEY_RSA_PAD_MODE_PSS, sizeof(OSSL_PKEY_RSA_PAD_MODE_PSS));
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_SIGNATURE_PARAM_PAD_MODE, pad, 0);
    params[1] = OSSL_PARAM_construct_int(OSSL_SIGNATURE_PARAM_PSS_SALTLEN, salt);
    params[2] = OSSL_PARAM_construct_utf8_string(OSSL_SIGNATURE_PARAM_MGF1_DIGEST, md, 0);
    params[3] = OSSL_PARAM_construct_end();
    return true;
}

enum clst_status
clst_rsa_pss_sign(EVP_PKEY *key, enum clst_hash h, size_t salt_size, const void *msg,
                  size_t msg_size, struct clst_buf *out)
{
    char pad[4], md[MD_NAME_CAP];
    OSSL_PARAM params[4];
    int salt;
    size_t k = rsa_size(key);

    if (k == 0 || out == NULL || (msg == NULL && msg_size > 0) || !md_name(h, false, md) ||
        !clst_pkey_has_private(key) ||
        !pss_params(params, pad, md, &salt, salt_size, key, clst_hash_size(h))) {
        return CLST_E_INVAL;
    }
    return rsa_sign(key, md, params, msg != NULL ? msg : empty_input, msg_size, out);
}

enum clst_status
clst_rsa_pss_verify(EVP_PKEY *key, enum clst_hash h, size_t salt_size, const void *msg,
                    size_t msg_size, const uint8_t *sig, size_t sig_size)
{
    char pad[4], md[MD_NAME_CAP];
    OSSL_PARAM params[4];
    int salt;
    size_t k = rsa_size(key);

    if (k == 0 || (msg == NULL && msg_size > 0) || (sig == NULL && sig_size > 0) ||
        !md_name(h, false, md) ||
        !pss_params(params, pad, md, &salt, salt_size, key, clst_hash_size(h))) {
        return CLST_E_INVAL;
    }
    return rsa_verify(key, md, params, msg != NULL ? msg : empty_input, msg_size, sig, sig_size);
}
