/*
 * Fuzz harness for the AWS Nitro attestation document parser (src/evidence/nitro_doc.c) and the
 * verifier behind it (nitro_verify.c).
 *
 * 1. evidence_nitro_parse must never crash or read out of bounds, must answer only OK, MALFORMED
 *    or LIMIT (every rejection with a message), leave its output all zero on failure, and what it
 *    accepts must satisfy the format's invariants: the signed regions inside the input, the
 *    signature the input's last 96 bytes, every size and count within its cap, the mandatory
 *    fields present (module_id printable, timestamp > 0, at least one PCR, a certificate and a
 *    non-empty cabundle).
 * 2. The whole pipeline (clst_evidence_verify with the AWS root compiled in, allow_debug) runs at
 *    each stored real document's timestamp; it may accept only what AWS signed: the payload of an
 *    accepted input must be byte for byte the payload of one of the stored documents (SHA-256
 *    below). Only the unsigned parts around it (tag 18) may differ.
 *
 * Seeds in tests/fuzz/corpus/nitro_document/: the stored documents (tests/vectors/nitro/
 * blocky-nitrite/), one tagged, one truncated, one with a trailing byte, one with a null
 * unprotected header, one with r = 0, and an empty input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cloister/crypto.h>
#include <cloister/evidence.h>

#include "evidence/nitro_int.h"

/* SHA-256 of the payloads of nitro_attestation, nitro_attestation_debug and
 * nitro_attestation_2024-05, and each document's timestamp in seconds. */
static const struct {
    const char *payload_sha256;
    int64_t at;
} genuine[] = {
    {"94ebf1f5bc42fc7e63df1ab63ab9aea388f6b0966d8c7105eccabd1cde2e6b34", 1725719859},
    {"157134d0c4f6c821984c43dd41d46482ef5993ecf31b1b0bca73a6832838b087", 1725719886},
    {"7e35c97d2d4f61868643ee8af7f6b0d9b0255ccbcaa93963d6daf494c13e0745", 1715103786},
};

#define GENUINE_COUNT (sizeof(genuine) / sizeof(genuine[0]))

static STACK_OF(X509) *
aws_roots(void)
{
    static STACK_OF(X509) *roots;
    if (roots == NULL && clst_evidence_nitro_roots(&roots, NULL) != CLST_OK) {
        abort();
    }
    return roots;
}

static bool
is_genuine_payload(const uint8_t *payload, size_t size)
{
    uint8_t digest[CLST_SHA256_SIZE];
    char hex[2 * CLST_SHA256_SIZE + 1];
    if (clst_sha256(payload, size, digest) != CLST_OK ||
        clst_hex_to_str(digest, sizeof(digest), hex, sizeof(hex)) != CLST_OK) {
        abort();
    }
    for (size_t i = 0; i < GENUINE_COUNT; i++) {
        if (strcmp(hex, genuine[i].payload_sha256) == 0) {
            return true;
        }
    }
    return false;
}

static void
check_parse(const uint8_t *data, size_t size, struct nitro_doc *doc)
{
    struct clst_err err;
    memset(&err, 0, sizeof(err));
    enum clst_status rc = evidence_nitro_parse(data, size, doc, &err);
    if (rc != CLST_OK) {
        if ((rc != CLST_E_MALFORMED && rc != CLST_E_LIMIT) || err.msg[0] == '\0') {
            abort();
        }
        const uint8_t *p = (const uint8_t *)doc;
        for (size_t i = 0; i < sizeof(*doc); i++) {
            if (p[i] != 0) {
                abort(); /* output left dirty */
            }
        }
        return;
    }
    if (size < NITRO_SIGNATURE_SIZE || size > NITRO_EVIDENCE_MAX_SIZE || doc->protected_size < 1 ||
        doc->protected_size > NITRO_PROTECTED_MAX_SIZE || doc->protected_off > size ||
        doc->protected_size > size - doc->protected_off || doc->payload_size < 1 ||
        doc->payload_size > NITRO_PAYLOAD_MAX_SIZE || doc->payload_off > size ||
        doc->payload_size > size - doc->payload_off ||
        doc->payload_off < doc->protected_off + doc->protected_size ||
        memcmp(doc->signature, data + size - NITRO_SIGNATURE_SIZE, NITRO_SIGNATURE_SIZE) != 0 ||
        doc->module_id[0] == '\0' || doc->timestamp_ms == 0 ||
        doc->timestamp_ms > (uint64_t)INT64_MAX || doc->pcr_mask == 0 || doc->cert_size == 0 ||
        doc->cert_size > NITRO_CERT_MAX_SIZE || doc->cabundle_count == 0 ||
        doc->cabundle_count > NITRO_CABUNDLE_MAX ||
        (doc->public_key.present && doc->public_key.size == 0) ||
        doc->public_key.size > NITRO_USER_DATA_MAX || doc->user_data.size > NITRO_USER_DATA_MAX ||
        doc->nonce.size > NITRO_USER_DATA_MAX) {
        abort();
    }
    /* The protected header is exactly {1: -35}. */
    static const uint8_t es384[] = {0xa1, 0x01, 0x38, 0x22};
    if (doc->protected_size != sizeof(es384) ||
        memcmp(data + doc->protected_off, es384, sizeof(es384)) != 0) {
        abort();
    }
    for (size_t i = 0; doc->module_id[i] != '\0'; i++) {
        if (i >= NITRO_MODULE_ID_MAX || doc->module_id[i] < 0x21 || doc->module_id[i] > 0x7e) {
            abort();
        }
    }
    for (size_t i = 0; i < doc->cabundle_count; i++) {
        if (doc->cabundle_size[i] == 0 || doc->cabundle_size[i] > NITRO_CERT_MAX_SIZE) {
            abort();
        }
    }
}

static void
check_pipeline(const uint8_t *data, size_t size, const struct nitro_doc *doc, bool parsed)
{
    for (size_t t = 0; t < GENUINE_COUNT; t++) {
        struct clst_evidence_input in;
        struct clst_err err;
        json_t *claims = NULL;
        memset(&in, 0, sizeof(in));
        memset(&err, 0, sizeof(err));
        in.evidence = data;
        in.evidence_size = size;
        in.roots = aws_roots();
        in.at = genuine[t].at;
        in.allow_debug = true;
        enum clst_status rc = clst_evidence_verify(CLST_EVIDENCE_NITRO, &in, &claims, &err);
        if ((rc == CLST_OK) != (claims != NULL)) {
            abort();
        }
        if (rc == CLST_OK &&
            (!parsed || !is_genuine_payload(data + doc->payload_off, doc->payload_size))) {
            abort(); /* a document AWS did not sign was accepted */
        }
        if (rc != CLST_OK && rc != CLST_E_VERIFY && rc != CLST_E_MALFORMED && rc != CLST_E_LIMIT) {
            abort();
        }
        json_decref(claims);
        if (!parsed) {
            break; /* the parser refused it: the pipeline refuses it at every time */
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct nitro_doc *doc = calloc(1, sizeof(*doc));
    if (doc == NULL) {
        abort();
    }
    check_parse(data, size, doc);
    bool parsed = doc->cert_size != 0;
    check_pipeline(data, size, doc, parsed);
    free(doc);
    return 0;
}
