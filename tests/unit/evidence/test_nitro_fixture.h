/*
 * Shared by the Nitro unit tests (include after <cmocka.h>): the stored real documents
 * (tests/vectors/nitro/blocky-nitrite/, see its README) and a synthetic AWS-like PKI and document
 * builder made at run time, used through evidence_nitro_verify_with() so that documents with any
 * field, size, chain or signature can be signed. The synthetic roots never reach the production
 * path, which only knows aws_roots.c.
 *
 * The builder encodes CBOR by hand (minimal heads) and computes the Sig_structure it signs with
 * libcbor's own encoder, independently of evidence_nitro_tbs_digest.
 */
#ifndef CLST_TEST_NITRO_FIXTURE_H
#define CLST_TEST_NITRO_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cbor.h>
#include <openssl/x509v3.h>

#include <cloister/crypto.h>
#include <cloister/evidence.h>

#include "evidence/nitro_int.h"
#include "test_util.h"

/* The README's fixed verification times: each document's own timestamp, in seconds. */
#define NX_T_PROD    INT64_C(1725719859) /* nitro_attestation: 2024-09-07T14:37:39.545Z */
#define NX_T_DEBUG   INT64_C(1725719886) /* nitro_attestation_debug: 14:38:06.508Z */
#define NX_T_2024_05 INT64_C(1715103786) /* nitro_attestation_2024-05: 2024-05-07T17:43:06.613Z */
/* The signing certificate of nitro_attestation: 2024-09-07T14:37:36Z .. 17:37:39Z (notBefore and
 * notAfter; OpenSSL treats notAfter as already expired). */
#define NX_PROD_LEAF_NB INT64_C(1725719856)
#define NX_PROD_LEAF_NA INT64_C(1725730659)

/* A synthetic verification time (2025-01-01T00:00:00Z). */
#define NX_T INT64_C(1735689600)

/* ---- stored vectors ------------------------------------------------------------------------- */

static inline uint8_t *
nx_read(const char *rel, size_t *out_size)
{
    char path[1024];
    int n = snprintf(path, sizeof(path), "%s/nitro/blocky-nitrite/%s", CLST_VECTORS_DIR, rel);
    if (n < 0 || (size_t)n >= sizeof(path)) {
        return NULL;
    }
    uint8_t *data = tu_read_file(path, out_size);
    if (data == NULL) {
        fprintf(stderr, "cannot read %s\n", path);
    }
    return data;
}

/* The AWS root compiled in, as a caller passes it. */
static inline STACK_OF(X509) *
nx_aws_roots(void)
{
    STACK_OF(X509) *roots = NULL;
    return clst_evidence_nitro_roots(&roots, NULL) == CLST_OK ? roots : NULL;
}

static inline int
nx_der(X509 *x, struct clst_buf *out)
{
    unsigned char *der = NULL;
    int n = i2d_X509(x, &der);
    int rc = (n > 0 && clst_buf_append(out, der, (size_t)n) == CLST_OK) ? 0 : -1;
    OPENSSL_free(der);
    return rc;
}

/* ---- synthetic certificates ----------------------------------------------------------------- */

static inline int
nx_add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
    if (value == NULL) {
        return 0;
    }
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    int ok = ext != NULL && X509_add_ext(x, ext, -1) == 1;
    X509_EXTENSION_free(ext);
    return ok ? 0 : -1;
}

/*
 * A certificate for subject_key signed by issuer_key with SHA-384 (self-signed when issuer is
 * NULL). bc / ku are OpenSSL extension values ("critical,CA:TRUE", "critical,keyCertSign"); NULL
 * leaves the extension out. Validity [now + nb, now + na] with now = NX_T.
 */
