/*
 * Inside the evidence component: the Azure confidential-VM kind ("azure-vtpm",
 * docs/evidence-azure.md). Not a public header; the unit tests and the fuzz harness include it to
 * reach the parsers and to verify against synthetic AMD roots (production only ever uses the ARKs
 * compiled into amd_roots.c).
 *
 * An Azure CVM proves itself with two things that the guest reads from its vTPM:
 *   - the HCL report (vTPM NV index 0x01400001): a header, the hardware report (an SEV-SNP
 *     ATTESTATION_REPORT; TDX is not handled yet), the IGVM request data, and the "variable data",
 *     a JSON document holding the vTPM attestation key HCLAkPub (an RSA JWK). The hardware report's
 *     REPORT_DATA is SHA-256(variable data) || 32 zero bytes, so the AMD-signed report vouches for
 *     the AK;
 *   - a TPM2_Quote (TPMS_ATTEST) signed by that AK (raw RSASSA-PKCS1-v1_5 SHA-256) over the
 *     SHA-256 PCR bank, with the verifier's nonce in extraData.
 * The layout is shared/vectors LAYOUTS.md section 3, checked on the stored vectors.
 *
 * Files: azure_vtpm.c (container and HCL parse, verify, claims, the evidence_ops). The SNP report
 * is parsed and verified by the sevsnp kind's code, the TPM quote by the tpm kind's (tpm2-tss
 * unmarshalling, signature, PCR selection and digest).
 */
#ifndef CLST_EVIDENCE_AZURE_INT_H
#define CLST_EVIDENCE_AZURE_INT_H

#include "evidence/evidence_int.h"
#include "evidence/sevsnp_int.h"
#include "evidence/tpm_int.h"

/* ---- the HCL report (little-endian) --------------------------------------------------------- */

#define AZURE_HCL_MAGIC         "HCLA"
#define AZURE_HCL_HEADER_SIZE   0x20  /* magic, version, report_size, request_type, status, 12 B */
#define AZURE_HCL_HW_OFFSET     0x20  /* the hardware report */
#define AZURE_HCL_HW_SIZE       0x4A0 /* room for an SNP report (a TDREPORT is 1024 B + padding) */
#define AZURE_HCL_IGVM_OFFSET   0x4C0 /* IGVM request data: 5 x u32 */
#define AZURE_HCL_IGVM_HDR_SIZE 20
#define AZURE_HCL_VAR_OFFSET    0x4D4 /* the variable data (JSON) */
#define AZURE_HCL_MIN_VERSION   1
#define AZURE_HCL_MAX_VERSION   2
#define AZURE_HCL_REQUEST_TYPE  2 /* "get attestation report" */
#define AZURE_IGVM_VERSION      1
#define AZURE_REPORT_TYPE_SNP   2
#define AZURE_REPORT_TYPE_TDX   4
#define AZURE_HASH_TYPE_SHA256  1
#define AZURE_HCL_MAX_SIZE      (16u * 1024) /* the NV buffer is 2600 bytes today */
#define AZURE_VAR_MAX_SIZE      (AZURE_HCL_MAX_SIZE - AZURE_HCL_VAR_OFFSET)

/* ---- the evidence container (JSON) ---------------------------------------------------------- */

#define AZURE_EVIDENCE_MAX_SIZE (256u * 1024) /* v0 writes every byte as a JSON number */
#define AZURE_TPM_SIG_MAX_SIZE  (6u + TPM2_MAX_RSA_KEY_BYTES) /* RSA-4096 as a TPMT_SIGNATURE */
#define AZURE_VCEK_MAX_SIZE     (16u * 1024) /* one certificate, or a small PEM bundle */
#define AZURE_AK_KID            "HCLAkPub"

/* The HCL report's fields in host order (reserved bytes checked to be zero, not kept). */
struct azure_hcl {
    uint32_t version;
    uint32_t report_size;
    uint32_t request_type;
    uint32_t status;
    uint32_t data_size;
    uint32_t igvm_version;
    uint32_t report_type;
    uint32_t hash_type;
    uint32_t var_size;
    struct sevsnp_report snp; /* report_type == AZURE_REPORT_TYPE_SNP */
};

/* What verify established, for the claim mapper (reached through a pointer the parser sets). */
struct azure_result {
    bool done;
    uint8_t ak_spki_sha256[CLST_SHA256_SIZE];
};

