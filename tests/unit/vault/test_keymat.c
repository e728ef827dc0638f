/* Unit tests for src/vault/keymat.c: key types and specs, generation, private serialization, the
 * public JWK, key_ops, algorithm/key compatibility, every operation by its cloud name with
 * wrong-length inputs, independent checks with plain OpenSSL EVP (OAEP/PKCS#1 decryption, GCM,
 * RFC 3394 known answer, signature verification over the message), the backup blob (round trip,
 * another vault, tampering, garbage) and the vault's backup key in a real store.
 *
 * Keys are generated once per run (RSA-2048 and RSA-3072 only: the algorithms do not depend on
 * the size, and RSA-4096 generation would dominate the run time; the integration and SDK tests
 * create 4096-bit keys through the server).
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include <cloister/crypto.h>

#include "test_util.h"
#include "vault/keymat.h"
#include "vault_test_util.h"

struct keys {
    struct clst_vault_keymat *rsa;  /* 2048 */
    struct clst_vault_keymat *rsa3; /* 3072 */
    struct clst_vault_keymat *ec[3];
    struct clst_vault_keymat *oct[3]; /* 128, 192, 256 */
};

static struct keys K;

static struct clst_vault_keymat *
gen(enum clst_vault_keymat_type type, int bits, enum clst_curve curve)
{
    struct clst_vault_keymat_spec spec = {.type = type, .bits = bits, .curve = curve};
    struct clst_vault_keymat *km = NULL;
    struct clst_err err;
    if (clst_vault_keymat_generate(&spec, &km, &err) != CLST_OK) {
        fail_msg("generate: %s", err.msg);
    }
    return km;
}

static int
setup(void **state)
{
    (void)state;
    K.rsa = gen(CLST_KEYMAT_RSA, 2048, 0);
    K.rsa3 = gen(CLST_KEYMAT_RSA, 3072, 0);
    K.ec[0] = gen(CLST_KEYMAT_EC, 0, CLST_CURVE_P256);
    K.ec[1] = gen(CLST_KEYMAT_EC, 0, CLST_CURVE_P384);
    K.ec[2] = gen(CLST_KEYMAT_EC, 0, CLST_CURVE_P521);
    K.oct[0] = gen(CLST_KEYMAT_OCT, 128, 0);
    K.oct[1] = gen(CLST_KEYMAT_OCT, 192, 0);
    K.oct[2] = gen(CLST_KEYMAT_OCT, 256, 0);
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    clst_vault_keymat_free(K.rsa);
    clst_vault_keymat_free(K.rsa3);
    for (int i = 0; i < 3; i++) {
        clst_vault_keymat_free(K.ec[i]);
        clst_vault_keymat_free(K.oct[i]);
    }
    return 0;
}

/* True when needle occurs in hay. */
static bool
contains(const uint8_t *hay, size_t n, const uint8_t *needle, size_t m)
{
    for (size_t i = 0; m <= n && i <= n - m; i++) {
        if (memcmp(hay + i, needle, m) == 0) {
            return true;
        }
    }
    return false;
}

/* ---- types and specs ------------------------------------------------------------------------ */

static void
test_kty(void **state)
{
    enum clst_vault_keymat_type t;
    struct clst_err err;
    (void)state;
    assert_int_equal(clst_vault_keymat_kty_parse("RSA", &t, &err), CLST_OK);
    assert_int_equal(t, CLST_KEYMAT_RSA);
    assert_int_equal(clst_vault_keymat_kty_parse("EC", &t, &err), CLST_OK);
    assert_int_equal(t, CLST_KEYMAT_EC);
    assert_int_equal(clst_vault_keymat_kty_parse("oct", &t, &err), CLST_OK);
    assert_int_equal(t, CLST_KEYMAT_OCT);
    const char *bad[] = {"rsa", "Oct", "RSA-HSM", "EC-HSM", "oct-HSM", "bogus", "", "RSA "};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(clst_vault_keymat_kty_parse(bad[i], &t, &err), CLST_E_INVAL);
        assert_true(err.msg[0] != '\0');
    }
    assert_non_null(strstr((clst_vault_keymat_kty_parse("RSA-HSM", &t, &err), err.msg), "HSM"));
    assert_string_equal(clst_vault_keymat_kty_name(CLST_KEYMAT_OCT), "oct");
    assert_null(clst_vault_keymat_kty_name(CLST_KEYMAT_NONE));
}

static void
test_spec(void **state)
{
    struct clst_vault_keymat_spec s;
    struct clst_err err;
    (void)state;
    /* defaults */
    assert_int_equal(
        clst_vault_keymat_spec_make(CLST_KEYMAT_RSA, false, 0, NULL, false, 0, &s, &err), CLST_OK);
    assert_int_equal(s.bits, 2048);
    assert_int_equal(
        clst_vault_keymat_spec_make(CLST_KEYMAT_EC, false, 0, NULL, false, 0, &s, &err), CLST_OK);
    assert_int_equal(s.curve, CLST_CURVE_P256);
    assert_int_equal(
        clst_vault_keymat_spec_make(CLST_KEYMAT_OCT, false, 0, NULL, false, 0, &s, &err), CLST_OK);
    assert_int_equal(s.bits, 256);
    /* accepted */
    assert_int_equal(
        clst_vault_keymat_spec_make(CLST_KEYMAT_RSA, true, 4096, NULL, true, 65537, &s, &err),
        CLST_OK);
    assert_int_equal(s.bits, 4096);
    assert_int_equal(
        clst_vault_keymat_spec_make(CLST_KEYMAT_EC, false, 0, "P-521", false, 0, &s, &err),
        CLST_OK);
    assert_int_equal(s.curve, CLST_CURVE_P521);
    assert_int_equal(s.bits, 521);
    assert_int_equal(
        clst_vault_keymat_spec_make(CLST_KEYMAT_EC, true, 384, "P-384", false, 0, &s, &err),
        CLST_OK);
    assert_int_equal(
        clst_vault_keymat_spec_make(CLST_KEYMAT_OCT, true, 192, NULL, false, 0, &s, &err), CLST_OK);
    assert_int_equal(s.bits, 192);
    /* refused */
    struct {
        enum clst_vault_keymat_type t;
        bool has_size;
        int64_t size;
        const char *crv;
        bool has_exp;
        int64_t exp;
    } bad[] = {
        {CLST_KEYMAT_RSA, true, 1024, NULL, false, 0},
        {CLST_KEYMAT_RSA, true, 2047, NULL, false, 0},
        {CLST_KEYMAT_RSA, true, 8192, NULL, false, 0},
        {CLST_KEYMAT_RSA, true, 0, NULL, false, 0},
        {CLST_KEYMAT_RSA, true, -2048, NULL, false, 0},
        {CLST_KEYMAT_RSA, false, 0, NULL, true, 3},
        {CLST_KEYMAT_RSA, false, 0, "P-256", false, 0},
        {CLST_KEYMAT_EC, false, 0, "P-192", false, 0},
        {CLST_KEYMAT_EC, false, 0, "P-256K", false, 0},
        {CLST_KEYMAT_EC, false, 0, "p-256", false, 0},
        {CLST_KEYMAT_EC, true, 384, "P-256", false, 0},
        {CLST_KEYMAT_EC, false, 0, NULL, true, 65537},
        {CLST_KEYMAT_OCT, true, 64, NULL, false, 0},
        {CLST_KEYMAT_OCT, true, 512, NULL, false, 0},
        {CLST_KEYMAT_OCT, false, 0, "P-256", false, 0},
        {CLST_KEYMAT_NONE, false, 0, NULL, false, 0},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err.msg[0] = '\0';
        assert_int_equal(clst_vault_keymat_spec_make(bad[i].t, bad[i].has_size, bad[i].size,
                                                     bad[i].crv, bad[i].has_exp, bad[i].exp, &s,
                                                     &err),
                         CLST_E_INVAL);
        assert_true(err.msg[0] != '\0');
    }
}

/* ---- generation, serialization, public part ------------------------------------------------- */

