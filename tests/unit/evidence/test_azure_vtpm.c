/*
 * Unit tests for src/evidence/azure_vtpm.c: Azure confidential-VM evidence (HCL report with an
 * SEV-SNP report inside, HCLAkPub in its variable data, the vTPM quote signed by HCLAkPub).
 *
 * Real vectors (tests/vectors/azure/README.md: trustee az-snp-vtpm test data from real Azure CVMs),
 * through the public pipeline clst_evidence_verify() with the AMD roots compiled into the build, at
 * the README's fixed time 2026-01-01T00:00:00Z:
 *   - positive: evidence-v0 (byte arrays + PEM VCEK), -v1, -v2 (strings + DER VCEK), -genoa, and
 *     "unit" (hcl-report.bin + tpm-quote-v1.json, no VCEK inside: the VCEK chain vcek.pem is given
 *     as endorsements); claims checked against the README's table;
 *   - the README's upstream negative recipes: byte 0x1A6 := 0, byte 0x6E0 += 1, byte 0x540 := 0 of
 *     hcl-report.bin, TPM signature byte 0 ^= 1, PCR0 byte 0 ^= 1, a nonce other than "challenge",
 *     and evidence-v2 with expected report data 123abc (trustee compares it with the HCL user-data;
 *     here the caller's expected value is compared with the quote's nonce, so it is rejected the
 *     same way);
 *   - every truncation of the HCL report: below report_size every length is refused; lengths from
 *     report_size to the 2600-byte buffer only drop zero padding and are accepted (parse checked
 * for every one, full verification for nine lengths);
 *   - flipped bytes in each signed region, sampled to keep the run short under ASan (each mutant
 *     costs a full verification): the SNP report's signed bytes (every 11th byte) and bytes of R
 *     and S, the variable data (every 29th byte: the binding fails), the TPMS_ATTEST (every 3rd
 *     byte), the signature, every 5th PCR value; every byte of the header and of the IGVM fields;
 *     the padding; the time before and after the VCEK's validity; the wrong VCEK; no VCEK; only
 *     the Genoa root for a Milan report;
 *   - the container: unknown, missing and duplicate members, bad encodings, wrong PCR counts and
 *     sizes, an oversized input (CLST_E_LIMIT).
 * Synthetic evidence (the SEV-SNP test PKI of test_sevsnp_fixture.h through
 * evidence_azure_verify_with, with a fresh RSA AK that signs TPMS_ATTESTs marshalled by tpm2-tss):
 * variable data not bound to REPORT_DATA (wrong hash; non-zero upper half), AK mismatch (quote
 * signed by another key), no/duplicate/EC HCLAkPub, nonce and runtime-data binding, the debug
 * policy bit (refused unless allow_debug), a report from VMPL 1 (refused even with max_vmpl 3),
 * a TDX HCL report without its TD quote (refused at parse), and the claims' shape. The
 * synthetic pipeline mirrors the order of clst_evidence_verify (parse, verify, debug, report data,
 * claims) because the production pipeline only knows the built-in AMD roots.
 *
 * TDX inside (tests/vectors/azure/tdx/README.md: trustee az-tdx-vtpm evidence-v1.json from a real
 * Azure TDX CVM, verified with Intel's collateral of tests/vectors/tdx/dcap-rs/collateral-2025-02
 * for its FMSPC 00806F050000 at 2025-03-01):
 *   - positive end to end through clst_evidence_verify (TD quote by DCAP, TDREPORT == quote body,
 *     REPORTDATA == SHA-256(variable data) || 0, HCLAkPub, the vTPM quote, nonce "challenge"), with
 *     the claims (tdx_* under x-ms-isolation-tee, x-ms-attestation-type tdxvm inside); the default
 *     TCB policy (UpToDate only) refuses its OutOfDate platform;
 *   - negative: no td_quote, a vcek with TDX, td_quote on an SNP HCL, no collateral, the time
 *     outside the collateral, another real TD's quote (dcap-rs, same FMSPC: DCAP accepts it, the
 *     comparison names the first differing field, TEE_TCB_SVN), an SGX quote, an oversized quote,
 *     truncated quotes, flipped bytes in the TDREPORT (sampled over every field the quote or the
 *     digests cover), in the variable data, in the IGVM fields, in the TD quote's signed part, the
 *     vTPM signature and the nonce;
 *   - the comparison function evidence_azure_tdx_bind on parsed structs: a real TD 1.0 quote
 *     (dcap-rs) and a real TD 1.5 one (go-tdx-guest v5), with a TDREPORT built from the quote body
 *     and its REPORTDATA set to SHA-256 of a constructed variable data (on the parsed struct: a
 *     real quote's signed report data cannot bind synthetic data), then each compared field
 *     changed in turn.
 * Not checked by anything (and so accepted when altered, asserted below): the TDREPORT's MAC and
 * CPUSVN, which only the TDX module of that machine can check; no claim comes from them.
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_dcap_fixture.h"
#include "test_sevsnp_fixture.h"

#include "evidence/azure_int.h"

/* 2026-01-01T00:00:00Z, inside every stored VCEK's validity (README). */
#define AZ_T_2026 INT64_C(1767225600)
#define AZ_T_2020 INT64_C(1577836800) /* before every VCEK */
#define AZ_T_2040 INT64_C(2208988800) /* after every VCEK */

/* ---- helpers -------------------------------------------------------------------------------- */

static uint8_t *
az_read(const char *rel, size_t *out_size)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/azure/%s", CLST_VECTORS_DIR, rel);
    uint8_t *p = tu_read_file(path, out_size);
    if (p == NULL) {
        fprintf(stderr, "cannot read %s\n", path);
    }
    assert_non_null(p);
    return p;
}

static STACK_OF(X509) *roots_all;

/* A TDREPORT (1024 bytes, version 0) describing the TD quote body `b`, with consistent
 * TEE_TCB_INFO_HASH and TEE_INFO_HASH (MAC and CPUSVN: fixed filler). */
static void
tdreport_encode(const struct dcap_td_report *b, uint8_t *out)
{
    uint8_t *tcb = out + AZURE_TEE_TCB_INFO_OFF, *ti = out + AZURE_TDINFO_OFF;
    memset(out, 0, AZURE_TDREPORT_SIZE);
    out[0] = AZURE_TDREPORT_TYPE_TDX;
    memset(out + 16, 0x06, 16);            /* CPUSVN */
    memcpy(out + 128, b->report_data, 64); /* REPORTDATA */
    memset(out + 224, 0x5a, 32);           /* MAC */
    tcb[0] = 0xff;                         /* VALID */
    memcpy(tcb + 8, b->tee_tcb_svn, 16);
    memcpy(tcb + 24, b->mrseam, 48);
    memcpy(tcb + 72, b->mrsignerseam, 48);
    memcpy(tcb + 120, b->seam_attributes, 8);
    memcpy(tcb + 128, b->tee_tcb_svn2, 16);
    memcpy(ti, b->td_attributes, 8);
    memcpy(ti + 8, b->xfam, 8);
    memcpy(ti + 16, b->mrtd, 48);
    memcpy(ti + 64, b->mrconfigid, 48);
    memcpy(ti + 112, b->mrowner, 48);
    memcpy(ti + 160, b->mrownerconfig, 48);
    memcpy(ti + 208, b->rtmr, 4 * 48);
    memcpy(ti + 400, b->mrservicetd, 48);
    assert_int_equal(clst_hash(CLST_HASH_SHA384, tcb, AZURE_TEE_TCB_INFO_SIZE, out + 32), CLST_OK);
    assert_int_equal(clst_hash(CLST_HASH_SHA384, ti, AZURE_TDINFO_SIZE, out + 80), CLST_OK);
}

static int
group_setup(void **state)
{
    (void)state;
    roots_all = snp_amd_roots();
    return roots_all != NULL ? 0 : -1;
}

static int
group_teardown(void **state)
{
    (void)state;
    sk_X509_pop_free(roots_all, X509_free);
    return 0;
}

/* Verifies through the public pipeline. */
static enum clst_status
az_verify_ex(const uint8_t *ev, size_t size, const uint8_t *endorse, size_t endorse_size,
             const uint8_t *nonce, size_t nonce_size, int64_t at, STACK_OF(X509) *roots,
             json_t **out_claims, struct clst_err *err)
{
    struct clst_evidence_input in;
    json_t *claims = NULL;
    memset(&in, 0, sizeof(in));
    in.evidence = ev;
    in.evidence_size = size;
    in.endorsements = endorse;
    in.endorsements_size = endorse_size;
    in.report_data = nonce;
    in.report_data_size = nonce_size;
    in.roots = roots != NULL ? roots : roots_all;
    in.at = at;
    enum clst_status rc = clst_evidence_verify(CLST_EVIDENCE_AZURE_VTPM, &in, &claims, err);
    if (rc == CLST_OK && out_claims != NULL) {
        *out_claims = claims;
    } else {
        json_decref(claims);
    }
    return rc;
}

static enum clst_status
az_verify(const uint8_t *ev, size_t size, const uint8_t *endorse, size_t endorse_size,
          json_t **out_claims, struct clst_err *err)
{
    return az_verify_ex(ev, size, endorse, endorse_size, NULL, 0, AZ_T_2026, NULL, out_claims, err);
}

static const char *
claim_str(const json_t *claims, const char *name)
{
    return json_string_value(json_object_get(claims, name));
}

static const char *
tee_str(const json_t *claims, const char *name)
{
    return json_string_value(json_object_get(json_object_get(claims, "x-ms-isolation-tee"), name));
}

static json_int_t
tee_int(const json_t *claims, const char *name)
{
    const json_t *v = json_object_get(json_object_get(claims, "x-ms-isolation-tee"), name);
    assert_true(json_is_integer(v));
    return json_integer_value(v);
}

static char *
hex_of(const uint8_t *p, size_t n)
{
    char *s = malloc(2 * n + 1);
    assert_non_null(s);
    assert_int_equal(clst_hex_to_str(p, n, s, 2 * n + 1), CLST_OK);
    return s;
}

/* The parts of one piece of evidence, to re-assemble (mutated) in the v1 container shape. */
struct parts {
    uint8_t hcl[AZURE_HCL_MAX_SIZE + 64];
    size_t hcl_size;
    uint8_t msg[2048];
    size_t msg_size;
    uint8_t sig[512];
    size_t sig_size;
    uint8_t pcrs[TPM_PCR_COUNT][CLST_SHA256_SIZE];
    uint8_t vcek[8192];
    size_t vcek_size; /* DER; 0: no "vcek" member */
};

static void
hex_into(const char *hex, uint8_t *dst, size_t cap, size_t *out_size)
{
    size_t n = 0;
    uint8_t *b = tu_hex(hex, &n);
    assert_non_null(b);
    assert_true(n <= cap);
    memcpy(dst, b, n);
    *out_size = n;
    free(b);
}

