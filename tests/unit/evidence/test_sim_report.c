/*
 * Unit tests for src/evidence/sim_report.c: the sim evidence parser, verifier and claim mapper.
 *
 * Valid evidence round-trips into the documented claims. Negative cases: every truncation, every
 * byte flipped (and every bit of the report, length and signature), oversized input (rejected
 * with CLST_E_LIMIT before anything is parsed), wrong magic, unknown version and signature
 * algorithm, reserved flag bits and reserved bytes (re-signed, so the parser is what rejects
 * them), bad certificate lengths, trailing bytes, debug, report data and runtime data mismatch,
 * untrusted and look-alike roots, expired and not-yet-valid certificates, revoked certificates,
 * a P-256, P-521 or RSA platform key, SHA-256 or DER signatures, another key's signature, a CA
 * certificate as platform certificate, a missing or different platform id.
 *
 * The verified-chain cache (sim_cache.c): a second verify of the same evidence hits it; a cached
 * chain is not used with a different root, at a time outside the chain's validity, with a
 * tampered certificate of the same subject and key, or when CRLs are given; 4 threads verify
 * valid and invalid evidence at once while the cache is being cleared.
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <pthread.h>
#include <stdint.h>

#include <cmocka.h>

#include <openssl/core_names.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include "sim_fixture.h"

static int
setup(void **state)
{
    struct fx *f = fx_new();
    if (f == NULL) {
        return -1;
    }
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    fx_free(*state);
    return 0;
}

/* Verifies `ev` and asserts the status; the message must say something when it fails, and
 * contain msg_part when that is not NULL. */
static void
expect_verify_msg(const struct fx *f, const uint8_t *ev, size_t size, enum clst_status want,
                  const char *msg_part)
{
    struct clst_err err = {0};
    enum clst_status rc = fx_verify(f, ev, size, &err);
    if (rc != want) {
        fail_msg("want %s, got %s: %s", clst_status_str(want), clst_status_str(rc), err.msg);
    }
    if (want != CLST_OK) {
        assert_int_equal(err.status, want);
        assert_true(strlen(err.msg) > 10);
        if (msg_part != NULL && strstr(err.msg, msg_part) == NULL) {
            fail_msg("message '%s' does not mention '%s'", err.msg, msg_part);
        }
    }
}

static void
expect_verify(const struct fx *f, const uint8_t *ev, size_t size, enum clst_status want)
{
    expect_verify_msg(f, ev, size, want, NULL);
}

/* Evidence of report r with (cert, key), built by the fixture, must give `want` (and mention
 * msg_part when that is not NULL). */
static void
expect_built(const struct fx *f, const struct clst_sim_report *r, X509 *cert, EVP_PKEY *key,
             enum clst_status want, const char *msg_part)
{
    struct clst_buf ev;
    clst_buf_init(&ev, CLST_SIM_EVIDENCE_MAX_SIZE);
    assert_int_equal(fx_build(r, cert, key, &ev), CLST_OK);
    expect_verify_msg(f, ev.data, ev.size, want, msg_part);
    clst_buf_cleanup(&ev);
}

/* clst_evidence_verify of `in` must give `want`; a failure gives no claims and, when msg_part is
 * not NULL, a message that contains it. */
static void
expect_input(const struct clst_evidence_input *in, enum clst_status want, const char *msg_part)
{
    struct clst_err err = {0};
    json_t *claims = NULL;
    assert_int_equal(clst_evidence_verify(CLST_EVIDENCE_SIM, in, &claims, &err), want);
    if (want != CLST_OK) {
        assert_null(claims);
        if (msg_part != NULL) {
            assert_non_null(strstr(err.msg, msg_part));
        }
    }
    json_decref(claims);
}

/* Re-signs a tbs buffer after `mutate` changed it, with the fixture's platform key. */
static void
build_resigned(const struct fx *f, const struct clst_sim_report *r, size_t patch_off,
               const uint8_t *patch, size_t patch_size, struct clst_buf *out)
{
    size_t der_size = 0;
    X509 *cert = fx_platform_cert(f);
    assert_non_null(cert);
    uint8_t *der = fx_der(cert, &der_size);
    assert_non_null(der);
    struct clst_buf tbs;
    clst_buf_init(&tbs, CLST_SIM_EVIDENCE_MAX_SIZE);
    assert_int_equal(evidence_sim_encode_tbs(r, der, der_size, &tbs), CLST_OK);
    if (patch != NULL) {
        assert_true(patch_off + patch_size <= tbs.size);
        memcpy(tbs.data + patch_off, patch, patch_size);
    }
    assert_int_equal(fx_sign_ecdsa(f->platform_key, CLST_HASH_SHA384, CLST_SIG_RAW, &tbs, out),
                     CLST_OK);
    clst_buf_cleanup(&tbs);
    free(der);
    X509_free(cert);
}

/* ---- valid evidence ------------------------------------------------------------------------- */

static void
test_valid_parse(void **state)
{
    struct fx *f = *state;
    struct clst_sim_evidence ev;
    struct clst_err err = {0};

    assert_int_equal(clst_evidence_sim_parse(f->ev.data, f->ev.size, &ev, &err), CLST_OK);
    assert_int_equal(ev.report.version, CLST_SIM_VERSION);
    assert_int_equal(ev.report.sig_alg, CLST_SIM_SIG_ALG_ES384);
    assert_int_equal(ev.report.flags, 0);
    assert_int_equal(ev.report.product_id, 0x1234);
    assert_int_equal(ev.report.svn, 7);
    assert_memory_equal(ev.report.mrenclave, f->id.mrenclave, sizeof(f->id.mrenclave));
    assert_memory_equal(ev.report.mrsigner, f->id.mrsigner, sizeof(f->id.mrsigner));
    assert_memory_equal(ev.report.platform_id, clst_evidence_sim_platform_id(f->p),
                        CLST_SIM_PLATFORM_ID_SIZE);
    assert_memory_equal(ev.report.report_data, f->report_data, sizeof(f->report_data));
    assert_int_equal(ev.signed_size + CLST_SIM_SIGNATURE_SIZE, f->ev.size);
    assert_int_equal(ev.signed_size, CLST_SIM_REPORT_SIZE + CLST_SIM_CERT_LEN_SIZE + ev.cert_size);
    assert_memory_equal(ev.signature, f->ev.data + ev.signed_size, CLST_SIM_SIGNATURE_SIZE);
    assert_memory_equal(ev.cert_der, f->ev.data + 0x102, ev.cert_size);

    /* The byte layout of docs/evidence-sim.md, read directly. */
    const uint8_t *b = f->ev.data;
    assert_memory_equal(b, "CSIM", 4);
    assert_int_equal(b[4] | b[5] << 8, 1);
    assert_int_equal(b[6] | b[7] << 8, 1);
    assert_int_equal(b[0x0C] | b[0x0D] << 8, 0x1234);
    assert_int_equal(b[0x0E] | b[0x0F] << 8, 7);
    assert_memory_equal(b + 0x10, f->id.mrenclave, 48);
    assert_memory_equal(b + 0x40, f->id.mrsigner, 32);
    assert_memory_equal(b + 0x80, f->report_data, 64);
    assert_int_equal((size_t)(b[0x100] | b[0x101] << 8), ev.cert_size);
}

