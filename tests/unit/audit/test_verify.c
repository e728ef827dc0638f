/*
 * Tests of the verifier (src/audit/verify.c) on logs built in memory with the record formatter:
 * an intact chain with checkpoints verifies; each kind of tampering is caught at the first bad
 * record, with its line and seq: an edited record, an edited record re-hashed (caught by the next
 * record), a deleted record, reordered records, a truncated log, a forged or foreign checkpoint,
 * a signature moved, records missing at the start, files out of order; zeros after the last
 * record (room written ahead by the service) end the data, zeros followed by data are damage.
 */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include <cmocka.h>

#include <jansson.h>

#include "audit/audit_int.h"
#include "test_util.h"

#define MAX_LINES 64

struct log {
    char *line[MAX_LINES];
    size_t count;
};

struct fx {
    EVP_PKEY *priv, *other;
    struct audit_key key, other_key;
    struct log log;
};

static int
setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_int_equal(clst_ec_generate(CLST_CURVE_P256, &f->priv), CLST_OK);
    assert_int_equal(clst_ec_generate(CLST_CURVE_P256, &f->other), CLST_OK);
    assert_int_equal(audit_key_describe(f->priv, &f->key, NULL), CLST_OK);
    assert_int_equal(audit_key_describe(f->other, &f->other_key, NULL), CLST_OK);
    *state = f;
    return 0;
}

static void
log_free(struct log *l)
{
    for (size_t i = 0; i < l->count; i++) {
        free(l->line[i]);
    }
    l->count = 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;
    log_free(&f->log);
    EVP_PKEY_free(f->priv);
    EVP_PKEY_free(f->other);
    free(f);
    return 0;
}

/* Appends a record; `sign` makes it a checkpoint with `reason`, signed by key. */
static void
add(struct log *l, const struct audit_key *key, const char *members)
{
    struct clst_buf b;
    char hash[CLST_AUDIT_HASH_HEX_SIZE];
    uint64_t seq = l->count + 1;
    const char *prev = AUDIT_ZERO_HASH;
    char prevbuf[CLST_AUDIT_HASH_HEX_SIZE];
    if (l->count > 0) {
        const char *last = l->line[l->count - 1];
        const char *h = strstr(last, ",\"hash\":\"") + 9;
        memcpy(prevbuf, h, 64);
        prevbuf[64] = '\0';
        prev = prevbuf;
    }
    clst_buf_init(&b, 1 << 20);
    assert_int_equal(audit_format_line(&b, seq, "2026-01-01T00:00:00.000Z", members, prev, key,
                                       hash),
                     CLST_OK);
    b.data[b.size - 1] = '\0';
    size_t n;
    l->line[l->count++] = (char *)clst_buf_steal(&b, &n);
}

static void
add_checkpoint(struct log *l, const struct audit_key *key, const char *reason)
{
    char m[256];
    snprintf(m, sizeof(m), "\"type\":\"checkpoint\",\"reason\":\"%s\",\"alg\":\"%s\",\"kid\":\"%s\"",
             reason, key->alg, key->kid);
    add(l, key, m);
}

/* start, 3 records, checkpoint, 3 records, closing checkpoint: 9 lines. */
static void
build(struct fx *f)
{
    char m[128];
    snprintf(m, sizeof(m), "\"type\":\"start\",\"genesis\":true,\"alg\":\"ES256\"");
    add(&f->log, NULL, m);
    for (int i = 0; i < 3; i++) {
        add(&f->log, NULL, "\"type\":\"attempt\",\"op\":\"keys.create\",\"name\":\"k\"");
    }
    add_checkpoint(&f->log, &f->key, "every");
    for (int i = 0; i < 3; i++) {
        add(&f->log, NULL, "\"type\":\"outcome\",\"op\":\"keys.create\",\"status\":200");
    }
    add_checkpoint(&f->log, &f->key, "close");
}

/* Runs the verifier over the log as one file; returns the status of the end. */
static enum clst_status
run(struct fx *f, EVP_PKEY *pub, bool allow_open, struct clst_audit_verify *v)
{
    assert_int_equal(clst_audit_verify_init(v, pub, NULL), CLST_OK);
    clst_audit_verify_file(v, "/some/dir/audit-00000000000000000001.jsonl");
    for (size_t i = 0; i < f->log.count; i++) {
        if (clst_audit_verify_line(v, f->log.line[i], strlen(f->log.line[i])) != CLST_OK) {
            break;
        }
    }
    return clst_audit_verify_end(v, allow_open);
}

