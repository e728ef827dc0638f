/*
 * Unit tests for src/evidence/nitro_doc.c: the COSE_Sign1 / attestation-document parser and the
 * Sig_structure digest.
 *
 * Real documents (tests/vectors/nitro/blocky-nitrite/, README there): the three AWS-issued ones
 * parse into the fields the README states (PCRs, sizes, user_data / nonce present with 1024 bytes,
 * or present but empty); the stored negative selfsigned_attestation is refused (its unprotected
 * header and cabundle are null). Every truncation of each real document and of a synthetic one is
 * refused, never accepted; so is a byte appended to each.
 * Synthetic documents (test_nitro_fixture.h) change one thing each: the envelope (tag, array
 * size, protected header, unprotected header, signature size, trailing bytes), every mandatory
 * field missing or null, duplicate and unknown keys, every field with the wrong type, each size
 * and count just past its cap (CLST_E_LIMIT) and at it (accepted), indefinite lengths.
 * The Sig_structure digest equals SHA-384 of libcbor's own encoding of the Sig_structure for
 * lengths on each side of every CBOR head-size boundary.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_nitro_fixture.h"

static struct nx_pki pki;
static struct nitro_doc *doc; /* 14 KiB: on the heap */

static int
setup(void **state)
{
    (void)state;
    doc = calloc(1, sizeof(*doc));
    return doc != NULL && nx_pki_init(&pki, NULL) == 0 ? 0 : -1;
}

static int
teardown(void **state)
{
    (void)state;
    nx_pki_cleanup(&pki);
    free(doc);
    return 0;
}

static enum clst_status
parse(const uint8_t *data, size_t size, struct clst_err *err)
{
    struct clst_err local = {0};
    enum clst_status rc = evidence_nitro_parse(data, size, doc, err != NULL ? err : &local);
    if (rc != CLST_OK) {
        /* Written in place, all zero after a failure; every rejection says why. */
        static const uint8_t zero[sizeof(struct nitro_doc)];
        assert_memory_equal(doc, zero, sizeof(*doc));
        assert_true((err != NULL ? err : &local)->msg[0] != '\0');
    }
    return rc;
}

/* Builds `s` and parses it, expecting `want` and (when given) msg_part in the message. */
static void
expect_spec(const struct nx_spec *s, enum clst_status want, const char *msg_part)
{
    struct clst_buf b;
    struct clst_err err = {0};
    clst_buf_init(&b, 1u << 20);
    assert_int_equal(nx_build(s, &b), 0);
    enum clst_status rc = parse(b.data, b.size, &err);
    if (rc != want) {
        print_message("got %d (%s), wanted %d\n", rc, err.msg, want);
    }
    assert_int_equal(rc, want);
    if (msg_part != NULL && strstr(err.msg, msg_part) == NULL) {
        print_message("message \"%s\" lacks \"%s\"\n", err.msg, msg_part);
        fail();
    }
    clst_buf_cleanup(&b);
}

/* ---- real documents ------------------------------------------------------------------------- */

static const char *const pcr_prod[] = {
    "e72a46ca80a260fb044a125442f0c7e331813bcbaf9724d9f3857758992766f2d65710a27aa94ae3949dd54e7c9fe8"
    "6a",
    "0343b056cd8485ca7890ddd833476d78460aed2aa161548e4e26bedf321726696257d623e8805f3f605946b3d8b0c6"
    "aa",
    "d5dcbdea0aa39c802f9d55ced2ea6e4d74ecec5f08fe40c508882639c9090642669106a062a3e24ee2805a3024b9b7"
    "5c",
    "45706d7b621e4620a332e147a5ddb000b049f73d47d3e61f6b03d2069152d4df6a4a786ad1c10102b955799a9dc96b"
    "44",
};

static void
assert_pcr(const uint8_t pcr[NITRO_PCR_SIZE], const char *hex)
{
    char got[2 * NITRO_PCR_SIZE + 1];
    assert_int_equal(clst_hex_to_str(pcr, NITRO_PCR_SIZE, got, sizeof(got)), CLST_OK);
    assert_string_equal(got, hex);
}

static bool
all_bytes(const uint8_t *p, size_t size, uint8_t v)
{
    for (size_t i = 0; i < size; i++) {
        if (p[i] != v) {
            return false;
        }
    }
    return true;
}

