/*
 * What every vault REST handler shares: the request context, api-version and name checks, typed
 * JSON member access, attributes and tags in the cloud vault's shapes, ids, paging links, the
 * listings and soft-delete handlers of keys and secrets, and the mapping of statuses to the cloud
 * vault's error responses. See rest_int.h.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "rest_int.h"

/* The api-versions the vault answers to (what the SDKs send: see docs/vault.md). */
static const char *const API_VERSIONS[] = {
    "7.0", "7.1", "7.2", "7.3", "7.4", "7.5", "7.6", "7.6-preview.1", "7.6-preview.2",
    CLST_VAULT_API_VERSION_LATEST,
};

/* The largest Unix time the cloud vault's date members accept (9999-12-31T23:59:59Z). */
#define TIME_MAX INT64_C(253402300799)

/* Copies at most 40 characters of untrusted text for a message, replacing anything outside
 * [0-9A-Za-z._-] with '?', and marking a cut with "...". Names echoed this way cannot inject
 * quotes, control characters or invalid UTF-8 into an error body or a log line. */
static const char *
sanitize(const char *in, char *out, size_t cap)
{
    size_t i = 0;
    size_t j = 0;
    if (in == NULL) {
        snprintf(out, cap, "(none)");
        return out;
    }
    for (; in[i] != '\0' && j + 4 < cap && i < 40; i++) {
        char c = in[i];
        bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  c == '-' || c == '.' || c == '_';
        out[j++] = ok ? c : '?';
    }
    if (in[i] != '\0' && j + 4 <= cap) {
        memcpy(out + j, "...", 3);
        j += 3;
    }
    out[j] = '\0';
    return out;
}

/* ---- api-version and the request context ---------------------------------------------------- */

enum clst_status
clst_vault_api_version_check(const struct clst_http_request *req, struct clst_err *err)
{
    const char *v = clst_http_request_api_version(req);
    if (v == NULL || v[0] == '\0') {
        return clst_err_set(err, CLST_E_INVAL,
                            "the api-version query parameter is missing; add "
                            "?api-version=%s",
                            CLST_VAULT_API_VERSION_LATEST);
    }
    for (size_t i = 0; i < sizeof API_VERSIONS / sizeof API_VERSIONS[0]; i++) {
        if (strcmp(v, API_VERSIONS[i]) == 0) {
            return CLST_OK;
        }
    }
    return clst_err_set(err, CLST_E_INVAL,
                        "this api-version is not supported; use %s (or 7.0 to 7.6, "
                        "7.6-preview.2)",
                        CLST_VAULT_API_VERSION_LATEST);
}

/* A Host header is used in ids only when it looks like a host: a DNS name, an IPv4 address or a
 * bracketed IPv6 address, optionally with a port. */
static bool
host_ok(const char *h)
{
    size_t n = strlen(h);
    if (n == 0 || n > CLST_VAULT_BASE_URL_MAX - 8) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = h[i];
        bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  c == '-' || c == '.' || c == ':' || c == '[' || c == ']';
        if (!ok) {
            return false;
        }
    }
    return true;
}

static enum clst_status
begin(void *ctx, const struct clst_http_request *req, struct clst_http_response *resp,
      struct clst_vault_rctx *rc, bool api_required, struct clst_err *err)
{
    memset(rc, 0, sizeof *rc);
    rc->vault = ctx;
    rc->req = req;
    rc->resp = resp;
    rc->principal = clst_http_request_principal(req);
    rc->api_version = clst_http_request_api_version(req);
    if (rc->vault == NULL || rc->principal == NULL) {
        return clst_err_set(err, CLST_E_INTERNAL, "vault route without a vault or a principal");
    }
    if (rc->vault->base_url[0] != '\0') {
        memcpy(rc->base, rc->vault->base_url, sizeof rc->base);
    } else {
        const char *host = clst_http_request_header(req, "Host");
        if (host == NULL || !host_ok(host)) {
            snprintf(rc->base, sizeof rc->base, "https://localhost");
            return clst_err_set(err, CLST_E_INVAL,
                                "the Host header is missing or malformed; send the vault's "
                                "host name or address (and port)");
        }
        int n = snprintf(rc->base, sizeof rc->base, "https://%s", host);
        if (n < 0 || (size_t)n >= sizeof rc->base) {
            return clst_err_set(err, CLST_E_INVAL, "the Host header is too long");
        }
    }
    if (api_required || (rc->api_version != NULL && rc->api_version[0] != '\0')) {
        enum clst_status st = clst_vault_api_version_check(req, err);
        if (st != CLST_OK) {
            return st;
        }
    }
    if (rc->api_version == NULL || rc->api_version[0] == '\0') {
        rc->api_version = CLST_VAULT_API_VERSION_LATEST;
    }
    return CLST_OK;
}

enum clst_status
clst_vault_rctx_begin(void *ctx, const struct clst_http_request *req,
                      struct clst_http_response *resp, struct clst_vault_rctx *rc,
                      struct clst_err *err)
{
    return begin(ctx, req, resp, rc, true, err);
}

