/*
 * Intel DCAP verification, shared by the tdx and sgx kinds (docs/evidence-dcap.md). Given a
 * parsed quote, the original bytes, the collateral bundle and the caller's roots and time, in
 * this order:
 *
 *   1. the collateral bundle parses; the CRLs parse;
 *   2. the PCK chain from the quote (leaf, intermediate; a root inside the quote is never used)
 *      verifies to the caller's roots at the caller's time with the PCK CA and Root CA CRLs; the
 *      leaf is an "Intel SGX PCK Certificate" with a P-256 key and the SGX extension;
 *   3. the QE report signature verifies with the PCK key;
 *   4. QE REPORTDATA = SHA-256(attestation key || QE auth data) || 32 zero bytes;
 *   5. the quote signature verifies with the attestation key over the header and body;
 *   6. the TCB Signing chain verifies (to the caller's roots, Root CA CRL, "Intel SGX TCB
 *      Signing", issued by the root itself, without the SGX extension);
 *   7. tcbInfo and QE identity signatures verify over their raw member bytes, then they parse,
 *      their id and version fit the quote, the time is inside [issueDate, nextUpdate], and
 *      FMSPC / PCE-ID equal the PCK's;
 *   8. the QE report matches the QE identity (mrsigner, isvprodid, masked miscselect and
 *      attributes) and its isvsvn selects a QE TCB level;
 *   9. the platform TCB level (first level the PCK SVNs, PCESVN and, for TDX, TEE_TCB_SVN meet);
 *      for TDX the module (tdxModule, and "TDX_<major>" of tdxModuleIdentities when the major SVN
 *      is not 0); the statuses converge as in Intel's QVL;
 *  10. the converged status must be allowed by the policy (default UpToDate only; never Revoked).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "evidence/dcap_int.h"

#define PCK_LEAF_CN    "Intel SGX PCK Certificate"
#define TCB_SIGNING_CN "Intel SGX TCB Signing"

/* 1.2.840.113741.1.13.1, the SGX extension, in DER (without tag and length). */
static const uint8_t sgx_ext_oid[] = {0x2A, 0x86, 0x48, 0x86, 0xF8, 0x4D, 0x01, 0x0D, 0x01};

/* ---- the PCK certificate's SGX extension ---------------------------------------------------- */

#define DER_INTEGER    0x02
#define DER_OCTET      0x04
#define DER_OID        0x06
#define DER_ENUMERATED 0x0A
#define DER_SEQUENCE   0x30

/* Reads one DER TLV (single-byte tag, definite length of at most 3 length bytes). */
static bool
der_next(struct clst_cursor *c, uint8_t *tag, struct clst_cursor *value)
{
    uint8_t t = 0, l0 = 0;
    size_t len = 0;
    if (!clst_cursor_u8(c, &t) || (t & 0x1F) == 0x1F || !clst_cursor_u8(c, &l0)) {
        return false;
    }
    if (l0 < 0x80) {
        len = l0;
    } else {
        size_t nbytes = l0 & 0x7F;
        if (nbytes == 0 || nbytes > 3) {
            return false;
        }
        for (size_t i = 0; i < nbytes; i++) {
            uint8_t b = 0;
            if (!clst_cursor_u8(c, &b) || (i == 0 && b == 0)) {
                return false;
            }
            len = len << 8 | b;
        }
        if (len < 0x80) {
            return false; /* not minimal */
        }
    }
    *tag = t;
    return clst_cursor_sub(c, len, value);
}

/* A non-negative DER INTEGER of at most 3 value bytes (leading zero only before a high bit). */
static bool
der_uint(struct clst_cursor *v, uint32_t max, uint32_t *out)
{
    uint32_t x = 0;
    size_t n = v->left;
    if (n == 0 || n > 3 || (v->ptr[0] & 0x80) != 0 ||
        (n > 1 && v->ptr[0] == 0 && (v->ptr[1] & 0x80) == 0)) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        x = x << 8 | v->ptr[i];
    }
    if (x > max) {
        return false;
    }
    *out = x;
    return true;
}

/* True when oid is the SGX extension OID followed by exactly the arcs in `suffix`. */
static bool
oid_is(const struct clst_cursor *oid, const uint8_t *suffix, size_t suffix_size)
{
    return oid->left == sizeof(sgx_ext_oid) + suffix_size &&
           memcmp(oid->ptr, sgx_ext_oid, sizeof(sgx_ext_oid)) == 0 &&
           memcmp(oid->ptr + sizeof(sgx_ext_oid), suffix, suffix_size) == 0;
}

static enum clst_status
ext_bad(struct clst_err *err, const char *what)
{
    return clst_err_set(err, CLST_E_MALFORMED, "PCK certificate SGX extension: %s", what);
}

