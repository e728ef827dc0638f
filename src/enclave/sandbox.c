/*
 * The sim enclave's sandbox, applied by the loader to its own process (see docs/enclaves.md,
 * "The sandbox"):
 *
 *   sandbox_early     non-dumpable (no ptrace, no /proc/PID/mem for same-uid processes), no new
 *                     privileges, no core files
 *   sandbox_close_fds every descriptor closed but the channel (and /dev/null on 0-2)
 *   filters           both seccomp filters, compiled to BPF before the hand-over (afterwards only
 *                     installing the final one is left), installed with TSYNC
 *   lock memory       mlockall where the limits allow it (before the hand-over)
 *   stage 1           before the image is handed over and loaded: exec, ptrace, sockets (but
 *                     receiving on the control socket), process creation and signals to other
 *                     processes are already fatal
 *   heap limit        the manifest's heap limit (RLIMIT_DATA), once the image is loaded
 *   stage 2           the final allow-list: memory management (never executable), futex, exit,
 *                     clocks, randomness, yielding; everything else traps and kills
 *
 * A forbidden call raises SIGSYS (SECCOMP_RET_TRAP); the handler records the system call number in
 * the shared note for the host and exits at once. The call itself is never executed, whatever the
 * enclave does with the handler.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <linux/sockios.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <seccomp.h>

#include "enclave/enclave_int.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_UNDEFINED__)
#define SANDBOX_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(undefined_behavior_sanitizer)
#define SANDBOX_SANITIZED 1
#endif
#endif
#ifndef SANDBOX_SANITIZED
#define SANDBOX_SANITIZED 0
#endif

enum clst_status
sandbox_early(struct clst_err *err)
{
    struct rlimit zero = {0, 0};
    /* First: from here on a same-uid process can neither ptrace us nor read /proc/PID/mem. */
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
        return clst_err_set(err, CLST_E_INTERNAL, "PR_SET_DUMPABLE: %s", strerror(errno));
    }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        return clst_err_set(err, CLST_E_INTERNAL, "PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
    }
    if (setrlimit(RLIMIT_CORE, &zero) != 0) {
        return clst_err_set(err, CLST_E_INTERNAL, "RLIMIT_CORE: %s", strerror(errno));
    }
    /* No PR_SET_PDEATHSIG: it fires when the *thread* that started us exits, which would kill
     * enclaves of multi-threaded hosts. The enclave checks getppid() while it waits instead. */
    return CLST_OK;
}

void
sandbox_close_fds(const int *keep, size_t keep_count)
{
    unsigned next = 0;
    for (size_t i = 0; i < keep_count; i++) {
        unsigned k = (unsigned)keep[i];
        if (k > next) {
            (void)syscall(SYS_close_range, next, k - 1, 0);
        }
        next = k + 1;
    }
    (void)syscall(SYS_close_range, next, ~0u, 0);
}

/* The one piece of global state the handler needs: where to write the note (set once, before
 * the filters exist). */
static struct chan_note *trap_note;

static void
on_sigsys(int sig, siginfo_t *si, void *uctx)
{
    (void)sig;
    (void)uctx;
    struct chan_note *n = trap_note;
    if (n != NULL) {
        n->syscall_nr = si->si_syscall;
        n->arch = si->si_arch;
        atomic_store(&n->kind, NOTE_SANDBOX);
    }
    _exit(ENCL_EXIT_SANDBOX);
}

enum clst_status
sandbox_trap_install(struct clst_err *err)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_sigsys;
    sa.sa_flags = SA_SIGINFO;
    sigfillset(&sa.sa_mask);
    if (sigaction(SIGSYS, &sa, NULL) != 0) {
        return clst_err_set(err, CLST_E_INTERNAL, "sigaction(SIGSYS): %s", strerror(errno));
    }
    return CLST_OK;
}

void
sandbox_trap_note(struct chan_note *note)
{
    trap_note = note;
}