enum clst_status
clst_vault_rctx_begin_cloister(void *ctx, const struct clst_http_request *req,
                               struct clst_http_response *resp, struct clst_vault_rctx *rc,
                               struct clst_err *err)
{
    return begin(ctx, req, resp, rc, false, err);
}

enum clst_status
clst_vault_rctx_start(void *ctx, const struct clst_http_request *req,
                      struct clst_http_response *resp, struct clst_vault_rctx *rc,
                      enum clst_vault_kind kind, enum clst_vault_perm perm, bool named,
                      const char **out_name, struct clst_err *err)
{
    enum clst_status st = clst_vault_rctx_begin(ctx, req, resp, rc, err);
    const char *name = NULL;
    if (st == CLST_OK && named) {
        name = clst_http_request_param(req, "name");
        st = clst_vault_check_name(name, kind, err);
    }
    if (st == CLST_OK) {
        st = clst_vault_authorize(rc, perm, named ? kind : (enum clst_vault_kind)0, name, err);
    }
    if (out_name != NULL) {
        *out_name = name;
    }
    return st;
}

/* ---- names and versions --------------------------------------------------------------------- */

enum clst_status
clst_vault_check_name(const char *name, enum clst_vault_kind kind, struct clst_err *err)
{
    char shown[48];
    if (name == NULL || name[0] == '\0') {
        return clst_err_set(err, CLST_E_INVAL,
                            "the %s name is empty; use 1-127 characters of 0-9, a-z, A-Z and '-'",
                            clst_vault_kind_name(kind));
    }
    if (!clst_vault_name_valid(name)) {
        return clst_err_set(err, CLST_E_INVAL,
                            "the %s name '%s' is invalid; use 1-127 characters of 0-9, a-z, A-Z "
                            "and '-'",
                            clst_vault_kind_name(kind), sanitize(name, shown, sizeof shown));
    }
    return CLST_OK;
}

enum clst_status
clst_vault_check_version(const char *version, enum clst_vault_kind kind, struct clst_err *err)
{
    char shown[48];
    if (version == NULL || version[0] == '\0' || clst_vault_version_valid(version)) {
        return CLST_OK;
    }
    return clst_err_set(err, CLST_E_NOTFOUND,
                        "%s version '%s' was not found (versions are 32 lower-case hex characters)",
                        clst_vault_kind_name(kind), sanitize(version, shown, sizeof shown));
}

/* ---- typed JSON members --------------------------------------------------------------------- */

/* Looks up a member; NULL and JSON null both count as absent. */
static enum clst_status
member(const json_t *obj, const char *key, bool required, json_t **out, struct clst_err *err)
{
    json_t *v = NULL;
    if (obj == NULL || !json_is_object(obj)) {
        return clst_err_set(err, CLST_E_INVAL, "the request body must be a JSON object");
    }
    v = json_object_get(obj, key);
    if (v != NULL && json_is_null(v)) {
        v = NULL;
    }
    if (v == NULL && required) {
        return clst_err_set(err, CLST_E_INVAL, "the request is missing the member '%s'", key);
    }
    *out = v;
    return CLST_OK;
}

enum clst_status
clst_vault_json_string(const json_t *obj, const char *key, bool required, size_t max_size,
                       const char **out, bool *out_present, struct clst_err *err)
{
    json_t *v = NULL;
    enum clst_status st = member(obj, key, required, &v, err);
    if (st != CLST_OK) {
        return st;
    }
    if (out_present != NULL) {
        *out_present = v != NULL;
    }
    if (v == NULL) {
        return CLST_OK;
    }
    if (!json_is_string(v)) {
        return clst_err_set(err, CLST_E_INVAL, "the member '%s' must be a string", key);
    }
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (strlen(s) != n) {
        return clst_err_set(err, CLST_E_INVAL, "the member '%s' contains a NUL character", key);
    }
    if (n > max_size) {
        return clst_err_set(err, CLST_E_INVAL, "the member '%s' is %zu bytes long; the limit is %zu",
                            key, n, max_size);
    }
    *out = s;
    return CLST_OK;
}

enum clst_status
clst_vault_json_bool(const json_t *obj, const char *key, bool required, bool *out,
                     bool *out_present, struct clst_err *err)
{
    json_t *v = NULL;
    enum clst_status st = member(obj, key, required, &v, err);
    if (st != CLST_OK) {
        return st;
    }
    if (out_present != NULL) {
        *out_present = v != NULL;
    }
    if (v == NULL) {
        return CLST_OK;
    }
    if (!json_is_boolean(v)) {
        return clst_err_set(err, CLST_E_INVAL, "the member '%s' must be true or false", key);
    }
    *out = json_is_true(v);
    return CLST_OK;
}

