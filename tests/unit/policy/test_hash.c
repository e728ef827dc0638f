/*
 * Unit tests for src/policy/hash.c: the canonical policy hash. A known answer (the canonical
 * text and its SHA-256 computed independently, as docs/policy.md shows them), stability under
 * member order, whitespace and equivalent escapes, and a different hash for every change of a
 * name or value.
 */
#include "policy_test_util.h"

#include <cloister/crypto.h>

#include "test_util.h"

#define REL CLST_POLICY_RELEASE
#define APP CLST_POLICY_APPRAISAL

/* The canonical form of KAT_POLICY: members sorted, no whitespace. */
#define KAT_CANONICAL                                                                              \
    "{\"anyOf\":[{\"allOf\":[{\"claim\":\"x-ms-attestation-type\",\"equals\":\"sevsnpvm\"},"       \
    "{\"claim\":\"x-ms-sevsnpvm-is-debuggable\",\"equals\":false}],"                               \
    "\"authority\":\"https://attest.example\"}],\"version\":\"1.0.0\"}"
/* SHA-256 of KAT_CANONICAL, computed outside Cloister (Python hashlib). */
#define KAT_HEX "8d8946f29b315cc1c036d78ad451c2330ee000cf75fb841461b59ce74904028c"
#define KAT_B64 "jYlG8psxXMHANteK1FHCMw7gAM91-4QUYbWc50kEAow"

static const char *const kat_policy = "{\n"
                                      "  \"version\": \"1.0.0\",\n"
                                      "  \"anyOf\": [\n"
                                      "    {\n"
                                      "      \"authority\": \"https://attest.example\",\n"
                                      "      \"allOf\": [\n"
                                      "        {\"claim\": \"x-ms-attestation-type\", \"equals\": "
                                      "\"sevsnpvm\"},\n"
                                      "        {\"equals\": false, \"claim\": "
                                      "\"x-ms-sevsnpvm-is-debuggable\"}\n"
                                      "      ]\n"
                                      "    }\n"
                                      "  ]\n"
                                      "}\n";

static void
b64_of(enum clst_policy_kind kind, const char *text, char out[static CLST_POLICY_HASH_STR_SIZE])
{
    struct clst_policy *p = pt_parse(kind, text);
    assert_int_equal(clst_policy_hash_b64url(p, out), CLST_OK);
    clst_policy_free(p);
}

static void
test_known_answer(void **state)
{
    (void)state;
    struct clst_policy *p = pt_parse(REL, kat_policy);
    uint8_t h[CLST_POLICY_HASH_SIZE], want[CLST_SHA256_SIZE];
    char b64[CLST_POLICY_HASH_STR_SIZE];

    assert_int_equal(clst_policy_hash(p, h), CLST_OK);
    size_t n = 0;
    unsigned char *kat = tu_hex(KAT_HEX, &n);
    assert_non_null(kat);
    assert_int_equal(n, CLST_POLICY_HASH_SIZE);
    assert_memory_equal(h, kat, n);
    free(kat);
    /* And it is exactly SHA-256 of the canonical text. */
    assert_int_equal(clst_sha256(KAT_CANONICAL, strlen(KAT_CANONICAL), want), CLST_OK);
    assert_memory_equal(h, want, sizeof(want));
    assert_int_equal(clst_policy_hash_b64url(p, b64), CLST_OK);
    assert_string_equal(b64, KAT_B64);
    assert_int_equal(strlen(b64), CLST_POLICY_HASH_STR_SIZE - 1);
    /* The result of an evaluation names the same hash. */
    json_t *c = pt_json("{}");
    struct clst_policy_result *r = NULL;
    struct clst_err err = {0};
    CHECK_RC(clst_policy_evaluate(p, c, NULL, &r, &err), CLST_E_DENIED);
    assert_string_equal(clst_policy_result_policy_hash(r), KAT_B64);
    clst_policy_result_free(r);
    json_decref(c);
    clst_policy_free(p);

    assert_int_equal(clst_policy_hash(NULL, h), CLST_E_INVAL);
    assert_int_equal(clst_policy_hash_b64url(NULL, b64), CLST_E_INVAL);
}

