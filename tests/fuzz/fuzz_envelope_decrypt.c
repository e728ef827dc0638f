/*
 * Fuzz harness for .clst decryption with a fixed local key (the corpus holds files encrypted
 * with it, valid and damaged).
 *
 * Input: one byte that chooses how the streaming decryptor is fed (the piece size), then the
 * file. The three decrypting interfaces must agree on every input: the streaming decryptor,
 * the in-memory decryptor (one and two threads) and the random-access reader either all accept
 * with the same plaintext or all reject. A streaming failure must be sticky. Any disagreement
 * calls abort().
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cloister/envelope.h>

/* The key of the corpus files: cloister-key-v1:000102...1f. */
static const uint8_t KEY[CLST_ENVELOPE_KEY_SIZE] = {
    0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15,
    16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31,
};

static void
check(int ok)
{
    if (!ok) {
        abort();
    }
}

static const size_t STEPS[] = {0, 1, 7, 16, 56, 1000, 16399, 16400, 16401, 65536};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct clst_envelope_provider *p = NULL;
    struct clst_envelope_dec *d = NULL;
    struct clst_envelope_reader *r = NULL;
    struct clst_envelope_source src;
    struct clst_err err;
    uint8_t *s_out = NULL, *m_out = NULL, *tmp = NULL;
    size_t s_size = 0, m_size = 0, n = 0;

    if (size < 1 || size > (4u << 20)) {
        return 0;
    }
    size_t step = STEPS[data[0] % (sizeof(STEPS) / sizeof(STEPS[0]))];
    data++;
    size--;
    check(clst_envelope_provider_local_new(KEY, &p) == CLST_OK);
    s_out = malloc(size + CLST_ENVELOPE_CHUNK_SIZE);
    m_out = malloc(size + 1);
    tmp = malloc(size + 2 * CLST_ENVELOPE_CT_CHUNK_SIZE);
    check(s_out != NULL && m_out != NULL && tmp != NULL);

    /* 1. streaming */
    check(clst_envelope_dec_new(&p, 1, &d) == CLST_OK);
    enum clst_status s_rc = CLST_OK;
    size_t pos = 0;
    while (pos < size && s_rc == CLST_OK) {
        size_t take = step == 0 || step > size - pos ? size - pos : step;
        size_t cap = clst_envelope_dec_max_output(d, take);
        s_rc = clst_envelope_dec_update(d, data + pos, take, tmp, cap, &n, &err);
        if (s_rc == CLST_OK) {
            check(n <= cap);
            memcpy(s_out + s_size, tmp, n);
            s_size += n;
        }
        pos += take;
    }
    if (s_rc == CLST_OK) {
        s_rc = clst_envelope_dec_final(d, tmp, CLST_ENVELOPE_CHUNK_SIZE, &n, &err);
        if (s_rc == CLST_OK) {
            memcpy(s_out + s_size, tmp, n);
            s_size += n;
        }
    }
    if (s_rc != CLST_OK) {
        enum clst_status again = clst_envelope_dec_final(d, tmp, CLST_ENVELOPE_CHUNK_SIZE, &n,
                                                         &err);
        check(again == s_rc);
    }
    clst_envelope_dec_free(d);

    /* 2. in memory, one and two threads */
    for (unsigned threads = 1; threads <= 2; threads++) {
        enum clst_status m_rc = clst_envelope_decrypt_mem(data, size, m_out, size, &m_size, &p, 1,
                                                          threads, &err);
        check((m_rc == CLST_OK) == (s_rc == CLST_OK));
        if (m_rc == CLST_OK) {
            check(m_size == s_size);
            check(m_size == 0 || memcmp(m_out, s_out, m_size) == 0);
        }
    }

    /* 3. random access */
    clst_envelope_source_mem(data, size, &src);
    enum clst_status r_rc = clst_envelope_reader_open(&src, &p, 1, &r, &err);
    if (r_rc == CLST_OK) {
        uint64_t total = clst_envelope_reader_size(r);
        r_rc = clst_envelope_reader_read(r, 0, m_out, (size_t)total, &err);
        if (r_rc == CLST_OK) {
            check(total == s_size);
            check(total == 0 || memcmp(m_out, s_out, (size_t)total) == 0);
        }
        clst_envelope_reader_free(r);
    }
    check((r_rc == CLST_OK) == (s_rc == CLST_OK));

    free(s_out);
    free(m_out);
    free(tmp);
    clst_envelope_provider_free(p);
    return 0;
}