static void
test_real_documents(void **state)
{
    (void)state;
    size_t size = 0;
    uint8_t *d = nx_read("nitro_attestation.cose.bin", &size);
    assert_non_null(d);
    assert_int_equal(parse(d, size, NULL), CLST_OK);
    assert_false(doc->tagged);
    assert_string_equal(doc->module_id, "i-0a22e5c5f24d22174-enc0191cceb4289903f");
    assert_true(doc->timestamp_ms == UINT64_C(1725719859545));
    assert_int_equal(doc->pcr_mask, 0xFFFF);
    assert_pcr(doc->pcr[0], pcr_prod[0]);
    assert_pcr(doc->pcr[1], pcr_prod[1]);
    assert_pcr(doc->pcr[2], pcr_prod[2]);
    assert_pcr(doc->pcr[4], pcr_prod[3]);
    for (unsigned i = 3; i < 16; i++) {
        if (i != 4) {
            assert_true(all_bytes(doc->pcr[i], NITRO_PCR_SIZE, 0));
        }
    }
    assert_int_equal(doc->cert_size, 639);
    assert_int_equal(doc->cabundle_count, 4);
    assert_int_equal(doc->cabundle_size[0], 533);
    assert_int_equal(doc->cabundle_size[3], 708);
    assert_true(doc->public_key.present && doc->user_data.present && doc->nonce.present);
    assert_int_equal(doc->user_data.size, 1024);
    assert_int_equal(doc->nonce.size, 1024);
    assert_int_equal(doc->public_key.size, 1024);
    assert_true(all_bytes(doc->user_data.bytes, 1024, 0x01));
    assert_true(all_bytes(doc->nonce.bytes, 1024, 0x01));
    /* The signed regions are where the README's structure puts them. */
    assert_int_equal(doc->protected_off, 2);
    assert_int_equal(doc->protected_size, 4);
    assert_int_equal(doc->payload_off, 10);
    assert_int_equal(doc->payload_size, 7431);
    assert_memory_equal(doc->signature, d + size - 96, 96);
    free(d);

    d = nx_read("nitro_attestation_debug.cose.bin", &size);
    assert_non_null(d);
    assert_int_equal(parse(d, size, NULL), CLST_OK);
    assert_string_equal(doc->module_id, "i-0a22e5c5f24d22174-enc0191ccebaf8feaba");
    assert_true(doc->timestamp_ms == UINT64_C(1725719886508));
    for (unsigned i = 0; i < 3; i++) {
        assert_true(all_bytes(doc->pcr[i], NITRO_PCR_SIZE, 0)); /* debug mode */
    }
    assert_pcr(doc->pcr[4], pcr_prod[3]);
    assert_true(evidence_nitro_is_debug(doc));
    free(d);

    d = nx_read("nitro_attestation_2024-05.cose.bin", &size);
    assert_non_null(d);
    assert_int_equal(parse(d, size, NULL), CLST_OK);
    assert_string_equal(doc->module_id, "i-0eec57d9c38705a57-enc018f25eda1b897b7");
    assert_true(doc->timestamp_ms == UINT64_C(1715103786613));
    assert_pcr(doc->pcr[0],
               "4d8ff9d3a23815b17d4a46c648da68e822ec7d32e473e023ba96fb6e388af2d5e0838d1"
               "74a2d376d3593cc929b3d610e");
    assert_pcr(doc->pcr[1],
               "bcdf05fefccaa8e55bf2c8d6dee9e79bbff31e34bf28a99aa19e6b29c37ee80b214a414b"
               "7607236edf26fcb78654e63f");
    assert_pcr(doc->pcr[2],
               "3c679aaa8a7507b33e7a61524585cca6f338bbdd28364f8df80882e7b56ec21e31a4a96c"
               "5c59c6b5e9b3027e3f10f83a");
    assert_pcr(doc->pcr[4],
               "64c10725297672154771707bbcb161de5a9380b2cbdf6faecfa17403fcfd18e00a25eac5"
               "a22e21353dca2e7137604cd6");
    for (unsigned i = 3; i < 16; i++) {
        if (i != 4) {
            assert_true(all_bytes(doc->pcr[i], NITRO_PCR_SIZE, 0));
        }
    }
    assert_false(evidence_nitro_is_debug(doc));
    /* Present but empty, which is not absent. */
    assert_true(doc->user_data.present);
    assert_int_equal(doc->user_data.size, 0);
    assert_true(doc->nonce.present);
    assert_int_equal(doc->nonce.size, 0);
    assert_true(doc->public_key.present);
    assert_int_equal(doc->public_key.size, 426);
    assert_memory_equal(doc->public_key.bytes, "-----BEGIN RSA PUBLIC KEY-----", 30);
    free(d);
}

static void
test_selfsigned_negative(void **state)
{
    (void)state;
    size_t size = 0;
    struct clst_err err = {0};
    uint8_t *d = nx_read("selfsigned_attestation.cose.bin", &size);
    assert_non_null(d);
    /* Its unprotected header is null (byte 6 is 0xf6), not a map. */
    assert_int_equal(d[6], 0xf6);
    assert_int_equal(parse(d, size, &err), CLST_E_MALFORMED);
    assert_non_null(strstr(err.msg, "unprotected header"));
    /* Made into an empty map (the unprotected header is not signed), it still has no cabundle
     * (null): refused again, now for that. */
    d[6] = 0xa0;
    assert_int_equal(parse(d, size, &err), CLST_E_MALFORMED);
    assert_non_null(strstr(err.msg, "cabundle"));
    assert_non_null(strstr(err.msg, "null"));
    free(d);
}

