/*
 * Unit tests for src/jose/jwt.c: JWT signing and verification, and the registered-claim checks
 * (exp, nbf, iat with skew edges, iss, aud, types) against an injected clock.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

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

/* 2026-01-01T00:00:00Z */
#define T0 INT64_C(1767225600)

static EVP_PKEY *ec_key, *rsa_key;

static int
setup(void **state)
{
    (void)state;
    if (clst_ec_generate(CLST_CURVE_P256, &ec_key) != CLST_OK ||
        clst_rsa_generate(2048, &rsa_key) != CLST_OK) {
        return -1;
    }
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    EVP_PKEY_free(ec_key);
    EVP_PKEY_free(rsa_key);
    return 0;
}

static json_t *
claims(const char *text)
{
    json_error_t jerr;
    json_t *j = json_loads(text, JSON_ALLOW_NUL, &jerr);
    if (j == NULL) {
        fail_msg("bad test JSON %s: %s", text, jerr.text);
    }
    return j;
}

/* Validates `text` at time `now` with `skew` and the other expectations of `base`. */
static enum clst_status
validate_at(const char *text, int64_t now, int64_t skew, const struct clst_jwt_expect *base,
            struct clst_err *err)
{
    struct clst_clock clock;
    struct clst_jwt_expect e = {0};
    if (base != NULL) {
        e = *base;
    }
    clst_clock_fixed_init(&clock, now);
    e.clock = &clock;
    e.skew = skew;
    json_t *c = claims(text);
    enum clst_status rc = clst_jwt_validate(c, &e, err);
    json_decref(c);
    return rc;
}

/* ---- time claims ---------------------------------------------------------------------------- */

static void
test_exp_edges(void **state)
{
    (void)state;
    struct clst_err err = {0};
    char text[64];
    snprintf(text, sizeof(text), "{\"exp\":%lld}", (long long)T0);
    /* Valid while now < exp + skew. */
    CHECK_RC(validate_at(text, T0 - 1, 0, NULL, &err), CLST_OK);
    CHECK_RC(validate_at(text, T0, 0, NULL, &err), CLST_E_VERIFY);
    CHECK_RC(validate_at(text, T0 + 59, 60, NULL, &err), CLST_OK);
    CHECK_RC(validate_at(text, T0 + 60, 60, NULL, &err), CLST_E_VERIFY);
    CHECK_RC(validate_at(text, T0 + 86400, 60, NULL, &err), CLST_E_VERIFY);
    assert_string_equal(err.msg, "token expired at 2026-01-01T00:00:00Z, now "
                                 "2026-01-02T00:00:00Z (skew 60 s): obtain a new token");
    /* Fractional seconds. */
    CHECK_RC(validate_at("{\"exp\":1767225600.5}", T0, 0, NULL, &err), CLST_OK);
    CHECK_RC(validate_at("{\"exp\":1767225600.5}", T0 + 1, 0, NULL, &err), CLST_E_VERIFY);
    CHECK_RC(validate_at("{\"exp\":1767225600.0}", T0, 0, NULL, &err), CLST_E_VERIFY);
}

