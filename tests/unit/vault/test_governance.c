/* Unit tests for src/vault/governance.c: the rules file, the release-policy analysis, the checks
 * of one object version, and the check of a whole store. (The REST enforcement runs against a
 * real server in tests/integration/vault_governance.sh.) */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <cloister/client.h>
#include <cloister/server.h>
#include <cloister/vault.h>
#include <cloister/vault_governance.h>

#include "test_util.h"
#include "unit/vault/vault_test_util.h"
#include "vault/governance.h"

#define DAY 86400

static const char FULL_RULES[] =
    "{\"version\": 1, \"description\": \"production\",\n"
    " \"key-types\": {\"RSA\": [3072, 4096], \"EC\": [\"P-256\", \"P-384\"], \"oct\": [256]},\n"
    " \"max-validity-days\": 365, \"require-expiry\": true,\n"
    " \"exportable-needs-immutable-policy\": true, \"release-policy-non-debug\": true,\n"
    " \"required-tags\": [\"owner\", \"cost-center\"]}";

static struct clst_vault_governance *
rules(const char *text)
{
    struct clst_vault_governance *g = NULL;
    struct clst_err err = {0};
    enum clst_status st = clst_vault_governance_parse(text, strlen(text), "rules.json", &g, &err);
    if (st != CLST_OK) {
        fail_msg("rules did not parse: %s", err.msg);
    }
    return g;
}

/* ---- the rules file ------------------------------------------------------------------------- */

static void
test_parse_full(void **state)
{
    (void)state;
    struct clst_vault_governance *g = rules(FULL_RULES);
    assert_int_equal(clst_vault_governance_rule_count(g), 6);
    clst_vault_governance_free(g);

    g = rules("{}");
    assert_int_equal(clst_vault_governance_rule_count(g), 0);
    clst_vault_governance_free(g);

    /* false turns a rule off */
    g = rules("{\"require-expiry\": false, \"release-policy-non-debug\": true}");
    assert_int_equal(clst_vault_governance_rule_count(g), 1);
    clst_vault_governance_free(g);
    clst_vault_governance_free(NULL);
}

struct bad_case {
    const char *text;
    const char *field; /* must appear in the message ("" = only the source) */
    enum clst_status status;
};

static void
test_parse_bad(void **state)
{
    (void)state;
    static const struct bad_case cases[] = {
        {"", "", CLST_E_MALFORMED},
        {"[1]", "", CLST_E_MALFORMED},
        {"{\"require-expiry\": true", "", CLST_E_MALFORMED},
        {"{\"require-expiry\": true, \"require-expiry\": false}", "", CLST_E_MALFORMED},
        {"{\"require-expiry\": 1}", "field 'require-expiry'", CLST_E_MALFORMED},
        {"{\"require-expiry\": \"yes\"}", "field 'require-expiry'", CLST_E_MALFORMED},
        {"{\"requireExpiry\": true}", "field 'requireExpiry': unknown field", CLST_E_MALFORMED},
        {"{\"version\": 2}", "field 'version'", CLST_E_MALFORMED},
        {"{\"version\": \"1\"}", "field 'version'", CLST_E_MALFORMED},
        {"{\"description\": 5}", "field 'description'", CLST_E_MALFORMED},
        {"{\"max-validity-days\": 0}", "field 'max-validity-days': must be an integer 1..36500 (got 0)",
         CLST_E_MALFORMED},
        {"{\"max-validity-days\": -3}", "(got -3)", CLST_E_MALFORMED},
        {"{\"max-validity-days\": 36501}", "field 'max-validity-days'", CLST_E_MALFORMED},
        {"{\"max-validity-days\": 30.5}", "not an integer", CLST_E_MALFORMED},
        {"{\"key-types\": []}", "field 'key-types'", CLST_E_MALFORMED},
        {"{\"key-types\": {}}", "field 'key-types'", CLST_E_MALFORMED},
        {"{\"key-types\": {\"RSA-HSM\": [3072]}}", "-HSM", CLST_E_MALFORMED},
        {"{\"key-types\": {\"rsa\": [3072]}}", "unknown key type 'rsa'", CLST_E_MALFORMED},
        {"{\"key-types\": {\"RSA\": []}}", "field 'key-types.RSA'", CLST_E_MALFORMED},
        {"{\"key-types\": {\"RSA\": [1024]}}", "field 'key-types.RSA'", CLST_E_MALFORMED},
        {"{\"key-types\": {\"RSA\": [\"3072\"]}}", "field 'key-types.RSA'", CLST_E_MALFORMED},
        {"{\"key-types\": {\"RSA\": 3072}}", "field 'key-types.RSA'", CLST_E_MALFORMED},
        {"{\"key-types\": {\"EC\": [\"P-192\"]}}", "field 'key-types.EC'", CLST_E_MALFORMED},
        {"{\"key-types\": {\"EC\": [256]}}", "field 'key-types.EC'", CLST_E_MALFORMED},
        {"{\"key-types\": {\"oct\": [200]}}", "field 'key-types.oct'", CLST_E_MALFORMED},
        {"{\"key-types\": {\"oct\": [512]}}", "field 'key-types.oct'", CLST_E_MALFORMED},
        {"{\"required-tags\": []}", "field 'required-tags'", CLST_E_MALFORMED},
        {"{\"required-tags\": \"owner\"}", "field 'required-tags'", CLST_E_MALFORMED},
        {"{\"required-tags\": [\"\"]}", "field 'required-tags'", CLST_E_MALFORMED},
        {"{\"required-tags\": [\"a\", \"a\"]}", "listed twice", CLST_E_MALFORMED},
        {"{\"required-tags\": [\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"i\",\"j\",\"k\","
         "\"l\",\"m\",\"n\",\"o\",\"p\"]}",
         "more than 15", CLST_E_MALFORMED},
        {"{\"exportable-needs-immutable-policy\": null}", "field 'exportable-needs-immutable-policy'",
         CLST_E_MALFORMED},
        {"{\"release-policy-non-debug\": []}", "field 'release-policy-non-debug'", CLST_E_MALFORMED},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct clst_vault_governance *g = NULL;
        struct clst_err err = {0};
        enum clst_status st = clst_vault_governance_parse(cases[i].text, strlen(cases[i].text),
                                                          "rules.json", &g, &err);
        if (st != cases[i].status || g != NULL || strstr(err.msg, "rules.json") == NULL ||
            strstr(err.msg, cases[i].field) == NULL) {
            fail_msg("case %zu (%s): status %d, message '%s'", i, cases[i].text, (int)st, err.msg);
        }
    }
}

