/*
 * Unit tests for src/attest/rest.c, against the real server on 127.0.0.1:0 with a test
 * authentication hook: every route, api-version checks, type names, the issuer taken from the
 * configuration or the Host header, attestation denials (400 PolicyEvaluationError with the
 * explanation), the cloud's policy shapes (JSON, unsecured JWS, refused signed JWS, :reset), the
 * Administrator requirement (401 without a token, 403 for other roles or a narrower scope),
 * reference values over REST, and registration errors.
 */
#define FX_WITH_SERVER
#include "attest_fixture.h"

#define AV "api-version=2022-08-01"

static long
req(const struct fx_server *s, const char *bearer, const char *method, const char *path,
    const char *ctype, const char *body, json_t **out)
{
    struct clst_attest_client c = {s->url, s->ca, bearer, 30};
    struct clst_buf resp;
    struct clst_err err = {0};
    long status = 0;
    clst_buf_init(&resp, CLST_ATTEST_CLIENT_MAX_RESPONSE);
    enum clst_status st = clst_attest_client_request(&c, method, path, ctype, body,
                                                     body ? strlen(body) : 0, &status, &resp,
                                                     &err);
    if (st != CLST_OK) {
        fprintf(stderr, "%s %s: %s\n", method, path, err.msg);
    }
    assert_int_equal(st, CLST_OK);
    if (out != NULL) {
        *out = json_loadb(resp.size ? (const char *)resp.data : "", resp.size, 0, NULL);
    }
    clst_buf_cleanup(&resp);
    return status;
}

static const char *
error_message(const json_t *j)
{
    const char *m = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
    return m ? m : "";
}

static char *
attest_body(struct fx *f, uint16_t svn)
{
    struct clst_sim_identity id;
    struct clst_buf ev, b64, rb64;
    fx_identity(&id, 0x33, svn, false);
    fx_evidence(f, &id, "{\"a\":1}", 7, &ev);
    clst_buf_init(&b64, 8192);
    clst_buf_init(&rb64, 64);
    assert_int_equal(clst_b64url_encode(ev.data, ev.size, &b64), CLST_OK);
    assert_int_equal(clst_buf_terminate(&b64), CLST_OK);
    assert_int_equal(clst_b64url_encode((const uint8_t *)"{\"a\":1}", 7, &rb64), CLST_OK);
    assert_int_equal(clst_buf_terminate(&rb64), CLST_OK);
    json_t *j = json_pack("{s:s, s:{s:s, s:s}}", "report", (const char *)b64.data, "runtimeData",
                          "data", (const char *)rb64.data, "dataType", "JSON");
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    clst_buf_cleanup(&ev);
    clst_buf_cleanup(&b64);
    clst_buf_cleanup(&rb64);
    return text;
}

