/*
 * Tests of the audit observer (src/audit/observer.c): the naming of operations, and its records
 * on a real server (attempt + outcome for a state change, the outcome alone for a read, notes, a
 * 404 before routing, /healthz not recorded). The vault's own routes, a full disk and a crash are
 * covered by tests/integration/audit_log.sh.
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <curl/curl.h>

#include <cloister/audit.h>
#include <cloister/server.h>

#include "test_util.h"

static void
test_op_names(void **state)
{
    (void)state;
    static const struct {
        const char *method, *route, *type, *want;
    } cases[] = {
        {"GET", "/keys", NULL, "keys.list"},
        {"POST", "/keys/restore", NULL, "keys.restore"},
        {"PUT", "/keys/{name}", NULL, "keys.set"},
        {"GET", "/keys/{name}", NULL, "keys.get"},
        {"HEAD", "/keys/{name}", NULL, "keys.get"},
        {"PATCH", "/keys/{name}", NULL, "keys.update"},
        {"DELETE", "/keys/{name}", NULL, "keys.delete"},
        {"POST", "/keys/{name}/create", NULL, "keys.create"},
        {"GET", "/keys/{name}/versions", NULL, "keys.versions"},
        {"GET", "/keys/{name}/{version}", NULL, "keys.get"},
        {"POST", "/keys/{name}/{version}/encrypt", NULL, "keys.encrypt"},
        {"POST", "/keys/{name}/{version}/unwrapkey", NULL, "keys.unwrapkey"},
        {"POST", "/keys/{name}/release", NULL, "keys.release"},
        {"POST", "/keys/{name}/{version}/release", NULL, "keys.release"},
        {"DELETE", "/deletedkeys/{name}", NULL, "deletedkeys.delete"},
        {"POST", "/deletedkeys/{name}/recover", NULL, "deletedkeys.recover"},
        {"PUT", "/secrets/{name}", NULL, "secrets.set"},
        {"POST", "/rng", NULL, "rng.post"},
        {"POST", "/principals", NULL, "principals.post"},
        {"GET", "/principals/{id}", NULL, "principals.get"},
        {"POST", "/attest/challenge", NULL, "attest.challenge"},
        {"POST", "/attest/{type}", "SevSnpVm", "attest.SevSnpVm"},
        {"POST", "/attest/{type}", "sim-enclave_2", "attest.sim-enclave_2"},
        /* A client-chosen type that is not a plain name is not copied into the op. */
        {"POST", "/attest/{type}", "a.b", "attest.other"},
        {"POST", "/attest/{type}", "", "attest.other"},
        {"POST", "/attest/{type}", NULL, "attest.other"},
        {"POST", "/attest/{type}", "abcdefghijklmnopqrstuvwxyz0123456789", "attest.other"},
        {"GET", "/attest/refvals/{type}", NULL, "attest.refvals.get"},
        {"PUT", "/policies/{type}", NULL, "policies.set"},
        {"GET", "/certs", NULL, "certs.list"},
        {"GET", "/.well-known/openid-configuration", NULL, "well-known.openid-configuration"},
        {"GET", "/", NULL, "root"},
        {"OTHER", "/keys", NULL, "keys.other"},
        {"GET", NULL, NULL, "unrouted"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[64];
        memset(out, 'z', sizeof(out));
        clst_audit_op_name(cases[i].method, cases[i].route, cases[i].type, out, sizeof(out));
        if (strcmp(out, cases[i].want) != 0) {
            fail_msg("%s %s: got '%s', want '%s'", cases[i].method,
                     cases[i].route ? cases[i].route : "(null)", out, cases[i].want);
        }
    }
    /* A small buffer is filled, terminated, never overrun. */
    char small[8];
    memset(small, 'z', sizeof(small));
    clst_audit_op_name("POST", "/keys/{name}/{version}/encrypt", NULL, small, 6);
    assert_string_equal(small, "keys.");
    assert_int_equal(small[6], 'z');
    clst_audit_op_name("POST", "/keys", NULL, small, 0); /* no room: nothing written */
    assert_int_equal(small[0], 'k');
}

static enum clst_status
h_create(void *ctx, const struct clst_http_request *req, struct clst_http_response *resp,
         struct clst_err *err)
{
    int *calls = ctx;
    (void)err;
    (*calls)++;
    assert_int_equal(clst_http_request_note(req, "release.decision", "grant"), CLST_OK);
    clst_http_response_json_new(resp, 200, json_pack("{s:s}", "created", "yes"));
    return CLST_OK;
}

