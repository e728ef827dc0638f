/* Unit tests for src/crypto/jwk_pkey.c: JWK <-> EVP_PKEY for RSA and EC, agreement with the
 * Wycheproof keys given both as JWK and as DER, and the strictness rules: types, base64url,
 * minimal RSA integers, modulus size bounds, exact EC coordinate sizes, points on the curve,
 * consistent private parts. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <openssl/bn.h>
#include <openssl/evp.h>

#include <cloister/crypto.h>

#include "test_util.h"

struct keys {
    EVP_PKEY *rsa, *rsa2;
    EVP_PKEY *ec[3], *ec2[3];
};

static const enum clst_curve all_curves[3] = {CLST_CURVE_P256, CLST_CURVE_P384, CLST_CURVE_P521};
static const size_t coord[3] = {32, 48, 66};

/* A Wycheproof private key (PKCS#8), to spare the tests RSA key generation. */
static EVP_PKEY *
wycheproof_rsa(const char *file)
{
    json_t *j = tu_load_json(file);
    const char *hex = json_string_value(
        json_object_get(json_array_get(json_object_get(j, "testGroups"), 0), "privateKeyPkcs8"));
    size_t size = 0;
    uint8_t *der = hex != NULL ? tu_hex(hex, &size) : NULL;
    EVP_PKEY *key = NULL;
    if (der == NULL || clst_pkey_from_der(der, size, &key, NULL) != CLST_OK) {
        key = NULL;
    }
    free(der);
    json_decref(j);
    return key;
}

static int
setup(void **state)
{
    struct keys *k = calloc(1, sizeof(*k));
    if (k == NULL) {
        return -1;
    }
    k->rsa = wycheproof_rsa("wycheproof/rsa_oaep_2048_sha256_mgf1sha256_test.json");
    k->rsa2 = wycheproof_rsa("wycheproof/rsa_pkcs1_2048_test.json");
    if (k->rsa == NULL || k->rsa2 == NULL) {
        return -1;
    }
    for (int i = 0; i < 3; i++) {
        if (clst_ec_generate(all_curves[i], &k->ec[i]) != CLST_OK ||
            clst_ec_generate(all_curves[i], &k->ec2[i]) != CLST_OK) {
            return -1;
        }
    }
    *state = k;
    return 0;
}

static int
teardown(void **state)
{
    struct keys *k = *state;
    EVP_PKEY_free(k->rsa);
    EVP_PKEY_free(k->rsa2);
    for (int i = 0; i < 3; i++) {
        EVP_PKEY_free(k->ec[i]);
        EVP_PKEY_free(k->ec2[i]);
    }
    free(k);
    return 0;
}

/* Decodes member name of obj (must exist) into a malloc'ed buffer. */
static uint8_t *
get_b64(const json_t *obj, const char *name, size_t *size)
{
    const json_t *v = json_object_get(obj, name);
    struct clst_buf b;
    assert_non_null(v);
    clst_buf_init(&b, 4096);
    assert_int_equal(clst_b64url_decode(json_string_value(v), json_string_length(v), &b), CLST_OK);
    uint8_t *p = malloc(b.size + 1);
    memcpy(p, b.data, b.size);
    *size = b.size;
    clst_buf_cleanup(&b);
    return p;
}

static void
set_b64(json_t *obj, const char *name, const uint8_t *data, size_t size)
{
    struct clst_buf b;
    clst_buf_init(&b, 8192);
    assert_int_equal(clst_b64url_encode(data, size, &b), CLST_OK);
    assert_int_equal(json_object_set_new(obj, name, json_stringn((char *)b.data, b.size)), 0);
    clst_buf_cleanup(&b);
}

static void
set_str(json_t *obj, const char *name, const char *value)
{
    assert_int_equal(json_object_set_new(obj, name, json_string(value)), 0);
}

/* from_jwk must fail with `want`; returns the message. */
static void
expect_fail(const json_t *jwk, enum clst_status want, const char *msg_part)
{
    struct clst_err err;
    EVP_PKEY *key = NULL;
    clst_err_clear(&err);
    assert_int_equal(clst_pkey_from_jwk(jwk, &key, &err), want);
    assert_null(key);
    assert_int_equal(err.status, want);
    if (msg_part != NULL && strstr(err.msg, msg_part) == NULL) {
        fail_msg("message \"%s\" does not mention \"%s\"", err.msg, msg_part);
    }
}

