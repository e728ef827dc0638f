/* Unit tests for src/core/cursor.c (and the inline cursor helpers of core.h): every reader at
 * exact length and one byte short, endianness known answers, zeros, sub-cursors, huge lengths,
 * and the put_* writers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_util.h"

static const uint8_t seq[16] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
                                0x89, 0x9a, 0xab, 0xbc, 0xcd, 0xde, 0xef, 0xf0};

/* Asserts that a cursor still points at (base, size). */
#define ASSERT_AT(c, base, size)                                                                   \
    do {                                                                                           \
        assert_ptr_equal((c).ptr, (const uint8_t *)(base));                                        \
        assert_int_equal((c).left, (size));                                                        \
    } while (0)

static void
test_make_and_empty(void **state)
{
    (void)state;
    struct clst_cursor c = clst_cursor_make(seq, sizeof(seq));
    ASSERT_AT(c, seq, sizeof(seq));
    assert_false(clst_cursor_empty(&c));
    c = clst_cursor_make(seq, 0);
    assert_true(clst_cursor_empty(&c));
    c = clst_cursor_make(NULL, 0);
    assert_true(clst_cursor_empty(&c));
    /* Zero-length reads on an empty cursor succeed and consume nothing. */
    const uint8_t *p = NULL;
    assert_true(clst_cursor_take(&c, 0, &p));
    assert_true(clst_cursor_skip(&c, 0));
    assert_true(clst_cursor_copy(&c, NULL, 0));
    assert_true(clst_cursor_zeros(&c, 0));
    assert_true(clst_cursor_empty(&c));
    uint8_t u8 = 0x77;
    assert_false(clst_cursor_u8(&c, &u8));
    assert_int_equal(u8, 0x77);
}

static void
test_take(void **state)
{
    (void)state;
    struct clst_cursor c = clst_cursor_make(seq, 5);
    const uint8_t *p = NULL;
    assert_true(clst_cursor_take(&c, 2, &p));
    assert_ptr_equal(p, seq);
    ASSERT_AT(c, seq + 2, 3);
    /* One too many: fails, cursor and out unchanged. */
    const uint8_t *q = (const uint8_t *)"sentinel";
    assert_false(clst_cursor_take(&c, 4, &q));
    assert_string_equal((const char *)q, "sentinel");
    ASSERT_AT(c, seq + 2, 3);
    assert_true(clst_cursor_take(&c, 3, &p));
    assert_ptr_equal(p, seq + 2);
    assert_true(clst_cursor_empty(&c));
}

/* Each fixed-width reader: succeeds on exactly its width, fails on one byte less without moving
 * the cursor or writing the output. */
