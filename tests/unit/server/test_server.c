/*
 * Unit tests for src/server/server.c: the real server on 127.0.0.1:0 inside the test, driven with
 * libcurl over TLS with the data directory's CA pinned.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server/server_int.h"
#include "test_util.h"

#define MAX_BODY       1024u
#define CHALLENGE_AUTH "https://login.example.test/tenant-1"
#define CHALLENGE_RES  "https://vault.example.test"

struct fx {
    char root[64];
    char data[128];
    char ca_file[192];
    struct clst_server_datadir *dir;
    struct clst_server *server;
    uint16_t port;
    atomic_int handler_calls;
    atomic_int principals_live;
    atomic_int slow_entered;
    atomic_int slow_release;
    unsigned slow_ms;
    /* observer state (test_observers) */
    atomic_int refuse_before; /* 1: `before` refuses */
    atomic_int refuse_after;  /* 1: `after` refuses */
    atomic_int before_calls, after_calls;
    atomic_int async_steps; /* steps that went through before_async/after_async */
    atomic_int begins, answered; /* handler_begins / handler_answered calls */
    atomic_int after_at_begin;   /* after_calls when the last handler began */
    atomic_int hint_errors;      /* checked by the test's thread, not asserted in the server's */
    pthread_mutex_t obs_lock;
    char last_route[64], last_identity[32], last_note[64];
    unsigned last_status;
};

/* ---- handlers used by the tests ------------------------------------------------------------- */

static enum clst_status
echo(void *ctx, const struct clst_http_request *req, struct clst_http_response *resp,
     struct clst_err *err)
{
    struct fx *f = ctx;
    (void)err;
    atomic_fetch_add(&f->handler_calls, 1);
    json_t *q = json_object();
    for (size_t i = 0; i < clst_http_request_query_count(req); i++) {
        const char *k, *v;
        assert_true(clst_http_request_query_at(req, i, &k, &v));
        json_object_set_new(q, k, json_string(v));
    }
    const char *k, *v;
    assert_false(clst_http_request_query_at(req, clst_http_request_query_count(req), &k, &v));
    size_t body_size;
    const uint8_t *body = clst_http_request_body(req, &body_size);
    const char *api = clst_http_request_api_version(req);
    const char *ua = clst_http_request_header(req, "x-test-header");
    clst_http_response_json_new(
        resp, 200,
        json_pack("{s:s,s:s,s:o,s:o,s:s,s:s,s:s,s:s,s:I,s:s%,s:o,s:b}", "a",
                  clst_http_request_param(req, "a"), "b", clst_http_request_param(req, "b"), "q", q,
                  "api", api ? json_string(api) : json_null(), "method",
                  clst_http_method_name(clst_http_request_method(req)), "id",
                  clst_http_request_id(req), "client", clst_http_request_client_addr(req), "path",
                  clst_http_request_path(req), "body_size", (json_int_t)body_size, "body",
                  (const char *)body, body_size, "hdr", ua ? json_string(ua) : json_null(),
                  "no_param", clst_http_request_param(req, "zzz") == NULL));
    return CLST_OK;
}

static enum clst_status
json_body(void *ctx, const struct clst_http_request *req, struct clst_http_response *resp,
          struct clst_err *err)
{
    (void)ctx;
    json_t *j = NULL;
    enum clst_status rc = clst_http_request_json(req, &j, err);
    if (rc != CLST_OK) {
        return rc;
    }
    json_t *name = json_object_get(j, "name");
    clst_http_response_json_new(resp, 201, json_pack("{s:O}", "got", name ? name : json_null()));
    json_decref(j);
    return CLST_OK;
}

static enum clst_status
protected_handler(void *ctx, const struct clst_http_request *req, struct clst_http_response *resp,
                  struct clst_err *err)
{
    struct fx *f = ctx;
    (void)err;
    atomic_fetch_add(&f->handler_calls, 1);
    assert_int_equal(clst_http_request_note(req, "op", "protected.get"), CLST_OK);
    assert_int_equal(clst_http_request_note(req, "op", "protected.read"), CLST_OK); /* replaces */
    assert_int_equal(clst_http_request_note(req, "Bad Key", "x"), CLST_E_INVAL);
    assert_int_equal(clst_http_request_note(req, "k", "line\nbreak"), CLST_E_INVAL);
    const char *principal = clst_http_request_principal(req);
    clst_http_response_json_new(resp, 200,
                                json_pack("{s:s,s:s}", "principal", principal ? principal : "",
                                          "name", clst_http_request_param(req, "name")));
    return CLST_OK;
}

static enum clst_status
open_handler(void *ctx, const struct clst_http_request *req, struct clst_http_response *resp,
             struct clst_err *err)
{
    (void)ctx;
    (void)err;
    clst_http_response_json_new(
        resp, 200, json_pack("{s:b}", "anonymous", clst_http_request_principal(req) == NULL));
    return CLST_OK;
}

static enum clst_status
fail_handler(void *ctx, const struct clst_http_request *req, struct clst_http_response *resp,
             struct clst_err *err)
{
    (void)ctx;
    const char *kind = clst_http_request_param(req, "kind");
    /* A partial response must be discarded when the handler fails. */
    clst_http_response_json_new(resp, 200, json_pack("{s:s}", "partial", "yes"));
    if (strcmp(kind, "malformed") == 0) {
        return clst_err_set(err, CLST_E_MALFORMED, "the field 'kty' is missing");
    }
    if (strcmp(kind, "denied") == 0) {
        return clst_err_set(err, CLST_E_DENIED, "the policy denies this");
    }
    if (strcmp(kind, "notfound") == 0) {
        return clst_err_set(err, CLST_E_NOTFOUND, "no such thing");
    }
    if (strcmp(kind, "conflict") == 0) {
        return clst_err_set(err, CLST_E_CONFLICT, "it exists already");
    }
    if (strcmp(kind, "internal") == 0) {
        return clst_err_set(err, CLST_E_IO, "database password s3cr3t rejected");
    }
    if (strcmp(kind, "badutf8") == 0) {
        return clst_err_set(err, CLST_E_MALFORMED, "bad \xff\xfe byte\x01");
    }
    if (strcmp(kind, "empty") == 0) {
        clst_http_response_empty(resp, 204); /* replaces the partial JSON */
        return CLST_OK;
    }
    if (strcmp(kind, "nullbody") == 0) {
        clst_http_response_json_new(resp, 200, NULL);
        return CLST_OK;
    }
    if (strcmp(kind, "custom") == 0) {
        clst_http_response_error(resp, 404, CLST_HTTP_CODE_KEY_NOT_FOUND,
                                 "A key with (name/id) %s was not found in this key vault.", "k1");
        return CLST_OK;
    }
    if (strcmp(kind, "text") == 0) {
        return clst_http_response_body(resp, 200, "text/plain; version=0.0.4", "metric 1\n", 9);
    }
    if (strcmp(kind, "headers") == 0) {
        json_t *r = json_object();
        json_object_set_new(r, "ok",
                            json_integer(clst_http_response_header(resp, "x-custom", "value 1")));
        json_object_set_new(
            r, "crlf",
            json_integer(clst_http_response_header(resp, "x-evil", "a\r\nSet-Cookie: x=1")));
        json_object_set_new(r, "badname",
                            json_integer(clst_http_response_header(resp, "x evil", "v")));
        json_object_set_new(
            r, "reserved",
            json_integer(clst_http_response_header(resp, "content-type", "text/html")));
        json_object_set_new(
            r, "reserved2",
            json_integer(clst_http_response_header(resp, "WWW-Authenticate", "Basic")));
        json_object_set_new(r, "nonascii",
                            json_integer(clst_http_response_header(resp, "x-u", "caf\xc3\xa9")));
        clst_http_response_json_new(resp, 200, r);
        return CLST_OK;
    }
    return clst_err_set(err, CLST_E_INTERNAL, "unknown kind");
}

/* A handler that really returns OK without touching resp. */
static enum clst_status
silent_handler(void *ctx, const struct clst_http_request *req, struct clst_http_response *resp,
               struct clst_err *err)
{
    (void)ctx;
    (void)req;
    (void)resp;
    (void)err;
    return CLST_OK;
}

