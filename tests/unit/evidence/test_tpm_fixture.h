/*
 * Shared by the TPM unit tests (include after <cmocka.h>):
 *
 *  - the stored GCE vectors (tests/vectors/tpm2/go-tpm-tools-gce/, README there): real vTPM
 *    quotes, their AK (TPMT_PUBLIC and certificate), the Google chain and the event log, put
 *    into the container of docs/evidence-tpm.md by tf_container() so that each part can be
 *    mutated on its own;
 *  - synthetic quotes (tf_synth_*): a TPMS_ATTEST marshalled by libtss2-mu and signed here with
 *    a software key, for the signature schemes the GCE files do not have (RSAPSS with both salt
 *    conventions, ECDSA on P-256/P-384) and for shapes a real TPM never produces (unrestricted
 *    AK, SHA-1 signature, PCRs past 23, ...). They are trusted as an enrolled key.
 */
#ifndef CLST_TEST_TPM_FIXTURE_H
#define CLST_TEST_TPM_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>

#include <cloister/crypto.h>
#include <cloister/evidence.h>

#include "evidence/tpm_int.h"
#include "test_util.h"

/* 2024-01-01T00:00:00Z: inside the validity of the AK certificate (2021-08-31..2051-08-24), the
 * intermediate (2020..2120) and the root (2018..2118). */
#define TF_T_2024 INT64_C(1704067200)

#define TF_GCE "tpm2/go-tpm-tools-gce/"

struct tf_blob {
    unsigned char *data;
    size_t size;
};

static inline struct tf_blob
tf_file(const char *rel)
{
    char path[1024];
    struct tf_blob b = {NULL, 0};
    int n = snprintf(path, sizeof(path), "%s/%s", CLST_VECTORS_DIR, rel);
    assert_true(n > 0 && (size_t)n < sizeof(path));
    b.data = tu_read_file(path, &b.size);
    if (b.data == NULL) {
        fprintf(stderr, "cannot read %s\n", path);
    }
    assert_non_null(b.data);
    return b;
}

static inline struct tf_blob
tf_copy(const void *data, size_t size)
{
    struct tf_blob b;
    b.data = malloc(size > 0 ? size : 1);
    assert_non_null(b.data);
    if (size > 0) {
        memcpy(b.data, data, size);
    }
    b.size = size;
    return b;
}

static inline void
tf_blob_free(struct tf_blob *b)
{
    free(b->data);
    b->data = NULL;
    b->size = 0;
}

/* ---- the container from parts --------------------------------------------------------------- */

#define TF_MAX_CHAIN 6

struct tf_parts {
    struct tf_blob quote, sig, pub, cert, log;
    struct tf_blob chain[TF_MAX_CHAIN];
    size_t chain_count;
    /* PCR values: per bank, a name and 24 slots; `mask` says which are written. */
    size_t bank_count;
    struct {
        const char *name;
        size_t size;
        uint32_t mask;
        uint8_t value[TPM_PCR_COUNT][TPM_DIGEST_MAX_SIZE];
    } bank[TPM_MAX_BANKS];
};

static inline void
tf_parts_free(struct tf_parts *p)
{
    tf_blob_free(&p->quote);
    tf_blob_free(&p->sig);
    tf_blob_free(&p->pub);
    tf_blob_free(&p->cert);
    tf_blob_free(&p->log);
    for (size_t i = 0; i < p->chain_count; i++) {
        tf_blob_free(&p->chain[i]);
    }
    memset(p, 0, sizeof(*p));
}

