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
#include <grp.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>

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

/* The processes this test program has started and not reaped (any thread's children); their
 * pids go to pids[0..cap) when pids is not NULL. */
static int
list_children(int *pids, int cap)
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
            if (pids != NULL && count < cap) {
                pids[count] = atoi(t);
            }
            count++;
        }
    }
    closedir(d);
    return count;
}

static int
count_children(void)
{
    return list_children(NULL, 0);
}

/* The pid of our child process named `comm`, or -1. */
static int
child_named(const char *comm)
{
    int pids[16];
    int n = list_children(pids, 16);
    for (int i = 0; i < n && i < 16; i++) {
        char path[64], name[32] = "";
        fx_fmt(path, sizeof(path), "/proc/%d/comm", pids[i]);
        FILE *c = fopen(path, "r");
        if (c == NULL) {
            continue;
        }
        if (fgets(name, sizeof(name), c) != NULL) {
            name[strcspn(name, "\n")] = '\0';
        }
        fclose(c);
        if (strcmp(name, comm) == 0) {
            return pids[i];
        }
    }
    return -1;
}

/* Whether /proc/PID/cmdline (readable even for a non-dumpable process) contains s. */
static bool
cmdline_has(int pid, const char *s)
{
    char path[64], buf[512];
    fx_fmt(path, sizeof(path), "/proc/%d/cmdline", pid);
    FILE *c = fopen(path, "r");
    assert_non_null(c);
    size_t n = fread(buf, 1, sizeof(buf), c);
    fclose(c);
    return memmem(buf, n, s, strlen(s)) != NULL;
}

/* The number after "key:" in /proc/PID/status (readable even for a non-dumpable process), or -1.
 * Plain stdio, no assertions: usable in a forked child. */
static long
status_number(int pid, const char *key)
{
    char path[64], line[256];
    long v = -1;
    size_t klen = strlen(key);
    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    FILE *c = fopen(path, "r");
    if (c == NULL) {
        return -1;
    }
    while (fgets(line, sizeof(line), c) != NULL) {
        if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
            v = strtol(line + klen + 1, NULL, 10);
            break;
        }
    }
    fclose(c);
    return v;
}

/* The parent of process pid. */
static int
parent_of(int pid)
{
    return (int)status_number(pid, "PPid");
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
    o.keep_stderr = !o.keep_stderr;
    assert_int_equal(clst_host_prewarm(&o, &err), CLST_OK);
    o.keep_stderr = !o.keep_stderr;
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
    clst_host_release(); /* the template the earlier tests started */
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
    /* Warm: the spare (forked from the template, which prewarming starts) survives the refusal
     * and serves the next creation. */
    assert_int_equal(clst_host_prewarm(&o, &err), CLST_OK);
    assert_int_equal(count_children(), 2);
    assert_int_equal(clst_host_enclave_create(path, &o, &e, &err), CLST_E_VERIFY);
    assert_int_equal(count_children(), 2);
    e = fx_create(f->hello, &o);
    assert_int_equal(count_children(), 2); /* the spare became this enclave */
    fx_call_expect(e, "hello", "x", 1, out, sizeof(out), NULL, CLST_OK, NULL);
    clst_host_enclave_destroy(e);
    assert_int_equal(count_children(), 1); /* the template */
    /* A refused image asked of the template: its loader is ended and reaped too. */
    assert_int_equal(clst_host_enclave_create(path, &o, &e, &err), CLST_E_VERIFY);
    assert_int_equal(count_children(), 1);
    clst_host_release();
    assert_int_equal(count_children(), 0);
}

/*
 * Loaders forked from the process's template (docs/enclaves.md, 4): our own children (so that we
 * reap them and read how they died), each its own process, with DRBGs that are not shared. A
 * template that dies is replaced; a fresh_process loader does not use it.
 */