static void
roundtrip_private(const struct clst_vault_keymat *km)
{
    struct clst_buf priv, pub1, pub2;
    struct clst_vault_keymat *back = NULL;
    struct clst_err err;

    clst_buf_init_secret(&priv, CLST_VAULT_VALUE_MAX);
    clst_buf_init(&pub1, CLST_VAULT_PUBLIC_MAX);
    clst_buf_init(&pub2, CLST_VAULT_PUBLIC_MAX);
    assert_int_equal(clst_vault_keymat_export_private(km, &priv), CLST_OK);
    assert_int_equal(clst_vault_keymat_import_private(clst_vault_keymat_type(km), priv.data,
                                                      priv.size, &back, &err),
                     CLST_OK);
    assert_int_equal(clst_vault_keymat_bits(back), clst_vault_keymat_bits(km));
    assert_int_equal(clst_vault_keymat_public_text(km, &pub1), CLST_OK);
    assert_int_equal(clst_vault_keymat_public_text(back, &pub2), CLST_OK);
    assert_int_equal(pub1.size, pub2.size);
    assert_memory_equal(pub1.data, pub2.data, pub1.size);
    assert_true(clst_vault_keymat_matches_public(back, pub1.data, pub1.size));
    /* The stored public text of another key does not match. */
    struct clst_buf other;
    clst_buf_init(&other, CLST_VAULT_PUBLIC_MAX);
    const struct clst_vault_keymat *o = km == K.rsa ? K.rsa3 : K.rsa;
    assert_int_equal(clst_vault_keymat_public_text(o, &other), CLST_OK);
    assert_false(clst_vault_keymat_matches_public(back, other.data, other.size));
    assert_false(clst_vault_keymat_matches_public(back, (const uint8_t *)"{", 1));
    /* A match is remembered by the digest of the public text (RSA, EC): asked again it is still a
     * match, and a remembered match does not make other texts match. */
    assert_true(clst_vault_keymat_matches_public(back, pub1.data, pub1.size));
    assert_false(clst_vault_keymat_matches_public(back, other.data, other.size));
    assert_true(clst_vault_keymat_matches_public(back, pub1.data, pub1.size));
    /* spec from the stored public text = spec of the key */
    struct clst_vault_keymat_spec a, b;
    clst_vault_keymat_spec_of(km, &a);
    assert_int_equal(clst_vault_keymat_spec_from_public(pub1.data, pub1.size, &b, &err), CLST_OK);
    assert_int_equal(a.type, b.type);
    assert_int_equal(a.bits, b.bits);
    if (a.type == CLST_KEYMAT_EC) {
        assert_int_equal(a.curve, b.curve);
    }
    /* Material of another type, or of a length that cannot be, is an integrity failure. */
    struct clst_vault_keymat *x = NULL;
    enum clst_vault_keymat_type wrong =
        clst_vault_keymat_type(km) == CLST_KEYMAT_RSA ? CLST_KEYMAT_EC : CLST_KEYMAT_RSA;
    assert_int_equal(clst_vault_keymat_import_private(wrong, priv.data, priv.size, &x, &err),
                     CLST_E_VERIFY);
    assert_null(x);
    assert_int_equal(clst_vault_keymat_import_private(clst_vault_keymat_type(km), priv.data,
                                                      priv.size - 1, &x, &err),
                     CLST_E_VERIFY);
    priv.data[priv.size / 2] ^= 0x40;
    if (clst_vault_keymat_type(km) != CLST_KEYMAT_OCT) {
        /* A flipped byte inside the DER: refused, or (if still parsable) no longer this key. */
        if (clst_vault_keymat_import_private(clst_vault_keymat_type(km), priv.data, priv.size, &x,
                                             &err) == CLST_OK) {
            assert_false(clst_vault_keymat_matches_public(x, pub1.data, pub1.size));
            clst_vault_keymat_free(x);
        }
    }
    clst_vault_keymat_free(back);
    clst_buf_cleanup(&priv);
    clst_buf_cleanup(&pub1);
    clst_buf_cleanup(&pub2);
    clst_buf_cleanup(&other);
}

static void
test_private_roundtrip(void **state)
{
    (void)state;
    roundtrip_private(K.rsa);
    roundtrip_private(K.rsa3);
    for (int i = 0; i < 3; i++) {
        roundtrip_private(K.ec[i]);
        roundtrip_private(K.oct[i]);
    }
    /* oct sizes */
    struct clst_vault_keymat *x = NULL;
    struct clst_err err;
    uint8_t raw[33] = {0};
    for (size_t n = 0; n <= sizeof(raw); n++) {
        enum clst_status want = (n == 16 || n == 24 || n == 32) ? CLST_OK : CLST_E_VERIFY;
        assert_int_equal(clst_vault_keymat_import_private(CLST_KEYMAT_OCT, raw, n, &x, &err), want);
        clst_vault_keymat_free(x);
        x = NULL;
    }
    /* export needs a secret buffer */
    struct clst_buf plain;
    clst_buf_init(&plain, 4096);
    assert_int_equal(clst_vault_keymat_export_private(K.oct[0], &plain), CLST_E_INVAL);
    clst_buf_cleanup(&plain);
}

static size_t
b64_len(const json_t *obj, const char *member)
{
    const char *s = json_string_value(json_object_get(obj, member));
    struct clst_buf b;
    size_t n;
    assert_non_null(s);
    clst_buf_init(&b, 4096);
    assert_int_equal(clst_b64url_decode(s, strlen(s), &b), CLST_OK);
    n = b.size;
    clst_buf_cleanup(&b);
    return n;
}

static void
test_public_json(void **state)
{
    json_t *j = NULL;
    (void)state;
    assert_int_equal(clst_vault_keymat_public_json(K.rsa, &j), CLST_OK);
    assert_string_equal(json_string_value(json_object_get(j, "kty")), "RSA");
    assert_int_equal(b64_len(j, "n"), 256);
    assert_string_equal(json_string_value(json_object_get(j, "e")), "AQAB");
    for (const char *const *m = (const char *const[]){"d", "p", "q", "dp", "dq", "qi", "k", NULL};
         *m != NULL; m++) {
        assert_null(json_object_get(j, *m));
    }
    json_decref(j);
    const size_t coord[3] = {32, 48, 66};
    const char *crv[3] = {"P-256", "P-384", "P-521"};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(clst_vault_keymat_public_json(K.ec[i], &j), CLST_OK);
        assert_string_equal(json_string_value(json_object_get(j, "crv")), crv[i]);
        assert_int_equal(b64_len(j, "x"), coord[i]);
        assert_int_equal(b64_len(j, "y"), coord[i]);
        assert_null(json_object_get(j, "d"));
        json_decref(j);
        assert_int_equal(clst_vault_keymat_public_json(K.oct[i], &j), CLST_OK);
        assert_string_equal(json_string_value(json_object_get(j, "kty")), "oct");
        assert_null(json_object_get(j, "k"));
        assert_int_equal(json_integer_value(json_object_get(j, "key_size")), 128 + 64 * i);
        json_decref(j);
    }
}

static void
test_jwk_response(void **state)
{
    json_t *j = NULL;
    struct clst_err err;
    const char *kid = "https://127.0.0.1:8443/keys/k/0123456789abcdef0123456789abcdef";
    struct clst_buf pub;
    (void)state;

    clst_buf_init(&pub, CLST_VAULT_PUBLIC_MAX);
    assert_int_equal(clst_vault_keymat_public_text(K.ec[1], &pub), CLST_OK);
    assert_int_equal(clst_vault_keymat_jwk_response(kid, "EC", CLST_KEYOP_SIGN | CLST_KEYOP_VERIFY,
                                                    pub.data, pub.size, &j, &err),
                     CLST_OK);
    assert_string_equal(json_string_value(json_object_get(j, "kid")), kid);
    assert_string_equal(json_string_value(json_object_get(j, "kty")), "EC");
    assert_string_equal(json_string_value(json_object_get(j, "crv")), "P-384");
    json_t *ops = json_object_get(j, "key_ops");
    assert_int_equal(json_array_size(ops), 2);
    assert_string_equal(json_string_value(json_array_get(ops, 0)), "sign");
    assert_string_equal(json_string_value(json_array_get(ops, 1)), "verify");
    assert_int_equal(json_object_size(j), 6); /* kid kty key_ops crv x y */
    json_decref(j);
    /* Private or unknown members in the stored text are never copied out. */
    const char *evil = "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AA\",\"y\":\"AA\",\"d\":\"AA\","
                       "\"k\":\"AA\",\"key_size\":256}";
    assert_int_equal(
        clst_vault_keymat_jwk_response(kid, "EC", 0, (const uint8_t *)evil, strlen(evil), &j, &err),
        CLST_OK);
    assert_null(json_object_get(j, "d"));
    assert_null(json_object_get(j, "k"));
    assert_null(json_object_get(j, "key_size"));
    assert_int_equal(json_array_size(json_object_get(j, "key_ops")), 0);
    json_decref(j);
    /* Unparsable or wrongly typed stored text: integrity failure. */
    const char *bad[] = {"", "[]", "{", "{\"kty\":\"EC\",\"x\":1}", "{\"a\":1,\"a\":2}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(clst_vault_keymat_jwk_response(kid, "EC", 0, (const uint8_t *)bad[i],
                                                        strlen(bad[i]), &j, &err),
                         CLST_E_VERIFY);
    }
    struct clst_vault_keymat_spec s;
    const char *badspec[] = {"{\"kty\":\"RSA\",\"n\":\"AQAB\"}",
                             "{\"kty\":\"oct\",\"key_size\":64}",
                             "{\"kty\":\"EC\",\"crv\":\"P-192\"}", "{\"kty\":\"XX\"}", "{}"};
    for (size_t i = 0; i < sizeof(badspec) / sizeof(badspec[0]); i++) {
        assert_int_equal(clst_vault_keymat_spec_from_public((const uint8_t *)badspec[i],
                                                            strlen(badspec[i]), &s, &err),
                         CLST_E_VERIFY);
    }
    clst_buf_cleanup(&pub);
}

