/*
 * Unit tests for src/envelope/body.c: the C2SP chunked-encryption body (Cobblestone-256).
 *
 * Wycheproof (tests/vectors/wycheproof/c2sp_chunked_encryption_aes_256_gcm_test.json), applied as
 * its doc/c2sp_chunked_encryption.md says:
 *   - streaming decryption with several input split patterns: `valid` vectors must decrypt to
 *     msgLength bytes with SHA-512 msgSha512; `invalid` ones must fail. A PartialPlaintext vector
 *     may release at most its msgLength-byte valid prefix (and the released bytes must be that
 *     prefix when the whole prefix was released); other invalid vectors must release nothing.
 *     After a failure every later update()/final() must fail again with the same status.
 *   - HeaderFailure vectors must fail before any chunk is decrypted; InvalidKeySize ones already
 *     when the key is given (body_dec_new).
 *   - random access (reader_open_body): valid vectors open with the right size and read back
 *     whole and in pieces; invalid vectors must fail to open (the final chunk authenticates the
 *     length) unless they carry ValidFinalChunk, and even then reading everything must fail.
 *   - encryption known answer (method 2 of the doc): re-encrypt each valid message with the key,
 *     context and the vector's salt injected, and compare with `ct` byte for byte.
 * The file has no `acceptable` vectors; the test fails if one appears, so a future copy of the
 * file with such cases gets a decision instead of a silent pass. Raw mode is not implemented
 * (not exposed by the API), so the aeadKey/baseNonce fields are not used.
 *
 * Own tests: chunk-boundary sizes, the 2^38 chunk limit (the counter is jumped through a
 * test-only hook), sticky failures, buffer-size contracts, bad keys and contexts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <cloister/crypto.h>
#include <cloister/envelope.h>

#include "envelope/envelope_int.h"
#include "inflate.h"
#include "test_util.h"

#define VECTORS "wycheproof/c2sp_chunked_encryption_aes_256_gcm_test.json"

struct vec {
    int id;
    const char *comment;
    bool valid;
    bool partial, header_failure, key_size, valid_final, wrong_key_or_ctx;
    uint8_t *key;
    size_t key_size_bytes;
    uint8_t *ctx;
    size_t ctx_size;
    uint8_t *ct;
    size_t ct_size;
    bool has_len;
    size_t msg_len;
    uint8_t sha[64];
};

static bool
has_flag(json_t *t, const char *flag)
{
    json_t *flags = json_object_get(t, "flags");
    size_t i;
    json_t *f;
    json_array_foreach(flags, i, f)
    {
        if (strcmp(json_string_value(f), flag) == 0) {
            return true;
        }
    }
    return false;
}

static void
vec_load(json_t *t, struct vec *v)
{
    size_t n = 0;
    memset(v, 0, sizeof(*v));
    v->id = (int)json_integer_value(json_object_get(t, "tcId"));
    v->comment = json_string_value(json_object_get(t, "comment"));
    const char *result = json_string_value(json_object_get(t, "result"));
    assert_non_null(result);
    /* No `acceptable` vectors exist in this file: make any future one a visible decision. */
    assert_true(strcmp(result, "valid") == 0 || strcmp(result, "invalid") == 0);
    v->valid = strcmp(result, "valid") == 0;
    v->partial = has_flag(t, "PartialPlaintext");
    v->header_failure = has_flag(t, "HeaderFailure");
    v->key_size = has_flag(t, "InvalidKeySize");
    v->valid_final = has_flag(t, "ValidFinalChunk");
    v->wrong_key_or_ctx = has_flag(t, "WrongKey") || has_flag(t, "WrongContext");
    v->key = tu_hex(json_string_value(json_object_get(t, "key")), &v->key_size_bytes);
    v->ctx = tu_hex(json_string_value(json_object_get(t, "ctx")), &v->ctx_size);
    assert_non_null(v->key);
    assert_non_null(v->ctx);
    uint8_t *z = tu_hex(json_string_value(json_object_get(t, "ct")), &n);
    assert_non_null(z);
    assert_int_equal(tinf_zlib_decompress(z, n, &v->ct, &v->ct_size), 0);
    free(z);
    json_t *len = json_object_get(t, "msgLength");
    if (len != NULL) {
        v->has_len = true;
        v->msg_len = (size_t)json_integer_value(len);
        size_t shan = 0;
        uint8_t *sha = tu_hex(json_string_value(json_object_get(t, "msgSha512")), &shan);
        assert_non_null(sha);
        assert_int_equal(shan, 64);
        memcpy(v->sha, sha, 64);
        free(sha);
    }
    /* Valid vectors always state what they decrypt to. */
    assert_true(!v->valid || v->has_len);
}

