/*
 * Fuzz harness for the TPM evidence parser (src/evidence/tpm_quote.c: the JSON container and the
 * TPM structures libtss2-mu unmarshals) and the verifier behind it. Each input is used as:
 *
 * 1. raw TPM structures: evidence_tpm_attest_unmarshal, _signature_unmarshal and
 *    _public_unmarshal answer only OK or MALFORMED (with a message); an accepted TPMS_ATTEST is
 *    a quote with its sizes in range and re-marshals to exactly the input bytes;
 * 2. a container: evidence_tpm_parse answers only OK, MALFORMED or LIMIT; then the whole
 *    pipeline (clst_evidence_verify, kind tpm) runs with the GCE AK enrolled. It may accept only
 *    a quote that the GCE vTPM really signed: the quote bytes of an accepted input must be one of
 *    the six stored quotes (their SHA-256 below), whatever else the container says.
 *
 * Seeds in tests/fuzz/corpus/tpm_attest/: the six GCE TPMS_ATTEST, a signature and the AK's
 * TPMT_PUBLIC, GCE containers without the event log, and damaged variants.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cloister/crypto.h>
#include <cloister/evidence.h>

#include "evidence/tpm_int.h"

/* SHA-256 of tests/vectors/tpm2/go-tpm-tools-gce/extracted/<name>.quote-<bank>.tpms_attest.bin */
static const char *const genuine_sha256[] = {
    "079d4c594473110d75554e3b7f56cb3e9c5b6bae74846630cb488d5e17b31132",
    "358f1e7b8b49d2d85e1ddc758c18675b489246bcf5370ef5f3abd16a8295df5b",
    "d4c54b33a7efc960ce47b54c66ba9181136468456fe8ada64b8bf6a45ee316d4",
    "31727246acf034606b100f6ac2a9646ac55a8063218303998741c28d87bb55da",
    "c4945ff64459c92b0084458999af52aef70d4c6139313bc43a49a0aa604941b1",
    "67a0039d8cea2439544da88e3509bfa6f4963dc2c079f627f51d6ce05d3297f8",
};

