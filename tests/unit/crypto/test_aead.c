/*
 * Unit tests for src/crypto/aead.c (AES-GCM).
 *
 * Wycheproof aes_gcm_test.json, all key sizes:
 * - every "valid" case must seal to exactly `ct` || `tag` (one-shot and through a context) and
 *   open back to `msg`; each of its bytes of ciphertext, tag, AAD and nonce is then flipped (and
 *   the ciphertext truncated and extended, the AAD extended) and each mutant must fail to open
 *   with CLST_E_VERIFY and a wiped output;
 * - every "invalid" case must fail to open (ModifiedTag: CLST_E_VERIFY, output wiped;
 *   ZeroLengthIv: CLST_E_INVAL, and sealing with an empty nonce is refused too);
 * - the file has no "acceptable" cases (asserted);
 * - not applicable: the 3 valid LongIv cases with a 257-byte (2056-bit) IV exceed the 1..128-byte
 *   nonces crypto.h accepts (OpenSSL's GCM_IV_MAX_SIZE); the test asserts that seal and open
 *   refuse them with CLST_E_INVAL and that there are exactly 3.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <cloister/crypto.h>

#include "test_util.h"

#define TAG CLST_GCM_TAG_SIZE

struct vec {
    int id;
    const char *result;
    uint8_t *key, *iv, *aad, *msg, *ct, *tag;
    size_t key_size, iv_size, aad_size, msg_size, ct_size, tag_size;
};

static uint8_t *
hex_field(json_t *t, const char *name, size_t *size)
{
    const char *s = json_string_value(json_object_get(t, name));
    assert_non_null(s);
    uint8_t *p = tu_hex(s, size);
    assert_non_null(p);
    return p;
}

static void
vec_load(json_t *t, struct vec *v)
{
    v->id = (int)json_integer_value(json_object_get(t, "tcId"));
    v->result = json_string_value(json_object_get(t, "result"));
    assert_non_null(v->result);
    v->key = hex_field(t, "key", &v->key_size);
    v->iv = hex_field(t, "iv", &v->iv_size);
    v->aad = hex_field(t, "aad", &v->aad_size);
    v->msg = hex_field(t, "msg", &v->msg_size);
    v->ct = hex_field(t, "ct", &v->ct_size);
    v->tag = hex_field(t, "tag", &v->tag_size);
}

static void
vec_free(struct vec *v)
{
    free(v->key);
    free(v->iv);
    free(v->aad);
    free(v->msg);
    free(v->ct);
    free(v->tag);
}

static bool
all_zero(const uint8_t *p, size_t n)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++) {
        acc |= p[i];
    }
    return acc == 0;
}

/* Opens (nonce, aad, ct, tag) with `a`, expecting CLST_E_VERIFY and a wiped output. */
static void
expect_forgery(struct clst_aead *a, const uint8_t *nonce, size_t nonce_size, const uint8_t *aad,
               size_t aad_size, const uint8_t *ct, size_t ct_size, const uint8_t *tag,
               size_t tag_size, int id, const char *what)
{
    uint8_t *out = malloc(ct_size + 1);
    assert_non_null(out);
    memset(out, 0xA5, ct_size + 1);
    enum clst_status rc =
        clst_aead_open(a, nonce, nonce_size, aad, aad_size, ct, ct_size, tag, tag_size, out);
    if (rc != CLST_E_VERIFY) {
        fail_msg("tcId %d: %s: open gave status %d, want CLST_E_VERIFY", id, what, rc);
    }
    if (!all_zero(out, ct_size)) {
        fail_msg("tcId %d: %s: output not wiped after a failed open", id, what);
    }
    free(out);
}

