/*
 * Asymmetric keys as EVP_PKEY: kind and size queries, generation, and PEM/DER import/export over
 * OSSL_DECODER / OSSL_ENCODER (no deprecated RSA_* / EC_KEY_* calls).
 *
 * Imported keys are untrusted input: only RSA (2048..8192 bits) and EC keys on P-256/P-384/P-521
 * are accepted, and every imported key is validated before it is handed out (public keys: the
 * point is on the curve / the modulus and exponent pass OpenSSL's checks, and the DER is the
 * canonical encoding; private keys: additionally the private part matches the public part).
 *
 * CT: key validation and encoding are OpenSSL's. The RSA private-key consistency check below does
 * its arithmetic on BN_FLG_CONSTTIME BIGNUMs in secure memory; its final comparisons are not
 * constant time (nor are those of OpenSSL's own RSA key check), but they only differ in timing for
 * a key that is already being refused.
 */
#include <cloister/crypto.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/decoder.h>
#include <openssl/encoder.h>
#include <openssl/err.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

/* Far beyond the PEM of an RSA-8192 private key (~6.5 KB); anything larger is not a key. */
#define PKEY_INPUT_MAX (1u << 20)
/* Imported RSA moduli above this are refused (they only serve to make verification slow). */
#define PKEY_RSA_IMPORT_MAX_BITS 8192

/* OpenSSL's group names for the three curves, and the names JWK uses. */
static const struct {
    enum clst_curve curve;
    enum clst_key_kind kind;
    const char *jwk_name;
    const char *ossl_name;
} curves[] = {
    {CLST_CURVE_P256, CLST_KEY_EC_P256, "P-256", "prime256v1"},
    {CLST_CURVE_P384, CLST_KEY_EC_P384, "P-384", "secp384r1"},
    {CLST_CURVE_P521, CLST_KEY_EC_P521, "P-521", "secp521r1"},
};

enum clst_key_kind
clst_pkey_kind(const EVP_PKEY *key)
{
    char group[64];
    size_t len = 0;

    if (key == NULL) {
        return CLST_KEY_UNKNOWN;
    }
    /* "RSA" only: an RSA-PSS-restricted key (id-RSASSA-PSS) is not a general RSA key. */
    if (EVP_PKEY_is_a(key, "RSA")) {
        return CLST_KEY_RSA;
    }
    if (!EVP_PKEY_is_a(key, "EC")) {
        return CLST_KEY_UNKNOWN;
    }
    /* Keys with explicit curve parameters have no group name and are not supported. */
    ERR_set_mark();
    int ok =
        EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), &len);
    ERR_pop_to_mark();
    if (ok != 1 || len >= sizeof(group)) {
        return CLST_KEY_UNKNOWN;
    }
    for (size_t i = 0; i < sizeof(curves) / sizeof(curves[0]); i++) {
        if (strcmp(group, curves[i].ossl_name) == 0 || strcmp(group, curves[i].jwk_name) == 0) {
            return curves[i].kind;
        }
    }
    return CLST_KEY_UNKNOWN;
}

int
clst_pkey_bits(const EVP_PKEY *key)
{
    if (key == NULL) {
        return 0;
    }
    return EVP_PKEY_get_bits(key);
}

/* True when the key can export the named (private) component. */
static bool
has_bn_param(const EVP_PKEY *key, const char *name)
{
    BIGNUM *bn = NULL;

    ERR_set_mark();
    bool ok = EVP_PKEY_get_bn_param(key, name, &bn) == 1 && bn != NULL;
    ERR_pop_to_mark();
    BN_clear_free(bn);
    return ok;
}

bool
clst_pkey_has_private(const EVP_PKEY *key)
{
    switch (clst_pkey_kind(key)) {
    case CLST_KEY_RSA:
        return has_bn_param(key, OSSL_PKEY_PARAM_RSA_D);
    case CLST_KEY_EC_P256:
    case CLST_KEY_EC_P384:
    case CLST_KEY_EC_P521:
        return has_bn_param(key, OSSL_PKEY_PARAM_PRIV_KEY);
    case CLST_KEY_UNKNOWN:
        break;
    }
    return false;
}

bool
clst_pkey_public_equal(const EVP_PKEY *a, const EVP_PKEY *b)
{
    if (a == NULL || b == NULL) {
        return false;
    }
    /* EVP_PKEY_eq compares the domain parameters and the public parts only. */
    ERR_set_mark();
    bool eq = EVP_PKEY_eq(a, b) == 1;
    ERR_pop_to_mark();
    return eq;
}

