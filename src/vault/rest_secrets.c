/*
 * The secret endpoints of the cloud key vault's data plane:
 *
 *   PUT    /secrets/{name}                      set (a new version each time)
 *   GET    /secrets/{name}[/{version}]           get with the value ("" / absent = latest)
 *   PATCH  /secrets/{name}[/{version}]           update contentType, attributes, tags
 *   GET    /secrets                              list (latest version of each, no values)
 *   GET    /secrets/{name}/versions              list versions
 *   DELETE /secrets/{name}                       soft delete
 *   GET    /deletedsecrets                       list deleted
 *   GET    /deletedsecrets/{name}                get deleted
 *   POST   /deletedsecrets/{name}/recover        recover
 *   DELETE /deletedsecrets/{name}                purge (204)
 *
 * Values: at most 25 KiB (CLST_VAULT_SECRET_VALUE_MAX bytes of UTF-8), as the cloud vault. A
 * response carrying a value is assembled in wiped memory (the value never goes through a jansson
 * object on the way out). nbf/exp of a secret are informational, as in the cloud vault; a
 * disabled version cannot be read (403).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "governance.h"
#include "rest_int.h"

#define KIND CLST_VAULT_KIND_SECRET

static bool
put(json_t *obj, const char *key, json_t *v)
{
    return v != NULL && json_object_set_new(obj, key, v) == 0;
}

/* The bundle or list item of a secret version, without its value. */
static json_t *
secret_json(const struct clst_vault_rctx *rc, const struct clst_vault_object *obj,
            bool versioned_id)
{
    char id[CLST_VAULT_ID_MAX];
    json_t *j = json_object();
    if (j == NULL ||
        clst_vault_object_id(rc, KIND, obj->name, versioned_id ? obj->version : NULL, id,
                             sizeof id) != CLST_OK ||
        !put(j, "id", json_string(id)) ||
        (obj->content_type != NULL && !put(j, "contentType", json_string(obj->content_type))) ||
        clst_vault_bundle_common(rc, obj, j) != CLST_OK) {
        json_decref(j);
        return NULL;
    }
    return j;
}

static enum clst_status
reply_secret(struct clst_vault_rctx *rc, const struct clst_vault_object *obj, struct clst_err *err)
{
    json_t *j = secret_json(rc, obj, true);
    if (j == NULL) {
        return clst_err_set(err, CLST_E_NOMEM, "out of memory building a secret bundle");
    }
    clst_http_response_json_new(rc->resp, 200, j);
    return CLST_OK;
}

/* Appends `s` (size bytes of UTF-8) as a JSON string literal. */
static enum clst_status
append_json_string(struct clst_buf *b, const uint8_t *s, size_t size)
{
    static const char hex[] = "0123456789abcdef";
    enum clst_status st = clst_buf_append_byte(b, '"');
    for (size_t i = 0; i < size && st == CLST_OK; i++) {
        uint8_t c = s[i];
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            st = clst_buf_append(b, e, sizeof e);
        } else if (c < 0x20) {
            char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            st = clst_buf_append(b, e, sizeof e);
        } else {
            st = clst_buf_append_byte(b, c);
        }
    }
    if (st == CLST_OK) {
        st = clst_buf_append_byte(b, '"');
    }
    return st;
}

/* A bundle with "value" first, built in secret memory: {"value":"…",<the rest of j>}. */
static enum clst_status
reply_secret_with_value(struct clst_vault_rctx *rc, const struct clst_vault_object *obj,
                        const uint8_t *value, size_t value_size, struct clst_err *err)
{
    enum clst_status rc_ = CLST_E_NOMEM;
    struct clst_buf b;
    char *rest = NULL;
    json_t *j = secret_json(rc, obj, true);

    /* 6 bytes per value byte at worst, plus the metadata. */
    clst_buf_init_secret(&b, value_size * 6 + 64 * 1024);
    if (j == NULL) {
        goto out;
    }
    rest = json_dumps(j, JSON_COMPACT);
    if (rest == NULL || rest[0] != '{' || rest[1] == '}') {
        goto out;
    }
    if (clst_buf_append_str(&b, "{\"value\":") != CLST_OK ||
        append_json_string(&b, value, value_size) != CLST_OK ||
        clst_buf_append_byte(&b, ',') != CLST_OK || clst_buf_append_str(&b, rest + 1) != CLST_OK) {
        goto out;
    }
    rc_ = clst_http_response_body(rc->resp, 200, "application/json; charset=utf-8", b.data, b.size);
out:
    if (rc_ != CLST_OK) {
        clst_err_set(err, rc_, "out of memory building a secret bundle");
    }
    free(rest);
    json_decref(j);
    clst_buf_cleanup(&b);
    return rc_;
}

