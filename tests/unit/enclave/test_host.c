/*
 * Unit tests for src/enclave/host.c with real enclave processes: creation (and its refusals:
 * tampered or unsigned images, a missing loader, an unexpected signer), calls with inputs and
 * outputs larger than the ring, output capacities, unknown entry points, argument checks, main,
 * the pre-started loader, and how the host reports an enclave that exits, crashes, aborts, hangs,
 * or sends garbage, oversized, out-of-sequence or truncated frames: always an error for the
 * caller naming the entry point and the reason, never a hang; the enclave is then gone and later
 * calls fail with the same reason.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <sys/wait.h>

#include "encl_fixture.h"

struct fx {
    char dir[PATH_MAX];
    EVP_PKEY *key;
    char hello[PATH_MAX + 32];
    char bad[PATH_MAX + 32];
};

static int
setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    if (f == NULL) {
        return -1;
    }
    fx_tmpdir(f->dir, sizeof(f->dir));
    f->key = fx_ec_key(CLST_CURVE_P256);
    fx_sign("hello-enclave.so", f->dir, "hello.signed", f->key, 1, 1, false, 0, f->hello,
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
    EVP_PKEY_free(f->key);
    fx_rmdir(f->dir);
    free(f);
    return 0;
}

static void
test_calls(void **state)
{
    struct fx *f = *state;
    struct clst_host_options o;
    char out[256];
    size_t n = 0;
    fx_options(&o);
    struct clst_host_enclave *e = fx_create(f->hello, &o);
    assert_true(clst_host_enclave_alive(e));
    assert_true(clst_host_enclave_pid(e) > 0);
    fx_call_expect(e, "hello", "ann", 3, out, sizeof(out), &n, CLST_OK, NULL);
    assert_true(n > 0 && n < sizeof(out));
    out[n] = '\0';
    assert_non_null(strstr(out, "hello, ann, from enclave "));
    fx_call_expect(e, "null", NULL, 0, NULL, 0, &n, CLST_OK, NULL);
    assert_int_equal(n, 0);
    /* The entry point's own failure keeps the enclave alive. */
    fx_call_expect(e, "echo", "0123456789", 10, out, 5, &n, CLST_E_LIMIT, "do not fit");
    fx_call_expect(e, "echo", "0123456789", 10, out, 10, &n, CLST_OK, NULL);
    assert_memory_equal(out, "0123456789", 10);
    fx_call_expect(e, "nope", NULL, 0, NULL, 0, NULL, CLST_E_NOTFOUND, "it has: hello, null");
    /* The identity the host measured is what the enclave reports. */
    fx_call_expect(e, "identity", NULL, 0, out, sizeof(out), &n, CLST_OK, NULL);
    assert_int_equal(n, 85);
    struct clst_enclave_identity m;
    struct clst_err err = {0};
    assert_int_equal(clst_host_image_measure(f->hello, &m, &err), CLST_OK);
    assert_memory_equal(out, m.mrenclave, 48);
    assert_memory_equal(out + 48, m.mrsigner, 32);
    assert_memory_equal(clst_host_enclave_identity(e), &m, sizeof(m));
    struct clst_host_stats st;
    clst_host_enclave_stats(e, &st);
    assert_int_equal(st.calls, 5); /* "nope" never reached the enclave */
    /* Memory is locked when we may (root); otherwise we are told why. */
    const char *why = NULL;
    bool locked = clst_host_enclave_memory_locked(e, &why);
    assert_non_null(why);
    if (geteuid() == 0 && strstr(why, "sanitizers") == NULL) {
        assert_true(locked); /* sanitizer builds do not lock, and say so */
    }
    clst_host_enclave_destroy(e);
}

