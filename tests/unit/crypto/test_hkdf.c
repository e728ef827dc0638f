/*
 * Unit tests for src/crypto/hkdf.c: RFC 5869 appendix A (all seven cases, PRK and OKM),
 * Wycheproof hkdf_sha256_test.json, the 255 * HashLen limit, and HKDF recomputed from clst_hmac.
 *
 * Wycheproof: every "valid" case must derive exactly `okm` (through clst_hkdf and through
 * extract + expand); every "invalid" case (all SizeTooLarge) must be refused with CLST_E_LIMIT.
 * The file has no "acceptable" cases; the test asserts that, so a new vector file with some would
 * have to be looked at rather than silently passing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <cloister/crypto.h>

#include "test_util.h"

#define MAX_OKM (255 * CLST_HASH_MAX_SIZE)

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

static void
fill_range(uint8_t *p, unsigned first, unsigned last)
{
    for (unsigned v = first; v <= last; v++) {
        p[v - first] = (uint8_t)v;
    }
}

/* Checks one RFC 5869 case through extract, expand and the combined function. */
static void
check_rfc(enum clst_hash h, const uint8_t *salt, size_t salt_size, const uint8_t *ikm,
          size_t ikm_size, const uint8_t *info, size_t info_size, const char *prk_hex,
          const char *okm_hex)
{
    uint8_t want_prk[CLST_HASH_MAX_SIZE], prk[CLST_HASH_MAX_SIZE];
    uint8_t want_okm[128], okm[128 + 1];
    size_t prk_size = unhex(prk_hex, want_prk, sizeof(want_prk));
    size_t okm_size = unhex(okm_hex, want_okm, sizeof(want_okm));

    assert_int_equal(prk_size, clst_hash_size(h));
    assert_int_equal(clst_hkdf_extract(h, salt, salt_size, ikm, ikm_size, prk), CLST_OK);
    assert_memory_equal(prk, want_prk, prk_size);

    memset(okm, 0xEE, sizeof(okm));
    assert_int_equal(clst_hkdf_expand(h, prk, prk_size, info, info_size, okm, okm_size), CLST_OK);
    assert_memory_equal(okm, want_okm, okm_size);
    assert_int_equal(okm[okm_size], 0xEE); /* nothing written past out_size */

    memset(okm, 0xEE, sizeof(okm));
    assert_int_equal(clst_hkdf(h, salt, salt_size, ikm, ikm_size, info, info_size, okm, okm_size),
                     CLST_OK);
    assert_memory_equal(okm, want_okm, okm_size);
    assert_int_equal(okm[okm_size], 0xEE);

    /* A shorter output is a prefix of the longer one. */
    assert_int_equal(clst_hkdf(h, salt, salt_size, ikm, ikm_size, info, info_size, okm, 5),
                     CLST_OK);
    assert_memory_equal(okm, want_okm, 5);
}

