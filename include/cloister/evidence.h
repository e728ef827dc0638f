/*
 * Cloister evidence: one parser + verifier + claim mapper per TEE kind, behind one entry point.
 *
 *   clst_evidence_verify(kind, &input, &claims, &err)
 *
 * runs, for every kind, the same pipeline: (1) the evidence size is checked against the kind's
 * hard limit before a single byte is parsed (CLST_E_LIMIT); (2) the kind's parser copies every
 * field through the bounds-checked cursor into an owned, host-order struct (it allocates nothing
 * and never overlays structs on the input); (3) the kind's verifier checks certificates against
 * the caller's trust roots at the caller's time and the signature over the original bytes;
 * (4) the framework checks the debug flag and the report-data binding; (5) only then does the
 * claim mapper turn the parsed struct into a normalized claim set (a JSON object).
 *
 * Nothing here reads the wall clock, the network or the file system: time, trust roots and
 * collateral are inputs. Failures return CLST_E_MALFORMED (the bytes do not parse),
 * CLST_E_VERIFY (chain, signature, debug flag or binding), CLST_E_LIMIT (too large) or
 * CLST_E_INVAL (the caller's input is inconsistent), with a message that names what failed.
 *
 * The `sim` kind is the development TEE (docs/evidence-sim.md): its evidence is signed by a
 * locally generated sim platform key and its claims use their own names (x-cloister-sim-*,
 * attestation type "sim") so that no policy written for hardware can ever match them. It protects
 * against other unprivileged processes, not against root, the kernel or the host.
 */
#ifndef CLOISTER_EVIDENCE_H
#define CLOISTER_EVIDENCE_H

#include <cloister/core.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

/* ---- kinds ---------------------------------------------------------------------------------- */

enum clst_evidence_kind {
    CLST_EVIDENCE_SIM = 1,    /* "sim": development-only software TEE */
    CLST_EVIDENCE_SEVSNP,     /* "sevsnp": AMD SEV-SNP attestation report */
    CLST_EVIDENCE_TDX,        /* "tdx": Intel TDX quote v4/v5 */
    CLST_EVIDENCE_SGX,        /* "sgx": Intel SGX ECDSA quote v3 */
    CLST_EVIDENCE_TPM,        /* "tpm": TPM 2.0 quote */
    CLST_EVIDENCE_AZURE_VTPM, /* "azure-vtpm": Azure CVM vTPM + HCL report */
    CLST_EVIDENCE_NITRO,      /* "nitro": AWS Nitro Enclaves attestation document */
};

/* The kind's name ("sim", "sevsnp", "tdx", "sgx", "tpm", "azure-vtpm", "nitro"), or NULL. */
const char *clst_evidence_kind_name(enum clst_evidence_kind kind);
/* Parses a kind name (case-sensitive); CLST_E_NOTFOUND for an unknown name. */
enum clst_status clst_evidence_kind_parse(const char *name, enum clst_evidence_kind *out,
                                          struct clst_err *err);
/* True when this build has a verifier for `kind` (sim, sevsnp, tdx, sgx, tpm, nitro). */
bool clst_evidence_kind_supported(enum clst_evidence_kind kind);
/* The kind's hard limit on evidence size in bytes, or 0 when the kind is not supported. */
size_t clst_evidence_max_size(enum clst_evidence_kind kind);

/* ---- verification --------------------------------------------------------------------------- */

/* Report data is 64 bytes for every kind that has a fixed-size field (sim, SNP, TDX, SGX). */
#define CLST_EVIDENCE_REPORT_DATA_SIZE 64

/*
 * What the verifier is given. Zero-initialize it and set what applies; pointers are borrowed for
 * the duration of the call.
 */
