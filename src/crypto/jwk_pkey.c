/*
 * JWK (RFC 7517 / RFC 7518 section 6) <-> EVP_PKEY for RSA and EC (P-256/384/521), built with
 * EVP_PKEY_fromdata and checked with EVP_PKEY_check / EVP_PKEY_public_check.
 *
 * A JWK is untrusted input. Strictness:
 * - every key member must be a JSON string holding strict base64url (no padding, no whitespace);
 * - RSA "n" and "e" use the minimum number of octets (no leading zero octet), as RFC 7518 6.3.1
 *   requires; "n" has 2048..8192 bits. Private members may carry leading zero octets (some
 *   producers pad them); their values are checked by OpenSSL's key validation instead;
 * - an RSA private key carries all of "d", "p", "q", "dp", "dq", "qi" (RFC 7518 6.3.2: if any
 *   of the optional members is present, all must be; we also require them, so that the key can
 *   be validated); multi-prime keys ("oth") are refused;
 * - EC "x", "y" and "d" have exactly the curve's coordinate size (32/48/66 bytes; RFC 7518
 *   6.2.1.2 and 6.2.2.1), and the point must be on the curve;
 * - the private part must match the public part (OpenSSL's pairwise check).
 *
 * Private members are decoded into secret buffers and secure BIGNUMs. The JSON object produced by
 * clst_pkey_to_jwk(include_private) holds private members in jansson's own memory, which jansson
 * does not wipe: callers keep such objects short-lived.
 *
 * CT: base64url decoding and key validation are the core's and OpenSSL's; nothing here branches on
 * private values beyond their (public) lengths.
 */
#include <cloister/crypto.h>

#include <limits.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <openssl/params.h>

#define JWK_RSA_MIN_BITS  CLST_RSA_MIN_BITS
#define JWK_RSA_MAX_BITS  8192
#define JWK_RSA_MAX_BYTES (JWK_RSA_MAX_BITS / 8)
/* OpenSSL accepts public exponents of up to 256 bits. */
#define JWK_RSA_E_MAX_BYTES 32
#define JWK_EC_MAX_COORD    66

/* ---- decoding helpers ----------------------------------------------------------------------- */

/*
 * Decodes member `name` of `jwk` into `out` (initialized here with cap `max`, secret when
 * `secret`). An absent member is CLST_OK with *present = false when present is non-NULL, and
 * CLST_E_MALFORMED otherwise.
 */
static enum clst_status
member_b64(const json_t *jwk, const char *name, bool *present, bool secret, size_t max,
           struct clst_buf *out, struct clst_err *err)
{
    const json_t *v = json_object_get(jwk, name);
    enum clst_status rc;

    if (secret) {
        clst_buf_init_secret(out, max);
    } else {
        clst_buf_init(out, max);
    }
    if (present != NULL) {
        *present = v != NULL;
    }
    if (v == NULL) {
        if (present != NULL) {
            return CLST_OK;
        }
        return clst_err_set(err, CLST_E_MALFORMED, "JWK has no \"%s\" member", name);
    }
    if (!json_is_string(v)) {
        return clst_err_set(err, CLST_E_MALFORMED, "JWK member \"%s\" must be a string", name);
    }
    rc = clst_b64url_decode(json_string_value(v), json_string_length(v), out);
    if (rc == CLST_E_LIMIT) {
        return clst_err_set(err, CLST_E_LIMIT,
                            "JWK member \"%s\" is too long (more than %zu bytes)", name, max);
    }
    if (rc != CLST_OK) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "JWK member \"%s\" is not strict base64url (no padding, no whitespace)",
                            name);
    }
    if (out->size == 0) {
        return clst_err_set(err, CLST_E_MALFORMED, "JWK member \"%s\" is empty", name);
    }
    return CLST_OK;
}