static void
test_rfc5869(void **state)
{
    (void)state;
    uint8_t ikm_0b[22], ikm_0c[22], salt13[13], info10[10];
    uint8_t ikm80[80], salt80[80], info80[80];

    memset(ikm_0b, 0x0b, sizeof(ikm_0b));
    memset(ikm_0c, 0x0c, sizeof(ikm_0c));
    fill_range(salt13, 0x00, 0x0c);
    fill_range(info10, 0xf0, 0xf9);
    fill_range(ikm80, 0x00, 0x4f);
    fill_range(salt80, 0x60, 0xaf);
    fill_range(info80, 0xb0, 0xff);

    /* A.1 */
    check_rfc(CLST_HASH_SHA256, salt13, 13, ikm_0b, 22, info10, 10,
              "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5",
              "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
              "34007208d5b887185865");
    /* A.2 */
    check_rfc(CLST_HASH_SHA256, salt80, 80, ikm80, 80, info80, 80,
              "06a6b88c5853361a06104c9ceb35b45cef760014904671014a193f40c15fc244",
              "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c"
              "59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71"
              "cc30c58179ec3e87c14c01d5c1f3434f1d87");
    /* A.3: zero-length salt and info */
    check_rfc(CLST_HASH_SHA256, NULL, 0, ikm_0b, 22, NULL, 0,
              "19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04",
              "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d"
              "9d201395faa4b61a96c8");
    /* A.4 */
    check_rfc(CLST_HASH_SHA1, salt13, 13, ikm_0b, 11, info10, 10,
              "9b6c18c432a7bf8f0e71c8eb88f4b30baa2ba243",
              "085a01ea1b10f36933068b56efa5ad81a4f14b822f5b091568a9cdd4f155fda2"
              "c22e422478d305f3f896");
    /* A.5 */
    check_rfc(CLST_HASH_SHA1, salt80, 80, ikm80, 80, info80, 80,
              "8adae09a2a307059478d309b26c4115a224cfaf6",
              "0bd770a74d1160f7c9f12cd5912a06ebff6adcae899d92191fe4305673ba2ffe"
              "8fa3f1a4e5ad79f3f334b3b202b2173c486ea37ce3d397ed034c7f9dfeb15c5e"
              "927336d0441f4c4300e2cff0d0900b52d3b4");
    /* A.6: zero-length salt and info */
    check_rfc(CLST_HASH_SHA1, (const uint8_t *)"", 0, ikm_0b, 22, (const uint8_t *)"", 0,
              "da8c8a73c7fa77288ec6f5e7c297786aa0d32d01",
              "0ac1af7002b3d761d1e55298da9d0506b9ae52057220a306e07b6b87e8df21d0"
              "ea00033de03984d34918");
    /* A.7: salt not provided (defaults to HashLen zeros), zero-length info */
    check_rfc(CLST_HASH_SHA1, NULL, 0, ikm_0c, 22, NULL, 0,
              "2adccada18779e7c2077ad2eb19d3f3e731385dd",
              "2c91117204d745f3500d636a62f64f0ab3bae548aa53d423b0d1f27ebba6f5e5"
              "673a081d70cce7acfc48");
    /* ... which is the same as an explicit salt of HashLen zeros */
    uint8_t zeros[CLST_SHA1_SIZE] = {0};
    check_rfc(CLST_HASH_SHA1, zeros, sizeof(zeros), ikm_0c, 22, NULL, 0,
              "2adccada18779e7c2077ad2eb19d3f3e731385dd",
              "2c91117204d745f3500d636a62f64f0ab3bae548aa53d423b0d1f27ebba6f5e5"
              "673a081d70cce7acfc48");
}

/* Recomputes HKDF from its definition with clst_hmac and compares, for every hash, including an
 * empty IKM and an output that is not a whole number of blocks. */
static void
test_matches_hmac_definition(void **state)
{
    (void)state;
    static const enum clst_hash hashes[] = {CLST_HASH_SHA1, CLST_HASH_SHA256, CLST_HASH_SHA384,
                                            CLST_HASH_SHA512};
    const uint8_t salt[] = "salt for the test";
    const uint8_t info[] = "context info";
    const uint8_t ikm[] = "input keying material";

    for (size_t k = 0; k < sizeof(hashes) / sizeof(hashes[0]); k++) {
        enum clst_hash h = hashes[k];
        size_t hl = clst_hash_size(h);
        for (size_t ikm_size = 0; ikm_size <= 21; ikm_size += 21) {
            uint8_t prk[CLST_HASH_MAX_SIZE], want_prk[CLST_HASH_MAX_SIZE];
            uint8_t t[CLST_HASH_MAX_SIZE + sizeof(info) + 1];
            uint8_t want[3 * CLST_HASH_MAX_SIZE], okm[3 * CLST_HASH_MAX_SIZE];
            size_t okm_size = 2 * hl + 7;

            /* PRK = HMAC(salt, IKM) */
            assert_int_equal(clst_hmac(h, salt, sizeof(salt), ikm, ikm_size, want_prk), CLST_OK);
            assert_int_equal(clst_hkdf_extract(h, salt, sizeof(salt), ikm, ikm_size, prk), CLST_OK);
            assert_memory_equal(prk, want_prk, hl);
            /* T(i) = HMAC(PRK, T(i-1) || info || i) */
            size_t tlen = 0;
            for (uint8_t i = 1; i <= 3; i++) {
                memcpy(t + tlen, info, sizeof(info));
                t[tlen + sizeof(info)] = i;
                assert_int_equal(
                    clst_hmac(h, prk, hl, t, tlen + sizeof(info) + 1, want + (i - 1) * hl),
                    CLST_OK);
                memcpy(t, want + (i - 1) * hl, hl);
                tlen = hl;
            }
            assert_int_equal(
                clst_hkdf(h, salt, sizeof(salt), ikm, ikm_size, info, sizeof(info), okm, okm_size),
                CLST_OK);
            assert_memory_equal(okm, want, okm_size);
            /* A different info gives a different key. */
            assert_int_equal(clst_hkdf(h, salt, sizeof(salt), ikm, ikm_size, info, sizeof(info) - 1,
                                       okm, okm_size),
                             CLST_OK);
            assert_memory_not_equal(okm, want, okm_size);
        }
    }
}

