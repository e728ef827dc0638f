/*
 * ECDSA (P-256/384/521) with DER or raw r||s signatures, ECDH, and uncompressed EC points.
 *
 * Signature encodings are untrusted input and are checked strictly before OpenSSL sees them:
 * - DER: exactly one ECDSA-Sig-Value in canonical DER (re-encoding must give the same bytes, so
 *   BER forms, leading zeros, negative integers and trailing bytes are refused);
 * - raw: exactly 2 * coordinate size bytes (64/96/132); r and s out of [1, n-1] are refused by
 *   OpenSSL's verification (checked in the tests).
 * A malformed encoding is CLST_E_VERIFY in the verify functions (it is an invalid signature) and
 * CLST_E_MALFORMED in the conversion functions.
 *
 * SHA-1 is refused for signatures.
 *
 * CT: signing and ECDH are OpenSSL's constant-time scalar multiplications; the conversions here
 * only touch public values.
 */
#include <cloister/crypto.h>

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/params.h>

#define EC_MAX_COORD 66
/* SEQUENCE { INTEGER r, INTEGER s } with 67-byte integers at most: well under 160 bytes. */
#define EC_MAX_DER_SIG 160

static const uint8_t empty_input[1];

/* Coordinate (and scalar) size in bytes of an EC key of a supported curve, else 0. */
static size_t
coord_size(const EVP_PKEY *key)
{
    switch (clst_pkey_kind(key)) {
    case CLST_KEY_EC_P256:
        return 32;
    case CLST_KEY_EC_P384:
        return 48;
    case CLST_KEY_EC_P521:
        return 66;
    case CLST_KEY_RSA:
    case CLST_KEY_UNKNOWN:
        break;
    }
    return 0;
}

static bool
valid_coord_size(size_t cs)
{
    return cs == 32 || cs == 48 || cs == 66;
}

/* OpenSSL's name of a signature hash (SHA-2 only). */
static const char *
sig_md_name(enum clst_hash h)
{
    return h == CLST_HASH_SHA1 ? NULL : clst_hash_name(h);
}

/* ---- signature encodings -------------------------------------------------------------------- */

/* Parses a canonical DER ECDSA-Sig-Value with nothing after it. */
static enum clst_status
parse_der(const uint8_t *der, size_t size, ECDSA_SIG **out)
{
    enum clst_status rc = CLST_E_MALFORMED;
    const unsigned char *p = der;
    unsigned char *enc = NULL;
    ECDSA_SIG *sig = NULL;
    const BIGNUM *r, *s;
    int len;

    if (der == NULL || size == 0 || size > EC_MAX_DER_SIG) {
        return CLST_E_MALFORMED;
    }
    sig = d2i_ECDSA_SIG(NULL, &p, (long)size);
    if (sig == NULL || (size_t)(p - der) != size) {
        goto out;
    }
    /* Canonical DER: re-encoding gives the same bytes (rules out BER lengths, padding). */
    len = i2d_ECDSA_SIG(sig, &enc);
    if (len <= 0 || (size_t)len != size || memcmp(enc, der, size) != 0) {
        goto out;
    }
    ECDSA_SIG_get0(sig, &r, &s);
    if (BN_is_negative(r) || BN_is_negative(s)) {
        goto out;
    }
    *out = sig;
    sig = NULL;
    rc = CLST_OK;
out:
    OPENSSL_free(enc);
    ECDSA_SIG_free(sig);
    ERR_clear_error();
    return rc;
}

/* DER-encodes r || s (each half of raw_size) into a new OPENSSL_malloc'ed buffer. */
static enum clst_status
raw_to_der(const uint8_t *raw, size_t raw_size, unsigned char **out, size_t *out_size)
{
    enum clst_status rc = CLST_E_CRYPTO;
    size_t half = raw_size / 2;
    ECDSA_SIG *sig = NULL;
    BIGNUM *r = NULL, *s = NULL;
    unsigned char *der = NULL;
    int len;

    sig = ECDSA_SIG_new();
    r = BN_bin2bn(raw, (int)half, NULL);
    s = BN_bin2bn(raw + half, (int)half, NULL);
    if (sig == NULL || r == NULL || s == NULL || ECDSA_SIG_set0(sig, r, s) != 1) {
        rc = CLST_E_NOMEM;
        goto out;
    }
    r = s = NULL; /* owned by sig */
    len = i2d_ECDSA_SIG(sig, &der);
    if (len <= 0) {
        goto out;
    }
    *out = der;
    *out_size = (size_t)len;
    der = NULL;
    rc = CLST_OK;
out:
    OPENSSL_free(der);
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(sig);
    ERR_clear_error();
    return rc;
}