struct clst_evidence_input {
    /* The evidence bytes exactly as the TEE produced them (untrusted). */
    const uint8_t *evidence;
    size_t evidence_size;
    /* Kind-specific collateral that does not travel inside the evidence (a VCEK certificate, TCB
     * info, ...); untrusted. The sim kind takes none: it must be empty. */
    const uint8_t *endorsements;
    size_t endorsements_size;
    /* Optional: when non-NULL, the evidence's report data must equal these bytes exactly (same
     * length, same bytes). */
    const uint8_t *report_data;
    size_t report_data_size;
    /* Optional: when non-NULL (size may be 0), SHA-256(runtime_data) must equal the first 32
     * bytes of the evidence's report data (the binding of ARCHITECTURE.md section 4). */
    const uint8_t *runtime_data;
    size_t runtime_data_size;
    /* Trust anchors (required, at least one): evidence is accepted only when its signing
     * certificate chains to one of them. */
    STACK_OF(X509) *roots;
    /* Optional revocation lists, checked for every certificate of the chain when non-NULL. */
    STACK_OF(X509_CRL) *crls;
    /* Verification time, seconds since the Unix epoch (certificate validity is judged at it). */
    int64_t at;
    /* Accept evidence from a debuggable TEE (its memory is readable by the host). Off by
     * default; for development only. */
    bool allow_debug;
    /* DCAP kinds (tdx, sgx): the platform TCB statuses accepted, as Intel names them,
     * comma-separated ("UpToDate,SWHardeningNeeded"; also ConfigurationNeeded,
     * ConfigurationAndSWHardeningNeeded, OutOfDate, OutOfDateConfigurationNeeded). NULL or "":
     * UpToDate only. Revoked is never accepted. Ignored by the other kinds. */
    const char *tcb_statuses;
    /* sevsnp: verification options (borrowed), a JSON object with the members of
     * docs/evidence-sevsnp.md (allow_migration_agent, allow_smt, max_vmpl, min_tcb, product,
     * stepping); unknown members are refused (CLST_E_INVAL) so a misspelt option never weakens
     * a check. NULL: the strict defaults. Ignored by the other kinds. */
    const json_t *options;
    /* tpm: an enrolled attestation key (borrowed; docs/evidence-tpm.md). When set, the quote
     * must be signed by exactly this key, no certificate chain is checked and `roots` may be
     * NULL or empty. When NULL, the AK certificate in the evidence must chain to `roots` at
     * `at`. Ignored by the other kinds. */
    EVP_PKEY *tpm_ak;
    /* tpm: accept quotes over a SHA-1 PCR bank (off by default: SHA-1 is collision-prone).
     * Ignored by the other kinds. */
    bool tpm_allow_sha1;
};

/*
 * Verifies evidence of `kind` and, on success, stores a new JSON object of claims in *out_claims
 * (free with json_decref). Every kind's claim set carries "x-ms-attestation-type". On failure
 * *out_claims is untouched and err says which check failed. CLST_E_NOTFOUND when this build has
 * no verifier for `kind`.
 */
enum clst_status clst_evidence_verify(enum clst_evidence_kind kind,
                                      const struct clst_evidence_input *in, json_t **out_claims,
                                      struct clst_err *err);

/*
 * The report data that binds runtime data to evidence: SHA-256(runtime_data) followed by 32 zero
 * bytes. A TEE puts this in its report; the verifier is given runtime_data.
 */
enum clst_status clst_evidence_report_data_bind(const uint8_t *runtime_data,
                                                size_t runtime_data_size,
                                                uint8_t out[static CLST_EVIDENCE_REPORT_DATA_SIZE]);

/* ---- the sim kind: layout (docs/evidence-sim.md) -------------------------------------------- */

