/* Unit tests for src/core/log.c: level parsing, filtering, line format and truncation.
 * stderr is redirected (dup2) to a temporary file around each log call and read back. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include <cmocka.h>

#include "test_util.h"

/* The line buffer in log.c is 1024 bytes: at most 1022 characters of text, then '\n'. */
#define LINE_TEXT_MAX 1022

static const char *const names[] = {"error", "warn", "info", "debug"};

struct capture {
    int saved_fd;
    FILE *tmp;
};

/* No assertion may run between begin and end: cmocka would print into the file. */
static int
capture_begin(struct capture *c)
{
    fflush(stderr);
    c->tmp = tmpfile();
    if (c->tmp == NULL) {
        return -1;
    }
    c->saved_fd = dup(STDERR_FILENO);
    if (c->saved_fd < 0 || dup2(fileno(c->tmp), STDERR_FILENO) < 0) {
        fclose(c->tmp);
        return -1;
    }
    return 0;
}

/* Restores stderr and returns what was written (NUL-terminated, at most cap - 1 bytes). */
static size_t
capture_end(struct capture *c, char *out, size_t cap)
{
    fflush(stderr);
    (void)dup2(c->saved_fd, STDERR_FILENO);
    close(c->saved_fd);
    rewind(c->tmp);
    size_t n = fread(out, 1, cap - 1, c->tmp);
    out[n] = '\0';
    fclose(c->tmp);
    return n;
}

static char captured[8192];

/* Logs `msg` at `level` (via "%s") and returns what reached stderr. */
static size_t
log_and_capture(enum clst_log_level level, const char *msg)
{
    struct capture c;
    assert_int_equal(capture_begin(&c), 0);
    clst_log(level, "%s", msg);
    return capture_end(&c, captured, sizeof(captured));
}

static int
reset_level(void **state)
{
    (void)state;
    clst_log_set_level(CLST_LOG_WARN);
    return 0;
}

/* Must run first: nothing has changed the level yet. */
static void
test_default_level_is_warn(void **state)
{
    (void)state;
    assert_int_equal(clst_log_get_level(), CLST_LOG_WARN);
}

static void
test_level_parse_valid(void **state)
{
    (void)state;
    for (int i = 0; i < 4; i++) {
        enum clst_log_level lv = (enum clst_log_level)99;
        assert_int_equal(clst_log_level_parse(names[i], &lv), CLST_OK);
        assert_int_equal(lv, i);
    }
    enum clst_log_level lv;
    assert_int_equal(clst_log_level_parse("debug", &lv), CLST_OK);
    assert_int_equal(lv, CLST_LOG_DEBUG);
    assert_int_equal(clst_log_level_parse("error", &lv), CLST_OK);
    assert_int_equal(lv, CLST_LOG_ERROR);
}

static void
test_level_parse_invalid(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",        "ERROR", "Error", "WARN",  "warning", "information", "deb", "debug ", " debug",
        "debug\n", "0",     "3",     "trace", "fatal",   "err",         "in",  "infoo",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        enum clst_log_level lv = CLST_LOG_INFO;
        assert_int_equal(clst_log_level_parse(bad[i], &lv), CLST_E_INVAL);
        assert_int_equal(lv, CLST_LOG_INFO); /* out written only on success */
    }
}

static void
test_set_get(void **state)
{
    (void)state;
    for (int i = 0; i < 4; i++) {
        clst_log_set_level((enum clst_log_level)i);
        assert_int_equal(clst_log_get_level(), i);
    }
}

static void
test_filtering(void **state)
{
    (void)state;
    char expect[128];
    for (int threshold = 0; threshold < 4; threshold++) {
        clst_log_set_level((enum clst_log_level)threshold);
        for (int lv = 0; lv < 4; lv++) {
            size_t n = log_and_capture((enum clst_log_level)lv, "message body");
            if (lv <= threshold) {
                snprintf(expect, sizeof(expect), "cloister[%s]: message body\n", names[lv]);
                assert_string_equal(captured, expect);
                assert_int_equal(n, strlen(expect));
            } else {
                assert_int_equal(n, 0);
            }
        }
    }
}

