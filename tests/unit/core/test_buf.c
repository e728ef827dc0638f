/* Unit tests for src/core/buf.c: the hard cap, append/appendf/terminate/reset/cleanup/steal,
 * secret buffers, the zeroed struct and growth. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <openssl/crypto.h>

#include "test_util.h"

/* Reads the VmFlags of the mapping that holds `addr` from /proc/self/smaps into `flags`
 * (" rd wr ... dd ..." with a leading and trailing space so " dd " can be searched). */
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

static void
test_init(void **state)
{
    (void)state;
    struct clst_buf b;
    memset(&b, 0xa5, sizeof(b));
    clst_buf_init(&b, 123);
    assert_null(b.data);
    assert_int_equal(b.size, 0);
    assert_int_equal(b.cap, 0);
    assert_int_equal(b.max, 123);
    assert_false(b.secret);

    memset(&b, 0xa5, sizeof(b));
    clst_buf_init_secret(&b, 77);
    assert_null(b.data);
    assert_int_equal(b.size, 0);
    assert_int_equal(b.cap, 0);
    assert_int_equal(b.max, 77);
    assert_true(b.secret);
    clst_buf_cleanup(&b);
}

static void
test_append_basic(void **state)
{
    (void)state;
    struct clst_buf b;
    clst_buf_init(&b, 1000);
    assert_int_equal(clst_buf_append(&b, "abc", 3), CLST_OK);
    assert_int_equal(clst_buf_append_byte(&b, 'd'), CLST_OK);
    assert_int_equal(clst_buf_append_str(&b, "ef"), CLST_OK);
    assert_int_equal(clst_buf_append_str(&b, ""), CLST_OK);
    assert_int_equal(clst_buf_append(&b, "ignored", 0), CLST_OK);
    assert_int_equal(b.size, 6);
    assert_memory_equal(b.data, "abcdef", 6);
    assert_true(b.cap >= b.size + 1);
    /* The contents stay usable as a C string. */
    assert_int_equal(b.data[b.size], 0);
    assert_string_equal((const char *)b.data, "abcdef");
    /* Binary data, including NUL bytes, is kept as is. */
    static const uint8_t bin[] = {0, 0xff, 0, 0x80};
    assert_int_equal(clst_buf_append(&b, bin, sizeof(bin)), CLST_OK);
    assert_int_equal(b.size, 10);
    assert_memory_equal(b.data + 6, bin, sizeof(bin));
    clst_buf_cleanup(&b);
}

static void
test_hard_cap_exact(void **state)
{
    (void)state;
    struct clst_buf b;
    clst_buf_init(&b, 10);
    assert_int_equal(clst_buf_append(&b, "01234", 5), CLST_OK);
    assert_int_equal(clst_buf_append(&b, "56789", 5), CLST_OK); /* exactly max */
    assert_int_equal(b.size, 10);
    uint8_t *before = b.data;

    /* One more byte, by any route, is refused and changes nothing. */
    assert_int_equal(clst_buf_append(&b, "x", 1), CLST_E_LIMIT);
    assert_int_equal(clst_buf_append_byte(&b, 'x'), CLST_E_LIMIT);
    assert_int_equal(clst_buf_append_str(&b, "x"), CLST_E_LIMIT);
    assert_int_equal(clst_buf_appendf(&b, "%c", 'x'), CLST_E_LIMIT);
    assert_int_equal(clst_buf_reserve(&b, 1), CLST_E_LIMIT);
    assert_int_equal(clst_buf_reserve(&b, SIZE_MAX), CLST_E_LIMIT);
    assert_int_equal(clst_buf_append(&b, "xyz", SIZE_MAX), CLST_E_LIMIT);
    assert_int_equal(b.size, 10);
    assert_ptr_equal(b.data, before);
    assert_memory_equal(b.data, "0123456789", 10);

    /* Zero more bytes is fine, and so is the terminator at max. */
    assert_int_equal(clst_buf_reserve(&b, 0), CLST_OK);
    assert_int_equal(clst_buf_append(&b, "", 0), CLST_OK);
    assert_int_equal(clst_buf_appendf(&b, "%s", ""), CLST_OK);
    assert_int_equal(clst_buf_terminate(&b), CLST_OK);
    assert_int_equal(b.size, 10);
    assert_int_equal(b.data[10], 0);
    assert_string_equal((const char *)b.data, "0123456789");
    /* The allocation never exceeds max plus the terminator. */
    assert_true(b.cap <= b.max + 1);
    clst_buf_cleanup(&b);
}