static void
test_nbf_and_iat_edges(void **state)
{
    (void)state;
    struct clst_err err = {0};
    char text[64];
    snprintf(text, sizeof(text), "{\"nbf\":%lld}", (long long)T0);
    /* Not yet valid while now + skew < nbf. */
    CHECK_RC(validate_at(text, T0, 0, NULL, &err), CLST_OK);
    CHECK_RC(validate_at(text, T0 - 1, 0, NULL, &err), CLST_E_VERIFY);
    CHECK_RC(validate_at(text, T0 - 30, 30, NULL, &err), CLST_OK);
    CHECK_RC(validate_at(text, T0 - 31, 30, NULL, &err), CLST_E_VERIFY);
    assert_string_equal(err.msg, "token not valid before 2026-01-01T00:00:00Z, now "
                                 "2025-12-31T23:59:29Z (skew 30 s): check the clocks");
    CHECK_RC(validate_at("{\"nbf\":1767225600.5}", T0, 0, NULL, &err), CLST_E_VERIFY);
    CHECK_RC(validate_at("{\"nbf\":1767225600.5}", T0, 1, NULL, &err), CLST_OK);

    snprintf(text, sizeof(text), "{\"iat\":%lld}", (long long)T0);
    /* Issued in the future when iat > now + skew. */
    CHECK_RC(validate_at(text, T0, 0, NULL, &err), CLST_OK);
    CHECK_RC(validate_at(text, T0 - 1, 0, NULL, &err), CLST_E_VERIFY);
    CHECK_RC(validate_at(text, T0 - 10, 10, NULL, &err), CLST_OK);
    CHECK_RC(validate_at(text, T0 - 11, 10, NULL, &err), CLST_E_VERIFY);
    assert_non_null(strstr(err.msg, "issued in the future at 2026-01-01T00:00:00Z"));
    assert_non_null(strstr(err.msg, "(skew 10 s)"));
    /* An old iat is fine; all three together. */
    CHECK_RC(validate_at(text, T0 + 365 * 86400, 0, NULL, &err), CLST_OK);
    CHECK_RC(validate_at("{\"iat\":1767225000,\"nbf\":1767225000,\"exp\":1767229200}", T0, 0, NULL,
                         &err),
             CLST_OK);
}

static void
test_required_and_types(void **state)
{
    (void)state;
    struct clst_err err = {0};
    struct clst_jwt_expect need = {.require_exp = true};
    CHECK_RC(validate_at("{}", T0, 0, &need, &err), CLST_E_VERIFY);
    assert_non_null(strstr(err.msg, "exp"));
    CHECK_RC(validate_at("{\"exp\":1767229200}", T0, 0, &need, &err), CLST_OK);
    need.require_exp = false;
    need.require_iat = true;
    CHECK_RC(validate_at("{\"exp\":1767229200}", T0, 0, &need, &err), CLST_E_VERIFY);
    CHECK_RC(validate_at("{\"iat\":1767225600}", T0, 0, &need, &err), CLST_OK);
    CHECK_RC(validate_at("{}", T0, 0, NULL, &err), CLST_OK);

    static const char *const bad[] = {
        "{\"exp\":\"1767229200\"}",
        "{\"exp\":true}",
        "{\"exp\":null}",
        "{\"exp\":[1]}",
        "{\"exp\":-1}",
        "{\"exp\":-0.5}",
        "{\"exp\":1e20}",
        "{\"nbf\":253402300800}",
        "{\"iat\":{}}",
        "{\"nbf\":\"x\"}",
        "{\"iat\":-100}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        enum clst_status rc = validate_at(bad[i], T0, 0, NULL, &err);
        if (rc != CLST_E_MALFORMED) {
            fail_msg("%s: %s (%s)", bad[i], clst_status_str(rc), err.msg);
        }
    }
    CHECK_RC(validate_at("{\"exp\":253402300799}", T0, 0, NULL, &err), CLST_OK);
    CHECK_RC(validate_at("{\"nbf\":0}", T0, 0, NULL, &err), CLST_OK);

    /* Contract violations. */
    struct clst_clock clock;
    clst_clock_fixed_init(&clock, T0);
    struct clst_jwt_expect e = {.clock = &clock, .skew = -1};
    json_t *c = claims("{}");
    CHECK_RC(clst_jwt_validate(c, &e, &err), CLST_E_INVAL);
    e.skew = CLST_JWT_MAX_SKEW + 1;
    CHECK_RC(clst_jwt_validate(c, &e, &err), CLST_E_INVAL);
    e.skew = CLST_JWT_MAX_SKEW;
    CHECK_RC(clst_jwt_validate(c, &e, &err), CLST_OK);
    e.clock = NULL;
    CHECK_RC(clst_jwt_validate(c, &e, &err), CLST_E_INVAL);
    e.clock = &clock;
    CHECK_RC(clst_jwt_validate(NULL, &e, &err), CLST_E_INVAL);
    CHECK_RC(clst_jwt_validate(c, NULL, &err), CLST_E_INVAL);
    json_decref(c);
    c = json_pack("[i]", 1);
    CHECK_RC(clst_jwt_validate(c, &e, &err), CLST_E_MALFORMED);
    json_decref(c);
}

