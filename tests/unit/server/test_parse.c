/* Unit tests for src/server/parse.c: request-target decoding and listen addresses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "server/server_int.h"
#include "test_util.h"

static struct clst_http_target *
target_new(void)
{
    struct clst_http_target *t = malloc(sizeof(*t));
    assert_non_null(t);
    return t;
}

static enum clst_status
parse(struct clst_http_target *t, const char *raw, struct clst_err *err)
{
    clst_err_clear(err);
    return clst_server_target_parse(raw, strlen(raw), t, err);
}

static void
test_root_and_segments(void **state)
{
    (void)state;
    struct clst_http_target *t = target_new();
    struct clst_err err;
    assert_int_equal(parse(t, "/", &err), CLST_OK);
    assert_int_equal(t->segment_count, 0);
    assert_int_equal(t->query_count, 0);

    assert_int_equal(parse(t, "/keys/k1/abc/encrypt", &err), CLST_OK);
    assert_int_equal(t->segment_count, 4);
    assert_string_equal(t->segments[0], "keys");
    assert_string_equal(t->segments[1], "k1");
    assert_string_equal(t->segments[2], "abc");
    assert_string_equal(t->segments[3], "encrypt");
    assert_int_equal(t->path_size, strlen("/keys/k1/abc/encrypt"));

    /* A trailing slash is an empty last segment (the SDKs' "latest version" form). */
    assert_int_equal(parse(t, "/keys/k1/", &err), CLST_OK);
    assert_int_equal(t->segment_count, 3);
    assert_string_equal(t->segments[2], "");
    /* Empty segments in the middle too. */
    assert_int_equal(parse(t, "/keys/k1//encrypt", &err), CLST_OK);
    assert_int_equal(t->segment_count, 4);
    assert_string_equal(t->segments[2], "");
    free(t);
}

static void
test_percent_decoding(void **state)
{
    (void)state;
    struct clst_http_target *t = target_new();
    struct clst_err err;
    assert_int_equal(parse(t, "/a%20b/%41%62%7e/x+y/%e2%82%AC", &err), CLST_OK);
    assert_int_equal(t->segment_count, 4);
    assert_string_equal(t->segments[0], "a b");
    assert_string_equal(t->segments[1], "Ab~");
    assert_string_equal(t->segments[2], "x+y"); /* '+' is literal in a path */
    assert_string_equal(t->segments[3], "\xe2\x82\xac");
    /* Sub-delims, ':' and '@' are allowed raw. */
    assert_int_equal(parse(t, "/a:b@c!$&'()*,;=", &err), CLST_OK);
    assert_string_equal(t->segments[0], "a:b@c!$&'()*,;=");
    free(t);
}

static void
test_bad_percent(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "/a%", "/a%4", "/a%G1", "/a%1G", "/%", "/%%41", "/a%4?x=1", "/?a=%", "/?a=%zz", "/?%2=1",
    };
    struct clst_http_target *t = target_new();
    struct clst_err err;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(parse(t, bad[i], &err), CLST_E_MALFORMED);
        assert_non_null(strstr(err.msg, "two hex digits"));
    }
    free(t);
}

static void
test_encoded_slash_and_dots(void **state)
{
    (void)state;
    struct clst_http_target *t = target_new();
    struct clst_err err;
    assert_int_equal(parse(t, "/keys/a%2Fb", &err), CLST_E_MALFORMED);
    assert_non_null(strstr(err.msg, "segment 2"));
    assert_non_null(strstr(err.msg, "'/'"));
    assert_int_equal(parse(t, "/keys/a%2fb", &err), CLST_E_MALFORMED);
    /* An encoded '/' is fine inside a query value. */
    assert_int_equal(parse(t, "/keys?next=a%2Fb", &err), CLST_OK);
    assert_string_equal(t->query[0].value, "a/b");

    static const char *const dots[] = {"/..",       "/.",   "/a/..",   "/a/./b",
                                       "/%2e%2e/x", "/%2E", "/a/.%2e", "/keys/%2E%2E/"};
    for (size_t i = 0; i < sizeof(dots) / sizeof(dots[0]); i++) {
        assert_int_equal(parse(t, dots[i], &err), CLST_E_MALFORMED);
        assert_non_null(strstr(err.msg, "'..'"));
    }
    /* Names that merely contain dots are fine. */
    assert_int_equal(parse(t, "/a.b/...", &err), CLST_OK);
    assert_string_equal(t->segments[1], "...");
    free(t);
}