void
clst_vault_secret_body_cleanup(struct clst_vault_secret_body *b)
{
    if (b != NULL) {
        free(b->tags);
        b->tags = NULL;
    }
}

enum clst_status
clst_vault_secret_body_parse(json_t *body, bool for_update, struct clst_vault_secret_body *out,
                             struct clst_err *err)
{
    enum clst_status st = clst_vault_json_string(body, "value", !for_update, SIZE_MAX, &out->value,
                                                 &out->has_value, err);
    if (st != CLST_OK) {
        return st;
    }
    if (out->has_value) {
        if (for_update) {
            return clst_err_set(err, CLST_E_INVAL,
                                "an update cannot change a secret's value; set a new version "
                                "with PUT /secrets/{name}");
        }
        out->value_size = strlen(out->value);
        if (out->value_size > CLST_VAULT_SECRET_VALUE_MAX) {
            return clst_err_set(err, CLST_E_INVAL,
                                "the secret value is %zu bytes; the limit is %d bytes (25 KiB)",
                                out->value_size, CLST_VAULT_SECRET_VALUE_MAX);
        }
    }
    st = clst_vault_json_string(body, "contentType", false, CLST_VAULT_CONTENT_TYPE_MAX,
                                &out->content_type, &out->has_content_type, err);
    if (st != CLST_OK) {
        return st;
    }
    if (out->has_content_type) {
        for (const char *p = out->content_type; *p != '\0'; p++) {
            if ((unsigned char)*p < 0x20 || *p == 0x7f) {
                return clst_err_set(err, CLST_E_INVAL,
                                    "contentType must not contain control characters");
            }
        }
        out->fields |= CLST_VAULT_UPDATE_CONTENT_TYPE;
    }
    json_t *attrs = NULL;
    st = clst_vault_json_object(body, "attributes", false, &attrs, err);
    if (st == CLST_OK) {
        st = clst_vault_attrs_from_json(attrs, false, &out->attrs, &out->fields, err);
    }
    if (st != CLST_OK) {
        return st;
    }
    json_t *tags = json_object_get(body, "tags");
    if (tags != NULL && !json_is_null(tags)) {
        st = clst_vault_tags_parse(tags, &out->tags, err);
        if (st != CLST_OK) {
            return st;
        }
        out->fields |= CLST_VAULT_UPDATE_TAGS;
    }
    return CLST_OK;
}

/* ---- handlers ------------------------------------------------------------------------------- */

static enum clst_status
h_set(void *ctx, const struct clst_http_request *req, struct clst_http_response *resp,
      struct clst_err *err)
{
    struct clst_vault_rctx rc;
    struct clst_vault_secret_body sb;
    struct clst_vault_object in;
    struct clst_vault_object stored;
    json_t *body = NULL;
    const char *name = NULL;
    char version[CLST_VAULT_VERSION_SIZE + 1];
    enum clst_status st;

