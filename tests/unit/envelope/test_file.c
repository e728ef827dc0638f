/*
 * Unit tests for src/envelope/file.c: file descriptors (two threads with pread/pwrite on regular
 * files, streaming for pipes and O_APPEND outputs) and whole buffers with one and two threads.
 * Sizes around the chunk and batch boundaries; outputs of every path decrypt with every other
 * path and with the streaming API; damaged, truncated and extended inputs fail, and on the
 * parallel path a bad length is caught before anything is written; progress is reported.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cloister/envelope.h>

#include "test_util.h"

#define CHUNK    CLST_ENVELOPE_CHUNK_SIZE
#define CT_CHUNK CLST_ENVELOPE_CT_CHUNK_SIZE
#define BATCH_PT ((size_t)CLST_ENVELOPE_BATCH_CHUNKS * CHUNK)

static const uint8_t KEY[32] = {7, 7, 7};

static int
tmpfd(void)
{
    char path[] = "/tmp/clst-file-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    return fd;
}

static int
file_with(const uint8_t *data, size_t n)
{
    int fd = tmpfd();
    assert_true(write(fd, data, n) == (ssize_t)n);
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    return fd;
}

static uint8_t *
read_back(int fd, size_t *n)
{
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    uint8_t *p = malloc((size_t)st.st_size + 1);
    assert_non_null(p);
    assert_true(pread(fd, p, (size_t)st.st_size, 0) == st.st_size);
    *n = (size_t)st.st_size;
    return p;
}

static void
fill(uint8_t *p, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = (uint8_t)(seed >> 24);
    }
}

struct progress {
    uint64_t last_done, total;
    int calls;
    bool monotonic;
};

static void
on_progress(void *ctx, uint64_t done, uint64_t total)
{
    struct progress *pr = ctx;
    if (done < pr->last_done) {
        pr->monotonic = false;
    }
    pr->last_done = done;
    pr->total = total;
    pr->calls++;
}

static void
test_fd_round_trips(void **state)
{
    (void)state;
    const size_t sizes[] = {0,           1,           CHUNK - 1,    CHUNK,       CHUNK + 1,
                            BATCH_PT - 1, BATCH_PT,   BATCH_PT + 1, 3 * BATCH_PT + 77,
                            (size_t)CLST_ENVELOPE_PARALLEL_MIN_SIZE + 5};
    const size_t max = (size_t)CLST_ENVELOPE_PARALLEL_MIN_SIZE + 5;
    struct clst_envelope_provider *p = NULL;
    struct clst_err err;
    uint8_t *pt = malloc(max);
    assert_non_null(pt);
    fill(pt, max, 99);
    assert_int_equal(clst_envelope_provider_local_new(KEY, &p), CLST_OK);

    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        size_t n = sizes[s];
        uint8_t *ct[3];
        size_t ct_n[3];
        /* threads 1 (streaming path), 2 (parallel), 0 (automatic) */
        for (unsigned t = 0; t < 3; t++) {
            uint64_t written = 0;
            struct clst_envelope_fd_opts opts = {t == 0 ? 1u : t == 1 ? 2u : 0u, NULL, NULL,
                                                 NULL, 0, &written};
            struct progress pr = {0, 0, 0, true};
            opts.progress = on_progress;
            opts.progress_ctx = &pr;
            int in = file_with(pt, n), out = tmpfd();
            if (clst_envelope_encrypt_fd(in, out, p, &opts, &err) != CLST_OK) {
                fail_msg("encrypt_fd size %zu threads %u: %s", n, opts.threads, err.msg);
            }
            ct[t] = read_back(out, &ct_n[t]);
            assert_true(written == ct_n[t]);
            /* The descriptors are left at the end of what was read and written. */
            assert_true(lseek(in, 0, SEEK_CUR) == (off_t)n);
            assert_true(lseek(out, 0, SEEK_CUR) == (off_t)ct_n[t]);
            assert_true(pr.monotonic);
            if (n > 0) {
                assert_true(pr.calls > 0);
                assert_true(pr.last_done == n);
            }
            close(in);
            close(out);
        }
        assert_int_equal(ct_n[0], ct_n[1]);
        assert_int_equal(ct_n[0], ct_n[2]);
        /* Each ciphertext decrypts through another path than the one that wrote it: the
         * one-thread output with two threads, the two-thread output with one, the automatic
         * one in memory (and every path is also exercised on the others' files). */
        for (unsigned c = 0; c < 3; c++) {
            size_t got = 0;
            uint8_t *back = NULL;
            if (c < 2) {
                struct clst_envelope_fd_opts opts = {c == 0 ? 2u : 1u, NULL, NULL, NULL, 0, NULL};
                int in = file_with(ct[c], ct_n[c]), out = tmpfd();
                assert_int_equal(clst_envelope_decrypt_fd(in, out, &p, 1, &opts, &err), CLST_OK);
                back = read_back(out, &got);
                close(in);
                close(out);
            } else {
                back = malloc(n + 1);
                assert_non_null(back);
                assert_int_equal(clst_envelope_decrypt_mem(ct[c], ct_n[c], back, n, &got, &p, 1,
                                                           2, &err),
                                 CLST_OK);
            }
            assert_int_equal(got, n);
            assert_memory_equal(back, pt, n);
            free(back);
            free(ct[c]);
        }
    }
    free(pt);
    clst_envelope_provider_free(p);
}

