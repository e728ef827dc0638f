/*
 * Unit tests for src/core/intparse.c: clst_parse_u64 / clst_parse_i64. Whole-string base-10
 * parsing with bounds; syntax errors are CLST_E_MALFORMED, out-of-range values CLST_E_LIMIT.
 *
 * Decided here: leading zeros are accepted ("01" is 1, "-01" is -1, "000" is 0) and "-0" is 0
 * for the signed parser; the unsigned parser takes no sign at all, "-0" included.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_util.h"

#define U64_SENTINEL UINT64_C(0xdeadbeefdeadbeef)
#define I64_SENTINEL INT64_C(-0x1234567812345678)

static void
u64_ok(const char *s, uint64_t min, uint64_t max, uint64_t expect)
{
    uint64_t v = U64_SENTINEL;
    struct clst_err err;
    clst_err_clear(&err);
    enum clst_status rc = clst_parse_u64(s, min, max, &v, &err);
    if (rc != CLST_OK) {
        fail_msg("parse_u64(\"%s\") failed: %s", s, err.msg);
    }
    assert_true(v == expect);
    /* err is left alone on success. */
    assert_int_equal(err.status, CLST_OK);
    assert_string_equal(err.msg, "");
    v = U64_SENTINEL;
    assert_int_equal(clst_parse_u64(s, min, max, &v, NULL), CLST_OK);
    assert_true(v == expect);
}

static void
u64_bad(const char *s, uint64_t min, uint64_t max, enum clst_status expect)
{
    uint64_t v = U64_SENTINEL;
    struct clst_err err;
    clst_err_clear(&err);
    enum clst_status rc = clst_parse_u64(s, min, max, &v, &err);
    if (rc != expect) {
        fail_msg("parse_u64(\"%s\"): got %d, want %d", s ? s : "(null)", rc, expect);
    }
    assert_int_equal(err.status, expect);
    assert_true(strlen(err.msg) > 0);
    assert_true(v == U64_SENTINEL); /* out written only on success */
    assert_int_equal(clst_parse_u64(s, min, max, &v, NULL), expect);
    assert_true(v == U64_SENTINEL);
}

static void
i64_ok(const char *s, int64_t min, int64_t max, int64_t expect)
{
    int64_t v = I64_SENTINEL;
    struct clst_err err;
    clst_err_clear(&err);
    enum clst_status rc = clst_parse_i64(s, min, max, &v, &err);
    if (rc != CLST_OK) {
        fail_msg("parse_i64(\"%s\") failed: %s", s, err.msg);
    }
    assert_true(v == expect);
    assert_int_equal(err.status, CLST_OK);
    v = I64_SENTINEL;
    assert_int_equal(clst_parse_i64(s, min, max, &v, NULL), CLST_OK);
    assert_true(v == expect);
}

static void
i64_bad(const char *s, int64_t min, int64_t max, enum clst_status expect)
{
    int64_t v = I64_SENTINEL;
    struct clst_err err;
    clst_err_clear(&err);
    enum clst_status rc = clst_parse_i64(s, min, max, &v, &err);
    if (rc != expect) {
        fail_msg("parse_i64(\"%s\"): got %d, want %d", s ? s : "(null)", rc, expect);
    }
    assert_int_equal(err.status, expect);
    assert_true(strlen(err.msg) > 0);
    assert_true(v == I64_SENTINEL);
    assert_int_equal(clst_parse_i64(s, min, max, &v, NULL), expect);
    assert_true(v == I64_SENTINEL);
}

static void
test_u64_valid(void **state)
{
    (void)state;
    u64_ok("0", 0, UINT64_MAX, 0);
    u64_ok("1", 0, UINT64_MAX, 1);
    u64_ok("42", 0, 100, 42);
    u64_ok("01", 0, 100, 1); /* leading zeros accepted */
    u64_ok("000", 0, 100, 0);
    u64_ok("0000000000000000000000000000000007", 0, 100, 7);
    u64_ok("18446744073709551615", 0, UINT64_MAX, UINT64_MAX);
    u64_ok("4294967296", 0, UINT64_MAX, UINT64_C(4294967296));
}

