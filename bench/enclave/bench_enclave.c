/*
 * bench_enclave: what a call into a sim enclave costs, next to what the machine's cheapest
 * process-to-process wake-up costs, measured by the same program in the same run.
 *
 *   ping-pong      two processes bounce a futex word in shared memory (and an eventfd pair):
 *                  the floor for any cross-process call that sleeps while it waits
 *   null call      clst_host_enclave_call of an entry point that does nothing, sleep mode and
 *                  spin-then-sleep mode, with host and enclave pinned to one CPU and unpinned
 *   1 MiB argument clst_host_enclave_call with 1 MiB of input through the shared-memory ring
 *   creation       clst_host_enclave_create from a signed image, back to back: with the loader
 *                  template (the default: each loader is forked from the template the process's
 *                  first creation started; that first creation is not in this row), fresh
 *                  (opts.fresh_process: the loader is exec'ed for each enclave), the first
 *                  creation in a new host process (a fresh loader, as in `cloister run`; the
 *                  host's OpenSSL is not initialized yet either), and warm (a loader pre-started
 *                  before the creation)
 *
 * Usage: bench_enclave [--quick | --creation N]. --creation N prints only the creation figures,
 * each the median of N creations. It finds cloister-enclave-loader and hello-enclave.so beside
 * itself or in $CLST_BUILD_DIR, signs a copy of the enclave with a fresh key in a temporary
 * directory, and prints one line per figure (median and 99th percentile of round trips).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <spawn.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cloister/crypto.h>
#include <cloister/host.h>

static int iterations = 20000;

static uint64_t
now_ns(void)
{
    return clst_monotonic_ns();
}

static int
cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

struct stats {
    double median_us, p99_us;
};

static struct stats
summarize(uint64_t *ns, int n)
{
    struct stats s;
    qsort(ns, (size_t)n, sizeof(ns[0]), cmp_u64);
    s.median_us = (double)ns[n / 2] / 1000.0;
    s.p99_us = (double)ns[(n * 99) / 100] / 1000.0;
    return s;
}

static void
pin_self(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET((size_t)cpu, &set);
    if (sched_setaffinity(0, sizeof(set), &set) != 0) {
        perror("sched_setaffinity");
    }
}

static void
pin_pid(int pid, int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET((size_t)cpu, &set);
    if (sched_setaffinity(pid, sizeof(set), &set) != 0) {
        perror("sched_setaffinity(enclave)");
    }
}

static void
unpin_pid(int pid)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    for (int i = 0; i < CPU_SETSIZE && i < sysconf(_SC_NPROCESSORS_ONLN); i++) {
        CPU_SET((size_t)i, &set);
    }
    if (sched_setaffinity(pid, sizeof(set), &set) != 0) {
        perror("sched_setaffinity");
    }
}

/* ---- baselines: futex and eventfd ping-pong between two processes ---------------------------- */

static void
futex_wait(_Atomic uint32_t *w, uint32_t v)
{
    while (atomic_load(w) == v) {
        syscall(SYS_futex, (uint32_t *)w, FUTEX_WAIT, v, NULL, NULL, 0);
    }
}

static void
futex_wake(_Atomic uint32_t *w)
{
    syscall(SYS_futex, (uint32_t *)w, FUTEX_WAKE, 1, NULL, NULL, 0);
}

static struct stats
pingpong_futex(bool pinned)
{
    _Atomic uint32_t *words =
        mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    uint64_t *ns = calloc((size_t)iterations, sizeof(uint64_t));
    if (words == MAP_FAILED || ns == NULL) {
        exit(1);
    }
    atomic_store(&words[0], 0);
    atomic_store(&words[16], 0);
    int cpu = sched_getcpu();
    pid_t child = fork();
    if (child == 0) {
        if (pinned) {
            pin_self(cpu);
        }
        for (uint32_t i = 1; i <= (uint32_t)iterations + 100; i++) {
            futex_wait(&words[0], i - 1);
            atomic_store(&words[16], i);
            futex_wake(&words[16]);
        }
        _exit(0);
    }
    if (pinned) {
        pin_self(cpu);
    }
    for (uint32_t i = 1; i <= (uint32_t)iterations + 100; i++) {
        uint64_t t = now_ns();
        atomic_store(&words[0], i);
        futex_wake(&words[0]);
        futex_wait(&words[16], i - 1);
        if (i > 100) {
            ns[i - 101] = now_ns() - t;
        }
    }
    waitpid(child, NULL, 0);
    unpin_pid(0);
    struct stats s = summarize(ns, iterations);
    free(ns);
    munmap((void *)words, 4096);
    return s;
}

