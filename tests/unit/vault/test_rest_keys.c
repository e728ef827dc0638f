/* Unit tests for src/vault/rest_keys.c.
 *
 * Part 1: the request-body parsers (create, import, update, operations) on their own: every
 * member with wrong types, unknown values and bad base64url.
 *
 * Part 2: the routes in process: a real server (TLS, the vault's routes and authentication) on a
 * loopback port, driven with the client library, over a store whose clock the test moves, so that
 * nbf/exp at the vault's clock, retention dates and purge protection are checked exactly; a row
 * edited in the SQLite file (through a second connection, as an attacker with the file would) is
 * refused with a 500 and nothing is decrypted; a backup from another vault is refused. The wide
 * coverage of every endpoint, algorithm and role through curl and the CLI is in
 * tests/integration/vault_keys.sh and vault_roles_keys.sh.
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include <sqlite3.h>

#include <cloister/client.h>
#include <cloister/crypto.h>
#include <cloister/server.h>
#include <cloister/vault.h>

#include "test_util.h"
#include "vault/keymat.h"
#include "vault/rest_int.h"
#include "vault/vault_int.h"
#include "vault_test_util.h"

/* ---- part 1: parsers ------------------------------------------------------------------------ */

static struct clst_vault fake_vault;

static void
init_fake_vault(void)
{
    memset(&fake_vault, 0, sizeof(fake_vault));
    fake_vault.retention_days = 90;
    snprintf(fake_vault.recovery_level, sizeof(fake_vault.recovery_level), "Recoverable+Purgeable");
}

static enum clst_status
create_text(const char *text, struct clst_vault_key_request *r, struct clst_err *err)
{
    json_t *body = json_loads(text, 0, NULL);
    enum clst_status st;
    assert_non_null(body);
    memset(r, 0, sizeof(*r));
    st = clst_vault_keys_parse_create(&fake_vault, body, r, err);
    json_decref(body);
    return st;
}

/* base64url of a release policy JSON text */
static char *
policy_b64(const char *policy)
{
    struct clst_buf b;
    clst_buf_init(&b, 4096);
    assert_int_equal(clst_b64url_encode((const uint8_t *)policy, strlen(policy), &b), CLST_OK);
    assert_int_equal(clst_buf_terminate(&b), CLST_OK);
    char *s = strdup((char *)b.data);
    clst_buf_cleanup(&b);
    return s;
}

#define GOOD_POLICY                                                                                \
    "{\"version\":\"1.0.0\",\"anyOf\":[{\"authority\":\"https://"                                  \
    "a.example\",\"allOf\":[{\"claim\":"                                                           \
    "\"x-ms-attestation-type\",\"equals\":\"sevsnpvm\"}]}]}"

