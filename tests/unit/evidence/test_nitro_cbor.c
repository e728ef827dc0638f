/*
 * Unit tests for src/evidence/nitro_cbor.c, the strict CBOR item reader under the Nitro document
 * parser: every major type read with its value, size and offset; minimal heads written for every
 * boundary value and read back (also through libcbor's own decoder); and the refusals: indefinite
 * lengths and "break", reserved additional-information values, unassigned simple values, every
 * truncation of every head and string, an empty input. A failed read never moves the reader.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_nitro_fixture.h"

static struct nitro_cbor_item
read_one(const uint8_t *data, size_t size, enum clst_status want)
{
    struct nitro_cbor_reader r;
    struct nitro_cbor_item it;
    struct clst_err err = {0};
    memset(&it, 0, sizeof(it));
    nitro_cbor_reader_init(&r, data, size);
    enum clst_status rc = nitro_cbor_next(&r, &it, "item", &err);
    if (rc != want) {
        print_message("item %02x (%zu bytes): %s\n", size > 0 ? data[0] : 0, size, err.msg);
    }
    assert_int_equal(rc, want);
    if (rc == CLST_OK) {
        assert_true(r.pos > 0 && r.pos <= size);
    } else {
        assert_int_equal(r.pos, 0); /* not moved */
        assert_true(err.msg[0] != '\0');
    }
    return it;
}

static void
test_types(void **state)
{
    (void)state;
    struct nitro_cbor_item it;
    static const uint8_t u0[] = {0x00}, u23[] = {0x17}, u24[] = {0x18, 0x18},
                         u16[] = {0x19, 0x01, 0x00}, u32[] = {0x1a, 0x00, 0x01, 0x00, 0x00},
                         u64[] = {0x1b, 0x00, 0x00, 0x01, 0x91, 0xcc, 0xeb, 0x51, 0x59};
    it = read_one(u0, sizeof(u0), CLST_OK);
    assert_int_equal(it.type, NITRO_CBOR_UINT);
    assert_int_equal(it.value, 0);
    it = read_one(u23, sizeof(u23), CLST_OK);
    assert_int_equal(it.value, 23);
    it = read_one(u24, sizeof(u24), CLST_OK);
    assert_int_equal(it.value, 24);
    it = read_one(u16, sizeof(u16), CLST_OK);
    assert_int_equal(it.value, 256);
    it = read_one(u32, sizeof(u32), CLST_OK);
    assert_int_equal(it.value, 65536);
    it = read_one(u64, sizeof(u64), CLST_OK);
    assert_int_equal(it.type, NITRO_CBOR_UINT);
    assert_true(it.value == UINT64_C(1725719859545));

    static const uint8_t n35[] = {0x38, 0x22}, n1[] = {0x20};
    it = read_one(n35, sizeof(n35), CLST_OK);
    assert_int_equal(it.type, NITRO_CBOR_NEGINT);
    assert_int_equal(it.value, 34); /* -35 */
    it = read_one(n1, sizeof(n1), CLST_OK);
    assert_int_equal(it.value, 0); /* -1 */

    static const uint8_t b[] = {0x43, 0xde, 0xad, 0x00}, t[] = {0x66, 'S', 'H', 'A', '3', '8', '4'},
                         e[] = {0x40};
    it = read_one(b, sizeof(b), CLST_OK);
    assert_int_equal(it.type, NITRO_CBOR_BYTES);
    assert_int_equal(it.size, 3);
    assert_ptr_equal(it.ptr, b + 1);
    it = read_one(t, sizeof(t), CLST_OK);
    assert_int_equal(it.type, NITRO_CBOR_TEXT);
    assert_int_equal(it.size, 6);
    assert_memory_equal(it.ptr, "SHA384", 6);
    it = read_one(e, sizeof(e), CLST_OK);
    assert_int_equal(it.type, NITRO_CBOR_BYTES);
    assert_int_equal(it.size, 0);

    static const uint8_t a[] = {0x84}, m[] = {0xa9}, tag[] = {0xd2}, f[] = {0xf4}, tr[] = {0xf5},
                         nul[] = {0xf6}, und[] = {0xf7}, h[] = {0xf9, 0x3c, 0x00},
                         s[] = {0xfa, 0x3f, 0x80, 0, 0}, d[] = {0xfb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0};
    it = read_one(a, sizeof(a), CLST_OK);
    assert_int_equal(it.type, NITRO_CBOR_ARRAY);
    assert_int_equal(it.value, 4);
    it = read_one(m, sizeof(m), CLST_OK);
    assert_int_equal(it.type, NITRO_CBOR_MAP);
    assert_int_equal(it.value, 9);
    it = read_one(tag, sizeof(tag), CLST_OK);
    assert_int_equal(it.type, NITRO_CBOR_TAG);
    assert_int_equal(it.value, 18);
    /* Every one-byte tag head (libcbor 0.8 alone refuses 6..20; the reader reads them). */
    for (unsigned v = 0; v < 24; v++) {
        uint8_t th[1] = {(uint8_t)(0xc0 | v)};
        it = read_one(th, 1, CLST_OK);
        assert_int_equal(it.type, NITRO_CBOR_TAG);
        assert_int_equal(it.value, v);
    }
    static const uint8_t tag1[] = {0xd8, 0x12};
    it = read_one(tag1, sizeof(tag1), CLST_OK);
    assert_int_equal(it.type, NITRO_CBOR_TAG);
    assert_int_equal(it.value, 18);
    assert_int_equal(read_one(f, 1, CLST_OK).type, NITRO_CBOR_FALSE);
    assert_int_equal(read_one(tr, 1, CLST_OK).type, NITRO_CBOR_TRUE);
    assert_int_equal(read_one(nul, 1, CLST_OK).type, NITRO_CBOR_NULL);
    assert_int_equal(read_one(und, 1, CLST_OK).type, NITRO_CBOR_UNDEFINED);
    assert_int_equal(read_one(h, sizeof(h), CLST_OK).type, NITRO_CBOR_FLOAT);
    assert_int_equal(read_one(s, sizeof(s), CLST_OK).type, NITRO_CBOR_FLOAT);
    assert_int_equal(read_one(d, sizeof(d), CLST_OK).type, NITRO_CBOR_FLOAT);

    /* Names for messages. */
    for (int ty = NITRO_CBOR_UINT; ty <= NITRO_CBOR_FLOAT; ty++) {
        assert_string_not_equal(nitro_cbor_type_name((enum nitro_cbor_type)ty), "unknown item");
    }
    assert_string_equal(nitro_cbor_type_name((enum nitro_cbor_type)0), "unknown item");
}

