/*
 * Shared by the SEV-SNP unit tests (include after <cmocka.h>): the stored real vectors
 * (tests/vectors/sev-snp/, see the README in each folder) and a synthetic AMD-like PKI made at
 * run time (ARK/ASK/ASVK with RSA-PSS SHA-384 salt 48, P-384 VCEK/VLEK with the KDS extensions),
 * used through evidence_sevsnp_verify_with() so that reports of every version and product can be
 * signed. The synthetic roots never reach the production path, which only knows amd_roots.c.
 */
#ifndef CLST_TEST_SEVSNP_FIXTURE_H
#define CLST_TEST_SEVSNP_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include <cloister/crypto.h>
#include <cloister/evidence.h>

#include "evidence/sevsnp_int.h"
#include "test_util.h"

/* 2024-01-01T00:00:00Z: inside the validity of every stored Milan certificate. */
#define SNP_T_2024 INT64_C(1704067200)
/* 2025-01-01T00:00:00Z: inside the Turin VCEK's validity too. */
#define SNP_T_2025 INT64_C(1735689600)

/* ---- stored vectors ------------------------------------------------------------------------- */

/* Reads tests/vectors/sev-snp/<rel>; fails the test when missing. */
static inline uint8_t *
snp_read(const char *rel, size_t *out_size)
{
    char path[1024];
    int n = snprintf(path, sizeof(path), "%s/sev-snp/%s", CLST_VECTORS_DIR, rel);
    if (n < 0 || (size_t)n >= sizeof(path)) {
        return NULL;
    }
    uint8_t *data = tu_read_file(path, out_size);
    if (data == NULL) {
        fprintf(stderr, "cannot read %s\n", path);
    }
    return data;
}

/* Appends the DER of certificate `index` (0-based) of a PEM bundle to out. */
static inline int
snp_pem_cert_der(const uint8_t *pem, size_t size, int index, struct clst_buf *out)
{
    STACK_OF(X509) *certs = NULL;
    unsigned char *der = NULL;
    int rc = -1;
    if (clst_x509_stack_from_pem(pem, size, &certs, NULL) != CLST_OK ||
        index >= sk_X509_num(certs)) {
        goto out;
    }
    int n = i2d_X509(sk_X509_value(certs, index), &der);
    if (n <= 0 || clst_buf_append(out, der, (size_t)n) != CLST_OK) {
        goto out;
    }
    rc = 0;
out:
    OPENSSL_free(der);
    sk_X509_pop_free(certs, X509_free);
    return rc;
}

static inline int
snp_x509_der(X509 *x, struct clst_buf *out)
{
    unsigned char *der = NULL;
    int n = i2d_X509(x, &der);
    int rc = (n > 0 && clst_buf_append(out, der, (size_t)n) == CLST_OK) ? 0 : -1;
    OPENSSL_free(der);
    return rc;
}

/* The AMD roots compiled in, as the caller passes them. */
static inline STACK_OF(X509) *
snp_amd_roots(void)
{
    STACK_OF(X509) *roots = NULL;
    return clst_evidence_sevsnp_roots(&roots, NULL) == CLST_OK ? roots : NULL;
}

/* ---- synthetic PKI -------------------------------------------------------------------------- */

struct synth {
    EVP_PKEY *ark_key;  /* signs the three synthetic ARKs and their CRLs */
    EVP_PKEY *ask_key;  /* the ASKs' and ASVKs' key */
    EVP_PKEY *evil_key; /* an attacker's "ARK" */
    EVP_PKEY *vcek_key;
    EVP_PKEY *vlek_key;
    X509 *ark[SEVSNP_PRODUCT_COUNT];
    X509 *ask[SEVSNP_PRODUCT_COUNT];
    X509 *asvk[SEVSNP_PRODUCT_COUNT];
    struct sevsnp_roots roots;
    STACK_OF(X509) *root_stack; /* every synthetic ARK */
    int64_t nb, na;             /* validity of the synthetic chain */
};

/* Signs a certificate or CRL body the way AMD does: RSASSA-PSS, SHA-384, MGF1-SHA-384, salt 48. */
static inline EVP_MD_CTX *
synth_pss_ctx(EVP_PKEY *key)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    if (md == NULL || EVP_DigestSignInit(md, &pctx, EVP_sha384(), NULL, key) != 1 ||
        EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
        EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 48) != 1 ||
        EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha384()) != 1) {
        EVP_MD_CTX_free(md);
        return NULL;
    }
    return md;
}

