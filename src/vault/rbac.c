/*
 * Role-based access control: the seven built-in roles, the permissions each grants, and how a role
 * assignment's scope covers an object.
 *
 * The roles follow the managed HSM's local roles (Crypto Officer, Crypto User, Crypto Service
 * Release User, Crypto Auditor) and the key vault's secret roles (Secrets Officer, Secrets User).
 * One deliberate difference: Cloister's Administrator holds every permission (the managed HSM's
 * Administrator manages role assignments but cannot use keys). The first principal a data
 * directory gets is an Administrator, and it must be able to do everything until the operator
 * hands out narrower roles.
 *
 *   permission                 Admin  C.Officer  C.User  Release  Auditor  S.Officer  S.User
 *   keys/read                    x        x        x                 x
 *   keys/create                  x        x        x
 *   keys/import                  x        x        x
 *   keys/write (update)          x        x        x
 *   keys/rotate                  x        x        x
 *   keys/delete                  x        x        x
 *   keys/backup                  x        x        x
 *   keys/restore                 x        x        x
 *   keys/encrypt..verify (6)     x                 x
 *   keys/release                 x                          x
 *   keys/deletedKeys/read        x        x        x                 x
 *   keys/deletedKeys/recover     x        x
 *   keys/deletedKeys/delete      x        x                                          (purge)
 *   rng                          x                 x                                  (vault-wide)
 *   secrets/readMetadata         x                                   x        x         x
 *   secrets/getSecret            x                                            x         x
 *   secrets/setSecret            x                                            x
 *   secrets/update               x                                            x
 *   secrets/delete               x                                            x
 *   secrets/backup, /restore     x                                            x
 *   secrets/deletedSecrets/read  x                                   x        x
 *   secrets/deletedSecrets/recover x                                          x
 *   secrets/deletedSecrets/delete  x                                          x      (purge)
 *   principals/read, /write      x                                                   (vault-wide)
 *
 * Scopes: an assignment at "/" covers the whole vault; at "/keys/NAME" only the key NAME (every
 * version, and the deleted key of that name); at "/secrets/NAME" only that secret. Listings of a
 * whole collection (GET /keys, /secrets, /deletedkeys, /deletedsecrets), rng and the principals
 * API need an assignment at "/". Listing the versions of one object is covered by its scope.
 * Names compare case-insensitively (as the store's).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "rest_int.h"

#define P(x) (UINT64_C(1) << CLST_VAULT_PERM_##x)

_Static_assert(CLST_VAULT_PERM_COUNT < 64, "permissions must fit a 64-bit mask");

static const char *const PERM_NAMES[CLST_VAULT_PERM_COUNT] = {
    [CLST_VAULT_PERM_KEY_READ] = "keys/read",
    [CLST_VAULT_PERM_KEY_CREATE] = "keys/create",
    [CLST_VAULT_PERM_KEY_IMPORT] = "keys/import",
    [CLST_VAULT_PERM_KEY_UPDATE] = "keys/write",
    [CLST_VAULT_PERM_KEY_ROTATE] = "keys/rotate",
    [CLST_VAULT_PERM_KEY_DELETE] = "keys/delete",
    [CLST_VAULT_PERM_KEY_BACKUP] = "keys/backup",
    [CLST_VAULT_PERM_KEY_RESTORE] = "keys/restore",
    [CLST_VAULT_PERM_KEY_ENCRYPT] = "keys/encrypt",
    [CLST_VAULT_PERM_KEY_DECRYPT] = "keys/decrypt",
    [CLST_VAULT_PERM_KEY_WRAP] = "keys/wrap",
    [CLST_VAULT_PERM_KEY_UNWRAP] = "keys/unwrap",
    [CLST_VAULT_PERM_KEY_SIGN] = "keys/sign",
    [CLST_VAULT_PERM_KEY_VERIFY] = "keys/verify",
    [CLST_VAULT_PERM_KEY_RELEASE] = "keys/release",
    [CLST_VAULT_PERM_KEY_DELETED_READ] = "keys/deletedKeys/read",
    [CLST_VAULT_PERM_KEY_RECOVER] = "keys/deletedKeys/recover",
    [CLST_VAULT_PERM_KEY_PURGE] = "keys/deletedKeys/delete",
    [CLST_VAULT_PERM_RNG] = "rng",
    [CLST_VAULT_PERM_SECRET_READ] = "secrets/readMetadata",
    [CLST_VAULT_PERM_SECRET_GET] = "secrets/getSecret",
    [CLST_VAULT_PERM_SECRET_SET] = "secrets/setSecret",
    [CLST_VAULT_PERM_SECRET_UPDATE] = "secrets/update",
    [CLST_VAULT_PERM_SECRET_DELETE] = "secrets/delete",
    [CLST_VAULT_PERM_SECRET_BACKUP] = "secrets/backup",
    [CLST_VAULT_PERM_SECRET_RESTORE] = "secrets/restore",
    [CLST_VAULT_PERM_SECRET_DELETED_READ] = "secrets/deletedSecrets/read",
    [CLST_VAULT_PERM_SECRET_RECOVER] = "secrets/deletedSecrets/recover",
    [CLST_VAULT_PERM_SECRET_PURGE] = "secrets/deletedSecrets/delete",
    [CLST_VAULT_PERM_PRINCIPAL_READ] = "principals/read",
    [CLST_VAULT_PERM_PRINCIPAL_WRITE] = "principals/write",
};

#define KEY_MANAGE                                                                                 \
    (P(KEY_READ) | P(KEY_CREATE) | P(KEY_IMPORT) | P(KEY_UPDATE) | P(KEY_ROTATE) | P(KEY_DELETE) | \
     P(KEY_BACKUP) | P(KEY_RESTORE) | P(KEY_DELETED_READ))
#define KEY_CRYPTO                                                                                 \
    (P(KEY_ENCRYPT) | P(KEY_DECRYPT) | P(KEY_WRAP) | P(KEY_UNWRAP) | P(KEY_SIGN) | P(KEY_VERIFY))
#define SECRET_ALL                                                                                 \
    (P(SECRET_READ) | P(SECRET_GET) | P(SECRET_SET) | P(SECRET_UPDATE) | P(SECRET_DELETE) |        \
     P(SECRET_BACKUP) | P(SECRET_RESTORE) | P(SECRET_DELETED_READ) | P(SECRET_RECOVER) |           \
     P(SECRET_PURGE))

struct role_def {
    const char *name;
    uint64_t perms;
    /* Where it may be assigned besides "/": keys, secrets, or both (0). */
    enum clst_vault_kind kind;
};

