/*
 * Key material of the vault's keys and the operations on it (see keymat.h).
 *
 * Everything that comes from a request (algorithm names, lengths, IVs, tags, digests, JWKs) is
 * checked here before OpenSSL sees it; everything that comes from the store (private material,
 * public text, key_ops text, backup blobs) is treated as hostile too: a mismatch is reported as an
 * integrity failure, never papered over.
 *
 * CT: the cryptographic operations are OpenSSL's; comparisons of authentication tags are done by
 * OpenSSL's GCM/KW implementations. Nothing here branches on secret bytes, except that the length
 * of a decrypted plaintext is public (it is returned).
 */
#include "vault/keymat.h"

#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "vault/vault_int.h"

#define RSA_MAX_BYTES   (CLST_RSA_MAX_BITS / 8)
#define EC_MAX_SIG_DER  160
#define PUBLIC_TEXT_MAX CLST_VAULT_PUBLIC_MAX

struct clst_vault_keymat {
    enum clst_vault_keymat_type type;
    EVP_PKEY *pkey;          /* RSA, EC */
    struct clst_secret *oct; /* oct: 16, 24 or 32 bytes */
    enum clst_curve curve;   /* EC */
    int bits;
};

/* ---- key types and specs -------------------------------------------------------------------- */

enum clst_status
clst_vault_keymat_kty_parse(const char *kty, enum clst_vault_keymat_type *out, struct clst_err *err)
{
    if (kty == NULL || out == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "the key type (kty) is missing");
    }
    if (strcmp(kty, "RSA") == 0) {
        *out = CLST_KEYMAT_RSA;
    } else if (strcmp(kty, "EC") == 0) {
        *out = CLST_KEYMAT_EC;
    } else if (strcmp(kty, "oct") == 0) {
        *out = CLST_KEYMAT_OCT;
    } else if (strcmp(kty, "RSA-HSM") == 0 || strcmp(kty, "EC-HSM") == 0 ||
               strcmp(kty, "oct-HSM") == 0) {
        return clst_err_set(err, CLST_E_INVAL,
                            "kty '%s' asks for an HSM-protected key; Cloister keeps key material "
                            "in software, encrypted under the master key: use RSA, EC or oct",
                            kty);
    } else {
        return clst_err_set(err, CLST_E_INVAL,
                            "the key type (kty) is not supported: use RSA, EC or oct");
    }
    return CLST_OK;
}

const char *
clst_vault_keymat_kty_name(enum clst_vault_keymat_type type)
{
    switch (type) {
    case CLST_KEYMAT_RSA:
        return "RSA";
    case CLST_KEYMAT_EC:
        return "EC";
    case CLST_KEYMAT_OCT:
        return "oct";
    case CLST_KEYMAT_NONE:
        break;
    }
    return NULL;
}

static int
curve_bits(enum clst_curve curve)
{
    switch (curve) {
    case CLST_CURVE_P256:
        return 256;
    case CLST_CURVE_P384:
        return 384;
    case CLST_CURVE_P521:
        return 521;
    }
    return 0;
}

enum clst_status
clst_vault_keymat_spec_make(enum clst_vault_keymat_type type, bool has_size, int64_t key_size,
                            const char *crv, bool has_exp, int64_t public_exponent,
                            struct clst_vault_keymat_spec *out, struct clst_err *err)
{
    struct clst_vault_keymat_spec spec;

    memset(&spec, 0, sizeof(spec));
    spec.type = type;
    if (out == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "key spec: missing argument");
    }
    switch (type) {
    case CLST_KEYMAT_RSA:
        if (crv != NULL) {
            return clst_err_set(err, CLST_E_INVAL, "crv is for EC keys, not RSA keys");
        }
        spec.bits = 2048;
        if (has_size) {
            if (key_size != 2048 && key_size != 3072 && key_size != 4096) {
                return clst_err_set(err, CLST_E_INVAL,
                                    "RSA key_size must be 2048, 3072 or 4096 (got %lld)",
                                    (long long)key_size);
            }
            spec.bits = (int)key_size;
        }
        if (has_exp && public_exponent != 65537) {
            return clst_err_set(err, CLST_E_INVAL,
                                "public_exponent must be 65537 (the only one supported)");
        }
        break;
    case CLST_KEYMAT_EC:
        if (has_exp) {
            return clst_err_set(err, CLST_E_INVAL, "public_exponent is for RSA keys only");
        }
        spec.curve = CLST_CURVE_P256;
        if (crv != NULL && clst_curve_parse(crv, &spec.curve) != CLST_OK) {
            return clst_err_set(err, CLST_E_INVAL, "crv must be P-256, P-384 or P-521");
        }
        spec.bits = curve_bits(spec.curve);
        if (has_size && key_size != spec.bits) {
            return clst_err_set(err, CLST_E_INVAL,
                                "key_size %lld does not match curve %s (%d bits); omit key_size "
                                "for EC keys",
                                (long long)key_size, clst_curve_name(spec.curve), spec.bits);
        }
        break;
    case CLST_KEYMAT_OCT:
        if (crv != NULL || has_exp) {
            return clst_err_set(err, CLST_E_INVAL,
                                "crv and public_exponent do not apply to oct keys");
        }
        spec.bits = 256;
        if (has_size) {
            if (key_size != 128 && key_size != 192 && key_size != 256) {
                return clst_err_set(err, CLST_E_INVAL,
                                    "oct key_size must be 128, 192 or 256 (got %lld)",
                                    (long long)key_size);
            }
            spec.bits = (int)key_size;
        }
        break;
    case CLST_KEYMAT_NONE:
    default:
        return clst_err_set(err, CLST_E_INVAL, "the key type (kty) is not supported");
    }
    *out = spec;
    return CLST_OK;
}

/* Parses stored public text as a JSON object (CLST_E_VERIFY when it does not parse). */
static enum clst_status
load_public(const uint8_t *pub, size_t pub_size, json_t **out, struct clst_err *err)
{
    json_error_t jerr;
    json_t *obj;

    if (pub == NULL || pub_size == 0 || pub_size > PUBLIC_TEXT_MAX) {
        return clst_err_set(err, CLST_E_VERIFY,
                            "the stored public key is missing or too large (possible tampering)");
    }
    obj = json_loadb((const char *)pub, pub_size, JSON_REJECT_DUPLICATES, &jerr);
    if (obj == NULL || !json_is_object(obj)) {
        json_decref(obj);
        return clst_err_set(err, CLST_E_VERIFY,
                            "the stored public key does not parse (possible tampering)");
    }
    *out = obj;
    return CLST_OK;
}

/* Bytes of a base64url member, 0 when absent or malformed. */
static size_t
b64_member_size(const json_t *obj, const char *name)
{
    const char *s = json_string_value(json_object_get(obj, name));
    struct clst_buf raw;
    size_t size = 0;

    if (s == NULL) {
        return 0;
    }
    clst_buf_init(&raw, RSA_MAX_BYTES + 8);
    if (clst_b64url_decode(s, strlen(s), &raw) == CLST_OK) {
        size = raw.size;
    }
    clst_buf_cleanup(&raw);
    return size;
}

enum clst_status
clst_vault_keymat_spec_from_public(const uint8_t *pub, size_t pub_size,
                                   struct clst_vault_keymat_spec *out, struct clst_err *err)
{
    enum clst_status rc;
    json_t *obj = NULL;
    const char *kty;
    struct clst_vault_keymat_spec spec;

    memset(&spec, 0, sizeof(spec));
    rc = load_public(pub, pub_size, &obj, err);
    if (rc != CLST_OK) {
        return rc;
    }
    rc = CLST_E_VERIFY;
    kty = json_string_value(json_object_get(obj, "kty"));
    if (kty == NULL) {
        goto out;
    }
    if (strcmp(kty, "RSA") == 0) {
        size_t n = b64_member_size(obj, "n");
        spec.type = CLST_KEYMAT_RSA;
        spec.bits = (int)(n * 8);
        if (spec.bits < CLST_RSA_MIN_BITS || spec.bits > CLST_RSA_MAX_BITS) {
            goto out;
        }
    } else if (strcmp(kty, "EC") == 0) {
        const char *crv = json_string_value(json_object_get(obj, "crv"));
        spec.type = CLST_KEYMAT_EC;
        if (crv == NULL || clst_curve_parse(crv, &spec.curve) != CLST_OK) {
            goto out;
        }
        spec.bits = curve_bits(spec.curve);
    } else if (strcmp(kty, "oct") == 0) {
        json_int_t bits = json_integer_value(json_object_get(obj, "key_size"));
        spec.type = CLST_KEYMAT_OCT;
        if (bits != 128 && bits != 192 && bits != 256) {
            goto out;
        }
        spec.bits = (int)bits;
    } else {
        goto out;
    }
    *out = spec;
    rc = CLST_OK;
out:
    json_decref(obj);
    if (rc != CLST_OK) {
        rc = clst_err_set(err, CLST_E_VERIFY,
                          "the stored public key is not valid (possible tampering)");
    }
    return rc;
}

/* ---- key material --------------------------------------------------------------------------- */

static enum clst_status
km_new(enum clst_vault_keymat_type type, struct clst_vault_keymat **out)
{
    struct clst_vault_keymat *km = calloc(1, sizeof(*km));
    if (km == NULL) {
        return CLST_E_NOMEM;
    }
    km->type = type;
    *out = km;
    return CLST_OK;
}

void
clst_vault_keymat_free(struct clst_vault_keymat *km)
{
    if (km == NULL) {
        return;
    }
    EVP_PKEY_free(km->pkey);
    clst_secret_free(km->oct);
    free(km);
}

