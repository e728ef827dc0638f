/*
 * The evidence framework: kind names, the registry of verifiers, and the one pipeline every kind
 * goes through (size limit -> parse -> verify -> debug and binding checks -> claims).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/asn1.h>
#include <openssl/crypto.h>
#include <openssl/x509.h>

#include "evidence/evidence_int.h"
#include "evidence/azure_int.h"
#include "evidence/dcap_int.h"
#include "evidence/sevsnp_int.h"
#include "evidence/nitro_int.h"
#include "evidence/tpm_int.h"

bool
evidence_all_zero(const uint8_t *p, size_t n)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++) {
        acc |= p[i];
    }
    return acc == 0;
}

void
evidence_cache_count(struct evidence_cache_state *st, bool hit)
{
    if (hit) {
        st->hits++;
    } else {
        st->misses++;
    }
}

void
evidence_cache_stats(struct evidence_cache_state *st, uint64_t *out_hits, uint64_t *out_misses)
{
    pthread_mutex_lock(&st->lock);
    if (out_hits != NULL) {
        *out_hits = st->hits;
    }
    if (out_misses != NULL) {
        *out_misses = st->misses;
    }
    pthread_mutex_unlock(&st->lock);
}

static bool
asn1_time_epoch(const ASN1_TIME *t, int64_t *out)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1) {
        return false;
    }
    *out = clst_time_from_civil((int64_t)tm.tm_year + 1900, (int64_t)tm.tm_mon + 1, tm.tm_mday,
                                tm.tm_hour, tm.tm_min, tm.tm_sec);
    return true;
}

bool
evidence_chain_window(STACK_OF(X509) *chain, int64_t *out_nb, int64_t *out_na)
{
    int64_t nb = INT64_MIN, na = INT64_MAX;
    for (int i = 0; i < sk_X509_num(chain); i++) {
        X509 *c = sk_X509_value(chain, i);
        int64_t b, a;
        if (!asn1_time_epoch(X509_get0_notBefore(c), &b) ||
            !asn1_time_epoch(X509_get0_notAfter(c), &a)) {
            return false;
        }
        nb = b > nb ? b : nb;
        na = a < na ? a : na;
    }
    *out_nb = nb;
    *out_na = na;
    return nb <= na;
}

static const struct {
    enum clst_evidence_kind kind;
    const char *name;
} kind_names[] = {
    {CLST_EVIDENCE_SIM, "sim"},     {CLST_EVIDENCE_SEVSNP, "sevsnp"},
    {CLST_EVIDENCE_TDX, "tdx"},     {CLST_EVIDENCE_SGX, "sgx"},
    {CLST_EVIDENCE_TPM, "tpm"},     {CLST_EVIDENCE_AZURE_VTPM, "azure-vtpm"},
    {CLST_EVIDENCE_NITRO, "nitro"},
};

#define KIND_NAME_COUNT (sizeof(kind_names) / sizeof(kind_names[0]))

/* The registry: one entry per kind this build verifies. Hardware kinds join here. */
static const struct evidence_ops *const registry[] = {
    &evidence_sim_ops,
    &evidence_tdx_ops, /* tdx_quote.c (declared in dcap_int.h) */
    &evidence_sgx_ops, /* sgx_quote.c */
    &evidence_sevsnp_ops,
    &evidence_nitro_ops, /* nitro_verify.c (declared in nitro_int.h) */
    &evidence_tpm_ops,   /* tpm_verify.c (declared in tpm_int.h) */
    &evidence_azure_ops, /* azure_vtpm.c (declared in azure_int.h) */
};

#define REGISTRY_COUNT (sizeof(registry) / sizeof(registry[0]))

static const struct evidence_ops *
find_ops(enum clst_evidence_kind kind)
{
    for (size_t i = 0; i < REGISTRY_COUNT; i++) {
        if (registry[i]->kind == kind) {
            return registry[i];
        }
    }
    return NULL;
}

const char *
clst_evidence_kind_name(enum clst_evidence_kind kind)
{
    for (size_t i = 0; i < KIND_NAME_COUNT; i++) {
        if (kind_names[i].kind == kind) {
            return kind_names[i].name;
        }
    }
    return NULL;
}

enum clst_status
clst_evidence_kind_parse(const char *name, enum clst_evidence_kind *out, struct clst_err *err)
{
    if (name == NULL || out == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "evidence kind: no name given");
    }
    for (size_t i = 0; i < KIND_NAME_COUNT; i++) {
        if (strcmp(kind_names[i].name, name) == 0) {
            *out = kind_names[i].kind;
            return CLST_OK;
        }
    }
    return clst_err_set(err, CLST_E_NOTFOUND,
                        "unknown evidence kind '%.40s'; known kinds: sim, sevsnp, tdx, sgx, tpm, "
                        "azure-vtpm, nitro",
                        name);
}

bool
clst_evidence_kind_supported(enum clst_evidence_kind kind)
{
    return find_ops(kind) != NULL;
}

size_t
clst_evidence_max_size(enum clst_evidence_kind kind)
{
    const struct evidence_ops *ops = find_ops(kind);
    return ops != NULL ? ops->max_size : 0;
}

