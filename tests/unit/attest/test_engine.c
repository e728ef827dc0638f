/*
 * Unit tests for src/attest/engine.c: the type table, configuration checks, challenges (single
 * use, expiry, replay across a reopen of the database), and the pipeline evidence -> claims ->
 * appraisal -> token with its bad inputs: untrusted sim root, runtime data that does not match
 * the report data, a debuggable enclave, a tampered report, unbound and unknown nonces,
 * initTimeData, types without a verifier; and the token's claims and header.
 */
#include "attest_fixture.h"

static void
test_types(void **state)
{
    (void)state;
    const struct clst_attest_type *t = NULL;
    struct clst_err err = {0};
    assert_int_equal(clst_attest_type_find("SimEnclave", &t, &err), CLST_OK);
    assert_string_equal(t->attestation_type, "sim");
    assert_int_equal(t->kind, CLST_EVIDENCE_SIM);
    const struct clst_attest_type *t2 = NULL;
    assert_int_equal(clst_attest_type_find("sim", &t2, &err), CLST_OK);
    assert_ptr_equal(t, t2);
    assert_int_equal(clst_attest_type_find("simenclave", &t2, &err), CLST_E_NOTFOUND);
    assert_non_null(strstr(err.msg, "SimEnclave"));
    assert_int_equal(clst_attest_type_find(NULL, &t2, &err), CLST_E_NOTFOUND);
    assert_int_equal(clst_attest_type_count(), 7);
    assert_null(clst_attest_type_at(7));
    const char *names[] = {"SgxEnclave", "SevSnpVm", "TdxVm", "Tpm", "AzureVm", "NitroEnclave"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        assert_int_equal(clst_attest_type_find(names[i], &t2, &err), CLST_OK);
        assert_int_not_equal(t2->kind, CLST_EVIDENCE_SIM);
    }
    for (size_t i = 0; i < clst_attest_type_count(); i++) {
        /* No hardware type reuses the sim's names, and sim never a hardware one. */
        const struct clst_attest_type *x = clst_attest_type_at(i);
        if (x->kind != CLST_EVIDENCE_SIM) {
            assert_null(strstr(x->measurement_claim, "cloister-sim"));
            assert_string_not_equal(x->attestation_type, "sim");
        }
    }
}

static void
test_config(void **state)
{
    (void)state;
    struct fx f;
    struct clst_attest *a = NULL;
    struct clst_err err = {0};
    struct clst_attest_config cfg;
    fx_setup_platform(&f);

    clst_attest_config_init(&cfg);
    cfg.db_path = f.db;
    assert_int_equal(clst_attest_new(&cfg, &a, &err), CLST_E_INVAL); /* no master key */
    assert_non_null(strstr(err.msg, "master key"));
    cfg.master_key = fx_master_key;
    cfg.master_key_size = 16;
    assert_int_equal(clst_attest_new(&cfg, &a, &err), CLST_E_INVAL);
    cfg.master_key_size = 32;
    cfg.token_lifetime = 10;
    assert_int_equal(clst_attest_new(&cfg, &a, &err), CLST_E_INVAL);
    assert_non_null(strstr(err.msg, "lifetime"));
    cfg.token_lifetime = CLST_ATTEST_MAX_TOKEN_LIFETIME + 1;
    assert_int_equal(clst_attest_new(&cfg, &a, &err), CLST_E_INVAL);
    cfg.token_lifetime = 0;
    cfg.nonce_lifetime = 5;
    assert_int_equal(clst_attest_new(&cfg, &a, &err), CLST_E_INVAL);
    cfg.nonce_lifetime = 0;
    cfg.key_period = 60;
    assert_int_equal(clst_attest_new(&cfg, &a, &err), CLST_E_INVAL);
    cfg.key_period = 0;
    const char *bad_issuers[] = {"http://x", "https://", "https://a/b", "https://a/",
                                 "https://a b", "https://a?x", "ftp://a"};
    for (size_t i = 0; i < sizeof(bad_issuers) / sizeof(bad_issuers[0]); i++) {
        cfg.issuer = bad_issuers[i];
        assert_int_equal(clst_attest_new(&cfg, &a, &err), CLST_E_INVAL);
    }
    cfg.issuer = NULL;
    cfg.db_path = ":memory:";
    assert_int_equal(clst_attest_new(&cfg, &a, &err), CLST_E_INVAL);
    cfg.db_path = f.db;
    cfg.clock = &f.clock;
    assert_int_equal(clst_attest_new(&cfg, &a, &err), CLST_OK);
    /* No issuer configured: a token cannot be made without one given per request. */
    char iss[CLST_ATTEST_MAX_ISSUER_SIZE + 1];
    assert_int_equal(attest_issuer_pick(a, NULL, iss, &err), CLST_E_INVAL);
    assert_int_equal(attest_issuer_pick(a, "https://x.example", iss, &err), CLST_OK);
    assert_string_equal(iss, "https://x.example");
    assert_int_equal(clst_attest_issuer_set(a, "https://bad/", &err), CLST_E_INVAL);
    assert_int_equal(clst_attest_issuer_set(a, "https://[::1]:8443", &err), CLST_OK);
    assert_int_equal(attest_issuer_pick(a, NULL, iss, &err), CLST_OK);
    assert_string_equal(iss, "https://[::1]:8443");
    clst_attest_free(a);
    clst_attest_free(NULL);

    /* The database file must be private. */
    assert_int_equal(chmod(f.db, 0644), 0);
    assert_int_equal(clst_attest_new(&cfg, &a, &err), CLST_E_DENIED);
    assert_non_null(strstr(err.msg, "0600"));
    /* Another master key cannot open the sealed signing keys. */
    assert_int_equal(chmod(f.db, 0600), 0);
    uint8_t other[32];
    memset(other, 9, sizeof(other));
    cfg.master_key = other;
    assert_int_equal(clst_attest_new(&cfg, &a, &err), CLST_E_VERIFY);
    assert_non_null(strstr(err.msg, "master key"));
    fx_teardown(&f);
}