    memset(&sb, 0, sizeof sb);
    memset(&in, 0, sizeof in);
    memset(&stored, 0, sizeof stored);
    st = clst_vault_rctx_start(ctx, req, resp, &rc, KIND, CLST_VAULT_PERM_SECRET_SET, true, &name,
                               err);
    if (st == CLST_OK) {
        st = clst_vault_body_json(&rc, &body, err);
    }
    if (st == CLST_OK) {
        clst_vault_attrs_defaults(rc.vault, &sb.attrs);
        st = clst_vault_secret_body_parse(body, false, &sb, err);
    }
    if (st != CLST_OK) {
        st = clst_vault_reply_err(&rc, KIND, err);
        goto out;
    }
    in.kind = KIND;
    memcpy(in.name, name, strlen(name) + 1);
    in.attrs = sb.attrs;
    in.tags = sb.tags;
    if (sb.has_content_type && sb.content_type[0] != '\0' &&
        (in.content_type = strdup(sb.content_type)) == NULL) {
        st = clst_err_set(err, CLST_E_NOMEM, "out of memory");
        goto out;
    }
    /* Governance: a new version must pass every rule. */
    if (clst_vault_governance_of(rc.vault) != NULL) {
        struct clst_gov_violation gv[CLST_GOV_RULE_COUNT];
        size_t n = clst_gov_check(clst_vault_governance_of(rc.vault), &in, NULL,
                                  clst_vault_now(rc.vault), CLST_GOV_R_ALL, gv);
        if (n > 0) {
            st = clst_gov_reply(&rc, gv, n);
            goto out;
        }
    }
    st = clst_vault_store_put(rc.vault->store, &in, (const uint8_t *)sb.value, sb.value_size,
                              version, err);
    if (st == CLST_E_CONFLICT) {
        st = clst_vault_reply_status(&rc, KIND, CLST_E_CONFLICT,
                                     "secret %s is deleted but not purged; its name cannot be "
                                     "reused until it is recovered or purged",
                                     name);
        goto out;
    }
    if (st == CLST_OK) {
        st = clst_vault_store_get(rc.vault->store, KIND, name, version, &stored, NULL, err);
    }
    if (st != CLST_OK) {
        st = clst_vault_reply_err(&rc, KIND, err);
        goto out;
    }
    st = reply_secret_with_value(&rc, &stored, (const uint8_t *)sb.value, sb.value_size, err);
out:
    free(in.content_type);
    clst_vault_object_cleanup(&stored);
    clst_vault_secret_body_cleanup(&sb);
    json_decref(body);
    return st;
}

static enum clst_status
h_get(void *ctx, const struct clst_http_request *req, struct clst_http_response *resp,
      struct clst_err *err)
{
    struct clst_vault_rctx rc;
    struct clst_vault_object obj;
    struct clst_secret *value = NULL;
    const char *name = NULL;
    const char *version = clst_http_request_param(req, "version");
    enum clst_status st;

    memset(&obj, 0, sizeof obj);
    st = clst_vault_rctx_start(ctx, req, resp, &rc, KIND, CLST_VAULT_PERM_SECRET_GET, true, &name,
                               err);
    if (st == CLST_OK) {
        st = clst_vault_check_version(version, KIND, err);
    }
    /* Metadata first: a disabled version is refused without unsealing its value. */
    if (st == CLST_OK) {
        st = clst_vault_store_get(rc.vault->store, KIND, name, version, &obj, NULL, err);
    }
    if (st == CLST_OK && !obj.attrs.enabled) {
        st = clst_err_set(err, CLST_E_DENIED,
                          "Operation get is not allowed on a disabled secret (%s, version %s); "
                          "enable it with an update first",
                          obj.name, obj.version);
    }
    if (st == CLST_OK) {
        char exact[CLST_VAULT_VERSION_SIZE + 1];
        memcpy(exact, obj.version, sizeof exact);
        clst_vault_object_cleanup(&obj);
        st = clst_vault_store_get(rc.vault->store, KIND, name, exact, &obj, &value, err);
    }
    if (st != CLST_OK) {
        st = clst_vault_reply_err(&rc, KIND, err);
        goto out;
    }
    st = reply_secret_with_value(&rc, &obj, value->ptr, value->size, err);
out:
    clst_secret_free(value);
    clst_vault_object_cleanup(&obj);
    return st;
}

static enum clst_status
h_update(void *ctx, const struct clst_http_request *req, struct clst_http_response *resp,
         struct clst_err *err)
{
    struct clst_vault_rctx rc;
    struct clst_vault_secret_body sb;
    struct clst_vault_object changes;
    struct clst_vault_object out_obj;
    json_t *body = NULL;
    const char *name = NULL;
    const char *version = clst_http_request_param(req, "version");
    enum clst_status st;

