/*
 * Unit tests for src/evidence/nitro_verify.c: the AWS Nitro kind through the public pipeline
 * clst_evidence_verify() with the AWS root compiled in (real documents), and through
 * evidence_nitro_verify_with() with synthetic roots (documents signed here, test_nitro_fixture.h).
 *
 * From the vectors README (tests/vectors/nitro/blocky-nitrite/): the three AWS-issued documents
 * verify at their own timestamps with the claims it states (PCRs, 1024-byte user_data / nonce /
 * public_key, and present-but-empty user_data / nonce for 2024-05); the debug document is refused
 * by the default policy and accepted with allow_debug (is-debuggable, all-zero PCR0..2); the
 * self-signed document is refused (and its signature is shown to verify only with its own
 * certificate); after the leaf's 3-hour window, and at time 0 (the upstream test), the chain fails.
 * Beyond the README: a flipped byte in each signed region (the protected header, the payload) and
 * in the signature; the wrong root (as the caller's root, as the document's anchor, and a bundle
 * under another root); a valid document with a mismatched certificate (real and synthetic); time
 * outside each certificate's validity (root, intermediate, leaf) and a timestamp outside the
 * signing certificate's; ECDSA r or s zero or >= n; unbound report data (user_data) and runtime
 * data, an absent vs. empty user_data, the expected nonce; bundles out of order, with extra or
 * missing certificates; signing certificates that are CAs, may not sign, or hold another key;
 * oversized inputs refused with CLST_E_LIMIT before any signature check (their signatures are
 * garbage); endorsements, bad options, a document without PCR0.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_nitro_fixture.h"

static struct nx_pki pki;
static STACK_OF(X509) *aws;
static uint8_t *prod, *dbg, *may, *selfsigned;
static size_t prod_size, dbg_size, may_size, selfsigned_size;

static int
setup(void **state)
{
    (void)state;
    aws = nx_aws_roots();
    prod = nx_read("nitro_attestation.cose.bin", &prod_size);
    dbg = nx_read("nitro_attestation_debug.cose.bin", &dbg_size);
    may = nx_read("nitro_attestation_2024-05.cose.bin", &may_size);
    selfsigned = nx_read("selfsigned_attestation.cose.bin", &selfsigned_size);
    if (aws == NULL || prod == NULL || dbg == NULL || may == NULL || selfsigned == NULL) {
        return -1;
    }
    return nx_pki_init(&pki, NULL);
}

static int
teardown(void **state)
{
    (void)state;
    nx_pki_cleanup(&pki);
    sk_X509_pop_free(aws, X509_free);
    free(prod);
    free(dbg);
    free(may);
    free(selfsigned);
    return 0;
}

static struct clst_evidence_input
real_input(const uint8_t *d, size_t size, int64_t at)
{
    struct clst_evidence_input in;
    memset(&in, 0, sizeof(in));
    in.evidence = d;
    in.evidence_size = size;
    in.roots = aws;
    in.at = at;
    return in;
}

/* The public pipeline; the message must contain msg_part (when given) on failure. */
static enum clst_status
run(const struct clst_evidence_input *in, json_t **out, const char *msg_part)
{
    json_t *claims = NULL;
    struct clst_err err = {0};
    enum clst_status rc = clst_evidence_verify(CLST_EVIDENCE_NITRO, in, &claims, &err);
    assert_int_equal(rc == CLST_OK, claims != NULL);
    if (rc != CLST_OK) {
        assert_true(err.msg[0] != '\0');
        if (msg_part != NULL && strstr(err.msg, msg_part) == NULL) {
            print_message("message \"%s\" lacks \"%s\"\n", err.msg, msg_part);
            fail();
        }
    }
    if (out != NULL) {
        *out = claims;
    } else {
        json_decref(claims);
    }
    return rc;
}

/* Builds `s`, parses and verifies it against the synthetic root. */
static enum clst_status
run_spec(const struct nx_spec *s, struct clst_evidence_input *in_opt, const char *msg_part)
{
    struct clst_buf b;
    struct clst_err err = {0};
    clst_buf_init(&b, 1u << 20);
    assert_int_equal(nx_build(s, &b), 0);
    struct clst_evidence_input in = in_opt != NULL ? *in_opt : nx_input(&pki, NULL, 0);
    in.evidence = b.data;
    in.evidence_size = b.size;
    enum clst_status rc = nx_verify_with(b.data, b.size, &in, pki.anchors, &err);
    if (rc != CLST_OK && msg_part != NULL && strstr(err.msg, msg_part) == NULL) {
        print_message("message \"%s\" lacks \"%s\"\n", err.msg, msg_part);
        fail();
    }
    clst_buf_cleanup(&b);
    return rc;
}

static const char *
claim_str(const json_t *claims, const char *name)
{
    return json_string_value(json_object_get(claims, name));
}

static char *
hex_of(const uint8_t *p, size_t size)
{
    char *h = malloc(2 * size + 1);
    assert_non_null(h);
    assert_int_equal(clst_hex_to_str(p, size, h, 2 * size + 1), CLST_OK);
    return h;
}

/* ---- the README's documents ----------------------------------------------------------------- */