static void
test_hard_cap_single_append_over(void **state)
{
    (void)state;
    struct clst_buf b;
    clst_buf_init(&b, 8);
    assert_int_equal(clst_buf_append(&b, "abc", 3), CLST_OK);
    /* 3 + 6 > 8: the whole append is refused, nothing partial is written. */
    assert_int_equal(clst_buf_append(&b, "defghi", 6), CLST_E_LIMIT);
    assert_int_equal(b.size, 3);
    assert_memory_equal(b.data, "abc", 3);
    assert_int_equal(clst_buf_append(&b, "defgh", 5), CLST_OK);
    assert_memory_equal(b.data, "abcdefgh", 8);
    clst_buf_cleanup(&b);

    /* An empty buffer with a small max refuses a large first append without allocating. */
    clst_buf_init(&b, 4);
    assert_int_equal(clst_buf_append(&b, "hello", 5), CLST_E_LIMIT);
    assert_null(b.data);
    assert_int_equal(b.size, 0);
    clst_buf_cleanup(&b);
}

static void
test_cap_never_exceeds_max_plus_one(void **state)
{
    (void)state;
    struct clst_buf b;
    clst_buf_init(&b, 1000);
    for (size_t i = 0; i < 1000; i++) {
        assert_int_equal(clst_buf_append_byte(&b, (uint8_t)i), CLST_OK);
        assert_true(b.cap >= b.size + 1);
        assert_true(b.cap <= b.max + 1);
    }
    assert_int_equal(clst_buf_append_byte(&b, 0), CLST_E_LIMIT);
    for (size_t i = 0; i < 1000; i++) {
        assert_int_equal(b.data[i], (uint8_t)i);
    }
    clst_buf_cleanup(&b);
}

static void
test_reserve(void **state)
{
    (void)state;
    struct clst_buf b;
    clst_buf_init(&b, 1 << 16);
    assert_int_equal(clst_buf_append(&b, "ab", 2), CLST_OK);
    assert_int_equal(clst_buf_reserve(&b, 5000), CLST_OK);
    assert_true(b.cap >= 2 + 5000);
    assert_int_equal(b.size, 2);
    assert_memory_equal(b.data, "ab", 2);
    /* After a reserve, appending that much does not move the data. */
    uint8_t *before = b.data;
    static uint8_t chunk[5000];
    pattern(chunk, sizeof(chunk), 1);
    assert_int_equal(clst_buf_append(&b, chunk, sizeof(chunk)), CLST_OK);
    assert_ptr_equal(b.data, before);
    assert_memory_equal(b.data + 2, chunk, sizeof(chunk));
    /* Past the cap: refused, nothing changes. */
    size_t cap = b.cap;
    assert_int_equal(clst_buf_reserve(&b, (1 << 16) - 5002 + 1), CLST_E_LIMIT);
    assert_int_equal(b.cap, cap);
    assert_int_equal(clst_buf_reserve(&b, (1 << 16) - 5002), CLST_OK);
    clst_buf_cleanup(&b);
}

static void
test_appendf(void **state)
{
    (void)state;
    struct clst_buf b;
    clst_buf_init(&b, 100);
    assert_int_equal(clst_buf_appendf(&b, "%s=%d", "n", -12), CLST_OK);
    assert_int_equal(clst_buf_appendf(&b, ";%04x", 0xbeefu), CLST_OK);
    assert_int_equal(b.size, strlen("n=-12;beef"));
    assert_string_equal((const char *)b.data, "n=-12;beef");
    assert_int_equal(b.data[b.size], 0);

    /* Mixed with raw appends; the NUL after size is kept. */
    assert_int_equal(clst_buf_append(&b, "!", 1), CLST_OK);
    assert_int_equal(clst_buf_appendf(&b, "%c", '?'), CLST_OK);
    assert_string_equal((const char *)b.data, "n=-12;beef!?");

    /* Would exceed max (100): refused, contents and size unchanged. */
    size_t size = b.size;
    assert_int_equal(clst_buf_appendf(&b, "%*s", 100, "x"), CLST_E_LIMIT);
    assert_int_equal(b.size, size);
    assert_string_equal((const char *)b.data, "n=-12;beef!?");

    /* Exactly to max is accepted. */
    assert_int_equal(clst_buf_appendf(&b, "%*s", (int)(100 - size), "y"), CLST_OK);
    assert_int_equal(b.size, 100);
    assert_int_equal(b.data[99], 'y');
    assert_int_equal(b.data[100], 0);
    clst_buf_cleanup(&b);

    /* A long formatted string that needs several growth steps. */
    clst_buf_init(&b, 1 << 20);
    assert_int_equal(clst_buf_appendf(&b, "%0*d", 10000, 7), CLST_OK);
    assert_int_equal(b.size, 10000);
    assert_int_equal(b.data[0], '0');
    assert_int_equal(b.data[9999], '7');
    assert_int_equal(b.data[10000], 0);
    clst_buf_cleanup(&b);
}

