/*
 * The envelope key provider backed by a vault key (see kvprovider.h).
 *
 * Trust: the vault is trusted to wrap and unwrap honestly (it holds the key); everything it sends
 * back is still checked: the unwrapped key must be exactly 32 bytes, the wrapped key must fit the
 * header, the key's kty must allow wrapping. The file header is untrusted input: only its key name,
 * version and algorithm are used, each checked, and the request goes to the configured vault.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cloister/crypto.h>

#include "kvprovider/kvprovider.h"

#define NAME_MAX_LEN 127
#define VERSION_LEN  32

struct kvp {
    struct clst_client *client;
    bool any;                      /* decrypt-only: any key the header names */
    char name[NAME_MAX_LEN + 1];   /* fixed key (not any) */
    char version[VERSION_LEN + 1]; /* resolved version (not any) */
    char alg[CLST_ENVELOPE_ALG_MAX_SIZE + 1];
};

static bool
name_ok(const char *s, size_t n)
{
    if (n == 0 || n > NAME_MAX_LEN) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == '-')) {
            return false;
        }
    }
    return true;
}

static bool
version_ok(const char *s, size_t n)
{
    if (n != VERSION_LEN) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return false;
        }
    }
    return true;
}

enum clst_status
clst_kvprovider_parse_ref(const char *ref, char name[static 128], char version[static 33],
                          struct clst_err *err)
{
    size_t plen = strlen(CLST_KVPROVIDER_PREFIX);
    const char *p, *slash;
    size_t n;

    if (ref == NULL || strncmp(ref, CLST_KVPROVIDER_PREFIX, plen) != 0) {
        return clst_err_set(err, CLST_E_INVAL, "a vault key is written vault:NAME[/VERSION]");
    }
    p = ref + plen;
    slash = strchr(p, '/');
    n = slash != NULL ? (size_t)(slash - p) : strlen(p);
    if (!name_ok(p, n)) {
        return clst_err_set(err, CLST_E_INVAL,
                            "the vault key name must be 1-127 characters of 0-9, a-z, A-Z and '-'");
    }
    if (slash != NULL && !version_ok(slash + 1, strlen(slash + 1))) {
        return clst_err_set(err, CLST_E_INVAL,
                            "the vault key version must be 32 lower-case hex characters");
    }
    memcpy(name, p, n);
    name[n] = '\0';
    if (slash != NULL) {
        memcpy(version, slash + 1, VERSION_LEN + 1);
    } else {
        version[0] = '\0';
    }
    return CLST_OK;
}

/* "/keys/<name>/<version><suffix>" (both already validated: no escaping needed). */
static enum clst_status
key_path(const char *name, const char *version, const char *suffix, char *out, size_t cap)
{
    int n = snprintf(out, cap, "/keys/%s/%s%s", name, version, suffix);
    return (n < 0 || (size_t)n >= cap) ? CLST_E_LIMIT : CLST_OK;
}

/* The wrap algorithm for a key bundle's JWK, and its version from the kid. */
static enum clst_status
inspect_key(const json_t *bundle, char alg[static CLST_ENVELOPE_ALG_MAX_SIZE + 1],
            char version[static VERSION_LEN + 1], struct clst_err *err)
{
    const json_t *key = json_object_get(bundle, "key");
    const char *kty = json_string_value(json_object_get(key, "kty"));
    const char *kid = json_string_value(json_object_get(key, "kid"));
    const char *slash = kid != NULL ? strrchr(kid, '/') : NULL;

    if (kty == NULL || slash == NULL || !version_ok(slash + 1, strlen(slash + 1))) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "the vault's answer has no usable key (kty and a versioned kid)");
    }
    memcpy(version, slash + 1, VERSION_LEN + 1);
    if (strcmp(kty, "RSA") == 0 || strcmp(kty, "RSA-HSM") == 0) {
        snprintf(alg, CLST_ENVELOPE_ALG_MAX_SIZE + 1, "RSA-OAEP-256");
        return CLST_OK;
    }
    if (strcmp(kty, "oct") == 0 || strcmp(kty, "oct-HSM") == 0) {
        /* An oct key's JWK does not tell its size; kvp_wrap finds the KW algorithm that fits. */
        alg[0] = '\0';
        return CLST_OK;
    }
    return clst_err_set(err, CLST_E_INVAL,
                        "vault key of type %s cannot wrap keys: use an RSA or oct (AES) key", kty);
}

