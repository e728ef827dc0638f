/*
 * Fuzz harness for the sim evidence parser (docs/evidence-sim.md), and for the verifier behind it.
 *
 * 1. clst_evidence_sim_parse must never crash or read out of bounds, must answer only OK,
 *    MALFORMED or LIMIT, and what it accepts must satisfy the layout's invariants.
 * 2. The whole pipeline (clst_evidence_verify) runs on the same bytes against a trust root that
 *    signed nothing, which exercises the DER certificate parser and the key checks on fuzzed
 *    certificates; it must never accept.
 *
 * Seeds in tests/fuzz/corpus/sim_report/: a valid report made by 'cloister sim report' (also a
 * debug one), and truncated, extended and damaged variants of it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cloister/crypto.h>
#include <cloister/evidence.h>

#include "evidence/evidence_int.h"

/* A root that never signed anything, made once per process (a harness may keep state). */
static STACK_OF(X509) *
unrelated_roots(void)
{
    static STACK_OF(X509) *roots;
    if (roots != NULL) {
        return roots;
    }
    EVP_PKEY *key = NULL;
    X509 *root = NULL;
    if (clst_ec_generate(CLST_CURVE_P384, &key) != CLST_OK ||
        evidence_sim_cert_issue(key, NULL, key, "fuzz root", NULL, true, 0,
                                4102444800 /* 2100-01-01 */, &root, NULL) != CLST_OK) {
        abort();
    }
    EVP_PKEY_free(key);
    roots = sk_X509_new_null();
    if (roots == NULL || sk_X509_push(roots, root) <= 0) {
        abort();
    }
    return roots;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct clst_sim_evidence ev;
    struct clst_err err;

    enum clst_status rc = clst_evidence_sim_parse(data, size, &ev, &err);
    if (rc == CLST_OK) {
        if (size > CLST_SIM_EVIDENCE_MAX_SIZE || ev.report.version != CLST_SIM_VERSION ||
            ev.report.sig_alg != CLST_SIM_SIG_ALG_ES384 ||
            (ev.report.flags & ~CLST_SIM_FLAG_DEBUG) != 0 || ev.cert_size == 0 ||
            ev.cert_size > CLST_SIM_CERT_MAX_SIZE ||
            ev.signed_size != CLST_SIM_REPORT_SIZE + CLST_SIM_CERT_LEN_SIZE + ev.cert_size ||
            ev.signed_size + CLST_SIM_SIGNATURE_SIZE != size ||
            memcmp(ev.signature, data + ev.signed_size, CLST_SIM_SIGNATURE_SIZE) != 0 ||
            memcmp(ev.cert_der, data + CLST_SIM_REPORT_SIZE + CLST_SIM_CERT_LEN_SIZE,
                   ev.cert_size) != 0) {
            abort();
        }
    } else if (rc != CLST_E_MALFORMED && rc != CLST_E_LIMIT) {
        abort();
    } else if (err.msg[0] == '\0') {
        abort(); /* every rejection says why */
    }

    struct clst_evidence_input in;
    memset(&in, 0, sizeof(in));
    in.evidence = data;
    in.evidence_size = size;
    in.roots = unrelated_roots();
    in.at = 1700000000;
    in.allow_debug = true;
    json_t *claims = NULL;
    rc = clst_evidence_verify(CLST_EVIDENCE_SIM, &in, &claims, &err);
    if (rc == CLST_OK || claims != NULL) {
        abort();
    }
    return 0;
}
