/*
 * The SQLite backend of the vault store.
 *
 * Durability: WAL journal, synchronous=FULL on every connection (a commit is on disk when the
 * call returns), foreign keys on (purging an object removes its versions), secure_delete on the
 * writer (freed pages are zeroed, so purged sealed values do not linger in the main file), and
 * SQLITE_DBCONFIG_DEFENSIVE (no writable_schema tricks through this connection).
 *
 * Threads: SQLite serializes writers anyway, so there is exactly one writer connection, behind a
 * mutex: our own writers queue on the mutex instead of meeting SQLITE_BUSY. Reads go to a small
 * pool of reader connections (query_only), which WAL lets run alongside the writer. Each
 * connection is used by one thread at a time, so the library runs in multi-thread mode
 * (SQLITE_OPEN_NOMUTEX). Other processes on the same file are handled by the busy timeout.
 *
 * SQL: fixed statements only, prepared once per connection and bound with parameters; nothing is
 * ever built from names or values. Schema changes are the ordered MIGRATIONS below, applied in
 * one IMMEDIATE transaction at open; schema_version records how far a database has come.
 *
 * Everything read back is hostile input: sizes are checked against the field they go into, and
 * a row that cannot be represented is reported as a failed integrity check (CLST_E_VERIFY).
 */
#define _POSIX_C_SOURCE 200809L /* O_CLOEXEC, O_NOFOLLOW, strdup */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <sqlite3.h>

#include "vault/keymat.h"  /* CLST_KEYMAT_BACKUP_KEY_SETTING (master-key rewrap) */
#include "vault/release.h" /* CLST_RELEASE_SIGNING_KEY_SETTING (master-key rewrap) */
#include "vault/vault_int.h"

#define DEFAULT_BUSY_MS 10000
#define DEFAULT_READERS 4
#define MAX_READERS     32

/* ---- schema --------------------------------------------------------------------------------- */

/* Schema 1: settings, objects (keys and secrets) and their versions. Never edit a released
 * migration: add a new one (the tests keep a frozen copy of schema 1). */
static const char MIGRATION_1[] =
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
    "CREATE INDEX versions_by_object ON versions(object_id, seq);";

/* Schema 2: principals and their role assignments (RBAC). */
static const char MIGRATION_2[] =
    "CREATE TABLE principals ("
    "  id TEXT PRIMARY KEY NOT NULL,"
    "  name TEXT NOT NULL,"
    "  token_hash BLOB NOT NULL UNIQUE,"
    "  enabled INTEGER NOT NULL,"
    "  created INTEGER NOT NULL,"
    "  updated INTEGER NOT NULL,"
    "  mac BLOB NOT NULL);"
    "CREATE TABLE role_assignments ("
    "  principal_id TEXT NOT NULL REFERENCES principals(id) ON DELETE CASCADE,"
    "  role TEXT NOT NULL,"
    "  scope TEXT NOT NULL,"
    "  PRIMARY KEY (principal_id, role, scope));";

static const char *const MIGRATIONS[] = {MIGRATION_1, MIGRATION_2};
#define SCHEMA_LATEST ((int)(sizeof(MIGRATIONS) / sizeof(MIGRATIONS[0])))

/* ---- statements ----------------------------------------------------------------------------- */

enum st {
    ST_BEGIN,
    ST_BEGIN_IMMEDIATE,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_META_GET,
    ST_META_PUT,
    ST_META_INSERT,
    ST_OBJ_GET,
    ST_OBJ_INSERT,
    ST_OBJ_SET_STATE,
    ST_VER_INSERT,
    ST_VER_GET,
    ST_VER_GET_LATEST,
    ST_VER_UPDATE,
    ST_LIST_OBJECTS,
    ST_LIST_VERSIONS,
    ST_PURGE,
    ST_PURGE_DUE,
    ST_P_INSERT,
    ST_P_GET,
    ST_P_GET_BY_TOKEN,
    ST_P_UPDATE,
    ST_P_DELETE,
    ST_P_LIST,
    ST_R_INSERT,
    ST_R_DELETE_ALL,
    ST_R_LIST,
    ST_COUNT
};

/* The columns read_version() expects, in order; the seal columns follow when selected. */
#define VCOLS                                                                                      \
    "o.kind, o.name, o.deleted_date, o.purge_date, o.mac, v.seq, v.version, v.enabled, v.nbf, "    \
    "v.exp, v.created, v.updated, v.exportable, v.recovery_level, v.recoverable_days, v.tags, "    \
    "v.kty, v.key_ops, v.public_data, v.release_policy, v.policy_immutable, v.content_type, "      \
    "v.mac"
#define SCOLS ", v.seal_alg, v.mk_id, v.wrapped_key, v.nonce, v.ciphertext, v.tag"
#define PCOLS "id, name, token_hash, enabled, created, updated, mac"

static const char *const SQL[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN",
    [ST_BEGIN_IMMEDIATE] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_META_GET] = "SELECT value, mac FROM meta WHERE name = ?1",
    [ST_META_PUT] = "INSERT INTO meta (name, value, mac) VALUES (?1, ?2, ?3) "
                    "ON CONFLICT (name) DO UPDATE SET value = excluded.value, mac = excluded.mac",
    [ST_META_INSERT] = "INSERT INTO meta (name, value, mac) VALUES (?1, ?2, ?3) "
                       "ON CONFLICT (name) DO NOTHING",
    [ST_OBJ_GET] = "SELECT id, kind, name, deleted_date, purge_date, mac FROM objects "
                   "WHERE kind = ?1 AND name = ?2",
    [ST_OBJ_INSERT] = "INSERT INTO objects (kind, name, deleted_date, purge_date, mac) "
                      "VALUES (?1, ?2, ?3, ?4, ?5)",
    [ST_OBJ_SET_STATE] = "UPDATE objects SET deleted_date = ?3, purge_date = ?4, mac = ?5 "
                         "WHERE kind = ?1 AND name = ?2 AND mac = ?6",
    [ST_VER_INSERT] =
        "INSERT INTO versions (object_id, version, enabled, nbf, exp, created, updated, "
        "exportable, recovery_level, recoverable_days, tags, kty, key_ops, public_data, "
        "release_policy, policy_immutable, content_type, seal_alg, mk_id, wrapped_key, nonce, "
        "ciphertext, tag, mac) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, "
        "?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24)",
    [ST_VER_GET] = "SELECT " VCOLS SCOLS " FROM objects o JOIN versions v ON v.object_id = o.id "
                   "WHERE o.kind = ?1 AND o.name = ?2 AND (o.deleted_date <> 0) = ?3 "
                   "AND v.version = ?4",
    [ST_VER_GET_LATEST] =
        "SELECT " VCOLS SCOLS " FROM objects o JOIN versions v ON v.object_id = o.id "
        "WHERE o.kind = ?1 AND o.name = ?2 AND (o.deleted_date <> 0) = ?3 "
        "ORDER BY v.seq DESC LIMIT 1",
    [ST_VER_UPDATE] =
        "UPDATE versions SET enabled = ?2, nbf = ?3, exp = ?4, updated = ?5, exportable = ?6, "
        "tags = ?7, key_ops = ?8, release_policy = ?9, policy_immutable = ?10, "
        "content_type = ?11, mac = ?12 WHERE seq = ?1 AND mac = ?13 "
        "AND object_id IN (SELECT id FROM objects WHERE deleted_date = 0)",
    /* The latest version of each object; keyset paging on the (case-insensitive) name. */
    [ST_LIST_OBJECTS] = "SELECT " VCOLS " FROM objects o JOIN versions v "
                        "ON v.seq = (SELECT MAX(seq) FROM versions WHERE object_id = o.id) "
                        "WHERE o.kind = ?1 AND (o.deleted_date <> 0) = ?2 AND o.name > ?3 "
                        "ORDER BY o.name LIMIT ?4",
    [ST_LIST_VERSIONS] = "SELECT " VCOLS " FROM objects o JOIN versions v ON v.object_id = o.id "
                         "WHERE o.kind = ?1 AND o.name = ?2 AND o.deleted_date = 0 "
                         "AND v.seq > ?3 ORDER BY v.seq LIMIT ?4",
    [ST_PURGE] = "DELETE FROM objects WHERE kind = ?1 AND name = ?2 AND deleted_date <> 0",
    [ST_PURGE_DUE] = "DELETE FROM objects WHERE deleted_date <> 0 AND purge_date <= ?1",
    [ST_P_INSERT] = "INSERT INTO principals (" PCOLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [ST_P_GET] = "SELECT " PCOLS " FROM principals WHERE id = ?1",
    [ST_P_GET_BY_TOKEN] = "SELECT " PCOLS " FROM principals WHERE token_hash = ?1",
    [ST_P_UPDATE] = "UPDATE principals SET name = ?2, token_hash = ?3, enabled = ?4, "
                    "updated = ?5, mac = ?6 WHERE id = ?1 AND mac = ?7",
    [ST_P_DELETE] = "DELETE FROM principals WHERE id = ?1",
    [ST_P_LIST] = "SELECT " PCOLS " FROM principals WHERE id > ?1 ORDER BY id LIMIT ?2",
    [ST_R_INSERT] = "INSERT INTO role_assignments (principal_id, role, scope) "
                    "VALUES (?1, ?2, ?3)",
    [ST_R_DELETE_ALL] = "DELETE FROM role_assignments WHERE principal_id = ?1",
    [ST_R_LIST] = "SELECT role, scope FROM role_assignments WHERE principal_id = ?1 "
                  "ORDER BY role, scope LIMIT ?2",
};

/* ---- connections ---------------------------------------------------------------------------- */

struct conn {
    sqlite3 *db;
    sqlite3_stmt *stmts[ST_COUNT];
    bool busy; /* readers: checked out */
};

struct sqlite_be {
    char *path;
    int busy_ms;
    int schema_version;
    struct conn writer;
    pthread_mutex_t wlock;
    struct conn readers[MAX_READERS];
    unsigned reader_count;
    pthread_mutex_t rlock;
    pthread_cond_t rcond;
};

/* Maps a SQLite failure to a status and a message naming what was being done. */
static enum clst_status
db_fail(sqlite3 *db, int src, const struct sqlite_be *be, const char *doing, struct clst_err *err)
{
    int primary = src & 0xff;
    const char *msg = db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(src);
    switch (primary) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return clst_err_set(err, CLST_E_IO,
                            "%s: the vault database stayed locked by another process for more "
                            "than %d ms; try again",
                            doing, be->busy_ms);
    case SQLITE_CONSTRAINT:
        return clst_err_set(err, CLST_E_CONFLICT, "%s: %s", doing, msg);
    case SQLITE_NOMEM:
        return clst_err_set(err, CLST_E_NOMEM, "%s: out of memory", doing);
    case SQLITE_FULL:
        return clst_err_set(err, CLST_E_IO, "%s: the disk holding the vault database is full",
                            doing);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        return clst_err_set(err, CLST_E_IO,
                            "%s: the vault database file is damaged (%s); restore it from a "
                            "backup",
                            doing, msg);
    default:
        return clst_err_set(err, CLST_E_IO, "%s: %s (SQLite error %d)", doing, msg, src);
    }
}

static enum clst_status
prepare(struct sqlite_be *be, struct conn *c, enum st id, sqlite3_stmt **out, struct clst_err *err)
{
    if (c->stmts[id] == NULL) {
        int src =
            sqlite3_prepare_v3(c->db, SQL[id], -1, SQLITE_PREPARE_PERSISTENT, &c->stmts[id], NULL);
        if (src != SQLITE_OK) {
            c->stmts[id] = NULL;
            return db_fail(c->db, src, be, "preparing a statement", err);
        }
    }
    *out = c->stmts[id];
    return CLST_OK;
}

/* Makes a cached statement ready for its next use. */
static void
done(sqlite3_stmt *st)
{
    if (st != NULL) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
}