static enum clst_status
parse_tcb_seq(struct clst_cursor *seq, struct dcap_pck_info *out, struct clst_err *err)
{
    uint32_t seen = 0; /* bits 1..18 */
    while (!clst_cursor_empty(seq)) {
        uint8_t tag = 0;
        struct clst_cursor item, oid, val;
        if (!der_next(seq, &tag, &item) || tag != DER_SEQUENCE || !der_next(&item, &tag, &oid) ||
            tag != DER_OID || !der_next(&item, &tag, &val) || !clst_cursor_empty(&item)) {
            return ext_bad(err, "a TCB component is not SEQUENCE { OID, value }");
        }
        if (oid.left != sizeof(sgx_ext_oid) + 2 ||
            memcmp(oid.ptr, sgx_ext_oid, sizeof(sgx_ext_oid)) != 0 ||
            oid.ptr[sizeof(sgx_ext_oid)] != 0x02) {
            return ext_bad(err, "a TCB component has an OID outside 1.2.840.113741.1.13.1.2");
        }
        uint8_t k = oid.ptr[sizeof(sgx_ext_oid) + 1];
        if (k < 1 || k > 18) {
            continue; /* a component this verifier does not know: ignored */
        }
        if ((seen & (1u << k)) != 0) {
            return ext_bad(err, "a TCB component appears twice");
        }
        seen |= 1u << k;
        uint32_t x = 0;
        if (k <= 16) {
            if (tag != DER_INTEGER || !der_uint(&val, 255, &x)) {
                return ext_bad(err, "an SGX TCB component SVN is not an INTEGER in 0..255");
            }
            out->sgx_svn[k - 1] = (uint8_t)x;
        } else if (k == 17) {
            if (tag != DER_INTEGER || !der_uint(&val, 65535, &x)) {
                return ext_bad(err, "PCESVN is not an INTEGER in 0..65535");
            }
            out->pcesvn = (uint16_t)x;
        } else {
            if (tag != DER_OCTET || val.left != sizeof(out->cpusvn)) {
                return ext_bad(err, "CPUSVN is not a 16-byte OCTET STRING");
            }
            memcpy(out->cpusvn, val.ptr, sizeof(out->cpusvn));
        }
    }
    if (seen != 0x7FFFEu) {
        return ext_bad(err, "the TCB sequence lacks some of its 18 components");
    }
    return CLST_OK;
}

enum clst_status
dcap_pck_extension_parse(const uint8_t *der, size_t size, struct dcap_pck_info *out,
                         struct clst_err *err)
{
    struct dcap_pck_info info;
    struct clst_cursor c = clst_cursor_make(der, size), seq;
    uint8_t tag = 0;
    bool have_tcb = false, have_pceid = false, have_fmspc = false;
    enum clst_status rc;

    if (der == NULL || out == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "PCK extension: no input or output");
    }
    memset(&info, 0, sizeof(info));
    if (!der_next(&c, &tag, &seq) || tag != DER_SEQUENCE || !clst_cursor_empty(&c)) {
        return ext_bad(err, "not one DER SEQUENCE");
    }
    while (!clst_cursor_empty(&seq)) {
        struct clst_cursor item, oid, val;
        if (!der_next(&seq, &tag, &item) || tag != DER_SEQUENCE || !der_next(&item, &tag, &oid) ||
            tag != DER_OID || !der_next(&item, &tag, &val) || !clst_cursor_empty(&item)) {
            return ext_bad(err, "an entry is not SEQUENCE { OID, value }");
        }
        static const uint8_t tcb[] = {0x02}, pceid[] = {0x03}, fmspc[] = {0x04};
        if (oid_is(&oid, tcb, 1)) {
            if (have_tcb || tag != DER_SEQUENCE) {
                return ext_bad(err, "the TCB entry is repeated or not a SEQUENCE");
            }
            if ((rc = parse_tcb_seq(&val, &info, err)) != CLST_OK) {
                return rc;
            }
            have_tcb = true;
        } else if (oid_is(&oid, pceid, 1)) {
            if (have_pceid || tag != DER_OCTET || val.left != sizeof(info.pceid)) {
                return ext_bad(err, "PCE-ID is repeated or not a 2-byte OCTET STRING");
            }
            memcpy(info.pceid, val.ptr, sizeof(info.pceid));
            have_pceid = true;
        } else if (oid_is(&oid, fmspc, 1)) {
            if (have_fmspc || tag != DER_OCTET || val.left != sizeof(info.fmspc)) {
                return ext_bad(err, "FMSPC is repeated or not a 6-byte OCTET STRING");
            }
            memcpy(info.fmspc, val.ptr, sizeof(info.fmspc));
            have_fmspc = true;
        }
        /* PPID (.1), SGX type (.5), platform instance (.6), configuration (.7): not used. */
    }
    if (!have_tcb || !have_pceid || !have_fmspc) {
        return ext_bad(err, "TCB, PCE-ID or FMSPC is missing");
    }
    *out = info;
    return CLST_OK;
}

/* ---- TCB levels and statuses ----------------------------------------------------------------- */

enum clst_status
dcap_tcb_level_match(const struct dcap_tcb_info *info, const struct dcap_pck_info *pck,
                     const uint8_t *tee_tcb_svn, size_t *out_index, struct clst_err *err)
{
    /* Intel QVL (TcbLevelCheck): the first level, in the order given, that the platform meets.
     * For TDX, TEE_TCB_SVN[0..1] are the module's SVN and major version and are compared only
     * when the major version is 0 (otherwise the module identity rules them). */
    size_t tdx_start = (tee_tcb_svn != NULL && tee_tcb_svn[1] > 0) ? 2 : 0;
    for (size_t i = 0; i < info->level_count; i++) {
        const struct dcap_tcb_level *lv = &info->level[i];
        bool ok = pck->pcesvn >= lv->pcesvn;
        for (size_t k = 0; ok && k < 16; k++) {
            ok = pck->sgx_svn[k] >= lv->sgx_svn[k];
        }
        for (size_t k = tdx_start; ok && tee_tcb_svn != NULL && k < 16; k++) {
            ok = tee_tcb_svn[k] >= lv->tdx_svn[k];
        }
        if (ok) {
            *out_index = i;
            return CLST_OK;
        }
    }
    return clst_err_set(err, CLST_E_VERIFY,
                        "the platform's TCB (PCK SVNs, PCESVN%s) is below every TCB level of the "
                        "tcbInfo: Intel does not support this platform's TCB any more (TCB "
                        "recovery); update the platform's firmware",
                        tee_tcb_svn != NULL ? ", TEE_TCB_SVN" : "");
}

