/*
 * Unit tests for src/enclave/host_services.c with real enclaves: files offered by name (copied
 * through the enclave byte for byte; wrong modes, unknown names and bad handles refused), the
 * clock, logging, sim evidence made by the host as platform with the enclave's measured identity
 * (verified against the platform root, with report data and runtime-data binding), evidence and
 * sealing without a platform, services registered by the host (replies, failures, names that may
 * not be registered, replies larger than the enclave asked for), and a service slower than the
 * enclave's service timeout (the enclave gets an error, the late reply is discarded).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <time.h>

#include "encl_fixture.h"

struct fx {
    char dir[PATH_MAX];
    char platform_dir[PATH_MAX + 16];
    struct clst_sim_platform *platform;
    EVP_PKEY *key;
    char hello[PATH_MAX + 32];
    char bad[PATH_MAX + 32];
};

static int
setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    struct clst_err err = {0};
    if (f == NULL) {
        return -1;
    }
    fx_tmpdir(f->dir, sizeof(f->dir));
    fx_fmt(f->platform_dir, sizeof(f->platform_dir), "%s/plat", f->dir);
    if (clst_evidence_sim_platform_create(f->platform_dir, clst_clock_now(clst_clock_system()),
                                          false, &err) != CLST_OK ||
        clst_evidence_sim_platform_load(f->platform_dir, &f->platform, &err) != CLST_OK) {
        fprintf(stderr, "sim platform: %s\n", err.msg);
        return -1;
    }
    f->key = fx_ec_key(CLST_CURVE_P256);
    fx_sign("hello-enclave.so", f->dir, "hello.signed", f->key, 4, 2, false, 0, f->hello,
            sizeof(f->hello));
    fx_sign("misbehave-enclave.so", f->dir, "bad.signed", f->key, 1, 1, false, 0, f->bad,
            sizeof(f->bad));
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;
    clst_evidence_sim_platform_free(f->platform);
    EVP_PKEY_free(f->key);
    fx_rmdir(f->dir);
    free(f);
    return 0;
}

static void
test_files(void **state)
{
    struct fx *f = *state;
    struct clst_host_options o;
    struct clst_err err = {0};
    char in[PATH_MAX + 16], out[PATH_MAX + 16];
    size_t n = 300000;
    uint8_t *data = malloc(n);
    assert_non_null(data);
    for (size_t i = 0; i < n; i++) {
        data[i] = (uint8_t)(i * 7 + (i >> 9));
    }
    fx_fmt(in, sizeof(in), "%s/in.bin", f->dir);
    fx_fmt(out, sizeof(out), "%s/out.bin", f->dir);
    FILE *fp = fopen(in, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, n, fp), n);
    fclose(fp);
    fx_options(&o);
    struct clst_host_enclave *e = fx_create(f->bad, &o);
    /* Nothing offered yet. */
    fx_call_expect(e, "copy", NULL, 0, NULL, 0, NULL, CLST_E_NOTFOUND, "no file named 'in'");
    assert_int_equal(clst_host_file_add(e, "in", in, CLST_ENCLAVE_FILE_READ, &err), CLST_OK);
    assert_int_equal(clst_host_file_add(e, "out", out, CLST_ENCLAVE_FILE_WRITE, &err), CLST_OK);
    assert_int_equal(clst_host_file_add(e, "in", in, CLST_ENCLAVE_FILE_READ, &err),
                     CLST_E_CONFLICT);
    assert_int_equal(clst_host_file_add(e, "bad/name", in, CLST_ENCLAVE_FILE_READ, &err),
                     CLST_E_INVAL);
    assert_int_equal(clst_host_file_add(e, "x", "/nonexistent/file", CLST_ENCLAVE_FILE_READ, &err),
                     CLST_E_NOTFOUND);
    fx_call_expect(e, "copy", NULL, 0, NULL, 0, NULL, CLST_OK, NULL);
    size_t got;
    uint8_t *back = NULL;
    fp = fopen(out, "rb");
    assert_non_null(fp);
    back = malloc(n + 1);
    assert_non_null(back);
    got = fread(back, 1, n + 1, fp);
    fclose(fp);
    assert_int_equal(got, n);
    assert_memory_equal(back, data, n);
    struct stat st;
    assert_int_equal(stat(out, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    /* Raw requests through the generic host call: wrong mode, bad handles, junk. */
    uint8_t req[64];
    size_t rn = strlen(SVC_FILE_OPEN) + 1;
    memcpy(req, SVC_FILE_OPEN, rn);
    clst_put_le32(req + rn, CLST_ENCLAVE_FILE_WRITE);
    memcpy(req + rn + 4, "in", 2);
    fx_call_expect(e, "ocall", req, rn + 6, NULL, 0, NULL, CLST_E_DENIED, "for reading only");
    rn = strlen(SVC_FILE_READ) + 1;
    memcpy(req, SVC_FILE_READ, rn);
    clst_put_le32(req + rn, 99);
    clst_put_le32(req + rn + 4, 10);
    uint8_t buf[16];
    fx_call_expect(e, "ocall", req, rn + 8, buf, sizeof(buf), NULL, CLST_E_NOTFOUND,
                   "no open file with handle 99");
    clst_put_le32(req + rn, 2); /* "out" is write-only */
    fx_call_expect(e, "ocall", req, rn + 8, buf, sizeof(buf), NULL, CLST_E_DENIED,
                   "for writing only");
    fx_call_expect(e, "ocall", req, rn + 3, buf, sizeof(buf), NULL, CLST_E_MALFORMED, "8 bytes");
    assert_true(clst_host_enclave_alive(e));
    clst_host_enclave_destroy(e);
    free(data);
    free(back);
}

static void
test_time_and_log(void **state)
{
    struct fx *f = *state;
    struct clst_host_options o;
    uint8_t out[8];
    int64_t t;
    fx_options(&o);
    struct clst_host_enclave *e = fx_create(f->bad, &o);
    fx_call_expect(e, "time", NULL, 0, out, sizeof(out), NULL, CLST_OK, NULL);
    memcpy(&t, out, 8);
    int64_t now = (int64_t)time(NULL);
    assert_true(t >= now - 5 && t <= now + 5);
    uint8_t req[64];
    size_t rn = strlen(SVC_LOG) + 1;
    memcpy(req, SVC_LOG, rn);
    req[rn] = CLST_LOG_DEBUG;
    memcpy(req + rn + 1, "log line", 8);
    fx_call_expect(e, "ocall", req, rn + 9, NULL, 0, NULL, CLST_OK, NULL);
    req[rn] = 7;
    fx_call_expect(e, "ocall", req, rn + 9, NULL, 0, NULL, CLST_E_MALFORMED, "unknown level");
    clst_host_enclave_destroy(e);
}

static void
test_evidence(void **state)
{
    struct fx *f = *state;
    struct clst_host_options o;
    struct clst_err err = {0};
    uint8_t rd[64], ev[CLST_ENCLAVE_EVIDENCE_MAX_SIZE];
    size_t n = 0;
    for (int i = 0; i < 64; i++) {
        rd[i] = (uint8_t)(0xa0 + i);
    }
    fx_options(&o);
    /* Without a platform: a clear refusal. */
    struct clst_host_enclave *e = fx_create(f->hello, &o);
    fx_call_expect(e, "evidence", rd, 64, ev, sizeof(ev), NULL, CLST_E_NOTFOUND,
                   "cloister sim init");
    uint8_t seal_in[4] = {CLST_SEAL_TO_SIGNER, 'a', 'b', 'c'};
    fx_call_expect(e, "seal", seal_in, 4, ev, sizeof(ev), NULL, CLST_E_NOTFOUND, "sim platform");
    clst_host_enclave_destroy(e);

    o.platform = f->platform;
    e = fx_create(f->hello, &o);
    fx_call_expect(e, "evidence", rd, 64, ev, sizeof(ev), &n, CLST_OK, NULL);
    /* A verifier trusting this platform's root accepts it, with our identity in it. */
    STACK_OF(X509) *roots = sk_X509_new_null();
    assert_non_null(roots);
    assert_int_equal(sk_X509_push(roots, clst_evidence_sim_platform_root(f->platform)), 1);
    struct clst_evidence_input in = {.evidence = ev,
                                     .evidence_size = n,
                                     .report_data = rd,
                                     .report_data_size = 64,
                                     .roots = roots,
                                     .at = clst_clock_now(clst_clock_system())};
    json_t *claims = NULL;
    if (clst_evidence_verify(CLST_EVIDENCE_SIM, &in, &claims, &err) != CLST_OK) {
        fail_msg("evidence verify: %s", err.msg);
    }
    char mre[97];
    assert_int_equal(
        clst_hex_to_str(clst_host_enclave_identity(e)->mrenclave, 48, mre, sizeof(mre)), CLST_OK);
    assert_string_equal(json_string_value(json_object_get(claims, CLST_SIM_CLAIM_MRENCLAVE)), mre);
    assert_int_equal(json_integer_value(json_object_get(claims, CLST_SIM_CLAIM_PRODUCT_ID)), 4);
    assert_int_equal(json_integer_value(json_object_get(claims, CLST_SIM_CLAIM_SVN)), 2);
    assert_true(json_is_false(json_object_get(claims, CLST_SIM_CLAIM_IS_DEBUGGABLE)));
    json_decref(claims);
    /* Other report data does not verify. */
    rd[0] ^= 1;
    assert_int_equal(clst_evidence_verify(CLST_EVIDENCE_SIM, &in, &claims, &err), CLST_E_VERIFY);
    rd[0] ^= 1;
    /* Report data of the wrong size, and too little room for the reply. */
    fx_call_expect(e, "evidence", rd, 63, ev, sizeof(ev), NULL, CLST_E_INVAL, "64 bytes");
    fx_call_expect(e, "evidence", rd, 64, ev, 100, NULL, CLST_E_LIMIT, NULL);
    sk_X509_free(roots);
    clst_host_enclave_destroy(e);
}

static enum clst_status
svc_upper(void *ctx, const uint8_t *in, size_t in_size, struct clst_buf *out, struct clst_err *err)
{
    (*(int *)ctx)++;
    if (in_size > 0 && in[0] == '!') {
        return clst_err_set(err, CLST_E_DENIED, "the service says no");
    }
    for (size_t i = 0; i < in_size; i++) {
        uint8_t c = in[i];
        enum clst_status st =
            clst_buf_append_byte(out, (c >= 'a' && c <= 'z') ? (uint8_t)(c - 32) : c);
        if (st != CLST_OK) {
            return clst_err_set(err, st, "reply does not fit");
        }
    }
    return CLST_OK;
}

static enum clst_status
svc_slow(void *ctx, const uint8_t *in, size_t in_size, struct clst_buf *out, struct clst_err *err)
{
    (void)ctx, (void)in, (void)in_size, (void)err;
    struct timespec ts = {0, 300 * 1000 * 1000};
    nanosleep(&ts, NULL);
    return clst_buf_append(out, "late", 4);
}

static void
test_user_services(void **state)
{
    struct fx *f = *state;
    struct clst_host_options o;
    struct clst_err err = {0};
    int calls = 0;
    struct clst_host_service up = {svc_upper, &calls}, slow = {svc_slow, NULL};
    uint8_t req[64], out[64];
    size_t n = 0;
    fx_options(&o);
    o.service_timeout_ms = 100;
    struct clst_host_enclave *e = fx_create(f->bad, &o);
    assert_int_equal(clst_host_service_register(e, "upper", &up, &err), CLST_OK);
    assert_int_equal(clst_host_service_register(e, "upper", &up, &err), CLST_E_CONFLICT);
    assert_int_equal(clst_host_service_register(e, SVC_LOG, &up, &err), CLST_E_CONFLICT);
    assert_int_equal(clst_host_service_register(e, "clst.platform.x", &up, &err), CLST_E_CONFLICT);
    assert_int_equal(clst_host_service_register(e, "no spaces", &up, &err), CLST_E_INVAL);
    assert_int_equal(clst_host_service_register(e, "slow", &slow, &err), CLST_OK);
    memcpy(req, "upper\0hello", 11);
    fx_call_expect(e, "ocall", req, 11, out, sizeof(out), &n, CLST_OK, NULL);
    assert_int_equal(n, 5);
    assert_memory_equal(out, "HELLO", 5);
    memcpy(req, "upper\0!no", 9);
    fx_call_expect(e, "ocall", req, 9, out, sizeof(out), NULL, CLST_E_DENIED,
                   "host service 'upper': the service says no");
    /* The enclave asked for 3 bytes: the reply is capped on the host side. */
    memcpy(req, "upper\0hello", 11);
    fx_call_expect(e, "ocall", req, 11, out, 3, NULL, CLST_E_LIMIT, "does not fit");
    memcpy(req, "nosuch\0x", 8);
    fx_call_expect(e, "ocall", req, 8, out, sizeof(out), NULL, CLST_E_NOTFOUND,
                   "no service named 'nosuch'");
    assert_int_equal(calls, 3);
    /* A slow service: the enclave stops waiting at its timeout; the late reply is dropped and
     * the enclave keeps working. */
    memcpy(req, "slow\0", 5);
    fx_call_expect(e, "ocall", req, 5, out, sizeof(out), NULL, CLST_E_LIMIT,
                   "did not answer within 100 ms");
    memcpy(req, "upper\0again", 11);
    fx_call_expect(e, "ocall", req, 11, out, sizeof(out), &n, CLST_OK, NULL);
    assert_memory_equal(out, "AGAIN", 5);
    clst_host_enclave_destroy(e);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_files),
        cmocka_unit_test(test_time_and_log),
        cmocka_unit_test(test_evidence),
        cmocka_unit_test(test_user_services),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