static inline X509 *
nx_cert(EVP_PKEY *issuer_key, X509 *issuer, EVP_PKEY *subject_key, const char *cn, const char *bc,
        const char *ku, int64_t nb, int64_t na)
{
    static long serial = 1000;
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    X509V3_CTX ctx;
    int ok = x != NULL && name != NULL && X509_set_version(x, 2) == 1 &&
             ASN1_INTEGER_set(X509_get_serialNumber(x), ++serial) == 1 &&
             X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1,
                                        0) == 1 &&
             X509_set_subject_name(x, name) == 1 &&
             X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer) : name) == 1 &&
             ASN1_TIME_set(X509_getm_notBefore(x), (time_t)(NX_T + nb)) != NULL &&
             ASN1_TIME_set(X509_getm_notAfter(x), (time_t)(NX_T + na)) != NULL &&
             X509_set_pubkey(x, subject_key) == 1;
    if (ok) {
        X509V3_set_ctx(&ctx, issuer != NULL ? issuer : x, x, NULL, NULL, 0);
        ok = nx_add_ext(x, &ctx, NID_basic_constraints, bc) == 0 &&
             nx_add_ext(x, &ctx, NID_key_usage, ku) == 0 &&
             nx_add_ext(x, &ctx, NID_subject_key_identifier, "hash") == 0 &&
             nx_add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always") == 0 &&
             X509_sign(x, issuer_key, EVP_sha384()) > 0;
    }
    X509_NAME_free(name);
    if (!ok) {
        X509_free(x);
        return NULL;
    }
    return x;
}

static inline EVP_PKEY *
nx_key(void)
{
    EVP_PKEY *k = NULL;
    return clst_ec_generate(CLST_CURVE_P384, &k) == CLST_OK ? k : NULL;
}

/* Validity windows, in seconds relative to NX_T. */
struct nx_windows {
    int64_t root_nb, root_na, inter_nb, inter_na, leaf_nb, leaf_na;
};

static const struct nx_windows nx_default_windows = {
    -10 * 365 * 86400, 20 * 365 * 86400, -30 * 86400, 30 * 86400, -3600, 3 * 3600,
};

/* A root -> intermediate -> leaf chain like AWS's (shorter: one intermediate). */
struct nx_pki {
    EVP_PKEY *root_key, *inter_key, *leaf_key;
    X509 *root, *inter, *leaf;
    STACK_OF(X509) *anchors; /* { root } */
};

static inline int
nx_pki_init(struct nx_pki *p, const struct nx_windows *w)
{
    memset(p, 0, sizeof(*p));
    if (w == NULL) {
        w = &nx_default_windows;
    }
    p->root_key = nx_key();
    p->inter_key = nx_key();
    p->leaf_key = nx_key();
    if (p->root_key == NULL || p->inter_key == NULL || p->leaf_key == NULL) {
        return -1;
    }
    p->root =
        nx_cert(p->root_key, NULL, p->root_key, "synthetic.nitro-enclaves", "critical,CA:TRUE",
                "critical,digitalSignature,keyCertSign,cRLSign", w->root_nb, w->root_na);
    p->inter =
        nx_cert(p->root_key, p->root, p->inter_key, "i-0123.synthetic.nitro-enclaves",
                "critical,CA:TRUE,pathlen:0", "critical,keyCertSign", w->inter_nb, w->inter_na);
    p->leaf =
        nx_cert(p->inter_key, p->inter, p->leaf_key, "i-0123-enc0456.synthetic",
                "critical,CA:FALSE", "digitalSignature,nonRepudiation", w->leaf_nb, w->leaf_na);
    p->anchors = sk_X509_new_null();
    if (p->root == NULL || p->inter == NULL || p->leaf == NULL || p->anchors == NULL ||
        X509_up_ref(p->root) != 1) {
        return -1;
    }
    if (sk_X509_push(p->anchors, p->root) <= 0) {
        X509_free(p->root);
        return -1;
    }
    return 0;
}

static inline void
nx_pki_cleanup(struct nx_pki *p)
{
    EVP_PKEY_free(p->root_key);
    EVP_PKEY_free(p->inter_key);
    EVP_PKEY_free(p->leaf_key);
    X509_free(p->root);
    X509_free(p->inter);
    X509_free(p->leaf);
    sk_X509_pop_free(p->anchors, X509_free);
    memset(p, 0, sizeof(*p));
}

/* ---- CBOR encoding -------------------------------------------------------------------------- */

static inline int
nx_head(struct clst_buf *b, uint8_t major, uint64_t arg)
{
    uint8_t h[9];
    size_t n = nitro_cbor_head(major, arg, h);
    return clst_buf_append(b, h, n) == CLST_OK ? 0 : -1;
}

static inline int
nx_bstr(struct clst_buf *b, const uint8_t *p, size_t size)
{
    return nx_head(b, 2, size) == 0 && (size == 0 || clst_buf_append(b, p, size) == CLST_OK) ? 0
                                                                                             : -1;
}

static inline int
nx_tstr(struct clst_buf *b, const char *s)
{
    size_t n = strlen(s);
    return nx_head(b, 3, n) == 0 && (n == 0 || clst_buf_append(b, s, n) == CLST_OK) ? 0 : -1;
}

