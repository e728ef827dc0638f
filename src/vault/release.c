/*
 * Secure key release: trusted attestation authorities and their JWKS caches, token verification,
 * policy evaluation, the TEE key, the release-signing key and certificate, the release JWS, and
 * the decision records. The wire format and every rule are in release.h and docs/key-release.md.
 *
 * Trust boundary: the attestation token, the request body and everything fetched from an
 * authority's JWKS URL are untrusted. A token's claims are used only after its signature has
 * verified with a key of the authority its "iss" names, that authority being one the operator
 * configured; the issuer is read from the unverified payload only to choose which authority's
 * keys to try (and for the decision record), never to decide anything else.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/x509v3.h>

#include <cloister/client.h>

#include "vault/keymat.h"
#include "vault/release.h"
#include "vault/rest_int.h"
#include "vault/vault_int.h"

#define SIGNER_BITS         2048
#define SIGNER_SEAL_NAME    "release-signing-key" /* AAD name of the sealed signing key */
#define SIGNER_SEAL_VERSION "v1"                  /* never a key version (those are 32 hex) */
#define SIGNER_SETTING_MAX  (16 * 1024)
#define CERT_DAYS           365
#define FETCH_TIMEOUT_S     10u
#define WRAPPED_MAX         (CLST_RSA_MAX_BITS / 8 + CLST_VAULT_VALUE_MAX + 16)
/* Validated TEE keys remembered (see tee_cache below). */
#define TEE_CACHE_SIZE 256

/* ---- small helpers -------------------------------------------------------------------------- */

static bool
put(json_t *obj, const char *key, json_t *v)
{
    return v != NULL && json_object_set_new(obj, key, v) == 0;
}

static bool
put_str(json_t *obj, const char *key, const char *s)
{
    return s == NULL || put(obj, key, json_string(s));
}

/* base64url of a SHA-256 into out (CLST_RELEASE_HASH_STR_SIZE). */
static enum clst_status
hash_str(const uint8_t hash[static CLST_SHA256_SIZE], char out[static CLST_RELEASE_HASH_STR_SIZE])
{
    struct clst_buf b;
    enum clst_status st;
    clst_buf_init(&b, CLST_RELEASE_HASH_STR_SIZE);
    st = clst_b64url_encode(hash, CLST_SHA256_SIZE, &b);
    if (st == CLST_OK && b.size < CLST_RELEASE_HASH_STR_SIZE) {
        memcpy(out, b.data, b.size);
        out[b.size] = '\0';
    } else if (st == CLST_OK) {
        st = CLST_E_INTERNAL;
    }
    clst_buf_cleanup(&b);
    return st;
}

/* Copies s (may be NULL: "") into out, cutting it at cap - 1 bytes. */
static void
copy_str(char *out, size_t cap, const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;
    if (n >= cap) {
        n = cap - 1;
    }
    if (n > 0) {
        memcpy(out, s, n);
    }
    out[n] = '\0';
}

/* Length of an issuer without one trailing '/'. */
static size_t
issuer_len(const char *s)
{
    size_t n = strlen(s);
    if (n > 0 && s[n - 1] == '/') {
        n--;
    }
    return n;
}

static bool
issuer_equal(const char *a, const char *b)
{
    size_t na = issuer_len(a), nb = issuer_len(b);
    return na == nb && memcmp(a, b, na) == 0;
}

/* ---- wrapping algorithms and stages --------------------------------------------------------- */

static const struct {
    enum clst_vault_release_enc enc;
    const char *name;
    enum clst_hash hash;
} ENCS[] = {
    {CLST_RELEASE_ENC_CKM_RSA_AES_KEY_WRAP, "CKM_RSA_AES_KEY_WRAP", CLST_HASH_SHA1},
    {CLST_RELEASE_ENC_RSA_AES_KEY_WRAP_256, "RSA_AES_KEY_WRAP_256", CLST_HASH_SHA256},
    {CLST_RELEASE_ENC_RSA_AES_KEY_WRAP_384, "RSA_AES_KEY_WRAP_384", CLST_HASH_SHA384},
};

enum clst_status
clst_vault_release_enc_parse(const char *name, enum clst_vault_release_enc *out,
                             struct clst_err *err)
{
    for (size_t i = 0; name != NULL && i < sizeof(ENCS) / sizeof(ENCS[0]); i++) {
        if (strcmp(name, ENCS[i].name) == 0) {
            *out = ENCS[i].enc;
            return CLST_OK;
        }
    }
    return clst_err_set(err, CLST_E_INVAL,
                        "enc must be CKM_RSA_AES_KEY_WRAP, RSA_AES_KEY_WRAP_256 or "
                        "RSA_AES_KEY_WRAP_384 (the key wrapping algorithms of secure key release)");
}

const char *
clst_vault_release_enc_name(enum clst_vault_release_enc enc)
{
    for (size_t i = 0; i < sizeof(ENCS) / sizeof(ENCS[0]); i++) {
        if (ENCS[i].enc == enc) {
            return ENCS[i].name;
        }
    }
    return NULL;
}

enum clst_hash
clst_vault_release_enc_hash(enum clst_vault_release_enc enc)
{
    for (size_t i = 0; i < sizeof(ENCS) / sizeof(ENCS[0]); i++) {
        if (ENCS[i].enc == enc) {
            return ENCS[i].hash;
        }
    }
    return (enum clst_hash)0;
}

const char *
clst_vault_release_stage_name(enum clst_vault_release_stage stage)
{
    switch (stage) {
    case CLST_RELEASE_STAGE_NONE:
        return "allowed";
    case CLST_RELEASE_STAGE_KEY:
        return "key";
    case CLST_RELEASE_STAGE_TOKEN:
        return "token";
    case CLST_RELEASE_STAGE_NONCE:
        return "nonce";
    case CLST_RELEASE_STAGE_POLICY:
        return "policy";
    case CLST_RELEASE_STAGE_TEE_KEY:
        return "tee-key";
    }
    return "?";
}

/* ---- decisions ------------------------------------------------------------------------------ */

enum clst_status
clst_vault_decision_to_json(const struct clst_vault_decision *d, json_t **out)
{
    char when[32];
    json_t *j = json_object();
    if (j == NULL || clst_time_format(d->time, when, sizeof(when)) != CLST_OK ||
        !put(j, "time", json_string(when)) || !put_str(j, "requestId", d->request_id) ||
        !put_str(j, "principal", d->principal) || !put_str(j, "operation", d->operation) ||
        !put(j, "dryRun", json_boolean(d->dry_run)) ||
        !put(j, "decision", json_string(d->allowed ? "allow" : "deny")) ||
        !put_str(j, "stage", d->stage) || !put_str(j, "reason", d->reason) ||
        !put_str(j, "keyName", d->key_name) || !put_str(j, "keyVersion", d->key_version) ||
        !put_str(j, "issuer", d->issuer) || !put_str(j, "jti", d->jti) ||
        !put_str(j, "tokenSha256", d->token_sha256) || !put_str(j, "policyHash", d->policy_hash) ||
        !put_str(j, "attestationType", d->attestation_type) || !put_str(j, "teeKey", d->tee_key) ||
        !put_str(j, "enc", d->enc)) {
        json_decref(j);
        return CLST_E_NOMEM;
    }
    *out = j;
    return CLST_OK;
}

/* ---- authorities ---------------------------------------------------------------------------- */

enum source_kind {
    SRC_FILE = 1,
    SRC_URL,
    SRC_FN,
};

/* A fetched set, shared by the requests using it (refs under the authority's lock). */
struct jwks_ref {
    struct clst_jwks *jwks;
    unsigned refs;
};

struct authority {
    pthread_mutex_t mu;
    char issuer[CLST_RELEASE_ISSUER_MAX + 1]; /* under mu ("" until set) */
    enum source_kind kind;
    char file[CLST_RELEASE_SOURCE_MAX + 1];
    char origin[CLST_RELEASE_SOURCE_MAX + 1]; /* "https://host[:port]" */
    char path[CLST_RELEASE_SOURCE_MAX + 1];   /* "/certs" */
    char ca_file[CLST_RELEASE_SOURCE_MAX + 1];
    enum clst_status (*fn)(void *ctx, json_t **out, struct clst_err *err);
    void *fn_ctx;
    int64_t refresh_s;
    int64_t refetch_min_s;
    /* under mu */
    struct jwks_ref *cur;
    int64_t fetched_at;
    int64_t attempted_at;
    bool attempted;
    bool fetching;
    unsigned fetches;
    char last_error[CLST_ERR_MSG_SIZE];
};

struct clst_vault_release {
    struct clst_vault *vault;
    const struct clst_clock *clock;
    int64_t skew;
    bool redact;
    struct authority *auth;
    size_t auth_count;
    struct clst_vault_decision_sink sink;
    int log_fd;
    pthread_mutex_t log_mu;
    /*
     * TEE keys that passed validation, by the SHA-256 of their exact "n" and "e" text. Parsing an
     * RSA public JWK runs OpenSSL's SP 800-56B public-key check (a Miller-Rabin test that n is
     * composite, ~8 ms for 2048 bits) and the ROCA test; a TEE presents the same key for every key
     * it asks for with one token, so the check runs once per TEE key, not once per release.
     */
    pthread_mutex_t tee_mu;
    struct {
        uint8_t id[CLST_SHA256_SIZE];
        EVP_PKEY *key;
        char thumbprint[CLST_RELEASE_HASH_STR_SIZE];
    } tee_cache[TEE_CACHE_SIZE];
    size_t tee_next;
    /* the release-signing key: pinned to RS256, kid = its RFC 7638 thumbprint */
    struct clst_jwk *signer;
    STACK_OF(X509) *chain;
    char **x5c; /* standard base64 DER of each chain certificate */
    size_t x5c_count;
    char x5t[CLST_RELEASE_HASH_STR_SIZE];
};

