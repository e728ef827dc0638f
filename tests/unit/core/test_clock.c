/*
 * Unit tests for src/core/clock.c: fixed and system clocks, the monotonic counter,
 * clst_time_parse (RFC 3339 UTC or decimal Unix time), clst_time_format and clst_time_from_civil,
 * with the C library's gmtime_r as an independent reference for the calendar arithmetic.
 *
 * Decided here (what the implementation does and RFC 3339 allows): lower-case 't' and 'z' are
 * accepted (RFC 3339 §5.6 note); fractional seconds are accepted and dropped; a leap second
 * (":60") is accepted and counted as :59, since Unix time has no leap seconds. Decimal Unix times
 * are non-negative; negative times are written as dates.
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include "test_util.h"

#define T_MAX    INT64_C(253402300799) /* 9999-12-31T23:59:59Z */
#define T_MIN    INT64_C(-62135596800) /* 0001-01-01T00:00:00Z */
#define SENTINEL INT64_C(0x5a5a5a5a5a5a5a5a)

static void
parse_ok(const char *s, int64_t expect)
{
    int64_t t = SENTINEL;
    struct clst_err err;
    clst_err_clear(&err);
    enum clst_status rc = clst_time_parse(s, &t, &err);
    if (rc != CLST_OK) {
        fail_msg("\"%s\": %s", s, err.msg);
    }
    if (t != expect) {
        fail_msg("\"%s\": got %lld, want %lld", s, (long long)t, (long long)expect);
    }
    t = SENTINEL;
    assert_int_equal(clst_time_parse(s, &t, NULL), CLST_OK);
    assert_true(t == expect);
}

static void
parse_bad(const char *s, enum clst_status expect)
{
    int64_t t = SENTINEL;
    struct clst_err err;
    clst_err_clear(&err);
    enum clst_status rc = clst_time_parse(s, &t, &err);
    if (rc != expect) {
        fail_msg("\"%s\": got %d (%s), want %d", s ? s : "(null)", rc, err.msg, expect);
    }
    assert_int_equal(err.status, expect);
    assert_true(strlen(err.msg) > 0);
    assert_true(t == SENTINEL); /* out written only on success */
    assert_int_equal(clst_time_parse(s, &t, NULL), expect);
    assert_true(t == SENTINEL);
}

static void
format_is(int64_t t, const char *expect)
{
    char out[32];
    memset(out, 'Q', sizeof(out));
    enum clst_status rc = clst_time_format(t, out, sizeof(out));
    if (rc != CLST_OK) {
        fail_msg("format(%lld) failed: %d", (long long)t, rc);
    }
    assert_string_equal(out, expect);
}

static void
test_fixed_clock(void **state)
{
    (void)state;
    static const int64_t values[] = {0, 1, -1, 1714564800, T_MAX, INT64_MIN, INT64_MAX};
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        struct clst_clock c;
        memset(&c, 0xa5, sizeof(c));
        clst_clock_fixed_init(&c, values[i]);
        assert_true(clst_clock_now(&c) == values[i]);
        assert_true(clst_clock_now(&c) == values[i]); /* it does not move */
    }
    /* Two fixed clocks are independent. */
    struct clst_clock a, b;
    clst_clock_fixed_init(&a, 10);
    clst_clock_fixed_init(&b, 20);
    assert_int_equal(clst_clock_now(&a), 10);
    assert_int_equal(clst_clock_now(&b), 20);
}

static void
test_system_clock(void **state)
{
    (void)state;
    const struct clst_clock *c = clst_clock_system();
    assert_non_null(c);
    assert_ptr_equal(c, clst_clock_system());
    int64_t before = (int64_t)time(NULL);
    int64_t now = clst_clock_now(c);
    int64_t after = (int64_t)time(NULL);
    assert_true(now >= before - 1 && now <= after + 1);
    assert_true(now > INT64_C(1577836800)); /* after 2020: a real wall clock */
}