/* Takes ownership of pkey; checks it fits `type` and the supported sizes. */
static enum clst_status
km_from_pkey(enum clst_vault_keymat_type type, EVP_PKEY *pkey, struct clst_vault_keymat **out)
{
    enum clst_status rc = CLST_E_INVAL;
    struct clst_vault_keymat *km = NULL;
    enum clst_key_kind kind = clst_pkey_kind(pkey);
    int bits = clst_pkey_bits(pkey);
    enum clst_curve curve = CLST_CURVE_P256;

    if (type == CLST_KEYMAT_RSA) {
        if (kind != CLST_KEY_RSA || bits < CLST_RSA_MIN_BITS || bits > CLST_RSA_MAX_BITS) {
            goto out;
        }
    } else if (type == CLST_KEYMAT_EC) {
        if (kind == CLST_KEY_EC_P256) {
            curve = CLST_CURVE_P256;
        } else if (kind == CLST_KEY_EC_P384) {
            curve = CLST_CURVE_P384;
        } else if (kind == CLST_KEY_EC_P521) {
            curve = CLST_CURVE_P521;
        } else {
            goto out;
        }
        bits = curve_bits(curve);
    } else {
        goto out;
    }
    rc = km_new(type, &km);
    if (rc != CLST_OK) {
        goto out;
    }
    km->pkey = pkey;
    pkey = NULL;
    km->curve = curve;
    km->bits = bits;
    *out = km;
    rc = CLST_OK;
out:
    EVP_PKEY_free(pkey);
    return rc;
}

static enum clst_status
km_from_oct(const uint8_t *key, size_t size, struct clst_vault_keymat **out)
{
    enum clst_status rc;
    struct clst_vault_keymat *km = NULL;

    if (size != 16 && size != 24 && size != 32) {
        return CLST_E_INVAL;
    }
    rc = km_new(CLST_KEYMAT_OCT, &km);
    if (rc == CLST_OK) {
        rc = clst_secret_from(key, size, &km->oct);
    }
    if (rc != CLST_OK) {
        clst_vault_keymat_free(km);
        return rc;
    }
    km->bits = (int)(size * 8);
    *out = km;
    return CLST_OK;
}

enum clst_status
clst_vault_keymat_generate(const struct clst_vault_keymat_spec *spec,
                           struct clst_vault_keymat **out, struct clst_err *err)
{
    enum clst_status rc = CLST_E_INVAL;
    EVP_PKEY *pkey = NULL;
    uint8_t key[32];

    if (spec == NULL || out == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "key generation: missing argument");
    }
    switch (spec->type) {
    case CLST_KEYMAT_RSA:
        if (spec->bits != 2048 && spec->bits != 3072 && spec->bits != 4096) {
            return clst_err_set(err, CLST_E_INVAL, "RSA key_size must be 2048, 3072 or 4096");
        }
        rc = clst_rsa_generate(spec->bits, &pkey);
        if (rc == CLST_OK) {
            rc = km_from_pkey(CLST_KEYMAT_RSA, pkey, out);
        }
        break;
    case CLST_KEYMAT_EC:
        rc = clst_ec_generate(spec->curve, &pkey);
        if (rc == CLST_OK) {
            rc = km_from_pkey(CLST_KEYMAT_EC, pkey, out);
        }
        break;
    case CLST_KEYMAT_OCT:
        if (spec->bits != 128 && spec->bits != 192 && spec->bits != 256) {
            return clst_err_set(err, CLST_E_INVAL, "oct key_size must be 128, 192 or 256");
        }
        rc = clst_random(key, (size_t)spec->bits / 8);
        if (rc == CLST_OK) {
            rc = km_from_oct(key, (size_t)spec->bits / 8, out);
        }
        OPENSSL_cleanse(key, sizeof(key));
        break;
    case CLST_KEYMAT_NONE:
    default:
        return clst_err_set(err, CLST_E_INVAL, "the key type (kty) is not supported");
    }
    if (rc != CLST_OK) {
        return clst_err_set(err, rc, "generating the %s key failed",
                            clst_vault_keymat_kty_name(spec->type));
    }
    return CLST_OK;
}

enum clst_status
clst_vault_keymat_from_jwk(const json_t *jwk, struct clst_vault_keymat **out, struct clst_err *err)
{
    enum clst_status rc;
    enum clst_vault_keymat_type type;
    EVP_PKEY *pkey = NULL;
    const char *kty;
    struct clst_err why;

    clst_err_clear(&why);
    if (!json_is_object(jwk) || out == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "the key must be a JSON Web Key object");
    }
    kty = json_string_value(json_object_get(jwk, "kty"));
    if (kty == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "the key's kty is missing or not a string");
    }
    rc = clst_vault_keymat_kty_parse(kty, &type, err);
    if (rc != CLST_OK) {
        return rc;
    }
    if (type == CLST_KEYMAT_OCT) {
        const json_t *k = json_object_get(jwk, "k");
        struct clst_buf raw;
        if (!json_is_string(k)) {
            return clst_err_set(err, CLST_E_INVAL, "an oct key needs its key bytes in \"k\"");
        }
        clst_buf_init_secret(&raw, 64);
        rc = clst_b64url_decode(json_string_value(k), json_string_length(k), &raw);
        if (rc != CLST_OK) {
            clst_buf_cleanup(&raw);
            return clst_err_set(err, CLST_E_INVAL, "\"k\" is not valid base64url");
        }
        rc = km_from_oct(raw.data, raw.size, out);
        clst_buf_cleanup(&raw);
        if (rc == CLST_E_INVAL) {
            return clst_err_set(err, rc, "an oct key must be 16, 24 or 32 bytes (128/192/256)");
        }
        return rc == CLST_OK ? CLST_OK : clst_err_set(err, rc, "importing the oct key failed");
    }
    rc = clst_pkey_from_jwk(jwk, &pkey, &why);
    if (rc != CLST_OK) {
        return clst_err_set(err, CLST_E_INVAL, "the JSON Web Key is not valid: %s", why.msg);
    }
    if (!clst_pkey_has_private(pkey)) {
        EVP_PKEY_free(pkey);
        return clst_err_set(err, CLST_E_INVAL,
                            "the key has no private part: import the whole key (d, and p, q, dp, "
                            "dq, qi for RSA)");
    }
    rc = km_from_pkey(type, pkey, out);
    if (rc == CLST_E_INVAL) {
        return clst_err_set(err, rc,
                            "the key does not match kty %s or has an unsupported size (RSA 2048 to "
                            "4096 bits; EC P-256, P-384, P-521)",
                            kty);
    }
    return rc == CLST_OK ? CLST_OK : clst_err_set(err, rc, "importing the key failed");
}

enum clst_vault_keymat_type
clst_vault_keymat_type(const struct clst_vault_keymat *km)
{
    return km != NULL ? km->type : CLST_KEYMAT_NONE;
}

int
clst_vault_keymat_bits(const struct clst_vault_keymat *km)
{
    return km != NULL ? km->bits : 0;
}

void
clst_vault_keymat_spec_of(const struct clst_vault_keymat *km, struct clst_vault_keymat_spec *out)
{
    memset(out, 0, sizeof(*out));
    if (km != NULL) {
        out->type = km->type;
        out->bits = km->bits;
        out->curve = km->curve;
    }
}

EVP_PKEY *
clst_vault_keymat_pkey(const struct clst_vault_keymat *km)
{
    return km != NULL ? km->pkey : NULL;
}

enum clst_status
clst_vault_keymat_export_private(const struct clst_vault_keymat *km, struct clst_buf *out)
{
    if (km == NULL || out == NULL || !out->secret) {
        return CLST_E_INVAL;
    }
    if (km->type == CLST_KEYMAT_OCT) {
        return clst_buf_append(out, km->oct->ptr, km->oct->size);
    }
    return clst_pkey_to_der(km->pkey, true, out);
}

/*
 * Parsed private keys, for a short while. Loading stored RSA/EC material means decoding the DER
 * and checking the key's consistency (for RSA: n = pq, e*d = 1 mod lcm(p-1, q-1), ...), several
 * milliseconds for RSA-2048 and most of a sign request's cost, repeated on every use. Entries
 * are keyed by the SHA-256 of the type and the unsealed DER (the same bytes always parse to the
 * same key; no name or version is trusted for this) and live at most PKEY_CACHE_TTL_NS, so a
 * purged key's parsed copy does not outlive it by more than that. The EVP_PKEY is shared by
 * reference: OpenSSL allows concurrent signing with one key, and nothing modifies a cached key.
 */
#define PKEY_CACHE_SLOTS  64
#define PKEY_CACHE_TTL_NS (30ull * 1000000000ull)

static struct {
    uint8_t digest[CLST_SHA256_SIZE];
    EVP_PKEY *pkey;
    uint64_t born;
    /* SHA-256 of a stored public part found to match this key (clst_vault_keymat_matches_public
     * rebuilds the public JWK from the private key: a tenth of an ES256 request's CPU). */
    uint8_t public_digest[CLST_SHA256_SIZE];
    bool public_checked;
} pkey_cache[PKEY_CACHE_SLOTS];
static pthread_mutex_t pkey_cache_lock = PTHREAD_MUTEX_INITIALIZER;

static bool
pkey_cache_digest(enum clst_vault_keymat_type type, const uint8_t *data, size_t size,
                  uint8_t digest[static CLST_SHA256_SIZE])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    uint8_t t = (uint8_t)type;
    unsigned int n = 0;
    bool ok = ctx != NULL && EVP_DigestInit_ex(ctx, clst_hash_md(CLST_HASH_SHA256), NULL) == 1 &&
              EVP_DigestUpdate(ctx, &t, 1) == 1 && EVP_DigestUpdate(ctx, data, size) == 1 &&
              EVP_DigestFinal_ex(ctx, digest, &n) == 1 && n == CLST_SHA256_SIZE;
    EVP_MD_CTX_free(ctx);
    return ok;
}

