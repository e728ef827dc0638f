/*
 * Cloister's principals API (Cloister-specific; not part of the cloud key vault's API):
 *
 *   POST   /principals          {"name", "id"?, "roles": [{"role", "scope"?}]}  → the principal
 *                               and its bearer "token", shown this once (the store keeps only
 *                               its SHA-256)
 *   GET    /principals          list (paged like the vault's lists: maxresults, $skiptoken)
 *   GET    /principals/{id}     one principal
 *   DELETE /principals/{id}     remove it; its token stops working at once
 *
 * All of it needs principals/read or principals/write at "/" (only Administrator has them).
 * api-version is optional here (checked when present). A principal cannot delete itself, so the
 * vault always keeps at least the administrator who is making the request.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cloister/crypto.h>

#include "rest_int.h"

#define TOKEN_BYTES 32 /* 256 bits of randomness; 43 base64url characters */

static bool
put(json_t *obj, const char *key, json_t *v)
{
    return v != NULL && json_object_set_new(obj, key, v) == 0;
}

static json_t *
principal_json(const struct clst_vault_principal *p)
{
    json_t *j = json_object();
    json_t *roles = json_array();
    bool ok = j != NULL && roles != NULL;
    for (size_t i = 0; ok && i < p->role_count; i++) {
        json_t *r = json_object();
        if (r == NULL || !put(r, "role", json_string(p->roles[i].role)) ||
            !put(r, "scope", json_string(p->roles[i].scope))) {
            json_decref(r);
            ok = false;
        } else {
            ok = json_array_append_new(roles, r) == 0; /* steals r even on failure */
        }
    }
    ok = ok && put(j, "id", json_string(p->id)) && put(j, "name", json_string(p->name)) &&
         put(j, "enabled", json_boolean(p->enabled));
    if (ok && p->created != 0) {
        ok = put(j, "created", json_integer(p->created));
    }
    if (ok && p->updated != 0) {
        ok = put(j, "updated", json_integer(p->updated));
    }
    if (ok) {
        ok = put(j, "roles", roles); /* json_object_set_new steals roles even on failure */
        roles = NULL;
    }
    json_decref(roles);
    if (!ok) {
        json_decref(j);
        return NULL;
    }
    return j;
}

static enum clst_status
start(void *ctx, const struct clst_http_request *req, struct clst_http_response *resp,
      struct clst_vault_rctx *rc, enum clst_vault_perm perm, struct clst_err *err)
{
    enum clst_status st = clst_vault_rctx_begin_cloister(ctx, req, resp, rc, err);
    if (st == CLST_OK) {
        st = clst_vault_authorize(rc, perm, 0, NULL, err);
    }
    return st;
}

static enum clst_status
check_id(const char *id, struct clst_err *err)
{
    size_t n = id != NULL ? strlen(id) : 0;
    bool ok = n >= 1 && n <= CLST_VAULT_PRINCIPAL_ID_MAX;
    for (size_t i = 0; ok && i < n; i++) {
        char c = id[i];
        ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
             c == '.' || c == '_' || c == '-';
    }
    if (!ok) {
        return clst_err_set(err, CLST_E_INVAL,
                            "a principal id has 1 to %d characters of 0-9, a-z, A-Z, '.', '_' "
                            "and '-'",
                            CLST_VAULT_PRINCIPAL_ID_MAX);
    }
    return CLST_OK;
}

