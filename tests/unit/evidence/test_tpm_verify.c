/*
 * Tests for src/evidence/tpm_verify.c through clst_evidence_verify(CLST_EVIDENCE_TPM):
 *
 *  - the stored GCE vectors (tests/vectors/tpm2/go-tpm-tools-gce/README.md): every quote (two
 *    files x three banks, with and without the event log) verifies with the Google root at
 *    2024-01-01 and gives the expected claims; the stored containers too;
 *  - the README's upstream negative cases: no trusted roots, the wrong nonce, SHA-1 without
 *    opting in;
 *  - mutations: a flipped byte in each signed region (the TPMS_ATTEST, the signature, the AK
 *    certificate and its intermediate), in each supplied PCR value and in each event-log digest
 *    of the quoted bank; wrong PCR values, wrong or missing AK, wrong roots, time outside every
 *    certificate's validity, oversized inputs (rejected before any signature check);
 *  - synthetic quotes signed here for RSAPSS (both salt conventions) and ECDSA (P-256, P-384),
 *    and for shapes a TPM never produces.
 * Parser strictness and truncations are in test_tpm_quote.c, the event log in
 * test_tpm_eventlog.c.
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_tpm_fixture.h"

static const char *const gce_names[] = {"nonce9009", "no-nonce"};
static const char *const gce_banks[] = {"sha1", "sha256", "sha384"};

/* Base64 SHA-256 of the AK's SubjectPublicKeyInfo, from the PEM the README gives. */
static char *
expected_aik_pub_hash(void)
{
    struct tf_blob pem = tf_file(TF_GCE "extracted/nonce9009.ak-pub.pem");
    EVP_PKEY *key = NULL;
    unsigned char *der = NULL;
    uint8_t digest[CLST_SHA256_SIZE];
    struct clst_buf b64;
    assert_int_equal(clst_pkey_from_pem(pem.data, pem.size, &key, NULL), CLST_OK);
    int n = i2d_PUBKEY(key, &der);
    assert_true(n > 0);
    assert_int_equal(clst_sha256(der, (size_t)n, digest), CLST_OK);
    clst_buf_init(&b64, 64);
    assert_int_equal(clst_b64_encode(digest, sizeof(digest), &b64), CLST_OK);
    assert_int_equal(clst_buf_terminate(&b64), CLST_OK);
    char *s = malloc(b64.size + 1);
    assert_non_null(s);
    memcpy(s, b64.data, b64.size + 1);
    clst_buf_cleanup(&b64);
    OPENSSL_free(der);
    EVP_PKEY_free(key);
    tf_blob_free(&pem);
    return s;
}

static EVP_PKEY *
gce_ak(void)
{
    struct tf_blob pem = tf_file(TF_GCE "extracted/nonce9009.ak-pub.pem");
    EVP_PKEY *key = NULL;
    assert_int_equal(clst_pkey_from_pem(pem.data, pem.size, &key, NULL), CLST_OK);
    tf_blob_free(&pem);
    return key;
}

/* The GCE container for (name, bank, log). */
static struct tf_blob
gce(const char *name, const char *bank, bool with_log)
{
    struct tf_parts p;
    tf_gce_parts(&p, name, bank, with_log);
    struct tf_blob b = tf_container(&p);
    tf_parts_free(&p);
    return b;
}

/* ---- the stored vectors --------------------------------------------------------------------- */

static void
test_gce_all_quotes(void **state)
{
    (void)state;
    STACK_OF(X509) *roots = tf_google_root();
    char *aik_hash = expected_aik_pub_hash();
    struct clst_err err;
    size_t verified = 0;

    for (size_t n = 0; n < 2; n++) {
        for (size_t b = 0; b < 3; b++) {
            for (int log = 0; log < 2; log++) {
                struct tf_parts p;
                tf_gce_parts(&p, gce_names[n], gce_banks[b], log != 0);
                struct tf_blob ev = tf_container(&p);
                json_t *claims = NULL;
                enum clst_status rc = tf_verify(&ev, roots, true, &claims, &err);
                if (rc != CLST_OK) {
                    fprintf(stderr, "%s %s log=%d: %s\n", gce_names[n], gce_banks[b], log, err.msg);
                }
                assert_int_equal(rc, CLST_OK);
                verified++;
                assert_string_equal(
                    json_string_value(json_object_get(claims, "x-ms-attestation-type")), "tpm");
                assert_int_equal(json_integer_value(json_object_get(claims, "tpmVersion")), 2);
                assert_true(json_is_true(json_object_get(claims, "aikValidated")));
                assert_string_equal(json_string_value(json_object_get(claims, "aikPubHash")),
                                    aik_hash);
                assert_string_equal(
                    json_string_value(json_object_get(claims, "x-cloister-tpm-ak-trust")),
                    "certificate");
                /* The quote's qualifiedSigner proves the AK is the endorsement primary key. */
                assert_string_equal(
                    json_string_value(json_object_get(claims, "x-cloister-tpm-ak-hierarchy")),
                    "endorsement");
                assert_string_equal(
                    json_string_value(json_object_get(claims, "x-cloister-tpm-extra-data")),
                    n == 0 ? "9009" : "");
                assert_string_equal(
                    json_string_value(json_object_get(claims, "x-cloister-tpm-sig-alg")), "rsassa");
                assert_string_equal(
                    json_string_value(json_object_get(claims, "x-cloister-tpm-sig-hash")),
                    "sha256");
                assert_int_equal(
                    json_integer_value(json_object_get(claims, "x-cloister-tpm-reset-count")), 10);
                assert_string_equal(
                    json_string_value(json_object_get(claims, "x-cloister-tpm-firmware-version")),
                    "2016051100162800");
                /* Every quoted PCR value, as given. */
                json_t *bank =
                    json_object_get(json_object_get(claims, "x-cloister-tpm-pcrs"), gce_banks[b]);
                assert_int_equal(json_object_size(bank), 24);
                for (unsigned i = 0; i < 24; i++) {
                    char key[4], hex[2 * TPM_DIGEST_MAX_SIZE + 1];
                    snprintf(key, sizeof(key), "%u", i);
                    assert_int_equal(
                        clst_hex_to_str(p.bank[0].value[i], p.bank[0].size, hex, sizeof(hex)),
                        CLST_OK);
                    assert_string_equal(json_string_value(json_object_get(bank, key)), hex);
                }
                /* The log replays PCRs 0..9 (PCR 10 is IMA's, not in the firmware log). */
                assert_int_equal(
                    json_is_true(json_object_get(claims, "x-cloister-tpm-eventlog-verified")),
                    log != 0);
                if (log != 0) {
                    json_t *list = json_object_get(
                        json_object_get(claims, "x-cloister-tpm-eventlog-pcrs"), gce_banks[b]);
                    assert_int_equal(json_array_size(list), 10);
                    for (size_t i = 0; i < 10; i++) {
                        assert_int_equal(json_integer_value(json_array_get(list, i)), i);
                    }
                    /* tpm2_eventlog numbers the last event 44 (the Spec ID event is 0). */
                    assert_int_equal(json_integer_value(
                                         json_object_get(claims, "x-cloister-tpm-eventlog-events")),
                                     44);
                } else {
                    assert_null(json_object_get(claims, "x-cloister-tpm-eventlog-pcrs"));
                }
                json_decref(claims);
                tf_blob_free(&ev);
                tf_parts_free(&p);
            }
        }
    }
    assert_int_equal(verified, 12);
    free(aik_hash);
    sk_X509_pop_free(roots, X509_free);
}

