/*
 * The attestation service's REST API on the server's route table (docs/attestation.md), shaped
 * like the cloud attestation service's data plane so that its SDK's getAttestationSigners,
 * getOpenIdMetadata and token validation work unchanged, and its administration client's
 * getPolicy/setPolicy/resetPolicy too.
 *
 * Public routes: attestation, challenges, /certs, OpenID metadata. Administrator routes (policy,
 * reference values) are CLST_ROUTE_PROTECTED: the server's authentication hook (the vault's
 * bearer tokens) authenticates the caller, and require_admin() checks for the vault role
 * Administrator at scope "/".
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include <cloister/vault_store.h>

#include "attest_int.h"

#define CODE_POLICY_DENIED "PolicyEvaluationError"
#define ADMIN_ROLE         "Administrator"

static const char *const api_versions[] = {"2018-09-01-preview", "2020-10-01", "2022-08-01",
                                           "2022-09-01-preview", "2023-04-01-preview",
                                           "2025-06-01"};

static enum clst_status
check_api_version(const struct clst_http_request *req, struct clst_err *err)
{
    const char *v = clst_http_request_api_version(req);
    if (v != NULL) {
        for (size_t i = 0; i < sizeof(api_versions) / sizeof(api_versions[0]); i++) {
            if (strcmp(v, api_versions[i]) == 0) {
                return CLST_OK;
            }
        }
    }
    return clst_err_set(err, CLST_E_INVAL,
                        "%s api-version; use api-version=%s (also accepted: 2020-10-01, "
                        "2022-09-01-preview, 2023-04-01-preview, 2025-06-01)",
                        v == NULL ? "missing" : "unsupported", CLST_ATTEST_API_VERSION_LATEST);
}

/* The issuer for this request: the configured one, else "https://" + Host. */
static enum clst_status
request_issuer(struct clst_attest *a, const struct clst_http_request *req,
               char out[static CLST_ATTEST_MAX_ISSUER_SIZE + 1], struct clst_err *err)
{
    pthread_mutex_lock(&a->issuer_lock);
    snprintf(out, CLST_ATTEST_MAX_ISSUER_SIZE + 1, "%s", a->issuer);
    pthread_mutex_unlock(&a->issuer_lock);
    if (out[0] != '\0') {
        return CLST_OK;
    }
    const char *host = clst_http_request_header(req, "Host");
    if (host == NULL || strlen(host) > CLST_ATTEST_MAX_ISSUER_SIZE - 8) {
        return clst_err_set(err, CLST_E_INVAL, "the request has no usable Host header");
    }
    char iss[CLST_ATTEST_MAX_ISSUER_SIZE + 1];
    snprintf(iss, sizeof(iss), "https://%s", host);
    if (attest_issuer_check(iss, err) != CLST_OK) {
        return clst_err_set(err, CLST_E_INVAL, "the Host header is not a valid host[:port]");
    }
    memcpy(out, iss, strlen(iss) + 1);
    return CLST_OK;
}

static enum clst_status
require_admin(const struct clst_http_request *req, struct clst_err *err)
{
    const struct clst_vault_principal *p = clst_http_request_principal(req);
    if (p == NULL) {
        return clst_err_set(err, CLST_E_DENIED, "this operation needs an authenticated "
                                                "Administrator");
    }
    for (size_t i = 0; i < p->role_count; i++) {
        if (strcmp(p->roles[i].role, ADMIN_ROLE) == 0 && strcmp(p->roles[i].scope, "/") == 0) {
            return CLST_OK;
        }
    }
    return clst_err_set(err, CLST_E_DENIED,
                        "principal '%s' may not manage the attestation service; that needs the "
                        "role Administrator assigned at /",
                        p->id);
}

/* What every administrator route checks first, in this order: the api-version, then the caller's
 * Administrator role. */
static enum clst_status
admin_check(const struct clst_http_request *req, struct clst_err *err)
{
    enum clst_status rc = check_api_version(req, err);
    return rc == CLST_OK ? require_admin(req, err) : rc;
}

static enum clst_status
find_type(const char *name, const struct clst_attest_type **out, struct clst_err *err)
{
    return clst_attest_type_find(name, out, err);
}

