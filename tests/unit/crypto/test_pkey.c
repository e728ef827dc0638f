/* Unit tests for src/crypto/pkey.c: kind/bits/private queries, generation, curve names, public
 * copies, PEM/DER import (SPKI, PKCS#8, traditional) and export, the key file loader, and the
 * import checks (truncations, trailing bytes, bit flips, encrypted keys, wrong types, weak RSA,
 * inconsistent private keys). */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/bn.h>
#include <openssl/encoder.h>
#include <openssl/param_build.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <cloister/crypto.h>

#include "test_util.h"

struct keys {
    EVP_PKEY *rsa;
    EVP_PKEY *ec[3]; /* P-256, P-384, P-521 */
};

static const enum clst_curve all_curves[3] = {CLST_CURVE_P256, CLST_CURVE_P384, CLST_CURVE_P521};
static const enum clst_key_kind ec_kinds[3] = {CLST_KEY_EC_P256, CLST_KEY_EC_P384,
                                               CLST_KEY_EC_P521};
static const int ec_bits[3] = {256, 384, 521};

static int
setup(void **state)
{
    struct keys *k = calloc(1, sizeof(*k));
    if (k == NULL || clst_rsa_generate(2048, &k->rsa) != CLST_OK) {
        return -1;
    }
    for (int i = 0; i < 3; i++) {
        if (clst_ec_generate(all_curves[i], &k->ec[i]) != CLST_OK) {
            return -1;
        }
    }
    *state = k;
    return 0;
}

static int
teardown(void **state)
{
    struct keys *k = *state;
    EVP_PKEY_free(k->rsa);
    for (int i = 0; i < 3; i++) {
        EVP_PKEY_free(k->ec[i]);
    }
    free(k);
    return 0;
}

/* Encodes key with OpenSSL directly (for forms our exporter does not write). */
static unsigned char *
ossl_encode(EVP_PKEY *key, int selection, const char *type, const char *structure, size_t *len)
{
    unsigned char *data = NULL;
    OSSL_ENCODER_CTX *ctx = OSSL_ENCODER_CTX_new_for_pkey(key, selection, type, structure, NULL);
    assert_non_null(ctx);
    assert_true(OSSL_ENCODER_CTX_get_num_encoders(ctx) > 0);
    assert_int_equal(OSSL_ENCODER_to_data(ctx, &data, len), 1);
    OSSL_ENCODER_CTX_free(ctx);
    return data;
}

static void
test_kind_bits_private(void **state)
{
    struct keys *k = *state;

    assert_int_equal(clst_pkey_kind(k->rsa), CLST_KEY_RSA);
    assert_int_equal(clst_pkey_bits(k->rsa), 2048);
    assert_true(clst_pkey_has_private(k->rsa));
    for (int i = 0; i < 3; i++) {
        assert_int_equal(clst_pkey_kind(k->ec[i]), ec_kinds[i]);
        assert_int_equal(clst_pkey_bits(k->ec[i]), ec_bits[i]);
        assert_true(clst_pkey_has_private(k->ec[i]));
    }
    assert_int_equal(clst_pkey_kind(NULL), CLST_KEY_UNKNOWN);
    assert_int_equal(clst_pkey_bits(NULL), 0);
    assert_false(clst_pkey_has_private(NULL));

    /* Other key types are UNKNOWN. */
    EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    assert_non_null(ed);
    assert_int_equal(clst_pkey_kind(ed), CLST_KEY_UNKNOWN);
    assert_false(clst_pkey_has_private(ed));
    EVP_PKEY *k1 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "secp256k1");
    assert_non_null(k1);
    assert_int_equal(clst_pkey_kind(k1), CLST_KEY_UNKNOWN);
    EVP_PKEY_free(k1);
    EVP_PKEY_free(ed);
}

static void
test_generate_args(void **state)
{
    EVP_PKEY *key = NULL;

    assert_int_equal(clst_rsa_generate(1024, &key), CLST_E_INVAL);
    assert_int_equal(clst_rsa_generate(2047, &key), CLST_E_INVAL);
    assert_int_equal(clst_rsa_generate(2052, &key), CLST_E_INVAL); /* not a multiple of 8 */
    assert_int_equal(clst_rsa_generate(CLST_RSA_MAX_BITS + 8, &key), CLST_E_INVAL);
    assert_int_equal(clst_rsa_generate(-2048, &key), CLST_E_INVAL);
    assert_int_equal(clst_rsa_generate(2048, NULL), CLST_E_INVAL);
    assert_int_equal(clst_ec_generate((enum clst_curve)0, &key), CLST_E_INVAL);
    assert_int_equal(clst_ec_generate((enum clst_curve)99, &key), CLST_E_INVAL);
    assert_int_equal(clst_ec_generate(CLST_CURVE_P256, NULL), CLST_E_INVAL);
    assert_null(key);

    /* The generated key (setup) has e = 65537. */
    struct keys *k = *state;
    BIGNUM *e = NULL;
    assert_int_equal(EVP_PKEY_get_bn_param(k->rsa, "e", &e), 1);
    assert_true(BN_is_word(e, 65537));
    BN_free(e);
}

