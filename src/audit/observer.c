/*
 * The audit observer on the server: one "attempt" record before the handler runs and one
 * "outcome" record before the response is queued, each durable before the request goes on.
 *
 * Fail-closed contract:
 *   - `before` fails (503, the handler does not run) when the attempt cannot be made durable:
 *     no effect without a durable record of what was tried.
 *   - `after` fails when the outcome cannot be made durable: the client gets 503 instead of the
 *     handler's answer. The handler's effect may have happened then (a key may exist although the
 *     client saw 503); the durable attempt record (same request id) says what was tried. The log
 *     is then in its sticky failed state, so no later request changes anything.
 * Requests the server refuses itself (401, 404, 413, …) get an outcome record only, and so do
 * read-only operations (GET, and POST encrypt/decrypt/sign/verify/wrapkey/unwrapkey/release/
 * backup, /rng): their only effect is the answer, which waits for the outcome record.
 * GET /healthz and GET /metrics are not recorded (they are neither vault nor attestation
 * requests, and monitoring must keep working when the log has failed).
 */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <cloister/server.h>

#include "audit/audit_int.h"

#define VALUE_MAX    256u /* bytes kept of a client-chosen value (name, version, note) */
#define ATTEMPT_NOTE "audit.attempt"

static bool
is_literal(const char *seg, size_t n)
{
    return n > 0 && seg[0] != '{';
}

static void
append(char *out, size_t cap, size_t *len, const char *s, size_t n)
{
    if (*len + n + 1 > cap) {
        n = *len + 1 < cap ? cap - *len - 1 : 0;
    }
    memcpy(out + *len, s, n);
    *len += n;
    out[*len] = '\0';
}

void
clst_audit_op_name(const char *method, const char *route, const char *type_param, char *out,
                   size_t cap)
{
    size_t len = 0, literals = 0;
    bool last_param = false;
    if (cap == 0) {
        return;
    }
    out[0] = '\0';
    if (route == NULL) {
        append(out, cap, &len, "unrouted", 8);
        return;
    }
    if (strcmp(route, "/attest/{type}") == 0) {
        /* The type is the client's: copied only when it is a plain name of at most 32. */
        char t[33];
        size_t n = 0;
        const char *tp = type_param != NULL ? type_param : "";
        bool plain = strlen(tp) <= 32;
        for (const char *p = tp; plain && *p != '\0'; p++) {
            char c = *p;
            plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-';
            t[n++] = c;
        }
        if (!plain) {
            n = 0;
        }
        t[n] = '\0';
        append(out, cap, &len, "attest.", 7);
        append(out, cap, &len, n > 0 ? t : "other", n > 0 ? n : 5);
        return;
    }
    const char *p = route;
    while (*p != '\0') {
        while (*p == '/') {
            p++;
        }
        const char *seg = p;
        while (*p != '\0' && *p != '/') {
            p++;
        }
        size_t n = (size_t)(p - seg);
        if (n == 0) {
            continue;
        }
        if (is_literal(seg, n)) {
            while (n > 0 && seg[0] == '.') { /* ".well-known" → "well-known" */
                seg++;
                n--;
            }
            if (len > 0) {
                append(out, cap, &len, ".", 1);
            }
            append(out, cap, &len, seg, n);
            literals++;
            last_param = false;
        } else {
            last_param = true;
        }
    }
    if (literals == 0) {
        append(out, cap, &len, "root", 4);
    }
    if (last_param || literals == 1) {
        const char *verb = "other";
        if (method != NULL) {
            if (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0) {
                verb = last_param ? "get" : "list";
            } else if (strcmp(method, "PUT") == 0) {
                verb = "set";
            } else if (strcmp(method, "PATCH") == 0) {
                verb = "update";
            } else if (strcmp(method, "DELETE") == 0) {
                verb = "delete";
            } else if (strcmp(method, "POST") == 0) {
                verb = "post";
            }
        }
        append(out, cap, &len, ".", 1);
        append(out, cap, &len, verb, strlen(verb));
    }
}

