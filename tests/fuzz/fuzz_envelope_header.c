/*
 * Fuzz harness for the .clst header parser (clst_envelope_header_peek_size / _parse).
 *
 * The encoding is canonical: a header that parses must re-encode, from the parsed fields, to
 * exactly the bytes it was parsed from. peek_size must agree with parse on the size, and parse
 * must never claim more bytes than it was given. Any mismatch calls abort().
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cloister/envelope.h>

static void
check(int ok)
{
    if (!ok) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct clst_envelope_header h;
    static uint8_t again[CLST_ENVELOPE_HEADER_MAX_SIZE];
    struct clst_envelope_meta meta[CLST_ENVELOPE_META_MAX_COUNT];
    char names[CLST_ENVELOPE_META_MAX_COUNT][CLST_ENVELOPE_META_NAME_MAX_SIZE + 1];
    struct clst_err err;
    size_t peek = 0, n = 0;

    enum clst_status prc = clst_envelope_header_peek_size(data, size, &peek, &err);
    enum clst_status rc = clst_envelope_header_parse(data, size, &h, &err);
    if (rc != CLST_OK) {
        check(rc == CLST_E_MALFORMED || rc == CLST_E_LIMIT);
        check(err.status == rc && err.msg[0] != '\0');
        return 0;
    }
    check(prc == CLST_OK);
    check(peek == h.size);
    check(h.size <= size && h.size <= CLST_ENVELOPE_HEADER_MAX_SIZE);
    check(h.version == CLST_ENVELOPE_VERSION && h.suite == CLST_ENVELOPE_SUITE_C256);
    check(h.meta_count <= CLST_ENVELOPE_META_MAX_COUNT);
    for (size_t i = 0; i < h.meta_count; i++) {
        const char *name;
        const uint8_t *value;
        size_t name_size, value_size;
        check(clst_envelope_header_meta(&h, i, &name, &name_size, &value, &value_size) ==
              CLST_OK);
        check(name_size >= 1 && name_size <= CLST_ENVELOPE_META_NAME_MAX_SIZE);
        memcpy(names[i], name, name_size);
        names[i][name_size] = '\0';
        meta[i].name = names[i];
        meta[i].value = value;
        meta[i].value_size = value_size;
    }
    check(clst_envelope_header_encode(&h.ref, &h.wrapped, meta, h.meta_count, again,
                                      sizeof(again), &n, &err) == CLST_OK);
    check(n == h.size);
    check(memcmp(again, data, n) == 0);
    /* Every strict prefix of a valid header is refused. */
    check(clst_envelope_header_parse(data, h.size - 1, &h, &err) != CLST_OK);
    return 0;
}
