/*
 * Unit tests for src/core/secret.c: clst_secret_new/from/free, the raw allocator on both paths
 * (private DONTDUMP mappings without the secure heap; OpenSSL's secure heap after
 * clst_secret_heap_init), clst_ct_equal and clst_wipe.
 *
 * The two allocation paths run in one process: the first group runs before any heap_init, the
 * second initializes the secure heap in its group setup and tears it down in its teardown with
 * CRYPTO_secure_malloc_done(), which succeeds only when every secure allocation was freed (so it
 * doubles as a leak check). A last group checks the mmap path is back after the teardown. Calls
 * that can abort the process (bad heap sizes) run in a fork()ed child.
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/crypto.h>

#include "test_util.h"

/* The VmFlags line of the mapping holding `addr` ("rd wr ... dd ..."), from /proc/self/smaps. */
static bool
vm_flags_of(const void *addr, char *flags, size_t cap)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    if (f == NULL) {
        return false;
    }
    char line[1024];
    bool inside = false, found = false;
    uintptr_t a = (uintptr_t)addr;
    while (fgets(line, sizeof(line), f) != NULL) {
        unsigned long lo, hi;
        char dash;
        if (sscanf(line, "%lx%c%lx ", &lo, &dash, &hi) == 3 && dash == '-') {
            inside = lo <= a && a < hi;
            continue;
        }
        if (inside && strncmp(line, "VmFlags:", 8) == 0) {
            line[strcspn(line, "\n")] = '\0';
            snprintf(flags, cap, "%s ", line + 8);
            found = true;
            break;
        }
    }
    fclose(f);
    return found;
}

static bool
is_dontdump(const void *addr)
{
    char flags[1040]; /* holds a whole smaps line */
    return vm_flags_of(addr, flags, sizeof(flags)) && strstr(flags, " dd ") != NULL;
}

static void
pattern(uint8_t *p, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (uint8_t)(seed >> 16);
    }
}

/* Runs fn in a child process; returns its exit code, or 128 + signal if it was killed. */
static int
in_child(int (*fn)(void))
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        _exit(fn());
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid) {
        return -1;
    }
    if (WIFSIGNALED(status)) {
        return 128 + WTERMSIG(status);
    }
    return WEXITSTATUS(status);
}

/* ---- shared checks, run on whichever path is active ----------------------------------------- */

static void
check_new_from_free(void)
{
    static const size_t sizes[] = {0, 1, 15, 16, 17, 32, 100, 4080, 4096, 5000};
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        size_t n = sizes[k];
        struct clst_secret *s = NULL;
        assert_int_equal(clst_secret_new(n, &s), CLST_OK);
        assert_non_null(s);
        assert_non_null(s->ptr);
        assert_int_equal(s->size, n);
        /* The whole size is writable (ASan would flag an overrun). */
        memset(s->ptr, 0xa5, n);
        clst_secret_free(s);

        uint8_t ref[5000];
        pattern(ref, n, (uint32_t)n);
        s = NULL;
        assert_int_equal(clst_secret_from(ref, n, &s), CLST_OK);
        assert_non_null(s);
        assert_int_equal(s->size, n);
        if (n > 0) {
            assert_memory_equal(s->ptr, ref, n);
        }
        clst_secret_free(s);
    }
    /* A fresh secret is zero-filled (both paths hand out zeroed memory). */
    struct clst_secret *s = NULL;
    assert_int_equal(clst_secret_new(64, &s), CLST_OK);
    for (size_t i = 0; i < 64; i++) {
        assert_int_equal(s->ptr[i], 0);
    }
    clst_secret_free(s);
    clst_secret_free(NULL); /* no-op */
}

