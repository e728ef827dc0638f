/*
 * Strict base64 (RFC 4648 §4), base64url without padding (§5, as JOSE uses it) and hex.
 * Decoders reject anything a canonical encoder would not have produced: characters outside the
 * alphabet (whitespace included), misplaced or missing padding, impossible lengths and non-zero
 * unused bits in the last character.
 *
 * CT: character classification is branch-free arithmetic (no table lookups indexed by input), so
 * the value of decoded key material does not leak through the cache; lengths and the position of
 * an invalid character do.
 */
#include <string.h>

#include <cloister/core.h>

/* Branch-free "lo <= c <= hi": all ones when in range, else 0 (c, lo, hi in 0..255). */
static int
in_range(int c, int lo, int hi)
{
    return ((lo - 1 - c) & (c - hi - 1)) >> 8;
}

/* Value 0..63 of a base64 character, or -1. */
static int
b64_value(uint8_t ch, bool url)
{
    int c = ch;
    int v = -1;
    v += in_range(c, 'A', 'Z') & (c - 'A' + 1);
    v += in_range(c, 'a', 'z') & (c - 'a' + 27);
    v += in_range(c, '0', '9') & (c - '0' + 53);
    if (url) {
        v += in_range(c, '-', '-') & 63;
        v += in_range(c, '_', '_') & 64;
    } else {
        v += in_range(c, '+', '+') & 63;
        v += in_range(c, '/', '/') & 64;
    }
    return v;
}

static char
b64_char(unsigned v, bool url)
{
    int x = (int)v;
    int c = 'A' + x;
    /* The ranges are disjoint: each offset is relative to 'A' + x. */
    c += in_range(x, 26, 51) & ('a' - 'A' - 26);
    c += in_range(x, 52, 61) & ('0' - 'A' - 52);
    c += in_range(x, 62, 62) & ((url ? '-' : '+') - 'A' - 62);
    c += in_range(x, 63, 63) & ((url ? '_' : '/') - 'A' - 63);
    return (char)c;
}

size_t
clst_b64_encoded_size(size_t n)
{
    return (n + 2) / 3 * 4;
}

size_t
clst_b64url_encoded_size(size_t n)
{
    return n / 3 * 4 + (n % 3 == 0 ? 0 : n % 3 + 1);
}

static enum clst_status
encode(const uint8_t *in, size_t in_size, struct clst_buf *out, bool url)
{
    if (in_size > (SIZE_MAX / 4) * 3 - 3) {
        return CLST_E_LIMIT;
    }
    size_t need = url ? clst_b64url_encoded_size(in_size) : clst_b64_encoded_size(in_size);
    enum clst_status rc = clst_buf_reserve(out, need);
    if (rc != CLST_OK) {
        return rc;
    }
    char *p = (char *)out->data + out->size;
    size_t i = 0;
    for (; i + 3 <= in_size; i += 3) {
        uint32_t v = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8) | in[i + 2];
        *p++ = b64_char((v >> 18) & 63, url);
        *p++ = b64_char((v >> 12) & 63, url);
        *p++ = b64_char((v >> 6) & 63, url);
        *p++ = b64_char(v & 63, url);
    }
    size_t rest = in_size - i;
    if (rest > 0) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (rest == 2) {
            v |= (uint32_t)in[i + 1] << 8;
        }
        *p++ = b64_char((v >> 18) & 63, url);
        *p++ = b64_char((v >> 12) & 63, url);
        if (rest == 2) {
            *p++ = b64_char((v >> 6) & 63, url);
        } else if (!url) {
            *p++ = '=';
        }
        if (!url) {
            *p++ = '=';
        }
    }
    out->size += need;
    out->data[out->size] = 0;
    return CLST_OK;
}

enum clst_status
clst_b64_encode(const uint8_t *in, size_t in_size, struct clst_buf *out)
{
    return encode(in, in_size, out, false);
}

enum clst_status
clst_b64url_encode(const uint8_t *in, size_t in_size, struct clst_buf *out)
{
    return encode(in, in_size, out, true);
}

/* Decodes `n` data characters (no padding) into out; n % 4 != 1. */
static enum clst_status
decode(const char *in, size_t n, struct clst_buf *out, bool url)
{
    size_t out_size = n / 4 * 3 + (n % 4 == 0 ? 0 : n % 4 - 1);
    enum clst_status rc = clst_buf_reserve(out, out_size);
    if (rc != CLST_OK) {
        return rc;
    }
    uint8_t *p = out->data + out->size;
    uint32_t acc = 0;
    int bits = 0;
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64_value((uint8_t)in[i], url);
        bad |= v;
        acc = (acc << 6) | ((uint32_t)v & 63);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            *p++ = (uint8_t)(acc >> bits);
        }
    }
    /* Non-canonical encodings: the bits below the last whole byte must be zero. */
    if (bad < 0 || (acc & ((1u << bits) - 1)) != 0) {
        clst_wipe(out->data + out->size, out_size);
        return CLST_E_MALFORMED;
    }
    out->size += out_size;
    out->data[out->size] = 0;
    return CLST_OK;
}

