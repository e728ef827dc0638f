/* Unit tests for src/server/routes.c: pattern compilation, matching, specificity, 405 data. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "server/server_int.h"
#include "test_util.h"

static enum clst_status
dummy(void *ctx, const struct clst_http_request *req, struct clst_http_response *resp,
      struct clst_err *err)
{
    (void)ctx;
    (void)req;
    (void)resp;
    (void)err;
    return CLST_OK;
}

static enum clst_status
add(struct clst_route_table *t, enum clst_http_method m, const char *pattern, unsigned flags,
    void *ctx)
{
    struct clst_server_route r = {m, pattern, flags, dummy, ctx};
    struct clst_err err;
    clst_err_clear(&err);
    return clst_server_routes_add(t, &r, &err);
}

/* A match plus copies of the parameter values (which point into the freed target). */
struct result {
    struct clst_route_match m;
    size_t param_count;
    unsigned allowed;
    char *values[CLST_HTTP_SEGMENT_MAX];
};

/* Parses `path` and matches it; returns the route's ctx as an int tag (0 when not found). */
static int
match(const struct clst_route_table *t, enum clst_http_method m, const char *path,
      struct result *res)
{
    struct clst_route_match *out = &res->m;
    struct clst_http_target *target = malloc(sizeof(*target));
    assert_non_null(target);
    assert_int_equal(clst_server_target_parse(path, strlen(path), target, NULL), CLST_OK);
    enum clst_status rc = clst_server_routes_match(t, m, target, out);
    int tag = 0;
    if (rc == CLST_OK) {
        tag = (int)(intptr_t)out->route->def.ctx;
        /* Values point into the target: copy what the tests look at before freeing it. */
        for (size_t i = 0; i < out->param_count; i++) {
            res->values[i] = strdup(out->values[i]);
            assert_non_null(res->values[i]);
        }
    } else {
        assert_null(out->route);
        assert_int_equal(out->param_count, 0);
    }
    free(target);
    res->param_count = out->param_count;
    res->allowed = out->allowed;
    return tag;
}

static void
free_values(struct result *r)
{
    for (size_t i = 0; i < r->m.param_count; i++) {
        free(r->values[i]);
        r->values[i] = NULL;
    }
}

static const char *
param(const struct result *r, const char *name)
{
    for (size_t i = 0; i < r->m.param_count; i++) {
        if (strcmp(r->m.names[i], name) == 0) {
            return r->values[i];
        }
    }
    return NULL;
}

static void
test_match_params(void **state)
{
    (void)state;
    struct clst_route_table t;
    struct result m;
    memset(&t, 0, sizeof(t));
    assert_int_equal(add(&t, CLST_HTTP_POST, "/keys/{name}/{version}/encrypt", 0, (void *)1),
                     CLST_OK);
    assert_int_equal(add(&t, CLST_HTTP_GET, "/keys/{name}/{version}", 0, (void *)2), CLST_OK);
    assert_int_equal(add(&t, CLST_HTTP_GET, "/keys", 0, (void *)3), CLST_OK);
    assert_int_equal(add(&t, CLST_HTTP_GET, "/", 0, (void *)4), CLST_OK);

    assert_int_equal(match(&t, CLST_HTTP_POST, "/keys/my%20key/v1/encrypt", &m), 1);
    assert_int_equal(m.param_count, 2);
    assert_string_equal(param(&m, "name"), "my key");
    assert_string_equal(param(&m, "version"), "v1");
    assert_null(param(&m, "nope"));
    free_values(&m);

    /* An empty {version}: "/keys/k/" (the SDKs' "latest") and "/keys/k//encrypt". */
    assert_int_equal(match(&t, CLST_HTTP_GET, "/keys/k/", &m), 2);
    assert_string_equal(param(&m, "version"), "");
    free_values(&m);
    assert_int_equal(match(&t, CLST_HTTP_POST, "/keys/k//encrypt", &m), 1);
    assert_string_equal(param(&m, "version"), "");
    free_values(&m);

    assert_int_equal(match(&t, CLST_HTTP_GET, "/keys", &m), 3);
    assert_int_equal(m.param_count, 0);
    assert_int_equal(match(&t, CLST_HTTP_GET, "/", &m), 4);
    /* Literals are case-sensitive and must match whole segments. */
    assert_int_equal(match(&t, CLST_HTTP_GET, "/Keys", &m), 0);
    assert_int_equal(m.allowed, 0);
    assert_int_equal(match(&t, CLST_HTTP_GET, "/keysx", &m), 0);
    assert_int_equal(match(&t, CLST_HTTP_GET, "/keys/", &m), 0); /* two segments: no route */
    assert_int_equal(match(&t, CLST_HTTP_POST, "/keys/k/v/encrypt/x", &m), 0);
    clst_server_routes_cleanup(&t);
}