/* The mutations applied to every valid vector. */
static void
mutate_valid(struct clst_aead *a, const struct vec *v)
{
    uint8_t *ct = malloc(v->ct_size + 1);
    uint8_t *aad = malloc(v->aad_size + 1);
    uint8_t *nonce = malloc(v->iv_size);
    uint8_t tag[TAG];

    assert_non_null(ct);
    assert_non_null(aad);
    assert_non_null(nonce);
    memcpy(ct, v->ct, v->ct_size);
    memcpy(aad, v->aad, v->aad_size);
    memcpy(nonce, v->iv, v->iv_size);
    memcpy(tag, v->tag, TAG);

    for (size_t i = 0; i < v->ct_size; i++) {
        ct[i] ^= (uint8_t)(1u << (i % 8));
        expect_forgery(a, v->iv, v->iv_size, v->aad, v->aad_size, ct, v->ct_size, v->tag, TAG,
                       v->id, "ciphertext bit flip");
        ct[i] = v->ct[i];
    }
    for (size_t i = 0; i < TAG; i++) {
        tag[i] ^= (uint8_t)(0x80u >> (i % 8));
        expect_forgery(a, v->iv, v->iv_size, v->aad, v->aad_size, v->ct, v->ct_size, tag, TAG,
                       v->id, "tag bit flip");
        tag[i] = v->tag[i];
    }
    for (size_t i = 0; i < v->aad_size; i++) {
        aad[i] ^= (uint8_t)(1u << (i % 8));
        expect_forgery(a, v->iv, v->iv_size, aad, v->aad_size, v->ct, v->ct_size, v->tag, TAG,
                       v->id, "aad bit flip");
        aad[i] = v->aad[i];
    }
    for (size_t i = 0; i < v->iv_size; i++) {
        nonce[i] ^= (uint8_t)(1u << (i % 8));
        expect_forgery(a, nonce, v->iv_size, v->aad, v->aad_size, v->ct, v->ct_size, v->tag, TAG,
                       v->id, "nonce bit flip");
        nonce[i] = v->iv[i];
    }
    /* Truncated and extended ciphertext, extended AAD, AAD moved into the ciphertext. */
    if (v->ct_size > 0) {
        expect_forgery(a, v->iv, v->iv_size, v->aad, v->aad_size, v->ct, v->ct_size - 1, v->tag,
                       TAG, v->id, "truncated ciphertext");
    }
    ct[v->ct_size] = 0;
    expect_forgery(a, v->iv, v->iv_size, v->aad, v->aad_size, ct, v->ct_size + 1, v->tag, TAG,
                   v->id, "extended ciphertext");
    aad[v->aad_size] = 0;
    expect_forgery(a, v->iv, v->iv_size, aad, v->aad_size + 1, v->ct, v->ct_size, v->tag, TAG,
                   v->id, "extended aad");
    /* The context still works after all those failures. */
    uint8_t *pt = malloc(v->ct_size + 1);
    assert_non_null(pt);
    assert_int_equal(clst_aead_open(a, v->iv, v->iv_size, v->aad, v->aad_size, v->ct, v->ct_size,
                                    v->tag, TAG, pt),
                     CLST_OK);
    assert_memory_equal(pt, v->msg, v->msg_size);
    free(pt);
    free(ct);
    free(aad);
    free(nonce);
}

static void
check_valid(const struct vec *v)
{
    uint8_t *out = malloc(v->msg_size + 1);
    uint8_t tag[TAG];
    struct clst_aead *a = NULL;

    assert_non_null(out);
    assert_int_equal(v->tag_size, TAG);
    assert_int_equal(v->ct_size, v->msg_size);

    /* One-shot. */
    memset(tag, 0, sizeof(tag));
    if (clst_aes_gcm_seal(v->key, v->key_size, v->iv, v->iv_size, v->aad, v->aad_size, v->msg,
                          v->msg_size, out, tag, TAG) != CLST_OK ||
        memcmp(out, v->ct, v->ct_size) != 0 || memcmp(tag, v->tag, TAG) != 0) {
        fail_msg("tcId %d: one-shot seal does not give the expected ct/tag", v->id);
    }
    memset(out, 0, v->msg_size + 1);
    if (clst_aes_gcm_open(v->key, v->key_size, v->iv, v->iv_size, v->aad, v->aad_size, v->ct,
                          v->ct_size, v->tag, TAG, out) != CLST_OK ||
        memcmp(out, v->msg, v->msg_size) != 0) {
        fail_msg("tcId %d: one-shot open failed", v->id);
    }

    /*
     * Through a context: seal, open, seal again (the context is reusable in both directions).
     * Before each round the context is used once with another nonce size, so the vector's nonce
     * size is always a change of IV length on a used context, checked against known answers.
     */
    assert_int_equal(clst_aead_new(v->key, v->key_size, &a), CLST_OK);
    for (int round = 0; round < 2; round++) {
        static const uint8_t other_nonce[16] = {1, 2, 3};
        size_t other_size = v->iv_size == 12 ? (round == 0 ? 16 : 7) : 12;
        assert_int_equal(
            clst_aead_seal(a, other_nonce, other_size, NULL, 0, v->msg, v->msg_size, out, tag, TAG),
            CLST_OK);
        memset(out, 0, v->msg_size + 1);
        memset(tag, 0, sizeof(tag));
        assert_int_equal(clst_aead_seal(a, v->iv, v->iv_size, v->aad, v->aad_size, v->msg,
                                        v->msg_size, out, tag, TAG),
                         CLST_OK);
        assert_memory_equal(out, v->ct, v->ct_size);
        assert_memory_equal(tag, v->tag, TAG);
        memset(out, 0, v->msg_size + 1);
        assert_int_equal(clst_aead_open(a, v->iv, v->iv_size, v->aad, v->aad_size, v->ct,
                                        v->ct_size, v->tag, TAG, out),
                         CLST_OK);
        assert_memory_equal(out, v->msg, v->msg_size);
    }
    mutate_valid(a, v);
    clst_aead_free(a);
    free(out);
}