static void
ref_put(struct authority *a, struct jwks_ref *ref)
{
    if (ref == NULL) {
        return;
    }
    pthread_mutex_lock(&a->mu);
    bool last = --ref->refs == 0;
    pthread_mutex_unlock(&a->mu);
    if (last) {
        clst_jwks_free(ref->jwks);
        free(ref);
    }
}

enum clst_status
clst_vault_authority_parse(char *spec, struct clst_vault_authority_config *out,
                           struct clst_err *err)
{
    char *eq = spec != NULL ? strchr(spec, '=') : NULL;
    if (eq == NULL || eq == spec || eq[1] == '\0') {
        return clst_err_set(err, CLST_E_INVAL,
                            "a trusted authority is ISSUER=JWKS, e.g. "
                            "https://attest.example=https://attest.example/certs or "
                            "https://attest.example=/etc/cloister/attest-jwks.json");
    }
    *eq = '\0';
    memset(out, 0, sizeof(*out));
    out->issuer = spec;
    if (strncmp(eq + 1, "https://", 8) == 0) {
        out->jwks_url = eq + 1;
    } else if (strncmp(eq + 1, "http://", 7) == 0) {
        return clst_err_set(err, CLST_E_INVAL,
                            "the JWKS of %s must be fetched over https:// (or read from a file)",
                            spec);
    } else {
        out->jwks_file = eq + 1;
    }
    return CLST_OK;
}

/* Reads a JWKS file (at most CLST_JWKS_MAX_SIZE bytes). */
static enum clst_status
jwks_from_file(const char *path, struct clst_jwks **out, struct clst_err *err)
{
    struct clst_buf b;
    enum clst_status st = CLST_E_IO;
    char chunk[4096];
    FILE *f = fopen(path, "rb");
    clst_buf_init(&b, CLST_JWKS_MAX_SIZE);
    if (f == NULL) {
        clst_err_set(err, CLST_E_IO, "cannot open the JWKS file %s: %s", path, strerror(errno));
        goto out;
    }
    for (;;) {
        size_t n = fread(chunk, 1, sizeof(chunk), f);
        if (n > 0 && clst_buf_append(&b, chunk, n) != CLST_OK) {
            st = clst_err_set(err, CLST_E_LIMIT, "the JWKS file %s is larger than %d bytes", path,
                              CLST_JWKS_MAX_SIZE);
            goto out;
        }
        if (n < sizeof(chunk)) {
            break;
        }
    }
    if (ferror(f)) {
        clst_err_set(err, CLST_E_IO, "cannot read the JWKS file %s", path);
        goto out;
    }
    st = clst_jwks_parse(b.size > 0 ? (const char *)b.data : "", b.size, out, err);
    if (st != CLST_OK) {
        clst_err_prefix(err, "JWKS file %s", path);
    }
out:
    if (f != NULL) {
        fclose(f);
    }
    clst_buf_cleanup(&b);
    return st;
}

static enum clst_status
jwks_from_url(const struct authority *a, struct clst_jwks **out, struct clst_err *err)
{
    struct clst_client_config cfg;
    struct clst_client *c = NULL;
    struct clst_client_response resp;
    enum clst_status st;

    memset(&resp, 0, sizeof(resp));
    clst_client_config_init(&cfg);
    cfg.url = a->origin;
    cfg.ca_file = a->ca_file[0] != '\0' ? a->ca_file : NULL;
    cfg.timeout_s = FETCH_TIMEOUT_S;
    cfg.connect_timeout_s = FETCH_TIMEOUT_S;
    st = clst_client_new(&cfg, &c, err);
    if (st == CLST_OK) {
        st = clst_client_request(c, "GET", a->path, NULL, NULL, &resp, err);
    }
    if (st == CLST_OK && resp.status != 200) {
        st = clst_err_set(err, CLST_E_IO, "GET %s%s answered HTTP %ld", a->origin, a->path,
                          resp.status);
    } else if (st == CLST_OK && !json_is_object(resp.body)) {
        st = clst_err_set(err, CLST_E_MALFORMED, "GET %s%s did not answer a JSON object", a->origin,
                          a->path);
    } else if (st == CLST_OK) {
        st = clst_jwks_from_json(resp.body, out, err);
        if (st != CLST_OK) {
            clst_err_prefix(err, "JWKS at %s%s", a->origin, a->path);
        }
    }
    clst_client_response_cleanup(&resp);
    clst_client_free(c);
    return st;
}

static enum clst_status
jwks_fetch(const struct authority *a, struct clst_jwks **out, struct clst_err *err)
{
    enum clst_status st;
    json_t *j = NULL;
    struct clst_jwks *set = NULL;

    switch (a->kind) {
    case SRC_FILE:
        st = jwks_from_file(a->file, &set, err);
        break;
    case SRC_URL:
        st = jwks_from_url(a, &set, err);
        break;
    case SRC_FN:
    default:
        st = a->fn(a->fn_ctx, &j, err);
        if (st == CLST_OK) {
            st = clst_jwks_from_json(j, &set, err);
        }
        json_decref(j);
        break;
    }
    if (st == CLST_OK && clst_jwks_count(set) == 0) {
        clst_jwks_free(set);
        return clst_err_set(err, CLST_E_MALFORMED, "the JWKS holds no RSA or EC key");
    }
    if (st == CLST_OK) {
        *out = set;
    }
    return st;
}

/*
 * The authority's current set (a reference: ref_put it). Fetches when there is none, when it is
 * older than refresh_s, or when `force` (an unknown kid), but never twice within refetch_min_s
 * and never in two threads at once (the others keep using the current set).
 */
static enum clst_status
jwks_get(struct clst_vault_release *r, struct authority *a, bool force, struct jwks_ref **out,
         struct clst_err *err)
{
    int64_t now = clst_clock_now(r->clock);
    struct jwks_ref *ref;

    pthread_mutex_lock(&a->mu);
    bool stale = a->cur == NULL || now - a->fetched_at >= a->refresh_s || now < a->fetched_at;
    bool may = !a->fetching && (!a->attempted || now - a->attempted_at >= a->refetch_min_s ||
                                now < a->attempted_at);
    if ((stale || force) && may) {
        struct clst_jwks *set = NULL;
        struct clst_err ferr;
        a->fetching = true;
        a->attempted = true;
        a->attempted_at = now;
        pthread_mutex_unlock(&a->mu);
        clst_err_clear(&ferr);
        enum clst_status st = jwks_fetch(a, &set, &ferr);
        struct jwks_ref *fresh = NULL;
        if (st == CLST_OK) {
            fresh = calloc(1, sizeof(*fresh));
            if (fresh == NULL) {
                clst_jwks_free(set);
                st = clst_err_set(&ferr, CLST_E_NOMEM, "out of memory");
            } else {
                fresh->jwks = set;
                fresh->refs = 1;
            }
        }
        pthread_mutex_lock(&a->mu);
        a->fetching = false;
        if (st == CLST_OK) {
            struct jwks_ref *old = a->cur;
            a->cur = fresh;
            a->fetched_at = now;
            a->fetches++;
            a->last_error[0] = '\0';
            if (old != NULL && --old->refs == 0) {
                clst_jwks_free(old->jwks);
                free(old);
            }
        } else {
            copy_str(a->last_error, sizeof(a->last_error), ferr.msg);
            clst_log_warn("vault: release: cannot fetch the keys of attestation authority %s: %s",
                          a->issuer, ferr.msg);
        }
    }
    ref = a->cur;
    if (ref != NULL) {
        ref->refs++;
    }
    char why[CLST_ERR_MSG_SIZE];
    copy_str(why, sizeof(why), a->last_error);
    pthread_mutex_unlock(&a->mu);
    if (ref == NULL) {
        return clst_err_set(err, CLST_E_IO,
                            "the keys of attestation authority %s are not available (%s); the "
                            "next attempt is in at most %lld s",
                            a->issuer, why[0] != '\0' ? why : "not fetched yet",
                            (long long)a->refetch_min_s);
    }
    *out = ref;
    return CLST_OK;
}

/* Splits "https://host[:port]/path" into origin and path (path "/" when absent). */
static enum clst_status
url_split(const char *url, struct authority *a, struct clst_err *err)
{
    if (strncmp(url, "https://", 8) != 0 || strlen(url) > CLST_RELEASE_SOURCE_MAX) {
        return clst_err_set(err, CLST_E_INVAL,
                            "a JWKS URL must be https://HOST[:PORT]/PATH (got %.100s)", url);
    }
    const char *slash = strchr(url + 8, '/');
    size_t n = slash != NULL ? (size_t)(slash - url) : strlen(url);
    if (n <= 8) {
        return clst_err_set(err, CLST_E_INVAL, "the JWKS URL %.100s has no host", url);
    }
    memcpy(a->origin, url, n);
    a->origin[n] = '\0';
    copy_str(a->path, sizeof(a->path), slash != NULL ? slash : "/");
    return CLST_OK;
}

