/*
 * AWS Nitro Enclaves verification (docs/evidence-nitro.md): options, the certificate chain to the
 * pinned AWS root, the COSE signature, the document checks, the claims, and the kind's
 * evidence_ops.
 *
 * Trust: every byte of the document is untrusted, its cabundle included. The only anchor is the
 * AWS Nitro Enclaves Root-G1 compiled into aws_roots.c (tests pass their own anchors to
 * evidence_nitro_verify_with); the caller's `roots` can only name it, never add another.
 *
 * Order of checks: the caller's roots are pinned ones; cabundle[0] is byte for byte one of them;
 * the certificate and cabundle[1..] are each exactly one DER certificate; the signing certificate
 * holds a P-384 key, is not a CA and (when it has a key usage) may sign; the document's timestamp
 * lies inside the signing certificate's validity; r and s are in 1..n-1; the ES384 signature over
 * the Sig_structure of the original protected-header and payload bytes verifies; the chain
 * certificate -> cabundle[n-1] -> ... -> cabundle[1] -> root verifies at the caller's time (with
 * the caller's CRLs when given) and uses every cabundle certificate in the documented order.
 * Then the document: PCR0 present, the nonce the caller expects (option "nonce"), and user_data
 * present when the caller asks for a binding. Debug mode (PCR0 all zero) and the report-data
 * binding (user_data) are the framework's checks (evidence.c).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/x509v3.h>

#include "evidence/nitro_int.h"

/* ---- options -------------------------------------------------------------------------------- */

enum clst_status
evidence_nitro_options_parse(const json_t *options, struct nitro_options *out, struct clst_err *err)
{
    const char *key;
    json_t *v;

    if (out == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "nitro: no output for the options");
    }
    memset(out, 0, sizeof(*out));
    if (options == NULL) {
        return CLST_OK;
    }
    if (!json_is_object(options)) {
        return clst_err_set(err, CLST_E_INVAL, "nitro options must be a JSON object");
    }
    json_object_foreach((json_t *)options, key, v)
    {
        if (strcmp(key, "nonce") != 0) {
            memset(out, 0, sizeof(*out));
            return clst_err_set(err, CLST_E_INVAL, "unknown nitro option '%.40s' (known: nonce)",
                                key);
        }
        const char *hex = json_string_value(v);
        size_t len = hex != NULL ? strlen(hex) : 0;
        if (hex == NULL || len % 2 != 0 || len / 2 > NITRO_USER_DATA_MAX ||
            clst_hex_decode_fixed(hex, len, out->nonce, len / 2) != CLST_OK) {
            memset(out, 0, sizeof(*out));
            return clst_err_set(err, CLST_E_INVAL,
                                "nitro option nonce must be a string of hex digits for 0 to %d "
                                "bytes",
                                NITRO_USER_DATA_MAX);
        }
        out->has_nonce = true;
        out->nonce_size = len / 2;
    }
    return CLST_OK;
}

/* ---- helpers -------------------------------------------------------------------------------- */

/* Exactly one DER certificate of `size` bytes, nothing after it. */
static X509 *
cert_exact(const uint8_t *der, size_t size)
{
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)size);
    if (x != NULL && p != der + size) {
        X509_free(x);
        x = NULL;
    }
    return x;
}

/* True when `der` is byte for byte the encoding of `cert`. */
static bool
same_der(X509 *cert, const uint8_t *der, size_t size)
{
    unsigned char *enc = NULL;
    int n = i2d_X509(cert, &enc);
    bool same = n > 0 && (size_t)n == size && memcmp(enc, der, size) == 0;
    OPENSSL_free(enc);
    return same;
}

/* The order n of P-384, big-endian. */
static const uint8_t p384_order[NITRO_P384_SIZE] = {
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xC7, 0x63, 0x4D, 0x81, 0xF4, 0x37, 0x2D, 0xDF,
    0x58, 0x1A, 0x0D, 0xB2, 0x48, 0xB0, 0xA7, 0x7A, 0xEC, 0xEC, 0x19, 0x6A, 0xCC, 0xC5, 0x29, 0x73,
};

/* 0 < v < n for a 48-byte big-endian value (public values: no constant-time requirement). */
static bool
scalar_in_range(const uint8_t v[NITRO_P384_SIZE])
{
    bool nonzero = false;
    for (size_t i = 0; i < NITRO_P384_SIZE; i++) {
        nonzero = nonzero || v[i] != 0;
    }
    return nonzero && memcmp(v, p384_order, NITRO_P384_SIZE) < 0;
}

