/*
 * The hardware attestation types: which roots and collateral each one is verified against.
 *
 * The vendor roots are the ones compiled into the binary (evidence.h: AMD ARKs, the Intel SGX
 * Root CA, the AWS Nitro root); a root inside the evidence is never an anchor. What cannot be
 * compiled in is configuration, read once when the engine starts: Intel DCAP collateral
 * (SgxEnclave, TdxVm), a local VCEK cache (SevSnpVm) and the CAs of TPM attestation keys (Tpm).
 *
 * DCAP TCB statuses: the verifier is asked to accept every status but Revoked, so that the
 * appraisal policy decides (its default rule admits attester_tcb_status "UpToDate" only; an
 * administrator widens it with PUT /policies/{type}). Revoked is never accepted.
 */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cloister/crypto.h>

#include "attest_int.h"

#define COLLATERAL_MAX     (16u * 1024 * 1024) /* one bundle (the loader caps each file) */
#define VCEK_MAX_FILES     64
#define VCEK_FILE_MAX      (64u * 1024)
#define VCEK_TOTAL_MAX     (256u * 1024)
#define TPM_ROOTS_FILE_MAX (1024u * 1024)
#define TCB_INFO_FILE_MAX  (256u * 1024)

/* Every DCAP status but Revoked: the appraisal policy chooses among them. */
static const char dcap_all_statuses[] =
    "UpToDate,SWHardeningNeeded,ConfigurationNeeded,ConfigurationAndSWHardeningNeeded,"
    "OutOfDate,OutOfDateConfigurationNeeded";

/* Reads a whole regular file of at most `max` bytes into out (initialized here). */
static enum clst_status
read_file(const char *path, size_t max, struct clst_buf *out, struct clst_err *err)
{
    enum clst_status rc = CLST_E_IO;
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    clst_buf_init(out, max);
    if (fd < 0) {
        return clst_err_set(err, CLST_E_IO, "cannot open %s: %s", path, strerror(errno));
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = clst_err_set(err, CLST_E_IO, "%s is not a regular file", path);
        goto out;
    }
    if ((uint64_t)st.st_size > max) {
        rc = clst_err_set(err, CLST_E_LIMIT, "%s is larger than %zu bytes", path, max);
        goto out;
    }
    size_t want = (size_t)st.st_size;
    if (want > 0 && (rc = clst_buf_reserve(out, want)) != CLST_OK) {
        rc = clst_err_set(err, rc, "out of memory reading %s", path);
        goto out;
    }
    while (out->size < want) {
        ssize_t n = read(fd, out->data + out->size, want - out->size);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            rc = clst_err_set(err, CLST_E_IO, "cannot read %s: %s", path, strerror(errno));
            goto out;
        }
        if (n == 0) {
            break; /* the file shrank: take what is there */
        }
        out->size += (size_t)n;
    }
    rc = CLST_OK;
out:
    close(fd);
    if (rc != CLST_OK) {
        clst_buf_cleanup(out);
    }
    return rc;
}

/* ---- DCAP collateral ------------------------------------------------------------------------- */