static void
test_fd_failures(void **state)
{
    (void)state;
    const size_t n = 2 * BATCH_PT + 500;
    struct clst_envelope_provider *p = NULL, *q = NULL;
    struct clst_err err;
    uint8_t key2[32] = {8};
    uint8_t *pt = malloc(n);
    assert_non_null(pt);
    fill(pt, n, 4);
    assert_int_equal(clst_envelope_provider_local_new(KEY, &p), CLST_OK);
    assert_int_equal(clst_envelope_provider_local_new(key2, &q), CLST_OK);
    struct clst_envelope_fd_opts two = {2, NULL, NULL, NULL, 0, NULL};
    struct clst_envelope_fd_opts one = {1, NULL, NULL, NULL, 0, NULL};
    int in = file_with(pt, n), out = tmpfd();
    assert_int_equal(clst_envelope_encrypt_fd(in, out, p, &two, &err), CLST_OK);
    size_t ct_n = 0;
    uint8_t *ct = read_back(out, &ct_n);
    close(in);
    close(out);
    size_t h = 0;
    assert_int_equal(clst_envelope_header_peek_size(ct, ct_n, &h, &err), CLST_OK);

    /* Truncated / extended: on the parallel path nothing at all is written. */
    const size_t lens[] = {0, 10, h, h + 56, h + 56 + CT_CHUNK, ct_n - 1, ct_n + 1, ct_n + 16};
    uint8_t *longer = calloc(1, ct_n + 16);
    assert_non_null(longer);
    memcpy(longer, ct, ct_n);
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        in = file_with(longer, lens[i]);
        out = tmpfd();
        assert_int_not_equal(clst_envelope_decrypt_fd(in, out, &p, 1, &two, &err), CLST_OK);
        struct stat st;
        assert_int_equal(fstat(out, &st), 0);
        assert_int_equal(st.st_size, 0);
        close(in);
        close(out);
        /* And the streaming path fails too. */
        in = file_with(longer, lens[i]);
        out = tmpfd();
        assert_int_not_equal(clst_envelope_decrypt_fd(in, out, &p, 1, &one, &err), CLST_OK);
        close(in);
        close(out);
    }
    free(longer);

    /* A damaged chunk in the second batch: fails on both paths, with the chunk named. */
    size_t k = CLST_ENVELOPE_BATCH_CHUNKS + 3;
    ct[h + 56 + k * CT_CHUNK + 1] ^= 0x20;
    for (int path = 0; path < 2; path++) {
        in = file_with(ct, ct_n);
        out = tmpfd();
        assert_int_equal(clst_envelope_decrypt_fd(in, out, &p, 1, path ? &two : &one, &err),
                         CLST_E_VERIFY);
        char want[32];
        snprintf(want, sizeof(want), "chunk %zu ", k);
        assert_non_null(strstr(err.msg, want));
        close(in);
        close(out);
    }
    /* In memory, 2 threads: the output is wiped. */
    uint8_t *back = malloc(n);
    assert_non_null(back);
    size_t got = 12345;
    assert_int_equal(clst_envelope_decrypt_mem(ct, ct_n, back, n, &got, &p, 1, 2, &err),
                     CLST_E_VERIFY);
    assert_int_equal(got, 12345);
    for (size_t i = 0; i < n; i += 4096) {
        assert_int_equal(back[i], 0);
    }
    ct[h + 56 + k * CT_CHUNK + 1] ^= 0x20;
    /* Too small an output buffer. */
    assert_int_equal(clst_envelope_decrypt_mem(ct, ct_n, back, n - 1, &got, &p, 1, 2, &err),
                     CLST_E_LIMIT);
    assert_int_equal(clst_envelope_decrypt_mem(ct, ct_n, back, n, &got, &p, 1, 2, &err), CLST_OK);
    assert_memory_equal(back, pt, n);
    free(back);

    /* Wrong key: named. */
    in = file_with(ct, ct_n);
    out = tmpfd();
    assert_int_equal(clst_envelope_decrypt_fd(in, out, &q, 1, &two, &err), CLST_E_NOTFOUND);
    assert_non_null(strstr(err.msg, "local key id"));
    close(in);
    close(out);
    free(ct);
    free(pt);
    clst_envelope_provider_free(p);
    clst_envelope_provider_free(q);
}