static void
test_challenge(void **state)
{
    (void)state;
    struct fx f;
    struct clst_err err = {0};
    char n1[CLST_ATTEST_NONCE_TEXT_SIZE], n2[CLST_ATTEST_NONCE_TEXT_SIZE];
    int64_t exp1, exp2;
    fx_setup(&f);
    assert_int_equal(clst_attest_challenge_new(f.a, n1, &exp1, &err), CLST_OK);
    assert_int_equal(clst_attest_challenge_new(f.a, n2, &exp2, &err), CLST_OK);
    assert_int_equal(strlen(n1), 43);
    assert_string_not_equal(n1, n2);
    assert_int_equal(exp1, FX_T0 + CLST_ATTEST_DEFAULT_NONCE_LIFETIME);

    assert_int_equal(clst_attest_nonce_consume(f.a, n1, &err), CLST_OK);
    assert_int_equal(clst_attest_nonce_consume(f.a, n1, &err), CLST_E_VERIFY);
    assert_non_null(strstr(err.msg, "already used"));
    /* Unknown, wrong length, never issued. */
    assert_int_equal(clst_attest_nonce_consume(f.a, "abc", &err), CLST_E_VERIFY);
    assert_non_null(strstr(err.msg, "unknown nonce"));
    char forged[CLST_ATTEST_NONCE_TEXT_SIZE];
    memcpy(forged, n2, sizeof(forged));
    forged[0] = forged[0] == 'A' ? 'B' : 'A';
    assert_int_equal(clst_attest_nonce_consume(f.a, forged, &err), CLST_E_VERIFY);
    assert_non_null(strstr(err.msg, "unknown nonce"));

    /* A restart (a new engine on the same database) cannot make a used nonce usable again,
     * and an unused one stays usable until it expires. */
    clst_attest_free(f.a);
    f.a = NULL;
    assert_int_equal(fx_engine_new(&f, true, 0, &f.a, &err), CLST_OK);
    assert_int_equal(clst_attest_nonce_consume(f.a, n1, &err), CLST_E_VERIFY);
    assert_non_null(strstr(err.msg, "already used"));
    f.clock.fixed = exp2; /* expiry is exclusive */
    assert_int_equal(clst_attest_nonce_consume(f.a, n2, &err), CLST_E_VERIFY);
    assert_non_null(strstr(err.msg, "expired"));
    /* A new challenge purges expired ones: then they are simply unknown. */
    assert_int_equal(clst_attest_challenge_new(f.a, n1, &exp1, &err), CLST_OK);
    assert_int_equal(clst_attest_nonce_consume(f.a, n2, &err), CLST_E_VERIFY);
    assert_non_null(strstr(err.msg, "unknown nonce"));
    f.clock.fixed = exp1 - 1;
    assert_int_equal(clst_attest_nonce_consume(f.a, n1, &err), CLST_OK);
    fx_teardown(&f);
}