static void
test_valid_claims(void **state)
{
    struct fx *f = *state;
    struct clst_evidence_input in = fx_input(f, f->ev.data, f->ev.size);
    json_t *claims = NULL;
    struct clst_err err = {0};
    char hex[200];

    assert_int_equal(clst_evidence_verify(CLST_EVIDENCE_SIM, &in, &claims, &err), CLST_OK);
    assert_non_null(claims);
    assert_int_equal(json_object_size(claims), 9);
    assert_string_equal(json_string_value(json_object_get(claims, "x-ms-attestation-type")), "sim");
    assert_int_equal(clst_hex_to_str(f->id.mrenclave, 48, hex, sizeof(hex)), CLST_OK);
    assert_string_equal(json_string_value(json_object_get(claims, "x-cloister-sim-mrenclave")),
                        hex);
    assert_int_equal(clst_hex_to_str(f->id.mrsigner, 32, hex, sizeof(hex)), CLST_OK);
    assert_string_equal(json_string_value(json_object_get(claims, "x-cloister-sim-mrsigner")), hex);
    assert_int_equal(json_integer_value(json_object_get(claims, "x-cloister-sim-product-id")),
                     0x1234);
    assert_int_equal(json_integer_value(json_object_get(claims, "x-cloister-sim-svn")), 7);
    assert_true(json_is_false(json_object_get(claims, "x-cloister-sim-is-debuggable")));
    assert_int_equal(clst_hex_to_str(f->report_data, 64, hex, sizeof(hex)), CLST_OK);
    assert_string_equal(json_string_value(json_object_get(claims, "x-cloister-sim-report-data")),
                        hex);
    assert_int_equal(clst_hex_to_str(clst_evidence_sim_platform_id(f->p), 16, hex, sizeof(hex)),
                     CLST_OK);
    assert_string_equal(json_string_value(json_object_get(claims, "x-cloister-sim-platform-id")),
                        hex);
    assert_int_equal(json_integer_value(json_object_get(claims, "x-cloister-sim-report-version")),
                     1);

    /* No hardware claim name: only the attestation type is shared, with the value "sim". */
    const char *name;
    json_t *value;
    json_object_foreach(claims, name, value)
    {
        (void)value;
        if (strcmp(name, "x-ms-attestation-type") != 0) {
            assert_true(strncmp(name, "x-cloister-sim-", 15) == 0);
        }
    }
    json_decref(claims);
}

/* ---- structural damage ---------------------------------------------------------------------- */

static void
test_every_truncation(void **state)
{
    struct fx *f = *state;
    struct clst_sim_evidence ev;
    for (size_t n = 0; n < f->ev.size; n++) {
        struct clst_err err = {0};
        /* An exact-size copy so ASan catches any read past the end. */
        uint8_t *copy = malloc(n ? n : 1);
        assert_non_null(copy);
        memcpy(copy, f->ev.data, n);
        assert_int_equal(clst_evidence_sim_parse(copy, n, &ev, &err), CLST_E_MALFORMED);
        assert_true(strlen(err.msg) > 10);
        expect_verify(f, copy, n, CLST_E_MALFORMED);
        free(copy);
    }
}

/* Each byte XOR 0xFF, through the whole pipeline: every mutant must be rejected as malformed or
 * unverifiable, never accepted and never anything else. */
static void
test_every_byte_flipped(void **state)
{
    struct fx *f = *state;
    size_t malformed = 0, unverified = 0;
    uint8_t *copy = malloc(f->ev.size);
    assert_non_null(copy);
    for (size_t i = 0; i < f->ev.size; i++) {
        struct clst_err err = {0};
        memcpy(copy, f->ev.data, f->ev.size);
        copy[i] ^= 0xFF;
        enum clst_status rc = fx_verify(f, copy, f->ev.size, &err);
        if (rc == CLST_E_MALFORMED) {
            malformed++;
        } else if (rc == CLST_E_VERIFY) {
            unverified++;
        } else {
            fail_msg("byte %zu flipped: got %s (%s)", i, clst_status_str(rc), err.msg);
        }
    }
    free(copy);
    print_message("%zu bytes flipped: %zu malformed, %zu failed verification\n", f->ev.size,
                  malformed, unverified);
    assert_int_equal(malformed + unverified, f->ev.size);
    /* Both kinds of rejection occur: the reserved bytes and lengths are malformed, the measured
     * fields and the signature fail verification. */
    assert_true(malformed >= 16 + 64 + 8);
    assert_true(unverified >= 48 + 32 + 64 + 96);
}

/* Every single bit of the fixed header fields (magic, version, algorithm, flags, product id,
 * svn) and of the certificate length, where single bits carry meaning (the debug flag alone must
 * break the signature; a reserved flag bit alone must be malformed). Every other byte is covered
 * by test_every_byte_flipped. */
static void
test_every_bit_flipped(void **state)
{
    struct fx *f = *state;
    static const struct {
        size_t from, to;
    } ranges[] = {{0x000, 0x010}, {0x100, 0x102}};
    uint8_t *copy = malloc(f->ev.size);
    assert_non_null(copy);
    for (size_t n = 0; n < sizeof(ranges) / sizeof(ranges[0]); n++) {
        for (size_t i = ranges[n].from; i < ranges[n].to; i++) {
            for (int bit = 0; bit < 8; bit++) {
                struct clst_err err = {0};
                memcpy(copy, f->ev.data, f->ev.size);
                copy[i] ^= (uint8_t)(1u << bit);
                enum clst_status rc = fx_verify(f, copy, f->ev.size, &err);
                if (rc != CLST_E_MALFORMED && rc != CLST_E_VERIFY) {
                    fail_msg("byte %zu bit %d flipped: got %s (%s)", i, bit, clst_status_str(rc),
                             err.msg);
                }
                /* The flags word: bit 0 (debug) parses and breaks the signature; every other
                 * bit is reserved. */
                if (i >= 0x008 && i < 0x00C) {
                    bool debug_bit = i == 0x008 && bit == 0;
                    assert_int_equal(rc, debug_bit ? CLST_E_VERIFY : CLST_E_MALFORMED);
                    if (debug_bit) {
                        assert_non_null(strstr(err.msg, "signature"));
                    }
                }
            }
        }
    }
    free(copy);
}

