/*
 * Private to the vault's REST layer (vault.c, rbac.c, rest_common.c, rest_secrets.c,
 * rest_keys.c, rest_principals.c): the vault object, the per-request context, authorization,
 * and the JSON / id / paging / error helpers every handler uses.
 *
 * How a handler is written (every vault handler follows this shape):
 *
 *   static enum clst_status
 *   h_secret_get(void *ctx, const struct clst_http_request *req,
 *                struct clst_http_response *resp, struct clst_err *err)
 *   {
 *       struct clst_vault_rctx rc;
 *       enum clst_status st = clst_vault_rctx_begin(ctx, req, resp, &rc, err);
 *       if (st != CLST_OK) {
 *           return clst_vault_reply_err(&rc, CLST_VAULT_KIND_SECRET, err); // api-version etc.
 *       }
 *       const char *name = clst_http_request_param(req, "name");
 *       if ((st = clst_vault_check_name(name, CLST_VAULT_KIND_SECRET, err)) != CLST_OK ||
 *           (st = clst_vault_authorize(&rc, CLST_VAULT_PERM_SECRET_GET, CLST_VAULT_KIND_SECRET,
 *                                      name, err)) != CLST_OK) {
 *           return clst_vault_reply_err(&rc, CLST_VAULT_KIND_SECRET, err);
 *       }
 *       ... store calls; on failure: return clst_vault_reply_err(&rc, KIND, err);
 *       clst_http_response_json_new(resp, 200, body);
 *       return CLST_OK;
 *   }
 *
 * Order of checks (the cloud vault's): api-version → name syntax → authorization → body →
 * storage. Authorization comes before any lookup, so a principal without access learns nothing
 * about which names exist.
 *
 * clst_vault_reply_err() writes the cloud vault's error response for err->status (404 with
 * KeyNotFound / SecretNotFound, 409 Conflict, 400 BadParameter, 403 Forbidden) and returns
 * CLST_OK; for backend failures it returns the status so that the server answers a generic 500
 * and logs err->msg. Never put secret values into err->msg.
 */
#ifndef CLST_VAULT_REST_INT_H
#define CLST_VAULT_REST_INT_H

#include <cloister/server.h>
#include <cloister/vault.h>
#include <cloister/vault_store.h>

#include <jansson.h>

/* ---- the vault ------------------------------------------------------------------------------ */

struct clst_vault {
    struct clst_vault_store *store;      /* borrowed */
    struct clst_vault_masterkey *mk;     /* borrowed; may be NULL */
    const struct clst_clock *clock;      /* never NULL */
    char base_url[CLST_VAULT_BASE_URL_MAX + 1]; /* "" = from the Host header */
    int retention_days;                  /* 7..90 */
    bool purge_protection;
    char recovery_level[CLST_VAULT_RECOVERY_LEVEL_MAX + 1]; /* derived from the two above */
};

static inline int64_t
clst_vault_now(const struct clst_vault *v)
{
    return clst_clock_now(v->clock);
}

/* ---- API versions --------------------------------------------------------------------------- */

/* What the vault answers to: "7.0".."7.6", "7.6-preview.2", "2025-07-01" (the SDK's default). */
#define CLST_VAULT_API_VERSION_LATEST "2025-07-01"

/* CLST_E_INVAL (→ 400 BadParameter) when api-version is missing or not supported; the message
 * lists the supported versions. */
enum clst_status clst_vault_api_version_check(const struct clst_http_request *req,
                                              struct clst_err *err);

/* ---- the request context -------------------------------------------------------------------- */

#define CLST_VAULT_ID_MAX 512 /* an object id, recovery id or nextLink */

struct clst_vault_rctx {
    struct clst_vault *vault;
    const struct clst_http_request *req;
    struct clst_http_response *resp;
    /* The authenticated principal (owned by the server for this request; never NULL on a
     * protected route once clst_vault_rctx_begin succeeded). */
    const struct clst_vault_principal *principal;
    /* "https://host[:port]" for ids: the configured base URL or one built from Host. */
    char base[CLST_VAULT_BASE_URL_MAX + 1];
    const char *api_version; /* as received (checked) */
};

/*
 * Starts a handler: fills `rc` (always, so clst_vault_reply_err can use it even on failure),
 * checks the api-version, and works out the base URL. `ctx` is the route's ctx (the vault).
 * CLST_E_INVAL for a bad api-version or an unusable Host header (reply with clst_vault_reply_err).
 */
