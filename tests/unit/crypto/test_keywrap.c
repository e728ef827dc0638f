/*
 * Unit tests for src/crypto/keywrap.c: AES-KW (RFC 3394) and AES-KWP (RFC 5649).
 *
 * Wycheproof aes_wrap_test.json and aes_kwp_test.json, all KEK sizes:
 * - every "valid" case must wrap `msg` to exactly `ct` and unwrap `ct` to `msg`; then every byte
 *   of `ct` is flipped, the last semiblock dropped, and a wrong KEK used: each must fail with
 *   CLST_E_VERIFY (or CLST_E_MALFORMED when the size can no longer be a wrapped key) and leave
 *   the output wiped;
 * - every "invalid" case must fail to unwrap: CLST_E_MALFORMED when the ciphertext size cannot
 *   be the output of wrap, CLST_E_VERIFY (output wiped) otherwise; when `msg` has a size the
 *   mode cannot wrap, wrapping it must be refused with CLST_E_INVAL;
 * - "acceptable" cases: aes_wrap_test.json has 3 (ShortKey: an 8-byte key wrapped as one AES
 *   block, allowed by RFC 3394 but not by NIST SP 800-38F). crypto.h's KW takes 16 bytes or
 *   more, so they are rejected: wrap gives CLST_E_INVAL and unwrap CLST_E_MALFORMED; the test
 *   asserts there are exactly 3. aes_kwp_test.json has none (asserted).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <limits.h>
#include <stdint.h>

#include <cmocka.h>

#include <cloister/crypto.h>

#include "test_util.h"

typedef enum clst_status (*wrap_fn)(const uint8_t *, size_t, const uint8_t *, size_t, uint8_t *,
                                    size_t, size_t *);

struct mode {
    const char *name;
    bool pad;
    wrap_fn wrap;
    wrap_fn unwrap;
};

static const struct mode kw = {"KW", false, clst_aes_kw_wrap, clst_aes_kw_unwrap};
static const struct mode kwp = {"KWP", true, clst_aes_kwp_wrap, clst_aes_kwp_unwrap};

static size_t
unhex(const char *hex, uint8_t *out, size_t cap)
{
    size_t size = 0;
    uint8_t *p = tu_hex(hex, &size);
    assert_non_null(p);
    assert_true(size <= cap);
    memcpy(out, p, size);
    free(p);
    return size;
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

/* Can `size` bytes be the output of wrap in this mode? */
static bool
wrapped_size_ok(const struct mode *m, size_t size)
{
    return size % 8 == 0 && size >= (m->pad ? 16u : 24u);
}

/* Can `size` bytes be wrapped in this mode? */
static bool
plain_size_ok(const struct mode *m, size_t size)
{
    return m->pad ? size > 0 : (size >= 16 && size % 8 == 0);
}

/* Unwrap that must fail: the status follows from the size; the output is wiped on VERIFY. */
static void
expect_unwrap_failure(const struct mode *m, const uint8_t *kek, size_t kek_size, const uint8_t *ct,
                      size_t ct_size, int id, const char *what)
{
    size_t cap = ct_size + 8;
    uint8_t *out = malloc(cap);
    size_t out_size = 12345;
    enum clst_status want = wrapped_size_ok(m, ct_size) ? CLST_E_VERIFY : CLST_E_MALFORMED;

    assert_non_null(out);
    memset(out, 0xA5, cap);
    enum clst_status rc = m->unwrap(kek, kek_size, ct, ct_size, out, cap, &out_size);
    if (rc != want) {
        fail_msg("%s tcId %d: %s: unwrap gave %d, want %d", m->name, id, what, rc, want);
    }
    assert_int_equal(out_size, 12345); /* not written on failure */
    if (want == CLST_E_VERIFY && !all_zero(out, ct_size)) {
        fail_msg("%s tcId %d: %s: output not wiped", m->name, id, what);
    }
    free(out);
}