/* Runs a statement that returns no rows. */
static enum clst_status
run(struct sqlite_be *be, struct conn *c, sqlite3_stmt *st, const char *doing, struct clst_err *err)
{
    int src = sqlite3_step(st);
    enum clst_status rc = CLST_OK;
    if (src != SQLITE_DONE && src != SQLITE_ROW) {
        rc = db_fail(c->db, src, be, doing, err);
    }
    done(st);
    return rc;
}

static enum clst_status
run_id(struct sqlite_be *be, struct conn *c, enum st id, const char *doing, struct clst_err *err)
{
    sqlite3_stmt *st = NULL;
    enum clst_status rc = prepare(be, c, id, &st, err);
    return rc == CLST_OK ? run(be, c, st, doing, err) : rc;
}

/* Binding: every value fits SQLite's int sizes (checked by the front end's limits). */
static int
bind_text(sqlite3_stmt *st, int i, const char *s)
{
    return s == NULL ? sqlite3_bind_null(st, i) : sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
}

/* A zero-length blob is stored as such (not NULL): sqlite3_bind_blob needs a non-NULL pointer. */
static int
bind_blob(sqlite3_stmt *st, int i, const void *p, size_t n)
{
    if (n > INT_MAX) {
        return SQLITE_TOOBIG;
    }
    return sqlite3_bind_blob(st, i, n > 0 ? p : "", (int)n, SQLITE_STATIC);
}

static int
bind_opt_blob(sqlite3_stmt *st, int i, const void *p, size_t n)
{
    return n == 0 ? sqlite3_bind_null(st, i) : bind_blob(st, i, p, n);
}

static int
bind_i64(sqlite3_stmt *st, int i, int64_t v)
{
    return sqlite3_bind_int64(st, i, (sqlite3_int64)v);
}

/* Checks a run of bind results, OR-ed together by the callers: any non-zero code is a failure
 * (binding only fails for out-of-memory or out-of-range values, which the limits exclude). */
static enum clst_status
bound(struct sqlite_be *be, struct conn *c, int src, struct clst_err *err)
{
    return src == SQLITE_OK ? CLST_OK : db_fail(c->db, src, be, "binding a value", err);
}

/* bound(), then run() when the values took. */
static enum clst_status
bind_run(struct sqlite_be *be, struct conn *c, sqlite3_stmt *st, int src, const char *doing,
         struct clst_err *err)
{
    enum clst_status rc = bound(be, c, src, err);
    return rc == CLST_OK ? run(be, c, st, doing, err) : rc;
}

static enum clst_status
exec_sql(struct sqlite_be *be, sqlite3 *db, const char *sql, const char *doing,
         struct clst_err *err)
{
    char *msg = NULL;
    int src = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (src != SQLITE_OK) {
        enum clst_status rc = db_fail(db, src, be, doing, err);
        sqlite3_free(msg);
        return rc;
    }
    return CLST_OK;
}

/* One-row text/integer PRAGMA readers (fixed statements). */
static enum clst_status
pragma_text(struct sqlite_be *be, sqlite3 *db, const char *sql, char *out, size_t cap,
            struct clst_err *err)
{
    sqlite3_stmt *st = NULL;
    int src = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    enum clst_status rc = CLST_OK;
    if (src != SQLITE_OK) {
        return db_fail(db, src, be, "reading a setting", err);
    }
    src = sqlite3_step(st);
    if (src == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
        const unsigned char *t = sqlite3_column_text(st, 0);
        size_t n = t != NULL ? strlen((const char *)t) : 0;
        if (n >= cap) {
            n = cap - 1;
        }
        if (n > 0) {
            memcpy(out, t, n);
        }
        out[n] = '\0';
    } else if (src == SQLITE_ROW || src == SQLITE_DONE) {
        out[0] = '\0';
    } else {
        rc = db_fail(db, src, be, "reading a setting", err);
    }
    sqlite3_finalize(st);
    return rc;
}

static enum clst_status
pragma_int(struct sqlite_be *be, sqlite3 *db, const char *sql, int *out, struct clst_err *err)
{
    sqlite3_stmt *st = NULL;
    int src = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    enum clst_status rc = CLST_OK;
    if (src != SQLITE_OK) {
        return db_fail(db, src, be, "reading a setting", err);
    }
    src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        *out = sqlite3_column_int(st, 0);
    } else {
        rc = db_fail(db, src, be, "reading a setting", err);
    }
    sqlite3_finalize(st);
    return rc;
}

static void
conn_close(struct conn *c)
{
    for (int i = 0; i < ST_COUNT; i++) {
        sqlite3_finalize(c->stmts[i]);
        c->stmts[i] = NULL;
    }
    if (c->db != NULL) {
        sqlite3_close_v2(c->db);
        c->db = NULL;
    }
}

static enum clst_status
conn_open(struct sqlite_be *be, struct conn *c, bool writer, struct clst_err *err)
{
    enum clst_status rc = CLST_E_IO;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
    int on = 0;
    char mode[16];

    /* Not the whole struct: `busy` belongs to the pool and is set while this runs. */
    c->db = NULL;
    memset(c->stmts, 0, sizeof(c->stmts));
    if (writer) {
        flags |= SQLITE_OPEN_CREATE;
    }
    int src = sqlite3_open_v2(be->path, &c->db, flags, NULL);
    if (src != SQLITE_OK) {
        rc = clst_err_set(err, CLST_E_IO, "cannot open the vault database %s: %s", be->path,
                          c->db != NULL ? sqlite3_errmsg(c->db) : sqlite3_errstr(src));
        goto out;
    }
    sqlite3_extended_result_codes(c->db, 1);
    sqlite3_busy_timeout(c->db, be->busy_ms);
    if (sqlite3_db_config(c->db, SQLITE_DBCONFIG_DEFENSIVE, 1, &on) != SQLITE_OK || on != 1 ||
        sqlite3_db_config(c->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, &on) != SQLITE_OK) {
        rc = clst_err_set(err, CLST_E_IO, "cannot harden the SQLite connection to %s", be->path);
        goto out;
    }
    rc = exec_sql(be, c->db, "PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL;",
                  "configuring the vault database", err);
    if (rc != CLST_OK) {
        goto out;
    }
    if (writer) {
        rc = exec_sql(be, c->db, "PRAGMA secure_delete = ON;", "configuring the vault database",
                      err);
        if (rc != CLST_OK) {
            goto out;
        }
        /* journal_mode answers with the mode in force: WAL can be refused (e.g. on a file
         * system without shared memory), and we do not run without it. */
        rc = pragma_text(be, c->db, "PRAGMA journal_mode = WAL", mode, sizeof(mode), err);
        if (rc != CLST_OK) {
            goto out;
        }
        if (strcmp(mode, "wal") != 0) {
            rc = clst_err_set(err, CLST_E_IO,
                              "the vault database %s cannot use WAL journaling (journal mode is "
                              "'%s'); put it on a local file system",
                              be->path, mode);
            goto out;
        }
    } else {
        rc = exec_sql(be, c->db, "PRAGMA query_only = ON;", "configuring the vault database", err);
        if (rc != CLST_OK) {
            goto out;
        }
    }
    /* foreign_keys is silently ignored by a build without them: check it took. */
    rc = pragma_int(be, c->db, "PRAGMA foreign_keys", &on, err);
    if (rc == CLST_OK && on != 1) {
        rc = clst_err_set(err, CLST_E_IO, "this SQLite build cannot enforce foreign keys");
    }
out:
    if (rc != CLST_OK) {
        conn_close(c);
    }
    return rc;
}

/* ---- transactions --------------------------------------------------------------------------- */

static enum clst_status
write_begin(struct sqlite_be *be, struct clst_err *err)
{
    pthread_mutex_lock(&be->wlock);
    enum clst_status rc =
        run_id(be, &be->writer, ST_BEGIN_IMMEDIATE, "starting a write transaction", err);
    if (rc != CLST_OK) {
        pthread_mutex_unlock(&be->wlock);
    }
    return rc;
}

/* Commits when rc is CLST_OK (a failed commit becomes the result), else rolls back. */
static enum clst_status
write_end(struct sqlite_be *be, enum clst_status rc, struct clst_err *err)
{
    if (rc == CLST_OK) {
        rc = run_id(be, &be->writer, ST_COMMIT, "committing a write", err);
    }
    if (rc != CLST_OK && !sqlite3_get_autocommit(be->writer.db)) {
        struct clst_err ignored;
        (void)run_id(be, &be->writer, ST_ROLLBACK, "rolling back", &ignored);
    }
    pthread_mutex_unlock(&be->wlock);
    return rc;
}

/* write_begin, then the writer's statement `id`. On failure the transaction has been ended. */
static enum clst_status
write_prepare(struct sqlite_be *be, enum st id, sqlite3_stmt **out, struct clst_err *err)
{
    enum clst_status rc = write_begin(be, err);
    if (rc != CLST_OK) {
        return rc;
    }
    rc = prepare(be, &be->writer, id, out, err);
    return rc == CLST_OK ? CLST_OK : write_end(be, rc, err);
}

/* Checks out a reader connection (opened on first use) and starts a read transaction, so that
 * multi-statement reads see one snapshot. */
static enum clst_status
read_begin(struct sqlite_be *be, struct conn **out, struct clst_err *err)
{
    struct conn *c = NULL;
    enum clst_status rc = CLST_OK;

    pthread_mutex_lock(&be->rlock);
    for (;;) {
        for (unsigned i = 0; i < be->reader_count; i++) {
            if (!be->readers[i].busy) {
                c = &be->readers[i];
                break;
            }
        }
        if (c != NULL) {
            break;
        }
        pthread_cond_wait(&be->rcond, &be->rlock);
    }
    c->busy = true;
    pthread_mutex_unlock(&be->rlock);

    if (c->db == NULL) {
        rc = conn_open(be, c, false, err);
    }
    if (rc == CLST_OK) {
        rc = run_id(be, c, ST_BEGIN, "starting a read transaction", err);
    }
    if (rc != CLST_OK) {
        pthread_mutex_lock(&be->rlock);
        c->busy = false;
        pthread_cond_signal(&be->rcond);
        pthread_mutex_unlock(&be->rlock);
        return rc;
    }
    *out = c;
    return CLST_OK;
}

static enum clst_status
read_end(struct sqlite_be *be, struct conn *c, enum clst_status rc)
{
    /* Nothing was written, so how the transaction ends does not change the result; but it must
     * end, or the connection could not start the next one. */
    struct clst_err ignored;
    if (!sqlite3_get_autocommit(c->db) &&
        run_id(be, c, ST_COMMIT, "ending a read transaction", &ignored) != CLST_OK &&
        !sqlite3_get_autocommit(c->db)) {
        (void)run_id(be, c, ST_ROLLBACK, "ending a read transaction", &ignored);
    }
    pthread_mutex_lock(&be->rlock);
    c->busy = false;
    pthread_cond_signal(&be->rcond);
    pthread_mutex_unlock(&be->rlock);
    return rc;
}

/* ---- reading columns (hostile input) -------------------------------------------------------- */

static enum clst_status
damaged(struct clst_err *err, const char *what)
{
    return clst_err_set(err, CLST_E_VERIFY,
                        "a stored %s failed its integrity check (a field has an impossible size "
                        "or type: possible tampering with the vault database); restore the "
                        "database from a backup",
                        what);
}

/* Text into a fixed array; false when NULL (unless allowed), too long, or holding a NUL. */
static bool
col_text(sqlite3_stmt *st, int i, char *dst, size_t cap)
{
    if (sqlite3_column_type(st, i) == SQLITE_NULL) {
        return false;
    }
    const unsigned char *t = sqlite3_column_text(st, i);
    int n = sqlite3_column_bytes(st, i);
    if (t == NULL || n < 0 || (size_t)n >= cap || memchr(t, '\0', (size_t)n) != NULL) {
        return false;
    }
    memcpy(dst, t, (size_t)n);
    dst[n] = '\0';
    return true;
}