static void
test_from_jwk(void **state)
{
    json_t *jwk = NULL;
    struct clst_vault_keymat *km = NULL;
    struct clst_err err;
    (void)state;

    /* RSA and EC with private members */
    assert_int_equal(clst_pkey_to_jwk(clst_vault_keymat_pkey(K.rsa), true, &jwk), CLST_OK);
    assert_int_equal(clst_vault_keymat_from_jwk(jwk, &km, &err), CLST_OK);
    assert_int_equal(clst_vault_keymat_type(km), CLST_KEYMAT_RSA);
    assert_true(clst_pkey_public_equal(clst_vault_keymat_pkey(km), clst_vault_keymat_pkey(K.rsa)));
    clst_vault_keymat_free(km);
    km = NULL;
    /* kty says EC but the members are RSA */
    json_object_set_new(jwk, "kty", json_string("EC"));
    assert_int_not_equal(clst_vault_keymat_from_jwk(jwk, &km, &err), CLST_OK);
    json_object_set_new(jwk, "kty", json_string("RSA-HSM"));
    assert_int_equal(clst_vault_keymat_from_jwk(jwk, &km, &err), CLST_E_INVAL);
    json_decref(jwk);
    /* public only */
    assert_int_equal(clst_pkey_to_jwk(clst_vault_keymat_pkey(K.ec[0]), false, &jwk), CLST_OK);
    assert_int_equal(clst_vault_keymat_from_jwk(jwk, &km, &err), CLST_E_INVAL);
    assert_non_null(strstr(err.msg, "private"));
    json_decref(jwk);
    assert_int_equal(clst_pkey_to_jwk(clst_vault_keymat_pkey(K.ec[2]), true, &jwk), CLST_OK);
    assert_int_equal(clst_vault_keymat_from_jwk(jwk, &km, &err), CLST_OK);
    assert_int_equal(clst_vault_keymat_bits(km), 521);
    clst_vault_keymat_free(km);
    km = NULL;
    /* a corrupted coordinate */
    json_object_set_new(jwk, "x", json_string("AAAA"));
    assert_int_equal(clst_vault_keymat_from_jwk(jwk, &km, &err), CLST_E_INVAL);
    json_decref(jwk);
    /* oct */
    struct {
        const char *k;
        enum clst_status want;
    } oct[] = {
        {"AAECAwQFBgcICQoLDA0ODw", CLST_OK},                      /* 16 */
        {"AAECAwQFBgcICQoLDA0ODxAREhMUFRYX", CLST_OK},            /* 24 */
        {"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8", CLST_OK}, /* 32 */
        {"AAECAwQFBgcICQoLDA0ODxAREhM", CLST_E_INVAL},            /* 20 */
        {"AAECAwQFBgcICQoLDA0ODw==", CLST_E_INVAL},               /* padded */
        {"AAECAwQFBgcICQoLDA0OD+", CLST_E_INVAL},                 /* bad alphabet */
        {"", CLST_E_INVAL},
    };
    for (size_t i = 0; i < sizeof(oct) / sizeof(oct[0]); i++) {
        jwk = json_pack("{s:s, s:s}", "kty", "oct", "k", oct[i].k);
        assert_int_equal(clst_vault_keymat_from_jwk(jwk, &km, &err), oct[i].want);
        clst_vault_keymat_free(km);
        km = NULL;
        json_decref(jwk);
    }
    jwk = json_pack("{s:s, s:i}", "kty", "oct", "k", 5);
    assert_int_equal(clst_vault_keymat_from_jwk(jwk, &km, &err), CLST_E_INVAL);
    json_decref(jwk);
    jwk = json_pack("{s:i}", "kty", 1);
    assert_int_equal(clst_vault_keymat_from_jwk(jwk, &km, &err), CLST_E_INVAL);
    json_decref(jwk);
    assert_int_equal(clst_vault_keymat_from_jwk(NULL, &km, &err), CLST_E_INVAL);
}

/* ---- key_ops -------------------------------------------------------------------------------- */

static enum clst_status
ops_text(const char *text, enum clst_vault_keymat_type type, unsigned *out)
{
    json_t *arr = json_loads(text, 0, NULL);
    struct clst_err err;
    enum clst_status st = clst_vault_keymat_ops_from_json(arr, type, out, &err);
    json_decref(arr);
    return st;
}

static void
test_key_ops(void **state)
{
    unsigned ops = 0;
    struct clst_err err;
    (void)state;
    assert_int_equal(ops_text("[\"sign\",\"verify\"]", CLST_KEYMAT_EC, &ops), CLST_OK);
    assert_int_equal(ops, CLST_KEYOP_SIGN | CLST_KEYOP_VERIFY);
    assert_int_equal(ops_text("[]", CLST_KEYMAT_RSA, &ops), CLST_OK);
    assert_int_equal(ops, 0);
    assert_int_equal(ops_text("[\"encrypt\",\"decrypt\",\"sign\",\"verify\",\"wrapKey\","
                              "\"unwrapKey\",\"import\",\"export\"]",
                              CLST_KEYMAT_RSA, &ops),
                     CLST_OK);
    assert_int_equal(ops, CLST_KEYOP_ALL);
    const char *bad[] = {"[\"encrypt\",\"encrypt\"]",
                         "[\"Encrypt\"]",
                         "[\"wrapkey\"]",
                         "[1]",
                         "[null]",
                         "{}",
                         "\"sign\"",
                         "[\"sign\",\"x\"]"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(ops_text(bad[i], CLST_KEYMAT_RSA, &ops), CLST_E_INVAL);
    }
    /* operations a type cannot do */
    assert_int_equal(ops_text("[\"encrypt\"]", CLST_KEYMAT_EC, &ops), CLST_E_INVAL);
    assert_int_equal(ops_text("[\"sign\"]", CLST_KEYMAT_OCT, &ops), CLST_E_INVAL);
    assert_int_equal(ops_text("[\"sign\"]", CLST_KEYMAT_NONE, &ops), CLST_OK);
    /* defaults */
    assert_int_equal(clst_vault_keymat_ops_default(CLST_KEYMAT_RSA),
                     CLST_KEYOP_ENCRYPT | CLST_KEYOP_DECRYPT | CLST_KEYOP_SIGN | CLST_KEYOP_VERIFY |
                         CLST_KEYOP_WRAP | CLST_KEYOP_UNWRAP);
    assert_int_equal(clst_vault_keymat_ops_default(CLST_KEYMAT_EC),
                     CLST_KEYOP_SIGN | CLST_KEYOP_VERIFY);
    assert_int_equal(clst_vault_keymat_ops_default(CLST_KEYMAT_OCT),
                     CLST_KEYOP_ENCRYPT | CLST_KEYOP_DECRYPT | CLST_KEYOP_WRAP | CLST_KEYOP_UNWRAP);
    /* text round trip, canonical order */
    struct clst_buf b;
    clst_buf_init(&b, 512);
    assert_int_equal(clst_vault_keymat_ops_to_text(CLST_KEYOP_UNWRAP | CLST_KEYOP_ENCRYPT, &b),
                     CLST_OK);
    assert_int_equal(clst_buf_terminate(&b), CLST_OK);
    assert_string_equal((char *)b.data, "[\"encrypt\",\"unwrapKey\"]");
    assert_int_equal(clst_vault_keymat_ops_from_text((char *)b.data, 0, &ops, &err), CLST_OK);
    assert_int_equal(ops, CLST_KEYOP_UNWRAP | CLST_KEYOP_ENCRYPT);
    clst_buf_cleanup(&b);
    assert_int_equal(clst_vault_keymat_ops_from_text(NULL, CLST_KEYOP_SIGN, &ops, &err), CLST_OK);
    assert_int_equal(ops, CLST_KEYOP_SIGN);
    assert_int_equal(clst_vault_keymat_ops_from_text("[\"nope\"]", 0, &ops, &err), CLST_E_VERIFY);
    assert_int_equal(clst_vault_keymat_ops_from_text("not json", 0, &ops, &err), CLST_E_VERIFY);
    /* the check */
    assert_int_equal(clst_vault_keymat_ops_check(CLST_KEYOP_SIGN, CLST_KEYOP_SIGN, &err), CLST_OK);
    assert_int_equal(clst_vault_keymat_ops_check(CLST_KEYOP_VERIFY, CLST_KEYOP_SIGN, &err),
                     CLST_E_DENIED);
    assert_non_null(strstr(err.msg, "'sign'"));
    assert_int_equal(clst_vault_keymat_ops_check(0, CLST_KEYOP_UNWRAP, &err), CLST_E_DENIED);
    assert_non_null(strstr(err.msg, "unwrapKey"));
    assert_int_equal(clst_vault_keyop_parse("wrapKey"), CLST_KEYOP_WRAP);
    assert_int_equal(clst_vault_keyop_parse("wrap"), 0);
}

