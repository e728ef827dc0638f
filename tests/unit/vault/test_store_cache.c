/* Unit tests for src/vault/store_cache.c, the read cache every store puts in front of its backend
 * (over SQLite): repeated reads of a version row or a principal are hits that return the same
 * object and value, names matched case-insensitively; every write through the store (update, new
 * version, delete, recover, purge, principal update, role add and remove, principal delete, new
 * token hash) is seen by the very next read; a not-found answer is never cached; a row edited in
 * the file behind the store's back is served from the cache only within CLST_VAULT_CACHE_TTL_MS
 * and refused (CLST_E_VERIFY) after it, or at once when it was not cached (a cached row is
 * verified on every use); a writer racing four cached readers always reads back exactly what it
 * just wrote; and the counters' argument checks. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include <sqlite3.h>

#include <cloister/crypto.h>

#include "test_util.h"
#include "vault/vault_int.h"
#include "vault_test_util.h"

#define KEY    CLST_VAULT_KIND_KEY
#define SECRET CLST_VAULT_KIND_SECRET

/* ---- helpers -------------------------------------------------------------------------------- */

/* Runs raw SQL on the database file (the test plays someone editing it behind the store). */
static void
raw_exec(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 10000);
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        fprintf(stderr, "raw SQL failed: %s\n  %s\n", msg != NULL ? msg : "?", sql);
    }
    assert_int_equal(rc, SQLITE_OK);
    assert_int_equal(sqlite3_changes(db), 1); /* exactly the one row meant */
    sqlite3_free(msg);
    sqlite3_close(db);
}

static void
sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

static struct clst_vault_cache_stats
stats_of(struct clst_vault_store *s)
{
    struct clst_vault_cache_stats st;
    memset(&st, 0, sizeof(st));
    assert_true(clst_vault_store_cache_stats(s, &st));
    return st;
}

/* The counters moved by exactly `hits` and `misses` since `before`. */
static void
expect_delta(struct clst_vault_store *s, struct clst_vault_cache_stats before, uint64_t hits,
             uint64_t misses)
{
    struct clst_vault_cache_stats now = stats_of(s);
    if (now.hits != before.hits + hits || now.misses != before.misses + misses) {
        fprintf(stderr,
                "cache counters: hits %llu -> %llu (want +%llu), misses %llu -> %llu (want "
                "+%llu)\n",
                (unsigned long long)before.hits, (unsigned long long)now.hits,
                (unsigned long long)hits, (unsigned long long)before.misses,
                (unsigned long long)now.misses, (unsigned long long)misses);
    }
    assert_true(now.hits == before.hits + hits);
    assert_true(now.misses == before.misses + misses);
}

/* get with value: must succeed with `value`; *out is filled (caller cleans up). */
static void
get_ok(struct clst_vault_store *s, enum clst_vault_kind kind, const char *name, const char *version,
       const char *value, struct clst_vault_object *out)
{
    struct clst_secret *got = NULL;
    struct clst_err err;
    clst_err_clear(&err);
    memset(out, 0, sizeof(*out));
    enum clst_status rc = clst_vault_store_get(s, kind, name, version, out, &got, &err);
    if (rc != CLST_OK) {
        fprintf(stderr, "get %s: %s: %s\n", name, clst_status_str(rc), err.msg);
    }
    assert_int_equal(rc, CLST_OK);
    assert_non_null(got);
    assert_int_equal(got->size, strlen(value));
    assert_memory_equal(got->ptr, value, got->size);
    clst_secret_free(got);
}

/* get (with and without value) must be CLST_E_NOTFOUND. */
static void
get_notfound(struct clst_vault_store *s, enum clst_vault_kind kind, const char *name)
{
    struct clst_vault_object out;
    struct clst_secret *got = NULL;
    struct clst_err err;
    memset(&out, 0, sizeof(out));
    assert_int_equal(clst_vault_store_get(s, kind, name, NULL, &out, &got, &err), CLST_E_NOTFOUND);
    assert_null(got);
    assert_int_equal(clst_vault_store_get(s, kind, name, NULL, &out, NULL, &err), CLST_E_NOTFOUND);
    assert_string_equal(out.name, "");
}

/* Two gets with value: the second must be a hit. Leaves the row cached. */
static void
prime(struct clst_vault_store *s, enum clst_vault_kind kind, const char *name, const char *value)
{
    struct clst_vault_object out;
    get_ok(s, kind, name, NULL, value, &out);
    clst_vault_object_cleanup(&out);
    struct clst_vault_cache_stats before = stats_of(s);
    get_ok(s, kind, name, NULL, value, &out);
    clst_vault_object_cleanup(&out);
    expect_delta(s, before, 1, 0);
}

static void
token_hash(const char *token, uint8_t out[CLST_VAULT_TOKEN_HASH_SIZE])
{
    assert_int_equal(clst_sha256(token, strlen(token), out), CLST_OK);
}

static enum clst_status
find_token(struct clst_vault_store *s, const char *token, struct clst_vault_principal *out)
{
    uint8_t h[CLST_VAULT_TOKEN_HASH_SIZE];
    struct clst_err err;
    token_hash(token, h);
    memset(out, 0, sizeof(*out));
    return clst_vault_store_principal_find_by_token(s, h, out, &err);
}

/* Looks principal "app" up both ways: by its token and by its id (both found). */
static void
look_up_app(struct clst_vault_store *s, const char *token)
{
    struct clst_vault_principal out;
    struct clst_err err;
    assert_int_equal(find_token(s, token, &out), CLST_OK);
    clst_vault_principal_cleanup(&out);
    memset(&out, 0, sizeof(out));
    assert_int_equal(clst_vault_store_principal_get(s, "app", &out, &err), CLST_OK);
    clst_vault_principal_cleanup(&out);
}

