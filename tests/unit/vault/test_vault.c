/* Unit tests for src/vault/vault.c and the secret and principal REST handlers, end to end: a real
 * server on 127.0.0.1:0 hosting a vault over a fresh SQLite store, driven through the client
 * library (src/client) and, where headers matter, raw libcurl. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <curl/curl.h>

#include <cloister/client.h>
#include <cloister/crypto.h>
#include <cloister/server.h>
#include <cloister/vault.h>

#include "test_util.h"
#include "unit/vault/vault_test_util.h"
#include "vault/rest_int.h"

#define API "api-version=2025-07-01"

/* One data directory (CA, server certificate, admin token) for the whole file. */
static char g_root[64];
static struct clst_server_datadir *g_dir;
static char g_ca[160];
static bool g_purge_protection;

struct fx {
    struct tv_env env;
    struct clst_vault *vault;
    struct clst_server *server;
    char url[64];
    struct clst_client *admin;
};

static int
group_setup(void **state)
{
    struct clst_err err;
    char data[128];
    (void)state;
    snprintf(g_root, sizeof g_root, "/tmp/clst-vault-rest-XXXXXX");
    if (mkdtemp(g_root) == NULL) {
        return -1;
    }
    snprintf(data, sizeof data, "%s/data", g_root);
    if (clst_server_datadir_open(data, "127.0.0.1", NULL, &g_dir, &err) != CLST_OK) {
        fprintf(stderr, "datadir: %s\n", err.msg);
        return -1;
    }
    snprintf(g_ca, sizeof g_ca, "%s/%s", data, CLST_DATADIR_CA_CERT);
    return g_dir->first_admin_token != NULL ? 0 : -1;
}

static int
group_teardown(void **state)
{
    char cmd[160];
    (void)state;
    clst_server_datadir_free(g_dir);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_root);
    return system(cmd) == 0 ? 0 : -1;
}

static struct clst_client *
client_for(const struct fx *f, const char *token)
{
    struct clst_client_config cfg;
    struct clst_client *c = NULL;
    struct clst_err err;
    clst_client_config_init(&cfg);
    cfg.url = f->url;
    cfg.token = token;
    cfg.ca_file = g_ca;
    if (clst_client_new(&cfg, &c, &err) != CLST_OK) {
        fail_msg("client: %s", err.msg);
    }
    return c;
}

static int
setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    struct clst_err err;
    struct clst_server_config scfg;
    struct clst_vault_config vcfg;
    bool created = false;
    if (f == NULL || tv_env_init(&f->env) != 0) {
        return -1;
    }
    clst_vault_config_init(&vcfg);
    vcfg.clock = &f->env.clock;
    vcfg.purge_protection = g_purge_protection;
    if (clst_vault_new(f->env.store, f->env.mk, &vcfg, &f->vault, &err) != CLST_OK ||
        clst_vault_bootstrap_admin(f->vault, g_dir->admin_token_sha256, &created, &err) !=
            CLST_OK ||
        !created) {
        fprintf(stderr, "vault: %s\n", err.msg);
        return -1;
    }
    clst_server_config_init(&scfg);
    scfg.host = "127.0.0.1";
    scfg.port = 0;
    scfg.tls_cert_pem = g_dir->server_cert_pem;
    scfg.tls_key_pem = (const char *)g_dir->server_key_pem->ptr;
    scfg.thread_count = 2;
    scfg.idle_timeout_s = 5;
    if (clst_server_new(&scfg, &f->server, &err) != CLST_OK ||
        clst_vault_register(f->vault, f->server, &err) != CLST_OK ||
        clst_server_start(f->server, &err) != CLST_OK) {
        fprintf(stderr, "server: %s\n", err.msg);
        return -1;
    }
    snprintf(f->url, sizeof f->url, "https://127.0.0.1:%u", clst_server_port(f->server));
    f->admin = client_for(f, (const char *)g_dir->first_admin_token->ptr);
    *state = f;
    return 0;
}

static int
setup_purge_protection(void **state)
{
    g_purge_protection = true;
    int rc = setup(state);
    g_purge_protection = false;
    return rc;
}

static int
teardown(void **state)
{
    struct fx *f = *state;
    clst_client_free(f->admin);
    clst_server_free(f->server);
    clst_vault_free(f->vault);
    tv_env_cleanup(&f->env);
    free(f);
    return 0;
}

/* ---- helpers -------------------------------------------------------------------------------- */

/* A request through the client; returns the status, the body in *out (may be NULL). */
static long
req(struct clst_client *c, const char *method, const char *path, const char *body,
    json_t **out)
{
    struct clst_client_response r;
    struct clst_err err;
    json_t *jb = NULL;
    if (body != NULL) {
        json_error_t je;
        jb = json_loads(body, 0, &je);
        if (jb == NULL) {
            fail_msg("bad test body %s", body);
        }
    }
    if (clst_client_request(c, method, path, NULL, jb, &r, &err) != CLST_OK) {
        fail_msg("%s %s: %s", method, path, err.msg);
    }
    json_decref(jb);
    long status = r.status;
    if (out != NULL) {
        *out = r.body;
        r.body = NULL;
    }
    clst_client_response_cleanup(&r);
    return status;
}

static const char *
error_code(json_t *body)
{
    const char *c = json_string_value(json_object_get(json_object_get(body, "error"), "code"));
    return c != NULL ? c : "(none)";
}

static const char *
error_message(json_t *body)
{
    const char *c = json_string_value(json_object_get(json_object_get(body, "error"), "message"));
    return c != NULL ? c : "(none)";
}