/* "unit": hcl-report.bin + tpm-quote-v1.json (its VCEK comes from vcek.pem as endorsements). */
static void
parts_unit(struct parts *p)
{
    size_t n = 0;
    memset(p, 0, sizeof(*p));
    uint8_t *hcl = az_read("hcl-report.bin", &n);
    assert_int_equal(n, 2600);
    memcpy(p->hcl, hcl, n);
    p->hcl_size = n;
    free(hcl);
    json_t *q = tu_load_json("azure/tpm-quote-v1.json");
    assert_non_null(q);
    hex_into(claim_str(q, "message"), p->msg, sizeof(p->msg), &p->msg_size);
    hex_into(claim_str(q, "signature"), p->sig, sizeof(p->sig), &p->sig_size);
    const json_t *pcrs = json_object_get(q, "pcrs");
    assert_int_equal(json_array_size(pcrs), TPM_PCR_COUNT);
    for (size_t i = 0; i < TPM_PCR_COUNT; i++) {
        size_t k = 0;
        hex_into(json_string_value(json_array_get(pcrs, i)), p->pcrs[i], CLST_SHA256_SIZE, &k);
        assert_int_equal(k, CLST_SHA256_SIZE);
    }
    json_decref(q);
}

/* The v1 container of p, as JSON text (malloc'ed). */
static char *
parts_json(const struct parts *p, size_t *out_size)
{
    struct clst_buf b64;
    json_t *pcrs = json_array();
    clst_buf_init(&b64, 1u << 20);
    assert_int_equal(clst_b64url_encode(p->hcl, p->hcl_size, &b64), CLST_OK);
    assert_int_equal(clst_buf_terminate(&b64), CLST_OK);
    for (size_t i = 0; i < TPM_PCR_COUNT; i++) {
        char *h = hex_of(p->pcrs[i], CLST_SHA256_SIZE);
        json_array_append_new(pcrs, json_string(h));
        free(h);
    }
    char *msg = hex_of(p->msg, p->msg_size);
    char *sig = hex_of(p->sig, p->sig_size);
    json_t *doc = json_pack("{s:i, s:s, s:{s:s, s:s, s:o}}", "version", 1, "hcl_report",
                            (const char *)(b64.size > 0 ? (const char *)b64.data : ""), "tpm_quote",
                            "signature", sig, "message", msg, "pcrs", pcrs);
    assert_non_null(doc);
    if (p->vcek_size > 0) {
        struct clst_buf v;
        clst_buf_init(&v, 1u << 16);
        assert_int_equal(clst_b64_encode(p->vcek, p->vcek_size, &v), CLST_OK);
        assert_int_equal(clst_buf_terminate(&v), CLST_OK);
        json_object_set_new(doc, "vcek", json_string((const char *)v.data));
        clst_buf_cleanup(&v);
    }
    char *text = json_dumps(doc, JSON_COMPACT);
    assert_non_null(text);
    *out_size = strlen(text);
    json_decref(doc);
    free(msg);
    free(sig);
    clst_buf_cleanup(&b64);
    return text;
}

/* The VCEK chain of hcl-report.bin (VCEK, ASK, ARK PEM, as Azure's THIM returns it). */
static uint8_t *
unit_chain(size_t *size)
{
    return az_read("vcek.pem", size);
}

static enum clst_status
parts_verify_ex(const struct parts *p, const uint8_t *nonce, size_t nonce_size, int64_t at,
                json_t **claims, struct clst_err *err)
{
    size_t size = 0, csize = 0;
    char *text = parts_json(p, &size);
    uint8_t *chain = unit_chain(&csize);
    enum clst_status rc = az_verify_ex((const uint8_t *)text, size, chain, csize, nonce, nonce_size,
                                       at, NULL, claims, err);
    free(chain);
    free(text);
    return rc;
}

static enum clst_status
parts_verify(const struct parts *p, struct clst_err *err)
{
    return parts_verify_ex(p, NULL, 0, AZ_T_2026, NULL, err);
}

/* ---- stored vectors: positive --------------------------------------------------------------- */

struct expect {
    const char *file; /* NULL: "unit" */
    const char *nonce_hex;
    const char *pcr0;
    const char *measurement;
    int bootloader, snp, microcode;
    const char *vmid;
};

static const struct expect expected[] = {
    {NULL, "6368616c6c656e6765", "f3a7e99a5f819a034386bce753a48a73cfdaa0bea0ecfc124bedbf5a8c4799be",
     "9ac48fcac8a2d88aeeff8d427ad4f2be0e3917c748a18bdf52cc317e7fe20308b459d5ef1a12e0c22944eb386d17c"
     "315",
     3, 8, 115, NULL},
    {"evidence-v0.json", "6368616c6c656e6765",
     "e15c44796beabf46abcec7c57e590942041e47497e4ec27571c8b7664f48dced",
     "6a063be9dd79f6371c842e480f8dc3b5c725961344e57130e88c5adf49e8f7f6c79b75a5eb77fc769959f4aeb2f94"
     "01e",
     4, 24, 219, NULL},
    {"evidence-v1.json", "6368616c6c656e6765",
     "e15c44796beabf46abcec7c57e590942041e47497e4ec27571c8b7664f48dced",
     "6a063be9dd79f6371c842e480f8dc3b5c725961344e57130e88c5adf49e8f7f6c79b75a5eb77fc769959f4aeb2f94"
     "01e",
     4, 24, 219, NULL},
    {"evidence-v2.json",
     "982f5c6e45df0ed3f10b6f60b02f0c8390e281300f3805e2279c16168cd6ae9aa398f647caa2338748cd0fd9f5f81"
     "9ef",
     "84275b2f4312cd4fc6cbe6b152ad3c3683e513d9f1e23c34fca160c8cca7a6a7",
     "5b0ce64ad1c1f6375dbda5f760b98526ca1bcf91b8195091afc28e7b024251d68fe32e05af34048d6607678cd2328"
     "3ff",
     4, 24, 219, NULL},
    {"evidence-genoa.json",
     "0218488bae25d2509232bf676f1a66a30d7372add909109b36016ef136f2938ca05475f8b46094de6b64270ea35d9"
     "50f",
     "afd689d0bb1c5f36f023fbaf574135f555a28a10c1f6b938d2a25e70c7783338",
     "f57dc09a507c6ecd82369bffb600f0003792f4d99bc26e985ec0c266fc34faf3706faf814c9e61065768a6ff917c8"
     "9ae",
     10, 23, 84, "390CBCF5-6C67-4D9B-98EF-C3F1699CC8FC"},
};

static void
check_claims(const json_t *claims, const struct expect *e)
{
    assert_string_equal(claim_str(claims, "x-ms-attestation-type"), "azurevm");
    assert_string_equal(claim_str(claims, "x-cloister-azurevm-tpm-nonce"), e->nonce_hex);
    const json_t *bank =
        json_object_get(json_object_get(claims, "x-cloister-azurevm-pcrs"), "sha256");
    assert_int_equal(json_object_size(bank), TPM_PCR_COUNT);
    assert_string_equal(json_string_value(json_object_get(bank, "0")), e->pcr0);
    const json_t *att = json_object_get(claims, "x-ms-azurevm-attested-pcrs");
    assert_int_equal(json_array_size(att), TPM_PCR_COUNT);
    for (size_t i = 0; i < TPM_PCR_COUNT; i++) {
        assert_int_equal(json_integer_value(json_array_get(att, i)), (json_int_t)i);
    }
    assert_true(json_is_true(json_object_get(claims, "secureboot")));
    assert_non_null(claim_str(claims, "x-ms-azurevm-vmid"));
    if (e->vmid != NULL) {
        assert_string_equal(claim_str(claims, "x-ms-azurevm-vmid"), e->vmid);
    }
    assert_non_null(claim_str(claims, "x-cloister-azurevm-ak-pub-hash"));
    /* The hardware verdict, nested. */
    assert_string_equal(tee_str(claims, "x-ms-attestation-type"), "sevsnpvm");
    assert_string_equal(tee_str(claims, "x-ms-sevsnpvm-launchmeasurement"), e->measurement);
    assert_int_equal(tee_int(claims, "x-ms-sevsnpvm-bootloader-svn"), e->bootloader);
    assert_int_equal(tee_int(claims, "x-ms-sevsnpvm-snpfw-svn"), e->snp);
    assert_int_equal(tee_int(claims, "x-ms-sevsnpvm-microcode-svn"), e->microcode);
    assert_int_equal(tee_int(claims, "x-ms-sevsnpvm-tee-svn"), 0);
    assert_int_equal(tee_int(claims, "x-ms-sevsnpvm-vmpl"), 0);
    assert_int_equal(tee_int(claims, "x-cloister-sevsnpvm-policy"), 0x3001f);
    assert_true(json_is_false(json_object_get(json_object_get(claims, "x-ms-isolation-tee"),
                                              "x-ms-sevsnpvm-is-debuggable")));
    const json_t *rt =
        json_object_get(json_object_get(claims, "x-ms-isolation-tee"), "x-ms-runtime");
    const json_t *k0 = json_array_get(json_object_get(rt, "keys"), 0);
    assert_string_equal(json_string_value(json_object_get(k0, "kid")), "HCLAkPub");
    assert_true(json_is_object(json_object_get(rt, "vm-configuration")));
    /* Not produced (they come from the boot log): absent, so policies on them fail closed. */
    assert_null(json_object_get(claims, "x-ms-azurevm-is-windows"));
    assert_null(
        json_object_get(json_object_get(claims, "x-ms-isolation-tee"), "x-ms-compliance-status"));
}

static void
test_vectors_positive(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++) {
        const struct expect *e = &expected[i];
        struct clst_err err = {0};
        json_t *claims = NULL;
        enum clst_status rc;
        uint8_t nonce[64];
        size_t nonce_size = strlen(e->nonce_hex) / 2;
        assert_int_equal(
            clst_hex_decode_fixed(e->nonce_hex, strlen(e->nonce_hex), nonce, nonce_size), CLST_OK);
        if (e->file == NULL) {
            struct parts *p = calloc(1, sizeof(*p));
            assert_non_null(p);
            parts_unit(p);
            rc = parts_verify_ex(p, nonce, nonce_size, AZ_T_2026, &claims, &err);
            free(p);
        } else {
            size_t size = 0;
            uint8_t *ev = az_read(e->file, &size);
            rc = az_verify_ex(ev, size, NULL, 0, nonce, nonce_size, AZ_T_2026, NULL, &claims, &err);
            free(ev);
        }
        if (rc != CLST_OK) {
            fprintf(stderr, "%s: %s\n", e->file != NULL ? e->file : "unit", err.msg);
        }
        assert_int_equal(rc, CLST_OK);
        check_claims(claims, e);
        json_decref(claims);
    }
}

/* ---- stored vectors: the README's negative recipes ------------------------------------------ */

