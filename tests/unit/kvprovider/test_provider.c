/* Unit tests for src/kvprovider/provider.c: the envelope key provider backed by a vault key, run
 * against a real in-process vault (TLS server, the vault's routes, a SQLite store): whole .clst
 * files encrypted and decrypted through wrapkey/unwrapkey with RSA and oct keys, the header's
 * vault reference, decryption after rotation (the header names the version), the decrypt-only
 * provider, and the failures: EC keys, a header naming another key, an altered wrapped key, key_ops
 * without unwrapKey, a disabled key, a deleted key, bad vault:NAME references. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <cloister/client.h>
#include <cloister/envelope.h>
#include <cloister/server.h>
#include <cloister/vault.h>

#include "kvprovider/kvprovider.h"
#include "test_util.h"

struct env {
    char dir[128];
    char data[192];
    char url[64];
    char ca[320];
    struct clst_server_datadir *dd;
    struct clst_vault_masterkey *mk;
    struct clst_vault_store *store;
    struct clst_vault *v;
    struct clst_server *srv;
    struct clst_client *cl;
    struct clst_client_config cc;
};

static struct env E;

static int
setup(void **state)
{
    struct clst_err err;
    char path[320];
    (void)state;
    memset(&E, 0, sizeof(E));
    snprintf(E.dir, sizeof(E.dir), "/tmp/clst-kvp-XXXXXX");
    assert_non_null(mkdtemp(E.dir));
    snprintf(E.data, sizeof(E.data), "%s/data", E.dir);
    if (clst_server_datadir_open(E.data, "127.0.0.1", NULL, &E.dd, &err) != CLST_OK) {
        fail_msg("datadir: %s", err.msg);
    }
    snprintf(path, sizeof(path), "%s/master.key", E.data);
    assert_int_equal(clst_vault_masterkey_file_load(path, &E.mk, &err), CLST_OK);
    snprintf(path, sizeof(path), "%s/vault.db", E.data);
    struct clst_vault_sqlite_options so = {.path = path};
    assert_int_equal(clst_vault_store_open_sqlite(&so, E.mk, NULL, &E.store, &err), CLST_OK);
    assert_int_equal(clst_vault_new(E.store, E.mk, NULL, &E.v, &err), CLST_OK);
    assert_int_equal(clst_vault_bootstrap_admin(E.v, E.dd->admin_token_sha256, NULL, &err),
                     CLST_OK);
    struct clst_server_config cfg;
    clst_server_config_init(&cfg);
    cfg.host = "127.0.0.1";
    cfg.thread_count = 2;
    cfg.tls_cert_pem = E.dd->server_cert_pem;
    cfg.tls_key_pem = (const char *)E.dd->server_key_pem->ptr;
    if (clst_server_new(&cfg, &E.srv, &err) != CLST_OK ||
        clst_vault_register(E.v, E.srv, &err) != CLST_OK ||
        clst_server_start(E.srv, &err) != CLST_OK) {
        fail_msg("server: %s", err.msg);
    }
    snprintf(E.url, sizeof(E.url), "https://127.0.0.1:%u", (unsigned)clst_server_port(E.srv));
    snprintf(E.ca, sizeof(E.ca), "%s/ca.pem", E.data);
    clst_client_config_init(&E.cc);
    E.cc.url = E.url;
    E.cc.ca_file = E.ca;
    E.cc.token = (const char *)E.dd->first_admin_token->ptr;
    assert_int_equal(clst_client_new(&E.cc, &E.cl, &err), CLST_OK);
    return 0;
}

static int
teardown(void **state)
{
    char cmd[300];
    (void)state;
    clst_client_free(E.cl);
    clst_server_free(E.srv);
    clst_vault_free(E.v);
    clst_vault_store_close(E.store);
    clst_vault_masterkey_free(E.mk);
    clst_server_datadir_free(E.dd);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", E.dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void
call(const char *method, const char *path, const char *body)
{
    struct clst_err err;
    json_t *b = body != NULL ? json_loads(body, 0, NULL) : NULL;
    if (clst_client_call(E.cl, method, path, NULL, b, NULL, &err) != CLST_OK) {
        fail_msg("%s %s: %s", method, path, err.msg);
    }
    json_decref(b);
}

struct ct {
    uint8_t *data;
    size_t size;
};

static struct ct
encrypt_with(struct clst_envelope_provider *p, const uint8_t *pt, size_t n)
{
    struct ct c;
    struct clst_err err;
    c.data = malloc(n + CLST_ENVELOPE_HEADER_MAX_SIZE + 1024);
    assert_non_null(c.data);
    if (clst_envelope_encrypt_mem(pt, n, c.data, n + CLST_ENVELOPE_HEADER_MAX_SIZE + 1024, &c.size,
                                  p, 1, &err) != CLST_OK) {
        fail_msg("encrypt: %s", err.msg);
    }
    return c;
}

static enum clst_status
decrypt_with(struct clst_envelope_provider *p, const struct ct *c, uint8_t *out, size_t *out_size,
             struct clst_err *err)
{
    return clst_envelope_decrypt_mem(c->data, c->size, out, c->size, out_size, &p, 1, 1, err);
}

static void
roundtrip(const char *key, const char *want_alg)
{
    struct clst_envelope_provider *p = NULL, *any = NULL;
    struct clst_err err;
    static const uint8_t pt[] = "patient,age,diagnosis\n1,42,J45\n";
    uint8_t out[256];
    size_t n = 0;
    struct clst_envelope_header h;

    if (clst_kvprovider_new(&E.cc, key, NULL, &p, &err) != CLST_OK) {
        fail_msg("provider for %s: %s", key, err.msg);
    }
    struct ct c = encrypt_with(p, pt, sizeof(pt));
    assert_int_equal(clst_envelope_header_parse(c.data, c.size, &h, &err), CLST_OK);
    assert_int_equal(h.ref.kind, CLST_ENVELOPE_REF_VAULT);
    assert_string_equal(h.ref.vault_url, E.url);
    assert_string_equal(h.ref.key_name, key);
    assert_int_equal(strlen(h.ref.key_version), 32);
    assert_string_equal(h.wrapped.alg, want_alg);
    assert_int_equal(decrypt_with(p, &c, out, &n, &err), CLST_OK);
    assert_int_equal(n, sizeof(pt));
    assert_memory_equal(out, pt, sizeof(pt));
    /* the decrypt-only provider reads the key from the header */
    assert_int_equal(clst_kvprovider_any_new(&E.cc, &any, &err), CLST_OK);
    assert_int_equal(decrypt_with(any, &c, out, &n, &err), CLST_OK);
    assert_memory_equal(out, pt, sizeof(pt));
    /* ... but cannot encrypt */
    uint8_t big[64];
    size_t bn;
    assert_int_not_equal(clst_envelope_encrypt_mem(pt, 1, big, sizeof(big), &bn, any, 1, &err),
                         CLST_OK);
    /* after a rotation the file still decrypts: the header names the version */
    char path[200];
    snprintf(path, sizeof(path), "/keys/%s/rotate", key);
    call("POST", path, NULL);
    assert_int_equal(decrypt_with(any, &c, out, &n, &err), CLST_OK);
    assert_memory_equal(out, pt, sizeof(pt));
    /* an altered wrapped key in the header: the body's context binds the header, and the vault
     * does not unwrap it: refused either way, nothing released */
    size_t off = 0;
    for (; off + h.wrapped.size <= h.size; off++) {
        if (memcmp(c.data + off, h.wrapped.data, h.wrapped.size) == 0) {
            break;
        }
    }
    assert_true(off + h.wrapped.size <= h.size);
    c.data[off + h.wrapped.size / 2] ^= 0x01;
    n = 0;
    assert_int_equal(decrypt_with(any, &c, out, &n, &err), CLST_E_VERIFY);
    assert_non_null(strstr(err.msg, "did not unwrap"));
    assert_int_equal(n, 0);
    free(c.data);
    clst_envelope_provider_free(p);
    clst_envelope_provider_free(any);
}

