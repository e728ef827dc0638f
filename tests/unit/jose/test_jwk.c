/*
 * Unit tests for src/jose/jwk.c: JWK parse/serialize/thumbprint, the key policy (pinned
 * algorithms, RSA size and exponent, ROCA, use/key_ops, x5c) and JWK sets, plus Wycheproof's
 * json_web_key_test.json.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include <openssl/x509.h>

#include <cloister/jose.h>

#include "test_util.h"

/* ---- helpers -------------------------------------------------------------------------------- */

#define CHECK_RC(expr, want)                                                                       \
    do {                                                                                           \
        enum clst_status rc_ = (expr);                                                             \
        if (rc_ != (want)) {                                                                       \
            print_error("%s:%d: %s returned %s, expected %s (message: %s)\n", __FILE__, __LINE__,  \
                        #expr, clst_status_str(rc_), clst_status_str(want), err.msg);              \
            fail();                                                                                \
        }                                                                                          \
    } while (0)

static EVP_PKEY *
gen_ec(enum clst_curve curve)
{
    EVP_PKEY *k = NULL;
    assert_int_equal(clst_ec_generate(curve, &k), CLST_OK);
    return k;
}

/* One RSA key for the whole file: generation is slow under the sanitizers. */
static EVP_PKEY *rsa_key;

static int
setup(void **state)
{
    (void)state;
    return clst_rsa_generate(2048, &rsa_key) == CLST_OK ? 0 : -1;
}

static int
teardown(void **state)
{
    (void)state;
    EVP_PKEY_free(rsa_key);
    return 0;
}

static json_t *
load(const char *text)
{
    json_error_t jerr;
    json_t *j = json_loads(text, JSON_ALLOW_NUL, &jerr);
    if (j == NULL) {
        print_error("bad test JSON: %s\n", jerr.text);
        fail();
    }
    return j;
}

/* The public JWK JSON of a generated key, with extra members from `extra` (a JSON object). */
static json_t *
pub_json(EVP_PKEY *k, const char *extra)
{
    json_t *j = NULL;
    assert_int_equal(clst_pkey_to_jwk(k, false, &j), CLST_OK);
    if (extra != NULL) {
        json_t *e = load(extra);
        assert_int_equal(json_object_update(j, e), 0);
        json_decref(e);
    }
    return j;
}

static enum clst_status
parse_obj(json_t *j, struct clst_jwk **out, struct clst_err *err)
{
    enum clst_status rc = clst_jwk_from_json(j, out, err);
    json_decref(j);
    return rc;
}

/* A self-signed certificate for `key` (signed with `signer`). */
static X509 *
make_cert(EVP_PKEY *key, EVP_PKEY *signer)
{
    X509 *x = X509_new();
    assert_non_null(x);
    assert_int_equal(X509_set_version(x, 2), 1);
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), 7), 1);
    assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), 0));
    assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 3600));
    assert_int_equal(X509_set_pubkey(x, key), 1);
    X509_NAME *name = X509_get_subject_name(x);
    assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                                (const unsigned char *)"jose test", -1, -1, 0),
                     1);
    assert_int_equal(X509_set_issuer_name(x, name), 1);
    assert_true(X509_sign(x, signer, EVP_sha256()) > 0);
    return x;
}

static char *
b64_der(X509 *x)
{
    unsigned char *der = NULL;
    int n = i2d_X509(x, &der);
    assert_true(n > 0);
    struct clst_buf b;
    clst_buf_init(&b, 1 << 16);
    assert_int_equal(clst_b64_encode(der, (size_t)n, &b), CLST_OK);
    assert_int_equal(clst_buf_terminate(&b), CLST_OK);
    OPENSSL_free(der);
    size_t size = 0;
    return (char *)clst_buf_steal(&b, &size);
}

/* ---- construction and round trips ----------------------------------------------------------- */

static void
test_from_pkey_ec_implies_alg(void **state)
{
    (void)state;
    static const struct {
        enum clst_curve curve;
        enum clst_jws_alg alg;
        enum clst_key_kind kind;
    } cases[] = {
        {CLST_CURVE_P256, CLST_JWS_ES256, CLST_KEY_EC_P256},
        {CLST_CURVE_P384, CLST_JWS_ES384, CLST_KEY_EC_P384},
        {CLST_CURVE_P521, CLST_JWS_ES512, CLST_KEY_EC_P521},
    };
    struct clst_err err = {0};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        EVP_PKEY *k = gen_ec(cases[i].curve);
        struct clst_jwk *jwk = NULL;
        CHECK_RC(clst_jwk_from_pkey(k, "k1", CLST_JWS_ALG_NONE, &jwk, &err), CLST_OK);
        assert_int_equal(clst_jwk_alg(jwk), cases[i].alg);
        assert_int_equal(clst_jwk_kind(jwk), cases[i].kind);
        assert_string_equal(clst_jwk_kid(jwk), "k1");
        assert_true(clst_jwk_has_private(jwk));
        assert_ptr_equal(clst_jwk_pkey(jwk), k);
        clst_jwk_free(jwk);
        /* An algorithm for another curve, or RSA, does not fit. */
        enum clst_jws_alg other = cases[i].alg == CLST_JWS_ES256 ? CLST_JWS_ES384 : CLST_JWS_ES256;
        CHECK_RC(clst_jwk_from_pkey(k, NULL, other, &jwk, &err), CLST_E_INVAL);
        CHECK_RC(clst_jwk_from_pkey(k, NULL, CLST_JWS_RS256, &jwk, &err), CLST_E_INVAL);
        EVP_PKEY_free(k); /* the JWK held its own reference; the key outlived it */
    }
}