static void
check_valid(const struct mode *m, const uint8_t *kek, size_t kek_size, const uint8_t *msg,
            size_t msg_size, const uint8_t *ct, size_t ct_size, int id)
{
    uint8_t *out = malloc(ct_size + 8);
    uint8_t *mut = malloc(ct_size);
    size_t out_size = 0;

    assert_non_null(out);
    assert_non_null(mut);
    /* Wrap into a buffer of exactly the documented size. */
    memset(out, 0xEE, ct_size + 8);
    if (m->wrap(kek, kek_size, msg, msg_size, out, ct_size, &out_size) != CLST_OK ||
        out_size != ct_size || memcmp(out, ct, ct_size) != 0) {
        fail_msg("%s tcId %d: wrap does not give the expected ciphertext", m->name, id);
    }
    assert_int_equal(out[ct_size], 0xEE);
    /* Unwrap into a buffer of exactly the key size (smaller than the ciphertext). */
    memset(out, 0xEE, ct_size + 8);
    out_size = 0;
    if (m->unwrap(kek, kek_size, ct, ct_size, out, msg_size, &out_size) != CLST_OK ||
        out_size != msg_size || memcmp(out, msg, msg_size) != 0) {
        fail_msg("%s tcId %d: unwrap does not give the expected key", m->name, id);
    }
    assert_int_equal(out[msg_size], 0xEE);
    /* One byte short of the result. */
    assert_int_equal(m->unwrap(kek, kek_size, ct, ct_size, out, msg_size - 1, &out_size),
                     CLST_E_LIMIT);
    assert_int_equal(m->wrap(kek, kek_size, msg, msg_size, out, ct_size - 1, &out_size),
                     CLST_E_LIMIT);

    /* Every ciphertext byte flipped. */
    memcpy(mut, ct, ct_size);
    for (size_t i = 0; i < ct_size; i++) {
        mut[i] ^= (uint8_t)(1u << (i % 8));
        expect_unwrap_failure(m, kek, kek_size, mut, ct_size, id, "ciphertext bit flip");
        mut[i] = ct[i];
    }
    /* Last semiblock dropped; semiblocks swapped. */
    expect_unwrap_failure(m, kek, kek_size, ct, ct_size - 8, id, "truncated");
    if (ct_size >= 24) {
        memcpy(mut, ct, ct_size);
        memcpy(mut + 8, ct + 16, 8);
        memcpy(mut + 16, ct + 8, 8);
        expect_unwrap_failure(m, kek, kek_size, mut, ct_size, id, "semiblocks swapped");
    }
    /* Wrong KEK. */
    uint8_t kek2[32];
    memcpy(kek2, kek, kek_size);
    kek2[kek_size - 1] ^= 0x40;
    expect_unwrap_failure(m, kek2, kek_size, ct, ct_size, id, "wrong kek");
    free(out);
    free(mut);
}

static void
run_wycheproof(const struct mode *m, const char *file, size_t want_valid, size_t want_invalid,
               size_t want_acceptable)
{
    json_t *root = tu_load_json(file);
    size_t valid = 0, invalid = 0, acceptable = 0, total = 0;
    size_t kek_sizes_seen[33] = {0};

    assert_non_null(root);
    size_t gi;
    json_t *group;
    json_array_foreach(json_object_get(root, "testGroups"), gi, group)
    {
        size_t ti;
        json_t *t;
        json_array_foreach(json_object_get(group, "tests"), ti, t)
        {
            int id = (int)json_integer_value(json_object_get(t, "tcId"));
            const char *result = json_string_value(json_object_get(t, "result"));
            size_t kek_size = 0, msg_size = 0, ct_size = 0;
            uint8_t *kek = tu_hex(json_string_value(json_object_get(t, "key")), &kek_size);
            uint8_t *msg = tu_hex(json_string_value(json_object_get(t, "msg")), &msg_size);
            uint8_t *ct = tu_hex(json_string_value(json_object_get(t, "ct")), &ct_size);
            assert_non_null(result);
            assert_non_null(kek);
            assert_non_null(msg);
            assert_non_null(ct);
            assert_true(kek_size == 16 || kek_size == 24 || kek_size == 32);
            kek_sizes_seen[kek_size]++;
            total++;
            uint8_t *out = malloc(msg_size + 16);
            size_t out_size = 0;
            assert_non_null(out);

            if (strcmp(result, "valid") == 0) {
                valid++;
                assert_true(plain_size_ok(m, msg_size));
                check_valid(m, kek, kek_size, msg, msg_size, ct, ct_size, id);
            } else if (strcmp(result, "invalid") == 0) {
                invalid++;
                expect_unwrap_failure(m, kek, kek_size, ct, ct_size, id, "invalid vector");
                if (!plain_size_ok(m, msg_size)) {
                    assert_int_equal(
                        m->wrap(kek, kek_size, msg, msg_size, out, msg_size + 16, &out_size),
                        CLST_E_INVAL);
                } else {
                    /* A key of a wrappable size: its real wrapping is not the forged `ct`. */
                    assert_int_equal(
                        m->wrap(kek, kek_size, msg, msg_size, out, msg_size + 16, &out_size),
                        CLST_OK);
                    assert_false(out_size == ct_size && memcmp(out, ct, ct_size) == 0);
                }
            } else {
                /* Only KW's ShortKey cases (see the header comment): refused. */
                acceptable++;
                assert_false(m->pad);
                assert_int_equal(msg_size, 8);
                assert_int_equal(
                    m->wrap(kek, kek_size, msg, msg_size, out, msg_size + 16, &out_size),
                    CLST_E_INVAL);
                expect_unwrap_failure(m, kek, kek_size, ct, ct_size, id, "acceptable ShortKey");
            }
            free(out);
            free(kek);
            free(msg);
            free(ct);
        }
    }
    assert_int_equal(total, (size_t)json_integer_value(json_object_get(root, "numberOfTests")));
    assert_int_equal(valid, want_valid);
    assert_int_equal(invalid, want_invalid);
    assert_int_equal(acceptable, want_acceptable);
    assert_true(kek_sizes_seen[16] > 0 && kek_sizes_seen[24] > 0 && kek_sizes_seen[32] > 0);
    json_decref(root);
}