static void
sleep_ms(unsigned ms)
{
    struct timespec ts = {(time_t)(ms / 1000u), (long)(ms % 1000u) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

static enum clst_status
slow_handler(void *ctx, const struct clst_http_request *req, struct clst_http_response *resp,
             struct clst_err *err)
{
    struct fx *f = ctx;
    (void)req;
    (void)err;
    atomic_store(&f->slow_entered, 1);
    /* Wait for the test to let us go (bounded, so a broken test cannot hang forever). */
    for (unsigned waited = 0; !atomic_load(&f->slow_release) && waited < 10000; waited += 5) {
        sleep_ms(5);
    }
    sleep_ms(f->slow_ms);
    clst_http_response_json_new(resp, 200, json_pack("{s:b}", "slow", 1));
    return CLST_OK;
}

static enum clst_status
auth_hook(void *ctx, const struct clst_http_request *req, const char *authorization,
          void **out_principal, struct clst_err *err)
{
    struct fx *f = ctx;
    assert_non_null(clst_http_request_id(req));
    if (authorization == NULL) {
        return CLST_E_VERIFY;
    }
    if (strcmp(authorization, "Bearer good-token") == 0) {
        *out_principal = strdup("admin");
        atomic_fetch_add(&f->principals_live, 1);
        return CLST_OK;
    }
    if (strcmp(authorization, "Bearer denied") == 0) {
        return clst_err_set(err, CLST_E_DENIED, "the caller has no access to this vault");
    }
    if (strcmp(authorization, "Bearer boom") == 0) {
        return clst_err_set(err, CLST_E_INTERNAL, "token store offline (secret detail)");
    }
    return clst_err_set(err, CLST_E_VERIFY, "The token has expired.");
}

static void
principal_free(void *ctx, void *principal)
{
    struct fx *f = ctx;
    atomic_fetch_sub(&f->principals_live, 1);
    free(principal);
}

/* ---- fixture -------------------------------------------------------------------------------- */

static void
fx_config(struct fx *f, struct clst_server_config *cfg)
{
    clst_server_config_init(cfg);
    cfg->host = "127.0.0.1";
    cfg->port = 0;
    cfg->tls_cert_pem = f->dir->server_cert_pem;
    cfg->tls_key_pem = (const char *)f->dir->server_key_pem->ptr;
    cfg->thread_count = 2;
    cfg->max_body_size = MAX_BODY;
    cfg->idle_timeout_s = 5;
    cfg->challenge_authorization = CHALLENGE_AUTH;
    cfg->challenge_resource = CHALLENGE_RES;
}

static void
fx_routes(struct fx *f)
{
    const struct clst_server_route routes[] = {
        {CLST_HTTP_GET, "/echo/{a}/{b}", 0, echo, f},
        {CLST_HTTP_POST, "/echo/{a}/{b}", 0, echo, f},
        {CLST_HTTP_POST, "/json", 0, json_body, f},
        {CLST_HTTP_PUT, "/protected/{name}", CLST_ROUTE_PROTECTED, protected_handler, f},
        {CLST_HTTP_GET, "/protected/{name}", CLST_ROUTE_PROTECTED, protected_handler, f},
        {CLST_HTTP_GET, "/open", 0, open_handler, f},
        {CLST_HTTP_GET, "/fail/{kind}", 0, fail_handler, f},
        {CLST_HTTP_GET, "/silent", 0, silent_handler, f},
        {CLST_HTTP_GET, "/slow", 0, slow_handler, f},
    };
    struct clst_err err;
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        assert_int_equal(clst_server_route_add(f->server, &routes[i], &err), CLST_OK);
    }
    struct clst_server_auth auth = {auth_hook, principal_free, f};
    assert_int_equal(clst_server_auth_set(f->server, &auth, &err), CLST_OK);
}

/* One data directory for the whole file (creating it costs fsyncs); a fresh server per test. */
static char g_root[64];
static struct clst_server_datadir *g_dir;

static int
group_setup(void **state)
{
    struct clst_err err;
    char data[128];
    (void)state;
    snprintf(g_root, sizeof(g_root), "/tmp/clst-server-XXXXXX");
    if (mkdtemp(g_root) == NULL) {
        return -1;
    }
    snprintf(data, sizeof(data), "%s/data", g_root);
    if (clst_server_datadir_open(data, "127.0.0.1", NULL, &g_dir, &err) != CLST_OK) {
        fprintf(stderr, "datadir: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static int
group_teardown(void **state)
{
    char cmd[160];
    (void)state;
    clst_server_datadir_free(g_dir);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_root);
    return system(cmd) == 0 ? 0 : -1;
}

static int
setup_io(void **state, enum clst_server_io io)
{
    struct fx *f = calloc(1, sizeof(*f));
    struct clst_err err;
    struct clst_server_config cfg;
    if (f == NULL) {
        return -1;
    }
    snprintf(f->root, sizeof(f->root), "%s", g_root);
    snprintf(f->data, sizeof(f->data), "%s/data", f->root);
    snprintf(f->ca_file, sizeof(f->ca_file), "%s/%s", f->data, CLST_DATADIR_CA_CERT);
    f->dir = g_dir;
    fx_config(f, &cfg);
    cfg.io = io;
    if (clst_server_new(&cfg, &f->server, &err) != CLST_OK) {
        fprintf(stderr, "server: %s\n", err.msg);
        return -1;
    }
    fx_routes(f);
    if (clst_server_start(f->server, &err) != CLST_OK) {
        fprintf(stderr, "start: %s\n", err.msg);
        return -1;
    }
    f->port = clst_server_port(f->server);
    *state = f;
    return 0;
}

static int
setup(void **state)
{
    return setup_io(state, CLST_SERVER_IO_EPOLL);
}

static int
setup_poll(void **state)
{
    return setup_io(state, CLST_SERVER_IO_POLL);
}

static int
teardown(void **state)
{
    struct fx *f = *state;
    clst_server_free(f->server);
    assert_int_equal(atomic_load(&f->principals_live), 0);
    free(f);
    return 0;
}

/* ---- the client ----------------------------------------------------------------------------- */

struct req {
    const char *method; /* NULL: GET */
    const char *path;
    const void *body;
    size_t body_size;
    bool send_body;
    bool chunked;
    bool no_expect;
    const char *headers[6];
    const char *ca_file; /* NULL: the fixture's */
    long tls_version;    /* CURLOPT_SSLVERSION, 0: default */
    const char *ciphers;
};

struct res {
    CURLcode code;
    long status;
    long connects;
    char err[CURL_ERROR_SIZE];
    struct clst_buf body;
    struct clst_buf headers;
    json_t *json;
};

static size_t
collect(char *data, size_t size, size_t nmemb, void *userdata)
{
    struct clst_buf *b = userdata;
    if (clst_buf_append(b, data, size * nmemb) != CLST_OK) {
        return 0;
    }
    return size * nmemb;
}

static void
res_cleanup(struct res *r)
{
    clst_buf_cleanup(&r->body);
    clst_buf_cleanup(&r->headers);
    json_decref(r->json);
    memset(r, 0, sizeof(*r));
}

/* Performs one request on `h` (a handle kept across calls reuses its connection). */
static void
perform(struct fx *f, CURL *h, const struct req *q, struct res *r)
{
    char url[6000];
    struct curl_slist *hdrs = NULL;
    memset(r, 0, sizeof(*r));
    clst_buf_init(&r->body, 1 << 20);
    clst_buf_init(&r->headers, 1 << 16);
    snprintf(url, sizeof(url), "https://127.0.0.1:%u%s", (unsigned)f->port, q->path);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(h, CURLOPT_CAINFO, q->ca_file ? q->ca_file : f->ca_file);
    curl_easy_setopt(h, CURLOPT_CAPATH, NULL);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, r->err);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &r->body);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, collect);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &r->headers);
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    if (q->tls_version != 0) {
        curl_easy_setopt(h, CURLOPT_SSLVERSION, q->tls_version);
    }
    if (q->ciphers != NULL) {
        curl_easy_setopt(h, CURLOPT_SSL_CIPHER_LIST, q->ciphers);
    }
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, q->method);
    if (q->method != NULL && strcmp(q->method, "HEAD") == 0) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else {
        curl_easy_setopt(h, CURLOPT_NOBODY, 0L);
    }
    if (q->send_body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, q->body != NULL ? q->body : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)q->body_size);
    } else if (q->method == NULL || strcmp(q->method, "HEAD") != 0) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, q->method);
    }
    if (q->chunked) {
        hdrs = curl_slist_append(hdrs, "Transfer-Encoding: chunked");
    }
    if (q->no_expect) {
        hdrs = curl_slist_append(hdrs, "Expect:");
    }
    for (size_t i = 0; i < sizeof(q->headers) / sizeof(q->headers[0]) && q->headers[i]; i++) {
        hdrs = curl_slist_append(hdrs, q->headers[i]);
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    r->code = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &r->connects);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(hdrs);
    (void)clst_buf_terminate(&r->body);
    (void)clst_buf_terminate(&r->headers);
    if (r->body.size > 0) {
        r->json = json_loadb((const char *)r->body.data, r->body.size, 0, NULL);
    }
}