/* A new reference to the cached key for `digest`, or NULL. */
static EVP_PKEY *
pkey_cache_get(const uint8_t digest[static CLST_SHA256_SIZE])
{
    EVP_PKEY *found = NULL;
    uint64_t now = clst_monotonic_ns();
    pthread_mutex_lock(&pkey_cache_lock);
    for (size_t i = 0; i < PKEY_CACHE_SLOTS; i++) {
        if (pkey_cache[i].pkey == NULL) {
            continue;
        }
        if (now - pkey_cache[i].born > PKEY_CACHE_TTL_NS) {
            EVP_PKEY_free(pkey_cache[i].pkey);
            pkey_cache[i].pkey = NULL;
            continue;
        }
        if (found == NULL && CRYPTO_memcmp(pkey_cache[i].digest, digest, CLST_SHA256_SIZE) == 0 &&
            EVP_PKEY_up_ref(pkey_cache[i].pkey) == 1) {
            found = pkey_cache[i].pkey;
        }
    }
    pthread_mutex_unlock(&pkey_cache_lock);
    return found;
}

static void
pkey_cache_put(const uint8_t digest[static CLST_SHA256_SIZE], EVP_PKEY *pkey)
{
    if (EVP_PKEY_up_ref(pkey) != 1) {
        return;
    }
    size_t slot = 0;
    pthread_mutex_lock(&pkey_cache_lock);
    for (size_t i = 0; i < PKEY_CACHE_SLOTS; i++) {
        if (pkey_cache[i].pkey == NULL) {
            slot = i;
            break;
        }
        if (pkey_cache[i].born < pkey_cache[slot].born) {
            slot = i; /* the oldest entry makes room */
        }
    }
    EVP_PKEY_free(pkey_cache[slot].pkey);
    memcpy(pkey_cache[slot].digest, digest, CLST_SHA256_SIZE);
    pkey_cache[slot].pkey = pkey;
    pkey_cache[slot].born = clst_monotonic_ns();
    pkey_cache[slot].public_checked = false;
    pthread_mutex_unlock(&pkey_cache_lock);
}

/* Whether the cached entry of `pkey` (the same object: the caller holds a reference, so its
 * address cannot have been reused) has already matched the public part with this digest; with
 * `remember`, records that it does. */
static bool
pkey_cache_public(const EVP_PKEY *pkey, const uint8_t digest[static CLST_SHA256_SIZE],
                  bool remember)
{
    bool known = false;
    pthread_mutex_lock(&pkey_cache_lock);
    for (size_t i = 0; i < PKEY_CACHE_SLOTS; i++) {
        if (pkey_cache[i].pkey != pkey) {
            continue;
        }
        if (remember) {
            memcpy(pkey_cache[i].public_digest, digest, CLST_SHA256_SIZE);
            pkey_cache[i].public_checked = true;
        } else {
            known = pkey_cache[i].public_checked &&
                    memcmp(pkey_cache[i].public_digest, digest, CLST_SHA256_SIZE) == 0;
        }
        break;
    }
    pthread_mutex_unlock(&pkey_cache_lock);
    return known;
}

enum clst_status
clst_vault_keymat_import_private(enum clst_vault_keymat_type type, const uint8_t *data, size_t size,
                                 struct clst_vault_keymat **out, struct clst_err *err)
{
    enum clst_status rc;
    EVP_PKEY *pkey = NULL;
    struct clst_err ignored;

    if (out == NULL || (data == NULL && size > 0)) {
        return clst_err_set(err, CLST_E_INVAL, "key material: missing argument");
    }
    if (type == CLST_KEYMAT_OCT) {
        rc = km_from_oct(data, size, out);
    } else if (type == CLST_KEYMAT_RSA || type == CLST_KEYMAT_EC) {
        uint8_t digest[CLST_SHA256_SIZE];
        bool cacheable = pkey_cache_digest(type, data, size, digest);
        pkey = cacheable ? pkey_cache_get(digest) : NULL;
        rc = CLST_OK;
        if (pkey == NULL) {
            rc = clst_pkey_from_der(data, size, &pkey, &ignored);
            if (rc == CLST_OK && !clst_pkey_has_private(pkey)) {
                rc = CLST_E_VERIFY;
            }
            if (rc == CLST_OK && cacheable) {
                pkey_cache_put(digest, pkey);
            }
        }
        if (rc == CLST_OK) {
            rc = km_from_pkey(type, pkey, out);
        } else {
            EVP_PKEY_free(pkey);
        }
    } else {
        rc = CLST_E_INVAL;
    }
    if (rc == CLST_E_INVAL || rc == CLST_E_MALFORMED || rc == CLST_E_VERIFY) {
        return clst_err_set(err, CLST_E_VERIFY,
                            "the stored key material does not match its key type %s (possible "
                            "tampering)",
                            clst_vault_keymat_kty_name(type) ? clst_vault_keymat_kty_name(type)
                                                             : "?");
    }
    if (rc != CLST_OK) {
        return clst_err_set(err, rc, "loading the key material failed");
    }
    return CLST_OK;
}

enum clst_status
clst_vault_keymat_public_json(const struct clst_vault_keymat *km, json_t **out)
{
    json_t *obj;

    if (km == NULL || out == NULL) {
        return CLST_E_INVAL;
    }
    if (km->type == CLST_KEYMAT_OCT) {
        obj = json_pack("{s:s, s:i}", "kty", "oct", "key_size", (json_int_t)km->bits);
        if (obj == NULL) {
            return CLST_E_NOMEM;
        }
        *out = obj;
        return CLST_OK;
    }
    return clst_pkey_to_jwk(km->pkey, false, out);
}

enum clst_status
clst_vault_keymat_public_text(const struct clst_vault_keymat *km, struct clst_buf *out)
{
    json_t *obj = NULL;
    char *text = NULL;
    enum clst_status rc = clst_vault_keymat_public_json(km, &obj);

    if (rc != CLST_OK) {
        return rc;
    }
    text = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(obj);
    if (text == NULL) {
        return CLST_E_NOMEM;
    }
    rc = clst_buf_append_str(out, text);
    free(text);
    return rc;
}

bool
clst_vault_keymat_matches_public(const struct clst_vault_keymat *km, const uint8_t *pub,
                                 size_t pub_size)
{
    json_t *mine = NULL, *stored = NULL;
    bool same = false;
    uint8_t digest[CLST_SHA256_SIZE];
    bool hashed = km != NULL && km->pkey != NULL && pub != NULL &&
                  clst_sha256(pub, pub_size, digest) == CLST_OK;

    if (hashed && pkey_cache_public(km->pkey, digest, false)) {
        return true;
    }
    if (clst_vault_keymat_public_json(km, &mine) == CLST_OK &&
        load_public(pub, pub_size, &stored, NULL) == CLST_OK) {
        same = json_equal(mine, stored) == 1;
    }
    json_decref(mine);
    json_decref(stored);
    if (same && hashed) {
        pkey_cache_public(km->pkey, digest, true);
    }
    return same;
}

enum clst_status
clst_vault_keymat_jwk_response(const char *kid, const char *kty, unsigned key_ops,
                               const uint8_t *pub, size_t pub_size, json_t **out,
                               struct clst_err *err)
{
    static const char *const copied[] = {"n", "e", "crv", "x", "y"};
    enum clst_status rc;
    json_t *stored = NULL, *jwk = NULL, *ops = NULL;

    if (kid == NULL || kty == NULL || out == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "key response: missing argument");
    }
    rc = load_public(pub, pub_size, &stored, err);
    if (rc != CLST_OK) {
        return rc;
    }
    rc = CLST_E_NOMEM;
    ops = clst_vault_keymat_ops_to_json(key_ops);
    jwk = json_object();
    if (ops == NULL || jwk == NULL || json_object_set_new(jwk, "kid", json_string(kid)) != 0 ||
        json_object_set_new(jwk, "kty", json_string(kty)) != 0 ||
        json_object_set(jwk, "key_ops", ops) != 0) {
        goto out;
    }
    for (size_t i = 0; i < sizeof(copied) / sizeof(copied[0]); i++) {
        json_t *v = json_object_get(stored, copied[i]);
        if (v == NULL) {
            continue;
        }
        if (!json_is_string(v)) {
            rc = clst_err_set(err, CLST_E_VERIFY,
                              "the stored public key is not valid (possible tampering)");
            goto out;
        }
        if (json_object_set(jwk, copied[i], v) != 0) {
            goto out;
        }
    }
    *out = jwk;
    jwk = NULL;
    rc = CLST_OK;
out:
    if (rc == CLST_E_NOMEM) {
        clst_err_set(err, rc, "out of memory building the key");
    }
    json_decref(ops);
    json_decref(jwk);
    json_decref(stored);
    return rc;
}

/* ---- key_ops -------------------------------------------------------------------------------- */

static const struct {
    enum clst_vault_keyop op;
    const char *name;
} keyops[] = {
    {CLST_KEYOP_ENCRYPT, "encrypt"}, {CLST_KEYOP_DECRYPT, "decrypt"},
    {CLST_KEYOP_SIGN, "sign"},       {CLST_KEYOP_VERIFY, "verify"},
    {CLST_KEYOP_WRAP, "wrapKey"},    {CLST_KEYOP_UNWRAP, "unwrapKey"},
    {CLST_KEYOP_IMPORT, "import"},   {CLST_KEYOP_EXPORT, "export"},
};
#define KEYOP_COUNT (sizeof(keyops) / sizeof(keyops[0]))

const char *
clst_vault_keyop_name(enum clst_vault_keyop op)
{
    for (size_t i = 0; i < KEYOP_COUNT; i++) {
        if (keyops[i].op == op) {
            return keyops[i].name;
        }
    }
    return NULL;
}

unsigned
clst_vault_keyop_parse(const char *name)
{
    if (name == NULL) {
        return 0;
    }
    for (size_t i = 0; i < KEYOP_COUNT; i++) {
        if (strcmp(keyops[i].name, name) == 0) {
            return (unsigned)keyops[i].op;
        }
    }
    return 0;
}