static void
test_oversized(void **state)
{
    struct fx *f = *state;
    struct clst_sim_evidence ev;
    struct clst_err err = {0};
    size_t big = 1u << 20;
    uint8_t *buf = calloc(1, big);
    assert_non_null(buf);
    memcpy(buf, f->ev.data, f->ev.size);

    /* One byte over the limit: the size check answers, not the parser (which would say
     * "trailing bytes") and not the signature check. */
    assert_int_equal(clst_evidence_sim_parse(buf, CLST_SIM_EVIDENCE_MAX_SIZE + 1, &ev, &err),
                     CLST_E_LIMIT);
    expect_verify(f, buf, CLST_SIM_EVIDENCE_MAX_SIZE + 1, CLST_E_LIMIT);
    expect_verify(f, buf, big, CLST_E_LIMIT);
    assert_int_equal(clst_evidence_max_size(CLST_EVIDENCE_SIM), CLST_SIM_EVIDENCE_MAX_SIZE);

    /* At the limit it is parsed, and the zeros after the signature are trailing bytes. */
    expect_verify(f, buf, CLST_SIM_EVIDENCE_MAX_SIZE, CLST_E_MALFORMED);
    expect_verify(f, buf, f->ev.size + 1, CLST_E_MALFORMED);
    assert_int_equal(clst_evidence_sim_parse(buf, f->ev.size + 1, &ev, &err), CLST_E_MALFORMED);
    assert_non_null(strstr(err.msg, "after the signature"));
    free(buf);
}

static void
test_parse_output_untouched_on_failure(void **state)
{
    struct fx *f = *state;
    struct clst_sim_evidence ev;
    memset(&ev, 0xAA, sizeof(ev));
    assert_int_equal(clst_evidence_sim_parse(f->ev.data, f->ev.size - 1, &ev, NULL),
                     CLST_E_MALFORMED);
    for (size_t i = 0; i < sizeof(ev.cert_der); i++) {
        assert_int_equal(ev.cert_der[i], 0xAA);
    }
    assert_int_equal(ev.report.version, 0xAAAA);
    assert_int_equal(clst_evidence_sim_parse(NULL, 1, &ev, NULL), CLST_E_INVAL);
    assert_int_equal(clst_evidence_sim_parse(f->ev.data, f->ev.size, NULL, NULL), CLST_E_INVAL);
    assert_int_equal(clst_evidence_sim_parse(NULL, 0, &ev, NULL), CLST_E_MALFORMED);
}

/* Fields the parser refuses even under a valid signature. */
static void
expect_resigned_malformed(const struct fx *f, const struct clst_sim_report *r, size_t off,
                          const uint8_t *patch, size_t patch_size, const char *msg_part)
{
    struct clst_buf ev;
    struct clst_err err = {0};
    struct clst_sim_evidence parsed;
    clst_buf_init(&ev, CLST_SIM_EVIDENCE_MAX_SIZE + 64);
    build_resigned(f, r, off, patch, patch_size, &ev);
    assert_int_equal(clst_evidence_sim_parse(ev.data, ev.size, &parsed, &err), CLST_E_MALFORMED);
    if (msg_part != NULL && strstr(err.msg, msg_part) == NULL) {
        fail_msg("message '%s' does not mention '%s'", err.msg, msg_part);
    }
    expect_verify(f, ev.data, ev.size, CLST_E_MALFORMED);
    clst_buf_cleanup(&ev);
}

static void
test_resigned_control(void **state)
{
    /* The helper itself makes acceptable evidence when nothing is patched. */
    struct fx *f = *state;
    struct clst_sim_report r = fx_report(f);
    struct clst_buf ev;
    clst_buf_init(&ev, CLST_SIM_EVIDENCE_MAX_SIZE);
    build_resigned(f, &r, 0, NULL, 0, &ev);
    expect_verify(f, ev.data, ev.size, CLST_OK);
    clst_buf_cleanup(&ev);
}

static void
test_bad_magic_version_algorithm(void **state)
{
    struct fx *f = *state;
    struct clst_sim_report r = fx_report(f);

    expect_resigned_malformed(f, &r, 0, (const uint8_t *)"CSIN", 4, "magic");
    expect_resigned_malformed(f, &r, 0, (const uint8_t *)"MISC", 4, "magic");
    static const uint16_t versions[] = {0, 2, 0x100, 0xFFFF};
    for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
        r = fx_report(f);
        r.version = versions[i];
        expect_resigned_malformed(f, &r, 0, NULL, 0, "unknown report version");
    }
    static const uint16_t algs[] = {0, 2, 3, 0xFFFF};
    for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
        r = fx_report(f);
        r.sig_alg = algs[i];
        expect_resigned_malformed(f, &r, 0, NULL, 0, "signature algorithm");
    }
}

static void
test_reserved_flags(void **state)
{
    struct fx *f = *state;
    for (int bit = 1; bit < 32; bit++) {
        struct clst_sim_report r = fx_report(f);
        r.flags = 1u << bit;
        expect_resigned_malformed(f, &r, 0, NULL, 0, "reserved flag bits");
        r.flags = (1u << bit) | CLST_SIM_FLAG_DEBUG;
        expect_resigned_malformed(f, &r, 0, NULL, 0, "reserved flag bits");
    }
}

static void
test_reserved_bytes(void **state)
{
    struct fx *f = *state;
    struct clst_sim_report r = fx_report(f);
    static const uint8_t one = 0x01;
    for (size_t off = 0x70; off < 0x80; off++) {
        expect_resigned_malformed(f, &r, off, &one, 1, "reserved bytes 0x070..0x07f");
    }
    for (size_t off = 0xC0; off < 0x100; off++) {
        expect_resigned_malformed(f, &r, off, &one, 1, "reserved bytes 0x0c0..0x0ff");
    }
}

static void
test_bad_cert_length(void **state)
{
    struct fx *f = *state;
    struct clst_sim_report r = fx_report(f);
    X509 *cert = fx_platform_cert(f);
    size_t der_size = 0;
    uint8_t *der = fx_der(cert, &der_size);
    assert_non_null(der);

    static const uint16_t lens[] = {0, CLST_SIM_CERT_MAX_SIZE + 1, 0xFFFF};
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        uint8_t le[2] = {(uint8_t)(lens[i] & 0xFF), (uint8_t)(lens[i] >> 8)};
        expect_resigned_malformed(f, &r, 0x100, le, 2, "certificate length");
    }
    /* Lengths that fit the limit but not the evidence: the layout no longer adds up. */
    uint16_t wrong[] = {(uint16_t)(der_size - 1), (uint16_t)(der_size + 1),
                        (uint16_t)(der_size + CLST_SIM_SIGNATURE_SIZE), 1};
    for (size_t i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++) {
        uint8_t le[2] = {(uint8_t)(wrong[i] & 0xFF), (uint8_t)(wrong[i] >> 8)};
        expect_resigned_malformed(f, &r, 0x100, le, 2, NULL);
    }
    free(der);
    X509_free(cert);
}