static void
test_wycheproof_kw(void **state)
{
    (void)state;
    run_wycheproof(&kw, "wycheproof/aes_wrap_test.json", 36, 126, 3);
}

static void
test_wycheproof_kwp(void **state)
{
    (void)state;
    run_wycheproof(&kwp, "wycheproof/aes_kwp_test.json", 77, 177, 0);
}

/* RFC 3394 section 4 (all six examples) and RFC 5649 section 6 (both examples). */
static void
test_rfc_examples(void **state)
{
    (void)state;
    static const struct {
        const struct mode *m;
        const char *kek, *key, *wrapped;
    } ex[] = {
        {&kw, "000102030405060708090A0B0C0D0E0F", "00112233445566778899AABBCCDDEEFF",
         "1FA68B0A8112B447AEF34BD8FB5A7B829D3E862371D2CFE5"},
        {&kw, "000102030405060708090A0B0C0D0E0F1011121314151617",
         "00112233445566778899AABBCCDDEEFF", "96778B25AE6CA435F92B5B97C050AED2468AB8A17AD84E5D"},
        {&kw, "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F",
         "00112233445566778899AABBCCDDEEFF", "64E8C3F9CE0F5BA263E9777905818A2A93C8191E7D6E8AE7"},
        {&kw, "000102030405060708090A0B0C0D0E0F1011121314151617",
         "00112233445566778899AABBCCDDEEFF0001020304050607",
         "031D33264E15D33268F24EC260743EDCE1C6C7DDEE725A936BA814915C6762D2"},
        {&kw, "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F",
         "00112233445566778899AABBCCDDEEFF0001020304050607",
         "A8F9BC1612C68B3FF6E6F4FBE30E71E4769C8B80A32CB8958CD5D17D6B254DA1"},
        {&kw, "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F",
         "00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F",
         "28C9F404C4B810F4CBCCB35CFB87F8263F5786E2D80ED326CBC7F0E71A99F43BFB988B9B7A02DD21"},
        {&kwp, "5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8",
         "c37b7e6492584340bed12207808941155068f738",
         "138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a"},
        {&kwp, "5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8", "466f7250617369",
         "afbeb0f07dfbf5419200f2ccb50bb24f"},
    };
    for (size_t i = 0; i < sizeof(ex) / sizeof(ex[0]); i++) {
        uint8_t kek[32], key[32], wrapped[40];
        size_t kek_size = unhex(ex[i].kek, kek, sizeof(kek));
        size_t key_size = unhex(ex[i].key, key, sizeof(key));
        size_t wrapped_size = unhex(ex[i].wrapped, wrapped, sizeof(wrapped));
        check_valid(ex[i].m, kek, kek_size, key, key_size, wrapped, wrapped_size, (int)i);
    }
}