/* Expects `status` and, for errors, the cloud vault's error code. */
static void
expect(struct clst_client *c, const char *method, const char *path, const char *body,
       long status, const char *code)
{
    json_t *b = NULL;
    long got = req(c, method, path, body, &b);
    if (got != status) {
        fail_msg("%s %s: status %ld, want %ld (%s)", method, path, got, status, error_message(b));
    }
    if (code != NULL && strcmp(error_code(b), code) != 0) {
        fail_msg("%s %s: code %s, want %s", method, path, error_code(b), code);
    }
    json_decref(b);
}

struct raw {
    long status;
    char headers[4096];
    size_t hsize;
    char body[8192];
    size_t bsize;
};

static size_t
raw_h(char *d, size_t s, size_t n, void *u)
{
    struct raw *r = u;
    size_t len = s * n;
    if (r->hsize + len < sizeof r->headers) {
        memcpy(r->headers + r->hsize, d, len);
        r->hsize += len;
        r->headers[r->hsize] = '\0';
    }
    return len;
}

static size_t
raw_b(char *d, size_t s, size_t n, void *u)
{
    struct raw *r = u;
    size_t len = s * n;
    if (r->bsize + len < sizeof r->body) {
        memcpy(r->body + r->bsize, d, len);
        r->bsize += len;
        r->body[r->bsize] = '\0';
    }
    return len;
}

/* A raw request: `auth` is the whole Authorization header value or NULL. */
static void
raw(const struct fx *f, const char *method, const char *target, const char *auth,
    const char *body, struct raw *out)
{
    char url[512];
    char hdr[512];
    struct curl_slist *h = NULL;
    CURL *c = curl_easy_init();
    memset(out, 0, sizeof *out);
    assert_non_null(c);
    snprintf(url, sizeof url, "%s%s", f->url, target);
    if (auth != NULL) {
        snprintf(hdr, sizeof hdr, "Authorization: %s", auth);
        h = curl_slist_append(h, hdr);
    }
    h = curl_slist_append(h, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CAINFO, g_ca);
    curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, raw_h);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, out);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, raw_b);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    if (body != NULL) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    }
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
}

/* Creates a principal through the API and returns its token (malloc'ed) and id. */
static char *
make_principal(struct fx *f, const char *name, const char *roles_json, char *id, size_t id_cap)
{
    char body[1024];
    json_t *resp = NULL;
    snprintf(body, sizeof body, "{\"name\":\"%s\",\"roles\":%s}", name, roles_json);
    long st = req(f->admin, "POST", "/principals", body, &resp);
    if (st != 200) {
        fail_msg("create principal: %ld %s", st, error_message(resp));
    }
    const char *token = json_string_value(json_object_get(resp, "token"));
    assert_non_null(token);
    assert_int_equal(strlen(token), 43);
    snprintf(id, id_cap, "%s", json_string_value(json_object_get(resp, "id")));
    char *t = strdup(token);
    json_decref(resp);
    return t;
}

/* ---- configuration and bootstrap ------------------------------------------------------------ */

static void
test_config(void **state)
{
    struct fx *f = *state;
    struct clst_vault_config cfg;
    struct clst_vault *v = NULL;
    struct clst_err err;

    clst_vault_config_init(&cfg);
    assert_int_equal(cfg.retention_days, 90);
    cfg.retention_days = 6;
    assert_int_equal(clst_vault_new(f->env.store, NULL, &cfg, &v, &err), CLST_E_INVAL);
    assert_non_null(strstr(err.msg, "7 to 90"));
    cfg.retention_days = 91;
    assert_int_equal(clst_vault_new(f->env.store, NULL, &cfg, &v, &err), CLST_E_INVAL);
    cfg.retention_days = 7;
    assert_int_equal(clst_vault_new(f->env.store, NULL, &cfg, &v, &err), CLST_OK);
    assert_string_equal(v->recovery_level, "CustomizedRecoverable+Purgeable");
    assert_int_equal(v->retention_days, 7);
    clst_vault_free(v);
    cfg.retention_days = 0;
    cfg.purge_protection = true;
    assert_int_equal(clst_vault_new(f->env.store, NULL, &cfg, &v, &err), CLST_OK);
    assert_string_equal(v->recovery_level, "Recoverable");
    assert_int_equal(v->retention_days, 90);
    clst_vault_free(v);
    cfg.purge_protection = false;

    const char *bad_urls[] = {"http://x", "https://", "https://x/path", "https://x?q",
                              "https://a b", "vault.example"};
    for (size_t i = 0; i < sizeof bad_urls / sizeof bad_urls[0]; i++) {
        cfg.base_url = bad_urls[i];
        assert_int_equal(clst_vault_new(f->env.store, NULL, &cfg, &v, &err), CLST_E_INVAL);
    }
    cfg.base_url = "https://vault.example.test:9443";
    assert_int_equal(clst_vault_new(f->env.store, NULL, &cfg, &v, &err), CLST_OK);
    clst_vault_free(v);
    assert_int_equal(clst_vault_new(NULL, NULL, &cfg, &v, &err), CLST_E_INVAL);
    assert_int_equal(clst_vault_new(f->env.store, NULL, NULL, &v, &err), CLST_OK);
    clst_vault_free(v);
    clst_vault_free(NULL);
}

static void
test_bootstrap(void **state)
{
    struct fx *f = *state;
    struct clst_err err;
    bool created = true;
    uint8_t other[32];
    memset(other, 7, sizeof other);
    /* The setup created the administrator; a second bootstrap (another token) changes nothing. */
    assert_int_equal(clst_vault_bootstrap_admin(f->vault, other, &created, &err), CLST_OK);
    assert_false(created);
    struct clst_vault_principal p;
    memset(&p, 0, sizeof p);
    assert_int_equal(clst_vault_store_principal_get(f->env.store, CLST_VAULT_BOOTSTRAP_ADMIN_ID,
                                                    &p, &err),
                     CLST_OK);
    assert_memory_equal(p.token_hash, g_dir->admin_token_sha256, 32);
    assert_int_equal(p.role_count, 1);
    assert_string_equal(p.roles[0].role, "Administrator");
    assert_string_equal(p.roles[0].scope, "/");
    clst_vault_principal_cleanup(&p);
    /* The other token does not authenticate. */
    expect(f->admin, "GET", "/secrets", NULL, 200, NULL);
}

