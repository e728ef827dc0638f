/*
 * The secure key release routes (wire contract: docs/key-release.md, /work-notes §12):
 *
 *   POST /keys/{name}/release[?dryRun=true]            the latest version (the SDK's form)
 *   POST /keys/{name}/{version}/release[?dryRun=true]  one version ("" = latest)
 *
 * Body {"target": <attestation token>, "nonce"?: string, "enc"?: "CKM_RSA_AES_KEY_WRAP" |
 * "RSA_AES_KEY_WRAP_256" | "RSA_AES_KEY_WRAP_384"}; answer 200 {"value": <release JWS>}.
 *
 * Order of checks: api-version, name, version syntax, authorization (keys/release), the engine is
 * configured, the body, the key (404), the key's state (disabled, nbf, exp, exportable, policy),
 * then the token, nonce, policy and TEE key (release.c). Every decision about a key — the key's
 * state, the token, the policy — is recorded; malformed requests (400), unknown keys (404) and
 * principals without the permission (403 from authorization) are not release decisions.
 *
 * A denial is 403 {"error":{"code":"Forbidden","message":…,"denial":{"decision":"deny",
 * "stage":…, "denial":{"path","claim","operator","expected","actual",…}, "policyHash",…}}}.
 * A dry run evaluates everything, releases nothing, and answers 200 with the same explanation and
 * the policy's whole trace.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "vault/keymat.h"
#include "vault/release.h"
#include "vault/rest_int.h"

#define KIND CLST_VAULT_KIND_KEY

static bool
put(json_t *obj, const char *key, json_t *v)
{
    return v != NULL && json_object_set_new(obj, key, v) == 0;
}

/* The request body: target, nonce, enc; any other member is refused by name. */
struct release_body {
    const char *target;
    size_t target_size;
    const char *nonce;
    enum clst_vault_release_enc enc;
};

static enum clst_status
parse_body(const json_t *body, struct release_body *out, struct clst_err *err)
{
    const char *key;
    json_t *value;
    const char *enc = NULL;
    bool present = false;
    enum clst_status st;

    memset(out, 0, sizeof(*out));
    json_object_foreach((json_t *)body, key, value)
    {
        (void)value;
        if (strcmp(key, "target") != 0 && strcmp(key, "nonce") != 0 && strcmp(key, "enc") != 0) {
            return clst_err_set(err, CLST_E_INVAL,
                                "unknown member '%.64s' in the release request (it takes target, "
                                "nonce and enc)",
                                key);
        }
    }
    st = clst_vault_json_string(body, "target", true, CLST_JWS_MAX_SIZE, &out->target, NULL, err);
    if (st != CLST_OK) {
        return st;
    }
    out->target_size = strlen(out->target);
    if (out->target_size == 0) {
        return clst_err_set(err, CLST_E_INVAL,
                            "target is empty: it must be an attestation token (a JWT) from a "
                            "trusted attestation authority");
    }
    st = clst_vault_json_string(body, "nonce", false, CLST_RELEASE_MAX_NONCE, &out->nonce, &present,
                                err);
    if (st != CLST_OK) {
        return st;
    }
    if (!present) {
        out->nonce = NULL;
    }
    st = clst_vault_json_string(body, "enc", false, 64, &enc, &present, err);
    if (st != CLST_OK) {
        return st;
    }
    out->enc = CLST_RELEASE_ENC_CKM_RSA_AES_KEY_WRAP;
    if (present) {
        return clst_vault_release_enc_parse(enc, &out->enc, err);
    }
    return CLST_OK;
}

/* ?dryRun=true|false (any letter case); absent = false. */
static enum clst_status
dry_run_param(const struct clst_http_request *req, bool *out, struct clst_err *err)
{
    const char *v = clst_http_request_query(req, "dryRun");
    *out = false;
    if (v == NULL || strcasecmp(v, "false") == 0) {
        return CLST_OK;
    }
    if (strcasecmp(v, "true") == 0) {
        *out = true;
        return CLST_OK;
    }
    return clst_err_set(err, CLST_E_INVAL, "dryRun must be true or false");
}