/*
 * Compiles a libseccomp filter to its BPF program (what seccomp_load would install, byte for
 * byte: libseccomp 2.5 exports only to a descriptor, hence the memory file). Frees ctx.
 */
static enum clst_status
export_filter(scmp_filter_ctx ctx, const char *stage, struct sandbox_bpf *out, struct clst_err *err)
{
    enum clst_status rc = CLST_E_INTERNAL;
    int fd = -1;
    int r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
    memset(out, 0, sizeof(*out));
    if (r != 0) {
        rc = clst_err_set(err, CLST_E_INTERNAL, "building the %s seccomp filter: %s", stage,
                          strerror(-r));
        goto out;
    }
    fd = memfd_create("clst-seccomp", MFD_CLOEXEC);
    if (fd < 0) {
        rc = clst_err_set(err, CLST_E_INTERNAL, "memfd_create: %s", strerror(errno));
        goto out;
    }
    r = seccomp_export_bpf(ctx, fd);
    off_t size = lseek(fd, 0, SEEK_CUR);
    if (r != 0 || size <= 0 || size % (off_t)sizeof(struct sock_filter) != 0 ||
        size / (off_t)sizeof(struct sock_filter) > BPF_MAXINSNS) {
        rc = clst_err_set(err, CLST_E_INTERNAL, "compiling the %s seccomp filter: %s", stage,
                          r != 0 ? strerror(-r) : "unexpected program size");
        goto out;
    }
    out->prog = malloc((size_t)size);
    if (out->prog == NULL) {
        rc = clst_err_set(err, CLST_E_NOMEM, "out of memory");
        goto out;
    }
    if (pread(fd, out->prog, (size_t)size, 0) != (ssize_t)size) {
        free(out->prog);
        out->prog = NULL;
        rc = clst_err_set(err, CLST_E_INTERNAL, "reading the %s seccomp filter back", stage);
        goto out;
    }
    out->len = (unsigned short)(size / (off_t)sizeof(struct sock_filter));
    rc = CLST_OK;
out:
    if (fd >= 0) {
        close(fd);
    }
    seccomp_release(ctx);
    return rc;
}

/*
 * Installs a compiled filter on every thread of the process (TSYNC: the loader is
 * single-threaded, but should that change no thread could be left outside). Filters stack: a
 * later one can only forbid more.
 */
static enum clst_status
load_bpf(const struct sandbox_bpf *b, const char *stage, struct clst_err *err)
{
    struct sock_fprog prog = {.len = b->len, .filter = b->prog};
    if (b->prog == NULL || b->len == 0) {
        return clst_err_set(err, CLST_E_INTERNAL, "the %s seccomp filter was not built", stage);
    }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        return clst_err_set(err, CLST_E_INTERNAL, "PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
    }
    long r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog);
    if (r != 0) {
        return clst_err_set(err, CLST_E_INTERNAL, "loading the %s seccomp filter: %s", stage,
                            r < 0 ? strerror(errno) : "another thread could not be synchronized");
    }
    return CLST_OK;
}