/* In the order 403 messages list them: narrowest first, Administrator last. */
static const struct role_def ROLES[] = {
    {CLST_VAULT_ROLE_SECRETS_USER, P(SECRET_READ) | P(SECRET_GET), CLST_VAULT_KIND_SECRET},
    {CLST_VAULT_ROLE_SECRETS_OFFICER, SECRET_ALL, CLST_VAULT_KIND_SECRET},
    {CLST_VAULT_ROLE_RELEASE_USER, P(KEY_RELEASE), CLST_VAULT_KIND_KEY},
    {CLST_VAULT_ROLE_CRYPTO_USER, KEY_MANAGE | KEY_CRYPTO | P(RNG), CLST_VAULT_KIND_KEY},
    {CLST_VAULT_ROLE_CRYPTO_OFFICER, KEY_MANAGE | P(KEY_RECOVER) | P(KEY_PURGE),
     CLST_VAULT_KIND_KEY},
    {CLST_VAULT_ROLE_CRYPTO_AUDITOR,
     P(KEY_READ) | P(KEY_DELETED_READ) | P(SECRET_READ) | P(SECRET_DELETED_READ), 0},
    {CLST_VAULT_ROLE_ADMINISTRATOR, (UINT64_C(1) << CLST_VAULT_PERM_COUNT) - 1, 0},
};

#define ROLE_COUNT (sizeof ROLES / sizeof ROLES[0])

static const struct role_def *
role_find(const char *name, bool any_case)
{
    if (name == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < ROLE_COUNT; i++) {
        if (any_case ? strcasecmp(ROLES[i].name, name) == 0 : strcmp(ROLES[i].name, name) == 0) {
            return &ROLES[i];
        }
    }
    return NULL;
}

const char *
clst_vault_perm_name(enum clst_vault_perm perm)
{
    if ((unsigned)perm >= CLST_VAULT_PERM_COUNT) {
        return "?";
    }
    return PERM_NAMES[perm];
}

enum clst_vault_kind
clst_vault_perm_kind(enum clst_vault_perm perm)
{
    if (perm <= CLST_VAULT_PERM_KEY_PURGE) {
        return CLST_VAULT_KIND_KEY;
    }
    if (perm >= CLST_VAULT_PERM_SECRET_READ && perm <= CLST_VAULT_PERM_SECRET_PURGE) {
        return CLST_VAULT_KIND_SECRET;
    }
    return (enum clst_vault_kind)0;
}

bool
clst_vault_role_valid(const char *role)
{
    return role_find(role, false) != NULL;
}