static void
vec_free(struct vec *v)
{
    free(v->key);
    free(v->ctx);
    free(v->ct);
}

static void
sha512(const uint8_t *p, size_t n, uint8_t out[64])
{
    assert_int_equal(clst_hash(CLST_HASH_SHA512, p, n, out), CLST_OK);
}

/* Streams v->ct in pieces of `step` bytes (0 = all at once). Returns the final status and the
 * plaintext released before it (malloc'ed). */
static enum clst_status
stream_decrypt(const struct vec *v, size_t step, uint8_t **out_pt, size_t *out_pt_size,
               bool *out_failed_at_new)
{
    struct clst_envelope_body *b = NULL;
    struct clst_err err;
    enum clst_status rc;
    uint8_t *pt = malloc(v->ct_size + CLST_ENVELOPE_CHUNK_SIZE);
    uint8_t *tmp = malloc(v->ct_size + 2 * CLST_ENVELOPE_CT_CHUNK_SIZE);
    size_t released = 0, n = 0;
    assert_non_null(pt);
    assert_non_null(tmp);
    *out_failed_at_new = false;

    rc = clst_envelope_body_dec_new(v->key, v->key_size_bytes, v->ctx, v->ctx_size, &b, &err);
    if (rc != CLST_OK) {
        assert_int_equal(err.status, rc);
        *out_failed_at_new = true;
        goto out;
    }
    size_t pos = 0;
    while (pos < v->ct_size) {
        size_t take = step == 0 ? v->ct_size - pos : step;
        if (take > v->ct_size - pos) {
            take = v->ct_size - pos;
        }
        size_t cap = clst_envelope_body_max_output(b, take);
        rc = clst_envelope_body_update(b, v->ct + pos, take, tmp, cap, &n, &err);
        if (rc != CLST_OK) {
            goto failed;
        }
        assert_true(n <= cap);
        memcpy(pt + released, tmp, n);
        released += n;
        pos += take;
    }
    rc = clst_envelope_body_final(b, tmp, CLST_ENVELOPE_CHUNK_SIZE, &n, &err);
    if (rc != CLST_OK) {
        goto failed;
    }
    memcpy(pt + released, tmp, n);
    released += n;
    goto out;
failed:
    assert_int_equal(err.status, rc);
    assert_true(err.msg[0] != '\0');
    {
        /* Sticky: the same status, again and again, whatever comes next. */
        struct clst_err again;
        uint8_t more[CLST_ENVELOPE_CT_CHUNK_SIZE];
        memset(more, 0, sizeof(more));
        assert_int_equal(clst_envelope_body_update(b, more, sizeof(more), tmp,
                                                   2 * CLST_ENVELOPE_CT_CHUNK_SIZE, &n, &again),
                         rc);
        assert_string_equal(again.msg, err.msg);
        assert_int_equal(clst_envelope_body_final(b, tmp, CLST_ENVELOPE_CHUNK_SIZE, &n, &again),
                         rc);
        assert_int_equal(clst_envelope_body_final(b, tmp, CLST_ENVELOPE_CHUNK_SIZE, &n, &again),
                         rc);
    }
out:
    clst_envelope_body_free(b);
    free(tmp);
    *out_pt = pt;
    *out_pt_size = released;
    return rc;
}

