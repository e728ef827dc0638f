/* Unit tests for src/crypto/ecdsa.c: ECDSA with DER and raw r||s signatures on P-256/384/521,
 * verification over a digest, the encoding conversions, ECDH and EC points.
 *
 * Wycheproof: ecdsa_secp256r1_sha256 and ecdsa_secp384r1_sha384 (DER), and their _p1363 twins
 * (raw r||s). Every `valid` case must verify, every `invalid` case must give CLST_E_VERIFY. These
 * files have no `acceptable` cases; the count is asserted to be 0, and were there any, they would
 * be held to rejection like invalid ones. Every case is also checked through
 * clst_ecdsa_verify_digest (same outcome), and every valid signature through the DER <-> raw
 * conversions (which must be exact inverses).
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <openssl/evp.h>

#include <cloister/crypto.h>

#include "test_util.h"

static const enum clst_curve all_curves[3] = {CLST_CURVE_P256, CLST_CURVE_P384, CLST_CURVE_P521};
static const size_t coord[3] = {32, 48, 66};

/* The group orders n (from `openssl ecparam -param_enc explicit`). */
static const char *order_hex[3] = {
    "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551",
    "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196a"
    "ccc52973",
    "01fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffa51868783bf2f966b7fcc"
    "0148f709a5d03bb5c9b8899c47aebb6fb71e91386409",
};

static uint8_t *
hex_member(const json_t *t, const char *name, size_t *size)
{
    const char *hex = json_string_value(json_object_get(t, name));
    assert_non_null(hex);
    uint8_t *p = tu_hex(hex, size);
    assert_non_null(p);
    return p;
}

/* ---- Wycheproof ----------------------------------------------------------------------------- */

static void
wycheproof_ecdsa(const char *file, enum clst_sig_format fmt, enum clst_hash h,
                 enum clst_curve curve, int want_valid, int want_invalid)
{
    json_t *j = tu_load_json(file);
    assert_non_null(j);
    int valid = 0, invalid = 0, acceptable = 0;
    size_t gi, ti, cs = curve == CLST_CURVE_P256 ? 32 : 48;
    json_t *g, *t;

    json_array_foreach(json_object_get(j, "testGroups"), gi, g)
    {
        size_t der_size = 0, pt_size = 0;
        uint8_t *der = hex_member(g, "publicKeyDer", &der_size);
        uint8_t *point = hex_member(json_object_get(g, "publicKey"), "uncompressed", &pt_size);
        EVP_PKEY *key = NULL, *key2 = NULL;
        struct clst_err err;
        if (clst_pkey_from_der(der, der_size, &key, &err) != CLST_OK) {
            fail_msg("%s group %zu: key import: %s", file, gi, err.msg);
        }
        /* The same key through the point decoder. */
        assert_int_equal(clst_ec_point_decode(curve, point, pt_size, &key2), CLST_OK);
        assert_true(clst_pkey_public_equal(key, key2));

        json_array_foreach(json_object_get(g, "tests"), ti, t)
        {
            const char *result = json_string_value(json_object_get(t, "result"));
            int tc = (int)json_integer_value(json_object_get(t, "tcId"));
            size_t msg_size, sig_size;
            uint8_t *msg = hex_member(t, "msg", &msg_size);
            uint8_t *sig = hex_member(t, "sig", &sig_size);
            uint8_t digest[CLST_HASH_MAX_SIZE];
            enum clst_status rc = clst_ecdsa_verify(key, h, fmt, msg, msg_size, sig, sig_size);
            enum clst_status rc2;

            assert_int_equal(clst_hash(h, msg, msg_size, digest), CLST_OK);
            rc2 = clst_ecdsa_verify_digest(key2, fmt, digest, clst_hash_size(h), sig, sig_size);
            if (strcmp(result, "valid") == 0) {
                valid++;
                if (rc != CLST_OK || rc2 != CLST_OK) {
                    fail_msg("%s tcId %d: valid signature rejected (%d, digest %d)", file, tc, rc,
                             rc2);
                }
                /* The other encoding of the same signature verifies too, and the conversions
                 * are exact inverses. */
                struct clst_buf other, back;
                clst_buf_init(&other, 256);
                clst_buf_init(&back, 256);
                if (fmt == CLST_SIG_DER) {
                    assert_int_equal(clst_ecdsa_sig_der_to_raw(sig, sig_size, cs, &other), CLST_OK);
                    assert_int_equal(other.size, 2 * cs);
                    assert_int_equal(clst_ecdsa_sig_raw_to_der(other.data, other.size, &back),
                                     CLST_OK);
                    assert_int_equal(clst_ecdsa_verify(key, h, CLST_SIG_RAW, msg, msg_size,
                                                       other.data, other.size),
                                     CLST_OK);
                } else {
                    assert_int_equal(clst_ecdsa_sig_raw_to_der(sig, sig_size, &other), CLST_OK);
                    assert_int_equal(clst_ecdsa_sig_der_to_raw(other.data, other.size, cs, &back),
                                     CLST_OK);
                    assert_int_equal(clst_ecdsa_verify(key, h, CLST_SIG_DER, msg, msg_size,
                                                       other.data, other.size),
                                     CLST_OK);
                }
                assert_int_equal(back.size, sig_size);
                assert_memory_equal(back.data, sig, sig_size);
                clst_buf_cleanup(&other);
                clst_buf_cleanup(&back);
            } else {
                if (strcmp(result, "invalid") == 0) {
                    invalid++;
                } else {
                    acceptable++; /* held to rejection */
                }
                if (rc != CLST_E_VERIFY || rc2 != CLST_E_VERIFY) {
                    fail_msg("%s tcId %d: %s signature gave %d (digest %d)", file, tc, result, rc,
                             rc2);
                }
            }
            free(msg);
            free(sig);
        }
        EVP_PKEY_free(key);
        EVP_PKEY_free(key2);
        free(der);
        free(point);
    }
    assert_int_equal(valid, want_valid);
    assert_int_equal(invalid, want_invalid);
    assert_int_equal(acceptable, 0);
    json_decref(j);
}

