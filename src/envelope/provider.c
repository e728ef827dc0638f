/*
 * Key providers: where a file's input key is wrapped to and unwrapped from.
 *
 *   local      A256KW (RFC 3394) under a 32-byte symmetric key; reference = its 16-byte key id
 *   recipient  RSA-OAEP-256 to an RSA public key, or ECDH-ES on P-256 + HKDF-SHA256 + A256KW;
 *              reference = SHA-256 of the public key's SubjectPublicKeyInfo
 *   external   anything else (the vault, an in-TEE released key, tests) through
 *              struct clst_envelope_provider_ops
 *
 * Trust boundary: the key reference and wrapped key come from an untrusted header. A provider
 * only acts on a header that names its own key; the unwrap is authenticated (KW integrity check,
 * OAEP padding check) and the body's commitment check then confirms the input key.
 */
#define _POSIX_C_SOURCE 200809L
#include "envelope/envelope_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KW_WRAPPED_SIZE   (CLST_ENVELOPE_KEY_SIZE + 8)
#define EC_POINT_SIZE     65 /* uncompressed P-256 point */
#define ECDH_WRAPPED_SIZE (EC_POINT_SIZE + KW_WRAPPED_SIZE)
#define KEYFILE_MAX_SIZE  65536
#define DESC_SIZE         160
#define REF_DESC_SIZE     512

static const char KEY_ID_INFO[] = "cloister.envelope.key-id.v1";
static const char ECDH_INFO[] = "cloister.envelope.ecdh-p256.v1";

struct clst_envelope_provider {
    const struct clst_envelope_provider_ops *ops;
    void *ctx;
    char desc[DESC_SIZE];
};

/* ---- generic ------------------------------------------------------------------------------- */

static enum clst_status
provider_make(const struct clst_envelope_provider_ops *ops, void *ctx, const char *desc,
              struct clst_envelope_provider **out)
{
    struct clst_envelope_provider *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        return CLST_E_NOMEM;
    }
    p->ops = ops;
    p->ctx = ctx;
    snprintf(p->desc, sizeof(p->desc), "%s", desc);
    *out = p;
    return CLST_OK;
}

enum clst_status
clst_envelope_provider_new(const struct clst_envelope_provider_ops *ops, void *ctx,
                           struct clst_envelope_provider **out)
{
    if (ops == NULL || out == NULL || ops->name == NULL) {
        return CLST_E_INVAL;
    }
    return provider_make(ops, ctx, ops->name, out);
}

void
clst_envelope_provider_free(struct clst_envelope_provider *p)
{
    if (p == NULL) {
        return;
    }
    if (p->ops->free != NULL) {
        p->ops->free(p->ctx);
    }
    free(p);
}

const char *
clst_envelope_provider_name(const struct clst_envelope_provider *p)
{
    return p == NULL ? "" : p->ops->name;
}

void
clst_envelope_provider_describe(const struct clst_envelope_provider *p, char *out, size_t out_cap)
{
    if (out == NULL || out_cap == 0) {
        return;
    }
    snprintf(out, out_cap, "%s", p == NULL ? "no key" : p->desc);
}

static void
hex(const uint8_t *in, size_t n, char *out, size_t cap)
{
    if (clst_hex_to_str(in, n, out, cap) != CLST_OK && cap > 0) {
        out[0] = '\0';
    }
}

/* "local key id ...", "RSA recipient SHA256:...", "vault key NAME version V at URL". */
static void
describe_ref(const struct clst_envelope_keyref *ref, char *out, size_t cap)
{
    char h[2 * CLST_ENVELOPE_FINGERPRINT_SIZE + 1];
    switch (ref->kind) {
    case CLST_ENVELOPE_REF_LOCAL:
        hex(ref->key_id, sizeof(ref->key_id), h, sizeof(h));
        snprintf(out, cap, "local key id %s", h);
        break;
    case CLST_ENVELOPE_REF_RECIPIENT:
        hex(ref->fingerprint, sizeof(ref->fingerprint), h, sizeof(h));
        snprintf(out, cap, "%s recipient SHA256:%s",
                 ref->recipient_type == CLST_ENVELOPE_RECIPIENT_RSA ? "RSA" : "P-256", h);
        break;
    case CLST_ENVELOPE_REF_VAULT:
        snprintf(out, cap, "vault key '%.127s' version '%.64s' at %.200s", ref->key_name,
                 ref->key_version, ref->vault_url);
        break;
    default:
        snprintf(out, cap, "an unknown kind of key");
        break;
    }
}

