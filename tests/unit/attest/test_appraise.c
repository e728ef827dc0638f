/*
 * Unit tests for src/attest/appraise.c: default policies, set/get/reset (validated, durable,
 * x-ms-policy-hash follows the policy in force), reference values (normalized, validated, merged
 * into referenceValues without duplicates, durable), and denials that name the failing rule or
 * the measurement that is not listed, with the policy's JSON explanation.
 */
#include "attest_fixture.h"

static const struct clst_attest_type *
type_named(const char *name)
{
    const struct clst_attest_type *t = NULL;
    assert_int_equal(clst_attest_type_find(name, &t, NULL), CLST_OK);
    return t;
}

static char *
hash_of(struct clst_attest *a, const struct clst_attest_type *t)
{
    char *h = NULL;
    assert_int_equal(clst_attest_policy_effective(a, t, NULL, &h, NULL), CLST_OK);
    assert_int_equal(strlen(h), 43);
    return h;
}

/* Sim claims as the evidence produces them, with svn and mrenclave chosen. */
static json_t *
claims(int svn, const char *mr)
{
    return json_pack("{s:s, s:s, s:i, s:b}", "x-ms-attestation-type", "sim",
                     "x-cloister-sim-mrenclave", mr, "x-cloister-sim-svn", svn,
                     "x-cloister-sim-is-debuggable", 0);
}

static enum clst_status
check(struct fx *f, const json_t *c, json_t **denial, struct clst_err *err)
{
    char hash[CLST_POLICY_HASH_STR_SIZE];
    return attest_appraisal_check(f->a, attest_type_index(type_named("sim")), c, hash, denial,
                                  err);
}

static void
test_defaults(void **state)
{
    (void)state;
    struct fx f;
    json_t *p = NULL;
    bool is_default = false;
    struct clst_err err = {0};
    fx_setup(&f);
    for (size_t i = 0; i < clst_attest_type_count(); i++) {
        const struct clst_attest_type *t = clst_attest_type_at(i);
        json_t *d = attest_default_policy(t);
        char *text = json_dumps(d, JSON_COMPACT);
        assert_non_null(strstr(text, t->attestation_type));
        /* Debuggable TEEs are refused by the default policy of every kind that has a debug
         * state (a TPM has none; AzureVm's is nested under x-ms-isolation-tee); DCAP kinds admit UpToDate only. */
        bool has_debug = t->kind == CLST_EVIDENCE_SIM || t->kind == CLST_EVIDENCE_SGX ||
                         t->kind == CLST_EVIDENCE_TDX || t->kind == CLST_EVIDENCE_SEVSNP ||
                         t->kind == CLST_EVIDENCE_NITRO || t->kind == CLST_EVIDENCE_AZURE_VTPM;
        bool dcap = t->kind == CLST_EVIDENCE_SGX || t->kind == CLST_EVIDENCE_TDX;
        assert_int_equal(strstr(text, "debuggable\",\"equals\":false") != NULL, has_debug);
        assert_int_equal(strstr(text, "\"attester_tcb_status\",\"equals\":\"UpToDate\"") != NULL,
                         dcap);
        assert_int_equal(strstr(text, "is-debuggable") != NULL || strstr(text, "is_debuggable"),
                         has_debug);
        free(text);
        json_decref(d);
    }
    assert_int_equal(clst_attest_policy_get(f.a, type_named("sim"), &p, &is_default, &err),
                     CLST_OK);
    assert_true(is_default);
    json_decref(p);
    /* The default allows a non-debuggable sim enclave and nothing else. */
    json_t *c = claims(1, "aa");
    assert_int_equal(check(&f, c, NULL, &err), CLST_OK);
    json_object_set_new(c, "x-cloister-sim-is-debuggable", json_true());
    assert_int_equal(check(&f, c, NULL, &err), CLST_E_DENIED);
    json_object_set_new(c, "x-cloister-sim-is-debuggable", json_false());
    json_object_set_new(c, "x-ms-attestation-type", json_string("sevsnpvm"));
    assert_int_equal(check(&f, c, NULL, &err), CLST_E_DENIED);
    json_decref(c);
    fx_teardown(&f);
}

