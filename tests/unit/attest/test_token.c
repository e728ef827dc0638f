/*
 * Unit tests for src/attest/token.c (clst_attest_token_verify): the JWT checklist against this
 * service's tokens: a valid token; alg none; HMAC with the public key as the secret; an unknown
 * kid; another key using the service's kid; a changed payload or header; expired, not yet valid
 * and issued-in-the-future tokens (with and without skew); a wrong issuer; typ other than JWT;
 * exp or iat missing; garbage and oversized input.
 */
#include "attest_fixture.h"

static char *
b64u(const char *s)
{
    struct clst_buf b;
    clst_buf_init(&b, 1u << 20);
    assert_int_equal(clst_b64url_encode((const uint8_t *)s, strlen(s), &b), CLST_OK);
    assert_int_equal(clst_buf_terminate(&b), CLST_OK);
    size_t n;
    return (char *)clst_buf_steal(&b, &n);
}

/* A token of the service for fresh sim evidence. (noinline: gcc -O2 otherwise mistakes the
 * returned heap pointer for one into this function's frame, -Wdangling-pointer.) */
static __attribute__((noinline)) char *
service_token(struct fx *f)
{
    struct clst_sim_identity id;
    struct clst_buf ev;
    struct clst_attest_request r;
    struct clst_err err = {0};
    char *token = NULL;
    fx_identity(&id, 0x11, 1, false);
    fx_evidence(f, &id, "{}", 2, &ev);
    fx_request(&r, &ev, CLST_ATTEST_DATA_JSON, "{}", NULL);
    assert_int_equal(clst_attest_evaluate(f->a, &r, NULL, &token, NULL, NULL, &err), CLST_OK);
    clst_attest_request_cleanup(&r);
    clst_buf_cleanup(&ev);
    return token;
}

static enum clst_status
verify_at(const char *token, const struct clst_jwks *jwks, int64_t at, int64_t skew,
          const char *issuer, struct clst_err *err)
{
    struct clst_clock c;
    clst_clock_fixed_init(&c, at);
    struct clst_attest_token_expect e = {issuer, &c, skew};
    json_t *claims = NULL, *header = NULL;
    enum clst_status st = clst_attest_token_verify(token, strlen(token), jwks, &e, &claims,
                                                   &header, err);
    if (st == CLST_OK) {
        assert_non_null(claims);
        assert_non_null(header);
    }
    json_decref(claims);
    json_decref(header);
    return st;
}

