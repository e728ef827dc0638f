/*
 * A small zlib (RFC 1950) / DEFLATE (RFC 1951) decoder for the tests only: the Wycheproof
 * chunked-encryption vectors store their ciphertexts zlib-compressed (some are 4 MiB of mostly
 * zero bytes), and the test executables link neither zlib nor anything that exposes it.
 * Canonical Huffman decoding bit by bit, in the manner of zlib's contrib/puff; slow but simple,
 * and the vectors are small once compressed. Checks the Adler-32 trailer.
 */
#ifndef CLST_TEST_INFLATE_H
#define CLST_TEST_INFLATE_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define TINF_MAX_OUT ((size_t)64 << 20)

struct tinf {
    const uint8_t *in;
    size_t in_size, in_pos;
    uint32_t bitbuf;
    int bitcnt;
    uint8_t *out;
    size_t out_size, out_cap;
    int error;
};

struct tinf_huff {
    short count[16];
    short symbol[320];
};

static int
tinf_bits(struct tinf *s, int need)
{
    uint32_t val = s->bitbuf;
    while (s->bitcnt < need) {
        if (s->in_pos >= s->in_size) {
            s->error = 1;
            return 0;
        }
        val |= (uint32_t)s->in[s->in_pos++] << s->bitcnt;
        s->bitcnt += 8;
    }
    s->bitbuf = val >> need;
    s->bitcnt -= need;
    return (int)(val & ((1u << need) - 1u));
}

static int
tinf_put(struct tinf *s, uint8_t b)
{
    if (s->out_size == s->out_cap) {
        size_t ncap = s->out_cap ? s->out_cap * 2 : 65536;
        if (ncap > TINF_MAX_OUT) {
            return -1;
        }
        uint8_t *p = realloc(s->out, ncap);
        if (p == NULL) {
            return -1;
        }
        s->out = p;
        s->out_cap = ncap;
    }
    s->out[s->out_size++] = b;
    return 0;
}

static int
tinf_decode(struct tinf *s, const struct tinf_huff *h)
{
    int code = 0, first = 0, index = 0;
    for (int len = 1; len <= 15; len++) {
        code |= tinf_bits(s, 1);
        if (s->error) {
            return -1;
        }
        int count = h->count[len];
        if (code - count < first) {
            return h->symbol[index + (code - first)];
        }
        index += count;
        first += count;
        first <<= 1;
        code <<= 1;
    }
    return -1;
}

static int
tinf_construct(struct tinf_huff *h, const short *length, int n)
{
    short offs[16];
    memset(h->count, 0, sizeof(h->count));
    for (int i = 0; i < n; i++) {
        h->count[length[i]]++;
    }
    if (h->count[0] == n) {
        return 0;
    }
    int left = 1;
    for (int len = 1; len <= 15; len++) {
        left <<= 1;
        left -= h->count[len];
        if (left < 0) {
            return -1;
        }
    }
    offs[1] = 0;
    for (int len = 1; len < 15; len++) {
        offs[len + 1] = (short)(offs[len] + h->count[len]);
    }
    for (int i = 0; i < n; i++) {
        if (length[i] != 0) {
            h->symbol[offs[length[i]]++] = (short)i;
        }
    }
    return left;
}

