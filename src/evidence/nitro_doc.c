/*
 * The AWS Nitro Enclaves attestation document (docs/evidence-nitro.md): a COSE_Sign1 (RFC 9052)
 * whose payload is the CBOR map AWS defines in aws-nitro-enclaves-nsm-api
 * docs/attestation_process.md, and the Sig_structure its signature covers.
 *
 *   COSE_Sign1 = [ protected: bstr .cbor {1: -35}, unprotected: {}, payload: bstr .cbor map,
 *                  signature: bstr .size 96 ]     (AWS sends it untagged; tag 18 is accepted)
 *   payload    = { module_id: tstr, digest: "SHA384", timestamp: uint (ms), pcrs: {+ 0..31 =>
 *                  bstr .size 48}, certificate: bstr, cabundle: [+ bstr] (root first),
 *                  ? public_key: bstr / null, ? user_data: bstr / null, ? nonce: bstr / null }
 *
 * The parser reads it as a schema through the strict item reader (nitro_cbor.c): every size and
 * count is checked against its cap before anything is copied, every mandatory field must be
 * present once and not null, unknown fields are refused, and nothing may follow the COSE_Sign1,
 * the protected header's map or the payload's map. The signed regions (protected header and
 * payload bytes) are remembered as offsets into the evidence: the signature is checked over those
 * original bytes, never over a re-encoding.
 *
 * CT: nothing here is secret.
 */
#include <string.h>

#include "evidence/nitro_int.h"

/* ---- helpers -------------------------------------------------------------------------------- */

static enum clst_status
expect(const struct nitro_cbor_item *it, enum nitro_cbor_type type, const char *what,
       struct clst_err *err)
{
    if (it->type != type) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "nitro document: the %s at offset %zu is a %s, not a %s", what,
                            it->offset, nitro_cbor_type_name(it->type), nitro_cbor_type_name(type));
    }
    return CLST_OK;
}

/* A byte string of min..max bytes: CLST_E_LIMIT above max, CLST_E_MALFORMED below min. */
static enum clst_status
bytes_in(const struct nitro_cbor_item *it, size_t min, size_t max, const char *what,
         struct clst_err *err)
{
    enum clst_status rc = expect(it, NITRO_CBOR_BYTES, what, err);
    if (rc != CLST_OK) {
        return rc;
    }
    if (it->size > max) {
        return clst_err_set(err, CLST_E_LIMIT,
                            "nitro document: the %s at offset %zu is %zu bytes, more than the "
                            "limit of %zu",
                            what, it->offset, it->size, max);
    }
    if (it->size < min) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "nitro document: the %s at offset %zu is %zu bytes; at least %zu are "
                            "required",
                            what, it->offset, it->size, min);
    }
    return CLST_OK;
}

static enum clst_status
at_end(const struct nitro_cbor_reader *r, const char *what, struct clst_err *err)
{
    if (r->pos != r->size) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "nitro document: %zu unexpected bytes after the %s at offset %zu",
                            r->size - r->pos, what, r->pos);
    }
    return CLST_OK;
}

/* A reader over data[off, off + size) whose offsets stay those of the whole evidence. */
static void
sub_reader(struct nitro_cbor_reader *r, const uint8_t *data, size_t off, size_t size)
{
    nitro_cbor_reader_init(r, data, off + size);
    r->pos = off;
}

/* ---- the protected header ------------------------------------------------------------------- */

static enum clst_status
parse_protected(const uint8_t *data, size_t off, size_t size, struct clst_err *err)
{
    struct nitro_cbor_reader r;
    struct nitro_cbor_item it;
    enum clst_status rc;

    sub_reader(&r, data, off, size);
    if ((rc = nitro_cbor_next(&r, &it, "protected header", err)) != CLST_OK ||
        (rc = expect(&it, NITRO_CBOR_MAP, "protected header", err)) != CLST_OK) {
        return rc;
    }
    if (it.value != 1) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "nitro document: the protected header at offset %zu has %llu "
                            "parameters; an AWS document names exactly one, the algorithm "
                            "{1: -35} (ES384)",
                            it.offset, (unsigned long long)it.value);
    }
    if ((rc = nitro_cbor_next(&r, &it, "protected header label", err)) != CLST_OK) {
        return rc;
    }
    if (it.type != NITRO_CBOR_UINT || it.value != 1) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "nitro document: the protected header parameter at offset %zu is not "
                            "the algorithm (label 1)",
                            it.offset);
    }
    if ((rc = nitro_cbor_next(&r, &it, "algorithm", err)) != CLST_OK) {
        return rc;
    }
    /* ES384 is -35, encoded as negative integer 34. */
    if (it.type != NITRO_CBOR_NEGINT || it.value != (uint64_t)(-1 - NITRO_COSE_ALG_ES384)) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "nitro document: the algorithm at offset %zu is not ES384 (-35); "
                            "AWS Nitro documents are signed with ECDSA P-384 and SHA-384",
                            it.offset);
    }
    return at_end(&r, "protected header map", err);
}

