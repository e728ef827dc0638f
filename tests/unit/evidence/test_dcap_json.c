/*
 * Unit tests for src/evidence/dcap_json.c: the raw-member split of Intel's signed collateral and
 * the tcbInfo / enclaveIdentity parsers.
 *
 * The split returns exactly the bytes Intel signed (checked against the real signatures), finds
 * them whatever the whitespace and member order, and refuses duplicates, escaped look-alike keys,
 * missing or malformed signatures and non-objects. The parsers read every real file with the
 * values the READMEs give, and refuse each defect of a table of one-defect documents
 * (CLST_E_MALFORMED) and each cap exceeded (CLST_E_LIMIT).
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_dcap_fixture.h"

static EVP_PKEY *
tcb_signing_key(const char *rel)
{
    size_t n = 0;
    unsigned char *pem = fx_vector(rel, &n);
    X509 *c = NULL;
    assert_int_equal(clst_x509_from_pem(pem, n, &c, NULL), CLST_OK);
    EVP_PKEY *k = X509_get_pubkey(c) /* a new reference */;
    X509_free(c);
    free(pem);
    return k;
}

/* Splits and verifies a real signed file; returns the status of the signature check. */
static enum clst_status
split_verify(const char *rel, const char *member, EVP_PKEY *key)
{
    size_t n = 0, off = 0, len = 0;
    uint8_t sig[64];
    struct clst_err err = {0};
    unsigned char *d = fx_vector(rel, &n);
    assert_int_equal(dcap_signed_json_split(d, n, member, &off, &len, sig, &err), CLST_OK);
    assert_int_equal(d[off], '{');
    assert_int_equal(d[off + len - 1], '}');
    enum clst_status rc =
        clst_ecdsa_verify(key, CLST_HASH_SHA256, CLST_SIG_RAW, d + off, len, sig, 64);
    free(d);
    return rc;
}

static void
test_split_real(void **state)
{
    (void)state;
    EVP_PKEY *k = tcb_signing_key("tdx/dcap-rs/tcb_signing_cert.pem");
    assert_int_equal(split_verify("tdx/dcap-rs/collateral-2025-02/tcbinfov3_00806f050000.json",
                                  "tcbInfo", k),
                     CLST_OK);
    assert_int_equal(split_verify("tdx/dcap-rs/collateral-2025-02/qeidentityv2_apiv4.json",
                                  "enclaveIdentity", k),
                     CLST_OK);
    assert_int_equal(split_verify("tdx/dcap-rs/collateral-2024-05/qeidentityv2_apiv4.compact.json",
                                  "enclaveIdentity", k),
                     CLST_OK);
    /* Upstream's pretty-printed copy: same content, other bytes, signature fails. */
    assert_int_equal(split_verify("tdx/dcap-rs/collateral-2024-05/qeidentityv2_apiv4.json",
                                  "enclaveIdentity", k),
                     CLST_E_VERIFY);
    assert_int_equal(split_verify("sgx/dcap-rs/collateral-2024-06/tcbinfov2.json", "tcbInfo", k),
                     CLST_OK);
    assert_int_equal(split_verify("sgx/dcap-rs/collateral-2024-06/tcbinfov3_sgx.json", "tcbInfo",
                                  k),
                     CLST_OK);
    assert_int_equal(split_verify("tdx/go-tdx-guest/sample_tcbInfo_response", "tcbInfo", k),
                     CLST_OK);
    assert_int_equal(split_verify("tdx/go-tdx-guest/sample_tcbinfo_response_v5", "tcbInfo", k),
                     CLST_OK);
    EVP_PKEY_free(k);
}

#define SIG128                                                                                     \
    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"                             \
    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

static void
split_case(const char *doc, enum clst_status want, const char *body)
{
    size_t off = 0, len = 0;
    uint8_t sig[64];
    struct clst_err err = {0};
    enum clst_status rc =
        dcap_signed_json_split((const uint8_t *)doc, strlen(doc), "tcbInfo", &off, &len, sig, &err);
    if (rc != want) {
        fail_msg("%s: want %s, got %s: %s", doc, clst_status_str(want), clst_status_str(rc),
                 err.msg);
    }
    if (rc == CLST_OK) {
        assert_int_equal(len, strlen(body));
        assert_memory_equal(doc + off, body, len);
    }
}

