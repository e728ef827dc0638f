/*
 * Inside the evidence component: Intel DCAP (TDX quotes v4/v5, SGX quotes v3), shared by
 * tdx_quote.c and sgx_quote.c (docs/evidence-dcap.md). Not a public header; tests include it to
 * build deliberately bad quotes and collateral.
 *
 * Files: dcap_quote.c (the quote parser), dcap_collateral.c (the collateral bundle: container,
 * directory loader), dcap_json.c (the signed tcbInfo / enclaveIdentity JSON: raw-member split and
 * parsers), dcap_verify.c (PCK chain, QE report, binding, collateral signatures, TCB level and
 * status, policy), intel_roots.c (the pinned Intel SGX Root CA).
 */
#ifndef CLST_DCAP_INT_H
#define CLST_DCAP_INT_H

#include <cloister/crypto.h>
#include <cloister/evidence.h>

#include "evidence/evidence_int.h"

/* ---- the quote ------------------------------------------------------------------------------ */

#define DCAP_HEADER_SIZE        48
#define DCAP_SGX_REPORT_SIZE    384 /* SGX REPORT body (ISV enclave report, QE report) */
#define DCAP_TD10_BODY_SIZE     584 /* TD quote body, TD report 1.0 (0x248) */
#define DCAP_TD15_BODY_SIZE     648 /* TD quote body, TD report 1.5 */
#define DCAP_ECDSA_SIG_SIZE     64  /* r || s, big-endian, P-256 */
#define DCAP_ECDSA_KEY_SIZE     64  /* x || y, big-endian, P-256 */
#define DCAP_QE_VENDOR_ID_SIZE  16
#define DCAP_USER_DATA_SIZE     20
#define DCAP_QE_AUTH_MAX_SIZE   1024 /* QE authentication data (32 bytes in practice) */
#define DCAP_CERT_DATA_MAX_SIZE 8192 /* the PEM PCK chain (about 3.7 KiB in practice) */
/* The whole input, trailing bytes included: quotes are often read into fixed 8000-byte buffers. */
#define DCAP_QUOTE_MAX_SIZE 32768

#define DCAP_VERSION_SGX3 3
#define DCAP_VERSION_TDX4 4
#define DCAP_VERSION_TDX5 5
#define DCAP_ATT_KEY_ECDSA_P256 2
#define DCAP_TEE_SGX            0x00000000u
#define DCAP_TEE_TDX            0x00000081u
#define DCAP_CERT_PCK_CHAIN     5 /* certification data type: PEM PCK chain */
#define DCAP_CERT_QE_REPORT     6 /* certification data type: QE report certification data */

enum dcap_body_type {
    DCAP_BODY_SGX = 1,  /* SGX REPORT body (384 bytes) */
    DCAP_BODY_TD10 = 2, /* TD report 1.0 (584 bytes) */
    DCAP_BODY_TD15 = 3, /* TD report 1.5 (648 bytes) */
};

/* The 384-byte SGX REPORT body in host order (reserved ranges are checked zero, not kept). */
struct dcap_sgx_report {
    uint8_t cpusvn[16];
    uint32_t miscselect;
    uint8_t isvextprodid[16];
    uint8_t attributes[16]; /* byte 0 bit 1: DEBUG */
    uint8_t mrenclave[32];
    uint8_t mrsigner[32];
    uint8_t configid[64];
    uint16_t isvprodid;
    uint16_t isvsvn;
    uint16_t configsvn;
    uint8_t isvfamilyid[16];
    uint8_t report_data[64];
};

#define DCAP_SGX_ATTR_DEBUG 0x02 /* attributes[0] */

/* The TD quote body (TD report 1.0, plus the two TD 1.5 fields). */
struct dcap_td_report {
    uint8_t tee_tcb_svn[16];
    uint8_t mrseam[48];
    uint8_t mrsignerseam[48];
    uint8_t seam_attributes[8];
    uint8_t td_attributes[8]; /* little-endian u64: bit 0 DEBUG, 28 SEPT_VE_DISABLE, 29
                                 MIGRATABLE, 30 PKS, 31 KL, 63 PERFMON */
    uint8_t xfam[8];
    uint8_t mrtd[48];
    uint8_t mrconfigid[48];
    uint8_t mrowner[48];
    uint8_t mrownerconfig[48];
    uint8_t rtmr[4][48];
    uint8_t report_data[64];
    uint8_t tee_tcb_svn2[16]; /* TD 1.5 only (zero otherwise) */
    uint8_t mrservicetd[48];  /* TD 1.5 only (zero otherwise) */
};

