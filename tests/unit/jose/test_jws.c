/*
 * Unit tests for src/jose/jws.c: compact JWS sign/verify for the nine RS/PS/ES algorithms, the
 * algorithm policy (none, HMAC, alg/key mismatch, crit, b64), strict encoding, tampering and
 * truncation, key selection from a set, interoperability with plain OpenSSL EVP in both
 * directions, and Wycheproof's json_web_signature_test.json.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include <cjose/cjose.h>
#include <openssl/ec.h>
#include <openssl/rsa.h>

#include <cloister/jose.h>

#include "test_util.h"

#define CHECK_RC(expr, want)                                                                       \
    do {                                                                                           \
        enum clst_status rc_ = (expr);                                                             \
        if (rc_ != (want)) {                                                                       \
            print_error("%s:%d: %s returned %s, expected %s (message: %s)\n", __FILE__, __LINE__,  \
                        #expr, clst_status_str(rc_), clst_status_str(want), err.msg);              \
            fail();                                                                                \
        }                                                                                          \
    } while (0)

/* ---- fixtures ------------------------------------------------------------------------------- */

static EVP_PKEY *rsa_key, *rsa_key2, *p256, *p256b, *p384, *p521;

static int
setup(void **state)
{
    (void)state;
    if (clst_rsa_generate(2048, &rsa_key) != CLST_OK ||
        clst_rsa_generate(2048, &rsa_key2) != CLST_OK ||
        clst_ec_generate(CLST_CURVE_P256, &p256) != CLST_OK ||
        clst_ec_generate(CLST_CURVE_P256, &p256b) != CLST_OK ||
        clst_ec_generate(CLST_CURVE_P384, &p384) != CLST_OK ||
        clst_ec_generate(CLST_CURVE_P521, &p521) != CLST_OK) {
        return -1;
    }
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    EVP_PKEY_free(rsa_key);
    EVP_PKEY_free(rsa_key2);
    EVP_PKEY_free(p256);
    EVP_PKEY_free(p256b);
    EVP_PKEY_free(p384);
    EVP_PKEY_free(p521);
    return 0;
}

static const enum clst_jws_alg all_algs[] = {
    CLST_JWS_RS256, CLST_JWS_RS384, CLST_JWS_RS512, CLST_JWS_PS256, CLST_JWS_PS384,
    CLST_JWS_PS512, CLST_JWS_ES256, CLST_JWS_ES384, CLST_JWS_ES512,
};
#define ALL_ALGS (sizeof(all_algs) / sizeof(all_algs[0]))

static EVP_PKEY *
key_for(enum clst_jws_alg a)
{
    switch (a) {
    case CLST_JWS_ES256:
        return p256;
    case CLST_JWS_ES384:
        return p384;
    case CLST_JWS_ES512:
        return p521;
    default:
        return rsa_key;
    }
}

static struct clst_jwk *
jwk_of(EVP_PKEY *k, const char *kid, enum clst_jws_alg a)
{
    struct clst_jwk *jwk = NULL;
    struct clst_err err = {0};
    CHECK_RC(clst_jwk_from_pkey(k, kid, a, &jwk, &err), CLST_OK);
    return jwk;
}

/* A public-only JWK of k (what a verifier has). */
static struct clst_jwk *
pub_jwk_of(EVP_PKEY *k, const char *kid, enum clst_jws_alg a)
{
    EVP_PKEY *pub = NULL;
    assert_int_equal(clst_pkey_public_copy(k, &pub), CLST_OK);
    struct clst_jwk *jwk = jwk_of(pub, kid, a);
    EVP_PKEY_free(pub);
    assert_false(clst_jwk_has_private(jwk));
    return jwk;
}

static enum clst_status
verify(const char *token, const struct clst_jwk *jwk, struct clst_buf *payload, json_t **hdr,
       struct clst_err *err)
{
    return clst_jws_verify(token, strlen(token), jwk, payload, hdr, err);
}

static enum clst_status
verify_quick(const char *token, size_t size, const struct clst_jwk *jwk, struct clst_err *err)
{
    struct clst_buf payload;
    clst_buf_init(&payload, CLST_JWS_MAX_SIZE);
    enum clst_status rc = clst_jws_verify(token, size, jwk, &payload, NULL, err);
    clst_buf_cleanup(&payload);
    return rc;
}

/* ---- hand-made tokens with plain OpenSSL ---------------------------------------------------- */

static char *
dupstr(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    assert_non_null(d);
    memcpy(d, s, n);
    return d;
}

static char *
b64u(const void *data, size_t size)
{
    struct clst_buf b;
    clst_buf_init(&b, 1u << 20);
    assert_int_equal(clst_b64url_encode(data, size, &b), CLST_OK);
    assert_int_equal(clst_buf_terminate(&b), CLST_OK);
    size_t n = 0;
    char *s = (char *)clst_buf_steal(&b, &n);
    if (s == NULL) {
        s = calloc(1, 1);
    }
    return s;
}

static char *
join3(const char *a, const char *b, const char *c)
{
    size_t n = strlen(a) + strlen(b) + (c != NULL ? strlen(c) + 1 : 0) + 2;
    char *s = malloc(n);
    assert_non_null(s);
    if (c != NULL) {
        snprintf(s, n, "%s.%s.%s", a, b, c);
    } else {
        snprintf(s, n, "%s.%s", a, b);
    }
    return s;
}

static bool
is_pss(enum clst_jws_alg a)
{
    return a == CLST_JWS_PS256 || a == CLST_JWS_PS384 || a == CLST_JWS_PS512;
}

static size_t
coord_size(enum clst_jws_alg a)
{
    return a == CLST_JWS_ES256 ? 32 : a == CLST_JWS_ES384 ? 48 : a == CLST_JWS_ES512 ? 66 : 0;
}

/* Signs `input` with EVP as algorithm `a` prescribes (JWS encoding of the signature). `md_alg`
 * chooses the hash (normally a itself). */
