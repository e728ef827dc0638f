/*
 * Fuzz harness for the strict CBOR item reader under the Nitro document parser
 * (src/evidence/nitro_cbor.c, on libcbor's streaming decoder).
 *
 * The input is read item by item to its end or the first refusal. Each read must answer only OK
 * or MALFORMED (with a message); a refusal leaves the reader where it was; a success moves it
 * forward by at least one byte, reports the head's offset, and a string's bytes lie inside the
 * input and end where the reader now stands. Indefinite lengths and "break" are never returned as
 * items. Then the minimal head encoder is checked against the reader: the head it writes for the
 * input's first bytes (as major type and argument) reads back as the same type and value.
 *
 * Seeds in tests/fuzz/corpus/nitro_cbor/: a protected header, a small map, floats and simple
 * values, tags, indefinite-length items, truncated heads, and a whole real document.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "evidence/nitro_int.h"

static void
walk(const uint8_t *data, size_t size)
{
    struct nitro_cbor_reader r;
    struct nitro_cbor_item it;
    struct clst_err err;

    nitro_cbor_reader_init(&r, data, size);
    for (size_t n = 0; n <= size; n++) {
        size_t before = r.pos;
        memset(&err, 0, sizeof(err));
        enum clst_status rc = nitro_cbor_next(&r, &it, "item", &err);
        if (rc != CLST_OK) {
            if (rc != CLST_E_MALFORMED || err.msg[0] == '\0' || r.pos != before) {
                abort();
            }
            return;
        }
        if (r.pos <= before || r.pos > size || it.offset != before) {
            abort();
        }
        switch (it.type) {
        case NITRO_CBOR_BYTES:
        case NITRO_CBOR_TEXT:
            if (it.ptr < data + before || it.size > size || it.ptr + it.size != data + r.pos) {
                abort();
            }
            break;
        case NITRO_CBOR_UINT:
        case NITRO_CBOR_NEGINT:
        case NITRO_CBOR_ARRAY:
        case NITRO_CBOR_MAP:
        case NITRO_CBOR_TAG:
        case NITRO_CBOR_FALSE:
        case NITRO_CBOR_TRUE:
        case NITRO_CBOR_NULL:
        case NITRO_CBOR_UNDEFINED:
        case NITRO_CBOR_FLOAT:
            break;
        default:
            abort();
        }
        if (r.pos == size) {
            return;
        }
    }
    abort(); /* more items than bytes */
}

static void
heads(const uint8_t *data, size_t size)
{
    static const enum nitro_cbor_type types[] = {
        NITRO_CBOR_UINT,  NITRO_CBOR_NEGINT, NITRO_CBOR_BYTES, NITRO_CBOR_TEXT,
        NITRO_CBOR_ARRAY, NITRO_CBOR_MAP,    NITRO_CBOR_TAG,
    };
    if (size < 9) {
        return;
    }
    uint8_t major = (uint8_t)(data[0] % 7); /* 0..6; 7 is simple values and floats */
    uint64_t arg = 0;
    for (size_t i = 1; i < 9; i++) {
        arg = arg << 8 | data[i];
    }
    if (major == 2 || major == 3) {
        arg %= 64; /* a string head needs its bytes after it */
    }
    arg >>= data[0] % 64; /* all sizes of arguments */
    uint8_t buf[9 + 64];
    memset(buf, 'x', sizeof(buf));
    size_t n = nitro_cbor_head(major, arg, buf);
    if (n != 1 && n != 2 && n != 3 && n != 5 && n != 9) {
        abort();
    }
    /* Minimal: the next smaller form could not hold the argument. */
    if ((n == 2 && arg < 24) || (n == 3 && arg <= 0xff) || (n == 5 && arg <= 0xffff) ||
        (n == 9 && arg <= 0xffffffffu)) {
        abort();
    }
    size_t total = n + ((major == 2 || major == 3) ? (size_t)arg : 0);
    struct nitro_cbor_reader r;
    struct nitro_cbor_item it;
    nitro_cbor_reader_init(&r, buf, total);
    if (nitro_cbor_next(&r, &it, "head", NULL) != CLST_OK || it.type != types[major] ||
        r.pos != total) {
        abort();
    }
    if ((major == 2 || major == 3) ? it.size != arg : it.value != arg) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    walk(data, size);
    heads(data, size);
    return 0;
}
