/*
 * The host side of the enclave runtime: create an enclave (read, verify and measure the image into
 * a sealed memfd, build the channel, start the trusted loader from a descriptor), call entry
 * points, serve host-service requests during calls, and tear everything down.
 *
 * A loader process is started with posix_spawn (vfork-like, so a large host does not pay for
 * copying its page tables) running the loader binary through its descriptor, with an empty
 * environment, descriptors 0-2 on /dev/null, its control socket as 3, and nothing else; or it is
 * forked by the process's loader template, itself started that way (docs/enclaves.md, 4). Never
 * a fork of the host: the enclave must not inherit a copy of the host's memory, which holds the
 * sim platform's signing key and sealing secret. The image and channel memfds are handed over on
 * the control socket once the image has been verified.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <seccomp.h>

#include "enclave/host_int.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_UNDEFINED__)
#define HOST_SANITIZED true
#else
#define HOST_SANITIZED false
#endif

void
clst_host_options_init(struct clst_host_options *o)
{
    memset(o, 0, sizeof(*o));
    o->call_timeout_ms = CLST_HOST_CALL_TIMEOUT_DEFAULT_MS;
    o->start_timeout_ms = CLST_HOST_START_TIMEOUT_DEFAULT_MS;
    o->service_timeout_ms = CLST_HOST_NO_TIMEOUT;
    o->ring_size = CLST_HOST_RING_DEFAULT_SIZE;
    o->max_message_size = CLST_HOST_MESSAGE_DEFAULT_MAX;
    o->wait = CLST_HOST_WAIT_SLEEP;
    o->spin_us = 50;
    /* Sanitizer builds (tests) keep the enclave's sanitizer reports visible. */
    o->keep_stderr = HOST_SANITIZED;
}

static enum clst_status
check_options(struct clst_host_options *o, struct clst_err *err)
{
    if (o->ring_size < CLST_HOST_RING_MIN_SIZE || o->ring_size > CLST_HOST_RING_MAX_SIZE ||
        (o->ring_size & (o->ring_size - 1)) != 0) {
        return clst_err_set(err, CLST_E_INVAL,
                            "ring size %zu: must be a power of two between %u and %u", o->ring_size,
                            CLST_HOST_RING_MIN_SIZE, CLST_HOST_RING_MAX_SIZE);
    }
    if (o->max_message_size < 4096 || o->max_message_size > CLST_HOST_MESSAGE_MAX) {
        return clst_err_set(err, CLST_E_INVAL, "max message size %zu: must be 4096..%u",
                            o->max_message_size, CLST_HOST_MESSAGE_MAX);
    }
    if (o->wait != CLST_HOST_WAIT_SLEEP && o->wait != CLST_HOST_WAIT_SPIN) {
        return clst_err_set(err, CLST_E_INVAL, "unknown wait mode %d", (int)o->wait);
    }
    if (o->spin_us == 0 || o->spin_us > 1000) {
        return clst_err_set(err, CLST_E_INVAL, "spin budget %u us: must be 1..1000", o->spin_us);
    }
    if (o->call_timeout_ms == 0 || o->start_timeout_ms == 0 || o->service_timeout_ms == 0) {
        return clst_err_set(err, CLST_E_INVAL, "timeouts must be positive");
    }
    return CLST_OK;
}

/* ---- liveness and death ---------------------------------------------------------------------- */

static bool
host_alive(void *ctx)
{
    struct clst_host_enclave *e = ctx;
    struct pollfd p = {.fd = e->pidfd, .events = POLLIN};
    if (e->reaped || e->pidfd < 0) {
        return false;
    }
    return poll(&p, 1, 0) == 0;
}

/* Reaps the process (which must be dead or dying) and returns its wait status description. */
static void
reap(struct clst_host_enclave *e, siginfo_t *si)
{
    memset(si, 0, sizeof(*si));
    if (e->reaped) {
        return;
    }
    for (;;) {
        if (waitid((idtype_t)P_PIDFD, (id_t)e->pidfd, si, WEXITED) == 0) {
            break;
        }
        if (errno != EINTR) {
            /* Someone else reaped it (SIGCHLD ignored, or a wait(-1) elsewhere). */
            memset(si, 0, sizeof(*si));
            break;
        }
    }
    e->reaped = true;
}

static void
kill_enclave(struct clst_host_enclave *e)
{
    if (!e->reaped && e->pidfd >= 0) {
        (void)syscall(SYS_pidfd_send_signal, e->pidfd, SIGKILL, NULL, 0);
    }
}

/* Formats into `out`, truncating silently (messages are for people). */
static void fmt_trunc(char *out, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
fmt_trunc(char *out, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(out, cap, fmt, ap);
    va_end(ap);
}

/* Explains how the enclave ended, from its note in shared memory and its wait status. */
static void
describe_end(struct clst_host_enclave *e, const siginfo_t *si, bool killed_by_us, char *out,
             size_t cap)
{
    struct chan_note note;
    char msg[NOTE_MSG_SIZE];
    memcpy(&note, (const void *)&e->ctrl->note, sizeof(note)); /* copy once, then look */
    uint32_t kind = atomic_load(&note.kind);
    frame_msg_sanitize((const uint8_t *)note.msg, strnlen(note.msg, sizeof(note.msg)), msg,
                       sizeof(msg));
    if (kind == NOTE_SANDBOX) {
        char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, note.syscall_nr);
        fmt_trunc(out, cap,
                  "killed by the sandbox: system call %s (%d) is not allowed in an enclave "
                  "(no files, sockets, processes or threads; use host services)",
                  name != NULL ? name : "?", note.syscall_nr);
        free(name);
    } else if (kind == NOTE_PROTOCOL) {
        fmt_trunc(out, cap, "it stopped because the host broke the channel protocol: %s", msg);
    } else if (kind == NOTE_LOAD) {
        fmt_trunc(out, cap, "it failed to load: %s", msg);
    } else if (killed_by_us) {
        fmt_trunc(out, cap, "terminated by the host");
    } else if ((si->si_code == CLD_KILLED || si->si_code == CLD_DUMPED) &&
               si->si_status == SIGSYS) {
        /* The trap arrived while the enclave blocked SIGSYS: the kernel then kills outright. */
        fmt_trunc(out, cap,
                  "killed by the sandbox: a system call outside the allow-list (SIGSYS; "
                  "it had signals blocked, so the call is not known)");
    } else if (si->si_code == CLD_KILLED || si->si_code == CLD_DUMPED) {
        const char *d = sigdescr_np(si->si_status);
        const char *a = sigabbrev_np(si->si_status);
        fmt_trunc(out, cap, "killed by signal SIG%s (%s)", a != NULL ? a : "?",
                  d != NULL ? d : "unknown signal");
    } else if (si->si_code == CLD_EXITED && si->si_status == ENCL_EXIT_LOAD) {
        fmt_trunc(out, cap,
                  "the enclave loader failed before it was given the image (it could "
                  "not set up its sandbox or crypto library)");
    } else if (si->si_code == CLD_EXITED) {
        fmt_trunc(out, cap, "the enclave process exited with status %d", si->si_status);
    } else {
        fmt_trunc(out, cap, "the enclave process is gone (its status was collected elsewhere)");
    }
}