enum clst_status clst_vault_rctx_begin(void *ctx, const struct clst_http_request *req,
                                       struct clst_http_response *resp, struct clst_vault_rctx *rc,
                                       struct clst_err *err);
/* The same for Cloister-specific routes (principals): api-version is optional there (checked
 * when present). */
enum clst_status clst_vault_rctx_begin_cloister(void *ctx, const struct clst_http_request *req,
                                                struct clst_http_response *resp,
                                                struct clst_vault_rctx *rc, struct clst_err *err);

/* ---- permissions and roles (rbac.c) --------------------------------------------------------- */

/*
 * Every action a route may need. The names (clst_vault_perm_name) follow the managed HSM's data
 * actions and appear in 403 messages. Which role holds which permission: rbac.c (the table) and
 * docs/vault.md.
 */
enum clst_vault_perm {
    /* keys */
    CLST_VAULT_PERM_KEY_READ = 0,   /* get a key (public part), list keys, list versions */
    CLST_VAULT_PERM_KEY_CREATE,     /* create a key or a new version of it */
    CLST_VAULT_PERM_KEY_IMPORT,     /* PUT /keys/{name} */
    CLST_VAULT_PERM_KEY_UPDATE,     /* PATCH attributes / tags / key_ops / release policy,
                                       rotation policy */
    CLST_VAULT_PERM_KEY_ROTATE,     /* POST /keys/{name}/rotate */
    CLST_VAULT_PERM_KEY_DELETE,     /* soft delete */
    CLST_VAULT_PERM_KEY_BACKUP,
    CLST_VAULT_PERM_KEY_RESTORE,
    CLST_VAULT_PERM_KEY_ENCRYPT,
    CLST_VAULT_PERM_KEY_DECRYPT,
    CLST_VAULT_PERM_KEY_WRAP,
    CLST_VAULT_PERM_KEY_UNWRAP,
    CLST_VAULT_PERM_KEY_SIGN,
    CLST_VAULT_PERM_KEY_VERIFY,
    CLST_VAULT_PERM_KEY_RELEASE,    /* secure key release */
    CLST_VAULT_PERM_KEY_DELETED_READ, /* get / list deleted keys */
    CLST_VAULT_PERM_KEY_RECOVER,
    CLST_VAULT_PERM_KEY_PURGE,
    CLST_VAULT_PERM_RNG,            /* POST /rng (vault-wide only) */
    /* secrets */
    CLST_VAULT_PERM_SECRET_READ,    /* metadata: list secrets, list versions (no values) */
    CLST_VAULT_PERM_SECRET_GET,     /* read a secret's value */
    CLST_VAULT_PERM_SECRET_SET,     /* set (new version) */
    CLST_VAULT_PERM_SECRET_UPDATE,  /* PATCH attributes / tags / contentType */
    CLST_VAULT_PERM_SECRET_DELETE,
    CLST_VAULT_PERM_SECRET_BACKUP,
    CLST_VAULT_PERM_SECRET_RESTORE,
    CLST_VAULT_PERM_SECRET_DELETED_READ,
    CLST_VAULT_PERM_SECRET_RECOVER,
    CLST_VAULT_PERM_SECRET_PURGE,
    /* Cloister's principals API (vault-wide only) */
    CLST_VAULT_PERM_PRINCIPAL_READ,
    CLST_VAULT_PERM_PRINCIPAL_WRITE,
    CLST_VAULT_PERM_COUNT
};

/* "keys/read", "secrets/getSecret", ...; "?" out of range. */
const char *clst_vault_perm_name(enum clst_vault_perm perm);

/* The object kind a permission applies to (KEY or SECRET), or 0 for vault-wide-only ones
 * (rng, principals). */
enum clst_vault_kind clst_vault_perm_kind(enum clst_vault_perm perm);

/* True when built-in role `role` grants `perm`. Unknown roles grant nothing. */
bool clst_vault_role_grants(const char *role, enum clst_vault_perm perm);

/* True when an assignment at `scope` covers an object of `kind` named `name` (name NULL: the
 * request is vault-wide, e.g. a listing, and only "/" covers it). Names compare
 * case-insensitively, as the store's. */
bool clst_vault_scope_covers(const char *scope, enum clst_vault_kind kind, const char *name);

/* The built-in role spelled `role` in any letter case (e.g. "secrets user"), in its canonical
 * spelling ("Secrets User"), or NULL when there is no such role. */