/* Optional text into a malloc'ed copy (NULL stays NULL). */
static bool
col_text_dup(sqlite3_stmt *st, int i, size_t max, char **out)
{
    *out = NULL;
    if (sqlite3_column_type(st, i) == SQLITE_NULL) {
        return true;
    }
    const unsigned char *t = sqlite3_column_text(st, i);
    int n = sqlite3_column_bytes(st, i);
    if (t == NULL || n < 0 || (size_t)n > max || memchr(t, '\0', (size_t)n) != NULL) {
        return false;
    }
    *out = malloc((size_t)n + 1);
    if (*out == NULL) {
        return false;
    }
    memcpy(*out, t, (size_t)n);
    (*out)[n] = '\0';
    return true;
}

/* A blob into a fixed array of cap bytes. */
static bool
col_blob(sqlite3_stmt *st, int i, uint8_t *dst, size_t cap, size_t *out_size)
{
    int type = sqlite3_column_type(st, i);
    if (type == SQLITE_NULL) {
        *out_size = 0;
        return true;
    }
    if (type != SQLITE_BLOB) {
        return false;
    }
    const void *p = sqlite3_column_blob(st, i);
    int n = sqlite3_column_bytes(st, i);
    if (n < 0 || (size_t)n > cap || (p == NULL && n > 0)) {
        return false;
    }
    if (n > 0) {
        memcpy(dst, p, (size_t)n);
    }
    *out_size = (size_t)n;
    return true;
}

/* A blob into a malloc'ed copy (at least one byte allocated); NULL reads as empty. */
static bool
col_blob_dup(sqlite3_stmt *st, int i, size_t max, uint8_t **out, size_t *out_size)
{
    *out = NULL;
    *out_size = 0;
    int type = sqlite3_column_type(st, i);
    if (type == SQLITE_NULL) {
        return true;
    }
    if (type != SQLITE_BLOB) {
        return false;
    }
    const void *p = sqlite3_column_blob(st, i);
    int n = sqlite3_column_bytes(st, i);
    if (n < 0 || (size_t)n > max || (p == NULL && n > 0)) {
        return false;
    }
    *out = malloc(n > 0 ? (size_t)n : 1);
    if (*out == NULL) {
        return false;
    }
    if (n > 0) {
        memcpy(*out, p, (size_t)n);
    }
    *out_size = (size_t)n;
    return true;
}

static bool
col_mac(sqlite3_stmt *st, int i, struct clst_vault_mac *out)
{
    /* A MAC of the wrong size is read as "no MAC" of that size: the front end refuses it. */
    uint8_t tmp[CLST_VAULT_MAC_SIZE + 1];
    size_t n = 0;
    if (!col_blob(st, i, tmp, sizeof(tmp), &n)) {
        n = sizeof(tmp);
    }
    memset(out, 0, sizeof(*out));
    out->size = n;
    if (n == CLST_VAULT_MAC_SIZE) {
        memcpy(out->bytes, tmp, n);
    }
    return true;
}

static bool
col_kind(sqlite3_stmt *st, int i, enum clst_vault_kind *out)
{
    sqlite3_int64 k = sqlite3_column_int64(st, i);
    if (k != CLST_VAULT_KIND_KEY && k != CLST_VAULT_KIND_SECRET) {
        return false;
    }
    *out = (enum clst_vault_kind)k;
    return true;
}

/* Reads the columns of VCOLS (and SCOLS when with_seal) into row. */
static enum clst_status
read_version(sqlite3_stmt *st, bool with_seal, struct clst_vault_version_row *row,
             struct clst_err *err)
{
    struct clst_vault_object *m = &row->meta;
    struct clst_vault_object_row *o = &row->object;
    sqlite3_int64 days;
    bool ok = true;

    memset(row, 0, sizeof(*row));
    ok = ok && col_kind(st, 0, &o->kind);
    ok = ok && col_text(st, 1, o->name, sizeof(o->name));
    o->deleted_date = sqlite3_column_int64(st, 2);
    o->scheduled_purge_date = sqlite3_column_int64(st, 3);
    ok = ok && col_mac(st, 4, &o->mac);
    row->seq = sqlite3_column_int64(st, 5);
    m->kind = o->kind;
    memcpy(m->name, o->name, sizeof(m->name));
    ok = ok && col_text(st, 6, m->version, sizeof(m->version));
    m->attrs.enabled = sqlite3_column_int64(st, 7) != 0;
    m->attrs.nbf = sqlite3_column_int64(st, 8);
    m->attrs.exp = sqlite3_column_int64(st, 9);
    m->attrs.created = sqlite3_column_int64(st, 10);
    m->attrs.updated = sqlite3_column_int64(st, 11);
    m->attrs.exportable = sqlite3_column_int64(st, 12) != 0;
    ok = ok && col_text(st, 13, m->attrs.recovery_level, sizeof(m->attrs.recovery_level));
    days = sqlite3_column_int64(st, 14);
    ok = ok && days >= INT32_MIN && days <= INT32_MAX;
    m->attrs.recoverable_days = (int32_t)days;
    ok = ok && col_text_dup(st, 15, CLST_VAULT_TAGS_MAX, &m->tags);
    ok = ok && col_text(st, 16, m->kty, sizeof(m->kty));
    ok = ok && col_text_dup(st, 17, CLST_VAULT_KEY_OPS_MAX, &m->key_ops);
    ok = ok && col_blob_dup(st, 18, CLST_VAULT_PUBLIC_MAX, &m->public_data, &m->public_size);
    if (ok && m->public_size == 0) {
        free(m->public_data);
        m->public_data = NULL;
    }
    ok = ok && col_text_dup(st, 19, CLST_VAULT_POLICY_MAX, &m->release_policy);
    m->policy_immutable = sqlite3_column_int64(st, 20) != 0;
    ok = ok && col_text_dup(st, 21, CLST_VAULT_CONTENT_TYPE_MAX, &m->content_type);
    ok = ok && col_mac(st, 22, &row->mac);
    if (ok && with_seal) {
        struct clst_vault_sealed *s = &row->seal;
        sqlite3_int64 alg = sqlite3_column_int64(st, 23);
        s->alg = (alg >= 0 && alg <= 255) ? (uint8_t)alg : 0;
        ok = ok && col_text(st, 24, s->mk_id, sizeof(s->mk_id));
        ok = ok && col_blob(st, 25, s->wrapped, sizeof(s->wrapped), &s->wrapped_size);
        ok = ok && col_blob(st, 26, s->nonce, sizeof(s->nonce), &s->nonce_size);
        ok = ok && col_blob_dup(st, 27, CLST_VAULT_VALUE_MAX, &s->ct, &s->ct_size);
        ok = ok && col_blob(st, 28, s->tag, sizeof(s->tag), &s->tag_size);
    }
    if (!ok) {
        clst_vault_version_row_cleanup(row);
        return damaged(err, "key or secret version");
    }
    return CLST_OK;
}

/* ---- meta ----------------------------------------------------------------------------------- */

static enum clst_status
sq_meta_get(void *vbe, const char *name, struct clst_buf *out_value, struct clst_vault_mac *out_mac,
            struct clst_err *err)
{
    struct sqlite_be *be = vbe;
    struct conn *c = NULL;
    sqlite3_stmt *st = NULL;
    enum clst_status rc = read_begin(be, &c, err);
    if (rc != CLST_OK) {
        return rc;
    }
    rc = prepare(be, c, ST_META_GET, &st, err);
    if (rc != CLST_OK) {
        goto out;
    }
    rc = bound(be, c, bind_text(st, 1, name), err);
    if (rc != CLST_OK) {
        goto out;
    }
    int src = sqlite3_step(st);
    if (src == SQLITE_DONE) {
        rc = clst_err_set(err, CLST_E_NOTFOUND, "no setting named '%s'", name);
        goto out;
    }
    if (src != SQLITE_ROW) {
        rc = db_fail(c->db, src, be, "reading a setting", err);
        goto out;
    }
    const void *p = sqlite3_column_blob(st, 0);
    int n = sqlite3_column_bytes(st, 0);
    if (n < 0 || (p == NULL && n > 0)) {
        rc = damaged(err, "setting");
        goto out;
    }
    rc = clst_buf_append(out_value, p, (size_t)n);
    if (rc != CLST_OK) {
        rc = clst_err_set(err, rc, "the setting '%s' is larger than allowed", name);
        goto out;
    }
    col_mac(st, 1, out_mac);
    rc = CLST_OK;
out:
    done(st);
    return read_end(be, c, rc);
}

static enum clst_status
sq_meta_put(void *vbe, const char *name, const uint8_t *value, size_t size, const uint8_t *mac,
            bool if_absent, struct clst_err *err)
{
    struct sqlite_be *be = vbe;
    sqlite3_stmt *st = NULL;
    enum clst_status rc = write_prepare(be, if_absent ? ST_META_INSERT : ST_META_PUT, &st, err);
    if (rc != CLST_OK) {
        return rc;
    }
    rc = bind_run(
        be, &be->writer, st,
        bind_text(st, 1, name) | bind_blob(st, 2, value, size) |
            (mac != NULL ? bind_blob(st, 3, mac, CLST_VAULT_MAC_SIZE) : sqlite3_bind_null(st, 3)),
        "writing a setting", err);
    if (rc == CLST_OK && if_absent && sqlite3_changes(be->writer.db) == 0) {
        rc = clst_err_set(err, CLST_E_CONFLICT, "the setting '%s' exists already", name);
    }
    done(st);
    return write_end(be, rc, err);
}

/* ---- objects -------------------------------------------------------------------------------- */

/* Reads the object row (kind, name) on connection c; *out_id receives its rowid. */
static enum clst_status
object_lookup(struct sqlite_be *be, struct conn *c, enum clst_vault_kind kind, const char *name,
              struct clst_vault_object_row *out, sqlite3_int64 *out_id, struct clst_err *err)
{
    sqlite3_stmt *st = NULL;
    enum clst_status rc = prepare(be, c, ST_OBJ_GET, &st, err);
    if (rc != CLST_OK) {
        return rc;
    }
    rc = bound(be, c, sqlite3_bind_int(st, 1, (int)kind) | bind_text(st, 2, name), err);
    if (rc != CLST_OK) {
        goto out;
    }
    int src = sqlite3_step(st);
    if (src == SQLITE_DONE) {
        rc = clst_err_set(err, CLST_E_NOTFOUND, "no %s named '%s'", clst_vault_kind_name(kind),
                          name);
        goto out;
    }
    if (src != SQLITE_ROW) {
        rc = db_fail(c->db, src, be, "reading an object", err);
        goto out;
    }
    memset(out, 0, sizeof(*out));
    *out_id = sqlite3_column_int64(st, 0);
    if (!col_kind(st, 1, &out->kind) || !col_text(st, 2, out->name, sizeof(out->name))) {
        rc = damaged(err, clst_vault_kind_name(kind));
        goto out;
    }
    out->deleted_date = sqlite3_column_int64(st, 3);
    out->scheduled_purge_date = sqlite3_column_int64(st, 4);
    col_mac(st, 5, &out->mac);
    rc = CLST_OK;
out:
    done(st);
    return rc;
}

static enum clst_status
sq_object_get(void *vbe, enum clst_vault_kind kind, const char *name,
              struct clst_vault_object_row *out, struct clst_err *err)
{
    struct sqlite_be *be = vbe;
    struct conn *c = NULL;
    sqlite3_int64 id = 0;
    enum clst_status rc = read_begin(be, &c, err);
    if (rc != CLST_OK) {
        return rc;
    }
    rc = object_lookup(be, c, kind, name, out, &id, err);
    return read_end(be, c, rc);
}