static void
test_public_routes(void **state)
{
    (void)state;
    struct fx f;
    struct fx_server s;
    struct clst_err err = {0};
    json_t *j = NULL;
    fx_setup(&f);
    fx_server_start(&f, &s);

    assert_int_equal(req(&s, NULL, "GET", "/certs", NULL, NULL, &j), 200);
    assert_int_equal(json_array_size(json_object_get(j, "keys")), 1);
    json_decref(j);
    assert_int_equal(req(&s, NULL, "GET", "/.well-known/openid-configuration", NULL, NULL, &j),
                     200);
    assert_string_equal(json_string_value(json_object_get(j, "issuer")), FX_ISSUER);
    json_decref(j);
    /* Without a configured issuer, it comes from the Host header. */
    assert_int_equal(clst_attest_issuer_set(f.a, NULL, &err), CLST_OK);
    assert_int_equal(req(&s, NULL, "GET", "/.well-known/openid-configuration", NULL, NULL, &j),
                     200);
    assert_string_equal(json_string_value(json_object_get(j, "issuer")), s.url);
    json_decref(j);
    assert_int_equal(clst_attest_issuer_set(f.a, FX_ISSUER, &err), CLST_OK);

    assert_int_equal(req(&s, NULL, "POST", "/attest/challenge?" AV, NULL, NULL, &j), 200);
    assert_int_equal(strlen(json_string_value(json_object_get(j, "nonce"))), 43);
    assert_int_equal(json_integer_value(json_object_get(j, "expiresOn")), FX_T0 + 300);
    assert_string_equal(json_string_value(json_object_get(j, "expiresAt")), "2026-09-21T14:18:20Z");
    json_decref(j);
    assert_int_equal(req(&s, NULL, "POST", "/attest/challenge", NULL, NULL, &j), 400);
    json_decref(j);

    char *body = attest_body(&f, 1);
    assert_int_equal(req(&s, NULL, "POST", "/attest/SimEnclave?" AV, "application/json", body, &j),
                     200);
    const char *token = json_string_value(json_object_get(j, "token"));
    assert_non_null(token);
    struct clst_jwks *jwks = fx_jwks(f.a);
    struct clst_attest_token_expect e = {FX_ISSUER, &f.clock, 0};
    json_t *claims = NULL;
    assert_int_equal(clst_attest_token_verify(token, strlen(token), jwks, &e, &claims, NULL, &err),
                     CLST_OK);
    json_decref(claims);
    clst_jwks_free(jwks);
    json_decref(j);

    /* api-version, type names. */
    assert_int_equal(req(&s, NULL, "POST", "/attest/SimEnclave", NULL, body, &j), 400);
    assert_non_null(strstr(error_message(j), "api-version"));
    json_decref(j);
    assert_int_equal(req(&s, NULL, "POST", "/attest/SimEnclave?api-version=2019-01-01", NULL, body,
                         &j),
                     400);
    json_decref(j);
    for (const char *const *v = (const char *const[]){"2020-10-01", "2025-06-01", NULL}; *v; v++) {
        char path[128];
        snprintf(path, sizeof(path), "/attest/SimEnclave?api-version=%s", *v);
        assert_int_equal(req(&s, NULL, "POST", path, NULL, body, &j), 200);
        json_decref(j);
    }
    assert_int_equal(req(&s, NULL, "POST", "/attest/sim?" AV, NULL, body, &j), 404);
    assert_non_null(strstr(error_message(j), "SimEnclave"));
    json_decref(j);
    assert_int_equal(req(&s, NULL, "POST", "/attest/Nope?" AV, NULL, body, &j), 404);
    json_decref(j);
    assert_int_equal(req(&s, NULL, "POST", "/attest/SevSnpVm?" AV, NULL, body, &j), 400);
    assert_non_null(strstr(error_message(j), "evidence rejected"));
    json_decref(j);
    assert_int_equal(req(&s, NULL, "POST", "/attest/SgxEnclave?" AV, NULL, body, &j), 400);
    assert_non_null(strstr(error_message(j), "--collateral"));
    json_decref(j);
    if (!clst_evidence_kind_supported(CLST_EVIDENCE_AZURE_VTPM)) {
        assert_int_equal(req(&s, NULL, "POST", "/attest/AzureVm?" AV, NULL, body, &j), 400);
        assert_non_null(strstr(error_message(j), "not available in this build"));
        json_decref(j);
    }
    assert_int_equal(req(&s, NULL, "GET", "/attest/SimEnclave?" AV, NULL, NULL, &j), 405);
    json_decref(j);
    assert_int_equal(req(&s, NULL, "POST", "/attest/SimEnclave?" AV, NULL, "{}", &j), 400);
    assert_non_null(strstr(error_message(j), "exactly one"));
    json_decref(j);

    /* A denial: 400 PolicyEvaluationError, with the explanation. */
    const char *pol = "{\"version\":\"1.0.0\",\"authorizationRules\":{\"allOf\":[{\"claim\":"
                      "\"x-cloister-sim-svn\",\"greater\":5}]}}";
    const struct clst_attest_type *sim = NULL;
    assert_int_equal(clst_attest_type_find("sim", &sim, NULL), CLST_OK);
    assert_int_equal(clst_attest_policy_set(f.a, sim, pol, strlen(pol), &err), CLST_OK);
    assert_int_equal(req(&s, NULL, "POST", "/attest/SimEnclave?" AV, NULL, body, &j), 400);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "error"), "code")),
                        "PolicyEvaluationError");
    assert_non_null(strstr(error_message(j), "x-cloister-sim-svn"));
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_object_get(json_object_get(j, "error"), "denial"),
                                            "denial"),
                            "claim")),
                        "x-cloister-sim-svn");
    json_decref(j);

    free(body);
    fx_server_stop(&s);
    fx_teardown(&f);
}

