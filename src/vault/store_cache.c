/*
 * A read cache in front of a vault backend: the rows a request reads on every crypto operation
 * (the caller's principal, by token hash; the key's version row, with its seal) are kept in
 * memory for a short time instead of being read from SQLite each time, which costs a read
 * transaction and its file locks.
 *
 * What is cached is what the backend returns: rows as stored, still sealed and still carrying
 * their MACs. The store's front end (store.c) verifies the MAC and opens the seal on every use,
 * exactly as for a row read from disk, so the cache holds no plaintext and skips no check.
 *
 * Coherence. Every write through this backend (any call that can change a row) bumps a
 * generation number after the write returns, and an entry is used only while the generation it
 * was read under is still current. A reader takes the generation before it reads the backend
 * and keeps its result only if the generation has not moved since, so a row read around a
 * concurrent write is never kept. Hence a request that starts after a write has been answered
 * never sees the row from before it.
 *
 * Writes by another process are not seen this way. The server holds the data directory's lock,
 * so the only other writer is someone editing the database file by hand (tampering, or a
 * restore, which needs a restart anyway). Entries therefore also expire CLST_VAULT_CACHE_TTL_MS
 * after they were read: a row edited on disk under a running server is read again, and its MAC
 * checked, within that time.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <cloister/crypto.h>

#include "vault/vault_int.h"

#define SLOTS 64

enum entry_type { E_FREE, E_VERSION, E_PRINCIPAL };

/* What an entry is the answer to. Unused fields are zero, so equal lookups have equal keys. */
struct key {
    enum entry_type type;
    /* E_VERSION */
    enum clst_vault_kind kind;
    bool deleted, with_seal;
    char name[CLST_VAULT_NAME_MAX + 1]; /* folded */
    char version[CLST_VAULT_VERSION_SIZE + 1];
    /* E_PRINCIPAL: by id, or (id "") by token hash */
    char id[CLST_VAULT_PRINCIPAL_ID_MAX + 1];
    uint8_t token_hash[CLST_VAULT_TOKEN_HASH_SIZE];
};

struct entry {
    struct key key;     /* key.type E_FREE: unused */
    uint64_t gen;       /* the generation it was read under */
    uint64_t born_ns;   /* when it was read (monotonic) */
    uint64_t used_tick; /* for eviction: the least recently used goes first */
    /* the value */
    struct clst_vault_version_row row;
    struct clst_vault_principal principal;
    struct clst_vault_mac mac;
};

struct cache {
    const struct clst_vault_backend_ops *inner;
    void *inner_be;
    pthread_mutex_t lock;
    uint64_t gen;
    uint64_t tick;
    struct clst_vault_cache_stats stats;
    struct entry slots[SLOTS];
};

/* ---- copies --------------------------------------------------------------------------------- */

static bool
dup_bytes(const void *src, size_t size, void **dst)
{
    *dst = NULL;
    if (src == NULL) {
        return true;
    }
    *dst = malloc(size > 0 ? size : 1);
    if (*dst == NULL) {
        return false;
    }
    memcpy(*dst, src, size);
    return true;
}

static bool
dup_text(const char *src, char **dst)
{
    return dup_bytes(src, src != NULL ? strlen(src) + 1 : 0, (void **)dst);
}

/* A deep copy of a version row (dst is overwritten; on failure it is left zeroed). */
static bool
row_copy(struct clst_vault_version_row *dst, const struct clst_vault_version_row *src)
{
    const struct clst_vault_object *m = &src->meta;
    *dst = *src;
    dst->meta.tags = dst->meta.key_ops = dst->meta.release_policy = dst->meta.content_type = NULL;
    dst->meta.public_data = NULL;
    dst->seal.ct = NULL;
    bool ok = dup_text(m->tags, &dst->meta.tags) && dup_text(m->key_ops, &dst->meta.key_ops) &&
              dup_bytes(m->public_data, m->public_size, (void **)&dst->meta.public_data) &&
              dup_text(m->release_policy, &dst->meta.release_policy) &&
              dup_text(m->content_type, &dst->meta.content_type) &&
              dup_bytes(src->seal.ct, src->seal.ct_size, (void **)&dst->seal.ct);
    if (!ok) {
        clst_vault_version_row_cleanup(dst);
    }
    return ok;
}