static void
check_many_live_allocations(void)
{
    enum { COUNT = 40 };
    struct clst_secret *s[COUNT];
    for (int i = 0; i < COUNT; i++) {
        uint8_t ref[200];
        pattern(ref, sizeof(ref), (uint32_t)i);
        assert_int_equal(clst_secret_from(ref, (size_t)(i * 5), &s[i]), CLST_OK);
    }
    /* Allocations do not overlap: each still holds what was written. */
    for (int i = 0; i < COUNT; i++) {
        uint8_t ref[200];
        pattern(ref, sizeof(ref), (uint32_t)i);
        if (i > 0) {
            assert_memory_equal(s[i]->ptr, ref, (size_t)(i * 5));
        }
    }
    for (int i = 0; i < COUNT; i += 2) {
        clst_secret_free(s[i]);
    }
    for (int i = 1; i < COUNT; i += 2) {
        clst_secret_free(s[i]);
    }
}

/* ---- group 1: no secure heap (mmap path) ---------------------------------------------------- */

static void
test_mmap_new_from_free(void **state)
{
    (void)state;
    assert_false(CRYPTO_secure_malloc_initialized());
    check_new_from_free();
    check_many_live_allocations();
}

static void
test_mmap_memory_is_dontdump(void **state)
{
    (void)state;
    struct clst_secret *s = NULL;
    assert_int_equal(clst_secret_new(100, &s), CLST_OK);
    assert_false(CRYPTO_secure_allocated(s->ptr));
    assert_true(is_dontdump(s->ptr));
    assert_true(is_dontdump(s->ptr + 99));
    clst_secret_free(s);

    /* A multi-page allocation is excluded from core dumps from end to end. */
    uint8_t *p = clst_secret_alloc_raw(3 * 4096 + 5);
    assert_non_null(p);
    assert_true(is_dontdump(p));
    assert_true(is_dontdump(p + 3 * 4096 + 4));
    memset(p, 1, 3 * 4096 + 5);
    clst_secret_free_raw(p, 3 * 4096 + 5);
}

static void
test_raw_alloc_limits(void **state)
{
    (void)state;
    assert_null(clst_secret_alloc_raw(SIZE_MAX));
    assert_null(clst_secret_alloc_raw(SIZE_MAX / 2 + 1));
    struct clst_secret *s = (struct clst_secret *)0x1; /* must stay untouched on failure */
    assert_int_equal(clst_secret_new(SIZE_MAX, &s), CLST_E_NOMEM);
    assert_ptr_equal(s, (struct clst_secret *)0x1);
    assert_int_equal(clst_secret_from("x", SIZE_MAX, &s), CLST_E_NOMEM);
    assert_ptr_equal(s, (struct clst_secret *)0x1);
    clst_secret_free_raw(NULL, 0);  /* no-op */
    clst_secret_free_raw(NULL, 10); /* no-op */
}

/* The size given to free_raw is advisory (the allocation records its own): a wrong one is
 * harmless. */
static void
test_raw_free_size_ignored(void **state)
{
    (void)state;
    uint8_t *p = clst_secret_alloc_raw(5000);
    assert_non_null(p);
    memset(p, 0x33, 5000);
    clst_secret_free_raw(p, 1);
    p = clst_secret_alloc_raw(10);
    assert_non_null(p);
    clst_secret_free_raw(p, 0);
}

static int
child_heap_init_bad_size(void)
{
    static const size_t bad[] = {0, 3, 3000, 4097, (1u << 16) + 1};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (clst_secret_heap_init(bad[i]) == CLST_OK) {
            return 10 + (int)i;
        }
        if (CRYPTO_secure_malloc_initialized()) {
            return 20 + (int)i;
        }
    }
    return 0;
}

/*
 * The header asks for a power of two. A library function must answer a wrong size with a status,
 * never abort: OpenSSL 3.0's CRYPTO_secure_malloc_init() OPENSSL_assert()s on such sizes, so
 * clst_secret_heap_init() has to check first. Run in a child so an abort fails only this test.
 */
