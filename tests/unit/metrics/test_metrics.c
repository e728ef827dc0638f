/*
 * Unit tests for src/metrics/metrics.c: the exposition format (checked line by line by a strict
 * parser below, and exact lines), label escaping and cutting, histogram buckets, definitions and
 * their refusals, the label-free sink, the series cap, exact totals under concurrent updates, and
 * the server glue (GET /metrics over TLS through the request observer, public and protected).
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <curl/curl.h>

#include <cloister/audit.h>
#include <cloister/metrics.h>
#include <cloister/server.h>

#include "test_util.h"

/* ---- a strict checker for the text exposition format 0.0.4 ---------------------------------- */

struct family_seen {
    char name[128];
    char type[16];
    bool help, closed;
};

struct checker {
    struct family_seen fams[64];
    size_t fam_count;
    struct family_seen *cur;
    /* the histogram series being read: its labels without le, last le, last count */
    char hist_labels[1024];
    double last_le;
    unsigned long long last_bucket;
    bool in_buckets, inf_seen;
    unsigned long long inf_count;
    char err[512];
};

static bool
ck_fail(struct checker *c, size_t line, const char *fmt, ...)
{
    va_list ap;
    int n = snprintf(c->err, sizeof(c->err), "line %zu: ", line);
    va_start(ap, fmt);
    vsnprintf(c->err + n, sizeof(c->err) - (size_t)n, fmt, ap);
    va_end(ap);
    return false;
}

static bool
is_name_char(char ch, bool first)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_' || ch == ':' ||
           (!first && ch >= '0' && ch <= '9');
}

/* Reads a metric or label name at *p. */
static bool
read_name(const char **p, char *out, size_t cap)
{
    size_t n = 0;
    if (!is_name_char(**p, true)) {
        return false;
    }
    while (is_name_char(**p, n == 0) && n + 1 < cap) {
        out[n++] = *(*p)++;
    }
    out[n] = '\0';
    return !is_name_char(**p, false);
}

static bool
parse_value(const char *s, double *out)
{
    if (strcmp(s, "+Inf") == 0 || strcmp(s, "-Inf") == 0 || strcmp(s, "NaN") == 0) {
        *out = strcmp(s, "-Inf") == 0 ? -1e308 : 1e308;
        return true;
    }
    char *end;
    if (*s == '\0' || *s == ' ') {
        return false;
    }
    *out = strtod(s, &end);
    return *end == '\0';
}

static struct family_seen *
ck_family(struct checker *c, const char *name)
{
    for (size_t i = 0; i < c->fam_count; i++) {
        if (strcmp(c->fams[i].name, name) == 0) {
            return &c->fams[i];
        }
    }
    return NULL;
}

static bool
ck_end_histogram(struct checker *c, size_t line)
{
    if (c->in_buckets && !c->inf_seen) {
        return ck_fail(c, line, "histogram series {%s} has no le=\"+Inf\" bucket", c->hist_labels);
    }
    return true;
}

/* One line of a sample: name{labels} value. */
static bool
ck_sample(struct checker *c, size_t line, const char *s)
{
    char name[128], labels[1024] = "", le[600] = "";
    const char *p = s;
    size_t lpos = 0;
    if (!read_name(&p, name, sizeof(name))) {
        return ck_fail(c, line, "bad metric name");
    }
    if (*p == '{') {
        p++;
        bool first = true;
        while (*p != '}') {
            char lname[64], value[600];
            size_t vn = 0;
            if (!first) {
                if (*p++ != ',') {
                    return ck_fail(c, line, "expected ',' between labels");
                }
            }
            first = false;
            if (!read_name(&p, lname, sizeof(lname)) || *p++ != '=' || *p++ != '"') {
                return ck_fail(c, line, "bad label syntax");
            }
            while (*p != '"') {
                if (*p == '\0' || *p == '\n') {
                    return ck_fail(c, line, "unterminated label value");
                }
                if (*p == '\\') {
                    p++;
                    if (*p != '\\' && *p != '"' && *p != 'n') {
                        return ck_fail(c, line, "bad escape in a label value");
                    }
                }
                if (vn + 1 >= sizeof(value)) {
                    return ck_fail(c, line, "label value too long");
                }
                value[vn++] = *p++;
            }
            value[vn] = '\0';
            p++;
            if (strcmp(lname, "le") == 0) {
                snprintf(le, sizeof(le), "%s", value);
            } else {
                int w = snprintf(labels + lpos, sizeof(labels) - lpos, "%s=%s;", lname, value);
                if (w < 0 || (size_t)w >= sizeof(labels) - lpos) {
                    return ck_fail(c, line, "labels too long for the checker");
                }
                lpos += (size_t)w;
            }
        }
        p++;
    }
    if (*p++ != ' ') {
        return ck_fail(c, line, "expected one space before the value");
    }
    double v;
    if (!parse_value(p, &v)) {
        return ck_fail(c, line, "bad sample value '%s'", p);
    }
    struct family_seen *f = c->cur;
    if (f == NULL) {
        return ck_fail(c, line, "sample before any # TYPE");
    }
    if (strcmp(f->type, "histogram") != 0) {
        if (strcmp(name, f->name) != 0) {
            return ck_fail(c, line, "sample %s outside its family (current %s)", name, f->name);
        }
        if (le[0] != '\0') {
            return ck_fail(c, line, "le label outside a histogram");
        }
        if (strcmp(f->type, "counter") == 0 && v < 0) {
            return ck_fail(c, line, "negative counter");
        }
        return true;
    }
    size_t n = strlen(f->name);
    if (strncmp(name, f->name, n) != 0) {
        return ck_fail(c, line, "sample %s outside its family (current %s)", name, f->name);
    }
    const char *suffix = name + n;
    if (strcmp(suffix, "_bucket") == 0) {
        if (le[0] == '\0') {
            return ck_fail(c, line, "bucket without le");
        }
        double lev;
        if (!parse_value(le, &lev)) {
            return ck_fail(c, line, "bad le '%s'", le);
        }
        if (!c->in_buckets || strcmp(labels, c->hist_labels) != 0) {
            if (!ck_end_histogram(c, line)) {
                return false;
            }
            snprintf(c->hist_labels, sizeof(c->hist_labels), "%s", labels);
            c->in_buckets = true;
            c->inf_seen = false;
            c->last_le = -1;
            c->last_bucket = 0;
        } else if (!(lev > c->last_le)) {
            return ck_fail(c, line, "le values not increasing");
        }
        if ((unsigned long long)v < c->last_bucket) {
            return ck_fail(c, line, "bucket counts not cumulative");
        }
        c->last_le = lev;
        c->last_bucket = (unsigned long long)v;
        if (strcmp(le, "+Inf") == 0) {
            c->inf_seen = true;
            c->inf_count = (unsigned long long)v;
        }
        return true;
    }
    if (le[0] != '\0') {
        return ck_fail(c, line, "le on %s", name);
    }
    if (strcmp(suffix, "_sum") == 0) {
        return ck_end_histogram(c, line) ||
               ck_fail(c, line, "_sum before the +Inf bucket");
    }
    if (strcmp(suffix, "_count") == 0) {
        if (!c->inf_seen || strcmp(labels, c->hist_labels) != 0) {
            return ck_fail(c, line, "_count without its buckets");
        }
        if ((unsigned long long)v != c->inf_count) {
            return ck_fail(c, line, "_count %g differs from the +Inf bucket %llu", v,
                           c->inf_count);
        }
        c->in_buckets = false;
        return true;
    }
    return ck_fail(c, line, "unexpected histogram sample %s", name);
}