/*
 * The channel failed during `what` (st and cerr say how): make sure the process is gone, record
 * why, and report it. Every later call fails with the same reason.
 */
static enum clst_status
fail_enclave(struct clst_host_enclave *e, enum clst_status st, const struct clst_err *cerr,
             const char *what, uint32_t timeout_ms, struct clst_err *err)
{
    siginfo_t si;
    char end[300];
    bool by_us = false;
    char why[CLST_ERR_MSG_SIZE];

    snprintf(why, sizeof(why), "%s", cerr->msg);
    if (st == CLST_E_IO || !host_alive(e)) {
        /* It died on its own: give it a moment to be fully gone. */
        struct pollfd p = {.fd = e->pidfd, .events = POLLIN};
        (void)poll(&p, 1, 1000);
        if (!host_alive(e)) {
            st = CLST_E_IO;
        }
    }
    if (st != CLST_E_IO) {
        kill_enclave(e);
        by_us = true;
    }
    reap(e, &si);
    describe_end(e, &si, by_us, end, sizeof(end));
    e->dead = true;
    e->pid = -1;
    if (st == CLST_E_LIMIT && e->wait.timed_out) {
        fmt_trunc(e->death, sizeof(e->death),
                  "%s: the enclave did not answer within %u ms; it was terminated", what,
                  timeout_ms);
    } else if (st == CLST_E_IO) {
        fmt_trunc(e->death, sizeof(e->death), "%s: the enclave died: %s", what, end);
    } else {
        fmt_trunc(e->death, sizeof(e->death),
                  "%s: the enclave broke the channel protocol (%s); it was terminated", what, why);
    }
    e->death_status = st;
    clst_log_warn("%s", e->death);
    return clst_err_set(err, st, "%s", e->death);
}

/* ---- creation -------------------------------------------------------------------------------- */

static enum clst_status
find_loader(const char *given, char *out, size_t cap, struct clst_err *err)
{
    const char *env = secure_getenv(ENCL_LOADER_ENV);
    int n;
    if (given != NULL) {
        n = snprintf(out, cap, "%s", given);
    } else if (env != NULL && env[0] != '\0') {
        n = snprintf(out, cap, "%s", env);
    } else {
        char exe[PATH_MAX];
        ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        if (len <= 0) {
            return clst_err_set(err, CLST_E_NOTFOUND, "cannot find %s: set $%s to its path",
                                ENCL_LOADER_NAME, ENCL_LOADER_ENV);
        }
        exe[len] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash != NULL) {
            *slash = '\0';
        }
        n = snprintf(out, cap, "%s/%s", exe, ENCL_LOADER_NAME);
        if (n > 0 && (size_t)n < cap && access(out, X_OK) != 0) {
#ifdef CLST_ENCLAVE_LOADER_DEFAULT
            n = snprintf(out, cap, "%s", CLST_ENCLAVE_LOADER_DEFAULT);
#else
            return clst_err_set(err, CLST_E_NOTFOUND,
                                "cannot find the enclave loader %s beside this program: "
                                "install it there or set $%s to its path",
                                out, ENCL_LOADER_ENV);
#endif
        }
    }
    if (n < 0 || (size_t)n >= cap) {
        return clst_err_set(err, CLST_E_INVAL, "enclave loader path too long");
    }
    return CLST_OK;
}