/* A JSON number as an integer in [min, max]: integers, or reals without a fractional part. */
static enum clst_status
int_value(const json_t *v, const char *key, int64_t min, int64_t max, int64_t *out,
          struct clst_err *err)
{
    int64_t x = 0;
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        if (i < min || i > max) {
            return clst_err_set(err, CLST_E_INVAL,
                                "the member '%s' is out of range (%lld..%lld)", key,
                                (long long)min, (long long)max);
        }
        x = (int64_t)i;
    } else if (json_is_real(v)) {
        double d = json_real_value(v);
        /* NaN fails both comparisons; the range check comes before the cast (no UB), and the
         * round trip catches fractions. (No libm: the library does not link it.) */
        if (!(d >= (double)min && d <= (double)max && d < 9223372036854775808.0) ||
            (double)(int64_t)d != d) {
            return clst_err_set(err, CLST_E_INVAL,
                                "the member '%s' must be a whole number in %lld..%lld", key,
                                (long long)min, (long long)max);
        }
        x = (int64_t)d;
    } else {
        return clst_err_set(err, CLST_E_INVAL, "the member '%s' must be a number", key);
    }
    *out = x;
    return CLST_OK;
}

enum clst_status
clst_vault_json_int(const json_t *obj, const char *key, bool required, int64_t min, int64_t max,
                    int64_t *out, bool *out_present, struct clst_err *err)
{
    json_t *v = NULL;
    enum clst_status st = member(obj, key, required, &v, err);
    if (st != CLST_OK) {
        return st;
    }
    if (out_present != NULL) {
        *out_present = v != NULL;
    }
    if (v == NULL) {
        return CLST_OK;
    }
    return int_value(v, key, min, max, out, err);
}

enum clst_status
clst_vault_json_object(const json_t *obj, const char *key, bool required, json_t **out,
                       struct clst_err *err)
{
    json_t *v = NULL;
    enum clst_status st = member(obj, key, required, &v, err);
    if (st != CLST_OK) {
        return st;
    }
    if (v != NULL && !json_is_object(v)) {
        return clst_err_set(err, CLST_E_INVAL, "the member '%s' must be a JSON object", key);
    }
    *out = v;
    return CLST_OK;
}

enum clst_status
clst_vault_json_array(const json_t *obj, const char *key, bool required, json_t **out,
                      struct clst_err *err)
{
    json_t *v = NULL;
    enum clst_status st = member(obj, key, required, &v, err);
    if (st != CLST_OK) {
        return st;
    }
    if (v != NULL && !json_is_array(v)) {
        return clst_err_set(err, CLST_E_INVAL, "the member '%s' must be a JSON array", key);
    }
    *out = v;
    return CLST_OK;
}

enum clst_status
clst_vault_json_b64url(const json_t *obj, const char *key, bool required, struct clst_buf *out,
                       bool *out_present, struct clst_err *err)
{
    const char *s = NULL;
    bool present = false;
    enum clst_status st = clst_vault_json_string(obj, key, required, SIZE_MAX, &s, &present, err);
    if (st != CLST_OK) {
        return st;
    }
    if (out_present != NULL) {
        *out_present = present;
    }
    if (!present) {
        return CLST_OK;
    }
    size_t n = strlen(s);
    /* The SDKs never pad, but other clients may: accept up to two '=' at the end. */
    for (int i = 0; i < 2 && n > 0 && s[n - 1] == '='; i++) {
        n--;
    }
    size_t before = out->size;
    st = clst_b64url_decode(s, n, out);
    if (st == CLST_E_LIMIT) {
        out->size = before;
        return clst_err_set(err, CLST_E_INVAL, "the member '%s' is too long (at most %zu bytes)",
                            key, out->max - before);
    }
    if (st != CLST_OK) {
        out->size = before;
        return clst_err_set(err, CLST_E_INVAL,
                            "the member '%s' is not valid base64url (RFC 4648 section 5, without "
                            "padding)",
                            key);
    }
    return CLST_OK;
}

enum clst_status
clst_vault_body_json(const struct clst_vault_rctx *rc, json_t **out, struct clst_err *err)
{
    enum clst_status st = clst_http_request_json(rc->req, out, err);
    if (st != CLST_OK && st != CLST_E_NOMEM) {
        /* Keep the parser's message, only the status changes (copying err->msg into itself
         * through clst_err_set would be overlapping memory). */
        if (err == NULL) {
            return CLST_E_INVAL;
        }
        if (err->msg[0] == '\0') {
            return clst_err_set(err, CLST_E_INVAL, "bad request body");
        }
        err->status = CLST_E_INVAL;
        return CLST_E_INVAL;
    }
    return st;
}

/* ---- attributes ----------------------------------------------------------------------------- */

void
clst_vault_attrs_defaults(const struct clst_vault *v, struct clst_vault_attrs *a)
{
    memset(a, 0, sizeof *a);
    a->enabled = true;
    memcpy(a->recovery_level, v->recovery_level, sizeof a->recovery_level);
    a->recoverable_days = v->retention_days;
}