/* ---- attestation ----------------------------------------------------------------------------- */

static enum clst_status
h_attest(void *ctx, const struct clst_http_request *req, struct clst_http_response *resp,
         struct clst_err *err)
{
    struct clst_attest *a = ctx;
    enum clst_status rc;
    const struct clst_attest_type *type;
    struct clst_attest_request r;
    char iss[CLST_ATTEST_MAX_ISSUER_SIZE + 1];
    char *token = NULL;
    json_t *denial = NULL;
    memset(&r, 0, sizeof(r));

    if ((rc = check_api_version(req, err)) != CLST_OK) {
        return rc;
    }
    const char *tname = clst_http_request_param(req, "type");
    if ((rc = find_type(tname, &type, err)) != CLST_OK) {
        return rc;
    }
    if (strcmp(tname, type->name) != 0) {
        return clst_err_set(err, CLST_E_NOTFOUND, "unknown attestation type '%s'; did you mean "
                                                  "%s?",
                            tname, type->name);
    }
    size_t size;
    const uint8_t *body = clst_http_request_body(req, &size);
    if ((rc = request_issuer(a, req, iss, err)) != CLST_OK ||
        (rc = clst_attest_request_parse(type, (const char *)body, size, &r, err)) != CLST_OK) {
        goto out;
    }
    rc = clst_attest_evaluate(a, &r, iss, &token, NULL, &denial, err);
    if (rc == CLST_E_DENIED) {
        json_t *body_json = json_pack("{s:{s:s, s:s, s:O*}}", "error", "code", CODE_POLICY_DENIED,
                                      "message", err->msg, "denial", denial);
        clst_http_response_json_new(resp, 400, body_json);
        rc = CLST_OK;
        goto out;
    }
    if (rc == CLST_E_NOTFOUND) {
        rc = CLST_E_INVAL; /* a known type without a verifier: the request is what is wrong */
    }
    if (rc == CLST_OK) {
        clst_http_response_json_new(resp, 200, json_pack("{s:s}", "token", token));
    }
out:
    clst_attest_request_cleanup(&r);
    json_decref(denial);
    free(token);
    return rc;
}

static enum clst_status
h_challenge(void *ctx, const struct clst_http_request *req, struct clst_http_response *resp,
            struct clst_err *err)
{
    struct clst_attest *a = ctx;
    char nonce[CLST_ATTEST_NONCE_TEXT_SIZE];
    char when[32];
    int64_t expires;
    enum clst_status rc = check_api_version(req, err);
    if (rc != CLST_OK) {
        return rc;
    }
    rc = clst_attest_challenge_new(a, nonce, &expires, err);
    if (rc == CLST_E_LIMIT) {
        clst_http_response_error(resp, 503, CLST_HTTP_CODE_SERVICE_UNAVAILABLE, "%s", err->msg);
        (void)clst_http_response_header(resp, "Retry-After", "60");
        return CLST_OK;
    }
    if (rc != CLST_OK) {
        return rc;
    }
    if ((rc = clst_time_format(expires, when, sizeof(when))) != CLST_OK) {
        return clst_err_set(err, rc, "cannot format a time");
    }
    clst_http_response_json_new(resp, 200,
                                json_pack("{s:s, s:s, s:I}", "nonce", nonce, "expiresAt", when,
                                          "expiresOn", (json_int_t)expires));
    (void)clst_http_response_header(resp, "Cache-Control", "no-store");
    return CLST_OK;
}

static enum clst_status
h_certs(void *ctx, const struct clst_http_request *req, struct clst_http_response *resp,
        struct clst_err *err)
{
    (void)req;
    json_t *jwks = NULL;
    enum clst_status rc = clst_attest_jwks(ctx, &jwks, err);
    if (rc == CLST_OK) {
        clst_http_response_json_new(resp, 200, jwks);
        (void)clst_http_response_header(resp, "Cache-Control", "max-age=300");
    }
    return rc;
}