static void
test_load_file(void **state)
{
    (void)state;
    char dir[] = "/tmp/clst-gov-test-XXXXXX";
    char path[128];
    struct clst_vault_governance *g = NULL;
    struct clst_err err = {0};
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/rules.json", dir);

    /* missing file: CLST_E_IO naming it */
    assert_int_equal(clst_vault_governance_load(path, &g, &err), CLST_E_IO);
    assert_non_null(strstr(err.msg, path));
    assert_null(g);

    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(FULL_RULES, f);
    fclose(f);
    assert_int_equal(clst_vault_governance_load(path, &g, &err), CLST_OK);
    assert_int_equal(clst_vault_governance_rule_count(g), 6);
    clst_vault_governance_free(g);
    g = NULL;

    /* a bad field names the file and the field */
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("{\"max-validity-days\": \"a year\"}", f);
    fclose(f);
    assert_int_equal(clst_vault_governance_load(path, &g, &err), CLST_E_MALFORMED);
    assert_non_null(strstr(err.msg, path));
    assert_non_null(strstr(err.msg, "max-validity-days"));

    /* too large */
    f = fopen(path, "w");
    assert_non_null(f);
    fputc('{', f);
    for (int i = 0; i < CLST_GOV_FILE_MAX; i++) {
        fputc(' ', f);
    }
    fputc('}', f);
    fclose(f);
    assert_int_equal(clst_vault_governance_load(path, &g, &err), CLST_E_LIMIT);
    assert_null(g);
    unlink(path);
    rmdir(dir);
}

/* ---- the release-policy analysis ------------------------------------------------------------ */

#define AUTH "\"authority\": \"https://127.0.0.1:8443\""
#define POLICY(conds) "{\"version\": \"1.0.0\", \"anyOf\": [{" AUTH ", \"allOf\": [" conds "]}]}"

struct policy_case {
    const char *policy;
    bool ok;
    const char *why; /* a part of the reason when refused */
};

static void
test_policy_non_debug(void **state)
{
    (void)state;
    static const struct policy_case cases[] = {
        /* the documented policies for each TEE pass */
        {POLICY("{\"claim\": \"x-ms-attestation-type\", \"equals\": \"sim\"},"
                "{\"claim\": \"x-cloister-sim-is-debuggable\", \"equals\": false},"
                "{\"claim\": \"x-cloister-sim-svn\", \"greaterOrEquals\": 2}"),
         true, NULL},
        {POLICY("{\"claim\": \"x-ms-attestation-type\", \"equals\": \"sevsnpvm\"},"
                "{\"claim\": \"x-ms-sevsnpvm-is-debuggable\", \"equals\": false}"),
         true, NULL},
        {POLICY("{\"claim\": \"x-ms-attestation-type\", \"equals\": \"tdxvm\"},"
                "{\"claim\": \"tdx_td_attributes_debug\", \"equals\": false},"
                "{\"anyOf\": [{\"claim\": \"tdx_mrtd\", \"equals\": \"aa\"},"
                "{\"claim\": \"tdx_mrtd\", \"equals\": \"bb\"}]}"),
         true, NULL},
        {POLICY("{\"claim\": \"x-ms-attestation-type\", \"equals\": \"sgx\"},"
                "{\"claim\": \"x-ms-sgx-is-debuggable\", \"equals\": false}"),
         true, NULL},
        {POLICY("{\"claim\": \"x-ms-attestation-type\", \"equals\": \"nitro\"},"
                "{\"claim\": \"aws-nitro-is-debuggable\", \"equals\": false}"),
         true, NULL},
        /* notEquals true on the boolean claim also excludes debug */
        {POLICY("{\"claim\": \"x-ms-attestation-type\", \"equals\": \"sgx\"},"
                "{\"claim\": \"x-ms-sgx-is-debuggable\", \"notEquals\": true}"),
         true, NULL},
        /* a confidential VM's token: the TEE claims inside x-ms-isolation-tee */
        {POLICY("{\"claim\": \"x-ms-attestation-type\", \"equals\": \"azurevm\"},"
                "{\"claim\": \"x-ms-isolation-tee.x-ms-attestation-type\", \"equals\": "
                "\"sevsnpvm\"},"
                "{\"claim\": \"x-ms-isolation-tee.x-ms-sevsnpvm-is-debuggable\", \"equals\": "
                "false}"),
         true, NULL},
        /* an Azure TDX CVM: the TDX debug bit under either of its names */
        {POLICY("{\"claim\": \"x-ms-attestation-type\", \"equals\": \"azurevm\"},"
                "{\"claim\": \"x-ms-isolation-tee.x-ms-attestation-type\", \"equals\": "
                "\"tdxvm\"},"
                "{\"claim\": \"x-ms-isolation-tee.tdx_is_debuggable\", \"equals\": false}"),
         true, NULL},
        {POLICY("{\"claim\": \"x-ms-attestation-type\", \"equals\": \"tdxvm\"},"
                "{\"claim\": \"tdx_is_debuggable\", \"equals\": false}"),
         true, NULL},
        /* the TDX bit does not stand for SEV-SNP's */
        {POLICY("{\"claim\": \"x-ms-attestation-type\", \"equals\": \"azurevm\"},"
                "{\"claim\": \"x-ms-isolation-tee.x-ms-attestation-type\", \"equals\": "
                "\"sevsnpvm\"},"
                "{\"claim\": \"x-ms-isolation-tee.tdx_is_debuggable\", \"equals\": false}"),
         false, "x-ms-isolation-tee.x-ms-sevsnpvm-is-debuggable"},
        /* two TEEs, each pinned in its own branch */
        {POLICY("{\"anyOf\": ["
                "{\"allOf\": [{\"claim\": \"x-ms-attestation-type\", \"equals\": \"sevsnpvm\"},"
                "{\"claim\": \"x-ms-sevsnpvm-is-debuggable\", \"equals\": false}]},"
                "{\"allOf\": [{\"claim\": \"x-ms-attestation-type\", \"equals\": \"tdxvm\"},"
                "{\"claim\": \"tdx_td_attributes_debug\", \"equals\": false}]}]}"),
         true, NULL},

        /* the debug claim not pinned */
        {POLICY("{\"claim\": \"x-ms-attestation-type\", \"equals\": \"sevsnpvm\"},"
                "{\"claim\": \"x-ms-sevsnpvm-launchmeasurement\", \"equals\": \"aa\"}"),
         false, "'sevsnpvm' tokens with 'x-ms-sevsnpvm-is-debuggable' true"},
        /* pinned to true, or "false" as a string (a type mismatch never holds, but true does) */
        {POLICY("{\"claim\": \"x-ms-attestation-type\", \"equals\": \"sim\"},"
                "{\"claim\": \"x-cloister-sim-is-debuggable\", \"equals\": true}"),
         false, "'sim' tokens"},
        /* the wrong TEE's debug claim */
        {POLICY("{\"claim\": \"x-ms-attestation-type\", \"equals\": \"sevsnpvm\"},"
                "{\"claim\": \"x-ms-sgx-is-debuggable\", \"equals\": false}"),
         false, "x-ms-sevsnpvm-is-debuggable"},
        /* pinned in one anyOf branch only */
        {POLICY("{\"claim\": \"x-ms-attestation-type\", \"equals\": \"sevsnpvm\"},"
                "{\"anyOf\": [{\"claim\": \"x-ms-sevsnpvm-is-debuggable\", \"equals\": false},"
                "{\"claim\": \"x-ms-sevsnpvm-guestsvn\", \"greaterOrEquals\": 1}]}"),
         false, "'sevsnpvm' tokens"},
        /* no type pinned: every type is admitted */
        {POLICY("{\"claim\": \"x-ms-sevsnpvm-is-debuggable\", \"equals\": false}"),
         false, "any attestation type"},
        /* a type excluded instead of chosen */
        {POLICY("{\"claim\": \"x-ms-attestation-type\", \"notEquals\": \"sim\"},"
                "{\"claim\": \"x-cloister-sim-is-debuggable\", \"equals\": false}"),
         false, "'sevsnpvm' tokens"},
        /* a TEE without a debug claim, and an unknown type */
        {POLICY("{\"claim\": \"x-ms-attestation-type\", \"equals\": \"tpm\"}"), false,
         "'tpm' tokens, which carry no debug claim"},
        {POLICY("{\"claim\": \"x-ms-attestation-type\", \"equals\": \"mytee\"},"
                "{\"claim\": \"mytee-debug\", \"equals\": false}"),
         false, "'mytee' tokens"},
        /* a CVM policy that forgets the isolation TEE's debug claim */
        {POLICY("{\"claim\": \"x-ms-attestation-type\", \"equals\": \"azurevm\"},"
                "{\"claim\": \"x-ms-isolation-tee.x-ms-attestation-type\", \"equals\": "
                "\"sevsnpvm\"}"),
         false, "x-ms-isolation-tee.x-ms-sevsnpvm-is-debuggable"},
        /* two authorities: the second has no debug pin */
        {"{\"version\": \"1.0.0\", \"anyOf\": ["
         "{" AUTH ", \"allOf\": [{\"claim\": \"x-ms-attestation-type\", \"equals\": \"sgx\"},"
         "{\"claim\": \"x-ms-sgx-is-debuggable\", \"equals\": false}]},"
         "{\"authority\": \"https://other.example\", \"allOf\": [{\"claim\": "
         "\"x-ms-attestation-type\", \"equals\": \"sgx\"}]}]}",
         false, "'sgx' tokens"},
        /* not a policy at all */
        {"{\"anyOf\": 1}", false, "does not parse"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char why[CLST_GOV_DETAIL_MAX];
        bool ok = clst_gov_policy_non_debug(cases[i].policy, why, sizeof why);
        if (ok != cases[i].ok) {
            fail_msg("case %zu: expected %s, got %s (%s)", i, cases[i].ok ? "ok" : "refused",
                     ok ? "ok" : "refused", why);
        }
        if (!ok && strstr(why, cases[i].why) == NULL) {
            fail_msg("case %zu: reason '%s' lacks '%s'", i, why, cases[i].why);
        }
        if (ok) {
            assert_string_equal(why, "");
        }
    }
    assert_true(clst_gov_policy_non_debug(NULL, NULL, 0));
}

/* ---- checks of one object version ----------------------------------------------------------- */

static const char GOOD_POLICY[] =
    POLICY("{\"claim\": \"x-ms-attestation-type\", \"equals\": \"sim\"},"
           "{\"claim\": \"x-cloister-sim-is-debuggable\", \"equals\": false}");
static const char DEBUG_POLICY[] = POLICY("{\"claim\": \"x-ms-attestation-type\", \"equals\": \"sim\"}");

/* A key that passes FULL_RULES at time T0. */
static struct clst_vault_object
good_key(void)
{
    struct clst_vault_object o = tv_key("k1");
    o.attrs.exp = TV_T0 + 30 * DAY;
    o.tags = (char *)"{\"cost-center\":\"42\",\"owner\":\"ops\"}";
    o.release_policy = (char *)GOOD_POLICY;
    o.policy_immutable = true;
    return o;
}

static const char *
has_rule(const struct clst_gov_violation *v, size_t n, const char *rule)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(v[i].rule, rule) == 0) {
            return v[i].detail;
        }
    }
    return NULL;
}

