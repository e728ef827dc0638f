/*
 * Unit tests for src/envelope/provider.c: local key files (format, key id known answer,
 * permissions), the local A256KW provider, RSA-OAEP-256 and P-256 ECDH-ES recipients (right
 * key, wrong key, public half only, tampered wrapped keys, unsupported key types), loading keys
 * from files, external providers through the ops table, and the search over several providers.
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cloister/crypto.h>
#include <cloister/envelope.h>

#include "envelope/envelope_int.h"
#include "test_util.h"

static const uint8_t KEY[32] = {0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15,
                                16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31};

static char tmpdir[64];

static int
setup(void **state)
{
    (void)state;
    strcpy(tmpdir, "/tmp/clst-provider-XXXXXX");
    return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static const char *
write_file(const char *name, const void *data, size_t size, mode_t mode)
{
    static char path[256];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, size), (ssize_t)size);
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
    return path;
}

/* ---- key files -------------------------------------------------------------------------- */

static void
test_key_file_format(void **state)
{
    (void)state;
    struct clst_buf b;
    struct clst_err err;
    uint8_t key[32], key2[32], id[16];

    clst_buf_init_secret(&b, 128);
    assert_int_equal(clst_envelope_key_generate(&b), CLST_OK);
    assert_int_equal(b.size, CLST_ENVELOPE_KEYFILE_SIZE);
    assert_memory_equal(b.data, "cloister-key-v1:", 16);
    assert_int_equal(b.data[80], '\n');
    for (size_t i = 16; i < 80; i++) {
        assert_true((b.data[i] >= '0' && b.data[i] <= '9') || (b.data[i] >= 'a' && b.data[i] <= 'f'));
    }
    assert_int_equal(clst_envelope_key_parse((const char *)b.data, b.size, key, &err), CLST_OK);
    /* Without the newline too. */
    assert_int_equal(clst_envelope_key_parse((const char *)b.data, 80, key2, &err), CLST_OK);
    assert_memory_equal(key, key2, 32);
    /* Two keys differ. */
    struct clst_buf b2;
    clst_buf_init_secret(&b2, 128);
    assert_int_equal(clst_envelope_key_generate(&b2), CLST_OK);
    assert_memory_not_equal(b.data, b2.data, 80);
    clst_buf_cleanup(&b2);

    char text[100];
    memcpy(text, b.data, 81);
    const struct {
        size_t off;
        char c;
    } bad[] = {{0, 'C'}, {15, ';'}, {16, 'g'}, {79, ' '}, {80, '\r'}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char saved = text[bad[i].off];
        text[bad[i].off] = bad[i].c;
        assert_int_equal(clst_envelope_key_parse(text, 81, key, &err), CLST_E_MALFORMED);
        text[bad[i].off] = saved;
    }
    assert_int_equal(clst_envelope_key_parse(text, 79, key, &err), CLST_E_MALFORMED);
    text[81] = '\n';
    assert_int_equal(clst_envelope_key_parse(text, 82, key, &err), CLST_E_MALFORMED);
    assert_int_equal(clst_envelope_key_parse("hello", 5, key, &err), CLST_E_MALFORMED);
    assert_non_null(strstr(err.msg, "cloister keygen"));
    clst_buf_cleanup(&b);

    /* Key id known answer: HKDF-Expand-SHA256(key, "cloister.envelope.key-id.v1", 16), computed
     * independently (Python hmac). */
    static const uint8_t expect[16] = {0xd6, 0xe4, 0x6a, 0x1c, 0x82, 0x70, 0x95, 0xef,
                                       0xb5, 0x02, 0xdb, 0x7b, 0x4d, 0xfe, 0x03, 0xb6};
    assert_int_equal(clst_envelope_key_id(KEY, id), CLST_OK);
    assert_memory_equal(id, expect, 16);
}

