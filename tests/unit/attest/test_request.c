/*
 * Unit tests for src/attest/request.c: the attestation request body. Valid forms (report or
 * quote, runtime data binary or JSON, padded or unpadded base64url, a nonce), and every refusal:
 * not JSON, not an object, duplicate members, unknown members, a draftPolicyForAttestation that is
 * not a non-empty string, both or
 * neither evidence member, wrong types, bad base64url, oversized body / evidence / runtime data
 * (refused before decoding), JSON runtime data that is not one object, bad dataType, bad nonces.
 */
#include "attest_fixture.h"

static const struct clst_attest_type *
sim_type(void)
{
    const struct clst_attest_type *t = NULL;
    assert_int_equal(clst_attest_type_find("SimEnclave", &t, NULL), CLST_OK);
    return t;
}

static enum clst_status
parse(const char *body, struct clst_attest_request *r, struct clst_err *err)
{
    return clst_attest_request_parse(sim_type(), body, strlen(body), r, err);
}

static void
expect_fail(const char *body, enum clst_status want, const char *msg_part)
{
    struct clst_attest_request r;
    struct clst_err err = {0};
    memset(&r, 0xa5, sizeof(r)); /* must stay untouched */
    enum clst_status st = parse(body, &r, &err);
    if (st != want || (msg_part != NULL && strstr(err.msg, msg_part) == NULL)) {
        fprintf(stderr, "body %.120s: status %d (%s), want %d with '%s'\n", body, (int)st, err.msg,
                (int)want, msg_part ? msg_part : "");
    }
    assert_int_equal(st, want);
    if (msg_part != NULL) {
        assert_non_null(strstr(err.msg, msg_part));
    }
    const unsigned char *p = (const unsigned char *)&r;
    for (size_t i = 0; i < sizeof(r); i++) {
        assert_int_equal(p[i], 0xa5);
    }
}

static void
test_valid(void **state)
{
    (void)state;
    struct clst_attest_request r;
    struct clst_err err = {0};
    /* "AQID" = 01 02 03; {"a":1} = eyJhIjoxfQ */
    assert_int_equal(parse("{\"report\":\"AQID\"}", &r, &err), CLST_OK);
    assert_int_equal(r.evidence.size, 3);
    assert_int_equal(r.evidence.data[2], 3);
    assert_int_equal(r.runtime_type, CLST_ATTEST_DATA_NONE);
    assert_null(r.nonce);
    clst_attest_request_cleanup(&r);

    assert_int_equal(parse("{\"quote\":\"AQID\",\"runtimeData\":{\"data\":\"eyJhIjoxfQ\","
                           "\"dataType\":\"JSON\"},\"nonce\":\"n-1_x\"}",
                           &r, &err),
                     CLST_OK);
    assert_int_equal(r.runtime_type, CLST_ATTEST_DATA_JSON);
    assert_int_equal(json_integer_value(json_object_get(r.runtime_json, "a")), 1);
    assert_string_equal(r.nonce, "n-1_x");
    clst_attest_request_cleanup(&r);

    /* Padded base64url is accepted; dataType defaults to Binary; empty data is allowed. */
    assert_int_equal(parse("{\"report\":\"AQIDBA==\",\"runtimeData\":{\"data\":\"\"}}", &r, &err),
                     CLST_OK);
    assert_int_equal(r.evidence.size, 4);
    assert_int_equal(r.runtime_type, CLST_ATTEST_DATA_BINARY);
    assert_int_equal(r.runtime_data.size, 0);
    clst_attest_request_cleanup(&r);
    assert_int_equal(parse("{\"report\":\"-_-_\",\"initTimeData\":{\"data\":\"AA\","
                           "\"dataType\":\"Binary\"}}",
                           &r, &err),
                     CLST_OK);
    assert_int_equal(r.evidence.data[0], 0xfb);
    assert_int_equal(r.inittime_type, CLST_ATTEST_DATA_BINARY);
    clst_attest_request_cleanup(&r);
    clst_attest_request_cleanup(NULL);
}