static struct stats
pingpong_eventfd(bool pinned)
{
    int to_child = eventfd(0, 0), to_parent = eventfd(0, 0);
    uint64_t *ns = calloc((size_t)iterations, sizeof(uint64_t)), v = 1;
    if (to_child < 0 || to_parent < 0 || ns == NULL) {
        exit(1);
    }
    int cpu = sched_getcpu();
    pid_t child = fork();
    if (child == 0) {
        if (pinned) {
            pin_self(cpu);
        }
        for (int i = 0; i < iterations + 100; i++) {
            if (read(to_child, &v, 8) != 8 || write(to_parent, &v, 8) != 8) {
                _exit(1);
            }
        }
        _exit(0);
    }
    if (pinned) {
        pin_self(cpu);
    }
    for (int i = 0; i < iterations + 100; i++) {
        uint64_t t = now_ns();
        if (write(to_child, &v, 8) != 8 || read(to_parent, &v, 8) != 8) {
            exit(1);
        }
        if (i >= 100) {
            ns[i - 100] = now_ns() - t;
        }
    }
    waitpid(child, NULL, 0);
    unpin_pid(0);
    close(to_child);
    close(to_parent);
    struct stats s = summarize(ns, iterations);
    free(ns);
    return s;
}

/* ---- the enclave ------------------------------------------------------------------------------
 */

static char loader[PATH_MAX], image[PATH_MAX + 32], tmpdir[PATH_MAX];

static int
find_build_file(const char *name, char *out, size_t cap)
{
    const char *dir = getenv("CLST_BUILD_DIR");
    char exe[PATH_MAX];
    int w;
    if (dir != NULL && dir[0] != '\0') {
        w = snprintf(out, cap, "%s/%s", dir, name);
        if (w > 0 && (size_t)w < cap && access(out, R_OK) == 0) {
            return 0;
        }
    }
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0) {
        return -1;
    }
    exe[n] = '\0';
    *strrchr(exe, '/') = '\0';
    w = snprintf(out, cap, "%s/%s", exe, name);
    return (w > 0 && (size_t)w < cap && access(out, R_OK) == 0) ? 0 : -1;
}

static void
prepare(void)
{
    char so[PATH_MAX];
    struct clst_err err = {0};
    EVP_PKEY *key = NULL;
    struct clst_host_sign_params p = {.product_id = 1, .svn = 1};
    if (find_build_file("cloister-enclave-loader", loader, sizeof(loader)) != 0 ||
        find_build_file("hello-enclave.so", so, sizeof(so)) != 0) {
        fprintf(stderr, "bench_enclave: build cloister-enclave-loader and hello-enclave first "
                        "(or set CLST_BUILD_DIR)\n");
        exit(1);
    }
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/bench-enclave-XXXXXX");
    if (mkdtemp(tmpdir) == NULL || clst_ec_generate(CLST_CURVE_P256, &key) != CLST_OK) {
        exit(1);
    }
    int w = snprintf(image, sizeof(image), "%s/hello.signed", tmpdir);
    if (w < 0 || (size_t)w >= sizeof(image)) {
        exit(1);
    }
    if (clst_host_image_sign(so, image, key, &p, NULL, &err) != CLST_OK) {
        fprintf(stderr, "bench_enclave: %s\n", err.msg);
        exit(1);
    }
    EVP_PKEY_free(key);
}