static enum clst_status
h_openid(void *ctx, const struct clst_http_request *req, struct clst_http_response *resp,
         struct clst_err *err)
{
    char iss[CLST_ATTEST_MAX_ISSUER_SIZE + 1];
    json_t *doc = NULL;
    enum clst_status rc = request_issuer(ctx, req, iss, err);
    if (rc == CLST_OK && (rc = clst_attest_openid_config(ctx, iss, &doc, err)) == CLST_OK) {
        clst_http_response_json_new(resp, 200, doc);
    }
    return rc;
}

/* ---- policies (the cloud's /policies/{type} shape) ------------------------------------------- */

static enum clst_status
b64url_str(const void *data, size_t size, struct clst_buf *out)
{
    enum clst_status rc = clst_b64url_encode(data, size, out);
    return rc == CLST_OK ? clst_buf_terminate(out) : rc;
}

/* An unsecured JWS {"alg":"none"}.{"AttestationPolicy": b64url(text)}. as the cloud stores it. */
static enum clst_status
stored_policy_jws(const char *text, struct clst_buf *out)
{
    enum clst_status rc;
    struct clst_buf inner, payload;
    clst_buf_init(&inner, 4 * CLST_POLICY_MAX_SIZE);
    clst_buf_init(&payload, 8 * CLST_POLICY_MAX_SIZE);
    char *json = NULL;
    if ((rc = b64url_str(text, strlen(text), &inner)) != CLST_OK) {
        goto out;
    }
    json_t *obj = json_pack("{s:s}", "AttestationPolicy", (const char *)inner.data);
    json = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
    if (json == NULL) {
        rc = CLST_E_NOMEM;
        goto out;
    }
    static const char hdr[] = "{\"alg\":\"none\"}";
    if ((rc = b64url_str(hdr, sizeof(hdr) - 1, out)) != CLST_OK ||
        (rc = clst_buf_append_byte(out, '.')) != CLST_OK ||
        (rc = b64url_str(json, strlen(json), &payload)) != CLST_OK ||
        (rc = clst_buf_append(out, payload.data, payload.size)) != CLST_OK ||
        (rc = clst_buf_append_byte(out, '.')) != CLST_OK) {
        goto out;
    }
    rc = clst_buf_terminate(out);
out:
    free(json);
    clst_buf_cleanup(&inner);
    clst_buf_cleanup(&payload);
    return rc;
}

/* Signs a policy result token {claims..., iss, iat, nbf, exp, jti} and answers {"token"}. */
static enum clst_status
reply_policy_token(struct clst_attest *a, const struct clst_http_request *req,
                   struct clst_http_response *resp, json_t *claims, struct clst_err *err)
{
    char iss[CLST_ATTEST_MAX_ISSUER_SIZE + 1];
    char *token = NULL;
    uint8_t jti_raw[16];
    char jti[33];
    int64_t now = attest_now(a);
    enum clst_status rc = request_issuer(a, req, iss, err);
    if (rc != CLST_OK) {
        return rc;
    }
    if (clst_random(jti_raw, sizeof(jti_raw)) != CLST_OK ||
        clst_hex_to_str(jti_raw, sizeof(jti_raw), jti, sizeof(jti)) != CLST_OK ||
        json_object_set_new(claims, "iss", json_string(iss)) != 0 ||
        json_object_set_new(claims, "iat", json_integer(now)) != 0 ||
        json_object_set_new(claims, "nbf", json_integer(now)) != 0 ||
        json_object_set_new(claims, "exp", json_integer(now + a->token_lifetime)) != 0 ||
        json_object_set_new(claims, "jti", json_string(jti)) != 0) {
        return clst_err_set(err, CLST_E_NOMEM, "out of memory");
    }
    if ((rc = attest_sign(a, iss, claims, &token, err)) != CLST_OK) {
        return rc;
    }
    clst_http_response_json_new(resp, 200, json_pack("{s:s}", "token", token));
    free(token);
    return CLST_OK;
}