/* Parses "roles": [{"role": …, "scope": … (default "/")}], canonicalizing role names. */
static enum clst_status
parse_roles(json_t *arr, struct clst_vault_role_assignment **out, size_t *out_count,
            struct clst_err *err)
{
    size_t n = arr != NULL ? json_array_size(arr) : 0;
    struct clst_vault_role_assignment *roles = NULL;
    if (n > CLST_VAULT_ROLES_MAX) {
        return clst_err_set(err, CLST_E_INVAL, "%zu role assignments; at most %d are allowed", n,
                            CLST_VAULT_ROLES_MAX);
    }
    if (n > 0 && (roles = calloc(n, sizeof *roles)) == NULL) {
        return clst_err_set(err, CLST_E_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        json_t *r = json_array_get(arr, i);
        const char *role = NULL;
        const char *scope = "/";
        enum clst_status st;
        if (!json_is_object(r)) {
            free(roles);
            return clst_err_set(err, CLST_E_INVAL,
                                "roles[%zu] must be an object {\"role\": …, \"scope\": …}", i);
        }
        if ((st = clst_vault_json_string(r, "role", true, CLST_VAULT_ROLE_MAX, &role, NULL,
                                         err)) != CLST_OK ||
            (st = clst_vault_json_string(r, "scope", false, CLST_VAULT_SCOPE_MAX, &scope, NULL,
                                         err)) != CLST_OK) {
            free(roles);
            return clst_err_prefix(err, "roles[%zu]", i);
        }
        const char *canon = clst_vault_role_canonical(role);
        if (canon == NULL) {
            free(roles);
            return clst_err_set(err, CLST_E_INVAL,
                                "roles[%zu]: unknown role; the roles are Administrator, Crypto "
                                "Officer, Crypto User, Crypto Service Release User, Crypto "
                                "Auditor, Secrets Officer, Secrets User",
                                i);
        }
        if (!clst_vault_scope_valid(scope)) {
            free(roles);
            return clst_err_set(err, CLST_E_INVAL,
                                "roles[%zu]: the scope must be \"/\", \"/keys/NAME\" or "
                                "\"/secrets/NAME\" (NAME: 1-127 of 0-9, a-z, A-Z, '-')",
                                i);
        }
        if (!clst_vault_role_scope_ok(canon, scope)) {
            free(roles);
            return clst_err_set(err, CLST_E_INVAL,
                                "roles[%zu]: the role %s cannot be assigned at %s (a key role "
                                "needs \"/\" or \"/keys/NAME\", a secret role \"/\" or "
                                "\"/secrets/NAME\")",
                                i, canon, strncmp(scope, "/keys/", 6) == 0 ? "a key" : "a secret");
        }
        snprintf(roles[i].role, sizeof roles[i].role, "%s", canon);
        snprintf(roles[i].scope, sizeof roles[i].scope, "%s", scope);
        for (size_t k = 0; k < i; k++) {
            if (strcmp(roles[k].role, roles[i].role) == 0 &&
                strcmp(roles[k].scope, roles[i].scope) == 0) {
                free(roles);
                return clst_err_set(err, CLST_E_INVAL, "roles[%zu] repeats roles[%zu]", i, k);
            }
        }
    }
    *out = roles;
    *out_count = n;
    return CLST_OK;
}

void
clst_vault_principal_body_cleanup(struct clst_vault_principal_body *b)
{
    if (b != NULL) {
        free(b->roles);
        b->roles = NULL;
        b->role_count = 0;
    }
}

enum clst_status
clst_vault_principal_body_parse(json_t *body, struct clst_vault_principal_body *out,
                                struct clst_err *err)
{
    const char *name = NULL;
    const char *id = NULL;
    bool has_id = false;
    json_t *roles_json = NULL;
    enum clst_status st;

    memset(out, 0, sizeof *out);
    out->enabled = true;
    st = clst_vault_json_string(body, "name", true, CLST_VAULT_PRINCIPAL_NAME_MAX, &name, NULL,
                                err);
    if (st != CLST_OK) {
        return st;
    }
    if (name[0] == '\0') {
        return clst_err_set(err, CLST_E_INVAL, "the principal name is empty");
    }
    for (const char *c = name; *c != '\0'; c++) {
        if (*c < 0x20 || *c > 0x7e) {
            return clst_err_set(err, CLST_E_INVAL,
                                "a principal name has 1 to %d printable ASCII characters",
                                CLST_VAULT_PRINCIPAL_NAME_MAX);
        }
    }
    if ((st = clst_vault_json_string(body, "id", false, CLST_VAULT_PRINCIPAL_ID_MAX + 1, &id,
                                     &has_id, err)) != CLST_OK ||
        (has_id && (st = check_id(id, err)) != CLST_OK) ||
        (st = clst_vault_json_bool(body, "enabled", false, &out->enabled, NULL, err)) != CLST_OK ||
        (st = clst_vault_json_array(body, "roles", false, &roles_json, err)) != CLST_OK ||
        (st = parse_roles(roles_json, &out->roles, &out->role_count, err)) != CLST_OK) {
        return st;
    }
    snprintf(out->name, sizeof out->name, "%s", name);
    if (has_id) {
        snprintf(out->id, sizeof out->id, "%s", id);
    }
    return CLST_OK;
}

static enum clst_status
h_create(void *ctx, const struct clst_http_request *req, struct clst_http_response *resp,
         struct clst_err *err)
{
    struct clst_vault_rctx rc;
    struct clst_vault_principal_body pb;
    struct clst_vault_principal p;
    struct clst_vault_principal stored;
    struct clst_buf token;
    struct clst_buf out;
    uint8_t raw[TOKEN_BYTES];
    json_t *body = NULL;
    json_t *pj = NULL;
    char *rest = NULL;
    enum clst_status st;