static void
test_admin_routes(void **state)
{
    (void)state;
    struct fx f;
    struct fx_server s;
    json_t *j = NULL;
    fx_setup(&f);
    fx_server_start(&f, &s);
    const char *p = "/policies/SimEnclave?" AV;

    assert_int_equal(req(&s, NULL, "GET", p, NULL, NULL, &j), 401);
    json_decref(j);
    assert_int_equal(req(&s, "nope", "GET", p, NULL, NULL, &j), 401);
    json_decref(j);
    assert_int_equal(req(&s, "user", "GET", p, NULL, NULL, &j), 403);
    assert_non_null(strstr(error_message(j), "Administrator"));
    json_decref(j);
    assert_int_equal(req(&s, "scoped", "GET", p, NULL, NULL, &j), 403);
    json_decref(j);
    assert_int_equal(req(&s, "user", "GET", "/attest/refvals/SimEnclave?" AV, NULL, NULL, &j), 403);
    json_decref(j);

    /* GET: a signed token whose x-ms-policy is the cloud's stored-policy JWS. */
    assert_int_equal(req(&s, "admin", "GET", p, NULL, NULL, &j), 200);
    const char *token = json_string_value(json_object_get(j, "token"));
    struct clst_jwks *jwks = fx_jwks(f.a);
    struct clst_attest_token_expect e = {FX_ISSUER, &f.clock, 0};
    json_t *claims = NULL;
    struct clst_err err = {0};
    assert_int_equal(clst_attest_token_verify(token, strlen(token), jwks, &e, &claims, NULL, &err),
                     CLST_OK);
    const char *xp = json_string_value(json_object_get(claims, "x-ms-policy"));
    assert_non_null(xp);
    assert_int_equal(strncmp(xp, "eyJhbGciOiJub25lIn0.", 20), 0); /* {"alg":"none"} */
    assert_int_equal(xp[strlen(xp) - 1], '.');
    assert_true(json_is_true(json_object_get(claims, "x-cloister-policy-default")));
    assert_null(json_object_get(claims, "x-ms-policy-result"));
    assert_int_equal(strlen(json_string_value(json_object_get(claims, "x-ms-policy-token-hash"))),
                     43);
    json_decref(claims);
    json_decref(j);

    /* PUT: the policy JSON, or an unsecured JWS of {"AttestationPolicy": b64url(policy)}. */
    const char *pol = "{\"version\":\"1.0.0\",\"authorizationRules\":{\"allOf\":[{\"claim\":"
                      "\"x-cloister-sim-svn\",\"exists\":true}]}}";
    assert_int_equal(req(&s, "admin", "PUT", p, "application/json", pol, &j), 200);
    token = json_string_value(json_object_get(j, "token"));
    assert_int_equal(clst_attest_token_verify(token, strlen(token), jwks, &e, &claims, NULL, &err),
                     CLST_OK);
    assert_string_equal(json_string_value(json_object_get(claims, "x-ms-policy-result")),
                        "Updated");
    assert_false(json_is_true(json_object_get(claims, "x-cloister-policy-default")));
    json_decref(claims);
    json_decref(j);
    struct clst_buf pb, jws;
    clst_buf_init(&pb, 4096);
    clst_buf_init(&jws, 8192);
    assert_int_equal(clst_b64url_encode((const uint8_t *)pol, strlen(pol), &pb), CLST_OK);
    assert_int_equal(clst_buf_terminate(&pb), CLST_OK);
    char payload[4096];
    snprintf(payload, sizeof(payload), "{\"AttestationPolicy\":\"%s\"}", (const char *)pb.data);
    assert_int_equal(clst_buf_append_str(&jws, "eyJhbGciOiJub25lIn0."), CLST_OK);
    assert_int_equal(clst_b64url_encode((const uint8_t *)payload, strlen(payload), &jws), CLST_OK);
    assert_int_equal(clst_buf_append_str(&jws, "."), CLST_OK);
    assert_int_equal(clst_buf_terminate(&jws), CLST_OK);
    assert_int_equal(req(&s, "admin", "PUT", p, "text/plain", (const char *)jws.data, &j), 200);
    json_decref(j);
    /* With a signature after alg none; signed (ES256) policy tokens; garbage; bad policies. */
    char with_sig[9000];
    snprintf(with_sig, sizeof(with_sig), "%sAAAA", (const char *)jws.data);
    assert_int_equal(req(&s, "admin", "PUT", p, "text/plain", with_sig, &j), 400);
    json_decref(j);
    char es[9000];
    snprintf(es, sizeof(es), "eyJhbGciOiJFUzI1NiJ9.%s", strchr((const char *)jws.data, '.') + 1);
    assert_int_equal(req(&s, "admin", "PUT", p, "text/plain", es, &j), 400);
    assert_non_null(strstr(error_message(j), "signed policy tokens"));
    json_decref(j);
    assert_int_equal(req(&s, "admin", "PUT", p, "text/plain", "garbage", &j), 400);
    json_decref(j);
    assert_int_equal(req(&s, "admin", "PUT", p, "application/json",
                         "{\"version\":\"1.0.0\",\"authorizationRules\":{\"allOf\":[]}}", &j),
                     400);
    json_decref(j);
    clst_buf_cleanup(&pb);
    clst_buf_cleanup(&jws);

    /* :reset */
    assert_int_equal(req(&s, "admin", "POST", "/policies/SimEnclave:reset?" AV, "text/plain",
                         "eyJhbGciOiJub25lIn0..", &j),
                     200);
    token = json_string_value(json_object_get(j, "token"));
    assert_int_equal(clst_attest_token_verify(token, strlen(token), jwks, &e, &claims, NULL, &err),
                     CLST_OK);
    assert_string_equal(json_string_value(json_object_get(claims, "x-ms-policy-result")),
                        "Removed");
    assert_true(json_is_true(json_object_get(claims, "x-cloister-policy-default")));
    json_decref(claims);
    json_decref(j);
    assert_int_equal(req(&s, "admin", "POST", p, NULL, NULL, &j), 404);
    json_decref(j);
    assert_int_equal(req(&s, "admin", "GET", "/policies/SimEnclave:reset?" AV, NULL, NULL, &j),
                     404);
    json_decref(j);
    assert_int_equal(req(&s, "admin", "POST", "/policies/SimEnclave:bogus?" AV, NULL, NULL, &j),
                     404);
    json_decref(j);
    assert_int_equal(req(&s, "admin", "GET", "/policies/Nope?" AV, NULL, NULL, &j), 404);
    json_decref(j);
    assert_int_equal(req(&s, "admin", "GET", "/policies/SimEnclave", NULL, NULL, &j), 400);
    json_decref(j);

    /* Reference values. */
    char mr[97];
    memset(mr, 'c', 96);
    mr[96] = '\0';
    char body[300];
    snprintf(body, sizeof(body), "{\"value\":\"%s\",\"note\":\"n\"}", mr);
    const char *r = "/attest/refvals/SimEnclave?" AV;
    assert_int_equal(req(&s, "admin", "POST", r, "application/json", body, &j), 201);
    assert_int_equal(json_array_size(json_object_get(j, "value")), 1);
    assert_string_equal(json_string_value(json_object_get(j, "measurementClaim")),
                        CLST_SIM_CLAIM_MRENCLAVE);
    json_decref(j);
    assert_int_equal(req(&s, "admin", "POST", r, "application/json", body, &j), 409);
    json_decref(j);
    assert_int_equal(req(&s, "admin", "POST", r, "application/json", "{\"value\":1}", &j), 400);
    json_decref(j);
    assert_int_equal(req(&s, "admin", "POST", r, "application/json", "{\"value\":\"x\",\"y\":1}",
                         &j),
                     400);
    json_decref(j);
    assert_int_equal(req(&s, "admin", "POST", r, "application/json", "not json", &j), 400);
    json_decref(j);
    assert_int_equal(req(&s, "admin", "GET", r, NULL, NULL, &j), 200);
    assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(j, "value"), 0), "note")),
                        "n");
    json_decref(j);
    char del[400];
    snprintf(del, sizeof(del), "%s&value=%s", r, mr);
    assert_int_equal(req(&s, "admin", "DELETE", del, NULL, NULL, &j), 200);
    assert_int_equal(json_array_size(json_object_get(j, "value")), 0);
    json_decref(j);
    assert_int_equal(req(&s, "admin", "DELETE", del, NULL, NULL, &j), 404);
    json_decref(j);
    assert_int_equal(req(&s, "admin", "DELETE", r, NULL, NULL, &j), 400);
    json_decref(j);

    clst_jwks_free(jwks);
    fx_server_stop(&s);
    fx_teardown(&f);
}

