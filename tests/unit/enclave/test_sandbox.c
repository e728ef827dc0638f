/*
 * Unit tests for src/enclave/sandbox.c, seen from outside the enclave process: every forbidden
 * kind of system call (open, socket, exec, ptrace, fork, threads, executable memory, blocking
 * outside the channel) kills the enclave and the host names the call and the entry point; the
 * process state the sandbox promises (no new privileges, seccomp filters, a single thread, no core
 * files, only descriptors 0-2, an empty environment, locked memory as root); and the manifest's
 * heap limit.
 *
 * The checks of ptrace and /proc/PID/mem by another unprivileged process are in
 * tests/integration/enclave_isolation.sh: as root (which runs the unit tests) they would succeed
 * whatever the enclave does.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "encl_fixture.h"

#include "enclave/host_int.h"

struct fx {
    char dir[PATH_MAX];
    EVP_PKEY *key;
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
    fx_sign("misbehave-enclave.so", f->dir, "bad.signed", f->key, 1, 1, false, 16, f->bad,
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
expect_sandbox_kill(struct fx *f, const char *entry, const char *syscall_name)
{
    struct clst_host_options o;
    struct clst_err err = {0};
    char want[128];
    fx_options(&o);
    struct clst_host_enclave *e = fx_create(f->bad, &o);
    enum clst_status st = clst_host_enclave_call(e, entry, NULL, 0, NULL, 0, NULL, &err);
    if (st != CLST_E_IO) {
        fail_msg("%s: want an I/O error (the enclave died), got %s: %s", entry, clst_status_str(st),
                 err.msg);
    }
    fx_fmt(want, sizeof(want), "system call %s (", syscall_name);
    if (strstr(err.msg, "killed by the sandbox") == NULL || strstr(err.msg, want) == NULL ||
        strstr(err.msg, entry) == NULL) {
        fail_msg("%s: message '%s' should name the sandbox, '%s' and the entry point", entry,
                 err.msg, syscall_name);
    }
    assert_false(clst_host_enclave_alive(e));
    clst_host_enclave_destroy(e);
}

static void
test_forbidden_calls(void **state)
{
    struct fx *f = *state;
    expect_sandbox_kill(f, "open", "openat");
    expect_sandbox_kill(f, "socket", "socket");
    expect_sandbox_kill(f, "exec", "execve");
    expect_sandbox_kill(f, "ptrace", "ptrace");
    expect_sandbox_kill(f, "fork", "clone");
    expect_sandbox_kill(f, "mmap_exec", "mmap");
    /* abort() may signal the enclave itself (test_host); any other process is refused. */
    expect_sandbox_kill(f, "signal_host", "tgkill");
}

/*
 * Stage 1 (with the self-signal filter) applied to a forked copy of this test: what an image's
 * constructors could try before the final filter. Each probe must die by SIGSYS (the handler's
 * exit status), while ordinary calls still work.
 */
enum probe {
    PROBE_NONE,
    PROBE_FCNTL_GETFD,
    PROBE_SIGNAL_SELF,
    PROBE_SETOWN,
    PROBE_SETOWN_HIGH_BITS,
    PROBE_SETSIG,
    PROBE_FIOSETOWN,
    PROBE_FIOASYNC,
    PROBE_SIGQUEUE,
    PROBE_TGKILL_PARENT,
};