static void
check_stream(const struct vec *v, size_t step, uint8_t **keep_pt)
{
    uint8_t *pt = NULL;
    size_t n = 0;
    bool at_new = false;
    uint8_t digest[64];
    enum clst_status rc = stream_decrypt(v, step, &pt, &n, &at_new);

    if (v->valid) {
        if (rc != CLST_OK) {
            fail_msg("tcId %d (%s): valid vector failed with step %zu", v->id, v->comment, step);
        }
        assert_int_equal(n, v->msg_len);
        sha512(pt, n, digest);
        assert_memory_equal(digest, v->sha, 64);
        if (keep_pt != NULL && *keep_pt == NULL) {
            *keep_pt = pt;
            pt = NULL;
        }
    } else {
        if (rc == CLST_OK) {
            fail_msg("tcId %d (%s): invalid vector accepted with step %zu", v->id, v->comment,
                     step);
        }
        if (v->key_size) {
            assert_true(at_new);
            assert_int_equal(rc, CLST_E_INVAL);
        }
        if (v->header_failure) {
            assert_int_equal(n, 0);
            if (v->wrong_key_or_ctx) {
                assert_int_equal(rc, CLST_E_VERIFY);
            }
        }
        if (v->partial) {
            assert_true(v->has_len);
            assert_true(n <= v->msg_len);
            if (n == v->msg_len) {
                sha512(pt, n, digest);
                assert_memory_equal(digest, v->sha, 64);
            }
        } else {
            /* Not a single byte of plaintext from a vector without a valid prefix. */
            assert_int_equal(n, 0);
        }
    }
    free(pt);
}

static void
check_reader(const struct vec *v, const uint8_t *pt)
{
    struct clst_envelope_source src;
    struct clst_envelope_reader *r = NULL;
    struct clst_err err;
    enum clst_status rc;

    clst_envelope_source_mem(v->ct, v->ct_size, &src);
    rc = clst_envelope_reader_open_body(&src, v->key, v->key_size_bytes, v->ctx, v->ctx_size, &r,
                                        &err);
    if (v->valid) {
        assert_int_equal(rc, CLST_OK);
        assert_true(clst_envelope_reader_size(r) == v->msg_len);
        uint8_t *all = malloc(v->msg_len + 1);
        assert_non_null(all);
        assert_int_equal(clst_envelope_reader_read(r, 0, all, v->msg_len, &err), CLST_OK);
        uint8_t digest[64];
        sha512(all, v->msg_len, digest);
        assert_memory_equal(digest, v->sha, 64);
        /* Ranges across chunk boundaries, single bytes, the end, and an empty read. */
        const uint64_t offs[] = {0, 1, 16383, 16384, 16385, 32767, 100000, 4194303};
        for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
            if (offs[i] >= v->msg_len) {
                continue;
            }
            size_t len = v->msg_len - offs[i] < 20000 ? (size_t)(v->msg_len - offs[i]) : 20000;
            uint8_t *part = malloc(len + 1);
            assert_non_null(part);
            assert_int_equal(clst_envelope_reader_read(r, offs[i], part, len, &err), CLST_OK);
            assert_memory_equal(part, pt + offs[i], len);
            assert_int_equal(clst_envelope_reader_read(r, offs[i], part, 1, &err), CLST_OK);
            assert_int_equal(part[0], pt[offs[i]]);
            free(part);
        }
        assert_int_equal(clst_envelope_reader_read(r, v->msg_len, all, 0, &err), CLST_OK);
        /* Past the end: a caller error. */
        assert_int_equal(clst_envelope_reader_read(r, v->msg_len, all, 1, &err), CLST_E_INVAL);
        assert_int_equal(clst_envelope_reader_read(r, 0, all, v->msg_len + 1, &err),
                         CLST_E_INVAL);
        free(all);
        clst_envelope_reader_free(r);
        return;
    }
    if (rc != CLST_OK) {
        assert_null(r);
        return;
    }
    /* Only a vector whose final chunk is valid may get past the length check... */
    if (!v->valid_final) {
        fail_msg("tcId %d (%s): reader opened an invalid vector", v->id, v->comment);
    }
    /* ...and reading the whole message must still fail, and keep failing. */
    uint64_t size = clst_envelope_reader_size(r);
    uint8_t *all = malloc(size + 1);
    assert_non_null(all);
    rc = clst_envelope_reader_read(r, 0, all, (size_t)size, &err);
    assert_int_not_equal(rc, CLST_OK);
    assert_int_equal(clst_envelope_reader_read(r, 0, all, 1, &err), rc);
    free(all);
    clst_envelope_reader_free(r);
}

