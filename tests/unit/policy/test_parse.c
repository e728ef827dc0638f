/*
 * Unit tests for src/policy/parse.c: valid release and appraisal policies in the cloud grammar's
 * shapes, and every kind of malformed policy with the exact message it gets (path first), the
 * limits at and one past each bound, and clst_policy_from_json (deep copy, NULs, bad arguments).
 */
#include "policy_test_util.h"

#include <cloister/crypto.h>

#define REL CLST_POLICY_RELEASE
#define APP CLST_POLICY_APPRAISAL

/* A policy with one authority and the given allOf members. */
#define ONE(members)                                                                               \
    "{\"version\":\"1.0.0\",\"anyOf\":[{\"authority\":\"https://a\",\"allOf\":[" members "]}]}"

/* The message must contain `sub` (for jansson's own texts and long generated paths). */
static void
parse_fails_sub(enum clst_policy_kind kind, const char *text, size_t size, enum clst_status status,
                const char *sub)
{
    struct clst_policy *p = NULL;
    struct clst_err err = {0};
    CHECK_RC(clst_policy_parse(text, size, kind, &p, &err), status);
    assert_null(p);
    if (strstr(err.msg, sub) == NULL) {
        fail_msg("message '%s' lacks '%s'", err.msg, sub);
    }
}

/* The policy text `fmt` (printf-style, filled with the arguments) must be refused with `status`
 * and exactly `msg`. */