/* Creations with opts.fresh_process (the "fresh" row). */
static bool fresh_loaders;

static struct clst_host_enclave *
create(enum clst_host_wait wait, bool prewarm)
{
    struct clst_host_options o;
    struct clst_host_enclave *e = NULL;
    struct clst_err err = {0};
    clst_host_options_init(&o);
    o.loader_path = loader;
    o.wait = wait;
    o.prewarm = prewarm;
    o.fresh_process = fresh_loaders;
    if (clst_host_enclave_create(image, &o, &e, &err) != CLST_OK) {
        fprintf(stderr, "bench_enclave: %s\n", err.msg);
        exit(1);
    }
    return e;
}

static struct stats
null_calls(enum clst_host_wait wait, bool pinned, struct clst_host_stats *hs)
{
    struct clst_host_enclave *e = create(wait, false);
    struct clst_err err = {0};
    uint64_t *ns = calloc((size_t)iterations, sizeof(uint64_t));
    if (ns == NULL) {
        exit(1);
    }
    int cpu = sched_getcpu();
    struct clst_host_stats before;
    if (pinned) {
        pin_self(cpu);
        pin_pid(clst_host_enclave_pid(e), cpu);
    }
    /* Only the calls count (creation waited for the enclave too, before it was pinned). */
    clst_host_enclave_stats(e, &before);
    for (int i = 0; i < iterations + 200; i++) {
        uint64_t t = now_ns();
        if (clst_host_enclave_call(e, "null", NULL, 0, NULL, 0, NULL, &err) != CLST_OK) {
            fprintf(stderr, "bench_enclave: %s\n", err.msg);
            exit(1);
        }
        if (i >= 200) {
            ns[i - 200] = now_ns() - t;
        }
    }
    clst_host_enclave_stats(e, hs);
    hs->spins -= before.spins;
    hs->sleeps -= before.sleeps;
    hs->spins_skipped -= before.spins_skipped;
    clst_host_enclave_destroy(e);
    unpin_pid(0);
    struct stats s = summarize(ns, iterations);
    free(ns);
    return s;
}

static double
throughput_gbs(bool pinned, size_t size)
{
    struct clst_host_enclave *e = create(CLST_HOST_WAIT_SLEEP, false);
    struct clst_err err = {0};
    uint8_t out[8];
    uint8_t *in = malloc(size);
    int rounds = iterations / 40 < 50 ? 50 : iterations / 40;
    if (in == NULL) {
        exit(1);
    }
    memset(in, 0x5a, size);
    int cpu = sched_getcpu();
    if (pinned) {
        pin_self(cpu);
        pin_pid(clst_host_enclave_pid(e), cpu);
    }
    uint64_t *ns = calloc((size_t)rounds, sizeof(uint64_t));
    for (int i = 0; i < rounds + 10; i++) {
        uint64_t t = now_ns();
        if (clst_host_enclave_call(e, "sink", in, size, out, sizeof(out), NULL, &err) != CLST_OK) {
            fprintf(stderr, "bench_enclave: %s\n", err.msg);
            exit(1);
        }
        if (i >= 10) {
            ns[i - 10] = now_ns() - t;
        }
    }
    clst_host_enclave_destroy(e);
    unpin_pid(0);
    struct stats s = summarize(ns, rounds);
    free(ns);
    free(in);
    return (double)size / (s.median_us * 1000.0); /* bytes per ns = GB/s */
}

/* warm: a loader is pre-started before each timed creation; prewarm_inside: the creation itself
 * pre-starts the next one (opts.prewarm), so its cost is inside the timed region. */