/* Evaluates and returns the status; the token and claims when asked. */
static enum clst_status
run(struct fx *f, struct clst_attest_request *r, char **token, json_t **claims,
    json_t **denial, struct clst_err *err)
{
    char *t = NULL;
    json_t *c = NULL;
    enum clst_status st = clst_attest_evaluate(f->a, r, NULL, &t, &c, denial, err);
    if (token != NULL) {
        *token = t;
    } else {
        free(t);
    }
    if (claims != NULL) {
        *claims = c;
    } else {
        json_decref(c);
    }
    clst_attest_request_cleanup(r);
    return st;
}

static void
test_attest_ok(void **state)
{
    (void)state;
    struct fx f;
    struct clst_err err = {0};
    struct clst_sim_identity id;
    struct clst_buf ev;
    struct clst_attest_request r;
    char *token = NULL;
    json_t *claims = NULL, *vclaims = NULL, *header = NULL;
    const char *runtime = "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"tee\","
                          "\"x\":\"x\",\"y\":\"y\"}]}";
    fx_setup(&f);
    fx_identity(&id, 0xa1, 3, false);
    fx_evidence(&f, &id, runtime, strlen(runtime), &ev);
    fx_request(&r, &ev, CLST_ATTEST_DATA_JSON, runtime, NULL);
    assert_int_equal(run(&f, &r, &token, &claims, NULL, &err), CLST_OK);

    /* The token verifies with the published keys, and says what the evidence says. */
    struct clst_jwks *jwks = fx_jwks(f.a);
    struct clst_attest_token_expect e = {FX_ISSUER, &f.clock, 0};
    assert_int_equal(clst_attest_token_verify(token, strlen(token), jwks, &e, &vclaims, &header,
                                              &err),
                     CLST_OK);
    assert_string_equal(json_string_value(json_object_get(header, "alg")), "ES256");
    assert_string_equal(json_string_value(json_object_get(header, "typ")), "JWT");
    assert_string_equal(json_string_value(json_object_get(header, "jku")), FX_ISSUER "/certs");
    char *kid = NULL;
    assert_int_equal(clst_attest_current_kid(f.a, &kid, &err), CLST_OK);
    assert_string_equal(json_string_value(json_object_get(header, "kid")), kid);
    free(kid);
    assert_true(json_equal(claims, vclaims));
    assert_string_equal(json_string_value(json_object_get(vclaims, "iss")), FX_ISSUER);
    assert_int_equal(json_integer_value(json_object_get(vclaims, "iat")), FX_T0);
    assert_int_equal(json_integer_value(json_object_get(vclaims, "nbf")), FX_T0);
    assert_int_equal(json_integer_value(json_object_get(vclaims, "exp")), FX_T0 + 8 * 3600);
    assert_int_equal(strlen(json_string_value(json_object_get(vclaims, "jti"))), 64);
    assert_string_equal(json_string_value(json_object_get(vclaims, "x-ms-ver")), "1.0");
    assert_string_equal(json_string_value(json_object_get(vclaims, "x-ms-attestation-type")),
                        "sim");
    assert_int_equal(json_integer_value(json_object_get(vclaims, "x-cloister-sim-svn")), 3);
    assert_int_equal(json_integer_value(json_object_get(vclaims, "x-cloister-sim-product-id")), 7);
    assert_true(json_is_false(json_object_get(vclaims, "x-cloister-sim-is-debuggable")));
    const char *mr = json_string_value(json_object_get(vclaims, "x-cloister-sim-mrenclave"));
    assert_non_null(mr);
    assert_int_equal(strlen(mr), 96);
    assert_int_equal(strncmp(mr, "a1a1a1", 6), 0);
    assert_int_equal(strlen(json_string_value(json_object_get(vclaims, "x-cloister-sim-mrsigner"))),
                     64);
    /* x-ms-runtime is the runtime data, with the TEE's public key as a JWK under keys. */
    const json_t *rt = json_object_get(vclaims, "x-ms-runtime");
    assert_true(json_is_object(rt));
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(rt, "keys"), 0), "kid")),
                        "tee");
    assert_null(json_object_get(vclaims, "nonce"));
    /* The policy hash is the one in force. */
    char *hash = NULL;
    const struct clst_attest_type *t = NULL;
    assert_int_equal(clst_attest_type_find("sim", &t, NULL), CLST_OK);
    assert_int_equal(clst_attest_policy_effective(f.a, t, NULL, &hash, &err), CLST_OK);
    assert_string_equal(json_string_value(json_object_get(vclaims, "x-ms-policy-hash")), hash);
    free(hash);

    /* Binary runtime data goes to x-cloister-sim-ehd (base64url), not x-ms-runtime. */
    clst_buf_cleanup(&ev);
    fx_evidence(&f, &id, "\x01\x02\x03", 3, &ev);
    fx_request(&r, &ev, CLST_ATTEST_DATA_BINARY, "\x01\x02\x03", NULL);
    json_decref(claims);
    claims = NULL;
    assert_int_equal(run(&f, &r, NULL, &claims, NULL, &err), CLST_OK);
    assert_string_equal(json_string_value(json_object_get(claims, "x-cloister-sim-ehd")), "AQID");
    assert_null(json_object_get(claims, "x-ms-runtime"));

    /* Without runtime data: no binding to check, no runtime claims. */
    json_decref(claims);
    claims = NULL;
    fx_request(&r, &ev, CLST_ATTEST_DATA_NONE, NULL, NULL);
    assert_int_equal(run(&f, &r, NULL, &claims, NULL, &err), CLST_OK);
    assert_null(json_object_get(claims, "x-cloister-sim-ehd"));

    /* An explicit issuer overrides the configured one. */
    fx_request(&r, &ev, CLST_ATTEST_DATA_NONE, NULL, NULL);
    char *t2 = NULL;
    json_t *c2 = NULL;
    assert_int_equal(clst_attest_evaluate(f.a, &r, "https://other.test", &t2, &c2, NULL, &err),
                     CLST_OK);
    assert_string_equal(json_string_value(json_object_get(c2, "iss")), "https://other.test");
    clst_attest_request_cleanup(&r);
    free(t2);
    json_decref(c2);

    clst_jwks_free(jwks);
    free(token);
    json_decref(claims);
    json_decref(vclaims);
    json_decref(header);
    clst_buf_cleanup(&ev);
    fx_teardown(&f);
}

