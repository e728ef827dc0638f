/*
 * Unit tests for src/attest/store.c (attest.db): the file is created 0600 and refused when
 * others may read it; WAL and synchronous=FULL are in force; nonces are single use even when
 * several threads race for one, expire, are purged, are capped, survive a reopen; signing-key
 * rows, policies and reference values round-trip, with conflicts, not-found and caps reported.
 */
#include "attest_fixture.h"

#include <pthread.h>

#include <sqlite3.h>

struct tmp {
    char dir[64];
    char db[128];
};

static void
tmp_new(struct tmp *t)
{
    snprintf(t->dir, sizeof(t->dir), "/tmp/attest-store-XXXXXX");
    assert_non_null(mkdtemp(t->dir));
    snprintf(t->db, sizeof(t->db), "%s/attest.db", t->dir);
}

static void
test_open(void **state)
{
    (void)state;
    struct tmp t;
    struct attest_store *s = NULL;
    struct clst_err err = {0};
    struct stat sb;
    tmp_new(&t);
    assert_int_equal(attest_store_open(t.db, &s, &err), CLST_OK);
    assert_int_equal(stat(t.db, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    attest_store_close(s);
    attest_store_close(NULL);

    /* WAL and synchronous FULL as a fresh connection sees them. */
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(t.db, &db), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    /* A newer schema is refused. */
    assert_int_equal(sqlite3_exec(db, "UPDATE meta SET value='2' WHERE name='schema_version'",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(attest_store_open(t.db, &s, &err), CLST_E_IO);
    assert_non_null(strstr(err.msg, "schema version"));

    assert_int_equal(chmod(t.db, 0640), 0);
    assert_int_equal(attest_store_open(t.db, &s, &err), CLST_E_DENIED);
    assert_int_equal(attest_store_open(":memory:", &s, &err), CLST_E_INVAL);
    assert_int_equal(attest_store_open("file:x.db", &s, &err), CLST_E_INVAL);
    assert_int_equal(attest_store_open("", &s, &err), CLST_E_INVAL);
    char missing[200];
    snprintf(missing, sizeof(missing), "%s/no/such/dir/attest.db", t.dir);
    assert_int_equal(attest_store_open(missing, &s, &err), CLST_E_IO);
    fx_rm_rf(t.dir);
}

struct race {
    struct attest_store *s;
    int ok;
    int refused;
    pthread_mutex_t mu;
};

static void *
racer(void *arg)
{
    struct race *r = arg;
    struct clst_err err = {0};
    enum clst_status st = attest_store_nonce_consume(r->s, "the-nonce", 100, &err);
    pthread_mutex_lock(&r->mu);
    if (st == CLST_OK) {
        r->ok++;
    } else if (st == CLST_E_VERIFY) {
        r->refused++;
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

static void
test_nonces(void **state)
{
    (void)state;
    struct tmp t;
    struct attest_store *s = NULL;
    struct clst_err err = {0};
    tmp_new(&t);
    assert_int_equal(attest_store_open(t.db, &s, &err), CLST_OK);
    assert_int_equal(attest_store_nonce_insert(s, "the-nonce", 100, 400, 10, &err), CLST_OK);
    assert_int_equal(attest_store_nonce_insert(s, "the-nonce", 100, 400, 10, &err), CLST_E_IO);

    /* Eight threads race for one nonce: exactly one wins. */
    struct race r = {s, 0, 0, PTHREAD_MUTEX_INITIALIZER};
    pthread_t th[8];
    for (size_t i = 0; i < 8; i++) {
        assert_int_equal(pthread_create(&th[i], NULL, racer, &r), 0);
    }
    for (size_t i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
    }
    assert_int_equal(r.ok, 1);
    assert_int_equal(r.refused, 7);

    /* Expiry is exclusive; unknown nonces are refused. */
    assert_int_equal(attest_store_nonce_insert(s, "n2", 100, 200, 10, &err), CLST_OK);
    assert_int_equal(attest_store_nonce_consume(s, "n2", 200, &err), CLST_E_VERIFY);
    assert_non_null(strstr(err.msg, "expired at 1970-01-01T00:03:20Z"));
    assert_int_equal(attest_store_nonce_consume(s, "n3", 150, &err), CLST_E_VERIFY);
    assert_non_null(strstr(err.msg, "unknown"));

    /* The cap counts unexpired nonces; inserting purges expired ones first. */
    for (int i = 0; i < 3; i++) {
        char n[16];
        snprintf(n, sizeof(n), "cap-%d", i);
        assert_int_equal(attest_store_nonce_insert(s, n, 300, 1000, 4, &err), CLST_OK);
    }
    /* Now: the-nonce (exp 400), cap-0..2 (exp 1000); n2 (exp 200) was purged. */
    assert_int_equal(attest_store_nonce_insert(s, "cap-3", 300, 1000, 4, &err), CLST_E_LIMIT);
    assert_non_null(strstr(err.msg, "outstanding"));
    assert_int_equal(attest_store_nonce_insert(s, "cap-3", 400, 1000, 4, &err), CLST_OK);

    /* Durable: a reopened store still knows what was used. */
    attest_store_close(s);
    s = NULL;
    assert_int_equal(attest_store_open(t.db, &s, &err), CLST_OK);
    assert_int_equal(attest_store_nonce_consume(s, "cap-0", 500, &err), CLST_OK);
    attest_store_close(s);
    s = NULL;
    assert_int_equal(attest_store_open(t.db, &s, &err), CLST_OK);
    assert_int_equal(attest_store_nonce_consume(s, "cap-0", 500, &err), CLST_E_VERIFY);
    assert_non_null(strstr(err.msg, "already used"));
    assert_int_equal(attest_store_nonce_consume(s, "cap-1", 500, &err), CLST_OK);
    attest_store_close(s);
    fx_rm_rf(t.dir);
}

static void
test_keys_rows(void **state)
{
    (void)state;
    struct tmp t;
    struct attest_store *s = NULL;
    struct clst_err err = {0};
    struct attest_key_row *rows = NULL;
    size_t count = 0;
    uint8_t sealed[40], cert[20];
    memset(sealed, 1, sizeof(sealed));
    memset(cert, 2, sizeof(cert));
    tmp_new(&t);
    assert_int_equal(attest_store_open(t.db, &s, &err), CLST_OK);
    struct attest_key_row r = {"kid-b", 1, 200, 300, 400, sealed, sizeof(sealed), cert,
                               sizeof(cert)};
    assert_int_equal(attest_store_key_insert(s, &r, &err), CLST_OK);
    assert_int_equal(attest_store_key_insert(s, &r, &err), CLST_E_CONFLICT);
    struct attest_key_row r2 = {"kid-a", 1, 100, 200, 250, sealed, sizeof(sealed), cert,
                                sizeof(cert)};
    assert_int_equal(attest_store_key_insert(s, &r2, &err), CLST_OK);
    assert_int_equal(attest_store_keys_load(s, &rows, &count, &err), CLST_OK);
    assert_int_equal(count, 2);
    assert_string_equal(rows[0].kid, "kid-a"); /* by not_before */
    assert_int_equal(rows[1].publish_until, 400);
    assert_memory_equal(rows[1].sealed, sealed, sizeof(sealed));
    assert_int_equal(rows[1].cert_size, sizeof(cert));
    attest_key_rows_free(rows, count);
    assert_int_equal(attest_store_key_update(s, "kid-b", 150, 160, 170, &err), CLST_OK);
    assert_int_equal(attest_store_key_update(s, "kid-x", 1, 2, 3, &err), CLST_E_NOTFOUND);
    assert_int_equal(attest_store_keys_prune(s, 200, &err), CLST_OK);
    assert_int_equal(attest_store_keys_load(s, &rows, &count, &err), CLST_OK);
    assert_int_equal(count, 1);
    assert_string_equal(rows[0].kid, "kid-a");
    attest_key_rows_free(rows, count);
    attest_key_rows_free(NULL, 0);
    attest_store_close(s);
    fx_rm_rf(t.dir);
}

static void
test_policies_refvals(void **state)
{
    (void)state;
    struct tmp t;
    struct attest_store *s = NULL;
    struct clst_err err = {0};
    char *text = NULL;
    json_t *list = NULL;
    tmp_new(&t);
    assert_int_equal(attest_store_open(t.db, &s, &err), CLST_OK);
    assert_int_equal(attest_store_policy_get(s, "SimEnclave", &text, &err), CLST_E_NOTFOUND);
    assert_int_equal(attest_store_policy_put(s, "SimEnclave", "{\"a\":1}", 5, &err), CLST_OK);
    assert_int_equal(attest_store_policy_put(s, "SimEnclave", "{\"a\":2}", 6, &err), CLST_OK);
    assert_int_equal(attest_store_policy_get(s, "SimEnclave", &text, &err), CLST_OK);
    assert_string_equal(text, "{\"a\":2}");
    free(text);
    assert_int_equal(attest_store_policy_delete(s, "SimEnclave", &err), CLST_OK);
    assert_int_equal(attest_store_policy_delete(s, "SimEnclave", &err), CLST_OK);
    assert_int_equal(attest_store_policy_get(s, "SimEnclave", &text, &err), CLST_E_NOTFOUND);

    assert_int_equal(attest_store_refval_add(s, "T", "c", "v2", NULL, 1, 2, &err), CLST_OK);
    assert_int_equal(attest_store_refval_add(s, "T", "c", "v1", "note", 2, 2, &err), CLST_OK);
    assert_int_equal(attest_store_refval_add(s, "T", "c", "v1", NULL, 3, 9, &err),
                     CLST_E_CONFLICT);
    assert_int_equal(attest_store_refval_add(s, "T", "c", "v3", NULL, 3, 2, &err), CLST_E_LIMIT);
    assert_int_equal(attest_store_refval_add(s, "T", "d", "v3", NULL, 3, 2, &err), CLST_OK);
    assert_int_equal(attest_store_refval_add(s, "U", "c", "v3", NULL, 3, 2, &err), CLST_OK);
    assert_int_equal(attest_store_refval_list(s, "T", &list, &err), CLST_OK);
    assert_int_equal(json_array_size(list), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "value")), "v1");
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "note")),
                        "note");
    assert_null(json_object_get(json_array_get(list, 1), "note"));
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 2), "claim")), "d");
    json_decref(list);
    assert_int_equal(attest_store_refval_remove(s, "T", "c", "v1", &err), CLST_OK);
    assert_int_equal(attest_store_refval_remove(s, "T", "c", "v1", &err), CLST_E_NOTFOUND);
    assert_int_equal(attest_store_refval_list(s, "T", &list, &err), CLST_OK);
    assert_int_equal(json_array_size(list), 2);
    json_decref(list);
    attest_store_close(s);
    fx_rm_rf(t.dir);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open),
        cmocka_unit_test(test_nonces),
        cmocka_unit_test(test_keys_rows),
        cmocka_unit_test(test_policies_refvals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
