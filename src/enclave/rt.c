/*
 * The enclave side of the runtime: what runs inside the enclave process after the loader is
 * exec'ed. It hardens the process, loads the image from the sealed memfd the host measured, serves
 * entry-point calls, and implements the enclave SDK (include/cloister/enclave.h) on top of the
 * channel: host services, evidence and sealing.
 *
 * Trust: the host is untrusted. Everything read from the channel is copied once into private
 * memory and validated there; a host that breaks the protocol makes the enclave stop (it records
 * why in the shared note and exits) rather than guess. Inputs handed to entry points are private
 * copies that cannot change while the entry point runs.
 *
 * The runtime state is one static object: there is exactly one enclave per process by design,
 * and the SDK functions it implements have no handle to pass around.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <cloister/crypto.h>

#include "enclave/enclave_int.h"

#define RT_ERRMSG_SIZE 256
#define RT_PRINTF_MAX  4096
#define RT_SECURE_HEAP (256u * 1024)

struct rt {
    struct chan_ctrl *ctrl;
    uint8_t *map;
    size_t map_size;
    struct chan_init init;
    struct ring tx; /* enclave -> host */
    struct ring rx; /* host -> enclave */
    struct chan_wait wait;
    struct frame_limits lim;
    const struct clst_enclave_table *table;
    bool serving;
    bool in_call;
    uint32_t ocall_seq;
    uint8_t *in_buf;
    size_t in_cap;
    uint8_t *out_buf;
    size_t out_cap;
    char errmsg[RT_ERRMSG_SIZE];
    bool have_stdout;
    uint32_t stdout_handle;
};

static struct rt rt;

/* ---- dying with a reason --------------------------------------------------------------------- */

static _Noreturn void die(uint32_t kind, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static _Noreturn void
die(uint32_t kind, int code, const char *fmt, ...)
{
    if (rt.ctrl != NULL) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(rt.ctrl->note.msg, sizeof(rt.ctrl->note.msg), fmt, ap);
        va_end(ap);
        atomic_store(&rt.ctrl->note.kind, kind);
    }
    _exit(code);
}

/* Before READY: tell the host why loading failed, then leave. */
static _Noreturn void
load_failed(enum clst_status st, const char *msg)
{
    if (rt.ctrl != NULL && rt.tx.ctl != NULL) {
        struct frame_hdr h = {.type = FRAME_READY, .status = (uint32_t)st};
        struct clst_err ignored = {0};
        h.payload_size = (uint32_t)strnlen(msg, FRAME_ERR_MSG_MAX);
        (void)frame_send(&rt.tx, &rt.wait, &h, NULL, msg, chan_deadline(1000), &ignored);
    }
    die(NOTE_LOAD, ENCL_EXIT_LOAD, "%s", msg);
}

/* ---- start-up -------------------------------------------------------------------------------- */

/* Our parent changes only when the whole host process is gone (we are then re-parented). */
static bool
host_alive(void *ctx)
{
    (void)ctx;
    if ((uint32_t)getppid() != rt.init.host_pid) {
        _exit(ENCL_EXIT_OK); /* nobody left to serve */
    }
    return true;
}

/* Waits for the host to hand over the image and channel descriptors (on the control socket).
 * A closed socket means the host discarded this pre-started loader: leave quietly. */
static void
receive_handoff(int *out_image, int *out_channel)
{
    char msg[ENCL_HANDOFF_SIZE];
    int fds[2];
    ssize_t n = fdpass_recv(ENCL_FD_CONTROL, msg, sizeof(msg), fds, 2);
    if (n == 0) {
        _exit(ENCL_EXIT_OK);
    }
    if (n < 0 || memcmp(msg, ENCL_HANDOFF_MSG, ENCL_HANDOFF_SIZE) != 0) {
        _exit(ENCL_EXIT_LOAD); /* no channel yet: nobody to tell but the exit status */
    }
    close(ENCL_FD_CONTROL);
    *out_image = fds[0];
    *out_channel = fds[1];
}