/* The GCE parts: name "nonce9009" or "no-nonce", bank "sha1"/"sha256"/"sha384". */
static inline void
tf_gce_parts(struct tf_parts *p, const char *name, const char *bank, bool with_log)
{
    char rel[256];
    memset(p, 0, sizeof(*p));
    snprintf(rel, sizeof(rel), TF_GCE "extracted/%s.quote-%s.tpms_attest.bin", name, bank);
    p->quote = tf_file(rel);
    snprintf(rel, sizeof(rel), TF_GCE "extracted/%s.quote-%s.tpmt_signature.bin", name, bank);
    p->sig = tf_file(rel);
    p->pub = tf_file(TF_GCE "extracted/nonce9009.ak-pub.tpmt_public.bin");
    p->cert = tf_file(TF_GCE "extracted/nonce9009.ak-cert.der");
    p->chain[0] = tf_file(TF_GCE "tpm_ek_intermediate_2.crt");
    p->chain_count = 1;
    if (with_log) {
        p->log = tf_file(TF_GCE "extracted/nonce9009.event-log.bin");
    }
    snprintf(rel, sizeof(rel), TF_GCE "extracted/%s.quote-%s.pcrs-concat.bin", name, bank);
    struct tf_blob concat = tf_file(rel);
    uint16_t alg = 0;
    assert_true(evidence_tpm_alg_from_name(bank, &alg));
    size_t size = evidence_tpm_alg_digest_size(alg);
    assert_int_equal(concat.size, TPM_PCR_COUNT * size);
    p->bank_count = 1;
    p->bank[0].name = bank;
    p->bank[0].size = size;
    p->bank[0].mask = (1u << TPM_PCR_COUNT) - 1;
    for (size_t i = 0; i < TPM_PCR_COUNT; i++) {
        memcpy(p->bank[0].value[i], concat.data + i * size, size);
    }
    tf_blob_free(&concat);
}

static inline json_t *
tf_b64(const struct tf_blob *b)
{
    struct clst_buf out;
    clst_buf_init(&out, 4u * 1024 * 1024);
    assert_int_equal(clst_b64_encode(b->data, b->size, &out), CLST_OK);
    json_t *s = json_stringn(out.size > 0 ? (const char *)out.data : "", out.size);
    clst_buf_cleanup(&out);
    assert_non_null(s);
    return s;
}

/* The container as a JSON object (to mutate further), then as text. */
static inline json_t *
tf_container_json(const struct tf_parts *p)
{
    json_t *doc = json_object(), *pcrs = json_object();
    assert_non_null(doc);
    assert_non_null(pcrs);
    assert_int_equal(json_object_set_new(doc, "version", json_integer(1)), 0);
    if (p->quote.data != NULL) {
        json_object_set_new(doc, "quote", tf_b64(&p->quote));
    }
    if (p->sig.data != NULL) {
        json_object_set_new(doc, "signature", tf_b64(&p->sig));
    }
    for (size_t b = 0; b < p->bank_count; b++) {
        json_t *bank = json_object();
        for (unsigned i = 0; i < TPM_PCR_COUNT; i++) {
            char hex[2 * TPM_DIGEST_MAX_SIZE + 1], key[4];
            if ((p->bank[b].mask & (1u << i)) == 0) {
                continue;
            }
            snprintf(key, sizeof(key), "%u", i);
            assert_int_equal(
                clst_hex_to_str(p->bank[b].value[i], p->bank[b].size, hex, sizeof(hex)), CLST_OK);
            json_object_set_new(bank, key, json_string(hex));
        }
        json_object_set_new(pcrs, p->bank[b].name, bank);
    }
    json_object_set_new(doc, "pcrs", pcrs);
    if (p->pub.data != NULL) {
        json_object_set_new(doc, "ak_public", tf_b64(&p->pub));
    }
    if (p->cert.data != NULL) {
        json_object_set_new(doc, "ak_cert", tf_b64(&p->cert));
    }
    if (p->chain_count > 0) {
        json_t *chain = json_array();
        for (size_t i = 0; i < p->chain_count; i++) {
            json_array_append_new(chain, tf_b64(&p->chain[i]));
        }
        json_object_set_new(doc, "ak_chain", chain);
    }
    if (p->log.data != NULL) {
        json_object_set_new(doc, "event_log", tf_b64(&p->log));
    }
    return doc;
}

static inline struct tf_blob
tf_dump(json_t *doc)
{
    char *text = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
    assert_non_null(text);
    struct tf_blob b = {(unsigned char *)text, strlen(text)};
    return b;
}

static inline struct tf_blob
tf_container(const struct tf_parts *p)
{
    json_t *doc = tf_container_json(p);
    struct tf_blob b = tf_dump(doc);
    json_decref(doc);
    return b;
}

