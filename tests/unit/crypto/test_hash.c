/* Unit tests for src/crypto/hash.c: FIPS 180-4 example digests, RFC 4231 HMAC vectors,
 * incremental hashing, argument checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <cloister/crypto.h>

#include "test_util.h"

static const enum clst_hash all_hashes[] = {CLST_HASH_SHA1, CLST_HASH_SHA256, CLST_HASH_SHA384,
                                            CLST_HASH_SHA512};
#define HASH_COUNT (sizeof(all_hashes) / sizeof(all_hashes[0]))

/* Decodes a hex literal into a fixed buffer; fails the test on bad hex or overflow. */
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
assert_digest(enum clst_hash h, const void *msg, size_t size, const char *hex)
{
    uint8_t want[CLST_HASH_MAX_SIZE], got[CLST_HASH_MAX_SIZE];
    size_t n = unhex(hex, want, sizeof(want));

    assert_int_equal(n, clst_hash_size(h));
    memset(got, 0, sizeof(got));
    assert_int_equal(clst_hash(h, msg, size, got), CLST_OK);
    assert_memory_equal(got, want, n);
}

static void
test_sizes_and_names(void **state)
{
    (void)state;
    static const size_t sizes[] = {CLST_SHA1_SIZE, CLST_SHA256_SIZE, CLST_SHA384_SIZE,
                                   CLST_SHA512_SIZE};
    static const char *const names[] = {"SHA1", "SHA256", "SHA384", "SHA512"};

    for (size_t i = 0; i < HASH_COUNT; i++) {
        enum clst_hash h = all_hashes[i];
        assert_int_equal(clst_hash_size(h), sizes[i]);
        assert_true(clst_hash_size(h) <= CLST_HASH_MAX_SIZE);
        assert_string_equal(clst_hash_name(h), names[i]);
        const EVP_MD *md = clst_hash_md(h);
        assert_non_null(md);
        assert_int_equal((size_t)EVP_MD_get_size(md), sizes[i]);
        assert_true(EVP_MD_is_a(md, names[i]));
    }
    /* Values outside the enum. */
    static const int bad[] = {0, 5, -1, 99};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        enum clst_hash h = (enum clst_hash)bad[i];
        assert_int_equal(clst_hash_size(h), 0);
        assert_null(clst_hash_name(h));
        assert_null(clst_hash_md(h));
    }
}