enum clst_status
clst_evidence_report_data_bind(const uint8_t *runtime_data, size_t runtime_data_size,
                               uint8_t out[static CLST_EVIDENCE_REPORT_DATA_SIZE])
{
    uint8_t digest[CLST_SHA256_SIZE];
    if (runtime_data == NULL && runtime_data_size != 0) {
        return CLST_E_INVAL;
    }
    enum clst_status rc = clst_sha256(runtime_data != NULL ? runtime_data : (const uint8_t *)"",
                                      runtime_data_size, digest);
    if (rc != CLST_OK) {
        return rc;
    }
    memset(out, 0, CLST_EVIDENCE_REPORT_DATA_SIZE);
    memcpy(out, digest, sizeof(digest));
    return CLST_OK;
}

/* The framework's checks on verified evidence: the debug flag and the report-data binding. */
static enum clst_status
check_binding(const struct evidence_ops *ops, const void *parsed,
              const struct clst_evidence_input *in, struct clst_err *err)
{
    if (!in->allow_debug && ops->is_debuggable(parsed)) {
        return clst_err_set(err, CLST_E_VERIFY,
                            "%s evidence: the TEE is debuggable (its memory is readable from "
                            "outside); rebuild the enclave without debug, or allow debug TEEs "
                            "explicitly for development",
                            ops->name);
    }
    size_t rd_size = 0;
    const uint8_t *rd = ops->report_data(parsed, &rd_size);
    if (in->report_data != NULL) {
        if (in->report_data_size != rd_size || CRYPTO_memcmp(in->report_data, rd, rd_size) != 0) {
            return clst_err_set(err, CLST_E_VERIFY,
                                "%s evidence: the report data is not the expected value (the "
                                "evidence was made for another challenge or key)",
                                ops->name);
        }
    }
    if (in->runtime_data != NULL) {
        uint8_t digest[CLST_SHA256_SIZE];
        enum clst_status rc = clst_sha256(in->runtime_data, in->runtime_data_size, digest);
        if (rc != CLST_OK) {
            return clst_err_set(err, rc, "%s evidence: cannot hash the runtime data", ops->name);
        }
        if (rd_size < sizeof(digest) || CRYPTO_memcmp(digest, rd, sizeof(digest)) != 0) {
            return clst_err_set(err, CLST_E_VERIFY,
                                "%s evidence: the report data does not match the runtime data "
                                "(its first 32 bytes must be SHA-256 of the runtime data); the "
                                "evidence was made for other runtime data",
                                ops->name);
        }
    }
    return CLST_OK;
}

enum clst_status
clst_evidence_verify(enum clst_evidence_kind kind, const struct clst_evidence_input *in,
                     json_t **out_claims, struct clst_err *err)
{
    enum clst_status rc = CLST_E_INTERNAL;
    void *parsed = NULL;
    json_t *claims = NULL;
    const struct evidence_ops *ops = NULL;

    if (in == NULL || out_claims == NULL || (in->evidence == NULL && in->evidence_size != 0) ||
        (in->endorsements == NULL && in->endorsements_size != 0) ||
        (in->runtime_data == NULL && in->runtime_data_size != 0)) {
        rc = clst_err_set(err, CLST_E_INVAL, "evidence verification: inconsistent input");
        goto out;
    }
    ops = find_ops(kind);
    if (ops == NULL) {
        const char *name = clst_evidence_kind_name(kind);
        rc = clst_err_set(err, CLST_E_NOTFOUND,
                          "evidence kind '%s' is not supported by this build (supported: sim, sevsnp, tdx, "
                          "sgx, tpm, azure-vtpm, nitro)",
                          name != NULL ? name : "?");
        goto out;
    }
    /* tpm: an enrolled attestation key replaces the certificate chain (docs/evidence-tpm.md). */
    if ((in->roots == NULL || sk_X509_num(in->roots) < 1) &&
        !(kind == CLST_EVIDENCE_TPM && in->tpm_ak != NULL)) {
        rc = clst_err_set(err, CLST_E_INVAL,
                          "%s evidence: no trust roots given; pass the root certificate(s) the "
                          "evidence must chain to",
                          ops->name);
        goto out;
    }
    /* The size limit comes first: nothing of an oversized input is parsed or verified. */
    if (in->evidence_size > ops->max_size) {
        rc = clst_err_set(err, CLST_E_LIMIT,
                          "%s evidence is %zu bytes, more than the limit of %zu bytes; it is not "
                          "%s evidence",
                          ops->name, in->evidence_size, ops->max_size, ops->name);
        goto out;
    }
    parsed = calloc(1, ops->parsed_size);
    if (parsed == NULL) {
        rc = clst_err_set(err, CLST_E_NOMEM, "out of memory");
        goto out;
    }
    rc = ops->parse(in->evidence, in->evidence_size, parsed, err);
    if (rc != CLST_OK) {
        goto out;
    }
    rc = ops->verify(parsed, in->evidence, in->evidence_size, in, err);
    if (rc != CLST_OK) {
        goto out;
    }
    rc = check_binding(ops, parsed, in, err);
    if (rc != CLST_OK) {
        goto out;
    }
    claims = json_object();
    if (claims == NULL) {
        rc = clst_err_set(err, CLST_E_NOMEM, "out of memory");
        goto out;
    }
    rc = ops->claims(parsed, claims, err);
    if (rc != CLST_OK) {
        goto out;
    }
    *out_claims = claims;
    claims = NULL;
    rc = CLST_OK;
out:
    json_decref(claims);
    if (parsed != NULL) {
        OPENSSL_cleanse(parsed, ops->parsed_size);
        free(parsed);
    }
    return rc;
}