static void
test_check_key(void **state)
{
    (void)state;
    struct clst_vault_governance *g = rules(FULL_RULES);
    struct clst_gov_violation v[CLST_GOV_RULE_COUNT];
    struct clst_vault_keymat_spec rsa3072 = {CLST_KEYMAT_RSA, 3072, 0};
    struct clst_vault_keymat_spec rsa2048 = {CLST_KEYMAT_RSA, 2048, 0};
    struct clst_vault_keymat_spec p256 = {CLST_KEYMAT_EC, 0, CLST_CURVE_P256};
    struct clst_vault_keymat_spec p521 = {CLST_KEYMAT_EC, 0, CLST_CURVE_P521};
    struct clst_vault_keymat_spec oct256 = {CLST_KEYMAT_OCT, 256, 0};
    struct clst_vault_keymat_spec oct128 = {CLST_KEYMAT_OCT, 128, 0};
    struct clst_vault_object o = good_key();
    size_t n;

    assert_int_equal(clst_gov_check(g, &o, &rsa3072, TV_T0, CLST_GOV_R_ALL, v), 0);
    assert_int_equal(clst_gov_check(g, &o, &p256, TV_T0, CLST_GOV_R_ALL, v), 0);
    assert_int_equal(clst_gov_check(g, &o, &oct256, TV_T0, CLST_GOV_R_ALL, v), 0);
    assert_int_equal(clst_gov_check(NULL, &o, &rsa2048, TV_T0, CLST_GOV_R_ALL, v), 0);

    /* key-types */
    n = clst_gov_check(g, &o, &rsa2048, TV_T0, CLST_GOV_R_ALL, v);
    assert_int_equal(n, 1);
    assert_string_equal(v[0].rule, "key-types");
    assert_non_null(strstr(v[0].detail, "RSA 2048-bit keys are not allowed"));
    assert_non_null(strstr(v[0].detail, "RSA 3072, 4096; EC P-256, P-384; oct 256"));
    n = clst_gov_check(g, &o, &p521, TV_T0, CLST_GOV_R_ALL, v);
    assert_int_equal(n, 1);
    assert_non_null(strstr(v[0].detail, "EC keys on P-521"));
    n = clst_gov_check(g, &o, &oct128, TV_T0, CLST_GOV_R_ALL, v);
    assert_int_equal(n, 1);
    assert_non_null(strstr(v[0].detail, "oct (AES) 128-bit"));
    /* not checked when not asked */
    assert_int_equal(clst_gov_check(g, &o, &rsa2048, TV_T0, CLST_GOV_R_ALL & ~CLST_GOV_R_KEY_TYPES,
                                    v),
                     0);

    /* require-expiry */
    o.attrs.exp = 0;
    n = clst_gov_check(g, &o, &rsa3072, TV_T0, CLST_GOV_R_ALL, v);
    assert_int_equal(n, 1);
    assert_string_equal(v[0].rule, "require-expiry");
    assert_non_null(strstr(v[0].detail, "set attributes.exp"));

    /* max-validity-days: from created (start) without nbf, from nbf with it */
    o.attrs.exp = TV_T0 + 365 * DAY;
    assert_int_equal(clst_gov_check(g, &o, &rsa3072, TV_T0, CLST_GOV_R_ALL, v), 0);
    o.attrs.exp = TV_T0 + 365 * DAY + 1;
    n = clst_gov_check(g, &o, &rsa3072, TV_T0, CLST_GOV_R_ALL, v);
    assert_int_equal(n, 1);
    assert_string_equal(v[0].rule, "max-validity-days");
    assert_non_null(strstr(v[0].detail, "more than the 365 days allowed"));
    assert_non_null(strstr(v[0].detail, "set exp to at most 1731536000"));
    o.attrs.nbf = TV_T0 + 10 * DAY;
    assert_int_equal(clst_gov_check(g, &o, &rsa3072, TV_T0, CLST_GOV_R_ALL, v), 0);
    o.attrs.nbf = TV_T0 - 10 * DAY; /* nbf before creation counts from nbf */
    n = clst_gov_check(g, &o, &rsa3072, TV_T0, CLST_GOV_R_ALL, v);
    assert_int_equal(n, 1);
    assert_non_null(strstr(v[0].detail, "nbf"));
    o.attrs.nbf = 0;
    o.attrs.exp = TV_T0 + 30 * DAY;

    /* exportable-needs-immutable-policy */
    o.policy_immutable = false;
    n = clst_gov_check(g, &o, &rsa3072, TV_T0, CLST_GOV_R_ALL, v);
    assert_int_equal(n, 1);
    assert_string_equal(v[0].rule, "exportable-needs-immutable-policy");
    assert_non_null(strstr(v[0].detail, "mutable"));
    o.attrs.exportable = false; /* not exportable: no policy needed */
    o.release_policy = NULL;
    assert_int_equal(clst_gov_check(g, &o, &rsa3072, TV_T0, CLST_GOV_R_ALL, v), 0);
    o.attrs.exportable = true;
    n = clst_gov_check(g, &o, &rsa3072, TV_T0, CLST_GOV_R_ALL, v);
    assert_int_equal(n, 1);
    assert_non_null(strstr(v[0].detail, "missing"));
    o.release_policy = (char *)GOOD_POLICY;
    o.policy_immutable = true;

    /* release-policy-non-debug */
    o.release_policy = (char *)DEBUG_POLICY;
    n = clst_gov_check(g, &o, &rsa3072, TV_T0, CLST_GOV_R_ALL, v);
    assert_int_equal(n, 1);
    assert_string_equal(v[0].rule, "release-policy-non-debug");
    assert_non_null(strstr(v[0].detail, "x-cloister-sim-is-debuggable"));
    o.release_policy = (char *)GOOD_POLICY;

    /* required-tags */
    o.tags = (char *)"{\"owner\":\"ops\"}";
    n = clst_gov_check(g, &o, &rsa3072, TV_T0, CLST_GOV_R_ALL, v);
    assert_int_equal(n, 1);
    assert_string_equal(v[0].rule, "required-tags");
    assert_non_null(strstr(v[0].detail, "lacks the required tag 'cost-center'"));
    o.tags = NULL;
    n = clst_gov_check(g, &o, &rsa3072, TV_T0, CLST_GOV_R_ALL, v);
    assert_int_equal(n, 1);
    assert_non_null(strstr(v[0].detail, "tags 'owner', 'cost-center'"));
    o.tags = (char *)"{}";
    assert_int_equal(clst_gov_check(g, &o, &rsa3072, TV_T0, CLST_GOV_R_ALL, v), 1);

    /* everything wrong at once: one violation per rule */
    o = tv_key("bad");
    o.tags = (char *)"{\"team\":\"red\"}";
    o.release_policy = (char *)DEBUG_POLICY;
    o.attrs.exp = TV_T0 + 400 * DAY;
    n = clst_gov_check(g, &o, &rsa2048, TV_T0, CLST_GOV_R_ALL, v);
    assert_int_equal(n, 5); /* all but require-expiry (exp is set) */
    assert_non_null(has_rule(v, n, "key-types"));
    assert_non_null(has_rule(v, n, "max-validity-days"));
    assert_non_null(has_rule(v, n, "exportable-needs-immutable-policy"));
    assert_non_null(has_rule(v, n, "release-policy-non-debug"));
    assert_non_null(has_rule(v, n, "required-tags"));
    o.attrs.exp = 0;
    n = clst_gov_check(g, &o, &rsa2048, TV_T0, CLST_GOV_R_ALL, v);
    assert_int_equal(n, 5);
    assert_non_null(has_rule(v, n, "require-expiry"));
    assert_null(has_rule(v, n, "max-validity-days"));

    clst_vault_governance_free(g);
}

