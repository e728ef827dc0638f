/*
 * The metrics registry: families of counters, gauges and histograms, their series (one per label
 * set), and the Prometheus text exposition (format 0.0.4).
 *
 * Concurrency: a family's series live in an open-addressing table of atomic pointers. A reader
 * hashes the rendered label set, probes with acquire loads and updates the series with relaxed
 * atomic adds: no lock once the series exists. Creating a series takes the registry mutex,
 * probes again (another thread may have won) and publishes the new series with a release store.
 * Series are never removed, so a published pointer stays valid until clst_metrics_free().
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cloister/audit.h>
#include <cloister/metrics.h>

#define SLOT_COUNT      2048u /* power of two, > 2 × (CLST_METRICS_SERIES_MAX + 1) / 1 */
#define NAME_MAX_SIZE   96
#define LABEL_TEXT_MAX  (CLST_METRICS_LABELS_MAX * (32 + 4 + 2 * CLST_METRICS_LABEL_VALUE_MAX) + 1)
#define COLLECTORS_MAX  8
#define OTHER_VALUE     "_other"
#define NS_PER_S        1000000000ull
#define MAX_OBSERVE_S   1.8e10 /* seconds: keeps the nanosecond count far from 2^64 */

struct series {
    uint64_t hash;
    char *labels;          /* `a="x",b="y"` (escaped), "" for a family without labels */
    _Atomic uint64_t value; /* counter: the count; gauge: the bits of a double */
    _Atomic uint64_t sum_ns;
    _Atomic uint64_t buckets[]; /* histograms: bucket_count + 1 (the last is +Inf), not cumulative */
};

struct family {
    enum clst_metric_type type;
    char name[NAME_MAX_SIZE];
    char *help;
    char label_names[CLST_METRICS_LABELS_MAX][32];
    size_t label_count;
    uint64_t bucket_ns[CLST_METRICS_BUCKETS_MAX];
    char bucket_text[CLST_METRICS_BUCKETS_MAX][32];
    size_t bucket_count;
    bool ns_seconds; /* a counter of nanoseconds, shown in seconds */
    _Atomic(struct series *) slots[SLOT_COUNT];
    size_t series_count; /* under the registry mutex */
};

struct collector {
    void (*collect)(void *ctx, struct clst_metrics *m);
    void *ctx;
};

struct clst_metrics {
    pthread_mutex_t lock; /* series creation, definitions, collectors, rendering */
    struct family *families[CLST_METRICS_FAMILIES_MAX];
    _Atomic size_t family_count;
    struct collector collectors[COLLECTORS_MAX];
    size_t collector_count;
    struct clst_server *server; /* for the in-flight gauge; set by clst_metrics_register */
    /* The built-in families the request observer updates (no name lookups on that path). */
    struct family *f_requests, *f_duration, *f_server_errors, *f_in_flight, *f_releases,
        *f_attest, *f_storage, *f_overflow, *f_audit_sync_time;
};

/* Latency buckets in seconds: 250 µs … 10 s. */
static const double default_buckets[] = {0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                         0.05,    0.1,    0.25,  0.5,    1,     2.5,  5,
                                         10};
/* fsync latency: 50 µs … 1 s. */
static const double sync_buckets[] = {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                      0.01,    0.025,  0.05,    0.1,    0.25,  0.5,    1};

/* ---- names, labels, hashing ----------------------------------------------------------------- */

static bool
name_ok(const char *s, size_t max)
{
    size_t n = 0;
    if (s == NULL || s[0] == '\0' || (s[0] >= '0' && s[0] <= '9')) {
        return false;
    }
    for (; s[n] != '\0'; n++) {
        char c = s[n];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_')) {
            return false;
        }
    }
    return n < max;
}

static uint64_t
fnv1a(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s != '\0'; s++) {
        h ^= (uint8_t)*s;
        h *= 0x100000001b3ull;
    }
    return h;
}

/*
 * Appends one label value, escaped as the exposition format wants (\\, \", \n), other control
 * characters replaced by '?', cut at CLST_METRICS_LABEL_VALUE_MAX bytes on a UTF-8 character
 * boundary. `out` has room for 2 × CLST_METRICS_LABEL_VALUE_MAX bytes from *pos.
 */
static void
append_value(char *out, size_t *pos, const char *v)
{
    size_t n = strlen(v);
    if (n > CLST_METRICS_LABEL_VALUE_MAX) {
        n = CLST_METRICS_LABEL_VALUE_MAX;
        while (n > 0 && ((uint8_t)v[n] & 0xC0u) == 0x80u) {
            n--; /* v[n] continues a character: cut before that character */
        }
    }
    for (size_t i = 0; i < n; i++) {
        uint8_t c = (uint8_t)v[i];
        if (c == '\\' || c == '"') {
            out[(*pos)++] = '\\';
            out[(*pos)++] = (char)c;
        } else if (c == '\n') {
            out[(*pos)++] = '\\';
            out[(*pos)++] = 'n';
        } else if (c < 0x20u || c == 0x7Fu) {
            out[(*pos)++] = '?';
        } else {
            out[(*pos)++] = (char)c;
        }
    }
}

