/*
 * Fuzz harness for clst_b64_decode (strict, padded base64, RFC 4648 §4).
 *
 * The decoder is canonical: whatever it accepts must re-encode to exactly the input, byte for
 * byte. It must also agree with OpenSSL's EVP_DecodeBlock on what it accepts, and leave the output
 * buffer as it was when it rejects. Conversely, encoding the input as raw bytes and decoding the
 * text must give the input back. Any mismatch calls abort().
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

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
    clst_buf_init(&enc, 2 * MAX_DECODED);

    /* 1. decode -> encode must give back the input exactly. */
    enum clst_status rc = clst_b64_decode(text, size, &dec);
    if (rc == CLST_OK) {
        check(size % 4 == 0);
        check(dec.size <= size / 4 * 3);
        check(clst_b64_encoded_size(dec.size) == size);
        check(clst_b64_encode(dec.data, dec.size, &enc) == CLST_OK);
        check(enc.size == size);
        check(size == 0 || memcmp(enc.data, data, size) == 0);
        /* OpenSSL's (lenient) decoder accepts it too and finds the same bytes; it counts the
         * padding as zero bytes, so compare the first dec.size only. */
        if (size > 0 && size <= 4096) {
            unsigned char ossl[3072];
            int n = EVP_DecodeBlock(ossl, data, (int)size);
            check(n == (int)(size / 4 * 3));
            check(memcmp(ossl, dec.data, dec.size) == 0);
        }
    } else {
        check(rc == CLST_E_MALFORMED);
        check(dec.size == 0);
    }

    /* 2. encode the raw bytes -> decode must give them back. */
    clst_buf_reset(&enc);
    clst_buf_reset(&dec);
    check(clst_b64_encode(data, size, &enc) == CLST_OK);
    check(enc.size == clst_b64_encoded_size(size));
    check(clst_b64_decode((const char *)enc.data, enc.size, &dec) == CLST_OK);
    check(dec.size == size);
    check(size == 0 || memcmp(dec.data, data, size) == 0);

    clst_buf_cleanup(&dec);
    clst_buf_cleanup(&enc);
    return 0;
}