/* Every KWP input size 1..40 round-trips with the documented output size, and KW and KWP
 * ciphertexts are not interchangeable. */
static void
test_sizes_and_modes(void **state)
{
    (void)state;
    uint8_t kek[32], key[40], w[56], u[56];
    size_t w_size, u_size;

    for (size_t i = 0; i < sizeof(kek); i++) {
        kek[i] = (uint8_t)(0x30 + i);
    }
    for (size_t i = 0; i < sizeof(key); i++) {
        key[i] = (uint8_t)(0x91 * i + 5);
    }
    for (size_t n = 1; n <= 40; n++) {
        size_t want = (n + 7) / 8 * 8 + 8;
        assert_int_equal(clst_aes_kwp_wrap(kek, 32, key, n, w, sizeof(w), &w_size), CLST_OK);
        assert_int_equal(w_size, want);
        assert_int_equal(clst_aes_kwp_wrap(kek, 32, key, n, w, want - 1, &u_size), CLST_E_LIMIT);
        assert_int_equal(clst_aes_kwp_unwrap(kek, 32, w, w_size, u, sizeof(u), &u_size), CLST_OK);
        assert_int_equal(u_size, n);
        assert_memory_equal(u, key, n);
        /* A KWP ciphertext is never a valid KW one. */
        if (w_size >= 24) {
            memset(u, 0xA5, sizeof(u));
            assert_int_equal(clst_aes_kw_unwrap(kek, 32, w, w_size, u, sizeof(u), &u_size),
                             CLST_E_VERIFY);
            assert_true(all_zero(u, w_size));
        }
        if (n >= 16 && n % 8 == 0) {
            assert_int_equal(clst_aes_kw_wrap(kek, 32, key, n, w, sizeof(w), &w_size), CLST_OK);
            assert_int_equal(w_size, n + 8);
            assert_int_equal(clst_aes_kw_unwrap(kek, 32, w, w_size, u, sizeof(u), &u_size),
                             CLST_OK);
            assert_int_equal(u_size, n);
            assert_memory_equal(u, key, n);
            /* ... and a KW ciphertext is never a valid KWP one. */
            memset(u, 0xA5, sizeof(u));
            assert_int_equal(clst_aes_kwp_unwrap(kek, 32, w, w_size, u, sizeof(u), &u_size),
                             CLST_E_VERIFY);
            assert_true(all_zero(u, w_size));
        } else {
            assert_int_equal(clst_aes_kw_wrap(kek, 32, key, n, w, sizeof(w), &w_size),
                             CLST_E_INVAL);
        }
    }
    /* KW unwrap needs room for in_size - 8; KWP for at least in_size - 15 before it decrypts,
     * and for the real length after. */
    assert_int_equal(clst_aes_kw_wrap(kek, 32, key, 32, w, sizeof(w), &w_size), CLST_OK);
    assert_int_equal(clst_aes_kw_unwrap(kek, 32, w, 40, u, 31, &u_size), CLST_E_LIMIT);
    assert_int_equal(clst_aes_kwp_wrap(kek, 32, key, 20, w, sizeof(w), &w_size), CLST_OK);
    assert_int_equal(w_size, 32);
    assert_int_equal(clst_aes_kwp_unwrap(kek, 32, w, 32, u, 16, &u_size), CLST_E_LIMIT);
    assert_int_equal(clst_aes_kwp_unwrap(kek, 32, w, 32, u, 19, &u_size), CLST_E_LIMIT);
    assert_int_equal(clst_aes_kwp_unwrap(kek, 32, w, 32, u, 20, &u_size), CLST_OK);
    assert_int_equal(u_size, 20);
    assert_memory_equal(u, key, 20);
}