/* `a="x",b="y"` into out[LABEL_TEXT_MAX]. NULL values count as "". */
static void
render_labels(const struct family *f, const char *const *values, char *out)
{
    size_t pos = 0;
    for (size_t i = 0; i < f->label_count; i++) {
        size_t k = strlen(f->label_names[i]);
        if (i > 0) {
            out[pos++] = ',';
        }
        memcpy(out + pos, f->label_names[i], k);
        pos += k;
        out[pos++] = '=';
        out[pos++] = '"';
        append_value(out, &pos, values != NULL && values[i] != NULL ? values[i] : "");
        out[pos++] = '"';
    }
    out[pos] = '\0';
}

/* ---- series lookup and creation ------------------------------------------------------------- */

static struct series *
probe(struct family *f, uint64_t h, const char *labels, size_t *out_free_slot)
{
    size_t i = (size_t)(h & (SLOT_COUNT - 1u));
    for (size_t n = 0; n < SLOT_COUNT; n++) {
        struct series *s = atomic_load_explicit(&f->slots[i], memory_order_acquire);
        if (s == NULL) {
            *out_free_slot = i;
            return NULL;
        }
        if (s->hash == h && strcmp(s->labels, labels) == 0) {
            return s;
        }
        i = (i + 1u) & (SLOT_COUNT - 1u);
    }
    *out_free_slot = SLOT_COUNT; /* full (cannot happen: the cap keeps the load under 1/2) */
    return NULL;
}

static struct series *series_get(struct clst_metrics *m, struct family *f,
                                 const char *const *values);

/* True when every label value is "_other" (a family without labels has no such set). */
static bool
all_other(const struct family *f, const char *const *values)
{
    if (f->label_count == 0 || values == NULL) {
        return false;
    }
    for (size_t i = 0; i < f->label_count; i++) {
        if (values[i] == NULL || strcmp(values[i], OTHER_VALUE) != 0) {
            return false;
        }
    }
    return true;
}

/* Counts one label set refused by a full family (never for the overflow family itself, whose
 * label set is bounded by the number of families). */
static void
count_overflow(struct clst_metrics *m, const struct family *f)
{
    if (m->f_overflow == NULL || f == m->f_overflow) {
        return;
    }
    const char *v[1] = {f->name};
    struct series *s = series_get(m, m->f_overflow, v);
    if (s != NULL) {
        atomic_fetch_add_explicit(&s->value, 1, memory_order_relaxed);
    }
}

static struct series *
series_get(struct clst_metrics *m, struct family *f, const char *const *values)
{
    char labels[LABEL_TEXT_MAX];
    size_t slot;
    render_labels(f, values, labels);
    uint64_t h = fnv1a(labels);
    struct series *s = probe(f, h, labels, &slot);
    if (s != NULL) {
        return s; /* the fast path: no lock */
    }
    bool overflow = false;
    pthread_mutex_lock(&m->lock);
    s = probe(f, h, labels, &slot);
    if (s == NULL && slot < SLOT_COUNT) {
        if (f->series_count >= CLST_METRICS_SERIES_MAX && !all_other(f, values)) {
            overflow = true;
        } else {
            size_t extra = f->type == CLST_METRIC_HISTOGRAM ? f->bucket_count + 1u : 0u;
            s = calloc(1, sizeof(*s) + extra * sizeof(s->buckets[0]));
            char *copy = strdup(labels);
            if (s == NULL || copy == NULL) {
                free(s);
                free(copy);
                s = NULL;
            } else {
                s->hash = h;
                s->labels = copy;
                if (f->type == CLST_METRIC_GAUGE) {
                    double zero = 0.0;
                    uint64_t bits;
                    memcpy(&bits, &zero, sizeof(bits));
                    atomic_init(&s->value, bits);
                }
                f->series_count++;
                atomic_store_explicit(&f->slots[slot], s, memory_order_release);
            }
        }
    }
    pthread_mutex_unlock(&m->lock);
    if (overflow) {
        /* "_other" for every label: the one series allowed past the cap. */
        static const char *const other[CLST_METRICS_LABELS_MAX] = {OTHER_VALUE, OTHER_VALUE,
                                                                   OTHER_VALUE};
        count_overflow(m, f);
        s = series_get(m, f, other);
    }
    return s;
}

static struct family *
family_find(struct clst_metrics *m, const char *name)
{
    if (m == NULL || name == NULL) {
        return NULL;
    }
    size_t n = atomic_load_explicit(&m->family_count, memory_order_acquire);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(m->families[i]->name, name) == 0) {
            return m->families[i];
        }
    }
    return NULL;
}

/* ---- updates -------------------------------------------------------------------------------- */

static void
counter_add(struct clst_metrics *m, struct family *f, const char *const *values, uint64_t n)
{
    struct series *s = series_get(m, f, values);
    if (s != NULL) {
        atomic_fetch_add_explicit(&s->value, n, memory_order_relaxed);
    }
}