/* The key's own state: enabled, nbf, exp, exportable, a release policy. */
static bool
key_releasable(const struct clst_vault *v, const struct clst_vault_object *obj, char *why,
               size_t cap)
{
    int64_t now = clst_vault_now(v);
    char when[32] = "";
    if (!obj->attrs.enabled) {
        snprintf(why, cap, "key '%s' version %s is disabled", obj->name, obj->version);
        return false;
    }
    if (obj->attrs.nbf != 0 && now < obj->attrs.nbf) {
        (void)clst_time_format(obj->attrs.nbf, when, sizeof(when));
        snprintf(why, cap, "key '%s' version %s is not valid before %s", obj->name, obj->version,
                 when);
        return false;
    }
    if (obj->attrs.exp != 0 && now >= obj->attrs.exp) {
        (void)clst_time_format(obj->attrs.exp, when, sizeof(when));
        snprintf(why, cap, "key '%s' version %s expired at %s and can no longer be released",
                 obj->name, obj->version, when);
        return false;
    }
    if (!obj->attrs.exportable) {
        snprintf(why, cap,
                 "key '%.60s' is not exportable: only exportable keys (with a release policy) "
                 "can be released; unwrapkey/decrypt with a target send a TEE what a key protects",
                 obj->name);
        return false;
    }
    if (obj->release_policy == NULL) {
        snprintf(why, cap, "key '%s' version %s has no release policy", obj->name, obj->version);
        return false;
    }
    return true;
}

enum clst_status
clst_vault_release_reply_denied(struct clst_vault_rctx *rc, const struct clst_vault_release *r,
                                const struct clst_vault_release_eval *ev)
{
    char msg[1024];
    json_t *explain = clst_vault_release_explain(r, ev, false);
    clst_vault_release_message(r, ev, msg, sizeof(msg));
    json_t *body = json_pack("{s:{s:s,s:s,s:o*}}", "error", "code", CLST_HTTP_CODE_FORBIDDEN,
                             "message", msg, "denial", explain);
    clst_http_response_json_new(rc->resp, 403, body);
    return CLST_OK;
}

static enum clst_status
reply_dry_run(struct clst_vault_rctx *rc, struct clst_vault_release *r,
              const struct clst_vault_release_eval *ev)
{
    json_t *explain = clst_vault_release_explain(r, ev, true);
    if (explain != NULL && !put(explain, "dryRun", json_true())) {
        json_decref(explain);
        explain = NULL;
    }
    clst_http_response_json_new(rc->resp, 200, explain);
    return CLST_OK;
}

/*
 * The decision's facts for the audit log (server request notes, read by the audit observer):
 * the token's jti and SHA-256, never the token itself; the policy's hash; grant or deny. A note
 * the server refuses (a jti with control characters) is left out: the token hash still names
 * the token.
 */
static void
note_decision(const struct clst_http_request *req, const struct clst_vault_decision *d)
{
    const char *decision = d->allowed ? "grant" : "deny";
    if (d->dry_run) {
        decision = d->allowed ? "dry-run-grant" : "dry-run-deny";
    }
    (void)clst_http_request_note(req, "release.decision", decision);
    if (d->stage != NULL) {
        (void)clst_http_request_note(req, "release.stage", d->stage);
    }
    if (d->jti != NULL) {
        (void)clst_http_request_note(req, "release.jti", d->jti);
    }
    if (d->token_sha256 != NULL) {
        (void)clst_http_request_note(req, "release.token_sha256", d->token_sha256);
    }
    if (d->policy_hash != NULL) {
        (void)clst_http_request_note(req, "release.policy_sha256", d->policy_hash);
    }
}