static void
test_arguments(void **state)
{
    struct fx *f = *state;
    struct clst_host_options o;
    struct clst_err err = {0};
    uint8_t b[8];
    fx_options(&o);
    o.max_message_size = 4096;
    struct clst_host_enclave *e = fx_create(f->hello, &o);
    assert_int_equal(clst_host_enclave_call(e, "bad name", b, 1, NULL, 0, NULL, &err),
                     CLST_E_INVAL);
    assert_int_equal(clst_host_enclave_call(e, "echo", NULL, 1, NULL, 0, NULL, &err), CLST_E_INVAL);
    assert_int_equal(clst_host_enclave_call(e, "echo", b, 1, NULL, 4, NULL, &err), CLST_E_INVAL);
    uint8_t *big = calloc(1, 4097);
    assert_non_null(big);
    assert_int_equal(clst_host_enclave_call(e, "echo", big, 4097, NULL, 0, NULL, &err),
                     CLST_E_LIMIT);
    assert_int_equal(clst_host_enclave_call(e, "echo", big, 4096, big, 4096, NULL, &err), CLST_OK);
    free(big);
    assert_true(clst_host_enclave_alive(e));
    clst_host_enclave_destroy(e);
    /* Options are checked. */
    struct clst_host_enclave *x = NULL;
    fx_options(&o);
    o.ring_size = 100000;
    assert_int_equal(clst_host_enclave_create(f->hello, &o, &x, &err), CLST_E_INVAL);
    fx_options(&o);
    o.spin_us = 0;
    assert_int_equal(clst_host_enclave_create(f->hello, &o, &x, &err), CLST_E_INVAL);
    assert_null(x);
}

static void
test_large_messages_small_ring(void **state)
{
    struct fx *f = *state;
    struct clst_host_options o;
    fx_options(&o);
    o.ring_size = CLST_HOST_RING_MIN_SIZE; /* 64 KiB: a 1 MiB message streams through it */
    size_t n = 1024 * 1024 + 17, got = 0;
    uint8_t *in = malloc(n), *out = malloc(n);
    assert_non_null(in);
    assert_non_null(out);
    for (size_t i = 0; i < n; i++) {
        in[i] = (uint8_t)(i * 2654435761u >> 13);
    }
    struct clst_host_enclave *e = fx_create(f->hello, &o);
    fx_call_expect(e, "echo", in, n, out, n, &got, CLST_OK, NULL);
    assert_int_equal(got, n);
    assert_memory_equal(in, out, n);
    uint8_t len[8];
    fx_call_expect(e, "sink", in, n, len, sizeof(len), &got, CLST_OK, NULL);
    assert_int_equal(got, 8);
    assert_int_equal(len[0] | len[1] << 8 | len[2] << 16 | len[3] << 24, n);
    clst_host_enclave_destroy(e);
    free(in);
    free(out);
}

/* Writes a copy of the signed hello enclave with one bit of its code flipped. */
static void
write_tampered(const struct fx *f, char *path, size_t cap)
{
    FILE *in = fopen(f->hello, "rb");
    assert_non_null(in);
    uint8_t *b = malloc(4 << 20);
    assert_non_null(b);
    size_t n = fread(b, 1, 4 << 20, in);
    fclose(in);
    assert_true(n > 1000);
    b[1000] ^= 1;
    fx_fmt(path, cap, "%s/tampered.so", f->dir);
    FILE *out = fopen(path, "wb");
    assert_non_null(out);
    assert_int_equal(fwrite(b, 1, n, out), n);
    fclose(out);
    free(b);
}

/* The processes this test program has started and not reaped (any thread's children). */
static int
count_children(void)
{
    char path[64], buf[4096];
    int count = 0;
    DIR *d = opendir("/proc/self/task");
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.') {
            continue;
        }
        fx_fmt(path, sizeof(path), "/proc/self/task/%s/children", de->d_name);
        FILE *c = fopen(path, "r");
        if (c == NULL) {
            continue;
        }
        size_t n = fread(buf, 1, sizeof(buf) - 1, c);
        fclose(c);
        buf[n] = '\0';
        for (char *t = strtok(buf, " \n"); t != NULL; t = strtok(NULL, " \n")) {
            count++;
        }
    }
    closedir(d);
    return count;
}