/* Every proper prefix is refused as malformed, never accepted; one byte more is refused too. */
static void
check_truncations(const uint8_t *d, size_t size)
{
    for (size_t n = 0; n < size; n++) {
        enum clst_status rc = parse(d, n, NULL);
        if (rc != CLST_E_MALFORMED) {
            print_message("prefix of %zu bytes: %d\n", n, rc);
        }
        assert_int_equal(rc, CLST_E_MALFORMED);
    }
    uint8_t *more = malloc(size + 1);
    assert_non_null(more);
    memcpy(more, d, size);
    more[size] = 0x00;
    struct clst_err err = {0};
    assert_int_equal(parse(more, size + 1, &err), CLST_E_MALFORMED);
    assert_non_null(strstr(err.msg, "unexpected bytes after the COSE_Sign1"));
    free(more);
}

static void
test_truncations(void **state)
{
    (void)state;
    static const char *const files[] = {
        "nitro_attestation.cose.bin",
        "nitro_attestation_debug.cose.bin",
        "nitro_attestation_2024-05.cose.bin",
    };
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        size_t size = 0;
        uint8_t *d = nx_read(files[i], &size);
        assert_non_null(d);
        check_truncations(d, size);
        free(d);
    }
    struct nx_spec s;
    struct clst_buf b;
    nx_spec_default(&s, &pki);
    s.tagged = true;
    clst_buf_init(&b, 1u << 20);
    assert_int_equal(nx_build(&s, &b), 0);
    assert_int_equal(parse(b.data, b.size, NULL), CLST_OK);
    check_truncations(b.data, b.size);
    clst_buf_cleanup(&b);
}

/* ---- the envelope --------------------------------------------------------------------------- */