/* ---- trust and verification ----------------------------------------------------------------- */

/* A stack holding the DER certificate at tests/vectors/<rel>. */
static inline STACK_OF(X509) *
tf_roots(const char *rel)
{
    struct tf_blob der = tf_file(rel);
    X509 *x = NULL;
    assert_int_equal(clst_x509_from_der(der.data, der.size, &x, NULL), CLST_OK);
    tf_blob_free(&der);
    STACK_OF(X509) *roots = sk_X509_new_null();
    assert_non_null(roots);
    assert_true(sk_X509_push(roots, x) > 0);
    return roots;
}

static inline STACK_OF(X509) *
tf_google_root(void)
{
    return tf_roots(TF_GCE "tpm_ek_root_1.cer");
}

/* Verifies `ev` with `in` as the template (evidence fields are set here). */
static inline enum clst_status
tf_verify_with(const struct tf_blob *ev, const struct clst_evidence_input *tmpl, json_t **claims,
               struct clst_err *err)
{
    struct clst_evidence_input in = *tmpl;
    json_t *c = NULL;
    in.evidence = ev->data;
    in.evidence_size = ev->size;
    memset(err, 0, sizeof(*err));
    enum clst_status rc = clst_evidence_verify(CLST_EVIDENCE_TPM, &in, &c, err);
    assert_true((rc == CLST_OK) == (c != NULL));
    if (rc != CLST_OK) {
        assert_true(err->msg[0] != '\0'); /* every rejection says why */
    }
    if (claims != NULL) {
        *claims = c;
    } else {
        json_decref(c);
    }
    return rc;
}

/* The default: Google root, 2024-01-01. */
static inline enum clst_status
tf_verify(const struct tf_blob *ev, STACK_OF(X509) *roots, bool allow_sha1, json_t **claims,
          struct clst_err *err)
{
    struct clst_evidence_input in;
    memset(&in, 0, sizeof(in));
    in.roots = roots;
    in.at = TF_T_2024;
    in.tpm_allow_sha1 = allow_sha1;
    return tf_verify_with(ev, &in, claims, err);
}

/* ---- synthetic quotes ----------------------------------------------------------------------- */

struct tf_synth {
    EVP_PKEY *key;
    TPMS_ATTEST attest; /* filled by tf_synth_init; the test may change it */
    uint16_t sig_alg;   /* TPM2_ALG_RSASSA, RSAPSS or ECDSA */
    uint16_t sig_hash;  /* TPM2_ALG_SHA256 ... */
    size_t pss_salt;    /* RSAPSS: salt length used to sign */
    TPMA_OBJECT attrs;  /* of the TPMT_PUBLIC */
    bool include_public;
    struct tf_parts parts; /* PCR values; the TPM blobs are produced by tf_synth_container */
};

static inline enum clst_hash
tf_hash(uint16_t alg)
{
    return alg == TPM_ALG_SHA1_ID     ? CLST_HASH_SHA1
           : alg == TPM_ALG_SHA384_ID ? CLST_HASH_SHA384
           : alg == TPM_ALG_SHA512_ID ? CLST_HASH_SHA512
                                      : CLST_HASH_SHA256;
}

/* Recomputes pcrDigest with H_sig over the selection and the PCR values of s->parts. */
static inline void
tf_synth_digest(struct tf_synth *s)
{
    struct clst_hash_ctx ctx;
    TPML_PCR_SELECTION *sel = &s->attest.attested.quote.pcrSelect;
    assert_int_equal(clst_hash_init(&ctx, tf_hash(s->sig_hash)), CLST_OK);
    for (uint32_t i = 0; i < sel->count; i++) {
        const char *name = evidence_tpm_alg_name(sel->pcrSelections[i].hash);
        size_t b = 0;
        while (b < s->parts.bank_count &&
               (name == NULL || strcmp(s->parts.bank[b].name, name) != 0)) {
            b++;
        }
        for (unsigned pcr = 0; pcr < 8u * sel->pcrSelections[i].sizeofSelect; pcr++) {
            if ((sel->pcrSelections[i].pcrSelect[pcr / 8] & (1u << (pcr % 8))) == 0 ||
                b == s->parts.bank_count || pcr >= TPM_PCR_COUNT) {
                continue;
            }
            assert_int_equal(
                clst_hash_update(&ctx, s->parts.bank[b].value[pcr], s->parts.bank[b].size),
                CLST_OK);
        }
    }
    assert_int_equal(clst_hash_final(&ctx, s->attest.attested.quote.pcrDigest.buffer), CLST_OK);
    s->attest.attested.quote.pcrDigest.size = (UINT16)clst_hash_size(tf_hash(s->sig_hash));
}

