/*
 * The HTTPS server over libmicrohttpd (GnuTLS backend, TLS 1.2/1.3 only).
 *
 * Request lifecycle (MHD callbacks, on the worker threads):
 *   on_uri        a request line arrived: allocate the request, copy the raw target (MHD's own
 *                 unescaping is disabled: parse.c decides what a path means), count it in flight.
 *   on_request #1 headers complete: parse the target, route (404/405), authenticate protected
 *                 routes (401/403), refuse a declared Content-Length over the cap (413) — all
 *                 decided before a byte of body is stored.
 *   on_request #n body chunks: appended to a capped, wiped buffer; past the cap the rest is
 *                 read and dropped (up to DISCARD_MAX, then the connection is cut) and the
 *                 request is answered 413 at the end (MHD 0.9.75 cannot queue a response
 *                 mid-upload, and an early close would reset a client that is still sending).
 *   on_request #z body complete: run the handler, send its response.
 *   on_completed  log the request, release it, and wake a draining stop when none are left.
 */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>
#include <openssl/crypto.h>

#include "server/server_int.h"

/* TLS 1.2 and 1.3 only, AEAD ciphers only (no CBC, no SHA-1 MACs). */
#define TLS_PRIORITIES                                                                             \
    "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-CIPHER-ALL:+AES-256-GCM:+AES-128-GCM:"            \
    "+CHACHA20-POLY1305:-MAC-ALL:+AEAD"

#define DEFAULT_CHALLENGE_AUTHORIZATION "https://login.cloister.invalid/cloister"
#define DEFAULT_CHALLENGE_RESOURCE      "https://vault.cloister.invalid"
#define CONNECTION_MEMORY               (64u * 1024u) /* request line + headers per connection */
#define LOG_PATH_MAX                    200
/* An oversized body is read and dropped (never stored) up to this much, so that the client,
 * still sending, can read our 413; beyond it the connection is cut. */
#define DISCARD_MAX (1024u * 1024u)

static const char fallback_body[] =
    "{\"error\":{\"code\":\"InternalError\",\"message\":\"internal error\"}}";

struct clst_server {
    char *host;
    uint16_t port;
    bool ipv6;
    char *cert_pem;
    struct clst_secret *key_pem;
    char *challenge; /* the whole WWW-Authenticate value */
    unsigned threads;
    size_t max_body;
    unsigned max_connections;
    unsigned idle_timeout;
    enum clst_server_io io;

    struct clst_route_table routes;
    struct clst_server_auth auth;
    bool have_auth;
    const char *(*principal_name)(void *auth_ctx, const void *principal);
    struct clst_server_observer observers[CLST_SERVER_OBSERVERS_MAX];
    size_t observer_count;

    struct MHD_Daemon *daemon;
    bool started;
    atomic_bool stopping;
    atomic_uint in_flight;
    unsigned deferred; /* requests suspended for a deferred observer step (lock) */
    bool allow_defer;  /* an observer has asynchronous steps: MHD_ALLOW_SUSPEND_RESUME */
    /* Request ids: a random 64-bit prefix drawn at start, then a counter (unique within the
     * process, not guessable across restarts; they label logs and records, they grant nothing). */
    uint64_t id_prefix;
    atomic_uint_fast64_t id_next;
    pthread_mutex_t lock; /* guards drained-signalling and last_error */
    pthread_cond_t drained;
    char last_error[256]; /* the last message MHD logged, for start-up failures */
};

struct clst_http_response {
    unsigned status;
    bool set;
    json_t *json;
    uint8_t *raw;
    size_t raw_size;
    char *content_type;
    size_t header_count;
    char *header_name[CLST_HTTP_HEADER_MAX];
    char *header_value[CLST_HTTP_HEADER_MAX];
};

/* clst_http_request.hinted holds one bit per observer. */
_Static_assert(CLST_SERVER_OBSERVERS_MAX <= 16, "too many observers for the hinted bits");

struct clst_http_request {
    struct clst_server *server;
    struct MHD_Connection *conn; /* valid during callbacks only */
    enum clst_http_method method;
    bool started, responded, too_large, out_of_memory, raw_too_long;
    bool in_begin;    /* inside the first call */
    bool bodyless;    /* no Content-Length (or 0) and no Transfer-Encoding */
    bool has_pending; /* a refusal decided in the first call, sent in the last */
    unsigned hinted;  /* bit i: observer i's handler_answered is still due */
    unsigned status;
    size_t declared; /* Content-Length, once known to be within the cap */
    size_t discarded;
    void *principal;
    bool has_principal;
    uint64_t t0;
    struct clst_buf body;
    struct clst_route_match match;
    char id[CLST_SERVER_REQUEST_ID_SIZE];
    char client[INET6_ADDRSTRLEN];
    char method_name[16];
    size_t raw_size;
    char raw[CLST_HTTP_URI_MAX + 1];
    char path[CLST_HTTP_URI_MAX + 1]; /* raw path, without the query */
    struct clst_http_target target;
    struct clst_http_response *pending;
    bool observed; /* the observers' `after` ran */
    /* Observer steps (before, after) may be deferred: the connection is suspended until another
     * thread calls clst_http_request_resume(); the next call continues at phase_i + 1. */
    struct MHD_Connection *mhd_conn; /* for resuming: valid while the request lives */
    enum { PH_NONE, PH_BEFORE, PH_AFTER } phase;
    size_t phase_i;
    bool complete; /* the whole request has been read (the final call): steps may be deferred */
    enum clst_status resume_st;
    struct clst_err resume_err;
    struct clst_http_response held; /* the answer while the `after` steps run */
    bool after_refused;
    struct clst_err after_first;
    size_t note_count;
    char note_key[CLST_HTTP_NOTES_MAX][CLST_HTTP_NOTE_KEY_MAX + 1];
    char *note_value[CLST_HTTP_NOTES_MAX];
};


/* ---- responses ------------------------------------------------------------------------------ */

static void
response_reset(struct clst_http_response *resp)
{
    json_decref(resp->json);
    if (resp->raw != NULL) {
        clst_wipe(resp->raw, resp->raw_size);
        free(resp->raw);
    }
    free(resp->content_type);
    for (size_t i = 0; i < resp->header_count; i++) {
        free(resp->header_name[i]);
        free(resp->header_value[i]);
    }
    memset(resp, 0, sizeof(*resp));
}

/* Drops a body but keeps the extra headers. */
static void
response_clear_body(struct clst_http_response *resp)
{
    json_decref(resp->json);
    resp->json = NULL;
    if (resp->raw != NULL) {
        clst_wipe(resp->raw, resp->raw_size);
        free(resp->raw);
    }
    resp->raw = NULL;
    resp->raw_size = 0;
    free(resp->content_type);
    resp->content_type = NULL;
}

void
clst_http_response_json_new(struct clst_http_response *resp, unsigned status, json_t *body)
{
    response_clear_body(resp);
    resp->set = true;
    if (body == NULL) {
        /* Most likely an allocation failed while the handler built the body. */
        resp->status = 500;
        resp->json = json_pack("{s:{s:s,s:s}}", "error", "code", CLST_HTTP_CODE_INTERNAL, "message",
                               "the response could not be built");
        return;
    }
    resp->status = status;
    resp->json = body;
}