static void
test_macros_and_format_arguments(void **state)
{
    (void)state;
    clst_log_set_level(CLST_LOG_DEBUG);
    struct capture c;
    assert_int_equal(capture_begin(&c), 0);
    clst_log_error("key %s version %d", "k1", 7);
    clst_log_warn("w");
    clst_log_info("i%%");
    clst_log_debug("%05u", 42u);
    capture_end(&c, captured, sizeof(captured));
    assert_string_equal(captured, "cloister[error]: key k1 version 7\n"
                                  "cloister[warn]: w\n"
                                  "cloister[info]: i%\n"
                                  "cloister[debug]: 00042\n");
}

static void
test_empty_message(void **state)
{
    (void)state;
    log_and_capture(CLST_LOG_ERROR, "");
    assert_string_equal(captured, "cloister[error]: \n");
}

static void
test_out_of_range_level_ignored(void **state)
{
    (void)state;
    clst_log_set_level(CLST_LOG_DEBUG);
    assert_int_equal(log_and_capture((enum clst_log_level)4, "x"), 0);
    assert_int_equal(log_and_capture((enum clst_log_level)1000, "x"), 0);
}

static size_t
count_char(const char *s, char c)
{
    size_t n = 0;
    for (; *s; s++) {
        n += (*s == c);
    }
    return n;
}

static void
test_long_message_cut_not_overflowed(void **state)
{
    (void)state;
    static char msg[5001];
    memset(msg, 'x', 5000);
    msg[5000] = '\0';
    size_t n = log_and_capture(CLST_LOG_ERROR, msg);
    assert_int_equal(n, LINE_TEXT_MAX + 1);
    assert_memory_equal(captured, "cloister[error]: ", 17);
    assert_int_equal(captured[n - 1], '\n');
    assert_int_equal(count_char(captured, '\n'), 1);
    for (size_t i = 17; i < n - 1; i++) {
        assert_int_equal(captured[i], 'x');
    }
}

static void
test_message_boundary(void **state)
{
    (void)state;
    /* "cloister[warn]: " is 16 characters, so 1006 characters of message fill the line. */
    const size_t prefix = strlen("cloister[warn]: ");
    const size_t fit = LINE_TEXT_MAX - prefix;
    static char msg[2048];
    for (size_t len = fit - 2; len <= fit + 2; len++) {
        for (size_t i = 0; i < len; i++) {
            msg[i] = (char)('a' + i % 26);
        }
        msg[len] = '\0';
        size_t n = log_and_capture(CLST_LOG_WARN, msg);
        size_t kept = len < fit ? len : fit;
        assert_int_equal(n, prefix + kept + 1);
        assert_memory_equal(captured, "cloister[warn]: ", prefix);
        assert_memory_equal(captured + prefix, msg, kept);
        assert_int_equal(captured[n - 1], '\n');
        assert_int_equal(count_char(captured, '\n'), 1);
    }
}

static void
test_one_line_per_call(void **state)
{
    (void)state;
    clst_log_set_level(CLST_LOG_INFO);
    struct capture c;
    assert_int_equal(capture_begin(&c), 0);
    for (int i = 0; i < 50; i++) {
        clst_log_info("line %d", i);
    }
    clst_log_debug("filtered");
    capture_end(&c, captured, sizeof(captured));
    assert_int_equal(count_char(captured, '\n'), 50);
    assert_null(strstr(captured, "filtered"));
    assert_non_null(strstr(captured, "cloister[info]: line 0\n"));
    assert_non_null(strstr(captured, "cloister[info]: line 49\n"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_level_is_warn),
        cmocka_unit_test(test_level_parse_valid),
        cmocka_unit_test(test_level_parse_invalid),
        cmocka_unit_test_teardown(test_set_get, reset_level),
        cmocka_unit_test_teardown(test_filtering, reset_level),
        cmocka_unit_test_teardown(test_macros_and_format_arguments, reset_level),
        cmocka_unit_test_teardown(test_empty_message, reset_level),
        cmocka_unit_test_teardown(test_out_of_range_level_ignored, reset_level),
        cmocka_unit_test_teardown(test_long_message_cut_not_overflowed, reset_level),
        cmocka_unit_test_teardown(test_message_boundary, reset_level),
        cmocka_unit_test_teardown(test_one_line_per_call, reset_level),
    };
    return cmocka_run_group_tests_name("core/log", tests, NULL, NULL);
}