/* The public routes alone need no authentication hook. */
static void
test_public_only(void **state)
{
    (void)state;
    struct fx f;
    struct clst_err err = {0};
    struct clst_server_datadir *dir = NULL;
    struct clst_server *srv = NULL;
    struct clst_server_config cfg;
    char path[300];
    fx_setup(&f);
    snprintf(path, sizeof(path), "%s/data", f.dir);
    assert_int_equal(clst_server_datadir_open(path, "127.0.0.1", NULL, &dir, &err), CLST_OK);
    clst_server_config_init(&cfg);
    cfg.port = 0;
    cfg.thread_count = 1;
    cfg.tls_cert_pem = dir->server_cert_pem;
    cfg.tls_key_pem = (const char *)dir->server_key_pem->ptr;
    assert_int_equal(clst_server_new(&cfg, &srv, &err), CLST_OK);
    assert_int_equal(clst_attest_register(f.a, srv, &err), CLST_OK);
    assert_int_equal(clst_attest_register(f.a, srv, &err), CLST_E_CONFLICT);
    assert_int_equal(clst_server_start(srv, &err), CLST_OK);
    clst_server_free(srv);
    srv = NULL;
    /* With the administrator routes but no hook, the server refuses to start. */
    assert_int_equal(clst_server_new(&cfg, &srv, &err), CLST_OK);
    assert_int_equal(clst_attest_register_admin(f.a, srv, &err), CLST_OK);
    assert_int_not_equal(clst_server_start(srv, &err), CLST_OK);
    clst_server_free(srv);
    clst_server_datadir_free(dir);
    fx_teardown(&f);
}

static void
test_register_errors(void **state)
{
    (void)state;
    struct fx f;
    struct fx_server s;
    struct clst_err err = {0};
    fx_setup(&f);
    fx_server_start(&f, &s);
    assert_int_equal(clst_attest_register(NULL, s.server, &err), CLST_E_INVAL);
    assert_int_equal(clst_attest_register(f.a, NULL, &err), CLST_E_INVAL);
    assert_int_equal(clst_attest_register_admin(NULL, s.server, &err), CLST_E_INVAL);
    assert_int_equal(clst_attest_register_admin(f.a, NULL, &err), CLST_E_INVAL);
    assert_int_not_equal(clst_attest_register_admin(f.a, s.server, &err), CLST_OK);
    /* After start, routes cannot be added. */
    assert_int_not_equal(clst_attest_register(f.a, s.server, &err), CLST_OK);
    fx_server_stop(&s);
    fx_teardown(&f);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_public_routes),
        cmocka_unit_test(test_admin_routes),
        cmocka_unit_test(test_public_only),
        cmocka_unit_test(test_register_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
