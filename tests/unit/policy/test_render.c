/*
 * Unit tests for src/policy/render.c: the one-line summary of every kind of decision, the text
 * trace (layout, denial marker, escaping of hostile strings, cut of long values), the JSON
 * rendering (members, denial, trace, missing values) and redaction, which must leave no value
 * anywhere in any rendering.
 */
#include "policy_test_util.h"

#define REL CLST_POLICY_RELEASE
#define APP CLST_POLICY_APPRAISAL

#define ONE(members)                                                                               \
    "{\"version\":\"1.0.0\",\"anyOf\":[{\"authority\":\"https://a\",\"allOf\":[" members "]}]}"

static char *
text_of(const struct clst_policy_result *r, unsigned flags)
{
    struct clst_buf b;
    clst_buf_init(&b, 1u << 20);
    assert_int_equal(clst_policy_result_to_text(r, flags, &b), CLST_OK);
    size_t size;
    char *s = (char *)clst_buf_steal(&b, &size);
    assert_non_null(s);
    assert_int_equal(strlen(s), size);
    return s;
}

static char *
json_of(const struct clst_policy_result *r, unsigned flags, json_t **out)
{
    json_t *j = NULL;
    assert_int_equal(clst_policy_result_to_json(r, flags, &j), CLST_OK);
    char *s = json_dumps(j, JSON_COMPACT);
    assert_non_null(s);
    if (out != NULL) {
        *out = j;
    } else {
        json_decref(j);
    }
    return s;
}

/* The summary of `policy` (of `kind`) against claims. */
static void
policy_summary_is_(int line, enum clst_policy_kind kind, const char *policy, const char *claims,
                   unsigned flags, const char *want)
{
    struct clst_policy_result *r = NULL;
    pt_eval(kind, policy, claims, NULL, &r);
    const char *got = pt_summary(r, flags);
    if (strcmp(got, want) != 0) {
        fail_msg("line %d:\n  got:  %s\n  want: %s", line, got, want);
    }
    clst_policy_result_free(r);
}
#define policy_summary_is(k, p, cl, f, w) policy_summary_is_(__LINE__, k, p, cl, f, w)

/* The summary of ONE(cond) against claims. */
static void
summary_is_(int line, const char *cond, const char *claims, unsigned flags, const char *want)
{
    char policy[1024];
    int n = snprintf(policy, sizeof(policy), ONE("%s"), cond);
    assert_true(n > 0 && (size_t)n < sizeof(policy));
    policy_summary_is_(line, REL, policy, claims, flags, want);
}
#define summary_is(c, cl, f, w) summary_is_(__LINE__, c, cl, f, w)