/* A deep copy of a principal (dst is overwritten; on failure it is left zeroed). */
static bool
principal_copy(struct clst_vault_principal *dst, const struct clst_vault_principal *src)
{
    *dst = *src;
    if (!dup_bytes(src->roles, src->role_count * sizeof(*src->roles), (void **)&dst->roles)) {
        memset(dst, 0, sizeof(*dst));
        return false;
    }
    return true;
}

/* ---- entries -------------------------------------------------------------------------------- */

static void
entry_clear(struct entry *e)
{
    if (e->key.type == E_VERSION) {
        clst_vault_version_row_cleanup(&e->row);
    } else if (e->key.type == E_PRINCIPAL) {
        clst_vault_principal_cleanup(&e->principal);
    }
    memset(e, 0, sizeof(*e));
}

static bool
fresh(const struct cache *c, const struct entry *e, uint64_t now)
{
    return e->gen == c->gen && now >= e->born_ns &&
           now - e->born_ns < (uint64_t)CLST_VAULT_CACHE_TTL_MS * 1000000u;
}

static bool
key_equal(const struct key *a, const struct key *b)
{
    return a->type == b->type && a->kind == b->kind && a->deleted == b->deleted &&
           a->with_seal == b->with_seal && strcmp(a->name, b->name) == 0 &&
           strcmp(a->version, b->version) == 0 && strcmp(a->id, b->id) == 0 &&
           memcmp(a->token_hash, b->token_hash, sizeof(a->token_hash)) == 0;
}

/* Lock held: the fresh entry for k (a hit), or NULL (a miss: *gen is the generation to read the
 * backend under). */
static struct entry *
find(struct cache *c, const struct key *k, uint64_t now, uint64_t *gen)
{
    for (size_t i = 0; i < SLOTS; i++) {
        struct entry *e = &c->slots[i];
        if (e->key.type != E_FREE && key_equal(&e->key, k) && fresh(c, e, now)) {
            e->used_tick = ++c->tick;
            c->stats.hits++;
            return e;
        }
    }
    c->stats.misses++;
    *gen = c->gen;
    return NULL;
}

/* Lock held: an emptied slot for k, read from the backend under `gen` at `now` (a free or stale
 * one, else the least recently used), for the caller to fill; NULL when the generation has moved
 * since (the row may predate a write: not kept). A slot the caller cannot fill is freed again
 * with entry_clear. */
static struct entry *
keep(struct cache *c, const struct key *k, uint64_t gen, uint64_t now)
{
    if (gen != c->gen) {
        return NULL;
    }
    struct entry *victim = &c->slots[0];
    for (size_t i = 0; i < SLOTS; i++) {
        struct entry *e = &c->slots[i];
        if (e->key.type == E_FREE || !fresh(c, e, now)) {
            victim = e;
            break;
        }
        if (e->used_tick < victim->used_tick) {
            victim = e;
        }
    }
    entry_clear(victim);
    victim->key = *k;
    victim->gen = gen;
    victim->born_ns = now;
    victim->used_tick = ++c->tick;
    return victim;
}

static enum clst_status
copy_failed(struct clst_err *err)
{
    return clst_err_set(err, CLST_E_NOMEM, "out of memory reading a cached row");
}

/* ---- cached reads --------------------------------------------------------------------------- */

static enum clst_status
c_version_get(void *be, enum clst_vault_kind kind, const char *name, const char *version,
              bool deleted, bool with_seal, struct clst_vault_version_row *out,
              struct clst_err *err)
{
    struct cache *c = be;
    struct key k;
    if (name == NULL || version == NULL || strlen(name) > CLST_VAULT_NAME_MAX ||
        strlen(version) > CLST_VAULT_VERSION_SIZE) {
        return c->inner->version_get(c->inner_be, kind, name, version, deleted, with_seal, out,
                                     err);
    }
    memset(&k, 0, sizeof(k));
    k.type = E_VERSION;
    k.kind = kind;
    k.deleted = deleted;
    k.with_seal = with_seal;
    clst_vault_name_fold(name, k.name);
    strcpy(k.version, version); /* length checked above */

    uint64_t now = clst_monotonic_ns(), gen = 0;
    pthread_mutex_lock(&c->lock);
    struct entry *e = find(c, &k, now, &gen);
    if (e != NULL) {
        bool ok = row_copy(out, &e->row);
        pthread_mutex_unlock(&c->lock);
        return ok ? CLST_OK : copy_failed(err);
    }
    pthread_mutex_unlock(&c->lock);

