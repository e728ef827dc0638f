/*
 * The server's own small PKI: a local CA and the TLS server certificates it issues. EC P-256 for
 * both (fast handshakes: one P-256 signature per full handshake; P-384 would cost ~10x for the
 * clients verifying), SHA-256 signatures, random 128-bit serials, validity from an injected
 * clock. Built with OpenSSL's X509/X509V3 APIs only (nothing deprecated).
 */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/x509v3.h>

#include "server/server_int.h"

#define DAY_SECS 86400

static bool
is_ip(const char *host, int *family, uint8_t bytes[static 16])
{
    if (inet_pton(AF_INET, host, bytes) == 1) {
        *family = AF_INET;
        return true;
    }
    if (inet_pton(AF_INET6, host, bytes) == 1) {
        *family = AF_INET6;
        return true;
    }
    return false;
}

static bool
is_unspecified(const char *host)
{
    int family;
    uint8_t b[16];
    static const uint8_t zero[16];
    if (!is_ip(host, &family, b)) {
        return false;
    }
    return memcmp(b, zero, family == AF_INET ? 4 : 16) == 0;
}

bool
clst_server_pki_host_valid(const char *host)
{
    int family;
    uint8_t b[16];
    if (host == NULL || host[0] == '\0') {
        return false;
    }
    if (is_ip(host, &family, b)) {
        return true;
    }
    size_t n = strlen(host);
    if (n > 253) {
        return false;
    }
    size_t label = 0;
    for (size_t i = 0; i <= n; i++) {
        char c = host[i];
        if (c == '.' || c == '\0') {
            if (label == 0 || label > 63 || host[i - 1] == '-') {
                return false;
            }
            label = 0;
            continue;
        }
        bool ok =
            (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
        if (!ok || (label == 0 && c == '-')) {
            return false;
        }
        label++;
    }
    return true;
}

/* The machine's name when it is a usable DNS name, else "" (for certificates of servers bound to
 * an unspecified address). */
static void
machine_name(char *out, size_t cap)
{
    out[0] = '\0';
    if (gethostname(out, cap) != 0) {
        out[0] = '\0';
        return;
    }
    out[cap - 1] = '\0';
    if (!clst_server_pki_host_valid(out) || strcmp(out, "localhost") == 0) {
        out[0] = '\0';
    }
}

static enum clst_status
new_key(EVP_PKEY **out, struct clst_err *err)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (k == NULL) {
        return clst_err_set(err, CLST_E_CRYPTO, "could not generate an EC P-256 key");
    }
    *out = k;
    return CLST_OK;
}

static enum clst_status
set_serial(X509 *x, struct clst_err *err)
{
    enum clst_status rc = CLST_E_CRYPTO;
    uint8_t b[16];
    BIGNUM *bn = NULL;
    if (clst_random(b, sizeof(b)) != CLST_OK) {
        rc = clst_err_set(err, CLST_E_CRYPTO, "random generator failed");
        goto out;
    }
    b[0] = (uint8_t)((b[0] & 0x7f) | 0x40); /* positive, non-zero, always 16 bytes (RFC 5280) */
    bn = BN_bin2bn(b, (int)sizeof(b), NULL);
    if (bn == NULL || BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) == NULL) {
        rc = clst_err_set(err, CLST_E_CRYPTO, "could not set the certificate serial number");
        goto out;
    }
    rc = CLST_OK;
out:
    BN_free(bn);
    return rc;
}

static enum clst_status
set_validity(X509 *x, int64_t not_before, int64_t not_after, struct clst_err *err)
{
    if (ASN1_TIME_set(X509_getm_notBefore(x), (time_t)not_before) == NULL ||
        ASN1_TIME_set(X509_getm_notAfter(x), (time_t)not_after) == NULL) {
        return clst_err_set(err, CLST_E_CRYPTO, "could not set the certificate validity");
    }
    return CLST_OK;
}

