/*
 * A synthetic Intel DCAP world for the tdx/sgx tests: a test root CA (P-256), a PCK CA, a PCK
 * certificate carrying the SGX extension, a TCB Signing certificate, CRLs, signed tcbInfo and QE
 * identity JSON, and a quote builder that signs like the quoting enclave. It lets the tests make
 * quotes that real hardware would not give us (debug TDs, every TCB status, TD report 1.5 with
 * verifiable collateral, revoked PCKs) and re-sign mutants so that each check is reached on its
 * own. Nothing here is trusted by the library: the tests pass fx->roots explicitly.
 *
 * Shared by tests/unit/evidence/test_{dcap,tdx,sgx}*.c (header-only; every function static).
 */
#ifndef CLST_TEST_DCAP_FIXTURE_H
#define CLST_TEST_DCAP_FIXTURE_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "evidence/dcap_int.h"
#include "test_util.h"

#define FX_T0      INT64_C(1740787200) /* 2025-03-01T00:00:00Z, the synthetic "now" */
#define FX_DAY     INT64_C(86400)
#define FX_ROOT_CN "Cloister Test SGX Root CA"

static const uint8_t fx_fmspc[6] = {0x00, 0x90, 0x6E, 0xD5, 0x00, 0x00};
static const uint8_t fx_qe_mrsigner[32] = {
    0xdc, 0x9e, 0x2a, 0x7c, 0x6f, 0x94, 0x8f, 0x17, 0x47, 0x4e, 0x34, 0xa7, 0xfc, 0x43, 0xed, 0x03,
    0x0f, 0x7c, 0x15, 0x63, 0xf1, 0xba, 0xbd, 0xdf, 0x63, 0x40, 0xc8, 0x2e, 0x0e, 0x54, 0xa8, 0xc5,
};

struct fx {
    EVP_PKEY *root_key, *ca_key, *pck_key, *tcb_key, *att_key;
    X509 *root, *ca, *pck, *tcb;
    STACK_OF(X509) *roots;
    char *pck_chain;  /* PEM: PCK, PCK CA, root */
    char *tcb_chain;  /* PEM: TCB Signing, root */
    struct clst_buf ca_crl, root_crl; /* DER */
    uint8_t pck_sgx_svn[16];
    uint16_t pck_pcesvn;
};

/* ---- small helpers ---------------------------------------------------------------------------- */

static inline void
fx_die(const char *what)
{
    fprintf(stderr, "dcap fixture: %s failed\n", what);
    abort();
}

static inline void
fx_buf_printf(struct clst_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline void
fx_buf_printf(struct clst_buf *b, const char *fmt, ...)
{
    char tmp[16384];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(tmp) || clst_buf_append(b, tmp, (size_t)n) != CLST_OK) {
        fx_die("printf");
    }
}

static inline void
fx_sign_raw(EVP_PKEY *key, const void *msg, size_t size, uint8_t out[64])
{
    struct clst_buf sig;
    clst_buf_init(&sig, 256);
    if (clst_ecdsa_sign(key, CLST_HASH_SHA256, CLST_SIG_RAW, msg, size, &sig) != CLST_OK ||
        sig.size != 64) {
        fx_die("ecdsa sign");
    }
    memcpy(out, sig.data, 64);
    clst_buf_cleanup(&sig);
}

static inline char *
fx_pem(X509 *const *certs, size_t count)
{
    BIO *bio = BIO_new(BIO_s_mem());
    for (size_t i = 0; i < count; i++) {
        if (bio == NULL || PEM_write_bio_X509(bio, certs[i]) != 1) {
            fx_die("PEM");
        }
    }
    char *data = NULL;
    long len = BIO_get_mem_data(bio, &data);
    char *out = malloc((size_t)len + 1);
    if (out == NULL) {
        fx_die("malloc");
    }
    memcpy(out, data, (size_t)len);
    out[len] = 0;
    BIO_free(bio);
    return out;
}

/* ---- DER for the SGX extension --------------------------------------------------------------- */

static inline void
fx_der(struct clst_buf *b, uint8_t tag, const uint8_t *v, size_t n)
{
    uint8_t h[4];
    size_t hn = 0;
    h[hn++] = tag;
    if (n < 0x80) {
        h[hn++] = (uint8_t)n;
    } else if (n < 0x100) {
        h[hn++] = 0x81;
        h[hn++] = (uint8_t)n;
    } else {
        h[hn++] = 0x82;
        h[hn++] = (uint8_t)(n >> 8);
        h[hn++] = (uint8_t)n;
    }
    if (clst_buf_append(b, h, hn) != CLST_OK || (n > 0 && clst_buf_append(b, v, n) != CLST_OK)) {
        fx_die("der");
    }
}