const char *clst_vault_role_canonical(const char *role);
/* Whether `role` (canonical) may be assigned at `scope`: "/" takes every role; "/keys/NAME" the
 * key roles, Administrator and Crypto Auditor; "/secrets/NAME" the secret roles, Administrator
 * and Crypto Auditor. */
bool clst_vault_role_scope_ok(const char *role, const char *scope);

/* Pure decision (no I/O): does `p` hold `perm` on (kind, name)? name NULL = vault-wide. */
bool clst_vault_allowed(const struct clst_vault_principal *p, enum clst_vault_perm perm,
                        enum clst_vault_kind kind, const char *name);

/*
 * The check handlers call. CLST_OK, or CLST_E_DENIED (→ 403 Forbidden) with a message naming the
 * principal, the permission, the scope asked for, and the roles that would grant it, e.g.
 * "principal 'app1' may not secrets/getSecret on /secrets/db; that needs one of the roles
 * Secrets User, Secrets Officer, Administrator assigned at / or /secrets/db".
 * `kind` 0 or name NULL: vault-wide.
 */
enum clst_status clst_vault_authorize(const struct clst_vault_rctx *rc, enum clst_vault_perm perm,
                                      enum clst_vault_kind kind, const char *name,
                                      struct clst_err *err);

/* ---- the first steps of a key or secret handler --------------------------------------------- */

/*
 * clst_vault_rctx_begin, then (named routes) the {name} parameter's syntax for `kind`, then
 * clst_vault_authorize for `perm` on (kind, name), or vault-wide when !named. *out_name (may be
 * NULL) receives the name (NULL when !named), whatever the result. On failure, answer with
 * clst_vault_reply_err(rc, kind, err).
 */
enum clst_status clst_vault_rctx_start(void *ctx, const struct clst_http_request *req,
                                       struct clst_http_response *resp, struct clst_vault_rctx *rc,
                                       enum clst_vault_kind kind, enum clst_vault_perm perm,
                                       bool named, const char **out_name, struct clst_err *err);

/* ---- names, versions, request bodies -------------------------------------------------------- */

/* NULL/"" or anything but 1..127 of [0-9A-Za-z-] → CLST_E_INVAL (400 BadParameter) with a
 * message quoting the (sanitized) name and the rule. */
enum clst_status clst_vault_check_name(const char *name, enum clst_vault_kind kind,
                                       struct clst_err *err);
/* "" / NULL (= latest) or 32 hex characters; anything else → CLST_E_NOTFOUND for `kind` (such a
 * version cannot exist; the cloud answers KeyNotFound / SecretNotFound). */
enum clst_status clst_vault_check_version(const char *version, enum clst_vault_kind kind,
                                          struct clst_err *err);

/*
 * Typed member access on a request object (all → CLST_E_INVAL with a message naming the member
 * and the expected type). `required` false: an absent member (or JSON null) leaves *out
 * untouched and sets *out_present (may be NULL) false.
 */
enum clst_status clst_vault_json_string(const json_t *obj, const char *key, bool required,
                                        size_t max_size, const char **out, bool *out_present,
                                        struct clst_err *err);
enum clst_status clst_vault_json_bool(const json_t *obj, const char *key, bool required,
                                      bool *out, bool *out_present, struct clst_err *err);
/* An integer in [min, max] (JSON integer; a real with no fractional part is accepted too). */
enum clst_status clst_vault_json_int(const json_t *obj, const char *key, bool required,
                                     int64_t min, int64_t max, int64_t *out, bool *out_present,
                                     struct clst_err *err);
/* A member that must be an object / array when present (borrowed reference). */
enum clst_status clst_vault_json_object(const json_t *obj, const char *key, bool required,
                                        json_t **out, struct clst_err *err);
enum clst_status clst_vault_json_array(const json_t *obj, const char *key, bool required,
                                       json_t **out, struct clst_err *err);
/* A base64url string member (unpadded; padding also accepted) decoded into `out` (appended; its
 * max bounds the size: CLST_E_INVAL "too long"). Bad base64url → CLST_E_INVAL. */
enum clst_status clst_vault_json_b64url(const json_t *obj, const char *key, bool required,
                                        struct clst_buf *out, bool *out_present,
                                        struct clst_err *err);
/* Parses the request body as a JSON object (CLST_E_INVAL with a message when it is empty,
 * malformed or not an object). */
enum clst_status clst_vault_body_json(const struct clst_vault_rctx *rc, json_t **out,
                                      struct clst_err *err);