static void
test_template(void **state)
{
    struct fx *f = *state;
    struct clst_host_options o;
    uint8_t ra[64], rb[64], ra2[64];
    fx_options(&o);
    clst_host_release();
    assert_int_equal(count_children(), 0);
    /* The first creation in a process does not wait for a template; it starts one afterwards. */
    struct clst_host_enclave *a = fx_create(f->bad, &o);
    for (int i = 0; i < 500 && child_named("clst-encl-tmpl") < 0; i++) {
        usleep(10 * 1000);
    }
    int tpid = child_named("clst-encl-tmpl");
    assert_true(tpid > 0);
    assert_int_equal(parent_of(tpid), getpid());
    struct clst_host_enclave *b = fx_create(f->bad, &o);
    struct clst_host_enclave *c = fx_create(f->bad, &o);
    assert_int_equal(count_children(), 4);
    int pb = clst_host_enclave_pid(b), pc = clst_host_enclave_pid(c);
    assert_true(pb != pc && pb != tpid && pc != tpid);
    assert_int_equal(parent_of(pb), getpid());
    assert_int_equal(parent_of(pc), getpid());
    /* Forked (the template's command line), not exec'ed. */
    assert_true(cmdline_has(pb, ENCL_TEMPLATE_MARKER));
    assert_true(cmdline_has(pc, ENCL_TEMPLATE_MARKER));
    /* Siblings forked from one template draw different bytes from both DRBGs. */
    fx_call_expect(b, "random", NULL, 0, rb, sizeof(rb), NULL, CLST_OK, NULL);
    fx_call_expect(c, "random", NULL, 0, ra, sizeof(ra), NULL, CLST_OK, NULL);
    fx_call_expect(c, "random", NULL, 0, ra2, sizeof(ra2), NULL, CLST_OK, NULL);
    assert_memory_not_equal(ra, rb, 32);
    assert_memory_not_equal(ra + 32, rb + 32, 32);
    assert_memory_not_equal(ra, ra2, sizeof(ra));
    /* A forked loader's death is reported like any other (we are its parent). */
    fx_call_expect(c, "crash", NULL, 0, NULL, 0, NULL, CLST_E_IO, "SIGSEGV");
    clst_host_enclave_destroy(c);
    clst_host_enclave_destroy(b);
    clst_host_enclave_destroy(a);
    assert_int_equal(count_children(), 1);
    /* A dead template is replaced: this creation is fresh and starts a new one. */
    assert_int_equal(kill(tpid, SIGKILL), 0);
    siginfo_t si;
    memset(&si, 0, sizeof(si));
    for (int i = 0; i < 500 && si.si_pid != tpid; i++) {
        usleep(10 * 1000);
        assert_int_equal(waitid(P_PID, (id_t)tpid, &si, WEXITED | WNOHANG | WNOWAIT), 0);
    }
    assert_int_equal(si.si_pid, tpid); /* a zombie, until the next creation reaps it */
    a = fx_create(f->bad, &o);
    assert_true(cmdline_has(clst_host_enclave_pid(a), ENCL_LOADER_MARKER));
    fx_call_expect(a, "random", NULL, 0, ra, sizeof(ra), NULL, CLST_OK, NULL);
    clst_host_enclave_destroy(a);
    for (int i = 0; i < 500 && child_named("clst-encl-tmpl") < 0; i++) {
        usleep(10 * 1000);
    }
    int tpid2 = child_named("clst-encl-tmpl");
    assert_true(tpid2 > 0 && tpid2 != tpid);
    /* fresh_process: its own exec, not a fork of the template (which stays as it is). */
    o.fresh_process = true;
    a = fx_create(f->bad, &o);
    assert_true(cmdline_has(clst_host_enclave_pid(a), ENCL_LOADER_MARKER));
    fx_call_expect(a, "random", NULL, 0, ra, sizeof(ra), NULL, CLST_OK, NULL);
    assert_int_equal(child_named("clst-encl-tmpl"), tpid2);
    clst_host_enclave_destroy(a);
    /* Another keep_stderr setting: fresh loaders, and the template stays (the background start
     * after the creation must not replace it). */
    o.fresh_process = false;
    o.keep_stderr = !o.keep_stderr; /* (the default differs in sanitizer builds) */
    a = fx_create(f->bad, &o);
    assert_true(cmdline_has(clst_host_enclave_pid(a), ENCL_LOADER_MARKER));
    clst_host_enclave_destroy(a);
    usleep(300 * 1000);
    assert_int_equal(child_named("clst-encl-tmpl"), tpid2);
    o.keep_stderr = !o.keep_stderr;
    /* A forked copy of this process does not use (or end) our template: its loaders would be
     * our children. It creates and releases its own. */
    o.fresh_process = false;
    pid_t copy = fork();
    assert_true(copy >= 0);
    if (copy == 0) {
        struct clst_host_enclave *x = NULL, *y = NULL;
        struct clst_err err = {0};
        int ok =
            clst_host_enclave_create(f->bad, &o, &x, &err) == CLST_OK &&
            clst_host_enclave_create(f->bad, &o, &y, &err) == CLST_OK &&
            clst_host_enclave_call(y, "random", NULL, 0, ra, sizeof(ra), NULL, &err) == CLST_OK;
        clst_host_enclave_destroy(x);
        clst_host_enclave_destroy(y);
        clst_host_release();
        _exit(ok ? 0 : 1);
    }
    int status = 0;
    assert_int_equal(waitpid(copy, &status, 0), copy);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(child_named("clst-encl-tmpl"), tpid2);
    a = fx_create(f->bad, &o);
    assert_true(cmdline_has(clst_host_enclave_pid(a), ENCL_TEMPLATE_MARKER));
    clst_host_enclave_destroy(a);
    clst_host_release();
    assert_int_equal(count_children(), 0);
}