/* ---- authentication ------------------------------------------------------------------------- */

static void
test_auth_challenge(void **state)
{
    struct fx *f = *state;
    struct raw r;
    char auth[128];

    raw(f, "GET", "/secrets?" API, NULL, NULL, &r);
    assert_int_equal(r.status, 401);
    assert_non_null(strstr(r.headers, "WWW-Authenticate: Bearer "
                                      "authorization=\"https://login.cloister.invalid/cloister\", "
                                      "resource=\"https://vault.cloister.invalid\"\r\n"));
    assert_non_null(strstr(r.body, "\"Unauthorized\""));
    assert_non_null(strstr(r.body, "missing a Bearer token"));

    /* The SDK's probe: a body-less PUT without a token gets the challenge, not a 400. */
    raw(f, "PUT", "/secrets/s1?" API, NULL, NULL, &r);
    assert_int_equal(r.status, 401);
    raw(f, "POST", "/principals", NULL, NULL, &r);
    assert_int_equal(r.status, 401);

    const char *bad[] = {"Basic YWRtaW46YWRtaW4=", "Bearer", "Bearer ", "Bearer a b",
                         "Bearer \"quoted\"", "Bearerxyz", "Bearer =abc",
                         "Bearer AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        raw(f, "GET", "/secrets?" API, bad[i], NULL, &r);
        if (r.status != 401 || strstr(r.headers, "WWW-Authenticate: Bearer") == NULL) {
            fail_msg("'%s': status %ld", bad[i], r.status);
        }
    }
    /* The right token, with the scheme in any case and extra blanks. */
    snprintf(auth, sizeof auth, "bEaReR   %s  ", (const char *)g_dir->first_admin_token->ptr);
    raw(f, "GET", "/secrets?" API, auth, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.headers, "x-ms-request-id: "));
    /* A token that differs in the last character. */
    snprintf(auth, sizeof auth, "Bearer %s", (const char *)g_dir->first_admin_token->ptr);
    auth[strlen(auth) - 1] = auth[strlen(auth) - 1] == 'A' ? 'B' : 'A';
    raw(f, "GET", "/secrets?" API, auth, NULL, &r);
    assert_int_equal(r.status, 401);
}

static void
test_api_version(void **state)
{
    struct fx *f = *state;
    struct raw r;
    char auth[128];
    snprintf(auth, sizeof auth, "Bearer %s", (const char *)g_dir->first_admin_token->ptr);
    raw(f, "GET", "/secrets", auth, NULL, &r);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body, "BadParameter"));
    assert_non_null(strstr(r.body, "api-version"));
    raw(f, "GET", "/secrets?api-version=2016-10-01", auth, NULL, &r);
    assert_int_equal(r.status, 400);
    raw(f, "GET", "/secrets?api-version=", auth, NULL, &r);
    assert_int_equal(r.status, 400);
    const char *good[] = {"7.0", "7.4", "7.6", "7.6-preview.2", "2025-07-01"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char t[64];
        snprintf(t, sizeof t, "/secrets?api-version=%s", good[i]);
        raw(f, "GET", t, auth, NULL, &r);
        assert_int_equal(r.status, 200);
    }
    /* As the SDK sends it: the key percent-encoded. */
    raw(f, "GET", "/secrets?api%2Dversion=2025-07-01", auth, NULL, &r);
    assert_int_equal(r.status, 200);
    /* The principals API does not need one, but checks it when given. */
    raw(f, "GET", "/principals", auth, NULL, &r);
    assert_int_equal(r.status, 200);
    raw(f, "GET", "/principals?api-version=1.0", auth, NULL, &r);
    assert_int_equal(r.status, 400);
}

/* ---- secrets -------------------------------------------------------------------------------- */

