/*
 * Unit tests for src/envelope/stream.c: whole .clst files through the streaming API.
 *
 * Round trips at 0, 1, 16383, 16384, 16385 and larger sizes with several input splits; a flipped
 * bit at every position of the header for local-key, P-256, vault (test provider) files and at
 * every byte for RSA; the wrong key; the wrong recipient; truncation at every byte of the header
 * and at, just before and just after every chunk boundary; appended garbage and an appended
 * valid chunk; chunks swapped between two files of the same key; a header moved onto another
 * body; reordered chunks; an empty input; sticky failures; the verified-prefix-only guarantee.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <cloister/crypto.h>
#include <cloister/envelope.h>

#include "test_util.h"

#define CHUNK    CLST_ENVELOPE_CHUNK_SIZE
#define CT_CHUNK CLST_ENVELOPE_CT_CHUNK_SIZE

static const uint8_t KEY[32] = {9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 9, 8, 7, 6, 5, 4,
                                3, 2, 1, 0, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 9, 8};

struct buf {
    uint8_t *p;
    size_t n;
};

static void
fill(uint8_t *p, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (uint8_t)(seed >> 16);
    }
}

/* Encrypts pt in pieces of `step` bytes (0 = one call). */
static struct buf
encrypt(struct clst_envelope_provider *p, const uint8_t *pt, size_t n, size_t step,
        const struct clst_envelope_meta *meta, size_t meta_count)
{
    struct clst_envelope_enc *e = NULL;
    struct clst_err err;
    struct buf out;
    size_t w = 0, done = 0;
    if (clst_envelope_enc_new(p, meta, meta_count, &e, &err) != CLST_OK) {
        fail_msg("enc_new: %s", err.msg);
    }
    size_t hsize = 0;
    assert_non_null(clst_envelope_enc_header(e, &hsize));
    uint64_t total = 0;
    assert_int_equal(clst_envelope_ciphertext_size(hsize, n, &total), CLST_OK);
    out.p = malloc((size_t)total + 2 * CT_CHUNK);
    assert_non_null(out.p);
    do {
        size_t take = step == 0 || step > n - done ? n - done : step;
        size_t cap = clst_envelope_enc_max_output(e, take);
        size_t m = 0;
        assert_int_equal(clst_envelope_enc_update(e, pt + done, take, out.p + w, cap, &m, &err),
                         CLST_OK);
        w += m;
        done += take;
    } while (done < n);
    size_t m = 0;
    assert_int_equal(clst_envelope_enc_final(e, out.p + w, CT_CHUNK + 56, &m, &err), CLST_OK);
    w += m;
    assert_true(w == total);
    out.n = w;
    clst_envelope_enc_free(e);
    return out;
}

/* Decrypts in pieces; returns the status and what was released before it. */
static enum clst_status
decrypt(struct clst_envelope_provider *const *ps, size_t np, const uint8_t *ct, size_t n,
        size_t step, struct buf *pt, struct clst_err *err)
{
    struct clst_envelope_dec *d = NULL;
    enum clst_status rc;
    size_t done = 0, m = 0;
    pt->p = malloc(n + CHUNK);
    pt->n = 0;
    assert_non_null(pt->p);
    assert_int_equal(clst_envelope_dec_new(ps, np, &d), CLST_OK);
    while (done < n) {
        size_t take = step == 0 || step > n - done ? n - done : step;
        size_t cap = clst_envelope_dec_max_output(d, take);
        uint8_t *tmp = malloc(cap + 1);
        assert_non_null(tmp);
        rc = clst_envelope_dec_update(d, ct + done, take, tmp, cap, &m, err);
        if (rc == CLST_OK) {
            memcpy(pt->p + pt->n, tmp, m);
            pt->n += m;
        }
        free(tmp);
        if (rc != CLST_OK) {
            goto failed;
        }
        done += take;
    }
    {
        uint8_t tmp[CHUNK];
        rc = clst_envelope_dec_final(d, tmp, sizeof(tmp), &m, err);
        if (rc != CLST_OK) {
            goto failed;
        }
        memcpy(pt->p + pt->n, tmp, m);
        pt->n += m;
    }
    clst_envelope_dec_free(d);
    return CLST_OK;
failed:
    assert_int_equal(err->status, rc);
    {
        /* Once failed, always failed. */
        struct clst_err again;
        uint8_t tmp[CHUNK];
        uint8_t more[CT_CHUNK];
        memset(more, 0, sizeof(more));
        assert_int_equal(clst_envelope_dec_update(d, more, sizeof(more), tmp, sizeof(tmp), &m,
                                                  &again),
                         rc);
        assert_int_equal(clst_envelope_dec_final(d, tmp, sizeof(tmp), &m, &again), rc);
        assert_string_equal(again.msg, err->msg);
    }
    clst_envelope_dec_free(d);
    return rc;
}