static enum clst_status
build_stage1(struct sandbox_bpf *out, struct clst_err *err)
{
    static const int denied[] = {
        SCMP_SYS(execve),
        SCMP_SYS(execveat),
        SCMP_SYS(ptrace),
        SCMP_SYS(process_vm_readv),
        SCMP_SYS(process_vm_writev),
        SCMP_SYS(socket),
        SCMP_SYS(socketpair),
        SCMP_SYS(connect),
        SCMP_SYS(bind),
        SCMP_SYS(listen),
        SCMP_SYS(accept),
        SCMP_SYS(accept4),
        SCMP_SYS(sendto),
        SCMP_SYS(sendmsg),
        SCMP_SYS(sendmmsg),
        SCMP_SYS(recvfrom),
        SCMP_SYS(recvmmsg),
        SCMP_SYS(fork),
        SCMP_SYS(vfork),
        SCMP_SYS(clone),
        SCMP_SYS(clone3),
        SCMP_SYS(kill),
        SCMP_SYS(tkill),
        SCMP_SYS(rt_sigqueueinfo),
        SCMP_SYS(rt_tgsigqueueinfo),
        SCMP_SYS(pidfd_open),
        SCMP_SYS(pidfd_send_signal),
        SCMP_SYS(pidfd_getfd),
        SCMP_SYS(mount),
        SCMP_SYS(umount2),
        SCMP_SYS(unshare),
        SCMP_SYS(setns),
        SCMP_SYS(chroot),
        SCMP_SYS(pivot_root),
        SCMP_SYS(keyctl),
        SCMP_SYS(add_key),
        SCMP_SYS(request_key),
        SCMP_SYS(bpf),
        SCMP_SYS(perf_event_open),
        SCMP_SYS(userfaultfd),
        SCMP_SYS(io_uring_setup),
        SCMP_SYS(io_uring_enter),
        SCMP_SYS(io_uring_register),
        SCMP_SYS(open_by_handle_at),
        SCMP_SYS(name_to_handle_at),
        SCMP_SYS(kcmp),
        SCMP_SYS(personality),
        SCMP_SYS(setuid),
        SCMP_SYS(setgid),
        SCMP_SYS(setreuid),
        SCMP_SYS(setregid),
        SCMP_SYS(setresuid),
        SCMP_SYS(setresgid),
        SCMP_SYS(setgroups),
    };
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (ctx == NULL) {
        return clst_err_set(err, CLST_E_NOMEM, "seccomp_init failed");
    }
    enum clst_status rc = CLST_E_INTERNAL;
    for (size_t i = 0; i < sizeof(denied) / sizeof(denied[0]); i++) {
        if (denied[i] < 0) {
            continue; /* not a system call on this architecture */
        }
        int r = seccomp_rule_add(ctx, SCMP_ACT_TRAP, denied[i], 0);
        if (r != 0) {
            rc = clst_err_set(err, CLST_E_INTERNAL, "seccomp rule %d: %s", denied[i], strerror(-r));
            goto out;
        }
    }
    /* The hand-over arrives on the control socket; nothing else may be received. (tgkill: the
     * self-signal filter, installed with this one.) */
    int r = seccomp_rule_add(ctx, SCMP_ACT_TRAP, SCMP_SYS(recvmsg), 1,
                             SCMP_A0(SCMP_CMP_NE, ENCL_FD_CONTROL));
    /*
     * Nor signals by way of a descriptor's owner (F_SETOWN and SIGIO: a pipe's owner can be any
     * same-uid process, and F_SETSIG makes the signal SIGKILL). The kernel reads the command as
     * 32 bits, so only those are compared.
     */
    static const unsigned long fcntl_owner[] = {F_SETOWN, F_SETOWN_EX, F_SETSIG};
    static const unsigned long ioctl_owner[] = {FIOSETOWN, SIOCSPGRP, FIOASYNC};
    for (size_t i = 0; r == 0 && i < 3; i++) {
        r = seccomp_rule_add(ctx, SCMP_ACT_TRAP, SCMP_SYS(fcntl), 1,
                             SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, fcntl_owner[i]));
        r = r ? r
              : seccomp_rule_add(ctx, SCMP_ACT_TRAP, SCMP_SYS(ioctl), 1,
                                 SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, ioctl_owner[i]));
    }
    if (r != 0) {
        rc = clst_err_set(err, CLST_E_INTERNAL, "seccomp rule recvmsg: %s", strerror(-r));
        goto out;
    }
    return export_filter(ctx, "first", out, err);
out:
    seccomp_release(ctx);
    return rc;
}

/* Reads VmData (kB) from /proc/self/status: the memory RLIMIT_DATA already counts. (read(), not
 * stdio: no allocation, fewer fresh pages, each of which is expensive on some VMs.) */
