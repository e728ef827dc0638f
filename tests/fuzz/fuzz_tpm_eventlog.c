/*
 * Fuzz harness for the TCG crypto-agile event log parser and replay
 * (src/evidence/tpm_eventlog.c). evidence_tpm_eventlog_parse answers only OK, MALFORMED or
 * LIMIT, with a message; for an accepted log the algorithm table is sane (1..8 distinct
 * algorithms, known ones with their digest size) and the replay of every listed bank this
 * verifier knows answers OK or VERIFY (a missing digest), touching only PCRs 0..23, while the
 * replay of a bank the log does not list answers VERIFY. The replay of the same bytes twice gives
 * the same PCRs.
 *
 * Seeds in tests/fuzz/corpus/tpm_eventlog/: the GCE log, small synthetic logs (StartupLocality,
 * several banks, events without a digest), and damaged variants.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "evidence/tpm_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint16_t banks[] = {TPM_ALG_SHA1_ID, TPM_ALG_SHA256_ID, TPM_ALG_SHA384_ID,
                                     TPM_ALG_SHA512_ID};
    static struct tpm_replay a, b;
    struct tpm_eventlog_info info;
    struct clst_err err;

    memset(&err, 0, sizeof(err));
    enum clst_status rc = evidence_tpm_eventlog_parse(data, size, &info, &err);
    if (rc != CLST_OK) {
        if ((rc != CLST_E_MALFORMED && rc != CLST_E_LIMIT) || err.msg[0] == '\0') {
            abort();
        }
        for (size_t i = 0; i < 4; i++) {
            /* What does not parse does not replay either. */
            if (evidence_tpm_eventlog_replay(data, size, banks[i], &a, NULL) == CLST_OK) {
                abort();
            }
        }
        return 0;
    }
    if (info.alg_count == 0 || info.alg_count > TPM_EVENTLOG_MAX_ALGS ||
        info.event_count > TPM_EVENTLOG_MAX_EVENTS) {
        abort();
    }
    for (size_t i = 0; i < info.alg_count; i++) {
        size_t known = evidence_tpm_alg_digest_size(info.alg[i]);
        if (info.alg_size[i] == 0 || info.alg_size[i] > TPM_DIGEST_MAX_SIZE ||
            (known != 0 && known != info.alg_size[i])) {
            abort();
        }
        for (size_t k = 0; k < i; k++) {
            if (info.alg[k] == info.alg[i]) {
                abort();
            }
        }
    }
    for (size_t i = 0; i < 4; i++) {
        bool listed = false;
        for (size_t k = 0; k < info.alg_count; k++) {
            listed = listed || info.alg[k] == banks[i];
        }
        rc = evidence_tpm_eventlog_replay(data, size, banks[i], &a, &err);
        if (rc != CLST_OK && rc != CLST_E_VERIFY) {
            abort();
        }
        if (!listed && rc == CLST_OK) {
            abort();
        }
        if (rc == CLST_OK) {
            if ((a.touched >> TPM_PCR_COUNT) != 0 ||
                a.digest_size != evidence_tpm_alg_digest_size(banks[i]) ||
                evidence_tpm_eventlog_replay(data, size, banks[i], &b, NULL) != CLST_OK ||
                a.touched != b.touched || memcmp(a.pcr, b.pcr, sizeof(a.pcr)) != 0) {
                abort();
            }
        }
    }
    return 0;
}