static void
test_envelope(void **state)
{
    (void)state;
    struct nx_spec s;
    struct clst_buf b;
    struct clst_err err = {0};

    nx_spec_default(&s, &pki);
    expect_spec(&s, CLST_OK, NULL);
    s.tagged = true; /* COSE_Sign1_Tagged */
    expect_spec(&s, CLST_OK, NULL);
    assert_true(doc->tagged);

    /* Another tag, an array of 3 or 5, a map instead of an array. */
    static const uint8_t tag17[] = {0xd1, 0x84, 0x40, 0xa0, 0x40, 0x40};
    assert_int_equal(parse(tag17, sizeof(tag17), &err), CLST_E_MALFORMED);
    assert_non_null(strstr(err.msg, "tag 17"));
    static const uint8_t arr3[] = {0x83, 0x44, 0xa1, 0x01, 0x38, 0x22, 0xa0, 0x40};
    assert_int_equal(parse(arr3, sizeof(arr3), &err), CLST_E_MALFORMED);
    assert_non_null(strstr(err.msg, "array of 4"));
    static const uint8_t arr5[] = {0x85, 0x44, 0xa1, 0x01, 0x38, 0x22, 0xa0, 0x40, 0x40, 0x40};
    assert_int_equal(parse(arr5, sizeof(arr5), &err), CLST_E_MALFORMED);
    static const uint8_t map[] = {0xa0};
    assert_int_equal(parse(map, sizeof(map), &err), CLST_E_MALFORMED);
    static const uint8_t two_tags[] = {0xd2, 0xd2, 0x84, 0x40, 0xa0, 0x40, 0x40};
    assert_int_equal(parse(two_tags, sizeof(two_tags), &err), CLST_E_MALFORMED);
    static const uint8_t indef[] = {0x9f, 0x44, 0xa1, 0x01, 0x38, 0x22, 0xa0, 0x40, 0x40, 0xff};
    assert_int_equal(parse(indef, sizeof(indef), &err), CLST_E_MALFORMED);
    assert_non_null(strstr(err.msg, "indefinite"));
    assert_int_equal(parse(NULL, 0, &err), CLST_E_MALFORMED);
    assert_int_equal(evidence_nitro_parse(NULL, 1, doc, &err), CLST_E_INVAL);
    assert_int_equal(evidence_nitro_parse(map, 1, NULL, &err), CLST_E_INVAL);

    /* The protected header: only {1: -35}, encoded exactly. */
    static const struct {
        uint8_t bytes[12];
        size_t size;
        enum clst_status want;
    } prot[] = {
        {{0xa1, 0x01, 0x38, 0x22}, 4, CLST_OK},
        {{0}, 0, CLST_E_MALFORMED},                                    /* empty */
        {{0xa0}, 1, CLST_E_MALFORMED},                                 /* {} */
        {{0xa1, 0x01, 0x26}, 3, CLST_E_MALFORMED},                     /* ES256 (-7) */
        {{0xa1, 0x01, 0x38, 0x23}, 4, CLST_E_MALFORMED},               /* ES512 (-36) */
        {{0xa1, 0x01, 0x18, 0x22}, 4, CLST_E_MALFORMED},               /* +34 */
        {{0xa1, 0x02, 0x38, 0x22}, 4, CLST_E_MALFORMED},               /* label 2 */
        {{0xa1, 0x21, 0x38, 0x22}, 4, CLST_E_MALFORMED},               /* label -2 */
        {{0xa2, 0x01, 0x38, 0x22, 0x04, 0x40}, 6, CLST_E_MALFORMED},   /* + kid */
        {{0xa1, 0x01, 0x38, 0x22, 0x00}, 5, CLST_E_MALFORMED},         /* trailing byte */
        {{0xa1, 0x01, 0x38}, 3, CLST_E_MALFORMED},                     /* truncated */
        {{0x82, 0x01, 0x38, 0x22}, 4, CLST_E_MALFORMED},               /* array */
        {{0xbf, 0x01, 0x38, 0x22, 0xff}, 5, CLST_E_MALFORMED},         /* indefinite map */
        {{0xa1, 0x01, 0x64, 'E', 'S', '3', '8'}, 7, CLST_E_MALFORMED}, /* text alg */
    };
    for (size_t i = 0; i < sizeof(prot) / sizeof(prot[0]); i++) {
        nx_spec_default(&s, &pki);
        s.protected_bytes = prot[i].bytes;
        s.protected_size = prot[i].size;
        expect_spec(&s, prot[i].want, NULL);
    }
    uint8_t big[NITRO_PROTECTED_MAX_SIZE + 1];
    memset(big, 0, sizeof(big));
    nx_spec_default(&s, &pki);
    s.protected_bytes = big;
    s.protected_size = sizeof(big);
    expect_spec(&s, CLST_E_LIMIT, "protected header");

    /* The protected header as a text string instead of a byte string. */
    static const uint8_t prot_text[] = {0x84, 0x64, 0xa1, 0x01, 0x38, 0x22, 0xa0, 0x41, 0xa0, 0x40};
    assert_int_equal(parse(prot_text, sizeof(prot_text), &err), CLST_E_MALFORMED);
    assert_non_null(strstr(err.msg, "text string, not a byte string"));

    /* The unprotected header: an empty map only. */
    static const struct {
        uint8_t bytes[8];
        size_t size;
    } unprot[] = {
        {{0xf6}, 1},                   /* null (selfsigned_attestation) */
        {{0xa1, 0x04, 0x41, 0x00}, 4}, /* {kid: h'00'} */
        {{0x40}, 1},                   /* h'' */
        {{0x80}, 1},                   /* [] */
        {{0xbf, 0xff}, 2},             /* indefinite {} */
    };
    for (size_t i = 0; i < sizeof(unprot) / sizeof(unprot[0]); i++) {
        nx_spec_default(&s, &pki);
        s.unprotected = unprot[i].bytes;
        s.unprotected_size = unprot[i].size;
        expect_spec(&s, CLST_E_MALFORMED, "unprotected header");
    }

    /* The signature: exactly 96 bytes. */
    uint8_t sig[200];
    memset(sig, 0x11, sizeof(sig));
    static const size_t sig_sizes[] = {0, 64, 95, 97, 132, 200};
    for (size_t i = 0; i < sizeof(sig_sizes) / sizeof(sig_sizes[0]); i++) {
        nx_spec_default(&s, &pki);
        s.sig_raw = sig;
        s.sig_size = sig_sizes[i];
        expect_spec(&s, CLST_E_MALFORMED, "signature");
    }
    nx_spec_default(&s, &pki);
    s.sig_raw = sig;
    s.sig_size = 96;
    expect_spec(&s, CLST_OK, NULL); /* parsing does not check it */

    /* A signature that is a text string; a payload that is a map instead of a byte string. */
    clst_buf_init(&b, 1u << 20);
    nx_spec_default(&s, &pki);
    assert_int_equal(nx_build(&s, &b), 0);
    assert_int_equal(b.data[b.size - 98], 0x58); /* bstr(96) head: 58 60 */
    b.data[b.size - 98] = 0x78;
    assert_int_equal(parse(b.data, b.size, &err), CLST_E_MALFORMED);
    assert_non_null(strstr(err.msg, "signature"));
    clst_buf_cleanup(&b);
}

/* ---- the payload ---------------------------------------------------------------------------- */