static void
test_summaries(void **state)
{
    (void)state;
    summary_is("{\"claim\":\"x-ms-sevsnpvm-is-debuggable\",\"equals\":false}",
               "{\"iss\":\"https://a\",\"x-ms-sevsnpvm-is-debuggable\":true}", 0,
               "denied at anyOf[0].allOf[0]: claim 'x-ms-sevsnpvm-is-debuggable' equals false: "
               "fails: actual true");
    summary_is("{\"claim\":\"x-ms-sevsnpvm-is-debuggable\",\"equals\":false}",
               "{\"iss\":\"https://a\",\"x-ms-sevsnpvm-is-debuggable\":true}", CLST_POLICY_REDACT,
               "denied at anyOf[0].allOf[0]: claim 'x-ms-sevsnpvm-is-debuggable' equals "
               "<boolean>: fails: actual <boolean>");
    summary_is("{\"claim\":\"x-ms-sevsnpvm-is-debuggable\",\"equals\":\"false\"}",
               "{\"iss\":\"https://a\",\"x-ms-sevsnpvm-is-debuggable\":false}", 0,
               "denied at anyOf[0].allOf[0]: claim 'x-ms-sevsnpvm-is-debuggable' equals "
               "\"false\": fails: type mismatch: expected string, got boolean (actual false)");
    summary_is("{\"claim\":\"svn\",\"greater\":1}", "{\"iss\":\"https://a\"}", 0,
               "denied at anyOf[0].allOf[0]: claim 'svn' greater 1: fails: claim missing");
    summary_is("{\"claim\":\"a.b\",\"lessOrEquals\":1.5}", "{\"iss\":\"https://a\",\"a\":[1]}", 0,
               "denied at anyOf[0].allOf[0]: claim 'a.b' lessOrEquals 1.5: fails: claim missing "
               "('a' is an array; claim paths cannot address array elements)");
    summary_is("{\"claim\":\"dbg\",\"exists\":false}", "{\"iss\":\"https://a\",\"dbg\":1}", 0,
               "denied at anyOf[0].allOf[0]: claim 'dbg' exists false: fails: the claim is "
               "present (actual 1)");
    summary_is("{\"claim\":\"n\",\"notEquals\":\"1\"}", "{\"iss\":\"https://a\",\"n\":1}",
               CLST_POLICY_REDACT,
               "denied at anyOf[0].allOf[0]: claim 'n' notEquals <string>: fails: type mismatch: "
               "expected string, got number (actual <number>)");
    /* Allowed. */
    summary_is("{\"claim\":\"n\",\"equals\":1}", "{\"iss\":\"https://a/\",\"n\":1}", 0,
               "allowed by anyOf[0] (authority 'https://a')");

    /* Issuer mismatches: with one authority, with several, without an issuer. */
    policy_summary_is(REL, ONE("{\"claim\":\"n\",\"equals\":1}"), "{\"iss\":\"https://b\",\"n\":1}",
                      0,
                      "denied at anyOf[0]: authority 'https://a': fails: "
                      "issuer mismatch: the token's issuer is 'https://b'");
    const char *two =
        "{\"anyOf\":[{\"authority\":\"https://a\",\"allOf\":[{\"claim\":\"c\",\"exists\":true}]},"
        "{\"authority\":\"https://b\",\"anyOf\":[{\"claim\":\"c\",\"exists\":true}]}]}";
    policy_summary_is(REL, two, "{\"c\":1}", CLST_POLICY_REDACT,
                      "denied at anyOf[0]: authority 'https://a': fails: the token has no "
                      "issuer ('iss') (and no other of the 2 authorities matches)");

    /* Appraisal. */
    const char *app = "{\"authorizationRules\":{\"allOf\":[{\"claim\":\"svn\",\"greater\":0}]},"
                      "\"referenceValues\":{\"sim\":{\"m\":[\"aa\",7]}}}";
    policy_summary_is(APP, app, "{\"x-ms-attestation-type\":\"sim\",\"m\":\"aa\",\"svn\":1}", 0,
                      "allowed: appraisal policy: all of referenceValues, "
                      "authorizationRules hold");
    policy_summary_is(APP, app, "{\"x-ms-attestation-type\":\"sim\",\"m\":\"ab\",\"svn\":1}", 0,
                      "denied at referenceValues.sim[\"m\"]: claim 'm' oneOf "
                      "[\"aa\",7]: fails: actual \"ab\"");
    policy_summary_is(APP, app, "{\"x-ms-attestation-type\":\"sim\",\"m\":true,\"svn\":1}", 0,
                      "denied at referenceValues.sim[\"m\"]: claim 'm' oneOf "
                      "[\"aa\",7]: fails: type mismatch: no allowed value is a "
                      "boolean (actual true)");
    policy_summary_is(APP, app, "{\"x-ms-attestation-type\":\"tdxvm\"}", 0,
                      "denied at referenceValues: reference values for attestation type "
                      "'tdxvm': fails: the policy has no reference values for attestation type "
                      "'tdxvm'");
    policy_summary_is(APP, app, "{}", 0,
                      "denied at referenceValues: reference values (chosen by claim "
                      "'x-ms-attestation-type'): fails: claim 'x-ms-attestation-type' missing");
    policy_summary_is(APP, app, "{\"x-ms-attestation-type\":[\"sim\"]}", 0,
                      "denied at referenceValues: reference values (chosen by claim "
                      "'x-ms-attestation-type'): fails: type mismatch: 'x-ms-attestation-type' "
                      "is an array, not a string");
    policy_summary_is(APP, app, "{\"x-ms-attestation-type\":\"sim\",\"m\":7.0,\"svn\":0}", 0,
                      "denied at authorizationRules.allOf[0]: claim 'svn' greater 0: fails: "
                      "actual 0");
}