    memset(&pb, 0, sizeof pb);
    memset(&p, 0, sizeof p);
    memset(&stored, 0, sizeof stored);
    clst_buf_init_secret(&token, 64);
    clst_buf_init_secret(&out, 64 * 1024);
    st = start(ctx, req, resp, &rc, CLST_VAULT_PERM_PRINCIPAL_WRITE, err);
    if (st == CLST_OK) {
        st = clst_vault_body_json(&rc, &body, err);
    }
    if (st == CLST_OK) {
        st = clst_vault_principal_body_parse(body, &pb, err);
    }
    if (st != CLST_OK) {
        st = clst_vault_reply_err(&rc, 0, err);
        goto out;
    }
    memcpy(p.name, pb.name, sizeof p.name);
    p.enabled = pb.enabled;
    p.roles = pb.roles;
    p.role_count = pb.role_count;
    if (pb.id[0] != '\0') {
        memcpy(p.id, pb.id, sizeof p.id);
    } else {
        uint8_t rid[8];
        if (clst_random(rid, sizeof rid) != CLST_OK ||
            clst_hex_to_str(rid, sizeof rid, p.id + 2, sizeof p.id - 2) != CLST_OK) {
            st = clst_err_set(err, CLST_E_CRYPTO, "generating a principal id failed");
            goto out;
        }
        p.id[0] = 'p';
        p.id[1] = '-';
    }
    if (clst_random(raw, sizeof raw) != CLST_OK ||
        clst_b64url_encode(raw, sizeof raw, &token) != CLST_OK ||
        clst_sha256(token.data, token.size, p.token_hash) != CLST_OK) {
        st = clst_err_set(err, CLST_E_CRYPTO, "generating a token failed");
        goto out;
    }
    st = clst_vault_store_principal_put(rc.vault->store, &p, err);
    if (st == CLST_E_CONFLICT) {
        st = clst_vault_reply_status(&rc, 0, CLST_E_CONFLICT,
                                     "a principal with the id '%s' exists already", p.id);
        goto out;
    }
    if (st == CLST_OK) {
        st = clst_vault_store_principal_get(rc.vault->store, p.id, &stored, err);
    }
    if (st != CLST_OK) {
        st = clst_vault_reply_err(&rc, 0, err);
        goto out;
    }
    /* {"token":"…",<the principal>}, assembled in wiped memory. */
    pj = principal_json(&stored);
    rest = pj != NULL ? json_dumps(pj, JSON_COMPACT) : NULL;
    if (rest == NULL || rest[0] != '{' || clst_buf_append_str(&out, "{\"token\":\"") != CLST_OK ||
        clst_buf_append(&out, token.data, token.size) != CLST_OK ||
        clst_buf_append_str(&out, "\",") != CLST_OK ||
        clst_buf_append_str(&out, rest + 1) != CLST_OK) {
        st = clst_err_set(err, CLST_E_NOMEM, "out of memory building the response");
        goto out;
    }
    clst_log_info("vault: principal '%s' created by '%s'", stored.id, rc.principal->id);
    st = clst_http_response_body(resp, 200, "application/json; charset=utf-8", out.data, out.size);
out:
    clst_wipe(raw, sizeof raw);
    clst_wipe(p.token_hash, sizeof p.token_hash);
    clst_vault_principal_body_cleanup(&pb);
    free(rest);
    json_decref(pj);
    json_decref(body);
    clst_vault_principal_cleanup(&stored);
    clst_buf_cleanup(&token);
    clst_buf_cleanup(&out);
    return st;
}

static enum clst_status
h_list(void *ctx, const struct clst_http_request *req, struct clst_http_response *resp,
       struct clst_err *err)
{
    struct clst_vault_rctx rc;
    struct clst_vault_principal_list list = {0};
    const char *token = NULL;
    size_t max = 0;
    json_t *items = NULL;
    enum clst_status st = start(ctx, req, resp, &rc, CLST_VAULT_PERM_PRINCIPAL_READ, err);
    if (st == CLST_OK) {
        st = clst_vault_page_params(&rc, &max, &token, err);
    }
    if (st == CLST_OK) {
        st = clst_vault_store_principal_list(rc.vault->store, max, token, &list, err);
    }
    if (st != CLST_OK) {
        st = clst_vault_reply_err(&rc, 0, err);
        goto out;
    }
    items = json_array();
    if (items == NULL) {
        st = clst_err_set(err, CLST_E_NOMEM, "out of memory listing principals");
        goto out;
    }
    for (size_t i = 0; i < list.count; i++) {
        json_t *item = principal_json(&list.items[i]);
        if (item == NULL || json_array_append_new(items, item) != 0) {
            st = clst_err_set(err, CLST_E_NOMEM, "out of memory listing principals");
            goto out;
        }
    }
    st = clst_vault_reply_list(&rc, items, "/principals", max, list.next, err);
    items = NULL;
out:
    json_decref(items);
    clst_vault_principal_list_cleanup(&list);
    return st;
}

static enum clst_status
h_get(void *ctx, const struct clst_http_request *req, struct clst_http_response *resp,
      struct clst_err *err)
{
    struct clst_vault_rctx rc;
    struct clst_vault_principal p;
    const char *id = clst_http_request_param(req, "id");
    memset(&p, 0, sizeof p);
    enum clst_status st = start(ctx, req, resp, &rc, CLST_VAULT_PERM_PRINCIPAL_READ, err);
    if (st == CLST_OK) {
        st = check_id(id, err);
    }
    if (st == CLST_OK) {
        st = clst_vault_store_principal_get(rc.vault->store, id, &p, err);
    }
    if (st == CLST_OK) {
        json_t *j = principal_json(&p);
        if (j == NULL) {
            st = clst_err_set(err, CLST_E_NOMEM, "out of memory");
        } else {
            clst_http_response_json_new(resp, 200, j);
        }
    } else {
        st = clst_vault_reply_err(&rc, 0, err);
    }
    clst_vault_principal_cleanup(&p);
    return st;
}

static enum clst_status
h_delete(void *ctx, const struct clst_http_request *req, struct clst_http_response *resp,
         struct clst_err *err)
{
    struct clst_vault_rctx rc;
    struct clst_vault_principal p;
    const char *id = clst_http_request_param(req, "id");
    memset(&p, 0, sizeof p);
    enum clst_status st = start(ctx, req, resp, &rc, CLST_VAULT_PERM_PRINCIPAL_WRITE, err);
    if (st == CLST_OK) {
        st = check_id(id, err);
    }
    if (st == CLST_OK && strcmp(id, rc.principal->id) == 0) {
        st = clst_err_set(err, CLST_E_CONFLICT,
                          "a principal cannot delete itself; ask another administrator (this "
                          "keeps at least one administrator in the vault)");
    }
    if (st == CLST_OK) {
        st = clst_vault_store_principal_get(rc.vault->store, id, &p, err);
    }
    if (st == CLST_OK) {
        st = clst_vault_store_principal_delete(rc.vault->store, id, err);
    }
    if (st != CLST_OK) {
        st = clst_vault_reply_err(&rc, 0, err);
        goto out;
    }
    clst_log_info("vault: principal '%s' deleted by '%s'", p.id, rc.principal->id);
    json_t *j = principal_json(&p);
    if (j == NULL) {
        st = clst_err_set(err, CLST_E_NOMEM, "out of memory");
        goto out;
    }
    clst_http_response_json_new(resp, 200, j);
out:
    clst_vault_principal_cleanup(&p);
    return st;
}

static const struct clst_vault_route ROUTES[] = {
    {CLST_HTTP_POST, "/principals", h_create},
    {CLST_HTTP_GET, "/principals", h_list},
    {CLST_HTTP_GET, "/principals/{id}", h_get},
    {CLST_HTTP_DELETE, "/principals/{id}", h_delete},
};

enum clst_status
clst_vault_rest_principals_register(struct clst_vault *v, struct clst_server *server,
                                    struct clst_err *err)
{
    return clst_vault_routes_add(v, server, ROUTES, sizeof ROUTES / sizeof ROUTES[0], err);
}
