/*
 * Fuzz harness for the server's request-target parser (src/server/parse.c) and the route matcher
 * (src/server/routes.c), plus the listen-address parser. Every accepted target is checked
 * against the parser's promises; any broken promise aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/server_int.h"

static enum clst_status
nop(void *ctx, const struct clst_http_request *req, struct clst_http_response *resp,
    struct clst_err *err)
{
    (void)ctx;
    (void)req;
    (void)resp;
    (void)err;
    return CLST_OK;
}

static const struct clst_server_route routes[] = {
    {CLST_HTTP_GET, "/", 0, nop, NULL},
    {CLST_HTTP_GET, "/healthz", 0, nop, NULL},
    {CLST_HTTP_GET, "/keys", 0, nop, NULL},
    {CLST_HTTP_POST, "/keys/restore", 0, nop, NULL},
    {CLST_HTTP_GET, "/keys/{name}", 0, nop, NULL},
    {CLST_HTTP_DELETE, "/keys/{name}", 0, nop, NULL},
    {CLST_HTTP_POST, "/keys/{name}/create", 0, nop, NULL},
    {CLST_HTTP_GET, "/keys/{name}/{version}", 0, nop, NULL},
    {CLST_HTTP_POST, "/keys/{name}/{version}/encrypt", CLST_ROUTE_PROTECTED, nop, NULL},
    {CLST_HTTP_POST, "/keys/{name}/{version}/release", CLST_ROUTE_PROTECTED, nop, NULL},
    {CLST_HTTP_PUT, "/secrets/{name}", 0, nop, NULL},
    {CLST_HTTP_GET, "/{a}/{b}/{c}/{d}", 0, nop, NULL},
};

static struct clst_route_table *
table(void)
{
    static struct clst_route_table t;
    static int built;
    if (!built) {
        for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
            if (clst_server_routes_add(&t, &routes[i], NULL) != CLST_OK) {
                abort();
            }
        }
        built = 1;
    }
    return &t;
}

static void
check_text(const char *s, bool segment)
{
    size_t n = strlen(s);
    if (!clst_server_utf8_valid((const unsigned char *)s, n)) {
        abort();
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f || (segment && c == '/')) {
            abort();
        }
    }
}

static void
check_target(const struct clst_http_target *t)
{
    if (t->segment_count > CLST_HTTP_SEGMENT_MAX || t->query_count > CLST_HTTP_QUERY_MAX ||
        t->arena_used > sizeof(t->arena)) {
        abort();
    }
    for (size_t i = 0; i < t->segment_count; i++) {
        const char *s = t->segments[i];
        if (s < t->arena || s >= t->arena + t->arena_used) {
            abort();
        }
        check_text(s, true);
        if (strcmp(s, ".") == 0 || strcmp(s, "..") == 0) {
            abort();
        }
    }
    for (size_t i = 0; i < t->query_count; i++) {
        if (t->query[i].key[0] == '\0') {
            abort();
        }
        check_text(t->query[i].key, false);
        check_text(t->query[i].value, false);
        for (size_t k = 0; k < i; k++) {
            if (strcmp(t->query[i].key, t->query[k].key) == 0) {
                abort();
            }
        }
    }
}

static void
check_match(const struct clst_http_target *t, enum clst_http_method m)
{
    struct clst_route_match match;
    enum clst_status rc = clst_server_routes_match(table(), m, t, &match);
    if (rc != CLST_OK) {
        if (rc != CLST_E_NOTFOUND || match.route != NULL || match.param_count != 0) {
            abort();
        }
        return;
    }
    const struct clst_route *r = match.route;
    if (r->segment_count != t->segment_count) {
        abort();
    }
    size_t p = 0;
    for (size_t i = 0; i < r->segment_count; i++) {
        if (r->literal[i] != NULL) {
            if (strcmp(r->literal[i], t->segments[i]) != 0) {
                abort();
            }
        } else {
            if (p >= match.param_count || match.values[p] != t->segments[i] ||
                strcmp(match.names[p], r->param[i]) != 0) {
                abort();
            }
            p++;
        }
    }
    if (p != match.param_count) {
        abort();
    }
    if (r->def.method != m && !(m == CLST_HTTP_HEAD && r->def.method == CLST_HTTP_GET)) {
        abort();
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct clst_http_target *t = malloc(sizeof(*t));
    if (t == NULL) {
        return 0;
    }
    struct clst_err err;
    enum clst_status rc = clst_server_target_parse((const char *)data, size, t, &err);
    if (rc == CLST_OK) {
        check_target(t);
        static const enum clst_http_method methods[] = {
            CLST_HTTP_GET, CLST_HTTP_HEAD, CLST_HTTP_POST, CLST_HTTP_DELETE, CLST_HTTP_OTHER};
        for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
            check_match(t, methods[i]);
        }
    } else if (rc != CLST_E_MALFORMED && rc != CLST_E_LIMIT) {
        abort();
    } else if (err.msg[0] == '\0') {
        abort(); /* every refusal says why */
    }
    free(t);

    /* The listen-address parser reads a C string. */
    char s[128];
    size_t n = size < sizeof(s) - 1 ? size : sizeof(s) - 1;
    memcpy(s, data, n);
    s[n] = '\0';
    char host[64];
    uint16_t port;
    if (clst_server_listen_parse(s, host, sizeof(host), &port, NULL) == CLST_OK &&
        (strlen(host) == 0 || strlen(host) >= sizeof(host))) {
        abort();
    }
    return 0;
}