/* nonce9009.ak-pub.pem: the GCE AK. */
static const char gce_ak_pem[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAy61vCJxpgiRDH0oIhptW\n"
    "u2mWXVVJWf5gD64rMY3pwXRNGBItRVUbvzgICAmidARdfB40+SJ4s1kDQgMYMIzp\n"
    "iEiktk85jeg4+3tn2Bj1brYmWALkKgobI6St7hsCXnT2vRrjYp32Ej7/lOsgiolF\n"
    "yTU54ROTYmgS1PX3GYt6oWiiFdiIYYaM752taPm/WeFxWXA826HEkM1ylzRInl8F\n"
    "0Oea6+9DZT4CXVbybxLGdVZFDYoQys9SmsnxpscfTTOzWfpUdwBXY+ANs9EKing+\n"
    "AVU0ugJBXlxJBERpEafnu52AFT8BakLXM7EfXAIg/TkyRAXYw6NdmbEkDodNWOY9\n"
    "ZwIDAQAB\n"
    "-----END PUBLIC KEY-----\n";

static EVP_PKEY *
gce_ak(void)
{
    static EVP_PKEY *key;
    if (key == NULL &&
        clst_pkey_from_pem(gce_ak_pem, sizeof(gce_ak_pem) - 1, &key, NULL) != CLST_OK) {
        abort();
    }
    return key;
}

static bool
is_genuine(const uint8_t *quote, size_t size)
{
    uint8_t digest[CLST_SHA256_SIZE];
    char hex[2 * CLST_SHA256_SIZE + 1];
    if (clst_sha256(quote, size, digest) != CLST_OK ||
        clst_hex_to_str(digest, sizeof(digest), hex, sizeof(hex)) != CLST_OK) {
        abort();
    }
    for (size_t i = 0; i < sizeof(genuine_sha256) / sizeof(genuine_sha256[0]); i++) {
        if (strcmp(hex, genuine_sha256[i]) == 0) {
            return true;
        }
    }
    return false;
}

static void
check_structures(const uint8_t *data, size_t size)
{
    struct clst_err err;
    TPMS_ATTEST a;
    TPMT_SIGNATURE s;
    TPMT_PUBLIC p;
    enum clst_status rc;

    memset(&err, 0, sizeof(err));
    rc = evidence_tpm_attest_unmarshal(data, size, &a, &err);
    if (rc == CLST_OK) {
        uint8_t again[sizeof(TPMS_ATTEST)];
        size_t off = 0;
        if (a.magic != TPM2_GENERATED_VALUE || a.type != TPM2_ST_ATTEST_QUOTE ||
            a.attested.quote.pcrSelect.count > TPM2_NUM_PCR_BANKS ||
            a.extraData.size > sizeof(a.extraData.buffer) ||
            Tss2_MU_TPMS_ATTEST_Marshal(&a, again, sizeof(again), &off) != TSS2_RC_SUCCESS ||
            off != size || memcmp(again, data, size) != 0) {
            abort();
        }
    } else if (rc != CLST_E_MALFORMED || err.msg[0] == '\0') {
        abort();
    }
    memset(&err, 0, sizeof(err));
    rc = evidence_tpm_signature_unmarshal(data, size, &s, &err);
    if (rc != CLST_OK && (rc != CLST_E_MALFORMED || err.msg[0] == '\0')) {
        abort();
    }
    memset(&err, 0, sizeof(err));
    rc = evidence_tpm_public_unmarshal(data, size, &p, &err);
    if (rc == CLST_OK) {
        EVP_PKEY *key = NULL;
        enum clst_status k = evidence_tpm_public_to_pkey(&p, &key, NULL);
        if (k != CLST_OK && k != CLST_E_VERIFY && k != CLST_E_CRYPTO) {
            abort();
        }
        EVP_PKEY_free(key);
    } else if (rc != CLST_E_MALFORMED || err.msg[0] == '\0') {
        abort();
    }
}

static void
check_container(const uint8_t *data, size_t size)
{
    static struct tpm_evidence ev; /* 560 KiB: not on the stack */
    struct clst_evidence_input in;
    struct clst_err err;
    json_t *claims = NULL;

    memset(&err, 0, sizeof(err));
    enum clst_status rc = evidence_tpm_parse(data, size, &ev, &err);
    if (rc == CLST_OK) {
        if (ev.quote_size == 0 || ev.quote_size > sizeof(ev.quote) ||
            ev.bank_count > TPM_MAX_BANKS || ev.chain_count > TPM_CHAIN_MAX_COUNT ||
            ev.eventlog_size > sizeof(ev.eventlog) || ev.result != &ev.result_store) {
            abort();
        }
    } else if ((rc != CLST_E_MALFORMED && rc != CLST_E_LIMIT) || err.msg[0] == '\0') {
        abort();
    }

    memset(&in, 0, sizeof(in));
    in.evidence = data;
    in.evidence_size = size;
    in.tpm_ak = gce_ak();
    in.tpm_allow_sha1 = true;
    in.at = 1704067200; /* 2024-01-01 */
    rc = clst_evidence_verify(CLST_EVIDENCE_TPM, &in, &claims, &err);
    if ((rc == CLST_OK) != (claims != NULL)) {
        abort();
    }
    if (rc == CLST_OK && (evidence_tpm_parse(data, size, &ev, NULL) != CLST_OK ||
                          !is_genuine(ev.quote, ev.quote_size))) {
        abort(); /* a quote the GCE vTPM did not sign was accepted */
    }
    if (rc != CLST_OK && rc != CLST_E_VERIFY && rc != CLST_E_MALFORMED && rc != CLST_E_LIMIT) {
        abort();
    }
    json_decref(claims);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool quiet;
    if (!quiet) {
        setenv("TSS2_LOG", "all+none", 0); /* tpm2-tss logs every malformed input */
        quiet = true;
    }
    check_structures(data, size);
    check_container(data, size);
    return 0;
}