static enum clst_status
policy_result(struct clst_attest *a, const struct clst_attest_type *type, const char *result,
              const char *sent, size_t sent_size, json_t **out, struct clst_err *err)
{
    json_t *policy = NULL, *effective = NULL;
    char *hash = NULL;
    char *text = NULL;
    bool is_default = false;
    uint8_t h[CLST_SHA256_SIZE];
    struct clst_buf jws, th;
    clst_buf_init(&jws, 16 * CLST_POLICY_MAX_SIZE);
    clst_buf_init(&th, 64);
    enum clst_status rc;
    if ((rc = clst_attest_policy_get(a, type, &policy, &is_default, err)) != CLST_OK ||
        (rc = clst_attest_policy_effective(a, type, &effective, &hash, err)) != CLST_OK) {
        goto out;
    }
    text = json_dumps(policy, JSON_COMPACT | JSON_SORT_KEYS);
    if (text == NULL || stored_policy_jws(text, &jws) != CLST_OK) {
        rc = clst_err_set(err, CLST_E_NOMEM, "out of memory");
        goto out;
    }
    /* x-ms-policy-token-hash: of the JWS the administrator sent, or of the stored one. */
    if (sent == NULL) {
        sent = (const char *)jws.data;
        sent_size = jws.size;
    }
    if (clst_sha256(sent, sent_size, h) != CLST_OK || b64url_str(h, sizeof(h), &th) != CLST_OK) {
        rc = clst_err_set(err, CLST_E_NOMEM, "out of memory");
        goto out;
    }
    json_t *claims = json_pack("{s:s, s:s, s:s, s:O, s:b, s:O, s:s}", "x-ms-policy-result",
                               result, "x-ms-policy-token-hash", (const char *)th.data,
                               "x-ms-policy", (const char *)jws.data, "x-cloister-policy",
                               policy, "x-cloister-policy-default", is_default,
                               "x-cloister-policy-effective", effective,
                               CLST_ATTEST_CLAIM_POLICY_HASH, hash);
    if (claims == NULL) {
        rc = clst_err_set(err, CLST_E_NOMEM, "out of memory");
        goto out;
    }
    *out = claims;
    rc = CLST_OK;
out:
    json_decref(policy);
    json_decref(effective);
    free(hash);
    free(text);
    clst_buf_cleanup(&jws);
    clst_buf_cleanup(&th);
    return rc;
}

/* "SimEnclave" or "SimEnclave:reset" → the type and whether ":reset" was there. */
static enum clst_status
policy_type(const struct clst_http_request *req, const struct clst_attest_type **out,
            bool *out_reset, struct clst_err *err)
{
    const char *p = clst_http_request_param(req, "type");
    char name[48];
    const char *colon = p ? strchr(p, ':') : NULL;
    *out_reset = false;
    if (colon != NULL) {
        if (strcmp(colon, ":reset") != 0 || (size_t)(colon - p) >= sizeof(name)) {
            return clst_err_set(err, CLST_E_NOTFOUND, "unknown policy operation");
        }
        memcpy(name, p, (size_t)(colon - p));
        name[colon - p] = '\0';
        *out_reset = true;
        p = name;
    }
    enum clst_status rc = find_type(p, out, err);
    if (rc == CLST_OK && strcmp(p, (*out)->name) != 0) {
        return clst_err_set(err, CLST_E_NOTFOUND, "unknown attestation type; did you mean %s?",
                            (*out)->name);
    }
    return rc;
}

/* Answers a change of the policy of `type`: the policy_result() claims (result, sent) as a signed
 * token (reply_policy_token()). */
static enum clst_status
reply_policy_change(struct clst_attest *a, const struct clst_http_request *req,
                    struct clst_http_response *resp, const struct clst_attest_type *type,
                    const char *result, const char *sent, size_t sent_size, struct clst_err *err)
{
    json_t *claims = NULL;
    enum clst_status rc = policy_result(a, type, result, sent, sent_size, &claims, err);
    if (rc == CLST_OK) {
        rc = reply_policy_token(a, req, resp, claims, err);
    }
    json_decref(claims);
    return rc;
}

/* The checks of the /policies/{type} routes: admin_check(), then the type (policy_type()). */
static enum clst_status
policy_request(const struct clst_http_request *req, const struct clst_attest_type **out,
               bool *out_reset, struct clst_err *err)
{
    enum clst_status rc = admin_check(req, err);
    return rc == CLST_OK ? policy_type(req, out, out_reset, err) : rc;
}