enum clst_status
clst_vault_attrs_from_json(json_t *attrs, bool allow_exportable, struct clst_vault_attrs *a,
                           unsigned *fields, struct clst_err *err)
{
    const char *key = NULL;
    json_t *v = NULL;
    unsigned f = 0;
    char shown[48];

    if (attrs == NULL || json_is_null(attrs)) {
        return CLST_OK;
    }
    if (!json_is_object(attrs)) {
        return clst_err_set(err, CLST_E_INVAL, "the member 'attributes' must be a JSON object");
    }
    json_object_foreach (attrs, key, v) {
        if (strcmp(key, "enabled") == 0) {
            if (json_is_null(v)) {
                continue;
            }
            if (!json_is_boolean(v)) {
                return clst_err_set(err, CLST_E_INVAL, "attributes.enabled must be true or false");
            }
            a->enabled = json_is_true(v);
            f |= CLST_VAULT_UPDATE_ENABLED;
        } else if (strcmp(key, "nbf") == 0 || strcmp(key, "exp") == 0) {
            bool is_nbf = key[0] == 'n';
            int64_t t = 0;
            if (!json_is_null(v)) {
                enum clst_status st =
                    int_value(v, is_nbf ? "attributes.nbf" : "attributes.exp", 0, TIME_MAX, &t, err);
                if (st != CLST_OK) {
                    return st;
                }
            }
            if (is_nbf) {
                a->nbf = t;
                f |= CLST_VAULT_UPDATE_NBF;
            } else {
                a->exp = t;
                f |= CLST_VAULT_UPDATE_EXP;
            }
        } else if (strcmp(key, "exportable") == 0) {
            if (json_is_null(v)) {
                continue;
            }
            if (!allow_exportable) {
                return clst_err_set(err, CLST_E_INVAL,
                                    "attributes.exportable can only be set when a key is created "
                                    "or imported");
            }
            if (!json_is_boolean(v)) {
                return clst_err_set(err, CLST_E_INVAL,
                                    "attributes.exportable must be true or false");
            }
            a->exportable = json_is_true(v);
            f |= CLST_VAULT_UPDATE_EXPORTABLE;
        } else if (strcmp(key, "created") == 0 || strcmp(key, "updated") == 0 ||
                   strcmp(key, "recoveryLevel") == 0 || strcmp(key, "recoverableDays") == 0) {
            /* Read-only members the vault sets: ignored, so a client may send back what it got. */
            continue;
        } else {
            return clst_err_set(err, CLST_E_INVAL,
                                "attributes has an unknown member '%s'; allowed: enabled, nbf, "
                                "exp%s",
                                sanitize(key, shown, sizeof shown),
                                allow_exportable ? ", exportable" : "");
        }
    }
    if ((f & CLST_VAULT_UPDATE_NBF) && (f & CLST_VAULT_UPDATE_EXP) && a->nbf != 0 && a->exp != 0 &&
        a->nbf > a->exp) {
        return clst_err_set(err, CLST_E_INVAL,
                            "attributes.nbf (not before) is later than attributes.exp (expiry)");
    }
    if (fields != NULL) {
        *fields |= f;
    }
    return CLST_OK;
}

/* Sets obj[key] = v (stolen); false when v is NULL or the set failed. */
static bool
put(json_t *obj, const char *key, json_t *v)
{
    return v != NULL && json_object_set_new(obj, key, v) == 0;
}

json_t *
clst_vault_attrs_to_json(const struct clst_vault_attrs *a, enum clst_vault_kind kind)
{
    json_t *j = json_object();
    bool ok = j != NULL && put(j, "enabled", json_boolean(a->enabled));
    if (ok && a->nbf != 0) {
        ok = put(j, "nbf", json_integer(a->nbf));
    }
    if (ok && a->exp != 0) {
        ok = put(j, "exp", json_integer(a->exp));
    }
    if (ok && a->created != 0) {
        ok = put(j, "created", json_integer(a->created));
    }
    if (ok && a->updated != 0) {
        ok = put(j, "updated", json_integer(a->updated));
    }
    if (ok && a->recovery_level[0] != '\0') {
        ok = put(j, "recoveryLevel", json_string(a->recovery_level));
    }
    if (ok && a->recoverable_days > 0 && strstr(a->recovery_level, "Recoverable") != NULL) {
        ok = put(j, "recoverableDays", json_integer(a->recoverable_days));
    }
    if (ok && kind == CLST_VAULT_KIND_KEY && a->exportable) {
        ok = put(j, "exportable", json_true());
    }
    if (!ok) {
        json_decref(j);
        return NULL;
    }
    return j;
}

/* ---- tags ----------------------------------------------------------------------------------- */

/* Unicode code points in valid UTF-8 (jansson has validated it): bytes that do not continue a
 * sequence. */
static size_t
utf8_chars(const char *s)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if ((*p & 0xc0) != 0x80) {
            n++;
        }
    }
    return n;
}