static void
test_check_stored_key_size(void **state)
{
    (void)state;
    struct clst_vault_governance *g = rules("{\"key-types\": {\"EC\": [\"P-384\"]}}");
    struct clst_vault_keymat_spec spec = {CLST_KEYMAT_EC, 0, CLST_CURVE_P256};
    struct clst_vault_keymat *km = NULL;
    struct clst_buf pub;
    struct clst_gov_violation v[CLST_GOV_RULE_COUNT];
    struct clst_err err = {0};

    clst_buf_init(&pub, CLST_VAULT_PUBLIC_MAX);
    assert_int_equal(clst_vault_keymat_generate(&spec, &km, &err), CLST_OK);
    assert_int_equal(clst_vault_keymat_public_text(km, &pub), CLST_OK);
    struct clst_vault_object o = tv_key("k");
    snprintf(o.kty, sizeof o.kty, "EC");
    o.public_data = pub.data;
    o.public_size = pub.size;
    /* spec NULL: read from the stored public key */
    size_t n = clst_gov_check(g, &o, NULL, TV_T0, CLST_GOV_R_ALL, v);
    assert_int_equal(n, 1);
    assert_non_null(strstr(v[0].detail, "EC keys on P-256 are not allowed; use one of: EC P-384"));
    /* a public part that does not parse fails closed */
    o.public_data = (uint8_t *)"{\"kty\":\"EC\"}";
    o.public_size = strlen((const char *)o.public_data);
    n = clst_gov_check(g, &o, NULL, TV_T0, CLST_GOV_R_ALL, v);
    assert_int_equal(n, 1);
    assert_non_null(strstr(v[0].detail, "cannot be read"));
    /* RSA and oct are not listed, so not allowed */
    struct clst_vault_keymat_spec oct = {CLST_KEYMAT_OCT, 256, 0};
    n = clst_gov_check(g, &o, &oct, TV_T0, CLST_GOV_R_ALL, v);
    assert_int_equal(n, 1);
    clst_buf_cleanup(&pub);
    clst_vault_keymat_free(km);
    clst_vault_governance_free(g);
}