enum clst_status
clst_pkey_public_copy(const EVP_PKEY *key, EVP_PKEY **out)
{
    enum clst_status rc = CLST_E_CRYPTO;
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *pub = NULL;
    enum clst_key_kind kind = clst_pkey_kind(key);

    if (kind == CLST_KEY_UNKNOWN || out == NULL) {
        return CLST_E_INVAL;
    }
    if (EVP_PKEY_todata(key, EVP_PKEY_PUBLIC_KEY, &params) != 1) {
        goto out;
    }
    ctx = EVP_PKEY_CTX_new_from_name(NULL, kind == CLST_KEY_RSA ? "RSA" : "EC", NULL);
    if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &pub, EVP_PKEY_PUBLIC_KEY, params) != 1) {
        goto out;
    }
    *out = pub;
    pub = NULL;
    rc = CLST_OK;
out:
    EVP_PKEY_free(pub);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    if (rc != CLST_OK) {
        ERR_clear_error();
    }
    return rc;
}

enum clst_status
clst_rsa_generate(int bits, EVP_PKEY **out)
{
    enum clst_status rc = CLST_E_CRYPTO;
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *key = NULL;
    size_t nbits;
    unsigned int e = 65537;
    OSSL_PARAM params[3];

    if (out == NULL || bits < CLST_RSA_MIN_BITS || bits > CLST_RSA_MAX_BITS || bits % 8 != 0) {
        return CLST_E_INVAL;
    }
    nbits = (size_t)bits;
    params[0] = OSSL_PARAM_construct_size_t(OSSL_PKEY_PARAM_RSA_BITS, &nbits);
    params[1] = OSSL_PARAM_construct_uint(OSSL_PKEY_PARAM_RSA_E, &e);
    params[2] = OSSL_PARAM_construct_end();

    ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    if (ctx == NULL || EVP_PKEY_keygen_init(ctx) != 1 ||
        EVP_PKEY_CTX_set_params(ctx, params) != 1 || EVP_PKEY_generate(ctx, &key) != 1) {
        goto out;
    }
    *out = key;
    key = NULL;
    rc = CLST_OK;
out:
    EVP_PKEY_free(key);
    EVP_PKEY_CTX_free(ctx);
    if (rc != CLST_OK) {
        ERR_clear_error();
    }
    return rc;
}

static const char *
curve_ossl_name(enum clst_curve curve)
{
    for (size_t i = 0; i < sizeof(curves) / sizeof(curves[0]); i++) {
        if (curves[i].curve == curve) {
            return curves[i].ossl_name;
        }
    }
    return NULL;
}

enum clst_status
clst_ec_generate(enum clst_curve curve, EVP_PKEY **out)
{
    enum clst_status rc = CLST_E_CRYPTO;
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *key = NULL;
    const char *group = curve_ossl_name(curve);

    if (group == NULL || out == NULL) {
        return CLST_E_INVAL;
    }
    ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    if (ctx == NULL || EVP_PKEY_keygen_init(ctx) != 1 ||
        EVP_PKEY_CTX_set_group_name(ctx, group) != 1 || EVP_PKEY_generate(ctx, &key) != 1) {
        goto out;
    }
    *out = key;
    key = NULL;
    rc = CLST_OK;
out:
    EVP_PKEY_free(key);
    EVP_PKEY_CTX_free(ctx);
    if (rc != CLST_OK) {
        ERR_clear_error();
    }
    return rc;
}

enum clst_status
clst_curve_parse(const char *name, enum clst_curve *out)
{
    if (name == NULL || out == NULL) {
        return CLST_E_INVAL;
    }
    for (size_t i = 0; i < sizeof(curves) / sizeof(curves[0]); i++) {
        if (strcmp(name, curves[i].jwk_name) == 0) {
            *out = curves[i].curve;
            return CLST_OK;
        }
    }
    return CLST_E_MALFORMED;
}

const char *
clst_curve_name(enum clst_curve curve)
{
    for (size_t i = 0; i < sizeof(curves) / sizeof(curves[0]); i++) {
        if (curves[i].curve == curve) {
            return curves[i].jwk_name;
        }
    }
    return NULL;
}

/* ---- import --------------------------------------------------------------------------------- */

