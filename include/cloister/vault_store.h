/*
 * Cloister vault storage layer: keys and secrets (with versions, attributes, tags, soft delete),
 * principals with role assignments, and settings, persisted through a pluggable backend (SQLite
 * now, PostgreSQL later), with every secret value sealed under the master key.
 *
 * Layers (see src/vault/README.md):
 *
 *   clst_vault_store_*()      this front end: validation, version ids, timestamps, sealing of
 *                             values, authentication of every row it returns, paging tokens
 *   struct clst_vault_backend_ops
 *                             a backend: rows in, rows out; no cryptography (store_sqlite.c)
 *   struct clst_vault_masterkey
 *                             wraps/unwraps 32-byte keys under the master key (file provider
 *                             now, PKCS#11 later)
 *
 * Integrity. Each value (private key, symmetric key, secret) is AES-256-GCM-encrypted under a
 * fresh 32-byte object key wrapped by the master key, with AAD binding (kind, name, version), so
 * a value moved to another row, or a row whose name or version was edited, fails to open with
 * CLST_E_VERIFY. The non-secret fields (attributes, tags, key_ops, public key, release policy,
 * deletion state, principals and their role assignments, settings) carry an HMAC-SHA256 under a
 * per-database integrity key, itself wrapped by the master key; a row whose MAC does not verify is
 * reported as CLST_E_VERIFY and never returned. What this cannot detect (the database rolled back
 * whole to an older copy, or rows deleted) is listed in src/vault/README.md.
 *
 * Names of keys and secrets are case-insensitive (as in the cloud key vault): 1..127 characters of
 * [0-9A-Za-z-]; the case given at creation is kept for display. Versions are 32 lower-case hex
 * characters. Times are seconds since the Unix epoch; 0 means "not set".
 *
 * Thread safety: a store may be used from any number of threads at once (the SQLite backend has
 * one writer connection behind a mutex and a pool of reader connections; see README.md).
 * Every call is its own transaction: it is durable (synchronous=FULL) when it returns CLST_OK.
 * Version rows and principals may be read from the store's in-memory read cache
 * (src/vault/store_cache.c), still sealed and MAC'ed and checked on every use: writes through
 * the store are seen by the next call, edits of the file by another process within a second.
 */
#ifndef CLOISTER_VAULT_STORE_H
#define CLOISTER_VAULT_STORE_H

#include <cloister/core.h>

/* ---- limits --------------------------------------------------------------------------------- */

#define CLST_VAULT_NAME_MAX           127 /* characters of a key or secret name */
#define CLST_VAULT_VERSION_SIZE       32  /* hex characters of a version id */
#define CLST_VAULT_KTY_MAX            15
#define CLST_VAULT_RECOVERY_LEVEL_MAX 63
#define CLST_VAULT_VALUE_MAX          (64 * 1024) /* sealed value (private key, secret) */
#define CLST_VAULT_TAGS_MAX           (8 * 1024)  /* tags, as JSON text */
#define CLST_VAULT_KEY_OPS_MAX        512         /* key_ops, as JSON text */
#define CLST_VAULT_PUBLIC_MAX         (16 * 1024) /* public key material (e.g. a public JWK) */
#define CLST_VAULT_POLICY_MAX         (32 * 1024) /* release policy, as JSON text */
#define CLST_VAULT_CONTENT_TYPE_MAX   255
#define CLST_VAULT_PAGE_MAX           25  /* maxresults: 1..25; 0 means 25 */
#define CLST_VAULT_TOKEN_MAX          512 /* characters of a continuation token */
#define CLST_VAULT_META_NAME_MAX      64
#define CLST_VAULT_META_VALUE_MAX     (64 * 1024)