unsigned
clst_vault_keymat_ops_supported(enum clst_vault_keymat_type type)
{
    switch (type) {
    case CLST_KEYMAT_RSA:
        return CLST_KEYOP_ALL;
    case CLST_KEYMAT_EC:
        return CLST_KEYOP_SIGN | CLST_KEYOP_VERIFY | CLST_KEYOP_IMPORT | CLST_KEYOP_EXPORT;
    case CLST_KEYMAT_OCT:
        return CLST_KEYOP_ENCRYPT | CLST_KEYOP_DECRYPT | CLST_KEYOP_WRAP | CLST_KEYOP_UNWRAP |
               CLST_KEYOP_IMPORT | CLST_KEYOP_EXPORT;
    case CLST_KEYMAT_NONE:
        break;
    }
    return 0;
}

unsigned
clst_vault_keymat_ops_default(enum clst_vault_keymat_type type)
{
    switch (type) {
    case CLST_KEYMAT_RSA:
        return CLST_KEYOP_ENCRYPT | CLST_KEYOP_DECRYPT | CLST_KEYOP_SIGN | CLST_KEYOP_VERIFY |
               CLST_KEYOP_WRAP | CLST_KEYOP_UNWRAP;
    case CLST_KEYMAT_EC:
        return CLST_KEYOP_SIGN | CLST_KEYOP_VERIFY;
    case CLST_KEYMAT_OCT:
        return CLST_KEYOP_ENCRYPT | CLST_KEYOP_DECRYPT | CLST_KEYOP_WRAP | CLST_KEYOP_UNWRAP;
    case CLST_KEYMAT_NONE:
        break;
    }
    return 0;
}

enum clst_status
clst_vault_keymat_ops_from_json(const json_t *arr, enum clst_vault_keymat_type type, unsigned *out,
                                struct clst_err *err)
{
    unsigned ops = 0;
    size_t i;
    const json_t *v;

    if (!json_is_array(arr) || out == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "key_ops must be an array of operation names");
    }
    if (json_array_size(arr) > KEYOP_COUNT) {
        return clst_err_set(err, CLST_E_INVAL, "key_ops lists more operations than exist");
    }
    json_array_foreach(arr, i, v)
    {
        const char *name = json_string_value(v);
        unsigned op = clst_vault_keyop_parse(name);
        if (name == NULL) {
            return clst_err_set(err, CLST_E_INVAL, "key_ops[%zu] is not a string", i);
        }
        if (op == 0) {
            return clst_err_set(err, CLST_E_INVAL,
                                "key_ops[%zu] is not an operation: use encrypt, decrypt, sign, "
                                "verify, wrapKey, unwrapKey, import or export",
                                i);
        }
        if ((ops & op) != 0) {
            return clst_err_set(err, CLST_E_INVAL, "key_ops lists '%s' twice", name);
        }
        if (type != CLST_KEYMAT_NONE && (clst_vault_keymat_ops_supported(type) & op) == 0) {
            return clst_err_set(err, CLST_E_INVAL, "an %s key cannot '%s'",
                                clst_vault_keymat_kty_name(type), name);
        }
        ops |= op;
    }
    *out = ops;
    return CLST_OK;
}

enum clst_status
clst_vault_keymat_ops_from_text(const char *text, unsigned dflt, unsigned *out,
                                struct clst_err *err)
{
    json_error_t jerr;
    json_t *arr;
    enum clst_status rc;

    if (out == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "key_ops: missing argument");
    }
    if (text == NULL) {
        *out = dflt;
        return CLST_OK;
    }
    arr = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    rc = clst_vault_keymat_ops_from_json(arr, CLST_KEYMAT_NONE, out, NULL);
    json_decref(arr);
    if (rc != CLST_OK) {
        return clst_err_set(err, CLST_E_VERIFY, "the stored key_ops are not valid");
    }
    return CLST_OK;
}

json_t *
clst_vault_keymat_ops_to_json(unsigned ops)
{
    json_t *arr = json_array();
    if (arr == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < KEYOP_COUNT; i++) {
        if ((ops & (unsigned)keyops[i].op) != 0 &&
            json_array_append_new(arr, json_string(keyops[i].name)) != 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

enum clst_status
clst_vault_keymat_ops_to_text(unsigned ops, struct clst_buf *out)
{
    json_t *arr = clst_vault_keymat_ops_to_json(ops);
    char *text;
    enum clst_status rc;

    if (arr == NULL) {
        return CLST_E_NOMEM;
    }
    text = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    if (text == NULL) {
        return CLST_E_NOMEM;
    }
    rc = clst_buf_append_str(out, text);
    free(text);
    return rc;
}

enum clst_status
clst_vault_keymat_ops_check(unsigned ops, enum clst_vault_keyop op, struct clst_err *err)
{
    if ((ops & (unsigned)op) != 0) {
        return CLST_OK;
    }
    return clst_err_set(
        err, CLST_E_DENIED,
        "the key's key_ops do not allow '%s' (update the key's key_ops to allow it)",
        clst_vault_keyop_name(op) ? clst_vault_keyop_name(op) : "?");
}

/* ---- algorithms ----------------------------------------------------------------------------- */

static const struct {
    enum clst_vault_alg alg;
    const char *name;
} algs[] = {
    {CLST_ALG_RSA_OAEP, "RSA-OAEP"}, {CLST_ALG_RSA_OAEP_256, "RSA-OAEP-256"},
    {CLST_ALG_RSA1_5, "RSA1_5"},     {CLST_ALG_A128GCM, "A128GCM"},
    {CLST_ALG_A192GCM, "A192GCM"},   {CLST_ALG_A256GCM, "A256GCM"},
    {CLST_ALG_A128KW, "A128KW"},     {CLST_ALG_A192KW, "A192KW"},
    {CLST_ALG_A256KW, "A256KW"},     {CLST_ALG_RS256, "RS256"},
    {CLST_ALG_RS384, "RS384"},       {CLST_ALG_RS512, "RS512"},
    {CLST_ALG_PS256, "PS256"},       {CLST_ALG_PS384, "PS384"},
    {CLST_ALG_PS512, "PS512"},       {CLST_ALG_ES256, "ES256"},
    {CLST_ALG_ES384, "ES384"},       {CLST_ALG_ES512, "ES512"},
};

enum clst_status
clst_vault_alg_parse(const char *name, enum clst_vault_alg *out)
{
    if (name == NULL || out == NULL) {
        return CLST_E_INVAL;
    }
    for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
        if (strcmp(algs[i].name, name) == 0) {
            *out = algs[i].alg;
            return CLST_OK;
        }
    }
    return CLST_E_NOTFOUND;
}

const char *
clst_vault_alg_name(enum clst_vault_alg alg)
{
    for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
        if (algs[i].alg == alg) {
            return algs[i].name;
        }
    }
    return NULL;
}

enum clst_hash
clst_vault_alg_hash(enum clst_vault_alg alg)
{
    switch (alg) {
    case CLST_ALG_RS256:
    case CLST_ALG_PS256:
    case CLST_ALG_ES256:
        return CLST_HASH_SHA256;
    case CLST_ALG_RS384:
    case CLST_ALG_PS384:
    case CLST_ALG_ES384:
        return CLST_HASH_SHA384;
    case CLST_ALG_RS512:
    case CLST_ALG_PS512:
    case CLST_ALG_ES512:
        return CLST_HASH_SHA512;
    default:
        break;
    }
    return (enum clst_hash)0;
}

static bool
alg_is_rsa_enc(enum clst_vault_alg alg)
{
    return alg == CLST_ALG_RSA_OAEP || alg == CLST_ALG_RSA_OAEP_256 || alg == CLST_ALG_RSA1_5;
}

/* Key bits an AES algorithm needs, 0 for other algorithms. */
static int
alg_gcm_bits(enum clst_vault_alg alg)
{
    return alg == CLST_ALG_A128GCM   ? 128
           : alg == CLST_ALG_A192GCM ? 192
           : alg == CLST_ALG_A256GCM ? 256
                                     : 0;
}

static int
alg_kw_bits(enum clst_vault_alg alg)
{
    return alg == CLST_ALG_A128KW   ? 128
           : alg == CLST_ALG_A192KW ? 192
           : alg == CLST_ALG_A256KW ? 256
                                    : 0;
}

static bool
alg_is_rsa_sig(enum clst_vault_alg alg)
{
    return alg >= CLST_ALG_RS256 && alg <= CLST_ALG_PS512;
}

static bool
alg_is_pss(enum clst_vault_alg alg)
{
    return alg >= CLST_ALG_PS256 && alg <= CLST_ALG_PS512;
}

static enum clst_curve
alg_ec_curve(enum clst_vault_alg alg)
{
    return alg == CLST_ALG_ES256   ? CLST_CURVE_P256
           : alg == CLST_ALG_ES384 ? CLST_CURVE_P384
           : alg == CLST_ALG_ES512 ? CLST_CURVE_P521
                                   : (enum clst_curve)0;
}

/* "a 2048-bit RSA key", "an EC P-384 key", "a 128-bit oct key" */
static void
describe_key(const struct clst_vault_keymat *km, char *out, size_t cap)
{
    if (km->type == CLST_KEYMAT_EC) {
        snprintf(out, cap, "an EC %s key", clst_curve_name(km->curve));
    } else {
        snprintf(out, cap, "a %d-bit %s key", km->bits, clst_vault_keymat_kty_name(km->type));
    }
}

enum clst_status
clst_vault_keymat_alg_check(const struct clst_vault_keymat *km, enum clst_vault_keyop op,
                            enum clst_vault_alg alg, struct clst_err *err)
{
    const char *name = clst_vault_alg_name(alg);
    const char *opname = clst_vault_keyop_name(op);
    char what[48];
    bool family_ok;
    bool key_ok;

    if (km == NULL || name == NULL || opname == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "unknown algorithm or operation");
    }
    switch (op) {
    case CLST_KEYOP_ENCRYPT:
    case CLST_KEYOP_DECRYPT:
        family_ok = alg_is_rsa_enc(alg) || alg_gcm_bits(alg) != 0;
        break;
    case CLST_KEYOP_WRAP:
    case CLST_KEYOP_UNWRAP:
        family_ok = alg_is_rsa_enc(alg) || alg_kw_bits(alg) != 0;
        break;
    case CLST_KEYOP_SIGN:
    case CLST_KEYOP_VERIFY:
        family_ok = alg_is_rsa_sig(alg) || alg_ec_curve(alg) != 0;
        break;
    case CLST_KEYOP_IMPORT:
    case CLST_KEYOP_EXPORT:
    default:
        family_ok = false;
        break;
    }
    if (!family_ok) {
        return clst_err_set(err, CLST_E_INVAL, "algorithm %s cannot be used to %s", name,
                            op == CLST_KEYOP_WRAP     ? "wrap a key"
                            : op == CLST_KEYOP_UNWRAP ? "unwrap a key"
                                                      : opname);
    }
    if (alg_is_rsa_enc(alg) || alg_is_rsa_sig(alg)) {
        key_ok = km->type == CLST_KEYMAT_RSA;
    } else if (alg_ec_curve(alg) != 0) {
        key_ok = km->type == CLST_KEYMAT_EC && km->curve == alg_ec_curve(alg);
    } else if (alg_gcm_bits(alg) != 0) {
        key_ok = km->type == CLST_KEYMAT_OCT && km->bits == alg_gcm_bits(alg);
    } else {
        key_ok = km->type == CLST_KEYMAT_OCT && km->bits == alg_kw_bits(alg);
    }
    if (!key_ok) {
        describe_key(km, what, sizeof(what));
        return clst_err_set(err, CLST_E_INVAL, "algorithm %s cannot be used with %s", name, what);
    }
    return CLST_OK;
}