/* Encrypted private keys are refused: never prompt, never guess a passphrase. */
static int
no_passphrase(char *pass, size_t pass_size, size_t *pass_len, const OSSL_PARAM params[], void *arg)
{
    (void)pass;
    (void)pass_size;
    (void)params;
    (void)arg;
    *pass_len = 0;
    return 0;
}

/*
 * RSA private-key consistency without primality tests (EVP_PKEY_check tests p and q for primality,
 * ~40 ms for RSA-2048 and ~250 ms for RSA-4096: too slow for a key loaded on every use):
 * n = p * q, 1 < d < n, e * d = 1 mod lcm(p - 1, q - 1), dp = d mod (p - 1), dq = d mod (q - 1),
 * q * qi = 1 mod p. A key whose factors are not prime only harms its owner; one whose parts do not
 * belong together (a corrupted or spliced key) is refused.
 */
static bool
rsa_private_consistent(const EVP_PKEY *key)
{
    static const char *names[8] = {
        OSSL_PKEY_PARAM_RSA_N,         OSSL_PKEY_PARAM_RSA_E,
        OSSL_PKEY_PARAM_RSA_D,         OSSL_PKEY_PARAM_RSA_FACTOR1,
        OSSL_PKEY_PARAM_RSA_FACTOR2,   OSSL_PKEY_PARAM_RSA_EXPONENT1,
        OSSL_PKEY_PARAM_RSA_EXPONENT2, OSSL_PKEY_PARAM_RSA_COEFFICIENT1,
    };
    BIGNUM *v[8] = {NULL};
    BIGNUM *n, *e, *d, *p, *q, *dp, *dq, *qi;
    BIGNUM *p1, *q1, *t, *g, *l;
    BN_CTX *ctx = NULL;
    bool ok = false;

    ERR_set_mark();
    for (int i = 0; i < 8; i++) {
        if (EVP_PKEY_get_bn_param(key, names[i], &v[i]) != 1 || v[i] == NULL) {
            goto out;
        }
    }
    n = v[0], e = v[1], d = v[2], p = v[3], q = v[4], dp = v[5], dq = v[6], qi = v[7];
    for (int i = 2; i < 8; i++) {
        BN_set_flags(v[i], BN_FLG_CONSTTIME); /* the private values */
    }
    ctx = BN_CTX_secure_new();
    if (ctx == NULL) {
        goto out;
    }
    BN_CTX_start(ctx);
    p1 = BN_CTX_get(ctx);
    q1 = BN_CTX_get(ctx);
    t = BN_CTX_get(ctx);
    g = BN_CTX_get(ctx);
    l = BN_CTX_get(ctx);
    if (l == NULL) {
        goto end;
    }
    BN_set_flags(p1, BN_FLG_CONSTTIME);
    BN_set_flags(q1, BN_FLG_CONSTTIME);
    BN_set_flags(t, BN_FLG_CONSTTIME);
    BN_set_flags(g, BN_FLG_CONSTTIME);
    BN_set_flags(l, BN_FLG_CONSTTIME);
    /* n = p * q */
    if (BN_mul(t, p, q, ctx) != 1 || BN_cmp(t, n) != 0) {
        goto end;
    }
    /* 1 < d < n */
    if (BN_cmp(d, BN_value_one()) <= 0 || BN_cmp(d, n) >= 0) {
        goto end;
    }
    /* l = lcm(p - 1, q - 1); e * d mod l == 1 */
    if (BN_sub(p1, p, BN_value_one()) != 1 || BN_sub(q1, q, BN_value_one()) != 1 ||
        BN_is_zero(p1) || BN_is_zero(q1) || BN_gcd(g, p1, q1, ctx) != 1 ||
        BN_mul(t, p1, q1, ctx) != 1 || BN_div(l, NULL, t, g, ctx) != 1 ||
        BN_mod_mul(t, e, d, l, ctx) != 1 || !BN_is_one(t)) {
        goto end;
    }
    /* dp = d mod (p - 1), dq = d mod (q - 1) */
    if (BN_mod(t, d, p1, ctx) != 1 || BN_cmp(t, dp) != 0 || BN_mod(t, d, q1, ctx) != 1 ||
        BN_cmp(t, dq) != 0) {
        goto end;
    }
    /* q * qi mod p == 1 */
    if (BN_mod_mul(t, q, qi, p, ctx) != 1 || !BN_is_one(t)) {
        goto end;
    }
    ok = true;
end:
    BN_CTX_end(ctx);
out:
    BN_CTX_free(ctx);
    for (int i = 0; i < 8; i++) {
        BN_clear_free(v[i]);
    }
    ERR_pop_to_mark();
    return ok;
}