static json_t *
to_jwk(EVP_PKEY *key, bool priv)
{
    json_t *j = NULL;
    assert_int_equal(clst_pkey_to_jwk(key, priv, &j), CLST_OK);
    assert_non_null(j);
    return j;
}

static void
test_roundtrip(void **state)
{
    struct keys *k = *state;
    EVP_PKEY *all[4] = {k->rsa, k->ec[0], k->ec[1], k->ec[2]};
    static const char *crv[3] = {"P-256", "P-384", "P-521"};
    struct clst_err err;

    for (int i = 0; i < 4; i++) {
        for (int priv = 0; priv < 2; priv++) {
            json_t *j = to_jwk(all[i], priv);
            EVP_PKEY *back = NULL;
            assert_int_equal(clst_pkey_from_jwk(j, &back, &err), CLST_OK);
            assert_true(clst_pkey_public_equal(back, all[i]));
            assert_true(clst_pkey_has_private(back) == (priv != 0));
            assert_int_equal(clst_pkey_kind(back), clst_pkey_kind(all[i]));
            if (i == 0) {
                assert_string_equal(json_string_value(json_object_get(j, "kty")), "RSA");
                assert_string_equal(json_string_value(json_object_get(j, "e")), "AQAB");
                size_t n_size;
                free(get_b64(j, "n", &n_size));
                assert_int_equal(n_size, 256);
                assert_int_equal(json_object_size(j), priv ? 9 : 3);
            } else {
                assert_string_equal(json_string_value(json_object_get(j, "kty")), "EC");
                assert_string_equal(json_string_value(json_object_get(j, "crv")), crv[i - 1]);
                size_t sx, sy;
                free(get_b64(j, "x", &sx));
                free(get_b64(j, "y", &sy));
                assert_int_equal(sx, coord[i - 1]);
                assert_int_equal(sy, coord[i - 1]);
                if (priv) {
                    size_t sd;
                    free(get_b64(j, "d", &sd));
                    assert_int_equal(sd, coord[i - 1]);
                }
                assert_int_equal(json_object_size(j), priv ? 5 : 4);
            }
            /* Extra members are ignored. */
            set_str(j, "kid", "key-1");
            set_str(j, "alg", "whatever");
            json_object_set_new(j, "key_ops", json_pack("[s]", "sign"));
            EVP_PKEY *again = NULL;
            assert_int_equal(clst_pkey_from_jwk(j, &again, &err), CLST_OK);
            assert_true(clst_pkey_public_equal(again, all[i]));
            EVP_PKEY_free(again);
            EVP_PKEY_free(back);
            json_decref(j);
        }
    }
}

static void
test_to_jwk_errors(void **state)
{
    struct keys *k = *state;
    json_t *j = NULL;
    EVP_PKEY *pub = NULL;

    assert_int_equal(clst_pkey_to_jwk(NULL, false, &j), CLST_E_INVAL);
    assert_int_equal(clst_pkey_to_jwk(k->rsa, false, NULL), CLST_E_INVAL);
    assert_int_equal(clst_pkey_public_copy(k->ec[0], &pub), CLST_OK);
    assert_int_equal(clst_pkey_to_jwk(pub, true, &j), CLST_E_INVAL);
    EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    assert_int_equal(clst_pkey_to_jwk(ed, false, &j), CLST_E_INVAL);
    assert_null(j);
    EVP_PKEY_free(ed);
    EVP_PKEY_free(pub);
}

/* Every Wycheproof key given as JWK equals the same key given as DER. Groups without a JWK are
 * counted, not skipped silently. */