static void
test_text(void **state)
{
    (void)state;
    struct clst_policy_result *r = NULL;
    const char *p = ONE("{\"claim\":\"x-ms-compliance-status\",\"equals\":\"azure-compliant-cvm\"},"
                        "{\"anyOf\":[{\"claim\":\"t\",\"equals\":\"tdxvm\"},"
                        "{\"claim\":\"t\",\"equals\":\"sevsnpvm\"}]},"
                        "{\"claim\":\"dbg\",\"equals\":false}");
    pt_eval(REL, p,
            "{\"iss\":\"https://a\",\"x-ms-compliance-status\":\"azure-compliant-cvm\","
            "\"t\":\"sevsnpvm\",\"dbg\":true}",
            NULL, &r);
    char *s = text_of(r, 0);
    char want_head[2048];
    snprintf(want_head, sizeof(want_head),
             "decision: DENY\n"
             "reason:   denied at anyOf[0].allOf[2]: claim 'dbg' equals false: fails: actual "
             "true\n"
             "policy:   release %s (sha-256, base64url)\n"
             "trace:\n"
             "  false  policy  release policy: anyOf over 1 authority  => fails: none holds\n"
             "    false  anyOf[0]  authority 'https://a'  => fails: the issuer matches, a "
             "condition fails\n"
             "      false  anyOf[0].allOf  allOf (3 conditions)  => fails: not all hold\n"
             "        true   anyOf[0].allOf[0]  claim 'x-ms-compliance-status' equals "
             "\"azure-compliant-cvm\"  => holds (actual \"azure-compliant-cvm\")\n"
             "        true   anyOf[0].allOf[1]  anyOf (2 conditions)  => holds\n"
             "          false  anyOf[0].allOf[1].anyOf[0]  claim 't' equals \"tdxvm\"  => fails: "
             "actual \"sevsnpvm\"\n"
             "          true   anyOf[0].allOf[1].anyOf[1]  claim 't' equals \"sevsnpvm\"  => "
             "holds (actual \"sevsnpvm\")\n"
             "        false  anyOf[0].allOf[2]  claim 'dbg' equals false  => fails: actual true   "
             "<== denial\n",
             clst_policy_result_policy_hash(r));
    assert_string_equal(s, want_head);
    free(s);

    /* Redacted: no value at all, the claim names and structure stay. */
    s = text_of(r, CLST_POLICY_REDACT);
    assert_null(strstr(s, "azure-compliant-cvm"));
    assert_null(strstr(s, "sevsnpvm"));
    assert_null(strstr(s, "tdxvm"));
    assert_null(strstr(s, "true)"));
    assert_non_null(strstr(s, "claim 'x-ms-compliance-status' equals <string>  => holds (actual "
                              "<string>)"));
    assert_non_null(strstr(s, "claim 'dbg' equals <boolean>  => fails: actual <boolean>   <== "
                              "denial"));
    assert_non_null(strstr(s, "(values redacted: shown as <type>)\n"));
    free(s);
    clst_policy_result_free(r);

    /* Allowed: no denial marker, exists shows present/absent. */
    pt_eval(REL, ONE("{\"claim\":\"e\",\"exists\":true},{\"claim\":\"f\",\"exists\":false}"),
            "{\"iss\":\"https://a\",\"e\":1}", NULL, &r);
    s = text_of(r, 0);
    assert_non_null(strstr(s, "decision: ALLOW\nreason:   allowed by anyOf[0] (authority "
                              "'https://a')\n"));
    assert_null(strstr(s, "<== denial"));
    assert_non_null(strstr(s, "claim 'e' exists true  => holds (present)\n"));
    assert_non_null(strstr(s, "claim 'f' exists false  => holds (absent)\n"));
    free(s);
    clst_policy_result_free(r);
}