enum clst_status
clst_vault_tags_parse(json_t *tags, char **out_text, struct clst_err *err)
{
    const char *key = NULL;
    json_t *v = NULL;
    char shown[48];

    if (tags == NULL || !json_is_object(tags)) {
        return clst_err_set(err, CLST_E_INVAL,
                            "the member 'tags' must be a JSON object of string values");
    }
    if (json_object_size(tags) > CLST_VAULT_TAG_COUNT_MAX) {
        return clst_err_set(err, CLST_E_INVAL, "there are %zu tags; at most %d are allowed",
                            json_object_size(tags), CLST_VAULT_TAG_COUNT_MAX);
    }
    json_object_foreach (tags, key, v) {
        size_t kn = utf8_chars(key);
        if (kn == 0 || kn > CLST_VAULT_TAG_NAME_MAX) {
            return clst_err_set(err, CLST_E_INVAL,
                                "a tag name is %zu characters long; tag names must have 1 to %d",
                                kn, CLST_VAULT_TAG_NAME_MAX);
        }
        if (!json_is_string(v)) {
            return clst_err_set(err, CLST_E_INVAL, "the tag '%s' must have a string value",
                                sanitize(key, shown, sizeof shown));
        }
        if (strlen(json_string_value(v)) != json_string_length(v)) {
            return clst_err_set(err, CLST_E_INVAL, "the value of tag '%s' contains a NUL character",
                                sanitize(key, shown, sizeof shown));
        }
        size_t vn = utf8_chars(json_string_value(v));
        if (vn > CLST_VAULT_TAG_VALUE_MAX) {
            return clst_err_set(err, CLST_E_INVAL,
                                "the value of tag '%s' is %zu characters long; at most %d are "
                                "allowed",
                                sanitize(key, shown, sizeof shown), vn, CLST_VAULT_TAG_VALUE_MAX);
        }
    }
    char *text = json_dumps(tags, JSON_COMPACT | JSON_SORT_KEYS);
    if (text == NULL) {
        return clst_err_set(err, CLST_E_NOMEM, "out of memory serializing tags");
    }
    if (strlen(text) > CLST_VAULT_TAGS_MAX) {
        size_t n = strlen(text);
        free(text);
        return clst_err_set(err, CLST_E_INVAL,
                            "the tags take %zu bytes as JSON; at most %d bytes are allowed", n,
                            CLST_VAULT_TAGS_MAX);
    }
    *out_text = text;
    return CLST_OK;
}

json_t *
clst_vault_tags_to_json(const char *text)
{
    if (text == NULL || text[0] == '\0') {
        return NULL;
    }
    json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
    if (j == NULL || !json_is_object(j) || json_object_size(j) == 0) {
        json_decref(j);
        return NULL;
    }
    return j;
}

/* ---- ids and bundles ------------------------------------------------------------------------ */

enum clst_status
clst_vault_object_id(const struct clst_vault_rctx *rc, enum clst_vault_kind kind, const char *name,
                     const char *version, char *out, size_t cap)
{
    bool has_version = version != NULL && version[0] != '\0';
    int n = snprintf(out, cap, "%s/%s/%s%s%s", rc->base,
                     kind == CLST_VAULT_KIND_KEY ? "keys" : "secrets", name, has_version ? "/" : "",
                     has_version ? version : "");
    if (n < 0 || (size_t)n >= cap) {
        return CLST_E_LIMIT;
    }
    return CLST_OK;
}

enum clst_status
clst_vault_recovery_id(const struct clst_vault_rctx *rc, enum clst_vault_kind kind,
                       const char *name, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s/%s/%s", rc->base,
                     kind == CLST_VAULT_KIND_KEY ? "deletedkeys" : "deletedsecrets", name);
    if (n < 0 || (size_t)n >= cap) {
        return CLST_E_LIMIT;
    }
    return CLST_OK;
}

enum clst_status
clst_vault_bundle_common(const struct clst_vault_rctx *rc, const struct clst_vault_object *obj,
                         json_t *j)
{
    char rid[CLST_VAULT_ID_MAX];
    if (!put(j, "attributes", clst_vault_attrs_to_json(&obj->attrs, obj->kind))) {
        return CLST_E_NOMEM;
    }
    json_t *tags = clst_vault_tags_to_json(obj->tags);
    if (tags != NULL && !put(j, "tags", tags)) {
        return CLST_E_NOMEM;
    }
    if (obj->deleted_date != 0) {
        if (clst_vault_recovery_id(rc, obj->kind, obj->name, rid, sizeof rid) != CLST_OK) {
            return CLST_E_LIMIT;
        }
        if (!put(j, "recoveryId", json_string(rid)) ||
            !put(j, "deletedDate", json_integer(obj->deleted_date)) ||
            (obj->scheduled_purge_date != 0 &&
             !put(j, "scheduledPurgeDate", json_integer(obj->scheduled_purge_date)))) {
            return CLST_E_NOMEM;
        }
    }
    return CLST_OK;
}

/* ---- paging --------------------------------------------------------------------------------- */