void
clst_envelope_keyref_describe(const struct clst_envelope_keyref *ref, char *out, size_t out_cap)
{
    if (out == NULL || out_cap == 0) {
        return;
    }
    if (ref == NULL) {
        out[0] = '\0';
        return;
    }
    describe_ref(ref, out, out_cap);
}

/* ---- header helpers shared with the stream, reader and file code --------------------------- */

enum clst_status
clst_env_context(const uint8_t *header, size_t header_size, uint8_t out[CLST_SHA256_SIZE])
{
    return clst_sha256(header, header_size, out);
}

enum clst_status
clst_env_make_header(struct clst_envelope_provider *provider, const struct clst_envelope_meta *meta,
                     size_t meta_count, uint8_t *header, size_t header_cap, size_t *header_size,
                     uint8_t ikm[CLST_ENVELOPE_KEY_SIZE], struct clst_err *err)
{
    enum clst_status rc;
    struct clst_envelope_keyref ref;
    struct clst_envelope_wrapped wrapped;

    if (provider == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "no key to encrypt to");
    }
    if (provider->ops->wrap == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "%s cannot encrypt (it only decrypts)",
                            provider->desc);
    }
    memset(&ref, 0, sizeof(ref));
    memset(&wrapped, 0, sizeof(wrapped));
    rc = clst_random(ikm, CLST_ENVELOPE_KEY_SIZE);
    if (rc != CLST_OK) {
        clst_err_set(err, rc, "cannot draw a random key");
        goto out;
    }
    rc = provider->ops->wrap(provider->ctx, ikm, &ref, &wrapped, err);
    if (rc != CLST_OK) {
        goto out;
    }
    rc = clst_envelope_header_encode(&ref, &wrapped, meta, meta_count, header, header_cap,
                                     header_size, err);
out:
    if (rc != CLST_OK) {
        clst_wipe(ikm, CLST_ENVELOPE_KEY_SIZE);
    }
    clst_wipe(&wrapped, sizeof(wrapped));
    return rc;
}

enum clst_status
clst_env_unwrap(struct clst_envelope_provider *const *providers, size_t provider_count,
                const struct clst_envelope_header *h, uint8_t ikm[CLST_ENVELOPE_KEY_SIZE],
                struct clst_err *err)
{
    char need[REF_DESC_SIZE];
    struct clst_err last;
    size_t tried = 0;

    describe_ref(&h->ref, need, sizeof(need));
    clst_err_clear(&last);
    for (size_t i = 0; i < provider_count; i++) {
        struct clst_envelope_provider *p = providers[i];
        enum clst_status rc;
        if (p == NULL || p->ops->unwrap == NULL) {
            continue;
        }
        tried++;
        rc = p->ops->unwrap(p->ctx, &h->ref, &h->wrapped, ikm, &last);
        if (rc == CLST_OK) {
            return CLST_OK;
        }
        clst_wipe(ikm, CLST_ENVELOPE_KEY_SIZE);
        if (rc != CLST_E_NOTFOUND) {
            if (err != NULL) {
                *err = last;
            }
            return rc;
        }
    }
    if (tried == 0) {
        return clst_err_set(err, CLST_E_NOTFOUND,
                            "the file was encrypted for %s; give its key to decrypt", need);
    }
    if (tried == 1) {
        if (err != NULL) {
            *err = last;
        }
        return CLST_E_NOTFOUND;
    }
    return clst_err_set(err, CLST_E_NOTFOUND,
                        "the file was encrypted for %s, and none of the %zu keys given is that "
                        "key",
                        need, tried);
}

/* ---- local symmetric keys ------------------------------------------------------------------ */

struct local_ctx {
    uint8_t key[CLST_ENVELOPE_KEY_SIZE];
    uint8_t id[CLST_ENVELOPE_KEY_ID_SIZE];
};

enum clst_status
clst_envelope_key_id(const uint8_t key[CLST_ENVELOPE_KEY_SIZE],
                     uint8_t out_id[CLST_ENVELOPE_KEY_ID_SIZE])
{
    if (key == NULL || out_id == NULL) {
        return CLST_E_INVAL;
    }
    return clst_hkdf_expand(CLST_HASH_SHA256, key, CLST_ENVELOPE_KEY_SIZE,
                            (const uint8_t *)KEY_ID_INFO, sizeof(KEY_ID_INFO) - 1, out_id,
                            CLST_ENVELOPE_KEY_ID_SIZE);
}