static void
test_escaping_and_cut(void **state)
{
    (void)state;
    struct clst_policy_result *r = NULL;
    /* An issuer with a terminal escape, a newline and non-ASCII (from a verified token or an
     * argument, but a person reads it): escaped byte by byte. */
    pt_eval(REL, ONE("{\"claim\":\"c\",\"exists\":true}"), "{\"c\":1}",
            "https://b\x1b[31m\nfake line\xc3\xa9\\", &r);
    char *s = text_of(r, 0);
    assert_non_null(strstr(s, "'https://b\\x1b[31m\\x0afake line\\xc3\\xa9\\\\'"));
    assert_null(strchr(s, '\x1b'));
    assert_null(strstr(s, "\nfake"));
    free(s);
    /* JSON carries the issuer as it is (jansson escapes it); invalid UTF-8 is escaped instead
     * of failing the rendering. */
    json_t *j = NULL;
    free(json_of(r, CLST_POLICY_WITH_TRACE, &j));
    json_t *auth = json_array_get(json_object_get(j, "trace"), 1);
    assert_string_equal(json_string_value(json_object_get(auth, "issuer")),
                        "https://b\x1b[31m\nfake line\xc3\xa9\\");
    json_decref(j);
    clst_policy_result_free(r);
    pt_eval(REL, ONE("{\"claim\":\"c\",\"exists\":true}"), "{\"c\":1}", "https://b\xff", &r);
    free(json_of(r, CLST_POLICY_WITH_TRACE, &j));
    auth = json_array_get(json_object_get(j, "trace"), 1);
    assert_string_equal(json_string_value(json_object_get(auth, "issuer")), "https://b\\xff");
    json_decref(j);
    clst_policy_result_free(r);

    /* Values from claims: control characters and non-ASCII as JSON escapes; long ones cut. */
    char claims[2048];
    char big[1001];
    memset(big, 'x', 1000);
    big[1000] = '\0';
    snprintf(claims, sizeof(claims),
             "{\"iss\":\"https://a\",\"c\":\"\\u001b]0;evil\\u0007\\u00e9\",\"d\":\"%s\"}", big);
    pt_eval(REL, ONE("{\"claim\":\"c\",\"equals\":\"x\"},{\"claim\":\"d\",\"equals\":\"x\"}"),
            claims, NULL, &r);
    s = text_of(r, 0);
    assert_non_null(strstr(s, "actual \"\\u001B]0;evil\\u0007\\u00E9\""));
    assert_null(strchr(s, '\x1b'));
    assert_null(strchr(s, '\x07'));
    assert_non_null(strstr(s, "xxxxxxxxxx... (1002 bytes)\n"));
    /* Cut at CLST_POLICY_RENDER_VALUE_MAX bytes: '"' and 199 x's. */
    char cut[CLST_POLICY_RENDER_VALUE_MAX + 32];
    cut[0] = '"';
    memset(cut + 1, 'x', CLST_POLICY_RENDER_VALUE_MAX - 1);
    strcpy(cut + CLST_POLICY_RENDER_VALUE_MAX, "... (1002 bytes)");
    assert_non_null(strstr(s, cut));
    free(s);
    /* JSON keeps the whole value. */
    free(json_of(r, CLST_POLICY_WITH_TRACE, &j));
    json_t *d = json_array_get(json_object_get(j, "trace"), 4);
    assert_int_equal(json_string_length(json_object_get(d, "actual")), 1000);
    json_decref(j);
    clst_policy_result_free(r);
}

/* True when `needle` occurs in any string or key of the JSON text. */
static bool
json_text_has(const char *text, const char *needle)
{
    return strstr(text, needle) != NULL;
}