static void
expect_reject(const struct parts *p, enum clst_status want, const char *msg_part)
{
    struct clst_err err = {0};
    enum clst_status rc = parts_verify(p, &err);
    if (rc != want || (msg_part != NULL && strstr(err.msg, msg_part) == NULL)) {
        fprintf(stderr, "got %d (%s), wanted %d with \"%s\"\n", (int)rc, err.msg, (int)want,
                msg_part != NULL ? msg_part : "");
    }
    assert_int_equal(rc, want);
    if (msg_part != NULL) {
        assert_non_null(strstr(err.msg, msg_part));
    }
}

static void
test_readme_recipes(void **state)
{
    (void)state;
    struct parts *p = calloc(1, sizeof(*p));
    struct clst_err err = {0};
    assert_non_null(p);

    parts_unit(p);
    assert_int_equal(parts_verify(p, &err), CLST_OK);

    /* REPORTED_TCB.snp := 0: the VCEK's TCB no longer matches (and the signature breaks). */
    parts_unit(p);
    p->hcl[0x1A6] = 0;
    expect_reject(p, CLST_E_VERIFY, "hardware report");

    /* A byte of the variable data: the binding to REPORT_DATA fails. */
    parts_unit(p);
    p->hcl[0x6E0]++;
    expect_reject(p, CLST_E_VERIFY, "not bound");

    /* The JSON holding HCLAkPub corrupted: refused (the binding is checked first). */
    parts_unit(p);
    p->hcl[0x540] = 0;
    expect_reject(p, CLST_E_VERIFY, "not bound");

    /* The TPM signature. */
    parts_unit(p);
    p->sig[0] ^= 1;
    expect_reject(p, CLST_E_VERIFY, "signature");

    /* PCR0. */
    parts_unit(p);
    p->pcrs[0][0] ^= 1;
    expect_reject(p, CLST_E_VERIFY, "pcrDigest");

    /* A nonce other than "challenge". */
    parts_unit(p);
    assert_int_equal(parts_verify_ex(p, (const uint8_t *)"challenge", 9, AZ_T_2026, NULL, &err),
                     CLST_OK);
    assert_int_equal(parts_verify_ex(p, (const uint8_t *)"challengf", 9, AZ_T_2026, NULL, &err),
                     CLST_E_VERIFY);
    assert_non_null(strstr(err.msg, "report data"));
    assert_int_equal(parts_verify_ex(p, (const uint8_t *)"challeng", 8, AZ_T_2026, NULL, &err),
                     CLST_E_VERIFY);
    free(p);

    /* evidence-v2 with expected report data 123abc. */
    size_t size = 0;
    uint8_t *ev = az_read("evidence-v2.json", &size);
    const uint8_t want[] = {0x12, 0x3a, 0xbc};
    assert_int_equal(
        az_verify_ex(ev, size, NULL, 0, want, sizeof(want), AZ_T_2026, NULL, NULL, &err),
        CLST_E_VERIFY);
    assert_non_null(strstr(err.msg, "report data"));
    free(ev);
}

/* ---- stored vectors: truncation, flips, time, certificates ---------------------------------- */

static void
test_truncations(void **state)
{
    (void)state;
    struct parts *p = calloc(1, sizeof(*p));
    struct azure_hcl *h = calloc(1, sizeof(*h));
    struct clst_err err = {0};
    assert_non_null(p);
    assert_non_null(h);
    parts_unit(p);
    const size_t report_size = 0x4D4 + 1110; /* from the header: 2346 */
    for (size_t n = 0; n < p->hcl_size; n++) {
        enum clst_status rc = evidence_azure_hcl_parse(p->hcl, n, h, &err);
        if (n < report_size) {
            assert_int_equal(rc, CLST_E_MALFORMED);
        } else {
            assert_int_equal(rc, CLST_OK); /* only zero padding was cut */
        }
    }
    /* Through the whole pipeline: a few lengths on each side. */
    const size_t full = p->hcl_size;
    const size_t lens[] = {
        0, 4, 0x20, 0x4C0, 0x4D4, report_size - 1, report_size, report_size + 1, full - 1};
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        p->hcl_size = lens[i];
        enum clst_status rc = parts_verify(p, &err);
        assert_int_equal(rc, lens[i] < report_size ? CLST_E_MALFORMED : CLST_OK);
    }
    free(h);
    free(p);
}

static void
test_flip_hcl(void **state)
{
    (void)state;
    struct parts *p = calloc(1, sizeof(*p));
    struct clst_err err = {0};
    assert_non_null(p);
    parts_unit(p);
    /* The header (magic, version, report_size, request_type, status, reserved). */
    for (size_t off = 0; off < 0x20; off++) {
        parts_unit(p);
        p->hcl[off] ^= 0x01;
        assert_int_equal(parts_verify(p, &err), CLST_E_MALFORMED);
    }
    /* The SNP report's signed bytes (0x020..0x2BF) and its R and S. */
    for (size_t off = 0x20; off < 0x20 + SEVSNP_SIGNED_SIZE; off += 11) {
        parts_unit(p);
        p->hcl[off] ^= 0x01;
        enum clst_status rc = parts_verify(p, &err);
        assert_true(rc == CLST_E_VERIFY || rc == CLST_E_MALFORMED);
    }
    for (size_t off = 0x20 + SEVSNP_SIGNED_SIZE; off < 0x20 + SEVSNP_SIGNED_SIZE + 144; off += 9) {
        parts_unit(p);
        p->hcl[off] ^= 0x01;
        enum clst_status rc = parts_verify(p, &err);
        assert_true(rc == CLST_E_VERIFY || rc == CLST_E_MALFORMED);
    }
    /* The IGVM request data. */
    for (size_t off = 0x4C0; off < 0x4D4; off++) {
        parts_unit(p);
        p->hcl[off] ^= 0x01;
        assert_int_equal(parts_verify(p, &err), CLST_E_MALFORMED);
    }
    /* The variable data: the binding fails. */
    for (size_t off = 0x4D4; off < 0x4D4 + 1110; off += 29) {
        parts_unit(p);
        p->hcl[off] ^= 0x01;
        assert_int_equal(parts_verify(p, &err), CLST_E_VERIFY);
        assert_non_null(strstr(err.msg, "not bound"));
    }
    /* The zero padding after the report. */
    parts_unit(p);
    p->hcl[p->hcl_size - 1] = 1;
    assert_int_equal(parts_verify(p, &err), CLST_E_MALFORMED);
    assert_non_null(strstr(err.msg, "padding"));
    free(p);
}

static void
test_flip_quote(void **state)
{
    (void)state;
    struct parts *p = calloc(1, sizeof(*p));
    struct clst_err err = {0};
    assert_non_null(p);
    parts_unit(p);
    const size_t msg_size = p->msg_size;
    for (size_t off = 0; off < msg_size; off += 3) {
        parts_unit(p);
        p->msg[off] ^= 0x01;
        enum clst_status rc = parts_verify(p, &err);
        assert_true(rc == CLST_E_VERIFY || rc == CLST_E_MALFORMED);
    }
    /* The signature, first, middle and last bytes; truncated; lengthened. */
    const size_t sig_offs[] = {0, 100, 255};
    for (size_t i = 0; i < 3; i++) {
        parts_unit(p);
        p->sig[sig_offs[i]] ^= 0x80;
        expect_reject(p, CLST_E_VERIFY, "signature");
    }
    parts_unit(p);
    p->sig_size--;
    expect_reject(p, CLST_E_VERIFY, "signature");
    parts_unit(p);
    p->sig[p->sig_size++] = 0;
    expect_reject(p, CLST_E_VERIFY, "signature");
    /* Every PCR value: the digest no longer matches. */
    for (size_t i = 0; i < TPM_PCR_COUNT; i += 5) {
        parts_unit(p);
        p->pcrs[i][31] ^= 0x01;
        expect_reject(p, CLST_E_VERIFY, "pcrDigest");
    }
    /* The quote truncated, and with a trailing byte. */
    parts_unit(p);
    p->msg_size--;
    expect_reject(p, CLST_E_MALFORMED, "quote");
    parts_unit(p);
    p->msg[p->msg_size++] = 0;
    expect_reject(p, CLST_E_MALFORMED, "quote");
    free(p);
}

static void
test_time_and_certificates(void **state)
{
    (void)state;
    struct parts *p = calloc(1, sizeof(*p));
    struct clst_err err = {0};
    size_t size = 0, gsize = 0;
    assert_non_null(p);
    parts_unit(p);
    /* Outside the VCEK's validity (2023-05-02..2030-05-02). */
    assert_int_equal(parts_verify_ex(p, NULL, 0, AZ_T_2020, NULL, &err), CLST_E_VERIFY);
    assert_int_equal(parts_verify_ex(p, NULL, 0, AZ_T_2040, NULL, &err), CLST_E_VERIFY);

    /* No VCEK anywhere (the built-in ASKs alone are not enough). */
    size_t tsize = 0;
    char *text = parts_json(p, &tsize);
    assert_int_equal(az_verify((const uint8_t *)text, tsize, NULL, 0, NULL, &err), CLST_E_VERIFY);
    assert_non_null(strstr(err.msg, "VCEK"));
    /* Another chip's VCEK (the Genoa one). */
    uint8_t *genoa = az_read("vcek-genoa.pem", &gsize);
    assert_int_equal(az_verify((const uint8_t *)text, tsize, genoa, gsize, NULL, &err),
                     CLST_E_VERIFY);
    /* Endorsements that are not certificates. */
    assert_int_equal(
        az_verify((const uint8_t *)text, tsize, (const uint8_t *)"junk", 4, NULL, &err),
        CLST_E_MALFORMED);
    free(text);

    /* The evidence's own VCEK, given only the Genoa root: the Milan ARK is not allowed. */
    uint8_t *ev = az_read("evidence-v1.json", &size);
    STACK_OF(X509) *genoa_only = sk_X509_new_null();
    assert_non_null(genoa_only);
    for (int i = 0; i < sk_X509_num(roots_all); i++) {
        X509 *r = sk_X509_value(roots_all, i);
        char cn[64] = "";
        X509_NAME_get_text_by_NID(X509_get_subject_name(r), NID_commonName, cn, sizeof(cn));
        if (strcmp(cn, "ARK-Genoa") == 0) {
            assert_true(sk_X509_push(genoa_only, r) > 0);
        }
    }
    assert_int_equal(sk_X509_num(genoa_only), 1);
    assert_int_equal(az_verify_ex(ev, size, NULL, 0, NULL, 0, AZ_T_2026, genoa_only, NULL, &err),
                     CLST_E_VERIFY);
    assert_int_equal(az_verify_ex(ev, size, NULL, 0, NULL, 0, AZ_T_2040, NULL, NULL, &err),
                     CLST_E_VERIFY);
    sk_X509_free(genoa_only);
    free(ev);

    /* Genoa evidence with Milan's VCEK chain as extra endorsements still verifies (unused). */
    size_t csize = 0;
    uint8_t *chain = unit_chain(&csize);
    ev = az_read("evidence-genoa.json", &size);
    assert_int_equal(az_verify(ev, size, chain, csize, NULL, &err), CLST_OK);
    free(ev);
    free(chain);
    free(genoa);
    free(p);
}