/* SEQUENCE { OID 1.2.840.113741.1.13.1.<arcs>, <value TLV> } */
static inline void
fx_der_entry(struct clst_buf *b, const uint8_t *arcs, size_t narcs, const uint8_t *tlv, size_t n)
{
    static const uint8_t base[] = {0x2A, 0x86, 0x48, 0x86, 0xF8, 0x4D, 0x01, 0x0D, 0x01};
    struct clst_buf inner, oid;
    clst_buf_init(&inner, 4096);
    clst_buf_init(&oid, 64);
    if (clst_buf_append(&oid, base, sizeof(base)) != CLST_OK ||
        clst_buf_append(&oid, arcs, narcs) != CLST_OK) {
        fx_die("oid");
    }
    fx_der(&inner, 0x06, oid.data, oid.size);
    if (clst_buf_append(&inner, tlv, n) != CLST_OK) {
        fx_die("entry");
    }
    fx_der(b, 0x30, inner.data, inner.size);
    clst_buf_cleanup(&inner);
    clst_buf_cleanup(&oid);
}

static inline void
fx_der_uint(struct clst_buf *b, unsigned v)
{
    uint8_t bytes[3];
    size_t n = 0;
    if (v > 0x7FFF) {
        bytes[n++] = 0;
        bytes[n++] = (uint8_t)(v >> 8);
        bytes[n++] = (uint8_t)v;
    } else if (v > 0x7F) {
        if (v > 0xFF) {
            bytes[n++] = (uint8_t)(v >> 8);
        } else {
            bytes[n++] = 0;
        }
        bytes[n++] = (uint8_t)v;
    } else {
        bytes[n++] = (uint8_t)v;
    }
    fx_der(b, 0x02, bytes, n);
}

/* The SGX extension value for the given TCB (and the fixture's FMSPC, PCE-ID 0000). */
static inline void
fx_sgx_extension(const uint8_t svn[16], uint16_t pcesvn, const uint8_t fmspc[6],
                 struct clst_buf *out)
{
    struct clst_buf tcb, entries, tlv;
    clst_buf_init(&tcb, 4096);
    clst_buf_init(&entries, 8192);
    clst_buf_init(&tlv, 4096);
    static const uint8_t ppid[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    static const uint8_t pceid[2] = {0, 0};
    uint8_t arcs[2] = {0x02, 0};
    for (unsigned k = 1; k <= 18; k++) {
        clst_buf_reset(&tlv);
        arcs[1] = (uint8_t)k;
        if (k <= 16) {
            fx_der_uint(&tlv, svn[k - 1]);
        } else if (k == 17) {
            fx_der_uint(&tlv, pcesvn);
        } else {
            fx_der(&tlv, 0x04, svn, 16);
        }
        fx_der_entry(&tcb, arcs, 2, tlv.data, tlv.size);
    }
    uint8_t a = 0x01;
    clst_buf_reset(&tlv);
    fx_der(&tlv, 0x04, ppid, sizeof(ppid));
    fx_der_entry(&entries, &a, 1, tlv.data, tlv.size);
    a = 0x02;
    clst_buf_reset(&tlv);
    fx_der(&tlv, 0x30, tcb.data, tcb.size);
    fx_der_entry(&entries, &a, 1, tlv.data, tlv.size);
    a = 0x03;
    clst_buf_reset(&tlv);
    fx_der(&tlv, 0x04, pceid, 2);
    fx_der_entry(&entries, &a, 1, tlv.data, tlv.size);
    a = 0x04;
    clst_buf_reset(&tlv);
    fx_der(&tlv, 0x04, fmspc, 6);
    fx_der_entry(&entries, &a, 1, tlv.data, tlv.size);
    a = 0x05;
    clst_buf_reset(&tlv);
    uint8_t zero = 0;
    fx_der(&tlv, 0x0A, &zero, 1);
    fx_der_entry(&entries, &a, 1, tlv.data, tlv.size);
    fx_der(out, 0x30, entries.data, entries.size);
    clst_buf_cleanup(&tcb);
    clst_buf_cleanup(&entries);
    clst_buf_cleanup(&tlv);
}

/* ---- certificates and CRLs ------------------------------------------------------------------- */

static inline void
fx_add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_nconf_nid(NULL, &ctx, nid, value);
    if (ext == NULL || X509_add_ext(cert, ext, -1) != 1) {
        fx_die("extension");
    }
    X509_EXTENSION_free(ext);
}

