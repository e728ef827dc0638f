/*
 * Fuzz harness for clst_b64url_decode (strict base64url without padding, RFC 4648 §5 as JOSE
 * uses it).
 *
 * The decoder is canonical: whatever it accepts must re-encode to exactly the input. It must also
 * agree with the padded base64 decoder on the same text translated to the standard alphabet with
 * its padding added (same verdict, same bytes). Encoding the input as raw bytes and decoding the
 * text must give the input back. Any mismatch calls abort().
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
    struct clst_buf dec, enc, std, stddec;
    clst_buf_init(&dec, MAX_DECODED);
    clst_buf_init(&enc, 2 * MAX_DECODED);
    clst_buf_init(&std, 2 * MAX_DECODED);
    clst_buf_init(&stddec, MAX_DECODED);

    /* 1. decode -> encode must give back the input exactly. */
    enum clst_status rc = clst_b64url_decode(text, size, &dec);
    if (rc == CLST_OK) {
        check(size % 4 != 1);
        check(clst_b64url_encoded_size(dec.size) == size);
        check(clst_b64url_encode(dec.data, dec.size, &enc) == CLST_OK);
        check(enc.size == size);
        check(size == 0 || memcmp(enc.data, data, size) == 0);
    } else {
        check(rc == CLST_E_MALFORMED);
        check(dec.size == 0);
    }

    /* 2. differential: the standard-alphabet, padded form decodes the same way. Characters of
     * the standard alphabet ('+', '/') and '=' have no url counterpart: the url decoder must have
     * refused them. */
    bool has_std = false;
    for (size_t i = 0; i < size; i++) {
        uint8_t ch = data[i];
        has_std |= (ch == '+' || ch == '/' || ch == '=');
        uint8_t t = ch == '-' ? '+' : ch == '_' ? '/' : ch;
        check(clst_buf_append_byte(&std, t) == CLST_OK);
    }
    if (has_std) {
        check(rc != CLST_OK);
    } else {
        while (std.size % 4 != 0) {
            check(clst_buf_append_byte(&std, '=') == CLST_OK);
        }
        enum clst_status rc2 = clst_b64_decode((const char *)std.data, std.size, &stddec);
        check((rc == CLST_OK) == (rc2 == CLST_OK));
        if (rc == CLST_OK) {
            check(stddec.size == dec.size);
            check(dec.size == 0 || memcmp(stddec.data, dec.data, dec.size) == 0);
        }
    }

    /* 3. encode the raw bytes -> decode must give them back. */
    clst_buf_reset(&enc);
    clst_buf_reset(&dec);
    check(clst_b64url_encode(data, size, &enc) == CLST_OK);
    check(enc.size == clst_b64url_encoded_size(size));
    check(clst_b64url_decode((const char *)enc.data, enc.size, &dec) == CLST_OK);
    check(dec.size == size);
    check(size == 0 || memcmp(dec.data, data, size) == 0);

    clst_buf_cleanup(&dec);
    clst_buf_cleanup(&enc);
    clst_buf_cleanup(&std);
    clst_buf_cleanup(&stddec);
    return 0;
}
