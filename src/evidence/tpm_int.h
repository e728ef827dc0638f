/*
 * Inside the evidence component: the TPM 2.0 kind ("tpm", docs/evidence-tpm.md). Not a public
 * header; the unit tests and fuzz harnesses include it to reach the parsers directly.
 *
 * The evidence is a JSON container (version 1) holding the TPM's own bytes, base64-encoded:
 * the TPMS_ATTEST of a TPM2_Quote, its TPMT_SIGNATURE, the PCR values the quote covers, the AK
 * (TPMT_PUBLIC and/or an X.509 certificate with intermediates) and, optionally, the TCG PC Client
 * crypto-agile event log. The TPM structures are unmarshalled with tpm2-tss's libtss2-mu.
 *
 * Files: tpm_quote.c (container + TPM structures: parse), tpm_eventlog.c (event log walk and
 * replay), tpm_verify.c (AK trust, signature, PCR digest, replay, claims, evidence_ops).
 */
#ifndef CLST_EVIDENCE_TPM_INT_H
#define CLST_EVIDENCE_TPM_INT_H

#include <tss2/tss2_mu.h>
#include <tss2/tss2_tpm2_types.h>

#include "evidence/evidence_int.h"

/* ---- limits (every variable-length thing has one; past it: CLST_E_LIMIT) ------------------- */

#define TPM_EVIDENCE_MAX_SIZE   (1024u * 1024) /* the whole JSON container */
#define TPM_CONTAINER_VERSION   1
#define TPM_QUOTE_MAX_SIZE      sizeof(TPMS_ATTEST) /* marshalled TPMS_ATTEST (TPM2B_ATTEST cap) */
#define TPM_SIG_MAX_SIZE        sizeof(TPMT_SIGNATURE)
#define TPM_PUBLIC_MAX_SIZE     sizeof(TPMT_PUBLIC)
#define TPM_CERT_MAX_SIZE       8192u /* one DER certificate */
#define TPM_CHAIN_MAX_COUNT     4u    /* intermediates beside the AK certificate */
#define TPM_EVENTLOG_MAX_SIZE   (512u * 1024)
#define TPM_EVENTLOG_MAX_EVENTS 16384u
#define TPM_EVENTLOG_MAX_ALGS   8u  /* entries in the Spec ID event's algorithm table */
#define TPM_PCR_COUNT           24u /* PC Client: PCRs 0..23 */
#define TPM_MAX_BANKS           4u  /* sha1, sha256, sha384, sha512 */
#define TPM_DIGEST_MAX_SIZE     64u
#define TPM_EXTRA_DATA_MAX      sizeof(((TPM2B_DATA *)0)->buffer)

/* TPM_ALG_ID values of the banks and hashes this verifier knows. */
#define TPM_ALG_SHA1_ID   0x0004
#define TPM_ALG_SHA256_ID 0x000B
#define TPM_ALG_SHA384_ID 0x000C
#define TPM_ALG_SHA512_ID 0x000D

/* Event types the replay treats specially (TCG PC Client Platform Firmware Profile). */
#define TPM_EV_NO_ACTION 0x00000003u

/* Claim names (docs/evidence-tpm.md). The first four are the cloud attestation service's TPM
 * claims; the x-cloister-tpm-* ones are ours. */