/* Returns true when `text` is a valid exposition; c->err says why not. */
static bool
check_exposition(const char *text, struct checker *c)
{
    memset(c, 0, sizeof(*c));
    size_t line = 0;
    const char *p = text;
    if (*p == '\0') {
        return ck_fail(c, 0, "empty exposition");
    }
    while (*p != '\0') {
        const char *eol = strchr(p, '\n');
        char buf[2048];
        line++;
        if (eol == NULL) {
            return ck_fail(c, line, "the last line does not end with a newline");
        }
        size_t len = (size_t)(eol - p);
        if (len == 0 || len >= sizeof(buf)) {
            return ck_fail(c, line, len == 0 ? "empty line" : "line too long");
        }
        memcpy(buf, p, len);
        buf[len] = '\0';
        p = eol + 1;
        if (buf[0] == '#') {
            char kind[8], name[128];
            const char *q = buf;
            if (strncmp(buf, "# HELP ", 7) == 0) {
                memcpy(kind, "HELP", 5);
            } else if (strncmp(buf, "# TYPE ", 7) == 0) {
                memcpy(kind, "TYPE", 5);
            } else {
                return ck_fail(c, line, "a comment that is neither HELP nor TYPE");
            }
            q += 7;
            if (!read_name(&q, name, sizeof(name)) || *q++ != ' ' || *q == '\0') {
                return ck_fail(c, line, "bad %s line", kind);
            }
            struct family_seen *f = ck_family(c, name);
            if (f == NULL) {
                if (c->fam_count == sizeof(c->fams) / sizeof(c->fams[0])) {
                    return ck_fail(c, line, "too many families");
                }
                f = &c->fams[c->fam_count++];
                snprintf(f->name, sizeof(f->name), "%s", name);
            } else if (f->closed || f != c->cur) {
                return ck_fail(c, line, "family %s is not contiguous", name);
            }
            if (c->cur != NULL && c->cur != f) {
                if (!ck_end_histogram(c, line)) {
                    return false;
                }
                c->cur->closed = true;
                c->in_buckets = false;
            }
            c->cur = f;
            if (kind[0] == 'H') {
                if (f->help) {
                    return ck_fail(c, line, "second HELP for %s", name);
                }
                f->help = true;
            } else {
                if (f->type[0] != '\0') {
                    return ck_fail(c, line, "second TYPE for %s", name);
                }
                if (strcmp(q, "counter") != 0 && strcmp(q, "gauge") != 0 &&
                    strcmp(q, "histogram") != 0 && strcmp(q, "summary") != 0 &&
                    strcmp(q, "untyped") != 0) {
                    return ck_fail(c, line, "unknown type '%s'", q);
                }
                snprintf(f->type, sizeof(f->type), "%s", q);
            }
            continue;
        }
        if (c->cur == NULL || c->cur->type[0] == '\0') {
            return ck_fail(c, line, "sample before its # TYPE");
        }
        if (!ck_sample(c, line, buf)) {
            return false;
        }
    }
    if (c->in_buckets) {
        return ck_fail(c, line, "histogram without _sum/_count at the end");
    }
    return true;
}

/* The value of the sample line that starts with `prefix` followed by a space; -1 if absent. */
static double
sample(const char *text, const char *prefix)
{
    size_t n = strlen(prefix);
    const char *p = text;
    while (p != NULL && *p != '\0') {
        if (strncmp(p, prefix, n) == 0 && p[n] == ' ') {
            return strtod(p + n + 1, NULL);
        }
        p = strchr(p, '\n');
        p = p != NULL ? p + 1 : NULL;
    }
    return -1;
}

static char *
render(struct clst_metrics *m)
{
    char *text = NULL;
    size_t size = 0;
    struct clst_err err;
    struct checker c;
    assert_int_equal(clst_metrics_render(m, &text, &size, &err), CLST_OK);
    assert_int_equal(strlen(text), size);
    if (!check_exposition(text, &c)) {
        fail_msg("invalid exposition: %s\n%s", c.err, text);
    }
    return text;
}

/* ---- the checker itself refuses bad expositions --------------------------------------------- */

static void
test_checker_negative(void **state)
{
    (void)state;
    struct checker c;
    static const char *const bad[] = {
        "",
        "# TYPE a counter\na 1",                                /* no final newline */
        "a 1\n",                                                /* sample before TYPE */
        "# TYPE a counter\n\na 1\n",                            /* empty line */
        "# TYPE a counter\na{x=\"1} 1\n",                      /* unterminated */
        "# TYPE a counter\na{x=\"\\t\"} 1\n",                  /* bad escape */
        "# TYPE a counter\na 1x\n",                             /* bad value */
        "# TYPE a counter\na  1\n",                             /* two spaces */
        "# TYPE a counter\nb 1\n",                              /* outside its family */
        "# TYPE a counter\n# TYPE a counter\n",                 /* TYPE twice */
        "# TYPE a wrong\n",                                     /* unknown type */
        "# TYPE a counter\n# TYPE b gauge\n# HELP a x\n",       /* not contiguous */
        "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"2\"} 1\n"
        "h_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 2\n",       /* not cumulative */
        "# TYPE h histogram\nh_bucket{le=\"2\"} 1\nh_bucket{le=\"1\"} 1\n"
        "h_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",       /* le decreasing */
        "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n", /* no +Inf */
        "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 3\n", /* count != +Inf */
        "# COMMENT x\n",                                        /* other comment */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (check_exposition(bad[i], &c)) {
            fail_msg("the checker accepted bad exposition #%zu:\n%s", i, bad[i]);
        }
    }
    assert_true(check_exposition("# HELP a x\n# TYPE a counter\na{b=\"\\\"\\\\\\n\"} 1\n"
                                 "# TYPE h histogram\nh_bucket{le=\"1\"} 1\n"
                                 "h_bucket{le=\"+Inf\"} 2\nh_sum 0.5\nh_count 2\n",
                                 &c));
}