static void
map_channel(int fd)
{
    struct stat st;
    struct chan_init in;
    if (fstat(fd, &st) != 0 || st.st_size < CHAN_CTRL_SIZE) {
        _exit(ENCL_EXIT_LOAD); /* no channel: nobody to tell */
    }
    size_t size = (size_t)st.st_size;
    void *map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) {
        _exit(ENCL_EXIT_LOAD);
    }
    rt.map = map;
    rt.map_size = size;
    rt.ctrl = map;
    /* Copy once, then validate the copy. */
    memcpy(&in, &rt.ctrl->init, sizeof(in));
    uint64_t ring = in.ring_size;
    if (in.magic != CHAN_MAGIC || in.version != CHAN_VERSION || ring < CLST_HOST_RING_MIN_SIZE ||
        ring > CLST_HOST_RING_MAX_SIZE || (ring & (ring - 1)) != 0 ||
        (uint64_t)size != CHAN_CTRL_SIZE + 2 * ring || in.max_message < 4096 ||
        in.max_message > CLST_HOST_MESSAGE_MAX || in.spin_us > 1000 ||
        (in.flags & ~(INIT_FLAG_DEBUG | INIT_FLAG_SPIN | INIT_FLAG_KEEP_STDERR)) != 0 ||
        in.identity.heap_mib == 0 || in.identity.heap_mib > CLST_HOST_HEAP_MAX_MIB) {
        die(NOTE_LOAD, ENCL_EXIT_LOAD, "the channel's initial block is invalid");
    }
    rt.init = in;
    rt.init.identity.debug = (in.flags & INIT_FLAG_DEBUG) != 0;
    rt.lim.max_payload = in.max_message;
    rt.wait.spin = (in.flags & INIT_FLAG_SPIN) != 0;
    rt.wait.spin_ns = (uint64_t)in.spin_us * 1000u;
    rt.wait.alive = host_alive;
    rt.wait.slice_ns = CHAN_ENCLAVE_SLICE_NS;
    ring_init(&rt.rx, &rt.ctrl->h2e, rt.map + CHAN_CTRL_SIZE, ring, false);
    ring_init(&rt.tx, &rt.ctrl->e2h, rt.map + CHAN_CTRL_SIZE + ring, ring, true);
}

/* Everything the libraries would otherwise do lazily with files, before the filters forbid
 * files. */
static int
cmp_u32(const void *a, const void *b)
{
    uint32_t x, y;
    memcpy(&x, a, sizeof(x));
    memcpy(&y, b, sizeof(y));
    return (x > y) - (x < y);
}

static void
init_crypto(void)
{
    uint8_t b[32];
    /*
     * No configuration file: openssl.cnf belongs to the (untrusted) host, is not part of the
     * measurement, and could name provider modules to load into the enclave. The enclave gets
     * OpenSSL's built-in defaults; a host's FIPS configuration does not apply inside
     * (docs/enclaves.md). The flag also marks the configuration as done, so no later call loads
     * it. Both DRBGs are instantiated and seeded from the kernel here, before READY.
     */
    if (OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CONFIG, NULL) != 1 ||
        RAND_bytes(b, sizeof(b)) != 1 || RAND_priv_bytes(b, sizeof(b)) != 1) {
        _exit(ENCL_EXIT_LOAD);
    }
    /* Best effort: private keys made inside (key release) then live in locked memory. */
    (void)clst_secret_heap_init(RT_SECURE_HEAP);
    /* Jansson's hash seed (runtime data is JSON), from the DRBG just seeded rather than from
     * /dev/urandom (0 would make it read the file). */
    uint32_t seed =
        (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    json_object_seed(seed != 0 ? seed : 1);
    OPENSSL_cleanse(b, sizeof(b));
    /* glibc reads /etc/localtime on the first gmtime_r/localtime (certificate times in key
     * release go through gmtime_r): do it now, while files are allowed. */
    time_t t0 = 0;
    struct tm tm0;
    tzset();
    (void)gmtime_r(&t0, &tm0);
    /* glibc's qsort asks sysinfo() for the machine's memory the first time it sorts more than
     * about 1 KiB (to choose between merge sort and quicksort): ask it now, so that enclaves
     * can use qsort. */
    static uint32_t warm[1024];
    for (size_t i = 0; i < sizeof(warm) / sizeof(warm[0]); i++) {
        warm[i] = (uint32_t)(sizeof(warm) / sizeof(warm[0]) - i);
    }
    qsort(warm, sizeof(warm) / sizeof(warm[0]), sizeof(warm[0]), cmp_u32);
    /* Fetch the algorithms the runtime uses so that nothing is looked up later. */
    uint8_t d[32];
    (void)clst_sha256("", 0, d);
}

/* ---- the loader template --------------------------------------------------------------------- */

/*
 * The template (started with ENCL_TEMPLATE_MARKER) has done everything above once: exec, dynamic
 * linking, hardening, OpenSSL's set-up. It never receives an image; it waits for fork requests
 * from the host and returns only in a child, whose control socket is then ENCL_FD_CONTROL. A
 * closed socket means the host is gone or has ended the template: leave.
 */