static void
test_payload_envelope(void **state)
{
    (void)state;
    struct nx_spec s;
    struct clst_buf payload, b;
    struct clst_err err = {0};

    /* The payload byte string holds one map and nothing else. */
    nx_spec_default(&s, &pki);
    clst_buf_init(&payload, 1u << 20);
    assert_int_equal(nx_payload(&s, &payload), 0);
    assert_int_equal(clst_buf_append_byte(&payload, 0x00), CLST_OK);
    clst_buf_init(&b, 1u << 20);
    assert_int_equal(nx_envelope(&s, payload.data, payload.size, &b), 0);
    assert_int_equal(parse(b.data, b.size, &err), CLST_E_MALFORMED);
    assert_non_null(strstr(err.msg, "after the payload map"));
    clst_buf_cleanup(&b);
    clst_buf_cleanup(&payload);

    /* Not a map: an array, a byte string, an empty payload. */
    static const uint8_t not_map[][2] = {{0x80, 0}, {0x40, 0}, {0xf6, 0}};
    for (size_t i = 0; i < 3; i++) {
        clst_buf_init(&b, 1u << 20);
        assert_int_equal(nx_envelope(&s, not_map[i], 1, &b), 0);
        assert_int_equal(parse(b.data, b.size, &err), CLST_E_MALFORMED);
        clst_buf_cleanup(&b);
    }
    clst_buf_init(&b, 1u << 20);
    assert_int_equal(nx_envelope(&s, (const uint8_t *)"", 0, &b), 0);
    assert_int_equal(parse(b.data, b.size, &err), CLST_E_MALFORMED);
    assert_non_null(strstr(err.msg, "payload"));
    clst_buf_cleanup(&b);

    /* An indefinite-length payload map. */
    clst_buf_init(&payload, 1u << 20);
    assert_int_equal(nx_payload(&s, &payload), 0);
    assert_int_equal(payload.data[0], 0xa9);
    payload.data[0] = 0xbf;
    assert_int_equal(clst_buf_append_byte(&payload, 0xff), CLST_OK);
    clst_buf_init(&b, 1u << 20);
    assert_int_equal(nx_envelope(&s, payload.data, payload.size, &b), 0);
    assert_int_equal(parse(b.data, b.size, &err), CLST_E_MALFORMED);
    assert_non_null(strstr(err.msg, "indefinite"));
    clst_buf_cleanup(&b);
    clst_buf_cleanup(&payload);

    /* More entries than fields. */
    static const uint8_t ten[] = {0xaa};
    clst_buf_init(&b, 1u << 20);
    assert_int_equal(nx_envelope(&s, ten, sizeof(ten), &b), 0);
    assert_int_equal(parse(b.data, b.size, &err), CLST_E_MALFORMED);
    assert_non_null(strstr(err.msg, "10 fields"));
    clst_buf_cleanup(&b);

    /* A payload over 16384 bytes: LIMIT, before its content is looked at. */
    uint8_t *large = calloc(1, NITRO_PAYLOAD_MAX_SIZE + 1);
    assert_non_null(large);
    clst_buf_init(&b, 1u << 20);
    assert_int_equal(nx_envelope(&s, large, NITRO_PAYLOAD_MAX_SIZE + 1, &b), 0);
    assert_true(b.size <= NITRO_EVIDENCE_MAX_SIZE);
    assert_int_equal(parse(b.data, b.size, &err), CLST_E_LIMIT);
    assert_non_null(strstr(err.msg, "payload"));
    clst_buf_cleanup(&b);
    free(large);

    /* A whole document over the kind's limit: LIMIT before any byte is read. */
    uint8_t *huge = calloc(1, NITRO_EVIDENCE_MAX_SIZE + 1);
    assert_non_null(huge);
    assert_int_equal(parse(huge, NITRO_EVIDENCE_MAX_SIZE + 1, &err), CLST_E_LIMIT);
    free(huge);
}

static void
test_fields_missing_null_dup_unknown(void **state)
{
    (void)state;
    struct nx_spec s;
    static const uint8_t null_value[] = {0xf6};

    for (int f = 0; f < NX_FIELD_COUNT; f++) {
        bool mandatory = f <= NX_CABUNDLE;
        /* Missing. */
        nx_spec_default(&s, &pki);
        s.omit[f] = true;
        expect_spec(&s, mandatory ? CLST_E_MALFORMED : CLST_OK,
                    mandatory ? nx_field_names[f] : NULL);
        if (!mandatory) {
            assert_false(f == NX_PUBLIC_KEY  ? doc->public_key.present
                         : f == NX_USER_DATA ? doc->user_data.present
                                             : doc->nonce.present);
        }
        /* Null: absent for the optional fields, refused for the mandatory ones. */
        nx_spec_default(&s, &pki);
        s.raw[f] = null_value;
        s.raw_size[f] = sizeof(null_value);
        expect_spec(&s, mandatory ? CLST_E_MALFORMED : CLST_OK, mandatory ? "null" : NULL);
        if (!mandatory) {
            assert_false(f == NX_PUBLIC_KEY  ? doc->public_key.present
                         : f == NX_USER_DATA ? doc->user_data.present
                                             : doc->nonce.present);
        }
        /* Twice: with all nine fields plus the copy, the count alone is refused; with another
         * field left out, the duplicate key is. */
        struct clst_buf extra;
        clst_buf_init(&extra, 1u << 16);
        assert_int_equal(nx_tstr(&extra, nx_field_names[f]), 0);
        assert_int_equal(clst_buf_append_byte(&extra, 0xf6), CLST_OK);
        nx_spec_default(&s, &pki);
        s.extra = extra.data;
        s.extra_size = extra.size;
        s.extra_count = 1;
        expect_spec(&s, CLST_E_MALFORMED, "10 fields");
        s.omit[f == NX_NONCE ? NX_PUBLIC_KEY : NX_NONCE] = true;
        expect_spec(&s, CLST_E_MALFORMED, "twice");
        clst_buf_cleanup(&extra);
    }

    /* Unknown keys (with a known field left out so the count stays at 9), keys of other types. */
    static const uint8_t unknown[][12] = {
        {0x66, 'n', 'o', 'n', 'c', 'e', '2', 0x40},
        {0x65, 'N', 'O', 'N', 'C', 'E', 0x40},
        {0x60, 0x40},
        {0x01, 0x40},
        {0x45, 'n', 'o', 'n', 'c', 'e', 0x40},
        {0x66, 'n', 'o', 'n', 'c', 'e', 0x00, 0x40},
    };
    static const size_t unknown_size[] = {8, 7, 2, 2, 7, 8};
    for (size_t i = 0; i < sizeof(unknown_size) / sizeof(unknown_size[0]); i++) {
        nx_spec_default(&s, &pki);
        s.nonce_mode = NX_ABSENT;
        s.extra = unknown[i];
        s.extra_size = unknown_size[i];
        s.extra_count = 1;
        expect_spec(&s, CLST_E_MALFORMED, NULL);
    }
}