static void
test_method_not_allowed(void **state)
{
    (void)state;
    struct clst_route_table t;
    struct result m;
    char allow[64];
    memset(&t, 0, sizeof(t));
    assert_int_equal(add(&t, CLST_HTTP_GET, "/secrets/{name}", 0, (void *)1), CLST_OK);
    assert_int_equal(add(&t, CLST_HTTP_PUT, "/secrets/{name}", 0, (void *)2), CLST_OK);
    assert_int_equal(add(&t, CLST_HTTP_DELETE, "/secrets/{x}", 0, (void *)3), CLST_OK);

    assert_int_equal(match(&t, CLST_HTTP_POST, "/secrets/s", &m), 0);
    assert_int_equal(m.allowed, (1u << CLST_HTTP_GET) | (1u << CLST_HTTP_HEAD) |
                                    (1u << CLST_HTTP_PUT) | (1u << CLST_HTTP_DELETE));
    clst_server_allow_header(m.allowed, allow, sizeof(allow));
    assert_string_equal(allow, "GET, HEAD, PUT, DELETE");
    /* An unknown method on an existing path is a 405 too. */
    assert_int_equal(match(&t, CLST_HTTP_OTHER, "/secrets/s", &m), 0);
    assert_int_not_equal(m.allowed, 0);
    /* HEAD falls back to the GET route. */
    assert_int_equal(match(&t, CLST_HTTP_HEAD, "/secrets/s", &m), 1);
    free_values(&m);
    assert_int_equal(match(&t, CLST_HTTP_DELETE, "/secrets/s", &m), 3);
    assert_string_equal(param(&m, "x"), "s");
    free_values(&m);
    /* A truncated Allow buffer never overflows and stays terminated. */
    clst_server_allow_header(m.allowed | 0x7eu, allow, 8);
    assert_true(strlen(allow) < 8);
    clst_server_routes_cleanup(&t);
}

static void
test_specificity(void **state)
{
    (void)state;
    struct clst_route_table t;
    struct result m;
    memset(&t, 0, sizeof(t));
    /* Registered param-first on purpose: the literal must still win. */
    assert_int_equal(add(&t, CLST_HTTP_POST, "/keys/{name}", 0, (void *)1), CLST_OK);
    assert_int_equal(add(&t, CLST_HTTP_POST, "/keys/restore", 0, (void *)2), CLST_OK);
    assert_int_equal(add(&t, CLST_HTTP_GET, "/a/{x}/c", 0, (void *)3), CLST_OK);
    assert_int_equal(add(&t, CLST_HTTP_GET, "/{y}/b/c", 0, (void *)4), CLST_OK);

    assert_int_equal(match(&t, CLST_HTTP_POST, "/keys/restore", &m), 2);
    assert_int_equal(m.param_count, 0);
    assert_int_equal(match(&t, CLST_HTTP_POST, "/keys/other", &m), 1);
    free_values(&m);
    /* First difference decides: "/a/{x}/c" has the literal at position 1. */
    assert_int_equal(match(&t, CLST_HTTP_GET, "/a/b/c", &m), 3);
    free_values(&m);
    assert_int_equal(match(&t, CLST_HTTP_GET, "/z/b/c", &m), 4);
    free_values(&m);
    clst_server_routes_cleanup(&t);
}