static void
test_wycheproof(void **state)
{
    (void)state;
    json_t *root = tu_load_json("wycheproof/aes_gcm_test.json");
    size_t valid = 0, invalid = 0, acceptable = 0, long_iv = 0, total = 0;
    size_t key_sizes_seen[33] = {0};

    assert_non_null(root);
    assert_string_equal(json_string_value(json_object_get(root, "algorithm")), "AES-GCM");
    size_t gi;
    json_t *group;
    json_array_foreach(json_object_get(root, "testGroups"), gi, group)
    {
        size_t ti;
        json_t *t;
        json_array_foreach(json_object_get(group, "tests"), ti, t)
        {
            struct vec v;
            vec_load(t, &v);
            total++;
            assert_true(v.key_size == 16 || v.key_size == 24 || v.key_size == 32);
            key_sizes_seen[v.key_size]++;
            uint8_t *out = malloc(v.ct_size + 1);
            uint8_t tag[TAG];
            assert_non_null(out);

            if (strcmp(v.result, "valid") == 0 && v.iv_size > 128) {
                /* Not applicable (see the header comment): refused, never mis-processed. */
                long_iv++;
                assert_int_equal(clst_aes_gcm_seal(v.key, v.key_size, v.iv, v.iv_size, v.aad,
                                                   v.aad_size, v.msg, v.msg_size, out, tag, TAG),
                                 CLST_E_INVAL);
                assert_int_equal(clst_aes_gcm_open(v.key, v.key_size, v.iv, v.iv_size, v.aad,
                                                   v.aad_size, v.ct, v.ct_size, v.tag, TAG, out),
                                 CLST_E_INVAL);
            } else if (strcmp(v.result, "valid") == 0) {
                valid++;
                check_valid(&v);
            } else if (strcmp(v.result, "invalid") == 0) {
                invalid++;
                memset(out, 0xA5, v.ct_size + 1);
                enum clst_status rc =
                    clst_aes_gcm_open(v.key, v.key_size, v.iv, v.iv_size, v.aad, v.aad_size, v.ct,
                                      v.ct_size, v.tag, v.tag_size, out);
                if (v.iv_size == 0) {
                    if (rc != CLST_E_INVAL) {
                        fail_msg("tcId %d: empty nonce: open gave %d", v.id, rc);
                    }
                    /* Sealing with an empty nonce (which leaks the GHASH key) is refused. */
                    assert_int_equal(clst_aes_gcm_seal(v.key, v.key_size, v.iv, 0, v.aad,
                                                       v.aad_size, v.msg, v.msg_size, out, tag,
                                                       TAG),
                                     CLST_E_INVAL);
                } else {
                    if (rc != CLST_E_VERIFY) {
                        fail_msg("tcId %d: invalid vector: open gave %d", v.id, rc);
                    }
                    if (!all_zero(out, v.ct_size)) {
                        fail_msg("tcId %d: output not wiped", v.id);
                    }
                    /* These are valid ciphertexts with a modified tag: sealing msg gives ct
                     * and a tag different from the one in the vector. */
                    assert_int_equal(clst_aes_gcm_seal(v.key, v.key_size, v.iv, v.iv_size, v.aad,
                                                       v.aad_size, v.msg, v.msg_size, out, tag,
                                                       TAG),
                                     CLST_OK);
                    assert_memory_equal(out, v.ct, v.ct_size);
                    assert_memory_not_equal(tag, v.tag, TAG);
                }
            } else {
                acceptable++;
            }
            free(out);
            vec_free(&v);
        }
    }
    assert_int_equal(total, (size_t)json_integer_value(json_object_get(root, "numberOfTests")));
    assert_int_equal(valid + long_iv, 229);
    assert_int_equal(long_iv, 3);
    assert_int_equal(invalid, 87);
    assert_int_equal(acceptable, 0);
    /* All three key sizes were exercised. */
    assert_true(key_sizes_seen[16] > 0 && key_sizes_seen[24] > 0 && key_sizes_seen[32] > 0);
    json_decref(root);
}

