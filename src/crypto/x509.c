/*
 * X.509: certificate and CRL parsing, and chain verification at an injected time.
 *
 * Trust boundary: certificates, bundles and CRLs are untrusted bytes; the roots given to
 * clst_x509_verify_chain are the trust anchors (pinned vendor roots). Verification:
 * - time: the caller's `at` (X509_VERIFY_PARAM_set_time); the wall clock is never read;
 * - the chain must end at a self-signed certificate among `roots` (no partial chains: an
 *   intermediate given as a root does not anchor a chain);
 * - with CRLs, every certificate of the chain is checked (X509_V_FLAG_CRL_CHECK |
 *   X509_V_FLAG_CRL_CHECK_ALL): a certificate whose issuer has no CRL in the list fails;
 * - RSA-PSS signatures and serial number 0 are accepted (not X509_V_FLAG_X509_STRICT), as AMD's
 *   SEV-SNP certificates require.
 */
#include <cloister/crypto.h>

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509_vfy.h>

#define X509_INPUT_MAX   (1u << 20)  /* a PEM bundle of 64 certificates is far below this */
#define X509_CRL_MAX     (16u << 20) /* CRLs of large CAs run to megabytes */
#define X509_BUNDLE_MAX  64
#define X509_CHAIN_DEPTH 10

static const char *
ossl_reason(void)
{
    const char *r = ERR_reason_error_string(ERR_peek_last_error());
    return r != NULL ? r : "unknown reason";
}

/* Common checks on an input buffer: present, non-empty, within its size limit. */
static enum clst_status
check_input(const void *data, size_t size, size_t max, const char *what, struct clst_err *err)
{
    if (data == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "no %s given", what);
    }
    if (size == 0) {
        return clst_err_set(err, CLST_E_MALFORMED, "empty %s", what);
    }
    if (size > max || size > INT_MAX) {
        return clst_err_set(err, CLST_E_LIMIT, "%s of %zu bytes exceeds the %zu-byte limit", what,
                            size, max);
    }
    return CLST_OK;
}

enum clst_status
clst_x509_from_pem(const void *pem, size_t size, X509 **out, struct clst_err *err)
{
    enum clst_status rc;
    BIO *bio = NULL;
    X509 *cert = NULL;

    if (out == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "no output for the certificate");
    }
    rc = check_input(pem, size, X509_INPUT_MAX, "PEM certificate", err);
    if (rc != CLST_OK) {
        return rc;
    }
    ERR_clear_error();
    bio = BIO_new_mem_buf(pem, (int)size);
    if (bio == NULL) {
        rc = clst_err_set(err, CLST_E_NOMEM, "out of memory");
        goto out;
    }
    cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    if (cert == NULL) {
        rc = clst_err_set(err, CLST_E_MALFORMED,
                          "no valid PEM certificate (-----BEGIN CERTIFICATE-----) found: %s",
                          ossl_reason());
        goto out;
    }
    *out = cert;
    cert = NULL;
    rc = CLST_OK;
out:
    X509_free(cert);
    BIO_free(bio);
    ERR_clear_error();
    return rc;
}

enum clst_status
clst_x509_from_der(const void *der, size_t size, X509 **out, struct clst_err *err)
{
    enum clst_status rc;
    const unsigned char *p = der;
    X509 *cert = NULL;

    if (out == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "no output for the certificate");
    }
    rc = check_input(der, size, X509_INPUT_MAX, "DER certificate", err);
    if (rc != CLST_OK) {
        return rc;
    }
    ERR_clear_error();
    cert = d2i_X509(NULL, &p, (long)size);
    if (cert == NULL) {
        rc = clst_err_set(err, CLST_E_MALFORMED, "not a DER X.509 certificate: %s", ossl_reason());
        goto out;
    }
    if ((size_t)(p - (const unsigned char *)der) != size) {
        rc = clst_err_set(err, CLST_E_MALFORMED, "%zu trailing bytes after the DER certificate",
                          size - (size_t)(p - (const unsigned char *)der));
        goto out;
    }
    *out = cert;
    cert = NULL;
    rc = CLST_OK;
out:
    X509_free(cert);
    ERR_clear_error();
    return rc;
}

