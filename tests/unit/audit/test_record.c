/*
 * Tests of the record format (src/audit/record.c): formatting a line, and parsing one line of
 * untrusted text, with every structural rule broken once.
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>

#include "audit/audit_int.h"
#include "test_util.h"

/* A line (without '\n') for seq/members/prev; checkpoints signed with key when non-NULL. */
static char *
make_line(uint64_t seq, const char *members, const char *prev, const struct audit_key *key)
{
    struct clst_buf b;
    char hash[CLST_AUDIT_HASH_HEX_SIZE];
    clst_buf_init(&b, 1 << 20);
    assert_int_equal(audit_format_line(&b, seq, "2026-01-01T00:00:00.000Z", members, prev, key,
                                       hash),
                     CLST_OK);
    assert_int_equal(b.data[b.size - 1], '\n');
    b.data[b.size - 1] = '\0';
    size_t n;
    char *s = (char *)clst_buf_steal(&b, &n);
    return s;
}

/* Re-hashes a line whose prefix was changed, so that only deeper checks can catch it. */
static char *
rehash(const char *prefix)
{
    char hash[CLST_AUDIT_HASH_HEX_SIZE];
    assert_int_equal(audit_sha256_hex(prefix, strlen(prefix), hash), CLST_OK);
    size_t n = strlen(prefix) + 80;
    char *s = malloc(n);
    snprintf(s, n, "%s,\"hash\":\"%s\"}", prefix, hash);
    return s;
}

static enum clst_status
parse(const char *line, struct clst_audit_record *r, struct clst_err *err)
{
    clst_err_clear(err);
    return clst_audit_record_parse(line, strlen(line), r, err);
}

static void
test_format_and_parse(void **state)
{
    (void)state;
    struct clst_audit_record r;
    struct clst_err err;
    char *line = make_line(7, "\"type\":\"attempt\",\"op\":\"keys.get\"", AUDIT_ZERO_HASH, NULL);
    assert_int_equal(strncmp(line, "{\"seq\":7,\"time\":\"2026-01-01T00:00:00.000Z\",\"type\"", 48),
                     0);
    assert_int_equal(parse(line, &r, &err), CLST_OK);
    assert_int_equal(r.seq, 7);
    assert_string_equal(r.type, "attempt");
    assert_string_equal(r.prev, AUDIT_ZERO_HASH);
    assert_string_equal(json_string_value(json_object_get(r.obj, "op")), "keys.get");
    /* The hash is the SHA-256 of everything before ,"hash":" */
    char h[CLST_AUDIT_HASH_HEX_SIZE];
    const char *cut = strstr(line, ",\"hash\":\"");
    assert_int_equal(audit_sha256_hex(line, (size_t)(cut - line), h), CLST_OK);
    assert_string_equal(r.hash, h);
    clst_audit_record_cleanup(&r);
    clst_audit_record_cleanup(&r); /* twice is fine */
    free(line);
}

static void
test_every_byte_flip_fails(void **state)
{
    (void)state;
    struct clst_audit_record r;
    struct clst_err err;
    char *line = make_line(3, "\"type\":\"outcome\",\"status\":200", AUDIT_ZERO_HASH, NULL);
    size_t n = strlen(line);
    for (size_t i = 0; i < n; i++) {
        char saved = line[i];
        line[i] = (char)(saved == 'a' ? 'b' : (saved == '0' ? '1' : 'a'));
        assert_int_not_equal(parse(line, &r, &err), CLST_OK);
        clst_audit_record_cleanup(&r);
        line[i] = saved;
    }
    /* Every truncation fails too. */
    for (size_t i = 0; i < n; i++) {
        assert_int_not_equal(clst_audit_record_parse(line, i, &r, &err), CLST_OK);
    }
    free(line);
}