static inline X509_NAME *
synth_name(const char *cn)
{
    X509_NAME *n = X509_NAME_new();
    if (n == NULL ||
        X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC,
                                   (const unsigned char *)"Advanced Micro Devices", -1, -1,
                                   0) != 1 ||
        X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0) !=
            1) {
        X509_NAME_free(n);
        return NULL;
    }
    return n;
}

static inline int
synth_add_ext_nid(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer != NULL ? issuer : x, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    int ok = e != NULL && X509_add_ext(x, e, -1) == 1;
    X509_EXTENSION_free(e);
    return ok ? 0 : -1;
}

/* Adds an AMD extension 1.3.6.1.4.1.3704.1.<suffix> whose extnValue is `der` (raw bytes). */
static inline int
synth_add_amd_ext(X509 *x, const char *suffix, const uint8_t *der, size_t size)
{
    char oid[64];
    snprintf(oid, sizeof(oid), "1.3.6.1.4.1.3704.1.%s", suffix);
    ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
    ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
    X509_EXTENSION *e = NULL;
    int ok = obj != NULL && os != NULL && ASN1_OCTET_STRING_set(os, der, (int)size) == 1 &&
             (e = X509_EXTENSION_create_by_OBJ(NULL, obj, 0, os)) != NULL &&
             X509_add_ext(x, e, -1) == 1;
    X509_EXTENSION_free(e);
    ASN1_OCTET_STRING_free(os);
    ASN1_OBJECT_free(obj);
    return ok ? 0 : -1;
}

static inline int
synth_add_amd_int(X509 *x, const char *suffix, uint8_t v)
{
    uint8_t der[4] = {0x02, 0x01, v, 0};
    if (v >= 0x80) {
        der[1] = 0x02;
        der[2] = 0x00;
        der[3] = v;
        return synth_add_amd_ext(x, suffix, der, 4);
    }
    return synth_add_amd_ext(x, suffix, der, 3);
}

/* A certificate for `key` named `cn`, issued by (issuer, issuer_key) or self-signed. */
static inline X509 *
synth_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key, bool ca, long serial,
           int64_t nb, int64_t na)
{
    X509 *x = X509_new();
    X509_NAME *name = synth_name(cn);
    EVP_MD_CTX *md = NULL;
    bool ok = x != NULL && name != NULL && X509_set_version(x, 2) == 1 &&
              ASN1_INTEGER_set(X509_get_serialNumber(x), serial) == 1 &&
              X509_set_subject_name(x, name) == 1 &&
              X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer) : name) == 1 &&
              ASN1_TIME_set(X509_getm_notBefore(x), (time_t)nb) != NULL &&
              ASN1_TIME_set(X509_getm_notAfter(x), (time_t)na) != NULL &&
              X509_set_pubkey(x, key) == 1;
    if (ok && ca) {
        ok = synth_add_ext_nid(x, issuer, NID_basic_constraints, "critical,CA:TRUE") == 0 &&
             synth_add_ext_nid(x, issuer, NID_key_usage, "critical,keyCertSign,cRLSign") == 0;
    }
    if (ok) {
        ok = synth_add_ext_nid(x, issuer, NID_subject_key_identifier, "hash") == 0;
    }
    if (ok && issuer != NULL) {
        ok = synth_add_ext_nid(x, issuer, NID_authority_key_identifier, "keyid:always") == 0;
    }
    if (ok) {
        md = synth_pss_ctx(issuer_key);
        ok = md != NULL && X509_sign_ctx(x, md) > 0;
    }
    EVP_MD_CTX_free(md);
    X509_NAME_free(name);
    if (!ok) {
        X509_free(x);
        return NULL;
    }
    return x;
}

/* What a synthetic VCEK/VLEK carries. */
struct synth_leaf_spec {
    enum sevsnp_product product;
    bool vlek;
    struct sevsnp_tcb tcb;
    const uint8_t *hwid; /* VCEK only */
    size_t hwid_size;
    bool hwid_wrapped;        /* hwID as a DER OCTET STRING (the "new" form) */
    const char *product_name; /* NULL: the product's name ("Milan-B0" style for Milan) */
    bool omit_snp;            /* leave out snpSPL */
    int64_t nb, na;
    X509 *issuer;           /* NULL: the product's ASK (ASVK for a VLEK) */
    EVP_PKEY *signer;       /* NULL: the synthetic ASK key */
    const EVP_MD *pkcs1_md; /* non-NULL: sign with RSA PKCS#1 v1.5 and this hash, not PSS */
};