static inline X509 *
fx_cert(EVP_PKEY *issuer_key, X509 *issuer, EVP_PKEY *subject_key, const char *cn, bool ca,
        const struct clst_buf *sgx_ext, long serial, int64_t not_before, int64_t not_after)
{
    X509 *c = X509_new();
    X509_NAME *name = X509_NAME_new();
    if (c == NULL || name == NULL || X509_set_version(c, 2) != 1 ||
        ASN1_INTEGER_set(X509_get_serialNumber(c), serial) != 1 ||
        X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"Cloister test",
                                   -1, -1, 0) != 1 ||
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1,
                                   0) != 1 ||
        X509_set_subject_name(c, name) != 1 ||
        X509_set_issuer_name(c, issuer != NULL ? X509_get_subject_name(issuer) : name) != 1 ||
        ASN1_TIME_set(X509_getm_notBefore(c), (time_t)not_before) == NULL ||
        ASN1_TIME_set(X509_getm_notAfter(c), (time_t)not_after) == NULL ||
        X509_set_pubkey(c, subject_key) != 1) {
        fx_die("certificate");
    }
    X509_NAME_free(name);
    X509 *iss = issuer != NULL ? issuer : c;
    fx_add_ext(c, iss, NID_basic_constraints, ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
    fx_add_ext(c, iss, NID_key_usage,
               ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature,nonRepudiation");
    if (sgx_ext != NULL) {
        ASN1_OBJECT *obj = OBJ_txt2obj("1.2.840.113741.1.13.1", 1);
        ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
        if (obj == NULL || os == NULL ||
            ASN1_OCTET_STRING_set(os, sgx_ext->data, (int)sgx_ext->size) != 1) {
            fx_die("sgx extension");
        }
        X509_EXTENSION *ext = X509_EXTENSION_create_by_OBJ(NULL, obj, 0, os);
        if (ext == NULL || X509_add_ext(c, ext, -1) != 1) {
            fx_die("sgx extension");
        }
        X509_EXTENSION_free(ext);
        ASN1_OCTET_STRING_free(os);
        ASN1_OBJECT_free(obj);
    }
    if (X509_sign(c, issuer_key, EVP_sha256()) <= 0) {
        fx_die("X509_sign");
    }
    return c;
}

/* A DER CRL of `issuer`, revoking `revoked` (0: none), valid [last, next]. */
static inline void
fx_crl(EVP_PKEY *key, X509 *issuer, long revoked, int64_t last, int64_t next,
       struct clst_buf *out)
{
    X509_CRL *crl = X509_CRL_new();
    ASN1_TIME *t1 = ASN1_TIME_set(NULL, (time_t)last), *t2 = ASN1_TIME_set(NULL, (time_t)next);
    if (crl == NULL || t1 == NULL || t2 == NULL || X509_CRL_set_version(crl, 1) != 1 ||
        X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer)) != 1 ||
        X509_CRL_set1_lastUpdate(crl, t1) != 1 || X509_CRL_set1_nextUpdate(crl, t2) != 1) {
        fx_die("crl");
    }
    if (revoked != 0) {
        X509_REVOKED *r = X509_REVOKED_new();
        ASN1_INTEGER *s = ASN1_INTEGER_new();
        if (r == NULL || s == NULL || ASN1_INTEGER_set(s, revoked) != 1 ||
            X509_REVOKED_set_serialNumber(r, s) != 1 ||
            X509_REVOKED_set_revocationDate(r, t1) != 1 || X509_CRL_add0_revoked(crl, r) != 1) {
            fx_die("revoked");
        }
        ASN1_INTEGER_free(s);
    }
    if (X509_CRL_sort(crl) != 1 || X509_CRL_sign(crl, key, EVP_sha256()) <= 0) {
        fx_die("crl sign");
    }
    unsigned char *der = NULL;
    int n = i2d_X509_CRL(crl, &der);
    clst_buf_init(out, 1 << 16);
    if (n <= 0 || clst_buf_append(out, der, (size_t)n) != CLST_OK) {
        fx_die("crl der");
    }
    OPENSSL_free(der);
    ASN1_TIME_free(t1);
    ASN1_TIME_free(t2);
    X509_CRL_free(crl);
}

static inline EVP_PKEY *
fx_key(void)
{
    EVP_PKEY *k = NULL;
    if (clst_ec_generate(CLST_CURVE_P256, &k) != CLST_OK) {
        fx_die("keygen");
    }
    return k;
}