/* ---- format ----------------------------------------------------------------------------------- */

static void
test_format(void **state)
{
    (void)state;
    struct clst_metrics *m = NULL;
    struct clst_err err;
    assert_int_equal(clst_metrics_new(&m, &err), CLST_OK);

    /* Empty: every family has HELP and TYPE; label-free ones show 0. */
    char *text = render(m);
    assert_non_null(strstr(text, "# HELP cloister_http_requests_total HTTP requests answered"));
    assert_non_null(strstr(text, "# TYPE cloister_http_requests_total counter\n"));
    assert_non_null(strstr(text, "# TYPE cloister_http_request_duration_seconds histogram\n"));
    assert_non_null(strstr(text, "# TYPE cloister_audit_queue_depth gauge\n"));
    assert_non_null(strstr(text, "\ncloister_audit_queue_depth 0\n"));
    assert_non_null(strstr(text, "\ncloister_audit_records_total 0\n"));
    assert_non_null(strstr(text, "\ncloister_audit_sync_seconds_bucket{le=\"5e-05\"} 0\n"));
    assert_non_null(strstr(text, "\ncloister_audit_sync_seconds_count 0\n"));
    assert_true(sample(text, "process_start_time_seconds") > 1.6e9);
    assert_null(strstr(text, "cloister_http_requests_total{"));
    free(text);

    struct clst_metrics_request r = {
        .method = CLST_HTTP_POST,
        .route = "/keys/{name}/{version}/encrypt",
        .status = 200,
        .elapsed_ns = 300000, /* 300 µs */
    };
    clst_metrics_request_record(m, &r);
    r.elapsed_ns = 2000000; /* 2 ms */
    clst_metrics_request_record(m, &r);
    r.status = 503;
    r.elapsed_ns = 12000000000ull; /* 12 s: past the last bucket */
    clst_metrics_request_record(m, &r);
    struct clst_metrics_request unrouted = {.method = CLST_HTTP_GET, .status = 404,
                                            .elapsed_ns = 1000};
    clst_metrics_request_record(m, &unrouted);

    text = render(m);
    /* Exact lines, in order (series are sorted by their label text). */
    const char *expected =
        "# TYPE cloister_http_requests_total counter\n"
        "cloister_http_requests_total{op=\"POST /keys/{name}/{version}/encrypt\",status=\"200\"} 2\n"
        "cloister_http_requests_total{op=\"POST /keys/{name}/{version}/encrypt\",status=\"503\"} 1\n"
        "cloister_http_requests_total{op=\"unmatched\",status=\"404\"} 1\n";
    if (strstr(text, expected) == NULL) {
        fail_msg("expected lines not found:\n%s\nin:\n%s", expected, text);
    }
    const char *op = "op=\"POST /keys/{name}/{version}/encrypt\"";
    const char *hist_prefix = "cloister_http_request_duration_seconds_bucket{";
    static const struct {
        const char *le;
        int count;
    } buckets[] = {{"0.00025", 0}, {"0.0005", 1}, {"0.001", 1}, {"0.0025", 2}, {"0.005", 2},
                   {"0.01", 2},    {"0.025", 2},  {"0.05", 2},  {"0.1", 2},    {"0.25", 2},
                   {"0.5", 2},     {"1", 2},      {"2.5", 2},   {"5", 2},      {"10", 2},
                   {"+Inf", 3}};
    char prefix[256];
    for (size_t i = 0; i < sizeof(buckets) / sizeof(buckets[0]); i++) {
        snprintf(prefix, sizeof(prefix), "%s%s,le=\"%s\"}", hist_prefix, op, buckets[i].le);
        if (sample(text, prefix) != buckets[i].count) {
            fail_msg("%s: %g, expected %d", prefix, sample(text, prefix), buckets[i].count);
        }
    }
    snprintf(prefix, sizeof(prefix), "cloister_http_request_duration_seconds_sum{%s} 12.002300000\n",
             op);
    assert_non_null(strstr(text, prefix));
    snprintf(prefix, sizeof(prefix), "cloister_http_request_duration_seconds_count{%s} 3\n", op);
    assert_non_null(strstr(text, prefix));
    snprintf(prefix, sizeof(prefix), "cloister_http_server_errors_total{%s} 1\n", op);
    assert_non_null(strstr(text, prefix));
    assert_null(strstr(text, "cloister_http_server_errors_total{op=\"unmatched\"}"));
    free(text);
    clst_metrics_free(m);
}

static void
test_releases_and_attestations(void **state)
{
    (void)state;
    struct clst_metrics *m = NULL;
    struct clst_err err;
    assert_int_equal(clst_metrics_new(&m, &err), CLST_OK);
    struct clst_metrics_request r = {.method = CLST_HTTP_POST, .route = "/keys/{name}/release",
                                     .status = 200, .key_name = "k1",
                                     .release_decision = "granted"};
    clst_metrics_request_record(m, &r);
    clst_metrics_request_record(m, &r);
    r.status = 403;
    r.release_decision = "denied";
    clst_metrics_request_record(m, &r);
    /* The release handler's spellings are normalized; unknown ones are "other" (bounded). */
    r.release_decision = "grant";
    clst_metrics_request_record(m, &r);
    r.release_decision = "deny";
    clst_metrics_request_record(m, &r);
    r.release_decision = "dry-run-deny";
    clst_metrics_request_record(m, &r);
    r.release_decision = "dry-run-grant";
    clst_metrics_request_record(m, &r);
    r.release_decision = "made-up";
    clst_metrics_request_record(m, &r);
    r.release_decision = NULL; /* e.g. a 404 before any decision: not a release decision */
    r.status = 404;
    clst_metrics_request_record(m, &r);
    struct clst_metrics_request a = {.method = CLST_HTTP_POST, .route = "/attest/{type}",
                                     .status = 200, .attest_type = "SevSnpVm"};
    clst_metrics_request_record(m, &a);
    a.status = 400;
    clst_metrics_request_record(m, &a);
    a.status = 500;
    clst_metrics_request_record(m, &a);
    a.status = 404; /* an unknown type: never a series named by the client */
    a.attest_type = "MadeUpType";
    clst_metrics_request_record(m, &a);
    char *text = render(m);
    assert_int_equal(sample(text, "cloister_key_releases_total{key=\"k1\",decision=\"granted\"}"),
                     3);
    assert_int_equal(sample(text, "cloister_key_releases_total{key=\"k1\",decision=\"denied\"}"),
                     2);
    assert_int_equal(
        sample(text, "cloister_key_releases_total{key=\"k1\",decision=\"dry_run_denied\"}"), 1);
    assert_int_equal(
        sample(text, "cloister_key_releases_total{key=\"k1\",decision=\"dry_run_granted\"}"), 1);
    assert_int_equal(sample(text, "cloister_key_releases_total{key=\"k1\",decision=\"other\"}"),
                     1);
    assert_null(strstr(text, "made-up"));
    assert_int_equal(sample(text, "cloister_attestations_total{type=\"SevSnpVm\",result=\"success\"}"),
                     1);
    assert_int_equal(
        sample(text, "cloister_attestations_total{type=\"SevSnpVm\",result=\"rejected\"}"), 1);
    assert_int_equal(sample(text, "cloister_attestations_total{type=\"SevSnpVm\",result=\"error\"}"),
                     1);
    assert_int_equal(
        sample(text, "cloister_attestations_total{type=\"_unknown\",result=\"rejected\"}"), 1);
    assert_null(strstr(text, "MadeUpType"));
    assert_int_equal(
        sample(text,
               "cloister_http_requests_total{op=\"POST /keys/{name}/release\",status=\"404\"}"),
        1);
    free(text);
    clst_metrics_free(m);
}