/* ---- documents ------------------------------------------------------------------------------ */

enum nx_field {
    NX_MODULE_ID = 0,
    NX_DIGEST,
    NX_TIMESTAMP,
    NX_PCRS,
    NX_CERTIFICATE,
    NX_CABUNDLE,
    NX_PUBLIC_KEY,
    NX_USER_DATA,
    NX_NONCE,
    NX_FIELD_COUNT,
};

static const char *const nx_field_names[NX_FIELD_COUNT] = {
    "module_id", "digest",     "timestamp", "pcrs",  "certificate",
    "cabundle",  "public_key", "user_data", "nonce",
};

enum nx_opt { NX_ABSENT = 0, NX_NULL, NX_PRESENT };

/*
 * Everything a synthetic document holds. nx_spec_default fills a valid one; tests change one
 * thing. raw[f] (when set) replaces field f's value encoding as is; omit[f] leaves the key out;
 * extra (raw key-value pairs, extra_count of them) is appended to the map.
 */
struct nx_spec {
    const char *module_id;
    const char *digest;
    uint64_t timestamp_ms;
    uint32_t pcr_mask;
    uint8_t pcr[NITRO_PCR_COUNT][NITRO_PCR_SIZE];
    X509 *cert;
    X509 *bundle[NITRO_CABUNDLE_MAX + 2];
    size_t bundle_count;
    enum nx_opt public_key_mode, user_data_mode, nonce_mode;
    uint8_t public_key[NITRO_USER_DATA_MAX + 1];
    size_t public_key_size;
    uint8_t user_data[NITRO_USER_DATA_MAX + 1];
    size_t user_data_size;
    uint8_t nonce[NITRO_USER_DATA_MAX + 1];
    size_t nonce_size;
    const uint8_t *raw[NX_FIELD_COUNT];
    size_t raw_size[NX_FIELD_COUNT];
    bool omit[NX_FIELD_COUNT];
    const uint8_t *extra;
    size_t extra_size, extra_count;
    /* The envelope. */
    bool tagged;
    const uint8_t *protected_bytes; /* default a1 01 38 22 */
    size_t protected_size;
    const uint8_t *unprotected; /* default a0 */
    size_t unprotected_size;
    EVP_PKEY *sign_key;     /* default: the leaf key */
    const uint8_t *sig_raw; /* when set: this signature instead of signing */
    size_t sig_size;
};

static const uint8_t nx_protected_es384[] = {0xa1, 0x01, 0x38, 0x22};
static const uint8_t nx_unprotected_empty[] = {0xa0};

static inline void
nx_spec_default(struct nx_spec *s, const struct nx_pki *p)
{
    memset(s, 0, sizeof(*s));
    s->module_id = "i-0123456789abcdef0-enc0123456789abcdef";
    s->digest = "SHA384";
    s->timestamp_ms = (uint64_t)NX_T * 1000 + 500;
    s->pcr_mask = 0xFFFF; /* PCR0..15, as AWS sends them */
    for (size_t i = 0; i < 16; i++) {
        if (i <= 2 || i == 4 || i == 8) {
            memset(s->pcr[i], (int)(0x10 + i), NITRO_PCR_SIZE);
        }
    }
    s->cert = p->leaf;
    s->bundle[0] = p->root;
    s->bundle[1] = p->inter;
    s->bundle_count = 2;
    s->public_key_mode = s->user_data_mode = s->nonce_mode = NX_PRESENT;
    memset(s->public_key, 0x04, 97);
    s->public_key_size = 97;
    memset(s->user_data, 0x55, 64);
    s->user_data_size = 64;
    memset(s->nonce, 0xAA, 32);
    s->nonce_size = 32;
    s->protected_bytes = nx_protected_es384;
    s->protected_size = sizeof(nx_protected_es384);
    s->unprotected = nx_unprotected_empty;
    s->unprotected_size = sizeof(nx_unprotected_empty);
    s->sign_key = p->leaf_key;
}

static inline int
nx_opt_field(struct clst_buf *b, enum nx_opt mode, const uint8_t *p, size_t size)
{
    if (mode == NX_NULL) {
        return clst_buf_append_byte(b, 0xf6) == CLST_OK ? 0 : -1;
    }
    return nx_bstr(b, p, size);
}