static void
test_check_secret(void **state)
{
    (void)state;
    struct clst_vault_governance *g = rules(FULL_RULES);
    struct clst_gov_violation v[CLST_GOV_RULE_COUNT];
    struct clst_vault_object o = tv_secret("s1");
    /* key rules never apply to secrets */
    size_t n = clst_gov_check(g, &o, NULL, TV_T0, CLST_GOV_R_ALL, v);
    assert_int_equal(n, 2);
    assert_non_null(has_rule(v, n, "require-expiry"));
    assert_non_null(strstr(has_rule(v, n, "required-tags"), "the secret lacks"));
    o.attrs.exp = TV_T0 + DAY;
    o.tags = (char *)"{\"cost-center\":\"\",\"owner\":\"x\"}"; /* an empty value is a tag too */
    assert_int_equal(clst_gov_check(g, &o, NULL, TV_T0, CLST_GOV_R_ALL, v), 0);
    clst_vault_governance_free(g);
}

static void
test_rules_for_update(void **state)
{
    (void)state;
    assert_int_equal(clst_gov_rules_for_update(CLST_VAULT_UPDATE_ENABLED), 0);
    assert_int_equal(clst_gov_rules_for_update(CLST_VAULT_UPDATE_KEY_OPS), 0);
    assert_int_equal(clst_gov_rules_for_update(CLST_VAULT_UPDATE_CONTENT_TYPE), 0);
    assert_int_equal(clst_gov_rules_for_update(CLST_VAULT_UPDATE_EXP),
                     CLST_GOV_R_MAX_VALIDITY | CLST_GOV_R_REQUIRE_EXPIRY);
    assert_int_equal(clst_gov_rules_for_update(CLST_VAULT_UPDATE_NBF),
                     CLST_GOV_R_MAX_VALIDITY | CLST_GOV_R_REQUIRE_EXPIRY);
    assert_int_equal(clst_gov_rules_for_update(CLST_VAULT_UPDATE_TAGS), CLST_GOV_R_REQUIRED_TAGS);
    assert_int_equal(clst_gov_rules_for_update(CLST_VAULT_UPDATE_POLICY),
                     CLST_GOV_R_EXPORTABLE | CLST_GOV_R_NON_DEBUG);
    assert_int_equal(clst_gov_rules_for_update(CLST_VAULT_UPDATE_ALL) & CLST_GOV_R_KEY_TYPES, 0);
}

static void
test_max_validity_accessors(void **state)
{
    (void)state;
    struct clst_vault_governance *g = rules("{\"max-validity-days\": 2}");
    assert_int_equal(clst_gov_max_validity_seconds(g), 2 * DAY);
    assert_false(clst_gov_requires_expiry(g));
    assert_int_equal(clst_gov_max_validity_seconds(NULL), 0);
    assert_false(clst_gov_requires_expiry(NULL));
    clst_vault_governance_free(g);
}

/* ---- the vault holds the rules -------------------------------------------------------------- */

static void
test_vault_config(void **state)
{
    (void)state;
    struct tv_env env;
    struct clst_vault_config cfg;
    struct clst_vault *v = NULL;
    struct clst_err err = {0};
    struct clst_vault_governance *g = rules(FULL_RULES);
    assert_int_equal(tv_env_init(&env), 0);
    clst_vault_config_init(&cfg);
    assert_null(cfg.governance);
    assert_int_equal(clst_vault_new(env.store, env.mk, &cfg, &v, &err), CLST_OK);
    assert_null(clst_vault_governance_of(v));
    clst_vault_free(v);
    cfg.governance = g;
    assert_int_equal(clst_vault_new(env.store, env.mk, &cfg, &v, &err), CLST_OK);
    assert_ptr_equal(clst_vault_governance_of(v), g);
    clst_vault_free(v);
    assert_null(clst_vault_governance_of(NULL));
    clst_vault_governance_free(g);
    tv_env_cleanup(&env);
}

/* ---- the check of a whole store ------------------------------------------------------------- */

struct found {
    char lines[16][300];
    size_t count;
};

static void
collect(void *ctx, const struct clst_vault_governance_finding *f)
{
    struct found *fd = ctx;
    if (fd->count < 16) {
        snprintf(fd->lines[fd->count], sizeof fd->lines[0], "%s %s %.8s %s",
                 clst_vault_kind_name(f->kind), f->name, f->version, f->rule);
    }
    fd->count++;
}

static enum clst_status
put_key(struct tv_env *env, struct clst_vault_object *o, const struct clst_vault_keymat_spec *spec,
        char *ver)
{
    struct clst_vault_keymat *km = NULL;
    struct clst_buf pub;
    enum clst_status st;
    clst_buf_init(&pub, CLST_VAULT_PUBLIC_MAX);
    st = clst_vault_keymat_generate(spec, &km, NULL);
    if (st == CLST_OK) {
        st = clst_vault_keymat_public_text(km, &pub);
    }
    if (st == CLST_OK) {
        o->public_data = pub.data;
        o->public_size = pub.size;
        st = clst_vault_store_put(env->store, o, (const uint8_t *)"x", 1, ver, NULL);
    }
    o->public_data = NULL;
    clst_buf_cleanup(&pub);
    clst_vault_keymat_free(km);
    return st;
}