static void
request(struct fx *f, const struct req *q, struct res *r)
{
    CURL *h = curl_easy_init();
    assert_non_null(h);
    perform(f, h, q, r);
    curl_easy_cleanup(h);
}

static void
get(struct fx *f, const char *path, struct res *r)
{
    struct req q = {.path = path};
    request(f, &q, r);
}

/* The value of response header `name` (last occurrence), copied into out; false if absent. */
static bool
header(const struct res *r, const char *name, char *out, size_t cap)
{
    const char *p = (const char *)r->headers.data;
    size_t n = strlen(name);
    bool found = false;
    while (p != NULL && *p != '\0') {
        const char *eol = strstr(p, "\r\n");
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        if (len > n && strncasecmp(p, name, n) == 0 && p[n] == ':') {
            const char *v = p + n + 1;
            while (*v == ' ') {
                v++;
            }
            size_t vlen = len - (size_t)(v - p);
            if (vlen >= cap) {
                vlen = cap - 1;
            }
            memcpy(out, v, vlen);
            out[vlen] = '\0';
            found = true;
        }
        p = eol ? eol + 2 : NULL;
    }
    return found;
}

/* Asserts the standard error shape and returns error.code. */
static const char *
error_code(const struct res *r, long status)
{
    char ct[128];
    if (r->status != status) {
        fail_msg("status %ld, expected %ld (body: %s)", r->status, status,
                 r->body.data ? (char *)r->body.data : "");
    }
    assert_true(header(r, "Content-Type", ct, sizeof(ct)));
    assert_string_equal(ct, "application/json; charset=utf-8");
    assert_non_null(r->json);
    assert_int_equal(json_object_size(r->json), 1);
    json_t *e = json_object_get(r->json, "error");
    assert_true(json_is_object(e));
    assert_int_equal(json_object_size(e), 2);
    assert_true(json_is_string(json_object_get(e, "code")));
    assert_true(json_is_string(json_object_get(e, "message")));
    return json_string_value(json_object_get(e, "code"));
}

static const char *
error_message(const struct res *r)
{
    return json_string_value(json_object_get(json_object_get(r->json, "error"), "message"));
}

static const char *
jstr(const struct res *r, const char *key)
{
    json_t *v = json_object_get(r->json, key);
    assert_true(json_is_string(v));
    return json_string_value(v);
}

/* ---- tests ---------------------------------------------------------------------------------- */

static void
test_healthz_tls_pinned(void **state)
{
    struct fx *f = *state;
    struct res r;
    char v[128];
    assert_int_not_equal(f->port, 0);
    get(f, "/healthz", &r);
    assert_int_equal(r.code, CURLE_OK);
    assert_int_equal(r.status, 200);
    assert_string_equal((char *)r.body.data, "{\"status\":\"ok\"}");
    assert_true(header(&r, "Content-Type", v, sizeof(v)));
    assert_string_equal(v, "application/json; charset=utf-8");
    assert_true(header(&r, "Cache-Control", v, sizeof(v)));
    assert_string_equal(v, "no-store");
    assert_true(header(&r, "x-ms-request-id", v, sizeof(v)));
    assert_int_equal(strlen(v), 32);
    assert_int_equal(strspn(v, "0123456789abcdef"), 32);
    char first[64];
    memcpy(first, v, 33);
    res_cleanup(&r);
    get(f, "/healthz", &r);
    assert_true(header(&r, "x-ms-request-id", v, sizeof(v)));
    assert_string_not_equal(v, first); /* a fresh id per request */
    res_cleanup(&r);

    /* Pinning another installation's CA fails the handshake. */
    char other[160], other_ca[200];
    struct clst_server_datadir *d2 = NULL;
    snprintf(other, sizeof(other), "%s/other", f->root);
    assert_int_equal(clst_server_datadir_open(other, "127.0.0.1", NULL, &d2, NULL), CLST_OK);
    clst_server_datadir_free(d2);
    snprintf(other_ca, sizeof(other_ca), "%s/%s", other, CLST_DATADIR_CA_CERT);
    struct req q = {.path = "/healthz", .ca_file = other_ca};
    request(f, &q, &r);
    assert_int_equal(r.code, CURLE_PEER_FAILED_VERIFICATION);
    assert_int_equal(r.status, 0);
    res_cleanup(&r);
    /* HEAD is answered by the GET route, without a body. */
    struct req head = {.method = "HEAD", .path = "/healthz"};
    request(f, &head, &r);
    assert_int_equal(r.code, CURLE_OK);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body.size, 0);
    res_cleanup(&r);
}

static void
test_tls_versions(void **state)
{
    struct fx *f = *state;
    struct res r;
    /* SECLEVEL=0 lets the OpenSSL client offer TLS 1.0/1.1 at all; the server must refuse. */
    struct req q11 = {.path = "/healthz",
                      .tls_version = CURL_SSLVERSION_TLSv1_1 | CURL_SSLVERSION_MAX_TLSv1_1,
                      .ciphers = "DEFAULT:@SECLEVEL=0"};
    request(f, &q11, &r);
    assert_int_not_equal(r.code, CURLE_OK);
    assert_int_equal(r.status, 0);
    /* The refusal came from the server, not from the client declining to offer TLS 1.1. */
    assert_null(strstr(r.err, "no protocols available"));
    res_cleanup(&r);
    struct req q10 = {.path = "/healthz",
                      .tls_version = CURL_SSLVERSION_TLSv1_0 | CURL_SSLVERSION_MAX_TLSv1_0,
                      .ciphers = "DEFAULT:@SECLEVEL=0"};
    request(f, &q10, &r);
    assert_int_not_equal(r.code, CURLE_OK);
    res_cleanup(&r);
    /* Control: the same client settings with TLS 1.2 and 1.3 get through. */
    struct req q12 = {.path = "/healthz",
                      .tls_version = CURL_SSLVERSION_TLSv1_2 | CURL_SSLVERSION_MAX_TLSv1_2,
                      .ciphers = "DEFAULT:@SECLEVEL=0"};
    request(f, &q12, &r);
    assert_int_equal(r.code, CURLE_OK);
    assert_int_equal(r.status, 200);
    res_cleanup(&r);
    struct req q13 = {.path = "/healthz",
                      .tls_version = CURL_SSLVERSION_TLSv1_3 | CURL_SSLVERSION_MAX_TLSv1_3};
    request(f, &q13, &r);
    assert_int_equal(r.code, CURLE_OK);
    assert_int_equal(r.status, 200);
    res_cleanup(&r);
    /* TLS 1.2 with only CBC suites offered: refused (AEAD only). */
    struct req cbc = {.path = "/healthz",
                      .tls_version = CURL_SSLVERSION_TLSv1_2 | CURL_SSLVERSION_MAX_TLSv1_2,
                      .ciphers = "ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA384"};
    request(f, &cbc, &r);
    assert_int_not_equal(r.code, CURLE_OK);
    res_cleanup(&r);
}