enum clst_status
clst_http_response_body(struct clst_http_response *resp, unsigned status, const char *content_type,
                        const void *data, size_t size)
{
    if (content_type == NULL || (data == NULL && size > 0)) {
        return CLST_E_INVAL;
    }
    for (const char *c = content_type; *c != '\0'; c++) {
        if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e) {
            return CLST_E_INVAL;
        }
    }
    uint8_t *copy = malloc(size > 0 ? size : 1);
    char *ct = strdup(content_type);
    if (copy == NULL || ct == NULL) {
        free(copy);
        free(ct);
        return CLST_E_NOMEM;
    }
    if (size > 0) {
        memcpy(copy, data, size);
    }
    response_clear_body(resp);
    resp->set = true;
    resp->status = status;
    resp->raw = copy;
    resp->raw_size = size;
    resp->content_type = ct;
    return CLST_OK;
}

void
clst_http_response_empty(struct clst_http_response *resp, unsigned status)
{
    response_clear_body(resp);
    resp->set = true;
    resp->status = status;
}

/* Messages go into JSON, which must be UTF-8: keep a valid message, else replace every
 * non-ASCII or control byte. */
static void
sanitize(char *msg)
{
    size_t n = strlen(msg);
    bool clean = clst_server_utf8_valid((const unsigned char *)msg, n);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)msg[i];
        if (c < 0x20 || c == 0x7f || (!clean && c >= 0x80)) {
            msg[i] = '?';
        }
    }
}

static void response_verror(struct clst_http_response *resp, unsigned status, const char *code,
                            const char *fmt, va_list ap) __attribute__((format(printf, 4, 0)));

static void
response_verror(struct clst_http_response *resp, unsigned status, const char *code, const char *fmt,
                va_list ap)
{
    char msg[CLST_ERR_MSG_SIZE + 128];
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    if (n < 0) {
        snprintf(msg, sizeof(msg), "error");
    }
    sanitize(msg);
    json_t *body = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", msg);
    clst_http_response_json_new(resp, status, body);
}

void
clst_http_response_error(struct clst_http_response *resp, unsigned status, const char *code,
                         const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    response_verror(resp, status, code, fmt, ap);
    va_end(ap);
}

static bool
token_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static bool
header_reserved(const char *name)
{
    static const char *const reserved[] = {"Content-Type",    "Content-Length",
                                           "Connection",      "Transfer-Encoding",
                                           "x-ms-request-id", "WWW-Authenticate"};
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
        if (strcasecmp(name, reserved[i]) == 0) {
            return true;
        }
    }
    return false;
}

static enum clst_status
add_header(struct clst_http_response *resp, const char *name, const char *value)
{
    if (resp->header_count == CLST_HTTP_HEADER_MAX) {
        return CLST_E_LIMIT;
    }
    char *n = strdup(name);
    char *v = strdup(value);
    if (n == NULL || v == NULL) {
        free(n);
        free(v);
        return CLST_E_NOMEM;
    }
    resp->header_name[resp->header_count] = n;
    resp->header_value[resp->header_count] = v;
    resp->header_count++;
    return CLST_OK;
}

enum clst_status
clst_http_response_header(struct clst_http_response *resp, const char *name, const char *value)
{
    if (resp == NULL || name == NULL || value == NULL || name[0] == '\0') {
        return CLST_E_INVAL;
    }
    for (const char *c = name; *c != '\0'; c++) {
        if (!token_char((unsigned char)*c)) {
            return CLST_E_INVAL;
        }
    }
    for (const char *c = value; *c != '\0'; c++) {
        unsigned char u = (unsigned char)*c;
        if ((u < 0x20 && u != '\t') || u > 0x7e) {
            return CLST_E_INVAL;
        }
    }
    if (header_reserved(name)) {
        return CLST_E_INVAL;
    }
    return add_header(resp, name, value);
}

/* ---- requests ------------------------------------------------------------------------------- */

enum clst_http_method
clst_http_request_method(const struct clst_http_request *req)
{
    return req->method;
}

const char *
clst_http_request_path(const struct clst_http_request *req)
{
    return req->path;
}

const char *
clst_http_request_param(const struct clst_http_request *req, const char *name)
{
    for (size_t i = 0; name != NULL && i < req->match.param_count; i++) {
        if (strcmp(req->match.names[i], name) == 0) {
            return req->match.values[i];
        }
    }
    return NULL;
}

const char *
clst_http_request_query(const struct clst_http_request *req, const char *key)
{
    for (size_t i = 0; key != NULL && i < req->target.query_count; i++) {
        if (strcmp(req->target.query[i].key, key) == 0) {
            return req->target.query[i].value;
        }
    }
    return NULL;
}

const char *
clst_http_request_api_version(const struct clst_http_request *req)
{
    return clst_http_request_query(req, "api-version");
}

size_t
clst_http_request_query_count(const struct clst_http_request *req)
{
    return req->target.query_count;
}

bool
clst_http_request_query_at(const struct clst_http_request *req, size_t i, const char **out_key,
                           const char **out_value)
{
    if (i >= req->target.query_count) {
        return false;
    }
    *out_key = req->target.query[i].key;
    *out_value = req->target.query[i].value;
    return true;
}

const char *
clst_http_request_header(const struct clst_http_request *req, const char *name)
{
    if (req->conn == NULL || name == NULL) {
        return NULL;
    }
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const uint8_t *
clst_http_request_body(const struct clst_http_request *req, size_t *out_size)
{
    *out_size = req->body.size;
    return req->body.size > 0 ? req->body.data : (const uint8_t *)"";
}

enum clst_status
clst_http_request_json(const struct clst_http_request *req, json_t **out, struct clst_err *err)
{
    json_error_t jerr;
    if (req->body.size == 0) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "the request body is empty; send a JSON "
                            "object");
    }
    json_t *j =
        json_loadb((const char *)req->body.data, req->body.size, JSON_REJECT_DUPLICATES, &jerr);
    if (j == NULL) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "the request body is not valid JSON (line %d, column %d)", jerr.line,
                            jerr.column);
    }
    if (!json_is_object(j)) {
        json_decref(j);
        return clst_err_set(err, CLST_E_MALFORMED, "the request body must be a JSON object");
    }
    *out = j;
    return CLST_OK;
}

const char *
clst_http_request_id(const struct clst_http_request *req)
{
    return req->id;
}

const char *
clst_http_request_client_addr(const struct clst_http_request *req)
{
    return req->client;
}

void *
clst_http_request_principal(const struct clst_http_request *req)
{
    return req->principal;
}

const char *
clst_http_request_route(const struct clst_http_request *req)
{
    return req->match.route != NULL ? req->match.route->def.pattern : NULL;
}

const char *
clst_http_request_identity(const struct clst_http_request *req)
{
    const struct clst_server *s = req->server;
    if (!req->has_principal || s->principal_name == NULL) {
        return NULL;
    }
    return s->principal_name(s->auth.ctx, req->principal);
}

uint64_t
clst_http_request_elapsed_ns(const struct clst_http_request *req)
{
    return clst_monotonic_ns() - req->t0;
}