static void
check_wycheproof_jwks(const char *file, const char *jwk_member, const char *der_member, bool priv,
                      size_t stride, int want_groups, int want_without_jwk)
{
    json_t *j = tu_load_json(file);
    assert_non_null(j);
    json_t *groups = json_object_get(j, "testGroups");
    size_t gi;
    json_t *g;
    int checked = 0, without_jwk = 0;
    json_array_foreach(groups, gi, g)
    {
        const json_t *jwk = json_object_get(g, jwk_member);
        const char *hex = json_string_value(json_object_get(g, der_member));
        if (jwk == NULL) {
            without_jwk++;
            continue;
        }
        if (gi % stride != 0) {
            continue;
        }
        assert_non_null(hex);
        size_t der_size = 0;
        uint8_t *der = tu_hex(hex, &der_size);
        EVP_PKEY *a = NULL, *b = NULL;
        struct clst_err err;
        if (clst_pkey_from_jwk(jwk, &a, &err) != CLST_OK) {
            fail_msg("%s group %zu: %s", file, gi, err.msg);
        }
        assert_int_equal(clst_pkey_from_der(der, der_size, &b, &err), CLST_OK);
        assert_true(clst_pkey_public_equal(a, b));
        assert_true(clst_pkey_has_private(a) == priv);
        /* And our export gives back the same members. */
        json_t *ours = to_jwk(a, priv);
        static const char *members[] = {"kty", "n",  "e",  "d",   "p", "q",
                                        "dp",  "dq", "qi", "crv", "x", "y"};
        for (size_t m = 0; m < sizeof(members) / sizeof(members[0]); m++) {
            const json_t *theirs = json_object_get(jwk, members[m]);
            if (theirs != NULL) {
                assert_true(json_equal(theirs, json_object_get(ours, members[m])));
            }
        }
        json_decref(ours);
        EVP_PKEY_free(a);
        EVP_PKEY_free(b);
        free(der);
        checked++;
    }
    assert_int_equal(checked, want_groups);
    assert_int_equal(without_jwk, want_without_jwk);
    json_decref(j);
}

static void
test_wycheproof_keys(void **state)
{
    (void)state;
    check_wycheproof_jwks("wycheproof/rsa_oaep_2048_sha256_mgf1sha256_test.json", "privateKeyJwk",
                          "privateKeyPkcs8", true, 1, 1, 0);
    check_wycheproof_jwks("wycheproof/rsa_oaep_3072_sha256_mgf1sha256_test.json", "privateKeyJwk",
                          "privateKeyPkcs8", true, 1, 1, 0);
    /* 33 private keys (one per group): every 4th, since the full private-key check costs ~50 ms
     * each (all 33 are used through PKCS#8 in test_rsa.c). */
    check_wycheproof_jwks("wycheproof/rsa_pkcs1_2048_test.json", "privateKeyJwk", "privateKeyPkcs8",
                          true, 4, 9, 0);
    check_wycheproof_jwks("wycheproof/rsa_pss_2048_sha256_mgf1_32_test.json", "publicKeyJwk",
                          "publicKeyDer", false, 1, 1, 0);
    /* keyJwk there includes two e = 3 keys, which are valid. */
    check_wycheproof_jwks("wycheproof/rsa_signature_2048_sha256_test.json", "keyJwk",
                          "publicKeyDer", false, 1, 3, 0);
    /* Edge-case public keys (small and large coordinates) of the P1363 files. The 9 groups of
     * each file that probe r/x arithmetic (r = 5, x = n + 3, ...) come without a JWK upstream. */
    check_wycheproof_jwks("wycheproof/ecdsa_secp256r1_sha256_p1363_test.json", "publicKeyJwk",
                          "publicKeyDer", false, 1, 103, 9);
    check_wycheproof_jwks("wycheproof/ecdsa_secp384r1_sha384_p1363_test.json", "publicKeyJwk",
                          "publicKeyDer", false, 1, 95, 9);
}