static void
expect_bad(struct fx *f, uint64_t line, uint64_t seq, const char *what)
{
    struct clst_audit_verify v;
    assert_int_not_equal(run(f, f->priv, false, &v), CLST_OK);
    assert_true(v.bad);
    if (v.bad_line != line || v.bad_seq != seq || strstr(v.msg, what) == NULL) {
        fail_msg("expected line %" PRIu64 " seq %" PRIu64 " '%s', got line %" PRIu64 " seq %" PRIu64
                 ": %s",
                 line, seq, what, v.bad_line, v.bad_seq, v.msg);
    }
    assert_string_equal(v.bad_file, "audit-00000000000000000001.jsonl");
}

static void
test_intact(void **state)
{
    struct fx *f = *state;
    struct clst_audit_verify v;
    build(f);
    assert_int_equal(run(f, f->priv, false, &v), CLST_OK);
    assert_int_equal(v.records, 9);
    assert_int_equal(v.checkpoints, 2);
    assert_int_equal(v.last_seq, 9);
    assert_true(v.anchored);
    assert_int_equal(v.unsigned_tail, 0);
    /* A public-only copy of the key verifies as well. */
    EVP_PKEY *pub = NULL;
    assert_int_equal(clst_pkey_public_copy(f->priv, &pub), CLST_OK);
    assert_int_equal(run(f, pub, false, &v), CLST_OK);
    EVP_PKEY_free(pub);
}

static void
test_edited(void **state)
{
    struct fx *f = *state;
    build(f);
    char *p = strstr(f->log.line[2], "keys.create");
    memcpy(p, "keys.delete", 11);
    expect_bad(f, 3, 3, "was edited");
}

static void
test_edited_and_rehashed(void **state)
{
    struct fx *f = *state;
    build(f);
    char *l = f->log.line[2];
    char *p = strstr(l, "keys.create");
    memcpy(p, "keys.delete", 11);
    char *h = strstr(l, ",\"hash\":\"");
    char hash[CLST_AUDIT_HASH_HEX_SIZE];
    assert_int_equal(audit_sha256_hex(l, (size_t)(h - l), hash), CLST_OK);
    memcpy(h + 9, hash, 64);
    expect_bad(f, 4, 4, "\"prev\" is not the hash");
}

static void
test_deleted(void **state)
{
    struct fx *f = *state;
    build(f);
    free(f->log.line[3]);
    memmove(&f->log.line[3], &f->log.line[4], (f->log.count - 4) * sizeof(char *));
    f->log.count--;
    expect_bad(f, 4, 5, "follows seq 3");
}

static void
test_reordered(void **state)
{
    struct fx *f = *state;
    build(f);
    char *t = f->log.line[5];
    f->log.line[5] = f->log.line[6];
    f->log.line[6] = t;
    expect_bad(f, 6, 7, "follows seq 5");
}

static void
test_duplicated(void **state)
{
    struct fx *f = *state;
    build(f);
    free(f->log.line[6]);
    f->log.line[6] = strdup(f->log.line[5]);
    expect_bad(f, 7, 6, "follows seq 6");
}

static void
test_truncated(void **state)
{
    struct fx *f = *state;
    struct clst_audit_verify v;
    build(f);
    /* The closing checkpoint removed: strict verification fails, --allow-open passes. */
    free(f->log.line[--f->log.count]);
    expect_bad(f, 9, 0, "without a closing checkpoint");
    assert_int_equal(run(f, f->priv, true, &v), CLST_OK);
    assert_int_equal(v.unsigned_tail, 3);
    /* Cut in the middle of a line. */
    assert_int_equal(clst_audit_verify_init(&v, f->priv, NULL), CLST_OK);
    clst_audit_verify_file(&v, "audit-00000000000000000001.jsonl");
    for (size_t i = 0; i < f->log.count - 1; i++) {
        assert_int_equal(clst_audit_verify_line(&v, f->log.line[i], strlen(f->log.line[i])),
                         CLST_OK);
    }
    const char *last = f->log.line[f->log.count - 1];
    assert_int_not_equal(clst_audit_verify_line(&v, last, strlen(last) - 5), CLST_OK);
    assert_int_equal(v.bad_line, 8);
    /* The torn marker. */
    assert_int_equal(clst_audit_verify_init(&v, f->priv, NULL), CLST_OK);
    clst_audit_verify_file(&v, "audit-00000000000000000001.jsonl");
    assert_int_equal(clst_audit_verify_line(&v, f->log.line[0], strlen(f->log.line[0])), CLST_OK);
    clst_audit_verify_torn(&v);
    assert_int_equal(clst_audit_verify_end(&v, true), CLST_E_VERIFY);
    assert_int_equal(v.bad_line, 2);
    assert_non_null(strstr(v.msg, "middle of a record"));
    /* Nothing at all. */
    assert_int_equal(clst_audit_verify_init(&v, f->priv, NULL), CLST_OK);
    assert_int_equal(clst_audit_verify_end(&v, true), CLST_E_VERIFY);
    assert_non_null(strstr(v.msg, "no record"));
}