static int
stage1_probe(enum probe what)
{
    pid_t c = fork();
    assert_true(c >= 0);
    if (c == 0) {
        struct sandbox_filters filters;
        struct clst_err err = {0};
        int p[2];
        if (pipe(p) != 0 || sandbox_trap_install(&err) != CLST_OK ||
            sandbox_filters_build(&filters, &err) != CLST_OK ||
            sandbox_stage1_load(&filters, &err) != CLST_OK) {
            _exit(2);
        }
        pid_t host = getppid();
        int owner = (int)host, on = 1;
        siginfo_t si;
        memset(&si, 0, sizeof(si));
        switch (what) {
        case PROBE_NONE:
            break;
        case PROBE_FCNTL_GETFD:
            if (fcntl(p[0], F_GETFD) < 0) {
                _exit(3);
            }
            break;
        case PROBE_SIGNAL_SELF:
            if (syscall(SYS_tgkill, (long)getpid(), (long)getpid(), 0L) != 0) {
                _exit(3);
            }
            break;
        case PROBE_SETOWN:
            (void)fcntl(p[0], F_SETOWN, owner);
            break;
        case PROBE_SETOWN_HIGH_BITS:
            (void)syscall(SYS_fcntl, (long)p[0], (1L << 32) | F_SETOWN, (long)owner);
            break;
        case PROBE_SETSIG:
            (void)fcntl(p[0], F_SETSIG, SIGKILL);
            break;
        case PROBE_FIOSETOWN:
            (void)ioctl(p[0], FIOSETOWN, &owner);
            break;
        case PROBE_FIOASYNC:
            (void)ioctl(p[0], FIOASYNC, &on);
            break;
        case PROBE_SIGQUEUE:
            si.si_code = SI_QUEUE;
            (void)syscall(SYS_rt_sigqueueinfo, (long)host, 0L, &si);
            break;
        case PROBE_TGKILL_PARENT:
            (void)syscall(SYS_tgkill, (long)host, (long)host, 0L);
            break;
        }
        _exit(0);
    }
    int status = 0;
    assert_int_equal(waitpid(c, &status, 0), c);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

static void
test_stage1_signals(void **state)
{
    (void)state;
    assert_int_equal(stage1_probe(PROBE_NONE), 0);
    assert_int_equal(stage1_probe(PROBE_FCNTL_GETFD), 0);
    assert_int_equal(stage1_probe(PROBE_SIGNAL_SELF), 0);
    const enum probe fatal[] = {PROBE_SETOWN,       PROBE_SETOWN_HIGH_BITS, PROBE_SETSIG,
                                PROBE_FIOSETOWN,    PROBE_FIOASYNC,         PROBE_SIGQUEUE,
                                PROBE_TGKILL_PARENT};
    for (size_t i = 0; i < sizeof(fatal) / sizeof(fatal[0]); i++) {
        if (stage1_probe(fatal[i]) != ENCL_EXIT_SANDBOX) {
            fail_msg("probe %d was not stopped by the first filter", (int)fatal[i]);
        }
    }
}

/* Creating a thread is fatal: glibc's first forbidden call on the way (rt_sigaction in glibc
 * 2.36, then mmap of the stack, then clone3) kills the enclave, whichever comes first. */
static void
test_threads_forbidden(void **state)
{
    struct fx *f = *state;
    struct clst_host_options o;
    struct clst_err err = {0};
    fx_options(&o);
    struct clst_host_enclave *e = fx_create(f->bad, &o);
    assert_int_equal(clst_host_enclave_call(e, "thread", NULL, 0, NULL, 0, NULL, &err), CLST_E_IO);
    assert_non_null(strstr(err.msg, "killed by the sandbox"));
    assert_non_null(strstr(err.msg, "entry point 'thread'"));
    clst_host_enclave_destroy(e);
}

/* Reads a "Key:\tvalue" line of /proc/PID/status. */
static bool
status_field(int pid, const char *key, char *out, size_t cap)
{
    char path[64], line[256];
    fx_fmt(path, sizeof(path), "/proc/%d/status", pid);
    FILE *fp = fopen(path, "re");
    bool found = false;
    if (fp == NULL) {
        return false;
    }
    size_t klen = strlen(key);
    while (fgets(line, sizeof(line), fp) != NULL) {
        if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
            char *v = line + klen + 1;
            while (*v == ' ' || *v == '\t') {
                v++;
            }
            v[strcspn(v, "\n")] = '\0';
            fx_fmt(out, cap, "%s", v);
            found = true;
            break;
        }
    }
    fclose(fp);
    return found;
}