static void
test_parse_create(void **state)
{
    struct clst_vault_key_request r;
    struct clst_err err;
    (void)state;
    init_fake_vault();

    assert_int_equal(create_text("{\"kty\":\"RSA\"}", &r, &err), CLST_OK);
    assert_int_equal(r.spec.bits, 2048);
    assert_string_equal(r.kty, "RSA");
    assert_int_equal(r.ops, clst_vault_keymat_ops_default(CLST_KEYMAT_RSA));
    assert_true(r.attrs.enabled);
    assert_string_equal(r.attrs.recovery_level, "Recoverable+Purgeable");
    clst_vault_key_request_cleanup(&r);

    char *pb = policy_b64(GOOD_POLICY);
    char text[2048];
    snprintf(text, sizeof(text),
             "{\"kty\":\"EC\",\"crv\":\"P-521\",\"key_ops\":[\"sign\"],\"tags\":{\"b\":\"2\",\"a\":"
             "\"1\"},\"attributes\":{\"enabled\":false,\"nbf\":10,\"exp\":20,\"exportable\":true},"
             "\"release_policy\":{\"data\":\"%s\",\"immutable\":true},\"unknown\":1}",
             pb);
    assert_int_equal(create_text(text, &r, &err), CLST_OK);
    assert_int_equal(r.spec.curve, CLST_CURVE_P521);
    assert_int_equal(r.ops, CLST_KEYOP_SIGN);
    assert_false(r.attrs.enabled);
    assert_int_equal(r.attrs.nbf, 10);
    assert_int_equal(r.attrs.exp, 20);
    assert_true(r.attrs.exportable);
    assert_string_equal(r.tags, "{\"a\":\"1\",\"b\":\"2\"}");
    assert_non_null(r.policy);
    assert_non_null(strstr(r.policy, "sevsnpvm"));
    assert_true(r.policy_immutable);
    clst_vault_key_request_cleanup(&r);

    const char *bad[] = {
        "{}",
        "{\"kty\":1}",
        "{\"kty\":\"bogus\"}",
        "{\"kty\":\"RSA-HSM\"}",
        "{\"kty\":\"RSA\",\"key_size\":1024}",
        "{\"kty\":\"RSA\",\"key_size\":\"2048\"}",
        "{\"kty\":\"RSA\",\"key_size\":2048.5}",
        "{\"kty\":\"RSA\",\"public_exponent\":3}",
        "{\"kty\":\"RSA\",\"crv\":\"P-256\"}",
        "{\"kty\":\"EC\",\"crv\":\"P-192\"}",
        "{\"kty\":\"EC\",\"crv\":5}",
        "{\"kty\":\"oct\",\"key_size\":64}",
        "{\"kty\":\"oct\",\"key_ops\":[\"sign\"]}",
        "{\"kty\":\"EC\",\"key_ops\":[\"encrypt\"]}",
        "{\"kty\":\"RSA\",\"key_ops\":\"sign\"}",
        "{\"kty\":\"RSA\",\"key_ops\":[\"sign\",\"sign\"]}",
        "{\"kty\":\"RSA\",\"key_ops\":[\"Sign\"]}",
        "{\"kty\":\"RSA\",\"attributes\":[]}",
        "{\"kty\":\"RSA\",\"attributes\":{\"enabled\":\"yes\"}}",
        "{\"kty\":\"RSA\",\"attributes\":{\"nbf\":-1}}",
        "{\"kty\":\"RSA\",\"attributes\":{\"nbf\":20,\"exp\":10}}",
        "{\"kty\":\"RSA\",\"attributes\":{\"bogus\":1}}",
        "{\"kty\":\"RSA\",\"attributes\":{\"exportable\":true}}", /* without a release policy */
        "{\"kty\":\"RSA\",\"tags\":{\"a\":1}}",
        "{\"kty\":\"RSA\",\"tags\":[]}",
        "{\"kty\":\"RSA\",\"release_policy\":{}}",
        "{\"kty\":\"RSA\",\"release_policy\":{\"data\":\"!!\"}}",
        "{\"kty\":\"RSA\",\"release_policy\":{\"data\":\"e30\"}}", /* {} is not a policy */
        "{\"kty\":\"RSA\",\"release_policy\":{\"data\":\"bm90IGpzb24\"}}",
        "{\"kty\":\"RSA\",\"release_policy\":[]}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err.msg[0] = '\0';
        enum clst_status st = create_text(bad[i], &r, &err);
        if (st != CLST_E_INVAL) {
            fail_msg("case %zu (%s): got %d (%s)", i, bad[i], st, err.msg);
        }
        assert_true(err.msg[0] != '\0');
    }
    snprintf(
        text, sizeof(text),
        "{\"kty\":\"RSA\",\"release_policy\":{\"data\":\"%s\",\"contentType\":\"text/plain\"}}",
        pb);
    assert_int_equal(create_text(text, &r, &err), CLST_E_INVAL);
    snprintf(text, sizeof(text),
             "{\"kty\":\"RSA\",\"release_policy\":{\"data\":\"%s\",\"immutable\":\"yes\"}}", pb);
    assert_int_equal(create_text(text, &r, &err), CLST_E_INVAL);
    free(pb);
}

static enum clst_status
import_json(json_t *body, struct clst_vault_key_request *r, struct clst_err *err)
{
    enum clst_status st;
    memset(r, 0, sizeof(*r));
    st = clst_vault_keys_parse_import(&fake_vault, body, r, err);
    json_decref(body);
    return st;
}

static void
test_parse_import(void **state)
{
    struct clst_vault_key_request r;
    struct clst_err err;
    EVP_PKEY *pk = NULL;
    json_t *jwk = NULL;
    (void)state;
    init_fake_vault();

    assert_int_equal(clst_ec_generate(CLST_CURVE_P256, &pk), CLST_OK);
    assert_int_equal(clst_pkey_to_jwk(pk, true, &jwk), CLST_OK);
    json_object_set_new(jwk, "key_ops", json_pack("[s]", "verify"));
    assert_int_equal(import_json(json_pack("{s:O}", "key", jwk), &r, &err), CLST_OK);
    assert_int_equal(r.type, CLST_KEYMAT_EC);
    assert_int_equal(r.ops, CLST_KEYOP_VERIFY);
    assert_non_null(r.km);
    clst_vault_key_request_cleanup(&r);
    /* the JWK's key_ops are checked like the request's */
    json_object_set_new(jwk, "key_ops", json_pack("[s]", "decrypt"));
    assert_int_equal(import_json(json_pack("{s:O}", "key", jwk), &r, &err), CLST_E_INVAL);
    json_object_del(jwk, "key_ops");
    assert_int_equal(import_json(json_pack("{s:O}", "key", jwk), &r, &err), CLST_OK);
    assert_int_equal(r.ops, CLST_KEYOP_SIGN | CLST_KEYOP_VERIFY);
    clst_vault_key_request_cleanup(&r);
    assert_int_equal(import_json(json_pack("{s:O, s:b}", "key", jwk, "Hsm", 1), &r, &err),
                     CLST_E_INVAL);
    json_object_set_new(jwk, "key_hsm", json_string("AA"));
    assert_int_equal(import_json(json_pack("{s:O}", "key", jwk), &r, &err), CLST_E_INVAL);
    json_decref(jwk);
    /* public only */
    assert_int_equal(clst_pkey_to_jwk(pk, false, &jwk), CLST_OK);
    assert_int_equal(import_json(json_pack("{s:O}", "key", jwk), &r, &err), CLST_E_INVAL);
    json_decref(jwk);
    EVP_PKEY_free(pk);
    /* oct */
    assert_int_equal(import_json(json_pack("{s:{s:s, s:s}}", "key", "kty", "oct", "k",
                                           "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"),
                                 &r, &err),
                     CLST_OK);
    assert_int_equal(r.spec.bits, 256);
    clst_vault_key_request_cleanup(&r);
    assert_int_equal(
        import_json(json_pack("{s:{s:s, s:s}}", "key", "kty", "oct", "k", "AAEC"), &r, &err),
        CLST_E_INVAL);
    assert_int_equal(import_json(json_pack("{s:s}", "key", "x"), &r, &err), CLST_E_INVAL);
    assert_int_equal(import_json(json_pack("{}"), &r, &err), CLST_E_INVAL);
}