/* A deterministic byte pattern (xorshift) so failures are reproducible. */
static void
pattern(uint8_t *p, size_t n, uint32_t seed)
{
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (uint8_t)x;
    }
}

/*
 * One context, many messages: sizes 0..~5000, nonce sizes changing between calls (12 is the
 * fast path; 1, 8, 16, 60 and 128 take the IV-length change), seal and open interleaved, with
 * failed opens in between. Every result must equal the one-shot form (a fresh context).
 */
static void
test_context_reuse(void **state)
{
    (void)state;
    static const size_t nonce_sizes[] = {12, 12, 8, 12, 16, 1, 128, 12, 60, 12};
    const size_t max = 5000;
    uint8_t key[32], nonce[128], aad[64];
    uint8_t *msg = malloc(max), *ct = malloc(max + 1), *ref = malloc(max + 1),
            *pt = malloc(max + 1);
    uint8_t tag[TAG], ref_tag[TAG];
    struct clst_aead *a = NULL;

    assert_non_null(msg);
    assert_non_null(ct);
    assert_non_null(ref);
    assert_non_null(pt);
    pattern(key, sizeof(key), 1);
    assert_int_equal(clst_aead_new(key, sizeof(key), &a), CLST_OK);
    for (uint32_t i = 0; i < 600; i++) {
        size_t size = (size_t)(i * 37u) % max;
        size_t nsize = nonce_sizes[i % (sizeof(nonce_sizes) / sizeof(nonce_sizes[0]))];
        size_t aad_size = i % 3 == 0 ? 0 : (size_t)(i % sizeof(aad));
        pattern(msg, size, i + 7);
        pattern(aad, sizeof(aad), i + 11);
        memset(nonce, 0, sizeof(nonce));
        clst_put_be32(nonce + (nsize >= 4 ? nsize - 4 : 0), i); /* counter nonce */
        if (nsize < 4) {
            nonce[0] = (uint8_t)i;
        }

        assert_int_equal(clst_aead_seal(a, nonce, nsize, aad, aad_size, msg, size, ct, tag, TAG),
                         CLST_OK);
        assert_int_equal(clst_aes_gcm_seal(key, sizeof(key), nonce, nsize, aad, aad_size, msg, size,
                                           ref, ref_tag, TAG),
                         CLST_OK);
        if (memcmp(ct, ref, size) != 0 || memcmp(tag, ref_tag, TAG) != 0) {
            fail_msg("message %u (size %zu, nonce %zu): reused context differs from one-shot", i,
                     size, nsize);
        }
        if (size >= 8) { /* shorter ones could coincide by chance */
            assert_memory_not_equal(ct, msg, size);
        }
        if (i % 5 == 0) {
            /* A failed open must not disturb the next operation. */
            tag[0] ^= 1;
            assert_int_equal(clst_aead_open(a, nonce, nsize, aad, aad_size, ct, size, tag, TAG, pt),
                             CLST_E_VERIFY);
            tag[0] ^= 1;
        }
        memset(pt, 0, max + 1);
        assert_int_equal(clst_aead_open(a, nonce, nsize, aad, aad_size, ct, size, tag, TAG, pt),
                         CLST_OK);
        assert_memory_equal(pt, msg, size);
        /* Exactly nsize nonce bytes are used: bytes after them make no difference. */
        if (nsize < sizeof(nonce)) {
            nonce[nsize] ^= 0xFF;
            assert_int_equal(
                clst_aead_seal(a, nonce, nsize, aad, aad_size, msg, size, ref, ref_tag, TAG),
                CLST_OK);
            assert_memory_equal(ref, ct, size);
            assert_memory_equal(ref_tag, tag, TAG);
        }
    }
    /* Same key, same nonce, same message: same output (no hidden state carried over). */
    pattern(msg, 100, 3);
    memset(nonce, 7, 12);
    assert_int_equal(clst_aead_seal(a, nonce, 12, NULL, 0, msg, 100, ct, tag, TAG), CLST_OK);
    assert_int_equal(clst_aead_seal(a, nonce, 12, NULL, 0, msg, 100, ref, ref_tag, TAG), CLST_OK);
    assert_memory_equal(ct, ref, 100);
    assert_memory_equal(tag, ref_tag, TAG);
    /* A different nonce changes both. */
    nonce[11] ^= 1;
    assert_int_equal(clst_aead_seal(a, nonce, 12, NULL, 0, msg, 100, ref, ref_tag, TAG), CLST_OK);
    assert_memory_not_equal(ct, ref, 100);
    assert_memory_not_equal(tag, ref_tag, TAG);

    /* A different key does not open it. */
    struct clst_aead *b = NULL;
    key[0] ^= 1;
    assert_int_equal(clst_aead_new(key, sizeof(key), &b), CLST_OK);
    nonce[11] ^= 1;
    memset(pt, 0xA5, 100);
    assert_int_equal(clst_aead_open(b, nonce, 12, NULL, 0, ct, 100, tag, TAG, pt), CLST_E_VERIFY);
    assert_true(all_zero(pt, 100));
    assert_int_equal(clst_aead_open(a, nonce, 12, NULL, 0, ct, 100, tag, TAG, pt), CLST_OK);
    assert_memory_equal(pt, msg, 100);
    clst_aead_free(b);

    clst_aead_free(a);
    free(msg);
    free(ct);
    free(ref);
    free(pt);
}