static void
template_serve(void)
{
    for (;;) {
        char msg[ENCL_FORK_SIZE];
        int fd;
        ssize_t n = fdpass_recv(ENCL_FD_CONTROL, msg, sizeof(msg), &fd, 1);
        if (n == 0) {
            _exit(ENCL_EXIT_OK);
        }
        if (n < 0 || memcmp(msg, ENCL_FORK_MSG, ENCL_FORK_SIZE) != 0) {
            _exit(ENCL_EXIT_PROTOCOL);
        }
        /*
         * The raw system call, because glibc's fork() cannot make the host the parent. The
         * template is single-threaded and holds no lock here, which is all glibc's fork would
         * add. glibc's cached thread id stays the template's in the child: it is what recursive
         * and error-checking mutexes record as their owner (consistently, in a single thread),
         * and what pthread_*_np(pthread_self()) would address; robust and priority-inheriting
         * mutexes, which hand it to the kernel, are not used, and raise() and abort() ask the
         * kernel for the thread id (glibc 2.36). The final filter forbids everything else that
         * could reach another thread.
         */
        long pid = syscall(SYS_clone, (unsigned long)(CLONE_PARENT | SIGCHLD), 0UL, 0UL, 0UL, 0UL);
        /* The child announces itself, so that the host learns its pid (and reaps it) even if the
         * template dies right after the clone; only a failed clone is answered by the template. */
        int32_t v = pid == 0 ? (int32_t)getpid() : -(int32_t)errno;
        if (pid == 0 || pid < 0) {
            char reply[ENCL_FORKED_SIZE];
            memcpy(reply, ENCL_FORKED_MSG, ENCL_FORK_SIZE);
            memcpy(reply + ENCL_FORK_SIZE, &v, sizeof(v));
            if (send(fd, reply, sizeof(reply), MSG_NOSIGNAL) != (ssize_t)sizeof(reply) &&
                pid == 0) {
                _exit(ENCL_EXIT_LOAD);
            }
        }
        if (pid == 0) {
            if (dup2(fd, ENCL_FD_CONTROL) != ENCL_FD_CONTROL) {
                _exit(ENCL_EXIT_LOAD);
            }
            close(fd);
            return;
        }
        close(fd);
    }
}

/*
 * The secure heap's arena (the read-write mapping between its guard pages), found once in a
 * template: memory locks are not inherited across fork, so each child locks it again.
 */
static struct {
    uintptr_t start;
    size_t len;
} sheap;

static void
secure_heap_find(void)
{
    static char maps[65536];
    void *p = CRYPTO_secure_malloc_initialized() ? OPENSSL_secure_malloc(16) : NULL;
    size_t len = 0;
    if (p == NULL || !CRYPTO_secure_allocated(p)) {
        OPENSSL_secure_free(p); /* (a fallback to the ordinary heap, or NULL) */
        return;
    }
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    while (fd >= 0 && len < sizeof(maps) - 1) {
        ssize_t n = read(fd, maps + len, sizeof(maps) - 1 - len);
        if (n <= 0) {
            break;
        }
        len += (size_t)n;
    }
    if (fd >= 0) {
        close(fd);
    }
    maps[len] = '\0';
    for (char *line = maps; line != NULL && *line != '\0';) {
        char *next = strchr(line, '\n');
        unsigned long lo, hi;
        char perms[5];
        if (sscanf(line, "%lx-%lx %4s", &lo, &hi, perms) == 3 && lo <= (uintptr_t)p &&
            (uintptr_t)p < hi && perms[0] == 'r' && perms[1] == 'w') {
            sheap.start = lo;
            sheap.len = hi - lo;
            break;
        }
        line = next != NULL ? next + 1 : NULL;
    }
    OPENSSL_secure_free(p);
}

/*
 * In a child of the template. Its DRBGs are copies of the template's (and of every sibling's
 * before their first use): OpenSSL 3 keeps the pid each DRBG was last seeded in and reseeds from
 * the kernel at the first draw in another process, so no output is ever shared. That reseed
 * happens at the enclave's first use of randomness, not here (test_host checks that siblings
 * draw different bytes). What the child shares with its siblings, it cannot change: the address
 * layout, the stack canary and pointer guard (docs/enclaves.md, 4).
 *
 * The secure heap is locked again, as pages are touched (within RLIMIT_MEMLOCK, as in a fresh
 * loader; mlockall later covers everything where it is allowed).
 */
static void
after_fork(void)
{
    if (sheap.len > 0) {
        (void)mlock2((void *)sheap.start, sheap.len, MLOCK_ONFAULT);
    }
}

static const struct clst_enclave_table *
load_image(int fd)
{
    char path[32], msg[FRAME_ERR_MSG_MAX + 1];
    /* The memfd the host measured, through its descriptor: the image's path is never used. */
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        const char *e = dlerror();
        snprintf(msg, sizeof(msg), "dlopen: %s", e != NULL ? e : "unknown error");
        load_failed(CLST_E_MALFORMED, msg);
    }
    const struct clst_enclave_table *t = dlsym(h, CLST_ENCLAVE_TABLE_SYMBOL);
    if (t == NULL) {
        load_failed(CLST_E_MALFORMED, "the image exports no clst_enclave_table (define it with "
                                      "CLST_ENCLAVE_DEFINE)");
    }
    if (t->abi_version != CLST_ENCLAVE_ABI_VERSION) {
        snprintf(msg, sizeof(msg), "the image was built for enclave ABI %u; this runtime has %u",
                 t->abi_version, CLST_ENCLAVE_ABI_VERSION);
        load_failed(CLST_E_MALFORMED, msg);
    }
    if (t->entry_count > CLST_ENCLAVE_ENTRY_MAX || (t->entry_count > 0 && t->entries == NULL)) {
        load_failed(CLST_E_MALFORMED, "the entry table is too long or missing");
    }
    for (uint32_t i = 0; i < t->entry_count; i++) {
        const char *n = t->entries[i].name;
        if (!frame_name_valid_str(n) || t->entries[i].fn == NULL || strncmp(n, "clst.", 5) == 0) {
            snprintf(msg, sizeof(msg),
                     "entry %u has an invalid name or no function (names: 1..64 of A-Z a-z 0-9 "
                     ". _ -, not starting with 'clst.')",
                     i);
            load_failed(CLST_E_MALFORMED, msg);
        }
        for (uint32_t j = 0; j < i; j++) {
            if (strcmp(t->entries[j].name, n) == 0) {
                snprintf(msg, sizeof(msg), "entry point '%s' is declared twice", n);
                load_failed(CLST_E_MALFORMED, msg);
            }
        }
    }
    return t;
}