    enum clst_status rc =
        c->inner->version_get(c->inner_be, kind, name, version, deleted, with_seal, out, err);
    if (rc == CLST_OK) {
        pthread_mutex_lock(&c->lock);
        if ((e = keep(c, &k, gen, now)) != NULL && !row_copy(&e->row, out)) {
            entry_clear(e);
        }
        pthread_mutex_unlock(&c->lock);
    }
    return rc;
}

static enum clst_status
c_principal_get(void *be, const char *id, const uint8_t *token_hash,
                struct clst_vault_principal *out, struct clst_vault_mac *out_mac,
                struct clst_err *err)
{
    struct cache *c = be;
    struct key k;
    if ((id == NULL && token_hash == NULL) || (id != NULL && id[0] == '\0') ||
        (id != NULL && strlen(id) > CLST_VAULT_PRINCIPAL_ID_MAX)) {
        return c->inner->principal_get(c->inner_be, id, token_hash, out, out_mac, err);
    }
    memset(&k, 0, sizeof(k));
    k.type = E_PRINCIPAL;
    if (id != NULL) {
        strcpy(k.id, id); /* length checked above */
    } else {
        memcpy(k.token_hash, token_hash, sizeof(k.token_hash));
    }

    uint64_t now = clst_monotonic_ns(), gen = 0;
    pthread_mutex_lock(&c->lock);
    struct entry *e = find(c, &k, now, &gen);
    if (e != NULL) {
        bool ok = principal_copy(out, &e->principal);
        if (ok) {
            *out_mac = e->mac;
        }
        pthread_mutex_unlock(&c->lock);
        return ok ? CLST_OK : copy_failed(err);
    }
    pthread_mutex_unlock(&c->lock);

    enum clst_status rc = c->inner->principal_get(c->inner_be, id, token_hash, out, out_mac, err);
    if (rc == CLST_OK) {
        pthread_mutex_lock(&c->lock);
        if ((e = keep(c, &k, gen, now)) != NULL) {
            if (principal_copy(&e->principal, out)) {
                e->mac = *out_mac;
            } else {
                entry_clear(e);
            }
        }
        pthread_mutex_unlock(&c->lock);
    }
    return rc;
}

/* ---- writes: forwarded, then every entry is out of date ------------------------------------ */

static enum clst_status
wrote(struct cache *c, enum clst_status rc)
{
    pthread_mutex_lock(&c->lock);
    c->gen++;
    pthread_mutex_unlock(&c->lock);
    return rc;
}

static enum clst_status
c_meta_put(void *be, const char *name, const uint8_t *value, size_t size, const uint8_t *mac,
           bool if_absent, struct clst_err *err)
{
    struct cache *c = be;
    return wrote(c, c->inner->meta_put(c->inner_be, name, value, size, mac, if_absent, err));
}

static enum clst_status
c_version_insert(void *be, const struct clst_vault_object_row *object,
                 const struct clst_vault_version_row *row, struct clst_err *err)
{
    struct cache *c = be;
    return wrote(c, c->inner->version_insert(c->inner_be, object, row, err));
}

static enum clst_status
c_version_update(void *be, const struct clst_vault_version_row *row,
                 const struct clst_vault_mac *old_mac, struct clst_err *err)
{
    struct cache *c = be;
    return wrote(c, c->inner->version_update(c->inner_be, row, old_mac, err));
}

static enum clst_status
c_object_set_state(void *be, const struct clst_vault_object_row *object,
                   const struct clst_vault_mac *old_mac, struct clst_err *err)
{
    struct cache *c = be;
    return wrote(c, c->inner->object_set_state(c->inner_be, object, old_mac, err));
}

static enum clst_status
c_purge(void *be, enum clst_vault_kind kind, const char *name, struct clst_err *err)
{
    struct cache *c = be;
    return wrote(c, c->inner->purge(c->inner_be, kind, name, err));
}

static enum clst_status
c_purge_due(void *be, int64_t now, size_t *out_count, struct clst_err *err)
{
    struct cache *c = be;
    return wrote(c, c->inner->purge_due(c->inner_be, now, out_count, err));
}

static enum clst_status
c_principal_insert(void *be, const struct clst_vault_principal *p,
                   const uint8_t mac[CLST_VAULT_MAC_SIZE], struct clst_err *err)
{
    struct cache *c = be;
    return wrote(c, c->inner->principal_insert(c->inner_be, p, mac, err));
}