static void
test_readers_exact_and_short(void **state)
{
    (void)state;
    struct clst_cursor c;

    uint8_t v8 = 0xee;
    c = clst_cursor_make(seq, 1);
    assert_true(clst_cursor_u8(&c, &v8));
    assert_int_equal(v8, 0x01);
    assert_true(clst_cursor_empty(&c));
    assert_ptr_equal(c.ptr, seq + 1);
    v8 = 0xee;
    c = clst_cursor_make(seq, 0);
    assert_false(clst_cursor_u8(&c, &v8));
    assert_int_equal(v8, 0xee);
    ASSERT_AT(c, seq, 0);

    uint16_t v16 = 0xeeee;
    c = clst_cursor_make(seq, 2);
    assert_true(clst_cursor_le16(&c, &v16));
    assert_int_equal(v16, 0x0201);
    assert_true(clst_cursor_empty(&c));
    c = clst_cursor_make(seq, 2);
    assert_true(clst_cursor_be16(&c, &v16));
    assert_int_equal(v16, 0x0102);
    assert_true(clst_cursor_empty(&c));
    v16 = 0xeeee;
    c = clst_cursor_make(seq, 1);
    assert_false(clst_cursor_le16(&c, &v16));
    assert_false(clst_cursor_be16(&c, &v16));
    assert_int_equal(v16, 0xeeee);
    ASSERT_AT(c, seq, 1);

    uint32_t v32 = 0xeeeeeeee;
    c = clst_cursor_make(seq, 4);
    assert_true(clst_cursor_le32(&c, &v32));
    assert_int_equal(v32, 0x04030201u);
    assert_true(clst_cursor_empty(&c));
    c = clst_cursor_make(seq, 4);
    assert_true(clst_cursor_be32(&c, &v32));
    assert_int_equal(v32, 0x01020304u);
    assert_true(clst_cursor_empty(&c));
    v32 = 0xeeeeeeee;
    c = clst_cursor_make(seq, 3);
    assert_false(clst_cursor_le32(&c, &v32));
    assert_false(clst_cursor_be32(&c, &v32));
    assert_int_equal(v32, 0xeeeeeeee);
    ASSERT_AT(c, seq, 3);

    uint64_t v64 = 0xeeeeeeeeeeeeeeee;
    c = clst_cursor_make(seq, 8);
    assert_true(clst_cursor_le64(&c, &v64));
    assert_int_equal(v64, 0x0807060504030201u);
    assert_true(clst_cursor_empty(&c));
    c = clst_cursor_make(seq, 8);
    assert_true(clst_cursor_be64(&c, &v64));
    assert_int_equal(v64, 0x0102030405060708u);
    assert_true(clst_cursor_empty(&c));
    v64 = 0xeeeeeeeeeeeeeeee;
    c = clst_cursor_make(seq, 7);
    assert_false(clst_cursor_le64(&c, &v64));
    assert_false(clst_cursor_be64(&c, &v64));
    assert_int_equal(v64, 0xeeeeeeeeeeeeeeee);
    ASSERT_AT(c, seq, 7);

    uint8_t dst[16];
    memset(dst, 0xee, sizeof(dst));
    c = clst_cursor_make(seq, 16);
    assert_true(clst_cursor_copy(&c, dst, 16));
    assert_memory_equal(dst, seq, 16);
    assert_true(clst_cursor_empty(&c));
    memset(dst, 0xee, sizeof(dst));
    c = clst_cursor_make(seq, 15);
    assert_false(clst_cursor_copy(&c, dst, 16));
    for (size_t i = 0; i < sizeof(dst); i++) {
        assert_int_equal(dst[i], 0xee);
    }
    ASSERT_AT(c, seq, 15);

    c = clst_cursor_make(seq, 9);
    assert_true(clst_cursor_skip(&c, 9));
    ASSERT_AT(c, seq + 9, 0);
    c = clst_cursor_make(seq, 8);
    assert_false(clst_cursor_skip(&c, 9));
    ASSERT_AT(c, seq, 8);
}

/* Known answers with the high bit set everywhere, so sign extension would show. */
static void
test_endianness_high_bytes(void **state)
{
    (void)state;
    struct clst_cursor c = clst_cursor_make(seq + 8, 8);
    uint16_t v16;
    uint32_t v32;
    uint64_t v64;
    assert_true(clst_cursor_le16(&c, &v16));
    assert_int_equal(v16, 0x9a89);
    assert_true(clst_cursor_be16(&c, &v16));
    assert_int_equal(v16, 0xabbc);
    assert_true(clst_cursor_le32(&c, &v32));
    assert_int_equal(v32, 0xf0efdecdu);
    assert_true(clst_cursor_empty(&c));

    c = clst_cursor_make(seq + 8, 8);
    assert_true(clst_cursor_be32(&c, &v32));
    assert_int_equal(v32, 0x899aabbcu);
    c = clst_cursor_make(seq + 8, 8);
    assert_true(clst_cursor_le64(&c, &v64));
    assert_int_equal(v64, 0xf0efdecdbcab9a89u);
    c = clst_cursor_make(seq + 8, 8);
    assert_true(clst_cursor_be64(&c, &v64));
    assert_int_equal(v64, 0x899aabbccddeeff0u);

    static const uint8_t ff[8] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    c = clst_cursor_make(ff, 8);
    assert_true(clst_cursor_le64(&c, &v64));
    assert_true(v64 == UINT64_MAX);
    c = clst_cursor_make(ff, 8);
    assert_true(clst_cursor_be32(&c, &v32));
    assert_true(v32 == UINT32_MAX);
    assert_true(clst_cursor_le16(&c, &v16));
    assert_int_equal(v16, 0xffff);
    uint8_t v8;
    assert_true(clst_cursor_u8(&c, &v8));
    assert_int_equal(v8, 0xff);
}

static void
test_sequential_reads(void **state)
{
    (void)state;
    /* A small "record": u8, be16, le32, be64 and a 1-byte tail. */
    struct clst_cursor c = clst_cursor_make(seq, 16);
    uint8_t a;
    uint16_t b;
    uint32_t d;
    uint64_t e;
    assert_true(clst_cursor_u8(&c, &a));
    assert_true(clst_cursor_be16(&c, &b));
    assert_true(clst_cursor_le32(&c, &d));
    assert_true(clst_cursor_be64(&c, &e));
    assert_int_equal(a, 0x01);
    assert_int_equal(b, 0x0203);
    assert_int_equal(d, 0x07060504u);
    assert_int_equal(e, 0x08899aabbccddeefu);
    assert_false(clst_cursor_empty(&c)); /* 15 bytes read, 1 left */
    ASSERT_AT(c, seq + 15, 1);
    assert_false(clst_cursor_be16(&c, &b));
    ASSERT_AT(c, seq + 15, 1);
}