    memset(&sb, 0, sizeof sb);
    memset(&changes, 0, sizeof changes);
    memset(&out_obj, 0, sizeof out_obj);
    st = clst_vault_rctx_start(ctx, req, resp, &rc, KIND, CLST_VAULT_PERM_SECRET_UPDATE, true,
                               &name, err);
    if (st == CLST_OK) {
        st = clst_vault_check_version(version, KIND, err);
    }
    if (st == CLST_OK) {
        st = clst_vault_body_json(&rc, &body, err);
    }
    if (st == CLST_OK) {
        st = clst_vault_secret_body_parse(body, true, &sb, err);
    }
    if (st != CLST_OK) {
        st = clst_vault_reply_err(&rc, KIND, err);
        goto out;
    }
    changes.kind = KIND;
    changes.attrs = sb.attrs;
    /* tags {} clears them: the stored form of "no tags" is NULL. */
    changes.tags = (sb.tags != NULL && strcmp(sb.tags, "{}") != 0) ? sb.tags : NULL;
    if (sb.has_content_type && sb.content_type[0] != '\0' &&
        (changes.content_type = strdup(sb.content_type)) == NULL) {
        st = clst_err_set(err, CLST_E_NOMEM, "out of memory");
        goto out;
    }
    if (sb.fields & (CLST_VAULT_UPDATE_NBF | CLST_VAULT_UPDATE_EXP)) {
        /* nbf and exp must stay in order once combined with what is stored. */
        struct clst_vault_object cur;
        memset(&cur, 0, sizeof cur);
        st = clst_vault_store_get(rc.vault->store, KIND, name, version, &cur, NULL, err);
        if (st == CLST_OK) {
            int64_t nbf = (sb.fields & CLST_VAULT_UPDATE_NBF) ? sb.attrs.nbf : cur.attrs.nbf;
            int64_t exp = (sb.fields & CLST_VAULT_UPDATE_EXP) ? sb.attrs.exp : cur.attrs.exp;
            if (nbf != 0 && exp != 0 && nbf > exp) {
                st = clst_err_set(err, CLST_E_INVAL,
                                  "attributes.nbf (not before) would be later than "
                                  "attributes.exp (expiry)");
            }
        }
        clst_vault_object_cleanup(&cur);
        if (st != CLST_OK) {
            st = clst_vault_reply_err(&rc, KIND, err);
            goto out;
        }
    }
    /* Governance: the version as it would be after the update, against the rules about what
     * the update changes. */
    if (clst_vault_governance_of(rc.vault) != NULL &&
        clst_gov_rules_for_update(sb.fields) != 0) {
        struct clst_vault_object cur;
        struct clst_gov_violation gv[CLST_GOV_RULE_COUNT];
        size_t n = 0;
        memset(&cur, 0, sizeof cur);
        st = clst_vault_store_get(rc.vault->store, KIND, name, version, &cur, NULL, err);
        if (st == CLST_OK) {
            struct clst_vault_object merged = cur; /* shallow: borrows cur's and changes' */
            if (sb.fields & CLST_VAULT_UPDATE_NBF) {
                merged.attrs.nbf = sb.attrs.nbf;
            }
            if (sb.fields & CLST_VAULT_UPDATE_EXP) {
                merged.attrs.exp = sb.attrs.exp;
            }
            if (sb.fields & CLST_VAULT_UPDATE_TAGS) {
                merged.tags = changes.tags;
            }
            n = clst_gov_check(clst_vault_governance_of(rc.vault), &merged, NULL,
                               cur.attrs.created, clst_gov_rules_for_update(sb.fields), gv);
        }
        clst_vault_object_cleanup(&cur);
        if (st != CLST_OK) {
            st = clst_vault_reply_err(&rc, KIND, err);
            goto out;
        }
        if (n > 0) {
            st = clst_gov_reply(&rc, gv, n);
            goto out;
        }
    }
    st = clst_vault_store_update(rc.vault->store, KIND, name, version, &changes, sb.fields,
                                 &out_obj, err);
    if (st != CLST_OK) {
        st = clst_vault_reply_err(&rc, KIND, err);
        goto out;
    }
    st = reply_secret(&rc, &out_obj, err);
out:
    free(changes.content_type);
    clst_vault_object_cleanup(&out_obj);
    clst_vault_secret_body_cleanup(&sb);
    json_decref(body);
    return st;
}