/* ---- the payload ---------------------------------------------------------------------------- */

enum field {
    F_MODULE_ID = 0,
    F_DIGEST,
    F_TIMESTAMP,
    F_PCRS,
    F_CERTIFICATE,
    F_CABUNDLE,
    F_PUBLIC_KEY,
    F_USER_DATA,
    F_NONCE,
    F_COUNT,
};

static const char *const field_names[F_COUNT] = {
    "module_id", "digest",     "timestamp", "pcrs",  "certificate",
    "cabundle",  "public_key", "user_data", "nonce",
};

#define F_MANDATORY_COUNT 6 /* module_id .. cabundle; the other three are optional */

static int
field_lookup(const uint8_t *name, size_t size)
{
    for (int f = 0; f < F_COUNT; f++) {
        if (strlen(field_names[f]) == size && memcmp(field_names[f], name, size) == 0) {
            return f;
        }
    }
    return -1;
}

/* Copies up to 32 characters of an untrusted name for a message, '?' for anything unprintable. */
static void
printable(const uint8_t *p, size_t size, char out[36])
{
    size_t n = size < 32 ? size : 32;
    for (size_t i = 0; i < n; i++) {
        out[i] = p[i] >= 0x20 && p[i] < 0x7f && p[i] != '"' ? (char)p[i] : '?';
    }
    if (size > n) {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
}

static enum clst_status
parse_pcrs(struct nitro_cbor_reader *r, const struct nitro_cbor_item *map, struct nitro_doc *doc,
           struct clst_err *err)
{
    struct nitro_cbor_item it;
    enum clst_status rc;

    if (map->value == 0) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "nitro document: the pcrs map at offset %zu is empty; a document "
                            "carries at least one PCR",
                            map->offset);
    }
    if (map->value > NITRO_PCR_COUNT) {
        return clst_err_set(err, CLST_E_LIMIT,
                            "nitro document: the pcrs map at offset %zu has %llu entries, more "
                            "than the %d PCRs a Nitro enclave has",
                            map->offset, (unsigned long long)map->value, NITRO_PCR_COUNT);
    }
    for (uint64_t i = 0; i < map->value; i++) {
        if ((rc = nitro_cbor_next(r, &it, "PCR index", err)) != CLST_OK) {
            return rc;
        }
        if (it.type != NITRO_CBOR_UINT || it.value >= NITRO_PCR_COUNT) {
            return clst_err_set(err, CLST_E_MALFORMED,
                                "nitro document: the PCR index at offset %zu is not an integer "
                                "from 0 to 31",
                                it.offset);
        }
        unsigned idx = (unsigned)it.value;
        if ((doc->pcr_mask & (UINT32_C(1) << idx)) != 0) {
            return clst_err_set(err, CLST_E_MALFORMED,
                                "nitro document: PCR%u appears twice in the pcrs map (offset %zu)",
                                idx, it.offset);
        }
        if ((rc = nitro_cbor_next(r, &it, "PCR value", err)) != CLST_OK ||
            (rc = expect(&it, NITRO_CBOR_BYTES, "PCR value", err)) != CLST_OK) {
            return rc;
        }
        if (it.size != NITRO_PCR_SIZE) {
            return clst_err_set(err, CLST_E_MALFORMED,
                                "nitro document: PCR%u at offset %zu is %zu bytes; with digest "
                                "SHA384 every PCR is 48 bytes",
                                idx, it.offset, it.size);
        }
        memcpy(doc->pcr[idx], it.ptr, NITRO_PCR_SIZE);
        doc->pcr_mask |= UINT32_C(1) << idx;
    }
    return CLST_OK;
}

static enum clst_status
parse_cabundle(struct nitro_cbor_reader *r, const struct nitro_cbor_item *arr,
               struct nitro_doc *doc, struct clst_err *err)
{
    struct nitro_cbor_item it;
    enum clst_status rc;