/* ---- encryption and key wrapping ------------------------------------------------------------ */

void
clst_vault_crypt_out_init(struct clst_vault_crypt_out *out)
{
    memset(out, 0, sizeof(*out));
}

void
clst_vault_crypt_out_cleanup(struct clst_vault_crypt_out *out)
{
    if (out == NULL) {
        return;
    }
    clst_buf_cleanup(&out->value);
    OPENSSL_cleanse(out, sizeof(*out));
}

static size_t
rsa_bytes(const struct clst_vault_keymat *km)
{
    return (size_t)km->bits / 8;
}

static enum clst_status
rsa_crypt(const struct clst_vault_keymat *km, enum clst_vault_keyop op, enum clst_vault_alg alg,
          const struct clst_vault_crypt_in *in, struct clst_buf *out, struct clst_err *err)
{
    size_t k = rsa_bytes(km);
    bool forward = op == CLST_KEYOP_ENCRYPT || op == CLST_KEYOP_WRAP;
    enum clst_hash h = alg == CLST_ALG_RSA_OAEP_256 ? CLST_HASH_SHA256 : CLST_HASH_SHA1;
    enum clst_status rc;

    if (in->has_iv || in->has_aad || in->has_tag) {
        return clst_err_set(err, CLST_E_INVAL, "%s takes no iv, aad or tag",
                            clst_vault_alg_name(alg));
    }
    if (forward) {
        size_t max = alg == CLST_ALG_RSA1_5 ? k - 11 : k - 2 * clst_hash_size(h) - 2;
        if (in->value_size > max) {
            return clst_err_set(err, CLST_E_INVAL,
                                "%s with a %d-bit key takes at most %zu bytes (got %zu)",
                                clst_vault_alg_name(alg), km->bits, max, in->value_size);
        }
        clst_buf_init(out, k);
        rc = alg == CLST_ALG_RSA1_5
                 ? clst_rsa_pkcs1_encrypt(km->pkey, in->value, in->value_size, out)
                 : clst_rsa_oaep_encrypt(km->pkey, h, in->value, in->value_size, out);
        if (rc != CLST_OK) {
            return clst_err_set(err, rc, "RSA encryption failed");
        }
        return CLST_OK;
    }
    if (in->value_size != k) {
        return clst_err_set(err, CLST_E_INVAL,
                            "the ciphertext must be %zu bytes for a %d-bit key (got %zu)", k,
                            km->bits, in->value_size);
    }
    clst_buf_init_secret(out, k);
    rc = alg == CLST_ALG_RSA1_5
             ? clst_rsa_pkcs1_decrypt(km->pkey, in->value, in->value_size, out)
             : clst_rsa_oaep_decrypt(km->pkey, h, in->value, in->value_size, out);
    if (rc == CLST_E_VERIFY) {
        return clst_err_set(err, rc,
                            "the ciphertext does not decrypt with this key and %s (wrong key, "
                            "algorithm or damaged data)",
                            clst_vault_alg_name(alg));
    }
    if (rc != CLST_OK) {
        return clst_err_set(err, rc, "RSA decryption failed");
    }
    return CLST_OK;
}

static enum clst_status
gcm_crypt(const struct clst_vault_keymat *km, enum clst_vault_keyop op,
          const struct clst_vault_crypt_in *in, struct clst_vault_crypt_out *out,
          struct clst_err *err)
{
    static const uint8_t empty[1];
    const uint8_t *aad = in->has_aad && in->aad_size > 0 ? in->aad : NULL;
    size_t aad_size = aad != NULL ? in->aad_size : 0;
    enum clst_status rc;

    if (in->value_size > CLST_KEYMAT_DATA_MAX) {
        return clst_err_set(err, CLST_E_INVAL, "AES-GCM takes at most %d bytes at a time",
                            CLST_KEYMAT_DATA_MAX);
    }
    if (op == CLST_KEYOP_ENCRYPT) {
        if (in->has_iv || in->has_tag) {
            return clst_err_set(err, CLST_E_INVAL,
                                "do not send an iv or tag to encrypt with AES-GCM: the vault "
                                "makes a fresh IV and returns it with the tag");
        }
        clst_buf_init(&out->value, in->value_size);
        rc = clst_buf_reserve(&out->value, in->value_size > 0 ? in->value_size : 1);
        if (rc == CLST_OK) {
            rc = clst_random(out->iv, CLST_KEYMAT_GCM_IV_SIZE);
        }
        if (rc == CLST_OK) {
            rc = clst_aes_gcm_seal(km->oct->ptr, km->oct->size, out->iv, CLST_KEYMAT_GCM_IV_SIZE,
                                   aad, aad_size, in->value_size > 0 ? in->value : empty,
                                   in->value_size, out->value.data, out->tag,
                                   CLST_KEYMAT_GCM_TAG_SIZE);
        }
        if (rc != CLST_OK) {
            return clst_err_set(err, rc, "AES-GCM encryption failed");
        }
        out->value.size = in->value_size;
        out->iv_size = CLST_KEYMAT_GCM_IV_SIZE;
        out->tag_size = CLST_KEYMAT_GCM_TAG_SIZE;
        return CLST_OK;
    }
    if (!in->has_iv || in->iv_size != CLST_KEYMAT_GCM_IV_SIZE) {
        return clst_err_set(err, CLST_E_INVAL,
                            "AES-GCM decryption needs the %d-byte iv returned by encrypt",
                            CLST_KEYMAT_GCM_IV_SIZE);
    }
    if (!in->has_tag || in->tag_size != CLST_KEYMAT_GCM_TAG_SIZE) {
        return clst_err_set(err, CLST_E_INVAL,
                            "AES-GCM decryption needs the %d-byte tag returned by encrypt",
                            CLST_KEYMAT_GCM_TAG_SIZE);
    }
    clst_buf_init_secret(&out->value, in->value_size);
    rc = clst_buf_reserve(&out->value, in->value_size > 0 ? in->value_size : 1);
    if (rc == CLST_OK) {
        rc = clst_aes_gcm_open(km->oct->ptr, km->oct->size, in->iv, in->iv_size, aad, aad_size,
                               in->value_size > 0 ? in->value : empty, in->value_size, in->tag,
                               in->tag_size, out->value.data);
    }
    if (rc == CLST_E_VERIFY) {
        return clst_err_set(err, rc,
                            "the ciphertext does not authenticate (wrong key, iv, tag or aad, or "
                            "damaged data)");
    }
    if (rc != CLST_OK) {
        return clst_err_set(err, rc, "AES-GCM decryption failed");
    }
    out->value.size = in->value_size;
    return CLST_OK;
}

static enum clst_status
kw_crypt(const struct clst_vault_keymat *km, enum clst_vault_keyop op,
         const struct clst_vault_crypt_in *in, struct clst_buf *out, struct clst_err *err)
{
    enum clst_status rc;
    size_t size = 0;

    if (in->has_iv || in->has_aad || in->has_tag) {
        return clst_err_set(err, CLST_E_INVAL, "AES key wrap takes no iv, aad or tag");
    }
    if (op == CLST_KEYOP_WRAP) {
        if (in->value_size < 16 || in->value_size > CLST_KEYMAT_KW_MAX || in->value_size % 8 != 0) {
            return clst_err_set(err, CLST_E_INVAL,
                                "AES key wrap (RFC 3394) takes a key of 16 to %d bytes, a multiple "
                                "of 8 (got %zu)",
                                CLST_KEYMAT_KW_MAX, in->value_size);
        }
        clst_buf_init(out, in->value_size + 8);
        rc = clst_buf_reserve(out, in->value_size + 8);
        if (rc == CLST_OK) {
            rc = clst_aes_kw_wrap(km->oct->ptr, km->oct->size, in->value, in->value_size, out->data,
                                  out->cap, &size);
        }
        if (rc != CLST_OK) {
            return clst_err_set(err, rc, "AES key wrap failed");
        }
        out->size = size;
        return CLST_OK;
    }
    if (in->value_size < 24 || in->value_size > CLST_KEYMAT_KW_MAX + 8 || in->value_size % 8 != 0) {
        return clst_err_set(err, CLST_E_INVAL,
                            "an AES-wrapped key (RFC 3394) is 24 to %d bytes, a multiple of 8 "
                            "(got %zu)",
                            CLST_KEYMAT_KW_MAX + 8, in->value_size);
    }
    clst_buf_init_secret(out, in->value_size);
    rc = clst_buf_reserve(out, in->value_size);
    if (rc == CLST_OK) {
        rc = clst_aes_kw_unwrap(km->oct->ptr, km->oct->size, in->value, in->value_size, out->data,
                                out->cap, &size);
    }
    if (rc == CLST_E_VERIFY) {
        return clst_err_set(err, rc,
                            "the wrapped key does not unwrap with this key (wrong key or damaged "
                            "data)");
    }
    if (rc != CLST_OK) {
        return clst_err_set(err, rc, "AES key unwrap failed");
    }
    out->size = size;
    return CLST_OK;
}