/* ---- algorithms ----------------------------------------------------------------------------- */

static void
test_alg_names(void **state)
{
    enum clst_vault_alg a;
    (void)state;
    const char *names[] = {"RSA-OAEP", "RSA-OAEP-256", "RSA1_5", "A128GCM", "A192GCM", "A256GCM",
                           "A128KW",   "A192KW",       "A256KW", "RS256",   "RS384",   "RS512",
                           "PS256",    "PS384",        "PS512",  "ES256",   "ES384",   "ES512"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        assert_int_equal(clst_vault_alg_parse(names[i], &a), CLST_OK);
        assert_string_equal(clst_vault_alg_name(a), names[i]);
    }
    const char *bad[] = {"rsa-oaep", "RSA-OAEP-384", "A128CBC", "A256CBCPAD", "HS256",
                         "ES256K",   "RSNULL",       "none",    "",           "RS256 "};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(clst_vault_alg_parse(bad[i], &a), CLST_E_NOTFOUND);
    }
    assert_int_equal(clst_vault_alg_hash(CLST_ALG_PS384), CLST_HASH_SHA384);
    assert_int_equal(clst_vault_alg_hash(CLST_ALG_ES512), CLST_HASH_SHA512);
    assert_int_equal(clst_vault_alg_hash(CLST_ALG_A128GCM), 0);
}

static void
test_alg_check(void **state)
{
    struct clst_err err;
    (void)state;
    struct {
        const struct clst_vault_keymat *km;
        enum clst_vault_keyop op;
        enum clst_vault_alg alg;
        enum clst_status want;
    } cases[] = {
        {K.rsa, CLST_KEYOP_ENCRYPT, CLST_ALG_RSA_OAEP, CLST_OK},
        {K.rsa, CLST_KEYOP_DECRYPT, CLST_ALG_RSA_OAEP_256, CLST_OK},
        {K.rsa, CLST_KEYOP_WRAP, CLST_ALG_RSA1_5, CLST_OK},
        {K.rsa, CLST_KEYOP_UNWRAP, CLST_ALG_RSA_OAEP_256, CLST_OK},
        {K.rsa, CLST_KEYOP_SIGN, CLST_ALG_PS512, CLST_OK},
        {K.rsa, CLST_KEYOP_VERIFY, CLST_ALG_RS384, CLST_OK},
        {K.rsa, CLST_KEYOP_ENCRYPT, CLST_ALG_A128GCM, CLST_E_INVAL},
        {K.rsa, CLST_KEYOP_SIGN, CLST_ALG_ES256, CLST_E_INVAL},
        {K.rsa, CLST_KEYOP_SIGN, CLST_ALG_RSA_OAEP, CLST_E_INVAL},
        {K.rsa, CLST_KEYOP_ENCRYPT, CLST_ALG_RS256, CLST_E_INVAL},
        {K.ec[0], CLST_KEYOP_SIGN, CLST_ALG_ES256, CLST_OK},
        {K.ec[0], CLST_KEYOP_SIGN, CLST_ALG_ES384, CLST_E_INVAL},
        {K.ec[1], CLST_KEYOP_VERIFY, CLST_ALG_ES384, CLST_OK},
        {K.ec[2], CLST_KEYOP_SIGN, CLST_ALG_ES512, CLST_OK},
        {K.ec[2], CLST_KEYOP_SIGN, CLST_ALG_RS512, CLST_E_INVAL},
        {K.ec[0], CLST_KEYOP_ENCRYPT, CLST_ALG_RSA_OAEP, CLST_E_INVAL},
        {K.oct[0], CLST_KEYOP_ENCRYPT, CLST_ALG_A128GCM, CLST_OK},
        {K.oct[0], CLST_KEYOP_ENCRYPT, CLST_ALG_A256GCM, CLST_E_INVAL},
        {K.oct[2], CLST_KEYOP_DECRYPT, CLST_ALG_A256GCM, CLST_OK},
        {K.oct[2], CLST_KEYOP_ENCRYPT, CLST_ALG_A128GCM, CLST_E_INVAL},
        {K.oct[1], CLST_KEYOP_WRAP, CLST_ALG_A192KW, CLST_OK},
        {K.oct[1], CLST_KEYOP_WRAP, CLST_ALG_A192GCM, CLST_E_INVAL},
        {K.oct[1], CLST_KEYOP_ENCRYPT, CLST_ALG_A192KW, CLST_E_INVAL},
        {K.oct[2], CLST_KEYOP_UNWRAP, CLST_ALG_A128KW, CLST_E_INVAL},
        {K.oct[2], CLST_KEYOP_ENCRYPT, CLST_ALG_RSA_OAEP_256, CLST_E_INVAL},
        {K.oct[2], CLST_KEYOP_SIGN, CLST_ALG_RS256, CLST_E_INVAL},
        {K.rsa, CLST_KEYOP_IMPORT, CLST_ALG_RS256, CLST_E_INVAL},
        {K.rsa, CLST_KEYOP_SIGN, CLST_ALG_NONE, CLST_E_INVAL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        err.msg[0] = '\0';
        enum clst_status st =
            clst_vault_keymat_alg_check(cases[i].km, cases[i].op, cases[i].alg, &err);
        if (st != cases[i].want) {
            fail_msg("case %zu: got %d (%s), want %d", i, st, err.msg, cases[i].want);
        }
        if (st != CLST_OK) {
            assert_true(err.msg[0] != '\0');
        }
    }
}

/* ---- RSA encryption ------------------------------------------------------------------------- */

static struct clst_vault_crypt_in
in_value(const void *v, size_t n)
{
    struct clst_vault_crypt_in in;
    memset(&in, 0, sizeof(in));
    in.value = v;
    in.value_size = n;
    return in;
}

/* Independent OAEP / PKCS#1 operations with plain EVP. */
static size_t
evp_rsa(EVP_PKEY *key, bool decrypt, int padding, const EVP_MD *md, const uint8_t *in, size_t n,
        uint8_t *out, size_t cap)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
    size_t outlen = cap;
    int ok;
    assert_non_null(ctx);
    assert_int_equal(decrypt ? EVP_PKEY_decrypt_init(ctx) : EVP_PKEY_encrypt_init(ctx), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(ctx, padding), 1);
    if (md != NULL) {
        assert_int_equal(EVP_PKEY_CTX_set_rsa_oaep_md(ctx, md), 1);
        assert_int_equal(EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, md), 1);
    }
    ok = decrypt ? EVP_PKEY_decrypt(ctx, out, &outlen, in, n)
                 : EVP_PKEY_encrypt(ctx, out, &outlen, in, n);
    EVP_PKEY_CTX_free(ctx);
    return ok == 1 ? outlen : 0;
}

static void
rsa_crypt_case(const struct clst_vault_keymat *km, enum clst_vault_keyop fwd,
               enum clst_vault_keyop back, enum clst_vault_alg alg)
{
    struct clst_vault_crypt_out o, d;
    struct clst_err err;
    const char msg[] = "thirty-two bytes of a key, ok!!!";
    uint8_t buf[512];
    size_t n = (size_t)clst_vault_keymat_bits(km) / 8;
    int pad = alg == CLST_ALG_RSA1_5 ? RSA_PKCS1_PADDING : RSA_PKCS1_OAEP_PADDING;
    const EVP_MD *md = alg == CLST_ALG_RSA_OAEP       ? EVP_sha1()
                       : alg == CLST_ALG_RSA_OAEP_256 ? EVP_sha256()
                                                      : NULL;
    struct clst_vault_crypt_in in = in_value(msg, 32);