static enum clst_status
authority_init(struct authority *a, const struct clst_vault_authority_config *c,
               struct clst_err *err)
{
    int sources = (c->jwks_file != NULL) + (c->jwks_url != NULL) + (c->jwks_fn != NULL);
    if (sources != 1) {
        return clst_err_set(err, CLST_E_INVAL,
                            "trusted authority %s: give exactly one JWKS source (a file, an "
                            "https URL or an in-process source)",
                            c->issuer != NULL ? c->issuer : "(unnamed)");
    }
    if (c->issuer == NULL && c->jwks_fn == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "a trusted authority needs an issuer");
    }
    if (c->issuer != NULL &&
        (c->issuer[0] == '\0' || strlen(c->issuer) > CLST_RELEASE_ISSUER_MAX)) {
        return clst_err_set(err, CLST_E_INVAL, "an authority's issuer must be 1..%d bytes",
                            CLST_RELEASE_ISSUER_MAX);
    }
    if (c->ca_file != NULL && c->jwks_url == NULL) {
        return clst_err_set(err, CLST_E_INVAL,
                            "trusted authority %s: a pinned CA only applies to an https JWKS URL",
                            c->issuer != NULL ? c->issuer : "(unnamed)");
    }
    if (c->refresh_s < 0 || c->refetch_min_s < 0) {
        return clst_err_set(err, CLST_E_INVAL, "refresh intervals cannot be negative");
    }
    copy_str(a->issuer, sizeof(a->issuer), c->issuer);
    a->refresh_s = c->refresh_s > 0 ? c->refresh_s : CLST_RELEASE_DEFAULT_REFRESH;
    a->refetch_min_s = c->refetch_min_s > 0 ? c->refetch_min_s : CLST_RELEASE_DEFAULT_REFETCH_MIN;
    if (c->jwks_file != NULL) {
        if (strlen(c->jwks_file) > CLST_RELEASE_SOURCE_MAX) {
            return clst_err_set(err, CLST_E_INVAL, "the JWKS file path is too long");
        }
        a->kind = SRC_FILE;
        copy_str(a->file, sizeof(a->file), c->jwks_file);
    } else if (c->jwks_url != NULL) {
        a->kind = SRC_URL;
        enum clst_status st = url_split(c->jwks_url, a, err);
        if (st != CLST_OK) {
            return st;
        }
        if (c->ca_file != NULL) {
            if (strlen(c->ca_file) > CLST_RELEASE_SOURCE_MAX) {
                return clst_err_set(err, CLST_E_INVAL, "the CA file path is too long");
            }
            copy_str(a->ca_file, sizeof(a->ca_file), c->ca_file);
        }
    } else {
        a->kind = SRC_FN;
        a->fn = c->jwks_fn;
        a->fn_ctx = c->jwks_ctx;
    }
    return CLST_OK;
}

/* The authority trusted for `iss`, or NULL. */
static struct authority *
authority_find(struct clst_vault_release *r, const char *iss)
{
    for (size_t i = 0; i < r->auth_count; i++) {
        struct authority *a = &r->auth[i];
        pthread_mutex_lock(&a->mu);
        bool match = a->issuer[0] != '\0' && issuer_equal(a->issuer, iss);
        pthread_mutex_unlock(&a->mu);
        if (match) {
            return a;
        }
    }
    return NULL;
}

/* "A, B, C" of the trusted issuers (for messages). */
static void
trusted_list(struct clst_vault_release *r, char *out, size_t cap)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < r->auth_count && used + 1 < cap; i++) {
        struct authority *a = &r->auth[i];
        pthread_mutex_lock(&a->mu);
        int n = snprintf(out + used, cap - used, "%s%s", used > 0 ? ", " : "",
                         a->issuer[0] != '\0' ? a->issuer : "(issuer not set yet)");
        pthread_mutex_unlock(&a->mu);
        if (n < 0 || (size_t)n >= cap - used) {
            break;
        }
        used += (size_t)n;
    }
    if (used == 0) {
        copy_str(out, cap, "none");
    }
}

/* ---- the attach table ----------------------------------------------------------------------- */

/*
 * struct clst_vault (rest_int.h, not this file's) has no slot for the engine, so the pairs live
 * here. Lookups take a mutex; they happen once per release request.
 */
#define ATTACH_MAX 16

static pthread_mutex_t attach_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    const struct clst_vault *vault;
    struct clst_vault_release *release;
} attached[ATTACH_MAX];

static enum clst_status
attach(struct clst_vault *v, struct clst_vault_release *r, struct clst_err *err)
{
    enum clst_status st = CLST_E_LIMIT;
    pthread_mutex_lock(&attach_mu);
    for (size_t i = 0; i < ATTACH_MAX; i++) {
        if (attached[i].vault == v) {
            st = CLST_E_CONFLICT;
            break;
        }
    }
    for (size_t i = 0; st == CLST_E_LIMIT && i < ATTACH_MAX; i++) {
        if (attached[i].vault == NULL) {
            attached[i].vault = v;
            attached[i].release = r;
            st = CLST_OK;
        }
    }
    pthread_mutex_unlock(&attach_mu);
    if (st == CLST_E_CONFLICT) {
        return clst_err_set(err, st, "this vault already has a key release engine");
    }
    if (st != CLST_OK) {
        return clst_err_set(err, st, "more than %d vaults with key release in one process",
                            ATTACH_MAX);
    }
    return CLST_OK;
}

static void
detach(const struct clst_vault_release *r)
{
    pthread_mutex_lock(&attach_mu);
    for (size_t i = 0; i < ATTACH_MAX; i++) {
        if (attached[i].release == r) {
            attached[i].vault = NULL;
            attached[i].release = NULL;
        }
    }
    pthread_mutex_unlock(&attach_mu);
}

struct clst_vault_release *
clst_vault_release_of(const struct clst_vault *v)
{
    struct clst_vault_release *r = NULL;
    pthread_mutex_lock(&attach_mu);
    for (size_t i = 0; v != NULL && i < ATTACH_MAX; i++) {
        if (attached[i].vault == v) {
            r = attached[i].release;
            break;
        }
    }
    pthread_mutex_unlock(&attach_mu);
    return r;
}

/* ---- the release-signing key ---------------------------------------------------------------- */

static bool
b64url_member(const json_t *obj, const char *key, uint8_t *out, size_t cap, size_t *out_size)
{
    const char *s = json_string_value(json_object_get(obj, key));
    struct clst_buf b;
    bool ok = false;
    if (s == NULL) {
        return false;
    }
    clst_buf_init(&b, cap);
    if (clst_b64url_decode(s, strlen(s), &b) == CLST_OK) {
        if (b.size > 0) {
            memcpy(out, b.data, b.size);
        }
        *out_size = b.size;
        ok = true;
    }
    clst_buf_cleanup(&b);
    return ok;
}

/* The setting's JSON text → the sealed parts. */
static enum clst_status
sealed_from_text(const uint8_t *text, size_t size, struct clst_vault_sealed *out,
                 struct clst_err *err)
{
    json_t *j = json_loadb((const char *)text, size, JSON_REJECT_DUPLICATES, NULL);
    const char *mk = json_string_value(json_object_get(j, "mk"));
    const char *ct = json_string_value(json_object_get(j, "ct"));
    json_int_t alg = json_integer_value(json_object_get(j, "alg"));
    struct clst_buf b;
    enum clst_status st = CLST_E_VERIFY;

    memset(out, 0, sizeof(*out));
    clst_buf_init(&b, CLST_VAULT_VALUE_MAX + 64);
    if (!json_is_object(j) || mk == NULL || strlen(mk) > CLST_VAULT_MKID_MAX || ct == NULL ||
        alg < 1 || alg > 255 ||
        !b64url_member(j, "nonce", out->nonce, sizeof(out->nonce), &out->nonce_size) ||
        !b64url_member(j, "tag", out->tag, sizeof(out->tag), &out->tag_size) ||
        !b64url_member(j, "wrapped", out->wrapped, sizeof(out->wrapped), &out->wrapped_size) ||
        clst_b64url_decode(ct, strlen(ct), &b) != CLST_OK || b.size == 0) {
        clst_err_set(err, CLST_E_VERIFY, "the stored release-signing key (setting %s) is damaged",
                     CLST_RELEASE_SIGNING_KEY_SETTING);
        goto out;
    }
    out->alg = (uint8_t)alg;
    copy_str(out->mk_id, sizeof(out->mk_id), mk);
    out->ct = clst_buf_steal(&b, &out->ct_size);
    if (out->ct == NULL) {
        st = clst_err_set(err, CLST_E_NOMEM, "out of memory");
        goto out;
    }
    st = CLST_OK;
out:
    clst_buf_cleanup(&b);
    json_decref(j);
    return st;
}

static enum clst_status
sealed_to_text(const struct clst_vault_sealed *s, char **out)
{
    json_t *j = json_object();
    if (j == NULL || !put(j, "alg", json_integer(s->alg)) || !put(j, "mk", json_string(s->mk_id)) ||
        !put(j, "wrapped", clst_json_b64url(s->wrapped, s->wrapped_size)) ||
        !put(j, "nonce", clst_json_b64url(s->nonce, s->nonce_size)) ||
        !put(j, "tag", clst_json_b64url(s->tag, s->tag_size)) ||
        !put(j, "ct", clst_json_b64url(s->ct, s->ct_size))) {
        json_decref(j);
        return CLST_E_NOMEM;
    }
    *out = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return *out != NULL ? CLST_OK : CLST_E_NOMEM;
}

/* Reads the sealed signing key from the store: CLST_E_NOTFOUND when there is none. */
static enum clst_status
signer_load(struct clst_vault *v, EVP_PKEY **out, struct clst_err *err)
{
    struct clst_buf text;
    struct clst_vault_sealed sealed;
    struct clst_secret *der = NULL;
    enum clst_status st;

    memset(&sealed, 0, sizeof(sealed));
    clst_buf_init(&text, SIGNER_SETTING_MAX);
    st = clst_vault_store_meta_get(v->store, CLST_RELEASE_SIGNING_KEY_SETTING, &text, err);
    if (st == CLST_OK) {
        st = sealed_from_text(text.data, text.size, &sealed, err);
    }
    if (st == CLST_OK) {
        st = clst_vault_objseal_open(v->mk, CLST_VAULT_KIND_KEY, SIGNER_SEAL_NAME,
                                     SIGNER_SEAL_VERSION, &sealed, &der, err);
    }
    if (st == CLST_OK) {
        st = clst_pkey_from_der(der->ptr, der->size, out, err);
        if (st == CLST_OK &&
            (clst_pkey_kind(*out) != CLST_KEY_RSA || !clst_pkey_has_private(*out))) {
            EVP_PKEY_free(*out);
            *out = NULL;
            st = clst_err_set(err, CLST_E_VERIFY,
                              "the stored release-signing key is not an RSA "
                              "private key");
        }
    }
    clst_secret_free(der);
    clst_vault_sealed_cleanup(&sealed);
    clst_buf_cleanup(&text);
    return st;
}