static void
test_cert_not_der(void **state)
{
    /* A certificate field that holds no certificate, correctly signed: rejected by the
     * verifier as malformed (the parser does not interpret it). */
    struct fx *f = *state;
    struct clst_sim_report r = fx_report(f);
    uint8_t junk[600];
    memset(junk, 0x30, sizeof(junk));
    struct clst_buf tbs, ev;
    clst_buf_init(&tbs, CLST_SIM_EVIDENCE_MAX_SIZE);
    clst_buf_init(&ev, CLST_SIM_EVIDENCE_MAX_SIZE);
    assert_int_equal(evidence_sim_encode_tbs(&r, junk, sizeof(junk), &tbs), CLST_OK);
    assert_int_equal(fx_sign_ecdsa(f->platform_key, CLST_HASH_SHA384, CLST_SIG_RAW, &tbs, &ev),
                     CLST_OK);
    expect_verify(f, ev.data, ev.size, CLST_E_MALFORMED);

    /* A valid certificate followed by junk inside the field. */
    X509 *cert = fx_platform_cert(f);
    size_t der_size = 0;
    uint8_t *der = fx_der(cert, &der_size);
    uint8_t padded[CLST_SIM_CERT_MAX_SIZE];
    memcpy(padded, der, der_size);
    padded[der_size] = 0;
    clst_buf_reset(&tbs);
    clst_buf_reset(&ev);
    assert_int_equal(evidence_sim_encode_tbs(&r, padded, der_size + 1, &tbs), CLST_OK);
    assert_int_equal(fx_sign_ecdsa(f->platform_key, CLST_HASH_SHA384, CLST_SIG_RAW, &tbs, &ev),
                     CLST_OK);
    expect_verify(f, ev.data, ev.size, CLST_E_MALFORMED);
    free(der);
    X509_free(cert);
    clst_buf_cleanup(&tbs);
    clst_buf_cleanup(&ev);
}

static void
test_encode_tbs_args(void **state)
{
    struct fx *f = *state;
    struct clst_sim_report r = fx_report(f);
    uint8_t der[CLST_SIM_CERT_MAX_SIZE + 1] = {0};
    struct clst_buf out;
    clst_buf_init(&out, 10000);
    assert_int_equal(evidence_sim_encode_tbs(NULL, der, 10, &out), CLST_E_INVAL);
    assert_int_equal(evidence_sim_encode_tbs(&r, NULL, 10, &out), CLST_E_INVAL);
    assert_int_equal(evidence_sim_encode_tbs(&r, der, 0, &out), CLST_E_INVAL);
    assert_int_equal(evidence_sim_encode_tbs(&r, der, sizeof(der), &out), CLST_E_INVAL);
    assert_int_equal(evidence_sim_encode_tbs(&r, der, 10, NULL), CLST_E_INVAL);
    assert_int_equal(out.size, 0);
    clst_buf_cleanup(&out);
    clst_buf_init(&out, 100); /* too small: nothing appended */
    assert_int_equal(evidence_sim_encode_tbs(&r, der, 10, &out), CLST_E_LIMIT);
    assert_int_equal(out.size, 0);
    clst_buf_cleanup(&out);
}

/* ---- semantic checks ------------------------------------------------------------------------ */

static void
test_debug(void **state)
{
    struct fx *f = *state;
    struct clst_sim_identity id = f->id;
    id.debug = true;
    struct clst_buf ev;
    struct clst_err err = {0};
    json_t *claims = NULL;
    clst_buf_init(&ev, CLST_SIM_EVIDENCE_MAX_SIZE);
    assert_int_equal(clst_evidence_sim_report_create(f->p, &id, f->report_data, &ev, &err),
                     CLST_OK);

    expect_verify(f, ev.data, ev.size, CLST_E_VERIFY);
    struct clst_evidence_input in = fx_input(f, ev.data, ev.size);
    expect_input(&in, CLST_E_VERIFY, "debuggable");

    in.allow_debug = true;
    assert_int_equal(clst_evidence_verify(CLST_EVIDENCE_SIM, &in, &claims, &err), CLST_OK);
    assert_true(json_is_true(json_object_get(claims, "x-cloister-sim-is-debuggable")));
    json_decref(claims);
    clst_buf_cleanup(&ev);
}

static void
test_report_data(void **state)
{
    struct fx *f = *state;
    struct clst_evidence_input in = fx_input(f, f->ev.data, f->ev.size);
    uint8_t other[CLST_SIM_REPORT_DATA_SIZE];

    in.report_data = f->report_data;
    in.report_data_size = sizeof(f->report_data);
    expect_input(&in, CLST_OK, NULL);

    /* A change in any one byte, the first or the last, is a mismatch. */
    for (size_t i = 0; i < sizeof(other); i += sizeof(other) - 1) {
        memcpy(other, f->report_data, sizeof(other));
        other[i] ^= 1;
        in.report_data = other;
        expect_input(&in, CLST_E_VERIFY, "report data");
    }
    /* A prefix is not the report data. */
    in.report_data = f->report_data;
    in.report_data_size = 32;
    expect_input(&in, CLST_E_VERIFY, NULL);
}