static void
test_parse_update(void **state)
{
    struct clst_vault_key_request r;
    struct clst_err err;
    (void)state;
    json_t *body = json_loads("{\"key_ops\":[\"verify\"],\"attributes\":{\"enabled\":false,\"exp\":"
                              "5},\"tags\":{}}",
                              0, NULL);
    memset(&r, 0, sizeof(r));
    r.attrs.enabled = true;
    assert_int_equal(clst_vault_keys_parse_update(body, CLST_KEYMAT_EC, &r, &err), CLST_OK);
    assert_true(r.has_ops);
    assert_int_equal(r.ops, CLST_KEYOP_VERIFY);
    assert_false(r.attrs.enabled);
    assert_int_equal(r.attrs.exp, 5);
    assert_int_equal(r.attr_fields, CLST_VAULT_UPDATE_ENABLED | CLST_VAULT_UPDATE_EXP);
    assert_string_equal(r.tags, "{}");
    assert_null(r.policy);
    clst_vault_key_request_cleanup(&r);
    json_decref(body);
    const char *bad[] = {"{\"key_ops\":[\"encrypt\"]}", "{\"attributes\":{\"exportable\":true}}",
                         "{\"tags\":\"x\"}", "{\"attributes\":{\"exp\":\"soon\"}}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        body = json_loads(bad[i], 0, NULL);
        memset(&r, 0, sizeof(r));
        assert_int_equal(clst_vault_keys_parse_update(body, CLST_KEYMAT_EC, &r, &err),
                         CLST_E_INVAL);
        json_decref(body);
    }
}

static enum clst_status
op_text(const char *text, enum clst_vault_keyop op, struct clst_vault_op_request *r)
{
    struct clst_err err;
    json_t *body = json_loads(text, 0, NULL);
    enum clst_status st;
    assert_non_null(body);
    clst_vault_op_request_cleanup(r);
    clst_vault_op_request_init(r);
    st = clst_vault_keys_parse_op(body, op, r, &err);
    json_decref(body);
    return st;
}

static void
test_parse_op(void **state)
{
    struct clst_vault_op_request r;
    (void)state;
    clst_vault_op_request_init(&r);
    assert_int_equal(
        op_text("{\"alg\":\"A128GCM\",\"value\":\"aGk\",\"aad\":\"eA\"}", CLST_KEYOP_ENCRYPT, &r),
        CLST_OK);
    assert_int_equal(r.alg, CLST_ALG_A128GCM);
    assert_int_equal(r.in.value_size, 2);
    assert_memory_equal(r.in.value, "hi", 2);
    assert_true(r.in.has_aad);
    assert_false(r.in.has_iv);
    assert_false(r.in.has_tag);
    assert_int_equal(op_text("{\"alg\":\"A128GCM\",\"value\":\"aGk\",\"iv\":\"AAAAAAAAAAAAAAAA\","
                             "\"tag\":\"AAAAAAAAAAAAAAAAAAAAAA\"}",
                             CLST_KEYOP_DECRYPT, &r),
                     CLST_OK);
    assert_int_equal(r.in.iv_size, 12);
    assert_int_equal(r.in.tag_size, 16);
    /* padding is tolerated (other clients pad) */
    assert_int_equal(op_text("{\"alg\":\"RSA-OAEP\",\"value\":\"aGk=\"}", CLST_KEYOP_DECRYPT, &r),
                     CLST_OK);
    assert_int_equal(op_text("{\"alg\":\"ES256\",\"digest\":\"AAAA\",\"value\":\"AAAA\"}",
                             CLST_KEYOP_VERIFY, &r),
                     CLST_OK);
    assert_int_equal(r.digest.size, 3);
    const char *bad[] = {
        "{}",
        "{\"value\":\"aGk\"}",
        "{\"alg\":\"A128CBC\",\"value\":\"aGk\"}",
        "{\"alg\":\"none\",\"value\":\"aGk\"}",
        "{\"alg\":7,\"value\":\"aGk\"}",
        "{\"alg\":\"A128GCM\"}",
        "{\"alg\":\"A128GCM\",\"value\":5}",
        "{\"alg\":\"A128GCM\",\"value\":\"a+b/\"}",
        "{\"alg\":\"A128GCM\",\"value\":\"a b\"}",
        "{\"alg\":\"A128GCM\",\"value\":\"aGk\",\"iv\":\"*\"}",
        "{\"alg\":\"A128GCM\",\"value\":\"aGk\",\"tag\":[]}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (op_text(bad[i], CLST_KEYOP_ENCRYPT, &r) != CLST_E_INVAL) {
            fail_msg("case %zu: %s accepted", i, bad[i]);
        }
    }
    /* verify needs digest; sign takes at most a SHA-512 digest */
    assert_int_equal(op_text("{\"alg\":\"ES256\",\"value\":\"AAAA\"}", CLST_KEYOP_VERIFY, &r),
                     CLST_E_INVAL);
    char big[256];
    snprintf(big, sizeof(big), "{\"alg\":\"RS512\",\"value\":\"%088d\"}", 0);
    assert_int_equal(op_text(big, CLST_KEYOP_SIGN, &r), CLST_E_INVAL);
    /* an unknown algorithm's name is shown sanitized and truncated */
    struct clst_err err;
    json_t *body =
        json_pack("{s:s, s:s}", "alg", "\x01\x02'evil'-alg-with-a-very-long-name", "value", "aGk");
    clst_vault_op_request_cleanup(&r);
    clst_vault_op_request_init(&r);
    assert_int_equal(clst_vault_keys_parse_op(body, CLST_KEYOP_SIGN, &r, &err), CLST_E_INVAL);
    assert_null(strchr(err.msg, '\x01'));
    assert_non_null(strstr(err.msg, "..."));
    json_decref(body);
    clst_vault_op_request_cleanup(&r);
}