static void
test_real_valid(void **state)
{
    (void)state;
    json_t *claims = NULL;
    struct clst_evidence_input in = real_input(prod, prod_size, NX_T_PROD);
    assert_int_equal(run(&in, &claims, NULL), CLST_OK);
    assert_string_equal(claim_str(claims, CLST_CLAIM_ATTESTATION_TYPE), "nitro");
    assert_string_equal(claim_str(claims, NITRO_CLAIM_MODULE_ID),
                        "i-0a22e5c5f24d22174-enc0191cceb4289903f");
    assert_true(json_integer_value(json_object_get(claims, NITRO_CLAIM_TIMESTAMP)) ==
                INT64_C(1725719859545));
    assert_string_equal(claim_str(claims, NITRO_CLAIM_DIGEST), "SHA384");
    static const char *const pcr0 = "e72a46ca80a260fb044a125442f0c7e331813bcbaf9724d9f38577589927"
                                    "66f2d65710a27aa94ae3949dd54e7c9fe86a";
    assert_string_equal(claim_str(claims, "aws-nitro-pcr0"), pcr0);
    assert_string_equal(claim_str(claims, NITRO_CLAIM_IMAGE_SHA384), pcr0);
    assert_string_equal(claim_str(claims, "aws-nitro-pcr1"),
                        "0343b056cd8485ca7890ddd833476d78460aed2aa161548e4e26bedf321726696257d62"
                        "3e8805f3f605946b3d8b0c6aa");
    assert_string_equal(claim_str(claims, "aws-nitro-pcr2"),
                        "d5dcbdea0aa39c802f9d55ced2ea6e4d74ecec5f08fe40c508882639c9090642669106a"
                        "062a3e24ee2805a3024b9b75c");
    assert_string_equal(claim_str(claims, "aws-nitro-pcr4"),
                        "45706d7b621e4620a332e147a5ddb000b049f73d47d3e61f6b03d2069152d4df6a4a786"
                        "ad1c10102b955799a9dc96b44");
    uint8_t zero[48] = {0};
    char *zero_hex = hex_of(zero, sizeof(zero));
    for (unsigned i = 0; i < 16; i++) {
        char name[32];
        snprintf(name, sizeof(name), "aws-nitro-pcr%u", i);
        assert_non_null(claim_str(claims, name));
        if (i == 3 || i >= 5) {
            assert_string_equal(claim_str(claims, name), zero_hex);
        }
    }
    assert_null(json_object_get(claims, "aws-nitro-pcr16"));
    assert_true(json_is_false(json_object_get(claims, NITRO_CLAIM_IS_DEBUGGABLE)));
    uint8_t ones[1024];
    memset(ones, 0x01, sizeof(ones));
    char *ones_hex = hex_of(ones, sizeof(ones));
    assert_string_equal(claim_str(claims, NITRO_CLAIM_PUBLIC_KEY), ones_hex);
    assert_string_equal(claim_str(claims, NITRO_CLAIM_USER_DATA), ones_hex);
    assert_string_equal(claim_str(claims, NITRO_CLAIM_NONCE), ones_hex);
    /* Nothing else: type, module id, timestamp, digest, 16 PCRs, image, debug, 3 optional. */
    assert_int_equal(json_object_size(claims), 4 + 16 + 1 + 1 + 3);
    json_decref(claims);

    /* The last second of the signing certificate's validity (OpenSSL treats notAfter as
     * exclusive) and the first. */
    in.at = NX_PROD_LEAF_NA - 1;
    assert_int_equal(run(&in, NULL, NULL), CLST_OK);
    in.at = NX_PROD_LEAF_NB;
    assert_int_equal(run(&in, NULL, NULL), CLST_OK);

    /* 2024-05: user_data and nonce present but empty (claims ""), public_key PEM text. */
    in = real_input(may, may_size, NX_T_2024_05);
    assert_int_equal(run(&in, &claims, NULL), CLST_OK);
    assert_string_equal(claim_str(claims, NITRO_CLAIM_MODULE_ID),
                        "i-0eec57d9c38705a57-enc018f25eda1b897b7");
    assert_string_equal(claim_str(claims, "aws-nitro-pcr0"),
                        "4d8ff9d3a23815b17d4a46c648da68e822ec7d32e473e023ba96fb6e388af2d5e0838d1"
                        "74a2d376d3593cc929b3d610e");
    assert_string_equal(claim_str(claims, NITRO_CLAIM_USER_DATA), "");
    assert_string_equal(claim_str(claims, NITRO_CLAIM_NONCE), "");
    const char *pk = claim_str(claims, NITRO_CLAIM_PUBLIC_KEY);
    assert_non_null(pk);
    assert_int_equal(strlen(pk), 2 * 426);
    assert_true(strncmp(pk, "2d2d2d2d2d424547494e20525341205055424c4943204b4559", 50) == 0);
    json_decref(claims);
    free(zero_hex);
    free(ones_hex);
}

static void
test_real_debug(void **state)
{
    (void)state;
    json_t *claims = NULL;
    struct clst_evidence_input in = real_input(dbg, dbg_size, NX_T_DEBUG);
    /* The default policy refuses a debug-mode enclave (all-zero PCR0). */
    assert_int_equal(run(&in, NULL, "debuggable"), CLST_E_VERIFY);
    in.allow_debug = true;
    assert_int_equal(run(&in, &claims, NULL), CLST_OK);
    assert_true(json_is_true(json_object_get(claims, NITRO_CLAIM_IS_DEBUGGABLE)));
    uint8_t zero[48] = {0};
    char *zero_hex = hex_of(zero, sizeof(zero));
    assert_string_equal(claim_str(claims, "aws-nitro-pcr0"), zero_hex);
    assert_string_equal(claim_str(claims, "aws-nitro-pcr1"), zero_hex);
    assert_string_equal(claim_str(claims, "aws-nitro-pcr2"), zero_hex);
    assert_string_equal(claim_str(claims, NITRO_CLAIM_IMAGE_SHA384), zero_hex);
    assert_string_equal(claim_str(claims, NITRO_CLAIM_MODULE_ID),
                        "i-0a22e5c5f24d22174-enc0191ccebaf8feaba");
    json_decref(claims);
    free(zero_hex);
    /* allow_debug does not let a debug document through outside its validity. */
    in.at = NX_T_PROD + 4 * 3600;
    assert_int_equal(run(&in, NULL, "untrusted signing certificate"), CLST_E_VERIFY);
}

static void
test_real_times(void **state)
{
    (void)state;
    struct clst_evidence_input in = real_input(prod, prod_size, 0);
    /* Upstream's test: time 0. */
    assert_int_equal(run(&in, NULL, "untrusted signing certificate"), CLST_E_VERIFY);
    static const int64_t bad[] = {
        NX_PROD_LEAF_NB - 1,     NX_PROD_LEAF_NA, NX_PROD_LEAF_NA + 1, NX_T_2024_05, NX_T,
        NX_T_PROD + 86400 * 365,
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        in.at = bad[i];
        assert_int_equal(run(&in, NULL, "untrusted signing certificate"), CLST_E_VERIFY);
    }
    in.at = -1;
    assert_int_equal(run(&in, NULL, NULL), CLST_E_INVAL);
    /* 2024-05 at the September document's time: expired. */
    in = real_input(may, may_size, NX_T_PROD);
    assert_int_equal(run(&in, NULL, "expired"), CLST_E_VERIFY);
}

/* Finds `needle` in `hay`; returns its offset or SIZE_MAX. */
static size_t
find(const uint8_t *hay, size_t size, const uint8_t *needle, size_t n)
{
    for (size_t i = 0; i + n <= size; i++) {
        if (memcmp(hay + i, needle, n) == 0) {
            return i;
        }
    }
    return SIZE_MAX;
}