static void
test_runtime_data_binding(void **state)
{
    struct fx *f = *state;
    static const char runtime[] = "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"tee\"}]}";
    uint8_t rd[CLST_SIM_REPORT_DATA_SIZE];
    struct clst_buf ev;
    struct clst_err err = {0};

    /* SHA-256("abc") || 32 zero bytes, from FIPS 180-2. */
    static const uint8_t abc[32] = {0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea,
                                    0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
                                    0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c,
                                    0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
    assert_int_equal(clst_evidence_report_data_bind((const uint8_t *)"abc", 3, rd), CLST_OK);
    assert_memory_equal(rd, abc, 32);
    for (size_t i = 32; i < sizeof(rd); i++) {
        assert_int_equal(rd[i], 0);
    }

    assert_int_equal(clst_evidence_report_data_bind((const uint8_t *)runtime, strlen(runtime), rd),
                     CLST_OK);
    clst_buf_init(&ev, CLST_SIM_EVIDENCE_MAX_SIZE);
    assert_int_equal(clst_evidence_sim_report_create(f->p, &f->id, rd, &ev, &err), CLST_OK);

    struct clst_evidence_input in = fx_input(f, ev.data, ev.size);
    in.runtime_data = (const uint8_t *)runtime;
    in.runtime_data_size = strlen(runtime);
    expect_input(&in, CLST_OK, NULL);

    /* Other runtime data, a truncation of it, or empty runtime data do not match. */
    in.runtime_data_size = strlen(runtime) - 1;
    expect_input(&in, CLST_E_VERIFY, "runtime data");
    in.runtime_data = (const uint8_t *)"";
    in.runtime_data_size = 0;
    expect_input(&in, CLST_E_VERIFY, NULL);
    /* The fixture's evidence was not made for this runtime data at all. */
    in = fx_input(f, f->ev.data, f->ev.size);
    in.runtime_data = (const uint8_t *)runtime;
    in.runtime_data_size = strlen(runtime);
    expect_input(&in, CLST_E_VERIFY, NULL);

    /* Empty runtime data binds too (SHA-256 of nothing), and is checked when given. */
    assert_int_equal(clst_evidence_report_data_bind(NULL, 0, rd), CLST_OK);
    clst_buf_reset(&ev);
    assert_int_equal(clst_evidence_sim_report_create(f->p, &f->id, rd, &ev, &err), CLST_OK);
    in = fx_input(f, ev.data, ev.size);
    in.runtime_data = (const uint8_t *)"";
    in.runtime_data_size = 0;
    expect_input(&in, CLST_OK, NULL);
    assert_int_equal(clst_evidence_report_data_bind(NULL, 1, rd), CLST_E_INVAL);
    clst_buf_cleanup(&ev);
}

/* ---- trust ---------------------------------------------------------------------------------- */

/* A look-alike of f's root: the same subject name, another key (self-signed, valid for a day). */
static void
lookalike_root(const struct fx *f, EVP_PKEY **out_key, X509 **out_root)
{
    struct clst_err err = {0};
    assert_int_equal(clst_ec_generate(CLST_CURVE_P384, out_key), CLST_OK);
    assert_int_equal(evidence_sim_cert_issue(*out_key, NULL, *out_key,
                                             "Cloister sim root CA (development only, not "
                                             "hardware)",
                                             NULL, true, f->now - 100, f->now + 86400, out_root,
                                             &err),
                     CLST_OK);
    assert_int_equal(
        X509_NAME_cmp(X509_get_subject_name(*out_root), X509_get_subject_name(f->root)), 0);
}

static void
test_untrusted_root(void **state)
{
    struct fx *f = *state;
    struct fx *other = fx_new();
    assert_non_null(other);
    struct clst_err err = {0};

    /* Evidence of one platform against another platform's root, both ways. */
    struct clst_evidence_input in = fx_input(other, f->ev.data, f->ev.size);
    expect_input(&in, CLST_E_VERIFY, "untrusted platform certificate");
    expect_verify(f, other->ev.data, other->ev.size, CLST_E_VERIFY);

    /* Trusting both roots accepts both. */
    STACK_OF(X509) *both = sk_X509_new_null();
    assert_non_null(both);
    assert_true(sk_X509_push(both, f->root) > 0);
    assert_true(sk_X509_push(both, other->root) > 0);
    in.roots = both;
    expect_input(&in, CLST_OK, NULL);
    sk_X509_free(both); /* the certificates belong to the platforms */

    /* A look-alike root: the same subject name, another key, issuing a platform certificate
     * with our platform id. Names do not make trust. */
    EVP_PKEY *fake_key = NULL, *fake_platform = NULL;
    X509 *fake_root = NULL, *fake_cert = NULL;
    lookalike_root(f, &fake_key, &fake_root);
    assert_int_equal(clst_ec_generate(CLST_CURVE_P384, &fake_platform), CLST_OK);
    assert_int_equal(evidence_sim_cert_issue(fake_key, fake_root, fake_platform,
                                             "Cloister sim platform",
                                             clst_evidence_sim_platform_id(f->p), false,
                                             f->now - 100, f->now + 86400, &fake_cert, &err),
                     CLST_OK);
    struct clst_sim_report r = fx_report(f);
    expect_built(f, &r, fake_cert, fake_platform, CLST_E_VERIFY, NULL);

    X509_free(fake_cert);
    X509_free(fake_root);
    EVP_PKEY_free(fake_platform);
    EVP_PKEY_free(fake_key);
    fx_free(other);
}

static void
test_validity_time(void **state)
{
    struct fx *f = *state;
    struct clst_evidence_input in = fx_input(f, f->ev.data, f->ev.size);

    /* Inside the platform certificate's validity (two years of 366 days from creation). */
    in.at = f->now + 365 * 86400LL;
    expect_input(&in, CLST_OK, NULL);
    /* Expired at the given time (the root is still valid then). */
    in.at = f->now + CLST_SIM_PLATFORM_VALIDITY + 1;
    expect_input(&in, CLST_E_VERIFY, "expired");
    /* Not yet valid: before creation minus the clock-skew margin. */
    in.at = f->now - 86400;
    expect_input(&in, CLST_E_VERIFY, "not yet valid");
    /* Long after everything expired. */
    in.at = f->now + CLST_SIM_ROOT_VALIDITY + 1;
    expect_input(&in, CLST_E_VERIFY, NULL);
}

/* A CRL issued by root revoking `serial` (or nothing when serial is NULL). */
static X509_CRL *
make_crl(const struct fx *f, const ASN1_INTEGER *serial)
{
    X509_CRL *crl = X509_CRL_new();
    ASN1_TIME *last = ASN1_TIME_set(NULL, (time_t)(f->now - 60));
    ASN1_TIME *next = ASN1_TIME_set(NULL, (time_t)(f->now + 86400));
    assert_non_null(crl);
    assert_non_null(last);
    assert_non_null(next);
    assert_int_equal(X509_CRL_set_version(crl, X509_CRL_VERSION_2), 1);
    assert_int_equal(X509_CRL_set_issuer_name(crl, X509_get_subject_name(f->root)), 1);
    assert_int_equal(X509_CRL_set1_lastUpdate(crl, last), 1);
    assert_int_equal(X509_CRL_set1_nextUpdate(crl, next), 1);
    if (serial != NULL) {
        X509_REVOKED *rev = X509_REVOKED_new();
        assert_non_null(rev);
        assert_int_equal(X509_REVOKED_set_serialNumber(rev, (ASN1_INTEGER *)serial), 1);
        assert_int_equal(X509_REVOKED_set_revocationDate(rev, last), 1);
        assert_int_equal(X509_CRL_add0_revoked(crl, rev), 1);
    }
    assert_int_equal(X509_CRL_sort(crl), 1);
    assert_true(X509_CRL_sign(crl, f->root_key, EVP_sha384()) > 0);
    ASN1_TIME_free(last);
    ASN1_TIME_free(next);
    return crl;
}

static void
test_revocation(void **state)
{
    struct fx *f = *state;
    struct clst_evidence_input in = fx_input(f, f->ev.data, f->ev.size);
    X509 *cert = fx_platform_cert(f);
    assert_non_null(cert);
    STACK_OF(X509_CRL) *crls = sk_X509_CRL_new_null();
    assert_non_null(crls);

    X509_CRL *empty = make_crl(f, NULL);
    assert_true(sk_X509_CRL_push(crls, empty) > 0);
    in.crls = crls;
    expect_input(&in, CLST_OK, NULL);

    X509_CRL *revoking = make_crl(f, X509_get0_serialNumber(cert));
    (void)sk_X509_CRL_pop(crls);
    X509_CRL_free(empty);
    assert_true(sk_X509_CRL_push(crls, revoking) > 0);
    expect_input(&in, CLST_E_VERIFY, "revoked");

    sk_X509_CRL_pop_free(crls, X509_CRL_free);
    X509_free(cert);
}

/* ---- the verified-chain cache (sim_cache.c) -------------------------------------------------- */

static void
cache_counts(uint64_t *hits, uint64_t *misses)
{
    evidence_sim_cache_stats(hits, misses);
}

#define ANY_MISSES UINT64_MAX

/* The cache counters must be `hits` and `misses` (not checked when ANY_MISSES). */
static void
expect_counts(uint64_t hits, uint64_t misses)
{
    uint64_t h = UINT64_MAX, m = UINT64_MAX;
    cache_counts(&h, &m);
    assert_int_equal(h, hits);
    if (misses != ANY_MISSES) {
        assert_int_equal(m, misses);
    }
}

static void
test_cache_hit(void **state)
{
    struct fx *f = *state;
    evidence_sim_cache_clear();
    expect_counts(0, 0);

    expect_verify(f, f->ev.data, f->ev.size, CLST_OK);
    expect_counts(0, 1);
    expect_verify(f, f->ev.data, f->ev.size, CLST_OK);
    expect_verify(f, f->ev.data, f->ev.size, CLST_OK);
    expect_counts(2, 1);

    /* A hit still checks the report signature and binding: a flipped report byte or signature
     * byte fails with the chain cached. */
    struct clst_buf bad;
    clst_buf_init(&bad, CLST_SIM_EVIDENCE_MAX_SIZE);
    assert_int_equal(clst_buf_append(&bad, f->ev.data, f->ev.size), CLST_OK);
    bad.data[0x80] ^= 0x01; /* report data */
    expect_verify(f, bad.data, bad.size, CLST_E_VERIFY);
    bad.data[0x80] ^= 0x01;
    bad.data[bad.size - 1] ^= 0x01; /* signature */
    expect_verify(f, bad.data, bad.size, CLST_E_VERIFY);
    expect_counts(4, ANY_MISSES); /* both reached the signature through the cache */
    clst_buf_cleanup(&bad);
}

static void
test_cache_other_root(void **state)
{
    struct fx *f = *state;
    struct fx *other = fx_new();
    assert_non_null(other);

    /* Cached while both roots were trusted (the chain ends at f's root)... */
    evidence_sim_cache_clear();
    STACK_OF(X509) *both = sk_X509_new_null();
    assert_non_null(both);
    assert_true(sk_X509_push(both, f->root) > 0);
    assert_true(sk_X509_push(both, other->root) > 0);
    struct clst_evidence_input in = fx_input(f, f->ev.data, f->ev.size);
    in.roots = both;
    expect_input(&in, CLST_OK, NULL);
    /* ... and hit again with both. */
    expect_input(&in, CLST_OK, NULL);
    expect_counts(1, ANY_MISSES);

    /* ... is not used when only another root is trusted. */
    in.roots = other->roots;
    expect_input(&in, CLST_E_VERIFY, "untrusted platform certificate");
    expect_counts(1, ANY_MISSES);

    /* Nor with a look-alike of f's root: same subject name, another key. */
    EVP_PKEY *fake_key = NULL;
    X509 *fake_root = NULL;
    lookalike_root(f, &fake_key, &fake_root);
    STACK_OF(X509) *fake = sk_X509_new_null();
    assert_non_null(fake);
    assert_true(sk_X509_push(fake, fake_root) > 0);
    in.roots = fake;
    expect_input(&in, CLST_E_VERIFY, NULL);
    expect_counts(1, ANY_MISSES);

    /* No roots at all is still a caller error, cached chain or not. */
    STACK_OF(X509) *none = sk_X509_new_null();
    assert_non_null(none);
    in.roots = none;
    expect_input(&in, CLST_E_INVAL, NULL);

    sk_X509_free(none);
    sk_X509_free(fake);
    sk_X509_free(both);
    X509_free(fake_root);
    EVP_PKEY_free(fake_key);
    fx_free(other);
}

static void
test_cache_time(void **state)
{
    struct fx *f = *state;
    struct clst_evidence_input in = fx_input(f, f->ev.data, f->ev.size);

    evidence_sim_cache_clear();
    expect_input(&in, CLST_OK, NULL);
    /* Later but inside the validity: a hit. */
    in.at = f->now + 365 * 86400LL;
    expect_input(&in, CLST_OK, NULL);
    expect_counts(1, 1);

    /* Expired, not yet valid, long after: the cached chain does not answer. */
    in.at = f->now + CLST_SIM_PLATFORM_VALIDITY + 1;
    expect_input(&in, CLST_E_VERIFY, "expired");
    in.at = f->now - 86400;
    expect_input(&in, CLST_E_VERIFY, "not yet valid");
    in.at = f->now + CLST_SIM_ROOT_VALIDITY + 1;
    expect_input(&in, CLST_E_VERIFY, NULL);
    in.at = -1;
    expect_input(&in, CLST_E_INVAL, NULL);
    expect_counts(1, 4); /* -1 is not even looked up */
}

static void
test_cache_tampered_cert(void **state)
{
    /* The platform certificate with one byte of its (root's) signature changed: same subject,
     * same key, same platform id, so a report signed by the platform key passes everything but
     * the chain. With the genuine chain cached it must still fail: other DER, other cache key. */
    struct fx *f = *state;
    size_t der_size = 0;
    X509 *cert = fx_platform_cert(f);
    assert_non_null(cert);
    uint8_t *der = fx_der(cert, &der_size);
    assert_non_null(der);
    der[der_size - 1] ^= 0x01; /* last byte of the signature's s */

    const unsigned char *p = der;
    X509 *tampered = d2i_X509(NULL, &p, (long)der_size);
    assert_non_null(tampered);
    assert_int_equal(X509_NAME_cmp(X509_get_subject_name(tampered), X509_get_subject_name(cert)),
                     0);
    assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(tampered), X509_get0_pubkey(cert)), 1);

    evidence_sim_cache_clear();
    expect_verify(f, f->ev.data, f->ev.size, CLST_OK);
    struct clst_sim_report r = fx_report(f);
    struct clst_buf tbs, ev;
    clst_buf_init(&tbs, CLST_SIM_EVIDENCE_MAX_SIZE);
    clst_buf_init(&ev, CLST_SIM_EVIDENCE_MAX_SIZE);
    assert_int_equal(evidence_sim_encode_tbs(&r, der, der_size, &tbs), CLST_OK);
    assert_int_equal(fx_sign_ecdsa(f->platform_key, CLST_HASH_SHA384, CLST_SIG_RAW, &tbs, &ev),
                     CLST_OK);
    struct clst_err err = {0};
    assert_int_equal(fx_verify(f, ev.data, ev.size, &err), CLST_E_VERIFY);
    assert_non_null(strstr(err.msg, "untrusted platform certificate"));
    /* Twice: a failed chain is never cached. */
    assert_int_equal(fx_verify(f, ev.data, ev.size, &err), CLST_E_VERIFY);
    expect_counts(0, ANY_MISSES);
    /* The genuine one still hits. */
    expect_verify(f, f->ev.data, f->ev.size, CLST_OK);
    expect_counts(1, ANY_MISSES);

    clst_buf_cleanup(&ev);
    clst_buf_cleanup(&tbs);
    X509_free(tampered);
    free(der);
    X509_free(cert);
}