static void
test_rsa_and_oct(void **state)
{
    (void)state;
    call("POST", "/keys/env-rsa/create", "{\"kty\":\"RSA\",\"key_size\":2048}");
    call("POST", "/keys/env-oct/create", "{\"kty\":\"oct\",\"key_size\":256}");
    call("POST", "/keys/env-oct128/create", "{\"kty\":\"oct\",\"key_size\":128}");
    roundtrip("env-rsa", "RSA-OAEP-256");
    roundtrip("env-oct", "A256KW");
    roundtrip("env-oct128", "A128KW");
}

static void
test_failures(void **state)
{
    struct clst_envelope_provider *p = NULL, *other = NULL;
    struct clst_err err;
    static const uint8_t pt[] = "x";
    uint8_t out[64];
    size_t n;
    (void)state;

    /* EC keys cannot wrap; unknown keys are not found */
    call("POST", "/keys/env-ec/create", "{\"kty\":\"EC\"}");
    assert_int_equal(clst_kvprovider_new(&E.cc, "env-ec", NULL, &p, &err), CLST_E_INVAL);
    assert_non_null(strstr(err.msg, "cannot wrap"));
    assert_int_equal(clst_kvprovider_new(&E.cc, "no-such-key", NULL, &p, &err), CLST_E_NOTFOUND);
    assert_int_equal(clst_kvprovider_new(&E.cc, "bad_name", NULL, &p, &err), CLST_E_INVAL);
    assert_int_equal(clst_kvprovider_new(&E.cc, "k", "XYZ", &p, &err), CLST_E_INVAL);

    call("POST", "/keys/env-a/create", "{\"kty\":\"oct\",\"key_size\":256}");
    call("POST", "/keys/env-b/create", "{\"kty\":\"oct\",\"key_size\":256}");
    assert_int_equal(clst_kvprovider_new(&E.cc, "env-a", NULL, &p, &err), CLST_OK);
    assert_int_equal(clst_kvprovider_new(&E.cc, "env-b", NULL, &other, &err), CLST_OK);
    struct ct c = encrypt_with(p, pt, sizeof(pt));
    /* a provider for another key: not found, naming both */
    assert_int_equal(decrypt_with(other, &c, out, &n, &err), CLST_E_NOTFOUND);
    assert_non_null(strstr(err.msg, "env-a"));
    /* key_ops without unwrapKey: the vault refuses */
    call("PATCH", "/keys/env-a/", "{\"key_ops\":[\"wrapKey\"]}");
    assert_int_equal(decrypt_with(p, &c, out, &n, &err), CLST_E_DENIED);
    call("PATCH", "/keys/env-a/", "{\"key_ops\":[\"wrapKey\",\"unwrapKey\"]}");
    assert_int_equal(decrypt_with(p, &c, out, &n, &err), CLST_OK);
    /* disabled: refused; deleted: not found */
    call("PATCH", "/keys/env-a/", "{\"attributes\":{\"enabled\":false}}");
    assert_int_equal(decrypt_with(p, &c, out, &n, &err), CLST_E_DENIED);
    call("PATCH", "/keys/env-a/", "{\"attributes\":{\"enabled\":true}}");
    call("DELETE", "/keys/env-a", NULL);
    assert_int_equal(decrypt_with(p, &c, out, &n, &err), CLST_E_NOTFOUND);
    call("POST", "/deletedkeys/env-a/recover", NULL);
    assert_int_equal(decrypt_with(p, &c, out, &n, &err), CLST_OK);
    /* wrapping is refused when the key may not wrap */
    call("PATCH", "/keys/env-b/", "{\"key_ops\":[\"unwrapKey\"]}");
    uint8_t buf[4096];
    size_t bn;
    assert_int_not_equal(
        clst_envelope_encrypt_mem(pt, sizeof(pt), buf, sizeof(buf), &bn, other, 1, &err), CLST_OK);
    free(c.data);
    clst_envelope_provider_free(p);
    clst_envelope_provider_free(other);
}