/* ---- the container -------------------------------------------------------------------------- */

static void
expect_container(const char *text, enum clst_status want)
{
    struct clst_err err = {0};
    enum clst_status rc = az_verify((const uint8_t *)text, strlen(text), NULL, 0, NULL, &err);
    if (rc != want) {
        fprintf(stderr, "%.80s: got %d (%s)\n", text, (int)rc, err.msg);
    }
    assert_int_equal(rc, want);
}

static void
test_container(void **state)
{
    (void)state;
    struct parts *p = calloc(1, sizeof(*p));
    struct clst_err err = {0};
    size_t size = 0;
    assert_non_null(p);
    parts_unit(p);
    char *text = parts_json(p, &size);
    json_t *good = json_loads(text, 0, NULL);
    assert_non_null(good);
    free(text);

    expect_container("", CLST_E_MALFORMED);
    expect_container("[]", CLST_E_MALFORMED);
    expect_container("{}", CLST_E_MALFORMED);
    expect_container("{\"hcl_report\":\"\"}", CLST_E_MALFORMED);

    /* Mutations of the good container. */
    const struct {
        const char *path; /* member to change ("tpm_quote.x" for a quote member) */
        json_t *value;    /* NULL: delete */
        enum clst_status want;
    } cases[] = {
        {"extra", json_true(), CLST_E_MALFORMED},
        {"report", json_string("AAAA"), CLST_E_MALFORMED}, /* both names of the report */
        {"version", json_integer(3), CLST_E_MALFORMED},
        {"version", json_string("1"), CLST_E_MALFORMED},
        {"hcl_report", NULL, CLST_E_MALFORMED},
        {"hcl_report", json_string("!!!!"), CLST_E_MALFORMED},
        {"hcl_report", json_integer(1), CLST_E_MALFORMED},
        {"hcl_report", json_pack("[i,i,i]", 1, 2, 256), CLST_E_MALFORMED},
        {"tpm_quote", NULL, CLST_E_MALFORMED},
        {"tpm_quote", json_array(), CLST_E_MALFORMED},
        {"tpm_quote.extra", json_true(), CLST_E_MALFORMED},
        {"tpm_quote.signature", NULL, CLST_E_MALFORMED},
        {"tpm_quote.signature", json_string(""), CLST_E_MALFORMED},
        {"tpm_quote.signature", json_string("abc"), CLST_E_MALFORMED},
        {"tpm_quote.message", json_string("zz"), CLST_E_MALFORMED},
        {"tpm_quote.message", json_string("ff544347"), CLST_E_MALFORMED},
        {"tpm_quote.pcrs", json_array(), CLST_E_MALFORMED},
        {"tpm_quote.pcrs", json_string("00"), CLST_E_MALFORMED},
        {"vcek", json_string("%%%%"), CLST_E_MALFORMED},
        {"vcek", json_string("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
         CLST_E_MALFORMED},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *doc = json_deep_copy(good);
        json_t *obj = doc;
        const char *name = cases[i].path;
        if (strncmp(name, "tpm_quote.", 10) == 0) {
            obj = json_object_get(doc, "tpm_quote");
            name += 10;
        }
        if (cases[i].value == NULL) {
            json_object_del(obj, name);
        } else {
            json_object_set_new(obj, name, cases[i].value);
        }
        char *t = json_dumps(doc, JSON_COMPACT);
        expect_container(t, cases[i].want);
        free(t);
        json_decref(doc);
    }
    /* The PCR list: 23 values, a short value, a non-hex value. */
    const json_t *pcrs = json_object_get(json_object_get(good, "tpm_quote"), "pcrs");
    for (int k = 0; k < 3; k++) {
        json_t *doc = json_deep_copy(good);
        json_t *list = json_object_get(json_object_get(doc, "tpm_quote"), "pcrs");
        if (k == 0) {
            json_array_remove(list, 23);
        } else {
            json_array_set_new(list, 5, json_string(k == 1 ? "00ff" : "xy"));
        }
        char *t = json_dumps(doc, JSON_COMPACT);
        expect_container(t, CLST_E_MALFORMED);
        free(t);
        json_decref(doc);
    }
    assert_int_equal(json_array_size(pcrs), TPM_PCR_COUNT);
    /* Signatures longer than RSA-4096: 513 bytes (not a TPMT_SIGNATURE either), 519 (over the
     * cap). */
    const size_t sig_lens[] = {513, 519};
    const enum clst_status sig_want[] = {CLST_E_MALFORMED, CLST_E_LIMIT};
    for (size_t k = 0; k < 2; k++) {
        char *hex = calloc(1, 2 * sig_lens[k] + 1);
        assert_non_null(hex);
        memset(hex, 'a', 2 * sig_lens[k]);
        json_t *doc = json_deep_copy(good);
        json_object_set_new(json_object_get(doc, "tpm_quote"), "signature", json_string(hex));
        char *t = json_dumps(doc, JSON_COMPACT);
        expect_container(t, sig_want[k]);
        free(t);
        json_decref(doc);
        free(hex);
    }
    /* Duplicate members (the JSON parser refuses them). */
    expect_container("{\"version\":1,\"version\":1}", CLST_E_MALFORMED);

    /* Oversized: refused before parsing. */
    size_t big = AZURE_EVIDENCE_MAX_SIZE + 1;
    uint8_t *blob = calloc(1, big);
    assert_non_null(blob);
    memset(blob, ' ', big);
    assert_int_equal(az_verify(blob, big, NULL, 0, NULL, &err), CLST_E_LIMIT);
    free(blob);
    json_decref(good);
    free(p);
}

/* ---- synthetic evidence --------------------------------------------------------------------- */

struct az_synth {
    struct synth *s;
    EVP_PKEY *ak;            /* HCLAkPub */
    EVP_PKEY *other;         /* another RSA key */
    X509 *vcek;              /* the synthetic Milan VCEK for synth_report_init's chip id */
    struct clst_buf endorse; /* the synthetic Milan ASK, DER */
};

static struct az_synth *synth_ctx;

static int
synth_setup(void **state)
{
    (void)state;
    struct az_synth *z = calloc(1, sizeof(*z));
    struct sevsnp_report r;
    struct synth_leaf_spec spec;
    if (z == NULL || (z->s = synth_new()) == NULL || clst_rsa_generate(2048, &z->ak) != CLST_OK ||
        EVP_PKEY_up_ref(z->s->evil_key) != 1) {
        return -1;
    }
    z->other = z->s->evil_key; /* RSA key generation is slow: reuse the fixture's spare key */
    synth_report_init(&r, SEVSNP_PRODUCT_MILAN, 3);
    memset(&spec, 0, sizeof(spec));
    spec.product = SEVSNP_PRODUCT_MILAN;
    spec.tcb = synth_tcb(SEVSNP_PRODUCT_MILAN);
    spec.hwid = r.chip_id;
    spec.hwid_size = SEVSNP_CHIP_ID_SIZE;
    spec.nb = z->s->nb;
    spec.na = z->s->na;
    z->vcek = synth_leaf(z->s, &spec);
    clst_buf_init(&z->endorse, 1u << 16);
    if (z->vcek == NULL || synth_endorse(&z->endorse, z->s->ask[0], NULL, NULL) != 0) {
        return -1;
    }
    synth_ctx = z;
    return 0;
}

static int
synth_teardown(void **state)
{
    (void)state;
    struct az_synth *z = synth_ctx;
    if (z != NULL) {
        synth_free(z->s);
        EVP_PKEY_free(z->ak);
        EVP_PKEY_free(z->other);
        X509_free(z->vcek);
        clst_buf_cleanup(&z->endorse);
        free(z);
    }
    synth_ctx = NULL;
    return 0;
}

struct az_spec {
    const char *var;    /* NULL: the default variable data with the synthetic AK */
    bool unbound;       /* REPORT_DATA[0..31] is not SHA-256(variable data) */
    bool upper_nonzero; /* REPORT_DATA[32..63] is not zero */
    bool debug;         /* POLICY.DEBUG */
    uint32_t vmpl;
    uint32_t report_type; /* 0: SNP */
    EVP_PKEY *signer;     /* NULL: the AK */
    const uint8_t *nonce;
    size_t nonce_size;
};

/* The default variable data: HCLAkPub (the synthetic AK) and a vm-configuration. */
static char *
default_var(EVP_PKEY *ak)
{
    json_t *jwk = NULL;
    assert_int_equal(clst_pkey_to_jwk(ak, false, &jwk), CLST_OK);
    json_object_set_new(jwk, "kid", json_string("HCLAkPub"));
    json_object_set_new(jwk, "key_ops", json_pack("[s]", "sign"));
    json_t *doc =
        json_pack("{s:[o], s:{s:b, s:b, s:s}, s:s}", "keys", jwk, "vm-configuration", "secure-boot",
                  0, "tpm-enabled", 1, "vmUniqueId", "SYNTH-VM-0001", "user-data", "");
    assert_non_null(doc);
    char *text = json_dumps(doc, JSON_COMPACT);
    assert_non_null(text);
    json_decref(doc);
    return text;
}

static void
synth_parts(const struct az_spec *spec, struct parts *p)
{
    struct az_synth *z = synth_ctx;
    struct sevsnp_report r;
    uint8_t digest[CLST_SHA256_SIZE];
    char *owned = spec->var == NULL ? default_var(z->ak) : NULL;
    const char *var = spec->var != NULL ? spec->var : owned;
    size_t var_size = strlen(var);
    uint8_t *h = p->hcl;

    memset(p, 0, sizeof(*p));
    assert_true(AZURE_HCL_VAR_OFFSET + var_size <= 2600);
    /* The HCL report. */
    memcpy(h, "HCLA", 4);
    clst_put_le32(h + 4, 2);
    clst_put_le32(h + 8, (uint32_t)(AZURE_HCL_VAR_OFFSET + var_size));
    clst_put_le32(h + 12, 2);
    synth_report_init(&r, SEVSNP_PRODUCT_MILAN, 3);
    assert_int_equal(clst_sha256(var, var_size, digest), CLST_OK);
    memset(r.report_data, 0, sizeof(r.report_data));
    memcpy(r.report_data, digest, sizeof(digest));
    if (spec->unbound) {
        r.report_data[7] ^= 0x20;
    }
    if (spec->upper_nonzero) {
        r.report_data[40] = 1;
    }
    if (spec->debug) {
        r.policy |= SEVSNP_POLICY_DEBUG;
    }
    r.vmpl = spec->vmpl;
    if (spec->report_type == AZURE_REPORT_TYPE_TDX) {
        struct dcap_td_report body;
        memset(&body, 0, sizeof(body));
        memcpy(body.report_data, r.report_data, sizeof(body.report_data));
        memset(h + AZURE_HCL_HW_OFFSET, 0, AZURE_HCL_HW_SIZE);
        tdreport_encode(&body, h + AZURE_HCL_HW_OFFSET);
    } else {
        assert_int_equal(synth_sign(&r, z->s->vcek_key, h + AZURE_HCL_HW_OFFSET), 0);
    }
    clst_put_le32(h + 0x4C0, (uint32_t)(20 + var_size));
    clst_put_le32(h + 0x4C4, 1);
    clst_put_le32(h + 0x4C8, spec->report_type != 0 ? spec->report_type : AZURE_REPORT_TYPE_SNP);
    clst_put_le32(h + 0x4CC, 1);
    clst_put_le32(h + 0x4D0, (uint32_t)var_size);
    memcpy(h + AZURE_HCL_VAR_OFFSET, var, var_size);
    p->hcl_size = 2600;
    free(owned);

    /* The quote over PCRs 0..23 of the SHA-256 bank. */
    TPMS_ATTEST a;
    struct clst_hash_ctx hc;
    memset(&a, 0, sizeof(a));
    a.magic = TPM2_GENERATED_VALUE;
    a.type = TPM2_ST_ATTEST_QUOTE;
    a.qualifiedSigner.size = 34;
    a.qualifiedSigner.name[1] = 0x0b;
    a.extraData.size = (uint16_t)spec->nonce_size;
    if (spec->nonce_size > 0) {
        memcpy(a.extraData.buffer, spec->nonce, spec->nonce_size);
    }
    a.clockInfo.clock = 123456;
    a.clockInfo.safe = 1;
    a.firmwareVersion = UINT64_C(0x2020031200120003);
    a.attested.quote.pcrSelect.count = 1;
    a.attested.quote.pcrSelect.pcrSelections[0].hash = TPM2_ALG_SHA256;
    a.attested.quote.pcrSelect.pcrSelections[0].sizeofSelect = 3;
    memset(a.attested.quote.pcrSelect.pcrSelections[0].pcrSelect, 0xff, 3);
    assert_int_equal(clst_hash_init(&hc, CLST_HASH_SHA256), CLST_OK);
    for (size_t i = 0; i < TPM_PCR_COUNT; i++) {
        memset(p->pcrs[i], (int)(0x10 + i), CLST_SHA256_SIZE);
        assert_int_equal(clst_hash_update(&hc, p->pcrs[i], CLST_SHA256_SIZE), CLST_OK);
    }
    a.attested.quote.pcrDigest.size = CLST_SHA256_SIZE;
    assert_int_equal(clst_hash_final(&hc, a.attested.quote.pcrDigest.buffer), CLST_OK);
    size_t off = 0;
    assert_int_equal(Tss2_MU_TPMS_ATTEST_Marshal(&a, p->msg, sizeof(p->msg), &off),
                     TSS2_RC_SUCCESS);
    p->msg_size = off;
    struct clst_buf sig;
    clst_buf_init(&sig, 1024);
    assert_int_equal(clst_rsa_pkcs1_sign(spec->signer != NULL ? spec->signer : z->ak,
                                         CLST_HASH_SHA256, p->msg, p->msg_size, &sig),
                     CLST_OK);
    memcpy(p->sig, sig.data, sig.size);
    p->sig_size = sig.size;
    clst_buf_cleanup(&sig);

    /* The VCEK, inside the evidence. */
    unsigned char *der = NULL;
    int n = i2d_X509(z->vcek, &der);
    assert_true(n > 0 && (size_t)n <= sizeof(p->vcek));
    memcpy(p->vcek, der, (size_t)n);
    p->vcek_size = (size_t)n;
    OPENSSL_free(der);
}

struct az_check {
    const uint8_t *nonce; /* expected report data (the quote's nonce), or NULL */
    size_t nonce_size;
    const uint8_t *runtime; /* runtime data, or NULL */
    size_t runtime_size;
    bool allow_debug;
    const json_t *options; /* sevsnp options */
};

/* Parse and verify against the synthetic roots, then the framework's checks in its order
 * (evidence.c check_binding): debug, expected report data, runtime data; then the claims. */
static enum clst_status
synth_run(const struct parts *p, const struct az_check *chk, json_t **out_claims,
          struct clst_err *err)
{
    struct az_synth *z = synth_ctx;
    struct azure_evidence *ev = calloc(1, sizeof(*ev));
    struct clst_evidence_input in;
    size_t size = 0;
    char *text = parts_json(p, &size);
    enum clst_status rc;

    assert_non_null(ev);
    memset(&in, 0, sizeof(in));
    in.evidence = (const uint8_t *)text;
    in.evidence_size = size;
    in.endorsements = z->endorse.data;
    in.endorsements_size = z->endorse.size;
    in.roots = z->s->root_stack;
    in.at = SNP_T_2024;
    in.allow_debug = chk != NULL && chk->allow_debug;
    in.options = chk != NULL ? chk->options : NULL;
    rc = evidence_azure_parse(in.evidence, in.evidence_size, ev, err);
    if (rc == CLST_OK) {
        rc = evidence_azure_verify_with(ev, &in, &z->s->roots, NULL, err);
    }
    if (rc == CLST_OK && !in.allow_debug && evidence_azure_ops.is_debuggable(ev)) {
        rc = clst_err_set(err, CLST_E_VERIFY, "debuggable");
    }
    size_t rd_size = 0;
    const uint8_t *rd = rc == CLST_OK ? evidence_azure_ops.report_data(ev, &rd_size) : NULL;
    if (rc == CLST_OK && chk != NULL && chk->nonce != NULL &&
        (rd_size != chk->nonce_size || memcmp(rd, chk->nonce, rd_size) != 0)) {
        rc = clst_err_set(err, CLST_E_VERIFY, "report data mismatch");
    }
    if (rc == CLST_OK && chk != NULL && chk->runtime != NULL) {
        uint8_t d[CLST_SHA256_SIZE];
        assert_int_equal(clst_sha256(chk->runtime, chk->runtime_size, d), CLST_OK);
        if (rd_size < sizeof(d) || memcmp(d, rd, sizeof(d)) != 0) {
            rc = clst_err_set(err, CLST_E_VERIFY, "runtime data mismatch");
        }
    }
    if (rc == CLST_OK && out_claims != NULL) {
        json_t *claims = json_object();
        rc = evidence_azure_ops.claims(ev, claims, err);
        if (rc == CLST_OK) {
            *out_claims = claims;
        } else {
            json_decref(claims);
        }
    }
    free(text);
    free(ev);
    return rc;
}

static void
test_synth_positive(void **state)
{
    (void)state;
    struct parts *p = calloc(1, sizeof(*p));
    struct az_spec spec = {0};
    struct clst_err err = {0};
    json_t *claims = NULL;
    assert_non_null(p);
    spec.nonce = (const uint8_t *)"synthetic-nonce";
    spec.nonce_size = 15;
    synth_parts(&spec, p);
    struct az_check chk = {.nonce = spec.nonce, .nonce_size = spec.nonce_size};
    if (synth_run(p, &chk, &claims, &err) != CLST_OK) {
        fprintf(stderr, "%s\n", err.msg);
    }
    assert_non_null(claims);
    assert_string_equal(claim_str(claims, "x-ms-attestation-type"), "azurevm");
    assert_string_equal(claim_str(claims, "x-ms-azurevm-vmid"), "SYNTH-VM-0001");
    assert_true(json_is_false(json_object_get(claims, "secureboot")));
    assert_int_equal(json_integer_value(json_object_get(claims, "x-cloister-azurevm-hcl-version")),
                     2);
    assert_string_equal(tee_str(claims, "x-ms-attestation-type"), "sevsnpvm");
    assert_string_equal(claim_str(claims, "x-cloister-azurevm-tpm-nonce"),
                        "73796e7468657469632d6e6f6e6365");
    json_decref(claims);
    /* The signature as a TPMT_SIGNATURE (RSASSA, SHA-256), as tpm2-tools saves it: accepted;
     * with another hash named (SHA-384) it no longer verifies. */
    struct parts *w = calloc(1, sizeof(*w));
    assert_non_null(w);
    memcpy(w, p, sizeof(*w));
    TPMT_SIGNATURE ts;
    memset(&ts, 0, sizeof(ts));
    ts.sigAlg = TPM2_ALG_RSASSA;
    ts.signature.rsassa.hash = TPM2_ALG_SHA256;
    ts.signature.rsassa.sig.size = (uint16_t)p->sig_size;
    memcpy(ts.signature.rsassa.sig.buffer, p->sig, p->sig_size);
    size_t off = 0;
    assert_int_equal(Tss2_MU_TPMT_SIGNATURE_Marshal(&ts, w->sig, sizeof(w->sig), &off),
                     TSS2_RC_SUCCESS);
    w->sig_size = off;
    assert_int_equal(off, p->sig_size + 6);
    assert_int_equal(synth_run(w, &chk, NULL, &err), CLST_OK);
    ts.signature.rsassa.hash = TPM2_ALG_SHA384;
    off = 0;
    assert_int_equal(Tss2_MU_TPMT_SIGNATURE_Marshal(&ts, w->sig, sizeof(w->sig), &off),
                     TSS2_RC_SUCCESS);
    assert_int_equal(synth_run(w, &chk, NULL, &err), CLST_E_VERIFY);
    free(w);
    /* Without the VCEK (the endorsements carry only the ASK): nothing signs the report. */
    p->vcek_size = 0;
    assert_int_equal(synth_run(p, &chk, NULL, &err), CLST_E_VERIFY);
    free(p);
}

static void
test_synth_binding(void **state)
{
    (void)state;
    struct parts *p = calloc(1, sizeof(*p));
    struct clst_err err = {0};
    assert_non_null(p);

    struct az_spec unbound = {.unbound = true};
    synth_parts(&unbound, p);
    assert_int_equal(synth_run(p, NULL, NULL, &err), CLST_E_VERIFY);
    assert_non_null(strstr(err.msg, "not bound"));

    struct az_spec upper = {.upper_nonzero = true};
    synth_parts(&upper, p);
    assert_int_equal(synth_run(p, NULL, NULL, &err), CLST_E_VERIFY);
    assert_non_null(strstr(err.msg, "not bound"));

    /* Runtime data bound through the quote's nonce: SHA-256(runtime) || anything. */
    const char runtime[] = "{\"keys\":[{\"kid\":\"E\"}]}";
    uint8_t nonce[48];
    memset(nonce, 0xEE, sizeof(nonce));
    assert_int_equal(clst_sha256(runtime, sizeof(runtime) - 1, nonce), CLST_OK);
    struct az_spec bound = {.nonce = nonce, .nonce_size = sizeof(nonce)};
    synth_parts(&bound, p);
    struct az_check ok = {.runtime = (const uint8_t *)runtime, .runtime_size = sizeof(runtime) - 1};
    assert_int_equal(synth_run(p, &ok, NULL, &err), CLST_OK);
    struct az_check bad = {.runtime = (const uint8_t *)runtime,
                           .runtime_size = sizeof(runtime) - 2};
    assert_int_equal(synth_run(p, &bad, NULL, &err), CLST_E_VERIFY);
    /* Nonce mismatch. */
    uint8_t other[48];
    memcpy(other, nonce, sizeof(other));
    other[47] ^= 1;
    struct az_check wrong = {.nonce = other, .nonce_size = sizeof(other)};
    assert_int_equal(synth_run(p, &wrong, NULL, &err), CLST_E_VERIFY);
    struct az_check right = {.nonce = nonce, .nonce_size = sizeof(nonce)};
    assert_int_equal(synth_run(p, &right, NULL, &err), CLST_OK);
    free(p);
}

static void
test_synth_ak(void **state)
{
    (void)state;
    struct az_synth *z = synth_ctx;
    struct parts *p = calloc(1, sizeof(*p));
    struct clst_err err = {0};
    assert_non_null(p);

    /* The quote signed by a key other than HCLAkPub. */
    struct az_spec mismatch = {.signer = z->other};
    synth_parts(&mismatch, p);
    assert_int_equal(synth_run(p, NULL, NULL, &err), CLST_E_VERIFY);
    assert_non_null(strstr(err.msg, "signature"));

    /* HCLAkPub is the other key while the AK signs. */
    char *other_var = default_var(z->other);
    struct az_spec swapped = {.var = other_var};
    synth_parts(&swapped, p);
    assert_int_equal(synth_run(p, NULL, NULL, &err), CLST_E_VERIFY);
    free(other_var);

    /* Variable data without a usable HCLAkPub (bound, so the AK lookup is what fails). */
    const char *const vars[] = {
        "{\"keys\":[]}",
        "{\"vm-configuration\":{}}",
        "{\"keys\":[{\"kid\":\"HCLEkPub\",\"kty\":\"RSA\",\"e\":\"AQAB\",\"n\":\"AQAB\"}]}",
        "{\"keys\":[{\"kid\":\"HCLAkPub\",\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AA\",\"y\":"
        "\"AA\"}]}",
        "{\"keys\":[{\"kid\":\"HCLAkPub\",\"kty\":\"RSA\",\"e\":\"AQAB\",\"n\":\"AQAB\"}]}",
        "[1,2,3]",
        "not json",
    };
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
        struct az_spec bad = {.var = vars[i]};
        synth_parts(&bad, p);
        assert_int_equal(synth_run(p, NULL, NULL, &err), CLST_E_VERIFY);
        assert_non_null(strstr(err.msg, "HCLAkPub"));
    }
    /* Two HCLAkPub entries. */
    char *one = default_var(z->ak);
    json_t *doc = json_loads(one, 0, NULL);
    json_t *keys = json_object_get(doc, "keys");
    json_array_append_new(keys, json_deep_copy(json_array_get(keys, 0)));
    char *two = json_dumps(doc, JSON_COMPACT);
    struct az_spec dup = {.var = two};
    synth_parts(&dup, p);
    assert_int_equal(synth_run(p, NULL, NULL, &err), CLST_E_VERIFY);
    assert_non_null(strstr(err.msg, "two HCLAkPub"));
    free(two);
    json_decref(doc);
    free(one);
    free(p);
}