static void
test_check_store(void **state)
{
    (void)state;
    struct tv_env env;
    struct clst_err err = {0};
    struct found fd;
    size_t versions = 0, findings = 0;
    char v1[CLST_VAULT_VERSION_SIZE + 1], v2[CLST_VAULT_VERSION_SIZE + 1];
    struct clst_vault_keymat_spec p256 = {CLST_KEYMAT_EC, 0, CLST_CURVE_P256};
    struct clst_vault_keymat_spec p384 = {CLST_KEYMAT_EC, 0, CLST_CURVE_P384};
    struct clst_vault_governance *g =
        rules("{\"key-types\": {\"EC\": [\"P-384\"]}, \"required-tags\": [\"owner\"]}");
    assert_int_equal(tv_env_init(&env), 0);

    /* an empty vault has nothing to report */
    memset(&fd, 0, sizeof fd);
    assert_int_equal(clst_vault_governance_check_store(g, env.store, collect, &fd, &versions,
                                                       &findings, &err),
                     CLST_OK);
    assert_int_equal(versions, 0);
    assert_int_equal(findings, 0);

    /* key "a": version 1 on P-256 without tags, version 2 on P-384 with the tag */
    struct clst_vault_object o = tv_key("a");
    snprintf(o.kty, sizeof o.kty, "EC");
    o.tags = NULL;
    o.release_policy = NULL;
    o.attrs.exportable = false;
    assert_int_equal(put_key(&env, &o, &p256, v1), CLST_OK);
    o.tags = (char *)"{\"owner\":\"ops\"}";
    assert_int_equal(put_key(&env, &o, &p384, v2), CLST_OK);
    /* key "b": compliant */
    o = tv_key("b");
    snprintf(o.kty, sizeof o.kty, "EC");
    o.tags = (char *)"{\"owner\":\"ops\"}";
    o.release_policy = NULL;
    o.attrs.exportable = false;
    assert_int_equal(put_key(&env, &o, &p384, NULL), CLST_OK);
    /* secret "s" without the tag; secret "gone" without it but deleted */
    assert_int_equal(tv_put_secret(env.store, "s", NULL), CLST_OK);
    assert_int_equal(tv_put_secret(env.store, "gone", NULL), CLST_OK);
    assert_int_equal(clst_vault_store_delete(env.store, CLST_VAULT_KIND_SECRET, "gone", 7, NULL,
                                             &err),
                     CLST_OK);

    memset(&fd, 0, sizeof fd);
    assert_int_equal(clst_vault_governance_check_store(g, env.store, collect, &fd, &versions,
                                                       &findings, &err),
                     CLST_OK);
    assert_int_equal(versions, 4);
    assert_int_equal(findings, 3);
    assert_int_equal(fd.count, 3);
    char want[64];
    snprintf(want, sizeof want, "key a %.8s key-types", v1);
    assert_string_equal(fd.lines[0], want);
    snprintf(want, sizeof want, "key a %.8s required-tags", v1);
    assert_string_equal(fd.lines[1], want);
    assert_non_null(strstr(fd.lines[2], "secret s "));
    assert_non_null(strstr(fd.lines[2], " required-tags"));

    /* a rules file that turns nothing on finds nothing */
    struct clst_vault_governance *none = rules("{}");
    assert_int_equal(clst_vault_governance_check_store(none, env.store, NULL, NULL, &versions,
                                                       &findings, &err),
                     CLST_OK);
    assert_int_equal(versions, 4);
    assert_int_equal(findings, 0);
    assert_int_equal(clst_vault_governance_check_store(NULL, env.store, NULL, NULL, NULL, NULL,
                                                       &err),
                     CLST_E_INVAL);
    clst_vault_governance_free(none);
    clst_vault_governance_free(g);
    tv_env_cleanup(&env);
}

/* ---- enforcement over REST (an in-process server; the CLI path is in the integration test) --- */

static char g_root[64];
static struct clst_server_datadir *g_dir;
static char g_ca[160];

struct fx {
    struct tv_env env;
    struct clst_vault_governance *gov;
    struct clst_vault *vault;
    struct clst_server *server;
    char url[64];
    struct clst_client *admin;
};

static int
rest_group_setup(void **state)
{
    struct clst_err err;
    char data[128];
    (void)state;
    snprintf(g_root, sizeof g_root, "/tmp/clst-gov-rest-XXXXXX");
    if (mkdtemp(g_root) == NULL) {
        return -1;
    }
    snprintf(data, sizeof data, "%s/data", g_root);
    if (clst_server_datadir_open(data, "127.0.0.1", NULL, &g_dir, &err) != CLST_OK) {
        fprintf(stderr, "datadir: %s\n", err.msg);
        return -1;
    }
    snprintf(g_ca, sizeof g_ca, "%s/%s", data, CLST_DATADIR_CA_CERT);
    return g_dir->first_admin_token != NULL ? 0 : -1;
}

static int
rest_group_teardown(void **state)
{
    char cmd[160];
    (void)state;
    clst_server_datadir_free(g_dir);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_root);
    return system(cmd) == 0 ? 0 : -1;
}

static int
rest_setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    struct clst_err err;
    struct clst_server_config scfg;
    struct clst_vault_config vcfg;
    struct clst_client_config ccfg;
    bool created = false;
    if (f == NULL || tv_env_init(&f->env) != 0) {
        return -1;
    }
    f->gov = rules(FULL_RULES);
    clst_vault_config_init(&vcfg);
    vcfg.clock = &f->env.clock;
    vcfg.governance = f->gov;
    if (clst_vault_new(f->env.store, f->env.mk, &vcfg, &f->vault, &err) != CLST_OK ||
        clst_vault_bootstrap_admin(f->vault, g_dir->admin_token_sha256, &created, &err) !=
            CLST_OK) {
        fprintf(stderr, "vault: %s\n", err.msg);
        return -1;
    }
    clst_server_config_init(&scfg);
    scfg.host = "127.0.0.1";
    scfg.port = 0;
    scfg.tls_cert_pem = g_dir->server_cert_pem;
    scfg.tls_key_pem = (const char *)g_dir->server_key_pem->ptr;
    scfg.thread_count = 2;
    scfg.idle_timeout_s = 5;
    if (clst_server_new(&scfg, &f->server, &err) != CLST_OK ||
        clst_vault_register(f->vault, f->server, &err) != CLST_OK ||
        clst_server_start(f->server, &err) != CLST_OK) {
        fprintf(stderr, "server: %s\n", err.msg);
        return -1;
    }
    snprintf(f->url, sizeof f->url, "https://127.0.0.1:%u", clst_server_port(f->server));
    clst_client_config_init(&ccfg);
    ccfg.url = f->url;
    ccfg.token = (const char *)g_dir->first_admin_token->ptr;
    ccfg.ca_file = g_ca;
    if (clst_client_new(&ccfg, &f->admin, &err) != CLST_OK) {
        fprintf(stderr, "client: %s\n", err.msg);
        return -1;
    }
    *state = f;
    return 0;
}

static int
rest_teardown(void **state)
{
    struct fx *f = *state;
    clst_client_free(f->admin);
    clst_server_free(f->server);
    clst_vault_free(f->vault);
    clst_vault_governance_free(f->gov);
    tv_env_cleanup(&f->env);
    free(f);
    return 0;
}

/* Sends a request (body: JSON text or NULL); returns the status and, in *out, the body. */
static long
req(struct fx *f, const char *method, const char *path, const char *body, json_t **out)
{
    struct clst_client_response r;
    struct clst_err err;
    json_t *jb = NULL;
    if (body != NULL && (jb = json_loads(body, 0, NULL)) == NULL) {
        fail_msg("bad test body %s", body);
    }
    if (clst_client_request(f->admin, method, path, NULL, jb, &r, &err) != CLST_OK) {
        fail_msg("%s %s: %s", method, path, err.msg);
    }
    json_decref(jb);
    long status = r.status;
    if (out != NULL) {
        *out = r.body;
        r.body = NULL;
    }
    clst_client_response_cleanup(&r);
    return status;
}