    if (arr->value == 0) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "nitro document: the cabundle at offset %zu is empty; it must hold "
                            "the chain from the AWS root to the certificate's issuer",
                            arr->offset);
    }
    if (arr->value > NITRO_CABUNDLE_MAX) {
        return clst_err_set(err, CLST_E_LIMIT,
                            "nitro document: the cabundle at offset %zu has %llu certificates, "
                            "more than the limit of %d",
                            arr->offset, (unsigned long long)arr->value, NITRO_CABUNDLE_MAX);
    }
    for (size_t i = 0; i < (size_t)arr->value; i++) {
        if ((rc = nitro_cbor_next(r, &it, "cabundle certificate", err)) != CLST_OK ||
            (rc = bytes_in(&it, 1, NITRO_CERT_MAX_SIZE, "cabundle certificate", err)) != CLST_OK) {
            return rc;
        }
        memcpy(doc->cabundle[i], it.ptr, it.size);
        doc->cabundle_size[i] = it.size;
    }
    doc->cabundle_count = (size_t)arr->value;
    return CLST_OK;
}

static enum clst_status
parse_optional(const struct nitro_cbor_item *it, size_t min, const char *what,
               struct nitro_opt_bytes *out, struct clst_err *err)
{
    if (it->type == NITRO_CBOR_NULL) {
        out->present = false; /* the NSM writes an absent optional field as null */
        return CLST_OK;
    }
    enum clst_status rc = bytes_in(it, min, NITRO_USER_DATA_MAX, what, err);
    if (rc != CLST_OK) {
        return rc;
    }
    out->present = true;
    out->size = it->size;
    if (it->size > 0) {
        memcpy(out->bytes, it->ptr, it->size);
    }
    return CLST_OK;
}

static enum clst_status
parse_field(struct nitro_cbor_reader *r, int f, struct nitro_doc *doc, struct clst_err *err)
{
    struct nitro_cbor_item it;
    enum clst_status rc = nitro_cbor_next(r, &it, field_names[f], err);
    if (rc != CLST_OK) {
        return rc;
    }
    if (f < F_MANDATORY_COUNT && it.type == NITRO_CBOR_NULL) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "nitro document: the mandatory field %s at offset %zu is null",
                            field_names[f], it.offset);
    }
    switch ((enum field)f) {
    case F_MODULE_ID:
        if ((rc = expect(&it, NITRO_CBOR_TEXT, "module_id", err)) != CLST_OK) {
            return rc;
        }
        if (it.size > NITRO_MODULE_ID_MAX) {
            return clst_err_set(err, CLST_E_LIMIT,
                                "nitro document: module_id at offset %zu is %zu bytes, more than "
                                "the limit of %d",
                                it.offset, it.size, NITRO_MODULE_ID_MAX);
        }
        if (it.size == 0) {
            return clst_err_set(err, CLST_E_MALFORMED,
                                "nitro document: module_id at offset %zu is empty", it.offset);
        }
        for (size_t i = 0; i < it.size; i++) {
            if (it.ptr[i] < 0x21 || it.ptr[i] > 0x7e) {
                return clst_err_set(err, CLST_E_MALFORMED,
                                    "nitro document: module_id at offset %zu holds byte 0x%02x; "
                                    "module ids are printable ASCII",
                                    it.offset, it.ptr[i]);
            }
        }
        memcpy(doc->module_id, it.ptr, it.size);
        doc->module_id[it.size] = '\0';
        return CLST_OK;
    case F_DIGEST:
        if ((rc = expect(&it, NITRO_CBOR_TEXT, "digest", err)) != CLST_OK) {
            return rc;
        }
        if (it.size != 6 || memcmp(it.ptr, "SHA384", 6) != 0) {
            char shown[36];
            printable(it.ptr, it.size, shown);
            return clst_err_set(err, CLST_E_MALFORMED,
                                "nitro document: digest \"%s\" at offset %zu is not \"SHA384\", "
                                "the only digest AWS defines",
                                shown, it.offset);
        }
        return CLST_OK;
    case F_TIMESTAMP:
        if ((rc = expect(&it, NITRO_CBOR_UINT, "timestamp", err)) != CLST_OK) {
            return rc;
        }
        if (it.value == 0 || it.value > (uint64_t)INT64_MAX) {
            return clst_err_set(err, CLST_E_MALFORMED,
                                "nitro document: timestamp %llu at offset %zu is not a time in "
                                "milliseconds after 1970",
                                (unsigned long long)it.value, it.offset);
        }
        doc->timestamp_ms = it.value;
        return CLST_OK;
    case F_PCRS:
        if ((rc = expect(&it, NITRO_CBOR_MAP, "pcrs", err)) != CLST_OK) {
            return rc;
        }
        return parse_pcrs(r, &it, doc, err);
    case F_CERTIFICATE:
        if ((rc = bytes_in(&it, 1, NITRO_CERT_MAX_SIZE, "certificate", err)) != CLST_OK) {
            return rc;
        }
        memcpy(doc->cert, it.ptr, it.size);
        doc->cert_size = it.size;
        return CLST_OK;
    case F_CABUNDLE:
        if ((rc = expect(&it, NITRO_CBOR_ARRAY, "cabundle", err)) != CLST_OK) {
            return rc;
        }
        return parse_cabundle(r, &it, doc, err);
    case F_PUBLIC_KEY:
        return parse_optional(&it, 1, "public_key", &doc->public_key, err);
    case F_USER_DATA:
        return parse_optional(&it, 0, "user_data", &doc->user_data, err);
    case F_NONCE:
        return parse_optional(&it, 0, "nonce", &doc->nonce, err);
    case F_COUNT:
        break;
    }
    return clst_err_set(err, CLST_E_INTERNAL, "nitro: unknown field index");
}