static void
test_odd_characters(void **state)
{
    (void)state;
    struct clst_http_target *t = target_new();
    struct clst_err err;
    /* Raw characters outside RFC 3986, including bytes >= 0x80, must be encoded. */
    static const char *const raw_bad[] = {"/a b",   "/a\"b",        "/a<b", "/a\\b",   "/a{b}",
                                          "/a|b",   "/a^b",         "/a`b", "/a#frag", "/a\x7f",
                                          "/a\x01", "/caf\xc3\xa9", "/a[0]"};
    for (size_t i = 0; i < sizeof(raw_bad) / sizeof(raw_bad[0]); i++) {
        assert_int_equal(parse(t, raw_bad[i], &err), CLST_E_MALFORMED);
        assert_non_null(strstr(err.msg, "percent-encoded"));
    }
    /* Encoded control characters, NUL included, are refused after decoding. */
    static const char *const ctl[] = {"/a%00b", "/a%0a",   "/a%0D%0A", "/a%7F",
                                      "/a%1f",  "/?q=%00", "/?q=%0a",  "/?%09=1"};
    for (size_t i = 0; i < sizeof(ctl) / sizeof(ctl[0]); i++) {
        assert_int_equal(parse(t, ctl[i], &err), CLST_E_MALFORMED);
        assert_non_null(strstr(err.msg, "control character"));
    }
    /* Invalid UTF-8 after decoding: lone continuation, overlong '/', surrogate, > U+10FFFF,
     * truncated sequence. */
    static const char *const utf[] = {"/%80",    "/%C0%AF", "/%ED%A0%80", "/%F4%90%80%80",
                                      "/%E2%82", "/?q=%FF", "/%C3"};
    for (size_t i = 0; i < sizeof(utf) / sizeof(utf[0]); i++) {
        assert_int_equal(parse(t, utf[i], &err), CLST_E_MALFORMED);
        assert_non_null(strstr(err.msg, "UTF-8"));
    }
    /* Valid multi-byte UTF-8 passes (2, 3 and 4 bytes). */
    assert_int_equal(parse(t, "/%C3%A9/%E2%82%AC/%F0%9F%94%91", &err), CLST_OK);
    assert_string_equal(t->segments[2], "\xf0\x9f\x94\x91");
    free(t);
}

static void
test_not_origin_form(void **state)
{
    (void)state;
    struct clst_http_target *t = target_new();
    struct clst_err err;
    static const char *const bad[] = {"", "*", "keys", "https://example.com/keys", "?a=1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(parse(t, bad[i], &err), CLST_E_MALFORMED);
    }
    assert_int_equal(clst_server_target_parse(NULL, 0, t, &err), CLST_E_MALFORMED);
    free(t);
}

static void
test_query(void **state)
{
    (void)state;
    struct clst_http_target *t = target_new();
    struct clst_err err;
    assert_int_equal(
        parse(t, "/keys?api-version=7.4&maxresults=25&flag&empty=&x=a+b%2Bc%26d", &err), CLST_OK);
    assert_int_equal(t->segment_count, 1);
    assert_int_equal(t->path_size, 5);
    assert_int_equal(t->query_count, 5);
    assert_string_equal(t->query[0].key, "api-version");
    assert_string_equal(t->query[0].value, "7.4");
    assert_string_equal(t->query[1].key, "maxresults");
    assert_string_equal(t->query[1].value, "25");
    assert_string_equal(t->query[2].key, "flag");
    assert_string_equal(t->query[2].value, "");
    assert_string_equal(t->query[3].key, "empty");
    assert_string_equal(t->query[3].value, "");
    assert_string_equal(t->query[4].value, "a b+c&d");
    /* Empty pairs carry nothing; '?' and '/' are allowed in the query; '=' in a value stays. */
    assert_int_equal(parse(t, "/?&&a=1&&b=x=y&c=/?&", &err), CLST_OK);
    assert_int_equal(t->query_count, 3);
    assert_string_equal(t->query[1].value, "x=y");
    assert_string_equal(t->query[2].value, "/?");
    /* '?' alone: no parameters. */
    assert_int_equal(parse(t, "/healthz?", &err), CLST_OK);
    assert_int_equal(t->query_count, 0);
    assert_int_equal(t->segment_count, 1);
    /* Keys are decoded too. */
    assert_int_equal(parse(t, "/?api%2Dversion=1", &err), CLST_OK);
    assert_string_equal(t->query[0].key, "api-version");
    free(t);
}

static void
test_query_refusals(void **state)
{
    (void)state;
    struct clst_http_target *t = target_new();
    struct clst_err err;
    assert_int_equal(parse(t, "/?=v", &err), CLST_E_MALFORMED);
    assert_non_null(strstr(err.msg, "no name"));
    assert_int_equal(parse(t, "/?a=1&a=2", &err), CLST_E_MALFORMED);
    assert_non_null(strstr(err.msg, "repeats"));
    /* A repeat is detected after decoding. */
    assert_int_equal(parse(t, "/?a=1&%61=2", &err), CLST_E_MALFORMED);
    assert_int_equal(parse(t, "/?a=1#x", &err), CLST_E_MALFORMED);
    assert_int_equal(parse(t, "/?a=b c", &err), CLST_E_MALFORMED);
    free(t);
}