static void
test_sequence_offsets(void **state)
{
    (void)state;
    /* [h'a1013822', {}, h'', h''] read item by item. */
    static const uint8_t seq[] = {0x84, 0x44, 0xa1, 0x01, 0x38, 0x22, 0xa0, 0x40, 0x40};
    static const struct {
        enum nitro_cbor_type type;
        size_t offset;
    } want[] = {
        {NITRO_CBOR_ARRAY, 0}, {NITRO_CBOR_BYTES, 1}, {NITRO_CBOR_MAP, 6},
        {NITRO_CBOR_BYTES, 7}, {NITRO_CBOR_BYTES, 8},
    };
    struct nitro_cbor_reader r;
    struct nitro_cbor_item it;
    struct clst_err err = {0};
    nitro_cbor_reader_init(&r, seq, sizeof(seq));
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        assert_int_equal(nitro_cbor_next(&r, &it, "item", &err), CLST_OK);
        assert_int_equal(it.type, want[i].type);
        assert_int_equal(it.offset, want[i].offset);
    }
    assert_int_equal(r.pos, sizeof(seq));
    /* At the end: truncated, naming what was expected; the reader stays put. */
    assert_int_equal(nitro_cbor_next(&r, &it, "signature", &err), CLST_E_MALFORMED);
    assert_non_null(strstr(err.msg, "signature"));
    assert_int_equal(r.pos, sizeof(seq));

    /* API misuse. */
    assert_int_equal(nitro_cbor_next(NULL, &it, "x", &err), CLST_E_INVAL);
    assert_int_equal(nitro_cbor_next(&r, NULL, "x", &err), CLST_E_INVAL);
    r.pos = r.size + 1;
    assert_int_equal(nitro_cbor_next(&r, &it, "x", &err), CLST_E_INVAL);
    nitro_cbor_reader_init(&r, NULL, 0);
    assert_int_equal(nitro_cbor_next(&r, &it, "x", &err), CLST_E_MALFORMED);
}