static void
test_secret_lifecycle(void **state)
{
    struct fx *f = *state;
    json_t *b = NULL;
    char path[256];
    char v1[33];
    char v2[33];
    char want[256];

    /* set → 200 with the value, a 32-hex version and the attributes the SDK needs. */
    assert_int_equal(req(f->admin, "PUT", "/secrets/Db-Pw",
                         "{\"value\":\"hunter2\",\"contentType\":\"text/plain\","
                         "\"tags\":{\"env\":\"test\"},\"attributes\":{}}",
                         &b),
                     200);
    assert_string_equal(json_string_value(json_object_get(b, "value")), "hunter2");
    assert_string_equal(json_string_value(json_object_get(b, "contentType")), "text/plain");
    const char *id = json_string_value(json_object_get(b, "id"));
    snprintf(want, sizeof want, "%s/secrets/Db-Pw/", f->url);
    assert_non_null(id);
    assert_memory_equal(id, want, strlen(want));
    snprintf(v1, sizeof v1, "%s", id + strlen(want));
    assert_true(clst_vault_version_valid(v1));
    json_t *attrs = json_object_get(b, "attributes");
    assert_true(json_is_true(json_object_get(attrs, "enabled")));
    assert_int_equal(json_integer_value(json_object_get(attrs, "created")), TV_T0);
    assert_int_equal(json_integer_value(json_object_get(attrs, "updated")), TV_T0);
    assert_int_equal(json_integer_value(json_object_get(attrs, "recoverableDays")), 90);
    assert_string_equal(json_string_value(json_object_get(attrs, "recoveryLevel")),
                        "Recoverable+Purgeable");
    assert_null(json_object_get(attrs, "nbf"));
    assert_string_equal(json_string_value(json_object_get(json_object_get(b, "tags"), "env")),
                        "test");
    json_decref(b);

    /* A second version; the latest is returned for "", for no version, and in any name case. */
    assert_int_equal(req(f->admin, "PUT", "/secrets/db-pw", "{\"value\":\"second\"}", &b), 200);
    id = json_string_value(json_object_get(b, "id"));
    snprintf(v2, sizeof v2, "%s", strrchr(id, '/') + 1);
    assert_string_not_equal(v1, v2);
    assert_null(json_object_get(b, "tags")); /* tags belong to a version */
    json_decref(b);
    const char *latest[] = {"/secrets/Db-Pw/", "/secrets/DB-PW", "/secrets/db-pw/"};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(req(f->admin, "GET", latest[i], NULL, &b), 200);
        assert_string_equal(json_string_value(json_object_get(b, "value")), "second");
        json_decref(b);
    }
    snprintf(path, sizeof path, "/secrets/db-pw/%s", v1);
    assert_int_equal(req(f->admin, "GET", path, NULL, &b), 200);
    assert_string_equal(json_string_value(json_object_get(b, "value")), "hunter2");
    json_decref(b);

    /* versions: both, ids with the version, no values. */
    assert_int_equal(req(f->admin, "GET", "/secrets/db-pw/versions", NULL, &b), 200);
    assert_int_equal(json_array_size(json_object_get(b, "value")), 2);
    json_t *item = json_array_get(json_object_get(b, "value"), 0);
    assert_null(json_object_get(item, "value"));
    assert_non_null(strstr(json_string_value(json_object_get(item, "id")), v1));
    assert_true(json_is_null(json_object_get(b, "nextLink")));
    json_decref(b);

    /* update the old version: disable it → 403 on get, the latest stays readable. */
    snprintf(path, sizeof path, "/secrets/db-pw/%s", v1);
    assert_int_equal(req(f->admin, "PATCH", path,
                         "{\"attributes\":{\"enabled\":false,\"exp\":1800000000},"
                         "\"tags\":{\"b\":\"2\",\"c\":\"3\"},\"contentType\":\"application/json\"}",
                         &b),
                     200);
    assert_null(json_object_get(b, "value"));
    attrs = json_object_get(b, "attributes");
    assert_true(json_is_false(json_object_get(attrs, "enabled")));
    assert_int_equal(json_integer_value(json_object_get(attrs, "exp")), 1800000000);
    assert_int_equal(json_object_size(json_object_get(b, "tags")), 2); /* replaced, not merged */
    assert_string_equal(json_string_value(json_object_get(b, "contentType")), "application/json");
    json_decref(b);
    expect(f->admin, "GET", path, NULL, 403, "Forbidden");
    expect(f->admin, "GET", "/secrets/db-pw/", NULL, 200, NULL);
    /* Clearing exp and the tags. */
    assert_int_equal(req(f->admin, "PATCH", path, "{\"attributes\":{\"exp\":null},\"tags\":{}}", &b),
                     200);
    assert_null(json_object_get(json_object_get(b, "attributes"), "exp"));
    assert_null(json_object_get(b, "tags"));
    json_decref(b);

    /* list: version-less id, no value. */
    assert_int_equal(req(f->admin, "GET", "/secrets", NULL, &b), 200);
    assert_int_equal(json_array_size(json_object_get(b, "value")), 1);
    item = json_array_get(json_object_get(b, "value"), 0);
    snprintf(want, sizeof want, "%s/secrets/Db-Pw", f->url);
    assert_string_equal(json_string_value(json_object_get(item, "id")), want);
    assert_null(json_object_get(item, "value"));
    json_decref(b);

    /* delete: the deleted bundle, visible in /deletedsecrets at once. */
    assert_int_equal(req(f->admin, "DELETE", "/secrets/db-pw", NULL, &b), 200);
    snprintf(want, sizeof want, "%s/deletedsecrets/Db-Pw", f->url);
    assert_string_equal(json_string_value(json_object_get(b, "recoveryId")), want);
    assert_int_equal(json_integer_value(json_object_get(b, "deletedDate")), TV_T0);
    assert_int_equal(json_integer_value(json_object_get(b, "scheduledPurgeDate")),
                     TV_T0 + 90 * 86400);
    assert_null(json_object_get(b, "value"));
    json_decref(b);
    expect(f->admin, "GET", "/secrets/db-pw/", NULL, 404, "SecretNotFound");
    expect(f->admin, "GET", "/secrets/db-pw/versions", NULL, 404, "SecretNotFound");
    expect(f->admin, "DELETE", "/secrets/db-pw", NULL, 404, "SecretNotFound");
    expect(f->admin, "PUT", "/secrets/db-pw", "{\"value\":\"x\"}", 409, "Conflict");
    expect(f->admin, "GET", "/deletedsecrets/db-pw", NULL, 200, NULL);
    assert_int_equal(req(f->admin, "GET", "/deletedsecrets", NULL, &b), 200);
    assert_int_equal(json_array_size(json_object_get(b, "value")), 1);
    item = json_array_get(json_object_get(b, "value"), 0);
    assert_non_null(json_object_get(item, "recoveryId"));
    assert_non_null(json_object_get(item, "scheduledPurgeDate"));
    json_decref(b);
    assert_int_equal(req(f->admin, "GET", "/secrets", NULL, &b), 200);
    assert_int_equal(json_array_size(json_object_get(b, "value")), 0);
    json_decref(b);

    /* recover: both versions back. */
    assert_int_equal(req(f->admin, "POST", "/deletedsecrets/db-pw/recover", NULL, &b), 200);
    assert_null(json_object_get(b, "recoveryId"));
    assert_null(json_object_get(b, "value"));
    json_decref(b);
    expect(f->admin, "GET", "/secrets/db-pw/", NULL, 200, NULL);
    expect(f->admin, "GET", "/deletedsecrets/db-pw", NULL, 404, "SecretNotFound");
    expect(f->admin, "POST", "/deletedsecrets/db-pw/recover", NULL, 404, "SecretNotFound");

    /* purge: only a deleted secret; 204; the name is free again. */
    expect(f->admin, "DELETE", "/deletedsecrets/db-pw", NULL, 404, "SecretNotFound");
    expect(f->admin, "DELETE", "/secrets/db-pw", NULL, 200, NULL);
    assert_int_equal(req(f->admin, "DELETE", "/deletedsecrets/db-pw", NULL, &b), 204);
    assert_null(b);
    expect(f->admin, "GET", "/deletedsecrets/db-pw", NULL, 404, "SecretNotFound");
    expect(f->admin, "PUT", "/secrets/db-pw", "{\"value\":\"new\"}", 200, NULL);
    assert_int_equal(req(f->admin, "GET", "/secrets/db-pw/versions", NULL, &b), 200);
    assert_int_equal(json_array_size(json_object_get(b, "value")), 1);
    json_decref(b);
}