enum clst_status
clst_vault_page_params(const struct clst_vault_rctx *rc, size_t *out_max, const char **out_token,
                       struct clst_err *err)
{
    uint64_t max = CLST_VAULT_PAGE_MAX;
    const char *m = clst_http_request_query(rc->req, "maxresults");
    if (m != NULL && clst_parse_u64(m, 1, CLST_VAULT_PAGE_MAX, &max, NULL) != CLST_OK) {
        return clst_err_set(err, CLST_E_INVAL, "maxresults must be a whole number from 1 to %d",
                            CLST_VAULT_PAGE_MAX);
    }
    const char *t = clst_http_request_query(rc->req, "$skiptoken");
    if (t != NULL && strlen(t) > CLST_VAULT_TOKEN_MAX) {
        return clst_err_set(err, CLST_E_INVAL,
                            "$skiptoken is too long; pass the nextLink of the previous page "
                            "unchanged");
    }
    *out_max = (size_t)max;
    *out_token = (t != NULL && t[0] != '\0') ? t : NULL;
    return CLST_OK;
}

/* Appends s percent-encoded (everything outside RFC 3986's unreserved set). */
static enum clst_status
append_pct(struct clst_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        unsigned char c = *p;
        bool unreserved = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
                          (c >= 'A' && c <= 'Z') || c == '-' || c == '.' || c == '_' || c == '~';
        enum clst_status st;
        if (unreserved) {
            st = clst_buf_append_byte(b, c);
        } else {
            char enc[3] = {'%', hex[c >> 4], hex[c & 15]};
            st = clst_buf_append(b, enc, sizeof enc);
        }
        if (st != CLST_OK) {
            return st;
        }
    }
    return CLST_OK;
}

json_t *
clst_vault_next_link(const struct clst_vault_rctx *rc, const char *path, size_t max_results,
                     const char *next)
{
    struct clst_buf b;
    json_t *j = NULL;
    if (next == NULL || next[0] == '\0') {
        return json_null();
    }
    clst_buf_init(&b, 4096);
    if (clst_buf_appendf(&b, "%s%s?api-version=", rc->base, path) != CLST_OK ||
        append_pct(&b, rc->api_version) != CLST_OK ||
        clst_buf_appendf(&b, "&maxresults=%zu&%%24skiptoken=", max_results) != CLST_OK ||
        append_pct(&b, next) != CLST_OK || clst_buf_terminate(&b) != CLST_OK) {
        goto out;
    }
    j = json_stringn((const char *)b.data, b.size);
out:
    clst_buf_cleanup(&b);
    return j;
}

enum clst_status
clst_vault_reply_list(struct clst_vault_rctx *rc, json_t *items, const char *path,
                      size_t max_results, const char *next, struct clst_err *err)
{
    json_t *body = json_object();
    if (body == NULL || !put(body, "value", items)) {
        json_decref(body);
        if (body == NULL) {
            json_decref(items);
        }
        return clst_err_set(err, CLST_E_NOMEM, "out of memory building a list");
    }
    if (!put(body, "nextLink", clst_vault_next_link(rc, path, max_results, next))) {
        json_decref(body);
        return clst_err_set(err, CLST_E_NOMEM, "out of memory building a list");
    }
    clst_http_response_json_new(rc->resp, 200, body);
    return CLST_OK;
}

enum clst_status
clst_vault_list_fetch(const struct clst_vault_rctx *rc, enum clst_vault_kind kind,
                      enum clst_vault_listing listing, const char *name, size_t max_results,
                      const char *token, struct clst_vault_object_list *out, char *path,
                      size_t path_cap, struct clst_err *err)
{
    const char *what = kind == CLST_VAULT_KIND_KEY ? "keys" : "secrets";
    enum clst_status st;
    switch (listing) {
    case CLST_VAULT_LIST_LIVE:
        st = clst_vault_store_list(rc->vault->store, kind, max_results, token, out, err);
        snprintf(path, path_cap, "/%s", what);
        break;
    case CLST_VAULT_LIST_VERSIONS:
        st = clst_vault_store_list_versions(rc->vault->store, kind, name, max_results, token, out,
                                            err);
        snprintf(path, path_cap, "/%s/%s/versions", what, name);
        break;
    case CLST_VAULT_LIST_DELETED:
    default:
        st = clst_vault_store_list_deleted(rc->vault->store, kind, max_results, token, out, err);
        snprintf(path, path_cap, "/deleted%s", what);
        break;
    }
    return st;
}

enum clst_status
clst_vault_reply_objects(struct clst_vault_rctx *rc, const struct clst_vault_object_list *list,
                         json_t *(*item)(const struct clst_vault_rctx *rc,
                                         const struct clst_vault_object *obj, bool versioned),
                         bool versioned, const char *path, size_t max_results, const char *nomem,
                         struct clst_err *err)
{
    json_t *items = json_array();
    for (size_t i = 0; items != NULL && i < list->count; i++) {
        json_t *j = item(rc, &list->items[i], versioned);
        if (j == NULL || json_array_append_new(items, j) != 0) {
            json_decref(items);
            items = NULL;
        }
    }
    if (items == NULL) {
        return clst_err_set(err, CLST_E_NOMEM, "%s", nomem);
    }
    return clst_vault_reply_list(rc, items, path, max_results, list->next, err);
}