#define CLST_VAULT_PRINCIPAL_ID_MAX   64  /* [0-9A-Za-z._-] */
#define CLST_VAULT_PRINCIPAL_NAME_MAX 128 /* printable ASCII */
#define CLST_VAULT_ROLE_MAX           64  /* printable ASCII, e.g. "Key Vault Crypto User" */
#define CLST_VAULT_SCOPE_MAX          (9 + CLST_VAULT_NAME_MAX) /* "/secrets/" + name */
#define CLST_VAULT_ROLES_MAX          32                        /* role assignments per principal */
#define CLST_VAULT_TOKEN_HASH_SIZE    32                        /* SHA-256 of a bearer token */

#define CLST_VAULT_MAC_SIZE        32
#define CLST_VAULT_MKID_MAX        64
#define CLST_VAULT_WRAPPED_MAX     128 /* a wrapped 32-byte object key */
#define CLST_VAULT_OBJECT_KEY_SIZE 32

/* ---- objects: keys and secrets -------------------------------------------------------------- */

/* Keys and secrets live in separate namespaces. */
enum clst_vault_kind {
    CLST_VAULT_KIND_KEY = 1,
    CLST_VAULT_KIND_SECRET = 2,
};

/* "key" / "secret" (for messages), or "object". */
const char *clst_vault_kind_name(enum clst_vault_kind kind);

/* Per-version attributes. */
struct clst_vault_attrs {
    bool enabled;
    int64_t nbf;                                            /* not before; 0 = not set */
    int64_t exp;                                            /* expires; 0 = not set */
    int64_t created;                                        /* set by the store */
    int64_t updated;                                        /* set by the store */
    bool exportable;                                        /* keys only */
    char recovery_level[CLST_VAULT_RECOVERY_LEVEL_MAX + 1]; /* e.g. "Recoverable+Purgeable" */
    int32_t recoverable_days;
};

/*
 * One version of a key or secret, without its value. The text fields are opaque to the store
 * (the vault layer writes compact JSON into tags, key_ops and release_policy) but capped by the
 * limits above; NULL means absent. As input (put, update) the store only reads the struct, so
 * the pointers may be borrowed; as output every pointer is owned by the struct and released by
 * clst_vault_object_cleanup().
 */
struct clst_vault_object {
    enum clst_vault_kind kind;
    char name[CLST_VAULT_NAME_MAX + 1];
    char version[CLST_VAULT_VERSION_SIZE + 1];
    struct clst_vault_attrs attrs;
    char *tags; /* JSON object text */
    /* keys only (must be empty/NULL/false for secrets) */
    char kty[CLST_VAULT_KTY_MAX + 1]; /* "RSA", "EC", "oct", "RSA-HSM", ...; required for keys */
    char *key_ops;                    /* JSON array text */
    uint8_t *public_data;             /* public part (e.g. a public JWK); not secret */
    size_t public_size;
    char *release_policy; /* JSON text */
    bool policy_immutable;
    /* secrets only (must be NULL for keys) */
    char *content_type;
    /* output only: set when the object is soft-deleted, else 0 */
    int64_t deleted_date;
    int64_t scheduled_purge_date;
};

/* Frees the owned fields of an output object and zeroes it. A zeroed struct is a no-op. */
void clst_vault_object_cleanup(struct clst_vault_object *obj);

/* A page of objects (values never included) and the token for the next page (NULL when this
 * is the last one). */
struct clst_vault_object_list {
    struct clst_vault_object *items;
    size_t count;
    char *next;
};
void clst_vault_object_list_cleanup(struct clst_vault_object_list *list);

/* Fields that clst_vault_store_update() changes. */
#define CLST_VAULT_UPDATE_ENABLED      (1u << 0)
#define CLST_VAULT_UPDATE_NBF          (1u << 1)
#define CLST_VAULT_UPDATE_EXP          (1u << 2)
#define CLST_VAULT_UPDATE_EXPORTABLE   (1u << 3)
#define CLST_VAULT_UPDATE_TAGS         (1u << 4)
#define CLST_VAULT_UPDATE_KEY_OPS      (1u << 5)
#define CLST_VAULT_UPDATE_POLICY       (1u << 6) /* release_policy and policy_immutable */
#define CLST_VAULT_UPDATE_CONTENT_TYPE (1u << 7)
#define CLST_VAULT_UPDATE_ALL          0xffu