static int
tinf_codes(struct tinf *s, const struct tinf_huff *lencode, const struct tinf_huff *distcode)
{
    static const short lbase[29] = {3,  4,  5,  6,  7,  8,  9,  10, 11,  13,  15,  17,  19,  23, 27,
                                    31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258};
    static const short lext[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2,
                                   2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
    static const short dbase[30] = {1,    2,    3,    4,    5,    7,     9,     13,    17,  25,
                                    33,   49,   65,   97,   129,  193,   257,   385,   513, 769,
                                    1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577};
    static const short dext[30] = {0, 0, 0, 0, 1, 1, 2, 2,  3,  3,  4,  4,  5,  5,  6,
                                   6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13};
    for (;;) {
        int symbol = tinf_decode(s, lencode);
        if (symbol < 0) {
            return -1;
        }
        if (symbol < 256) {
            if (tinf_put(s, (uint8_t)symbol) != 0) {
                return -1;
            }
        } else if (symbol == 256) {
            return 0;
        } else {
            symbol -= 257;
            if (symbol >= 29) {
                return -1;
            }
            int len = lbase[symbol] + tinf_bits(s, lext[symbol]);
            int dsym = tinf_decode(s, distcode);
            if (dsym < 0 || dsym >= 30) {
                return -1;
            }
            size_t dist = (size_t)(dbase[dsym] + tinf_bits(s, dext[dsym]));
            if (s->error || dist > s->out_size) {
                return -1;
            }
            while (len-- > 0) {
                if (tinf_put(s, s->out[s->out_size - dist]) != 0) {
                    return -1;
                }
            }
        }
    }
}

static int
tinf_fixed(struct tinf *s)
{
    struct tinf_huff lencode, distcode;
    short lengths[288];
    int i;
    for (i = 0; i < 144; i++) {
        lengths[i] = 8;
    }
    for (; i < 256; i++) {
        lengths[i] = 9;
    }
    for (; i < 280; i++) {
        lengths[i] = 7;
    }
    for (; i < 288; i++) {
        lengths[i] = 8;
    }
    tinf_construct(&lencode, lengths, 288);
    for (i = 0; i < 30; i++) {
        lengths[i] = 5;
    }
    tinf_construct(&distcode, lengths, 30);
    return tinf_codes(s, &lencode, &distcode);
}

static int
tinf_dynamic(struct tinf *s)
{
    static const short order[19] = {16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15};
    struct tinf_huff lencode, distcode;
    short lengths[320];
    int nlen = tinf_bits(s, 5) + 257;
    int ndist = tinf_bits(s, 5) + 1;
    int ncode = tinf_bits(s, 4) + 4;
    int index;
    if (s->error || nlen > 286 || ndist > 30) {
        return -1;
    }
    for (index = 0; index < ncode; index++) {
        lengths[order[index]] = (short)tinf_bits(s, 3);
    }
    for (; index < 19; index++) {
        lengths[order[index]] = 0;
    }
    if (tinf_construct(&lencode, lengths, 19) != 0) {
        return -1;
    }
    index = 0;
    while (index < nlen + ndist) {
        int symbol = tinf_decode(s, &lencode);
        if (symbol < 0) {
            return -1;
        }
        if (symbol < 16) {
            lengths[index++] = (short)symbol;
        } else {
            short len = 0;
            int rep;
            if (symbol == 16) {
                if (index == 0) {
                    return -1;
                }
                len = lengths[index - 1];
                rep = 3 + tinf_bits(s, 2);
            } else if (symbol == 17) {
                rep = 3 + tinf_bits(s, 3);
            } else {
                rep = 11 + tinf_bits(s, 7);
            }
            if (index + rep > nlen + ndist) {
                return -1;
            }
            while (rep-- > 0) {
                lengths[index++] = len;
            }
        }
    }
    if (lengths[256] == 0) {
        return -1;
    }
    int err = tinf_construct(&lencode, lengths, nlen);
    if (err < 0 || (err > 0 && nlen - lencode.count[0] != 1)) {
        return -1;
    }
    err = tinf_construct(&distcode, lengths + nlen, ndist);
    if (err < 0 || (err > 0 && ndist - distcode.count[0] != 1)) {
        return -1;
    }
    return tinf_codes(s, &lencode, &distcode);
}

static int
tinf_stored(struct tinf *s)
{
    s->bitbuf = 0;
    s->bitcnt = 0;
    if (s->in_size - s->in_pos < 4) {
        return -1;
    }
    unsigned len = s->in[s->in_pos] | (unsigned)s->in[s->in_pos + 1] << 8;
    unsigned nlen = s->in[s->in_pos + 2] | (unsigned)s->in[s->in_pos + 3] << 8;
    s->in_pos += 4;
    if (len != (~nlen & 0xffffu) || s->in_size - s->in_pos < len) {
        return -1;
    }
    while (len-- > 0) {
        if (tinf_put(s, s->in[s->in_pos++]) != 0) {
            return -1;
        }
    }
    return 0;
}

/* Decompresses a zlib stream into a malloc'ed buffer (*out, *out_size). 0 on success. */
static int
tinf_zlib_decompress(const uint8_t *in, size_t in_size, uint8_t **out, size_t *out_size)
{
    struct tinf s;
    int last, rc = -1;
    memset(&s, 0, sizeof(s));
    if (in_size < 6 || (in[0] & 0x0f) != 8 || ((in[0] << 8) | in[1]) % 31 != 0 ||
        (in[1] & 0x20) != 0) {
        return -1;
    }
    s.in = in;
    s.in_size = in_size - 4; /* the Adler-32 trailer */
    s.in_pos = 2;
    do {
        last = tinf_bits(&s, 1);
        int type = tinf_bits(&s, 2);
        if (s.error) {
            goto out;
        }
        int r = type == 0 ? tinf_stored(&s) : type == 1 ? tinf_fixed(&s)
                : type == 2                             ? tinf_dynamic(&s)
                                                        : -1;
        if (r != 0 || s.error) {
            goto out;
        }
    } while (!last);
    {
        uint32_t a = 1, b = 0;
        for (size_t i = 0; i < s.out_size; i++) {
            a = (a + s.out[i]) % 65521u;
            b = (b + a) % 65521u;
        }
        const uint8_t *t = in + in_size - 4;
        uint32_t want = (uint32_t)t[0] << 24 | (uint32_t)t[1] << 16 | (uint32_t)t[2] << 8 | t[3];
        if (((b << 16) | a) != want) {
            goto out;
        }
    }
    if (s.out == NULL) {
        s.out = malloc(1);
        if (s.out == NULL) {
            goto out;
        }
    }
    *out = s.out;
    *out_size = s.out_size;
    s.out = NULL;
    rc = 0;
out:
    free(s.out);
    return rc;
}

#endif
