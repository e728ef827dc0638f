/*
 * The key endpoints of the cloud key vault's data plane (wire contract: docs/vault-keys.md):
 *
 *   POST   /keys/{name}/create                       create (a new version when the name exists)
 *   PUT    /keys/{name}                              import a JWK (private members included)
 *   GET    /keys/{name}[/{version}]                  get the public part ("" / absent = latest)
 *   PATCH  /keys/{name}[/{version}]                  update key_ops, attributes, tags, policy
 *   GET    /keys                                     list (latest version of each, no material)
 *   GET    /keys/{name}/versions                     list versions
 *   POST   /keys/{name}/rotate                       new version of the same type and size
 *   DELETE /keys/{name}                              soft delete
 *   POST   /keys/{name}/backup                       encrypted blob of every version
 *   POST   /keys/restore                             restore a blob made by this vault
 *   POST   /keys/{name}/{version}/{op}               encrypt, decrypt, wrapkey, unwrapkey, sign,
 *                                                    verify ({version} "" = latest)
 *   GET    /deletedkeys                              list deleted
 *   GET    /deletedkeys/{name}                       get deleted
 *   POST   /deletedkeys/{name}/recover               recover
 *   DELETE /deletedkeys/{name}                       purge (204)
 *   POST   /rng                                      random bytes
 *
 * Key state at the vault's clock: a disabled key refuses every operation (403); before nbf every
 * operation is refused (403); from exp on, encrypt, wrapkey and sign are refused (403) while
 * decrypt, unwrapkey and verify still work, so that data protected before expiry stays readable.
 * key_ops is enforced on every operation (403). Reading a key (GET) works whatever its state.
 *
 * Order of checks (the cloud vault's): api-version, name syntax, authorization, body, storage,
 * key state, algorithm/key compatibility. A row or sealed value that fails its integrity check is
 * a 500 (the operator sees why in the log) and nothing is decrypted.
 *
 * Recipient operations (secure key release, release.h, docs/key-release.md): decrypt and
 * unwrapkey also take {"target": attestation token, "nonce"?, "enc"?}; the token is verified and
 * the key's release policy evaluated as for a release, and the result comes back only wrapped to
 * the TEE's key ("ciphertextForRecipient"), never in the clear. Every such decision is recorded.
 *
 * Secret outputs (decrypt, unwrapkey) are assembled in wiped memory and never go through a
 * jansson object. (The request bodies are parsed by jansson, whose memory is not wiped: a
 * plaintext sent to encrypt lives there until freed.)
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include <cloister/crypto.h>
#include <cloister/policy.h>

#include "vault/governance.h"
#include "vault/keymat.h"
#include "vault/release.h"
#include "vault/rest_int.h"

#define KIND CLST_VAULT_KIND_KEY

#define RELEASE_CONTENT_TYPE "application/json; charset=utf-8"
#define RNG_MAX              128
#define SIG_MAX              1024 /* bytes of a signature given to verify */
#define IV_MAX               64
#define TAG_MAX              64
#define AAD_MAX              (64 * 1024)

static bool
put(json_t *obj, const char *key, json_t *v)
{
    return v != NULL && json_object_set_new(obj, key, v) == 0;
}

static enum clst_status
fail(struct clst_vault_rctx *rc, struct clst_err *err)
{
    return clst_vault_reply_err(rc, KIND, err);
}

/* A failure caused by the client's bytes (a ciphertext that does not decrypt, a backup that does
 * not open), whatever status the lower layer gave it: 400, never the 500 of a storage failure. */
static enum clst_status
client_error(struct clst_err *err)
{
    if (err != NULL) {
        err->status = CLST_E_INVAL;
    }
    return CLST_E_INVAL;
}

/* ---- request bodies ------------------------------------------------------------------------- */

void
clst_vault_key_request_cleanup(struct clst_vault_key_request *r)
{
    if (r == NULL) {
        return;
    }
    clst_vault_keymat_free(r->km);
    free(r->tags);
    free(r->policy);
    memset(r, 0, sizeof(*r));
}

/* release_policy: {"contentType"?, "immutable"?, "data": base64url of the policy JSON}. The policy
 * is checked against the release-policy grammar and kept as canonical compact JSON. */
static enum clst_status
parse_release_policy(const json_t *body, struct clst_vault_key_request *out, struct clst_err *err)
{
    enum clst_status st;
    json_t *rp = NULL;
    const char *ct = NULL;
    bool has_ct = false;
    struct clst_buf data;
    struct clst_policy *policy = NULL;
    struct clst_err why;
    char *text = NULL;

    st = clst_vault_json_object(body, "release_policy", false, &rp, err);
    if (st != CLST_OK || rp == NULL) {
        return st;
    }
    st = clst_vault_json_string(rp, "contentType", false, 128, &ct, &has_ct, err);
    if (st != CLST_OK) {
        return clst_err_prefix(err, "release_policy");
    }
    if (has_ct && strcmp(ct, RELEASE_CONTENT_TYPE) != 0 && strcmp(ct, "application/json") != 0) {
        return clst_err_set(err, CLST_E_INVAL,
                            "release_policy.contentType must be '%s' (the only policy format)",
                            RELEASE_CONTENT_TYPE);
    }
    st = clst_vault_json_bool(rp, "immutable", false, &out->policy_immutable, &out->has_immutable,
                              err);
    if (st != CLST_OK) {
        return clst_err_prefix(err, "release_policy");
    }
    clst_buf_init(&data, CLST_VAULT_POLICY_MAX);
    st = clst_vault_json_b64url(rp, "data", true, &data, NULL, err);
    if (st != CLST_OK) {
        clst_buf_cleanup(&data);
        return clst_err_prefix(err, "release_policy");
    }
    clst_err_clear(&why);
    st = clst_policy_parse(data.size > 0 ? (const char *)data.data : "", data.size,
                           CLST_POLICY_RELEASE, &policy, &why);
    clst_buf_cleanup(&data);
    if (st == CLST_E_NOMEM) {
        return clst_err_set(err, st, "out of memory parsing the release policy");
    }
    if (st != CLST_OK) {
        return clst_err_set(err, CLST_E_INVAL,
                            "release_policy.data is not a valid release policy: %s", why.msg);
    }
    text = json_dumps(clst_policy_json(policy), JSON_COMPACT | JSON_SORT_KEYS);
    clst_policy_free(policy);
    if (text == NULL) {
        return clst_err_set(err, CLST_E_NOMEM, "out of memory storing the release policy");
    }
    if (strlen(text) > CLST_VAULT_POLICY_MAX) {
        free(text);
        return clst_err_set(err, CLST_E_INVAL, "the release policy is larger than %d bytes",
                            CLST_VAULT_POLICY_MAX);
    }
    free(out->policy);
    out->policy = text;
    return CLST_OK;
}

/* key_ops, attributes, tags and release_policy: the members create, import and update share. */
static enum clst_status
parse_common(const json_t *body, bool allow_exportable, struct clst_vault_key_request *out,
             struct clst_err *err)
{
    enum clst_status st;
    json_t *arr = NULL, *attrs = NULL, *tags = NULL;

    st = clst_vault_json_array(body, "key_ops", false, &arr, err);
    if (st == CLST_OK && arr != NULL) {
        st = clst_vault_keymat_ops_from_json(arr, out->type, &out->ops, err);
        out->has_ops = st == CLST_OK;
    }
    if (st == CLST_OK) {
        st = clst_vault_json_object(body, "attributes", false, &attrs, err);
    }
    if (st == CLST_OK) {
        st = clst_vault_attrs_from_json(attrs, allow_exportable, &out->attrs, &out->attr_fields,
                                        err);
    }
    if (st == CLST_OK) {
        st = clst_vault_json_object(body, "tags", false, &tags, err);
    }
    if (st == CLST_OK && tags != NULL) {
        st = clst_vault_tags_parse(tags, &out->tags, err);
    }
    if (st == CLST_OK) {
        st = parse_release_policy(body, out, err);
    }
    return st;
}

/* Creation and import: the cloud vault's two rules. Exportable keys need a release policy (the
 * only way such a key leaves the vault is a release to an attested environment), and a key with
 * a release policy must be exportable. */
static enum clst_status
check_exportable(const struct clst_vault_key_request *r, struct clst_err *err)
{
    if (r->attrs.exportable && r->policy == NULL) {
        return clst_err_set(err, CLST_E_INVAL,
                            "AKV.SKR.1004: Exportable keys must have release policy (an exportable "
                            "key can only leave the vault by secure key release: give "
                            "release_policy)");
    }
    if (!r->attrs.exportable && r->policy != NULL) {
        return clst_err_set(err, CLST_E_INVAL,
                            "AKV.SKR.1005: Non-exportable keys must not have release policy (set "
                            "attributes.exportable to true, or leave out release_policy)");
    }
    return CLST_OK;
}

/* The end of create and import: the members both share, the exportability rules, then kty and
 * the default key_ops. `st` is the result so far; on any failure r is cleaned up. */