static enum clst_status
local_wrap(void *vctx, const uint8_t key[CLST_ENVELOPE_KEY_SIZE],
           struct clst_envelope_keyref *out_ref, struct clst_envelope_wrapped *out_wrapped,
           struct clst_err *err)
{
    struct local_ctx *l = vctx;
    size_t n = 0;
    enum clst_status rc = clst_aes_kw_wrap(l->key, sizeof(l->key), key, CLST_ENVELOPE_KEY_SIZE,
                                           out_wrapped->data, sizeof(out_wrapped->data), &n);
    if (rc != CLST_OK) {
        return clst_err_set(err, rc, "AES key wrap under the local key failed");
    }
    out_wrapped->size = n;
    snprintf(out_wrapped->alg, sizeof(out_wrapped->alg), "%s", CLST_ENVELOPE_ALG_A256KW);
    out_ref->kind = CLST_ENVELOPE_REF_LOCAL;
    memcpy(out_ref->key_id, l->id, sizeof(l->id));
    return CLST_OK;
}

static enum clst_status
local_unwrap(void *vctx, const struct clst_envelope_keyref *ref,
             const struct clst_envelope_wrapped *wrapped, uint8_t out_key[CLST_ENVELOPE_KEY_SIZE],
             struct clst_err *err)
{
    struct local_ctx *l = vctx;
    char need[REF_DESC_SIZE];
    char have[2 * CLST_ENVELOPE_KEY_ID_SIZE + 1];
    uint8_t tmp[KW_WRAPPED_SIZE];
    size_t n = 0;
    enum clst_status rc;

    hex(l->id, sizeof(l->id), have, sizeof(have));
    if (ref->kind != CLST_ENVELOPE_REF_LOCAL ||
        !clst_ct_equal(ref->key_id, l->id, sizeof(l->id))) {
        describe_ref(ref, need, sizeof(need));
        return clst_err_set(err, CLST_E_NOTFOUND,
                            "the file was encrypted for %s, but the key given has id %s", need,
                            have);
    }
    if (strcmp(wrapped->alg, CLST_ENVELOPE_ALG_A256KW) != 0) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "wrap algorithm '%s' is not supported for local keys (only A256KW)",
                            wrapped->alg);
    }
    if (wrapped->size != KW_WRAPPED_SIZE) {
        return clst_err_set(err, CLST_E_MALFORMED, "wrapped key is %zu bytes; A256KW gives %d",
                            wrapped->size, KW_WRAPPED_SIZE);
    }
    rc = clst_aes_kw_unwrap(l->key, sizeof(l->key), wrapped->data, wrapped->size, tmp, sizeof(tmp),
                            &n);
    if (rc != CLST_OK || n != CLST_ENVELOPE_KEY_SIZE) {
        clst_wipe(tmp, sizeof(tmp));
        return clst_err_set(err, CLST_E_VERIFY,
                            "the wrapped key does not unwrap under local key id %s: the header "
                            "was modified",
                            have);
    }
    memcpy(out_key, tmp, CLST_ENVELOPE_KEY_SIZE);
    clst_wipe(tmp, sizeof(tmp));
    return CLST_OK;
}

static void
secret_ctx_free(void *ctx, size_t size)
{
    if (ctx != NULL) {
        clst_wipe(ctx, size);
        clst_secret_free_raw(ctx, size);
    }
}

static void
local_free(void *ctx)
{
    secret_ctx_free(ctx, sizeof(struct local_ctx));
}

static const struct clst_envelope_provider_ops LOCAL_OPS = {
    "local key", local_wrap, local_unwrap, local_free,
};

enum clst_status
clst_envelope_provider_local_new(const uint8_t key[CLST_ENVELOPE_KEY_SIZE],
                                 struct clst_envelope_provider **out)
{
    enum clst_status rc;
    struct local_ctx *l;
    char desc[DESC_SIZE];
    char h[2 * CLST_ENVELOPE_KEY_ID_SIZE + 1];