static void
test_split_shapes(void **state)
{
    (void)state;
    split_case("{\"tcbInfo\":{\"a\":1},\"signature\":\"" SIG128 "\"}", CLST_OK, "{\"a\":1}");
    split_case(" \n{ \"signature\" : \"" SIG128 "\" ,\r\n \"tcbInfo\" :\t{ \"a\" : [1, {\"}\":"
               "\"]\\\"\"}] } }\n",
               CLST_OK, "{ \"a\" : [1, {\"}\":\"]\\\"\"}] }");
    split_case("{\"x\":[{\"tcbInfo\":1}],\"tcbInfo\":{},\"signature\":\"" SIG128 "\"}", CLST_OK,
               "{}");
    /* refused */
    split_case("{\"tcbInfo\":{},\"tcbInfo\":{},\"signature\":\"" SIG128 "\"}", CLST_E_MALFORMED,
               NULL);
    split_case("{\"tcb\\u0049nfo\":{},\"signature\":\"" SIG128 "\"}", CLST_E_MALFORMED, NULL);
    split_case("{\"tcbInfo\":{}}", CLST_E_MALFORMED, NULL);
    split_case("{\"tcbInfo\":[],\"signature\":\"" SIG128 "\"}", CLST_E_MALFORMED, NULL);
    split_case("{\"tcbInfo\":{},\"signature\":\"00\"}", CLST_E_MALFORMED, NULL);
    split_case("{\"tcbInfo\":{},\"signature\":\"" SIG128 "0\"}", CLST_E_MALFORMED, NULL);
    split_case("{\"tcbInfo\":{},\"signature\":1}", CLST_E_MALFORMED, NULL);
    split_case("[{\"tcbInfo\":{},\"signature\":\"" SIG128 "\"}]", CLST_E_MALFORMED, NULL);
    split_case("{\"tcbInfo\":{},\"signature\":\"" SIG128 "\"} x", CLST_E_MALFORMED, NULL);
    split_case("{\"tcbInfo\":{},\"signature\":\"" SIG128 "\"", CLST_E_MALFORMED, NULL);
    split_case("", CLST_E_MALFORMED, NULL);
    char *big = malloc(DCAP_COLL_JSON_MAX + 2);
    assert_non_null(big);
    memset(big, ' ', DCAP_COLL_JSON_MAX + 1);
    big[DCAP_COLL_JSON_MAX + 1] = 0;
    split_case(big, CLST_E_LIMIT, NULL);
    free(big);
}

/* The value of "tcbInfo" in a real file, parsed. */
static struct dcap_tcb_info *
real_tcb_info(const char *rel)
{
    size_t n = 0, off = 0, len = 0;
    uint8_t sig[64];
    struct clst_err err = {0};
    unsigned char *d = fx_vector(rel, &n);
    struct dcap_tcb_info *info = calloc(1, sizeof(*info));
    assert_non_null(info);
    assert_int_equal(dcap_signed_json_split(d, n, "tcbInfo", &off, &len, sig, &err), CLST_OK);
    if (dcap_tcb_info_parse(d + off, len, info, &err) != CLST_OK) {
        fail_msg("%s: %s", rel, err.msg);
    }
    free(d);
    return info;
}

