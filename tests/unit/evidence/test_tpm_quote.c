/*
 * Tests for src/evidence/tpm_quote.c: the JSON container (strict members, types, caps) and the
 * TPM structures unmarshalled by libtss2-mu (exact sizes, magic, type). Every truncation of
 * every TPM structure and of the container text is rejected as malformed.
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_tpm_fixture.h"

static struct tpm_evidence *
new_ev(void)
{
    struct tpm_evidence *ev = calloc(1, sizeof(*ev));
    assert_non_null(ev);
    return ev;
}

static enum clst_status
parse(const struct tf_blob *b, struct tpm_evidence *ev, struct clst_err *err)
{
    memset(err, 0, sizeof(*err));
    enum clst_status rc = evidence_tpm_parse(b->data, b->size, ev, err);
    if (rc != CLST_OK) {
        assert_true(err->msg[0] != '\0');
    }
    return rc;
}

static enum clst_status
parse_json(json_t *doc, struct clst_err *err)
{
    struct tf_blob b = tf_dump(doc);
    struct tpm_evidence *ev = new_ev();
    enum clst_status rc = parse(&b, ev, err);
    free(ev);
    tf_blob_free(&b);
    return rc;
}

static enum clst_status
parse_text(const char *text, struct clst_err *err)
{
    struct tf_blob b = tf_copy(text, strlen(text));
    struct tpm_evidence *ev = new_ev();
    enum clst_status rc = parse(&b, ev, err);
    free(ev);
    tf_blob_free(&b);
    return rc;
}

static void
test_parse_gce(void **state)
{
    (void)state;
    struct tf_parts p;
    struct clst_err err;
    struct tpm_evidence *ev = new_ev();

    tf_gce_parts(&p, "nonce9009", "sha384", true);
    struct tf_blob b = tf_container(&p);
    assert_int_equal(parse(&b, ev, &err), CLST_OK);
    assert_int_equal(ev->quote_size, p.quote.size);
    assert_memory_equal(ev->quote, p.quote.data, p.quote.size);
    assert_int_equal(ev->attest.magic, TPM2_GENERATED_VALUE);
    assert_int_equal(ev->attest.type, TPM2_ST_ATTEST_QUOTE);
    assert_int_equal(ev->attest.extraData.size, 2);
    assert_int_equal(ev->attest.extraData.buffer[0], 0x90);
    assert_int_equal(ev->attest.clockInfo.resetCount, 10);
    assert_int_equal(ev->attest.firmwareVersion, UINT64_C(0x2016051100162800));
    assert_int_equal(ev->attest.attested.quote.pcrSelect.count, 1);
    assert_int_equal(ev->attest.attested.quote.pcrSelect.pcrSelections[0].hash, TPM_ALG_SHA384_ID);
    assert_int_equal(ev->attest.attested.quote.pcrDigest.size, 32); /* SHA-256, the sig hash */
    assert_int_equal(ev->sig.sigAlg, TPM2_ALG_RSASSA);
    assert_int_equal(ev->sig.signature.rsassa.hash, TPM2_ALG_SHA256);
    assert_int_equal(ev->sig.signature.rsassa.sig.size, 256);
    assert_true(ev->has_ak_public);
    assert_int_equal(ev->ak_public.type, TPM2_ALG_RSA);
    assert_int_equal(ev->ak_public.objectAttributes, 0x00050072);
    assert_int_equal(ev->ak_public.parameters.rsaDetail.keyBits, 2048);
    assert_int_equal(ev->ak_cert.size, p.cert.size);
    assert_int_equal(ev->chain_count, 1);
    assert_int_equal(ev->eventlog_size, p.log.size);
    assert_int_equal(ev->bank_count, 1);
    assert_int_equal(ev->banks[0].alg, TPM_ALG_SHA384_ID);
    assert_int_equal(ev->banks[0].present, 0xffffff);
    assert_memory_equal(ev->banks[0].value[7], p.bank[0].value[7], 48);
    assert_ptr_equal(ev->result, &ev->result_store);
    assert_false(ev->result->done);
    tf_blob_free(&b);
    tf_parts_free(&p);
    free(ev);
}