static inline int
nx_field_value(struct clst_buf *b, const struct nx_spec *s, enum nx_field f)
{
    struct clst_buf der;
    int rc = -1;
    if (s->raw[f] != NULL) {
        return clst_buf_append(b, s->raw[f], s->raw_size[f]) == CLST_OK ? 0 : -1;
    }
    switch (f) {
    case NX_MODULE_ID:
        return nx_tstr(b, s->module_id);
    case NX_DIGEST:
        return nx_tstr(b, s->digest);
    case NX_TIMESTAMP:
        return nx_head(b, 0, s->timestamp_ms);
    case NX_PCRS: {
        size_t n = 0;
        for (unsigned i = 0; i < NITRO_PCR_COUNT; i++) {
            n += (s->pcr_mask >> i) & 1u;
        }
        if (nx_head(b, 5, n) != 0) {
            return -1;
        }
        for (unsigned i = 0; i < NITRO_PCR_COUNT; i++) {
            if (((s->pcr_mask >> i) & 1u) != 0 &&
                (nx_head(b, 0, i) != 0 || nx_bstr(b, s->pcr[i], NITRO_PCR_SIZE) != 0)) {
                return -1;
            }
        }
        return 0;
    }
    case NX_CERTIFICATE:
        clst_buf_init(&der, 1u << 16);
        rc = nx_der(s->cert, &der) == 0 && nx_bstr(b, der.data, der.size) == 0 ? 0 : -1;
        clst_buf_cleanup(&der);
        return rc;
    case NX_CABUNDLE:
        if (nx_head(b, 4, s->bundle_count) != 0) {
            return -1;
        }
        for (size_t i = 0; i < s->bundle_count; i++) {
            clst_buf_init(&der, 1u << 16);
            rc = nx_der(s->bundle[i], &der) == 0 && nx_bstr(b, der.data, der.size) == 0 ? 0 : -1;
            clst_buf_cleanup(&der);
            if (rc != 0) {
                return -1;
            }
        }
        return 0;
    case NX_PUBLIC_KEY:
        return nx_opt_field(b, s->public_key_mode, s->public_key, s->public_key_size);
    case NX_USER_DATA:
        return nx_opt_field(b, s->user_data_mode, s->user_data, s->user_data_size);
    case NX_NONCE:
        return nx_opt_field(b, s->nonce_mode, s->nonce, s->nonce_size);
    case NX_FIELD_COUNT:
        break;
    }
    return -1;
}

static inline bool
nx_field_included(const struct nx_spec *s, enum nx_field f)
{
    if (s->omit[f]) {
        return false;
    }
    if (f == NX_PUBLIC_KEY && s->raw[f] == NULL) {
        return s->public_key_mode != NX_ABSENT;
    }
    if (f == NX_USER_DATA && s->raw[f] == NULL) {
        return s->user_data_mode != NX_ABSENT;
    }
    if (f == NX_NONCE && s->raw[f] == NULL) {
        return s->nonce_mode != NX_ABSENT;
    }
    return true;
}

/* The payload map of `s` appended to out. */
static inline int
nx_payload(const struct nx_spec *s, struct clst_buf *out)
{
    size_t count = s->extra_count;
    for (int f = 0; f < NX_FIELD_COUNT; f++) {
        count += nx_field_included(s, (enum nx_field)f) ? 1 : 0;
    }
    if (nx_head(out, 5, count) != 0) {
        return -1;
    }
    for (int f = 0; f < NX_FIELD_COUNT; f++) {
        if (nx_field_included(s, (enum nx_field)f) &&
            (nx_tstr(out, nx_field_names[f]) != 0 ||
             nx_field_value(out, s, (enum nx_field)f) != 0)) {
            return -1;
        }
    }
    if (s->extra_size > 0 && clst_buf_append(out, s->extra, s->extra_size) != CLST_OK) {
        return -1;
    }
    return 0;
}

/* The Sig_structure, encoded by libcbor (an implementation independent of ours). */
static inline int
nx_sig_structure(const uint8_t *prot, size_t prot_size, const uint8_t *payload, size_t payload_size,
                 struct clst_buf *out)
{
    static const uint8_t none[1] = {0};
    cbor_item_t *arr = cbor_new_definite_array(4);
    unsigned char *buf = NULL;
    size_t cap = 0;
    int rc = -1;
    if (arr == NULL || !cbor_array_push(arr, cbor_move(cbor_build_string("Signature1"))) ||
        !cbor_array_push(arr,
                         cbor_move(cbor_build_bytestring(prot_size ? prot : none, prot_size))) ||
        !cbor_array_push(arr, cbor_move(cbor_build_bytestring(none, 0))) ||
        !cbor_array_push(
            arr, cbor_move(cbor_build_bytestring(payload_size ? payload : none, payload_size)))) {
        goto out;
    }
    size_t n = cbor_serialize_alloc(arr, &buf, &cap);
    if (n == 0 || clst_buf_append(out, buf, n) != CLST_OK) {
        goto out;
    }
    rc = 0;
out:
    free(buf);
    if (arr != NULL) {
        cbor_decref(&arr);
    }
    return rc;
}