static struct stats
creation(bool warm, bool prewarm_inside, int n)
{
    uint64_t *ns = calloc((size_t)n, sizeof(uint64_t));
    struct clst_host_options o;
    struct clst_err err = {0};
    if (ns == NULL) {
        exit(1);
    }
    clst_host_options_init(&o);
    o.loader_path = loader;
    if (warm && clst_host_prewarm(&o, &err) != CLST_OK) {
        fprintf(stderr, "bench_enclave: %s\n", err.msg);
        exit(1);
    }
    for (int i = 0; i < n; i++) {
        if (warm) {
            if (!prewarm_inside && i > 0 && clst_host_prewarm(&o, &err) != CLST_OK) {
                fprintf(stderr, "bench_enclave: %s\n", err.msg);
                exit(1);
            }
            /* Give the pre-started loader the time an application would have between two
             * creations to finish its own start-up. */
            usleep(50 * 1000);
        }
        uint64_t t = now_ns();
        struct clst_host_enclave *e = create(CLST_HOST_WAIT_SLEEP, warm && prewarm_inside);
        ns[i] = now_ns() - t;
        clst_host_enclave_destroy(e);
    }
    struct stats s = summarize(ns, n);
    free(ns);
    return s;
}

/* bench_enclave --create-once IMAGE LOADER: one cold creation in this fresh process; prints ns. */
static int
create_once(const char *img, const char *ldr)
{
    struct clst_host_options o;
    struct clst_host_enclave *e = NULL;
    struct clst_err err = {0};
    clst_log_set_level(CLST_LOG_ERROR);
    clst_host_options_init(&o);
    o.loader_path = ldr;
    uint64_t t = now_ns();
    if (clst_host_enclave_create(img, &o, &e, &err) != CLST_OK) {
        fprintf(stderr, "bench_enclave: %s\n", err.msg);
        return 1;
    }
    t = now_ns() - t;
    clst_host_enclave_destroy(e);
    printf("%llu\n", (unsigned long long)t);
    return 0;
}

/* Cold creations, each the first one in a new host process (this program, run again). */
static struct stats
creation_new_process(int n)
{
    uint64_t *ns = calloc((size_t)n, sizeof(uint64_t));
    char self[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (ns == NULL || len <= 0) {
        exit(1);
    }
    self[len] = '\0';
    for (int i = 0; i < n; i++) {
        int p[2];
        pid_t pid;
        char out[64] = "";
        char *args[] = {self, (char *)"--create-once", image, loader, NULL};
        posix_spawn_file_actions_t fa;
        if (pipe(p) != 0 || posix_spawn_file_actions_init(&fa) != 0 ||
            posix_spawn_file_actions_adddup2(&fa, p[1], 1) != 0 ||
            posix_spawn(&pid, self, &fa, NULL, args, environ) != 0) {
            perror("bench_enclave: starting a creation process");
            exit(1);
        }
        posix_spawn_file_actions_destroy(&fa);
        close(p[1]);
        ssize_t got = read(p[0], out, sizeof(out) - 1);
        close(p[0]);
        int status = 0;
        if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0 ||
            got <= 0) {
            fprintf(stderr, "bench_enclave: a creation process failed\n");
            exit(1);
        }
        ns[i] = strtoull(out, NULL, 10);
        usleep(20 * 1000);
    }
    struct stats s = summarize(ns, n);
    free(ns);
    return s;
}

static void
creation_report(int n)
{
    /* The process's first creation starts the template in the background: let it, untimed. */
    clst_host_enclave_destroy(create(CLST_HOST_WAIT_SLEEP, false));
    usleep(100 * 1000);
    struct stats cc = creation(false, false, n);
    printf("%-37s median %8.2f ms  p99 %8.2f ms  (target <= 5 ms)\n", "creation (loader template)",
           cc.median_us / 1000.0, cc.p99_us / 1000.0);
    fresh_loaders = true;
    struct stats cf = creation(false, false, n);
    fresh_loaders = false;
    printf("%-37s median %8.2f ms  p99 %8.2f ms\n", "creation, fresh (opts.fresh_process)",
           cf.median_us / 1000.0, cf.p99_us / 1000.0);
    struct stats cn = creation_new_process(n);
    printf("%-37s median %8.2f ms  p99 %8.2f ms\n", "creation, first in a new process",
           cn.median_us / 1000.0, cn.p99_us / 1000.0);
    struct stats cw = creation(true, true, n);
    printf("%-37s median %8.2f ms  p99 %8.2f ms\n", "creation, warm (opts.prewarm)",
           cw.median_us / 1000.0, cw.p99_us / 1000.0);
    struct stats cx = creation(true, false, n);
    printf("%-37s median %8.2f ms  p99 %8.2f ms\n", "creation, warm (prewarm not timed)",
           cx.median_us / 1000.0, cx.p99_us / 1000.0);
}