static enum clst_status
finish_new_key(const json_t *body, enum clst_status st, struct clst_vault_key_request *r,
               struct clst_vault_key_request *out, struct clst_err *err)
{
    if (st == CLST_OK) {
        st = parse_common(body, true, r, err);
    }
    if (st == CLST_OK) {
        st = check_exportable(r, err);
    }
    if (st != CLST_OK) {
        clst_vault_key_request_cleanup(r);
        return st;
    }
    memcpy(r->kty, clst_vault_keymat_kty_name(r->type),
           strlen(clst_vault_keymat_kty_name(r->type)) + 1);
    if (!r->has_ops) {
        r->ops = clst_vault_keymat_ops_default(r->type);
    }
    *out = *r;
    return CLST_OK;
}

enum clst_status
clst_vault_keys_parse_create(const struct clst_vault *v, const json_t *body,
                             struct clst_vault_key_request *out, struct clst_err *err)
{
    enum clst_status st;
    struct clst_vault_key_request r;
    const char *kty = NULL, *crv = NULL;
    int64_t key_size = 0, exp = 0;
    bool has_size = false, has_exp = false;

    memset(&r, 0, sizeof(r));
    if (v == NULL || out == NULL || !json_is_object(body)) {
        return clst_err_set(err, CLST_E_INVAL, "the request body must be a JSON object");
    }
    clst_vault_attrs_defaults(v, &r.attrs);
    st = clst_vault_json_string(body, "kty", true, CLST_VAULT_KTY_MAX + 8, &kty, NULL, err);
    if (st == CLST_OK) {
        st = clst_vault_keymat_kty_parse(kty, &r.type, err);
    }
    if (st == CLST_OK) {
        st = clst_vault_json_int(body, "key_size", false, 0, INT32_MAX, &key_size, &has_size, err);
    }
    if (st == CLST_OK) {
        st = clst_vault_json_int(body, "public_exponent", false, 0, INT64_MAX, &exp, &has_exp, err);
    }
    if (st == CLST_OK) {
        st = clst_vault_json_string(body, "crv", false, 16, &crv, NULL, err);
    }
    if (st == CLST_OK) {
        st = clst_vault_keymat_spec_make(r.type, has_size, key_size, crv, has_exp, exp, &r.spec,
                                         err);
    }
    return finish_new_key(body, st, &r, out, err);
}

enum clst_status
clst_vault_keys_parse_import(const struct clst_vault *v, const json_t *body,
                             struct clst_vault_key_request *out, struct clst_err *err)
{
    enum clst_status st;
    struct clst_vault_key_request r;
    json_t *jwk = NULL, *jwk_ops = NULL;
    bool hsm = false;

    memset(&r, 0, sizeof(r));
    if (v == NULL || out == NULL || !json_is_object(body)) {
        return clst_err_set(err, CLST_E_INVAL, "the request body must be a JSON object");
    }
    clst_vault_attrs_defaults(v, &r.attrs);
    st = clst_vault_json_bool(body, "Hsm", false, &hsm, NULL, err);
    if (st == CLST_OK && hsm) {
        st = clst_err_set(err, CLST_E_INVAL,
                          "Hsm: true asks for an HSM-protected key; Cloister keeps key material in "
                          "software, encrypted under the master key");
    }
    if (st == CLST_OK) {
        st = clst_vault_json_object(body, "key", true, &jwk, err);
    }
    if (st == CLST_OK && json_object_get(jwk, "key_hsm") != NULL) {
        st = clst_err_set(err, CLST_E_INVAL,
                          "key_hsm (bring your own HSM key) is not supported: import the key's "
                          "private members");
    }
    if (st == CLST_OK) {
        st = clst_vault_keymat_from_jwk(jwk, &r.km, err);
    }
    if (st == CLST_OK) {
        r.type = clst_vault_keymat_type(r.km);
        clst_vault_keymat_spec_of(r.km, &r.spec);
        /* The JWK's own key_ops, when present, are the key's operations. */
        st = clst_vault_json_array(jwk, "key_ops", false, &jwk_ops, err);
        if (st == CLST_OK && jwk_ops != NULL) {
            st = clst_vault_keymat_ops_from_json(jwk_ops, r.type, &r.ops, err);
            r.has_ops = st == CLST_OK;
        }
        if (st != CLST_OK) {
            clst_err_prefix(err, "key");
        }
    }
    return finish_new_key(body, st, &r, out, err);
}

enum clst_status
clst_vault_keys_parse_update(const json_t *body, enum clst_vault_keymat_type type,
                             struct clst_vault_key_request *out, struct clst_err *err)
{
    enum clst_status st;
    struct clst_vault_key_request r;

    memset(&r, 0, sizeof(r));
    if (out == NULL || !json_is_object(body)) {
        return clst_err_set(err, CLST_E_INVAL, "the request body must be a JSON object");
    }
    r.type = type;
    r.attrs = out->attrs; /* the current attributes, which the request's members change */
    st = parse_common(body, false, &r, err);
    if (st != CLST_OK) {
        clst_vault_key_request_cleanup(&r);
        return st;
    }
    *out = r;
    return CLST_OK;
}

void
clst_vault_op_request_init(struct clst_vault_op_request *r)
{
    memset(r, 0, sizeof(*r));
    clst_buf_init_secret(&r->value, CLST_KEYMAT_DATA_MAX);
    clst_buf_init(&r->iv, IV_MAX);
    clst_buf_init(&r->aad, AAD_MAX);
    clst_buf_init(&r->tag, TAG_MAX);
    clst_buf_init(&r->digest, CLST_HASH_MAX_SIZE);
}

void
clst_vault_op_request_cleanup(struct clst_vault_op_request *r)
{
    if (r == NULL) {
        return;
    }
    clst_buf_cleanup(&r->value);
    clst_buf_cleanup(&r->iv);
    clst_buf_cleanup(&r->aad);
    clst_buf_cleanup(&r->tag);
    clst_buf_cleanup(&r->digest);
    memset(&r->in, 0, sizeof(r->in));
}

static const char *
algs_for(enum clst_vault_keyop op)
{
    switch (op) {
    case CLST_KEYOP_ENCRYPT:
    case CLST_KEYOP_DECRYPT:
        return "RSA-OAEP, RSA-OAEP-256, RSA1_5, A128GCM, A192GCM, A256GCM";
    case CLST_KEYOP_WRAP:
    case CLST_KEYOP_UNWRAP:
        return "RSA-OAEP, RSA-OAEP-256, RSA1_5, A128KW, A192KW, A256KW";
    default:
        return "RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512";
    }
}

enum clst_status
clst_vault_keys_parse_op(const json_t *body, enum clst_vault_keyop op,
                         struct clst_vault_op_request *out, struct clst_err *err)
{
    enum clst_status st;
    const char *alg = NULL;
    char shown[24];
    bool is_sig = op == CLST_KEYOP_SIGN || op == CLST_KEYOP_VERIFY;

    if (out == NULL || !json_is_object(body)) {
        return clst_err_set(err, CLST_E_INVAL, "the request body must be a JSON object");
    }
    st = clst_vault_json_string(body, "alg", true, 64, &alg, NULL, err);
    if (st != CLST_OK) {
        return st;
    }
    if (clst_vault_alg_parse(alg, &out->alg) != CLST_OK) {
        size_t i = 0;
        for (; alg[i] != '\0' && i + 1 < sizeof(shown); i++) {
            unsigned char c = (unsigned char)alg[i];
            shown[i] = (c >= 0x20 && c < 0x7f && c != '\'') ? (char)c : '?';
        }
        shown[i] = '\0';
        return clst_err_set(err, CLST_E_INVAL, "unknown algorithm '%s'%s; use one of %s", shown,
                            alg[i] != '\0' ? "..." : "", algs_for(op));
    }
    if (op == CLST_KEYOP_VERIFY) {
        /* verify: "digest" is what was signed, "value" the signature. */
        out->value.max = SIG_MAX;
        st = clst_vault_json_b64url(body, "digest", true, &out->digest, NULL, err);
        if (st == CLST_OK) {
            st = clst_vault_json_b64url(body, "value", true, &out->value, NULL, err);
        }
    } else {
        if (op == CLST_KEYOP_SIGN) {
            out->value.max = CLST_HASH_MAX_SIZE;
        }
        st = clst_vault_json_b64url(body, "value", true, &out->value, NULL, err);
    }
    if (st == CLST_OK && !is_sig) {
        st = clst_vault_json_b64url(body, "iv", false, &out->iv, &out->in.has_iv, err);
        if (st == CLST_OK) {
            st = clst_vault_json_b64url(body, "aad", false, &out->aad, &out->in.has_aad, err);
        }
        if (st == CLST_OK) {
            st = clst_vault_json_b64url(body, "tag", false, &out->tag, &out->in.has_tag, err);
        }
    }
    if (st != CLST_OK) {
        return st;
    }
    out->in.value = out->value.data;
    out->in.value_size = out->value.size;
    out->in.iv = out->iv.data;
    out->in.iv_size = out->iv.size;
    out->in.aad = out->aad.data;
    out->in.aad_size = out->aad.size;
    out->in.tag = out->tag.data;
    out->in.tag_size = out->tag.size;
    return CLST_OK;
}

/* ---- bundles -------------------------------------------------------------------------------- */