/* Signs (protected, payload) with `key` (ES384, raw r || s) into sig[96]. */
static inline int
nx_sign(EVP_PKEY *key, const uint8_t *prot, size_t prot_size, const uint8_t *payload,
        size_t payload_size, uint8_t sig[NITRO_SIGNATURE_SIZE])
{
    struct clst_buf tbs, s;
    int rc = -1;
    clst_buf_init(&tbs, 1u << 20);
    clst_buf_init(&s, 256);
    if (nx_sig_structure(prot, prot_size, payload, payload_size, &tbs) == 0 &&
        clst_ecdsa_sign(key, CLST_HASH_SHA384, CLST_SIG_RAW, tbs.data, tbs.size, &s) == CLST_OK &&
        s.size == NITRO_SIGNATURE_SIZE) {
        memcpy(sig, s.data, NITRO_SIGNATURE_SIZE);
        rc = 0;
    }
    clst_buf_cleanup(&tbs);
    clst_buf_cleanup(&s);
    return rc;
}

/* Builds the COSE_Sign1 around an already encoded payload. */
static inline int
nx_envelope(const struct nx_spec *s, const uint8_t *payload, size_t payload_size,
            struct clst_buf *out)
{
    uint8_t sig[NITRO_SIGNATURE_SIZE];
    const uint8_t *sig_bytes = s->sig_raw;
    size_t sig_size = s->sig_size;
    if (sig_bytes == NULL) {
        if (nx_sign(s->sign_key, s->protected_bytes, s->protected_size, payload, payload_size,
                    sig) != 0) {
            return -1;
        }
        sig_bytes = sig;
        sig_size = sizeof(sig);
    }
    if ((s->tagged && clst_buf_append_byte(out, 0xd2) != CLST_OK) ||
        clst_buf_append_byte(out, 0x84) != CLST_OK ||
        nx_bstr(out, s->protected_bytes, s->protected_size) != 0 ||
        clst_buf_append(out, s->unprotected, s->unprotected_size) != CLST_OK ||
        nx_bstr(out, payload, payload_size) != 0 || nx_bstr(out, sig_bytes, sig_size) != 0) {
        return -1;
    }
    return 0;
}

/* The whole document of `s`, appended to out (initialize out with a generous max). */
static inline int
nx_build(const struct nx_spec *s, struct clst_buf *out)
{
    struct clst_buf payload;
    clst_buf_init(&payload, 1u << 20);
    int rc = nx_payload(s, &payload) == 0 && nx_envelope(s, payload.data, payload.size, out) == 0
                 ? 0
                 : -1;
    clst_buf_cleanup(&payload);
    return rc;
}

/* Verifies `data` (parse + verify_with + framework-like debug and binding checks are NOT run:
 * this is the kind's own parse and verify against synthetic anchors). */
static inline enum clst_status
nx_verify_with(const uint8_t *data, size_t size, const struct clst_evidence_input *in,
               STACK_OF(X509) *anchors, struct clst_err *err)
{
    struct nitro_doc *doc = calloc(1, sizeof(*doc));
    enum clst_status rc = CLST_E_NOMEM;
    if (doc != NULL) {
        rc = evidence_nitro_parse(data, size, doc, err);
        if (rc == CLST_OK) {
            rc = evidence_nitro_verify_with(doc, data, size, in, anchors, err);
        }
    }
    free(doc);
    return rc;
}

/* An input for synthetic documents: roots = the PKI's root, at = NX_T. */
static inline struct clst_evidence_input
nx_input(const struct nx_pki *p, const uint8_t *data, size_t size)
{
    struct clst_evidence_input in;
    memset(&in, 0, sizeof(in));
    in.evidence = data;
    in.evidence_size = size;
    in.roots = p->anchors;
    in.at = NX_T;
    return in;
}

#endif