/* The containers stored in tests/vectors/tpm2/containers/ (made by make_containers.py). */
static void
test_stored_containers(void **state)
{
    (void)state;
    STACK_OF(X509) *roots = tf_google_root();
    struct clst_err err;
    for (size_t n = 0; n < 2; n++) {
        for (size_t b = 0; b < 3; b++) {
            for (int log = 0; log < 2; log++) {
                char rel[256];
                snprintf(rel, sizeof(rel), "tpm2/containers/gce-%s-%s%s.json", gce_names[n],
                         gce_banks[b], log ? "" : "-nolog");
                struct tf_blob ev = tf_file(rel);
                assert_int_equal(tf_verify(&ev, roots, true, NULL, &err), CLST_OK);
                /* Without opting in, the SHA-1 bank is refused. */
                assert_int_equal(tf_verify(&ev, roots, false, NULL, &err),
                                 b == 0 ? CLST_E_VERIFY : CLST_OK);
                tf_blob_free(&ev);
            }
        }
    }
    sk_X509_pop_free(roots, X509_free);
}

/* ---- the README's upstream negative cases --------------------------------------------------- */

static void
test_upstream_sha1_not_allowed(void **state)
{
    (void)state;
    STACK_OF(X509) *roots = tf_google_root();
    struct clst_err err;
    for (size_t n = 0; n < 2; n++) {
        struct tf_blob ev = gce(gce_names[n], "sha1", true);
        assert_int_equal(tf_verify(&ev, roots, false, NULL, &err), CLST_E_VERIFY);
        assert_non_null(strstr(err.msg, "SHA-1"));
        assert_int_equal(tf_verify(&ev, roots, true, NULL, &err), CLST_OK);
        tf_blob_free(&ev);
    }
    sk_X509_pop_free(roots, X509_free);
}

static void
test_upstream_no_roots(void **state)
{
    (void)state;
    struct tf_blob ev = gce("nonce9009", "sha256", true);
    STACK_OF(X509) *empty = sk_X509_new_null();
    struct clst_err err;
    assert_int_equal(tf_verify(&ev, NULL, false, NULL, &err), CLST_E_INVAL);
    assert_int_equal(tf_verify(&ev, empty, false, NULL, &err), CLST_E_INVAL);
    sk_X509_free(empty);
    tf_blob_free(&ev);
}

static void
test_upstream_wrong_nonce(void **state)
{
    (void)state;
    STACK_OF(X509) *roots = tf_google_root();
    struct tf_blob with = gce("nonce9009", "sha256", true);
    struct tf_blob without = gce("no-nonce", "sha256", true);
    struct clst_evidence_input in;
    struct clst_err err;
    static const uint8_t good[] = {0x90, 0x09}, bad[] = {0x90, 0x08}, longer[] = {0x90, 0x09, 0};

    memset(&in, 0, sizeof(in));
    in.roots = roots;
    in.at = TF_T_2024;
    in.report_data = good;
    in.report_data_size = sizeof(good);
    assert_int_equal(tf_verify_with(&with, &in, NULL, &err), CLST_OK);
    assert_int_equal(tf_verify_with(&without, &in, NULL, &err), CLST_E_VERIFY);
    in.report_data = bad;
    assert_int_equal(tf_verify_with(&with, &in, NULL, &err), CLST_E_VERIFY);
    in.report_data = longer;
    in.report_data_size = sizeof(longer);
    assert_int_equal(tf_verify_with(&with, &in, NULL, &err), CLST_E_VERIFY);
    in.report_data = good;
    in.report_data_size = 0; /* expecting no nonce */
    assert_int_equal(tf_verify_with(&with, &in, NULL, &err), CLST_E_VERIFY);
    assert_int_equal(tf_verify_with(&without, &in, NULL, &err), CLST_OK);
    /* Runtime-data binding needs 32 bytes of extraData: neither quote has them. */
    in.report_data = NULL;
    in.runtime_data = good;
    in.runtime_data_size = sizeof(good);
    assert_int_equal(tf_verify_with(&with, &in, NULL, &err), CLST_E_VERIFY);
    assert_int_equal(tf_verify_with(&without, &in, NULL, &err), CLST_E_VERIFY);
    tf_blob_free(&with);
    tf_blob_free(&without);
    sk_X509_pop_free(roots, X509_free);
}

/* ---- trust: roots, chain, time, the AK ------------------------------------------------------ */

static void
test_roots_and_chain(void **state)
{
    (void)state;
    STACK_OF(X509) *google = tf_google_root();
    STACK_OF(X509) *distractor = tf_roots(TF_GCE "gcp_ek_ak_ca_root.crt");
    struct tf_parts p;
    struct clst_err err;

    tf_gce_parts(&p, "nonce9009", "sha256", false);
    struct tf_blob ev = tf_container(&p);
    assert_int_equal(tf_verify(&ev, google, false, NULL, &err), CLST_OK);
    /* Another Google root (the GCE EK/AK CA of 2022) is not this chain's root. */
    assert_int_equal(tf_verify(&ev, distractor, false, NULL, &err), CLST_E_VERIFY);
    tf_blob_free(&ev);

    /* Without the intermediate, or with the wrong one: no chain. */
    tf_blob_free(&p.chain[0]);
    p.chain_count = 0;
    ev = tf_container(&p);
    assert_int_equal(tf_verify(&ev, google, false, NULL, &err), CLST_E_VERIFY);
    tf_blob_free(&ev);
    p.chain[0] = tf_file(TF_GCE "tpm_ek_intermediate_3.crt");
    p.chain_count = 1;
    ev = tf_container(&p);
    assert_int_equal(tf_verify(&ev, google, false, NULL, &err), CLST_E_VERIFY);
    tf_blob_free(&ev);
    /* Distractors beside the right intermediate do no harm. */
    p.chain[1] = tf_file(TF_GCE "gcp_ek_ak_ca_intermediate_v3.crt");
    p.chain[2] = tf_file(TF_GCE "tpm_ek_intermediate_2.crt");
    p.chain_count = 3;
    ev = tf_container(&p);
    assert_int_equal(tf_verify(&ev, google, false, NULL, &err), CLST_OK);
    tf_blob_free(&ev);
    /* A root inside the evidence is never a trust anchor. */
    p.chain[3] = tf_file(TF_GCE "gcp_ek_ak_ca_root.crt");
    p.chain_count = 4;
    ev = tf_container(&p);
    assert_int_equal(tf_verify(&ev, distractor, false, NULL, &err), CLST_E_VERIFY);
    tf_blob_free(&ev);
    tf_parts_free(&p);
    sk_X509_pop_free(google, X509_free);
    sk_X509_pop_free(distractor, X509_free);
}

