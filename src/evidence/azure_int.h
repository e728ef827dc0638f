/*
 * Inside the evidence component: the Azure confidential-VM kind ("azure-vtpm",
 * docs/evidence-azure.md). Not a public header; the unit tests and the fuzz harness include it to
 * reach the parsers and to verify against synthetic AMD roots (production only ever uses the ARKs
 * compiled into amd_roots.c).
 *
 * An Azure CVM proves itself with two things that the guest reads from its vTPM:
 *   - the HCL report (vTPM NV index 0x01400001): a header, the hardware report (an SEV-SNP
 *     ATTESTATION_REPORT, or a TDX TDREPORT), the IGVM request data, and the "variable data",
 *     a JSON document holding the vTPM attestation key HCLAkPub (an RSA JWK). The hardware report's
 *     REPORT_DATA is SHA-256(variable data) || 32 zero bytes, so the AMD-signed report vouches for
 *     the AK;
 *   - a TPM2_Quote (TPMS_ATTEST) signed by that AK (raw RSASSA-PKCS1-v1_5 SHA-256) over the
 *     SHA-256 PCR bank, with the verifier's nonce in extraData.
 * On a TDX CVM the TDREPORT is only MAC'd (checkable by the TDX module of that machine, not by
 * us), so the guest also sends the TD quote the host's quote service made of it (Azure IMDS
 * /acc/tdquote): the quote is verified with Intel DCAP (dcap_verify), its TD body must equal the
 * TDREPORT's fields, and its REPORT_DATA is SHA-256(variable data) || 32 zero bytes. A TDREPORT is
 * never trusted by itself: every claim comes from the verified quote.
 * The layout is shared/vectors LAYOUTS.md section 3, checked on the stored vectors.
 *
 * Files: azure_vtpm.c (container and HCL parse, verify, claims, the evidence_ops). The SNP report
 * is parsed and verified by the sevsnp kind's code, the TPM quote by the tpm kind's (tpm2-tss
 * unmarshalling, signature, PCR selection and digest).
 */
#ifndef CLST_EVIDENCE_AZURE_INT_H
#define CLST_EVIDENCE_AZURE_INT_H

#include "evidence/dcap_int.h"
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

/* ---- the TDREPORT (TDREPORT_STRUCT, 1024 bytes; Intel TDX module ABI) ------------------------ */

#define AZURE_TDREPORT_SIZE     1024
#define AZURE_TDREPORT_TYPE_TDX 0x81 /* REPORTTYPE.TYPE */
#define AZURE_TDREPORT_MAX_VER  1    /* REPORTTYPE.VERSION: 0 (TDX 1.0) or 1 (TDX 1.5) */
#define AZURE_TEE_TCB_INFO_OFF  256
#define AZURE_TEE_TCB_INFO_SIZE 239
#define AZURE_TDINFO_OFF        512
#define AZURE_TDINFO_SIZE       512

/* The TDREPORT's fields. tee_tcb_info and tdinfo keep the raw bytes whose SHA-384 the REPORTMAC
 * carries (tee_tcb_info_hash, tee_info_hash). Reserved ranges are checked to be zero. */
struct azure_tdreport {
    uint8_t subtype;
    uint8_t version;
    uint8_t cpusvn[16];
    uint8_t tee_tcb_info_hash[48];
    uint8_t tee_info_hash[48];
    uint8_t report_data[64];
    uint8_t mac[32]; /* kept, never checked: only the TDX module of that machine can */
    uint8_t tee_tcb_info[AZURE_TEE_TCB_INFO_SIZE];
    uint8_t tdinfo[AZURE_TDINFO_SIZE];
    /* TEE_TCB_INFO */
    uint8_t tcb_valid[8];
    uint8_t tee_tcb_svn[16];
    uint8_t mrseam[48];
    uint8_t mrsignerseam[48];
    uint8_t seam_attributes[8];
    uint8_t tee_tcb_svn2[16]; /* TDX 1.5 */
    /* TDINFO */
    uint8_t td_attributes[8];
    uint8_t xfam[8];
    uint8_t mrtd[48];
    uint8_t mrconfigid[48];
    uint8_t mrowner[48];
    uint8_t mrownerconfig[48];
    uint8_t rtmr[4][48];
    uint8_t servtd_hash[48]; /* TDX 1.5 */
};