static void
test_rsa_pinning(void **state)
{
    (void)state;
    struct clst_err err = {0};
    struct clst_jwk *jwk = NULL;

    CHECK_RC(clst_jwk_from_pkey(rsa_key, NULL, CLST_JWS_ALG_NONE, &jwk, &err), CLST_OK);
    assert_int_equal(clst_jwk_alg(jwk), CLST_JWS_ALG_NONE); /* RS vs PS is not guessed */
    assert_null(clst_jwk_kid(jwk));
    CHECK_RC(clst_jwk_pin_alg(jwk, CLST_JWS_ES256, &err), CLST_E_INVAL);
    CHECK_RC(clst_jwk_pin_alg(jwk, CLST_JWS_ALG_NONE, &err), CLST_E_INVAL);
    CHECK_RC(clst_jwk_pin_alg(jwk, CLST_JWS_PS384, &err), CLST_OK);
    assert_int_equal(clst_jwk_alg(jwk), CLST_JWS_PS384);
    CHECK_RC(clst_jwk_pin_alg(jwk, CLST_JWS_PS384, &err), CLST_OK);
    CHECK_RC(clst_jwk_pin_alg(jwk, CLST_JWS_RS384, &err), CLST_E_CONFLICT);
    assert_int_equal(clst_jwk_alg(jwk), CLST_JWS_PS384);
    clst_jwk_free(jwk);

    for (enum clst_jws_alg a = CLST_JWS_RS256; a <= CLST_JWS_PS512; a++) {
        CHECK_RC(clst_jwk_from_pkey(rsa_key, "r", a, &jwk, &err), CLST_OK);
        assert_int_equal(clst_jwk_alg(jwk), a);
        clst_jwk_free(jwk);
    }
    CHECK_RC(clst_jwk_from_pkey(rsa_key, NULL, (enum clst_jws_alg)42, &jwk, &err), CLST_E_INVAL);
    CHECK_RC(clst_jwk_from_pkey(NULL, NULL, CLST_JWS_RS256, &jwk, &err), CLST_E_INVAL);
    char longkid[CLST_JWK_MAX_KID_SIZE + 2];
    memset(longkid, 'k', sizeof(longkid) - 1);
    longkid[sizeof(longkid) - 1] = 0;
    CHECK_RC(clst_jwk_from_pkey(rsa_key, longkid, CLST_JWS_RS256, &jwk, &err), CLST_E_LIMIT);
}

static void
test_json_round_trip(void **state)
{
    (void)state;
    struct clst_err err = {0};
    EVP_PKEY *ec = gen_ec(CLST_CURVE_P384);
    EVP_PKEY *keys[] = {ec, rsa_key};
    enum clst_jws_alg algs[] = {CLST_JWS_ALG_NONE, CLST_JWS_PS256};

    for (size_t i = 0; i < 2; i++) {
        struct clst_jwk *jwk = NULL, *back = NULL, *pub = NULL;
        json_t *j = NULL;
        CHECK_RC(clst_jwk_from_pkey(keys[i], "key-1", algs[i], &jwk, &err), CLST_OK);
        /* private round trip */
        assert_int_equal(clst_jwk_to_json(jwk, true, &j), CLST_OK);
        assert_non_null(json_object_get(j, "d"));
        assert_string_equal(json_string_value(json_object_get(j, "kid")), "key-1");
        assert_string_equal(json_string_value(json_object_get(j, "alg")),
                            clst_jws_alg_name(clst_jwk_alg(jwk)));
        char *text = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        CHECK_RC(clst_jwk_parse(text, strlen(text), &back, &err), CLST_OK);
        clst_wipe(text, strlen(text));
        free(text);
        assert_true(clst_jwk_has_private(back));
        assert_int_equal(clst_jwk_alg(back), clst_jwk_alg(jwk));
        assert_string_equal(clst_jwk_kid(back), "key-1");
        assert_true(clst_pkey_public_equal(clst_jwk_pkey(back), keys[i]));
        /* public round trip: no private members come out */
        assert_int_equal(clst_jwk_to_json(back, false, &j), CLST_OK);
        assert_null(json_object_get(j, "d"));
        assert_null(json_object_get(j, "p"));
        CHECK_RC(clst_jwk_from_json(j, &pub, &err), CLST_OK);
        json_decref(j);
        assert_false(clst_jwk_has_private(pub));
        assert_true(clst_pkey_public_equal(clst_jwk_pkey(pub), keys[i]));
        uint8_t t1[CLST_SHA256_SIZE], t2[CLST_SHA256_SIZE];
        assert_int_equal(clst_jwk_thumbprint(jwk, t1), CLST_OK);
        assert_int_equal(clst_jwk_thumbprint(pub, t2), CLST_OK);
        assert_memory_equal(t1, t2, sizeof(t1));
        clst_jwk_free(jwk);
        clst_jwk_free(back);
        clst_jwk_free(pub);
    }
    EVP_PKEY_free(ec);
}