static void
test_selfsigned(void **state)
{
    (void)state;
    struct clst_evidence_input in = real_input(selfsigned, selfsigned_size, 1713379906);
    /* Refused (its unprotected header and its cabundle are null). */
    assert_int_equal(run(&in, NULL, "unprotected header"), CLST_E_MALFORMED);
    in.allow_debug = true;
    assert_int_equal(run(&in, NULL, NULL), CLST_E_MALFORMED);

    /* The signature is valid with its own embedded certificate, which is all it has: the
     * protected header at 2 (4 bytes), the payload at 10 (2320 bytes), the signature last. */
    static const uint8_t cert_start[] = {0x59, 0x01, 0xd7, 0x30, 0x82, 0x01, 0xd3};
    size_t at = find(selfsigned, selfsigned_size, cert_start, sizeof(cert_start));
    assert_true(at != SIZE_MAX);
    X509 *cert = NULL;
    assert_int_equal(clst_x509_from_der(selfsigned + at + 3, 471, &cert, NULL), CLST_OK);
    uint8_t digest[CLST_SHA384_SIZE];
    assert_int_equal(selfsigned[7], 0x59);
    assert_int_equal(evidence_nitro_tbs_digest(selfsigned + 2, 4, selfsigned + 10, 2320, digest),
                     CLST_OK);
    assert_int_equal(clst_ecdsa_verify_digest(X509_get0_pubkey(cert), CLST_SIG_RAW, digest,
                                              sizeof(digest), selfsigned + selfsigned_size - 96,
                                              96),
                     CLST_OK);
    /* ...and that certificate is no root the caller can name. */
    STACK_OF(X509) *roots = sk_X509_new_null();
    assert_non_null(roots);
    assert_true(sk_X509_push(roots, cert) > 0);
    in = real_input(prod, prod_size, NX_T_PROD);
    in.roots = roots;
    assert_int_equal(run(&in, NULL, "not the AWS Nitro Enclaves root"), CLST_E_INVAL);
    sk_X509_pop_free(roots, X509_free);
}

/* ---- signed regions, signature, certificate ------------------------------------------------- */

static void
test_flips_real(void **state)
{
    (void)state;
    uint8_t *d = malloc(prod_size);
    assert_non_null(d);
    struct clst_evidence_input in = real_input(d, prod_size, NX_T_PROD);
    /* Protected header: every byte; payload: every 61st byte and the first and last 64 (the map
     * head, module_id, the optional fields); signature: every byte. Each flipped alone. (Every
     * byte of a whole synthetic document is flipped below; a full pipeline run costs several
     * P-384 verifications, so the 7431-byte payload is sampled.) */
    size_t flipped = 0;
    for (size_t i = 0; i < prod_size; i++) {
        bool in_payload = i >= 10 && i < 10 + 7431;
        bool sampled = i < 10 + 64 || i >= 10 + 7431 - 64 || i % 61 == 0;
        if (in_payload && !sampled) {
            continue;
        }
        flipped++;
        memcpy(d, prod, prod_size);
        d[i] ^= 0xff;
        enum clst_status rc = run(&in, NULL, NULL);
        if (rc == CLST_OK) {
            print_message("flipping byte %zu was accepted\n", i);
        }
        assert_int_not_equal(rc, CLST_OK);
        if (i >= prod_size - 96) {
            assert_int_equal(rc, CLST_E_VERIFY); /* the signature */
        }
    }
    assert_true(flipped > 350);
    /* The one byte outside the signed regions and the signature: the unprotected header (a0). */
    memcpy(d, prod, prod_size);
    assert_int_equal(d[6], 0xa0);
    d[6] = 0xf6;
    assert_int_equal(run(&in, NULL, NULL), CLST_E_MALFORMED);
    free(d);
}

static void
test_flips_synthetic(void **state)
{
    (void)state;
    struct nx_spec s;
    struct clst_buf b;
    struct clst_err err = {0};
    nx_spec_default(&s, &pki);
    s.pcr_mask = 0x1F;
    s.user_data_size = 8;
    s.nonce_size = 8;
    s.public_key_size = 8;
    clst_buf_init(&b, 1u << 20);
    assert_int_equal(nx_build(&s, &b), 0);
    struct clst_evidence_input in = nx_input(&pki, b.data, b.size);
    assert_int_equal(nx_verify_with(b.data, b.size, &in, pki.anchors, &err), CLST_OK);

    /* Where the three certificates' DER lies in the document. */
    size_t cert_off[3], cert_len[3];
    X509 *certs[3] = {pki.leaf, pki.root, pki.inter};
    for (size_t k = 0; k < 3; k++) {
        struct clst_buf der;
        clst_buf_init(&der, 1u << 16);
        assert_int_equal(nx_der(certs[k], &der), 0);
        cert_off[k] = find(b.data, b.size, der.data, der.size);
        cert_len[k] = der.size;
        assert_true(cert_off[k] != SIZE_MAX);
        clst_buf_cleanup(&der);
    }
    uint8_t *d = malloc(b.size);
    assert_non_null(d);
    /* Every byte of the document outside the certificates (envelope, protected header, every
     * payload field and head, signature) and every 5th byte of each certificate's DER, each
     * flipped alone. */
    size_t flipped = 0;
    for (size_t i = 0; i < b.size; i++) {
        bool skip = false;
        for (size_t k = 0; k < 3; k++) {
            if (i >= cert_off[k] && i < cert_off[k] + cert_len[k] && (i - cert_off[k]) % 5 != 0) {
                skip = true;
            }
        }
        if (skip) {
            continue;
        }
        flipped++;
        memcpy(d, b.data, b.size);
        d[i] ^= 0xff;
        in.evidence = d;
        enum clst_status rc = nx_verify_with(d, b.size, &in, pki.anchors, &err);
        if (rc == CLST_OK) {
            print_message("flipping byte %zu was accepted\n", i);
        }
        assert_int_not_equal(rc, CLST_OK);
    }
    assert_true(flipped > 500);
    free(d);
    clst_buf_cleanup(&b);
}

/* n, n + 1 and 2^384 - 1 as 48-byte big-endian values. */
static const uint8_t order_n[48] = {
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xC7, 0x63, 0x4D, 0x81, 0xF4, 0x37, 0x2D, 0xDF,
    0x58, 0x1A, 0x0D, 0xB2, 0x48, 0xB0, 0xA7, 0x7A, 0xEC, 0xEC, 0x19, 0x6A, 0xCC, 0xC5, 0x29, 0x73,
};

static void
test_signature_scalars(void **state)
{
    (void)state;
    uint8_t bad[5][48];
    memset(bad[0], 0, 48);       /* 0 */
    memcpy(bad[1], order_n, 48); /* n */
    memcpy(bad[2], order_n, 48); /* n + 1 */
    bad[2][47] = 0x74;
    memset(bad[3], 0xff, 48);    /* 2^384 - 1 */
    memcpy(bad[4], order_n, 48); /* n - 1: in range (a wrong signature, not a bad scalar) */
    bad[4][47] = 0x72;

    uint8_t *d = malloc(prod_size);
    assert_non_null(d);
    struct clst_evidence_input in = real_input(d, prod_size, NX_T_PROD);
    for (size_t half = 0; half < 2; half++) {
        for (size_t k = 0; k < 5; k++) {
            memcpy(d, prod, prod_size);
            memcpy(d + prod_size - 96 + half * 48, bad[k], 48);
            assert_int_equal(run(&in, NULL, k < 4 ? "zero or not below" : "COSE signature"),
                             CLST_E_VERIFY);
        }
    }
    free(d);

    /* The same on a synthetic document, with the other scalar valid. */
    struct nx_spec s;
    struct clst_buf b, payload;
    uint8_t sig[96];
    nx_spec_default(&s, &pki);
    clst_buf_init(&payload, 1u << 20);
    assert_int_equal(nx_payload(&s, &payload), 0);
    assert_int_equal(
        nx_sign(pki.leaf_key, s.protected_bytes, s.protected_size, payload.data, payload.size, sig),
        0);
    for (size_t half = 0; half < 2; half++) {
        for (size_t k = 0; k < 5; k++) {
            uint8_t mod[96];
            memcpy(mod, sig, 96);
            memcpy(mod + half * 48, bad[k], 48);
            s.sig_raw = mod;
            s.sig_size = 96;
            assert_int_equal(run_spec(&s, NULL, k < 4 ? "zero or not below" : "COSE signature"),
                             CLST_E_VERIFY);
        }
    }
    s.sig_raw = sig;
    assert_int_equal(run_spec(&s, NULL, NULL), CLST_OK);
    clst_buf_init(&b, 1);
    clst_buf_cleanup(&b);
    clst_buf_cleanup(&payload);
}