static void
test_structure_errors(void **state)
{
    struct keys *k = *state;
    json_t *j;
    EVP_PKEY *key = NULL;

    assert_int_equal(clst_pkey_from_jwk(NULL, &key, NULL), CLST_E_INVAL);
    j = to_jwk(k->ec[0], false);
    assert_int_equal(clst_pkey_from_jwk(j, NULL, NULL), CLST_E_INVAL);
    json_decref(j);

    j = json_pack("[s]", "EC");
    expect_fail(j, CLST_E_MALFORMED, "object");
    json_decref(j);
    j = json_string("EC");
    expect_fail(j, CLST_E_MALFORMED, "object");
    json_decref(j);

    static const char *bad_kty[] = {"oct", "OKP", "rsa", "ec", "RSA ", "", "EC\n"};
    for (size_t i = 0; i < sizeof(bad_kty) / sizeof(bad_kty[0]); i++) {
        j = to_jwk(k->rsa, false);
        set_str(j, "kty", bad_kty[i]);
        expect_fail(j, CLST_E_MALFORMED, "key type");
        json_decref(j);
    }
    /* "kty" with an embedded NUL */
    j = to_jwk(k->ec[0], false);
    json_object_set_new(j, "kty", json_stringn("EC\0X", 4));
    expect_fail(j, CLST_E_MALFORMED, NULL);
    json_decref(j);

    j = to_jwk(k->rsa, false);
    json_object_del(j, "kty");
    expect_fail(j, CLST_E_MALFORMED, "kty");
    json_object_set_new(j, "kty", json_integer(3));
    expect_fail(j, CLST_E_MALFORMED, "kty");
    json_decref(j);

    /* Members of the wrong type or missing. */
    static const char *rsa_members[] = {"n", "e"};
    for (size_t i = 0; i < 2; i++) {
        j = to_jwk(k->rsa, false);
        json_object_set_new(j, rsa_members[i], json_integer(65537));
        expect_fail(j, CLST_E_MALFORMED, "string");
        json_object_set_new(j, rsa_members[i], json_null());
        expect_fail(j, CLST_E_MALFORMED, "string");
        json_object_del(j, rsa_members[i]);
        expect_fail(j, CLST_E_MALFORMED, rsa_members[i]);
        set_str(j, rsa_members[i], "");
        expect_fail(j, CLST_E_MALFORMED, "empty");
        json_decref(j);
    }
    static const char *ec_members[] = {"crv", "x", "y"};
    for (size_t i = 0; i < 3; i++) {
        j = to_jwk(k->ec[1], false);
        json_object_set_new(j, ec_members[i], json_true());
        expect_fail(j, CLST_E_MALFORMED, NULL);
        json_object_del(j, ec_members[i]);
        expect_fail(j, CLST_E_MALFORMED, ec_members[i]);
        json_decref(j);
    }
    j = to_jwk(k->ec[1], true);
    json_object_set_new(j, "d", json_integer(1));
    expect_fail(j, CLST_E_MALFORMED, "\"d\"");
    json_decref(j);
}

/* Padding, whitespace, the standard alphabet and truncations are refused in every member. */
static void
test_base64url_strict(void **state)
{
    struct keys *k = *state;
    static const char *members[] = {"n", "e", "d", "p", "q", "dp", "dq", "qi"};
    static const char *ec_members[] = {"x", "y", "d"};

    for (int kind = 0; kind < 2; kind++) {
        EVP_PKEY *key = kind == 0 ? k->rsa : k->ec[2];
        const char **names = kind == 0 ? members : ec_members;
        size_t count = kind == 0 ? 8 : 3;
        for (size_t m = 0; m < count; m++) {
            json_t *orig = to_jwk(key, true);
            const char *v = json_string_value(json_object_get(orig, names[m]));
            size_t len = strlen(v);
            char *buf = malloc(len + 8);
            json_t *j = json_deep_copy(orig);

            snprintf(buf, len + 8, "%s=", v);
            set_str(j, names[m], buf);
            expect_fail(j, CLST_E_MALFORMED, names[m]);
            snprintf(buf, len + 8, " %s", v);
            set_str(j, names[m], buf);
            expect_fail(j, CLST_E_MALFORMED, names[m]);
            snprintf(buf, len + 8, "%s\n", v);
            set_str(j, names[m], buf);
            expect_fail(j, CLST_E_MALFORMED, names[m]);
            memcpy(buf, v, len + 1);
            buf[len / 2] = '+';
            set_str(j, names[m], buf);
            expect_fail(j, CLST_E_MALFORMED, names[m]);
            buf[len / 2] = '/';
            set_str(j, names[m], buf);
            expect_fail(j, CLST_E_MALFORMED, names[m]);
            /* Every truncation (by whole characters) fails one way or another. */
            for (size_t cut = 0; cut < len; cut += (kind == 0 ? 37 : 1)) {
                memcpy(buf, v, cut);
                buf[cut] = 0;
                set_str(j, names[m], buf);
                EVP_PKEY *out = NULL;
                assert_int_not_equal(clst_pkey_from_jwk(j, &out, NULL), CLST_OK);
                assert_null(out);
            }
            free(buf);
            json_decref(j);
            json_decref(orig);
        }
    }
}