enum dcap_tcb_status
dcap_tcb_status_converge(enum dcap_tcb_status platform, enum dcap_tcb_status other)
{
    switch (other) {
    case DCAP_TCB_REVOKED:
        return DCAP_TCB_REVOKED;
    case DCAP_TCB_OUT_OF_DATE:
    case DCAP_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED:
        switch (platform) {
        case DCAP_TCB_UP_TO_DATE:
        case DCAP_TCB_SW_HARDENING_NEEDED:
            return DCAP_TCB_OUT_OF_DATE;
        case DCAP_TCB_CONFIGURATION_NEEDED:
        case DCAP_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED:
            return DCAP_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED;
        case DCAP_TCB_OUT_OF_DATE:
        case DCAP_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED:
        case DCAP_TCB_REVOKED:
            return platform;
        }
        return platform;
    case DCAP_TCB_UP_TO_DATE:
    case DCAP_TCB_SW_HARDENING_NEEDED:
    case DCAP_TCB_CONFIGURATION_NEEDED:
    case DCAP_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED:
        break;
    }
    return platform;
}

enum clst_status
dcap_tcb_policy_parse(const char *list, unsigned *out_mask, struct clst_err *err)
{
    unsigned mask = 0;
    if (out_mask == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "TCB policy: no output");
    }
    if (list == NULL || list[0] == '\0') {
        *out_mask = 1u << DCAP_TCB_UP_TO_DATE;
        return CLST_OK;
    }
    const char *p = list;
    for (;;) {
        const char *end = strchr(p, ',');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        enum dcap_tcb_status s;
        if (dcap_tcb_status_parse(p, len, &s) != CLST_OK) {
            return clst_err_set(err, CLST_E_INVAL,
                                "TCB policy: '%.*s' is not a TCB status (UpToDate, "
                                "SWHardeningNeeded, ConfigurationNeeded, "
                                "ConfigurationAndSWHardeningNeeded, OutOfDate, "
                                "OutOfDateConfigurationNeeded)",
                                (int)(len > 40 ? 40 : len), p);
        }
        if (s == DCAP_TCB_REVOKED) {
            return clst_err_set(err, CLST_E_INVAL,
                                "TCB policy: Revoked can never be accepted (the platform's keys "
                                "are compromised)");
        }
        mask |= 1u << s;
        if (end == NULL) {
            break;
        }
        p = end + 1;
    }
    *out_mask = mask;
    return CLST_OK;
}

/* ---- helpers --------------------------------------------------------------------------------- */

static bool
cert_cn_is(X509 *cert, const char *cn)
{
    const X509_NAME *name = X509_get_subject_name(cert);
    int idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    if (idx < 0 || X509_NAME_get_index_by_NID(name, NID_commonName, idx) >= 0) {
        return false;
    }
    const ASN1_STRING *s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
    size_t len = strlen(cn);
    return s != NULL && (size_t)ASN1_STRING_length(s) == len &&
           memcmp(ASN1_STRING_get0_data(s), cn, len) == 0;
}

/* The SGX extension's DER value, or NULL when the certificate has none. */
static const ASN1_OCTET_STRING *
sgx_extension(X509 *cert)
{
    ASN1_OBJECT *obj = OBJ_txt2obj("1.2.840.113741.1.13.1", 1);
    int idx = obj != NULL ? X509_get_ext_by_OBJ(cert, obj, -1) : -1;
    ASN1_OBJECT_free(obj);
    if (idx < 0) {
        return NULL;
    }
    return X509_EXTENSION_get_data(X509_get_ext(cert, idx));
}

static bool
self_signed(X509 *cert)
{
    return (X509_get_extension_flags(cert) & EXFLAG_SS) != 0;
}

static enum clst_status
sig_result(enum clst_status rc)
{
    return rc == CLST_E_NOMEM || rc == CLST_E_INTERNAL ? rc : CLST_E_VERIFY;
}

/*
 * Verifies a PEM chain (leaf first) to in->roots with `crls`: only the leaf and the certificates
 * that are not self-signed are used; a root inside the chain is never trusted. On success
 * *out_leaf holds a reference to the leaf and *out_depth the verified chain's length.
 */
/* True when pem is exactly the PEM encoding of certs (as Intel's quoting library writes it),
 * followed by nothing but NUL bytes: the chain inside a quote has one encoding only. */
static bool
canonical_pem(STACK_OF(X509) * certs, const uint8_t *pem, size_t pem_size)
{
    BIO *bio = BIO_new(BIO_s_mem());
    bool ok = bio != NULL;
    for (int i = 0; ok && i < sk_X509_num(certs); i++) {
        ok = PEM_write_bio_X509(bio, sk_X509_value(certs, i)) == 1;
    }
    char *enc = NULL;
    long enc_size = ok ? BIO_get_mem_data(bio, &enc) : 0;
    ok = ok && enc_size > 0 && (size_t)enc_size <= pem_size &&
         memcmp(enc, pem, (size_t)enc_size) == 0;
    for (size_t i = ok ? (size_t)enc_size : pem_size; i < pem_size; i++) {
        ok = pem[i] == 0;
    }
    BIO_free(bio);
    return ok;
}