static uint8_t *
evp_sign(EVP_PKEY *k, enum clst_jws_alg a, enum clst_jws_alg md_alg, const char *input,
         size_t *out_size)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    assert_non_null(ctx);
    assert_int_equal(
        EVP_DigestSignInit(ctx, &pctx, clst_hash_md(clst_jws_alg_hash(md_alg)), NULL, k), 1);
    if (is_pss(a)) {
        assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING), 1);
        assert_int_equal(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST), 1);
    } else if (coord_size(a) == 0) {
        assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING), 1);
    }
    size_t len = 0;
    assert_int_equal(EVP_DigestSign(ctx, NULL, &len, (const uint8_t *)input, strlen(input)), 1);
    uint8_t *sig = malloc(len);
    assert_non_null(sig);
    assert_int_equal(EVP_DigestSign(ctx, sig, &len, (const uint8_t *)input, strlen(input)), 1);
    EVP_MD_CTX_free(ctx);
    size_t cs = coord_size(a);
    if (cs == 0) {
        *out_size = len;
        return sig;
    }
    /* DER ECDSA-Sig-Value -> r || s, each coord_size bytes (RFC 7518 §3.4). */
    const unsigned char *p = sig;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)len);
    assert_non_null(es);
    const BIGNUM *r = NULL, *s = NULL;
    ECDSA_SIG_get0(es, &r, &s);
    uint8_t *raw = malloc(2 * cs);
    assert_non_null(raw);
    assert_int_equal(BN_bn2binpad(r, raw, (int)cs), (int)cs);
    assert_int_equal(BN_bn2binpad(s, raw + cs, (int)cs), (int)cs);
    ECDSA_SIG_free(es);
    free(sig);
    *out_size = 2 * cs;
    return raw;
}

static bool
evp_verify(EVP_PKEY *k, enum clst_jws_alg a, const char *input, size_t input_size,
           const uint8_t *sig, size_t sig_size)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    unsigned char *der = NULL;
    int der_size = 0;
    bool ok = false;

    assert_non_null(ctx);
    assert_int_equal(EVP_DigestVerifyInit(ctx, &pctx, clst_hash_md(clst_jws_alg_hash(a)), NULL, k),
                     1);
    size_t cs = coord_size(a);
    if (is_pss(a)) {
        assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING), 1);
        assert_int_equal(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST), 1);
    }
    if (cs != 0) {
        if (sig_size != 2 * cs) {
            goto out;
        }
        ECDSA_SIG *es = ECDSA_SIG_new();
        BIGNUM *r = BN_bin2bn(sig, (int)cs, NULL), *s = BN_bin2bn(sig + cs, (int)cs, NULL);
        assert_non_null(es);
        assert_int_equal(ECDSA_SIG_set0(es, r, s), 1);
        der_size = i2d_ECDSA_SIG(es, &der);
        ECDSA_SIG_free(es);
        assert_true(der_size > 0);
        sig = der;
        sig_size = (size_t)der_size;
    }
    ok = EVP_DigestVerify(ctx, sig, sig_size, (const uint8_t *)input, input_size) == 1;
out:
    OPENSSL_free(der);
    EVP_MD_CTX_free(ctx);
    return ok;
}

/* A token with header `hdr_json` and `payload`, signed with EVP by k as algorithm a (hash of
 * md_alg). */
static char *
craft_signed(EVP_PKEY *k, enum clst_jws_alg a, enum clst_jws_alg md_alg, const char *hdr_json,
             const char *payload)
{
    char *h = b64u(hdr_json, strlen(hdr_json));
    char *p = b64u(payload, strlen(payload));
    char *input = join3(h, p, NULL);
    size_t sig_size = 0;
    uint8_t *sig = evp_sign(k, a, md_alg, input, &sig_size);
    char *s = b64u(sig, sig_size);
    char *token = join3(h, p, s);
    free(h);
    free(p);
    free(input);
    free(sig);
    free(s);
    return token;
}

/* A token with arbitrary signature bytes. */
static char *
craft_raw(const char *hdr_json, const char *payload, const uint8_t *sig, size_t sig_size)
{
    char *h = b64u(hdr_json, strlen(hdr_json));
    char *p = b64u(payload, strlen(payload));
    char *s = b64u(sig, sig_size);
    char *token = join3(h, p, s);
    free(h);
    free(p);
    free(s);
    return token;
}

/* Splits a token copy into its three segments (in place). */
static void
split3(char *token, char **h, char **p, char **s)
{
    *h = token;
    *p = strchr(token, '.');
    assert_non_null(*p);
    **p = 0;
    (*p)++;
    *s = strchr(*p, '.');
    assert_non_null(*s);
    **s = 0;
    (*s)++;
}

static uint8_t *
b64u_decode(const char *s, size_t *size)
{
    struct clst_buf b;
    clst_buf_init(&b, 1u << 20);
    assert_int_equal(clst_b64url_decode(s, strlen(s), &b), CLST_OK);
    uint8_t *d = clst_buf_steal(&b, size);
    return d != NULL ? d : calloc(1, 1);
}

/* ---- round trips and interoperability ------------------------------------------------------- */

static void
test_round_trip_all_algs(void **state)
{
    (void)state;
    struct clst_err err = {0};
    uint8_t binary[256];
    for (size_t i = 0; i < sizeof(binary); i++) {
        binary[i] = (uint8_t)i;
    }
    static char big[4096];
    memset(big, 'x', sizeof(big));
    const struct {
        const void *data;
        size_t size;
    } payloads[] = {{"", 0}, {"a", 1}, {binary, sizeof(binary)}, {big, sizeof(big)}};
    json_t *extra = json_pack("{s:s, s:s}", "typ", "JOSE", "jku", "https://issuer.example/certs");
    assert_non_null(extra);

    for (size_t ai = 0; ai < ALL_ALGS; ai++) {
        enum clst_jws_alg a = all_algs[ai];
        struct clst_jwk *signer = jwk_of(key_for(a), "k-1", a);
        struct clst_jwk *verifier = pub_jwk_of(key_for(a), "k-1", a);
        for (size_t pi = 0; pi < sizeof(payloads) / sizeof(payloads[0]); pi++) {
            char *token = NULL;
            CHECK_RC(
                clst_jws_sign(signer, extra, payloads[pi].data, payloads[pi].size, &token, &err),
                CLST_OK);
            struct clst_buf out;
            json_t *hdr = NULL;
            clst_buf_init(&out, CLST_JWS_MAX_SIZE);
            CHECK_RC(verify(token, verifier, &out, &hdr, &err), CLST_OK);
            assert_int_equal(out.size, payloads[pi].size);
            if (out.size > 0) {
                assert_memory_equal(out.data, payloads[pi].data, out.size);
            }
            assert_string_equal(json_string_value(json_object_get(hdr, "alg")),
                                clst_jws_alg_name(a));
            assert_string_equal(json_string_value(json_object_get(hdr, "kid")), "k-1");
            assert_string_equal(json_string_value(json_object_get(hdr, "typ")), "JOSE");
            json_decref(hdr);
            clst_buf_cleanup(&out);
            /* The private JWK verifies too. */
            CHECK_RC(verify_quick(token, strlen(token), signer, &err), CLST_OK);

            /* Interop: plain EVP verifies what we signed. */
            char *copy = dupstr(token), *h, *p, *s;
            split3(copy, &h, &p, &s);
            char *input = join3(h, p, NULL);
            size_t sig_size = 0;
            uint8_t *sig = b64u_decode(s, &sig_size);
            assert_true(evp_verify(key_for(a), a, input, strlen(input), sig, sig_size));
            input[0] ^= 1;
            assert_false(evp_verify(key_for(a), a, input, strlen(input), sig, sig_size));
            free(sig);
            free(input);
            free(copy);
            free(token);
        }
        clst_jwk_free(signer);
        clst_jwk_free(verifier);
    }
    json_decref(extra);
}