    if (key == NULL || out == NULL) {
        return CLST_E_INVAL;
    }
    l = clst_secret_alloc_raw(sizeof(*l));
    if (l == NULL) {
        return CLST_E_NOMEM;
    }
    memcpy(l->key, key, sizeof(l->key));
    rc = clst_envelope_key_id(l->key, l->id);
    if (rc != CLST_OK) {
        local_free(l);
        return rc;
    }
    hex(l->id, sizeof(l->id), h, sizeof(h));
    snprintf(desc, sizeof(desc), "local key id %s", h);
    rc = provider_make(&LOCAL_OPS, l, desc, out);
    if (rc != CLST_OK) {
        local_free(l);
    }
    return rc;
}

enum clst_status
clst_envelope_key_generate(struct clst_buf *out)
{
    enum clst_status rc;
    uint8_t key[CLST_ENVELOPE_KEY_SIZE];

    if (out == NULL) {
        return CLST_E_INVAL;
    }
    rc = clst_random(key, sizeof(key));
    if (rc == CLST_OK) {
        rc = clst_buf_append_str(out, CLST_ENVELOPE_KEYFILE_PREFIX);
    }
    if (rc == CLST_OK) {
        rc = clst_hex_encode(key, sizeof(key), out);
    }
    if (rc == CLST_OK) {
        rc = clst_buf_append_byte(out, '\n');
    }
    clst_wipe(key, sizeof(key));
    return rc;
}

enum clst_status
clst_envelope_key_parse(const char *text, size_t size, uint8_t out_key[CLST_ENVELOPE_KEY_SIZE],
                        struct clst_err *err)
{
    const size_t prefix = sizeof(CLST_ENVELOPE_KEYFILE_PREFIX) - 1;
    const size_t bare = prefix + 2 * CLST_ENVELOPE_KEY_SIZE;
    uint8_t key[CLST_ENVELOPE_KEY_SIZE];

    if (text == NULL || out_key == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "key file: missing argument");
    }
    if (size < prefix || memcmp(text, CLST_ENVELOPE_KEYFILE_PREFIX, prefix) != 0) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "not a cloister key file (it must start with '%s'; create one with "
                            "'cloister keygen')",
                            CLST_ENVELOPE_KEYFILE_PREFIX);
    }
    if (!(size == bare || (size == bare + 1 && text[bare] == '\n'))) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "key file has %zu bytes; expected '%s' and 64 hex digits on one line",
                            size, CLST_ENVELOPE_KEYFILE_PREFIX);
    }
    /* The digits are checked here first, so that only well-formed hex reaches the decoder. */
    for (size_t i = prefix; i < bare; i++) {
        char c = text[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
            return clst_err_set(err, CLST_E_MALFORMED,
                                "key file: the key must be 64 hex digits after '%s'",
                                CLST_ENVELOPE_KEYFILE_PREFIX);
        }
    }
    if (clst_hex_decode_fixed(text + prefix, 2 * CLST_ENVELOPE_KEY_SIZE, key, sizeof(key)) !=
        CLST_OK) {
        clst_wipe(key, sizeof(key));
        return clst_err_set(err, CLST_E_MALFORMED,
                            "key file: the key must be 64 hex digits after '%s'",
                            CLST_ENVELOPE_KEYFILE_PREFIX);
    }
    memcpy(out_key, key, sizeof(key));
    clst_wipe(key, sizeof(key));
    return CLST_OK;
}

/* ---- public-key recipients ----------------------------------------------------------------- */

struct recipient_ctx {
    EVP_PKEY *key;
    enum clst_envelope_recipient_type type;
    uint8_t fingerprint[CLST_ENVELOPE_FINGERPRINT_SIZE];
    bool has_private;
};

enum clst_status
clst_envelope_fingerprint(const EVP_PKEY *key, uint8_t out[CLST_ENVELOPE_FINGERPRINT_SIZE])
{
    enum clst_status rc;
    struct clst_buf der;

    if (key == NULL || out == NULL) {
        return CLST_E_INVAL;
    }
    clst_buf_init(&der, 1u << 16);
    rc = clst_pkey_to_der(key, false, &der);
    if (rc == CLST_OK) {
        rc = clst_sha256(der.data, der.size, out);
    }
    clst_buf_cleanup(&der);
    return rc;
}