#define CLST_SIM_MAGIC_SIZE       4 /* "CSIM" */
#define CLST_SIM_VERSION          1
#define CLST_SIM_SIG_ALG_ES384    1 /* ECDSA P-384 over SHA-384, raw r || s */
#define CLST_SIM_FLAG_DEBUG       0x00000001u
#define CLST_SIM_MEASUREMENT_SIZE 48
#define CLST_SIM_SIGNER_SIZE      32
#define CLST_SIM_PLATFORM_ID_SIZE 16
#define CLST_SIM_REPORT_DATA_SIZE 64
#define CLST_SIM_REPORT_SIZE      256 /* the fixed-layout report */
#define CLST_SIM_CERT_LEN_SIZE    2   /* little-endian length of the platform certificate */
#define CLST_SIM_CERT_MAX_SIZE    2048
#define CLST_SIM_SIGNATURE_SIZE   96 /* r || s, 48 bytes each, big-endian */
#define CLST_SIM_EVIDENCE_MIN_SIZE                                                                 \
    (CLST_SIM_REPORT_SIZE + CLST_SIM_CERT_LEN_SIZE + 1 + CLST_SIM_SIGNATURE_SIZE)
#define CLST_SIM_EVIDENCE_MAX_SIZE                                                                 \
    (CLST_SIM_REPORT_SIZE + CLST_SIM_CERT_LEN_SIZE + CLST_SIM_CERT_MAX_SIZE +                      \
     CLST_SIM_SIGNATURE_SIZE)
#define CLST_SIM_SEALING_SECRET_SIZE 32

/* Claim names of the sim kind (attestation type "sim"; never a hardware claim name). */
#define CLST_CLAIM_ATTESTATION_TYPE  "x-ms-attestation-type"
#define CLST_SIM_ATTESTATION_TYPE    "sim"
#define CLST_SIM_CLAIM_MRENCLAVE     "x-cloister-sim-mrenclave"      /* hex, 96 chars */
#define CLST_SIM_CLAIM_MRSIGNER      "x-cloister-sim-mrsigner"       /* hex, 64 chars */
#define CLST_SIM_CLAIM_PRODUCT_ID    "x-cloister-sim-product-id"     /* integer */
#define CLST_SIM_CLAIM_SVN           "x-cloister-sim-svn"            /* integer */
#define CLST_SIM_CLAIM_IS_DEBUGGABLE "x-cloister-sim-is-debuggable"  /* boolean */
#define CLST_SIM_CLAIM_REPORT_DATA   "x-cloister-sim-report-data"    /* hex, 128 chars */
#define CLST_SIM_CLAIM_PLATFORM_ID   "x-cloister-sim-platform-id"    /* hex, 32 chars */
#define CLST_SIM_CLAIM_VERSION       "x-cloister-sim-report-version" /* integer */

/* The report's fields in host order (reserved fields are checked to be zero and not kept). */
struct clst_sim_report {
    uint16_t version;
    uint16_t sig_alg;
    uint32_t flags;
    uint16_t product_id;
    uint16_t svn;
    uint8_t mrenclave[CLST_SIM_MEASUREMENT_SIZE];
    uint8_t mrsigner[CLST_SIM_SIGNER_SIZE];
    uint8_t platform_id[CLST_SIM_PLATFORM_ID_SIZE];
    uint8_t report_data[CLST_SIM_REPORT_DATA_SIZE];
};

/* Parsed sim evidence: owned copies of every part; nothing points into the input. */
struct clst_sim_evidence {
    struct clst_sim_report report;
    uint8_t cert_der[CLST_SIM_CERT_MAX_SIZE]; /* the platform certificate, DER */
    size_t cert_size;
    uint8_t signature[CLST_SIM_SIGNATURE_SIZE];
    size_t signed_size; /* bytes [0, signed_size) of the evidence are signed */
};

/*
 * Parses sim evidence (pure: allocates nothing, verifies nothing). CLST_E_LIMIT when `size`
 * exceeds CLST_SIM_EVIDENCE_MAX_SIZE; CLST_E_MALFORMED, naming the offset, for a wrong magic,
 * unknown version or signature algorithm, reserved flag bits or bytes that are not zero, a bad
 * certificate length, truncation or trailing bytes. *out is written only on success.
 */
enum clst_status clst_evidence_sim_parse(const uint8_t *data, size_t size,
                                         struct clst_sim_evidence *out, struct clst_err *err);

/* ---- the sim platform ----------------------------------------------------------------------- */

