/*
 * The hardware attestation types through the engine (src/attest/hardware.c + engine.c): real
 * evidence from tests/vectors with its collateral at the fixed times its README gives, each
 * type's default policy, the runtime-data binding, configuration errors, and the separation of
 * sim and hardware (a policy of one never admits the claims of the other).
 */
#include "attest_fixture.h"

#include <openssl/pem.h>

#include <cloister/crypto.h>

#include "test_util.h"

#define T_SGX   1740787200LL /* 2025-03-01T00:00:00Z: dcap-rs SGX + TDX collateral 2025-02 */
#define T_SNP   1704067200LL /* 2024-01-01T00:00:00Z: virtee-sev Milan */
#define T_NITRO 1725721200LL /* 2024-09-07T15:00:00Z: inside nitro_attestation's window */
#define T_AZURE 1767225600LL /* 2026-01-01T00:00:00Z: azure/README's suggested time */

#define SGX_QUOTE  "sgx/dcap-rs/quote_v3_sgx_00606a000000.bin"
#define TDX_QUOTE  "tdx/go-tdx-guest/ccel/cos-113-tdx-quote.dat"
#define SNP_REPORT "sev-snp/virtee-sev/report_milan.bin"
#define NITRO_DOC  "nitro/blocky-nitrite/nitro_attestation.cose.bin"

struct hw {
    struct fx f;    /* sim platform, clock, dir */
    char coll[400]; /* DIR/coll with sgx/ and tdx/ sets */
    char vcek[400]; /* DIR/vcek */
};

static void
vec_path(const char *rel, char *out, size_t size)
{
    int n = snprintf(out, size, "%s/%s", CLST_VECTORS_DIR, rel);
    assert_true(n > 0 && (size_t)n < size);
}

static void
link_vec(const char *dir, const char *name, const char *rel)
{
    char src[600], dst[600];
    vec_path(rel, src, sizeof(src));
    snprintf(dst, sizeof(dst), "%s/%s", dir, name);
    assert_int_equal(symlink(src, dst), 0);
}

/* DIR/coll/sgx (SGX 00606a, 2025-02) and DIR/coll/tdx (TDX 00806f05, 2025-02); DIR/vcek. */
static void
hw_files(struct hw *h)
{
    char d[500];
    snprintf(h->coll, sizeof(h->coll), "%s/coll", h->f.dir);
    snprintf(h->vcek, sizeof(h->vcek), "%s/vcek", h->f.dir);
    assert_int_equal(mkdir(h->coll, 0700), 0);
    assert_int_equal(mkdir(h->vcek, 0700), 0);
    snprintf(d, sizeof(d), "%s/sgx", h->coll);
    assert_int_equal(mkdir(d, 0700), 0);
    link_vec(d, "tcb_info.json", "sgx/dcap-rs/collateral-2025-02/tcbinfov2.json");
    link_vec(d, "qe_identity.json", "sgx/dcap-rs/collateral-2025-02/qeidentityv2.json");
    link_vec(d, "tcb_signing_chain.pem", "sgx/dcap-rs/tcb_signing_cert.pem");
    link_vec(d, "pck_crl.der", "sgx/dcap-rs/collateral-2025-02/pck_platform_crl.der");
    link_vec(d, "root_ca_crl.der", "sgx/dcap-rs/collateral-2025-02/intel_root_ca_crl.der");
    snprintf(d, sizeof(d), "%s/tdx", h->coll);
    assert_int_equal(mkdir(d, 0700), 0);
    link_vec(d, "tcb_info.json", "tdx/dcap-rs/collateral-2025-02/tcbinfov3_00806f050000.json");
    link_vec(d, "qe_identity.json", "tdx/dcap-rs/collateral-2025-02/qeidentityv2_apiv4.json");
    link_vec(d, "tcb_signing_chain.pem", "tdx/dcap-rs/tcb_signing_cert.pem");
    link_vec(d, "pck_crl.der", "tdx/dcap-rs/collateral-2025-02/pck_platform_crl.der");
    link_vec(d, "root_ca_crl.der", "tdx/dcap-rs/collateral-2025-02/intel_root_ca_crl.der");
    link_vec(h->vcek, "vcek_milan.der", "sev-snp/virtee-sev/vcek_milan.der");
    link_vec(h->vcek, "ask_ark_milan.pem", "sev-snp/go-sev-guest/ask_ark_milan.pem");
}