static enum clst_status
signer_store(struct clst_vault *v, EVP_PKEY *key, struct clst_err *err)
{
    struct clst_buf der;
    struct clst_vault_sealed sealed;
    char *text = NULL;
    enum clst_status st;

    memset(&sealed, 0, sizeof(sealed));
    clst_buf_init_secret(&der, 8192);
    st = clst_pkey_to_der(key, true, &der);
    if (st != CLST_OK) {
        clst_err_set(err, st, "cannot encode the release-signing key");
    }
    if (st == CLST_OK) {
        st = clst_vault_objseal_seal(v->mk, CLST_VAULT_KIND_KEY, SIGNER_SEAL_NAME,
                                     SIGNER_SEAL_VERSION, der.data, der.size, &sealed, err);
    }
    if (st == CLST_OK && sealed_to_text(&sealed, &text) != CLST_OK) {
        st = clst_err_set(err, CLST_E_NOMEM, "out of memory");
    }
    if (st == CLST_OK) {
        st = clst_vault_store_meta_set(v->store, CLST_RELEASE_SIGNING_KEY_SETTING,
                                       (const uint8_t *)text, strlen(text), err);
    }
    free(text);
    clst_vault_sealed_cleanup(&sealed);
    clst_buf_cleanup(&der);
    return st;
}

/* The persistent signing key: loaded, or made and stored, then read back (so that the key in
 * use is the one stored). Without a master key: a key for this process only. */
static enum clst_status
signer_key(struct clst_vault *v, EVP_PKEY **out, struct clst_err *err)
{
    EVP_PKEY *key = NULL;
    enum clst_status st;

    if (v->mk == NULL) {
        clst_log_warn("vault: release: no master key: the release-signing key lives in memory "
                      "only and changes at every start");
        st = clst_rsa_generate(SIGNER_BITS, out);
        return st == CLST_OK ? CLST_OK : clst_err_set(err, st, "cannot make a signing key");
    }
    st = signer_load(v, out, err);
    if (st != CLST_E_NOTFOUND) {
        return st == CLST_OK ? CLST_OK : clst_err_prefix(err, "release-signing key");
    }
    clst_err_clear(err);
    st = clst_rsa_generate(SIGNER_BITS, &key);
    if (st != CLST_OK) {
        return clst_err_set(err, st, "cannot make the release-signing key");
    }
    st = signer_store(v, key, err);
    EVP_PKEY_free(key);
    if (st != CLST_OK) {
        return clst_err_prefix(err, "storing the release-signing key");
    }
    st = signer_load(v, out, err);
    return st == CLST_OK ? CLST_OK : clst_err_prefix(err, "release-signing key");
}

static bool
add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_nconf_nid(NULL, &ctx, nid, value);
    bool ok = ext != NULL && X509_add_ext(cert, ext, -1) == 1;
    X509_EXTENSION_free(ext);
    return ok;
}

/* A certificate for the signing key, valid from an hour ago for CERT_DAYS, issued by the CA
 * when given, else self-signed. */
static enum clst_status
signer_cert(EVP_PKEY *key, X509 *ca_cert, EVP_PKEY *ca_key, int64_t now, X509 **out,
            struct clst_err *err)
{
    enum clst_status rc = CLST_E_CRYPTO;
    uint8_t serial[16];
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    BIGNUM *bn = NULL;
    ASN1_INTEGER *sn = NULL;

    if (clst_random(serial, sizeof(serial)) != CLST_OK) {
        goto out;
    }
    serial[0] &= 0x7f;
    serial[0] |= 0x40;
    bn = BN_bin2bn(serial, (int)sizeof(serial), NULL);
    sn = bn != NULL ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
    if (x == NULL || name == NULL || sn == NULL || X509_set_version(x, 2) != 1 ||
        X509_set_serialNumber(x, sn) != 1 ||
        X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"Cloister", -1,
                                   -1, 0) != 1 ||
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                   (const unsigned char *)"Cloister vault key release", -1, -1,
                                   0) != 1 ||
        X509_set_subject_name(x, name) != 1 ||
        X509_set_issuer_name(x, ca_cert != NULL ? X509_get_subject_name(ca_cert) : name) != 1 ||
        ASN1_TIME_set(X509_getm_notBefore(x), (time_t)(now - 3600)) == NULL ||
        ASN1_TIME_set(X509_getm_notAfter(x), (time_t)(now + (int64_t)CERT_DAYS * 86400)) == NULL ||
        X509_set_pubkey(x, key) != 1) {
        goto out;
    }
    X509 *issuer = ca_cert != NULL ? ca_cert : x;
    if (!add_ext(x, issuer, NID_basic_constraints, "critical,CA:FALSE") ||
        !add_ext(x, issuer, NID_key_usage, "critical,digitalSignature") ||
        !add_ext(x, issuer, NID_subject_key_identifier, "hash") ||
        (ca_cert != NULL && !add_ext(x, issuer, NID_authority_key_identifier, "keyid:always"))) {
        goto out;
    }
    if (X509_sign(x, ca_key != NULL ? ca_key : key, EVP_sha256()) <= 0) {
        goto out;
    }
    *out = x;
    x = NULL;
    rc = CLST_OK;
out:
    if (rc != CLST_OK) {
        clst_err_set(err, rc, "cannot issue the release-signing certificate");
    }
    X509_free(x);
    X509_NAME_free(name);
    ASN1_INTEGER_free(sn);
    BN_free(bn);
    return rc;
}

/* x5c entries (standard base64 of each DER) and x5t#S256 of the leaf. */
static enum clst_status
chain_encode(struct clst_vault_release *r, struct clst_err *err)
{
    int n = sk_X509_num(r->chain);
    r->x5c = calloc((size_t)n, sizeof(char *));
    if (r->x5c == NULL) {
        return clst_err_set(err, CLST_E_NOMEM, "out of memory");
    }
    for (int i = 0; i < n; i++) {
        unsigned char *der = NULL;
        int len = i2d_X509(sk_X509_value(r->chain, i), &der);
        struct clst_buf b;
        enum clst_status st = len > 0 ? CLST_OK : CLST_E_CRYPTO;
        clst_buf_init(&b, clst_b64_encoded_size((size_t)(len > 0 ? len : 0)) + 1);
        if (st == CLST_OK) {
            st = clst_b64_encode(der, (size_t)len, &b);
        }
        if (st == CLST_OK) {
            st = clst_buf_terminate(&b);
        }
        if (st == CLST_OK && i == 0) {
            uint8_t h[CLST_SHA256_SIZE];
            st = clst_sha256(der, (size_t)len, h);
            if (st == CLST_OK) {
                st = hash_str(h, r->x5t);
            }
        }
        OPENSSL_free(der);
        if (st != CLST_OK) {
            clst_buf_cleanup(&b);
            return clst_err_set(err, st, "cannot encode the release-signing certificate");
        }
        size_t size = 0;
        r->x5c[i] = (char *)clst_buf_steal(&b, &size);
        r->x5c_count++;
    }
    return CLST_OK;
}

static enum clst_status
signer_init(struct clst_vault_release *r, const struct clst_vault_release_config *cfg,
            struct clst_err *err)
{
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    uint8_t tp[CLST_SHA256_SIZE];
    char kid[CLST_RELEASE_HASH_STR_SIZE];
    enum clst_status st;

    if ((cfg->ca_cert == NULL) != (cfg->ca_key == NULL)) {
        return clst_err_set(err, CLST_E_INVAL, "give both the CA certificate and its key, or none");
    }
    st = signer_key(r->vault, &key, err);
    if (st != CLST_OK) {
        return st;
    }
    /* The kid is the thumbprint of the public key: compute it on an unpinned wrapper first. */
    struct clst_jwk *tmp = NULL;
    st = clst_jwk_from_pkey(key, NULL, CLST_JWS_RS256, &tmp, err);
    if (st == CLST_OK) {
        st = clst_jwk_thumbprint(tmp, tp);
        if (st == CLST_OK) {
            st = hash_str(tp, kid);
        }
    }
    clst_jwk_free(tmp);
    if (st == CLST_OK) {
        st = clst_jwk_from_pkey(key, kid, CLST_JWS_RS256, &r->signer, err);
    }
    if (st == CLST_OK) {
        st = signer_cert(key, cfg->ca_cert, cfg->ca_key, clst_clock_now(r->clock), &cert, err);
    }
    if (st == CLST_OK) {
        r->chain = sk_X509_new_null();
        if (r->chain == NULL || sk_X509_push(r->chain, cert) <= 0) {
            X509_free(cert);
            st = clst_err_set(err, CLST_E_NOMEM, "out of memory");
        } else if (cfg->ca_cert != NULL) {
            if (X509_up_ref(cfg->ca_cert) != 1 || sk_X509_push(r->chain, cfg->ca_cert) <= 0) {
                X509_free(cfg->ca_cert);
                st = clst_err_set(err, CLST_E_NOMEM, "out of memory");
            }
        }
    }
    if (st == CLST_OK) {
        st = chain_encode(r, err);
    }
    EVP_PKEY_free(key);
    return st;
}