static void
histogram_observe_ns(struct clst_metrics *m, struct family *f, const char *const *values,
                     uint64_t ns)
{
    struct series *s = series_get(m, f, values);
    if (s == NULL) {
        return;
    }
    size_t i = 0;
    while (i < f->bucket_count && ns > f->bucket_ns[i]) {
        i++;
    }
    atomic_fetch_add_explicit(&s->buckets[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->sum_ns, ns, memory_order_relaxed);
}

static uint64_t
double_bits(double d)
{
    uint64_t b;
    memcpy(&b, &d, sizeof(b));
    return b;
}

static double
bits_double(uint64_t b)
{
    double d;
    memcpy(&d, &b, sizeof(d));
    return d;
}

enum clst_status
clst_metrics_counter_add(struct clst_metrics *m, const char *name, const char *const *values,
                         uint64_t n)
{
    struct family *f = family_find(m, name);
    if (f == NULL || f->type != CLST_METRIC_COUNTER) {
        return CLST_E_INVAL;
    }
    counter_add(m, f, values, n);
    return CLST_OK;
}

static void
counter_raise(struct series *s, uint64_t v)
{
    uint64_t old = atomic_load_explicit(&s->value, memory_order_relaxed);
    while (v > old && !atomic_compare_exchange_weak_explicit(&s->value, &old, v,
                                                             memory_order_relaxed,
                                                             memory_order_relaxed)) {
    }
}

enum clst_status
clst_metrics_counter_set(struct clst_metrics *m, const char *name, const char *const *values,
                         uint64_t v)
{
    struct family *f = family_find(m, name);
    if (f == NULL || f->type != CLST_METRIC_COUNTER || f->ns_seconds) {
        return CLST_E_INVAL;
    }
    struct series *s = series_get(m, f, values);
    if (s != NULL) {
        counter_raise(s, v);
    }
    return CLST_OK;
}

enum clst_status
clst_metrics_gauge_set(struct clst_metrics *m, const char *name, const char *const *values,
                       double v)
{
    struct family *f = family_find(m, name);
    if (f == NULL || f->type != CLST_METRIC_GAUGE) {
        return CLST_E_INVAL;
    }
    struct series *s = series_get(m, f, values);
    if (s != NULL) {
        atomic_store_explicit(&s->value, double_bits(v), memory_order_relaxed);
    }
    return CLST_OK;
}

enum clst_status
clst_metrics_gauge_add(struct clst_metrics *m, const char *name, const char *const *values,
                       double delta)
{
    struct family *f = family_find(m, name);
    if (f == NULL || f->type != CLST_METRIC_GAUGE) {
        return CLST_E_INVAL;
    }
    struct series *s = series_get(m, f, values);
    if (s != NULL) {
        uint64_t old = atomic_load_explicit(&s->value, memory_order_relaxed);
        while (!atomic_compare_exchange_weak_explicit(&s->value, &old,
                                                      double_bits(bits_double(old) + delta),
                                                      memory_order_relaxed,
                                                      memory_order_relaxed)) {
        }
    }
    return CLST_OK;
}

static bool
seconds_to_ns(double seconds, uint64_t *out)
{
    if (isnan(seconds) || seconds < 0.0) {
        return false;
    }
    if (seconds > MAX_OBSERVE_S) {
        seconds = MAX_OBSERVE_S;
    }
    *out = (uint64_t)(seconds * 1e9 + 0.5);
    return true;
}

enum clst_status
clst_metrics_observe(struct clst_metrics *m, const char *name, const char *const *values,
                     double seconds)
{
    struct family *f = family_find(m, name);
    uint64_t ns;
    if (f == NULL || f->type != CLST_METRIC_HISTOGRAM || !seconds_to_ns(seconds, &ns)) {
        return CLST_E_INVAL;
    }
    histogram_observe_ns(m, f, values, ns);
    return CLST_OK;
}

void
clst_metrics_sink(void *metrics, const char *name, double value)
{
    struct clst_metrics *m = metrics;
    struct family *f = family_find(m, name);
    if (f == NULL || f->label_count != 0) {
        return;
    }
    switch (f->type) {
    case CLST_METRIC_GAUGE:
        (void)clst_metrics_gauge_set(m, name, NULL, value);
        break;
    case CLST_METRIC_HISTOGRAM:
        (void)clst_metrics_observe(m, name, NULL, value);
        break;
    case CLST_METRIC_COUNTER:
        if (!isnan(value) && value >= 0.0 && value < 1.8e19) {
            counter_add(m, f, NULL, (uint64_t)(value + 0.5));
        }
        break;
    }
}

void
clst_metrics_storage_error(struct clst_metrics *m, const char *op)
{
    if (m == NULL || m->f_storage == NULL) {
        return;
    }
    const char *v[1] = {op != NULL ? op : "unknown"};
    counter_add(m, m->f_storage, v, 1);
}

/* ---- the request observer's work ------------------------------------------------------------ */

static const char *
attest_result(unsigned status)
{
    if (status >= 200 && status < 300) {
        return "success";
    }
    if (status >= 400 && status < 500) {
        return "rejected";
    }
    if (status >= 500 && status < 600) {
        return "error";
    }
    return "other";
}

/* The release handler's note, as a bounded label value: "grant"/"granted" → granted,
 * "deny"/"denied" → denied, dry runs (a policy test that releases nothing) apart, else "other". */
static const char *
release_decision(const char *note)
{
    if (strcmp(note, "grant") == 0 || strcmp(note, "granted") == 0) {
        return "granted";
    }
    if (strcmp(note, "deny") == 0 || strcmp(note, "denied") == 0) {
        return "denied";
    }
    if (strcmp(note, "dry-run-grant") == 0) {
        return "dry_run_granted";
    }
    if (strcmp(note, "dry-run-deny") == 0) {
        return "dry_run_denied";
    }
    return "other";
}

void
clst_metrics_request_record(struct clst_metrics *m, const struct clst_metrics_request *r)
{
    char op[CLST_METRICS_LABEL_VALUE_MAX + 1];
    char status[16];
    if (m == NULL || r == NULL) {
        return;
    }
    if (r->route != NULL) {
        /* Truncation is harmless: append_value cuts at the same size. */
        (void)snprintf(op, sizeof(op), "%s %s", clst_http_method_name(r->method), r->route);
    } else {
        memcpy(op, "unmatched", sizeof("unmatched"));
    }
    (void)snprintf(status, sizeof(status), "%u", r->status);
    const char *op_status[2] = {op, status};
    const char *op_only[1] = {op};
    counter_add(m, m->f_requests, op_status, 1);
    histogram_observe_ns(m, m->f_duration, op_only, r->elapsed_ns);
    if (r->status >= 500) {
        counter_add(m, m->f_server_errors, op_only, 1);
    }
    if (r->release_decision != NULL && r->key_name != NULL) {
        const char *v[2] = {r->key_name, release_decision(r->release_decision)};
        counter_add(m, m->f_releases, v, 1);
    }
    if (r->attest_type != NULL) {
        /* A 404 is an unknown type: never make a series of a name the client made up. */
        const char *v[2] = {r->status == 404 ? "_unknown" : r->attest_type,
                            attest_result(r->status)};
        counter_add(m, m->f_attest, v, 1);
    }
}

/* ---- definitions ---------------------------------------------------------------------------- */

/* The shortest %g text that reads back as `d` ("10", "0.0025", "5e-05", as Go's 'g' format
 * writes them; Prometheus parses `le` as a float). */
static void
format_bound(double d, char out[static 32])
{
    char cand[32];
    out[0] = '\0';
    for (int prec = 1; prec <= 17; prec++) {
        (void)snprintf(cand, sizeof(cand), "%.*g", prec, d);
        if (strtod(cand, NULL) == d && (out[0] == '\0' || strlen(cand) < strlen(out))) {
            memcpy(out, cand, strlen(cand) + 1);
        }
    }
}

static struct family *
define(struct clst_metrics *m, enum clst_metric_type type, const char *name, const char *help,
       const char *const *labels, const double *buckets, size_t bucket_count,
       struct clst_err *err)
{
    struct family *f = NULL;
    if (m == NULL || !name_ok(name, NAME_MAX_SIZE) || help == NULL ||
        (type != CLST_METRIC_COUNTER && type != CLST_METRIC_GAUGE &&
         type != CLST_METRIC_HISTOGRAM)) {
        clst_err_set(err, CLST_E_INVAL,
                     "metric name '%s' must match [a-zA-Z_][a-zA-Z0-9_]* (under %d bytes), with "
                     "a help text and a known type",
                     name != NULL ? name : "(null)", NAME_MAX_SIZE);
        return NULL;
    }
    size_t len = strlen(name);
    if (type == CLST_METRIC_COUNTER && (len < 6 || strcmp(name + len - 6, "_total") != 0)) {
        clst_err_set(err, CLST_E_INVAL, "counter '%s': counter names end in _total", name);
        return NULL;
    }
    if (type == CLST_METRIC_HISTOGRAM && buckets == NULL) {
        buckets = default_buckets;
        bucket_count = sizeof(default_buckets) / sizeof(default_buckets[0]);
    }
    if (type == CLST_METRIC_HISTOGRAM &&
        (bucket_count == 0 || bucket_count > CLST_METRICS_BUCKETS_MAX)) {
        clst_err_set(err, CLST_E_INVAL, "histogram '%s': 1 to %d buckets", name,
                     CLST_METRICS_BUCKETS_MAX);
        return NULL;
    }
    for (size_t i = 0; type == CLST_METRIC_HISTOGRAM && i < bucket_count; i++) {
        if (!(buckets[i] > 0.0 && buckets[i] <= MAX_OBSERVE_S) ||
            (i > 0 && !(buckets[i] > buckets[i - 1]))) {
            clst_err_set(err, CLST_E_INVAL,
                         "histogram '%s': bucket bounds must be positive seconds in strictly "
                         "increasing order (bucket %zu is not)",
                         name, i);
            return NULL;
        }
    }
    f = calloc(1, sizeof(*f));
    if (f == NULL || (f->help = strdup(help)) == NULL) {
        free(f);
        clst_err_set(err, CLST_E_NOMEM, "out of memory defining metric '%s'", name);
        return NULL;
    }
    f->type = type;
    memcpy(f->name, name, len + 1);
    for (size_t i = 0; labels != NULL && labels[i] != NULL; i++) {
        if (i >= CLST_METRICS_LABELS_MAX || !name_ok(labels[i], sizeof(f->label_names[0])) ||
            strncmp(labels[i], "__", 2) == 0 ||
            (type == CLST_METRIC_HISTOGRAM && strcmp(labels[i], "le") == 0)) {
            clst_err_set(err, CLST_E_INVAL,
                         "metric '%s': at most %d label names, each [a-zA-Z_][a-zA-Z0-9_]* not "
                         "starting with __ ('le' is reserved for histograms)",
                         name, CLST_METRICS_LABELS_MAX);
            goto fail;
        }
        memcpy(f->label_names[i], labels[i], strlen(labels[i]) + 1);
        f->label_count = i + 1;
    }
    if (type == CLST_METRIC_HISTOGRAM) {
        f->bucket_count = bucket_count;
        for (size_t i = 0; i < bucket_count; i++) {
            seconds_to_ns(buckets[i], &f->bucket_ns[i]);
            format_bound(buckets[i], f->bucket_text[i]);
        }
    }
    pthread_mutex_lock(&m->lock);
    size_t n = atomic_load_explicit(&m->family_count, memory_order_relaxed);
    bool exists = false;
    for (size_t i = 0; i < n; i++) {
        exists = exists || strcmp(m->families[i]->name, name) == 0;
    }
    if (exists || n >= CLST_METRICS_FAMILIES_MAX) {
        pthread_mutex_unlock(&m->lock);
        clst_err_set(err, exists ? CLST_E_CONFLICT : CLST_E_LIMIT,
                     exists ? "metric '%s' is already defined"
                            : "metric '%s': the registry is full (at most " "32 families)",
                     name);
        goto fail;
    }
    m->families[n] = f;
    atomic_store_explicit(&m->family_count, n + 1, memory_order_release);
    pthread_mutex_unlock(&m->lock);
    if (f->label_count == 0) {
        (void)series_get(m, f, NULL); /* label-free families show 0 from the start */
    }
    return f;
fail:
    free(f->help);
    free(f);
    return NULL;
}

enum clst_status
clst_metrics_define(struct clst_metrics *m, enum clst_metric_type type, const char *name,
                    const char *help, const char *const *labels, const double *buckets,
                    size_t bucket_count, struct clst_err *err)
{
    struct clst_err local;
    if (err == NULL) {
        err = &local;
    }
    clst_err_clear(err);
    if (define(m, type, name, help, labels, buckets, bucket_count, err) == NULL) {
        return err->status != CLST_OK ? err->status : CLST_E_INVAL;
    }
    return CLST_OK;
}

enum clst_status
clst_metrics_collector_add(struct clst_metrics *m,
                           void (*collect)(void *ctx, struct clst_metrics *m), void *ctx,
                           struct clst_err *err)
{
    if (m == NULL || collect == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "clst_metrics_collector_add: registry and function "
                                               "required");
    }
    pthread_mutex_lock(&m->lock);
    if (m->collector_count >= COLLECTORS_MAX) {
        pthread_mutex_unlock(&m->lock);
        return clst_err_set(err, CLST_E_LIMIT, "at most %d metrics collectors", COLLECTORS_MAX);
    }
    m->collectors[m->collector_count].collect = collect;
    m->collectors[m->collector_count].ctx = ctx;
    m->collector_count++;
    pthread_mutex_unlock(&m->lock);
    return CLST_OK;
}