/* Pushes a big-endian unsigned integer, as a secure BIGNUM when `secret`. */
static enum clst_status
push_bn(OSSL_PARAM_BLD *bld, const char *key, const struct clst_buf *b, bool secret, BIGNUM **keep)
{
    BIGNUM *bn = secret ? BN_secure_new() : BN_new();

    if (bn == NULL) {
        return CLST_E_NOMEM;
    }
    *keep = bn; /* freed by the caller after the params are used */
    if (b->size > INT_MAX || BN_bin2bn(b->data, (int)b->size, bn) == NULL ||
        OSSL_PARAM_BLD_push_BN(bld, key, bn) != 1) {
        return CLST_E_CRYPTO;
    }
    return CLST_OK;
}

/* Builds the key from `params` and validates it; MALFORMED when OpenSSL refuses it. */
static enum clst_status
build_key(const char *type, int selection, OSSL_PARAM_BLD *bld, EVP_PKEY **out,
          struct clst_err *err)
{
    enum clst_status rc = CLST_E_CRYPTO;
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY_CTX *check = NULL;
    EVP_PKEY *key = NULL;
    bool priv = selection == EVP_PKEY_KEYPAIR;

    params = OSSL_PARAM_BLD_to_param(bld);
    ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    if (params == NULL || ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1) {
        rc = clst_err_set(err, CLST_E_CRYPTO, "cannot set up %s key import", type);
        goto out;
    }
    if (EVP_PKEY_fromdata(ctx, &key, selection, params) != 1 || key == NULL) {
        rc = clst_err_set(err, CLST_E_MALFORMED,
                          "JWK does not describe a valid %s key (for EC: the point is not on the "
                          "curve)",
                          type);
        goto out;
    }
    check = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
    if (check == NULL) {
        rc = clst_err_set(err, CLST_E_NOMEM, "out of memory while checking the JWK key");
        goto out;
    }
    if ((priv ? EVP_PKEY_check(check) : EVP_PKEY_public_check(check)) != 1) {
        rc = clst_err_set(err, CLST_E_MALFORMED,
                          priv ? "JWK %s private key is inconsistent: its private members do not "
                                 "match each other or the public key"
                               : "JWK %s public key is invalid (bad point, modulus or exponent)",
                          type);
        goto out;
    }
    *out = key;
    key = NULL;
    rc = CLST_OK;
out:
    EVP_PKEY_free(key);
    EVP_PKEY_CTX_free(check);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params); /* the secure block of private values is cleared */
    ERR_clear_error();
    return rc;
}