static bool
is_collateral_dir(const char *dir)
{
    char p[4096];
    struct stat st;
    int n = snprintf(p, sizeof(p), "%s/tcb_info.json", dir);
    return n > 0 && (size_t)n < sizeof(p) && stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* TDX when tcb_info.json's tcbInfo.id is "TDX", else SGX (v2 files have no id). */
static enum clst_status
collateral_kind(const char *dir, enum clst_evidence_kind *out, struct clst_err *err)
{
    char p[4096];
    struct clst_buf text;
    json_error_t jerr;
    snprintf(p, sizeof(p), "%s/tcb_info.json", dir);
    enum clst_status rc = read_file(p, TCB_INFO_FILE_MAX, &text, err);
    if (rc != CLST_OK) {
        return rc;
    }
    json_t *doc = json_loadb(text.size ? (const char *)text.data : "", text.size, 0, &jerr);
    clst_buf_cleanup(&text);
    const char *id = json_string_value(json_object_get(json_object_get(doc, "tcbInfo"), "id"));
    if (!json_is_object(json_object_get(doc, "tcbInfo"))) {
        json_decref(doc);
        return clst_err_set(err, CLST_E_MALFORMED,
                            "%s is not Intel TCB info ({\"tcbInfo\":{...},\"signature\":...})", p);
    }
    *out = (id != NULL && strcmp(id, "TDX") == 0) ? CLST_EVIDENCE_TDX : CLST_EVIDENCE_SGX;
    json_decref(doc);
    return CLST_OK;
}

static enum clst_status
add_collateral_set(struct attest_hw *hw, const char *dir, struct clst_err *err)
{
    enum clst_status rc;
    if (hw->coll_count == CLST_ATTEST_MAX_COLLATERAL_SETS) {
        return clst_err_set(err, CLST_E_LIMIT, "more than %d DCAP collateral sets",
                            CLST_ATTEST_MAX_COLLATERAL_SETS);
    }
    struct attest_collateral *c = &hw->coll[hw->coll_count];
    memset(c, 0, sizeof(*c));
    if ((rc = collateral_kind(dir, &c->kind, err)) != CLST_OK) {
        return rc;
    }
    clst_buf_init(&c->bundle, COLLATERAL_MAX);
    if ((rc = clst_evidence_dcap_collateral_load(dir, &c->bundle, err)) != CLST_OK) {
        clst_buf_cleanup(&c->bundle);
        return clst_err_prefix(err, "DCAP collateral %s", dir);
    }
    if ((c->path = strdup(dir)) == NULL) {
        clst_buf_cleanup(&c->bundle);
        return clst_err_set(err, CLST_E_NOMEM, "out of memory");
    }
    hw->coll_count++;
    return CLST_OK;
}

static int
select_dirs(const struct dirent *e)
{
    return e->d_name[0] != '.';
}

static enum clst_status
load_collateral(struct attest_hw *hw, const char *dir, struct clst_err *err)
{
    enum clst_status rc = CLST_OK;
    struct dirent **names = NULL;
    hw->coll = calloc(CLST_ATTEST_MAX_COLLATERAL_SETS, sizeof(*hw->coll));
    if (hw->coll == NULL) {
        return clst_err_set(err, CLST_E_NOMEM, "out of memory");
    }
    if (is_collateral_dir(dir)) {
        return add_collateral_set(hw, dir, err);
    }
    int n = scandir(dir, &names, select_dirs, alphasort);
    if (n < 0) {
        return clst_err_set(err, CLST_E_IO, "DCAP collateral %s: %s", dir, strerror(errno));
    }
    for (int i = 0; i < n; i++) {
        char sub[4096];
        int k = snprintf(sub, sizeof(sub), "%s/%s", dir, names[i]->d_name);
        if (rc == CLST_OK && k > 0 && (size_t)k < sizeof(sub) && is_collateral_dir(sub)) {
            rc = add_collateral_set(hw, sub, err);
        }
        free(names[i]);
    }
    free(names);
    if (rc == CLST_OK && hw->coll_count == 0) {
        rc = clst_err_set(err, CLST_E_NOTFOUND,
                          "DCAP collateral %s: neither it nor a directory in it holds "
                          "tcb_info.json (docs/evidence-dcap.md lists the five files)",
                          dir);
    }
    return rc;
}

/* ---- the VCEK cache -------------------------------------------------------------------------- */

static bool
has_cert_suffix(const char *name)
{
    static const char *const suffixes[] = {".pem", ".crt", ".cer", ".der"};
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        size_t k = strlen(suffixes[i]);
        if (n > k && strcmp(name + n - k, suffixes[i]) == 0) {
            return true;
        }
    }
    return false;
}

static enum clst_status
append_der(const char *path, const struct clst_buf *file, struct clst_buf *out,
           struct clst_err *err)
{
    enum clst_status rc;
    STACK_OF(X509) *stack = NULL;
    X509 *one = NULL;
    bool pem = file->size >= 11 && memcmp(file->data, "-----BEGIN ", 11) == 0;
    const uint8_t *data = file->size ? file->data : (const uint8_t *)"";
    if ((rc = pem ? clst_x509_stack_from_pem(data, file->size, &stack, err)
                  : clst_x509_from_der(data, file->size, &one, err)) != CLST_OK) {
        return clst_err_prefix(err, "VCEK cache file %s", path);
    }
    for (int i = 0; i < (pem ? sk_X509_num(stack) : 1); i++) {
        unsigned char *der = NULL;
        int n = i2d_X509(pem ? sk_X509_value(stack, i) : one, &der);
        rc = n > 0 ? clst_buf_append(out, der, (size_t)n) : CLST_E_CRYPTO;
        OPENSSL_free(der);
        if (rc != CLST_OK) {
            rc = clst_err_set(err, CLST_E_LIMIT,
                              "the VCEK cache's certificates exceed %u bytes in all (at %s)",
                              VCEK_TOTAL_MAX, path);
            break;
        }
    }
    sk_X509_pop_free(stack, X509_free);
    X509_free(one);
    return rc;
}