static void
test_zeros(void **state)
{
    (void)state;
    uint8_t buf[32];
    memset(buf, 0, sizeof(buf));
    struct clst_cursor c = clst_cursor_make(buf, sizeof(buf));
    assert_true(clst_cursor_zeros(&c, 0));
    ASSERT_AT(c, buf, 32);
    assert_true(clst_cursor_zeros(&c, 32));
    ASSERT_AT(c, buf + 32, 0);

    /* A non-zero byte anywhere in the range fails and leaves the cursor where it was; a
     * non-zero byte just past the range does not matter. */
    for (size_t pos = 0; pos < 32; pos++) {
        for (int bit = 0; bit < 8; bit++) {
            memset(buf, 0, sizeof(buf));
            buf[pos] = (uint8_t)(1u << bit);
            c = clst_cursor_make(buf, sizeof(buf));
            assert_false(clst_cursor_zeros(&c, 32));
            ASSERT_AT(c, buf, 32);
            if (pos > 0) {
                assert_true(clst_cursor_zeros(&c, pos));
                ASSERT_AT(c, buf + pos, 32 - pos);
                assert_false(clst_cursor_zeros(&c, 1));
                ASSERT_AT(c, buf + pos, 32 - pos);
            }
        }
    }
    /* Longer than what is left: fails even if every byte present is zero. */
    memset(buf, 0, sizeof(buf));
    c = clst_cursor_make(buf, 31);
    assert_false(clst_cursor_zeros(&c, 32));
    ASSERT_AT(c, buf, 31);
}

static void
test_sub(void **state)
{
    (void)state;
    struct clst_cursor c = clst_cursor_make(seq, 16);
    assert_true(clst_cursor_skip(&c, 2));
    struct clst_cursor sub = {NULL, 12345};
    assert_true(clst_cursor_sub(&c, 4, &sub));
    ASSERT_AT(sub, seq + 2, 4);
    ASSERT_AT(c, seq + 6, 10);
    /* The sub-cursor ends where it was cut, even though the parent's bytes follow it. */
    uint32_t v32;
    uint8_t v8;
    assert_false(clst_cursor_skip(&sub, 5));
    assert_true(clst_cursor_be32(&sub, &v32));
    assert_int_equal(v32, 0x03040506u);
    assert_false(clst_cursor_u8(&sub, &v8));
    assert_true(clst_cursor_empty(&sub));
    /* Reading from the sub-cursor did not move the parent. */
    ASSERT_AT(c, seq + 6, 10);

    /* Sub of exactly what is left; then of one more fails, output untouched. */
    struct clst_cursor all;
    assert_true(clst_cursor_sub(&c, 10, &all));
    ASSERT_AT(all, seq + 6, 10);
    assert_true(clst_cursor_empty(&c));
    c = clst_cursor_make(seq, 3);
    struct clst_cursor untouched = {seq + 9, 9};
    assert_false(clst_cursor_sub(&c, 4, &untouched));
    ASSERT_AT(untouched, seq + 9, 9);
    ASSERT_AT(c, seq, 3);
    /* A zero-length sub is an empty cursor. */
    assert_true(clst_cursor_sub(&c, 0, &untouched));
    assert_true(clst_cursor_empty(&untouched));
    ASSERT_AT(c, seq, 3);
}

/* n near SIZE_MAX must be refused by a length comparison, never by forming ptr + n. */
static void
test_huge_lengths(void **state)
{
    (void)state;
    static const size_t huge[] = {SIZE_MAX, SIZE_MAX - 1, SIZE_MAX - 15, SIZE_MAX / 2 + 1, 17};
    uint8_t dst[4] = {0xee, 0xee, 0xee, 0xee};
    for (size_t k = 0; k < sizeof(huge) / sizeof(huge[0]); k++) {
        size_t n = huge[k];
        struct clst_cursor c = clst_cursor_make(seq, 16);
        assert_true(clst_cursor_skip(&c, 3));
        const uint8_t *p = NULL;
        struct clst_cursor sub = {NULL, 0};
        assert_false(clst_cursor_take(&c, n, &p));
        assert_null(p);
        assert_false(clst_cursor_skip(&c, n));
        assert_false(clst_cursor_copy(&c, dst, n));
        assert_false(clst_cursor_zeros(&c, n));
        assert_false(clst_cursor_sub(&c, n, &sub));
        assert_null(sub.ptr);
        ASSERT_AT(c, seq + 3, 13);
    }
    assert_int_equal(dst[0], 0xee);
}

