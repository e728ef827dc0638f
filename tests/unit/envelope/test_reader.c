/*
 * Unit tests for src/envelope/reader.c: random access to whole .clst files (memory and file
 * descriptor sources). Reads of every kind of range are compared with the plaintext; a damaged
 * chunk fails only the reads that touch it, after which the reader keeps failing; truncated and
 * extended files, a wrong key and a damaged final chunk fail at open (the length is
 * authenticated there). The Wycheproof vectors go through clst_envelope_reader_open_body in
 * test_body.c.
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <unistd.h>

#include <cloister/envelope.h>

#include "test_util.h"

#define CHUNK    CLST_ENVELOPE_CHUNK_SIZE
#define CT_CHUNK CLST_ENVELOPE_CT_CHUNK_SIZE
#define N        (5 * CHUNK + 1234)

static const uint8_t KEY[32] = {0x42};

static uint8_t *
make_ct(struct clst_envelope_provider *p, const uint8_t *pt, size_t n, size_t *out_n)
{
    uint8_t *ct = malloc(n + CLST_ENVELOPE_HEADER_MAX_SIZE + (n / CHUNK + 2) * 16 + 56);
    struct clst_err err;
    assert_non_null(ct);
    assert_int_equal(clst_envelope_encrypt_mem(pt, n, ct,
                                               n + CLST_ENVELOPE_HEADER_MAX_SIZE +
                                                   (n / CHUNK + 2) * 16 + 56,
                                               out_n, p, 1, &err),
                     CLST_OK);
    return ct;
}

static void
test_ranges(void **state)
{
    (void)state;
    struct clst_envelope_provider *p = NULL;
    struct clst_envelope_reader *r = NULL;
    struct clst_envelope_source src;
    struct clst_err err;
    uint8_t *pt = malloc(N);
    uint8_t *out = malloc(N + 1);
    size_t n = 0;
    assert_non_null(pt);
    assert_non_null(out);
    for (size_t i = 0; i < N; i++) {
        pt[i] = (uint8_t)(i ^ (i >> 8) ^ (i >> 16));
    }
    assert_int_equal(clst_envelope_provider_local_new(KEY, &p), CLST_OK);
    uint8_t *ct = make_ct(p, pt, N, &n);
    clst_envelope_source_mem(ct, n, &src);
    assert_int_equal(clst_envelope_reader_open(&src, &p, 1, &r, &err), CLST_OK);
    assert_true(clst_envelope_reader_size(r) == N);
    const struct {
        uint64_t off;
        size_t len;
    } ranges[] = {
        {0, N}, {0, 0}, {0, 1}, {N - 1, 1}, {N, 0}, {CHUNK - 1, 2}, {CHUNK, CHUNK},
        {CHUNK - 5, 2 * CHUNK + 10}, {3 * CHUNK + 7, 1000}, {5 * CHUNK, 1234}, {12345, 40000},
    };
    for (size_t i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++) {
        memset(out, 0, N);
        assert_int_equal(clst_envelope_reader_read(r, ranges[i].off, out, ranges[i].len, &err),
                         CLST_OK);
        assert_memory_equal(out, pt + ranges[i].off, ranges[i].len);
    }
    /* Backwards, chunk by chunk. */
    for (size_t k = 6; k-- > 0;) {
        size_t len = k == 5 ? 1234 : CHUNK;
        assert_int_equal(clst_envelope_reader_read(r, k * CHUNK, out, len, &err), CLST_OK);
        assert_memory_equal(out, pt + k * CHUNK, len);
    }
    assert_int_equal(clst_envelope_reader_read(r, N, out, 1, &err), CLST_E_INVAL);
    assert_int_equal(clst_envelope_reader_read(r, UINT64_MAX, out, 1, &err), CLST_E_INVAL);
    assert_int_equal(clst_envelope_reader_read(r, 1, out, N, &err), CLST_E_INVAL);
    /* Range errors are caller errors: the reader still works. */
    assert_int_equal(clst_envelope_reader_read(r, 0, out, 10, &err), CLST_OK);
    clst_envelope_reader_free(r);
    clst_envelope_reader_free(NULL);

    /* Empty plaintext. */
    size_t n0 = 0;
    uint8_t *ct0 = make_ct(p, pt, 0, &n0);
    clst_envelope_source_mem(ct0, n0, &src);
    assert_int_equal(clst_envelope_reader_open(&src, &p, 1, &r, &err), CLST_OK);
    assert_true(clst_envelope_reader_size(r) == 0);
    assert_int_equal(clst_envelope_reader_read(r, 0, out, 0, &err), CLST_OK);
    assert_int_equal(clst_envelope_reader_read(r, 0, out, 1, &err), CLST_E_INVAL);
    clst_envelope_reader_free(r);
    free(ct0);

    free(ct);
    free(pt);
    free(out);
    clst_envelope_provider_free(p);
}