static enum clst_status
wrap_with(struct kvp *k, const char *alg, const uint8_t key[CLST_ENVELOPE_KEY_SIZE], json_t **out,
          struct clst_err *err)
{
    char path[256];
    struct clst_buf b64;
    json_t *body = NULL;
    enum clst_status st;

    clst_buf_init_secret(&b64, 64);
    st = clst_b64url_encode(key, CLST_ENVELOPE_KEY_SIZE, &b64);
    if (st == CLST_OK) {
        st = key_path(k->name, k->version, "/wrapkey", path, sizeof(path));
    }
    if (st == CLST_OK) {
        body = json_pack("{s:s, s:s%}", "alg", alg, "value", (const char *)b64.data, b64.size);
        st = body != NULL ? CLST_OK : CLST_E_NOMEM;
    }
    if (st != CLST_OK) {
        clst_buf_cleanup(&b64);
        return clst_err_set(err, st, "preparing the wrap request failed");
    }
    st = clst_client_call(k->client, "POST", path, NULL, body, out, err);
    json_decref(body);
    clst_buf_cleanup(&b64);
    return st;
}

static enum clst_status
kvp_wrap(void *ctx, const uint8_t key[CLST_ENVELOPE_KEY_SIZE], struct clst_envelope_keyref *out_ref,
         struct clst_envelope_wrapped *out_wrapped, struct clst_err *err)
{
    struct kvp *k = ctx;
    json_t *resp = NULL;
    struct clst_buf raw;
    const char *value;
    enum clst_status st;

    if (k->any) {
        return clst_err_set(err, CLST_E_INVAL,
                            "this vault provider only decrypts: name a key (vault:NAME) to "
                            "encrypt");
    }
    clst_buf_init(&raw, CLST_ENVELOPE_WRAPPED_MAX_SIZE);
    if (k->alg[0] != '\0') {
        st = wrap_with(k, k->alg, key, &resp, err);
    } else {
        /* oct: the vault refuses (400) a KW algorithm of another size than the key's. */
        static const char *const kw[] = {"A256KW", "A192KW", "A128KW"};
        st = CLST_E_INVAL;
        for (size_t i = 0; i < sizeof(kw) / sizeof(kw[0]) && st == CLST_E_INVAL; i++) {
            st = wrap_with(k, kw[i], key, &resp, err);
            if (st == CLST_OK) {
                snprintf(k->alg, sizeof(k->alg), "%s", kw[i]);
            }
        }
    }
    if (st != CLST_OK) {
        clst_err_prefix(err, "wrapping the file key with vault key '%s'", k->name);
        goto out;
    }
    value = json_string_value(json_object_get(resp, "value"));
    if (value == NULL || clst_b64url_decode(value, strlen(value), &raw) != CLST_OK ||
        raw.size == 0) {
        st = clst_err_set(err, CLST_E_MALFORMED,
                          "the vault's wrapkey answer has no usable value (at most %d bytes)",
                          CLST_ENVELOPE_WRAPPED_MAX_SIZE);
        goto out;
    }
    memset(out_ref, 0, sizeof(*out_ref));
    out_ref->kind = CLST_ENVELOPE_REF_VAULT;
    snprintf(out_ref->vault_url, sizeof(out_ref->vault_url), "%s", clst_client_url(k->client));
    snprintf(out_ref->key_name, sizeof(out_ref->key_name), "%s", k->name);
    snprintf(out_ref->key_version, sizeof(out_ref->key_version), "%s", k->version);
    memset(out_wrapped, 0, sizeof(*out_wrapped));
    snprintf(out_wrapped->alg, sizeof(out_wrapped->alg), "%s", k->alg);
    memcpy(out_wrapped->data, raw.data, raw.size);
    out_wrapped->size = raw.size;
    st = CLST_OK;
out:
    json_decref(resp);
    clst_buf_cleanup(&raw);
    return st;
}