/* A fresh engine (new attest.db) whose clock stands at the current h->f.clock.fixed. */
static enum clst_status
hw_engine(struct hw *h, const char *coll, const char *vcek, const char *tpm, struct clst_err *err)
{
    char p[400];
    clst_attest_free(h->f.a);
    h->f.a = NULL;
    const char *suffix[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(p, sizeof(p), "%s%s", h->f.db, suffix[i]);
        (void)unlink(p);
    }
    struct clst_attest_config cfg;
    clst_attest_config_init(&cfg);
    cfg.db_path = h->f.db;
    cfg.master_key = fx_master_key;
    cfg.master_key_size = sizeof(fx_master_key);
    cfg.issuer = FX_ISSUER;
    cfg.sim_roots = h->f.roots;
    cfg.clock = &h->f.clock;
    cfg.dcap_collateral_dir = coll;
    cfg.vcek_cache_dir = vcek;
    cfg.tpm_roots_file = tpm;
    return clst_attest_new(&cfg, &h->f.a, err);
}

static int
setup(void **state)
{
    struct hw *h = calloc(1, sizeof(*h));
    assert_non_null(h);
    fx_setup_platform(&h->f);
    hw_files(h);
    *state = h;
    return 0;
}

/* The engine with both collateral sets and the VCEK cache, its clock at t. */
static void
hw_start(struct hw *h, int64_t t)
{
    struct clst_err err = {0};
    h->f.clock.fixed = t;
    enum clst_status st = hw_engine(h, h->coll, h->vcek, NULL, &err);
    if (st != CLST_OK) {
        fprintf(stderr, "engine: %s\n", err.msg);
    }
    assert_int_equal(st, CLST_OK);
}

static int
teardown(void **state)
{
    struct hw *h = *state;
    fx_teardown(&h->f);
    free(h);
    return 0;
}

static const struct clst_attest_type *
type_named(const char *name)
{
    const struct clst_attest_type *t = NULL;
    assert_int_equal(clst_attest_type_find(name, &t, NULL), CLST_OK);
    return t;
}

/* A request of `type` with the vector's bytes (optionally one byte flipped). */
static void
hw_request(struct clst_attest_request *r, const char *type, const char *rel, long flip)
{
    char p[600];
    size_t size = 0;
    vec_path(rel, p, sizeof(p));
    uint8_t *data = tu_read_file(p, &size);
    assert_non_null(data);
    memset(r, 0, sizeof(*r));
    r->type = type_named(type);
    clst_buf_init(&r->evidence, 1u << 20);
    if (flip >= 0) {
        assert_true((size_t)flip < size);
        data[flip] ^= 0x01;
    }
    assert_int_equal(clst_buf_append(&r->evidence, data, size), CLST_OK);
    clst_buf_init(&r->runtime_data, 1u << 16);
    free(data);
}

static enum clst_status
evaluate(struct hw *h, struct clst_attest_request *r, json_t **claims, json_t **denial,
         struct clst_err *err)
{
    char *token = NULL;
    enum clst_status st = clst_attest_evaluate(h->f.a, r, NULL, &token, claims, denial, err);
    if (st == CLST_OK) {
        /* The token verifies with the service's keys and carries the same claims. */
        struct clst_jwks *set = fx_jwks(h->f.a);
        struct clst_attest_token_expect ex = {.issuer = FX_ISSUER, .clock = &h->f.clock};
        json_t *tc = NULL;
        struct clst_err e2 = {0};
        assert_int_equal(clst_attest_token_verify(token, strlen(token), set, &ex, &tc, NULL, &e2),
                         CLST_OK);
        assert_true(json_equal(tc, *claims));
        json_decref(tc);
        clst_jwks_free(set);
    }
    free(token);
    return st;
}

/* evaluate() that must admit the request (the reason is printed when it does not). */
static void
evaluate_ok(struct hw *h, struct clst_attest_request *r, json_t **claims, json_t **denial,
            struct clst_err *err)
{
    enum clst_status st = evaluate(h, r, claims, denial, err);
    if (st != CLST_OK) {
        fprintf(stderr, "%s\n", err->msg);
    }
    assert_int_equal(st, CLST_OK);
}

/* A request of `type` with the vector's bytes (flip as in hw_request) that the engine refuses with
 * `want`, giving no claims; the message contains `msg_part` unless that is NULL. */
static void
expect_refused(struct hw *h, const char *type, const char *rel, long flip, enum clst_status want,
               const char *msg_part)
{
    struct clst_attest_request r;
    struct clst_err err = {0};
    json_t *claims = NULL, *denial = NULL;
    hw_request(&r, type, rel, flip);
    assert_int_equal(evaluate(h, &r, &claims, &denial, &err), want);
    if (msg_part != NULL) {
        assert_non_null(strstr(err.msg, msg_part));
    }
    assert_null(claims);
    json_decref(denial);
    clst_attest_request_cleanup(&r);
}