/* Interop: tokens built by hand with plain EVP verify with clst_jws_verify. */
static void
test_evp_built_tokens(void **state)
{
    (void)state;
    struct clst_err err = {0};
    for (size_t ai = 0; ai < ALL_ALGS; ai++) {
        enum clst_jws_alg a = all_algs[ai];
        char hdr[64];
        snprintf(hdr, sizeof(hdr), "{\"alg\":\"%s\",\"kid\":\"evp\"}", clst_jws_alg_name(a));
        char *token = craft_signed(key_for(a), a, a, hdr, "{\"hello\":\"world\"}");
        struct clst_jwk *jwk = pub_jwk_of(key_for(a), "evp", a);
        struct clst_buf out;
        clst_buf_init(&out, 1024);
        CHECK_RC(verify(token, jwk, &out, NULL, &err), CLST_OK);
        assert_int_equal(out.size, strlen("{\"hello\":\"world\"}"));
        assert_memory_equal(out.data, "{\"hello\":\"world\"}", out.size);
        clst_buf_cleanup(&out);
        free(token);
        /* The same header signed by another key of the same kind does not verify. */
        EVP_PKEY *other = coord_size(a) == 0 ? rsa_key2 : NULL;
        if (a == CLST_JWS_ES256) {
            other = p256b;
        }
        if (other != NULL) {
            token = craft_signed(other, a, a, hdr, "{\"hello\":\"world\"}");
            CHECK_RC(verify_quick(token, strlen(token), jwk, &err), CLST_E_VERIFY);
            free(token);
        }
        clst_jwk_free(jwk);
    }
}

/* ---- the algorithm policy ------------------------------------------------------------------- */

static void
test_alg_none_and_unknown(void **state)
{
    (void)state;
    struct clst_err err = {0};
    struct clst_jwk *jwk = pub_jwk_of(p256, NULL, CLST_JWS_ES256);
    static const uint8_t fake[64] = {1};
    static const char *const headers[] = {
        "{\"alg\":\"none\"}",  "{\"alg\":\"NONE\"}",  "{\"alg\":\"None\"}", "{\"alg\":\"ES256K\"}",
        "{\"alg\":\"EdDSA\"}", "{\"alg\":\"es256\"}", "{\"alg\":\"\"}",
    };
    for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
        char *token = craft_raw(headers[i], "x", fake, sizeof(fake));
        CHECK_RC(verify_quick(token, strlen(token), jwk, &err), CLST_E_VERIFY);
        if (i < 3) {
            assert_non_null(strstr(err.msg, "unsigned"));
        }
        free(token);
    }
    /* "none" with an empty signature (the classic form) is refused at parse time. */
    char *h = b64u("{\"alg\":\"none\"}", 14);
    char *token = join3(h, "eA", "");
    CHECK_RC(verify_quick(token, strlen(token), jwk, &err), CLST_E_MALFORMED);
    free(token);
    free(h);
    /* Missing or ill-typed alg, duplicate members, a header that is not an object. */
    static const char *const malformed[] = {
        "{}",
        "{\"alg\":5}",
        "{\"alg\":null}",
        "{\"alg\":[\"ES256\"]}",
        "{\"alg\":\"ES256\\u0000x\"}",
        "{\"alg\":\"ES256\",\"alg\":\"none\"}",
        "{\"alg\":\"none\",\"alg\":\"ES256\"}",
        "[\"ES256\"]",
        "\"ES256\"",
        "{\"alg\":\"ES256\"",
        "{\"alg\":\"ES256\"} x",
        "{\"alg\":\"ES256\",\"kid\":1}",
    };
    for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
        token = craft_signed(p256, CLST_JWS_ES256, CLST_JWS_ES256, malformed[i], "x");
        CHECK_RC(verify_quick(token, strlen(token), jwk, &err), CLST_E_MALFORMED);
        free(token);
    }
    clst_jwk_free(jwk);
}

/* HMAC confusion: an HS256 token whose secret is the verifier's public key (PEM, DER or JWK). */
static void
test_hmac_with_public_key(void **state)
{
    (void)state;
    struct clst_err err = {0};
    struct clst_jwk *jwk = pub_jwk_of(rsa_key, "r", CLST_JWS_RS256);
    struct clst_buf pem, der;
    json_t *jj = NULL;

    clst_buf_init(&pem, 1 << 16);
    clst_buf_init(&der, 1 << 16);
    assert_int_equal(clst_pkey_to_pem(rsa_key, false, &pem), CLST_OK);
    assert_int_equal(clst_pkey_to_der(rsa_key, false, &der), CLST_OK);
    assert_int_equal(clst_jwk_to_json(jwk, false, &jj), CLST_OK);
    char *jtext = json_dumps(jj, JSON_COMPACT);
    json_decref(jj);
    const struct {
        const uint8_t *key;
        size_t size;
    } secrets[] = {{pem.data, pem.size}, {der.data, der.size}, {(uint8_t *)jtext, strlen(jtext)}};
    static const char *const algs[] = {"HS256", "HS384", "HS512"};
    static const enum clst_hash hashes[] = {CLST_HASH_SHA256, CLST_HASH_SHA384, CLST_HASH_SHA512};

    for (size_t si = 0; si < 3; si++) {
        for (size_t ai = 0; ai < 3; ai++) {
            char hdr[64];
            snprintf(hdr, sizeof(hdr), "{\"alg\":\"%s\",\"kid\":\"r\"}", algs[ai]);
            char *h = b64u(hdr, strlen(hdr)), *p = b64u("{}", 2);
            char *input = join3(h, p, NULL);
            uint8_t mac[CLST_HASH_MAX_SIZE];
            assert_int_equal(
                clst_hmac(hashes[ai], secrets[si].key, secrets[si].size, input, strlen(input), mac),
                CLST_OK);
            char *m = b64u(mac, clst_hash_size(hashes[ai]));
            char *token = join3(h, p, m);
            CHECK_RC(verify_quick(token, strlen(token), jwk, &err), CLST_E_VERIFY);
            assert_non_null(strstr(err.msg, "HMAC"));
            free(h);
            free(p);
            free(input);
            free(m);
            free(token);
        }
    }
    free(jtext);
    clst_buf_cleanup(&pem);
    clst_buf_cleanup(&der);
    clst_jwk_free(jwk);
}