static void
send_ready(const struct sandbox_report *rep)
{
    struct ready_info *ri = calloc(1, sizeof(*ri));
    struct clst_buf b = {0};
    struct clst_err err = {0};
    clst_buf_init(&b, READY_PAYLOAD_MAX);
    if (ri == NULL) {
        load_failed(CLST_E_NOMEM, "out of memory");
    }
    ri->flags = (rep->locked ? READY_FLAG_LOCKED : 0) |
                (rt.table->main != NULL ? READY_FLAG_HAS_MAIN : 0) |
                (rep->heap_applied ? READY_FLAG_HEAP : 0);
    ri->lock_errno = rep->lock_errno;
    ri->memlock_limit = rep->memlock_limit;
    ri->entry_count = rt.table->entry_count;
    for (uint32_t i = 0; i < rt.table->entry_count; i++) {
        snprintf(ri->entries[i], sizeof(ri->entries[i]), "%s", rt.table->entries[i].name);
    }
    if (ready_encode(ri, &b) != CLST_OK) {
        load_failed(CLST_E_LIMIT, "the entry table does not fit the READY message");
    }
    struct frame_hdr h = {.type = FRAME_READY, .payload_size = (uint32_t)b.size};
    if (frame_send(&rt.tx, &rt.wait, &h, NULL, b.data, CHAN_NO_DEADLINE, &err) != CLST_OK) {
        die(NOTE_PROTOCOL, ENCL_EXIT_PROTOCOL, "sending READY: %s", err.msg);
    }
    clst_buf_cleanup(&b);
    free(ri);
}

/* ---- serving calls --------------------------------------------------------------------------- */

static bool
grow(uint8_t **buf, size_t *cap, size_t need)
{
    if (need <= *cap) {
        return true;
    }
    uint8_t *p = realloc(*buf, need);
    if (p == NULL) {
        return false;
    }
    *buf = p;
    *cap = need;
    return true;
}

static enum clst_status
run_main(const uint8_t *in, size_t in_size, uint8_t *out, size_t out_cap, size_t *out_size)
{
    int argc;
    char **argv;
    struct clst_err err = {0};
    if (rt.table->main == NULL) {
        clst_enclave_set_error("this enclave has no main; it cannot be run with 'cloister run'");
        return CLST_E_NOTFOUND;
    }
    if (out_cap < 4) {
        clst_enclave_set_error("clst.main needs 4 bytes of output");
        return CLST_E_LIMIT;
    }
    enum clst_status st = main_args_decode(in, in_size, &argc, &argv, &err);
    if (st != CLST_OK) {
        clst_enclave_set_error("%s", err.msg);
        return st;
    }
    int code = rt.table->main(argc, argv);
    free(argv);
    clst_put_le32(out, (uint32_t)code);
    *out_size = 4;
    return CLST_OK;
}

static void
reply(uint32_t seq, enum clst_status st, const uint8_t *out, size_t out_size)
{
    struct clst_err err = {0};
    struct frame_hdr h = {.type = FRAME_RETURN, .seq = seq, .status = (uint32_t)st};
    const void *payload = out;
    if (st == CLST_OK) {
        h.payload_size = (uint32_t)out_size;
    } else {
        if (rt.errmsg[0] == '\0') {
            snprintf(rt.errmsg, sizeof(rt.errmsg), "%s", clst_status_str(st));
        }
        h.payload_size = (uint32_t)strnlen(rt.errmsg, FRAME_ERR_MSG_MAX);
        payload = rt.errmsg;
    }
    if (frame_send(&rt.tx, &rt.wait, &h, NULL, payload, CHAN_NO_DEADLINE, &err) != CLST_OK) {
        die(NOTE_PROTOCOL, ENCL_EXIT_PROTOCOL, "sending a result: %s", err.msg);
    }
}