enum clst_status
clst_vault_keymat_crypt(const struct clst_vault_keymat *km, enum clst_vault_keyop op,
                        enum clst_vault_alg alg, const struct clst_vault_crypt_in *in,
                        struct clst_vault_crypt_out *out, struct clst_err *err)
{
    enum clst_status rc;
    struct clst_vault_crypt_out res;

    if (km == NULL || in == NULL || out == NULL || (in->value == NULL && in->value_size > 0) ||
        (op != CLST_KEYOP_ENCRYPT && op != CLST_KEYOP_DECRYPT && op != CLST_KEYOP_WRAP &&
         op != CLST_KEYOP_UNWRAP)) {
        return clst_err_set(err, CLST_E_INVAL, "key operation: invalid argument");
    }
    rc = clst_vault_keymat_alg_check(km, op, alg, err);
    if (rc != CLST_OK) {
        return rc;
    }
    if (in->value_size == 0) {
        return clst_err_set(err, CLST_E_INVAL, "the value is empty");
    }
    clst_vault_crypt_out_init(&res);
    if (alg_is_rsa_enc(alg)) {
        rc = rsa_crypt(km, op, alg, in, &res.value, err);
    } else if (alg_gcm_bits(alg) != 0) {
        rc = gcm_crypt(km, op, in, &res, err);
    } else {
        rc = kw_crypt(km, op, in, &res.value, err);
    }
    if (rc != CLST_OK) {
        clst_vault_crypt_out_cleanup(&res);
        return rc;
    }
    clst_vault_crypt_out_cleanup(out);
    *out = res;
    return CLST_OK;
}

/* ---- signatures over digests ---------------------------------------------------------------- */

static enum clst_status
sig_check(const struct clst_vault_keymat *km, enum clst_vault_keyop op, enum clst_vault_alg alg,
          const uint8_t *digest, size_t digest_size, struct clst_err *err)
{
    enum clst_status rc;
    size_t want;

    if (km == NULL || (digest == NULL && digest_size > 0)) {
        return clst_err_set(err, CLST_E_INVAL, "signature: invalid argument");
    }
    rc = clst_vault_keymat_alg_check(km, op, alg, err);
    if (rc != CLST_OK) {
        return rc;
    }
    want = clst_hash_size(clst_vault_alg_hash(alg));
    if (digest_size != want) {
        return clst_err_set(
            err, CLST_E_INVAL, "%s signs a %zu-byte %s digest (got %zu bytes): hash the data first",
            clst_vault_alg_name(alg), want, clst_hash_name(clst_vault_alg_hash(alg)), digest_size);
    }
    return CLST_OK;
}

/* Prepares an RSA sign/verify context for a digest. */
static bool
rsa_ctx_setup(EVP_PKEY_CTX *ctx, enum clst_vault_alg alg)
{
    const EVP_MD *md = clst_hash_md(clst_vault_alg_hash(alg));

    if (md == NULL) {
        return false;
    }
    if (alg_is_pss(alg)) {
        return EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) == 1 &&
               EVP_PKEY_CTX_set_signature_md(ctx, md) == 1 &&
               EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, md) == 1 &&
               EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, RSA_PSS_SALTLEN_DIGEST) == 1;
    }
    return EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1 &&
           EVP_PKEY_CTX_set_signature_md(ctx, md) == 1;
}

enum clst_status
clst_vault_keymat_sign(const struct clst_vault_keymat *km, enum clst_vault_alg alg,
                       const uint8_t *digest, size_t digest_size, struct clst_buf *out,
                       struct clst_err *err)
{
    enum clst_status rc;
    EVP_PKEY_CTX *ctx = NULL;
    uint8_t sig[RSA_MAX_BYTES > EC_MAX_SIG_DER ? RSA_MAX_BYTES : EC_MAX_SIG_DER];
    size_t sig_size = sizeof(sig);
    struct clst_buf raw;

    clst_buf_init(&raw, 2 * 66);
    rc = sig_check(km, CLST_KEYOP_SIGN, alg, digest, digest_size, err);
    if (rc != CLST_OK || out == NULL) {
        return rc != CLST_OK ? rc : clst_err_set(err, CLST_E_INVAL, "sign: missing output");
    }
    rc = CLST_E_CRYPTO;
    ctx = EVP_PKEY_CTX_new_from_pkey(NULL, km->pkey, NULL);
    if (ctx == NULL || EVP_PKEY_sign_init(ctx) != 1) {
        goto out;
    }
    if (km->type == CLST_KEYMAT_RSA && !rsa_ctx_setup(ctx, alg)) {
        goto out;
    }
    if ((size_t)EVP_PKEY_get_size(km->pkey) > sizeof(sig) ||
        EVP_PKEY_sign(ctx, sig, &sig_size, digest, digest_size) != 1) {
        goto out;
    }
    if (km->type == CLST_KEYMAT_EC) {
        /* OpenSSL gives DER; the API wants r || s, each the size of the field. */
        rc = clst_ecdsa_sig_der_to_raw(sig, sig_size, ((size_t)km->bits + 7) / 8, &raw);
        if (rc != CLST_OK) {
            goto out;
        }
        rc = clst_buf_append(out, raw.data, raw.size);
    } else {
        rc = clst_buf_append(out, sig, sig_size);
    }
out:
    EVP_PKEY_CTX_free(ctx);
    clst_buf_cleanup(&raw);
    if (rc != CLST_OK) {
        ERR_clear_error();
        return clst_err_set(err, rc, "signing with %s failed", clst_vault_alg_name(alg));
    }
    return CLST_OK;
}

enum clst_status
clst_vault_keymat_verify(const struct clst_vault_keymat *km, enum clst_vault_alg alg,
                         const uint8_t *digest, size_t digest_size, const uint8_t *sig,
                         size_t sig_size, struct clst_err *err)
{
    static const uint8_t empty[1];
    enum clst_status rc;
    EVP_PKEY_CTX *ctx = NULL;
    int ok;

    rc = sig_check(km, CLST_KEYOP_VERIFY, alg, digest, digest_size, err);
    if (rc != CLST_OK) {
        return rc;
    }
    if (sig == NULL) {
        sig = empty;
        sig_size = 0;
    }
    if (km->type == CLST_KEYMAT_EC) {
        rc = clst_ecdsa_verify_digest(km->pkey, CLST_SIG_RAW, digest, digest_size, sig, sig_size);
        if (rc != CLST_OK && rc != CLST_E_VERIFY) {
            return clst_err_set(err, rc, "verifying with %s failed", clst_vault_alg_name(alg));
        }
        return rc == CLST_OK ? CLST_OK
                             : clst_err_set(err, CLST_E_VERIFY, "the signature is not valid");
    }
    if (sig_size != rsa_bytes(km)) {
        return clst_err_set(err, CLST_E_VERIFY, "the signature is not valid");
    }
    ctx = EVP_PKEY_CTX_new_from_pkey(NULL, km->pkey, NULL);
    if (ctx == NULL || EVP_PKEY_verify_init(ctx) != 1 || !rsa_ctx_setup(ctx, alg)) {
        EVP_PKEY_CTX_free(ctx);
        ERR_clear_error();
        return clst_err_set(err, CLST_E_CRYPTO, "verifying with %s failed",
                            clst_vault_alg_name(alg));
    }
    ok = EVP_PKEY_verify(ctx, sig, sig_size, digest, digest_size);
    EVP_PKEY_CTX_free(ctx);
    ERR_clear_error();
    if (ok != 1) {
        return clst_err_set(err, CLST_E_VERIFY, "the signature is not valid");
    }
    return CLST_OK;
}

/* ---- backups -------------------------------------------------------------------------------- */

static const char BACKUP_MAGIC[8] = {'C', 'L', 'S', 'T', 'K', 'B', 'K', '1'};
static const char BACKUP_ID_INFO[] = "cloister.vault.backup.id.v1";
static const char BACKUP_ENC_INFO[] = "cloister.vault.backup.enc.v1";
#define BACKUP_SALT_SIZE   32
#define BACKUP_NONCE_SIZE  12
#define BACKUP_TAG_SIZE    16
#define BACKUP_HEADER_SIZE (8 + CLST_KEYMAT_VAULT_ID_SIZE + BACKUP_SALT_SIZE + BACKUP_NONCE_SIZE)
#define BACKUP_FORMAT      1

#define FLAG_ENABLED    0x01u
#define FLAG_EXPORTABLE 0x02u
#define FLAG_IMMUTABLE  0x04u
#define FLAG_TAGS       0x08u
#define FLAG_KEY_OPS    0x10u
#define FLAG_POLICY     0x20u
#define FLAG_ALL        0x3fu

void
clst_vault_backup_cleanup(struct clst_vault_backup *b)
{
    if (b == NULL) {
        return;
    }
    for (size_t i = 0; i < b->count; i++) {
        clst_vault_object_cleanup(&b->items[i].meta);
        clst_secret_free(b->items[i].value);
    }
    free(b->items);
    memset(b, 0, sizeof(*b));
}

static enum clst_status
vault_id(const uint8_t key[static CLST_KEYMAT_BACKUP_KEY_SIZE],
         uint8_t out[static CLST_KEYMAT_VAULT_ID_SIZE])
{
    return clst_hkdf(CLST_HASH_SHA256, NULL, 0, key, CLST_KEYMAT_BACKUP_KEY_SIZE,
                     (const uint8_t *)BACKUP_ID_INFO, sizeof(BACKUP_ID_INFO) - 1, out,
                     CLST_KEYMAT_VAULT_ID_SIZE);
}