static void
test_heap_init_bad_size_does_not_abort(void **state)
{
    (void)state;
    int rc = in_child(child_heap_init_bad_size);
    if (rc != 0) {
        fail_msg("clst_secret_heap_init with a non power of two: child ended with %d "
                 "(134 = SIGABRT from OpenSSL's assert; 10+i = accepted bad size i)",
                 rc);
    }
}

static void
test_ct_equal(void **state)
{
    (void)state;
    uint8_t a[64], b[64];
    pattern(a, sizeof(a), 7);
    memcpy(b, a, sizeof(b));
    assert_true(clst_ct_equal(a, b, sizeof(a)));
    assert_true(clst_ct_equal(a, a, sizeof(a)));
    /* Any single bit flipped anywhere makes them differ. */
    for (size_t i = 0; i < sizeof(b); i++) {
        for (int bit = 0; bit < 8; bit++) {
            b[i] ^= (uint8_t)(1u << bit);
            assert_false(clst_ct_equal(a, b, sizeof(a)));
            b[i] ^= (uint8_t)(1u << bit);
        }
    }
    assert_true(clst_ct_equal(a, b, sizeof(a)));
    /* Only the first `size` bytes count. */
    b[10] ^= 1;
    assert_true(clst_ct_equal(a, b, 10));
    assert_false(clst_ct_equal(a, b, 11));
    /* Size 0: equal, whatever the contents. */
    assert_true(clst_ct_equal("x", "y", 0));
    assert_true(clst_ct_equal(a, b, 0));
}

static void
test_wipe(void **state)
{
    (void)state;
    uint8_t buf[100];
    memset(buf, 0xcc, sizeof(buf));
    clst_wipe(buf + 10, 50);
    for (size_t i = 0; i < sizeof(buf); i++) {
        assert_int_equal(buf[i], (i >= 10 && i < 60) ? 0 : 0xcc);
    }
    clst_wipe(buf, 0); /* touches nothing */
    assert_int_equal(buf[0], 0xcc);
    clst_wipe(NULL, 0);
    clst_wipe(NULL, 100); /* NULL is accepted */

    struct clst_secret *s = NULL;
    assert_int_equal(clst_secret_from("key material", 12, &s), CLST_OK);
    clst_wipe(s->ptr, s->size);
    for (size_t i = 0; i < 12; i++) {
        assert_int_equal(s->ptr[i], 0);
    }
    clst_secret_free(s);
}

/* ---- group 2: secure heap ------------------------------------------------------------------- */

enum { HEAP_SIZE = 1 << 16 };

static int
heap_setup(void **state)
{
    (void)state;
    if (CRYPTO_secure_malloc_initialized()) {
        return -1;
    }
    return clst_secret_heap_init(HEAP_SIZE) == CLST_OK ? 0 : -1;
}

static int
heap_teardown(void **state)
{
    (void)state;
    /* 1 only when nothing allocated from the secure heap is still live. */
    if (CRYPTO_secure_malloc_done() != 1) {
        fprintf(stderr, "secure heap still in use at teardown: a secret was not freed\n");
        return -1;
    }
    return CRYPTO_secure_malloc_initialized() ? -1 : 0;
}

static void
test_heap_initialized(void **state)
{
    (void)state;
    assert_true(CRYPTO_secure_malloc_initialized());
    /* A second init is accepted and changes nothing, whatever its size. */
    assert_int_equal(clst_secret_heap_init(HEAP_SIZE), CLST_OK);
    assert_int_equal(clst_secret_heap_init(1 << 20), CLST_OK);
    assert_true(CRYPTO_secure_malloc_initialized());
}

static void
test_heap_new_from_free(void **state)
{
    (void)state;
    check_new_from_free();
    check_many_live_allocations();
}