/* ---- the engine ----------------------------------------------------------------------------- */

void
clst_vault_release_config_init(struct clst_vault_release_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->skew = -1;
}

enum clst_status
clst_vault_release_new(struct clst_vault *v, const struct clst_vault_release_config *cfg,
                       struct clst_vault_release **out, struct clst_err *err)
{
    struct clst_vault_release *r = NULL;
    enum clst_status st;

    if (v == NULL || cfg == NULL || out == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "clst_vault_release_new: vault, cfg and out needed");
    }
    if (cfg->authority_count > CLST_RELEASE_MAX_AUTHORITIES ||
        (cfg->authority_count > 0 && cfg->authorities == NULL)) {
        return clst_err_set(err, CLST_E_INVAL, "at most %d trusted attestation authorities",
                            CLST_RELEASE_MAX_AUTHORITIES);
    }
    if (cfg->skew > CLST_JWT_MAX_SKEW) {
        return clst_err_set(err, CLST_E_INVAL, "the clock skew is at most %d s", CLST_JWT_MAX_SKEW);
    }
    r = calloc(1, sizeof(*r));
    if (r == NULL) {
        return clst_err_set(err, CLST_E_NOMEM, "out of memory");
    }
    r->vault = v;
    r->clock = v->clock;
    r->skew = cfg->skew < 0 ? CLST_RELEASE_DEFAULT_SKEW : cfg->skew;
    r->redact = cfg->redact_denials;
    r->sink = cfg->sink;
    r->log_fd = -1;
    pthread_mutex_init(&r->log_mu, NULL);
    pthread_mutex_init(&r->tee_mu, NULL);
    if (cfg->authority_count > 0) {
        r->auth = calloc(cfg->authority_count, sizeof(*r->auth));
        if (r->auth == NULL) {
            st = clst_err_set(err, CLST_E_NOMEM, "out of memory");
            goto fail;
        }
    }
    for (size_t i = 0; i < cfg->authority_count; i++) {
        pthread_mutex_init(&r->auth[i].mu, NULL);
        r->auth_count++;
        st = authority_init(&r->auth[i], &cfg->authorities[i], err);
        if (st != CLST_OK) {
            goto fail;
        }
        for (size_t k = 0; k < i; k++) {
            if (r->auth[i].issuer[0] != '\0' && r->auth[k].issuer[0] != '\0' &&
                issuer_equal(r->auth[i].issuer, r->auth[k].issuer)) {
                st = clst_err_set(err, CLST_E_INVAL, "attestation authority %s is listed twice",
                                  r->auth[i].issuer);
                goto fail;
            }
        }
    }
    if (cfg->decision_log != NULL) {
        r->log_fd = open(cfg->decision_log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
        if (r->log_fd < 0) {
            st = clst_err_set(err, CLST_E_IO, "cannot open the release decision log %s: %s",
                              cfg->decision_log, strerror(errno));
            goto fail;
        }
    }
    st = signer_init(r, cfg, err);
    if (st != CLST_OK) {
        goto fail;
    }
    /* First fetch now, before the server runs threads: a file must be readable (fail here);
     * an unreachable URL is retried on demand. This also makes the first libcurl handle (whose
     * global initialization is not thread-safe everywhere) on this thread. */
    for (size_t i = 0; i < r->auth_count; i++) {
        struct jwks_ref *ref = NULL;
        struct clst_err ferr;
        clst_err_clear(&ferr);
        st = jwks_get(r, &r->auth[i], false, &ref, &ferr);
        ref_put(&r->auth[i], ref);
        if (st != CLST_OK && r->auth[i].kind == SRC_FILE) {
            st = clst_err_set(err, st, "%s", ferr.msg);
            goto fail;
        }
    }
    st = attach(v, r, err);
    if (st != CLST_OK) {
        goto fail;
    }
    *out = r;
    return CLST_OK;
fail:
    clst_vault_release_free(r);
    return st;
}

void
clst_vault_release_free(struct clst_vault_release *r)
{
    if (r == NULL) {
        return;
    }
    detach(r);
    for (size_t i = 0; i < r->auth_count; i++) {
        struct jwks_ref *ref = r->auth[i].cur;
        if (ref != NULL && --ref->refs == 0) {
            clst_jwks_free(ref->jwks);
            free(ref);
        }
        pthread_mutex_destroy(&r->auth[i].mu);
    }
    free(r->auth);
    if (r->log_fd >= 0) {
        close(r->log_fd);
    }
    pthread_mutex_destroy(&r->log_mu);
    for (size_t i = 0; i < TEE_CACHE_SIZE; i++) {
        EVP_PKEY_free(r->tee_cache[i].key);
    }
    pthread_mutex_destroy(&r->tee_mu);
    clst_jwk_free(r->signer);
    if (r->chain != NULL) {
        sk_X509_pop_free(r->chain, X509_free);
    }
    for (size_t i = 0; i < r->x5c_count; i++) {
        free(r->x5c[i]);
    }
    free(r->x5c);
    free(r);
}

enum clst_status
clst_vault_release_authority_set_issuer(struct clst_vault_release *r, size_t index,
                                        const char *issuer, struct clst_err *err)
{
    if (r == NULL || index >= r->auth_count || issuer == NULL || issuer[0] == '\0' ||
        strlen(issuer) > CLST_RELEASE_ISSUER_MAX) {
        return clst_err_set(err, CLST_E_INVAL, "no such authority, or an issuer of a bad size");
    }
    struct authority *a = &r->auth[index];
    pthread_mutex_lock(&a->mu);
    copy_str(a->issuer, sizeof(a->issuer), issuer);
    pthread_mutex_unlock(&a->mu);
    return CLST_OK;
}

size_t
clst_vault_release_authority_count(const struct clst_vault_release *r)
{
    return r != NULL ? r->auth_count : 0;
}

unsigned
clst_vault_release_authority_fetches(struct clst_vault_release *r, size_t index)
{
    unsigned n = 0;
    if (r != NULL && index < r->auth_count) {
        pthread_mutex_lock(&r->auth[index].mu);
        n = r->auth[index].fetches;
        pthread_mutex_unlock(&r->auth[index].mu);
    }
    return n;
}

const struct clst_jwk *
clst_vault_release_signer(const struct clst_vault_release *r)
{
    return r->signer;
}

STACK_OF(X509) *
clst_vault_release_signer_chain(const struct clst_vault_release *r)
{
    return r->chain;
}

bool
clst_vault_release_redacts(const struct clst_vault_release *r)
{
    return r->redact;
}

/* ---- token verification --------------------------------------------------------------------- */

/* UNVERIFIED: the "iss" of a compact JWS's payload (for choosing the authority only). */
static enum clst_status
unverified_issuer(const char *token, size_t size, char *out, size_t cap, struct clst_err *err)
{
    const char *dot1 = memchr(token, '.', size);
    const char *end = token + size;
    struct clst_buf b;
    enum clst_status st = CLST_E_DENIED;
    json_t *j = NULL;

    if (dot1 == NULL) {
        return clst_err_set(
            err, CLST_E_DENIED,
            "the attestation token is not a compact JWS (header.payload.signature)");
    }
    const char *dot2 = memchr(dot1 + 1, '.', (size_t)(end - (dot1 + 1)));
    if (dot2 == NULL || memchr(dot2 + 1, '.', (size_t)(end - (dot2 + 1))) != NULL) {
        return clst_err_set(
            err, CLST_E_DENIED,
            "the attestation token is not a compact JWS (header.payload.signature)");
    }
    clst_buf_init(&b, CLST_JWS_MAX_SIZE);
    if (clst_b64url_decode(dot1 + 1, (size_t)(dot2 - (dot1 + 1)), &b) != CLST_OK ||
        (j = json_loadb(b.size > 0 ? (const char *)b.data : "", b.size, JSON_REJECT_DUPLICATES,
                        NULL)) == NULL ||
        !json_is_object(j)) {
        clst_err_set(err, CLST_E_DENIED, "the attestation token's payload is not a JSON object");
        goto out;
    }
    const char *iss = json_string_value(json_object_get(j, "iss"));
    if (iss == NULL || iss[0] == '\0') {
        clst_err_set(err, CLST_E_DENIED, "the attestation token names no issuer ('iss')");
        goto out;
    }
    if (strlen(iss) >= cap) {
        clst_err_set(err, CLST_E_DENIED, "the attestation token's issuer is longer than %zu bytes",
                     cap - 1);
        goto out;
    }
    copy_str(out, cap, iss);
    st = CLST_OK;
out:
    json_decref(j);
    clst_buf_cleanup(&b);
    return st;
}