/* Replaces member `name` by the raw bytes, expecting failure. */
static void
expect_fail_with(const json_t *orig, const char *name, const uint8_t *data, size_t size,
                 enum clst_status want, const char *msg_part)
{
    json_t *j = json_deep_copy(orig);
    set_b64(j, name, data, size);
    expect_fail(j, want, msg_part);
    json_decref(j);
}

static void
test_rsa_rules(void **state)
{
    struct keys *k = *state;
    json_t *pub = to_jwk(k->rsa, false);
    json_t *priv = to_jwk(k->rsa, true);
    json_t *other = to_jwk(k->rsa2, true);
    size_t n_size, e_size;
    uint8_t *n = get_b64(pub, "n", &n_size);
    uint8_t *e = get_b64(pub, "e", &e_size);
    uint8_t buf[1200];

    /* Leading zero octets in n or e. */
    buf[0] = 0;
    memcpy(buf + 1, n, n_size);
    expect_fail_with(pub, "n", buf, n_size + 1, CLST_E_MALFORMED, "leading zero");
    memcpy(buf + 1, e, e_size);
    expect_fail_with(pub, "e", buf, e_size + 1, CLST_E_MALFORMED, "leading zero");

    /* Even or tiny exponents. */
    static const uint8_t e_even[] = {0x01, 0x00, 0x00};
    static const uint8_t e_one[] = {0x01};
    expect_fail_with(pub, "e", e_even, sizeof(e_even), CLST_E_MALFORMED, "odd");
    expect_fail_with(pub, "e", e_one, sizeof(e_one), CLST_E_MALFORMED, "odd");
    /* An exponent longer than 256 bits. */
    memset(buf, 0xff, 40);
    expect_fail_with(pub, "e", buf, 40, CLST_E_LIMIT, "\"e\"");

    /* Modulus sizes: 1024 and 2040 bits refused (MALFORMED), 8200 and 16384 refused (LIMIT). */
    expect_fail_with(pub, "n", n, 128, CLST_E_MALFORMED, "2048");
    expect_fail_with(pub, "n", n, 255, CLST_E_MALFORMED, "2048");
    memset(buf, 0xab, sizeof(buf));
    buf[0] = 0x01; /* 8193 bits */
    expect_fail_with(pub, "n", buf, 1025, CLST_E_LIMIT, "8192");
    expect_fail_with(pub, "n", buf, 1100, CLST_E_LIMIT, "8192");
    /* An even modulus of a legal size is refused by OpenSSL's public check. */
    memcpy(buf, n, n_size);
    buf[n_size - 1] &= 0xfe;
    expect_fail_with(pub, "n", buf, n_size, CLST_E_MALFORMED, NULL);

    /* Private keys need all of d, p, q, dp, dq, qi. */
    static const char *parts[] = {"d", "p", "q", "dp", "dq", "qi"};
    for (size_t i = 0; i < 6; i++) {
        json_t *j = json_deep_copy(priv);
        json_object_del(j, parts[i]);
        expect_fail(j, CLST_E_MALFORMED, NULL);
        json_decref(j);
        /* A public key with one stray private member. */
        j = json_deep_copy(pub);
        json_object_set(j, parts[i], json_object_get(priv, parts[i]));
        if (i != 0) {
            expect_fail(j, CLST_E_MALFORMED, "\"d\"");
        } else {
            expect_fail(j, CLST_E_MALFORMED, NULL);
        }
        json_decref(j);
    }
    /* Multi-prime keys. */
    {
        json_t *j = json_deep_copy(priv);
        json_object_set_new(j, "oth", json_array());
        expect_fail(j, CLST_E_MALFORMED, "oth");
        json_decref(j);
    }
    /* Inconsistent private parts: each member flipped in one bit, or taken from another key. */
    for (size_t i = 0; i < 6; i++) {
        size_t size;
        uint8_t *v = get_b64(priv, parts[i], &size);
        v[size - 1] ^= 0x02;
        expect_fail_with(priv, parts[i], v, size, CLST_E_MALFORMED, "inconsistent");
        free(v);
        json_t *j = json_deep_copy(priv);
        json_object_set(j, parts[i], json_object_get(other, parts[i]));
        expect_fail(j, CLST_E_MALFORMED, "inconsistent");
        json_decref(j);
    }
    /* p and q swapped (qi no longer matches). */
    {
        json_t *j = json_deep_copy(priv);
        json_object_set(j, "p", json_object_get(priv, "q"));
        json_object_set(j, "q", json_object_get(priv, "p"));
        expect_fail(j, CLST_E_MALFORMED, "inconsistent");
        json_decref(j);
    }
    /* The public part of another key with this key's private parts. */
    {
        json_t *j = json_deep_copy(priv);
        json_object_set(j, "n", json_object_get(other, "n"));
        expect_fail(j, CLST_E_MALFORMED, "inconsistent");
        json_decref(j);
    }
    /* A private member with leading zero octets is accepted (its value is what is checked). */
    {
        size_t size;
        uint8_t *d = get_b64(priv, "d", &size);
        if (size < n_size) {
            uint8_t padded[512] = {0};
            memcpy(padded + (n_size - size), d, size);
            json_t *j = json_deep_copy(priv);
            set_b64(j, "d", padded, n_size);
            EVP_PKEY *key = NULL;
            assert_int_equal(clst_pkey_from_jwk(j, &key, NULL), CLST_OK);
            EVP_PKEY_free(key);
            json_decref(j);
        }
        free(d);
    }
    free(n);
    free(e);
    json_decref(pub);
    json_decref(priv);
    json_decref(other);
}