static bool
has_role(const struct clst_vault_principal *p, const char *role, const char *scope)
{
    for (size_t i = 0; i < p->role_count; i++) {
        if (strcmp(p->roles[i].role, role) == 0 && strcmp(p->roles[i].scope, scope) == 0) {
            return true;
        }
    }
    return false;
}

/* ---- hits ----------------------------------------------------------------------------------- */

static void
test_repeated_get_is_a_hit(void **state)
{
    (void)state;
    struct tv_env env;
    struct clst_err err;
    struct clst_vault_object a, b, c;
    struct clst_secret *va = NULL, *vb = NULL;
    char version[CLST_VAULT_VERSION_SIZE + 1];

    assert_int_equal(tv_env_init(&env), 0);
    struct clst_vault_object k = tv_key("kVictim");
    assert_int_equal(
        clst_vault_store_put(env.store, &k, (const uint8_t *)"private", 7, version, &err), CLST_OK);

    struct clst_vault_cache_stats s0 = stats_of(env.store);
    assert_int_equal(clst_vault_store_get(env.store, KEY, "kvictim", NULL, &a, &va, &err), CLST_OK);
    expect_delta(env.store, s0, 0, 1); /* the first read goes to SQLite */
    struct clst_vault_cache_stats s1 = stats_of(env.store);
    assert_int_equal(clst_vault_store_get(env.store, KEY, "kvictim", NULL, &b, &vb, &err), CLST_OK);
    expect_delta(env.store, s1, 1, 0); /* the second does not */

    /* The same object and value both times (the hit is a full, verified copy). */
    assert_string_equal(a.name, "kVictim");
    assert_string_equal(b.name, "kVictim");
    assert_string_equal(a.version, version);
    assert_string_equal(b.version, version);
    assert_string_equal(b.kty, "RSA");
    assert_true(b.attrs.enabled);
    assert_true(b.attrs.exportable);
    assert_int_equal(b.attrs.created, a.attrs.created);
    assert_string_equal(b.tags, a.tags);
    assert_string_equal(b.tags, "{\"team\":\"red\"}");
    assert_string_equal(b.key_ops, a.key_ops);
    assert_string_equal(b.release_policy, a.release_policy);
    assert_int_equal(b.public_size, a.public_size);
    assert_int_equal(b.public_size, k.public_size);
    assert_memory_equal(b.public_data, k.public_data, k.public_size);
    assert_ptr_not_equal(a.tags, b.tags); /* each caller owns its copy */
    assert_int_equal(va->size, 7);
    assert_int_equal(vb->size, 7);
    assert_memory_equal(va->ptr, "private", 7);
    assert_memory_equal(vb->ptr, "private", 7);
    clst_secret_free(va);
    clst_secret_free(vb);
    clst_vault_object_cleanup(&a);
    clst_vault_object_cleanup(&b);

    /* Another spelling of the name is the same entry, and returns the display name. */
    struct clst_vault_cache_stats s2 = stats_of(env.store);
    get_ok(env.store, KEY, "KVictim", NULL, "private", &c);
    expect_delta(env.store, s2, 1, 0);
    assert_string_equal(c.name, "kVictim");
    assert_string_equal(c.version, version);
    clst_vault_object_cleanup(&c);
    /* The explicit version is an entry of its own; cached too after one read. */
    s2 = stats_of(env.store);
    get_ok(env.store, KEY, "KVICTIM", version, "private", &c);
    clst_vault_object_cleanup(&c);
    get_ok(env.store, KEY, "kvictim", version, "private", &c);
    expect_delta(env.store, s2, 1, 1);
    assert_string_equal(c.name, "kVictim");
    clst_vault_object_cleanup(&c);
    /* Without the value is another entry (no seal in it). */
    s2 = stats_of(env.store);
    assert_int_equal(clst_vault_store_get(env.store, KEY, "kvictim", NULL, &c, NULL, &err),
                     CLST_OK);
    clst_vault_object_cleanup(&c);
    assert_int_equal(clst_vault_store_get(env.store, KEY, "KVictim", "", &c, NULL, &err), CLST_OK);
    expect_delta(env.store, s2, 1, 1);
    assert_string_equal(c.name, "kVictim");
    clst_vault_object_cleanup(&c);
    /* A key and a secret of the same name are different entries. */
    assert_int_equal(tv_put_secret(env.store, "kvictim", NULL), CLST_OK);
    get_ok(env.store, SECRET, "kvictim", NULL, "kvictim-value", &c);
    clst_vault_object_cleanup(&c);
    get_ok(env.store, KEY, "kvictim", NULL, "private", &c);
    clst_vault_object_cleanup(&c);
    s2 = stats_of(env.store);
    get_ok(env.store, SECRET, "KVICTIM", NULL, "kvictim-value", &c);
    assert_int_equal(c.kind, SECRET);
    clst_vault_object_cleanup(&c);
    get_ok(env.store, KEY, "KVICTIM", NULL, "private", &c);
    assert_int_equal(c.kind, KEY);
    clst_vault_object_cleanup(&c);
    expect_delta(env.store, s2, 2, 0);
    tv_env_cleanup(&env);
}

/* ---- writes through the store are seen at once ---------------------------------------------- */