static void
test_structure_rules(void **state)
{
    (void)state;
    struct clst_audit_record r;
    struct clst_err err;
    static const char *const bad_prefixes[] = {
        /* seq not first */
        "{\"time\":\"t\",\"seq\":1,\"type\":\"x\",\"prev\":\"" AUDIT_ZERO_HASH "\"",
        /* seq 0, negative, a string, a float */
        "{\"seq\":0,\"time\":\"t\",\"type\":\"x\",\"prev\":\"" AUDIT_ZERO_HASH "\"",
        "{\"seq\":-1,\"time\":\"t\",\"type\":\"x\",\"prev\":\"" AUDIT_ZERO_HASH "\"",
        "{\"seq\":\"1\",\"time\":\"t\",\"type\":\"x\",\"prev\":\"" AUDIT_ZERO_HASH "\"",
        "{\"seq\":1.5,\"time\":\"t\",\"type\":\"x\",\"prev\":\"" AUDIT_ZERO_HASH "\"",
        /* no type, empty type, long type, type not a string */
        "{\"seq\":1,\"time\":\"t\",\"prev\":\"" AUDIT_ZERO_HASH "\"",
        "{\"seq\":1,\"time\":\"t\",\"type\":\"\",\"prev\":\"" AUDIT_ZERO_HASH "\"",
        "{\"seq\":1,\"time\":\"t\",\"type\":\"abcdefghijklmnopq\",\"prev\":\"" AUDIT_ZERO_HASH "\"",
        "{\"seq\":1,\"time\":\"t\",\"type\":7,\"prev\":\"" AUDIT_ZERO_HASH "\"",
        /* prev: short, upper case, missing */
        "{\"seq\":1,\"time\":\"t\",\"type\":\"x\",\"prev\":\"00\"",
        "{\"seq\":1,\"time\":\"t\",\"type\":\"x\",\"prev\":"
        "\"AB00000000000000000000000000000000000000000000000000000000000000\"",
        "{\"seq\":1,\"time\":\"t\",\"type\":\"x\"",
        /* no time, time not a string */
        "{\"seq\":1,\"type\":\"x\",\"prev\":\"" AUDIT_ZERO_HASH "\"",
        "{\"seq\":1,\"time\":5,\"type\":\"x\",\"prev\":\"" AUDIT_ZERO_HASH "\"",
        /* duplicate members */
        "{\"seq\":1,\"time\":\"t\",\"type\":\"x\",\"type\":\"y\",\"prev\":\"" AUDIT_ZERO_HASH "\"",
        /* a second hash member before the real one */
        "{\"seq\":1,\"time\":\"t\",\"type\":\"x\",\"hash\":\"" AUDIT_ZERO_HASH
        "\",\"prev\":\"" AUDIT_ZERO_HASH "\"",
    };
    for (size_t i = 0; i < sizeof(bad_prefixes) / sizeof(bad_prefixes[0]); i++) {
        char *line = rehash(bad_prefixes[i]);
        enum clst_status st = parse(line, &r, &err);
        if (st == CLST_OK) {
            fail_msg("case %zu was accepted: %s", i, line);
        }
        assert_true(err.msg[0] != '\0');
        clst_audit_record_cleanup(&r);
        free(line);
    }
    /* Sanity: the same shape with everything right parses. */
    char *good = rehash("{\"seq\":1,\"time\":\"t\",\"type\":\"x\",\"prev\":\"" AUDIT_ZERO_HASH "\"");
    assert_int_equal(parse(good, &r, &err), CLST_OK);
    clst_audit_record_cleanup(&r);
    free(good);
}