static void
test_curve_names(void **state)
{
    (void)state;
    static const char *names[3] = {"P-256", "P-384", "P-521"};
    enum clst_curve c;

    for (int i = 0; i < 3; i++) {
        assert_int_equal(clst_curve_parse(names[i], &c), CLST_OK);
        assert_int_equal(c, all_curves[i]);
        assert_string_equal(clst_curve_name(all_curves[i]), names[i]);
    }
    static const char *bad[] = {"p-256",      "P-256 ", " P-256", "P256",   "secp256r1",
                                "prime256v1", "P-224",  "",       "P-2560", "P-"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(clst_curve_parse(bad[i], &c), CLST_E_MALFORMED);
    }
    assert_int_equal(clst_curve_parse(NULL, &c), CLST_E_INVAL);
    assert_int_equal(clst_curve_parse("P-256", NULL), CLST_E_INVAL);
    assert_null(clst_curve_name((enum clst_curve)0));
    assert_null(clst_curve_name((enum clst_curve)4));
}

static void
test_public_copy_equal(void **state)
{
    struct keys *k = *state;
    EVP_PKEY *all[4] = {k->rsa, k->ec[0], k->ec[1], k->ec[2]};

    for (int i = 0; i < 4; i++) {
        EVP_PKEY *pub = NULL;
        assert_int_equal(clst_pkey_public_copy(all[i], &pub), CLST_OK);
        assert_false(clst_pkey_has_private(pub));
        assert_int_equal(clst_pkey_kind(pub), clst_pkey_kind(all[i]));
        assert_int_equal(clst_pkey_bits(pub), clst_pkey_bits(all[i]));
        assert_true(clst_pkey_public_equal(pub, all[i]));
        assert_true(clst_pkey_public_equal(all[i], pub));
        for (int j = 0; j < 4; j++) {
            assert_true(clst_pkey_public_equal(pub, all[j]) == (i == j));
        }
        /* A copy of a public key is fine too. */
        EVP_PKEY *pub2 = NULL;
        assert_int_equal(clst_pkey_public_copy(pub, &pub2), CLST_OK);
        assert_true(clst_pkey_public_equal(pub, pub2));
        EVP_PKEY_free(pub2);
        EVP_PKEY_free(pub);
    }
    /* Same curve, different key. */
    EVP_PKEY *other = NULL;
    assert_int_equal(clst_ec_generate(CLST_CURVE_P256, &other), CLST_OK);
    assert_false(clst_pkey_public_equal(other, k->ec[0]));
    EVP_PKEY_free(other);

    assert_false(clst_pkey_public_equal(NULL, k->rsa));
    assert_false(clst_pkey_public_equal(k->rsa, NULL));
    EVP_PKEY *out = NULL;
    assert_int_equal(clst_pkey_public_copy(NULL, &out), CLST_E_INVAL);
    assert_int_equal(clst_pkey_public_copy(k->rsa, NULL), CLST_E_INVAL);
    EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    assert_int_equal(clst_pkey_public_copy(ed, &out), CLST_E_INVAL);
    assert_null(out);
    EVP_PKEY_free(ed);
}

static void
roundtrip(EVP_PKEY *key, bool pem, bool priv)
{
    struct clst_buf b;
    struct clst_err err;
    EVP_PKEY *back = NULL;

    if (priv) {
        clst_buf_init_secret(&b, 1 << 16);
    } else {
        clst_buf_init(&b, 1 << 16);
    }
    if (pem) {
        assert_int_equal(clst_pkey_to_pem(key, priv, &b), CLST_OK);
        const char *hdr = priv ? "-----BEGIN PRIVATE KEY-----\n" : "-----BEGIN PUBLIC KEY-----\n";
        assert_true(b.size > strlen(hdr));
        assert_memory_equal(b.data, hdr, strlen(hdr));
        assert_int_equal(clst_pkey_from_pem(b.data, b.size, &back, &err), CLST_OK);
    } else {
        assert_int_equal(clst_pkey_to_der(key, priv, &b), CLST_OK);
        assert_int_equal(b.data[0], 0x30);
        assert_int_equal(clst_pkey_from_der(b.data, b.size, &back, &err), CLST_OK);
    }
    assert_true(clst_pkey_public_equal(back, key));
    assert_true(clst_pkey_has_private(back) == priv);
    assert_int_equal(clst_pkey_kind(back), clst_pkey_kind(key));
    EVP_PKEY_free(back);
    clst_buf_cleanup(&b);
}

