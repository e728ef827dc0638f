/*
 * Unit tests for src/policy/eval.c: every operator against a claim that makes it true, false,
 * missing and of another type (including "true" against true, 1 against 1.0, int64 edges that a
 * conversion to double would get wrong), dotted paths through objects, arrays and scalars,
 * nesting up to the depth cap, several authorities (first fails, second matches; issuer
 * normalization), appraisal reference values, the denial that is reported, and that a result
 * outlives its claims and policy.
 */
#include "policy_test_util.h"

#define REL CLST_POLICY_RELEASE
#define APP CLST_POLICY_APPRAISAL

#define ONE(members)                                                                               \
    "{\"version\":\"1.0.0\",\"anyOf\":[{\"authority\":\"https://a\",\"allOf\":[" members "]}]}"

/*
 * One condition against one claim set (iss https://a is added): the condition's node (trace
 * entry 3: root, authority, allOf, condition) must have `verdict` and `outcome`, and the
 * decision must follow.
 */
static void
check_(int line, const char *cond, const char *claims, bool verdict,
       enum clst_policy_outcome outcome)
{
    char policy[1024], cl[1024];
    snprintf(policy, sizeof(policy),
             "{\"version\":\"1.0.0\",\"anyOf\":[{\"authority\":\"https://a\",\"allOf\":[%s]}]}",
             cond);
    /* claims is an object's members, possibly empty */
    snprintf(cl, sizeof(cl), "{\"iss\":\"https://a\"%s%s}", claims[0] ? "," : "", claims);
    struct clst_policy_result *r = NULL;
    enum clst_policy_decision d = pt_eval(REL, policy, cl, NULL, &r);
    assert_int_equal(clst_policy_result_trace_count(r), 4);
    const struct clst_policy_trace *t = clst_policy_result_trace(r, 3);
    if (t->verdict != verdict || t->outcome != outcome) {
        fail_msg("line %d: %s against %s: verdict %d outcome %s, want %d %s", line, cond, cl,
                 t->verdict, clst_policy_outcome_name(t->outcome), verdict,
                 clst_policy_outcome_name(outcome));
    }
    assert_int_equal(d, verdict ? CLST_POLICY_ALLOW : CLST_POLICY_DENY);
    if (!verdict) {
        /* The denial is that condition. */
        assert_ptr_equal(clst_policy_result_denial(r), t);
        assert_string_equal(t->path, "anyOf[0].allOf[0]");
    } else {
        assert_null(clst_policy_result_denial(r));
    }
    assert_int_equal(t->node, CLST_POLICY_NODE_CLAIM);
    assert_non_null(t->claim);
    assert_non_null(t->expected);
    if (outcome == CLST_POLICY_MISSING) {
        assert_null(t->actual);
    }
    clst_policy_result_free(r);
}
#define check(cond, claims, verdict, outcome) check_(__LINE__, cond, claims, verdict, outcome)

#define H CLST_POLICY_HOLDS
#define F CLST_POLICY_FAILS
#define M CLST_POLICY_MISSING
#define T CLST_POLICY_TYPE_MISMATCH

static void
test_equals(void **state)
{
    (void)state;
    const char *c = "{\"claim\":\"s\",\"equals\":\"abc\"}";
    check(c, "\"s\":\"abc\"", true, H);
    check(c, "\"s\":\"abd\"", false, F);
    check(c, "\"s\":\"ABC\"", false, F); /* case-sensitive */
    check(c, "\"s\":\"abc \"", false, F);
    check(c, "\"s\":\"abc\\u0000x\"", false, F); /* a NUL does not end the comparison */
    check(c, "", false, M);
    check(c, "\"S\":\"abc\"", false, M); /* claim names are case-sensitive */
    check(c, "\"s\":1", false, T);
    check(c, "\"s\":true", false, T);
    check(c, "\"s\":null", false, T);
    check(c, "\"s\":[\"abc\"]", false, T); /* no array membership */
    check(c, "\"s\":{\"abc\":1}", false, T);
    /* Booleans: a string "true" is not true, and the other way round. */
    check("{\"claim\":\"b\",\"equals\":true}", "\"b\":true", true, H);
    check("{\"claim\":\"b\",\"equals\":true}", "\"b\":false", false, F);
    check("{\"claim\":\"b\",\"equals\":true}", "\"b\":\"true\"", false, T);
    check("{\"claim\":\"b\",\"equals\":\"true\"}", "\"b\":true", false, T);
    check("{\"claim\":\"b\",\"equals\":false}", "\"b\":0", false, T);
    check("{\"claim\":\"b\",\"equals\":false}", "\"b\":false", true, H);
    check("{\"claim\":\"b\",\"equals\":\"false\"}", "\"b\":false", false, T);
    /* Numbers compare as numbers, exactly. */
    check("{\"claim\":\"n\",\"equals\":1}", "\"n\":1", true, H);
    check("{\"claim\":\"n\",\"equals\":1}", "\"n\":1.0", true, H);
    check("{\"claim\":\"n\",\"equals\":1.0}", "\"n\":1", true, H);
    check("{\"claim\":\"n\",\"equals\":1e0}", "\"n\":1", true, H);
    check("{\"claim\":\"n\",\"equals\":0}", "\"n\":-0.0", true, H);
    check("{\"claim\":\"n\",\"equals\":1}", "\"n\":1.5", false, F);
    check("{\"claim\":\"n\",\"equals\":1}", "\"n\":2", false, F);
    check("{\"claim\":\"n\",\"equals\":1}", "\"n\":\"1\"", false, T);
    check("{\"claim\":\"n\",\"equals\":\"1\"}", "\"n\":1", false, T);
    check("{\"claim\":\"n\",\"equals\":1}", "\"n\":true", false, T);
    check("{\"claim\":\"n\",\"equals\":9223372036854775807}", "\"n\":9223372036854775807", true, H);
    check("{\"claim\":\"n\",\"equals\":9223372036854775807}", "\"n\":9223372036854775806", false,
          F);
    check("{\"claim\":\"n\",\"equals\":-9223372036854775808}", "\"n\":-9223372036854775808", true,
          H);
    /* 9223372036854775807 as a double is 2^63: not equal to INT64_MAX. */
    check("{\"claim\":\"n\",\"equals\":9223372036854775807}", "\"n\":9223372036854775807.0", false,
          F);
    check("{\"claim\":\"n\",\"equals\":-9223372036854775808}", "\"n\":-9223372036854775808.0", true,
          H);
    /* 2^53 + 1 is no double: 9007199254740993.0 parses as 2^53. */
    check("{\"claim\":\"n\",\"equals\":9007199254740993}", "\"n\":9007199254740992.0", false, F);
    check("{\"claim\":\"n\",\"equals\":9007199254740992}", "\"n\":9007199254740992.0", true, H);
    check("{\"claim\":\"n\",\"equals\":1e300}", "\"n\":9223372036854775807", false, F);
    check("{\"claim\":\"n\",\"equals\":-1e300}", "\"n\":-9223372036854775808", false, F);
}