static void
test_monotonic(void **state)
{
    (void)state;
    uint64_t t0 = clst_monotonic_ns();
    assert_true(t0 > 0);
    uint64_t prev = t0;
    for (int i = 0; i < 1000; i++) {
        uint64_t t = clst_monotonic_ns();
        assert_true(t >= prev);
        prev = t;
    }
    struct timespec ts = {0, 2000000}; /* 2 ms */
    nanosleep(&ts, NULL);
    uint64_t t1 = clst_monotonic_ns();
    assert_true(t1 - t0 >= 2000000u);
    assert_true(t1 - t0 < UINT64_C(60) * 1000000000u);
}

static void
test_parse_rfc3339_valid(void **state)
{
    (void)state;
    parse_ok("1970-01-01T00:00:00Z", 0);
    parse_ok("2024-05-01T12:00:00Z", 1714564800);
    parse_ok("2024-05-01T12:00:00.5Z", 1714564800);
    parse_ok("2024-05-01T12:00:00.999999999Z", 1714564800); /* dropped, not rounded */
    parse_ok("2024-05-01T12:00:00.000000000000000000001Z", 1714564800);
    parse_ok("2024-05-01t12:00:00z", 1714564800);
    parse_ok("2000-02-29T00:00:00Z", 951782400); /* leap day, century divisible by 400 */
    parse_ok("2024-02-29T23:59:59Z", 1709251199);
    parse_ok("2038-01-19T03:14:07Z", INT64_C(2147483647));
    parse_ok("2038-01-19T03:14:08Z", INT64_C(2147483648)); /* past 32-bit time_t */
    parse_ok("9999-12-31T23:59:59Z", T_MAX);
    parse_ok("0001-01-01T00:00:00Z", T_MIN);
    parse_ok("1969-12-31T23:59:59Z", -1);
    parse_ok("1900-01-01T00:00:00Z", INT64_C(-2208988800));
    parse_ok("2016-12-31T23:59:60Z", INT64_C(1483228799)); /* leap second counted as :59 */
    parse_ok("2024-12-31T23:59:59Z", INT64_C(1735689599));
    parse_ok("2024-01-31T00:00:00Z", INT64_C(1706659200));
}

static void
test_parse_rfc3339_invalid_dates(void **state)
{
    (void)state;
    static const char *const bad[] = {
        /* Feb 29 outside leap years (2023; 1900 and 2100: centuries not divisible by 400) */
        "2023-02-29T00:00:00Z",
        "1900-02-29T00:00:00Z",
        "2100-02-29T00:00:00Z",
        /* days past the end of the month */
        "2024-02-30T00:00:00Z",
        "2024-04-31T00:00:00Z",
        "2024-06-31T00:00:00Z",
        "2024-09-31T00:00:00Z",
        "2024-11-31T00:00:00Z",
        "2024-01-32T00:00:00Z",
        /* month 13, month and day 0 */
        "2024-13-01T00:00:00Z",
        "2024-00-01T00:00:00Z",
        "2024-99-01T00:00:00Z",
        "2024-01-00T00:00:00Z",
        /* hour 24, minute 60, second 61 */
        "2024-01-01T24:00:00Z",
        "2024-01-01T99:00:00Z",
        "2024-01-01T00:60:00Z",
        "2024-01-01T00:00:61Z",
        "2024-01-01T00:00:99Z",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        parse_bad(bad[i], CLST_E_MALFORMED);
    }
}

