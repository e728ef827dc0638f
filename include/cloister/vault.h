/*
 * Cloister vault: the key vault's REST data plane (keys, secrets, deleted objects) compatible with
 * the cloud key vault's wire format, plus a Cloister-specific principals API, on top of the vault
 * store (vault_store.h) and hosted by the server (server.h).
 *
 * Authentication: every vault route is protected. Clients send `Authorization: Bearer <token>`;
 * the vault hashes the token (SHA-256) and looks the principal up in the store by that hash (the
 * store never holds tokens). A missing, malformed or unknown token gets the server's 401 with the
 * `WWW-Authenticate: Bearer authorization="…", resource="…"` challenge.
 *
 * Authorization: each principal holds role assignments (role, scope) where scope is "/" (the
 * whole vault), "/keys/NAME" or "/secrets/NAME". The seven built-in roles and what they allow are
 * documented in src/vault/rbac.c and docs/vault.md.
 *
 * Threading: the vault object is immutable after clst_vault_register(); handlers may run on any
 * number of server threads at once (the store is thread-safe).
 */
#ifndef CLOISTER_VAULT_H
#define CLOISTER_VAULT_H

#include <cloister/core.h>
#include <cloister/server.h>
#include <cloister/vault_store.h>

struct clst_vault_governance;

#define CLST_VAULT_RETENTION_MIN     7  /* soft-delete retention days, as the cloud vault allows */
#define CLST_VAULT_RETENTION_MAX     90
#define CLST_VAULT_RETENTION_DEFAULT 90
#define CLST_VAULT_BASE_URL_MAX      256

/* The seven built-in role names (what role assignments hold). */
#define CLST_VAULT_ROLE_ADMINISTRATOR  "Administrator"
#define CLST_VAULT_ROLE_CRYPTO_OFFICER "Crypto Officer"
#define CLST_VAULT_ROLE_CRYPTO_USER    "Crypto User"
#define CLST_VAULT_ROLE_RELEASE_USER   "Crypto Service Release User"
#define CLST_VAULT_ROLE_CRYPTO_AUDITOR "Crypto Auditor"
#define CLST_VAULT_ROLE_SECRETS_OFFICER "Secrets Officer"
#define CLST_VAULT_ROLE_SECRETS_USER   "Secrets User"

/* The id of the principal clst_vault_bootstrap_admin() creates. */
#define CLST_VAULT_BOOTSTRAP_ADMIN_ID "admin"

struct clst_vault_config {
    /* "https://host[:port]" (no trailing '/', no path) used in key and secret ids, recovery ids
     * and nextLinks. NULL: taken from each request's Host header ("https://" + Host), so ids
     * carry the scheme, host and port the client used (what the SDKs need). */
    const char *base_url;
    /* Soft-delete retention in days, CLST_VAULT_RETENTION_MIN..MAX; 0 = the default (90). */
    int retention_days;
    /* When set, deleted objects cannot be purged before their scheduled purge date (403), and
     * recoveryLevel says "Recoverable" instead of "Recoverable+Purgeable". */
    bool purge_protection;
    /* NULL: the system clock. Borrowed: it must outlive the vault. */
    const struct clst_clock *clock;
    /* Governance rules enforced on key and secret writes (vault_governance.h,
     * clst_vault_governance_load); NULL: none. Borrowed: it must outlive the vault. */
    const struct clst_vault_governance *governance;
};

struct clst_vault;

/* Fills cfg with the defaults (base URL from Host, 90 days, no purge protection, system clock). */
void clst_vault_config_init(struct clst_vault_config *cfg);

/*
 * Creates a vault over `store` (borrowed: it must outlive the vault). `mk` (may be NULL; borrowed)
 * is the master key the store was opened with; the key operations use it to seal backups.
 * The configuration is validated (CLST_E_INVAL with a message) and copied.
 */
enum clst_status clst_vault_new(struct clst_vault_store *store, struct clst_vault_masterkey *mk,
                                const struct clst_vault_config *cfg, struct clst_vault **out,
                                struct clst_err *err);
void clst_vault_free(struct clst_vault *v);

/*
 * Registers every vault route (keys, secrets, deleted objects, rng, principals) on `server` and
 * sets the bearer-token authentication hook. Call once, before clst_server_start(); the vault
 * must outlive the server's running time.
 */
enum clst_status clst_vault_register(struct clst_vault *v, struct clst_server *server,
                                     struct clst_err *err);

/*
 * Creates the first Administrator principal (id CLST_VAULT_BOOTSTRAP_ADMIN_ID, role
 * Administrator at scope "/") whose token hashes to `token_sha256`, when the store holds no
 * principal at all. When principals exist already, nothing changes and CLST_OK is returned
 * (*out_created false). out_created may be NULL.
 */
enum clst_status clst_vault_bootstrap_admin(struct clst_vault *v, const uint8_t token_sha256[static 32],
                                            bool *out_created, struct clst_err *err);

/* True when `role` is one of the seven built-in role names (exact spelling). */
bool clst_vault_role_valid(const char *role);

#endif /* CLOISTER_VAULT_H */