static void
test_secret_values(void **state)
{
    struct fx *f = *state;
    json_t *b = NULL;
    /* Every character that needs escaping, and multi-byte UTF-8, round-trip exactly. */
    const char *tricky = "q\"b\\s/n\nt\tc\x01\x1f\x7f caf\xc3\xa9 \xf0\x9f\x94\x91 \xe2\x80\xa8";
    json_t *body = json_pack("{s:s}", "value", tricky);
    char *text = json_dumps(body, 0);
    assert_int_equal(req(f->admin, "PUT", "/secrets/tricky", text, &b), 200);
    assert_string_equal(json_string_value(json_object_get(b, "value")), tricky);
    json_decref(b);
    free(text);
    json_decref(body);
    assert_int_equal(req(f->admin, "GET", "/secrets/tricky/", NULL, &b), 200);
    assert_string_equal(json_string_value(json_object_get(b, "value")), tricky);
    json_decref(b);

    /* Empty value. */
    assert_int_equal(req(f->admin, "PUT", "/secrets/empty", "{\"value\":\"\"}", &b), 200);
    assert_string_equal(json_string_value(json_object_get(b, "value")), "");
    json_decref(b);

    /* 25 KiB exactly passes; one byte more is 400 BadParameter; 20000 é (40000 bytes) too. */
    char *big = malloc(CLST_VAULT_SECRET_VALUE_MAX + 2);
    memset(big, 'x', CLST_VAULT_SECRET_VALUE_MAX);
    big[CLST_VAULT_SECRET_VALUE_MAX] = '\0';
    body = json_pack("{s:s}", "value", big);
    text = json_dumps(body, 0);
    assert_int_equal(req(f->admin, "PUT", "/secrets/big", text, &b), 200);
    assert_int_equal(json_string_length(json_object_get(b, "value")), CLST_VAULT_SECRET_VALUE_MAX);
    json_decref(b);
    free(text);
    json_decref(body);
    big[CLST_VAULT_SECRET_VALUE_MAX] = 'x';
    big[CLST_VAULT_SECRET_VALUE_MAX + 1] = '\0';
    body = json_pack("{s:s}", "value", big);
    text = json_dumps(body, 0);
    assert_int_equal(req(f->admin, "PUT", "/secrets/big", text, &b), 400);
    assert_string_equal(error_code(b), "BadParameter");
    assert_non_null(strstr(error_message(b), "25600"));
    json_decref(b);
    free(text);
    json_decref(body);
    free(big);
    /* The failed set left the first version alone. */
    assert_int_equal(req(f->admin, "GET", "/secrets/big/versions", NULL, &b), 200);
    assert_int_equal(json_array_size(json_object_get(b, "value")), 1);
    json_decref(b);
}