static void
test_wycheproof_p256_der(void **state)
{
    (void)state;
    wycheproof_ecdsa("wycheproof/ecdsa_secp256r1_sha256_test.json", CLST_SIG_DER, CLST_HASH_SHA256,
                     CLST_CURVE_P256, 174, 310);
}

static void
test_wycheproof_p256_raw(void **state)
{
    (void)state;
    wycheproof_ecdsa("wycheproof/ecdsa_secp256r1_sha256_p1363_test.json", CLST_SIG_RAW,
                     CLST_HASH_SHA256, CLST_CURVE_P256, 173, 89);
}

static void
test_wycheproof_p384_der(void **state)
{
    (void)state;
    wycheproof_ecdsa("wycheproof/ecdsa_secp384r1_sha384_test.json", CLST_SIG_DER, CLST_HASH_SHA384,
                     CLST_CURVE_P384, 194, 310);
}

static void
test_wycheproof_p384_raw(void **state)
{
    (void)state;
    wycheproof_ecdsa("wycheproof/ecdsa_secp384r1_sha384_p1363_test.json", CLST_SIG_RAW,
                     CLST_HASH_SHA384, CLST_CURVE_P384, 193, 87);
}

/* ---- own keys ------------------------------------------------------------------------------- */

struct keys {
    EVP_PKEY *ec[3], *ec2[3], *pub[3];
};