static void
test_time_outside_validity(void **state)
{
    (void)state;
    STACK_OF(X509) *roots = tf_google_root();
    struct tf_blob ev = gce("nonce9009", "sha256", true);
    struct clst_evidence_input in;
    struct clst_err err;
    static const struct {
        const char *at;
        enum clst_status want;
    } cases[] = {
        {"2017-06-01T00:00:00Z", CLST_E_VERIFY}, /* before every certificate */
        {"2019-01-01T00:00:00Z", CLST_E_VERIFY}, /* root only */
        {"2021-01-01T00:00:00Z", CLST_E_VERIFY}, /* root and intermediate, not the AK cert */
        {"2021-08-31T23:11:04Z", CLST_E_VERIFY}, /* one second before the AK cert */
        {"2021-08-31T23:11:05Z", CLST_OK},       /* its notBefore */
        {"2024-01-01T00:00:00Z", CLST_OK},
        {"2051-08-24T23:16:04Z", CLST_OK},       /* one second before its notAfter */
        {"2051-08-24T23:16:06Z", CLST_E_VERIFY}, /* one second after */
        {"2119-01-01T00:00:00Z", CLST_E_VERIFY}, /* after the root */
        {"2130-01-01T00:00:00Z", CLST_E_VERIFY}, /* after every certificate */
    };
    memset(&in, 0, sizeof(in));
    in.roots = roots;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(clst_time_parse(cases[i].at, &in.at, NULL), CLST_OK);
        enum clst_status rc = tf_verify_with(&ev, &in, NULL, &err);
        if (rc != cases[i].want) {
            fprintf(stderr, "at %s: %d (%s)\n", cases[i].at, rc, err.msg);
        }
        assert_int_equal(rc, cases[i].want);
    }
    /* An enrolled AK has no certificate, so time does not matter. */
    in.roots = NULL;
    in.tpm_ak = gce_ak();
    assert_int_equal(clst_time_parse("2130-01-01T00:00:00Z", &in.at, NULL), CLST_OK);
    assert_int_equal(tf_verify_with(&ev, &in, NULL, &err), CLST_OK);
    EVP_PKEY_free(in.tpm_ak);
    tf_blob_free(&ev);
    sk_X509_pop_free(roots, X509_free);
}

static void
test_enrolled_ak(void **state)
{
    (void)state;
    struct tf_parts p;
    struct clst_evidence_input in;
    struct clst_err err;
    json_t *claims = NULL;
    EVP_PKEY *other = NULL;

    tf_gce_parts(&p, "nonce9009", "sha256", true);
    struct tf_blob ev = tf_container(&p);
    memset(&in, 0, sizeof(in));
    in.at = TF_T_2024;
    in.tpm_ak = gce_ak();
    assert_int_equal(tf_verify_with(&ev, &in, &claims, &err), CLST_OK);
    assert_true(json_is_false(json_object_get(claims, "aikValidated")));
    assert_string_equal(json_string_value(json_object_get(claims, "x-cloister-tpm-ak-trust")),
                        "enrolled-key");
    assert_null(json_object_get(claims, "x-cloister-tpm-ak-cert-sha256"));
    json_decref(claims);
    tf_blob_free(&ev);

    /* Without ak_public and without the certificate: the enrolled key alone. */
    tf_blob_free(&p.pub);
    tf_blob_free(&p.cert);
    for (size_t i = 0; i < p.chain_count; i++) {
        tf_blob_free(&p.chain[i]);
    }
    p.chain_count = 0;
    ev = tf_container(&p);
    assert_int_equal(tf_verify_with(&ev, &in, NULL, &err), CLST_OK);
    /* ... and without an enrolled key nothing vouches for the signer. */
    STACK_OF(X509) *roots = tf_google_root();
    assert_int_equal(tf_verify(&ev, roots, false, NULL, &err), CLST_E_VERIFY);
    assert_non_null(strstr(err.msg, "AK certificate"));
    sk_X509_pop_free(roots, X509_free);

    /* The wrong enrolled key: the signature fails. */
    assert_int_equal(clst_rsa_generate(2048, &other), CLST_OK);
    EVP_PKEY *right = in.tpm_ak;
    in.tpm_ak = other;
    assert_int_equal(tf_verify_with(&ev, &in, NULL, &err), CLST_E_VERIFY);
    tf_blob_free(&ev);
    /* With ak_public given, the mismatch is found before the signature. */
    p.pub = tf_file(TF_GCE "extracted/nonce9009.ak-pub.tpmt_public.bin");
    ev = tf_container(&p);
    assert_int_equal(tf_verify_with(&ev, &in, NULL, &err), CLST_E_VERIFY);
    assert_non_null(strstr(err.msg, "ak_public"));
    tf_blob_free(&ev);
    in.tpm_ak = right;
    EVP_PKEY_free(other);
    EVP_PKEY_free(right);
    tf_parts_free(&p);
}