static enum clst_status
make_channel(struct clst_host_enclave *e, struct clst_err *err)
{
    size_t ring = e->opts.ring_size;
    e->chan_size = CHAN_CTRL_SIZE + 2 * ring;
    e->chan_fd = memfd_create("clst-enclave-channel", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (e->chan_fd < 0) {
        return clst_err_set(err, CLST_E_IO, "memfd_create: %s", strerror(errno));
    }
    /* Sealed against resizing, so neither side can make the other's accesses fault (SIGBUS). */
    if (ftruncate(e->chan_fd, (off_t)e->chan_size) != 0 ||
        fcntl(e->chan_fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
        return clst_err_set(err, CLST_E_IO, "preparing the channel memory: %s", strerror(errno));
    }
    void *map = mmap(NULL, e->chan_size, PROT_READ | PROT_WRITE, MAP_SHARED, e->chan_fd, 0);
    if (map == MAP_FAILED) {
        return clst_err_set(err, CLST_E_NOMEM, "mapping the channel: %s", strerror(errno));
    }
    e->chan_map = map;
    e->ctrl = map;
    struct chan_init *in = &e->ctrl->init;
    in->magic = CHAN_MAGIC;
    in->version = CHAN_VERSION;
    in->ring_size = ring;
    in->max_message = e->opts.max_message_size;
    in->flags = (e->id.debug ? INIT_FLAG_DEBUG : 0) |
                (e->opts.wait == CLST_HOST_WAIT_SPIN ? INIT_FLAG_SPIN : 0) |
                (e->opts.keep_stderr ? INIT_FLAG_KEEP_STDERR : 0);
    in->spin_us = e->opts.spin_us;
    in->service_timeout_ms = e->opts.service_timeout_ms;
    in->host_pid = (uint32_t)getpid();
    in->identity = e->id;
    ring_init(&e->tx, &e->ctrl->h2e, e->chan_map + CHAN_CTRL_SIZE, ring, true);
    ring_init(&e->rx, &e->ctrl->e2h, e->chan_map + CHAN_CTRL_SIZE + ring, ring, false);
    atomic_store(&e->ctrl->h2e.producer_cpu, -1);
    atomic_store(&e->ctrl->h2e.consumer_cpu, -1);
    atomic_store(&e->ctrl->e2h.producer_cpu, -1);
    atomic_store(&e->ctrl->e2h.consumer_cpu, -1);
    return CLST_OK;
}

/* A started loader process that has not been given an enclave yet. */
struct loader_proc {
    pid_t pid;
    int pidfd;
    int sock;            /* our end of its control socket */
    pid_t asked_of;      /* the template asked for it (0: spawned) */
    bool finish_failed;  /* the template's answer did not come (loader_finish) */
    uint32_t timeout_ms; /* how long loader_discard may wait for that answer (0: the default) */
};

static enum clst_status loader_finish(struct loader_proc *lp, uint32_t timeout_ms,
                                      struct clst_err *err);

static void
loader_discard(struct loader_proc *lp)
{
    if (lp->sock >= 0 && lp->pidfd < 0) {
        /* Asked of the template, not yet answered: learn the child's pid, so that it is reaped
         * (without waiting again when the answer already failed to come: a late one is taken). */
        struct clst_err ignored = {0};
        uint32_t wait_ms = lp->timeout_ms > 0 ? lp->timeout_ms : CLST_HOST_START_TIMEOUT_DEFAULT_MS;
        (void)loader_finish(lp, lp->finish_failed ? 0 : wait_ms, &ignored);
    }
    if (lp->sock >= 0) {
        close(lp->sock); /* it exits when it sees the socket close */
    }
    if (lp->pidfd >= 0) {
        siginfo_t si;
        (void)syscall(SYS_pidfd_send_signal, lp->pidfd, SIGKILL, NULL, 0);
        while (waitid((idtype_t)P_PIDFD, (id_t)lp->pidfd, &si, WEXITED) != 0 && errno == EINTR) {
        }
        close(lp->pidfd);
    }
    lp->pid = -1;
    lp->pidfd = -1;
    lp->sock = -1;
    lp->asked_of = 0;
    lp->finish_failed = false;
}

static enum clst_status
loader_spawn(const char *loader, bool keep_stderr, const char *marker, struct loader_proc *out,
             struct clst_err *err)
{
    int lfd = -1, sv[2] = {-1, -1}, child_sock = -1, r;
    enum clst_status rc = CLST_E_IO;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    bool fa_init = false, attr_init = false;
    sigset_t all, none;
    struct stat st;
    char *const argv[] = {(char *)ENCL_LOADER_NAME, (char *)marker, NULL};
    char *const envp[] = {NULL};
    char path[32];
    pid_t pid = -1;

    memset(out, 0, sizeof(*out));
    out->pid = -1;
    out->pidfd = -1;
    out->sock = -1;
    lfd = open(loader, O_RDONLY | O_CLOEXEC);
    if (lfd < 0 || fstat(lfd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = clst_err_set(err, CLST_E_NOTFOUND, "cannot open the enclave loader %s: %s", loader,
                          lfd < 0 ? strerror(errno) : "not a regular file");
        goto out;
    }
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
        rc = clst_err_set(err, CLST_E_IO, "socketpair: %s", strerror(errno));
        goto out;
    }
    /* Above the slots the child uses, so that dup2 onto 3 and 4 never overwrites a source. */
    child_sock = fcntl(sv[1], F_DUPFD_CLOEXEC, 10);
    int lhi = fcntl(lfd, F_DUPFD_CLOEXEC, 10);
    close(lfd);
    lfd = lhi;
    if (child_sock < 0 || lfd < 0) {
        rc = clst_err_set(err, CLST_E_IO, "duplicating descriptors: %s", strerror(errno));
        goto out;
    }
    if (posix_spawn_file_actions_init(&fa) != 0) {
        goto out;
    }
    fa_init = true;
    if (posix_spawnattr_init(&attr) != 0) {
        goto out;
    }
    attr_init = true;
    sigfillset(&all);
    sigemptyset(&none);
    r = posix_spawn_file_actions_adddup2(&fa, child_sock, ENCL_FD_CONTROL);
    r = r ? r : posix_spawn_file_actions_adddup2(&fa, lfd, ENCL_FD_LOADER);
    r = r ? r : posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    r = r ? r : posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    if (!keep_stderr) {
        r = r ? r : posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    }
    r = r ? r : posix_spawn_file_actions_addclosefrom_np(&fa, ENCL_FD_LOADER + 1);
    r = r ? r : posix_spawnattr_setsigdefault(&attr, &all);
    r = r ? r : posix_spawnattr_setsigmask(&attr, &none);
    r = r ? r : posix_spawnattr_setpgroup(&attr, 0);
    r = r ? r
          : posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK |
                                                POSIX_SPAWN_SETPGROUP);
    if (r != 0) {
        rc = clst_err_set(err, CLST_E_INTERNAL, "preparing the enclave process: %s", strerror(r));
        goto out;
    }
    /* The loader is executed through its descriptor (as fexecve would), in the child, after the
     * file actions made it descriptor 4. */
    snprintf(path, sizeof(path), "/proc/self/fd/%d", ENCL_FD_LOADER);
    r = posix_spawn(&pid, path, &fa, &attr, argv, envp);
    if (r != 0) {
        rc = clst_err_set(err, CLST_E_IO, "cannot start the enclave loader %s: %s", loader,
                          strerror(r));
        goto out;
    }
    out->pid = pid;
    out->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (out->pidfd < 0) {
        int saved = errno;
        kill(pid, SIGKILL);
        (void)waitpid(pid, NULL, 0);
        out->pid = -1;
        rc = clst_err_set(err, CLST_E_IO, "pidfd_open: %s", strerror(saved));
        goto out;
    }
    out->sock = sv[0];
    sv[0] = -1;
    rc = CLST_OK;
out:
    if (fa_init) {
        posix_spawn_file_actions_destroy(&fa);
    }
    if (attr_init) {
        posix_spawnattr_destroy(&attr);
    }
    if (lfd >= 0) {
        close(lfd);
    }
    if (child_sock >= 0) {
        close(child_sock);
    }
    if (sv[0] >= 0) {
        close(sv[0]);
    }
    if (sv[1] >= 0) {
        close(sv[1]);
    }
    return rc;
}

/*
 * The loader template: one per host process, started by the first creation that uses it and kept
 * until the process ends (or clst_host_release). Each loader forked from it skips exec, dynamic
 * linking and OpenSSL's set-up (docs/enclaves.md, 4 and 6). The mutex orders the requests; the
 * answers come on each new loader's own socket, so nobody waits for the template under the lock.
 */
static pthread_mutex_t template_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    bool have;
    struct loader_proc lp;
    char loader[PATH_MAX];
    bool keep_stderr;
} tmpl;

static bool
proc_alive(int pidfd)
{
    struct pollfd p = {.fd = pidfd, .events = POLLIN};
    return poll(&p, 1, 0) == 0;
}

/* Sends the template one fork request carrying the new loader's end of its control socket. */
static bool
template_ask(int template_sock, int child_sock)
{
    return fdpass_send(template_sock, ENCL_FORK_MSG, ENCL_FORK_SIZE, &child_sock, 1);
}

/* With template_lock held: makes sure the template is alive and for this loader and keep_stderr
 * (start: starting one if needed); false when there is none. */
static bool
template_ensure(const char *loader, bool keep_stderr, bool start, enum clst_status *rc,
                struct clst_err *err)
{
    if (tmpl.have && !proc_alive(tmpl.lp.pidfd)) {
        loader_discard(&tmpl.lp);
        tmpl.have = false;
    }
    if (tmpl.have && (tmpl.keep_stderr != keep_stderr || strcmp(tmpl.loader, loader) != 0)) {
        if (!start) {
            return false; /* another configuration: served by fresh loaders, the template stays */
        }
        loader_discard(&tmpl.lp); /* prewarming asks for this configuration: it replaces it */
        tmpl.have = false;
    }
    if (!tmpl.have && start) {
        *rc = loader_spawn(loader, keep_stderr, ENCL_TEMPLATE_MARKER, &tmpl.lp, err);
        if (*rc == CLST_OK) {
            snprintf(tmpl.loader, sizeof(tmpl.loader), "%s", loader);
            tmpl.keep_stderr = keep_stderr;
            tmpl.have = true;
        }
    }
    return tmpl.have;
}

/*
 * Asks the template for a loader; with `start`, a missing (or dead, or other) template is started
 * first, otherwise *absent is set and nothing is done. *out gets our end of the loader's control
 * socket; its pid comes with loader_finish. A template that cannot be asked is replaced once.
 */