static void
test_u64_bounds(void **state)
{
    (void)state;
    u64_ok("10", 10, 20, 10); /* min and max are inclusive */
    u64_ok("20", 10, 20, 20);
    u64_bad("9", 10, 20, CLST_E_LIMIT);
    u64_bad("21", 10, 20, CLST_E_LIMIT);
    u64_bad("0", 1, 65535, CLST_E_LIMIT);
    u64_ok("65535", 1, 65535, 65535);
    u64_bad("65536", 1, 65535, CLST_E_LIMIT);
    u64_ok("5", 5, 5, 5);
    u64_bad("4", 5, 5, CLST_E_LIMIT);
    u64_bad("6", 5, 5, CLST_E_LIMIT);
    u64_ok("18446744073709551615", UINT64_MAX, UINT64_MAX, UINT64_MAX);
    u64_bad("18446744073709551614", UINT64_MAX, UINT64_MAX, CLST_E_LIMIT);
    u64_bad("18446744073709551615", 0, UINT64_MAX - 1, CLST_E_LIMIT);
}

static void
test_u64_overflow(void **state)
{
    (void)state;
    u64_bad("18446744073709551616", 0, UINT64_MAX, CLST_E_LIMIT);
    u64_bad("18446744073709551617", 0, UINT64_MAX, CLST_E_LIMIT);
    u64_bad("99999999999999999999", 0, UINT64_MAX, CLST_E_LIMIT);
    u64_bad("340282366920938463463374607431768211456", 0, UINT64_MAX, CLST_E_LIMIT);
    u64_bad("000018446744073709551616", 0, UINT64_MAX, CLST_E_LIMIT);
}

static void
test_u64_syntax(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",    " 1",  "1 ", " ",        "+1",   "-1",    "-0",  "--1",   "1-",
        "a",   "1a",  "a1", "0x10",     "0X10", "1.0",   "1e3", "1,000", "1_000",
        "\t1", "1\n", "\n", "\xd9\xa1", "\xff", "12 34", "-",   "+",     "18446744073709551616x",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        u64_bad(bad[i], 0, UINT64_MAX, CLST_E_MALFORMED);
    }
    u64_bad(NULL, 0, UINT64_MAX, CLST_E_MALFORMED);
}

static void
test_i64_valid(void **state)
{
    (void)state;
    i64_ok("0", INT64_MIN, INT64_MAX, 0);
    i64_ok("-0", INT64_MIN, INT64_MAX, 0); /* decided: accepted as 0 */
    i64_ok("-0", 0, 0, 0);
    i64_ok("01", INT64_MIN, INT64_MAX, 1);
    i64_ok("-01", INT64_MIN, INT64_MAX, -1);
    i64_ok("-1", INT64_MIN, INT64_MAX, -1);
    i64_ok("123456789", INT64_MIN, INT64_MAX, 123456789);
    i64_ok("9223372036854775807", INT64_MIN, INT64_MAX, INT64_MAX);
    i64_ok("-9223372036854775808", INT64_MIN, INT64_MAX, INT64_MIN);
}

static void
test_i64_bounds(void **state)
{
    (void)state;
    i64_ok("-5", -5, 5, -5);
    i64_ok("5", -5, 5, 5);
    i64_bad("-6", -5, 5, CLST_E_LIMIT);
    i64_bad("6", -5, 5, CLST_E_LIMIT);
    i64_bad("-1", 0, 10, CLST_E_LIMIT);
    i64_ok("-9223372036854775808", INT64_MIN, INT64_MIN, INT64_MIN);
    i64_bad("-9223372036854775807", INT64_MIN, INT64_MIN, CLST_E_LIMIT);
    i64_ok("9223372036854775807", INT64_MAX, INT64_MAX, INT64_MAX);
    i64_bad("9223372036854775806", INT64_MAX, INT64_MAX, CLST_E_LIMIT);
    i64_bad("9223372036854775807", INT64_MIN, INT64_MAX - 1, CLST_E_LIMIT);
    i64_bad("-9223372036854775808", INT64_MIN + 1, INT64_MAX, CLST_E_LIMIT);
}