static void
test_escaping_and_cut(void **state)
{
    (void)state;
    struct clst_metrics *m = NULL;
    struct clst_err err;
    assert_int_equal(clst_metrics_new(&m, &err), CLST_OK);
    const char *v1[] = {"a\"b\\c\nd\te"};
    assert_int_equal(clst_metrics_counter_add(m, CLST_METRICS_STORAGE_ERRORS, v1, 3), CLST_OK);
    /* 127 ASCII bytes then a 2-byte character: the cut at 128 falls inside it, so the whole
     * character goes. */
    char longv[200];
    memset(longv, 'x', 127);
    memcpy(longv + 127, "\xc3\xa9yyyy", 7);
    const char *v2[] = {longv};
    assert_int_equal(clst_metrics_counter_add(m, CLST_METRICS_STORAGE_ERRORS, v2, 1), CLST_OK);
    char *text = render(m);
    assert_int_equal(sample(text, "cloister_storage_errors_total{op=\"a\\\"b\\\\c\\nd?e\"}"), 3);
    char want[200];
    snprintf(want, sizeof(want), "cloister_storage_errors_total{op=\"%.*s\"}", 127, longv);
    assert_int_equal(sample(text, want), 1);
    free(text);
    /* storage_error: the explicit counter; NULL op is "unknown"; NULL registry is a no-op. */
    clst_metrics_storage_error(m, "key_create");
    clst_metrics_storage_error(m, "key_create");
    clst_metrics_storage_error(m, NULL);
    clst_metrics_storage_error(NULL, "x");
    text = render(m);
    assert_int_equal(sample(text, "cloister_storage_errors_total{op=\"key_create\"}"), 2);
    assert_int_equal(sample(text, "cloister_storage_errors_total{op=\"unknown\"}"), 1);
    free(text);
    clst_metrics_free(m);
}

/* ---- definitions, types, the sink ------------------------------------------------------------ */

static void
test_define(void **state)
{
    (void)state;
    struct clst_metrics *m = NULL;
    struct clst_err err;
    assert_int_equal(clst_metrics_new(&m, &err), CLST_OK);
    static const char *const one[] = {"shard", NULL};
    static const char *const four[] = {"a", "b", "c", "d", NULL};
    static const char *const le[] = {"le", NULL};
    static const char *const bad_label[] = {"1x", NULL};
    static const char *const reserved[] = {"__x", NULL};
    static const double ok_b[] = {0.5, 1, 2};
    static const double dec_b[] = {1, 0.5};
    static const double neg_b[] = {-1, 1};
    assert_int_equal(clst_metrics_define(m, CLST_METRIC_COUNTER, "app_things_total", "Things.", one,
                                         NULL, 0, &err),
                     CLST_OK);
    assert_int_equal(clst_metrics_define(m, CLST_METRIC_COUNTER, "app_things_total", "Again.",
                                         NULL, NULL, 0, &err),
                     CLST_E_CONFLICT);
    assert_int_equal(clst_metrics_define(m, CLST_METRIC_COUNTER, "app_things", "No suffix.", NULL,
                                         NULL, 0, &err),
                     CLST_E_INVAL);
    assert_non_null(strstr(err.msg, "_total"));
    assert_int_equal(clst_metrics_define(m, CLST_METRIC_GAUGE, "9lives", "x", NULL, NULL, 0, &err),
                     CLST_E_INVAL);
    assert_int_equal(clst_metrics_define(m, CLST_METRIC_GAUGE, "a-b", "x", NULL, NULL, 0, &err),
                     CLST_E_INVAL);
    assert_int_equal(clst_metrics_define(m, CLST_METRIC_GAUGE, "g", NULL, NULL, NULL, 0, &err),
                     CLST_E_INVAL);
    assert_int_equal(clst_metrics_define(m, CLST_METRIC_GAUGE, "g4", "x", four, NULL, 0, &err),
                     CLST_E_INVAL);
    assert_int_equal(
        clst_metrics_define(m, CLST_METRIC_GAUGE, "g5", "x", bad_label, NULL, 0, &err),
        CLST_E_INVAL);
    assert_int_equal(clst_metrics_define(m, CLST_METRIC_GAUGE, "g6", "x", reserved, NULL, 0, &err),
                     CLST_E_INVAL);
    assert_int_equal(clst_metrics_define(m, CLST_METRIC_HISTOGRAM, "h1", "x", le, NULL, 0, &err),
                     CLST_E_INVAL);
    assert_int_equal(clst_metrics_define(m, CLST_METRIC_HISTOGRAM, "h2", "x", NULL, dec_b, 2, &err),
                     CLST_E_INVAL);
    assert_int_equal(clst_metrics_define(m, CLST_METRIC_HISTOGRAM, "h3", "x", NULL, neg_b, 2, &err),
                     CLST_E_INVAL);
    assert_int_equal(clst_metrics_define(m, CLST_METRIC_HISTOGRAM, "h4", "x", NULL, ok_b, 21, &err),
                     CLST_E_INVAL);
    assert_int_equal(clst_metrics_define(m, (enum clst_metric_type)99, "t", "x", NULL, NULL, 0,
                                         &err),
                     CLST_E_INVAL);
    assert_int_equal(clst_metrics_define(m, CLST_METRIC_HISTOGRAM, "app_wait_seconds",
                                         "Waits.\nSecond line \\ backslash.", one, ok_b, 3, &err),
                     CLST_OK);
    /* Fill the registry up to its limit. */
    enum clst_status st = CLST_OK;
    for (int i = 0; i < 40 && st == CLST_OK; i++) {
        char name[32];
        snprintf(name, sizeof(name), "filler_%d", i);
        st = clst_metrics_define(m, CLST_METRIC_GAUGE, name, "x", NULL, NULL, 0, &err);
    }
    assert_int_equal(st, CLST_E_LIMIT);

    /* Updates: wrong type, unknown name and bad values are refused, nothing counted. */
    const char *s1[] = {"s1"};
    assert_int_equal(clst_metrics_counter_add(m, "app_things_total", s1, 5), CLST_OK);
    assert_int_equal(clst_metrics_counter_add(m, "app_wait_seconds", s1, 5), CLST_E_INVAL);
    assert_int_equal(clst_metrics_counter_add(m, "nope_total", s1, 5), CLST_E_INVAL);
    assert_int_equal(clst_metrics_gauge_set(m, "app_things_total", s1, 1), CLST_E_INVAL);
    assert_int_equal(clst_metrics_observe(m, "app_wait_seconds", s1, -1), CLST_E_INVAL);
    assert_int_equal(clst_metrics_observe(m, "app_wait_seconds", s1, NAN), CLST_E_INVAL);
    assert_int_equal(clst_metrics_observe(m, "app_wait_seconds", s1, 0.5), CLST_OK); /* le 0.5 */
    assert_int_equal(clst_metrics_observe(m, "app_wait_seconds", s1, 1.5), CLST_OK);
    assert_int_equal(clst_metrics_gauge_set(m, "filler_0", NULL, -2.5), CLST_OK);
    assert_int_equal(clst_metrics_gauge_add(m, "filler_0", NULL, 1.0), CLST_OK);
    assert_int_equal(clst_metrics_gauge_set(m, "filler_1", NULL, INFINITY), CLST_OK);
    assert_int_equal(clst_metrics_gauge_add(m, "app_things_total", s1, 1), CLST_E_INVAL);
    char *text = render(m);
    assert_non_null(strstr(text, "# HELP app_wait_seconds Waits.\\nSecond line \\\\ backslash.\n"));
    assert_int_equal(sample(text, "app_things_total{shard=\"s1\"}"), 5);
    assert_int_equal(sample(text, "app_wait_seconds_bucket{shard=\"s1\",le=\"0.5\"}"), 1);
    assert_int_equal(sample(text, "app_wait_seconds_bucket{shard=\"s1\",le=\"1\"}"), 1);
    assert_int_equal(sample(text, "app_wait_seconds_bucket{shard=\"s1\",le=\"2\"}"), 2);
    assert_int_equal(sample(text, "app_wait_seconds_bucket{shard=\"s1\",le=\"+Inf\"}"), 2);
    assert_non_null(strstr(text, "\napp_wait_seconds_sum{shard=\"s1\"} 2.000000000\n"));
    assert_non_null(strstr(text, "\nfiller_0 -1.5\n"));
    assert_non_null(strstr(text, "\nfiller_1 +Inf\n"));
    free(text);
    clst_metrics_free(m);
    clst_metrics_free(NULL);
}

