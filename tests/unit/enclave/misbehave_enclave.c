/*
 * A test enclave that breaks the rules on request, for the isolation and bad-input tests
 * (test_host.c, tests/integration/enclave_*.sh). Each entry point does one forbidden or hostile
 * thing; main dispatches argv[1] to the same behaviours for `cloister run`.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <openssl/rand.h>

#include <cloister/enclave.h>

#include "enclave/enclave_int.h"

#define ENTRY(name)                                                                                \
    static enum clst_status name(const uint8_t *in, size_t in_size, uint8_t *out, size_t out_cap,  \
                                 size_t *out_size)

ENTRY(do_open)
{
    (void)in, (void)in_size, (void)out, (void)out_cap, (void)out_size;
    int fd = open("/etc/hostname", O_RDONLY);
    clst_enclave_set_error("open() returned %d: the sandbox did not stop it", fd);
    return CLST_E_INTERNAL;
}

ENTRY(do_socket)
{
    (void)in, (void)in_size, (void)out, (void)out_cap, (void)out_size;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    clst_enclave_set_error("socket() returned %d", fd);
    return CLST_E_INTERNAL;
}

ENTRY(do_exec)
{
    (void)in, (void)in_size, (void)out, (void)out_cap, (void)out_size;
    char *const argv[] = {(char *)"true", NULL};
    char *const envp[] = {NULL};
    execve("/bin/true", argv, envp);
    clst_enclave_set_error("execve returned");
    return CLST_E_INTERNAL;
}

ENTRY(do_ptrace)
{
    (void)in, (void)in_size, (void)out, (void)out_cap, (void)out_size;
    long r = ptrace(PTRACE_TRACEME, 0, NULL, NULL);
    clst_enclave_set_error("ptrace returned %ld", r);
    return CLST_E_INTERNAL;
}

ENTRY(do_fork)
{
    (void)in, (void)in_size, (void)out, (void)out_cap, (void)out_size;
    pid_t p = fork();
    if (p == 0) {
        _exit(0);
    }
    clst_enclave_set_error("fork returned %d", (int)p);
    return CLST_E_INTERNAL;
}

static void *
thread_fn(void *arg)
{
    return arg;
}

ENTRY(do_thread)
{
    (void)in, (void)in_size, (void)out, (void)out_cap, (void)out_size;
    pthread_t t;
    int r = pthread_create(&t, NULL, thread_fn, NULL);
    clst_enclave_set_error("pthread_create returned %d", r);
    return CLST_E_INTERNAL;
}

ENTRY(do_mmap_exec)
{
    (void)in, (void)in_size, (void)out, (void)out_cap, (void)out_size;
    void *p =
        mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    clst_enclave_set_error("mmap(PROT_EXEC) returned %p", p);
    return CLST_E_INTERNAL;
}

ENTRY(do_crash)
{
    (void)in, (void)in_size, (void)out, (void)out_cap, (void)out_size;
    volatile int *p = (volatile int *)(uintptr_t)(in_size + 8);
    *p = 1;
    return CLST_E_INTERNAL;
}

ENTRY(do_abort)
{
    (void)in, (void)in_size, (void)out, (void)out_cap, (void)out_size;
    abort();
}

ENTRY(do_hang)
{
    (void)in, (void)in_size, (void)out, (void)out_cap, (void)out_size;
    volatile unsigned long spin = 0;
    for (;;) {
        spin++;
    }
    return CLST_E_INTERNAL; /* not reached */
}

ENTRY(do_exit)
{
    (void)in, (void)in_size, (void)out, (void)out_cap, (void)out_size;
    _exit(7);
}

/* The documented frame header (docs/enclaves.md), written by hand: the runtime's own encoder is
 * not exported to enclaves. */
static void
put_hdr(uint8_t out[FRAME_HDR_SIZE], uint8_t type, uint32_t seq, uint32_t payload_size)
{
    memset(out, 0, FRAME_HDR_SIZE);
    memcpy(out, "CLFR", 4);
    out[4] = FRAME_VERSION;
    out[5] = type;
    for (int i = 0; i < 4; i++) {
        out[8 + i] = (uint8_t)(seq >> (8 * i));
        out[20 + i] = (uint8_t)(payload_size >> (8 * i));
    }
}

/* Garbage in place of a frame header. */
ENTRY(do_garbage)
{
    (void)in, (void)in_size, (void)out, (void)out_cap, (void)out_size;
    static const uint8_t junk[FRAME_HDR_SIZE] = "this is not a frame header!!!!!";
    clst_enclave_debug_send_raw(junk, sizeof(junk));
    return CLST_OK;
}