/* ---- principals and role assignments -------------------------------------------------------- */

/* scope: "/" (the whole vault), "/keys/NAME" or "/secrets/NAME". */
struct clst_vault_role_assignment {
    char role[CLST_VAULT_ROLE_MAX + 1];
    char scope[CLST_VAULT_SCOPE_MAX + 1];
};

/*
 * A principal authenticates with a bearer token; the store keeps only its SHA-256 (the caller
 * hashes). roles: as input borrowed, as output owned (clst_vault_principal_cleanup).
 */
struct clst_vault_principal {
    char id[CLST_VAULT_PRINCIPAL_ID_MAX + 1];
    char name[CLST_VAULT_PRINCIPAL_NAME_MAX + 1];
    uint8_t token_hash[CLST_VAULT_TOKEN_HASH_SIZE];
    bool enabled;
    int64_t created;                          /* set by the store */
    int64_t updated;                          /* set by the store */
    struct clst_vault_role_assignment *roles; /* sorted by (role, scope) on output */
    size_t role_count;
};
void clst_vault_principal_cleanup(struct clst_vault_principal *p);

struct clst_vault_principal_list {
    struct clst_vault_principal *items;
    size_t count;
    char *next;
};
void clst_vault_principal_list_cleanup(struct clst_vault_principal_list *list);

/* ---- master-key providers ------------------------------------------------------------------- */

/*
 * A master-key provider wraps and unwraps 32-byte keys (object keys and the database integrity
 * key); the master key itself never leaves it. Implementations must be thread-safe. Unwrap
 * returns CLST_E_VERIFY when the blob was not produced by this master key or was altered, and
 * writes nothing then.
 */
struct clst_vault_masterkey_ops {
    const char *name; /* "file", "pkcs11" */
    enum clst_status (*wrap)(void *ctx, const uint8_t *key, size_t key_size, uint8_t *out,
                             size_t out_cap, size_t *out_size, struct clst_err *err);
    enum clst_status (*unwrap)(void *ctx, const uint8_t *blob, size_t blob_size, uint8_t *out,
                               size_t out_cap, size_t *out_size, struct clst_err *err);
    void (*free)(void *ctx);
};

struct clst_vault_masterkey;

/*
 * Wraps a provider. `id` (1..CLST_VAULT_MKID_MAX printable characters, no secret) names the
 * master key; it is recorded with every sealed value so that a wrong key is reported as such.
 * On success the masterkey owns ctx (ops->free is called by clst_vault_masterkey_free).
 */
enum clst_status clst_vault_masterkey_new(const struct clst_vault_masterkey_ops *ops, void *ctx,
                                          const char *id, struct clst_vault_masterkey **out);
void clst_vault_masterkey_free(struct clst_vault_masterkey *mk);
const char *clst_vault_masterkey_id(const struct clst_vault_masterkey *mk);
enum clst_status clst_vault_masterkey_wrap(struct clst_vault_masterkey *mk, const uint8_t *key,
                                           size_t key_size, uint8_t *out, size_t out_cap,
                                           size_t *out_size, struct clst_err *err);
enum clst_status clst_vault_masterkey_unwrap(struct clst_vault_masterkey *mk, const uint8_t *blob,
                                             size_t blob_size, uint8_t *out, size_t out_cap,
                                             size_t *out_size, struct clst_err *err);

/*
 * The file provider: the master key is a file of exactly 32 random bytes. Loading refuses a file
 * that is not a regular file, that group or others may access (mode & 077: CLST_E_DENIED, the
 * message says to chmod 600), that is owned by another user than the caller or root, or whose
 * size is not 32 (CLST_E_MALFORMED). Keys are wrapped with AES-256-KWP (RFC 5649). The id is
 * "file:" followed by 16 hex characters of HMAC-SHA256(master key, "cloister master key id v1").
 */