const char *
clst_vault_role_canonical(const char *role)
{
    const struct role_def *r = role_find(role, true);
    return r != NULL ? r->name : NULL;
}

bool
clst_vault_role_grants(const char *role, enum clst_vault_perm perm)
{
    const struct role_def *r = role_find(role, false);
    if (r == NULL || (unsigned)perm >= CLST_VAULT_PERM_COUNT) {
        return false;
    }
    return (r->perms & (UINT64_C(1) << perm)) != 0;
}

bool
clst_vault_role_scope_ok(const char *role, const char *scope)
{
    const struct role_def *r = role_find(role, false);
    if (r == NULL || scope == NULL || !clst_vault_scope_valid(scope)) {
        return false;
    }
    if (strcmp(scope, "/") == 0) {
        return true;
    }
    enum clst_vault_kind k =
        strncmp(scope, "/keys/", 6) == 0 ? CLST_VAULT_KIND_KEY : CLST_VAULT_KIND_SECRET;
    return r->kind == 0 || r->kind == k;
}

bool
clst_vault_scope_covers(const char *scope, enum clst_vault_kind kind, const char *name)
{
    if (scope == NULL) {
        return false;
    }
    if (strcmp(scope, "/") == 0) {
        return true;
    }
    if (name == NULL) {
        return false;
    }
    const char *prefix = kind == CLST_VAULT_KIND_KEY      ? "/keys/"
                         : kind == CLST_VAULT_KIND_SECRET ? "/secrets/"
                                                          : NULL;
    if (prefix == NULL) {
        return false;
    }
    size_t n = strlen(prefix);
    return strncmp(scope, prefix, n) == 0 && scope[n] != '\0' && strcasecmp(scope + n, name) == 0;
}

bool
clst_vault_allowed(const struct clst_vault_principal *p, enum clst_vault_perm perm,
                   enum clst_vault_kind kind, const char *name)
{
    enum clst_vault_kind pk = clst_vault_perm_kind(perm);
    if (p == NULL || !p->enabled || (unsigned)perm >= CLST_VAULT_PERM_COUNT) {
        return false;
    }
    /* Vault-wide permissions (rng, principals) are never scoped to an object, and a permission
     * asked for on an object of the other kind is a programming error: both fail closed. */
    if (pk == 0) {
        name = NULL;
    } else if (kind != 0 && kind != pk) {
        return false;
    }
    for (size_t i = 0; i < p->role_count; i++) {
        if (clst_vault_role_grants(p->roles[i].role, perm) &&
            clst_vault_scope_covers(p->roles[i].scope, pk, name)) {
            return true;
        }
    }
    return false;
}

enum clst_status
clst_vault_authorize(const struct clst_vault_rctx *rc, enum clst_vault_perm perm,
                     enum clst_vault_kind kind, const char *name, struct clst_err *err)
{
    const struct clst_vault_principal *p = rc->principal;
    enum clst_vault_kind pk = clst_vault_perm_kind(perm);
    char roles[160];
    char scope[CLST_VAULT_SCOPE_MAX + 16];
    size_t used = 0;

    if (kind == 0 || pk == 0) {
        name = NULL;
    }
    if (clst_vault_allowed(p, perm, pk != 0 ? pk : kind, name)) {
        return CLST_OK;
    }
    roles[0] = '\0';
    for (size_t i = 0; i < ROLE_COUNT; i++) {
        if ((ROLES[i].perms & (UINT64_C(1) << perm)) == 0) {
            continue;
        }
        int n = snprintf(roles + used, sizeof roles - used, "%s%s", used > 0 ? ", " : "",
                         ROLES[i].name);
        if (n < 0 || (size_t)n >= sizeof roles - used) {
            break;
        }
        used += (size_t)n;
    }
    if (name != NULL) {
        /* name has passed clst_vault_check_name: [0-9A-Za-z-] only, safe to echo. */
        snprintf(scope, sizeof scope, "/%s/%s", pk == CLST_VAULT_KIND_KEY ? "keys" : "secrets",
                 name);
        return clst_err_set(err, CLST_E_DENIED,
                            "principal '%s' may not %s on %s; that needs one of the roles %s "
                            "assigned at / or %s",
                            p != NULL ? p->id : "?", clst_vault_perm_name(perm), scope, roles,
                            scope);
    }
    return clst_err_set(err, CLST_E_DENIED,
                        "principal '%s' may not %s on the whole vault; that needs one of the "
                        "roles %s assigned at /",
                        p != NULL ? p->id : "?", clst_vault_perm_name(perm), roles);
}