/* A well-formed RETURN header that announces more payload than the host's hard cap. */
ENTRY(do_oversized)
{
    (void)out, (void)out_cap, (void)out_size;
    uint8_t hdr[FRAME_HDR_SIZE];
    uint32_t seq = 0;
    if (in_size >= 4) {
        memcpy(&seq, in, 4);
    }
    put_hdr(hdr, FRAME_RETURN, seq, 0xfffffff0u);
    clst_enclave_debug_send_raw(hdr, sizeof(hdr));
    return CLST_OK;
}

/* A RETURN for a call that is not in flight. */
ENTRY(do_bad_seq)
{
    (void)in, (void)in_size, (void)out, (void)out_cap, (void)out_size;
    uint8_t hdr[FRAME_HDR_SIZE];
    put_hdr(hdr, FRAME_RETURN, 0xdeadbeefu, 0);
    clst_enclave_debug_send_raw(hdr, sizeof(hdr));
    return CLST_OK;
}

/* A frame cut short: a header promising 100 bytes, then nothing. */
ENTRY(do_truncated)
{
    (void)out, (void)out_cap, (void)out_size;
    uint8_t hdr[FRAME_HDR_SIZE];
    uint32_t seq = 0;
    if (in_size >= 4) {
        memcpy(&seq, in, 4);
    }
    put_hdr(hdr, FRAME_RETURN, seq, 100);
    clst_enclave_debug_send_raw(hdr, sizeof(hdr));
    for (;;) {
        pause(); /* blocked: pause is not on the allow-list either, so this dies */
    }
    return CLST_E_INTERNAL; /* not reached */
}

/* The same short frame, after which the enclave spins instead of dying: the host's
 * refusal of the oversized RETURN is then the only way the call can end. */
ENTRY(do_truncated_spin)
{
    (void)out, (void)out_cap, (void)out_size;
    uint8_t hdr[FRAME_HDR_SIZE];
    uint32_t seq = 0;
    if (in_size >= 4) {
        memcpy(&seq, in, 4);
    }
    put_hdr(hdr, FRAME_RETURN, seq, 100);
    clst_enclave_debug_send_raw(hdr, sizeof(hdr));
    for (volatile unsigned long i = 0;; i++) {
    }
    return CLST_E_INTERNAL; /* not reached */
}

/* Claims more output than the capacity: the runtime must refuse. */
ENTRY(do_bigout)
{
    (void)in, (void)in_size, (void)out;
    *out_size = out_cap + 1;
    return CLST_OK;
}

ENTRY(do_fail)
{
    (void)in, (void)in_size, (void)out, (void)out_cap, (void)out_size;
    clst_enclave_set_error("custom failure %d", 42);
    return CLST_E_DENIED;
}

/* in: service name || NUL || request; out: the reply, or the error text with a failure. */
ENTRY(do_ocall)
{
    struct clst_err err = {0};
    const uint8_t *nul = memchr(in, 0, in_size);
    if (nul == NULL) {
        return CLST_E_INVAL;
    }
    size_t off = (size_t)(nul - in) + 1;
    enum clst_status st = clst_enclave_host_call((const char *)in, in + off, in_size - off, out,
                                                 out_cap, out_size, &err);
    if (st != CLST_OK) {
        clst_enclave_set_error("%s", err.msg);
    }
    return st;
}

ENTRY(do_time)
{
    (void)in, (void)in_size;
    int64_t s;
    uint32_t ns;
    if (out_cap < 8 || clst_enclave_time(&s, &ns) != CLST_OK) {
        return CLST_E_INTERNAL;
    }
    memcpy(out, &s, 8);
    *out_size = 8;
    return CLST_OK;
}

/* 32 bytes from each of OpenSSL's public and private DRBGs (test_host: loaders forked from one
 * template must not share them). */
ENTRY(do_random)
{
    (void)in, (void)in_size;
    if (out_cap < 64 || RAND_bytes(out, 32) != 1 || RAND_priv_bytes(out + 32, 32) != 1) {
        clst_enclave_set_error("RAND_bytes failed");
        return CLST_E_CRYPTO;
    }
    *out_size = 64;
    return CLST_OK;
}

/* Signal 0 to the host process: only signals to itself (abort) are allowed. */
ENTRY(do_signal_host)
{
    (void)in, (void)in_size, (void)out, (void)out_cap, (void)out_size;
    long r = syscall(SYS_tgkill, (long)getppid(), (long)getppid(), 0L);
    clst_enclave_set_error("tgkill to the host returned %ld", r);
    return CLST_E_INTERNAL;
}

