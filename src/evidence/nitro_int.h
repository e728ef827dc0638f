/*
 * Inside the evidence component: the AWS Nitro Enclaves kind ("nitro"). Not a public header; the
 * tests and the fuzz harnesses include it to reach the parsers and to verify against synthetic
 * roots (the production path only ever anchors chains at the AWS root compiled into
 * aws_roots.c).
 *
 * Files: nitro_cbor.c (a strict, allocation-free CBOR item reader on libcbor's streaming
 * decoder), nitro_doc.c (the COSE_Sign1 envelope and the attestation document payload, the
 * Sig_structure), nitro_verify.c (options, chain, signature, claims, the evidence_ops),
 * aws_roots.c (the pinned AWS Nitro Enclaves Root-G1). docs/evidence-nitro.md says what each check
 * is and why.
 */
#ifndef CLST_EVIDENCE_NITRO_INT_H
#define CLST_EVIDENCE_NITRO_INT_H

#include "evidence/evidence_int.h"

/* ---- strict CBOR items (nitro_cbor.c) ------------------------------------------------------- */

enum nitro_cbor_type {
    NITRO_CBOR_UINT = 1, /* value */
    NITRO_CBOR_NEGINT,   /* the integer -1 - value */
    NITRO_CBOR_BYTES,    /* ptr, size (a definite-length byte string) */
    NITRO_CBOR_TEXT,     /* ptr, size (a definite-length text string; not checked for UTF-8) */
    NITRO_CBOR_ARRAY,    /* value = element count (definite length) */
    NITRO_CBOR_MAP,      /* value = pair count (definite length) */
    NITRO_CBOR_TAG,      /* value = tag number; the tagged item follows */
    NITRO_CBOR_FALSE,
    NITRO_CBOR_TRUE,
    NITRO_CBOR_NULL,
    NITRO_CBOR_UNDEFINED,
    NITRO_CBOR_FLOAT, /* half, single or double: never valid in a Nitro document */
};

/* One item head (and, for strings, its bytes), as read. */
struct nitro_cbor_item {
    enum nitro_cbor_type type;
    uint64_t value;
    const uint8_t *ptr; /* strings: into the reader's input */
    size_t size;
    size_t offset; /* of the head, from the start of the reader's input */
};

/* Reads items one by one from a byte range it does not own. */
struct nitro_cbor_reader {
    const uint8_t *data;
    size_t size;
    size_t pos;
};

void nitro_cbor_reader_init(struct nitro_cbor_reader *r, const uint8_t *data, size_t size);

/*
 * Reads the next item head. Only what a definite-length, well-formed encoding allows: an
 * indefinite-length string, array or map, a "break", an unassigned simple value or a reserved
 * additional-information value is CLST_E_MALFORMED, as is an item that does not fit in what is
 * left (truncation). `what` names the item in messages ("payload key", ...). The reader does not
 * move on failure. Pure: allocates nothing.
 */
enum clst_status nitro_cbor_next(struct nitro_cbor_reader *r, struct nitro_cbor_item *out,
                                 const char *what, struct clst_err *err);

/* Appends the minimal CBOR head for (major type, argument) to out: 1, 2, 3, 5 or 9 bytes. */
size_t nitro_cbor_head(uint8_t major, uint64_t arg, uint8_t out[9]);

/* The name of an item type for messages ("byte string", "map", ...). */
const char *nitro_cbor_type_name(enum nitro_cbor_type type);

/* ---- the attestation document (nitro_doc.c) ------------------------------------------------- */

/*
 * Limits. AWS's attestation_process.md gives the CDDL: cert = bytes .size (1..1024), user_data =
 * bytes .size (0..1024) (its prose says 512 for user_data and nonce, but real documents carry 1024
 * bytes: the CDDL's bound is used), pcr index 0..31, pcrs map of 1..32 entries, payload
 * bstr .size (1..16384). The other caps are ours and far above what AWS produces (a 4-certificate
 * bundle, a 39-character module id).
 */
#define NITRO_PAYLOAD_MAX_SIZE   16384
#define NITRO_PROTECTED_MAX_SIZE 64
#define NITRO_SIGNATURE_SIZE     96 /* ES384: r || s, 48 bytes each, big-endian */
#define NITRO_P384_SIZE          48
#define NITRO_MODULE_ID_MAX      256
#define NITRO_CERT_MAX_SIZE      1024
#define NITRO_CABUNDLE_MAX       8
#define NITRO_PCR_COUNT          32
#define NITRO_PCR_SIZE           48   /* digest "SHA384" */
#define NITRO_USER_DATA_MAX      1024 /* public_key, user_data, nonce */
#define NITRO_COSE_ALG_ES384     (-35)
#define NITRO_COSE_TAG_SIGN1     18
/* The largest COSE_Sign1 this build reads: tag, array head, protected, unprotected, payload,
 * signature, with room to spare. */
#define NITRO_EVIDENCE_MAX_SIZE (NITRO_PAYLOAD_MAX_SIZE + 512)

/* An optional byte-string field: absent (key missing or null), or present with 0..cap bytes. */
struct nitro_opt_bytes {
    bool present;
    size_t size;
    uint8_t bytes[NITRO_USER_DATA_MAX];
};

/*
 * A parsed document: owned copies of every field. The signed regions are kept as offsets into the
 * evidence (the signature is checked over those original bytes, never over a re-encoding).
 */
struct nitro_doc {
    bool tagged;          /* COSE_Sign1_Tagged (tag 18); AWS sends the untagged form */
    size_t protected_off; /* the protected header's bytes (inside its bstr) */
    size_t protected_size;
    size_t payload_off; /* the payload's bytes (inside its bstr) */
    size_t payload_size;
    uint8_t signature[NITRO_SIGNATURE_SIZE];