static void
test_field_types(void **state)
{
    (void)state;
    struct nx_spec s;
    /* Values of the wrong type for every field. */
    static const uint8_t v_uint[] = {0x01}, v_neg[] = {0x20}, v_bytes[] = {0x41, 0x41},
                         v_text[] = {0x61, 'a'}, v_array[] = {0x80}, v_map[] = {0xa0},
                         v_true[] = {0xf5}, v_float[] = {0xf9, 0x3c, 0x00}, v_tag[] = {0xc1, 0x01},
                         v_undef[] = {0xf7};
    static const struct {
        const uint8_t *v;
        size_t size;
    } values[] = {
        {v_uint, 1}, {v_neg, 1},  {v_bytes, 2}, {v_text, 2}, {v_array, 1},
        {v_map, 1},  {v_true, 1}, {v_float, 3}, {v_tag, 2},  {v_undef, 1},
    };
    /* The one type each field takes (index into values; -1: none of these is valid). */
    static const int valid[NX_FIELD_COUNT] = {
        -1 /* text 'a' is valid */, -1, 0, -1, 2, -1, 2, 2, 2};
    for (int f = 0; f < NX_FIELD_COUNT; f++) {
        for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
            bool ok = (int)i == valid[f] || (f == NX_MODULE_ID && i == 3);
            nx_spec_default(&s, &pki);
            s.raw[f] = values[i].v;
            s.raw_size[f] = values[i].size;
            expect_spec(&s, ok ? CLST_OK : CLST_E_MALFORMED, NULL);
        }
    }
}