static enum clst_status
rsa_from_jwk(const json_t *jwk, EVP_PKEY **out, struct clst_err *err)
{
    static const struct {
        const char *jwk;
        const char *param;
    } priv_members[] = {
        {"p", OSSL_PKEY_PARAM_RSA_FACTOR1},       {"q", OSSL_PKEY_PARAM_RSA_FACTOR2},
        {"dp", OSSL_PKEY_PARAM_RSA_EXPONENT1},    {"dq", OSSL_PKEY_PARAM_RSA_EXPONENT2},
        {"qi", OSSL_PKEY_PARAM_RSA_COEFFICIENT1},
    };
    enum { NPRIV = sizeof(priv_members) / sizeof(priv_members[0]) };
    enum clst_status rc;
    struct clst_buf n, e, d, parts[NPRIV];
    BIGNUM *bns[3 + NPRIV] = {NULL};
    OSSL_PARAM_BLD *bld = NULL;
    bool has_d = false;
    int bits;

    clst_buf_init(&n, 0);
    clst_buf_init(&e, 0);
    clst_buf_init_secret(&d, 0);
    for (size_t i = 0; i < NPRIV; i++) {
        clst_buf_init_secret(&parts[i], 0);
    }

    /* One byte more than an 8192-bit modulus, so that a longer one is reported by size. */
    rc = member_b64(jwk, "n", NULL, false, JWK_RSA_MAX_BYTES + 1, &n, err);
    if (rc == CLST_E_LIMIT) {
        rc = clst_err_set(err, CLST_E_LIMIT,
                          "JWK RSA modulus is larger than %d bits: use a key of %d to %d bits",
                          JWK_RSA_MAX_BITS, JWK_RSA_MIN_BITS, JWK_RSA_MAX_BITS);
    }
    if (rc != CLST_OK) {
        goto out;
    }
    rc = member_b64(jwk, "e", NULL, false, JWK_RSA_E_MAX_BYTES, &e, err);
    if (rc != CLST_OK) {
        goto out;
    }
    rc = CLST_E_MALFORMED;
    if (n.data[0] == 0 || e.data[0] == 0) {
        rc = clst_err_set(err, CLST_E_MALFORMED,
                          "JWK RSA \"n\" or \"e\" has a leading zero octet (RFC 7518 requires the "
                          "minimal encoding)");
        goto out;
    }
    bits = (int)(n.size * 8);
    for (uint8_t top = n.data[0]; (top & 0x80) == 0; top = (uint8_t)(top << 1)) {
        bits--;
    }
    if (bits < JWK_RSA_MIN_BITS) {
        rc = clst_err_set(err, CLST_E_MALFORMED,
                          "JWK RSA modulus has %d bits: keys of fewer than %d bits are refused, "
                          "use a key of %d to %d bits",
                          bits, JWK_RSA_MIN_BITS, JWK_RSA_MIN_BITS, JWK_RSA_MAX_BITS);
        goto out;
    }
    if (bits > JWK_RSA_MAX_BITS) {
        rc = clst_err_set(err, CLST_E_LIMIT,
                          "JWK RSA modulus has %d bits: keys of more than %d bits are refused, "
                          "use a key of %d to %d bits",
                          bits, JWK_RSA_MAX_BITS, JWK_RSA_MIN_BITS, JWK_RSA_MAX_BITS);
        goto out;
    }
    if ((e.data[e.size - 1] & 1) == 0 || (e.size == 1 && e.data[0] < 3)) {
        rc = clst_err_set(err, CLST_E_MALFORMED,
                          "JWK RSA public exponent \"e\" must be odd and at least 3");
        goto out;
    }

    rc = member_b64(jwk, "d", &has_d, true, n.size, &d, err);
    if (rc == CLST_E_LIMIT) {
        rc = clst_err_set(err, CLST_E_MALFORMED, "JWK RSA member \"d\" is longer than the modulus");
    }
    if (rc != CLST_OK) {
        goto out;
    }
    if (json_object_get(jwk, "oth") != NULL) {
        rc = clst_err_set(err, CLST_E_MALFORMED,
                          "JWK RSA multi-prime keys (\"oth\") are not supported");
        goto out;
    }
    for (size_t i = 0; i < NPRIV; i++) {
        bool present = false;
        rc = member_b64(jwk, priv_members[i].jwk, &present, true, n.size, &parts[i], err);
        if (rc == CLST_E_LIMIT) {
            rc = clst_err_set(err, CLST_E_MALFORMED,
                              "JWK RSA member \"%s\" is longer than the modulus",
                              priv_members[i].jwk);
        }
        if (rc != CLST_OK) {
            goto out;
        }
        if (present != has_d) {
            rc = clst_err_set(err, CLST_E_MALFORMED,
                              has_d ? "JWK RSA private key lacks \"%s\": a private key needs d, p, "
                                      "q, dp, dq and qi"
                                    : "JWK RSA key has \"%s\" but no \"d\": a private key needs d, "
                                      "p, q, dp, dq and qi",
                              priv_members[i].jwk);
            goto out;
        }
    }

    bld = OSSL_PARAM_BLD_new();
    if (bld == NULL) {
        rc = clst_err_set(err, CLST_E_NOMEM, "out of memory");
        goto out;
    }
    rc = push_bn(bld, OSSL_PKEY_PARAM_RSA_N, &n, false, &bns[0]);
    if (rc == CLST_OK) {
        rc = push_bn(bld, OSSL_PKEY_PARAM_RSA_E, &e, false, &bns[1]);
    }
    if (rc == CLST_OK && has_d) {
        rc = push_bn(bld, OSSL_PKEY_PARAM_RSA_D, &d, true, &bns[2]);
        for (size_t i = 0; i < NPRIV && rc == CLST_OK; i++) {
            rc = push_bn(bld, priv_members[i].param, &parts[i], true, &bns[3 + i]);
        }
    }
    if (rc != CLST_OK) {
        rc = clst_err_set(err, rc, "cannot build the RSA key parameters");
        goto out;
    }
    rc = build_key("RSA", has_d ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY, bld, out, err);
out:
    OSSL_PARAM_BLD_free(bld);
    for (size_t i = 0; i < sizeof(bns) / sizeof(bns[0]); i++) {
        BN_clear_free(bns[i]);
    }
    clst_buf_cleanup(&n);
    clst_buf_cleanup(&e);
    clst_buf_cleanup(&d);
    for (size_t i = 0; i < NPRIV; i++) {
        clst_buf_cleanup(&parts[i]);
    }
    return rc;
}