/* The advisory ids and TCB status a verification found (what the claims report). */
enum dcap_tcb_status {
    DCAP_TCB_UP_TO_DATE = 0,
    DCAP_TCB_SW_HARDENING_NEEDED,
    DCAP_TCB_CONFIGURATION_NEEDED,
    DCAP_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED,
    DCAP_TCB_OUT_OF_DATE,
    DCAP_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED,
    DCAP_TCB_REVOKED,
};
#define DCAP_TCB_STATUS_COUNT 7

#define DCAP_ADVISORY_ID_SIZE   24 /* "INTEL-SA-00000" and a NUL, with room */
#define DCAP_RESULT_MAX_ADVISORIES 96

struct dcap_result {
    bool done;                       /* set by a successful verification */
    enum dcap_tcb_status status;     /* the converged status (platform, TDX module, QE) */
    enum dcap_tcb_status platform_status;
    enum dcap_tcb_status qe_status;
    bool has_module;                 /* a TDX module identity was evaluated */
    char module_id[16];              /* "TDX_01" */
    enum dcap_tcb_status module_status;
    int64_t tcb_date;                /* the platform TCB level's tcbDate */
    uint32_t tcb_eval_number;        /* tcbInfo's tcbEvaluationDataNumber */
    uint8_t fmspc[6];
    size_t advisory_count;
    char advisory[DCAP_RESULT_MAX_ADVISORIES][DCAP_ADVISORY_ID_SIZE];
    /* SHA-256 of what was evaluated (the claims name them as the cloud service does). */
    uint8_t quote_hash[32];       /* the quote's declared bytes (trailing bytes excluded) */
    uint8_t tcb_info_hash[32];    /* the tcbInfo file as given */
    uint8_t qe_identity_hash[32]; /* the QE identity file as given */
    uint8_t tcb_chain_hash[32];   /* the TCB signing chain file (issuer of both) */
    uint8_t root_crl_hash[32];    /* the Root CA CRL file */
};

/* Parsed quote: owned copies of every part; nothing points into the input. */
struct dcap_quote {
    uint16_t version;
    uint16_t att_key_type;
    uint32_t tee_type;
    uint16_t qe_svn;  /* v3 header only */
    uint16_t pce_svn; /* v3 header only */
    uint8_t qe_vendor_id[DCAP_QE_VENDOR_ID_SIZE];
    uint8_t user_data[DCAP_USER_DATA_SIZE];
    enum dcap_body_type body_type;
    struct dcap_sgx_report sgx; /* DCAP_BODY_SGX */
    struct dcap_td_report td;   /* DCAP_BODY_TD10 / TD15 */
    size_t signed_size;         /* bytes [0, signed_size) are signed by the attestation key */
    size_t quote_size;          /* the declared length: signed part + 4 + signature data */
    size_t trailing_size;       /* bytes after quote_size (accepted, not covered, documented) */
    uint8_t signature[DCAP_ECDSA_SIG_SIZE];
    uint8_t att_key[DCAP_ECDSA_KEY_SIZE];
    uint8_t qe_report_raw[DCAP_SGX_REPORT_SIZE]; /* as signed by the PCK */
    struct dcap_sgx_report qe_report;
    uint8_t qe_report_sig[DCAP_ECDSA_SIG_SIZE];
    uint8_t qe_auth[DCAP_QE_AUTH_MAX_SIZE];
    size_t qe_auth_size;
    uint8_t pck_chain[DCAP_CERT_DATA_MAX_SIZE]; /* PEM, leaf first */
    size_t pck_chain_size;
    /* Where the verifier records what it found (points at result_store; the framework hands
     * verify a const view of the parsed struct, and the claims come from these results). */
    struct dcap_result *result;
    struct dcap_result result_store;
};