/* KEK = HKDF-SHA256(salt = "", ikm = Z, info = ECDH_INFO || 0x00 || epk || recipient point). */
static enum clst_status
ecdh_kek(EVP_PKEY *priv, EVP_PKEY *peer, const uint8_t *epk, const uint8_t *rpk,
         uint8_t kek[CLST_ENVELOPE_KEY_SIZE])
{
    enum clst_status rc;
    struct clst_buf z;
    uint8_t info[sizeof(ECDH_INFO) + 2 * EC_POINT_SIZE];
    size_t n = sizeof(ECDH_INFO); /* includes the NUL, which is the 0x00 separator */

    memcpy(info, ECDH_INFO, sizeof(ECDH_INFO));
    memcpy(info + n, epk, EC_POINT_SIZE);
    n += EC_POINT_SIZE;
    memcpy(info + n, rpk, EC_POINT_SIZE);
    n += EC_POINT_SIZE;
    clst_buf_init_secret(&z, 256);
    rc = clst_ecdh(priv, peer, &z);
    if (rc == CLST_OK) {
        rc = clst_hkdf(CLST_HASH_SHA256, NULL, 0, z.data, z.size, info, n, kek,
                       CLST_ENVELOPE_KEY_SIZE);
    }
    clst_buf_cleanup(&z);
    return rc;
}

static enum clst_status
point_of(const EVP_PKEY *key, uint8_t out[EC_POINT_SIZE])
{
    struct clst_buf b;
    enum clst_status rc;

    clst_buf_init(&b, 256);
    rc = clst_ec_point_encode(key, &b);
    if (rc == CLST_OK && b.size != EC_POINT_SIZE) {
        rc = CLST_E_INTERNAL;
    }
    if (rc == CLST_OK) {
        memcpy(out, b.data, EC_POINT_SIZE);
    }
    clst_buf_cleanup(&b);
    return rc;
}

static enum clst_status
recipient_wrap(void *vctx, const uint8_t key[CLST_ENVELOPE_KEY_SIZE],
               struct clst_envelope_keyref *out_ref, struct clst_envelope_wrapped *out_wrapped,
               struct clst_err *err)
{
    struct recipient_ctx *r = vctx;
    enum clst_status rc = CLST_E_CRYPTO;
    struct clst_buf ct;
    EVP_PKEY *eph = NULL;
    uint8_t kek[CLST_ENVELOPE_KEY_SIZE];
    uint8_t rpk[EC_POINT_SIZE];
    size_t n = 0;

    clst_buf_init(&ct, CLST_ENVELOPE_WRAPPED_MAX_SIZE);
    if (r->type == CLST_ENVELOPE_RECIPIENT_RSA) {
        rc = clst_rsa_oaep_encrypt(r->key, CLST_HASH_SHA256, key, CLST_ENVELOPE_KEY_SIZE, &ct);
        if (rc != CLST_OK || ct.size > sizeof(out_wrapped->data)) {
            clst_err_set(err, rc == CLST_OK ? CLST_E_LIMIT : rc,
                         "RSA-OAEP-256 encryption to the recipient failed");
            rc = rc == CLST_OK ? CLST_E_LIMIT : rc;
            goto out;
        }
        memcpy(out_wrapped->data, ct.data, ct.size);
        out_wrapped->size = ct.size;
        snprintf(out_wrapped->alg, sizeof(out_wrapped->alg), "%s", CLST_ENVELOPE_ALG_RSA_OAEP_256);
    } else {
        rc = clst_ec_generate(CLST_CURVE_P256, &eph);
        if (rc == CLST_OK) {
            rc = point_of(eph, out_wrapped->data);
        }
        if (rc == CLST_OK) {
            rc = point_of(r->key, rpk);
        }
        if (rc == CLST_OK) {
            rc = ecdh_kek(eph, r->key, out_wrapped->data, rpk, kek);
        }
        if (rc == CLST_OK) {
            rc = clst_aes_kw_wrap(kek, sizeof(kek), key, CLST_ENVELOPE_KEY_SIZE,
                                  out_wrapped->data + EC_POINT_SIZE,
                                  sizeof(out_wrapped->data) - EC_POINT_SIZE, &n);
        }
        if (rc != CLST_OK || n != KW_WRAPPED_SIZE) {
            rc = rc == CLST_OK ? CLST_E_INTERNAL : rc;
            clst_err_set(err, rc, "ECDH-ES key agreement with the P-256 recipient failed");
            goto out;
        }
        out_wrapped->size = ECDH_WRAPPED_SIZE;
        snprintf(out_wrapped->alg, sizeof(out_wrapped->alg), "%s", CLST_ENVELOPE_ALG_ECDH_P256);
    }
    out_ref->kind = CLST_ENVELOPE_REF_RECIPIENT;
    out_ref->recipient_type = r->type;
    memcpy(out_ref->fingerprint, r->fingerprint, sizeof(r->fingerprint));
    rc = CLST_OK;
out:
    EVP_PKEY_free(eph);
    clst_wipe(kek, sizeof(kek));
    clst_buf_cleanup(&ct);
    return rc;
}

