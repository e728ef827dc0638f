/*
 * A strict CBOR item reader for the Nitro attestation document, on libcbor's streaming decoder
 * (cbor_stream_decode), which decodes one item head per call through callbacks and allocates
 * nothing. On top of it this reader refuses what a Nitro document never contains and a strict
 * parser must not accept: indefinite lengths (strings, arrays, maps, "break"), and anything libcbor
 * itself refuses (reserved additional-information values, unassigned simple values, truncation).
 * Callers read the document as a schema: they ask for the next item and check its type, size and
 * count against their caps before going further, so no count or length from the input sizes a
 * loop or a copy unchecked.
 *
 * CT: none of this handles secrets; lengths and values are public.
 */
#include <string.h>

#include <cbor.h>

#include "evidence/nitro_int.h"

/* What the callbacks saw for one head. */
struct head {
    bool seen;
    const char *refused; /* non-NULL: an item this reader refuses (names it) */
    struct nitro_cbor_item item;
};

static void
set_int(void *ctx, enum nitro_cbor_type type, uint64_t v)
{
    struct head *h = ctx;
    h->seen = true;
    h->item.type = type;
    h->item.value = v;
}

static void
on_uint8(void *ctx, uint8_t v)
{
    set_int(ctx, NITRO_CBOR_UINT, v);
}

static void
on_uint16(void *ctx, uint16_t v)
{
    set_int(ctx, NITRO_CBOR_UINT, v);
}

static void
on_uint32(void *ctx, uint32_t v)
{
    set_int(ctx, NITRO_CBOR_UINT, v);
}

static void
on_uint64(void *ctx, uint64_t v)
{
    set_int(ctx, NITRO_CBOR_UINT, v);
}

static void
on_negint8(void *ctx, uint8_t v)
{
    set_int(ctx, NITRO_CBOR_NEGINT, v);
}

static void
on_negint16(void *ctx, uint16_t v)
{
    set_int(ctx, NITRO_CBOR_NEGINT, v);
}

static void
on_negint32(void *ctx, uint32_t v)
{
    set_int(ctx, NITRO_CBOR_NEGINT, v);
}

static void
on_negint64(void *ctx, uint64_t v)
{
    set_int(ctx, NITRO_CBOR_NEGINT, v);
}

static void
set_string(void *ctx, enum nitro_cbor_type type, cbor_data data, size_t size)
{
    struct head *h = ctx;
    h->seen = true;
    h->item.type = type;
    h->item.ptr = data;
    h->item.size = size;
}

static void
on_bytes(void *ctx, cbor_data data, size_t size)
{
    set_string(ctx, NITRO_CBOR_BYTES, data, size);
}

static void
on_text(void *ctx, cbor_data data, size_t size)
{
    set_string(ctx, NITRO_CBOR_TEXT, data, size);
}

static void
on_array(void *ctx, size_t count)
{
    set_int(ctx, NITRO_CBOR_ARRAY, count);
}

static void
on_map(void *ctx, size_t count)
{
    set_int(ctx, NITRO_CBOR_MAP, count);
}

static void
on_tag(void *ctx, uint64_t tag)
{
    set_int(ctx, NITRO_CBOR_TAG, tag);
}

static void
on_float2(void *ctx, float v)
{
    (void)v;
    set_int(ctx, NITRO_CBOR_FLOAT, 0);
}

static void
on_float8(void *ctx, double v)
{
    (void)v;
    set_int(ctx, NITRO_CBOR_FLOAT, 0);
}

static void
on_undefined(void *ctx)
{
    set_int(ctx, NITRO_CBOR_UNDEFINED, 0);
}

static void
on_null(void *ctx)
{
    set_int(ctx, NITRO_CBOR_NULL, 0);
}

static void
on_bool(void *ctx, bool v)
{
    set_int(ctx, v ? NITRO_CBOR_TRUE : NITRO_CBOR_FALSE, 0);
}

static void
refuse(void *ctx, const char *what)
{
    struct head *h = ctx;
    h->seen = true;
    h->refused = what;
}

static void
on_indef_bytes(void *ctx)
{
    refuse(ctx, "an indefinite-length byte string");
}

static void
on_indef_text(void *ctx)
{
    refuse(ctx, "an indefinite-length text string");
}

static void
on_indef_array(void *ctx)
{
    refuse(ctx, "an indefinite-length array");
}

static void
on_indef_map(void *ctx)
{
    refuse(ctx, "an indefinite-length map");
}

static void
on_break(void *ctx)
{
    refuse(ctx, "a \"break\" code (0xff)");
}

/* libcbor 0.8 documents the two string callback pairs with swapped comments; the field names are
 * what counts: byte_string / string receive a definite string's bytes, *_start an indefinite one.
 * Every callback is set, so no head goes unreported. */