static enum clst_status
template_request(const char *loader, bool keep_stderr, bool start, bool *absent,
                 struct loader_proc *out, struct clst_err *err)
{
    enum clst_status rc = CLST_E_IO;
    int sv[2] = {-1, -1};
    memset(out, 0, sizeof(*out));
    out->pid = -1;
    out->pidfd = -1;
    out->sock = -1;
    *absent = false;
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
        return clst_err_set(err, CLST_E_IO, "socketpair: %s", strerror(errno));
    }
    pthread_mutex_lock(&template_lock);
    for (int attempt = 0; attempt < 2; attempt++) {
        if (!template_ensure(loader, keep_stderr, start, &rc, err)) {
            *absent = !start;
            break;
        }
        if (template_ask(tmpl.lp.sock, sv[1])) {
            out->sock = sv[0];
            out->asked_of = tmpl.lp.pid;
            sv[0] = -1;
            rc = CLST_OK;
            break;
        }
        rc = clst_err_set(err, CLST_E_IO, "the enclave loader template does not answer: %s",
                          strerror(errno));
        loader_discard(&tmpl.lp);
        tmpl.have = false;
    }
    pthread_mutex_unlock(&template_lock);
    if (sv[0] >= 0) {
        close(sv[0]);
    }
    close(sv[1]);
    return rc;
}

/* Ends the template `pid` if it is still this process's template (it failed to answer). */
static void
template_drop(pid_t pid)
{
    pthread_mutex_lock(&template_lock);
    if (tmpl.have && tmpl.lp.pid == pid) {
        loader_discard(&tmpl.lp);
        tmpl.have = false;
    }
    pthread_mutex_unlock(&template_lock);
}

/*
 * For a loader asked of the template: waits for its pid and takes it as our child. A template
 * that does not answer in time, or answers wrongly, is ended (the next creation starts another);
 * one that could not fork is kept.
 */