static void
test_synth_debug_and_tdx(void **state)
{
    (void)state;
    struct parts *p = calloc(1, sizeof(*p));
    struct clst_err err = {0};
    json_t *claims = NULL;
    assert_non_null(p);

    struct az_spec debug = {.debug = true};
    synth_parts(&debug, p);
    assert_int_equal(synth_run(p, NULL, NULL, &err), CLST_E_VERIFY);
    assert_non_null(strstr(err.msg, "debuggable"));
    struct az_check allow = {.allow_debug = true};
    assert_int_equal(synth_run(p, &allow, &claims, &err), CLST_OK);
    assert_true(json_is_true(json_object_get(json_object_get(claims, "x-ms-isolation-tee"),
                                             "x-ms-sevsnpvm-is-debuggable")));
    json_decref(claims);

    /* A report the guest requested at VMPL 1: refused even when the sevsnp options allow it. */
    struct az_spec vmpl = {.vmpl = 1};
    synth_parts(&vmpl, p);
    assert_int_equal(synth_run(p, NULL, NULL, &err), CLST_E_VERIFY);
    json_t *opts = json_pack("{s:i}", "max_vmpl", 3);
    struct az_check loose = {.options = opts};
    assert_int_equal(synth_run(p, &loose, NULL, &err), CLST_E_VERIFY);
    assert_non_null(strstr(err.msg, "VMPL 1"));
    json_decref(opts);

    /* A TDX HCL report without its TD quote: refused before anything else. */
    struct az_spec tdx = {.report_type = AZURE_REPORT_TYPE_TDX};
    synth_parts(&tdx, p);
    p->vcek_size = 0;
    assert_int_equal(synth_run(p, NULL, NULL, &err), CLST_E_MALFORMED);
    assert_non_null(strstr(err.msg, "td_quote"));
    assert_non_null(strstr(err.msg, "/acc/tdquote"));
    /* ... and with the VCEK of an SNP report: refused too. */
    synth_parts(&tdx, p);
    assert_int_equal(synth_run(p, NULL, NULL, &err), CLST_E_MALFORMED);
    assert_non_null(strstr(err.msg, "vcek"));
    /* An unknown report type does not parse. */
    clst_put_le32(p->hcl + 0x4C8, 3);
    assert_int_equal(synth_run(p, NULL, NULL, &err), CLST_E_MALFORMED);
    free(p);
}