/* Appends announced to the log while the last GET and update handlers ran (ctx: the log);
 * checked by the test's own thread (a failed assertion in a server thread says nothing). */
static _Atomic int64_t expected_in_get = -1, expected_in_update = -1;

static int64_t
expected_now(void *ctx)
{
    struct clst_audit_stats st;
    clst_audit_stats_get(ctx, &st);
    return (int64_t)st.expected;
}

static enum clst_status
h_get(void *ctx, const struct clst_http_request *req, struct clst_http_response *resp,
      struct clst_err *err)
{
    (void)req;
    (void)err;
    atomic_store(&expected_in_get, expected_now(ctx));
    clst_http_response_json_new(resp, 200, json_pack("{s:s}", "secret", "never-in-the-log"));
    return CLST_OK;
}

/* A request that changes state: its handler runs after a durable attempt, unannounced (it
 * waits for its own storage, far longer than the log would hold a batch). */
static enum clst_status
h_update(void *ctx, const struct clst_http_request *req, struct clst_http_response *resp,
         struct clst_err *err)
{
    (void)req;
    (void)err;
    atomic_store(&expected_in_update, expected_now(ctx));
    clst_http_response_json_new(resp, 200, json_pack("{s:s}", "updated", "yes"));
    return CLST_OK;
}

static size_t
discard(char *p, size_t size, size_t n, void *ud)
{
    (void)p;
    (void)ud;
    return size * n;
}

static long
call(const char *ca, uint16_t port, const char *method, const char *path)
{
    char url[256];
    long code = 0;
    CURL *h = curl_easy_init();
    assert_non_null(h);
    snprintf(url, sizeof(url), "https://127.0.0.1:%u%s", (unsigned)port, path);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CAINFO, ca);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, "{}");
    }
    assert_int_equal(curl_easy_perform(h), CURLE_OK);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(h);
    return code;
}

/* The records of the log whose member `key` equals `value`. */
static json_t *
records(const char *file, const char *key, const char *value)
{
    size_t size;
    char *text = (char *)tu_read_file(file, &size);
    json_t *out = json_array();
    assert_non_null(text);
    for (char *line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        json_t *j = json_loads(line, 0, NULL);
        assert_non_null(j);
        const char *v = json_string_value(json_object_get(j, key));
        if (v != NULL && strcmp(v, value) == 0) {
            json_array_append(out, j);
        }
        json_decref(j);
    }
    free(text);
    return out;
}