static enum clst_status
verify_pem_chain(const uint8_t *pem, size_t pem_size, const char *what, bool canonical,
                 const struct clst_evidence_input *in, STACK_OF(X509_CRL) * crls, X509 **out_leaf,
                 int *out_depth, struct clst_err *err)
{
    enum clst_status rc = CLST_E_VERIFY;
    STACK_OF(X509) *certs = NULL, *untrusted = NULL, *chain = NULL;
    X509 *leaf = NULL;

    rc = clst_x509_stack_from_pem(pem, pem_size, &certs, err);
    if (rc != CLST_OK) {
        clst_err_prefix(err, "%s", what);
        goto out;
    }
    if (canonical && !canonical_pem(certs, pem, pem_size)) {
        rc = clst_err_set(err, CLST_E_MALFORMED,
                          "%s: not the plain PEM encoding of its certificates (extra text, "
                          "altered framing or line breaks)",
                          what);
        goto out;
    }
    leaf = sk_X509_value(certs, 0);
    untrusted = sk_X509_new_null();
    if (untrusted == NULL) {
        rc = clst_err_set(err, CLST_E_NOMEM, "out of memory");
        goto out;
    }
    for (int i = 1; i < sk_X509_num(certs); i++) {
        X509 *c = sk_X509_value(certs, i);
        if (self_signed(c)) {
            /* A root inside the evidence is never an anchor; it may only repeat a trusted root
             * (Intel's quotes carry the Intel SGX Root CA) byte for byte. */
            bool known = false;
            for (int k = 0; k < sk_X509_num(in->roots) && !known; k++) {
                known = X509_cmp(c, sk_X509_value(in->roots, k)) == 0;
            }
            if (!known) {
                rc = clst_err_set(err, CLST_E_VERIFY,
                                  "%s: certificate chain carries a root certificate (number %d) "
                                  "that is not the trusted root; a root is never taken from the "
                                  "evidence",
                                  what, i + 1);
                goto out;
            }
            continue;
        }
        if (sk_X509_push(untrusted, c) <= 0) {
            rc = clst_err_set(err, CLST_E_NOMEM, "out of memory");
            goto out;
        }
    }
    rc = clst_x509_verify_chain(leaf, untrusted, in->roots, crls, in->at, &chain, err);
    if (rc != CLST_OK) {
        clst_err_prefix(err, "%s", what);
        goto out;
    }
    /* Every certificate given is the verified path, in order: nothing unused rides along. */
    for (int i = 0; i < sk_X509_num(certs); i++) {
        if (i >= sk_X509_num(chain) ||
            X509_cmp(sk_X509_value(certs, i), sk_X509_value(chain, i)) != 0) {
            rc = clst_err_set(err, CLST_E_VERIFY,
                              "%s: certificate %d is not the one at that place of the verified "
                              "path (leaf, issuing CA, root)",
                              what, i + 1);
            goto out;
        }
    }
    if (X509_up_ref(leaf) != 1) {
        rc = clst_err_set(err, CLST_E_CRYPTO, "cannot reference the certificate");
        goto out;
    }
    *out_leaf = leaf;
    *out_depth = sk_X509_num(chain);
    rc = CLST_OK;
out:
    sk_X509_pop_free(chain, X509_free);
    sk_X509_free(untrusted); /* borrowed from certs */
    sk_X509_pop_free(certs, X509_free);
    return rc;
}

static enum clst_status
load_crl(const struct dcap_collateral *coll, enum dcap_coll_item item, STACK_OF(X509_CRL) * crls,
         struct clst_err *err)
{
    X509_CRL *crl = NULL;
    enum clst_status rc = clst_x509_crl_from_pem_or_der(coll->item[item - 1],
                                                        coll->item_size[item - 1], &crl, err);
    if (rc != CLST_OK) {
        return clst_err_prefix(err, "DCAP collateral %s", dcap_collateral_item_name(item));
    }
    if (sk_X509_CRL_push(crls, crl) <= 0) {
        X509_CRL_free(crl);
        return clst_err_set(err, CLST_E_NOMEM, "out of memory");
    }
    return CLST_OK;
}

/* Splits, verifies (with key) and returns the signed member's bytes of a collateral item. */
static enum clst_status
verify_signed_json(const struct dcap_collateral *coll, enum dcap_coll_item item,
                   const char *member, EVP_PKEY *key, const uint8_t **out_body,
                   size_t *out_body_size, struct clst_err *err)
{
    uint8_t sig[DCAP_ECDSA_SIG_SIZE];
    size_t off = 0, len = 0;
    const uint8_t *data = coll->item[item - 1];
    enum clst_status rc =
        dcap_signed_json_split(data, coll->item_size[item - 1], member, &off, &len, sig, err);
    if (rc != CLST_OK) {
        return clst_err_prefix(err, "DCAP collateral %s", dcap_collateral_item_name(item));
    }
    rc = clst_ecdsa_verify(key, CLST_HASH_SHA256, CLST_SIG_RAW, data + off, len, sig, sizeof(sig));
    if (rc != CLST_OK) {
        return clst_err_set(err, sig_result(rc),
                            "DCAP collateral %s: the signature over \"%s\" does not verify with "
                            "the Intel SGX TCB Signing key (altered or re-serialized collateral: "
                            "use the file exactly as Intel's PCS served it)",
                            dcap_collateral_item_name(item), member);
    }
    *out_body = data + off;
    *out_body_size = len;
    return CLST_OK;
}

static enum clst_status
check_window(const char *what, int64_t issue, int64_t next, int64_t at, struct clst_err *err)
{
    char a[32], b[32], t[32];
    if (at >= issue && at <= next) {
        return CLST_OK;
    }
    if (clst_time_format(issue, a, sizeof(a)) != CLST_OK ||
        clst_time_format(next, b, sizeof(b)) != CLST_OK ||
        clst_time_format(at, t, sizeof(t)) != CLST_OK) {
        return clst_err_set(err, CLST_E_VERIFY, "%s is not valid at the verification time", what);
    }
    return clst_err_set(err, CLST_E_VERIFY,
                        "%s is valid from %s to %s, not at %s; fetch current collateral from "
                        "Intel PCS",
                        what, a, b, t);
}

static enum clst_status
add_advisories(struct dcap_result *r, const struct dcap_advisory_pool *pool, size_t first,
               size_t count, struct clst_err *err)
{
    for (size_t i = first; i < first + count && i < pool->count; i++) {
        bool dup = false;
        for (size_t k = 0; k < r->advisory_count && !dup; k++) {
            dup = strcmp(r->advisory[k], pool->id[i]) == 0;
        }
        if (dup) {
            continue;
        }
        if (r->advisory_count >= DCAP_RESULT_MAX_ADVISORIES) {
            return clst_err_set(err, CLST_E_LIMIT, "more than %d advisory ids apply",
                                DCAP_RESULT_MAX_ADVISORIES);
        }
        memcpy(r->advisory[r->advisory_count], pool->id[i], DCAP_ADVISORY_ID_SIZE);
        r->advisory_count++;
    }
    return CLST_OK;
}