static void
test_json(void **state)
{
    (void)state;
    struct clst_policy_result *r = NULL;
    json_t *j = NULL;
    const char *p = ONE("{\"claim\":\"m\",\"equals\":\"secret-measurement\"},"
                        "{\"claim\":\"gone.x\",\"equals\":\"secret-expected\"}");
    pt_eval(REL, p, "{\"iss\":\"https://a\",\"m\":\"secret-actual\",\"gone\":3}", NULL, &r);

    /* Without the trace: decision, hash, message, denial. */
    char *s = json_of(r, 0, &j);
    assert_string_equal(json_string_value(json_object_get(j, "decision")), "deny");
    assert_string_equal(json_string_value(json_object_get(j, "policyHash")),
                        clst_policy_result_policy_hash(r));
    assert_string_equal(json_string_value(json_object_get(j, "message")), pt_summary(r, 0));
    assert_null(json_object_get(j, "trace"));
    json_t *d = json_object_get(j, "denial");
    assert_non_null(d);
    assert_string_equal(json_string_value(json_object_get(d, "path")), "anyOf[0].allOf[0]");
    assert_string_equal(json_string_value(json_object_get(d, "node")), "claim");
    assert_string_equal(json_string_value(json_object_get(d, "claim")), "m");
    assert_string_equal(json_string_value(json_object_get(d, "operator")), "equals");
    assert_string_equal(json_string_value(json_object_get(d, "outcome")), "fails");
    assert_string_equal(json_string_value(json_object_get(d, "expected")), "secret-measurement");
    assert_string_equal(json_string_value(json_object_get(d, "expectedType")), "string");
    assert_string_equal(json_string_value(json_object_get(d, "actual")), "secret-actual");
    assert_string_equal(json_string_value(json_object_get(d, "actualType")), "string");
    assert_true(json_is_false(json_object_get(d, "verdict")));
    assert_null(json_object_get(d, "depth"));
    assert_null(json_object_get(d, "redacted"));
    free(s);
    json_decref(j);

    /* With the trace: one entry per node, a missing claim has no "actual". */
    s = json_of(r, CLST_POLICY_WITH_TRACE, &j);
    json_t *tr = json_object_get(j, "trace");
    assert_int_equal(json_array_size(tr), clst_policy_result_trace_count(r));
    json_t *miss = json_array_get(tr, 4);
    assert_string_equal(json_string_value(json_object_get(miss, "outcome")), "missing");
    assert_string_equal(json_string_value(json_object_get(miss, "actualType")), "missing");
    assert_null(json_object_get(miss, "actual"));
    assert_string_equal(json_string_value(json_object_get(miss, "missingNote")),
                        "'gone' is a number, not an object");
    assert_int_equal(json_integer_value(json_object_get(miss, "depth")), 3);
    json_t *auth = json_array_get(tr, 1);
    assert_string_equal(json_string_value(json_object_get(auth, "authority")), "https://a");
    assert_string_equal(json_string_value(json_object_get(auth, "issuer")), "https://a");
    assert_null(json_object_get(auth, "operator"));
    assert_string_equal(json_string_value(json_object_get(json_array_get(tr, 0), "node")), "root");
    free(s);
    json_decref(j);

    /* Redacted: no value anywhere, types and redacted:true instead. */
    s = json_of(r, CLST_POLICY_WITH_TRACE | CLST_POLICY_REDACT, &j);
    assert_false(json_text_has(s, "secret-"));
    d = json_object_get(j, "denial");
    assert_null(json_object_get(d, "expected"));
    assert_null(json_object_get(d, "actual"));
    assert_true(json_is_true(json_object_get(d, "redacted")));
    assert_string_equal(json_string_value(json_object_get(d, "expectedType")), "string");
    assert_string_equal(json_string_value(json_object_get(d, "actualType")), "string");
    assert_non_null(strstr(json_string_value(json_object_get(j, "message")), "<string>"));
    free(s);
    json_decref(j);
    clst_policy_result_free(r);

    /* Allowed: no denial; an authority without an issuer has "issuer": null. */
    pt_eval(REL, ONE("{\"claim\":\"m\",\"exists\":true}"), "{\"iss\":\"https://a\",\"m\":1}", NULL,
            &r);
    s = json_of(r, 0, &j);
    assert_string_equal(json_string_value(json_object_get(j, "decision")), "allow");
    assert_null(json_object_get(j, "denial"));
    free(s);
    json_decref(j);
    clst_policy_result_free(r);
    pt_eval(REL, ONE("{\"claim\":\"m\",\"exists\":true}"), "{\"m\":1}", NULL, &r);
    s = json_of(r, 0, &j);
    assert_true(json_is_null(json_object_get(json_object_get(j, "denial"), "issuer")));
    free(s);
    json_decref(j);
    clst_policy_result_free(r);

    /* Appraisal entries carry the attestation type. */
    pt_eval(APP,
            "{\"authorizationRules\":{\"allOf\":[{\"claim\":\"x\",\"exists\":true}]},"
            "\"referenceValues\":{\"sim\":{\"m\":[\"aa\"]}}}",
            "{\"x-ms-attestation-type\":\"sim\",\"m\":\"bb\"}", NULL, &r);
    s = json_of(r, CLST_POLICY_WITH_TRACE, &j);
    d = json_object_get(j, "denial");
    assert_string_equal(json_string_value(json_object_get(d, "node")), "referenceValue");
    assert_string_equal(json_string_value(json_object_get(d, "operator")), "oneOf");
    assert_string_equal(json_string_value(json_object_get(d, "attestationType")), "sim");
    assert_string_equal(json_string_value(json_object_get(d, "expectedType")), "array");
    json_t *ref = json_array_get(json_object_get(j, "trace"), 1);
    assert_string_equal(json_string_value(json_object_get(ref, "node")), "referenceValues");
    assert_string_equal(json_string_value(json_object_get(ref, "claim")), "x-ms-attestation-type");
    assert_string_equal(json_string_value(json_object_get(ref, "actual")), "sim");
    free(s);
    json_decref(j);
    clst_policy_result_free(r);
}

