/*
 * Fuzz harness for the policy parser and evaluator (src/policy): the input is handed to
 * clst_policy_parse as a release and as an appraisal policy; whatever parses is evaluated against
 * a fixed claim set (with and without an issuer), rendered in every form, hashed, and rebuilt
 * from its own document, which must give the same hash. The input is also used as a claim set
 * against fixed policies. Invariants that would mean a bug abort: a status that disagrees with
 * the decision, a denial without an explaining node, a rendering that fails.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cloister/policy.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char fixed_claims[] =
    "{\"iss\":\"https://attest.example\",\"x-ms-attestation-type\":\"sevsnpvm\","
    "\"x-ms-compliance-status\":\"azure-compliant-cvm\",\"x-ms-sevsnpvm-is-debuggable\":false,"
    "\"x-ms-sevsnpvm-launchmeasurement\":\"aa11\",\"x-ms-sevsnpvm-guestsvn\":3,"
    "\"x-ms-sevsnpvm-vmpl\":0,\"big\":9223372036854775807,\"small\":-9223372036854775808,"
    "\"real\":2.5,\"null\":null,\"s\":\"true\",\"t\":true,"
    "\"x-ms-isolation-tee\":{\"x-ms-attestation-type\":\"sevsnpvm\",\"x-ms-sevsnpvm-vmpl\":0},"
    "\"x-ms-runtime\":{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"k\"}],\"client-payload\":{\"a\":\"b\"}}"
    ","
    "\"x-cloister-sim-mrenclave\":\"a1\",\"x-cloister-sim-svn\":2}";

static const char fixed_release[] =
    "{\"version\":\"1.0.0\",\"anyOf\":[{\"authority\":\"https://attest.example/\",\"allOf\":["
    "{\"claim\":\"x-ms-attestation-type\",\"equals\":\"sevsnpvm\"},"
    "{\"anyOf\":[{\"claim\":\"x-ms-sevsnpvm-guestsvn\",\"greaterOrEquals\":2},"
    "{\"claim\":\"x-ms-isolation-tee.x-ms-sevsnpvm-vmpl\",\"less\":1}]},"
    "{\"claim\":\"x-ms-sevsnpvm-is-debuggable\",\"notEquals\":true},"
    "{\"claim\":\"x-ms-runtime.keys\",\"exists\":true}]},"
    "{\"authority\":\"other\",\"anyOf\":[{\"claim\":\"a.b.c\",\"exists\":false}]}]}";

static const char fixed_appraisal[] =
    "{\"authorizationRules\":{\"allOf\":[{\"claim\":\"x-cloister-sim-svn\",\"greater\":1}]},"
    "\"referenceValues\":{\"sim\":{\"x-cloister-sim-mrenclave\":[\"a1\",7,true]},"
    "\"sevsnpvm\":{\"x-ms-sevsnpvm-launchmeasurement\":[\"aa11\"]}}}";

static void
render(const struct clst_policy_result *r)
{
    for (unsigned flags = 0; flags < 4; flags++) {
        struct clst_buf b;
        clst_buf_init(&b, 4u * 1024 * 1024);
        if (clst_policy_result_to_text(r, flags, &b) != CLST_OK) {
            abort();
        }
        clst_buf_reset(&b);
        if (clst_policy_result_summary(r, flags, &b) != CLST_OK) {
            abort();
        }
        clst_buf_cleanup(&b);
        json_t *j = NULL;
        if (clst_policy_result_to_json(r, flags, &j) != CLST_OK) {
            abort();
        }
        json_decref(j);
    }
}

static void
evaluate(const struct clst_policy *p, const json_t *claims, const char *issuer)
{
    struct clst_policy_result *r = NULL;
    struct clst_err err;
    enum clst_status rc = clst_policy_evaluate(p, claims, issuer, &r, &err);
    if (rc == CLST_E_NOMEM) {
        return;
    }
    if (rc != CLST_OK && rc != CLST_E_DENIED) {
        abort();
    }
    enum clst_policy_decision d = clst_policy_result_decision(r);
    if ((rc == CLST_OK) != (d == CLST_POLICY_ALLOW)) {
        abort();
    }
    if ((d == CLST_POLICY_DENY) != (clst_policy_result_denial(r) != NULL)) {
        abort();
    }
    size_t n = clst_policy_result_trace_count(r);
    if (n == 0 || clst_policy_result_trace(r, 0)->node != CLST_POLICY_NODE_ROOT ||
        clst_policy_result_trace(r, 0)->verdict != (d == CLST_POLICY_ALLOW)) {
        abort();
    }
    for (size_t i = 0; i < n; i++) {
        const struct clst_policy_trace *t = clst_policy_result_trace(r, i);
        if (t->path == NULL || (t->verdict && t->outcome != CLST_POLICY_HOLDS) ||
            (!t->verdict && t->outcome == CLST_POLICY_HOLDS)) {
            abort();
        }
    }
    render(r);
    clst_policy_result_free(r);
}

static void
exercise(const struct clst_policy *p, const json_t *claims)
{
    evaluate(p, claims, NULL);
    evaluate(p, claims, "https://attest.example");
    /* Rebuilt from its own document, the policy is the same policy. */
    struct clst_policy *q = NULL;
    uint8_t h1[CLST_POLICY_HASH_SIZE], h2[CLST_POLICY_HASH_SIZE];
    if (clst_policy_from_json(clst_policy_json(p), clst_policy_get_kind(p), &q, NULL) != CLST_OK ||
        clst_policy_hash(p, h1) != CLST_OK || clst_policy_hash(q, h2) != CLST_OK ||
        memcmp(h1, h2, sizeof(h1)) != 0 ||
        clst_policy_condition_count(p) != clst_policy_condition_count(q)) {
        abort();
    }
    clst_policy_free(q);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *claims = json_loads(fixed_claims, 0, NULL);
    if (claims == NULL) {
        abort();
    }
    const enum clst_policy_kind kinds[] = {CLST_POLICY_RELEASE, CLST_POLICY_APPRAISAL};
    for (size_t k = 0; k < 2; k++) {
        struct clst_policy *p = NULL;
        struct clst_err err;
        if (clst_policy_parse((const char *)data, size, kinds[k], &p, &err) == CLST_OK) {
            exercise(p, claims);
            clst_policy_free(p);
        } else if (err.msg[0] == '\0') {
            abort(); /* every refusal says why */
        }
    }
    json_decref(claims);

    /* The input as claims. */
    json_t *in = json_loadb((const char *)data, size, JSON_ALLOW_NUL, NULL);
    if (json_is_object(in)) {
        struct clst_policy *rel = NULL, *app = NULL;
        if (clst_policy_parse(fixed_release, strlen(fixed_release), CLST_POLICY_RELEASE, &rel,
                              NULL) != CLST_OK ||
            clst_policy_parse(fixed_appraisal, strlen(fixed_appraisal), CLST_POLICY_APPRAISAL, &app,
                              NULL) != CLST_OK) {
            abort();
        }
        evaluate(rel, in, NULL);
        evaluate(rel, in, "https://attest.example");
        evaluate(app, in, NULL);
        clst_policy_free(rel);
        clst_policy_free(app);
    }
    json_decref(in);
    return 0;
}