static void
test_i64_overflow(void **state)
{
    (void)state;
    i64_bad("9223372036854775808", INT64_MIN, INT64_MAX, CLST_E_LIMIT);
    i64_bad("-9223372036854775809", INT64_MIN, INT64_MAX, CLST_E_LIMIT);
    i64_bad("18446744073709551615", INT64_MIN, INT64_MAX, CLST_E_LIMIT);
    i64_bad("-99999999999999999999999", INT64_MIN, INT64_MAX, CLST_E_LIMIT);
    i64_bad("99999999999999999999999", INT64_MIN, INT64_MAX, CLST_E_LIMIT);
}

static void
test_i64_syntax(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",   " 1", "1 ", " -1", "-1 ",  "+1",    "+0",  "-",    "--1",  "-+1",  "+-1", "- 1",
        "1-", "a",  "1a", "-a",  "0x10", "-0x10", "1.5", "-1e3", "\t-1", "-1\n", "1 2", "+",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        i64_bad(bad[i], INT64_MIN, INT64_MAX, CLST_E_MALFORMED);
    }
    i64_bad(NULL, INT64_MIN, INT64_MAX, CLST_E_MALFORMED);
}

static void
test_error_messages(void **state)
{
    (void)state;
    struct clst_err err;
    uint64_t u;
    int64_t i;

    /* Syntax: the message quotes the input and says what was expected. */
    assert_int_equal(clst_parse_u64("12ab", 0, 100, &u, &err), CLST_E_MALFORMED);
    assert_non_null(strstr(err.msg, "'12ab'"));
    assert_non_null(strstr(err.msg, "decimal integer"));
    assert_int_equal(clst_parse_i64("x", -3, 3, &i, &err), CLST_E_MALFORMED);
    assert_non_null(strstr(err.msg, "'x'"));
    assert_non_null(strstr(err.msg, "decimal integer"));

    /* Range: the message gives the value and the accepted range, so a person can fix it. */
    assert_int_equal(clst_parse_u64("101", 1, 100, &u, &err), CLST_E_LIMIT);
    assert_non_null(strstr(err.msg, "101"));
    assert_non_null(strstr(err.msg, "out of range"));
    assert_non_null(strstr(err.msg, "1..100"));
    assert_int_equal(clst_parse_i64("-4", -3, 3, &i, &err), CLST_E_LIMIT);
    assert_non_null(strstr(err.msg, "-4"));
    assert_non_null(strstr(err.msg, "-3..3"));
    assert_int_equal(clst_parse_u64("18446744073709551616", 0, UINT64_MAX, &u, &err), CLST_E_LIMIT);
    assert_non_null(strstr(err.msg, "0..18446744073709551615"));
    assert_int_equal(clst_parse_i64("-9223372036854775809", INT64_MIN, INT64_MAX, &i, &err),
                     CLST_E_LIMIT);
    assert_non_null(strstr(err.msg, "-9223372036854775808..9223372036854775807"));

    /* A huge input still yields a bounded, terminated message. */
    static char big[2000];
    memset(big, '7', sizeof(big) - 1);
    assert_int_equal(clst_parse_u64(big, 0, UINT64_MAX, &u, &err), CLST_E_LIMIT);
    assert_int_equal(strlen(err.msg), CLST_ERR_MSG_SIZE - 1);
    big[500] = 'z';
    assert_int_equal(clst_parse_i64(big, INT64_MIN, INT64_MAX, &i, &err), CLST_E_MALFORMED);
    assert_true(strlen(err.msg) < CLST_ERR_MSG_SIZE);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_u64_valid),      cmocka_unit_test(test_u64_bounds),
        cmocka_unit_test(test_u64_overflow),   cmocka_unit_test(test_u64_syntax),
        cmocka_unit_test(test_i64_valid),      cmocka_unit_test(test_i64_bounds),
        cmocka_unit_test(test_i64_overflow),   cmocka_unit_test(test_i64_syntax),
        cmocka_unit_test(test_error_messages),
    };
    return cmocka_run_group_tests_name("core/intparse", tests, NULL, NULL);
}