enum clst_status clst_vault_masterkey_file_load(const char *path, struct clst_vault_masterkey **out,
                                                struct clst_err *err);
/* Creates a new key file (mode 0600; fails with CLST_E_CONFLICT if it exists), fsync'ed. */
enum clst_status clst_vault_masterkey_file_create(const char *path, struct clst_err *err);

/* ---- sealed values (what a backend stores for a value) -------------------------------------- */

#define CLST_VAULT_SEAL_AES256GCM_V1 1
#define CLST_VAULT_SEAL_FIELD_MAX    16 /* room for nonce and tag as read back from storage */

/* As read from storage, the sizes are whatever was stored; opening checks them. */
struct clst_vault_sealed {
    uint8_t alg;
    uint8_t nonce[CLST_VAULT_SEAL_FIELD_MAX];
    size_t nonce_size;
    uint8_t tag[CLST_VAULT_SEAL_FIELD_MAX];
    size_t tag_size;
    uint8_t wrapped[CLST_VAULT_WRAPPED_MAX]; /* the object key wrapped by the master key */
    size_t wrapped_size;
    char mk_id[CLST_VAULT_MKID_MAX + 1]; /* which master key wrapped it */
    uint8_t *ct;                         /* malloc'ed ciphertext (not secret) */
    size_t ct_size;
};
void clst_vault_sealed_cleanup(struct clst_vault_sealed *s);

/* ---- backend interface ---------------------------------------------------------------------- */

/* A MAC as read back from storage (its size is checked by the front end). */
struct clst_vault_mac {
    uint8_t bytes[CLST_VAULT_MAC_SIZE];
    size_t size;
};

/* One row of the objects table: identity and deletion state. */
struct clst_vault_object_row {
    enum clst_vault_kind kind;
    char name[CLST_VAULT_NAME_MAX + 1];
    int64_t deleted_date; /* 0 = live */
    int64_t scheduled_purge_date;
    struct clst_vault_mac mac;
};

/* One version row with its object. `meta.deleted_date`/`scheduled_purge_date` mirror `object`. */
struct clst_vault_version_row {
    struct clst_vault_object meta;
    struct clst_vault_mac mac;
    struct clst_vault_object_row object;
    struct clst_vault_sealed seal; /* filled only when asked for */
    int64_t seq;                   /* creation order within the backend */
};
void clst_vault_version_row_cleanup(struct clst_vault_version_row *row);

enum clst_vault_listing {
    CLST_VAULT_LIST_LIVE = 1, /* latest version of each live object, by name */
    CLST_VAULT_LIST_VERSIONS, /* every version of one live object, oldest first */
    CLST_VAULT_LIST_DELETED,  /* latest version of each deleted object, by name */
};

struct clst_vault_store_info {
    char backend[16];
    int schema_version; /* in force */
    int schema_latest;  /* what this build migrates to */
    char journal_mode[16];
    int synchronous; /* 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA */
    bool foreign_keys;
    int busy_timeout_ms;
    unsigned reader_count;
    char masterkey_id[CLST_VAULT_MKID_MAX + 1]; /* filled by the front end */
};

/*
 * What a backend implements. Every function is one atomic transaction, is safe to call from
 * several threads at once, and reports CLST_E_NOTFOUND / CLST_E_CONFLICT / CLST_E_IO with a
 * message. Backends store and return bytes faithfully and never judge MACs or seals. Names are
 * matched case-insensitively (ASCII); versions exactly. "CAS" = compare-and-swap on the stored
 * MAC: the write happens only if the stored MAC still equals `old_mac` (else CLST_E_CONFLICT).
 */