static void
test_missing_start(void **state)
{
    struct fx *f = *state;
    build(f);
    free(f->log.line[0]);
    memmove(&f->log.line[0], &f->log.line[1], (f->log.count - 1) * sizeof(char *));
    f->log.count--;
    expect_bad(f, 1, 2, "missing at the start");
}

static void
test_wrong_key_and_forged_checkpoint(void **state)
{
    struct fx *f = *state;
    struct clst_audit_verify v;
    build(f);
    /* The right log, the wrong public key. */
    assert_int_not_equal(run(f, f->other, false, &v), CLST_OK);
    assert_int_equal(v.bad_line, 5);
    assert_non_null(strstr(v.msg, "not the given public key"));
    /* No key: a checkpoint cannot be checked, and that is an error. */
    assert_int_not_equal(run(f, NULL, false, &v), CLST_OK);
    assert_int_equal(v.bad_line, 5);
    assert_non_null(strstr(v.msg, "without the audit public key"));
    log_free(&f->log);
    /* A checkpoint by another key that claims our kid: the signature does not verify. */
    add(&f->log, NULL, "\"type\":\"start\",\"genesis\":true");
    char m[256];
    snprintf(m, sizeof(m), "\"type\":\"checkpoint\",\"reason\":\"close\",\"alg\":\"ES256\",\"kid\":\"%s\"",
             f->key.kid);
    add(&f->log, &f->other_key, m);
    expect_bad(f, 2, 2, "signature does not verify");
    log_free(&f->log);
    /* A checkpoint of an unknown reason; a plain record carrying a sig. */
    add(&f->log, NULL, "\"type\":\"start\",\"genesis\":true");
    snprintf(m, sizeof(m), "\"type\":\"checkpoint\",\"reason\":\"whenever\",\"alg\":\"ES256\",\"kid\":\"%s\"",
             f->key.kid);
    add(&f->log, &f->key, m);
    expect_bad(f, 2, 2, "unknown");
    log_free(&f->log);
    add(&f->log, NULL, "\"type\":\"start\",\"genesis\":true");
    add(&f->log, NULL, "\"type\":\"attempt\",\"sig\":\"AAAA\"");
    expect_bad(f, 2, 2, "only checkpoints");
    log_free(&f->log);
    /* A checkpoint whose sig member is elsewhere than just before hash. */
    add(&f->log, NULL, "\"type\":\"start\",\"genesis\":true");
    snprintf(m, sizeof(m), "\"type\":\"checkpoint\",\"sig\":\"AAAA\",\"reason\":\"close\",\"alg\":\"ES256\",\"kid\":\"%s\"",
             f->key.kid);
    add(&f->log, NULL, m);
    expect_bad(f, 2, 2, "just before");
    log_free(&f->log);
    /* The alg member lies about the key. */
    add(&f->log, NULL, "\"type\":\"start\",\"genesis\":true");
    snprintf(m, sizeof(m), "\"type\":\"checkpoint\",\"reason\":\"close\",\"alg\":\"ES384\",\"kid\":\"%s\"",
             f->key.kid);
    add(&f->log, &f->key, m);
    expect_bad(f, 2, 2, "does not match the key");
}