static enum clst_status
parse_payload(const uint8_t *data, size_t off, size_t size, struct nitro_doc *doc,
              struct clst_err *err)
{
    struct nitro_cbor_reader r;
    struct nitro_cbor_item it;
    enum clst_status rc;
    unsigned seen = 0;

    sub_reader(&r, data, off, size);
    if ((rc = nitro_cbor_next(&r, &it, "payload map", err)) != CLST_OK ||
        (rc = expect(&it, NITRO_CBOR_MAP, "payload", err)) != CLST_OK) {
        return rc;
    }
    if (it.value > F_COUNT) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "nitro document: the payload map at offset %zu has %llu fields; an "
                            "attestation document defines %d",
                            it.offset, (unsigned long long)it.value, F_COUNT);
    }
    uint64_t count = it.value;
    for (uint64_t i = 0; i < count; i++) {
        if ((rc = nitro_cbor_next(&r, &it, "payload key", err)) != CLST_OK ||
            (rc = expect(&it, NITRO_CBOR_TEXT, "payload key", err)) != CLST_OK) {
            return rc;
        }
        int f = field_lookup(it.ptr, it.size);
        if (f < 0) {
            char shown[36];
            printable(it.ptr, it.size, shown);
            return clst_err_set(err, CLST_E_MALFORMED,
                                "nitro document: unknown payload field \"%s\" at offset %zu", shown,
                                it.offset);
        }
        if ((seen & (1u << f)) != 0) {
            return clst_err_set(err, CLST_E_MALFORMED,
                                "nitro document: payload field %s appears twice (offset %zu)",
                                field_names[f], it.offset);
        }
        seen |= 1u << f;
        if ((rc = parse_field(&r, f, doc, err)) != CLST_OK) {
            return rc;
        }
    }
    if ((rc = at_end(&r, "payload map", err)) != CLST_OK) {
        return rc;
    }
    for (int f = 0; f < F_MANDATORY_COUNT; f++) {
        if ((seen & (1u << f)) == 0) {
            return clst_err_set(err, CLST_E_MALFORMED,
                                "nitro document: the payload has no %s field, which is mandatory",
                                field_names[f]);
        }
    }
    return CLST_OK;
}

/* ---- the COSE_Sign1 envelope ---------------------------------------------------------------- */