static void
test_invalid(void **state)
{
    (void)state;
    expect_fail("", CLST_E_MALFORMED, "JSON object");
    expect_fail("[]", CLST_E_MALFORMED, "JSON object");
    expect_fail("{\"report\":\"AQID\"} x", CLST_E_MALFORMED, NULL);
    expect_fail("{\"report\":\"AQID\",\"report\":\"AQID\"}", CLST_E_MALFORMED, NULL);
    expect_fail("{}", CLST_E_MALFORMED, "exactly one");
    expect_fail("{\"report\":\"AQID\",\"quote\":\"AQID\"}", CLST_E_MALFORMED, "exactly one");
    expect_fail("{\"report\":3}", CLST_E_MALFORMED, "base64url string");
    expect_fail("{\"report\":\"\"}", CLST_E_MALFORMED, "non-empty");
    expect_fail("{\"report\":\"AQ+D\"}", CLST_E_MALFORMED, "base64url");
    expect_fail("{\"report\":\"AQ/D\"}", CLST_E_MALFORMED, "base64url");
    expect_fail("{\"report\":\"AQ D\"}", CLST_E_MALFORMED, "base64url");
    expect_fail("{\"report\":\"A\"}", CLST_E_MALFORMED, "base64url");
    expect_fail("{\"report\":\"AQI=D\"}", CLST_E_MALFORMED, NULL);
    expect_fail("{\"report\":\"AQ=\"}", CLST_E_MALFORMED, "padding");
    expect_fail("{\"report\":\"AQID\",\"extra\":1}", CLST_E_MALFORMED, "unknown member \"extra\"");
    /* draftPolicyForAttestation: a non-empty string (parsed as a policy by the engine). */
    expect_fail("{\"report\":\"AQID\",\"draftPolicyForAttestation\":5}", CLST_E_MALFORMED,
                "draftPolicyForAttestation");
    expect_fail("{\"report\":\"AQID\",\"draftPolicyForAttestation\":\"\"}", CLST_E_MALFORMED,
                "draftPolicyForAttestation");
    {
        struct clst_attest_request dr;
        struct clst_err derr = {0};
        assert_int_equal(
            parse("{\"report\":\"AQID\",\"draftPolicyForAttestation\":\"x\"}", &dr, &derr),
            CLST_OK);
        assert_string_equal(dr.draft_policy, "x");
        clst_attest_request_cleanup(&dr);
    }
    expect_fail("{\"report\":\"AQID\",\"runtimeData\":\"AQID\"}", CLST_E_MALFORMED, "an object");
    expect_fail("{\"report\":\"AQID\",\"runtimeData\":{}}", CLST_E_MALFORMED, "runtimeData.data");
    expect_fail("{\"report\":\"AQID\",\"runtimeData\":{\"data\":\"AA\",\"x\":1}}", CLST_E_MALFORMED,
                "unknown member");
    expect_fail("{\"report\":\"AQID\",\"runtimeData\":{\"data\":\"AA\",\"dataType\":\"json\"}}",
                CLST_E_MALFORMED, "dataType");
    expect_fail("{\"report\":\"AQID\",\"runtimeData\":{\"data\":\"AA\",\"dataType\":1}}",
                CLST_E_MALFORMED, "dataType");
    /* JSON runtime data that is not one object: "[1]" = WzFd, "1" = MQ, bad JSON "{" = ew,
     * duplicate {"a":1,"a":2} = eyJhIjoxLCJhIjoyfQ */
    expect_fail("{\"report\":\"AQID\",\"runtimeData\":{\"data\":\"WzFd\",\"dataType\":\"JSON\"}}",
                CLST_E_MALFORMED, "one JSON object");
    expect_fail("{\"report\":\"AQID\",\"runtimeData\":{\"data\":\"MQ\",\"dataType\":\"JSON\"}}",
                CLST_E_MALFORMED, "one JSON object");
    expect_fail("{\"report\":\"AQID\",\"runtimeData\":{\"data\":\"ew\",\"dataType\":\"JSON\"}}",
                CLST_E_MALFORMED, "one JSON object");
    expect_fail("{\"report\":\"AQID\",\"runtimeData\":{\"data\":\"eyJhIjoxLCJhIjoyfQ\","
                "\"dataType\":\"JSON\"}}",
                CLST_E_MALFORMED, "duplicate");
    expect_fail("{\"report\":\"AQID\",\"initTimeData\":{\"data\":7}}", CLST_E_MALFORMED,
                "initTimeData.data");
    expect_fail("{\"report\":\"AQID\",\"nonce\":1}", CLST_E_MALFORMED, "nonce");
    expect_fail("{\"report\":\"AQID\",\"nonce\":\"\"}", CLST_E_MALFORMED, "nonce");
    expect_fail("{\"report\":\"AQID\",\"nonce\":\"a b\"}", CLST_E_MALFORMED, "printable");
    expect_fail("{\"report\":\"AQID\",\"nonce\":\"a\\u0000b\"}", CLST_E_MALFORMED, NULL);
    expect_fail("{\"report\":\"AQID\",\"nonce\":\"\\u00e9\"}", CLST_E_MALFORMED, "printable");
    /* Member names are shown safely. */
    expect_fail("{\"report\":\"AQID\",\"\\u0001x\":1}", CLST_E_MALFORMED, "\"?x\"");
}