/*
 * An RSA public key's structural checks: n odd, 3 <= e < n, e odd. OpenSSL's full public check
 * (SP 800-56B) adds a gcd of n with a primorial and a prime-power test, several milliseconds
 * for RSA-3072 on every load of a recipient key; a modulus that passes these checks but is
 * badly made only weakens its own owner's encryption, which no check on the public key can
 * rule out anyway.
 */
static bool
rsa_public_sane(const EVP_PKEY *key)
{
    BIGNUM *n = NULL, *e = NULL;
    bool ok = EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_N, &n) == 1 &&
              EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_E, &e) == 1 && BN_is_odd(n) &&
              BN_is_odd(e) && !BN_is_one(e) && BN_cmp(e, n) < 0;
    BN_free(n);
    BN_free(e);
    return ok;
}

/* Accepts only the key types and sizes Cloister supports, and validates the key material. */
static enum clst_status
check_imported(EVP_PKEY *key, struct clst_err *err)
{
    enum clst_status rc = CLST_E_MALFORMED;
    EVP_PKEY_CTX *ctx = NULL;
    enum clst_key_kind kind = clst_pkey_kind(key);

    if (kind == CLST_KEY_UNKNOWN) {
        rc = clst_err_set(err, CLST_E_MALFORMED,
                          "unsupported key type \"%s\": use an RSA key or an EC key on P-256, "
                          "P-384 or P-521",
                          EVP_PKEY_get0_type_name(key) ? EVP_PKEY_get0_type_name(key) : "?");
        goto out;
    }
    if (kind == CLST_KEY_RSA) {
        int bits = clst_pkey_bits(key);
        if (bits < CLST_RSA_MIN_BITS) {
            rc = clst_err_set(err, CLST_E_MALFORMED,
                              "RSA key of %d bits is too small: use at least %d bits", bits,
                              CLST_RSA_MIN_BITS);
            goto out;
        }
        if (bits > PKEY_RSA_IMPORT_MAX_BITS) {
            rc = clst_err_set(err, CLST_E_LIMIT,
                              "RSA key of %d bits is too large: at most %d bits are supported",
                              bits, PKEY_RSA_IMPORT_MAX_BITS);
            goto out;
        }
    }
    /* EC keys keep the point form of their encoding; ours is always uncompressed, so that a
     * key read from a compressed form is exported like any other (and is not canonical below). */
    if (kind != CLST_KEY_RSA &&
        EVP_PKEY_set_utf8_string_param(key, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
                                       "uncompressed") != 1) {
        rc = clst_err_set(err, CLST_E_CRYPTO, "cannot set the EC point format");
        goto out;
    }
    ctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
    if (ctx == NULL) {
        rc = clst_err_set(err, CLST_E_NOMEM, "out of memory while checking the key");
        goto out;
    }
    if (clst_pkey_has_private(key)) {
        /* EC: EVP_PKEY_check (priv * G == pub, cheap). RSA: the public checks plus the
         * consistency of the private parts, see rsa_private_consistent. */
        bool ok = kind == CLST_KEY_RSA
                      ? EVP_PKEY_public_check(ctx) == 1 && rsa_private_consistent(key)
                      : EVP_PKEY_check(ctx) == 1;
        if (!ok) {
            rc = clst_err_set(err, CLST_E_MALFORMED,
                              "private key is inconsistent (its private part does not match its "
                              "public part, or a component is out of range)");
            goto out;
        }
    } else if (kind == CLST_KEY_RSA ? !rsa_public_sane(key) : EVP_PKEY_public_check(ctx) != 1) {
        rc = clst_err_set(err, CLST_E_MALFORMED,
                          "public key is invalid (point not on the curve, or a bad modulus or "
                          "exponent)");
        goto out;
    }
    rc = CLST_OK;
out:
    EVP_PKEY_CTX_free(ctx);
    return rc;
}