static void
test_pem_der_roundtrip(void **state)
{
    struct keys *k = *state;
    EVP_PKEY *all[4] = {k->rsa, k->ec[0], k->ec[1], k->ec[2]};

    for (int i = 0; i < 4; i++) {
        roundtrip(all[i], true, true);
        roundtrip(all[i], true, false);
        roundtrip(all[i], false, true);
        roundtrip(all[i], false, false);
    }
}

static void
test_export_errors(void **state)
{
    struct keys *k = *state;
    struct clst_buf b;
    EVP_PKEY *pub = NULL;

    clst_buf_init(&b, 1 << 16);
    assert_int_equal(clst_pkey_public_copy(k->ec[0], &pub), CLST_OK);
    assert_int_equal(clst_pkey_to_pem(pub, true, &b), CLST_E_INVAL);
    assert_int_equal(clst_pkey_to_der(pub, true, &b), CLST_E_INVAL);
    assert_int_equal(clst_pkey_to_pem(NULL, false, &b), CLST_E_INVAL);
    assert_int_equal(clst_pkey_to_der(k->rsa, false, NULL), CLST_E_INVAL);
    assert_int_equal(b.size, 0);

    /* The buffer's cap is honoured and nothing is written on failure. */
    struct clst_buf small;
    clst_buf_init(&small, 50);
    assert_int_equal(clst_pkey_to_der(k->rsa, false, &small), CLST_E_LIMIT);
    assert_int_equal(small.size, 0);
    clst_buf_cleanup(&small);

    /* Appends after existing content. */
    assert_int_equal(clst_buf_append(&b, "xy", 2), CLST_OK);
    assert_int_equal(clst_pkey_to_der(pub, false, &b), CLST_OK);
    assert_memory_equal(b.data, "xy", 2);
    EVP_PKEY *back = NULL;
    assert_int_equal(clst_pkey_from_der(b.data + 2, b.size - 2, &back, NULL), CLST_OK);
    assert_true(clst_pkey_public_equal(back, pub));
    EVP_PKEY_free(back);
    EVP_PKEY_free(pub);
    clst_buf_cleanup(&b);
}

/* Traditional and PKCS#1 forms written by OpenSSL itself are accepted. */
static void
test_import_traditional(void **state)
{
    struct keys *k = *state;
    struct clst_err err;
    size_t len;
    unsigned char *data;
    EVP_PKEY *key = NULL;

    /* "-----BEGIN RSA PRIVATE KEY-----" (PKCS#1 RSAPrivateKey) */
    data = ossl_encode(k->rsa, EVP_PKEY_KEYPAIR, "PEM", "type-specific", &len);
    assert_non_null(strstr((char *)data, "BEGIN RSA PRIVATE KEY"));
    assert_int_equal(clst_pkey_from_pem(data, len, &key, &err), CLST_OK);
    assert_true(clst_pkey_has_private(key));
    assert_true(clst_pkey_public_equal(key, k->rsa));
    EVP_PKEY_free(key);
    key = NULL;
    OPENSSL_clear_free(data, len);

    /* DER RSAPrivateKey */
    data = ossl_encode(k->rsa, EVP_PKEY_KEYPAIR, "DER", "type-specific", &len);
    assert_int_equal(clst_pkey_from_der(data, len, &key, &err), CLST_OK);
    assert_true(clst_pkey_public_equal(key, k->rsa));
    EVP_PKEY_free(key);
    key = NULL;
    OPENSSL_clear_free(data, len);

    /* "-----BEGIN RSA PUBLIC KEY-----" (PKCS#1 RSAPublicKey) */
    data = ossl_encode(k->rsa, EVP_PKEY_PUBLIC_KEY, "PEM", "type-specific", &len);
    assert_non_null(strstr((char *)data, "BEGIN RSA PUBLIC KEY"));
    assert_int_equal(clst_pkey_from_pem(data, len, &key, &err), CLST_OK);
    assert_false(clst_pkey_has_private(key));
    assert_true(clst_pkey_public_equal(key, k->rsa));
    EVP_PKEY_free(key);
    key = NULL;
    OPENSSL_free(data);

    /* "-----BEGIN EC PRIVATE KEY-----" (SEC 1 ECPrivateKey) for every curve */
    for (int i = 0; i < 3; i++) {
        data = ossl_encode(k->ec[i], EVP_PKEY_KEYPAIR, "PEM", "type-specific", &len);
        assert_non_null(strstr((char *)data, "BEGIN EC PRIVATE KEY"));
        assert_int_equal(clst_pkey_from_pem(data, len, &key, &err), CLST_OK);
        assert_int_equal(clst_pkey_kind(key), ec_kinds[i]);
        assert_true(clst_pkey_has_private(key));
        assert_true(clst_pkey_public_equal(key, k->ec[i]));
        EVP_PKEY_free(key);
        key = NULL;
        OPENSSL_clear_free(data, len);
    }

    /* "EC PARAMETERS" then "EC PRIVATE KEY" (as `openssl ecparam -genkey` writes): the key is the
     * first key block; blocks of other types before it are skipped. */
    {
        size_t plen, klen;
        unsigned char *params =
            ossl_encode(k->ec[0], EVP_PKEY_KEY_PARAMETERS, "PEM", "type-specific", &plen);
        assert_non_null(strstr((char *)params, "BEGIN EC PARAMETERS"));
        data = ossl_encode(k->ec[0], EVP_PKEY_KEYPAIR, "PEM", "type-specific", &klen);
        unsigned char *both = malloc(plen + klen);
        memcpy(both, params, plen);
        memcpy(both + plen, data, klen);
        assert_int_equal(clst_pkey_from_pem(both, plen + klen, &key, &err), CLST_OK);
        assert_true(clst_pkey_public_equal(key, k->ec[0]));
        EVP_PKEY_free(key);
        key = NULL;
        /* Parameters alone are not a key. */
        assert_int_equal(clst_pkey_from_pem(params, plen, &key, &err), CLST_E_MALFORMED);
        assert_null(key);
        OPENSSL_clear_free(both, plen + klen);
        OPENSSL_clear_free(data, klen);
        OPENSSL_free(params);
    }
}