    clst_vault_crypt_out_init(&o);
    clst_vault_crypt_out_init(&d);
    /* vault encrypts, EVP decrypts */
    assert_int_equal(clst_vault_keymat_crypt(km, fwd, alg, &in, &o, &err), CLST_OK);
    assert_int_equal(o.value.size, n);
    assert_int_equal(o.iv_size, 0);
    assert_int_equal(evp_rsa(clst_vault_keymat_pkey(km), true, pad, md, o.value.data, o.value.size,
                             buf, sizeof(buf)),
                     32);
    assert_memory_equal(buf, msg, 32);
    /* EVP encrypts, vault decrypts */
    size_t m = evp_rsa(clst_vault_keymat_pkey(km), false, pad, md, (const uint8_t *)msg, 32, buf,
                       sizeof(buf));
    assert_int_equal(m, n);
    in = in_value(buf, m);
    assert_int_equal(clst_vault_keymat_crypt(km, back, alg, &in, &d, &err), CLST_OK);
    assert_true(d.value.secret);
    assert_int_equal(d.value.size, 32);
    assert_memory_equal(d.value.data, msg, 32);
    /* tampering: 400-class failure, no output */
    buf[5] ^= 1;
    clst_vault_crypt_out_cleanup(&d);
    clst_vault_crypt_out_init(&d);
    assert_int_equal(clst_vault_keymat_crypt(km, back, alg, &in, &d, &err), CLST_E_VERIFY);
    assert_int_equal(d.value.size, 0);
    buf[5] ^= 1;
    /* wrong lengths */
    in = in_value(buf, m - 1);
    assert_int_equal(clst_vault_keymat_crypt(km, back, alg, &in, &d, &err), CLST_E_INVAL);
    in = in_value(buf, m + 1 <= sizeof(buf) ? m + 1 : m);
    if (m + 1 <= sizeof(buf)) {
        assert_int_equal(clst_vault_keymat_crypt(km, back, alg, &in, &d, &err), CLST_E_INVAL);
    }
    size_t max = alg == CLST_ALG_RSA1_5 ? n - 11 : n - 2 * (md == EVP_sha1() ? 20u : 32u) - 2;
    uint8_t big[512] = {0};
    in = in_value(big, max);
    clst_vault_crypt_out_cleanup(&o);
    clst_vault_crypt_out_init(&o);
    assert_int_equal(clst_vault_keymat_crypt(km, fwd, alg, &in, &o, &err), CLST_OK);
    in = in_value(big, max + 1);
    assert_int_equal(clst_vault_keymat_crypt(km, fwd, alg, &in, &o, &err), CLST_E_INVAL);
    in = in_value(big, 0);
    assert_int_equal(clst_vault_keymat_crypt(km, fwd, alg, &in, &o, &err), CLST_E_INVAL);
    /* RSA takes no iv/aad/tag */
    in = in_value(msg, 8);
    in.has_iv = true;
    in.iv = (const uint8_t *)msg;
    in.iv_size = 12;
    assert_int_equal(clst_vault_keymat_crypt(km, fwd, alg, &in, &o, &err), CLST_E_INVAL);
    clst_vault_crypt_out_cleanup(&o);
    clst_vault_crypt_out_cleanup(&d);
}

static void
test_rsa_encryption(void **state)
{
    (void)state;
    const enum clst_vault_alg algs[] = {CLST_ALG_RSA_OAEP, CLST_ALG_RSA_OAEP_256, CLST_ALG_RSA1_5};
    for (size_t i = 0; i < 3; i++) {
        rsa_crypt_case(K.rsa, CLST_KEYOP_ENCRYPT, CLST_KEYOP_DECRYPT, algs[i]);
        rsa_crypt_case(K.rsa, CLST_KEYOP_WRAP, CLST_KEYOP_UNWRAP, algs[i]);
    }
    rsa_crypt_case(K.rsa3, CLST_KEYOP_ENCRYPT, CLST_KEYOP_DECRYPT, CLST_ALG_RSA_OAEP_256);
    /* OAEP-SHA-1 ciphertext decrypted as OAEP-256 and vice versa */
    struct clst_vault_crypt_out o, d;
    struct clst_err err;
    struct clst_vault_crypt_in in = in_value("abc", 3);
    clst_vault_crypt_out_init(&o);
    clst_vault_crypt_out_init(&d);
    assert_int_equal(
        clst_vault_keymat_crypt(K.rsa, CLST_KEYOP_ENCRYPT, CLST_ALG_RSA_OAEP, &in, &o, &err),
        CLST_OK);
    in = in_value(o.value.data, o.value.size);
    assert_int_equal(
        clst_vault_keymat_crypt(K.rsa, CLST_KEYOP_DECRYPT, CLST_ALG_RSA_OAEP_256, &in, &d, &err),
        CLST_E_VERIFY);
    /* another key's ciphertext */
    assert_int_equal(
        clst_vault_keymat_crypt(K.rsa3, CLST_KEYOP_DECRYPT, CLST_ALG_RSA_OAEP, &in, &d, &err),
        CLST_E_INVAL); /* 256 bytes for a 384-byte modulus */
    clst_vault_crypt_out_cleanup(&o);
    clst_vault_crypt_out_cleanup(&d);
}

/* ---- AES-GCM -------------------------------------------------------------------------------- */

static const EVP_CIPHER *
gcm_cipher(int bits)
{
    return bits == 128 ? EVP_aes_128_gcm() : bits == 192 ? EVP_aes_192_gcm() : EVP_aes_256_gcm();
}

/* Independent GCM decryption with plain EVP; true when the tag verifies. */
static bool
evp_gcm_open(const struct clst_vault_keymat *km, const uint8_t *iv, const uint8_t *aad,
             size_t aad_size, const uint8_t *ct, size_t n, const uint8_t *tag, uint8_t *out)
{
    struct clst_buf raw;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int len = 0, ok;
    clst_buf_init_secret(&raw, 64);
    assert_int_equal(clst_vault_keymat_export_private(km, &raw), CLST_OK);
    assert_int_equal(
        EVP_DecryptInit_ex(c, gcm_cipher(clst_vault_keymat_bits(km)), NULL, raw.data, iv), 1);
    if (aad_size > 0) {
        assert_int_equal(EVP_DecryptUpdate(c, NULL, &len, aad, (int)aad_size), 1);
    }
    assert_int_equal(EVP_DecryptUpdate(c, out, &len, ct, (int)n), 1);
    assert_int_equal(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, (void *)tag), 1);
    ok = EVP_DecryptFinal_ex(c, out + len, &len);
    EVP_CIPHER_CTX_free(c);
    clst_buf_cleanup(&raw);
    return ok == 1;
}

static void
gcm_case(const struct clst_vault_keymat *km, enum clst_vault_alg alg)
{
    struct clst_vault_crypt_out o, o2, d;
    struct clst_err err;
    const char msg[] = "AES-GCM through the vault, 39 bytes...";
    const char aad[] = "header";
    uint8_t buf[64];
    struct clst_vault_crypt_in in = in_value(msg, sizeof(msg) - 1);

    clst_vault_crypt_out_init(&o);
    clst_vault_crypt_out_init(&o2);
    clst_vault_crypt_out_init(&d);
    in.has_aad = true;
    in.aad = (const uint8_t *)aad;
    in.aad_size = sizeof(aad) - 1;
    assert_int_equal(clst_vault_keymat_crypt(km, CLST_KEYOP_ENCRYPT, alg, &in, &o, &err), CLST_OK);
    assert_int_equal(o.value.size, sizeof(msg) - 1);
    assert_int_equal(o.iv_size, 12);
    assert_int_equal(o.tag_size, 16);
    assert_true(evp_gcm_open(km, o.iv, (const uint8_t *)aad, sizeof(aad) - 1, o.value.data,
                             o.value.size, o.tag, buf));
    assert_memory_equal(buf, msg, sizeof(msg) - 1);
    /* a fresh IV every time */
    assert_int_equal(clst_vault_keymat_crypt(km, CLST_KEYOP_ENCRYPT, alg, &in, &o2, &err), CLST_OK);
    assert_memory_not_equal(o.iv, o2.iv, 12);
    /* decrypt */
    struct clst_vault_crypt_in din = in_value(o.value.data, o.value.size);
    din.has_iv = din.has_tag = din.has_aad = true;
    din.iv = o.iv;
    din.iv_size = 12;
    din.tag = o.tag;
    din.tag_size = 16;
    din.aad = (const uint8_t *)aad;
    din.aad_size = sizeof(aad) - 1;
    assert_int_equal(clst_vault_keymat_crypt(km, CLST_KEYOP_DECRYPT, alg, &din, &d, &err), CLST_OK);
    assert_memory_equal(d.value.data, msg, sizeof(msg) - 1);
    assert_true(d.value.secret);
    clst_vault_crypt_out_cleanup(&d);
    clst_vault_crypt_out_init(&d);
    /* missing AAD, flipped AAD / tag / ct / iv: VERIFY */
    struct clst_vault_crypt_in t = din;
    t.has_aad = false;
    assert_int_equal(clst_vault_keymat_crypt(km, CLST_KEYOP_DECRYPT, alg, &t, &d, &err),
                     CLST_E_VERIFY);
    uint8_t copy[64];
    for (int f = 0; f < 4; f++) {
        t = din;
        const uint8_t *src = f == 0 ? t.aad : f == 1 ? t.tag : f == 2 ? t.value : t.iv;
        size_t size = f == 0 ? t.aad_size : f == 1 ? t.tag_size : f == 2 ? t.value_size : t.iv_size;
        memcpy(copy, src, size);
        copy[size - 1] ^= 0x80;
        if (f == 0) {
            t.aad = copy;
        } else if (f == 1) {
            t.tag = copy;
        } else if (f == 2) {
            t.value = copy;
        } else {
            t.iv = copy;
        }
        assert_int_equal(clst_vault_keymat_crypt(km, CLST_KEYOP_DECRYPT, alg, &t, &d, &err),
                         CLST_E_VERIFY);
        assert_int_equal(d.value.size, 0);
    }
    /* wrong-length iv and tag, missing iv/tag: INVAL */
    t = din;
    t.iv_size = 16;
    assert_int_equal(clst_vault_keymat_crypt(km, CLST_KEYOP_DECRYPT, alg, &t, &d, &err),
                     CLST_E_INVAL);
    t = din;
    t.tag_size = 12;
    assert_int_equal(clst_vault_keymat_crypt(km, CLST_KEYOP_DECRYPT, alg, &t, &d, &err),
                     CLST_E_INVAL);
    t = din;
    t.has_tag = false;
    assert_int_equal(clst_vault_keymat_crypt(km, CLST_KEYOP_DECRYPT, alg, &t, &d, &err),
                     CLST_E_INVAL);
    t = din;
    t.has_iv = false;
    assert_int_equal(clst_vault_keymat_crypt(km, CLST_KEYOP_DECRYPT, alg, &t, &d, &err),
                     CLST_E_INVAL);
    /* encrypt refuses a client IV or tag */
    t = in;
    t.has_iv = true;
    t.iv = o.iv;
    t.iv_size = 12;
    assert_int_equal(clst_vault_keymat_crypt(km, CLST_KEYOP_ENCRYPT, alg, &t, &o2, &err),
                     CLST_E_INVAL);
    t = in;
    t.has_tag = true;
    t.tag = o.tag;
    t.tag_size = 16;
    assert_int_equal(clst_vault_keymat_crypt(km, CLST_KEYOP_ENCRYPT, alg, &t, &o2, &err),
                     CLST_E_INVAL);
    /* GCM is not a wrap algorithm */
    assert_int_equal(clst_vault_keymat_crypt(km, CLST_KEYOP_WRAP, alg, &in, &o2, &err),
                     CLST_E_INVAL);
    clst_vault_crypt_out_cleanup(&o);
    clst_vault_crypt_out_cleanup(&o2);
    clst_vault_crypt_out_cleanup(&d);
}

