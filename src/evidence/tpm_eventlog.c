/*
 * TPM 2.0 evidence: the TCG PC Client crypto-agile event log ("TCG PC Client Platform Firmware
 * Profile", section "Event Logging"), walked through the bounds-checked cursor and replayed.
 *
 * Layout (all integers little-endian):
 *   first event, legacy format (TCG_PCClientPCREvent):
 *     u32 PCRIndex (0), u32 EventType (EV_NO_ACTION), 20 zero bytes, u32 EventSize, and the
 *     event TCG_EfiSpecIDEvent: "Spec ID Event03\0", u32 platformClass, u8 specVersionMinor,
 *     u8 specVersionMajor, u8 specErrata, u8 uintnSize, u32 numberOfAlgorithms,
 *     {u16 algorithmId, u16 digestSize} x numberOfAlgorithms, u8 vendorInfoSize, vendorInfo
 *   then TCG_PCR_EVENT2 records:
 *     u32 PCRIndex, u32 EventType, u32 count, {u16 hashAlg, digest[size from the table]} x count,
 *     u32 EventSize, event[EventSize]
 * The replay trusts nothing in the log but the digests: event types and data are not measured
 * (only EV_NO_ACTION, which is never extended, and the StartupLocality event, which sets PCR 0's
 * start value, change what is replayed), so claims never repeat the log's descriptions.
 */
#include <string.h>

#include <openssl/crypto.h>

#include "evidence/tpm_int.h"

#define SPEC_ID_SIGNATURE    "Spec ID Event03" /* 16 bytes with the NUL */
#define STARTUP_LOCALITY_SIG "StartupLocality" /* 16 bytes with the NUL, then u8 locality */
#define LEGACY_DIGEST_SIZE   20
#define SIGNATURE_FIELD_SIZE 16

/* One walk over the log; when `replay` is non-NULL the bank replay->alg is replayed. */
static enum clst_status
walk(const uint8_t *log, size_t size, struct tpm_eventlog_info *info, struct tpm_replay *replay,
     struct clst_err *err)
{
    struct clst_cursor c = clst_cursor_make(log, size);
    struct clst_cursor spec;
    uint32_t pcr = 0, type = 0, event_size = 0, alg_count = 0, platform_class = 0;
    uint8_t ver_minor = 0, ver_major = 0, errata = 0, uintn = 0, vendor_size = 0;
    const uint8_t *sig = NULL, *digest = NULL;
    enum clst_hash h = CLST_HASH_SHA256;
    size_t bank_index = SIZE_MAX;