static void
test_writes_are_seen_at_once(void **state)
{
    (void)state;
    struct tv_env env;
    struct clst_err err;
    struct clst_vault_object out, ch;
    char v1[CLST_VAULT_VERSION_SIZE + 1], v2[CLST_VAULT_VERSION_SIZE + 1];
    struct clst_vault_cache_stats st;

    assert_int_equal(tv_env_init(&env), 0);
    struct clst_vault_object k = tv_key("wkey");
    assert_int_equal(clst_vault_store_put(env.store, &k, (const uint8_t *)"one", 3, v1, &err),
                     CLST_OK);

    /* update: enabled and tags */
    prime(env.store, KEY, "wkey", "one");
    assert_int_equal(clst_vault_store_get(env.store, KEY, "wkey", NULL, &out, NULL, &err), CLST_OK);
    clst_vault_object_cleanup(&out); /* the row without seal is cached as well */
    memset(&ch, 0, sizeof(ch));
    ch.attrs.enabled = false;
    ch.tags = (char *)"{\"team\":\"blue\"}";
    assert_int_equal(clst_vault_store_update(env.store, KEY, "WKEY", NULL, &ch,
                                             CLST_VAULT_UPDATE_ENABLED | CLST_VAULT_UPDATE_TAGS,
                                             NULL, &err),
                     CLST_OK);
    st = stats_of(env.store);
    get_ok(env.store, KEY, "wkey", NULL, "one", &out);
    expect_delta(env.store, st, 0, 1);
    assert_false(out.attrs.enabled);
    assert_string_equal(out.tags, "{\"team\":\"blue\"}");
    assert_string_equal(out.version, v1);
    clst_vault_object_cleanup(&out);
    assert_int_equal(clst_vault_store_get(env.store, KEY, "wkey", NULL, &out, NULL, &err), CLST_OK);
    assert_false(out.attrs.enabled);
    assert_string_equal(out.tags, "{\"team\":\"blue\"}");
    clst_vault_object_cleanup(&out);
    assert_int_equal(clst_vault_store_get(env.store, KEY, "wkey", v1, &out, NULL, &err), CLST_OK);
    assert_false(out.attrs.enabled);
    clst_vault_object_cleanup(&out);

    /* and back (a second update of the same cached row) */
    prime(env.store, KEY, "wkey", "one");
    ch.attrs.enabled = true;
    ch.tags = NULL;
    assert_int_equal(clst_vault_store_update(env.store, KEY, "wkey", v1, &ch,
                                             CLST_VAULT_UPDATE_ENABLED | CLST_VAULT_UPDATE_TAGS,
                                             NULL, &err),
                     CLST_OK);
    get_ok(env.store, KEY, "wkey", NULL, "one", &out);
    assert_true(out.attrs.enabled);
    assert_null(out.tags);
    clst_vault_object_cleanup(&out);

    /* a new version: the latest is the new one, with its value */
    prime(env.store, KEY, "wkey", "one");
    assert_int_equal(clst_vault_store_get(env.store, KEY, "wkey", "", &out, NULL, &err), CLST_OK);
    clst_vault_object_cleanup(&out);
    assert_int_equal(clst_vault_store_put(env.store, &k, (const uint8_t *)"two", 3, v2, &err),
                     CLST_OK);
    assert_string_not_equal(v1, v2);
    get_ok(env.store, KEY, "wkey", NULL, "two", &out);
    assert_string_equal(out.version, v2);
    clst_vault_object_cleanup(&out);
    get_ok(env.store, KEY, "wkey", "", "two", &out);
    assert_string_equal(out.version, v2);
    clst_vault_object_cleanup(&out);
    assert_int_equal(clst_vault_store_get(env.store, KEY, "wkey", "", &out, NULL, &err), CLST_OK);
    assert_string_equal(out.version, v2);
    clst_vault_object_cleanup(&out);
    get_ok(env.store, KEY, "wkey", v1, "one", &out); /* the old version is still there */
    assert_string_equal(out.version, v1);
    clst_vault_object_cleanup(&out);

    /* delete: gone from the live namespace, found among the deleted */
    prime(env.store, KEY, "wkey", "two");
    get_ok(env.store, KEY, "wkey", v1, "one", &out);
    clst_vault_object_cleanup(&out);
    assert_int_equal(clst_vault_store_delete(env.store, KEY, "wkey", 7, NULL, &err), CLST_OK);
    get_notfound(env.store, KEY, "wkey");
    assert_int_equal(clst_vault_store_get(env.store, KEY, "wkey", v1, &out, NULL, &err),
                     CLST_E_NOTFOUND);
    assert_int_equal(clst_vault_store_get_deleted(env.store, KEY, "wkey", &out, &err), CLST_OK);
    assert_string_equal(out.version, v2);
    assert_true(out.deleted_date != 0);
    assert_int_equal(out.scheduled_purge_date, out.deleted_date + 7 * 86400);
    clst_vault_object_cleanup(&out);
    st = stats_of(env.store);
    assert_int_equal(clst_vault_store_get_deleted(env.store, KEY, "WKey", &out, &err), CLST_OK);
    expect_delta(env.store, st, 1, 0); /* the deleted row is cached too */
    assert_string_equal(out.version, v2);
    clst_vault_object_cleanup(&out);

    /* recover: live again, no longer among the deleted */
    assert_int_equal(clst_vault_store_recover(env.store, KEY, "wkey", &err), CLST_OK);
    assert_int_equal(clst_vault_store_get_deleted(env.store, KEY, "wkey", &out, &err),
                     CLST_E_NOTFOUND);
    get_ok(env.store, KEY, "wkey", NULL, "two", &out);
    assert_string_equal(out.version, v2);
    assert_int_equal(out.deleted_date, 0);
    clst_vault_object_cleanup(&out);

    /* delete, read as deleted (cached), purge: gone everywhere */
    prime(env.store, KEY, "wkey", "two");
    assert_int_equal(clst_vault_store_delete(env.store, KEY, "wkey", 7, &out, &err), CLST_OK);
    clst_vault_object_cleanup(&out);
    assert_int_equal(clst_vault_store_get_deleted(env.store, KEY, "wkey", &out, &err), CLST_OK);
    clst_vault_object_cleanup(&out);
    st = stats_of(env.store);
    assert_int_equal(clst_vault_store_get_deleted(env.store, KEY, "wkey", &out, &err), CLST_OK);
    expect_delta(env.store, st, 1, 0);
    clst_vault_object_cleanup(&out);
    assert_int_equal(clst_vault_store_purge(env.store, KEY, "wkey", &err), CLST_OK);
    assert_int_equal(clst_vault_store_get_deleted(env.store, KEY, "wkey", &out, &err),
                     CLST_E_NOTFOUND);
    get_notfound(env.store, KEY, "wkey");

    /* the same with the scheduled purge (purge_due), once its date has passed */
    assert_int_equal(clst_vault_store_put(env.store, &k, (const uint8_t *)"three", 5, NULL, &err),
                     CLST_OK);
    prime(env.store, KEY, "wkey", "three");
    assert_int_equal(clst_vault_store_delete(env.store, KEY, "wkey", 7, NULL, &err), CLST_OK);
    assert_int_equal(clst_vault_store_get_deleted(env.store, KEY, "wkey", &out, &err), CLST_OK);
    clst_vault_object_cleanup(&out);
    st = stats_of(env.store);
    assert_int_equal(clst_vault_store_get_deleted(env.store, KEY, "wkey", &out, &err), CLST_OK);
    expect_delta(env.store, st, 1, 0);
    clst_vault_object_cleanup(&out);
    env.clock.fixed += 8 * 86400;
    size_t purged = 0;
    assert_int_equal(clst_vault_store_purge_due(env.store, &purged, &err), CLST_OK);
    assert_true(purged >= 1);
    assert_int_equal(clst_vault_store_get_deleted(env.store, KEY, "wkey", &out, &err),
                     CLST_E_NOTFOUND);
    get_notfound(env.store, KEY, "wkey");

    /* secrets: a new version's value, a content type update, a delete */
    char s1[CLST_VAULT_VERSION_SIZE + 1], s2[CLST_VAULT_VERSION_SIZE + 1];
    assert_int_equal(tv_put_secret(env.store, "wsecret", s1), CLST_OK);
    prime(env.store, SECRET, "wsecret", "wsecret-value");
    struct clst_vault_object sec = tv_secret("wsecret");
    assert_int_equal(clst_vault_store_put(env.store, &sec, (const uint8_t *)"rotated", 7, s2, &err),
                     CLST_OK);
    get_ok(env.store, SECRET, "WSecret", NULL, "rotated", &out);
    assert_string_equal(out.version, s2);
    assert_string_equal(out.content_type, "text/plain");
    clst_vault_object_cleanup(&out);
    prime(env.store, SECRET, "wsecret", "rotated");
    memset(&ch, 0, sizeof(ch));
    ch.content_type = (char *)"application/json";
    assert_int_equal(clst_vault_store_update(env.store, SECRET, "wsecret", NULL, &ch,
                                             CLST_VAULT_UPDATE_CONTENT_TYPE, NULL, &err),
                     CLST_OK);
    get_ok(env.store, SECRET, "wsecret", NULL, "rotated", &out);
    assert_string_equal(out.content_type, "application/json");
    clst_vault_object_cleanup(&out);
    get_ok(env.store, SECRET, "wsecret", s1, "wsecret-value", &out);
    assert_string_equal(out.content_type, "text/plain");
    clst_vault_object_cleanup(&out);
    prime(env.store, SECRET, "wsecret", "rotated");
    assert_int_equal(clst_vault_store_delete(env.store, SECRET, "wsecret", 7, NULL, &err), CLST_OK);
    get_notfound(env.store, SECRET, "wsecret");
    assert_int_equal(clst_vault_store_get(env.store, SECRET, "wsecret", s1, &out, NULL, &err),
                     CLST_E_NOTFOUND);
    tv_env_cleanup(&env);
}