static void
test_ec_rules(void **state)
{
    struct keys *k = *state;
    /* The field primes and group orders (from `openssl ecparam -param_enc explicit`). */
    static const char *p_hex[3] = {
        "ffffffff00000001000000000000000000000000ffffffffffffffffffffffff",
        "fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000"
        "ffffffff",
        "01ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
        "ffffffffffffffffffffffffffffffffffffffffffff",
    };
    static const char *n_hex[3] = {
        "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551",
        "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196a"
        "ccc52973",
        "01fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffa51868783bf2f966b7fcc"
        "0148f709a5d03bb5c9b8899c47aebb6fb71e91386409",
    };

    for (int c = 0; c < 3; c++) {
        json_t *pub = to_jwk(k->ec[c], false);
        json_t *priv = to_jwk(k->ec[c], true);
        json_t *other = to_jwk(k->ec2[c], true);
        size_t cs = coord[c], sx, sy, sd;
        uint8_t *x = get_b64(pub, "x", &sx);
        uint8_t *y = get_b64(pub, "y", &sy);
        uint8_t *d = get_b64(priv, "d", &sd);
        uint8_t buf[100] = {0};

        /* Wrong curve names. */
        static const char *bad_crv[] = {"P-192", "secp256r1", "p-256", "", "P-256K"};
        for (size_t i = 0; i < sizeof(bad_crv) / sizeof(bad_crv[0]); i++) {
            json_t *j = json_deep_copy(pub);
            set_str(j, "crv", bad_crv[i]);
            expect_fail(j, CLST_E_MALFORMED, "curve");
            json_decref(j);
        }
        /* The coordinates of another curve. */
        {
            json_t *j = json_deep_copy(pub);
            set_str(j, "crv", c == 0 ? "P-384" : "P-256");
            expect_fail(j, CLST_E_MALFORMED, "exactly");
            json_decref(j);
        }
        /* Coordinates one byte short (leading zero stripped) or long (leading zero added). */
        static const char *names[3] = {"x", "y", "d"};
        uint8_t *vals[3] = {x, y, d};
        for (int m = 0; m < 3; m++) {
            json_t *base = m == 2 ? priv : pub;
            expect_fail_with(base, names[m], vals[m] + 1, cs - 1, CLST_E_MALFORMED, "exactly");
            buf[0] = 0;
            memcpy(buf + 1, vals[m], cs);
            expect_fail_with(base, names[m], buf, cs + 1, CLST_E_MALFORMED, "exactly");
            expect_fail_with(base, names[m], buf, cs + 20, CLST_E_MALFORMED, "exactly");
        }
        /* Points off the curve: y flipped in each bit of its last byte, y = 0, x = y = 0. */
        for (int bit = 0; bit < 8; bit++) {
            memcpy(buf, y, cs);
            buf[cs - 1] ^= (uint8_t)(1u << bit);
            expect_fail_with(pub, "y", buf, cs, CLST_E_MALFORMED, NULL);
            expect_fail_with(priv, "y", buf, cs, CLST_E_MALFORMED, NULL);
        }
        memset(buf, 0, sizeof(buf));
        expect_fail_with(pub, "y", buf, cs, CLST_E_MALFORMED, NULL);
        {
            json_t *j = json_deep_copy(pub);
            set_b64(j, "x", buf, cs);
            set_b64(j, "y", buf, cs);
            expect_fail(j, CLST_E_MALFORMED, NULL);
            json_decref(j);
        }
        /* A coordinate equal to p (out of the field). */
        {
            size_t ps;
            uint8_t *p = tu_hex(p_hex[c], &ps);
            assert_int_equal(ps, cs);
            expect_fail_with(pub, "x", p, cs, CLST_E_MALFORMED, NULL);
            expect_fail_with(pub, "y", p, cs, CLST_E_MALFORMED, NULL);
            free(p);
        }
        /* Private scalars: 0, n, n + 1, another key's d, and a flipped bit. */
        {
            size_t ns;
            uint8_t *n = tu_hex(n_hex[c], &ns);
            assert_int_equal(ns, cs);
            memset(buf, 0, sizeof(buf));
            expect_fail_with(priv, "d", buf, cs, CLST_E_MALFORMED, NULL);
            expect_fail_with(priv, "d", n, cs, CLST_E_MALFORMED, NULL);
            n[cs - 1]++;
            expect_fail_with(priv, "d", n, cs, CLST_E_MALFORMED, NULL);
            free(n);
            json_t *j = json_deep_copy(priv);
            json_object_set(j, "d", json_object_get(other, "d"));
            expect_fail(j, CLST_E_MALFORMED, "inconsistent");
            json_decref(j);
            memcpy(buf, d, cs);
            buf[cs / 2] ^= 0x10;
            expect_fail_with(priv, "d", buf, cs, CLST_E_MALFORMED, "inconsistent");
        }
        free(x);
        free(y);
        free(d);
        json_decref(pub);
        json_decref(priv);
        json_decref(other);
    }
}

/* clst_json_b64url: base64url without padding, "" for nothing, bytes that differ from base64. */
static void
test_json_b64url(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        size_t size;
        const char *out;
    } cases[] = {{"", 0, ""},        {"f", 1, "Zg"},         {"fo", 2, "Zm8"},
                 {"foo", 3, "Zm9v"}, {"\xfb\xff", 2, "-_8"}, {"\x00\x00\x3e", 3, "AAA-"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *j = clst_json_b64url((const uint8_t *)cases[i].in, cases[i].size);
        assert_non_null(j);
        assert_true(json_is_string(j));
        assert_string_equal(json_string_value(j), cases[i].out);
        assert_int_equal(json_string_length(j), strlen(cases[i].out));
        json_decref(j);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),        cmocka_unit_test(test_to_jwk_errors),
        cmocka_unit_test(test_wycheproof_keys),  cmocka_unit_test(test_structure_errors),
        cmocka_unit_test(test_base64url_strict), cmocka_unit_test(test_rsa_rules),
        cmocka_unit_test(test_ec_rules),         cmocka_unit_test(test_json_b64url),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