static void
test_field_values(void **state)
{
    (void)state;
    struct nx_spec s;
    char long_id[NITRO_MODULE_ID_MAX + 2];

    /* module_id: 1..256 printable characters. */
    nx_spec_default(&s, &pki);
    s.module_id = "";
    expect_spec(&s, CLST_E_MALFORMED, "module_id");
    memset(long_id, 'i', sizeof(long_id));
    long_id[NITRO_MODULE_ID_MAX] = '\0';
    s.module_id = long_id;
    expect_spec(&s, CLST_OK, NULL);
    assert_int_equal(strlen(doc->module_id), NITRO_MODULE_ID_MAX);
    long_id[NITRO_MODULE_ID_MAX] = 'i';
    long_id[NITRO_MODULE_ID_MAX + 1] = '\0';
    expect_spec(&s, CLST_E_LIMIT, "module_id");
    static const char *const bad_ids[] = {"i-01 23", "i-01\x01", "i-\xc3\xa9", "i-01\x7f"};
    for (size_t i = 0; i < 4; i++) {
        s.module_id = bad_ids[i];
        expect_spec(&s, CLST_E_MALFORMED, "printable");
    }

    /* digest: "SHA384" only. */
    static const char *const digests[] = {"SHA256", "SHA512", "sha384", "SHA384 ", "SHA38", ""};
    for (size_t i = 0; i < sizeof(digests) / sizeof(digests[0]); i++) {
        nx_spec_default(&s, &pki);
        s.digest = digests[i];
        expect_spec(&s, CLST_E_MALFORMED, "digest");
    }

    /* timestamp: 1..INT64_MAX. */
    nx_spec_default(&s, &pki);
    s.timestamp_ms = 0;
    expect_spec(&s, CLST_E_MALFORMED, "timestamp");
    s.timestamp_ms = (uint64_t)INT64_MAX + 1;
    expect_spec(&s, CLST_E_MALFORMED, "timestamp");
    s.timestamp_ms = (uint64_t)INT64_MAX;
    expect_spec(&s, CLST_OK, NULL);
    s.timestamp_ms = 1;
    expect_spec(&s, CLST_OK, NULL);

    /* pcrs: 1..32 entries, index 0..31 once each, 48 bytes each. */
    nx_spec_default(&s, &pki);
    s.pcr_mask = 0;
    expect_spec(&s, CLST_E_MALFORMED, "pcrs");
    s.pcr_mask = 0xFFFFFFFFu;
    expect_spec(&s, CLST_OK, NULL);
    assert_int_equal(doc->pcr_mask, 0xFFFFFFFFu);
    s.pcr_mask = 1u << 31;
    expect_spec(&s, CLST_OK, NULL);
    static const uint8_t pcr33[] = {0xb8, 0x21};
    s.raw[NX_PCRS] = pcr33;
    s.raw_size[NX_PCRS] = sizeof(pcr33);
    expect_spec(&s, CLST_E_LIMIT, "pcrs");
    struct clst_buf pm;
    uint8_t v48[48], v32[32], v64[64];
    memset(v48, 7, sizeof(v48));
    memset(v32, 7, sizeof(v32));
    memset(v64, 7, sizeof(v64));
    static const struct {
        uint8_t key[3];
        size_t key_size;
        int value; /* 48, 32, 64 */
        bool dup;
    } entries[] = {
        {{0x18, 0x20}, 2, 48, false}, /* index 32 */
        {{0x20}, 1, 48, false},       /* index -1 */
        {{0x61, '0'}, 2, 48, false},  /* "0" */
        {{0x00}, 1, 32, false},       /* 32 bytes */
        {{0x00}, 1, 64, false},       /* 64 bytes */
        {{0x00}, 1, 48, true},        /* PCR0 twice */
    };
    for (size_t i = 0; i < sizeof(entries) / sizeof(entries[0]); i++) {
        clst_buf_init(&pm, 1u << 12);
        assert_int_equal(nx_head(&pm, 5, entries[i].dup ? 2 : 1), 0);
        for (int k = 0; k < (entries[i].dup ? 2 : 1); k++) {
            assert_int_equal(clst_buf_append(&pm, entries[i].key, entries[i].key_size), CLST_OK);
            assert_int_equal(nx_bstr(&pm,
                                     entries[i].value == 48   ? v48
                                     : entries[i].value == 32 ? v32
                                                              : v64,
                                     (size_t)entries[i].value),
                             0);
        }
        nx_spec_default(&s, &pki);
        s.raw[NX_PCRS] = pm.data;
        s.raw_size[NX_PCRS] = pm.size;
        expect_spec(&s, CLST_E_MALFORMED, entries[i].dup ? "twice" : "PCR");
        clst_buf_cleanup(&pm);
    }

    /* certificate: 1..1024 bytes (content is not parsed here). */
    uint8_t blob[NITRO_CERT_MAX_SIZE + 1];
    memset(blob, 0x30, sizeof(blob));
    struct clst_buf v;
    size_t sizes[] = {0, 1, NITRO_CERT_MAX_SIZE, NITRO_CERT_MAX_SIZE + 1};
    enum clst_status want[] = {CLST_E_MALFORMED, CLST_OK, CLST_OK, CLST_E_LIMIT};
    for (size_t i = 0; i < 4; i++) {
        clst_buf_init(&v, 1u << 12);
        assert_int_equal(nx_bstr(&v, blob, sizes[i]), 0);
        nx_spec_default(&s, &pki);
        s.raw[NX_CERTIFICATE] = v.data;
        s.raw_size[NX_CERTIFICATE] = v.size;
        expect_spec(&s, want[i], want[i] == CLST_OK ? NULL : "certificate");
        /* The same sizes for a cabundle entry. */
        struct clst_buf arr;
        clst_buf_init(&arr, 1u << 12);
        assert_int_equal(nx_head(&arr, 4, 1), 0);
        assert_int_equal(clst_buf_append(&arr, v.data, v.size), CLST_OK);
        s.raw[NX_CERTIFICATE] = NULL;
        s.raw[NX_CABUNDLE] = arr.data;
        s.raw_size[NX_CABUNDLE] = arr.size;
        expect_spec(&s, want[i], want[i] == CLST_OK ? NULL : "cabundle");
        clst_buf_cleanup(&arr);
        clst_buf_cleanup(&v);
    }

    /* cabundle: 1..8 certificates, each a byte string. */
    nx_spec_default(&s, &pki);
    s.bundle_count = 0;
    expect_spec(&s, CLST_E_MALFORMED, "cabundle");
    for (size_t i = 0; i < NITRO_CABUNDLE_MAX + 1; i++) {
        s.bundle[i] = pki.inter;
    }
    s.bundle_count = NITRO_CABUNDLE_MAX;
    expect_spec(&s, CLST_OK, NULL);
    assert_int_equal(doc->cabundle_count, NITRO_CABUNDLE_MAX);
    s.bundle_count = NITRO_CABUNDLE_MAX + 1;
    expect_spec(&s, CLST_E_LIMIT, "cabundle");
    static const uint8_t bundle_text[] = {0x81, 0x61, 'a'};
    nx_spec_default(&s, &pki);
    s.raw[NX_CABUNDLE] = bundle_text;
    s.raw_size[NX_CABUNDLE] = sizeof(bundle_text);
    expect_spec(&s, CLST_E_MALFORMED, "cabundle");
    static const uint8_t bundle_indef[] = {0x9f, 0x41, 0x30, 0xff};
    s.raw[NX_CABUNDLE] = bundle_indef;
    s.raw_size[NX_CABUNDLE] = sizeof(bundle_indef);
    expect_spec(&s, CLST_E_MALFORMED, "indefinite");

    /* public_key 1..1024; user_data and nonce 0..1024; present-but-empty kept distinct. */
    nx_spec_default(&s, &pki);
    s.public_key_size = 0;
    expect_spec(&s, CLST_E_MALFORMED, "public_key");
    s.public_key_size = NITRO_USER_DATA_MAX + 1;
    expect_spec(&s, CLST_E_LIMIT, "public_key");
    s.public_key_size = NITRO_USER_DATA_MAX;
    s.user_data_size = 0;
    s.nonce_size = 0;
    expect_spec(&s, CLST_OK, NULL);
    assert_true(doc->user_data.present && doc->user_data.size == 0);
    assert_true(doc->nonce.present && doc->nonce.size == 0);
    assert_int_equal(doc->public_key.size, NITRO_USER_DATA_MAX);
    s.user_data_size = NITRO_USER_DATA_MAX;
    s.nonce_size = NITRO_USER_DATA_MAX;
    expect_spec(&s, CLST_OK, NULL);
    s.user_data_size = NITRO_USER_DATA_MAX + 1;
    expect_spec(&s, CLST_E_LIMIT, "user_data");
    s.user_data_size = 1;
    s.nonce_size = NITRO_USER_DATA_MAX + 1;
    expect_spec(&s, CLST_E_LIMIT, "nonce");
    s.nonce_size = 0;
    s.user_data_mode = NX_NULL;
    s.nonce_mode = NX_ABSENT;
    s.public_key_mode = NX_NULL;
    expect_spec(&s, CLST_OK, NULL);
    assert_false(doc->user_data.present || doc->nonce.present || doc->public_key.present);

    /* Indefinite-length byte strings inside the payload. */
    static const uint8_t ud_indef[] = {0x5f, 0x41, 0x01, 0xff};
    nx_spec_default(&s, &pki);
    s.raw[NX_USER_DATA] = ud_indef;
    s.raw_size[NX_USER_DATA] = sizeof(ud_indef);
    expect_spec(&s, CLST_E_MALFORMED, "indefinite");
}