static void
test_process_state(void **state)
{
    struct fx *f = *state;
    struct clst_host_options o;
    char v[128], path[64];
    fx_options(&o);
    struct clst_host_enclave *e = fx_create(f->bad, &o);
    int pid = clst_host_enclave_pid(e);
    assert_true(status_field(pid, "NoNewPrivs", v, sizeof(v)));
    assert_string_equal(v, "1");
    assert_true(status_field(pid, "Seccomp", v, sizeof(v)));
    assert_string_equal(v, "2");
    /* The self-signal filter, stage 1, stage 2. */
    assert_true(status_field(pid, "Seccomp_filters", v, sizeof(v)));
    assert_string_equal(v, "3");
    /* One thread: the loader starts none (and the sandbox forbids creating any). */
    assert_true(status_field(pid, "Threads", v, sizeof(v)));
    assert_string_equal(v, "1");
    if (geteuid() == 0) {
        /* Root may look inside: only 0-2 are open, the environment is empty, cores are off,
         * and memory is locked (as pages are touched). */
        fx_fmt(path, sizeof(path), "/proc/%d/fd", pid);
        DIR *d = opendir(path);
        assert_non_null(d);
        struct dirent *de;
        int count = 0;
        while ((de = readdir(d)) != NULL) {
            if (de->d_name[0] == '.') {
                continue;
            }
            count++;
            assert_true(strcmp(de->d_name, "0") == 0 || strcmp(de->d_name, "1") == 0 ||
                        strcmp(de->d_name, "2") == 0);
        }
        closedir(d);
        assert_int_equal(count, 3);
        fx_fmt(path, sizeof(path), "/proc/%d/environ", pid);
        FILE *fp = fopen(path, "re");
        assert_non_null(fp);
        assert_int_equal(fgetc(fp), EOF);
        fclose(fp);
        fx_fmt(path, sizeof(path), "/proc/%d/limits", pid);
        fp = fopen(path, "re");
        assert_non_null(fp);
        char line[256];
        bool core = false;
        while (fgets(line, sizeof(line), fp) != NULL) {
            if (strncmp(line, "Max core file size", 18) == 0) {
                unsigned long soft = 1, hard = 1;
                assert_int_equal(sscanf(line + 18, " %lu %lu", &soft, &hard), 2);
                assert_int_equal(soft, 0);
                assert_int_equal(hard, 0);
                core = true;
            }
        }
        fclose(fp);
        assert_true(core);
        const char *why = NULL;
        if (clst_host_enclave_memory_locked(e, &why)) {
            assert_true(status_field(pid, "VmLck", v, sizeof(v)));
            assert_string_not_equal(v, "0 kB");
        } else {
            /* Sanitizer builds do not lock (shadow memory); the reason says so. */
            assert_non_null(strstr(why, "sanitizers"));
        }
    }
    clst_host_enclave_destroy(e);
}

static void
test_heap_limit(void **state)
{
    struct fx *f = *state;
    struct clst_host_options o;
    uint32_t mib = 8;
    fx_options(&o);
    struct clst_host_enclave *e = fx_create(f->bad, &o);
    assert_int_equal(clst_host_enclave_identity(e)->heap_mib, 16);
    fx_call_expect(e, "alloc", &mib, 4, NULL, 0, NULL, CLST_OK, NULL);
    mib = 64;
    if ((e->ready.flags & READY_FLAG_HEAP) != 0) {
        fx_call_expect(e, "alloc", &mib, 4, NULL, 0, NULL, CLST_E_NOMEM, "malloc(64 MiB) failed");
        assert_true(clst_host_enclave_alive(e));
    } else {
        /* Only sanitizer builds skip the limit (their shadow memory counts as data). */
        fprintf(stderr, "note: heap limit not applied in this build (sanitizers)\n");
    }
    clst_host_enclave_destroy(e);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forbidden_calls),   cmocka_unit_test(test_stage1_signals),
        cmocka_unit_test(test_threads_forbidden), cmocka_unit_test(test_process_state),
        cmocka_unit_test(test_heap_limit),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