static bool
masked_equal(const uint8_t *a, const uint8_t *b, const uint8_t *mask, size_t n)
{
    uint8_t diff = 0;
    for (size_t i = 0; i < n; i++) {
        diff |= (uint8_t)((a[i] ^ b[i]) & mask[i]);
    }
    return diff == 0;
}

/* The QE report against the QE identity: identity fields, then the isvsvn level. */
static enum clst_status
check_qe_identity(const struct dcap_sgx_report *qe, const struct dcap_qe_identity *id,
                  size_t *out_level, struct clst_err *err)
{
    if (CRYPTO_memcmp(qe->mrsigner, id->mrsigner, sizeof(id->mrsigner)) != 0) {
        return clst_err_set(err, CLST_E_VERIFY,
                            "the quoting enclave's MRSIGNER is not the one in Intel's QE identity: "
                            "the quote was not made by Intel's quoting enclave");
    }
    if (qe->isvprodid != id->isvprodid) {
        return clst_err_set(err, CLST_E_VERIFY,
                            "the quoting enclave's ISVPRODID %u is not %u (QE identity)",
                            (unsigned)qe->isvprodid, (unsigned)id->isvprodid);
    }
    if (((qe->miscselect ^ id->miscselect) & id->miscselect_mask) != 0) {
        return clst_err_set(err, CLST_E_VERIFY,
                            "the quoting enclave's MISCSELECT does not match the QE identity");
    }
    if (!masked_equal(qe->attributes, id->attributes, id->attributes_mask, 16)) {
        return clst_err_set(err, CLST_E_VERIFY,
                            "the quoting enclave's ATTRIBUTES do not match the QE identity (a "
                            "debug quoting enclave?)");
    }
    for (size_t i = 0; i < id->level_count; i++) {
        if (qe->isvsvn >= id->level[i].isvsvn) {
            *out_level = i;
            return CLST_OK;
        }
    }
    return clst_err_set(err, CLST_E_VERIFY,
                        "the quoting enclave's ISVSVN %u is below every level of the QE identity; "
                        "update the platform's quoting enclave",
                        (unsigned)qe->isvsvn);
}

/* TDX: the module (tdxModule and, for a non-zero major version, "TDX_<major>"). */
static enum clst_status
check_tdx_module(const struct dcap_td_report *td, const struct dcap_tcb_info *info,
                 struct dcap_result *res, struct clst_err *err)
{
    if (info->has_tdx_module &&
        (CRYPTO_memcmp(td->mrsignerseam, info->module_mrsigner, 48) != 0 ||
         !masked_equal(td->seam_attributes, info->module_attributes,
                       info->module_attributes_mask, 8))) {
        return clst_err_set(err, CLST_E_VERIFY,
                            "the TDX module's MRSIGNERSEAM or SEAM attributes are not those of "
                            "tcbInfo's tdxModule: not an Intel TDX module");
    }
    uint8_t major = td->tee_tcb_svn[1], svn = td->tee_tcb_svn[0];
    if (major == 0 || info->module_count == 0) {
        return CLST_OK;
    }
    char id[16];
    snprintf(id, sizeof(id), "TDX_%02X", (unsigned)major);
    for (size_t i = 0; i < info->module_count; i++) {
        const struct dcap_module_identity *m = &info->module[i];
        if (strcmp(m->id, id) != 0) {
            continue;
        }
        if (CRYPTO_memcmp(td->mrsignerseam, m->mrsigner, 48) != 0 ||
            !masked_equal(td->seam_attributes, m->attributes, m->attributes_mask, 8)) {
            return clst_err_set(err, CLST_E_VERIFY,
                                "the TDX module's MRSIGNERSEAM or SEAM attributes do not match "
                                "module identity %s",
                                id);
        }
        for (size_t k = 0; k < m->level_count; k++) {
            if (m->level[k].isvsvn <= svn) {
                res->has_module = true;
                memcpy(res->module_id, id, sizeof(res->module_id));
                res->module_status = m->level[k].status;
                return add_advisories(res, &info->adv, m->level[k].adv_first,
                                      m->level[k].adv_count, err);
            }
        }
        return clst_err_set(err, CLST_E_VERIFY,
                            "the TDX module SVN %u is below every TCB level of %s; update the "
                            "TDX module",
                            (unsigned)svn, id);
    }
    return clst_err_set(err, CLST_E_VERIFY,
                        "tcbInfo has no TDX module identity %s for this TDX module (major "
                        "version %u)",
                        id, (unsigned)major);
}

/* ---- the verification ------------------------------------------------------------------------ */