static void
test_sink(void **state)
{
    (void)state;
    struct clst_metrics *m = NULL;
    struct clst_err err;
    assert_int_equal(clst_metrics_new(&m, &err), CLST_OK);
    /* What the audit log does, through a plain function pointer. */
    void (*sink)(void *, const char *, double) = clst_metrics_sink;
    sink(m, CLST_METRICS_AUDIT_QUEUE_DEPTH, 7);
    sink(m, CLST_METRICS_AUDIT_QUEUE_DEPTH, 3); /* a gauge is set, not added */
    sink(m, CLST_METRICS_AUDIT_SYNC_SECONDS, 0.0002);
    sink(m, CLST_METRICS_AUDIT_SYNC_SECONDS, 0.003);
    sink(m, CLST_METRICS_AUDIT_RECORDS, 4);
    sink(m, CLST_METRICS_AUDIT_RECORDS, 2);
    sink(m, CLST_METRICS_AUDIT_RECORDS, -5);      /* ignored */
    sink(m, CLST_METRICS_AUDIT_SYNC_SECONDS, -1); /* ignored */
    sink(m, CLST_METRICS_HTTP_REQUESTS, 1);       /* has labels: ignored */
    sink(m, "no_such_metric", 1);                 /* ignored */
    sink(NULL, CLST_METRICS_AUDIT_RECORDS, 1);    /* no registry: ignored */
    char *text = render(m);
    assert_non_null(strstr(text, "\ncloister_audit_queue_depth 3\n"));
    assert_non_null(strstr(text, "\ncloister_audit_records_total 6\n"));
    assert_int_equal(sample(text, "cloister_audit_sync_seconds_bucket{le=\"0.0001\"}"), 0);
    assert_int_equal(sample(text, "cloister_audit_sync_seconds_bucket{le=\"0.00025\"}"), 1);
    assert_int_equal(sample(text, "cloister_audit_sync_seconds_bucket{le=\"0.0025\"}"), 1);
    assert_int_equal(sample(text, "cloister_audit_sync_seconds_bucket{le=\"0.005\"}"), 2);
    assert_int_equal(sample(text, "cloister_audit_sync_seconds_bucket{le=\"+Inf\"}"), 2);
    assert_non_null(strstr(text, "\ncloister_audit_sync_seconds_sum 0.003200000\n"));
    assert_non_null(strstr(text, "\ncloister_audit_sync_seconds_count 2\n"));
    assert_null(strstr(text, "cloister_http_requests_total{"));
    free(text);
    clst_metrics_free(m);
}

/* A collector runs at each scrape. */
static void
collect_depth(void *ctx, struct clst_metrics *m)
{
    int *calls = ctx;
    (*calls)++;
    (void)clst_metrics_gauge_set(m, CLST_METRICS_AUDIT_QUEUE_DEPTH, NULL, 40 + *calls);
}

static void
test_collector(void **state)
{
    (void)state;
    struct clst_metrics *m = NULL;
    struct clst_err err;
    int calls = 0;
    assert_int_equal(clst_metrics_new(&m, &err), CLST_OK);
    assert_int_equal(clst_metrics_collector_add(m, NULL, NULL, &err), CLST_E_INVAL);
    assert_int_equal(clst_metrics_collector_add(m, collect_depth, &calls, &err), CLST_OK);
    char *text = render(m);
    assert_non_null(strstr(text, "\ncloister_audit_queue_depth 41\n"));
    free(text);
    text = render(m);
    assert_non_null(strstr(text, "\ncloister_audit_queue_depth 42\n"));
    free(text);
    enum clst_status st = CLST_OK;
    int added = 1;
    while (st == CLST_OK && added < 20) {
        st = clst_metrics_collector_add(m, collect_depth, &calls, &err);
        added += st == CLST_OK;
    }
    assert_int_equal(st, CLST_E_LIMIT);
    assert_int_equal(added, 8);
    clst_metrics_free(m);
}