#define TPM_ATTESTATION_TYPE        "tpm"
#define TPM_CLAIM_TPM_VERSION       "tpmVersion"
#define TPM_CLAIM_AIK_VALIDATED     "aikValidated"
#define TPM_CLAIM_AIK_PUB_HASH      "aikPubHash"
#define TPM_CLAIM_AK_TRUST          "x-cloister-tpm-ak-trust"
#define TPM_CLAIM_AK_CERT_SHA256    "x-cloister-tpm-ak-cert-sha256"
#define TPM_CLAIM_AK_HIERARCHY      "x-cloister-tpm-ak-hierarchy"
#define TPM_CLAIM_PCRS              "x-cloister-tpm-pcrs"
#define TPM_CLAIM_EXTRA_DATA        "x-cloister-tpm-extra-data"
#define TPM_CLAIM_SIG_ALG           "x-cloister-tpm-sig-alg"
#define TPM_CLAIM_SIG_HASH          "x-cloister-tpm-sig-hash"
#define TPM_CLAIM_QUALIFIED_SIGNER  "x-cloister-tpm-qualified-signer"
#define TPM_CLAIM_CLOCK             "x-cloister-tpm-clock"
#define TPM_CLAIM_RESET_COUNT       "x-cloister-tpm-reset-count"
#define TPM_CLAIM_RESTART_COUNT     "x-cloister-tpm-restart-count"
#define TPM_CLAIM_SAFE              "x-cloister-tpm-safe"
#define TPM_CLAIM_FIRMWARE_VERSION  "x-cloister-tpm-firmware-version"
#define TPM_CLAIM_EVENTLOG_VERIFIED "x-cloister-tpm-eventlog-verified"
#define TPM_CLAIM_EVENTLOG_EVENTS   "x-cloister-tpm-eventlog-events"
#define TPM_CLAIM_EVENTLOG_PCRS     "x-cloister-tpm-eventlog-pcrs"

/* ---- parsed evidence --------------------------------------------------------------------------
 */

/* The PCR values the container supplies for one bank (present: bit i = PCR i given). */
struct tpm_pcr_bank {
    uint16_t alg;
    size_t digest_size;
    uint32_t present;
    uint8_t value[TPM_PCR_COUNT][TPM_DIGEST_MAX_SIZE];
};

struct tpm_der {
    uint8_t der[TPM_CERT_MAX_SIZE];
    size_t size;
};

/* What verify found, for the claim mapper (verify sees the parsed evidence as const; this lives
 * beside it and is reached through a pointer set by the parser). */
struct tpm_result {
    bool done;
    bool aik_validated;       /* trusted through a certificate chain */
    const char *ak_hierarchy; /* the signer is provably this hierarchy\'s primary AK, or NULL */
    uint8_t ak_spki_sha256[CLST_SHA256_SIZE]; /* SHA-256 of the AK's DER SubjectPublicKeyInfo */
    bool eventlog_verified;
    size_t eventlog_events;
    uint32_t eventlog_pcrs[TPM_MAX_BANKS]; /* per quoted bank (selection order): PCRs replayed */
};

/* Parsed TPM evidence: owned copies; nothing points into the input. */
struct tpm_evidence {
    /* The quote exactly as signed, and its unmarshalled form (type checked: a quote). */
    uint8_t quote[TPM_QUOTE_MAX_SIZE];
    size_t quote_size;
    TPMS_ATTEST attest;
    TPMT_SIGNATURE sig;
    /* The AK as the TPM describes it (optional). */
    bool has_ak_public;
    TPMT_PUBLIC ak_public;
    uint8_t ak_public_raw[TPM_PUBLIC_MAX_SIZE]; /* its bytes, for its Name */
    size_t ak_public_size;
    /* The AK certificate (optional) and untrusted intermediates. */
    struct tpm_der ak_cert;
    struct tpm_der chain[TPM_CHAIN_MAX_COUNT];
    size_t chain_count;
    /* Supplied PCR values, by bank. */
    struct tpm_pcr_bank banks[TPM_MAX_BANKS];
    size_t bank_count;
    /* The event log (optional), checked to be well formed by the parser. */
    size_t eventlog_size;
    uint8_t eventlog[TPM_EVENTLOG_MAX_SIZE];
    struct tpm_result result_store;
    struct tpm_result *result; /* == &result_store once parsed */
};

/* tpm_quote.c */