static enum clst_status
recipient_unwrap(void *vctx, const struct clst_envelope_keyref *ref,
                 const struct clst_envelope_wrapped *wrapped,
                 uint8_t out_key[CLST_ENVELOPE_KEY_SIZE], struct clst_err *err)
{
    struct recipient_ctx *r = vctx;
    enum clst_status rc = CLST_E_VERIFY;
    char need[REF_DESC_SIZE];
    char have[2 * CLST_ENVELOPE_FINGERPRINT_SIZE + 1];
    struct clst_buf pt;
    EVP_PKEY *epk = NULL;
    uint8_t kek[CLST_ENVELOPE_KEY_SIZE];
    uint8_t rpk[EC_POINT_SIZE];
    uint8_t tmp[KW_WRAPPED_SIZE];
    size_t n = 0;
    const char *type_name = r->type == CLST_ENVELOPE_RECIPIENT_RSA ? "RSA" : "P-256";

    hex(r->fingerprint, sizeof(r->fingerprint), have, sizeof(have));
    if (ref->kind != CLST_ENVELOPE_REF_RECIPIENT || ref->recipient_type != r->type ||
        memcmp(ref->fingerprint, r->fingerprint, sizeof(r->fingerprint)) != 0) {
        describe_ref(ref, need, sizeof(need));
        return clst_err_set(err, CLST_E_NOTFOUND,
                            "the file was encrypted for %s, but the key given is the %s key "
                            "SHA256:%s",
                            need, type_name, have);
    }
    if (!r->has_private) {
        return clst_err_set(err, CLST_E_INVAL,
                            "the file is encrypted to this %s key, but only its public half was "
                            "given; decrypting needs the private key",
                            type_name);
    }
    clst_buf_init_secret(&pt, 64);
    if (r->type == CLST_ENVELOPE_RECIPIENT_RSA) {
        if (strcmp(wrapped->alg, CLST_ENVELOPE_ALG_RSA_OAEP_256) != 0) {
            rc = clst_err_set(err, CLST_E_MALFORMED,
                              "wrap algorithm '%s' is not supported for RSA recipients (only "
                              "RSA-OAEP-256)",
                              wrapped->alg);
            goto out;
        }
        rc = clst_rsa_oaep_decrypt(r->key, CLST_HASH_SHA256, wrapped->data, wrapped->size, &pt);
        if (rc != CLST_OK || pt.size != CLST_ENVELOPE_KEY_SIZE) {
            rc = clst_err_set(err, CLST_E_VERIFY,
                              "the wrapped key does not decrypt with this RSA private key: the "
                              "header was modified");
            goto out;
        }
        memcpy(out_key, pt.data, CLST_ENVELOPE_KEY_SIZE);
    } else {
        if (strcmp(wrapped->alg, CLST_ENVELOPE_ALG_ECDH_P256) != 0) {
            rc = clst_err_set(err, CLST_E_MALFORMED,
                              "wrap algorithm '%s' is not supported for P-256 recipients (only "
                              "%s)",
                              wrapped->alg, CLST_ENVELOPE_ALG_ECDH_P256);
            goto out;
        }
        if (wrapped->size != ECDH_WRAPPED_SIZE) {
            rc = clst_err_set(err, CLST_E_MALFORMED,
                              "wrapped key is %zu bytes; ECDH-ES on P-256 gives %d", wrapped->size,
                              ECDH_WRAPPED_SIZE);
            goto out;
        }
        /* The decoder rejects points that are not on the curve. */
        if (clst_ec_point_decode(CLST_CURVE_P256, wrapped->data, EC_POINT_SIZE, &epk) != CLST_OK ||
            point_of(r->key, rpk) != CLST_OK ||
            ecdh_kek(r->key, epk, wrapped->data, rpk, kek) != CLST_OK ||
            clst_aes_kw_unwrap(kek, sizeof(kek), wrapped->data + EC_POINT_SIZE, KW_WRAPPED_SIZE,
                               tmp, sizeof(tmp), &n) != CLST_OK ||
            n != CLST_ENVELOPE_KEY_SIZE) {
            rc = clst_err_set(err, CLST_E_VERIFY,
                              "the wrapped key does not unwrap with this P-256 private key: the "
                              "header was modified");
            goto out;
        }
        memcpy(out_key, tmp, CLST_ENVELOPE_KEY_SIZE);
    }
    rc = CLST_OK;
out:
    EVP_PKEY_free(epk);
    clst_wipe(kek, sizeof(kek));
    clst_wipe(tmp, sizeof(tmp));
    clst_buf_cleanup(&pt);
    return rc;
}