/* libtss2-mu on each structure: exactly its bytes, every truncation refused. */
static void
test_unmarshal_exact(void **state)
{
    (void)state;
    struct tf_parts p;
    TPMS_ATTEST a;
    TPMT_SIGNATURE s;
    TPMT_PUBLIC pub;
    struct clst_err err;

    tf_gce_parts(&p, "nonce9009", "sha256", false);
    assert_int_equal(evidence_tpm_attest_unmarshal(p.quote.data, p.quote.size, &a, &err), CLST_OK);
    assert_int_equal(evidence_tpm_signature_unmarshal(p.sig.data, p.sig.size, &s, &err), CLST_OK);
    assert_int_equal(evidence_tpm_public_unmarshal(p.pub.data, p.pub.size, &pub, &err), CLST_OK);
    for (size_t n = 0; n < p.quote.size; n++) {
        assert_int_equal(evidence_tpm_attest_unmarshal(p.quote.data, n, &a, &err),
                         CLST_E_MALFORMED);
    }
    for (size_t n = 0; n < p.sig.size; n++) {
        assert_int_equal(evidence_tpm_signature_unmarshal(p.sig.data, n, &s, &err),
                         CLST_E_MALFORMED);
    }
    for (size_t n = 0; n < p.pub.size; n++) {
        assert_int_equal(evidence_tpm_public_unmarshal(p.pub.data, n, &pub, &err),
                         CLST_E_MALFORMED);
    }
    /* One byte more: trailing bytes. */
    uint8_t longer[sizeof(TPMT_PUBLIC) + 1];
    memcpy(longer, p.quote.data, p.quote.size);
    longer[p.quote.size] = 0;
    assert_int_equal(evidence_tpm_attest_unmarshal(longer, p.quote.size + 1, &a, &err),
                     CLST_E_MALFORMED);
    assert_non_null(strstr(err.msg, "follow"));
    memcpy(longer, p.sig.data, p.sig.size);
    assert_int_equal(evidence_tpm_signature_unmarshal(longer, p.sig.size + 1, &s, &err),
                     CLST_E_MALFORMED);
    memcpy(longer, p.pub.data, p.pub.size);
    assert_int_equal(evidence_tpm_public_unmarshal(longer, p.pub.size + 1, &pub, &err),
                     CLST_E_MALFORMED);
    tf_parts_free(&p);
}

static void
test_attest_magic_and_type(void **state)
{
    (void)state;
    struct tf_parts p;
    TPMS_ATTEST a;
    struct clst_err err;

    tf_gce_parts(&p, "no-nonce", "sha256", false);
    p.quote.data[3] ^= 0x01; /* magic ff544347 -> ff544346 */
    assert_int_equal(evidence_tpm_attest_unmarshal(p.quote.data, p.quote.size, &a, &err),
                     CLST_E_MALFORMED);
    assert_non_null(strstr(err.msg, "magic"));
    p.quote.data[3] ^= 0x01;
    /* TPM_ST_ATTEST_QUOTE (0x8018) -> TPM_ST_ATTEST_CERTIFY (0x8017): the body no longer fits
     * (MU refuses) or, if it did, the type is refused. Either way: not a quote. */
    p.quote.data[5] = 0x17;
    assert_int_equal(evidence_tpm_attest_unmarshal(p.quote.data, p.quote.size, &a, &err),
                     CLST_E_MALFORMED);
    /* A real TPMS_ATTEST of another type, marshalled by MU, parses but is not a quote. */
    TPMS_ATTEST other;
    uint8_t buf[sizeof(TPMS_ATTEST)];
    size_t off = 0;
    memset(&other, 0, sizeof(other));
    other.magic = TPM2_GENERATED_VALUE;
    other.type = TPM2_ST_ATTEST_TIME;
    assert_int_equal(Tss2_MU_TPMS_ATTEST_Marshal(&other, buf, sizeof(buf), &off), TSS2_RC_SUCCESS);
    assert_int_equal(evidence_tpm_attest_unmarshal(buf, off, &a, &err), CLST_E_MALFORMED);
    assert_non_null(strstr(err.msg, "not a quote"));
    tf_parts_free(&p);
}