/* ---- TDX inside: the real Azure TDX evidence ----------------------------------------------------
 */

#define AZ_T_2025_03_01 INT64_C(1740787200) /* inside collateral-2025-02's validity */
#define TDX_C25         "tdx/dcap-rs/collateral-2025-02/"
#define TDX_EVIDENCE    "tdx/evidence-v1.json"
#define TDX_OTHER_QUOTE "tdx/dcap-rs/quote_v4_tdx_00806f050000.dat"
#define TDX_MRTD                                                                                   \
    "024a32b070383331181619fa387cb4d55d1e38879f989933055ccad5bc2db795d1737b66205949d15469dc8c1ba7" \
    "ab7b"

static STACK_OF(X509) *intel_roots;

static int
tdx_setup(void **state)
{
    (void)state;
    return clst_evidence_intel_roots(&intel_roots, NULL) == CLST_OK ? 0 : -1;
}

static int
tdx_teardown(void **state)
{
    (void)state;
    sk_X509_pop_free(intel_roots, X509_free);
    return 0;
}

/* The real evidence as a JSON object, with its decoded HCL report and TD quote. */
struct tdx_real {
    json_t *doc;
    uint8_t hcl[4096];
    size_t hcl_size;
    uint8_t quote[8192];
    size_t quote_size;
    struct clst_buf coll;
};

static void
b64url_field(const json_t *doc, const char *name, uint8_t *out, size_t cap, size_t *out_size)
{
    const char *s = json_string_value(json_object_get(doc, name));
    assert_non_null(s);
    size_t len = strlen(s);
    while (len > 0 && s[len - 1] == '=') {
        len--;
    }
    struct clst_buf b;
    clst_buf_init(&b, cap);
    assert_int_equal(clst_b64url_decode(s, len, &b), CLST_OK);
    memcpy(out, b.data, b.size);
    *out_size = b.size;
    clst_buf_cleanup(&b);
}

static void
set_b64url(json_t *doc, const char *name, const uint8_t *p, size_t n)
{
    struct clst_buf b;
    clst_buf_init(&b, 1u << 20);
    assert_int_equal(clst_b64url_encode(p, n, &b), CLST_OK);
    assert_int_equal(clst_buf_terminate(&b), CLST_OK);
    json_object_set_new(doc, name, json_string(b.size > 0 ? (const char *)b.data : ""));
    clst_buf_cleanup(&b);
}

static void
tdx_real_load(struct tdx_real *r)
{
    size_t n = 0;
    uint8_t *text = az_read(TDX_EVIDENCE, &n);
    json_error_t jerr;
    memset(r, 0, sizeof(*r));
    r->doc = json_loadb((const char *)text, n, 0, &jerr);
    free(text);
    assert_non_null(r->doc);
    b64url_field(r->doc, "hcl_report", r->hcl, sizeof(r->hcl), &r->hcl_size);
    b64url_field(r->doc, "td_quote", r->quote, sizeof(r->quote), &r->quote_size);
    assert_int_equal(r->hcl_size, 2600);
    assert_int_equal(r->quote_size, 5006);
    fx_vector_bundle(TDX_C25 "tcbinfov3_00806f050000.json", TDX_C25 "qeidentityv2_apiv4.json",
                     "tdx/dcap-rs/tcb_signing_cert.pem", TDX_C25 "pck_platform_crl.der",
                     TDX_C25 "intel_root_ca_crl.der", &r->coll);
}

static void
tdx_real_free(struct tdx_real *r)
{
    json_decref(r->doc);
    clst_buf_cleanup(&r->coll);
}

/* Verifies `doc` (with r's collateral unless `no_coll`) through the public pipeline. */
static enum clst_status
tdx_run(const struct tdx_real *r, const json_t *doc, const char *statuses, int64_t at, bool no_coll,
        json_t **claims, struct clst_err *err)
{
    struct clst_evidence_input in;
    json_t *c = NULL;
    char *text = json_dumps(doc, JSON_COMPACT);
    assert_non_null(text);
    memset(&in, 0, sizeof(in));
    in.evidence = (const uint8_t *)text;
    in.evidence_size = strlen(text);
    if (!no_coll) {
        in.endorsements = r->coll.data;
        in.endorsements_size = r->coll.size;
    }
    in.report_data = (const uint8_t *)"challenge";
    in.report_data_size = 9;
    in.roots = intel_roots;
    in.at = at;
    in.tcb_statuses = statuses;
    clst_err_clear(err);
    enum clst_status rc = clst_evidence_verify(CLST_EVIDENCE_AZURE_VTPM, &in, &c, err);
    free(text);
    if (rc == CLST_OK) {
        assert_non_null(c);
    } else {
        assert_null(c);
        assert_true(strlen(err->msg) > 10);
    }
    if (claims != NULL) {
        *claims = c;
    } else {
        json_decref(c);
    }
    return rc;
}

static void
tdx_expect(const struct tdx_real *r, const json_t *doc, enum clst_status want, const char *part)
{
    struct clst_err err = {0};
    enum clst_status rc = tdx_run(r, doc, "UpToDate,OutOfDate", AZ_T_2025_03_01, false, NULL, &err);
    if (rc != want || (part != NULL && strstr(err.msg, part) == NULL)) {
        fail_msg("want %s (\"%s\"), got %s: %s", clst_status_str(want), part ? part : "",
                 clst_status_str(rc), err.msg);
    }
}