static void
test_not_equals(void **state)
{
    (void)state;
    const char *c = "{\"claim\":\"s\",\"notEquals\":\"abc\"}";
    check(c, "\"s\":\"xyz\"", true, H);
    check(c, "\"s\":\"abc\"", false, F);
    check(c, "", false, M); /* a missing claim never satisfies a condition */
    check(c, "\"s\":5", false, T);
    /* The dangerous case: a boolean true is not "different from the string true". */
    check("{\"claim\":\"d\",\"notEquals\":\"true\"}", "\"d\":true", false, T);
    check("{\"claim\":\"d\",\"notEquals\":true}", "\"d\":false", true, H);
    check("{\"claim\":\"d\",\"notEquals\":true}", "\"d\":true", false, F);
    check("{\"claim\":\"d\",\"notEquals\":true}", "\"d\":null", false, T);
    check("{\"claim\":\"n\",\"notEquals\":1}", "\"n\":1.0", false, F);
    check("{\"claim\":\"n\",\"notEquals\":1}", "\"n\":2.5", true, H);
    check("{\"claim\":\"n\",\"notEquals\":1}", "\"n\":[2]", false, T);
}

static void
test_ordering(void **state)
{
    (void)state;
    /* less: the claim is less than the operand. */
    const char *lt = "{\"claim\":\"n\",\"less\":2}";
    check(lt, "\"n\":1", true, H);
    check(lt, "\"n\":1.999", true, H);
    check(lt, "\"n\":-9223372036854775808", true, H);
    check(lt, "\"n\":2", false, F);
    check(lt, "\"n\":2.0", false, F);
    check(lt, "\"n\":3", false, F);
    check(lt, "", false, M);
    check(lt, "\"n\":\"1\"", false, T);
    check(lt, "\"n\":true", false, T);
    check(lt, "\"n\":null", false, T);
    check("{\"claim\":\"n\",\"less\":9223372036854775807.0}", "\"n\":9223372036854775807", true, H);
    check("{\"claim\":\"n\",\"less\":-9223372036854775808.0}", "\"n\":-9223372036854775808", false,
          F);
    check("{\"claim\":\"n\",\"less\":-1e300}", "\"n\":-9223372036854775808", false, F);
    /* lessOrEquals */
    const char *le = "{\"claim\":\"n\",\"lessOrEquals\":2}";
    check(le, "\"n\":2", true, H);
    check(le, "\"n\":1", true, H);
    check(le, "\"n\":2.0000001", false, F);
    check(le, "\"n\":3", false, F);
    check(le, "", false, M);
    check(le, "\"n\":\"2\"", false, T);
    check("{\"claim\":\"n\",\"lessOrEquals\":2.5}", "\"n\":2", true, H);
    check("{\"claim\":\"n\",\"lessOrEquals\":1.5}", "\"n\":2", false, F);
    /* greater (the cloud's SVN example: "greater": 1) */
    const char *gt = "{\"claim\":\"x-ms-sgx-svn\",\"greater\":1}";
    check(gt, "\"x-ms-sgx-svn\":2", true, H);
    check(gt, "\"x-ms-sgx-svn\":1", false, F);
    check(gt, "\"x-ms-sgx-svn\":1.0000001", true, H);
    check(gt, "\"x-ms-sgx-svn\":0", false, F);
    check(gt, "", false, M);
    check(gt, "\"x-ms-sgx-svn\":\"5\"", false, T);
    check(gt, "\"x-ms-sgx-svn\":{}", false, T);
    check("{\"claim\":\"n\",\"greater\":9007199254740992.0}", "\"n\":9007199254740993", true, H);
    check("{\"claim\":\"n\",\"greater\":9223372036854775807.0}", "\"n\":9223372036854775807", false,
          F);
    check("{\"claim\":\"n\",\"greater\":-9223372036854775808}", "\"n\":-9223372036854775807", true,
          H);
    check("{\"claim\":\"n\",\"greater\":-2.5}", "\"n\":-2", true, H);
    check("{\"claim\":\"n\",\"greater\":-2.5}", "\"n\":-3", false, F);
    /* greaterOrEquals */
    const char *ge = "{\"claim\":\"n\",\"greaterOrEquals\":1}";
    check(ge, "\"n\":1", true, H);
    check(ge, "\"n\":1.0", true, H);
    check(ge, "\"n\":0", false, F);
    check(ge, "\"n\":0.999", false, F);
    check(ge, "", false, M);
    check(ge, "\"n\":[1]", false, T);
    check(ge, "\"n\":false", false, T);
    check("{\"claim\":\"n\",\"greaterOrEquals\":-1.5}", "\"n\":-1", true, H);
    check("{\"claim\":\"n\",\"greaterOrEquals\":9223372036854775807}", "\"n\":9223372036854775807",
          true, H);
}