static const char *const l_op_status[] = {"op", "status", NULL};
static const char *const l_op[] = {"op", NULL};
static const char *const l_key_decision[] = {"key", "decision", NULL};
static const char *const l_type_result[] = {"type", "result", NULL};
static const char *const l_family[] = {"family", NULL};

enum clst_status
clst_metrics_new(struct clst_metrics **out, struct clst_err *err)
{
    enum clst_status rc = CLST_E_NOMEM;
    struct clst_err local;
    if (err == NULL) {
        err = &local;
    }
    clst_err_clear(err);
    struct clst_metrics *m = calloc(1, sizeof(*m));
    if (out == NULL) {
        free(m);
        return clst_err_set(err, CLST_E_INVAL, "clst_metrics_new: out required");
    }
    if (m == NULL) {
        return clst_err_set(err, CLST_E_NOMEM, "out of memory creating the metrics registry");
    }
    if (pthread_mutex_init(&m->lock, NULL) != 0) {
        free(m);
        return clst_err_set(err, CLST_E_INTERNAL, "cannot create the metrics registry's mutex");
    }
    /* The overflow family first, so that every later family can report into it. */
    if ((m->f_overflow = define(m, CLST_METRIC_COUNTER, CLST_METRICS_SERIES_OVERFLOW,
                                "Label sets counted under \"_other\" because their family "
                                "already had its maximum number of series.",
                                l_family, NULL, 0, err)) == NULL ||
        (m->f_requests = define(m, CLST_METRIC_COUNTER, CLST_METRICS_HTTP_REQUESTS,
                                "HTTP requests answered, by operation (method and route "
                                "pattern) and status code.",
                                l_op_status, NULL, 0, err)) == NULL ||
        (m->f_duration = define(m, CLST_METRIC_HISTOGRAM, CLST_METRICS_HTTP_DURATION,
                                "Time from the arrival of a request to its response being "
                                "queued, by operation.",
                                l_op, NULL, 0, err)) == NULL ||
        (m->f_server_errors = define(m, CLST_METRIC_COUNTER, CLST_METRICS_HTTP_SERVER_ERRORS,
                                     "Requests answered with a 5xx status (storage, audit or "
                                     "internal failures), by operation.",
                                     l_op, NULL, 0, err)) == NULL ||
        (m->f_in_flight = define(m, CLST_METRIC_GAUGE, CLST_METRICS_HTTP_IN_FLIGHT,
                                 "Requests received and not yet completed (this scrape "
                                 "included).",
                                 NULL, NULL, 0, err)) == NULL ||
        (m->f_releases = define(m, CLST_METRIC_COUNTER, CLST_METRICS_RELEASES,
                                "Secure key release decisions, by key name and decision "
                                "(granted, denied).",
                                l_key_decision, NULL, 0, err)) == NULL ||
        (m->f_attest = define(m, CLST_METRIC_COUNTER, CLST_METRICS_ATTESTATIONS,
                              "Attestation requests (POST /attest/{type}), by type and result "
                              "(success, rejected = 4xx, error = 5xx).",
                              l_type_result, NULL, 0, err)) == NULL ||
        define(m, CLST_METRIC_GAUGE, CLST_METRICS_AUDIT_QUEUE_DEPTH,
               "Audit records waiting for the next group commit.", NULL, NULL, 0, err) == NULL ||
        define(m, CLST_METRIC_HISTOGRAM, CLST_METRICS_AUDIT_SYNC_SECONDS,
               "Duration of each audit log sync (one group commit).", NULL, sync_buckets,
               sizeof(sync_buckets) / sizeof(sync_buckets[0]), err) == NULL ||
        define(m, CLST_METRIC_COUNTER, CLST_METRICS_AUDIT_RECORDS, "Audit records made durable.",
               NULL, NULL, 0, err) == NULL ||
        define(m, CLST_METRIC_COUNTER, CLST_METRICS_AUDIT_SYNCS,
               "Audit group commits (write + fdatasync) that succeeded.", NULL, NULL, 0,
               err) == NULL ||
        (m->f_audit_sync_time = define(m, CLST_METRIC_COUNTER, CLST_METRICS_AUDIT_SYNC_TIME,
                                       "Time spent in audit group commits (write + fdatasync).",
                                       NULL, NULL, 0, err)) == NULL ||
        define(m, CLST_METRIC_GAUGE, CLST_METRICS_AUDIT_SYNC_MAX,
               "Longest audit group commit since the start.", NULL, NULL, 0, err) == NULL ||
        define(m, CLST_METRIC_COUNTER, CLST_METRICS_AUDIT_HELD,
               "Audit group commits held for records of read-only requests about to come "
               "(--audit-commit-delay).",
               NULL, NULL, 0, err) == NULL ||
        define(m, CLST_METRIC_GAUGE, CLST_METRICS_AUDIT_FAILED,
               "1 when the audit log is in its failed state (every request is refused with 503 "
               "until a restart), else 0.",
               NULL, NULL, 0, err) == NULL ||
        (m->f_storage = define(m, CLST_METRIC_COUNTER, CLST_METRICS_STORAGE_ERRORS,
                               "Storage backend errors, by operation.", l_op, NULL, 0, err)) ==
            NULL ||
        define(m, CLST_METRIC_GAUGE, "process_start_time_seconds",
               "Start time of the process since the Unix epoch in seconds.", NULL, NULL, 0,
               err) == NULL) {
        rc = err->status != CLST_OK ? err->status : CLST_E_NOMEM;
        clst_metrics_free(m);
        return rc;
    }
    m->f_audit_sync_time->ns_seconds = true;
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) == 0) {
        (void)clst_metrics_gauge_set(m, "process_start_time_seconds", NULL, (double)ts.tv_sec);
    }
    *out = m;
    return CLST_OK;
}