/* As clst_vault_release_verify_token; out_iss receives the (unverified) issuer even on failure. */
static enum clst_status
verify_token(struct clst_vault_release *r, const char *token, size_t size, json_t **out_claims,
             char out_iss[static CLST_RELEASE_ISSUER_MAX + 1], struct clst_err *err)
{
    struct jwks_ref *ref = NULL, *ref2 = NULL;
    struct clst_err e;
    enum clst_status st;
    json_t *claims = NULL;
    char trusted[512];

    out_iss[0] = '\0';
    if (token == NULL || size == 0) {
        return clst_err_set(err, CLST_E_DENIED, "no attestation token was given ('target')");
    }
    if (size > CLST_JWS_MAX_SIZE) {
        return clst_err_set(err, CLST_E_DENIED, "the attestation token is longer than %d bytes",
                            CLST_JWS_MAX_SIZE);
    }
    st = unverified_issuer(token, size, out_iss, CLST_RELEASE_ISSUER_MAX + 1, err);
    if (st != CLST_OK) {
        return st;
    }
    struct authority *a = authority_find(r, out_iss);
    if (a == NULL) {
        trusted_list(r, trusted, sizeof(trusted));
        return clst_err_set(err, CLST_E_DENIED,
                            "the attestation token's issuer '%.200s' is not a trusted attestation "
                            "authority (trusted: %.200s)",
                            out_iss, trusted);
    }
    st = jwks_get(r, a, false, &ref, err);
    if (st != CLST_OK) {
        return st;
    }
    struct clst_jwt_expect expect = {
        .issuer = out_iss,
        .audience = NULL,
        .typ = NULL,
        .skew = r->skew,
        .clock = r->clock,
        .require_exp = true,
        .require_iat = false,
    };
    clst_err_clear(&e);
    st = clst_jwt_verify(token, size, ref->jwks, &expect, &claims, NULL, &e);
    if (st == CLST_E_NOTFOUND) {
        /* An unknown kid: the authority may have rotated its keys. One re-fetch (rate-limited). */
        if (jwks_get(r, a, true, &ref2, NULL) == CLST_OK && ref2 != ref) {
            clst_err_clear(&e);
            st = clst_jwt_verify(token, size, ref2->jwks, &expect, &claims, NULL, &e);
        }
    }
    ref_put(a, ref2);
    ref_put(a, ref);
    if (st == CLST_E_NOMEM) {
        return clst_err_set(err, st, "out of memory verifying the attestation token");
    }
    if (st != CLST_OK) {
        return clst_err_set(err, CLST_E_DENIED,
                            "the attestation token from %.200s is not valid: %s", out_iss, e.msg);
    }
    *out_claims = claims;
    return CLST_OK;
}

enum clst_status
clst_vault_release_verify_token(struct clst_vault_release *r, const char *token, size_t size,
                                json_t **out_claims, char *out_issuer, struct clst_err *err)
{
    char iss[CLST_RELEASE_ISSUER_MAX + 1];
    enum clst_status st = verify_token(r, token, size, out_claims, iss, err);
    if (st == CLST_OK && out_issuer != NULL) {
        copy_str(out_issuer, CLST_RELEASE_ISSUER_MAX + 1, iss);
    }
    return st;
}

/* ---- the TEE key ---------------------------------------------------------------------------- */

/* SHA-256 of "n" and "e" as given (the cache key); false when they are not strings. */
static bool
tee_id(const json_t *k, uint8_t out[static CLST_SHA256_SIZE])
{
    const char *n = json_string_value(json_object_get(k, "n"));
    const char *e = json_string_value(json_object_get(k, "e"));
    struct clst_hash_ctx h;
    if (n == NULL || e == NULL || clst_hash_init(&h, CLST_HASH_SHA256) != CLST_OK) {
        return false;
    }
    bool ok = clst_hash_update(&h, e, strlen(e) + 1) == CLST_OK &&
              clst_hash_update(&h, n, strlen(n) + 1) == CLST_OK &&
              clst_hash_final(&h, out) == CLST_OK;
    if (!ok) {
        clst_hash_cleanup(&h);
    }
    return ok;
}

/* A validated key from the cache (a new reference), or NULL. */
static EVP_PKEY *
tee_cache_get(struct clst_vault_release *r, const uint8_t id[static CLST_SHA256_SIZE],
              char thumb[static CLST_RELEASE_HASH_STR_SIZE])
{
    EVP_PKEY *k = NULL;
    pthread_mutex_lock(&r->tee_mu);
    for (size_t i = 0; i < TEE_CACHE_SIZE; i++) {
        if (r->tee_cache[i].key != NULL && memcmp(r->tee_cache[i].id, id, CLST_SHA256_SIZE) == 0) {
            if (EVP_PKEY_up_ref(r->tee_cache[i].key) == 1) {
                k = r->tee_cache[i].key;
                memcpy(thumb, r->tee_cache[i].thumbprint, CLST_RELEASE_HASH_STR_SIZE);
            }
            break;
        }
    }
    pthread_mutex_unlock(&r->tee_mu);
    return k;
}

static void
tee_cache_put(struct clst_vault_release *r, const uint8_t id[static CLST_SHA256_SIZE],
              EVP_PKEY *key, const char thumb[static CLST_RELEASE_HASH_STR_SIZE])
{
    if (EVP_PKEY_up_ref(key) != 1) {
        return;
    }
    pthread_mutex_lock(&r->tee_mu);
    size_t i = r->tee_next;
    r->tee_next = (r->tee_next + 1) % TEE_CACHE_SIZE;
    EVP_PKEY_free(r->tee_cache[i].key);
    memcpy(r->tee_cache[i].id, id, CLST_SHA256_SIZE);
    r->tee_cache[i].key = key;
    memcpy(r->tee_cache[i].thumbprint, thumb, CLST_RELEASE_HASH_STR_SIZE);
    pthread_mutex_unlock(&r->tee_mu);
}

/* True when the JWK text allows encryption: "use" absent or "enc", "key_ops" absent or an array
 * holding "encrypt" or "wrapKey", and no private member. */
static bool
jwk_text_may_encrypt(const json_t *k)
{
    const json_t *use = json_object_get(k, "use");
    const json_t *ops = json_object_get(k, "key_ops");
    if (use != NULL && (!json_is_string(use) || strcmp(json_string_value(use), "enc") != 0)) {
        return false;
    }
    if (json_object_get(k, "d") != NULL) {
        return false;
    }
    if (ops == NULL) {
        return true;
    }
    for (size_t i = 0; json_is_array(ops) && i < json_array_size(ops); i++) {
        const char *op = json_string_value(json_array_get(ops, i));
        if (op != NULL && (strcmp(op, "encrypt") == 0 || strcmp(op, "wrapKey") == 0)) {
            return true;
        }
    }
    return false;
}

static enum clst_status pick_tee_key(struct clst_vault_release *r, const json_t *claims,
                                     EVP_PKEY **out, char *out_kid, char *out_thumbprint,
                                     struct clst_err *err);

enum clst_status
clst_vault_release_tee_key(const json_t *claims, EVP_PKEY **out, char *out_kid,
                           char *out_thumbprint, struct clst_err *err)
{
    return pick_tee_key(NULL, claims, out, out_kid, out_thumbprint, err);
}

/* As clst_vault_release_tee_key, remembering validated keys in r's cache when r is not NULL. */
static enum clst_status
pick_tee_key(struct clst_vault_release *r, const json_t *claims, EVP_PKEY **out, char *out_kid,
             char *out_thumbprint, struct clst_err *err)
{
    const json_t *rt = json_object_get(claims, "x-ms-runtime");
    const json_t *keys = json_object_get(rt, "keys");
    size_t rsa_bad = 0, other = 0, not_enc = 0;
    char first_why[160] = "";

    if (rt == NULL) {
        return clst_err_set(err, CLST_E_DENIED,
                            "the attestation token has no 'x-ms-runtime' claim: the TEE must put "
                            "its public RSA key into its runtime data as {\"keys\":[JWK]}");
    }
    if (!json_is_array(keys) || json_array_size(keys) == 0) {
        return clst_err_set(
            err, CLST_E_DENIED,
            "the attestation token's 'x-ms-runtime' has no 'keys' array: the TEE "
            "must put its public RSA key into its runtime data as {\"keys\":[JWK]}");
    }
    size_t n = json_array_size(keys);
    if (n > CLST_RELEASE_MAX_RUNTIME_KEYS) {
        n = CLST_RELEASE_MAX_RUNTIME_KEYS;
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *k = json_array_get(keys, i);
        const char *kty = json_string_value(json_object_get(k, "kty"));
        struct clst_jwk *jwk = NULL;
        struct clst_err e;
        if (kty == NULL || strcmp(kty, "RSA") != 0) {
            other++;
            continue;
        }
        uint8_t id[CLST_SHA256_SIZE];
        char cthumb[CLST_RELEASE_HASH_STR_SIZE];
        EVP_PKEY *cached = NULL;
        if (r != NULL && tee_id(k, id) && (cached = tee_cache_get(r, id, cthumb)) != NULL) {
            /* This exact n and e passed validation before: only the use/key_ops of this JWK
             * remain to be checked. */
            if (!jwk_text_may_encrypt(k)) {
                not_enc++;
                EVP_PKEY_free(cached);
                continue;
            }
            const char *ckid = json_string_value(json_object_get(k, "kid"));
            if (ckid != NULL && (ckid[0] == '\0' || strlen(ckid) > CLST_JWK_MAX_KID_SIZE)) {
                ckid = NULL;
            }
            copy_str(out_kid, CLST_JWK_MAX_KID_SIZE + 1, ckid != NULL ? ckid : cthumb);
            if (out_thumbprint != NULL) {
                copy_str(out_thumbprint, CLST_RELEASE_HASH_STR_SIZE, cthumb);
            }
            *out = cached;
            return CLST_OK;
        }
        clst_err_clear(&e);
        if (clst_jwk_from_json(k, &jwk, &e) != CLST_OK) {
            if (rsa_bad++ == 0) {
                snprintf(first_why, sizeof(first_why), "%.150s", e.msg);
            }
            continue;
        }
        const char *use = clst_jwk_use(jwk);
        bool may = (use == NULL || strcmp(use, "enc") == 0) &&
                   (clst_jwk_allows_op(jwk, "encrypt") || clst_jwk_allows_op(jwk, "wrapKey")) &&
                   !clst_jwk_has_private(jwk);
        if (!may) {
            not_enc++;
            clst_jwk_free(jwk);
            continue;
        }
        uint8_t tp[CLST_SHA256_SIZE];
        char thumb[CLST_RELEASE_HASH_STR_SIZE];
        enum clst_status st = clst_jwk_thumbprint(jwk, tp);
        if (st == CLST_OK) {
            st = hash_str(tp, thumb);
        }
        EVP_PKEY *pkey = clst_jwk_pkey(jwk);
        if (st == CLST_OK && EVP_PKEY_up_ref(pkey) != 1) {
            st = CLST_E_CRYPTO;
        }
        if (st != CLST_OK) {
            clst_jwk_free(jwk);
            return clst_err_set(err, st, "cannot use the TEE's key");
        }
        if (r != NULL && tee_id(k, id)) {
            tee_cache_put(r, id, pkey, thumb);
        }
        const char *kid = clst_jwk_kid(jwk);
        copy_str(out_kid, CLST_JWK_MAX_KID_SIZE + 1, kid != NULL ? kid : thumb);
        if (out_thumbprint != NULL) {
            copy_str(out_thumbprint, CLST_RELEASE_HASH_STR_SIZE, thumb);
        }
        clst_jwk_free(jwk);
        *out = pkey;
        return CLST_OK;
    }
    return clst_err_set(
        err, CLST_E_DENIED,
        "the attestation token's x-ms-runtime.keys has no RSA key (2048..4096 bits) "
        "that may encrypt: %zu key(s) of another type (EC keys cannot receive a "
        "release), %zu RSA key(s) whose use/key_ops forbid encryption, %zu invalid "
        "RSA key(s)%s%s",
        other, not_enc, rsa_bad, first_why[0] != '\0' ? ": " : "", first_why);
}