static inline X509 *
synth_leaf(const struct synth *s, const struct synth_leaf_spec *spec)
{
    size_t p = (size_t)spec->product - 1;
    X509 *issuer = spec->issuer != NULL ? spec->issuer : spec->vlek ? s->asvk[p] : s->ask[p];
    EVP_PKEY *key = spec->vlek ? s->vlek_key : s->vcek_key;
    X509 *x = X509_new();
    X509_NAME *name = synth_name(spec->vlek ? "SEV-VLEK" : "SEV-VCEK");
    EVP_MD_CTX *md = NULL;
    const char *pname =
        spec->product_name != NULL
            ? spec->product_name
            : (spec->product == SEVSNP_PRODUCT_MILAN ? "Milan-B0"
                                                     : evidence_sevsnp_product_name(spec->product));
    uint8_t ia5[40];
    size_t plen = strlen(pname);
    bool ok = x != NULL && name != NULL && plen < 38 && X509_set_version(x, 2) == 1 &&
              ASN1_INTEGER_set(X509_get_serialNumber(x), 0) == 1 && /* AMD's serial 0 */
              X509_set_subject_name(x, name) == 1 &&
              X509_set_issuer_name(x, X509_get_subject_name(issuer)) == 1 &&
              ASN1_TIME_set(X509_getm_notBefore(x), (time_t)spec->nb) != NULL &&
              ASN1_TIME_set(X509_getm_notAfter(x), (time_t)spec->na) != NULL &&
              X509_set_pubkey(x, key) == 1;
    if (ok) {
        ia5[0] = 0x16;
        ia5[1] = (uint8_t)plen;
        memcpy(ia5 + 2, pname, plen);
        ok = synth_add_amd_int(x, "1", spec->product == SEVSNP_PRODUCT_TURIN ? 1 : 0) == 0 &&
             synth_add_amd_ext(x, "2", ia5, plen + 2) == 0 &&
             synth_add_amd_int(x, "3.1", spec->tcb.bootloader) == 0 &&
             synth_add_amd_int(x, "3.2", spec->tcb.tee) == 0 &&
             (spec->omit_snp || synth_add_amd_int(x, "3.3", spec->tcb.snp) == 0) &&
             synth_add_amd_int(x, "3.4", 0) == 0 &&
             synth_add_amd_int(x, "3.8", spec->tcb.microcode) == 0;
    }
    if (ok && spec->product == SEVSNP_PRODUCT_TURIN) {
        ok = synth_add_amd_int(x, "3.9", spec->tcb.fmc) == 0;
    }
    if (ok && !spec->vlek && spec->hwid != NULL) {
        uint8_t wrapped[2 + SEVSNP_CHIP_ID_SIZE];
        if (spec->hwid_wrapped) {
            wrapped[0] = 0x04;
            wrapped[1] = (uint8_t)spec->hwid_size;
            memcpy(wrapped + 2, spec->hwid, spec->hwid_size);
            ok = synth_add_amd_ext(x, "4", wrapped, spec->hwid_size + 2) == 0;
        } else {
            ok = synth_add_amd_ext(x, "4", spec->hwid, spec->hwid_size) == 0;
        }
    }
    if (ok && spec->vlek) {
        const uint8_t csp[] = {0x16, 0x04, 'c', 's', 'p', '1'};
        ok = synth_add_amd_ext(x, "5", csp, sizeof(csp)) == 0;
    }
    if (ok) {
        EVP_PKEY *signer = spec->signer != NULL ? spec->signer : s->ask_key;
        if (spec->pkcs1_md != NULL) {
            md = EVP_MD_CTX_new();
            ok = md != NULL && EVP_DigestSignInit(md, NULL, spec->pkcs1_md, NULL, signer) == 1;
        } else {
            md = synth_pss_ctx(signer);
            ok = md != NULL;
        }
        ok = ok && X509_sign_ctx(x, md) > 0;
    }
    EVP_MD_CTX_free(md);
    X509_NAME_free(name);
    if (!ok) {
        X509_free(x);
        return NULL;
    }
    return x;
}

static inline void
synth_free(struct synth *s)
{
    if (s == NULL) {
        return;
    }
    for (size_t i = 0; i < SEVSNP_PRODUCT_COUNT; i++) {
        X509_free(s->ark[i]);
        X509_free(s->ask[i]);
        X509_free(s->asvk[i]);
    }
    sk_X509_pop_free(s->root_stack, X509_free);
    EVP_PKEY_free(s->ark_key);
    EVP_PKEY_free(s->ask_key);
    EVP_PKEY_free(s->evil_key);
    EVP_PKEY_free(s->vcek_key);
    EVP_PKEY_free(s->vlek_key);
    free(s);
}