/* Re-encrypts the message with the vector's salt and compares with ct (known answer). */
static void
check_encrypt(const struct vec *v, const uint8_t *pt, size_t step)
{
    struct clst_envelope_body *b = NULL;
    struct clst_err err;
    uint8_t *out = malloc(v->ct_size + 2 * CLST_ENVELOPE_CT_CHUNK_SIZE);
    size_t pos = 0, n = 0, done = 0;
    assert_non_null(out);
    assert_int_equal(clst_envelope_body_enc_new(v->key, v->key_size_bytes, v->ctx, v->ctx_size,
                                                v->ct, &b, &err),
                     CLST_OK);
    while (done < v->msg_len) {
        size_t take = step == 0 ? v->msg_len - done : step;
        if (take > v->msg_len - done) {
            take = v->msg_len - done;
        }
        size_t cap = clst_envelope_body_max_output(b, take);
        assert_int_equal(clst_envelope_body_update(b, pt + done, take, out + pos, cap, &n, &err),
                         CLST_OK);
        pos += n;
        done += take;
    }
    assert_int_equal(clst_envelope_body_final(b, out + pos, CLST_ENVELOPE_CT_CHUNK_SIZE + 56, &n,
                                              &err),
                     CLST_OK);
    pos += n;
    assert_int_equal(pos, v->ct_size);
    assert_memory_equal(out, v->ct, v->ct_size);
    uint64_t expect = 0;
    assert_int_equal(clst_envelope_body_size(v->msg_len, &expect), CLST_OK);
    assert_true(expect == v->ct_size);
    clst_envelope_body_free(b);
    free(out);
}

static void
test_wycheproof(void **state)
{
    (void)state;
    json_t *root = tu_load_json(VECTORS);
    assert_non_null(root);
    assert_string_equal(json_string_value(json_object_get(root, "algorithm")), "Cobblestone-256");
    size_t gi, ti;
    json_t *g, *t;
    int valid = 0, invalid = 0, partial = 0, header = 0;
    json_array_foreach(json_object_get(root, "testGroups"), gi, g)
    {
        assert_string_equal(json_string_value(json_object_get(g, "aead")), "AEAD_AES_256_GCM");
        assert_string_equal(json_string_value(json_object_get(g, "sha")), "SHA-512");
        json_array_foreach(json_object_get(g, "tests"), ti, t)
        {
            struct vec v;
            vec_load(t, &v);
            uint8_t *pt = NULL;
            const size_t steps[] = {0, 7, 56, 4099, CLST_ENVELOPE_CT_CHUNK_SIZE - 1,
                                    CLST_ENVELOPE_CT_CHUNK_SIZE, CLST_ENVELOPE_CT_CHUNK_SIZE + 1};
            for (size_t s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
                check_stream(&v, steps[s], &pt);
            }
            if (v.ct_size < 100000) {
                check_stream(&v, 1, &pt); /* byte by byte (skipped for the 4 MiB vectors) */
            }
            if (!v.key_size) {
                check_reader(&v, pt);
            }
            if (v.valid) {
                check_encrypt(&v, pt, 0);
                check_encrypt(&v, pt, 5000);
                valid++;
            } else {
                invalid++;
                partial += v.partial;
                header += v.header_failure;
            }
            free(pt);
            vec_free(&v);
        }
    }
    /* Every vector of the file was applied. */
    assert_int_equal(valid, 10);
    assert_int_equal(invalid, 25);
    assert_int_equal(partial, 9);
    assert_int_equal(header, 10);
    json_decref(root);
}

/* ---- own tests ------------------------------------------------------------------------------ */

static const uint8_t KEY[32] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16,
                                17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

static uint8_t *
encrypt_all(const uint8_t *pt, size_t n, const uint8_t *ctx, size_t ctx_size, size_t *out_size)
{
    struct clst_envelope_body *b = NULL;
    struct clst_err err;
    uint64_t total = 0;
    size_t w = 0, m = 0;
    assert_int_equal(clst_envelope_body_size(n, &total), CLST_OK);
    uint8_t *out = malloc((size_t)total + CLST_ENVELOPE_CT_CHUNK_SIZE);
    assert_non_null(out);
    assert_int_equal(clst_envelope_body_enc_new(KEY, 32, ctx, ctx_size, NULL, &b, &err), CLST_OK);
    assert_int_equal(clst_envelope_body_update(b, pt, n, out, clst_envelope_body_max_output(b, n),
                                               &w, &err),
                     CLST_OK);
    assert_int_equal(clst_envelope_body_final(b, out + w, CLST_ENVELOPE_CT_CHUNK_SIZE + 56, &m,
                                              &err),
                     CLST_OK);
    assert_true(w + m == total);
    clst_envelope_body_free(b);
    *out_size = w + m;
    return out;
}