static void
test_mismatched_certificate(void **state)
{
    (void)state;
    struct nx_spec s;
    struct clst_err err = {0};

    /* Synthetic: a second enclave certificate from the same intermediate, valid in every way;
     * the document carries one and is signed with the other's key. */
    EVP_PKEY *k2 = nx_key();
    assert_non_null(k2);
    X509 *leaf2 = nx_cert(pki.inter_key, pki.inter, k2, "i-0123-enc0789.synthetic",
                          "critical,CA:FALSE", "digitalSignature", -3600, 3 * 3600);
    assert_non_null(leaf2);
    nx_spec_default(&s, &pki);
    s.sign_key = k2;
    assert_int_equal(run_spec(&s, NULL, "COSE signature"), CLST_E_VERIFY);
    s.cert = leaf2;
    assert_int_equal(run_spec(&s, NULL, NULL), CLST_OK);
    s.sign_key = pki.leaf_key;
    assert_int_equal(run_spec(&s, NULL, "COSE signature"), CLST_E_VERIFY);
    X509_free(leaf2);
    EVP_PKEY_free(k2);

    /* Real: the debug document with the production document's certificate (the same instance,
     * so the chain still verifies, and the debug document's timestamp lies inside that
     * certificate's validity); its signature does not verify with that key. */
    struct nitro_doc *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(evidence_nitro_parse(dbg, dbg_size, a, &err), CLST_OK);
    assert_int_equal(evidence_nitro_parse(prod, prod_size, b, &err), CLST_OK);
    assert_int_equal(a->cabundle_count, b->cabundle_count);
    for (size_t i = 0; i < a->cabundle_count; i++) {
        assert_int_equal(a->cabundle_size[i], b->cabundle_size[i]);
        assert_memory_equal(a->cabundle[i], b->cabundle[i], a->cabundle_size[i]);
    }
    const uint8_t *payload = dbg + a->payload_off;
    size_t cert_at = find(payload, a->payload_size, a->cert, a->cert_size);
    assert_true(cert_at != SIZE_MAX && cert_at >= 3);
    struct clst_buf np, out;
    clst_buf_init(&np, 1u << 20);
    assert_int_equal(clst_buf_append(&np, payload, cert_at - 3), CLST_OK); /* up to 59 02 7e */
    assert_int_equal(nx_bstr(&np, b->cert, b->cert_size), 0);
    assert_int_equal(clst_buf_append(&np, payload + cert_at + a->cert_size,
                                     a->payload_size - cert_at - a->cert_size),
                     CLST_OK);
    nx_spec_default(&s, &pki);
    s.sig_raw = a->signature;
    s.sig_size = 96;
    clst_buf_init(&out, 1u << 20);
    assert_int_equal(nx_envelope(&s, np.data, np.size, &out), 0);
    struct clst_evidence_input in = real_input(out.data, out.size, NX_T_DEBUG);
    in.allow_debug = true;
    assert_int_equal(run(&in, NULL, "COSE signature"), CLST_E_VERIFY);
    /* Unchanged, it verifies (the splice is what broke it). */
    in = real_input(dbg, dbg_size, NX_T_DEBUG);
    in.allow_debug = true;
    assert_int_equal(run(&in, NULL, NULL), CLST_OK);
    clst_buf_cleanup(&np);
    clst_buf_cleanup(&out);
    free(a);
    free(b);
}