static bool
note_key_ok(const char *key)
{
    size_t n = 0;
    for (; key[n] != '\0'; n++) {
        char c = key[n];
        if (n >= CLST_HTTP_NOTE_KEY_MAX ||
            !((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
              c == '-')) {
            return false;
        }
    }
    return n > 0;
}

static bool
note_value_ok(const char *value)
{
    size_t n = 0;
    for (; value[n] != '\0'; n++) {
        if (n >= CLST_HTTP_NOTE_VALUE_MAX || (unsigned char)value[n] < 0x20 ||
            value[n] == 0x7f) {
            return false;
        }
    }
    return true;
}

enum clst_status
clst_http_request_note(const struct clst_http_request *creq, const char *key, const char *value)
{
    if (creq == NULL || key == NULL || value == NULL || !note_key_ok(key) ||
        !note_value_ok(value)) {
        return CLST_E_INVAL;
    }
    /* Notes are per request and a request is handled by one thread at a time. */
    struct clst_http_request *req = (struct clst_http_request *)(uintptr_t)creq;
    size_t i = 0;
    while (i < req->note_count && strcmp(req->note_key[i], key) != 0) {
        i++;
    }
    if (i == req->note_count && i == CLST_HTTP_NOTES_MAX) {
        return CLST_E_LIMIT;
    }
    char *copy = strdup(value);
    if (copy == NULL) {
        return CLST_E_NOMEM;
    }
    if (i == req->note_count) {
        memcpy(req->note_key[i], key, strlen(key) + 1);
        req->note_count++;
    } else {
        free(req->note_value[i]);
    }
    req->note_value[i] = copy;
    return CLST_OK;
}

size_t
clst_http_request_note_count(const struct clst_http_request *req)
{
    return req->note_count;
}

bool
clst_http_request_note_at(const struct clst_http_request *req, size_t i, const char **out_key,
                          const char **out_value)
{
    if (i >= req->note_count) {
        return false;
    }
    *out_key = req->note_key[i];
    *out_value = req->note_value[i];
    return true;
}

const char *
clst_http_request_note_get(const struct clst_http_request *req, const char *key)
{
    for (size_t i = 0; i < req->note_count; i++) {
        if (strcmp(req->note_key[i], key) == 0) {
            return req->note_value[i];
        }
    }
    return NULL;
}

/* ---- sending -------------------------------------------------------------------------------- */

struct body_block {
    size_t size;
    uint8_t data[];
};

/* Response bodies may carry secrets (a secret's value): wipe them once MHD is done. */
static void
free_body(void *cls)
{
    struct body_block *b = cls;
    clst_wipe(b->data, b->size);
    free(b);
}

/* A response over a private, wiped copy of data[0..size). */
static struct MHD_Response *
block_response(const void *data, size_t size)
{
    if (size > SIZE_MAX - sizeof(struct body_block)) {
        return NULL;
    }
    struct body_block *b = malloc(sizeof(*b) + size);
    if (b == NULL) {
        return NULL;
    }
    b->size = size;
    if (size > 0) {
        memcpy(b->data, data, size);
    }
    struct MHD_Response *r =
        MHD_create_response_from_buffer_with_free_callback_cls(size, b->data, free_body, b);
    if (r == NULL) {
        free_body(b);
    }
    return r;
}

static struct MHD_Response *
make_mhd_response(const struct clst_http_response *resp, const char **content_type)
{
    *content_type = NULL;
    if (resp->json != NULL) {
        size_t size = json_dumpb(resp->json, NULL, 0, JSON_COMPACT);
        if (size == 0 || size > SIZE_MAX - sizeof(struct body_block)) {
            return NULL;
        }
        struct body_block *b = malloc(sizeof(*b) + size);
        if (b == NULL) {
            return NULL;
        }
        b->size = size;
        if (json_dumpb(resp->json, (char *)b->data, size, JSON_COMPACT) != size) {
            free_body(b);
            return NULL;
        }
        struct MHD_Response *r =
            MHD_create_response_from_buffer_with_free_callback_cls(size, b->data, free_body, b);
        if (r == NULL) {
            free_body(b);
            return NULL;
        }
        *content_type = "application/json; charset=utf-8";
        return r;
    }
    if (resp->content_type != NULL) {
        *content_type = resp->content_type;
        return block_response(resp->raw, resp->raw_size);
    }
    return MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
}

static enum MHD_Result send_response_now(struct clst_http_request *req,
                                         const struct clst_http_response *resp);

/* Sends the held answer, or a 503 when an `after` step refused it; frees the held answer. */
static enum MHD_Result
send_held(struct clst_http_request *req)
{
    enum MHD_Result ret;
    if (!req->after_refused) {
        ret = send_response_now(req, &req->held);
        response_reset(&req->held);
        return ret;
    }
    const struct clst_err *first = &req->after_first;
    clst_log_error("request %s: %s %s answered 503 after its %u: %s", req->id, req->method_name,
                   req->path, req->held.status,
                   first->msg[0] != '\0' ? first->msg : "observer failed");
    response_reset(&req->held);
    struct clst_http_response alt;
    memset(&alt, 0, sizeof(alt));
    clst_http_response_error(&alt, 503, CLST_HTTP_CODE_SERVICE_UNAVAILABLE, "%s",
                             first->msg[0] != '\0' ? first->msg
                                                    : "the service cannot record this request");
    ret = send_response_now(req, &alt);
    response_reset(&alt);
    return ret;
}

static void
after_result(struct clst_http_request *req, enum clst_status st, const struct clst_err *err)
{
    if (st != CLST_OK && !req->after_refused) {
        req->after_refused = true;
        req->after_first = *err;
    }
}

/*
 * Runs the observers' `after` steps from `from` on, then sends the held answer. With can_defer
 * (the whole request has been read) an asynchronous step may suspend the request: MHD_YES, and
 * the call after clst_http_request_resume() continues here.
 */
static enum MHD_Result
run_after(struct clst_http_request *req, size_t from, bool can_defer)
{
    struct clst_server *s = req->server;
    for (size_t i = from; i < s->observer_count; i++) {
        const struct clst_server_observer *o = &s->observers[i];
        struct clst_err err;
        enum clst_status st = CLST_OK;
        clst_err_clear(&err);
        /* Due once this step has been called; cleared first, as req may be gone after it. */
        bool hinted = (req->hinted & (1u << i)) != 0;
        bool deferred = false, ran = true;
        req->hinted &= ~(1u << i);
        if (can_defer && o->after_async != NULL) {
            req->phase = PH_AFTER;
            req->phase_i = i;
            deferred = o->after_async(o->ctx, req, req->held.status, &st, &err);
            if (!deferred) {
                req->phase = PH_NONE;
            }
        } else if (o->after != NULL) {
            st = o->after(o->ctx, req, req->held.status, &err);
        } else {
            ran = false;
        }
        if (hinted) {
            o->handler_answered(o->ctx);
        }
        if (deferred) {
            return MHD_YES; /* suspended; nothing more may touch req in this call */
        }
        if (ran) {
            after_result(req, st, &err);
        }
    }
    return send_held(req);
}

/*
 * Runs the observers' `after`, then sends `resp` (or a 503 when an observer refused). Takes
 * `resp`'s contents (it is left empty).
 */
static enum MHD_Result
send_response(struct clst_http_request *req, struct clst_http_response *resp, bool can_defer)
{
    struct clst_server *s = req->server;
    if (req->observed || s->observer_count == 0) {
        return send_response_now(req, resp);
    }
    req->observed = true;
    req->status = resp->status;
    req->held = *resp;
    memset(resp, 0, sizeof(*resp));
    return run_after(req, 0, can_defer);
}

static enum MHD_Result
send_response_now(struct clst_http_request *req, const struct clst_http_response *resp)
{
    struct clst_server *s = req->server;
    const char *content_type = NULL;
    unsigned status = resp->status;
    struct MHD_Response *r = make_mhd_response(resp, &content_type);
    if (r == NULL) {
        clst_log_error("request %s: could not build the %u response; answering 500", req->id,
                       status);
        status = 500;
        content_type = "application/json; charset=utf-8";
        r = block_response(fallback_body, sizeof(fallback_body) - 1);
        if (r == NULL) {
            return MHD_NO;
        }
    } else {
        for (size_t i = 0; i < resp->header_count; i++) {
            if (MHD_add_response_header(r, resp->header_name[i], resp->header_value[i]) !=
                MHD_YES) {
                clst_log_warn("request %s: could not add header %s", req->id, resp->header_name[i]);
            }
        }
    }
    bool ok = true;
    if (content_type != NULL) {
        ok =
            ok && MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type) == MHD_YES;
    }
    ok = ok && MHD_add_response_header(r, "x-ms-request-id", req->id) == MHD_YES;
    ok = ok && MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store") == MHD_YES;
    ok = ok && MHD_add_response_header(r, "X-Content-Type-Options", "nosniff") == MHD_YES;
    if (status == 401) {
        ok = ok &&
             MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, s->challenge) == MHD_YES;
    }
    if (atomic_load(&s->stopping)) {
        ok = ok && MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close") == MHD_YES;
    }
    if (!ok) {
        MHD_destroy_response(r);
        return MHD_NO;
    }
    enum MHD_Result ret = MHD_queue_response(req->conn, status, r);
    MHD_destroy_response(r);
    req->responded = true;
    req->status = status;
    return ret;
}