static void
test_tcb_info_real(void **state)
{
    (void)state;
    struct dcap_tcb_info *t =
        real_tcb_info("tdx/dcap-rs/collateral-2025-02/tcbinfov3_00806f050000.json");
    assert_int_equal(t->id, DCAP_TCB_INFO_TDX);
    assert_int_equal(t->version, 3);
    assert_int_equal(t->eval_number, 17);
    assert_int_equal(t->level_count, 4);
    assert_int_equal(t->module_count, 2);
    assert_string_equal(t->module[1].id, "TDX_01");
    assert_int_equal(t->module[1].level_count, 2);
    assert_int_equal(t->module[1].level[1].status, DCAP_TCB_OUT_OF_DATE);
    assert_true(t->has_tdx_module);
    assert_int_equal(t->level[1].status, DCAP_TCB_OUT_OF_DATE);
    assert_int_equal(t->level[1].sgx_svn[0], 6);
    assert_int_equal(t->level[1].tdx_svn[2], 6);
    assert_int_equal(t->level[1].adv_count, 3);
    assert_string_equal(t->adv.id[t->level[1].adv_first], "INTEL-SA-00960");
    static const uint8_t fmspc[6] = {0x00, 0x80, 0x6f, 0x05, 0, 0};
    assert_memory_equal(t->fmspc, fmspc, 6);
    free(t);

    t = real_tcb_info("sgx/dcap-rs/collateral-2024-06/tcbinfov2.json");
    assert_int_equal(t->id, DCAP_TCB_INFO_SGX);
    assert_int_equal(t->version, 2);
    assert_int_equal(t->level_count, 9);
    assert_int_equal(t->level[0].status, DCAP_TCB_SW_HARDENING_NEEDED);
    assert_int_equal(t->level[1].status, DCAP_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED);
    assert_int_equal(t->level[3].status, DCAP_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED);
    assert_int_equal(t->level[0].sgx_svn[4], 255);
    assert_int_equal(t->level[0].pcesvn, 13);
    free(t);

    t = real_tcb_info("sgx/dcap-rs/collateral-2024-06/tcbinfov3_sgx.json");
    assert_int_equal(t->id, DCAP_TCB_INFO_SGX);
    assert_int_equal(t->level[0].adv_count, 1);
    assert_string_equal(t->adv.id[t->level[0].adv_first], "INTEL-SA-00615");
    free(t);
    t = real_tcb_info("tdx/go-tdx-guest/sample_tcbInfo_response");
    assert_int_equal(t->id, DCAP_TCB_INFO_TDX);
    free(t);
}

static void
test_qe_identity_real(void **state)
{
    (void)state;
    static const char *const files[] = {
        "tdx/dcap-rs/collateral-2025-02/qeidentityv2_apiv4.json",
        "sgx/dcap-rs/collateral-2024-06/qeidentityv2.json",
        "tdx/go-tdx-guest/sample_qeIdentity_response",
    };
    for (size_t i = 0; i < 3; i++) {
        size_t n = 0, off = 0, len = 0;
        uint8_t sig[64];
        struct clst_err err = {0};
        unsigned char *d = fx_vector(files[i], &n);
        struct dcap_qe_identity *q = calloc(1, sizeof(*q));
        assert_non_null(q);
        assert_int_equal(dcap_signed_json_split(d, n, "enclaveIdentity", &off, &len, sig, &err),
                         CLST_OK);
        assert_int_equal(dcap_qe_identity_parse(d + off, len, q, &err), CLST_OK);
        assert_int_equal(q->id, i == 1 ? DCAP_QE_ID_QE : DCAP_QE_ID_TD_QE);
        assert_int_equal(q->isvprodid, i == 1 ? 1 : 2);
        assert_int_equal(q->miscselect_mask, 0xFFFFFFFFu);
        assert_int_equal(q->attributes_mask[0], 0xFB);
        assert_true(q->level_count >= 1);
        assert_int_equal(q->level[0].status, DCAP_TCB_UP_TO_DATE);
        free(q);
        free(d);
    }
}

#define TDX_HEAD                                                                                   \
    "\"id\":\"TDX\",\"version\":3,\"issueDate\":\"2025-02-13T03:50:41Z\","                         \
    "\"nextUpdate\":\"2025-03-15T03:50:41Z\",\"fmspc\":\"00806f050000\",\"pceId\":\"0000\","       \
    "\"tcbType\":0,\"tcbEvaluationDataNumber\":17,"