/* The signing certificate's own constraints, before anything is verified with its key. */
static enum clst_status
check_leaf(X509 *leaf, struct clst_err *err)
{
    EVP_PKEY *key = X509_get0_pubkey(leaf);
    if (key == NULL || clst_pkey_kind(key) != CLST_KEY_EC_P384) {
        return clst_err_set(err, CLST_E_VERIFY,
                            "nitro evidence: the signing certificate's key is not EC P-384; AWS "
                            "Nitro documents are signed with ES384");
    }
    if (X509_check_ca(leaf) != 0) {
        return clst_err_set(err, CLST_E_VERIFY,
                            "nitro evidence: the signing certificate is a CA certificate; "
                            "documents are signed by an end-entity (enclave) certificate");
    }
    if ((X509_get_extension_flags(leaf) & EXFLAG_KUSAGE) != 0 &&
        (X509_get_key_usage(leaf) & KU_DIGITAL_SIGNATURE) == 0) {
        return clst_err_set(err, CLST_E_VERIFY,
                            "nitro evidence: the signing certificate's key usage does not allow "
                            "digital signatures");
    }
    return CLST_OK;
}

/* The document's timestamp (ms) lies inside the signing certificate's validity (s). */
static enum clst_status
check_timestamp(const struct nitro_doc *doc, X509 *leaf, struct clst_err *err)
{
    time_t t = (time_t)(doc->timestamp_ms / 1000);
    if ((uint64_t)t != doc->timestamp_ms / 1000) {
        return clst_err_set(err, CLST_E_VERIFY, "nitro evidence: the timestamp is out of range");
    }
    int nb = ASN1_TIME_cmp_time_t(X509_get0_notBefore(leaf), t);
    int na = ASN1_TIME_cmp_time_t(X509_get0_notAfter(leaf), t);
    /* Inclusive notBefore, exclusive notAfter: the same bounds OpenSSL applies to the chain. */
    if (nb == -2 || na == -2 || nb > 0 || na <= 0) {
        return clst_err_set(err, CLST_E_VERIFY,
                            "nitro evidence: the document's timestamp (%llu ms) is outside the "
                            "validity of the certificate that signed it; the document is not what "
                            "the Nitro hypervisor issued",
                            (unsigned long long)doc->timestamp_ms);
    }
    return CLST_OK;
}

static enum clst_status
check_signature(const struct nitro_doc *doc, const uint8_t *data, X509 *leaf, struct clst_err *err)
{
    uint8_t digest[CLST_SHA384_SIZE];
    enum clst_status rc;

    if (!scalar_in_range(doc->signature) || !scalar_in_range(doc->signature + NITRO_P384_SIZE)) {
        return clst_err_set(err, CLST_E_VERIFY,
                            "nitro evidence: the signature's r or s is zero or not below the "
                            "P-384 group order; it is not a valid ECDSA signature");
    }
    rc = evidence_nitro_tbs_digest(data + doc->protected_off, doc->protected_size,
                                   data + doc->payload_off, doc->payload_size, digest);
    if (rc != CLST_OK) {
        return clst_err_set(err, rc, "nitro evidence: cannot hash the signed structure");
    }
    rc = clst_ecdsa_verify_digest(X509_get0_pubkey(leaf), CLST_SIG_RAW, digest, sizeof(digest),
                                  doc->signature, sizeof(doc->signature));
    if (rc != CLST_OK) {
        if (rc != CLST_E_NOMEM && rc != CLST_E_CRYPTO) {
            rc = CLST_E_VERIFY;
        }
        return clst_err_set(err, rc,
                            "nitro evidence: the COSE signature does not verify with the signing "
                            "certificate's key (the document was altered or signed by another "
                            "key)");
    }
    return CLST_OK;
}