    char module_id[NITRO_MODULE_ID_MAX + 1];
    uint64_t timestamp_ms;
    uint32_t pcr_mask; /* bit i: PCR i is present */
    uint8_t pcr[NITRO_PCR_COUNT][NITRO_PCR_SIZE];
    uint8_t cert[NITRO_CERT_MAX_SIZE];
    size_t cert_size;
    size_t cabundle_count; /* root first, the certificate's issuer last */
    uint8_t cabundle[NITRO_CABUNDLE_MAX][NITRO_CERT_MAX_SIZE];
    size_t cabundle_size[NITRO_CABUNDLE_MAX];
    struct nitro_opt_bytes public_key;
    struct nitro_opt_bytes user_data;
    struct nitro_opt_bytes nonce;
};

/*
 * Parses a COSE_Sign1 attestation document (optionally with tag 18). Pure: allocates nothing,
 * verifies nothing. CLST_E_LIMIT past the caps above (before anything larger is copied);
 * CLST_E_MALFORMED, naming the field and offset, for anything else: not well-formed or not
 * definite-length CBOR, a protected header other than {1: -35}, a non-empty unprotected header, a
 * signature that is not 96 bytes, a payload that is not exactly one map, a missing, null,
 * duplicate or unknown payload key, a value of the wrong type or size, trailing bytes (after the
 * COSE_Sign1, the protected header or the payload). *out (about 14 KiB) is written in place and
 * is all zero after a failure.
 */
enum clst_status evidence_nitro_parse(const uint8_t *data, size_t size, struct nitro_doc *out,
                                      struct clst_err *err);

/*
 * SHA-384 of the COSE Sig_structure ["Signature1", protected, h'', payload] (RFC 9052 section
 * 4.4), encoded deterministically from the given protected-header and payload bytes.
 */
enum clst_status evidence_nitro_tbs_digest(const uint8_t *protected_bytes, size_t protected_size,
                                           const uint8_t *payload, size_t payload_size,
                                           uint8_t out[CLST_SHA384_SIZE]);

/* ---- aws_roots.c ---------------------------------------------------------------------------- */

/* The AWS Nitro Enclaves Root-G1 compiled into this build, parsed once (thread-safe) and checked
 * against its pinned SHA-256 fingerprint. Owned by the library (do not free). */
enum clst_status evidence_nitro_builtin_root(X509 **out, struct clst_err *err);
/* The PEM text and pinned fingerprint of the built-in root (for tests). */
const char *evidence_nitro_builtin_root_pem(const uint8_t **out_sha256);

/*
 * Public, pending a declaration in include/cloister/evidence.h: a new stack holding the AWS Nitro
 * Enclaves root compiled into this build, to pass as clst_evidence_input.roots for the nitro
 * kind. Free with sk_X509_pop_free(.., X509_free).
 */
enum clst_status clst_evidence_nitro_roots(STACK_OF(X509) **out, struct clst_err *err);

/* ---- nitro_verify.c ------------------------------------------------------------------------- */

/* Verification options (clst_evidence_input.options; docs/evidence-nitro.md). */
struct nitro_options {
    bool has_nonce; /* "nonce": lower- or upper-case hex; the document's nonce must equal it */
    size_t nonce_size;
    uint8_t nonce[NITRO_USER_DATA_MAX];
};

enum clst_status evidence_nitro_options_parse(const json_t *options, struct nitro_options *out,
                                              struct clst_err *err);

/*
 * The kind's verify step against an explicit set of anchors: the production ops call it with the
 * built-in root; tests call it with synthetic ones. Every certificate of `in->roots` must be one
 * of `anchors` (CLST_E_INVAL otherwise), and only those chain.
 */
enum clst_status evidence_nitro_verify_with(const struct nitro_doc *doc, const uint8_t *data,
                                            size_t size, const struct clst_evidence_input *in,
                                            STACK_OF(X509) *anchors, struct clst_err *err);

/* True when PCR0 (the enclave image) is absent or all zero: an enclave started in debug mode. */
bool evidence_nitro_is_debug(const struct nitro_doc *doc);

/* Claim names (docs/evidence-nitro.md). No cloud attestation service defines Nitro claims; these
 * follow AWS KMS's condition keys (kms:RecipientAttestation:ImageSha384 and :PCR<n>, lower-case
 * hex) under an aws-nitro- prefix, and the attestation document's field names. */
#define NITRO_ATTESTATION_TYPE    "nitro"
#define NITRO_CLAIM_MODULE_ID     "aws-nitro-module-id"
#define NITRO_CLAIM_TIMESTAMP     "aws-nitro-timestamp"    /* integer, ms since the epoch */
#define NITRO_CLAIM_DIGEST        "aws-nitro-digest"       /* "SHA384" */
#define NITRO_CLAIM_IMAGE_SHA384  "aws-nitro-image-sha384" /* = PCR0, as KMS's ImageSha384 */
#define NITRO_CLAIM_PCR_PREFIX    "aws-nitro-pcr"          /* aws-nitro-pcr0 .. aws-nitro-pcr31 */
#define NITRO_CLAIM_IS_DEBUGGABLE "aws-nitro-is-debuggable"
#define NITRO_CLAIM_PUBLIC_KEY    "aws-nitro-public-key" /* hex; omitted when absent */
#define NITRO_CLAIM_USER_DATA     "aws-nitro-user-data"  /* hex ("" when present but empty) */
#define NITRO_CLAIM_NONCE         "aws-nitro-nonce"      /* hex ("" when present but empty) */

extern const struct evidence_ops evidence_nitro_ops;

#endif