/* Expects decryption of ct to fail, releasing nothing beyond `max_prefix` bytes of pt. */
static enum clst_status
expect_fail(struct clst_envelope_provider *p, const uint8_t *ct, size_t n, const uint8_t *pt,
            size_t max_prefix)
{
    struct buf out;
    struct clst_err err;
    enum clst_status rc = decrypt(&p, 1, ct, n, 0, &out, &err);
    assert_int_not_equal(rc, CLST_OK);
    assert_true(err.msg[0] != '\0');
    assert_true(out.n <= max_prefix);
    if (out.n > 0) {
        assert_memory_equal(out.p, pt, out.n);
    }
    free(out.p);
    return rc;
}

static size_t
header_size_of(const struct buf *ct)
{
    size_t h = 0;
    assert_int_equal(clst_envelope_header_peek_size(ct->p, ct->n, &h, NULL), CLST_OK);
    return h;
}

static void
test_round_trips(void **state)
{
    (void)state;
    struct clst_envelope_provider *p = NULL;
    const size_t sizes[] = {0, 1, 16383, 16384, 16385, 3 * 16384, 200000};
    const size_t steps[] = {0, 1, 15, 16, 17, 1000, CT_CHUNK, CT_CHUNK + 3, 65536};
    uint8_t *pt = malloc(200000);
    assert_non_null(pt);
    fill(pt, 200000, 1);
    assert_int_equal(clst_envelope_provider_local_new(KEY, &p), CLST_OK);
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        for (size_t e = 0; e < sizeof(steps) / sizeof(steps[0]); e++) {
            if (steps[e] == 1 && sizes[s] > 20000) {
                continue; /* byte-by-byte only for the small sizes: keeps the test fast */
            }
            struct buf ct = encrypt(p, pt, sizes[s], steps[e], NULL, 0);
            size_t hsize = header_size_of(&ct);
            uint64_t body = 0;
            assert_int_equal(clst_envelope_body_size(sizes[s], &body), CLST_OK);
            assert_true(ct.n == hsize + body);
            struct buf out;
            struct clst_err err;
            assert_int_equal(decrypt(&p, 1, ct.p, ct.n, steps[e], &out, &err), CLST_OK);
            assert_int_equal(out.n, sizes[s]);
            assert_memory_equal(out.p, pt, sizes[s]);
            free(out.p);
            free(ct.p);
        }
    }
    clst_envelope_provider_free(p);
    free(pt);
}

static void
test_metadata_and_header_access(void **state)
{
    (void)state;
    struct clst_envelope_provider *p = NULL;
    struct clst_envelope_dec *d = NULL;
    struct clst_err err;
    const uint8_t v[] = "text/csv";
    struct clst_envelope_meta meta[] = {{"content-type", v, 8}, {"name", (const uint8_t *)"a.csv", 5}};
    uint8_t pt[10] = {0};
    uint8_t out[CHUNK];
    size_t m = 0;

    assert_int_equal(clst_envelope_provider_local_new(KEY, &p), CLST_OK);
    struct buf ct = encrypt(p, pt, sizeof(pt), 0, meta, 2);
    assert_int_equal(clst_envelope_dec_new(&p, 1, &d), CLST_OK);
    assert_null(clst_envelope_dec_header(d));
    /* Just the header: parsed and available, nothing released. */
    size_t hsize = header_size_of(&ct);
    assert_int_equal(clst_envelope_dec_update(d, ct.p, hsize, out, sizeof(out), &m, &err),
                     CLST_OK);
    assert_int_equal(m, 0);
    const struct clst_envelope_header *h = clst_envelope_dec_header(d);
    assert_non_null(h);
    assert_int_equal(h->meta_count, 2);
    const char *name;
    const uint8_t *val;
    size_t ns, vs;
    assert_int_equal(clst_envelope_header_meta(h, 0, &name, &ns, &val, &vs), CLST_OK);
    assert_memory_equal(name, "content-type", ns);
    assert_memory_equal(val, "text/csv", vs);
    assert_int_equal(clst_envelope_dec_update(d, ct.p + hsize, ct.n - hsize, out, sizeof(out), &m,
                                              &err),
                     CLST_OK);
    assert_int_equal(clst_envelope_dec_final(d, out, sizeof(out), &m, &err), CLST_OK);
    assert_int_equal(m, 10);
    /* A final() buffer smaller than what is left is a caller error, not a stream failure; the
     * exact size is enough. */
    clst_envelope_dec_free(d);
    assert_int_equal(clst_envelope_dec_new(&p, 1, &d), CLST_OK);
    assert_int_equal(clst_envelope_dec_update(d, ct.p, ct.n, out, sizeof(out), &m, &err), CLST_OK);
    assert_int_equal(clst_envelope_dec_final(d, out, 9, &m, &err), CLST_E_LIMIT);
    assert_int_equal(clst_envelope_dec_final(d, out, 10, &m, &err), CLST_OK);
    assert_int_equal(m, 10);
    clst_envelope_dec_free(d);
    /* Encrypt with too many metadata entries: refused up front. */
    struct clst_envelope_enc *e = NULL;
    struct clst_envelope_meta dup[] = {{"a", v, 1}, {"a", v, 1}};
    assert_int_equal(clst_envelope_enc_new(p, dup, 2, &e, &err), CLST_E_INVAL);
    assert_null(e);
    free(ct.p);
    clst_envelope_provider_free(p);
}