static void
test_attest_bad(void **state)
{
    (void)state;
    struct fx f;
    struct clst_err err = {0};
    struct clst_sim_identity id;
    struct clst_buf ev, dbg;
    struct clst_attest_request r;
    const char *runtime = "{\"k\":1}";
    fx_setup(&f);
    fx_identity(&id, 0xa1, 1, false);
    fx_evidence(&f, &id, runtime, strlen(runtime), &ev);

    /* Runtime data other than the bound one. */
    fx_request(&r, &ev, CLST_ATTEST_DATA_JSON, "{\"k\":2}", NULL);
    assert_int_equal(run(&f, &r, NULL, NULL, NULL, &err), CLST_E_VERIFY);
    assert_non_null(strstr(err.msg, "evidence rejected"));
    /* Same bytes, declared binary: still bound (the binding is over the bytes). */
    fx_request(&r, &ev, CLST_ATTEST_DATA_BINARY, runtime, NULL);
    assert_int_equal(run(&f, &r, NULL, NULL, NULL, &err), CLST_OK);

    /* Every byte flipped somewhere in the signed report fails (a few positions). */
    const size_t positions[] = {0, 4, 6, 8, 0x10, 0x40, 0x60, 0x80, 0xff, 0x100, ev.size - 1};
    for (size_t i = 0; i < sizeof(positions) / sizeof(positions[0]); i++) {
        struct clst_buf bad;
        clst_buf_init(&bad, ev.size);
        assert_int_equal(clst_buf_append(&bad, ev.data, ev.size), CLST_OK);
        bad.data[positions[i]] ^= 0x01;
        fx_request(&r, &bad, CLST_ATTEST_DATA_JSON, runtime, NULL);
        enum clst_status st = run(&f, &r, NULL, NULL, NULL, &err);
        assert_true(st == CLST_E_VERIFY || st == CLST_E_MALFORMED);
        clst_buf_cleanup(&bad);
    }
    /* Truncated. */
    struct clst_buf cut;
    clst_buf_init(&cut, ev.size);
    assert_int_equal(clst_buf_append(&cut, ev.data, ev.size - 1), CLST_OK);
    fx_request(&r, &cut, CLST_ATTEST_DATA_JSON, runtime, NULL);
    assert_int_equal(run(&f, &r, NULL, NULL, NULL, &err), CLST_E_MALFORMED);
    clst_buf_cleanup(&cut);

    /* A debuggable enclave. */
    fx_identity(&id, 0xa1, 1, true);
    fx_evidence(&f, &id, runtime, strlen(runtime), &dbg);
    fx_request(&r, &dbg, CLST_ATTEST_DATA_JSON, runtime, NULL);
    assert_int_equal(run(&f, &r, NULL, NULL, NULL, &err), CLST_E_VERIFY);
    assert_non_null(strstr(err.msg, "debug"));
    clst_buf_cleanup(&dbg);

    /* initTimeData cannot be bound to sim evidence. */
    fx_request(&r, &ev, CLST_ATTEST_DATA_JSON, runtime, NULL);
    r.inittime_type = CLST_ATTEST_DATA_BINARY;
    assert_int_equal(run(&f, &r, NULL, NULL, NULL, &err), CLST_E_MALFORMED);
    assert_non_null(strstr(err.msg, "initTimeData"));

    /* A hardware type this engine is not configured for (no DCAP collateral), and sim evidence
     * sent as a configured hardware type (never verified against the sim root). */
    fx_request(&r, &ev, CLST_ATTEST_DATA_JSON, runtime, NULL);
    assert_int_equal(clst_attest_type_find("SgxEnclave", &r.type, NULL), CLST_OK);
    assert_int_equal(run(&f, &r, NULL, NULL, NULL, &err), CLST_E_NOTFOUND);
    assert_non_null(strstr(err.msg, "--collateral"));
    fx_request(&r, &ev, CLST_ATTEST_DATA_JSON, runtime, NULL);
    assert_int_equal(clst_attest_type_find("SevSnpVm", &r.type, NULL), CLST_OK);
    assert_int_equal(run(&f, &r, NULL, NULL, NULL, &err), CLST_E_MALFORMED);
    assert_non_null(strstr(err.msg, "evidence rejected"));

    /* An engine that trusts no sim root refuses sim evidence and says why. */
    clst_attest_free(f.a);
    f.a = NULL;
    assert_int_equal(fx_engine_new(&f, false, 0, &f.a, &err), CLST_OK);
    fx_request(&r, &ev, CLST_ATTEST_DATA_JSON, runtime, NULL);
    assert_int_equal(run(&f, &r, NULL, NULL, NULL, &err), CLST_E_VERIFY);
    assert_non_null(strstr(err.msg, "--trust-sim"));

    /* Another platform's root is not this one's. */
    struct fx g;
    fx_setup_platform(&g);
    clst_attest_free(f.a);
    f.a = NULL;
    sk_X509_pop_free(f.roots, X509_free);
    f.roots = g.roots;
    g.roots = NULL;
    assert_int_equal(fx_engine_new(&f, true, 0, &f.a, &err), CLST_OK);
    fx_request(&r, &ev, CLST_ATTEST_DATA_JSON, runtime, NULL);
    assert_int_equal(run(&f, &r, NULL, NULL, NULL, &err), CLST_E_VERIFY);
    fx_teardown(&g);

    /* Evidence made when the platform certificate was not yet valid. */
    f.clock.fixed = FX_T0 - 86400;
    fx_request(&r, &ev, CLST_ATTEST_DATA_JSON, runtime, NULL);
    assert_int_equal(run(&f, &r, NULL, NULL, NULL, &err), CLST_E_VERIFY);

    clst_buf_cleanup(&ev);
    fx_teardown(&f);
}