static void
test_exists(void **state)
{
    (void)state;
    const char *yes = "{\"claim\":\"e\",\"exists\":true}";
    const char *no = "{\"claim\":\"e\",\"exists\":false}";
    check(yes, "\"e\":1", true, H);
    check(yes, "\"e\":null", true, H); /* present with a null value */
    check(yes, "\"e\":{}", true, H);
    check(yes, "\"e\":false", true, H);
    check(yes, "", false, M);
    check(no, "", true, H);
    check(no, "\"e\":false", false, F);
    check(no, "\"e\":null", false, F);
    check(no, "\"E\":1", true, H);
    /* Nested. */
    check("{\"claim\":\"a.b\",\"exists\":true}", "\"a\":{\"b\":0}", true, H);
    check("{\"claim\":\"a.b\",\"exists\":true}", "\"a\":{\"c\":0}", false, M);
    check("{\"claim\":\"a.b\",\"exists\":false}", "\"a\":{\"c\":0}", true, H);
    check("{\"claim\":\"a.b\",\"exists\":false}", "\"a\":\"text\"", true, H);
    check("{\"claim\":\"a.b\",\"exists\":false}", "\"a\":{\"b\":null}", false, F);
}

/* One condition's trace entry for an eval of ONE(cond) against claims. */
static const struct clst_policy_trace *
one(struct clst_policy_result **r, const char *cond, const char *claims)
{
    char policy[1024];
    snprintf(policy, sizeof(policy), ONE("%s"), cond);
    pt_eval(REL, policy, claims, NULL, r);
    return clst_policy_result_trace(*r, 3);
}

static void
test_paths(void **state)
{
    (void)state;
    const char *tee = "{\"claim\":\"x-ms-isolation-tee.x-ms-attestation-type\","
                      "\"equals\":\"sevsnpvm\"}";
    check(tee, "\"x-ms-isolation-tee\":{\"x-ms-attestation-type\":\"sevsnpvm\"}", true, H);
    check(tee, "\"x-ms-isolation-tee\":{\"x-ms-attestation-type\":\"tdxvm\"}", false, F);
    check(tee, "\"x-ms-attestation-type\":\"sevsnpvm\"", false, M);
    /* Dots always navigate: a top-level claim literally named "a.b" is not "a.b". */
    check("{\"claim\":\"a.b\",\"equals\":1}", "\"a.b\":1", false, M);
    check("{\"claim\":\"a.b.c.d\",\"equals\":1}", "\"a\":{\"b\":{\"c\":{\"d\":1}}}", true, H);
    /* Arrays cannot be addressed; the array itself is of another type than a scalar. */
    check("{\"claim\":\"x-ms-runtime.keys\",\"equals\":\"x\"}",
          "\"x-ms-runtime\":{\"keys\":[{\"kty\":\"RSA\"}]}", false, T);
    check("{\"claim\":\"x-ms-runtime.keys\",\"exists\":true}",
          "\"x-ms-runtime\":{\"keys\":[{\"kty\":\"RSA\"}]}", true, H);
    check("{\"claim\":\"x-ms-runtime.keys.0.kty\",\"equals\":\"RSA\"}",
          "\"x-ms-runtime\":{\"keys\":[{\"kty\":\"RSA\"}]}", false, M);

    /* The notes say why a claim is missing. */
    struct clst_policy_result *r = NULL;
    const struct clst_policy_trace *t =
        one(&r, "{\"claim\":\"x-ms-runtime.keys.0.kty\",\"equals\":\"RSA\"}",
            "{\"x-ms-runtime\":{\"keys\":[{\"kty\":\"RSA\"}]}}");
    assert_string_equal(t->missing_note,
                        "'x-ms-runtime.keys' is an array; claim paths cannot address array "
                        "elements");
    clst_policy_result_free(r);
    t = one(&r, tee, "{\"x-ms-isolation-tee\":{\"other\":1}}");
    assert_string_equal(t->missing_note,
                        "'x-ms-isolation-tee' has no member 'x-ms-attestation-type'");
    clst_policy_result_free(r);
    t = one(&r, tee, "{\"x-ms-isolation-tee\":\"sevsnpvm\"}");
    assert_string_equal(t->missing_note, "'x-ms-isolation-tee' is a string, not an object");
    clst_policy_result_free(r);
    t = one(&r, tee, "{\"x-ms-isolation-tee\":7}");
    assert_string_equal(t->missing_note, "'x-ms-isolation-tee' is a number, not an object");
    clst_policy_result_free(r);
    t = one(&r, tee, "{}");
    assert_null(t->missing_note); /* simply absent */
    clst_policy_result_free(r);
    /* The actual value is reported as found. */
    t = one(&r, tee, "{\"x-ms-isolation-tee\":{\"x-ms-attestation-type\":\"tdxvm\"}}");
    assert_string_equal(json_string_value(t->actual), "tdxvm");
    assert_string_equal(json_string_value(t->expected), "sevsnpvm");
    assert_string_equal(t->claim, "x-ms-isolation-tee.x-ms-attestation-type");
    assert_int_equal(t->op, CLST_POLICY_OP_EQUALS);
    clst_policy_result_free(r);
}