/*
 * Parses a quote of any supported form (v3 with an SGX body, v4 with a TD 1.0 body, v5 with a TD
 * 1.0 or 1.5 body) by its declared lengths. Pure: allocates nothing, verifies nothing.
 * CLST_E_LIMIT beyond DCAP_QUOTE_MAX_SIZE or a field cap; CLST_E_MALFORMED (naming the offset)
 * for an unknown version, key type, TEE type, body type or certification data type, a vendor id
 * that is not Intel's, reserved bytes that are not zero, or truncation. Bytes after the declared
 * length are accepted and counted in trailing_size. *out (about 13 KiB, so it is filled in place
 * rather than copied from the stack) is all zero after a failure.
 */
enum clst_status dcap_quote_parse(const uint8_t *data, size_t size, struct dcap_quote *out,
                                  struct clst_err *err);

/* Serializes a 384-byte SGX REPORT body (reserved bytes zero). */
void dcap_sgx_report_encode(const struct dcap_sgx_report *r, uint8_t out[DCAP_SGX_REPORT_SIZE]);
/* Serializes a TD quote body of 584 (TD10) or 648 (TD15) bytes. */
void dcap_td_report_encode(const struct dcap_td_report *r, enum dcap_body_type type,
                           uint8_t *out);

/* ---- the collateral bundle (in->endorsements) ----------------------------------------------- */

enum dcap_coll_item {
    DCAP_COLL_TCB_INFO = 1,  /* tcb_info.json: {"tcbInfo":{...},"signature":"..."} as served */
    DCAP_COLL_QE_IDENTITY,   /* qe_identity.json: {"enclaveIdentity":{...},"signature":"..."} */
    DCAP_COLL_TCB_CHAIN,     /* tcb_signing_chain.pem: TCB Signing certificate (+ root, ignored) */
    DCAP_COLL_PCK_CRL,       /* pck_crl.der: CRL of the CA that issued the PCK (DER or PEM) */
    DCAP_COLL_ROOT_CRL,      /* root_ca_crl.der: the Intel SGX Root CA CRL (DER or PEM) */
};
#define DCAP_COLL_ITEM_COUNT 5

#define DCAP_FILE_TCB_INFO    "tcb_info.json"
#define DCAP_FILE_QE_IDENTITY "qe_identity.json"
#define DCAP_FILE_TCB_CHAIN   "tcb_signing_chain.pem"
#define DCAP_FILE_PCK_CRL     "pck_crl.der"
#define DCAP_FILE_ROOT_CRL    "root_ca_crl.der"

#define DCAP_COLL_MAGIC_SIZE   4 /* "CDCL" */
#define DCAP_COLL_VERSION      1
#define DCAP_COLL_JSON_MAX     (256u * 1024)     /* tcbInfo / QE identity (5 KiB in practice) */
#define DCAP_COLL_CHAIN_MAX    (64u * 1024)
#define DCAP_COLL_CRL_MAX      (4u * 1024 * 1024) /* processor CA CRLs grow */
#define DCAP_COLL_MAX_SIZE     (10u * 1024 * 1024)

/* Borrowed views of the bundle's items (indexed by enum dcap_coll_item - 1). */
struct dcap_collateral {
    const uint8_t *item[DCAP_COLL_ITEM_COUNT];
    size_t item_size[DCAP_COLL_ITEM_COUNT];
};

/*
 * Parses the bundle: "CDCL", u16 version (1), u16 count, then count items of u16 type, u32 size
 * and size bytes (little-endian), every type exactly once, nothing after. Pure (views point into
 * `data`). CLST_E_LIMIT past the caps above; CLST_E_MALFORMED otherwise.
 */
enum clst_status dcap_collateral_parse(const uint8_t *data, size_t size,
                                       struct dcap_collateral *out, struct clst_err *err);
/* Appends the bundle of `c` (every item present) to out. */
enum clst_status dcap_collateral_encode(const struct dcap_collateral *c, struct clst_buf *out);
/* Item name for messages ("tcb_info.json", ...). */
const char *dcap_collateral_item_name(enum dcap_coll_item item);

/* ---- signed collateral JSON (dcap_json.c) ---------------------------------------------------- */