static const char *
err_member(json_t *b, const char *m)
{
    const char *s = json_string_value(json_object_get(json_object_get(b, "error"), m));
    return s != NULL ? s : "(none)";
}

/* Expects 200, or 403 ForbiddenByPolicy naming `rule` (and not naming `absent`, when set). */
static void
expect_ok(struct fx *f, const char *method, const char *path, const char *body)
{
    json_t *b = NULL;
    long st = req(f, method, path, body, &b);
    if (st != 200) {
        fail_msg("%s %s: status %ld, want 200 (%s)", method, path, st, err_member(b, "message"));
    }
    json_decref(b);
}

static void
expect_refused(struct fx *f, const char *method, const char *path, const char *body,
               const char *rule, const char *absent)
{
    json_t *b = NULL;
    char quoted[80];
    long st = req(f, method, path, body, &b);
    snprintf(quoted, sizeof quoted, "rule '%s'", rule);
    if (st != 403 || strcmp(err_member(b, "code"), "ForbiddenByPolicy") != 0 ||
        strstr(err_member(b, "message"), quoted) == NULL ||
        (absent != NULL && strstr(err_member(b, "message"), absent) != NULL)) {
        fail_msg("%s %s: status %ld code %s message '%s'; want 403 ForbiddenByPolicy naming %s",
                 method, path, st, err_member(b, "code"), err_member(b, "message"), rule);
    }
    json_decref(b);
}

/* {"data": base64url(policy), "immutable": …} */
static char *
policy_member(const char *policy, bool immutable)
{
    struct clst_buf b64;
    char *out = NULL;
    clst_buf_init(&b64, 64 * 1024);
    assert_int_equal(clst_b64url_encode((const uint8_t *)policy, strlen(policy), &b64), CLST_OK);
    assert_int_equal(clst_buf_terminate(&b64), CLST_OK);
    size_t cap = b64.size + 64;
    out = malloc(cap);
    assert_non_null(out);
    snprintf(out, cap, "{\"data\": \"%s\", \"immutable\": %s}", (const char *)b64.data,
             immutable ? "true" : "false");
    clst_buf_cleanup(&b64);
    return out;
}

#define EXP_OK   "1702592000" /* T0 + 30 days */
#define EXP_LONG "1735000000" /* T0 + 405 days */
#define TAGS_OK  "{\"owner\": \"ops\", \"cost-center\": \"42\"}"

static void
test_rest_key_create(void **state)
{
    struct fx *f = *state;
    char body[8192];

    /* compliant: RSA 3072, exp within a year, the tags */
    expect_ok(f, "POST", "/keys/k1/create",
              "{\"kty\": \"RSA\", \"key_size\": 3072, \"attributes\": {\"exp\": " EXP_OK
              "}, \"tags\": " TAGS_OK "}");
    expect_ok(f, "POST", "/keys/k2/create",
              "{\"kty\": \"EC\", \"crv\": \"P-384\", \"attributes\": {\"exp\": " EXP_OK
              "}, \"tags\": " TAGS_OK "}");
    /* each rule broken alone */
    expect_refused(f, "POST", "/keys/k3/create",
                   "{\"kty\": \"RSA\", \"key_size\": 2048, \"attributes\": {\"exp\": " EXP_OK
                   "}, \"tags\": " TAGS_OK "}",
                   "key-types", "require-expiry");
    expect_refused(f, "POST", "/keys/k3/create",
                   "{\"kty\": \"EC\", \"crv\": \"P-521\", \"attributes\": {\"exp\": " EXP_OK
                   "}, \"tags\": " TAGS_OK "}",
                   "key-types", NULL);
    expect_refused(f, "POST", "/keys/k3/create",
                   "{\"kty\": \"oct\", \"key_size\": 128, \"attributes\": {\"exp\": " EXP_OK
                   "}, \"tags\": " TAGS_OK "}",
                   "key-types", NULL);
    expect_refused(f, "POST", "/keys/k3/create",
                   "{\"kty\": \"RSA\", \"key_size\": 3072, \"tags\": " TAGS_OK "}",
                   "require-expiry", "key-types");
    expect_refused(f, "POST", "/keys/k3/create",
                   "{\"kty\": \"RSA\", \"key_size\": 3072, \"attributes\": {\"exp\": " EXP_LONG
                   "}, \"tags\": " TAGS_OK "}",
                   "max-validity-days", NULL);
    expect_refused(f, "POST", "/keys/k3/create",
                   "{\"kty\": \"RSA\", \"key_size\": 3072, \"attributes\": {\"exp\": " EXP_OK
                   "}, \"tags\": {\"owner\": \"ops\"}}",
                   "required-tags", NULL);
    /* nothing was stored by the refusals */
    json_t *b = NULL;
    assert_int_equal(req(f, "GET", "/keys/k3", NULL, &b), 404);
    json_decref(b);

    /* exportable: a mutable policy, then an immutable debug one, then an immutable good one */
    char *mutable_good = policy_member(GOOD_POLICY, false);
    char *immutable_debug = policy_member(DEBUG_POLICY, true);
    char *immutable_good = policy_member(GOOD_POLICY, true);
    snprintf(body, sizeof body,
             "{\"kty\": \"oct\", \"key_size\": 256, \"attributes\": {\"exp\": " EXP_OK
             ", \"exportable\": true}, \"tags\": " TAGS_OK ", \"release_policy\": %s}",
             mutable_good);
    expect_refused(f, "POST", "/keys/x1/create", body, "exportable-needs-immutable-policy",
                   "release-policy-non-debug");
    snprintf(body, sizeof body,
             "{\"kty\": \"oct\", \"key_size\": 256, \"attributes\": {\"exp\": " EXP_OK
             ", \"exportable\": true}, \"tags\": " TAGS_OK ", \"release_policy\": %s}",
             immutable_debug);
    expect_refused(f, "POST", "/keys/x1/create", body, "release-policy-non-debug",
                   "exportable-needs-immutable-policy");
    snprintf(body, sizeof body,
             "{\"kty\": \"oct\", \"key_size\": 256, \"attributes\": {\"exp\": " EXP_OK
             ", \"exportable\": true}, \"tags\": " TAGS_OK ", \"release_policy\": %s}",
             immutable_good);
    expect_ok(f, "POST", "/keys/x1/create", body);
    free(mutable_good);
    free(immutable_debug);
    free(immutable_good);
}