static void
test_secret_bad_input(void **state)
{
    struct fx *f = *state;
    struct raw r;
    char auth[128];
    char path[256];
    snprintf(auth, sizeof auth, "Bearer %s", (const char *)g_dir->first_admin_token->ptr);

    expect(f->admin, "PUT", "/secrets/bad_name", "{\"value\":\"v\"}", 400, "BadParameter");
    expect(f->admin, "GET", "/secrets/bad_name/", NULL, 400, "BadParameter");
    expect(f->admin, "DELETE", "/secrets/a%20b", NULL, 400, "BadParameter");
    expect(f->admin, "GET", "/secrets/%C3%A9", NULL, 400, "BadParameter");
    char longname[140];
    memset(longname, 'n', 128);
    longname[128] = '\0';
    snprintf(path, sizeof path, "/secrets/%s", longname);
    expect(f->admin, "PUT", path, "{\"value\":\"v\"}", 400, "BadParameter");
    longname[127] = '\0';
    snprintf(path, sizeof path, "/secrets/%s", longname);
    expect(f->admin, "PUT", path, "{\"value\":\"v\"}", 200, NULL);

    /* Path traversal never reaches a handler as a name. */
    raw(f, "GET", "/secrets/..%2Fkeys?" API, auth, NULL, &r);
    assert_int_equal(r.status, 400);
    raw(f, "GET", "/secrets/../keys?" API, auth, NULL, &r);
    assert_int_equal(r.status, 400);

    /* Bodies. */
    raw(f, "PUT", "/secrets/s?" API, auth, "{\"value\":", &r);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body, "BadParameter"));
    raw(f, "PUT", "/secrets/s?" API, auth, "", &r);
    assert_int_equal(r.status, 400);
    raw(f, "PUT", "/secrets/s?" API, auth, "[\"value\"]", &r);
    assert_int_equal(r.status, 400);
    raw(f, "PUT", "/secrets/s?" API, auth, "{\"value\":\"a\",\"value\":\"b\"}", &r);
    assert_int_equal(r.status, 400);
    expect(f->admin, "PUT", "/secrets/s", "{\"value\":42}", 400, "BadParameter");
    expect(f->admin, "PUT", "/secrets/s", "{\"contentType\":\"x\"}", 400, "BadParameter");
    expect(f->admin, "PUT", "/secrets/s", "{\"value\":\"v\",\"tags\":\"a=b\"}", 400,
           "BadParameter");
    expect(f->admin, "PUT", "/secrets/s", "{\"value\":\"v\",\"attributes\":{\"enabled\":\"no\"}}",
           400, "BadParameter");
    expect(f->admin, "PUT", "/secrets/s", "{\"value\":\"v\",\"attributes\":{\"nbf\":\"soon\"}}",
           400, "BadParameter");
    expect(f->admin, "PUT", "/secrets/s",
           "{\"value\":\"v\",\"attributes\":{\"nbf\":20,\"exp\":10}}", 400, "BadParameter");
    /* Nothing was created by any of those. */
    expect(f->admin, "GET", "/secrets/s/", NULL, 404, "SecretNotFound");

    /* Versions: well-formed but unknown, and malformed. */
    expect(f->admin, "PUT", "/secrets/s", "{\"value\":\"v\"}", 200, NULL);
    expect(f->admin, "GET", "/secrets/s/0123456789abcdef0123456789abcdef", NULL, 404,
           "SecretNotFound");
    expect(f->admin, "GET", "/secrets/s/latest", NULL, 404, "SecretNotFound");
    expect(f->admin, "PATCH", "/secrets/s/0123456789abcdef0123456789abcdef", "{}", 404,
           "SecretNotFound");
    expect(f->admin, "PATCH", "/secrets/s/", "{\"value\":\"x\"}", 400, "BadParameter");
    expect(f->admin, "PATCH", "/secrets/s/", "{\"attributes\":{\"exp\":10,\"nbf\":20}}", 400,
           "BadParameter");
    expect(f->admin, "PATCH", "/secrets/s/", "{\"attributes\":{\"nbf\":20}}", 200, NULL);
    expect(f->admin, "PATCH", "/secrets/s/", "{\"attributes\":{\"exp\":10}}", 400, "BadParameter");
    expect(f->admin, "GET", "/secrets/nope/", NULL, 404, "SecretNotFound");
    expect(f->admin, "GET", "/secrets/nope/versions", NULL, 404, "SecretNotFound");
    expect(f->admin, "POST", "/deletedsecrets/nope/recover", NULL, 404, "SecretNotFound");

    /* Paging parameters. */
    expect(f->admin, "GET", "/secrets?maxresults=0", NULL, 400, "BadParameter");
    expect(f->admin, "GET", "/secrets?maxresults=26", NULL, 400, "BadParameter");
    expect(f->admin, "GET", "/secrets?maxresults=abc", NULL, 400, "BadParameter");
    expect(f->admin, "GET", "/secrets?maxresults=25", NULL, 200, NULL);
    expect(f->admin, "GET", "/secrets?%24skiptoken=garbage", NULL, 400, "BadParameter");

    /* Methods the vault does not route. */
    raw(f, "POST", "/secrets/s?" API, auth, "{}", &r);
    assert_int_equal(r.status, 405);
}

static void
test_paging(void **state)
{
    struct fx *f = *state;
    json_t *b = NULL;
    char path[64];
    for (int i = 0; i < 5; i++) {
        snprintf(path, sizeof path, "/secrets/page-%d", i);
        expect(f->admin, "PUT", path, "{\"value\":\"v\"}", 200, NULL);
    }
    for (int i = 0; i < 3; i++) {
        expect(f->admin, "PUT", "/secrets/page-2", "{\"value\":\"w\"}", 200, NULL);
    }
    char seen[5] = {0};
    int pages = 0;
    char *next = strdup("/secrets?maxresults=2");
    while (next != NULL) {
        assert_int_equal(req(f->admin, "GET", next, NULL, &b), 200);
        free(next);
        next = NULL;
        pages++;
        json_t *items = json_object_get(b, "value");
        assert_true(json_array_size(items) <= 2);
        size_t i;
        json_t *it;
        json_array_foreach (items, i, it) {
            const char *id = json_string_value(json_object_get(it, "id"));
            int k = id[strlen(id) - 1] - '0';
            assert_true(k >= 0 && k < 5);
            assert_int_equal(seen[k], 0);
            seen[k] = 1;
        }
        const char *nl = json_string_value(json_object_get(b, "nextLink"));
        if (nl != NULL) {
            /* Absolute, on the origin the client used, carrying api-version and maxresults. */
            assert_memory_equal(nl, f->url, strlen(f->url));
            assert_non_null(strstr(nl, "/secrets?api-version=2025-07-01&maxresults=2&%24skiptoken="));
            next = strdup(nl);
        } else {
            assert_true(json_is_null(json_object_get(b, "nextLink")));
        }
        json_decref(b);
    }
    assert_int_equal(pages, 3);
    assert_memory_equal(seen, "\1\1\1\1\1", 5);

    /* Versions page the same way; a token from another listing is refused. */
    assert_int_equal(req(f->admin, "GET", "/secrets/page-2/versions?maxresults=3", NULL, &b), 200);
    assert_int_equal(json_array_size(json_object_get(b, "value")), 3);
    const char *nl = json_string_value(json_object_get(b, "nextLink"));
    assert_non_null(nl);
    assert_non_null(strstr(nl, "/secrets/page-2/versions?"));
    const char *tok = strstr(nl, "%24skiptoken=") + strlen("%24skiptoken=");
    char other[1024];
    snprintf(other, sizeof other, "/secrets?%%24skiptoken=%s", tok);
    expect(f->admin, "GET", other, NULL, 400, "BadParameter");
    json_t *b2 = NULL;
    assert_int_equal(req(f->admin, "GET", nl, NULL, &b2), 200);
    assert_int_equal(json_array_size(json_object_get(b2, "value")), 1);
    json_decref(b2);
    json_decref(b);
}