static void
test_attest_nonce(void **state)
{
    (void)state;
    struct fx f;
    struct clst_err err = {0};
    struct clst_sim_identity id;
    struct clst_buf ev;
    struct clst_attest_request r;
    char nonce[CLST_ATTEST_NONCE_TEXT_SIZE];
    char runtime[256];
    int64_t expires;
    json_t *claims = NULL;
    fx_setup(&f);
    fx_identity(&id, 0xb2, 1, false);
    assert_int_equal(clst_attest_challenge_new(f.a, nonce, &expires, &err), CLST_OK);
    snprintf(runtime, sizeof(runtime), "{\"keys\":[],\"nonce\":\"%s\"}", nonce);
    fx_evidence(&f, &id, runtime, strlen(runtime), &ev);

    /* A nonce without runtime data, or runtime data that does not carry it, is refused
     * (before the nonce is consumed). */
    fx_request(&r, &ev, CLST_ATTEST_DATA_NONE, NULL, nonce);
    assert_int_equal(run(&f, &r, NULL, NULL, NULL, &err), CLST_E_VERIFY);
    assert_non_null(strstr(err.msg, "bound"));
    fx_request(&r, &ev, CLST_ATTEST_DATA_JSON, "{\"nonce\":\"other\"}", nonce);
    assert_int_equal(run(&f, &r, NULL, NULL, NULL, &err), CLST_E_VERIFY);
    assert_non_null(strstr(err.msg, "not bound"));
    fx_request(&r, &ev, CLST_ATTEST_DATA_BINARY, "no nonce at the end", nonce);
    assert_int_equal(run(&f, &r, NULL, NULL, NULL, &err), CLST_E_VERIFY);
    /* A denial by the policy does not consume the nonce either. */
    /* Bound and fresh: accepted once, echoed in the token. */
    fx_request(&r, &ev, CLST_ATTEST_DATA_JSON, runtime, nonce);
    assert_int_equal(run(&f, &r, NULL, &claims, NULL, &err), CLST_OK);
    assert_string_equal(json_string_value(json_object_get(claims, "nonce")), nonce);
    json_decref(claims);
    /* Replayed. */
    fx_request(&r, &ev, CLST_ATTEST_DATA_JSON, runtime, nonce);
    assert_int_equal(run(&f, &r, NULL, NULL, NULL, &err), CLST_E_VERIFY);
    assert_non_null(strstr(err.msg, "already used"));
    /* A nonce the service never issued, bound correctly. */
    clst_buf_cleanup(&ev);
    const char *fake = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    snprintf(runtime, sizeof(runtime), "{\"nonce\":\"%s\"}", fake);
    fx_evidence(&f, &id, runtime, strlen(runtime), &ev);
    fx_request(&r, &ev, CLST_ATTEST_DATA_JSON, runtime, fake);
    assert_int_equal(run(&f, &r, NULL, NULL, NULL, &err), CLST_E_VERIFY);
    assert_non_null(strstr(err.msg, "unknown nonce"));
    /* Expired; binary binding (runtime data ends with the nonce). */
    clst_buf_cleanup(&ev);
    assert_int_equal(clst_attest_challenge_new(f.a, nonce, &expires, &err), CLST_OK);
    snprintf(runtime, sizeof(runtime), "PUBKEY%s", nonce);
    fx_evidence(&f, &id, runtime, strlen(runtime), &ev);
    f.clock.fixed = expires;
    fx_request(&r, &ev, CLST_ATTEST_DATA_BINARY, runtime, nonce);
    assert_int_equal(run(&f, &r, NULL, NULL, NULL, &err), CLST_E_VERIFY);
    assert_non_null(strstr(err.msg, "expired"));
    f.clock.fixed = expires - 1;
    fx_request(&r, &ev, CLST_ATTEST_DATA_BINARY, runtime, nonce);
    assert_int_equal(run(&f, &r, NULL, NULL, NULL, &err), CLST_OK);
    clst_buf_cleanup(&ev);
    fx_teardown(&f);
}