#define TDX_MOD                                                                                    \
    "\"tdxModule\":{\"mrsigner\":\"" FX_ZERO48 "\",\"attributes\":\"0000000000000000\","           \
    "\"attributesMask\":\"FFFFFFFFFFFFFFFF\"},"
#define LVL(sgx, tdx, extra)                                                                       \
    "{\"tcb\":{\"sgxtcbcomponents\":" sgx ",\"pcesvn\":11,\"tdxtcbcomponents\":" tdx "},"          \
    "\"tcbDate\":\"2024-03-13T00:00:00Z\",\"tcbStatus\":\"UpToDate\"" extra "}"
#define C16 FX_COMPS(1, 1, 1, 1, 1, 1, 1, 1)

static void
tcb_case(const char *body, enum clst_status want)
{
    struct dcap_tcb_info *t = calloc(1, sizeof(*t));
    struct clst_err err = {0};
    assert_non_null(t);
    enum clst_status rc = dcap_tcb_info_parse((const uint8_t *)body, strlen(body), t, &err);
    if (rc != want) {
        fail_msg("%s: want %s, got %s: %s", body, clst_status_str(want), clst_status_str(rc),
                 err.msg);
    }
    free(t);
}

static void
test_tcb_info_defects(void **state)
{
    (void)state;
    tcb_case("{" TDX_HEAD TDX_MOD "\"tcbLevels\":[" LVL(C16, C16, "") "]}", CLST_OK);
    static const char *const bad[] = {
        "[]",
        "{" TDX_HEAD TDX_MOD "\"tcbLevels\":[]}",
        "{" TDX_HEAD TDX_MOD "\"tcbLevels\":{}}",
        "{" TDX_HEAD "\"tcbLevels\":[" LVL(C16, C16, "") "]}", /* no tdxModule */
        "{\"id\":\"TDX\",\"version\":2," TDX_MOD "\"tcbLevels\":[]}",
        "{" TDX_HEAD TDX_MOD "\"tcbLevels\":[" LVL("[{\"svn\":1}]", C16, "") "]}",
        "{" TDX_HEAD TDX_MOD "\"tcbLevels\":[" LVL(FX_COMPS(256, 1, 1, 1, 1, 1, 1, 1), C16, "") "]}",
        "{" TDX_HEAD TDX_MOD "\"tcbLevels\":[" LVL(FX_COMPS(-1, 1, 1, 1, 1, 1, 1, 1), C16, "") "]}",
        "{" TDX_HEAD TDX_MOD "\"tcbLevels\":[" LVL(C16, "[]", "") "]}",
        "{" TDX_HEAD TDX_MOD "\"tcbLevels\":[" LVL(C16, C16, ",\"advisoryIDs\":\"x\"") "]}",
        "{" TDX_HEAD TDX_MOD "\"tcbLevels\":[" LVL(C16, C16, ",\"advisoryIDs\":[\"\"]") "]}",
        "{" TDX_HEAD TDX_MOD "\"tcbLevels\":[" LVL(C16, C16, ",\"advisoryIDs\":[\"a b\"]") "]}",
        "{" TDX_HEAD TDX_MOD "\"tcbLevels\":[" LVL(C16, C16, ",\"advisoryIDs\":[1]") "]}",
        "{" TDX_HEAD TDX_MOD
        "\"tcbLevels\":[" LVL(C16, C16, ",\"advisoryIDs\":[\"INTEL-SA-000000000000000000\"]") "]}",
        "{" TDX_HEAD TDX_MOD "\"tdxModuleIdentities\":{},\"tcbLevels\":[" LVL(C16, C16, "") "]}",
        "{" TDX_HEAD TDX_MOD "\"tdxModuleIdentities\":[{\"id\":\"TDX_0000000000000001\"}],"
        "\"tcbLevels\":[" LVL(C16, C16, "") "]}",
        "{\"id\":\"XYZ\",\"version\":3}",
        "{\"id\":\"TDX\",\"version\":4}",
        "{\"version\":3,\"id\":\"SGX\",\"issueDate\":\"yesterday\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        tcb_case(bad[i], CLST_E_MALFORMED);
    }
    /* Members one by one replaced with a wrong value. */
    static const char *const field_bad[] = {
        /* the first is a good value: proves the rebuild below removes the member */
        "\"fmspc\":\"00806f050001\"", "\"fmspc\":\"00806f0500\"", "\"pceId\":\"zz00\"",
        "\"tcbType\":-1", "\"issueDate\":\"2025-02-30T00:00:00Z\"",
        "\"tcbEvaluationDataNumber\":\"17\"",
    };
    for (size_t i = 0; i < sizeof(field_bad) / sizeof(field_bad[0]); i++) {
        char doc[4096];
        /* duplicate keys are refused, so the member is removed before the bad one is added */
        const char *name_end = strchr(field_bad[i], ':');
        char head[1024];
        snprintf(head, sizeof(head), "%s", TDX_HEAD);
        /* rebuild the head without the member, then add the bad member */
        char out[1024] = "";
        const char *s = head;
        size_t klen = (size_t)(name_end - field_bad[i]);
        while (*s != '\0') {
            const char *comma = strchr(s, ',');
            size_t seg = comma != NULL ? (size_t)(comma - s + 1) : strlen(s);
            if (!(seg >= klen && strncmp(s, field_bad[i], klen) == 0)) {
                strncat(out, s, seg);
            }
            s += seg;
        }
        snprintf(doc, sizeof(doc), "{%s%s," TDX_MOD "\"tcbLevels\":[" LVL(C16, C16, "") "]}", out,
                 field_bad[i]);
        tcb_case(doc, i == 0 ? CLST_OK : CLST_E_MALFORMED);
    }
    tcb_case("{" TDX_HEAD TDX_MOD "\"tcbLevels\":[" LVL(C16, C16, "") "]", CLST_E_MALFORMED);
    /* A status Intel does not define. */
    tcb_case("{" TDX_HEAD TDX_MOD
             "\"tcbLevels\":[{\"tcb\":{\"sgxtcbcomponents\":" C16 ",\"pcesvn\":1,"
             "\"tdxtcbcomponents\":" C16 "},\"tcbDate\":\"2024-03-13T00:00:00Z\","
             "\"tcbStatus\":\"Fine\"}]}",
             CLST_E_MALFORMED);
}