/* Mirrored totals never go back; the audit log's numbers arrive through its collector. */
static void
test_counter_set_and_audit(void **state)
{
    (void)state;
    struct clst_metrics *m = NULL;
    struct clst_err err;
    char root[64], dir[128], key[128], cmd[160];
    assert_int_equal(clst_metrics_new(&m, &err), CLST_OK);
    assert_int_equal(clst_metrics_counter_set(m, CLST_METRICS_AUDIT_SYNCS, NULL, 10), CLST_OK);
    assert_int_equal(clst_metrics_counter_set(m, CLST_METRICS_AUDIT_SYNCS, NULL, 4), CLST_OK);
    assert_int_equal(clst_metrics_counter_set(m, CLST_METRICS_AUDIT_QUEUE_DEPTH, NULL, 4),
                     CLST_E_INVAL);
    assert_int_equal(clst_metrics_counter_set(m, CLST_METRICS_AUDIT_SYNC_TIME, NULL, 4),
                     CLST_E_INVAL); /* kept in nanoseconds: only its collector sets it */
    char *text = render(m);
    assert_non_null(strstr(text, "\ncloister_audit_syncs_total 10\n"));
    assert_non_null(strstr(text, "\ncloister_audit_sync_time_seconds_total 0.000000000\n"));
    free(text);
    clst_metrics_free(m);

    /* A real audit log: its stats, as the collector reports them. */
    snprintf(root, sizeof(root), "/tmp/clst-metrics-audit-XXXXXX");
    assert_non_null(mkdtemp(root));
    snprintf(dir, sizeof(dir), "%s/audit", root);
    snprintf(key, sizeof(key), "%s/audit.key", root);
    struct clst_audit_config cfg;
    struct clst_audit *audit = NULL;
    clst_audit_config_init(&cfg);
    cfg.dir = dir;
    cfg.key_path = key;
    assert_int_equal(clst_audit_open(&cfg, &audit, &err), CLST_OK);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(clst_audit_append(audit, "\"type\":\"test\"", 0, NULL, &err),
                         CLST_OK);
    }
    assert_int_equal(clst_metrics_new(&m, &err), CLST_OK);
    assert_int_equal(clst_metrics_audit_attach(m, NULL, &err), CLST_E_INVAL);
    assert_int_equal(clst_metrics_audit_attach(m, audit, &err), CLST_OK);
    struct clst_audit_stats st;
    clst_audit_stats_get(audit, &st);
    assert_true(st.records >= 3);
    text = render(m);
    assert_int_equal(sample(text, "cloister_audit_records_total"), (double)st.records);
    assert_int_equal(sample(text, "cloister_audit_syncs_total"), (double)st.syncs);
    assert_int_equal(sample(text, "cloister_audit_held_batches_total"), (double)st.held_batches);
    assert_int_equal(sample(text, "cloister_audit_queue_depth"), 0);
    assert_int_equal(sample(text, "cloister_audit_failed"), 0);
    double total = sample(text, "cloister_audit_sync_time_seconds_total");
    assert_true(total > 0 && total < 60);
    assert_true(fabs(total - (double)st.sync_ns_total / 1e9) < 1e-9);
    assert_true(sample(text, "cloister_audit_sync_max_seconds") > 0);
    free(text);
    clst_metrics_free(m);
    assert_int_equal(clst_audit_close(audit, &err), CLST_OK);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    assert_int_equal(system(cmd), 0);
}

/* ---- the series cap -------------------------------------------------------------------------- */

static void
test_series_cap(void **state)
{
    (void)state;
    struct clst_metrics *m = NULL;
    struct clst_err err;
    assert_int_equal(clst_metrics_new(&m, &err), CLST_OK);
    struct clst_metrics_request r = {.method = CLST_HTTP_POST, .route = "/keys/{name}/release",
                                     .status = 200, .release_decision = "granted"};
    char name[32];
    for (int i = 0; i < CLST_METRICS_SERIES_MAX + 10; i++) {
        snprintf(name, sizeof(name), "key-%05d", i);
        r.key_name = name;
        clst_metrics_request_record(m, &r);
    }
    r.key_name = "key-00000"; /* an existing series still counts as itself */
    clst_metrics_request_record(m, &r);
    char *text = render(m);
    assert_int_equal(sample(text, "cloister_key_releases_total{key=\"key-00000\",decision=\"granted\"}"),
                     2);
    assert_int_equal(sample(text, "cloister_key_releases_total{key=\"key-01023\",decision=\"granted\"}"),
                     1);
    assert_int_equal(sample(text, "cloister_key_releases_total{key=\"key-01024\",decision=\"granted\"}"),
                     -1);
    assert_int_equal(sample(text, "cloister_key_releases_total{key=\"_other\",decision=\"_other\"}"),
                     10);
    assert_int_equal(
        sample(text, "cloister_metrics_series_overflow_total{family=\"cloister_key_releases_total\"}"),
        10);
    size_t lines = 0;
    for (const char *p = text; (p = strstr(p, "\ncloister_key_releases_total{")) != NULL; p++) {
        lines++;
    }
    assert_int_equal(lines, CLST_METRICS_SERIES_MAX + 1);
    free(text);
    clst_metrics_free(m);
}

/* ---- concurrency: exact totals -------------------------------------------------------------- */

#define THREADS    8
#define ITERATIONS 20000

struct worker {
    struct clst_metrics *m;
    int id;
};

static void *
work(void *arg)
{
    struct worker *w = arg;
    char op[32];
    /* Every thread updates the same series (contention) and creates new ones as it goes (the
     * creation race: several threads create the same series at the same moment). */
    for (int i = 0; i < ITERATIONS; i++) {
        struct clst_metrics_request r = {
            .method = CLST_HTTP_GET,
            .route = "/shared",
            .status = 200,
            .elapsed_ns = (uint64_t)(i % 4) * 1000000u, /* 0, 1, 2, 3 ms */
        };
        clst_metrics_request_record(w->m, &r);
        if (i % 100 == 0) {
            snprintf(op, sizeof(op), "/r%d", i / 100);
            r.route = op;
            clst_metrics_request_record(w->m, &r);
        }
        clst_metrics_sink(w->m, CLST_METRICS_AUDIT_RECORDS, 1);
        (void)clst_metrics_gauge_add(w->m, CLST_METRICS_AUDIT_QUEUE_DEPTH, NULL, 1.0);
    }
    return NULL;
}

