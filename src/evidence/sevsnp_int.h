/*
 * Inside the evidence component: the AMD SEV-SNP kind ("sevsnp"). Not a public header; the
 * tests and the fuzz harness include it to reach the parsers and to verify against synthetic
 * roots (the production path only ever uses the AMD roots compiled into amd_roots.c).
 *
 * Files: sevsnp_report.c (report and certificate-table parsers, report encoder for tests),
 * sevsnp_certs.c (certificate pool from the evidence and the endorsements, VCEK/VLEK extensions,
 * TCB layouts, products), sevsnp_verify.c (options, chain cache, chain, signature, policy,
 * claims, the evidence_ops), amd_roots.c (the pinned ARKs). docs/evidence-sevsnp.md says what
 * each check is and why.
 */
#ifndef CLST_EVIDENCE_SEVSNP_INT_H
#define CLST_EVIDENCE_SEVSNP_INT_H

#include "evidence/evidence_int.h"

/* ---- the report (AMD pub. 56860, ATTESTATION_REPORT; shared/vectors LAYOUTS.md section 1) -- */

#define SEVSNP_REPORT_SIZE        0x4A0 /* 1184 bytes, every version */
#define SEVSNP_SIGNED_SIZE        0x2A0 /* the signature covers bytes 0x000..0x29F */
#define SEVSNP_SIG_COMPONENT_SIZE 72    /* R and S: little-endian, zero-extended */
#define SEVSNP_P384_SIZE          48
#define SEVSNP_MIN_VERSION        2
#define SEVSNP_MAX_VERSION        5
#define SEVSNP_SIG_ALGO_ES384     1 /* ECDSA P-384 with SHA-384 */
#define SEVSNP_MAX_VMPL           3

#define SEVSNP_FAMILY_ID_SIZE   16
#define SEVSNP_IMAGE_ID_SIZE    16
#define SEVSNP_REPORT_DATA_SIZE 64
#define SEVSNP_MEASUREMENT_SIZE 48
#define SEVSNP_HOST_DATA_SIZE   32
#define SEVSNP_KEY_DIGEST_SIZE  48
#define SEVSNP_REPORT_ID_SIZE   32
#define SEVSNP_CHIP_ID_SIZE     64

/* POLICY bits. Bits 21..25 (CXL_ALLOW, MEM_AES_256_XTS, RAPL_DIS, CIPHERTEXT_HIDING,
 * PAGE_SWAP_DISABLE) are defined by newer ABI versions and accepted; 26..63 are reserved. */
#define SEVSNP_POLICY_SMT           (UINT64_C(1) << 16)
#define SEVSNP_POLICY_RESERVED_ONE  (UINT64_C(1) << 17) /* must be 1 */
#define SEVSNP_POLICY_MIGRATE_MA    (UINT64_C(1) << 18)
#define SEVSNP_POLICY_DEBUG         (UINT64_C(1) << 19)
#define SEVSNP_POLICY_SINGLE_SOCKET (UINT64_C(1) << 20)
#define SEVSNP_POLICY_DEFINED       ((UINT64_C(1) << 26) - 1)

/* PLATFORM_INFO: bits 0..7 are defined (SMT_EN, TSME_EN, ECC_EN, RAPL_DIS, CIPHERTEXT_HIDING_EN,
 * ALIAS_CHECK_COMPLETE, ..); 8..63 are reserved. */
#define SEVSNP_PLATFORM_SMT_EN  UINT64_C(0x1)
#define SEVSNP_PLATFORM_DEFINED UINT64_C(0xFF)

/* The u32 at 0x048: bit 0 AUTHOR_KEY_EN, bit 1 MASK_CHIP_KEY, bits 4:2 SIGNING_KEY. */
#define SEVSNP_KEYINFO_AUTHOR_KEY_EN 0x1u
#define SEVSNP_KEYINFO_MASK_CHIP_KEY 0x2u
#define SEVSNP_KEYINFO_SIGNING_SHIFT 2
#define SEVSNP_KEYINFO_SIGNING_MASK  0x7u
#define SEVSNP_KEYINFO_DEFINED       0x1Fu

enum sevsnp_signing_key {
    SEVSNP_KEY_VCEK = 0,
    SEVSNP_KEY_VLEK = 1,
    SEVSNP_KEY_NONE = 7, /* the report is not signed */
};