static void
test_streams_and_append(void **state)
{
    (void)state;
    struct clst_envelope_provider *p = NULL;
    struct clst_err err;
    uint8_t pt[30000];
    fill(pt, sizeof(pt), 17);
    assert_int_equal(clst_envelope_provider_local_new(KEY, &p), CLST_OK);

    /* Input from a pipe (small enough to sit in the pipe buffer). */
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    assert_true(write(pfd[1], pt, sizeof(pt)) == (ssize_t)sizeof(pt));
    close(pfd[1]);
    int out = tmpfd();
    struct clst_envelope_fd_opts two = {2, NULL, NULL, NULL, 0, NULL};
    assert_int_equal(clst_envelope_encrypt_fd(pfd[0], out, p, &two, &err), CLST_OK);
    close(pfd[0]);
    size_t ct_n = 0;
    uint8_t *ct = read_back(out, &ct_n);
    close(out);

    /* Output opened O_APPEND (pwrite would misplace data): streamed instead, still correct. */
    char path[] = "/tmp/clst-append-XXXXXX";
    int tmp = mkstemp(path);
    assert_true(tmp >= 0);
    close(tmp);
    int app = open(path, O_WRONLY | O_APPEND);
    assert_true(app >= 0);
    int in = file_with(ct, ct_n);
    assert_int_equal(clst_envelope_decrypt_fd(in, app, &p, 1, &two, &err), CLST_OK);
    close(app);
    close(in);
    int rd = open(path, O_RDONLY);
    size_t got = 0;
    uint8_t *back = read_back(rd, &got);
    close(rd);
    unlink(path);
    assert_int_equal(got, sizeof(pt));
    assert_memory_equal(back, pt, sizeof(pt));
    free(back);

    /* An output file that was longer than the result is cut to it (parallel path). */
    uint8_t junk[100000];
    memset(junk, 0xee, sizeof(junk));
    int longer = file_with(junk, sizeof(junk));
    in = file_with(ct, ct_n);
    assert_int_equal(clst_envelope_decrypt_fd(in, longer, &p, 1, &two, &err), CLST_OK);
    back = read_back(longer, &got);
    assert_int_equal(got, sizeof(pt));
    assert_memory_equal(back, pt, sizeof(pt));
    assert_true(lseek(longer, 0, SEEK_CUR) == (off_t)sizeof(pt));
    free(back);
    close(in);
    close(longer);
    free(ct);
    clst_envelope_provider_free(p);
}

/* A descriptor holding `skip` bytes of 0x5c and then data, positioned after the 0x5c bytes. */
static int
file_after(size_t skip, const uint8_t *data, size_t n)
{
    int fd = tmpfd();
    uint8_t *junk = malloc(skip + 1);
    assert_non_null(junk);
    memset(junk, 0x5c, skip);
    assert_true(write(fd, junk, skip) == (ssize_t)skip);
    assert_true(write(fd, data, n) == (ssize_t)n);
    assert_true(lseek(fd, (off_t)skip, SEEK_SET) == (off_t)skip);
    free(junk);
    return fd;
}