static enum clst_status
h_policy_get(void *ctx, const struct clst_http_request *req, struct clst_http_response *resp,
             struct clst_err *err)
{
    const struct clst_attest_type *type;
    bool reset;
    json_t *claims = NULL;
    enum clst_status rc;
    if ((rc = policy_request(req, &type, &reset, err)) != CLST_OK) {
        return rc;
    }
    if (reset) {
        return clst_err_set(err, CLST_E_NOTFOUND, ":reset takes POST");
    }
    if ((rc = policy_result(ctx, type, "Updated", NULL, 0, &claims, err)) == CLST_OK) {
        /* A get reports no change. */
        json_object_del(claims, "x-ms-policy-result");
        rc = reply_policy_token(ctx, req, resp, claims, err);
    }
    json_decref(claims);
    return rc;
}

/*
 * The new policy from a PUT body: the policy JSON itself, or (the cloud's form) an unsecured JWS
 * whose payload is {"AttestationPolicy": base64url(policy text)}. Signed policy JWSs would need a
 * policy-signer trust list, which this service does not have: they are refused, and the bearer
 * token's Administrator role is what authorizes the change.
 */
static enum clst_status
policy_from_body(const char *body, size_t size, struct clst_buf *out, struct clst_err *err)
{
    enum clst_status rc;
    size_t i = 0;
    while (i < size && (body[i] == ' ' || body[i] == '\n' || body[i] == '\r' || body[i] == '\t')) {
        i++;
    }
    if (i < size && body[i] == '{') {
        return clst_buf_append(out, body, size);
    }
    const char *d1 = memchr(body, '.', size);
    const char *d2 = d1 ? memchr(d1 + 1, '.', size - (size_t)(d1 + 1 - body)) : NULL;
    if (d1 == NULL || d2 == NULL || memchr(d2 + 1, '.', size - (size_t)(d2 + 1 - body)) != NULL) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "the body must be the policy JSON or a JWS {\"AttestationPolicy\": "
                            "base64url(policy)}");
    }
    json_t *hdr = NULL, *payload = NULL;
    struct clst_buf hb, pb;
    clst_buf_init(&hb, 4096);
    clst_buf_init(&pb, 4 * CLST_POLICY_MAX_SIZE);
    rc = CLST_E_MALFORMED;
    if (clst_b64url_decode(body, (size_t)(d1 - body), &hb) != CLST_OK ||
        clst_b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), &pb) != CLST_OK) {
        rc = clst_err_set(err, CLST_E_MALFORMED, "the policy JWS is not base64url");
        goto out;
    }
    hdr = json_loadb(hb.size ? (const char *)hb.data : "", hb.size, JSON_REJECT_DUPLICATES, NULL);
    payload = json_loadb(pb.size ? (const char *)pb.data : "", pb.size, JSON_REJECT_DUPLICATES,
                         NULL);
    const char *alg = json_string_value(json_object_get(hdr, "alg"));
    if (alg == NULL || strcmp(alg, "none") != 0) {
        rc = clst_err_set(err, CLST_E_MALFORMED,
                          "signed policy tokens are not supported (no policy signers are "
                          "configured): send an unsecured JWS (alg none) or the policy JSON; the "
                          "Administrator bearer token authorizes the change");
        goto out;
    }
    if (d2 + 1 != body + size) {
        rc = clst_err_set(err, CLST_E_MALFORMED, "an unsecured JWS has an empty signature");
        goto out;
    }
    const char *pol = json_string_value(json_object_get(payload, "AttestationPolicy"));
    if (!json_is_object(payload) || pol == NULL || json_object_size(payload) != 1) {
        rc = clst_err_set(err, CLST_E_MALFORMED,
                          "the policy JWS payload must be {\"AttestationPolicy\": "
                          "base64url(policy)}");
        goto out;
    }
    if (clst_b64url_decode(pol, strlen(pol), out) != CLST_OK) {
        rc = clst_err_set(err, CLST_E_MALFORMED, "AttestationPolicy is not base64url");
        goto out;
    }
    rc = CLST_OK;