static void
test_cache_crls_bypass(void **state)
{
    /* With CRLs the cache is neither read nor written: a chain cached without CRLs does not
     * hide a revocation. */
    struct fx *f = *state;
    struct clst_evidence_input in = fx_input(f, f->ev.data, f->ev.size);
    X509 *cert = fx_platform_cert(f);
    assert_non_null(cert);

    evidence_sim_cache_clear();
    expect_verify(f, f->ev.data, f->ev.size, CLST_OK);
    STACK_OF(X509_CRL) *crls = sk_X509_CRL_new_null();
    assert_non_null(crls);
    assert_true(sk_X509_CRL_push(crls, make_crl(f, X509_get0_serialNumber(cert))) > 0);
    in.crls = crls;
    expect_input(&in, CLST_E_VERIFY, "revoked");
    expect_counts(0, 1);

    sk_X509_CRL_pop_free(crls, X509_CRL_free);
    X509_free(cert);
}

#define CACHE_THREADS 4
#define CACHE_ROUNDS  12

struct cache_job {
    const struct fx *f;
    const struct fx *other;
    int index;
    int wrong; /* results that differed from what was expected */
};

static void *
cache_worker(void *arg)
{
    struct cache_job *job = arg;
    for (int i = 0; i < CACHE_ROUNDS; i++) {
        struct clst_evidence_input in = fx_input(job->f, job->f->ev.data, job->f->ev.size);
        enum clst_status want = CLST_OK;
        json_t *claims = NULL;
        switch ((job->index + i) % 4) {
        case 1:
            in.roots = job->other->roots; /* untrusted root */
            want = CLST_E_VERIFY;
            break;
        case 2:
            in.at = job->f->now + CLST_SIM_PLATFORM_VALIDITY + 1; /* expired */
            want = CLST_E_VERIFY;
            break;
        case 3:
            if (job->index == 0) {
                evidence_sim_cache_clear(); /* races lookups and inserts */
            }
            in.evidence = job->other->ev.data; /* the other platform, against its root */
            in.evidence_size = job->other->ev.size;
            in.roots = job->other->roots;
            break;
        default:
            break;
        }
        enum clst_status rc = clst_evidence_verify(CLST_EVIDENCE_SIM, &in, &claims, NULL);
        if (rc != want || (rc == CLST_OK) != (claims != NULL)) {
            job->wrong++;
        }
        json_decref(claims);
    }
    return NULL;
}