/* Writes r || s, each padded to cs bytes, into raw (2 * cs bytes). */
static enum clst_status
sig_to_raw(const ECDSA_SIG *sig, size_t cs, uint8_t *raw)
{
    const BIGNUM *r, *s;

    ECDSA_SIG_get0(sig, &r, &s);
    if (BN_is_negative(r) || BN_is_negative(s) || (size_t)BN_num_bytes(r) > cs ||
        (size_t)BN_num_bytes(s) > cs) {
        return CLST_E_MALFORMED;
    }
    if (BN_bn2binpad(r, raw, (int)cs) != (int)cs || BN_bn2binpad(s, raw + cs, (int)cs) != (int)cs) {
        return CLST_E_CRYPTO;
    }
    return CLST_OK;
}

enum clst_status
clst_ecdsa_sig_raw_to_der(const uint8_t *raw, size_t raw_size, struct clst_buf *out)
{
    enum clst_status rc;
    unsigned char *der = NULL;
    size_t der_size = 0;

    if (raw == NULL || out == NULL || raw_size % 2 != 0 || !valid_coord_size(raw_size / 2)) {
        return CLST_E_INVAL;
    }
    rc = raw_to_der(raw, raw_size, &der, &der_size);
    if (rc == CLST_OK) {
        rc = clst_buf_append(out, der, der_size);
    }
    OPENSSL_free(der);
    return rc;
}

enum clst_status
clst_ecdsa_sig_der_to_raw(const uint8_t *der, size_t der_size, size_t coord_size,
                          struct clst_buf *out)
{
    enum clst_status rc;
    ECDSA_SIG *sig = NULL;
    uint8_t raw[2 * EC_MAX_COORD];

    if (der == NULL || out == NULL || !valid_coord_size(coord_size)) {
        return CLST_E_INVAL;
    }
    rc = parse_der(der, der_size, &sig);
    if (rc != CLST_OK) {
        return rc;
    }
    rc = sig_to_raw(sig, coord_size, raw);
    if (rc == CLST_OK) {
        rc = clst_buf_append(out, raw, 2 * coord_size);
    }
    ECDSA_SIG_free(sig);
    ERR_clear_error();
    return rc;
}

/*
 * Turns a signature in format fmt into strict DER for OpenSSL (a new OPENSSL_malloc'ed buffer).
 * CLST_E_VERIFY when the encoding is not acceptable.
 */
static enum clst_status
sig_to_der(enum clst_sig_format fmt, size_t cs, const uint8_t *sig, size_t sig_size,
           unsigned char **der, size_t *der_size)
{
    ECDSA_SIG *parsed = NULL;
    enum clst_status rc;

    if (fmt == CLST_SIG_RAW) {
        if (sig == NULL || sig_size != 2 * cs) {
            return CLST_E_VERIFY;
        }
        return raw_to_der(sig, sig_size, der, der_size);
    }
    rc = parse_der(sig, sig_size, &parsed);
    ECDSA_SIG_free(parsed);
    if (rc != CLST_OK) {
        return CLST_E_VERIFY;
    }
    *der = OPENSSL_memdup(sig, sig_size);
    *der_size = sig_size;
    return *der != NULL ? CLST_OK : CLST_E_NOMEM;
}

/* ---- sign and verify ------------------------------------------------------------------------ */