static void
test_body_cap(void **state)
{
    struct fx *f = *state;
    struct res r;
    char *big = malloc(3u << 20);
    assert_non_null(big);
    memset(big, 'x', 3u << 20);

    /* Exactly at the cap: accepted and delivered whole. */
    struct req at = {.method = "POST",
                     .path = "/echo/a/b",
                     .body = big,
                     .body_size = MAX_BODY,
                     .send_body = true};
    request(f, &at, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_integer_value(json_object_get(r.json, "body_size")), MAX_BODY);
    assert_int_equal(strlen(jstr(&r, "body")), MAX_BODY);
    res_cleanup(&r);

    int calls = atomic_load(&f->handler_calls);
    /* One byte over, declared by Content-Length: 413 before the body is read. */
    struct req over = at;
    over.body_size = MAX_BODY + 1;
    request(f, &over, &r);
    assert_string_equal(error_code(&r, 413), "RequestTooLarge");
    assert_non_null(strstr(error_message(&r), "1024"));
    res_cleanup(&r);
    /* The same without "Expect: 100-continue", and much larger: read, dropped, refused. */
    over.no_expect = true;
    over.body_size = 100000;
    request(f, &over, &r);
    assert_string_equal(error_code(&r, 413), "RequestTooLarge");
    res_cleanup(&r);
    /* Declared far beyond the discard allowance: refused at once (the client may see the 413
     * or a reset, never a 200). */
    over.body_size = 3u << 20;
    request(f, &over, &r);
    assert_true(r.status == 413 || r.status == 0);
    res_cleanup(&r);
    over.no_expect = false; /* with Expect: the 413 arrives instead of "100 Continue" */
    request(f, &over, &r);
    assert_string_equal(error_code(&r, 413), "RequestTooLarge");
    res_cleanup(&r);
    /* Chunked (no Content-Length): the cap is found while reading; still a JSON 413. */
    struct req chunked = {.method = "POST",
                          .path = "/echo/a/b",
                          .body = big,
                          .body_size = MAX_BODY + 500,
                          .send_body = true,
                          .chunked = true,
                          .no_expect = true};
    request(f, &chunked, &r);
    assert_string_equal(error_code(&r, 413), "RequestTooLarge");
    res_cleanup(&r);
    /* Chunked and beyond the discard allowance (1 MiB): the connection is cut, never a 200. */
    chunked.body_size = 3u << 20;
    request(f, &chunked, &r);
    assert_int_not_equal(r.status, 200);
    res_cleanup(&r);
    assert_int_equal(atomic_load(&f->handler_calls), calls); /* no handler saw any of these */
    /* Chunked under the cap works. */
    chunked.body_size = 700;
    request(f, &chunked, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_integer_value(json_object_get(r.json, "body_size")), 700);
    res_cleanup(&r);
    free(big);
}

static void
test_not_found_and_method(void **state)
{
    struct fx *f = *state;
    struct res r;
    char allow[64];
    get(f, "/nope", &r);
    assert_string_equal(error_code(&r, 404), "NotFound");
    res_cleanup(&r);
    get(f, "/echo/a", &r); /* a prefix of a route is not a route */
    assert_string_equal(error_code(&r, 404), "NotFound");
    res_cleanup(&r);
    get(f, "/echo/a/b/c", &r);
    assert_string_equal(error_code(&r, 404), "NotFound");
    res_cleanup(&r);

    struct req del = {.method = "DELETE", .path = "/echo/a/b"};
    request(f, &del, &r);
    assert_string_equal(error_code(&r, 405), "MethodNotAllowed");
    assert_true(header(&r, "Allow", allow, sizeof(allow)));
    assert_string_equal(allow, "GET, HEAD, POST");
    res_cleanup(&r);
    struct req opt = {.method = "OPTIONS", .path = "/healthz"};
    request(f, &opt, &r);
    assert_string_equal(error_code(&r, 405), "MethodNotAllowed");
    assert_true(header(&r, "Allow", allow, sizeof(allow)));
    assert_string_equal(allow, "GET, HEAD");
    res_cleanup(&r);
    struct req post = {
        .method = "POST", .path = "/healthz", .body = "{}", .body_size = 2, .send_body = true};
    request(f, &post, &r);
    assert_string_equal(error_code(&r, 405), "MethodNotAllowed");
    res_cleanup(&r);

    /* A target longer than CLST_HTTP_URI_MAX: 414, JSON. */
    char *path = malloc(CLST_HTTP_URI_MAX + 16);
    assert_non_null(path);
    path[0] = '/';
    memset(path + 1, 'a', CLST_HTTP_URI_MAX + 8);
    path[CLST_HTTP_URI_MAX + 9] = '\0';
    get(f, path, &r);
    assert_string_equal(error_code(&r, 414), "RequestUriTooLong");
    res_cleanup(&r);
    free(path);
}