static enum clst_status
sq_version_insert(void *vbe, const struct clst_vault_object_row *object,
                  const struct clst_vault_version_row *row, struct clst_err *err)
{
    struct sqlite_be *be = vbe;
    struct conn *c = &be->writer;
    const struct clst_vault_object *m = &row->meta;
    const struct clst_vault_sealed *s = &row->seal;
    struct clst_vault_object_row existing;
    sqlite3_int64 object_id = 0;
    sqlite3_stmt *st = NULL;
    const char *kind = clst_vault_kind_name(m->kind);

    enum clst_status rc = write_begin(be, err);
    if (rc != CLST_OK) {
        return rc;
    }
    rc = object_lookup(be, c, object->kind, object->name, &existing, &object_id, err);
    if (rc == CLST_OK && existing.deleted_date != 0) {
        rc = clst_err_set(err, CLST_E_CONFLICT,
                          "the %s '%s' is deleted but recoverable; recover or purge it before "
                          "creating it again",
                          kind, existing.name);
        goto out;
    }
    if (rc == CLST_E_NOTFOUND) {
        clst_err_clear(err);
        rc = prepare(be, c, ST_OBJ_INSERT, &st, err);
        if (rc == CLST_OK) {
            rc = bind_run(be, c, st,
                          sqlite3_bind_int(st, 1, (int)object->kind) |
                              bind_text(st, 2, object->name) |
                              bind_i64(st, 3, object->deleted_date) |
                              bind_i64(st, 4, object->scheduled_purge_date) |
                              bind_blob(st, 5, object->mac.bytes, object->mac.size),
                          "creating an object", err);
        }
        done(st);
        object_id = sqlite3_last_insert_rowid(c->db);
    }
    if (rc != CLST_OK) {
        goto out;
    }
    rc = prepare(be, c, ST_VER_INSERT, &st, err);
    if (rc != CLST_OK) {
        goto out;
    }
    rc = bound(be, c,
               sqlite3_bind_int64(st, 1, object_id) | bind_text(st, 2, m->version) |
                   sqlite3_bind_int(st, 3, m->attrs.enabled ? 1 : 0) |
                   bind_i64(st, 4, m->attrs.nbf) | bind_i64(st, 5, m->attrs.exp) |
                   bind_i64(st, 6, m->attrs.created) | bind_i64(st, 7, m->attrs.updated) |
                   sqlite3_bind_int(st, 8, m->attrs.exportable ? 1 : 0) |
                   bind_text(st, 9, m->attrs.recovery_level) |
                   bind_i64(st, 10, m->attrs.recoverable_days) | bind_text(st, 11, m->tags) |
                   bind_text(st, 12, m->kty) | bind_text(st, 13, m->key_ops) |
                   bind_opt_blob(st, 14, m->public_data, m->public_size) |
                   bind_text(st, 15, m->release_policy) |
                   sqlite3_bind_int(st, 16, m->policy_immutable ? 1 : 0) |
                   bind_text(st, 17, m->content_type) | sqlite3_bind_int(st, 18, s->alg) |
                   bind_text(st, 19, s->mk_id) | bind_blob(st, 20, s->wrapped, s->wrapped_size) |
                   bind_blob(st, 21, s->nonce, s->nonce_size) |
                   bind_blob(st, 22, s->ct, s->ct_size) | bind_blob(st, 23, s->tag, s->tag_size) |
                   bind_blob(st, 24, row->mac.bytes, row->mac.size),
               err);
    if (rc == CLST_OK) {
        rc = run(be, c, st, "storing a version", err);
        if (rc == CLST_E_CONFLICT) {
            rc = clst_err_set(err, CLST_E_CONFLICT, "version %s of %s '%s' exists already",
                              m->version, kind, m->name);
        }
    }
out:
    done(st);
    return write_end(be, rc, err);
}

static enum clst_status
sq_version_get(void *vbe, enum clst_vault_kind kind, const char *name, const char *version,
               bool deleted, bool with_seal, struct clst_vault_version_row *out,
               struct clst_err *err)
{
    struct sqlite_be *be = vbe;
    struct conn *c = NULL;
    sqlite3_stmt *st = NULL;
    bool latest = version[0] == '\0';
    enum clst_status rc = read_begin(be, &c, err);
    if (rc != CLST_OK) {
        return rc;
    }
    rc = prepare(be, c, latest ? ST_VER_GET_LATEST : ST_VER_GET, &st, err);
    if (rc != CLST_OK) {
        goto out;
    }
    rc = bound(be, c,
               sqlite3_bind_int(st, 1, (int)kind) | bind_text(st, 2, name) |
                   sqlite3_bind_int(st, 3, deleted ? 1 : 0) |
                   (latest ? SQLITE_OK : bind_text(st, 4, version)),
               err);
    if (rc != CLST_OK) {
        goto out;
    }
    int src = sqlite3_step(st);
    if (src == SQLITE_DONE) {
        rc = clst_err_set(err, CLST_E_NOTFOUND, "no %s%s named '%s'%s%s", deleted ? "deleted " : "",
                          clst_vault_kind_name(kind), name, latest ? "" : " with version ",
                          latest ? "" : version);
        goto out;
    }
    if (src != SQLITE_ROW) {
        rc = db_fail(c->db, src, be, "reading a version", err);
        goto out;
    }
    rc = read_version(st, with_seal, out, err);
out:
    done(st);
    return read_end(be, c, rc);
}

static enum clst_status
sq_version_update(void *vbe, const struct clst_vault_version_row *row,
                  const struct clst_vault_mac *old_mac, struct clst_err *err)
{
    struct sqlite_be *be = vbe;
    struct conn *c = &be->writer;
    const struct clst_vault_object *m = &row->meta;
    sqlite3_stmt *st = NULL;
    enum clst_status rc = write_prepare(be, ST_VER_UPDATE, &st, err);
    if (rc != CLST_OK) {
        return rc;
    }
    rc = bind_run(
        be, c, st,
        sqlite3_bind_int64(st, 1, row->seq) | sqlite3_bind_int(st, 2, m->attrs.enabled ? 1 : 0) |
            bind_i64(st, 3, m->attrs.nbf) | bind_i64(st, 4, m->attrs.exp) |
            bind_i64(st, 5, m->attrs.updated) |
            sqlite3_bind_int(st, 6, m->attrs.exportable ? 1 : 0) | bind_text(st, 7, m->tags) |
            bind_text(st, 8, m->key_ops) | bind_text(st, 9, m->release_policy) |
            sqlite3_bind_int(st, 10, m->policy_immutable ? 1 : 0) |
            bind_text(st, 11, m->content_type) | bind_blob(st, 12, row->mac.bytes, row->mac.size) |
            bind_blob(st, 13, old_mac->bytes, old_mac->size),
        "updating a version", err);
    if (rc == CLST_OK && sqlite3_changes(c->db) == 0) {
        rc = clst_err_set(err, CLST_E_CONFLICT, "version %s of '%s' changed meanwhile", m->version,
                          m->name);
    }
    done(st);
    return write_end(be, rc, err);
}

static enum clst_status
sq_list(void *vbe, enum clst_vault_listing listing, enum clst_vault_kind kind, const char *name,
        const char *after_name, int64_t after_seq, size_t limit,
        struct clst_vault_version_row **out, size_t *out_count, struct clst_err *err)
{
    struct sqlite_be *be = vbe;
    struct conn *c = NULL;
    sqlite3_stmt *st = NULL;
    struct clst_vault_version_row *rows = NULL;
    size_t count = 0;
    bool versions = listing == CLST_VAULT_LIST_VERSIONS;

    if (limit == 0 || limit > CLST_VAULT_PAGE_MAX + 1) {
        return clst_err_set(err, CLST_E_INVAL, "list: bad page size");
    }
    enum clst_status rc = read_begin(be, &c, err);
    if (rc != CLST_OK) {
        return rc;
    }
    rows = calloc(limit, sizeof(*rows));
    if (rows == NULL) {
        rc = clst_err_set(err, CLST_E_NOMEM, "out of memory listing");
        goto out;
    }
    if (versions) {
        /* The object must be live; an empty page of a live object is not an error. */
        struct clst_vault_object_row o;
        sqlite3_int64 id = 0;
        rc = object_lookup(be, c, kind, name, &o, &id, err);
        if (rc == CLST_OK && o.deleted_date != 0) {
            rc = clst_err_set(err, CLST_E_NOTFOUND, "no %s named '%s'", clst_vault_kind_name(kind),
                              name);
        }
        if (rc != CLST_OK) {
            goto out;
        }
    }
    rc = prepare(be, c, versions ? ST_LIST_VERSIONS : ST_LIST_OBJECTS, &st, err);
    if (rc != CLST_OK) {
        goto out;
    }
    if (versions) {
        rc = bound(be, c,
                   sqlite3_bind_int(st, 1, (int)kind) | bind_text(st, 2, name) |
                       bind_i64(st, 3, after_seq) | bind_i64(st, 4, (int64_t)limit),
                   err);
    } else {
        rc = bound(be, c,
                   sqlite3_bind_int(st, 1, (int)kind) |
                       sqlite3_bind_int(st, 2, listing == CLST_VAULT_LIST_DELETED ? 1 : 0) |
                       bind_text(st, 3, after_name) | bind_i64(st, 4, (int64_t)limit),
                   err);
    }
    if (rc != CLST_OK) {
        goto out;
    }
    for (;;) {
        int src = sqlite3_step(st);
        if (src == SQLITE_DONE) {
            break;
        }
        if (src != SQLITE_ROW) {
            rc = db_fail(c->db, src, be, "listing", err);
            goto out;
        }
        if (count == limit) {
            break;
        }
        rc = read_version(st, false, &rows[count], err);
        if (rc != CLST_OK) {
            goto out;
        }
        count++;
    }
    *out = rows;
    *out_count = count;
    rows = NULL;
    count = 0;
    rc = CLST_OK;
out:
    for (size_t i = 0; i < count; i++) {
        clst_vault_version_row_cleanup(&rows[i]);
    }
    free(rows);
    done(st);
    return read_end(be, c, rc);
}

static enum clst_status
sq_object_set_state(void *vbe, const struct clst_vault_object_row *o,
                    const struct clst_vault_mac *old_mac, struct clst_err *err)
{
    struct sqlite_be *be = vbe;
    struct conn *c = &be->writer;
    sqlite3_stmt *st = NULL;
    enum clst_status rc = write_prepare(be, ST_OBJ_SET_STATE, &st, err);
    if (rc != CLST_OK) {
        return rc;
    }
    rc = bind_run(be, c, st,
                  sqlite3_bind_int(st, 1, (int)o->kind) | bind_text(st, 2, o->name) |
                      bind_i64(st, 3, o->deleted_date) | bind_i64(st, 4, o->scheduled_purge_date) |
                      bind_blob(st, 5, o->mac.bytes, o->mac.size) |
                      bind_blob(st, 6, old_mac->bytes, old_mac->size),
                  "changing the state of an object", err);
    if (rc == CLST_OK && sqlite3_changes(c->db) == 0) {
        rc = clst_err_set(err, CLST_E_CONFLICT, "the %s '%s' changed meanwhile",
                          clst_vault_kind_name(o->kind), o->name);
    }
    done(st);
    return write_end(be, rc, err);
}

static enum clst_status
sq_purge(void *vbe, enum clst_vault_kind kind, const char *name, struct clst_err *err)
{
    struct sqlite_be *be = vbe;
    struct conn *c = &be->writer;
    sqlite3_stmt *st = NULL;
    enum clst_status rc = write_prepare(be, ST_PURGE, &st, err);
    if (rc != CLST_OK) {
        return rc;
    }
    rc = bind_run(be, c, st, sqlite3_bind_int(st, 1, (int)kind) | bind_text(st, 2, name),
                  "purging an object", err);
    if (rc == CLST_OK && sqlite3_changes(c->db) == 0) {
        rc = clst_err_set(err, CLST_E_NOTFOUND,
                          "no deleted %s named '%s' (a live one must be deleted first)",
                          clst_vault_kind_name(kind), name);
    }
    done(st);
    return write_end(be, rc, err);
}