/* ---- nesting ------------------------------------------------------------------------------- */

static char *
nested(unsigned extra, const char *leaf)
{
    struct clst_buf b;
    clst_buf_init(&b, 1u << 20);
    assert_int_equal(
        clst_buf_append_str(&b, "{\"anyOf\":[{\"authority\":\"https://a\",\"allOf\":["), 0);
    for (unsigned i = 0; i < extra; i++) {
        assert_int_equal(clst_buf_append_str(&b, i % 2 ? "{\"allOf\":[" : "{\"anyOf\":["), 0);
    }
    assert_int_equal(clst_buf_append_str(&b, leaf), 0);
    for (unsigned i = 0; i < extra; i++) {
        assert_int_equal(clst_buf_append_str(&b, "]}"), 0);
    }
    assert_int_equal(clst_buf_append_str(&b, "]}]}"), 0);
    assert_int_equal(clst_buf_terminate(&b), 0);
    size_t size;
    return (char *)clst_buf_steal(&b, &size);
}

static void
test_nesting(void **state)
{
    (void)state;
    /* The deepest nesting the parser allows evaluates both ways; the denial is the leaf. */
    char *t = nested(CLST_POLICY_MAX_DEPTH - 1, "{\"claim\":\"c\",\"equals\":1}");
    struct clst_policy_result *r = NULL;
    assert_int_equal(pt_eval(REL, t, "{\"iss\":\"https://a\",\"c\":1}", NULL, NULL),
                     CLST_POLICY_ALLOW);
    assert_int_equal(pt_eval(REL, t, "{\"iss\":\"https://a\",\"c\":2}", NULL, &r),
                     CLST_POLICY_DENY);
    const struct clst_policy_trace *d = clst_policy_result_denial(r);
    assert_non_null(d);
    assert_int_equal(d->node, CLST_POLICY_NODE_CLAIM);
    assert_int_equal(d->depth, 2 + CLST_POLICY_MAX_DEPTH);
    assert_string_equal(d->path, "anyOf[0].allOf[0].anyOf[0].allOf[0].anyOf[0].allOf[0].anyOf[0]."
                                 "allOf[0].anyOf[0]");
    /* Every node has a verdict, in document order, each one level below its parent. */
    assert_int_equal(clst_policy_result_trace_count(r), 3 + CLST_POLICY_MAX_DEPTH);
    for (size_t i = 0; i < clst_policy_result_trace_count(r); i++) {
        assert_int_equal(clst_policy_result_trace(r, i)->depth, i);
        assert_false(clst_policy_result_trace(r, i)->verdict);
    }
    assert_null(clst_policy_result_trace(r, clst_policy_result_trace_count(r)));
    clst_policy_result_free(r);
    free(t);

    /* anyOf: one true member is enough; all false fails and the first failing one explains. */
    const char *p = ONE("{\"anyOf\":[{\"claim\":\"t\",\"equals\":\"tdxvm\"},"
                        "{\"claim\":\"t\",\"equals\":\"sevsnpvm\"}]},"
                        "{\"claim\":\"d\",\"equals\":false}");
    assert_int_equal(
        pt_eval(REL, p, "{\"iss\":\"https://a\",\"t\":\"sevsnpvm\",\"d\":false}", NULL, NULL),
        CLST_POLICY_ALLOW);
    assert_int_equal(pt_eval(REL, p, "{\"iss\":\"https://a\",\"t\":\"sgx\",\"d\":false}", NULL, &r),
                     CLST_POLICY_DENY);
    assert_string_equal(clst_policy_result_denial(r)->path, "anyOf[0].allOf[0].anyOf[0]");
    clst_policy_result_free(r);
    /* allOf: the first failing member explains, even when a later one fails too. */
    assert_int_equal(
        pt_eval(REL, p, "{\"iss\":\"https://a\",\"t\":\"tdxvm\",\"d\":true}", NULL, &r),
        CLST_POLICY_DENY);
    assert_string_equal(clst_policy_result_denial(r)->path, "anyOf[0].allOf[1]");
    clst_policy_result_free(r);
    assert_int_equal(pt_eval(REL, p, "{\"iss\":\"https://a\",\"t\":\"x\",\"d\":true}", NULL, &r),
                     CLST_POLICY_DENY);
    assert_string_equal(clst_policy_result_denial(r)->path, "anyOf[0].allOf[0].anyOf[0]");
    /* No short-circuit: all 7 nodes were evaluated. */
    assert_int_equal(clst_policy_result_trace_count(r), 7);
    assert_int_equal(clst_policy_result_trace(r, 3)->node, CLST_POLICY_NODE_ANY_OF);
    assert_int_equal(clst_policy_result_trace(r, 3)->outcome, CLST_POLICY_CHILDREN_FAIL);
    assert_int_equal(clst_policy_result_trace(r, 0)->node, CLST_POLICY_NODE_ROOT);
    assert_int_equal(clst_policy_result_trace(r, 1)->node, CLST_POLICY_NODE_AUTHORITY);
    assert_int_equal(clst_policy_result_trace(r, 1)->outcome, CLST_POLICY_CHILDREN_FAIL);
    assert_int_equal(clst_policy_result_trace(r, 2)->node, CLST_POLICY_NODE_ALL_OF);
    assert_string_equal(clst_policy_result_trace(r, 2)->path, "anyOf[0].allOf");
    clst_policy_result_free(r);
}