static void
test_leaf_constraints(void **state)
{
    (void)state;
    struct nx_spec s;
    static const struct {
        const char *bc, *ku;
        bool p256;
        enum clst_status want;
        const char *msg;
    } cases[] = {
        {"critical,CA:FALSE", "digitalSignature", false, CLST_OK, NULL},
        {"critical,CA:FALSE", NULL, false, CLST_OK, NULL}, /* no key usage: not restricted */
        {NULL, "digitalSignature", false, CLST_OK, NULL},
        {"critical,CA:TRUE", "digitalSignature,keyCertSign", false, CLST_E_VERIFY, "CA"},
        {"critical,CA:FALSE", "keyEncipherment", false, CLST_E_VERIFY, "key usage"},
        {"critical,CA:FALSE", "digitalSignature", true, CLST_E_VERIFY, "P-384"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        EVP_PKEY *k = NULL;
        if (cases[i].p256) {
            assert_int_equal(clst_ec_generate(CLST_CURVE_P256, &k), CLST_OK);
        } else {
            k = nx_key();
        }
        assert_non_null(k);
        X509 *leaf =
            nx_cert(pki.inter_key, pki.inter, k, "leaf", cases[i].bc, cases[i].ku, -3600, 3600);
        assert_non_null(leaf);
        nx_spec_default(&s, &pki);
        s.cert = leaf;
        s.sign_key = cases[i].p256 ? pki.leaf_key : k; /* a P-256 key cannot sign ES384 */
        assert_int_equal(run_spec(&s, NULL, cases[i].msg), cases[i].want);
        X509_free(leaf);
        EVP_PKEY_free(k);
    }
}

static void
test_chain_shape(void **state)
{
    (void)state;
    struct nx_spec s;

    /* A two-intermediate chain like AWS's (root, regional, zonal/instance, leaf). */
    EVP_PKEY *k1 = nx_key(), *k2 = nx_key(), *kl = nx_key();
    assert_true(k1 != NULL && k2 != NULL && kl != NULL);
    X509 *i1 = nx_cert(pki.root_key, pki.root, k1, "regional", "critical,CA:TRUE,pathlen:2",
                       "critical,keyCertSign", -86400, 86400);
    X509 *i2 = nx_cert(k1, i1, k2, "instance", "critical,CA:TRUE,pathlen:0", "critical,keyCertSign",
                       -86400, 86400);
    X509 *leaf =
        nx_cert(k2, i2, kl, "enclave", "critical,CA:FALSE", "digitalSignature", -3600, 3600);
    assert_true(i1 != NULL && i2 != NULL && leaf != NULL);
    nx_spec_default(&s, &pki);
    s.cert = leaf;
    s.sign_key = kl;
    s.bundle[0] = pki.root;
    s.bundle[1] = i1;
    s.bundle[2] = i2;
    s.bundle_count = 3;
    assert_int_equal(run_spec(&s, NULL, NULL), CLST_OK);
    /* Intermediates swapped: OpenSSL would still build the path; the order is checked. */
    s.bundle[1] = i2;
    s.bundle[2] = i1;
    assert_int_equal(run_spec(&s, NULL, "in order"), CLST_E_VERIFY);
    /* An intermediate missing. */
    s.bundle[1] = i2;
    s.bundle_count = 2;
    assert_int_equal(run_spec(&s, NULL, "untrusted signing certificate"), CLST_E_VERIFY);
    /* An extra certificate, a duplicate, the root twice. */
    s.bundle[1] = i1;
    s.bundle[2] = i2;
    s.bundle[3] = pki.inter;
    s.bundle_count = 4;
    assert_int_equal(run_spec(&s, NULL, "in order"), CLST_E_VERIFY);
    s.bundle[3] = i2;
    assert_int_equal(run_spec(&s, NULL, "in order"), CLST_E_VERIFY);
    s.bundle[1] = pki.root;
    s.bundle[2] = i1;
    s.bundle[3] = i2;
    assert_int_equal(run_spec(&s, NULL, "in order"), CLST_E_VERIFY);
    /* Root not first. */
    s.bundle[0] = i1;
    s.bundle[1] = pki.root;
    s.bundle[2] = i2;
    s.bundle_count = 3;
    assert_int_equal(run_spec(&s, NULL, "cabundle[0]"), CLST_E_VERIFY);
    /* The root alone. */
    nx_spec_default(&s, &pki);
    s.bundle_count = 1;
    assert_int_equal(run_spec(&s, NULL, "untrusted signing certificate"), CLST_E_VERIFY);

    /* Certificates that are not one DER certificate each. */
    static const uint8_t junk[] = {0x43, 0x30, 0x01, 0x00};
    nx_spec_default(&s, &pki);
    s.raw[NX_CERTIFICATE] = junk;
    s.raw_size[NX_CERTIFICATE] = sizeof(junk);
    assert_int_equal(run_spec(&s, NULL, "certificate field"), CLST_E_MALFORMED);
    struct clst_buf der, v;
    clst_buf_init(&der, 1u << 16);
    clst_buf_init(&v, 1u << 16);
    assert_int_equal(nx_der(pki.leaf, &der), 0);
    assert_int_equal(clst_buf_append_byte(&der, 0x00), CLST_OK); /* trailing byte */
    assert_int_equal(nx_bstr(&v, der.data, der.size), 0);
    s.raw[NX_CERTIFICATE] = v.data;
    s.raw_size[NX_CERTIFICATE] = v.size;
    assert_int_equal(run_spec(&s, NULL, "certificate field"), CLST_E_MALFORMED);
    clst_buf_cleanup(&v);
    clst_buf_cleanup(&der);
    /* cabundle[1] junk. */
    struct clst_buf arr;
    clst_buf_init(&arr, 1u << 16);
    clst_buf_init(&der, 1u << 16);
    assert_int_equal(nx_der(pki.root, &der), 0);
    assert_int_equal(nx_head(&arr, 4, 2), 0);
    assert_int_equal(nx_bstr(&arr, der.data, der.size), 0);
    assert_int_equal(clst_buf_append(&arr, junk, sizeof(junk)), CLST_OK);
    nx_spec_default(&s, &pki);
    s.raw[NX_CABUNDLE] = arr.data;
    s.raw_size[NX_CABUNDLE] = arr.size;
    assert_int_equal(run_spec(&s, NULL, "cabundle[1]"), CLST_E_MALFORMED);
    clst_buf_cleanup(&arr);
    clst_buf_cleanup(&der);

    X509_free(i1);
    X509_free(i2);
    X509_free(leaf);
    EVP_PKEY_free(k1);
    EVP_PKEY_free(k2);
    EVP_PKEY_free(kl);
}

static void
test_wrong_root(void **state)
{
    (void)state;
    struct clst_err err = {0};
    /* The caller names a root that is not the pinned one. */
    struct clst_evidence_input in = real_input(prod, prod_size, NX_T_PROD);
    in.roots = pki.anchors;
    assert_int_equal(run(&in, NULL, "not the AWS Nitro Enclaves root"), CLST_E_INVAL);
    /* ...or the pinned one and another. */
    STACK_OF(X509) *both = sk_X509_new_null();
    assert_non_null(both);
    assert_true(sk_X509_push(both, sk_X509_value(aws, 0)) > 0);
    assert_true(sk_X509_push(both, pki.root) > 0);
    in.roots = both;
    assert_int_equal(run(&in, NULL, "trusted root 2"), CLST_E_INVAL);
    sk_X509_free(both);
    /* No roots at all (the framework). */
    STACK_OF(X509) *none = sk_X509_new_null();
    in.roots = none;
    assert_int_equal(run(&in, NULL, NULL), CLST_E_INVAL);
    in.roots = NULL;
    assert_int_equal(run(&in, NULL, NULL), CLST_E_INVAL);
    sk_X509_free(none);

    /* A real document against another anchor: its cabundle[0] is not that root. */
    in = real_input(prod, prod_size, NX_T_PROD);
    in.roots = pki.anchors;
    assert_int_equal(nx_verify_with(prod, prod_size, &in, pki.anchors, &err), CLST_E_VERIFY);
    assert_non_null(strstr(err.msg, "cabundle[0]"));

    /* A synthetic document through the production path: its root is not AWS's. */
    struct nx_spec s;
    struct clst_buf b;
    nx_spec_default(&s, &pki);
    clst_buf_init(&b, 1u << 20);
    assert_int_equal(nx_build(&s, &b), 0);
    in = real_input(b.data, b.size, NX_T);
    assert_int_equal(run(&in, NULL, "cabundle[0]"), CLST_E_VERIFY);
    clst_buf_cleanup(&b);

    /* cabundle[0] is the AWS root, but the chain runs to the synthetic one. */
    X509 *aws_root = sk_X509_value(aws, 0);
    nx_spec_default(&s, &pki);
    s.bundle[0] = aws_root;
    clst_buf_init(&b, 1u << 20);
    assert_int_equal(nx_build(&s, &b), 0);
    in = real_input(b.data, b.size, NX_T);
    assert_int_equal(run(&in, NULL, "untrusted signing certificate"), CLST_E_VERIFY);
    clst_buf_cleanup(&b);

    /* A bundle under a root that copies the real one's name but not its key. */
    EVP_PKEY *fake_key = nx_key();
    assert_non_null(fake_key);
    X509 *fake = nx_cert(fake_key, NULL, fake_key, "aws.nitro-enclaves", "critical,CA:TRUE",
                         "critical,keyCertSign", -86400, 86400);
    assert_non_null(fake);
    assert_int_equal(X509_set_issuer_name(fake, X509_get_subject_name(aws_root)), 1);
    assert_int_equal(X509_set_subject_name(fake, X509_get_subject_name(aws_root)), 1);
    assert_true(X509_sign(fake, fake_key, EVP_sha384()) > 0);
    X509 *inter = nx_cert(fake_key, fake, pki.inter_key, "i-0123.synthetic", "critical,CA:TRUE",
                          "critical,keyCertSign", -86400, 86400);
    assert_non_null(inter);
    nx_spec_default(&s, &pki);
    s.bundle[0] = aws_root;
    s.bundle[1] = inter;
    clst_buf_init(&b, 1u << 20);
    assert_int_equal(nx_build(&s, &b), 0);
    in = real_input(b.data, b.size, NX_T);
    assert_int_equal(run(&in, NULL, "untrusted signing certificate"), CLST_E_VERIFY);
    clst_buf_cleanup(&b);
    X509_free(inter);
    X509_free(fake);
    EVP_PKEY_free(fake_key);
}

/* ---- time ----------------------------------------------------------------------------------- */

static void
test_times_each_certificate(void **state)
{
    (void)state;
    /* Windows that overlap without nesting, so that a time can be outside one certificate's
     * validity and inside the others'. */
    static const struct {
        struct nx_windows w;
        int64_t at; /* relative to NX_T */
        const char *who;
    } cases[] = {
        {{-200, 100000, -1000, 1000, -1000, 1000}, -500, "root"},           /* root not yet valid */
        {{-100000, 500, -1000, 1000, -1000, 1000}, 700, "root"},            /* root expired */
        {{-100000, 100000, -200, 1000, -1000, 1000}, -500, "intermediate"}, /* inter not yet */
        {{-100000, 100000, -1000, 300, -1000, 1000}, 700, "intermediate"},  /* inter expired */
        {{-100000, 100000, -1000, 1000, -200, 1000}, -500, "leaf"},         /* leaf not yet */
        {{-100000, 100000, -1000, 1000, -1000, 300}, 700, "leaf"},          /* leaf expired */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct nx_pki p;
        struct nx_spec s;
        assert_int_equal(nx_pki_init(&p, &cases[i].w), 0);
        nx_spec_default(&s, &p);
        s.timestamp_ms = (uint64_t)(NX_T + cases[i].at) * 1000; /* inside the leaf unless not */
        if (strcmp(cases[i].who, "leaf") == 0) {
            s.timestamp_ms = (uint64_t)NX_T * 1000;
        }
        struct clst_buf b;
        struct clst_err err = {0};
        clst_buf_init(&b, 1u << 20);
        assert_int_equal(nx_build(&s, &b), 0);
        struct clst_evidence_input in = nx_input(&p, b.data, b.size);
        in.at = NX_T + cases[i].at;
        enum clst_status rc = nx_verify_with(b.data, b.size, &in, p.anchors, &err);
        if (rc != CLST_E_VERIFY || strstr(err.msg, "untrusted signing certificate") == NULL) {
            print_message("case %zu (%s): %d %s\n", i, cases[i].who, rc, err.msg);
            fail();
        }
        /* At NX_T every certificate is valid. */
        in.at = NX_T;
        s.timestamp_ms = (uint64_t)NX_T * 1000;
        clst_buf_reset(&b);
        assert_int_equal(nx_build(&s, &b), 0);
        in.evidence = b.data;
        in.evidence_size = b.size;
        assert_int_equal(nx_verify_with(b.data, b.size, &in, p.anchors, &err), CLST_OK);
        clst_buf_cleanup(&b);
        nx_pki_cleanup(&p);
    }
}

static void
test_timestamp_in_leaf_validity(void **state)
{
    (void)state;
    struct nx_spec s;
    nx_spec_default(&s, &pki); /* leaf valid [NX_T - 3600, NX_T + 10800] */
    static const struct {
        int64_t ms; /* relative to NX_T * 1000 */
        enum clst_status want;
    } cases[] = {
        {-3600 * 1000, CLST_OK},
        {-3600 * 1000 - 1, CLST_E_VERIFY},
        {10800 * 1000 - 1, CLST_OK},
        {10800 * 1000, CLST_E_VERIFY}, /* notAfter is exclusive, as for the chain */
        {-86400 * 1000, CLST_E_VERIFY},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        s.timestamp_ms = (uint64_t)(NX_T * 1000 + cases[i].ms);
        assert_int_equal(run_spec(&s, NULL, "timestamp"), cases[i].want);
    }
    /* The self-signed sample's mistake: a timestamp in seconds. */
    s.timestamp_ms = (uint64_t)NX_T;
    assert_int_equal(run_spec(&s, NULL, "timestamp"), CLST_E_VERIFY);
}

/* ---- binding, nonce, options ---------------------------------------------------------------- */

static void
test_binding(void **state)
{
    (void)state;
    uint8_t ones[1024], rd[64];
    memset(ones, 0x01, sizeof(ones));
    memset(rd, 0x01, sizeof(rd));

    /* user_data is the report data: it must equal the expected bytes exactly. */
    struct clst_evidence_input in = real_input(prod, prod_size, NX_T_PROD);
    in.report_data = ones;
    in.report_data_size = sizeof(ones);
    assert_int_equal(run(&in, NULL, NULL), CLST_OK);
    in.report_data_size = 1023;
    assert_int_equal(run(&in, NULL, "report data"), CLST_E_VERIFY);
    in.report_data = rd;
    in.report_data_size = sizeof(rd);
    assert_int_equal(run(&in, NULL, "report data"), CLST_E_VERIFY);
    /* Runtime data: SHA-256 of it must be the first 32 bytes of user_data. */
    in = real_input(prod, prod_size, NX_T_PROD);
    in.runtime_data = (const uint8_t *)"runtime";
    in.runtime_data_size = 7;
    assert_int_equal(run(&in, NULL, "runtime data"), CLST_E_VERIFY);

    /* 2024-05: user_data present but empty, bound to the empty report data only. */
    in = real_input(may, may_size, NX_T_2024_05);
    in.report_data = (const uint8_t *)"";
    in.report_data_size = 0;
    assert_int_equal(run(&in, NULL, NULL), CLST_OK);
    in.report_data = rd;
    in.report_data_size = 1;
    assert_int_equal(run(&in, NULL, "report data"), CLST_E_VERIFY);
    in = real_input(may, may_size, NX_T_2024_05);
    in.runtime_data = (const uint8_t *)"";
    in.runtime_data_size = 0;
    assert_int_equal(run(&in, NULL, "runtime data"), CLST_E_VERIFY);

    /* Absent user_data (missing or null) is not empty user_data: no binding is possible. */
    struct nx_spec s;
    struct clst_evidence_input sin = nx_input(&pki, NULL, 0);
    sin.report_data = (const uint8_t *)"";
    sin.report_data_size = 0;
    nx_spec_default(&s, &pki);
    s.user_data_mode = NX_ABSENT;
    assert_int_equal(run_spec(&s, &sin, "no user_data"), CLST_E_VERIFY);
    s.user_data_mode = NX_NULL;
    assert_int_equal(run_spec(&s, &sin, "no user_data"), CLST_E_VERIFY);
    sin.report_data = NULL;
    sin.runtime_data = (const uint8_t *)"x";
    sin.runtime_data_size = 1;
    assert_int_equal(run_spec(&s, &sin, "no user_data"), CLST_E_VERIFY);
    sin.runtime_data = NULL;
    sin.runtime_data_size = 0;
    assert_int_equal(run_spec(&s, &sin, NULL), CLST_OK); /* nothing to bind: fine */
    s.user_data_mode = NX_PRESENT;
    s.user_data_size = 0;
    sin.report_data = (const uint8_t *)"";
    assert_int_equal(run_spec(&s, &sin, NULL), CLST_OK);

    /* A synthetic document whose user_data binds runtime data: the kind hands the framework
     * user_data as the report data, and its first 32 bytes are SHA-256 of the runtime data. */
    static const char runtime[] = "{\"keys\":[{\"kid\":\"TpmEphemeralEncryptionKey\"}]}";
    uint8_t bound[CLST_EVIDENCE_REPORT_DATA_SIZE], digest[CLST_SHA256_SIZE];
    assert_int_equal(
        clst_evidence_report_data_bind((const uint8_t *)runtime, strlen(runtime), bound), CLST_OK);
    nx_spec_default(&s, &pki);
    memcpy(s.user_data, bound, sizeof(bound));
    s.user_data_size = sizeof(bound);
    struct clst_buf b;
    struct clst_err err = {0};
    clst_buf_init(&b, 1u << 20);
    assert_int_equal(nx_build(&s, &b), 0);
    struct nitro_doc *doc = calloc(1, sizeof(*doc));
    assert_non_null(doc);
    assert_int_equal(evidence_nitro_parse(b.data, b.size, doc, &err), CLST_OK);
    sin = nx_input(&pki, b.data, b.size);
    sin.runtime_data = (const uint8_t *)runtime;
    sin.runtime_data_size = strlen(runtime);
    assert_int_equal(evidence_nitro_verify_with(doc, b.data, b.size, &sin, pki.anchors, &err),
                     CLST_OK);
    size_t rd_size = 0;
    const uint8_t *got = evidence_nitro_ops.report_data(doc, &rd_size);
    assert_int_equal(rd_size, sizeof(bound));
    assert_memory_equal(got, bound, sizeof(bound));
    assert_int_equal(clst_sha256(runtime, strlen(runtime), digest), CLST_OK);
    assert_memory_equal(got, digest, sizeof(digest));
    free(doc);
    clst_buf_cleanup(&b);
}

static void
test_nonce_option(void **state)
{
    (void)state;
    char *ones_hex;
    uint8_t ones[1024];
    memset(ones, 0x01, sizeof(ones));
    ones_hex = hex_of(ones, sizeof(ones));

    struct clst_evidence_input in = real_input(prod, prod_size, NX_T_PROD);
    json_t *opts = json_pack("{s:s}", "nonce", ones_hex);
    assert_non_null(opts);
    in.options = opts;
    assert_int_equal(run(&in, NULL, NULL), CLST_OK);
    json_decref(opts);
    ones_hex[2047] = '2'; /* ...0102 */
    opts = json_pack("{s:s}", "nonce", ones_hex);
    in.options = opts;
    assert_int_equal(run(&in, NULL, "nonce"), CLST_E_VERIFY);
    json_decref(opts);
    opts = json_pack("{s:s}", "nonce", "01");
    in.options = opts;
    assert_int_equal(run(&in, NULL, "nonce"), CLST_E_VERIFY);
    json_decref(opts);
    opts = json_pack("{s:s}", "nonce", "");
    in.options = opts;
    assert_int_equal(run(&in, NULL, "nonce"), CLST_E_VERIFY);

    /* Present but empty matches "" only. */
    in = real_input(may, may_size, NX_T_2024_05);
    in.options = opts;
    assert_int_equal(run(&in, NULL, NULL), CLST_OK);
    json_decref(opts);
    opts = json_pack("{s:s}", "nonce", "00");
    in.options = opts;
    assert_int_equal(run(&in, NULL, "nonce"), CLST_E_VERIFY);
    json_decref(opts);

    /* Absent (missing or null) is not empty. */
    struct nx_spec s;
    struct clst_evidence_input sin = nx_input(&pki, NULL, 0);
    opts = json_pack("{s:s}", "nonce", "");
    sin.options = opts;
    nx_spec_default(&s, &pki);
    s.nonce_mode = NX_ABSENT;
    assert_int_equal(run_spec(&s, &sin, "no nonce"), CLST_E_VERIFY);
    s.nonce_mode = NX_NULL;
    assert_int_equal(run_spec(&s, &sin, "no nonce"), CLST_E_VERIFY);
    s.nonce_mode = NX_PRESENT;
    s.nonce_size = 0;
    assert_int_equal(run_spec(&s, &sin, NULL), CLST_OK);
    json_decref(opts);

    /* Options that are not understood are refused, never ignored. */
    static const char *const bad[] = {
        "[]",
        "\"nonce\"",
        "{\"nonce\":1}",
        "{\"nonce\":\"0\"}",
        "{\"nonce\":\"zz\"}",
        "{\"Nonce\":\"00\"}",
        "{\"nonce\":\"00\",\"pcr0\":\"00\"}",
        "{\"nonce\":null}",
    };
    in = real_input(prod, prod_size, NX_T_PROD);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_error_t jerr;
        opts = json_loads(bad[i], JSON_DECODE_ANY, &jerr);
        assert_non_null(opts);
        in.options = opts;
        assert_int_equal(run(&in, NULL, "nitro option"), CLST_E_INVAL);
        json_decref(opts);
    }
    /* Over 1024 bytes. */
    char *long_hex = malloc(2 * 1025 + 1);
    assert_non_null(long_hex);
    memset(long_hex, '0', 2 * 1025);
    long_hex[2 * 1025] = '\0';
    opts = json_pack("{s:s}", "nonce", long_hex);
    in.options = opts;
    assert_int_equal(run(&in, NULL, "nonce"), CLST_E_INVAL);
    json_decref(opts);
    free(long_hex);
    free(ones_hex);
    struct nitro_options o;
    assert_int_equal(evidence_nitro_options_parse(NULL, NULL, NULL), CLST_E_INVAL);
    assert_int_equal(evidence_nitro_options_parse(NULL, &o, NULL), CLST_OK);
    assert_false(o.has_nonce);
}

