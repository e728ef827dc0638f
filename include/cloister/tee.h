/*
 * Cloister tee: evidence collection on the platform we run on. Today: TPM 2.0 through tpm2-tss
 * (ESYS over any TCTI: a TPM device, the kernel resource manager, or swtpm in tests).
 *
 * The TPM collector produces the "tpm" evidence container that clst_evidence_verify() reads
 * (docs/evidence-tpm.md): it creates an attestation key (AK) as a primary key of the endorsement
 * (or owner) hierarchy from a fixed template, so the same TPM always yields the same AK and a
 * verifier can enroll its public key once; it quotes the selected PCRs with the caller's nonce as
 * qualifying data, reads the same PCRs, checks that they hash to the quote's pcrDigest (and
 * retries when a PCR changed in between), and flushes every transient object it created, on
 * success and on failure, so repeated calls never exhaust the TPM's object slots.
 *
 * tpm2-tss may log its own errors to stderr (set TSS2_LOG=all+none to silence it); this library
 * reports every failure through struct clst_err.
 */
#ifndef CLOISTER_TEE_H
#define CLOISTER_TEE_H

#include <cloister/core.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

/* ---- TPM 2.0 -------------------------------------------------------------------------------- */

/* The AK's key and signing scheme (all restricted signing keys with SHA-256). */
enum clst_tee_tpm_ak_alg {
    CLST_TEE_TPM_AK_RSASSA = 1, /* RSA-2048, RSASSA-PKCS1-v1_5 (the default) */
    CLST_TEE_TPM_AK_RSAPSS,     /* RSA-2048, RSASSA-PSS */
    CLST_TEE_TPM_AK_ECDSA,      /* ECC NIST P-256, ECDSA */
};

/* The hierarchy whose seed the AK is derived from. */
enum clst_tee_tpm_hierarchy {
    CLST_TEE_TPM_ENDORSEMENT = 1, /* the default */
    CLST_TEE_TPM_OWNER,
};

#define CLST_TEE_TPM_NONCE_MAX_SIZE    64 /* qualifying data (the quote's extraData) */
#define CLST_TEE_TPM_MAX_BANKS         4  /* sha1, sha256, sha384, sha512 */
#define CLST_TEE_TPM_PCR_COUNT         24
#define CLST_TEE_TPM_EVENTLOG_MAX_SIZE (512u * 1024)

/* A PCR selection: per bank (TPM_ALG_ID: 0x0004 sha1, 0x000B sha256, 0x000C sha384, 0x000D
 * sha512), a mask of PCRs (bit i = PCR i). */
struct clst_tee_tpm_pcrs {
    size_t bank_count;
    struct {
        uint16_t alg;
        uint32_t mask;
    } bank[CLST_TEE_TPM_MAX_BANKS];
};

/*
 * Parses a PCR selection as tpm2-tools writes it: "sha256:0,1,2", banks joined with '+'
 * ("sha1:0,7+sha256:0,1,2,3"), indices 0..23 or "all". CLST_E_MALFORMED (with a message) for an
 * unknown bank, a bank given twice, an index out of range or twice, or an empty list.
 */
enum clst_status clst_tee_tpm_pcrs_parse(const char *spec, struct clst_tee_tpm_pcrs *out,
                                         struct clst_err *err);

struct clst_tee_tpm_request {
    /* The TCTI configuration ("swtpm:host=127.0.0.1,port=2321", "device:/dev/tpmrm0"); NULL:
     * tpm2-tss's default search. */
    const char *tcti;
    /* Required: the PCRs to quote (at least one bank with at least one PCR). */
    const struct clst_tee_tpm_pcrs *pcrs;
    /* The nonce, 0..CLST_TEE_TPM_NONCE_MAX_SIZE bytes (NULL with size 0: none). */
    const uint8_t *nonce;
    size_t nonce_size;
    enum clst_tee_tpm_ak_alg ak_alg;       /* 0: CLST_TEE_TPM_AK_RSASSA */
    enum clst_tee_tpm_hierarchy hierarchy; /* 0: CLST_TEE_TPM_ENDORSEMENT */
    /* Optional (borrowed): a certificate for the AK, included in the evidence (its key must be
     * the AK's: checked), and the intermediates above it. */
    X509 *ak_cert;
    STACK_OF(X509) *ak_chain;
    /* Optional: the TCG event log to include (e.g. the bytes of
     * /sys/kernel/security/tpm0/binary_bios_measurements), at most
     * CLST_TEE_TPM_EVENTLOG_MAX_SIZE bytes. */
    const uint8_t *event_log;
    size_t event_log_size;
};

/*
 * Quotes the PCRs and appends the JSON evidence container to `out` (whose cap must allow it: 1
 * MiB is always enough). When out_ak is non-NULL it receives the AK's public key (to enroll
 * with a verifier: clst_evidence_input.tpm_ak). CLST_E_INVAL for a bad request, CLST_E_IO when
 * the TPM cannot be reached or refuses a command (the message has tpm2-tss's decoded response
 * code), CLST_E_CONFLICT when the PCRs kept changing while they were quoted, CLST_E_VERIFY when
 * ak_cert is not a certificate for the AK.
 */
enum clst_status clst_tee_tpm_quote(const struct clst_tee_tpm_request *req, struct clst_buf *out,
                                    EVP_PKEY **out_ak, struct clst_err *err);

#endif /* CLOISTER_TEE_H */