/* Re-issues the PCK certificate (and the chain PEM) for another TCB, FMSPC or serial. */
static inline void
fx_reissue_pck(struct fx *f, const uint8_t svn[16], uint16_t pcesvn, const uint8_t fmspc[6],
               long serial)
{
    struct clst_buf ext;
    clst_buf_init(&ext, 8192);
    fx_sgx_extension(svn, pcesvn, fmspc, &ext);
    X509_free(f->pck);
    f->pck = fx_cert(f->ca_key, f->ca, f->pck_key, "Intel SGX PCK Certificate", false, &ext, serial,
                     FX_T0 - 365 * FX_DAY, FX_T0 + 365 * FX_DAY);
    clst_buf_cleanup(&ext);
    memcpy(f->pck_sgx_svn, svn, 16);
    f->pck_pcesvn = pcesvn;
    free(f->pck_chain);
    X509 *chain[3] = {f->pck, f->ca, f->root};
    f->pck_chain = fx_pem(chain, 3);
}

static inline struct fx *
fx_new(void)
{
    struct fx *f = calloc(1, sizeof(*f));
    if (f == NULL) {
        fx_die("calloc");
    }
    f->root_key = fx_key();
    f->ca_key = fx_key();
    f->pck_key = fx_key();
    f->tcb_key = fx_key();
    f->att_key = fx_key();
    f->root = fx_cert(f->root_key, NULL, f->root_key, FX_ROOT_CN, true, NULL, 1,
                      FX_T0 - 3650 * FX_DAY, FX_T0 + 3650 * FX_DAY);
    f->ca = fx_cert(f->root_key, f->root, f->ca_key, "Intel SGX PCK Platform CA", true, NULL, 2,
                    FX_T0 - 3650 * FX_DAY, FX_T0 + 3650 * FX_DAY);
    f->tcb = fx_cert(f->root_key, f->root, f->tcb_key, "Intel SGX TCB Signing", false, NULL, 3,
                     FX_T0 - 365 * FX_DAY, FX_T0 + 365 * FX_DAY);
    static const uint8_t svn[16] = {7, 7, 2, 2, 3, 1, 0, 3};
    fx_reissue_pck(f, svn, 11, fx_fmspc, 100);
    X509 *tchain[2] = {f->tcb, f->root};
    f->tcb_chain = fx_pem(tchain, 2);
    fx_crl(f->ca_key, f->ca, 0, FX_T0 - FX_DAY, FX_T0 + 30 * FX_DAY, &f->ca_crl);
    fx_crl(f->root_key, f->root, 0, FX_T0 - FX_DAY, FX_T0 + 30 * FX_DAY, &f->root_crl);
    f->roots = sk_X509_new_null();
    if (f->roots == NULL || X509_up_ref(f->root) != 1 || sk_X509_push(f->roots, f->root) <= 0) {
        fx_die("roots");
    }
    return f;
}

static inline void
fx_free(struct fx *f)
{
    if (f == NULL) {
        return;
    }
    EVP_PKEY_free(f->root_key);
    EVP_PKEY_free(f->ca_key);
    EVP_PKEY_free(f->pck_key);
    EVP_PKEY_free(f->tcb_key);
    EVP_PKEY_free(f->att_key);
    X509_free(f->root);
    X509_free(f->ca);
    X509_free(f->pck);
    X509_free(f->tcb);
    sk_X509_pop_free(f->roots, X509_free);
    free(f->pck_chain);
    free(f->tcb_chain);
    clst_buf_cleanup(&f->ca_crl);
    clst_buf_cleanup(&f->root_crl);
    free(f);
}

/* ---- signed collateral JSON ------------------------------------------------------------------- */

/* {"<member>":<body>,"signature":"<hex>"} signed with `key`. */
static inline void
fx_signed_json(EVP_PKEY *key, const char *member, const char *body, struct clst_buf *out)
{
    uint8_t sig[64];
    char hex[129];
    fx_sign_raw(key, body, strlen(body), sig);
    clst_hex_to_str(sig, sizeof(sig), hex, sizeof(hex));
    clst_buf_init(out, 1 << 20);
    fx_buf_printf(out, "{\"%s\":%s,\"signature\":\"%s\"}", member, body, hex);
}