/* ---- iss and aud ---------------------------------------------------------------------------- */

static void
test_issuer(void **state)
{
    (void)state;
    struct clst_err err = {0};
    struct clst_jwt_expect e = {.issuer = "https://attest.example"};
    CHECK_RC(validate_at("{\"iss\":\"https://attest.example\"}", T0, 0, &e, &err), CLST_OK);
    CHECK_RC(validate_at("{\"iss\":\"https://attest.example/\"}", T0, 0, &e, &err), CLST_E_VERIFY);
    assert_string_equal(err.msg, "the token's issuer \"https://attest.example/\" is not the "
                                 "expected \"https://attest.example\"");
    CHECK_RC(validate_at("{\"iss\":\"HTTPS://ATTEST.EXAMPLE\"}", T0, 0, &e, &err), CLST_E_VERIFY);
    CHECK_RC(validate_at("{}", T0, 0, &e, &err), CLST_E_VERIFY);
    CHECK_RC(validate_at("{\"iss\":7}", T0, 0, &e, &err), CLST_E_MALFORMED);
    CHECK_RC(validate_at("{\"iss\":\"https://attest.example\\u0000evil\"}", T0, 0, &e, &err),
             CLST_E_MALFORMED);
    /* Not checked when no issuer is expected. */
    CHECK_RC(validate_at("{\"iss\":\"anyone\"}", T0, 0, NULL, &err), CLST_OK);
}

static void
test_audience(void **state)
{
    (void)state;
    struct clst_err err = {0};
    struct clst_jwt_expect e = {.audience = "vault"};
    CHECK_RC(validate_at("{\"aud\":\"vault\"}", T0, 0, &e, &err), CLST_OK);
    CHECK_RC(validate_at("{\"aud\":[\"x\",\"vault\"]}", T0, 0, &e, &err), CLST_OK);
    CHECK_RC(validate_at("{\"aud\":\"vaults\"}", T0, 0, &e, &err), CLST_E_VERIFY);
    assert_non_null(strstr(err.msg, "\"vaults\""));
    CHECK_RC(validate_at("{\"aud\":[\"x\",\"y\"]}", T0, 0, &e, &err), CLST_E_VERIFY);
    CHECK_RC(validate_at("{}", T0, 0, &e, &err), CLST_E_VERIFY);
    CHECK_RC(validate_at("{\"aud\":[]}", T0, 0, &e, &err), CLST_E_MALFORMED);
    CHECK_RC(validate_at("{\"aud\":[\"vault\",1]}", T0, 0, &e, &err), CLST_E_MALFORMED);
    CHECK_RC(validate_at("{\"aud\":{\"v\":\"vault\"}}", T0, 0, &e, &err), CLST_E_MALFORMED);
    CHECK_RC(validate_at("{\"aud\":5}", T0, 0, &e, &err), CLST_E_MALFORMED);
    /* A token naming an audience is refused where none is configured (RFC 7519 §4.1.3). */
    CHECK_RC(validate_at("{\"aud\":\"vault\"}", T0, 0, NULL, &err), CLST_E_VERIFY);
    CHECK_RC(validate_at("{\"aud\":[\"vault\"]}", T0, 0, NULL, &err), CLST_E_VERIFY);
    /* Array size cap. */
    json_t *many = json_object(), *arr = json_array();
    for (int i = 0; i < 65; i++) {
        json_array_append_new(arr, json_string("vault"));
    }
    json_object_set_new(many, "aud", arr);
    char *text = json_dumps(many, JSON_COMPACT);
    CHECK_RC(validate_at(text, T0, 0, &e, &err), CLST_E_MALFORMED);
    free(text);
    json_decref(many);
}

/* ---- signed tokens -------------------------------------------------------------------------- */