    memset(info, 0, sizeof(*info));
    if (log == NULL || size == 0) {
        return clst_err_set(err, CLST_E_MALFORMED, "the event log is empty");
    }
    /* The Spec ID event, in the legacy (SHA-1) format. */
    if (!clst_cursor_le32(&c, &pcr) || !clst_cursor_le32(&c, &type) ||
        !clst_cursor_take(&c, LEGACY_DIGEST_SIZE, &digest) || !clst_cursor_le32(&c, &event_size)) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "the event log ends inside its first event header (%zu bytes)", size);
    }
    if (pcr != 0 || type != TPM_EV_NO_ACTION) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "the first event is PCR %u type 0x%x, not the Spec ID event (PCR 0, "
                            "EV_NO_ACTION): not a crypto-agile (TPM 2.0) log",
                            (unsigned)pcr, (unsigned)type);
    }
    for (size_t i = 0; i < LEGACY_DIGEST_SIZE; i++) {
        if (digest[i] != 0) {
            return clst_err_set(err, CLST_E_MALFORMED, "the Spec ID event's digest is not zero");
        }
    }
    if (!clst_cursor_sub(&c, event_size, &spec)) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "the Spec ID event claims %u bytes; only %zu remain",
                            (unsigned)event_size, c.left);
    }
    if (!clst_cursor_take(&spec, SIGNATURE_FIELD_SIZE, &sig) ||
        !clst_cursor_le32(&spec, &platform_class) || !clst_cursor_u8(&spec, &ver_minor) ||
        !clst_cursor_u8(&spec, &ver_major) || !clst_cursor_u8(&spec, &errata) ||
        !clst_cursor_u8(&spec, &uintn) || !clst_cursor_le32(&spec, &alg_count)) {
        return clst_err_set(err, CLST_E_MALFORMED, "the Spec ID event is truncated");
    }
    (void)platform_class;
    (void)ver_minor;
    (void)errata;
    (void)uintn;
    if (memcmp(sig, SPEC_ID_SIGNATURE, SIGNATURE_FIELD_SIZE) != 0 || ver_major != 2) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "the first event is not \"Spec ID Event03\" of a version 2 log: not "
                            "a crypto-agile (TPM 2.0) log");
    }
    if (alg_count == 0) {
        return clst_err_set(err, CLST_E_MALFORMED, "the Spec ID event lists no algorithms");
    }
    if (alg_count > TPM_EVENTLOG_MAX_ALGS) {
        return clst_err_set(err, CLST_E_LIMIT, "the Spec ID event lists %u algorithms (at most %u)",
                            (unsigned)alg_count, TPM_EVENTLOG_MAX_ALGS);
    }
    for (uint32_t i = 0; i < alg_count; i++) {
        uint16_t alg = 0, dsize = 0;
        if (!clst_cursor_le16(&spec, &alg) || !clst_cursor_le16(&spec, &dsize)) {
            return clst_err_set(err, CLST_E_MALFORMED, "the Spec ID event is truncated");
        }
        size_t known = evidence_tpm_alg_digest_size(alg);
        if (dsize == 0 || dsize > TPM_DIGEST_MAX_SIZE || (known != 0 && dsize != known)) {
            return clst_err_set(err, CLST_E_MALFORMED,
                                "the Spec ID event gives algorithm 0x%04x a digest size of %u",
                                (unsigned)alg, (unsigned)dsize);
        }
        for (size_t k = 0; k < info->alg_count; k++) {
            if (info->alg[k] == alg) {
                return clst_err_set(err, CLST_E_MALFORMED,
                                    "the Spec ID event lists algorithm 0x%04x twice",
                                    (unsigned)alg);
            }
        }
        if (replay != NULL && alg == replay->alg) {
            bank_index = info->alg_count;
        }
        info->alg[info->alg_count] = alg;
        info->alg_size[info->alg_count] = dsize;
        info->alg_count++;
    }
    if (!clst_cursor_u8(&spec, &vendor_size) || !clst_cursor_skip(&spec, vendor_size) ||
        !clst_cursor_empty(&spec)) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "the Spec ID event's vendor information does not end the event");
    }
    if (replay != NULL) {
        const char *name = evidence_tpm_alg_name(replay->alg);
        if (bank_index == SIZE_MAX) {
            return clst_err_set(err, CLST_E_VERIFY,
                                "the event log carries no %s digests, so it cannot be replayed "
                                "for the quoted %s bank",
                                name != NULL ? name : "?", name != NULL ? name : "?");
        }
        replay->digest_size = evidence_tpm_alg_digest_size(replay->alg);
        h = replay->alg == TPM_ALG_SHA1_ID     ? CLST_HASH_SHA1
            : replay->alg == TPM_ALG_SHA256_ID ? CLST_HASH_SHA256
            : replay->alg == TPM_ALG_SHA384_ID ? CLST_HASH_SHA384
                                               : CLST_HASH_SHA512;
        if (replay->digest_size == 0) {
            return clst_err_set(err, CLST_E_INVAL, "event log replay: unknown bank 0x%04x",
                                (unsigned)replay->alg);
        }
        memset(replay->pcr, 0, sizeof(replay->pcr));
        replay->touched = 0;
    }

    /* The TCG_PCR_EVENT2 records. */
    while (!clst_cursor_empty(&c)) {
        uint32_t count = 0;
        size_t n = info->event_count + 1; /* event number as tpm2_eventlog counts them */
        const uint8_t *bank_digest = NULL;
        uint16_t seen[TPM_EVENTLOG_MAX_ALGS];
        const uint8_t *data = NULL;

        if (info->event_count >= TPM_EVENTLOG_MAX_EVENTS) {
            return clst_err_set(err, CLST_E_LIMIT, "the event log has more than %u events",
                                TPM_EVENTLOG_MAX_EVENTS);
        }
        if (!clst_cursor_le32(&c, &pcr) || !clst_cursor_le32(&c, &type) ||
            !clst_cursor_le32(&c, &count)) {
            return clst_err_set(err, CLST_E_MALFORMED,
                                "the event log ends inside the header of event %zu", n);
        }
        if (pcr >= TPM_PCR_COUNT) {
            return clst_err_set(err, CLST_E_MALFORMED, "event %zu names PCR %u (PCRs are 0..23)", n,
                                (unsigned)pcr);
        }
        if (count > info->alg_count) {
            return clst_err_set(err, CLST_E_MALFORMED,
                                "event %zu has %u digests; the Spec ID event lists %zu algorithms",
                                n, (unsigned)count, info->alg_count);
        }
        for (uint32_t d = 0; d < count; d++) {
            uint16_t alg = 0;
            size_t k = 0;
            if (!clst_cursor_le16(&c, &alg)) {
                return clst_err_set(err, CLST_E_MALFORMED,
                                    "the event log ends inside the digests of event %zu", n);
            }
            while (k < info->alg_count && info->alg[k] != alg) {
                k++;
            }
            if (k == info->alg_count) {
                return clst_err_set(err, CLST_E_MALFORMED,
                                    "event %zu has a digest of algorithm 0x%04x, which the Spec "
                                    "ID event does not list",
                                    n, (unsigned)alg);
            }
            for (uint32_t e = 0; e < d; e++) {
                if (seen[e] == alg) {
                    return clst_err_set(err, CLST_E_MALFORMED,
                                        "event %zu has two digests of algorithm 0x%04x", n,
                                        (unsigned)alg);
                }
            }
            seen[d] = alg;
            if (!clst_cursor_take(&c, info->alg_size[k], &digest)) {
                return clst_err_set(err, CLST_E_MALFORMED,
                                    "the event log ends inside the digests of event %zu", n);
            }
            if (k == bank_index) {
                bank_digest = digest;
            }
        }
        if (!clst_cursor_le32(&c, &event_size) || !clst_cursor_take(&c, event_size, &data)) {
            return clst_err_set(err, CLST_E_MALFORMED,
                                "the event log ends inside event %zu (its data is larger than "
                                "what remains)",
                                n);
        }
        info->event_count++;
        if (replay == NULL) {
            continue;
        }
        if (type == TPM_EV_NO_ACTION) {
            /* Not extended. The StartupLocality event sets PCR 0's start value to the locality
             * from which TPM2_Startup was sent, if PCR 0 was not extended yet. */
            if (pcr == 0 && event_size == SIGNATURE_FIELD_SIZE + 1 &&
                memcmp(data, STARTUP_LOCALITY_SIG, SIGNATURE_FIELD_SIZE) == 0 &&
                (replay->touched & 1u) == 0) {
                replay->pcr[0][replay->digest_size - 1] = data[SIGNATURE_FIELD_SIZE];
                replay->touched |= 1u;
            }
            continue;
        }
        if (bank_digest == NULL) {
            return clst_err_set(err, CLST_E_VERIFY,
                                "event %zu (PCR %u) has no %s digest, so the log cannot be "
                                "replayed for that bank",
                                n, (unsigned)pcr, evidence_tpm_alg_name(replay->alg));
        }
        uint8_t buf[2 * TPM_DIGEST_MAX_SIZE];
        memcpy(buf, replay->pcr[pcr], replay->digest_size);
        memcpy(buf + replay->digest_size, bank_digest, replay->digest_size);
        if (clst_hash(h, buf, 2 * replay->digest_size, replay->pcr[pcr]) != CLST_OK) {
            return clst_err_set(err, CLST_E_CRYPTO, "event log replay: hashing failed");
        }
        replay->touched |= 1u << pcr;
    }
    return CLST_OK;
}