/* The default TDX levels: UpToDate at the fixture PCK's TCB, OutOfDate below. */
#define FX_TDX_LEVELS                                                                              \
    "[{\"tcb\":{\"sgxtcbcomponents\":" FX_COMPS(7, 7, 2, 2, 3, 1, 0, 3) ",\"pcesvn\":11,"          \
    "\"tdxtcbcomponents\":" FX_COMPS(5, 0, 7, 0, 0, 0, 0, 0) "},"                                  \
    "\"tcbDate\":\"2024-03-13T00:00:00Z\",\"tcbStatus\":\"UpToDate\"},"                            \
    "{\"tcb\":{\"sgxtcbcomponents\":" FX_COMPS(6, 6, 2, 2, 3, 1, 0, 3) ",\"pcesvn\":11,"           \
    "\"tdxtcbcomponents\":" FX_COMPS(3, 0, 6, 0, 0, 0, 0, 0) "},"                                  \
    "\"tcbDate\":\"2023-08-09T00:00:00Z\",\"tcbStatus\":\"OutOfDate\","                            \
    "\"advisoryIDs\":[\"INTEL-SA-00960\",\"INTEL-SA-00982\"]}]"
#define FX_COMPS(a, b, c, d, e, f, g, h)                                                           \
    "[{\"svn\":" #a "},{\"svn\":" #b "},{\"svn\":" #c "},{\"svn\":" #d "},{\"svn\":" #e            \
    "},{\"svn\":" #f "},{\"svn\":" #g "},{\"svn\":" #h "},{\"svn\":0},{\"svn\":0},{\"svn\":0},"    \
    "{\"svn\":0},{\"svn\":0},{\"svn\":0},{\"svn\":0},{\"svn\":0}]"
#define FX_SGX_LEVELS                                                                              \
    "[{\"tcb\":{\"sgxtcbcomponents\":" FX_COMPS(7, 7, 2, 2, 3, 1, 0, 3) ",\"pcesvn\":11},"         \
    "\"tcbDate\":\"2024-03-13T00:00:00Z\",\"tcbStatus\":\"UpToDate\"},"                            \
    "{\"tcb\":{\"sgxtcbcomponents\":" FX_COMPS(6, 6, 2, 2, 3, 1, 0, 3) ",\"pcesvn\":11},"          \
    "\"tcbDate\":\"2023-08-09T00:00:00Z\",\"tcbStatus\":\"OutOfDate\"}]"
#define FX_MODULES                                                                                 \
    "[{\"id\":\"TDX_01\",\"mrsigner\":\"" FX_ZERO48 "\",\"attributes\":\"0000000000000000\","      \
    "\"attributesMask\":\"FFFFFFFFFFFFFFFF\",\"tcbLevels\":["                                      \
    "{\"tcb\":{\"isvsvn\":4},\"tcbDate\":\"2024-03-13T00:00:00Z\",\"tcbStatus\":\"UpToDate\"},"    \
    "{\"tcb\":{\"isvsvn\":2},\"tcbDate\":\"2023-08-09T00:00:00Z\",\"tcbStatus\":\"OutOfDate\","    \
    "\"advisoryIDs\":[\"INTEL-SA-01036\"]}]}]"
#define FX_ZERO48                                                                                  \
    "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"   \
    "000000"
#define FX_QE_LEVELS                                                                               \
    "[{\"tcb\":{\"isvsvn\":4},\"tcbDate\":\"2024-03-13T00:00:00Z\",\"tcbStatus\":\"UpToDate\"},"   \
    "{\"tcb\":{\"isvsvn\":2},\"tcbDate\":\"2023-08-09T00:00:00Z\",\"tcbStatus\":\"OutOfDate\"}]"

/* tcbInfo: id "TDX" or "SGX" (version 3), the given levels and (TDX) module identities. */
static inline void
fx_tcb_info(const struct fx *f, const char *id, const char *fmspc_hex, const char *levels,
            const char *modules, int64_t issue, int64_t next, struct clst_buf *out)
{
    char d1[32], d2[32];
    struct clst_buf body;
    clst_time_format(issue, d1, sizeof(d1));
    clst_time_format(next, d2, sizeof(d2));
    clst_buf_init(&body, 1 << 20);
    fx_buf_printf(&body,
                  "{\"id\":\"%s\",\"version\":3,\"issueDate\":\"%s\",\"nextUpdate\":\"%s\","
                  "\"fmspc\":\"%s\",\"pceId\":\"0000\",\"tcbType\":0,"
                  "\"tcbEvaluationDataNumber\":17,",
                  id, d1, d2, fmspc_hex);
    if (strcmp(id, "TDX") == 0) {
        fx_buf_printf(&body,
                      "\"tdxModule\":{\"mrsigner\":\"%s\",\"attributes\":\"0000000000000000\","
                      "\"attributesMask\":\"FFFFFFFFFFFFFFFF\"},",
                      FX_ZERO48);
        if (modules != NULL) {
            fx_buf_printf(&body, "\"tdxModuleIdentities\":%s,", modules);
        }
    }
    fx_buf_printf(&body, "\"tcbLevels\":%s}", levels);
    clst_buf_terminate(&body);
    fx_signed_json(f->tcb_key, "tcbInfo", (const char *)body.data, out);
    clst_buf_cleanup(&body);
}