static struct clst_jwks *
set_of(struct clst_jwk *jwk)
{
    struct clst_jwks *s = NULL;
    struct clst_err err = {0};
    json_t *j = NULL;
    struct clst_jwk *pub = NULL;
    assert_int_equal(clst_jwks_new(&s), CLST_OK);
    assert_int_equal(clst_jwk_to_json(jwk, false, &j), CLST_OK);
    CHECK_RC(clst_jwk_from_json(j, &pub, &err), CLST_OK);
    json_decref(j);
    CHECK_RC(clst_jwks_add(s, pub, &err), CLST_OK);
    return s;
}

static void
test_sign_verify(void **state)
{
    (void)state;
    struct clst_err err = {0};
    struct clst_jwk *signer = NULL;
    struct clst_clock clock;
    char *token = NULL;
    json_t *out = NULL, *hdr = NULL;

    CHECK_RC(clst_jwk_from_pkey(ec_key, "att-1", CLST_JWS_ALG_NONE, &signer, &err), CLST_OK);
    struct clst_jwks *set = set_of(signer);
    json_t *c = json_pack("{s:s, s:s, s:I, s:I, s:I, s:{s:s}}", "iss", "https://attest.example",
                          "aud", "vault", "iat", (json_int_t)T0, "nbf", (json_int_t)T0, "exp",
                          (json_int_t)(T0 + 3600), "x-ms-runtime", "nonce", "abc");
    json_t *extra = json_pack("{s:s}", "jku", "https://attest.example/certs");
    CHECK_RC(clst_jwt_sign(signer, c, extra, &token, &err), CLST_OK);

    clst_clock_fixed_init(&clock, T0 + 10);
    struct clst_jwt_expect e = {.issuer = "https://attest.example",
                                .audience = "vault",
                                .typ = "jwt",
                                .skew = 60,
                                .clock = &clock,
                                .require_exp = true,
                                .require_iat = true};
    CHECK_RC(clst_jwt_verify(token, strlen(token), set, &e, &out, &hdr, &err), CLST_OK);
    assert_true(json_equal(out, c));
    assert_string_equal(json_string_value(json_object_get(hdr, "typ")), "JWT");
    assert_string_equal(json_string_value(json_object_get(hdr, "kid")), "att-1");
    assert_string_equal(json_string_value(json_object_get(hdr, "jku")),
                        "https://attest.example/certs");
    json_decref(out);
    json_decref(hdr);
    out = NULL;
    CHECK_RC(clst_jwt_verify_jwk(token, strlen(token), clst_jwks_get(set, 0), &e, &out, NULL, &err),
             CLST_OK);
    json_decref(out);

    /* Expired by the clock; wrong issuer, audience or typ; valid signature in every case. */
    clst_clock_fixed_init(&clock, T0 + 3600 + 60);
    CHECK_RC(clst_jwt_verify(token, strlen(token), set, &e, &out, NULL, &err), CLST_E_VERIFY);
    assert_non_null(strstr(err.msg, "expired at 2026-01-01T01:00:00Z"));
    clst_clock_fixed_init(&clock, T0 + 10);
    e.issuer = "https://other.example";
    CHECK_RC(clst_jwt_verify(token, strlen(token), set, &e, &out, NULL, &err), CLST_E_VERIFY);
    e.issuer = "https://attest.example";
    e.audience = "other";
    CHECK_RC(clst_jwt_verify(token, strlen(token), set, &e, &out, NULL, &err), CLST_E_VERIFY);
    e.audience = "vault";
    e.typ = "at+jwt";
    CHECK_RC(clst_jwt_verify(token, strlen(token), set, &e, &out, NULL, &err), CLST_E_VERIFY);
    e.typ = "JWT";
    CHECK_RC(clst_jwt_verify(token, strlen(token), set, &e, &out, NULL, &err), CLST_OK);
    json_decref(out);
    out = NULL;

    /* A tampered token fails before claims are looked at; out_claims stays untouched. */
    char *last = &token[strlen(token) - 5];
    *last = *last == 'A' ? 'B' : 'A';
    CHECK_RC(clst_jwt_verify(token, strlen(token), set, &e, &out, NULL, &err), CLST_E_VERIFY);
    assert_null(out);
    /* A key set without the signer's kid. */
    struct clst_jwks *empty = NULL;
    assert_int_equal(clst_jwks_new(&empty), CLST_OK);
    CHECK_RC(clst_jwt_verify(token, strlen(token), empty, &e, &out, NULL, &err), CLST_E_NOTFOUND);
    clst_jwks_free(empty);
    CHECK_RC(clst_jwt_verify(token, strlen(token), NULL, &e, &out, NULL, &err), CLST_E_INVAL);
    CHECK_RC(clst_jwt_verify(token, strlen(token), set, NULL, &out, NULL, &err), CLST_E_INVAL);

    /* An explicit typ in the extra header is kept; claims must be an object. */
    free(token);
    json_decref(extra);
    extra = json_pack("{s:s}", "typ", "at+jwt");
    CHECK_RC(clst_jwt_sign(signer, c, extra, &token, &err), CLST_OK);
    e.typ = "AT+JWT";
    CHECK_RC(clst_jwt_verify(token, strlen(token), set, &e, &out, NULL, &err), CLST_OK);
    json_decref(out);
    json_t *arr = json_pack("[i]", 1);
    char *t2 = NULL;
    CHECK_RC(clst_jwt_sign(signer, arr, NULL, &t2, &err), CLST_E_INVAL);
    CHECK_RC(clst_jwt_sign(signer, c, arr, &t2, &err), CLST_E_INVAL);
    json_decref(arr);

    free(token);
    json_decref(extra);
    json_decref(c);
    clst_jwks_free(set);
    clst_jwk_free(signer);
}