static void
test_set_reset(void **state)
{
    (void)state;
    struct fx f;
    struct clst_err err = {0};
    json_t *denial = NULL, *p = NULL;
    bool is_default = true;
    fx_setup(&f);
    const struct clst_attest_type *sim = type_named("sim");
    char *h0 = hash_of(f.a, sim);
    const char *pol = "{\"authorizationRules\":{\"allOf\":[{\"claim\":\"x-cloister-sim-svn\","
                      "\"greaterOrEquals\":2}]},\"version\":\"1.0.0\"}";
    assert_int_equal(clst_attest_policy_set(f.a, sim, pol, strlen(pol), &err), CLST_OK);
    char *h1 = hash_of(f.a, sim);
    assert_string_not_equal(h0, h1);
    /* Member order and whitespace do not change the hash. */
    const char *same = "{ \"version\": \"1.0.0\", \"authorizationRules\": {\"allOf\": "
                       "[{\"greaterOrEquals\": 2, \"claim\": \"x-cloister-sim-svn\"}]} }";
    assert_int_equal(clst_attest_policy_set(f.a, sim, same, strlen(same), &err), CLST_OK);
    char *h1b = hash_of(f.a, sim);
    assert_string_equal(h1, h1b);
    free(h1b);

    json_t *c = claims(1, "aa");
    assert_int_equal(check(&f, c, &denial, &err), CLST_E_DENIED);
    assert_non_null(strstr(err.msg, "authorizationRules.allOf[0]"));
    assert_non_null(strstr(err.msg, "x-cloister-sim-svn"));
    assert_non_null(strstr(err.msg, "actual 1"));
    assert_string_equal(json_string_value(json_object_get(json_object_get(denial, "denial"), "path")),
                        "authorizationRules.allOf[0]");
    json_decref(denial);
    denial = NULL;
    json_object_set_new(c, "x-cloister-sim-svn", json_integer(2));
    assert_int_equal(check(&f, c, NULL, &err), CLST_OK);
    assert_int_equal(clst_attest_policy_get(f.a, sim, &p, &is_default, &err), CLST_OK);
    assert_false(is_default);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(json_object_get(json_object_get(p, "authorizationRules"), "allOf"), 0), "greaterOrEquals")),
                     2);
    json_decref(p);

    /* Invalid policies are refused with the parser's message; the policy in force stays. */
    const char *bad[] = {
        "", "[]", "{\"version\":\"1.0.0\"}",
        "{\"version\":\"1.0.0\",\"authorizationRules\":{\"allOf\":[{\"claim\":\"x\",\"equal\":1}]}}",
        "{\"version\":\"2.0.0\",\"authorizationRules\":{\"allOf\":[{\"claim\":\"x\",\"equals\":1}]}}",
        "{\"version\":\"1.0.0\",\"anyOf\":[{\"authority\":\"https://a\",\"allOf\":[{\"claim\":\"x\",\"equals\":1}]}]}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        enum clst_status st = clst_attest_policy_set(f.a, sim, bad[i], strlen(bad[i]), &err);
        assert_true(st == CLST_E_MALFORMED || st == CLST_E_LIMIT);
        assert_non_null(strstr(err.msg, "not set"));
        char *h = hash_of(f.a, sim);
        assert_string_equal(h, h1);
        free(h);
    }

    /* Durable: a new engine on the same database has the same policy. */
    clst_attest_free(f.a);
    f.a = NULL;
    assert_int_equal(fx_engine_new(&f, true, 0, &f.a, &err), CLST_OK);
    char *h2 = hash_of(f.a, sim);
    assert_string_equal(h2, h1);
    free(h2);
    /* The policy of one type does not touch another's. */
    char *hs = hash_of(f.a, type_named("sgx"));
    assert_string_not_equal(hs, h1);
    free(hs);

    assert_int_equal(clst_attest_policy_reset(f.a, sim, &err), CLST_OK);
    char *h3 = hash_of(f.a, sim);
    assert_string_equal(h3, h0);
    free(h3);
    assert_int_equal(clst_attest_policy_get(f.a, sim, &p, &is_default, &err), CLST_OK);
    assert_true(is_default);
    json_decref(p);
    json_object_set_new(c, "x-cloister-sim-svn", json_integer(1));
    assert_int_equal(check(&f, c, NULL, &err), CLST_OK);
    assert_int_equal(clst_attest_policy_set(NULL, sim, "{}", 2, &err), CLST_E_INVAL);
    json_decref(c);
    free(h0);
    free(h1);
    fx_teardown(&f);
}