static void
test_names_and_args(void **state)
{
    (void)state;
    assert_null(clst_policy_op_name(CLST_POLICY_OP_NONE));
    const char *ops[] = {"equals",  "notEquals",       "less",   "lessOrEquals",
                         "greater", "greaterOrEquals", "exists", "oneOf"};
    for (int i = 0; i < 8; i++) {
        assert_string_equal(clst_policy_op_name((enum clst_policy_op)(i + 1)), ops[i]);
    }
    const char *outcomes[] = {"holds",           "fails",        "missing",      "type-mismatch",
                              "issuer-mismatch", "no-reference", "children-fail"};
    for (int i = 0; i < 7; i++) {
        assert_string_equal(clst_policy_outcome_name((enum clst_policy_outcome)(i + 1)),
                            outcomes[i]);
    }
    assert_string_equal(clst_policy_outcome_name((enum clst_policy_outcome)99), "unknown");
    const char *nodes[] = {"root",  "authority",       "anyOf",         "allOf",
                           "claim", "referenceValues", "referenceValue"};
    for (int i = 0; i < 7; i++) {
        assert_string_equal(clst_policy_node_name((enum clst_policy_node)(i + 1)), nodes[i]);
    }
    assert_string_equal(clst_policy_node_name((enum clst_policy_node)0), "unknown");

    struct clst_buf b;
    clst_buf_init(&b, 1024);
    json_t *j = NULL;
    assert_int_equal(clst_policy_result_summary(NULL, 0, &b), CLST_E_INVAL);
    assert_int_equal(clst_policy_result_to_text(NULL, 0, &b), CLST_E_INVAL);
    assert_int_equal(clst_policy_result_to_json(NULL, 0, &j), CLST_E_INVAL);
    assert_null(j);

    /* A buffer too small for the text: CLST_E_LIMIT, nothing past its cap. */
    struct clst_policy_result *r = NULL;
    pt_eval(REL, ONE("{\"claim\":\"m\",\"exists\":true}"), "{\"m\":1}", NULL, &r);
    struct clst_buf small;
    clst_buf_init(&small, 40);
    assert_int_equal(clst_policy_result_to_text(r, 0, &small), CLST_E_LIMIT);
    assert_true(small.size <= 40);
    clst_buf_cleanup(&small);
    assert_int_equal(clst_policy_result_to_json(r, 0, NULL), CLST_E_INVAL);
    clst_policy_result_free(r);
    clst_buf_cleanup(&b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_summaries),        cmocka_unit_test(test_text),
        cmocka_unit_test(test_escaping_and_cut), cmocka_unit_test(test_json),
        cmocka_unit_test(test_names_and_args),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