static void
test_gcm(void **state)
{
    (void)state;
    gcm_case(K.oct[0], CLST_ALG_A128GCM);
    gcm_case(K.oct[1], CLST_ALG_A192GCM);
    gcm_case(K.oct[2], CLST_ALG_A256GCM);
    /* without AAD, and the size cap */
    struct clst_vault_crypt_out o;
    struct clst_err err;
    static uint8_t big[CLST_KEYMAT_DATA_MAX + 1];
    struct clst_vault_crypt_in in = in_value(big, CLST_KEYMAT_DATA_MAX);
    clst_vault_crypt_out_init(&o);
    assert_int_equal(
        clst_vault_keymat_crypt(K.oct[0], CLST_KEYOP_ENCRYPT, CLST_ALG_A128GCM, &in, &o, &err),
        CLST_OK);
    uint8_t *pt = malloc(CLST_KEYMAT_DATA_MAX);
    assert_non_null(pt);
    assert_true(evp_gcm_open(K.oct[0], o.iv, NULL, 0, o.value.data, o.value.size, o.tag, pt));
    assert_memory_equal(pt, big, CLST_KEYMAT_DATA_MAX);
    free(pt);
    in = in_value(big, CLST_KEYMAT_DATA_MAX + 1);
    assert_int_equal(
        clst_vault_keymat_crypt(K.oct[0], CLST_KEYOP_ENCRYPT, CLST_ALG_A128GCM, &in, &o, &err),
        CLST_E_INVAL);
    clst_vault_crypt_out_cleanup(&o);
}

/* ---- AES key wrap --------------------------------------------------------------------------- */

static void
test_kw(void **state)
{
    struct clst_vault_crypt_out o, d;
    struct clst_err err;
    struct clst_vault_keymat *kek = NULL;
    (void)state;
    clst_vault_crypt_out_init(&o);
    clst_vault_crypt_out_init(&d);
    /* RFC 3394 section 4.1 known answer: an independent check of the wrap. */
    json_t *jwk = json_pack("{s:s, s:s}", "kty", "oct", "k", "AAECAwQFBgcICQoLDA0ODw");
    assert_int_equal(clst_vault_keymat_from_jwk(jwk, &kek, &err), CLST_OK);
    json_decref(jwk);
    size_t n;
    uint8_t *cek = tu_hex("00112233445566778899AABBCCDDEEFF", &n);
    uint8_t *want = tu_hex("1FA68B0A8112B447AEF34BD8FB5A7B829D3E862371D2CFE5", &n);
    struct clst_vault_crypt_in in = in_value(cek, 16);
    assert_int_equal(clst_vault_keymat_crypt(kek, CLST_KEYOP_WRAP, CLST_ALG_A128KW, &in, &o, &err),
                     CLST_OK);
    assert_int_equal(o.value.size, 24);
    assert_memory_equal(o.value.data, want, 24);
    in = in_value(want, 24);
    assert_int_equal(
        clst_vault_keymat_crypt(kek, CLST_KEYOP_UNWRAP, CLST_ALG_A128KW, &in, &d, &err), CLST_OK);
    assert_memory_equal(d.value.data, cek, 16);
    want[9] ^= 1;
    clst_vault_crypt_out_cleanup(&d);
    clst_vault_crypt_out_init(&d);
    assert_int_equal(
        clst_vault_keymat_crypt(kek, CLST_KEYOP_UNWRAP, CLST_ALG_A128KW, &in, &d, &err),
        CLST_E_VERIFY);
    free(cek);
    free(want);
    clst_vault_keymat_free(kek);
    /* round trips for every size, and the length rules */
    const enum clst_vault_alg kw[3] = {CLST_ALG_A128KW, CLST_ALG_A192KW, CLST_ALG_A256KW};
    uint8_t key[CLST_KEYMAT_KW_MAX + 16];
    memset(key, 0x5a, sizeof(key));
    for (int i = 0; i < 3; i++) {
        const size_t ok_sizes[] = {16, 24, 32, 64, CLST_KEYMAT_KW_MAX};
        for (size_t s = 0; s < sizeof(ok_sizes) / sizeof(ok_sizes[0]); s++) {
            in = in_value(key, ok_sizes[s]);
            clst_vault_crypt_out_cleanup(&o);
            clst_vault_crypt_out_init(&o);
            assert_int_equal(
                clst_vault_keymat_crypt(K.oct[i], CLST_KEYOP_WRAP, kw[i], &in, &o, &err), CLST_OK);
            assert_int_equal(o.value.size, ok_sizes[s] + 8);
            in = in_value(o.value.data, o.value.size);
            clst_vault_crypt_out_cleanup(&d);
            clst_vault_crypt_out_init(&d);
            assert_int_equal(
                clst_vault_keymat_crypt(K.oct[i], CLST_KEYOP_UNWRAP, kw[i], &in, &d, &err),
                CLST_OK);
            assert_int_equal(d.value.size, ok_sizes[s]);
        }
        const size_t bad[] = {1, 8, 15, 17, 20, CLST_KEYMAT_KW_MAX + 8};
        for (size_t s = 0; s < sizeof(bad) / sizeof(bad[0]); s++) {
            in = in_value(key, bad[s]);
            assert_int_equal(
                clst_vault_keymat_crypt(K.oct[i], CLST_KEYOP_WRAP, kw[i], &in, &o, &err),
                CLST_E_INVAL);
        }
        const size_t bad_unwrap[] = {8, 16, 23, 25, CLST_KEYMAT_KW_MAX + 16};
        for (size_t s = 0; s < sizeof(bad_unwrap) / sizeof(bad_unwrap[0]); s++) {
            in = in_value(key, bad_unwrap[s]);
            assert_int_equal(
                clst_vault_keymat_crypt(K.oct[i], CLST_KEYOP_UNWRAP, kw[i], &in, &d, &err),
                CLST_E_INVAL);
        }
        /* another key's wrap does not unwrap */
        in = in_value(key, 32);
        assert_int_equal(clst_vault_keymat_crypt(K.oct[i], CLST_KEYOP_WRAP, kw[i], &in, &o, &err),
                         CLST_OK);
        struct clst_vault_keymat *other = gen(CLST_KEYMAT_OCT, 128 + 64 * i, 0);
        in = in_value(o.value.data, o.value.size);
        assert_int_equal(clst_vault_keymat_crypt(other, CLST_KEYOP_UNWRAP, kw[i], &in, &d, &err),
                         CLST_E_VERIFY);
        clst_vault_keymat_free(other);
    }
    clst_vault_crypt_out_cleanup(&o);
    clst_vault_crypt_out_cleanup(&d);
}

/* ---- signatures ----------------------------------------------------------------------------- */

static const EVP_MD *
md_of(enum clst_vault_alg alg)
{
    return clst_hash_md(clst_vault_alg_hash(alg));
}