static void
test_concurrency(void **state)
{
    (void)state;
    struct clst_metrics *m = NULL;
    struct clst_err err;
    pthread_t t[THREADS];
    struct worker w[THREADS];
    assert_int_equal(clst_metrics_new(&m, &err), CLST_OK);
    for (int i = 0; i < THREADS; i++) {
        w[i].m = m;
        w[i].id = i;
        assert_int_equal(pthread_create(&t[i], NULL, work, &w[i]), 0);
    }
    /* Scrape while they run: every intermediate exposition is valid too. */
    for (int i = 0; i < 5; i++) {
        free(render(m));
    }
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
    }
    char *text = render(m);
    const double total = (double)THREADS * ITERATIONS;
    assert_int_equal(sample(text, "cloister_http_requests_total{op=\"GET /shared\",status=\"200\"}"),
                     total);
    const char *b = "cloister_http_request_duration_seconds_bucket{op=\"GET /shared\",le=";
    char p[160];
    snprintf(p, sizeof(p), "%s\"0.00025\"}", b);
    assert_int_equal(sample(text, p), total / 4); /* the 0 ms quarter */
    snprintf(p, sizeof(p), "%s\"0.001\"}", b);
    assert_int_equal(sample(text, p), total / 2);
    snprintf(p, sizeof(p), "%s\"0.0025\"}", b);
    assert_int_equal(sample(text, p), total * 3 / 4);
    snprintf(p, sizeof(p), "%s\"0.005\"}", b);
    assert_int_equal(sample(text, p), total);
    /* sum: each thread 5000 × (0 + 1 + 2 + 3) ms = 30 s */
    snprintf(p, sizeof(p),
             "\ncloister_http_request_duration_seconds_sum{op=\"GET /shared\"} %d.000000000\n",
             THREADS * 30);
    assert_non_null(strstr(text, p));
    for (int i = 0; i < ITERATIONS / 100; i++) {
        snprintf(p, sizeof(p), "cloister_http_requests_total{op=\"GET /r%d\",status=\"200\"}", i);
        assert_int_equal(sample(text, p), THREADS);
    }
    assert_int_equal(sample(text, "cloister_audit_records_total"), total);
    assert_int_equal(sample(text, "cloister_audit_queue_depth"), total);
    free(text);
    clst_metrics_free(m);
}

/* ---- the server glue ------------------------------------------------------------------------ */

struct fx {
    char root[64];
    char ca_file[192];
    struct clst_server_datadir *dir;
    struct clst_server *server;
    struct clst_metrics *metrics;
    uint16_t port;
};

static enum clst_status
h_release(void *ctx, const struct clst_http_request *req, struct clst_http_response *resp,
          struct clst_err *err)
{
    (void)ctx;
    (void)err;
    bool grant = strcmp(clst_http_request_param(req, "name"), "good") == 0;
    assert_int_equal(clst_http_request_note(req, CLST_METRICS_NOTE_RELEASE_DECISION,
                                            grant ? "grant" : "deny"),
                     CLST_OK);
    clst_http_response_json_new(resp, grant ? 200 : 403, json_pack("{s:b}", "ok", grant));
    return CLST_OK;
}

static enum clst_status
h_attest(void *ctx, const struct clst_http_request *req, struct clst_http_response *resp,
         struct clst_err *err)
{
    (void)ctx;
    if (strcmp(clst_http_request_param(req, "type"), "SimEnclave") != 0) {
        return clst_err_set(err, CLST_E_NOTFOUND, "unknown attestation type");
    }
    clst_http_response_json_new(resp, 200, json_pack("{s:s}", "token", "t"));
    return CLST_OK;
}

static enum clst_status
h_fail(void *ctx, const struct clst_http_request *req, struct clst_http_response *resp,
       struct clst_err *err)
{
    (void)ctx;
    (void)req;
    (void)resp;
    return clst_err_set(err, CLST_E_IO, "storage failed (test)");
}

static enum clst_status
auth_hook(void *ctx, const struct clst_http_request *req, const char *authorization,
          void **out_principal, struct clst_err *err)
{
    (void)ctx;
    (void)req;
    if (authorization == NULL || strcmp(authorization, "Bearer good-token") != 0) {
        return clst_err_set(err, CLST_E_VERIFY, "bad token");
    }
    *out_principal = NULL;
    return CLST_OK;
}

static int
setup_server(void **state, bool protect)
{
    struct fx *f = calloc(1, sizeof(*f));
    struct clst_err err;
    struct clst_server_config cfg;
    char data[128];
    if (f == NULL) {
        return -1;
    }
    snprintf(f->root, sizeof(f->root), "/tmp/clst-metrics-XXXXXX");
    if (mkdtemp(f->root) == NULL) {
        return -1;
    }
    snprintf(data, sizeof(data), "%s/data", f->root);
    snprintf(f->ca_file, sizeof(f->ca_file), "%s/%s", data, CLST_DATADIR_CA_CERT);
    if (clst_server_datadir_open(data, "127.0.0.1", NULL, &f->dir, &err) != CLST_OK) {
        fprintf(stderr, "datadir: %s\n", err.msg);
        return -1;
    }
    clst_server_config_init(&cfg);
    cfg.host = "127.0.0.1";
    cfg.port = 0;
    cfg.tls_cert_pem = f->dir->server_cert_pem;
    cfg.tls_key_pem = (const char *)f->dir->server_key_pem->ptr;
    cfg.thread_count = 2;
    const struct clst_server_route routes[] = {
        {CLST_HTTP_POST, "/keys/{name}/release", 0, h_release, NULL},
        {CLST_HTTP_POST, "/attest/{type}", 0, h_attest, NULL},
        {CLST_HTTP_GET, "/fail", 0, h_fail, NULL},
    };
    struct clst_server_auth auth = {auth_hook, NULL, NULL};
    if (clst_server_new(&cfg, &f->server, &err) != CLST_OK ||
        clst_metrics_new(&f->metrics, &err) != CLST_OK ||
        clst_metrics_register(NULL, f->server, protect, &err) != CLST_E_INVAL ||
        clst_metrics_register(f->metrics, f->server, protect, &err) != CLST_OK ||
        clst_server_auth_set(f->server, &auth, &err) != CLST_OK) {
        fprintf(stderr, "server: %s\n", err.msg);
        return -1;
    }
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        if (clst_server_route_add(f->server, &routes[i], &err) != CLST_OK) {
            return -1;
        }
    }
    if (clst_server_start(f->server, &err) != CLST_OK) {
        fprintf(stderr, "start: %s\n", err.msg);
        return -1;
    }
    f->port = clst_server_port(f->server);
    *state = f;
    return 0;
}

static int
setup_public(void **state)
{
    return setup_server(state, false);
}