/* The key_ops of a stored version (defaults by type when none are stored). */
static enum clst_status
stored_ops(const struct clst_vault_object *obj, unsigned *out, struct clst_err *err)
{
    enum clst_vault_keymat_type type = CLST_KEYMAT_NONE;
    (void)clst_vault_keymat_kty_parse(obj->kty, &type, NULL);
    return clst_vault_keymat_ops_from_text(obj->key_ops, clst_vault_keymat_ops_default(type), out,
                                           err);
}

static json_t *
release_policy_json(const struct clst_vault_object *obj)
{
    json_t *j = json_object();
    if (j == NULL || !put(j, "contentType", json_string(RELEASE_CONTENT_TYPE)) ||
        !put(j, "immutable", json_boolean(obj->policy_immutable)) ||
        !put(j, "data",
             clst_json_b64url((const uint8_t *)obj->release_policy, strlen(obj->release_policy)))) {
        json_decref(j);
        return NULL;
    }
    return j;
}

/* The key bundle of a version: key (public JWK with kid), attributes, tags, release_policy and,
 * for deleted keys, recoveryId, deletedDate, scheduledPurgeDate. */
static enum clst_status
key_bundle(const struct clst_vault_rctx *rc, const struct clst_vault_object *obj, json_t **out,
           struct clst_err *err)
{
    enum clst_status st;
    char kid[CLST_VAULT_ID_MAX];
    unsigned ops = 0;
    json_t *jwk = NULL, *j = NULL;

    st = stored_ops(obj, &ops, err);
    if (st != CLST_OK) {
        return st;
    }
    if (clst_vault_object_id(rc, KIND, obj->name, obj->version, kid, sizeof(kid)) != CLST_OK) {
        return clst_err_set(err, CLST_E_INTERNAL, "the key id does not fit");
    }
    st = clst_vault_keymat_jwk_response(kid, obj->kty, ops, obj->public_data, obj->public_size,
                                        &jwk, err);
    if (st != CLST_OK) {
        return st;
    }
    j = json_object();
    if (j == NULL || !put(j, "key", jwk)) {
        if (j == NULL) {
            json_decref(jwk);
        }
        goto nomem;
    }
    if (clst_vault_bundle_common(rc, obj, j) != CLST_OK) {
        goto nomem;
    }
    if (obj->release_policy != NULL && !put(j, "release_policy", release_policy_json(obj))) {
        goto nomem;
    }
    *out = j;
    return CLST_OK;
nomem:
    json_decref(j);
    return clst_err_set(err, CLST_E_NOMEM, "out of memory building a key bundle");
}

static enum clst_status
reply_bundle(struct clst_vault_rctx *rc, const struct clst_vault_object *obj, struct clst_err *err)
{
    json_t *j = NULL;
    enum clst_status st = key_bundle(rc, obj, &j, err);
    if (st != CLST_OK) {
        return fail(rc, err);
    }
    clst_http_response_json_new(rc->resp, 200, j);
    return CLST_OK;
}

/* A list item: kid (with the version only in version listings), attributes, tags, deletion. */
static json_t *
key_item(const struct clst_vault_rctx *rc, const struct clst_vault_object *obj, bool versioned)
{
    char kid[CLST_VAULT_ID_MAX];
    json_t *j = json_object();
    if (j == NULL ||
        clst_vault_object_id(rc, KIND, obj->name, versioned ? obj->version : NULL, kid,
                             sizeof(kid)) != CLST_OK ||
        !put(j, "kid", json_string(kid)) || clst_vault_bundle_common(rc, obj, j) != CLST_OK) {
        json_decref(j);
        return NULL;
    }
    return j;
}

/* ---- common request steps ------------------------------------------------------------------- */

/* The {version} parameter ("" or absent = latest); a malformed one cannot exist (404). */
static enum clst_status
version_param(const struct clst_http_request *req, const char **out, struct clst_err *err)
{
    const char *version = clst_http_request_param(req, "version");
    enum clst_status st = clst_vault_check_version(version, KIND, err);
    *out = version != NULL ? version : "";
    return st;
}

static enum clst_status
not_found(const char *name, const char *version, struct clst_err *err)
{
    if (version != NULL && version[0] != '\0') {
        return clst_err_set(err, CLST_E_NOTFOUND, "key '%s' has no version '%s'", name, version);
    }
    return clst_err_set(err, CLST_E_NOTFOUND, "key '%s' was not found", name);
}

/* ---- create, import, get, update ------------------------------------------------------------ */

/* Stores a new version made of `km` with the request's metadata and answers its bundle. */
static enum clst_status
store_new_version(struct clst_vault_rctx *rc, const char *name, const char *version,
                  const struct clst_vault_key_request *r, const struct clst_vault_keymat *km,
                  struct clst_err *err)
{
    enum clst_status st;
    struct clst_vault_object obj, got;
    struct clst_buf pub, ops, priv;
    char ver[CLST_VAULT_VERSION_SIZE + 1];
    json_t *j = NULL;
    bool replied = false;

    memset(&obj, 0, sizeof(obj));
    memset(&got, 0, sizeof(got));
    clst_buf_init(&pub, CLST_VAULT_PUBLIC_MAX);
    clst_buf_init(&ops, CLST_VAULT_KEY_OPS_MAX);
    clst_buf_init_secret(&priv, CLST_VAULT_VALUE_MAX);
    st = clst_vault_keymat_public_text(km, &pub);
    if (st == CLST_OK) {
        st = clst_buf_terminate(&pub);
    }
    if (st == CLST_OK) {
        st = clst_vault_keymat_ops_to_text(r->ops, &ops);
    }
    if (st == CLST_OK) {
        st = clst_buf_terminate(&ops);
    }
    if (st == CLST_OK) {
        st = clst_vault_keymat_export_private(km, &priv);
    }
    if (st != CLST_OK) {
        clst_err_set(err, st, "preparing the key for storage failed");
        goto out;
    }
    obj.kind = KIND;
    memcpy(obj.name, name, strlen(name) + 1);
    if (version != NULL) {
        memcpy(obj.version, version, strlen(version) + 1);
    }
    obj.attrs = r->attrs;
    obj.tags = r->tags;
    memcpy(obj.kty, r->kty, sizeof(obj.kty));
    obj.key_ops = (char *)ops.data;
    obj.public_data = pub.data;
    obj.public_size = pub.size;
    obj.release_policy = r->policy;
    obj.policy_immutable = r->policy != NULL && r->policy_immutable;
    /* Governance: a new version (create, import, rotate) must pass every rule. */
    if (clst_vault_governance_of(rc->vault) != NULL) {
        struct clst_gov_violation gv[CLST_GOV_RULE_COUNT];
        struct clst_vault_keymat_spec spec;
        clst_vault_keymat_spec_of(km, &spec);
        size_t n = clst_gov_check(clst_vault_governance_of(rc->vault), &obj, &spec,
                                  clst_vault_now(rc->vault), CLST_GOV_R_ALL, gv);
        if (n > 0) {
            st = clst_gov_reply(rc, gv, n);
            replied = true;
            goto out;
        }
    }
    st = clst_vault_store_put(rc->vault->store, &obj, priv.data, priv.size, ver, err);
    if (st == CLST_E_CONFLICT) {
        clst_err_set(err, st,
                     "key '%s' is deleted but not yet purged: recover it or purge it before "
                     "creating it again",
                     name);
        goto out;
    }
    if (st != CLST_OK) {
        goto out;
    }
    st = clst_vault_store_get(rc->vault->store, KIND, name, ver, &got, NULL, err);
    if (st == CLST_OK) {
        st = key_bundle(rc, &got, &j, err);
    }
out:
    if (replied) {
        /* answered already (403 from the governance rules) */
    } else if (st == CLST_OK) {
        clst_http_response_json_new(rc->resp, 200, j);
    } else {
        st = fail(rc, err);
    }
    clst_vault_object_cleanup(&got);
    clst_buf_cleanup(&pub);
    clst_buf_cleanup(&ops);
    clst_buf_cleanup(&priv);
    return st;
}

static enum clst_status
h_create(void *ctx, const struct clst_http_request *req, struct clst_http_response *resp,
         struct clst_err *err)
{
    struct clst_vault_rctx rc;
    struct clst_vault_key_request r;
    struct clst_vault_keymat *km = NULL;
    json_t *body = NULL;
    const char *name = NULL;
    enum clst_status st;

    memset(&r, 0, sizeof(r));
    st = clst_vault_rctx_start(ctx, req, resp, &rc, KIND, CLST_VAULT_PERM_KEY_CREATE, true, &name,
                               err);
    if (st == CLST_OK) {
        st = clst_vault_body_json(&rc, &body, err);
    }
    if (st == CLST_OK) {
        st = clst_vault_keys_parse_create(rc.vault, body, &r, err);
    }
    if (st == CLST_OK) {
        st = clst_vault_keymat_generate(&r.spec, &km, err);
    }
    if (st == CLST_OK) {
        st = store_new_version(&rc, name, NULL, &r, km, err);
    } else {
        st = fail(&rc, err);
    }
    clst_vault_keymat_free(km);
    clst_vault_key_request_cleanup(&r);
    json_decref(body);
    return st;
}