static void
test_in_place(void **state)
{
    (void)state;
    uint8_t key[16], nonce[12], aad[5] = {'h', 'd', 'r', '0', '1'};
    uint8_t msg[1000], buf[1000], ref[1000], tag[TAG], ref_tag[TAG];
    struct clst_aead *a = NULL;

    pattern(key, sizeof(key), 5);
    pattern(nonce, sizeof(nonce), 6);
    pattern(msg, sizeof(msg), 7);
    assert_int_equal(clst_aead_new(key, sizeof(key), &a), CLST_OK);
    assert_int_equal(clst_aead_seal(a, nonce, 12, aad, 5, msg, sizeof(msg), ref, ref_tag, TAG),
                     CLST_OK);

    memcpy(buf, msg, sizeof(buf));
    assert_int_equal(clst_aead_seal(a, nonce, 12, aad, 5, buf, sizeof(buf), buf, tag, TAG),
                     CLST_OK);
    assert_memory_equal(buf, ref, sizeof(buf));
    assert_memory_equal(tag, ref_tag, TAG);
    assert_int_equal(clst_aead_open(a, nonce, 12, aad, 5, buf, sizeof(buf), tag, TAG, buf),
                     CLST_OK);
    assert_memory_equal(buf, msg, sizeof(buf));

    /* In-place one-shot forms. */
    memcpy(buf, msg, sizeof(buf));
    assert_int_equal(clst_aes_gcm_seal(key, 16, nonce, 12, aad, 5, buf, sizeof(buf), buf, tag, TAG),
                     CLST_OK);
    assert_memory_equal(buf, ref, sizeof(buf));
    assert_int_equal(clst_aes_gcm_open(key, 16, nonce, 12, aad, 5, buf, sizeof(buf), tag, TAG, buf),
                     CLST_OK);
    assert_memory_equal(buf, msg, sizeof(buf));

    /* A failed in-place open wipes the buffer: no unauthenticated plaintext is left. */
    memcpy(buf, ref, sizeof(buf));
    buf[500] ^= 4;
    assert_int_equal(clst_aead_open(a, nonce, 12, aad, 5, buf, sizeof(buf), tag, TAG, buf),
                     CLST_E_VERIFY);
    assert_true(all_zero(buf, sizeof(buf)));

    /* Partially overlapping buffers are refused before anything is written. */
    memcpy(buf, msg, sizeof(buf));
    assert_int_equal(clst_aead_seal(a, nonce, 12, aad, 5, buf, 500, buf + 1, tag, TAG),
                     CLST_E_INVAL);
    assert_int_equal(clst_aead_seal(a, nonce, 12, aad, 5, buf + 1, 500, buf, tag, TAG),
                     CLST_E_INVAL);
    assert_int_equal(clst_aead_open(a, nonce, 12, aad, 5, buf + 499, 500, tag, TAG, buf),
                     CLST_E_INVAL);
    assert_memory_equal(buf, msg, sizeof(buf));
    /* Adjacent (non-overlapping) buffers are fine. */
    assert_int_equal(clst_aead_seal(a, nonce, 12, aad, 5, buf, 500, buf + 500, tag, TAG), CLST_OK);
    assert_memory_equal(buf + 500, ref, 500);
    clst_aead_free(a);
}