/* Copies src to dst with mode `mode` (plain stdio: usable in a forked child). */
static bool
copy_file(const char *src, const char *dst, mode_t mode)
{
    char buf[65536];
    size_t n;
    bool ok = true;
    FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
    while (ok && in != NULL && out != NULL && (n = fread(buf, 1, sizeof(buf), in)) > 0) {
        ok = fwrite(buf, 1, n, out) == n;
    }
    ok = ok && in != NULL && out != NULL;
    if (in != NULL) {
        fclose(in);
    }
    if (out != NULL) {
        ok = fclose(out) == 0 && ok;
    }
    return ok && chmod(dst, mode) == 0;
}

/* VmLck of process pid in kB, or -1. */
static long
locked_kb(int pid)
{
    return status_number(pid, "VmLck");
}

/*
 * Not as root, under a finite RLIMIT_MEMLOCK (so no mlockall): memory locks are not inherited
 * across fork, and a loader forked from the template must lock OpenSSL's secure heap again (256
 * KiB, where key release keeps private keys), as much as a fresh loader does. As root the check
 * runs as nobody under a 1 MiB limit, on copies of the loader and image that nobody can read;
 * otherwise under min(1 MiB, the hard limit).
 */
static void
test_template_memory_lock(void **state)
{
    struct fx *f = *state;
    struct clst_host_options o;
    char dir[PATH_MAX], loader[PATH_MAX + 32], image[PATH_MAX + 32];
    fx_options(&o);
    fx_tmpdir(dir, sizeof(dir));
    assert_int_equal(chmod(dir, 0755), 0);
    fx_fmt(loader, sizeof(loader), "%s/" ENCL_LOADER_NAME, dir);
    fx_fmt(image, sizeof(image), "%s/bad.signed", dir);
    assert_true(copy_file(o.loader_path, loader, 0755));
    assert_true(copy_file(f->bad, image, 0644));
    clst_host_release();
    pid_t c = fork();
    assert_true(c >= 0);
    if (c == 0) {
        struct rlimit one = {1024 * 1024, 1024 * 1024};
        struct clst_host_enclave *a = NULL, *b = NULL, *fresh = NULL;
        struct clst_err err = {0};
        int code = 0;
        struct rlimit cur;
        if (getrlimit(RLIMIT_MEMLOCK, &cur) == 0 && cur.rlim_max < one.rlim_max) {
            one.rlim_cur = one.rlim_max = cur.rlim_max;
        }
        if (setrlimit(RLIMIT_MEMLOCK, &one) != 0 ||
            (geteuid() == 0 &&
             (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0))) {
            _exit(10);
        }
        o.loader_path = loader;
        /* The template and a spare forked from it; the spare becomes a, b is forked now. */
        if (clst_host_prewarm(&o, &err) != CLST_OK ||
            clst_host_enclave_create(image, &o, &a, &err) != CLST_OK ||
            clst_host_enclave_create(image, &o, &b, &err) != CLST_OK) {
            fprintf(stderr, "test_template_memory_lock: %s\n", err.msg);
            _exit(11);
        }
        o.fresh_process = true;
        if (clst_host_enclave_create(image, &o, &fresh, &err) != CLST_OK) {
            _exit(14);
        }
        int pa = clst_host_enclave_pid(a), pb = clst_host_enclave_pid(b);
        long la = locked_kb(pa), lb = locked_kb(pb), lf = locked_kb(clst_host_enclave_pid(fresh));
        if (!cmdline_has(pa, ENCL_TEMPLATE_MARKER) || !cmdline_has(pb, ENCL_TEMPLATE_MARKER)) {
            code = 12;
        } else if (la < lf || lb < lf || (one.rlim_max >= 512 * 1024 && lf < 256)) {
            fprintf(stderr, "test_template_memory_lock: VmLck %ld and %ld kB forked, %ld fresh\n",
                    la, lb, lf);
            code = 13;
        }
        clst_host_enclave_destroy(a);
        clst_host_enclave_destroy(b);
        clst_host_enclave_destroy(fresh);
        clst_host_release();
        _exit(code);
    }
    int status = 0;
    assert_int_equal(waitpid(c, &status, 0), c);
    fx_rmdir(dir);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/*
 * A host that forks while a background start (opts.prewarm) is running: the copy must neither
 * wait for the original's background thread (clst_host_release) nor use its template.
 */
static void
test_fork_during_prewarm(void **state)
{
    struct fx *f = *state;
    struct clst_host_options o;
#if defined(__SANITIZE_ADDRESS__)
    /*
     * Not under ASan: GCC 12's ASan runtime does not hold its allocator's locks across fork, so
     * a copy forked while another thread allocates can deadlock in ASan's own malloc (seen here:
     * the copy's first allocation waits forever on a lock the original's thread held). Reported
     * as skipped, not passed; the RelWithDebInfo build runs it.
     */
    (void)f;
    (void)o;
    skip();
#endif
    fx_options(&o);
    o.prewarm = true;
    clst_host_release();
    for (int round = 0; round < 3; round++) {
        struct clst_host_enclave *e = fx_create(f->hello, &o); /* starts a background job */
        pid_t c = fork();
        assert_true(c >= 0);
        if (c == 0) {
            struct clst_host_enclave *x = NULL;
            struct clst_err err = {0};
            alarm(30); /* a hang fails the test (killed by SIGALRM) */
            clst_host_release();
            int ok = clst_host_enclave_create(f->hello, &o, &x, &err) == CLST_OK &&
                     clst_host_enclave_call(x, "null", NULL, 0, NULL, 0, NULL, &err) == CLST_OK;
            clst_host_enclave_destroy(x);
            clst_host_release();
            _exit(ok ? 0 : 1);
        }
        int status = 0;
        assert_int_equal(waitpid(c, &status, 0), c);
        clst_host_enclave_destroy(e);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fail_msg("the forked copy %s %d", WIFEXITED(status) ? "exited with" : "died of signal",
                     WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
        }
    }
    clst_host_release();
    assert_int_equal(count_children(), 0);
}

static uint64_t
ms_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

/* The template test_stuck_template stops, ended even when the test fails half-way. */
static int stuck_pid = -1;

static int
stuck_teardown(void **state)
{
    (void)state;
    if (stuck_pid > 0) {
        (void)kill(stuck_pid, SIGKILL);
        stuck_pid = -1;
    }
    clst_host_release();
    return 0;
}

/* A template that stops answering: the creation waits start_timeout_ms, goes on with a fresh
 * loader, and the template is ended and reaped (the next creation starts another). */
static void
test_stuck_template(void **state)
{
    struct fx *f = *state;
    struct clst_host_options o;
    struct clst_err err = {0};
    char stat[256];
    fx_options(&o);
    o.start_timeout_ms = 1000;
    clst_host_release();
    assert_int_equal(clst_host_prewarm(&o, &err), CLST_OK);
    int t = child_named("clst-encl-tmpl");
    assert_true(t > 0);
    struct clst_host_enclave *a = fx_create(f->hello, &o); /* the spare */
    stuck_pid = t;
    assert_int_equal(kill(t, SIGSTOP), 0);
    bool stopped = false;
    for (int i = 0; i < 500 && !stopped; i++) {
        fx_fmt(stat, sizeof(stat), "/proc/%d/stat", t);
        FILE *c = fopen(stat, "r");
        assert_non_null(c);
        assert_non_null(fgets(stat, sizeof(stat), c));
        fclose(c);
        const char *rp = strrchr(stat, ')');
        stopped = rp != NULL && rp[1] == ' ' && rp[2] == 'T';
        if (!stopped) {
            usleep(10 * 1000);
        }
    }
    assert_true(stopped);
    uint64_t t0 = ms_now();
    struct clst_host_enclave *b = fx_create(f->hello, &o);
    uint64_t took = ms_now() - t0;
    assert_true(took >= 1000 && took < 8000);
    assert_true(cmdline_has(clst_host_enclave_pid(b), ENCL_LOADER_MARKER)); /* fresh */
    assert_int_equal(kill(t, 0), -1);                                       /* reaped */
    assert_int_equal(errno, ESRCH);
    stuck_pid = -1;
    fx_call_expect(b, "hello", "x", 1, stat, sizeof(stat), NULL, CLST_OK, NULL);
    clst_host_enclave_destroy(b);
    clst_host_enclave_destroy(a);
    clst_host_release();
    assert_int_equal(count_children(), 0);
}

/* Starts the loader as a template by hand, with *sock (ours) as its control socket. */
static pid_t
start_template(int *sock)
{
    struct clst_host_options o;
    int sv[2];
    fx_options(&o);
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (dup2(sv[1], ENCL_FD_CONTROL) == ENCL_FD_CONTROL) {
            execl(o.loader_path, ENCL_LOADER_NAME, ENCL_TEMPLATE_MARKER, (char *)NULL);
        }
        _exit(127);
    }
    close(sv[1]);
    *sock = sv[0];
    return pid;
}