static void
test_key_file_loading(void **state)
{
    (void)state;
    struct clst_envelope_provider *p = NULL;
    struct clst_err err;
    char text[82];
    char desc[200];
    uint8_t id[16];
    char idhex[33];

    memcpy(text, "cloister-key-v1:", 16);
    for (int i = 0; i < 32; i++) {
        snprintf(text + 16 + 2 * i, 3, "%02x", KEY[i]);
    }
    text[80] = '\n';
    const char *path = write_file("k.key", text, 81, 0600);
    assert_int_equal(clst_envelope_provider_from_key_file(path, &p, &err), CLST_OK);
    clst_envelope_provider_describe(p, desc, sizeof(desc));
    assert_int_equal(clst_envelope_key_id(KEY, id), CLST_OK);
    assert_int_equal(clst_hex_to_str(id, 16, idhex, sizeof(idhex)), CLST_OK);
    assert_non_null(strstr(desc, idhex));
    assert_string_equal(clst_envelope_provider_name(p), "local key");
    clst_envelope_provider_free(p);
    p = NULL;

    /* Loose permissions are refused, with the fix in the message. */
    const mode_t loose[] = {0640, 0604, 0660, 0644, 0606};
    for (size_t i = 0; i < sizeof(loose) / sizeof(loose[0]); i++) {
        path = write_file("loose.key", text, 81, loose[i]);
        assert_int_equal(clst_envelope_provider_from_key_file(path, &p, &err), CLST_E_DENIED);
        assert_non_null(strstr(err.msg, "chmod 600"));
        assert_null(p);
    }
    path = write_file("ro.key", text, 81, 0400);
    assert_int_equal(clst_envelope_provider_from_key_file(path, &p, &err), CLST_OK);
    clst_envelope_provider_free(p);
    p = NULL;

    char missing[300];
    snprintf(missing, sizeof(missing), "%s/none.key", tmpdir);
    assert_int_equal(clst_envelope_provider_from_key_file(missing, &p, &err), CLST_E_NOTFOUND);
    assert_int_equal(clst_envelope_provider_from_key_file(tmpdir, &p, &err), CLST_E_DENIED);
    path = write_file("garbage.key", "not a key\n", 10, 0600);
    assert_int_equal(clst_envelope_provider_from_key_file(path, &p, &err), CLST_E_MALFORMED);
    path = write_file("short.key", text, 50, 0600);
    assert_int_equal(clst_envelope_provider_from_key_file(path, &p, &err), CLST_E_MALFORMED);
    assert_null(p);
}

/* ---- the local provider -------------------------------------------------------------------- */