static void
test_records_on_a_server(void **state)
{
    (void)state;
    char root[] = "/tmp/clst-audit-obs-XXXXXX";
    char data[128], logdir[128], key[128], ca[160], file[256];
    struct clst_server_datadir *dir = NULL;
    struct clst_server *server = NULL;
    struct clst_audit *audit = NULL;
    struct clst_server_config cfg;
    struct clst_audit_config acfg;
    struct clst_err err;
    int creates = 0;
    assert_non_null(mkdtemp(root));
    snprintf(data, sizeof(data), "%s/data", root);
    snprintf(logdir, sizeof(logdir), "%s/audit", root);
    snprintf(key, sizeof(key), "%s/audit.key", root);
    assert_int_equal(clst_server_datadir_open(data, "127.0.0.1", NULL, &dir, &err), CLST_OK);
    snprintf(ca, sizeof(ca), "%s/%s", data, CLST_DATADIR_CA_CERT);
    clst_audit_config_init(&acfg);
    acfg.dir = logdir;
    acfg.key_path = key;
    assert_int_equal(clst_audit_open(&acfg, &audit, &err), CLST_OK);
    clst_server_config_init(&cfg);
    cfg.host = "127.0.0.1";
    cfg.port = 0;
    cfg.tls_cert_pem = dir->server_cert_pem;
    cfg.tls_key_pem = (const char *)dir->server_key_pem->ptr;
    cfg.thread_count = 2;
    assert_int_equal(clst_server_new(&cfg, &server, &err), CLST_OK);
    assert_int_equal(clst_audit_observe(audit, server, &err), CLST_OK);
    const struct clst_server_route routes[] = {
        {CLST_HTTP_POST, "/keys/{name}/create", 0, h_create, &creates},
        {CLST_HTTP_GET, "/keys/{name}/{version}", 0, h_get, audit},
        {CLST_HTTP_POST, "/keys/{name}/{version}/update", 0, h_update, audit},
    };
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(clst_server_route_add(server, &routes[i], &err), CLST_OK);
    }
    assert_int_equal(clst_server_start(server, &err), CLST_OK);
    uint16_t port = clst_server_port(server);

    assert_int_equal(call(ca, port, "POST", "/keys/k1/create"), 200);
    assert_int_equal(call(ca, port, "GET", "/keys/k1/v1"), 200);
    assert_int_equal(call(ca, port, "GET", "/nowhere"), 404);
    assert_int_equal(call(ca, port, "GET", "/healthz"), 200);
    assert_int_equal(call(ca, port, "POST", "/keys/k1/v1/update"), 200);
    assert_int_equal(creates, 1);
    struct clst_audit_stats st;
    clst_audit_stats_get(audit, &st);
    /* attempt + outcome, outcome, outcome, attempt + outcome */
    assert_int_equal(st.records, 6);
    assert_int_equal(st.expected, 0); /* every announcement ended */
    /* A read-only request's outcome record is announced while its handler runs; a change's is
     * not (its handler waits for its own storage, longer than a batch is held). */
    assert_int_equal(atomic_load(&expected_in_get), 1);
    assert_int_equal(atomic_load(&expected_in_update), 0);

    assert_int_equal(clst_server_stop(server, 1000, &err), CLST_OK);
    clst_server_free(server);
    assert_int_equal(clst_audit_close(audit, &err), CLST_OK);

    snprintf(file, sizeof(file), "%s/audit-00000000000000000001.jsonl", logdir);
    /* The creation: an attempt, then an outcome naming it, with the handler's note. */
    json_t *c = records(file, "op", "keys.create");
    assert_int_equal(json_array_size(c), 2);
    json_t *att = json_array_get(c, 0), *out = json_array_get(c, 1);
    assert_string_equal(json_string_value(json_object_get(att, "type")), "attempt");
    assert_string_equal(json_string_value(json_object_get(att, "name")), "k1");
    assert_string_equal(json_string_value(json_object_get(att, "client")), "127.0.0.1");
    assert_int_equal(strlen(json_string_value(json_object_get(att, "rid"))), 32);
    assert_null(json_object_get(att, "status"));
    assert_string_equal(json_string_value(json_object_get(out, "type")), "outcome");
    assert_int_equal(json_integer_value(json_object_get(out, "status")), 200);
    assert_string_equal(json_string_value(json_object_get(out, "result")), "ok");
    assert_string_equal(json_string_value(json_object_get(out, "decision")), "grant");
    assert_int_equal(json_integer_value(json_object_get(out, "attempt")),
                     json_integer_value(json_object_get(att, "seq")));
    assert_string_equal(json_string_value(json_object_get(att, "rid")),
                        json_string_value(json_object_get(out, "rid")));
    json_t *notes = json_object_get(out, "notes");
    assert_string_equal(json_string_value(json_object_get(notes, "release.decision")), "grant");
    assert_null(json_object_get(notes, "audit.attempt")); /* the observer's own note */
    json_decref(c);
    /* The read: its outcome only, with name and version; never the answer. */
    c = records(file, "op", "keys.get");
    assert_int_equal(json_array_size(c), 1);
    out = json_array_get(c, 0);
    assert_string_equal(json_string_value(json_object_get(out, "type")), "outcome");
    assert_string_equal(json_string_value(json_object_get(out, "version")), "v1");
    assert_null(json_object_get(out, "attempt"));
    json_decref(c);
    size_t size;
    char *text = (char *)tu_read_file(file, &size);
    assert_null(strstr(text, "never-in-the-log"));
    assert_null(strstr(text, "healthz"));
    free(text);
    c = records(file, "op", "unrouted");
    assert_int_equal(json_array_size(c), 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(c, 0), "status")), 404);
    assert_string_equal(json_string_value(json_object_get(json_array_get(c, 0), "result")),
                        "not-found");
    json_decref(c);

    clst_server_datadir_free(dir);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    assert_int_equal(system(cmd), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_op_names),
        cmocka_unit_test(test_records_on_a_server),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