static enum clst_status
h_import(void *ctx, const struct clst_http_request *req, struct clst_http_response *resp,
         struct clst_err *err)
{
    struct clst_vault_rctx rc;
    struct clst_vault_key_request r;
    json_t *body = NULL;
    const char *name = NULL;
    enum clst_status st;

    memset(&r, 0, sizeof(r));
    st = clst_vault_rctx_start(ctx, req, resp, &rc, KIND, CLST_VAULT_PERM_KEY_IMPORT, true, &name,
                               err);
    if (st == CLST_OK) {
        st = clst_vault_body_json(&rc, &body, err);
    }
    if (st == CLST_OK) {
        st = clst_vault_keys_parse_import(rc.vault, body, &r, err);
    }
    if (st == CLST_OK) {
        st = store_new_version(&rc, name, NULL, &r, r.km, err);
    } else {
        st = fail(&rc, err);
    }
    clst_vault_key_request_cleanup(&r);
    json_decref(body);
    return st;
}

static enum clst_status
h_get(void *ctx, const struct clst_http_request *req, struct clst_http_response *resp,
      struct clst_err *err)
{
    struct clst_vault_rctx rc;
    struct clst_vault_object obj;
    const char *name = NULL, *version = "";
    enum clst_status st;

    memset(&obj, 0, sizeof(obj));
    st = clst_vault_rctx_start(ctx, req, resp, &rc, KIND, CLST_VAULT_PERM_KEY_READ, true, &name,
                               err);
    if (st == CLST_OK) {
        st = version_param(req, &version, err);
    }
    if (st == CLST_OK) {
        st = clst_vault_store_get(rc.vault->store, KIND, name, version, &obj, NULL, err);
        if (st == CLST_E_NOTFOUND) {
            st = not_found(name, version, err);
        }
    }
    st = st == CLST_OK ? reply_bundle(&rc, &obj, err) : fail(&rc, err);
    clst_vault_object_cleanup(&obj);
    return st;
}

static enum clst_status
h_update(void *ctx, const struct clst_http_request *req, struct clst_http_response *resp,
         struct clst_err *err)
{
    struct clst_vault_rctx rc;
    struct clst_vault_object cur, changes, out;
    struct clst_vault_key_request r;
    struct clst_buf ops;
    json_t *body = NULL;
    const char *name = NULL, *version = "";
    enum clst_vault_keymat_type type = CLST_KEYMAT_NONE;
    unsigned fields;
    bool replied = false;
    enum clst_status st;

    memset(&cur, 0, sizeof(cur));
    memset(&changes, 0, sizeof(changes));
    memset(&out, 0, sizeof(out));
    memset(&r, 0, sizeof(r));
    clst_buf_init(&ops, CLST_VAULT_KEY_OPS_MAX);
    st = clst_vault_rctx_start(ctx, req, resp, &rc, KIND, CLST_VAULT_PERM_KEY_UPDATE, true, &name,
                               err);
    if (st == CLST_OK) {
        st = version_param(req, &version, err);
    }
    if (st == CLST_OK) {
        st = clst_vault_body_json(&rc, &body, err);
    }
    if (st == CLST_OK) {
        st = clst_vault_store_get(rc.vault->store, KIND, name, version, &cur, NULL, err);
        if (st == CLST_E_NOTFOUND) {
            st = not_found(name, version, err);
        }
    }
    if (st == CLST_OK && clst_vault_keymat_kty_parse(cur.kty, &type, NULL) != CLST_OK) {
        st = clst_err_set(err, CLST_E_VERIFY, "key '%s' has an unknown stored kty", name);
    }
    if (st == CLST_OK) {
        r.attrs = cur.attrs;
        st = clst_vault_keys_parse_update(body, type, &r, err);
    }
    if (st != CLST_OK) {
        goto done;
    }
    fields = r.attr_fields;
    changes.attrs = r.attrs;
    if ((r.attrs.nbf != 0 && r.attrs.exp != 0 && r.attrs.nbf > r.attrs.exp)) {
        st = clst_err_set(err, CLST_E_INVAL,
                          "attributes: nbf (not before) would be later than exp (expiry)");
        goto done;
    }
    if (r.has_ops) {
        st = clst_vault_keymat_ops_to_text(r.ops, &ops);
        if (st == CLST_OK) {
            st = clst_buf_terminate(&ops);
        }
        if (st != CLST_OK) {
            clst_err_set(err, st, "out of memory updating key_ops");
            goto done;
        }
        changes.key_ops = (char *)ops.data;
        fields |= CLST_VAULT_UPDATE_KEY_OPS;
    }
    if (r.tags != NULL) {
        changes.tags = r.tags;
        fields |= CLST_VAULT_UPDATE_TAGS;
    }
    if (r.policy != NULL && !cur.attrs.exportable) {
        st = clst_err_set(err, CLST_E_INVAL,
                          "AKV.SKR.1005: Non-exportable keys must not have release policy (key "
                          "'%s' was not created exportable)",
                          name);
        goto done;
    }
    if (r.policy != NULL) {
        changes.release_policy = r.policy;
        /* Left out: keep what the key has (so re-sending an immutable policy is allowed). */
        changes.policy_immutable = r.has_immutable ? r.policy_immutable : cur.policy_immutable;
        fields |= CLST_VAULT_UPDATE_POLICY;
    }
    /* Keep the stored policy and flags as they are unless asked. */
    changes.attrs.exportable = cur.attrs.exportable;
    /* Governance: the version as it would be after the update, against the rules about what
     * the update changes. */
    if (clst_vault_governance_of(rc.vault) != NULL) {
        struct clst_gov_violation gv[CLST_GOV_RULE_COUNT];
        struct clst_vault_object merged = cur; /* shallow: borrows cur's and changes' fields */
        if (fields & CLST_VAULT_UPDATE_NBF) {
            merged.attrs.nbf = changes.attrs.nbf;
        }
        if (fields & CLST_VAULT_UPDATE_EXP) {
            merged.attrs.exp = changes.attrs.exp;
        }
        if (fields & CLST_VAULT_UPDATE_TAGS) {
            merged.tags = changes.tags;
        }
        if (fields & CLST_VAULT_UPDATE_POLICY) {
            merged.release_policy = changes.release_policy;
            merged.policy_immutable = changes.policy_immutable;
        }
        size_t n = clst_gov_check(clst_vault_governance_of(rc.vault), &merged, NULL,
                                  cur.attrs.created, clst_gov_rules_for_update(fields), gv);
        if (n > 0) {
            st = clst_gov_reply(&rc, gv, n);
            replied = true;
            goto done;
        }
    }
    st = clst_vault_store_update(rc.vault->store, KIND, name, cur.version, &changes, fields, &out,
                                 err);
    if (st == CLST_E_CONFLICT) {
        st = clst_err_set(err, CLST_E_CONFLICT,
                          "the key's release policy is immutable: it cannot be changed or made "
                          "mutable");
    } else if (st == CLST_E_NOTFOUND) {
        st = not_found(name, version, err);
    }
done:
    if (!replied) {
        st = st == CLST_OK ? reply_bundle(&rc, &out, err) : fail(&rc, err);
    }
    clst_vault_object_cleanup(&cur);
    clst_vault_object_cleanup(&out);
    clst_vault_key_request_cleanup(&r);
    clst_buf_cleanup(&ops);
    json_decref(body);
    return st;
}

/* ---- listings, delete, recover, purge (rest_common.c) --------------------------------------- */

static const struct clst_vault_kind_rest KEYS = {
    .kind = KIND,
    .perm_read = CLST_VAULT_PERM_KEY_READ,
    .perm_deleted_read = CLST_VAULT_PERM_KEY_DELETED_READ,
    .perm_delete = CLST_VAULT_PERM_KEY_DELETE,
    .perm_recover = CLST_VAULT_PERM_KEY_RECOVER,
    .perm_purge = CLST_VAULT_PERM_KEY_PURGE,
    .item = key_item,
    .list_nomem = "out of memory building a list",
    .reply = reply_bundle,
};

static enum clst_status
h_list(void *ctx, const struct clst_http_request *req, struct clst_http_response *resp,
       struct clst_err *err)
{
    return clst_vault_kind_list(&KEYS, CLST_VAULT_LIST_LIVE, ctx, req, resp, err);
}

static enum clst_status
h_versions(void *ctx, const struct clst_http_request *req, struct clst_http_response *resp,
           struct clst_err *err)
{
    return clst_vault_kind_list(&KEYS, CLST_VAULT_LIST_VERSIONS, ctx, req, resp, err);
}

static enum clst_status
h_list_deleted(void *ctx, const struct clst_http_request *req, struct clst_http_response *resp,
               struct clst_err *err)
{
    return clst_vault_kind_list(&KEYS, CLST_VAULT_LIST_DELETED, ctx, req, resp, err);
}

static enum clst_status
h_delete(void *ctx, const struct clst_http_request *req, struct clst_http_response *resp,
         struct clst_err *err)
{
    return clst_vault_kind_state_op(&KEYS, CLST_VAULT_OP_DELETE, ctx, req, resp, err);
}

static enum clst_status
h_get_deleted(void *ctx, const struct clst_http_request *req, struct clst_http_response *resp,
              struct clst_err *err)
{
    return clst_vault_kind_state_op(&KEYS, CLST_VAULT_OP_GET_DELETED, ctx, req, resp, err);
}