enum clst_status
clst_x509_stack_from_pem(const void *pem, size_t size, STACK_OF(X509) * *out, struct clst_err *err)
{
    enum clst_status rc;
    BIO *bio = NULL;
    STACK_OF(X509) *certs = NULL;
    X509 *cert = NULL;
    unsigned long e;

    if (out == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "no output for the certificates");
    }
    rc = check_input(pem, size, X509_INPUT_MAX, "PEM certificate bundle", err);
    if (rc != CLST_OK) {
        return rc;
    }
    ERR_clear_error();
    bio = BIO_new_mem_buf(pem, (int)size);
    certs = sk_X509_new_null();
    if (bio == NULL || certs == NULL) {
        rc = clst_err_set(err, CLST_E_NOMEM, "out of memory");
        goto out;
    }
    for (;;) {
        cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        if (cert == NULL) {
            break;
        }
        if (sk_X509_num(certs) >= X509_BUNDLE_MAX) {
            rc =
                clst_err_set(err, CLST_E_LIMIT,
                             "certificate bundle holds more than %d certificates", X509_BUNDLE_MAX);
            goto out;
        }
        if (sk_X509_push(certs, cert) <= 0) {
            rc = clst_err_set(err, CLST_E_NOMEM, "out of memory");
            goto out;
        }
        cert = NULL;
    }
    /* The loop ends at the end of the input ("no start line"); anything else is a bad block. */
    e = ERR_peek_last_error();
    if (ERR_GET_LIB(e) != ERR_LIB_PEM || ERR_GET_REASON(e) != PEM_R_NO_START_LINE) {
        rc = clst_err_set(err, CLST_E_MALFORMED, "certificate %d of the bundle is malformed: %s",
                          sk_X509_num(certs) + 1, ossl_reason());
        goto out;
    }
    if (sk_X509_num(certs) == 0) {
        rc = clst_err_set(err, CLST_E_MALFORMED,
                          "no PEM certificate (-----BEGIN CERTIFICATE-----) in the bundle");
        goto out;
    }
    *out = certs;
    certs = NULL;
    rc = CLST_OK;
out:
    X509_free(cert);
    sk_X509_pop_free(certs, X509_free);
    BIO_free(bio);
    ERR_clear_error();
    return rc;
}

/* True when data, after leading whitespace, starts a PEM block. */
static bool
looks_like_pem(const uint8_t *data, size_t size)
{
    static const char begin[] = "-----BEGIN ";
    size_t i = 0;

    while (i < size && isspace(data[i])) {
        i++;
    }
    return size - i >= sizeof(begin) - 1 && memcmp(data + i, begin, sizeof(begin) - 1) == 0;
}

enum clst_status
clst_x509_crl_from_pem_or_der(const void *data, size_t size, X509_CRL **out, struct clst_err *err)
{
    enum clst_status rc;
    BIO *bio = NULL;
    X509_CRL *crl = NULL;
    const unsigned char *p = data;

    if (out == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "no output for the CRL");
    }
    rc = check_input(data, size, X509_CRL_MAX, "CRL", err);
    if (rc != CLST_OK) {
        return rc;
    }
    ERR_clear_error();
    if (looks_like_pem(data, size)) {
        bio = BIO_new_mem_buf(data, (int)size);
        if (bio == NULL) {
            rc = clst_err_set(err, CLST_E_NOMEM, "out of memory");
            goto out;
        }
        crl = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL);
        if (crl == NULL) {
            rc = clst_err_set(err, CLST_E_MALFORMED,
                              "no valid PEM CRL (-----BEGIN X509 CRL-----) found: %s",
                              ossl_reason());
            goto out;
        }
    } else {
        crl = d2i_X509_CRL(NULL, &p, (long)size);
        if (crl == NULL) {
            rc = clst_err_set(err, CLST_E_MALFORMED, "not a PEM or DER X.509 CRL: %s",
                              ossl_reason());
            goto out;
        }
        if ((size_t)(p - (const unsigned char *)data) != size) {
            rc = clst_err_set(err, CLST_E_MALFORMED, "%zu trailing bytes after the DER CRL",
                              size - (size_t)(p - (const unsigned char *)data));
            goto out;
        }
    }
    *out = crl;
    crl = NULL;
    rc = CLST_OK;
out:
    X509_CRL_free(crl);
    BIO_free(bio);
    ERR_clear_error();
    return rc;
}