/* The AK certificate of the chain with another ak_public, or another certificate's key. */
static void
test_wrong_ak(void **state)
{
    (void)state;
    STACK_OF(X509) *roots = tf_google_root();
    struct tf_synth s;
    struct tf_parts p;
    struct clst_err err;

    tf_synth_init(&s, CLST_KEY_RSA);
    tf_gce_parts(&p, "nonce9009", "sha256", false);
    tf_blob_free(&p.pub);
    p.pub = tf_synth_public(&s);
    struct tf_blob ev = tf_container(&p);
    assert_int_equal(tf_verify(&ev, roots, false, NULL, &err), CLST_E_VERIFY);
    assert_non_null(strstr(err.msg, "ak_public"));
    tf_blob_free(&ev);
    /* The intermediate as "AK certificate": it chains, but its key did not sign the quote. */
    tf_blob_free(&p.pub);
    tf_blob_free(&p.cert);
    p.cert = tf_file(TF_GCE "tpm_ek_intermediate_2.crt");
    ev = tf_container(&p);
    assert_int_equal(tf_verify(&ev, roots, false, NULL, &err), CLST_E_VERIFY);
    tf_blob_free(&ev);
    tf_parts_free(&p);
    tf_synth_free(&s);
    sk_X509_pop_free(roots, X509_free);
}

/* What in ak_public matters: the key and the restricted/sign/fixedTPM attributes. */
static void
test_ak_public_attributes(void **state)
{
    (void)state;
    STACK_OF(X509) *roots = tf_google_root();
    struct tf_parts p;
    struct clst_err err;
    TPMT_PUBLIC pub;
    static const struct {
        TPMA_OBJECT clear, set;
        enum clst_status want;
    } cases[] = {
        {0, 0, CLST_OK},
        {TPMA_OBJECT_RESTRICTED, 0, CLST_E_VERIFY},
        {TPMA_OBJECT_SIGN_ENCRYPT, 0, CLST_E_VERIFY},
        {TPMA_OBJECT_FIXEDTPM, 0, CLST_E_VERIFY},
        {0, TPMA_OBJECT_DECRYPT, CLST_E_VERIFY},
        {TPMA_OBJECT_USERWITHAUTH, 0, CLST_OK}, /* informational */
    };

    tf_gce_parts(&p, "nonce9009", "sha256", false);
    assert_int_equal(evidence_tpm_public_unmarshal(p.pub.data, p.pub.size, &pub, NULL), CLST_OK);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        TPMT_PUBLIC m = pub;
        uint8_t buf[sizeof(TPMT_PUBLIC)];
        size_t off = 0;
        m.objectAttributes = (m.objectAttributes & ~cases[i].clear) | cases[i].set;
        assert_int_equal(Tss2_MU_TPMT_PUBLIC_Marshal(&m, buf, sizeof(buf), &off), TSS2_RC_SUCCESS);
        tf_blob_free(&p.pub);
        p.pub = tf_copy(buf, off);
        struct tf_blob ev = tf_container(&p);
        json_t *claims = NULL;
        assert_int_equal(tf_verify(&ev, roots, false, &claims, &err), cases[i].want);
        if (claims != NULL) {
            /* Only the unaltered public area is the one the quote's signer name proves. */
            assert_int_equal(json_object_get(claims, "x-cloister-tpm-ak-hierarchy") != NULL,
                             cases[i].clear == 0 && cases[i].set == 0);
        }
        json_decref(claims);
        tf_blob_free(&ev);
    }
    /* A modulus byte flipped: another key than the certificate's. */
    TPMT_PUBLIC m = pub;
    uint8_t buf[sizeof(TPMT_PUBLIC)];
    size_t off = 0;
    m.unique.rsa.buffer[100] ^= 0x01;
    assert_int_equal(Tss2_MU_TPMT_PUBLIC_Marshal(&m, buf, sizeof(buf), &off), TSS2_RC_SUCCESS);
    tf_blob_free(&p.pub);
    p.pub = tf_copy(buf, off);
    struct tf_blob ev = tf_container(&p);
    assert_int_equal(tf_verify(&ev, roots, false, NULL, &err), CLST_E_VERIFY);
    tf_blob_free(&ev);
    tf_parts_free(&p);
    sk_X509_pop_free(roots, X509_free);
}

/* ---- flipped bytes in every signed region --------------------------------------------------- */

/* Flips bytes 0, stride, 2*stride, ... and the last byte of `region`; every mutant must be
 * rejected. */
static void
flip_each(struct tf_parts *p, struct tf_blob *region, size_t stride, STACK_OF(X509) *roots,
          const char *what)
{
    struct clst_err err;
    size_t rejected = 0, tried = 0;
    for (size_t i = 0; i < region->size;
         i = (i + stride < region->size || i == region->size - 1) ? i + stride : region->size - 1) {
        tried++;
        region->data[i] ^= 0x01;
        struct tf_blob ev = tf_container(p);
        enum clst_status rc = tf_verify(&ev, roots, false, NULL, &err);
        if (rc == CLST_OK) {
            fprintf(stderr, "%s: byte %zu flipped was accepted\n", what, i);
        }
        assert_true(rc == CLST_E_VERIFY || rc == CLST_E_MALFORMED);
        rejected++;
        tf_blob_free(&ev);
        region->data[i] ^= 0x01;
    }
    assert_int_equal(rejected, tried);
    assert_true(tried >= region->size / stride);
    /* Restored: accepted again. */
    struct tf_blob ev = tf_container(p);
    assert_int_equal(tf_verify(&ev, roots, false, NULL, &err), CLST_OK);
    tf_blob_free(&ev);
}

static void
test_flip_signed_regions(void **state)
{
    (void)state;
    STACK_OF(X509) *roots = tf_google_root();
    struct tf_parts p;
    tf_gce_parts(&p, "nonce9009", "sha256", false);
    /* Every byte of the quote; the signature and the certificates (which OpenSSL checks
     * byte for byte anyway) at a stride, to keep the run short. */
    flip_each(&p, &p.quote, 1, roots, "TPMS_ATTEST");
    flip_each(&p, &p.sig, 3, roots, "TPMT_SIGNATURE");
    flip_each(&p, &p.cert, 11, roots, "AK certificate");
    flip_each(&p, &p.chain[0], 11, roots, "intermediate certificate");
    tf_parts_free(&p);
    sk_X509_pop_free(roots, X509_free);
}