void
clst_metrics_free(struct clst_metrics *m)
{
    if (m == NULL) {
        return;
    }
    size_t n = atomic_load_explicit(&m->family_count, memory_order_acquire);
    for (size_t i = 0; i < n; i++) {
        struct family *f = m->families[i];
        for (size_t j = 0; j < SLOT_COUNT; j++) {
            struct series *s = atomic_load_explicit(&f->slots[j], memory_order_relaxed);
            if (s != NULL) {
                free(s->labels);
                free(s);
            }
        }
        free(f->help);
        free(f);
    }
    pthread_mutex_destroy(&m->lock);
    free(m);
}

/* ---- the exposition ------------------------------------------------------------------------- */

static int
series_cmp(const void *a, const void *b)
{
    const struct series *x = *(const struct series *const *)a;
    const struct series *y = *(const struct series *const *)b;
    return strcmp(x->labels, y->labels);
}

/* HELP text: backslash and newline escaped. */
static enum clst_status
append_help(struct clst_buf *b, const char *help)
{
    enum clst_status rc = CLST_OK;
    for (const char *p = help; *p != '\0' && rc == CLST_OK; p++) {
        if (*p == '\\') {
            rc = clst_buf_append_str(b, "\\\\");
        } else if (*p == '\n') {
            rc = clst_buf_append_str(b, "\\n");
        } else {
            rc = clst_buf_append_byte(b, (uint8_t)*p);
        }
    }
    return rc;
}