static void
test_metadata_round_trip(void **state)
{
    (void)state;
    struct clst_err err = {0};
    EVP_PKEY *k = gen_ec(CLST_CURVE_P256);
    struct clst_jwk *jwk = NULL, *back = NULL;
    json_t *j = NULL;

    CHECK_RC(parse_obj(pub_json(k, "{\"kid\":\"a\",\"use\":\"sig\",\"key_ops\":[\"verify\"],"
                                   "\"alg\":\"ES256\",\"ignored\":{\"x\":1}}"),
                       &jwk, &err),
             CLST_OK);
    assert_string_equal(clst_jwk_use(jwk), "sig");
    assert_string_equal(clst_jwk_alg_member(jwk), "ES256");
    assert_true(clst_jwk_allows_op(jwk, "verify"));
    assert_false(clst_jwk_allows_op(jwk, "sign"));
    assert_false(clst_jwk_allows_op(jwk, "bogus"));
    assert_int_equal(clst_jwk_to_json(jwk, false, &j), CLST_OK);
    assert_null(json_object_get(j, "ignored")); /* unknown members are not kept */
    json_t *ops = json_object_get(j, "key_ops");
    assert_int_equal(json_array_size(ops), 1);
    assert_string_equal(json_string_value(json_array_get(ops, 0)), "verify");
    CHECK_RC(clst_jwk_from_json(j, &back, &err), CLST_OK);
    json_decref(j);
    assert_string_equal(clst_jwk_use(back), "sig");
    assert_false(clst_jwk_allows_op(back, "sign"));
    clst_jwk_free(back);
    clst_jwk_free(jwk);

    /* A non-JWS "alg" is kept but pins nothing (the key then cannot sign or verify). */
    CHECK_RC(parse_obj(pub_json(k, "{\"alg\":\"ECDH-ES\",\"use\":\"enc\"}"), &jwk, &err), CLST_OK);
    assert_int_equal(clst_jwk_alg(jwk), CLST_JWS_ALG_NONE);
    assert_string_equal(clst_jwk_alg_member(jwk), "ECDH-ES");
    assert_int_equal(clst_jwk_to_json(jwk, false, &j), CLST_OK);
    assert_string_equal(json_string_value(json_object_get(j, "alg")), "ECDH-ES");
    json_decref(j);
    clst_jwk_free(jwk);
    EVP_PKEY_free(k);
}