static void
test_wrong_pcr_values(void **state)
{
    (void)state;
    STACK_OF(X509) *roots = tf_google_root();
    struct tf_parts p;
    struct clst_err err;
    tf_gce_parts(&p, "nonce9009", "sha384", false);
    /* A byte of each value: the digest no longer matches. */
    for (unsigned i = 0; i < TPM_PCR_COUNT; i++) {
        p.bank[0].value[i][i % p.bank[0].size] ^= 0x80;
        struct tf_blob ev = tf_container(&p);
        assert_int_equal(tf_verify(&ev, roots, false, NULL, &err), CLST_E_VERIFY);
        assert_non_null(strstr(err.msg, "pcrDigest"));
        tf_blob_free(&ev);
        p.bank[0].value[i][i % p.bank[0].size] ^= 0x80;
    }
    /* Two values swapped. */
    uint8_t tmp[TPM_DIGEST_MAX_SIZE];
    memcpy(tmp, p.bank[0].value[0], sizeof(tmp));
    memcpy(p.bank[0].value[0], p.bank[0].value[1], sizeof(tmp));
    memcpy(p.bank[0].value[1], tmp, sizeof(tmp));
    struct tf_blob ev = tf_container(&p);
    assert_int_equal(tf_verify(&ev, roots, false, NULL, &err), CLST_E_VERIFY);
    tf_blob_free(&ev);
    memcpy(p.bank[0].value[1], p.bank[0].value[0], sizeof(tmp));
    memcpy(p.bank[0].value[0], tmp, sizeof(tmp));
    /* A quoted PCR missing. */
    p.bank[0].mask &= ~(1u << 5);
    ev = tf_container(&p);
    assert_int_equal(tf_verify(&ev, roots, false, NULL, &err), CLST_E_VERIFY);
    assert_non_null(strstr(err.msg, "sha384:5"));
    tf_blob_free(&ev);
    p.bank[0].mask |= 1u << 5;
    /* A value the quote does not cover (another bank). */
    p.bank_count = 2;
    p.bank[1].name = "sha256";
    p.bank[1].size = 32;
    p.bank[1].mask = 1;
    ev = tf_container(&p);
    assert_int_equal(tf_verify(&ev, roots, false, NULL, &err), CLST_E_VERIFY);
    assert_non_null(strstr(err.msg, "sha256:0"));
    tf_blob_free(&ev);
    /* No values at all. */
    p.bank_count = 0;
    ev = tf_container(&p);
    assert_int_equal(tf_verify(&ev, roots, false, NULL, &err), CLST_E_VERIFY);
    tf_blob_free(&ev);
    tf_parts_free(&p);
    sk_X509_pop_free(roots, X509_free);
}

/* Each digest of the log in the quoted bank is bound by the replay; the other banks' digests, the
 * EV_NO_ACTION digests and the event data are not (they are not measured into these PCRs). */
static void
test_flip_eventlog(void **state)
{
    (void)state;
    STACK_OF(X509) *roots = tf_google_root();
    struct tf_parts p;
    struct clst_err err;
    static struct tf_log_event events[256];
    size_t bound = 0, unbound = 0;

    tf_gce_parts(&p, "nonce9009", "sha256", true);
    size_t count = tf_log_walk(p.log.data, p.log.size, events, 256);
    assert_int_equal(count, 45);
    for (size_t e = 1; e < count; e++) {
        for (size_t d = 0; d < events[e].digest_count; d++) {
            bool quoted_bank = events[e].digest_alg[d] == TPM_ALG_SHA256_ID;
            bool extends = events[e].type != TPM_EV_NO_ACTION;
            if (!quoted_bank && e % 2 == 0) {
                continue; /* the other banks' digests of every other event are enough */
            }
            size_t at = events[e].digest_offset[d] + e % events[e].digest_size[d];
            p.log.data[at] ^= 0x01;
            struct tf_blob ev = tf_container(&p);
            enum clst_status rc = tf_verify(&ev, roots, false, NULL, &err);
            if (quoted_bank && extends) {
                assert_int_equal(rc, CLST_E_VERIFY);
                assert_non_null(strstr(err.msg, "event log"));
                bound++;
            } else {
                assert_int_equal(rc, CLST_OK);
                unbound++;
            }
            tf_blob_free(&ev);
            p.log.data[at] ^= 0x01;
        }
        if (events[e].data_size > 0) {
            p.log.data[events[e].data_offset] ^= 0x01;
            struct tf_blob ev = tf_container(&p);
            assert_int_equal(tf_verify(&ev, roots, false, NULL, &err), CLST_OK);
            tf_blob_free(&ev);
            p.log.data[events[e].data_offset] ^= 0x01;
        }
    }
    assert_true(bound >= 40);
    assert_true(unbound > 0);
    /* The log is then replayed for sha384 when that bank is quoted: a sha384 digest matters. */
    tf_parts_free(&p);
    tf_gce_parts(&p, "nonce9009", "sha384", true);
    for (size_t d = 0; d < events[1].digest_count; d++) {
        if (events[1].digest_alg[d] == TPM_ALG_SHA384_ID) {
            p.log.data[events[1].digest_offset[d]] ^= 0x01;
        }
    }
    struct tf_blob ev = tf_container(&p);
    assert_int_equal(tf_verify(&ev, roots, false, NULL, &err), CLST_E_VERIFY);
    tf_blob_free(&ev);
    /* A log of another boot: one event dropped. */
    tf_parts_free(&p);
    tf_gce_parts(&p, "nonce9009", "sha256", true);
    size_t cut = events[5].offset, len = events[5].end - events[5].offset;
    memmove(p.log.data + cut, p.log.data + cut + len, p.log.size - cut - len);
    p.log.size -= len;
    ev = tf_container(&p);
    assert_int_equal(tf_verify(&ev, roots, false, NULL, &err), CLST_E_VERIFY);
    tf_blob_free(&ev);
    tf_parts_free(&p);
    sk_X509_pop_free(roots, X509_free);
}

/* ---- size limits come first ------------------------------------------------------------------ */