static enum clst_status
loader_finish(struct loader_proc *lp, uint32_t timeout_ms, struct clst_err *err)
{
    char reply[ENCL_FORKED_SIZE];
    struct pollfd p = {.fd = lp->sock, .events = POLLIN};
    int32_t v;
    if (lp->pidfd >= 0) {
        return CLST_OK; /* spawned, or finished already */
    }
    lp->finish_failed = true; /* until the end */
    int r;
    do {
        r = poll(&p, 1, timeout_ms == CLST_HOST_NO_TIMEOUT ? -1 : (int)timeout_ms);
    } while (r < 0 && errno == EINTR);
    if (r == 0) {
        if (timeout_ms > 0) {
            template_drop(lp->asked_of);
        }
        return clst_err_set(err, CLST_E_IO, "the enclave loader template did not answer in %u ms",
                            timeout_ms);
    }
    ssize_t n;
    do {
        n = recv(lp->sock, reply, sizeof(reply), MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    if (n != (ssize_t)sizeof(reply) || memcmp(reply, ENCL_FORKED_MSG, ENCL_FORK_SIZE) != 0) {
        template_drop(lp->asked_of);
        return clst_err_set(err, CLST_E_IO, "the enclave loader template %s",
                            n == 0 ? "ended without starting a loader" : "answered wrongly");
    }
    memcpy(&v, reply + ENCL_FORK_SIZE, sizeof(v));
    if (v <= 0) {
        return clst_err_set(err, CLST_E_IO, "the enclave loader template could not fork: %s",
                            strerror(-v));
    }
    int pidfd = (int)syscall(SYS_pidfd_open, (pid_t)v, 0);
    siginfo_t si;
    memset(&si, 0, sizeof(si));
    /* Ours (CLONE_PARENT): a process that is not our child fails with ECHILD. */
    if (pidfd < 0 ||
        waitid((idtype_t)P_PIDFD, (id_t)pidfd, &si, WEXITED | WNOHANG | WNOWAIT) != 0) {
        int saved = errno;
        if (pidfd >= 0) {
            close(pidfd);
        }
        return clst_err_set(err, CLST_E_IO, "the loader %d from the template: %s", (int)v,
                            strerror(saved));
    }
    lp->pid = (pid_t)v;
    lp->pidfd = pidfd;
    lp->finish_failed = false;
    return CLST_OK;
}

/*
 * Starts a loader: forked from the template, or (fresh) spawned from the loader binary. Without
 * a template, `start` starts one first (prewarming); otherwise the loader is spawned and
 * *no_template asks the caller to start the template in the background, after its creation: the
 * first creation in a process then costs no more than a fresh one.
 */
static enum clst_status
loader_start(const char *loader, bool keep_stderr, bool fresh, bool start, bool *no_template,
             struct loader_proc *lp, struct clst_err *err)
{
    *no_template = false;
    if (!fresh) {
        enum clst_status st = template_request(loader, keep_stderr, start, no_template, lp, err);
        if (!*no_template) {
            return st;
        }
    }
    return loader_spawn(loader, keep_stderr, ENCL_LOADER_MARKER, lp, err);
}

/*
 * One pre-started loader per host process (clst_host_prewarm). Process-wide by nature: it stands
 * for "the next enclave this process creates", whichever thread creates it; the mutex guards it.
 */
static pthread_mutex_t spare_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    bool have;
    struct loader_proc lp;
    char loader[PATH_MAX];
    bool keep_stderr;
    bool fresh;
} spare;

/* Background starts in progress (prewarm_async), which clst_host_release waits for. */
static pthread_mutex_t jobs_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t jobs_done = PTHREAD_COND_INITIALIZER;
static unsigned jobs_running;

/*
 * A host that forks (without exec) must not share the template or the spare with its copy: their
 * loaders are the original's children, and the copy would keep the template's socket open after
 * the original ends. The copy forgets both (closing only its descriptors) and starts its own;
 * the locks are held across the fork so that no state is copied half-changed, and the copy has
 * none of the background threads.
 */
static void
atfork_prepare(void)
{
    pthread_mutex_lock(&jobs_lock);
    pthread_mutex_lock(&template_lock);
    pthread_mutex_lock(&spare_lock);
}

static void
atfork_parent(void)
{
    pthread_mutex_unlock(&spare_lock);
    pthread_mutex_unlock(&template_lock);
    pthread_mutex_unlock(&jobs_lock);
}

static void
forget(struct loader_proc *lp)
{
    if (lp->sock >= 0) {
        close(lp->sock);
    }
    if (lp->pidfd >= 0) {
        close(lp->pidfd);
    }
    lp->sock = -1;
    lp->pidfd = -1;
    lp->pid = -1;
}

static void
atfork_child(void)
{
    if (spare.have) {
        forget(&spare.lp);
        spare.have = false;
    }
    if (tmpl.have) {
        forget(&tmpl.lp);
        tmpl.have = false;
    }
    jobs_running = 0;
    pthread_cond_init(&jobs_done, NULL);
    pthread_mutex_unlock(&spare_lock);
    pthread_mutex_unlock(&template_lock);
    pthread_mutex_unlock(&jobs_lock);
}

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void
atfork_register(void)
{
    (void)pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

/* Takes the spare when it was started the same way for the same loader and is still alive. */
static bool
spare_take(const char *loader, bool keep_stderr, bool fresh, struct loader_proc *out)
{
    bool got = false;
    pthread_mutex_lock(&spare_lock);
    if (spare.have) {
        if (proc_alive(spare.lp.pidfd) && spare.keep_stderr == keep_stderr &&
            spare.fresh == fresh && strcmp(spare.loader, loader) == 0) {
            *out = spare.lp;
            got = true;
        } else {
            loader_discard(&spare.lp);
        }
        spare.have = false;
    }
    pthread_mutex_unlock(&spare_lock);
    return got;
}

/* Makes lp the spare (replacing, and ending, an older one). */
static void
spare_put(const struct loader_proc *lp, const char *loader, bool keep_stderr, bool fresh)
{
    pthread_mutex_lock(&spare_lock);
    if (spare.have) {
        loader_discard(&spare.lp);
    }
    spare.lp = *lp;
    snprintf(spare.loader, sizeof(spare.loader), "%s", loader);
    spare.keep_stderr = keep_stderr;
    spare.fresh = fresh;
    spare.have = true;
    pthread_mutex_unlock(&spare_lock);
}

/*
 * Starts a loader and waits until it is ours (prewarming): from the template (started first if
 * needed) unless fresh; a template that fails to deliver one is replaced by a fresh loader.
 */
static enum clst_status
loader_start_now(const char *loader, bool keep_stderr, bool fresh, uint32_t timeout_ms,
                 struct loader_proc *lp, struct clst_err *err)
{
    bool no_template;
    enum clst_status st = loader_start(loader, keep_stderr, fresh, true, &no_template, lp, err);
    if (st != CLST_OK) {
        return st;
    }
    lp->timeout_ms = timeout_ms;
    bool asked = lp->pidfd < 0;
    st = loader_finish(lp, timeout_ms, err);
    if (st != CLST_OK && asked) {
        clst_log_warn("%s; starting a fresh enclave loader", err->msg);
        loader_discard(lp);
        st = loader_spawn(loader, keep_stderr, ENCL_LOADER_MARKER, lp, err);
    }
    if (st != CLST_OK) {
        loader_discard(lp);
    }
    return st;
}

enum clst_status
clst_host_prewarm(const struct clst_host_options *opts, struct clst_err *err)
{
    struct clst_host_options defaults;
    char loader[PATH_MAX];
    struct loader_proc lp;
    (void)pthread_once(&atfork_once, atfork_register);
    if (opts == NULL) {
        clst_host_options_init(&defaults);
        opts = &defaults;
    }
    enum clst_status st = find_loader(opts->loader_path, loader, sizeof(loader), err);
    if (st != CLST_OK) {
        return st;
    }
    st = loader_start_now(loader, opts->keep_stderr, opts->fresh_process, opts->start_timeout_ms,
                          &lp, err);
    if (st != CLST_OK) {
        return st;
    }
    spare_put(&lp, loader, opts->keep_stderr, opts->fresh_process);
    return CLST_OK;
}

void
clst_host_release(void)
{
    pthread_mutex_lock(&jobs_lock);
    while (jobs_running > 0) {
        pthread_cond_wait(&jobs_done, &jobs_lock);
    }
    pthread_mutex_unlock(&jobs_lock);
    pthread_mutex_lock(&spare_lock);
    if (spare.have) {
        loader_discard(&spare.lp);
    }
    spare.have = false;
    pthread_mutex_unlock(&spare_lock);
    pthread_mutex_lock(&template_lock);
    if (tmpl.have) {
        loader_discard(&tmpl.lp);
    }
    tmpl.have = false;
    pthread_mutex_unlock(&template_lock);
}

struct prewarm_job {
    char loader[PATH_MAX];
    bool keep_stderr;
    bool fresh;
    bool template_only; /* start the template, no spare */
    uint32_t timeout_ms;
};

static void *
prewarm_thread(void *arg)
{
    struct prewarm_job *job = arg;
    struct loader_proc lp;
    struct clst_err err = {0};
    if (job->template_only) {
        /* After a creation that found no template: start one, unless a live template for
         * another setting appeared meanwhile (it stays; only prewarming replaces it). */
        enum clst_status rc = CLST_OK;
        pthread_mutex_lock(&template_lock);
        bool have = (tmpl.have && proc_alive(tmpl.lp.pidfd)) ||
                    template_ensure(job->loader, job->keep_stderr, true, &rc, &err);
        pthread_mutex_unlock(&template_lock);
        if (!have) {
            clst_log_warn("could not start the enclave loader template: %s", err.msg);
        }
        goto out;
    }
    enum clst_status st =
        loader_start_now(job->loader, job->keep_stderr, job->fresh, job->timeout_ms, &lp, &err);
    if (st == CLST_OK) {
        spare_put(&lp, job->loader, job->keep_stderr, job->fresh);
    } else {
        clst_log_warn("could not pre-start the next enclave loader: %s", err.msg);
    }
out:
    free(job);
    pthread_mutex_lock(&jobs_lock);
    jobs_running--;
    pthread_cond_broadcast(&jobs_done);
    pthread_mutex_unlock(&jobs_lock);
    return NULL;
}

/*
 * opts.prewarm: starts the next loader (or only the template) from a short-lived thread, so that
 * the creation that asked for it does not wait for it. (No parent-death signal is involved: the
 * loader watches its parent process, not the thread that started it.)
 */
static void
prewarm_async(const char *loader, const struct clst_host_options *opts, bool template_only)
{
    pthread_attr_t attr;
    pthread_t t;
    struct prewarm_job *job = malloc(sizeof(*job));
    if (job == NULL) {
        return;
    }
    snprintf(job->loader, sizeof(job->loader), "%s", loader);
    job->keep_stderr = opts->keep_stderr;
    job->fresh = opts->fresh_process;
    job->template_only = template_only;
    job->timeout_ms = opts->start_timeout_ms;
    if (pthread_attr_init(&attr) != 0) {
        free(job);
        return;
    }
    pthread_mutex_lock(&jobs_lock);
    jobs_running++;
    pthread_mutex_unlock(&jobs_lock);
    (void)pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &attr, prewarm_thread, job) != 0) {
        prewarm_thread(job); /* no thread: do it here */
    }
    pthread_attr_destroy(&attr);
}

/* Takes the pre-started loader (*spared set), or starts one (its start-up then overlaps the
 * image's verification: clst_host_enclave_create). */
static enum clst_status
loader_acquire(const char *loader, const struct clst_host_options *opts, struct loader_proc *lp,
               bool *spared, bool *no_template, struct clst_err *err)
{
    *no_template = false;
    *spared = spare_take(loader, opts->keep_stderr, opts->fresh_process, lp);
    if (*spared) {
        return CLST_OK;
    }
    return loader_start(loader, opts->keep_stderr, opts->fresh_process, false, no_template, lp,
                        err);
}

/* Hands the started loader the (verified) image and the channel; the enclave is ours from here
 * on, lp is consumed. */