/* The skip bytes before the result are untouched; returns the result after them. */
static uint8_t *
read_after(int fd, size_t skip, size_t *n)
{
    size_t all = 0;
    uint8_t *p = read_back(fd, &all);
    assert_true(all >= skip);
    for (size_t i = 0; i < skip; i++) {
        assert_int_equal(p[i], 0x5c);
    }
    *n = all - skip;
    memmove(p, p + skip, *n);
    return p;
}

/*
 * The two-thread path writes the output in pieces aligned on the output file's offsets (not on
 * chunks), so a chunk that straddles two pieces is sealed or opened by both: positioned inputs
 * and outputs at awkward offsets, sizes whose final chunk is empty, a damaged chunk that
 * straddles two pieces, and two damaged chunks (the first one is reported).
 */
static void
test_fd_unaligned(void **state)
{
    (void)state;
    const size_t unit = (size_t)256 << 10;
    const size_t sizes[] = {4 * CHUNK, (size_t)1 << 20, ((size_t)1 << 20) + 12345,
                            5 * unit / 2 + 1};
    const size_t skips[] = {0, 1, 56, 4095, unit - 1, unit + 7};
    const size_t max = ((size_t)1 << 20) + 12345;
    struct clst_envelope_provider *p = NULL;
    struct clst_err err;
    uint8_t *pt = malloc(max);
    assert_non_null(pt);
    fill(pt, max, 1234);
    assert_int_equal(clst_envelope_provider_local_new(KEY, &p), CLST_OK);

    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        for (size_t j = 0; j < sizeof(skips) / sizeof(skips[0]); j++) {
            size_t n = sizes[s], skip = skips[j], ct_n = 0, got = 0;
            uint64_t written = 0;
            struct clst_envelope_fd_opts two = {2, NULL, NULL, NULL, 0, &written};
            /* Input after `skip` bytes, output after skip + 3 bytes. */
            int in = file_after(skip, pt, n), out = file_after(skip + 3, NULL, 0);
            if (clst_envelope_encrypt_fd(in, out, p, &two, &err) != CLST_OK) {
                fail_msg("encrypt_fd size %zu skip %zu: %s", n, skip, err.msg);
            }
            assert_true(lseek(in, 0, SEEK_CUR) == (off_t)(skip + n));
            uint8_t *ct = read_after(out, skip + 3, &ct_n);
            assert_true(written == ct_n);
            assert_true(lseek(out, 0, SEEK_CUR) == (off_t)(skip + 3 + ct_n));
            close(in);
            close(out);
            /* Back with two threads and one, again positioned. */
            for (unsigned t = 1; t <= 2; t++) {
                struct clst_envelope_fd_opts opts = {t, NULL, NULL, NULL, 0, &written};
                written = 0;
                in = file_after(skip + 5, ct, ct_n);
                out = file_after(skip, NULL, 0);
                if (clst_envelope_decrypt_fd(in, out, &p, 1, &opts, &err) != CLST_OK) {
                    fail_msg("decrypt_fd size %zu skip %zu threads %u: %s", n, skip, t, err.msg);
                }
                uint8_t *back = read_after(out, skip, &got);
                assert_int_equal(got, n);
                assert_true(written == n);
                if (memcmp(back, pt, n) != 0) {
                    fail_msg("decrypt_fd size %zu skip %zu threads %u: wrong plaintext", n, skip,
                             t);
                }
                free(back);
                close(in);
                close(out);
            }
            free(ct);
        }
    }

    /* Damage: 1 MiB of plaintext decrypted to an output positioned at 1000, so chunk 15's
     * plaintext [1000 + 15 * 16 KiB, 1000 + 16 * 16 KiB) straddles the piece boundary at
     * 256 KiB and is opened by both pieces. */
    {
        const size_t n = (size_t)1 << 20;
        size_t ct_n = 0, h = 0;
        struct clst_envelope_fd_opts two = {2, NULL, NULL, NULL, 0, NULL};
        int in = file_with(pt, n), out = tmpfd();
        assert_int_equal(clst_envelope_encrypt_fd(in, out, p, &two, &err), CLST_OK);
        uint8_t *ct = read_back(out, &ct_n);
        close(in);
        close(out);
        assert_int_equal(clst_envelope_header_peek_size(ct, ct_n, &h, &err), CLST_OK);
        const size_t bad[][2] = {{15, SIZE_MAX}, {40, 15}, {40, 33}, {0, 63}};
        for (size_t b = 0; b < sizeof(bad) / sizeof(bad[0]); b++) {
            size_t first = bad[b][1] < bad[b][0] ? bad[b][1] : bad[b][0];
            for (size_t i = 0; i < 2; i++) {
                if (bad[b][i] != SIZE_MAX) {
                    ct[h + 56 + bad[b][i] * CT_CHUNK + 7] ^= 0x01;
                }
            }
            for (unsigned t = 1; t <= 2; t++) {
                struct clst_envelope_fd_opts opts = {t, NULL, NULL, NULL, 0, NULL};
                in = file_with(ct, ct_n);
                out = file_after(1000, NULL, 0);
                assert_int_equal(clst_envelope_decrypt_fd(in, out, &p, 1, &opts, &err),
                                 CLST_E_VERIFY);
                char want[32];
                snprintf(want, sizeof(want), "chunk %zu ", first);
                if (strstr(err.msg, want) == NULL) {
                    fail_msg("damaged chunks %zu/%zu, threads %u: \"%s\" does not name chunk %zu",
                             bad[b][0], bad[b][1], t, err.msg, first);
                }
                close(in);
                close(out);
            }
            for (size_t i = 0; i < 2; i++) {
                if (bad[b][i] != SIZE_MAX) {
                    ct[h + 56 + bad[b][i] * CT_CHUNK + 7] ^= 0x01;
                }
            }
        }
        /* Undamaged again: decrypts. */
        in = file_with(ct, ct_n);
        out = file_after(1000, NULL, 0);
        assert_int_equal(clst_envelope_decrypt_fd(in, out, &p, 1, &two, &err), CLST_OK);
        close(in);
        close(out);
        free(ct);
    }
    free(pt);
    clst_envelope_provider_free(p);
}