struct clst_vault_backend_ops {
    const char *name;
    void (*close)(void *be);
    enum clst_status (*info)(void *be, struct clst_vault_store_info *out, struct clst_err *err);
    /* Structural check of the storage (SQLite: integrity_check, foreign_key_check). */
    enum clst_status (*check)(void *be, struct clst_err *err);

    /* out_value is appended to; out_mac->size is 0 when no MAC is stored. */
    enum clst_status (*meta_get)(void *be, const char *name, struct clst_buf *out_value,
                                 struct clst_vault_mac *out_mac, struct clst_err *err);
    /* if_absent: CLST_E_CONFLICT when the name exists (nothing written). mac may be NULL. */
    enum clst_status (*meta_put)(void *be, const char *name, const uint8_t *value, size_t size,
                                 const uint8_t *mac, bool if_absent, struct clst_err *err);

    enum clst_status (*object_get)(void *be, enum clst_vault_kind kind, const char *name,
                                   struct clst_vault_object_row *out, struct clst_err *err);
    /* Inserts a version; creates the object row from `object` when the name is new.
     * CLST_E_CONFLICT when the object is deleted or the version exists. */
    enum clst_status (*version_insert)(void *be, const struct clst_vault_object_row *object,
                                       const struct clst_vault_version_row *row,
                                       struct clst_err *err);
    /* version "" = the latest. deleted selects deleted instead of live objects. */
    enum clst_status (*version_get)(void *be, enum clst_vault_kind kind, const char *name,
                                    const char *version, bool deleted, bool with_seal,
                                    struct clst_vault_version_row *out, struct clst_err *err);
    /* Rewrites the metadata and MAC of the live version row->seq (CAS on old_mac). */
    enum clst_status (*version_update)(void *be, const struct clst_vault_version_row *row,
                                       const struct clst_vault_mac *old_mac, struct clst_err *err);
    /* Up to `limit` rows (no seals) after the position (after_name for LIVE/DELETED, after_seq
     * for VERSIONS of `name`). *out is calloc'ed; each row is cleaned up by the caller.
     * VERSIONS of an object that is not live: CLST_E_NOTFOUND. */
    enum clst_status (*list)(void *be, enum clst_vault_listing listing, enum clst_vault_kind kind,
                             const char *name, const char *after_name, int64_t after_seq,
                             size_t limit, struct clst_vault_version_row **out, size_t *out_count,
                             struct clst_err *err);
    /* Sets the deletion state of an object (CAS on old_mac). */
    enum clst_status (*object_set_state)(void *be, const struct clst_vault_object_row *object,
                                         const struct clst_vault_mac *old_mac,
                                         struct clst_err *err);
    /* Removes a deleted object and all its versions; CLST_E_NOTFOUND if none is deleted. */
    enum clst_status (*purge)(void *be, enum clst_vault_kind kind, const char *name,
                              struct clst_err *err);
    /* Removes every deleted object whose scheduled purge date is <= now. */
    enum clst_status (*purge_due)(void *be, int64_t now, size_t *out_count, struct clst_err *err);

    /* CLST_E_CONFLICT when the id or token hash exists. */
    enum clst_status (*principal_insert)(void *be, const struct clst_vault_principal *p,
                                         const uint8_t mac[CLST_VAULT_MAC_SIZE],
                                         struct clst_err *err);
    /* By id, or (id NULL) by token hash. */
    enum clst_status (*principal_get)(void *be, const char *id, const uint8_t *token_hash,
                                      struct clst_vault_principal *out,
                                      struct clst_vault_mac *out_mac, struct clst_err *err);
    /* Rewrites the principal and replaces its role assignments (CAS on old_mac). */
    enum clst_status (*principal_replace)(void *be, const struct clst_vault_principal *p,
                                          const uint8_t mac[CLST_VAULT_MAC_SIZE],
                                          const struct clst_vault_mac *old_mac,
                                          struct clst_err *err);
    enum clst_status (*principal_delete)(void *be, const char *id, struct clst_err *err);
    /* By id; *out and *out_macs calloc'ed (count entries each). */
    enum clst_status (*principal_list)(void *be, const char *after_id, size_t limit,
                                       struct clst_vault_principal **out,
                                       struct clst_vault_mac **out_macs, size_t *out_count,
                                       struct clst_err *err);
};