/*
 * Splits a PCS response {"<member>":{...},"signature":"<128 hex>"} without re-serializing: finds
 * the exact byte range of the member's value as it appears in `data` (the bytes Intel signed) and
 * decodes the signature (raw r || s). The top level must be one JSON object holding each of the two
 * members exactly once (other members are ignored), nothing but whitespace after it.
 */
enum clst_status dcap_signed_json_split(const uint8_t *data, size_t size, const char *member,
                                        size_t *out_body_off, size_t *out_body_size,
                                        uint8_t out_sig[DCAP_ECDSA_SIG_SIZE],
                                        struct clst_err *err);

#define DCAP_MAX_TCB_LEVELS    64
#define DCAP_MAX_MODULES       16
#define DCAP_MAX_MODULE_LEVELS 16
#define DCAP_MAX_QE_LEVELS     64
#define DCAP_MAX_ADVISORY_POOL 1024 /* advisory ids over all levels of one document */

struct dcap_advisory_pool {
    size_t count;
    char id[DCAP_MAX_ADVISORY_POOL][DCAP_ADVISORY_ID_SIZE];
};

struct dcap_tcb_level {
    uint8_t sgx_svn[16];
    uint16_t pcesvn;
    uint8_t tdx_svn[16]; /* TDX tcbInfo only */
    int64_t tcb_date;
    enum dcap_tcb_status status;
    size_t adv_first, adv_count; /* in the document's advisory pool */
};

struct dcap_isv_level {
    uint16_t isvsvn;
    int64_t tcb_date;
    enum dcap_tcb_status status;
    size_t adv_first, adv_count;
};

struct dcap_module_identity {
    char id[16]; /* "TDX_01" */
    uint8_t mrsigner[48];
    uint8_t attributes[8];
    uint8_t attributes_mask[8];
    size_t level_count;
    struct dcap_isv_level level[DCAP_MAX_MODULE_LEVELS];
};

enum dcap_tcb_info_id { DCAP_TCB_INFO_SGX = 1, DCAP_TCB_INFO_TDX };

struct dcap_tcb_info {
    enum dcap_tcb_info_id id; /* v2 carries no id and is SGX */
    int version;              /* 2 or 3 */
    int64_t issue_date, next_update;
    uint8_t fmspc[6];
    uint8_t pceid[2];
    uint32_t tcb_type;
    uint32_t eval_number;
    bool has_tdx_module; /* "tdxModule" (TDX) */
    uint8_t module_mrsigner[48];
    uint8_t module_attributes[8];
    uint8_t module_attributes_mask[8];
    size_t module_count; /* "tdxModuleIdentities" */
    struct dcap_module_identity module[DCAP_MAX_MODULES];
    size_t level_count;
    struct dcap_tcb_level level[DCAP_MAX_TCB_LEVELS];
    struct dcap_advisory_pool adv;
};

enum dcap_qe_id { DCAP_QE_ID_QE = 1, DCAP_QE_ID_TD_QE };

struct dcap_qe_identity {
    enum dcap_qe_id id;
    int version; /* 2 */
    int64_t issue_date, next_update;
    uint32_t eval_number;
    uint32_t miscselect, miscselect_mask;
    uint8_t attributes[16], attributes_mask[16];
    uint8_t mrsigner[32];
    uint16_t isvprodid;
    size_t level_count;
    struct dcap_isv_level level[DCAP_MAX_QE_LEVELS];
    struct dcap_advisory_pool adv;
};

/*
 * Parse the (already signature-checked) value of "tcbInfo" / "enclaveIdentity". Strict on what is
 * used (types, hex lengths, ranges, status names, dates), CLST_E_LIMIT past the caps above;
 * members this verifier does not use are ignored. *out is overwritten (large: heap-allocate it).
 */
enum clst_status dcap_tcb_info_parse(const uint8_t *json, size_t size, struct dcap_tcb_info *out,
                                     struct clst_err *err);
enum clst_status dcap_qe_identity_parse(const uint8_t *json, size_t size,
                                        struct dcap_qe_identity *out, struct clst_err *err);

/* "UpToDate", ... and back (CLST_E_MALFORMED for an unknown name). */
const char *dcap_tcb_status_name(enum dcap_tcb_status s);
enum clst_status dcap_tcb_status_parse(const char *name, size_t len, enum dcap_tcb_status *out);