static enum clst_status
h_release(void *ctx, const struct clst_http_request *req, struct clst_http_response *resp,
          struct clst_err *err)
{
    struct clst_vault_rctx rc;
    struct clst_vault_object obj;
    struct clst_vault_release_eval ev;
    struct clst_vault_decision d;
    struct release_body rb;
    struct clst_secret *material = NULL;
    struct clst_vault_release *r = NULL;
    json_t *body = NULL, *attrs = NULL, *tags = NULL;
    const char *name, *version;
    char kid[CLST_VAULT_ID_MAX];
    char *jws = NULL;
    bool dry = false, decided = false;
    unsigned ops = 0;
    enum clst_vault_keymat_type type = CLST_KEYMAT_NONE;
    enum clst_status st;

    memset(&obj, 0, sizeof(obj));
    memset(&d, 0, sizeof(d));
    clst_vault_release_eval_init(&ev);
    st = clst_vault_rctx_begin(ctx, req, resp, &rc, err);
    name = clst_http_request_param(req, "name");
    version = clst_http_request_param(req, "version");
    if (version == NULL) {
        version = "";
    }
    if (st == CLST_OK) {
        st = clst_vault_check_name(name, KIND, err);
    }
    if (st == CLST_OK) {
        st = clst_vault_check_version(version, KIND, err);
    }
    if (st == CLST_OK) {
        st = clst_vault_authorize(&rc, CLST_VAULT_PERM_KEY_RELEASE, KIND, name, err);
    }
    if (st == CLST_OK && (r = clst_vault_release_of(rc.vault)) == NULL) {
        st = clst_err_set(err, CLST_E_DENIED,
                          "secure key release is not enabled on this vault: it trusts no "
                          "attestation authority (see docs/key-release.md)");
    }
    if (st == CLST_OK) {
        st = dry_run_param(req, &dry, err);
    }
    if (st == CLST_OK) {
        st = clst_vault_body_json(&rc, &body, err);
    }
    if (st == CLST_OK) {
        st = parse_body(body, &rb, err);
    }
    if (st == CLST_OK) {
        /* Metadata only: the material is unsealed after the decision, and only for a grant. */
        st = clst_vault_store_get(rc.vault->store, KIND, name, version, &obj, NULL, err);
        if (st == CLST_E_NOTFOUND) {
            st = version[0] == '\0'
                     ? clst_err_set(err, CLST_E_NOTFOUND,
                                    "A key with (name/id) %s was not found "
                                    "in this key vault.",
                                    name)
                     : clst_err_set(err, CLST_E_NOTFOUND,
                                    "A key with (name/id) %s/%s was not found in this key vault.",
                                    name, version);
        }
    }
    if (st != CLST_OK) {
        goto out;
    }

    d.time = clst_vault_now(rc.vault);
    d.request_id = clst_http_request_id(req);
    d.principal = rc.principal != NULL ? rc.principal->id : NULL;
    d.operation = "release";
    d.dry_run = dry;
    d.key_name = obj.name;
    d.key_version = obj.version;
    d.enc = clst_vault_release_enc_name(rb.enc);
    decided = true;

    if (!key_releasable(rc.vault, &obj, ev.reason, sizeof(ev.reason))) {
        ev.stage = CLST_RELEASE_STAGE_KEY;
        st = CLST_E_DENIED;
    } else {
        clst_err_clear(err);
        st = clst_vault_release_evaluate(r, rb.target, rb.target_size, rb.nonce, obj.release_policy,
                                         &ev, err);
    }
    clst_vault_release_decision_from_eval(&ev, &d);
    if (st == CLST_E_IO) {
        /* No keys of the issuer could be had: the vault cannot decide now. */
        d.allowed = false;
        clst_http_response_error(resp, 503, CLST_HTTP_CODE_SERVICE_UNAVAILABLE, "%s", err->msg);
        st = CLST_OK;
        goto out;
    }
    if (st != CLST_OK && st != CLST_E_DENIED) {
        decided = false; /* an internal failure, not a decision */
        goto out;
    }
    if (dry) {
        st = reply_dry_run(&rc, r, &ev);
        goto out;
    }
    if (ev.stage != CLST_RELEASE_STAGE_NONE) {
        st = clst_vault_release_reply_denied(&rc, r, &ev);
        goto out;
    }