static void
test_path_params(void **state)
{
    struct fx *f = *state;
    struct res r;
    get(f, "/echo/my%20key/%E2%82%AC%41", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(jstr(&r, "a"), "my key");
    assert_string_equal(jstr(&r, "b"), "\xe2\x82\xac"
                                       "A");
    assert_string_equal(jstr(&r, "path"), "/echo/my%20key/%E2%82%AC%41");
    assert_string_equal(jstr(&r, "method"), "GET");
    assert_string_equal(jstr(&r, "client"), "127.0.0.1");
    assert_true(json_is_true(json_object_get(r.json, "no_param")));
    char id[64];
    assert_true(header(&r, "x-ms-request-id", id, sizeof(id)));
    assert_string_equal(jstr(&r, "id"), id);
    res_cleanup(&r);
    /* An empty segment is an empty parameter (the SDKs' "latest version"). */
    get(f, "/echo/k/", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(jstr(&r, "b"), "");
    res_cleanup(&r);
    /* Sub-delims pass raw. */
    get(f, "/echo/a'b/c!$&=", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(jstr(&r, "a"), "a'b");
    assert_string_equal(jstr(&r, "b"), "c!$&=");
    res_cleanup(&r);

    static const char *const refused[] = {
        "/echo/a%2Fb/c",  "/echo/a%2fb/c", "/echo/../x",        "/echo/a/..",   "/echo/%2e%2E/x",
        "/echo/./b",      "/echo/a%00/b",  "/echo/a%0D%0A/b",   "/echo/a%/b",   "/echo/a%zz/b",
        "/echo/%C0%AF/b", "/echo/%FF/b",   "/echo/a/b?x=1&x=2", "/echo/a/b?=1",
    };
    int calls = atomic_load(&f->handler_calls);
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        get(f, refused[i], &r);
        if (r.status != 400) {
            fail_msg("%s: status %ld", refused[i], r.status);
        }
        assert_string_equal(error_code(&r, 400), "BadParameter");
        res_cleanup(&r);
    }
    assert_int_equal(atomic_load(&f->handler_calls), calls);
}

static void
test_query(void **state)
{
    struct fx *f = *state;
    struct res r;
    get(f, "/echo/a/b?api-version=7.4&maxresults=25&q=a+b%26c%2Bd&flag&e=", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(jstr(&r, "api"), "7.4");
    json_t *q = json_object_get(r.json, "q");
    assert_int_equal(json_object_size(q), 5);
    assert_string_equal(json_string_value(json_object_get(q, "maxresults")), "25");
    assert_string_equal(json_string_value(json_object_get(q, "q")), "a b&c+d");
    assert_string_equal(json_string_value(json_object_get(q, "flag")), "");
    assert_string_equal(json_string_value(json_object_get(q, "e")), "");
    assert_string_equal(jstr(&r, "path"), "/echo/a/b");
    res_cleanup(&r);
    get(f, "/echo/a/b", &r);
    assert_int_equal(r.status, 200);
    assert_true(json_is_null(json_object_get(r.json, "api")));
    assert_int_equal(json_object_size(json_object_get(r.json, "q")), 0);
    res_cleanup(&r);
    /* Request headers reach the handler. */
    struct req h = {.path = "/echo/a/b", .headers = {"X-Test-Header: hello"}};
    request(f, &h, &r);
    assert_string_equal(jstr(&r, "hdr"), "hello");
    res_cleanup(&r);
}

static void
test_json_body(void **state)
{
    struct fx *f = *state;
    struct res r;
    struct req ok = {.method = "POST",
                     .path = "/json",
                     .body = "{\"name\":\"k1\"}",
                     .body_size = 13,
                     .send_body = true};
    request(f, &ok, &r);
    assert_int_equal(r.status, 201);
    assert_string_equal(jstr(&r, "got"), "k1");
    res_cleanup(&r);
    static const char *const bad[] = {"",           "{", "[1,2]", "\"s\"", "{\"a\":1,\"a\":2}",
                                      "{\"a\":1} x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct req q = {.method = "POST",
                        .path = "/json",
                        .body = bad[i],
                        .body_size = strlen(bad[i]),
                        .send_body = true};
        request(f, &q, &r);
        assert_string_equal(error_code(&r, 400), "BadParameter");
        res_cleanup(&r);
    }
}

static void
test_auth_challenge(void **state)
{
    struct fx *f = *state;
    struct res r;
    char v[256];
    const char *expect =
        "Bearer authorization=\"" CHALLENGE_AUTH "\", resource=\"" CHALLENGE_RES "\"";
    int calls = atomic_load(&f->handler_calls);
    /* No token. */
    get(f, "/protected/k1", &r);
    assert_string_equal(error_code(&r, 401), "Unauthorized");
    assert_true(header(&r, "WWW-Authenticate", v, sizeof(v)));
    assert_string_equal(v, expect);
    assert_string_equal(error_message(&r), "Request is missing a Bearer token.");
    res_cleanup(&r);
    /* A bad token: the hook's message, the same challenge. */
    struct req bad = {.path = "/protected/k1", .headers = {"Authorization: Bearer nope"}};
    request(f, &bad, &r);
    assert_string_equal(error_code(&r, 401), "Unauthorized");
    assert_true(header(&r, "WWW-Authenticate", v, sizeof(v)));
    assert_string_equal(v, expect);
    assert_string_equal(error_message(&r), "The token has expired.");
    res_cleanup(&r);
    /* With a body: refused before the body is read, still 401 with the challenge. */
    struct req put = {.method = "PUT",
                      .path = "/protected/k1",
                      .body = "{\"value\":\"x\"}",
                      .body_size = 13,
                      .send_body = true};
    request(f, &put, &r);
    assert_string_equal(error_code(&r, 401), "Unauthorized");
    assert_true(header(&r, "WWW-Authenticate", v, sizeof(v)));
    res_cleanup(&r);
    /* Denied and failing hooks. */
    struct req denied = {.path = "/protected/k1", .headers = {"Authorization: Bearer denied"}};
    request(f, &denied, &r);
    assert_string_equal(error_code(&r, 403), "Forbidden");
    assert_false(header(&r, "WWW-Authenticate", v, sizeof(v)));
    res_cleanup(&r);
    struct req boom = {.path = "/protected/k1", .headers = {"Authorization: Bearer boom"}};
    request(f, &boom, &r);
    assert_string_equal(error_code(&r, 500), "InternalError");
    assert_null(strstr((char *)r.body.data, "secret detail"));
    res_cleanup(&r);
    /* Two Authorization headers are ambiguous: refused. */
    struct req two = {
        .path = "/protected/k1",
        .headers = {"Authorization: Bearer good-token", "Authorization: Bearer other"}};
    request(f, &two, &r);
    assert_string_equal(error_code(&r, 400), "BadParameter");
    res_cleanup(&r);
    assert_int_equal(atomic_load(&f->handler_calls), calls);

    /* The right token: the handler sees the principal, which is released afterwards. */
    struct req good = {.method = "PUT",
                       .path = "/protected/k%201",
                       .body = "{}",
                       .body_size = 2,
                       .send_body = true,
                       .headers = {"Authorization: Bearer good-token"}};
    request(f, &good, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(jstr(&r, "principal"), "admin");
    assert_string_equal(jstr(&r, "name"), "k 1");
    res_cleanup(&r);
    assert_int_equal(atomic_load(&f->handler_calls), calls + 1);
    /* Unprotected routes never call the hook, even with a token. */
    struct req open = {.path = "/open", .headers = {"Authorization: Bearer good-token"}};
    request(f, &open, &r);
    assert_int_equal(r.status, 200);
    assert_true(json_is_true(json_object_get(r.json, "anonymous")));
    res_cleanup(&r);

    /* The SDK challenge flow: 401 then a retry with the token on the same connection. */
    CURL *h = curl_easy_init();
    struct req first = {.path = "/protected/k1"};
    perform(f, h, &first, &r);
    assert_int_equal(r.status, 401);
    assert_int_equal(r.connects, 1);
    res_cleanup(&r);
    struct req retry = {.path = "/protected/k1", .headers = {"Authorization: Bearer good-token"}};
    perform(f, h, &retry, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.connects, 0); /* reused */
    res_cleanup(&r);
    curl_easy_cleanup(h);
}

static void
test_handler_errors(void **state)
{
    struct fx *f = *state;
    struct res r;
    char v[128];
    static const struct {
        const char *kind;
        long status;
        const char *code;
        const char *message;
    } cases[] = {
        {"malformed", 400, "BadParameter", "the field 'kty' is missing"},
        {"denied", 403, "Forbidden", "the policy denies this"},
        {"notfound", 404, "NotFound", "no such thing"},
        {"conflict", 409, "Conflict", "it exists already"},
        {"custom", 404, "KeyNotFound", "A key with (name/id) k1 was not found in this key vault."},
        {"badutf8", 400, "BadParameter", "bad ?? byte?"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char path[64];
        snprintf(path, sizeof(path), "/fail/%s", cases[i].kind);
        get(f, path, &r);
        assert_string_equal(error_code(&r, cases[i].status), cases[i].code);
        assert_string_equal(error_message(&r), cases[i].message);
        res_cleanup(&r);
    }
    /* Internal failures never leak their detail; the message names the request id. */
    get(f, "/fail/internal", &r);
    assert_string_equal(error_code(&r, 500), "InternalError");
    assert_null(strstr((char *)r.body.data, "s3cr3t"));
    assert_true(header(&r, "x-ms-request-id", v, sizeof(v)));
    assert_non_null(strstr(error_message(&r), v));
    res_cleanup(&r);
    get(f, "/silent", &r);
    assert_string_equal(error_code(&r, 500), "InternalError");
    res_cleanup(&r);
    get(f, "/fail/nullbody", &r);
    assert_string_equal(error_code(&r, 500), "InternalError");
    res_cleanup(&r);
    get(f, "/fail/empty", &r);
    assert_int_equal(r.status, 204);
    assert_int_equal(r.body.size, 0);
    res_cleanup(&r);
    /* A non-JSON body with its own type. */
    get(f, "/fail/text", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal((char *)r.body.data, "metric 1\n");
    assert_true(header(&r, "Content-Type", v, sizeof(v)));
    assert_string_equal(v, "text/plain; version=0.0.4");
    res_cleanup(&r);
    /* Extra headers: a good one goes out; injections and reserved names are refused. */
    get(f, "/fail/headers", &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_integer_value(json_object_get(r.json, "ok")), CLST_OK);
    assert_int_equal(json_integer_value(json_object_get(r.json, "crlf")), CLST_E_INVAL);
    assert_int_equal(json_integer_value(json_object_get(r.json, "badname")), CLST_E_INVAL);
    assert_int_equal(json_integer_value(json_object_get(r.json, "reserved")), CLST_E_INVAL);
    assert_int_equal(json_integer_value(json_object_get(r.json, "reserved2")), CLST_E_INVAL);
    assert_int_equal(json_integer_value(json_object_get(r.json, "nonascii")), CLST_E_INVAL);
    assert_true(header(&r, "x-custom", v, sizeof(v)));
    assert_string_equal(v, "value 1");
    assert_false(header(&r, "Set-Cookie", v, sizeof(v)));
    assert_false(header(&r, "x-evil", v, sizeof(v)));
    res_cleanup(&r);
}

struct bg {
    struct fx *f;
    struct res r;
    const char *path;
};

static void *
bg_get(void *arg)
{
    struct bg *b = arg;
    struct req q = {.path = b->path};
    request(b->f, &q, &b->r);
    return NULL;
}

struct stopper {
    struct fx *f;
    unsigned timeout_ms;
    enum clst_status rc;
    struct clst_err err;
};

static void *
bg_stop(void *arg)
{
    struct stopper *s = arg;
    s->rc = clst_server_stop(s->f->server, s->timeout_ms, &s->err);
    return NULL;
}

static void
wait_for(atomic_int *flag)
{
    for (int i = 0; i < 1000 && !atomic_load(flag); i++) {
        sleep_ms(5);
    }
    assert_true(atomic_load(flag));
}

/* A handler is in flight: the stop waits for it, refuses new connections meanwhile. */
static void
test_graceful_stop(void **state)
{
    struct fx *f = *state;
    pthread_t slow_thread, stop_thread;
    struct bg slow = {.f = f, .path = "/slow"};
    struct res r;
    char v[64];
    assert_int_equal(pthread_create(&slow_thread, NULL, bg_get, &slow), 0);
    wait_for(&f->slow_entered);
    assert_int_equal(clst_server_in_flight(f->server), 1);

    struct stopper st = {.f = f, .timeout_ms = 5000};
    assert_int_equal(pthread_create(&stop_thread, NULL, bg_stop, &st), 0);
    sleep_ms(150); /* let it quiesce */
    /* New connections are refused while draining (the listening socket is closed). */
    get(f, "/healthz", &r);
    CURLcode during = r.code;
    res_cleanup(&r);
    /* Release the handler before asserting, so a failure cannot leave threads behind. */
    atomic_store(&f->slow_release, 1);
    assert_int_equal(pthread_join(stop_thread, NULL), 0);
    assert_int_equal(pthread_join(slow_thread, NULL), 0);
    assert_int_equal(during, CURLE_COULDNT_CONNECT);
    /* The request in flight completed whole, told to close; the stop drained cleanly. */
    assert_int_equal(st.rc, CLST_OK);
    assert_int_equal(slow.r.code, CURLE_OK);
    assert_int_equal(slow.r.status, 200);
    assert_true(json_is_true(json_object_get(slow.r.json, "slow")));
    assert_true(header(&slow.r, "Connection", v, sizeof(v)));
    assert_string_equal(v, "close");
    res_cleanup(&slow.r);
    assert_int_equal(clst_server_in_flight(f->server), 0);
    assert_int_equal(clst_server_port(f->server), f->port);
    /* Stopped: nothing listens any more, and a second stop is an error, not a crash. */
    get(f, "/healthz", &r);
    assert_int_equal(r.code, CURLE_COULDNT_CONNECT);
    res_cleanup(&r);
    assert_int_equal(clst_server_stop(f->server, 10, NULL), CLST_E_INVAL);
}

/* An upload that pauses half-way keeps a request in flight without occupying a worker. */
struct upload {
    struct fx *f;
    atomic_int sent_first;
    atomic_int release;
    int step;
    struct res r;
};

static size_t
upload_read(char *buf, size_t size, size_t nitems, void *userdata)
{
    struct upload *u = userdata;
    assert_true(size * nitems >= 10);
    if (u->step == 0) {
        u->step = 1;
        memcpy(buf, "first-half", 10);
        atomic_store(&u->sent_first, 1);
        return 10;
    }
    if (u->step == 1) {
        for (int i = 0; i < 2000 && !atomic_load(&u->release); i++) {
            sleep_ms(5);
        }
        u->step = 2;
        memcpy(buf, "secondhalf", 10);
        return 10;
    }
    return 0;
}

static void *
bg_upload(void *arg)
{
    struct upload *u = arg;
    struct res *r = &u->r;
    char url[128];
    CURL *h = curl_easy_init();
    clst_buf_init(&r->body, 1 << 16);
    clst_buf_init(&r->headers, 1 << 16);
    snprintf(url, sizeof(url), "https://127.0.0.1:%u/echo/up/load", (unsigned)u->f->port);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CAINFO, u->f->ca_file);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 15000L);
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, upload_read);
    curl_easy_setopt(h, CURLOPT_READDATA, u);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)20);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &r->body);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, collect);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &r->headers);
    r->code = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_cleanup(h);
    (void)clst_buf_terminate(&r->body);
    (void)clst_buf_terminate(&r->headers);
    r->json = json_loadb((const char *)r->body.data, r->body.size, 0, NULL);
    return NULL;
}