static void
test_import_der_mutations(void **state)
{
    struct keys *k = *state;
    struct clst_buf b;
    struct clst_err err;
    EVP_PKEY *key = NULL;

    for (int c = 0; c < 3; c++) {
        clst_buf_init(&b, 4096);
        assert_int_equal(clst_pkey_to_der(k->ec[c], false, &b), CLST_OK);
        /* Every truncation fails. */
        for (size_t n = 0; n < b.size; n++) {
            assert_int_not_equal(clst_pkey_from_der(b.data, n, &key, &err), CLST_OK);
            assert_null(key);
        }
        /* A trailing byte fails, with a message that says so. */
        uint8_t *longer = malloc(b.size + 1);
        memcpy(longer, b.data, b.size);
        longer[b.size] = 0;
        assert_int_equal(clst_pkey_from_der(longer, b.size + 1, &key, &err), CLST_E_MALFORMED);
        assert_non_null(strstr(err.msg, "trailing"));
        free(longer);
        /* Flipping any bit of the point's coordinates gives a point off the curve (a flip that
         * turns y into p - y is impossible for a single bit at these sizes). */
        size_t cs = (size_t)(ec_bits[c] + 7) / 8;
        for (size_t i = b.size - 2 * cs; i < b.size; i++) {
            uint8_t bit = (uint8_t)(1u << (i % 8));
            b.data[i] ^= bit;
            assert_int_equal(clst_pkey_from_der(b.data, b.size, &key, &err), CLST_E_MALFORMED);
            b.data[i] ^= bit;
        }
        /* Every single-byte flip anywhere else either fails or gives a different key. */
        for (size_t i = 0; i < b.size - 2 * cs; i++) {
            b.data[i] ^= 0x01;
            if (clst_pkey_from_der(b.data, b.size, &key, &err) == CLST_OK) {
                assert_false(clst_pkey_public_equal(key, k->ec[c]) &&
                             clst_pkey_kind(key) == ec_kinds[c]);
                EVP_PKEY_free(key);
                key = NULL;
            }
            b.data[i] ^= 0x01;
        }
        /* The point is uncompressed: replacing 0x04 by a compressed tag fails. */
        b.data[b.size - 2 * cs - 1] = 0x02;
        assert_int_not_equal(clst_pkey_from_der(b.data, b.size, &key, &err), CLST_OK);
        clst_buf_cleanup(&b);
    }

    /* RSA: truncations of the SPKI and of the PKCS#8 fail. */
    clst_buf_init(&b, 8192);
    assert_int_equal(clst_pkey_to_der(k->rsa, false, &b), CLST_OK);
    for (size_t n = 0; n < b.size; n += 7) {
        assert_int_not_equal(clst_pkey_from_der(b.data, n, &key, &err), CLST_OK);
    }
    clst_buf_cleanup(&b);
    clst_buf_init_secret(&b, 8192);
    assert_int_equal(clst_pkey_to_der(k->rsa, true, &b), CLST_OK);
    for (size_t n = 0; n < b.size; n += 61) {
        assert_int_not_equal(clst_pkey_from_der(b.data, n, &key, &err), CLST_OK);
    }
    assert_null(key);
    clst_buf_cleanup(&b);
}