static bool
alg_known(const char *alg)
{
    static const char *const ok[] = {"RSA-OAEP-256", "RSA-OAEP", "RSA1_5",
                                     "A128KW",       "A192KW",   "A256KW"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        if (strcmp(alg, ok[i]) == 0) {
            return true;
        }
    }
    return false;
}

static enum clst_status
kvp_unwrap(void *ctx, const struct clst_envelope_keyref *ref,
           const struct clst_envelope_wrapped *wrapped, uint8_t out_key[CLST_ENVELOPE_KEY_SIZE],
           struct clst_err *err)
{
    struct kvp *k = ctx;
    char path[256];
    struct clst_buf b64, raw;
    json_t *body = NULL, *resp = NULL;
    const char *value;
    enum clst_status st;

    if (ref->kind != CLST_ENVELOPE_REF_VAULT) {
        return clst_err_set(err, CLST_E_NOTFOUND,
                            "the file's key is not a vault key; this provider unwraps vault keys "
                            "only");
    }
    if (!name_ok(ref->key_name, strlen(ref->key_name)) ||
        !version_ok(ref->key_version, strlen(ref->key_version)) || !alg_known(wrapped->alg) ||
        wrapped->size == 0 || wrapped->size > CLST_ENVELOPE_WRAPPED_MAX_SIZE) {
        return clst_err_set(err, CLST_E_NOTFOUND,
                            "the file names a vault key this provider cannot use (name, version "
                            "or wrap algorithm not valid)");
    }
    if (!k->any && strcasecmp(ref->key_name, k->name) != 0) {
        return clst_err_set(err, CLST_E_NOTFOUND,
                            "the file needs vault key '%s'; this provider uses vault key '%s'",
                            ref->key_name, k->name);
    }
    clst_buf_init(&b64, 2 * CLST_ENVELOPE_WRAPPED_MAX_SIZE);
    clst_buf_init_secret(&raw, 64);
    st = clst_b64url_encode(wrapped->data, wrapped->size, &b64);
    if (st == CLST_OK) {
        st = key_path(ref->key_name, ref->key_version, "/unwrapkey", path, sizeof(path));
    }
    if (st == CLST_OK) {
        body = json_pack("{s:s, s:s%}", "alg", wrapped->alg, "value", (const char *)b64.data,
                         b64.size);
        st = body != NULL ? CLST_OK : CLST_E_NOMEM;
    }
    if (st != CLST_OK) {
        st = clst_err_set(err, st, "preparing the unwrap request failed");
        goto out;
    }
    st = clst_client_call(k->client, "POST", path, NULL, body, &resp, err);
    if (st == CLST_E_INVAL) {
        /* 400: the vault could not unwrap it (altered header or another key). */
        clst_err_prefix(err, "vault key '%s' version %s did not unwrap the file key", ref->key_name,
                        ref->key_version);
        if (err != NULL) {
            err->status = CLST_E_VERIFY;
        }
        st = CLST_E_VERIFY;
        goto out;
    }
    if (st == CLST_E_NOTFOUND) {
        clst_err_prefix(err, "vault key '%s' version %s", ref->key_name, ref->key_version);
        goto out;
    }
    if (st != CLST_OK) {
        clst_err_prefix(err, "unwrapping the file key with vault key '%s'", ref->key_name);
        goto out;
    }
    value = json_string_value(json_object_get(resp, "value"));
    if (value == NULL || clst_b64url_decode(value, strlen(value), &raw) != CLST_OK ||
        raw.size != CLST_ENVELOPE_KEY_SIZE) {
        st = clst_err_set(err, CLST_E_VERIFY,
                          "the vault unwrapped something that is not a %d-byte file key",
                          CLST_ENVELOPE_KEY_SIZE);
        goto out;
    }
    memcpy(out_key, raw.data, CLST_ENVELOPE_KEY_SIZE);
    st = CLST_OK;
out:
    json_decref(body);
    json_decref(resp);
    clst_buf_cleanup(&b64);
    clst_buf_cleanup(&raw);
    return st;
}