/* Flips every bit (or every byte's low bit, with `stride` 8) of the header: decryption fails. */
static void
flip_header(struct clst_envelope_provider *enc, struct clst_envelope_provider *dec, size_t stride)
{
    uint8_t pt[100];
    fill(pt, sizeof(pt), 7);
    struct buf ct = encrypt(enc, pt, sizeof(pt), 0, NULL, 0);
    size_t hsize = header_size_of(&ct);
    struct buf out;
    struct clst_err err;
    assert_int_equal(decrypt(&dec, 1, ct.p, ct.n, 0, &out, &err), CLST_OK);
    free(out.p);
    for (size_t bit = 0; bit < hsize * 8; bit += stride) {
        ct.p[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        expect_fail(dec, ct.p, ct.n, pt, 0);
        ct.p[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    free(ct.p);
}

struct fake_vault {
    uint8_t kek[32];
};

static enum clst_status
fv_wrap(void *ctx, const uint8_t key[32], struct clst_envelope_keyref *ref,
        struct clst_envelope_wrapped *w, struct clst_err *err)
{
    struct fake_vault *v = ctx;
    size_t n = 0;
    (void)err;
    ref->kind = CLST_ENVELOPE_REF_VAULT;
    strcpy(ref->vault_url, "https://vault.test");
    strcpy(ref->key_name, "k1");
    strcpy(ref->key_version, "abc");
    strcpy(w->alg, "A256KW");
    assert_int_equal(clst_aes_kw_wrap(v->kek, 32, key, 32, w->data, sizeof(w->data), &n), CLST_OK);
    w->size = n;
    return CLST_OK;
}

static enum clst_status
fv_unwrap(void *ctx, const struct clst_envelope_keyref *ref, const struct clst_envelope_wrapped *w,
          uint8_t out[32], struct clst_err *err)
{
    struct fake_vault *v = ctx;
    size_t n = 0;
    /* A lax provider on purpose: it ignores the reference, so only the body's commitment can
     * catch a changed URL, name or version. */
    (void)ref;
    if (strcmp(w->alg, "A256KW") != 0 ||
        clst_aes_kw_unwrap(v->kek, 32, w->data, w->size, out, 32, &n) != CLST_OK || n != 32) {
        return clst_err_set(err, CLST_E_VERIFY, "unwrap failed");
    }
    return CLST_OK;
}

static const struct clst_envelope_provider_ops FV_OPS = {"fake vault", fv_wrap, fv_unwrap, NULL};

static void
test_header_bit_flips(void **state)
{
    (void)state;
    struct clst_envelope_provider *local = NULL, *p256 = NULL, *rsa = NULL, *vault = NULL;
    struct clst_err err;
    EVP_PKEY *k = NULL;
    struct fake_vault fv;
    memset(fv.kek, 0x5c, 32);

    assert_int_equal(clst_envelope_provider_local_new(KEY, &local), CLST_OK);
    flip_header(local, local, 1);

    assert_int_equal(clst_ec_generate(CLST_CURVE_P256, &k), CLST_OK);
    assert_int_equal(clst_envelope_provider_recipient_new(k, &p256, &err), CLST_OK);
    EVP_PKEY_free(k);
    flip_header(p256, p256, 1);

    assert_int_equal(clst_rsa_generate(2048, &k), CLST_OK);
    assert_int_equal(clst_envelope_provider_recipient_new(k, &rsa, &err), CLST_OK);
    EVP_PKEY_free(k);
    flip_header(rsa, rsa, 8); /* one bit per byte: an RSA decryption per try */

    assert_int_equal(clst_envelope_provider_new(&FV_OPS, &fv, &vault), CLST_OK);
    flip_header(vault, vault, 1);

    clst_envelope_provider_free(local);
    clst_envelope_provider_free(p256);
    clst_envelope_provider_free(rsa);
    clst_envelope_provider_free(vault);
}

static void
test_wrong_keys(void **state)
{
    (void)state;
    struct clst_envelope_provider *p = NULL, *q = NULL, *r1 = NULL, *r2 = NULL;
    struct clst_err err;
    struct buf out;
    EVP_PKEY *k1 = NULL, *k2 = NULL;
    uint8_t key2[32];
    uint8_t pt[1000];
    fill(pt, sizeof(pt), 3);

    memcpy(key2, KEY, 32);
    key2[31] ^= 0x80;
    assert_int_equal(clst_envelope_provider_local_new(KEY, &p), CLST_OK);
    assert_int_equal(clst_envelope_provider_local_new(key2, &q), CLST_OK);
    struct buf ct = encrypt(p, pt, sizeof(pt), 0, NULL, 0);
    assert_int_equal(decrypt(&q, 1, ct.p, ct.n, 0, &out, &err), CLST_E_NOTFOUND);
    assert_non_null(strstr(err.msg, "was encrypted for local key id"));
    assert_non_null(strstr(err.msg, "but the key given has id"));
    assert_int_equal(out.n, 0);
    free(out.p);
    /* No key at all. */
    assert_int_equal(decrypt(NULL, 0, ct.p, ct.n, 0, &out, &err), CLST_E_NOTFOUND);
    free(out.p);

    /* Wrong recipient. */
    assert_int_equal(clst_ec_generate(CLST_CURVE_P256, &k1), CLST_OK);
    assert_int_equal(clst_ec_generate(CLST_CURVE_P256, &k2), CLST_OK);
    assert_int_equal(clst_envelope_provider_recipient_new(k1, &r1, &err), CLST_OK);
    assert_int_equal(clst_envelope_provider_recipient_new(k2, &r2, &err), CLST_OK);
    struct buf ct2 = encrypt(r1, pt, sizeof(pt), 0, NULL, 0);
    assert_int_equal(decrypt(&r2, 1, ct2.p, ct2.n, 0, &out, &err), CLST_E_NOTFOUND);
    assert_non_null(strstr(err.msg, "P-256 recipient SHA256:"));
    free(out.p);
    /* A local key offered for a recipient file and vice versa. */
    assert_int_equal(decrypt(&p, 1, ct2.p, ct2.n, 0, &out, &err), CLST_E_NOTFOUND);
    free(out.p);
    assert_int_equal(decrypt(&r1, 1, ct.p, ct.n, 0, &out, &err), CLST_E_NOTFOUND);
    free(out.p);
    /* The right one among several. */
    struct clst_envelope_provider *all[] = {q, r2, p, r1};
    assert_int_equal(decrypt(all, 4, ct2.p, ct2.n, 0, &out, &err), CLST_OK);
    assert_memory_equal(out.p, pt, sizeof(pt));
    free(out.p);

    free(ct.p);
    free(ct2.p);
    EVP_PKEY_free(k1);
    EVP_PKEY_free(k2);
    clst_envelope_provider_free(p);
    clst_envelope_provider_free(q);
    clst_envelope_provider_free(r1);
    clst_envelope_provider_free(r2);
}

static void
test_truncation_and_extension(void **state)
{
    (void)state;
    struct clst_envelope_provider *p = NULL;
    const size_t n = 3 * CHUNK + 100;
    uint8_t *pt = malloc(n);
    assert_non_null(pt);
    fill(pt, n, 11);
    assert_int_equal(clst_envelope_provider_local_new(KEY, &p), CLST_OK);
    struct buf ct = encrypt(p, pt, n, 0, NULL, 0);
    size_t hsize = header_size_of(&ct);

    /* Inside the header, at every byte. */
    for (size_t cut = 0; cut <= hsize; cut++) {
        expect_fail(p, ct.p, cut, pt, 0);
    }
    /* Inside the salt/commitment. */
    for (size_t cut = hsize; cut < hsize + 56; cut += 5) {
        expect_fail(p, ct.p, cut, pt, 0);
    }
    /* At, just before and just after every chunk boundary, and inside the last chunk. */
    for (size_t k = 0; k <= 4; k++) {
        size_t edge = hsize + 56 + k * CT_CHUNK;
        for (size_t d = 0; d < 3; d++) {
            size_t cut = edge + d - 1;
            if (cut < ct.n) {
                /* Full chunks before the cut may be released: never more. */
                size_t full = cut >= edge ? k : (k == 0 ? 0 : k - 1);
                size_t verified = full * CHUNK;
                expect_fail(p, ct.p, cut, pt, verified);
            }
        }
    }
    expect_fail(p, ct.p, ct.n - 1, pt, 3 * CHUNK);
    expect_fail(p, ct.p, ct.n - 16, pt, 3 * CHUNK);
    expect_fail(p, ct.p, ct.n - 17, pt, 3 * CHUNK);

    /* Appended garbage: 1 byte, a tag's worth, a chunk's worth. */
    uint8_t *longer = malloc(ct.n + 2 * CT_CHUNK);
    assert_non_null(longer);
    memcpy(longer, ct.p, ct.n);
    const size_t extra[] = {1, 16, 17, CT_CHUNK, CT_CHUNK + 1};
    for (size_t i = 0; i < sizeof(extra) / sizeof(extra[0]); i++) {
        memset(longer + ct.n, 0, extra[i]);
        expect_fail(p, longer, ct.n + extra[i], pt, n);
        memset(longer + ct.n, 0xff, extra[i]);
        expect_fail(p, longer, ct.n + extra[i], pt, n);
    }
    /* A validly encrypted extra chunk (the same file's chunk 0) after the end. */
    memcpy(longer + ct.n, ct.p + hsize + 56, CT_CHUNK);
    expect_fail(p, longer, ct.n + CT_CHUNK, pt, n);
    /* An empty input. */
    assert_int_equal(expect_fail(p, ct.p, 0, pt, 0), CLST_E_MALFORMED);
    free(longer);
    free(ct.p);
    free(pt);
    clst_envelope_provider_free(p);
}

static void
test_splicing(void **state)
{
    (void)state;
    struct clst_envelope_provider *p = NULL;
    const size_t n = 3 * CHUNK + 100;
    uint8_t *a = malloc(n), *b = malloc(n);
    assert_non_null(a);
    assert_non_null(b);
    fill(a, n, 21);
    fill(b, n, 22);
    assert_int_equal(clst_envelope_provider_local_new(KEY, &p), CLST_OK);
    struct buf ca = encrypt(p, a, n, 0, NULL, 0);
    struct buf cb = encrypt(p, b, n, 0, NULL, 0);
    size_t h = header_size_of(&ca);
    assert_int_equal(header_size_of(&cb), h);
    uint8_t *mix = malloc(ca.n);
    assert_non_null(mix);

    /* Chunk k of B in place of chunk k of A: A's chunks before k may be released, no more. */
    for (size_t k = 0; k < 4; k++) {
        size_t off = h + 56 + k * CT_CHUNK;
        size_t len = k == 3 ? ca.n - off : CT_CHUNK;
        memcpy(mix, ca.p, ca.n);
        memcpy(mix + off, cb.p + off, len);
        expect_fail(p, mix, ca.n, a, k * CHUNK);
    }
    /* A's header on B's body, and A's header + salt/commitment on B's chunks. */
    memcpy(mix, ca.p, ca.n);
    memcpy(mix + h, cb.p + h, ca.n - h);
    expect_fail(p, mix, ca.n, a, 0);
    memcpy(mix, ca.p, ca.n);
    memcpy(mix + h + 56, cb.p + h + 56, ca.n - h - 56);
    expect_fail(p, mix, ca.n, a, 0);
    /* B's wrapped key in A's header. */
    memcpy(mix, ca.p, ca.n);
    memcpy(mix + 16, cb.p + 16, h - 16);
    expect_fail(p, mix, ca.n, a, 0);
    /* Chunks 0 and 1 of A swapped; chunk 0 duplicated. */
    memcpy(mix, ca.p, ca.n);
    memcpy(mix + h + 56, ca.p + h + 56 + CT_CHUNK, CT_CHUNK);
    memcpy(mix + h + 56 + CT_CHUNK, ca.p + h + 56, CT_CHUNK);
    expect_fail(p, mix, ca.n, a, 0);
    memcpy(mix, ca.p, ca.n);
    memcpy(mix + h + 56 + CT_CHUNK, ca.p + h + 56, CT_CHUNK);
    expect_fail(p, mix, ca.n, a, CHUNK);
    /* A chunk dropped from the middle. */
    memcpy(mix, ca.p, h + 56 + CT_CHUNK);
    memcpy(mix + h + 56 + CT_CHUNK, ca.p + h + 56 + 2 * CT_CHUNK, ca.n - h - 56 - 2 * CT_CHUNK);
    expect_fail(p, mix, ca.n - CT_CHUNK, a, CHUNK);

    free(mix);
    free(ca.p);
    free(cb.p);
    free(a);
    free(b);
    clst_envelope_provider_free(p);
}

static void
test_only_verified_chunks_released(void **state)
{
    (void)state;
    struct clst_envelope_provider *p = NULL;
    struct clst_envelope_dec *d = NULL;
    struct clst_err err;
    const size_t n = 4 * CHUNK + 5;
    uint8_t *pt = malloc(n);
    uint8_t *out = malloc(2 * CHUNK);
    assert_non_null(pt);
    assert_non_null(out);
    fill(pt, n, 5);
    assert_int_equal(clst_envelope_provider_local_new(KEY, &p), CLST_OK);
    struct buf ct = encrypt(p, pt, n, 0, NULL, 0);
    size_t h = header_size_of(&ct);
    ct.p[h + 56 + 2 * CT_CHUNK + 100] ^= 0x01; /* chunk 2 */
    assert_int_equal(clst_envelope_dec_new(&p, 1, &d), CLST_OK);
    size_t off = 0, released = 0, m = 0;
    enum clst_status rc = CLST_OK;
    /* Feed 1000 bytes at a time: plaintext appears a whole verified chunk at a time. */
    while (off < ct.n && rc == CLST_OK) {
        size_t take = ct.n - off < 1000 ? ct.n - off : 1000;
        rc = clst_envelope_dec_update(d, ct.p + off, take, out, 2 * CHUNK, &m, &err);
        if (rc == CLST_OK) {
            assert_true(m == 0 || m == CHUNK);
            assert_memory_equal(out, pt + released, m);
            released += m;
        }
        off += take;
    }
    assert_int_equal(rc, CLST_E_VERIFY);
    assert_int_equal(released, 2 * CHUNK);
    assert_non_null(strstr(err.msg, "chunk 2"));
    clst_envelope_dec_free(d);
    free(ct.p);
    free(pt);
    free(out);
    clst_envelope_provider_free(p);
}

static void
test_not_a_clst_file(void **state)
{
    (void)state;
    struct clst_envelope_provider *p = NULL;
    struct clst_err err;
    struct buf out;
    const char *text = "id,amount\n1,100\n2,250\n";
    assert_int_equal(clst_envelope_provider_local_new(KEY, &p), CLST_OK);
    assert_int_equal(decrypt(&p, 1, (const uint8_t *)text, strlen(text), 0, &out, &err),
                     CLST_E_MALFORMED);
    assert_non_null(strstr(err.msg, "not a .clst file"));
    free(out.p);
    /* Just the magic. */
    static const uint8_t magic[8] = {0x89, 'C', 'L', 'S', 'T', 0x0d, 0x0a, 0x1a};
    assert_int_equal(decrypt(&p, 1, magic, 8, 0, &out, &err), CLST_E_MALFORMED);
    assert_non_null(strstr(err.msg, "truncated"));
    free(out.p);
    clst_envelope_provider_free(p);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trips),
        cmocka_unit_test(test_metadata_and_header_access),
        cmocka_unit_test(test_header_bit_flips),
        cmocka_unit_test(test_wrong_keys),
        cmocka_unit_test(test_truncation_and_extension),
        cmocka_unit_test(test_splicing),
        cmocka_unit_test(test_only_verified_chunks_released),
        cmocka_unit_test(test_not_a_clst_file),
    };
    return cmocka_run_group_tests_name("envelope/stream", tests, NULL, NULL);
}