enum clst_status
clst_b64_decode(const char *in, size_t in_size, struct clst_buf *out)
{
    if (in_size % 4 != 0) {
        return CLST_E_MALFORMED;
    }
    size_t n = in_size;
    if (n >= 2 && in[n - 1] == '=') {
        n -= (in[n - 2] == '=') ? 2 : 1;
    }
    /* Any '=' left among the data characters is rejected by the alphabet check. */
    if (n % 4 == 1) {
        return CLST_E_MALFORMED;
    }
    return decode(in, n, out, false);
}

enum clst_status
clst_b64url_decode(const char *in, size_t in_size, struct clst_buf *out)
{
    if (in_size % 4 == 1) {
        return CLST_E_MALFORMED;
    }
    return decode(in, in_size, out, true);
}

enum clst_status
clst_hex_encode(const uint8_t *in, size_t in_size, struct clst_buf *out)
{
    if (in_size > SIZE_MAX / 2 - 1) {
        return CLST_E_LIMIT;
    }
    enum clst_status rc = clst_buf_reserve(out, in_size * 2);
    if (rc != CLST_OK) {
        return rc;
    }
    char *p = (char *)out->data + out->size;
    for (size_t i = 0; i < in_size; i++) {
        int hi = in[i] >> 4, lo = in[i] & 15;
        *p++ = (char)('0' + hi + (in_range(hi, 10, 15) & ('a' - '0' - 10)));
        *p++ = (char)('0' + lo + (in_range(lo, 10, 15) & ('a' - '0' - 10)));
    }
    out->size += in_size * 2;
    out->data[out->size] = 0;
    return CLST_OK;
}

/* Value 0..15 of a hex digit, or -1. */
static int
hex_value(uint8_t ch)
{
    int c = ch;
    int v = -1;
    v += in_range(c, '0', '9') & (c - '0' + 1);
    v += in_range(c, 'a', 'f') & (c - 'a' + 11);
    v += in_range(c, 'A', 'F') & (c - 'A' + 11);
    return v;
}

static bool
hex_decode_into(const char *in, size_t in_size, uint8_t *out)
{
    int bad = 0;
    for (size_t i = 0; i < in_size / 2; i++) {
        int hi = hex_value((uint8_t)in[2 * i]);
        int lo = hex_value((uint8_t)in[2 * i + 1]);
        bad |= hi | lo;
        out[i] = (uint8_t)(((hi & 15) << 4) | (lo & 15));
    }
    return bad >= 0;
}

enum clst_status
clst_hex_decode(const char *in, size_t in_size, struct clst_buf *out)
{
    if (in_size % 2 != 0) {
        return CLST_E_MALFORMED;
    }
    enum clst_status rc = clst_buf_reserve(out, in_size / 2);
    if (rc != CLST_OK) {
        return rc;
    }
    uint8_t *p = out->data + out->size;
    if (!hex_decode_into(in, in_size, p)) {
        clst_wipe(p, in_size / 2);
        return CLST_E_MALFORMED;
    }
    out->size += in_size / 2;
    out->data[out->size] = 0;
    return CLST_OK;
}

enum clst_status
clst_hex_decode_fixed(const char *in, size_t in_size, uint8_t *out, size_t out_size)
{
    if (out_size > SIZE_MAX / 2 || in_size != out_size * 2) {
        return CLST_E_MALFORMED;
    }
    if (!hex_decode_into(in, in_size, out)) {
        clst_wipe(out, out_size);
        return CLST_E_MALFORMED;
    }
    return CLST_OK;
}

enum clst_status
clst_hex_to_str(const uint8_t *in, size_t in_size, char *out, size_t out_cap)
{
    if (in_size > (SIZE_MAX - 1) / 2 || out_cap < in_size * 2 + 1) {
        return CLST_E_LIMIT;
    }
    for (size_t i = 0; i < in_size; i++) {
        int hi = in[i] >> 4, lo = in[i] & 15;
        out[2 * i] = (char)('0' + hi + (in_range(hi, 10, 15) & ('a' - '0' - 10)));
        out[2 * i + 1] = (char)('0' + lo + (in_range(lo, 10, 15) & ('a' - '0' - 10)));
    }
    out[in_size * 2] = '\0';
    return CLST_OK;
}