/* The key decides the algorithm: a valid signature under another algorithm is refused. */
static void
test_alg_key_mismatch(void **state)
{
    (void)state;
    struct clst_err err = {0};
    for (size_t ki = 0; ki < ALL_ALGS; ki++) {
        enum clst_jws_alg key_alg = all_algs[ki];
        struct clst_jwk *jwk = pub_jwk_of(key_for(key_alg), NULL, key_alg);
        for (size_t ti = 0; ti < ALL_ALGS; ti++) {
            enum clst_jws_alg tok_alg = all_algs[ti];
            if (tok_alg == key_alg) {
                continue;
            }
            /* Sign as tok_alg with this very key when the key type allows it (e.g. PS256 with
             * an RS256-pinned key, or ES384's SHA-384 with a P-256 key): the signature is
             * mathematically valid, only the pinning refuses it. */
            char hdr[32];
            snprintf(hdr, sizeof(hdr), "{\"alg\":\"%s\"}", clst_jws_alg_name(tok_alg));
            bool same_type = (coord_size(tok_alg) == 0) == (coord_size(key_alg) == 0);
            char *token;
            if (same_type) {
                token = craft_signed(key_for(key_alg), coord_size(key_alg) ? key_alg : tok_alg,
                                     tok_alg, hdr, "x");
            } else {
                token = craft_signed(key_for(tok_alg), tok_alg, tok_alg, hdr, "x");
            }
            CHECK_RC(verify_quick(token, strlen(token), jwk, &err), CLST_E_VERIFY);
            assert_non_null(strstr(err.msg, "does not match the key's algorithm"));
            free(token);
        }
        clst_jwk_free(jwk);
    }
}

static void
test_crit_and_b64(void **state)
{
    (void)state;
    struct clst_err err = {0};
    struct clst_jwk *jwk = pub_jwk_of(p256, NULL, CLST_JWS_ES256);
    static const char *const headers[] = {
        "{\"alg\":\"ES256\",\"crit\":[\"exp\"],\"exp\":1}",
        "{\"alg\":\"ES256\",\"crit\":[\"alg\"]}", /* cjose itself would accept this one */
        "{\"alg\":\"ES256\",\"crit\":[]}",
        "{\"alg\":\"ES256\",\"crit\":null}",
        "{\"alg\":\"ES256\",\"b64\":false,\"crit\":[\"b64\"]}",
        "{\"alg\":\"ES256\",\"b64\":true}",
    };
    for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
        char *token = craft_signed(p256, CLST_JWS_ES256, CLST_JWS_ES256, headers[i], "x");
        CHECK_RC(verify_quick(token, strlen(token), jwk, &err), CLST_E_VERIFY);
        free(token);
    }
    /* Header members we do not act on are fine; the key never comes from the token. */
    char *token =
        craft_signed(p256b, CLST_JWS_ES256, CLST_JWS_ES256,
                     "{\"alg\":\"ES256\",\"x5u\":\"https://x.example\",\"cty\":\"JWT\"}", "x");
    CHECK_RC(verify_quick(token, strlen(token), jwk, &err), CLST_E_VERIFY);
    free(token);
    token = craft_signed(p256, CLST_JWS_ES256, CLST_JWS_ES256,
                         "{\"alg\":\"ES256\",\"x5u\":\"https://x.example\",\"cty\":\"JWT\"}", "x");
    CHECK_RC(verify_quick(token, strlen(token), jwk, &err), CLST_OK);
    free(token);
    clst_jwk_free(jwk);
}

static void
test_kid_and_wrong_key(void **state)
{
    (void)state;
    struct clst_err err = {0};
    struct clst_jwk *signer = jwk_of(p256, "a", CLST_JWS_ES256);
    struct clst_jwk *same_kid_other_key = pub_jwk_of(p256b, "a", CLST_JWS_ES256);
    struct clst_jwk *other_kid = pub_jwk_of(p256, "b", CLST_JWS_ES256);
    struct clst_jwk *no_kid = pub_jwk_of(p256, NULL, CLST_JWS_ES256);
    struct clst_jwk *rsa_signer = jwk_of(rsa_key, "r", CLST_JWS_PS256);
    struct clst_jwk *rsa_other = pub_jwk_of(rsa_key2, "r", CLST_JWS_PS256);
    char *token = NULL, *rtoken = NULL;

    CHECK_RC(clst_jws_sign(signer, NULL, "payload", 7, &token, &err), CLST_OK);
    CHECK_RC(verify_quick(token, strlen(token), same_kid_other_key, &err), CLST_E_VERIFY);
    CHECK_RC(verify_quick(token, strlen(token), other_kid, &err), CLST_E_VERIFY);
    assert_non_null(strstr(err.msg, "kid"));
    CHECK_RC(verify_quick(token, strlen(token), no_kid, &err), CLST_OK);
    CHECK_RC(clst_jws_sign(rsa_signer, NULL, "payload", 7, &rtoken, &err), CLST_OK);
    CHECK_RC(verify_quick(rtoken, strlen(rtoken), rsa_other, &err), CLST_E_VERIFY);
    CHECK_RC(verify_quick(rtoken, strlen(rtoken), no_kid, &err), CLST_E_VERIFY);
    free(token);
    free(rtoken);
    clst_jwk_free(signer);
    clst_jwk_free(same_kid_other_key);
    clst_jwk_free(other_kid);
    clst_jwk_free(no_kid);
    clst_jwk_free(rsa_signer);
    clst_jwk_free(rsa_other);
}

/* ---- tampering, truncation, encoding -------------------------------------------------------- */