static void
test_damage(void **state)
{
    (void)state;
    struct clst_envelope_provider *p = NULL, *q = NULL;
    struct clst_envelope_reader *r = NULL;
    struct clst_envelope_source src;
    struct clst_err err;
    uint8_t *pt = calloc(1, N);
    uint8_t *out = malloc(N);
    uint8_t key2[32] = {0x43};
    size_t n = 0, h = 0;
    assert_non_null(pt);
    assert_non_null(out);
    assert_int_equal(clst_envelope_provider_local_new(KEY, &p), CLST_OK);
    assert_int_equal(clst_envelope_provider_local_new(key2, &q), CLST_OK);
    uint8_t *ct = make_ct(p, pt, N, &n);
    assert_int_equal(clst_envelope_header_peek_size(ct, n, &h, &err), CLST_OK);

    /* Chunk 2 damaged: chunks 0, 1, 3.. still readable; touching 2 fails, then all fails. */
    ct[h + 56 + 2 * CT_CHUNK + 9] ^= 4;
    clst_envelope_source_mem(ct, n, &src);
    assert_int_equal(clst_envelope_reader_open(&src, &p, 1, &r, &err), CLST_OK);
    assert_int_equal(clst_envelope_reader_read(r, 0, out, 2 * CHUNK, &err), CLST_OK);
    assert_int_equal(clst_envelope_reader_read(r, 3 * CHUNK, out, 100, &err), CLST_OK);
    memset(out, 0x99, N);
    assert_int_equal(clst_envelope_reader_read(r, CHUNK, out, 2 * CHUNK, &err), CLST_E_VERIFY);
    assert_non_null(strstr(err.msg, "chunk 2"));
    /* What was copied before the failure was wiped. */
    for (size_t i = 0; i < CHUNK; i++) {
        assert_int_equal(out[i], 0);
    }
    assert_int_equal(clst_envelope_reader_read(r, 0, out, 10, &err), CLST_E_VERIFY);
    clst_envelope_reader_free(r);
    r = NULL;
    ct[h + 56 + 2 * CT_CHUNK + 9] ^= 4;

    /* The final chunk damaged, truncated or extended: open fails (length authentication). */
    ct[n - 1] ^= 1;
    clst_envelope_source_mem(ct, n, &src);
    assert_int_equal(clst_envelope_reader_open(&src, &p, 1, &r, &err), CLST_E_VERIFY);
    ct[n - 1] ^= 1;
    const size_t cuts[] = {0, 5, 16, h - 1, h, h + 55, h + 56, h + 56 + CT_CHUNK, n - 1};
    for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
        clst_envelope_source_mem(ct, cuts[i], &src);
        assert_int_not_equal(clst_envelope_reader_open(&src, &p, 1, &r, &err), CLST_OK);
        assert_null(r);
    }
    uint8_t *longer = malloc(n + 20);
    assert_non_null(longer);
    memcpy(longer, ct, n);
    memset(longer + n, 0, 20);
    clst_envelope_source_mem(longer, n + 20, &src);
    assert_int_not_equal(clst_envelope_reader_open(&src, &p, 1, &r, &err), CLST_OK);
    free(longer);

    /* Wrong key; a damaged commitment (reported as such even on a truncated body). */
    clst_envelope_source_mem(ct, n, &src);
    assert_int_equal(clst_envelope_reader_open(&src, &q, 1, &r, &err), CLST_E_NOTFOUND);
    ct[h + 30] ^= 1;
    assert_int_equal(clst_envelope_reader_open(&src, &p, 1, &r, &err), CLST_E_VERIFY);
    assert_non_null(strstr(err.msg, "commitment"));
    clst_envelope_source_mem(ct, n - 3, &src);
    assert_int_equal(clst_envelope_reader_open(&src, &p, 1, &r, &err), CLST_E_VERIFY);
    assert_non_null(strstr(err.msg, "commitment"));

    free(ct);
    free(pt);
    free(out);
    clst_envelope_provider_free(p);
    clst_envelope_provider_free(q);
}

static void
test_fd_source(void **state)
{
    (void)state;
    struct clst_envelope_provider *p = NULL;
    struct clst_envelope_reader *r = NULL;
    struct clst_envelope_source src;
    struct clst_err err;
    char path[] = "/tmp/clst-reader-XXXXXX";
    uint8_t *pt = malloc(N);
    uint8_t out[3000];
    size_t n = 0;
    assert_non_null(pt);
    for (size_t i = 0; i < N; i++) {
        pt[i] = (uint8_t)(i * 13);
    }
    assert_int_equal(clst_envelope_provider_local_new(KEY, &p), CLST_OK);
    uint8_t *ct = make_ct(p, pt, N, &n);
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    assert_int_equal(write(fd, ct, n), (ssize_t)n);
    assert_int_equal(clst_envelope_source_fd(fd, &src, &err), CLST_OK);
    assert_true(src.size == n);
    assert_int_equal(clst_envelope_reader_open(&src, &p, 1, &r, &err), CLST_OK);
    assert_int_equal(clst_envelope_reader_read(r, 4 * CHUNK - 1000, out, sizeof(out), &err),
                     CLST_OK);
    assert_memory_equal(out, pt + 4 * CHUNK - 1000, sizeof(out));
    clst_envelope_reader_free(r);
    close(fd);
    /* A pipe is not a random-access source. */
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    assert_int_equal(clst_envelope_source_fd(pfd[0], &src, &err), CLST_E_INVAL);
    close(pfd[0]);
    close(pfd[1]);
    free(ct);
    free(pt);
    clst_envelope_provider_free(p);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ranges),
        cmocka_unit_test(test_damage),
        cmocka_unit_test(test_fd_source),
    };
    return cmocka_run_group_tests_name("envelope/reader", tests, NULL, NULL);
}