enum clst_status
evidence_tpm_eventlog_parse(const uint8_t *log, size_t size, struct tpm_eventlog_info *out,
                            struct clst_err *err)
{
    struct tpm_eventlog_info info;
    if (out == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "event log: no output given");
    }
    if (size > TPM_EVENTLOG_MAX_SIZE) {
        return clst_err_set(err, CLST_E_LIMIT,
                            "the event log is %zu bytes, more than the limit of %u bytes", size,
                            TPM_EVENTLOG_MAX_SIZE);
    }
    enum clst_status rc = walk(log, size, &info, NULL, err);
    if (rc == CLST_OK) {
        *out = info;
    }
    return rc;
}

enum clst_status
evidence_tpm_eventlog_replay(const uint8_t *log, size_t size, uint16_t alg, struct tpm_replay *out,
                             struct clst_err *err)
{
    struct tpm_eventlog_info info;
    struct tpm_replay r;

    if (out == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "event log replay: no output given");
    }
    if (evidence_tpm_alg_digest_size(alg) == 0) {
        return clst_err_set(err, CLST_E_VERIFY,
                            "event log replay: PCR bank 0x%04x is not supported (sha1, sha256, "
                            "sha384, sha512)",
                            (unsigned)alg);
    }
    if (size > TPM_EVENTLOG_MAX_SIZE) {
        return clst_err_set(err, CLST_E_LIMIT,
                            "the event log is %zu bytes, more than the limit of %u bytes", size,
                            TPM_EVENTLOG_MAX_SIZE);
    }
    memset(&r, 0, sizeof(r));
    r.alg = alg;
    enum clst_status rc = walk(log, size, &info, &r, err);
    if (rc == CLST_OK) {
        *out = r;
    }
    OPENSSL_cleanse(&r, sizeof(r));
    return rc;
}