/* Parsed evidence: owned copies; nothing points into the input. */
struct azure_evidence {
    uint32_t container_version; /* 0: trustee v0 (byte arrays); 1, 2: strings */
    uint8_t hcl_raw[AZURE_HCL_MAX_SIZE];
    size_t hcl_size;
    struct azure_hcl hcl;
    struct sevsnp_evidence snp;        /* hcl.snp, in the shape the sevsnp verifier takes */
    uint8_t vcek[AZURE_VCEK_MAX_SIZE]; /* "vcek": DER or PEM (vcek_pem), may be empty */
    size_t vcek_size;
    bool vcek_pem;
    uint8_t tpm_sig[AZURE_TPM_SIG_MAX_SIZE]; /* raw RSASSA signature, or a TPMT_SIGNATURE */
    size_t tpm_sig_size;
    /* The quote in the tpm kind's shape (quote bytes, TPMS_ATTEST, the sha256 bank of PCR values,
     * the signature as an RSASSA-SHA256 TPMT_SIGNATURE), so its verifier checks it. */
    struct tpm_evidence tpm;
    struct azure_result result_store;
    struct azure_result *result; /* == &result_store once parsed */
};

/*
 * Parses an HCL report buffer (pure: no allocation, no crypto). `size` may exceed report_size:
 * the vTPM NV buffer is zero-padded, and those bytes must be zero. CLST_E_MALFORMED, naming the
 * offset, for a wrong magic, an unknown version, request type, IGVM version or hash type, a
 * non-zero status or reserved byte, sizes that disagree (report_size = 0x4D4 + var_size,
 * data_size = 20 + var_size), truncation, an SNP report that does not parse, non-zero padding.
 * A TDX report type parses (the TDREPORT is not kept) and is refused by verify.
 */
enum clst_status evidence_azure_hcl_parse(const uint8_t *data, size_t size, struct azure_hcl *out,
                                          struct clst_err *err);

/*
 * Parses the evidence container (docs/evidence-azure.md): JSON, strict (unknown or duplicate
 * members refused), then the HCL report and the TPMS_ATTEST (libtss2-mu). On failure *out is
 * zeroed (it is large: allocate it).
 */
enum clst_status evidence_azure_parse(const uint8_t *data, size_t size, struct azure_evidence *out,
                                      struct clst_err *err);

/*
 * The verify step against an explicit AMD root set (production: the built-in roots; tests:
 * synthetic ones, see evidence_sevsnp_verify_with). Order: the hardware report (VCEK chain to the
 * ARK, signature, SNP policy), the binding of the variable data to REPORT_DATA, HCLAkPub from the
 * variable data, the quote signed by HCLAkPub, the PCR selection and digest. The nonce and the
 * runtime-data binding are the framework's checks (report_data = the quote's extraData).
 */
enum clst_status evidence_azure_verify_with(const struct azure_evidence *ev,
                                            const struct clst_evidence_input *in,
                                            const struct sevsnp_roots *roots, struct clst_err *err);

/* Builds the RSA public key of the "HCLAkPub" JWK of a variable-data JSON document. */
enum clst_status evidence_azure_ak_from_var(const uint8_t *var, size_t var_size, EVP_PKEY **out,
                                            struct clst_err *err);

/* Claim names: the cloud attestation service's "azurevm" type, and this build's extras. */
#define AZURE_ATTESTATION_TYPE    CLST_AZURE_ATTESTATION_TYPE
#define AZURE_CLAIM_VMID          CLST_AZURE_CLAIM_VMID
#define AZURE_CLAIM_ATTESTED_PCRS CLST_AZURE_CLAIM_ATTESTED_PCRS
#define AZURE_CLAIM_SECUREBOOT    "secureboot"
#define AZURE_CLAIM_ISOLATION_TEE CLST_AZURE_CLAIM_ISOLATION_TEE
#define AZURE_CLAIM_RUNTIME       "x-ms-runtime"
#define AZURE_CLAIM_X_HCL_VERSION "x-cloister-azurevm-hcl-version"
#define AZURE_CLAIM_X_TPM_NONCE   "x-cloister-azurevm-tpm-nonce"
#define AZURE_CLAIM_X_PCRS        "x-cloister-azurevm-pcrs"
#define AZURE_CLAIM_X_AK_PUB_HASH "x-cloister-azurevm-ak-pub-hash"

extern const struct evidence_ops evidence_azure_ops;

#endif