static uint64_t
current_data_bytes(void)
{
    char buf[4096];
    size_t len = 0;
    int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return 0;
    }
    while (len < sizeof(buf) - 1) {
        ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        len += (size_t)n;
    }
    close(fd);
    buf[len] = '\0';
    const char *p = strstr(buf, "\nVmData:");
    if (p == NULL) {
        return 0;
    }
    return (uint64_t)strtoull(p + 8, NULL, 10) * 1024u;
}

void
sandbox_lock_memory(struct sandbox_report *out)
{
    struct rlimit rl;
    memset(out, 0, sizeof(*out));
    out->memlock_limit = UINT64_MAX;
    if (getrlimit(RLIMIT_MEMLOCK, &rl) == 0) {
        /* Use all we are allowed. */
        if (rl.rlim_cur != rl.rlim_max) {
            struct rlimit raised = {rl.rlim_max, rl.rlim_max};
            if (setrlimit(RLIMIT_MEMLOCK, &raised) == 0) {
                rl = raised;
            }
        }
        out->memlock_limit = rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_cur;
    }
    if (SANDBOX_SANITIZED) {
        /* The sanitizers reserve terabytes of shadow memory: neither locking nor a data limit
         * can apply. Sanitizer builds are for tests only (docs/enclaves.md). */
        return;
    }
    /*
     * MCL_FUTURE under a finite limit would make every allocation past the limit fail, so lock
     * only when nothing can run into it: root (CAP_IPC_LOCK) or an unlimited RLIMIT_MEMLOCK.
     * MCL_ONFAULT locks pages as they are touched instead of populating everything now; with
     * MCL_FUTURE it covers the image mapped later, and everything the enclave allocates.
     */
    if (geteuid() == 0 || out->memlock_limit == UINT64_MAX) {
        if (mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) == 0) {
            out->locked = true;
        } else {
            out->lock_errno = errno;
        }
    } else {
        out->lock_errno = ENOMEM;
    }
}

void
sandbox_limit_heap(uint32_t heap_mib, struct sandbox_report *out)
{
    if (SANDBOX_SANITIZED) {
        return;
    }
    uint64_t heap = (uint64_t)heap_mib * 1024u * 1024u;
    uint64_t data = current_data_bytes();
    if (data > 0) {
        struct rlimit dl = {(rlim_t)(data + heap), (rlim_t)(data + heap)};
        out->heap_applied = setrlimit(RLIMIT_DATA, &dl) == 0;
    }
}

/* Adds `nr` to the allow-list, with up to two argument conditions. */
static int
allow(scmp_filter_ctx ctx, int nr, unsigned count, struct scmp_arg_cmp a, struct scmp_arg_cmp b)
{
    if (nr < 0) {
        return 0;
    }
    if (count == 0) {
        return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
    }
    if (count == 1) {
        return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1, a);
    }
    return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 2, a, b);
}