out:
    json_decref(hdr);
    json_decref(payload);
    clst_buf_cleanup(&hb);
    clst_buf_cleanup(&pb);
    return rc;
}

static enum clst_status
h_policy_put(void *ctx, const struct clst_http_request *req, struct clst_http_response *resp,
             struct clst_err *err)
{
    const struct clst_attest_type *type;
    bool reset;
    struct clst_buf text;
    clst_buf_init(&text, CLST_POLICY_MAX_SIZE);
    enum clst_status rc;
    if ((rc = policy_request(req, &type, &reset, err)) != CLST_OK) {
        goto out;
    }
    if (reset) {
        rc = clst_err_set(err, CLST_E_NOTFOUND, ":reset takes POST");
        goto out;
    }
    size_t size;
    const uint8_t *body = clst_http_request_body(req, &size);
    if ((rc = policy_from_body((const char *)body, size, &text, err)) != CLST_OK) {
        if (rc == CLST_E_LIMIT) {
            clst_err_set(err, CLST_E_LIMIT, "the policy is larger than %d bytes",
                         CLST_POLICY_MAX_SIZE);
        }
        goto out;
    }
    if ((rc = clst_attest_policy_set(ctx, type, (const char *)text.data, text.size, err)) !=
        CLST_OK) {
        goto out;
    }
    rc = reply_policy_change(ctx, req, resp, type, "Updated", (const char *)body, size, err);
out:
    clst_buf_cleanup(&text);
    return rc;
}

static enum clst_status
h_policy_reset(void *ctx, const struct clst_http_request *req, struct clst_http_response *resp,
               struct clst_err *err)
{
    const struct clst_attest_type *type;
    bool reset;
    enum clst_status rc;
    if ((rc = policy_request(req, &type, &reset, err)) != CLST_OK) {
        return rc;
    }
    if (!reset) {
        return clst_err_set(err, CLST_E_NOTFOUND,
                            "POST /policies/%s:reset resets the policy; PUT sets it", type->name);
    }
    size_t size;
    const uint8_t *body = clst_http_request_body(req, &size);
    if ((rc = clst_attest_policy_reset(ctx, type, err)) != CLST_OK) {
        return rc;
    }
    return reply_policy_change(ctx, req, resp, type, "Removed", size ? (const char *)body : NULL,
                               size, err);
}

/* ---- reference values ------------------------------------------------------------------------ */

static enum clst_status
refval_type(const struct clst_http_request *req, const struct clst_attest_type **out,
            struct clst_err *err)
{
    enum clst_status rc = admin_check(req, err);
    if (rc != CLST_OK) {
        return rc;
    }
    return find_type(clst_http_request_param(req, "type"), out, err);
}

static enum clst_status
reply_refvals(struct clst_attest *a, const struct clst_attest_type *type,
              struct clst_http_response *resp, unsigned status, struct clst_err *err)
{
    json_t *list = NULL;
    char *hash = NULL;
    enum clst_status rc;
    if ((rc = clst_attest_refval_list(a, type, &list, err)) != CLST_OK ||
        (rc = clst_attest_policy_effective(a, type, NULL, &hash, err)) != CLST_OK) {
        json_decref(list);
        return rc;
    }
    clst_http_response_json_new(resp, status,
                                json_pack("{s:s, s:s, s:o, s:s}", "type", type->name,
                                          "measurementClaim", type->measurement_claim, "value",
                                          list, "policyHash", hash));
    free(hash);
    return CLST_OK;
}

static enum clst_status
h_refval_list(void *ctx, const struct clst_http_request *req, struct clst_http_response *resp,
              struct clst_err *err)
{
    const struct clst_attest_type *type;
    enum clst_status rc = refval_type(req, &type, err);
    return rc == CLST_OK ? reply_refvals(ctx, type, resp, 200, err) : rc;
}