static void
expect_str(const json_t *claims, const char *name, const char *value)
{
    const char *v = json_string_value(json_object_get(claims, name));
    if (v == NULL || strcmp(v, value) != 0) {
        fprintf(stderr, "claim %s: got %s, want %s\n", name, v ? v : "(missing)", value);
    }
    assert_non_null(v);
    assert_string_equal(v, value);
}

static void
set_policy(struct hw *h, const char *type, const char *text)
{
    struct clst_err err = {0};
    enum clst_status st =
        clst_attest_policy_set(h->f.a, type_named(type), text, strlen(text), &err);
    if (st != CLST_OK) {
        fprintf(stderr, "policy: %s\n", err.msg);
    }
    assert_int_equal(st, CLST_OK);
}

static const char sgx_outofdate_policy[] =
    "{\"version\":\"1.0.0\",\"authorizationRules\":{\"allOf\":["
    "{\"claim\":\"x-ms-attestation-type\",\"equals\":\"sgx\"},"
    "{\"claim\":\"x-ms-sgx-is-debuggable\",\"equals\":false},"
    "{\"anyOf\":[{\"claim\":\"attester_tcb_status\",\"equals\":\"UpToDate\"},"
    "{\"claim\":\"attester_tcb_status\",\"equals\":\"OutOfDate\"}]}]}}";

/* ---- SgxEnclave --------------------------------------------------------------------------------
 */

static void
test_sgx_default_policy_refuses_outofdate(void **state)
{
    struct hw *h = *state;
    struct clst_attest_request r;
    struct clst_err err = {0};
    json_t *claims = NULL, *denial = NULL;
    hw_start(h, T_SGX);
    hw_request(&r, "SgxEnclave", SGX_QUOTE, -1);
    assert_int_equal(evaluate(h, &r, &claims, &denial, &err), CLST_E_DENIED);
    assert_non_null(strstr(err.msg, "attester_tcb_status"));
    assert_non_null(strstr(err.msg, "OutOfDate"));
    assert_non_null(denial);
    json_decref(denial);
    clst_attest_request_cleanup(&r);
}

static void
test_sgx_policy_allows_outofdate(void **state)
{
    struct hw *h = *state;
    struct clst_attest_request r;
    struct clst_err err = {0};
    json_t *claims = NULL, *denial = NULL;
    char *hash = NULL;
    json_t *eff = NULL;
    hw_start(h, T_SGX);
    set_policy(h, "SgxEnclave", sgx_outofdate_policy);
    hw_request(&r, "SgxEnclave", SGX_QUOTE, -1);
    evaluate_ok(h, &r, &claims, &denial, &err);
    expect_str(claims, "x-ms-attestation-type", "sgx");
    expect_str(claims, "x-ms-sgx-mrenclave",
               "a4f45c39dac622cb1dd32ddb35a52ec92db41d0fa88a1c911c49e59c534f61cd");
    expect_str(claims, "x-ms-sgx-mrsigner",
               "1bda23eb3a807dfe735ddcebbfa2eac05e04a00df2804296612f770b594180ba");
    expect_str(claims, "attester_tcb_status", "OutOfDate");
    expect_str(claims, "x-ms-ver", "1.0");
    expect_str(claims, "iss", FX_ISSUER);
    assert_true(json_is_false(json_object_get(claims, "x-ms-sgx-is-debuggable")));
    assert_int_equal(json_integer_value(json_object_get(claims, "iat")), T_SGX);
    assert_int_equal(
        clst_attest_policy_effective(h->f.a, type_named("SgxEnclave"), &eff, &hash, &err), CLST_OK);
    expect_str(claims, "x-ms-policy-hash", hash);
    free(hash);
    json_decref(eff);
    json_decref(claims);
    clst_attest_request_cleanup(&r);

    /* A flipped byte in the signed body (the report data) and in the QE report. */
    long flips[] = {48 + 320, 48 + 384 + 4 + 64 + 64 + 10};
    for (size_t i = 0; i < sizeof(flips) / sizeof(flips[0]); i++) {
        expect_refused(h, "SgxEnclave", SGX_QUOTE, flips[i], CLST_E_VERIFY, "evidence rejected");
    }

    /* Runtime data the quote does not bind (its report data is all zero). */
    claims = NULL;
    hw_request(&r, "SgxEnclave", SGX_QUOTE, -1);
    r.runtime_type = CLST_ATTEST_DATA_BINARY;
    assert_int_equal(clst_buf_append(&r.runtime_data, "hello", 5), CLST_OK);
    assert_int_equal(evaluate(h, &r, &claims, &denial, &err), CLST_E_VERIFY);
    assert_non_null(strstr(err.msg, "evidence rejected"));
    clst_attest_request_cleanup(&r);

    /* At a time the collateral is no longer valid. */
    h->f.clock.fixed = T_SGX + 60 * 86400;
    expect_refused(h, "SgxEnclave", SGX_QUOTE, -1, CLST_E_VERIFY, NULL);
}