/* ---- listings and the soft-delete lifecycle of keys and secrets ----------------------------- */

/* CLST_E_NOTFOUND from the store, reworded in the cloud vault's terms: "key 'NAME' was not
 * found" for a live object, "deleted key 'NAME' was not found" for a deleted one. Any other
 * status is returned unchanged. */
static enum clst_status
reword_not_found(const struct clst_vault_kind_rest *k, enum clst_status st, bool deleted,
                 const char *name, struct clst_err *err)
{
    if (st != CLST_E_NOTFOUND) {
        return st;
    }
    return clst_err_set(err, st, "%s%s '%s' was not found", deleted ? "deleted " : "",
                        clst_vault_kind_name(k->kind), name);
}

enum clst_status
clst_vault_kind_list(const struct clst_vault_kind_rest *k, enum clst_vault_listing listing,
                     void *ctx, const struct clst_http_request *req,
                     struct clst_http_response *resp, struct clst_err *err)
{
    struct clst_vault_rctx rc;
    struct clst_vault_object_list list = {0};
    const char *name = NULL;
    const char *token = NULL;
    size_t max = 0;
    char path[CLST_VAULT_NAME_MAX + 32];
    bool versions = listing == CLST_VAULT_LIST_VERSIONS;
    enum clst_vault_perm perm =
        listing == CLST_VAULT_LIST_DELETED ? k->perm_deleted_read : k->perm_read;
    enum clst_status st =
        clst_vault_rctx_start(ctx, req, resp, &rc, k->kind, perm, versions, &name, err);
    if (st == CLST_OK) {
        st = clst_vault_page_params(&rc, &max, &token, err);
    }
    if (st == CLST_OK) {
        st = clst_vault_list_fetch(&rc, k->kind, listing, name, max, token, &list, path,
                                   sizeof path, err);
        if (versions) {
            st = reword_not_found(k, st, false, name, err);
        }
        if (st == CLST_E_MALFORMED) {
            st = clst_err_set(err, CLST_E_INVAL,
                              "$skiptoken is not valid here; pass the nextLink of the previous "
                              "page unchanged");
        }
    }
    if (st == CLST_OK) {
        /* Fails only with CLST_E_NOMEM, which clst_vault_reply_err returns unchanged. */
        st = clst_vault_reply_objects(&rc, &list, k->item, versions, path, max, k->list_nomem, err);
    }
    if (st != CLST_OK) {
        st = clst_vault_reply_err(&rc, k->kind, err);
    }
    clst_vault_object_list_cleanup(&list);
    return st;
}

enum clst_status
clst_vault_kind_state_op(const struct clst_vault_kind_rest *k, enum clst_vault_state_op op,
                         void *ctx, const struct clst_http_request *req,
                         struct clst_http_response *resp, struct clst_err *err)
{
    struct clst_vault_rctx rc;
    struct clst_vault_object obj;
    const char *name = NULL;
    enum clst_vault_perm perm = op == CLST_VAULT_OP_DELETE        ? k->perm_delete
                                : op == CLST_VAULT_OP_GET_DELETED ? k->perm_deleted_read
                                                                  : k->perm_recover;
    enum clst_status st;

    memset(&obj, 0, sizeof obj);
    st = clst_vault_rctx_start(ctx, req, resp, &rc, k->kind, perm, true, &name, err);
    if (st == CLST_OK) {
        struct clst_vault_store *store = rc.vault->store;
        switch (op) {
        case CLST_VAULT_OP_DELETE:
            st = clst_vault_store_delete(store, k->kind, name, rc.vault->retention_days, &obj, err);
            st = reword_not_found(k, st, false, name, err);
            break;
        case CLST_VAULT_OP_GET_DELETED:
            st = clst_vault_store_get_deleted(store, k->kind, name, &obj, err);
            st = reword_not_found(k, st, true, name, err);
            break;
        case CLST_VAULT_OP_RECOVER:
            st = clst_vault_store_recover(store, k->kind, name, err);
            st = reword_not_found(k, st, true, name, err);
            if (st == CLST_OK) {
                /* NULL: the latest version (the store reads NULL and "" alike). */
                st = clst_vault_store_get(store, k->kind, name, NULL, &obj, NULL, err);
            }
            break;
        }
    }
    st = st == CLST_OK ? k->reply(&rc, &obj, err) : clst_vault_reply_err(&rc, k->kind, err);
    clst_vault_object_cleanup(&obj);
    return st;
}

enum clst_status
clst_vault_kind_purge(const struct clst_vault_kind_rest *k, void *ctx,
                      const struct clst_http_request *req, struct clst_http_response *resp,
                      struct clst_err *err)
{
    struct clst_vault_rctx rc;
    struct clst_vault_object obj;
    const char *name = NULL;
    enum clst_status st;