static enum MHD_Result send_error(struct clst_http_request *req, unsigned status, const char *code,
                                  const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static enum MHD_Result
send_error(struct clst_http_request *req, unsigned status, const char *code, const char *fmt, ...)
{
    struct clst_http_response resp;
    memset(&resp, 0, sizeof(resp));
    va_list ap;
    va_start(ap, fmt);
    response_verror(&resp, status, code, fmt, ap);
    va_end(ap);
    if (status == 405) {
        char allow[64];
        clst_server_allow_header(req->match.allowed, allow, sizeof(allow));
        (void)add_header(&resp, "Allow", allow);
    }
    /*
     * A response queued before MHD has read the whole request makes MHD close the connection.
     * A request without a body is complete already, so keep its refusal for the last call and
     * the connection stays usable (the SDKs' challenge flow retries on it after a 401). A
     * request with a body is refused at once, without reading the body.
     */
    if (req->in_begin && req->bodyless) {
        struct clst_http_response *p = malloc(sizeof(*p));
        if (p != NULL) {
            *p = resp;
            req->pending = p;
            req->has_pending = true;
            return MHD_YES;
        }
    }
    enum MHD_Result ret = send_response(req, &resp, req->complete);
    response_reset(&resp);
    return ret;
}

/* ---- MHD callbacks -------------------------------------------------------------------------- */

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static void
on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    struct clst_server *s = cls;
    char line[256];
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    if (n < 0) {
        return;
    }
    size_t len = strlen(line);
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) {
        line[--len] = '\0';
    }
    pthread_mutex_lock(&s->lock);
    memcpy(s->last_error, line, len + 1);
    pthread_mutex_unlock(&s->lock);
    /* TLS handshake failures from scanners and old clients are routine: debug level. */
    clst_log_debug("https: %s", line);
}

/* MHD's unescaping is off: parse.c decodes the raw target itself. */
static size_t
unescape_none(void *cls, struct MHD_Connection *conn, char *s)
{
    (void)cls;
    (void)conn;
    return strlen(s);
}

static void *
on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    struct clst_server *s = cls;
    struct clst_http_request *req = calloc(1, sizeof(*req));
    if (req == NULL) {
        return NULL; /* on_request then closes the connection */
    }
    req->server = s;
    req->mhd_conn = conn;
    req->t0 = clst_monotonic_ns();
    snprintf(req->method_name, sizeof(req->method_name), "-");
    clst_buf_init_secret(&req->body, s->max_body);
    size_t n = strlen(uri);
    if (n > CLST_HTTP_URI_MAX) {
        req->raw_too_long = true;
        n = 0;
    }
    memcpy(req->raw, uri, n);
    req->raw[n] = '\0';
    req->raw_size = n;
    size_t p = 0;
    while (p < n && uri[p] != '?') {
        p++;
    }
    memcpy(req->path, uri, p);
    req->path[p] = '\0';
    snprintf(req->id, sizeof(req->id), "%016" PRIx64 "%016" PRIx64, s->id_prefix,
             (uint64_t)atomic_fetch_add(&s->id_next, 1));
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    snprintf(req->client, sizeof(req->client), "unknown");
    if (ci != NULL && ci->client_addr != NULL) {
        const struct sockaddr *sa = ci->client_addr;
        if (sa->sa_family == AF_INET) {
            struct sockaddr_in in4;
            memcpy(&in4, sa, sizeof(in4));
            (void)inet_ntop(AF_INET, &in4.sin_addr, req->client, sizeof(req->client));
        } else if (sa->sa_family == AF_INET6) {
            struct sockaddr_in6 in6;
            memcpy(&in6, sa, sizeof(in6));
            (void)inet_ntop(AF_INET6, &in6.sin6_addr, req->client, sizeof(req->client));
        }
    }
    atomic_fetch_add(&s->in_flight, 1);
    return req;
}

/* Calls handler_answered for the observers whose call is still due (see clst_server_observer),
 * and marks them done: a request that ended before its `after` steps. */
static void
answer_hints(struct clst_http_request *req)
{
    const struct clst_server *s = req->server;
    unsigned due = req->hinted;
    req->hinted = 0;
    for (size_t i = 0; due != 0 && i < s->observer_count; i++) {
        if ((due & (1u << i)) != 0) {
            s->observers[i].handler_answered(s->observers[i].ctx);
        }
    }
}

static void
request_free(struct clst_http_request *req)
{
    struct clst_server *s = req->server;
    answer_hints(req);
    if (req->has_principal && s->auth.principal_free != NULL) {
        s->auth.principal_free(s->auth.ctx, req->principal);
    }
    clst_buf_cleanup(&req->body);
    for (size_t i = 0; i < req->note_count; i++) {
        free(req->note_value[i]);
    }
    if (req->pending != NULL) {
        response_reset(req->pending);
        free(req->pending);
    }
    free(req);
}

static void
log_request(const struct clst_http_request *req, enum MHD_RequestTerminationCode toe)
{
    if (clst_log_get_level() < CLST_LOG_INFO) {
        return;
    }
    char path[LOG_PATH_MAX + 4];
    size_t i = 0;
    for (; req->path[i] != '\0' && i < LOG_PATH_MAX; i++) {
        unsigned char c = (unsigned char)req->path[i];
        path[i] = (c > 0x20 && c < 0x7f) ? (char)c : '?';
    }
    path[i] = '\0';
    if (req->path[i] != '\0') {
        memcpy(path + i, "...", 4);
    }
    uint64_t us = (clst_monotonic_ns() - req->t0) / 1000u;
    clst_log_info("%s %s -> %u in %llu us (request %s from %s)%s", req->method_name, path,
                  req->status, (unsigned long long)us, req->id, req->client,
                  toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " [connection ended early]");
}

static void
on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
             enum MHD_RequestTerminationCode toe)
{
    struct clst_server *s = cls;
    (void)conn;
    struct clst_http_request *req = *req_cls;
    if (req == NULL) {
        return;
    }
    *req_cls = NULL;
    log_request(req, toe);
    request_free(req);
    pthread_mutex_lock(&s->lock);
    if (atomic_fetch_sub(&s->in_flight, 1) == 1) {
        pthread_cond_broadcast(&s->drained);
    }
    pthread_mutex_unlock(&s->lock);
}