/* Tags of 12..16 bytes are the leading bytes of the full tag; 11 and 17 are refused. */
static void
test_tag_sizes(void **state)
{
    (void)state;
    uint8_t key[24], nonce[12], msg[40], ct[40], pt[40], full[TAG], tag[TAG + 1];
    struct clst_aead *a = NULL;

    pattern(key, sizeof(key), 9);
    pattern(nonce, sizeof(nonce), 10);
    pattern(msg, sizeof(msg), 11);
    assert_int_equal(clst_aead_new(key, sizeof(key), &a), CLST_OK);
    assert_int_equal(clst_aead_seal(a, nonce, 12, NULL, 0, msg, 40, ct, full, TAG), CLST_OK);
    for (size_t ts = CLST_GCM_MIN_TAG_SIZE; ts <= TAG; ts++) {
        memset(tag, 0xEE, sizeof(tag));
        assert_int_equal(clst_aead_seal(a, nonce, 12, NULL, 0, msg, 40, ct, tag, ts), CLST_OK);
        assert_memory_equal(tag, full, ts);
        assert_int_equal(tag[ts], 0xEE); /* nothing written past tag_size */
        assert_int_equal(clst_aead_open(a, nonce, 12, NULL, 0, ct, 40, tag, ts, pt), CLST_OK);
        assert_memory_equal(pt, msg, 40);
        tag[ts - 1] ^= 1;
        expect_forgery(a, nonce, 12, NULL, 0, ct, 40, tag, ts, 0, "short tag flip");
    }
    for (size_t ts = 0; ts < CLST_GCM_MIN_TAG_SIZE; ts++) {
        assert_int_equal(clst_aead_seal(a, nonce, 12, NULL, 0, msg, 40, ct, tag, ts), CLST_E_INVAL);
        assert_int_equal(clst_aead_open(a, nonce, 12, NULL, 0, ct, 40, full, ts, pt), CLST_E_INVAL);
    }
    assert_int_equal(clst_aead_seal(a, nonce, 12, NULL, 0, msg, 40, ct, tag, 17), CLST_E_INVAL);
    assert_int_equal(clst_aead_open(a, nonce, 12, NULL, 0, ct, 40, tag, 17, pt), CLST_E_INVAL);
    clst_aead_free(a);
}