static void
test_mem_threads(void **state)
{
    (void)state;
    struct clst_envelope_provider *p = NULL;
    struct clst_err err;
    const size_t n = 5 * BATCH_PT + 3;
    uint8_t *pt = malloc(n);
    size_t cap = n + CLST_ENVELOPE_HEADER_MAX_SIZE + (n / CHUNK + 2) * 16 + 56;
    uint8_t *c1 = malloc(cap), *c2 = malloc(cap), *back = malloc(n);
    size_t n1 = 0, n2 = 0, got = 0;
    assert_non_null(pt);
    assert_non_null(c1);
    assert_non_null(c2);
    assert_non_null(back);
    fill(pt, n, 1);
    assert_int_equal(clst_envelope_provider_local_new(KEY, &p), CLST_OK);
    assert_int_equal(clst_envelope_encrypt_mem(pt, n, c1, cap, &n1, p, 1, &err), CLST_OK);
    assert_int_equal(clst_envelope_encrypt_mem(pt, n, c2, cap, &n2, p, 2, &err), CLST_OK);
    assert_int_equal(n1, n2);
    for (unsigned t = 1; t <= 2; t++) {
        assert_int_equal(clst_envelope_decrypt_mem(c1, n1, back, n, &got, &p, 1, t, &err),
                         CLST_OK);
        assert_memory_equal(back, pt, n);
        assert_int_equal(clst_envelope_decrypt_mem(c2, n2, back, n, &got, &p, 1, t, &err),
                         CLST_OK);
        assert_memory_equal(back, pt, n);
    }
    /* An output buffer one byte short is refused before anything is done. */
    assert_int_equal(clst_envelope_encrypt_mem(pt, n, c1, n1 - 1, &n2, p, 2, &err), CLST_E_LIMIT);
    free(pt);
    free(c1);
    free(c2);
    free(back);
    clst_envelope_provider_free(p);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fd_round_trips),
        cmocka_unit_test(test_fd_failures),
        cmocka_unit_test(test_streams_and_append),
        cmocka_unit_test(test_fd_unaligned),
        cmocka_unit_test(test_mem_threads),
    };
    return cmocka_run_group_tests_name("envelope/file", tests, NULL, NULL);
}