/* kind: CLST_KEY_RSA (RSASSA), or CLST_KEY_EC_P256 / _P384 (ECDSA). PCRs sha256:0,1,2 with
 * values 0x01.., 0x02.., 0x03..; extraData "synthetic nonce". */
static inline void
tf_synth_init(struct tf_synth *s, enum clst_key_kind kind)
{
    /* One key per kind for the whole test program (RSA generation is slow), kept to the end. */
    static EVP_PKEY *keys[3];
    size_t slot = kind == CLST_KEY_RSA ? 0 : kind == CLST_KEY_EC_P256 ? 1 : 2;
    memset(s, 0, sizeof(*s));
    if (keys[slot] == NULL) {
        if (kind == CLST_KEY_RSA) {
            assert_int_equal(clst_rsa_generate(2048, &keys[slot]), CLST_OK);
        } else {
            assert_int_equal(
                clst_ec_generate(kind == CLST_KEY_EC_P384 ? CLST_CURVE_P384 : CLST_CURVE_P256,
                                 &keys[slot]),
                CLST_OK);
        }
    }
    assert_int_equal(EVP_PKEY_up_ref(keys[slot]), 1);
    s->key = keys[slot];
    s->sig_alg = kind == CLST_KEY_RSA ? TPM2_ALG_RSASSA : TPM2_ALG_ECDSA;
    s->sig_hash = TPM2_ALG_SHA256;
    s->pss_salt = CLST_SHA256_SIZE;
    s->attrs = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
               TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT;
    s->include_public = true;

    TPMS_ATTEST *a = &s->attest;
    a->magic = TPM2_GENERATED_VALUE;
    a->type = TPM2_ST_ATTEST_QUOTE;
    a->qualifiedSigner.size = 34;
    a->qualifiedSigner.name[1] = 0x0b;
    memset(a->qualifiedSigner.name + 2, 0x5a, 32);
    a->extraData.size = 15;
    memcpy(a->extraData.buffer, "synthetic nonce", 15);
    a->clockInfo.clock = 123456789;
    a->clockInfo.resetCount = 3;
    a->clockInfo.restartCount = 1;
    a->clockInfo.safe = 1;
    a->firmwareVersion = UINT64_C(0x2016051100162800);
    a->attested.quote.pcrSelect.count = 1;
    a->attested.quote.pcrSelect.pcrSelections[0].hash = TPM2_ALG_SHA256;
    a->attested.quote.pcrSelect.pcrSelections[0].sizeofSelect = 3;
    a->attested.quote.pcrSelect.pcrSelections[0].pcrSelect[0] = 0x07;
    s->parts.bank_count = 1;
    s->parts.bank[0].name = "sha256";
    s->parts.bank[0].size = CLST_SHA256_SIZE;
    s->parts.bank[0].mask = 0x7;
    for (unsigned i = 0; i < 3; i++) {
        memset(s->parts.bank[0].value[i], (int)(i + 1), CLST_SHA256_SIZE);
    }
    tf_synth_digest(s);
}

static inline void
tf_synth_free(struct tf_synth *s)
{
    EVP_PKEY_free(s->key);
    tf_parts_free(&s->parts);
    memset(s, 0, sizeof(*s));
}

