/*
 * attest.db: the attestation service's durable state in one SQLite file.
 *
 *   nonces        issued challenges: single use, with expiry (consumed in one transaction, so
 *                 neither two concurrent requests nor a restart can use a nonce twice)
 *   signing_keys  token signing keys, sealed (keys.c), with their rotation times
 *   policies      the administrator's appraisal policy per attestation type
 *   refvals       reference values per attestation type and claim
 *
 * One connection behind a mutex: every call is short (one small transaction), and attestation
 * requests without a nonce never touch the database. journal_mode=WAL and synchronous=FULL: a
 * nonce is durably marked used before the token that used it leaves the process. Statements are
 * fixed text with bound parameters; nothing is ever built from input.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "attest_int.h"

#define SCHEMA_VERSION 1
#define BUSY_TIMEOUT_MS 10000

struct attest_store {
    sqlite3 *db;
    pthread_mutex_t mu;
};

static const char SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS meta(name TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS nonces(nonce TEXT PRIMARY KEY, issued INTEGER NOT NULL,"
    "  expires INTEGER NOT NULL, used INTEGER) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS nonces_expires ON nonces(expires);"
    "CREATE TABLE IF NOT EXISTS signing_keys(kid TEXT PRIMARY KEY, created INTEGER NOT NULL,"
    "  not_before INTEGER NOT NULL, not_after INTEGER NOT NULL, publish_until INTEGER NOT NULL,"
    "  sealed BLOB NOT NULL, cert BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS policies(type TEXT PRIMARY KEY, text TEXT NOT NULL,"
    "  updated INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS refvals(type TEXT NOT NULL, claim TEXT NOT NULL,"
    "  value TEXT NOT NULL, note TEXT, created INTEGER NOT NULL,"
    "  PRIMARY KEY(type, claim, value));"
    "INSERT OR IGNORE INTO meta(name, value) VALUES('schema_version', '1');";

static enum clst_status
db_fail(struct attest_store *s, struct clst_err *err, const char *what)
{
    return clst_err_set(err, CLST_E_IO, "attestation database: %s failed: %s", what,
                        sqlite3_errmsg(s->db));
}

static enum clst_status
exec(struct attest_store *s, const char *sql, const char *what, struct clst_err *err)
{
    char *msg = NULL;
    if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        enum clst_status st = clst_err_set(err, CLST_E_IO, "attestation database: %s failed: %s",
                                           what, msg ? msg : sqlite3_errmsg(s->db));
        sqlite3_free(msg);
        return st;
    }
    return CLST_OK;
}

static enum clst_status
prepare(struct attest_store *s, const char *sql, sqlite3_stmt **out, struct clst_err *err)
{
    if (sqlite3_prepare_v2(s->db, sql, -1, out, NULL) != SQLITE_OK) {
        *out = NULL;
        return db_fail(s, err, "preparing a statement");
    }
    return CLST_OK;
}

static void
rollback(struct attest_store *s)
{
    if (!sqlite3_get_autocommit(s->db)) {
        (void)sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    }
}

/* Takes the connection and starts a write transaction. The mutex is held even when this fails:
 * every txn_begin() is ended by txn_end(). */
static enum clst_status
txn_begin(struct attest_store *s, struct clst_err *err)
{
    pthread_mutex_lock(&s->mu);
    return exec(s, "BEGIN IMMEDIATE", "starting a transaction", err);
}

/* Ends what txn_begin() started: finalizes st (NULL is fine), commits when rc is CLST_OK (a
 * failure is reported as "<what> failed"), rolls back when rc or the commit failed, and releases
 * the connection. Returns the final status. */