static enum clst_status
sq_purge_due(void *vbe, int64_t now, size_t *out_count, struct clst_err *err)
{
    struct sqlite_be *be = vbe;
    struct conn *c = &be->writer;
    sqlite3_stmt *st = NULL;
    enum clst_status rc = write_prepare(be, ST_PURGE_DUE, &st, err);
    if (rc != CLST_OK) {
        return rc;
    }
    rc = bind_run(be, c, st, bind_i64(st, 1, now), "purging due objects", err);
    if (rc == CLST_OK) {
        *out_count = (size_t)sqlite3_changes(c->db);
    }
    done(st);
    return write_end(be, rc, err);
}

/* ---- principals ----------------------------------------------------------------------------- */

static enum clst_status
insert_roles(struct sqlite_be *be, const struct clst_vault_principal *p, struct clst_err *err)
{
    struct conn *c = &be->writer;
    sqlite3_stmt *st = NULL;
    enum clst_status rc = prepare(be, c, ST_R_INSERT, &st, err);
    for (size_t i = 0; rc == CLST_OK && i < p->role_count; i++) {
        rc = bind_run(be, c, st,
                      bind_text(st, 1, p->id) | bind_text(st, 2, p->roles[i].role) |
                          bind_text(st, 3, p->roles[i].scope),
                      "storing a role assignment", err);
    }
    done(st);
    return rc;
}

static enum clst_status
sq_principal_insert(void *vbe, const struct clst_vault_principal *p,
                    const uint8_t mac[CLST_VAULT_MAC_SIZE], struct clst_err *err)
{
    struct sqlite_be *be = vbe;
    struct conn *c = &be->writer;
    sqlite3_stmt *st = NULL;
    enum clst_status rc = write_prepare(be, ST_P_INSERT, &st, err);
    if (rc != CLST_OK) {
        return rc;
    }
    rc = bound(be, c,
               bind_text(st, 1, p->id) | bind_text(st, 2, p->name) |
                   bind_blob(st, 3, p->token_hash, sizeof(p->token_hash)) |
                   sqlite3_bind_int(st, 4, p->enabled ? 1 : 0) | bind_i64(st, 5, p->created) |
                   bind_i64(st, 6, p->updated) | bind_blob(st, 7, mac, CLST_VAULT_MAC_SIZE),
               err);
    if (rc == CLST_OK) {
        rc = run(be, c, st, "storing a principal", err);
        if (rc == CLST_E_CONFLICT) {
            rc = clst_err_set(err, CLST_E_CONFLICT,
                              "a principal with id '%s' or with the same token exists already",
                              p->id);
        }
    }
    done(st);
    if (rc == CLST_OK) {
        rc = insert_roles(be, p, err);
    }
    return write_end(be, rc, err);
}

/* Reads the PCOLS of the current row, then the principal's role assignments. */
static enum clst_status
read_principal(struct sqlite_be *be, struct conn *c, sqlite3_stmt *st,
               struct clst_vault_principal *out, struct clst_vault_mac *out_mac,
               struct clst_err *err)
{
    size_t hash_size = 0;
    memset(out, 0, sizeof(*out));
    if (!col_text(st, 0, out->id, sizeof(out->id)) ||
        !col_text(st, 1, out->name, sizeof(out->name)) ||
        !col_blob(st, 2, out->token_hash, sizeof(out->token_hash), &hash_size) ||
        hash_size != sizeof(out->token_hash)) {
        return damaged(err, "principal");
    }
    out->enabled = sqlite3_column_int64(st, 3) != 0;
    out->created = sqlite3_column_int64(st, 4);
    out->updated = sqlite3_column_int64(st, 5);
    col_mac(st, 6, out_mac);
    (void)be;
    (void)c;
    return CLST_OK;
}

static enum clst_status
read_roles(struct sqlite_be *be, struct conn *c, struct clst_vault_principal *p,
           struct clst_err *err)
{
    sqlite3_stmt *st = NULL;
    /* One more than allowed, so that a row added behind our back is seen (and refused). */
    size_t cap = CLST_VAULT_ROLES_MAX + 1;
    enum clst_status rc = prepare(be, c, ST_R_LIST, &st, err);
    if (rc != CLST_OK) {
        return rc;
    }
    p->roles = calloc(cap, sizeof(*p->roles));
    p->role_count = 0;
    if (p->roles == NULL) {
        rc = clst_err_set(err, CLST_E_NOMEM, "out of memory reading role assignments");
        goto out;
    }
    rc = bound(be, c, bind_text(st, 1, p->id) | bind_i64(st, 2, (int64_t)cap), err);
    while (rc == CLST_OK) {
        int src = sqlite3_step(st);
        if (src == SQLITE_DONE) {
            break;
        }
        if (src != SQLITE_ROW) {
            rc = db_fail(c->db, src, be, "reading role assignments", err);
            break;
        }
        if (p->role_count == cap) {
            break;
        }
        struct clst_vault_role_assignment *a = &p->roles[p->role_count];
        if (!col_text(st, 0, a->role, sizeof(a->role)) ||
            !col_text(st, 1, a->scope, sizeof(a->scope))) {
            rc = damaged(err, "role assignment");
            break;
        }
        p->role_count++;
    }
out:
    done(st);
    return rc;
}

static enum clst_status
sq_principal_get(void *vbe, const char *id, const uint8_t *token_hash,
                 struct clst_vault_principal *out, struct clst_vault_mac *out_mac,
                 struct clst_err *err)
{
    struct sqlite_be *be = vbe;
    struct conn *c = NULL;
    sqlite3_stmt *st = NULL;
    struct clst_vault_principal p;

    memset(&p, 0, sizeof(p));
    enum clst_status rc = read_begin(be, &c, err);
    if (rc != CLST_OK) {
        return rc;
    }
    rc = prepare(be, c, id != NULL ? ST_P_GET : ST_P_GET_BY_TOKEN, &st, err);
    if (rc != CLST_OK) {
        goto out;
    }
    rc = bound(be, c,
               id != NULL ? bind_text(st, 1, id)
                          : bind_blob(st, 1, token_hash, CLST_VAULT_TOKEN_HASH_SIZE),
               err);
    if (rc != CLST_OK) {
        goto out;
    }
    int src = sqlite3_step(st);
    if (src == SQLITE_DONE) {
        rc = id != NULL ? clst_err_set(err, CLST_E_NOTFOUND, "no principal with id '%s'", id)
                        : clst_err_set(err, CLST_E_NOTFOUND, "no principal holds this token");
        goto out;
    }
    if (src != SQLITE_ROW) {
        rc = db_fail(c->db, src, be, "reading a principal", err);
        goto out;
    }
    rc = read_principal(be, c, st, &p, out_mac, err);
    done(st);
    st = NULL;
    if (rc == CLST_OK) {
        rc = read_roles(be, c, &p, err);
    }
    if (rc == CLST_OK) {
        *out = p;
        memset(&p, 0, sizeof(p));
    }
out:
    done(st);
    clst_vault_principal_cleanup(&p);
    return read_end(be, c, rc);
}

static enum clst_status
sq_principal_replace(void *vbe, const struct clst_vault_principal *p,
                     const uint8_t mac[CLST_VAULT_MAC_SIZE], const struct clst_vault_mac *old_mac,
                     struct clst_err *err)
{
    struct sqlite_be *be = vbe;
    struct conn *c = &be->writer;
    sqlite3_stmt *st = NULL;
    enum clst_status rc = write_prepare(be, ST_P_UPDATE, &st, err);
    if (rc != CLST_OK) {
        return rc;
    }
    rc = bound(be, c,
               bind_text(st, 1, p->id) | bind_text(st, 2, p->name) |
                   bind_blob(st, 3, p->token_hash, sizeof(p->token_hash)) |
                   sqlite3_bind_int(st, 4, p->enabled ? 1 : 0) | bind_i64(st, 5, p->updated) |
                   bind_blob(st, 6, mac, CLST_VAULT_MAC_SIZE) |
                   bind_blob(st, 7, old_mac->bytes, old_mac->size),
               err);
    if (rc == CLST_OK) {
        rc = run(be, c, st, "updating a principal", err);
        if (rc == CLST_E_CONFLICT) {
            rc = clst_err_set(err, CLST_E_CONFLICT,
                              "another principal already holds this token hash");
        }
    }
    if (rc == CLST_OK && sqlite3_changes(c->db) == 0) {
        rc = clst_err_set(err, CLST_E_CONFLICT, "principal '%s' changed meanwhile", p->id);
    }
    done(st);
    st = NULL;
    if (rc == CLST_OK) {
        rc = prepare(be, c, ST_R_DELETE_ALL, &st, err);
        if (rc == CLST_OK) {
            rc = bind_run(be, c, st, bind_text(st, 1, p->id), "replacing role assignments", err);
        }
        done(st);
    }
    if (rc == CLST_OK) {
        rc = insert_roles(be, p, err);
    }
    return write_end(be, rc, err);
}

static enum clst_status
sq_principal_delete(void *vbe, const char *id, struct clst_err *err)
{
    struct sqlite_be *be = vbe;
    struct conn *c = &be->writer;
    sqlite3_stmt *st = NULL;
    enum clst_status rc = write_prepare(be, ST_P_DELETE, &st, err);
    if (rc != CLST_OK) {
        return rc;
    }
    rc = bind_run(be, c, st, bind_text(st, 1, id), "deleting a principal", err);
    if (rc == CLST_OK && sqlite3_changes(c->db) == 0) {
        rc = clst_err_set(err, CLST_E_NOTFOUND, "no principal with id '%s'", id);
    }
    done(st);
    return write_end(be, rc, err);
}

static enum clst_status
sq_principal_list(void *vbe, const char *after_id, size_t limit, struct clst_vault_principal **out,
                  struct clst_vault_mac **out_macs, size_t *out_count, struct clst_err *err)
{
    struct sqlite_be *be = vbe;
    struct conn *c = NULL;
    sqlite3_stmt *st = NULL;
    struct clst_vault_principal *rows = NULL;
    struct clst_vault_mac *macs = NULL;
    size_t count = 0;

    if (limit == 0 || limit > CLST_VAULT_PAGE_MAX + 1) {
        return clst_err_set(err, CLST_E_INVAL, "list: bad page size");
    }
    enum clst_status rc = read_begin(be, &c, err);
    if (rc != CLST_OK) {
        return rc;
    }
    rows = calloc(limit, sizeof(*rows));
    macs = calloc(limit, sizeof(*macs));
    if (rows == NULL || macs == NULL) {
        rc = clst_err_set(err, CLST_E_NOMEM, "out of memory listing principals");
        goto out;
    }
    rc = prepare(be, c, ST_P_LIST, &st, err);
    if (rc == CLST_OK) {
        rc = bound(be, c, bind_text(st, 1, after_id) | bind_i64(st, 2, (int64_t)limit), err);
    }
    while (rc == CLST_OK && count < limit) {
        int src = sqlite3_step(st);
        if (src == SQLITE_DONE) {
            break;
        }
        if (src != SQLITE_ROW) {
            rc = db_fail(c->db, src, be, "listing principals", err);
            break;
        }
        rc = read_principal(be, c, st, &rows[count], &macs[count], err);
        if (rc == CLST_OK) {
            count++;
        }
    }
    done(st);
    st = NULL;
    for (size_t i = 0; rc == CLST_OK && i < count; i++) {
        rc = read_roles(be, c, &rows[i], err);
    }
    if (rc != CLST_OK) {
        goto out;
    }
    *out = rows;
    *out_macs = macs;
    *out_count = count;
    rows = NULL;
    macs = NULL;
    count = 0;
out:
    for (size_t i = 0; rows != NULL && i < limit; i++) {
        clst_vault_principal_cleanup(&rows[i]);
    }
    free(rows);
    free(macs);
    done(st);
    return read_end(be, c, rc);
}

/* ---- info, check, close --------------------------------------------------------------------- */

