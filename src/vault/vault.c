/*
 * The vault object: configuration, route registration, the bearer-token authentication hook and
 * the first administrator.
 *
 * Tokens. A principal's token is 32 random bytes as base64url (43 characters), shown once when
 * the principal is created; the store keeps only SHA-256(token text). Authentication hashes the
 * presented token and looks the principal up by that hash. The lookup is an indexed equality
 * match on a hash of a high-entropy secret, so its timing tells an attacker nothing useful about
 * any stored token; the hash the store returns is still compared again with CRYPTO_memcmp
 * (clst_ct_equal) before the principal is accepted.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cloister/crypto.h>

#include "governance.h"
#include "release.h"
#include "rest_int.h"

/* A token longer than this is not one of ours (ours are 43 characters). */
#define TOKEN_TEXT_MAX 1024

/* What clst_vault_new allocates: the vault and, beside it, what the REST layer's struct does
 * not hold (the governance rules). `v` comes first, so a vault pointer is a box pointer. */
struct vault_box {
    struct clst_vault v;
    const struct clst_vault_governance *governance;
};

const struct clst_vault_governance *
clst_vault_governance_of(const struct clst_vault *v)
{
    if (v == NULL) {
        return NULL;
    }
    return ((const struct vault_box *)(const void *)v)->governance;
}

void
clst_vault_config_init(struct clst_vault_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->retention_days = CLST_VAULT_RETENTION_DEFAULT;
}

/* "https://host[:port]" with a host of [0-9A-Za-z.-] (or [IPv6]) and nothing after it. */
static bool
base_url_ok(const char *u)
{
    if (strncmp(u, "https://", 8) != 0 || u[8] == '\0') {
        return false;
    }
    for (const char *p = u + 8; *p != '\0'; p++) {
        char c = *p;
        bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  c == '-' || c == '.' || c == ':' || c == '[' || c == ']';
        if (!ok) {
            return false;
        }
    }
    return true;
}

enum clst_status
clst_vault_new(struct clst_vault_store *store, struct clst_vault_masterkey *mk,
               const struct clst_vault_config *cfg, struct clst_vault **out, struct clst_err *err)
{
    struct clst_vault_config defaults;
    if (store == NULL || out == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "clst_vault_new: store and out are required");
    }
    if (cfg == NULL) {
        clst_vault_config_init(&defaults);
        cfg = &defaults;
    }
    int days = cfg->retention_days == 0 ? CLST_VAULT_RETENTION_DEFAULT : cfg->retention_days;
    if (days < CLST_VAULT_RETENTION_MIN || days > CLST_VAULT_RETENTION_MAX) {
        return clst_err_set(err, CLST_E_INVAL,
                            "the soft-delete retention is %d days; choose %d to %d days", days,
                            CLST_VAULT_RETENTION_MIN, CLST_VAULT_RETENTION_MAX);
    }
    if (cfg->base_url != NULL &&
        (strlen(cfg->base_url) > CLST_VAULT_BASE_URL_MAX || !base_url_ok(cfg->base_url))) {
        return clst_err_set(err, CLST_E_INVAL,
                            "the vault base URL must be https://HOST[:PORT] without a path "
                            "(at most %d characters)",
                            CLST_VAULT_BASE_URL_MAX);
    }
    struct vault_box *box = calloc(1, sizeof *box);
    if (box == NULL) {
        return clst_err_set(err, CLST_E_NOMEM, "out of memory creating the vault");
    }
    struct clst_vault *v = &box->v;
    box->governance = cfg->governance;
    v->store = store;
    v->mk = mk;
    v->clock = cfg->clock != NULL ? cfg->clock : clst_clock_system();
    if (cfg->base_url != NULL) {
        memcpy(v->base_url, cfg->base_url, strlen(cfg->base_url) + 1);
    }
    v->retention_days = days;
    v->purge_protection = cfg->purge_protection;
    /* The cloud vault's DeletionRecoveryLevel: "Customized" when the retention is below 90 days;
     * "+Purgeable" unless purge protection is on. */
    snprintf(v->recovery_level, sizeof v->recovery_level, "%sRecoverable%s",
             days < CLST_VAULT_RETENTION_MAX ? "Customized" : "",
             v->purge_protection ? "" : "+Purgeable");
    *out = v;
    return CLST_OK;
}

void
clst_vault_free(struct clst_vault *v)
{
    free(v); /* the box: v is its first member */
}

/* ---- authentication ------------------------------------------------------------------------- */

/* RFC 6750 b64token: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=" */
static bool
token_syntax_ok(const char *t, size_t n)
{
    size_t i = 0;
    for (; i < n; i++) {
        char c = t[i];
        bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/';
        if (!ok) {
            break;
        }
    }
    if (i == 0) {
        return false;
    }
    for (; i < n; i++) {
        if (t[i] != '=') {
            return false;
        }
    }
    return true;
}