static enum clst_status
h_recover(void *ctx, const struct clst_http_request *req, struct clst_http_response *resp,
          struct clst_err *err)
{
    return clst_vault_kind_state_op(&KEYS, CLST_VAULT_OP_RECOVER, ctx, req, resp, err);
}

static enum clst_status
h_purge(void *ctx, const struct clst_http_request *req, struct clst_http_response *resp,
        struct clst_err *err)
{
    return clst_vault_kind_purge(&KEYS, ctx, req, resp, err);
}

/* ---- rotate --------------------------------------------------------------------------------- */

/*
 * Without governance rules a rotated version has no nbf/exp (as before). When the rules require
 * an expiry or bound the validity, the new version carries the current version's validity period
 * over (exp - (nbf or created)), from now, cut to the maximum validity; without a period to carry
 * over it gets the maximum validity. Whatever remains is checked by store_new_version (a rule
 * that still fails is refused there, with what to do).
 */
static void
rotation_expiry(const struct clst_vault *v, const struct clst_vault_object *cur,
                struct clst_vault_attrs *a)
{
    const struct clst_vault_governance *g = clst_vault_governance_of(v);
    int64_t now = clst_vault_now(v);
    int64_t period = 0;
    int64_t max = clst_gov_max_validity_seconds(g);
    if (g == NULL || (!clst_gov_requires_expiry(g) && max == 0)) {
        return;
    }
    if (cur->attrs.exp != 0) {
        int64_t from = cur->attrs.nbf != 0 ? cur->attrs.nbf : cur->attrs.created;
        period = cur->attrs.exp > from ? cur->attrs.exp - from : 0;
    }
    if (max != 0 && (period == 0 || period > max)) {
        period = max;
    }
    if (period > 0) {
        a->exp = now + period;
    }
}

static enum clst_status
h_rotate(void *ctx, const struct clst_http_request *req, struct clst_http_response *resp,
         struct clst_err *err)
{
    struct clst_vault_rctx rc;
    struct clst_vault_object cur;
    struct clst_vault_key_request r;
    struct clst_vault_keymat *km = NULL;
    const char *name = NULL;
    enum clst_status st;

    memset(&cur, 0, sizeof(cur));
    memset(&r, 0, sizeof(r));
    st = clst_vault_rctx_start(ctx, req, resp, &rc, KIND, CLST_VAULT_PERM_KEY_ROTATE, true, &name,
                               err);
    if (st == CLST_OK) {
        st = clst_vault_store_get(rc.vault->store, KIND, name, "", &cur, NULL, err);
        if (st == CLST_E_NOTFOUND) {
            st = not_found(name, NULL, err);
        }
    }
    if (st == CLST_OK) {
        st = clst_vault_keymat_spec_from_public(cur.public_data, cur.public_size, &r.spec, err);
    }
    if (st == CLST_OK) {
        st = stored_ops(&cur, &r.ops, err);
    }
    if (st == CLST_OK) {
        st = clst_vault_keymat_generate(&r.spec, &km, err);
    }
    if (st != CLST_OK) {
        st = fail(&rc, err);
        goto out;
    }
    /* The new version keeps the key's type, size, key_ops, tags, exportability and release
     * policy; it starts enabled, without nbf/exp. */
    r.type = r.spec.type;
    memcpy(r.kty, cur.kty, sizeof(r.kty));
    clst_vault_attrs_defaults(rc.vault, &r.attrs);
    r.attrs.exportable = cur.attrs.exportable;
    rotation_expiry(rc.vault, &cur, &r.attrs);
    r.tags = cur.tags;
    r.policy = cur.release_policy;
    r.policy_immutable = cur.policy_immutable;
    st = store_new_version(&rc, name, NULL, &r, km, err);
    r.tags = NULL; /* borrowed from cur */
    r.policy = NULL;
out:
    clst_vault_keymat_free(km);
    clst_vault_key_request_cleanup(&r);
    clst_vault_object_cleanup(&cur);
    return st;
}

/* ---- backup and restore --------------------------------------------------------------------- */

static void
items_cleanup(struct clst_vault_backup_item *items, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        clst_vault_object_cleanup(&items[i].meta);
        clst_secret_free(items[i].value);
    }
    free(items);
}

static enum clst_status
no_backup_key(struct clst_err *err)
{
    return clst_err_set(err, CLST_E_INTERNAL,
                        "key backups need the vault's master key, which this server was not "
                        "given");
}

static enum clst_status
h_backup(void *ctx, const struct clst_http_request *req, struct clst_http_response *resp,
         struct clst_err *err)
{
    struct clst_vault_rctx rc;
    struct clst_vault_object_list page;
    struct clst_vault_backup_item *items = NULL;
    size_t count = 0, cap = 0;
    char *token = NULL;
    const char *name = NULL;
    uint8_t key[CLST_KEYMAT_BACKUP_KEY_SIZE];
    struct clst_buf blob;
    json_t *body = NULL;
    enum clst_status st;

    memset(&page, 0, sizeof(page));
    clst_buf_init(&blob, CLST_KEYMAT_BACKUP_MAX);
    st = clst_vault_rctx_start(ctx, req, resp, &rc, KIND, CLST_VAULT_PERM_KEY_BACKUP, true, &name,
                               err);
    if (st == CLST_OK && rc.vault->mk == NULL) {
        st = no_backup_key(err);
    }
    /* Every version, oldest first, with its material (each get verifies the row and the seal). */
    while (st == CLST_OK) {
        st = clst_vault_store_list_versions(rc.vault->store, KIND, name, 0, token, &page, err);
        if (st == CLST_E_NOTFOUND) {
            st = not_found(name, NULL, err);
        }
        for (size_t i = 0; st == CLST_OK && i < page.count; i++) {
            if (count == cap) {
                size_t ncap = cap == 0 ? 8 : cap * 2;
                struct clst_vault_backup_item *n;
                if (ncap > CLST_KEYMAT_BACKUP_VERSIONS + 1) {
                    ncap = CLST_KEYMAT_BACKUP_VERSIONS + 1;
                }
                if (count >= ncap) {
                    st = clst_err_set(err, CLST_E_LIMIT,
                                      "key '%s' has more than %d versions, more than a backup "
                                      "holds",
                                      name, CLST_KEYMAT_BACKUP_VERSIONS);
                    break;
                }
                n = realloc(items, ncap * sizeof(*items));
                if (n == NULL) {
                    st = clst_err_set(err, CLST_E_NOMEM, "out of memory making a backup");
                    break;
                }
                memset(n + cap, 0, (ncap - cap) * sizeof(*items));
                items = n;
                cap = ncap;
            }
            st = clst_vault_store_get(rc.vault->store, KIND, name, page.items[i].version,
                                      &items[count].meta, &items[count].value, err);
            if (st == CLST_OK) {
                count++;
            }
        }
        free(token);
        token = NULL;
        if (st == CLST_OK && page.next != NULL) {
            token = page.next;
            page.next = NULL;
        }
        clst_vault_object_list_cleanup(&page);
        if (token == NULL) {
            break;
        }
    }
    if (st == CLST_OK) {
        st = clst_vault_backup_key(rc.vault->store, rc.vault->mk, key, err);
    }
    if (st == CLST_OK) {
        st = clst_vault_backup_seal(key, items, count, &blob, err);
    }
    if (st == CLST_OK) {
        body = json_object();
        if (body == NULL || !put(body, "value", clst_json_b64url(blob.data, blob.size))) {
            json_decref(body);
            body = NULL;
            st = clst_err_set(err, CLST_E_NOMEM, "out of memory building the backup");
        }
    }
    if (st == CLST_OK) {
        clst_http_response_json_new(resp, 200, body);
    } else {
        st = fail(&rc, err);
    }
    OPENSSL_cleanse(key, sizeof(key));
    free(token);
    items_cleanup(items, cap);
    clst_buf_cleanup(&blob);
    return st;
}

/* Whether the principal holds `perm` through any of its assignments (at any scope). */
static bool
holds_anywhere(const struct clst_vault_principal *p, enum clst_vault_perm perm)
{
    for (size_t i = 0; p != NULL && i < p->role_count; i++) {
        if (clst_vault_role_grants(p->roles[i].role, perm)) {
            return true;
        }
    }
    return false;
}

/* A restored version must be what this vault would have stored: known kty, key_ops, a public
 * part that matches the private material. */
static enum clst_status
check_restored(const struct clst_vault_backup_item *it, struct clst_vault_keymat_spec *out_spec,
               struct clst_err *err)
{
    enum clst_vault_keymat_type type;
    struct clst_vault_keymat *km = NULL;
    unsigned ops;
    enum clst_status st = clst_vault_keymat_kty_parse(it->meta.kty, &type, err);
    if (st == CLST_OK) {
        st = clst_vault_keymat_ops_from_text(it->meta.key_ops, 0, &ops, err);
    }
    if (st == CLST_OK) {
        st = clst_vault_keymat_import_private(type, it->value->ptr, it->value->size, &km, err);
    }
    if (st == CLST_OK &&
        !clst_vault_keymat_matches_public(km, it->meta.public_data, it->meta.public_size)) {
        st = CLST_E_VERIFY;
    }
    if (st == CLST_OK) {
        clst_vault_keymat_spec_of(km, out_spec);
    }
    clst_vault_keymat_free(km);
    if (st != CLST_OK) {
        return clst_err_set(err, CLST_E_INVAL, "the backup's version %s is not a valid key",
                            it->meta.version);
    }
    return CLST_OK;
}