/* ---- part 2: routes in process -------------------------------------------------------------- */

static _Atomic int64_t g_now;

static int64_t
now_fn(const struct clst_clock *c)
{
    (void)c;
    return atomic_load(&g_now);
}

static const struct clst_clock g_clock = {now_fn, 0};

struct env {
    char dir[128];
    char data[192];
    char db[256];
    struct clst_server_datadir *dd;
    struct clst_vault_masterkey *mk;
    struct clst_vault_store *store;
    struct clst_vault *v;
    struct clst_server *srv;
    struct clst_client *cl;
};

static void
env_start(struct env *e, bool purge_protection, int retention)
{
    struct clst_err err;
    char path[320], url[64], ca[320];
    memset(e, 0, sizeof(*e));
    snprintf(e->dir, sizeof(e->dir), "/tmp/clst-restkeys-XXXXXX");
    assert_non_null(mkdtemp(e->dir));
    snprintf(e->data, sizeof(e->data), "%s/data", e->dir);
    if (clst_server_datadir_open(e->data, "127.0.0.1", NULL, &e->dd, &err) != CLST_OK) {
        fail_msg("datadir: %s", err.msg);
    }
    snprintf(path, sizeof(path), "%s/master.key", e->data);
    assert_int_equal(clst_vault_masterkey_file_load(path, &e->mk, &err), CLST_OK);
    snprintf(e->db, sizeof(e->db), "%s/vault.db", e->data);
    struct clst_vault_sqlite_options so = {.path = e->db};
    assert_int_equal(clst_vault_store_open_sqlite(&so, e->mk, &g_clock, &e->store, &err), CLST_OK);
    struct clst_vault_config vc;
    clst_vault_config_init(&vc);
    vc.purge_protection = purge_protection;
    vc.retention_days = retention;
    vc.clock = &g_clock;
    assert_int_equal(clst_vault_new(e->store, e->mk, &vc, &e->v, &err), CLST_OK);
    assert_int_equal(clst_vault_bootstrap_admin(e->v, e->dd->admin_token_sha256, NULL, &err),
                     CLST_OK);
    struct clst_server_config cfg;
    clst_server_config_init(&cfg);
    cfg.host = "127.0.0.1";
    cfg.port = 0;
    cfg.thread_count = 2;
    cfg.tls_cert_pem = e->dd->server_cert_pem;
    cfg.tls_key_pem = (const char *)e->dd->server_key_pem->ptr;
    if (clst_server_new(&cfg, &e->srv, &err) != CLST_OK ||
        clst_vault_register(e->v, e->srv, &err) != CLST_OK ||
        clst_server_start(e->srv, &err) != CLST_OK) {
        fail_msg("server: %s", err.msg);
    }
    snprintf(url, sizeof(url), "https://127.0.0.1:%u", (unsigned)clst_server_port(e->srv));
    snprintf(ca, sizeof(ca), "%s/ca.pem", e->data);
    struct clst_client_config cc;
    clst_client_config_init(&cc);
    cc.url = url;
    cc.ca_file = ca;
    cc.token = (const char *)e->dd->first_admin_token->ptr;
    assert_int_equal(clst_client_new(&cc, &e->cl, &err), CLST_OK);
}

static void
env_stop(struct env *e)
{
    clst_client_free(e->cl);
    clst_server_free(e->srv);
    clst_vault_free(e->v);
    clst_vault_store_close(e->store);
    clst_vault_masterkey_free(e->mk);
    clst_server_datadir_free(e->dd);
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", e->dir);
    assert_int_equal(system(cmd), 0);
}