/* ---- attributes ----------------------------------------------------------------------------- */

/* enabled = true, nbf = exp = 0, recovery level and days from the vault's configuration. */
void clst_vault_attrs_defaults(const struct clst_vault *v, struct clst_vault_attrs *a);

/*
 * Reads a request's "attributes" object into `a` and ORs the CLST_VAULT_UPDATE_* bits of the
 * members present into *fields (may be NULL). Members: enabled (bool), nbf, exp (Unix seconds,
 * integers 0..253402300799; 0 or null = clear), exportable (bool; only when allow_exportable —
 * keys at creation/import — else CLST_E_INVAL). The read-only members the vault itself returns
 * (created, updated, recoveryLevel, recoverableDays) are ignored so that a client may send back
 * what it received; any other member → CLST_E_INVAL. attrs NULL → nothing changes.
 * nbf > exp (both set) → CLST_E_INVAL.
 */
enum clst_status clst_vault_attrs_from_json(json_t *attrs, bool allow_exportable,
                                            struct clst_vault_attrs *a, unsigned *fields,
                                            struct clst_err *err);
/* {"enabled", "nbf"?, "exp"?, "created", "updated", "recoveryLevel", "recoverableDays"?,
 * "exportable"? (keys only, when true)}; times as Unix seconds, never 0 (omitted instead).
 * NULL on allocation failure. */
json_t *clst_vault_attrs_to_json(const struct clst_vault_attrs *a, enum clst_vault_kind kind);

/* ---- tags ----------------------------------------------------------------------------------- */

#define CLST_VAULT_TAG_COUNT_MAX 15
#define CLST_VAULT_TAG_NAME_MAX  512 /* characters (Unicode code points) */
#define CLST_VAULT_TAG_VALUE_MAX 256

/*
 * Validates a request's "tags" member (an object of string → string, at most 15 entries, names
 * 1..512 characters, values 0..256 characters) and returns its canonical compact JSON text (keys
 * sorted) in *out_text (malloc'ed; free()). An empty object gives "{}". CLST_E_INVAL with a
 * message naming the tag otherwise.
 */
enum clst_status clst_vault_tags_parse(json_t *tags, char **out_text, struct clst_err *err);
/* The stored text back as an object, or NULL when absent, empty ("{}") or unparsable. */
json_t *clst_vault_tags_to_json(const char *text);

/* ---- ids and common bundle members ---------------------------------------------------------- */

/* "<base>/keys/<name>[/<version>]" ("secrets" for secrets); version NULL or "" = version-less.
 * CLST_E_LIMIT when it does not fit (cap >= CLST_VAULT_ID_MAX is always enough). */
enum clst_status clst_vault_object_id(const struct clst_vault_rctx *rc, enum clst_vault_kind kind,
                                      const char *name, const char *version, char *out,
                                      size_t cap);
/* "<base>/deletedkeys/<name>" / "<base>/deletedsecrets/<name>". */
enum clst_status clst_vault_recovery_id(const struct clst_vault_rctx *rc,
                                        enum clst_vault_kind kind, const char *name, char *out,
                                        size_t cap);

/*
 * Adds the members every bundle and list item shares to `j`: "attributes", "tags" (when any) and,
 * when obj->deleted_date is set, "recoveryId", "deletedDate", "scheduledPurgeDate". The id/kid
 * member and kind-specific members are the caller's. CLST_E_NOMEM on allocation failure.
 */
enum clst_status clst_vault_bundle_common(const struct clst_vault_rctx *rc,
                                          const struct clst_vault_object *obj, json_t *j);

/* ---- paging --------------------------------------------------------------------------------- */

/*
 * Reads `maxresults` (1..25; absent = 25) and `$skiptoken` (absent = first page; at most
 * CLST_VAULT_TOKEN_MAX characters) from the query. CLST_E_INVAL (400) for a bad value.
 * *out_token points into the request (valid during the handler) or is NULL.
 */
enum clst_status clst_vault_page_params(const struct clst_vault_rctx *rc, size_t *out_max,
                                        const char **out_token, struct clst_err *err);
/*
 * The nextLink for a listing: "<base><path>?api-version=<v>&maxresults=<n>&$skiptoken=<token>"
 * (token percent-encoded; path e.g. "/secrets" or "/secrets/NAME/versions"), as a JSON string,
 * or JSON null when next is NULL/"" (the last page). NULL on allocation failure.
 */