static int
setup_protected(void **state)
{
    return setup_server(state, true);
}

static int
teardown_server(void **state)
{
    struct fx *f = *state;
    char cmd[160];
    clst_server_free(f->server);
    clst_metrics_free(f->metrics); /* after the server: its observer used the registry */
    clst_server_datadir_free(f->dir);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->root);
    int rc = system(cmd);
    free(f);
    return rc == 0 ? 0 : -1;
}

static size_t
collect(char *data, size_t size, size_t nmemb, void *userdata)
{
    struct clst_buf *b = userdata;
    return clst_buf_append(b, data, size * nmemb) == CLST_OK ? size * nmemb : 0;
}

/* One request; returns the status; the body (NUL-terminated) in *body when not NULL. */
static long
http(struct fx *f, const char *method, const char *path, const char *auth, struct clst_buf *body,
     char *content_type, size_t ct_cap)
{
    char url[256];
    struct curl_slist *hdrs = NULL;
    struct clst_buf local;
    long status = 0;
    CURL *h = curl_easy_init();
    assert_non_null(h);
    if (body == NULL) {
        body = &local;
    }
    clst_buf_init(body, 1u << 22);
    snprintf(url, sizeof(url), "https://127.0.0.1:%u%s", (unsigned)f->port, path);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CAINFO, f->ca_file);
    curl_easy_setopt(h, CURLOPT_CAPATH, NULL);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, body);
    if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    }
    if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, "{}");
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    }
    if (auth != NULL) {
        hdrs = curl_slist_append(hdrs, auth);
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    assert_int_equal(curl_easy_perform(h), CURLE_OK);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (content_type != NULL) {
        char *ct = NULL;
        curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ct);
        snprintf(content_type, ct_cap, "%s", ct != NULL ? ct : "");
    }
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    assert_int_equal(clst_buf_terminate(body), CLST_OK);
    if (body == &local) {
        clst_buf_cleanup(&local);
    }
    return status;
}

static char *
scrape(struct fx *f, const char *auth)
{
    struct clst_buf body;
    char ct[128];
    struct checker c;
    assert_int_equal(http(f, "GET", "/metrics", auth, &body, ct, sizeof(ct)), 200);
    assert_string_equal(ct, CLST_METRICS_CONTENT_TYPE);
    if (!check_exposition((const char *)body.data, &c)) {
        fail_msg("invalid exposition: %s", c.err);
    }
    size_t size;
    return (char *)clst_buf_steal(&body, &size);
}

static void
test_server_public(void **state)
{
    struct fx *f = *state;
    char *before = scrape(f, NULL);
    assert_int_equal(sample(before, "cloister_http_requests_in_flight"), 1); /* the scrape */
    free(before);
    assert_int_equal(http(f, "POST", "/keys/good/release", NULL, NULL, NULL, 0), 200);
    assert_int_equal(http(f, "POST", "/keys/good/release", NULL, NULL, NULL, 0), 200);
    assert_int_equal(http(f, "POST", "/keys/bad/release", NULL, NULL, NULL, 0), 403);
    assert_int_equal(http(f, "POST", "/attest/SimEnclave", NULL, NULL, NULL, 0), 200);
    assert_int_equal(http(f, "POST", "/attest/Nonsense", NULL, NULL, NULL, 0), 404);
    assert_int_equal(http(f, "GET", "/fail", NULL, NULL, NULL, 0), 500);
    assert_int_equal(http(f, "GET", "/nowhere/at/all", NULL, NULL, NULL, 0), 404);
    assert_int_equal(http(f, "DELETE", "/fail", NULL, NULL, NULL, 0), 405);
    char *t = scrape(f, NULL);
    assert_int_equal(
        sample(t, "cloister_http_requests_total{op=\"POST /keys/{name}/release\",status=\"200\"}"),
        2);
    assert_int_equal(
        sample(t, "cloister_http_requests_total{op=\"POST /keys/{name}/release\",status=\"403\"}"),
        1);
    assert_int_equal(sample(t, "cloister_http_requests_total{op=\"GET /metrics\",status=\"200\"}"),
                     1); /* the first scrape; this one is counted after it is answered */
    assert_int_equal(sample(t, "cloister_http_requests_total{op=\"GET /fail\",status=\"500\"}"),
                     1);
    assert_int_equal(sample(t, "cloister_http_server_errors_total{op=\"GET /fail\"}"), 1);
    assert_int_equal(sample(t, "cloister_http_requests_total{op=\"unmatched\",status=\"404\"}"),
                     1);
    assert_int_equal(sample(t, "cloister_http_requests_total{op=\"unmatched\",status=\"405\"}"),
                     1);
    assert_int_equal(sample(t, "cloister_key_releases_total{key=\"good\",decision=\"granted\"}"),
                     2);
    assert_int_equal(sample(t, "cloister_key_releases_total{key=\"bad\",decision=\"denied\"}"), 1);
    assert_int_equal(
        sample(t, "cloister_attestations_total{type=\"SimEnclave\",result=\"success\"}"), 1);
    assert_int_equal(
        sample(t, "cloister_attestations_total{type=\"_unknown\",result=\"rejected\"}"), 1);
    assert_int_equal(sample(t, "cloister_http_request_duration_seconds_count{op=\"POST "
                               "/keys/{name}/release\"}"),
                     3);
    assert_true(sample(t, "cloister_http_request_duration_seconds_sum{op=\"POST "
                          "/keys/{name}/release\"}") > 0);
    assert_null(strstr(t, "/nowhere"));
    assert_null(strstr(t, "Nonsense"));
    free(t);
}

static void
test_server_protected(void **state)
{
    struct fx *f = *state;
    assert_int_equal(http(f, "GET", "/metrics", NULL, NULL, NULL, 0), 401);
    assert_int_equal(http(f, "GET", "/metrics", "Authorization: Bearer wrong", NULL, NULL, 0), 401);
    char *t = scrape(f, "Authorization: Bearer good-token");
    assert_int_equal(sample(t, "cloister_http_requests_total{op=\"GET /metrics\",status=\"401\"}"),
                     2);
    free(t);
}

int
main(void)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_checker_negative),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_releases_and_attestations),
        cmocka_unit_test(test_escaping_and_cut),
        cmocka_unit_test(test_define),
        cmocka_unit_test(test_sink),
        cmocka_unit_test(test_collector),
        cmocka_unit_test(test_counter_set_and_audit),
        cmocka_unit_test(test_series_cap),
        cmocka_unit_test(test_concurrency),
        cmocka_unit_test_setup_teardown(test_server_public, setup_public, teardown_server),
        cmocka_unit_test_setup_teardown(test_server_protected, setup_protected, teardown_server),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