static void
tamper_all(const char *token, const struct clst_jwk *jwk)
{
    struct clst_err err = {0};
    size_t len = strlen(token);
    char *t = dupstr(token);
    size_t seen[16] = {0};

    CHECK_RC(verify_quick(token, len, jwk, &err), CLST_OK);
    for (size_t i = 0; i < len; i++) {
        static const char repl[] = {'A', 'B', '.', '_'};
        for (size_t r = 0; r < sizeof(repl); r++) {
            if (token[i] == repl[r]) {
                continue;
            }
            t[i] = repl[r];
            enum clst_status rc = verify_quick(t, len, jwk, &err);
            if (rc == CLST_OK) {
                fail_msg("changing byte %zu to '%c' still verifies", i, repl[r]);
            }
            seen[rc]++;
            t[i] = token[i];
        }
    }
    /* Truncations and extensions. */
    for (size_t n = 0; n < len; n++) {
        assert_int_not_equal(verify_quick(token, n, jwk, &err), CLST_OK);
    }
    char *longer = malloc(len + 3);
    static const char *const tails[] = {"A", ".", "=", " ", ".A"};
    for (size_t i = 0; i < sizeof(tails) / sizeof(tails[0]); i++) {
        snprintf(longer, len + 3, "%s%s", token, tails[i]);
        assert_int_not_equal(verify_quick(longer, strlen(longer), jwk, &err), CLST_OK);
    }
    free(longer);
    free(t);
    /* Both kinds of failure occur: broken structure/encoding and bad signatures. */
    assert_true(seen[CLST_E_MALFORMED] > 0);
    assert_true(seen[CLST_E_VERIFY] > 0);
}

static void
test_tamper_and_truncate(void **state)
{
    (void)state;
    struct clst_err err = {0};
    const enum clst_jws_alg algs[] = {CLST_JWS_ES256, CLST_JWS_PS256, CLST_JWS_RS256};
    for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
        struct clst_jwk *signer = jwk_of(key_for(algs[i]), "t", algs[i]);
        char *token = NULL;
        CHECK_RC(clst_jws_sign(signer, NULL, "{\"iss\":\"x\",\"n\":1}", 18, &token, &err), CLST_OK);
        tamper_all(token, signer);
        free(token);
        clst_jwk_free(signer);
    }
}

/* Replaces the last character of segment `seg` so that unused bits become non-zero. */
static char *
noncanonical(const char *token, int seg)
{
    char *t = dupstr(token), *h, *p, *s;
    split3(t, &h, &p, &s);
    char *parts[3] = {h, p, s};
    char *x = parts[seg];
    size_t n = strlen(x);
    assert_true(n % 4 == 2 || n % 4 == 3);
    /* The last character carries 4 (n%4==2) or 2 (n%4==3) unused low bits; set the lowest. */
    static const char alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const char *pos = strchr(alpha, x[n - 1]);
    assert_non_null(pos);
    x[n - 1] = alpha[(pos - alpha) | 1];
    char *out = malloc(strlen(token) + 1);
    snprintf(out, strlen(token) + 1, "%s.%s.%s", h, p, s);
    free(t);
    return out;
}

static void
test_strict_encoding(void **state)
{
    (void)state;
    struct clst_err err = {0};
    struct clst_jwk *signer = jwk_of(p256, NULL, CLST_JWS_ES256);
    char *token = NULL;

    /* Header {"alg":"ES256"} is 15 bytes (20 chars), payload "ab" 3 chars, the 64-byte signature
     * 86 chars: all three segments have unused bits to play with, once the header grows by one
     * byte. */
    json_t *extra = json_pack("{s:s}", "t", "");
    CHECK_RC(clst_jws_sign(signer, extra, "ab", 2, &token, &err), CLST_OK);
    json_decref(extra);
    for (int seg = 0; seg < 3; seg++) {
        char *t = noncanonical(token, seg);
        CHECK_RC(verify_quick(t, strlen(t), signer, &err), CLST_E_MALFORMED);
        free(t);
    }
    /* Padding, whitespace and the standard alphabet in any segment. */
    size_t len = strlen(token);
    char *t = malloc(len + 8);
    snprintf(t, len + 8, "%s==", token);
    CHECK_RC(verify_quick(t, strlen(t), signer, &err), CLST_E_MALFORMED);
    char *dot = strchr(token, '.');
    size_t hl = (size_t)(dot - token);
    snprintf(t, len + 8, "%.*s .%s", (int)hl, token, dot + 1);
    CHECK_RC(verify_quick(t, strlen(t), signer, &err), CLST_E_MALFORMED);
    snprintf(t, len + 8, "%.*s\n.%s", (int)hl, token, dot + 1);
    CHECK_RC(verify_quick(t, strlen(t), signer, &err), CLST_E_MALFORMED);
    snprintf(t, len + 8, "%s", token);
    for (char *c = t; *c; c++) {
        if (*c == '-' || *c == '_') {
            *c = *c == '-' ? '+' : '/';
            CHECK_RC(verify_quick(t, strlen(t), signer, &err), CLST_E_MALFORMED);
            break;
        }
    }
    /* An embedded NUL is not part of any alphabet. */
    memcpy(t, token, len + 1);
    t[5] = '\0';
    CHECK_RC(verify_quick(t, len, signer, &err), CLST_E_MALFORMED);
    free(t);

    /* ECDSA: r and s zero-prefixed to 33 bytes each (66) is the same signature to a lenient
     * parser; JWS requires exactly 64 bytes. */
    char *c = dupstr(token), *h, *p, *s;
    split3(c, &h, &p, &s);
    size_t sig_size = 0;
    uint8_t *sig = b64u_decode(s, &sig_size);
    assert_int_equal(sig_size, 64);
    uint8_t longsig[66] = {0};
    memcpy(longsig + 1, sig, 32);
    memcpy(longsig + 34, sig + 32, 32);
    char *ls = b64u(longsig, sizeof(longsig));
    char *long_token = join3(h, p, ls);
    CHECK_RC(verify_quick(long_token, strlen(long_token), signer, &err), CLST_E_VERIFY);
    assert_non_null(strstr(err.msg, "exactly 64"));
    /* What cjose alone makes of it (documentation, not a requirement). */
    cjose_err cerr;
    cjose_jws_t *cj = cjose_jws_import(long_token, strlen(long_token), &cerr);
    if (cj != NULL) {
        EVP_PKEY *pk = clst_jwk_pkey(signer);
        json_t *pj = NULL;
        assert_int_equal(clst_pkey_to_jwk(pk, false, &pj), CLST_OK);
        char *pjt = json_dumps(pj, 0);
        cjose_jwk_t *ck = cjose_jwk_import(pjt, strlen(pjt), &cerr);
        print_message("note: cjose %s alone %s a 66-byte zero-prefixed ES256 signature\n",
                      CJOSE_VERSION,
                      ck != NULL && cjose_jws_verify(cj, ck, &cerr) ? "ACCEPTS" : "rejects");
        cjose_jwk_release(ck);
        free(pjt);
        json_decref(pj);
        cjose_jws_release(cj);
    }
    /* Truncated signatures: 63 bytes, and 0 bytes. */
    char *ss = b64u(sig, 63);
    char *short_token = join3(h, p, ss);
    CHECK_RC(verify_quick(short_token, strlen(short_token), signer, &err), CLST_E_VERIFY);
    free(ss);
    free(short_token);
    free(ls);
    free(long_token);
    free(sig);
    free(c);

    /* RSA: a signature one byte longer (leading zero) than the modulus is refused. */
    struct clst_jwk *rs = jwk_of(rsa_key, NULL, CLST_JWS_RS256);
    char *rtoken = NULL;
    CHECK_RC(clst_jws_sign(rs, NULL, "ab", 2, &rtoken, &err), CLST_OK);
    c = dupstr(rtoken);
    split3(c, &h, &p, &s);
    sig = b64u_decode(s, &sig_size);
    assert_int_equal(sig_size, 256);
    uint8_t rlong[257] = {0};
    memcpy(rlong + 1, sig, 256);
    ls = b64u(rlong, sizeof(rlong));
    long_token = join3(h, p, ls);
    CHECK_RC(verify_quick(long_token, strlen(long_token), rs, &err), CLST_E_VERIFY);
    free(ls);
    free(long_token);
    free(sig);
    free(c);
    free(rtoken);
    clst_jwk_free(rs);
    free(token);
    clst_jwk_free(signer);
}