static enum clst_status
append_double(struct clst_buf *b, double d)
{
    if (isnan(d)) {
        return clst_buf_append_str(b, "NaN");
    }
    if (isinf(d)) {
        return clst_buf_append_str(b, d > 0 ? "+Inf" : "-Inf");
    }
    return clst_buf_appendf(b, "%.17g", d);
}

/* name{labels[,extra]} or name{extra} or name */
static enum clst_status
append_sample_name(struct clst_buf *b, const char *name, const char *suffix, const char *labels,
                   const char *extra)
{
    bool has_labels = labels[0] != '\0';
    bool has_extra = extra != NULL;
    if (!has_labels && !has_extra) {
        return clst_buf_appendf(b, "%s%s ", name, suffix);
    }
    return clst_buf_appendf(b, "%s%s{%s%s%s} ", name, suffix, labels,
                            has_labels && has_extra ? "," : "", has_extra ? extra : "");
}

static enum clst_status
render_series(struct clst_buf *b, const struct family *f, struct series *s)
{
    enum clst_status rc;
    switch (f->type) {
    case CLST_METRIC_COUNTER:
        if ((rc = append_sample_name(b, f->name, "", s->labels, NULL)) != CLST_OK) {
            return rc;
        }
        if (f->ns_seconds) {
            uint64_t ns = atomic_load_explicit(&s->value, memory_order_relaxed);
            return clst_buf_appendf(b, "%llu.%09llu\n", (unsigned long long)(ns / NS_PER_S),
                                    (unsigned long long)(ns % NS_PER_S));
        }
        return clst_buf_appendf(
            b, "%llu\n",
            (unsigned long long)atomic_load_explicit(&s->value, memory_order_relaxed));
    case CLST_METRIC_GAUGE:
        if ((rc = append_sample_name(b, f->name, "", s->labels, NULL)) != CLST_OK ||
            (rc = append_double(b, bits_double(atomic_load_explicit(&s->value,
                                                                    memory_order_relaxed)))) !=
                CLST_OK) {
            return rc;
        }
        return clst_buf_append_byte(b, '\n');
    case CLST_METRIC_HISTOGRAM: {
        /* Cumulative counts from one read of each bucket; _count is the +Inf bucket, so the
         * two always agree even while requests are being counted. */
        uint64_t cum = 0;
        char le[48];
        for (size_t i = 0; i <= f->bucket_count; i++) {
            cum += atomic_load_explicit(&s->buckets[i], memory_order_relaxed);
            (void)snprintf(le, sizeof(le), "le=\"%s\"",
                           i < f->bucket_count ? f->bucket_text[i] : "+Inf");
            if ((rc = append_sample_name(b, f->name, "_bucket", s->labels, le)) != CLST_OK ||
                (rc = clst_buf_appendf(b, "%llu\n", (unsigned long long)cum)) != CLST_OK) {
                return rc;
            }
        }
        uint64_t sum = atomic_load_explicit(&s->sum_ns, memory_order_relaxed);
        if ((rc = append_sample_name(b, f->name, "_sum", s->labels, NULL)) != CLST_OK ||
            (rc = clst_buf_appendf(b, "%llu.%09llu\n", (unsigned long long)(sum / NS_PER_S),
                                   (unsigned long long)(sum % NS_PER_S))) != CLST_OK ||
            (rc = append_sample_name(b, f->name, "_count", s->labels, NULL)) != CLST_OK) {
            return rc;
        }
        return clst_buf_appendf(b, "%llu\n", (unsigned long long)cum);
    }
    }
    return CLST_E_INTERNAL;
}