static enum clst_status
put_u8(struct clst_buf *b, uint8_t v)
{
    return clst_buf_append_byte(b, v);
}

static enum clst_status
put_u32(struct clst_buf *b, uint32_t v)
{
    uint8_t tmp[4];
    clst_put_be32(tmp, v);
    return clst_buf_append(b, tmp, sizeof(tmp));
}

static enum clst_status
put_i64(struct clst_buf *b, int64_t v)
{
    uint8_t tmp[8];
    clst_put_be64(tmp, (uint64_t)v);
    return clst_buf_append(b, tmp, sizeof(tmp));
}

/* u8 length + bytes (strings of at most 255 bytes). */
static enum clst_status
put_lp8(struct clst_buf *b, const char *s)
{
    size_t n = strlen(s);
    enum clst_status rc;
    if (n > 255) {
        return CLST_E_LIMIT;
    }
    rc = put_u8(b, (uint8_t)n);
    return rc == CLST_OK ? clst_buf_append(b, s, n) : rc;
}

/* u32 length + bytes. */
static enum clst_status
put_lp32(struct clst_buf *b, const void *data, size_t n)
{
    enum clst_status rc;
    if (n > UINT32_MAX) {
        return CLST_E_LIMIT;
    }
    rc = put_u32(b, (uint32_t)n);
    return rc == CLST_OK && n > 0 ? clst_buf_append(b, data, n) : rc;
}

static enum clst_status
encode_item(struct clst_buf *b, const struct clst_vault_backup_item *it)
{
    const struct clst_vault_object *m = &it->meta;
    unsigned flags = 0;
    enum clst_status rc;

    if (it->value == NULL || !clst_vault_version_valid(m->version)) {
        return CLST_E_INVAL;
    }
    flags |= m->attrs.enabled ? FLAG_ENABLED : 0;
    flags |= m->attrs.exportable ? FLAG_EXPORTABLE : 0;
    flags |= m->policy_immutable ? FLAG_IMMUTABLE : 0;
    flags |= m->tags != NULL ? FLAG_TAGS : 0;
    flags |= m->key_ops != NULL ? FLAG_KEY_OPS : 0;
    flags |= m->release_policy != NULL ? FLAG_POLICY : 0;
    rc = put_lp8(b, m->version);
    if (rc == CLST_OK) {
        rc = put_lp8(b, m->kty);
    }
    if (rc == CLST_OK) {
        rc = put_u8(b, (uint8_t)flags);
    }
    if (rc == CLST_OK) {
        rc = put_i64(b, m->attrs.nbf);
    }
    if (rc == CLST_OK) {
        rc = put_i64(b, m->attrs.exp);
    }
    if (rc == CLST_OK) {
        rc = put_i64(b, m->attrs.created);
    }
    if (rc == CLST_OK) {
        rc = put_i64(b, m->attrs.updated);
    }
    if (rc == CLST_OK) {
        rc = put_lp8(b, m->attrs.recovery_level);
    }
    if (rc == CLST_OK) {
        rc = put_u32(b, (uint32_t)m->attrs.recoverable_days);
    }
    if (rc == CLST_OK) {
        rc = put_lp32(b, m->tags, m->tags != NULL ? strlen(m->tags) : 0);
    }
    if (rc == CLST_OK) {
        rc = put_lp32(b, m->key_ops, m->key_ops != NULL ? strlen(m->key_ops) : 0);
    }
    if (rc == CLST_OK) {
        rc = put_lp32(b, m->public_data, m->public_size);
    }
    if (rc == CLST_OK) {
        rc = put_lp32(b, m->release_policy,
                      m->release_policy != NULL ? strlen(m->release_policy) : 0);
    }
    if (rc == CLST_OK) {
        rc = put_lp32(b, it->value->ptr, it->value->size);
    }
    return rc;
}

enum clst_status
clst_vault_backup_seal(const uint8_t key[static CLST_KEYMAT_BACKUP_KEY_SIZE],
                       const struct clst_vault_backup_item *items, size_t count,
                       struct clst_buf *out, struct clst_err *err)
{
    enum clst_status rc = CLST_E_INVAL;
    struct clst_buf pt, blob;
    uint8_t header[BACKUP_HEADER_SIZE];
    uint8_t enc_key[32];
    uint8_t tag[BACKUP_TAG_SIZE];
    const char *name;

    clst_buf_init_secret(&pt, CLST_KEYMAT_BACKUP_MAX);
    clst_buf_init(&blob, CLST_KEYMAT_BACKUP_MAX);
    if (items == NULL || count == 0 || out == NULL) {
        rc = clst_err_set(err, CLST_E_INVAL, "backup: nothing to back up");
        goto out;
    }
    if (count > CLST_KEYMAT_BACKUP_VERSIONS) {
        rc = clst_err_set(err, CLST_E_LIMIT, "the key has %zu versions; a backup holds at most %d",
                          count, CLST_KEYMAT_BACKUP_VERSIONS);
        goto out;
    }
    name = items[0].meta.name;
    if (!clst_vault_name_valid(name)) {
        rc = clst_err_set(err, CLST_E_INVAL, "backup: invalid key name");
        goto out;
    }
    rc = put_u8(&pt, BACKUP_FORMAT);
    if (rc == CLST_OK) {
        rc = put_lp8(&pt, name);
    }
    if (rc == CLST_OK) {
        rc = put_u32(&pt, (uint32_t)count);
    }
    for (size_t i = 0; rc == CLST_OK && i < count; i++) {
        if (strcmp(items[i].meta.name, name) != 0 || items[i].meta.kind != CLST_VAULT_KIND_KEY) {
            rc = CLST_E_INVAL;
            break;
        }
        rc = encode_item(&pt, &items[i]);
    }
    if (rc == CLST_E_LIMIT) {
        rc = clst_err_set(err, rc, "the key's versions do not fit in a backup (at most %d bytes)",
                          CLST_KEYMAT_BACKUP_MAX);
        goto out;
    }
    if (rc != CLST_OK) {
        rc = clst_err_set(err, rc, "encoding the backup failed");
        goto out;
    }
    memcpy(header, BACKUP_MAGIC, sizeof(BACKUP_MAGIC));
    rc = vault_id(key, header + 8);
    if (rc == CLST_OK) {
        rc = clst_random(header + 8 + CLST_KEYMAT_VAULT_ID_SIZE,
                         BACKUP_SALT_SIZE + BACKUP_NONCE_SIZE);
    }
    if (rc == CLST_OK) {
        rc = clst_hkdf(CLST_HASH_SHA256, header + 8 + CLST_KEYMAT_VAULT_ID_SIZE, BACKUP_SALT_SIZE,
                       key, CLST_KEYMAT_BACKUP_KEY_SIZE, (const uint8_t *)BACKUP_ENC_INFO,
                       sizeof(BACKUP_ENC_INFO) - 1, enc_key, sizeof(enc_key));
    }
    if (rc == CLST_OK) {
        rc = clst_buf_append(&blob, header, sizeof(header));
    }
    if (rc == CLST_OK) {
        rc = clst_buf_reserve(&blob, pt.size + BACKUP_TAG_SIZE);
    }
    if (rc != CLST_OK) {
        rc = clst_err_set(err, rc,
                          rc == CLST_E_LIMIT ? "the key's versions do not fit in a backup"
                                             : "preparing the backup failed");
        goto out;
    }
    rc =
        clst_aes_gcm_seal(enc_key, sizeof(enc_key), header + BACKUP_HEADER_SIZE - BACKUP_NONCE_SIZE,
                          BACKUP_NONCE_SIZE, header, sizeof(header), pt.data, pt.size,
                          blob.data + blob.size, tag, sizeof(tag));
    if (rc != CLST_OK) {
        rc = clst_err_set(err, rc, "encrypting the backup failed");
        goto out;
    }
    blob.size += pt.size;
    rc = clst_buf_append(&blob, tag, sizeof(tag));
    if (rc == CLST_OK) {
        rc = clst_buf_append(out, blob.data, blob.size);
    }
    if (rc != CLST_OK) {
        rc = clst_err_set(err, rc, "the backup does not fit (at most %d bytes)",
                          CLST_KEYMAT_BACKUP_MAX);
    }
out:
    OPENSSL_cleanse(enc_key, sizeof(enc_key));
    clst_buf_cleanup(&pt);
    clst_buf_cleanup(&blob);
    return rc;
}

/* Reads a u8-length-prefixed string into dst (cap bytes with the NUL); no NUL bytes inside. */
static bool
get_lp8(struct clst_cursor *c, char *dst, size_t cap)
{
    uint8_t n;
    const uint8_t *p;
    if (!clst_cursor_u8(c, &n) || (size_t)n + 1 > cap || !clst_cursor_take(c, n, &p) ||
        memchr(p, 0, n) != NULL) {
        return false;
    }
    memcpy(dst, p, n);
    dst[n] = '\0';
    return true;
}

/* Reads a u32-length-prefixed text of at most max bytes into a malloc'ed string. `present`
 * says whether the field exists at all (an absent field must be empty). */
static bool
get_text(struct clst_cursor *c, bool present, size_t max, char **out)
{
    uint32_t n;
    const uint8_t *p;
    char *s;
    if (!clst_cursor_be32(c, &n) || n > max || !clst_cursor_take(c, n, &p) ||
        memchr(p, 0, n) != NULL) {
        return false;
    }
    if (!present) {
        return n == 0;
    }
    s = malloc((size_t)n + 1);
    if (s == NULL) {
        return false;
    }
    memcpy(s, p, n);
    s[n] = '\0';
    *out = s;
    return true;
}

