/*
 * Cloister metrics: `GET /metrics` in the Prometheus text exposition format (version 0.0.4).
 *
 * A registry of metric families (counters, gauges, histograms), each with a fixed list of label
 * names and a bounded number of label sets (series). The server feeds it through a request
 * observer (requests by operation and status, latency per operation, releases by key and
 * decision, attestations by type and result, 5xx answers per operation); other components feed
 * it through the functions below (the audit log's queue depth and sync latency, storage errors).
 *
 * Threading: every update is lock-free (C11 atomics, relaxed order) once its series exists; a new
 * series is created under a mutex, once. Series are never removed. A family holds at most
 * `CLST_METRICS_SERIES_MAX` series: later label sets are counted under the label value "_other"
 * (and in cloister_metrics_series_overflow_total), so a client can never make the registry grow
 * without bound by inventing key or attestation type names.
 *
 * Label values never carry secrets: operation names are route patterns ("POST
 * /keys/{name}/{version}/encrypt", never the request path), and key names are object names, which
 * the audit log records as well.
 */
#ifndef CLOISTER_METRICS_H
#define CLOISTER_METRICS_H

#include <cloister/core.h>
#include <cloister/server.h>

#define CLST_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define CLST_METRICS_PATH         "/metrics"

#define CLST_METRICS_FAMILIES_MAX   32   /* families per registry */
#define CLST_METRICS_LABELS_MAX     3    /* label names per family */
#define CLST_METRICS_SERIES_MAX     1024 /* label sets per family (then "_other") */
#define CLST_METRICS_BUCKETS_MAX    20   /* histogram buckets, +Inf not counted */
#define CLST_METRICS_LABEL_VALUE_MAX 128 /* bytes of one label value (longer ones are cut) */
#define CLST_METRICS_OUTPUT_MAX     (8u * 1024u * 1024u) /* cap of one exposition */

/* The families every registry has (names for the functions below). */
#define CLST_METRICS_HTTP_REQUESTS      "cloister_http_requests_total"           /* op, status */
#define CLST_METRICS_HTTP_DURATION      "cloister_http_request_duration_seconds" /* op */
#define CLST_METRICS_HTTP_SERVER_ERRORS "cloister_http_server_errors_total"      /* op */
#define CLST_METRICS_HTTP_IN_FLIGHT     "cloister_http_requests_in_flight"       /* gauge */
#define CLST_METRICS_RELEASES           "cloister_key_releases_total"        /* key, decision */
#define CLST_METRICS_ATTESTATIONS       "cloister_attestations_total"        /* type, result */
#define CLST_METRICS_AUDIT_QUEUE_DEPTH  "cloister_audit_queue_depth"         /* gauge */
#define CLST_METRICS_AUDIT_SYNC_SECONDS "cloister_audit_sync_seconds"        /* histogram */
#define CLST_METRICS_AUDIT_RECORDS      "cloister_audit_records_total"       /* counter */
#define CLST_METRICS_AUDIT_SYNCS        "cloister_audit_syncs_total"         /* counter */
#define CLST_METRICS_AUDIT_SYNC_TIME    "cloister_audit_sync_time_seconds_total" /* counter */
#define CLST_METRICS_AUDIT_SYNC_MAX     "cloister_audit_sync_max_seconds"    /* gauge */
#define CLST_METRICS_AUDIT_FAILED       "cloister_audit_failed"              /* gauge, 0 or 1 */
#define CLST_METRICS_AUDIT_HELD         "cloister_audit_held_batches_total"  /* counter */
#define CLST_METRICS_STORAGE_ERRORS     "cloister_storage_errors_total"      /* op */
#define CLST_METRICS_SERIES_OVERFLOW    "cloister_metrics_series_overflow_total" /* family */

/* The note a release handler attaches ("grant"/"granted", "deny"/"denied", "dry-run-grant",
 * "dry-run-deny"), read by the request observer and counted as decision="granted", "denied",
 * "dry_run_granted", "dry_run_denied" (anything else: "other"). */
#define CLST_METRICS_NOTE_RELEASE_DECISION "release.decision"

enum clst_metric_type {
    CLST_METRIC_COUNTER = 1,
    CLST_METRIC_GAUGE,
    CLST_METRIC_HISTOGRAM,
};

struct clst_metrics;
struct clst_audit;

/* A registry with the families above (empty: no series until something is counted). */
enum clst_status clst_metrics_new(struct clst_metrics **out, struct clst_err *err);
/* NULL is a no-op. Free it only after the server it was registered on is stopped and freed. */
void clst_metrics_free(struct clst_metrics *m);