static void
test_bad_patterns(void **state)
{
    (void)state;
    struct clst_route_table t;
    memset(&t, 0, sizeof(t));
    static const char *const bad[] = {
        "",       "keys", "/keys/", "/a//b", "/{}", "/{a b}",     "/{a}/{a}", "/a b",
        "/a%20b", "/..",  "/.",     "/{x",   "/x}", "/k/{na/me}", "/{a}{b}",  "/a/b?c",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(add(&t, CLST_HTTP_GET, bad[i], 0, NULL), CLST_E_INVAL);
    }
    /* Too many segments. */
    char many[256];
    size_t n = 0;
    for (int i = 0; i <= CLST_HTTP_SEGMENT_MAX; i++) {
        n += (size_t)snprintf(many + n, sizeof(many) - n, "/s");
    }
    assert_int_equal(add(&t, CLST_HTTP_GET, many, 0, NULL), CLST_E_INVAL);
    /* Bad methods, flags and handlers. */
    assert_int_equal(add(&t, CLST_HTTP_OTHER, "/a", 0, NULL), CLST_E_INVAL);
    assert_int_equal(add(&t, (enum clst_http_method)99, "/a", 0, NULL), CLST_E_INVAL);
    assert_int_equal(add(&t, CLST_HTTP_GET, "/a", 0x80u, NULL), CLST_E_INVAL);
    struct clst_server_route nohandler = {CLST_HTTP_GET, "/a", 0, NULL, NULL};
    assert_int_equal(clst_server_routes_add(&t, &nohandler, NULL), CLST_E_INVAL);
    assert_int_equal(t.count, 0);
    clst_server_routes_cleanup(&t);
}

static void
test_duplicates(void **state)
{
    (void)state;
    struct clst_route_table t;
    struct clst_err err;
    memset(&t, 0, sizeof(t));
    assert_int_equal(add(&t, CLST_HTTP_GET, "/keys/{name}", 0, NULL), CLST_OK);
    /* Same shape, other parameter name: unreachable, so refused. */
    struct clst_server_route dup = {CLST_HTTP_GET, "/keys/{other}", 0, dummy, NULL};
    assert_int_equal(clst_server_routes_add(&t, &dup, &err), CLST_E_CONFLICT);
    assert_non_null(strstr(err.msg, "duplicates"));
    /* Same path, other method: fine. Other literal: fine. */
    assert_int_equal(add(&t, CLST_HTTP_DELETE, "/keys/{name}", 0, NULL), CLST_OK);
    assert_int_equal(add(&t, CLST_HTTP_GET, "/keys/restore", 0, NULL), CLST_OK);
    assert_int_equal(t.count, 3);
    assert_false(clst_server_routes_any_protected(&t));
    assert_int_equal(add(&t, CLST_HTTP_PUT, "/keys/{name}", CLST_ROUTE_PROTECTED, NULL), CLST_OK);
    assert_true(clst_server_routes_any_protected(&t));
    clst_server_routes_cleanup(&t);
    assert_int_equal(t.count, 0);
    clst_server_routes_cleanup(&t); /* twice is harmless */
}

static void
test_many_routes(void **state)
{
    (void)state;
    struct clst_route_table t;
    struct result m;
    char p[64];
    memset(&t, 0, sizeof(t));
    for (int i = 0; i < 100; i++) {
        snprintf(p, sizeof(p), "/r%d/{id}", i);
        assert_int_equal(add(&t, CLST_HTTP_GET, p, 0, (void *)(intptr_t)(i + 1)), CLST_OK);
    }
    assert_int_equal(match(&t, CLST_HTTP_GET, "/r57/x", &m), 58);
    free_values(&m);
    clst_server_routes_cleanup(&t);
}

static void
test_method_names(void **state)
{
    (void)state;
    assert_int_equal(clst_server_method_parse("GET"), CLST_HTTP_GET);
    assert_int_equal(clst_server_method_parse("DELETE"), CLST_HTTP_DELETE);
    assert_int_equal(clst_server_method_parse("PATCH"), CLST_HTTP_PATCH);
    assert_int_equal(clst_server_method_parse("get"), CLST_HTTP_OTHER); /* methods are exact */
    assert_int_equal(clst_server_method_parse("OPTIONS"), CLST_HTTP_OTHER);
    assert_int_equal(clst_server_method_parse("OTHER"), CLST_HTTP_OTHER);
    assert_int_equal(clst_server_method_parse(NULL), CLST_HTTP_OTHER);
    assert_string_equal(clst_http_method_name(CLST_HTTP_PUT), "PUT");
    assert_string_equal(clst_http_method_name((enum clst_http_method)42), "OTHER");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_match_params), cmocka_unit_test(test_method_not_allowed),
        cmocka_unit_test(test_specificity),  cmocka_unit_test(test_bad_patterns),
        cmocka_unit_test(test_duplicates),   cmocka_unit_test(test_many_routes),
        cmocka_unit_test(test_method_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