/* Payloads that are not a JSON object of claims, signed correctly. */
static void
test_bad_payloads(void **state)
{
    (void)state;
    struct clst_err err = {0};
    struct clst_jwk *signer = NULL;
    struct clst_clock clock;
    json_t *out = NULL;

    CHECK_RC(clst_jwk_from_pkey(rsa_key, "r", CLST_JWS_PS256, &signer, &err), CLST_OK);
    struct clst_jwks *set = set_of(signer);
    clst_clock_fixed_init(&clock, T0);
    struct clst_jwt_expect e = {.clock = &clock};
    static const char *const payloads[] = {
        "",
        "[]",
        "\"claims\"",
        "{\"exp\":1,",
        "{\"iss\":\"a\",\"iss\":\"b\"}",
        "{} {}",
        "{\"a\":\"\\u0000\"}",
    };
    for (size_t i = 0; i < sizeof(payloads) / sizeof(payloads[0]); i++) {
        char *token = NULL;
        CHECK_RC(clst_jws_sign(signer, NULL, payloads[i], strlen(payloads[i]), &token, &err),
                 CLST_OK);
        enum clst_status rc = clst_jwt_verify(token, strlen(token), set, &e, &out, NULL, &err);
        if (rc != CLST_E_MALFORMED) {
            fail_msg("payload %s: %s (%s)", payloads[i], clst_status_str(rc), err.msg);
        }
        assert_null(out);
        free(token);
    }
    /* The same signer with a good payload passes (the failures above are the payloads'). */
    char *token = NULL;
    CHECK_RC(clst_jws_sign(signer, NULL, "{\"exp\":1767229200}", 18, &token, &err), CLST_OK);
    CHECK_RC(clst_jwt_verify(token, strlen(token), set, &e, &out, NULL, &err), CLST_OK);
    json_decref(out);
    free(token);
    clst_jwks_free(set);
    clst_jwk_free(signer);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exp_edges),          cmocka_unit_test(test_nbf_and_iat_edges),
        cmocka_unit_test(test_required_and_types), cmocka_unit_test(test_issuer),
        cmocka_unit_test(test_audience),           cmocka_unit_test(test_sign_verify),
        cmocka_unit_test(test_bad_payloads),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