static void
test_checklist(void **state)
{
    (void)state;
    struct fx f;
    struct clst_err err = {0};
    fx_setup(&f);
    char *token = service_token(&f);
    struct clst_jwks *jwks = fx_jwks(f.a);
    const int64_t exp = FX_T0 + CLST_ATTEST_DEFAULT_TOKEN_LIFETIME;

    assert_int_equal(verify_at(token, jwks, FX_T0, 0, FX_ISSUER, &err), CLST_OK);
    assert_int_equal(verify_at(token, jwks, FX_T0, 0, NULL, &err), CLST_OK);
    assert_int_equal(verify_at(token, jwks, exp - 1, 0, FX_ISSUER, &err), CLST_OK);
    /* Expired, with and without skew. */
    assert_int_equal(verify_at(token, jwks, exp, 0, FX_ISSUER, &err), CLST_E_VERIFY);
    assert_non_null(strstr(err.msg, "expired"));
    assert_int_equal(verify_at(token, jwks, exp + 59, 60, FX_ISSUER, &err), CLST_OK);
    assert_int_equal(verify_at(token, jwks, exp + 60, 60, FX_ISSUER, &err), CLST_E_VERIFY);
    /* Not yet valid (nbf = iat = FX_T0). */
    assert_int_equal(verify_at(token, jwks, FX_T0 - 1, 0, FX_ISSUER, &err), CLST_E_VERIFY);
    assert_int_equal(verify_at(token, jwks, FX_T0 - 30, 60, FX_ISSUER, &err), CLST_OK);
    /* Wrong issuer. */
    assert_int_equal(verify_at(token, jwks, FX_T0, 0, "https://evil.example", &err),
                     CLST_E_VERIFY);
    assert_non_null(strstr(err.msg, "iss"));

    /* Pieces of the token. */
    char *d1 = strchr(token, '.');
    char *d2 = strchr(d1 + 1, '.');
    char hdr_b64[1024], payload_b64[8192], sig_b64[256];
    snprintf(hdr_b64, sizeof(hdr_b64), "%.*s", (int)(d1 - token), token);
    snprintf(payload_b64, sizeof(payload_b64), "%.*s", (int)(d2 - d1 - 1), d1 + 1);
    snprintf(sig_b64, sizeof(sig_b64), "%s", d2 + 1);
    struct clst_buf hb;
    clst_buf_init(&hb, 4096);
    assert_int_equal(clst_b64url_decode(hdr_b64, strlen(hdr_b64), &hb), CLST_OK);
    json_t *header = json_loadb((const char *)hb.data, hb.size, 0, NULL);
    clst_buf_cleanup(&hb);
    assert_non_null(header);
    char forged[16384];

    /* alg none, with or without a signature. */
    json_t *h = json_deep_copy(header);
    json_object_set_new(h, "alg", json_string("none"));
    char *ht = json_dumps(h, JSON_COMPACT);
    char *hb64 = b64u(ht);
    snprintf(forged, sizeof(forged), "%s.%s.", hb64, payload_b64);
    assert_int_not_equal(verify_at(forged, jwks, FX_T0, 0, NULL, &err), CLST_OK);
    snprintf(forged, sizeof(forged), "%s.%s.%s", hb64, payload_b64, sig_b64);
    assert_int_not_equal(verify_at(forged, jwks, FX_T0, 0, NULL, &err), CLST_OK);
    free(ht);
    free(hb64);
    json_decref(h);

    /* HS256 keyed with the public key's JSON (the classic key confusion). */
    h = json_deep_copy(header);
    json_object_set_new(h, "alg", json_string("HS256"));
    ht = json_dumps(h, JSON_COMPACT);
    hb64 = b64u(ht);
    json_t *pub = NULL;
    assert_int_equal(clst_jwk_to_json(clst_jwks_get(jwks, 0), false, &pub), CLST_OK);
    char *pubtext = json_dumps(pub, JSON_COMPACT);
    char input[12000];
    snprintf(input, sizeof(input), "%s.%s", hb64, payload_b64);
    uint8_t mac[32];
    assert_int_equal(clst_hmac(CLST_HASH_SHA256, (const uint8_t *)pubtext, strlen(pubtext), input,
                               strlen(input), mac),
                     CLST_OK);
    struct clst_buf mb;
    clst_buf_init(&mb, 128);
    assert_int_equal(clst_b64url_encode(mac, sizeof(mac), &mb), CLST_OK);
    assert_int_equal(clst_buf_terminate(&mb), CLST_OK);
    snprintf(forged, sizeof(forged), "%s.%s", input, (const char *)mb.data);
    assert_int_not_equal(verify_at(forged, jwks, FX_T0, 0, NULL, &err), CLST_OK);
    clst_buf_cleanup(&mb);
    free(pubtext);
    json_decref(pub);
    free(ht);
    free(hb64);
    json_decref(h);

    /* Unknown kid. */
    h = json_deep_copy(header);
    json_object_set_new(h, "kid", json_string("not-a-key"));
    ht = json_dumps(h, JSON_COMPACT);
    hb64 = b64u(ht);
    snprintf(forged, sizeof(forged), "%s.%s.%s", hb64, payload_b64, sig_b64);
    assert_int_equal(verify_at(forged, jwks, FX_T0, 0, NULL, &err), CLST_E_NOTFOUND);
    free(ht);
    free(hb64);
    json_decref(h);

    /* A changed payload, a changed signature, a changed header member (typ). */
    char *pc = strdup(token);
    pc[(size_t)(d1 - token) + 5] ^= 0x01;
    assert_int_not_equal(verify_at(pc, jwks, FX_T0, 0, NULL, &err), CLST_OK);
    free(pc);
    pc = strdup(token);
    pc[strlen(pc) - 3] = pc[strlen(pc) - 3] == 'A' ? 'B' : 'A';
    assert_int_not_equal(verify_at(pc, jwks, FX_T0, 0, NULL, &err), CLST_OK);
    free(pc);

    /* Another ES256 key presenting the service's kid. */
    EVP_PKEY *ok = NULL;
    struct clst_jwk *other = NULL;
    assert_int_equal(clst_ec_generate(CLST_CURVE_P256, &ok), CLST_OK);
    assert_int_equal(clst_jwk_from_pkey(ok, json_string_value(json_object_get(header, "kid")),
                                        CLST_JWS_ES256, &other, &err),
                     CLST_OK);
    json_t *cl = json_pack("{s:s, s:I, s:I, s:I}", "iss", FX_ISSUER, "iat", (json_int_t)FX_T0,
                           "nbf", (json_int_t)FX_T0, "exp", (json_int_t)(FX_T0 + 60));
    char *t2 = NULL;
    assert_int_equal(clst_jwt_sign(other, cl, NULL, &t2, &err), CLST_OK);
    assert_int_equal(verify_at(t2, jwks, FX_T0, 0, NULL, &err), CLST_E_VERIFY);
    free(t2);
    clst_jwk_free(other);
    EVP_PKEY_free(ok);

    /* The service's own key, but typ other than JWT, or exp / iat missing. */
    const struct attest_key *k = attest_keyring_current(&f.a->ring, FX_T0);
    json_t *typ = json_pack("{s:s}", "typ", "policy+jwt");
    assert_int_equal(clst_jwt_sign(k->jwk, cl, typ, &t2, &err), CLST_OK);
    assert_int_equal(verify_at(t2, jwks, FX_T0, 0, NULL, &err), CLST_E_VERIFY);
    free(t2);
    json_decref(typ);
    assert_int_equal(clst_jwt_sign(k->jwk, cl, NULL, &t2, &err), CLST_OK);
    assert_int_equal(verify_at(t2, jwks, FX_T0, 0, NULL, &err), CLST_OK);
    free(t2);
    json_object_del(cl, "exp");
    assert_int_equal(clst_jwt_sign(k->jwk, cl, NULL, &t2, &err), CLST_OK);
    assert_int_not_equal(verify_at(t2, jwks, FX_T0, 0, NULL, &err), CLST_OK);
    free(t2);
    json_object_set_new(cl, "exp", json_integer(FX_T0 + 60));
    json_object_del(cl, "iat");
    assert_int_equal(clst_jwt_sign(k->jwk, cl, NULL, &t2, &err), CLST_OK);
    assert_int_not_equal(verify_at(t2, jwks, FX_T0, 0, NULL, &err), CLST_OK);
    free(t2);
    /* Issued in the future. */
    json_object_set_new(cl, "iat", json_integer(FX_T0 + 30));
    assert_int_equal(clst_jwt_sign(k->jwk, cl, NULL, &t2, &err), CLST_OK);
    assert_int_equal(verify_at(t2, jwks, FX_T0, 0, NULL, &err), CLST_E_VERIFY);
    free(t2);
    json_decref(cl);

    /* Garbage. */
    assert_int_not_equal(verify_at("", jwks, FX_T0, 0, NULL, &err), CLST_OK);
    assert_int_not_equal(verify_at("a.b", jwks, FX_T0, 0, NULL, &err), CLST_OK);
    assert_int_not_equal(verify_at("a.b.c.d", jwks, FX_T0, 0, NULL, &err), CLST_OK);
    struct clst_attest_token_expect e = {NULL, NULL, 0};
    json_t *out = NULL;
    assert_int_equal(clst_attest_token_verify(token, strlen(token), jwks, &e, &out, NULL, &err),
                     CLST_E_INVAL);
    assert_int_equal(clst_attest_token_verify(NULL, 0, jwks, &e, &out, NULL, &err), CLST_E_INVAL);

    json_decref(header);
    clst_jwks_free(jwks);
    free(token);
    fx_teardown(&f);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_checklist),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