/* The TPMT_PUBLIC of s->key (RSA or ECC), marshalled. */
static inline struct tf_blob
tf_synth_public(const struct tf_synth *s)
{
    TPMT_PUBLIC p;
    uint8_t buf[sizeof(TPMT_PUBLIC)];
    size_t off = 0;
    memset(&p, 0, sizeof(p));
    p.nameAlg = TPM2_ALG_SHA256;
    p.objectAttributes = s->attrs;
    if (clst_pkey_kind(s->key) == CLST_KEY_RSA) {
        BIGNUM *n = NULL;
        p.type = TPM2_ALG_RSA;
        p.parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_NULL;
        p.parameters.rsaDetail.scheme.scheme = s->sig_alg;
        p.parameters.rsaDetail.scheme.details.anySig.hashAlg = s->sig_hash;
        p.parameters.rsaDetail.keyBits = (UINT16)clst_pkey_bits(s->key);
        assert_int_equal(EVP_PKEY_get_bn_param(s->key, OSSL_PKEY_PARAM_RSA_N, &n), 1);
        p.unique.rsa.size = (UINT16)BN_num_bytes(n);
        assert_int_equal(BN_bn2bin(n, p.unique.rsa.buffer), p.unique.rsa.size);
        BN_free(n);
    } else {
        struct clst_buf point;
        size_t coord = clst_pkey_kind(s->key) == CLST_KEY_EC_P384 ? 48 : 32;
        p.type = TPM2_ALG_ECC;
        p.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
        p.parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDSA;
        p.parameters.eccDetail.scheme.details.ecdsa.hashAlg = s->sig_hash;
        p.parameters.eccDetail.curveID = coord == 48 ? TPM2_ECC_NIST_P384 : TPM2_ECC_NIST_P256;
        p.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
        clst_buf_init(&point, 200);
        assert_int_equal(clst_ec_point_encode(s->key, &point), CLST_OK);
        assert_int_equal(point.size, 1 + 2 * coord);
        p.unique.ecc.x.size = (UINT16)coord;
        memcpy(p.unique.ecc.x.buffer, point.data + 1, coord);
        p.unique.ecc.y.size = (UINT16)coord;
        memcpy(p.unique.ecc.y.buffer, point.data + 1 + coord, coord);
        clst_buf_cleanup(&point);
    }
    assert_int_equal(Tss2_MU_TPMT_PUBLIC_Marshal(&p, buf, sizeof(buf), &off), TSS2_RC_SUCCESS);
    return tf_copy(buf, off);
}

/* Marshals s->attest, signs it, and builds the container (no certificate: enrolled-key trust). */
static inline struct tf_blob
tf_synth_container(struct tf_synth *s)
{
    uint8_t quote[sizeof(TPMS_ATTEST)], sigbuf[sizeof(TPMT_SIGNATURE)];
    size_t qsize = 0, ssize = 0;
    TPMT_SIGNATURE sig;
    struct clst_buf raw;
    /* The crypto wrappers do not sign with SHA-1; a SHA-1-labelled signature is made with
     * SHA-256 (the verifier must refuse the label before looking at the bytes). */
    enum clst_hash h = s->sig_hash == TPM2_ALG_SHA1 ? CLST_HASH_SHA256 : tf_hash(s->sig_hash);

    assert_int_equal(Tss2_MU_TPMS_ATTEST_Marshal(&s->attest, quote, sizeof(quote), &qsize),
                     TSS2_RC_SUCCESS);
    clst_buf_init(&raw, 1024);
    memset(&sig, 0, sizeof(sig));
    sig.sigAlg = s->sig_alg;
    if (s->sig_alg == TPM2_ALG_ECDSA) {
        assert_int_equal(clst_ecdsa_sign(s->key, h, CLST_SIG_RAW, quote, qsize, &raw), CLST_OK);
        sig.signature.ecdsa.hash = s->sig_hash;
        sig.signature.ecdsa.signatureR.size = (UINT16)(raw.size / 2);
        memcpy(sig.signature.ecdsa.signatureR.buffer, raw.data, raw.size / 2);
        sig.signature.ecdsa.signatureS.size = (UINT16)(raw.size / 2);
        memcpy(sig.signature.ecdsa.signatureS.buffer, raw.data + raw.size / 2, raw.size / 2);
    } else {
        if (s->sig_alg == TPM2_ALG_RSAPSS) {
            assert_int_equal(clst_rsa_pss_sign(s->key, h, s->pss_salt, quote, qsize, &raw),
                             CLST_OK);
        } else {
            assert_int_equal(clst_rsa_pkcs1_sign(s->key, h, quote, qsize, &raw), CLST_OK);
        }
        sig.signature.rsassa.hash = s->sig_hash;
        sig.signature.rsassa.sig.size = (UINT16)raw.size;
        memcpy(sig.signature.rsassa.sig.buffer, raw.data, raw.size);
    }
    clst_buf_cleanup(&raw);
    assert_int_equal(Tss2_MU_TPMT_SIGNATURE_Marshal(&sig, sigbuf, sizeof(sigbuf), &ssize),
                     TSS2_RC_SUCCESS);
    tf_blob_free(&s->parts.quote);
    tf_blob_free(&s->parts.sig);
    tf_blob_free(&s->parts.pub);
    s->parts.quote = tf_copy(quote, qsize);
    s->parts.sig = tf_copy(sigbuf, ssize);
    if (s->include_public) {
        s->parts.pub = tf_synth_public(s);
    }
    return tf_container(&s->parts);
}