/* ---- authorities --------------------------------------------------------------------------- */

static void
test_authorities(void **state)
{
    (void)state;
    struct clst_policy_result *r = NULL;
    const char *two =
        "{\"anyOf\":[{\"authority\":\"https://a.example/"
        "\",\"allOf\":[{\"claim\":\"c\",\"equals\":1}]},"
        "{\"authority\":\"https://b.example\",\"allOf\":[{\"claim\":\"c\",\"equals\":1}]}]}";

    /* First fails (another issuer), second matches. */
    assert_int_equal(pt_eval(REL, two, "{\"iss\":\"https://b.example\",\"c\":1}", NULL, &r),
                     CLST_POLICY_ALLOW);
    assert_int_equal(clst_policy_result_trace(r, 1)->outcome, CLST_POLICY_ISSUER_MISMATCH);
    assert_false(clst_policy_result_trace(r, 1)->verdict);
    /* The first authority's conditions were evaluated all the same. */
    assert_true(clst_policy_result_trace(r, 3)->verdict);
    assert_true(clst_policy_result_trace(r, 4)->verdict);
    assert_string_equal(clst_policy_result_trace(r, 4)->path, "anyOf[1]");
    assert_string_equal(clst_policy_result_trace(r, 4)->authority, "https://b.example");
    assert_string_equal(clst_policy_result_trace(r, 4)->issuer, "https://b.example");
    assert_string_equal(pt_summary(r, 0), "allowed by anyOf[1] (authority 'https://b.example')");
    clst_policy_result_free(r);

    /* The issuer matches the first, whose conditions fail; the second is another issuer. */
    assert_int_equal(pt_eval(REL, two, "{\"iss\":\"https://a.example\",\"c\":2}", NULL, &r),
                     CLST_POLICY_DENY);
    assert_string_equal(clst_policy_result_denial(r)->path, "anyOf[0].allOf[0]");
    clst_policy_result_free(r);
    /* The issuer matches the second only: its failing condition explains. */
    assert_int_equal(pt_eval(REL, two, "{\"iss\":\"https://b.example\",\"c\":2}", NULL, &r),
                     CLST_POLICY_DENY);
    assert_string_equal(clst_policy_result_denial(r)->path, "anyOf[1].allOf[0]");
    clst_policy_result_free(r);
    /* No authority matches: the first explains, even though its conditions hold. */
    assert_int_equal(pt_eval(REL, two, "{\"iss\":\"https://c.example\",\"c\":1}", NULL, &r),
                     CLST_POLICY_DENY);
    const struct clst_policy_trace *d = clst_policy_result_denial(r);
    assert_string_equal(d->path, "anyOf[0]");
    assert_int_equal(d->outcome, CLST_POLICY_ISSUER_MISMATCH);
    assert_string_equal(d->issuer, "https://c.example");
    assert_int_equal(clst_policy_result_trace(r, 0)->outcome, CLST_POLICY_CHILDREN_FAIL);
    clst_policy_result_free(r);

    /* Trailing slashes: one is removed from each side, nothing else is normalized. */
    struct {
        const char *authority, *iss;
        bool match;
    } cases[] = {
        {"https://a.example/", "https://a.example", true},
        {"https://a.example", "https://a.example/", true},
        {"https://a.example/", "https://a.example/", true},
        {"https://a.example//", "https://a.example", false},
        {"https://a.example", "https://a.example//", false},
        {"https://A.example", "https://a.example", false},
        {"https://a.example", "http://a.example", false},
        {"https://a.example", "https://a.example.evil", false},
        {"https://a.example", "https://a.exampl", false},
        {"https://a.example/x", "https://a.example/X", false},
        {"https://a.example/", "/", false},
        {"x", "x", true},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char p[512], c[512];
        snprintf(
            p, sizeof(p),
            "{\"anyOf\":[{\"authority\":\"%s\",\"allOf\":[{\"claim\":\"c\",\"exists\":true}]}]}",
            cases[i].authority);
        snprintf(c, sizeof(c), "{\"iss\":\"%s\",\"c\":1}", cases[i].iss);
        enum clst_policy_decision dd = pt_eval(REL, p, c, NULL, NULL);
        if ((dd == CLST_POLICY_ALLOW) != cases[i].match) {
            fail_msg("authority %s, iss %s: decision %d", cases[i].authority, cases[i].iss, dd);
        }
    }

    /* The issuer argument takes precedence over the claims' iss. */
    assert_int_equal(
        pt_eval(REL, two, "{\"iss\":\"https://evil\",\"c\":1}", "https://a.example", NULL),
        CLST_POLICY_ALLOW);
    assert_int_equal(
        pt_eval(REL, two, "{\"iss\":\"https://a.example\",\"c\":1}", "https://evil", NULL),
        CLST_POLICY_DENY);
    /* No issuer at all, or one that is not a string, or one with a NUL inside. */
    const char *none[] = {"{\"c\":1}", "{\"iss\":5,\"c\":1}", "{\"iss\":null,\"c\":1}",
                          "{\"iss\":\"https://a.example\\u0000x\",\"c\":1}"};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(pt_eval(REL, two, none[i], NULL, &r), CLST_POLICY_DENY);
        d = clst_policy_result_denial(r);
        assert_int_equal(d->outcome, CLST_POLICY_ISSUER_MISMATCH);
        assert_null(d->issuer);
        clst_policy_result_free(r);
    }
    /* The same issuer twice: the second entry can allow when the first's conditions fail. */
    const char *twice =
        "{\"anyOf\":[{\"authority\":\"https://a\",\"allOf\":[{\"claim\":\"c\",\"equals\":1}]},"
        "{\"authority\":\"https://a\",\"allOf\":[{\"claim\":\"c\",\"equals\":2}]}]}";
    assert_int_equal(pt_eval(REL, twice, "{\"iss\":\"https://a\",\"c\":2}", NULL, NULL),
                     CLST_POLICY_ALLOW);
    assert_int_equal(pt_eval(REL, twice, "{\"iss\":\"https://a\",\"c\":3}", NULL, &r),
                     CLST_POLICY_DENY);
    assert_string_equal(clst_policy_result_denial(r)->path, "anyOf[0].allOf[0]");
    clst_policy_result_free(r);
}