enum clst_status
dcap_verify(const struct dcap_quote *q, const uint8_t *data, size_t size,
            const struct clst_evidence_input *in, const char *kind, struct clst_err *err)
{
    enum clst_status rc = CLST_E_VERIFY;
    struct dcap_collateral coll;
    STACK_OF(X509_CRL) *crls = NULL, *root_crls = NULL;
    X509 *pck = NULL, *tcb_signer = NULL;
    EVP_PKEY *att_key = NULL;
    struct dcap_tcb_info *info = NULL;
    struct dcap_qe_identity *qeid = NULL;
    struct dcap_pck_info pckinfo;
    struct dcap_result res;
    uint8_t point[1 + DCAP_ECDSA_KEY_SIZE];
    uint8_t digest[CLST_SHA256_SIZE];
    const uint8_t *body = NULL;
    size_t body_size = 0, level = 0, qe_level = 0;
    unsigned policy = 0;
    int depth = 0;
    bool tdx = q->tee_type == DCAP_TEE_TDX;

    memset(&res, 0, sizeof(res));
    if (q->result == NULL || q->quote_size > size || q->signed_size > q->quote_size) {
        return clst_err_set(err, CLST_E_INTERNAL, "%s quote: parsed sizes are inconsistent",
                            kind);
    }
    /* The policy first: a bad setting is the caller's error, whatever the evidence. */
    if ((rc = dcap_tcb_policy_parse(in->tcb_statuses, &policy, err)) != CLST_OK) {
        return rc;
    }

    /* 1. Collateral and CRLs. */
    if ((rc = dcap_collateral_parse(in->endorsements, in->endorsements_size, &coll, err)) !=
        CLST_OK) {
        return clst_err_prefix(err, "%s evidence", kind);
    }
    crls = sk_X509_CRL_new_null();
    root_crls = sk_X509_CRL_new_null();
    if (crls == NULL || root_crls == NULL) {
        rc = clst_err_set(err, CLST_E_NOMEM, "out of memory");
        goto out;
    }
    if ((rc = load_crl(&coll, DCAP_COLL_PCK_CRL, crls, err)) != CLST_OK ||
        (rc = load_crl(&coll, DCAP_COLL_ROOT_CRL, crls, err)) != CLST_OK ||
        (rc = load_crl(&coll, DCAP_COLL_ROOT_CRL, root_crls, err)) != CLST_OK) {
        goto out;
    }
    for (int i = 0; in->crls != NULL && i < sk_X509_CRL_num(in->crls); i++) {
        X509_CRL *extra = sk_X509_CRL_value(in->crls, i);
        if (X509_CRL_up_ref(extra) != 1 || sk_X509_CRL_push(crls, extra) <= 0) {
            rc = clst_err_set(err, CLST_E_NOMEM, "out of memory");
            goto out;
        }
    }

    /* 2. The PCK chain. */
    rc = verify_pem_chain(q->pck_chain, q->pck_chain_size, "PCK certificate chain", true, in, crls,
                          &pck, &depth, err);
    if (rc != CLST_OK) {
        clst_err_prefix(err, "%s quote", kind);
        goto out;
    }
    EVP_PKEY *pck_key = X509_get0_pubkey(pck);
    const ASN1_OCTET_STRING *ext = sgx_extension(pck);
    if (pck_key == NULL || clst_pkey_kind(pck_key) != CLST_KEY_EC_P256 ||
        !cert_cn_is(pck, PCK_LEAF_CN) || ext == NULL || depth != 3) {
        rc = clst_err_set(err, CLST_E_VERIFY,
                          "%s quote: the leaf of the quote's chain is not a PCK certificate "
                          "(CN \"" PCK_LEAF_CN "\", EC P-256, SGX extension, issued by a PCK "
                          "CA under the root)",
                          kind);
        goto out;
    }
    rc = dcap_pck_extension_parse(ASN1_STRING_get0_data(ext), (size_t)ASN1_STRING_length(ext),
                                  &pckinfo, err);
    if (rc != CLST_OK) {
        clst_err_prefix(err, "%s quote", kind);
        goto out;
    }

    /* 3. The QE report, signed by the PCK. */
    rc = clst_ecdsa_verify(pck_key, CLST_HASH_SHA256, CLST_SIG_RAW, q->qe_report_raw,
                           sizeof(q->qe_report_raw), q->qe_report_sig, sizeof(q->qe_report_sig));
    if (rc != CLST_OK) {
        rc = clst_err_set(err, sig_result(rc),
                          "%s quote: the QE report signature does not verify with the PCK "
                          "certificate's key (a report from another platform, or altered)",
                          kind);
        goto out;
    }

    /* 4. The attestation key and auth data are bound into the QE report. */
    struct clst_hash_ctx hc = {0};
    if (clst_hash_init(&hc, CLST_HASH_SHA256) != CLST_OK ||
        clst_hash_update(&hc, q->att_key, sizeof(q->att_key)) != CLST_OK ||
        clst_hash_update(&hc, q->qe_auth, q->qe_auth_size) != CLST_OK ||
        clst_hash_final(&hc, digest) != CLST_OK) {
        clst_hash_cleanup(&hc);
        rc = clst_err_set(err, CLST_E_CRYPTO, "cannot hash the attestation key");
        goto out;
    }
    static const uint8_t zeros[32] = {0};
    if (CRYPTO_memcmp(digest, q->qe_report.report_data, sizeof(digest)) != 0 ||
        CRYPTO_memcmp(zeros, q->qe_report.report_data + 32, sizeof(zeros)) != 0) {
        rc = clst_err_set(err, CLST_E_VERIFY,
                          "%s quote: the QE report data is not SHA-256(attestation key || QE "
                          "authentication data) followed by zeros: the attestation key is not "
                          "bound to the quoting enclave",
                          kind);
        goto out;
    }

    /* 5. The quote signature over header and body, as received. */
    point[0] = 0x04;
    memcpy(point + 1, q->att_key, sizeof(q->att_key));
    if (clst_ec_point_decode(CLST_CURVE_P256, point, sizeof(point), &att_key) != CLST_OK) {
        rc = clst_err_set(err, CLST_E_VERIFY,
                          "%s quote: the attestation key is not a point on P-256", kind);
        goto out;
    }
    rc = clst_ecdsa_verify(att_key, CLST_HASH_SHA256, CLST_SIG_RAW, data, q->signed_size,
                           q->signature, sizeof(q->signature));
    if (rc != CLST_OK) {
        rc = clst_err_set(err, sig_result(rc),
                          "%s quote: the quote signature does not verify with the attestation "
                          "key (the header or %s report was altered)",
                          kind, tdx ? "TD" : "enclave");
        goto out;
    }

    /* 6. The TCB Signing chain (the root inside it is ignored). */
    rc = verify_pem_chain(coll.item[DCAP_COLL_TCB_CHAIN - 1],
                          coll.item_size[DCAP_COLL_TCB_CHAIN - 1],
                          "DCAP collateral " DCAP_FILE_TCB_CHAIN, false, in, root_crls,
                          &tcb_signer, &depth, err);
    if (rc != CLST_OK) {
        goto out;
    }
    EVP_PKEY *tcb_key = X509_get0_pubkey(tcb_signer);
    if (tcb_key == NULL || clst_pkey_kind(tcb_key) != CLST_KEY_EC_P256 ||
        !cert_cn_is(tcb_signer, TCB_SIGNING_CN) || sgx_extension(tcb_signer) != NULL ||
        depth != 2) {
        rc = clst_err_set(err, CLST_E_VERIFY,
                          "DCAP collateral " DCAP_FILE_TCB_CHAIN ": the first certificate is not "
                          "the Intel SGX TCB Signing certificate (CN \"" TCB_SIGNING_CN
                          "\", EC P-256, issued by the root)");
        goto out;
    }

    /* 7. tcbInfo and QE identity: signatures over the raw bytes, then their content. */
    info = calloc(1, sizeof(*info));
    qeid = calloc(1, sizeof(*qeid));
    if (info == NULL || qeid == NULL) {
        rc = clst_err_set(err, CLST_E_NOMEM, "out of memory");
        goto out;
    }
    if ((rc = verify_signed_json(&coll, DCAP_COLL_TCB_INFO, "tcbInfo", tcb_key, &body,
                                 &body_size, err)) != CLST_OK) {
        goto out;
    }
    if ((rc = dcap_tcb_info_parse(body, body_size, info, err)) != CLST_OK) {
        clst_err_prefix(err, "DCAP collateral " DCAP_FILE_TCB_INFO);
        goto out;
    }
    if ((rc = verify_signed_json(&coll, DCAP_COLL_QE_IDENTITY, "enclaveIdentity", tcb_key, &body,
                                 &body_size, err)) != CLST_OK) {
        goto out;
    }
    if ((rc = dcap_qe_identity_parse(body, body_size, qeid, err)) != CLST_OK) {
        clst_err_prefix(err, "DCAP collateral " DCAP_FILE_QE_IDENTITY);
        goto out;
    }
    if (info->id != (tdx ? DCAP_TCB_INFO_TDX : DCAP_TCB_INFO_SGX) || info->tcb_type != 0) {
        rc = clst_err_set(err, CLST_E_VERIFY,
                          "DCAP collateral " DCAP_FILE_TCB_INFO ": this is %s TCB info (tcbType "
                          "%u), but the quote is %s; use the %s TCB info (tcbType 0)",
                          info->id == DCAP_TCB_INFO_TDX ? "TDX" : "SGX", (unsigned)info->tcb_type,
                          tdx ? "TDX" : "SGX", tdx ? "TDX" : "SGX");
        goto out;
    }
    if (qeid->id != (tdx ? DCAP_QE_ID_TD_QE : DCAP_QE_ID_QE)) {
        rc = clst_err_set(err, CLST_E_VERIFY,
                          "DCAP collateral " DCAP_FILE_QE_IDENTITY ": this is the %s identity, "
                          "but a %s quote needs the %s identity",
                          qeid->id == DCAP_QE_ID_TD_QE ? "TD_QE" : "QE", tdx ? "TDX" : "SGX",
                          tdx ? "TD_QE" : "QE");
        goto out;
    }
    if ((rc = check_window("DCAP collateral " DCAP_FILE_TCB_INFO, info->issue_date,
                           info->next_update, in->at, err)) != CLST_OK ||
        (rc = check_window("DCAP collateral " DCAP_FILE_QE_IDENTITY, qeid->issue_date,
                           qeid->next_update, in->at, err)) != CLST_OK) {
        goto out;
    }
    if (memcmp(info->fmspc, pckinfo.fmspc, sizeof(info->fmspc)) != 0 ||
        memcmp(info->pceid, pckinfo.pceid, sizeof(info->pceid)) != 0) {
        char want[13], got[13];
        clst_hex_to_str(pckinfo.fmspc, sizeof(pckinfo.fmspc), want, sizeof(want));
        clst_hex_to_str(info->fmspc, sizeof(info->fmspc), got, sizeof(got));
        rc = clst_err_set(err, CLST_E_VERIFY,
                          "DCAP collateral " DCAP_FILE_TCB_INFO ": it is for FMSPC %s (or another "
                          "PCE-ID), but the PCK certificate is for FMSPC %s; fetch the TCB info "
                          "for this platform",
                          got, want);
        goto out;
    }

    /* 8. The quoting enclave. */
    if ((rc = check_qe_identity(&q->qe_report, qeid, &qe_level, err)) != CLST_OK) {
        clst_err_prefix(err, "%s quote", kind);
        goto out;
    }
    res.qe_status = qeid->level[qe_level].status;

    /* 9. The platform TCB level, the TDX module, the converged status. */
    if ((rc = dcap_tcb_level_match(info, &pckinfo, tdx ? q->td.tee_tcb_svn : NULL, &level,
                                   err)) != CLST_OK) {
        clst_err_prefix(err, "%s quote", kind);
        goto out;
    }
    res.platform_status = info->level[level].status;
    res.tcb_date = info->level[level].tcb_date;
    if ((rc = add_advisories(&res, &info->adv, info->level[level].adv_first,
                             info->level[level].adv_count, err)) != CLST_OK) {
        goto out;
    }
    res.status = res.platform_status;
    if (tdx) {
        if ((rc = check_tdx_module(&q->td, info, &res, err)) != CLST_OK) {
            clst_err_prefix(err, "%s quote", kind);
            goto out;
        }
        if (res.has_module) {
            res.status = dcap_tcb_status_converge(res.status, res.module_status);
        }
    }
    res.status = dcap_tcb_status_converge(res.status, res.qe_status);
    if ((rc = add_advisories(&res, &qeid->adv, qeid->level[qe_level].adv_first,
                             qeid->level[qe_level].adv_count, err)) != CLST_OK) {
        goto out;
    }

    /* 10. The policy. */
    if (res.status == DCAP_TCB_REVOKED || (policy & (1u << res.status)) == 0) {
        rc = clst_err_set(err, CLST_E_VERIFY,
                          "%s quote: the platform's TCB status is %s (platform %s, quoting "
                          "enclave %s%s%s%s%s), which the TCB policy does not accept%s",
                          kind, dcap_tcb_status_name(res.status),
                          dcap_tcb_status_name(res.platform_status),
                          dcap_tcb_status_name(res.qe_status), res.has_module ? ", " : "",
                          res.has_module ? res.module_id : "",
                          res.has_module ? " " : "",
                          res.has_module ? dcap_tcb_status_name(res.module_status) : "",
                          res.status == DCAP_TCB_REVOKED
                              ? ""
                              : "; update the platform, or accept this status explicitly");
        goto out;
    }

    /* The record the claims are made from. */
    res.tcb_eval_number = info->eval_number;
    memcpy(res.fmspc, pckinfo.fmspc, sizeof(res.fmspc));
    if (clst_sha256(data, q->quote_size, res.quote_hash) != CLST_OK ||
        clst_sha256(coll.item[DCAP_COLL_TCB_INFO - 1], coll.item_size[DCAP_COLL_TCB_INFO - 1],
                    res.tcb_info_hash) != CLST_OK ||
        clst_sha256(coll.item[DCAP_COLL_QE_IDENTITY - 1],
                    coll.item_size[DCAP_COLL_QE_IDENTITY - 1], res.qe_identity_hash) != CLST_OK ||
        clst_sha256(coll.item[DCAP_COLL_TCB_CHAIN - 1], coll.item_size[DCAP_COLL_TCB_CHAIN - 1],
                    res.tcb_chain_hash) != CLST_OK ||
        clst_sha256(coll.item[DCAP_COLL_ROOT_CRL - 1], coll.item_size[DCAP_COLL_ROOT_CRL - 1],
                    res.root_crl_hash) != CLST_OK) {
        rc = clst_err_set(err, CLST_E_CRYPTO, "cannot hash the collateral");
        goto out;
    }
    res.done = true;
    *q->result = res;
    rc = CLST_OK;
out:
    EVP_PKEY_free(att_key);
    X509_free(pck);
    X509_free(tcb_signer);
    sk_X509_CRL_pop_free(crls, X509_CRL_free);
    sk_X509_CRL_pop_free(root_crls, X509_CRL_free);
    free(info);
    free(qeid);
    return rc;
}