/* QE identity: id "TD_QE" (isvprodid 2) or "QE" (isvprodid 1). */
static inline void
fx_qe_identity(const struct fx *f, const char *id, const char *levels, int64_t issue, int64_t next,
               struct clst_buf *out)
{
    char d1[32], d2[32], mrsigner[65];
    struct clst_buf body;
    clst_time_format(issue, d1, sizeof(d1));
    clst_time_format(next, d2, sizeof(d2));
    clst_hex_to_str(fx_qe_mrsigner, 32, mrsigner, sizeof(mrsigner));
    clst_buf_init(&body, 1 << 20);
    fx_buf_printf(&body,
                  "{\"id\":\"%s\",\"version\":2,\"issueDate\":\"%s\",\"nextUpdate\":\"%s\","
                  "\"tcbEvaluationDataNumber\":17,\"miscselect\":\"00000000\","
                  "\"miscselectMask\":\"FFFFFFFF\","
                  "\"attributes\":\"11000000000000000000000000000000\","
                  "\"attributesMask\":\"FBFFFFFFFFFFFFFF0000000000000000\","
                  "\"mrsigner\":\"%s\",\"isvprodid\":%d,\"tcbLevels\":%s}",
                  id, d1, d2, mrsigner, strcmp(id, "TD_QE") == 0 ? 2 : 1, levels);
    clst_buf_terminate(&body);
    fx_signed_json(f->tcb_key, "enclaveIdentity", (const char *)body.data, out);
    clst_buf_cleanup(&body);
}

/* The collateral bundle with the fixture's chain and CRLs. */
static inline void
fx_bundle(const struct fx *f, const struct clst_buf *tcb_info, const struct clst_buf *qe_identity,
          struct clst_buf *out)
{
    struct dcap_collateral c;
    memset(&c, 0, sizeof(c));
    c.item[DCAP_COLL_TCB_INFO - 1] = tcb_info->data;
    c.item_size[DCAP_COLL_TCB_INFO - 1] = tcb_info->size;
    c.item[DCAP_COLL_QE_IDENTITY - 1] = qe_identity->data;
    c.item_size[DCAP_COLL_QE_IDENTITY - 1] = qe_identity->size;
    c.item[DCAP_COLL_TCB_CHAIN - 1] = (const uint8_t *)f->tcb_chain;
    c.item_size[DCAP_COLL_TCB_CHAIN - 1] = strlen(f->tcb_chain);
    c.item[DCAP_COLL_PCK_CRL - 1] = f->ca_crl.data;
    c.item_size[DCAP_COLL_PCK_CRL - 1] = f->ca_crl.size;
    c.item[DCAP_COLL_ROOT_CRL - 1] = f->root_crl.data;
    c.item_size[DCAP_COLL_ROOT_CRL - 1] = f->root_crl.size;
    clst_buf_init(out, DCAP_COLL_MAX_SIZE);
    if (dcap_collateral_encode(&c, out) != CLST_OK) {
        fx_die("bundle");
    }
}

/* ---- quotes ------------------------------------------------------------------------------------ */

struct fx_quote {
    uint16_t version;            /* 3, 4 or 5 */
    enum dcap_body_type body;    /* SGX, TD10, TD15 */
    struct dcap_td_report td;
    struct dcap_sgx_report sgx;
    struct dcap_sgx_report qe;   /* report_data is computed unless bad_binding */
    uint8_t auth[32];
    bool bad_binding;            /* QE report data not bound to the attestation key */
    EVP_PKEY *qe_signer;         /* NULL: the PCK key */
    const char *pck_chain;       /* NULL: the fixture's chain */
};