/*
 * Parses the JSON container (docs/evidence-tpm.md) and unmarshals the TPM structures in it.
 * CLST_E_LIMIT when a field exceeds its cap; CLST_E_MALFORMED for bad JSON, unknown or duplicate
 * members, bad base64 or hex, TPM structures that do not unmarshal or have trailing bytes, an
 * attestation that is not a quote (magic, type), PCR values of the wrong size, an event log that
 * does not parse. On failure *out is zeroed (it is large: allocate it).
 */
enum clst_status evidence_tpm_parse(const uint8_t *data, size_t size, struct tpm_evidence *out,
                                    struct clst_err *err);

/* Unmarshals exactly `size` bytes (no trailing bytes) of each structure. */
enum clst_status evidence_tpm_attest_unmarshal(const uint8_t *data, size_t size, TPMS_ATTEST *out,
                                               struct clst_err *err);
enum clst_status evidence_tpm_signature_unmarshal(const uint8_t *data, size_t size,
                                                  TPMT_SIGNATURE *out, struct clst_err *err);
enum clst_status evidence_tpm_public_unmarshal(const uint8_t *data, size_t size, TPMT_PUBLIC *out,
                                               struct clst_err *err);

/* Bank names ("sha1", "sha256", "sha384", "sha512") and their digest sizes; 0 / NULL when
 * unknown. */
size_t evidence_tpm_alg_digest_size(uint16_t alg);
const char *evidence_tpm_alg_name(uint16_t alg);
bool evidence_tpm_alg_from_name(const char *name, uint16_t *out);

/* tpm_eventlog.c */

struct tpm_eventlog_info {
    size_t event_count; /* events after the Spec ID event */
    size_t alg_count;
    uint16_t alg[TPM_EVENTLOG_MAX_ALGS];
    uint16_t alg_size[TPM_EVENTLOG_MAX_ALGS];
};

/* The PCR values a log replays to for one bank; `touched` has bit i set when PCR i was extended
 * (or its start value set by a StartupLocality event). */
struct tpm_replay {
    uint16_t alg;
    size_t digest_size;
    uint32_t touched;
    uint8_t pcr[TPM_PCR_COUNT][TPM_DIGEST_MAX_SIZE];
};

/*
 * Walks a TCG PC Client crypto-agile event log (a legacy-format Spec ID event "Spec ID Event03",
 * then TCG_PCR_EVENT2 records, little-endian). Pure: checks every length against the remaining
 * bytes, the algorithm table, PCR indices (< 24), digest algorithms (known to the table, no
 * duplicates); nothing may follow the last event. CLST_E_MALFORMED or CLST_E_LIMIT (too many
 * events or algorithms).
 */
enum clst_status evidence_tpm_eventlog_parse(const uint8_t *log, size_t size,
                                             struct tpm_eventlog_info *out, struct clst_err *err);

/*
 * Replays the log for bank `alg`: PCRs start at zero (PCR 0 at the locality of a StartupLocality
 * event, when one precedes its first extension), every event except EV_NO_ACTION extends
 * PCR[i] = H(PCR[i] || digest). CLST_E_VERIFY when the log has no digests of that bank, or an
 * extending event lacks one.
 */
enum clst_status evidence_tpm_eventlog_replay(const uint8_t *log, size_t size, uint16_t alg,
                                              struct tpm_replay *out, struct clst_err *err);

/* tpm_verify.c */

extern const struct evidence_ops evidence_tpm_ops;

/* The AK public key of a TPMT_PUBLIC (RSA, or ECC on P-256/P-384/P-521) as an EVP_PKEY. */
enum clst_status evidence_tpm_public_to_pkey(const TPMT_PUBLIC *pub, EVP_PKEY **out,
                                             struct clst_err *err);

/* The quote's pcrDigest recomputed: H_sig over the supplied values in selection order. */
enum clst_status evidence_tpm_pcr_digest(const struct tpm_evidence *ev, enum clst_hash h,
                                         uint8_t *out, size_t *out_size, struct clst_err *err);

#endif