json_t *clst_vault_next_link(const struct clst_vault_rctx *rc, const char *path,
                             size_t max_results, const char *next);
/* {"value": items, "nextLink": …}; takes ownership of items. Writes a 200 to rc->resp. */
enum clst_status clst_vault_reply_list(struct clst_vault_rctx *rc, json_t *items,
                                       const char *path, size_t max_results, const char *next,
                                       struct clst_err *err);

/*
 * The three listings of keys and secrets: fetches one page (CLST_VAULT_LIST_LIVE, _VERSIONS of
 * `name`, _DELETED) of `kind` from the store into *out and writes the listing's path for its
 * nextLink into `path` ("/keys", "/keys/NAME/versions", "/deletedkeys"; "secrets" for secrets;
 * path_cap >= CLST_VAULT_NAME_MAX + 32). The store's status and message are returned unchanged:
 * the caller maps them.
 */
enum clst_status clst_vault_list_fetch(const struct clst_vault_rctx *rc, enum clst_vault_kind kind,
                                       enum clst_vault_listing listing, const char *name,
                                       size_t max_results, const char *token,
                                       struct clst_vault_object_list *out, char *path,
                                       size_t path_cap, struct clst_err *err);
/*
 * Answers a fetched page: one item per object made by `item` (versioned: ids carry the version),
 * then clst_vault_reply_list. CLST_E_NOMEM with the message `nomem` when an item cannot be made.
 */
enum clst_status
clst_vault_reply_objects(struct clst_vault_rctx *rc, const struct clst_vault_object_list *list,
                         json_t *(*item)(const struct clst_vault_rctx *rc,
                                         const struct clst_vault_object *obj, bool versioned),
                         bool versioned, const char *path, size_t max_results, const char *nomem,
                         struct clst_err *err);

/* ---- the listings and the soft-delete lifecycle of keys and secrets ------------------------- */

/*
 * What the shared handlers below need to know about keys or secrets: one static const per REST
 * file (rest_keys.c, rest_secrets.c), whose own handlers pass it on.
 */
struct clst_vault_kind_rest {
    enum clst_vault_kind kind;
    enum clst_vault_perm perm_read;         /* list, list versions */
    enum clst_vault_perm perm_deleted_read; /* list deleted, get deleted */
    enum clst_vault_perm perm_delete;
    enum clst_vault_perm perm_recover;
    enum clst_vault_perm perm_purge;
    /* A list item (versioned: the id carries the version); NULL on allocation failure. */
    json_t *(*item)(const struct clst_vault_rctx *rc, const struct clst_vault_object *obj,
                    bool versioned);
    /* The message when a list item cannot be made. */
    const char *list_nomem;
    /* Answers the bundle of `obj` (live or deleted) with a 200, or answers the error; returns as
     * a handler does. */
    enum clst_status (*reply)(struct clst_vault_rctx *rc, const struct clst_vault_object *obj,
                              struct clst_err *err);
};

/* GET /keys, /keys/{name}/versions, /deletedkeys (CLST_VAULT_LIST_*), and the same of secrets:
 * perm_deleted_read for the deleted listing, perm_read for the others. */
enum clst_status clst_vault_kind_list(const struct clst_vault_kind_rest *k,
                                      enum clst_vault_listing listing, void *ctx,
                                      const struct clst_http_request *req,
                                      struct clst_http_response *resp, struct clst_err *err);

/* The state changes that answer with the object's bundle (paths of keys; secrets alike). */
enum clst_vault_state_op {
    CLST_VAULT_OP_DELETE,      /* DELETE /keys/{name}: soft delete (perm_delete) */
    CLST_VAULT_OP_GET_DELETED, /* GET /deletedkeys/{name} (perm_deleted_read) */
    CLST_VAULT_OP_RECOVER,     /* POST /deletedkeys/{name}/recover (perm_recover) */
};
enum clst_status clst_vault_kind_state_op(const struct clst_vault_kind_rest *k,
                                          enum clst_vault_state_op op, void *ctx,
                                          const struct clst_http_request *req,
                                          struct clst_http_response *resp, struct clst_err *err);

/* DELETE /deletedkeys/{name} (perm_purge): 204, or 403 saying when the object will be purged
 * when purge protection is on and the scheduled purge date has not come. */
enum clst_status clst_vault_kind_purge(const struct clst_vault_kind_rest *k, void *ctx,
                                       const struct clst_http_request *req,
                                       struct clst_http_response *resp, struct clst_err *err);