    memset(&obj, 0, sizeof obj);
    st = clst_vault_rctx_start(ctx, req, resp, &rc, k->kind, k->perm_purge, true, &name, err);
    if (st == CLST_OK) {
        /* Read first: a missing or tampered row is refused the same way with or without purge
         * protection. */
        st = clst_vault_store_get_deleted(rc.vault->store, k->kind, name, &obj, err);
        st = reword_not_found(k, st, true, name, err);
    }
    if (st == CLST_OK && rc.vault->purge_protection &&
        clst_vault_now(rc.vault) < obj.scheduled_purge_date) {
        char when[32];
        if (clst_time_format(obj.scheduled_purge_date, when, sizeof(when)) != CLST_OK) {
            snprintf(when, sizeof(when), "its scheduled purge date");
        }
        st = clst_err_set(err, CLST_E_DENIED,
                          "purge protection is on: deleted %s '%s' can be recovered now and is "
                          "purged at %s, not before",
                          clst_vault_kind_name(k->kind), name, when);
    }
    if (st == CLST_OK) {
        st = clst_vault_store_purge(rc.vault->store, k->kind, name, err);
        st = reword_not_found(k, st, true, name, err);
    }
    if (st == CLST_OK) {
        clst_http_response_empty(resp, 204);
    } else {
        st = clst_vault_reply_err(&rc, k->kind, err);
    }
    clst_vault_object_cleanup(&obj);
    return st;
}

/* ---- errors --------------------------------------------------------------------------------- */

enum clst_status
clst_vault_reply_err(struct clst_vault_rctx *rc, enum clst_vault_kind kind, struct clst_err *err)
{
    enum clst_status st = err != NULL ? err->status : CLST_E_INTERNAL;
    const char *msg = (err != NULL && err->msg[0] != '\0') ? err->msg : clst_status_str(st);
    unsigned status = 0;
    const char *code = NULL;

    switch (st) {
    case CLST_E_NOTFOUND:
        status = 404;
        code = kind == CLST_VAULT_KIND_KEY      ? CLST_HTTP_CODE_KEY_NOT_FOUND
               : kind == CLST_VAULT_KIND_SECRET ? CLST_HTTP_CODE_SECRET_NOT_FOUND
                                                : CLST_HTTP_CODE_NOT_FOUND;
        break;
    case CLST_E_CONFLICT:
        status = 409;
        code = CLST_HTTP_CODE_CONFLICT;
        break;
    case CLST_E_INVAL:
    case CLST_E_MALFORMED:
    case CLST_E_LIMIT:
        status = 400;
        code = CLST_HTTP_CODE_BAD_PARAMETER;
        break;
    case CLST_E_DENIED:
        status = 403;
        code = CLST_HTTP_CODE_FORBIDDEN;
        break;
    case CLST_E_VERIFY:
        /* From the store: a row or a sealed value failed its integrity check. The detail is for
         * the operator's log, not for the client. */
        clst_log_error("vault: request %s: %s", rc->req != NULL ? clst_http_request_id(rc->req) : "-",
                       msg);
        if (rc->resp != NULL) {
            clst_http_response_error(rc->resp, 500, CLST_HTTP_CODE_INTERNAL,
                                     "the vault's storage failed an integrity check; the operator "
                                     "has the details in the server log (request id %s)",
                                     rc->req != NULL ? clst_http_request_id(rc->req) : "-");
            return CLST_OK;
        }
        return CLST_E_INTERNAL;
    case CLST_OK:
        return clst_err_set(err, CLST_E_INTERNAL, "error reply without an error");
    default:
        return st;
    }
    if (rc->resp == NULL) {
        return st;
    }
    clst_http_response_error(rc->resp, status, code, "%s", msg);
    return CLST_OK;
}

enum clst_status
clst_vault_reply_status(struct clst_vault_rctx *rc, enum clst_vault_kind kind,
                        enum clst_status status, const char *fmt, ...)
{
    struct clst_err e = {status, {0}};
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(e.msg, sizeof e.msg, fmt, ap);
    va_end(ap);
    (void)n;
    return clst_vault_reply_err(rc, kind, &e);
}

/* ---- route registration --------------------------------------------------------------------- */

enum clst_status
clst_vault_routes_add(struct clst_vault *v, struct clst_server *server,
                      const struct clst_vault_route *routes, size_t count, struct clst_err *err)
{
    for (size_t i = 0; i < count; i++) {
        struct clst_server_route r = {
            .method = routes[i].method,
            .pattern = routes[i].pattern,
            .flags = CLST_ROUTE_PROTECTED,
            .handler = routes[i].handler,
            .ctx = v,
        };
        enum clst_status st = clst_server_route_add(server, &r, err);
        if (st != CLST_OK) {
            return clst_err_prefix(err, "vault route %s %s", clst_http_method_name(r.method),
                                   r.pattern);
        }
    }
    return CLST_OK;
}