static void
test_parse_ref(void **state)
{
    char name[128], version[33];
    struct clst_err err;
    (void)state;
    assert_int_equal(clst_kvprovider_parse_ref("vault:data-key", name, version, &err), CLST_OK);
    assert_string_equal(name, "data-key");
    assert_string_equal(version, "");
    assert_int_equal(
        clst_kvprovider_parse_ref("vault:k/0123456789abcdef0123456789abcdef", name, version, &err),
        CLST_OK);
    assert_string_equal(name, "k");
    assert_string_equal(version, "0123456789abcdef0123456789abcdef");
    const char *bad[] = {"data-key",
                         "vault:",
                         "vault:a_b",
                         "vault:../x",
                         "vault:k/",
                         "vault:k/0123",
                         "vault:k/0123456789ABCDEF0123456789ABCDEF",
                         "Vault:k",
                         "vault:k/0123456789abcdef0123456789abcdef/x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(clst_kvprovider_parse_ref(bad[i], name, version, &err), CLST_E_INVAL);
    }
    char longname[200];
    memset(longname, 'a', sizeof(longname));
    memcpy(longname, "vault:", 6);
    longname[6 + 128] = '\0';
    assert_int_equal(clst_kvprovider_parse_ref(longname, name, version, &err), CLST_E_INVAL);
    longname[6 + 127] = '\0';
    assert_int_equal(clst_kvprovider_parse_ref(longname, name, version, &err), CLST_OK);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_ref),
        cmocka_unit_test(test_rsa_and_oct),
        cmocka_unit_test(test_failures),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