static void
test_structure_and_limits(void **state)
{
    (void)state;
    struct clst_err err = {0};
    struct clst_jwk *signer = jwk_of(p256, NULL, CLST_JWS_ES256);
    static const char *const bad[] = {
        "",
        ".",
        "..",
        "...",
        "a.b",
        "a.b.c.d",
        ".eA.AAAA",
        "eyJhbGciOiJFUzI1NiJ9.eA.",
        "eyJhbGciOiJFUzI1NiJ9..",
        "{\"payload\":\"eA\",\"signatures\":[]}",
        "eyJhbGciOiJFUzI1NiJ9.eA.AAAA.AAAA.AAAA",
        "e.e.e",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        enum clst_status rc = verify_quick(bad[i], strlen(bad[i]), signer, &err);
        if (rc != CLST_E_MALFORMED) {
            fail_msg("\"%s\": %s (%s)", bad[i], clst_status_str(rc), err.msg);
        }
    }
    CHECK_RC(verify_quick(NULL, 0, signer, &err), CLST_E_INVAL);
    CHECK_RC(clst_jws_verify("a.b.c", 5, NULL, NULL, NULL, &err), CLST_E_INVAL);

    /* Token size cap (checked before anything is decoded). */
    char *huge = malloc(CLST_JWS_MAX_SIZE + 2);
    memset(huge, 'A', CLST_JWS_MAX_SIZE + 1);
    huge[10] = '.';
    huge[20] = '.';
    huge[CLST_JWS_MAX_SIZE + 1] = 0;
    CHECK_RC(verify_quick(huge, CLST_JWS_MAX_SIZE + 1, signer, &err), CLST_E_LIMIT);
    free(huge);
    /* Header cap: a 17 KiB protected header in a token under the token cap. */
    size_t hsize = CLST_JWS_MAX_HEADER_SIZE + 1024;
    char *hdr = malloc(hsize + 1);
    memset(hdr, ' ', hsize);
    memcpy(hdr, "{\"alg\":\"ES256\"", 14);
    hdr[hsize - 1] = '}';
    hdr[hsize] = 0;
    char *token = craft_signed(p256, CLST_JWS_ES256, CLST_JWS_ES256, hdr, "x");
    CHECK_RC(verify_quick(token, strlen(token), signer, &err), CLST_E_LIMIT);
    free(token);
    free(hdr);

    /* The caller's payload buffer bounds the payload; on failure it is left untouched. */
    char *ok = NULL;
    CHECK_RC(clst_jws_sign(signer, NULL, "0123456789", 10, &ok, &err), CLST_OK);
    struct clst_buf small;
    clst_buf_init(&small, 9);
    CHECK_RC(clst_jws_verify(ok, strlen(ok), signer, &small, NULL, &err), CLST_E_LIMIT);
    assert_int_equal(small.size, 0);
    clst_buf_cleanup(&small);
    free(ok);

    /* Signing refuses what verification would refuse. */
    size_t big = 49 * 1024;
    char *payload = malloc(big);
    memset(payload, 'p', big);
    CHECK_RC(clst_jws_sign(signer, NULL, payload, big, &ok, &err), CLST_E_LIMIT);
    CHECK_RC(clst_jws_sign(signer, NULL, payload, CLST_JWS_MAX_SIZE + 1, &ok, &err), CLST_E_LIMIT);
    CHECK_RC(clst_jws_sign(signer, NULL, payload, 40 * 1024, &ok, &err), CLST_OK);
    CHECK_RC(verify_quick(ok, strlen(ok), signer, &err), CLST_OK);
    free(ok);
    free(payload);
    clst_jwk_free(signer);
}