/* draftPolicyForAttestation: evaluated instead of the stored policy; unsecured token. */
static void
test_sgx_draft_policy(void **state)
{
    struct hw *h = *state;
    struct clst_attest_request r;
    struct clst_err err = {0};
    json_t *claims = NULL, *denial = NULL;
    char *token = NULL;
    hw_start(h, T_SGX);
    hw_request(&r, "SgxEnclave", SGX_QUOTE, -1);
    r.draft_policy = strdup(sgx_outofdate_policy);
    enum clst_status st = clst_attest_evaluate(h->f.a, &r, NULL, &token, &claims, &denial, &err);
    if (st != CLST_OK) {
        fprintf(stderr, "%s\n", err.msg);
    }
    assert_int_equal(st, CLST_OK);
    assert_true(json_is_true(json_object_get(claims, "x-cloister-draft-policy")));
    expect_str(claims, "attester_tcb_status", "OutOfDate");
    /* {"alg":"none","typ":"JWT"}, an empty signature, and no relying party accepts it. */
    assert_non_null(strstr(token, "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0."));
    assert_int_equal(token[strlen(token) - 1], '.');
    struct clst_jwks *set = fx_jwks(h->f.a);
    struct clst_attest_token_expect ex = {.issuer = FX_ISSUER, .clock = &h->f.clock};
    json_t *tc = NULL;
    assert_int_not_equal(clst_attest_token_verify(token, strlen(token), set, &ex, &tc, NULL, &err),
                         CLST_OK);
    clst_jwks_free(set);
    free(token);
    token = NULL;
    json_decref(claims);
    claims = NULL;
    clst_attest_request_cleanup(&r);

    /* A draft that denies (the default UpToDate-only rule), and one that does not parse. */
    hw_request(&r, "SgxEnclave", SGX_QUOTE, -1);
    r.draft_policy = strdup("{\"version\":\"1.0.0\",\"authorizationRules\":{\"allOf\":["
                            "{\"claim\":\"attester_tcb_status\",\"equals\":\"UpToDate\"}]}}");
    assert_int_equal(clst_attest_evaluate(h->f.a, &r, NULL, &token, &claims, &denial, &err),
                     CLST_E_DENIED);
    assert_non_null(strstr(err.msg, "draft"));
    assert_null(token);
    json_decref(denial);
    denial = NULL;
    free(r.draft_policy);
    r.draft_policy = strdup("{\"authorizationRules\":{\"allOf\":[{\"claim\":\"x\",\"equal\":1}]}}");
    assert_int_equal(clst_attest_evaluate(h->f.a, &r, NULL, &token, &claims, &denial, &err),
                     CLST_E_MALFORMED);
    assert_non_null(strstr(err.msg, "draftPolicyForAttestation"));
    clst_attest_request_cleanup(&r);
}

static void
test_sgx_quote_is_not_other_types(void **state)
{
    struct hw *h = *state;
    struct clst_attest_request r;
    struct clst_err err = {0};
    json_t *claims = NULL, *denial = NULL;
    hw_start(h, T_SGX);
    const char *others[] = {"TdxVm", "SevSnpVm", "NitroEnclave", "SimEnclave"};
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
        hw_request(&r, others[i], SGX_QUOTE, -1);
        enum clst_status st = evaluate(h, &r, &claims, &denial, &err);
        assert_true(st == CLST_E_MALFORMED || st == CLST_E_VERIFY || st == CLST_E_LIMIT);
        assert_null(claims);
        clst_attest_request_cleanup(&r);
    }
}

/* ---- TdxVm -------------------------------------------------------------------------------------
 */

static void
test_tdx_uptodate(void **state)
{
    struct hw *h = *state;
    struct clst_attest_request r;
    struct clst_err err = {0};
    json_t *claims = NULL, *denial = NULL;
    hw_start(h, T_SGX);
    hw_request(&r, "TdxVm", TDX_QUOTE, -1);
    evaluate_ok(h, &r, &claims, &denial, &err);
    expect_str(claims, "x-ms-attestation-type", "tdxvm");
    expect_str(claims, "attester_tcb_status", "UpToDate");
    assert_int_equal(strlen(json_string_value(json_object_get(claims, "tdx_mrtd"))), 96);
    assert_true(json_is_false(json_object_get(claims, "tdx_is_debuggable")));
    json_decref(claims);
    clst_attest_request_cleanup(&r);
}

/* ---- SevSnpVm ----------------------------------------------------------------------------------
 */