/* ---- the Sig_structure ---------------------------------------------------------------------- */

static void
test_tbs_digest(void **state)
{
    (void)state;
    static const size_t sizes[] = {0, 1, 23, 24, 255, 256, 4096, 65535, 65536, 70000};
    uint8_t *payload = malloc(70000);
    assert_non_null(payload);
    for (size_t i = 0; i < 70000; i++) {
        payload[i] = (uint8_t)(i * 7);
    }
    for (size_t p = 0; p < 4; p++) {
        size_t psize = p == 0 ? 4 : sizes[p - 1 + 3]; /* 4, 24, 255, 256 */
        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
            uint8_t want[CLST_SHA384_SIZE], got[CLST_SHA384_SIZE];
            struct clst_buf tbs;
            clst_buf_init(&tbs, 1u << 20);
            assert_int_equal(nx_sig_structure(payload, psize, payload, sizes[i], &tbs), 0);
            assert_int_equal(clst_hash(CLST_HASH_SHA384, tbs.data, tbs.size, want), CLST_OK);
            assert_int_equal(evidence_nitro_tbs_digest(payload, psize, payload, sizes[i], got),
                             CLST_OK);
            assert_memory_equal(got, want, sizeof(want));
            clst_buf_cleanup(&tbs);
        }
    }
    uint8_t out[CLST_SHA384_SIZE];
    assert_int_equal(evidence_nitro_tbs_digest(NULL, 1, payload, 1, out), CLST_E_INVAL);
    assert_int_equal(evidence_nitro_tbs_digest(payload, 1, NULL, 1, out), CLST_E_INVAL);
    free(payload);

    /* For the real document, the structure starts 84 6a "Signature1" 44 a1013822 40 59 1d07. */
    size_t size = 0;
    uint8_t *d = nx_read("nitro_attestation.cose.bin", &size);
    assert_non_null(d);
    assert_int_equal(parse(d, size, NULL), CLST_OK);
    struct clst_buf tbs;
    clst_buf_init(&tbs, 1u << 20);
    assert_int_equal(nx_sig_structure(d + doc->protected_off, doc->protected_size,
                                      d + doc->payload_off, doc->payload_size, &tbs),
                     0);
    static const uint8_t head[] = {0x84, 0x6a, 'S',  'i',  'g',  'n',  'a',  't',  'u',  'r', 'e',
                                   '1',  0x44, 0xa1, 0x01, 0x38, 0x22, 0x40, 0x59, 0x1d, 0x07};
    assert_memory_equal(tbs.data, head, sizeof(head));
    assert_int_equal(tbs.size, sizeof(head) + 7431);
    clst_buf_cleanup(&tbs);
    free(d);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_documents),
        cmocka_unit_test(test_selfsigned_negative),
        cmocka_unit_test(test_truncations),
        cmocka_unit_test(test_envelope),
        cmocka_unit_test(test_payload_envelope),
        cmocka_unit_test(test_fields_missing_null_dup_unknown),
        cmocka_unit_test(test_field_types),
        cmocka_unit_test(test_field_values),
        cmocka_unit_test(test_tbs_digest),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