static void
test_key_usability(void **state)
{
    (void)state;
    struct clst_err err = {0};
    json_t *pj = NULL;
    struct clst_jwk *signer = jwk_of(p256, NULL, CLST_JWS_ES256), *k = NULL;
    char *token = NULL, *out = NULL;
    CHECK_RC(clst_jws_sign(signer, NULL, "x", 1, &token, &err), CLST_OK);

    static const char *const extras[] = {
        "{\"use\":\"enc\"}",           "{\"use\":\"other\"}",   "{\"key_ops\":[\"sign\"]}",
        "{\"key_ops\":[\"encrypt\"]}", "{\"alg\":\"ECDH-ES\"}",
    };
    for (size_t i = 0; i < sizeof(extras) / sizeof(extras[0]); i++) {
        assert_int_equal(clst_pkey_to_jwk(p256, false, &pj), CLST_OK);
        json_t *e = json_loads(extras[i], 0, NULL);
        assert_int_equal(json_object_update(pj, e), 0);
        json_decref(e);
        CHECK_RC(clst_jwk_from_json(pj, &k, &err), CLST_OK);
        json_decref(pj);
        CHECK_RC(verify_quick(token, strlen(token), k, &err), CLST_E_DENIED);
        clst_jwk_free(k);
    }
    /* key_ops ["verify"] may verify but not sign (even with the private key). */
    assert_int_equal(clst_pkey_to_jwk(p256, true, &pj), CLST_OK);
    assert_int_equal(json_object_set_new(pj, "key_ops", json_pack("[s]", "verify")), 0);
    CHECK_RC(clst_jwk_from_json(pj, &k, &err), CLST_OK);
    json_decref(pj);
    CHECK_RC(verify_quick(token, strlen(token), k, &err), CLST_OK);
    CHECK_RC(clst_jws_sign(k, NULL, "x", 1, &out, &err), CLST_E_DENIED);
    clst_jwk_free(k);
    /* An unpinned RSA key can do neither; a public key cannot sign. */
    k = jwk_of(rsa_key, NULL, CLST_JWS_ALG_NONE);
    CHECK_RC(clst_jws_sign(k, NULL, "x", 1, &out, &err), CLST_E_DENIED);
    assert_non_null(strstr(err.msg, "pinned"));
    clst_jwk_free(k);
    k = pub_jwk_of(p256, NULL, CLST_JWS_ES256);
    CHECK_RC(clst_jws_sign(k, NULL, "x", 1, &out, &err), CLST_E_DENIED);
    clst_jwk_free(k);
    free(token);
    clst_jwk_free(signer);
}

static void
test_sign_header_rules(void **state)
{
    (void)state;
    struct clst_err err = {0};
    struct clst_jwk *signer = jwk_of(p384, "kid-1", CLST_JWS_ALG_NONE);
    char *token = NULL;
    static const char *const refused[] = {
        "{\"alg\":\"ES384\"}",
        "{\"alg\":\"none\"}",
        "{\"crit\":[\"x\"]}",
        "{\"b64\":false}",
        "{\"kid\":\"other\"}",
        "{\"kid\":5}",
        "[1]",
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        json_t *e = json_loads(refused[i], 0, NULL);
        assert_non_null(e);
        CHECK_RC(clst_jws_sign(signer, e, "x", 1, &token, &err), CLST_E_INVAL);
        json_decref(e);
    }
    CHECK_RC(clst_jws_sign(signer, NULL, NULL, 1, &token, &err), CLST_E_INVAL);
    CHECK_RC(clst_jws_sign(NULL, NULL, "x", 1, &token, &err), CLST_E_INVAL);
    /* The key's own kid may be repeated; x5c/jku/typ pass through; alg comes first. */
    json_t *e = json_pack("{s:s, s:[s], s:s}", "kid", "kid-1", "x5c", "MIIB", "typ", "JWT");
    CHECK_RC(clst_jws_sign(signer, e, NULL, 0, &token, &err), CLST_OK);
    json_decref(e);
    json_t *hdr = NULL;
    CHECK_RC(clst_jws_header_unverified(token, strlen(token), &hdr, &err), CLST_OK);
    assert_string_equal(json_object_iter_key(json_object_iter(hdr)), "alg");
    assert_string_equal(json_string_value(json_object_get(hdr, "alg")), "ES384");
    assert_string_equal(json_string_value(json_object_get(hdr, "kid")), "kid-1");
    assert_string_equal(json_string_value(json_array_get(json_object_get(hdr, "x5c"), 0)), "MIIB");
    json_decref(hdr);
    /* header_unverified checks structure like verification does. */
    CHECK_RC(clst_jws_header_unverified("a.b", 3, &hdr, &err), CLST_E_MALFORMED);
    size_t tl = strlen(token);
    char *padded = malloc(tl + 3);
    snprintf(padded, tl + 3, "%s==", token);
    CHECK_RC(clst_jws_header_unverified(padded, strlen(padded), &hdr, &err), CLST_E_MALFORMED);
    free(padded);
    free(token);
    clst_jwk_free(signer);
}

/* ---- key sets ------------------------------------------------------------------------------- */

static void
test_verify_jwks(void **state)
{
    (void)state;
    struct clst_err err = {0};
    struct clst_jwks *set = NULL, *one = NULL;
    struct clst_jwk *a = jwk_of(p256, "a", CLST_JWS_ES256),
                    *b = jwk_of(rsa_key, "b", CLST_JWS_RS512);
    struct clst_jwk *b_as_a = jwk_of(rsa_key, "a", CLST_JWS_RS512);
    struct clst_jwk *nokid = jwk_of(p256, NULL, CLST_JWS_ES256);
    char *ta = NULL, *tb = NULL, *tforged = NULL, *tnokid = NULL;
    const struct clst_jwk *used = NULL;
    struct clst_buf out;

    CHECK_RC(clst_jws_sign(a, NULL, "A", 1, &ta, &err), CLST_OK);
    CHECK_RC(clst_jws_sign(b, NULL, "B", 1, &tb, &err), CLST_OK);
    CHECK_RC(clst_jws_sign(b_as_a, NULL, "F", 1, &tforged, &err), CLST_OK);
    CHECK_RC(clst_jws_sign(nokid, NULL, "N", 1, &tnokid, &err), CLST_OK);

    assert_int_equal(clst_jwks_new(&set), CLST_OK);
    CHECK_RC(clst_jwks_add(set, pub_jwk_of(p256, "a", CLST_JWS_ES256), &err), CLST_OK);
    CHECK_RC(clst_jwks_add(set, pub_jwk_of(rsa_key, "b", CLST_JWS_RS512), &err), CLST_OK);

    clst_buf_init(&out, 16);
    CHECK_RC(clst_jws_verify_jwks(tb, strlen(tb), set, &out, NULL, &used, &err), CLST_OK);
    assert_ptr_equal(used, clst_jwks_find(set, "b"));
    assert_int_equal(out.size, 1);
    assert_int_equal(out.data[0], 'B');
    clst_buf_reset(&out);
    CHECK_RC(clst_jws_verify_jwks(ta, strlen(ta), set, &out, NULL, &used, &err), CLST_OK);
    assert_ptr_equal(used, clst_jwks_find(set, "a"));
    /* kid "a" selects the EC key; the RS512 signature then fails the pinned algorithm. */
    CHECK_RC(clst_jws_verify_jwks(tforged, strlen(tforged), set, &out, NULL, NULL, &err),
             CLST_E_VERIFY);
    CHECK_RC(clst_jws_verify_jwks(tnokid, strlen(tnokid), set, &out, NULL, NULL, &err),
             CLST_E_NOTFOUND);
    assert_non_null(strstr(err.msg, "unknown kid"));

    /* A one-key set serves tokens without kid; a token with an unknown kid still fails. */
    assert_int_equal(clst_jwks_new(&one), CLST_OK);
    CHECK_RC(clst_jwks_add(one, pub_jwk_of(p256, "a", CLST_JWS_ES256), &err), CLST_OK);
    clst_buf_reset(&out);
    CHECK_RC(clst_jws_verify_jwks(tnokid, strlen(tnokid), one, &out, NULL, NULL, &err), CLST_OK);
    CHECK_RC(clst_jws_verify_jwks(tb, strlen(tb), one, &out, NULL, NULL, &err), CLST_E_NOTFOUND);
    clst_jwks_free(one);
    assert_int_equal(clst_jwks_new(&one), CLST_OK);
    CHECK_RC(clst_jws_verify_jwks(tnokid, strlen(tnokid), one, &out, NULL, NULL, &err),
             CLST_E_NOTFOUND);
    clst_jwks_free(one);
    CHECK_RC(clst_jws_verify_jwks(ta, strlen(ta), NULL, &out, NULL, NULL, &err), CLST_E_INVAL);

    clst_buf_cleanup(&out);
    free(ta);
    free(tb);
    free(tforged);
    free(tnokid);
    clst_jwks_free(set);
    clst_jwk_free(a);
    clst_jwk_free(b);
    clst_jwk_free(b_as_a);
    clst_jwk_free(nokid);
}