static void
test_snp_with_vcek_cache(void **state)
{
    struct hw *h = *state;
    struct clst_attest_request r;
    struct clst_err err = {0};
    json_t *claims = NULL, *denial = NULL;
    hw_start(h, T_SNP);
    hw_request(&r, "SevSnpVm", SNP_REPORT, -1);
    evaluate_ok(h, &r, &claims, &denial, &err);
    expect_str(claims, "x-ms-attestation-type", "sevsnpvm");
    expect_str(claims, "x-ms-sevsnpvm-launchmeasurement",
               "7a1e5c266c0108dbc9bb94fa926951320940915d0aafb42464bd88b579ea158d3e1a0dc39b2c60bd"
               "95b9c480cd81841f");
    assert_true(json_is_false(json_object_get(claims, "x-ms-sevsnpvm-is-debuggable")));
    json_decref(claims);
    clst_attest_request_cleanup(&r);

    /* Flip bit 0 of byte 21 (POLICY): the signature fails. */
    expect_refused(h, "SevSnpVm", SNP_REPORT, 21, CLST_E_VERIFY, NULL);

    /* Reference values on the launch measurement: another one is denied. */
    assert_int_equal(clst_attest_refval_add(h->f.a, type_named("SevSnpVm"), NULL,
                                            "00112233445566778899aabbccddeeff00112233445566778899"
                                            "aabbccddeeff00112233445566778899aabbccddeeff",
                                            NULL, &err),
                     CLST_OK);
    expect_refused(h, "SevSnpVm", SNP_REPORT, -1, CLST_E_DENIED, "x-ms-sevsnpvm-launchmeasurement");
}

/* Appends base64url(data) to out as a C string. */
static void
b64url(const void *data, size_t size, struct clst_buf *out)
{
    clst_buf_init(out, 1u << 20);
    assert_int_equal(clst_b64url_encode(data, size, out), CLST_OK);
    assert_int_equal(clst_buf_terminate(out), CLST_OK);
}

/* The cloud clients' form: report = b64url({"SnpReport": b64url, "VcekCertChain": b64url(PEM)}). */
static char *
snp_json_body(bool with_chain, const char *extra_member)
{
    char p[600];
    size_t rsize = 0, dsize = 0, asize = 0;
    vec_path(SNP_REPORT, p, sizeof(p));
    uint8_t *report = tu_read_file(p, &rsize);
    vec_path("sev-snp/virtee-sev/vcek_milan.der", p, sizeof(p));
    uint8_t *der = tu_read_file(p, &dsize);
    vec_path("sev-snp/go-sev-guest/ask_ark_milan.pem", p, sizeof(p));
    uint8_t *askark = tu_read_file(p, &asize);
    assert_non_null(report);
    assert_non_null(der);
    assert_non_null(askark);
    X509 *vcek = NULL;
    assert_int_equal(clst_x509_from_der(der, dsize, &vcek, NULL), CLST_OK);
    BIO *bio = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_X509(bio, vcek), 1);
    assert_int_equal(BIO_write(bio, askark, (int)asize), (int)asize);
    char *pem = NULL;
    long pem_size = BIO_get_mem_data(bio, &pem);
    struct clst_buf r64, c64, inner64;
    b64url(report, rsize, &r64);
    b64url(pem, (size_t)pem_size, &c64);
    json_t *inner = json_pack("{s:s}", "SnpReport", (const char *)r64.data);
    if (with_chain) {
        json_object_set_new(inner, "VcekCertChain", json_string((const char *)c64.data));
    }
    if (extra_member != NULL) {
        json_object_set_new(inner, extra_member, json_string("eyJVdm0iOltdfQ"));
    }
    char *inner_text = json_dumps(inner, JSON_COMPACT);
    b64url(inner_text, strlen(inner_text), &inner64);
    json_t *body = json_pack("{s:s}", "report", (const char *)inner64.data);
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    json_decref(inner);
    free(inner_text);
    clst_buf_cleanup(&r64);
    clst_buf_cleanup(&c64);
    clst_buf_cleanup(&inner64);
    BIO_free(bio);
    X509_free(vcek);
    free(report);
    free(der);
    free(askark);
    return text;
}