static enum clst_status
decrypt_all(const uint8_t *ct, size_t n, const uint8_t *ctx, size_t ctx_size, uint8_t *pt,
            size_t *pt_size, struct clst_err *err)
{
    struct clst_envelope_body *b = NULL;
    size_t w = 0, m = 0;
    enum clst_status rc = clst_envelope_body_dec_new(KEY, 32, ctx, ctx_size, &b, err);
    if (rc == CLST_OK) {
        rc = clst_envelope_body_update(b, ct, n, pt, clst_envelope_body_max_output(b, n), &w, err);
    }
    if (rc == CLST_OK) {
        rc = clst_envelope_body_final(b, pt + w, CLST_ENVELOPE_CHUNK_SIZE, &m, err);
    }
    if (rc == CLST_OK) {
        *pt_size = w + m;
    }
    clst_envelope_body_free(b);
    return rc;
}

static void
test_boundary_sizes(void **state)
{
    (void)state;
    const size_t sizes[] = {0, 1, 16383, 16384, 16385, 32767, 32768, 32769, 100000};
    uint8_t *pt = malloc(100000);
    uint8_t *back = malloc(100000 + CLST_ENVELOPE_CHUNK_SIZE);
    struct clst_err err;
    assert_non_null(pt);
    assert_non_null(back);
    for (size_t i = 0; i < 100000; i++) {
        pt[i] = (uint8_t)(i * 7 + 3);
    }
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        size_t n = sizes[s], ct_size = 0, got = 0;
        uint8_t *ct = encrypt_all(pt, n, (const uint8_t *)"ctx", 3, &ct_size);
        /* The final chunk is always short: exactly one more chunk than full chunks. */
        size_t chunks = n / CLST_ENVELOPE_CHUNK_SIZE + 1;
        assert_int_equal(ct_size, 56 + n + chunks * 16);
        assert_int_equal(decrypt_all(ct, ct_size, (const uint8_t *)"ctx", 3, back, &got, &err),
                         CLST_OK);
        assert_int_equal(got, n);
        assert_memory_equal(back, pt, n);
        /* Wrong context: the commitment fails before any chunk. */
        assert_int_equal(decrypt_all(ct, ct_size, (const uint8_t *)"ctX", 3, back, &got, &err),
                         CLST_E_VERIFY);
        assert_non_null(strstr(err.msg, "commitment"));
        /* Every truncation fails: inside the prefix, at and around each chunk boundary. */
        for (size_t cut = 0; cut < ct_size; cut += (cut < 60 ? 1 : 997)) {
            assert_int_not_equal(decrypt_all(ct, cut, (const uint8_t *)"ctx", 3, back, &got, &err),
                                 CLST_OK);
        }
        for (size_t k = 0; k < chunks; k++) {
            size_t edge = 56 + k * CLST_ENVELOPE_CT_CHUNK_SIZE;
            for (size_t d = 0; d < 3; d++) {
                if (edge + d < ct_size) {
                    assert_int_not_equal(
                        decrypt_all(ct, edge + d, (const uint8_t *)"ctx", 3, back, &got, &err),
                        CLST_OK);
                }
            }
        }
        /* Appended bytes fail too. */
        uint8_t *longer = malloc(ct_size + 17);
        assert_non_null(longer);
        memcpy(longer, ct, ct_size);
        memset(longer + ct_size, 0, 17);
        for (size_t extra = 1; extra <= 17; extra += 8) {
            assert_int_not_equal(
                decrypt_all(longer, ct_size + extra, (const uint8_t *)"ctx", 3, back, &got, &err),
                CLST_OK);
        }
        free(longer);
        free(ct);
    }
    free(pt);
    free(back);
}