/* ---- principals ----------------------------------------------------------------------------- */

static void
test_principals(void **state)
{
    (void)state;
    struct tv_env env;
    struct clst_err err;
    struct clst_vault_principal p, out;
    struct clst_vault_role_assignment role;
    struct clst_vault_cache_stats st;

    assert_int_equal(tv_env_init(&env), 0);
    memset(&p, 0, sizeof(p));
    memset(&role, 0, sizeof(role));
    snprintf(p.id, sizeof(p.id), "app");
    snprintf(p.name, sizeof(p.name), "An app");
    token_hash("app-token", p.token_hash);
    p.enabled = true;
    snprintf(role.role, sizeof(role.role), "Key Vault Secrets User");
    snprintf(role.scope, sizeof(role.scope), "/secrets/other");
    p.roles = &role;
    p.role_count = 1;
    assert_int_equal(clst_vault_store_principal_put(env.store, &p, &err), CLST_OK);

    /* find_by_token twice: the second is a hit, with the same principal */
    st = stats_of(env.store);
    assert_int_equal(find_token(env.store, "app-token", &out), CLST_OK);
    expect_delta(env.store, st, 0, 1);
    clst_vault_principal_cleanup(&out);
    st = stats_of(env.store);
    assert_int_equal(find_token(env.store, "app-token", &out), CLST_OK);
    expect_delta(env.store, st, 1, 0);
    assert_string_equal(out.id, "app");
    assert_string_equal(out.name, "An app");
    assert_true(out.enabled);
    assert_int_equal(out.role_count, 1);
    assert_true(has_role(&out, "Key Vault Secrets User", "/secrets/other"));
    clst_vault_principal_cleanup(&out);
    /* by id: an entry of its own */
    st = stats_of(env.store);
    assert_int_equal(clst_vault_store_principal_get(env.store, "app", &out, &err), CLST_OK);
    clst_vault_principal_cleanup(&out);
    assert_int_equal(clst_vault_store_principal_get(env.store, "app", &out, &err), CLST_OK);
    expect_delta(env.store, st, 1, 1);
    assert_int_equal(out.role_count, 1);
    clst_vault_principal_cleanup(&out);

    /* disabled: seen at once by both lookups (both were cached) */
    p.enabled = false;
    p.roles = NULL;
    p.role_count = 0;
    assert_int_equal(clst_vault_store_principal_update(env.store, &p, &err), CLST_OK);
    assert_int_equal(find_token(env.store, "app-token", &out), CLST_OK);
    assert_false(out.enabled);
    assert_int_equal(out.role_count, 1); /* roles are kept by update */
    clst_vault_principal_cleanup(&out);
    assert_int_equal(clst_vault_store_principal_get(env.store, "app", &out, &err), CLST_OK);
    assert_false(out.enabled);
    clst_vault_principal_cleanup(&out);

    /* role add: cache both lookups first */
    assert_int_equal(find_token(env.store, "app-token", &out), CLST_OK);
    clst_vault_principal_cleanup(&out);
    st = stats_of(env.store);
    look_up_app(env.store, "app-token");
    expect_delta(env.store, st, 2, 0);
    assert_int_equal(
        clst_vault_store_role_add(env.store, "app", "Key Vault Crypto User", "/keys/k1", &err),
        CLST_OK);
    assert_int_equal(clst_vault_store_principal_get(env.store, "app", &out, &err), CLST_OK);
    assert_int_equal(out.role_count, 2);
    assert_true(has_role(&out, "Key Vault Crypto User", "/keys/k1"));
    assert_true(has_role(&out, "Key Vault Secrets User", "/secrets/other"));
    clst_vault_principal_cleanup(&out);
    assert_int_equal(find_token(env.store, "app-token", &out), CLST_OK);
    assert_int_equal(out.role_count, 2);
    assert_true(has_role(&out, "Key Vault Crypto User", "/keys/k1"));
    clst_vault_principal_cleanup(&out);

    /* role remove (both lookups cached again just above) */
    assert_int_equal(clst_vault_store_role_remove(env.store, "app", "Key Vault Secrets User",
                                                  "/secrets/other", &err),
                     CLST_OK);
    assert_int_equal(find_token(env.store, "app-token", &out), CLST_OK);
    assert_int_equal(out.role_count, 1);
    assert_false(has_role(&out, "Key Vault Secrets User", "/secrets/other"));
    assert_true(has_role(&out, "Key Vault Crypto User", "/keys/k1"));
    clst_vault_principal_cleanup(&out);
    assert_int_equal(clst_vault_store_principal_get(env.store, "app", &out, &err), CLST_OK);
    assert_int_equal(out.role_count, 1);
    assert_false(has_role(&out, "Key Vault Secrets User", "/secrets/other"));
    clst_vault_principal_cleanup(&out);

    /* a new token: the old hash is gone at once, the new one found */
    st = stats_of(env.store);
    assert_int_equal(find_token(env.store, "app-token", &out), CLST_OK);
    clst_vault_principal_cleanup(&out);
    expect_delta(env.store, st, 1, 0);
    snprintf(p.name, sizeof(p.name), "Renamed app");
    token_hash("new-token", p.token_hash);
    p.enabled = true;
    assert_int_equal(clst_vault_store_principal_update(env.store, &p, &err), CLST_OK);
    assert_int_equal(find_token(env.store, "app-token", &out), CLST_E_NOTFOUND);
    assert_int_equal(find_token(env.store, "new-token", &out), CLST_OK);
    assert_string_equal(out.id, "app");
    assert_string_equal(out.name, "Renamed app");
    assert_true(out.enabled);
    assert_int_equal(out.role_count, 1);
    clst_vault_principal_cleanup(&out);
    assert_int_equal(clst_vault_store_principal_get(env.store, "app", &out, &err), CLST_OK);
    assert_string_equal(out.name, "Renamed app");
    uint8_t h[CLST_VAULT_TOKEN_HASH_SIZE];
    token_hash("new-token", h);
    assert_memory_equal(out.token_hash, h, sizeof(h));
    clst_vault_principal_cleanup(&out);

    /* delete: both lookups (cached) are NOTFOUND at once */
    st = stats_of(env.store);
    look_up_app(env.store, "new-token");
    expect_delta(env.store, st, 2, 0);
    assert_int_equal(clst_vault_store_principal_delete(env.store, "app", &err), CLST_OK);
    assert_int_equal(clst_vault_store_principal_get(env.store, "app", &out, &err), CLST_E_NOTFOUND);
    assert_int_equal(find_token(env.store, "new-token", &out), CLST_E_NOTFOUND);
    tv_env_cleanup(&env);
}