static void
test_snp_cloud_json_form(void **state)
{
    struct hw *h = *state;
    struct clst_attest_request r;
    struct clst_err err = {0};
    json_t *claims = NULL, *denial = NULL;
    /* No VCEK cache: the chain comes with the request. */
    h->f.clock.fixed = T_SNP;
    assert_int_equal(hw_engine(h, NULL, NULL, NULL, &err), CLST_OK);
    char *body = snp_json_body(true, NULL);
    assert_int_equal(
        clst_attest_request_parse(type_named("SevSnpVm"), body, strlen(body), &r, &err), CLST_OK);
    assert_int_equal(r.evidence.size, 1184);
    assert_true(r.certs.size > 0);
    evaluate_ok(h, &r, &claims, &denial, &err);
    expect_str(claims, "x-ms-attestation-type", "sevsnpvm");
    json_decref(claims);
    claims = NULL;
    clst_attest_request_cleanup(&r);
    free(body);
    /* Without the chain the report alone does not verify. */
    body = snp_json_body(false, NULL);
    assert_int_equal(
        clst_attest_request_parse(type_named("SevSnpVm"), body, strlen(body), &r, &err), CLST_OK);
    assert_int_equal(evaluate(h, &r, &claims, &denial, &err), CLST_E_VERIFY);
    clst_attest_request_cleanup(&r);
    free(body);
    /* UVM endorsements are refused, unknown members too. */
    body = snp_json_body(true, "Endorsements");
    assert_int_equal(
        clst_attest_request_parse(type_named("SevSnpVm"), body, strlen(body), &r, &err),
        CLST_E_MALFORMED);
    assert_non_null(strstr(err.msg, "Endorsements"));
    free(body);
    body = snp_json_body(true, "Vcek");
    assert_int_equal(
        clst_attest_request_parse(type_named("SevSnpVm"), body, strlen(body), &r, &err),
        CLST_E_MALFORMED);
    assert_non_null(strstr(err.msg, "unknown member"));
    free(body);
}

static void
test_snp_without_cache_needs_vcek(void **state)
{
    struct hw *h = *state;
    struct clst_err err = {0};
    h->f.clock.fixed = T_SNP;
    assert_int_equal(hw_engine(h, NULL, NULL, NULL, &err), CLST_OK);
    expect_refused(h, "SevSnpVm", SNP_REPORT, -1, CLST_E_VERIFY, NULL);
    /* And without collateral, DCAP types say how to enable them. */
    expect_refused(h, "SgxEnclave", SGX_QUOTE, -1, CLST_E_NOTFOUND, "--collateral");
    expect_refused(h, "Tpm", "tpm2/containers/gce-nonce9009-sha256.json", -1, CLST_E_NOTFOUND,
                   "--tpm-ak-roots");
    char summary[512];
    clst_attest_hardware_summary(h->f.a, summary, sizeof(summary));
    assert_non_null(strstr(summary, "SevSnpVm"));
    assert_non_null(strstr(summary, "SgxEnclave (--collateral)"));
    assert_non_null(strstr(summary, "Tpm (--tpm-ak-roots)"));
}

/* ---- Tpm ----------------------------------------------------------------------------------------
 */

static void
test_tpm_with_ak_roots(void **state)
{
    struct hw *h = *state;
    struct clst_attest_request r;
    struct clst_err err = {0};
    json_t *claims = NULL, *denial = NULL;
    char p[600], roots[600];
    size_t size = 0;
    /* The GCE vTPM AK root (DER in the vectors) as the PEM file --tpm-ak-roots takes. */
    vec_path("tpm2/go-tpm-tools-gce/tpm_ek_root_1.cer", p, sizeof(p));
    uint8_t *der = tu_read_file(p, &size);
    assert_non_null(der);
    X509 *root = NULL;
    assert_int_equal(clst_x509_from_der(der, size, &root, NULL), CLST_OK);
    snprintf(roots, sizeof(roots), "%s/tpm-roots.pem", h->f.dir);
    FILE *f = fopen(roots, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_X509(f, root), 1);
    assert_int_equal(fclose(f), 0);
    X509_free(root);
    free(der);

    h->f.clock.fixed = T_SNP;
    assert_int_equal(hw_engine(h, NULL, NULL, roots, &err), CLST_OK);
    hw_request(&r, "Tpm", "tpm2/containers/gce-nonce9009-sha256.json", -1);
    evaluate_ok(h, &r, &claims, &denial, &err);
    expect_str(claims, "x-ms-attestation-type", "tpm");
    assert_true(json_is_true(json_object_get(claims, "aikValidated")));
    expect_str(claims, "x-cloister-tpm-extra-data", "9009");
    json_decref(claims);
    claims = NULL;
    clst_attest_request_cleanup(&r);
    /* extraData (the nonce 9009) does not bind this runtime data. */
    hw_request(&r, "Tpm", "tpm2/containers/gce-nonce9009-sha256.json", -1);
    r.runtime_type = CLST_ATTEST_DATA_BINARY;
    assert_int_equal(clst_buf_append(&r.runtime_data, "x", 1), CLST_OK);
    assert_int_equal(evaluate(h, &r, &claims, &denial, &err), CLST_E_VERIFY);
    clst_attest_request_cleanup(&r);
    /* SHA-1 banks stay refused (no opt-in through the service). */
    expect_refused(h, "Tpm", "tpm2/containers/gce-nonce9009-sha1.json", -1, CLST_E_VERIFY, NULL);
    /* Another root: the AK chain does not verify. */
    assert_int_equal(hw_engine(h, NULL, NULL, roots, &err), CLST_OK);
    vec_path("sev-snp/go-sev-guest/ask_ark_milan.pem", p, sizeof(p));
    assert_int_equal(hw_engine(h, NULL, NULL, p, &err), CLST_OK);
    expect_refused(h, "Tpm", "tpm2/containers/gce-nonce9009-sha256.json", -1, CLST_E_VERIFY, NULL);
}