static enum clst_status
txn_end(struct attest_store *s, sqlite3_stmt *st, enum clst_status rc, const char *what,
        struct clst_err *err)
{
    sqlite3_finalize(st);
    if (rc == CLST_OK) {
        rc = exec(s, "COMMIT", what, err);
    }
    if (rc != CLST_OK) {
        rollback(s);
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

enum clst_status
attest_store_open(const char *path, struct attest_store **out, struct clst_err *err)
{
    enum clst_status rc = CLST_E_NOMEM;
    struct attest_store *s = NULL;
    char mode[16] = {0};
    sqlite3_stmt *st = NULL;

    if (path == NULL || path[0] == '\0' || strcmp(path, ":memory:") == 0 ||
        strncmp(path, "file:", 5) == 0) {
        return clst_err_set(err, CLST_E_INVAL,
                            "the attestation database needs a file path (not :memory: or a URI)");
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return clst_err_set(err, CLST_E_NOMEM, "out of memory");
    }
    if (pthread_mutex_init(&s->mu, NULL) != 0) {
        free(s);
        return clst_err_set(err, CLST_E_INTERNAL, "cannot create a mutex");
    }
    /* Create the file 0600 ourselves so SQLite never creates it with the umask's mode. */
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        rc = clst_err_set(err, CLST_E_IO, "cannot open %s: %s", path, strerror(errno));
        goto out;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || (sb.st_mode & 077) != 0 ||
        sb.st_uid != geteuid()) {
        close(fd);
        rc = clst_err_set(err, CLST_E_DENIED,
                          "%s must be a regular file owned by this user with mode 0600 "
                          "(fix with chmod 600)",
                          path);
        goto out;
    }
    close(fd);
    if (sqlite3_open_v2(path, &s->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX |
                            SQLITE_OPEN_NOFOLLOW,
                        NULL) != SQLITE_OK) {
        rc = clst_err_set(err, CLST_E_IO, "cannot open the attestation database %s: %s", path,
                          s->db ? sqlite3_errmsg(s->db) : "out of memory");
        goto out;
    }
    int on = 0;
    if (sqlite3_db_config(s->db, SQLITE_DBCONFIG_DEFENSIVE, 1, &on) != SQLITE_OK || on != 1 ||
        sqlite3_db_config(s->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, &on) != SQLITE_OK) {
        rc = db_fail(s, err, "configuring");
        goto out;
    }
    (void)sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
    if ((rc = prepare(s, "PRAGMA journal_mode = WAL", &st, err)) != CLST_OK) {
        goto out;
    }
    if (sqlite3_step(st) != SQLITE_ROW || sqlite3_column_text(st, 0) == NULL) {
        rc = db_fail(s, err, "switching to WAL");
        goto out;
    }
    snprintf(mode, sizeof(mode), "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    st = NULL;
    if (strcmp(mode, "wal") != 0) {
        rc = clst_err_set(err, CLST_E_IO,
                          "attestation database %s cannot use WAL (journal mode %s)", path, mode);
        goto out;
    }
    if ((rc = exec(s, "PRAGMA synchronous = FULL; PRAGMA secure_delete = ON;", "configuring",
                   err)) != CLST_OK ||
        (rc = exec(s, "BEGIN IMMEDIATE", "starting the schema transaction", err)) != CLST_OK) {
        goto out;
    }
    if ((rc = exec(s, SCHEMA, "creating the schema", err)) != CLST_OK) {
        rollback(s);
        goto out;
    }
    if ((rc = prepare(s, "SELECT value FROM meta WHERE name = 'schema_version'", &st, err)) !=
        CLST_OK) {
        rollback(s);
        goto out;
    }
    if (sqlite3_step(st) != SQLITE_ROW || sqlite3_column_text(st, 0) == NULL ||
        strcmp((const char *)sqlite3_column_text(st, 0), "1") != 0) {
        rollback(s);
        rc = clst_err_set(err, CLST_E_IO,
                          "attestation database %s has an unknown schema version (this build "
                          "knows %d); use a newer cloister or another data directory",
                          path, SCHEMA_VERSION);
        goto out;
    }
    sqlite3_finalize(st);
    st = NULL;
    if ((rc = exec(s, "COMMIT", "committing the schema", err)) != CLST_OK) {
        rollback(s);
        goto out;
    }
    *out = s;
    s = NULL;
    rc = CLST_OK;
out:
    sqlite3_finalize(st);
    attest_store_close(s);
    return rc;
}

void
attest_store_close(struct attest_store *s)
{
    if (s == NULL) {
        return;
    }
    if (s->db != NULL) {
        sqlite3_close_v2(s->db);
    }
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* ---- nonces ---------------------------------------------------------------------------------- */

enum clst_status
attest_store_nonce_insert(struct attest_store *s, const char *nonce, int64_t now, int64_t expires,
                          size_t max, struct clst_err *err)
{
    enum clst_status rc = CLST_E_IO;
    sqlite3_stmt *st = NULL;
    if ((rc = txn_begin(s, err)) != CLST_OK) {
        goto out;
    }
    rc = prepare(s, "DELETE FROM nonces WHERE expires <= ?1", &st, err);
    if (rc != CLST_OK) {
        goto out;
    }
    sqlite3_bind_int64(st, 1, now);
    if (sqlite3_step(st) != SQLITE_DONE) {
        rc = db_fail(s, err, "purging expired nonces");
        goto out;
    }
    sqlite3_finalize(st);
    if ((rc = prepare(s, "SELECT count(*) FROM nonces", &st, err)) != CLST_OK) {
        goto out;
    }
    if (sqlite3_step(st) != SQLITE_ROW) {
        rc = db_fail(s, err, "counting nonces");
        goto out;
    }
    if ((uint64_t)sqlite3_column_int64(st, 0) >= (uint64_t)max) {
        rc = clst_err_set(err, CLST_E_LIMIT,
                          "%zu challenges are outstanding, the most this service keeps; retry "
                          "when some have expired",
                          max);
        goto out;
    }
    sqlite3_finalize(st);
    if ((rc = prepare(s, "INSERT INTO nonces(nonce, issued, expires) VALUES(?1, ?2, ?3)", &st,
                      err)) != CLST_OK) {
        goto out;
    }
    sqlite3_bind_text(st, 1, nonce, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now);
    sqlite3_bind_int64(st, 3, expires);
    if (sqlite3_step(st) != SQLITE_DONE) {
        rc = db_fail(s, err, "storing a nonce");
        goto out;
    }
    rc = CLST_OK;
out:
    return txn_end(s, st, rc, "committing a nonce", err);
}

enum clst_status
attest_store_nonce_consume(struct attest_store *s, const char *nonce, int64_t now,
                           struct clst_err *err)
{
    enum clst_status rc = CLST_E_IO;
    sqlite3_stmt *st = NULL;
    if ((rc = txn_begin(s, err)) != CLST_OK) {
        goto out;
    }
    if ((rc = prepare(s, "SELECT expires, used FROM nonces WHERE nonce = ?1", &st, err)) !=
        CLST_OK) {
        goto out;
    }
    sqlite3_bind_text(st, 1, nonce, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    if (step == SQLITE_DONE) {
        rc = clst_err_set(err, CLST_E_VERIFY,
                          "unknown nonce: it was not issued by this service (or expired long "
                          "ago); get one from POST /attest/challenge");
        goto out;
    }
    if (step != SQLITE_ROW) {
        rc = db_fail(s, err, "looking a nonce up");
        goto out;
    }
    int64_t expires = sqlite3_column_int64(st, 0);
    bool used = sqlite3_column_type(st, 1) != SQLITE_NULL;
    int64_t used_at = used ? sqlite3_column_int64(st, 1) : 0;
    sqlite3_finalize(st);
    st = NULL;
    if (used) {
        char t[32] = "?";
        (void)clst_time_format(used_at, t, sizeof(t));
        rc = clst_err_set(err, CLST_E_VERIFY,
                          "nonce already used (at %s): a nonce is good for one attestation; get "
                          "a new one from POST /attest/challenge",
                          t);
        goto out;
    }
    if (now >= expires) {
        char t[32] = "?";
        (void)clst_time_format(expires, t, sizeof(t));
        rc = clst_err_set(err, CLST_E_VERIFY,
                          "nonce expired at %s; get a new one from POST /attest/challenge", t);
        goto out;
    }
    if ((rc = prepare(s, "UPDATE nonces SET used = ?2 WHERE nonce = ?1 AND used IS NULL", &st,
                      err)) != CLST_OK) {
        goto out;
    }
    sqlite3_bind_text(st, 1, nonce, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now);
    if (sqlite3_step(st) != SQLITE_DONE || sqlite3_changes(s->db) != 1) {
        rc = db_fail(s, err, "marking a nonce used");
        goto out;
    }
    rc = CLST_OK;
out:
    return txn_end(s, st, rc, "committing a used nonce", err);
}

/* ---- signing keys ---------------------------------------------------------------------------- */

void
attest_key_row_cleanup(struct attest_key_row *r)
{
    if (r == NULL) {
        return;
    }
    if (r->sealed != NULL) {
        clst_wipe(r->sealed, r->sealed_size);
    }
    free(r->sealed);
    free(r->cert);
    memset(r, 0, sizeof(*r));
}

void
attest_key_rows_free(struct attest_key_row *rows, size_t count)
{
    if (rows == NULL) {
        return;
    }
    for (size_t i = 0; i < count; i++) {
        attest_key_row_cleanup(&rows[i]);
    }
    free(rows);
}

static enum clst_status
blob_copy(sqlite3_stmt *st, int col, size_t max, uint8_t **out, size_t *out_size)
{
    int n = sqlite3_column_bytes(st, col);
    const void *p = sqlite3_column_blob(st, col);
    if (n <= 0 || p == NULL || (size_t)n > max) {
        return CLST_E_VERIFY;
    }
    *out = malloc((size_t)n);
    if (*out == NULL) {
        return CLST_E_NOMEM;
    }
    memcpy(*out, p, (size_t)n);
    *out_size = (size_t)n;
    return CLST_OK;
}

#define KEY_ROWS_MAX 64

enum clst_status
attest_store_keys_load(struct attest_store *s, struct attest_key_row **out, size_t *out_count,
                       struct clst_err *err)
{
    enum clst_status rc = CLST_E_IO;
    sqlite3_stmt *st = NULL;
    struct attest_key_row *rows = NULL;
    size_t count = 0;
    pthread_mutex_lock(&s->mu);
    rc = prepare(s,
                 "SELECT kid, created, not_before, not_after, publish_until, sealed, cert "
                 "FROM signing_keys ORDER BY not_before, kid",
                 &st, err);
    if (rc != CLST_OK) {
        goto out;
    }
    rows = calloc(KEY_ROWS_MAX, sizeof(*rows));
    if (rows == NULL) {
        rc = clst_err_set(err, CLST_E_NOMEM, "out of memory");
        goto out;
    }
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (count == KEY_ROWS_MAX) {
            rc = clst_err_set(err, CLST_E_LIMIT,
                              "attestation database holds more than %d signing keys",
                              KEY_ROWS_MAX);
            goto out;
        }
        struct attest_key_row *r = &rows[count];
        const unsigned char *kid = sqlite3_column_text(st, 0);
        if (kid == NULL || strlen((const char *)kid) >= sizeof(r->kid)) {
            rc = clst_err_set(err, CLST_E_VERIFY, "attestation database: a signing key row has "
                                                  "a bad kid");
            goto out;
        }
        snprintf(r->kid, sizeof(r->kid), "%s", (const char *)kid);
        r->created = sqlite3_column_int64(st, 1);
        r->not_before = sqlite3_column_int64(st, 2);
        r->not_after = sqlite3_column_int64(st, 3);
        r->publish_until = sqlite3_column_int64(st, 4);
        count++;
        if ((rc = blob_copy(st, 5, 4096, &r->sealed, &r->sealed_size)) != CLST_OK ||
            (rc = blob_copy(st, 6, 16384, &r->cert, &r->cert_size)) != CLST_OK) {
            rc = clst_err_set(err, rc, "attestation database: signing key %s has a bad %s",
                              r->kid, r->sealed == NULL ? "sealed key" : "certificate");
            goto out;
        }
    }
    if (step != SQLITE_DONE) {
        rc = db_fail(s, err, "reading the signing keys");
        goto out;
    }
    *out = rows;
    *out_count = count;
    rows = NULL;
    rc = CLST_OK;
out:
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->mu);
    attest_key_rows_free(rows, count);
    return rc;
}

enum clst_status
attest_store_key_insert(struct attest_store *s, const struct attest_key_row *r,
                        struct clst_err *err)
{
    enum clst_status rc = CLST_E_IO;
    sqlite3_stmt *st = NULL;
    pthread_mutex_lock(&s->mu);
    rc = prepare(s,
                 "INSERT INTO signing_keys(kid, created, not_before, not_after, publish_until, "
                 "sealed, cert) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                 &st, err);
    if (rc != CLST_OK) {
        goto out;
    }
    sqlite3_bind_text(st, 1, r->kid, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, r->created);
    sqlite3_bind_int64(st, 3, r->not_before);
    sqlite3_bind_int64(st, 4, r->not_after);
    sqlite3_bind_int64(st, 5, r->publish_until);
    sqlite3_bind_blob(st, 6, r->sealed, (int)r->sealed_size, SQLITE_STATIC);
    sqlite3_bind_blob(st, 7, r->cert, (int)r->cert_size, SQLITE_STATIC);
    int step = sqlite3_step(st);
    if (step == SQLITE_CONSTRAINT) {
        rc = clst_err_set(err, CLST_E_CONFLICT, "signing key %s exists already", r->kid);
        goto out;
    }
    if (step != SQLITE_DONE) {
        rc = db_fail(s, err, "storing a signing key");
        goto out;
    }
    rc = CLST_OK;
out:
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

enum clst_status
attest_store_key_update(struct attest_store *s, const char *kid, int64_t not_before,
                        int64_t not_after, int64_t publish_until, struct clst_err *err)
{
    enum clst_status rc = CLST_E_IO;
    sqlite3_stmt *st = NULL;
    pthread_mutex_lock(&s->mu);
    rc = prepare(s,
                 "UPDATE signing_keys SET not_before = ?2, not_after = ?3, publish_until = ?4 "
                 "WHERE kid = ?1",
                 &st, err);
    if (rc != CLST_OK) {
        goto out;
    }
    sqlite3_bind_text(st, 1, kid, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, not_before);
    sqlite3_bind_int64(st, 3, not_after);
    sqlite3_bind_int64(st, 4, publish_until);
    if (sqlite3_step(st) != SQLITE_DONE) {
        rc = db_fail(s, err, "updating a signing key");
        goto out;
    }
    rc = sqlite3_changes(s->db) == 1
             ? CLST_OK
             : clst_err_set(err, CLST_E_NOTFOUND, "signing key %s is not in the database", kid);
out:
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

enum clst_status
attest_store_keys_prune(struct attest_store *s, int64_t now, struct clst_err *err)
{
    enum clst_status rc = CLST_E_IO;
    sqlite3_stmt *st = NULL;
    pthread_mutex_lock(&s->mu);
    if ((rc = prepare(s, "DELETE FROM signing_keys WHERE publish_until <= ?1", &st, err)) !=
        CLST_OK) {
        goto out;
    }
    sqlite3_bind_int64(st, 1, now);
    rc = sqlite3_step(st) == SQLITE_DONE ? CLST_OK : db_fail(s, err, "pruning signing keys");
out:
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* ---- policies -------------------------------------------------------------------------------- */

enum clst_status
attest_store_policy_get(struct attest_store *s, const char *type, char **out,
                        struct clst_err *err)
{
    enum clst_status rc = CLST_E_IO;
    sqlite3_stmt *st = NULL;
    pthread_mutex_lock(&s->mu);
    if ((rc = prepare(s, "SELECT text FROM policies WHERE type = ?1", &st, err)) != CLST_OK) {
        goto out;
    }
    sqlite3_bind_text(st, 1, type, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    if (step == SQLITE_DONE) {
        rc = clst_err_set(err, CLST_E_NOTFOUND, "no policy stored for %s", type);
        goto out;
    }
    const unsigned char *text = step == SQLITE_ROW ? sqlite3_column_text(st, 0) : NULL;
    if (text == NULL) {
        rc = db_fail(s, err, "reading a policy");
        goto out;
    }
    *out = strdup((const char *)text);
    rc = *out ? CLST_OK : clst_err_set(err, CLST_E_NOMEM, "out of memory");
out:
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

enum clst_status
attest_store_policy_put(struct attest_store *s, const char *type, const char *text, int64_t now,
                        struct clst_err *err)
{
    enum clst_status rc = CLST_E_IO;
    sqlite3_stmt *st = NULL;
    pthread_mutex_lock(&s->mu);
    rc = prepare(s,
                 "INSERT INTO policies(type, text, updated) VALUES(?1, ?2, ?3) "
                 "ON CONFLICT(type) DO UPDATE SET text = excluded.text, updated = excluded.updated",
                 &st, err);
    if (rc != CLST_OK) {
        goto out;
    }
    sqlite3_bind_text(st, 1, type, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, text, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now);
    rc = sqlite3_step(st) == SQLITE_DONE ? CLST_OK : db_fail(s, err, "storing a policy");
out:
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

enum clst_status
attest_store_policy_delete(struct attest_store *s, const char *type, struct clst_err *err)
{
    enum clst_status rc = CLST_E_IO;
    sqlite3_stmt *st = NULL;
    pthread_mutex_lock(&s->mu);
    if ((rc = prepare(s, "DELETE FROM policies WHERE type = ?1", &st, err)) != CLST_OK) {
        goto out;
    }
    sqlite3_bind_text(st, 1, type, -1, SQLITE_STATIC);
    rc = sqlite3_step(st) == SQLITE_DONE ? CLST_OK : db_fail(s, err, "deleting a policy");
out:
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* ---- reference values ------------------------------------------------------------------------ */

enum clst_status
attest_store_refval_add(struct attest_store *s, const char *type, const char *claim,
                        const char *value, const char *note, int64_t now, size_t max_per_claim,
                        struct clst_err *err)
{
    enum clst_status rc = CLST_E_IO;
    sqlite3_stmt *st = NULL;
    if ((rc = txn_begin(s, err)) != CLST_OK) {
        goto out;
    }
    if ((rc = prepare(s, "SELECT count(*) FROM refvals WHERE type = ?1 AND claim = ?2", &st,
                      err)) != CLST_OK) {
        goto out;
    }
    sqlite3_bind_text(st, 1, type, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, claim, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_ROW) {
        rc = db_fail(s, err, "counting reference values");
        goto out;
    }
    if ((uint64_t)sqlite3_column_int64(st, 0) >= (uint64_t)max_per_claim) {
        rc = clst_err_set(err, CLST_E_LIMIT,
                          "%s already has %zu reference values for %s, the most allowed; "
                          "remove some first",
                          type, max_per_claim, claim);
        goto out;
    }
    sqlite3_finalize(st);
    rc = prepare(s,
                 "INSERT INTO refvals(type, claim, value, note, created) "
                 "VALUES(?1, ?2, ?3, ?4, ?5)",
                 &st, err);
    if (rc != CLST_OK) {
        goto out;
    }
    sqlite3_bind_text(st, 1, type, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, claim, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, value, -1, SQLITE_STATIC);
    if (note != NULL) {
        sqlite3_bind_text(st, 4, note, -1, SQLITE_STATIC);
    } else {
        sqlite3_bind_null(st, 4);
    }
    sqlite3_bind_int64(st, 5, now);
    int step = sqlite3_step(st);
    if (step == SQLITE_CONSTRAINT) {
        rc = clst_err_set(err, CLST_E_CONFLICT, "%s already has the reference value %s for %s",
                          type, value, claim);
        goto out;
    }
    if (step != SQLITE_DONE) {
        rc = db_fail(s, err, "storing a reference value");
        goto out;
    }
    rc = CLST_OK;
out:
    return txn_end(s, st, rc, "committing a reference value", err);
}

enum clst_status
attest_store_refval_remove(struct attest_store *s, const char *type, const char *claim,
                           const char *value, struct clst_err *err)
{
    enum clst_status rc = CLST_E_IO;
    sqlite3_stmt *st = NULL;
    pthread_mutex_lock(&s->mu);
    rc = prepare(s, "DELETE FROM refvals WHERE type = ?1 AND claim = ?2 AND value = ?3", &st,
                 err);
    if (rc != CLST_OK) {
        goto out;
    }
    sqlite3_bind_text(st, 1, type, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, claim, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, value, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE) {
        rc = db_fail(s, err, "removing a reference value");
        goto out;
    }
    rc = sqlite3_changes(s->db) == 1
             ? CLST_OK
             : clst_err_set(err, CLST_E_NOTFOUND, "%s has no reference value %s for %s", type,
                            value, claim);
out:
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

enum clst_status
attest_store_refval_list(struct attest_store *s, const char *type, json_t **out,
                         struct clst_err *err)
{
    enum clst_status rc = CLST_E_IO;
    sqlite3_stmt *st = NULL;
    json_t *list = json_array();
    pthread_mutex_lock(&s->mu);
    if (list == NULL) {
        rc = clst_err_set(err, CLST_E_NOMEM, "out of memory");
        goto out;
    }
    rc = prepare(s,
                 "SELECT claim, value, note, created FROM refvals WHERE type = ?1 "
                 "ORDER BY claim, value",
                 &st, err);
    if (rc != CLST_OK) {
        goto out;
    }
    sqlite3_bind_text(st, 1, type, -1, SQLITE_STATIC);
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        const unsigned char *claim = sqlite3_column_text(st, 0);
        const unsigned char *value = sqlite3_column_text(st, 1);
        const unsigned char *note = sqlite3_column_text(st, 2);
        if (claim == NULL || value == NULL) {
            rc = clst_err_set(err, CLST_E_VERIFY, "attestation database: a reference value row "
                                                  "is damaged");
            goto out;
        }
        json_t *item = json_pack("{s:s, s:s, s:I}", "claim", (const char *)claim, "value",
                                 (const char *)value, "created",
                                 (json_int_t)sqlite3_column_int64(st, 3));
        if (item == NULL ||
            (note != NULL && json_object_set_new(item, "note", json_string((const char *)note)) !=
                                 0) ||
            json_array_append_new(list, item) != 0) {
            json_decref(item);
            rc = clst_err_set(err, CLST_E_NOMEM, "out of memory");
            goto out;
        }
    }
    if (step != SQLITE_DONE) {
        rc = db_fail(s, err, "listing reference values");
        goto out;
    }
    *out = list;
    list = NULL;
    rc = CLST_OK;
out:
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->mu);
    json_decref(list);
    return rc;
}
