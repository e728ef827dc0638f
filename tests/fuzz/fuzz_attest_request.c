/*
 * Fuzz harness for the attestation request body (src/attest/request.c): the JSON object a client
 * POSTs to /attest/{type}. clst_attest_request_parse must never crash, leak or read out of
 * bounds; it answers only OK, MALFORMED or LIMIT; what it accepts holds exactly one evidence
 * member within the kind's limit, runtime data within CLST_ATTEST_MAX_RUNTIME_DATA (an object when
 * its type is JSON) and a printable nonce. The first byte of the input picks the type (sim, or
 * one without a verifier, whose size limit differs), the rest is the body.
 *
 * Seeds in tests/fuzz/corpus/attest_request/: valid bodies (binary and JSON runtime data, a
 * nonce, padded base64url) and refused ones (unknown members, both evidence members, bad
 * base64url, JSON runtime data that is not an object, duplicates, a bad dataType).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cloister/attest.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct clst_attest_type *type = NULL;
    struct clst_attest_request r;
    struct clst_err err;
    if (size == 0) {
        return 0;
    }
    /* The first byte picks the type: SevSnpVm's report may be the cloud clients' JSON form
     * ({"SnpReport", "VcekCertChain"}), unwrapped by the parser. */
    static const char *const names[] = {"SimEnclave", "SgxEnclave", "SevSnpVm"};
    if (clst_attest_type_find(names[data[0] % 3], &type, NULL) != CLST_OK) {
        abort();
    }
    enum clst_status st =
        clst_attest_request_parse(type, (const char *)data + 1, size - 1, &r, &err);
    if (st != CLST_OK) {
        if (st != CLST_E_MALFORMED && st != CLST_E_LIMIT) {
            abort();
        }
        return 0;
    }
    size_t max = clst_evidence_max_size(type->kind);
    if (r.type != type || r.evidence.size == 0 || (max != 0 && r.evidence.size > max) ||
        r.runtime_data.size > CLST_ATTEST_MAX_RUNTIME_DATA ||
        r.inittime_data.size > CLST_ATTEST_MAX_RUNTIME_DATA ||
        (r.runtime_type == CLST_ATTEST_DATA_JSON) != (r.runtime_json != NULL) ||
        (r.runtime_json != NULL && !json_is_object(r.runtime_json)) ||
        (r.inittime_type == CLST_ATTEST_DATA_JSON) != (r.inittime_json != NULL)) {
        abort();
    }
    if (r.certs.size > 0 && type->kind != CLST_EVIDENCE_SEVSNP) {
        abort(); /* only SevSnpVm's JSON form carries certificates */
    }
    if (r.nonce != NULL) {
        size_t n = strlen(r.nonce);
        if (n == 0 || n > CLST_ATTEST_MAX_NONCE_SIZE) {
            abort();
        }
        for (size_t i = 0; i < n; i++) {
            if (r.nonce[i] < 0x21 || r.nonce[i] > 0x7e) {
                abort();
            }
        }
    }
    clst_attest_request_cleanup(&r);
    return 0;
}