enum clst_status
clst_ecdsa_sign(EVP_PKEY *key, enum clst_hash h, enum clst_sig_format fmt, const void *msg,
                size_t msg_size, struct clst_buf *out)
{
    enum clst_status rc = CLST_E_CRYPTO;
    EVP_MD_CTX *mdctx = NULL;
    ECDSA_SIG *sig = NULL;
    size_t cs = coord_size(key);
    const char *md = sig_md_name(h);
    uint8_t der[EC_MAX_DER_SIG];
    uint8_t raw[2 * EC_MAX_COORD];
    size_t der_size = sizeof(der);

    if (cs == 0 || md == NULL || out == NULL || (msg == NULL && msg_size > 0) ||
        (fmt != CLST_SIG_DER && fmt != CLST_SIG_RAW) || !clst_pkey_has_private(key)) {
        return CLST_E_INVAL;
    }
    if (EVP_PKEY_get_size(key) <= 0 || (size_t)EVP_PKEY_get_size(key) > sizeof(der)) {
        return CLST_E_INTERNAL;
    }
    mdctx = EVP_MD_CTX_new();
    if (mdctx == NULL) {
        rc = CLST_E_NOMEM;
        goto out;
    }
    if (EVP_DigestSignInit_ex(mdctx, NULL, md, NULL, NULL, key, NULL) != 1 ||
        EVP_DigestSign(mdctx, der, &der_size, msg != NULL ? msg : empty_input, msg_size) != 1) {
        goto out;
    }
    if (fmt == CLST_SIG_DER) {
        rc = clst_buf_append(out, der, der_size);
        goto out;
    }
    rc = parse_der(der, der_size, &sig);
    if (rc != CLST_OK) {
        rc = CLST_E_CRYPTO;
        goto out;
    }
    rc = sig_to_raw(sig, cs, raw);
    if (rc == CLST_OK) {
        rc = clst_buf_append(out, raw, 2 * cs);
    }
out:
    ECDSA_SIG_free(sig);
    EVP_MD_CTX_free(mdctx);
    ERR_clear_error();
    return rc;
}

enum clst_status
clst_ecdsa_verify(EVP_PKEY *key, enum clst_hash h, enum clst_sig_format fmt, const void *msg,
                  size_t msg_size, const uint8_t *sig, size_t sig_size)
{
    enum clst_status rc;
    EVP_MD_CTX *mdctx = NULL;
    size_t cs = coord_size(key);
    const char *md = sig_md_name(h);
    unsigned char *der = NULL;
    size_t der_size = 0;

    if (cs == 0 || md == NULL || (msg == NULL && msg_size > 0) ||
        (fmt != CLST_SIG_DER && fmt != CLST_SIG_RAW)) {
        return CLST_E_INVAL;
    }
    rc = sig_to_der(fmt, cs, sig, sig_size, &der, &der_size);
    if (rc != CLST_OK) {
        goto out;
    }
    rc = CLST_E_CRYPTO;
    mdctx = EVP_MD_CTX_new();
    if (mdctx == NULL) {
        rc = CLST_E_NOMEM;
        goto out;
    }
    if (EVP_DigestVerifyInit_ex(mdctx, NULL, md, NULL, NULL, key, NULL) != 1) {
        goto out;
    }
    rc = EVP_DigestVerify(mdctx, der, der_size, msg != NULL ? msg : empty_input, msg_size) == 1
             ? CLST_OK
             : CLST_E_VERIFY;
out:
    OPENSSL_free(der);
    EVP_MD_CTX_free(mdctx);
    ERR_clear_error();
    return rc;
}

enum clst_status
clst_ecdsa_verify_digest(EVP_PKEY *key, enum clst_sig_format fmt, const uint8_t *digest,
                         size_t digest_size, const uint8_t *sig, size_t sig_size)
{
    enum clst_status rc;
    EVP_PKEY_CTX *ctx = NULL;
    size_t cs = coord_size(key);
    unsigned char *der = NULL;
    size_t der_size = 0;

    /* Digests of SHA-256/384/512 only. */
    if (cs == 0 || digest == NULL ||
        (digest_size != CLST_SHA256_SIZE && digest_size != CLST_SHA384_SIZE &&
         digest_size != CLST_SHA512_SIZE) ||
        (fmt != CLST_SIG_DER && fmt != CLST_SIG_RAW)) {
        return CLST_E_INVAL;
    }
    rc = sig_to_der(fmt, cs, sig, sig_size, &der, &der_size);
    if (rc != CLST_OK) {
        goto out;
    }
    rc = CLST_E_CRYPTO;
    ctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
    if (ctx == NULL || EVP_PKEY_verify_init(ctx) != 1) {
        goto out;
    }
    rc = EVP_PKEY_verify(ctx, der, der_size, digest, digest_size) == 1 ? CLST_OK : CLST_E_VERIFY;
out:
    OPENSSL_free(der);
    EVP_PKEY_CTX_free(ctx);
    ERR_clear_error();
    return rc;
}

/* ---- ECDH and points ------------------------------------------------------------------------ */