static const char *
type_name(enum clst_metric_type t)
{
    switch (t) {
    case CLST_METRIC_COUNTER:
        return "counter";
    case CLST_METRIC_GAUGE:
        return "gauge";
    case CLST_METRIC_HISTOGRAM:
        return "histogram";
    }
    return "untyped";
}

enum clst_status
clst_metrics_render(struct clst_metrics *m, char **out, size_t *out_size, struct clst_err *err)
{
    enum clst_status rc = CLST_E_INTERNAL;
    struct clst_buf b;
    struct series **list = NULL;
    clst_buf_init(&b, CLST_METRICS_OUTPUT_MAX);
    if (m == NULL || out == NULL || out_size == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "clst_metrics_render: registry and outputs "
                                               "required");
    }
    /* Collectors first, outside the lock (they update gauges, which may create series). */
    struct collector collectors[COLLECTORS_MAX];
    pthread_mutex_lock(&m->lock);
    size_t cc = m->collector_count;
    memcpy(collectors, m->collectors, sizeof(collectors));
    pthread_mutex_unlock(&m->lock);
    for (size_t i = 0; i < cc; i++) {
        collectors[i].collect(collectors[i].ctx, m);
    }
    list = malloc((CLST_METRICS_SERIES_MAX + 1u) * sizeof(*list));
    if (list == NULL) {
        rc = clst_err_set(err, CLST_E_NOMEM, "out of memory rendering metrics");
        goto out;
    }
    size_t n = atomic_load_explicit(&m->family_count, memory_order_acquire);
    for (size_t i = 0; i < n; i++) {
        struct family *f = m->families[i];
        size_t count = 0;
        for (size_t j = 0; j < SLOT_COUNT && count <= CLST_METRICS_SERIES_MAX; j++) {
            struct series *s = atomic_load_explicit(&f->slots[j], memory_order_acquire);
            if (s != NULL) {
                list[count++] = s;
            }
        }
        qsort(list, count, sizeof(*list), series_cmp);
        if ((rc = clst_buf_appendf(&b, "# HELP %s ", f->name)) != CLST_OK ||
            (rc = append_help(&b, f->help)) != CLST_OK ||
            (rc = clst_buf_appendf(&b, "\n# TYPE %s %s\n", f->name, type_name(f->type))) !=
                CLST_OK) {
            goto fail;
        }
        for (size_t j = 0; j < count; j++) {
            if ((rc = render_series(&b, f, list[j])) != CLST_OK) {
                goto fail;
            }
        }
    }
    if ((rc = clst_buf_terminate(&b)) != CLST_OK) {
        goto fail;
    }
    *out = (char *)clst_buf_steal(&b, out_size);
    rc = CLST_OK;
    goto out;