static void
test_caps(void **state)
{
    (void)state;
    struct clst_buf b;
    clst_buf_init(&b, 4u << 20);
    /* 65 levels */
    fx_buf_printf(&b, "{" TDX_HEAD TDX_MOD "\"tcbLevels\":[");
    for (int i = 0; i <= DCAP_MAX_TCB_LEVELS; i++) {
        fx_buf_printf(&b, "%s" LVL(C16, C16, ""), i ? "," : "");
    }
    fx_buf_printf(&b, "]}");
    clst_buf_terminate(&b);
    tcb_case((const char *)b.data, CLST_E_LIMIT);
    /* 17 module identities */
    clst_buf_reset(&b);
    fx_buf_printf(&b, "{" TDX_HEAD TDX_MOD "\"tdxModuleIdentities\":[");
    for (int i = 0; i <= DCAP_MAX_MODULES; i++) {
        fx_buf_printf(&b,
                      "%s{\"id\":\"TDX_%02X\",\"mrsigner\":\"" FX_ZERO48 "\",\"attributes\":"
                      "\"0000000000000000\",\"attributesMask\":\"FFFFFFFFFFFFFFFF\",\"tcbLevels\":"
                      "[{\"tcb\":{\"isvsvn\":1},\"tcbDate\":\"2024-03-13T00:00:00Z\","
                      "\"tcbStatus\":\"UpToDate\"}]}",
                      i ? "," : "", (unsigned)i);
    }
    fx_buf_printf(&b, "],\"tcbLevels\":[" LVL(C16, C16, "") "]}");
    clst_buf_terminate(&b);
    tcb_case((const char *)b.data, CLST_E_LIMIT);
    /* more advisory ids than the pool holds (33 per level x 32 levels) */
    clst_buf_reset(&b);
    fx_buf_printf(&b, "{" TDX_HEAD TDX_MOD "\"tcbLevels\":[");
    for (int i = 0; i < 32; i++) {
        fx_buf_printf(&b, "%s{\"tcb\":{\"sgxtcbcomponents\":" C16 ",\"pcesvn\":11,"
                          "\"tdxtcbcomponents\":" C16 "},\"tcbDate\":\"2024-03-13T00:00:00Z\","
                          "\"tcbStatus\":\"OutOfDate\",\"advisoryIDs\":[",
                      i ? "," : "");
        for (int k = 0; k < 33; k++) {
            fx_buf_printf(&b, "%s\"INTEL-SA-%05d\"", k ? "," : "", k);
        }
        fx_buf_printf(&b, "]}");
    }
    fx_buf_printf(&b, "]}");
    clst_buf_terminate(&b);
    tcb_case((const char *)b.data, CLST_E_LIMIT);
    clst_buf_cleanup(&b);
    /* QE identity: 65 levels, a bad id, version 3 */
    struct dcap_qe_identity *q = calloc(1, sizeof(*q));
    assert_non_null(q);
    clst_buf_init(&b, 1 << 20);
    fx_buf_printf(&b, "{\"id\":\"QE\",\"version\":2,\"issueDate\":\"2025-02-13T03:39:00Z\","
                      "\"nextUpdate\":\"2025-03-15T03:39:00Z\",\"tcbEvaluationDataNumber\":17,"
                      "\"miscselect\":\"00000000\",\"miscselectMask\":\"FFFFFFFF\","
                      "\"attributes\":\"11000000000000000000000000000000\","
                      "\"attributesMask\":\"FBFFFFFFFFFFFFFF0000000000000000\","
                      "\"mrsigner\":\"" SIG128 "\",\"isvprodid\":1,\"tcbLevels\":[");
    clst_buf_terminate(&b);
    size_t mark = b.size;
    fx_buf_printf(&b, "{\"tcb\":{\"isvsvn\":4},\"tcbDate\":\"2024-03-13T00:00:00Z\","
                      "\"tcbStatus\":\"UpToDate\"}]}");
    /* mrsigner is 64 bytes of hex here (SIG128): wrong length */
    assert_int_equal(dcap_qe_identity_parse(b.data, b.size, q, NULL), CLST_E_MALFORMED);
    clst_buf_cleanup(&b);
    (void)mark;
    static const char *const qbad[] = {
        "{\"id\":\"QVE\",\"version\":2}",
        "{\"id\":\"QE\",\"version\":3}",
        "{\"id\":\"TD_QE\"}",
        "[]",
        "",
    };
    for (size_t i = 0; i < sizeof(qbad) / sizeof(qbad[0]); i++) {
        assert_int_equal(dcap_qe_identity_parse((const uint8_t *)qbad[i], strlen(qbad[i]), q, NULL),
                         CLST_E_MALFORMED);
    }
    free(q);
}

static void
test_status_names(void **state)
{
    (void)state;
    for (int i = 0; i < DCAP_TCB_STATUS_COUNT; i++) {
        const char *name = dcap_tcb_status_name((enum dcap_tcb_status)i);
        enum dcap_tcb_status s;
        assert_int_equal(dcap_tcb_status_parse(name, strlen(name), &s), CLST_OK);
        assert_int_equal(s, i);
        assert_int_equal(dcap_tcb_status_parse(name, strlen(name) - 1, &s), CLST_E_MALFORMED);
    }
    assert_string_equal(dcap_tcb_status_name((enum dcap_tcb_status)99), "?");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_real),       cmocka_unit_test(test_split_shapes),
        cmocka_unit_test(test_tcb_info_real),    cmocka_unit_test(test_qe_identity_real),
        cmocka_unit_test(test_tcb_info_defects), cmocka_unit_test(test_caps),
        cmocka_unit_test(test_status_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