struct header_count {
    const char *name;
    unsigned count;
};

static enum MHD_Result
count_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    struct header_count *hc = cls;
    (void)kind;
    (void)value;
    if (key != NULL && strcasecmp(key, hc->name) == 0) {
        hc->count++;
    }
    return MHD_YES;
}

static enum MHD_Result
authenticate(struct clst_http_request *req)
{
    struct clst_server *s = req->server;
    struct clst_err err;
    struct header_count hc = {MHD_HTTP_HEADER_AUTHORIZATION, 0};
    void *principal = NULL;
    clst_err_clear(&err);
    (void)MHD_get_connection_values(req->conn, MHD_HEADER_KIND, count_header, &hc);
    if (hc.count > 1) {
        return send_error(req, 400, CLST_HTTP_CODE_BAD_PARAMETER,
                          "the request has more than one Authorization header");
    }
    const char *authorization = clst_http_request_header(req, MHD_HTTP_HEADER_AUTHORIZATION);
    enum clst_status rc = s->auth.authenticate(s->auth.ctx, req, authorization, &principal, &err);
    switch (rc) {
    case CLST_OK:
        req->principal = principal;
        req->has_principal = true;
        return MHD_YES;
    case CLST_E_DENIED:
        return send_error(req, 403, CLST_HTTP_CODE_FORBIDDEN, "%s",
                          err.msg[0] != '\0' ? err.msg : "access denied");
    case CLST_E_NOMEM:
    case CLST_E_IO:
    case CLST_E_CRYPTO:
    case CLST_E_INTERNAL:
        clst_log_error("request %s: authentication failed internally: %s", req->id,
                       err.msg[0] != '\0' ? err.msg : clst_status_str(rc));
        return send_error(req, 500, CLST_HTTP_CODE_INTERNAL,
                          "internal error while authenticating (request id %s)", req->id);
    default:
        if (authorization == NULL) {
            return send_error(req, 401, CLST_HTTP_CODE_UNAUTHORIZED,
                              "Request is missing a Bearer token.");
        }
        return send_error(req, 401, CLST_HTTP_CODE_UNAUTHORIZED, "%s",
                          err.msg[0] != '\0' ? err.msg : "The access token is not valid.");
    }
}

/* First call: headers complete, no body read yet. Every refusal is decided here. */
static enum MHD_Result begin_checks(struct clst_http_request *req, const char *method);

static enum MHD_Result
begin(struct clst_http_request *req, const char *method)
{
    const char *cl =
        MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    const char *te =
        MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
    req->bodyless = te == NULL && (cl == NULL || strcmp(cl, "0") == 0);
    req->in_begin = true;
    enum MHD_Result ret = begin_checks(req, method);
    req->in_begin = false;
    return ret;
}

static enum MHD_Result
begin_checks(struct clst_http_request *req, const char *method)
{
    struct clst_server *s = req->server;
    struct clst_err err;
    clst_err_clear(&err);
    req->method = clst_server_method_parse(method);
    snprintf(req->method_name, sizeof(req->method_name), "%s",
             req->method != CLST_HTTP_OTHER ? clst_http_method_name(req->method) : "OTHER");
    if (req->raw_too_long) {
        return send_error(req, 414, CLST_HTTP_CODE_URI_TOO_LONG,
                          "the request target is longer than %d bytes", CLST_HTTP_URI_MAX);
    }
    enum clst_status rc = clst_server_target_parse(req->raw, req->raw_size, &req->target, &err);
    if (rc != CLST_OK) {
        return send_error(req, 400, CLST_HTTP_CODE_BAD_PARAMETER, "%s", err.msg);
    }
    /* The declared size first: cheaper than routing, and no hook runs for a body we refuse. */
    const char *cl =
        MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl != NULL) {
        uint64_t declared;
        if (clst_parse_u64(cl, 0, UINT64_MAX, &declared, NULL) != CLST_OK) {
            return send_error(req, 400, CLST_HTTP_CODE_BAD_PARAMETER,
                              "Content-Length is not a number");
        }
        if (declared > s->max_body) {
            const char *expect =
                MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_EXPECT);
            /* A client waiting for "100 Continue" reads our answer instead of sending; a
             * client already sending would be reset by an early close before it reads the
             * answer, so a body within the discard allowance is read, dropped, then refused. */
            if (expect != NULL || declared - s->max_body > DISCARD_MAX) {
                return send_error(req, 413, CLST_HTTP_CODE_REQUEST_TOO_LARGE,
                                  "the request body (%llu bytes) exceeds the limit of %zu bytes",
                                  (unsigned long long)declared, s->max_body);
            }
            req->too_large = true;
            return MHD_YES;
        }
        req->declared = (size_t)declared;
    }
    if (clst_server_routes_match(&s->routes, req->method, &req->target, &req->match) != CLST_OK) {
        if (req->match.allowed != 0) {
            return send_error(req, 405, CLST_HTTP_CODE_METHOD_NOT_ALLOWED,
                              "method %s is not allowed on this path",
                              req->method != CLST_HTTP_OTHER ? req->method_name : "(other)");
        }
        return send_error(req, 404, CLST_HTTP_CODE_NOT_FOUND, "no such path: %.200s", req->path);
    }
    if ((req->match.route->def.flags & CLST_ROUTE_PROTECTED) != 0) {
        enum MHD_Result ar = authenticate(req);
        if (ar != MHD_YES || req->responded || req->has_pending) {
            return ar;
        }
    }
    /* Only now, for a request we will serve: room for the whole declared body at once. */
    if (req->declared > 0 && clst_buf_reserve(&req->body, req->declared) != CLST_OK) {
        req->out_of_memory = true;
    }
    return MHD_YES;
}

static enum MHD_Result
take_body(struct clst_http_request *req, const char *data, size_t *size)
{
    size_t n = *size;
    *size = 0;
    if (req->too_large || req->out_of_memory) {
        /* Read and drop the rest so the client can read our 413, but not forever. */
        if (n > DISCARD_MAX - req->discarded) {
            clst_log_info("request %s: body far over the limit; closing the connection", req->id);
            return MHD_NO;
        }
        req->discarded += n;
        return MHD_YES;
    }
    enum clst_status rc = clst_buf_append(&req->body, data, n);
    if (rc != CLST_OK) {
        if (rc == CLST_E_LIMIT) {
            req->too_large = true;
        } else {
            req->out_of_memory = true;
        }
        clst_buf_cleanup(&req->body);
    }
    return MHD_YES;
}

static void
map_status(enum clst_status rc, const struct clst_err *err, struct clst_http_request *req,
           struct clst_http_response *resp)
{
    const char *msg = err->msg[0] != '\0' ? err->msg : clst_status_str(rc);
    response_reset(resp);
    switch (rc) {
    case CLST_E_INVAL:
    case CLST_E_MALFORMED:
    case CLST_E_VERIFY:
    case CLST_E_LIMIT:
        clst_http_response_error(resp, 400, CLST_HTTP_CODE_BAD_PARAMETER, "%s", msg);
        break;
    case CLST_E_DENIED:
        clst_http_response_error(resp, 403, CLST_HTTP_CODE_FORBIDDEN, "%s", msg);
        break;
    case CLST_E_NOTFOUND:
        clst_http_response_error(resp, 404, CLST_HTTP_CODE_NOT_FOUND, "%s", msg);
        break;
    case CLST_E_CONFLICT:
        clst_http_response_error(resp, 409, CLST_HTTP_CODE_CONFLICT, "%s", msg);
        break;
    default:
        clst_log_error("request %s: %s %s failed: %s", req->id, req->method_name,
                       req->match.route->def.pattern, msg);
        clst_http_response_error(resp, 500, CLST_HTTP_CODE_INTERNAL,
                                 "internal error (request id %s); see the server log", req->id);
        break;
    }
}