static void
test_limits(void **state)
{
    (void)state;
    struct clst_attest_request r;
    struct clst_err err = {0};
    /* Evidence: the sim limit is 2402 bytes, i.e. 3203 base64url characters. */
    size_t max = clst_evidence_max_size(CLST_EVIDENCE_SIM);
    assert_int_equal(max, CLST_SIM_EVIDENCE_MAX_SIZE);
    size_t n_ok = (max / 3) * 4; /* 2400 bytes */
    char *body = malloc(n_ok + 64 + 8192);
    assert_non_null(body);
    memcpy(body, "{\"report\":\"", 11);
    memset(body + 11, 'A', n_ok);
    memcpy(body + 11 + n_ok, "\"}", 3);
    assert_int_equal(parse(body, &r, &err), CLST_OK);
    assert_int_equal(r.evidence.size, 2400);
    clst_attest_request_cleanup(&r);
    /* 2403 bytes decoded (3204 characters, all valid): refused as too large. */
    size_t n_big = 3204;
    memset(body + 11, 'A', n_big);
    memcpy(body + 11 + n_big, "\"}", 3);
    expect_fail(body, CLST_E_LIMIT, "too large");
    /* Much larger: refused by length before any decoding (invalid characters are not seen). */
    memset(body + 11, '*', n_big + 8000);
    memcpy(body + 11 + n_big + 8000, "\"}", 3);
    expect_fail(body, CLST_E_LIMIT, "too large");
    free(body);

    /* Runtime data over CLST_ATTEST_MAX_RUNTIME_DATA. */
    size_t rt_chars = (CLST_ATTEST_MAX_RUNTIME_DATA / 3 + 2) * 4;
    body = malloc(rt_chars + 128);
    assert_non_null(body);
    int k = snprintf(body, 128, "{\"report\":\"AQID\",\"runtimeData\":{\"data\":\"");
    memset(body + k, 'A', rt_chars);
    memcpy(body + (size_t)k + rt_chars, "\"}}", 4);
    expect_fail(body, CLST_E_LIMIT, "runtimeData.data");
    free(body);

    /* The whole body. */
    size_t big = CLST_ATTEST_MAX_REQUEST_SIZE + 1;
    body = malloc(big + 1);
    assert_non_null(body);
    memset(body, ' ', big);
    body[big] = '\0';
    expect_fail(body, CLST_E_LIMIT, "request body");
    free(body);

    /* A nonce longer than allowed. */
    char nb[400];
    k = snprintf(nb, sizeof(nb), "{\"report\":\"AQID\",\"nonce\":\"");
    memset(nb + k, 'n', CLST_ATTEST_MAX_NONCE_SIZE + 1);
    memcpy(nb + k + CLST_ATTEST_MAX_NONCE_SIZE + 1, "\"}", 3);
    expect_fail(nb, CLST_E_MALFORMED, "nonce");

    /* NULL arguments. */
    assert_int_equal(clst_attest_request_parse(NULL, "{}", 2, &r, &err), CLST_E_INVAL);
    assert_int_equal(clst_attest_request_parse(sim_type(), NULL, 2, &r, &err), CLST_E_INVAL);
    assert_int_equal(clst_attest_request_parse(sim_type(), "{}", 2, NULL, &err), CLST_E_INVAL);
}

/* Every truncation of a valid body fails cleanly (no crash, no leak, never CLST_OK). */
static void
test_truncations(void **state)
{
    (void)state;
    const char *full = "{\"report\":\"AQID\",\"runtimeData\":{\"data\":\"eyJhIjoxfQ\","
                       "\"dataType\":\"JSON\"},\"nonce\":\"abc\"}";
    size_t n = strlen(full);
    for (size_t i = 0; i < n; i++) {
        struct clst_attest_request r;
        struct clst_err err = {0};
        enum clst_status st = clst_attest_request_parse(sim_type(), full, i, &r, &err);
        assert_int_not_equal(st, CLST_OK);
    }
}