static void
handle_call(const struct frame_hdr *h)
{
    char name[CLST_ENCLAVE_NAME_MAX + 1];
    struct clst_err err = {0};
    static const uint8_t empty[1];
    bool ok_in, ok_out;

    if (frame_recv_name(&rt.rx, &rt.wait, h, name, CHAN_NO_DEADLINE, &err) != CLST_OK) {
        die(NOTE_PROTOCOL, ENCL_EXIT_PROTOCOL, "%s", err.msg);
    }
    ok_in = grow(&rt.in_buf, &rt.in_cap, h->payload_size);
    /* Copied once into private memory (or skipped when there is no room for it). */
    if (ring_read(&rt.rx, &rt.wait, ok_in ? rt.in_buf : NULL, h->payload_size, CHAN_NO_DEADLINE,
                  &err) != CLST_OK) {
        die(NOTE_PROTOCOL, ENCL_EXIT_PROTOCOL, "%s", err.msg);
    }
    ring_release(&rt.rx);
    rt.errmsg[0] = '\0';
    ok_out = grow(&rt.out_buf, &rt.out_cap, (size_t)h->aux);
    if (!ok_in || !ok_out) {
        snprintf(rt.errmsg, sizeof(rt.errmsg),
                 "the enclave has no memory for %u bytes of input and %llu of output",
                 h->payload_size, (unsigned long long)h->aux);
        reply(h->seq, CLST_E_NOMEM, NULL, 0);
        return;
    }
    const uint8_t *in = h->payload_size > 0 ? rt.in_buf : empty;
    uint8_t *out = h->aux > 0 ? rt.out_buf : NULL;
    size_t out_cap = (size_t)h->aux, out_size = 0;
    enum clst_status st = CLST_E_NOTFOUND;
    rt.in_call = true;
    if (strcmp(name, CLST_ENCLAVE_MAIN_ENTRY) == 0) {
        st = run_main(in, h->payload_size, out, out_cap, &out_size);
    } else {
        const struct clst_enclave_entry *e = NULL;
        for (uint32_t i = 0; i < rt.table->entry_count; i++) {
            if (strcmp(rt.table->entries[i].name, name) == 0) {
                e = &rt.table->entries[i];
                break;
            }
        }
        if (e == NULL) {
            snprintf(rt.errmsg, sizeof(rt.errmsg), "no entry point named '%s'", name);
        } else {
            st = e->fn(in, h->payload_size, out, out_cap, &out_size);
        }
    }
    rt.in_call = false;
    if (st == CLST_OK && out_size > out_cap) {
        snprintf(rt.errmsg, sizeof(rt.errmsg),
                 "entry point '%s' claimed %zu bytes of output for a capacity of %zu", name,
                 out_size, out_cap);
        st = CLST_E_LIMIT;
    }
    if (st > CLST_E_INTERNAL) {
        st = CLST_E_INTERNAL;
    }
    reply(h->seq, st, out, out_size);
}

static _Noreturn void
serve(void)
{
    rt.serving = true;
    for (;;) {
        struct frame_hdr h;
        struct clst_err err = {0};
        if (frame_recv_hdr(&rt.rx, &rt.wait, FRAME_H2E, &rt.lim, &h, CHAN_NO_DEADLINE, &err) !=
            CLST_OK) {
            die(NOTE_PROTOCOL, ENCL_EXIT_PROTOCOL, "%s", err.msg);
        }
        switch (h.type) {
        case FRAME_EXIT:
            _exit(ENCL_EXIT_OK);
        case FRAME_ORET:
            /* A late answer to a service request that timed out: drop it. */
            if (ring_read(&rt.rx, &rt.wait, NULL, h.payload_size, CHAN_NO_DEADLINE, &err) !=
                CLST_OK) {
                die(NOTE_PROTOCOL, ENCL_EXIT_PROTOCOL, "%s", err.msg);
            }
            ring_release(&rt.rx);
            break;
        default:
            handle_call(&h);
            break;
        }
    }
}