static enum clst_status
sq_info(void *vbe, struct clst_vault_store_info *out, struct clst_err *err)
{
    struct sqlite_be *be = vbe;
    int fk = 0;
    pthread_mutex_lock(&be->wlock);
    sqlite3 *db = be->writer.db;
    memset(out, 0, sizeof(*out));
    memcpy(out->backend, "sqlite", sizeof("sqlite"));
    out->schema_version = be->schema_version;
    out->schema_latest = SCHEMA_LATEST;
    out->reader_count = be->reader_count;
    enum clst_status rc = pragma_text(be, db, "PRAGMA journal_mode", out->journal_mode,
                                      sizeof(out->journal_mode), err);
    if (rc == CLST_OK) {
        rc = pragma_int(be, db, "PRAGMA synchronous", &out->synchronous, err);
    }
    if (rc == CLST_OK) {
        rc = pragma_int(be, db, "PRAGMA foreign_keys", &fk, err);
        out->foreign_keys = fk == 1;
    }
    if (rc == CLST_OK) {
        rc = pragma_int(be, db, "PRAGMA busy_timeout", &out->busy_timeout_ms, err);
    }
    pthread_mutex_unlock(&be->wlock);
    return rc;
}

static enum clst_status
sq_check(void *vbe, struct clst_err *err)
{
    struct sqlite_be *be = vbe;
    struct conn *c = NULL;
    char first[200];
    enum clst_status rc = read_begin(be, &c, err);
    if (rc != CLST_OK) {
        return rc;
    }
    rc = pragma_text(be, c->db, "PRAGMA integrity_check", first, sizeof(first), err);
    if (rc == CLST_OK && strcmp(first, "ok") != 0) {
        rc = clst_err_set(err, CLST_E_VERIFY,
                          "the vault database failed SQLite's integrity check (%s); restore it "
                          "from a backup",
                          first);
    }
    if (rc == CLST_OK) {
        rc = pragma_text(be, c->db, "PRAGMA foreign_key_check", first, sizeof(first), err);
        if (rc == CLST_OK && first[0] != '\0') {
            rc = clst_err_set(err, CLST_E_VERIFY,
                              "the vault database has rows that reference missing rows (table "
                              "%s); restore it from a backup",
                              first);
        }
    }
    return read_end(be, c, rc);
}

static void
sq_close(void *vbe)
{
    struct sqlite_be *be = vbe;
    if (be == NULL) {
        return;
    }
    for (unsigned i = 0; i < be->reader_count; i++) {
        conn_close(&be->readers[i]);
    }
    conn_close(&be->writer);
    pthread_mutex_destroy(&be->wlock);
    pthread_mutex_destroy(&be->rlock);
    pthread_cond_destroy(&be->rcond);
    free(be->path);
    free(be);
}

static const struct clst_vault_backend_ops SQLITE_OPS = {
    .name = "sqlite",
    .close = sq_close,
    .info = sq_info,
    .check = sq_check,
    .meta_get = sq_meta_get,
    .meta_put = sq_meta_put,
    .object_get = sq_object_get,
    .version_insert = sq_version_insert,
    .version_get = sq_version_get,
    .version_update = sq_version_update,
    .list = sq_list,
    .object_set_state = sq_object_set_state,
    .purge = sq_purge,
    .purge_due = sq_purge_due,
    .principal_insert = sq_principal_insert,
    .principal_get = sq_principal_get,
    .principal_replace = sq_principal_replace,
    .principal_delete = sq_principal_delete,
    .principal_list = sq_principal_list,
};

/* ---- open and migrate ----------------------------------------------------------------------- */

static enum clst_status
current_schema(struct sqlite_be *be, int *out, struct clst_err *err)
{
    int tables = 0;
    enum clst_status rc = pragma_int(be, be->writer.db,
                                     "SELECT count(*) FROM sqlite_master WHERE type = 'table' "
                                     "AND name = 'schema_version'",
                                     &tables, err);
    if (rc != CLST_OK || tables == 0) {
        *out = 0;
        return rc;
    }
    sqlite3_stmt *st = NULL;
    int src = sqlite3_prepare_v2(be->writer.db, "SELECT version FROM schema_version WHERE id = 1",
                                 -1, &st, NULL);
    if (src != SQLITE_OK) {
        return db_fail(be->writer.db, src, be, "reading the schema version", err);
    }
    src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        *out = sqlite3_column_int(st, 0);
    } else if (src == SQLITE_DONE) {
        *out = 0;
    } else {
        rc = db_fail(be->writer.db, src, be, "reading the schema version", err);
    }
    sqlite3_finalize(st);
    return rc;
}

/* Applies every migration past the database's version in one IMMEDIATE transaction: either the
 * database reaches SCHEMA_LATEST or it is left exactly as it was. */
static enum clst_status
migrate(struct sqlite_be *be, struct clst_err *err)
{
    sqlite3 *db = be->writer.db;
    int from = 0;
    enum clst_status rc = exec_sql(be, db, "BEGIN IMMEDIATE", "starting the schema migration", err);
    if (rc != CLST_OK) {
        return rc;
    }
    rc = current_schema(be, &from, err);
    if (rc != CLST_OK) {
        goto out;
    }
    if (from < 0 || from > SCHEMA_LATEST) {
        rc = clst_err_set(err, CLST_E_CONFLICT,
                          "the vault database %s has schema version %d, newer than this build "
                          "supports (%d); run a newer cloister",
                          be->path, from, SCHEMA_LATEST);
        goto out;
    }
    for (int v = from + 1; v <= SCHEMA_LATEST; v++) {
        char *msg = NULL;
        int src = sqlite3_exec(db, MIGRATIONS[v - 1], NULL, NULL, &msg);
        if (src != SQLITE_OK) {
            rc = clst_err_set(err, CLST_E_IO,
                              "migrating the vault database %s to schema %d failed: %s; the "
                              "database was left at schema %d",
                              be->path, v, msg != NULL ? msg : sqlite3_errstr(src), from);
            sqlite3_free(msg);
            goto out;
        }
    }
    if (from != SCHEMA_LATEST) {
        sqlite3_stmt *st = NULL;
        int src = sqlite3_prepare_v2(db,
                                     "INSERT INTO schema_version (id, version) VALUES (1, ?1) "
                                     "ON CONFLICT (id) DO UPDATE SET version = excluded.version",
                                     -1, &st, NULL);
        if (src == SQLITE_OK) {
            sqlite3_bind_int(st, 1, SCHEMA_LATEST);
            src = sqlite3_step(st);
            src = src == SQLITE_DONE ? SQLITE_OK : src;
        }
        sqlite3_finalize(st);
        if (src != SQLITE_OK) {
            rc = db_fail(db, src, be, "recording the schema version", err);
            goto out;
        }
    }
    rc = exec_sql(be, db, "COMMIT", "committing the schema migration", err);
    if (rc == CLST_OK && from != 0 && from != SCHEMA_LATEST) {
        clst_log_info("vault database %s migrated from schema %d to %d", be->path, from,
                      SCHEMA_LATEST);
    }
out:
    if (rc != CLST_OK && !sqlite3_get_autocommit(db)) {
        struct clst_err ignored;
        (void)exec_sql(be, db, "ROLLBACK", "rolling back the schema migration", &ignored);
    }
    if (rc == CLST_OK) {
        be->schema_version = SCHEMA_LATEST;
    }
    return rc;
}

/*
 * Creates the file 0600 when missing, so that SQLite (which copies the database's mode to its
 * -wal and -shm files) never makes it world-readable. An existing file is not opened here: closing
 * a descriptor drops every POSIX lock this process holds on the file, including those of other
 * SQLite connections to it (another store in the same process).
 */
static enum clst_status
create_private(const char *path, struct clst_err *err)
{
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0 && errno == EEXIST) {
        return CLST_OK;
    }
    if (fd < 0) {
        return clst_err_set(err, CLST_E_IO, "cannot create the vault database %s: %s", path,
                            strerror(errno));
    }
    close(fd);
    return CLST_OK;
}

/* Read-only opening: the "writer" connection is query-only too, and the schema must be the
 * current one (a migration would write). */
static enum clst_status
check_schema_read_only(struct sqlite_be *be, struct clst_err *err)
{
    struct stat sb;
    int version = 0;
    if (stat(be->path, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        return clst_err_set(err, CLST_E_NOTFOUND, "no vault database at %s", be->path);
    }
    enum clst_status rc = conn_open(be, &be->writer, false, err);
    if (rc == CLST_OK) {
        rc = current_schema(be, &version, err);
    }
    if (rc == CLST_OK && version != SCHEMA_LATEST) {
        rc = clst_err_set(err, CLST_E_CONFLICT,
                          "the vault database %s has schema version %d, this build reads %d "
                          "read-only; %s",
                          be->path, version, SCHEMA_LATEST,
                          version < SCHEMA_LATEST
                              ? "start `cloister serve` on it once to migrate it"
                              : "run a newer cloister");
    }
    return rc;
}

/* The backend alone: the file created 0600 if missing, the writer connection open, the schema
 * migrated. The caller has checked opt. */
static enum clst_status
be_open(const struct clst_vault_sqlite_options *opt, struct sqlite_be **out, struct clst_err *err)
{
    enum clst_status rc = CLST_E_INTERNAL;
    struct sqlite_be *be = calloc(1, sizeof(*be));
    if (be == NULL) {
        return clst_err_set(err, CLST_E_NOMEM, "out of memory opening the vault database");
    }
    be->busy_ms = opt->busy_timeout_ms > 0 ? (int)opt->busy_timeout_ms : DEFAULT_BUSY_MS;
    be->reader_count = opt->reader_count > 0 ? opt->reader_count : DEFAULT_READERS;
    be->path = strdup(opt->path);
    if (be->path == NULL) {
        free(be);
        return clst_err_set(err, CLST_E_NOMEM, "out of memory opening the vault database");
    }
    if (pthread_mutex_init(&be->wlock, NULL) != 0 || pthread_mutex_init(&be->rlock, NULL) != 0 ||
        pthread_cond_init(&be->rcond, NULL) != 0) {
        /* Initialization of these only fails for lack of resources; nothing to undo on Linux. */
        free(be->path);
        free(be);
        return clst_err_set(err, CLST_E_NOMEM, "cannot create locks for the vault database");
    }
    if (opt->read_only) {
        rc = check_schema_read_only(be, err);
    } else {
        rc = create_private(be->path, err);
        if (rc == CLST_OK) {
            rc = conn_open(be, &be->writer, true, err);
        }
        if (rc == CLST_OK) {
            rc = migrate(be, err);
        }
    }
    if (rc != CLST_OK) {
        sq_close(be);
        return rc;
    }
    *out = be;
    return CLST_OK;
}

enum clst_status
clst_vault_store_open_sqlite(const struct clst_vault_sqlite_options *opt,
                             struct clst_vault_masterkey *mk, const struct clst_clock *clock,
                             struct clst_vault_store **out, struct clst_err *err)
{
    enum clst_status rc = CLST_E_INTERNAL;
    struct sqlite_be *be = NULL;

    if (opt == NULL || opt->path == NULL || opt->path[0] == '\0' || mk == NULL || out == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "vault store: missing argument");
    }
    if (strcmp(opt->path, ":memory:") == 0 || strncmp(opt->path, "file:", 5) == 0) {
        return clst_err_set(err, CLST_E_INVAL,
                            "the vault database must be a file path (not ':memory:' or a URI)");
    }
    if (opt->reader_count > MAX_READERS || opt->busy_timeout_ms > INT_MAX) {
        return clst_err_set(err, CLST_E_INVAL, "vault store: at most %d readers", MAX_READERS);
    }
    if (sqlite3_threadsafe() == 0) {
        return clst_err_set(err, CLST_E_INTERNAL,
                            "the SQLite library was built without thread support");
    }
    rc = be_open(opt, &be, err);
    if (rc != CLST_OK) {
        return rc;
    }
    rc = clst_vault_store_new(&SQLITE_OPS, be, mk, clock, out, err);
    if (rc != CLST_OK) {
        sq_close(be);
    }
    return rc;
}