/* SevSnpVm: "report" may be base64url of the cloud clients' JSON {"SnpReport", "VcekCertChain"}. */
static char *
snp_body(const char *inner_json)
{
    struct clst_buf b;
    clst_buf_init(&b, 1u << 20);
    assert_int_equal(clst_b64url_encode((const uint8_t *)inner_json, strlen(inner_json), &b),
                     CLST_OK);
    assert_int_equal(clst_buf_terminate(&b), CLST_OK);
    char *body = malloc(b.size + 32);
    assert_non_null(body);
    snprintf(body, b.size + 32, "{\"report\":\"%s\"}", (const char *)b.data);
    clst_buf_cleanup(&b);
    return body;
}

static enum clst_status
parse_snp(const char *body, struct clst_attest_request *r, struct clst_err *err)
{
    const struct clst_attest_type *t = NULL;
    assert_int_equal(clst_attest_type_find("SevSnpVm", &t, NULL), CLST_OK);
    return clst_attest_request_parse(t, body, strlen(body), r, err);
}

static void
test_snp_json_form(void **state)
{
    (void)state;
    struct clst_attest_request r;
    struct clst_err err = {0};
    /* "AAEC" = 00 01 02: the report is taken from SnpReport; no chain, no certs. */
    char *body = snp_body("{\"SnpReport\":\"AAEC\",\"Endorsements\":\"\"}");
    assert_int_equal(parse_snp(body, &r, &err), CLST_OK);
    assert_int_equal(r.evidence.size, 3);
    assert_int_equal(r.evidence.data[2], 2);
    assert_int_equal(r.certs.size, 0);
    clst_attest_request_cleanup(&r);
    free(body);
    /* The same JSON sent to another type stays opaque evidence bytes. */
    body = snp_body("{\"SnpReport\":\"AAEC\"}");
    assert_int_equal(parse(body, &r, &err), CLST_OK);
    assert_int_equal(r.evidence.data[0], '{');
    clst_attest_request_cleanup(&r);
    free(body);
    static const struct {
        const char *inner;
        enum clst_status want;
        const char *msg;
    } bad[] = {
        {"{\"SnpReport\":\"AAEC\"", CLST_E_MALFORMED, "neither an SNP report"},
        {"{\"SnpReport\":\"AAEC\",\"SnpReport\":\"AAEC\"}", CLST_E_MALFORMED, NULL},
        {"{}", CLST_E_MALFORMED, "without \"SnpReport\""},
        {"{\"SnpReport\":5}", CLST_E_MALFORMED, "report.SnpReport"},
        {"{\"SnpReport\":\"A$\"}", CLST_E_MALFORMED, "report.SnpReport"},
        {"{\"SnpReport\":\"AAEC\",\"VcekCertChain\":\"bm90IGEgUEVN\"}", CLST_E_MALFORMED,
         "VcekCertChain"},
        {"{\"SnpReport\":\"AAEC\",\"Endorsements\":\"eyJVdm0iOltdfQ\"}", CLST_E_MALFORMED,
         "UVM endorsements"},
        {"{\"SnpReport\":\"AAEC\",\"Other\":\"\"}", CLST_E_MALFORMED, "unknown member"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        body = snp_body(bad[i].inner);
        memset(&r, 0xa5, sizeof(r));
        enum clst_status st = parse_snp(body, &r, &err);
        if (st != bad[i].want || (bad[i].msg && strstr(err.msg, bad[i].msg) == NULL)) {
            fprintf(stderr, "%s: %d %s\n", bad[i].inner, (int)st, err.msg);
        }
        assert_int_equal(st, bad[i].want);
        if (bad[i].msg != NULL) {
            assert_non_null(strstr(err.msg, bad[i].msg));
        }
        free(body);
    }
    /* A raw report over the SNP limit (the body limit lets it through decoding). */
    size_t big = clst_evidence_max_size(CLST_EVIDENCE_SEVSNP) + 3;
    char *raw = calloc(1, big / 3 * 4 + 64);
    assert_non_null(raw);
    strcpy(raw, "{\"report\":\"");
    size_t k = strlen(raw);
    for (size_t i = 0; i < big / 3 * 4; i++) {
        raw[k++] = 'A';
    }
    strcpy(raw + k, "\"}");
    assert_int_equal(parse_snp(raw, &r, &err), CLST_E_LIMIT);
    assert_non_null(strstr(err.msg, "SevSnpVm"));
    free(raw);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),         cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_limits),        cmocka_unit_test(test_truncations),
        cmocka_unit_test(test_snp_json_form),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