static void
test_refvals(void **state)
{
    (void)state;
    struct fx f;
    struct clst_err err = {0};
    json_t *list = NULL, *eff = NULL, *denial = NULL;
    char mr_a[97], mr_b[97], mr_upper[97];
    memset(mr_a, 'a', 96);
    mr_a[96] = '\0';
    memset(mr_b, 'b', 96);
    mr_b[96] = '\0';
    memset(mr_upper, 'A', 96);
    mr_upper[96] = '\0';
    fx_setup(&f);
    const struct clst_attest_type *sim = type_named("sim");
    char *h0 = hash_of(f.a, sim);

    /* Bad values and claims. */
    assert_int_equal(clst_attest_refval_add(f.a, sim, NULL, "abc", NULL, &err), CLST_E_INVAL);
    assert_non_null(strstr(err.msg, "96 hex"));
    char bad_hex[97];
    memcpy(bad_hex, mr_a, sizeof(bad_hex));
    bad_hex[5] = 'g';
    assert_int_equal(clst_attest_refval_add(f.a, sim, NULL, bad_hex, NULL, &err), CLST_E_INVAL);
    assert_int_equal(clst_attest_refval_add(f.a, sim, "bad claim", "x", NULL, &err), CLST_E_INVAL);
    assert_int_equal(clst_attest_refval_add(f.a, sim, "", "x", NULL, &err), CLST_E_INVAL);
    assert_int_equal(clst_attest_refval_add(f.a, sim, "c", "", NULL, &err), CLST_E_INVAL);
    assert_int_equal(clst_attest_refval_add(f.a, sim, "c", "a\tb", NULL, &err), CLST_E_INVAL);
    assert_int_equal(clst_attest_refval_add(f.a, sim, "c", "ok", "bad\nnote", &err), CLST_E_INVAL);
    char *h = hash_of(f.a, sim);
    assert_string_equal(h, h0);
    free(h);

    /* Upper-case measurements are stored in lower case; duplicates are conflicts. */
    assert_int_equal(clst_attest_refval_add(f.a, sim, NULL, mr_upper, "build 1", &err), CLST_OK);
    assert_int_equal(clst_attest_refval_add(f.a, sim, NULL, mr_a, NULL, &err), CLST_E_CONFLICT);
    assert_int_equal(clst_attest_refval_list(f.a, sim, &list, &err), CLST_OK);
    assert_int_equal(json_array_size(list), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "value")), mr_a);
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "claim")),
                        CLST_SIM_CLAIM_MRENCLAVE);
    json_decref(list);
    char *h1 = hash_of(f.a, sim);
    assert_string_not_equal(h1, h0);

    json_t *c = claims(1, mr_a);
    assert_int_equal(check(&f, c, NULL, &err), CLST_OK);
    json_object_set_new(c, "x-cloister-sim-mrenclave", json_string(mr_b));
    assert_int_equal(check(&f, c, &denial, &err), CLST_E_DENIED);
    assert_non_null(strstr(err.msg, "x-cloister-sim-mrenclave = \"bbbb"));
    assert_non_null(strstr(err.msg, "1 reference values of sim"));
    assert_non_null(json_object_get(denial, "denial"));
    json_decref(denial);

    /* Merged with a stored policy's own referenceValues, without duplicates. */
    char pol[600];
    snprintf(pol, sizeof(pol),
             "{\"version\":\"1.0.0\",\"authorizationRules\":{\"allOf\":[{\"claim\":"
             "\"x-ms-attestation-type\",\"equals\":\"sim\"}]},\"referenceValues\":{\"sim\":"
             "{\"x-cloister-sim-mrenclave\":[\"%s\",\"%s\"]}}}",
             mr_a, mr_b);
    assert_int_equal(clst_attest_policy_set(f.a, sim, pol, strlen(pol), &err), CLST_OK);
    assert_int_equal(clst_attest_policy_effective(f.a, sim, &eff, NULL, &err), CLST_OK);
    const json_t *allowed = json_object_get(
        json_object_get(json_object_get(eff, "referenceValues"), "sim"), CLST_SIM_CLAIM_MRENCLAVE);
    assert_int_equal(json_array_size(allowed), 2);
    json_decref(eff);
    assert_int_equal(check(&f, c, NULL, &err), CLST_OK);

    /* Another claim: string values as given. */
    assert_int_equal(clst_attest_refval_add(f.a, sim, "x-cloister-sim-platform-id", "p1", NULL,
                                            &err),
                     CLST_OK);
    assert_int_equal(check(&f, c, NULL, &err), CLST_E_DENIED); /* platform id missing */
    assert_int_equal(clst_attest_refval_remove(f.a, sim, "x-cloister-sim-platform-id", "p1",
                                               &err),
                     CLST_OK);
    assert_int_equal(clst_attest_refval_remove(f.a, sim, "x-cloister-sim-platform-id", "p1",
                                               &err),
                     CLST_E_NOTFOUND);

    /* A policy whose referenceValues cover only another type denies sim. */
    const char *other = "{\"version\":\"1.0.0\",\"authorizationRules\":{\"allOf\":[{\"claim\":"
                        "\"x-ms-attestation-type\",\"equals\":\"sim\"}]},\"referenceValues\":"
                        "{\"sevsnpvm\":{\"x\":[\"y\"]}}}";
    assert_int_equal(clst_attest_policy_set(f.a, sim, other, strlen(other), &err), CLST_OK);
    assert_int_equal(clst_attest_refval_remove(f.a, sim, NULL, mr_upper, &err), CLST_OK);
    assert_int_equal(check(&f, c, NULL, &err), CLST_E_DENIED);
    assert_int_equal(clst_attest_policy_reset(f.a, sim, &err), CLST_OK);
    char *h2 = hash_of(f.a, sim);
    assert_string_equal(h2, h0); /* no policy, no reference values: the default again */
    free(h2);

    /* The cap per (type, claim). */
    for (int i = 0; i < CLST_ATTEST_MAX_REFVALS; i++) {
        char v[97];
        snprintf(v, sizeof(v), "%096x", i);
        assert_int_equal(clst_attest_refval_add(f.a, sim, NULL, v, NULL, &err), CLST_OK);
    }
    assert_int_equal(clst_attest_refval_add(f.a, sim, NULL, mr_b, NULL, &err), CLST_E_LIMIT);
    json_decref(c);
    free(h0);
    free(h1);
    fx_teardown(&f);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_set_reset),
        cmocka_unit_test(test_refvals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