/* Sensible defaults: a production TD (or enclave) on the fixture platform. */
static inline void
fx_quote_init(struct fx_quote *q, uint16_t version, enum dcap_body_type body)
{
    memset(q, 0, sizeof(*q));
    q->version = version;
    q->body = body;
    static const uint8_t svn[16] = {4, 1, 7};
    memcpy(q->td.tee_tcb_svn, svn, 16);
    memset(q->td.mrseam, 0xAB, 48);
    q->td.td_attributes[3] = 0x10; /* SEPT_VE_DISABLE */
    q->td.xfam[0] = 0xe7;
    memset(q->td.mrtd, 0x5A, 48);
    for (int i = 0; i < 4; i++) {
        memset(q->td.rtmr[i], 0x10 + i, 48);
    }
    memset(q->td.report_data, 0x77, 64);
    memset(q->td.tee_tcb_svn2, 0x02, 16);
    memset(q->td.mrservicetd, 0x33, 48);
    q->sgx.cpusvn[0] = 7;
    q->sgx.attributes[0] = 0x05; /* INIT | MODE64 */
    q->sgx.attributes[8] = 0xe7;
    memset(q->sgx.mrenclave, 0xE1, 32);
    memset(q->sgx.mrsigner, 0x51, 32);
    q->sgx.isvprodid = 3;
    q->sgx.isvsvn = 2;
    memset(q->sgx.report_data, 0x77, 64);
    q->qe.attributes[0] = 0x15;
    q->qe.attributes[8] = 0xe7;
    memcpy(q->qe.mrsigner, fx_qe_mrsigner, 32);
    q->qe.isvprodid = version == 3 ? 1 : 2;
    q->qe.isvsvn = 6;
    memset(q->auth, 0xA5, sizeof(q->auth));
}

static inline void
fx_put16(struct clst_buf *b, uint16_t v)
{
    uint8_t x[2];
    clst_put_le16(x, v);
    clst_buf_append(b, x, 2);
}

static inline void
fx_put32(struct clst_buf *b, uint32_t v)
{
    uint8_t x[4];
    clst_put_le32(x, v);
    clst_buf_append(b, x, 4);
}

/* Builds and signs a quote (appended to out, initialized here). */
static inline void
fx_quote_build(const struct fx *f, const struct fx_quote *p, struct clst_buf *out)
{
    static const uint8_t vendor[16] = {0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9,
                                       0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07};
    struct clst_buf point, qetail;
    uint8_t body[DCAP_TD15_BODY_SIZE], qe_raw[DCAP_SGX_REPORT_SIZE], sig[64], qe_sig[64];
    uint8_t att[64];
    size_t body_size;
    struct dcap_sgx_report qe = p->qe;
    const char *chain = p->pck_chain != NULL ? p->pck_chain : f->pck_chain;

    clst_buf_init(out, 1 << 16);
    clst_buf_init(&point, 128);
    clst_buf_init(&qetail, 1 << 16);
    if (clst_ec_point_encode(f->att_key, &point) != CLST_OK || point.size != 65) {
        fx_die("point");
    }
    memcpy(att, point.data + 1, 64);

    /* header */
    fx_put16(out, p->version);
    fx_put16(out, 2);
    fx_put32(out, p->body == DCAP_BODY_SGX ? 0 : 0x81);
    fx_put16(out, p->version == 3 ? 9 : 0);
    fx_put16(out, p->version == 3 ? 13 : 0);
    clst_buf_append(out, vendor, 16);
    uint8_t user[20] = {0};
    clst_buf_append(out, user, 20);
    if (p->body == DCAP_BODY_SGX) {
        dcap_sgx_report_encode(&p->sgx, body);
        body_size = DCAP_SGX_REPORT_SIZE;
    } else {
        dcap_td_report_encode(&p->td, p->body, body);
        body_size = p->body == DCAP_BODY_TD15 ? DCAP_TD15_BODY_SIZE : DCAP_TD10_BODY_SIZE;
    }
    if (p->version == 5) {
        fx_put16(out, (uint16_t)p->body);
        fx_put32(out, (uint32_t)body_size);
    }
    clst_buf_append(out, body, body_size);
    fx_sign_raw(f->att_key, out->data, out->size, sig);

    /* QE report bound to the attestation key and auth data */
    struct clst_hash_ctx hc = {0};
    memset(qe.report_data, 0, 64);
    if (clst_hash_init(&hc, CLST_HASH_SHA256) != CLST_OK ||
        clst_hash_update(&hc, att, 64) != CLST_OK ||
        clst_hash_update(&hc, p->auth, sizeof(p->auth)) != CLST_OK ||
        clst_hash_final(&hc, qe.report_data) != CLST_OK) {
        fx_die("hash");
    }
    if (p->bad_binding) {
        qe.report_data[0] ^= 1;
    }
    dcap_sgx_report_encode(&qe, qe_raw);
    fx_sign_raw(p->qe_signer != NULL ? p->qe_signer : f->pck_key, qe_raw, sizeof(qe_raw), qe_sig);

    clst_buf_append(&qetail, qe_raw, sizeof(qe_raw));
    clst_buf_append(&qetail, qe_sig, 64);
    fx_put16(&qetail, (uint16_t)sizeof(p->auth));
    clst_buf_append(&qetail, p->auth, sizeof(p->auth));
    fx_put16(&qetail, 5);
    fx_put32(&qetail, (uint32_t)strlen(chain));
    clst_buf_append(&qetail, chain, strlen(chain));

    size_t sig_size = (size_t)128 + (p->version == 3 ? (size_t)0 : (size_t)6) + qetail.size;
    fx_put32(out, (uint32_t)sig_size);
    clst_buf_append(out, sig, 64);
    clst_buf_append(out, att, 64);
    if (p->version != 3) {
        fx_put16(out, 6);
        fx_put32(out, (uint32_t)qetail.size);
    }
    clst_buf_append(out, qetail.data, qetail.size);
    clst_buf_cleanup(&point);
    clst_buf_cleanup(&qetail);
}