/* The document's own content, once it is known to be authentic. */
static enum clst_status
check_content(const struct nitro_doc *doc, const struct clst_evidence_input *in,
              const struct nitro_options *opts, struct clst_err *err)
{
    if ((doc->pcr_mask & 1u) == 0) {
        return clst_err_set(err, CLST_E_VERIFY,
                            "nitro evidence: the document has no PCR0 (the enclave image "
                            "measurement), so it identifies no enclave");
    }
    if (opts->has_nonce) {
        if (!doc->nonce.present) {
            return clst_err_set(err, CLST_E_VERIFY,
                                "nitro evidence: the document carries no nonce, but a nonce was "
                                "expected (it was not made for this challenge)");
        }
        if (doc->nonce.size != opts->nonce_size ||
            CRYPTO_memcmp(doc->nonce.bytes, opts->nonce, opts->nonce_size) != 0) {
            return clst_err_set(err, CLST_E_VERIFY,
                                "nitro evidence: the document's nonce is not the expected one "
                                "(it was made for another challenge, or replayed)");
        }
    }
    if ((in->report_data != NULL || in->runtime_data != NULL) && !doc->user_data.present) {
        return clst_err_set(err, CLST_E_VERIFY,
                            "nitro evidence: the document carries no user_data, so no report data "
                            "or runtime data can be bound to it (user_data is the report data of "
                            "a Nitro document)");
    }
    return CLST_OK;
}

/* ---- verify --------------------------------------------------------------------------------- */

enum clst_status
evidence_nitro_verify_with(const struct nitro_doc *doc, const uint8_t *data, size_t size,
                           const struct clst_evidence_input *in, STACK_OF(X509) *anchors,
                           struct clst_err *err)
{
    enum clst_status rc = CLST_E_INTERNAL;
    STACK_OF(X509) *allowed = NULL;
    STACK_OF(X509) *untrusted = NULL;
    STACK_OF(X509) *chain = NULL;
    X509 *leaf = NULL;
    struct nitro_options opts;

    memset(&opts, 0, sizeof(opts));
    if (doc == NULL || data == NULL || in == NULL || anchors == NULL || sk_X509_num(anchors) < 1) {
        return clst_err_set(err, CLST_E_INVAL, "nitro: inconsistent verification input");
    }
    /* The parser guarantees these; the signature is checked over these original bytes. */
    if (doc->protected_off > size || doc->protected_size > size - doc->protected_off ||
        doc->payload_off > size || doc->payload_size > size - doc->payload_off ||
        doc->cabundle_count < 1 || doc->cabundle_count > NITRO_CABUNDLE_MAX ||
        doc->cert_size == 0) {
        return clst_err_set(err, CLST_E_INTERNAL, "nitro: parsed document is inconsistent");
    }
    if (in->endorsements_size != 0) {
        return clst_err_set(err, CLST_E_INVAL,
                            "nitro evidence takes no endorsements (its certificates travel inside "
                            "the document)");
    }
    rc = evidence_nitro_options_parse(in->options, &opts, err);
    if (rc != CLST_OK) {
        return rc;
    }

    /* 1. The caller's roots can only name the pinned ones. */
    allowed = sk_X509_new_null();
    untrusted = sk_X509_new_null();
    if (allowed == NULL || untrusted == NULL) {
        rc = clst_err_set(err, CLST_E_NOMEM, "out of memory");
        goto out;
    }
    for (int i = 0; in->roots != NULL && i < sk_X509_num(in->roots); i++) {
        X509 *r = sk_X509_value(in->roots, i);
        X509 *found = NULL;
        for (int k = 0; k < sk_X509_num(anchors) && found == NULL; k++) {
            if (X509_cmp(r, sk_X509_value(anchors, k)) == 0) {
                found = sk_X509_value(anchors, k);
            }
        }
        if (found == NULL) {
            rc = clst_err_set(err, CLST_E_INVAL,
                              "nitro evidence: trusted root %d is not the AWS Nitro Enclaves root "
                              "compiled into this build (AWS_NitroEnclaves_Root-G1); Nitro "
                              "documents chain only to it",
                              i + 1);
            goto out;
        }
        if (sk_X509_push(allowed, found) <= 0) { /* borrowed: freed with sk_X509_free */
            rc = clst_err_set(err, CLST_E_NOMEM, "out of memory");
            goto out;
        }
    }
    if (sk_X509_num(allowed) < 1) {
        rc = clst_err_set(err, CLST_E_INVAL, "nitro evidence: no trusted root given");
        goto out;
    }

    /* 2. The bundle starts at a trusted root (root first, as AWS documents it). */
    bool root_first = false;
    for (int k = 0; k < sk_X509_num(allowed) && !root_first; k++) {
        root_first = same_der(sk_X509_value(allowed, k), doc->cabundle[0], doc->cabundle_size[0]);
    }
    if (!root_first) {
        rc = clst_err_set(err, CLST_E_VERIFY,
                          "nitro evidence: cabundle[0] is not the trusted AWS Nitro Enclaves root; "
                          "the document was not issued under it");
        goto out;
    }