static enum clst_status
load_vcek_cache(struct attest_hw *hw, const char *dir, struct clst_err *err)
{
    enum clst_status rc = CLST_OK;
    struct dirent **names = NULL;
    size_t files = 0;
    clst_buf_init(&hw->vcek_certs, VCEK_TOTAL_MAX);
    int n = scandir(dir, &names, select_dirs, alphasort);
    if (n < 0) {
        return clst_err_set(err, CLST_E_IO, "VCEK cache %s: %s", dir, strerror(errno));
    }
    for (int i = 0; i < n; i++) {
        char p[4096];
        struct stat st;
        int k = snprintf(p, sizeof(p), "%s/%s", dir, names[i]->d_name);
        if (rc == CLST_OK && has_cert_suffix(names[i]->d_name) && k > 0 && (size_t)k < sizeof(p) &&
            stat(p, &st) == 0 && S_ISREG(st.st_mode)) {
            struct clst_buf one;
            if (++files > VCEK_MAX_FILES) {
                rc = clst_err_set(err, CLST_E_LIMIT, "VCEK cache %s: more than %d files", dir,
                                  VCEK_MAX_FILES);
            } else if ((rc = read_file(p, VCEK_FILE_MAX, &one, err)) == CLST_OK) {
                rc = append_der(p, &one, &hw->vcek_certs, err);
                clst_buf_cleanup(&one);
            }
        }
        free(names[i]);
    }
    free(names);
    return rc;
}

/* ---- lifecycle ------------------------------------------------------------------------------- */

void
attest_hw_cleanup(struct attest_hw *hw)
{
    sk_X509_pop_free(hw->amd_roots, X509_free);
    sk_X509_pop_free(hw->intel_roots, X509_free);
    sk_X509_pop_free(hw->nitro_roots, X509_free);
    sk_X509_pop_free(hw->tpm_roots, X509_free);
    clst_buf_cleanup(&hw->vcek_certs);
    for (size_t i = 0; i < hw->coll_count; i++) {
        free(hw->coll[i].path);
        clst_buf_cleanup(&hw->coll[i].bundle);
    }
    free(hw->coll);
    memset(hw, 0, sizeof(*hw));
}

enum clst_status
attest_hw_load(struct attest_hw *hw, const struct clst_attest_config *cfg, struct clst_err *err)
{
    enum clst_status rc;
    memset(hw, 0, sizeof(*hw));
    if ((rc = clst_evidence_sevsnp_roots(&hw->amd_roots, err)) != CLST_OK ||
        (rc = clst_evidence_intel_roots(&hw->intel_roots, err)) != CLST_OK ||
        (rc = clst_evidence_nitro_roots(&hw->nitro_roots, err)) != CLST_OK) {
        return clst_err_prefix(err, "cannot load the compiled-in vendor roots");
    }
    if (cfg->dcap_collateral_dir != NULL &&
        (rc = load_collateral(hw, cfg->dcap_collateral_dir, err)) != CLST_OK) {
        return rc;
    }
    if (cfg->vcek_cache_dir != NULL &&
        (rc = load_vcek_cache(hw, cfg->vcek_cache_dir, err)) != CLST_OK) {
        return rc;
    }
    if (cfg->tpm_roots_file != NULL) {
        struct clst_buf pem;
        if ((rc = read_file(cfg->tpm_roots_file, TPM_ROOTS_FILE_MAX, &pem, err)) != CLST_OK) {
            return clst_err_prefix(err, "TPM AK roots");
        }
        rc = clst_x509_stack_from_pem(pem.size ? pem.data : (const uint8_t *)"", pem.size,
                                      &hw->tpm_roots, err);
        clst_buf_cleanup(&pem);
        if (rc != CLST_OK) {
            return clst_err_prefix(err, "TPM AK roots %s", cfg->tpm_roots_file);
        }
        if (sk_X509_num(hw->tpm_roots) <= 0) {
            return clst_err_set(err, CLST_E_INVAL, "TPM AK roots %s: no certificate in it",
                                cfg->tpm_roots_file);
        }
    }
    return CLST_OK;
}