static enum clst_status
build_stage2(struct sandbox_bpf *out, struct clst_err *err)
{
    static const int plain[] = {
        /* exit and signal return */
        SCMP_SYS(exit),
        SCMP_SYS(exit_group),
        SCMP_SYS(rt_sigreturn),
        SCMP_SYS(restart_syscall),
        /* the channel's wake-ups, and noticing that the host is gone */
        SCMP_SYS(futex),
        SCMP_SYS(getppid),
        /* memory management */
        SCMP_SYS(munmap),
        SCMP_SYS(mremap),
        SCMP_SYS(brk),
        SCMP_SYS(madvise),
        /* clocks (vDSO fallbacks), randomness, scheduling hints */
        SCMP_SYS(clock_gettime),
        SCMP_SYS(clock_getres),
        SCMP_SYS(gettimeofday),
        SCMP_SYS(getrandom),
        SCMP_SYS(getcpu),
        SCMP_SYS(sched_yield),
        /* abort(): block signals, raise SIGABRT on ourselves (tgkill is limited below) */
        SCMP_SYS(rt_sigprocmask),
        SCMP_SYS(getpid),
        SCMP_SYS(gettid),
#if SANDBOX_SANITIZED
        /* What ASan/UBSan's runtime uses in a running process (tests only). */
        SCMP_SYS(sigaltstack),
        SCMP_SYS(rt_sigaction),
        SCMP_SYS(prctl),
        SCMP_SYS(getrlimit),
        SCMP_SYS(prlimit64),
        SCMP_SYS(nanosleep),
        SCMP_SYS(clock_nanosleep),
        SCMP_SYS(writev),
#endif
    };
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_TRAP);
    struct scmp_arg_cmp none = SCMP_A0(SCMP_CMP_EQ, 0);
    int r = 0;
    if (ctx == NULL) {
        return clst_err_set(err, CLST_E_NOMEM, "seccomp_init failed");
    }
    for (size_t i = 0; r == 0 && i < sizeof(plain) / sizeof(plain[0]); i++) {
        r = allow(ctx, plain[i], 0, none, none);
    }
    /* Never an executable mapping: no new code once the image is loaded. */
    r = r ? r : allow(ctx, SCMP_SYS(mmap), 1, SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0), none);
    r = r ? r : allow(ctx, SCMP_SYS(mprotect), 1, SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0), none);
    /* Our own affinity only (the spin policy asks how many CPUs it may use). */
    r = r ? r : allow(ctx, SCMP_SYS(sched_getaffinity), 1, SCMP_A0(SCMP_CMP_EQ, 0), none);
    /* abort() signals itself; the self-signal filter (stage 1) traps a signal to anyone else. */
    r = r ? r : allow(ctx, SCMP_SYS(tgkill), 0, none, none);
    /* Standard error only, which is /dev/null unless the host kept its own for debugging. */
    r = r ? r : allow(ctx, SCMP_SYS(write), 1, SCMP_A0(SCMP_CMP_EQ, 2), none);
    if (r != 0) {
        seccomp_release(ctx);
        return clst_err_set(err, CLST_E_INTERNAL, "building the seccomp allow-list: %s",
                            strerror(-r));
    }
    return export_filter(ctx, "final", out, err);
}

enum clst_status
sandbox_filters_build(struct sandbox_filters *out, struct clst_err *err)
{
    memset(out, 0, sizeof(*out));
    enum clst_status rc = build_stage1(&out->stage1, err);
    if (rc == CLST_OK) {
        rc = build_stage2(&out->stage2, err);
    }
    if (rc != CLST_OK) {
        sandbox_filters_free(out);
    }
    return rc;
}

void
sandbox_filters_free(struct sandbox_filters *f)
{
    free(f->stage1.prog);
    free(f->stage2.prog);
    memset(f, 0, sizeof(*f));
}

/*
 * tgkill only to this process (abort() signals itself), as its own small filter: the two stage
 * filters do not depend on the pid, so a template compiles them once for all the loaders it forks
 * (rt.c). Filters stack and the strictest answer wins; a call from another architecture is
 * already killed by the stage filters.
 */
static enum clst_status
load_self_signal(struct clst_err *err)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    const uint32_t arg0_low = (uint32_t)offsetof(struct seccomp_data, args[0]);
#else
    const uint32_t arg0_low = (uint32_t)offsetof(struct seccomp_data, args[0]) + 4u;
#endif
    struct sock_filter prog[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (uint32_t)offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)SYS_tgkill, 0, 3),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, arg0_low), /* the kernel reads a pid_t: 32 bits */
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)getpid(), 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sandbox_bpf b = {.prog = prog, .len = (unsigned short)(sizeof(prog) / sizeof(prog[0]))};
    return load_bpf(&b, "self-signal", err);
}

enum clst_status
sandbox_stage1_load(const struct sandbox_filters *f, struct clst_err *err)
{
    enum clst_status rc = load_self_signal(err);
    return rc == CLST_OK ? load_bpf(&f->stage1, "first", err) : rc;
}

enum clst_status
sandbox_stage2_load(const struct sandbox_filters *f, struct clst_err *err)
{
    return load_bpf(&f->stage2, "final", err);
}