/* ---- claims shared by both kinds ------------------------------------------------------------- */

enum clst_status
dcap_claim_hex(json_t *claims, const char *name, const uint8_t *bytes, size_t size)
{
    char hex[2 * 64 + 1];
    if (2 * size + 1 > sizeof(hex) || clst_hex_to_str(bytes, size, hex, sizeof(hex)) != CLST_OK) {
        return CLST_E_INTERNAL;
    }
    return json_object_set_new(claims, name, json_string(hex)) == 0 ? CLST_OK : CLST_E_NOMEM;
}

enum clst_status
dcap_claims_common(const struct dcap_result *r, json_t *claims, const char *collateral_claim,
                   const char *certs_suffix)
{
    char date[32], name[32];
    json_t *ids = NULL, *coll = NULL;
    enum clst_status rc = CLST_E_NOMEM;

    if (!r->done) {
        return CLST_E_INTERNAL; /* claims without a verification: never */
    }
    if (clst_time_format(r->tcb_date, date, sizeof(date)) != CLST_OK) {
        return CLST_E_INTERNAL;
    }
    ids = json_array();
    coll = json_object();
    if (ids == NULL || coll == NULL) {
        goto out;
    }
    for (size_t i = 0; i < r->advisory_count; i++) {
        if (json_array_append_new(ids, json_string(r->advisory[i])) != 0) {
            goto out;
        }
    }
    if (json_object_set_new(claims, "attester_tcb_status",
                            json_string(dcap_tcb_status_name(r->status))) != 0 ||
        json_object_set_new(claims, "attester_tcb_date", json_string(date)) != 0 ||
        json_object_set(claims, "attester_advisory_ids", ids) != 0) {
        goto out;
    }
    snprintf(name, sizeof(name), "qeid%s", certs_suffix);
    if ((rc = dcap_claim_hex(coll, name, r->tcb_chain_hash, 32)) != CLST_OK ||
        (rc = dcap_claim_hex(coll, "qeidcrlhash", r->root_crl_hash, 32)) != CLST_OK ||
        (rc = dcap_claim_hex(coll, "qeidhash", r->qe_identity_hash, 32)) != CLST_OK ||
        (rc = dcap_claim_hex(coll, "quotehash", r->quote_hash, 32)) != CLST_OK) {
        goto out;
    }
    snprintf(name, sizeof(name), "tcbinfo%s", certs_suffix);
    if ((rc = dcap_claim_hex(coll, name, r->tcb_chain_hash, 32)) != CLST_OK ||
        (rc = dcap_claim_hex(coll, "tcbinfocrlhash", r->root_crl_hash, 32)) != CLST_OK ||
        (rc = dcap_claim_hex(coll, "tcbinfohash", r->tcb_info_hash, 32)) != CLST_OK) {
        goto out;
    }
    rc = CLST_E_NOMEM;
    if (json_object_set_new(coll, "tcbevaluationdatanumber", json_integer(r->tcb_eval_number)) !=
            0 ||
        json_object_set(claims, collateral_claim, coll) != 0) {
        goto out;
    }
    rc = CLST_OK;
out:
    json_decref(ids);
    json_decref(coll);
    return rc;
}