static void
test_every_bit_of_small_body(void **state)
{
    (void)state;
    uint8_t pt[40];
    uint8_t back[CLST_ENVELOPE_CHUNK_SIZE];
    size_t ct_size = 0, got = 0;
    struct clst_err err;
    memset(pt, 0x5a, sizeof(pt));
    uint8_t *ct = encrypt_all(pt, sizeof(pt), NULL, 0, &ct_size);
    for (size_t i = 0; i < ct_size * 8; i++) {
        ct[i / 8] ^= (uint8_t)(1u << (i % 8));
        enum clst_status rc = decrypt_all(ct, ct_size, NULL, 0, back, &got, &err);
        assert_int_equal(rc, CLST_E_VERIFY);
        ct[i / 8] ^= (uint8_t)(1u << (i % 8));
    }
    assert_int_equal(decrypt_all(ct, ct_size, NULL, 0, back, &got, &err), CLST_OK);
    free(ct);
}

static void
test_chunk_limit(void **state)
{
    (void)state;
    struct clst_envelope_body *b = NULL;
    struct clst_err err;
    uint8_t in[CLST_ENVELOPE_CHUNK_SIZE];
    uint8_t out[2 * CLST_ENVELOPE_CT_CHUNK_SIZE + 56];
    size_t n = 0;
    memset(in, 1, sizeof(in));

    /* The last allowed index can still carry the final chunk. */
    assert_int_equal(clst_envelope_body_enc_new(KEY, 32, NULL, 0, NULL, &b, &err), CLST_OK);
    clst_env_body_set_counter(b, CLST_ENVELOPE_MAX_CHUNKS - 1);
    assert_int_equal(clst_envelope_body_update(b, in, 10, out, sizeof(out), &n, &err), CLST_OK);
    assert_int_equal(clst_envelope_body_final(b, out, sizeof(out), &n, &err), CLST_OK);
    clst_envelope_body_free(b);

    /* A full chunk there would push the counter to 2^38: refused, and sticky. */
    assert_int_equal(clst_envelope_body_enc_new(KEY, 32, NULL, 0, NULL, &b, &err), CLST_OK);
    clst_env_body_set_counter(b, CLST_ENVELOPE_MAX_CHUNKS - 1);
    assert_int_equal(clst_envelope_body_update(b, in, sizeof(in), out, sizeof(out), &n, &err),
                     CLST_OK);
    assert_int_equal(clst_envelope_body_final(b, out, sizeof(out), &n, &err), CLST_E_LIMIT);
    assert_int_equal(clst_envelope_body_final(b, out, sizeof(out), &n, &err), CLST_E_LIMIT);
    clst_envelope_body_free(b);

    /* Decryption aborts the same way. */
    size_t ct_size = 0;
    uint8_t *ct = encrypt_all(in, sizeof(in), NULL, 0, &ct_size);
    assert_int_equal(clst_envelope_body_dec_new(KEY, 32, NULL, 0, &b, &err), CLST_OK);
    assert_int_equal(clst_envelope_body_update(b, ct, 56, out, sizeof(out), &n, &err), CLST_OK);
    clst_env_body_set_counter(b, CLST_ENVELOPE_MAX_CHUNKS);
    assert_int_equal(clst_envelope_body_update(b, ct + 56, ct_size - 56, out, sizeof(out), &n,
                                               &err),
                     CLST_E_LIMIT);
    clst_envelope_body_free(b);
    free(ct);

    /* Geometry: sizes past the limit are refused. */
    uint64_t body = 0;
    assert_int_equal(clst_envelope_body_size(CLST_ENVELOPE_MAX_CHUNKS * 16384, &body),
                     CLST_E_LIMIT);
    assert_int_equal(clst_envelope_body_size(CLST_ENVELOPE_MAX_CHUNKS * 16384 - 1, &body),
                     CLST_OK);
}