/* ---- evaluation ----------------------------------------------------------------------------- */

void
clst_vault_release_eval_init(struct clst_vault_release_eval *ev)
{
    memset(ev, 0, sizeof(*ev));
}

void
clst_vault_release_eval_cleanup(struct clst_vault_release_eval *ev)
{
    if (ev == NULL) {
        return;
    }
    json_decref(ev->claims);
    clst_policy_result_free(ev->result);
    EVP_PKEY_free(ev->tee_key);
    memset(ev, 0, sizeof(*ev));
}

/* Records the first failing stage. */
static void
deny(struct clst_vault_release_eval *ev, enum clst_vault_release_stage stage, const char *why)
{
    if (ev->stage == CLST_RELEASE_STAGE_NONE) {
        ev->stage = stage;
        copy_str(ev->reason, sizeof(ev->reason), why);
    }
}

/* The request's nonce against the token's "nonce" claim (or x-ms-runtime.nonce). */
static bool
nonce_matches(const json_t *claims, const char *nonce, char *why, size_t cap)
{
    const json_t *tn = json_object_get(claims, "nonce");
    if (!json_is_string(tn)) {
        tn = json_object_get(json_object_get(claims, "x-ms-runtime"), "nonce");
    }
    if (!json_is_string(tn)) {
        snprintf(why, cap,
                 "the request carries a nonce but the attestation token has none (claim 'nonce'): "
                 "attest with that nonce and present the new token");
        return false;
    }
    size_t a = strlen(nonce), b = json_string_length(tn);
    if (a != b || CRYPTO_memcmp(nonce, json_string_value(tn), a) != 0) {
        snprintf(why, cap,
                 "the request's nonce is not the attestation token's nonce: the token was issued "
                 "for another request (a replayed token?)");
        return false;
    }
    return true;
}

enum clst_status
clst_vault_release_evaluate(struct clst_vault_release *r, const char *token, size_t size,
                            const char *nonce, const char *policy_text,
                            struct clst_vault_release_eval *ev, struct clst_err *err)
{
    struct clst_policy *policy = NULL;
    struct clst_err e;
    enum clst_status st;
    uint8_t h[CLST_SHA256_SIZE];
    char why[CLST_ERR_MSG_SIZE];

    if (r == NULL || ev == NULL || policy_text == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "clst_vault_release_evaluate: missing argument");
    }
    if (token != NULL && size > 0 && size <= CLST_JWS_MAX_SIZE) {
        if (clst_sha256(token, size, h) != CLST_OK || hash_str(h, ev->token_sha256) != CLST_OK) {
            return clst_err_set(err, CLST_E_CRYPTO, "SHA-256 of the token failed");
        }
    }
    /* 1. the token */
    clst_err_clear(&e);
    st = verify_token(r, token, size, &ev->claims, ev->issuer, &e);
    if (st == CLST_E_IO || st == CLST_E_NOMEM) {
        clst_err_set(err, st, "%s", e.msg);
        deny(ev, CLST_RELEASE_STAGE_TOKEN, e.msg);
        return st;
    }
    if (st != CLST_OK) {
        deny(ev, CLST_RELEASE_STAGE_TOKEN, e.msg);
    } else {
        copy_str(ev->jti, sizeof(ev->jti), json_string_value(json_object_get(ev->claims, "jti")));
        copy_str(ev->attestation_type, sizeof(ev->attestation_type),
                 json_string_value(json_object_get(ev->claims, CLST_POLICY_TYPE_CLAIM)));
    }
    /* 2. the nonce */
    if (ev->claims != NULL && nonce != NULL &&
        !nonce_matches(ev->claims, nonce, why, sizeof(why))) {
        deny(ev, CLST_RELEASE_STAGE_NONCE, why);
    }
    /* 3. the policy (its hash is reported even when the token failed) */
    clst_err_clear(&e);
    st = clst_policy_parse(policy_text, strlen(policy_text), CLST_POLICY_RELEASE, &policy, &e);
    if (st != CLST_OK) {
        return clst_err_set(err, st == CLST_E_NOMEM ? st : CLST_E_INTERNAL,
                            "the key's stored release policy does not parse: %s", e.msg);
    }
    if (clst_policy_hash_b64url(policy, ev->policy_hash) != CLST_OK) {
        clst_policy_free(policy);
        return clst_err_set(err, CLST_E_CRYPTO, "cannot hash the release policy");
    }
    if (ev->claims != NULL) {
        clst_err_clear(&e);
        st = clst_policy_evaluate(policy, ev->claims, ev->issuer, &ev->result, &e);
        if (st != CLST_OK && st != CLST_E_DENIED) {
            clst_policy_free(policy);
            return clst_err_set(err, st, "evaluating the release policy: %s", e.msg);
        }
        if (st == CLST_E_DENIED) {
            struct clst_buf s;
            clst_buf_init(&s, CLST_ERR_MSG_SIZE * 4);
            if (clst_policy_result_summary(ev->result, 0, &s) == CLST_OK) {
                deny(ev, CLST_RELEASE_STAGE_POLICY, (const char *)s.data);
            } else {
                deny(ev, CLST_RELEASE_STAGE_POLICY, "the release policy denied");
            }
            clst_buf_cleanup(&s);
        }
    }
    clst_policy_free(policy);
    /* 4. the TEE key */
    if (ev->claims != NULL) {
        clst_err_clear(&e);
        st = pick_tee_key(r, ev->claims, &ev->tee_key, ev->tee_kid, ev->tee_thumbprint, &e);
        if (st != CLST_OK && st != CLST_E_DENIED) {
            return clst_err_set(err, st, "%s", e.msg);
        }
        if (st == CLST_E_DENIED) {
            deny(ev, CLST_RELEASE_STAGE_TEE_KEY, e.msg);
        }
    }
    if (ev->stage != CLST_RELEASE_STAGE_NONE) {
        EVP_PKEY_free(ev->tee_key);
        ev->tee_key = NULL;
        return clst_err_set(err, CLST_E_DENIED, "release denied (%s): %s",
                            clst_vault_release_stage_name(ev->stage), ev->reason);
    }
    return CLST_OK;
}

/* ---- the release JWS ------------------------------------------------------------------------ */

enum clst_status
clst_vault_release_wrap_for(const struct clst_vault_release_eval *ev,
                            enum clst_vault_release_enc enc, const uint8_t *data, size_t size,
                            struct clst_buf *out, struct clst_err *err)
{
    enum clst_hash h = clst_vault_release_enc_hash(enc);
    if (ev == NULL || ev->tee_key == NULL || h == 0 || data == NULL || size == 0) {
        return clst_err_set(err, CLST_E_INVAL, "nothing to wrap, or no TEE key");
    }
    enum clst_status st = clst_rsa_aes_wrap(ev->tee_key, h, data, size, out);
    if (st != CLST_OK) {
        return clst_err_set(err, st, "wrapping to the TEE's key failed (%s)", clst_status_str(st));
    }
    return CLST_OK;
}

/* key_hsm: base64url of {"schema_version","header":{"kid","alg":"dir","enc"},"ciphertext"}. */
static enum clst_status
key_hsm(const struct clst_vault_release_eval *ev, enum clst_vault_release_enc enc,
        const uint8_t *material, size_t size, json_t **out, struct clst_err *err)
{
    struct clst_buf wrapped;
    enum clst_status st;
    char *text = NULL;
    json_t *hdr = NULL, *obj = NULL;

    clst_buf_init(&wrapped, WRAPPED_MAX);
    st = clst_vault_release_wrap_for(ev, enc, material, size, &wrapped, err);
    if (st != CLST_OK) {
        goto out;
    }
    hdr = json_object();
    obj = json_object();
    if (hdr == NULL || obj == NULL || !put(hdr, "kid", json_string(ev->tee_kid)) ||
        !put(hdr, "alg", json_string("dir")) ||
        !put(hdr, "enc", json_string(clst_vault_release_enc_name(enc))) ||
        !put(obj, "schema_version", json_string(CLST_RELEASE_KEY_HSM_SCHEMA)) ||
        !put(obj, "header", json_incref(hdr)) ||
        !put(obj, "ciphertext", clst_json_b64url(wrapped.data, wrapped.size)) ||
        (text = json_dumps(obj, JSON_COMPACT)) == NULL ||
        (*out = clst_json_b64url((const uint8_t *)text, strlen(text))) == NULL) {
        st = clst_err_set(err, CLST_E_NOMEM, "out of memory building key_hsm");
        goto out;
    }
    st = CLST_OK;
out:
    free(text);
    json_decref(hdr);
    json_decref(obj);
    clst_buf_cleanup(&wrapped);
    return st;
}