/* RFC 7638 §3.1: the example RSA key's thumbprint. */
static void
test_thumbprint_rfc7638(void **state)
{
    (void)state;
    static const char *jwk_text =
        "{\"kty\":\"RSA\",\"n\":"
        "\"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu"
        "1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_"
        "RN5w6Cf0h"
        "4QyQ5v-65YGjQR0_"
        "FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyr"
        "dkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-"
        "kEgU8awapJzKnqDKgw\","
        "\"e\":\"AQAB\",\"alg\":\"RS256\",\"kid\":\"2011-04-29\"}";
    struct clst_err err = {0};
    struct clst_jwk *jwk = NULL;
    uint8_t t[CLST_SHA256_SIZE];
    struct clst_buf b;

    CHECK_RC(clst_jwk_parse(jwk_text, strlen(jwk_text), &jwk, &err), CLST_OK);
    assert_int_equal(clst_jwk_thumbprint(jwk, t), CLST_OK);
    clst_buf_init(&b, 64);
    assert_int_equal(clst_b64url_encode(t, sizeof(t), &b), CLST_OK);
    assert_int_equal(clst_buf_terminate(&b), CLST_OK);
    assert_string_equal((const char *)b.data, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    clst_buf_cleanup(&b);
    clst_jwk_free(jwk);
}

/* ---- rejections ----------------------------------------------------------------------------- */

static void
test_member_rejections(void **state)
{
    (void)state;
    struct clst_err err = {0};
    struct clst_jwk *jwk = NULL;
    EVP_PKEY *p256 = gen_ec(CLST_CURVE_P256);
    static const struct {
        const char *extra;
        enum clst_status want;
    } cases[] = {
        {"{\"alg\":\"ES384\"}", CLST_E_MALFORMED}, /* curve mismatch */
        {"{\"alg\":\"ES512\"}", CLST_E_MALFORMED},
        {"{\"alg\":\"RS256\"}", CLST_E_MALFORMED}, /* RSA algorithm on an EC key */
        {"{\"alg\":\"PS256\"}", CLST_E_MALFORMED},
        {"{\"alg\":7}", CLST_E_MALFORMED},
        {"{\"kid\":7}", CLST_E_MALFORMED},
        {"{\"kid\":null}", CLST_E_MALFORMED},
        {"{\"kid\":\"a\\u0000b\"}", CLST_E_MALFORMED},
        {"{\"use\":[\"sig\"]}", CLST_E_MALFORMED},
        {"{\"key_ops\":\"sign\"}", CLST_E_MALFORMED},
        {"{\"key_ops\":[\"sign\",\"sign\"]}", CLST_E_MALFORMED},
        {"{\"key_ops\":[\"sign, verify\"]}", CLST_E_MALFORMED},
        {"{\"key_ops\":[1]}", CLST_E_MALFORMED},
        {"{\"key_ops\":[\"sign\",\"verify\",\"encrypt\",\"decrypt\",\"wrapKey\",\"unwrapKey\","
         "\"deriveKey\",\"deriveBits\",\"sign\"]}",
         CLST_E_MALFORMED},
        {"{\"use\":\"sig\",\"key_ops\":[\"encrypt\"]}", CLST_E_MALFORMED},
        {"{\"use\":\"enc\",\"key_ops\":[\"verify\"]}", CLST_E_MALFORMED},
        {"{\"kty\":\"RSA\"}", CLST_E_MALFORMED}, /* RSA without n/e (Wycheproof wrong_kty) */
        {"{\"kty\":\"oct\",\"k\":\"AAAA\"}", CLST_E_DENIED},
        {"{\"kty\":\"OKP\"}", CLST_E_DENIED},
        {"{\"kty\":1}", CLST_E_MALFORMED},
        {"{\"crv\":\"P-384\"}", CLST_E_MALFORMED}, /* coordinates of the wrong size */
        {"{\"x5c\":[]}", CLST_E_MALFORMED},
        {"{\"x5c\":\"MIIB\"}", CLST_E_MALFORMED},
        {"{\"x5c\":[1]}", CLST_E_MALFORMED},
        {"{\"x5c\":[\"not base64!\"]}", CLST_E_MALFORMED},
        {"{\"x5c\":[\"AAAA\"]}", CLST_E_MALFORMED}, /* base64 but not a certificate */
        {"{\"x5c\":[\"MIIB\\n\"]}", CLST_E_MALFORMED},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        err.msg[0] = 0;
        enum clst_status rc = parse_obj(pub_json(p256, cases[i].extra), &jwk, &err);
        if (rc != cases[i].want) {
            print_error("case %zu (%s): %s, expected %s: %s\n", i, cases[i].extra,
                        clst_status_str(rc), clst_status_str(cases[i].want), err.msg);
            fail();
        }
        assert_true(err.msg[0] != 0);
        /* The same status without an error object (found by fuzzing: a NULL err once turned a
         * failure into CLST_OK). */
        rc = parse_obj(pub_json(p256, cases[i].extra), &jwk, NULL);
        if (rc != cases[i].want) {
            fail_msg("case %zu (%s) without err: %s", i, cases[i].extra, clst_status_str(rc));
        }
    }
    /* kid size limit */
    char extra[CLST_JWK_MAX_KID_SIZE + 32];
    int n = snprintf(extra, sizeof(extra), "{\"kid\":\"%0*d\"}", CLST_JWK_MAX_KID_SIZE + 1, 0);
    assert_true(n > 0 && (size_t)n < sizeof(extra));
    CHECK_RC(parse_obj(pub_json(p256, extra), &jwk, &err), CLST_E_LIMIT);
    n = snprintf(extra, sizeof(extra), "{\"kid\":\"%0*d\"}", CLST_JWK_MAX_KID_SIZE, 0);
    CHECK_RC(parse_obj(pub_json(p256, extra), &jwk, &err), CLST_OK);
    clst_jwk_free(jwk);

    /* Not JSON, not an object, duplicate members, too large. */
    CHECK_RC(clst_jwk_parse("{\"kty\":", 7, &jwk, &err), CLST_E_MALFORMED);
    CHECK_RC(clst_jwk_parse("[1]", 3, &jwk, &err), CLST_E_MALFORMED);
    CHECK_RC(clst_jwk_parse("", 0, &jwk, &err), CLST_E_MALFORMED);
    static const char dup[] = "{\"kty\":\"EC\",\"kty\":\"RSA\"}";
    CHECK_RC(clst_jwk_parse(dup, strlen(dup), &jwk, &err), CLST_E_MALFORMED);
    CHECK_RC(clst_jwk_parse(dup, CLST_JWK_MAX_SIZE + 1, &jwk, &err), CLST_E_LIMIT);
    CHECK_RC(clst_jwk_parse(NULL, 0, &jwk, &err), CLST_E_INVAL);
    CHECK_RC(clst_jwk_from_json(NULL, &jwk, &err), CLST_E_INVAL);
    EVP_PKEY_free(p256);
}

/* Every proper prefix of a valid JWK's text must be rejected (and not crash). */
static void
test_truncations(void **state)
{
    (void)state;
    struct clst_err err = {0};
    json_t *j = NULL;
    struct clst_jwk *jwk = NULL;
    EVP_PKEY *k = gen_ec(CLST_CURVE_P256);

    assert_int_equal(clst_pkey_to_jwk(k, true, &j), CLST_OK);
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    size_t len = strlen(text);
    CHECK_RC(clst_jwk_parse(text, len, &jwk, &err), CLST_OK);
    clst_jwk_free(jwk);
    for (size_t i = 0; i < len; i++) {
        assert_int_not_equal(clst_jwk_parse(text, i, &jwk, &err), CLST_OK);
    }
    clst_wipe(text, len);
    free(text);
    EVP_PKEY_free(k);
}

/* The RSA policy: size, exponent and the ROCA fingerprint (keys from Wycheproof's
 * json_web_key_test.json). */
static json_t *
wycheproof_key(const char *comment, const char *set)
{
    json_t *root = tu_load_json("wycheproof/json_web_key_test.json");
    assert_non_null(root);
    json_t *groups = json_object_get(root, "testGroups");
    for (size_t i = 0; i < json_array_size(groups); i++) {
        json_t *g = json_array_get(groups, i);
        if (strcmp(json_string_value(json_object_get(g, "comment")), comment) == 0) {
            json_t *k = json_array_get(json_object_get(json_object_get(g, set), "keys"), 0);
            json_t *copy = json_deep_copy(k);
            json_decref(root);
            return copy;
        }
    }
    json_decref(root);
    fail_msg("no group %s", comment);
    return NULL;
}

static void
test_rsa_policy(void **state)
{
    (void)state;
    struct clst_err err = {0};
    struct clst_jwk *jwk = NULL;

    CHECK_RC(parse_obj(wycheproof_key("jws_rsa_roca_key", "public"), &jwk, &err), CLST_E_DENIED);
    assert_non_null(strstr(err.msg, "ROCA"));
    CHECK_RC(parse_obj(wycheproof_key("jws_rsa_roca_key", "private"), &jwk, &err), CLST_E_DENIED);
    /* 1024 bits: refused by us or already by clst_pkey_from_jwk; either way not OK. */
    assert_int_not_equal(parse_obj(wycheproof_key("keysize_too_small", "public"), &jwk, &err),
                         CLST_OK);
    assert_int_not_equal(parse_obj(wycheproof_key("exponentOne", "public"), &jwk, &err), CLST_OK);
    /* A good 2048-bit key with the same metadata passes. */
    CHECK_RC(parse_obj(wycheproof_key("rs256", "public"), &jwk, &err), CLST_OK);
    assert_int_equal(clst_jwk_alg(jwk), CLST_JWS_RS256);
    clst_jwk_free(jwk);

    /* The ROCA key wrapped directly as an EVP_PKEY is refused by clst_jwk_from_pkey too. */
    json_t *roca = wycheproof_key("jws_rsa_roca_key", "public");
    EVP_PKEY *pk = NULL;
    if (clst_pkey_from_jwk(roca, &pk, &err) == CLST_OK) {
        CHECK_RC(clst_jwk_from_pkey(pk, NULL, CLST_JWS_RS256, &jwk, &err), CLST_E_DENIED);
        EVP_PKEY_free(pk);
    }
    json_decref(roca);
}

static void
test_x5c(void **state)
{
    (void)state;
    struct clst_err err = {0};
    EVP_PKEY *k = gen_ec(CLST_CURVE_P256), *other = gen_ec(CLST_CURVE_P256);
    X509 *leaf = make_cert(k, other), *ca = make_cert(other, other), *wrong = make_cert(other, k);
    struct clst_jwk *jwk = NULL, *back = NULL;
    STACK_OF(X509) *chain = sk_X509_new_null(), *got = NULL;
    json_t *j = NULL;

    assert_non_null(chain);
    assert_true(sk_X509_push(chain, leaf) > 0);
    assert_true(sk_X509_push(chain, ca) > 0);
    CHECK_RC(clst_jwk_from_pkey(k, "with-chain", CLST_JWS_ALG_NONE, &jwk, &err), CLST_OK);
    CHECK_RC(clst_jwk_x5c_certs(jwk, &got, &err), CLST_E_NOTFOUND);
    CHECK_RC(clst_jwk_set_x5c(jwk, chain, &err), CLST_OK);
    assert_int_equal(clst_jwk_x5c_count(jwk), 2);
    assert_non_null(clst_jwk_x5c_b64(jwk, 1));
    assert_null(clst_jwk_x5c_b64(jwk, 2));
    assert_int_equal(clst_jwk_to_json(jwk, false, &j), CLST_OK);
    assert_int_equal(json_array_size(json_object_get(j, "x5c")), 2);

    /* x5t#S256 of the leaf: right value accepted, wrong value refused. */
    unsigned char *der = NULL;
    int der_size = i2d_X509(leaf, &der);
    assert_true(der_size > 0);
    uint8_t md[CLST_SHA256_SIZE];
    assert_int_equal(clst_sha256(der, (size_t)der_size, md), CLST_OK);
    OPENSSL_free(der);
    struct clst_buf t;
    clst_buf_init(&t, 64);
    assert_int_equal(clst_b64url_encode(md, sizeof(md), &t), CLST_OK);
    assert_int_equal(clst_buf_terminate(&t), CLST_OK);
    assert_int_equal(json_object_set_new(j, "x5t#S256", json_string((const char *)t.data)), 0);
    CHECK_RC(clst_jwk_from_json(j, &back, &err), CLST_OK);
    CHECK_RC(clst_jwk_x5c_certs(back, &got, &err), CLST_OK);
    assert_int_equal(sk_X509_num(got), 2);
    assert_int_equal(X509_cmp(sk_X509_value(got, 0), leaf), 0);
    assert_int_equal(X509_cmp(sk_X509_value(got, 1), ca), 0);
    sk_X509_pop_free(got, X509_free);
    clst_jwk_free(back);
    ((char *)t.data)[0] = ((char *)t.data)[0] == 'A' ? 'B' : 'A';
    assert_int_equal(json_object_set_new(j, "x5t#S256", json_string((const char *)t.data)), 0);
    CHECK_RC(clst_jwk_from_json(j, &back, &err), CLST_E_MALFORMED);
    clst_buf_cleanup(&t);
    assert_int_equal(json_object_del(j, "x5t#S256"), 0);

    /* The leaf must hold the JWK's key, in a parsed JWK and in set_x5c. */
    char *wrong_b64 = b64_der(wrong);
    assert_int_equal(json_array_set_new(json_object_get(j, "x5c"), 0, json_string(wrong_b64)), 0);
    CHECK_RC(clst_jwk_from_json(j, &back, &err), CLST_E_MALFORMED);
    free(wrong_b64);
    json_decref(j);
    STACK_OF(X509) *bad = sk_X509_new_null();
    assert_true(sk_X509_push(bad, wrong) > 0);
    CHECK_RC(clst_jwk_set_x5c(jwk, bad, &err), CLST_E_INVAL);
    assert_int_equal(clst_jwk_x5c_count(jwk), 2); /* unchanged on failure */
    sk_X509_free(bad);
    STACK_OF(X509) *empty = sk_X509_new_null();
    CHECK_RC(clst_jwk_set_x5c(jwk, empty, &err), CLST_E_INVAL);
    sk_X509_free(empty);

    /* More than CLST_JWK_MAX_X5C certificates. */
    assert_int_equal(clst_jwk_to_json(jwk, false, &j), CLST_OK);
    json_t *arr = json_object_get(j, "x5c");
    while (json_array_size(arr) <= CLST_JWK_MAX_X5C) {
        assert_int_equal(json_array_append(arr, json_array_get(arr, 1)), 0);
    }
    CHECK_RC(clst_jwk_from_json(j, &back, &err), CLST_E_LIMIT);
    json_decref(j);

    clst_jwk_free(jwk);
    sk_X509_pop_free(chain, X509_free);
    X509_free(wrong);
    EVP_PKEY_free(k);
    EVP_PKEY_free(other);
}

/* ---- key sets ------------------------------------------------------------------------------- */

static char *
set_text(json_t **keys, size_t n)
{
    json_t *set = json_object(), *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(json_array_append(arr, keys[i]), 0);
    }
    assert_int_equal(json_object_set_new(set, "keys", arr), 0);
    char *text = json_dumps(set, JSON_COMPACT);
    json_decref(set);
    return text;
}