/* ---- Wycheproof json_web_signature_test.json ------------------------------------------------ */

/*
 * Each group has one key ("public" when present, else "private"); every token is verified with
 * clst_jws_verify and that key. All 355 "invalid" cases must be rejected. Of the 46 "valid"
 * cases, 32 must verify; 14 cannot apply and are asserted to be rejected for their reason:
 *   - 10 use HMAC (HS256 with "oct" keys: groups hs256, base64 and the two rfc7520 HS256 groups):
 *     Cloister never accepts HMAC or symmetric keys;
 *   -  2 (RFC 7520 Figure 20) present a PS384 token to a key whose "alg" is PS256: the token's
 *     algorithm is not the key's, which is exactly the alg/key mismatch we must refuse;
 *   -  2 (RFC 7520 Figure 27) use a key whose "alg" is "ES521", which is not a registered JWS
 *     algorithm (ES512 is), so the key pins no algorithm and may not verify.
 * The file has no "acceptable" cases (any would fail this test).
 */
static void
test_wycheproof_jws(void **state)
{
    (void)state;
    json_t *root = tu_load_json("wycheproof/json_web_signature_test.json");
    assert_non_null(root);
    json_t *groups = json_object_get(root, "testGroups");
    size_t valid_ok = 0, na_hmac = 0, na_pinned = 0, na_es521 = 0, invalid_rejected = 0;
    size_t total = 0;

    for (size_t gi = 0; gi < json_array_size(groups); gi++) {
        json_t *g = json_array_get(groups, gi);
        json_t *kj = json_object_get(g, "public");
        if (kj == NULL) {
            kj = json_object_get(g, "private");
        }
        struct clst_err kerr = {0};
        struct clst_jwk *key = NULL;
        enum clst_status krc = clst_jwk_from_json(kj, &key, &kerr);
        bool oct = strcmp(json_string_value(json_object_get(kj, "kty")), "oct") == 0;
        if (oct) {
            assert_int_equal(krc, CLST_E_DENIED);
        }
        json_t *tests = json_object_get(g, "tests");
        for (size_t ti = 0; ti < json_array_size(tests); ti++) {
            json_t *t = json_array_get(tests, ti);
            const char *jws = json_string_value(json_object_get(t, "jws"));
            const char *result = json_string_value(json_object_get(t, "result"));
            json_int_t tc = json_integer_value(json_object_get(t, "tcId"));
            struct clst_err err = {0};
            enum clst_status rc = CLST_E_DENIED;
            total++;
            if (krc == CLST_OK) {
                rc = verify_quick(jws, strlen(jws), key, &err);
            }
            if (strcmp(result, "invalid") == 0) {
                if (rc == CLST_OK) {
                    fail_msg("tcId %lld: invalid case accepted", (long long)tc);
                }
                invalid_rejected++;
                continue;
            }
            if (strcmp(result, "valid") != 0) {
                fail_msg("tcId %lld: unexpected result \"%s\"", (long long)tc, result);
            }
            if (rc == CLST_OK) {
                valid_ok++;
            } else if (oct) {
                na_hmac++;
            } else if (key != NULL && clst_jwk_alg_member(key) != NULL &&
                       strcmp(clst_jwk_alg_member(key), "ES521") == 0) {
                assert_int_equal(rc, CLST_E_DENIED);
                na_es521++;
            } else if (rc == CLST_E_VERIFY &&
                       strstr(err.msg, "does not match the key's algorithm") != NULL) {
                na_pinned++;
            } else {
                fail_msg("tcId %lld: valid case rejected: %s %s", (long long)tc, kerr.msg, err.msg);
            }
        }
        clst_jwk_free(key);
    }
    json_decref(root);
    assert_int_equal(total, 401);
    assert_int_equal(invalid_rejected, 355);
    assert_int_equal(valid_ok, 32);
    assert_int_equal(na_hmac, 10);
    assert_int_equal(na_pinned, 2);
    assert_int_equal(na_es521, 2);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_all_algs),  cmocka_unit_test(test_evp_built_tokens),
        cmocka_unit_test(test_alg_none_and_unknown), cmocka_unit_test(test_hmac_with_public_key),
        cmocka_unit_test(test_alg_key_mismatch),     cmocka_unit_test(test_crit_and_b64),
        cmocka_unit_test(test_kid_and_wrong_key),    cmocka_unit_test(test_tamper_and_truncate),
        cmocka_unit_test(test_strict_encoding),      cmocka_unit_test(test_structure_and_limits),
        cmocka_unit_test(test_key_usability),        cmocka_unit_test(test_sign_header_rules),
        cmocka_unit_test(test_verify_jwks),          cmocka_unit_test(test_wycheproof_jws),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