/* ---- the store ------------------------------------------------------------------------------ */

struct clst_vault_store;

struct clst_vault_sqlite_options {
    const char *path;         /* the database file (created 0600 if missing) */
    unsigned busy_timeout_ms; /* 0 = 10000 */
    unsigned reader_count;    /* reader connections, 0 = 4 (max 32) */
    /* Inspect only: the file must exist and have the current schema (never created, never
     * migrated, never write-locked); every connection is query-only, so writes fail. */
    bool read_only;
};

/*
 * Opens (creating if needed) a SQLite vault database: WAL, synchronous=FULL, foreign keys,
 * secure_delete, migrations applied in one transaction. `mk` (borrowed: it must outlive the store)
 * seals values and unwraps the database's integrity key; a database created under another master
 * key is refused with CLST_E_VERIFY. `clock` may be NULL (system clock); it is borrowed too.
 * A database whose schema is newer than this build is refused (CLST_E_CONFLICT).
 */
enum clst_status clst_vault_store_open_sqlite(const struct clst_vault_sqlite_options *opt,
                                              struct clst_vault_masterkey *mk,
                                              const struct clst_clock *clock,
                                              struct clst_vault_store **out, struct clst_err *err);
/* Builds a store over any backend; on success the store owns `be` (closed by ops->close). */
enum clst_status clst_vault_store_new(const struct clst_vault_backend_ops *ops, void *be,
                                      struct clst_vault_masterkey *mk,
                                      const struct clst_clock *clock, struct clst_vault_store **out,
                                      struct clst_err *err);
void clst_vault_store_close(struct clst_vault_store *s);

enum clst_status clst_vault_store_info(struct clst_vault_store *s,
                                       struct clst_vault_store_info *out, struct clst_err *err);
/* Structural check of the storage: CLST_E_VERIFY with the first problem found. */
enum clst_status clst_vault_store_check(struct clst_vault_store *s, struct clst_err *err);

/*
 * Creates a new version of a key or secret (and the object when the name is new) holding `value`
 * (value_size 0..CLST_VAULT_VALUE_MAX; sealed before it reaches the backend). in->version "" means
 * "generate one"; in->attrs.created/updated and the deletion dates are ignored (set by the store).
 * out_version (may be NULL; else room for CLST_VAULT_VERSION_SIZE + 1 chars) receives the
 * version. CLST_E_CONFLICT when the object is soft-deleted (recover or purge it first) or the
 * version exists; CLST_E_INVAL for a field that breaks the rules above (the message names it).
 */
enum clst_status clst_vault_store_put(struct clst_vault_store *s,
                                      const struct clst_vault_object *in, const uint8_t *value,
                                      size_t value_size, char *out_version, struct clst_err *err);
/*
 * One version (NULL or "" = the latest) of a live object. out_value (may be NULL) receives the
 * opened value in secret memory (free with clst_secret_free); only then is the value unsealed.
 * CLST_E_VERIFY when a MAC or the seal does not verify (possible tampering; nothing returned).
 */
enum clst_status clst_vault_store_get(struct clst_vault_store *s, enum clst_vault_kind kind,
                                      const char *name, const char *version,
                                      struct clst_vault_object *out, struct clst_secret **out_value,
                                      struct clst_err *err);
/*
 * Changes the fields in `fields` (CLST_VAULT_UPDATE_*) of one version (NULL/"" = latest) of a live
 * object to those of `changes` (whose name/version/kind are ignored); updated = now. A release
 * policy marked immutable cannot be changed or made mutable again (CLST_E_CONFLICT); setting the
 * same policy again is allowed. out (may be NULL) receives the updated object.
 */