/* True when `key`, a public key, encodes back to exactly der (SPKI, or PKCS#1 for RSA). */
static bool
canonical_public(const EVP_PKEY *key, const uint8_t *der, size_t size)
{
    static const char *structures[2] = {"SubjectPublicKeyInfo", "type-specific"};
    bool same = false;

    for (int i = 0; i < 2 && !same; i++) {
        OSSL_ENCODER_CTX *ectx;
        unsigned char *enc = NULL;
        size_t enc_size = 0;

        if (i == 1 && clst_pkey_kind(key) != CLST_KEY_RSA) {
            break; /* EC has no public type-specific form */
        }
        ectx = OSSL_ENCODER_CTX_new_for_pkey(key, EVP_PKEY_PUBLIC_KEY, "DER", structures[i], NULL);
        if (ectx != NULL && OSSL_ENCODER_CTX_get_num_encoders(ectx) > 0 &&
            OSSL_ENCODER_to_data(ectx, &enc, &enc_size) == 1) {
            same = enc_size == size && memcmp(enc, der, size) == 0;
        }
        OPENSSL_free(enc);
        OSSL_ENCODER_CTX_free(ectx);
    }
    return same;
}

/*
 * Decodes one DER key. `structure` ("SubjectPublicKeyInfo", "PrivateKeyInfo", "type-specific")
 * and `keytype` ("RSA", "EC") narrow the decoders when the PEM label told us what to expect; NULL
 * means any.
 */
static enum clst_status
decode_der(const uint8_t *der, size_t size, const char *structure, const char *keytype,
           EVP_PKEY **out, struct clst_err *err)
{
    enum clst_status rc = CLST_E_MALFORMED;
    OSSL_DECODER_CTX *dctx = NULL;
    EVP_PKEY *key = NULL;
    const unsigned char *p = der;
    size_t left = size;

    /*
     * The common shapes first, through the direct DER functions: setting up a decoder context
     * searches every provider's decoders and costs 10-15 ms, which dominated a short
     * `cloister encrypt --recipient`. Anything they do not take (or take only in part) goes to
     * the generic decoders below; the checks after decoding are the same for both paths.
     */
    if (structure == NULL || strcmp(structure, "SubjectPublicKeyInfo") == 0) {
        key = d2i_PUBKEY(NULL, &p, (long)size);
    }
    if (key == NULL && (structure == NULL || strcmp(structure, "PrivateKeyInfo") == 0)) {
        /* Strictly PKCS#8 (d2i_AutoPrivateKey would also take a bare PKCS#1 key). */
        p = der;
        PKCS8_PRIV_KEY_INFO *p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long)size);
        if (p8 != NULL) {
            key = EVP_PKCS82PKEY(p8);
            PKCS8_PRIV_KEY_INFO_free(p8);
        }
    }
    if (key != NULL && p == der + size) {
        left = 0;
        ERR_clear_error();
        goto decoded;
    }
    EVP_PKEY_free(key);
    key = NULL;
    p = der;
    ERR_clear_error();
    dctx = OSSL_DECODER_CTX_new_for_pkey(&key, "DER", structure, keytype, 0, NULL, NULL);
    if (dctx == NULL || OSSL_DECODER_CTX_set_passphrase_cb(dctx, no_passphrase, NULL) != 1) {
        rc = clst_err_set(err, CLST_E_CRYPTO, "cannot set up the key decoder");
        goto out;
    }
    if (OSSL_DECODER_from_data(dctx, &p, &left) != 1 || key == NULL) {
        rc = clst_err_set(err, CLST_E_MALFORMED,
                          "not a DER public or private key (expected SubjectPublicKeyInfo, "
                          "unencrypted PKCS#8 or a traditional RSA/EC key)");
        goto out;
    }
    if (left != 0) {
        rc = clst_err_set(err, CLST_E_MALFORMED, "%zu trailing bytes after the DER key", left);
        goto out;
    }
decoded:
    rc = check_imported(key, err);
    if (rc != CLST_OK) {
        goto out;
    }
    /* One key, one encoding: refuses BER, compressed points and bit-string padding tricks. */
    if (!clst_pkey_has_private(key) && !canonical_public(key, der, size)) {
        rc = clst_err_set(err, CLST_E_MALFORMED,
                          "public key is not in canonical DER (non-minimal lengths, a compressed "
                          "point or non-zero unused bits); re-export it in SubjectPublicKeyInfo "
                          "form");
        goto out;
    }
    *out = key;
    key = NULL;