/*
 * A sim platform is a directory (mode 0700) holding:
 *   root.pem           the sim root CA certificate (EC P-384, self-signed; give it to verifiers)
 *   root-key.pem       its private key (0600)
 *   platform.pem       the platform certificate (EC P-384, signed by the root; its subject's
 *                      serialNumber is the hex platform id)
 *   platform-key.pem   the platform's report-signing key (0600)
 *   sealing.key        32 random bytes, the platform's sealing secret (0600)
 * Every file is written atomically (temporary file, fsync, rename).
 */
#define CLST_SIM_ROOT_FILE         "root.pem"
#define CLST_SIM_ROOT_KEY_FILE     "root-key.pem"
#define CLST_SIM_PLATFORM_FILE     "platform.pem"
#define CLST_SIM_PLATFORM_KEY_FILE "platform-key.pem"
#define CLST_SIM_SEALING_FILE      "sealing.key"

/* Validity of the generated certificates, counted from the `now` given to create. */
#define CLST_SIM_ROOT_VALIDITY     (10 * 366 * 86400LL)
#define CLST_SIM_PLATFORM_VALIDITY (2 * 366 * 86400LL)

struct clst_sim_platform;

/*
 * Creates a sim platform in `dir` (created with mode 0700 when missing; an existing directory must
 * be ours and not accessible to group or others). Certificates are valid from now - 5 minutes.
 * CLST_E_CONFLICT when `dir` already holds platform files and `force` is false; with `force`
 * they are replaced.
 */
enum clst_status clst_evidence_sim_platform_create(const char *dir, int64_t now, bool force,
                                                   struct clst_err *err);

/*
 * Loads a platform created by clst_evidence_sim_platform_create. Refuses (CLST_E_DENIED) a
 * directory or private file that group or others may access, or that another user owns; checks
 * that the platform key matches its certificate.
 */
enum clst_status clst_evidence_sim_platform_load(const char *dir, struct clst_sim_platform **out,
                                                 struct clst_err *err);
void clst_evidence_sim_platform_free(struct clst_sim_platform *p);

/* The root CA certificate (owned by the platform; do not free). */
X509 *clst_evidence_sim_platform_root(const struct clst_sim_platform *p);
/* The platform id (16 bytes, owned by the platform). */
const uint8_t *clst_evidence_sim_platform_id(const struct clst_sim_platform *p);
/* The 32-byte sealing secret (in secret memory owned by the platform; never log it). */
const uint8_t *clst_evidence_sim_platform_sealing_secret(const struct clst_sim_platform *p);

/* What the sim TEE measured about an enclave (the identity fields of a report). */
struct clst_sim_identity {
    uint8_t mrenclave[CLST_SIM_MEASUREMENT_SIZE];
    uint8_t mrsigner[CLST_SIM_SIGNER_SIZE];
    uint16_t product_id;
    uint16_t svn;
    bool debug;
};

/*
 * Produces sim evidence for `id` and `report_data`, signed by the platform key; the evidence bytes
 * are appended to `out` (whose cap must allow CLST_SIM_EVIDENCE_MAX_SIZE more bytes).
 */
enum clst_status
clst_evidence_sim_report_create(const struct clst_sim_platform *p,
                                const struct clst_sim_identity *id,
                                const uint8_t report_data[static CLST_SIM_REPORT_DATA_SIZE],
                                struct clst_buf *out, struct clst_err *err);

/* ---- vendor roots and collateral ------------------------------------------------------------ */

/* The vendor roots compiled into the binary (never taken from evidence): AMD ARK Milan, Genoa and
 * Turin; the Intel SGX Root CA; the AWS Nitro Enclaves Root G1. *out is a new stack. */
enum clst_status clst_evidence_sevsnp_roots(STACK_OF(X509) **out, struct clst_err *err);
enum clst_status clst_evidence_intel_roots(STACK_OF(X509) **out, struct clst_err *err);
enum clst_status clst_evidence_nitro_roots(STACK_OF(X509) **out, struct clst_err *err);
/* Reads a DCAP collateral directory (docs/evidence-dcap.md) into the endorsements bundle. */
enum clst_status clst_evidence_dcap_collateral_load(const char *dir, struct clst_buf *out,
                                                    struct clst_err *err);