/* Verifies a vault signature over the MESSAGE with plain EVP (DigestVerify hashes it). */
static bool
evp_verify_msg(const struct clst_vault_keymat *km, enum clst_vault_alg alg, const void *msg,
               size_t n, const uint8_t *sig, size_t sig_size)
{
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    struct clst_buf der;
    int ok;
    clst_buf_init(&der, 256);
    assert_int_equal(EVP_DigestVerifyInit(m, &pctx, md_of(alg), NULL, clst_vault_keymat_pkey(km)),
                     1);
    if (alg >= CLST_ALG_PS256 && alg <= CLST_ALG_PS512) {
        assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING), 1);
        assert_int_equal(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST), 1);
    }
    if (alg >= CLST_ALG_ES256) {
        assert_int_equal(clst_ecdsa_sig_raw_to_der(sig, sig_size, &der), CLST_OK);
        sig = der.data;
        sig_size = der.size;
    }
    ok = EVP_DigestVerify(m, sig, sig_size, msg, n);
    EVP_MD_CTX_free(m);
    clst_buf_cleanup(&der);
    return ok == 1;
}

/* Signs the MESSAGE with plain EVP (raw r||s for ECDSA). */
static size_t
evp_sign_msg(const struct clst_vault_keymat *km, enum clst_vault_alg alg, const void *msg, size_t n,
             uint8_t *out)
{
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    uint8_t sig[1024];
    size_t len = sizeof(sig);
    struct clst_buf raw;
    clst_buf_init(&raw, 256);
    assert_int_equal(EVP_DigestSignInit(m, &pctx, md_of(alg), NULL, clst_vault_keymat_pkey(km)), 1);
    if (alg >= CLST_ALG_PS256 && alg <= CLST_ALG_PS512) {
        assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING), 1);
        assert_int_equal(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST), 1);
    }
    assert_int_equal(EVP_DigestSign(m, sig, &len, msg, n), 1);
    EVP_MD_CTX_free(m);
    if (alg >= CLST_ALG_ES256) {
        size_t cs = (size_t)(clst_vault_keymat_bits(km) + 7) / 8;
        assert_int_equal(clst_ecdsa_sig_der_to_raw(sig, len, cs, &raw), CLST_OK);
        memcpy(out, raw.data, raw.size);
        len = raw.size;
    } else {
        memcpy(out, sig, len);
    }
    clst_buf_cleanup(&raw);
    return len;
}

static void
sig_case(const struct clst_vault_keymat *km, enum clst_vault_alg alg)
{
    const char msg[] = "message signed through the vault";
    uint8_t digest[CLST_HASH_MAX_SIZE];
    size_t dn = clst_hash_size(clst_vault_alg_hash(alg));
    struct clst_buf sig;
    struct clst_err err;
    uint8_t mine[1024];
    size_t want_size = alg >= CLST_ALG_ES256 ? 2 * (size_t)((clst_vault_keymat_bits(km) + 7) / 8)
                                             : (size_t)clst_vault_keymat_bits(km) / 8;

    clst_buf_init(&sig, 1024);
    assert_int_equal(clst_hash(clst_vault_alg_hash(alg), msg, sizeof(msg) - 1, digest), CLST_OK);
    assert_int_equal(clst_vault_keymat_sign(km, alg, digest, dn, &sig, &err), CLST_OK);
    assert_int_equal(sig.size, want_size);
    /* OpenSSL, hashing the message itself, agrees: the vault signed the digest, not a hash of it */
    assert_true(evp_verify_msg(km, alg, msg, sizeof(msg) - 1, sig.data, sig.size));
    assert_int_equal(clst_vault_keymat_verify(km, alg, digest, dn, sig.data, sig.size, &err),
                     CLST_OK);
    /* flips, truncation, wrong digest: invalid (VERIFY), never an error */
    sig.data[sig.size / 2] ^= 1;
    assert_int_equal(clst_vault_keymat_verify(km, alg, digest, dn, sig.data, sig.size, &err),
                     CLST_E_VERIFY);
    sig.data[sig.size / 2] ^= 1;
    assert_int_equal(clst_vault_keymat_verify(km, alg, digest, dn, sig.data, sig.size - 1, &err),
                     CLST_E_VERIFY);
    assert_int_equal(clst_vault_keymat_verify(km, alg, digest, dn, NULL, 0, &err), CLST_E_VERIFY);
    digest[0] ^= 1;
    assert_int_equal(clst_vault_keymat_verify(km, alg, digest, dn, sig.data, sig.size, &err),
                     CLST_E_VERIFY);
    digest[0] ^= 1;
    /* OpenSSL's own signature verifies in the vault */
    size_t mn = evp_sign_msg(km, alg, msg, sizeof(msg) - 1, mine);
    assert_int_equal(clst_vault_keymat_verify(km, alg, digest, dn, mine, mn, &err), CLST_OK);
    /* wrong digest lengths: INVAL for both */
    const size_t wrong[] = {0, 20, dn - 1, dn + 1};
    for (size_t i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++) {
        uint8_t d[CLST_HASH_MAX_SIZE + 1] = {0};
        clst_buf_reset(&sig);
        assert_int_equal(clst_vault_keymat_sign(km, alg, d, wrong[i], &sig, &err), CLST_E_INVAL);
        assert_int_equal(clst_vault_keymat_verify(km, alg, d, wrong[i], mine, mn, &err),
                         CLST_E_INVAL);
    }
    clst_buf_cleanup(&sig);
}

static void
test_signatures(void **state)
{
    (void)state;
    const enum clst_vault_alg rsa[] = {CLST_ALG_RS256, CLST_ALG_RS384, CLST_ALG_RS512,
                                       CLST_ALG_PS256, CLST_ALG_PS384, CLST_ALG_PS512};
    for (size_t i = 0; i < 6; i++) {
        sig_case(K.rsa, rsa[i]);
    }
    sig_case(K.rsa3, CLST_ALG_PS512);
    sig_case(K.ec[0], CLST_ALG_ES256);
    sig_case(K.ec[1], CLST_ALG_ES384);
    sig_case(K.ec[2], CLST_ALG_ES512);
    /* algorithm / key mismatches */
    uint8_t d[64] = {0};
    struct clst_buf sig;
    struct clst_err err;
    clst_buf_init(&sig, 1024);
    assert_int_equal(clst_vault_keymat_sign(K.ec[0], CLST_ALG_ES384, d, 48, &sig, &err),
                     CLST_E_INVAL);
    assert_int_equal(clst_vault_keymat_sign(K.rsa, CLST_ALG_ES256, d, 32, &sig, &err),
                     CLST_E_INVAL);
    assert_int_equal(clst_vault_keymat_sign(K.ec[0], CLST_ALG_RS256, d, 32, &sig, &err),
                     CLST_E_INVAL);
    assert_int_equal(clst_vault_keymat_sign(K.oct[2], CLST_ALG_RS256, d, 32, &sig, &err),
                     CLST_E_INVAL);
    /* PS signatures are salted: two differ; RS (deterministic) are equal */
    struct clst_buf a, b;
    clst_buf_init(&a, 512);
    clst_buf_init(&b, 512);
    assert_int_equal(clst_vault_keymat_sign(K.rsa, CLST_ALG_PS256, d, 32, &a, &err), CLST_OK);
    assert_int_equal(clst_vault_keymat_sign(K.rsa, CLST_ALG_PS256, d, 32, &b, &err), CLST_OK);
    assert_memory_not_equal(a.data, b.data, a.size);
    /* a PS signature is not an RS one */
    assert_int_equal(clst_vault_keymat_verify(K.rsa, CLST_ALG_RS256, d, 32, a.data, a.size, &err),
                     CLST_E_VERIFY);
    clst_buf_cleanup(&a);
    clst_buf_cleanup(&b);
    clst_buf_cleanup(&sig);
}

/* ---- backups -------------------------------------------------------------------------------- */

static void
backup_items(struct clst_vault_backup_item items[2], struct clst_buf *pub0, struct clst_buf *pub1)
{
    struct clst_buf priv;
    const struct clst_vault_keymat *kms[2] = {K.ec[0], K.oct[1]};
    struct clst_buf *pubs[2] = {pub0, pub1};
    for (int i = 0; i < 2; i++) {
        memset(&items[i], 0, sizeof(items[i]));
        items[i].meta = tv_key("bak-Key");
        snprintf(items[i].meta.version, sizeof(items[i].meta.version), "%032x", i + 1);
        snprintf(items[i].meta.kty, sizeof(items[i].meta.kty), "%s",
                 clst_vault_keymat_kty_name(clst_vault_keymat_type(kms[i])));
        items[i].meta.attrs.nbf = 100 + i;
        items[i].meta.attrs.exp = i == 0 ? 0 : 5000000000;
        items[i].meta.attrs.created = 42;
        items[i].meta.tags = i == 0 ? (char *)"{\"a\":\"b\"}" : NULL;
        items[i].meta.release_policy = i == 1 ? (char *)"{\"version\":\"1.0.0\"}" : NULL;
        items[i].meta.policy_immutable = i == 1;
        clst_buf_init(pubs[i], CLST_VAULT_PUBLIC_MAX);
        assert_int_equal(clst_vault_keymat_public_text(kms[i], pubs[i]), CLST_OK);
        items[i].meta.public_data = pubs[i]->data;
        items[i].meta.public_size = pubs[i]->size;
        clst_buf_init_secret(&priv, 4096);
        assert_int_equal(clst_vault_keymat_export_private(kms[i], &priv), CLST_OK);
        assert_int_equal(clst_secret_from(priv.data, priv.size, &items[i].value), CLST_OK);
        clst_buf_cleanup(&priv);
    }
}