    /* 3. Every certificate is exactly one DER certificate. */
    leaf = cert_exact(doc->cert, doc->cert_size);
    if (leaf == NULL) {
        rc = clst_err_set(err, CLST_E_MALFORMED,
                          "nitro evidence: the certificate field is not one DER X.509 "
                          "certificate of %zu bytes",
                          doc->cert_size);
        goto out;
    }
    for (size_t i = 1; i < doc->cabundle_count; i++) {
        X509 *x = cert_exact(doc->cabundle[i], doc->cabundle_size[i]);
        if (x == NULL) {
            rc = clst_err_set(err, CLST_E_MALFORMED,
                              "nitro evidence: cabundle[%zu] is not one DER X.509 certificate of "
                              "%zu bytes",
                              i, doc->cabundle_size[i]);
            goto out;
        }
        if (sk_X509_push(untrusted, x) <= 0) {
            X509_free(x);
            rc = clst_err_set(err, CLST_E_NOMEM, "out of memory");
            goto out;
        }
    }

    /* 4. The signing certificate may sign documents. */
    rc = check_leaf(leaf, err);
    if (rc != CLST_OK) {
        goto out;
    }

    /* 5. The timestamp, then the signature over the original bytes (before the chain: one
     * verification instead of one per certificate for a document that was altered). */
    rc = check_timestamp(doc, leaf, err);
    if (rc != CLST_OK) {
        goto out;
    }
    rc = check_signature(doc, data, leaf, err);
    if (rc != CLST_OK) {
        goto out;
    }

    /* 6. The chain, at the caller's time. */
    rc = clst_x509_verify_chain(leaf, untrusted, allowed, in->crls, in->at, &chain, err);
    if (rc != CLST_OK) {
        clst_err_prefix(err, "nitro evidence: untrusted signing certificate");
        goto out;
    }
    /* The verified path is the bundle, in order: certificate, cabundle[n-1], ..., cabundle[1],
     * root. A bundle with extra, missing or reordered certificates is not what AWS issues. */
    bool in_order = sk_X509_num(chain) == (int)doc->cabundle_count + 1;
    for (int i = 1; in_order && i < (int)doc->cabundle_count; i++) {
        in_order = X509_cmp(sk_X509_value(chain, i),
                            sk_X509_value(untrusted, (int)doc->cabundle_count - 1 - i)) == 0;
    }
    if (!in_order) {
        rc = clst_err_set(err, CLST_E_VERIFY,
                          "nitro evidence: the cabundle is not the signing certificate's chain in "
                          "order (root first, its issuer last, nothing else)");
        goto out;
    }

    /* 7. The content. */
    rc = check_content(doc, in, &opts, err);
    if (rc != CLST_OK) {
        goto out;
    }
    rc = CLST_OK;
out:
    OPENSSL_cleanse(&opts, sizeof(opts));
    sk_X509_pop_free(chain, X509_free);
    sk_X509_pop_free(untrusted, X509_free);
    sk_X509_free(allowed);
    X509_free(leaf);
    return rc;
}

bool
evidence_nitro_is_debug(const struct nitro_doc *doc)
{
    if ((doc->pcr_mask & 1u) == 0) {
        return true; /* fail closed; verify refuses such a document anyway */
    }
    for (size_t i = 0; i < NITRO_PCR_SIZE; i++) {
        if (doc->pcr[0][i] != 0) {
            return false;
        }
    }
    return true;
}

/* ---- the evidence_ops ----------------------------------------------------------------------- */

static enum clst_status
nitro_parse(const uint8_t *data, size_t size, void *parsed, struct clst_err *err)
{
    return evidence_nitro_parse(data, size, parsed, err);
}

static enum clst_status
nitro_verify(const void *parsed, const uint8_t *data, size_t size,
             const struct clst_evidence_input *in, struct clst_err *err)
{
    X509 *root = NULL;
    STACK_OF(X509) *anchors = NULL;
    enum clst_status rc = evidence_nitro_builtin_root(&root, err);
    if (rc != CLST_OK) {
        return rc;
    }
    anchors = sk_X509_new_null();
    if (anchors == NULL || sk_X509_push(anchors, root) <= 0) {
        sk_X509_free(anchors);
        return clst_err_set(err, CLST_E_NOMEM, "out of memory");
    }
    rc = evidence_nitro_verify_with(parsed, data, size, in, anchors, err);
    sk_X509_free(anchors); /* the root is borrowed */
    return rc;
}