static void
test_stable(void **state)
{
    (void)state;
    char a[CLST_POLICY_HASH_STR_SIZE], b[CLST_POLICY_HASH_STR_SIZE];
    /* Member order, whitespace and escapes of the same characters do not matter. */
    const char *same[] = {
        KAT_CANONICAL,
        "{\"version\":\"1.0.0\",\"anyOf\":[{\"authority\":\"https://attest.example\",\"allOf\":["
        "{\"equals\":\"sevsnpvm\",\"claim\":\"x-ms-attestation-type\"},"
        "{\"claim\":\"x-ms-sevsnpvm-is-debuggable\",\"equals\":false}]}]}",
        " \t\r\n" KAT_CANONICAL "\n\n",
        "{\"anyOf\":[{\"allOf\":[{\"claim\":\"x-ms-attestation-type\",\"equals\":"
        "\"\\u0073evsnpvm\"},"
        "{\"claim\":\"x-ms-sevsnpvm-is-debuggable\",\"equals\":false}],"
        "\"authority\":\"https:\\/\\/attest.example\"}],\"version\":\"1.0.0\"}",
    };
    for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
        b64_of(REL, same[i], a);
        if (strcmp(a, KAT_B64) != 0) {
            fail_msg("variant %zu hashes to %s", i, a);
        }
    }
    /* Reals with the same value are the same real; UTF-8 and its \u escape are the same. */
    b64_of(REL, "{\"anyOf\":[{\"authority\":\"a\",\"allOf\":[{\"claim\":\"c\",\"less\":1.0}]}]}",
           a);
    b64_of(REL, "{\"anyOf\":[{\"authority\":\"a\",\"allOf\":[{\"claim\":\"c\",\"less\":1e0}]}]}",
           b);
    assert_string_equal(a, b);
    b64_of(REL, "{\"anyOf\":[{\"authority\":\"a\",\"allOf\":[{\"claim\":\"c\",\"less\":10.00}]}]}",
           a);
    b64_of(REL, "{\"anyOf\":[{\"authority\":\"a\",\"allOf\":[{\"claim\":\"c\",\"less\":1E1}]}]}",
           b);
    assert_string_equal(a, b);
    b64_of(
        REL,
        "{\"anyOf\":[{\"authority\":\"a\",\"allOf\":[{\"claim\":\"c\",\"equals\":\"\xc3\xa9\"}]}]}",
        a);
    b64_of(
        REL,
        "{\"anyOf\":[{\"authority\":\"a\",\"allOf\":[{\"claim\":\"c\",\"equals\":\"\\u00e9\"}]}]}",
        b);
    assert_string_equal(a, b);
    /* from_json and parse agree; parsing twice agrees. */
    json_t *doc = pt_json(kat_policy);
    struct clst_policy *p = NULL;
    struct clst_err err = {0};
    CHECK_RC(clst_policy_from_json(doc, REL, &p, &err), CLST_OK);
    CHECK_RC(clst_policy_hash_b64url(p, a), CLST_OK);
    assert_string_equal(a, KAT_B64);
    clst_policy_free(p);
    json_decref(doc);
}