int
rt_main(int argc, char **argv)
{
    static const int keep[] = {0, 1, 2, ENCL_FD_CONTROL};
    static struct sandbox_filters filters;
    struct clst_err err = {0};
    struct sandbox_report rep;
    int image_fd, chan_fd;

    bool template = argc == 2 && strcmp(argv[1], ENCL_TEMPLATE_MARKER) == 0;
    if (argc != 2 || (!template && strcmp(argv[1], ENCL_LOADER_MARKER) != 0)) {
        fprintf(stderr,
                "%s: this program is started by the Cloister enclave host for each "
                "enclave (cloister run, clst_host_enclave_create); it is not meant to be "
                "run by hand\n",
                ENCL_LOADER_NAME);
        return 2;
    }
    /* Until the hand-over there is no channel to report on: failures are exit statuses. The
     * name is what ps and pgrep show (exec through /proc/self/fd/N would leave "4"). */
    (void)prctl(PR_SET_NAME, template ? "clst-encl-tmpl" : "clst-enclave", 0, 0, 0);
    if (sandbox_early(&err) != CLST_OK) {
        _exit(ENCL_EXIT_LOAD);
    }
    sandbox_close_fds(keep, sizeof(keep) / sizeof(keep[0]));
    if (sandbox_trap_install(&err) != CLST_OK) {
        _exit(ENCL_EXIT_LOAD);
    }
    init_crypto();
    /* Both filters are compiled now (once, in a template), so that the hand-over is followed only
     * by installing the final one. */
    if (sandbox_filters_build(&filters, &err) != CLST_OK) {
        _exit(ENCL_EXIT_LOAD);
    }
    if (template) {
        secure_heap_find();
        template_serve(); /* returns in a forked child: a loader from here on */
        (void)prctl(PR_SET_NAME, "clst-enclave", 0, 0, 0);
        after_fork();
    }
    /* Memory is locked now (MCL_FUTURE covers the image and what it allocates; locks are not
     * inherited across fork). */
    sandbox_lock_memory(&rep);
    if (sandbox_stage1_load(&filters, &err) != CLST_OK) {
        _exit(ENCL_EXIT_LOAD);
    }
    /* A pre-started loader waits here, fully initialized, until it is given an enclave. */
    receive_handoff(&image_fd, &chan_fd);
    map_channel(chan_fd);
    close(chan_fd);
    sandbox_trap_note(&rt.ctrl->note);
    if ((uint32_t)getppid() != rt.init.host_pid) {
        die(NOTE_LOAD, ENCL_EXIT_LOAD, "the host process is gone");
    }
    rt.table = load_image(image_fd);
    close(image_fd);
    sandbox_limit_heap(rt.init.identity.heap_mib, &rep);
    if (rt.init.identity.debug) {
        /* A debug enclave may be inspected (gdb -p) by its owner; its evidence says so. */
        (void)prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
    }
    if (sandbox_stage2_load(&filters, &err) != CLST_OK) {
        load_failed(err.status, err.msg);
    }
    sandbox_filters_free(&filters);
    send_ready(&rep);
    serve();
}

/* ---- the SDK: errors, host calls ------------------------------------------------------------- */

void
clst_enclave_set_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rt.errmsg, sizeof(rt.errmsg), fmt, ap);
    va_end(ap);
}

enum clst_status
clst_enclave_host_call(const char *service, const void *in, size_t in_size, void *out,
                       size_t out_cap, size_t *out_size, struct clst_err *err)
{
    struct clst_err cerr = {0};
    if (!rt.serving || !rt.in_call) {
        return clst_err_set(err, CLST_E_INVAL,
                            "host services can be called only while an entry point runs");
    }
    if (!frame_name_valid_str(service) || (in == NULL && in_size > 0) ||
        (out == NULL && out_cap > 0)) {
        return clst_err_set(err, CLST_E_INVAL, "host call: invalid service name or buffer");
    }
    if (in_size > rt.lim.max_payload || out_cap > rt.lim.max_payload) {
        return clst_err_set(err, CLST_E_LIMIT, "host call '%s': %zu/%zu bytes exceed the limit",
                            service, in_size, out_cap);
    }
    uint32_t seq = ++rt.ocall_seq;
    uint64_t deadline = chan_deadline(rt.init.service_timeout_ms);
    struct frame_hdr h = {.type = FRAME_OCALL,
                          .seq = seq,
                          .name_size = (uint16_t)strlen(service),
                          .payload_size = (uint32_t)in_size,
                          .aux = out_cap};
    rt.wait.timed_out = false;
    enum clst_status st = frame_send(&rt.tx, &rt.wait, &h, service, in, deadline, &cerr);
    for (;;) {
        struct frame_hdr r;
        if (st == CLST_OK) {
            st = frame_recv_hdr(&rt.rx, &rt.wait, FRAME_H2E, &rt.lim, &r, deadline, &cerr);
        }
        if (st != CLST_OK) {
            if (rt.wait.timed_out) {
                return clst_err_set(err, CLST_E_LIMIT,
                                    "host service '%s' did not answer within %u ms", service,
                                    rt.init.service_timeout_ms);
            }
            die(NOTE_PROTOCOL, ENCL_EXIT_PROTOCOL, "%s", cerr.msg);
        }
        if (r.type == FRAME_EXIT) {
            _exit(ENCL_EXIT_OK);
        }
        if (r.type != FRAME_ORET) {
            die(NOTE_PROTOCOL, ENCL_EXIT_PROTOCOL,
                "the host sent a call while a service request was pending");
        }
        if (r.seq != seq) { /* a late answer to an earlier request */
            st = ring_read(&rt.rx, &rt.wait, NULL, r.payload_size, deadline, &cerr);
            ring_release(&rt.rx);
            continue;
        }
        if (r.status != CLST_OK) {
            uint8_t raw[FRAME_ERR_MSG_MAX];
            char msg[FRAME_ERR_MSG_MAX + 1];
            st = ring_read(&rt.rx, &rt.wait, raw, r.payload_size, deadline, &cerr);
            if (st != CLST_OK) {
                continue; /* reported above */
            }
            ring_release(&rt.rx);
            frame_msg_sanitize(raw, r.payload_size, msg, sizeof(msg));
            return clst_err_set(err, (enum clst_status)r.status, "host service '%s': %s", service,
                                msg);
        }
        if (r.payload_size > out_cap) {
            /* The host answered more than we asked for: drop it, never truncate silently. */
            st = ring_read(&rt.rx, &rt.wait, NULL, r.payload_size, deadline, &cerr);
            if (st != CLST_OK) {
                continue;
            }
            ring_release(&rt.rx);
            return clst_err_set(err, CLST_E_LIMIT,
                                "host service '%s' answered %u bytes for a buffer of %zu", service,
                                r.payload_size, out_cap);
        }
        st = ring_read(&rt.rx, &rt.wait, out, r.payload_size, deadline, &cerr);
        if (st != CLST_OK) {
            continue;
        }
        ring_release(&rt.rx);
        if (out_size != NULL) {
            *out_size = r.payload_size;
        }
        return CLST_OK;
    }
}