static void
test_import_pem_mutations(void **state)
{
    struct keys *k = *state;
    struct clst_buf b;
    struct clst_err err;
    EVP_PKEY *key = NULL;

    clst_buf_init(&b, 4096);
    assert_int_equal(clst_pkey_to_pem(k->ec[1], false, &b), CLST_OK);
    /* Truncations that cut the END line or the base64 body fail. */
    for (size_t n = 0; n + 5 < b.size; n++) {
        assert_int_not_equal(clst_pkey_from_pem(b.data, n, &key, &err), CLST_OK);
        assert_null(key);
    }
    /* A character outside base64 inside the body fails. */
    char *body = strchr((char *)b.data, '\n') + 5;
    char saved = *body;
    *body = '*';
    assert_int_equal(clst_pkey_from_pem(b.data, b.size, &key, &err), CLST_E_MALFORMED);
    *body = saved;
    assert_int_equal(clst_pkey_from_pem(b.data, b.size, &key, &err), CLST_OK);
    EVP_PKEY_free(key);
    key = NULL;
    clst_buf_cleanup(&b);

    /* Not a key at all. */
    static const char junk[] = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n";
    assert_int_equal(clst_pkey_from_pem(junk, sizeof(junk) - 1, &key, &err), CLST_E_MALFORMED);
    assert_int_equal(clst_pkey_from_pem("hello", 5, &key, &err), CLST_E_MALFORMED);
    assert_int_equal(clst_pkey_from_pem("", 0, &key, &err), CLST_E_MALFORMED);
    assert_int_equal(clst_pkey_from_der("", 0, &key, &err), CLST_E_MALFORMED);
    assert_int_equal(clst_pkey_from_pem(NULL, 10, &key, &err), CLST_E_INVAL);
    assert_int_equal(clst_pkey_from_der("x", 1, NULL, &err), CLST_E_INVAL);
    assert_null(key);

    /* A certificate is not a key. */
    size_t size = 0;
    unsigned char *cert = tu_read_file(CLST_VECTORS_DIR "/x509/milan_ask_ark.pem", &size);
    assert_non_null(cert);
    assert_int_equal(clst_pkey_from_pem(cert, size, &key, &err), CLST_E_MALFORMED);
    free(cert);
    cert = tu_read_file(CLST_VECTORS_DIR "/x509/milan_vcek.der", &size);
    assert_non_null(cert);
    assert_int_equal(clst_pkey_from_der(cert, size, &key, &err), CLST_E_MALFORMED);
    free(cert);

    /* Oversized input. */
    size_t big = (1u << 20) + 1;
    char *huge = calloc(1, big);
    assert_int_equal(clst_pkey_from_pem(huge, big, &key, &err), CLST_E_LIMIT);
    assert_int_equal(clst_pkey_from_der(huge, big, &key, &err), CLST_E_LIMIT);
    free(huge);
    assert_null(key);
}