static enum clst_status
authenticate(void *ctx, const struct clst_http_request *req, const char *authorization,
             void **out_principal, struct clst_err *err)
{
    struct clst_vault *v = ctx;
    struct clst_vault_principal *p = NULL;
    uint8_t hash[CLST_VAULT_TOKEN_HASH_SIZE];
    enum clst_status rc = CLST_E_VERIFY;
    (void)req;

    if (authorization == NULL || authorization[0] == '\0') {
        clst_err_set(err, CLST_E_VERIFY, "Request is missing a Bearer token.");
        goto out;
    }
    const char *s = authorization;
    if (strncasecmp(s, "Bearer", 6) != 0 || (s[6] != ' ' && s[6] != '\t')) {
        clst_err_set(err, CLST_E_VERIFY,
                     "the Authorization header must be 'Bearer <token>' (another scheme was "
                     "sent)");
        goto out;
    }
    s += 6;
    while (*s == ' ' || *s == '\t') {
        s++;
    }
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t')) {
        n--;
    }
    if (n == 0 || n > TOKEN_TEXT_MAX || !token_syntax_ok(s, n)) {
        clst_err_set(err, CLST_E_VERIFY, "the bearer token is malformed");
        goto out;
    }
    if (clst_sha256(s, n, hash) != CLST_OK) {
        rc = clst_err_set(err, CLST_E_CRYPTO, "SHA-256 of the bearer token failed");
        goto out;
    }
    p = calloc(1, sizeof *p);
    if (p == NULL) {
        rc = clst_err_set(err, CLST_E_NOMEM, "out of memory authenticating a request");
        goto out;
    }
    enum clst_status st = clst_vault_store_principal_find_by_token(v->store, hash, p, err);
    if (st == CLST_E_NOTFOUND) {
        clst_err_set(err, CLST_E_VERIFY, "the bearer token is not valid (unknown or revoked)");
        goto out;
    }
    if (st == CLST_E_VERIFY) {
        /* A principal row failed its integrity check: the storage is at fault, not the client. */
        clst_log_error("vault: authentication: %s", err != NULL ? err->msg : "integrity failure");
        rc = clst_err_set(err, CLST_E_INTERNAL, "principal storage failed an integrity check");
        goto out;
    }
    if (st != CLST_OK) {
        rc = st;
        goto out;
    }
    if (!clst_ct_equal(p->token_hash, hash, sizeof hash)) {
        clst_err_set(err, CLST_E_VERIFY, "the bearer token is not valid (unknown or revoked)");
        goto out;
    }
    if (!p->enabled) {
        clst_err_set(err, CLST_E_VERIFY, "the bearer token belongs to a disabled principal");
        goto out;
    }
    *out_principal = p;
    p = NULL;
    rc = CLST_OK;
out:
    if (p != NULL) {
        clst_vault_principal_cleanup(p);
        free(p);
    }
    clst_wipe(hash, sizeof hash);
    return rc;
}

static void
principal_free(void *ctx, void *principal)
{
    (void)ctx;
    if (principal != NULL) {
        clst_vault_principal_cleanup(principal);
        free(principal);
    }
}

/* The principal's id for audit records ("admin", or the id the vault assigned). */
static const char *
principal_name(void *ctx, const void *principal)
{
    (void)ctx;
    const struct clst_vault_principal *p = principal;
    return p != NULL ? p->id : NULL;
}

enum clst_status
clst_vault_register(struct clst_vault *v, struct clst_server *server, struct clst_err *err)
{
    enum clst_status st;
    if (v == NULL || server == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "clst_vault_register: vault and server required");
    }
    struct clst_server_auth auth = {
        .authenticate = authenticate,
        .principal_free = principal_free,
        .ctx = v,
    };
    if ((st = clst_server_auth_set(server, &auth, err)) != CLST_OK ||
        (st = clst_server_principal_namer_set(server, principal_name, err)) != CLST_OK ||
        (st = clst_vault_rest_secrets_register(v, server, err)) != CLST_OK ||
        (st = clst_vault_rest_keys_register(v, server, err)) != CLST_OK ||
        (st = clst_vault_rest_release_register(v, server, err)) != CLST_OK ||
        (st = clst_vault_rest_principals_register(v, server, err)) != CLST_OK) {
        return st;
    }
    return CLST_OK;
}

enum clst_status
clst_vault_bootstrap_admin(struct clst_vault *v, const uint8_t token_sha256[static 32],
                           bool *out_created, struct clst_err *err)
{
    struct clst_vault_principal_list list = {0};
    enum clst_status st = clst_vault_store_principal_list(v->store, 1, NULL, &list, err);
    if (st != CLST_OK) {
        return st;
    }
    size_t count = list.count;
    clst_vault_principal_list_cleanup(&list);
    if (count > 0) {
        if (out_created != NULL) {
            *out_created = false;
        }
        return CLST_OK;
    }
    struct clst_vault_role_assignment role = {
        .role = CLST_VAULT_ROLE_ADMINISTRATOR,
        .scope = "/",
    };
    struct clst_vault_principal p = {
        .id = CLST_VAULT_BOOTSTRAP_ADMIN_ID,
        .name = "administrator (created with the data directory)",
        .enabled = true,
        .roles = &role,
        .role_count = 1,
    };
    memcpy(p.token_hash, token_sha256, sizeof p.token_hash);
    st = clst_vault_store_principal_put(v->store, &p, err);
    clst_wipe(p.token_hash, sizeof p.token_hash);
    if (st == CLST_E_CONFLICT) {
        /* Another process bootstrapped at the same moment: the vault has its administrator. */
        if (out_created != NULL) {
            *out_created = false;
        }
        clst_err_clear(err);
        return CLST_OK;
    }
    if (st != CLST_OK) {
        return clst_err_prefix(err, "creating the first administrator");
    }
    if (out_created != NULL) {
        *out_created = true;
    }
    return CLST_OK;
}