static const char *
result_of(unsigned status)
{
    if (status < 400) {
        return "ok";
    }
    switch (status) {
    case 400:
        return "bad-request";
    case 401:
        return "unauthenticated";
    case 403:
        return "denied";
    case 404:
        return "not-found";
    case 409:
        return "conflict";
    case 413:
    case 414:
        return "too-large";
    case 503:
        return "unavailable";
    default:
        return status < 500 ? "rejected" : "error";
    }
}

/* A JSON string of at most VALUE_MAX bytes of s, cut at a UTF-8 character boundary. */
static json_t *
str(const char *s)
{
    size_t n = strlen(s);
    if (n > VALUE_MAX) {
        n = VALUE_MAX;
        while (n > 0 && ((unsigned char)s[n] & 0xc0u) == 0x80u) {
            n--;
        }
    }
    /* jansson escapes control characters but not DEL; records are printable ASCII. */
    char buf[VALUE_MAX + 1];
    memcpy(buf, s, n);
    for (size_t i = 0; i < n; i++) {
        if (buf[i] == 0x7f) {
            buf[i] = '?';
        }
    }
    json_t *j = json_stringn(buf, n);
    return j != NULL ? j : json_string("?");
}

static bool
put(json_t *obj, const char *key, const char *value)
{
    return value == NULL || json_object_set_new(obj, key, str(value)) == 0;
}

static bool
ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/*
 * Operations that change nothing in the vault or the attestation service: reads, and the
 * cryptographic operations whose only effect is their answer. For them the outcome record alone
 * is enough to fail closed (the answer is queued only once it is durable; if it cannot be
 * written, the client gets 503 and nothing has left the service), so they cost one record and
 * one shared sync, not two. Everything else (and anything not listed) writes an attempt first.
 */
static bool
read_only(const struct clst_http_request *req)
{
    static const char *const ops[] = {"/encrypt", "/decrypt", "/sign",   "/verify",
                                      "/wrapkey", "/unwrapkey", "/release", "/backup"};
    enum clst_http_method m = clst_http_request_method(req);
    const char *route = clst_http_request_route(req);
    if (route == NULL) {
        return true; /* refused before routing: no handler runs */
    }
    if (m == CLST_HTTP_GET || m == CLST_HTTP_HEAD) {
        return true;
    }
    if (m != CLST_HTTP_POST) {
        return false;
    }
    if (strcmp(route, "/rng") == 0) {
        return true;
    }
    if (strncmp(route, "/keys/", 6) != 0) {
        return false;
    }
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        if (ends_with(route, ops[i])) {
            return true;
        }
    }
    return false;
}

static bool
skipped(const struct clst_http_request *req)
{
    const char *route = clst_http_request_route(req);
    return route != NULL && (strcmp(route, "/healthz") == 0 || strcmp(route, "/metrics") == 0);
}

/* The members both records share. */
static json_t *
common(const struct clst_http_request *req, const char *type)
{
    char op[96];
    const char *method = clst_http_method_name(clst_http_request_method(req));
    const char *route = clst_http_request_route(req);
    const char *name = clst_http_request_param(req, "name");
    json_t *o = json_object();
    if (o == NULL) {
        return NULL;
    }
    if (name == NULL) {
        name = clst_http_request_param(req, "id");
    }
    clst_audit_op_name(method, route, clst_http_request_param(req, "type"), op, sizeof(op));
    if (!put(o, "type", type) || !put(o, "rid", clst_http_request_id(req)) || !put(o, "op", op) ||
        !put(o, "method", method) || !put(o, "route", route) ||
        !put(o, "identity", clst_http_request_identity(req)) ||
        !put(o, "client", clst_http_request_client_addr(req)) || !put(o, "name", name) ||
        !put(o, "version", clst_http_request_param(req, "version")) ||
        !put(o, "target_type", clst_http_request_param(req, "type"))) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* The object's members (its text without the braces), malloc'd; NULL when it cannot be built.
 * Takes the reference to `o`. */
static char *
members_text(json_t *o)
{
    char *text = NULL;
    if (o != NULL) {
        text = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_PRESERVE_ORDER);
        json_decref(o);
    }
    if (text == NULL) {
        return NULL;
    }
    size_t n = strlen(text);
    text[n - 1] = '\0'; /* the closing brace */
    memmove(text, text + 1, n - 1);
    return text;
}