/* ---- appraisal ----------------------------------------------------------------------------- */

#define APPRAISAL                                                                                  \
    "{\"version\":\"1.0.0\",\"authorizationRules\":{\"allOf\":["                                   \
    "{\"claim\":\"x-cloister-sim-is-debuggable\",\"equals\":false},"                               \
    "{\"claim\":\"x-cloister-sim-svn\",\"greaterOrEquals\":2}]},"                                  \
    "\"referenceValues\":{\"sevsnpvm\":{\"x-ms-sevsnpvm-launchmeasurement\":[\"cc\"]},"            \
    "\"sim\":{\"x-cloister-sim-mrenclave\":[\"aa\",\"bb\"],\"x-cloister-sim-product-id\":[7]}}}"

static void
test_appraisal(void **state)
{
    (void)state;
    struct clst_policy_result *r = NULL;
    const char *good = "{\"x-ms-attestation-type\":\"sim\",\"x-cloister-sim-mrenclave\":\"bb\","
                       "\"x-cloister-sim-product-id\":7,\"x-cloister-sim-is-debuggable\":false,"
                       "\"x-cloister-sim-svn\":3}";
    assert_int_equal(pt_eval(APP, APPRAISAL, good, NULL, &r), CLST_POLICY_ALLOW);
    /* root, referenceValues, its 2 sim entries (not the sevsnpvm one), rules group, 2 rules */
    assert_int_equal(clst_policy_result_trace_count(r), 7);
    const struct clst_policy_trace *t = clst_policy_result_trace(r, 1);
    assert_int_equal(t->node, CLST_POLICY_NODE_REFERENCE);
    assert_string_equal(t->path, "referenceValues");
    assert_string_equal(t->attestation_type, "sim");
    assert_int_equal(t->outcome, CLST_POLICY_HOLDS);
    t = clst_policy_result_trace(r, 2);
    assert_int_equal(t->node, CLST_POLICY_NODE_REF_VALUE);
    assert_int_equal(t->op, CLST_POLICY_OP_ONE_OF);
    assert_string_equal(t->path, "referenceValues.sim[\"x-cloister-sim-mrenclave\"]");
    assert_string_equal(t->claim, "x-cloister-sim-mrenclave");
    assert_true(json_is_array(t->expected));
    assert_int_equal(t->depth, 2);
    assert_string_equal(clst_policy_result_trace(r, 4)->path, "authorizationRules");
    assert_int_equal(clst_policy_result_trace(r, 4)->node, CLST_POLICY_NODE_ALL_OF);
    assert_int_equal(clst_policy_result_trace(r, 4)->depth, 1);
    assert_string_equal(clst_policy_result_trace(r, 5)->path, "authorizationRules.allOf[0]");
    clst_policy_result_free(r);

    /* A measurement that is not allowed. */
    const char *bad = "{\"x-ms-attestation-type\":\"sim\",\"x-cloister-sim-mrenclave\":\"ab\","
                      "\"x-cloister-sim-product-id\":7,\"x-cloister-sim-is-debuggable\":false,"
                      "\"x-cloister-sim-svn\":3}";
    assert_int_equal(pt_eval(APP, APPRAISAL, bad, NULL, &r), CLST_POLICY_DENY);
    t = clst_policy_result_denial(r);
    assert_string_equal(t->path, "referenceValues.sim[\"x-cloister-sim-mrenclave\"]");
    assert_int_equal(t->outcome, CLST_POLICY_FAILS);
    assert_string_equal(json_string_value(t->actual), "ab");
    clst_policy_result_free(r);
    /* 7.0 is 7; "7" is not. */
    assert_int_equal(pt_eval(APP, APPRAISAL,
                             "{\"x-ms-attestation-type\":\"sim\",\"x-cloister-sim-mrenclave\":"
                             "\"aa\",\"x-cloister-sim-product-id\":7.0,"
                             "\"x-cloister-sim-is-debuggable\":false,\"x-cloister-sim-svn\":2}",
                             NULL, NULL),
                     CLST_POLICY_ALLOW);
    assert_int_equal(pt_eval(APP, APPRAISAL,
                             "{\"x-ms-attestation-type\":\"sim\",\"x-cloister-sim-mrenclave\":"
                             "\"aa\",\"x-cloister-sim-product-id\":\"7\","
                             "\"x-cloister-sim-is-debuggable\":false,\"x-cloister-sim-svn\":2}",
                             NULL, &r),
                     CLST_POLICY_DENY);
    assert_int_equal(clst_policy_result_denial(r)->outcome, CLST_POLICY_TYPE_MISMATCH);
    assert_string_equal(clst_policy_result_denial(r)->path,
                        "referenceValues.sim[\"x-cloister-sim-product-id\"]");
    clst_policy_result_free(r);
    /* A measurement claim that is missing. */
    assert_int_equal(pt_eval(APP, APPRAISAL,
                             "{\"x-ms-attestation-type\":\"sim\",\"x-cloister-sim-product-id\":7,"
                             "\"x-cloister-sim-is-debuggable\":false,\"x-cloister-sim-svn\":2}",
                             NULL, &r),
                     CLST_POLICY_DENY);
    assert_int_equal(clst_policy_result_denial(r)->outcome, CLST_POLICY_MISSING);
    clst_policy_result_free(r);

    /* An attestation type without reference values: denied at referenceValues. */
    assert_int_equal(pt_eval(APP, APPRAISAL,
                             "{\"x-ms-attestation-type\":\"tdxvm\",\"x-cloister-sim-svn\":2,"
                             "\"x-cloister-sim-is-debuggable\":false}",
                             NULL, &r),
                     CLST_POLICY_DENY);
    t = clst_policy_result_denial(r);
    assert_string_equal(t->path, "referenceValues");
    assert_int_equal(t->outcome, CLST_POLICY_NO_REFERENCE);
    assert_string_equal(t->attestation_type, "tdxvm");
    assert_int_equal(clst_policy_result_trace_count(r), 5); /* no entries evaluated */
    clst_policy_result_free(r);
    /* The type claim missing, or not a string, or a prefix of a listed type. */
    assert_int_equal(pt_eval(APP, APPRAISAL, "{\"x-cloister-sim-svn\":2}", NULL, &r),
                     CLST_POLICY_DENY);
    assert_int_equal(clst_policy_result_denial(r)->outcome, CLST_POLICY_MISSING);
    clst_policy_result_free(r);
    assert_int_equal(pt_eval(APP, APPRAISAL, "{\"x-ms-attestation-type\":1}", NULL, &r),
                     CLST_POLICY_DENY);
    assert_int_equal(clst_policy_result_denial(r)->outcome, CLST_POLICY_TYPE_MISMATCH);
    clst_policy_result_free(r);
    assert_int_equal(pt_eval(APP, APPRAISAL, "{\"x-ms-attestation-type\":\"si\"}", NULL, &r),
                     CLST_POLICY_DENY);
    assert_int_equal(clst_policy_result_denial(r)->outcome, CLST_POLICY_NO_REFERENCE);
    clst_policy_result_free(r);
    assert_int_equal(
        pt_eval(APP, APPRAISAL, "{\"x-ms-attestation-type\":\"sim\\u0000x\"}", NULL, &r),
        CLST_POLICY_DENY);
    assert_int_equal(clst_policy_result_denial(r)->outcome, CLST_POLICY_NO_REFERENCE);
    clst_policy_result_free(r);

    /* Reference values hold, a rule fails: the rule explains. */
    const char *debug = "{\"x-ms-attestation-type\":\"sim\",\"x-cloister-sim-mrenclave\":\"aa\","
                        "\"x-cloister-sim-product-id\":7,\"x-cloister-sim-is-debuggable\":true,"
                        "\"x-cloister-sim-svn\":3}";
    assert_int_equal(pt_eval(APP, APPRAISAL, debug, NULL, &r), CLST_POLICY_DENY);
    assert_string_equal(clst_policy_result_denial(r)->path, "authorizationRules.allOf[0]");
    clst_policy_result_free(r);

    /* Without referenceValues only the rules decide; an issuer plays no part. */
    const char *rules_only = "{\"authorizationRules\":{\"anyOf\":["
                             "{\"claim\":\"x-ms-attestation-type\",\"equals\":\"sim\"},"
                             "{\"claim\":\"x-ms-attestation-type\",\"equals\":\"sevsnpvm\"}]}}";
    assert_int_equal(pt_eval(APP, rules_only, "{\"x-ms-attestation-type\":\"sevsnpvm\"}",
                             "https://whatever", NULL),
                     CLST_POLICY_ALLOW);
    assert_int_equal(pt_eval(APP, rules_only, "{\"x-ms-attestation-type\":\"tdxvm\"}", NULL, &r),
                     CLST_POLICY_DENY);
    assert_string_equal(clst_policy_result_denial(r)->path, "authorizationRules.anyOf[0]");
    clst_policy_result_free(r);
}