/* Verifies with s->key enrolled, at 2024-01-01. */
static inline enum clst_status
tf_synth_verify(struct tf_synth *s, const struct tf_blob *ev, json_t **claims, struct clst_err *err)
{
    struct clst_evidence_input in;
    memset(&in, 0, sizeof(in));
    in.tpm_ak = s->key;
    in.at = TF_T_2024;
    return tf_verify_with(ev, &in, claims, err);
}

/* ---- event logs: an independent walker (offsets for mutation tests) and a builder --------- */

struct tf_log_event {
    size_t offset; /* start of the record */
    size_t end;    /* one past its last byte */
    uint32_t pcr, type;
    size_t digest_count;
    uint16_t digest_alg[TPM_EVENTLOG_MAX_ALGS];
    size_t digest_offset[TPM_EVENTLOG_MAX_ALGS];
    size_t digest_size[TPM_EVENTLOG_MAX_ALGS];
    size_t data_offset, data_size;
};

static inline uint32_t
tf_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Walks a well-formed crypto-agile log (asserts on anything else); the Spec ID event is
 * events[0]. Returns the number of events. */
static inline size_t
tf_log_walk(const uint8_t *log, size_t size, struct tf_log_event *events, size_t max)
{
    size_t off = 0, n = 0, alg_count;
    uint16_t alg[TPM_EVENTLOG_MAX_ALGS], asize[TPM_EVENTLOG_MAX_ALGS];
    assert_true(size >= 32);
    uint32_t spec_size = tf_le32(log + 28);
    assert_true(32 + (size_t)spec_size <= size);
    alg_count = tf_le32(log + 32 + 24);
    assert_true(alg_count <= TPM_EVENTLOG_MAX_ALGS);
    for (size_t i = 0; i < alg_count; i++) {
        alg[i] = (uint16_t)(log[32 + 28 + 4 * i] | log[32 + 29 + 4 * i] << 8);
        asize[i] = (uint16_t)(log[32 + 30 + 4 * i] | log[32 + 31 + 4 * i] << 8);
    }
    memset(&events[0], 0, sizeof(events[0]));
    events[0].offset = 0;
    events[0].end = 32 + spec_size;
    events[0].type = TPM_EV_NO_ACTION;
    events[0].data_offset = 32;
    events[0].data_size = spec_size;
    n = 1;
    off = events[0].end;
    while (off < size) {
        struct tf_log_event *e = &events[n];
        assert_true(n < max);
        memset(e, 0, sizeof(*e));
        e->offset = off;
        e->pcr = tf_le32(log + off);
        e->type = tf_le32(log + off + 4);
        e->digest_count = tf_le32(log + off + 8);
        off += 12;
        for (size_t d = 0; d < e->digest_count; d++) {
            uint16_t a = (uint16_t)(log[off] | log[off + 1] << 8);
            size_t k = 0;
            while (k < alg_count && alg[k] != a) {
                k++;
            }
            assert_true(k < alg_count);
            e->digest_alg[d] = a;
            e->digest_offset[d] = off + 2;
            e->digest_size[d] = asize[k];
            off += 2 + asize[k];
        }
        e->data_size = tf_le32(log + off);
        e->data_offset = off + 4;
        off += 4 + e->data_size;
        e->end = off;
        assert_true(off <= size);
        n++;
    }
    return n;
}