static void
test_terminate(void **state)
{
    (void)state;
    struct clst_buf b;
    clst_buf_init(&b, 100);
    /* An empty, unallocated buffer becomes the empty string. */
    assert_int_equal(clst_buf_terminate(&b), CLST_OK);
    assert_non_null(b.data);
    assert_int_equal(b.size, 0);
    assert_int_equal(b.data[0], 0);
    assert_int_equal(clst_buf_append(&b, "hi", 2), CLST_OK);
    b.data[b.size] = 'X'; /* clobber the terminator, as a raw writer could */
    assert_int_equal(clst_buf_terminate(&b), CLST_OK);
    assert_int_equal(b.size, 2);
    assert_string_equal((const char *)b.data, "hi");
    clst_buf_cleanup(&b);
}

static void
test_reset(void **state)
{
    (void)state;
    struct clst_buf b;
    clst_buf_init(&b, 100);
    assert_int_equal(clst_buf_append(&b, "hello", 5), CLST_OK);
    uint8_t *data = b.data;
    size_t cap = b.cap;
    clst_buf_reset(&b);
    assert_int_equal(b.size, 0);
    assert_ptr_equal(b.data, data); /* memory is kept */
    assert_int_equal(b.cap, cap);
    assert_int_equal(b.max, 100);
    assert_int_equal(clst_buf_append(&b, "xy", 2), CLST_OK);
    assert_memory_equal(b.data, "xy", 2);
    /* The whole max is available again after a reset. */
    clst_buf_reset(&b);
    static uint8_t full[100];
    pattern(full, sizeof(full), 2);
    assert_int_equal(clst_buf_append(&b, full, sizeof(full)), CLST_OK);
    assert_memory_equal(b.data, full, sizeof(full));
    clst_buf_cleanup(&b);

    /* Reset of a zeroed buffer is a no-op. */
    struct clst_buf z = {0};
    clst_buf_reset(&z);
    assert_null(z.data);
    assert_int_equal(z.size, 0);
}

static void
test_cleanup(void **state)
{
    (void)state;
    struct clst_buf b;
    clst_buf_init(&b, 50);
    assert_int_equal(clst_buf_append(&b, "abc", 3), CLST_OK);
    clst_buf_cleanup(&b);
    assert_null(b.data);
    assert_int_equal(b.size, 0);
    assert_int_equal(b.cap, 0);
    assert_int_equal(b.max, 50); /* kept, so the buffer can be reused */
    assert_false(b.secret);
    clst_buf_cleanup(&b); /* twice is harmless */
    assert_int_equal(clst_buf_append(&b, "defg", 4), CLST_OK);
    assert_memory_equal(b.data, "defg", 4);
    clst_buf_cleanup(&b);

    clst_buf_init_secret(&b, 50);
    assert_int_equal(clst_buf_append(&b, "k", 1), CLST_OK);
    clst_buf_cleanup(&b);
    assert_null(b.data);
    assert_int_equal(b.max, 50);
    assert_true(b.secret);
}

static void
test_steal(void **state)
{
    (void)state;
    struct clst_buf b;
    clst_buf_init(&b, 100);
    assert_int_equal(clst_buf_append(&b, "stolen", 6), CLST_OK);
    size_t size = 0;
    uint8_t *p = clst_buf_steal(&b, &size);
    assert_non_null(p);
    assert_int_equal(size, 6);
    assert_memory_equal(p, "stolen", 6);
    assert_null(b.data);
    assert_int_equal(b.size, 0);
    assert_int_equal(b.cap, 0);
    assert_int_equal(b.max, 100);
    /* The buffer is reusable and independent of the stolen memory. */
    assert_int_equal(clst_buf_append(&b, "again", 5), CLST_OK);
    assert_memory_equal(p, "stolen", 6);
    assert_memory_equal(b.data, "again", 5);
    free(p);
    clst_buf_cleanup(&b);

    /* Stealing from an empty buffer gives NULL and size 0. */
    clst_buf_init(&b, 100);
    size = 99;
    p = clst_buf_steal(&b, &size);
    assert_null(p);
    assert_int_equal(size, 0);
}