static void
test_backup(void **state)
{
    struct clst_vault_backup_item items[2];
    struct clst_buf pub0, pub1, blob;
    struct clst_vault_backup b;
    struct clst_err err;
    uint8_t key[32], other[32];
    (void)state;

    memset(&b, 0, sizeof(b));
    backup_items(items, &pub0, &pub1);
    assert_int_equal(clst_random(key, sizeof(key)), CLST_OK);
    assert_int_equal(clst_random(other, sizeof(other)), CLST_OK);
    clst_buf_init(&blob, CLST_KEYMAT_BACKUP_MAX);
    assert_int_equal(clst_vault_backup_seal(key, items, 2, &blob, &err), CLST_OK);
    assert_memory_equal(blob.data, "CLSTKBK1", 8);
    /* the private material is not in the blob in the clear */
    assert_false(contains(blob.data, blob.size, items[1].value->ptr, items[1].value->size));
    assert_int_equal(clst_vault_backup_open(key, blob.data, blob.size, &b, &err), CLST_OK);
    assert_string_equal(b.name, "bak-Key");
    assert_int_equal(b.count, 2);
    for (int i = 0; i < 2; i++) {
        const struct clst_vault_object *m = &b.items[i].meta;
        assert_string_equal(m->version, items[i].meta.version);
        assert_string_equal(m->kty, items[i].meta.kty);
        assert_int_equal(m->attrs.nbf, 100 + i);
        assert_int_equal(m->attrs.exp, items[i].meta.attrs.exp);
        assert_int_equal(m->attrs.created, 42);
        assert_true(m->attrs.enabled);
        assert_true(m->attrs.exportable);
        assert_string_equal(m->attrs.recovery_level, "Recoverable+Purgeable");
        assert_int_equal(m->attrs.recoverable_days, 90);
        assert_string_equal(m->key_ops, items[i].meta.key_ops);
        assert_int_equal(m->public_size, items[i].meta.public_size);
        assert_memory_equal(m->public_data, items[i].meta.public_data, m->public_size);
        assert_int_equal(b.items[i].value->size, items[i].value->size);
        assert_memory_equal(b.items[i].value->ptr, items[i].value->ptr, items[i].value->size);
    }
    assert_string_equal(b.items[0].meta.tags, "{\"a\":\"b\"}");
    assert_null(b.items[1].meta.tags);
    assert_null(b.items[0].meta.release_policy);
    assert_string_equal(b.items[1].meta.release_policy, "{\"version\":\"1.0.0\"}");
    assert_true(b.items[1].meta.policy_immutable);
    assert_false(b.items[0].meta.policy_immutable);
    clst_vault_backup_cleanup(&b);

    /* another vault's key */
    assert_int_equal(clst_vault_backup_open(other, blob.data, blob.size, &b, &err), CLST_E_VERIFY);
    assert_non_null(strstr(err.msg, "another vault"));
    /* every single-byte flip is refused (header: magic → MALFORMED, id → another vault, the rest
     * → integrity) */
    for (size_t i = 0; i < blob.size; i++) {
        blob.data[i] ^= 0x01;
        enum clst_status st = clst_vault_backup_open(key, blob.data, blob.size, &b, &err);
        blob.data[i] ^= 0x01;
        if (i < 8) {
            assert_int_equal(st, CLST_E_MALFORMED);
        } else {
            assert_int_equal(st, CLST_E_VERIFY);
        }
        assert_int_equal(b.count, 0);
    }
    /* truncations and extensions */
    const size_t cuts[] = {0, 7, 8, 68, 84, blob.size - 1};
    for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
        enum clst_status st = clst_vault_backup_open(key, blob.data, cuts[i], &b, &err);
        assert_true(st == CLST_E_MALFORMED || st == CLST_E_VERIFY);
    }
    assert_int_equal(clst_buf_append_byte(&blob, 0), CLST_OK);
    assert_int_equal(clst_vault_backup_open(key, blob.data, blob.size, &b, &err), CLST_E_VERIFY);
    assert_int_equal(clst_vault_backup_open(key, (const uint8_t *)"not a backup", 12, &b, &err),
                     CLST_E_MALFORMED);
    static uint8_t huge[CLST_KEYMAT_BACKUP_MAX + 1];
    assert_int_equal(clst_vault_backup_open(key, huge, sizeof(huge), &b, &err), CLST_E_LIMIT);
    /* sealing rules: no items, mixed names, bad version */
    clst_buf_reset(&blob);
    assert_int_equal(clst_vault_backup_seal(key, items, 0, &blob, &err), CLST_E_INVAL);
    snprintf(items[1].meta.name, sizeof(items[1].meta.name), "other");
    assert_int_equal(clst_vault_backup_seal(key, items, 2, &blob, &err), CLST_E_INVAL);
    snprintf(items[1].meta.name, sizeof(items[1].meta.name), "bak-Key");
    snprintf(items[1].meta.version, sizeof(items[1].meta.version), "XYZ");
    assert_int_equal(clst_vault_backup_seal(key, items, 2, &blob, &err), CLST_E_INVAL);
    /* duplicate versions in a blob are refused on open */
    snprintf(items[1].meta.version, sizeof(items[1].meta.version), "%s", items[0].meta.version);
    clst_buf_reset(&blob);
    assert_int_equal(clst_vault_backup_seal(key, items, 2, &blob, &err), CLST_OK);
    assert_int_equal(clst_vault_backup_open(key, blob.data, blob.size, &b, &err), CLST_E_MALFORMED);
    for (int i = 0; i < 2; i++) {
        clst_secret_free(items[i].value);
    }
    clst_buf_cleanup(&pub0);
    clst_buf_cleanup(&pub1);
    clst_buf_cleanup(&blob);
}

static void
test_backup_key(void **state)
{
    struct tv_env a, b;
    uint8_t k1[32], k2[32], k3[32];
    struct clst_err err;
    (void)state;
    assert_int_equal(tv_env_init(&a), 0);
    assert_int_equal(tv_env_init(&b), 0);
    assert_int_equal(clst_vault_backup_key(a.store, a.mk, k1, &err), CLST_OK);
    assert_int_equal(clst_vault_backup_key(a.store, a.mk, k2, &err), CLST_OK);
    assert_memory_equal(k1, k2, 32);
    /* stored wrapped, never in the clear */
    struct clst_buf stored;
    clst_buf_init(&stored, 1024);
    assert_int_equal(
        clst_vault_store_meta_get(a.store, CLST_KEYMAT_BACKUP_KEY_SETTING, &stored, &err), CLST_OK);
    assert_true(stored.size > 32);
    assert_false(contains(stored.data, stored.size, k1, 32));
    clst_buf_cleanup(&stored);
    /* survives a reopen */
    tv_close(&a);
    assert_int_equal(tv_open(&a, 0, &err), CLST_OK);
    assert_int_equal(clst_vault_backup_key(a.store, a.mk, k2, &err), CLST_OK);
    assert_memory_equal(k1, k2, 32);
    /* another vault has another key */
    assert_int_equal(clst_vault_backup_key(b.store, b.mk, k3, &err), CLST_OK);
    assert_memory_not_equal(k1, k3, 32);
    /* a setting that does not unwrap (another master key's blob) is refused */
    struct clst_buf other;
    clst_buf_init(&other, 1024);
    assert_int_equal(
        clst_vault_store_meta_get(b.store, CLST_KEYMAT_BACKUP_KEY_SETTING, &other, &err), CLST_OK);
    assert_int_equal(clst_vault_store_meta_set(a.store, CLST_KEYMAT_BACKUP_KEY_SETTING, other.data,
                                               other.size, &err),
                     CLST_OK);
    assert_int_equal(clst_vault_backup_key(a.store, a.mk, k2, &err), CLST_E_VERIFY);
    clst_buf_cleanup(&other);
    assert_int_equal(clst_vault_backup_key(NULL, a.mk, k2, &err), CLST_E_INVAL);
    tv_env_cleanup(&a);
    tv_env_cleanup(&b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kty),
        cmocka_unit_test(test_spec),
        cmocka_unit_test(test_private_roundtrip),
        cmocka_unit_test(test_public_json),
        cmocka_unit_test(test_jwk_response),
        cmocka_unit_test(test_from_jwk),
        cmocka_unit_test(test_key_ops),
        cmocka_unit_test(test_alg_names),
        cmocka_unit_test(test_alg_check),
        cmocka_unit_test(test_rsa_encryption),
        cmocka_unit_test(test_gcm),
        cmocka_unit_test(test_kw),
        cmocka_unit_test(test_signatures),
        cmocka_unit_test(test_backup),
        cmocka_unit_test(test_backup_key),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