/* ---- master-key rewrap ---------------------------------------------------------------------- */

/*
 * What the master key wraps in a vault database, and so what a rewrap must cover:
 *   - every key and secret version: versions.wrapped_key with versions.mk_id (outside the row
 *     MACs, so the MACs stay valid);
 *   - the integrity key: the meta row "store.integrity_key" (store.c's format: u8 1 ||
 *     lp(master key id) || lp(wrapped key); no MAC);
 *   - two settings, MAC'd like any setting: the key-backup key (CLST_KEYMAT_BACKUP_KEY_SETTING,
 *     the raw wrapped key) and the release-signing key (CLST_RELEASE_SIGNING_KEY_SETTING, JSON
 *     with "mk" and "wrapped" members, release.c). A new setting that holds a wrapped key must be
 *     added to wrapped_settings[] in clst_vault_store_rewrap_sqlite() and to rewrap_setting(),
 *     or a rewrap leaves it under the old key.
 * The integrity key itself does not change, so every MAC stays valid; the new MACs of the two
 * settings are computed by the store front end (store.c), through a backend that captures what
 * it would write instead of writing it, so that this file does no MAC cryptography of its own.
 */
#define INTEGRITY_META   "store.integrity_key"
#define INTEGRITY_FORMAT 1

struct capture {
    struct sqlite_be *be;
    uint8_t mac[CLST_VAULT_MAC_SIZE];
    bool captured;
};

static enum clst_status
capture_meta_get(void *vbe, const char *name, struct clst_buf *out_value,
                 struct clst_vault_mac *out_mac, struct clst_err *err)
{
    struct capture *c = vbe;
    return sq_meta_get(c->be, name, out_value, out_mac, err);
}

static enum clst_status
capture_meta_put(void *vbe, const char *name, const uint8_t *value, size_t size, const uint8_t *mac,
                 bool if_absent, struct clst_err *err)
{
    struct capture *c = vbe;
    (void)value;
    (void)size;
    if (if_absent || mac == NULL) {
        /* The front end only makes the integrity key (if_absent) for a new database, which
         * the rewrap refuses before it gets here. */
        return clst_err_set(err, CLST_E_INTERNAL, "rewrap: unexpected write of setting '%s'", name);
    }
    memcpy(c->mac, mac, CLST_VAULT_MAC_SIZE);
    c->captured = true;
    return CLST_OK;
}

static void
capture_close(void *vbe)
{
    (void)vbe; /* the real backend is closed by the rewrap itself */
}

/* Only what clst_vault_store_new, _meta_get and _meta_set use. */
static const struct clst_vault_backend_ops CAPTURE_OPS = {
    .name = "sqlite-rewrap",
    .close = capture_close,
    .meta_get = capture_meta_get,
    .meta_put = capture_meta_put,
};

/* One re-wrapped setting, written in the transaction if the stored value is still `old`. */
struct new_setting {
    const char *name;
    struct clst_buf old;
    struct clst_buf value;
    uint8_t mac[CLST_VAULT_MAC_SIZE];
};

/* Unwraps `blob` with `from` (exactly 32 bytes expected) and wraps the key with `to`; then
 * unwraps the new blob with `to` and checks it gives the same key (the new provider answers
 * for what it wrapped before anything is written). */
static enum clst_status
rewrap_blob(struct clst_vault_masterkey *from, struct clst_vault_masterkey *to, const uint8_t *blob,
            size_t blob_size, uint8_t out[static CLST_VAULT_WRAPPED_MAX], size_t *out_size,
            const char *what, struct clst_err *err)
{
    uint8_t key[CLST_VAULT_OBJECT_KEY_SIZE];
    uint8_t back[CLST_VAULT_OBJECT_KEY_SIZE];
    size_t key_size = 0, back_size = 0;
    enum clst_status rc =
        clst_vault_masterkey_unwrap(from, blob, blob_size, key, sizeof(key), &key_size, err);
    if (rc == CLST_OK && key_size != sizeof(key)) {
        rc = clst_err_set(err, CLST_E_VERIFY, "it holds a key of %zu bytes", key_size);
    }
    if (rc != CLST_OK) {
        clst_err_prefix(err, "%s does not unwrap under master key '%s'", what,
                        clst_vault_masterkey_id(from));
        goto out;
    }
    rc =
        clst_vault_masterkey_wrap(to, key, sizeof(key), out, CLST_VAULT_WRAPPED_MAX, out_size, err);
    if (rc == CLST_OK) {
        rc = clst_vault_masterkey_unwrap(to, out, *out_size, back, sizeof(back), &back_size, err);
    }
    if (rc == CLST_OK && (back_size != sizeof(key) || !clst_ct_equal(back, key, sizeof(key)))) {
        rc = clst_err_set(err, CLST_E_CRYPTO, "the new master key gave back another key");
    }
    if (rc != CLST_OK) {
        clst_err_prefix(err, "re-wrapping %s under master key '%s'", what,
                        clst_vault_masterkey_id(to));
    }
out:
    clst_wipe(key, sizeof(key));
    clst_wipe(back, sizeof(back));
    return rc;
}

/* The integrity-key record: its master key id and wrapped key (pointers into blob). */
static bool
integrity_parse(const struct clst_buf *blob, const uint8_t **id, uint32_t *id_size,
                const uint8_t **wrapped, uint32_t *wrapped_size)
{
    struct clst_cursor c = clst_cursor_make(blob->data, blob->size);
    uint8_t format = 0;
    return clst_cursor_u8(&c, &format) && format == INTEGRITY_FORMAT &&
           clst_cursor_be32(&c, id_size) && *id_size <= CLST_VAULT_MKID_MAX &&
           clst_cursor_take(&c, *id_size, id) && clst_cursor_be32(&c, wrapped_size) &&
           *wrapped_size <= CLST_VAULT_WRAPPED_MAX &&
           clst_cursor_take(&c, *wrapped_size, wrapped) && clst_cursor_empty(&c);
}

static enum clst_status
append_lp(struct clst_buf *b, const void *data, size_t size)
{
    uint8_t len[4];
    clst_put_be32(len, (uint32_t)size);
    enum clst_status rc = clst_buf_append(b, len, sizeof(len));
    return rc == CLST_OK ? clst_buf_append(b, data, size) : rc;
}

static bool
id_is(const uint8_t *id, uint32_t id_size, const struct clst_vault_masterkey *mk)
{
    const char *want = clst_vault_masterkey_id(mk);
    return strlen(want) == id_size && memcmp(want, id, id_size) == 0;
}

/* The release-signing key's JSON: {"alg", "mk", "wrapped", "nonce", "tag", "ct"}; only "mk" and
 * "wrapped" change. */
static enum clst_status
rewrap_signer_json(struct clst_vault_masterkey *from, struct clst_vault_masterkey *to,
                   const struct clst_buf *old, struct clst_buf *out, struct clst_err *err)
{
    enum clst_status rc = CLST_E_VERIFY;
    json_t *j = json_loadb((const char *)old->data, old->size, JSON_REJECT_DUPLICATES, NULL);
    const char *mk = json_string_value(json_object_get(j, "mk"));
    const char *w = json_string_value(json_object_get(j, "wrapped"));
    struct clst_buf wrapped;
    uint8_t blob[CLST_VAULT_WRAPPED_MAX];
    size_t blob_size = 0;
    char *dumped = NULL;
    clst_buf_init(&wrapped, CLST_VAULT_WRAPPED_MAX);
    if (!json_is_object(j) || mk == NULL || w == NULL ||
        clst_b64url_decode(w, strlen(w), &wrapped) != CLST_OK) {
        rc = clst_err_set(err, CLST_E_VERIFY,
                          "the stored release-signing key (setting %s) is "
                          "damaged",
                          CLST_RELEASE_SIGNING_KEY_SETTING);
        goto out;
    }
    if (strcmp(mk, clst_vault_masterkey_id(from)) != 0) {
        rc = clst_err_set(err, CLST_E_VERIFY,
                          "the release-signing key is wrapped by master key '%.64s', not '%s'", mk,
                          clst_vault_masterkey_id(from));
        goto out;
    }
    rc = rewrap_blob(from, to, wrapped.data, wrapped.size, blob, &blob_size,
                     "the release-signing key", err);
    if (rc != CLST_OK) {
        goto out;
    }
    if (json_object_set_new(j, "mk", json_string(clst_vault_masterkey_id(to))) != 0 ||
        json_object_set_new(j, "wrapped", clst_json_b64url(blob, blob_size)) != 0 ||
        (dumped = json_dumps(j, JSON_COMPACT)) == NULL ||
        clst_buf_append(out, dumped, strlen(dumped)) != CLST_OK) {
        rc = clst_err_set(err, CLST_E_NOMEM, "out of memory re-wrapping the release-signing key");
        goto out;
    }
    rc = CLST_OK;
out:
    free(dumped);
    json_decref(j);
    clst_buf_cleanup(&wrapped);
    return rc;
}

/* Reads a setting through the front end (its MAC verified), computes the re-wrapped value and
 * has the front end MAC it. CLST_E_NOTFOUND when the setting does not exist. */
static enum clst_status
rewrap_setting(struct clst_vault_store *cs, struct capture *cap, struct clst_vault_masterkey *from,
               struct clst_vault_masterkey *to, struct new_setting *ns, struct clst_err *err)
{
    uint8_t blob[CLST_VAULT_WRAPPED_MAX];
    size_t blob_size = 0;
    enum clst_status rc = clst_vault_store_meta_get(cs, ns->name, &ns->old, err);
    if (rc != CLST_OK) {
        return rc;
    }
    if (strcmp(ns->name, CLST_KEYMAT_BACKUP_KEY_SETTING) == 0) {
        rc = rewrap_blob(from, to, ns->old.data, ns->old.size, blob, &blob_size,
                         "the key-backup key", err);
        if (rc == CLST_OK && clst_buf_append(&ns->value, blob, blob_size) != CLST_OK) {
            rc = clst_err_set(err, CLST_E_NOMEM, "out of memory");
        }
    } else {
        rc = rewrap_signer_json(from, to, &ns->old, &ns->value, err);
    }
    if (rc != CLST_OK) {
        return rc;
    }
    cap->captured = false;
    rc = clst_vault_store_meta_set(cs, ns->name, ns->value.data, ns->value.size, err);
    if (rc == CLST_OK && !cap->captured) {
        rc = clst_err_set(err, CLST_E_INTERNAL, "rewrap: the setting's MAC was not computed");
    }
    if (rc == CLST_OK) {
        memcpy(ns->mac, cap->mac, sizeof(ns->mac));
    }
    return rc;
}

/* A prepared one-off statement on the writer connection. */
static enum clst_status
wprep(struct sqlite_be *be, const char *sql, sqlite3_stmt **out, struct clst_err *err)
{
    int src = sqlite3_prepare_v2(be->writer.db, sql, -1, out, NULL);
    if (src != SQLITE_OK) {
        *out = NULL;
        return db_fail(be->writer.db, src, be, "preparing a rewrap statement", err);
    }
    return CLST_OK;
}