static void
test_oversized(void **state)
{
    (void)state;
    STACK_OF(X509) *roots = tf_google_root();
    struct tf_parts p;
    struct clst_err err;

    /* Larger than the kind's limit: refused before a byte is parsed. */
    struct tf_blob big = tf_copy("", 0);
    free(big.data);
    big.size = TPM_EVIDENCE_MAX_SIZE + 1;
    big.data = malloc(big.size);
    assert_non_null(big.data);
    memset(big.data, ' ', big.size);
    assert_int_equal(tf_verify(&big, roots, false, NULL, &err), CLST_E_LIMIT);
    tf_blob_free(&big);
    assert_int_equal(clst_evidence_max_size(CLST_EVIDENCE_TPM), TPM_EVIDENCE_MAX_SIZE);

    /* Oversized fields with a garbage signature: LIMIT, not VERIFY (no signature check ran). */
    tf_gce_parts(&p, "nonce9009", "sha256", false);
    memset(p.sig.data + 6, 0, p.sig.size - 6);
    tf_blob_free(&p.log);
    p.log = tf_copy("", 0);
    free(p.log.data);
    p.log.size = TPM_EVENTLOG_MAX_SIZE + 1;
    p.log.data = calloc(1, p.log.size);
    struct tf_blob ev = tf_container(&p);
    assert_int_equal(tf_verify(&ev, roots, false, NULL, &err), CLST_E_LIMIT);
    tf_blob_free(&ev);
    tf_blob_free(&p.log);

    struct tf_blob cert = p.cert;
    p.cert = tf_copy("", 0);
    free(p.cert.data);
    p.cert.size = TPM_CERT_MAX_SIZE + 1;
    p.cert.data = calloc(1, p.cert.size);
    ev = tf_container(&p);
    assert_int_equal(tf_verify(&ev, roots, false, NULL, &err), CLST_E_LIMIT);
    tf_blob_free(&ev);
    tf_blob_free(&p.cert);
    p.cert = cert;

    for (size_t i = 1; i <= TPM_CHAIN_MAX_COUNT; i++) {
        p.chain[i] = tf_copy(p.chain[0].data, p.chain[0].size);
    }
    p.chain_count = TPM_CHAIN_MAX_COUNT + 1;
    ev = tf_container(&p);
    assert_int_equal(tf_verify(&ev, roots, false, NULL, &err), CLST_E_LIMIT);
    tf_blob_free(&ev);

    struct tf_blob quote = tf_copy("", 0);
    free(quote.data);
    quote.size = TPM_QUOTE_MAX_SIZE + 1;
    quote.data = calloc(1, quote.size);
    tf_blob_free(&p.quote);
    p.quote = quote;
    ev = tf_container(&p);
    assert_int_equal(tf_verify(&ev, roots, false, NULL, &err), CLST_E_LIMIT);
    tf_blob_free(&ev);
    tf_parts_free(&p);
    sk_X509_pop_free(roots, X509_free);
}

/* ---- synthetic quotes: the other signature schemes and impossible shapes --------------------- */

static void
test_synthetic_schemes(void **state)
{
    (void)state;
    struct clst_err err;
    json_t *claims = NULL;
    static const struct {
        enum clst_key_kind kind;
        uint16_t alg, hash;
        size_t salt; /* RSAPSS; SIZE_MAX: the largest the key allows */
        enum clst_status want;
        const char *name;
    } cases[] = {
        {CLST_KEY_RSA, TPM2_ALG_RSASSA, TPM2_ALG_SHA256, 0, CLST_OK, "rsassa"},
        {CLST_KEY_RSA, TPM2_ALG_RSASSA, TPM2_ALG_SHA384, 0, CLST_OK, "rsassa"},
        {CLST_KEY_RSA, TPM2_ALG_RSASSA, TPM2_ALG_SHA512, 0, CLST_OK, "rsassa"},
        {CLST_KEY_RSA, TPM2_ALG_RSASSA, TPM2_ALG_SHA1, 0, CLST_E_VERIFY, NULL},
        {CLST_KEY_RSA, TPM2_ALG_RSAPSS, TPM2_ALG_SHA256, 32, CLST_OK, "rsapss"},
        {CLST_KEY_RSA, TPM2_ALG_RSAPSS, TPM2_ALG_SHA256, SIZE_MAX, CLST_OK, "rsapss"},
        {CLST_KEY_RSA, TPM2_ALG_RSAPSS, TPM2_ALG_SHA384, 48, CLST_OK, "rsapss"},
        {CLST_KEY_RSA, TPM2_ALG_RSAPSS, TPM2_ALG_SHA256, 20, CLST_E_VERIFY, NULL},
        {CLST_KEY_EC_P256, TPM2_ALG_ECDSA, TPM2_ALG_SHA256, 0, CLST_OK, "ecdsa"},
        {CLST_KEY_EC_P384, TPM2_ALG_ECDSA, TPM2_ALG_SHA384, 0, CLST_OK, "ecdsa"},
        {CLST_KEY_EC_P384, TPM2_ALG_ECDSA, TPM2_ALG_SHA256, 0, CLST_OK, "ecdsa"},
        {CLST_KEY_EC_P256, TPM2_ALG_ECDSA, TPM2_ALG_SHA1, 0, CLST_E_VERIFY, NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tf_synth s;
        tf_synth_init(&s, cases[i].kind);
        s.sig_alg = cases[i].alg;
        s.sig_hash = cases[i].hash;
        if (cases[i].alg == TPM2_ALG_RSAPSS) {
            s.pss_salt = cases[i].salt != SIZE_MAX
                             ? cases[i].salt
                             : 256 - clst_hash_size(tf_hash(cases[i].hash)) - 2;
        }
        tf_synth_digest(&s);
        struct tf_blob ev = tf_synth_container(&s);
        enum clst_status rc = tf_synth_verify(&s, &ev, &claims, &err);
        if (rc != cases[i].want) {
            fprintf(stderr, "case %zu: %d (%s)\n", i, rc, err.msg);
        }
        assert_int_equal(rc, cases[i].want);
        if (rc == CLST_OK) {
            assert_string_equal(
                json_string_value(json_object_get(claims, "x-cloister-tpm-sig-alg")),
                cases[i].name);
            assert_string_equal(
                json_string_value(json_object_get(claims, "x-cloister-tpm-extra-data")),
                "73796e746865746963206e6f6e6365");
            /* A made-up qualifiedSigner proves nothing about the public area. */
            assert_null(json_object_get(claims, "x-cloister-tpm-ak-hierarchy"));
            json_decref(claims);
            claims = NULL;
            /* The signature's bytes are what they look like: flip one and it fails. */
            tf_blob_free(&ev);
            s.parts.sig.data[s.parts.sig.size - 1] ^= 0x01;
            ev = tf_container(&s.parts);
            assert_int_equal(tf_synth_verify(&s, &ev, NULL, &err), CLST_E_VERIFY);
        }
        tf_blob_free(&ev);
        tf_synth_free(&s);
    }
}

static void
test_synthetic_mismatches(void **state)
{
    (void)state;
    struct clst_err err;
    struct tf_synth s;

    /* An ECDSA signature claimed for an RSA key, and RSASSA for an EC key. */
    tf_synth_init(&s, CLST_KEY_RSA);
    struct tf_blob ev = tf_synth_container(&s);
    TPMT_SIGNATURE sig;
    assert_int_equal(
        evidence_tpm_signature_unmarshal(s.parts.sig.data, s.parts.sig.size, &sig, NULL), CLST_OK);
    TPMT_SIGNATURE e;
    memset(&e, 0, sizeof(e));
    e.sigAlg = TPM2_ALG_ECDSA;
    e.signature.ecdsa.hash = TPM2_ALG_SHA256;
    e.signature.ecdsa.signatureR.size = 32;
    e.signature.ecdsa.signatureS.size = 32;
    memcpy(e.signature.ecdsa.signatureR.buffer, sig.signature.rsassa.sig.buffer, 32);
    memcpy(e.signature.ecdsa.signatureS.buffer, sig.signature.rsassa.sig.buffer + 32, 32);
    uint8_t buf[sizeof(TPMT_SIGNATURE)];
    size_t off = 0;
    assert_int_equal(Tss2_MU_TPMT_SIGNATURE_Marshal(&e, buf, sizeof(buf), &off), TSS2_RC_SUCCESS);
    tf_blob_free(&s.parts.sig);
    s.parts.sig = tf_copy(buf, off);
    tf_blob_free(&ev);
    ev = tf_container(&s.parts);
    assert_int_equal(tf_synth_verify(&s, &ev, NULL, &err), CLST_E_VERIFY);
    /* RSAPSS label on an RSASSA signature. */
    sig.sigAlg = TPM2_ALG_RSAPSS;
    off = 0;
    assert_int_equal(Tss2_MU_TPMT_SIGNATURE_Marshal(&sig, buf, sizeof(buf), &off), TSS2_RC_SUCCESS);
    tf_blob_free(&s.parts.sig);
    s.parts.sig = tf_copy(buf, off);
    tf_blob_free(&ev);
    ev = tf_container(&s.parts);
    assert_int_equal(tf_synth_verify(&s, &ev, NULL, &err), CLST_E_VERIFY);
    /* Signature algorithms a quote may not use here (HMAC, NULL). */
    static const uint16_t others[] = {TPM2_ALG_HMAC, TPM2_ALG_NULL, TPM2_ALG_ECSCHNORR};
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
        TPMT_SIGNATURE o;
        memset(&o, 0, sizeof(o));
        o.sigAlg = others[i];
        o.signature.hmac.hashAlg = TPM2_ALG_SHA256;
        off = 0;
        if (others[i] == TPM2_ALG_ECSCHNORR) {
            o.signature.ecschnorr = e.signature.ecdsa;
        }
        assert_int_equal(Tss2_MU_TPMT_SIGNATURE_Marshal(&o, buf, sizeof(buf), &off),
                         TSS2_RC_SUCCESS);
        tf_blob_free(&s.parts.sig);
        s.parts.sig = tf_copy(buf, off);
        tf_blob_free(&ev);
        ev = tf_container(&s.parts);
        assert_int_equal(tf_synth_verify(&s, &ev, NULL, &err), CLST_E_VERIFY);
    }
    tf_blob_free(&ev);
    tf_synth_free(&s);

    tf_synth_init(&s, CLST_KEY_EC_P256);
    s.sig_alg = TPM2_ALG_ECDSA;
    ev = tf_synth_container(&s);
    assert_int_equal(tf_synth_verify(&s, &ev, NULL, &err), CLST_OK);
    /* ECDSA r longer than the curve. */
    assert_int_equal(
        evidence_tpm_signature_unmarshal(s.parts.sig.data, s.parts.sig.size, &sig, NULL), CLST_OK);
    sig.signature.ecdsa.signatureR.size = 33;
    off = 0;
    assert_int_equal(Tss2_MU_TPMT_SIGNATURE_Marshal(&sig, buf, sizeof(buf), &off), TSS2_RC_SUCCESS);
    tf_blob_free(&s.parts.sig);
    s.parts.sig = tf_copy(buf, off);
    tf_blob_free(&ev);
    ev = tf_container(&s.parts);
    assert_int_equal(tf_synth_verify(&s, &ev, NULL, &err), CLST_E_VERIFY);
    tf_blob_free(&ev);
    tf_synth_free(&s);
}