/* Parses the 1024-byte TDREPORT (pure). CLST_E_MALFORMED, naming the offset inside the TDREPORT,
 * for a report type that is not TDX, an unknown subtype or version, non-zero reserved bytes. */
enum clst_status evidence_azure_tdreport_parse(const uint8_t *data, size_t size,
                                               struct azure_tdreport *out, struct clst_err *err);

/*
 * The TDX binding, on parsed inputs (pure apart from hashing): `q` is a TD quote (which the
 * caller has verified with dcap_verify before trusting any of this), `td` the HCL's TDREPORT and
 * `var` the HCL variable data. In order (the first failure is CLST_E_VERIFY naming the field):
 *   1. the TDREPORT is self-consistent: tee_tcb_info_hash == SHA-384(TEE_TCB_INFO) and
 *      tee_info_hash == SHA-384(TDINFO);
 *   2. the quote describes this TDREPORT: TEE_TCB_SVN, MRSEAM, MRSIGNERSEAM, SEAM attributes, TD
 *      attributes, XFAM, MRTD, MRCONFIGID, MROWNER, MROWNERCONFIG, RTMR0..3 and REPORTDATA are
 *      equal (and, for a TD 1.5 body, TEE_TCB_SVN2 and MRSERVICETD == SERVTD_HASH);
 *   3. the quote vouches for the variable data: REPORTDATA == SHA-256(var) || 32 zero bytes.
 */
enum clst_status evidence_azure_tdx_bind(const struct azure_tdreport *td,
                                         const struct dcap_quote *q, const uint8_t *var,
                                         size_t var_size, struct clst_err *err);

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
    struct azure_tdreport td; /* report_type == AZURE_REPORT_TYPE_TDX */
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
    /* "td_quote" (TDX CVMs only; required there): the quote as given and parsed. */
    uint8_t td_quote_raw[DCAP_QUOTE_MAX_SIZE];
    size_t td_quote_size;
    struct dcap_quote tdq; /* tdq.result == &tdq.result_store once parsed */
    struct azure_result result_store;
    struct azure_result *result; /* == &result_store once parsed */
};

/*
 * Parses an HCL report buffer (pure: no allocation, no crypto). `size` may exceed report_size:
 * the vTPM NV buffer is zero-padded, and those bytes must be zero. CLST_E_MALFORMED, naming the
 * offset, for a wrong magic, an unknown version, request type, IGVM version or hash type, a
 * non-zero status or reserved byte, sizes that disagree (report_size = 0x4D4 + var_size,
 * data_size = 20 + var_size), truncation, an SNP report or TDREPORT that does not parse, non-zero
 * padding.
 */
enum clst_status evidence_azure_hcl_parse(const uint8_t *data, size_t size, struct azure_hcl *out,
                                          struct clst_err *err);

/*
 * Parses the evidence container (docs/evidence-azure.md): JSON, strict (unknown or duplicate
 * members refused), then the HCL report, the TPMS_ATTEST (libtss2-mu) and, for a TDX HCL report,
 * the TD quote ("td_quote", required there and refused otherwise; "vcek" is refused for TDX). On
 * failure *out is zeroed (it is large: allocate it).
 */
enum clst_status evidence_azure_parse(const uint8_t *data, size_t size, struct azure_evidence *out,
                                      struct clst_err *err);

/*
 * The verify step against explicit roots (production: the built-in AMD ARKs and Intel SGX Root
 * CA; tests: synthetic AMD roots, see evidence_sevsnp_verify_with). SNP inside: the hardware
 * report (VCEK chain to the ARK, signature, SNP policy, VMPL 0), the binding of the variable data
 * to REPORT_DATA. TDX inside: the TD quote by dcap_verify against `intel_roots`, in->at,
 * in->tcb_statuses and in->endorsements (the DCAP collateral bundle), then
 * evidence_azure_tdx_bind. Then, for both: HCLAkPub from the variable data, the quote signed by
 * HCLAkPub, the PCR selection and digest. The nonce and the runtime-data binding are the
 * framework's checks (report_data = the vTPM quote's extraData).
 */
enum clst_status evidence_azure_verify_with(const struct azure_evidence *ev,
                                            const struct clst_evidence_input *in,
                                            const struct sevsnp_roots *roots,
                                            STACK_OF(X509) *intel_roots, struct clst_err *err);

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