/* Runs an UPDATE that must change exactly one row (else the row changed under us). */
static enum clst_status
update_one(struct sqlite_be *be, sqlite3_stmt *st, const char *what, struct clst_err *err)
{
    int src = sqlite3_step(st);
    enum clst_status rc = CLST_OK;
    if (src != SQLITE_DONE) {
        rc = db_fail(be->writer.db, src, be, "re-wrapping", err);
    } else if (sqlite3_changes(be->writer.db) != 1) {
        rc = clst_err_set(err, CLST_E_CONFLICT,
                          "%s changed while it was being re-wrapped; is a server still running "
                          "on this vault? stop it and run the rewrap again",
                          what);
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}

struct old_version {
    int64_t seq;
    char mk_id[CLST_VAULT_MKID_MAX + 1];
    uint8_t wrapped[CLST_VAULT_WRAPPED_MAX];
    size_t wrapped_size;
};

/* Every version row's wrapping, read inside the transaction. */
static enum clst_status
read_versions(struct sqlite_be *be, struct old_version **out, size_t *out_count,
              struct clst_err *err)
{
    enum clst_status rc = CLST_OK;
    sqlite3_stmt *st = NULL;
    struct old_version *v = NULL;
    size_t count = 0, cap = 0;
    rc = wprep(be, "SELECT seq, mk_id, wrapped_key FROM versions ORDER BY seq", &st, err);
    if (rc != CLST_OK) {
        return rc;
    }
    for (;;) {
        int src = sqlite3_step(st);
        if (src == SQLITE_DONE) {
            break;
        }
        if (src != SQLITE_ROW) {
            rc = db_fail(be->writer.db, src, be, "reading the versions to re-wrap", err);
            goto out;
        }
        if (count == cap) {
            size_t ncap = cap == 0 ? 64 : cap * 2;
            struct old_version *n = realloc(v, ncap * sizeof(*v));
            if (n == NULL) {
                rc = clst_err_set(err, CLST_E_NOMEM, "out of memory");
                goto out;
            }
            v = n;
            cap = ncap;
        }
        struct old_version *o = &v[count];
        memset(o, 0, sizeof(*o));
        o->seq = sqlite3_column_int64(st, 0);
        if (!col_text(st, 1, o->mk_id, sizeof(o->mk_id)) ||
            !col_blob(st, 2, o->wrapped, sizeof(o->wrapped), &o->wrapped_size)) {
            rc = damaged(err, "key or secret version");
            goto out;
        }
        count++;
    }
    *out = v;
    *out_count = count;
    v = NULL;
out:
    sqlite3_finalize(st);
    free(v);
    return rc;
}

enum clst_status
clst_vault_store_rewrap_sqlite(const struct clst_vault_sqlite_options *opt,
                               struct clst_vault_masterkey *from, struct clst_vault_masterkey *to,
                               struct clst_vault_rewrap_stats *out, struct clst_err *err)
{
    enum clst_status rc = CLST_E_INTERNAL;
    struct sqlite_be *be = NULL;
    struct capture cap;
    struct clst_vault_store *cs = NULL;
    struct clst_buf integrity, again, new_integrity;
    struct clst_vault_mac unused;
    struct new_setting settings[2];
    size_t settings_count = 0;
    size_t settings_done = 0;
    struct old_version *versions = NULL;
    size_t version_count = 0;
    sqlite3_stmt *st_meta = NULL, *st_setting = NULL, *st_version = NULL;
    bool in_tx = false;
    const uint8_t *id = NULL, *wrapped = NULL;
    uint32_t id_size = 0, wrapped_size = 0;
    uint8_t blob[CLST_VAULT_WRAPPED_MAX];
    size_t blob_size = 0;
    char what[96];

    memset(&cap, 0, sizeof(cap));
    memset(settings, 0, sizeof(settings));
    clst_buf_init(&integrity, 1024);
    clst_buf_init(&again, 1024);
    clst_buf_init(&new_integrity, 1024);
    if (opt == NULL || opt->path == NULL || opt->path[0] == '\0' || from == NULL || to == NULL ||
        out == NULL) {
        rc = clst_err_set(err, CLST_E_INVAL, "vault rewrap: missing argument");
        goto out;
    }
    if (strcmp(clst_vault_masterkey_id(from), clst_vault_masterkey_id(to)) == 0) {
        rc = clst_err_set(err, CLST_E_INVAL, "vault rewrap: both master keys are '%s'",
                          clst_vault_masterkey_id(to));
        goto out;
    }
    if (access(opt->path, F_OK) != 0) {
        rc = clst_err_set(err, CLST_E_NOTFOUND, "there is no vault database at %s", opt->path);
        goto out;
    }
    rc = be_open(opt, &be, err);
    if (rc != CLST_OK) {
        goto out;
    }

    /* Which master key is the database under? */
    rc = sq_meta_get(be, INTEGRITY_META, &integrity, &unused, err);
    if (rc == CLST_E_NOTFOUND) {
        rc = clst_err_set(err, CLST_E_NOTFOUND,
                          "the vault database %s has never been opened by a vault (no integrity "
                          "key): there is nothing to re-wrap",
                          opt->path);
        goto out;
    }
    if (rc != CLST_OK) {
        goto out;
    }
    if (!integrity_parse(&integrity, &id, &id_size, &wrapped, &wrapped_size)) {
        rc = clst_err_set(err, CLST_E_VERIFY,
                          "the vault database's integrity key record is damaged (possible "
                          "tampering); restore the database from a backup");
        goto out;
    }
    if (id_is(id, id_size, to)) {
        rc = clst_err_set(err, CLST_E_CONFLICT,
                          "the vault database %s is already under master key '%s'; nothing to do",
                          opt->path, clst_vault_masterkey_id(to));
        goto out;
    }
    if (!id_is(id, id_size, from)) {
        rc = clst_err_set(err, CLST_E_VERIFY,
                          "the vault database %s is under master key '%.*s', not '%s'", opt->path,
                          (int)id_size, (const char *)id, clst_vault_masterkey_id(from));
        goto out;
    }
    /* The front end over the capturing backend: opening it proves `from` unwraps the integrity
     * key; it verifies and MACs the settings below. */
    cap.be = be;
    rc = clst_vault_store_new(&CAPTURE_OPS, &cap, from, NULL, &cs, err);
    if (rc != CLST_OK) {
        goto out;
    }
    static const char *const wrapped_settings[] = {CLST_KEYMAT_BACKUP_KEY_SETTING,
                                                   CLST_RELEASE_SIGNING_KEY_SETTING};
    for (size_t i = 0; i < sizeof(wrapped_settings) / sizeof(wrapped_settings[0]); i++) {
        struct new_setting *ns = &settings[settings_count];
        ns->name = wrapped_settings[i];
        clst_buf_init(&ns->old, CLST_VAULT_META_VALUE_MAX);
        clst_buf_init(&ns->value, CLST_VAULT_META_VALUE_MAX);
        settings_count++;
        rc = rewrap_setting(cs, &cap, from, to, ns, err);
        if (rc == CLST_E_NOTFOUND) {
            clst_err_clear(err);
            ns->name = NULL; /* absent: nothing to do */
            continue;
        }
        if (rc != CLST_OK) {
            goto out;
        }
    }

    /* One transaction from here on: all or nothing. */
    rc = write_begin(be, err);
    if (rc != CLST_OK) {
        goto out;
    }
    in_tx = true;
    rc = wprep(be, "SELECT value FROM meta WHERE name = ?1", &st_meta, err);
    if (rc != CLST_OK) {
        goto out;
    }
    sqlite3_bind_text(st_meta, 1, INTEGRITY_META, -1, SQLITE_STATIC);
    if (sqlite3_step(st_meta) != SQLITE_ROW ||
        clst_buf_append(&again, sqlite3_column_blob(st_meta, 0),
                        (size_t)sqlite3_column_bytes(st_meta, 0)) != CLST_OK ||
        again.size != integrity.size ||
        (integrity.size > 0 && memcmp(again.data, integrity.data, integrity.size) != 0)) {
        rc = clst_err_set(err, CLST_E_CONFLICT,
                          "the vault database's integrity key changed during the rewrap; is a "
                          "server still running on it?");
        goto out;
    }
    sqlite3_reset(st_meta);
    rc = rewrap_blob(from, to, wrapped, wrapped_size, blob, &blob_size, "the integrity key", err);
    if (rc != CLST_OK) {
        goto out;
    }
    if (clst_buf_append_byte(&new_integrity, INTEGRITY_FORMAT) != CLST_OK ||
        append_lp(&new_integrity, clst_vault_masterkey_id(to),
                  strlen(clst_vault_masterkey_id(to))) != CLST_OK ||
        append_lp(&new_integrity, blob, blob_size) != CLST_OK) {
        rc = clst_err_set(err, CLST_E_NOMEM, "out of memory");
        goto out;
    }
    rc = wprep(be, "UPDATE meta SET value = ?2, mac = ?3 WHERE name = ?1 AND value = ?4",
               &st_setting, err);
    if (rc != CLST_OK) {
        goto out;
    }
    /* The integrity record has no MAC (it is authenticated by unwrapping). */
    rc = bound(be, &be->writer,
               bind_text(st_setting, 1, INTEGRITY_META) |
                   bind_blob(st_setting, 2, new_integrity.data, new_integrity.size) |
                   sqlite3_bind_null(st_setting, 3) |
                   bind_blob(st_setting, 4, integrity.data, integrity.size),
               err);
    if (rc == CLST_OK) {
        rc = update_one(be, st_setting, "the integrity key", err);
    }
    for (size_t i = 0; rc == CLST_OK && i < settings_count; i++) {
        struct new_setting *ns = &settings[i];
        if (ns->name == NULL) {
            continue;
        }
        rc = bound(be, &be->writer,
                   bind_text(st_setting, 1, ns->name) |
                       bind_blob(st_setting, 2, ns->value.data, ns->value.size) |
                       bind_blob(st_setting, 3, ns->mac, sizeof(ns->mac)) |
                       bind_blob(st_setting, 4, ns->old.data, ns->old.size),
                   err);
        if (rc == CLST_OK) {
            rc = update_one(be, st_setting, ns->name, err);
        }
        settings_done++;
    }
    if (rc != CLST_OK) {
        goto out;
    }

    rc = read_versions(be, &versions, &version_count, err);
    if (rc != CLST_OK) {
        goto out;
    }
    rc = wprep(be,
               "UPDATE versions SET mk_id = ?2, wrapped_key = ?3 WHERE seq = ?1 AND mk_id = ?4 "
               "AND wrapped_key = ?5",
               &st_version, err);
    if (rc != CLST_OK) {
        goto out;
    }
    for (size_t i = 0; i < version_count; i++) {
        const struct old_version *v = &versions[i];
        snprintf(what, sizeof(what), "the key of version row %lld", (long long)v->seq);
        if (strcmp(v->mk_id, clst_vault_masterkey_id(from)) != 0) {
            rc = clst_err_set(err, CLST_E_VERIFY,
                              "%s names master key '%s', not '%s' (possible tampering with the "
                              "vault database); nothing was changed",
                              what, v->mk_id, clst_vault_masterkey_id(from));
            goto out;
        }
        rc = rewrap_blob(from, to, v->wrapped, v->wrapped_size, blob, &blob_size, what, err);
        if (rc != CLST_OK) {
            goto out;
        }
        rc = bound(be, &be->writer,
                   bind_i64(st_version, 1, v->seq) |
                       bind_text(st_version, 2, clst_vault_masterkey_id(to)) |
                       bind_blob(st_version, 3, blob, blob_size) |
                       bind_text(st_version, 4, v->mk_id) |
                       bind_blob(st_version, 5, v->wrapped, v->wrapped_size),
                   err);
        if (rc == CLST_OK) {
            rc = update_one(be, st_version, what, err);
        }
        if (rc != CLST_OK) {
            goto out;
        }
    }
    rc = CLST_OK;
out:
    sqlite3_finalize(st_meta);
    sqlite3_finalize(st_setting);
    sqlite3_finalize(st_version);
    if (in_tx) {
        rc = write_end(be, rc, err); /* commits on CLST_OK, else rolls back */
    }
    if (rc == CLST_OK) {
        out->versions = version_count;
        out->settings = 1 + settings_done;
    }
    clst_vault_store_close(cs);
    if (be != NULL) {
        sq_close(be);
    }
    for (size_t i = 0; i < settings_count; i++) {
        clst_buf_cleanup(&settings[i].old);
        clst_buf_cleanup(&settings[i].value);
    }
    free(versions);
    clst_buf_cleanup(&integrity);
    clst_buf_cleanup(&again);
    clst_buf_cleanup(&new_integrity);
    clst_wipe(blob, sizeof(blob));
    return rc;
}