static void
test_zeroed_struct(void **state)
{
    (void)state;
    struct clst_buf b = {0};
    /* max 0: nothing may be appended, by any route. */
    assert_int_equal(clst_buf_append(&b, "a", 1), CLST_E_LIMIT);
    assert_int_equal(clst_buf_append_byte(&b, 1), CLST_E_LIMIT);
    assert_int_equal(clst_buf_append_str(&b, "a"), CLST_E_LIMIT);
    assert_int_equal(clst_buf_appendf(&b, "%d", 1), CLST_E_LIMIT);
    assert_int_equal(clst_buf_reserve(&b, 1), CLST_E_LIMIT);
    assert_int_equal(b.size, 0);
    /* Zero bytes are fine. */
    assert_int_equal(clst_buf_append(&b, "a", 0), CLST_OK);
    assert_int_equal(clst_buf_append_str(&b, ""), CLST_OK);
    assert_int_equal(b.size, 0);
    /* It is a valid empty string once terminated. */
    assert_int_equal(clst_buf_terminate(&b), CLST_OK);
    assert_non_null(b.data);
    assert_int_equal(b.data[0], 0);
    assert_true(b.cap <= 1);
    clst_buf_cleanup(&b);
    assert_null(b.data);
    /* Cleanup of a zeroed struct is a no-op. */
    struct clst_buf z = {0};
    clst_buf_cleanup(&z);
    assert_null(z.data);
    assert_int_equal(z.max, 0);
}

static void
test_growth_many_appends(void **state)
{
    (void)state;
    enum { TOTAL = 300000 };
    static uint8_t ref[TOTAL];
    pattern(ref, sizeof(ref), 3);
    struct clst_buf b;
    clst_buf_init(&b, TOTAL);
    size_t off = 0, step = 1;
    while (off < TOTAL) {
        size_t n = step < TOTAL - off ? step : TOTAL - off;
        assert_int_equal(clst_buf_append(&b, ref + off, n), CLST_OK);
        off += n;
        step = step % 1500 + 7; /* sizes 1 .. ~1500, crossing every growth boundary */
        assert_int_equal(b.size, off);
        assert_true(b.cap >= b.size + 1 && b.cap <= b.max + 1);
    }
    assert_memory_equal(b.data, ref, TOTAL);
    assert_int_equal(clst_buf_append_byte(&b, 0), CLST_E_LIMIT);
    clst_buf_cleanup(&b);

    /* Byte by byte. */
    clst_buf_init(&b, 70000);
    for (size_t i = 0; i < 70000; i++) {
        assert_int_equal(clst_buf_append_byte(&b, ref[i]), CLST_OK);
    }
    assert_memory_equal(b.data, ref, 70000);
    clst_buf_cleanup(&b);
}

static void
test_secret_buffer(void **state)
{
    (void)state;
    enum { TOTAL = 100000 };
    static uint8_t ref[TOTAL];
    pattern(ref, sizeof(ref), 4);
    struct clst_buf b;
    clst_buf_init_secret(&b, TOTAL);
    assert_int_equal(clst_buf_append(&b, ref, 10), CLST_OK);
    /* Without the secure heap, secret memory comes from clst_secret_alloc_raw's own mappings,
     * which are excluded from core dumps (MADV_DONTDUMP shows as "dd" in smaps). */
    assert_false(CRYPTO_secure_malloc_initialized());
    assert_true(is_dontdump(b.data));
    /* Growth keeps the contents and keeps them in secret memory. */
    for (size_t off = 10; off < TOTAL; off += 1000) {
        size_t n = TOTAL - off < 1000 ? TOTAL - off : 1000;
        assert_int_equal(clst_buf_append(&b, ref + off, n), CLST_OK);
        assert_true(is_dontdump(b.data));
    }
    assert_memory_equal(b.data, ref, TOTAL);
    assert_int_equal(clst_buf_append_byte(&b, 0), CLST_E_LIMIT);
    assert_memory_equal(b.data, ref, TOTAL);

    /* Reset wipes the whole allocation but keeps it. */
    uint8_t *data = b.data;
    size_t cap = b.cap;
    clst_buf_reset(&b);
    assert_ptr_equal(b.data, data);
    for (size_t i = 0; i < cap; i++) {
        assert_int_equal(b.data[i], 0);
    }
    clst_buf_cleanup(&b);
    assert_null(b.data);
    assert_true(b.secret);
}