/* Every field in host order; reserved bytes are checked to be zero and not kept. */
struct sevsnp_report {
    uint32_t version;
    uint32_t guest_svn;
    uint64_t policy;
    uint8_t family_id[SEVSNP_FAMILY_ID_SIZE];
    uint8_t image_id[SEVSNP_IMAGE_ID_SIZE];
    uint32_t vmpl;
    uint32_t sig_algo;
    uint64_t current_tcb;
    uint64_t platform_info;
    uint32_t key_info;
    uint8_t report_data[SEVSNP_REPORT_DATA_SIZE];
    uint8_t measurement[SEVSNP_MEASUREMENT_SIZE];
    uint8_t host_data[SEVSNP_HOST_DATA_SIZE];
    uint8_t id_key_digest[SEVSNP_KEY_DIGEST_SIZE];
    uint8_t author_key_digest[SEVSNP_KEY_DIGEST_SIZE];
    uint8_t report_id[SEVSNP_REPORT_ID_SIZE];
    uint8_t report_id_ma[SEVSNP_REPORT_ID_SIZE];
    uint64_t reported_tcb;
    uint8_t cpuid_family; /* version 3 and later; zero before */
    uint8_t cpuid_model;
    uint8_t cpuid_stepping;
    uint8_t chip_id[SEVSNP_CHIP_ID_SIZE];
    uint64_t committed_tcb;
    uint8_t current_build, current_minor, current_major;
    uint8_t committed_build, committed_minor, committed_major;
    uint64_t launch_tcb;
    uint64_t launch_mit_vector; /* version 5 and later; zero before */
    uint64_t current_mit_vector;
    uint8_t sig_r[SEVSNP_SIG_COMPONENT_SIZE]; /* little-endian, as in the report */
    uint8_t sig_s[SEVSNP_SIG_COMPONENT_SIZE];
};

static inline enum sevsnp_signing_key
sevsnp_signing_key(const struct sevsnp_report *r)
{
    return (enum sevsnp_signing_key)((r->key_info >> SEVSNP_KEYINFO_SIGNING_SHIFT) &
                                     SEVSNP_KEYINFO_SIGNING_MASK);
}

/* ---- the certificate table of an extended report (GHCB spec, MSG_REPORT_REQ certificates) --- */

#define SEVSNP_GUID_SIZE 16
#define SEVSNP_TABLE_ENTRY_SIZE                                                                    \
    24 /* GUID, u32 offset, u32 length; offsets from the table start                               \
        */
#define SEVSNP_TABLE_MAX_ENTRIES     16
#define SEVSNP_TABLE_MAX_SIZE        (32u * 1024) /* the guest driver's buffer is 16 KiB */
#define SEVSNP_CERT_MAX_SIZE         (8u * 1024)  /* AMD certificates are 1.2-1.7 KiB of DER */
#define SEVSNP_EVIDENCE_MAX_SIZE     (SEVSNP_REPORT_SIZE + SEVSNP_TABLE_MAX_SIZE)
#define SEVSNP_ENDORSEMENTS_MAX_SIZE (256u * 1024)
/* Certificates from the table and the endorsements together. */
#define SEVSNP_POOL_MAX 64

enum sevsnp_guid_role {
    SEVSNP_GUID_OTHER = 0, /* an entry we do not use (e.g. extra platform info) */
    SEVSNP_GUID_VCEK,
    SEVSNP_GUID_VLEK,
    SEVSNP_GUID_ASK, /* also used for the ASVK */
    SEVSNP_GUID_ARK,
};

/* The GUIDs in table byte order (the order of their text form, as go-sev-guest and virtee/sev
 * write them). */
extern const uint8_t sevsnp_guid_vcek[SEVSNP_GUID_SIZE]; /* 63da758d-e664-4564-adc5-f4b93be8accd */
extern const uint8_t sevsnp_guid_vlek[SEVSNP_GUID_SIZE]; /* a8074bc2-a25a-483e-aae6-39c045a0b8a1 */
extern const uint8_t sevsnp_guid_ask[SEVSNP_GUID_SIZE];  /* 4ab7b379-bbac-4fe4-a02f-05aef327c782 */
extern const uint8_t sevsnp_guid_ark[SEVSNP_GUID_SIZE];  /* c0b406a4-a803-4952-9743-3fb6014cd0ae */

struct sevsnp_table_entry {
    uint8_t guid[SEVSNP_GUID_SIZE];
    enum sevsnp_guid_role role;
    uint32_t offset; /* from the start of the table */
    uint32_t length;
};