static bool
nitro_is_debuggable(const void *parsed)
{
    return evidence_nitro_is_debug(parsed);
}

/* The report data of a Nitro document is its user_data (empty when absent; verify refuses a
 * binding request in that case, so absent and present-but-empty are never confused). */
static const uint8_t *
nitro_report_data(const void *parsed, size_t *out_size)
{
    const struct nitro_doc *doc = parsed;
    *out_size = doc->user_data.present ? doc->user_data.size : 0;
    return doc->user_data.bytes;
}

/* ---- claims --------------------------------------------------------------------------------- */

static enum clst_status
set_new(json_t *claims, const char *name, json_t *value)
{
    return json_object_set_new(claims, name, value) == 0 ? CLST_OK : CLST_E_NOMEM;
}

static enum clst_status
set_hex(json_t *claims, const char *name, const uint8_t *bytes, size_t size)
{
    char hex[2 * NITRO_USER_DATA_MAX + 1];
    if (clst_hex_to_str(bytes, size, hex, sizeof(hex)) != CLST_OK) {
        return CLST_E_INTERNAL;
    }
    return set_new(claims, name, json_string(hex));
}

static enum clst_status
set_opt(json_t *claims, const char *name, const struct nitro_opt_bytes *b)
{
    return b->present ? set_hex(claims, name, b->bytes, b->size) : CLST_OK;
}

static enum clst_status
nitro_claims(const void *parsed, json_t *claims, struct clst_err *err)
{
    const struct nitro_doc *doc = parsed;
    enum clst_status rc;

    rc = set_new(claims, CLST_CLAIM_ATTESTATION_TYPE, json_string(NITRO_ATTESTATION_TYPE));
    if (rc == CLST_OK) {
        rc = set_new(claims, NITRO_CLAIM_MODULE_ID, json_string(doc->module_id));
    }
    if (rc == CLST_OK) {
        rc = set_new(claims, NITRO_CLAIM_TIMESTAMP, json_integer((json_int_t)doc->timestamp_ms));
    }
    if (rc == CLST_OK) {
        rc = set_new(claims, NITRO_CLAIM_DIGEST, json_string("SHA384"));
    }
    for (unsigned i = 0; rc == CLST_OK && i < NITRO_PCR_COUNT; i++) {
        char name[32];
        if ((doc->pcr_mask & (UINT32_C(1) << i)) == 0) {
            continue;
        }
        int n = snprintf(name, sizeof(name), "%s%u", NITRO_CLAIM_PCR_PREFIX, i);
        rc = n > 0 && (size_t)n < sizeof(name) ? set_hex(claims, name, doc->pcr[i], NITRO_PCR_SIZE)
                                               : CLST_E_INTERNAL;
    }
    if (rc == CLST_OK && (doc->pcr_mask & 1u) != 0) {
        rc = set_hex(claims, NITRO_CLAIM_IMAGE_SHA384, doc->pcr[0], NITRO_PCR_SIZE);
    }
    if (rc == CLST_OK) {
        rc = set_new(claims, NITRO_CLAIM_IS_DEBUGGABLE, json_boolean(evidence_nitro_is_debug(doc)));
    }
    if (rc == CLST_OK) {
        rc = set_opt(claims, NITRO_CLAIM_PUBLIC_KEY, &doc->public_key);
    }
    if (rc == CLST_OK) {
        rc = set_opt(claims, NITRO_CLAIM_USER_DATA, &doc->user_data);
    }
    if (rc == CLST_OK) {
        rc = set_opt(claims, NITRO_CLAIM_NONCE, &doc->nonce);
    }
    if (rc != CLST_OK) {
        return clst_err_set(err, rc, "nitro evidence: cannot build the claim set");
    }
    return CLST_OK;
}

const struct evidence_ops evidence_nitro_ops = {
    .kind = CLST_EVIDENCE_NITRO,
    .name = "nitro",
    .max_size = NITRO_EVIDENCE_MAX_SIZE,
    .parsed_size = sizeof(struct nitro_doc),
    .parse = nitro_parse,
    .verify = nitro_verify,
    .is_debuggable = nitro_is_debuggable,
    .report_data = nitro_report_data,
    .claims = nitro_claims,
};