static void
test_secret_buffer_appendf_and_steal(void **state)
{
    (void)state;
    struct clst_buf b;
    clst_buf_init_secret(&b, 4096);
    assert_int_equal(clst_buf_appendf(&b, "pin=%04d", 1234), CLST_OK);
    assert_int_equal(clst_buf_terminate(&b), CLST_OK);
    assert_string_equal((const char *)b.data, "pin=1234");
    size_t size = 0;
    uint8_t *p = clst_buf_steal(&b, &size);
    assert_non_null(p);
    assert_int_equal(size, 8);
    assert_memory_equal(p, "pin=1234", 8);
    assert_true(is_dontdump(p));
    assert_null(b.data);
    assert_true(b.secret);
    /* Stolen secret memory is released with clst_secret_free_raw (the header says so). */
    clst_secret_free_raw(p, size);
    clst_buf_cleanup(&b);
}

static void
test_secret_buffer_on_secure_heap(void **state)
{
    (void)state;
    /* The OpenSSL secure heap can be torn down once everything allocated from it is freed, so
     * this test runs last and leaves the process as it found it. */
    assert_int_equal(clst_secret_heap_init(1 << 16), CLST_OK);
    assert_true(CRYPTO_secure_malloc_initialized());
    struct clst_buf b;
    clst_buf_init_secret(&b, 8192);
    static uint8_t ref[5000];
    pattern(ref, sizeof(ref), 5);
    for (size_t off = 0; off < sizeof(ref); off += 100) {
        assert_int_equal(clst_buf_append(&b, ref + off, 100), CLST_OK);
        assert_true(CRYPTO_secure_allocated(b.data));
    }
    assert_memory_equal(b.data, ref, sizeof(ref));
    clst_buf_cleanup(&b);
    /* Returns 1 only when nothing is still allocated from the secure heap: no leak. */
    assert_int_equal(CRYPTO_secure_malloc_done(), 1);
    assert_false(CRYPTO_secure_malloc_initialized());
}

/*
 * max == SIZE_MAX ("no practical cap") must still be safe. In the current buf.c, `b->max + 1`
 * wraps to 0 in clst_buf_reserve, so the allocation is clamped to 0 bytes and reserve returns
 * CLST_OK with cap 0 (the next append then writes past a 0-byte allocation); and
 * `b->size + extra + 1` wraps for extra == SIZE_MAX - size, so that reserve "succeeds" with no
 * memory. The asserts below run no write that could overflow, so they fail cleanly.
 */
static void
test_max_size_max(void **state)
{
    (void)state;
    struct clst_buf b;
    clst_buf_init(&b, SIZE_MAX);
    assert_int_equal(clst_buf_reserve(&b, 10), CLST_OK);
    assert_true(b.cap >= 11);
    assert_int_equal(clst_buf_append(&b, "0123456789", 10), CLST_OK);
    assert_memory_equal(b.data, "0123456789", 10);
    assert_int_not_equal(clst_buf_reserve(&b, SIZE_MAX), CLST_OK);
    assert_int_not_equal(clst_buf_reserve(&b, SIZE_MAX - b.size), CLST_OK);
    assert_int_equal(b.size, 10);
    clst_buf_cleanup(&b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init),
        cmocka_unit_test(test_append_basic),
        cmocka_unit_test(test_hard_cap_exact),
        cmocka_unit_test(test_hard_cap_single_append_over),
        cmocka_unit_test(test_cap_never_exceeds_max_plus_one),
        cmocka_unit_test(test_reserve),
        cmocka_unit_test(test_appendf),
        cmocka_unit_test(test_terminate),
        cmocka_unit_test(test_reset),
        cmocka_unit_test(test_cleanup),
        cmocka_unit_test(test_steal),
        cmocka_unit_test(test_zeroed_struct),
        cmocka_unit_test(test_growth_many_appends),
        cmocka_unit_test(test_secret_buffer),
        cmocka_unit_test(test_secret_buffer_appendf_and_steal),
        cmocka_unit_test(test_max_size_max),
        cmocka_unit_test(test_secret_buffer_on_secure_heap), /* last: see the comment inside */
    };
    return cmocka_run_group_tests_name("core/buf", tests, NULL, NULL);
}