static void
test_base_url(void **state)
{
    struct fx *f = *state;
    json_t *b = NULL;
    /* With the default configuration, ids follow the Host the client used. */
    assert_int_equal(req(f->admin, "PUT", "/secrets/h", "{\"value\":\"v\"}", &b), 200);
    assert_memory_equal(json_string_value(json_object_get(b, "id")), f->url, strlen(f->url));
    json_decref(b);
    /* A configured base URL wins. */
    snprintf(f->vault->base_url, sizeof f->vault->base_url, "https://vault.example.test:9443");
    assert_int_equal(req(f->admin, "GET", "/secrets/h/", NULL, &b), 200);
    assert_memory_equal(json_string_value(json_object_get(b, "id")),
                        "https://vault.example.test:9443/secrets/h/", 42);
    json_decref(b);
    f->vault->base_url[0] = '\0';
}

static void
test_purge_protection(void **state)
{
    struct fx *f = *state;
    json_t *b = NULL;
    expect(f->admin, "PUT", "/secrets/pp", "{\"value\":\"v\"}", 200, NULL);
    assert_int_equal(req(f->admin, "GET", "/secrets/pp/", NULL, &b), 200);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(b, "attributes"), "recoveryLevel")),
        "Recoverable");
    json_decref(b);
    expect(f->admin, "DELETE", "/secrets/pp", NULL, 200, NULL);
    expect(f->admin, "DELETE", "/deletedsecrets/pp", NULL, 403, "Forbidden");
    f->env.clock.fixed = TV_T0 + 90 * 86400 - 1;
    expect(f->admin, "DELETE", "/deletedsecrets/pp", NULL, 403, "Forbidden");
    f->env.clock.fixed = TV_T0 + 90 * 86400;
    expect(f->admin, "DELETE", "/deletedsecrets/pp", NULL, 204, NULL);
    f->env.clock.fixed = TV_T0;
}

/* ---- principals and roles ------------------------------------------------------------------- */

static void
test_principals(void **state)
{
    struct fx *f = *state;
    json_t *b = NULL;
    char id[80];
    char path[128];

    expect(f->admin, "PUT", "/secrets/a", "{\"value\":\"A\"}", 200, NULL);
    expect(f->admin, "PUT", "/secrets/b", "{\"value\":\"B\"}", 200, NULL);
    char *tok = make_principal(f, "reader of a",
                               "[{\"role\":\"Secrets User\",\"scope\":\"/secrets/a\"}]", id,
                               sizeof id);
    assert_memory_equal(id, "p-", 2);
    assert_int_equal(strlen(id), 18);
    struct clst_client *user = client_for(f, tok);

    assert_int_equal(req(user, "GET", "/secrets/A/", NULL, &b), 200);
    assert_string_equal(json_string_value(json_object_get(b, "value")), "A");
    json_decref(b);
    expect(user, "GET", "/secrets/a/versions", NULL, 200, NULL);
    /* Denied: the other secret, listing, writing, principals. */
    assert_int_equal(req(user, "GET", "/secrets/b/", NULL, &b), 403);
    assert_string_equal(error_code(b), "Forbidden");
    assert_non_null(strstr(error_message(b), "Secrets User"));
    assert_non_null(strstr(error_message(b), "/secrets/b"));
    json_decref(b);
    expect(user, "GET", "/secrets/nonexistent/", NULL, 403, "Forbidden"); /* no existence leak */
    expect(user, "GET", "/secrets", NULL, 403, "Forbidden");
    expect(user, "PUT", "/secrets/a", "{\"value\":\"x\"}", 403, "Forbidden");
    expect(user, "DELETE", "/secrets/a", NULL, 403, "Forbidden");
    expect(user, "GET", "/principals", NULL, 403, "Forbidden");
    expect(user, "POST", "/principals", "{\"name\":\"x\"}", 403, "Forbidden");
    snprintf(path, sizeof path, "/principals/%s", id);
    expect(user, "DELETE", path, NULL, 403, "Forbidden");

    /* list and get: no token or hash anywhere. */
    assert_int_equal(req(f->admin, "GET", "/principals", NULL, &b), 200);
    assert_int_equal(json_array_size(json_object_get(b, "value")), 2);
    char *dump = json_dumps(b, 0);
    assert_null(strstr(dump, tok));
    assert_null(strstr(dump, "token"));
    free(dump);
    json_decref(b);
    assert_int_equal(req(f->admin, "GET", path, NULL, &b), 200);
    assert_string_equal(json_string_value(json_object_get(b, "name")), "reader of a");
    json_t *r0 = json_array_get(json_object_get(b, "roles"), 0);
    assert_string_equal(json_string_value(json_object_get(r0, "role")), "Secrets User");
    assert_string_equal(json_string_value(json_object_get(r0, "scope")), "/secrets/a");
    json_decref(b);

    /* Bad creates. */
    expect(f->admin, "POST", "/principals", "{\"name\":\"x\",\"roles\":[{\"role\":\"Owner\"}]}", 400,
           "BadParameter");
    expect(f->admin, "POST", "/principals",
           "{\"name\":\"x\",\"roles\":[{\"role\":\"Crypto User\",\"scope\":\"/secrets/a\"}]}", 400,
           "BadParameter");
    expect(f->admin, "POST", "/principals", "{\"roles\":[]}", 400, "BadParameter");
    expect(f->admin, "POST", "/principals", "{\"name\":\"dup\",\"id\":\"admin\"}", 409, "Conflict");
    expect(f->admin, "GET", "/principals/nobody", NULL, 404, "NotFound");
    expect(f->admin, "GET", "/principals/bad%20id", NULL, 400, "BadParameter");
    expect(f->admin, "DELETE", "/principals/nobody", NULL, 404, "NotFound");
    /* An administrator cannot delete itself. */
    expect(f->admin, "DELETE", "/principals/admin", NULL, 409, "Conflict");

    /* Deleting the principal revokes its token at once. */
    expect(f->admin, "DELETE", path, NULL, 200, NULL);
    expect(user, "GET", "/secrets/a/", NULL, 401, "Unauthorized");
    expect(f->admin, "GET", path, NULL, 404, "NotFound");
    clst_client_free(user);
    free(tok);

    /* A disabled principal cannot authenticate. */
    tok = NULL;
    assert_int_equal(req(f->admin, "POST", "/principals",
                         "{\"name\":\"off\",\"id\":\"off-1\",\"enabled\":false,"
                         "\"roles\":[{\"role\":\"Administrator\"}]}",
                         &b),
                     200);
    tok = strdup(json_string_value(json_object_get(b, "token")));
    json_decref(b);
    user = client_for(f, tok);
    expect(user, "GET", "/secrets", NULL, 401, "Unauthorized");
    clst_client_free(user);
    free(tok);

    /* A second administrator can delete the first. */
    tok = make_principal(f, "admin two", "[{\"role\":\"administrator\",\"scope\":\"/\"}]", id,
                         sizeof id);
    user = client_for(f, tok);
    expect(user, "DELETE", "/principals/admin", NULL, 200, NULL);
    expect(f->admin, "GET", "/secrets", NULL, 401, "Unauthorized");
    expect(user, "GET", "/secrets", NULL, 200, NULL);
    clst_client_free(user);
    free(tok);
}