/* A log under construction. */
struct tf_log {
    struct clst_buf buf;
    size_t alg_count;
    uint16_t alg[TPM_EVENTLOG_MAX_ALGS];
};

static inline void
tf_put32(struct clst_buf *b, uint32_t v)
{
    uint8_t le[4];
    clst_put_le32(le, v);
    assert_int_equal(clst_buf_append(b, le, 4), CLST_OK);
}

static inline void
tf_put16(struct clst_buf *b, uint16_t v)
{
    uint8_t le[2];
    clst_put_le16(le, v);
    assert_int_equal(clst_buf_append(b, le, 2), CLST_OK);
}

/* Starts a log whose Spec ID event lists `algs` (known banks). */
static inline void
tf_log_init(struct tf_log *l, const uint16_t *algs, size_t count)
{
    static const uint8_t zero[20];
    memset(l, 0, sizeof(*l));
    clst_buf_init(&l->buf, 2u * 1024 * 1024);
    l->alg_count = count;
    memcpy(l->alg, algs, count * sizeof(algs[0]));
    tf_put32(&l->buf, 0);
    tf_put32(&l->buf, TPM_EV_NO_ACTION);
    assert_int_equal(clst_buf_append(&l->buf, zero, 20), CLST_OK);
    tf_put32(&l->buf, (uint32_t)(16 + 4 + 4 + 4 + 4 * count + 1));
    assert_int_equal(clst_buf_append(&l->buf, "Spec ID Event03", 16), CLST_OK);
    tf_put32(&l->buf, 0);                                               /* platformClass */
    assert_int_equal(clst_buf_append(&l->buf, "\0\2\0\2", 4), CLST_OK); /* 2.0, errata 0, uintn 2 */
    tf_put32(&l->buf, (uint32_t)count);
    for (size_t i = 0; i < count; i++) {
        tf_put16(&l->buf, algs[i]);
        tf_put16(&l->buf, (uint16_t)evidence_tpm_alg_digest_size(algs[i]));
    }
    assert_int_equal(clst_buf_append_byte(&l->buf, 0), CLST_OK); /* no vendor info */
}

/* Appends an event whose digest in every bank is H_bank(data). */
static inline void
tf_log_event(struct tf_log *l, uint32_t pcr, uint32_t type, const void *data, size_t size)
{
    tf_put32(&l->buf, pcr);
    tf_put32(&l->buf, type);
    tf_put32(&l->buf, (uint32_t)l->alg_count);
    for (size_t i = 0; i < l->alg_count; i++) {
        uint8_t d[CLST_HASH_MAX_SIZE];
        tf_put16(&l->buf, l->alg[i]);
        assert_int_equal(clst_hash(tf_hash(l->alg[i]), data, size, d), CLST_OK);
        if (type == TPM_EV_NO_ACTION) {
            memset(d, 0, sizeof(d));
        }
        assert_int_equal(clst_buf_append(&l->buf, d, evidence_tpm_alg_digest_size(l->alg[i])),
                         CLST_OK);
    }
    tf_put32(&l->buf, (uint32_t)size);
    assert_int_equal(clst_buf_append(&l->buf, data, size), CLST_OK);
}

/* What a TPM's PCR holds after the events of tf_log_event for `alg`: for tests that compute the
 * expected value independently of the replay code. */
static inline void
tf_extend(uint16_t alg, uint8_t *pcr, const void *data, size_t size)
{
    uint8_t buf[2 * CLST_HASH_MAX_SIZE];
    size_t n = evidence_tpm_alg_digest_size(alg);
    memcpy(buf, pcr, n);
    assert_int_equal(clst_hash(tf_hash(alg), data, size, buf + n), CLST_OK);
    assert_int_equal(clst_hash(tf_hash(alg), buf, 2 * n, pcr), CLST_OK);
}

#endif