int
main(int argc, char **argv)
{
    int only_creation = 0;
    if (argc == 4 && strcmp(argv[1], "--create-once") == 0) {
        return create_once(argv[2], argv[3]);
    }
    if (argc > 1 && strcmp(argv[1], "--quick") == 0) {
        iterations = 2000;
    } else if (argc > 2 && strcmp(argv[1], "--creation") == 0) {
        only_creation = atoi(argv[2]);
        if (only_creation < 1 || only_creation > 10000) {
            fprintf(stderr, "bench_enclave: --creation N: N must be 1..10000\n");
            return 2;
        }
    }
    clst_log_set_level(CLST_LOG_ERROR);
    prepare();
    if (only_creation > 0) {
        creation_report(only_creation);
        unlink(image);
        rmdir(tmpdir);
        return 0;
    }
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    printf("bench_enclave: sim TEE, %ld CPUs, %d round trips per figure (after warm-up)\n", cpus,
           iterations);

    struct stats fp = pingpong_futex(true), fu = pingpong_futex(false);
    struct stats ep = pingpong_eventfd(true), eu = pingpong_eventfd(false);
    printf("%-34s median %8.2f us  p99 %8.2f us\n", "futex ping-pong, pinned (1 CPU)", fp.median_us,
           fp.p99_us);
    printf("%-34s median %8.2f us  p99 %8.2f us\n", "futex ping-pong, unpinned", fu.median_us,
           fu.p99_us);
    printf("%-34s median %8.2f us  p99 %8.2f us\n", "eventfd ping-pong, pinned", ep.median_us,
           ep.p99_us);
    printf("%-34s median %8.2f us  p99 %8.2f us\n", "eventfd ping-pong, unpinned", eu.median_us,
           eu.p99_us);

    struct clst_host_stats hs;
    struct stats np = null_calls(CLST_HOST_WAIT_SLEEP, true, &hs);
    printf("%-34s median %8.2f us  p99 %8.2f us  (%.2fx futex ping-pong; target <= 2x)\n",
           "null call, sleep, pinned", np.median_us, np.p99_us, np.median_us / fp.median_us);
    struct stats nu = null_calls(CLST_HOST_WAIT_SLEEP, false, &hs);
    printf("%-34s median %8.2f us  p99 %8.2f us  (%.2fx futex ping-pong)\n",
           "null call, sleep, unpinned", nu.median_us, nu.p99_us, nu.median_us / fu.median_us);
    struct stats sp = null_calls(CLST_HOST_WAIT_SPIN, true, &hs);
    printf("%-34s median %8.2f us  p99 %8.2f us  (host spins %llu, skipped %llu: must be 0 "
           "spins)\n",
           "null call, spin, pinned", sp.median_us, sp.p99_us, (unsigned long long)hs.spins,
           (unsigned long long)hs.spins_skipped);
    struct stats su = null_calls(CLST_HOST_WAIT_SPIN, false, &hs);
    printf("%-34s median %8.2f us  p99 %8.2f us  (host spins %llu, skipped %llu)\n",
           "null call, spin, unpinned", su.median_us, su.p99_us, (unsigned long long)hs.spins,
           (unsigned long long)hs.spins_skipped);

    printf("%-34s %8.2f GB/s (target >= 3)\n", "1 MiB argument, unpinned",
           throughput_gbs(false, 1u << 20));
    printf("%-34s %8.2f GB/s\n", "1 MiB argument, pinned", throughput_gbs(true, 1u << 20));

    creation_report(iterations >= 20000 ? 30 : 10);

    unlink(image);
    rmdir(tmpdir);
    return 0;
}