static void
test_import_refused_keys(void **state)
{
    struct keys *k = *state;
    struct clst_err err;
    size_t len;
    unsigned char *data;
    EVP_PKEY *key = NULL;

    /* Encrypted PKCS#8: refused without prompting for a passphrase. */
    {
        OSSL_ENCODER_CTX *ctx = OSSL_ENCODER_CTX_new_for_pkey(k->ec[0], EVP_PKEY_KEYPAIR, "PEM",
                                                              "PrivateKeyInfo", NULL);
        assert_non_null(ctx);
        assert_int_equal(OSSL_ENCODER_CTX_set_cipher(ctx, "AES-256-CBC", NULL), 1);
        assert_int_equal(OSSL_ENCODER_CTX_set_passphrase(ctx, (const unsigned char *)"secret", 6),
                         1);
        data = NULL;
        assert_int_equal(OSSL_ENCODER_to_data(ctx, &data, &len), 1);
        OSSL_ENCODER_CTX_free(ctx);
        assert_non_null(strstr((char *)data, "ENCRYPTED PRIVATE KEY"));
        assert_int_equal(clst_pkey_from_pem(data, len, &key, &err), CLST_E_MALFORMED);
        assert_non_null(strstr(err.msg, "encrypted private keys are not supported"));
        OPENSSL_free(data);

        /* The DER EncryptedPrivateKeyInfo: refused, and no passphrase prompt. */
        ctx = OSSL_ENCODER_CTX_new_for_pkey(k->ec[0], EVP_PKEY_KEYPAIR, "DER", "PrivateKeyInfo",
                                            NULL);
        assert_non_null(ctx);
        assert_int_equal(OSSL_ENCODER_CTX_set_cipher(ctx, "AES-256-CBC", NULL), 1);
        assert_int_equal(OSSL_ENCODER_CTX_set_passphrase(ctx, (const unsigned char *)"secret", 6),
                         1);
        data = NULL;
        assert_int_equal(OSSL_ENCODER_to_data(ctx, &data, &len), 1);
        OSSL_ENCODER_CTX_free(ctx);
        assert_int_equal(clst_pkey_from_der(data, len, &key, &err), CLST_E_MALFORMED);
        OPENSSL_free(data);
    }

    /* Legacy encrypted PEM ("Proc-Type: 4,ENCRYPTED" headers): refused as well. */
    {
        OSSL_ENCODER_CTX *ctx =
            OSSL_ENCODER_CTX_new_for_pkey(k->rsa, EVP_PKEY_KEYPAIR, "PEM", "type-specific", NULL);
        assert_non_null(ctx);
        assert_int_equal(OSSL_ENCODER_CTX_set_cipher(ctx, "AES-128-CBC", NULL), 1);
        assert_int_equal(OSSL_ENCODER_CTX_set_passphrase(ctx, (const unsigned char *)"pw", 2), 1);
        data = NULL;
        assert_int_equal(OSSL_ENCODER_to_data(ctx, &data, &len), 1);
        OSSL_ENCODER_CTX_free(ctx);
        assert_non_null(strstr((char *)data, "Proc-Type: 4,ENCRYPTED"));
        assert_int_equal(clst_pkey_from_pem(data, len, &key, &err), CLST_E_MALFORMED);
        assert_non_null(strstr(err.msg, "encrypted"));
        OPENSSL_free(data);
    }

    /* Ed25519 and secp256k1: unsupported types. */
    EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    data = ossl_encode(ed, EVP_PKEY_PUBLIC_KEY, "DER", "SubjectPublicKeyInfo", &len);
    assert_int_equal(clst_pkey_from_der(data, len, &key, &err), CLST_E_MALFORMED);
    assert_non_null(strstr(err.msg, "unsupported key type"));
    OPENSSL_free(data);
    EVP_PKEY_free(ed);
    EVP_PKEY *k1 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "secp256k1");
    data = ossl_encode(k1, EVP_PKEY_KEYPAIR, "PEM", "PrivateKeyInfo", &len);
    assert_int_equal(clst_pkey_from_pem(data, len, &key, &err), CLST_E_MALFORMED);
    OPENSSL_clear_free(data, len);
    EVP_PKEY_free(k1);

    /* An EC public key with a compressed point: not the canonical (uncompressed) SPKI. The
     * same key as PKCS#8 imports, and exports uncompressed. */
    {
        EVP_PKEY *c = NULL;
        assert_int_equal(clst_pkey_public_copy(k->ec[1], &c), CLST_OK);
        assert_int_equal(EVP_PKEY_set_utf8_string_param(c, "point-format", "compressed"), 1);
        data = ossl_encode(c, EVP_PKEY_PUBLIC_KEY, "DER", "SubjectPublicKeyInfo", &len);
        assert_int_equal(len, 23 + 49); /* 0x02/0x03 || X */
        assert_int_equal(clst_pkey_from_der(data, len, &key, &err), CLST_E_MALFORMED);
        assert_non_null(strstr(err.msg, "canonical"));
        OPENSSL_free(data);
        EVP_PKEY_free(c);

        assert_int_equal(EVP_PKEY_set_utf8_string_param(k->ec[1], "point-format", "compressed"), 1);
        data = ossl_encode(k->ec[1], EVP_PKEY_KEYPAIR, "DER", "PrivateKeyInfo", &len);
        assert_int_equal(EVP_PKEY_set_utf8_string_param(k->ec[1], "point-format", "uncompressed"),
                         1);
        assert_int_equal(clst_pkey_from_der(data, len, &key, &err), CLST_OK);
        OPENSSL_clear_free(data, len);
        struct clst_buf spki;
        clst_buf_init(&spki, 1024);
        assert_int_equal(clst_pkey_to_der(key, false, &spki), CLST_OK);
        assert_int_equal(spki.size, 23 + 97); /* 0x04 || X || Y */
        assert_true(clst_pkey_public_equal(key, k->ec[1]));
        EVP_PKEY_free(key);
        key = NULL;
        clst_buf_cleanup(&spki);
    }

    /* RSA-1024: too small, public or private. */
    EVP_PKEY *weak = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    assert_non_null(weak);
    data = ossl_encode(weak, EVP_PKEY_PUBLIC_KEY, "DER", "SubjectPublicKeyInfo", &len);
    assert_int_equal(clst_pkey_from_der(data, len, &key, &err), CLST_E_MALFORMED);
    assert_non_null(strstr(err.msg, "too small"));
    OPENSSL_free(data);
    data = ossl_encode(weak, EVP_PKEY_KEYPAIR, "PEM", "PrivateKeyInfo", &len);
    assert_int_equal(clst_pkey_from_pem(data, len, &key, &err), CLST_E_MALFORMED);
    OPENSSL_clear_free(data, len);
    EVP_PKEY_free(weak);
    assert_null(key);
}