static size_t
count_sets(const struct attest_hw *hw, enum clst_evidence_kind kind)
{
    size_t n = 0;
    for (size_t i = 0; i < hw->coll_count; i++) {
        n += hw->coll[i].kind == kind;
    }
    return n;
}

void
clst_attest_hardware_summary(const struct clst_attest *a, char *out, size_t size)
{
    char ok[256] = "", off[256] = "";
    size_t nok = 0, noff = 0;
    if (out == NULL || size == 0) {
        return;
    }
    for (size_t i = 0; i < clst_attest_type_count(); i++) {
        const struct clst_attest_type *t = clst_attest_type_at(i);
        const char *why = NULL;
        char extra[64] = "";
        if (t->kind == CLST_EVIDENCE_SIM) {
            continue;
        }
        if (!clst_evidence_kind_supported(t->kind)) {
            why = "not available in this build";
        } else if (t->kind == CLST_EVIDENCE_SGX || t->kind == CLST_EVIDENCE_TDX) {
            size_t n = a ? count_sets(&a->hw, t->kind) : 0;
            if (n == 0) {
                why = "--collateral";
            } else {
                snprintf(extra, sizeof(extra), " (%zu collateral set%s)", n, n == 1 ? "" : "s");
            }
        } else if (t->kind == CLST_EVIDENCE_TPM && (a == NULL || a->hw.tpm_roots == NULL)) {
            why = "--tpm-ak-roots";
        } else if (t->kind == CLST_EVIDENCE_SEVSNP && a != NULL && a->hw.vcek_certs.size > 0) {
            snprintf(extra, sizeof(extra), " (VCEK cache)");
        }
        size_t used = strlen(why ? off : ok);
        char *dst = why ? off : ok;
        int k = why ? snprintf(dst + used, sizeof(off) - used, "%s%s (%s)", noff++ ? ", " : "",
                               t->name, why)
                    : snprintf(dst + used, sizeof(ok) - used, "%s%s%s", nok++ ? ", " : "", t->name,
                               extra);
        (void)k;
    }
    snprintf(out, size, "hardware types verified: %s%s%s", nok ? ok : "none",
             noff ? "; not configured: " : "", noff ? off : "");
}

/* ---- verification ---------------------------------------------------------------------------- */

static enum clst_status
not_configured(const struct clst_attest_type *type, const char *how, struct clst_err *err)
{
    return clst_err_set(err, CLST_E_NOTFOUND, "%s evidence is not accepted by this service: %s",
                        type->name, how);
}

static enum clst_status
verify_with_dcap_sets(const struct attest_hw *hw, const struct clst_attest_type *type,
                      enum clst_evidence_kind sets, const char *statuses,
                      struct clst_evidence_input *in, json_t **out_claims, struct clst_err *err)
{
    size_t n = count_sets(hw, sets);
    if (n == 0) {
        return not_configured(type,
                              hw->coll_count == 0
                                  ? "no Intel DCAP collateral is configured (start the "
                                    "service with --collateral DIR)"
                                  : "none of the configured DCAP collateral sets is for "
                                    "this TEE (tcb_info.json id \"TDX\" for TdxVm, SGX "
                                    "TCB info for SgxEnclave; TDX collateral for an "
                                    "AzureVm on TDX)",
                              err);
    }
    in->roots = hw->intel_roots;
    in->tcb_statuses = statuses;
    struct clst_err first = {0};
    size_t tried = 0;
    enum clst_status first_rc = CLST_E_VERIFY;
    for (size_t i = 0; i < hw->coll_count; i++) {
        const struct attest_collateral *c = &hw->coll[i];
        if (c->kind != sets) {
            continue;
        }
        in->endorsements = c->bundle.data;
        in->endorsements_size = c->bundle.size;
        struct clst_err e = {0};
        enum clst_status rc = clst_evidence_verify(type->kind, in, out_claims, &e);
        if (rc == CLST_OK) {
            return CLST_OK;
        }
        if (rc == CLST_E_LIMIT || rc == CLST_E_MALFORMED) {
            /* The quote itself: every set would say the same. */
            *err = e;
            return rc;
        }
        if (tried++ == 0) {
            first = e;
            first_rc = rc;
        }
    }
    *err = first;
    if (tried > 1) {
        clst_err_prefix(err,
                        "no collateral set verified the quote (%zu tried; the first "
                        "said)",
                        tried);
    }
    return first_rc == CLST_OK ? CLST_E_VERIFY : first_rc;
}