static void
test_limits(void **state)
{
    (void)state;
    struct clst_http_target *t = target_new();
    struct clst_err err;
    char buf[CLST_HTTP_URI_MAX + 64];
    /* Exactly CLST_HTTP_SEGMENT_MAX segments pass, one more fails. */
    size_t n = 0;
    for (int i = 0; i < CLST_HTTP_SEGMENT_MAX; i++) {
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "/s%d", i);
    }
    assert_int_equal(parse(t, buf, &err), CLST_OK);
    assert_int_equal(t->segment_count, CLST_HTTP_SEGMENT_MAX);
    snprintf(buf + n, sizeof(buf) - n, "/x");
    assert_int_equal(parse(t, buf, &err), CLST_E_LIMIT);

    n = (size_t)snprintf(buf, sizeof(buf), "/q?");
    for (int i = 0; i < CLST_HTTP_QUERY_MAX; i++) {
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "k%d=v&", i);
    }
    assert_int_equal(parse(t, buf, &err), CLST_OK);
    assert_int_equal(t->query_count, CLST_HTTP_QUERY_MAX);
    snprintf(buf + n, sizeof(buf) - n, "extra=1");
    assert_int_equal(parse(t, buf, &err), CLST_E_LIMIT);

    /* A target of exactly CLST_HTTP_URI_MAX bytes is accepted; one more is refused. The arena
     * must hold the worst case: all segments and parameters, each with its terminator. */
    memset(buf, 'a', CLST_HTTP_URI_MAX);
    buf[0] = '/';
    assert_int_equal(clst_server_target_parse(buf, CLST_HTTP_URI_MAX, t, &err), CLST_OK);
    assert_int_equal(strlen(t->segments[0]), CLST_HTTP_URI_MAX - 1);
    assert_int_equal(clst_server_target_parse(buf, CLST_HTTP_URI_MAX + 1, t, &err), CLST_E_LIMIT);

    /* Worst case for the arena: 16 one-character segments and 32 "k=" pairs, padded. */
    n = 0;
    for (int i = 0; i < CLST_HTTP_SEGMENT_MAX; i++) {
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "/%c", 'a' + i);
    }
    buf[n++] = '?';
    for (int i = 0; i < CLST_HTTP_QUERY_MAX; i++) {
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%c%c", i > 0 ? "&" : "", 'A' + i % 26,
                              'a' + i / 26);
    }
    while (n < CLST_HTTP_URI_MAX) {
        buf[n++] = 'z'; /* lengthens the last key */
    }
    assert_int_equal(clst_server_target_parse(buf, n, t, &err), CLST_OK);
    assert_int_equal(t->segment_count, CLST_HTTP_SEGMENT_MAX);
    assert_int_equal(t->query_count, CLST_HTTP_QUERY_MAX);
    assert_true(t->arena_used <= sizeof(t->arena));
    free(t);
}

/* The parser must not depend on a NUL after the input: parse a prefix of a longer string. */
static void
test_length_is_respected(void **state)
{
    (void)state;
    struct clst_http_target *t = target_new();
    struct clst_err err;
    const char *s = "/keys/abc?x=1";
    assert_int_equal(clst_server_target_parse(s, 9, t, &err), CLST_OK);
    assert_int_equal(t->segment_count, 2);
    assert_string_equal(t->segments[1], "abc");
    assert_int_equal(t->query_count, 0);
    /* Cut inside a percent escape. */
    assert_int_equal(clst_server_target_parse("/a%41", 4, t, &err), CLST_E_MALFORMED);
    free(t);
}

static void
test_listen(void **state)
{
    (void)state;
    char host[64];
    uint16_t port = 1;
    struct clst_err err;
    assert_int_equal(clst_server_listen_parse("127.0.0.1:8443", host, sizeof(host), &port, &err),
                     CLST_OK);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 8443);
    assert_int_equal(clst_server_listen_parse("0.0.0.0:0", host, sizeof(host), &port, &err),
                     CLST_OK);
    assert_int_equal(port, 0);
    assert_int_equal(clst_server_listen_parse("[::1]:65535", host, sizeof(host), &port, &err),
                     CLST_OK);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 65535);
    assert_int_equal(clst_server_listen_parse("localhost:80", host, sizeof(host), &port, &err),
                     CLST_OK);
    assert_string_equal(host, "localhost");

    static const char *const bad[] = {
        "127.0.0.1",      "127.0.0.1:",   "127.0.0.1:65536", "127.0.0.1:-1",
        "127.0.0.1:+80",  "127.0.0.1:8a", ":8443",           "example.com:80",
        "::1:8443",       "[::1]8443",    "[::1:8443",       "[]:1",
        "[127.0.0.1]:80", "1.2.3:80",     "127.0.0.1: 80",   "999.0.0.1:80"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        clst_err_clear(&err);
        assert_int_not_equal(clst_server_listen_parse(bad[i], host, sizeof(host), &port, &err),
                             CLST_OK);
        assert_true(err.msg[0] != '\0');
    }
    /* Too small an output buffer is an error, not a truncation. */
    assert_int_equal(clst_server_listen_parse("127.0.0.1:1", host, 4, &port, &err), CLST_E_LIMIT);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_root_and_segments),
        cmocka_unit_test(test_percent_decoding),
        cmocka_unit_test(test_bad_percent),
        cmocka_unit_test(test_encoded_slash_and_dots),
        cmocka_unit_test(test_odd_characters),
        cmocka_unit_test(test_not_origin_form),
        cmocka_unit_test(test_query),
        cmocka_unit_test(test_query_refusals),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_length_is_respected),
        cmocka_unit_test(test_listen),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