/* ---- not-found is not cached ---------------------------------------------------------------- */

static void
test_notfound_is_not_cached(void **state)
{
    (void)state;
    struct tv_env env;
    struct clst_err err;
    struct clst_vault_object out;
    struct clst_vault_principal p;
    struct clst_vault_cache_stats st;

    assert_int_equal(tv_env_init(&env), 0);
    st = stats_of(env.store);
    get_notfound(env.store, SECRET, "later");
    get_notfound(env.store, SECRET, "later");
    expect_delta(env.store, st, 0, 4); /* every lookup went to the backend */
    assert_int_equal(tv_put_secret(env.store, "later", NULL), CLST_OK);
    get_ok(env.store, SECRET, "later", NULL, "later-value", &out);
    assert_string_equal(out.name, "later");
    clst_vault_object_cleanup(&out);
    assert_int_equal(clst_vault_store_get(env.store, SECRET, "LATER", NULL, &out, NULL, &err),
                     CLST_OK);
    clst_vault_object_cleanup(&out);

    /* principals too */
    st = stats_of(env.store);
    assert_int_equal(find_token(env.store, "late-token", &p), CLST_E_NOTFOUND);
    assert_int_equal(clst_vault_store_principal_get(env.store, "late", &p, &err), CLST_E_NOTFOUND);
    assert_int_equal(find_token(env.store, "late-token", &p), CLST_E_NOTFOUND);
    expect_delta(env.store, st, 0, 3);
    memset(&p, 0, sizeof(p));
    snprintf(p.id, sizeof(p.id), "late");
    snprintf(p.name, sizeof(p.name), "Late");
    token_hash("late-token", p.token_hash);
    p.enabled = true;
    assert_int_equal(clst_vault_store_principal_put(env.store, &p, &err), CLST_OK);
    struct clst_vault_principal got;
    assert_int_equal(find_token(env.store, "late-token", &got), CLST_OK);
    assert_string_equal(got.id, "late");
    clst_vault_principal_cleanup(&got);
    assert_int_equal(clst_vault_store_principal_get(env.store, "late", &got, &err), CLST_OK);
    assert_string_equal(got.name, "Late");
    clst_vault_principal_cleanup(&got);
    tv_env_cleanup(&env);
}