/* Last call: the whole body is here. */
static enum MHD_Result run_before(struct clst_http_request *req, size_t from);

static enum MHD_Result
finish(struct clst_http_request *req)
{
    struct clst_server *s = req->server;
    if (req->too_large) {
        return send_error(req, 413, CLST_HTTP_CODE_REQUEST_TOO_LARGE,
                          "the request body exceeds the limit of %zu bytes", s->max_body);
    }
    if (req->out_of_memory) {
        return send_error(req, 503, CLST_HTTP_CODE_SERVICE_UNAVAILABLE,
                          "the server is out of memory; retry later");
    }
    if (clst_buf_terminate(&req->body) != CLST_OK) {
        return send_error(req, 503, CLST_HTTP_CODE_SERVICE_UNAVAILABLE,
                          "the server is out of memory; retry later");
    }
    return run_before(req, 0);
}

/* A `before` step refused: 503, the handler does not run. */
static enum MHD_Result
before_refused(struct clst_http_request *req, const struct clst_err *err)
{
    clst_log_error("request %s: %s %s refused before the handler: %s", req->id, req->method_name,
                   req->match.route->def.pattern,
                   err->msg[0] != '\0' ? err->msg : "observer failed");
    return send_error(req, 503, CLST_HTTP_CODE_SERVICE_UNAVAILABLE, "%s",
                      err->msg[0] != '\0' ? err->msg : "the service cannot record this request");
}

/* Runs the handler and sends its answer through the `after` steps. */
static enum MHD_Result
run_handler(struct clst_http_request *req)
{
    struct clst_http_response resp;
    struct clst_err err;
    memset(&resp, 0, sizeof(resp));
    clst_err_clear(&err);
    const struct clst_route *route = req->match.route;
    const struct clst_server *s = req->server;
    for (size_t i = 0; i < s->observer_count; i++) {
        const struct clst_server_observer *o = &s->observers[i];
        if (o->handler_begins != NULL && o->handler_begins(o->ctx, req)) {
            req->hinted |= 1u << i;
        }
    }
    enum clst_status rc = route->def.handler(route->def.ctx, req, &resp, &err);
    if (rc != CLST_OK) {
        map_status(rc, &err, req, &resp);
    } else if (!resp.set) {
        clst_log_error("request %s: handler for %s %s returned no response", req->id,
                       req->method_name, route->def.pattern);
        response_reset(&resp);
        clst_http_response_error(&resp, 500, CLST_HTTP_CODE_INTERNAL,
                                 "internal error (request id %s); see the server log", req->id);
    }
    enum MHD_Result ret = send_response(req, &resp, true);
    response_reset(&resp);
    return ret;
}

/* Runs the observers' `before` steps from `from` on (each may suspend the request), then the
 * handler. */
static enum MHD_Result
run_before(struct clst_http_request *req, size_t from)
{
    struct clst_server *s = req->server;
    for (size_t i = from; i < s->observer_count; i++) {
        const struct clst_server_observer *o = &s->observers[i];
        struct clst_err err;
        enum clst_status st = CLST_OK;
        clst_err_clear(&err);
        if (o->before_async != NULL) {
            req->phase = PH_BEFORE;
            req->phase_i = i;
            if (o->before_async(o->ctx, req, &st, &err)) {
                return MHD_YES; /* suspended; nothing more may touch req in this call */
            }
            req->phase = PH_NONE;
        } else if (o->before != NULL) {
            st = o->before(o->ctx, req, &err);
        } else {
            continue;
        }
        if (st != CLST_OK) {
            return before_refused(req, &err);
        }
    }
    return run_handler(req);
}

/* The call after clst_http_request_resume(): the deferred step's result, then the rest. */
static enum MHD_Result
continue_deferred(struct clst_http_request *req)
{
    size_t i = req->phase_i;
    bool before = req->phase == PH_BEFORE;
    req->phase = PH_NONE;
    if (before) {
        return req->resume_st != CLST_OK ? before_refused(req, &req->resume_err)
                                         : run_before(req, i + 1);
    }
    after_result(req, req->resume_st, &req->resume_err);
    return run_after(req, i + 1, true);
}

void
clst_http_request_defer(struct clst_http_request *req)
{
    struct clst_server *s = req->server;
    pthread_mutex_lock(&s->lock);
    s->deferred++;
    pthread_mutex_unlock(&s->lock);
    MHD_suspend_connection(req->conn);
}

void
clst_http_request_resume(struct clst_http_request *req, enum clst_status st,
                         const struct clst_err *err)
{
    struct clst_server *s = req->server;
    req->resume_st = st;
    if (err != NULL) {
        req->resume_err = *err;
    } else {
        clst_err_clear(&req->resume_err);
    }
    if (st != CLST_OK && req->resume_err.msg[0] == '\0') {
        clst_err_set(&req->resume_err, st, "the service cannot record this request");
    }
    MHD_resume_connection(req->mhd_conn);
    pthread_mutex_lock(&s->lock);
    if (--s->deferred == 0) {
        pthread_cond_broadcast(&s->drained);
    }
    pthread_mutex_unlock(&s->lock);
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
           const char *version, const char *upload_data, size_t *upload_data_size, void **req_cls)
{
    (void)cls;
    (void)url;
    (void)version;
    struct clst_http_request *req = *req_cls;
    if (req == NULL) {
        return MHD_NO; /* on_uri could not allocate: close the connection */
    }
    req->conn = conn;
    enum MHD_Result ret;
    if (!req->started) {
        req->started = true;
        ret = begin(req, method);
    } else if (req->phase != PH_NONE) {
        *upload_data_size = 0; /* steps are deferred only once the whole request is read */
        ret = continue_deferred(req);
    } else if (req->responded) {
        *upload_data_size = 0; /* answered early; drop whatever MHD still hands us */
        ret = MHD_YES;
    } else if (*upload_data_size > 0) {
        if (req->has_pending) {
            *upload_data_size = 0; /* cannot happen for a bodyless request; drop it anyway */
            ret = MHD_YES;
        } else {
            ret = take_body(req, upload_data, upload_data_size);
        }
    } else if (req->has_pending) {
        req->complete = true;
        ret = send_response(req, req->pending, true);
    } else {
        req->complete = true;
        ret = finish(req);
    }
    req->conn = NULL;
    return ret;
}

/* ---- built-in routes ------------------------------------------------------------------------ */

static enum clst_status
healthz(void *ctx, const struct clst_http_request *req, struct clst_http_response *resp,
        struct clst_err *err)
{
    struct clst_server *s = ctx;
    (void)req;
    (void)err;
    if (atomic_load(&s->stopping)) {
        clst_http_response_error(resp, 503, CLST_HTTP_CODE_SERVICE_UNAVAILABLE,
                                 "the server is shutting down");
        return CLST_OK;
    }
    clst_http_response_json_new(resp, 200, json_pack("{s:s}", "status", "ok"));
    return CLST_OK;
}

/* ---- lifecycle ------------------------------------------------------------------------------ */