/* FIPS 180-4 / NIST CSRC "Examples with intermediate values": one- and two-block messages. */
static void
test_fips180_vectors(void **state)
{
    (void)state;
    static const char abc[] = "abc";
    static const char two_block_256[] = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    static const char two_block_512[] =
        "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqr"
        "lmnopqrsmnopqrstnopqrstu";

    assert_digest(CLST_HASH_SHA1, abc, 3, "a9993e364706816aba3e25717850c26c9cd0d89d");
    assert_digest(CLST_HASH_SHA256, abc, 3,
                  "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_digest(CLST_HASH_SHA384, abc, 3,
                  "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed"
                  "8086072ba1e7cc2358baeca134c825a7");
    assert_digest(CLST_HASH_SHA512, abc, 3,
                  "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
                  "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f");

    assert_digest(CLST_HASH_SHA1, two_block_256, strlen(two_block_256),
                  "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
    assert_digest(CLST_HASH_SHA256, two_block_256, strlen(two_block_256),
                  "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    assert_digest(CLST_HASH_SHA384, two_block_512, strlen(two_block_512),
                  "09330c33f71147e83d192fc782cd1b4753111b173b3b05d22fa08086e3b0f712"
                  "fcc7c71a557e2db966c3e9fa91746039");
    assert_digest(CLST_HASH_SHA512, two_block_512, strlen(two_block_512),
                  "8e959b75dae313da8cf4f72814fc143f8f7779c6eb9f7fa17299aeadb6889018"
                  "501d289e4900f7e4331b99dec4b5433ac7d329eeb6dd26545e96e55b874be909");

    /* The empty message (data may be NULL when size is 0). */
    assert_digest(CLST_HASH_SHA256, NULL, 0,
                  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert_digest(CLST_HASH_SHA1, "", 0, "da39a3ee5e6b4b0d3255bfef95601890afd80709");

    /* A wrong expected value must be noticed: "abd" is not "abc". */
    uint8_t d[CLST_SHA256_SIZE], want[CLST_SHA256_SIZE];
    unhex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", want, sizeof(want));
    assert_int_equal(clst_hash(CLST_HASH_SHA256, "abd", 3, d), CLST_OK);
    assert_memory_not_equal(d, want, sizeof(d));
}

static void
test_sha256_shortcut(void **state)
{
    (void)state;
    uint8_t a[CLST_SHA256_SIZE], b[CLST_SHA256_SIZE];

    assert_int_equal(clst_sha256("abc", 3, a), CLST_OK);
    assert_int_equal(clst_hash(CLST_HASH_SHA256, "abc", 3, b), CLST_OK);
    assert_memory_equal(a, b, sizeof(a));
    assert_int_equal(clst_sha256(NULL, 1, a), CLST_E_INVAL);
}

static void
test_hash_arguments(void **state)
{
    (void)state;
    uint8_t d[CLST_HASH_MAX_SIZE];

    assert_int_equal(clst_hash((enum clst_hash)0, "x", 1, d), CLST_E_INVAL);
    assert_int_equal(clst_hash((enum clst_hash)42, "x", 1, d), CLST_E_INVAL);
    assert_int_equal(clst_hash(CLST_HASH_SHA256, NULL, 1, d), CLST_E_INVAL);
    assert_int_equal(clst_hash(CLST_HASH_SHA256, "x", 1, NULL), CLST_E_INVAL);
}

/* FIPS 180 "one million a", through the incremental interface in uneven pieces. */
static void
test_million_a(void **state)
{
    (void)state;
    uint8_t chunk[1000];
    uint8_t want[CLST_HASH_MAX_SIZE], got[CLST_HASH_MAX_SIZE];
    struct clst_hash_ctx ctx = {0};
    static const struct {
        enum clst_hash h;
        const char *hex;
    } v[] = {
        {CLST_HASH_SHA1, "34aa973cd4c4daa4f61eeb2bdbad27316534016f"},
        {CLST_HASH_SHA256, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"},
    };

    memset(chunk, 'a', sizeof(chunk));
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        size_t n = unhex(v[i].hex, want, sizeof(want));
        assert_int_equal(clst_hash_init(&ctx, v[i].h), CLST_OK);
        size_t left = 1000000;
        size_t step = 1;
        while (left > 0) {
            size_t take = step < left ? step : left;
            assert_int_equal(clst_hash_update(&ctx, chunk, take), CLST_OK);
            left -= take;
            step = step % 997 + 3; /* sizes 1..1000, crossing block boundaries unevenly */
        }
        assert_int_equal(clst_hash_final(&ctx, got), CLST_OK);
        assert_memory_equal(got, want, n);
    }
}

/* Incremental == one-shot for every hash, every split point of a 300-byte message. */
static void
test_incremental_equals_oneshot(void **state)
{
    (void)state;
    uint8_t msg[300];
    uint8_t one[CLST_HASH_MAX_SIZE], inc[CLST_HASH_MAX_SIZE];

    for (size_t i = 0; i < sizeof(msg); i++) {
        msg[i] = (uint8_t)(i * 7 + 1);
    }
    for (size_t k = 0; k < HASH_COUNT; k++) {
        enum clst_hash h = all_hashes[k];
        size_t hs = clst_hash_size(h);
        assert_int_equal(clst_hash(h, msg, sizeof(msg), one), CLST_OK);
        for (size_t split = 0; split <= sizeof(msg); split += 13) {
            struct clst_hash_ctx ctx = {0};
            assert_int_equal(clst_hash_init(&ctx, h), CLST_OK);
            assert_int_equal(clst_hash_update(&ctx, msg, split), CLST_OK);
            assert_int_equal(clst_hash_update(&ctx, NULL, 0), CLST_OK); /* empty update */
            assert_int_equal(clst_hash_update(&ctx, msg + split, sizeof(msg) - split), CLST_OK);
            memset(inc, 0, sizeof(inc));
            assert_int_equal(clst_hash_final(&ctx, inc), CLST_OK);
            assert_memory_equal(inc, one, hs);
            /* final released the context */
            assert_null(ctx.md);
            clst_hash_cleanup(&ctx);
        }
        /* A different message gives a different digest through both paths. */
        struct clst_hash_ctx ctx = {0};
        assert_int_equal(clst_hash_init(&ctx, h), CLST_OK);
        assert_int_equal(clst_hash_update(&ctx, msg, sizeof(msg) - 1), CLST_OK);
        assert_int_equal(clst_hash_final(&ctx, inc), CLST_OK);
        assert_memory_not_equal(inc, one, hs);
    }
}

static void
test_incremental_lifecycle(void **state)
{
    (void)state;
    struct clst_hash_ctx ctx = {0};
    uint8_t d[CLST_HASH_MAX_SIZE];

    /* A zeroed context: cleanup is a no-op, update/final are refused. */
    clst_hash_cleanup(&ctx);
    clst_hash_cleanup(NULL);
    assert_int_equal(clst_hash_update(&ctx, "x", 1), CLST_E_INVAL);
    assert_int_equal(clst_hash_final(&ctx, d), CLST_E_INVAL);

    assert_int_equal(clst_hash_init(NULL, CLST_HASH_SHA256), CLST_E_INVAL);
    assert_int_equal(clst_hash_init(&ctx, (enum clst_hash)0), CLST_E_INVAL);
    assert_null(ctx.md);

    /* Abandoned without final: cleanup frees it (ASan's leak check would notice otherwise). */
    assert_int_equal(clst_hash_init(&ctx, CLST_HASH_SHA512), CLST_OK);
    assert_int_equal(clst_hash_update(&ctx, "abc", 3), CLST_OK);
    assert_int_equal(clst_hash_update(&ctx, NULL, 3), CLST_E_INVAL);
    assert_int_equal(clst_hash_final(&ctx, NULL), CLST_E_INVAL);
    clst_hash_cleanup(&ctx);
    assert_null(ctx.md);
    clst_hash_cleanup(&ctx);

    /* Use after final is refused rather than crashing. */
    assert_int_equal(clst_hash_init(&ctx, CLST_HASH_SHA384), CLST_OK);
    assert_int_equal(clst_hash_final(&ctx, d), CLST_OK);
    assert_int_equal(clst_hash_update(&ctx, "x", 1), CLST_E_INVAL);
    assert_int_equal(clst_hash_final(&ctx, d), CLST_E_INVAL);
    clst_hash_cleanup(&ctx);

    /* The context remembers its hash: SHA-384 of "" */
    uint8_t want[CLST_SHA384_SIZE];
    unhex("38b060a751ac96384cd9327eb1b1e36a21fdb71114be07434c0cc7bf63f6e1da"
          "274edebfe76f65fbd51ad2f14898b95b",
          want, sizeof(want));
    assert_memory_equal(d, want, sizeof(want));
}

/* RFC 4231 test cases 1-7 (HMAC-SHA-256/384/512). */
struct hmac_case {
    const char *key_hex;
    const char *data;     /* text, or NULL when data_hex is used */
    const char *data_hex; /* used when data is NULL */
    size_t trunc;         /* compare only the first `trunc` bytes (test case 5), 0 = all */
    const char *sha256, *sha384, *sha512;
};

static const struct hmac_case rfc4231[] = {
    {"0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "Hi There", NULL, 0,
     "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
     "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59c"
     "faea9ea9076ede7f4af152e8b2fa9cb6",
     "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cde"
     "daa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854"},
    {"4a656665", "what do ya want for nothing?", NULL, 0,
     "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
     "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e"
     "8e2240ca5e69e2c78b3239ecfab21649",
     "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554"
     "9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"},
    {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", NULL,
     "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
     "dddddddddddd",
     0, "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
     "88062608d3e6ad8a0aa2ace014c8a86f0aa635d947ac9febe83ef4e55966144b"
     "2a5ab39dc13814b94e3ab6e101a34f27",
     "fa73b0089d56a284efb0f0756c890be9b1b5dbdd8ee81a3655f83e33b2279d39"
     "bf3e848279a722c806b485a47e67c807b946a337bee8942674278859e13292fb"},
    {"0102030405060708090a0b0c0d0e0f10111213141516171819", NULL,
     "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd"
     "cdcdcdcdcdcd",
     0, "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
     "3e8a69b7783c25851933ab6290af6ca77a9981480850009cc5577c6e1f573b4e"
     "6801dd23c4a7d679ccf8a386c674cffb",
     "b0ba465637458c6990e5a8c5f61d4af7e576d97ff94b872de76f8050361ee3db"
     "a91ca5c11aa25eb4d679275cc5788063a5f19741120c4f2de2adebeb10a298dd"},
    {"0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c", "Test With Truncation", NULL, 16,
     "a3b6167473100ee06e0c796c2955552b", "3abf34c3503b2a23a46efc619baef897",
     "415fad6271580a531d4179bc891d87a6"},
    {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
     "Test Using Larger Than Block-Size Key - Hash Key First", NULL, 0,
     "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
     "4ece084485813e9088d2c63a041bc5b44f9ef1012a2b588f3cd11f05033ac4c6"
     "0c2ef6ab4030fe8296248df163f44952",
     "80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f352"
     "6b56d037e05f2598bd0fd2215d6a1e5295e64f73f63f0aec8b915a985d786598"},
    {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
     "This is a test using a larger than block-size key and a larger than block-size data. The "
     "key needs to be hashed before being used by the HMAC algorithm.",
     NULL, 0, "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
     "6617178e941f020d351e2f254e8fd32c602420feb0b8fb9adccebb82461e99c5"
     "a678cc31e799176d3860e6110c46523e",
     "e37b6a775dc87dbaa4dfa9f96e5e3ffddebd71f8867289865df5a32d20cdc944"
     "b6022cac3c4982b10d5eeb55c3e4de15134676fb6de0446065c97440fa8c6a58"},
};

static void
test_hmac_rfc4231(void **state)
{
    (void)state;
    uint8_t key[200], data[200], want[CLST_HASH_MAX_SIZE], got[CLST_HASH_MAX_SIZE];

    for (size_t i = 0; i < sizeof(rfc4231) / sizeof(rfc4231[0]); i++) {
        const struct hmac_case *c = &rfc4231[i];
        size_t key_size = unhex(c->key_hex, key, sizeof(key));
        size_t data_size;
        if (c->data != NULL) {
            data_size = strlen(c->data);
            memcpy(data, c->data, data_size);
        } else {
            data_size = unhex(c->data_hex, data, sizeof(data));
        }
        const struct {
            enum clst_hash h;
            const char *hex;
        } outs[] = {{CLST_HASH_SHA256, c->sha256},
                    {CLST_HASH_SHA384, c->sha384},
                    {CLST_HASH_SHA512, c->sha512}};
        for (size_t j = 0; j < 3; j++) {
            size_t n = unhex(outs[j].hex, want, sizeof(want));
            assert_int_equal(n, c->trunc ? c->trunc : clst_hash_size(outs[j].h));
            memset(got, 0, sizeof(got));
            assert_int_equal(clst_hmac(outs[j].h, key, key_size, data, data_size, got), CLST_OK);
            assert_memory_equal(got, want, n);
            /* One flipped key bit or data bit changes the MAC. */
            key[0] ^= 1;
            assert_int_equal(clst_hmac(outs[j].h, key, key_size, data, data_size, got), CLST_OK);
            assert_memory_not_equal(got, want, n);
            key[0] ^= 1;
            data[data_size - 1] ^= 0x80;
            assert_int_equal(clst_hmac(outs[j].h, key, key_size, data, data_size, got), CLST_OK);
            assert_memory_not_equal(got, want, n);
            data[data_size - 1] ^= 0x80;
        }
    }
}

/* RFC 2202 test cases 1 and 2 (HMAC-SHA-1), and the empty key and message. */
static void
test_hmac_sha1_and_empty(void **state)
{
    (void)state;
    uint8_t key[20], want[CLST_HASH_MAX_SIZE], got[CLST_HASH_MAX_SIZE];

    memset(key, 0x0b, sizeof(key));
    unhex("b617318655057264e28bc0b6fb378c8ef146be00", want, sizeof(want));
    assert_int_equal(clst_hmac(CLST_HASH_SHA1, key, 20, "Hi There", 8, got), CLST_OK);
    assert_memory_equal(got, want, CLST_SHA1_SIZE);

    unhex("effcdf6ae5eb2fa2d27416d5f184df9c259a7c79", want, sizeof(want));
    assert_int_equal(clst_hmac(CLST_HASH_SHA1, (const uint8_t *)"Jefe", 4,
                               "what do ya want for nothing?", 28, got),
                     CLST_OK);
    assert_memory_equal(got, want, CLST_SHA1_SIZE);

    /* HMAC-SHA256 with an empty key over an empty message (key and data may be NULL). */
    unhex("b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad", want, sizeof(want));
    assert_int_equal(clst_hmac(CLST_HASH_SHA256, NULL, 0, NULL, 0, got), CLST_OK);
    assert_memory_equal(got, want, CLST_SHA256_SIZE);
    assert_int_equal(clst_hmac(CLST_HASH_SHA256, key, 0, "", 0, got), CLST_OK);
    assert_memory_equal(got, want, CLST_SHA256_SIZE);
}

static void
test_hmac_arguments(void **state)
{
    (void)state;
    uint8_t key[16] = {1}, out[CLST_HASH_MAX_SIZE];

    assert_int_equal(clst_hmac((enum clst_hash)0, key, 16, "x", 1, out), CLST_E_INVAL);
    assert_int_equal(clst_hmac((enum clst_hash)9, key, 16, "x", 1, out), CLST_E_INVAL);
    assert_int_equal(clst_hmac(CLST_HASH_SHA256, NULL, 16, "x", 1, out), CLST_E_INVAL);
    assert_int_equal(clst_hmac(CLST_HASH_SHA256, key, 16, NULL, 1, out), CLST_E_INVAL);
    assert_int_equal(clst_hmac(CLST_HASH_SHA256, key, 16, "x", 1, NULL), CLST_E_INVAL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sizes_and_names),
        cmocka_unit_test(test_fips180_vectors),
        cmocka_unit_test(test_sha256_shortcut),
        cmocka_unit_test(test_hash_arguments),
        cmocka_unit_test(test_million_a),
        cmocka_unit_test(test_incremental_equals_oneshot),
        cmocka_unit_test(test_incremental_lifecycle),
        cmocka_unit_test(test_hmac_rfc4231),
        cmocka_unit_test(test_hmac_sha1_and_empty),
        cmocka_unit_test(test_hmac_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