/* ---- errors --------------------------------------------------------------------------------- */

/*
 * Answers err->status the cloud vault's way and returns CLST_OK (the handler is done):
 *   CLST_E_NOTFOUND             → 404 KeyNotFound / SecretNotFound (kind 0: NotFound)
 *   CLST_E_CONFLICT             → 409 Conflict
 *   CLST_E_INVAL, _MALFORMED, _LIMIT → 400 BadParameter
 *   CLST_E_DENIED               → 403 Forbidden
 *   CLST_E_VERIFY               → 500 InternalError (from the store it means a row or a seal
 *                                 failed its integrity check); err->msg goes to the log only
 * with err->msg as the message. Anything else (NOMEM, IO, CRYPTO, INTERNAL) is returned
 * unchanged so that the server answers 500 and logs err->msg. Handlers whose CLST_E_VERIFY means
 * "bad client input" (a ciphertext that does not decrypt) map it to CLST_E_INVAL first.
 */
enum clst_status clst_vault_reply_err(struct clst_vault_rctx *rc, enum clst_vault_kind kind,
                                      struct clst_err *err);
/* The same with an explicit status and message. */
enum clst_status clst_vault_reply_status(struct clst_vault_rctx *rc, enum clst_vault_kind kind,
                                         enum clst_status status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ---- request bodies of secrets and principals (also driven by tests/fuzz/fuzz_vault_request.c) */

#define CLST_VAULT_SECRET_VALUE_MAX (25 * 1024) /* bytes: the cloud key vault's limit */

/* The members of a secret set (PUT) or update (PATCH) body. Pointers borrow from the JSON. */
struct clst_vault_secret_body {
    const char *value; /* set only (required there); an update with "value" is refused */
    size_t value_size;
    bool has_value;
    const char *content_type;
    bool has_content_type;
    struct clst_vault_attrs attrs; /* the caller presets defaults (set) or zeroes (update) */
    unsigned fields;               /* CLST_VAULT_UPDATE_* of the members present */
    char *tags;                    /* canonical JSON text (malloc'ed) when "tags" was present */
};
enum clst_status clst_vault_secret_body_parse(json_t *body, bool for_update,
                                              struct clst_vault_secret_body *out,
                                              struct clst_err *err);
void clst_vault_secret_body_cleanup(struct clst_vault_secret_body *b);

/* The members of POST /principals: {"name", "id"?, "enabled"?, "roles"?: [{"role", "scope"?}]}.
 * Role names are canonicalized (any letter case accepted), scopes default to "/", each
 * (role, scope) is checked with clst_vault_role_scope_ok and may appear once. */
struct clst_vault_principal_body {
    char name[CLST_VAULT_PRINCIPAL_NAME_MAX + 1];
    char id[CLST_VAULT_PRINCIPAL_ID_MAX + 1]; /* "" when absent (the vault generates one) */
    bool enabled;
    struct clst_vault_role_assignment *roles; /* malloc'ed */
    size_t role_count;
};
enum clst_status clst_vault_principal_body_parse(json_t *body,
                                                 struct clst_vault_principal_body *out,
                                                 struct clst_err *err);
void clst_vault_principal_body_cleanup(struct clst_vault_principal_body *b);

/* ---- route registration (one per REST file; called by clst_vault_register) ------------------ */

/* A route table entry without the ctx (the vault is every route's ctx). */
struct clst_vault_route {
    enum clst_http_method method;
    const char *pattern;
    enum clst_status (*handler)(void *ctx, const struct clst_http_request *req,
                                struct clst_http_response *resp, struct clst_err *err);
};

/* Adds `count` routes, all CLST_ROUTE_PROTECTED with ctx = v. */
enum clst_status clst_vault_routes_add(struct clst_vault *v, struct clst_server *server,
                                       const struct clst_vault_route *routes, size_t count,
                                       struct clst_err *err);

enum clst_status clst_vault_rest_secrets_register(struct clst_vault *v, struct clst_server *server,
                                                  struct clst_err *err);
enum clst_status clst_vault_rest_principals_register(struct clst_vault *v,
                                                     struct clst_server *server,
                                                     struct clst_err *err);
/* rest_keys.c (vkeys): every /keys, /deletedkeys and /rng route. */
enum clst_status clst_vault_rest_keys_register(struct clst_vault *v, struct clst_server *server,
                                               struct clst_err *err);

#endif /* CLST_VAULT_REST_INT_H */