/* The subject of cert as an RFC 2253 string into buf (always NUL-terminated). */
static void
subject_string(X509 *cert, char *buf, size_t cap)
{
    BIO *bio = NULL;
    int n;

    snprintf(buf, cap, "%s", "(unknown certificate)");
    if (cert == NULL) {
        return;
    }
    bio = BIO_new(BIO_s_mem());
    if (bio == NULL) {
        return;
    }
    if (X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253) >= 0) {
        n = BIO_read(bio, buf, (int)(cap - 1));
        if (n > 0) {
            buf[n] = 0;
        } else {
            snprintf(buf, cap, "%s", "(empty subject)");
        }
    }
    BIO_free(bio);
}

enum clst_status
clst_x509_verify_chain(X509 *leaf, STACK_OF(X509) * untrusted, STACK_OF(X509) * roots,
                       STACK_OF(X509_CRL) * crls, int64_t at, STACK_OF(X509) * *out_chain,
                       struct clst_err *err)
{
    enum clst_status rc = CLST_E_CRYPTO;
    X509_STORE *store = NULL;
    X509_STORE_CTX *ctx = NULL;
    X509_VERIFY_PARAM *param;
    STACK_OF(X509) *chain = NULL;
    unsigned long flags = 0;
    char subject[160];
    int code;

    if (leaf == NULL || roots == NULL || sk_X509_num(roots) <= 0) {
        return clst_err_set(err, CLST_E_INVAL,
                            "a leaf certificate and at least one root are "
                            "needed to verify a chain");
    }
    if (at < 0 || (int64_t)(time_t)at != at) {
        return clst_err_set(err, CLST_E_INVAL, "verification time %lld is out of range",
                            (long long)at);
    }
    ERR_clear_error();
    store = X509_STORE_new();
    ctx = X509_STORE_CTX_new();
    if (store == NULL || ctx == NULL) {
        rc = clst_err_set(err, CLST_E_NOMEM, "out of memory");
        goto out;
    }
    for (int i = 0; i < sk_X509_num(roots); i++) {
        if (X509_STORE_add_cert(store, sk_X509_value(roots, i)) != 1) {
            rc = clst_err_set(err, CLST_E_CRYPTO, "cannot add root %d to the trust store: %s", i,
                              ossl_reason());
            goto out;
        }
    }
    if (X509_STORE_CTX_init(ctx, store, leaf, untrusted) != 1) {
        rc =
            clst_err_set(err, CLST_E_CRYPTO, "cannot set up chain verification: %s", ossl_reason());
        goto out;
    }
    param = X509_STORE_CTX_get0_param(ctx);
    /* set_time also sets X509_V_FLAG_USE_CHECK_TIME: the wall clock is not consulted. */
    X509_VERIFY_PARAM_set_time(param, (time_t)at);
    X509_VERIFY_PARAM_set_depth(param, X509_CHAIN_DEPTH);
    if (crls != NULL) {
        X509_STORE_CTX_set0_crls(ctx, crls);
        flags |= X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL;
    }
    /* Never X509_V_FLAG_PARTIAL_CHAIN (anchors must be self-signed) nor NO_CHECK_TIME. */
    X509_VERIFY_PARAM_clear_flags(param, X509_V_FLAG_PARTIAL_CHAIN | X509_V_FLAG_NO_CHECK_TIME);
    if (flags != 0 && X509_VERIFY_PARAM_set_flags(param, flags) != 1) {
        rc = clst_err_set(err, CLST_E_CRYPTO, "cannot set verification flags");
        goto out;
    }

    if (X509_verify_cert(ctx) != 1) {
        code = X509_STORE_CTX_get_error(ctx);
        subject_string(X509_STORE_CTX_get_current_cert(ctx), subject, sizeof(subject));
        rc = clst_err_set(err, CLST_E_VERIFY, "certificate chain rejected at \"%s\" (depth %d): %s",
                          subject, X509_STORE_CTX_get_error_depth(ctx),
                          X509_verify_cert_error_string(code));
        goto out;
    }
    if (out_chain != NULL) {
        chain = X509_STORE_CTX_get1_chain(ctx);
        if (chain == NULL) {
            rc = clst_err_set(err, CLST_E_NOMEM, "out of memory");
            goto out;
        }
        *out_chain = chain;
    }
    rc = CLST_OK;
out:
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    ERR_clear_error();
    return rc;
}