void
clst_enclave_debug_send_raw(const void *bytes, size_t size)
{
    struct clst_err ignored = {0};
    if (ring_write(&rt.tx, &rt.wait, bytes, size, chan_deadline(1000), &ignored) == CLST_OK) {
        ring_publish(&rt.tx);
    }
}

/* ---- identity, evidence, sealing ------------------------------------------------------------- */

enum clst_status
clst_enclave_identity_get(struct clst_enclave_identity *out)
{
    if (out == NULL || !rt.serving) {
        return CLST_E_INVAL;
    }
    *out = rt.init.identity;
    return CLST_OK;
}

enum clst_status
clst_enclave_evidence_get(const uint8_t report_data[static CLST_ENCLAVE_REPORT_DATA_SIZE],
                          uint8_t *out, size_t out_cap, size_t *out_size, struct clst_err *err)
{
    return clst_enclave_host_call(SVC_EVIDENCE, report_data, CLST_ENCLAVE_REPORT_DATA_SIZE, out,
                                  out_cap, out_size, err);
}

enum clst_status
clst_enclave_evidence_bind(const uint8_t *runtime_data, size_t runtime_data_size, uint8_t *out,
                           size_t out_cap, size_t *out_size, struct clst_err *err)
{
    uint8_t rd[CLST_ENCLAVE_REPORT_DATA_SIZE] = {0};
    if (runtime_data == NULL && runtime_data_size > 0) {
        return clst_err_set(err, CLST_E_INVAL, "evidence bind: NULL runtime data");
    }
    if (clst_sha256(runtime_data != NULL ? runtime_data : rd, runtime_data_size, rd) != CLST_OK) {
        return clst_err_set(err, CLST_E_CRYPTO, "evidence bind: SHA-256 failed");
    }
    return clst_enclave_evidence_get(rd, out, out_cap, out_size, err);
}

static enum clst_status
platform_key(void *ctx, uint16_t policy, uint16_t svn,
             const uint8_t key_id[static SEAL_KEY_ID_SIZE], uint8_t out[static SEAL_KEY_SIZE],
             struct clst_err *err)
{
    (void)ctx;
    struct svc_sealkey_req r = {.policy = policy, .svn = svn};
    uint8_t req[SEALKEY_REQ_SIZE], key[SEAL_KEY_SIZE];
    size_t n = 0;
    memcpy(r.key_id, key_id, SEAL_KEY_ID_SIZE);
    svc_sealkey_encode(&r, req);
    enum clst_status st =
        clst_enclave_host_call(SVC_SEALKEY, req, sizeof(req), key, sizeof(key), &n, err);
    if (st == CLST_OK && n != SEAL_KEY_SIZE) {
        st = clst_err_set(err, CLST_E_MALFORMED, "the platform returned a %zu-byte sealing key", n);
    }
    if (st == CLST_OK) {
        memcpy(out, key, SEAL_KEY_SIZE);
    }
    OPENSSL_cleanse(key, sizeof(key));
    return st;
}

enum clst_status
clst_enclave_seal(enum clst_enclave_seal_policy policy, const uint8_t *aad, size_t aad_size,
                  const uint8_t *in, size_t in_size, uint8_t *out, size_t out_cap, size_t *out_size,
                  struct clst_err *err)
{
    struct seal_keysrc ks = {platform_key, NULL};
    if (!rt.serving) {
        return clst_err_set(err, CLST_E_INVAL, "sealing is available only inside entry points");
    }
    return seal_blob(&ks, &rt.init.identity, policy, aad, aad_size, in, in_size, out, out_cap,
                     out_size, err);
}

enum clst_status
clst_enclave_unseal(const uint8_t *aad, size_t aad_size, const uint8_t *blob, size_t blob_size,
                    uint8_t *out, size_t out_cap, size_t *out_size, struct clst_err *err)
{
    struct seal_keysrc ks = {platform_key, NULL};
    if (!rt.serving) {
        return clst_err_set(err, CLST_E_INVAL, "sealing is available only inside entry points");
    }
    return unseal_blob(&ks, &rt.init.identity, aad, aad_size, blob, blob_size, out, out_cap,
                       out_size, err);
}