static enum clst_status
h_restore(void *ctx, const struct clst_http_request *req, struct clst_http_response *resp,
          struct clst_err *err)
{
    struct clst_vault_rctx rc;
    struct clst_vault_backup b;
    struct clst_vault_object obj;
    struct clst_buf blob;
    uint8_t key[CLST_KEYMAT_BACKUP_KEY_SIZE];
    json_t *body = NULL;
    enum clst_status st;
    size_t restored = 0;
    bool replied = false;

    memset(&b, 0, sizeof(b));
    memset(&obj, 0, sizeof(obj));
    clst_buf_init(&blob, CLST_KEYMAT_BACKUP_MAX);
    st = clst_vault_rctx_begin(ctx, req, resp, &rc, err);
    /* The name is inside the blob: a principal that may restore nowhere is refused before the
     * blob is looked at; the name is authorized once it is known. */
    if (st == CLST_OK && !holds_anywhere(rc.principal, CLST_VAULT_PERM_KEY_RESTORE)) {
        st = clst_vault_authorize(&rc, CLST_VAULT_PERM_KEY_RESTORE, KIND, NULL, err);
    }
    if (st == CLST_OK) {
        st = clst_vault_body_json(&rc, &body, err);
    }
    if (st == CLST_OK) {
        st = clst_vault_json_b64url(body, "value", true, &blob, NULL, err);
        if (st == CLST_OK && blob.size == 0) {
            st = clst_err_set(err, CLST_E_INVAL, "the backup value is empty");
        }
    }
    if (st == CLST_OK && rc.vault->mk == NULL) {
        st = no_backup_key(err);
    }
    if (st == CLST_OK) {
        st = clst_vault_backup_key(rc.vault->store, rc.vault->mk, key, err);
    }
    if (st == CLST_OK) {
        st = clst_vault_backup_open(key, blob.data, blob.size, &b, err);
        if (st == CLST_E_VERIFY || st == CLST_E_MALFORMED || st == CLST_E_LIMIT) {
            st = client_error(err); /* the client's blob, not our storage */
        }
    }
    if (st == CLST_OK) {
        st = clst_vault_authorize(&rc, CLST_VAULT_PERM_KEY_RESTORE, KIND, b.name, err);
    }
    /* Governance: a restore brings versions into this vault, so each must pass every rule as
     * if it were created now, its validity counted from its own creation. Nothing is restored
     * when one fails. */
    for (size_t i = 0; st == CLST_OK && i < b.count; i++) {
        struct clst_vault_keymat_spec spec;
        st = check_restored(&b.items[i], &spec, err);
        const struct clst_vault_governance *g = clst_vault_governance_of(rc.vault);
        if (st == CLST_OK && g != NULL) {
            struct clst_gov_violation gv[CLST_GOV_RULE_COUNT];
            size_t n = clst_gov_check(g, &b.items[i].meta, &spec, b.items[i].meta.attrs.created,
                                      CLST_GOV_R_ALL, gv);
            if (n > 0) {
                st = clst_gov_reply(&rc, gv, n);
                replied = st == CLST_OK;
                if (replied) {
                    st = CLST_E_DENIED; /* answered: stop here */
                }
            }
        }
    }
    /* The name must be free: neither live nor soft-deleted. */
    if (st == CLST_OK) {
        st = clst_vault_store_get(rc.vault->store, KIND, b.name, "", &obj, NULL, err);
        if (st == CLST_OK || st == CLST_E_VERIFY) {
            st = clst_err_set(err, CLST_E_CONFLICT,
                              "key '%s' exists: delete and purge it before restoring its backup",
                              b.name);
        } else if (st == CLST_E_NOTFOUND) {
            clst_vault_object_cleanup(&obj);
            st = clst_vault_store_get_deleted(rc.vault->store, KIND, b.name, &obj, err);
            if (st == CLST_OK || st == CLST_E_VERIFY) {
                st = clst_err_set(err, CLST_E_CONFLICT,
                                  "key '%s' is deleted but not purged: purge it (or recover it) "
                                  "before restoring its backup",
                                  b.name);
            } else if (st == CLST_E_NOTFOUND) {
                st = CLST_OK;
            }
        }
        clst_vault_object_cleanup(&obj);
    }
    /* Oldest first, with the original version ids, so the newest is the latest again. */
    for (size_t i = 0; st == CLST_OK && i < b.count; i++) {
        st = clst_vault_store_put(rc.vault->store, &b.items[i].meta, b.items[i].value->ptr,
                                  b.items[i].value->size, NULL, err);
        if (st == CLST_OK) {
            restored++;
        }
    }
    if (st != CLST_OK && restored > 0) {
        clst_log_error("vault: restore of key '%s' stopped after %zu of %zu versions: %s", b.name,
                       restored, b.count, err != NULL ? err->msg : "?");
    }
    if (st == CLST_OK) {
        st = clst_vault_store_get(rc.vault->store, KIND, b.name, "", &obj, NULL, err);
    }
    if (replied) {
        st = CLST_OK; /* answered already (403 from the governance rules) */
    } else {
        st = st == CLST_OK ? reply_bundle(&rc, &obj, err) : fail(&rc, err);
    }
    OPENSSL_cleanse(key, sizeof(key));
    clst_vault_object_cleanup(&obj);
    clst_vault_backup_cleanup(&b);
    clst_buf_cleanup(&blob);
    json_decref(body);
    return st;
}

/* ---- cryptographic operations --------------------------------------------------------------- */

/* enabled, nbf and exp at the vault's clock (see the top of this file). */
static enum clst_status
check_usable(const struct clst_vault *v, const struct clst_vault_object *obj,
             enum clst_vault_keyop op, struct clst_err *err)
{
    int64_t now = clst_vault_now(v);
    char when[32];

    if (!obj->attrs.enabled) {
        return clst_err_set(err, CLST_E_DENIED,
                            "key '%s' version %s is disabled; enable it to use it", obj->name,
                            obj->version);
    }
    if (obj->attrs.nbf != 0 && now < obj->attrs.nbf) {
        if (clst_time_format(obj->attrs.nbf, when, sizeof(when)) != CLST_OK) {
            when[0] = '\0';
        }
        return clst_err_set(err, CLST_E_DENIED, "key '%s' version %s is not valid before %s",
                            obj->name, obj->version, when);
    }
    if (obj->attrs.exp != 0 && now >= obj->attrs.exp &&
        (op == CLST_KEYOP_ENCRYPT || op == CLST_KEYOP_WRAP || op == CLST_KEYOP_SIGN)) {
        if (clst_time_format(obj->attrs.exp, when, sizeof(when)) != CLST_OK) {
            when[0] = '\0';
        }
        return clst_err_set(err, CLST_E_DENIED,
                            "key '%s' version %s expired at %s: it can still decrypt, unwrap and "
                            "verify, but no longer %s",
                            obj->name, obj->version, when,
                            op == CLST_KEYOP_SIGN   ? "sign"
                            : op == CLST_KEYOP_WRAP ? "wrap"
                                                    : "encrypt");
    }
    return CLST_OK;
}

/* {"kid":…,"value":"<base64url>"} built in wiped memory (for decrypt/unwrap results). */
static enum clst_status
reply_secret_value(struct clst_vault_rctx *rc, const char *kid, const uint8_t *value, size_t size,
                   struct clst_err *err)
{
    struct clst_buf b;
    json_t *k = json_string(kid);
    char *kid_text = k != NULL ? json_dumps(k, JSON_ENCODE_ANY) : NULL;
    enum clst_status st = CLST_E_NOMEM;

    clst_buf_init_secret(&b, clst_b64url_encoded_size(size) + 2 * CLST_VAULT_ID_MAX + 64);
    if (kid_text != NULL && clst_buf_append_str(&b, "{\"kid\":") == CLST_OK &&
        clst_buf_append_str(&b, kid_text) == CLST_OK &&
        clst_buf_append_str(&b, ",\"value\":\"") == CLST_OK &&
        clst_b64url_encode(value, size, &b) == CLST_OK &&
        clst_buf_append_str(&b, "\"}") == CLST_OK) {
        st = clst_http_response_body(rc->resp, 200, "application/json; charset=utf-8", b.data,
                                     b.size);
    }
    free(kid_text);
    json_decref(k);
    clst_buf_cleanup(&b);
    if (st != CLST_OK) {
        return clst_err_set(err, st, "out of memory building the result");
    }
    return CLST_OK;
}

/* ---- recipient operations (secure key release) ---------------------------------------------- */

/* {"target", "nonce"?, "enc"?} of decrypt/unwrapkey; the other operations refuse them. */
struct recipient {
    bool present;
    const char *target;
    size_t target_size;
    const char *nonce;
    enum clst_vault_release_enc enc;
};