fail:
    clst_err_set(err, rc, "the metrics exposition could not be written (%s)",
                 clst_status_str(rc));
out:
    free(list);
    clst_buf_cleanup(&b);
    return rc;
}

/* ---- server glue ---------------------------------------------------------------------------- */

static bool
ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

static enum clst_status
observer_after(void *ctx, const struct clst_http_request *req, unsigned status,
               struct clst_err *err)
{
    (void)err;
    struct clst_metrics_request r;
    memset(&r, 0, sizeof(r));
    r.method = clst_http_request_method(req);
    r.route = clst_http_request_route(req);
    r.status = status;
    r.elapsed_ns = clst_http_request_elapsed_ns(req);
    if (r.route != NULL && ends_with(r.route, "/release")) {
        r.key_name = clst_http_request_param(req, "name");
        r.release_decision = clst_http_request_note_get(req, CLST_METRICS_NOTE_RELEASE_DECISION);
    }
    if (r.route != NULL && r.method == CLST_HTTP_POST && strcmp(r.route, "/attest/{type}") == 0) {
        r.attest_type = clst_http_request_param(req, "type");
    }
    clst_metrics_request_record(ctx, &r);
    return CLST_OK; /* metrics never refuse a request */
}

static enum clst_status
handle_metrics(void *ctx, const struct clst_http_request *req, struct clst_http_response *resp,
               struct clst_err *err)
{
    (void)req;
    char *text = NULL;
    size_t size = 0;
    enum clst_status rc = clst_metrics_render(ctx, &text, &size, err);
    if (rc != CLST_OK) {
        return rc;
    }
    rc = clst_http_response_body(resp, 200, CLST_METRICS_CONTENT_TYPE, text, size);
    free(text);
    if (rc != CLST_OK) {
        return clst_err_set(err, rc, "cannot queue the metrics response");
    }
    return CLST_OK;
}

static void
collect_server(void *ctx, struct clst_metrics *m)
{
    struct clst_server *s = ctx;
    struct series *series = series_get(m, m->f_in_flight, NULL);
    if (series != NULL) {
        atomic_store_explicit(&series->value, double_bits((double)clst_server_in_flight(s)),
                              memory_order_relaxed);
    }
}

static void
collect_audit(void *ctx, struct clst_metrics *m)
{
    struct clst_audit_stats st;
    memset(&st, 0, sizeof(st));
    clst_audit_stats_get(ctx, &st);
    (void)clst_metrics_gauge_set(m, CLST_METRICS_AUDIT_QUEUE_DEPTH, NULL, (double)st.queue_depth);
    (void)clst_metrics_counter_set(m, CLST_METRICS_AUDIT_RECORDS, NULL, st.records);
    (void)clst_metrics_counter_set(m, CLST_METRICS_AUDIT_SYNCS, NULL, st.syncs);
    (void)clst_metrics_counter_set(m, CLST_METRICS_AUDIT_HELD, NULL, st.held_batches);
    (void)clst_metrics_gauge_set(m, CLST_METRICS_AUDIT_SYNC_MAX, NULL,
                                 (double)st.sync_ns_max / 1e9);
    (void)clst_metrics_gauge_set(m, CLST_METRICS_AUDIT_FAILED, NULL, st.failed ? 1.0 : 0.0);
    struct series *s = series_get(m, m->f_audit_sync_time, NULL);
    if (s != NULL) {
        counter_raise(s, st.sync_ns_total);
    }
}

enum clst_status
clst_metrics_audit_attach(struct clst_metrics *m, struct clst_audit *audit, struct clst_err *err)
{
    if (m == NULL || audit == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "clst_metrics_audit_attach: registry and audit "
                                               "log required");
    }
    enum clst_status rc = clst_metrics_collector_add(m, collect_audit, audit, err);
    if (rc == CLST_OK) {
        clst_audit_sink_set(audit, clst_metrics_sink, m); /* each commit's latency */
    }
    return rc;
}

enum clst_status
clst_metrics_register(struct clst_metrics *m, struct clst_server *server, bool protect,
                      struct clst_err *err)
{
    enum clst_status rc;
    if (m == NULL || server == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "clst_metrics_register: registry and server "
                                               "required");
    }
    struct clst_server_route route = {
        .method = CLST_HTTP_GET,
        .pattern = CLST_METRICS_PATH,
        .flags = protect ? CLST_ROUTE_PROTECTED : 0u,
        .handler = handle_metrics,
        .ctx = m,
    };
    struct clst_server_observer obs = {.after = observer_after, .ctx = m};
    if ((rc = clst_server_route_add(server, &route, err)) != CLST_OK ||
        (rc = clst_server_observer_add(server, &obs, err)) != CLST_OK ||
        (rc = clst_metrics_collector_add(m, collect_server, server, err)) != CLST_OK) {
        return rc;
    }
    m->server = server;
    return CLST_OK;
}