static void
test_openid(void **state)
{
    (void)state;
    struct fx f;
    struct clst_err err = {0};
    json_t *doc = NULL;
    fx_setup(&f);
    assert_int_equal(clst_attest_openid_config(f.a, NULL, &doc, &err), CLST_OK);
    assert_string_equal(json_string_value(json_object_get(doc, "issuer")), FX_ISSUER);
    assert_string_equal(json_string_value(json_object_get(doc, "jwks_uri")), FX_ISSUER "/certs");
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(doc, "id_token_signing_alg_values_supported"), 0)),
        "ES256");
    const json_t *claims = json_object_get(doc, "claims_supported");
    bool has_runtime = false;
    size_t i;
    const json_t *c;
    json_array_foreach(claims, i, c) {
        has_runtime |= strcmp(json_string_value(c), "x-ms-runtime") == 0;
    }
    assert_true(has_runtime);
    json_decref(doc);
    assert_int_equal(clst_attest_openid_config(f.a, "https://h:1", &doc, &err), CLST_OK);
    assert_string_equal(json_string_value(json_object_get(doc, "jwks_uri")), "https://h:1/certs");
    json_decref(doc);
    assert_int_equal(clst_attest_openid_config(f.a, "https://h/x", &doc, &err), CLST_E_INVAL);
    fx_teardown(&f);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_types),        cmocka_unit_test(test_config),
        cmocka_unit_test(test_challenge),    cmocka_unit_test(test_attest_ok),
        cmocka_unit_test(test_attest_bad),   cmocka_unit_test(test_attest_nonce),
        cmocka_unit_test(test_openid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