out:
    EVP_PKEY_free(key);
    OSSL_DECODER_CTX_free(dctx);
    ERR_clear_error();
    return rc;
}

static enum clst_status
check_key_input(const void *data, size_t size, EVP_PKEY **out, const char *what,
                struct clst_err *err)
{
    if (data == NULL || out == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "no key data given");
    }
    if (size == 0) {
        return clst_err_set(err, CLST_E_MALFORMED, "empty %s key", what);
    }
    if (size > PKEY_INPUT_MAX) {
        return clst_err_set(err, CLST_E_LIMIT, "%s key of %zu bytes exceeds the %u-byte limit",
                            what, size, PKEY_INPUT_MAX);
    }
    return CLST_OK;
}

/* The PEM labels of key blocks, and what they hold. */
static const struct {
    const char *label;
    const char *structure;
    const char *keytype;
} pem_labels[] = {
    {"PUBLIC KEY", "SubjectPublicKeyInfo", NULL}, {"PRIVATE KEY", "PrivateKeyInfo", NULL},
    {"RSA PUBLIC KEY", "type-specific", "RSA"},   {"RSA PRIVATE KEY", "type-specific", "RSA"},
    {"EC PRIVATE KEY", "type-specific", "EC"},
};

enum clst_status
clst_pkey_from_pem(const void *pem, size_t size, EVP_PKEY **out, struct clst_err *err)
{
    enum clst_status rc;
    BIO *bio = NULL;
    char *name = NULL, *header = NULL;
    unsigned char *data = NULL;
    long len = 0;
    size_t which = 0;

    rc = check_key_input(pem, size, out, "PEM", err);
    if (rc != CLST_OK) {
        return rc;
    }
    ERR_clear_error();
    bio = BIO_new_mem_buf(pem, (int)size);
    if (bio == NULL) {
        rc = clst_err_set(err, CLST_E_NOMEM, "out of memory");
        goto out;
    }
    /* The first key block; other blocks before it (EC PARAMETERS, CERTIFICATE) are skipped. */
    for (;;) {
        /* PEM_FLAG_SECURE: the decoded body may be a private key; keep it in wiped memory. */
        if (PEM_read_bio_ex(bio, &name, &header, &data, &len,
                            PEM_FLAG_SECURE | PEM_FLAG_EAY_COMPATIBLE) != 1) {
            rc = clst_err_set(err, CLST_E_MALFORMED,
                              "no PEM key block found (expected -----BEGIN PUBLIC KEY-----, "
                              "PRIVATE KEY, RSA PRIVATE KEY, RSA PUBLIC KEY or EC PRIVATE KEY)");
            goto out;
        }
        if (strcmp(name, "ENCRYPTED PRIVATE KEY") == 0) {
            rc = clst_err_set(err, CLST_E_MALFORMED,
                              "encrypted private keys are not supported: decrypt the key first");
            goto out;
        }
        for (which = 0; which < sizeof(pem_labels) / sizeof(pem_labels[0]); which++) {
            if (strcmp(name, pem_labels[which].label) == 0) {
                break;
            }
        }
        if (which < sizeof(pem_labels) / sizeof(pem_labels[0])) {
            break;
        }
        OPENSSL_secure_free(name);
        OPENSSL_secure_free(header);
        OPENSSL_secure_clear_free(data, (size_t)len);
        name = header = NULL;
        data = NULL;
    }
    /* Legacy encrypted PEM ("Proc-Type: 4,ENCRYPTED", "DEK-Info: ...") carries headers. */
    if (header != NULL && header[0] != 0) {
        rc = clst_err_set(err, CLST_E_MALFORMED,
                          "encrypted (or otherwise annotated) PEM keys are not supported: "
                          "decrypt the key first");
        goto out;
    }
    if (len <= 0) {
        rc = clst_err_set(err, CLST_E_MALFORMED, "empty PEM %s block", name);
        goto out;
    }
    rc = decode_der(data, (size_t)len, pem_labels[which].structure, pem_labels[which].keytype, out,
                    err);
    if (rc != CLST_OK) {
        clst_err_prefix(err, "PEM %s block", name);
    }
out:
    OPENSSL_secure_free(name);
    OPENSSL_secure_free(header);
    if (data != NULL) {
        OPENSSL_secure_clear_free(data, (size_t)len);
    }
    BIO_free(bio);
    ERR_clear_error();
    return rc;
}