static enum clst_status
handoff(struct clst_host_enclave *e, struct loader_proc *lp, struct clst_err *err)
{
    int fds[2] = {e->image.fd, e->chan_fd};

    e->pid = lp->pid;
    e->pidfd = lp->pidfd;
    e->reaped = false;
    bool sent = fdpass_send(lp->sock, ENCL_HANDOFF_MSG, ENCL_HANDOFF_SIZE, fds, 2);
    int saved = errno;
    close(lp->sock);
    lp->sock = -1;
    lp->pid = -1;
    lp->pidfd = -1;
    if (!sent) {
        struct clst_err cerr = {0};
        clst_err_set(&cerr, CLST_E_IO, "handing over the image: %s", strerror(saved));
        return fail_enclave(e, CLST_E_IO, &cerr, "starting the enclave", e->opts.start_timeout_ms,
                            err);
    }
    return CLST_OK;
}

/* Reads a failure message payload (at most FRAME_ERR_MSG_MAX bytes) into out. */
static enum clst_status
read_msg(struct ring *r, struct chan_wait *w, uint32_t size, char *out, size_t cap,
         uint64_t deadline, struct clst_err *err)
{
    uint8_t raw[FRAME_ERR_MSG_MAX];
    if (size > sizeof(raw)) {
        return clst_err_set(err, CLST_E_MALFORMED, "message too long");
    }
    enum clst_status st = ring_read(r, w, raw, size, deadline, err);
    if (st == CLST_OK) {
        frame_msg_sanitize(raw, size, out, cap);
    }
    return st;
}

static enum clst_status
await_ready(struct clst_host_enclave *e, struct clst_err *err)
{
    struct frame_hdr h;
    struct clst_err cerr = {0};
    uint64_t deadline = chan_deadline(e->opts.start_timeout_ms);
    uint8_t *payload = NULL;
    enum clst_status st = frame_recv_hdr(&e->rx, &e->wait, FRAME_E2H, &e->lim, &h, deadline, &cerr);
    if (st == CLST_OK && h.type != FRAME_READY) {
        st = clst_err_set(&cerr, CLST_E_MALFORMED, "the first frame is not READY");
    }
    if (st != CLST_OK) {
        return fail_enclave(e, st, &cerr, "starting the enclave", e->opts.start_timeout_ms, err);
    }
    if (h.status != CLST_OK) {
        char msg[FRAME_ERR_MSG_MAX + 1] = "";
        st = read_msg(&e->rx, &e->wait, h.payload_size, msg, sizeof(msg), deadline, &cerr);
        if (st != CLST_OK) {
            return fail_enclave(e, st, &cerr, "starting the enclave", e->opts.start_timeout_ms,
                                err);
        }
        siginfo_t si;
        struct pollfd p = {.fd = e->pidfd, .events = POLLIN};
        (void)poll(&p, 1, 1000);
        kill_enclave(e);
        reap(e, &si);
        e->dead = true;
        e->pid = -1;
        return clst_err_set(err, (enum clst_status)h.status, "the enclave failed to load: %s", msg);
    }
    payload = malloc(h.payload_size > 0 ? h.payload_size : 1);
    if (payload == NULL) {
        return clst_err_set(err, CLST_E_NOMEM, "out of memory");
    }
    st = ring_read(&e->rx, &e->wait, payload, h.payload_size, deadline, &cerr);
    if (st == CLST_OK) {
        ring_release(&e->rx);
        st = ready_decode(payload, h.payload_size, &e->ready, &cerr);
    }
    free(payload);
    if (st != CLST_OK) {
        return fail_enclave(e, st, &cerr, "starting the enclave", e->opts.start_timeout_ms, err);
    }
    return CLST_OK;
}

static void
log_memory(const struct clst_host_enclave *e)
{
    const char *why = NULL;
    if (!clst_host_enclave_memory_locked(e, &why)) {
        clst_log_warn("enclave memory is not locked (%s): its pages may be written to swap", why);
    }
    if (e->id.debug) {
        clst_log_warn("this is a DEBUG enclave: the host can inspect its memory; never give it "
                      "production secrets");
    }
}

enum clst_status
clst_host_enclave_create(const char *image_path, const struct clst_host_options *opts,
                         struct clst_host_enclave **out, struct clst_err *err)
{
    struct clst_host_enclave *e = NULL;
    enum clst_status rc = CLST_E_INVAL;
    char loader[PATH_MAX];
    struct loader_proc lp = {.pid = -1, .pidfd = -1, .sock = -1};
    bool spared = false, no_template = false;

    if (image_path == NULL || out == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "clst_host_enclave_create: NULL argument");
    }
    (void)pthread_once(&atfork_once, atfork_register);
    e = calloc(1, sizeof(*e));
    if (e == NULL) {
        return clst_err_set(err, CLST_E_NOMEM, "out of memory");
    }
    pthread_mutex_init(&e->lock, NULL);
    e->image.fd = -1;
    e->chan_fd = -1;
    e->pidfd = -1;
    e->pid = -1;
    e->reaped = true; /* nothing to reap until spawned */
    if (opts != NULL) {
        e->opts = *opts;
    } else {
        clst_host_options_init(&e->opts);
    }
    clst_buf_init(&e->scratch, e->opts.max_message_size);
    clst_buf_init(&e->reply, e->opts.max_message_size);
    rc = check_options(&e->opts, err);
    if (rc != CLST_OK) {
        goto out;
    }
    e->lim.max_payload = e->opts.max_message_size;
    rc = find_loader(e->opts.loader_path, loader, sizeof(loader), err);
    if (rc != CLST_OK) {
        goto out;
    }
    /*
     * The loader is started first: its start-up (exec, dynamic linking, OpenSSL and sandbox
     * set-up, most of a cold creation) runs on another CPU while this thread reads, verifies and
     * measures the image. It is given nothing until the image has passed (docs/enclaves.md, 6).
     */
    rc = loader_acquire(loader, &e->opts, &lp, &spared, &no_template, err);
    if (rc != CLST_OK) {
        goto out;
    }
    lp.timeout_ms = e->opts.start_timeout_ms;
    rc = image_mem_load(image_path, &e->image, err);
    if (rc != CLST_OK) {
        goto out;
    }
    rc = image_verify(e->image.map, e->image.size, &e->id, err);
    if (rc != CLST_OK) {
        clst_err_prefix(err, "%s", image_path);
        goto out;
    }
    if (e->opts.expect_mrsigner != NULL &&
        CRYPTO_memcmp(e->opts.expect_mrsigner, e->id.mrsigner, CLST_ENCLAVE_SIGNER_SIZE) != 0) {
        rc = clst_err_set(err, CLST_E_VERIFY, "%s is signed by an unexpected signer", image_path);
        goto out;
    }
    rc = make_channel(e, err);
    if (rc != CLST_OK) {
        goto out;
    }
    e->wait.spin = e->opts.wait == CLST_HOST_WAIT_SPIN;
    e->wait.spin_ns = (uint64_t)e->opts.spin_us * 1000u;
    e->wait.alive = host_alive;
    e->wait.alive_ctx = e;
    e->wait.slice_ns = CHAN_HOST_SLICE_NS;
    bool asked = lp.pidfd < 0; /* of the template */
    rc = loader_finish(&lp, e->opts.start_timeout_ms, err);
    if (rc != CLST_OK && asked) {
        /* The template died or failed to fork: this creation goes on with a fresh loader (the
         * next one replaces the template). */
        clst_log_warn("%s; starting a fresh enclave loader", err->msg);
        loader_discard(&lp);
        rc = loader_spawn(loader, e->opts.keep_stderr, ENCL_LOADER_MARKER, &lp, err);
    }
    if (rc != CLST_OK) {
        goto out;
    }
    rc = handoff(e, &lp, err);
    if (rc != CLST_OK) {
        goto out;
    }
    rc = await_ready(e, err);
    if (rc != CLST_OK) {
        goto out;
    }
    log_memory(e);
    if (e->opts.prewarm) {
        prewarm_async(loader, &e->opts, false);
    } else if (no_template) {
        prewarm_async(loader, &e->opts, true);
    }
    *out = e;
    e = NULL;
    rc = CLST_OK;