static void
test_tdx_real_positive(void **state)
{
    (void)state;
    struct tdx_real r;
    struct clst_err err = {0};
    json_t *claims = NULL;
    tdx_real_load(&r);

    /* The platform is OutOfDate in the 2025-02 collateral: the default policy refuses it. */
    assert_int_equal(tdx_run(&r, r.doc, NULL, AZ_T_2025_03_01, false, NULL, &err), CLST_E_VERIFY);
    assert_non_null(strstr(err.msg, "TD quote"));
    assert_non_null(strstr(err.msg, "OutOfDate"));

    assert_int_equal(
        tdx_run(&r, r.doc, "UpToDate,OutOfDate", AZ_T_2025_03_01, false, &claims, &err), CLST_OK);
    assert_string_equal(claim_str(claims, "x-ms-attestation-type"), "azurevm");
    assert_string_equal(claim_str(claims, "x-ms-azurevm-vmid"),
                        "6332533D-5649-4D02-8AA7-8F64B7C3EE21");
    assert_true(json_is_true(json_object_get(claims, "secureboot")));
    assert_int_equal(json_array_size(json_object_get(claims, "x-ms-azurevm-attested-pcrs")), 24);
    assert_string_equal(claim_str(claims, "x-cloister-azurevm-tpm-nonce"), "6368616c6c656e6765");
    assert_string_equal(tee_str(claims, "x-ms-attestation-type"), "tdxvm");
    assert_string_equal(tee_str(claims, "tdx_mrtd"), TDX_MRTD);
    assert_string_equal(tee_str(claims, "attester_tcb_status"), "OutOfDate");
    assert_string_equal(tee_str(claims, "tdx_report_data"),
                        "9734504f161d104c74e3165c15f779b06a9bb40dfa71937817d7eee68e593839"
                        "0000000000000000000000000000000000000000000000000000000000000000");
    const json_t *tee = json_object_get(claims, "x-ms-isolation-tee");
    assert_true(json_is_false(json_object_get(tee, "tdx_is_debuggable")));
    assert_null(json_object_get(tee, "x-ms-sevsnpvm-launchmeasurement"));
    const json_t *keys = json_object_get(json_object_get(tee, "x-ms-runtime"), "keys");
    assert_int_equal(json_array_size(keys), 2);
    json_decref(claims);

    /* The service's question: which hardware is inside. */
    char *text = json_dumps(r.doc, JSON_COMPACT);
    enum clst_evidence_kind kind = CLST_EVIDENCE_SIM;
    assert_int_equal(clst_evidence_azure_tee_kind((const uint8_t *)text, strlen(text), &kind, &err),
                     CLST_OK);
    assert_int_equal(kind, CLST_EVIDENCE_TDX);
    free(text);
    size_t n = 0;
    uint8_t *snp = az_read("evidence-v1.json", &n);
    assert_int_equal(clst_evidence_azure_tee_kind(snp, n, &kind, &err), CLST_OK);
    assert_int_equal(kind, CLST_EVIDENCE_SEVSNP);
    assert_int_equal(clst_evidence_azure_tee_kind((const uint8_t *)"{}", 2, &kind, &err),
                     CLST_E_MALFORMED);
    free(snp);
    tdx_real_free(&r);
}

static void
test_tdx_real_negative(void **state)
{
    (void)state;
    struct tdx_real r;
    struct clst_err err = {0};
    tdx_real_load(&r);
    json_t *d;

    /* No TD quote: a TDREPORT alone is never accepted. */
    d = json_deep_copy(r.doc);
    json_object_del(d, "td_quote");
    tdx_expect(&r, d, CLST_E_MALFORMED, "no \"td_quote\"");
    json_decref(d);
    /* Given twice (under both names), a vcek with TDX, an empty quote. */
    d = json_deep_copy(r.doc);
    json_object_set(d, "tdx_quote", json_object_get(d, "td_quote"));
    tdx_expect(&r, d, CLST_E_MALFORMED, "twice");
    json_decref(d);
    d = json_deep_copy(r.doc);
    json_object_set_new(d, "vcek", json_string("MIIB"));
    tdx_expect(&r, d, CLST_E_MALFORMED, "\"vcek\" is for SEV-SNP");
    json_decref(d);
    d = json_deep_copy(r.doc);
    json_object_set_new(d, "td_quote", json_string(""));
    tdx_expect(&r, d, CLST_E_MALFORMED, "td_quote");
    json_decref(d);
    /* A td_quote with an SNP HCL report. */
    {
        size_t n = 0;
        uint8_t *text = az_read("evidence-v1.json", &n);
        json_t *snp = json_loadb((const char *)text, n, 0, NULL);
        assert_non_null(snp);
        json_object_set(snp, "td_quote", json_object_get(r.doc, "td_quote"));
        tdx_expect(&r, snp, CLST_E_MALFORMED, "\"td_quote\" is for TDX");
        json_decref(snp);
        free(text);
    }
    /* No collateral; the time outside the collateral's and certificates' validity. */
    assert_int_equal(tdx_run(&r, r.doc, "UpToDate,OutOfDate", AZ_T_2025_03_01, true, NULL, &err),
                     CLST_E_VERIFY);
    assert_non_null(strstr(err.msg, "collateral"));
    assert_int_equal(tdx_run(&r, r.doc, "UpToDate,OutOfDate", AZ_T_2040, false, NULL, &err),
                     CLST_E_VERIFY);
    assert_int_equal(tdx_run(&r, r.doc, "UpToDate,OutOfDate", AZ_T_2020, false, NULL, &err),
                     CLST_E_VERIFY);
    /* Another real TD's quote (same platform FMSPC: DCAP accepts it): the HCL does not bind it. */
    {
        size_t n = 0;
        unsigned char *other = fx_vector(TDX_OTHER_QUOTE, &n);
        d = json_deep_copy(r.doc);
        set_b64url(d, "td_quote", other, n);
        tdx_expect(&r, d, CLST_E_VERIFY, "does not describe the HCL's TDREPORT");
        tdx_expect(&r, d, CLST_E_VERIFY, "TEE_TCB_SVN differs");
        json_decref(d);
        /* Truncated quotes do not parse. */
        d = json_deep_copy(r.doc);
        for (size_t cut = 0; cut < r.quote_size; cut += 397) {
            set_b64url(d, "td_quote", r.quote, cut);
            tdx_expect(&r, d, CLST_E_MALFORMED, "td_quote");
        }
        json_decref(d);
        free(other);
    }
    /* An oversized quote: CLST_E_LIMIT before anything is parsed or verified. */
    {
        uint8_t *big = calloc(1, DCAP_QUOTE_MAX_SIZE + 1);
        assert_non_null(big);
        d = json_deep_copy(r.doc);
        set_b64url(d, "td_quote", big, DCAP_QUOTE_MAX_SIZE + 1);
        tdx_expect(&r, d, CLST_E_LIMIT, "td_quote");
        json_decref(d);
        free(big);
    }
    /* An SGX quote is not a TD quote. */
    {
        size_t n = 0;
        unsigned char *sgx = fx_vector("sgx/dcap-rs/quote_v3_sgx_00606a000000.bin", &n);
        d = json_deep_copy(r.doc);
        set_b64url(d, "td_quote", sgx, n);
        tdx_expect(&r, d, CLST_E_MALFORMED, "td_quote");
        json_decref(d);
        free(sgx);
    }
    /* Flipped bytes in the TD quote's signed part (header, body), sampled. */
    d = json_deep_copy(r.doc);
    for (size_t off = 0; off < 632; off += 37) {
        uint8_t q[8192];
        memcpy(q, r.quote, r.quote_size);
        q[off] ^= 0x01;
        set_b64url(d, "td_quote", q, r.quote_size);
        struct clst_err e = {0};
        enum clst_status rc =
            tdx_run(&r, d, "UpToDate,OutOfDate", AZ_T_2025_03_01, false, NULL, &e);
        if (rc == CLST_OK) {
            fail_msg("TD quote byte %zu flipped: accepted", off);
        }
    }
    json_decref(d);
    /* The vTPM quote's signature and the nonce. */
    d = json_deep_copy(r.doc);
    {
        json_t *tq = json_object_get(d, "tpm_quote");
        char *sig = strdup(json_string_value(json_object_get(tq, "signature")));
        sig[0] = sig[0] == 'a' ? 'b' : 'a';
        json_object_set_new(tq, "signature", json_string(sig));
        free(sig);
        tdx_expect(&r, d, CLST_E_VERIFY, "vTPM quote");
    }
    json_decref(d);
    {
        char *text = json_dumps(r.doc, JSON_COMPACT);
        struct clst_evidence_input in;
        json_t *c = NULL;
        memset(&in, 0, sizeof(in));
        in.evidence = (const uint8_t *)text;
        in.evidence_size = strlen(text);
        in.endorsements = r.coll.data;
        in.endorsements_size = r.coll.size;
        in.report_data = (const uint8_t *)"challengf";
        in.report_data_size = 9;
        in.roots = intel_roots;
        in.at = AZ_T_2025_03_01;
        in.tcb_statuses = "UpToDate,OutOfDate";
        assert_int_equal(clst_evidence_verify(CLST_EVIDENCE_AZURE_VTPM, &in, &c, &err),
                         CLST_E_VERIFY);
        assert_null(c);
        free(text);
    }
    tdx_real_free(&r);
}

/* Flips one byte of the HCL report and expects `want` naming `part`. */
static void
tdx_flip_hcl(const struct tdx_real *r, size_t off, enum clst_status want, const char *part)
{
    uint8_t h[4096];
    json_t *d = json_deep_copy(r->doc);
    memcpy(h, r->hcl, r->hcl_size);
    h[off] ^= 0x01;
    set_b64url(d, "hcl_report", h, r->hcl_size);
    struct clst_err err = {0};
    enum clst_status rc = tdx_run(r, d, "UpToDate,OutOfDate", AZ_T_2025_03_01, false, NULL, &err);
    if (rc != want || (part != NULL && strstr(err.msg, part) == NULL)) {
        fail_msg("HCL byte 0x%zx: want %s (\"%s\"), got %s: %s", off, clst_status_str(want),
                 part ? part : "", clst_status_str(rc), err.msg);
    }
    json_decref(d);
}