static void
test_changes(void **state)
{
    (void)state;
    /* Each differs from KAT_CANONICAL in one thing, so each must hash differently from it and
     * from every other. */
    const char *changed[] = {
        /* value */
        "{\"anyOf\":[{\"allOf\":[{\"claim\":\"x-ms-attestation-type\",\"equals\":\"sevsnpvM\"},"
        "{\"claim\":\"x-ms-sevsnpvm-is-debuggable\",\"equals\":false}],"
        "\"authority\":\"https://attest.example\"}],\"version\":\"1.0.0\"}",
        /* boolean */
        "{\"anyOf\":[{\"allOf\":[{\"claim\":\"x-ms-attestation-type\",\"equals\":\"sevsnpvm\"},"
        "{\"claim\":\"x-ms-sevsnpvm-is-debuggable\",\"equals\":true}],"
        "\"authority\":\"https://attest.example\"}],\"version\":\"1.0.0\"}",
        /* claim name */
        "{\"anyOf\":[{\"allOf\":[{\"claim\":\"x-ms-attestation-typ\",\"equals\":\"sevsnpvm\"},"
        "{\"claim\":\"x-ms-sevsnpvm-is-debuggable\",\"equals\":false}],"
        "\"authority\":\"https://attest.example\"}],\"version\":\"1.0.0\"}",
        /* operator */
        "{\"anyOf\":[{\"allOf\":[{\"claim\":\"x-ms-attestation-type\",\"notEquals\":\"sevsnpvm\"},"
        "{\"claim\":\"x-ms-sevsnpvm-is-debuggable\",\"equals\":false}],"
        "\"authority\":\"https://attest.example\"}],\"version\":\"1.0.0\"}",
        /* authority (a trailing slash matches the same issuers, but is another document) */
        "{\"anyOf\":[{\"allOf\":[{\"claim\":\"x-ms-attestation-type\",\"equals\":\"sevsnpvm\"},"
        "{\"claim\":\"x-ms-sevsnpvm-is-debuggable\",\"equals\":false}],"
        "\"authority\":\"https://attest.example/\"}],\"version\":\"1.0.0\"}",
        /* group */
        "{\"anyOf\":[{\"anyOf\":[{\"claim\":\"x-ms-attestation-type\",\"equals\":\"sevsnpvm\"},"
        "{\"claim\":\"x-ms-sevsnpvm-is-debuggable\",\"equals\":false}],"
        "\"authority\":\"https://attest.example\"}],\"version\":\"1.0.0\"}",
        /* order of conditions (the order of a JSON array is part of the document) */
        "{\"anyOf\":[{\"allOf\":[{\"claim\":\"x-ms-sevsnpvm-is-debuggable\",\"equals\":false},"
        "{\"claim\":\"x-ms-attestation-type\",\"equals\":\"sevsnpvm\"}],"
        "\"authority\":\"https://attest.example\"}],\"version\":\"1.0.0\"}",
        /* no version member (read as 1.0.0, but another document) */
        "{\"anyOf\":[{\"allOf\":[{\"claim\":\"x-ms-attestation-type\",\"equals\":\"sevsnpvm\"},"
        "{\"claim\":\"x-ms-sevsnpvm-is-debuggable\",\"equals\":false}],"
        "\"authority\":\"https://attest.example\"}]}",
        /* a third condition */
        "{\"anyOf\":[{\"allOf\":[{\"claim\":\"x-ms-attestation-type\",\"equals\":\"sevsnpvm\"},"
        "{\"claim\":\"x-ms-sevsnpvm-is-debuggable\",\"equals\":false},"
        "{\"claim\":\"x-ms-sevsnpvm-vmpl\",\"equals\":0}],"
        "\"authority\":\"https://attest.example\"}],\"version\":\"1.0.0\"}",
    };
    size_t count = sizeof(changed) / sizeof(changed[0]);
    char hashes[16][CLST_POLICY_HASH_STR_SIZE];
    for (size_t i = 0; i < count; i++) {
        b64_of(REL, changed[i], hashes[i]);
        if (strcmp(hashes[i], KAT_B64) == 0) {
            fail_msg("change %zu does not change the hash", i);
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(hashes[i], hashes[j]) == 0) {
                fail_msg("changes %zu and %zu hash alike", j, i);
            }
        }
    }
    /* An integer and a real of the same value are different documents. */
    char a[CLST_POLICY_HASH_STR_SIZE], b[CLST_POLICY_HASH_STR_SIZE];
    b64_of(REL, "{\"anyOf\":[{\"authority\":\"a\",\"allOf\":[{\"claim\":\"c\",\"equals\":1}]}]}",
           a);
    b64_of(REL, "{\"anyOf\":[{\"authority\":\"a\",\"allOf\":[{\"claim\":\"c\",\"equals\":1.0}]}]}",
           b);
    assert_string_not_equal(a, b);
    /* Appraisal: adding an allowed measurement changes the hash. */
    b64_of(APP,
           "{\"authorizationRules\":{\"allOf\":[{\"claim\":\"c\",\"exists\":true}]},"
           "\"referenceValues\":{\"sim\":{\"m\":[\"aa\"]}}}",
           a);
    b64_of(APP,
           "{\"authorizationRules\":{\"allOf\":[{\"claim\":\"c\",\"exists\":true}]},"
           "\"referenceValues\":{\"sim\":{\"m\":[\"aa\",\"bb\"]}}}",
           b);
    assert_string_not_equal(a, b);
    for (const char *s = a; *s != '\0'; s++) {
        assert_true((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
                    (*s >= '0' && *s <= '9') || *s == '-' || *s == '_');
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_answer),
        cmocka_unit_test(test_stable),
        cmocka_unit_test(test_changes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