/* Copies host file "in" to host file "out" through the file services. */
ENTRY(do_copy)
{
    (void)in, (void)in_size, (void)out, (void)out_cap, (void)out_size;
    struct clst_err err = {0};
    uint32_t hi, ho;
    static uint8_t buf[100000];
    enum clst_status st = clst_enclave_file_open("in", CLST_ENCLAVE_FILE_READ, &hi, &err);
    if (st == CLST_OK) {
        st = clst_enclave_file_open("out", CLST_ENCLAVE_FILE_WRITE, &ho, &err);
    }
    while (st == CLST_OK) {
        size_t n = 0;
        st = clst_enclave_file_read(hi, buf, sizeof(buf), &n, &err);
        if (st != CLST_OK || n == 0) {
            break;
        }
        st = clst_enclave_file_write(ho, buf, n, &err);
    }
    if (st != CLST_OK) {
        clst_enclave_set_error("%s", err.msg);
    }
    return st;
}

/* in: u32 MiB; allocates and touches that much (for the heap limit). */
ENTRY(do_alloc)
{
    (void)out, (void)out_cap, (void)out_size;
    uint32_t mib = 0;
    if (in_size == 4) {
        memcpy(&mib, in, 4);
    }
    size_t n = (size_t)mib * 1024 * 1024;
    uint8_t *p = malloc(n);
    if (p == NULL) {
        clst_enclave_set_error("malloc(%u MiB) failed", mib);
        return CLST_E_NOMEM;
    }
    memset(p, 1, n);
    free(p);
    return CLST_OK;
}

static int
cmp_u32(const void *a, const void *b)
{
    uint32_t x, y;
    memcpy(&x, a, sizeof(x));
    memcpy(&y, b, sizeof(y));
    return (x > y) - (x < y);
}

/* qsort of 16 KiB: glibc asks sysinfo() on the first large sort, which the loader does before
 * the sandbox closes; here it must simply work. */
ENTRY(do_qsort)
{
    (void)in, (void)in_size, (void)out, (void)out_cap, (void)out_size;
    static uint32_t v[4096];
    for (size_t i = 0; i < 4096; i++) {
        v[i] = (uint32_t)((i * 2654435761u) % 4096u);
    }
    qsort(v, 4096, sizeof(v[0]), cmp_u32);
    for (size_t i = 1; i < 4096; i++) {
        if (v[i - 1] > v[i]) {
            clst_enclave_set_error("qsort left the array unsorted at %zu", i);
            return CLST_E_INTERNAL;
        }
    }
    return CLST_OK;
}

static const struct clst_enclave_entry entries[] = {
    {"qsort", do_qsort},
    {"open", do_open},
    {"socket", do_socket},
    {"exec", do_exec},
    {"ptrace", do_ptrace},
    {"fork", do_fork},
    {"thread", do_thread},
    {"mmap_exec", do_mmap_exec},
    {"crash", do_crash},
    {"abort", do_abort},
    {"hang", do_hang},
    {"exit", do_exit},
    {"garbage", do_garbage},
    {"oversized", do_oversized},
    {"bad_seq", do_bad_seq},
    {"truncated", do_truncated},
    {"truncated_spin", do_truncated_spin},
    {"bigout", do_bigout},
    {"fail", do_fail},
    {"ocall", do_ocall},
    {"time", do_time},
    {"copy", do_copy},
    {"alloc", do_alloc},
    {"random", do_random},
    {"signal_host", do_signal_host},
};

/* cloister run misbehave.so -- NAME: runs entry NAME (no input, 64 bytes of output). */
static int
misbehave_main(int argc, char **argv)
{
    uint8_t out[64];
    size_t n = 0;
    if (argc < 2) {
        return 2;
    }
    if (strcmp(argv[1], "wait") == 0) {
        /* Blocks in a host service (reading file "ctl") so that tests can poke at the process. */
        uint32_t h;
        if (clst_enclave_file_open("ctl", CLST_ENCLAVE_FILE_READ, &h, NULL) != CLST_OK) {
            return 3;
        }
        (void)clst_enclave_file_read(h, out, sizeof(out), &n, NULL);
        clst_enclave_printf("secret-marker-%s\n", "0x5ec7e7");
        return 0;
    }
    for (size_t i = 0; i < sizeof(entries) / sizeof(entries[0]); i++) {
        if (strcmp(entries[i].name, argv[1]) == 0) {
            enum clst_status st = entries[i].fn((const uint8_t *)"", 0, out, sizeof(out), &n);
            return st == CLST_OK ? 0 : 10 + (int)st;
        }
    }
    return 2;
}

CLST_ENCLAVE_DEFINE(entries, misbehave_main);