/* Fail closed: a record that cannot even be built is a record that is not durable. */
static enum clst_status
unbuildable(struct clst_err *err)
{
    return clst_err_set(err, CLST_E_IO, "the audit record cannot be built (out of memory)");
}

/* Appends the object's members and waits for durability. */
static enum clst_status
record(struct clst_audit *a, json_t *o, unsigned flags, uint64_t *out_seq, struct clst_err *err)
{
    char *text = members_text(o);
    if (text == NULL) {
        return unbuildable(err);
    }
    enum clst_status st = clst_audit_append(a, text, flags, out_seq, err);
    free(text);
    return st;
}

/* Tells `after` that this request's attempt is durable: its outcome may use the reserve, and
 * names the attempt. */
static enum clst_status
note_attempt(const struct clst_http_request *req, uint64_t seq, struct clst_err *err)
{
    char text[24];
    snprintf(text, sizeof(text), "%" PRIu64, seq);
    if (clst_http_request_note(req, ATTEMPT_NOTE, text) != CLST_OK) {
        return clst_err_set(err, CLST_E_IO, "the audit observer cannot note the attempt");
    }
    return CLST_OK;
}

static enum clst_status
before(void *ctx, const struct clst_http_request *req, struct clst_err *err)
{
    uint64_t seq = 0;
    if (skipped(req) || read_only(req)) {
        return CLST_OK;
    }
    enum clst_status st = record(ctx, common(req, "attempt"), 0, &seq, err);
    return st == CLST_OK ? note_attempt(req, seq, err) : st;
}

/* The outcome record's object (NULL when it cannot be built) and the attempt's seq (0: none). */
static json_t *
outcome(const struct clst_http_request *req, unsigned status, uint64_t *out_attempt_seq)
{
    json_t *o = common(req, "outcome");
    json_t *notes = json_object();
    const char *decision = clst_http_request_note_get(req, "release.decision");
    const char *attempt = clst_http_request_note_get(req, ATTEMPT_NOTE);
    uint64_t attempt_seq = 0;
    if (attempt != NULL && clst_parse_u64(attempt, 1, INT64_MAX, &attempt_seq, NULL) != CLST_OK) {
        attempt_seq = 0;
    }
    bool ok = o != NULL && notes != NULL &&
              json_object_set_new(o, "status", json_integer((json_int_t)status)) == 0 &&
              put(o, "result", result_of(status)) && put(o, "decision", decision) &&
              (attempt_seq == 0 ||
               json_object_set_new(o, "attempt", json_integer((json_int_t)attempt_seq)) == 0) &&
              json_object_set_new(o, "elapsed_us",
                                  json_integer((json_int_t)(clst_http_request_elapsed_ns(req) /
                                                            1000u))) == 0;
    for (size_t i = 0; ok && i < clst_http_request_note_count(req); i++) {
        const char *k, *v;
        if (clst_http_request_note_at(req, i, &k, &v) && strncmp(k, "audit.", 6) != 0) {
            ok = json_object_set_new(notes, k, str(v)) == 0;
        }
    }
    if (ok && json_object_size(notes) > 0) {
        ok = json_object_set(o, "notes", notes) == 0;
    }
    json_decref(notes);
    if (!ok) {
        json_decref(o);
        o = NULL;
    }
    *out_attempt_seq = attempt_seq;
    return o;
}

/* An outcome that could not be made durable after an attempt that was: say that the handler
 * may have acted, so that the client and the operator know. */
static enum clst_status
outcome_failed(const struct clst_http_request *req, enum clst_status st, uint64_t attempt_seq,
               unsigned status, struct clst_err *err)
{
    if (st != CLST_OK && attempt_seq != 0 && status < 500) {
        clst_err_set(err, CLST_E_IO,
                     "the outcome of request %s could not be recorded in the audit log, so it is "
                     "not confirmed (it may have taken effect); the service refuses requests until "
                     "the audit log is fixed and the service restarted",
                     clst_http_request_id(req));
    }
    return st;
}