/* ---- edits by another process: seen within the TTL ------------------------------------------ */

static void
expect_verify(enum clst_status rc, const struct clst_err *err)
{
    if (rc != CLST_E_VERIFY) {
        fprintf(stderr, "expected CLST_E_VERIFY, got %s: %s\n", clst_status_str(rc), err->msg);
    }
    assert_int_equal(rc, CLST_E_VERIFY);
}

#define FLIP_ENABLED(name)                                                                         \
    "UPDATE versions SET enabled = 1 - enabled WHERE object_id = "                                 \
    "(SELECT id FROM objects WHERE name = '" name "');"

static void
test_edits_on_disk_seen_within_ttl(void **state)
{
    (void)state;
    struct tv_env env;
    struct clst_err err;
    struct clst_vault_object out;
    struct clst_secret *got = NULL;
    struct clst_vault_cache_stats st;

    assert_int_equal(tv_env_init(&env), 0);
    struct clst_vault_object k = tv_key("kvictim");
    assert_int_equal(clst_vault_store_put(env.store, &k, (const uint8_t *)"private", 7, NULL, &err),
                     CLST_OK);
    struct clst_vault_object f = tv_key("kfresh");
    assert_int_equal(clst_vault_store_put(env.store, &f, (const uint8_t *)"fresh", 5, NULL, &err),
                     CLST_OK);
    struct clst_vault_principal p;
    memset(&p, 0, sizeof(p));
    snprintf(p.id, sizeof(p.id), "app");
    snprintf(p.name, sizeof(p.name), "An app");
    token_hash("app-token", p.token_hash);
    p.enabled = true;
    assert_int_equal(clst_vault_store_principal_put(env.store, &p, &err), CLST_OK);

    /* Cached just before the edits. */
    get_ok(env.store, KEY, "kvictim", NULL, "private", &out);
    clst_vault_object_cleanup(&out);
    struct clst_vault_principal pp;
    assert_int_equal(find_token(env.store, "app-token", &pp), CLST_OK);
    clst_vault_principal_cleanup(&pp);
    uint64_t cached_at = clst_monotonic_ns();

    /* One transaction (one commit), so that the reads below fall well inside the TTL even on
     * a loaded machine. */
    raw_exec(env.db, "BEGIN; " FLIP_ENABLED("kvictim") " " FLIP_ENABLED(
                         "kfresh") " UPDATE principals SET enabled = 0 WHERE id = 'app'; COMMIT;");

    /* Within the window: the cached rows are still served (as they were, still enabled). */
    st = stats_of(env.store);
    get_ok(env.store, KEY, "kvictim", NULL, "private", &out);
    assert_true(out.attrs.enabled);
    clst_vault_object_cleanup(&out);
    assert_int_equal(find_token(env.store, "app-token", &pp), CLST_OK);
    assert_true(pp.enabled);
    clst_vault_principal_cleanup(&pp);
    expect_delta(env.store, st, 2, 0);
    /* The test relies on these reads having been inside the TTL. */
    assert_true(clst_monotonic_ns() - cached_at < (uint64_t)CLST_VAULT_CACHE_TTL_MS * 1000000u);

    /* Rows not cached before the edit are read from disk and refused at once: another object,
     * the same version row without its seal (another entry), the principal by id. */
    memset(&out, 0, sizeof(out));
    expect_verify(clst_vault_store_get(env.store, KEY, "kfresh", NULL, &out, &got, &err), &err);
    assert_null(got);
    assert_string_equal(out.name, "");
    expect_verify(clst_vault_store_get(env.store, KEY, "kvictim", NULL, &out, NULL, &err), &err);
    assert_string_equal(out.name, "");
    memset(&pp, 0, sizeof(pp));
    expect_verify(clst_vault_store_principal_get(env.store, "app", &pp, &err), &err);
    assert_string_equal(pp.id, "");

    /* After the TTL the cached rows are read again, and the tampering is detected. */
    sleep_ms(CLST_VAULT_CACHE_TTL_MS + 200);
    st = stats_of(env.store);
    expect_verify(clst_vault_store_get(env.store, KEY, "kvictim", NULL, &out, &got, &err), &err);
    assert_null(got);
    assert_string_equal(out.name, "");
    memset(&pp, 0, sizeof(pp));
    uint8_t h[CLST_VAULT_TOKEN_HASH_SIZE];
    token_hash("app-token", h);
    expect_verify(clst_vault_store_principal_find_by_token(env.store, h, &pp, &err), &err);
    assert_string_equal(pp.id, "");
    expect_delta(env.store, st, 0, 2);

    /* The cache holds rows as stored, not as verified: the tampered row is now cached, and
     * checked again on every use (a hit, still refused). */
    st = stats_of(env.store);
    expect_verify(clst_vault_store_get(env.store, KEY, "kvictim", NULL, &out, &got, &err), &err);
    assert_null(got);
    assert_string_equal(out.name, "");
    expect_delta(env.store, st, 1, 0);

    /* Undoing the edit on disk is seen the same way: within the TTL. */
    raw_exec(env.db, FLIP_ENABLED("kvictim"));
    sleep_ms(CLST_VAULT_CACHE_TTL_MS + 200);
    get_ok(env.store, KEY, "kvictim", NULL, "private", &out);
    assert_true(out.attrs.enabled);
    clst_vault_object_cleanup(&out);
    tv_env_cleanup(&env);
}