out:
    /* A loader that was never handed an image: a pre-started one stays the spare (the
     * application asked for it), one started for this creation ends. */
    if (lp.sock >= 0 && spared && e != NULL) {
        spare_put(&lp, loader, e->opts.keep_stderr, e->opts.fresh_process);
    } else {
        loader_discard(&lp);
    }
    clst_host_enclave_destroy(e);
    return rc;
}

/* ---- calls ----------------------------------------------------------------------------------- */

bool
clst_host_enclave_has_entry(const struct clst_host_enclave *e, const char *entry)
{
    if (e == NULL || entry == NULL) {
        return false;
    }
    if (strcmp(entry, CLST_ENCLAVE_MAIN_ENTRY) == 0) {
        return (e->ready.flags & READY_FLAG_HAS_MAIN) != 0;
    }
    for (uint32_t i = 0; i < e->ready.entry_count; i++) {
        if (strcmp(e->ready.entries[i], entry) == 0) {
            return true;
        }
    }
    return false;
}

static void
list_entries(const struct clst_host_enclave *e, char *out, size_t cap)
{
    size_t used = 0;
    out[0] = '\0';
    for (uint32_t i = 0; i < e->ready.entry_count && used < cap; i++) {
        int n = snprintf(out + used, cap - used, "%s%s", i ? ", " : "", e->ready.entries[i]);
        if (n < 0) {
            break;
        }
        used += (size_t)n;
    }
    if (e->ready.entry_count == 0) {
        snprintf(out, cap, "none");
    }
}

/* Serves one host-service request whose header was just read. */
static enum clst_status
serve_ocall(struct clst_host_enclave *e, const struct frame_hdr *h, uint64_t deadline,
            struct clst_err *cerr)
{
    char name[CLST_ENCLAVE_NAME_MAX + 1];
    struct clst_err serr = {0};
    bool wipe = false;
    enum clst_status st = frame_recv_name(&e->rx, &e->wait, h, name, deadline, cerr);
    if (st != CLST_OK) {
        return st;
    }
    clst_buf_reset(&e->scratch);
    st = clst_buf_reserve(&e->scratch, h->payload_size > 0 ? h->payload_size : 1);
    if (st != CLST_OK) {
        return clst_err_set(cerr, CLST_E_NOMEM, "no memory for a %u-byte service request",
                            h->payload_size);
    }
    /* Copied once into private memory; the service sees only this copy. */
    st = ring_read(&e->rx, &e->wait, e->scratch.data, h->payload_size, deadline, cerr);
    if (st != CLST_OK) {
        return st;
    }
    e->scratch.size = h->payload_size;
    ring_release(&e->rx);
    e->stats.service_calls++;

    clst_buf_reset(&e->reply);
    e->reply.max = (size_t)h->aux;
    enum clst_status sst =
        host_service_dispatch(e, name, e->scratch.data, e->scratch.size, &e->reply, &wipe, &serr);
    struct frame_hdr r = {.type = FRAME_ORET, .seq = h->seq, .status = (uint32_t)sst};
    const void *payload = e->reply.data;
    if (sst == CLST_OK) {
        r.payload_size = (uint32_t)e->reply.size;
    } else {
        if (serr.msg[0] == '\0') {
            snprintf(serr.msg, sizeof(serr.msg), "%s", clst_status_str(sst));
        }
        r.payload_size = (uint32_t)strnlen(serr.msg, FRAME_ERR_MSG_MAX);
        payload = serr.msg;
    }
    st = frame_send(&e->tx, &e->wait, &r, NULL, payload, deadline, cerr);
    if (wipe) {
        clst_wipe(e->reply.data, e->reply.size);
    }
    e->reply.max = e->opts.max_message_size;
    return st;
}

static enum clst_status
do_call(struct clst_host_enclave *e, const char *entry, const void *in, size_t in_size, void *out,
        size_t out_cap, size_t *out_size, struct clst_err *err)
{
    struct clst_err cerr = {0};
    char what[CLST_ENCLAVE_NAME_MAX + 32];
    uint32_t seq = ++e->seq;
    struct frame_hdr h = {.type = FRAME_CALL,
                          .seq = seq,
                          .name_size = (uint16_t)strlen(entry),
                          .payload_size = (uint32_t)in_size,
                          .aux = out_cap};
    uint64_t deadline = chan_deadline(e->opts.call_timeout_ms);
    enum clst_status st;

    snprintf(what, sizeof(what), "entry point '%s'", entry);
    e->current = entry;
    e->wait.timed_out = false;
    e->stats.calls++;
    st = frame_send(&e->tx, &e->wait, &h, entry, in, deadline, &cerr);
    if (st != CLST_OK) {
        return fail_enclave(e, st, &cerr, what, e->opts.call_timeout_ms, err);
    }
    for (;;) {
        struct frame_hdr r;
        st = frame_recv_hdr(&e->rx, &e->wait, FRAME_E2H, &e->lim, &r, deadline, &cerr);
        if (st != CLST_OK) {
            return fail_enclave(e, st, &cerr, what, e->opts.call_timeout_ms, err);
        }
        if (r.type == FRAME_OCALL) {
            st = serve_ocall(e, &r, deadline, &cerr);
            if (st != CLST_OK) {
                return fail_enclave(e, st, &cerr, what, e->opts.call_timeout_ms, err);
            }
            deadline = chan_deadline(e->opts.call_timeout_ms); /* it made progress */
            continue;
        }
        if (r.type != FRAME_RETURN || r.seq != seq) {
            clst_err_set(&cerr, CLST_E_MALFORMED, "unexpected %s frame (seq %u, want %u)",
                         r.type == FRAME_READY ? "READY" : "RETURN", r.seq, seq);
            return fail_enclave(e, CLST_E_MALFORMED, &cerr, what, e->opts.call_timeout_ms, err);
        }
        if (r.status != CLST_OK) {
            char msg[FRAME_ERR_MSG_MAX + 1] = "";
            st = read_msg(&e->rx, &e->wait, r.payload_size, msg, sizeof(msg), deadline, &cerr);
            if (st != CLST_OK) {
                return fail_enclave(e, st, &cerr, what, e->opts.call_timeout_ms, err);
            }
            ring_release(&e->rx);
            return clst_err_set(err, (enum clst_status)r.status, "%s failed: %s", what,
                                msg[0] ? msg : clst_status_str((enum clst_status)r.status));
        }
        if (r.payload_size > out_cap) {
            clst_err_set(&cerr, CLST_E_LIMIT, "it returned %u bytes for an output of %zu",
                         r.payload_size, out_cap);
            return fail_enclave(e, CLST_E_LIMIT, &cerr, what, e->opts.call_timeout_ms, err);
        }
        st = ring_read(&e->rx, &e->wait, out, r.payload_size, deadline, &cerr);
        if (st != CLST_OK) {
            return fail_enclave(e, st, &cerr, what, e->opts.call_timeout_ms, err);
        }
        ring_release(&e->rx);
        if (out_size != NULL) {
            *out_size = r.payload_size;
        }
        return CLST_OK;
    }
}