/* Everything needed to run clst_evidence_verify on synthetic evidence. */
struct fx_case {
    struct clst_buf quote, tcb_info, qe_identity, bundle;
    struct clst_evidence_input in;
};

/* A complete TDX (tdx = true) or SGX case with default collateral; in.at = FX_T0. */
static inline void
fx_case_make(const struct fx *f, const struct fx_quote *q, struct fx_case *c)
{
    bool tdx = q->body != DCAP_BODY_SGX;
    memset(c, 0, sizeof(*c));
    fx_quote_build(f, q, &c->quote);
    fx_tcb_info(f, tdx ? "TDX" : "SGX", "00906ED50000", tdx ? FX_TDX_LEVELS : FX_SGX_LEVELS,
                tdx ? FX_MODULES : NULL, FX_T0 - FX_DAY, FX_T0 + 30 * FX_DAY, &c->tcb_info);
    fx_qe_identity(f, tdx ? "TD_QE" : "QE", FX_QE_LEVELS, FX_T0 - FX_DAY, FX_T0 + 30 * FX_DAY,
                   &c->qe_identity);
    fx_bundle(f, &c->tcb_info, &c->qe_identity, &c->bundle);
    c->in.evidence = c->quote.data;
    c->in.evidence_size = c->quote.size;
    c->in.endorsements = c->bundle.data;
    c->in.endorsements_size = c->bundle.size;
    c->in.roots = f->roots;
    c->in.at = FX_T0;
}

/* Rebuilds the bundle after tcb_info / qe_identity were replaced. */
static inline void
fx_case_rebundle(const struct fx *f, struct fx_case *c)
{
    clst_buf_cleanup(&c->bundle);
    fx_bundle(f, &c->tcb_info, &c->qe_identity, &c->bundle);
    c->in.endorsements = c->bundle.data;
    c->in.endorsements_size = c->bundle.size;
}

static inline void
fx_case_cleanup(struct fx_case *c)
{
    clst_buf_cleanup(&c->quote);
    clst_buf_cleanup(&c->tcb_info);
    clst_buf_cleanup(&c->qe_identity);
    clst_buf_cleanup(&c->bundle);
}

/* ---- real vectors ------------------------------------------------------------------------------ */

/* Reads tests/vectors/<rel> (NUL-terminated copy) or fails loudly. */
static inline unsigned char *
fx_vector(const char *rel, size_t *size)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", CLST_VECTORS_DIR, rel);
    unsigned char *d = tu_read_file(path, size);
    if (d == NULL) {
        fprintf(stderr, "missing vector %s\n", path);
        abort();
    }
    return d;
}

/* A bundle from five vector files. */
static inline void
fx_vector_bundle(const char *tcb_info, const char *qe_identity, const char *tcb_chain,
                 const char *pck_crl, const char *root_crl, struct clst_buf *out)
{
    const char *files[DCAP_COLL_ITEM_COUNT] = {tcb_info, qe_identity, tcb_chain, pck_crl, root_crl};
    unsigned char *data[DCAP_COLL_ITEM_COUNT];
    struct dcap_collateral c;
    memset(&c, 0, sizeof(c));
    for (size_t i = 0; i < DCAP_COLL_ITEM_COUNT; i++) {
        data[i] = fx_vector(files[i], &c.item_size[i]);
        c.item[i] = data[i];
    }
    clst_buf_init(out, DCAP_COLL_MAX_SIZE);
    if (dcap_collateral_encode(&c, out) != CLST_OK) {
        fx_die("vector bundle");
    }
    for (size_t i = 0; i < DCAP_COLL_ITEM_COUNT; i++) {
        free(data[i]);
    }
}

#endif
