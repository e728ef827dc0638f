/*
 * Fuzz harness for clst_hex_decode and clst_hex_decode_fixed.
 *
 * Hex is canonical up to case: the decoder accepts upper and lower case and the encoder writes
 * lower case, so a successful decode must re-encode to the input with A-F folded to a-f, byte for
 * byte. The fixed-size decoder and clst_hex_to_str must agree with the buffer versions, and
 * encoding the raw input then decoding must give it back. Any mismatch calls abort().
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cloister/core.h>

#define MAX_DECODED (1u << 20)

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
    if (size > MAX_DECODED) {
        return 0;
    }
    const char *text = (const char *)data;
    struct clst_buf dec, enc;
    clst_buf_init(&dec, MAX_DECODED);
    clst_buf_init(&enc, 2 * MAX_DECODED + 1);

    /* 1. decode -> encode gives back the input, lower-cased. */
    enum clst_status rc = clst_hex_decode(text, size, &dec);
    if (rc == CLST_OK) {
        check(size % 2 == 0);
        check(dec.size == size / 2);
        check(clst_hex_encode(dec.data, dec.size, &enc) == CLST_OK);
        check(enc.size == size);
        for (size_t i = 0; i < size; i++) {
            uint8_t ch = data[i];
            uint8_t lower = (ch >= 'A' && ch <= 'F') ? (uint8_t)(ch - 'A' + 'a') : ch;
            check(enc.data[i] == lower);
        }
    } else {
        check(rc == CLST_E_MALFORMED);
        check(dec.size == 0);
    }

    /* 2. the fixed-size decoder agrees (same verdict, same bytes); a wrong size always fails. */
    if (size % 2 == 0 && size / 2 <= 4096) {
        uint8_t fixed[4096];
        enum clst_status rc2 = clst_hex_decode_fixed(text, size, fixed, size / 2);
        check(rc2 == rc);
        if (rc == CLST_OK) {
            check(dec.size == 0 || memcmp(fixed, dec.data, dec.size) == 0);
        }
        if (size / 2 + 1 <= sizeof(fixed)) {
            check(clst_hex_decode_fixed(text, size, fixed, size / 2 + 1) == CLST_E_MALFORMED);
        }
    }

    /* 3. encode the raw bytes -> decode gives them back; hex_to_str writes the same text. */
    clst_buf_reset(&enc);
    clst_buf_reset(&dec);
    check(clst_hex_encode(data, size, &enc) == CLST_OK);
    check(enc.size == 2 * size);
    check(clst_hex_decode((const char *)enc.data, enc.size, &dec) == CLST_OK);
    check(dec.size == size);
    check(size == 0 || memcmp(dec.data, data, size) == 0);
    if (size <= 4096) {
        char str[2 * 4096 + 1];
        check(clst_hex_to_str(data, size, str, 2 * size + 1) == CLST_OK);
        check(strlen(str) == 2 * size);
        check(size == 0 || memcmp(str, enc.data, 2 * size) == 0);
        check(clst_hex_to_str(data, size, str, 2 * size) == CLST_E_LIMIT);
    }

    clst_buf_cleanup(&dec);
    clst_buf_cleanup(&enc);
    return 0;
}