static void
test_container_members(void **state)
{
    (void)state;
    struct tf_parts p;
    struct clst_err err;
    json_t *doc;

    tf_gce_parts(&p, "nonce9009", "sha256", false);

    /* Required members. */
    static const char *const required[] = {"version", "quote", "signature"};
    for (size_t i = 0; i < 3; i++) {
        doc = tf_container_json(&p);
        json_object_del(doc, required[i]);
        assert_int_equal(parse_json(doc, &err), CLST_E_MALFORMED);
        assert_non_null(strstr(err.msg, required[i]));
        json_decref(doc);
    }
    /* Optional members may be absent (trust is then the verifier's problem). */
    static const char *const optional[] = {"pcrs", "ak_public", "ak_cert", "event_log"};
    for (size_t i = 0; i < 4; i++) {
        doc = tf_container_json(&p);
        json_object_del(doc, optional[i]);
        if (strcmp(optional[i], "ak_cert") == 0) {
            json_object_del(doc, "ak_chain");
        }
        assert_int_equal(parse_json(doc, &err), CLST_OK);
        json_decref(doc);
    }
    /* Unknown member, wrong version, wrong types, chain without certificate. */
    doc = tf_container_json(&p);
    json_object_set_new(doc, "extra", json_true());
    assert_int_equal(parse_json(doc, &err), CLST_E_MALFORMED);
    assert_non_null(strstr(err.msg, "unknown member"));
    json_decref(doc);
    static const json_int_t versions[] = {0, 2, -1};
    for (size_t i = 0; i < 3; i++) {
        doc = tf_container_json(&p);
        json_object_set_new(doc, "version", json_integer(versions[i]));
        assert_int_equal(parse_json(doc, &err), CLST_E_MALFORMED);
        json_decref(doc);
    }
    doc = tf_container_json(&p);
    json_object_set_new(doc, "version", json_string("1"));
    assert_int_equal(parse_json(doc, &err), CLST_E_MALFORMED);
    json_decref(doc);
    static const char *const b64_members[] = {"quote", "signature", "ak_public", "ak_cert"};
    for (size_t i = 0; i < 4; i++) {
        static const char *const bad[] = {"", "not base64!", "QUJD", "QUI", "QUI=\n"};
        for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
            doc = tf_container_json(&p);
            json_object_set_new(doc, b64_members[i], json_string(bad[k]));
            /* "QUJD" is valid base64 but not a TPM structure / certificate: MALFORMED at
             * unmarshal time (for ak_cert: later, in verify, as it is DER). */
            enum clst_status rc = parse_json(doc, &err);
            if (strcmp(b64_members[i], "ak_cert") == 0 && strcmp(bad[k], "QUJD") == 0) {
                assert_int_equal(rc, CLST_OK);
            } else {
                assert_int_equal(rc, CLST_E_MALFORMED);
            }
            json_decref(doc);
        }
        doc = tf_container_json(&p);
        json_object_set_new(doc, b64_members[i], json_integer(5));
        assert_int_equal(parse_json(doc, &err), CLST_E_MALFORMED);
        json_decref(doc);
    }
    doc = tf_container_json(&p);
    json_object_del(doc, "ak_cert");
    assert_int_equal(parse_json(doc, &err), CLST_E_MALFORMED);
    assert_non_null(strstr(err.msg, "ak_chain"));
    json_decref(doc);
    doc = tf_container_json(&p);
    json_object_set_new(doc, "ak_chain", json_string("x"));
    assert_int_equal(parse_json(doc, &err), CLST_E_MALFORMED);
    json_decref(doc);
    doc = tf_container_json(&p);
    json_array_append_new(json_object_get(doc, "ak_chain"), json_integer(1));
    assert_int_equal(parse_json(doc, &err), CLST_E_MALFORMED);
    json_decref(doc);
    /* Not an object at all; duplicates; trailing garbage. */
    assert_int_equal(parse_text("[]", &err), CLST_E_MALFORMED);
    assert_int_equal(parse_text("", &err), CLST_E_MALFORMED);
    assert_int_equal(parse_text("{\"version\":1,\"version\":1}", &err), CLST_E_MALFORMED);
    doc = tf_container_json(&p);
    struct tf_blob text = tf_dump(doc);
    char *with_tail = malloc(text.size + 3);
    memcpy(with_tail, text.data, text.size);
    memcpy(with_tail + text.size, " x", 3);
    assert_int_equal(parse_text(with_tail, &err), CLST_E_MALFORMED);
    free(with_tail);
    tf_blob_free(&text);
    json_decref(doc);
    tf_parts_free(&p);
}