static void
test_files(void **state)
{
    struct fx *f = *state;
    struct clst_audit_verify v;
    /* File 1: start, a record, rotate checkpoint. File 2: continue, a record, close. */
    add(&f->log, NULL, "\"type\":\"start\",\"genesis\":true");
    add(&f->log, NULL, "\"type\":\"attempt\"");
    add_checkpoint(&f->log, &f->key, "rotate");
    add(&f->log, NULL,
        "\"type\":\"continue\",\"prev_file\":\"audit-00000000000000000001.jsonl\"");
    add(&f->log, NULL, "\"type\":\"attempt\"");
    add_checkpoint(&f->log, &f->key, "close");
    struct {
        size_t split;      /* lines in the first file */
        const char *name2; /* the second file's name */
        enum clst_status want;
        const char *what;
    } cases[] = {
        {3, "audit-00000000000000000004.jsonl", CLST_OK, NULL},
        {2, "audit-00000000000000000003.jsonl", CLST_E_VERIFY, "must be of type continue"},
        {4, "audit-00000000000000000005.jsonl", CLST_E_VERIFY, "in the middle of a file"},
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        assert_int_equal(clst_audit_verify_init(&v, f->priv, NULL), CLST_OK);
        clst_audit_verify_file(&v, "dir/audit-00000000000000000001.jsonl");
        enum clst_status st = CLST_OK;
        for (size_t i = 0; i < f->log.count && st == CLST_OK; i++) {
            if (i == cases[c].split) {
                clst_audit_verify_file(&v, cases[c].name2);
            }
            st = clst_audit_verify_line(&v, f->log.line[i], strlen(f->log.line[i]));
        }
        st = clst_audit_verify_end(&v, false);
        assert_int_equal(st, cases[c].want);
        if (cases[c].what != NULL) {
            if (strstr(v.msg, cases[c].what) == NULL) {
                fail_msg("case %zu: %s", c, v.msg);
            }
        } else {
            assert_int_equal(v.file_count, 2);
        }
    }
    /* The continuation names another file than the one before it. */
    assert_int_equal(clst_audit_verify_init(&v, f->priv, NULL), CLST_OK);
    clst_audit_verify_file(&v, "audit-00000000000000000009.jsonl");
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(clst_audit_verify_line(&v, f->log.line[i], strlen(f->log.line[i])),
                         CLST_OK);
    }
    clst_audit_verify_file(&v, "audit-00000000000000000004.jsonl");
    assert_int_equal(clst_audit_verify_line(&v, f->log.line[3], strlen(f->log.line[3])),
                     CLST_E_VERIFY);
    assert_non_null(strstr(v.msg, "continues audit-00000000000000000001.jsonl"));
    /* The second file alone: checked from its continuation, not anchored. */
    assert_int_equal(clst_audit_verify_init(&v, f->priv, NULL), CLST_OK);
    clst_audit_verify_file(&v, "audit-00000000000000000004.jsonl");
    for (size_t i = 3; i < f->log.count; i++) {
        assert_int_equal(clst_audit_verify_line(&v, f->log.line[i], strlen(f->log.line[i])),
                         CLST_OK);
    }
    assert_int_equal(clst_audit_verify_end(&v, false), CLST_OK);
    assert_false(v.anchored);
    assert_non_null(strstr(v.start_note, "from seq 4"));
}

static void
test_verify_files_io(void **state)
{
    struct fx *f = *state;
    struct clst_audit_verify v;
    struct clst_err err;
    char path[] = "/tmp/clst-audit-verify-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    build(f);
    FILE *fp = fdopen(fd, "w");
    for (size_t i = 0; i < f->log.count; i++) {
        fprintf(fp, "%s\n", f->log.line[i]);
    }
    fclose(fp);
    const char *files[1] = {path};
    assert_int_equal(clst_audit_verify_init(&v, f->priv, &err), CLST_OK);
    assert_int_equal(clst_audit_verify_files(&v, files, 1, false, &err), CLST_OK);
    /* A very long line is refused with a limit, not read without bound. */
    fp = fopen(path, "a");
    for (size_t i = 0; i < CLST_AUDIT_LINE_MAX + 10; i++) {
        fputc('x', fp);
    }
    fputc('\n', fp);
    fclose(fp);
    assert_int_equal(clst_audit_verify_init(&v, f->priv, &err), CLST_OK);
    assert_int_not_equal(clst_audit_verify_files(&v, files, 1, false, &err), CLST_OK);
    assert_int_equal(v.bad_line, 10);
    assert_non_null(strstr(err.msg, "longer than"));
    unlink(path);
    const char *none[1] = {"/nonexistent/audit-00000000000000000001.jsonl"};
    assert_int_equal(clst_audit_verify_init(&v, f->priv, &err), CLST_OK);
    assert_int_equal(clst_audit_verify_files(&v, none, 1, false, &err), CLST_E_IO);
    /* An RSA key is not an audit key. */
    EVP_PKEY *rsa = NULL;
    assert_int_equal(clst_rsa_generate(2048, &rsa), CLST_OK);
    assert_int_equal(clst_audit_verify_init(&v, rsa, &err), CLST_E_INVAL);
    EVP_PKEY_free(rsa);
}