/* ---- limits and other input ----------------------------------------------------------------- */

static void
test_limits_before_signature(void **state)
{
    (void)state;
    struct nx_spec s;
    uint8_t garbage[96];
    memset(garbage, 0x5a, sizeof(garbage));

    /* Each oversized field, in a document whose signature is garbage: CLST_E_LIMIT, so the
     * signature was never looked at (it would have been CLST_E_VERIFY). */
    for (int k = 0; k < 6; k++) {
        nx_spec_default(&s, &pki);
        s.sig_raw = garbage;
        s.sig_size = sizeof(garbage);
        assert_int_equal(run_spec(&s, NULL, "COSE signature"), CLST_E_VERIFY);
        switch (k) {
        case 0:
            s.user_data_size = NITRO_USER_DATA_MAX + 1;
            break;
        case 1:
            s.nonce_size = NITRO_USER_DATA_MAX + 1;
            break;
        case 2:
            s.public_key_size = NITRO_USER_DATA_MAX + 1;
            break;
        case 3:
            for (size_t i = 0; i <= NITRO_CABUNDLE_MAX; i++) {
                s.bundle[i] = pki.inter;
            }
            s.bundle_count = NITRO_CABUNDLE_MAX + 1;
            break;
        case 4:
            s.pcr_mask = 0xFFFFFFFFu;
            s.raw[NX_PCRS] = (const uint8_t *)"\xb8\x21"; /* 33 entries */
            s.raw_size[NX_PCRS] = 2;
            break;
        default: {
            static char id[NITRO_MODULE_ID_MAX + 2];
            memset(id, 'i', sizeof(id) - 1);
            s.module_id = id;
            break;
        }
        }
        assert_int_equal(run_spec(&s, NULL, NULL), CLST_E_LIMIT);
    }

    /* Whole documents over the kind's limit, whatever they hold: the framework refuses them
     * before parsing. A valid document followed by padding to the limit + 1. */
    assert_int_equal(clst_evidence_max_size(CLST_EVIDENCE_NITRO), NITRO_EVIDENCE_MAX_SIZE);
    uint8_t *big = calloc(1, NITRO_EVIDENCE_MAX_SIZE + 1);
    assert_non_null(big);
    memcpy(big, prod, prod_size);
    struct clst_evidence_input in = real_input(big, NITRO_EVIDENCE_MAX_SIZE + 1, NX_T_PROD);
    assert_int_equal(run(&in, NULL, "limit"), CLST_E_LIMIT);
    in.evidence_size = NITRO_EVIDENCE_MAX_SIZE;
    assert_int_equal(run(&in, NULL, "unexpected bytes"), CLST_E_MALFORMED);
    free(big);
}