/* A PKCS#8 EC key whose embedded public key belongs to another key is refused. */
static void
test_import_inconsistent_private(void **state)
{
    struct keys *k = *state;
    struct clst_buf priv, other;
    struct clst_err err;
    EVP_PKEY *key = NULL, *second = NULL;

    for (int c = 0; c < 3; c++) {
        clst_buf_init_secret(&priv, 4096);
        clst_buf_init(&other, 4096);
        assert_int_equal(clst_ec_generate(all_curves[c], &second), CLST_OK);
        assert_int_equal(clst_pkey_to_der(k->ec[c], true, &priv), CLST_OK);
        assert_int_equal(clst_ec_point_encode(second, &other), CLST_OK);
        /* OpenSSL's PKCS#8 ends with the [1] publicKey BIT STRING: the point is the last bytes. */
        assert_true(priv.size > other.size);
        uint8_t *point = priv.data + priv.size - other.size;
        struct clst_buf mine;
        clst_buf_init(&mine, 4096);
        assert_int_equal(clst_ec_point_encode(k->ec[c], &mine), CLST_OK);
        assert_memory_equal(point, mine.data, mine.size);
        memcpy(point, other.data, other.size);
        assert_int_equal(clst_pkey_from_der(priv.data, priv.size, &key, &err), CLST_E_MALFORMED);
        assert_non_null(strstr(err.msg, "inconsistent"));
        assert_null(key);
        /* Restored, it imports again. */
        memcpy(point, mine.data, mine.size);
        assert_int_equal(clst_pkey_from_der(priv.data, priv.size, &key, &err), CLST_OK);
        EVP_PKEY_free(key);
        key = NULL;
        clst_buf_cleanup(&mine);
        clst_buf_cleanup(&priv);
        clst_buf_cleanup(&other);
        EVP_PKEY_free(second);
        second = NULL;
    }
}

/* An RSA private key whose parts do not belong together is refused (n, d, dp, dq, qi altered in
 * turn; OpenSSL itself encodes such a key without complaint). */
static void
test_import_inconsistent_rsa(void **state)
{
    struct keys *k = *state;
    static const char *names[8] = {"n",
                                   "e",
                                   "d",
                                   "rsa-factor1",
                                   "rsa-factor2",
                                   "rsa-exponent1",
                                   "rsa-exponent2",
                                   "rsa-coefficient1"};
    static const int altered[] = {0, 2, 3, 5, 6, 7};
    struct clst_err err;
    EVP_PKEY *key = NULL;

    for (size_t a = 0; a <= sizeof(altered) / sizeof(altered[0]); a++) {
        BIGNUM *v[8] = {NULL};
        OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
        for (int i = 0; i < 8; i++) {
            assert_int_equal(EVP_PKEY_get_bn_param(k->rsa, names[i], &v[i]), 1);
            if (a < sizeof(altered) / sizeof(altered[0]) && i == altered[a]) {
                assert_int_equal(BN_add_word(v[i], 2), 1);
            }
            assert_int_equal(OSSL_PARAM_BLD_push_BN(bld, names[i], v[i]), 1);
        }
        OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
        EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
        EVP_PKEY *bad = NULL;
        assert_int_equal(EVP_PKEY_fromdata_init(ctx), 1);
        assert_int_equal(EVP_PKEY_fromdata(ctx, &bad, EVP_PKEY_KEYPAIR, params), 1);
        size_t len;
        unsigned char *der = ossl_encode(bad, EVP_PKEY_KEYPAIR, "DER", "PrivateKeyInfo", &len);
        if (a < sizeof(altered) / sizeof(altered[0])) {
            assert_int_equal(clst_pkey_from_der(der, len, &key, &err), CLST_E_MALFORMED);
            assert_null(key);
        } else {
            /* Unaltered: the same construction imports. */
            assert_int_equal(clst_pkey_from_der(der, len, &key, &err), CLST_OK);
            assert_true(clst_pkey_public_equal(key, k->rsa));
            EVP_PKEY_free(key);
            key = NULL;
        }
        OPENSSL_clear_free(der, len);
        EVP_PKEY_free(bad);
        EVP_PKEY_CTX_free(ctx);
        OSSL_PARAM_free(params);
        OSSL_PARAM_BLD_free(bld);
        for (int i = 0; i < 8; i++) {
            BN_clear_free(v[i]);
        }
    }
}