/* ---- the azure-vtpm kind (docs/evidence-azure.md) ------------------------------------------ */

/*
 * Azure confidential VMs: the HCL report (vTPM NV index 0x01400001) with its SEV-SNP report, the
 * HCLAkPub attestation key in its variable data (bound to REPORT_DATA), and the vTPM quote signed
 * by that key. Input: `roots` = clst_evidence_sevsnp_roots() (the AMD ARKs), `endorsements` = an
 * optional VCEK chain (PEM or DER), `report_data` = the expected quote nonce (extraData),
 * `runtime_data` bound to the nonce's first 32 bytes, `options` = the sevsnp options. Claims: the
 * cloud service's "azurevm" type with the SNP claims nested under "x-ms-isolation-tee".
 */
#define CLST_AZURE_ATTESTATION_TYPE    "azurevm"
#define CLST_AZURE_CLAIM_ISOLATION_TEE "x-ms-isolation-tee" /* object: the hardware verdict */
#define CLST_AZURE_CLAIM_VMID          "x-ms-azurevm-vmid"
#define CLST_AZURE_CLAIM_ATTESTED_PCRS "x-ms-azurevm-attested-pcrs"

/*
 * Which hardware report the evidence's HCL report holds: CLST_EVIDENCE_SEVSNP or
 * CLST_EVIDENCE_TDX (parse only, nothing verified). A TDX CVM's evidence carries its TD quote
 * ("td_quote") and is verified with `endorsements` = the Intel DCAP collateral bundle
 * (clst_evidence_dcap_collateral_load), `tcb_statuses` as for "tdx", against the Intel SGX Root
 * CA compiled in; an SEV-SNP one with the VCEK chain as above. CLST_E_MALFORMED / CLST_E_LIMIT as
 * clst_evidence_verify would say for the same bytes.
 */
enum clst_status clst_evidence_azure_tee_kind(const uint8_t *evidence, size_t size,
                                              enum clst_evidence_kind *out, struct clst_err *err);

/* ---- collection through configfs-tsm (Linux; src/evidence/configfs_tsm.c) ------------------- */

/*
 * The kernel's configfs-tsm report interface (Documentation/ABI/testing/configfs-tsm-report):
 * a report entry is a directory under /sys/kernel/config/tsm/report; writing `inblob` (up to 64
 * bytes: the report data) and the optional `privlevel` (0..3) makes the TEE's guest driver produce
 * `outblob` (an SEV-SNP report, or a TDX quote) and `auxblob` (SEV-SNP: the certificate table,
 * possibly empty); `provider` names the driver ("sev_guest", "tdx_guest"); `generation` counts
 * writes to the entry, so that a reader can tell whether another process wrote between its own
 * writes and its read of outblob.
 */
#define CLST_TSM_DEFAULT_DIR  "/sys/kernel/config/tsm/report"
#define CLST_TSM_INBLOB_SIZE  64
#define CLST_TSM_OUTBLOB_MAX  (32u * 1024) /* the kernel's TSM_OUTBLOB_MAX */
#define CLST_TSM_AUXBLOB_MAX  (32u * 1024)
#define CLST_TSM_PRIVLEVEL_MAX 3

struct clst_tsm_request {
    const char *dir;      /* the report directory; NULL: CLST_TSM_DEFAULT_DIR */
    /* The entry to use: NULL creates a fresh one (mkdir, mode 0700) and removes it afterwards
     * (rmdir); a name uses that entry, creating it only when missing, and leaves it in place. */
    const char *name;
    /* The provider the entry must name ("sev_guest", "tdx_guest"); NULL: any. */
    const char *provider;
    uint8_t inblob[CLST_TSM_INBLOB_SIZE];
    int privlevel;        /* -1: not written; else 0..CLST_TSM_PRIVLEVEL_MAX */
    bool want_auxblob;    /* read auxblob too (SEV-SNP certificates); absent counts as empty */
};