/* Writes the log to `path`: the first `whole` lines complete, then `torn` bytes of the next,
 * then `zeros` zero bytes, then `after` (NULL: nothing). */
static void
write_with_zeros(struct fx *f, const char *path, size_t whole, size_t torn, size_t zeros,
                 const char *after)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    for (size_t i = 0; i < whole; i++) {
        fprintf(fp, "%s\n", f->log.line[i]);
    }
    if (torn > 0) {
        fwrite(f->log.line[whole], 1, torn, fp);
    }
    for (size_t i = 0; i < zeros; i++) {
        fputc('\0', fp);
    }
    if (after != NULL) {
        fputs(after, fp);
    }
    fclose(fp);
}

static enum clst_status
verify_path(struct fx *f, const char *path, bool allow_open, struct clst_audit_verify *v,
            struct clst_err *err)
{
    const char *files[1] = {path};
    clst_err_clear(err);
    assert_int_equal(clst_audit_verify_init(v, f->priv, err), CLST_OK);
    return clst_audit_verify_files(v, files, 1, allow_open, err);
}

/* The service writes zeros ahead of its records (src/audit/log.c); a running or crashed
 * service's file ends in them. They end the data; a record cut short before them is torn, and
 * data after them is damage. */
static void
test_zero_tail(void **state)
{
    struct fx *f = *state;
    struct clst_audit_verify v;
    struct clst_err err;
    char path[] = "/tmp/clst-audit-verify-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    build(f);
    /* Closed, then zeros (a crash before the cut): verifies, closed. */
    write_with_zeros(f, path, f->log.count, 0, 70000, NULL);
    assert_int_equal(verify_path(f, path, false, &v, &err), CLST_OK);
    assert_int_equal(v.records, f->log.count);
    /* Open (no closing checkpoint), then zeros: verifies with allow_open only. */
    write_with_zeros(f, path, f->log.count - 1, 0, 4096, NULL);
    assert_int_equal(verify_path(f, path, true, &v, &err), CLST_OK);
    assert_int_equal(v.records, f->log.count - 1);
    assert_int_not_equal(verify_path(f, path, false, &v, &err), CLST_OK);
    assert_non_null(strstr(err.msg, "without a closing checkpoint"));
    /* A record cut short, then zeros: torn, at that record's line. */
    write_with_zeros(f, path, 5, 40, 4096, NULL);
    assert_int_not_equal(verify_path(f, path, true, &v, &err), CLST_OK);
    assert_int_equal(v.bad_line, 6);
    assert_non_null(strstr(err.msg, "middle of a record"));
    /* Zeros, then a record: damage, named with both offsets. */
    size_t off = 0;
    for (size_t i = 0; i < 5; i++) {
        off += strlen(f->log.line[i]) + 1;
    }
    char after[8192];
    snprintf(after, sizeof(after), "%s\n", f->log.line[5]);
    write_with_zeros(f, path, 5, 0, 100, after);
    assert_int_not_equal(verify_path(f, path, true, &v, &err), CLST_OK);
    assert_int_equal(v.bad_line, 6);
    char want[128];
    snprintf(want, sizeof(want), "zero bytes from offset %zu are followed by data at offset %zu",
             off, off + 100);
    if (strstr(err.msg, want) == NULL) {
        fail_msg("expected '%s' in: %s", want, err.msg);
    }
    /* A single non-zero byte at the very end is found too. */
    write_with_zeros(f, path, f->log.count, 0, 65536, "x");
    assert_int_not_equal(verify_path(f, path, false, &v, &err), CLST_OK);
    assert_non_null(strstr(err.msg, "followed by data"));
    /* Only zeros: no record. */
    write_with_zeros(f, path, 0, 0, 100, NULL);
    assert_int_not_equal(verify_path(f, path, true, &v, &err), CLST_OK);
    assert_non_null(strstr(err.msg, "no record"));
    unlink(path);
}

int
main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_intact),
        T(test_edited),
        T(test_edited_and_rehashed),
        T(test_deleted),
        T(test_reordered),
        T(test_duplicated),
        T(test_truncated),
        T(test_missing_start),
        T(test_wrong_key_and_forged_checkpoint),
        T(test_files),
        T(test_verify_files_io),
        T(test_zero_tail),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