/* One request; returns the status; *out (may be NULL) receives the body. */
static long
req(struct env *e, const char *method, const char *path, const char *body, json_t **out)
{
    struct clst_client_response resp;
    struct clst_err err;
    json_t *b = NULL;
    if (body != NULL) {
        b = json_loads(body, 0, NULL);
        assert_non_null(b);
    }
    memset(&resp, 0, sizeof(resp));
    if (clst_client_request(e->cl, method, path, NULL, b, &resp, &err) != CLST_OK) {
        fail_msg("%s %s: %s", method, path, err.msg);
    }
    json_decref(b);
    long status = resp.status;
    if (out != NULL) {
        *out = resp.body;
        resp.body = NULL;
    }
    clst_client_response_cleanup(&resp);
    return status;
}

static const char *
error_code(const json_t *body)
{
    return json_string_value(json_object_get(json_object_get(body, "error"), "code"));
}

/* Creates a key and returns its version (static buffer). */
static const char *
create(struct env *e, const char *name, const char *body)
{
    static char version[40];
    char path[200];
    json_t *j = NULL;
    snprintf(path, sizeof(path), "/keys/%s/create", name);
    long st = req(e, "POST", path, body, &j);
    if (st != 200) {
        char *t = json_dumps(j, 0);
        fail_msg("create %s: %ld %s", name, st, t);
    }
    const char *kid = json_string_value(json_object_get(json_object_get(j, "key"), "kid"));
    assert_non_null(kid);
    snprintf(version, sizeof(version), "%s", strrchr(kid, '/') + 1);
    json_decref(j);
    return version;
}

static void
test_key_validity_at_vault_clock(void **state)
{
    struct env e;
    json_t *j = NULL;
    char body[512];
    (void)state;
    const int64_t t0 = (int64_t)time(NULL);
    atomic_store(&g_now, t0);
    env_start(&e, false, 0);
    snprintf(body, sizeof(body),
             "{\"kty\":\"oct\",\"key_size\":128,\"attributes\":{\"nbf\":%lld,\"exp\":%lld}}",
             (long long)(t0 + 100), (long long)(t0 + 200));
    create(&e, "timed", body);
    snprintf(body, sizeof(body), "{\"kty\":\"EC\",\"attributes\":{\"nbf\":%lld,\"exp\":%lld}}",
             (long long)(t0 + 100), (long long)(t0 + 200));
    create(&e, "timed-ec", body);
    const char *enc = "{\"alg\":\"A128GCM\",\"value\":\"c2VjcmV0\"}";
    const char *sign =
        "{\"alg\":\"ES256\",\"value\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}";

    /* before nbf: every operation refused (403), reading works */
    assert_int_equal(req(&e, "POST", "/keys/timed//encrypt", enc, &j), 403);
    assert_string_equal(error_code(j), "Forbidden");
    assert_non_null(
        strstr(json_string_value(json_object_get(json_object_get(j, "error"), "message")),
               "not valid before"));
    json_decref(j);
    assert_int_equal(req(&e, "POST", "/keys/timed-ec//sign", sign, NULL), 403);
    assert_int_equal(req(&e, "GET", "/keys/timed/", NULL, NULL), 200);

    /* between nbf and exp: works */
    atomic_store(&g_now, t0 + 150);
    assert_int_equal(req(&e, "POST", "/keys/timed//encrypt", enc, &j), 200);
    char dec[512];
    snprintf(
        dec, sizeof(dec), "{\"alg\":\"A128GCM\",\"value\":\"%s\",\"iv\":\"%s\",\"tag\":\"%s\"}",
        json_string_value(json_object_get(j, "value")), json_string_value(json_object_get(j, "iv")),
        json_string_value(json_object_get(j, "tag")));
    json_decref(j);
    assert_int_equal(req(&e, "POST", "/keys/timed-ec//sign", sign, &j), 200);
    char ver[512];
    snprintf(ver, sizeof(ver),
             "{\"alg\":\"ES256\",\"digest\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\","
             "\"value\":\"%s\"}",
             json_string_value(json_object_get(j, "value")));
    json_decref(j);

    /* at exp and after: encrypt and sign refused; decrypt and verify still work */
    atomic_store(&g_now, t0 + 200);
    assert_int_equal(req(&e, "POST", "/keys/timed//encrypt", enc, NULL), 403);
    atomic_store(&g_now, t0 + 10000);
    assert_int_equal(req(&e, "POST", "/keys/timed//encrypt", enc, &j), 403);
    assert_non_null(strstr(
        json_string_value(json_object_get(json_object_get(j, "error"), "message")), "expired"));
    json_decref(j);
    assert_int_equal(req(&e, "POST", "/keys/timed-ec//sign", sign, NULL), 403);
    assert_int_equal(req(&e, "POST", "/keys/timed//decrypt", dec, &j), 200);
    assert_string_equal(json_string_value(json_object_get(j, "value")), "c2VjcmV0");
    json_decref(j);
    assert_int_equal(req(&e, "POST", "/keys/timed-ec//verify", ver, &j), 200);
    assert_true(json_is_true(json_object_get(j, "value")));
    json_decref(j);

    /* disabled: everything refused, reading works; enabling (and clearing exp) restores it */
    assert_int_equal(req(&e, "PATCH", "/keys/timed/", "{\"attributes\":{\"enabled\":false}}", NULL),
                     200);
    assert_int_equal(req(&e, "POST", "/keys/timed//decrypt", dec, &j), 403);
    assert_non_null(strstr(
        json_string_value(json_object_get(json_object_get(j, "error"), "message")), "disabled"));
    json_decref(j);
    assert_int_equal(req(&e, "GET", "/keys/timed", NULL, &j), 200);
    assert_false(json_is_true(json_object_get(json_object_get(j, "attributes"), "enabled")));
    json_decref(j);
    assert_int_equal(
        req(&e, "PATCH", "/keys/timed/", "{\"attributes\":{\"enabled\":true,\"exp\":null}}", &j),
        200);
    assert_null(json_object_get(json_object_get(j, "attributes"), "exp"));
    json_decref(j);
    assert_int_equal(req(&e, "POST", "/keys/timed//encrypt", enc, NULL), 200);
    /* nbf later than the existing exp (merged) is refused */
    snprintf(body, sizeof(body), "{\"attributes\":{\"nbf\":%lld}}", (long long)(t0 + 300));
    assert_int_equal(req(&e, "PATCH", "/keys/timed-ec/", body, NULL), 400);
    env_stop(&e);
}