static void
test_drain_keepalive(void **state)
{
    struct fx *f = *state;
    pthread_t up_thread, stop_thread;
    struct res r;
    struct res health;
    char v[64];
    /* A keep-alive connection opened before the stop. */
    CURL *idle = curl_easy_init();
    struct req q = {.path = "/healthz"};
    perform(f, idle, &q, &r);
    assert_int_equal(r.status, 200);
    res_cleanup(&r);

    /* The completion of that request may trail its response a little. */
    for (int i = 0; i < 400 && clst_server_in_flight(f->server) != 0; i++) {
        sleep_ms(5);
    }
    assert_int_equal(clst_server_in_flight(f->server), 0);
    struct upload *u = calloc(1, sizeof(*u));
    assert_non_null(u);
    u->f = f;
    assert_int_equal(pthread_create(&up_thread, NULL, bg_upload, u), 0);
    wait_for(&u->sent_first);
    for (int i = 0; i < 400 && clst_server_in_flight(f->server) < 1; i++) {
        sleep_ms(5);
    }
    unsigned in_flight = clst_server_in_flight(f->server);

    struct stopper st = {.f = f, .timeout_ms = 5000};
    assert_int_equal(pthread_create(&stop_thread, NULL, bg_stop, &st), 0);
    sleep_ms(150);
    get(f, "/healthz", &r); /* new connection: refused */
    CURLcode fresh = r.code;
    res_cleanup(&r);
    /* The existing connection may still ask, and learns that the server is going away. */
    perform(f, idle, &q, &health);
    for (int i = 0; i < 400 && clst_server_in_flight(f->server) != 1; i++) {
        sleep_ms(5);
    }
    unsigned during = clst_server_in_flight(f->server); /* the upload, still in flight */
    atomic_store(&u->release, 1);
    assert_int_equal(pthread_join(up_thread, NULL), 0);
    assert_int_equal(pthread_join(stop_thread, NULL), 0);
    curl_easy_cleanup(idle);

    assert_int_equal(in_flight, 1);
    assert_int_equal(during, 1);
    assert_int_equal(fresh, CURLE_COULDNT_CONNECT);
    assert_string_equal(error_code(&health, 503), "ServiceUnavailable");
    assert_int_equal(health.connects, 0); /* it was the old connection */
    assert_true(header(&health, "Connection", v, sizeof(v)));
    assert_string_equal(v, "close");
    res_cleanup(&health);
    /* The paused upload finished after the stop began and still got its whole answer. */
    assert_int_equal(u->r.code, CURLE_OK);
    assert_int_equal(u->r.status, 200);
    assert_string_equal(jstr(&u->r, "body"), "first-halfsecondhalf");
    assert_true(header(&u->r, "Connection", v, sizeof(v)));
    assert_string_equal(v, "close");
    assert_int_equal(st.rc, CLST_OK);
    res_cleanup(&u->r);
    free(u);
}

static void
test_stop_deadline(void **state)
{
    struct fx *f = *state;
    pthread_t slow_thread;
    struct bg slow = {.f = f, .path = "/slow"};
    f->slow_ms = 400;
    atomic_store(&f->slow_release, 1);
    assert_int_equal(pthread_create(&slow_thread, NULL, bg_get, &slow), 0);
    wait_for(&f->slow_entered);
    struct clst_err err;
    uint64_t t0 = clst_monotonic_ns();
    assert_int_equal(clst_server_stop(f->server, 50, &err), CLST_E_LIMIT);
    assert_non_null(strstr(err.msg, "still in flight"));
    /* The stop waited for the handler to return (it is never interrupted) but not longer. */
    uint64_t ms = (clst_monotonic_ns() - t0) / 1000000u;
    assert_true(ms < 5000);
    assert_int_equal(pthread_join(slow_thread, NULL), 0);
    res_cleanup(&slow.r);
}

/* Sends raw bytes over TLS (for requests curl will not produce) and returns what came back. */
static void
raw_tls(struct fx *f, const char *data, size_t size, char *out, size_t cap)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(ctx);
    assert_int_equal(SSL_CTX_load_verify_locations(ctx, f->ca_file, NULL), 1);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons(f->port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    SSL *ssl = SSL_new(ctx);
    assert_non_null(ssl);
    assert_int_equal(SSL_set1_host(ssl, "127.0.0.1"), 1);
    SSL_set_fd(ssl, fd);
    assert_int_equal(SSL_connect(ssl), 1);
    size_t written = 0;
    while (written < size) {
        int w = SSL_write(ssl, data + written, (int)(size - written));
        if (w <= 0) {
            break; /* the server may close early, e.g. on oversized headers */
        }
        written += (size_t)w;
    }
    size_t got = 0;
    for (;;) {
        int n = SSL_read(ssl, out + got, (int)(cap - 1 - got));
        if (n <= 0) {
            break;
        }
        got += (size_t)n;
        if (got == cap - 1) {
            break;
        }
    }
    out[got] = '\0';
    SSL_free(ssl);
    close(fd);
    SSL_CTX_free(ctx);
}