static enum clst_status
after(void *ctx, const struct clst_http_request *req, unsigned status, struct clst_err *err)
{
    uint64_t attempt_seq = 0;
    if (skipped(req)) {
        return CLST_OK;
    }
    json_t *o = outcome(req, status, &attempt_seq);
    enum clst_status st =
        record(ctx, o, attempt_seq != 0 ? CLST_AUDIT_RESERVED : 0u, NULL, err);
    return outcome_failed(req, st, attempt_seq, status, err);
}

/* ---- the asynchronous forms: the request waits suspended, not in a server thread ---------- */

struct pending {
    struct clst_http_request *req;
    uint64_t attempt_seq; /* after: the attempt's seq (0: none) */
    unsigned status;      /* after: the answer's status */
    bool is_before;
};

static void
pending_done(void *ctx, enum clst_status st, uint64_t seq, const struct clst_err *aerr)
{
    struct pending *p = ctx;
    struct clst_err err;
    clst_err_clear(&err);
    if (aerr != NULL) {
        err = *aerr;
    }
    if (p->is_before && st == CLST_OK) {
        st = note_attempt(p->req, seq, &err);
    } else if (!p->is_before) {
        st = outcome_failed(p->req, st, p->attempt_seq, p->status, &err);
    }
    struct clst_http_request *req = p->req;
    free(p);
    clst_http_request_resume(req, st, &err);
}

/* Queues the record and suspends the request until it is durable (always returns true). */
static bool
defer_record(struct clst_audit *a, struct clst_http_request *req, char *text, unsigned flags,
             struct pending *p)
{
    struct clst_err err;
    clst_err_clear(&err);
    clst_http_request_defer(req);
    enum clst_status st = clst_audit_append_async(a, text, flags, pending_done, p, &err);
    free(text);
    if (st != CLST_OK) {
        pending_done(p, st, 0, &err); /* refused at once: resume with the refusal */
    }
    return true;
}

static bool
before_async(void *ctx, struct clst_http_request *req, enum clst_status *out_st,
             struct clst_err *err)
{
    *out_st = CLST_OK;
    if (skipped(req) || read_only(req)) {
        return false;
    }
    char *text = members_text(common(req, "attempt"));
    struct pending *p = calloc(1, sizeof(*p));
    if (text == NULL || p == NULL) {
        free(text);
        free(p);
        *out_st = unbuildable(err);
        return false;
    }
    p->req = req;
    p->is_before = true;
    return defer_record(ctx, req, text, 0, p);
}

static bool
after_async(void *ctx, struct clst_http_request *req, unsigned status, enum clst_status *out_st,
            struct clst_err *err)
{
    uint64_t attempt_seq = 0;
    *out_st = CLST_OK;
    if (skipped(req)) {
        return false;
    }
    char *text = members_text(outcome(req, status, &attempt_seq));
    struct pending *p = calloc(1, sizeof(*p));
    if (text == NULL || p == NULL) {
        free(text);
        free(p);
        *out_st = outcome_failed(req, unbuildable(err), attempt_seq, status, err);
        return false;
    }
    p->req = req;
    p->attempt_seq = attempt_seq;
    p->status = status;
    return defer_record(ctx, req, text, attempt_seq != 0 ? CLST_AUDIT_RESERVED : 0u, p);
}

/* A read-only request's outcome record follows its handler within microseconds: the writer may
 * hold a batch for it (clst_audit_expect_begin). Writes are not hinted: their handlers wait for
 * the store's own sync, far longer than a batch is held. */
static bool
handler_begins(void *ctx, const struct clst_http_request *req)
{
    if (skipped(req) || !read_only(req)) {
        return false;
    }
    clst_audit_expect_begin(ctx);
    return true;
}

static void
handler_answered(void *ctx)
{
    clst_audit_expect_end(ctx);
}

enum clst_status
clst_audit_observe(struct clst_audit *a, struct clst_server *server, struct clst_err *err)
{
    if (a == NULL || server == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "audit observe: log and server required");
    }
    struct clst_server_observer obs = {.before = before,
                                       .after = after,
                                       .ctx = a,
                                       .before_async = before_async,
                                       .after_async = after_async,
                                       .handler_begins = handler_begins,
                                       .handler_answered = handler_answered};
    return clst_server_observer_add(server, &obs, err);
}