static void
test_limits(void **state)
{
    (void)state;
    static const enum clst_hash hashes[] = {CLST_HASH_SHA1, CLST_HASH_SHA256, CLST_HASH_SHA384,
                                            CLST_HASH_SHA512};
    uint8_t prk[CLST_HASH_MAX_SIZE];
    uint8_t *okm = malloc(MAX_OKM + 1);

    assert_non_null(okm);
    memset(prk, 0x42, sizeof(prk));
    for (size_t k = 0; k < sizeof(hashes) / sizeof(hashes[0]); k++) {
        enum clst_hash h = hashes[k];
        size_t hl = clst_hash_size(h);
        size_t max = 255 * hl;
        memset(okm, 0xEE, MAX_OKM + 1);
        assert_int_equal(clst_hkdf_expand(h, prk, hl, NULL, 0, okm, max), CLST_OK);
        assert_int_equal(okm[max], 0xEE);
        /* The last block is really produced (not left as the fill byte). */
        size_t fill = 0;
        for (size_t i = max - hl; i < max; i++) {
            fill += okm[i] == 0xEE;
        }
        assert_true(fill < hl);
        assert_int_equal(clst_hkdf_expand(h, prk, hl, NULL, 0, okm, max + 1), CLST_E_LIMIT);
        assert_int_equal(clst_hkdf(h, NULL, 0, prk, 8, NULL, 0, okm, max + 1), CLST_E_LIMIT);
        assert_int_equal(clst_hkdf(h, NULL, 0, prk, 8, NULL, 0, okm, SIZE_MAX), CLST_E_LIMIT);
        assert_int_equal(clst_hkdf(h, NULL, 0, prk, 8, NULL, 0, okm, max), CLST_OK);
    }
    free(okm);
}

static void
test_arguments(void **state)
{
    (void)state;
    uint8_t prk[CLST_HASH_MAX_SIZE] = {1}, out[64];
    const enum clst_hash bad = (enum clst_hash)0;

    assert_int_equal(clst_hkdf_extract(bad, NULL, 0, prk, 8, out), CLST_E_INVAL);
    assert_int_equal(clst_hkdf_extract(CLST_HASH_SHA256, NULL, 4, prk, 8, out), CLST_E_INVAL);
    assert_int_equal(clst_hkdf_extract(CLST_HASH_SHA256, NULL, 0, NULL, 8, out), CLST_E_INVAL);
    assert_int_equal(clst_hkdf_extract(CLST_HASH_SHA256, NULL, 0, prk, 8, NULL), CLST_E_INVAL);
    /* An empty IKM is allowed (it is just a weak key), and so is a NULL one of size 0. */
    assert_int_equal(clst_hkdf_extract(CLST_HASH_SHA256, NULL, 0, NULL, 0, out), CLST_OK);

    assert_int_equal(clst_hkdf_expand(bad, prk, 32, NULL, 0, out, 32), CLST_E_INVAL);
    assert_int_equal(clst_hkdf_expand(CLST_HASH_SHA256, NULL, 32, NULL, 0, out, 32), CLST_E_INVAL);
    /* RFC 5869: PRK of at least HashLen bytes. */
    assert_int_equal(clst_hkdf_expand(CLST_HASH_SHA256, prk, 31, NULL, 0, out, 32), CLST_E_INVAL);
    assert_int_equal(clst_hkdf_expand(CLST_HASH_SHA256, prk, 32, NULL, 1, out, 32), CLST_E_INVAL);
    assert_int_equal(clst_hkdf_expand(CLST_HASH_SHA256, prk, 32, NULL, 0, NULL, 32), CLST_E_INVAL);
    assert_int_equal(clst_hkdf_expand(CLST_HASH_SHA256, prk, 32, NULL, 0, out, 0), CLST_E_INVAL);
    /* A longer PRK is fine. */
    assert_int_equal(clst_hkdf_expand(CLST_HASH_SHA256, prk, 64, NULL, 0, out, 32), CLST_OK);

    assert_int_equal(clst_hkdf(bad, NULL, 0, prk, 8, NULL, 0, out, 32), CLST_E_INVAL);
    assert_int_equal(clst_hkdf(CLST_HASH_SHA256, NULL, 1, prk, 8, NULL, 0, out, 32), CLST_E_INVAL);
    assert_int_equal(clst_hkdf(CLST_HASH_SHA256, NULL, 0, NULL, 8, NULL, 0, out, 32), CLST_E_INVAL);
    assert_int_equal(clst_hkdf(CLST_HASH_SHA256, NULL, 0, prk, 8, NULL, 1, out, 32), CLST_E_INVAL);
    assert_int_equal(clst_hkdf(CLST_HASH_SHA256, NULL, 0, prk, 8, NULL, 0, NULL, 32), CLST_E_INVAL);
    assert_int_equal(clst_hkdf(CLST_HASH_SHA256, NULL, 0, prk, 8, NULL, 0, out, 0), CLST_E_INVAL);
}