static void
test_cache_threads(void **state)
{
    struct fx *f = *state;
    struct fx *other = fx_new();
    assert_non_null(other);
    pthread_t th[CACHE_THREADS];
    struct cache_job jobs[CACHE_THREADS];
    uint64_t hits = 0, misses = 0;

    evidence_sim_cache_clear();
    for (int i = 0; i < CACHE_THREADS; i++) {
        jobs[i] = (struct cache_job){.f = f, .other = other, .index = i, .wrong = 0};
        assert_int_equal(pthread_create(&th[i], NULL, cache_worker, &jobs[i]), 0);
    }
    for (int i = 0; i < CACHE_THREADS; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(jobs[i].wrong, 0);
    }
    /* Every verify is one lookup; the clears zero the counters, so only a bound holds. */
    cache_counts(&hits, &misses);
    assert_true(hits + misses <= (uint64_t)(CACHE_THREADS * CACHE_ROUNDS));
    /* After the storm the cache still answers correctly, and hits. */
    expect_verify(f, f->ev.data, f->ev.size, CLST_OK);
    expect_verify(f, other->ev.data, other->ev.size, CLST_E_VERIFY);
    uint64_t before = 0, after = 0;
    cache_counts(&before, NULL);
    expect_verify(f, f->ev.data, f->ev.size, CLST_OK);
    cache_counts(&after, NULL);
    assert_int_equal(after, before + 1);
    fx_free(other);
}

/* ---- wrong keys and algorithms -------------------------------------------------------------- */

/* Issues a platform certificate from the trusted root for `key` with our platform id. */
static X509 *
issue_platform(const struct fx *f, EVP_PKEY *key, bool ca, const uint8_t *platform_id)
{
    X509 *cert = NULL;
    struct clst_err err = {0};
    if (evidence_sim_cert_issue(f->root_key, f->root, key, "Cloister sim platform", platform_id, ca,
                                f->now - 100, f->now + 86400, &cert, &err) != CLST_OK) {
        fail_msg("issue: %s", err.msg);
    }
    return cert;
}

static void
expect_wrong_key(const struct fx *f, enum clst_curve curve, const char *msg_part)
{
    EVP_PKEY *key = NULL;
    assert_int_equal(clst_ec_generate(curve, &key), CLST_OK);
    X509 *cert = issue_platform(f, key, false, clst_evidence_sim_platform_id(f->p));
    struct clst_sim_report r = fx_report(f);
    /* A genuine signature by that key (r || s of its own size, zero-padded to the field). */
    expect_built(f, &r, cert, key, CLST_E_VERIFY, msg_part);
    X509_free(cert);
    EVP_PKEY_free(key);
}

static void
test_wrong_curve(void **state)
{
    struct fx *f = *state;
    expect_wrong_key(f, CLST_CURVE_P256, "EC P-256");
    expect_wrong_key(f, CLST_CURVE_P521, "EC P-521");
}

static void
test_rsa_platform_key(void **state)
{
    /* RSA-768 makes a 96-byte signature: exactly the field's size, so the only thing that can
     * reject it is the key-type check. */
    struct fx *f = *state;
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)768);
    assert_non_null(key);
    X509 *cert = issue_platform(f, key, false, clst_evidence_sim_platform_id(f->p));
    struct clst_sim_report r = fx_report(f);
    size_t der_size = 0;
    uint8_t *der = fx_der(cert, &der_size);
    struct clst_buf tbs, ev;
    clst_buf_init(&tbs, CLST_SIM_EVIDENCE_MAX_SIZE);
    clst_buf_init(&ev, CLST_SIM_EVIDENCE_MAX_SIZE);
    assert_int_equal(evidence_sim_encode_tbs(&r, der, der_size, &tbs), CLST_OK);

    EVP_MD_CTX *md = EVP_MD_CTX_new();
    uint8_t sig[CLST_SIM_SIGNATURE_SIZE];
    size_t sig_size = sizeof(sig);
    assert_non_null(md);
    assert_int_equal(EVP_DigestSignInit_ex(md, NULL, "SHA384", NULL, NULL, key, NULL), 1);
    assert_int_equal(EVP_DigestSign(md, sig, &sig_size, tbs.data, tbs.size), 1);
    assert_int_equal(sig_size, CLST_SIM_SIGNATURE_SIZE);
    EVP_MD_CTX_free(md);
    assert_int_equal(clst_buf_append(&ev, tbs.data, tbs.size), CLST_OK);
    assert_int_equal(clst_buf_append(&ev, sig, sig_size), CLST_OK);

    struct clst_err err = {0};
    assert_int_equal(fx_verify(f, ev.data, ev.size, &err), CLST_E_VERIFY);
    assert_non_null(strstr(err.msg, "RSA"));

    clst_buf_cleanup(&tbs);
    clst_buf_cleanup(&ev);
    free(der);
    X509_free(cert);
    EVP_PKEY_free(key);
}

