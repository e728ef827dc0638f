/* Unit tests for src/vault/store_sqlite.c: the settings in force (WAL, synchronous=FULL, foreign
 * keys, busy timeout, file modes); migrations (from schema 1 built by the test, from a newer
 * schema, a failing migration rolled back); rows edited behind the store's back with raw SQL
 * (ciphertext, tag, nonce, wrapped key, swapped values, renamed objects, changed versions, kinds,
 * attributes, deletion state, principals, settings) refused with CLST_E_VERIFY; many threads and
 * two store instances writing at once; and durability across kill -9 in the middle of writes. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <sqlite3.h>

#include <cloister/crypto.h>

#include "test_util.h"
#include "vault_test_util.h"

#define KEY    CLST_VAULT_KIND_KEY
#define SECRET CLST_VAULT_KIND_SECRET

/* ---- raw SQL helpers (the test plays the attacker with write access to the file) ------------ */

static sqlite3 *
raw_open(const char *path)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL),
                     SQLITE_OK);
    sqlite3_busy_timeout(db, 10000);
    return db;
}

static void
raw_exec(const char *path, const char *sql)
{
    sqlite3 *db = raw_open(path);
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        fprintf(stderr, "raw SQL failed: %s\n  %s\n", msg != NULL ? msg : "?", sql);
    }
    assert_int_equal(rc, SQLITE_OK);
    sqlite3_free(msg);
    sqlite3_close(db);
}

