/*
 * Fuzz harness for the Azure confidential-VM evidence parser (src/evidence/azure_vtpm.c) and the
 * verifier behind it. Each input is used as:
 *
 * 1. a raw HCL report: evidence_azure_hcl_parse answers only OK, MALFORMED or LIMIT (with a
 *    message); an accepted report has report_size = 0x4D4 + var_size within the input and an SNP
 *    or TDX report type;
 * 2. an evidence container: evidence_azure_parse answers only OK, MALFORMED or LIMIT; then the
 *    whole pipeline (clst_evidence_verify, kind azure-vtpm, the built-in AMD roots, 2026-01-01)
 *    runs. It may accept only evidence whose SEV-SNP report an AMD VCEK really signed: the 1184
 *    report bytes of an accepted input must be one of the five stored reports (SHA-256 below).
 *    A TDX container is never accepted here: no DCAP collateral is given, and a TDREPORT alone
 *    must never be enough;
 * 3. a TDREPORT (the first 1024 bytes): evidence_azure_tdreport_parse answers OK or MALFORMED.
 *
 * Seeds in tests/fuzz/corpus/azure_hcl/: the stored HCL report, a truncated and a damaged copy,
 * the unit container (hcl-report.bin + tpm-quote-v1.json, with its VCEK), small containers, the
 * real Azure TDX container (tests/vectors/azure/tdx/evidence-v1.json) and its HCL report.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cloister/crypto.h>
#include <cloister/evidence.h>

#include "evidence/azure_int.h"

/* SHA-256 of tests/vectors/azure: the SNP reports (HCL bytes 0x20..0x4BF) of hcl-report.bin,
 * evidence-v0, -v1, -v2 and -genoa. */
static const char *const genuine_sha256[] = {
    "2e63568e22c4d413bba4df659507254ec21b25b0946631e3d7567166c0dc361e",
    "05b7438a3d8dedba4205f099ee05ba8b3d6363e435b78ee321b10e99d55bba83",
    "2cf09fff14223f0fecb444d863839af6efe59d2736b9d5706d90d47bfbc7fd19",
    "14fd2b6e459c85e71d42f9e499a5e67861414457ca43d2f90a26620068a5453e",
    "227a641db25e82ae50344a548bdb8497ddcbb4783d67012b56d2c052ac57b4ad",
};

#define AT_2026 INT64_C(1767225600)

static bool
genuine(const uint8_t *report)
{
    uint8_t d[CLST_SHA256_SIZE];
    char hex[2 * CLST_SHA256_SIZE + 1];
    if (clst_sha256(report, SEVSNP_REPORT_SIZE, d) != CLST_OK ||
        clst_hex_to_str(d, sizeof(d), hex, sizeof(hex)) != CLST_OK) {
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
check_hcl(const uint8_t *data, size_t size)
{
    struct azure_hcl h;
    struct clst_err err;
    memset(&err, 0, sizeof(err));
    enum clst_status rc = evidence_azure_hcl_parse(data, size, &h, &err);
    if (rc == CLST_OK) {
        if (h.report_size != AZURE_HCL_VAR_OFFSET + h.var_size || h.report_size > size ||
            (h.report_type != AZURE_REPORT_TYPE_SNP && h.report_type != AZURE_REPORT_TYPE_TDX)) {
            abort();
        }
    } else if ((rc != CLST_E_MALFORMED && rc != CLST_E_LIMIT) || err.msg[0] == '\0') {
        abort();
    }
}

static void
check_container(const uint8_t *data, size_t size)
{
    static struct azure_evidence ev; /* large: not on the stack */
    static STACK_OF(X509) *roots;
    struct clst_evidence_input in;
    struct clst_err err;
    json_t *claims = NULL;

    memset(&err, 0, sizeof(err));
    enum clst_status rc = evidence_azure_parse(data, size, &ev, &err);
    if (rc == CLST_OK) {
        if (ev.hcl_size > sizeof(ev.hcl_raw) || ev.hcl.report_size > ev.hcl_size ||
            ev.tpm.quote_size == 0 || ev.tpm.quote_size > sizeof(ev.tpm.quote) ||
            ev.tpm_sig_size == 0 || ev.tpm_sig_size > sizeof(ev.tpm_sig) ||
            ev.vcek_size > sizeof(ev.vcek) || ev.result != &ev.result_store ||
            ev.tpm.result != &ev.tpm.result_store ||
            (ev.hcl.report_type == AZURE_REPORT_TYPE_TDX &&
             (ev.td_quote_size == 0 || ev.td_quote_size > sizeof(ev.td_quote_raw) ||
              ev.tdq.result != &ev.tdq.result_store || ev.vcek_size != 0)) ||
            (ev.hcl.report_type == AZURE_REPORT_TYPE_SNP && ev.td_quote_size != 0)) {
            abort();
        }
    } else if ((rc != CLST_E_MALFORMED && rc != CLST_E_LIMIT) || err.msg[0] == '\0') {
        abort();
    } else {
        return; /* the pipeline would parse it the same way */
    }
    if (roots == NULL && clst_evidence_sevsnp_roots(&roots, NULL) != CLST_OK) {
        abort();
    }
    memset(&in, 0, sizeof(in));
    in.evidence = data;
    in.evidence_size = size;
    in.roots = roots;
    in.at = AT_2026;
    memset(&err, 0, sizeof(err));
    rc = clst_evidence_verify(CLST_EVIDENCE_AZURE_VTPM, &in, &claims, &err);
    if (rc == CLST_OK) {
        /* parse again to see what was accepted */
        if (evidence_azure_parse(data, size, &ev, NULL) != CLST_OK ||
            ev.hcl.report_type != AZURE_REPORT_TYPE_SNP ||
            !genuine(ev.hcl_raw + AZURE_HCL_HW_OFFSET) || claims == NULL) {
            abort();
        }
        json_decref(claims);
    } else if (err.msg[0] == '\0' || claims != NULL) {
        abort();
    }
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
    check_hcl(data, size);
    check_container(data, size);
    if (size >= AZURE_TDREPORT_SIZE) {
        static struct azure_tdreport td;
        struct clst_err err;
        memset(&err, 0, sizeof(err));
        enum clst_status rc = evidence_azure_tdreport_parse(data, AZURE_TDREPORT_SIZE, &td, &err);
        if (rc != CLST_OK && (rc != CLST_E_MALFORMED || err.msg[0] == '\0')) {
            abort();
        }
    }
    return 0;
}