static void
test_parse_rfc3339_invalid_syntax(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "2024-05-01T12:00:00",       /* missing Z */
        "2024-05-01T12:00:00+01:00", /* offsets are rejected: UTC only */
        "2024-05-01T12:00:00-05:00",
        "2024-05-01T12:00:00+00:00",
        "2024-05-01T12:00:00-00:00",
        "2024-05-01T12:00:00Z ", /* trailing characters */
        "2024-05-01T12:00:00ZZ",
        "2024-05-01T12:00:00Zx",
        " 2024-05-01T12:00:00Z", /* leading space */
        "2024-05-01 12:00:00Z",  /* space instead of T */
        "2024-05-01_12:00:00Z",
        "2024-05-01", /* date only */
        "2024-05-01T",
        "2024-05-01T12:00Z", /* no seconds */
        "2024-05-01T12Z",
        "2024-5-01T12:00:00Z", /* short fields */
        "2024-05-1T12:00:00Z",
        "2024-05-01T1:00:00Z",
        "2024-05-01T12:0:00Z",
        "2024-05-01T12:00:0Z",
        "24-05-01T12:00:00Z",
        "12024-05-01T12:00:00Z", /* 5-digit year */
        "-2024-05-01T12:00:00Z",
        "+2024-05-01T12:00:00Z",
        "2024/05/01T12:00:00Z",
        "2024-05-01T12.00.00Z",
        "2024-05-01T12:00:00.Z", /* a dot needs digits */
        "2024-05-01T12:00:00.5",
        "2024-05-01T12:00:00,5Z",
        "2024-05-01T12:00:00.5.5Z",
        "2024-05-01T12:00:00.x5Z",
        "2024-O5-01T12:00:00Z", /* letter O */
        "2024-05-01T12:00:00\nZ",
        "T",
        "-",
        "--",
        "-1", /* negative Unix time: write it as a date */
        "-0",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        parse_bad(bad[i], CLST_E_MALFORMED);
    }
    parse_bad("", CLST_E_MALFORMED);
    parse_bad(NULL, CLST_E_MALFORMED);
}

static void
test_parse_unix_time(void **state)
{
    (void)state;
    parse_ok("0", 0);
    parse_ok("1", 1);
    parse_ok("1714564800", 1714564800);
    parse_ok("2147483648", INT64_C(2147483648));
    parse_ok("253402300799", T_MAX);
    parse_ok("0001714564800", 1714564800);   /* leading zeros, as clst_parse_i64 decides */
    parse_bad("253402300800", CLST_E_LIMIT); /* past 9999-12-31T23:59:59Z */
    parse_bad("9223372036854775808", CLST_E_LIMIT);
    static const char *const bad[] = {"+5", " 5", "5 ", "1.5", "1e9", "0x10", "abc", "12:00"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        parse_bad(bad[i], CLST_E_MALFORMED);
    }
}

static void
test_parse_error_message(void **state)
{
    (void)state;
    struct clst_err err;
    int64_t t;
    assert_int_equal(clst_time_parse("2024-05-01T12:00:00+01:00", &t, &err), CLST_E_MALFORMED);
    assert_non_null(strstr(err.msg, "2024-05-01T12:00:00+01:00"));
    assert_non_null(strstr(err.msg, "Z"));
    assert_int_equal(clst_time_parse("2023-02-29T00:00:00Z", &t, &err), CLST_E_MALFORMED);
    assert_non_null(strstr(err.msg, "2023-02-29T00:00:00Z"));
    assert_int_equal(clst_time_parse("", &t, &err), CLST_E_MALFORMED);
    assert_non_null(strstr(err.msg, "2024-05-01T12:00:00Z")); /* says what to write instead */
}

static void
test_format_known(void **state)
{
    (void)state;
    format_is(0, "1970-01-01T00:00:00Z");
    format_is(951782400, "2000-02-29T00:00:00Z");
    format_is(INT64_C(2147483647), "2038-01-19T03:14:07Z");
    format_is(INT64_C(2147483648), "2038-01-19T03:14:08Z");
    format_is(T_MAX, "9999-12-31T23:59:59Z");
    format_is(T_MIN, "0001-01-01T00:00:00Z");
    format_is(-1, "1969-12-31T23:59:59Z");
    format_is(-86400, "1969-12-31T00:00:00Z");
    format_is(-86401, "1969-12-30T23:59:59Z");
    format_is(INT64_C(-2208988800), "1900-01-01T00:00:00Z");
    format_is(INT64_C(-2203891200), "1900-03-01T00:00:00Z"); /* 1900 had no Feb 29 */
    format_is(1714564800, "2024-05-01T12:00:00Z");
}