static void
test_refusals(void **state)
{
    struct fx *f = *state;
    struct clst_host_options o;
    struct clst_host_enclave *e = NULL;
    struct clst_err err = {0};
    char path[PATH_MAX + 32], src[PATH_MAX];
    fx_options(&o);
    /* A tampered image is never started. */
    write_tampered(f, path, sizeof(path));
    assert_int_equal(clst_host_enclave_create(path, &o, &e, &err), CLST_E_VERIFY);
    assert_non_null(strstr(err.msg, "modified after signing"));
    assert_null(e);
    /* Unsigned. */
    fx_require_build_file("hello-enclave.so", src, sizeof(src));
    assert_int_equal(clst_host_enclave_create(src, &o, &e, &err), CLST_E_NOTFOUND);
    assert_non_null(strstr(err.msg, "not signed"));
    /* An unexpected signer. */
    uint8_t other[32] = {1};
    o.expect_mrsigner = other;
    assert_int_equal(clst_host_enclave_create(f->hello, &o, &e, &err), CLST_E_VERIFY);
    assert_non_null(strstr(err.msg, "unexpected signer"));
    /* No loader. */
    fx_options(&o);
    o.loader_path = "/nonexistent/cloister-enclave-loader";
    assert_int_equal(clst_host_enclave_create(f->hello, &o, &e, &err), CLST_E_NOTFOUND);
    assert_non_null(strstr(err.msg, "enclave loader"));
    /* A loader that is not our loader (exits at once): a clear failure, not a hang. */
    o.loader_path = "/bin/true";
    o.start_timeout_ms = 5000;
    assert_int_equal(clst_host_enclave_create(f->hello, &o, &e, &err), CLST_E_IO);
    assert_non_null(strstr(err.msg, "starting the enclave"));
}

static void
test_main(void **state)
{
    struct fx *f = *state;
    struct clst_host_options o;
    struct clst_err err = {0};
    char *const argv[] = {(char *)"hello", (char *)"greet", (char *)"tester", NULL};
    int pipefd[2], code = -1;
    char buf[512];
    fx_options(&o);
    struct clst_host_enclave *e = fx_create(f->hello, &o);
    assert_true(clst_host_enclave_has_entry(e, CLST_ENCLAVE_MAIN_ENTRY));
    assert_int_equal(pipe(pipefd), 0);
    assert_int_equal(clst_host_file_add_fd(e, "stdout", pipefd[1], CLST_ENCLAVE_FILE_WRITE, &err),
                     CLST_OK);
    assert_int_equal(clst_host_enclave_run_main(e, 3, argv, &code, &err), CLST_OK);
    assert_int_equal(code, 0);
    close(pipefd[1]);
    ssize_t n = read(pipefd[0], buf, sizeof(buf) - 1);
    assert_true(n > 0);
    buf[n] = '\0';
    assert_non_null(strstr(buf, "hello, tester, from inside the enclave"));
    close(pipefd[0]);
    char *const bad[] = {(char *)"hello", (char *)"nonsense", NULL};
    assert_int_equal(clst_host_enclave_run_main(e, 2, bad, &code, &err), CLST_OK);
    assert_int_equal(code, 2);
    clst_host_enclave_destroy(e);
}

static void
test_prewarm(void **state)
{
    struct fx *f = *state;
    struct clst_host_options o;
    struct clst_err err = {0};
    char out[64];
    fx_options(&o);
    o.prewarm = true;
    assert_int_equal(clst_host_prewarm(&o, &err), CLST_OK);
    for (int i = 0; i < 3; i++) {
        struct clst_host_enclave *e = fx_create(f->hello, &o);
        fx_call_expect(e, "hello", "x", 1, out, sizeof(out), NULL, CLST_OK, NULL);
        clst_host_enclave_destroy(e);
    }
    /* A spare for another configuration is not used (and is replaced). */
    o.keep_stderr = true;
    assert_int_equal(clst_host_prewarm(&o, &err), CLST_OK);
    o.keep_stderr = false;
    o.prewarm = false;
    struct clst_host_enclave *e = fx_create(f->hello, &o);
    fx_call_expect(e, "null", NULL, 0, NULL, 0, NULL, CLST_OK, NULL);
    clst_host_enclave_destroy(e);
}

