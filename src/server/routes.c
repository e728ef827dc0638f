/*
 * The route table: patterns compiled once into literal/parameter segments, matched against a
 * parsed target. Built before the server starts and read-only afterwards, so matching takes no
 * locks.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "server/server_int.h"

static const char *const method_names[] = {
    [CLST_HTTP_OTHER] = "OTHER",   [CLST_HTTP_GET] = "GET", [CLST_HTTP_HEAD] = "HEAD",
    [CLST_HTTP_POST] = "POST",     [CLST_HTTP_PUT] = "PUT", [CLST_HTTP_PATCH] = "PATCH",
    [CLST_HTTP_DELETE] = "DELETE",
};

#define METHOD_COUNT (sizeof(method_names) / sizeof(method_names[0]))

const char *
clst_http_method_name(enum clst_http_method m)
{
    if ((size_t)m >= METHOD_COUNT) {
        return "OTHER";
    }
    return method_names[m];
}

enum clst_http_method
clst_server_method_parse(const char *s)
{
    for (size_t i = 1; s != NULL && i < METHOD_COUNT; i++) {
        if (strcmp(s, method_names[i]) == 0) {
            return (enum clst_http_method)i;
        }
    }
    return CLST_HTTP_OTHER;
}

void
clst_server_allow_header(unsigned allowed, char *out, size_t out_cap)
{
    size_t used = 0;
    if (out_cap == 0) {
        return;
    }
    out[0] = '\0';
    for (size_t i = 1; i < METHOD_COUNT; i++) {
        if ((allowed & (1u << i)) == 0) {
            continue;
        }
        const char *name = method_names[i];
        size_t need = strlen(name) + (used > 0 ? 2 : 0);
        if (need + 1 > out_cap - used) {
            return;
        }
        if (used > 0) {
            memcpy(out + used, ", ", 2);
            used += 2;
        }
        memcpy(out + used, name, strlen(name) + 1);
        used += strlen(name);
    }
}

static bool
literal_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

static bool
param_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

static void
route_cleanup(struct clst_route *r)
{
    for (size_t i = 0; i < CLST_HTTP_SEGMENT_MAX; i++) {
        free(r->literal[i]);
        free(r->param[i]);
    }
    free(r->pattern_copy);
    memset(r, 0, sizeof(*r));
}

static char *
dup_range(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p != NULL) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

/* Compiles route->pattern into r. */
static enum clst_status
compile(const struct clst_server_route *route, struct clst_route *r, struct clst_err *err)
{
    const char *p = route->pattern;
    size_t n = strlen(p);
    if (n == 0 || p[0] != '/') {
        return clst_err_set(err, CLST_E_INVAL, "route pattern '%.80s' must start with '/'", p);
    }
    if (n == 1) {
        return CLST_OK;
    }
    size_t start = 1;
    for (;;) {
        size_t end = start;
        while (end < n && p[end] != '/') {
            end++;
        }
        size_t len = end - start;
        const char *seg = p + start;
        if (r->segment_count == CLST_HTTP_SEGMENT_MAX) {
            return clst_err_set(err, CLST_E_INVAL, "route pattern '%.80s' has too many segments",
                                p);
        }
        size_t idx = r->segment_count;
        if (len >= 2 && seg[0] == '{' && seg[len - 1] == '}') {
            if (len == 2) {
                return clst_err_set(err, CLST_E_INVAL,
                                    "route pattern '%.80s' has an unnamed "
                                    "parameter",
                                    p);
            }
            for (size_t i = 1; i + 1 < len; i++) {
                if (!param_char(seg[i])) {
                    return clst_err_set(err, CLST_E_INVAL,
                                        "route pattern '%.80s': parameter names use letters, "
                                        "digits, '_' and '-'",
                                        p);
                }
            }
            for (size_t k = 0; k < idx; k++) {
                if (r->param[k] != NULL && strlen(r->param[k]) == len - 2 &&
                    memcmp(r->param[k], seg + 1, len - 2) == 0) {
                    return clst_err_set(err, CLST_E_INVAL,
                                        "route pattern '%.80s' names a parameter twice", p);
                }
            }
            r->param[idx] = dup_range(seg + 1, len - 2);
            if (r->param[idx] == NULL) {
                return clst_err_set(err, CLST_E_NOMEM, "out of memory");
            }
        } else {
            if (len == 0) {
                return clst_err_set(err, CLST_E_INVAL, "route pattern '%.80s' has an empty segment",
                                    p);
            }
            for (size_t i = 0; i < len; i++) {
                if (!literal_char(seg[i])) {
                    return clst_err_set(err, CLST_E_INVAL,
                                        "route pattern '%.80s': literal segments use letters, "
                                        "digits and '-._~'",
                                        p);
                }
            }
            if ((len == 1 && seg[0] == '.') || (len == 2 && seg[0] == '.' && seg[1] == '.')) {
                return clst_err_set(err, CLST_E_INVAL,
                                    "route pattern '%.80s' has a '.' or '..' segment", p);
            }
            r->literal[idx] = dup_range(seg, len);
            if (r->literal[idx] == NULL) {
                return clst_err_set(err, CLST_E_NOMEM, "out of memory");
            }
        }
        r->segment_count++;
        if (end == n) {
            break;
        }
        start = end + 1;
    }
    return CLST_OK;
}

/* Same method and the same literals at the same places: the second could never be reached. */
static bool
same_shape(const struct clst_route *a, const struct clst_route *b)
{
    if (a->def.method != b->def.method || a->segment_count != b->segment_count) {
        return false;
    }
    for (size_t i = 0; i < a->segment_count; i++) {
        if ((a->literal[i] == NULL) != (b->literal[i] == NULL)) {
            return false;
        }
        if (a->literal[i] != NULL && strcmp(a->literal[i], b->literal[i]) != 0) {
            return false;
        }
    }
    return true;
}