/* Sends msg[0..size) with `nfds` copies of fd, as the host's fork request would. */
static void
send_request(int sock, const char *msg, size_t size, int fd, int nfds)
{
    int fds[2] = {fd, fd};
    assert_true(fdpass_send(sock, msg, size, fds, (size_t)nfds));
}

static int
exit_status(pid_t pid)
{
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

/*
 * The template's request parser (its only input): anything but the exact 8-byte request with one
 * descriptor ends it (ENCL_EXIT_PROTOCOL); a closed socket ends it quietly; a valid request makes a
 * loader that is the requester's child and answers with its pid on the new socket.
 */
static void
test_template_protocol(void **state)
{
    (void)state;
    int sock, sv[2];
    struct {
        const char *msg;
        size_t size;
        int nfds;
    } bad[] = {
        {"garbage!", 8, 1},                         /* wrong magic */
        {ENCL_FORK_MSG, ENCL_FORK_SIZE - 1, 1},     /* truncated */
        {ENCL_FORK_MSG "X", ENCL_FORK_SIZE + 1, 1}, /* too long */
        {ENCL_FORK_MSG, ENCL_FORK_SIZE, 0},         /* no descriptor */
        {ENCL_FORK_MSG, ENCL_FORK_SIZE, 2},         /* two descriptors */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        pid_t t = start_template(&sock);
        assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
        send_request(sock, bad[i].msg, bad[i].size, sv[1], bad[i].nfds);
        assert_int_equal(exit_status(t), ENCL_EXIT_PROTOCOL);
        close(sv[1]);
        char c;
        assert_int_equal(recv(sv[0], &c, 1, MSG_DONTWAIT), 0); /* no answer, no loader */
        close(sv[0]);
        close(sock);
    }
    /* A valid request. */
    pid_t t = start_template(&sock);
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    send_request(sock, ENCL_FORK_MSG, ENCL_FORK_SIZE, sv[1], 1);
    close(sv[1]);
    char reply[ENCL_FORKED_SIZE + 1];
    assert_int_equal(recv(sv[0], reply, sizeof(reply), 0), ENCL_FORKED_SIZE);
    assert_memory_equal(reply, ENCL_FORKED_MSG, ENCL_FORK_SIZE);
    int32_t child;
    memcpy(&child, reply + ENCL_FORK_SIZE, sizeof(child));
    assert_true(child > 0 && child != t);
    assert_int_equal(parent_of(child), getpid());
    assert_true(cmdline_has(child, ENCL_TEMPLATE_MARKER));
    /* The loader leaves when its socket closes before a hand-over; the template when its own
     * does. */
    close(sv[0]);
    assert_int_equal(exit_status(child), ENCL_EXIT_OK);
    close(sock);
    assert_int_equal(exit_status(t), ENCL_EXIT_OK);
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
        cmocka_unit_test(test_template),
        cmocka_unit_test(test_template_protocol),
        cmocka_unit_test(test_template_memory_lock),
        cmocka_unit_test(test_fork_during_prewarm),
        cmocka_unit_test_teardown(test_stuck_template, stuck_teardown),
        cmocka_unit_test(test_enclave_deaths),
        cmocka_unit_test(test_enclave_sends_bad_frames),
        cmocka_unit_test(test_recoverable_failures),
        cmocka_unit_test(test_destroy_reaps),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