/*
 * A creation starts its loader before it verifies the image (the two overlap): a refused image
 * must leave no process behind, and must not use up a pre-started loader the application asked
 * for.
 */
static void
test_refusal_leaves_no_loader(void **state)
{
    struct fx *f = *state;
    struct clst_host_options o;
    struct clst_host_enclave *e = NULL;
    struct clst_err err = {0};
    char path[PATH_MAX + 32];
    char out[64];
    fx_options(&o);
    write_tampered(f, path, sizeof(path));
    assert_int_equal(count_children(), 0);
    /* Cold: the loader started for the creation is ended and reaped. */
    assert_int_equal(clst_host_enclave_create(path, &o, &e, &err), CLST_E_VERIFY);
    assert_null(e);
    assert_int_equal(count_children(), 0);
    uint8_t other[32] = {1};
    o.expect_mrsigner = other;
    assert_int_equal(clst_host_enclave_create(f->hello, &o, &e, &err), CLST_E_VERIFY);
    assert_int_equal(count_children(), 0);
    o.expect_mrsigner = NULL;
    /* Warm: the spare survives the refusal and serves the next creation. */
    assert_int_equal(clst_host_prewarm(&o, &err), CLST_OK);
    assert_int_equal(count_children(), 1);
    assert_int_equal(clst_host_enclave_create(path, &o, &e, &err), CLST_E_VERIFY);
    assert_int_equal(count_children(), 1);
    e = fx_create(f->hello, &o);
    assert_int_equal(count_children(), 1); /* the spare became this enclave */
    fx_call_expect(e, "hello", "x", 1, out, sizeof(out), NULL, CLST_OK, NULL);
    clst_host_enclave_destroy(e);
    assert_int_equal(count_children(), 0);
}

/* Calls `entry` of the misbehaving enclave and checks the failure and the enclave's end. */
static void
expect_death_cap(struct fx *f, const char *entry, uint32_t timeout_ms, size_t out_cap,
                 enum clst_status want, const char *msg1, const char *msg2)
{
    struct clst_host_options o;
    struct clst_err err = {0};
    uint8_t out[256], in[4];
    assert_true(out_cap <= sizeof(out));
    fx_options(&o);
    o.call_timeout_ms = timeout_ms;
    struct clst_host_enclave *e = fx_create(f->bad, &o);
    int pid = clst_host_enclave_pid(e);
    assert_true(pid > 0);
    memset(in, 0, sizeof(in));
    in[0] = 1; /* the seq of the first call, for frames that want to look plausible */
    uint64_t t0 = clst_monotonic_ns();
    enum clst_status st =
        clst_host_enclave_call(e, entry, in, sizeof(in), out, out_cap, NULL, &err);
    uint64_t ms = (clst_monotonic_ns() - t0) / 1000000;
    if (st != want) {
        fail_msg("%s: want %s, got %s: %s", entry, clst_status_str(want), clst_status_str(st),
                 err.msg);
    }
    char what[128];
    fx_fmt(what, sizeof(what), "entry point '%s'", entry);
    if (strstr(err.msg, what) == NULL || strstr(err.msg, msg1) == NULL ||
        (msg2 != NULL && strstr(err.msg, msg2) == NULL)) {
        fail_msg("%s: message '%s' lacks '%s' / '%s' / '%s'", entry, err.msg, what, msg1,
                 msg2 ? msg2 : "");
    }
    assert_true(ms < 10000);
    /* The process is gone (reaped) and later calls fail with the same reason. */
    assert_false(clst_host_enclave_alive(e));
    assert_int_equal(clst_host_enclave_pid(e), -1);
    assert_int_equal(kill(pid, 0), -1);
    assert_int_equal(errno, ESRCH);
    struct clst_err again = {0};
    assert_int_equal(clst_host_enclave_call(e, "fail", NULL, 0, NULL, 0, NULL, &again), want);
    assert_non_null(strstr(again.msg, "no longer running"));
    assert_non_null(strstr(again.msg, msg1));
    clst_host_enclave_destroy(e);
}