static const struct cbor_callbacks callbacks = {
    .uint8 = on_uint8,
    .uint16 = on_uint16,
    .uint32 = on_uint32,
    .uint64 = on_uint64,
    .negint8 = on_negint8,
    .negint16 = on_negint16,
    .negint32 = on_negint32,
    .negint64 = on_negint64,
    .byte_string_start = on_indef_bytes,
    .byte_string = on_bytes,
    .string = on_text,
    .string_start = on_indef_text,
    .indef_array_start = on_indef_array,
    .array_start = on_array,
    .indef_map_start = on_indef_map,
    .map_start = on_map,
    .tag = on_tag,
    .float2 = on_float2,
    .float4 = on_float2,
    .float8 = on_float8,
    .undefined = on_undefined,
    .null = on_null,
    .boolean = on_bool,
    .indef_break = on_break,
};

void
nitro_cbor_reader_init(struct nitro_cbor_reader *r, const uint8_t *data, size_t size)
{
    r->data = data;
    r->size = size;
    r->pos = 0;
}

enum clst_status
nitro_cbor_next(struct nitro_cbor_reader *r, struct nitro_cbor_item *out, const char *what,
                struct clst_err *err)
{
    struct head h;

    if (r == NULL || out == NULL || (r->data == NULL && r->size != 0) || r->pos > r->size) {
        return clst_err_set(err, CLST_E_INVAL, "nitro: inconsistent CBOR reader");
    }
    if (r->pos == r->size) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "nitro document is truncated: it ends where the %s should start "
                            "(offset %zu)",
                            what, r->pos);
    }
    memset(&h, 0, sizeof(h));
    uint8_t ib = r->data[r->pos];
    if (ib >= 0xc6 && ib <= 0xd4) {
        /* Tags 6..20 in the one-byte form (COSE_Sign1_Tagged is 0xd2): libcbor 0.8's streaming
         * decoder reports these heads as errors ("reserved"), though RFC 8949 defines them as
         * well-formed tag heads. The head is the whole item here, so it is read directly. */
        memset(out, 0, sizeof(*out));
        out->type = NITRO_CBOR_TAG;
        out->value = (uint64_t)(ib & 0x1f);
        out->offset = r->pos;
        r->pos += 1;
        return CLST_OK;
    }
    struct cbor_decoder_result res =
        cbor_stream_decode(r->data + r->pos, r->size - r->pos, &callbacks, &h);
    if (res.status == CBOR_DECODER_NEDATA) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "nitro document is truncated: the %s at offset %zu needs %zu more "
                            "bytes than the %zu left",
                            what, r->pos, res.required, r->size - r->pos);
    }
    if (res.status != CBOR_DECODER_FINISHED || !h.seen || res.read == 0 ||
        res.read > r->size - r->pos) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "nitro document: the %s at offset %zu is not well-formed CBOR (byte "
                            "0x%02x is a reserved or unassigned encoding)",
                            what, r->pos, r->data[r->pos]);
    }
    if (h.refused != NULL) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "nitro document: the %s at offset %zu is %s; only definite lengths are "
                            "allowed",
                            what, r->pos, h.refused);
    }
    h.item.offset = r->pos;
    r->pos += res.read;
    *out = h.item;
    return CLST_OK;
}

size_t
nitro_cbor_head(uint8_t major, uint64_t arg, uint8_t out[9])
{
    uint8_t mt = (uint8_t)(major << 5);
    if (arg < 24) {
        out[0] = (uint8_t)(mt | arg);
        return 1;
    }
    if (arg <= UINT8_MAX) {
        out[0] = (uint8_t)(mt | 24);
        out[1] = (uint8_t)arg;
        return 2;
    }
    if (arg <= UINT16_MAX) {
        out[0] = (uint8_t)(mt | 25);
        clst_put_be16(out + 1, (uint16_t)arg);
        return 3;
    }
    if (arg <= UINT32_MAX) {
        out[0] = (uint8_t)(mt | 26);
        clst_put_be32(out + 1, (uint32_t)arg);
        return 5;
    }
    out[0] = (uint8_t)(mt | 27);
    clst_put_be64(out + 1, arg);
    return 9;
}

const char *
nitro_cbor_type_name(enum nitro_cbor_type type)
{
    switch (type) {
    case NITRO_CBOR_UINT:
        return "unsigned integer";
    case NITRO_CBOR_NEGINT:
        return "negative integer";
    case NITRO_CBOR_BYTES:
        return "byte string";
    case NITRO_CBOR_TEXT:
        return "text string";
    case NITRO_CBOR_ARRAY:
        return "array";
    case NITRO_CBOR_MAP:
        return "map";
    case NITRO_CBOR_TAG:
        return "tag";
    case NITRO_CBOR_FALSE:
    case NITRO_CBOR_TRUE:
        return "boolean";
    case NITRO_CBOR_NULL:
        return "null";
    case NITRO_CBOR_UNDEFINED:
        return "undefined";
    case NITRO_CBOR_FLOAT:
        return "floating-point number";
    }
    return "unknown item";
}