enum clst_status clst_vault_store_update(struct clst_vault_store *s, enum clst_vault_kind kind,
                                         const char *name, const char *version,
                                         const struct clst_vault_object *changes, unsigned fields,
                                         struct clst_vault_object *out, struct clst_err *err);
/*
 * Listings, max_results objects a page (0 = CLST_VAULT_PAGE_MAX), `token` NULL or "" for the
 * first page, else the `next` of the previous page of the same listing: a token that was edited
 * or comes from another listing or database is refused (CLST_E_MALFORMED). Every row is verified;
 * a page that holds a row failing verification fails as a whole (CLST_E_VERIFY, fail closed).
 * Live and deleted listings are ordered by name (case-insensitively), versions oldest first.
 */
enum clst_status clst_vault_store_list(struct clst_vault_store *s, enum clst_vault_kind kind,
                                       size_t max_results, const char *token,
                                       struct clst_vault_object_list *out, struct clst_err *err);
enum clst_status clst_vault_store_list_versions(struct clst_vault_store *s,
                                                enum clst_vault_kind kind, const char *name,
                                                size_t max_results, const char *token,
                                                struct clst_vault_object_list *out,
                                                struct clst_err *err);
enum clst_status clst_vault_store_list_deleted(struct clst_vault_store *s,
                                               enum clst_vault_kind kind, size_t max_results,
                                               const char *token,
                                               struct clst_vault_object_list *out,
                                               struct clst_err *err);

/*
 * Soft delete: the object and all its versions leave the live namespace; deleted_date = now,
 * scheduled_purge_date = now + retention_days (1..365) days. out (may be NULL) receives the latest
 * version with its deletion dates. The recovery id (the cloud vault's "<vault>/deletedkeys/NAME")
 * is derived from the name by the REST layer; it is not stored.
 */
enum clst_status clst_vault_store_delete(struct clst_vault_store *s, enum clst_vault_kind kind,
                                         const char *name, int retention_days,
                                         struct clst_vault_object *out, struct clst_err *err);
/* The latest version of a deleted object (with its deletion dates). */
enum clst_status clst_vault_store_get_deleted(struct clst_vault_store *s, enum clst_vault_kind kind,
                                              const char *name, struct clst_vault_object *out,
                                              struct clst_err *err);
/* Brings a deleted object back, all versions; CLST_E_NOTFOUND if it is not deleted. */
enum clst_status clst_vault_store_recover(struct clst_vault_store *s, enum clst_vault_kind kind,
                                          const char *name, struct clst_err *err);
/* Removes a deleted object for good; CLST_E_NOTFOUND if it is not deleted (a live object must be
 * deleted first). */
enum clst_status clst_vault_store_purge(struct clst_vault_store *s, enum clst_vault_kind kind,
                                        const char *name, struct clst_err *err);
/* Purges every deleted object whose scheduled purge date has passed; out_count may be NULL. */
enum clst_status clst_vault_store_purge_due(struct clst_vault_store *s, size_t *out_count,
                                            struct clst_err *err);

/* Principals. id: 1..64 of [0-9A-Za-z._-]; name: 1..128 printable ASCII; role: 1..64 printable
 * ASCII; scope as above. put creates (with p->roles, at most CLST_VAULT_ROLES_MAX, no duplicates);
 * CLST_E_CONFLICT when the id or the token hash is taken. */
enum clst_status clst_vault_store_principal_put(struct clst_vault_store *s,
                                                const struct clst_vault_principal *p,
                                                struct clst_err *err);
enum clst_status clst_vault_store_principal_get(struct clst_vault_store *s, const char *id,
                                                struct clst_vault_principal *out,
                                                struct clst_err *err);