/* ---- API ----------------------------------------------------------------------------------- */

static void
test_api(void **state)
{
    (void)state;
    struct clst_err err = {0};
    struct clst_policy *p = pt_parse(REL, ONE("{\"claim\":\"c\",\"equals\":\"x\"}"));
    struct clst_policy_result *r = NULL, *sentinel = (struct clst_policy_result *)&err;

    /* Claims that are not an object: nothing written. */
    json_t *arr = pt_json("[]");
    r = sentinel;
    CHECK_RC(clst_policy_evaluate(p, arr, NULL, &r, &err), CLST_E_INVAL);
    assert_ptr_equal(r, sentinel);
    assert_string_equal(err.msg, "the claims must be a JSON object, got array");
    CHECK_RC(clst_policy_evaluate(p, NULL, NULL, &r, &err), CLST_E_INVAL);
    CHECK_RC(clst_policy_evaluate(NULL, arr, NULL, &r, &err), CLST_E_INVAL);
    assert_ptr_equal(r, sentinel);
    json_decref(arr);

    /* A denial: CLST_E_DENIED with a redacted summary in the error. */
    json_t *claims = pt_json("{\"iss\":\"https://a\",\"c\":\"secret-value\"}");
    r = NULL;
    CHECK_RC(clst_policy_evaluate(p, claims, NULL, &r, &err), CLST_E_DENIED);
    assert_non_null(r);
    assert_string_equal(err.msg, "denied at anyOf[0].allOf[0]: claim 'c' equals <string>: fails: "
                                 "actual <string>");
    assert_null(strstr(err.msg, "secret-value"));
    /* The result outlives the claims and the policy. */
    char hash[CLST_POLICY_HASH_STR_SIZE];
    CHECK_RC(clst_policy_hash_b64url(p, hash), CLST_OK);
    json_decref(claims);
    clst_policy_free(p);
    const struct clst_policy_trace *d = clst_policy_result_denial(r);
    assert_string_equal(json_string_value(d->actual), "secret-value");
    assert_string_equal(json_string_value(d->expected), "x");
    assert_string_equal(d->claim, "c");
    assert_string_equal(clst_policy_result_policy_hash(r), hash);
    assert_string_equal(clst_policy_result_trace(r, 1)->authority, "https://a");
    clst_policy_result_free(r);
    clst_policy_result_free(NULL);

    /* One policy, many evaluations, results independent. */
    p = pt_parse(REL, ONE("{\"claim\":\"c\",\"less\":10}"));
    struct clst_policy_result *rs[20];
    for (int i = 0; i < 20; i++) {
        char text[64];
        snprintf(text, sizeof(text), "{\"iss\":\"https://a\",\"c\":%d}", i);
        json_t *c = pt_json(text);
        enum clst_status rc = clst_policy_evaluate(p, c, NULL, &rs[i], &err);
        assert_int_equal(rc, i < 10 ? CLST_OK : CLST_E_DENIED);
        json_decref(c);
    }
    for (int i = 0; i < 20; i++) {
        assert_int_equal(json_integer_value(clst_policy_result_trace(rs[i], 3)->actual), i);
        clst_policy_result_free(rs[i]);
    }
    clst_policy_free(p);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_equals),      cmocka_unit_test(test_not_equals),
        cmocka_unit_test(test_ordering),    cmocka_unit_test(test_exists),
        cmocka_unit_test(test_paths),       cmocka_unit_test(test_nesting),
        cmocka_unit_test(test_authorities), cmocka_unit_test(test_appraisal),
        cmocka_unit_test(test_api),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