static void
test_jwks(void **state)
{
    (void)state;
    struct clst_err err = {0};
    struct clst_jwks *set = NULL;
    EVP_PKEY *a = gen_ec(CLST_CURVE_P256), *b = gen_ec(CLST_CURVE_P384);
    json_t *keys[4];

    keys[0] = pub_json(a, "{\"kid\":\"a\"}");
    keys[1] = load("{\"kty\":\"oct\",\"k\":\"AAAA\",\"kid\":\"sym\"}");
    keys[2] = pub_json(b, "{\"kid\":\"b\"}");
    keys[3] = load("{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"AAAA\"}");
    char *text = set_text(keys, 4);
    CHECK_RC(clst_jwks_parse(text, strlen(text), &set, &err), CLST_OK);
    assert_int_equal(clst_jwks_count(set), 2);
    assert_int_equal(clst_jwks_skipped(set), 2);
    assert_string_equal(clst_jwk_kid(clst_jwks_find(set, "b")), "b");
    assert_null(clst_jwks_find(set, "sym"));
    assert_null(clst_jwks_find(set, "c"));
    assert_null(clst_jwks_get(set, 2));
    json_t *out = NULL;
    assert_int_equal(clst_jwks_to_json(set, false, &out), CLST_OK);
    assert_int_equal(json_array_size(json_object_get(out, "keys")), 2);
    json_decref(out);
    free(text);

    /* add: duplicate kid and mixing public with private are conflicts. */
    struct clst_jwk *dupk = NULL, *priv = NULL, *nokid = NULL;
    CHECK_RC(clst_jwk_from_pkey(a, "a", CLST_JWS_ALG_NONE, &priv, &err), CLST_OK);
    CHECK_RC(clst_jwks_add(set, priv, &err), CLST_E_CONFLICT);
    clst_jwk_free(priv);
    json_t *pj = pub_json(b, "{\"kid\":\"a\"}");
    CHECK_RC(clst_jwk_from_json(pj, &dupk, &err), CLST_OK);
    json_decref(pj);
    CHECK_RC(clst_jwks_add(set, dupk, &err), CLST_E_CONFLICT);
    clst_jwk_free(dupk);
    pj = pub_json(b, NULL);
    CHECK_RC(clst_jwk_from_json(pj, &nokid, &err), CLST_OK);
    json_decref(pj);
    CHECK_RC(clst_jwks_add(set, nokid, &err), CLST_OK);
    assert_int_equal(clst_jwks_count(set), 3);
    CHECK_RC(clst_jwks_add(set, nokid, &err), CLST_E_CONFLICT);
    clst_jwks_free(set);

    /* Parse failures: duplicate kid, a broken supported key, mixing, wrong shapes. */
    json_t *dup[2] = {keys[0], pub_json(b, "{\"kid\":\"a\"}")};
    text = set_text(dup, 2);
    CHECK_RC(clst_jwks_parse(text, strlen(text), &set, &err), CLST_E_MALFORMED);
    assert_non_null(strstr(err.msg, "kid"));
    free(text);
    json_decref(dup[1]);

    json_t *broken[2] = {keys[0], pub_json(b, "{\"kid\":\"c\",\"alg\":\"ES256\"}")};
    text = set_text(broken, 2);
    CHECK_RC(clst_jwks_parse(text, strlen(text), &set, &err), CLST_E_MALFORMED);
    assert_non_null(strstr(err.msg, "keys\"[1]"));
    free(text);
    json_decref(broken[1]);

    json_t *privj = NULL;
    assert_int_equal(clst_pkey_to_jwk(b, true, &privj), CLST_OK);
    json_t *mixed[2] = {keys[0], privj};
    text = set_text(mixed, 2);
    CHECK_RC(clst_jwks_parse(text, strlen(text), &set, &err), CLST_E_MALFORMED);
    clst_wipe(text, strlen(text));
    free(text);
    json_decref(privj);

    static const char *const shapes[] = {
        "{}",
        "{\"keys\":{}}",
        "{\"keys\":[1]}",
        "[]",
        "{\"keys\":[{\"kid\":\"x\"}]}",
        "{\"keys\":[],\"keys\":[]}",
    };
    for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
        CHECK_RC(clst_jwks_parse(shapes[i], strlen(shapes[i]), &set, &err), CLST_E_MALFORMED);
    }
    CHECK_RC(clst_jwks_parse("{\"keys\":[]}", 11, &set, &err), CLST_OK);
    assert_int_equal(clst_jwks_count(set), 0);
    clst_jwks_free(set);

    /* More than CLST_JWKS_MAX_KEYS members (even skippable ones) is a limit. */
    json_t *many[CLST_JWKS_MAX_KEYS + 1];
    for (size_t i = 0; i < CLST_JWKS_MAX_KEYS + 1; i++) {
        many[i] = keys[1];
    }
    text = set_text(many, CLST_JWKS_MAX_KEYS + 1);
    CHECK_RC(clst_jwks_parse(text, strlen(text), &set, &err), CLST_E_LIMIT);
    free(text);
    text = set_text(many, CLST_JWKS_MAX_KEYS);
    CHECK_RC(clst_jwks_parse(text, strlen(text), &set, &err), CLST_OK);
    assert_int_equal(clst_jwks_skipped(set), CLST_JWKS_MAX_KEYS);
    clst_jwks_free(set);
    free(text);
    CHECK_RC(clst_jwks_parse("{}", CLST_JWKS_MAX_SIZE + 1, &set, &err), CLST_E_LIMIT);

    for (size_t i = 0; i < 4; i++) {
        json_decref(keys[i]);
    }
    EVP_PKEY_free(a);
    EVP_PKEY_free(b);
}