static enum clst_status
parse_recipient(const json_t *body, enum clst_vault_keyop op, struct recipient *out,
                struct clst_err *err)
{
    bool has_nonce = false, has_enc = false;
    const char *enc = NULL;
    enum clst_status st;

    memset(out, 0, sizeof(*out));
    out->enc = CLST_RELEASE_ENC_CKM_RSA_AES_KEY_WRAP;
    st = clst_vault_json_string(body, "target", false, CLST_JWS_MAX_SIZE, &out->target,
                                &out->present, err);
    if (st == CLST_OK) {
        st = clst_vault_json_string(body, "nonce", false, CLST_RELEASE_MAX_NONCE, &out->nonce,
                                    &has_nonce, err);
    }
    if (st == CLST_OK) {
        st = clst_vault_json_string(body, "enc", false, 64, &enc, &has_enc, err);
    }
    if (st != CLST_OK) {
        return st;
    }
    if (!out->present) {
        out->nonce = NULL;
        if (has_nonce || has_enc) {
            return clst_err_set(err, CLST_E_INVAL,
                                "nonce and enc go with target (an attestation token naming the "
                                "recipient TEE)");
        }
        return CLST_OK;
    }
    if (op != CLST_KEYOP_DECRYPT && op != CLST_KEYOP_UNWRAP) {
        return clst_err_set(err, CLST_E_INVAL,
                            "target (a recipient TEE) is only accepted by decrypt and unwrapkey");
    }
    out->target_size = strlen(out->target);
    if (!has_nonce) {
        out->nonce = NULL;
    }
    if (has_enc) {
        return clst_vault_release_enc_parse(enc, &out->enc, err);
    }
    return CLST_OK;
}

/*
 * Evaluates the recipient's token against the key's release policy and records the decision.
 * CLST_OK: allowed (ev holds the TEE key). Otherwise the answer (403 with the explanation, or 503
 * when the issuer's keys cannot be had) has been written and *replied is set.
 */
static enum clst_status
recipient_gate(struct clst_vault_rctx *rc, struct clst_vault_release *rel,
               const struct clst_vault_object *obj, const struct recipient *rcp,
               enum clst_vault_keyop op, struct clst_vault_release_eval *ev, bool *replied,
               struct clst_err *err)
{
    struct clst_vault_decision d;
    enum clst_status st;

    memset(&d, 0, sizeof(d));
    d.time = clst_vault_now(rc->vault);
    d.request_id = clst_http_request_id(rc->req);
    d.principal = rc->principal != NULL ? rc->principal->id : NULL;
    d.operation = op == CLST_KEYOP_DECRYPT ? "decrypt" : "unwrapkey";
    d.key_name = obj->name;
    d.key_version = obj->version;
    d.enc = clst_vault_release_enc_name(rcp->enc);
    if (obj->release_policy == NULL) {
        ev->stage = CLST_RELEASE_STAGE_KEY;
        snprintf(ev->reason, sizeof(ev->reason),
                 "key '%s' has no release policy: an operation for a recipient TEE (target) is "
                 "decided by the key's release policy",
                 obj->name);
        st = CLST_E_DENIED;
    } else {
        st = clst_vault_release_evaluate(rel, rcp->target, rcp->target_size, rcp->nonce,
                                         obj->release_policy, ev, err);
    }
    if (st != CLST_OK && st != CLST_E_DENIED && st != CLST_E_IO) {
        return st;
    }
    clst_vault_release_decision_from_eval(ev, &d);
    if (st == CLST_E_IO) {
        d.allowed = false;
    }
    clst_vault_release_record(rel, &d);
    if (st == CLST_E_IO) {
        clst_http_response_error(rc->resp, 503, CLST_HTTP_CODE_SERVICE_UNAVAILABLE, "%s",
                                 err != NULL ? err->msg : "attestation keys unavailable");
        *replied = true;
    } else if (st == CLST_E_DENIED) {
        (void)clst_vault_release_reply_denied(rc, rel, ev);
        *replied = true;
    }
    return st;
}

/* {"kid","enc","recipient","ciphertextForRecipient"}: the result wrapped to the TEE's key. */
static enum clst_status
reply_for_recipient(struct clst_vault_rctx *rc, const char *kid,
                    const struct clst_vault_release_eval *ev, enum clst_vault_release_enc enc,
                    const uint8_t *value, size_t size, struct clst_err *err)
{
    struct clst_buf wrapped;
    enum clst_status st;
    json_t *j = NULL;

    clst_buf_init(&wrapped, CLST_RSA_MAX_BITS / 8 + CLST_KEYMAT_DATA_MAX + 64);
    st = clst_vault_release_wrap_for(ev, enc, value, size, &wrapped, err);
    if (st == CLST_OK) {
        j = json_object();
        if (j == NULL || !put(j, "kid", json_string(kid)) ||
            !put(j, "enc", json_string(clst_vault_release_enc_name(enc))) ||
            !put(j, "recipient", json_string(ev->tee_kid)) ||
            !put(j, "ciphertextForRecipient", clst_json_b64url(wrapped.data, wrapped.size))) {
            json_decref(j);
            j = NULL;
            st = clst_err_set(err, CLST_E_NOMEM, "out of memory building the result");
        }
    }
    clst_buf_cleanup(&wrapped);
    if (st == CLST_OK) {
        clst_http_response_json_new(rc->resp, 200, j);
    }
    return st;
}

static enum clst_status
key_op(void *ctx, const struct clst_http_request *req, struct clst_http_response *resp,
       enum clst_vault_keyop op, enum clst_vault_perm perm, struct clst_err *err)
{
    struct clst_vault_rctx rc;
    struct clst_vault_op_request r;
    struct clst_vault_object obj;
    struct clst_secret *material = NULL;
    struct clst_vault_keymat *km = NULL;
    struct clst_vault_crypt_out res;
    struct clst_buf sig;
    enum clst_vault_keymat_type type = CLST_KEYMAT_NONE;
    json_t *body = NULL, *out = NULL;
    const char *name = NULL, *version = "";
    char kid[CLST_VAULT_ID_MAX];
    unsigned ops = 0;
    enum clst_status st;
    struct recipient rcp;
    struct clst_vault_release *rel = NULL;
    struct clst_vault_release_eval ev;
    bool replied = false;