/*
 * Defines another family (before the registry is shared between threads, e.g. before the server
 * starts). `name` and label names match [a-zA-Z_][a-zA-Z0-9_]*; counters' names end in "_total".
 * `labels` is NULL-terminated (NULL: no labels); `buckets` are the histograms' upper bounds in
 * seconds, strictly increasing, without +Inf (NULL: the default latency buckets). CLST_E_CONFLICT
 * when the name exists, CLST_E_LIMIT past CLST_METRICS_FAMILIES_MAX.
 */
enum clst_status clst_metrics_define(struct clst_metrics *m, enum clst_metric_type type,
                                     const char *name, const char *help,
                                     const char *const *labels, const double *buckets,
                                     size_t bucket_count, struct clst_err *err);

/*
 * Updates. `values` holds one value per label name of the family (NULL when it has none).
 * Unknown names, a wrong type or a negative counter increment are ignored (CLST_E_INVAL returned,
 * nothing logged: callers on the request path need not check). Thread-safe, lock-free once the
 * series exists.
 */
enum clst_status clst_metrics_counter_add(struct clst_metrics *m, const char *name,
                                          const char *const *values, uint64_t n);
/* Sets a counter to `v` (for collectors that mirror a monotonic total kept elsewhere; a value
 * lower than the current one is ignored, so the counter never goes back). */
enum clst_status clst_metrics_counter_set(struct clst_metrics *m, const char *name,
                                          const char *const *values, uint64_t v);
enum clst_status clst_metrics_gauge_set(struct clst_metrics *m, const char *name,
                                        const char *const *values, double v);
enum clst_status clst_metrics_gauge_add(struct clst_metrics *m, const char *name,
                                        const char *const *values, double delta);
/* Histograms count durations: `seconds` >= 0 (kept with nanosecond resolution in _sum). */
enum clst_status clst_metrics_observe(struct clst_metrics *m, const char *name,
                                      const char *const *values, double seconds);

/*
 * A label-free sink for components that do not include this header (the audit log takes it as
 * `void (*)(void *ctx, const char *name, double value)` with `ctx` = the registry): a gauge is
 * set to `value`, a histogram observes `value` seconds, a counter is incremented by `value`
 * (rounded; negative values ignored). Only families without labels; anything else is ignored.
 */
void clst_metrics_sink(void *metrics, const char *name, double value);

/* Counts one storage error (cloister_storage_errors_total{op=op}); `op` names the operation,
 * e.g. "key_create" (NULL: "unknown"). */
void clst_metrics_storage_error(struct clst_metrics *m, const char *op);

/*
 * A collector runs at each scrape, before the text is written, to refresh gauges that are cheaper
 * to read than to track (e.g. a queue's depth). At most 8; before the server starts.
 */
enum clst_status clst_metrics_collector_add(struct clst_metrics *m,
                                            void (*collect)(void *ctx, struct clst_metrics *m),
                                            void *ctx, struct clst_err *err);

/*
 * Reports the audit log's numbers (clst_audit_stats_get) at each scrape: queue depth, records
 * made durable, syncs, total and maximum sync time, and whether the log is in its failed state.
 * `audit` must outlive the registry's last scrape (stop the server before closing the log).
 */
enum clst_status clst_metrics_audit_attach(struct clst_metrics *m, struct clst_audit *audit,
                                           struct clst_err *err);

/* The exposition text (runs the collectors first). The caller frees *out with free(). */
enum clst_status clst_metrics_render(struct clst_metrics *m, char **out, size_t *out_size,
                                     struct clst_err *err);

/*
 * What the request observer records for one answered request (exposed for tests and for callers
 * that are not the server): `route` is the matched pattern or NULL (counted as op="unmatched"),
 * `release_decision` the release handler's note or NULL, `type` the /attest/{type} parameter or
 * NULL.
 */
struct clst_metrics_request {
    enum clst_http_method method;
    const char *route;
    unsigned status;
    uint64_t elapsed_ns;
    const char *key_name;         /* route parameter "name" of the release routes */
    const char *release_decision; /* the release.decision note, or NULL */
    const char *attest_type;      /* route parameter "type" of POST /attest/{type} */
};
void clst_metrics_request_record(struct clst_metrics *m, const struct clst_metrics_request *r);

/*
 * Registers `GET /metrics` on `server` and a request observer that records every answered
 * request; it also reports the server's requests in flight at each scrape. Call before
 * clst_server_start(). With `protect` the route requires the server's authentication hook (any
 * principal the vault accepts); without it, anyone who can reach the listener may scrape (the
 * default for a loopback listener: see docs/operations.md).
 */
enum clst_status clst_metrics_register(struct clst_metrics *m, struct clst_server *server,
                                       bool protect, struct clst_err *err);

#endif /* CLOISTER_METRICS_H */