/* ---- listings, delete, recover, purge (rest_common.c) --------------------------------------- */

static const struct clst_vault_kind_rest SECRETS = {
    .kind = KIND,
    .perm_read = CLST_VAULT_PERM_SECRET_READ,
    .perm_deleted_read = CLST_VAULT_PERM_SECRET_DELETED_READ,
    .perm_delete = CLST_VAULT_PERM_SECRET_DELETE,
    .perm_recover = CLST_VAULT_PERM_SECRET_RECOVER,
    .perm_purge = CLST_VAULT_PERM_SECRET_PURGE,
    .item = secret_json,
    .list_nomem = "out of memory listing secrets",
    .reply = reply_secret,
};

static enum clst_status
h_list(void *ctx, const struct clst_http_request *req, struct clst_http_response *resp,
       struct clst_err *err)
{
    return clst_vault_kind_list(&SECRETS, CLST_VAULT_LIST_LIVE, ctx, req, resp, err);
}

static enum clst_status
h_versions(void *ctx, const struct clst_http_request *req, struct clst_http_response *resp,
           struct clst_err *err)
{
    return clst_vault_kind_list(&SECRETS, CLST_VAULT_LIST_VERSIONS, ctx, req, resp, err);
}

static enum clst_status
h_list_deleted(void *ctx, const struct clst_http_request *req, struct clst_http_response *resp,
               struct clst_err *err)
{
    return clst_vault_kind_list(&SECRETS, CLST_VAULT_LIST_DELETED, ctx, req, resp, err);
}

static enum clst_status
h_delete(void *ctx, const struct clst_http_request *req, struct clst_http_response *resp,
         struct clst_err *err)
{
    return clst_vault_kind_state_op(&SECRETS, CLST_VAULT_OP_DELETE, ctx, req, resp, err);
}

static enum clst_status
h_get_deleted(void *ctx, const struct clst_http_request *req, struct clst_http_response *resp,
              struct clst_err *err)
{
    return clst_vault_kind_state_op(&SECRETS, CLST_VAULT_OP_GET_DELETED, ctx, req, resp, err);
}

static enum clst_status
h_recover(void *ctx, const struct clst_http_request *req, struct clst_http_response *resp,
          struct clst_err *err)
{
    return clst_vault_kind_state_op(&SECRETS, CLST_VAULT_OP_RECOVER, ctx, req, resp, err);
}

static enum clst_status
h_purge(void *ctx, const struct clst_http_request *req, struct clst_http_response *resp,
        struct clst_err *err)
{
    return clst_vault_kind_purge(&SECRETS, ctx, req, resp, err);
}

static const struct clst_vault_route ROUTES[] = {
    {CLST_HTTP_GET, "/secrets", h_list},
    {CLST_HTTP_PUT, "/secrets/{name}", h_set},
    {CLST_HTTP_GET, "/secrets/{name}", h_get},
    {CLST_HTTP_PATCH, "/secrets/{name}", h_update},
    {CLST_HTTP_DELETE, "/secrets/{name}", h_delete},
    {CLST_HTTP_GET, "/secrets/{name}/versions", h_versions},
    {CLST_HTTP_GET, "/secrets/{name}/{version}", h_get},
    {CLST_HTTP_PATCH, "/secrets/{name}/{version}", h_update},
    {CLST_HTTP_GET, "/deletedsecrets", h_list_deleted},
    {CLST_HTTP_GET, "/deletedsecrets/{name}", h_get_deleted},
    {CLST_HTTP_DELETE, "/deletedsecrets/{name}", h_purge},
    {CLST_HTTP_POST, "/deletedsecrets/{name}/recover", h_recover},
};

enum clst_status
clst_vault_rest_secrets_register(struct clst_vault *v, struct clst_server *server,
                                 struct clst_err *err)
{
    return clst_vault_routes_add(v, server, ROUTES, sizeof ROUTES / sizeof ROUTES[0], err);
}