enum clst_status
clst_host_enclave_call(struct clst_host_enclave *e, const char *entry, const void *in,
                       size_t in_size, void *out, size_t out_cap, size_t *out_size,
                       struct clst_err *err)
{
    char list[512];
    if (e == NULL || !frame_name_valid_str(entry) || (in == NULL && in_size > 0) ||
        (out == NULL && out_cap > 0)) {
        return clst_err_set(err, CLST_E_INVAL,
                            "clst_host_enclave_call: invalid arguments (entry names are 1..64 "
                            "characters of A-Z a-z 0-9 . _ -)");
    }
    if (in_size > e->opts.max_message_size || out_cap > e->opts.max_message_size) {
        return clst_err_set(err, CLST_E_LIMIT,
                            "entry point '%s': input of %zu / output of %zu bytes exceeds the "
                            "message limit of %zu",
                            entry, in_size, out_cap, e->opts.max_message_size);
    }
    pthread_mutex_lock(&e->lock);
    enum clst_status st;
    if (e->dead) {
        st = clst_err_set(err, e->death_status, "the enclave is no longer running (%s)", e->death);
    } else if (!clst_host_enclave_has_entry(e, entry)) {
        list_entries(e, list, sizeof(list));
        st = clst_err_set(err, CLST_E_NOTFOUND, "the enclave has no entry point '%s' (it has: %s)",
                          entry, list);
    } else {
        st = do_call(e, entry, in, in_size, out, out_cap, out_size, err);
    }
    pthread_mutex_unlock(&e->lock);
    return st;
}

enum clst_status
clst_host_enclave_run_main(struct clst_host_enclave *e, int argc, char *const *argv, int *out_exit,
                           struct clst_err *err)
{
    struct clst_buf args = {0};
    uint8_t res[4];
    size_t n = 0;
    clst_buf_init(&args, MAIN_ARGS_MAX + 4096);
    enum clst_status st = main_args_encode(argc, argv, &args);
    if (st != CLST_OK) {
        clst_buf_cleanup(&args);
        return clst_err_set(err, st,
                            "the arguments are too many or too long (at most %d, %u "
                            "bytes in all)",
                            MAIN_ARGC_MAX, MAIN_ARGS_MAX);
    }
    st = clst_host_enclave_call(e, CLST_ENCLAVE_MAIN_ENTRY, args.data, args.size, res, sizeof(res),
                                &n, err);
    clst_buf_cleanup(&args);
    if (st != CLST_OK) {
        return st;
    }
    if (n != 4) {
        return clst_err_set(err, CLST_E_MALFORMED, "main returned %zu bytes instead of 4", n);
    }
    uint32_t v =
        (uint32_t)res[0] | (uint32_t)res[1] << 8 | (uint32_t)res[2] << 16 | (uint32_t)res[3] << 24;
    *out_exit = (int)(v & 0xffu);
    return CLST_OK;
}

/* ---- teardown and accessors ------------------------------------------------------------------ */

void
clst_host_enclave_destroy(struct clst_host_enclave *e)
{
    if (e == NULL) {
        return;
    }
    if (!e->reaped) {
        if (!e->dead && e->ctrl != NULL) {
            struct frame_hdr h = {.type = FRAME_EXIT};
            struct clst_err ignored = {0};
            (void)frame_send(&e->tx, &e->wait, &h, NULL, NULL, chan_deadline(100), &ignored);
            struct pollfd p = {.fd = e->pidfd, .events = POLLIN};
            (void)poll(&p, 1, 200);
        }
        kill_enclave(e);
        siginfo_t si;
        reap(e, &si);
    }
    if (e->pidfd >= 0) {
        close(e->pidfd);
    }
    if (e->chan_map != NULL) {
        munmap(e->chan_map, e->chan_size);
    }
    if (e->chan_fd >= 0) {
        close(e->chan_fd);
    }
    image_mem_cleanup(&e->image);
    host_files_close(e);
    host_relay_free(e->relay);
    clst_buf_cleanup(&e->scratch);
    clst_buf_cleanup(&e->reply);
    pthread_mutex_destroy(&e->lock);
    free(e);
}

const struct clst_enclave_identity *
clst_host_enclave_identity(const struct clst_host_enclave *e)
{
    return e != NULL ? &e->id : NULL;
}

int
clst_host_enclave_pid(const struct clst_host_enclave *e)
{
    return (e != NULL && !e->dead) ? (int)e->pid : -1;
}

bool
clst_host_enclave_alive(const struct clst_host_enclave *e)
{
    return e != NULL && !e->dead && host_alive((void *)(uintptr_t)e);
}

bool
clst_host_enclave_memory_locked(const struct clst_host_enclave *e, const char **why)
{
    static _Thread_local char reason[160];
    if (e == NULL) {
        return false;
    }
    if ((e->ready.flags & READY_FLAG_LOCKED) != 0) {
        if (why != NULL) {
            *why = "locked";
        }
        return true;
    }
    if (e->ready.lock_errno == 0) {
        snprintf(reason, sizeof(reason), "not attempted in this build (sanitizers)");
    } else if (e->ready.memlock_limit == UINT64_MAX) {
        snprintf(reason, sizeof(reason), "mlockall failed: %s", strerror(e->ready.lock_errno));
    } else {
        snprintf(reason, sizeof(reason),
                 "RLIMIT_MEMLOCK is %llu KiB; run as root or raise it (ulimit -l) to lock "
                 "enclave memory",
                 (unsigned long long)(e->ready.memlock_limit / 1024));
    }
    if (why != NULL) {
        *why = reason;
    }
    return false;
}

void
clst_host_enclave_stats(const struct clst_host_enclave *e, struct clst_host_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (e != NULL) {
        *out = e->stats;
        out->spins = e->wait.spins;
        out->sleeps = e->wait.sleeps;
        out->spins_skipped = e->wait.spins_skipped;
    }
}

enum clst_status
clst_host_enclave_debug_send_raw(struct clst_host_enclave *e, const void *bytes, size_t size,
                                 struct clst_err *err)
{
    struct clst_err cerr = {0};
    pthread_mutex_lock(&e->lock);
    enum clst_status st = ring_write(&e->tx, &e->wait, bytes, size, chan_deadline(1000), &cerr);
    if (st == CLST_OK) {
        ring_publish(&e->tx);
    } else {
        clst_err_set(err, st, "%s", cerr.msg);
    }
    pthread_mutex_unlock(&e->lock);
    return st;
}