static void
test_mhd_rejections(void **state)
{
    struct fx *f = *state;
    char out[8192];
    /* HTTP/1.1 without Host: libmicrohttpd answers 400 itself (its own body, not JSON). */
    const char *nohost = "GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n";
    raw_tls(f, nohost, strlen(nohost), out, sizeof(out));
    assert_non_null(strstr(out, "HTTP/1.1 400"));
    /* Headers over the 64 KiB connection memory: 431. */
    size_t big_size = 80000;
    char *big = malloc(big_size + 128);
    assert_non_null(big);
    int n = snprintf(big, 128, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ");
    memset(big + n, 'a', big_size);
    memcpy(big + n + big_size, "\r\n\r\n", 5);
    raw_tls(f, big, (size_t)n + big_size + 4, out, sizeof(out));
    assert_non_null(strstr(out, "HTTP/1.1 431"));
    free(big);
    /* A raw NUL-free but odd target reaches our parser: a JSON 400. */
    const char *odd = "GET /a%2Fb HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    raw_tls(f, odd, strlen(odd), out, sizeof(out));
    assert_non_null(strstr(out, "HTTP/1.1 400"));
    assert_non_null(strstr(out, "\"code\":\"BadParameter\""));
    /* HTTP/1.0 still works. */
    const char *v10 = "GET /healthz HTTP/1.0\r\n\r\n";
    raw_tls(f, v10, strlen(v10), out, sizeof(out));
    assert_non_null(strstr(out, "{\"status\":\"ok\"}"));
    /* Whatever MHD refused on its own, our accounting came back to zero (no leaked request). */
    for (int i = 0; i < 400 && clst_server_in_flight(f->server) != 0; i++) {
        sleep_ms(5);
    }
    assert_int_equal(clst_server_in_flight(f->server), 0);
}

static void
test_lifecycle_errors(void **state)
{
    struct fx *f = *state;
    struct clst_server_config cfg;
    struct clst_server *s = NULL;
    struct clst_err err;
    /* Routes and hooks cannot change while running. */
    struct clst_server_route late = {CLST_HTTP_GET, "/late", 0, open_handler, NULL};
    assert_int_equal(clst_server_route_add(f->server, &late, &err), CLST_E_INVAL);
    struct clst_server_auth auth = {auth_hook, NULL, f};
    assert_int_equal(clst_server_auth_set(f->server, &auth, &err), CLST_E_INVAL);
    assert_int_equal(clst_server_start(f->server, &err), CLST_E_INVAL);
    /* /healthz is built in. */
    struct clst_server_route dup = {CLST_HTTP_GET, "/healthz", 0, open_handler, NULL};
    fx_config(f, &cfg);
    assert_int_equal(clst_server_new(&cfg, &s, &err), CLST_OK);
    assert_int_equal(clst_server_route_add(s, &dup, &err), CLST_E_CONFLICT);
    /* A protected route without a hook: refused at start, fail closed. */
    struct clst_server_route prot = {CLST_HTTP_GET, "/p", CLST_ROUTE_PROTECTED, open_handler, NULL};
    assert_int_equal(clst_server_route_add(s, &prot, &err), CLST_OK);
    assert_int_equal(clst_server_start(s, &err), CLST_E_INVAL);
    assert_non_null(strstr(err.msg, "authentication hook"));
    assert_int_equal(clst_server_port(s), 0);
    struct clst_server_auth nofn = {NULL, NULL, NULL};
    assert_int_equal(clst_server_auth_set(s, &nofn, &err), CLST_E_INVAL);
    clst_server_free(s);
    s = NULL;
    /* The port in use: an error that says why. */
    fx_config(f, &cfg);
    cfg.port = f->port;
    assert_int_equal(clst_server_new(&cfg, &s, &err), CLST_OK);
    assert_int_equal(clst_server_start(s, &err), CLST_E_IO);
    assert_non_null(strstr(err.msg, "could not start HTTPS"));
    clst_server_free(s);
    s = NULL;
    /* Bad configurations. */
    fx_config(f, &cfg);
    cfg.host = "example.com";
    assert_int_equal(clst_server_new(&cfg, &s, &err), CLST_E_INVAL);
    fx_config(f, &cfg);
    cfg.tls_key_pem = NULL;
    assert_int_equal(clst_server_new(&cfg, &s, &err), CLST_E_INVAL);
    fx_config(f, &cfg);
    cfg.challenge_resource = "https://x\", evil=\"1";
    assert_int_equal(clst_server_new(&cfg, &s, &err), CLST_E_INVAL);
    fx_config(f, &cfg);
    cfg.challenge_authorization = "";
    assert_int_equal(clst_server_new(&cfg, &s, &err), CLST_E_INVAL);
    fx_config(f, &cfg);
    cfg.thread_count = CLST_SERVER_MAX_THREADS + 1;
    assert_int_equal(clst_server_new(&cfg, &s, &err), CLST_E_INVAL);
    fx_config(f, &cfg);
    cfg.io = (enum clst_server_io)7;
    assert_int_equal(clst_server_new(&cfg, &s, &err), CLST_E_INVAL);
    assert_null(s);
    /* A key that does not parse: start fails cleanly. */
    fx_config(f, &cfg);
    cfg.tls_key_pem = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
    assert_int_equal(clst_server_new(&cfg, &s, &err), CLST_OK);
    assert_int_equal(clst_server_start(s, &err), CLST_E_IO);
    clst_server_free(s);
    clst_server_free(NULL);
    assert_int_equal(clst_server_stop(NULL, 0, NULL), CLST_E_INVAL);
}

static void
test_ipv6_and_poll(void **state)
{
    struct fx *f = *state;
    /* The fixture of this test runs the poll() I/O mode. */
    struct res r;
    get(f, "/healthz", &r);
    assert_int_equal(r.status, 200);
    res_cleanup(&r);
    /* IPv6 loopback, default thread count. The certificate covers ::1. */
    struct clst_server_config cfg;
    struct clst_server *s = NULL;
    struct clst_err err;
    fx_config(f, &cfg);
    cfg.host = "::1";
    cfg.thread_count = 0;
    assert_int_equal(clst_server_new(&cfg, &s, &err), CLST_OK);
    assert_int_equal(clst_server_start(s, &err), CLST_OK);
    char url[128];
    snprintf(url, sizeof(url), "https://[::1]:%u/healthz", (unsigned)clst_server_port(s));
    CURL *h = curl_easy_init();
    struct clst_buf body;
    clst_buf_init(&body, 4096);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CAINFO, f->ca_file);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
    assert_int_equal(curl_easy_perform(h), CURLE_OK);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    assert_int_equal(status, 200);
    curl_easy_cleanup(h);
    clst_buf_cleanup(&body);
    assert_int_equal(clst_server_stop(s, 1000, &err), CLST_OK);
    clst_server_free(s);
}


/* ---- observers ------------------------------------------------------------------------------ */

static const char *
namer(void *auth_ctx, const void *principal)
{
    (void)auth_ctx;
    return principal;
}

static enum clst_status
obs_before(void *ctx, const struct clst_http_request *req, struct clst_err *err)
{
    struct fx *f = ctx;
    atomic_fetch_add(&f->before_calls, 1);
    assert_non_null(clst_http_request_route(req));
    if (atomic_load(&f->refuse_before)) {
        return clst_err_set(err, CLST_E_IO, "the audit log cannot be written (test)");
    }
    return CLST_OK;
}

static enum clst_status
obs_after(void *ctx, const struct clst_http_request *req, unsigned status, struct clst_err *err)
{
    struct fx *f = ctx;
    atomic_fetch_add(&f->after_calls, 1);
    const char *route = clst_http_request_route(req);
    const char *who = clst_http_request_identity(req);
    const char *op = clst_http_request_note_get(req, "op");
    pthread_mutex_lock(&f->obs_lock);
    snprintf(f->last_route, sizeof(f->last_route), "%s", route != NULL ? route : "-");
    snprintf(f->last_identity, sizeof(f->last_identity), "%s", who != NULL ? who : "-");
    snprintf(f->last_note, sizeof(f->last_note), "%s", op != NULL ? op : "-");
    f->last_status = status;
    pthread_mutex_unlock(&f->obs_lock);
    assert_true(clst_http_request_elapsed_ns(req) > 0);
    if (atomic_load(&f->refuse_after)) {
        return clst_err_set(err, CLST_E_IO, "the audit record could not be made durable (test)");
    }
    return CLST_OK;
}

/* The asynchronous forms: the same checks, with the result delivered 5 ms later by another
 * thread while the request waits suspended. */