enum clst_status
clst_server_routes_add(struct clst_route_table *t, const struct clst_server_route *route,
                       struct clst_err *err)
{
    enum clst_status rc = CLST_E_INVAL;
    struct clst_route r;
    memset(&r, 0, sizeof(r));
    if (route == NULL || route->pattern == NULL || route->handler == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "a route needs a pattern and a handler");
    }
    if (route->method == CLST_HTTP_OTHER || (size_t)route->method >= METHOD_COUNT) {
        return clst_err_set(err, CLST_E_INVAL, "route '%.80s' has no valid method", route->pattern);
    }
    if ((route->flags & ~CLST_ROUTE_PROTECTED) != 0) {
        return clst_err_set(err, CLST_E_INVAL, "route '%.80s' has unknown flags", route->pattern);
    }
    if (t->count >= CLST_ROUTES_MAX) {
        return clst_err_set(err, CLST_E_LIMIT, "more than %d routes", CLST_ROUTES_MAX);
    }
    rc = compile(route, &r, err);
    if (rc != CLST_OK) {
        goto out;
    }
    r.def = *route;
    r.pattern_copy = strdup(route->pattern);
    r.def.pattern = r.pattern_copy;
    if (r.pattern_copy == NULL) {
        rc = clst_err_set(err, CLST_E_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < t->count; i++) {
        if (same_shape(&t->routes[i], &r)) {
            rc = clst_err_set(err, CLST_E_CONFLICT, "route %s %.80s duplicates %s %.80s",
                              clst_http_method_name(route->method), route->pattern,
                              clst_http_method_name(t->routes[i].def.method),
                              t->routes[i].def.pattern);
            goto out;
        }
    }
    if (t->count == t->cap) {
        size_t ncap = t->cap ? t->cap * 2 : 16;
        struct clst_route *n = realloc(t->routes, ncap * sizeof(*n));
        if (n == NULL) {
            rc = clst_err_set(err, CLST_E_NOMEM, "out of memory");
            goto out;
        }
        t->routes = n;
        t->cap = ncap;
    }
    t->routes[t->count++] = r;
    memset(&r, 0, sizeof(r)); /* owned by the table now */
    rc = CLST_OK;
out:
    route_cleanup(&r);
    return rc;
}

static bool
path_matches(const struct clst_route *r, const struct clst_http_target *target)
{
    if (r->segment_count != target->segment_count) {
        return false;
    }
    for (size_t i = 0; i < r->segment_count; i++) {
        if (r->literal[i] != NULL && strcmp(r->literal[i], target->segments[i]) != 0) {
            return false;
        }
    }
    return true;
}

/* True when a is more specific than b: a literal where b has a parameter, at the first position
 * where they differ. */
static bool
more_specific(const struct clst_route *a, const struct clst_route *b)
{
    for (size_t i = 0; i < a->segment_count; i++) {
        bool la = a->literal[i] != NULL;
        bool lb = b->literal[i] != NULL;
        if (la != lb) {
            return la;
        }
    }
    return false;
}

static const struct clst_route *
find(const struct clst_route_table *t, enum clst_http_method method,
     const struct clst_http_target *target, unsigned *allowed)
{
    const struct clst_route *best = NULL;
    for (size_t i = 0; i < t->count; i++) {
        const struct clst_route *r = &t->routes[i];
        if (!path_matches(r, target)) {
            continue;
        }
        *allowed |= 1u << (unsigned)r->def.method;
        if (r->def.method != method) {
            continue;
        }
        if (best == NULL || more_specific(r, best)) {
            best = r;
        }
    }
    return best;
}

enum clst_status
clst_server_routes_match(const struct clst_route_table *t, enum clst_http_method method,
                         const struct clst_http_target *target, struct clst_route_match *out)
{
    unsigned allowed = 0;
    out->route = NULL;
    out->param_count = 0;
    out->allowed = 0;
    const struct clst_route *r = NULL;
    if (method != CLST_HTTP_OTHER) {
        r = find(t, method, target, &allowed);
        if (r == NULL && method == CLST_HTTP_HEAD) {
            r = find(t, CLST_HTTP_GET, target, &allowed);
        }
    } else {
        (void)find(t, CLST_HTTP_GET, target, &allowed); /* only to learn the allowed methods */
    }
    if ((allowed & (1u << CLST_HTTP_GET)) != 0) {
        allowed |= 1u << CLST_HTTP_HEAD;
    }
    out->allowed = allowed;
    if (r == NULL) {
        return CLST_E_NOTFOUND;
    }
    out->route = r;
    for (size_t i = 0; i < r->segment_count; i++) {
        if (r->param[i] != NULL) {
            out->names[out->param_count] = r->param[i];
            out->values[out->param_count] = target->segments[i];
            out->param_count++;
        }
    }
    return CLST_OK;
}

bool
clst_server_routes_any_protected(const struct clst_route_table *t)
{
    for (size_t i = 0; i < t->count; i++) {
        if ((t->routes[i].def.flags & CLST_ROUTE_PROTECTED) != 0) {
            return true;
        }
    }
    return false;
}

void
clst_server_routes_cleanup(struct clst_route_table *t)
{
    for (size_t i = 0; i < t->count; i++) {
        route_cleanup(&t->routes[i]);
    }
    free(t->routes);
    memset(t, 0, sizeof(*t));
}