/* ---- files, time, logging -------------------------------------------------------------------- */

enum clst_status
clst_enclave_file_open(const char *name, unsigned mode, uint32_t *out_handle, struct clst_err *err)
{
    uint8_t req[4 + CLST_ENCLAVE_NAME_MAX], rep[4];
    size_t n = 0;
    if (!frame_name_valid_str(name) || out_handle == NULL ||
        (mode != CLST_ENCLAVE_FILE_READ && mode != CLST_ENCLAVE_FILE_WRITE)) {
        return clst_err_set(err, CLST_E_INVAL, "file open: invalid name or mode");
    }
    size_t len = strlen(name);
    clst_put_le32(req, mode);
    memcpy(req + 4, name, len);
    enum clst_status st =
        clst_enclave_host_call(SVC_FILE_OPEN, req, 4 + len, rep, sizeof(rep), &n, err);
    if (st == CLST_OK) {
        st = svc_u32_decode(rep, n, out_handle, err);
    }
    return st;
}

enum clst_status
clst_enclave_file_read(uint32_t handle, void *buf, size_t cap, size_t *out_size,
                       struct clst_err *err)
{
    uint8_t req[8];
    if (buf == NULL || cap == 0 || out_size == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "file read: no buffer");
    }
    size_t want = cap < CLST_ENCLAVE_FILE_IO_MAX ? cap : CLST_ENCLAVE_FILE_IO_MAX;
    clst_put_le32(req, handle);
    clst_put_le32(req + 4, (uint32_t)want);
    return clst_enclave_host_call(SVC_FILE_READ, req, sizeof(req), buf, want, out_size, err);
}

enum clst_status
clst_enclave_file_write(uint32_t handle, const void *data, size_t size, struct clst_err *err)
{
    const uint8_t *p = data;
    uint8_t *req = NULL;
    enum clst_status st = CLST_OK;
    if (data == NULL && size > 0) {
        return clst_err_set(err, CLST_E_INVAL, "file write: NULL data");
    }
    size_t chunk_max = size < CLST_ENCLAVE_FILE_IO_MAX ? size : CLST_ENCLAVE_FILE_IO_MAX;
    req = malloc(4 + chunk_max);
    if (req == NULL) {
        return clst_err_set(err, CLST_E_NOMEM, "file write: out of memory");
    }
    do {
        size_t chunk = size < chunk_max ? size : chunk_max;
        clst_put_le32(req, handle);
        if (chunk > 0) {
            memcpy(req + 4, p, chunk);
        }
        size_t n = 0;
        st = clst_enclave_host_call(SVC_FILE_WRITE, req, 4 + chunk, NULL, 0, &n, err);
        p += chunk;
        size -= chunk;
    } while (st == CLST_OK && size > 0);
    free(req);
    return st;
}

enum clst_status
clst_enclave_time(int64_t *out_sec, uint32_t *out_nsec)
{
    uint8_t rep[12];
    size_t n = 0;
    int64_t s;
    uint32_t ns;
    enum clst_status st = clst_enclave_host_call(SVC_TIME, NULL, 0, rep, sizeof(rep), &n, NULL);
    if (st == CLST_OK) {
        st = svc_time_decode(rep, n, &s, &ns, NULL);
    }
    if (st == CLST_OK) {
        *out_sec = s;
        *out_nsec = ns;
    }
    return st;
}

void
clst_enclave_log(enum clst_log_level level, const char *fmt, ...)
{
    char buf[1 + SVC_LOG_MAX + 1];
    va_list ap;
    if ((unsigned)level > CLST_LOG_DEBUG) {
        return;
    }
    buf[0] = (char)level;
    va_start(ap, fmt);
    int n = vsnprintf(buf + 1, SVC_LOG_MAX + 1, fmt, ap);
    va_end(ap);
    if (n < 0) {
        return;
    }
    size_t len = (size_t)n > SVC_LOG_MAX ? SVC_LOG_MAX : (size_t)n;
    (void)clst_enclave_host_call(SVC_LOG, buf, 1 + len, NULL, 0, NULL, NULL);
}

enum clst_status
clst_enclave_printf(const char *fmt, ...)
{
    char buf[RT_PRINTF_MAX + 1];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n < 0) {
        return CLST_E_INVAL;
    }
    if (!rt.have_stdout) {
        enum clst_status st =
            clst_enclave_file_open("stdout", CLST_ENCLAVE_FILE_WRITE, &rt.stdout_handle, NULL);
        if (st != CLST_OK) {
            return st;
        }
        rt.have_stdout = true;
    }
    size_t len = (size_t)n > RT_PRINTF_MAX ? RT_PRINTF_MAX : (size_t)n;
    enum clst_status st = clst_enclave_file_write(rt.stdout_handle, buf, len, NULL);
    return st == CLST_OK && (size_t)n > RT_PRINTF_MAX ? CLST_E_LIMIT : st;
}