struct deferred_step {
    struct clst_http_request *req;
    enum clst_status st;
    struct clst_err err;
};

static void *
resume_later(void *arg)
{
    struct deferred_step *d = arg;
    struct timespec ts = {0, 5 * 1000 * 1000};
    nanosleep(&ts, NULL);
    clst_http_request_resume(d->req, d->st, &d->err);
    free(d);
    return NULL;
}

static bool
defer_step(struct fx *f, struct clst_http_request *req, struct deferred_step *d)
{
    pthread_t t;
    atomic_fetch_add(&f->async_steps, 1);
    d->req = req;
    clst_http_request_defer(req);
    assert_int_equal(pthread_create(&t, NULL, resume_later, d), 0);
    assert_int_equal(pthread_detach(t), 0);
    return true;
}

static bool
obs_before_async(void *ctx, struct clst_http_request *req, enum clst_status *out_st,
                 struct clst_err *err)
{
    (void)out_st;
    (void)err;
    struct deferred_step *d = calloc(1, sizeof(*d));
    assert_non_null(d);
    d->st = obs_before(ctx, req, &d->err);
    return defer_step(ctx, req, d);
}

static bool
obs_after_async(void *ctx, struct clst_http_request *req, unsigned status,
                enum clst_status *out_st, struct clst_err *err)
{
    (void)out_st;
    (void)err;
    struct deferred_step *d = calloc(1, sizeof(*d));
    assert_non_null(d);
    d->st = obs_after(ctx, req, status, &d->err);
    return defer_step(ctx, req, d);
}

/* Announces every handled request; its answer must come after its `after` step was called. */
static bool
obs_handler_begins(void *ctx, const struct clst_http_request *req)
{
    struct fx *f = ctx;
    if (clst_http_request_route(req) == NULL) {
        atomic_fetch_add(&f->hint_errors, 1);
    }
    atomic_store(&f->after_at_begin, atomic_load(&f->after_calls));
    atomic_fetch_add(&f->begins, 1);
    return true;
}

static void
obs_handler_answered(void *ctx)
{
    struct fx *f = ctx;
    if (atomic_load(&f->after_calls) <= atomic_load(&f->after_at_begin)) {
        atomic_fetch_add(&f->hint_errors, 1); /* answered before its `after` step */
    }
    atomic_fetch_add(&f->answered, 1);
}

static int
setup_observed_with(void **state, bool async)
{
    int rc = setup_io(state, CLST_SERVER_IO_EPOLL);
    if (rc != 0) {
        return rc;
    }
    /* setup_io started the server: observers must come before start, so start a second one. */
    struct fx *f = *state;
    struct clst_err err;
    struct clst_server_config cfg;
    clst_server_free(f->server);
    pthread_mutex_init(&f->obs_lock, NULL);
    fx_config(f, &cfg);
    if (clst_server_new(&cfg, &f->server, &err) != CLST_OK) {
        return -1;
    }
    fx_routes(f);
    struct clst_server_observer o = {.before = obs_before,
                                     .after = obs_after,
                                     .ctx = f,
                                     .handler_begins = obs_handler_begins,
                                     .handler_answered = obs_handler_answered};
    struct clst_server_observer none = {.ctx = f};
    struct clst_server_observer half = {.before = obs_before, .after_async = obs_after_async};
    struct clst_server_observer half_hint = {.after = obs_after,
                                             .handler_begins = obs_handler_begins};
    if (async) {
        o.before_async = obs_before_async;
        o.after_async = obs_after_async;
    }
    if (clst_server_observer_add(f->server, &none, &err) != CLST_E_INVAL ||
        clst_server_observer_add(f->server, &half, &err) != CLST_E_INVAL ||
        clst_server_observer_add(f->server, &half_hint, &err) != CLST_E_INVAL ||
        clst_server_observer_add(f->server, &o, &err) != CLST_OK ||
        clst_server_principal_namer_set(f->server, namer, &err) != CLST_OK ||
        clst_server_start(f->server, &err) != CLST_OK) {
        return -1;
    }
    if (clst_server_observer_add(f->server, &o, &err) != CLST_E_INVAL) {
        return -1; /* refused after start */
    }
    f->port = clst_server_port(f->server);
    return 0;
}

static int
setup_observed(void **state)
{
    return setup_observed_with(state, false);
}

static int
setup_observed_async(void **state)
{
    return setup_observed_with(state, true);
}

static void
test_observers(void **state)
{
    struct fx *f = *state;
    struct res r;
    /* A handled request: before and after run; after sees the route, identity and notes. */
    struct req ok = {.path = "/protected/k1", .headers = {"Authorization: Bearer good-token"}};
    int calls = atomic_load(&f->handler_calls);
    request(f, &ok, &r);
    assert_int_equal(r.status, 200);
    res_cleanup(&r);
    assert_int_equal(atomic_load(&f->before_calls), 1);
    assert_int_equal(atomic_load(&f->after_calls), 1);
    assert_string_equal(f->last_route, "/protected/{name}");
    assert_string_equal(f->last_identity, "admin");
    assert_string_equal(f->last_note, "protected.read");
    assert_int_equal(f->last_status, 200);
    /* Refused by the server itself: after runs (401, 404), before does not. */
    get(f, "/protected/k1", &r);
    assert_int_equal(r.status, 401);
    res_cleanup(&r);
    assert_int_equal(f->last_status, 401);
    assert_string_equal(f->last_identity, "-");
    get(f, "/nowhere", &r);
    assert_int_equal(r.status, 404);
    res_cleanup(&r);
    assert_string_equal(f->last_route, "-");
    assert_int_equal(atomic_load(&f->before_calls), 1);
    assert_int_equal(atomic_load(&f->after_calls), 3);
    /* `before` refuses: 503 with its message and the handler never runs. */
    atomic_store(&f->refuse_before, 1);
    calls = atomic_load(&f->handler_calls);
    request(f, &ok, &r);
    assert_string_equal(error_code(&r, 503), "ServiceUnavailable");
    assert_non_null(strstr(error_message(&r), "audit log cannot be written"));
    res_cleanup(&r);
    assert_int_equal(atomic_load(&f->handler_calls), calls);
    assert_int_equal(f->last_status, 503);
    atomic_store(&f->refuse_before, 0);
    /* `after` refuses: the handler ran, the client gets 503 instead of its 200. */
    atomic_store(&f->refuse_after, 1);
    request(f, &ok, &r);
    assert_string_equal(error_code(&r, 503), "ServiceUnavailable");
    assert_non_null(strstr(error_message(&r), "could not be made durable"));
    res_cleanup(&r);
    assert_int_equal(atomic_load(&f->handler_calls), calls + 1);
    atomic_store(&f->refuse_after, 0);
    /* The connection and the server keep working. */
    request(f, &ok, &r);
    assert_int_equal(r.status, 200);
    res_cleanup(&r);
    /* Every request whose handler ran (3) was announced and answered once, after its `after`
     * step; the ones refused before a handler (401, 404, the refused `before`) were not. */
    assert_int_equal(atomic_load(&f->begins), 3);
    assert_int_equal(atomic_load(&f->answered), 3);
    assert_int_equal(atomic_load(&f->hint_errors), 0);
}

/* The same with deferred steps: every step went through the asynchronous forms (6 requests:
 * the 4 that reach a handler's route with a before step, all 6 with an after step), and the
 * answers are the same. */
static void
test_observers_async(void **state)
{
    struct fx *f = *state;
    test_observers(state);
    assert_int_equal(atomic_load(&f->async_steps), 4 + 6);
}

int
main(void)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_healthz_tls_pinned, setup, teardown),
        cmocka_unit_test_setup_teardown(test_observers, setup_observed, teardown),
        cmocka_unit_test_setup_teardown(test_observers_async, setup_observed_async, teardown),
        cmocka_unit_test_setup_teardown(test_tls_versions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_body_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_found_and_method, setup, teardown),
        cmocka_unit_test_setup_teardown(test_path_params, setup, teardown),
        cmocka_unit_test_setup_teardown(test_query, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auth_challenge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handler_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_graceful_stop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drain_keepalive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mhd_rejections, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lifecycle_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ipv6_and_poll, setup_poll, teardown),
    };
    int rc = cmocka_run_group_tests(tests, group_setup, group_teardown);
    curl_global_cleanup();
    return rc;
}