static void
test_heap_memory_is_secure(void **state)
{
    (void)state;
    size_t used = CRYPTO_secure_used();
    struct clst_secret *s = NULL;
    assert_int_equal(clst_secret_from("0123456789abcdef", 16, &s), CLST_OK);
    assert_true(CRYPTO_secure_allocated(s->ptr));
    assert_true(CRYPTO_secure_allocated(s->ptr + 15));
    assert_true(CRYPTO_secure_used() > used);
    assert_memory_equal(s->ptr, "0123456789abcdef", 16);
    clst_secret_free(s);
    assert_int_equal(CRYPTO_secure_used(), used);

    uint8_t *p = clst_secret_alloc_raw(1000);
    assert_non_null(p);
    assert_true(CRYPTO_secure_allocated(p));
    clst_secret_free_raw(p, 1000);
    assert_int_equal(CRYPTO_secure_used(), used);
}

/* Memory allocated before the heap existed is still released the right way afterwards. */
static int
child_cross_path(void)
{
    uint8_t *before = clst_secret_alloc_raw(100);
    if (before == NULL || CRYPTO_secure_allocated(before)) {
        return 1;
    }
    memcpy(before, "mapped", 6);
    if (clst_secret_heap_init(HEAP_SIZE) != CLST_OK) {
        return 2;
    }
    uint8_t *after = clst_secret_alloc_raw(100);
    if (after == NULL || !CRYPTO_secure_allocated(after)) {
        return 3;
    }
    if (memcmp(before, "mapped", 6) != 0) {
        return 4;
    }
    clst_secret_free_raw(before, 100); /* the mapping, not the secure heap */
    clst_secret_free_raw(after, 100);
    if (CRYPTO_secure_used() != 0) {
        return 5;
    }
    return CRYPTO_secure_malloc_done() == 1 ? 0 : 6;
}

static void
test_alloc_before_heap_init_freed_after(void **state)
{
    (void)state;
    /* Needs a process without a secure heap: this group's process has one, so fork and tear
     * nothing down in the child. */
    assert_true(CRYPTO_secure_malloc_initialized());
    pid_t pid;
    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        /* The child inherits the heap; free it there first (nothing is allocated from it now). */
        if (CRYPTO_secure_malloc_done() != 1) {
            _exit(100);
        }
        _exit(child_cross_path());
    }
    assert_true(pid > 0);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* ---- group 3: after teardown, the mmap path is back ------------------------------------------ */

static void
test_after_teardown(void **state)
{
    (void)state;
    assert_false(CRYPTO_secure_malloc_initialized());
    struct clst_secret *s = NULL;
    assert_int_equal(clst_secret_new(10, &s), CLST_OK);
    assert_false(CRYPTO_secure_allocated(s->ptr));
    assert_true(is_dontdump(s->ptr));
    clst_secret_free(s);
}

int
main(void)
{
    const struct CMUnitTest no_heap[] = {
        cmocka_unit_test(test_mmap_new_from_free),
        cmocka_unit_test(test_mmap_memory_is_dontdump),
        cmocka_unit_test(test_raw_alloc_limits),
        cmocka_unit_test(test_raw_free_size_ignored),
        cmocka_unit_test(test_heap_init_bad_size_does_not_abort),
        cmocka_unit_test(test_ct_equal),
        cmocka_unit_test(test_wipe),
    };
    const struct CMUnitTest heap[] = {
        cmocka_unit_test(test_heap_initialized),
        cmocka_unit_test(test_heap_new_from_free),
        cmocka_unit_test(test_heap_memory_is_secure),
        cmocka_unit_test(test_raw_alloc_limits),
        cmocka_unit_test(test_raw_free_size_ignored),
        cmocka_unit_test(test_wipe),
        cmocka_unit_test(test_alloc_before_heap_init_freed_after),
    };
    const struct CMUnitTest after[] = {
        cmocka_unit_test(test_after_teardown),
    };
    int failed = 0;
    failed += cmocka_run_group_tests_name("core/secret (mmap path)", no_heap, NULL, NULL);
    failed +=
        cmocka_run_group_tests_name("core/secret (secure heap)", heap, heap_setup, heap_teardown);
    failed += cmocka_run_group_tests_name("core/secret (after teardown)", after, NULL, NULL);
    return failed;
}