static void
test_arguments(void **state)
{
    (void)state;
    uint8_t key[33] = {0}, nonce[129] = {0}, msg[16] = {0}, out[16], tag[TAG] = {0};
    struct clst_aead *a = NULL;

    /* Key sizes other than 16, 24, 32. */
    static const size_t bad_keys[] = {0, 1, 15, 17, 23, 25, 31, 33};
    for (size_t i = 0; i < sizeof(bad_keys) / sizeof(bad_keys[0]); i++) {
        assert_int_equal(clst_aead_new(key, bad_keys[i], &a), CLST_E_INVAL);
        assert_null(a);
        assert_int_equal(
            clst_aes_gcm_seal(key, bad_keys[i], nonce, 12, NULL, 0, msg, 16, out, tag, TAG),
            CLST_E_INVAL);
        assert_int_equal(
            clst_aes_gcm_open(key, bad_keys[i], nonce, 12, NULL, 0, msg, 16, tag, TAG, out),
            CLST_E_INVAL);
    }
    assert_int_equal(clst_aead_new(NULL, 32, &a), CLST_E_INVAL);
    assert_int_equal(clst_aead_new(key, 32, NULL), CLST_E_INVAL);
    clst_aead_free(NULL);

    assert_int_equal(clst_aead_new(key, 32, &a), CLST_OK);
    assert_non_null(a);
    assert_int_equal(clst_aead_seal(NULL, nonce, 12, NULL, 0, msg, 16, out, tag, TAG),
                     CLST_E_INVAL);
    assert_int_equal(clst_aead_open(NULL, nonce, 12, NULL, 0, msg, 16, tag, TAG, out),
                     CLST_E_INVAL);
    /* Nonces: NULL, empty, longer than 128 bytes; 1 and 128 work. */
    assert_int_equal(clst_aead_seal(a, NULL, 12, NULL, 0, msg, 16, out, tag, TAG), CLST_E_INVAL);
    assert_int_equal(clst_aead_seal(a, nonce, 0, NULL, 0, msg, 16, out, tag, TAG), CLST_E_INVAL);
    assert_int_equal(clst_aead_seal(a, nonce, 129, NULL, 0, msg, 16, out, tag, TAG), CLST_E_INVAL);
    assert_int_equal(clst_aead_open(a, nonce, 129, NULL, 0, msg, 16, tag, TAG, out), CLST_E_INVAL);
    assert_int_equal(clst_aead_open(a, nonce, 0, NULL, 0, msg, 16, tag, TAG, out), CLST_E_INVAL);
    assert_int_equal(clst_aead_seal(a, nonce, 1, NULL, 0, msg, 16, out, tag, TAG), CLST_OK);
    assert_int_equal(clst_aead_open(a, nonce, 1, NULL, 0, out, 16, tag, TAG, out), CLST_OK);
    assert_memory_equal(out, msg, 16);
    assert_int_equal(clst_aead_seal(a, nonce, 128, NULL, 0, msg, 16, out, tag, TAG), CLST_OK);
    assert_int_equal(clst_aead_open(a, nonce, 128, NULL, 0, out, 16, tag, TAG, out), CLST_OK);
    /* NULL buffers with non-zero sizes. */
    assert_int_equal(clst_aead_seal(a, nonce, 12, NULL, 3, msg, 16, out, tag, TAG), CLST_E_INVAL);
    assert_int_equal(clst_aead_seal(a, nonce, 12, NULL, 0, NULL, 16, out, tag, TAG), CLST_E_INVAL);
    assert_int_equal(clst_aead_seal(a, nonce, 12, NULL, 0, msg, 16, NULL, tag, TAG), CLST_E_INVAL);
    assert_int_equal(clst_aead_seal(a, nonce, 12, NULL, 0, msg, 16, out, NULL, TAG), CLST_E_INVAL);
    assert_int_equal(clst_aead_open(a, nonce, 12, NULL, 0, msg, 16, NULL, TAG, out), CLST_E_INVAL);
    assert_int_equal(clst_aead_open(a, nonce, 12, NULL, 0, msg, 16, tag, TAG, NULL), CLST_E_INVAL);
#if SIZE_MAX > 0xFFFFFFFFu
    /* SP 800-38D's 2^39 - 256 bit limit, checked before any byte is touched (in place, so the
     * overlap check does not come first). */
    const size_t too_big = ((size_t)1 << 36) - 31;
    assert_int_equal(clst_aead_seal(a, nonce, 12, NULL, 0, msg, too_big, msg, tag, TAG),
                     CLST_E_LIMIT);
    assert_int_equal(clst_aead_open(a, nonce, 12, NULL, 0, msg, too_big, tag, TAG, msg),
                     CLST_E_LIMIT);
#endif
    /* Empty message and AAD (a bare GMAC tag): buffers may be NULL. */
    assert_int_equal(clst_aead_seal(a, nonce, 12, NULL, 0, NULL, 0, NULL, tag, TAG), CLST_OK);
    assert_int_equal(clst_aead_open(a, nonce, 12, NULL, 0, NULL, 0, tag, TAG, NULL), CLST_OK);
    tag[3] ^= 1;
    assert_int_equal(clst_aead_open(a, nonce, 12, NULL, 0, NULL, 0, tag, TAG, NULL), CLST_E_VERIFY);
    clst_aead_free(a);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wycheproof), cmocka_unit_test(test_context_reuse),
        cmocka_unit_test(test_in_place),   cmocka_unit_test(test_tag_sizes),
        cmocka_unit_test(test_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