/* ---- verification (dcap_verify.c) ------------------------------------------------------------ */

/* What the PCK certificate's SGX extension (1.2.840.113741.1.13.1) says. */
struct dcap_pck_info {
    uint8_t sgx_svn[16];
    uint16_t pcesvn;
    uint8_t cpusvn[16];
    uint8_t pceid[2];
    uint8_t fmspc[6];
};

/* Parses the SGX extension's DER value (SEQUENCE of {OID, value}). Pure. */
enum clst_status dcap_pck_extension_parse(const uint8_t *der, size_t size,
                                          struct dcap_pck_info *out, struct clst_err *err);

/*
 * Platform TCB level for a PCK (and, for TDX, a TEE_TCB_SVN): the index of the first level of
 * `info` that the platform meets (Intel QVL's rules), or CLST_E_VERIFY when none matches.
 */
enum clst_status dcap_tcb_level_match(const struct dcap_tcb_info *info,
                                      const struct dcap_pck_info *pck,
                                      const uint8_t *tee_tcb_svn /* NULL for SGX */,
                                      size_t *out_index, struct clst_err *err);

/* Intel QVL's convergence of the platform status with the TDX module's or the QE's. */
enum dcap_tcb_status dcap_tcb_status_converge(enum dcap_tcb_status platform,
                                              enum dcap_tcb_status other);

/*
 * Parses a policy list "UpToDate,SWHardeningNeeded" (NULL or "" = UpToDate only) into a bit mask
 * (bit = 1 << status). Revoked is refused (CLST_E_INVAL): it is never acceptable.
 */
enum clst_status dcap_tcb_policy_parse(const char *list, unsigned *out_mask,
                                       struct clst_err *err);

/*
 * The whole DCAP verification of a parsed quote against in->endorsements (the collateral bundle),
 * in->roots, in->at and the TCB policy; `kind` is "tdx" or "sgx" for messages and selects the QE
 * identity ("TD_QE" / "QE") and tcbInfo ("TDX" / "SGX") expected. Records the result in
 * q->result. See docs/evidence-dcap.md for the order of checks.
 */
enum clst_status dcap_verify(const struct dcap_quote *q, const uint8_t *data, size_t size,
                             const struct clst_evidence_input *in, const char *kind,
                             struct clst_err *err);

/* Claims shared by both kinds: attester_tcb_status, attester_tcb_date, attester_advisory_ids and
 * the collateral hashes object `collateral_claim` with hash member names ending in `certs_suffix`
 * ("certshash" for SGX's x-ms-sgx-collateral, "certhash" for tdx_collateral). */
enum clst_status dcap_claims_common(const struct dcap_result *r, json_t *claims,
                                    const char *collateral_claim, const char *certs_suffix);
/* Sets claims[name] to the lower-case hex of bytes. */
enum clst_status dcap_claim_hex(json_t *claims, const char *name, const uint8_t *bytes,
                                size_t size);

/* tdx_quote.c, sgx_quote.c */
extern const struct evidence_ops evidence_tdx_ops;
extern const struct evidence_ops evidence_sgx_ops;

/* ---- to be declared in include/cloister/evidence.h (asked the lead) -------------------------- */

/*
 * The Intel SGX Root CA pinned in this binary (intel_roots.c), as a new stack of one certificate
 * to pass as clst_evidence_input.roots for "tdx" and "sgx" evidence (free with
 * sk_X509_pop_free(roots, X509_free)). The root is never taken from a quote.
 */
enum clst_status clst_evidence_intel_roots(STACK_OF(X509) **out, struct clst_err *err);

/*
 * Reads a DCAP collateral directory (tcb_info.json, qe_identity.json, tcb_signing_chain.pem,
 * pck_crl.der, root_ca_crl.der; docs/evidence-dcap.md) and appends the bundle to pass as
 * clst_evidence_input.endorsements to `out` (initialize it with a max of at least
 * DCAP_COLL_MAX_SIZE bytes, e.g. clst_buf_init(out, 16 << 20)). CLST_E_IO naming the missing or
 * unreadable file; CLST_E_LIMIT for a file over its cap.
 */
enum clst_status clst_evidence_dcap_collateral_load(const char *dir, struct clst_buf *out,
                                                    struct clst_err *err);

#endif