static const char *
curve_group(enum clst_curve curve, size_t *coord_size)
{
    switch (curve) {
    case CLST_CURVE_P256:
        *coord_size = 32;
        return "prime256v1";
    case CLST_CURVE_P384:
        *coord_size = 48;
        return "secp384r1";
    case CLST_CURVE_P521:
        *coord_size = 66;
        return "secp521r1";
    }
    return NULL;
}

static enum clst_status
ec_from_jwk(const json_t *jwk, EVP_PKEY **out, struct clst_err *err)
{
    enum clst_status rc;
    struct clst_buf x, y, d;
    const json_t *crv = json_object_get(jwk, "crv");
    enum clst_curve curve;
    size_t cs = 0;
    const char *group;
    char group_buf[16];
    uint8_t point[1 + 2 * JWK_EC_MAX_COORD];
    BIGNUM *priv = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    bool has_d = false;

    clst_buf_init(&x, 0);
    clst_buf_init(&y, 0);
    clst_buf_init_secret(&d, 0);
    if (crv == NULL || !json_is_string(crv)) {
        rc = clst_err_set(err, CLST_E_MALFORMED, "JWK EC key needs a \"crv\" string member");
        goto out;
    }
    if (strlen(json_string_value(crv)) != json_string_length(crv) ||
        clst_curve_parse(json_string_value(crv), &curve) != CLST_OK) {
        rc = clst_err_set(err, CLST_E_MALFORMED,
                          "JWK EC curve is not supported: use P-256, P-384 or P-521");
        goto out;
    }
    group = curve_group(curve, &cs);
    if (group == NULL || strlen(group) >= sizeof(group_buf)) {
        rc = clst_err_set(err, CLST_E_INTERNAL, "unknown curve");
        goto out;
    }
    /* Caps one byte above the exact size, so that a longer member is reported as a wrong size. */
    rc = member_b64(jwk, "x", NULL, false, cs + 1, &x, err);
    if (rc == CLST_OK) {
        rc = member_b64(jwk, "y", NULL, false, cs + 1, &y, err);
    }
    if (rc == CLST_OK) {
        rc = member_b64(jwk, "d", &has_d, true, cs + 1, &d, err);
    }
    if (rc != CLST_OK && rc != CLST_E_LIMIT) {
        goto out;
    }
    if (rc == CLST_E_LIMIT || x.size != cs || y.size != cs || (has_d && d.size != cs)) {
        rc = clst_err_set(err, CLST_E_MALFORMED,
                          "JWK EC members \"x\", \"y\" and \"d\" must be exactly %zu bytes for %s",
                          cs, clst_curve_name(curve));
        goto out;
    }
    point[0] = 0x04;
    memcpy(point + 1, x.data, cs);
    memcpy(point + 1 + cs, y.data, cs);
    memcpy(group_buf, group, strlen(group) + 1);

    rc = CLST_E_CRYPTO;
    bld = OSSL_PARAM_BLD_new();
    if (bld == NULL ||
        OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group_buf, 0) != 1 ||
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, 1 + 2 * cs) != 1) {
        rc = clst_err_set(err, CLST_E_CRYPTO, "cannot build the EC key parameters");
        goto out;
    }
    if (has_d) {
        priv = BN_secure_new();
        if (priv == NULL || BN_bin2bn(d.data, (int)d.size, priv) == NULL ||
            OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, priv) != 1) {
            rc = clst_err_set(err, CLST_E_CRYPTO, "cannot build the EC key parameters");
            goto out;
        }
    }
    rc = build_key("EC", has_d ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY, bld, out, err);