static void
test_container_pcrs(void **state)
{
    (void)state;
    struct tf_parts p;
    struct clst_err err;
    json_t *doc, *bank;
    tf_gce_parts(&p, "nonce9009", "sha256", false);

    static const char *const bad_keys[] = {"24", "07", "-1", "+1", "1 ", "", "x", "100000"};
    for (size_t i = 0; i < sizeof(bad_keys) / sizeof(bad_keys[0]); i++) {
        doc = tf_container_json(&p);
        bank = json_object_get(json_object_get(doc, "pcrs"), "sha256");
        json_object_set(bank, bad_keys[i], json_object_get(bank, "1"));
        assert_int_equal(parse_json(doc, &err), CLST_E_MALFORMED);
        json_decref(doc);
    }
    static const char *const bad_values[] = {
        "00", "zz00000000000000000000000000000000000000000000000000000000000000",
        "000000000000000000000000000000000000000000000000000000000000000000", /* 33 bytes */
    };
    for (size_t i = 0; i < sizeof(bad_values) / sizeof(bad_values[0]); i++) {
        doc = tf_container_json(&p);
        bank = json_object_get(json_object_get(doc, "pcrs"), "sha256");
        json_object_set_new(bank, "3", json_string(bad_values[i]));
        assert_int_equal(parse_json(doc, &err), CLST_E_MALFORMED);
        json_decref(doc);
    }
    doc = tf_container_json(&p);
    bank = json_object_get(json_object_get(doc, "pcrs"), "sha256");
    json_object_set_new(bank, "3", json_integer(3));
    assert_int_equal(parse_json(doc, &err), CLST_E_MALFORMED);
    json_decref(doc);
    /* Unknown bank, a bank that is not an object, pcrs not an object. */
    doc = tf_container_json(&p);
    json_object_set_new(json_object_get(doc, "pcrs"), "sm3_256", json_object());
    assert_int_equal(parse_json(doc, &err), CLST_E_MALFORMED);
    json_decref(doc);
    doc = tf_container_json(&p);
    json_object_set_new(json_object_get(doc, "pcrs"), "sha1", json_array());
    assert_int_equal(parse_json(doc, &err), CLST_E_MALFORMED);
    json_decref(doc);
    doc = tf_container_json(&p);
    json_object_set_new(doc, "pcrs", json_array());
    assert_int_equal(parse_json(doc, &err), CLST_E_MALFORMED);
    json_decref(doc);
    /* Upper-case hex is hex. */
    doc = tf_container_json(&p);
    bank = json_object_get(json_object_get(doc, "pcrs"), "sha256");
    json_object_set_new(bank, "17",
                        json_string("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF"
                                    "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF"));
    assert_int_equal(parse_json(doc, &err), CLST_OK);
    json_decref(doc);
    tf_parts_free(&p);
}