static void
test_put_known_answers(void **state)
{
    (void)state;
    uint8_t b[10];

    memset(b, 0xee, sizeof(b));
    clst_put_le16(b + 1, 0x0201);
    assert_memory_equal(b, "\xee\x01\x02\xee", 4);
    memset(b, 0xee, sizeof(b));
    clst_put_be16(b + 1, 0x0102);
    assert_memory_equal(b, "\xee\x01\x02\xee", 4);
    memset(b, 0xee, sizeof(b));
    clst_put_le32(b + 1, 0x04030201u);
    assert_memory_equal(b, "\xee\x01\x02\x03\x04\xee", 6);
    memset(b, 0xee, sizeof(b));
    clst_put_be32(b + 1, 0x01020304u);
    assert_memory_equal(b, "\xee\x01\x02\x03\x04\xee", 6);
    memset(b, 0xee, sizeof(b));
    clst_put_le64(b + 1, 0x0807060504030201u);
    assert_memory_equal(b, "\xee\x01\x02\x03\x04\x05\x06\x07\x08\xee", 10);
    memset(b, 0xee, sizeof(b));
    clst_put_be64(b + 1, 0x0102030405060708u);
    assert_memory_equal(b, "\xee\x01\x02\x03\x04\x05\x06\x07\x08\xee", 10);
    memset(b, 0, sizeof(b));
    clst_put_be64(b, 0xf0efdecdbcab9a89u);
    assert_memory_equal(b, "\xf0\xef\xde\xcd\xbc\xab\x9a\x89", 8);
}

static uint64_t
next(uint64_t *s)
{
    /* xorshift64*: deterministic test values */
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545f4914f6cdd1du;
}

static void
test_put_round_trip(void **state)
{
    (void)state;
    uint64_t s = 0x9e3779b97f4a7c15u;
    uint8_t b[8];
    struct clst_cursor c;
    for (int i = 0; i < 2000; i++) {
        uint64_t v = next(&s);
        if (i < 4) {
            v = (uint64_t[]){0, 1, UINT64_MAX, 0x8000000000000000u}[i];
        }
        uint16_t r16;
        uint32_t r32;
        uint64_t r64;
        clst_put_le16(b, (uint16_t)v);
        c = clst_cursor_make(b, 2);
        assert_true(clst_cursor_le16(&c, &r16));
        assert_int_equal(r16, (uint16_t)v);
        clst_put_be16(b, (uint16_t)v);
        c = clst_cursor_make(b, 2);
        assert_true(clst_cursor_be16(&c, &r16));
        assert_int_equal(r16, (uint16_t)v);
        clst_put_le32(b, (uint32_t)v);
        c = clst_cursor_make(b, 4);
        assert_true(clst_cursor_le32(&c, &r32));
        assert_int_equal(r32, (uint32_t)v);
        clst_put_be32(b, (uint32_t)v);
        c = clst_cursor_make(b, 4);
        assert_true(clst_cursor_be32(&c, &r32));
        assert_int_equal(r32, (uint32_t)v);
        clst_put_le64(b, v);
        c = clst_cursor_make(b, 8);
        assert_true(clst_cursor_le64(&c, &r64));
        assert_true(r64 == v);
        /* le and be are byte mirrors of each other. */
        uint8_t m[8];
        clst_put_be64(m, v);
        for (int k = 0; k < 8; k++) {
            assert_int_equal(m[k], b[7 - k]);
        }
        c = clst_cursor_make(m, 8);
        assert_true(clst_cursor_be64(&c, &r64));
        assert_true(r64 == v);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_make_and_empty),
        cmocka_unit_test(test_take),
        cmocka_unit_test(test_readers_exact_and_short),
        cmocka_unit_test(test_endianness_high_bytes),
        cmocka_unit_test(test_sequential_reads),
        cmocka_unit_test(test_zeros),
        cmocka_unit_test(test_sub),
        cmocka_unit_test(test_huge_lengths),
        cmocka_unit_test(test_put_known_answers),
        cmocka_unit_test(test_put_round_trip),
    };
    return cmocka_run_group_tests_name("core/cursor", tests, NULL, NULL);
}