static void
test_synthetic_selection(void **state)
{
    (void)state;
    struct clst_err err;
    json_t *claims = NULL;
    struct tf_synth s;

    /* Two banks in one quote, H_sig over both in selection order. */
    tf_synth_init(&s, CLST_KEY_EC_P256);
    TPML_PCR_SELECTION *sel = &s.attest.attested.quote.pcrSelect;
    sel->count = 2;
    sel->pcrSelections[1].hash = TPM2_ALG_SHA384;
    sel->pcrSelections[1].sizeofSelect = 3;
    sel->pcrSelections[1].pcrSelect[2] = 0x80; /* PCR 23 */
    s.parts.bank_count = 2;
    s.parts.bank[1].name = "sha384";
    s.parts.bank[1].size = 48;
    s.parts.bank[1].mask = 1u << 23;
    memset(s.parts.bank[1].value[23], 0x23, 48);
    tf_synth_digest(&s);
    struct tf_blob ev = tf_synth_container(&s);
    assert_int_equal(tf_synth_verify(&s, &ev, &claims, &err), CLST_OK);
    assert_non_null(json_object_get(
        json_object_get(json_object_get(claims, "x-cloister-tpm-pcrs"), "sha384"), "23"));
    assert_false(json_is_true(json_object_get(claims, "x-cloister-tpm-eventlog-verified")));
    json_decref(claims);
    tf_blob_free(&ev);

    /* The digest made with the bank's hash instead of the signing hash: refused. */
    s.sig_hash = TPM2_ALG_SHA384;
    tf_synth_digest(&s);          /* digest with SHA-384 ... */
    s.sig_hash = TPM2_ALG_SHA256; /* ... signed with SHA-256 */
    ev = tf_synth_container(&s);
    assert_int_equal(tf_synth_verify(&s, &ev, NULL, &err), CLST_E_VERIFY);
    tf_blob_free(&ev);
    tf_synth_free(&s);

    /* No PCRs at all: a nonce-only quote, pcrDigest = H(""). */
    tf_synth_init(&s, CLST_KEY_RSA);
    s.attest.attested.quote.pcrSelect.count = 0;
    s.parts.bank_count = 0;
    tf_synth_digest(&s);
    ev = tf_synth_container(&s);
    assert_int_equal(tf_synth_verify(&s, &ev, &claims, &err), CLST_OK);
    assert_int_equal(json_object_size(json_object_get(claims, "x-cloister-tpm-pcrs")), 0);
    json_decref(claims);
    tf_blob_free(&ev);
    tf_synth_free(&s);

    /* PCR 24 (past the PC Client's 24), an unknown bank, a bank twice. */
    for (int c = 0; c < 3; c++) {
        tf_synth_init(&s, CLST_KEY_RSA);
        TPMS_PCR_SELECTION *ps = &s.attest.attested.quote.pcrSelect.pcrSelections[0];
        if (c == 0) {
            ps->sizeofSelect = 4;
            ps->pcrSelect[3] = 0x01;
        } else if (c == 1) {
            ps->hash = TPM2_ALG_SM3_256;
        } else {
            s.attest.attested.quote.pcrSelect.count = 2;
            s.attest.attested.quote.pcrSelect.pcrSelections[1] = *ps;
        }
        tf_synth_digest(&s);
        ev = tf_synth_container(&s);
        assert_int_equal(tf_synth_verify(&s, &ev, NULL, &err), CLST_E_VERIFY);
        tf_blob_free(&ev);
        tf_synth_free(&s);
    }
}