/* ---- NitroEnclave, AzureVm ---------------------------------------------------------------------
 */

static void
test_nitro(void **state)
{
    struct hw *h = *state;
    struct clst_attest_request r;
    struct clst_err err = {0};
    json_t *claims = NULL, *denial = NULL;
    hw_start(h, T_NITRO);
    hw_request(&r, "NitroEnclave", NITRO_DOC, -1);
    evaluate_ok(h, &r, &claims, &denial, &err);
    expect_str(claims, "x-ms-attestation-type", "nitro");
    expect_str(claims, "aws-nitro-pcr0",
               "e72a46ca80a260fb044a125442f0c7e331813bcbaf9724d9f3857758992766f2d65710a27aa94a"
               "e3949dd54e7c9fe86a");
    json_decref(claims);
    clst_attest_request_cleanup(&r);
    /* Hours later the leaf has expired. */
    h->f.clock.fixed = T_NITRO + 4 * 3600;
    expect_refused(h, "NitroEnclave", NITRO_DOC, -1, CLST_E_VERIFY, NULL);
}

static void
test_azurevm_availability(void **state)
{
    struct hw *h = *state;
    struct clst_attest_request r;
    struct clst_err err = {0};
    json_t *claims = NULL, *denial = NULL;
    hw_start(h, T_SNP);
    hw_request(&r, "AzureVm", SNP_REPORT, -1);
    enum clst_status st = evaluate(h, &r, &claims, &denial, &err);
    if (!clst_evidence_kind_supported(CLST_EVIDENCE_AZURE_VTPM)) {
        assert_int_equal(st, CLST_E_NOTFOUND);
        assert_non_null(strstr(err.msg, "not available in this build"));
        assert_null(claims);
        clst_attest_request_cleanup(&r);
        return;
    }
    /* A bare SNP report is not an HCL report container. */
    assert_true(st == CLST_E_MALFORMED || st == CLST_E_VERIFY || st == CLST_E_LIMIT);
    assert_null(claims);
    clst_attest_request_cleanup(&r);

    /* trustee's evidence-v1 (real Azure CVM, Milan; its VCEK inside) at 2026-01-01. */
    hw_start(h, T_AZURE);
    hw_request(&r, "AzureVm", "azure/evidence-v1.json", -1);
    evaluate_ok(h, &r, &claims, &denial, &err);
    expect_str(claims, "x-ms-attestation-type", "azurevm");
    const json_t *tee = json_object_get(claims, "x-ms-isolation-tee");
    expect_str(tee, "x-ms-attestation-type", "sevsnpvm");
    expect_str(tee, "x-ms-sevsnpvm-launchmeasurement",
               "6a063be9dd79f6371c842e480f8dc3b5c725961344e57130e88c5adf49e8f7f6c79b75a5eb77fc"
               "769959f4aeb2f9401e");
    assert_true(json_is_false(json_object_get(tee, "x-ms-sevsnpvm-is-debuggable")));
    json_decref(claims);
    claims = NULL;
    clst_attest_request_cleanup(&r);
    /* Runtime data that the vTPM nonce ("challenge") does not bind. */
    hw_request(&r, "AzureVm", "azure/evidence-v1.json", -1);
    r.runtime_type = CLST_ATTEST_DATA_BINARY;
    assert_int_equal(clst_buf_append(&r.runtime_data, "x", 1), CLST_OK);
    assert_int_equal(evaluate(h, &r, &claims, &denial, &err), CLST_E_VERIFY);
    clst_attest_request_cleanup(&r);
    /* Sent as SevSnpVm, the container is not an SNP report. */
    hw_request(&r, "SevSnpVm", "azure/evidence-v1.json", -1);
    assert_int_not_equal(evaluate(h, &r, &claims, &denial, &err), CLST_OK);
    assert_null(claims);
    clst_attest_request_cleanup(&r);
}

/* ---- sim and hardware never admit each other ------------------------------------------------- */