struct sevsnp_table {
    size_t count;
    struct sevsnp_table_entry entries[SEVSNP_TABLE_MAX_ENTRIES];
};

/* Parsed evidence: the report, and the table when the evidence is an extended report. */
struct sevsnp_evidence {
    struct sevsnp_report report;
    bool has_table;
    struct sevsnp_table table; /* its bytes are data[SEVSNP_REPORT_SIZE..size) */
};

/* ---- products and TCB versions -------------------------------------------------------------- */

enum sevsnp_product {
    SEVSNP_PRODUCT_UNKNOWN = 0,
    SEVSNP_PRODUCT_MILAN,
    SEVSNP_PRODUCT_GENOA,
    SEVSNP_PRODUCT_TURIN,
};
#define SEVSNP_PRODUCT_COUNT 3 /* known products; arrays are indexed by product - 1 */

/* A decoded TCB_VERSION. Milan/Genoa: byte 0 BOOT_LOADER, 1 TEE, 2-5 reserved, 6 SNP,
 * 7 MICROCODE (fmc is 0). Turin: 0 FMC, 1 BOOT_LOADER, 2 TEE, 3 SNP, 4-6 reserved, 7 MICROCODE. */
struct sevsnp_tcb {
    uint8_t fmc;
    uint8_t bootloader;
    uint8_t tee;
    uint8_t snp;
    uint8_t microcode;
};

/* ---- sevsnp_report.c ------------------------------------------------------------------------ */

/* Parses exactly SEVSNP_REPORT_SIZE bytes (pure: no allocation, no crypto). CLST_E_MALFORMED,
 * naming the offset, for truncation, trailing bytes, an unknown version or signature algorithm,
 * a VMPL over 3, reserved bits or bytes that are set, POLICY bit 17 clear, a reserved
 * SIGNING_KEY value, or a CHIP_ID that is not zero while MASK_CHIP_KEY is set. */
enum clst_status evidence_sevsnp_report_parse(const uint8_t *data, size_t size,
                                              struct sevsnp_report *out, struct clst_err *err);
/* Parses a certificate table (entries up to the all-zero terminator, then the certificates).
 * Every entry must lie after the header inside `size`, be 1..SEVSNP_CERT_MAX_SIZE bytes and not
 * overlap another; bytes no entry covers must be zero (page padding). */
enum clst_status evidence_sevsnp_table_parse(const uint8_t *data, size_t size,
                                             struct sevsnp_table *out, struct clst_err *err);
/* The kind's parser: a report of SEVSNP_REPORT_SIZE bytes, optionally followed by a table. */
enum clst_status evidence_sevsnp_parse(const uint8_t *data, size_t size,
                                       struct sevsnp_evidence *out, struct clst_err *err);
/* Writes r in the report layout (reserved bytes zero; version-dependent fields written as given
 * so that tests can produce bad variants). For tests and corpus generation. */
void evidence_sevsnp_report_encode(const struct sevsnp_report *r,
                                   uint8_t out[static SEVSNP_REPORT_SIZE]);
/* Writes a table (header, terminator, then the certificates in order) into out. */
enum clst_status evidence_sevsnp_table_encode(const enum sevsnp_guid_role *roles,
                                              const uint8_t *const *certs, const size_t *sizes,
                                              size_t count, struct clst_buf *out);

/* ---- sevsnp_certs.c ------------------------------------------------------------------------- */

const char *evidence_sevsnp_product_name(enum sevsnp_product p); /* "Milan", .., NULL */
/* The product of a CPUID family/model (report version 3+), or SEVSNP_PRODUCT_UNKNOWN. */
enum sevsnp_product evidence_sevsnp_product_from_cpuid(uint8_t family, uint8_t model);
/* Decodes a raw TCB_VERSION by the product's layout; false when a reserved byte is set or the
 * product is unknown. */
bool evidence_sevsnp_tcb_decode(enum sevsnp_product p, uint64_t raw, struct sevsnp_tcb *out);
uint64_t evidence_sevsnp_tcb_encode(enum sevsnp_product p, const struct sevsnp_tcb *t);

/* Which TCB components a VCEK/VLEK carries (bits of sevsnp_cert_info.tcb_present). */
#define SEVSNP_TCB_HAS_BL    0x01u
#define SEVSNP_TCB_HAS_TEE   0x02u
#define SEVSNP_TCB_HAS_SNP   0x04u
#define SEVSNP_TCB_HAS_UCODE 0x08u
#define SEVSNP_TCB_HAS_FMC   0x10u