    memset(&obj, 0, sizeof(obj));
    memset(&rcp, 0, sizeof(rcp));
    clst_vault_release_eval_init(&ev);
    clst_vault_op_request_init(&r);
    clst_vault_crypt_out_init(&res);
    clst_buf_init(&sig, 2 * CLST_RSA_MAX_BITS / 8);
    st = clst_vault_rctx_start(ctx, req, resp, &rc, KIND, perm, true, &name, err);
    if (st == CLST_OK) {
        st = version_param(req, &version, err);
    }
    if (st == CLST_OK) {
        st = clst_vault_body_json(&rc, &body, err);
    }
    if (st == CLST_OK) {
        st = clst_vault_keys_parse_op(body, op, &r, err);
    }
    if (st == CLST_OK) {
        st = parse_recipient(body, op, &rcp, err);
    }
    if (st == CLST_OK && rcp.present && (rel = clst_vault_release_of(rc.vault)) == NULL) {
        st = clst_err_set(err, CLST_E_DENIED,
                          "operations for a recipient TEE (target) need secure key release, which "
                          "is not enabled on this vault (see docs/key-release.md)");
    }
    if (st == CLST_OK) {
        /* Verifies the row's MAC and opens the seal: a tampered row fails here (500), before
         * anything is decrypted. */
        st = clst_vault_store_get(rc.vault->store, KIND, name, version, &obj, &material, err);
        if (st == CLST_E_NOTFOUND) {
            st = not_found(name, version, err);
        }
    }
    if (st == CLST_OK) {
        st = check_usable(rc.vault, &obj, op, err);
    }
    if (st == CLST_OK) {
        st = stored_ops(&obj, &ops, err);
    }
    if (st == CLST_OK) {
        st = clst_vault_keymat_ops_check(ops, op, err);
    }
    if (st == CLST_OK && clst_vault_keymat_kty_parse(obj.kty, &type, NULL) != CLST_OK) {
        st = clst_err_set(err, CLST_E_VERIFY, "key '%s' has an unknown stored kty", name);
    }
    if (st == CLST_OK) {
        st = clst_vault_keymat_import_private(type, material->ptr, material->size, &km, err);
    }
    if (st == CLST_OK && !clst_vault_keymat_matches_public(km, obj.public_data, obj.public_size)) {
        st = clst_err_set(err, CLST_E_VERIFY,
                          "key '%s' version %s: the stored private and public parts disagree "
                          "(possible tampering)",
                          name, obj.version);
    }
    if (st == CLST_OK &&
        clst_vault_object_id(&rc, KIND, obj.name, obj.version, kid, sizeof(kid)) != CLST_OK) {
        st = clst_err_set(err, CLST_E_INTERNAL, "the key id does not fit");
    }
    if (st == CLST_OK && rcp.present) {
        /* Decided before anything is decrypted: a denied recipient learns nothing. */
        st = recipient_gate(&rc, rel, &obj, &rcp, op, &ev, &replied, err);
        if (replied) {
            st = CLST_OK;
            goto done;
        }
    }
    if (st != CLST_OK) {
        goto done;
    }
    switch (op) {
    case CLST_KEYOP_SIGN:
        st = clst_vault_keymat_sign(km, r.alg, r.value.data, r.value.size, &sig, err);
        if (st == CLST_OK) {
            out = json_object();
            if (out == NULL || !put(out, "kid", json_string(kid)) ||
                !put(out, "value", clst_json_b64url(sig.data, sig.size))) {
                st = clst_err_set(err, CLST_E_NOMEM, "out of memory building the result");
            }
        }
        break;
    case CLST_KEYOP_VERIFY:
        st = clst_vault_keymat_verify(km, r.alg, r.digest.data, r.digest.size, r.value.data,
                                      r.value.size, err);
        if (st == CLST_OK || st == CLST_E_VERIFY) {
            /* A bad signature is an answer, not an error (200 {"value": false}). */
            out = json_object();
            if (out == NULL || !put(out, "value", json_boolean(st == CLST_OK))) {
                st = clst_err_set(err, CLST_E_NOMEM, "out of memory building the result");
            } else {
                st = CLST_OK;
            }
        }
        break;
    case CLST_KEYOP_ENCRYPT:
    case CLST_KEYOP_WRAP:
        st = clst_vault_keymat_crypt(km, op, r.alg, &r.in, &res, err);
        if (st == CLST_OK) {
            out = json_object();
            if (out == NULL || !put(out, "kid", json_string(kid)) ||
                !put(out, "value", clst_json_b64url(res.value.data, res.value.size)) ||
                (res.iv_size > 0 && !put(out, "iv", clst_json_b64url(res.iv, res.iv_size))) ||
                (res.tag_size > 0 && !put(out, "tag", clst_json_b64url(res.tag, res.tag_size))) ||
                (res.iv_size > 0 && r.in.has_aad &&
                 !put(out, "aad", clst_json_b64url(r.aad.data, r.aad.size)))) {
                st = clst_err_set(err, CLST_E_NOMEM, "out of memory building the result");
            }
        }
        break;
    case CLST_KEYOP_DECRYPT:
    case CLST_KEYOP_UNWRAP:
    default:
        st = clst_vault_keymat_crypt(km, op, r.alg, &r.in, &res, err);
        if (st == CLST_E_VERIFY) {
            st = client_error(err); /* the client's ciphertext does not decrypt: 400 */
        }
        if (st == CLST_OK && rcp.present) {
            st = reply_for_recipient(&rc, kid, &ev, rcp.enc, res.value.data, res.value.size, err);
        } else if (st == CLST_OK) {
            st = reply_secret_value(&rc, kid, res.value.data, res.value.size, err);
        }
        break;
    }
done:
    if (st == CLST_OK && out != NULL) {
        clst_http_response_json_new(resp, 200, out);
        out = NULL;
    } else if (st != CLST_OK) {
        st = fail(&rc, err);
    }
    json_decref(out);
    json_decref(body);
    clst_vault_keymat_free(km);
    clst_secret_free(material);
    clst_vault_object_cleanup(&obj);
    clst_vault_crypt_out_cleanup(&res);
    clst_vault_op_request_cleanup(&r);
    clst_vault_release_eval_cleanup(&ev);
    clst_buf_cleanup(&sig);
    return st;
}

static enum clst_status
h_encrypt(void *ctx, const struct clst_http_request *req, struct clst_http_response *resp,
          struct clst_err *err)
{
    return key_op(ctx, req, resp, CLST_KEYOP_ENCRYPT, CLST_VAULT_PERM_KEY_ENCRYPT, err);
}

static enum clst_status
h_decrypt(void *ctx, const struct clst_http_request *req, struct clst_http_response *resp,
          struct clst_err *err)
{
    return key_op(ctx, req, resp, CLST_KEYOP_DECRYPT, CLST_VAULT_PERM_KEY_DECRYPT, err);
}

static enum clst_status
h_wrap(void *ctx, const struct clst_http_request *req, struct clst_http_response *resp,
       struct clst_err *err)
{
    return key_op(ctx, req, resp, CLST_KEYOP_WRAP, CLST_VAULT_PERM_KEY_WRAP, err);
}

static enum clst_status
h_unwrap(void *ctx, const struct clst_http_request *req, struct clst_http_response *resp,
         struct clst_err *err)
{
    return key_op(ctx, req, resp, CLST_KEYOP_UNWRAP, CLST_VAULT_PERM_KEY_UNWRAP, err);
}

static enum clst_status
h_sign(void *ctx, const struct clst_http_request *req, struct clst_http_response *resp,
       struct clst_err *err)
{
    return key_op(ctx, req, resp, CLST_KEYOP_SIGN, CLST_VAULT_PERM_KEY_SIGN, err);
}

static enum clst_status
h_verify(void *ctx, const struct clst_http_request *req, struct clst_http_response *resp,
         struct clst_err *err)
{
    return key_op(ctx, req, resp, CLST_KEYOP_VERIFY, CLST_VAULT_PERM_KEY_VERIFY, err);
}

/* ---- random bytes --------------------------------------------------------------------------- */

static enum clst_status
h_rng(void *ctx, const struct clst_http_request *req, struct clst_http_response *resp,
      struct clst_err *err)
{
    struct clst_vault_rctx rc;
    json_t *body = NULL, *out = NULL;
    int64_t count = 0;
    uint8_t bytes[RNG_MAX];
    enum clst_status st;

    st = clst_vault_rctx_start(ctx, req, resp, &rc, KIND, CLST_VAULT_PERM_RNG, false, NULL, err);
    if (st == CLST_OK) {
        st = clst_vault_body_json(&rc, &body, err);
    }
    if (st == CLST_OK) {
        st = clst_vault_json_int(body, "count", true, 1, RNG_MAX, &count, NULL, err);
    }
    if (st == CLST_OK) {
        st = clst_random(bytes, (size_t)count);
        if (st != CLST_OK) {
            clst_err_set(err, st, "the random generator failed");
        }
    }
    if (st == CLST_OK) {
        out = json_object();
        if (out == NULL || !put(out, "value", clst_json_b64url(bytes, (size_t)count))) {
            json_decref(out);
            out = NULL;
            st = clst_err_set(err, CLST_E_NOMEM, "out of memory building the result");
        }
    }
    if (st == CLST_OK) {
        clst_http_response_json_new(resp, 200, out);
    } else {
        st = fail(&rc, err);
    }
    OPENSSL_cleanse(bytes, sizeof(bytes));
    json_decref(body);
    return st;
}

/* ---- registration --------------------------------------------------------------------------- */

static const struct clst_vault_route ROUTES[] = {
    {CLST_HTTP_GET, "/keys", h_list},
    {CLST_HTTP_POST, "/keys/restore", h_restore},
    {CLST_HTTP_PUT, "/keys/{name}", h_import},
    {CLST_HTTP_GET, "/keys/{name}", h_get},
    {CLST_HTTP_PATCH, "/keys/{name}", h_update},
    {CLST_HTTP_DELETE, "/keys/{name}", h_delete},
    {CLST_HTTP_POST, "/keys/{name}/create", h_create},
    {CLST_HTTP_POST, "/keys/{name}/rotate", h_rotate},
    {CLST_HTTP_POST, "/keys/{name}/backup", h_backup},
    {CLST_HTTP_GET, "/keys/{name}/versions", h_versions},
    {CLST_HTTP_GET, "/keys/{name}/{version}", h_get},
    {CLST_HTTP_PATCH, "/keys/{name}/{version}", h_update},
    {CLST_HTTP_POST, "/keys/{name}/{version}/encrypt", h_encrypt},
    {CLST_HTTP_POST, "/keys/{name}/{version}/decrypt", h_decrypt},
    {CLST_HTTP_POST, "/keys/{name}/{version}/wrapkey", h_wrap},
    {CLST_HTTP_POST, "/keys/{name}/{version}/unwrapkey", h_unwrap},
    {CLST_HTTP_POST, "/keys/{name}/{version}/sign", h_sign},
    {CLST_HTTP_POST, "/keys/{name}/{version}/verify", h_verify},
    {CLST_HTTP_GET, "/deletedkeys", h_list_deleted},
    {CLST_HTTP_GET, "/deletedkeys/{name}", h_get_deleted},
    {CLST_HTTP_DELETE, "/deletedkeys/{name}", h_purge},
    {CLST_HTTP_POST, "/deletedkeys/{name}/recover", h_recover},
    {CLST_HTTP_POST, "/rng", h_rng},
};

enum clst_status
clst_vault_rest_keys_register(struct clst_vault *v, struct clst_server *server,
                              struct clst_err *err)
{
    uint8_t key[CLST_KEYMAT_BACKUP_KEY_SIZE];
    enum clst_status st;

    if (v == NULL || server == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "key routes: vault and server required");
    }
    /* Make the backup key now, while nothing else runs (see clst_vault_backup_key). */
    if (v->mk != NULL) {
        st = clst_vault_backup_key(v->store, v->mk, key, err);
        OPENSSL_cleanse(key, sizeof(key));
        if (st != CLST_OK) {
            return st;
        }
    }
    return clst_vault_routes_add(v, server, ROUTES, sizeof(ROUTES) / sizeof(ROUTES[0]), err);
}