enum clst_status
clst_ecdh(EVP_PKEY *priv, EVP_PKEY *peer, struct clst_buf *out)
{
    enum clst_status rc = CLST_E_CRYPTO;
    EVP_PKEY_CTX *ctx = NULL;
    uint8_t secret[EC_MAX_COORD];
    size_t cs = coord_size(priv);
    size_t len = sizeof(secret);

    if (cs == 0 || out == NULL || clst_pkey_kind(peer) != clst_pkey_kind(priv) ||
        !clst_pkey_has_private(priv)) {
        return CLST_E_INVAL;
    }
    ctx = EVP_PKEY_CTX_new_from_pkey(NULL, priv, NULL);
    if (ctx == NULL || EVP_PKEY_derive_init(ctx) != 1) {
        goto out;
    }
    /* validate_peer = 1: the peer's point is checked (on the curve, not the identity). */
    if (EVP_PKEY_derive_set_peer_ex(ctx, peer, 1) != 1) {
        rc = CLST_E_MALFORMED;
        goto out;
    }
    if (EVP_PKEY_derive(ctx, secret, &len) != 1 || len != cs) {
        goto out;
    }
    rc = clst_buf_append(out, secret, len);
out:
    OPENSSL_cleanse(secret, sizeof(secret));
    EVP_PKEY_CTX_free(ctx);
    ERR_clear_error();
    return rc;
}

enum clst_status
clst_ec_point_encode(const EVP_PKEY *key, struct clst_buf *out)
{
    enum clst_status rc = CLST_E_CRYPTO;
    BIGNUM *x = NULL, *y = NULL;
    uint8_t point[1 + 2 * EC_MAX_COORD];
    size_t cs = coord_size(key);

    if (cs == 0 || out == NULL) {
        return CLST_E_INVAL;
    }
    if (EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_X, &x) != 1 ||
        EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_Y, &y) != 1) {
        goto out;
    }
    point[0] = 0x04;
    if (BN_bn2binpad(x, point + 1, (int)cs) != (int)cs ||
        BN_bn2binpad(y, point + 1 + cs, (int)cs) != (int)cs) {
        goto out;
    }
    rc = clst_buf_append(out, point, 1 + 2 * cs);
out:
    BN_free(x);
    BN_free(y);
    ERR_clear_error();
    return rc;
}

enum clst_status
clst_ec_point_decode(enum clst_curve curve, const uint8_t *point, size_t size, EVP_PKEY **out)
{
    enum clst_status rc = CLST_E_MALFORMED;
    char group[16];
    uint8_t buf[1 + 2 * EC_MAX_COORD];
    size_t cs;
    OSSL_PARAM params[3];
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY_CTX *check = NULL;
    EVP_PKEY *key = NULL;

    switch (curve) {
    case CLST_CURVE_P256:
        cs = 32;
        memcpy(group, "prime256v1", sizeof("prime256v1"));
        break;
    case CLST_CURVE_P384:
        cs = 48;
        memcpy(group, "secp384r1", sizeof("secp384r1"));
        break;
    case CLST_CURVE_P521:
        cs = 66;
        memcpy(group, "secp521r1", sizeof("secp521r1"));
        break;
    default:
        return CLST_E_INVAL;
    }
    if (point == NULL || out == NULL) {
        return CLST_E_INVAL;
    }
    /* Uncompressed only: 0x04 || X || Y (no compressed, hybrid or infinity encodings). */
    if (size != 1 + 2 * cs || point[0] != 0x04) {
        return CLST_E_MALFORMED;
    }
    memcpy(buf, point, size);
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0);
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, buf, size);
    params[2] = OSSL_PARAM_construct_end();
    ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1) {
        rc = CLST_E_CRYPTO;
        goto out;
    }
    /* Fails for coordinates >= p and points off the curve. */
    if (EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) != 1 || key == NULL) {
        goto out;
    }
    check = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
    if (check == NULL) {
        rc = CLST_E_NOMEM;
        goto out;
    }
    if (EVP_PKEY_public_check(check) != 1) {
        goto out;
    }
    *out = key;
    key = NULL;
    rc = CLST_OK;
out:
    EVP_PKEY_free(key);
    EVP_PKEY_CTX_free(check);
    EVP_PKEY_CTX_free(ctx);
    ERR_clear_error();
    return rc;
}