static enum clst_status
parse_cose(const uint8_t *data, size_t size, struct nitro_doc *doc, struct clst_err *err)
{
    struct nitro_cbor_reader r;
    struct nitro_cbor_item it;
    enum clst_status rc;

    nitro_cbor_reader_init(&r, data, size);
    if ((rc = nitro_cbor_next(&r, &it, "COSE_Sign1", err)) != CLST_OK) {
        return rc;
    }
    if (it.type == NITRO_CBOR_TAG) {
        if (it.value != NITRO_COSE_TAG_SIGN1) {
            return clst_err_set(err, CLST_E_MALFORMED,
                                "not a nitro document: tag %llu at offset 0 is not COSE_Sign1 "
                                "(18)",
                                (unsigned long long)it.value);
        }
        doc->tagged = true;
        if ((rc = nitro_cbor_next(&r, &it, "COSE_Sign1", err)) != CLST_OK) {
            return rc;
        }
    }
    if (it.type != NITRO_CBOR_ARRAY || it.value != 4) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "not a nitro document: a COSE_Sign1 is an array of 4 items, but "
                            "offset %zu holds a %s",
                            it.offset, nitro_cbor_type_name(it.type));
    }

    if ((rc = nitro_cbor_next(&r, &it, "protected header", err)) != CLST_OK ||
        (rc = bytes_in(&it, 1, NITRO_PROTECTED_MAX_SIZE, "protected header", err)) != CLST_OK) {
        return rc;
    }
    doc->protected_off = (size_t)(it.ptr - data);
    doc->protected_size = it.size;

    if ((rc = nitro_cbor_next(&r, &it, "unprotected header", err)) != CLST_OK ||
        (rc = expect(&it, NITRO_CBOR_MAP, "unprotected header", err)) != CLST_OK) {
        return rc;
    }
    if (it.value != 0) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "nitro document: the unprotected header at offset %zu has %llu "
                            "parameters; AWS documents leave it empty",
                            it.offset, (unsigned long long)it.value);
    }

    if ((rc = nitro_cbor_next(&r, &it, "payload", err)) != CLST_OK ||
        (rc = bytes_in(&it, 1, NITRO_PAYLOAD_MAX_SIZE, "payload", err)) != CLST_OK) {
        return rc;
    }
    doc->payload_off = (size_t)(it.ptr - data);
    doc->payload_size = it.size;

    if ((rc = nitro_cbor_next(&r, &it, "signature", err)) != CLST_OK ||
        (rc = expect(&it, NITRO_CBOR_BYTES, "signature", err)) != CLST_OK) {
        return rc;
    }
    if (it.size != NITRO_SIGNATURE_SIZE) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "nitro document: the signature at offset %zu is %zu bytes; an ES384 "
                            "signature is 96 (r and s, 48 bytes each)",
                            it.offset, it.size);
    }
    memcpy(doc->signature, it.ptr, NITRO_SIGNATURE_SIZE);
    if ((rc = at_end(&r, "COSE_Sign1", err)) != CLST_OK) {
        return rc;
    }

    /* The inner encodings, each exactly its byte string. */
    if ((rc = parse_protected(data, doc->protected_off, doc->protected_size, err)) != CLST_OK) {
        return rc;
    }
    return parse_payload(data, doc->payload_off, doc->payload_size, doc, err);
}

enum clst_status
evidence_nitro_parse(const uint8_t *data, size_t size, struct nitro_doc *out, struct clst_err *err)
{
    if (out == NULL || (data == NULL && size != 0)) {
        return clst_err_set(err, CLST_E_INVAL, "nitro document: no output or no input given");
    }
    memset(out, 0, sizeof(*out));
    if (size > NITRO_EVIDENCE_MAX_SIZE) {
        return clst_err_set(err, CLST_E_LIMIT,
                            "nitro document is %zu bytes, more than the limit of %d bytes", size,
                            NITRO_EVIDENCE_MAX_SIZE);
    }
    if (size == 0) {
        return clst_err_set(err, CLST_E_MALFORMED, "nitro document is empty");
    }
    enum clst_status rc = parse_cose(data, size, out, err);
    if (rc != CLST_OK) {
        memset(out, 0, sizeof(*out));
    }
    return rc;
}

/* ---- the Sig_structure ---------------------------------------------------------------------- */

enum clst_status
evidence_nitro_tbs_digest(const uint8_t *protected_bytes, size_t protected_size,
                          const uint8_t *payload, size_t payload_size,
                          uint8_t out[CLST_SHA384_SIZE])
{
    /* ["Signature1", protected, h'' (no external AAD), payload], deterministic heads. */
    static const uint8_t prefix[] = {0x84, 0x6a, 'S', 'i', 'g', 'n', 'a', 't', 'u', 'r', 'e', '1'};
    static const uint8_t empty_bstr[] = {0x40};
    struct clst_hash_ctx ctx;
    uint8_t head[9];
    size_t n;
    enum clst_status rc;

    if ((protected_bytes == NULL && protected_size != 0) ||
        (payload == NULL && payload_size != 0)) {
        return CLST_E_INVAL;
    }
    rc = clst_hash_init(&ctx, CLST_HASH_SHA384);
    if (rc != CLST_OK) {
        return rc;
    }
    rc = clst_hash_update(&ctx, prefix, sizeof(prefix));
    n = nitro_cbor_head(2, protected_size, head);
    if (rc == CLST_OK) {
        rc = clst_hash_update(&ctx, head, n);
    }
    if (rc == CLST_OK && protected_size > 0) {
        rc = clst_hash_update(&ctx, protected_bytes, protected_size);
    }
    if (rc == CLST_OK) {
        rc = clst_hash_update(&ctx, empty_bstr, sizeof(empty_bstr));
    }
    n = nitro_cbor_head(2, payload_size, head);
    if (rc == CLST_OK) {
        rc = clst_hash_update(&ctx, head, n);
    }
    if (rc == CLST_OK && payload_size > 0) {
        rc = clst_hash_update(&ctx, payload, payload_size);
    }
    if (rc == CLST_OK) {
        rc = clst_hash_final(&ctx, out);
    }
    clst_hash_cleanup(&ctx);
    return rc;
}