static void
test_sim_and_hardware_policies_are_disjoint(void **state)
{
    struct hw *h = *state;
    struct clst_err err = {0};
    struct clst_sim_identity id;
    struct clst_buf ev;
    struct clst_attest_request r;
    json_t *claims = NULL, *denial = NULL;
    char hash[CLST_POLICY_HASH_STR_SIZE];

    hw_start(h, FX_T0);
    fx_identity(&id, 0xc3, 1, false);
    fx_evidence(&h->f, &id, "", 0, &ev);
    fx_request(&r, &ev, CLST_ATTEST_DATA_NONE, NULL, NULL);
    assert_int_equal(evaluate(h, &r, &claims, &denial, &err), CLST_OK);
    expect_str(claims, "x-ms-attestation-type", "sim");
    /* Every hardware type's policy in force denies these sim claims. */
    for (size_t i = 0; i < clst_attest_type_count(); i++) {
        const struct clst_attest_type *t = clst_attest_type_at(i);
        if (t->kind == CLST_EVIDENCE_SIM) {
            continue;
        }
        json_t *d = NULL;
        pthread_rwlock_rdlock(&h->f.a->lock);
        enum clst_status st = attest_appraisal_check(h->f.a, i, claims, hash, &d, &err);
        pthread_rwlock_unlock(&h->f.a->lock);
        assert_int_equal(st, CLST_E_DENIED);
        assert_non_null(strstr(err.msg, "x-ms-attestation-type"));
        json_decref(d);
    }
    json_decref(claims);
    claims = NULL;
    clst_attest_request_cleanup(&r);
    clst_buf_cleanup(&ev);

    /* Real SGX claims under the sim policy: denied; and sim evidence sent as SgxEnclave. */
    hw_start(h, T_SGX);
    set_policy(h, "SgxEnclave", sgx_outofdate_policy);
    hw_request(&r, "SgxEnclave", SGX_QUOTE, -1);
    assert_int_equal(evaluate(h, &r, &claims, &denial, &err), CLST_OK);
    pthread_rwlock_rdlock(&h->f.a->lock);
    enum clst_status st = attest_appraisal_check(h->f.a, 0, claims, hash, &denial, &err);
    pthread_rwlock_unlock(&h->f.a->lock);
    assert_int_equal(st, CLST_E_DENIED);
    json_decref(denial);
    json_decref(claims);
    clst_attest_request_cleanup(&r);
}

/* ---- configuration errors ----------------------------------------------------------------------
 */

static void
test_config_errors(void **state)
{
    struct hw *h = *state;
    struct clst_err err = {0};
    char bad[600];
    clst_attest_free(h->f.a);
    h->f.a = NULL;
    /* A directory without any collateral set. */
    assert_int_equal(hw_engine(h, h->vcek, NULL, NULL, &err), CLST_E_NOTFOUND);
    assert_non_null(strstr(err.msg, "tcb_info.json"));
    /* A set missing a file. */
    snprintf(bad, sizeof(bad), "%s/coll/sgx/pck_crl.der", h->f.dir);
    assert_int_equal(unlink(bad), 0);
    assert_int_not_equal(hw_engine(h, h->coll, NULL, NULL, &err), CLST_OK);
    assert_non_null(strstr(err.msg, "pck_crl.der"));
    /* A VCEK cache with a file that is not a certificate. */
    snprintf(bad, sizeof(bad), "%s/junk.pem", h->vcek);
    FILE *fp = fopen(bad, "w");
    assert_non_null(fp);
    fputs("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", fp);
    fclose(fp);
    assert_int_not_equal(hw_engine(h, NULL, h->vcek, NULL, &err), CLST_OK);
    assert_non_null(strstr(err.msg, "junk.pem"));
    /* TPM roots: missing file, file without certificates. */
    assert_int_equal(hw_engine(h, NULL, NULL, "/nonexistent/roots.pem", &err), CLST_E_IO);
    snprintf(bad, sizeof(bad), "%s/empty.pem", h->f.dir);
    fp = fopen(bad, "w");
    assert_non_null(fp);
    fclose(fp);
    assert_int_not_equal(hw_engine(h, NULL, NULL, bad, &err), CLST_OK);
    assert_null(h->f.a);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sgx_default_policy_refuses_outofdate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sgx_policy_allows_outofdate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sgx_draft_policy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sgx_quote_is_not_other_types, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tdx_uptodate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snp_with_vcek_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snp_without_cache_needs_vcek, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snp_cloud_json_form, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tpm_with_ak_roots, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nitro, setup, teardown),
        cmocka_unit_test_setup_teardown(test_azurevm_availability, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sim_and_hardware_policies_are_disjoint, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_config_errors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