static bool
decode_item(struct clst_cursor *c, const char *name, struct clst_vault_backup_item *it)
{
    struct clst_vault_object *m = &it->meta;
    uint8_t flags;
    uint64_t nbf, exp, created, updated;
    uint32_t days, n;
    const uint8_t *p;

    m->kind = CLST_VAULT_KIND_KEY;
    memcpy(m->name, name, strlen(name) + 1);
    if (!get_lp8(c, m->version, sizeof(m->version)) || !clst_vault_version_valid(m->version) ||
        !get_lp8(c, m->kty, sizeof(m->kty)) || m->kty[0] == '\0' || !clst_cursor_u8(c, &flags) ||
        (flags & ~FLAG_ALL) != 0 || !clst_cursor_be64(c, &nbf) || !clst_cursor_be64(c, &exp) ||
        !clst_cursor_be64(c, &created) || !clst_cursor_be64(c, &updated) ||
        !get_lp8(c, m->attrs.recovery_level, sizeof(m->attrs.recovery_level)) ||
        !clst_cursor_be32(c, &days) || days > INT32_MAX) {
        return false;
    }
    m->attrs.enabled = (flags & FLAG_ENABLED) != 0;
    m->attrs.exportable = (flags & FLAG_EXPORTABLE) != 0;
    m->policy_immutable = (flags & FLAG_IMMUTABLE) != 0;
    m->attrs.nbf = (int64_t)nbf;
    m->attrs.exp = (int64_t)exp;
    m->attrs.created = (int64_t)created;
    m->attrs.updated = (int64_t)updated;
    m->attrs.recoverable_days = (int32_t)days;
    if (!get_text(c, (flags & FLAG_TAGS) != 0, CLST_VAULT_TAGS_MAX, &m->tags) ||
        !get_text(c, (flags & FLAG_KEY_OPS) != 0, CLST_VAULT_KEY_OPS_MAX, &m->key_ops)) {
        return false;
    }
    if (!clst_cursor_be32(c, &n) || n == 0 || n > CLST_VAULT_PUBLIC_MAX ||
        !clst_cursor_take(c, n, &p)) {
        return false;
    }
    m->public_data = malloc(n);
    if (m->public_data == NULL) {
        return false;
    }
    memcpy(m->public_data, p, n);
    m->public_size = n;
    if (!get_text(c, (flags & FLAG_POLICY) != 0, CLST_VAULT_POLICY_MAX, &m->release_policy)) {
        return false;
    }
    if (!clst_cursor_be32(c, &n) || n == 0 || n > CLST_VAULT_VALUE_MAX ||
        !clst_cursor_take(c, n, &p)) {
        return false;
    }
    return clst_secret_from(p, n, &it->value) == CLST_OK;
}

enum clst_status
clst_vault_backup_open(const uint8_t key[static CLST_KEYMAT_BACKUP_KEY_SIZE], const uint8_t *blob,
                       size_t size, struct clst_vault_backup *out, struct clst_err *err)
{
    enum clst_status rc = CLST_E_MALFORMED;
    uint8_t id[CLST_KEYMAT_VAULT_ID_SIZE];
    uint8_t enc_key[32];
    struct clst_buf pt;
    struct clst_cursor c;
    struct clst_vault_backup b;
    uint8_t format;
    uint32_t count;
    size_t ct_size;

    memset(&b, 0, sizeof(b));
    clst_buf_init_secret(&pt, CLST_KEYMAT_BACKUP_MAX);
    if (out == NULL || (blob == NULL && size > 0)) {
        rc = clst_err_set(err, CLST_E_INVAL, "restore: missing argument");
        goto out;
    }
    if (size > CLST_KEYMAT_BACKUP_MAX) {
        rc = clst_err_set(err, CLST_E_LIMIT, "the backup is larger than any this vault makes");
        goto out;
    }
    if (size < BACKUP_HEADER_SIZE + BACKUP_TAG_SIZE ||
        memcmp(blob, BACKUP_MAGIC, sizeof(BACKUP_MAGIC)) != 0) {
        rc = clst_err_set(err, CLST_E_MALFORMED,
                          "the value is not a Cloister key backup (use the value returned by "
                          "POST /keys/{name}/backup)");
        goto out;
    }
    rc = vault_id(key, id);
    if (rc != CLST_OK) {
        rc = clst_err_set(err, rc, "deriving the vault id failed");
        goto out;
    }
    /* The vault id is not secret; comparing it in constant time costs nothing. */
    if (!clst_ct_equal(id, blob + 8, sizeof(id))) {
        rc = clst_err_set(err, CLST_E_VERIFY,
                          "the backup was made by another vault: a key backup can only be "
                          "restored into the vault that made it");
        goto out;
    }
    rc = clst_hkdf(CLST_HASH_SHA256, blob + 8 + CLST_KEYMAT_VAULT_ID_SIZE, BACKUP_SALT_SIZE, key,
                   CLST_KEYMAT_BACKUP_KEY_SIZE, (const uint8_t *)BACKUP_ENC_INFO,
                   sizeof(BACKUP_ENC_INFO) - 1, enc_key, sizeof(enc_key));
    ct_size = size - BACKUP_HEADER_SIZE - BACKUP_TAG_SIZE;
    if (rc == CLST_OK) {
        rc = clst_buf_reserve(&pt, ct_size > 0 ? ct_size : 1);
    }
    if (rc != CLST_OK) {
        rc = clst_err_set(err, rc, "preparing to open the backup failed");
        goto out;
    }
    rc = clst_aes_gcm_open(enc_key, sizeof(enc_key), blob + BACKUP_HEADER_SIZE - BACKUP_NONCE_SIZE,
                           BACKUP_NONCE_SIZE, blob, BACKUP_HEADER_SIZE, blob + BACKUP_HEADER_SIZE,
                           ct_size, blob + size - BACKUP_TAG_SIZE, BACKUP_TAG_SIZE, pt.data);
    if (rc != CLST_OK) {
        rc = clst_err_set(err, CLST_E_VERIFY,
                          "the backup failed its integrity check (it was altered or damaged)");
        goto out;
    }
    pt.size = ct_size;
    /* Authenticated from here on; still parsed strictly. */
    rc = CLST_E_MALFORMED;
    c = clst_cursor_make(pt.data, pt.size);
    if (!clst_cursor_u8(&c, &format) || format != BACKUP_FORMAT ||
        !get_lp8(&c, b.name, sizeof(b.name)) || !clst_vault_name_valid(b.name) ||
        !clst_cursor_be32(&c, &count) || count == 0 || count > CLST_KEYMAT_BACKUP_VERSIONS) {
        goto bad;
    }
    b.items = calloc(count, sizeof(*b.items));
    if (b.items == NULL) {
        rc = clst_err_set(err, CLST_E_NOMEM, "out of memory opening the backup");
        goto out;
    }
    for (uint32_t i = 0; i < count; i++) {
        b.count = (size_t)i + 1;
        if (!decode_item(&c, b.name, &b.items[i])) {
            goto bad;
        }
        for (uint32_t j = 0; j < i; j++) {
            if (strcmp(b.items[j].meta.version, b.items[i].meta.version) == 0) {
                goto bad;
            }
        }
    }
    if (!clst_cursor_empty(&c)) {
        goto bad;
    }
    *out = b;
    memset(&b, 0, sizeof(b));
    rc = CLST_OK;
    goto out;
bad:
    rc = clst_err_set(err, CLST_E_MALFORMED, "the backup's contents are not valid");
out:
    OPENSSL_cleanse(enc_key, sizeof(enc_key));
    clst_buf_cleanup(&pt);
    clst_vault_backup_cleanup(&b);
    return rc;
}

enum clst_status
clst_vault_backup_key(struct clst_vault_store *store, struct clst_vault_masterkey *mk,
                      uint8_t out[static CLST_KEYMAT_BACKUP_KEY_SIZE], struct clst_err *err)
{
    enum clst_status rc;
    struct clst_buf wrapped;
    uint8_t fresh[CLST_KEYMAT_BACKUP_KEY_SIZE];
    uint8_t blob[CLST_VAULT_WRAPPED_MAX];
    size_t blob_size = 0, key_size = 0;

    if (store == NULL || mk == NULL || out == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "backup key: missing argument");
    }
    clst_buf_init(&wrapped, CLST_VAULT_WRAPPED_MAX);
    rc = clst_vault_store_meta_get(store, CLST_KEYMAT_BACKUP_KEY_SETTING, &wrapped, err);
    if (rc == CLST_E_NOTFOUND) {
        /* First use: make one. (The REST layer calls this once at registration, before the
         * server has threads, so two first calls do not race; see rest_keys.c.) */
        rc = clst_random(fresh, sizeof(fresh));
        if (rc == CLST_OK) {
            rc = clst_vault_masterkey_wrap(mk, fresh, sizeof(fresh), blob, sizeof(blob), &blob_size,
                                           err);
        }
        if (rc == CLST_OK) {
            rc = clst_vault_store_meta_set(store, CLST_KEYMAT_BACKUP_KEY_SETTING, blob, blob_size,
                                           err);
        }
        if (rc == CLST_OK) {
            clst_buf_reset(&wrapped);
            rc = clst_vault_store_meta_get(store, CLST_KEYMAT_BACKUP_KEY_SETTING, &wrapped, err);
        }
    }
    if (rc == CLST_OK) {
        rc = clst_vault_masterkey_unwrap(mk, wrapped.data, wrapped.size, out,
                                         CLST_KEYMAT_BACKUP_KEY_SIZE, &key_size, err);
        if (rc == CLST_OK && key_size != CLST_KEYMAT_BACKUP_KEY_SIZE) {
            OPENSSL_cleanse(out, CLST_KEYMAT_BACKUP_KEY_SIZE);
            rc = clst_err_set(err, CLST_E_VERIFY, "the vault's backup key is not valid");
        }
    }
    OPENSSL_cleanse(fresh, sizeof(fresh));
    clst_buf_cleanup(&wrapped);
    if (rc != CLST_OK) {
        return clst_err_prefix(err, "the vault's backup key");
    }
    return CLST_OK;
}