static void
recipient_free(void *vctx)
{
    struct recipient_ctx *r = vctx;
    if (r == NULL) {
        return;
    }
    EVP_PKEY_free(r->key);
    free(r);
}

static const struct clst_envelope_provider_ops RECIPIENT_OPS = {
    "recipient", recipient_wrap, recipient_unwrap, recipient_free,
};

enum clst_status
clst_envelope_provider_recipient_new(EVP_PKEY *key, struct clst_envelope_provider **out,
                                     struct clst_err *err)
{
    enum clst_status rc;
    struct recipient_ctx *r = NULL;
    char desc[DESC_SIZE];
    char h[2 * CLST_ENVELOPE_FINGERPRINT_SIZE + 1];
    int bits;

    if (key == NULL || out == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "recipient: missing key");
    }
    r = calloc(1, sizeof(*r));
    if (r == NULL) {
        return clst_err_set(err, CLST_E_NOMEM, "out of memory");
    }
    switch (clst_pkey_kind(key)) {
    case CLST_KEY_RSA:
        bits = clst_pkey_bits(key);
        if (bits < CLST_RSA_MIN_BITS || bits > CLST_RSA_MAX_BITS) {
            rc = clst_err_set(err, CLST_E_INVAL,
                              "RSA recipient keys must have %d..%d bits (this one has %d)",
                              CLST_RSA_MIN_BITS, CLST_RSA_MAX_BITS, bits);
            goto out;
        }
        r->type = CLST_ENVELOPE_RECIPIENT_RSA;
        break;
    case CLST_KEY_EC_P256:
        bits = 256;
        r->type = CLST_ENVELOPE_RECIPIENT_P256;
        break;
    default:
        rc = clst_err_set(err, CLST_E_INVAL,
                          "recipient keys must be RSA (2048..4096 bits) or EC P-256");
        goto out;
    }
    rc = clst_envelope_fingerprint(key, r->fingerprint);
    if (rc != CLST_OK) {
        clst_err_set(err, rc, "cannot encode the recipient's public key");
        goto out;
    }
    if (EVP_PKEY_up_ref(key) != 1) {
        rc = clst_err_set(err, CLST_E_CRYPTO, "cannot reference the key");
        goto out;
    }
    r->key = key;
    r->has_private = clst_pkey_has_private(key);
    hex(r->fingerprint, sizeof(r->fingerprint), h, sizeof(h));
    if (r->type == CLST_ENVELOPE_RECIPIENT_RSA) {
        snprintf(desc, sizeof(desc), "RSA-%d recipient SHA256:%s", bits, h);
    } else {
        snprintf(desc, sizeof(desc), "P-256 recipient SHA256:%s", h);
    }
    rc = provider_make(&RECIPIENT_OPS, r, desc, out);
    if (rc != CLST_OK) {
        clst_err_set(err, rc, "out of memory");
        goto out;
    }
    r = NULL;
out:
    recipient_free(r);
    return rc;
}

/* ---- key files ----------------------------------------------------------------------------- */

/* Reads a small file into a secret buffer; with `private`, refuses loose permissions. */
static enum clst_status
read_key_file(const char *path, bool private, struct clst_buf *out, struct clst_err *err)
{
    enum clst_status rc = CLST_E_IO;
    struct stat st;
    uint8_t chunk[4096];
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

    if (fd < 0) {
        return clst_err_set(err, errno == ENOENT ? CLST_E_NOTFOUND : CLST_E_IO,
                            "cannot open key file %s: %s", path, strerror(errno));
    }
    if (fstat(fd, &st) != 0) {
        clst_err_set(err, CLST_E_IO, "cannot stat key file %s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = clst_err_set(err, CLST_E_DENIED, "key file %s is not a regular file", path);
        goto out;
    }
    if (private && (st.st_mode & 077) != 0) {
        rc = clst_err_set(err, CLST_E_DENIED,
                          "key file %s is accessible by group or others (mode %04o); protect it "
                          "with 'chmod 600 %s' and try again",
                          path, (unsigned)(st.st_mode & 07777), path);
        goto out;
    }
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            clst_err_set(err, CLST_E_IO, "cannot read key file %s: %s", path, strerror(errno));
            goto out;
        }
        if (n == 0) {
            break;
        }
        if (clst_buf_append(out, chunk, (size_t)n) != CLST_OK) {
            rc = clst_err_set(err, CLST_E_LIMIT, "key file %s is larger than %d bytes", path,
                              KEYFILE_MAX_SIZE);
            goto out;
        }
    }
    rc = CLST_OK;