/* ---- a writer racing cached readers --------------------------------------------------------- */

#define RACE_READERS    4
#define RACE_ITERATIONS 200
#define RACE_MIN_MS     1000
#define RACE_QUIET_MS   200

struct race {
    struct clst_vault_store *store;
    atomic_bool stop;
    atomic_bool writer_done;
    atomic_int failures;
    atomic_long reads;
    pthread_mutex_t lock;
    char first_failure[CLST_ERR_MSG_SIZE + 128];
};

static void
race_fail(struct race *r, const char *fmt, ...)
{
    if (atomic_fetch_add(&r->failures, 1) == 0) {
        va_list ap;
        va_start(ap, fmt);
        pthread_mutex_lock(&r->lock);
        vsnprintf(r->first_failure, sizeof(r->first_failure), fmt, ap);
        pthread_mutex_unlock(&r->lock);
        va_end(ap);
    }
}

/* The tags the writer sets at iteration i. */
static void
race_tags(int i, char *out, size_t cap)
{
    snprintf(out, cap, "{\"i\":\"%d\"}", i);
}

/* A row is consistent when its enabled flag matches its tags (one write sets both). */
static bool
race_consistent(const struct clst_vault_object *o, int *out_i)
{
    int i = -1;
    if (o->tags == NULL) {
        *out_i = -1;
        return o->attrs.enabled; /* as put */
    }
    if (sscanf(o->tags, "{\"i\":\"%d\"}", &i) != 1) {
        return false;
    }
    *out_i = i;
    return o->attrs.enabled == ((i % 2) != 0);
}

static void *
race_reader(void *arg)
{
    struct race *r = arg;
    while (!atomic_load(&r->stop)) {
        struct clst_vault_object out;
        struct clst_secret *got = NULL;
        struct clst_err err;
        int i;
        memset(&out, 0, sizeof(out));
        enum clst_status rc = clst_vault_store_get(r->store, SECRET, "hot", NULL, &out, &got, &err);
        atomic_fetch_add(&r->reads, 1);
        if (rc != CLST_OK) {
            race_fail(r, "reader get: %s: %s", clst_status_str(rc), err.msg);
            continue;
        }
        if (got->size != 9 || memcmp(got->ptr, "hot-value", 9) != 0) {
            race_fail(r, "reader got a wrong value");
        } else if (!race_consistent(&out, &i)) {
            race_fail(r, "reader got an inconsistent row (tags %s, enabled %d)",
                      out.tags != NULL ? out.tags : "(null)", (int)out.attrs.enabled);
        }
        clst_secret_free(got);
        clst_vault_object_cleanup(&out);
    }
    return NULL;
}

/* One get by the writer after its update `i`: exactly what it wrote, never the row before. */
static void
race_check(struct race *r, int i, bool with_value, const char *when)
{
    struct clst_vault_object out;
    struct clst_secret *got = NULL;
    struct clst_err err;
    int seen = -2;
    memset(&out, 0, sizeof(out));
    enum clst_status rc =
        clst_vault_store_get(r->store, SECRET, "hot", NULL, &out, with_value ? &got : NULL, &err);
    if (rc != CLST_OK) {
        race_fail(r, "get %s update %d: %s: %s", when, i, clst_status_str(rc), err.msg);
        return;
    }
    if (!race_consistent(&out, &seen) || seen != i || out.attrs.enabled != ((i % 2) != 0)) {
        race_fail(r, "get %s update %d saw tags %s, enabled %d", when, i,
                  out.tags != NULL ? out.tags : "(null)", (int)out.attrs.enabled);
    }
    if (with_value && (got->size != 9 || memcmp(got->ptr, "hot-value", 9) != 0)) {
        race_fail(r, "get %s update %d: wrong value", when, i);
    }
    clst_secret_free(got);
    clst_vault_object_cleanup(&out);
}

static void *
race_writer(void *arg)
{
    struct race *r = arg;
    for (int i = 0; i < RACE_ITERATIONS; i++) {
        struct clst_vault_object ch;
        struct clst_err err;
        char tags[64];
        race_tags(i, tags, sizeof(tags));
        memset(&ch, 0, sizeof(ch));
        ch.attrs.enabled = (i % 2) != 0;
        ch.tags = tags;
        enum clst_status rc =
            clst_vault_store_update(r->store, SECRET, "hot", NULL, &ch,
                                    CLST_VAULT_UPDATE_ENABLED | CLST_VAULT_UPDATE_TAGS, NULL, &err);
        if (rc != CLST_OK) {
            race_fail(r, "update %d: %s: %s", i, clst_status_str(rc), err.msg);
            continue;
        }
        race_check(r, i, true, "right after");
        race_check(r, i, false, "(no value) after");
        /* A little later too: by then the readers whose SQLite reads straddled the commit have
         * finished, and none of them may have left the old row in the cache. */
        struct timespec pause = {0, 200000L};
        nanosleep(&pause, NULL);
        race_check(r, i, true, "200 us after");
    }
    return NULL;
}

/* Writes to another object while the writer runs: every one makes all entries stale, so the
 * readers keep missing and reading SQLite, and some of their reads straddle the writer's commits
 * (the reads the generation check must keep out of the cache). */