static void
test_client_errors(void **state)
{
    struct fx *f = *state;
    struct clst_err err;
    json_t *b = NULL;
    struct clst_client_config cfg;
    struct clst_client *c = NULL;

    /* clst_client_call turns the error body into a status and a message. */
    assert_int_equal(clst_client_call(f->admin, "GET", "/secrets/nope/", NULL, NULL, &b, &err),
                     CLST_E_NOTFOUND);
    assert_null(b);
    assert_non_null(strstr(err.msg, "HTTP 404 SecretNotFound: "));
    assert_int_equal(clst_client_call(f->admin, "PUT", "/secrets/bad_name", NULL, NULL, &b, &err),
                     CLST_E_INVAL);
    /* A nextLink to another origin is refused before anything is sent. */
    assert_int_equal(
        clst_client_call(f->admin, "GET", "https://evil.example/secrets", NULL, NULL, &b, &err),
        CLST_E_INVAL);
    assert_non_null(strstr(err.msg, "another origin"));
    char prefix_attack[128];
    snprintf(prefix_attack, sizeof prefix_attack, "%s.evil.example/secrets", f->url);
    assert_int_equal(clst_client_call(f->admin, "GET", prefix_attack, NULL, NULL, &b, &err),
                     CLST_E_INVAL);

    /* Configuration errors. */
    clst_client_config_init(&cfg);
    assert_int_equal(clst_client_new(&cfg, &c, &err), CLST_E_INVAL);
    assert_non_null(strstr(err.msg, "CLOISTER_URL"));
    cfg.url = "http://127.0.0.1:1";
    assert_int_equal(clst_client_new(&cfg, &c, &err), CLST_E_INVAL);
    cfg.url = "https://127.0.0.1:1/path";
    assert_int_equal(clst_client_new(&cfg, &c, &err), CLST_E_INVAL);
    cfg.url = f->url;
    cfg.token = "has space";
    assert_int_equal(clst_client_new(&cfg, &c, &err), CLST_E_INVAL);
    cfg.token = "x\r\nInjected: 1";
    assert_int_equal(clst_client_new(&cfg, &c, &err), CLST_E_INVAL);
    cfg.token = "t";
    cfg.ca_file = "/nonexistent/ca.pem";
    assert_int_equal(clst_client_new(&cfg, &c, &err), CLST_E_INVAL);

    /* Without the pinned CA the TLS handshake fails with a hint (the system store does not know
     * the test CA). */
    cfg.ca_file = NULL;
    cfg.url = f->url;
    assert_int_equal(clst_client_new(&cfg, &c, &err), CLST_OK);
    assert_int_equal(clst_client_call(c, "GET", "/secrets", NULL, NULL, &b, &err), CLST_E_IO);
    assert_non_null(strstr(err.msg, "--ca"));
    clst_client_free(c);
    /* A wrong token: 401 with a hint about the token. */
    c = client_for(f, "wrong-token");
    assert_int_equal(clst_client_call(c, "GET", "/secrets", NULL, NULL, &b, &err), CLST_E_DENIED);
    assert_non_null(strstr(err.msg, "401"));
    assert_non_null(strstr(err.msg, "CLOISTER_TOKEN"));
    clst_client_free(c);
    /* Nothing listens there. */
    cfg.url = "https://127.0.0.1:1";
    cfg.ca_file = g_ca;
    assert_int_equal(clst_client_new(&cfg, &c, &err), CLST_OK);
    assert_int_equal(clst_client_call(c, "GET", "/secrets", NULL, NULL, &b, &err), CLST_E_IO);
    clst_client_free(c);

    /* path escaping */
    struct clst_buf p;
    clst_buf_init(&p, 64);
    assert_int_equal(clst_client_path_escape("a b/../c%é", &p), CLST_OK);
    assert_int_equal(clst_buf_terminate(&p), CLST_OK);
    assert_string_equal((const char *)p.data, "a%20b%2F..%2Fc%25%C3%A9");
    clst_buf_cleanup(&p);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bootstrap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auth_challenge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_api_version, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_lifecycle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_bad_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_paging, setup, teardown),
        cmocka_unit_test_setup_teardown(test_base_url, setup, teardown),
        cmocka_unit_test_setup_teardown(test_purge_protection, setup_purge_protection, teardown),
        cmocka_unit_test_setup_teardown(test_principals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_errors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