out:
    OSSL_PARAM_BLD_free(bld);
    BN_clear_free(priv);
    clst_buf_cleanup(&x);
    clst_buf_cleanup(&y);
    clst_buf_cleanup(&d);
    return rc;
}

enum clst_status
clst_pkey_from_jwk(const json_t *jwk, EVP_PKEY **out, struct clst_err *err)
{
    const json_t *kty;
    const char *s;

    if (jwk == NULL || out == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "no JWK given");
    }
    if (!json_is_object(jwk)) {
        return clst_err_set(err, CLST_E_MALFORMED, "JWK must be a JSON object");
    }
    kty = json_object_get(jwk, "kty");
    if (kty == NULL || !json_is_string(kty)) {
        return clst_err_set(err, CLST_E_MALFORMED, "JWK needs a \"kty\" string member");
    }
    s = json_string_value(kty);
    if (strlen(s) == json_string_length(kty)) {
        if (strcmp(s, "RSA") == 0) {
            return rsa_from_jwk(jwk, out, err);
        }
        if (strcmp(s, "EC") == 0) {
            return ec_from_jwk(jwk, out, err);
        }
    }
    return clst_err_set(err, CLST_E_MALFORMED,
                        "JWK key type is not supported here: use \"RSA\" or \"EC\"");
}

/* ---- encoding ------------------------------------------------------------------------------- */

/* Sets member `name` to base64url(bn), left-padded with zeros to `pad` bytes (0: minimal). */
static enum clst_status
set_bn_member(json_t *obj, const char *name, const BIGNUM *bn, size_t pad, bool secret)
{
    enum clst_status rc = CLST_E_CRYPTO;
    struct clst_buf raw, text;
    size_t size = (size_t)BN_num_bytes(bn);
    json_t *s;

    if (secret) {
        clst_buf_init_secret(&raw, JWK_RSA_MAX_BYTES);
        clst_buf_init_secret(&text, JWK_RSA_MAX_BYTES * 2);
    } else {
        clst_buf_init(&raw, JWK_RSA_MAX_BYTES);
        clst_buf_init(&text, JWK_RSA_MAX_BYTES * 2);
    }
    if (pad != 0) {
        if (size > pad) {
            goto out;
        }
        size = pad;
    }
    if (size == 0) {
        size = 1; /* RFC 7518 2: zero is a single zero octet */
    }
    rc = clst_buf_reserve(&raw, size);
    if (rc != CLST_OK) {
        goto out;
    }
    rc = CLST_E_CRYPTO;
    if (size > INT_MAX || BN_bn2binpad(bn, raw.data, (int)size) != (int)size) {
        goto out;
    }
    raw.size = size;
    rc = clst_b64url_encode(raw.data, raw.size, &text);
    if (rc != CLST_OK) {
        goto out;
    }
    rc = CLST_E_NOMEM;
    s = json_stringn((const char *)text.data, text.size);
    if (s == NULL || json_object_set_new(obj, name, s) != 0) {
        goto out;
    }
    rc = CLST_OK;
out:
    clst_buf_cleanup(&raw);
    clst_buf_cleanup(&text);
    return rc;
}