static enum clst_status
c_principal_replace(void *be, const struct clst_vault_principal *p,
                    const uint8_t mac[CLST_VAULT_MAC_SIZE], const struct clst_vault_mac *old_mac,
                    struct clst_err *err)
{
    struct cache *c = be;
    return wrote(c, c->inner->principal_replace(c->inner_be, p, mac, old_mac, err));
}

static enum clst_status
c_principal_delete(void *be, const char *id, struct clst_err *err)
{
    struct cache *c = be;
    return wrote(c, c->inner->principal_delete(c->inner_be, id, err));
}

/* ---- reads that are not cached: forwarded -------------------------------------------------- */

static enum clst_status
c_info(void *be, struct clst_vault_store_info *out, struct clst_err *err)
{
    struct cache *c = be;
    return c->inner->info(c->inner_be, out, err);
}

static enum clst_status
c_check(void *be, struct clst_err *err)
{
    struct cache *c = be;
    return c->inner->check(c->inner_be, err);
}

static enum clst_status
c_meta_get(void *be, const char *name, struct clst_buf *out_value, struct clst_vault_mac *out_mac,
           struct clst_err *err)
{
    struct cache *c = be;
    return c->inner->meta_get(c->inner_be, name, out_value, out_mac, err);
}

static enum clst_status
c_object_get(void *be, enum clst_vault_kind kind, const char *name,
             struct clst_vault_object_row *out, struct clst_err *err)
{
    struct cache *c = be;
    return c->inner->object_get(c->inner_be, kind, name, out, err);
}

static enum clst_status
c_list(void *be, enum clst_vault_listing listing, enum clst_vault_kind kind, const char *name,
       const char *after_name, int64_t after_seq, size_t limit, struct clst_vault_version_row **out,
       size_t *out_count, struct clst_err *err)
{
    struct cache *c = be;
    return c->inner->list(c->inner_be, listing, kind, name, after_name, after_seq, limit, out,
                          out_count, err);
}

static enum clst_status
c_principal_list(void *be, const char *after_id, size_t limit, struct clst_vault_principal **out,
                 struct clst_vault_mac **out_macs, size_t *out_count, struct clst_err *err)
{
    struct cache *c = be;
    return c->inner->principal_list(c->inner_be, after_id, limit, out, out_macs, out_count, err);
}

static void
cache_free(struct cache *c)
{
    for (size_t i = 0; i < SLOTS; i++) {
        entry_clear(&c->slots[i]);
    }
    pthread_mutex_destroy(&c->lock);
    free(c);
}

static void
c_close(void *be)
{
    struct cache *c = be;
    c->inner->close(c->inner_be);
    cache_free(c);
}

static const struct clst_vault_backend_ops cache_ops = {
    .name = "cache",
    .close = c_close,
    .info = c_info,
    .check = c_check,
    .meta_get = c_meta_get,
    .meta_put = c_meta_put,
    .object_get = c_object_get,
    .version_insert = c_version_insert,
    .version_get = c_version_get,
    .version_update = c_version_update,
    .list = c_list,
    .object_set_state = c_object_set_state,
    .purge = c_purge,
    .purge_due = c_purge_due,
    .principal_insert = c_principal_insert,
    .principal_get = c_principal_get,
    .principal_replace = c_principal_replace,
    .principal_delete = c_principal_delete,
    .principal_list = c_principal_list,
};

enum clst_status
clst_vault_cache_wrap(const struct clst_vault_backend_ops *inner, void *inner_be,
                      const struct clst_vault_backend_ops **out_ops, void **out_be,
                      struct clst_err *err)
{
    struct cache *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return clst_err_set(err, CLST_E_NOMEM, "out of memory for the vault store's cache");
    }
    if (pthread_mutex_init(&c->lock, NULL) != 0) {
        free(c);
        return clst_err_set(err, CLST_E_INTERNAL, "could not set up the vault store's cache");
    }
    c->inner = inner;
    c->inner_be = inner_be;
    *out_ops = &cache_ops;
    *out_be = c;
    return CLST_OK;
}

void
clst_vault_cache_unwrap(const struct clst_vault_backend_ops *ops, void *be)
{
    if (ops == &cache_ops && be != NULL) {
        cache_free(be);
    }
}

bool
clst_vault_cache_stats(const struct clst_vault_backend_ops *ops, void *be,
                       struct clst_vault_cache_stats *out)
{
    if (ops != &cache_ops) {
        return false;
    }
    struct cache *c = be;
    pthread_mutex_lock(&c->lock);
    *out = c->stats;
    pthread_mutex_unlock(&c->lock);
    return true;
}