static void
expect_death(struct fx *f, const char *entry, uint32_t timeout_ms, enum clst_status want,
             const char *msg1, const char *msg2)
{
    expect_death_cap(f, entry, timeout_ms, 128, want, msg1, msg2);
}

static void
test_enclave_deaths(void **state)
{
    struct fx *f = *state;
    expect_death(f, "exit", 10000, CLST_E_IO, "exited with status 7", NULL);
    expect_death(f, "crash", 10000, CLST_E_IO, "SIGSEGV", NULL);
    expect_death(f, "abort", 10000, CLST_E_IO, "SIGABRT", NULL);
    expect_death(f, "hang", 300, CLST_E_LIMIT, "did not answer within 300 ms", "terminated");
}

static void
test_enclave_sends_bad_frames(void **state)
{
    struct fx *f = *state;
    expect_death(f, "garbage", 10000, CLST_E_MALFORMED, "bad magic", "terminated");
    expect_death(f, "oversized", 10000, CLST_E_LIMIT, "exceeds the limit", "terminated");
    expect_death(f, "bad_seq", 10000, CLST_E_MALFORMED, "unexpected RETURN", NULL);
    /* More output than the call allows is refused before a byte of it is read. */
    expect_death_cap(f, "truncated_spin", 10000, 64, CLST_E_LIMIT,
                     "returned 100 bytes for an output of 64", "terminated");
    /* A header promising a payload that never comes: the enclave then makes a forbidden call. */
    expect_death(f, "truncated", 10000, CLST_E_IO, "killed by the sandbox", "pause");
}

static void
test_recoverable_failures(void **state)
{
    struct fx *f = *state;
    struct clst_host_options o;
    uint8_t out[16];
    fx_options(&o);
    struct clst_host_enclave *e = fx_create(f->bad, &o);
    fx_call_expect(e, "fail", NULL, 0, NULL, 0, NULL, CLST_E_DENIED, "custom failure 42");
    fx_call_expect(e, "bigout", NULL, 0, out, sizeof(out), NULL, CLST_E_LIMIT,
                   "claimed 17 bytes of output for a capacity of 16");
    fx_call_expect(e, "time", NULL, 0, out, sizeof(out), NULL, CLST_OK, NULL);
    fx_call_expect(e, "qsort", NULL, 0, NULL, 0, NULL, CLST_OK, NULL);
    assert_true(clst_host_enclave_alive(e));
    clst_host_enclave_destroy(e);
}

static void
test_destroy_reaps(void **state)
{
    struct fx *f = *state;
    struct clst_host_options o;
    fx_options(&o);
    struct clst_host_enclave *e = fx_create(f->hello, &o);
    int pid = clst_host_enclave_pid(e);
    clst_host_enclave_destroy(e);
    assert_int_equal(kill(pid, 0), -1);
    assert_int_equal(errno, ESRCH);
    clst_host_enclave_destroy(NULL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_calls),
        cmocka_unit_test(test_arguments),
        cmocka_unit_test(test_large_messages_small_ring),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_main),
        cmocka_unit_test(test_refusal_leaves_no_loader), /* before any opts.prewarm */
        cmocka_unit_test(test_prewarm),
        cmocka_unit_test(test_enclave_deaths),
        cmocka_unit_test(test_enclave_sends_bad_frames),
        cmocka_unit_test(test_recoverable_failures),
        cmocka_unit_test(test_destroy_reaps),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