static enum clst_status
add_name(X509_NAME *name, const char *field, const char *value, struct clst_err *err)
{
    if (X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8, (const unsigned char *)value, -1, -1,
                                   0) != 1) {
        return clst_err_set(err, CLST_E_CRYPTO, "could not set certificate name field %s", field);
    }
    return CLST_OK;
}

static enum clst_status
add_ext(X509 *x, X509 *issuer, int nid, const char *value, struct clst_err *err)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_nconf_nid(NULL, &ctx, nid, value);
    if (e == NULL) {
        return clst_err_set(err, CLST_E_CRYPTO, "could not build certificate extension %s",
                            OBJ_nid2sn(nid));
    }
    int ok = X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
    if (ok != 1) {
        return clst_err_set(err, CLST_E_CRYPTO, "could not add certificate extension %s",
                            OBJ_nid2sn(nid));
    }
    return CLST_OK;
}

/* X509_sign returns the signature size (> 0) on success, not 1. */
static enum clst_status
sign(X509 *x, EVP_PKEY *key, struct clst_err *err)
{
    if (X509_sign(x, key, EVP_sha256()) <= 0) {
        return clst_err_set(err, CLST_E_CRYPTO, "could not sign the certificate");
    }
    return CLST_OK;
}

enum clst_status
clst_server_pki_ca_create(const struct clst_clock *clock, EVP_PKEY **out_key, X509 **out_cert,
                          struct clst_err *err)
{
    enum clst_status rc = CLST_E_CRYPTO;
    EVP_PKEY *key = NULL;
    X509 *x = NULL;
    uint8_t tag[4];
    char cn[64];
    if (clock == NULL) {
        clock = clst_clock_system();
    }
    int64_t now = clst_clock_now(clock);
    rc = new_key(&key, err);
    if (rc != CLST_OK) {
        goto out;
    }
    x = X509_new();
    if (x == NULL || X509_set_version(x, X509_VERSION_3) != 1 || X509_set_pubkey(x, key) != 1) {
        rc = clst_err_set(err, CLST_E_CRYPTO, "could not create the CA certificate");
        goto out;
    }
    /* A random tag in the name tells apart the CAs of different installations in trust stores. */
    rc = clst_random(tag, sizeof(tag));
    if (rc != CLST_OK) {
        rc = clst_err_set(err, CLST_E_CRYPTO, "random generator failed");
        goto out;
    }
    int n = snprintf(cn, sizeof(cn), "Cloister local CA %02x%02x%02x%02x", tag[0], tag[1], tag[2],
                     tag[3]);
    if (n < 0 || (size_t)n >= sizeof(cn)) {
        rc = clst_err_set(err, CLST_E_INTERNAL, "CA name too long");
        goto out;
    }
    X509_NAME *name = X509_get_subject_name(x);
    if ((rc = add_name(name, "O", "Cloister", err)) != CLST_OK ||
        (rc = add_name(name, "CN", cn, err)) != CLST_OK) {
        goto out;
    }
    if (X509_set_issuer_name(x, name) != 1) {
        rc = clst_err_set(err, CLST_E_CRYPTO, "could not set the CA issuer name");
        goto out;
    }
    if ((rc = set_serial(x, err)) != CLST_OK ||
        (rc = set_validity(x, now - CLST_PKI_BACKDATE_SECS,
                           now + (int64_t)CLST_PKI_CA_DAYS * DAY_SECS, err)) != CLST_OK ||
        (rc = add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE,pathlen:0", err)) != CLST_OK ||
        (rc = add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign", err)) != CLST_OK ||
        (rc = add_ext(x, x, NID_subject_key_identifier, "hash", err)) != CLST_OK ||
        (rc = add_ext(x, x, NID_authority_key_identifier, "keyid:always", err)) != CLST_OK ||
        (rc = sign(x, key, err)) != CLST_OK) {
        goto out;
    }
    *out_key = key;
    *out_cert = x;
    key = NULL;
    x = NULL;
    rc = CLST_OK;
out:
    EVP_PKEY_free(key);
    X509_free(x);
    return rc;
}

static bool
push_name(GENERAL_NAMES *gens, int type, const char *value)
{
    GENERAL_NAME *g = GENERAL_NAME_new();
    if (g == NULL) {
        return false;
    }
    if (type == GEN_IPADD) {
        ASN1_OCTET_STRING *ip = a2i_IPADDRESS(value);
        if (ip == NULL) {
            GENERAL_NAME_free(g);
            return false;
        }
        GENERAL_NAME_set0_value(g, GEN_IPADD, ip);
    } else {
        ASN1_IA5STRING *s = ASN1_IA5STRING_new();
        if (s == NULL || ASN1_STRING_set(s, value, -1) != 1) {
            ASN1_IA5STRING_free(s);
            GENERAL_NAME_free(g);
            return false;
        }
        GENERAL_NAME_set0_value(g, GEN_DNS, s);
    }
    if (sk_GENERAL_NAME_push(gens, g) <= 0) {
        GENERAL_NAME_free(g);
        return false;
    }
    return true;
}

static bool
same_ip(const char *a, const char *b)
{
    int fa, fb;
    uint8_t ba[16], bb[16];
    if (!is_ip(a, &fa, ba) || !is_ip(b, &fb, bb) || fa != fb) {
        return false;
    }
    return memcmp(ba, bb, fa == AF_INET ? 4 : 16) == 0;
}

static enum clst_status
add_san(X509 *x, const char *host, struct clst_err *err)
{
    enum clst_status rc = CLST_E_CRYPTO;
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
    int family;
    uint8_t b[16];
    char machine[256];
    if (gens == NULL || !push_name(gens, GEN_IPADD, "127.0.0.1") ||
        !push_name(gens, GEN_IPADD, "::1") || !push_name(gens, GEN_DNS, "localhost")) {
        rc = clst_err_set(err, CLST_E_CRYPTO, "could not build the subjectAltName");
        goto out;
    }
    if (is_unspecified(host)) {
        machine_name(machine, sizeof(machine));
        if (machine[0] != '\0' && !push_name(gens, GEN_DNS, machine)) {
            rc = clst_err_set(err, CLST_E_CRYPTO, "could not build the subjectAltName");
            goto out;
        }
    } else if (is_ip(host, &family, b)) {
        if (!same_ip(host, "127.0.0.1") && !same_ip(host, "::1") &&
            !push_name(gens, GEN_IPADD, host)) {
            rc = clst_err_set(err, CLST_E_CRYPTO, "could not build the subjectAltName");
            goto out;
        }
    } else if (strcmp(host, "localhost") != 0 && !push_name(gens, GEN_DNS, host)) {
        rc = clst_err_set(err, CLST_E_CRYPTO, "could not build the subjectAltName");
        goto out;
    }
    if (X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) != 1) {
        rc = clst_err_set(err, CLST_E_CRYPTO, "could not add the subjectAltName");
        goto out;
    }
    rc = CLST_OK;
out:
    GENERAL_NAMES_free(gens);
    return rc;
}

enum clst_status
clst_server_pki_server_issue(EVP_PKEY *ca_key, X509 *ca_cert, const char *host,
                             const struct clst_clock *clock, EVP_PKEY **out_key, X509 **out_cert,
                             struct clst_err *err)
{
    enum clst_status rc = CLST_E_CRYPTO;
    EVP_PKEY *key = NULL;
    X509 *x = NULL;
    if (!clst_server_pki_host_valid(host)) {
        return clst_err_set(err, CLST_E_INVAL, "'%.80s' is not an IP address or DNS name",
                            host != NULL ? host : "(null)");
    }
    if (clock == NULL) {
        clock = clst_clock_system();
    }
    int64_t now = clst_clock_now(clock);
    rc = new_key(&key, err);
    if (rc != CLST_OK) {
        goto out;
    }
    x = X509_new();
    if (x == NULL || X509_set_version(x, X509_VERSION_3) != 1 || X509_set_pubkey(x, key) != 1 ||
        X509_set_issuer_name(x, X509_get_subject_name(ca_cert)) != 1) {
        rc = clst_err_set(err, CLST_E_CRYPTO, "could not create the server certificate");
        goto out;
    }
    X509_NAME *name = X509_get_subject_name(x);
    if ((rc = add_name(name, "O", "Cloister", err)) != CLST_OK ||
        (rc = add_name(name, "CN", host, err)) != CLST_OK || (rc = set_serial(x, err)) != CLST_OK ||
        (rc = set_validity(x, now - CLST_PKI_BACKDATE_SECS,
                           now + (int64_t)CLST_PKI_SERVER_DAYS * DAY_SECS, err)) != CLST_OK) {
        goto out;
    }
    /* Never outlive the issuer. */
    if (ASN1_TIME_compare(X509_get0_notAfter(ca_cert), X509_get0_notAfter(x)) < 0 &&
        X509_set1_notAfter(x, X509_get0_notAfter(ca_cert)) != 1) {
        rc = clst_err_set(err, CLST_E_CRYPTO, "could not set the certificate validity");
        goto out;
    }
    if ((rc = add_ext(x, ca_cert, NID_basic_constraints, "critical,CA:FALSE", err)) != CLST_OK ||
        (rc = add_ext(x, ca_cert, NID_key_usage, "critical,digitalSignature", err)) != CLST_OK ||
        (rc = add_ext(x, ca_cert, NID_ext_key_usage, "serverAuth", err)) != CLST_OK ||
        (rc = add_ext(x, ca_cert, NID_subject_key_identifier, "hash", err)) != CLST_OK ||
        (rc = add_ext(x, ca_cert, NID_authority_key_identifier, "keyid:always", err)) != CLST_OK ||
        (rc = add_san(x, host, err)) != CLST_OK || (rc = sign(x, ca_key, err)) != CLST_OK) {
        goto out;
    }
    *out_key = key;
    *out_cert = x;
    key = NULL;
    x = NULL;
    rc = CLST_OK;
out:
    EVP_PKEY_free(key);
    X509_free(x);
    return rc;
}

bool
clst_server_pki_covers(X509 *cert, const char *host)
{
    int family;
    uint8_t b[16];
    if (cert == NULL || host == NULL) {
        return false;
    }
    if (is_unspecified(host)) {
        /* Bound to every address: clients come over loopback or by the machine's name. */
        char machine[256];
        machine_name(machine, sizeof(machine));
        if (X509_check_ip_asc(cert, "127.0.0.1", 0) != 1) {
            return false;
        }
        return machine[0] == '\0' || X509_check_host(cert, machine, 0, 0, NULL) == 1;
    }
    if (is_ip(host, &family, b)) {
        return X509_check_ip_asc(cert, host, 0) == 1;
    }
    return X509_check_host(cert, host, 0, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, NULL) == 1;
}

bool
clst_server_pki_needs_renewal(X509 *cert, int64_t now)
{
    int before = ASN1_TIME_cmp_time_t(X509_get0_notBefore(cert), (time_t)now);
    int after = ASN1_TIME_cmp_time_t(X509_get0_notAfter(cert),
                                     (time_t)(now + (int64_t)CLST_PKI_RENEW_DAYS * DAY_SECS));
    /* -2 is an error: renew rather than trust an unreadable time. */
    return before == -2 || after == -2 || before > 0 || after < 0;
}

enum clst_status
clst_server_cert_fingerprint(X509 *cert, uint8_t out[static 32],
                             char text[static CLST_FINGERPRINT_TEXT_SIZE])
{
    static const char hexdig[] = "0123456789ABCDEF";
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    if (cert == NULL || X509_digest(cert, EVP_sha256(), md, &len) != 1 || len != 32) {
        return CLST_E_CRYPTO;
    }
    for (size_t i = 0; i < 32; i++) {
        text[i * 3] = hexdig[md[i] >> 4];
        text[i * 3 + 1] = hexdig[md[i] & 0x0f];
        text[i * 3 + 2] = i + 1 < 32 ? ':' : '\0';
    }
    memcpy(out, md, 32);
    return CLST_OK;
}
