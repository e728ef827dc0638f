/*
 * Fuzz harness for the SEV-SNP parsers (src/evidence/sevsnp_report.c, sevsnp_certs.c) and the
 * verifier behind them. Each input is used twice:
 *
 * 1. As evidence (a report, optionally followed by a certificate table):
 *    evidence_sevsnp_parse must answer only OK, MALFORMED or LIMIT, and what it accepts must
 *    satisfy the layout's invariants (size, version, reserved bits, table entries inside the
 *    table). Then the whole pipeline (clst_evidence_verify with the AMD roots compiled in) runs on
 *    it; it may accept only a report that AMD really signed: the first 1184 bytes of an accepted
 *    input must be one of the stored real reports (whose SHA-256 are below), whatever the table
 *    around it says.
 * 2. As endorsements (the certificate parser: PEM bundle, concatenated DER or a certificate
 *    table), whole and, past byte 1184, as the endorsements of the report in the first 1184
 *    bytes: evidence_sevsnp_pool_add_endorsements answers only OK, MALFORMED or LIMIT; every
 *    certificate it yields is read by evidence_sevsnp_cert_info (OK or MALFORMED); and the
 *    pipeline runs on (report, endorsements) with the same oracle as above.
 *
 * Seeds in tests/fuzz/corpus/sevsnp_report/: the real reports raw, as extended reports with
 * their certificate table, followed by endorsements as PEM and as DER, and damaged variants.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cloister/crypto.h>
#include <cloister/evidence.h>

#include "evidence/sevsnp_int.h"

/* SHA-256 of the stored real reports (tests/vectors/sev-snp/: go-sev-guest/attestation.bin,
 * trustee/test-report.bin, virtee-sev/report_milan.bin). */
static const char *const genuine_sha256[] = {
    "377e6241d3b373ab1df80c0f96978594e7e21f4797dd6ea95e2957e1c1e26060",
    "7c614616feb65823351fa42620ea260fb84fd22b2337a480ca0d5f04f363ca38",
    "120d77b213c8868dd42f160ccb0114f05336ec715f6d51070f534b33c7e03f3b",
};

static STACK_OF(X509) *
amd_roots(void)
{
    static STACK_OF(X509) *roots;
    if (roots == NULL && clst_evidence_sevsnp_roots(&roots, NULL) != CLST_OK) {
        abort();
    }
    return roots;
}

static bool
is_genuine(const uint8_t *report)
{
    uint8_t digest[CLST_SHA256_SIZE];
    char hex[2 * CLST_SHA256_SIZE + 1];
    if (clst_sha256(report, SEVSNP_REPORT_SIZE, digest) != CLST_OK ||
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
check_parse(const uint8_t *data, size_t size)
{
    struct sevsnp_evidence ev;
    struct clst_err err;
    memset(&err, 0, sizeof(err));
    enum clst_status rc = evidence_sevsnp_parse(data, size, &ev, &err);
    if (rc == CLST_OK) {
        const struct sevsnp_report *r = &ev.report;
        if (size < SEVSNP_REPORT_SIZE || size > SEVSNP_EVIDENCE_MAX_SIZE ||
            r->version < SEVSNP_MIN_VERSION || r->version > SEVSNP_MAX_VERSION ||
            r->sig_algo != SEVSNP_SIG_ALGO_ES384 || r->vmpl > SEVSNP_MAX_VMPL ||
            (r->policy & ~SEVSNP_POLICY_DEFINED) != 0 ||
            (r->policy & SEVSNP_POLICY_RESERVED_ONE) == 0 ||
            (r->platform_info & ~SEVSNP_PLATFORM_DEFINED) != 0 ||
            (r->key_info & ~SEVSNP_KEYINFO_DEFINED) != 0 ||
            ev.has_table != (size > SEVSNP_REPORT_SIZE) ||
            ev.table.count > SEVSNP_TABLE_MAX_ENTRIES ||
            memcmp(r->report_data, data + 0x50, sizeof(r->report_data)) != 0 ||
            memcmp(r->sig_r, data + SEVSNP_SIGNED_SIZE, sizeof(r->sig_r)) != 0) {
            abort();
        }
        for (size_t i = 0; i < ev.table.count; i++) {
            const struct sevsnp_table_entry *e = &ev.table.entries[i];
            if (e->length == 0 || e->length > SEVSNP_CERT_MAX_SIZE ||
                (uint64_t)e->offset + e->length > size - SEVSNP_REPORT_SIZE) {
                abort();
            }
        }
        /* Re-encoding the parsed report gives back the same bytes. */
        uint8_t again[SEVSNP_REPORT_SIZE];
        evidence_sevsnp_report_encode(r, again);
        if (memcmp(again, data, SEVSNP_REPORT_SIZE) != 0) {
            abort();
        }
    } else if (rc != CLST_E_MALFORMED && rc != CLST_E_LIMIT) {
        abort();
    } else if (err.msg[0] == '\0') {
        abort(); /* every rejection says why */
    }
}

static void
check_endorsements(const uint8_t *data, size_t size)
{
    struct sevsnp_pool pool;
    struct clst_err err;
    memset(&err, 0, sizeof(err));
    evidence_sevsnp_pool_init(&pool);
    enum clst_status rc = evidence_sevsnp_pool_add_endorsements(&pool, data, size, &err);
    if (rc != CLST_OK && rc != CLST_E_MALFORMED && rc != CLST_E_LIMIT) {
        abort();
    }
    for (size_t i = 0; rc == CLST_OK && i < pool.count; i++) {
        X509 *x = NULL;
        struct sevsnp_cert_info info;
        if (pool.certs[i].size == 0 || pool.certs[i].size > SEVSNP_CERT_MAX_SIZE) {
            abort();
        }
        if (clst_x509_from_der(pool.certs[i].der, pool.certs[i].size, &x, NULL) == CLST_OK) {
            enum clst_status c = evidence_sevsnp_cert_info(x, &info, NULL);
            if (c != CLST_OK && c != CLST_E_MALFORMED) {
                abort();
            }
            if (c == CLST_OK &&
                (info.product == SEVSNP_PRODUCT_UNKNOWN || info.hwid_size > sizeof(info.hwid))) {
                abort();
            }
            X509_free(x);
        }
    }
    evidence_sevsnp_pool_cleanup(&pool);
}

static void
check_pipeline(const uint8_t *evidence, size_t size, const uint8_t *endorse, size_t endorse_size)
{
    struct clst_evidence_input in;
    struct clst_err err;
    json_t *claims = NULL;
    memset(&in, 0, sizeof(in));
    in.evidence = evidence;
    in.evidence_size = size;
    in.endorsements = endorse;
    in.endorsements_size = endorse_size;
    in.roots = amd_roots();
    in.at = 1704067200; /* 2024-01-01 */
    in.allow_debug = true;
    enum clst_status rc = clst_evidence_verify(CLST_EVIDENCE_SEVSNP, &in, &claims, &err);
    if ((rc == CLST_OK) != (claims != NULL)) {
        abort();
    }
    if (rc == CLST_OK && !is_genuine(evidence)) {
        abort(); /* a report AMD did not sign was accepted */
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
    check_parse(data, size);
    check_pipeline(data, size, NULL, 0);
    check_endorsements(data, size);
    if (size > SEVSNP_REPORT_SIZE) {
        check_endorsements(data + SEVSNP_REPORT_SIZE, size - SEVSNP_REPORT_SIZE);
        check_pipeline(data, SEVSNP_REPORT_SIZE, data + SEVSNP_REPORT_SIZE,
                       size - SEVSNP_REPORT_SIZE);
    }
    return 0;
}