enum clst_status
attest_hw_verify(const struct attest_hw *hw, const struct clst_attest_type *type,
                 const struct clst_buf *req_certs, struct clst_evidence_input *in,
                 json_t **out_claims, struct clst_err *err)
{
    if (!clst_evidence_kind_supported(type->kind)) {
        return not_configured(type, "its verifier is not available in this build", err);
    }
    switch (type->kind) {
    case CLST_EVIDENCE_SEVSNP: {
        /* Certificates from the request (VcekCertChain) and from the cache, in one pool. */
        struct clst_buf pool;
        clst_buf_init(&pool, 2 * VCEK_TOTAL_MAX);
        if ((req_certs != NULL && req_certs->size > 0 &&
             clst_buf_append(&pool, req_certs->data, req_certs->size) != CLST_OK) ||
            (hw->vcek_certs.size > 0 &&
             clst_buf_append(&pool, hw->vcek_certs.data, hw->vcek_certs.size) != CLST_OK)) {
            clst_buf_cleanup(&pool);
            return clst_err_set(err, CLST_E_NOMEM, "out of memory");
        }
        in->roots = hw->amd_roots;
        if (pool.size > 0) {
            in->endorsements = pool.data;
            in->endorsements_size = pool.size;
        }
        enum clst_status rc = clst_evidence_verify(type->kind, in, out_claims, err);
        in->endorsements = NULL;
        in->endorsements_size = 0;
        clst_buf_cleanup(&pool);
        return rc;
    }
    case CLST_EVIDENCE_NITRO:
        in->roots = hw->nitro_roots;
        return clst_evidence_verify(type->kind, in, out_claims, err);
    case CLST_EVIDENCE_TPM:
        if (hw->tpm_roots == NULL) {
            return not_configured(type,
                                  "no CA for TPM attestation keys is configured (start the "
                                  "service with --tpm-ak-roots PEM)",
                                  err);
        }
        in->roots = hw->tpm_roots;
        return clst_evidence_verify(type->kind, in, out_claims, err);
    case CLST_EVIDENCE_AZURE_VTPM: {
        /* The HCL report carries an SNP report whose chain ends at a compiled-in AMD root (plus
         * its VCEK chain), or a TDREPORT with its TD quote, verified like TdxVm evidence with the
         * configured TDX collateral sets; the vTPM key is bound by either. */
        enum clst_evidence_kind inside = CLST_EVIDENCE_SEVSNP;
        enum clst_status krc =
            clst_evidence_azure_tee_kind(in->evidence, in->evidence_size, &inside, err);
        if (krc != CLST_OK) {
            return krc;
        }
        if (inside == CLST_EVIDENCE_TDX) {
            /* UpToDate only, enforced here: the AzureVm appraisal policy has no TCB status rule
             * (its claim is nested under x-ms-isolation-tee). */
            return verify_with_dcap_sets(hw, type, CLST_EVIDENCE_TDX, NULL, in, out_claims, err);
        }
        in->roots = hw->amd_roots;
        if (hw->vcek_certs.size > 0) {
            in->endorsements = hw->vcek_certs.data;
            in->endorsements_size = hw->vcek_certs.size;
        }
        return clst_evidence_verify(type->kind, in, out_claims, err);
    }
    case CLST_EVIDENCE_SGX:
    case CLST_EVIDENCE_TDX:
        /* Every status verifies; the appraisal policy's attester_tcb_status rule decides. */
        return verify_with_dcap_sets(hw, type, type->kind, dcap_all_statuses, in, out_claims, err);
    case CLST_EVIDENCE_SIM:
    default:
        return clst_err_set(err, CLST_E_INTERNAL, "attest_hw_verify: not a hardware type");
    }
}