static void
test_format_limits(void **state)
{
    (void)state;
    char out[32];
    memset(out, 'Q', sizeof(out));
    assert_int_equal(clst_time_format(T_MAX + 1, out, sizeof(out)), CLST_E_LIMIT);
    assert_int_equal(clst_time_format(T_MIN - 1, out, sizeof(out)), CLST_E_LIMIT);
    assert_int_equal(clst_time_format(INT64_MAX, out, sizeof(out)), CLST_E_LIMIT);
    assert_int_equal(clst_time_format(INT64_MIN, out, sizeof(out)), CLST_E_LIMIT);
    assert_int_equal(out[0], 'Q');
    /* 20 characters plus the NUL: 21 is enough, 20 is not. */
    char exact[21];
    assert_int_equal(clst_time_format(0, exact, sizeof(exact)), CLST_OK);
    assert_string_equal(exact, "1970-01-01T00:00:00Z");
    assert_int_equal(clst_time_format(0, out, 20), CLST_E_LIMIT);
    assert_int_equal(clst_time_format(0, out, 1), CLST_E_LIMIT);
}

static void
round_trip(int64_t t)
{
    char out[32];
    assert_int_equal(clst_time_format(t, out, sizeof(out)), CLST_OK);
    parse_ok(out, t);
}

static void
test_round_trips(void **state)
{
    (void)state;
    static const int64_t fixed[] = {
        0,
        951782400,
        INT64_C(2147483648),
        T_MAX,
        T_MIN,
        -1,
        -86400,
        -86401,
        INT64_C(-2208988800),
        INT64_C(-12219292800) /* 1582-10-15 */,
        1709251199,
        68169600,
    };
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        round_trip(fixed[i]);
    }
}

/* Against gmtime_r: every day from 1600 to 2500 at a varying second of the day, plus a
 * pseudo-random sample over the whole supported range. */
static void
check_against_gmtime(int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    assert_non_null(gmtime_r(&tt, &tm));
    char expect[64];
    snprintf(expect, sizeof(expect), "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    char out[32];
    assert_int_equal(clst_time_format(t, out, sizeof(out)), CLST_OK);
    if (strcmp(out, expect) != 0) {
        fail_msg("format(%lld) = %s, gmtime says %s", (long long)t, out, expect);
    }
    int64_t back = SENTINEL;
    assert_int_equal(clst_time_parse(expect, &back, NULL), CLST_OK);
    if (back != t) {
        fail_msg("parse(%s) = %lld, want %lld", expect, (long long)back, (long long)t);
    }
    int64_t civil = clst_time_from_civil((int64_t)tm.tm_year + 1900, (int64_t)tm.tm_mon + 1,
                                         tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    if (civil != t) {
        fail_msg("from_civil(%s) = %lld, want %lld", expect, (long long)civil, (long long)t);
    }
}

static void
test_against_gmtime(void **state)
{
    (void)state;
    assert_true(sizeof(time_t) >= 8);
    const int64_t start = INT64_C(-11676096000); /* 1600-01-01 */
    const int64_t end = INT64_C(16725225600);    /* 2500-01-01 */
    int64_t sec = 0;
    for (int64_t day = start; day < end; day += 86400) {
        sec = (sec * 7919 + 13) % 86400;
        check_against_gmtime(day + sec);
    }
    uint64_t s = 0x243f6a8885a308d3u;
    for (int i = 0; i < 20000; i++) {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        uint64_t r = s * 0x2545f4914f6cdd1du;
        int64_t t = T_MIN + (int64_t)(r % (uint64_t)(T_MAX - T_MIN + 1));
        check_against_gmtime(t);
    }
    check_against_gmtime(T_MIN);
    check_against_gmtime(T_MAX);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixed_clock),
        cmocka_unit_test(test_system_clock),
        cmocka_unit_test(test_monotonic),
        cmocka_unit_test(test_parse_rfc3339_valid),
        cmocka_unit_test(test_parse_rfc3339_invalid_dates),
        cmocka_unit_test(test_parse_rfc3339_invalid_syntax),
        cmocka_unit_test(test_parse_unix_time),
        cmocka_unit_test(test_parse_error_message),
        cmocka_unit_test(test_format_known),
        cmocka_unit_test(test_format_limits),
        cmocka_unit_test(test_round_trips),
        cmocka_unit_test(test_against_gmtime),
    };
    return cmocka_run_group_tests_name("core/clock", tests, NULL, NULL);
}