#define SEVSNP_PRODUCT_NAME_MAX 32

/* What a VCEK or VLEK says about itself (AMD pub. 57230 extensions, 1.3.6.1.4.1.3704.1.*). */
struct sevsnp_cert_info {
    enum sevsnp_signing_key role; /* from the issuer: "SEV-<gen>" VCEK, "SEV-VLEK-<gen>" VLEK */
    enum sevsnp_product product;  /* from the issuer's <gen> */
    unsigned tcb_present;
    struct sevsnp_tcb tcb;
    uint8_t hwid[SEVSNP_CHIP_ID_SIZE]; /* 64 bytes; 8 on Turin; absent (0) on a VLEK */
    size_t hwid_size;
    char product_name[SEVSNP_PRODUCT_NAME_MAX]; /* productName, "" when absent */
};

/* Reads the issuer and the AMD extensions of a leaf certificate (verifies nothing). Duplicate
 * extensions, values that are not the DER the specification names, or an issuer that is not an
 * AMD ASK/ASVK are CLST_E_MALFORMED. */
enum clst_status evidence_sevsnp_cert_info(X509 *leaf, struct sevsnp_cert_info *out,
                                           struct clst_err *err);

/* The certificates a verification may use, as DER slices (never trusted by themselves). */
struct sevsnp_certref {
    const uint8_t *der;
    size_t size;
    enum sevsnp_guid_role hint; /* the table's GUID; OTHER for the endorsements */
};

struct sevsnp_pool {
    size_t count;
    struct sevsnp_certref certs[SEVSNP_POOL_MAX];
    struct clst_buf pem_der; /* DER of PEM endorsements (allocated once, never moved) */
};

void evidence_sevsnp_pool_init(struct sevsnp_pool *pool);
void evidence_sevsnp_pool_cleanup(struct sevsnp_pool *pool);
/* Adds the VCEK, VLEK, ASK and ARK entries of a parsed table (others are skipped). */
enum clst_status evidence_sevsnp_pool_add_table(struct sevsnp_pool *pool, const uint8_t *table,
                                                size_t table_size, const struct sevsnp_table *t,
                                                struct clst_err *err);
/* Adds endorsements: a PEM bundle of CERTIFICATE blocks, concatenated DER certificates, or a
 * certificate table. CLST_E_LIMIT past SEVSNP_ENDORSEMENTS_MAX_SIZE or SEVSNP_POOL_MAX. */
enum clst_status evidence_sevsnp_pool_add_endorsements(struct sevsnp_pool *pool,
                                                       const uint8_t *data, size_t size,
                                                       struct clst_err *err);

/* ---- amd_roots.c ---------------------------------------------------------------------------- */

/* A set of ARKs, one per product (NULL where absent), with the SHA-256 of each DER. */
struct sevsnp_roots {
    X509 *ark[SEVSNP_PRODUCT_COUNT];
    uint8_t ark_sha256[SEVSNP_PRODUCT_COUNT][CLST_SHA256_SIZE];
};

/* The AMD roots compiled into this build, parsed once (thread-safe) and checked against their
 * pinned fingerprints. Owned by the library; never freed. */
enum clst_status evidence_sevsnp_builtin_roots(const struct sevsnp_roots **out,
                                               struct clst_err *err);
/* The PEM text and pinned fingerprint of a built-in ARK (for tests), or NULL. */
const char *evidence_sevsnp_builtin_ark_pem(enum sevsnp_product p, const uint8_t **out_sha256);

/*
 * Public, pending a declaration in include/cloister/evidence.h: a new stack holding the AMD
 * roots compiled into this build (ARK-Milan, ARK-Genoa, ARK-Turin), to pass as
 * clst_evidence_input.roots for the sevsnp kind. Free with sk_X509_pop_free(.., X509_free).
 */
enum clst_status clst_evidence_sevsnp_roots(STACK_OF(X509) **out, struct clst_err *err);

/* ---- sevsnp_verify.c ------------------------------------------------------------------------ */

/* Verification options (clst_evidence_input.options; docs/evidence-sevsnp.md). */
struct sevsnp_options {
    bool allow_migration_agent; /* "allow_migration_agent", default false */
    bool allow_smt;             /* "allow_smt", default true */
    uint32_t max_vmpl;          /* "max_vmpl", 0..3, default 0 */
    bool has_min_tcb;           /* "min_tcb": {"bootloader","tee","snp","microcode","fmc"} */
    struct sevsnp_tcb min_tcb;
    enum sevsnp_product product; /* "product": "Milan" | "Genoa" | "Turin"; UNKNOWN: any */
    bool has_stepping;           /* "stepping": 0..15, the CPUID stepping (report v3+) */
    uint8_t stepping;
};