static int
setup(void **state)
{
    struct keys *k = calloc(1, sizeof(*k));
    if (k == NULL) {
        return -1;
    }
    for (int i = 0; i < 3; i++) {
        if (clst_ec_generate(all_curves[i], &k->ec[i]) != CLST_OK ||
            clst_ec_generate(all_curves[i], &k->ec2[i]) != CLST_OK ||
            clst_pkey_public_copy(k->ec[i], &k->pub[i]) != CLST_OK) {
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
    for (int i = 0; i < 3; i++) {
        EVP_PKEY_free(k->ec[i]);
        EVP_PKEY_free(k->ec2[i]);
        EVP_PKEY_free(k->pub[i]);
    }
    free(k);
    return 0;
}

static const enum clst_hash sig_hashes[3] = {CLST_HASH_SHA256, CLST_HASH_SHA384, CLST_HASH_SHA512};

static void
test_sign_verify(void **state)
{
    struct keys *k = *state;
    static const char msg[] = "report body";
    size_t len = sizeof(msg) - 1;

    for (int c = 0; c < 3; c++) {
        for (int hi = 0; hi < 3; hi++) {
            enum clst_hash h = sig_hashes[hi];
            struct clst_buf der, raw, conv;
            clst_buf_init(&der, 256);
            clst_buf_init(&raw, 256);
            clst_buf_init(&conv, 256);
            assert_int_equal(clst_ecdsa_sign(k->ec[c], h, CLST_SIG_DER, msg, len, &der), CLST_OK);
            assert_int_equal(clst_ecdsa_sign(k->ec[c], h, CLST_SIG_RAW, msg, len, &raw), CLST_OK);
            assert_int_equal(raw.size, 2 * coord[c]);
            assert_int_equal(der.data[0], 0x30);
            assert_int_equal(
                clst_ecdsa_verify(k->pub[c], h, CLST_SIG_DER, msg, len, der.data, der.size),
                CLST_OK);
            assert_int_equal(
                clst_ecdsa_verify(k->pub[c], h, CLST_SIG_RAW, msg, len, raw.data, raw.size),
                CLST_OK);
            /* The digest form agrees. */
            uint8_t digest[CLST_HASH_MAX_SIZE];
            assert_int_equal(clst_hash(h, msg, len, digest), CLST_OK);
            assert_int_equal(clst_ecdsa_verify_digest(k->pub[c], CLST_SIG_RAW, digest,
                                                      clst_hash_size(h), raw.data, raw.size),
                             CLST_OK);
            assert_int_equal(clst_ecdsa_verify_digest(k->pub[c], CLST_SIG_DER, digest,
                                                      clst_hash_size(h), der.data, der.size),
                             CLST_OK);
            digest[0] ^= 1;
            assert_int_equal(clst_ecdsa_verify_digest(k->pub[c], CLST_SIG_RAW, digest,
                                                      clst_hash_size(h), raw.data, raw.size),
                             CLST_E_VERIFY);
            /* Conversions. */
            assert_int_equal(clst_ecdsa_sig_raw_to_der(raw.data, raw.size, &conv), CLST_OK);
            assert_int_equal(
                clst_ecdsa_verify(k->pub[c], h, CLST_SIG_DER, msg, len, conv.data, conv.size),
                CLST_OK);
            clst_buf_reset(&conv);
            assert_int_equal(clst_ecdsa_sig_der_to_raw(der.data, der.size, coord[c], &conv),
                             CLST_OK);
            assert_int_equal(
                clst_ecdsa_verify(k->pub[c], h, CLST_SIG_RAW, msg, len, conv.data, conv.size),
                CLST_OK);
            /* Wrong format, message, hash, key. */
            assert_int_equal(
                clst_ecdsa_verify(k->pub[c], h, CLST_SIG_RAW, msg, len, der.data, der.size),
                CLST_E_VERIFY);
            assert_int_equal(
                clst_ecdsa_verify(k->pub[c], h, CLST_SIG_DER, msg, len, raw.data, raw.size),
                CLST_E_VERIFY);
            assert_int_equal(
                clst_ecdsa_verify(k->pub[c], h, CLST_SIG_RAW, msg, len - 1, raw.data, raw.size),
                CLST_E_VERIFY);
            assert_int_equal(clst_ecdsa_verify(k->pub[c], sig_hashes[(hi + 1) % 3], CLST_SIG_RAW,
                                               msg, len, raw.data, raw.size),
                             CLST_E_VERIFY);
            assert_int_equal(
                clst_ecdsa_verify(k->ec2[c], h, CLST_SIG_RAW, msg, len, raw.data, raw.size),
                CLST_E_VERIFY);
            /* Every truncation and a trailing byte, both formats. */
            for (size_t n = 0; n < raw.size; n++) {
                assert_int_equal(
                    clst_ecdsa_verify(k->pub[c], h, CLST_SIG_RAW, msg, len, raw.data, n),
                    CLST_E_VERIFY);
            }
            for (size_t n = 0; n < der.size; n++) {
                assert_int_equal(
                    clst_ecdsa_verify(k->pub[c], h, CLST_SIG_DER, msg, len, der.data, n),
                    CLST_E_VERIFY);
            }
            assert_int_equal(clst_buf_append_byte(&raw, 0), CLST_OK);
            assert_int_equal(clst_buf_append_byte(&der, 0), CLST_OK);
            assert_int_equal(
                clst_ecdsa_verify(k->pub[c], h, CLST_SIG_RAW, msg, len, raw.data, raw.size),
                CLST_E_VERIFY);
            assert_int_equal(
                clst_ecdsa_verify(k->pub[c], h, CLST_SIG_DER, msg, len, der.data, der.size),
                CLST_E_VERIFY);
            raw.size--;
            der.size--;
            /* Every byte flipped (every 5th for the longer hashes, to keep the run short). */
            size_t step = hi == 0 ? 1 : 5;
            for (size_t i = 0; i < raw.size; i += step) {
                raw.data[i] ^= 0x01;
                assert_int_equal(
                    clst_ecdsa_verify(k->pub[c], h, CLST_SIG_RAW, msg, len, raw.data, raw.size),
                    CLST_E_VERIFY);
                raw.data[i] ^= 0x01;
            }
            for (size_t i = 0; i < der.size; i += step) {
                der.data[i] ^= 0x01;
                assert_int_equal(
                    clst_ecdsa_verify(k->pub[c], h, CLST_SIG_DER, msg, len, der.data, der.size),
                    CLST_E_VERIFY);
                der.data[i] ^= 0x01;
            }
            clst_buf_cleanup(&der);
            clst_buf_cleanup(&raw);
            clst_buf_cleanup(&conv);
        }
    }
}

/* Builds raw r||s for curve c from big-endian r and s of cs bytes. */
static void
raw_rs(uint8_t *out, const uint8_t *r, const uint8_t *s, size_t cs)
{
    memcpy(out, r, cs);
    memcpy(out + cs, s, cs);
}

static void
test_raw_range(void **state)
{
    struct keys *k = *state;
    static const char msg[] = "m";

    for (int c = 0; c < 3; c++) {
        size_t cs = coord[c], n_size;
        uint8_t *n = tu_hex(order_hex[c], &n_size);
        assert_int_equal(n_size, cs);
        struct clst_buf raw;
        clst_buf_init(&raw, 256);
        assert_int_equal(clst_ecdsa_sign(k->ec[c], CLST_HASH_SHA256, CLST_SIG_RAW, msg, 1, &raw),
                         CLST_OK);
        const uint8_t *r = raw.data, *s = raw.data + cs;
        uint8_t zero[66] = {0}, n_plus_r[66], sig[132];

        /* r = 0, s = 0, r = n, s = n: all rejected. */
        raw_rs(sig, zero, s, cs);
        assert_int_equal(
            clst_ecdsa_verify(k->pub[c], CLST_HASH_SHA256, CLST_SIG_RAW, msg, 1, sig, 2 * cs),
            CLST_E_VERIFY);
        raw_rs(sig, r, zero, cs);
        assert_int_equal(
            clst_ecdsa_verify(k->pub[c], CLST_HASH_SHA256, CLST_SIG_RAW, msg, 1, sig, 2 * cs),
            CLST_E_VERIFY);
        raw_rs(sig, n, s, cs);
        assert_int_equal(
            clst_ecdsa_verify(k->pub[c], CLST_HASH_SHA256, CLST_SIG_RAW, msg, 1, sig, 2 * cs),
            CLST_E_VERIFY);
        raw_rs(sig, r, n, cs);
        assert_int_equal(
            clst_ecdsa_verify(k->pub[c], CLST_HASH_SHA256, CLST_SIG_RAW, msg, 1, sig, 2 * cs),
            CLST_E_VERIFY);
        /* r + n (when it fits in cs bytes): the same value mod n, still rejected. */
        unsigned carry = 0;
        for (size_t i = cs; i-- > 0;) {
            unsigned v = (unsigned)r[i] + n[i] + carry;
            n_plus_r[i] = (uint8_t)v;
            carry = v >> 8;
        }
        if (carry == 0 && (c != 2 || n_plus_r[0] <= 0x01)) {
            raw_rs(sig, n_plus_r, s, cs);
            assert_int_equal(
                clst_ecdsa_verify(k->pub[c], CLST_HASH_SHA256, CLST_SIG_RAW, msg, 1, sig, 2 * cs),
                CLST_E_VERIFY);
        }
        /* s replaced by n - s (the "malleable" twin) is a valid ECDSA signature. */
        uint8_t neg_s[66];
        int borrow = 0;
        for (size_t i = cs; i-- > 0;) {
            int v = (int)n[i] - s[i] - borrow;
            borrow = v < 0;
            neg_s[i] = (uint8_t)(v + (borrow ? 256 : 0));
        }
        raw_rs(sig, r, neg_s, cs);
        assert_int_equal(
            clst_ecdsa_verify(k->pub[c], CLST_HASH_SHA256, CLST_SIG_RAW, msg, 1, sig, 2 * cs),
            CLST_OK);
        /* Raw signatures of another curve's size. */
        for (int o = 0; o < 3; o++) {
            if (o != c) {
                memset(sig, 1, sizeof(sig));
                assert_int_equal(clst_ecdsa_verify(k->pub[c], CLST_HASH_SHA256, CLST_SIG_RAW, msg,
                                                   1, sig, 2 * coord[o]),
                                 CLST_E_VERIFY);
            }
        }
        free(n);
        clst_buf_cleanup(&raw);
    }
}

/* Non-canonical DER encodings of a valid signature are refused. */
static void
test_der_strict(void **state)
{
    struct keys *k = *state;
    static const char msg[] = "strict";
    struct clst_buf der, raw;
    clst_buf_init(&der, 256);
    clst_buf_init(&raw, 256);

    /* P-256 signatures are short-form DER: 30 L 02 Lr r 02 Ls s. */
    assert_int_equal(clst_ecdsa_sign(k->ec[0], CLST_HASH_SHA256, CLST_SIG_DER, msg, 6, &der),
                     CLST_OK);
    assert_int_equal(clst_ecdsa_sig_der_to_raw(der.data, der.size, 32, &raw), CLST_OK);
    uint8_t *d = der.data;
    size_t sz = der.size;
    assert_int_equal(d[0], 0x30);
    assert_int_equal(d[1], sz - 2);
    uint8_t buf[160];

    /* Long-form outer length (BER). */
    buf[0] = 0x30;
    buf[1] = 0x81;
    buf[2] = d[1];
    memcpy(buf + 3, d + 2, sz - 2);
    assert_int_equal(
        clst_ecdsa_verify(k->pub[0], CLST_HASH_SHA256, CLST_SIG_DER, msg, 6, buf, sz + 1),
        CLST_E_VERIFY);
    assert_int_equal(clst_ecdsa_sig_der_to_raw(buf, sz + 1, 32, &raw), CLST_E_MALFORMED);
    /* r with a superfluous leading zero. */
    size_t lr = d[3];
    buf[0] = 0x30;
    buf[1] = (uint8_t)(d[1] + 1);
    buf[2] = 0x02;
    buf[3] = (uint8_t)(lr + 1);
    buf[4] = 0x00;
    memcpy(buf + 5, d + 4, sz - 4);
    if (!(d[4] & 0x80)) {
        assert_int_equal(
            clst_ecdsa_verify(k->pub[0], CLST_HASH_SHA256, CLST_SIG_DER, msg, 6, buf, sz + 1),
            CLST_E_VERIFY);
        assert_int_equal(clst_ecdsa_sig_der_to_raw(buf, sz + 1, 32, &raw), CLST_E_MALFORMED);
    }
    /* Indefinite length. */
    memcpy(buf, d, sz);
    buf[1] = 0x80;
    buf[sz] = 0;
    buf[sz + 1] = 0;
    assert_int_equal(
        clst_ecdsa_verify(k->pub[0], CLST_HASH_SHA256, CLST_SIG_DER, msg, 6, buf, sz + 2),
        CLST_E_VERIFY);
    /* Wrong outer tag; r as a negative number (its top bit set without the leading zero). */
    memcpy(buf, d, sz);
    buf[0] = 0x31;
    assert_int_equal(clst_ecdsa_verify(k->pub[0], CLST_HASH_SHA256, CLST_SIG_DER, msg, 6, buf, sz),
                     CLST_E_VERIFY);
    static const uint8_t negative[] = {0x30, 0x06, 0x02, 0x01, 0x80, 0x02, 0x01, 0x01};
    assert_int_equal(clst_ecdsa_sig_der_to_raw(negative, sizeof(negative), 32, &raw),
                     CLST_E_MALFORMED);
    /* Integers longer than the coordinate size. */
    uint8_t big[80] = {0x30, 0x46, 0x02, 0x21, 0x01};
    memset(big + 5, 0x11, 32);
    big[37] = 0x02;
    big[38] = 0x21;
    big[39] = 0x01;
    memset(big + 40, 0x22, 32);
    assert_int_equal(clst_ecdsa_sig_der_to_raw(big, 72, 32, &raw), CLST_E_MALFORMED);
    assert_int_equal(clst_ecdsa_sig_der_to_raw(big, 72, 48, &raw), CLST_OK);
    assert_int_equal(clst_ecdsa_verify(k->pub[0], CLST_HASH_SHA256, CLST_SIG_DER, msg, 6, big, 72),
                     CLST_E_VERIFY);

    /* Conversion argument checks. */
    clst_buf_reset(&raw);
    assert_int_equal(clst_ecdsa_sig_der_to_raw(d, sz, 31, &raw), CLST_E_INVAL);
    assert_int_equal(clst_ecdsa_sig_der_to_raw(d, sz, 0, &raw), CLST_E_INVAL);
    assert_int_equal(clst_ecdsa_sig_der_to_raw(NULL, sz, 32, &raw), CLST_E_INVAL);
    assert_int_equal(clst_ecdsa_sig_der_to_raw(d, 0, 32, &raw), CLST_E_MALFORMED);
    uint8_t r64[64] = {1};
    assert_int_equal(clst_ecdsa_sig_raw_to_der(r64, 63, &raw), CLST_E_INVAL);
    assert_int_equal(clst_ecdsa_sig_raw_to_der(r64, 62, &raw), CLST_E_INVAL);
    assert_int_equal(clst_ecdsa_sig_raw_to_der(r64, 0, &raw), CLST_E_INVAL);
    assert_int_equal(clst_ecdsa_sig_raw_to_der(NULL, 64, &raw), CLST_E_INVAL);
    assert_int_equal(raw.size, 0);
    clst_buf_cleanup(&der);
    clst_buf_cleanup(&raw);
}

static void
test_ecdsa_args(void **state)
{
    struct keys *k = *state;
    struct clst_buf sig;
    clst_buf_init(&sig, 256);
    uint8_t fake[64] = {1}, digest[32] = {2};

    assert_int_equal(clst_ecdsa_sign(k->pub[0], CLST_HASH_SHA256, CLST_SIG_RAW, "x", 1, &sig),
                     CLST_E_INVAL);
    assert_int_equal(clst_ecdsa_sign(k->ec[0], CLST_HASH_SHA1, CLST_SIG_RAW, "x", 1, &sig),
                     CLST_E_INVAL);
    assert_int_equal(
        clst_ecdsa_sign(k->ec[0], CLST_HASH_SHA256, (enum clst_sig_format)0, "x", 1, &sig),
        CLST_E_INVAL);
    assert_int_equal(clst_ecdsa_sign(k->ec[0], CLST_HASH_SHA256, CLST_SIG_RAW, "x", 1, NULL),
                     CLST_E_INVAL);
    assert_int_equal(clst_ecdsa_verify(k->ec[0], CLST_HASH_SHA1, CLST_SIG_RAW, "x", 1, fake, 64),
                     CLST_E_INVAL);
    assert_int_equal(clst_ecdsa_verify(NULL, CLST_HASH_SHA256, CLST_SIG_RAW, "x", 1, fake, 64),
                     CLST_E_INVAL);
    assert_int_equal(clst_ecdsa_verify_digest(k->ec[0], CLST_SIG_RAW, digest, 20, fake, 64),
                     CLST_E_INVAL);
    assert_int_equal(clst_ecdsa_verify_digest(k->ec[0], CLST_SIG_RAW, NULL, 32, fake, 64),
                     CLST_E_INVAL);
    assert_int_equal(clst_ecdsa_verify_digest(k->ec[0], CLST_SIG_RAW, digest, 32, NULL, 0),
                     CLST_E_VERIFY);
    EVP_PKEY *rsa = NULL;
    json_t *j = tu_load_json("wycheproof/rsa_pss_2048_sha256_mgf1_32_test.json");
    size_t der_size = 0;
    uint8_t *der = tu_hex(json_string_value(json_object_get(
                              json_array_get(json_object_get(j, "testGroups"), 0), "publicKeyDer")),
                          &der_size);
    assert_int_equal(clst_pkey_from_der(der, der_size, &rsa, NULL), CLST_OK);
    assert_int_equal(clst_ecdsa_verify(rsa, CLST_HASH_SHA256, CLST_SIG_RAW, "x", 1, fake, 64),
                     CLST_E_INVAL);
    assert_int_equal(clst_ecdsa_verify_digest(rsa, CLST_SIG_RAW, digest, 32, fake, 64),
                     CLST_E_INVAL);
    struct clst_buf out;
    clst_buf_init(&out, 256);
    assert_int_equal(clst_ec_point_encode(rsa, &out), CLST_E_INVAL);
    assert_int_equal(clst_ecdh(k->ec[0], rsa, &out), CLST_E_INVAL);
    clst_buf_cleanup(&out);
    EVP_PKEY_free(rsa);
    free(der);
    json_decref(j);
    assert_int_equal(sig.size, 0);
    clst_buf_cleanup(&sig);
}

static void
test_ecdh(void **state)
{
    struct keys *k = *state;

    for (int c = 0; c < 3; c++) {
        struct clst_buf ab, ba;
        clst_buf_init_secret(&ab, 128);
        clst_buf_init_secret(&ba, 128);
        EVP_PKEY *pub2 = NULL;
        assert_int_equal(clst_pkey_public_copy(k->ec2[c], &pub2), CLST_OK);
        assert_int_equal(clst_ecdh(k->ec[c], pub2, &ab), CLST_OK);
        assert_int_equal(clst_ecdh(k->ec2[c], k->pub[c], &ba), CLST_OK);
        assert_int_equal(ab.size, coord[c]);
        assert_int_equal(ba.size, coord[c]);
        assert_memory_equal(ab.data, ba.data, coord[c]);
        /* With itself: a different secret. */
        clst_buf_reset(&ba);
        assert_int_equal(clst_ecdh(k->ec[c], k->pub[c], &ba), CLST_OK);
        assert_memory_not_equal(ab.data, ba.data, coord[c]);
        /* No private key, curves that differ. */
        assert_int_equal(clst_ecdh(k->pub[c], pub2, &ab), CLST_E_INVAL);
        assert_int_equal(clst_ecdh(k->ec[c], k->pub[(c + 1) % 3], &ab), CLST_E_INVAL);
        assert_int_equal(clst_ecdh(k->ec[c], pub2, NULL), CLST_E_INVAL);
        /* The output cap is honoured and nothing is written on failure. */
        struct clst_buf small;
        clst_buf_init_secret(&small, coord[c] - 1);
        assert_int_equal(clst_ecdh(k->ec[c], pub2, &small), CLST_E_LIMIT);
        assert_int_equal(small.size, 0);
        clst_buf_cleanup(&small);
        EVP_PKEY_free(pub2);
        clst_buf_cleanup(&ab);
        clst_buf_cleanup(&ba);
    }
}

/* RFC 5903 section 8.1 (ECDH on P-256): i, g^i, r, g^r, and g^ir's x-coordinate. The keys are
 * imported as JWKs, the responder's also as a point. */
static void
test_ecdh_rfc5903(void **state)
{
    (void)state;
    json_t *ji = json_pack("{s:s, s:s, s:s, s:s, s:s}", "kty", "EC", "crv", "P-256", "d",
                           "yI8B9RDZrD9wopLaojFt5UTpqriv6EBJxiqcV4YtFDM", "x",
                           "2tC2U5QiHPmwUeH-yleH0Jjf5jf8kLnvlF0MN3JYEYA", "y",
                           "UnGgRhzbglLWHxxFb6PlmrH0WzOsz19YOJ4Fd7iZC7M");
    json_t *jr = json_pack("{s:s, s:s, s:s, s:s, s:s}", "kty", "EC", "crv", "P-256", "d",
                           "xu-cXXiuASoBEWSss5fOIIhoXY8Gv5vgsoOrRkdr7lM", "x",
                           "0S37UonI1PgSCLcCcDmMNCKWlwoLzLdMc2_HVUSUv2M", "y",
                           "VvvzyjZswj6BV4VME8WNaqwj8Eatow-DU-dPMwOYcqs");
    size_t gir_size = 0, gr_size = 0;
    uint8_t *gir =
        tu_hex("d6840f6b42f6edafd13116e0e12565202fef8e9ece7dce03812464d04b9442de", &gir_size);
    uint8_t *gr = tu_hex("04d12dfb5289c8d4f81208b70270398c342296970a0bccb74c736fc7554494bf63"
                         "56fbf3ca366cc23e8157854c13c58d6aac23f046ada30f8353e74f33039872ab",
                         &gr_size);
    EVP_PKEY *ki = NULL, *kr = NULL, *gr_key = NULL;
    struct clst_buf s1, s2;
    clst_buf_init_secret(&s1, 64);
    clst_buf_init_secret(&s2, 64);

    assert_non_null(ji);
    assert_non_null(jr);
    assert_int_equal(clst_pkey_from_jwk(ji, &ki, NULL), CLST_OK);
    assert_int_equal(clst_pkey_from_jwk(jr, &kr, NULL), CLST_OK);
    assert_int_equal(clst_ec_point_decode(CLST_CURVE_P256, gr, gr_size, &gr_key), CLST_OK);
    assert_true(clst_pkey_public_equal(gr_key, kr));
    assert_int_equal(clst_ecdh(ki, gr_key, &s1), CLST_OK);
    assert_int_equal(clst_ecdh(kr, ki, &s2), CLST_OK);
    assert_int_equal(s1.size, 32);
    assert_memory_equal(s1.data, gir, 32);
    assert_memory_equal(s2.data, gir, 32);
    clst_buf_cleanup(&s1);
    clst_buf_cleanup(&s2);
    EVP_PKEY_free(ki);
    EVP_PKEY_free(kr);
    EVP_PKEY_free(gr_key);
    free(gir);
    free(gr);
    json_decref(ji);
    json_decref(jr);
}

static void
test_points(void **state)
{
    struct keys *k = *state;

    for (int c = 0; c < 3; c++) {
        size_t cs = coord[c];
        struct clst_buf pt;
        clst_buf_init(&pt, 256);
        EVP_PKEY *key = NULL;
        assert_int_equal(clst_ec_point_encode(k->ec[c], &pt), CLST_OK);
        assert_int_equal(pt.size, 1 + 2 * cs);
        assert_int_equal(pt.data[0], 0x04);
        assert_int_equal(clst_ec_point_decode(all_curves[c], pt.data, pt.size, &key), CLST_OK);
        assert_true(clst_pkey_public_equal(key, k->ec[c]));
        assert_false(clst_pkey_has_private(key));
        EVP_PKEY_free(key);
        key = NULL;
        /* The public copy encodes to the same bytes. */
        struct clst_buf pt2;
        clst_buf_init(&pt2, 256);
        assert_int_equal(clst_ec_point_encode(k->pub[c], &pt2), CLST_OK);
        assert_memory_equal(pt.data, pt2.data, pt.size);
        clst_buf_cleanup(&pt2);

        /* Other prefixes: compressed, hybrid, infinity. */
        static const uint8_t prefixes[] = {0x00, 0x02, 0x03, 0x06, 0x07, 0x05};
        for (size_t i = 0; i < sizeof(prefixes); i++) {
            pt.data[0] = prefixes[i];
            assert_int_equal(clst_ec_point_decode(all_curves[c], pt.data, pt.size, &key),
                             CLST_E_MALFORMED);
        }
        pt.data[0] = 0x04;
        /* A compressed point (0x02/0x03 || X) is refused too. */
        uint8_t comp[67];
        comp[0] = (uint8_t)(0x02 | (pt.data[2 * cs] & 1));
        memcpy(comp + 1, pt.data + 1, cs);
        assert_int_equal(clst_ec_point_decode(all_curves[c], comp, 1 + cs, &key), CLST_E_MALFORMED);
        /* Every length but the right one. */
        for (size_t n = 0; n < pt.size; n++) {
            assert_int_equal(clst_ec_point_decode(all_curves[c], pt.data, n, &key),
                             CLST_E_MALFORMED);
        }
        /* Another curve. */
        assert_int_equal(clst_ec_point_decode(all_curves[(c + 1) % 3], pt.data, pt.size, &key),
                         CLST_E_MALFORMED);
        /* Off the curve: each bit of y's last byte. */
        for (int bit = 0; bit < 8; bit++) {
            pt.data[pt.size - 1] ^= (uint8_t)(1u << bit);
            assert_int_equal(clst_ec_point_decode(all_curves[c], pt.data, pt.size, &key),
                             CLST_E_MALFORMED);
            pt.data[pt.size - 1] ^= (uint8_t)(1u << bit);
        }
        /* x and y all ones (>= p). */
        memset(pt.data + 1, 0xff, 2 * cs);
        assert_int_equal(clst_ec_point_decode(all_curves[c], pt.data, pt.size, &key),
                         CLST_E_MALFORMED);
        assert_null(key);
        assert_int_equal(clst_ec_point_decode((enum clst_curve)0, pt.data, pt.size, &key),
                         CLST_E_INVAL);
        assert_int_equal(clst_ec_point_decode(all_curves[c], NULL, pt.size, &key), CLST_E_INVAL);
        assert_int_equal(clst_ec_point_decode(all_curves[c], pt.data, pt.size, NULL), CLST_E_INVAL);
        clst_buf_cleanup(&pt);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wycheproof_p256_der),
        cmocka_unit_test(test_wycheproof_p256_raw),
        cmocka_unit_test(test_wycheproof_p384_der),
        cmocka_unit_test(test_wycheproof_p384_raw),
        cmocka_unit_test(test_sign_verify),
        cmocka_unit_test(test_raw_range),
        cmocka_unit_test(test_der_strict),
        cmocka_unit_test(test_ecdsa_args),
        cmocka_unit_test(test_ecdh),
        cmocka_unit_test(test_ecdh_rfc5903),
        cmocka_unit_test(test_points),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