static void
test_retention_and_purge_protection(void **state)
{
    struct env e;
    json_t *j = NULL;
    (void)state;
    const int64_t t0 = (int64_t)time(NULL);
    atomic_store(&g_now, t0);
    env_start(&e, true, 7);
    create(&e, "kept", "{\"kty\":\"oct\",\"key_size\":256}");
    assert_int_equal(req(&e, "GET", "/keys/kept", NULL, &j), 200);
    json_t *attrs = json_object_get(j, "attributes");
    assert_string_equal(json_string_value(json_object_get(attrs, "recoveryLevel")),
                        "CustomizedRecoverable");
    assert_int_equal(json_integer_value(json_object_get(attrs, "recoverableDays")), 7);
    json_decref(j);
    assert_int_equal(req(&e, "DELETE", "/keys/kept", NULL, &j), 200);
    assert_int_equal(json_integer_value(json_object_get(j, "deletedDate")), t0);
    assert_int_equal(json_integer_value(json_object_get(j, "scheduledPurgeDate")), t0 + 7 * 86400);
    json_decref(j);
    /* purge protection: no purge before the scheduled date, 403 saying when */
    assert_int_equal(req(&e, "DELETE", "/deletedkeys/kept", NULL, &j), 403);
    assert_non_null(
        strstr(json_string_value(json_object_get(json_object_get(j, "error"), "message")),
               "purge protection"));
    json_decref(j);
    atomic_store(&g_now, t0 + 7 * 86400 - 1);
    assert_int_equal(req(&e, "DELETE", "/deletedkeys/kept", NULL, NULL), 403);
    /* recovery is always possible */
    assert_int_equal(req(&e, "POST", "/deletedkeys/kept/recover", NULL, NULL), 200);
    /* deleted again later: the retention counts from the new deletion */
    atomic_store(&g_now, t0 + 20 * 86400);
    assert_int_equal(req(&e, "DELETE", "/keys/kept", NULL, NULL), 200);
    atomic_store(&g_now, t0 + 26 * 86400);
    assert_int_equal(req(&e, "DELETE", "/deletedkeys/kept", NULL, NULL), 403);
    atomic_store(&g_now, t0 + 27 * 86400);
    assert_int_equal(req(&e, "DELETE", "/deletedkeys/kept", NULL, &j), 204);
    assert_null(j);
    assert_int_equal(req(&e, "GET", "/deletedkeys/kept", NULL, NULL), 404);
    env_stop(&e);
}

/* Edits the database under the running server, then waits until the store's read cache has
 * let go of every row read before the edit (the server sees edits by another process within
 * CLST_VAULT_CACHE_TTL_MS; see src/vault/store_cache.c). */