/* The first column of the first row as text (or "" / "(null)"). */
static void
raw_text(const char *path, const char *sql, char *out, size_t cap)
{
    sqlite3 *db = raw_open(path);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(st, 0);
        snprintf(out, cap, "%s", t != NULL ? (const char *)t : "(null)");
    } else {
        assert_int_equal(rc, SQLITE_DONE);
        out[0] = '\0';
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static long long
raw_int(const char *path, const char *sql)
{
    char buf[64];
    raw_text(path, sql, buf, sizeof(buf));
    return strtoll(buf, NULL, 10);
}

/* XORs byte `index` (negative: from the end) of a blob column of the latest version of the
 * object called `name`. The column name is the test's own constant, never input. */
static void
raw_flip(const char *path, const char *column, const char *name, int index)
{
    char sql[512];
    sqlite3 *db = raw_open(path);
    sqlite3_stmt *st = NULL;
    snprintf(sql, sizeof(sql),
             "SELECT v.seq, v.%s FROM versions v JOIN objects o ON o.id = v.object_id "
             "WHERE o.name = ?1 ORDER BY v.seq DESC LIMIT 1",
             column);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    sqlite3_int64 seq = sqlite3_column_int64(st, 0);
    int n = sqlite3_column_bytes(st, 1);
    assert_true(n > 0);
    uint8_t *blob = malloc((size_t)n);
    assert_non_null(blob);
    memcpy(blob, sqlite3_column_blob(st, 1), (size_t)n);
    sqlite3_finalize(st);
    blob[index >= 0 ? index : n + index] ^= 0x01;
    snprintf(sql, sizeof(sql), "UPDATE versions SET %s = ?1 WHERE seq = ?2", column);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    sqlite3_bind_blob(st, 1, blob, n, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, seq);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    free(blob);
    sqlite3_close(db);
}

/* ---- fixture -------------------------------------------------------------------------------- */

static const char VICTIM_VERSION[] = "1111111111111111aaaaaaaaaaaaaaaa";

/* victim, other: secrets; kvictim: a key with a release policy; principal "app" with token
 * "app-token" and one role; setting "retention" = "90". The store is left closed. */
static void
populate(struct tv_env *env)
{
    struct clst_err err;
    struct clst_vault_object v = tv_secret("victim");
    snprintf(v.version, sizeof(v.version), "%s", VICTIM_VERSION);
    assert_int_equal(
        clst_vault_store_put(env->store, &v, (const uint8_t *)"victim-value", 12, NULL, &err),
        CLST_OK);
    assert_int_equal(tv_put_secret(env->store, "other", NULL), CLST_OK);
    struct clst_vault_object k = tv_key("kvictim");
    assert_int_equal(
        clst_vault_store_put(env->store, &k, (const uint8_t *)"private", 7, NULL, &err), CLST_OK);
    struct clst_vault_principal p;
    struct clst_vault_role_assignment role;
    memset(&p, 0, sizeof(p));
    memset(&role, 0, sizeof(role));
    snprintf(p.id, sizeof(p.id), "app");
    snprintf(p.name, sizeof(p.name), "An app");
    assert_int_equal(clst_sha256("app-token", 9, p.token_hash), CLST_OK);
    p.enabled = true;
    snprintf(role.role, sizeof(role.role), "Key Vault Secrets User");
    snprintf(role.scope, sizeof(role.scope), "/secrets/other");
    p.roles = &role;
    p.role_count = 1;
    assert_int_equal(clst_vault_store_principal_put(env->store, &p, &err), CLST_OK);
    assert_int_equal(
        clst_vault_store_meta_set(env->store, "retention", (const uint8_t *)"90", 2, &err),
        CLST_OK);
}

static void
expect_verify(enum clst_status rc, const struct clst_err *err)
{
    if (rc != CLST_E_VERIFY) {
        fprintf(stderr, "expected CLST_E_VERIFY, got %s: %s\n", clst_status_str(rc), err->msg);
    }
    assert_int_equal(rc, CLST_E_VERIFY);
    assert_non_null(strstr(err->msg, "integrity check"));
}

/* get with value must fail verification and return nothing. */
static void
expect_get_verify(struct tv_env *env, enum clst_vault_kind kind, const char *name,
                  const char *version)
{
    struct clst_vault_object out;
    struct clst_secret *value = NULL;
    struct clst_err err;
    memset(&out, 0, sizeof(out));
    clst_err_clear(&err);
    expect_verify(clst_vault_store_get(env->store, kind, name, version, &out, &value, &err), &err);
    assert_null(value);
    assert_string_equal(out.name, ""); /* out untouched */
}

static void
expect_other_intact(struct tv_env *env)
{
    struct clst_vault_object out;
    struct clst_secret *value = NULL;
    struct clst_err err;
    assert_int_equal(clst_vault_store_get(env->store, SECRET, "other", NULL, &out, &value, &err),
                     CLST_OK);
    assert_memory_equal(value->ptr, "other-value", 11);
    clst_secret_free(value);
    clst_vault_object_cleanup(&out);
}

/* ---- settings in force ---------------------------------------------------------------------- */

static void
test_settings_in_force(void **state)
{
    (void)state;
    struct tv_env env;
    struct clst_vault_store_info info;
    struct clst_err err;
    struct stat st;
    char path[256], mode[32];

    assert_int_equal(tv_env_init_key(&env), 0);
    assert_int_equal(tv_open(&env, 3, &err), CLST_OK);
    assert_int_equal(clst_vault_store_info(env.store, &info, &err), CLST_OK);
    assert_string_equal(info.backend, "sqlite");
    assert_string_equal(info.journal_mode, "wal");
    assert_int_equal(info.synchronous, 2); /* FULL */
    assert_true(info.foreign_keys);
    assert_int_equal(info.busy_timeout_ms, 20000);
    assert_int_equal(info.reader_count, 3);
    assert_int_equal(info.schema_version, info.schema_latest);
    assert_int_equal(info.schema_latest, 2);
    assert_int_equal(clst_vault_store_check(env.store, &err), CLST_OK);

    /* WAL is a property of the file: another connection sees it too. */
    assert_int_equal(tv_put_secret(env.store, "x", NULL), CLST_OK);
    raw_text(env.db, "PRAGMA journal_mode", mode, sizeof(mode));
    assert_string_equal(mode, "wal");
    char sql_out[64];
    raw_text(env.db, "PRAGMA integrity_check", sql_out, sizeof(sql_out));
    assert_string_equal(sql_out, "ok");

    /* The database and its WAL and shared-memory files are private. */
    assert_int_equal(stat(env.db, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    snprintf(path, sizeof(path), "%s-wal", env.db);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    snprintf(path, sizeof(path), "%s-shm", env.db);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    tv_env_cleanup(&env);
}

static void
test_open_arguments(void **state)
{
    (void)state;
    struct tv_env env;
    struct clst_err err;
    struct clst_vault_store *s = NULL;
    assert_int_equal(tv_env_init_key(&env), 0);
    struct clst_vault_sqlite_options opt = {.path = ":memory:"};
    assert_int_equal(clst_vault_store_open_sqlite(&opt, env.mk, NULL, &s, &err), CLST_E_INVAL);
    opt.path = "file:x.db?mode=memory";
    assert_int_equal(clst_vault_store_open_sqlite(&opt, env.mk, NULL, &s, &err), CLST_E_INVAL);
    opt.path = env.db;
    opt.reader_count = 33;
    assert_int_equal(clst_vault_store_open_sqlite(&opt, env.mk, NULL, &s, &err), CLST_E_INVAL);
    opt.reader_count = 0;
    assert_int_equal(clst_vault_store_open_sqlite(&opt, NULL, NULL, &s, &err), CLST_E_INVAL);
    opt.path = "/nonexistent-dir/vault.db";
    assert_int_equal(clst_vault_store_open_sqlite(&opt, env.mk, NULL, &s, &err), CLST_E_IO);
    assert_null(s);
    /* A file that is not a database. */
    FILE *f = fopen(env.db, "w");
    assert_non_null(f);
    fputs("this is not a SQLite database, just some text that is long enough..............", f);
    fclose(f);
    opt.path = env.db;
    assert_int_equal(clst_vault_store_open_sqlite(&opt, env.mk, NULL, &s, &err), CLST_E_IO);
    assert_null(s);
    tv_env_cleanup(&env);
}

/* ---- migrations ----------------------------------------------------------------------------- */

/* Schema 1 exactly as released (frozen here on purpose: if this stops migrating, a change to a
 * released migration broke existing databases). */
static const char FROZEN_SCHEMA_1[] =
    "CREATE TABLE schema_version ("
    "  id INTEGER PRIMARY KEY CHECK (id = 1),"
    "  version INTEGER NOT NULL);"
    "CREATE TABLE meta ("
    "  name TEXT PRIMARY KEY NOT NULL,"
    "  value BLOB NOT NULL,"
    "  mac BLOB);"
    "CREATE TABLE objects ("
    "  id INTEGER PRIMARY KEY,"
    "  kind INTEGER NOT NULL CHECK (kind IN (1, 2)),"
    "  name TEXT NOT NULL COLLATE NOCASE,"
    "  deleted_date INTEGER NOT NULL DEFAULT 0,"
    "  purge_date INTEGER NOT NULL DEFAULT 0,"
    "  mac BLOB NOT NULL,"
    "  UNIQUE (kind, name));"
    "CREATE TABLE versions ("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  object_id INTEGER NOT NULL REFERENCES objects(id) ON DELETE CASCADE,"
    "  version TEXT NOT NULL,"
    "  enabled INTEGER NOT NULL,"
    "  nbf INTEGER NOT NULL,"
    "  exp INTEGER NOT NULL,"
    "  created INTEGER NOT NULL,"
    "  updated INTEGER NOT NULL,"
    "  exportable INTEGER NOT NULL,"
    "  recovery_level TEXT NOT NULL,"
    "  recoverable_days INTEGER NOT NULL,"
    "  tags TEXT,"
    "  kty TEXT NOT NULL,"
    "  key_ops TEXT,"
    "  public_data BLOB,"
    "  release_policy TEXT,"
    "  policy_immutable INTEGER NOT NULL,"
    "  content_type TEXT,"
    "  seal_alg INTEGER NOT NULL,"
    "  mk_id TEXT NOT NULL,"
    "  wrapped_key BLOB NOT NULL,"
    "  nonce BLOB NOT NULL,"
    "  ciphertext BLOB NOT NULL,"
    "  tag BLOB NOT NULL,"
    "  mac BLOB NOT NULL,"
    "  UNIQUE (object_id, version));"
    "CREATE INDEX versions_by_object ON versions(object_id, seq);"
    "INSERT INTO schema_version (id, version) VALUES (1, 1);";

static void
add_principal(struct tv_env *env, const char *id)
{
    struct clst_vault_principal p;
    struct clst_err err;
    memset(&p, 0, sizeof(p));
    snprintf(p.id, sizeof(p.id), "%s", id);
    snprintf(p.name, sizeof(p.name), "%s", id);
    assert_int_equal(clst_sha256(id, strlen(id), p.token_hash), CLST_OK);
    assert_int_equal(clst_vault_store_principal_put(env->store, &p, &err), CLST_OK);
}

static void
test_migrate_from_schema_1_with_data(void **state)
{
    (void)state;
    struct tv_env env;
    struct clst_err err;
    struct clst_vault_store_info info;
    struct clst_vault_object out;
    struct clst_secret *value = NULL;
    struct clst_buf b;

    /* Make data, then take the database back to schema 1 (no principals tables). */
    assert_int_equal(tv_env_init(&env), 0);
    assert_int_equal(tv_put_secret(env.store, "from-v1", NULL), CLST_OK);
    assert_int_equal(
        clst_vault_store_meta_set(env.store, "setting", (const uint8_t *)"kept", 4, &err), CLST_OK);
    tv_close(&env);
    raw_exec(env.db, "DROP TABLE role_assignments; DROP TABLE principals; "
                     "UPDATE schema_version SET version = 1;");
    assert_int_equal(raw_int(env.db, "SELECT version FROM schema_version"), 1);
    assert_int_equal(raw_int(env.db, "SELECT count(*) FROM sqlite_master WHERE name = "
                                     "'principals'"),
                     0);

    assert_int_equal(tv_open(&env, 0, &err), CLST_OK);
    assert_int_equal(clst_vault_store_info(env.store, &info, &err), CLST_OK);
    assert_int_equal(info.schema_version, 2);
    assert_int_equal(raw_int(env.db, "SELECT version FROM schema_version"), 2);
    /* The data survived and the new tables work. */
    assert_int_equal(clst_vault_store_get(env.store, SECRET, "from-v1", NULL, &out, &value, &err),
                     CLST_OK);
    assert_memory_equal(value->ptr, "from-v1-value", 13);
    clst_secret_free(value);
    clst_vault_object_cleanup(&out);
    clst_buf_init(&b, 64);
    assert_int_equal(clst_vault_store_meta_get(env.store, "setting", &b, &err), CLST_OK);
    assert_memory_equal(b.data, "kept", 4);
    clst_buf_cleanup(&b);
    add_principal(&env, "after-migration");
    /* Opening again does nothing more. */
    tv_close(&env);
    assert_int_equal(tv_open(&env, 0, &err), CLST_OK);
    assert_int_equal(raw_int(env.db, "SELECT count(*) FROM principals"), 1);
    tv_env_cleanup(&env);
}

static void
test_migrate_from_frozen_schema_1(void **state)
{
    (void)state;
    struct tv_env env;
    struct clst_err err;
    struct clst_vault_object out;
    assert_int_equal(tv_env_init_key(&env), 0);
    raw_exec(env.db, FROZEN_SCHEMA_1);
    assert_int_equal(tv_open(&env, 0, &err), CLST_OK);
    assert_int_equal(raw_int(env.db, "SELECT version FROM schema_version"), 2);
    struct clst_vault_object k = tv_key("k");
    assert_int_equal(clst_vault_store_put(env.store, &k, (const uint8_t *)"x", 1, NULL, &err),
                     CLST_OK);
    assert_int_equal(clst_vault_store_get(env.store, KEY, "k", NULL, &out, NULL, &err), CLST_OK);
    clst_vault_object_cleanup(&out);
    add_principal(&env, "p");
    tv_env_cleanup(&env);
}

static void
test_newer_schema_refused(void **state)
{
    (void)state;
    struct tv_env env;
    struct clst_err err;
    assert_int_equal(tv_env_init(&env), 0);
    tv_close(&env);
    raw_exec(env.db, "UPDATE schema_version SET version = 99;");
    assert_int_equal(tv_open(&env, 0, &err), CLST_E_CONFLICT);
    assert_null(env.store);
    assert_non_null(strstr(err.msg, "newer"));
    assert_int_equal(raw_int(env.db, "SELECT version FROM schema_version"), 99);
    tv_env_cleanup(&env);
}

static enum clst_status
open_read_only(struct tv_env *env, struct clst_err *err)
{
    struct clst_vault_sqlite_options opt = {
        .path = env->db, .busy_timeout_ms = 2000, .reader_count = 1, .read_only = true};
    return clst_vault_store_open_sqlite(&opt, env->mk, &env->clock, &env->store, err);
}

/* Read-only opening (admin policy check): reads work, writes fail and change nothing; it never
 * creates a file, never migrates, and works while another connection holds the write lock. */
static void
test_read_only(void **state)
{
    (void)state;
    struct tv_env env;
    struct clst_err err;
    struct clst_vault_object out;
    struct clst_secret *value = NULL;
    struct stat sb;

    assert_int_equal(tv_env_init(&env), 0);
    assert_int_equal(tv_put_secret(env.store, "kept", NULL), CLST_OK);
    tv_close(&env);

    /* a missing file is not created */
    char missing[256];
    snprintf(missing, sizeof(missing), "%s/none.db", env.dir);
    struct clst_vault_sqlite_options opt = {.path = missing, .read_only = true};
    struct clst_vault_store *none = NULL;
    assert_int_equal(clst_vault_store_open_sqlite(&opt, env.mk, NULL, &none, &err),
                     CLST_E_NOTFOUND);
    assert_null(none);
    assert_int_not_equal(stat(missing, &sb), 0);

    /* reads work beside a writer holding the write lock */
    sqlite3 *locker = raw_open(env.db);
    assert_int_equal(sqlite3_exec(locker, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(open_read_only(&env, &err), CLST_OK);
    assert_int_equal(clst_vault_store_get(env.store, SECRET, "kept", NULL, &out, &value, &err),
                     CLST_OK);
    assert_memory_equal(value->ptr, "kept-value", 10);
    clst_secret_free(value);
    clst_vault_object_cleanup(&out);
    assert_int_equal(sqlite3_exec(locker, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(locker);

    /* writes fail and change nothing */
    assert_int_not_equal(tv_put_secret(env.store, "new", NULL), CLST_OK);
    tv_close(&env);
    assert_int_equal(raw_int(env.db, "SELECT count(*) FROM objects WHERE name = 'new'"), 0);

    /* an older schema is not migrated: refused, and left as it was */
    raw_exec(env.db, "DROP TABLE role_assignments; DROP TABLE principals; "
                     "UPDATE schema_version SET version = 1;");
    clst_err_clear(&err);
    assert_int_equal(open_read_only(&env, &err), CLST_E_CONFLICT);
    assert_non_null(strstr(err.msg, "migrate"));
    assert_int_equal(raw_int(env.db, "SELECT version FROM schema_version"), 1);
    tv_env_cleanup(&env);
}

static void
test_failed_migration_rolls_back(void **state)
{
    (void)state;
    struct tv_env env;
    struct clst_err err;
    assert_int_equal(tv_env_init_key(&env), 0);
    /* Schema 1 plus a table in the way of migration 2. */
    raw_exec(env.db, FROZEN_SCHEMA_1);
    raw_exec(env.db, "CREATE TABLE principals (x INTEGER); INSERT INTO principals VALUES (7);");
    assert_int_equal(tv_open(&env, 0, &err), CLST_E_IO);
    assert_null(env.store);
    assert_non_null(strstr(err.msg, "schema 2"));
    /* Nothing of the migration remains. */
    assert_int_equal(raw_int(env.db, "SELECT version FROM schema_version"), 1);
    assert_int_equal(raw_int(env.db, "SELECT x FROM principals"), 7);
    assert_int_equal(raw_int(env.db, "SELECT count(*) FROM sqlite_master WHERE name = "
                                     "'role_assignments'"),
                     0);
    tv_env_cleanup(&env);
}

/* ---- tampering ------------------------------------------------------------------------------ */

static void
check_victim_value(struct tv_env *env)
{
    expect_get_verify(env, SECRET, "victim", NULL);
    expect_get_verify(env, SECRET, "victim", VICTIM_VERSION);
}

static void
check_kvictim(struct tv_env *env)
{
    /* Metadata alone is enough to notice: no value requested. */
    struct clst_vault_object out;
    struct clst_err err;
    memset(&out, 0, sizeof(out));
    expect_verify(clst_vault_store_get(env->store, KEY, "kvictim", NULL, &out, NULL, &err), &err);
    assert_string_equal(out.name, "");
    /* And listing refuses to return it (fail closed). */
    struct clst_vault_object_list list;
    expect_verify(clst_vault_store_list(env->store, KEY, 0, NULL, &list, &err), &err);
}

static void
check_renamed(struct tv_env *env)
{
    expect_get_verify(env, SECRET, "renamed", NULL);
}

static void
check_version_changed(struct tv_env *env)
{
    expect_get_verify(env, SECRET, "victim", "22222222222222222222222222222222");
    expect_get_verify(env, SECRET, "victim", NULL);
}

static void
check_kind_changed(struct tv_env *env)
{
    expect_get_verify(env, KEY, "victim", NULL);
}

static void
check_undeleted(struct tv_env *env)
{
    expect_get_verify(env, SECRET, "victim", NULL);
}

static void
check_swapped(struct tv_env *env)
{
    expect_get_verify(env, SECRET, "victim", NULL);
    expect_get_verify(env, SECRET, "other", NULL);
}

static void
check_principal(struct tv_env *env)
{
    struct clst_vault_principal p;
    struct clst_err err;
    uint8_t h[32];
    expect_verify(clst_vault_store_principal_get(env->store, "app", &p, &err), &err);
    assert_int_equal(clst_sha256("app-token", 9, h), CLST_OK);
    expect_verify(clst_vault_store_principal_find_by_token(env->store, h, &p, &err), &err);
    struct clst_vault_principal_list list;
    expect_verify(clst_vault_store_principal_list(env->store, 0, NULL, &list, &err), &err);
}

static void
check_principal_token(struct tv_env *env)
{
    struct clst_vault_principal p;
    struct clst_err err;
    uint8_t h[32];
    assert_int_equal(clst_sha256("attacker-token", 14, h), CLST_OK);
    expect_verify(clst_vault_store_principal_find_by_token(env->store, h, &p, &err), &err);
}

static void
check_setting(struct tv_env *env)
{
    struct clst_buf b;
    struct clst_err err;
    clst_buf_init(&b, 64);
    expect_verify(clst_vault_store_meta_get(env->store, "retention", &b, &err), &err);
    assert_int_equal(b.size, 0);
    clst_buf_cleanup(&b);
}

/* Swaps the sealed columns of the latest versions of two objects. */
static void
swap_values(const char *path)
{
    raw_exec(path,
             "CREATE TEMP TABLE s AS SELECT v.seq AS seq, o.name AS name, v.wrapped_key AS w, "
             "v.nonce AS n, v.ciphertext AS c, v.tag AS t FROM versions v "
             "JOIN objects o ON o.id = v.object_id WHERE o.name IN ('victim', 'other');"
             "UPDATE versions SET "
             "wrapped_key = (SELECT w FROM s WHERE s.seq <> versions.seq),"
             "nonce = (SELECT n FROM s WHERE s.seq <> versions.seq),"
             "ciphertext = (SELECT c FROM s WHERE s.seq <> versions.seq),"
             "tag = (SELECT t FROM s WHERE s.seq <> versions.seq) "
             "WHERE seq IN (SELECT seq FROM s);");
}

/* Gives principal "app" the token hash of the attacker's token. */
static void
replace_token(const char *path)
{
    uint8_t h[32];
    char sql[256], hex[65];
    assert_int_equal(clst_sha256("attacker-token", 14, h), CLST_OK);
    assert_int_equal(clst_hex_to_str(h, 32, hex, sizeof(hex)), CLST_OK);
    snprintf(sql, sizeof(sql), "UPDATE principals SET token_hash = x'%s' WHERE id = 'app';", hex);
    raw_exec(path, sql);
}

struct tamper_case {
    const char *label;
    const char *sql;         /* raw SQL, or NULL */
    const char *flip_column; /* or a byte of this blob of flip_name flipped */
    const char *flip_name;
    int flip_index;
    void (*custom)(const char *path); /* or this */
    bool delete_first;                /* soft-delete "victim" before tampering */
    void (*check)(struct tv_env *env);
    bool other_intact;
};

static const struct tamper_case CASES[] = {
    {"ciphertext byte", NULL, "ciphertext", "victim", 0, NULL, false, check_victim_value, true},
    {"last ciphertext byte", NULL, "ciphertext", "victim", -1, NULL, false, check_victim_value,
     true},
    {"tag byte", NULL, "tag", "victim", 5, NULL, false, check_victim_value, true},
    {"nonce byte", NULL, "nonce", "victim", 11, NULL, false, check_victim_value, true},
    {"wrapped key byte", NULL, "wrapped_key", "victim", 0, NULL, false, check_victim_value, true},
    {"wrapped key last byte", NULL, "wrapped_key", "victim", -1, NULL, false, check_victim_value,
     true},
    {"wrapped key truncated",
     "UPDATE versions SET wrapped_key = substr(wrapped_key, 1, 32) WHERE object_id = "
     "(SELECT id FROM objects WHERE name = 'victim');",
     NULL, NULL, 0, NULL, false, check_victim_value, true},
    {"nonce truncated",
     "UPDATE versions SET nonce = substr(nonce, 1, 11) WHERE object_id = "
     "(SELECT id FROM objects WHERE name = 'victim');",
     NULL, NULL, 0, NULL, false, check_victim_value, true},
    {"ciphertext emptied",
     "UPDATE versions SET ciphertext = zeroblob(0) WHERE object_id = "
     "(SELECT id FROM objects WHERE name = 'victim');",
     NULL, NULL, 0, NULL, false, check_victim_value, true},
    {"ciphertext as text",
     "UPDATE versions SET ciphertext = 'plain' WHERE object_id = "
     "(SELECT id FROM objects WHERE name = 'victim');",
     NULL, NULL, 0, NULL, false, check_victim_value, true},
    {"master key id edited",
     "UPDATE versions SET mk_id = 'file:0000000000000000' WHERE object_id = "
     "(SELECT id FROM objects WHERE name = 'victim');",
     NULL, NULL, 0, NULL, false, check_victim_value, true},
    {"values swapped between rows", NULL, NULL, NULL, 0, swap_values, false, check_swapped, false},
    {"stored name changed", "UPDATE objects SET name = 'renamed' WHERE name = 'victim';", NULL,
     NULL, 0, NULL, false, check_renamed, true},
    {"stored version changed",
     "UPDATE versions SET version = '22222222222222222222222222222222' WHERE version = "
     "'1111111111111111aaaaaaaaaaaaaaaa';",
     NULL, NULL, 0, NULL, false, check_version_changed, true},
    {"kind changed", "UPDATE objects SET kind = 1 WHERE name = 'victim';", NULL, NULL, 0, NULL,
     false, check_kind_changed, true},
    {"release policy edited",
     "UPDATE versions SET release_policy = '{\"version\":\"1.0.0\",\"anyOf\":[{\"authority\":"
     "\"https://attacker\",\"allOf\":[]}]}' WHERE object_id = "
     "(SELECT id FROM objects WHERE name = 'kvictim');",
     NULL, NULL, 0, NULL, false, check_kvictim, true},
    {"enabled flipped",
     "UPDATE versions SET enabled = 1 - enabled WHERE object_id = "
     "(SELECT id FROM objects WHERE name = 'kvictim');",
     NULL, NULL, 0, NULL, false, check_kvictim, true},
    {"expiry moved",
     "UPDATE versions SET exp = exp + 1 WHERE object_id = "
     "(SELECT id FROM objects WHERE name = 'kvictim');",
     NULL, NULL, 0, NULL, false, check_kvictim, true},
    {"public key replaced", NULL, "public_data", "kvictim", 3, NULL, false, check_kvictim, true},
    {"key_ops widened",
     "UPDATE versions SET key_ops = '[\"sign\",\"verify\",\"wrapKey\",\"unwrapKey\",\"decrypt\"]' "
     "WHERE object_id = (SELECT id FROM objects WHERE name = 'kvictim');",
     NULL, NULL, 0, NULL, false, check_kvictim, true},
    {"row MAC removed",
     "UPDATE versions SET mac = zeroblob(0) WHERE object_id = "
     "(SELECT id FROM objects WHERE name = 'kvictim');",
     NULL, NULL, 0, NULL, false, check_kvictim, true},
    {"deletion undone",
     "UPDATE objects SET deleted_date = 0, purge_date = 0 WHERE name = 'victim';", NULL, NULL, 0,
     NULL, true, check_undeleted, true},
    {"role assignment injected",
     "INSERT INTO role_assignments VALUES ('app', 'Key Vault Administrator', '/');", NULL, NULL, 0,
     NULL, false, check_principal, true},
    {"role scope widened", "UPDATE role_assignments SET scope = '/' WHERE principal_id = 'app';",
     NULL, NULL, 0, NULL, false, check_principal, true},
    {"principal token replaced", NULL, NULL, NULL, 0, replace_token, false, check_principal_token,
     true},
    {"setting edited", "UPDATE meta SET value = CAST('1' AS BLOB) WHERE name = 'retention';", NULL,
     NULL, 0, NULL, false, check_setting, true},
};

/* Copies a database file, and its WAL when there is one. */
static void
copy_db(const char *from, const char *to)
{
    char src[256], dst[256];
    for (int part = 0; part < 3; part++) {
        static const char *const suffix[] = {"", "-wal", "-shm"};
        snprintf(src, sizeof(src), "%s%s", from, suffix[part]);
        snprintf(dst, sizeof(dst), "%s%s", to, suffix[part]);
        unlink(dst);
        FILE *in = fopen(src, "rb");
        if (in == NULL) {
            assert_true(part > 0); /* the database itself must exist */
            continue;
        }
        FILE *out = fopen(dst, "wb");
        assert_non_null(out);
        char buf[8192];
        size_t n;
        while ((n = fread(buf, 1, sizeof(buf), in)) > 0) {
            assert_int_equal(fwrite(buf, 1, n, out), n);
        }
        fclose(in);
        assert_int_equal(fclose(out), 0);
        assert_int_equal(chmod(dst, 0600), 0);
    }
}

static void
test_tampered_rows_are_refused(void **state)
{
    (void)state;
    struct tv_env env;
    struct clst_err err;
    char live[256], deleted[256], db[sizeof(env.db)];

    /* Two templates, made once: everything live, and "victim" soft-deleted. */
    assert_int_equal(tv_env_init(&env), 0);
    memcpy(db, env.db, sizeof(db));
    snprintf(live, sizeof(live), "%s/template-live.db", env.dir);
    snprintf(deleted, sizeof(deleted), "%s/template-deleted.db", env.dir);
    populate(&env);
    tv_close(&env);
    copy_db(db, live);
    assert_int_equal(tv_open(&env, 0, &err), CLST_OK);
    assert_int_equal(clst_vault_store_delete(env.store, SECRET, "victim", 7, NULL, &err), CLST_OK);
    tv_close(&env);
    copy_db(db, deleted);

    for (size_t i = 0; i < sizeof(CASES) / sizeof(CASES[0]); i++) {
        const struct tamper_case *c = &CASES[i];
        fprintf(stderr, "tamper case: %s\n", c->label);
        snprintf(env.db, sizeof(env.db), "%s/case-%02zu.db", env.dir, i);
        copy_db(c->delete_first ? deleted : live, env.db);
        if (c->sql != NULL) {
            raw_exec(env.db, c->sql);
        } else if (c->flip_column != NULL) {
            raw_flip(env.db, c->flip_column, c->flip_name, c->flip_index);
        } else {
            c->custom(env.db);
        }
        assert_int_equal(tv_open(&env, 0, &err), CLST_OK);
        c->check(&env);
        if (c->other_intact) {
            expect_other_intact(&env);
        }
        tv_close(&env);
    }
    tv_env_cleanup(&env);
}

static void
test_integrity_key_record_tampered(void **state)
{
    (void)state;
    struct tv_env env;
    struct clst_err err;
    assert_int_equal(tv_env_init(&env), 0);
    tv_close(&env);
    raw_exec(env.db, "UPDATE meta SET value = substr(value, 1, 20) WHERE name = "
                     "'store.integrity_key';");
    assert_int_equal(tv_open(&env, 0, &err), CLST_E_VERIFY);
    assert_null(env.store);
    tv_env_cleanup(&env);

    /* The wrapped key itself altered (its last byte, the last byte of the record). */
    assert_int_equal(tv_env_init(&env), 0);
    tv_close(&env);
    raw_exec(env.db, "UPDATE meta SET value = substr(value, 1, length(value) - 1) || "
                     "(CASE WHEN substr(value, -1) = x'00' THEN x'01' ELSE x'00' END) "
                     "WHERE name = 'store.integrity_key';");
    assert_int_equal(tv_open(&env, 0, &err), CLST_E_VERIFY);
    assert_null(env.store);
    assert_non_null(strstr(err.msg, "cannot be unwrapped"));
    tv_env_cleanup(&env);
}

/* ---- concurrency ---------------------------------------------------------------------------- */

#define WRITERS    4
#define READERS    3
#define PER_WRITER 15

struct shared {
    struct clst_vault_store *stores[2];
    volatile int writers_left;
    pthread_mutex_t lock;
    int failures;
    char first_failure[CLST_ERR_MSG_SIZE + 64];
};

struct worker {
    struct shared *sh;
    int index;
};

static void
record_failure(struct shared *sh, const char *what, const struct clst_err *err)
{
    pthread_mutex_lock(&sh->lock);
    if (sh->failures++ == 0) {
        snprintf(sh->first_failure, sizeof(sh->first_failure), "%s: %s", what, err->msg);
    }
    pthread_mutex_unlock(&sh->lock);
}

static void *
writer_main(void *arg)
{
    struct worker *w = arg;
    struct clst_vault_store *s = w->sh->stores[w->index % 2];
    for (int i = 0; i < PER_WRITER; i++) {
        char name[32];
        struct clst_err err;
        struct clst_vault_object out;
        struct clst_secret *value = NULL;
        snprintf(name, sizeof(name), "w%d-%02d", w->index, i);
        struct clst_vault_object o = tv_secret(name);
        if (clst_vault_store_put(s, &o, (const uint8_t *)name, strlen(name), NULL, &err) !=
            CLST_OK) {
            record_failure(w->sh, "put", &err);
            continue;
        }
        /* Read your own write, through a reader connection. */
        if (clst_vault_store_get(s, SECRET, name, NULL, &out, &value, &err) != CLST_OK) {
            record_failure(w->sh, "get after put", &err);
            continue;
        }
        if (value->size != strlen(name) || memcmp(value->ptr, name, value->size) != 0) {
            clst_err_set(&err, CLST_E_INTERNAL, "value mismatch for %s", name);
            record_failure(w->sh, "get after put", &err);
        }
        clst_secret_free(value);
        clst_vault_object_cleanup(&out);
        struct clst_vault_object ch;
        memset(&ch, 0, sizeof(ch));
        ch.tags = (char *)"{\"touched\":\"yes\"}";
        if (clst_vault_store_update(s, SECRET, name, NULL, &ch, CLST_VAULT_UPDATE_TAGS, NULL,
                                    &err) != CLST_OK) {
            record_failure(w->sh, "update", &err);
        }
    }
    pthread_mutex_lock(&w->sh->lock);
    w->sh->writers_left--;
    pthread_mutex_unlock(&w->sh->lock);
    return NULL;
}

static void *
reader_main(void *arg)
{
    struct worker *w = arg;
    struct clst_vault_store *s = w->sh->stores[w->index % 2];
    for (int round = 0;; round++) {
        pthread_mutex_lock(&w->sh->lock);
        int left = w->sh->writers_left;
        pthread_mutex_unlock(&w->sh->lock);
        if (left == 0) {
            break;
        }
        struct clst_err err;
        struct clst_vault_object_list list;
        enum clst_status rc = clst_vault_store_list(s, SECRET, 0, NULL, &list, &err);
        if (rc != CLST_OK) {
            record_failure(w->sh, "list", &err);
        } else {
            clst_vault_object_list_cleanup(&list);
        }
        char name[32];
        struct clst_vault_object out;
        struct clst_secret *value = NULL;
        snprintf(name, sizeof(name), "w%d-%02d", round % WRITERS, round % PER_WRITER);
        rc = clst_vault_store_get(s, SECRET, name, NULL, &out, &value, &err);
        if (rc == CLST_OK) {
            clst_secret_free(value);
            clst_vault_object_cleanup(&out);
        } else if (rc != CLST_E_NOTFOUND) { /* not written yet is fine; anything else is not */
            record_failure(w->sh, "get", &err);
        }
    }
    return NULL;
}

static void
test_concurrent_writers_and_readers(void **state)
{
    (void)state;
    struct tv_env env;
    struct shared sh;
    struct worker workers[WRITERS + READERS];
    pthread_t threads[WRITERS + READERS];
    struct clst_err err;
    struct clst_vault_sqlite_options opt;

    assert_int_equal(tv_env_init_key(&env), 0);
    memset(&sh, 0, sizeof(sh));
    pthread_mutex_init(&sh.lock, NULL);
    /* Two stores on one file: like two server processes, they meet in SQLite's locks. */
    memset(&opt, 0, sizeof(opt));
    opt.path = env.db;
    opt.reader_count = 2; /* fewer readers than reading threads: the pool must queue */
    assert_int_equal(clst_vault_store_open_sqlite(&opt, env.mk, &env.clock, &sh.stores[0], &err),
                     CLST_OK);
    assert_int_equal(clst_vault_store_open_sqlite(&opt, env.mk, &env.clock, &sh.stores[1], &err),
                     CLST_OK);
    sh.writers_left = WRITERS;
    for (int i = 0; i < WRITERS + READERS; i++) {
        workers[i].sh = &sh;
        workers[i].index = i;
        assert_int_equal(
            pthread_create(&threads[i], NULL, i < WRITERS ? writer_main : reader_main, &workers[i]),
            0);
    }
    for (int i = 0; i < WRITERS + READERS; i++) {
        pthread_join(threads[i], NULL);
    }
    if (sh.failures != 0) {
        fprintf(stderr, "%d failures; first: %s\n", sh.failures, sh.first_failure);
    }
    assert_int_equal(sh.failures, 0);

    /* Everything is there, seen from both stores. */
    for (int s = 0; s < 2; s++) {
        size_t total = 0;
        char *token = NULL;
        for (;;) {
            struct clst_vault_object_list list;
            assert_int_equal(clst_vault_store_list(sh.stores[s], SECRET, 0, token, &list, &err),
                             CLST_OK);
            free(token);
            token = NULL;
            for (size_t i = 0; i < list.count; i++) {
                assert_string_equal(list.items[i].tags, "{\"touched\":\"yes\"}");
            }
            total += list.count;
            if (list.next == NULL) {
                clst_vault_object_list_cleanup(&list);
                break;
            }
            token = strdup(list.next);
            clst_vault_object_list_cleanup(&list);
        }
        assert_int_equal(total, WRITERS * PER_WRITER);
    }
    assert_int_equal(clst_vault_store_check(sh.stores[0], &err), CLST_OK);
    clst_vault_store_close(sh.stores[0]);
    clst_vault_store_close(sh.stores[1]);
    pthread_mutex_destroy(&sh.lock);
    tv_env_cleanup(&env);
}

/* ---- durability across kill -9 -------------------------------------------------------------- */

#define CRASH_MAX 2000

/* The child: writes numbered secrets and reports each one after its commit returned. */
static void
crash_child(struct tv_env *env, int round, int fd)
{
    struct clst_err err;
    if (tv_open(env, 1, &err) != CLST_OK) {
        int32_t fail = -1;
        (void)!write(fd, &fail, sizeof(fail));
        _exit(2);
    }
    for (int32_t i = 0; i < CRASH_MAX; i++) {
        char name[32], value[48];
        snprintf(name, sizeof(name), "r%d-%04d", round, (int)i);
        snprintf(value, sizeof(value), "value of %s", name);
        struct clst_vault_object o = tv_secret(name);
        if (clst_vault_store_put(env->store, &o, (const uint8_t *)value, strlen(value), NULL,
                                 &err) != CLST_OK) {
            int32_t fail = -1;
            (void)!write(fd, &fail, sizeof(fail));
            _exit(3);
        }
        if (write(fd, &i, sizeof(i)) != (ssize_t)sizeof(i)) {
            _exit(4);
        }
    }
    _exit(0);
}

static void
test_crash_durability(void **state)
{
    (void)state;
    struct tv_env env;
    struct clst_err err;
    static const int kill_after[] = {5, 23, 41};

    assert_int_equal(tv_env_init_key(&env), 0);
    for (int round = 0; round < 3; round++) {
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            crash_child(&env, round, fds[1]);
        }
        close(fds[1]);
        int32_t acked = -1;
        bool killed = false;
        for (;;) {
            int32_t v;
            ssize_t n = read(fds[0], &v, sizeof(v));
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n != (ssize_t)sizeof(v)) {
                break; /* EOF: the child is gone */
            }
            assert_true(v >= 0); /* the child reports its own failures as -1 */
            assert_int_equal(v, acked + 1);
            acked = v;
            if (!killed && acked + 1 >= kill_after[round]) {
                /* Mid-way: the child is already inside its next write. */
                assert_int_equal(kill(pid, SIGKILL), 0);
                killed = true;
            }
        }
        close(fds[0]);
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFSIGNALED(status));
        assert_int_equal(WTERMSIG(status), SIGKILL);
        assert_true(acked + 1 >= kill_after[round]);

        /* Every acknowledged write is there, intact, and the file is consistent. */
        char check[64];
        raw_text(env.db, "PRAGMA integrity_check", check, sizeof(check));
        assert_string_equal(check, "ok");
        assert_int_equal(tv_open(&env, 0, &err), CLST_OK);
        assert_int_equal(clst_vault_store_check(env.store, &err), CLST_OK);
        for (int32_t i = 0; i <= acked; i++) {
            char name[32], value[48];
            struct clst_vault_object out;
            struct clst_secret *got = NULL;
            snprintf(name, sizeof(name), "r%d-%04d", round, (int)i);
            snprintf(value, sizeof(value), "value of %s", name);
            assert_int_equal(clst_vault_store_get(env.store, SECRET, name, NULL, &out, &got, &err),
                             CLST_OK);
            assert_int_equal(got->size, strlen(value));
            assert_memory_equal(got->ptr, value, got->size);
            clst_secret_free(got);
            clst_vault_object_cleanup(&out);
        }
        /* At most one write past the last acknowledgement can have landed. */
        char next[32];
        struct clst_vault_object out;
        snprintf(next, sizeof(next), "r%d-%04d", round, (int)acked + 2);
        assert_int_equal(clst_vault_store_get(env.store, SECRET, next, NULL, &out, NULL, &err),
                         CLST_E_NOTFOUND);
        tv_close(&env);
    }
    tv_env_cleanup(&env);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_settings_in_force),
        cmocka_unit_test(test_open_arguments),
        cmocka_unit_test(test_migrate_from_schema_1_with_data),
        cmocka_unit_test(test_migrate_from_frozen_schema_1),
        cmocka_unit_test(test_newer_schema_refused),
        cmocka_unit_test(test_read_only),
        cmocka_unit_test(test_failed_migration_rolls_back),
        cmocka_unit_test(test_tampered_rows_are_refused),
        cmocka_unit_test(test_integrity_key_record_tampered),
        cmocka_unit_test(test_concurrent_writers_and_readers),
        cmocka_unit_test(test_crash_durability),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