static void
kvp_free(void *ctx)
{
    struct kvp *k = ctx;
    if (k != NULL) {
        clst_client_free(k->client);
        free(k);
    }
}

static const struct clst_envelope_provider_ops KVP_OPS = {
    .name = "vault",
    .wrap = kvp_wrap,
    .unwrap = kvp_unwrap,
    .free = kvp_free,
};

static enum clst_status
make(const struct clst_client_config *cfg, struct kvp **out, struct clst_err *err)
{
    struct kvp *k = calloc(1, sizeof(*k));
    enum clst_status st;
    if (k == NULL) {
        return clst_err_set(err, CLST_E_NOMEM, "out of memory");
    }
    st = clst_client_new(cfg, &k->client, err);
    if (st != CLST_OK) {
        free(k);
        return st;
    }
    *out = k;
    return CLST_OK;
}

enum clst_status
clst_kvprovider_new(const struct clst_client_config *cfg, const char *name, const char *version,
                    struct clst_envelope_provider **out, struct clst_err *err)
{
    struct kvp *k = NULL;
    json_t *bundle = NULL;
    char path[256];
    char resolved[VERSION_LEN + 1];
    enum clst_status st;

    if (cfg == NULL || out == NULL || name == NULL || !name_ok(name, strlen(name))) {
        return clst_err_set(err, CLST_E_INVAL,
                            "the vault key name must be 1-127 characters of 0-9, a-z, A-Z and '-'");
    }
    if (version == NULL) {
        version = "";
    }
    if (version[0] != '\0' && !version_ok(version, strlen(version))) {
        return clst_err_set(err, CLST_E_INVAL,
                            "the vault key version must be 32 lower-case hex characters");
    }
    st = make(cfg, &k, err);
    if (st != CLST_OK) {
        return st;
    }
    snprintf(k->name, sizeof(k->name), "%s", name);
    st = key_path(name, version, "", path, sizeof(path));
    if (st == CLST_OK) {
        st = clst_client_call(k->client, "GET", path, NULL, NULL, &bundle, err);
        if (st != CLST_OK) {
            clst_err_prefix(err, "reading vault key '%s'", name);
        }
    }
    if (st == CLST_OK) {
        st = inspect_key(bundle, k->alg, resolved, err);
    }
    if (st == CLST_OK) {
        memcpy(k->version, resolved, sizeof(resolved));
    }
    if (st == CLST_OK) {
        st = clst_envelope_provider_new(&KVP_OPS, k, out);
        if (st != CLST_OK) {
            clst_err_set(err, st, "creating the vault provider failed");
        }
    }
    json_decref(bundle);
    if (st != CLST_OK) {
        kvp_free(k);
    }
    return st;
}

enum clst_status
clst_kvprovider_any_new(const struct clst_client_config *cfg, struct clst_envelope_provider **out,
                        struct clst_err *err)
{
    struct kvp *k = NULL;
    enum clst_status st;

    if (cfg == NULL || out == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "vault provider: missing argument");
    }
    st = make(cfg, &k, err);
    if (st != CLST_OK) {
        return st;
    }
    k->any = true;
    st = clst_envelope_provider_new(&KVP_OPS, k, out);
    if (st != CLST_OK) {
        kvp_free(k);
        return clst_err_set(err, st, "creating the vault provider failed");
    }
    return CLST_OK;
}