static void
test_api_contracts(void **state)
{
    (void)state;
    struct clst_envelope_body *b = NULL;
    struct clst_err err;
    uint8_t in[40000];
    uint8_t out[3 * CLST_ENVELOPE_CT_CHUNK_SIZE];
    uint8_t big_ctx[CLST_ENVELOPE_CONTEXT_MAX_SIZE + 1];
    size_t n = 0;
    memset(in, 2, sizeof(in));
    memset(big_ctx, 0, sizeof(big_ctx));

    assert_int_equal(clst_envelope_body_enc_new(KEY, 31, NULL, 0, NULL, &b, &err), CLST_E_INVAL);
    assert_int_equal(clst_envelope_body_dec_new(KEY, 33, NULL, 0, &b, &err), CLST_E_INVAL);
    assert_int_equal(clst_envelope_body_dec_new(NULL, 32, NULL, 0, &b, &err), CLST_E_INVAL);
    assert_int_equal(clst_envelope_body_dec_new(KEY, 32, NULL, 3, &b, &err), CLST_E_INVAL);
    assert_int_equal(clst_envelope_body_enc_new(KEY, 32, big_ctx, sizeof(big_ctx), NULL, &b, &err),
                     CLST_E_LIMIT);
    assert_null(b);
    assert_int_equal(clst_envelope_body_enc_new(KEY, 32, big_ctx, sizeof(big_ctx) - 1, NULL, &b,
                                                &err),
                     CLST_OK);
    /* Output too small: refused without any state change. */
    size_t need = clst_envelope_body_max_output(b, sizeof(in));
    assert_int_equal(need, 56 + 2 * CLST_ENVELOPE_CT_CHUNK_SIZE);
    assert_int_equal(clst_envelope_body_update(b, in, sizeof(in), out, need - 1, &n, &err),
                     CLST_E_LIMIT);
    assert_int_equal(clst_envelope_body_update(b, in, sizeof(in), out, need, &n, &err), CLST_OK);
    assert_int_equal(n, need);
    assert_int_equal(clst_envelope_body_final(b, out, 10, &n, &err), CLST_E_LIMIT);
    assert_int_equal(clst_envelope_body_final(b, out, sizeof(out), &n, &err), CLST_OK);
    assert_int_equal(n, sizeof(in) - 2 * 16384 + 16);
    /* After final: misuse, reported but not a stream failure. */
    assert_int_equal(clst_envelope_body_update(b, in, 1, out, sizeof(out), &n, &err), CLST_E_INVAL);
    assert_int_equal(clst_envelope_body_final(b, out, sizeof(out), &n, &err), CLST_E_INVAL);
    clst_envelope_body_free(b);
    clst_envelope_body_free(NULL);

    /* Two encryptions of the same message differ (fresh salt). */
    size_t s1 = 0, s2 = 0;
    uint8_t *c1 = encrypt_all(in, 100, NULL, 0, &s1);
    uint8_t *c2 = encrypt_all(in, 100, NULL, 0, &s2);
    assert_int_equal(s1, s2);
    assert_memory_not_equal(c1, c2, 24);
    free(c1);
    free(c2);
}

static void
test_failed_output_is_wiped(void **state)
{
    (void)state;
    /* Two good chunks then a bad one in one update: nothing is reported and out is wiped. */
    uint8_t *pt = malloc(3 * 16384);
    assert_non_null(pt);
    memset(pt, 0x41, 3 * 16384);
    size_t ct_size = 0, n = 0;
    uint8_t *ct = encrypt_all(pt, 3 * 16384, NULL, 0, &ct_size);
    ct[56 + 2 * CLST_ENVELOPE_CT_CHUNK_SIZE + 5] ^= 1;
    struct clst_envelope_body *b = NULL;
    struct clst_err err;
    uint8_t *out = malloc(4 * 16384);
    assert_non_null(out);
    memset(out, 0, 4 * 16384);
    assert_int_equal(clst_envelope_body_dec_new(KEY, 32, NULL, 0, &b, &err), CLST_OK);
    n = 12345;
    assert_int_equal(clst_envelope_body_update(b, ct, ct_size, out, 4 * 16384, &n, &err),
                     CLST_E_VERIFY);
    assert_int_equal(n, 12345);
    for (size_t i = 0; i < 4 * 16384; i++) {
        assert_int_equal(out[i], 0);
    }
    assert_non_null(strstr(err.msg, "chunk 2"));
    clst_envelope_body_free(b);
    free(out);
    free(ct);
    free(pt);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wycheproof),
        cmocka_unit_test(test_boundary_sizes),
        cmocka_unit_test(test_every_bit_of_small_body),
        cmocka_unit_test(test_chunk_limit),
        cmocka_unit_test(test_api_contracts),
        cmocka_unit_test(test_failed_output_is_wiped),
    };
    return cmocka_run_group_tests_name("envelope/body", tests, NULL, NULL);
}