void
clst_server_config_init(struct clst_server_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->host = "127.0.0.1";
    cfg->port = CLST_SERVER_DEFAULT_PORT;
}

static bool
challenge_value_ok(const char *v)
{
    if (v == NULL || v[0] == '\0') {
        return false;
    }
    for (const char *c = v; *c != '\0'; c++) {
        unsigned char u = (unsigned char)*c;
        if (u < 0x21 || u > 0x7e || u == '"' || u == '\\') {
            return false;
        }
    }
    return true;
}

static unsigned
default_threads(void)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if (cpus < 1) {
        cpus = 1;
    }
    if (cpus > (long)CLST_SERVER_MAX_THREADS / 2) {
        cpus = (long)CLST_SERVER_MAX_THREADS / 2;
    }
    return (unsigned)cpus * 2u;
}

enum clst_status
clst_server_new(const struct clst_server_config *cfg, struct clst_server **out,
                struct clst_err *err)
{
    enum clst_status rc = CLST_E_INVAL;
    struct clst_server *s = NULL;
    bool sync_ready = false;
    pthread_condattr_t ca;
    uint8_t addr[16];
    if (cfg == NULL || out == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "server configuration missing");
    }
    /* Request bodies and key material live in secret memory. Without OpenSSL's secure heap
     * every such buffer is its own locked mapping, and unmapping it in a process with many
     * threads costs a TLB shootdown on every CPU: per request, more than the HTTP work. */
    if (!CRYPTO_secure_malloc_initialized() &&
        clst_secret_heap_init(CLST_SERVER_SECURE_HEAP) != CLST_OK) {
        clst_log_warn("could not set up the secure heap; secret buffers use locked mappings");
    }
    if (cfg->tls_cert_pem == NULL || cfg->tls_key_pem == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "the server needs a TLS certificate and key");
    }
    const char *host = cfg->host != NULL ? cfg->host : "127.0.0.1";
    if (strcmp(host, "localhost") == 0) {
        host = "127.0.0.1";
    }
    bool ipv6 = false;
    if (inet_pton(AF_INET6, host, addr) == 1) {
        ipv6 = true;
    } else if (inet_pton(AF_INET, host, addr) != 1) {
        return clst_err_set(err, CLST_E_INVAL,
                            "listen host '%.80s' is not an IP address (or localhost)", host);
    }
    const char *authz = cfg->challenge_authorization ? cfg->challenge_authorization
                                                     : DEFAULT_CHALLENGE_AUTHORIZATION;
    const char *resource =
        cfg->challenge_resource ? cfg->challenge_resource : DEFAULT_CHALLENGE_RESOURCE;
    if (!challenge_value_ok(authz) || !challenge_value_ok(resource)) {
        return clst_err_set(err, CLST_E_INVAL,
                            "challenge authorization and resource must be URLs without spaces, "
                            "quotes or backslashes");
    }
    if (cfg->thread_count > CLST_SERVER_MAX_THREADS) {
        return clst_err_set(err, CLST_E_INVAL, "at most %u worker threads",
                            CLST_SERVER_MAX_THREADS);
    }
    if (cfg->io != CLST_SERVER_IO_EPOLL && cfg->io != CLST_SERVER_IO_POLL) {
        return clst_err_set(err, CLST_E_INVAL, "unknown I/O mode");
    }
    if (cfg->max_body_size > (size_t)1 << 30) {
        return clst_err_set(err, CLST_E_INVAL, "the body cap may be at most 1 GiB");
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return clst_err_set(err, CLST_E_NOMEM, "out of memory");
    }
    if (pthread_mutex_init(&s->lock, NULL) != 0) {
        free(s);
        return clst_err_set(err, CLST_E_INTERNAL, "could not create a mutex");
    }
    if (pthread_condattr_init(&ca) != 0 || pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0 ||
        pthread_cond_init(&s->drained, &ca) != 0) {
        pthread_mutex_destroy(&s->lock);
        free(s);
        return clst_err_set(err, CLST_E_INTERNAL, "could not create a condition variable");
    }
    pthread_condattr_destroy(&ca);
    sync_ready = true;
    atomic_init(&s->stopping, false);
    atomic_init(&s->in_flight, 0);
    atomic_init(&s->id_next, 1);
    {
        uint8_t rnd[8];
        if (clst_random(rnd, sizeof(rnd)) != CLST_OK) {
            pthread_cond_destroy(&s->drained);
            pthread_mutex_destroy(&s->lock);
            free(s);
            return clst_err_set(err, CLST_E_INTERNAL, "no randomness for request ids");
        }
        for (size_t i = 0; i < sizeof(rnd); i++) {
            s->id_prefix = (s->id_prefix << 8) | rnd[i];
        }
    }
    s->port = cfg->port;
    s->ipv6 = ipv6;
    s->threads = cfg->thread_count ? cfg->thread_count : default_threads();
    s->max_body = cfg->max_body_size ? cfg->max_body_size : CLST_SERVER_DEFAULT_MAX_BODY;
    s->max_connections =
        cfg->max_connections ? cfg->max_connections : CLST_SERVER_DEFAULT_CONNECTIONS;
    s->idle_timeout = cfg->idle_timeout_s ? cfg->idle_timeout_s : CLST_SERVER_DEFAULT_IDLE_TIMEOUT;
    s->io = cfg->io;
    s->host = strdup(host);
    s->cert_pem = strdup(cfg->tls_cert_pem);
    size_t challenge_size = strlen(authz) + strlen(resource) + 64;
    s->challenge = malloc(challenge_size);
    if (s->host == NULL || s->cert_pem == NULL || s->challenge == NULL ||
        clst_secret_from(cfg->tls_key_pem, strlen(cfg->tls_key_pem) + 1, &s->key_pem) != CLST_OK) {
        rc = clst_err_set(err, CLST_E_NOMEM, "out of memory");
        goto out;
    }
    snprintf(s->challenge, challenge_size, "Bearer authorization=\"%s\", resource=\"%s\"", authz,
             resource);
    struct clst_server_route health = {CLST_HTTP_GET, "/healthz", 0, healthz, s};
    rc = clst_server_routes_add(&s->routes, &health, err);
    if (rc != CLST_OK) {
        goto out;
    }
    *out = s;
    s = NULL;
    rc = CLST_OK;
out:
    if (s != NULL && sync_ready) {
        clst_server_free(s);
    }
    return rc;
}

enum clst_status
clst_server_route_add(struct clst_server *s, const struct clst_server_route *route,
                      struct clst_err *err)
{
    if (s == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "no server");
    }
    if (s->started) {
        return clst_err_set(err, CLST_E_INVAL, "routes must be added before the server starts");
    }
    return clst_server_routes_add(&s->routes, route, err);
}

enum clst_status
clst_server_auth_set(struct clst_server *s, const struct clst_server_auth *auth,
                     struct clst_err *err)
{
    if (s == NULL || auth == NULL || auth->authenticate == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "the authentication hook needs a function");
    }
    if (s->started) {
        return clst_err_set(err, CLST_E_INVAL,
                            "the authentication hook must be set before the server starts");
    }
    s->auth = *auth;
    s->have_auth = true;
    return CLST_OK;
}

enum clst_status
clst_server_principal_namer_set(struct clst_server *s,
                                const char *(*name)(void *auth_ctx, const void *principal),
                                struct clst_err *err)
{
    if (s == NULL || name == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "the principal namer needs a function");
    }
    if (s->started) {
        return clst_err_set(err, CLST_E_INVAL, "the principal namer must be set before start");
    }
    s->principal_name = name;
    return CLST_OK;
}