static inline struct synth *
synth_new(void)
{
    static const char *const gen[SEVSNP_PRODUCT_COUNT] = {"Milan", "Genoa", "Turin"};
    struct synth *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return NULL;
    }
    s->nb = SNP_T_2024 - 86400;
    s->na = SNP_T_2024 + 365 * 86400;
    if (clst_rsa_generate(2048, &s->ark_key) != CLST_OK ||
        clst_rsa_generate(2048, &s->ask_key) != CLST_OK ||
        clst_rsa_generate(2048, &s->evil_key) != CLST_OK ||
        clst_ec_generate(CLST_CURVE_P384, &s->vcek_key) != CLST_OK ||
        clst_ec_generate(CLST_CURVE_P384, &s->vlek_key) != CLST_OK) {
        synth_free(s);
        return NULL;
    }
    s->root_stack = sk_X509_new_null();
    if (s->root_stack == NULL) {
        synth_free(s);
        return NULL;
    }
    for (size_t i = 0; i < SEVSNP_PRODUCT_COUNT; i++) {
        char cn[32];
        snprintf(cn, sizeof(cn), "ARK-%s", gen[i]);
        s->ark[i] = synth_cert(s->ark_key, cn, NULL, s->ark_key, true, (long)(0x10000 * (i + 1)),
                               s->nb - 86400, s->na + 86400);
        snprintf(cn, sizeof(cn), "SEV-%s", gen[i]);
        s->ask[i] = synth_cert(s->ask_key, cn, s->ark[i], s->ark_key, true,
                               (long)(0x10000 * (i + 1) + 1), s->nb - 3600, s->na + 3600);
        snprintf(cn, sizeof(cn), "SEV-VLEK-%s", gen[i]);
        s->asvk[i] = synth_cert(s->ask_key, cn, s->ark[i], s->ark_key, true,
                                (long)(0x10000 * (i + 1) + 0x101), s->nb - 3600, s->na + 3600);
        unsigned char *der = NULL;
        int n = s->ark[i] != NULL ? i2d_X509(s->ark[i], &der) : -1;
        if (s->ask[i] == NULL || s->asvk[i] == NULL || n <= 0 ||
            clst_sha256(der, (size_t)n, s->roots.ark_sha256[i]) != CLST_OK ||
            X509_up_ref(s->ark[i]) != 1) {
            OPENSSL_free(der);
            synth_free(s);
            return NULL;
        }
        OPENSSL_free(der);
        s->roots.ark[i] = s->ark[i];
        if (sk_X509_push(s->root_stack, s->ark[i]) <= 0) {
            X509_free(s->ark[i]);
            synth_free(s);
            return NULL;
        }
    }
    return s;
}

/* A plausible report of `version` for `product`, not yet signed. */
static inline void
synth_report_init(struct sevsnp_report *r, enum sevsnp_product product, uint32_t version)
{
    static const uint8_t cpuid[SEVSNP_PRODUCT_COUNT][2] = {
        {0x19, 0x01}, {0x19, 0x11}, {0x1A, 0x02}};
    struct sevsnp_tcb tcb = {.fmc = 1, .bootloader = 3, .tee = 0, .snp = 8, .microcode = 115};
    memset(r, 0, sizeof(*r));
    r->version = version;
    r->guest_svn = 4;
    r->policy = UINT64_C(0x30000); /* SMT allowed, bit 17 */
    r->sig_algo = SEVSNP_SIG_ALGO_ES384;
    if (product != SEVSNP_PRODUCT_TURIN) {
        tcb.fmc = 0;
    }
    r->current_tcb = r->reported_tcb = r->committed_tcb = r->launch_tcb =
        evidence_sevsnp_tcb_encode(product, &tcb);
    r->platform_info = 1;
    for (size_t i = 0; i < sizeof(r->report_data); i++) {
        r->report_data[i] = (uint8_t)(0x40 + i);
    }
    for (size_t i = 0; i < sizeof(r->measurement); i++) {
        r->measurement[i] = (uint8_t)(0x90 + i);
    }
    for (size_t i = 0; i < sizeof(r->chip_id); i++) {
        r->chip_id[i] = (uint8_t)(0xC0 ^ i);
    }
    if (product == SEVSNP_PRODUCT_TURIN) {
        memset(r->chip_id + 8, 0, sizeof(r->chip_id) - 8);
    }
    if (version >= 3) {
        r->cpuid_family = cpuid[product - 1][0];
        r->cpuid_model = cpuid[product - 1][1];
        r->cpuid_stepping = 1;
    }
    if (version >= 5) {
        r->launch_mit_vector = 0x3;
        r->current_mit_vector = 0x7;
    }
    r->current_build = 4;
    r->current_minor = 52;
    r->current_major = 1;
    r->committed_build = 4;
    r->committed_minor = 52;
    r->committed_major = 1;
}