enum clst_status
clst_vault_release_sign(struct clst_vault_release *r, const struct clst_vault_release_key *key,
                        const struct clst_vault_release_eval *ev, enum clst_vault_release_enc enc,
                        const char *api_version, const char *nonce, char **out_jws,
                        struct clst_err *err)
{
    enum clst_status st;
    json_t *jwk = NULL, *khsm = NULL, *payload = NULL, *request = NULL, *kobj = NULL;
    json_t *policy = NULL, *hdr = NULL, *x5c = NULL;
    char *text = NULL;

    if (r == NULL || key == NULL || ev == NULL || out_jws == NULL || key->material == NULL ||
        key->policy_text == NULL || clst_vault_release_enc_name(enc) == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "clst_vault_release_sign: missing argument");
    }
    st = clst_vault_keymat_jwk_response(key->kid, key->kty, key->key_ops, key->public_data,
                                        key->public_size, &jwk, err);
    if (st != CLST_OK) {
        return st;
    }
    st = key_hsm(ev, enc, key->material, key->material_size, &khsm, err);
    if (st != CLST_OK) {
        goto out;
    }
    st = CLST_E_NOMEM;
    if (!put(jwk, "key_hsm", khsm)) {
        khsm = NULL;
        goto nomem;
    }
    khsm = NULL;
    request = json_object();
    policy = json_object();
    kobj = json_object();
    payload = json_object();
    if (request == NULL || policy == NULL || kobj == NULL || payload == NULL ||
        (api_version != NULL && !put(request, "api-version", json_string(api_version))) ||
        !put(request, "enc", json_string(clst_vault_release_enc_name(enc))) ||
        !put(request, "kid", json_string(key->kid)) ||
        (nonce != NULL && !put(request, "nonce", json_string(nonce))) ||
        !put(policy, "contentType", json_string(CLST_RELEASE_POLICY_CONTENT_TYPE)) ||
        !put(policy, "data",
             clst_json_b64url((const uint8_t *)key->policy_text, strlen(key->policy_text))) ||
        !put(policy, "immutable", json_boolean(key->policy_immutable)) ||
        !put(kobj, "key", json_incref(jwk)) ||
        (key->attributes != NULL && !put(kobj, "attributes", json_deep_copy(key->attributes))) ||
        (key->tags != NULL && !put(kobj, "tags", json_deep_copy(key->tags))) ||
        !put(kobj, "release_policy", json_incref(policy)) ||
        !put(payload, "request", json_incref(request)) ||
        !put(payload, "response", json_pack("{s:O}", "key", kobj))) {
        goto nomem;
    }
    text = json_dumps(payload, JSON_COMPACT);
    hdr = json_object();
    x5c = json_array();
    if (text == NULL || hdr == NULL || x5c == NULL) {
        goto nomem;
    }
    for (size_t i = 0; i < r->x5c_count; i++) {
        if (json_array_append_new(x5c, json_string(r->x5c[i])) != 0) {
            goto nomem;
        }
    }
    if (!put(hdr, "x5c", json_incref(x5c)) || !put(hdr, "x5t#S256", json_string(r->x5t))) {
        goto nomem;
    }
    st = clst_jws_sign(r->signer, hdr, text, strlen(text), out_jws, err);
    goto out;
nomem:
    st = clst_err_set(err, CLST_E_NOMEM, "out of memory building the release");
out:
    free(text);
    json_decref(jwk);
    json_decref(khsm);
    json_decref(payload);
    json_decref(request);
    json_decref(kobj);
    json_decref(policy);
    json_decref(hdr);
    json_decref(x5c);
    return st;
}

/* ---- decisions: recording and explaining ---------------------------------------------------- */

void
clst_vault_release_decision_from_eval(const struct clst_vault_release_eval *ev,
                                      struct clst_vault_decision *d)
{
    d->allowed = ev->stage == CLST_RELEASE_STAGE_NONE;
    d->stage = d->allowed ? NULL : clst_vault_release_stage_name(ev->stage);
    d->reason = d->allowed ? NULL : ev->reason;
    d->issuer = ev->issuer[0] != '\0' ? ev->issuer : NULL;
    d->jti = ev->jti[0] != '\0' ? ev->jti : NULL;
    d->token_sha256 = ev->token_sha256[0] != '\0' ? ev->token_sha256 : NULL;
    d->policy_hash = ev->policy_hash[0] != '\0' ? ev->policy_hash : NULL;
    d->attestation_type = ev->attestation_type[0] != '\0' ? ev->attestation_type : NULL;
    d->tee_key = ev->tee_kid[0] != '\0' ? ev->tee_kid : NULL;
}

void
clst_vault_release_record(struct clst_vault_release *r, const struct clst_vault_decision *d)
{
    json_t *j = NULL;
    char *line = NULL;

    if (r == NULL || d == NULL) {
        return;
    }
    clst_log_info("vault: release decision: %s %s %s/%s by %s%s%s%s", d->operation,
                  d->allowed ? "allowed" : "denied", d->key_name != NULL ? d->key_name : "-",
                  d->key_version != NULL ? d->key_version : "-",
                  d->principal != NULL ? d->principal : "-", d->dry_run ? " (dry run)" : "",
                  d->allowed ? "" : ": ", d->allowed ? "" : (d->reason != NULL ? d->reason : ""));
    if (r->log_fd >= 0 && clst_vault_decision_to_json(d, &j) == CLST_OK &&
        (line = json_dumps(j, JSON_COMPACT)) != NULL) {
        size_t n = strlen(line);
        char *nl = realloc(line, n + 2);
        if (nl != NULL) {
            line = nl;
            line[n] = '\n';
            line[n + 1] = '\0';
            pthread_mutex_lock(&r->log_mu);
            /* One write(2) per line with O_APPEND: lines never interleave. */
            ssize_t w = write(r->log_fd, line, n + 1);
            pthread_mutex_unlock(&r->log_mu);
            if (w != (ssize_t)(n + 1)) {
                clst_log_error("vault: release: cannot append to the decision log: %s",
                               w < 0 ? strerror(errno) : "short write");
            }
        }
    }
    free(line);
    json_decref(j);
    if (r->sink.record != NULL) {
        r->sink.record(r->sink.ctx, d);
    }
}

void
clst_vault_release_message(const struct clst_vault_release *r,
                           const struct clst_vault_release_eval *ev, char *out, size_t cap)
{
    if (ev->stage == CLST_RELEASE_STAGE_NONE) {
        snprintf(out, cap, "release allowed (issuer %s, TEE key %s)", ev->issuer, ev->tee_kid);
        return;
    }
    if (ev->stage == CLST_RELEASE_STAGE_POLICY && ev->result != NULL) {
        struct clst_buf s;
        clst_buf_init(&s, 4096);
        if (clst_policy_result_summary(ev->result, r->redact ? CLST_POLICY_REDACT : 0, &s) ==
            CLST_OK) {
            snprintf(out, cap, "release denied by the key's release policy: %s",
                     (const char *)s.data);
            clst_buf_cleanup(&s);
            return;
        }
        clst_buf_cleanup(&s);
    }
    snprintf(out, cap, "release denied (%s): %s", clst_vault_release_stage_name(ev->stage),
             ev->reason);
}

json_t *
clst_vault_release_explain(const struct clst_vault_release *r,
                           const struct clst_vault_release_eval *ev, bool with_trace)
{
    char msg[1024];
    json_t *j = json_object();
    json_t *pj = NULL;
    bool allowed = ev->stage == CLST_RELEASE_STAGE_NONE;

    clst_vault_release_message(r, ev, msg, sizeof(msg));
    if (j == NULL || !put(j, "decision", json_string(allowed ? "allow" : "deny")) ||
        (!allowed && !put(j, "stage", json_string(clst_vault_release_stage_name(ev->stage)))) ||
        !put(j, "message", json_string(msg)) ||
        (ev->issuer[0] != '\0' && !put(j, "issuer", json_string(ev->issuer))) ||
        (ev->attestation_type[0] != '\0' &&
         !put(j, "attestationType", json_string(ev->attestation_type))) ||
        (ev->jti[0] != '\0' && !put(j, "jti", json_string(ev->jti))) ||
        (ev->policy_hash[0] != '\0' && !put(j, "policyHash", json_string(ev->policy_hash))) ||
        (ev->tee_kid[0] != '\0' &&
         !put(j, "teeKey",
              json_pack("{s:s,s:s}", "kid", ev->tee_kid, "thumbprint", ev->tee_thumbprint)))) {
        goto fail;
    }
    if (ev->result != NULL) {
        unsigned flags =
            (r->redact ? CLST_POLICY_REDACT : 0) | (with_trace ? CLST_POLICY_WITH_TRACE : 0);
        if (clst_policy_result_to_json(ev->result, flags, &pj) != CLST_OK) {
            goto fail;
        }
        json_t *den = json_object_get(pj, "denial");
        json_t *trace = json_object_get(pj, "trace");
        if (den != NULL && ev->stage == CLST_RELEASE_STAGE_POLICY &&
            json_object_set(j, "denial", den) != 0) {
            goto fail;
        }
        if (trace != NULL && json_object_set(j, "trace", trace) != 0) {
            goto fail;
        }
        if (!put(j, "policyDecision",
                 json_string(clst_policy_result_decision(ev->result) == CLST_POLICY_ALLOW
                                 ? "allow"
                                 : "deny"))) {
            goto fail;
        }
        json_decref(pj);
    }
    return j;
fail:
    json_decref(pj);
    json_decref(j);
    return NULL;
}