/* ---- Wycheproof json_web_key_test.json ------------------------------------------------------ */

/*
 * Each group gives a key set ("public" when present, else "private") and JWS tokens. A token is
 * accepted when the set parses and clst_jws_verify_jwks succeeds. Every "invalid" case must be
 * rejected; every "valid" case must be accepted, except the 4 valid cases whose tokens use HMAC
 * (tcId 2, 13, 14, 15: HS256/384/512 with "oct" keys), which cannot apply: Cloister never
 * accepts HMAC or symmetric keys for JWS. Those are counted and asserted to be rejected. The
 * file has no "acceptable" cases (any would fail this test).
 */
static void
test_wycheproof_jwk(void **state)
{
    (void)state;
    json_t *root = tu_load_json("wycheproof/json_web_key_test.json");
    assert_non_null(root);
    json_t *groups = json_object_get(root, "testGroups");
    size_t valid_ok = 0, valid_hmac_na = 0, invalid_rejected = 0, total = 0;

    for (size_t gi = 0; gi < json_array_size(groups); gi++) {
        json_t *g = json_array_get(groups, gi);
        json_t *ks = json_object_get(g, "public");
        if (ks == NULL) {
            ks = json_object_get(g, "private");
        }
        struct clst_err err = {0};
        struct clst_jwks *set = NULL;
        enum clst_status prc = clst_jwks_from_json(ks, &set, &err);
        json_t *tests = json_object_get(g, "tests");
        for (size_t ti = 0; ti < json_array_size(tests); ti++) {
            json_t *t = json_array_get(tests, ti);
            const char *jws = json_string_value(json_object_get(t, "jws"));
            const char *result = json_string_value(json_object_get(t, "result"));
            json_int_t tc = json_integer_value(json_object_get(t, "tcId"));
            struct clst_err verr = {0};
            bool ok = false;
            total++;
            if (prc == CLST_OK) {
                struct clst_buf payload;
                clst_buf_init(&payload, CLST_JWS_MAX_SIZE);
                ok = clst_jws_verify_jwks(jws, strlen(jws), set, &payload, NULL, NULL, &verr) ==
                     CLST_OK;
                clst_buf_cleanup(&payload);
            }
            if (strcmp(result, "invalid") == 0) {
                if (ok) {
                    fail_msg("tcId %lld: invalid case accepted", (long long)tc);
                }
                invalid_rejected++;
            } else if (strcmp(result, "valid") == 0) {
                json_t *hdr = NULL;
                assert_int_equal(clst_jws_header_unverified(jws, strlen(jws), &hdr, NULL), CLST_OK);
                const char *alg = json_string_value(json_object_get(hdr, "alg"));
                bool hmac = alg != NULL && strncmp(alg, "HS", 2) == 0;
                json_decref(hdr);
                if (hmac) {
                    assert_false(ok);
                    valid_hmac_na++;
                } else if (!ok) {
                    fail_msg("tcId %lld: valid case rejected: %s / %s", (long long)tc, err.msg,
                             verr.msg);
                } else {
                    valid_ok++;
                }
            } else {
                fail_msg("tcId %lld: unexpected result %s", (long long)tc, result);
            }
        }
        clst_jwks_free(set);
    }
    json_decref(root);
    assert_int_equal(total, 26);
    assert_int_equal(valid_ok, 1);
    assert_int_equal(valid_hmac_na, 4);
    assert_int_equal(invalid_rejected, 21);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_from_pkey_ec_implies_alg),
        cmocka_unit_test(test_rsa_pinning),
        cmocka_unit_test(test_json_round_trip),
        cmocka_unit_test(test_metadata_round_trip),
        cmocka_unit_test(test_thumbprint_rfc7638),
        cmocka_unit_test(test_member_rejections),
        cmocka_unit_test(test_truncations),
        cmocka_unit_test(test_rsa_policy),
        cmocka_unit_test(test_x5c),
        cmocka_unit_test(test_jwks),
        cmocka_unit_test(test_wycheproof_jwk),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