static void
test_synthetic_binding_and_log(void **state)
{
    (void)state;
    struct clst_err err;
    struct clst_evidence_input in;
    json_t *claims = NULL;
    struct tf_synth s;
    struct tf_log log;
    static const uint8_t runtime[] = "the enclave's public key";
    uint8_t rd[CLST_EVIDENCE_REPORT_DATA_SIZE];

    /* extraData = SHA-256(runtime data) || 32 zero bytes binds the runtime data. */
    tf_synth_init(&s, CLST_KEY_RSA);
    assert_int_equal(clst_evidence_report_data_bind(runtime, sizeof(runtime), rd), CLST_OK);
    s.attest.extraData.size = sizeof(rd);
    memcpy(s.attest.extraData.buffer, rd, sizeof(rd));

    /* PCRs 0..2 as a log of three events replays them; PCR 0 starts at locality 3. */
    static const uint16_t algs[] = {TPM_ALG_SHA1_ID, TPM_ALG_SHA256_ID};
    uint8_t locality[17] = "StartupLocality";
    locality[16] = 3;
    tf_log_init(&log, algs, 2);
    tf_log_event(&log, 0, TPM_EV_NO_ACTION, locality, sizeof(locality));
    memset(s.parts.bank[0].value, 0, sizeof(s.parts.bank[0].value));
    s.parts.bank[0].value[0][31] = 3;
    for (uint32_t pcr = 0; pcr < 3; pcr++) {
        char data[16];
        snprintf(data, sizeof(data), "event %u", pcr);
        tf_log_event(&log, pcr, 0x0d, data, strlen(data));
        tf_extend(TPM_ALG_SHA256_ID, s.parts.bank[0].value[pcr], data, strlen(data));
    }
    tf_log_event(&log, 4, 0x0d, "not quoted", 10); /* PCR 4: not quoted, not checked */
    s.parts.log = tf_copy(log.buf.data, log.buf.size);
    tf_synth_digest(&s);
    struct tf_blob ev = tf_synth_container(&s);
    memset(&in, 0, sizeof(in));
    in.tpm_ak = s.key;
    in.at = TF_T_2024;
    in.runtime_data = runtime;
    in.runtime_data_size = sizeof(runtime);
    assert_int_equal(tf_verify_with(&ev, &in, &claims, &err), CLST_OK);
    assert_true(json_is_true(json_object_get(claims, "x-cloister-tpm-eventlog-verified")));
    assert_int_equal(json_array_size(json_object_get(
                         json_object_get(claims, "x-cloister-tpm-eventlog-pcrs"), "sha256")),
                     3);
    json_decref(claims);
    in.runtime_data = (const uint8_t *)"other";
    in.runtime_data_size = 5;
    assert_int_equal(tf_verify_with(&ev, &in, NULL, &err), CLST_E_VERIFY);
    tf_blob_free(&ev);

    /* The same log without its StartupLocality event replays PCR 0 differently. */
    tf_blob_free(&s.parts.log);
    static struct tf_log_event events[16];
    size_t n = tf_log_walk(log.buf.data, log.buf.size, events, 16);
    assert_int_equal(n, 6);
    s.parts.log = tf_copy(log.buf.data, events[1].offset);
    struct tf_blob tail = tf_copy(log.buf.data + events[2].offset, log.buf.size - events[2].offset);
    s.parts.log.data = realloc(s.parts.log.data, s.parts.log.size + tail.size);
    memcpy(s.parts.log.data + s.parts.log.size, tail.data, tail.size);
    s.parts.log.size += tail.size;
    tf_blob_free(&tail);
    ev = tf_synth_container(&s);
    in.runtime_data = NULL;
    in.runtime_data_size = 0;
    assert_int_equal(tf_verify_with(&ev, &in, NULL, &err), CLST_E_VERIFY);
    assert_non_null(strstr(err.msg, "sha256:0"));
    tf_blob_free(&ev);
    clst_buf_cleanup(&log.buf);

    /* A log with only SHA-1 digests cannot vouch for a sha256 quote. */
    static const uint16_t sha1_only[] = {TPM_ALG_SHA1_ID};
    tf_log_init(&log, sha1_only, 1);
    tf_log_event(&log, 0, 0x0d, "x", 1);
    tf_blob_free(&s.parts.log);
    s.parts.log = tf_copy(log.buf.data, log.buf.size);
    ev = tf_synth_container(&s);
    assert_int_equal(tf_verify_with(&ev, &in, NULL, &err), CLST_E_VERIFY);
    assert_non_null(strstr(err.msg, "no sha256 digests"));
    tf_blob_free(&ev);
    clst_buf_cleanup(&log.buf);
    tf_synth_free(&s);
}

int
main(int argc, char **argv)
{
    /* tpm2-tss logs malformed input to stderr; these tests feed it plenty. */
    setenv("TSS2_LOG", "all+none", 0);
    if (argc > 1) {
        cmocka_set_test_filter(argv[1]); /* e.g. "test_flip_*" */
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gce_all_quotes),
        cmocka_unit_test(test_stored_containers),
        cmocka_unit_test(test_upstream_sha1_not_allowed),
        cmocka_unit_test(test_upstream_no_roots),
        cmocka_unit_test(test_upstream_wrong_nonce),
        cmocka_unit_test(test_roots_and_chain),
        cmocka_unit_test(test_time_outside_validity),
        cmocka_unit_test(test_enrolled_ak),
        cmocka_unit_test(test_wrong_ak),
        cmocka_unit_test(test_ak_public_attributes),
        cmocka_unit_test(test_flip_signed_regions),
        cmocka_unit_test(test_wrong_pcr_values),
        cmocka_unit_test(test_flip_eventlog),
        cmocka_unit_test(test_oversized),
        cmocka_unit_test(test_synthetic_schemes),
        cmocka_unit_test(test_synthetic_mismatches),
        cmocka_unit_test(test_synthetic_selection),
        cmocka_unit_test(test_synthetic_binding_and_log),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