static void
test_refused(void **state)
{
    (void)state;
    /* Indefinite-length byte string, text string, array, map, and a bare break. */
    static const uint8_t indef[][4] = {
        {0x5f, 0x41, 0x00, 0xff}, {0x7f, 0x61, 'a', 0xff}, {0x9f, 0x00, 0xff, 0},
        {0xbf, 0x00, 0x00, 0xff}, {0xff, 0, 0, 0},
    };
    for (size_t i = 0; i < sizeof(indef) / sizeof(indef[0]); i++) {
        struct nitro_cbor_reader r;
        struct nitro_cbor_item it;
        struct clst_err err = {0};
        nitro_cbor_reader_init(&r, indef[i], sizeof(indef[i]));
        assert_int_equal(nitro_cbor_next(&r, &it, "item", &err), CLST_E_MALFORMED);
        assert_true(strstr(err.msg, "indefinite") != NULL || strstr(err.msg, "break") != NULL);
        assert_int_equal(r.pos, 0);
    }
    /* Reserved additional information 28..30 in every major type, and 31 where it is not an
     * indefinite length (integers, tags). */
    for (unsigned mt = 0; mt < 8; mt++) {
        for (unsigned ai = 28; ai <= 31; ai++) {
            if (ai == 31 && mt != 0 && mt != 1 && mt != 6) {
                continue; /* indefinite lengths and break: above */
            }
            uint8_t b[9] = {(uint8_t)(mt << 5 | ai), 0, 0, 0, 0, 0, 0, 0, 0};
            read_one(b, sizeof(b), CLST_E_MALFORMED);
        }
    }
    /* Unassigned simple values: 0..19 in one byte, and the two-byte form (0xf8 xx). */
    for (unsigned v = 0; v < 20; v++) {
        uint8_t b[1] = {(uint8_t)(0xe0 | v)};
        read_one(b, 1, CLST_E_MALFORMED);
    }
    static const uint8_t simple2[] = {0xf8, 0x20};
    read_one(simple2, sizeof(simple2), CLST_E_MALFORMED);
}

static void
test_truncation(void **state)
{
    (void)state;
    /* Every proper prefix of each multi-byte item is truncated. */
    static const uint8_t items[][12] = {
        {0x18, 0x18},
        {0x19, 0x01, 0x00},
        {0x1a, 0x00, 0x01, 0x00, 0x00},
        {0x1b, 0, 0, 1, 0x91, 0xcc, 0xeb, 0x42, 0x59},
        {0x39, 0x01, 0x00},
        {0x45, 1, 2, 3, 4, 5},
        {0x58, 0x03, 1, 2, 3},
        {0x66, 'S', 'H', 'A', '3', '8', '4'},
        {0x98, 0x20},
        {0xb9, 0x00, 0x10},
        {0xd8, 0x12},
        {0xfb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0},
    };
    static const size_t sizes[] = {2, 3, 5, 9, 3, 6, 5, 7, 2, 3, 2, 9};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        read_one(items[i], sizes[i], CLST_OK);
        for (size_t n = 1; n < sizes[i]; n++) {
            read_one(items[i], n, CLST_E_MALFORMED);
        }
    }
    /* A byte string longer than the input, with a 64-bit length. */
    static const uint8_t huge[] = {0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00};
    read_one(huge, sizeof(huge), CLST_E_MALFORMED);
}

static void
test_heads(void **state)
{
    (void)state;
    static const uint64_t values[] = {
        0, 1, 23, 24, 255, 256, 65535, 65536, UINT32_MAX, (uint64_t)UINT32_MAX + 1, UINT64_MAX,
    };
    static const size_t want_size[] = {1, 1, 1, 2, 2, 3, 3, 5, 5, 9, 9};
    for (unsigned major = 0; major < 7; major++) {
        if (major == 2 || major == 3) {
            continue; /* strings need their bytes; checked with small lengths below */
        }
        for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
            uint8_t h[9];
            size_t n = nitro_cbor_head((uint8_t)major, values[i], h);
            assert_int_equal(n, want_size[i]);
            assert_int_equal(h[0] >> 5, major);
            struct nitro_cbor_item it = read_one(h, n, CLST_OK);
            assert_true(it.value == values[i]);
            if (major > 1) {
                continue; /* a collection or tag head alone is not a whole item */
            }
            /* libcbor's own decoder agrees on the encoding. */
            struct cbor_load_result res;
            cbor_item_t *item = cbor_load(h, n, &res);
            assert_non_null(item);
            assert_int_equal(res.read, n);
            cbor_decref(&item);
        }
    }
    /* A string head followed by its bytes. */
    uint8_t buf[300];
    memset(buf, 'x', sizeof(buf));
    size_t n = nitro_cbor_head(2, 256, buf);
    assert_int_equal(n, 3);
    struct nitro_cbor_item it = read_one(buf, n + 256, CLST_OK);
    assert_int_equal(it.type, NITRO_CBOR_BYTES);
    assert_int_equal(it.size, 256);
    assert_ptr_equal(it.ptr, buf + 3);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_types),   cmocka_unit_test(test_sequence_offsets),
        cmocka_unit_test(test_refused), cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_heads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
