/* Unit tests for src/core/err.c: status strings, clst_err_set/prefix/clear, truncation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_util.h"

static const enum clst_status all_statuses[] = {
    CLST_OK,      CLST_E_INVAL, CLST_E_MALFORMED, CLST_E_VERIFY,   CLST_E_DENIED,   CLST_E_CRYPTO,
    CLST_E_NOMEM, CLST_E_IO,    CLST_E_LIMIT,     CLST_E_NOTFOUND, CLST_E_CONFLICT, CLST_E_INTERNAL,
};
#define STATUS_COUNT (sizeof(all_statuses) / sizeof(all_statuses[0]))

static void
fill(char *s, char c, size_t n)
{
    memset(s, c, n);
    s[n] = '\0';
}

static void
test_status_str_every_value(void **state)
{
    (void)state;
    /* The enum is dense from CLST_OK to CLST_E_INTERNAL: the table above must cover all of it. */
    assert_int_equal(STATUS_COUNT, (size_t)CLST_E_INTERNAL + 1);
    for (size_t i = 0; i < STATUS_COUNT; i++) {
        const char *s = clst_status_str(all_statuses[i]);
        assert_non_null(s);
        assert_true(strlen(s) > 0);
        assert_string_not_equal(s, "unknown status");
        /* Every status has its own text, so a person can tell them apart. */
        for (size_t j = 0; j < i; j++) {
            assert_string_not_equal(s, clst_status_str(all_statuses[j]));
        }
    }
    /* The strings the header documents. */
    assert_string_equal(clst_status_str(CLST_OK), "ok");
    assert_string_equal(clst_status_str(CLST_E_INVAL), "invalid argument");
    assert_string_equal(clst_status_str(CLST_E_MALFORMED), "malformed input");
    assert_string_equal(clst_status_str(CLST_E_LIMIT), "limit exceeded");
}

static void
test_status_str_out_of_range(void **state)
{
    (void)state;
    const char *s = clst_status_str((enum clst_status)(CLST_E_INTERNAL + 1));
    assert_non_null(s);
    assert_string_equal(s, "unknown status");
    s = clst_status_str((enum clst_status)1000);
    assert_non_null(s);
    assert_string_equal(s, "unknown status");
}

static void
test_err_set_basic(void **state)
{
    (void)state;
    struct clst_err err;
    memset(&err, 0x5a, sizeof(err));
    enum clst_status rc = clst_err_set(&err, CLST_E_MALFORMED, "bad %s at offset %d", "tag", 42);
    assert_int_equal(rc, CLST_E_MALFORMED);
    assert_int_equal(err.status, CLST_E_MALFORMED);
    assert_string_equal(err.msg, "bad tag at offset 42");

    /* A second set replaces both status and message. */
    rc = clst_err_set(&err, CLST_E_IO, "x");
    assert_int_equal(rc, CLST_E_IO);
    assert_int_equal(err.status, CLST_E_IO);
    assert_string_equal(err.msg, "x");

    /* Setting CLST_OK is allowed and returned as is. */
    assert_int_equal(clst_err_set(&err, CLST_OK, "fine"), CLST_OK);
    assert_int_equal(err.status, CLST_OK);
}

static void
test_err_set_null_err(void **state)
{
    (void)state;
    for (size_t i = 0; i < STATUS_COUNT; i++) {
        assert_int_equal(clst_err_set(NULL, all_statuses[i], "ignored %d", 1), all_statuses[i]);
    }
}

static void
test_err_set_exact_fit_not_truncated(void **state)
{
    (void)state;
    char text[CLST_ERR_MSG_SIZE];
    fill(text, 'a', CLST_ERR_MSG_SIZE - 1); /* 255 characters: fits with its NUL */
    struct clst_err err;
    clst_err_set(&err, CLST_E_INVAL, "%s", text);
    assert_int_equal(strlen(err.msg), CLST_ERR_MSG_SIZE - 1);
    assert_string_equal(err.msg, text);
}

static void
test_err_set_truncated_ends_in_dots(void **state)
{
    (void)state;
    static const size_t lengths[] = {CLST_ERR_MSG_SIZE, CLST_ERR_MSG_SIZE + 1, 300, 5000};
    char text[5001];
    for (size_t k = 0; k < sizeof(lengths) / sizeof(lengths[0]); k++) {
        fill(text, 'b', lengths[k]);
        struct clst_err err;
        memset(&err, 0, sizeof(err));
        assert_int_equal(clst_err_set(&err, CLST_E_LIMIT, "%s", text), CLST_E_LIMIT);
        size_t len = strlen(err.msg);
        assert_int_equal(len, CLST_ERR_MSG_SIZE - 1);
        assert_memory_equal(err.msg + len - 3, "...", 3);
        /* What is kept is the start of the message, unaltered. */
        for (size_t i = 0; i < len - 3; i++) {
            assert_int_equal(err.msg[i], 'b');
        }
    }
}