static void
test_limits(void **state)
{
    (void)state;
    struct tf_parts p;
    struct clst_err err;
    struct tpm_evidence *ev = new_ev();

    /* The container's own limit. */
    struct tf_blob big = tf_copy("", 0);
    free(big.data);
    big.size = TPM_EVIDENCE_MAX_SIZE + 1;
    big.data = malloc(big.size);
    memset(big.data, ' ', big.size);
    assert_int_equal(parse(&big, ev, &err), CLST_E_LIMIT);
    tf_blob_free(&big);
    /* Each field's limit (exactly at the limit is not LIMIT). */
    tf_gce_parts(&p, "nonce9009", "sha256", false);
    struct tf_blob saved = p.sig;
    p.sig = tf_copy("", 0);
    free(p.sig.data);
    p.sig.size = TPM_SIG_MAX_SIZE + 1;
    p.sig.data = calloc(1, p.sig.size);
    struct tf_blob b = tf_container(&p);
    assert_int_equal(parse(&b, ev, &err), CLST_E_LIMIT);
    tf_blob_free(&b);
    p.sig.size = TPM_SIG_MAX_SIZE;
    b = tf_container(&p);
    assert_int_equal(parse(&b, ev, &err), CLST_E_MALFORMED); /* zeros are no signature */
    tf_blob_free(&b);
    tf_blob_free(&p.sig);
    p.sig = saved;
    saved = p.pub;
    p.pub = tf_copy("", 0);
    free(p.pub.data);
    p.pub.size = TPM_PUBLIC_MAX_SIZE + 1;
    p.pub.data = calloc(1, p.pub.size);
    b = tf_container(&p);
    assert_int_equal(parse(&b, ev, &err), CLST_E_LIMIT);
    tf_blob_free(&b);
    tf_blob_free(&p.pub);
    p.pub = saved;
    tf_parts_free(&p);
    free(ev);
}

/* Every truncation of the container text, and of each TPM structure inside it. */
static void
test_truncations(void **state)
{
    (void)state;
    struct tf_parts p;
    struct clst_err err;
    struct tpm_evidence *ev = new_ev();

    tf_gce_parts(&p, "nonce9009", "sha256", false);
    struct tf_blob full = tf_container(&p);
    assert_int_equal(parse(&full, ev, &err), CLST_OK);
    for (size_t n = 0; n < full.size; n++) {
        struct tf_blob cut = {full.data, n};
        assert_int_equal(parse(&cut, ev, &err), CLST_E_MALFORMED);
    }
    tf_blob_free(&full);
    struct tf_blob *fields[] = {&p.quote, &p.sig, &p.pub};
    for (size_t f = 0; f < 3; f++) {
        size_t size = fields[f]->size;
        for (size_t n = 0; n < size; n++) {
            fields[f]->size = n;
            struct tf_blob b = tf_container(&p);
            assert_int_equal(parse(&b, ev, &err), CLST_E_MALFORMED);
            tf_blob_free(&b);
        }
        fields[f]->size = size;
    }
    tf_parts_free(&p);
    free(ev);
}

static void
test_algorithms(void **state)
{
    (void)state;
    uint16_t alg = 0;
    assert_int_equal(evidence_tpm_alg_digest_size(TPM_ALG_SHA1_ID), 20);
    assert_int_equal(evidence_tpm_alg_digest_size(TPM_ALG_SHA512_ID), 64);
    assert_int_equal(evidence_tpm_alg_digest_size(TPM2_ALG_SM3_256), 0);
    assert_null(evidence_tpm_alg_name(0x9999));
    assert_string_equal(evidence_tpm_alg_name(TPM_ALG_SHA384_ID), "sha384");
    assert_true(evidence_tpm_alg_from_name("sha256", &alg));
    assert_int_equal(alg, TPM_ALG_SHA256_ID);
    assert_false(evidence_tpm_alg_from_name("SHA256", &alg));
    assert_false(evidence_tpm_alg_from_name(NULL, &alg));
}

int
main(int argc, char **argv)
{
    setenv("TSS2_LOG", "all+none", 0); /* tpm2-tss logs malformed input to stderr */
    if (argc > 1) {
        cmocka_set_test_filter(argv[1]);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_gce),
        cmocka_unit_test(test_unmarshal_exact),
        cmocka_unit_test(test_attest_magic_and_type),
        cmocka_unit_test(test_container_members),
        cmocka_unit_test(test_container_pcrs),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_truncations),
        cmocka_unit_test(test_algorithms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