static void
test_local_provider(void **state)
{
    (void)state;
    struct clst_envelope_provider *p = NULL, *other = NULL;
    struct clst_envelope_header h;
    struct clst_err err;
    uint8_t key[32], back[32], key2[32];
    uint8_t hdr[CLST_ENVELOPE_HEADER_MAX_SIZE];
    size_t hsize = 0;

    memcpy(key2, KEY, 32);
    key2[0] ^= 1;
    assert_int_equal(clst_envelope_provider_local_new(KEY, &p), CLST_OK);
    assert_int_equal(clst_envelope_provider_local_new(key2, &other), CLST_OK);
    assert_int_equal(clst_env_make_header(p, NULL, 0, hdr, sizeof(hdr), &hsize, key, &err),
                     CLST_OK);
    assert_int_equal(clst_envelope_header_parse(hdr, hsize, &h, &err), CLST_OK);
    assert_int_equal(h.ref.kind, CLST_ENVELOPE_REF_LOCAL);
    assert_string_equal(h.wrapped.alg, "A256KW");
    assert_int_equal(h.wrapped.size, 40);
    assert_int_equal(clst_env_unwrap(&p, 1, &h, back, &err), CLST_OK);
    assert_memory_equal(back, key, 32);

    /* The wrong key: named, with both ids. */
    assert_int_equal(clst_env_unwrap(&other, 1, &h, back, &err), CLST_E_NOTFOUND);
    char id1[33], id2[33];
    uint8_t id[16];
    clst_envelope_key_id(KEY, id);
    clst_hex_to_str(id, 16, id1, sizeof(id1));
    clst_envelope_key_id(key2, id);
    clst_hex_to_str(id, 16, id2, sizeof(id2));
    assert_non_null(strstr(err.msg, id1));
    assert_non_null(strstr(err.msg, id2));

    /* Every bit of the wrapped key matters. */
    for (size_t bit = 0; bit < 40 * 8; bit++) {
        h.wrapped.data[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        assert_int_equal(clst_env_unwrap(&p, 1, &h, back, &err), CLST_E_VERIFY);
        h.wrapped.data[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    strcpy(h.wrapped.alg, "A128KW");
    assert_int_equal(clst_env_unwrap(&p, 1, &h, back, &err), CLST_E_MALFORMED);
    strcpy(h.wrapped.alg, "A256KW");
    h.wrapped.size = 48;
    assert_int_equal(clst_env_unwrap(&p, 1, &h, back, &err), CLST_E_MALFORMED);
    h.wrapped.size = 40;

    /* Search order: a non-matching provider is skipped, the matching one answers. */
    struct clst_envelope_provider *both[] = {other, p};
    assert_int_equal(clst_env_unwrap(both, 2, &h, back, &err), CLST_OK);
    assert_memory_equal(back, key, 32);
    struct clst_envelope_provider *neither[] = {other, other};
    assert_int_equal(clst_env_unwrap(neither, 2, &h, back, &err), CLST_E_NOTFOUND);
    assert_non_null(strstr(err.msg, "none of the 2 keys"));
    assert_int_equal(clst_env_unwrap(NULL, 0, &h, back, &err), CLST_E_NOTFOUND);
    assert_non_null(strstr(err.msg, id1));

    /* Wrapping is fresh each time (a fresh input key per file). */
    uint8_t key_b[32];
    uint8_t hdr_b[CLST_ENVELOPE_HEADER_MAX_SIZE];
    assert_int_equal(clst_env_make_header(p, NULL, 0, hdr_b, sizeof(hdr_b), &hsize, key_b, &err),
                     CLST_OK);
    assert_memory_not_equal(key, key_b, 32);
    clst_envelope_provider_free(p);
    clst_envelope_provider_free(other);
    clst_envelope_provider_free(NULL);
}

/* ---- recipients ---------------------------------------------------------------------------- */

static void
recipient_round_trip(EVP_PKEY *priv, EVP_PKEY *wrong, const char *alg, size_t wrapped_size)
{
    struct clst_envelope_provider *enc = NULL, *dec = NULL, *bad = NULL, *pubonly = NULL;
    struct clst_envelope_header h;
    struct clst_err err;
    EVP_PKEY *pub = NULL;
    uint8_t key[32], back[32];
    uint8_t hdr[CLST_ENVELOPE_HEADER_MAX_SIZE];
    size_t hsize = 0;

    assert_int_equal(clst_pkey_public_copy(priv, &pub), CLST_OK);
    assert_int_equal(clst_envelope_provider_recipient_new(pub, &enc, &err), CLST_OK);
    assert_int_equal(clst_envelope_provider_recipient_new(priv, &dec, &err), CLST_OK);
    assert_int_equal(clst_envelope_provider_recipient_new(wrong, &bad, &err), CLST_OK);
    pubonly = enc;
    EVP_PKEY_free(pub); /* the provider holds its own reference */

    assert_int_equal(clst_env_make_header(enc, NULL, 0, hdr, sizeof(hdr), &hsize, key, &err),
                     CLST_OK);
    assert_int_equal(clst_envelope_header_parse(hdr, hsize, &h, &err), CLST_OK);
    assert_int_equal(h.ref.kind, CLST_ENVELOPE_REF_RECIPIENT);
    assert_string_equal(h.wrapped.alg, alg);
    assert_int_equal(h.wrapped.size, wrapped_size);
    uint8_t fp[32];
    assert_int_equal(clst_envelope_fingerprint(priv, fp), CLST_OK);
    assert_memory_equal(h.ref.fingerprint, fp, 32);

    assert_int_equal(clst_env_unwrap(&dec, 1, &h, back, &err), CLST_OK);
    assert_memory_equal(back, key, 32);
    /* The other key pair: not found, both fingerprints named. */
    assert_int_equal(clst_env_unwrap(&bad, 1, &h, back, &err), CLST_E_NOTFOUND);
    assert_non_null(strstr(err.msg, "recipient SHA256:"));
    /* The public half alone cannot decrypt, and says so. */
    assert_int_equal(clst_env_unwrap(&pubonly, 1, &h, back, &err), CLST_E_INVAL);
    assert_non_null(strstr(err.msg, "private key"));
    /* A flipped byte anywhere in the wrapped key: refused. */
    for (size_t i = 0; i < h.wrapped.size; i += (h.wrapped.size > 120 ? 13 : 1)) {
        h.wrapped.data[i] ^= 0x10;
        assert_int_equal(clst_env_unwrap(&dec, 1, &h, back, &err), CLST_E_VERIFY);
        h.wrapped.data[i] ^= 0x10;
    }
    h.wrapped.size--;
    assert_int_not_equal(clst_env_unwrap(&dec, 1, &h, back, &err), CLST_OK);
    h.wrapped.size++;
    strcpy(h.wrapped.alg, "RSA-OAEP");
    assert_int_equal(clst_env_unwrap(&dec, 1, &h, back, &err), CLST_E_MALFORMED);
    strcpy(h.wrapped.alg, alg);
    /* Same fingerprint, other type byte: not this key. */
    h.ref.recipient_type = h.ref.recipient_type == CLST_ENVELOPE_RECIPIENT_RSA
                               ? CLST_ENVELOPE_RECIPIENT_P256
                               : CLST_ENVELOPE_RECIPIENT_RSA;
    assert_int_equal(clst_env_unwrap(&dec, 1, &h, back, &err), CLST_E_NOTFOUND);

    clst_envelope_provider_free(enc);
    clst_envelope_provider_free(dec);
    clst_envelope_provider_free(bad);
}

static void
test_rsa_recipient(void **state)
{
    (void)state;
    EVP_PKEY *a = NULL, *b = NULL;
    assert_int_equal(clst_rsa_generate(2048, &a), CLST_OK);
    assert_int_equal(clst_rsa_generate(2048, &b), CLST_OK);
    recipient_round_trip(a, b, "RSA-OAEP-256", 256);
    EVP_PKEY_free(a);
    EVP_PKEY_free(b);
}

static void
test_p256_recipient(void **state)
{
    (void)state;
    EVP_PKEY *a = NULL, *b = NULL;
    assert_int_equal(clst_ec_generate(CLST_CURVE_P256, &a), CLST_OK);
    assert_int_equal(clst_ec_generate(CLST_CURVE_P256, &b), CLST_OK);
    recipient_round_trip(a, b, CLST_ENVELOPE_ALG_ECDH_P256, 105);

    /* An ephemeral point that is not on the curve is refused. */
    struct clst_envelope_provider *p = NULL;
    struct clst_envelope_header h;
    struct clst_err err;
    uint8_t key[32], back[32];
    uint8_t hdr[CLST_ENVELOPE_HEADER_MAX_SIZE];
    size_t hsize = 0;
    assert_int_equal(clst_envelope_provider_recipient_new(a, &p, &err), CLST_OK);
    assert_int_equal(clst_env_make_header(p, NULL, 0, hdr, sizeof(hdr), &hsize, key, &err),
                     CLST_OK);
    assert_int_equal(clst_envelope_header_parse(hdr, hsize, &h, &err), CLST_OK);
    assert_int_equal(h.wrapped.data[0], 0x04);
    h.wrapped.data[64] ^= 1; /* last byte of Y */
    assert_int_equal(clst_env_unwrap(&p, 1, &h, back, &err), CLST_E_VERIFY);
    h.wrapped.data[64] ^= 1;
    h.wrapped.data[0] = 0x02; /* compressed form: not what the format says */
    assert_int_equal(clst_env_unwrap(&p, 1, &h, back, &err), CLST_E_VERIFY);
    h.wrapped.data[0] = 0x04;
    assert_int_equal(clst_env_unwrap(&p, 1, &h, back, &err), CLST_OK);
    assert_memory_equal(back, key, 32);
    /* Two wraps to the same recipient use different ephemeral keys. */
    uint8_t hdr2[CLST_ENVELOPE_HEADER_MAX_SIZE];
    struct clst_envelope_header h2;
    assert_int_equal(clst_env_make_header(p, NULL, 0, hdr2, sizeof(hdr2), &hsize, key, &err),
                     CLST_OK);
    assert_int_equal(clst_envelope_header_parse(hdr2, hsize, &h2, &err), CLST_OK);
    assert_memory_not_equal(h.wrapped.data, h2.wrapped.data, 65);
    clst_envelope_provider_free(p);
    EVP_PKEY_free(a);
    EVP_PKEY_free(b);
}

static void
test_unsupported_keys(void **state)
{
    (void)state;
    struct clst_envelope_provider *p = NULL;
    struct clst_err err;
    EVP_PKEY *k = NULL;

    assert_int_equal(clst_ec_generate(CLST_CURVE_P384, &k), CLST_OK);
    assert_int_equal(clst_envelope_provider_recipient_new(k, &p, &err), CLST_E_INVAL);
    assert_non_null(strstr(err.msg, "P-256"));
    EVP_PKEY_free(k);
    k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    assert_non_null(k);
    assert_int_equal(clst_envelope_provider_recipient_new(k, &p, &err), CLST_E_INVAL);
    assert_non_null(strstr(err.msg, "1024"));
    EVP_PKEY_free(k);
    k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    assert_non_null(k);
    assert_int_equal(clst_envelope_provider_recipient_new(k, &p, &err), CLST_E_INVAL);
    EVP_PKEY_free(k);
    assert_null(p);
}

static void
test_pem_files(void **state)
{
    (void)state;
    struct clst_envelope_provider *enc = NULL, *dec = NULL, *p = NULL;
    struct clst_err err;
    struct clst_buf pem_priv, pem_pub;
    EVP_PKEY *k = NULL;
    uint8_t key[32], back[32];
    uint8_t hdr[CLST_ENVELOPE_HEADER_MAX_SIZE];
    size_t hsize = 0;
    struct clst_envelope_header h;

    assert_int_equal(clst_ec_generate(CLST_CURVE_P256, &k), CLST_OK);
    clst_buf_init_secret(&pem_priv, 1u << 16);
    clst_buf_init(&pem_pub, 1u << 16);
    assert_int_equal(clst_pkey_to_pem(k, true, &pem_priv), CLST_OK);
    assert_int_equal(clst_pkey_to_pem(k, false, &pem_pub), CLST_OK);
    char priv_path[256], pub_path[256];
    snprintf(priv_path, sizeof(priv_path), "%s", write_file("id.pem", pem_priv.data, pem_priv.size, 0600));
    snprintf(pub_path, sizeof(pub_path), "%s", write_file("id.pub.pem", pem_pub.data, pem_pub.size, 0644));

    assert_int_equal(clst_envelope_provider_from_recipient_file(pub_path, &enc, &err), CLST_OK);
    assert_int_equal(clst_envelope_provider_from_key_file(priv_path, &dec, &err), CLST_OK);
    assert_int_equal(clst_env_make_header(enc, NULL, 0, hdr, sizeof(hdr), &hsize, key, &err),
                     CLST_OK);
    assert_int_equal(clst_envelope_header_parse(hdr, hsize, &h, &err), CLST_OK);
    assert_int_equal(clst_env_unwrap(&dec, 1, &h, back, &err), CLST_OK);
    assert_memory_equal(back, key, 32);

    /* A private key given as --recipient: only its public half is kept. */
    assert_int_equal(clst_envelope_provider_from_recipient_file(priv_path, &p, &err), CLST_OK);
    assert_int_equal(clst_env_unwrap(&p, 1, &h, back, &err), CLST_E_INVAL);
    clst_envelope_provider_free(p);
    p = NULL;
    /* A public key given as --key-file: refused with the reason. */
    chmod(pub_path, 0600);
    assert_int_equal(clst_envelope_provider_from_key_file(pub_path, &p, &err), CLST_E_INVAL);
    assert_non_null(strstr(err.msg, "public key"));
    /* A private PEM readable by others: refused. */
    chmod(priv_path, 0644);
    assert_int_equal(clst_envelope_provider_from_key_file(priv_path, &p, &err), CLST_E_DENIED);
    /* Not PEM at all. */
    const char *junk = write_file("junk.pem", "-----BEGIN NOTHING-----\n", 24, 0600);
    assert_int_equal(clst_envelope_provider_from_recipient_file(junk, &p, &err), CLST_E_MALFORMED);
    assert_int_equal(clst_envelope_provider_from_key_file(junk, &p, &err), CLST_E_MALFORMED);
    assert_null(p);

    clst_envelope_provider_free(enc);
    clst_envelope_provider_free(dec);
    clst_buf_cleanup(&pem_priv);
    clst_buf_cleanup(&pem_pub);
    EVP_PKEY_free(k);
}

/* ---- external providers -------------------------------------------------------------------- */

/* A vault stand-in: A256KW under its own key, reference = URL + name + version. */
struct fake_vault {
    uint8_t kek[32];
    const char *version;
    int wraps, unwraps, frees;
    enum clst_status force; /* CLST_OK, or what unwrap should return */
};

static enum clst_status
fv_wrap(void *ctx, const uint8_t key[32], struct clst_envelope_keyref *ref,
        struct clst_envelope_wrapped *w, struct clst_err *err)
{
    struct fake_vault *v = ctx;
    size_t n = 0;
    (void)err;
    v->wraps++;
    ref->kind = CLST_ENVELOPE_REF_VAULT;
    strcpy(ref->vault_url, "https://127.0.0.1:8443");
    strcpy(ref->key_name, "kek");
    strcpy(ref->key_version, v->version);
    strcpy(w->alg, "A256KW");
    assert_int_equal(clst_aes_kw_wrap(v->kek, 32, key, 32, w->data, sizeof(w->data), &n), CLST_OK);
    w->size = n;
    return CLST_OK;
}

static enum clst_status
fv_unwrap(void *ctx, const struct clst_envelope_keyref *ref, const struct clst_envelope_wrapped *w,
          uint8_t out[32], struct clst_err *err)
{
    struct fake_vault *v = ctx;
    size_t n = 0;
    v->unwraps++;
    if (v->force != CLST_OK) {
        return clst_err_set(err, v->force, "vault unavailable");
    }
    if (ref->kind != CLST_ENVELOPE_REF_VAULT || strcmp(ref->key_version, v->version) != 0) {
        return clst_err_set(err, CLST_E_NOTFOUND, "not this vault key");
    }
    if (clst_aes_kw_unwrap(v->kek, 32, w->data, w->size, out, 32, &n) != CLST_OK || n != 32) {
        return clst_err_set(err, CLST_E_VERIFY, "unwrap failed");
    }
    return CLST_OK;
}

static void
fv_free(void *ctx)
{
    struct fake_vault *v = ctx;
    v->frees++;
}

static const struct clst_envelope_provider_ops FV_OPS = {"fake vault", fv_wrap, fv_unwrap, fv_free};

static void
test_external_provider(void **state)
{
    (void)state;
    struct fake_vault v1 = {{0}, "v1", 0, 0, 0, CLST_OK};
    struct fake_vault v2 = {{0}, "v2", 0, 0, 0, CLST_OK};
    struct clst_envelope_provider *p1 = NULL, *p2 = NULL, *local = NULL;
    struct clst_envelope_header h;
    struct clst_err err;
    uint8_t key[32], back[32];
    uint8_t hdr[CLST_ENVELOPE_HEADER_MAX_SIZE];
    size_t hsize = 0;

    memset(v1.kek, 0x33, 32);
    memset(v2.kek, 0x44, 32);
    assert_int_equal(clst_envelope_provider_new(NULL, &v1, &p1), CLST_E_INVAL);
    assert_int_equal(clst_envelope_provider_new(&FV_OPS, &v1, &p1), CLST_OK);
    assert_int_equal(clst_envelope_provider_new(&FV_OPS, &v2, &p2), CLST_OK);
    assert_int_equal(clst_envelope_provider_local_new(KEY, &local), CLST_OK);
    assert_string_equal(clst_envelope_provider_name(p1), "fake vault");

    assert_int_equal(clst_env_make_header(p1, NULL, 0, hdr, sizeof(hdr), &hsize, key, &err),
                     CLST_OK);
    assert_int_equal(v1.wraps, 1);
    assert_int_equal(clst_envelope_header_parse(hdr, hsize, &h, &err), CLST_OK);
    assert_int_equal(h.ref.kind, CLST_ENVELOPE_REF_VAULT);
    assert_string_equal(h.ref.key_version, "v1");

    /* The local key and the other version pass; v1 answers. */
    struct clst_envelope_provider *list[] = {local, p2, p1};
    assert_int_equal(clst_env_unwrap(list, 3, &h, back, &err), CLST_OK);
    assert_memory_equal(back, key, 32);
    assert_int_equal(v2.unwraps, 1);
    assert_int_equal(v1.unwraps, 1);
    /* A local key asked about a vault file names the vault key. */
    assert_int_equal(clst_env_unwrap(&local, 1, &h, back, &err), CLST_E_NOTFOUND);
    assert_non_null(strstr(err.msg, "vault key 'kek' version 'v1'"));
    /* A provider error other than "not mine" stops the search. */
    v2.force = CLST_E_IO;
    assert_int_equal(clst_env_unwrap(list, 3, &h, back, &err), CLST_E_IO);
    assert_string_equal(err.msg, "vault unavailable");
    assert_int_equal(v1.unwraps, 1);

    /* Decrypt-only and encrypt-only providers. */
    static const struct clst_envelope_provider_ops DEC_ONLY = {"dec only", NULL, fv_unwrap, NULL};
    struct clst_envelope_provider *d = NULL;
    assert_int_equal(clst_envelope_provider_new(&DEC_ONLY, &v1, &d), CLST_OK);
    assert_int_equal(clst_env_make_header(d, NULL, 0, hdr, sizeof(hdr), &hsize, key, &err),
                     CLST_E_INVAL);
    assert_int_equal(clst_env_unwrap(&d, 1, &h, back, &err), CLST_OK);
    clst_envelope_provider_free(d);

    clst_envelope_provider_free(p1);
    clst_envelope_provider_free(p2);
    clst_envelope_provider_free(local);
    assert_int_equal(v1.frees, 1);
    assert_int_equal(v2.frees, 1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_file_format),
        cmocka_unit_test(test_key_file_loading),
        cmocka_unit_test(test_local_provider),
        cmocka_unit_test(test_rsa_recipient),
        cmocka_unit_test(test_p256_recipient),
        cmocka_unit_test(test_unsupported_keys),
        cmocka_unit_test(test_pem_files),
        cmocka_unit_test(test_external_provider),
    };
    return cmocka_run_group_tests_name("envelope/provider", tests, setup, teardown);
}