enum clst_status
clst_pkey_from_der(const void *der, size_t size, EVP_PKEY **out, struct clst_err *err)
{
    enum clst_status rc = check_key_input(der, size, out, "DER", err);

    if (rc != CLST_OK) {
        return rc;
    }
    return decode_der(der, size, NULL, NULL, out, err);
}

enum clst_status
clst_pkey_load_pem_file(const char *path, EVP_PKEY **out, struct clst_err *err)
{
    enum clst_status rc = CLST_E_IO;
    struct clst_buf buf;
    uint8_t chunk[4096];
    FILE *f = NULL;

    /* The file may hold a private key: read it into wiped, locked memory. */
    clst_buf_init_secret(&buf, PKEY_INPUT_MAX);
    if (path == NULL || out == NULL) {
        rc = clst_err_set(err, CLST_E_INVAL, "no key file given");
        goto out;
    }
    f = fopen(path, "rb");
    if (f == NULL) {
        rc = clst_err_set(err, CLST_E_IO, "cannot open key file %s: %s", path, strerror(errno));
        goto out;
    }
    for (;;) {
        size_t n = fread(chunk, 1, sizeof(chunk), f);
        if (n > 0) {
            rc = clst_buf_append(&buf, chunk, n);
            if (rc == CLST_E_LIMIT) {
                rc = clst_err_set(err, CLST_E_LIMIT,
                                  "key file %s is larger than %u bytes: not a key file", path,
                                  PKEY_INPUT_MAX);
                goto out;
            }
            if (rc != CLST_OK) {
                rc =
                    clst_err_set(err, rc, "cannot read key file %s: %s", path, clst_status_str(rc));
                goto out;
            }
        }
        if (n < sizeof(chunk)) {
            break;
        }
    }
    if (ferror(f)) {
        rc = clst_err_set(err, CLST_E_IO, "cannot read key file %s", path);
        goto out;
    }
    rc = clst_pkey_from_pem(buf.data, buf.size, out, err);
    if (rc != CLST_OK) {
        clst_err_prefix(err, "%s", path);
    }
out:
    if (f != NULL) {
        fclose(f);
    }
    OPENSSL_cleanse(chunk, sizeof(chunk));
    clst_buf_cleanup(&buf);
    return rc;
}

/* ---- export --------------------------------------------------------------------------------- */

static enum clst_status
encode_key(const EVP_PKEY *key, bool include_private, const char *output_type, struct clst_buf *out)
{
    enum clst_status rc = CLST_E_CRYPTO;
    OSSL_ENCODER_CTX *ectx = NULL;
    BIO *bio = NULL;
    char *data = NULL;
    long len;

    if (key == NULL || out == NULL || clst_pkey_kind(key) == CLST_KEY_UNKNOWN) {
        return CLST_E_INVAL;
    }
    if (include_private && !clst_pkey_has_private(key)) {
        return CLST_E_INVAL;
    }
    ectx = OSSL_ENCODER_CTX_new_for_pkey(
        key, include_private ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY, output_type,
        include_private ? "PrivateKeyInfo" : "SubjectPublicKeyInfo", NULL);
    if (ectx == NULL || OSSL_ENCODER_CTX_get_num_encoders(ectx) == 0) {
        goto out;
    }
    /* A private key is encoded into secure-heap memory that OpenSSL wipes when it is freed. */
    bio = BIO_new(include_private ? BIO_s_secmem() : BIO_s_mem());
    if (bio == NULL) {
        rc = CLST_E_NOMEM;
        goto out;
    }
    if (OSSL_ENCODER_to_bio(ectx, bio) != 1) {
        goto out;
    }
    len = BIO_get_mem_data(bio, &data);
    if (len <= 0 || data == NULL) {
        goto out;
    }
    rc = clst_buf_append(out, data, (size_t)len);
out:
    BIO_free(bio);
    OSSL_ENCODER_CTX_free(ectx);
    if (rc != CLST_OK) {
        ERR_clear_error();
    }
    return rc;
}

enum clst_status
clst_pkey_to_pem(const EVP_PKEY *key, bool include_private, struct clst_buf *out)
{
    return encode_key(key, include_private, "PEM", out);
}

enum clst_status
clst_pkey_to_der(const EVP_PKEY *key, bool include_private, struct clst_buf *out)
{
    return encode_key(key, include_private, "DER", out);
}