enum clst_status evidence_sevsnp_options_parse(const json_t *options, struct sevsnp_options *out,
                                               struct clst_err *err);

/*
 * The kind's verify step against an explicit root set: the production ops call it with the
 * built-in roots; tests call it with synthetic ones. `in->roots` must each be one of `roots`'
 * ARKs, and the product's ARK must be among them.
 */
enum clst_status evidence_sevsnp_verify_with(const struct sevsnp_evidence *ev, const uint8_t *data,
                                             size_t size, const struct clst_evidence_input *in,
                                             const struct sevsnp_roots *roots,
                                             struct clst_err *err);

/* The cache of verified chains (bounded, thread-safe; keyed by the SHA-256 of the leaf and
 * intermediate DER and of the ARK). */
#define SEVSNP_CACHE_SLOTS 32
void evidence_sevsnp_cache_clear(void);
void evidence_sevsnp_cache_stats(uint64_t *out_hits, uint64_t *out_misses);

/* Claim names (the cloud attestation service's, for SEV-SNP VMs) and this build's extras. */
#define SEVSNP_ATTESTATION_TYPE         "sevsnpvm"
#define SEVSNP_CLAIM_AUTHOR_KEY_DIGEST  "x-ms-sevsnpvm-authorkeydigest"
#define SEVSNP_CLAIM_BOOTLOADER_SVN     "x-ms-sevsnpvm-bootloader-svn"
#define SEVSNP_CLAIM_FAMILY_ID          "x-ms-sevsnpvm-familyId"
#define SEVSNP_CLAIM_GUEST_SVN          "x-ms-sevsnpvm-guestsvn"
#define SEVSNP_CLAIM_HOST_DATA          "x-ms-sevsnpvm-hostdata"
#define SEVSNP_CLAIM_ID_KEY_DIGEST      "x-ms-sevsnpvm-idkeydigest"
#define SEVSNP_CLAIM_IMAGE_ID           "x-ms-sevsnpvm-imageId"
#define SEVSNP_CLAIM_IS_DEBUGGABLE      "x-ms-sevsnpvm-is-debuggable"
#define SEVSNP_CLAIM_LAUNCH_MEASUREMENT "x-ms-sevsnpvm-launchmeasurement"
#define SEVSNP_CLAIM_MICROCODE_SVN      "x-ms-sevsnpvm-microcode-svn"
#define SEVSNP_CLAIM_MIGRATION_ALLOWED  "x-ms-sevsnpvm-migration-allowed"
#define SEVSNP_CLAIM_REPORT_DATA        "x-ms-sevsnpvm-reportdata"
#define SEVSNP_CLAIM_REPORT_ID          "x-ms-sevsnpvm-reportid"
#define SEVSNP_CLAIM_SMT_ALLOWED        "x-ms-sevsnpvm-smt-allowed"
#define SEVSNP_CLAIM_SNPFW_SVN          "x-ms-sevsnpvm-snpfw-svn"
#define SEVSNP_CLAIM_TEE_SVN            "x-ms-sevsnpvm-tee-svn"
#define SEVSNP_CLAIM_VMPL               "x-ms-sevsnpvm-vmpl"
#define SEVSNP_CLAIM_X_REPORT_VERSION   "x-cloister-sevsnpvm-report-version"
#define SEVSNP_CLAIM_X_SIGNING_KEY      "x-cloister-sevsnpvm-signing-key" /* "vcek" / "vlek" */
#define SEVSNP_CLAIM_X_PRODUCT          "x-cloister-sevsnpvm-product"     /* v3+ only */
#define SEVSNP_CLAIM_X_FMC_SVN          "x-cloister-sevsnpvm-fmc-svn"     /* Turin only */
#define SEVSNP_CLAIM_X_CHIP_ID          "x-cloister-sevsnpvm-chipid"
#define SEVSNP_CLAIM_X_POLICY           "x-cloister-sevsnpvm-policy"        /* integer */
#define SEVSNP_CLAIM_X_PLATFORM_INFO    "x-cloister-sevsnpvm-platform-info" /* integer */

extern const struct evidence_ops evidence_sevsnp_ops;

#endif