static void
test_rest_key_update_rotate(void **state)
{
    struct fx *f = *state;
    char body[8192];
    json_t *b = NULL;

    expect_ok(f, "POST", "/keys/k1/create",
              "{\"kty\": \"EC\", \"crv\": \"P-256\", \"attributes\": {\"exp\": " EXP_OK
              "}, \"tags\": " TAGS_OK "}");
    /* updates are checked against the rules about what they change */
    expect_refused(f, "PATCH", "/keys/k1", "{\"tags\": {\"owner\": \"ops\"}}", "required-tags",
                   NULL);
    expect_refused(f, "PATCH", "/keys/k1", "{\"attributes\": {\"exp\": null}}", "require-expiry",
                   NULL);
    expect_refused(f, "PATCH", "/keys/k1", "{\"attributes\": {\"exp\": " EXP_LONG "}}",
                   "max-validity-days", NULL);
    /* nbf moves the start of the validity: nbf T0+60d, exp T0+405d is 345 days */
    expect_ok(f, "PATCH", "/keys/k1",
              "{\"attributes\": {\"nbf\": 1705184000, \"exp\": " EXP_LONG "}}");
    expect_ok(f, "PATCH", "/keys/k1", "{\"tags\": {\"owner\": \"x\", \"cost-center\": \"7\"}}");

    /* a key written before the rules (straight into the store): RSA 2048, no exp, no tags */
    struct clst_vault_keymat_spec rsa2048 = {CLST_KEYMAT_RSA, 2048, 0};
    struct clst_vault_object o = tv_key("old");
    o.tags = NULL;
    o.release_policy = NULL;
    o.attrs.exportable = false;
    assert_int_equal(put_key(&f->env, &o, &rsa2048, NULL), CLST_OK);
    /* it can still be disabled, and its key_ops changed: those rules are not about them */
    expect_ok(f, "PATCH", "/keys/old", "{\"attributes\": {\"enabled\": false}}");
    expect_ok(f, "PATCH", "/keys/old", "{\"key_ops\": [\"sign\", \"verify\"]}");
    /* but a change of its tags must bring all of them */
    expect_refused(f, "PATCH", "/keys/old", "{\"tags\": {\"owner\": \"ops\"}}", "required-tags",
                   "key-types");
    expect_ok(f, "PATCH", "/keys/old", "{\"tags\": " TAGS_OK "}");
    /* rotation makes a new version, which must pass every rule: RSA 2048 is refused */
    expect_refused(f, "POST", "/keys/old/rotate", NULL, "key-types", "require-expiry");

    /* rotation carries the validity period over: k1 has nbf..exp = 345 days */
    assert_int_equal(req(f, "POST", "/keys/k1/rotate", NULL, &b), 200);
    json_t *attrs = json_object_get(b, "attributes");
    assert_int_equal(json_integer_value(json_object_get(attrs, "exp")),
                     TV_T0 + (1735000000 - 1705184000));
    json_decref(b);

    /* an exportable key's policy: mutable or debug refused on update too */
    char *immutable_good = policy_member(GOOD_POLICY, true);
    char *mutable_good = policy_member(GOOD_POLICY, false);
    char *debug_policy = policy_member(DEBUG_POLICY, false);
    o = tv_key("exp1");
    snprintf(o.kty, sizeof o.kty, "oct");
    struct clst_vault_keymat_spec oct256 = {CLST_KEYMAT_OCT, 256, 0};
    o.tags = (char *)"{\"cost-center\":\"1\",\"owner\":\"a\"}";
    o.release_policy = (char *)DEBUG_POLICY; /* mutable and debug, from before the rules */
    o.attrs.exp = TV_T0 + DAY;
    assert_int_equal(put_key(&f->env, &o, &oct256, NULL), CLST_OK);
    snprintf(body, sizeof body, "{\"release_policy\": %s}", debug_policy);
    expect_refused(f, "PATCH", "/keys/exp1", body, "release-policy-non-debug", NULL);
    snprintf(body, sizeof body, "{\"release_policy\": %s}", mutable_good);
    expect_refused(f, "PATCH", "/keys/exp1", body, "exportable-needs-immutable-policy",
                   "release-policy-non-debug");
    snprintf(body, sizeof body, "{\"release_policy\": %s}", immutable_good);
    expect_ok(f, "PATCH", "/keys/exp1", body);
    free(immutable_good);
    free(mutable_good);
    free(debug_policy);
}

static void
test_rest_secrets(void **state)
{
    struct fx *f = *state;
    expect_ok(f, "PUT", "/secrets/s1",
              "{\"value\": \"v\", \"attributes\": {\"exp\": " EXP_OK "}, \"tags\": " TAGS_OK "}");
    expect_refused(f, "PUT", "/secrets/s2", "{\"value\": \"v\", \"tags\": " TAGS_OK "}",
                   "require-expiry", "required-tags");
    expect_refused(f, "PUT", "/secrets/s2",
                   "{\"value\": \"v\", \"attributes\": {\"exp\": " EXP_OK "}}", "required-tags",
                   NULL);
    expect_refused(f, "PUT", "/secrets/s2",
                   "{\"value\": \"v\", \"attributes\": {\"exp\": " EXP_LONG "}, \"tags\": " TAGS_OK
                   "}",
                   "max-validity-days", NULL);
    expect_refused(f, "PATCH", "/secrets/s1", "{\"tags\": {}}", "required-tags", NULL);
    expect_refused(f, "PATCH", "/secrets/s1", "{\"attributes\": {\"exp\": 0}}", "require-expiry",
                   NULL);
    expect_ok(f, "PATCH", "/secrets/s1", "{\"contentType\": \"text/plain\"}");
    /* an unknown secret is still a 404 */
    json_t *b = NULL;
    assert_int_equal(req(f, "PATCH", "/secrets/nope", "{\"tags\": " TAGS_OK "}", &b), 404);
    assert_string_equal(err_member(b, "code"), "SecretNotFound");
    json_decref(b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_full),
        cmocka_unit_test(test_parse_bad),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_policy_non_debug),
        cmocka_unit_test(test_check_key),
        cmocka_unit_test(test_check_stored_key_size),
        cmocka_unit_test(test_check_secret),
        cmocka_unit_test(test_rules_for_update),
        cmocka_unit_test(test_max_validity_accessors),
        cmocka_unit_test(test_vault_config),
        cmocka_unit_test(test_check_store),
    };
    const struct CMUnitTest rest_tests[] = {
        cmocka_unit_test_setup_teardown(test_rest_key_create, rest_setup, rest_teardown),
        cmocka_unit_test_setup_teardown(test_rest_key_update_rotate, rest_setup, rest_teardown),
        cmocka_unit_test_setup_teardown(test_rest_secrets, rest_setup, rest_teardown),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    failed += cmocka_run_group_tests(rest_tests, rest_group_setup, rest_group_teardown);
    return failed;
}