static void
test_wycheproof(void **state)
{
    (void)state;
    json_t *root = tu_load_json("wycheproof/hkdf_sha256_test.json");
    size_t valid = 0, invalid = 0, acceptable = 0, total = 0;
    uint8_t *okm = malloc(MAX_OKM);
    uint8_t *two = malloc(MAX_OKM);
    uint8_t prk[CLST_SHA256_SIZE];

    assert_non_null(root);
    assert_non_null(okm);
    assert_non_null(two);
    assert_string_equal(json_string_value(json_object_get(root, "algorithm")), "HKDF-SHA-256");
    json_t *groups = json_object_get(root, "testGroups");
    assert_true(json_is_array(groups));
    size_t gi;
    json_t *group;
    json_array_foreach(groups, gi, group)
    {
        size_t ti;
        json_t *t;
        json_array_foreach(json_object_get(group, "tests"), ti, t)
        {
            int id = (int)json_integer_value(json_object_get(t, "tcId"));
            const char *result = json_string_value(json_object_get(t, "result"));
            json_int_t jsize = json_integer_value(json_object_get(t, "size"));
            size_t ikm_size = 0, salt_size = 0, info_size = 0, want_size = 0;
            uint8_t *ikm = tu_hex(json_string_value(json_object_get(t, "ikm")), &ikm_size);
            uint8_t *salt = tu_hex(json_string_value(json_object_get(t, "salt")), &salt_size);
            uint8_t *info = tu_hex(json_string_value(json_object_get(t, "info")), &info_size);
            uint8_t *want = tu_hex(json_string_value(json_object_get(t, "okm")), &want_size);
            assert_non_null(ikm);
            assert_non_null(salt);
            assert_non_null(info);
            assert_non_null(want);
            assert_true(jsize > 0);
            size_t size = (size_t)jsize;
            total++;

            if (strcmp(result, "valid") == 0) {
                valid++;
                assert_int_equal(size, want_size);
                assert_true(size <= MAX_OKM);
                if (clst_hkdf(CLST_HASH_SHA256, salt, salt_size, ikm, ikm_size, info, info_size,
                              okm, size) != CLST_OK ||
                    memcmp(okm, want, size) != 0) {
                    fail_msg("tcId %d: valid vector not reproduced", id);
                }
                assert_int_equal(
                    clst_hkdf_extract(CLST_HASH_SHA256, salt, salt_size, ikm, ikm_size, prk),
                    CLST_OK);
                assert_int_equal(clst_hkdf_expand(CLST_HASH_SHA256, prk, sizeof(prk), info,
                                                  info_size, two, size),
                                 CLST_OK);
                assert_memory_equal(two, want, size);
                /* One flipped IKM bit changes the output. */
                assert_true(ikm_size > 0);
                ikm[ikm_size - 1] ^= 1;
                assert_int_equal(clst_hkdf(CLST_HASH_SHA256, salt, salt_size, ikm, ikm_size, info,
                                           info_size, okm, size),
                                 CLST_OK);
                assert_memory_not_equal(okm, want, size);
            } else if (strcmp(result, "invalid") == 0) {
                invalid++;
                /* All invalid cases ask for more than 255 * HashLen bytes. */
                assert_true(size > 255 * CLST_SHA256_SIZE);
                enum clst_status rc = clst_hkdf(CLST_HASH_SHA256, salt, salt_size, ikm, ikm_size,
                                                info, info_size, okm, size);
                if (rc != CLST_E_LIMIT) {
                    fail_msg("tcId %d: invalid vector gave status %d", id, rc);
                }
                assert_int_equal(
                    clst_hkdf_extract(CLST_HASH_SHA256, salt, salt_size, ikm, ikm_size, prk),
                    CLST_OK);
                assert_int_equal(clst_hkdf_expand(CLST_HASH_SHA256, prk, sizeof(prk), info,
                                                  info_size, okm, size),
                                 CLST_E_LIMIT);
            } else {
                acceptable++;
            }
            free(ikm);
            free(salt);
            free(info);
            free(want);
        }
    }
    assert_int_equal(total, (size_t)json_integer_value(json_object_get(root, "numberOfTests")));
    assert_int_equal(valid, 83);
    assert_int_equal(invalid, 3);
    assert_int_equal(acceptable, 0); /* none in this file; see the header comment */
    free(okm);
    free(two);
    json_decref(root);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc5869),    cmocka_unit_test(test_matches_hmac_definition),
        cmocka_unit_test(test_limits),     cmocka_unit_test(test_arguments),
        cmocka_unit_test(test_wycheproof),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