static void
test_err_prefix(void **state)
{
    (void)state;
    struct clst_err err;
    clst_err_set(&err, CLST_E_VERIFY, "signature does not match");
    assert_int_equal(clst_err_prefix(&err, "token %d", 3), CLST_E_VERIFY);
    assert_string_equal(err.msg, "token 3: signature does not match");
    assert_int_equal(err.status, CLST_E_VERIFY);

    /* Prefixes nest outward. */
    assert_int_equal(clst_err_prefix(&err, "release"), CLST_E_VERIFY);
    assert_string_equal(err.msg, "release: token 3: signature does not match");
}

static void
test_err_prefix_empty_message_uses_status(void **state)
{
    (void)state;
    struct clst_err err;
    clst_err_set(&err, CLST_E_MALFORMED, "%s", "");
    assert_int_equal(clst_err_prefix(&err, "quote"), CLST_E_MALFORMED);
    assert_string_equal(err.msg, "quote: malformed input");
}

static void
test_err_prefix_null_err(void **state)
{
    (void)state;
    /* Never success: callers write `return clst_err_prefix(err, ...)` on failure paths. */
    assert_int_equal(clst_err_prefix(NULL, "context %d", 1), CLST_E_INTERNAL);
}

static void
test_err_prefix_truncates(void **state)
{
    (void)state;
    char text[CLST_ERR_MSG_SIZE];
    fill(text, 'c', 250);
    struct clst_err err;
    clst_err_set(&err, CLST_E_IO, "%s", text);
    assert_int_equal(clst_err_prefix(&err, "reading file"), CLST_E_IO);
    size_t len = strlen(err.msg);
    assert_int_equal(len, CLST_ERR_MSG_SIZE - 1);
    assert_memory_equal(err.msg, "reading file: ccc", 17);
    assert_memory_equal(err.msg + len - 3, "...", 3);

    /* A prefix that alone overflows the message is cut too, still ending in "...". */
    char big[400];
    fill(big, 'p', 399);
    clst_err_set(&err, CLST_E_IO, "short");
    assert_int_equal(clst_err_prefix(&err, "%s", big), CLST_E_IO);
    len = strlen(err.msg);
    assert_int_equal(len, CLST_ERR_MSG_SIZE - 1);
    assert_int_equal(err.msg[0], 'p');
    assert_memory_equal(err.msg + len - 3, "...", 3);
    assert_null(strstr(err.msg, "short"));
}

static void
test_err_prefix_fits_exactly(void **state)
{
    (void)state;
    /* "ab: " + 251 chars = 255 characters: fits, no "...". */
    char text[CLST_ERR_MSG_SIZE];
    fill(text, 'd', 251);
    struct clst_err err;
    clst_err_set(&err, CLST_E_IO, "%s", text);
    clst_err_prefix(&err, "ab");
    assert_int_equal(strlen(err.msg), CLST_ERR_MSG_SIZE - 1);
    assert_memory_equal(err.msg, "ab: ", 4);
    assert_int_equal(err.msg[CLST_ERR_MSG_SIZE - 2], 'd');
}

static void
test_err_clear(void **state)
{
    (void)state;
    struct clst_err err;
    clst_err_set(&err, CLST_E_DENIED, "not allowed");
    clst_err_clear(&err);
    assert_int_equal(err.status, CLST_OK);
    assert_string_equal(err.msg, "");
    clst_err_clear(NULL); /* accepted, does nothing */

    /* After a clear, a prefix describes the status alone. */
    clst_err_prefix(&err, "ctx");
    assert_string_equal(err.msg, "ctx: ok");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_str_every_value),
        cmocka_unit_test(test_status_str_out_of_range),
        cmocka_unit_test(test_err_set_basic),
        cmocka_unit_test(test_err_set_null_err),
        cmocka_unit_test(test_err_set_exact_fit_not_truncated),
        cmocka_unit_test(test_err_set_truncated_ends_in_dots),
        cmocka_unit_test(test_err_prefix),
        cmocka_unit_test(test_err_prefix_empty_message_uses_status),
        cmocka_unit_test(test_err_prefix_null_err),
        cmocka_unit_test(test_err_prefix_truncates),
        cmocka_unit_test(test_err_prefix_fits_exactly),
        cmocka_unit_test(test_err_clear),
    };
    return cmocka_run_group_tests_name("core/err", tests, NULL, NULL);
}