static void fails_with_(int line, enum clst_policy_kind kind, enum clst_status status,
                        const char *msg, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void
fails_with_(int line, enum clst_policy_kind kind, enum clst_status status, const char *msg,
            const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    assert_true(n > 0 && (size_t)n < sizeof(text));
    pt_parse_fails_(__FILE__, line, kind, text, status, msg);
}
#define fails_with(kind, fmt, arg, status, msg) fails_with_(__LINE__, kind, status, msg, fmt, arg)

/* ---- valid policies ------------------------------------------------------------------------ */

static void
test_valid_release(void **state)
{
    (void)state;
    /* The confidential-VM shape: a nested anyOf inside allOf, several authorities (one with and
     * one without a trailing slash), no "version" (read as 1.0.0). */
    const char *cvm =
        "{\"anyOf\":["
        " {\"allOf\":[{\"claim\":\"x-ms-compliance-status\",\"equals\":\"azure-compliant-cvm\"},"
        "  {\"anyOf\":[{\"claim\":\"x-ms-attestation-type\",\"equals\":\"tdxvm\"},"
        "             {\"claim\":\"x-ms-attestation-type\",\"equals\":\"sevsnpvm\"}]}],"
        "  \"authority\":\"https://one.example/\"},"
        " {\"authority\":\"https://two.example\",\"anyOf\":["
        "  {\"claim\":\"x-ms-sgx-svn\",\"greater\":1},"
        "  {\"claim\":\"x-ms-isolation-tee.x-ms-attestation-type\",\"equals\":\"sevsnpvm\"}]}]}";
    struct clst_policy *p = pt_parse(REL, cvm);
    assert_int_equal(clst_policy_get_kind(p), REL);
    assert_int_equal(clst_policy_authority_count(p), 2);
    assert_int_equal(clst_policy_condition_count(p), 5);
    assert_non_null(clst_policy_json(p));
    assert_true(json_is_object(clst_policy_json(p)));
    clst_policy_free(p);

    /* Every operator and operand type the grammar allows. */
    p = pt_parse(REL, ONE("{\"claim\":\"s\",\"equals\":\"x\"},{\"claim\":\"n\",\"equals\":1},"
                          "{\"claim\":\"r\",\"equals\":1.5},{\"claim\":\"b\",\"equals\":true},"
                          "{\"claim\":\"s\",\"notEquals\":\"y\"},{\"claim\":\"n\",\"less\":2},"
                          "{\"claim\":\"n\",\"lessOrEquals\":-2.5},{\"claim\":\"n\",\"greater\":0},"
                          "{\"claim\":\"n\",\"greaterOrEquals\":9223372036854775807},"
                          "{\"claim\":\"e\",\"exists\":true},{\"claim\":\"f\",\"exists\":false},"
                          "{\"claim\":\"a.b.c\",\"equals\":\"\"}"));
    assert_int_equal(clst_policy_condition_count(p), 12);
    assert_int_equal(clst_policy_authority_count(p), 1);
    clst_policy_free(p);

    /* Member order inside a condition does not matter. */
    clst_policy_free(pt_parse(REL, ONE("{\"equals\":\"x\",\"claim\":\"s\"}")));
    /* Strings may hold any character except NUL, values up to the limit. */
    clst_policy_free(pt_parse(REL, ONE("{\"claim\":\"s\",\"equals\":\"tab\\there \\u00e9\"}")));
    /* The text need not be NUL-terminated: only `size` bytes are read. */
    const char *t = ONE("{\"claim\":\"s\",\"equals\":\"x\"}");
    size_t n = strlen(t);
    char *copy = malloc(n);
    assert_non_null(copy);
    memcpy(copy, t, n);
    struct clst_err err = {0};
    CHECK_RC(clst_policy_parse(copy, n, REL, &p, &err), CLST_OK);
    clst_policy_free(p);
    free(copy);
}

static void
test_valid_appraisal(void **state)
{
    (void)state;
    struct clst_policy *p =
        pt_parse(APP, "{\"version\":\"1.0.0\",\"authorizationRules\":{\"allOf\":["
                      "{\"claim\":\"x-cloister-sim-is-debuggable\",\"equals\":false},"
                      "{\"claim\":\"x-cloister-sim-svn\",\"greaterOrEquals\":2}]},"
                      "\"referenceValues\":{\"sim\":{\"x-cloister-sim-mrenclave\":[\"aa\",\"bb\"],"
                      "\"x-cloister-sim-product-id\":[7]},"
                      "\"sevsnpvm\":{\"x-ms-sevsnpvm-launchmeasurement\":[\"cc\"]}}}");
    assert_int_equal(clst_policy_get_kind(p), APP);
    assert_int_equal(clst_policy_authority_count(p), 0);
    assert_int_equal(clst_policy_condition_count(p), 5); /* 2 rules + 3 reference entries */
    clst_policy_free(p);
    /* Without reference values; with anyOf rules. */
    clst_policy_free(pt_parse(APP, "{\"authorizationRules\":{\"anyOf\":["
                                   "{\"claim\":\"x-ms-attestation-type\",\"equals\":\"sim\"}]}}"));
}

/* ---- malformed release policies ------------------------------------------------------------ */

static void
test_top_level(void **state)
{
    (void)state;
    pt_parse_fails(REL, "[]", CLST_E_MALFORMED, "policy: must be a JSON object, got array");
    parse_fails_sub(REL, "\"x\"", 3, CLST_E_MALFORMED, "policy: not valid JSON: ");
    pt_parse_fails(REL, "{}", CLST_E_MALFORMED,
                   "policy: 'anyOf' is required: {\"version\": \"1.0.0\", \"anyOf\": "
                   "[{\"authority\": ..., \"allOf\": [...]}]}");
    pt_parse_fails(REL, "{\"version\":\"1.0.0\",\"anyOf\":[]}", CLST_E_MALFORMED,
                   "anyOf: empty; the grammar requires at least one authority");
    pt_parse_fails(REL, "{\"anyOf\":{}}", CLST_E_MALFORMED,
                   "anyOf: must be an array of authorities, got object");
    pt_parse_fails(REL, "{\"allOf\":[]}", CLST_E_MALFORMED,
                   "policy: the top level of a release policy is 'anyOf' (a list of "
                   "authorities), not 'allOf'");
    pt_parse_fails(REL, "{\"anyOf\":[],\"foo\":1}", CLST_E_MALFORMED,
                   "policy: unknown member 'foo'");
    pt_parse_fails(REL, "{\"anyof\":[]}", CLST_E_MALFORMED,
                   "policy: unknown member 'anyof' (did you mean 'anyOf'?)");
    pt_parse_fails(REL, "{\"Version\":\"1.0.0\"}", CLST_E_MALFORMED,
                   "policy: unknown member 'Version' (did you mean 'version'?)");
    /* Versions: only 1.0.0 (or none). */
    const char *a =
        ",\"anyOf\":[{\"authority\":\"a\",\"allOf\":[{\"claim\":\"c\",\"exists\":true}]}]}";
    char text[512];
    fails_with(REL, "{\"version\":\"2.0.0\"%s", a, CLST_E_MALFORMED,
               "version: unsupported version '2.0.0'; this grammar is \"1.0.0\"");
    fails_with(REL, "{\"version\":\"1.0.2\"%s", a, CLST_E_MALFORMED,
               "version: unsupported version '1.0.2'; this grammar is \"1.0.0\"");
    fails_with(REL, "{\"version\":\"0.2\"%s", a, CLST_E_MALFORMED,
               "version: unsupported version '0.2'; this grammar is \"1.0.0\"");
    fails_with(REL, "{\"version\":\"1.0.0 \"%s", a, CLST_E_MALFORMED,
               "version: unsupported version '1.0.0 '; this grammar is \"1.0.0\"");
    fails_with(REL, "{\"version\":1%s", a, CLST_E_MALFORMED,
               "version: must be the string \"1.0.0\", got number");
    snprintf(text, sizeof(text), "{\"version\":\"1.0.0\"%s", a);
    clst_policy_free(pt_parse(REL, text));

    /* Not JSON, duplicates, NUL, trailing data, empty, too big. */
    parse_fails_sub(REL, "{\"anyOf\":", 9, CLST_E_MALFORMED, "policy: not valid JSON: ");
    const char *dup = ONE("{\"claim\":\"c\",\"equals\":1,\"equals\":2}");
    parse_fails_sub(REL, dup, strlen(dup), CLST_E_MALFORMED, "duplicate object key");
    const char *nul = ONE("{\"claim\":\"c\",\"equals\":\"a\\u0000b\"}");
    parse_fails_sub(REL, nul, strlen(nul), CLST_E_MALFORMED, "policy: not valid JSON: ");
    const char *trailing = "{\"anyOf\":[]} {}";
    parse_fails_sub(REL, trailing, strlen(trailing), CLST_E_MALFORMED, "policy: not valid JSON: ");
    parse_fails_sub(REL, "", 0, CLST_E_MALFORMED, "policy: empty");
    char *big = malloc(CLST_POLICY_MAX_SIZE + 1);
    assert_non_null(big);
    memset(big, ' ', CLST_POLICY_MAX_SIZE + 1);
    parse_fails_sub(REL, big, CLST_POLICY_MAX_SIZE + 1, CLST_E_LIMIT,
                    "policy: 131073 bytes; at most 131072");
    free(big);
}

static void
test_authorities(void **state)
{
    (void)state;
    pt_parse_fails(REL, "{\"anyOf\":[\"x\"]}", CLST_E_MALFORMED,
                   "anyOf[0]: an authority must be an object {\"authority\": ..., \"allOf\"|"
                   "\"anyOf\": [...]}, got string");
    pt_parse_fails(REL, "{\"anyOf\":[{\"allOf\":[{\"claim\":\"c\",\"exists\":true}]}]}",
                   CLST_E_MALFORMED,
                   "anyOf[0]: 'authority' is required (the issuer whose tokens this entry "
                   "accepts)");
    pt_parse_fails(REL, "{\"anyOf\":[{\"authority\":1,\"allOf\":[]}]}", CLST_E_MALFORMED,
                   "anyOf[0].authority: the authority must be a string, got number");
    pt_parse_fails(REL, "{\"anyOf\":[{\"authority\":\"\",\"allOf\":[]}]}", CLST_E_MALFORMED,
                   "anyOf[0].authority: the authority is empty");
    pt_parse_fails(REL, "{\"anyOf\":[{\"authority\":\"a\\nb\",\"allOf\":[]}]}", CLST_E_MALFORMED,
                   "anyOf[0].authority: the authority contains a control character (0x0a)");
    pt_parse_fails(REL,
                   "{\"anyOf\":[{\"authority\":\"a\",\"allOf\":[{\"claim\":\"c\",\"exists\":true}],"
                   "\"anyOf\":[{\"claim\":\"c\",\"exists\":true}]}]}",
                   CLST_E_MALFORMED,
                   "anyOf[0]: both 'allOf' and 'anyOf'; an authority takes exactly one");
    pt_parse_fails(REL, "{\"anyOf\":[{\"authority\":\"a\"}]}", CLST_E_MALFORMED,
                   "anyOf[0]: no conditions; an authority needs 'allOf' or 'anyOf'");
    pt_parse_fails(REL, "{\"anyOf\":[{\"authority\":\"a\",\"claim\":\"c\",\"equals\":1}]}",
                   CLST_E_MALFORMED,
                   "anyOf[0]: 'claim' directly in an authority; conditions go inside its 'allOf' "
                   "or 'anyOf'");
    pt_parse_fails(REL, "{\"anyOf\":[{\"authority\":\"a\",\"AllOf\":[]}]}", CLST_E_MALFORMED,
                   "anyOf[0]: unknown member 'AllOf' (did you mean 'allOf'?)");
    pt_parse_fails(REL, "{\"anyOf\":[{\"authority\":\"a\",\"allOf\":[]}]}", CLST_E_MALFORMED,
                   "anyOf[0].allOf: empty; the grammar requires at least one condition");
    pt_parse_fails(REL, "{\"anyOf\":[{\"authority\":\"a\",\"anyOf\":{}}]}", CLST_E_MALFORMED,
                   "anyOf[0].anyOf: must be an array of conditions, got object");
    /* The second authority is checked as carefully as the first. */
    pt_parse_fails(
        REL,
        "{\"anyOf\":[{\"authority\":\"a\",\"allOf\":[{\"claim\":\"c\",\"exists\":true}]},"
        "{\"authority\":\"b\",\"allOf\":[{\"claim\":\"c\",\"exist\":true}]}]}",
        CLST_E_MALFORMED, "anyOf[1].allOf[0]: unknown operator 'exist' (did you mean 'exists'?)");
}

static void
test_conditions(void **state)
{
    (void)state;
    pt_parse_fails(REL, ONE("\"c\""), CLST_E_MALFORMED,
                   "anyOf[0].allOf[0]: a condition must be an object, got string");
    pt_parse_fails(REL,
                   ONE("{\"claim\":\"a\",\"equals\":1},{\"claim\":\"b\",\"equals\":1},"
                       "{\"claim\":\"x-ms-sevsnpvm-is-debuggable\",\"equal\":false}"),
                   CLST_E_MALFORMED,
                   "anyOf[0].allOf[2]: unknown operator 'equal' (did you mean 'equals'?)");
    pt_parse_fails(REL, ONE("{\"claim\":\"c\",\"greaterOrEqual\":1}"), CLST_E_MALFORMED,
                   "anyOf[0].allOf[0]: unknown operator 'greaterOrEqual' (did you mean "
                   "'greaterOrEquals'?)");
    pt_parse_fails(REL, ONE("{\"claim\":\"c\",\"notequals\":1}"), CLST_E_MALFORMED,
                   "anyOf[0].allOf[0]: unknown operator 'notequals' (did you mean 'notEquals'?)");
    pt_parse_fails(REL, ONE("{\"claim\":\"c\",\"matches\":\"x*\"}"), CLST_E_MALFORMED,
                   "anyOf[0].allOf[0]: unknown operator 'matches'");
    pt_parse_fails(REL, ONE("{\"claim\":\"c\",\"in\":[1]}"), CLST_E_MALFORMED,
                   "anyOf[0].allOf[0]: unknown operator 'in'");
    pt_parse_fails(REL, ONE("{\"claim\":\"c\",\"e\\u0001\":1}"), CLST_E_MALFORMED,
                   "anyOf[0].allOf[0]: unknown operator 'e\\x01'");
    pt_parse_fails(REL, ONE("{\"claim\":\"c\",\"equals\":1,\"notEquals\":2}"), CLST_E_MALFORMED,
                   "anyOf[0].allOf[0]: two operators ('equals' and 'notEquals'); a claim "
                   "condition takes exactly one");
    pt_parse_fails(REL, ONE("{\"claim\":\"c\"}"), CLST_E_MALFORMED,
                   "anyOf[0].allOf[0]: claim condition without an operator (equals, notEquals, "
                   "less, lessOrEquals, greater, greaterOrEquals or exists)");
    pt_parse_fails(REL, ONE("{\"equals\":1}"), CLST_E_MALFORMED,
                   "anyOf[0].allOf[0]: operator 'equals' without a 'claim' to apply it to");
    pt_parse_fails(REL, ONE("{}"), CLST_E_MALFORMED,
                   "anyOf[0].allOf[0]: empty condition; write {\"claim\": ..., <operator>: ...} "
                   "or {\"anyOf\"|\"allOf\": [...]}");
    pt_parse_fails(REL, ONE("{\"Claim\":\"c\"}"), CLST_E_MALFORMED,
                   "anyOf[0].allOf[0]: unknown member 'Claim' (did you mean 'claim'?)");
    pt_parse_fails(REL, ONE("{\"claim\":\"c\",\"anyOf\":[{\"claim\":\"c\",\"exists\":true}]}"),
                   CLST_E_MALFORMED,
                   "anyOf[0].allOf[0]: 'claim' together with 'anyOf'; a condition is either a "
                   "claim condition or a group");
    pt_parse_fails(REL,
                   ONE("{\"anyOf\":[{\"claim\":\"c\",\"exists\":true}],"
                       "\"allOf\":[{\"claim\":\"c\",\"exists\":true}]}"),
                   CLST_E_MALFORMED,
                   "anyOf[0].allOf[0]: both 'anyOf' and 'allOf'; a condition takes one of them");
    pt_parse_fails(REL, ONE("{\"anyOf\":[{\"claim\":\"c\",\"exists\":true}],\"foo\":1}"),
                   CLST_E_MALFORMED, "anyOf[0].allOf[0]: unknown member 'foo'");
    pt_parse_fails(REL, ONE("{\"anyOf\":[]}"), CLST_E_MALFORMED,
                   "anyOf[0].allOf[0].anyOf: empty; the grammar requires at least one condition");
    pt_parse_fails(REL, ONE("{\"allOf\":{\"claim\":\"c\",\"exists\":true}}"), CLST_E_MALFORMED,
                   "anyOf[0].allOf[0].allOf: must be an array of conditions, got object");
    /* Deep inside: the path says where. */
    pt_parse_fails(REL,
                   ONE("{\"claim\":\"c\",\"exists\":true},{\"anyOf\":[{\"claim\":\"c\",\"exists\":"
                       "true},{\"allOf\":[{\"claim\":\"c\",\"lesser\":1}]}]}"),
                   CLST_E_MALFORMED,
                   "anyOf[0].allOf[1].anyOf[1].allOf[0]: unknown operator 'lesser'");
}

static void
test_claim_paths(void **state)
{
    (void)state;
    pt_parse_fails(REL, ONE("{\"claim\":1,\"equals\":1}"), CLST_E_MALFORMED,
                   "anyOf[0].allOf[0].claim: the claim path must be a string, got number");
    pt_parse_fails(REL, ONE("{\"claim\":\"\",\"equals\":1}"), CLST_E_MALFORMED,
                   "anyOf[0].allOf[0].claim: the claim path is empty");
    pt_parse_fails(REL, ONE("{\"claim\":\"a..b\",\"equals\":1}"), CLST_E_MALFORMED,
                   "anyOf[0].allOf[0].claim: empty segment in claim path 'a..b' (a leading, "
                   "trailing or doubled '.')");
    pt_parse_fails(REL, ONE("{\"claim\":\".a\",\"equals\":1}"), CLST_E_MALFORMED,
                   "anyOf[0].allOf[0].claim: empty segment in claim path '.a' (a leading, "
                   "trailing or doubled '.')");
    pt_parse_fails(REL, ONE("{\"claim\":\"a.\",\"equals\":1}"), CLST_E_MALFORMED,
                   "anyOf[0].allOf[0].claim: empty segment in claim path 'a.' (a leading, "
                   "trailing or doubled '.')");
    pt_parse_fails(REL, ONE("{\"claim\":\"a\\u001bb\",\"equals\":1}"), CLST_E_MALFORMED,
                   "anyOf[0].allOf[0].claim: the claim path contains a control character (0x1b)");

    /* 256 bytes pass, 257 fail; 16 segments pass, 17 fail. */
    char claim[300], text[600];
    memset(claim, 'c', 256);
    claim[256] = '\0';
    snprintf(text, sizeof(text), ONE("{\"claim\":\"%s\",\"exists\":true}"), claim);
    clst_policy_free(pt_parse(REL, text));
    claim[256] = 'c';
    claim[257] = '\0';
    fails_with(REL, ONE("{\"claim\":\"%s\",\"exists\":true}"), claim, CLST_E_LIMIT,
               "anyOf[0].allOf[0].claim: the claim path is too long (257 bytes; at most 256)");
    strcpy(claim, "a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p");
    snprintf(text, sizeof(text), ONE("{\"claim\":\"%s\",\"exists\":true}"), claim);
    clst_policy_free(pt_parse(REL, text));
    strcat(claim, ".q");
    fails_with(REL, ONE("{\"claim\":\"%s\",\"exists\":true}"), claim, CLST_E_LIMIT,
               "anyOf[0].allOf[0].claim: claim path 'a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q' has "
               "more than 16 segments");
}

static void
test_operands(void **state)
{
    (void)state;
    pt_parse_fails(REL, ONE("{\"claim\":\"c\",\"equals\":{}}"), CLST_E_MALFORMED,
                   "anyOf[0].allOf[0].equals: an object cannot be compared; use a string, a "
                   "number or true/false");
    pt_parse_fails(REL, ONE("{\"claim\":\"c\",\"notEquals\":[1]}"), CLST_E_MALFORMED,
                   "anyOf[0].allOf[0].notEquals: an array cannot be compared; use a string, a "
                   "number or true/false");
    pt_parse_fails(REL, ONE("{\"claim\":\"c\",\"equals\":null}"), CLST_E_MALFORMED,
                   "anyOf[0].allOf[0].equals: null cannot be compared; use a string, a number "
                   "or true/false");
    const char *ordering[] = {"less", "lessOrEquals", "greater", "greaterOrEquals"};
    for (size_t i = 0; i < 4; i++) {
        char text[512], msg[256];
        snprintf(text, sizeof(text), ONE("{\"claim\":\"c\",\"%s\":\"1\"}"), ordering[i]);
        snprintf(msg, sizeof(msg),
                 "anyOf[0].allOf[0].%s: '%s' compares numbers; the operand must be a number, "
                 "got string",
                 ordering[i], ordering[i]);
        pt_parse_fails(REL, text, CLST_E_MALFORMED, msg);
        snprintf(text, sizeof(text), ONE("{\"claim\":\"c\",\"%s\":true}"), ordering[i]);
        snprintf(msg, sizeof(msg),
                 "anyOf[0].allOf[0].%s: '%s' compares numbers; the operand must be a number, "
                 "got boolean",
                 ordering[i], ordering[i]);
        pt_parse_fails(REL, text, CLST_E_MALFORMED, msg);
    }
    pt_parse_fails(REL, ONE("{\"claim\":\"c\",\"exists\":\"true\"}"), CLST_E_MALFORMED,
                   "anyOf[0].allOf[0].exists: 'exists' takes true or false (a JSON boolean), got "
                   "string");
    pt_parse_fails(REL, ONE("{\"claim\":\"c\",\"exists\":1}"), CLST_E_MALFORMED,
                   "anyOf[0].allOf[0].exists: 'exists' takes true or false (a JSON boolean), got "
                   "number");
    /* String operands up to CLST_POLICY_MAX_VALUE_SIZE bytes. */
    char *value = malloc(CLST_POLICY_MAX_VALUE_SIZE + 2);
    char *text = malloc(CLST_POLICY_MAX_VALUE_SIZE + 200);
    assert_non_null(value);
    assert_non_null(text);
    memset(value, 'v', CLST_POLICY_MAX_VALUE_SIZE);
    value[CLST_POLICY_MAX_VALUE_SIZE] = '\0';
    snprintf(text, CLST_POLICY_MAX_VALUE_SIZE + 200, ONE("{\"claim\":\"c\",\"equals\":\"%s\"}"),
             value);
    clst_policy_free(pt_parse(REL, text));
    strcat(value, "v");
    snprintf(text, CLST_POLICY_MAX_VALUE_SIZE + 200, ONE("{\"claim\":\"c\",\"equals\":\"%s\"}"),
             value);
    pt_parse_fails(REL, text, CLST_E_LIMIT,
                   "anyOf[0].allOf[0].equals: string too long (4097 bytes; at most 4096)");
    free(value);
    free(text);
}

/* ---- limits -------------------------------------------------------------------------------- */

/* Starts `b` with a policy of one authority, open inside its allOf. */
static void
one_open(struct clst_buf *b)
{
    clst_buf_init(b, 1u << 20);
    assert_int_equal(clst_buf_append_str(b, "{\"anyOf\":[{\"authority\":\"a\",\"allOf\":["), 0);
}

/* Closes what one_open() opened and returns the text (malloc'ed, NUL-terminated). */
static char *
one_close(struct clst_buf *b)
{
    assert_int_equal(clst_buf_append_str(b, "]}]}"), 0);
    assert_int_equal(clst_buf_terminate(b), 0);
    size_t size;
    return (char *)clst_buf_steal(b, &size);
}

/* One authority whose allOf holds `extra` nested anyOf groups around one condition: the
 * authority's allOf is level 1, so the innermost group is at level 1 + extra. */
static char *
nested_policy(unsigned extra)
{
    struct clst_buf b;
    one_open(&b);
    for (unsigned i = 0; i < extra; i++) {
        assert_int_equal(clst_buf_append_str(&b, "{\"anyOf\":["), 0);
    }
    assert_int_equal(clst_buf_append_str(&b, "{\"claim\":\"c\",\"exists\":true}"), 0);
    for (unsigned i = 0; i < extra; i++) {
        assert_int_equal(clst_buf_append_str(&b, "]}"), 0);
    }
    return one_close(&b);
}

static void
test_depth_limit(void **state)
{
    (void)state;
    char *t = nested_policy(CLST_POLICY_MAX_DEPTH - 1);
    struct clst_policy *p = pt_parse(REL, t);
    assert_int_equal(clst_policy_condition_count(p), 1);
    clst_policy_free(p);
    free(t);

    t = nested_policy(CLST_POLICY_MAX_DEPTH);
    /* The group at level 9 is anyOf[0].allOf[0] followed by 7 ".anyOf[0]". */
    char msg[256] = "anyOf[0].allOf[0]";
    for (int i = 0; i < CLST_POLICY_MAX_DEPTH - 1; i++) {
        strcat(msg, ".anyOf[0]");
    }
    strcat(msg, ": nested deeper than 8 anyOf/allOf levels");
    pt_parse_fails(REL, t, CLST_E_LIMIT, msg);
    free(t);

    /* Far deeper than the cap: refused at level 9, without recursing further. */
    t = nested_policy(900);
    parse_fails_sub(REL, t, strlen(t), CLST_E_LIMIT, ": nested deeper than 8 anyOf/allOf levels");
    free(t);
}

/* One authority with `count` claim conditions. */
static char *
wide_policy(unsigned count)
{
    struct clst_buf b;
    one_open(&b);
    for (unsigned i = 0; i < count; i++) {
        assert_int_equal(
            clst_buf_appendf(&b, "%s{\"claim\":\"c%u\",\"equals\":%u}", i ? "," : "", i, i), 0);
    }
    return one_close(&b);
}

static void
test_condition_limits(void **state)
{
    (void)state;
    char *t = wide_policy(CLST_POLICY_MAX_CONDITIONS);
    struct clst_policy *p = pt_parse(REL, t);
    assert_int_equal(clst_policy_condition_count(p), CLST_POLICY_MAX_CONDITIONS);
    clst_policy_free(p);
    free(t);
    t = wide_policy(CLST_POLICY_MAX_CONDITIONS + 1);
    pt_parse_fails(REL, t, CLST_E_LIMIT,
                   "anyOf[0].allOf[256]: the policy has more than 256 conditions");
    free(t);

    /* Nodes: 130 chains of 7 nested groups hold only 130 conditions but 1000+ nodes. */
    struct clst_buf b;
    one_open(&b);
    for (int i = 0; i < 130; i++) {
        assert_int_equal(clst_buf_append_str(&b, i ? "," : ""), 0);
        for (int k = 0; k < 7; k++) {
            assert_int_equal(clst_buf_append_str(&b, "{\"allOf\":["), 0);
        }
        assert_int_equal(clst_buf_append_str(&b, "{\"claim\":\"c\",\"exists\":true}"), 0);
        for (int k = 0; k < 7; k++) {
            assert_int_equal(clst_buf_append_str(&b, "]}"), 0);
        }
    }
    assert_int_equal(clst_buf_append_str(&b, "]}]}"), 0);
    parse_fails_sub(REL, (const char *)b.data, b.size, CLST_E_LIMIT,
                    "the policy has more than 1024 nodes (authorities, groups and conditions)");
    clst_buf_cleanup(&b);

    /* Authorities: 64 pass, 65 fail. */
    for (unsigned count = CLST_POLICY_MAX_AUTHORITIES; count <= CLST_POLICY_MAX_AUTHORITIES + 1;
         count++) {
        clst_buf_init(&b, 1u << 20);
        assert_int_equal(clst_buf_append_str(&b, "{\"version\":\"1.0.0\",\"anyOf\":["), 0);
        for (unsigned i = 0; i < count; i++) {
            assert_int_equal(clst_buf_appendf(&b,
                                              "%s{\"authority\":\"https://a%u.example/\",\"allOf\":"
                                              "[{\"claim\":\"c\",\"equals\":1}]}",
                                              i ? "," : "", i),
                             0);
        }
        assert_int_equal(clst_buf_append_str(&b, "]}"), 0);
        assert_int_equal(clst_buf_terminate(&b), 0);
        if (count == CLST_POLICY_MAX_AUTHORITIES) {
            p = pt_parse(REL, (const char *)b.data);
            assert_int_equal(clst_policy_authority_count(p), CLST_POLICY_MAX_AUTHORITIES);
            clst_policy_free(p);
        } else {
            pt_parse_fails(REL, (const char *)b.data, CLST_E_LIMIT,
                           "anyOf: 65 authorities; at most 64");
        }
        clst_buf_cleanup(&b);
    }
}

/* ---- appraisal policies -------------------------------------------------------------------- */

static void
test_appraisal_malformed(void **state)
{
    (void)state;
    const char *rules = "\"authorizationRules\":{\"allOf\":[{\"claim\":\"c\",\"exists\":true}]}";

    pt_parse_fails(APP, "{}", CLST_E_MALFORMED,
                   "policy: 'authorizationRules' is required: {\"allOf\"|\"anyOf\": [conditions]}");
    pt_parse_fails(APP, "{\"anyOf\":[]}", CLST_E_MALFORMED,
                   "policy: 'anyOf' at the top level is a release policy; an appraisal policy has "
                   "'authorizationRules' and 'referenceValues'");
    pt_parse_fails(APP, "{\"authorizationRules\":[]}", CLST_E_MALFORMED,
                   "authorizationRules: must be {\"allOf\"|\"anyOf\": [conditions]}, got array");
    pt_parse_fails(APP, "{\"authorizationRules\":{\"claim\":\"c\",\"exists\":true}}",
                   CLST_E_MALFORMED,
                   "authorizationRules: must be {\"allOf\"|\"anyOf\": [conditions]}");
    pt_parse_fails(APP, "{\"authorizationRules\":{\"allOf\":[]}}", CLST_E_MALFORMED,
                   "authorizationRules.allOf: empty; the grammar requires at least one condition");
    pt_parse_fails(APP,
                   "{\"authorizationRules\":{\"allOf\":[{\"claim\":\"c\",\"exists\":true}],"
                   "\"x\":1}}",
                   CLST_E_MALFORMED, "authorizationRules: unknown member 'x'");
    pt_parse_fails(APP, "{\"authorizationRules\":{\"allOf\":[{\"claim\":\"c\",\"equal\":1}]}}",
                   CLST_E_MALFORMED,
                   "authorizationRules.allOf[0]: unknown operator 'equal' (did you mean "
                   "'equals'?)");
    fails_with(APP, "{%s,\"referencevalues\":{}}", rules, CLST_E_MALFORMED,
               "policy: unknown member 'referencevalues' (did you mean 'referenceValues'?)");
    fails_with(APP, "{%s,\"referenceValues\":{}}", rules, CLST_E_MALFORMED,
               "referenceValues: empty; leave it out to check no reference values");
    fails_with(APP, "{%s,\"referenceValues\":[]}", rules, CLST_E_MALFORMED,
               "referenceValues: must be an object {\"<attestation type>\": {\"<claim>\": "
               "[allowed values]}}, got array");
    fails_with(APP, "{%s,\"referenceValues\":{\"sev snp\":{\"c\":[1]}}}", rules, CLST_E_MALFORMED,
               "referenceValues: attestation type with a character other than letters, "
               "digits, '.', '_' and '-'");
    fails_with(APP, "{%s,\"referenceValues\":{\"sim\":{}}}", rules, CLST_E_MALFORMED,
               "referenceValues.sim: empty; list at least one claim and its allowed values");
    fails_with(APP, "{%s,\"referenceValues\":{\"sim\":[]}}", rules, CLST_E_MALFORMED,
               "referenceValues.sim: must be an object {\"<claim>\": [allowed values]}, got "
               "array");
    fails_with(APP, "{%s,\"referenceValues\":{\"sim\":{\"m\":\"aa\"}}}", rules, CLST_E_MALFORMED,
               "referenceValues.sim[\"m\"]: must be a non-empty array of allowed values");
    fails_with(APP, "{%s,\"referenceValues\":{\"sim\":{\"m\":[]}}}", rules, CLST_E_MALFORMED,
               "referenceValues.sim[\"m\"]: must be a non-empty array of allowed values");
    fails_with(APP, "{%s,\"referenceValues\":{\"sim\":{\"m\":[\"aa\",{}]}}}", rules,
               CLST_E_MALFORMED,
               "referenceValues.sim[\"m\"][1]: an object cannot be compared; use a string, a "
               "number or true/false");
    fails_with(APP, "{%s,\"referenceValues\":{\"sim\":{\"a..b\":[1]}}}", rules, CLST_E_MALFORMED,
               "referenceValues.sim[\"a..b\"].claim: empty segment in claim path 'a..b' (a "
               "leading, trailing or doubled '.')");
    fails_with(APP, "{%s,\"referenceValues\":{\"sim\":{\"a\\nb\":[1]}}}", rules, CLST_E_MALFORMED,
               "referenceValues.sim: the claim name contains a control character (0x0a)");

    /* 64 allowed values pass, 65 fail. */
    struct clst_buf b;
    for (int count = CLST_POLICY_MAX_REF_VALUES; count <= CLST_POLICY_MAX_REF_VALUES + 1; count++) {
        clst_buf_init(&b, 1u << 20);
        assert_int_equal(clst_buf_appendf(&b, "{%s,\"referenceValues\":{\"sim\":{\"m\":[", rules),
                         0);
        for (int i = 0; i < count; i++) {
            assert_int_equal(clst_buf_appendf(&b, "%s\"%02x\"", i ? "," : "", i), 0);
        }
        assert_int_equal(clst_buf_append_str(&b, "]}}}"), 0);
        assert_int_equal(clst_buf_terminate(&b), 0);
        if (count == CLST_POLICY_MAX_REF_VALUES) {
            clst_policy_free(pt_parse(APP, (const char *)b.data));
        } else {
            pt_parse_fails(APP, (const char *)b.data, CLST_E_LIMIT,
                           "referenceValues.sim[\"m\"]: 65 allowed values; at most 64");
        }
        clst_buf_cleanup(&b);
    }
    /* A release policy is not an appraisal policy and the other way round. */
    pt_parse_fails(REL, "{\"authorizationRules\":{\"allOf\":[{\"claim\":\"c\",\"exists\":true}]}}",
                   CLST_E_MALFORMED, "policy: unknown member 'authorizationRules'");
}

/* ---- from_json ----------------------------------------------------------------------------- */

static void
test_from_json(void **state)
{
    (void)state;
    struct clst_err err = {0};
    struct clst_policy *p = NULL, *q = NULL;
    const char *text = ONE("{\"claim\":\"c\",\"equals\":\"x\"}");
    json_t *doc = pt_json(text);

    CHECK_RC(clst_policy_from_json(doc, REL, &p, &err), CLST_OK);
    q = pt_parse(REL, text);
    uint8_t h1[CLST_POLICY_HASH_SIZE], h2[CLST_POLICY_HASH_SIZE];
    CHECK_RC(clst_policy_hash(p, h1), CLST_OK);
    CHECK_RC(clst_policy_hash(q, h2), CLST_OK);
    assert_memory_equal(h1, h2, sizeof(h1));
    /* The policy keeps its own copy: changing the caller's document changes nothing. */
    json_t *cond = json_array_get(
        json_object_get(json_array_get(json_object_get(doc, "anyOf"), 0), "allOf"), 0);
    assert_int_equal(json_object_set_new(cond, "equals", json_string("changed")), 0);
    assert_string_equal(
        json_string_value(json_object_get(
            json_array_get(
                json_object_get(json_array_get(json_object_get(clst_policy_json(p), "anyOf"), 0),
                                "allOf"),
                0),
            "equals")),
        "x");
    json_t *c = pt_json("{\"c\":\"x\",\"iss\":\"https://a\"}");
    struct clst_policy_result *r = NULL;
    CHECK_RC(clst_policy_evaluate(p, c, NULL, &r, &err), CLST_OK);
    clst_policy_result_free(r);
    json_decref(c);
    clst_policy_free(p);
    clst_policy_free(q);
    json_decref(doc);

    /* NULs inside strings of a built document. */
    doc = pt_json(ONE("{\"claim\":\"c\",\"equals\":\"x\"}"));
    cond = json_array_get(
        json_object_get(json_array_get(json_object_get(doc, "anyOf"), 0), "allOf"), 0);
    assert_int_equal(json_object_set_new(cond, "claim", json_stringn("a\0b", 3)), 0);
    p = NULL;
    CHECK_RC(clst_policy_from_json(doc, REL, &p, &err), CLST_E_MALFORMED);
    assert_null(p);
    assert_string_equal(err.msg, "anyOf[0].allOf[0].claim: the claim path contains a NUL "
                                 "character");
    assert_int_equal(json_object_set_new(cond, "claim", json_string("c")), 0);
    assert_int_equal(json_object_set_new(cond, "equals", json_stringn("a\0b", 3)), 0);
    CHECK_RC(clst_policy_from_json(doc, REL, &p, &err), CLST_E_MALFORMED);
    assert_string_equal(err.msg, "anyOf[0].allOf[0].equals: string contains a NUL character");
    json_decref(doc);

    /* Bad arguments. */
    CHECK_RC(clst_policy_from_json(NULL, REL, &p, &err), CLST_E_INVAL);
    doc = pt_json(text);
    CHECK_RC(clst_policy_from_json(doc, (enum clst_policy_kind)0, &p, &err), CLST_E_INVAL);
    CHECK_RC(clst_policy_from_json(doc, REL, NULL, &err), CLST_E_INVAL);
    CHECK_RC(clst_policy_parse(text, strlen(text), (enum clst_policy_kind)3, &p, &err),
             CLST_E_INVAL);
    CHECK_RC(clst_policy_parse(NULL, 5, REL, &p, &err), CLST_E_INVAL);
    assert_null(p);
    json_decref(doc);
    clst_policy_free(NULL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_release),    cmocka_unit_test(test_valid_appraisal),
        cmocka_unit_test(test_top_level),        cmocka_unit_test(test_authorities),
        cmocka_unit_test(test_conditions),       cmocka_unit_test(test_claim_paths),
        cmocka_unit_test(test_operands),         cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_condition_limits), cmocka_unit_test(test_appraisal_malformed),
        cmocka_unit_test(test_from_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