static void
test_wrong_signature_forms(void **state)
{
    struct fx *f = *state;
    struct clst_sim_report r = fx_report(f);
    X509 *cert = fx_platform_cert(f);
    size_t der_size = 0;
    uint8_t *der = fx_der(cert, &der_size);
    struct clst_buf tbs, ev;
    clst_buf_init(&tbs, CLST_SIM_EVIDENCE_MAX_SIZE);
    clst_buf_init(&ev, CLST_SIM_EVIDENCE_MAX_SIZE);
    assert_int_equal(evidence_sim_encode_tbs(&r, der, der_size, &tbs), CLST_OK);

    /* The right key over SHA-256 instead of SHA-384. */
    assert_int_equal(fx_sign_ecdsa(f->platform_key, CLST_HASH_SHA256, CLST_SIG_RAW, &tbs, &ev),
                     CLST_OK);
    expect_verify(f, ev.data, ev.size, CLST_E_VERIFY);
    /* The right key and hash, DER-encoded (zero-padded into the field). */
    clst_buf_reset(&ev);
    assert_int_equal(fx_sign_ecdsa(f->platform_key, CLST_HASH_SHA384, CLST_SIG_DER, &tbs, &ev),
                     CLST_OK);
    expect_verify(f, ev.data, ev.size, CLST_E_VERIFY);
    /* Another P-384 key with the genuine certificate. */
    EVP_PKEY *other = NULL;
    assert_int_equal(clst_ec_generate(CLST_CURVE_P384, &other), CLST_OK);
    clst_buf_reset(&ev);
    assert_int_equal(fx_sign_ecdsa(other, CLST_HASH_SHA384, CLST_SIG_RAW, &tbs, &ev), CLST_OK);
    expect_verify(f, ev.data, ev.size, CLST_E_VERIFY);
    /* An all-zero and an all-0xFF signature. */
    for (int v = 0; v < 2; v++) {
        clst_buf_reset(&ev);
        uint8_t sig[CLST_SIM_SIGNATURE_SIZE];
        memset(sig, v ? 0xFF : 0x00, sizeof(sig));
        assert_int_equal(clst_buf_append(&ev, tbs.data, tbs.size), CLST_OK);
        assert_int_equal(clst_buf_append(&ev, sig, sizeof(sig)), CLST_OK);
        expect_verify(f, ev.data, ev.size, CLST_E_VERIFY);
    }
    /* Control: the same construction with the right key, hash and form verifies. */
    clst_buf_reset(&ev);
    assert_int_equal(fx_sign_ecdsa(f->platform_key, CLST_HASH_SHA384, CLST_SIG_RAW, &tbs, &ev),
                     CLST_OK);
    expect_verify(f, ev.data, ev.size, CLST_OK);

    EVP_PKEY_free(other);
    clst_buf_cleanup(&tbs);
    clst_buf_cleanup(&ev);
    free(der);
    X509_free(cert);
}

static void
test_ca_or_root_as_platform(void **state)
{
    struct fx *f = *state;
    struct clst_sim_report r = fx_report(f);

    /* The root signs the report itself, presenting its own certificate. */
    expect_built(f, &r, f->root, f->root_key, CLST_E_VERIFY, "CA certificate");

    /* A sub-CA certificate with our platform id. */
    EVP_PKEY *key = NULL;
    assert_int_equal(clst_ec_generate(CLST_CURVE_P384, &key), CLST_OK);
    X509 *ca = issue_platform(f, key, true, clst_evidence_sim_platform_id(f->p));
    expect_built(f, &r, ca, key, CLST_E_VERIFY, "CA certificate");

    X509_free(ca);
    EVP_PKEY_free(key);
}

static void
test_platform_id(void **state)
{
    struct fx *f = *state;
    struct clst_sim_report r = fx_report(f);
    EVP_PKEY *key = NULL;
    assert_int_equal(clst_ec_generate(CLST_CURVE_P384, &key), CLST_OK);

    /* A genuine platform certificate of the same root for another platform id. */
    uint8_t other_id[CLST_SIM_PLATFORM_ID_SIZE];
    memcpy(other_id, clst_evidence_sim_platform_id(f->p), sizeof(other_id));
    other_id[15] ^= 1;
    X509 *cert = issue_platform(f, key, false, other_id);
    expect_built(f, &r, cert, key, CLST_E_VERIFY, "platform id");
    /* Control: a report naming that id verifies. */
    memcpy(r.platform_id, other_id, sizeof(other_id));
    expect_built(f, &r, cert, key, CLST_OK, NULL);
    X509_free(cert);

    /* A platform certificate without a platform id. */
    cert = issue_platform(f, key, false, NULL);
    expect_built(f, &r, cert, key, CLST_E_VERIFY, "no platform id");

    X509_free(cert);
    EVP_PKEY_free(key);
}

static void
test_endorsements_refused(void **state)
{
    struct fx *f = *state;
    struct clst_evidence_input in = fx_input(f, f->ev.data, f->ev.size);
    json_t *claims = NULL;
    in.endorsements = (const uint8_t *)"x";
    in.endorsements_size = 1;
    assert_int_equal(clst_evidence_verify(CLST_EVIDENCE_SIM, &in, &claims, NULL), CLST_E_INVAL);
    assert_null(claims);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_parse),
        cmocka_unit_test(test_valid_claims),
        cmocka_unit_test(test_every_truncation),
        cmocka_unit_test(test_every_byte_flipped),
        cmocka_unit_test(test_every_bit_flipped),
        cmocka_unit_test(test_oversized),
        cmocka_unit_test(test_parse_output_untouched_on_failure),
        cmocka_unit_test(test_resigned_control),
        cmocka_unit_test(test_bad_magic_version_algorithm),
        cmocka_unit_test(test_reserved_flags),
        cmocka_unit_test(test_reserved_bytes),
        cmocka_unit_test(test_bad_cert_length),
        cmocka_unit_test(test_cert_not_der),
        cmocka_unit_test(test_encode_tbs_args),
        cmocka_unit_test(test_debug),
        cmocka_unit_test(test_report_data),
        cmocka_unit_test(test_runtime_data_binding),
        cmocka_unit_test(test_untrusted_root),
        cmocka_unit_test(test_validity_time),
        cmocka_unit_test(test_revocation),
        cmocka_unit_test(test_wrong_curve),
        cmocka_unit_test(test_rsa_platform_key),
        cmocka_unit_test(test_wrong_signature_forms),
        cmocka_unit_test(test_ca_or_root_as_platform),
        cmocka_unit_test(test_platform_id),
        cmocka_unit_test(test_endorsements_refused),
        cmocka_unit_test(test_cache_hit),
        cmocka_unit_test(test_cache_other_root),
        cmocka_unit_test(test_cache_time),
        cmocka_unit_test(test_cache_tampered_cert),
        cmocka_unit_test(test_cache_crls_bypass),
        cmocka_unit_test(test_cache_threads),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