static void
test_other_input(void **state)
{
    (void)state;
    assert_true(clst_evidence_kind_supported(CLST_EVIDENCE_NITRO));
    struct clst_evidence_input in = real_input(prod, prod_size, NX_T_PROD);
    in.endorsements = prod;
    in.endorsements_size = 1;
    assert_int_equal(run(&in, NULL, "endorsements"), CLST_E_INVAL);
    in = real_input(prod, prod_size, NX_T_PROD);
    STACK_OF(X509_CRL) *crls = sk_X509_CRL_new_null();
    assert_non_null(crls);
    in.crls = crls; /* given, but AWS publishes no CRLs for this chain: nothing covers it */
    assert_int_equal(run(&in, NULL, "untrusted signing certificate"), CLST_E_VERIFY);
    sk_X509_CRL_free(crls);
    in = real_input(NULL, 0, NX_T_PROD);
    assert_int_equal(run(&in, NULL, "empty"), CLST_E_MALFORMED);

    /* A document without PCR0 identifies no enclave. */
    struct nx_spec s;
    nx_spec_default(&s, &pki);
    s.pcr_mask = 0xFFFE;
    assert_int_equal(run_spec(&s, NULL, "no PCR0"), CLST_E_VERIFY);
    struct nitro_doc *doc = calloc(1, sizeof(*doc));
    assert_non_null(doc);
    assert_true(evidence_nitro_is_debug(doc)); /* no PCR0: fail closed */
    doc->pcr_mask = 1;
    assert_true(evidence_nitro_is_debug(doc));
    doc->pcr[0][47] = 1;
    assert_false(evidence_nitro_is_debug(doc));

    /* Claims of a synthetic document: every PCR present, absent fields left out, empty ones "". */
    struct clst_buf b;
    struct clst_err err = {0};
    nx_spec_default(&s, &pki);
    s.pcr_mask = 0xFFFFFFFFu;
    s.public_key_mode = NX_NULL;
    s.user_data_mode = NX_ABSENT;
    s.nonce_size = 0;
    clst_buf_init(&b, 1u << 20);
    assert_int_equal(nx_build(&s, &b), 0);
    assert_int_equal(evidence_nitro_parse(b.data, b.size, doc, &err), CLST_OK);
    struct clst_evidence_input sin = nx_input(&pki, b.data, b.size);
    assert_int_equal(evidence_nitro_verify_with(doc, b.data, b.size, &sin, pki.anchors, &err),
                     CLST_OK);
    json_t *claims = json_object();
    assert_int_equal(evidence_nitro_ops.claims(doc, claims, &err), CLST_OK);
    for (unsigned i = 0; i < 32; i++) {
        char name[32];
        snprintf(name, sizeof(name), "aws-nitro-pcr%u", i);
        assert_non_null(claim_str(claims, name));
    }
    assert_null(json_object_get(claims, NITRO_CLAIM_PUBLIC_KEY));
    assert_null(json_object_get(claims, NITRO_CLAIM_USER_DATA));
    assert_string_equal(claim_str(claims, NITRO_CLAIM_NONCE), "");
    assert_string_equal(claim_str(claims, NITRO_CLAIM_MODULE_ID), s.module_id);
    json_decref(claims);
    clst_buf_cleanup(&b);
    free(doc);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_valid),
        cmocka_unit_test(test_real_debug),
        cmocka_unit_test(test_real_times),
        cmocka_unit_test(test_selfsigned),
        cmocka_unit_test(test_flips_real),
        cmocka_unit_test(test_flips_synthetic),
        cmocka_unit_test(test_signature_scalars),
        cmocka_unit_test(test_mismatched_certificate),
        cmocka_unit_test(test_leaf_constraints),
        cmocka_unit_test(test_chain_shape),
        cmocka_unit_test(test_wrong_root),
        cmocka_unit_test(test_times_each_certificate),
        cmocka_unit_test(test_timestamp_in_leaf_validity),
        cmocka_unit_test(test_binding),
        cmocka_unit_test(test_nonce_option),
        cmocka_unit_test(test_limits_before_signature),
        cmocka_unit_test(test_other_input),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