json_t *
clst_json_b64url(const uint8_t *data, size_t size)
{
    struct clst_buf b;
    json_t *j = NULL;
    clst_buf_init(&b, clst_b64url_encoded_size(size) + 1);
    if (clst_b64url_encode(data, size, &b) == CLST_OK) {
        j = json_stringn(b.size > 0 ? (const char *)b.data : "", b.size);
    }
    clst_buf_cleanup(&b);
    return j;
}

/* Fetches BIGNUM parameter `param` and stores it as member `name`. */
static enum clst_status
copy_param(const EVP_PKEY *key, json_t *obj, const char *param, const char *name, size_t pad,
           bool secret)
{
    BIGNUM *bn = NULL;
    enum clst_status rc = CLST_E_CRYPTO;

    if (EVP_PKEY_get_bn_param(key, param, &bn) == 1 && bn != NULL) {
        rc = set_bn_member(obj, name, bn, pad, secret);
    }
    BN_clear_free(bn);
    return rc;
}

enum clst_status
clst_pkey_to_jwk(const EVP_PKEY *key, bool include_private, json_t **out)
{
    static const struct {
        const char *param;
        const char *name;
    } rsa_priv[] = {
        {OSSL_PKEY_PARAM_RSA_D, "d"},          {OSSL_PKEY_PARAM_RSA_FACTOR1, "p"},
        {OSSL_PKEY_PARAM_RSA_FACTOR2, "q"},    {OSSL_PKEY_PARAM_RSA_EXPONENT1, "dp"},
        {OSSL_PKEY_PARAM_RSA_EXPONENT2, "dq"}, {OSSL_PKEY_PARAM_RSA_COEFFICIENT1, "qi"},
    };
    enum clst_status rc = CLST_E_INVAL;
    enum clst_key_kind kind = clst_pkey_kind(key);
    json_t *obj = NULL;
    enum clst_curve curve;
    size_t cs = 0;

    if (kind == CLST_KEY_UNKNOWN || out == NULL) {
        return CLST_E_INVAL;
    }
    if (include_private && !clst_pkey_has_private(key)) {
        return CLST_E_INVAL;
    }
    rc = CLST_E_NOMEM;
    obj = json_object();
    if (obj == NULL) {
        goto out;
    }
    if (kind == CLST_KEY_RSA) {
        if (json_object_set_new(obj, "kty", json_string("RSA")) != 0) {
            goto out;
        }
        rc = copy_param(key, obj, OSSL_PKEY_PARAM_RSA_N, "n", 0, false);
        if (rc == CLST_OK) {
            rc = copy_param(key, obj, OSSL_PKEY_PARAM_RSA_E, "e", 0, false);
        }
        for (size_t i = 0;
             include_private && rc == CLST_OK && i < sizeof(rsa_priv) / sizeof(rsa_priv[0]); i++) {
            rc = copy_param(key, obj, rsa_priv[i].param, rsa_priv[i].name, 0, true);
        }
        goto out;
    }

    curve = kind == CLST_KEY_EC_P256   ? CLST_CURVE_P256
            : kind == CLST_KEY_EC_P384 ? CLST_CURVE_P384
                                       : CLST_CURVE_P521;
    if (curve_group(curve, &cs) == NULL ||
        json_object_set_new(obj, "kty", json_string("EC")) != 0 ||
        json_object_set_new(obj, "crv", json_string(clst_curve_name(curve))) != 0) {
        goto out;
    }
    rc = copy_param(key, obj, OSSL_PKEY_PARAM_EC_PUB_X, "x", cs, false);
    if (rc == CLST_OK) {
        rc = copy_param(key, obj, OSSL_PKEY_PARAM_EC_PUB_Y, "y", cs, false);
    }
    if (rc == CLST_OK && include_private) {
        rc = copy_param(key, obj, OSSL_PKEY_PARAM_PRIV_KEY, "d", cs, true);
    }
out:
    if (rc == CLST_OK) {
        *out = obj;
    } else {
        json_decref(obj);
        ERR_clear_error();
    }
    return rc;
}