static void *
race_noise(void *arg)
{
    struct race *r = arg;
    for (int n = 0; !atomic_load(&r->writer_done); n++) {
        struct clst_vault_object ch;
        struct clst_err err;
        char tags[64];
        snprintf(tags, sizeof(tags), "{\"n\":\"%d\"}", n);
        memset(&ch, 0, sizeof(ch));
        ch.tags = tags;
        enum clst_status rc = clst_vault_store_update(r->store, SECRET, "noise", NULL, &ch,
                                                      CLST_VAULT_UPDATE_TAGS, NULL, &err);
        if (rc != CLST_OK) {
            race_fail(r, "noise update %d: %s: %s", n, clst_status_str(rc), err.msg);
        }
    }
    return NULL;
}

static void
test_writer_reads_its_writes_under_readers(void **state)
{
    (void)state;
    struct tv_env env;
    struct clst_err err;
    struct race r;
    pthread_t readers[RACE_READERS], writer, noise;

    /* The database in memory when /dev/shm is there: commits take microseconds instead of an
     * fsync's milliseconds, so reads are often in flight across a commit. */
    char shm_dir[64] = "/dev/shm/clst-cache-test-XXXXXX";
    bool in_shm = mkdtemp(shm_dir) != NULL;
    assert_int_equal(tv_env_init_key(&env), 0);
    if (in_shm) {
        snprintf(env.db, sizeof(env.db), "%s/vault.db", shm_dir);
    }
    assert_int_equal(tv_open(&env, 0, &err), CLST_OK);
    assert_int_equal(tv_put_secret(env.store, "hot", NULL), CLST_OK);
    assert_int_equal(tv_put_secret(env.store, "noise", NULL), CLST_OK);
    tv_close(&env);
    assert_int_equal(tv_open(&env, RACE_READERS, &err), CLST_OK);

    memset(&r, 0, sizeof(r));
    r.store = env.store;
    atomic_init(&r.stop, false);
    atomic_init(&r.writer_done, false);
    atomic_init(&r.failures, 0);
    atomic_init(&r.reads, 0);
    pthread_mutex_init(&r.lock, NULL);
    uint64_t start = clst_monotonic_ns();
    for (int i = 0; i < RACE_READERS; i++) {
        assert_int_equal(pthread_create(&readers[i], NULL, race_reader, &r), 0);
    }
    assert_int_equal(pthread_create(&writer, NULL, race_writer, &r), 0);
    assert_int_equal(pthread_create(&noise, NULL, race_noise, &r), 0);
    pthread_join(writer, NULL);
    atomic_store(&r.writer_done, true);
    pthread_join(noise, NULL);
    /* Then the readers alone (until RACE_MIN_MS in all, at least RACE_QUIET_MS): no write
     * moves the generation any more, so after one miss each they must be served by the cache. */
    struct clst_vault_cache_stats quiet = stats_of(env.store);
    uint64_t elapsed_ms = (clst_monotonic_ns() - start) / 1000000u;
    long rest_ms = RACE_QUIET_MS;
    if (elapsed_ms + RACE_QUIET_MS < RACE_MIN_MS) {
        rest_ms = (long)(RACE_MIN_MS - elapsed_ms);
    }
    sleep_ms(rest_ms);
    atomic_store(&r.stop, true);
    for (int i = 0; i < RACE_READERS; i++) {
        pthread_join(readers[i], NULL);
    }
    int failures = atomic_load(&r.failures);
    if (failures != 0) {
        fprintf(stderr, "%d failures; first: %s\n", failures, r.first_failure);
    }
    assert_int_equal(failures, 0);

    struct clst_vault_cache_stats st = stats_of(env.store);
    long reads = atomic_load(&r.reads);
    fprintf(stderr, "%ld reads by %d readers; cache hits %llu, misses %llu\n", reads, RACE_READERS,
            (unsigned long long)st.hits, (unsigned long long)st.misses);
    assert_true(reads > RACE_ITERATIONS);
    assert_true(st.hits > 0);
    assert_true(st.misses >= 2 * RACE_ITERATIONS); /* each write made every entry stale */
    /* The quiet phase: the readers got hits, and missed at most once each (twice allowed for an
     * entry born just before the phase that reached the TTL). */
    assert_true(st.hits > quiet.hits + 10);
    assert_true(st.misses <= quiet.misses + 2 * RACE_READERS);

    /* The last write, seen by everyone afterwards. */
    struct clst_vault_object out;
    get_ok(env.store, SECRET, "hot", NULL, "hot-value", &out);
    char tags[64];
    race_tags(RACE_ITERATIONS - 1, tags, sizeof(tags));
    assert_string_equal(out.tags, tags);
    assert_int_equal(out.attrs.enabled, ((RACE_ITERATIONS - 1) % 2) != 0);
    clst_vault_object_cleanup(&out);
    pthread_mutex_destroy(&r.lock);
    tv_env_cleanup(&env);
    if (in_shm) {
        tv_rmdir(shm_dir);
    }
}

/* ---- counters ------------------------------------------------------------------------------- */

static void
test_stats_arguments(void **state)
{
    (void)state;
    struct tv_env env;
    struct clst_vault_cache_stats st;

    assert_int_equal(tv_env_init(&env), 0);
    memset(&st, 0xa5, sizeof(st));
    assert_false(clst_vault_store_cache_stats(NULL, &st));
    assert_false(clst_vault_store_cache_stats(env.store, NULL));
    assert_false(clst_vault_store_cache_stats(NULL, NULL));
    assert_true(clst_vault_store_cache_stats(env.store, &st));
    assert_true(st.hits == 0); /* opening reads no version row or principal */
    assert_true(st.misses == 0);
    tv_env_cleanup(&env);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_repeated_get_is_a_hit),
        cmocka_unit_test(test_writes_are_seen_at_once),
        cmocka_unit_test(test_principals),
        cmocka_unit_test(test_notfound_is_not_cached),
        cmocka_unit_test(test_edits_on_disk_seen_within_ttl),
        cmocka_unit_test(test_writer_reads_its_writes_under_readers),
        cmocka_unit_test(test_stats_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