/* The TCB a report of synth_report_init carries, decoded. */
static inline struct sevsnp_tcb
synth_tcb(enum sevsnp_product product)
{
    struct sevsnp_tcb t = {.fmc = product == SEVSNP_PRODUCT_TURIN ? 1 : 0,
                           .bootloader = 3,
                           .tee = 0,
                           .snp = 8,
                           .microcode = 115};
    return t;
}

/* Signs buf[0..0x29F] with key and writes R and S little-endian at 0x2A0 / 0x2E8. */
static inline int
synth_sign_raw(uint8_t buf[SEVSNP_REPORT_SIZE], EVP_PKEY *key)
{
    struct clst_buf sig;
    clst_buf_init(&sig, 256);
    if (clst_ecdsa_sign(key, CLST_HASH_SHA384, CLST_SIG_RAW, buf, SEVSNP_SIGNED_SIZE, &sig) !=
            CLST_OK ||
        sig.size != 2 * SEVSNP_P384_SIZE) {
        clst_buf_cleanup(&sig);
        return -1;
    }
    memset(buf + SEVSNP_SIGNED_SIZE, 0, 2 * SEVSNP_SIG_COMPONENT_SIZE);
    for (size_t i = 0; i < SEVSNP_P384_SIZE; i++) {
        buf[SEVSNP_SIGNED_SIZE + i] = sig.data[SEVSNP_P384_SIZE - 1 - i];
        buf[SEVSNP_SIGNED_SIZE + SEVSNP_SIG_COMPONENT_SIZE + i] =
            sig.data[2 * SEVSNP_P384_SIZE - 1 - i];
    }
    clst_buf_cleanup(&sig);
    return 0;
}

static inline int
synth_sign(const struct sevsnp_report *r, EVP_PKEY *key, uint8_t out[SEVSNP_REPORT_SIZE])
{
    evidence_sevsnp_report_encode(r, out);
    return synth_sign_raw(out, key);
}

/* Endorsements: the DER of each certificate, concatenated. */
static inline int
synth_endorse(struct clst_buf *out, X509 *a, X509 *b, X509 *c)
{
    X509 *certs[3] = {a, b, c};
    for (size_t i = 0; i < 3; i++) {
        if (certs[i] != NULL && snp_x509_der(certs[i], out) != 0) {
            return -1;
        }
    }
    return 0;
}

/* Parses and verifies against the synthetic roots (roots given by the caller: every synthetic
 * ARK when `roots` is NULL); claims on success when out_claims is non-NULL. */
static inline enum clst_status
synth_verify_ex(const struct synth *s, const uint8_t *ev, size_t size, const uint8_t *endorse,
                size_t endorse_size, const json_t *options, int64_t at, STACK_OF(X509) *roots,
                STACK_OF(X509_CRL) *crls, json_t **out_claims, struct clst_err *err)
{
    struct sevsnp_evidence *parsed = calloc(1, sizeof(*parsed));
    struct clst_evidence_input in;
    enum clst_status rc;
    if (parsed == NULL) {
        return CLST_E_NOMEM;
    }
    memset(&in, 0, sizeof(in));
    in.evidence = ev;
    in.evidence_size = size;
    in.endorsements = endorse;
    in.endorsements_size = endorse_size;
    in.roots = roots != NULL ? roots : s->root_stack;
    in.crls = crls;
    in.at = at;
    in.options = options;
    rc = evidence_sevsnp_parse(ev, size, parsed, err);
    if (rc == CLST_OK) {
        rc = evidence_sevsnp_verify_with(parsed, ev, size, &in, &s->roots, err);
    }
    if (rc == CLST_OK && out_claims != NULL) {
        json_t *claims = json_object();
        rc = claims != NULL ? evidence_sevsnp_ops.claims(parsed, claims, err) : CLST_E_NOMEM;
        if (rc == CLST_OK) {
            *out_claims = claims;
        } else {
            json_decref(claims);
        }
    }
    free(parsed);
    return rc;
}

static inline enum clst_status
synth_verify(const struct synth *s, const uint8_t *ev, size_t size, const uint8_t *endorse,
             size_t endorse_size, const json_t *options, struct clst_err *err)
{
    return synth_verify_ex(s, ev, size, endorse, endorse_size, options, SNP_T_2024, NULL, NULL,
                           NULL, err);
}

#endif