static void
test_arguments(void **state)
{
    (void)state;
    uint8_t kek[33] = {0}, key[32] = {0}, out[64];
    size_t out_size = 0;
    static const size_t bad_kek[] = {0, 8, 15, 17, 23, 25, 31, 33};
    const struct mode *modes[] = {&kw, &kwp};

    for (size_t k = 0; k < 2; k++) {
        const struct mode *m = modes[k];
        for (size_t i = 0; i < sizeof(bad_kek) / sizeof(bad_kek[0]); i++) {
            assert_int_equal(m->wrap(kek, bad_kek[i], key, 16, out, sizeof(out), &out_size),
                             CLST_E_INVAL);
            assert_int_equal(m->unwrap(kek, bad_kek[i], out, 24, out, sizeof(out), &out_size),
                             CLST_E_INVAL);
        }
        assert_int_equal(m->wrap(NULL, 16, key, 16, out, sizeof(out), &out_size), CLST_E_INVAL);
        assert_int_equal(m->wrap(kek, 16, NULL, 16, out, sizeof(out), &out_size), CLST_E_INVAL);
        assert_int_equal(m->wrap(kek, 16, key, 16, NULL, sizeof(out), &out_size), CLST_E_INVAL);
        assert_int_equal(m->wrap(kek, 16, key, 16, out, sizeof(out), NULL), CLST_E_INVAL);
        assert_int_equal(m->wrap(kek, 16, key, 0, out, sizeof(out), &out_size), CLST_E_INVAL);
        assert_int_equal(m->unwrap(NULL, 16, out, 24, out, sizeof(out), &out_size), CLST_E_INVAL);
        assert_int_equal(m->unwrap(kek, 16, NULL, 24, out, sizeof(out), &out_size), CLST_E_INVAL);
        assert_int_equal(m->unwrap(kek, 16, key, 24, NULL, sizeof(out), &out_size), CLST_E_INVAL);
        assert_int_equal(m->unwrap(kek, 16, key, 24, out, sizeof(out), NULL), CLST_E_INVAL);
        /* Sizes that no wrap produces. */
        static const size_t bad_wrapped[] = {0, 1, 8, 15, 17, 23, 25, 31};
        for (size_t i = 0; i < sizeof(bad_wrapped) / sizeof(bad_wrapped[0]); i++) {
            size_t n = bad_wrapped[i];
            if (wrapped_size_ok(m, n)) {
                continue;
            }
            assert_int_equal(m->unwrap(kek, 16, key, n, out, sizeof(out), &out_size),
                             CLST_E_MALFORMED);
        }
    }
    /* KW: 8-byte keys (RFC 3394 allows, SP 800-38F does not), sizes not a multiple of 8. */
    assert_int_equal(clst_aes_kw_wrap(kek, 16, key, 8, out, sizeof(out), &out_size), CLST_E_INVAL);
    assert_int_equal(clst_aes_kw_wrap(kek, 16, key, 17, out, sizeof(out), &out_size), CLST_E_INVAL);
    assert_int_equal(clst_aes_kw_wrap(kek, 16, key, 31, out, sizeof(out), &out_size), CLST_E_INVAL);
    assert_int_equal(clst_aes_kw_unwrap(kek, 16, key, 16, out, sizeof(out), &out_size),
                     CLST_E_MALFORMED);
    /* Inputs past EVP's int lengths are refused before anything is read. */
    const size_t huge = (size_t)INT_MAX - 7; /* a multiple of 8 */
    assert_int_equal(clst_aes_kw_wrap(kek, 16, key, huge, out, sizeof(out), &out_size),
                     CLST_E_LIMIT);
    assert_int_equal(clst_aes_kwp_wrap(kek, 16, key, huge, out, sizeof(out), &out_size),
                     CLST_E_LIMIT);
    assert_int_equal(clst_aes_kw_unwrap(kek, 16, key, huge, out, sizeof(out), &out_size),
                     CLST_E_LIMIT);
    assert_int_equal(clst_aes_kwp_unwrap(kek, 16, key, huge, out, sizeof(out), &out_size),
                     CLST_E_LIMIT);
    /* Output buffer too small for the wrap. */
    assert_int_equal(clst_aes_kw_wrap(kek, 16, key, 16, out, 23, &out_size), CLST_E_LIMIT);
    assert_int_equal(clst_aes_kwp_wrap(kek, 16, key, 9, out, 23, &out_size), CLST_E_LIMIT);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wycheproof_kw), cmocka_unit_test(test_wycheproof_kwp),
        cmocka_unit_test(test_rfc_examples),  cmocka_unit_test(test_sizes_and_modes),
        cmocka_unit_test(test_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