static void
test_bytes_and_limits(void **state)
{
    (void)state;
    struct clst_audit_record r;
    struct clst_err err;
    /* Non-ASCII and control bytes: refused before anything else. */
    char *line = rehash("{\"seq\":1,\"time\":\"t\",\"type\":\"x\",\"n\":\"\xc3\xa9\",\"prev\":\"" AUDIT_ZERO_HASH "\"");
    assert_int_equal(parse(line, &r, &err), CLST_E_MALFORMED);
    assert_non_null(strstr(err.msg, "printable ASCII"));
    free(line);
    line = rehash("{\"seq\":1,\"time\":\"t\",\"type\":\"x\",\"n\":\"\t\",\"prev\":\"" AUDIT_ZERO_HASH "\"");
    assert_int_equal(parse(line, &r, &err), CLST_E_MALFORMED);
    free(line);
    /* Trailing space after the closing brace. */
    line = make_line(1, "\"type\":\"x\"", AUDIT_ZERO_HASH, NULL);
    size_t n = strlen(line);
    char *sp = malloc(n + 2);
    memcpy(sp, line, n);
    sp[n] = ' ';
    sp[n + 1] = '\0';
    assert_int_equal(parse(sp, &r, &err), CLST_E_MALFORMED);
    free(sp);
    free(line);
    /* Empty, too long, not JSON, NULL arguments. */
    assert_int_equal(clst_audit_record_parse("", 0, &r, &err), CLST_E_MALFORMED);
    char *big = malloc(CLST_AUDIT_LINE_MAX + 1);
    memset(big, 'a', CLST_AUDIT_LINE_MAX);
    big[CLST_AUDIT_LINE_MAX] = '\0';
    assert_int_equal(clst_audit_record_parse(big, CLST_AUDIT_LINE_MAX, &r, &err), CLST_E_LIMIT);
    free(big);
    line = rehash("{\"seq\":1,\"time\":\"t\",\"type\":\"x\",\"prev\":\"" AUDIT_ZERO_HASH "\",");
    assert_int_equal(parse(line, &r, &err), CLST_E_MALFORMED);
    free(line);
    assert_int_equal(clst_audit_record_parse(NULL, 0, &r, &err), CLST_E_INVAL);
    /* A record too large to format is refused, not truncated. */
    struct clst_buf b;
    char hash[CLST_AUDIT_HASH_HEX_SIZE];
    char *members = malloc(CLST_AUDIT_LINE_MAX + 32);
    snprintf(members, 16, "\"type\":\"");
    memset(members + 8, 'x', CLST_AUDIT_LINE_MAX);
    snprintf(members + 8 + CLST_AUDIT_LINE_MAX, 4, "\"");
    clst_buf_init(&b, 1 << 20);
    assert_int_equal(audit_format_line(&b, 1, "t", members, AUDIT_ZERO_HASH, NULL, hash),
                     CLST_E_LIMIT);
    assert_int_equal(b.size, 0);
    clst_buf_cleanup(&b);
    free(members);
}

static void
test_file_names(void **state)
{
    (void)state;
    uint64_t seq = 0;
    assert_true(audit_file_name_parse("audit-00000000000000000001.jsonl", &seq));
    assert_int_equal(seq, 1);
    assert_true(audit_file_name_parse("audit-00000000000000012345.jsonl", &seq));
    assert_int_equal(seq, 12345);
    assert_false(audit_file_name_parse("audit-00000000000000000000.jsonl", &seq));
    assert_false(audit_file_name_parse("audit-0000000000000000001.jsonl", &seq));
    assert_false(audit_file_name_parse("audit-0000000000000000000a.jsonl", &seq));
    assert_false(audit_file_name_parse("audit-00000000000000000001.jsonl.tmp", &seq));
    assert_false(audit_file_name_parse("audit-00000000000000000001.json", &seq));
    assert_false(audit_file_name_parse("xudit-00000000000000000001.jsonl", &seq));
    assert_false(audit_file_name_parse("audit-99999999999999999999.jsonl", &seq)); /* > 2^64 */
}

static void
test_time_format(void **state)
{
    (void)state;
    char t[32];
    audit_time_now(t);
    assert_int_equal(strlen(t), 24);
    assert_int_equal(t[10], 'T');
    assert_int_equal(t[19], '.');
    assert_int_equal(t[23], 'Z');
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_and_parse),
        cmocka_unit_test(test_every_byte_flip_fails),
        cmocka_unit_test(test_structure_rules),
        cmocka_unit_test(test_bytes_and_limits),
        cmocka_unit_test(test_file_names),
        cmocka_unit_test(test_time_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