static void
test_tdx_real_flip_hcl(void **state)
{
    (void)state;
    struct tdx_real r;
    tdx_real_load(&r);
    const size_t td = AZURE_HCL_HW_OFFSET;

    /* The header and the IGVM fields: every byte. */
    for (size_t off = 0; off < 0x14; off++) {
        tdx_flip_hcl(&r, off, CLST_E_MALFORMED, NULL);
    }
    for (size_t off = 0x4C0; off < 0x4D4; off++) {
        tdx_flip_hcl(&r, off, CLST_E_MALFORMED, NULL);
    }
    /* REPORTMACSTRUCT: type and reserved bytes do not parse; the digests and REPORTDATA are
     * compared. */
    tdx_flip_hcl(&r, td + 0, CLST_E_MALFORMED, "not TDX");
    tdx_flip_hcl(&r, td + 1, CLST_E_MALFORMED, "subtype");
    tdx_flip_hcl(&r, td + 5, CLST_E_MALFORMED, "reserved");
    tdx_flip_hcl(&r, td + 200, CLST_E_MALFORMED, "reserved");
    for (size_t off = 32; off < 80; off += 7) {
        tdx_flip_hcl(&r, td + off, CLST_E_VERIFY, "TEE_TCB_INFO_HASH");
    }
    for (size_t off = 80; off < 128; off += 7) {
        tdx_flip_hcl(&r, td + off, CLST_E_VERIFY, "TEE_INFO_HASH");
    }
    for (size_t off = 128; off < 192; off += 5) {
        tdx_flip_hcl(&r, td + off, CLST_E_VERIFY, "REPORTDATA differs");
    }
    /* TEE_TCB_INFO and TDINFO: covered by their digests in the TDREPORT (sampled: every 5th and
     * 9th byte, each one a full verification). */
    for (size_t off = AZURE_TEE_TCB_INFO_OFF; off < AZURE_TEE_TCB_INFO_OFF + 144; off += 5) {
        tdx_flip_hcl(&r, td + off, CLST_E_VERIFY, "TEE_TCB_INFO_HASH");
    }
    tdx_flip_hcl(&r, td + AZURE_TEE_TCB_INFO_OFF + 150, CLST_E_MALFORMED, "reserved");
    tdx_flip_hcl(&r, td + 500, CLST_E_MALFORMED, "reserved");
    for (size_t off = AZURE_TDINFO_OFF; off < AZURE_TDINFO_OFF + 448; off += 9) {
        tdx_flip_hcl(&r, td + off, CLST_E_VERIFY, "TEE_INFO_HASH");
    }
    tdx_flip_hcl(&r, td + AZURE_TDINFO_OFF + 460, CLST_E_MALFORMED, "reserved");
    /* The padding after the TDREPORT. */
    tdx_flip_hcl(&r, td + AZURE_TDREPORT_SIZE + 3, CLST_E_MALFORMED, "padding");
    /* The variable data: not bound to the quote any more (sampled). */
    for (size_t off = AZURE_HCL_VAR_OFFSET; off < AZURE_HCL_VAR_OFFSET + 1201; off += 61) {
        tdx_flip_hcl(&r, off, CLST_E_VERIFY, NULL);
    }
    tdx_flip_hcl(&r, AZURE_HCL_VAR_OFFSET + 1000, CLST_E_VERIFY, "not bound to the TD quote");
    /* What nothing can check off the machine: the MAC and CPUSVN. Altered, still accepted; no
     * claim comes from them (the claims are the quote's). */
    tdx_flip_hcl(&r, td + 16, CLST_OK, NULL);
    tdx_flip_hcl(&r, td + 224, CLST_OK, NULL);
    tdx_flip_hcl(&r, td + 255, CLST_OK, NULL);
    tdx_real_free(&r);
}

/* ---- TDX inside: the comparison on parsed structs -------------------------------------------- */

static const char bind_var[] = "{\"keys\":[],\"user-data\":\"constructed for the unit test\"}";

/* A parsed real quote `rel`, its body's REPORTDATA set to SHA-256(bind_var) || 0 (on the struct),
 * and a parsed TDREPORT built from that body. */
static void
bind_fixture(const char *rel, struct dcap_quote *q, struct azure_tdreport *td)
{
    size_t n = 0;
    unsigned char *raw = fx_vector(rel, &n);
    uint8_t buf[AZURE_TDREPORT_SIZE];
    struct clst_err err = {0};
    assert_int_equal(dcap_quote_parse(raw, n, q, &err), CLST_OK);
    free(raw);
    memset(q->td.report_data, 0, sizeof(q->td.report_data));
    assert_int_equal(clst_sha256(bind_var, strlen(bind_var), q->td.report_data), CLST_OK);
    tdreport_encode(&q->td, buf);
    assert_int_equal(evidence_azure_tdreport_parse(buf, sizeof(buf), td, &err), CLST_OK);
}

static void
bind_expect(const struct azure_tdreport *td, const struct dcap_quote *q, const char *var,
            enum clst_status want, const char *part)
{
    struct clst_err err = {0};
    enum clst_status rc = evidence_azure_tdx_bind(td, q, (const uint8_t *)var, strlen(var), &err);
    if (rc != want || (part != NULL && strstr(err.msg, part) == NULL)) {
        fail_msg("want %s (\"%s\"), got %s: %s", clst_status_str(want), part ? part : "",
                 clst_status_str(rc), err.msg);
    }
}

static void
test_tdx_bind_parsed(void **state)
{
    (void)state;
    struct dcap_quote *q = calloc(1, sizeof(*q));
    struct azure_tdreport *td = calloc(1, sizeof(*td)), *t2 = calloc(1, sizeof(*t2));
    uint8_t buf[AZURE_TDREPORT_SIZE];
    struct clst_err err = {0};
    assert_non_null(q);
    assert_non_null(td);
    assert_non_null(t2);

    static const char *const quotes[] = {TDX_OTHER_QUOTE, "tdx/go-tdx-guest/quote_v5_sample.dat"};
    size_t td15 = 0;
    for (size_t k = 0; k < 2; k++) {
        bind_fixture(quotes[k], q, td);
        td15 += q->body_type == DCAP_BODY_TD15;
        bind_expect(td, q, bind_var, CLST_OK, NULL);
        /* Each compared field of the quote body changed in turn: named. */
        struct {
            const char *name;
            uint8_t *p;
        } f[] = {
            {"TEE_TCB_SVN", q->td.tee_tcb_svn},
            {"MRSEAM", q->td.mrseam},
            {"MRSIGNERSEAM", q->td.mrsignerseam},
            {"SEAM_ATTRIBUTES", q->td.seam_attributes},
            {"TD_ATTRIBUTES", q->td.td_attributes},
            {"XFAM", q->td.xfam},
            {"MRTD", q->td.mrtd},
            {"MRCONFIGID", q->td.mrconfigid},
            {"MROWNER", q->td.mrowner},
            {"MROWNERCONFIG", q->td.mrownerconfig},
            {"RTMR0", q->td.rtmr[0]},
            {"RTMR1", q->td.rtmr[1]},
            {"RTMR2", q->td.rtmr[2]},
            {"RTMR3", q->td.rtmr[3]},
            {"REPORTDATA", q->td.report_data},
            {"TEE_TCB_SVN2", q->td.tee_tcb_svn2},
            {"MRSERVICETD", q->td.mrservicetd},
        };
        for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
            bool compared = i < 15 || q->body_type == DCAP_BODY_TD15;
            f[i].p[3] ^= 0x80;
            char want[64];
            snprintf(want, sizeof(want), "%s differs", f[i].name);
            bind_expect(td, q, bind_var, compared ? CLST_E_VERIFY : CLST_OK,
                        compared ? want : NULL);
            f[i].p[3] ^= 0x80;
        }
        /* Another variable data, or a non-zero upper half of REPORTDATA (in both, so that the
         * comparison passes and the binding is what fails). */
        bind_expect(td, q, "{\"keys\":[]}", CLST_E_VERIFY, "not bound to the TD quote");
        q->td.report_data[40] = 1;
        tdreport_encode(&q->td, buf);
        assert_int_equal(evidence_azure_tdreport_parse(buf, sizeof(buf), t2, &err), CLST_OK);
        bind_expect(t2, q, bind_var, CLST_E_VERIFY, "not bound to the TD quote");
        q->td.report_data[40] = 0;
        /* A TDREPORT whose digests do not match its own contents. */
        *t2 = *td;
        t2->mrtd[0] ^= 1; /* the field, not the raw TDINFO bytes */
        bind_expect(t2, q, bind_var, CLST_E_VERIFY, "MRTD differs");
        *t2 = *td;
        t2->tdinfo[20] ^= 1;
        bind_expect(t2, q, bind_var, CLST_E_VERIFY, "TEE_INFO_HASH");
        *t2 = *td;
        t2->tee_tcb_info[30] ^= 1;
        bind_expect(t2, q, bind_var, CLST_E_VERIFY, "TEE_TCB_INFO_HASH");
    }
    assert_int_equal(td15, 1); /* the v5 sample carries a TD 1.5 body */

    /* Not a TD quote. */
    size_t n = 0;
    unsigned char *sgx = fx_vector("sgx/dcap-rs/quote_v3_sgx_00606a000000.bin", &n);
    struct dcap_quote *sq = calloc(1, sizeof(*sq));
    assert_non_null(sq);
    assert_int_equal(dcap_quote_parse(sgx, n, sq, &err), CLST_OK);
    bind_expect(td, sq, bind_var, CLST_E_VERIFY, "not a TDX quote");
    free(sq);
    free(sgx);

    /* The TDREPORT parser: sizes, type, version, reserved ranges. */
    tdreport_encode(&q->td, buf);
    assert_int_equal(evidence_azure_tdreport_parse(buf, 1023, t2, &err), CLST_E_MALFORMED);
    buf[2] = 2;
    assert_int_equal(evidence_azure_tdreport_parse(buf, sizeof(buf), t2, &err), CLST_E_MALFORMED);
    buf[2] = 1;
    assert_int_equal(evidence_azure_tdreport_parse(buf, sizeof(buf), t2, &err), CLST_OK);
    assert_int_equal(t2->version, 1);
    static const size_t reserved[] = {3,         4,   15,  192, 223, 256 + 144,
                                      256 + 238, 495, 511, 960, 1023};
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
        tdreport_encode(&q->td, buf);
        buf[reserved[i]] = 1;
        assert_int_equal(evidence_azure_tdreport_parse(buf, sizeof(buf), t2, &err),
                         CLST_E_MALFORMED);
    }
    free(t2);
    free(td);
    free(q);
}

int
main(void)
{
    const struct CMUnitTest synth_tests[] = {
        cmocka_unit_test(test_synth_positive),
        cmocka_unit_test(test_synth_binding),
        cmocka_unit_test(test_synth_ak),
        cmocka_unit_test(test_synth_debug_and_tdx),
    };
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors_positive), cmocka_unit_test(test_readme_recipes),
        cmocka_unit_test(test_truncations),      cmocka_unit_test(test_flip_hcl),
        cmocka_unit_test(test_flip_quote),       cmocka_unit_test(test_time_and_certificates),
        cmocka_unit_test(test_container),
    };
    const struct CMUnitTest tdx_tests[] = {
        cmocka_unit_test(test_tdx_real_positive),
        cmocka_unit_test(test_tdx_real_negative),
        cmocka_unit_test(test_tdx_real_flip_hcl),
        cmocka_unit_test(test_tdx_bind_parsed),
    };
    int failed = cmocka_run_group_tests(tests, group_setup, group_teardown);
    failed += cmocka_run_group_tests(synth_tests, synth_setup, synth_teardown);
    return failed + cmocka_run_group_tests(tdx_tests, tdx_setup, tdx_teardown);
}