static void
sql_exec(const char *db, const char *sql)
{
    sqlite3 *h = NULL;
    char *msg = NULL;
    assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
    sqlite3_busy_timeout(h, 10000);
    if (sqlite3_exec(h, sql, NULL, NULL, &msg) != SQLITE_OK) {
        fail_msg("sql: %s", msg);
    }
    assert_true(sqlite3_changes(h) > 0);
    sqlite3_close(h);
    const long wait_ms = CLST_VAULT_CACHE_TTL_MS + 100;
    struct timespec ts = {.tv_sec = wait_ms / 1000, .tv_nsec = (wait_ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void
assert_500_without(struct env *e, const char *method, const char *path, const char *body,
                   const char *forbidden)
{
    json_t *j = NULL;
    long st = req(e, method, path, body, &j);
    if (st != 500) {
        char *t = json_dumps(j, 0);
        fail_msg("%s %s: %ld %s (want 500)", method, path, st, t);
    }
    assert_string_equal(error_code(j), "InternalError");
    char *text = json_dumps(j, 0);
    assert_null(strstr(text, forbidden));
    assert_null(json_object_get(j, "key"));
    assert_null(json_object_get(j, "value"));
    free(text);
    json_decref(j);
}

static void
test_tampered_rows(void **state)
{
    struct env e;
    json_t *j = NULL;
    char sql[512];
    (void)state;
    atomic_store(&g_now, (int64_t)time(NULL));
    env_start(&e, false, 0);
    create(&e, "t-meta", "{\"kty\":\"oct\",\"key_size\":256}");
    create(&e, "t-seal", "{\"kty\":\"oct\",\"key_size\":256}");
    create(&e, "t-swap", "{\"kty\":\"RSA\"}");
    create(&e, "t-pub", "{\"kty\":\"EC\"}");
    /* A ciphertext made before the tampering. */
    assert_int_equal(req(&e, "POST", "/keys/t-seal//encrypt",
                         "{\"alg\":\"A256GCM\",\"value\":\"cGxhaW50ZXh0LXNlY3JldA\"}", &j),
                     200);
    char dec[512];
    snprintf(
        dec, sizeof(dec), "{\"alg\":\"A256GCM\",\"value\":\"%s\",\"iv\":\"%s\",\"tag\":\"%s\"}",
        json_string_value(json_object_get(j, "value")), json_string_value(json_object_get(j, "iv")),
        json_string_value(json_object_get(j, "tag")));
    json_decref(j);
    assert_int_equal(req(&e, "POST", "/keys/t-seal//decrypt", dec, NULL), 200);

    /* 1. an attribute edited (enabled 1 → 0 without the MAC): the row is refused */
    sql_exec(e.db, "UPDATE versions SET enabled = 0 WHERE object_id = "
                   "(SELECT id FROM objects WHERE name = 't-meta')");
    assert_500_without(&e, "GET", "/keys/t-meta", NULL, "kid");
    assert_500_without(&e, "POST", "/keys/t-meta//encrypt",
                       "{\"alg\":\"A256GCM\",\"value\":\"eA\"}", "kid");
    /* a listing holding the row fails as a whole (fail closed) */
    assert_500_without(&e, "GET", "/keys", NULL, "t-seal");

    /* 2. the sealed value edited: nothing is decrypted */
    snprintf(sql, sizeof(sql),
             "UPDATE versions SET ciphertext = CAST(zeroblob(length(ciphertext)) AS BLOB) "
             "WHERE object_id = (SELECT id FROM objects WHERE name = 't-seal')");
    sql_exec(e.db, sql);
    assert_500_without(&e, "POST", "/keys/t-seal//decrypt", dec, "cGxhaW50ZXh0");
    assert_500_without(&e, "POST", "/keys/t-seal/backup", NULL, "value");

    /* 3. one key's sealed material moved into another key's row (RSA into EC): refused */
    sql_exec(e.db, "UPDATE versions SET (wrapped_key, nonce, ciphertext, tag) = "
                   "(SELECT wrapped_key, nonce, ciphertext, tag FROM versions WHERE object_id = "
                   "(SELECT id FROM objects WHERE name = 't-swap')) WHERE object_id = "
                   "(SELECT id FROM objects WHERE name = 't-pub')");
    assert_500_without(
        &e, "POST", "/keys/t-pub//sign",
        "{\"alg\":\"ES256\",\"value\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}",
        "\"value\"");

    /* 4. the public key of a row replaced: refused before any use */
    sql_exec(e.db, "UPDATE versions SET public_data = CAST('{\"kty\":\"RSA\"}' AS BLOB) WHERE "
                   "object_id = (SELECT id FROM objects WHERE name = 't-swap')");
    assert_500_without(&e, "GET", "/keys/t-swap", NULL, "kid");

    /* 5. a deleted key's and a deleted secret's row edited: purge refused (without purge
     * protection too), the row stays for an operator to restore or investigate */
    create(&e, "t-gone", "{\"kty\":\"oct\",\"key_size\":256}");
    assert_int_equal(req(&e, "PUT", "/secrets/t-gone", "{\"value\":\"v\"}", NULL), 200);
    assert_int_equal(req(&e, "DELETE", "/keys/t-gone", NULL, NULL), 200);
    assert_int_equal(req(&e, "DELETE", "/secrets/t-gone", NULL, NULL), 200);
    sql_exec(e.db, "UPDATE versions SET enabled = 0 WHERE object_id IN "
                   "(SELECT id FROM objects WHERE name = 't-gone')");
    assert_500_without(&e, "DELETE", "/deletedkeys/t-gone", NULL, "recoveryId");
    assert_500_without(&e, "DELETE", "/deletedsecrets/t-gone", NULL, "recoveryId");
    /* still there (a purged one would be 404) */
    assert_500_without(&e, "GET", "/deletedkeys/t-gone", NULL, "recoveryId");
    assert_500_without(&e, "GET", "/deletedsecrets/t-gone", NULL, "recoveryId");
    env_stop(&e);
}

static void
test_backup_bound_to_vault(void **state)
{
    struct env a, b;
    json_t *j = NULL;
    char body[200000];
    (void)state;
    atomic_store(&g_now, (int64_t)time(NULL));
    env_start(&a, false, 0);
    env_start(&b, false, 0);
    create(&a, "portable", "{\"kty\":\"oct\",\"key_size\":128,\"tags\":{\"x\":\"y\"}}");
    assert_int_equal(req(&a, "POST", "/keys/portable/backup", NULL, &j), 200);
    snprintf(body, sizeof(body), "{\"value\":\"%s\"}",
             json_string_value(json_object_get(j, "value")));
    json_decref(j);
    /* another vault cannot restore it */
    assert_int_equal(req(&b, "POST", "/keys/restore", body, &j), 400);
    assert_string_equal(error_code(j), "BadParameter");
    assert_non_null(
        strstr(json_string_value(json_object_get(json_object_get(j, "error"), "message")),
               "another vault"));
    json_decref(j);
    assert_int_equal(req(&b, "GET", "/keys/portable", NULL, NULL), 404);
    /* this vault can, once the name is free (live → 409, deleted → 409, purged → 200) */
    assert_int_equal(req(&a, "POST", "/keys/restore", body, NULL), 409);
    assert_int_equal(req(&a, "DELETE", "/keys/portable", NULL, NULL), 200);
    assert_int_equal(req(&a, "POST", "/keys/restore", body, &j), 409);
    assert_non_null(strstr(
        json_string_value(json_object_get(json_object_get(j, "error"), "message")), "purge"));
    json_decref(j);
    assert_int_equal(req(&a, "DELETE", "/deletedkeys/portable", NULL, NULL), 204);
    assert_int_equal(req(&a, "POST", "/keys/restore", body, &j), 200);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "tags"), "x")), "y");
    json_decref(j);
    env_stop(&a);
    env_stop(&b);
}