    /* Allowed: unseal the material of the version just decided on, and make sure that version
     * still has the policy and state the decision was made with (an update in between would
     * otherwise release under a policy that no longer holds). */
    {
        struct clst_vault_object again;
        memset(&again, 0, sizeof(again));
        st = clst_vault_store_get(rc.vault->store, KIND, obj.name, obj.version, &again, &material,
                                  err);
        if (st == CLST_OK &&
            (again.release_policy == NULL ||
             strcmp(again.release_policy, obj.release_policy) != 0 || !again.attrs.exportable ||
             !again.attrs.enabled || strcmp(again.kty, obj.kty) != 0)) {
            st = clst_err_set(err, CLST_E_CONFLICT,
                              "key '%s' version %s changed while its release was decided; retry",
                              obj.name, obj.version);
        } else if (st == CLST_E_NOTFOUND) {
            st = clst_err_set(err, CLST_E_CONFLICT,
                              "key '%s' version %s was deleted while its release was decided",
                              obj.name, obj.version);
        }
        clst_vault_object_cleanup(&again);
        if (st == CLST_E_CONFLICT) {
            d.allowed = false;
            d.stage = "key";
            d.reason = "the key changed while its release was decided";
        } else if (st != CLST_OK) {
            decided = false;
        }
        if (st != CLST_OK) {
            goto out;
        }
    }
    if (clst_vault_keymat_kty_parse(obj.kty, &type, NULL) != CLST_OK) {
        st = clst_err_set(err, CLST_E_VERIFY, "key '%s' has an unknown stored kty", obj.name);
    }
    if (st == CLST_OK) {
        st = clst_vault_keymat_ops_from_text(obj.key_ops, clst_vault_keymat_ops_default(type), &ops,
                                             err);
    }
    if (st == CLST_OK &&
        clst_vault_object_id(&rc, KIND, obj.name, obj.version, kid, sizeof(kid)) != CLST_OK) {
        st = clst_err_set(err, CLST_E_INTERNAL, "the key id does not fit");
    }
    if (st == CLST_OK) {
        attrs = clst_vault_attrs_to_json(&obj.attrs, KIND);
        tags = clst_vault_tags_to_json(obj.tags);
        if (attrs == NULL) {
            st = clst_err_set(err, CLST_E_NOMEM, "out of memory");
        }
    }
    if (st == CLST_OK) {
        struct clst_vault_release_key key = {
            .kid = kid,
            .kty = obj.kty,
            .key_ops = ops,
            .public_data = obj.public_data,
            .public_size = obj.public_size,
            .material = material->ptr,
            .material_size = material->size,
            .attributes = attrs,
            .tags = tags,
            .policy_text = obj.release_policy,
            .policy_immutable = obj.policy_immutable,
        };
        st = clst_vault_release_sign(r, &key, &ev, rb.enc, rc.api_version, rb.nonce, &jws, err);
    }
    if (st != CLST_OK) {
        decided = false;
        goto out;
    }
    clst_http_response_json_new(resp, 200, json_pack("{s:s}", "value", jws));
out:
    if (st != CLST_OK) {
        st = clst_vault_reply_err(&rc, KIND, err);
    }
    if (decided && r != NULL) {
        note_decision(req, &d);
        clst_vault_release_record(r, &d);
    }
    free(jws);
    json_decref(attrs);
    json_decref(tags);
    json_decref(body);
    clst_secret_free(material);
    clst_vault_object_cleanup(&obj);
    clst_vault_release_eval_cleanup(&ev);
    return st;
}

static const struct clst_vault_route ROUTES[] = {
    {CLST_HTTP_POST, "/keys/{name}/release", h_release},
    {CLST_HTTP_POST, "/keys/{name}/{version}/release", h_release},
};

enum clst_status
clst_vault_rest_release_register(struct clst_vault *v, struct clst_server *server,
                                 struct clst_err *err)
{
    if (v == NULL || server == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "release routes: vault and server required");
    }
    return clst_vault_routes_add(v, server, ROUTES, sizeof(ROUTES) / sizeof(ROUTES[0]), err);
}