static void
test_load_pem_file(void **state)
{
    struct keys *k = *state;
    struct clst_buf b;
    struct clst_err err;
    EVP_PKEY *key = NULL;
    char path[] = "/tmp/clst_test_pkey_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);

    clst_buf_init_secret(&b, 1 << 16);
    assert_int_equal(clst_pkey_to_pem(k->rsa, true, &b), CLST_OK);
    assert_int_equal(write(fd, b.data, b.size), (ssize_t)b.size);
    assert_int_equal(clst_pkey_load_pem_file(path, &key, &err), CLST_OK);
    assert_true(clst_pkey_has_private(key));
    assert_true(clst_pkey_public_equal(key, k->rsa));
    EVP_PKEY_free(key);
    key = NULL;

    /* Garbage appended to a valid file still loads the first key; a file of garbage fails and
     * the message names the file. */
    assert_int_equal(ftruncate(fd, 0), 0);
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    assert_int_equal(write(fd, "garbage\n", 8), 8);
    assert_int_equal(clst_pkey_load_pem_file(path, &key, &err), CLST_E_MALFORMED);
    assert_non_null(strstr(err.msg, path));

    /* Larger than the 1 MiB cap. */
    assert_int_equal(ftruncate(fd, (1 << 20) + 10), 0);
    assert_int_equal(clst_pkey_load_pem_file(path, &key, &err), CLST_E_LIMIT);
    close(fd);
    unlink(path);

    assert_int_equal(clst_pkey_load_pem_file("/nonexistent/key.pem", &key, &err), CLST_E_IO);
    assert_non_null(strstr(err.msg, "/nonexistent/key.pem"));
    assert_int_equal(clst_pkey_load_pem_file(NULL, &key, &err), CLST_E_INVAL);
    assert_null(key);
    clst_buf_cleanup(&b);
}

/* The Wycheproof keys in PEM, DER and PKCS#8 import and agree with each other. */
static void
test_import_wycheproof_keys(void **state)
{
    (void)state;
    json_t *j = tu_load_json("wycheproof/rsa_oaep_2048_sha256_mgf1sha256_test.json");
    assert_non_null(j);
    json_t *g = json_array_get(json_object_get(j, "testGroups"), 0);
    const char *pem = json_string_value(json_object_get(g, "privateKeyPem"));
    const char *hex = json_string_value(json_object_get(g, "privateKeyPkcs8"));
    assert_non_null(pem);
    assert_non_null(hex);
    size_t der_size = 0;
    unsigned char *der = tu_hex(hex, &der_size);
    EVP_PKEY *a = NULL, *b = NULL;
    struct clst_err err;
    assert_int_equal(clst_pkey_from_pem(pem, strlen(pem), &a, &err), CLST_OK);
    assert_int_equal(clst_pkey_from_der(der, der_size, &b, &err), CLST_OK);
    assert_true(clst_pkey_has_private(a));
    assert_true(clst_pkey_public_equal(a, b));
    assert_int_equal(clst_pkey_bits(a), 2048);
    /* Our export of the private key re-imports to the same key. */
    struct clst_buf out;
    clst_buf_init_secret(&out, 1 << 16);
    assert_int_equal(clst_pkey_to_der(a, true, &out), CLST_OK);
    EVP_PKEY *c = NULL;
    assert_int_equal(clst_pkey_from_der(out.data, out.size, &c, &err), CLST_OK);
    assert_true(clst_pkey_public_equal(a, c));
    EVP_PKEY_free(a);
    EVP_PKEY_free(b);
    EVP_PKEY_free(c);
    clst_buf_cleanup(&out);
    free(der);
    json_decref(j);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kind_bits_private),
        cmocka_unit_test(test_generate_args),
        cmocka_unit_test(test_curve_names),
        cmocka_unit_test(test_public_copy_equal),
        cmocka_unit_test(test_pem_der_roundtrip),
        cmocka_unit_test(test_export_errors),
        cmocka_unit_test(test_import_traditional),
        cmocka_unit_test(test_import_der_mutations),
        cmocka_unit_test(test_import_pem_mutations),
        cmocka_unit_test(test_import_refused_keys),
        cmocka_unit_test(test_import_inconsistent_private),
        cmocka_unit_test(test_import_inconsistent_rsa),
        cmocka_unit_test(test_load_pem_file),
        cmocka_unit_test(test_import_wycheproof_keys),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