enum clst_status
clst_server_observer_add(struct clst_server *s, const struct clst_server_observer *observer,
                         struct clst_err *err)
{
    if (s == NULL || observer == NULL || (observer->before == NULL && observer->after == NULL)) {
        return clst_err_set(err, CLST_E_INVAL, "an observer needs a before or an after function");
    }
    if ((observer->handler_begins == NULL) != (observer->handler_answered == NULL)) {
        return clst_err_set(
            err, CLST_E_INVAL,
            "an observer needs both handler_begins and handler_answered, or neither");
    }
    if (observer->after_async != NULL && observer->after == NULL) {
        /* Answers decided before the whole request is read cannot wait suspended. */
        return clst_err_set(err, CLST_E_INVAL, "an observer with after_async needs after too");
    }
    if (s->started) {
        return clst_err_set(err, CLST_E_INVAL, "observers must be added before the server starts");
    }
    if (s->observer_count == CLST_SERVER_OBSERVERS_MAX) {
        return clst_err_set(err, CLST_E_LIMIT, "at most %d observers", CLST_SERVER_OBSERVERS_MAX);
    }
    s->observers[s->observer_count++] = *observer;
    if (observer->before_async != NULL || observer->after_async != NULL) {
        s->allow_defer = true;
    }
    return CLST_OK;
}

enum clst_status
clst_server_start(struct clst_server *s, struct clst_err *err)
{
    struct sockaddr_in in4;
    struct sockaddr_in6 in6;
    struct sockaddr *sa;
    if (s == NULL || s->started) {
        return clst_err_set(err, CLST_E_INVAL, "server missing or already started");
    }
    if (clst_server_routes_any_protected(&s->routes) && !s->have_auth) {
        return clst_err_set(err, CLST_E_INVAL,
                            "protected routes exist but no authentication hook is set");
    }
    if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
        return clst_err_set(err, CLST_E_INTERNAL,
                            "this libmicrohttpd was built without TLS support; HTTPS is required");
    }
    if (s->ipv6) {
        memset(&in6, 0, sizeof(in6));
        in6.sin6_family = AF_INET6;
        in6.sin6_port = htons(s->port);
        (void)inet_pton(AF_INET6, s->host, &in6.sin6_addr);
        sa = (struct sockaddr *)&in6;
    } else {
        memset(&in4, 0, sizeof(in4));
        in4.sin_family = AF_INET;
        in4.sin_port = htons(s->port);
        (void)inet_pton(AF_INET, s->host, &in4.sin_addr);
        sa = (struct sockaddr *)&in4;
    }
    unsigned flags = MHD_USE_TLS | MHD_USE_ERROR_LOG | MHD_USE_ITC;
    if (s->allow_defer) {
        flags |= MHD_ALLOW_SUSPEND_RESUME;
    }
    /* epoll: also MHD_USE_TURBO (read and write before asking the event loop whether the
     * socket is ready): bench_attest measured 62.7% -> 75.5% of the P-384 verify rate per
     * server thread with it, back to back on an idle machine. */
    flags |= s->io == CLST_SERVER_IO_EPOLL ? MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_TURBO
                                           : MHD_USE_POLL_INTERNAL_THREAD;
    if (s->ipv6) {
        flags |= MHD_USE_IPv6;
    }
    pthread_mutex_lock(&s->lock);
    s->last_error[0] = '\0';
    pthread_mutex_unlock(&s->lock);
    /* MHD reads the variadic options by their documented types: pass exactly those. */
    s->daemon = MHD_start_daemon(
        flags, s->port, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s,
        MHD_OPTION_SOCK_ADDR, sa, MHD_OPTION_HTTPS_MEM_KEY, (const char *)s->key_pem->ptr,
        MHD_OPTION_HTTPS_MEM_CERT, (const char *)s->cert_pem, MHD_OPTION_HTTPS_PRIORITIES,
        TLS_PRIORITIES, MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)s->threads,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)s->max_connections,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)s->idle_timeout,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONNECTION_MEMORY, MHD_OPTION_URI_LOG_CALLBACK,
        on_uri, s, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_UNESCAPE_CALLBACK,
        unescape_none, NULL, MHD_OPTION_STRICT_FOR_CLIENT, (int)1, MHD_OPTION_END);
    if (s->daemon == NULL) {
        char why[256];
        pthread_mutex_lock(&s->lock);
        memcpy(why, s->last_error, sizeof(why));
        pthread_mutex_unlock(&s->lock);
        return clst_err_set(err, CLST_E_IO, "could not start HTTPS on %s port %u: %s", s->host,
                            (unsigned)s->port,
                            why[0] != '\0' ? why
                                           : "unknown reason (address in use, or not an address "
                                             "of this machine?)");
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    if (di != NULL && di->port != 0) {
        s->port = di->port;
    }
    s->started = true;
    return CLST_OK;
}

uint16_t
clst_server_port(const struct clst_server *s)
{
    return (s != NULL && s->started) ? s->port : 0;
}

unsigned
clst_server_in_flight(const struct clst_server *s)
{
    return s != NULL ? atomic_load(&s->in_flight) : 0;
}

enum clst_status
clst_server_stop(struct clst_server *s, unsigned drain_timeout_ms, struct clst_err *err)
{
    enum clst_status rc = CLST_OK;
    if (s == NULL || s->daemon == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "server is not running");
    }
    atomic_store(&s->stopping, true);
    MHD_socket listener = MHD_quiesce_daemon(s->daemon);
    if (listener != MHD_INVALID_SOCKET) {
        close(listener);
    }
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += (time_t)(drain_timeout_ms / 1000u);
    deadline.tv_nsec += (long)(drain_timeout_ms % 1000u) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&s->lock);
    while (atomic_load(&s->in_flight) > 0) {
        int w = pthread_cond_timedwait(&s->drained, &s->lock, &deadline);
        if (w == ETIMEDOUT) {
            break;
        }
    }
    unsigned left = atomic_load(&s->in_flight);
    /* A suspended request is resumed by another thread (the audit log's); its connection must
     * outlive that, so wait for those whatever the deadline (they end when the disk answers). */
    while (s->deferred > 0) {
        pthread_cond_wait(&s->drained, &s->lock);
    }
    pthread_mutex_unlock(&s->lock);
    if (left > 0) {
        rc = clst_err_set(err, CLST_E_LIMIT,
                          "%u request(s) still in flight after %u ms; stopping anyway", left,
                          drain_timeout_ms);
    }
    MHD_stop_daemon(s->daemon);
    s->daemon = NULL;
    return rc;
}

void
clst_server_free(struct clst_server *s)
{
    if (s == NULL) {
        return;
    }
    if (s->daemon != NULL) {
        atomic_store(&s->stopping, true);
        pthread_mutex_lock(&s->lock);
        while (s->deferred > 0) {
            pthread_cond_wait(&s->drained, &s->lock);
        }
        pthread_mutex_unlock(&s->lock);
        MHD_stop_daemon(s->daemon);
        s->daemon = NULL;
    }
    clst_server_routes_cleanup(&s->routes);
    free(s->host);
    free(s->cert_pem);
    free(s->challenge);
    clst_secret_free(s->key_pem);
    pthread_cond_destroy(&s->drained);
    pthread_mutex_destroy(&s->lock);
    free(s);
}