static enum clst_status
h_refval_add(void *ctx, const struct clst_http_request *req, struct clst_http_response *resp,
             struct clst_err *err)
{
    const struct clst_attest_type *type;
    json_t *body = NULL;
    enum clst_status rc = refval_type(req, &type, err);
    if (rc != CLST_OK || (rc = clst_http_request_json(req, &body, err)) != CLST_OK) {
        return rc;
    }
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v) {
        if (strcmp(key, "claim") != 0 && strcmp(key, "value") != 0 && strcmp(key, "note") != 0) {
            json_decref(body);
            return clst_err_set(err, CLST_E_INVAL,
                                "unknown member in the body (expected claim, value, note)");
        }
    }
    const json_t *jc = json_object_get(body, "claim");
    const json_t *jv = json_object_get(body, "value");
    const json_t *jn = json_object_get(body, "note");
    if (!json_is_string(jv) || (jc != NULL && !json_is_string(jc)) ||
        (jn != NULL && !json_is_string(jn))) {
        json_decref(body);
        return clst_err_set(err, CLST_E_INVAL,
                            "the body is {\"value\": string, \"claim\"?: string, \"note\"?: "
                            "string}");
    }
    rc = clst_attest_refval_add(ctx, type, json_string_value(jc), json_string_value(jv),
                                json_string_value(jn), err);
    json_decref(body);
    return rc == CLST_OK ? reply_refvals(ctx, type, resp, 201, err) : rc;
}

static enum clst_status
h_refval_remove(void *ctx, const struct clst_http_request *req, struct clst_http_response *resp,
                struct clst_err *err)
{
    const struct clst_attest_type *type;
    enum clst_status rc = refval_type(req, &type, err);
    if (rc != CLST_OK) {
        return rc;
    }
    const char *value = clst_http_request_query(req, "value");
    if (value == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "name the reference value: ?value=…[&claim=…]");
    }
    rc = clst_attest_refval_remove(ctx, type, clst_http_request_query(req, "claim"), value, err);
    return rc == CLST_OK ? reply_refvals(ctx, type, resp, 200, err) : rc;
}

/* ---- registration ---------------------------------------------------------------------------- */

static enum clst_status
add_routes(const struct clst_server_route *routes, size_t count, struct clst_server *server,
           struct clst_err *err)
{
    for (size_t i = 0; i < count; i++) {
        enum clst_status rc = clst_server_route_add(server, &routes[i], err);
        if (rc != CLST_OK) {
            return clst_err_prefix(err, "registering %s %s",
                                   clst_http_method_name(routes[i].method), routes[i].pattern);
        }
    }
    return CLST_OK;
}

enum clst_status
clst_attest_register(struct clst_attest *a, struct clst_server *server, struct clst_err *err)
{
    const struct clst_server_route routes[] = {
        {CLST_HTTP_POST, "/attest/challenge", 0, h_challenge, a},
        {CLST_HTTP_POST, "/attest/{type}", 0, h_attest, a},
        {CLST_HTTP_GET, "/certs", 0, h_certs, a},
        {CLST_HTTP_GET, "/.well-known/openid-configuration", 0, h_openid, a},
    };
    if (a == NULL || server == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "clst_attest_register: NULL argument");
    }
    return add_routes(routes, sizeof(routes) / sizeof(routes[0]), server, err);
}

enum clst_status
clst_attest_register_admin(struct clst_attest *a, struct clst_server *server,
                           struct clst_err *err)
{
    const struct clst_server_route routes[] = {
        {CLST_HTTP_GET, "/policies/{type}", CLST_ROUTE_PROTECTED, h_policy_get, a},
        {CLST_HTTP_PUT, "/policies/{type}", CLST_ROUTE_PROTECTED, h_policy_put, a},
        {CLST_HTTP_POST, "/policies/{type}", CLST_ROUTE_PROTECTED, h_policy_reset, a},
        {CLST_HTTP_GET, "/attest/refvals/{type}", CLST_ROUTE_PROTECTED, h_refval_list, a},
        {CLST_HTTP_POST, "/attest/refvals/{type}", CLST_ROUTE_PROTECTED, h_refval_add, a},
        {CLST_HTTP_DELETE, "/attest/refvals/{type}", CLST_ROUTE_PROTECTED, h_refval_remove, a},
    };
    if (a == NULL || server == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "clst_attest_register_admin: NULL argument");
    }
    return add_routes(routes, sizeof(routes) / sizeof(routes[0]), server, err);
}