/* The error message of a response body ("" when there is none). */
static const char *
error_message(const json_t *body)
{
    const char *m = json_string_value(json_object_get(json_object_get(body, "error"), "message"));
    return m != NULL ? m : "";
}

/* Expects `status` and an error message containing `want`. */
static void
expect_error(struct env *e, const char *method, const char *path, long status, const char *want)
{
    json_t *j = NULL;
    assert_int_equal(req(e, method, path, NULL, &j), status);
    if (strstr(error_message(j), want) == NULL) {
        fail_msg("%s %s: message '%s' does not contain '%s'", method, path, error_message(j), want);
    }
    json_decref(j);
}

/* Keys and secrets share the listing and soft-delete handlers (rest_common.c): the same answers
 * and messages, naming the kind. */
static void
test_soft_delete_both_kinds(void **state)
{
    struct env e;
    (void)state;
    atomic_store(&g_now, (int64_t)time(NULL));
    env_start(&e, true, 7);
    create(&e, "gone", "{\"kty\":\"oct\",\"key_size\":256}");
    assert_int_equal(req(&e, "PUT", "/secrets/gone", "{\"value\":\"s3cr3t\"}", NULL), 200);
    static const struct {
        const char *kind, *live, *deleted;
    } kinds[] = {{"key", "/keys", "/deletedkeys"}, {"secret", "/secrets", "/deletedsecrets"}};
    for (size_t i = 0; i < 2; i++) {
        char path[128], want[160];
        snprintf(path, sizeof(path), "%s/missing", kinds[i].live);
        snprintf(want, sizeof(want), "%s 'missing' was not found", kinds[i].kind);
        expect_error(&e, "DELETE", path, 404, want);
        snprintf(path, sizeof(path), "%s/missing/versions", kinds[i].live);
        expect_error(&e, "GET", path, 404, want);
        snprintf(want, sizeof(want), "deleted %s 'missing' was not found", kinds[i].kind);
        snprintf(path, sizeof(path), "%s/missing", kinds[i].deleted);
        expect_error(&e, "GET", path, 404, want);
        expect_error(&e, "DELETE", path, 404, want);
        snprintf(path, sizeof(path), "%s/missing/recover", kinds[i].deleted);
        expect_error(&e, "POST", path, 404, want);
        /* Deleted, then listed as deleted, purge refused with the date, recovered. */
        snprintf(path, sizeof(path), "%s/gone", kinds[i].live);
        assert_int_equal(req(&e, "DELETE", path, NULL, NULL), 200);
        json_t *j = NULL;
        assert_int_equal(req(&e, "GET", kinds[i].deleted, NULL, &j), 200);
        assert_int_equal(json_array_size(json_object_get(j, "value")), 1);
        json_decref(j);
        snprintf(path, sizeof(path), "%s/gone", kinds[i].deleted);
        assert_int_equal(req(&e, "GET", path, NULL, NULL), 200);
        snprintf(want, sizeof(want),
                 "purge protection is on: deleted %s 'gone' can be recovered now and is purged at ",
                 kinds[i].kind);
        expect_error(&e, "DELETE", path, 403, want);
        snprintf(path, sizeof(path), "%s/gone/recover", kinds[i].deleted);
        assert_int_equal(req(&e, "POST", path, NULL, NULL), 200);
        snprintf(path, sizeof(path), "%s/gone", kinds[i].live);
        assert_int_equal(req(&e, "GET", path, NULL, NULL), 200);
    }
    env_stop(&e);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_create),
        cmocka_unit_test(test_parse_import),
        cmocka_unit_test(test_parse_update),
        cmocka_unit_test(test_parse_op),
        cmocka_unit_test(test_key_validity_at_vault_clock),
        cmocka_unit_test(test_retention_and_purge_protection),
        cmocka_unit_test(test_soft_delete_both_kinds),
        cmocka_unit_test(test_tampered_rows),
        cmocka_unit_test(test_backup_bound_to_vault),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