out:
    clst_wipe(chunk, sizeof(chunk));
    close(fd);
    return rc;
}

enum clst_status
clst_envelope_provider_from_key_file(const char *path, struct clst_envelope_provider **out,
                                     struct clst_err *err)
{
    enum clst_status rc;
    struct clst_buf text;
    uint8_t key[CLST_ENVELOPE_KEY_SIZE];
    EVP_PKEY *pkey = NULL;
    const size_t prefix = sizeof(CLST_ENVELOPE_KEYFILE_PREFIX) - 1;

    if (path == NULL || out == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "no key file given");
    }
    clst_buf_init_secret(&text, KEYFILE_MAX_SIZE);
    rc = read_key_file(path, true, &text, err);
    if (rc != CLST_OK) {
        goto out;
    }
    if (text.size >= prefix && memcmp(text.data, CLST_ENVELOPE_KEYFILE_PREFIX, prefix) == 0) {
        rc = clst_envelope_key_parse((const char *)text.data, text.size, key, err);
        if (rc != CLST_OK) {
            clst_err_prefix(err, "%s", path);
            goto out;
        }
        rc = clst_envelope_provider_local_new(key, out);
        if (rc != CLST_OK) {
            clst_err_set(err, rc, "cannot set up the local key");
        }
        goto out;
    }
    rc = clst_pkey_from_pem(text.data, text.size, &pkey, err);
    if (rc != CLST_OK) {
        rc = clst_err_set(err, CLST_E_MALFORMED,
                          "%s is neither a cloister key file ('cloister keygen') nor a PEM "
                          "private key",
                          path);
        goto out;
    }
    if (!clst_pkey_has_private(pkey)) {
        rc = clst_err_set(err, CLST_E_INVAL,
                          "%s holds a public key; decrypting needs the private key (public keys "
                          "go to --recipient when encrypting)",
                          path);
        goto out;
    }
    rc = clst_envelope_provider_recipient_new(pkey, out, err);
    if (rc != CLST_OK) {
        clst_err_prefix(err, "%s", path);
    }
out:
    EVP_PKEY_free(pkey);
    clst_wipe(key, sizeof(key));
    clst_buf_cleanup(&text);
    return rc;
}

enum clst_status
clst_envelope_provider_from_recipient_file(const char *path, struct clst_envelope_provider **out,
                                           struct clst_err *err)
{
    enum clst_status rc;
    struct clst_buf text;
    EVP_PKEY *pkey = NULL;
    EVP_PKEY *pub = NULL;

    if (path == NULL || out == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "no recipient file given");
    }
    clst_buf_init_secret(&text, KEYFILE_MAX_SIZE);
    rc = read_key_file(path, false, &text, err);
    if (rc != CLST_OK) {
        goto out;
    }
    rc = clst_pkey_from_pem(text.data, text.size, &pkey, err);
    if (rc != CLST_OK) {
        rc = clst_err_set(err, CLST_E_MALFORMED,
                          "%s is not a PEM public key (SubjectPublicKeyInfo, '-----BEGIN PUBLIC "
                          "KEY-----')",
                          path);
        goto out;
    }
    /* Keep only the public half: encryption never needs the private key. */
    rc = clst_pkey_public_copy(pkey, &pub);
    if (rc != CLST_OK) {
        clst_err_set(err, rc, "%s: cannot extract the public key", path);
        goto out;
    }
    rc = clst_envelope_provider_recipient_new(pub, out, err);
    if (rc != CLST_OK) {
        clst_err_prefix(err, "%s", path);
    }
out:
    EVP_PKEY_free(pub);
    EVP_PKEY_free(pkey);
    clst_buf_cleanup(&text);
    return rc;
}