struct clst_tsm_report {
    struct clst_buf outblob;
    struct clst_buf auxblob;   /* empty unless want_auxblob and the driver gave some */
    char provider[64];
    uint64_t generation;       /* after our writes */
};

/*
 * One report: reads `generation`, writes privlevel (when >= 0) and inblob (64 bytes, one write),
 * reads outblob (and auxblob), reads `generation` again, which must equal the first value plus
 * our writes (CLST_E_CONFLICT otherwise: another writer raced us; retry), then removes the entry
 * it created. CLST_E_NOTFOUND when the directory or an attribute is missing (no configfs-tsm,
 * or no TEE guest driver), CLST_E_LIMIT when outblob/auxblob exceed their caps, CLST_E_VERIFY
 * for another provider than asked, CLST_E_IO otherwise. *out is initialized here and written
 * only on success (clst_tsm_report_cleanup it).
 */
enum clst_status clst_evidence_tsm_get(const struct clst_tsm_request *req,
                                       struct clst_tsm_report *out, struct clst_err *err);
void clst_tsm_report_cleanup(struct clst_tsm_report *r);

/* ---- collection through /dev/sev-guest (Linux; src/evidence/sev_guest.c) -------------------- */

/*
 * The SEV-SNP guest driver's ioctls (<linux/sev-guest.h>): SNP_GET_REPORT (the report) and
 * SNP_GET_EXT_REPORT (the report and the host's certificate table: VCEK/VLEK, ASK, ARK). The
 * evidence has the form the configfs-tsm path gives: the 1184-byte ATTESTATION_REPORT, then the
 * certificate table (empty when the host supplied none), which 'evidence verify --type sevsnp'
 * and POST /attest/SevSnpVm read as an extended report.
 */
#define CLST_SEV_GUEST_DEFAULT_DEV "/dev/sev-guest"
#define CLST_SEV_GUEST_REPORT_SIZE 1184         /* ATTESTATION_REPORT */
#define CLST_SEV_GUEST_CERTS_MAX   (32u * 1024) /* the sevsnp verifier's table limit */
#define CLST_SEV_GUEST_VMPL_MAX    3

struct clst_sev_guest_request {
    const char *device;                                /* NULL: CLST_SEV_GUEST_DEFAULT_DEV */
    uint8_t user_data[CLST_EVIDENCE_REPORT_DATA_SIZE]; /* REPORT_DATA, copied exactly */
    uint32_t vmpl;                                     /* 0..CLST_SEV_GUEST_VMPL_MAX */
    bool extended; /* SNP_GET_EXT_REPORT: the certificate table too */
};

struct clst_sev_guest_report {
    struct clst_buf report; /* CLST_SEV_GUEST_REPORT_SIZE bytes */
    struct clst_buf certs;  /* the certificate table (page-padded as the host gave it), or empty */
    uint32_t fw_error;      /* of the last ioctl (0 on success) */
    uint32_t vmm_error;
};

/*
 * One report. CLST_E_NOTFOUND when the device is missing (names it and configfs-tsm),
 * CLST_E_DENIED when it may not be opened, CLST_E_IO for an ioctl that failed (names the device,
 * errno, and the firmware / VMM error codes in words), CLST_E_MALFORMED for a response that is
 * not a report (non-zero status, a report size other than 1184 or larger than the response),
 * CLST_E_LIMIT when the host's certificate table would exceed CLST_SEV_GUEST_CERTS_MAX,
 * CLST_E_INVAL for a VMPL above 3. A too-small certificate buffer is retried once with the size
 * the kernel reports. *out is initialized here and written only on success
 * (clst_sev_guest_report_cleanup it).
 */
enum clst_status clst_evidence_sev_guest_get(const struct clst_sev_guest_request *req,
                                             struct clst_sev_guest_report *out,
                                             struct clst_err *err);
void clst_sev_guest_report_cleanup(struct clst_sev_guest_report *r);

#endif /* CLOISTER_EVIDENCE_H */