/* The principal whose token hash is `token_hash` (the caller hashes the presented token). */
enum clst_status clst_vault_store_principal_find_by_token(
    struct clst_vault_store *s, const uint8_t token_hash[static CLST_VAULT_TOKEN_HASH_SIZE],
    struct clst_vault_principal *out, struct clst_err *err);
/* Changes name, token hash and enabled (role assignments are kept). */
enum clst_status clst_vault_store_principal_update(struct clst_vault_store *s,
                                                   const struct clst_vault_principal *p,
                                                   struct clst_err *err);
enum clst_status clst_vault_store_principal_delete(struct clst_vault_store *s, const char *id,
                                                   struct clst_err *err);
enum clst_status clst_vault_store_principal_list(struct clst_vault_store *s, size_t max_results,
                                                 const char *token,
                                                 struct clst_vault_principal_list *out,
                                                 struct clst_err *err);
/* CLST_E_CONFLICT when the assignment exists, CLST_E_LIMIT past CLST_VAULT_ROLES_MAX. */
enum clst_status clst_vault_store_role_add(struct clst_vault_store *s, const char *id,
                                           const char *role, const char *scope,
                                           struct clst_err *err);
/* CLST_E_NOTFOUND when the assignment does not exist. */
enum clst_status clst_vault_store_role_remove(struct clst_vault_store *s, const char *id,
                                              const char *role, const char *scope,
                                              struct clst_err *err);

/*
 * Settings: name 1..64 of [0-9A-Za-z._-], not starting with "store." (reserved); value up to
 * CLST_VAULT_META_VALUE_MAX bytes. get appends the value to `out` (CLST_E_NOTFOUND if unset).
 * The schema version is in clst_vault_store_info().
 */
enum clst_status clst_vault_store_meta_get(struct clst_vault_store *s, const char *name,
                                           struct clst_buf *out, struct clst_err *err);
enum clst_status clst_vault_store_meta_set(struct clst_vault_store *s, const char *name,
                                           const uint8_t *value, size_t size, struct clst_err *err);

/*
 * Master-key rewrap (moving a vault from one master key to another, e.g. from the file key to
 * an HSM key: `cloister admin rewrap`). Every key wrapped by `from` in the SQLite vault database
 * at opt->path is unwrapped by `from` and wrapped by `to`: the key of every key and secret
 * version (live, deleted and recoverable alike), the database's integrity key, and the settings
 * that hold wrapped keys (the key-backup key, the release-signing key). Each new wrapping is
 * unwrapped again by `to` and compared before anything is written; all rows change in one
 * IMMEDIATE transaction, so either everything is under `to` afterwards or nothing changed
 * (also when `from` or `to` fails midway, e.g. an HSM that goes away). Values, MACs and the
 * integrity key itself are unchanged. No other process may use the database meanwhile (the
 * caller holds the data directory's lock); a row that changes anyway makes the rewrap fail
 * (CLST_E_CONFLICT). CLST_E_CONFLICT also when the database is already under `to`;
 * CLST_E_VERIFY when it is under neither key or a row does not unwrap under `from`;
 * CLST_E_NOTFOUND when there is no database (or it was never opened by a vault).
 */
struct clst_vault_rewrap_stats {
    size_t versions; /* key and secret versions re-wrapped */
    size_t settings; /* the integrity key and the wrapped settings re-wrapped */
};
enum clst_status clst_vault_store_rewrap_sqlite(const struct clst_vault_sqlite_options *opt,
                                                struct clst_vault_masterkey *from,
                                                struct clst_vault_masterkey *to,
                                                struct clst_vault_rewrap_stats *out,
                                                struct clst_err *err);

/* Validators (also used by the REST layer to answer 400 before touching storage). */
bool clst_vault_name_valid(const char *name);
bool clst_vault_version_valid(const char *version);
bool clst_vault_scope_valid(const char *scope);

#endif /* CLOISTER_VAULT_STORE_H */
