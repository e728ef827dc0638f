/* Unit tests for src/crypto/x509.c: certificate, bundle and CRL parsing, and chain verification
 * at an injected time, on real AMD SEV-SNP chains (tests/vectors/x509/, see its README: RSA-PSS
 * signed ARK/ASK, VCEKs with serial number 0) and on chains generated here (expired leaf, time
 * before notBefore, wrong root, missing intermediate, partial chain, revocation through CRLs,
 * expired CRL, CRL signed by the wrong key, tampered signature). */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cloister/crypto.h>

#include "test_util.h"

#define T_2024 1704067200 /* 2024-01-01T00:00:00Z */
#define T_2025 1735689600 /* 2025-01-01T00:00:00Z */
#define DAY    86400

/* ---- helpers -------------------------------------------------------------------------------- */

static unsigned char *
read_vector(const char *name, size_t *size)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/x509/%s", CLST_VECTORS_DIR, name);
    unsigned char *data = tu_read_file(path, size);
    if (data == NULL) {
        fail_msg("cannot read %s", path);
    }
    return data;
}

static X509 *
vector_der(const char *name)
{
    size_t size;
    unsigned char *data = read_vector(name, &size);
    X509 *cert = NULL;
    struct clst_err err;
    if (clst_x509_from_der(data, size, &cert, &err) != CLST_OK) {
        fail_msg("%s: %s", name, err.msg);
    }
    free(data);
    return cert;
}

static STACK_OF(X509) * vector_bundle(const char *name)
{
    size_t size;
    unsigned char *data = read_vector(name, &size);
    STACK_OF(X509) *certs = NULL;
    struct clst_err err;
    if (clst_x509_stack_from_pem(data, size, &certs, &err) != CLST_OK) {
        fail_msg("%s: %s", name, err.msg);
    }
    free(data);
    return certs;
}

/* A stack holding (new references to) the given certificates. */
static STACK_OF(X509) * stack_of(X509 *a, X509 *b)
{
    STACK_OF(X509) *s = sk_X509_new_null();
    assert_non_null(s);
    if (a != NULL) {
        assert_int_equal(X509_up_ref(a), 1);
        assert_true(sk_X509_push(s, a) > 0);
    }
    if (b != NULL) {
        assert_int_equal(X509_up_ref(b), 1);
        assert_true(sk_X509_push(s, b) > 0);
    }
    return s;
}

static void
free_stack(STACK_OF(X509) * s)
{
    sk_X509_pop_free(s, X509_free);
}

/* Verification must fail with a message naming `subject_part` and `reason_part`. */
static void
expect_chain_fail(X509 *leaf, STACK_OF(X509) * untrusted, STACK_OF(X509) * roots,
                  STACK_OF(X509_CRL) * crls, int64_t at, const char *subject_part,
                  const char *reason_part)
{
    struct clst_err err;
    STACK_OF(X509) *chain = NULL;
    clst_err_clear(&err);
    assert_int_equal(clst_x509_verify_chain(leaf, untrusted, roots, crls, at, &chain, &err),
                     CLST_E_VERIFY);
    assert_null(chain);
    if (subject_part != NULL && strstr(err.msg, subject_part) == NULL) {
        fail_msg("message \"%s\" does not name \"%s\"", err.msg, subject_part);
    }
    if (reason_part != NULL && strstr(err.msg, reason_part) == NULL) {
        fail_msg("message \"%s\" does not say \"%s\"", err.msg, reason_part);
    }
}

/* ---- generated chains ----------------------------------------------------------------------- */

static void
add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    assert_non_null(ext);
    assert_int_equal(X509_add_ext(cert, ext, -1), 1);
    X509_EXTENSION_free(ext);
}

/* A certificate for `key` named CN=cn, signed by issuer_key (self-signed when issuer is NULL). */
static X509 *
make_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key, int64_t not_before,
          int64_t not_after, bool ca, long serial)
{
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    assert_non_null(x);
    assert_non_null(name);
    assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), serial), 1);
    assert_int_equal(
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0),
        1);
    assert_int_equal(X509_set_subject_name(x, name), 1);
    assert_int_equal(X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer) : name),
                     1);
    assert_non_null(ASN1_TIME_set(X509_getm_notBefore(x), (time_t)not_before));
    assert_non_null(ASN1_TIME_set(X509_getm_notAfter(x), (time_t)not_after));
    assert_int_equal(X509_set_pubkey(x, key), 1);
    X509 *iss = issuer != NULL ? issuer : x;
    add_ext(x, iss, NID_basic_constraints, ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
    add_ext(x, iss, NID_key_usage,
            ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature");
    add_ext(x, iss, NID_subject_key_identifier, "hash");
    if (issuer != NULL) {
        add_ext(x, iss, NID_authority_key_identifier, "keyid:always");
    }
    assert_true(X509_sign(x, issuer_key, EVP_sha256()) > 0);
    X509_NAME_free(name);
    return x;
}

static X509_CRL *
make_crl(X509 *issuer, EVP_PKEY *key, int64_t last, int64_t next, const long *revoked, size_t count)
{
    X509_CRL *crl = X509_CRL_new();
    ASN1_TIME *t_last = ASN1_TIME_new(), *t_next = ASN1_TIME_new();
    assert_non_null(crl);
    assert_int_equal(X509_CRL_set_version(crl, 1), 1); /* v2 */
    assert_int_equal(X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer)), 1);
    assert_non_null(ASN1_TIME_set(t_last, (time_t)last));
    assert_non_null(ASN1_TIME_set(t_next, (time_t)next));
    assert_int_equal(X509_CRL_set1_lastUpdate(crl, t_last), 1);
    assert_int_equal(X509_CRL_set1_nextUpdate(crl, t_next), 1);
    for (size_t i = 0; i < count; i++) {
        X509_REVOKED *r = X509_REVOKED_new();
        ASN1_INTEGER *serial = ASN1_INTEGER_new();
        assert_int_equal(ASN1_INTEGER_set(serial, revoked[i]), 1);
        assert_int_equal(X509_REVOKED_set_serialNumber(r, serial), 1);
        assert_int_equal(X509_REVOKED_set_revocationDate(r, t_last), 1);
        assert_int_equal(X509_CRL_add0_revoked(crl, r), 1);
        ASN1_INTEGER_free(serial);
    }
    assert_int_equal(X509_CRL_sort(crl), 1);
    assert_true(X509_CRL_sign(crl, key, EVP_sha256()) > 0);
    ASN1_TIME_free(t_last);
    ASN1_TIME_free(t_next);
    return crl;
}

struct pki {
    EVP_PKEY *root_key, *int_key, *leaf_key, *other_key;
    X509 *root, *inter, *leaf, *other_root, *expired_leaf;
};

static int
setup(void **state)
{
    struct pki *p = calloc(1, sizeof(*p));
    if (p == NULL || clst_ec_generate(CLST_CURVE_P384, &p->root_key) != CLST_OK ||
        clst_ec_generate(CLST_CURVE_P256, &p->int_key) != CLST_OK ||
        clst_ec_generate(CLST_CURVE_P256, &p->leaf_key) != CLST_OK ||
        clst_ec_generate(CLST_CURVE_P384, &p->other_key) != CLST_OK) {
        return -1;
    }
    p->root = make_cert("Test Root", p->root_key, NULL, p->root_key, T_2024 - 3650 * DAY,
                        T_2024 + 3650 * DAY, true, 1);
    p->inter = make_cert("Test Intermediate", p->int_key, p->root, p->root_key, T_2024 - 365 * DAY,
                         T_2024 + 5 * 365 * DAY, true, 2);
    p->leaf = make_cert("Test Leaf", p->leaf_key, p->inter, p->int_key, T_2024 - 30 * DAY,
                        T_2024 + 30 * DAY, false, 3);
    /* Same name as the real root, another key. */
    p->other_root = make_cert("Test Root", p->other_key, NULL, p->other_key, T_2024 - 3650 * DAY,
                              T_2024 + 3650 * DAY, true, 1);
    p->expired_leaf = make_cert("Expired Leaf", p->leaf_key, p->inter, p->int_key,
                                T_2024 - 60 * DAY, T_2024 - DAY, false, 4);
    *state = p;
    return 0;
}

static int
teardown(void **state)
{
    struct pki *p = *state;
    EVP_PKEY_free(p->root_key);
    EVP_PKEY_free(p->int_key);
    EVP_PKEY_free(p->leaf_key);
    EVP_PKEY_free(p->other_key);
    X509_free(p->root);
    X509_free(p->inter);
    X509_free(p->leaf);
    X509_free(p->other_root);
    X509_free(p->expired_leaf);
    free(p);
    return 0;
}

static void
test_generated_chain(void **state)
{
    struct pki *p = *state;
    STACK_OF(X509) *untrusted = stack_of(p->inter, NULL);
    STACK_OF(X509) *roots = stack_of(p->root, NULL);
    STACK_OF(X509) *chain = NULL;
    struct clst_err err;

    assert_int_equal(clst_x509_verify_chain(p->leaf, untrusted, roots, NULL, T_2024, &chain, &err),
                     CLST_OK);
    assert_int_equal(sk_X509_num(chain), 3);
    assert_int_equal(X509_cmp(sk_X509_value(chain, 0), p->leaf), 0);
    assert_int_equal(X509_cmp(sk_X509_value(chain, 1), p->inter), 0);
    assert_int_equal(X509_cmp(sk_X509_value(chain, 2), p->root), 0);
    free_stack(chain);
    /* Without out_chain. */
    assert_int_equal(clst_x509_verify_chain(p->leaf, untrusted, roots, NULL, T_2024, NULL, &err),
                     CLST_OK);
    /* The edges of the leaf's validity: notBefore is inclusive; OpenSSL treats notAfter as the
     * first invalid second (RFC 5280 would include it; the difference is one second). */
    assert_int_equal(
        clst_x509_verify_chain(p->leaf, untrusted, roots, NULL, T_2024 - 30 * DAY, NULL, &err),
        CLST_OK);
    assert_int_equal(
        clst_x509_verify_chain(p->leaf, untrusted, roots, NULL, T_2024 + 30 * DAY - 1, NULL, &err),
        CLST_OK);
    expect_chain_fail(p->leaf, untrusted, roots, NULL, T_2024 - 30 * DAY - 1, "CN=Test Leaf",
                      "certificate is not yet valid");
    expect_chain_fail(p->leaf, untrusted, roots, NULL, T_2024 + 30 * DAY, "CN=Test Leaf",
                      "certificate has expired");

    /* Time outside the leaf's validity. */
    expect_chain_fail(p->leaf, untrusted, roots, NULL, T_2024 + 31 * DAY, "CN=Test Leaf",
                      "certificate has expired");
    expect_chain_fail(p->leaf, untrusted, roots, NULL, T_2024 - 31 * DAY, "CN=Test Leaf",
                      "certificate is not yet valid");
    /* Before the intermediate's notBefore: the intermediate is named. */
    expect_chain_fail(p->expired_leaf, untrusted, roots, NULL, T_2024 - 366 * DAY,
                      "CN=", "not yet valid");
    /* An expired leaf at the reference time. */
    expect_chain_fail(p->expired_leaf, untrusted, roots, NULL, T_2024, "CN=Expired Leaf",
                      "certificate has expired");
    /* A root of the same name with another key (its key identifier does not match the
     * intermediate's authority key identifier, so it is not taken as the issuer). */
    STACK_OF(X509) *wrong = stack_of(p->other_root, NULL);
    expect_chain_fail(p->leaf, untrusted, wrong, NULL, T_2024, "CN=Test Intermediate",
                      "unable to get local issuer certificate");
    free_stack(wrong);
    /* Missing intermediate. */
    expect_chain_fail(p->leaf, NULL, roots, NULL, T_2024, "CN=Test Leaf", "issuer certificate");
    /* The intermediate as a trust anchor: partial chains are not allowed. */
    STACK_OF(X509) *inter_root = stack_of(p->inter, NULL);
    expect_chain_fail(p->leaf, NULL, inter_root, NULL, T_2024, "CN=Test Intermediate",
                      "issuer certificate");
    free_stack(inter_root);
    /* The root smuggled in among the untrusted certificates does not anchor anything. */
    STACK_OF(X509) *both = stack_of(p->inter, p->root);
    STACK_OF(X509) *other = stack_of(p->other_root, NULL);
    expect_chain_fail(p->leaf, both, other, NULL, T_2024, NULL, NULL);
    free_stack(other);
    /* Both roots trusted: the right one is found (by the authority key identifier). */
    STACK_OF(X509) *two_roots = stack_of(p->other_root, p->root);
    assert_int_equal(
        clst_x509_verify_chain(p->leaf, untrusted, two_roots, NULL, T_2024, NULL, &err), CLST_OK);
    free_stack(two_roots);
    free_stack(both);

    /* A flipped bit in the leaf's signature. */
    unsigned char *der = NULL;
    int len = i2d_X509(p->leaf, &der);
    assert_true(len > 0);
    der[len - 5] ^= 0x01;
    X509 *bad = NULL;
    assert_int_equal(clst_x509_from_der(der, (size_t)len, &bad, &err), CLST_OK);
    expect_chain_fail(bad, untrusted, roots, NULL, T_2024, "CN=Test Leaf",
                      "certificate signature failure");
    X509_free(bad);
    OPENSSL_free(der);

    /* Contract violations. */
    assert_int_equal(clst_x509_verify_chain(NULL, untrusted, roots, NULL, T_2024, NULL, &err),
                     CLST_E_INVAL);
    assert_int_equal(clst_x509_verify_chain(p->leaf, untrusted, NULL, NULL, T_2024, NULL, &err),
                     CLST_E_INVAL);
    STACK_OF(X509) *empty = sk_X509_new_null();
    assert_int_equal(clst_x509_verify_chain(p->leaf, untrusted, empty, NULL, T_2024, NULL, &err),
                     CLST_E_INVAL);
    sk_X509_free(empty);
    assert_int_equal(clst_x509_verify_chain(p->leaf, untrusted, roots, NULL, -1, NULL, &err),
                     CLST_E_INVAL);
    free_stack(untrusted);
    free_stack(roots);
}

static void
test_crl(void **state)
{
    struct pki *p = *state;
    STACK_OF(X509) *untrusted = stack_of(p->inter, NULL);
    STACK_OF(X509) *roots = stack_of(p->root, NULL);
    STACK_OF(X509_CRL) *crls = sk_X509_CRL_new_null();
    struct clst_err err;
    int64_t last = T_2024 - DAY, next = T_2024 + 7 * DAY;
    static const long leaf_serial = 3, inter_serial = 2, unrelated = 99;

    X509_CRL *root_crl = make_crl(p->root, p->root_key, last, next, &unrelated, 1);
    X509_CRL *int_crl = make_crl(p->inter, p->int_key, last, next, NULL, 0);
    X509_CRL *int_crl_revoking = make_crl(p->inter, p->int_key, last, next, &leaf_serial, 1);
    X509_CRL *root_crl_revoking = make_crl(p->root, p->root_key, last, next, &inter_serial, 1);
    X509_CRL *int_crl_expired = make_crl(p->inter, p->int_key, last - 30 * DAY, last, NULL, 0);
    X509_CRL *int_crl_forged = make_crl(p->inter, p->leaf_key, last, next, NULL, 0);

    /* Both CRLs present, nothing revoked: OK. */
    sk_X509_CRL_push(crls, root_crl);
    sk_X509_CRL_push(crls, int_crl);
    assert_int_equal(clst_x509_verify_chain(p->leaf, untrusted, roots, crls, T_2024, NULL, &err),
                     CLST_OK);
    /* After the CRLs' nextUpdate. */
    expect_chain_fail(p->leaf, untrusted, roots, crls, T_2024 + 8 * DAY, NULL, "CRL has expired");

    /* The leaf revoked by the intermediate. */
    sk_X509_CRL_set(crls, 1, int_crl_revoking);
    expect_chain_fail(p->leaf, untrusted, roots, crls, T_2024, "CN=Test Leaf",
                      "certificate revoked");
    /* The intermediate revoked by the root. */
    sk_X509_CRL_set(crls, 1, int_crl);
    sk_X509_CRL_set(crls, 0, root_crl_revoking);
    expect_chain_fail(p->leaf, untrusted, roots, crls, T_2024, "CN=Test Intermediate",
                      "certificate revoked");
    /* The intermediate's CRL missing: the leaf cannot be checked. */
    sk_X509_CRL_set(crls, 0, root_crl);
    (void)sk_X509_CRL_pop(crls);
    expect_chain_fail(p->leaf, untrusted, roots, crls, T_2024, "CN=Test Leaf",
                      "unable to get certificate CRL");
    /* An expired CRL, and one signed by the wrong key. */
    sk_X509_CRL_push(crls, int_crl_expired);
    expect_chain_fail(p->leaf, untrusted, roots, crls, T_2024, "CN=Test Leaf", "CRL has expired");
    sk_X509_CRL_set(crls, 1, int_crl_forged);
    expect_chain_fail(p->leaf, untrusted, roots, crls, T_2024, "CN=Test Leaf",
                      "CRL signature failure");
    /* The root's CRL missing. */
    sk_X509_CRL_set(crls, 1, int_crl);
    (void)sk_X509_CRL_shift(crls);
    expect_chain_fail(p->leaf, untrusted, roots, crls, T_2024, NULL,
                      "unable to get certificate CRL");
    /* An empty list still means "check revocation". */
    (void)sk_X509_CRL_pop(crls);
    expect_chain_fail(p->leaf, untrusted, roots, crls, T_2024, NULL,
                      "unable to get certificate CRL");

    /* CRL parsing: PEM (with leading whitespace) and DER, trailing bytes, garbage. */
    BIO *bio = BIO_new(BIO_s_mem());
    assert_int_equal(BIO_write(bio, "\n  \n", 4), 4);
    assert_int_equal(PEM_write_bio_X509_CRL(bio, int_crl_revoking), 1);
    char *pem;
    long pem_len = BIO_get_mem_data(bio, &pem);
    X509_CRL *parsed = NULL;
    assert_int_equal(clst_x509_crl_from_pem_or_der(pem, (size_t)pem_len, &parsed, &err), CLST_OK);
    assert_int_equal(X509_CRL_cmp(parsed, int_crl_revoking), 0);
    assert_int_equal(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(parsed)), 1);
    X509_CRL_free(parsed);
    parsed = NULL;
    assert_int_equal(clst_x509_crl_from_pem_or_der(pem, (size_t)pem_len - 30, &parsed, &err),
                     CLST_E_MALFORMED);
    BIO_free(bio);
    unsigned char *der = NULL;
    int der_len = i2d_X509_CRL(int_crl_revoking, &der);
    assert_true(der_len > 0);
    assert_int_equal(clst_x509_crl_from_pem_or_der(der, (size_t)der_len, &parsed, &err), CLST_OK);
    X509_CRL_free(parsed);
    parsed = NULL;
    for (int n = 1; n < der_len; n += 13) {
        assert_int_equal(clst_x509_crl_from_pem_or_der(der, (size_t)n, &parsed, &err),
                         CLST_E_MALFORMED);
    }
    unsigned char *longer = malloc((size_t)der_len + 1);
    memcpy(longer, der, (size_t)der_len);
    longer[der_len] = 0;
    assert_int_equal(clst_x509_crl_from_pem_or_der(longer, (size_t)der_len + 1, &parsed, &err),
                     CLST_E_MALFORMED);
    assert_non_null(strstr(err.msg, "trailing"));
    free(longer);
    OPENSSL_free(der);
    assert_int_equal(clst_x509_crl_from_pem_or_der("garbage", 7, &parsed, &err), CLST_E_MALFORMED);
    assert_int_equal(clst_x509_crl_from_pem_or_der("", 0, &parsed, &err), CLST_E_MALFORMED);
    assert_int_equal(clst_x509_crl_from_pem_or_der(NULL, 5, &parsed, &err), CLST_E_INVAL);
    assert_null(parsed);

    sk_X509_CRL_free(crls);
    X509_CRL_free(root_crl);
    X509_CRL_free(int_crl);
    X509_CRL_free(int_crl_revoking);
    X509_CRL_free(root_crl_revoking);
    X509_CRL_free(int_crl_expired);
    X509_CRL_free(int_crl_forged);
    free_stack(untrusted);
    free_stack(roots);
}

static void
test_parse(void **state)
{
    struct pki *p = *state;
    struct clst_err err;
    X509 *cert = NULL;

    /* DER: exact, truncated, with a trailing byte. */
    unsigned char *der = NULL;
    int len = i2d_X509(p->leaf, &der);
    assert_true(len > 0);
    assert_int_equal(clst_x509_from_der(der, (size_t)len, &cert, &err), CLST_OK);
    assert_int_equal(X509_cmp(cert, p->leaf), 0);
    X509_free(cert);
    cert = NULL;
    for (int n = 0; n < len; n++) {
        assert_int_not_equal(clst_x509_from_der(der, (size_t)n, &cert, &err), CLST_OK);
    }
    unsigned char *longer = malloc((size_t)len + 1);
    memcpy(longer, der, (size_t)len);
    longer[len] = 0;
    assert_int_equal(clst_x509_from_der(longer, (size_t)len + 1, &cert, &err), CLST_E_MALFORMED);
    assert_non_null(strstr(err.msg, "trailing"));
    free(longer);
    OPENSSL_free(der);
    assert_int_equal(clst_x509_from_der(NULL, 10, &cert, &err), CLST_E_INVAL);
    assert_int_equal(clst_x509_from_der("x", 1, NULL, &err), CLST_E_INVAL);
    assert_null(cert);

    /* PEM: one certificate, a bundle, truncations, junk. */
    BIO *bio = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_X509(bio, p->leaf), 1);
    assert_int_equal(BIO_write(bio, "some text between blocks\n", 25), 25);
    assert_int_equal(PEM_write_bio_X509(bio, p->inter), 1);
    assert_int_equal(PEM_write_bio_X509(bio, p->root), 1);
    char *pem;
    long pem_len = BIO_get_mem_data(bio, &pem);
    assert_int_equal(clst_x509_from_pem(pem, (size_t)pem_len, &cert, &err), CLST_OK);
    assert_int_equal(X509_cmp(cert, p->leaf), 0);
    X509_free(cert);
    cert = NULL;
    STACK_OF(X509) *certs = NULL;
    assert_int_equal(clst_x509_stack_from_pem(pem, (size_t)pem_len, &certs, &err), CLST_OK);
    assert_int_equal(sk_X509_num(certs), 3);
    assert_int_equal(X509_cmp(sk_X509_value(certs, 2), p->root), 0);
    free_stack(certs);
    certs = NULL;
    /* Cut inside the last certificate: the bundle is refused, not silently shortened. */
    assert_int_equal(clst_x509_stack_from_pem(pem, (size_t)pem_len - 40, &certs, &err),
                     CLST_E_MALFORMED);
    assert_null(certs);
    /* A corrupted base64 body in the middle certificate. */
    char *copy = malloc((size_t)pem_len);
    memcpy(copy, pem, (size_t)pem_len);
    char *second = strstr(strstr(copy, "END CERTIFICATE") + 1, "BEGIN CERTIFICATE");
    second[40] = '!';
    assert_int_equal(clst_x509_stack_from_pem(copy, (size_t)pem_len, &certs, &err),
                     CLST_E_MALFORMED);
    free(copy);
    BIO_free(bio);
    assert_int_equal(clst_x509_from_pem("hello", 5, &cert, &err), CLST_E_MALFORMED);
    assert_int_equal(clst_x509_stack_from_pem("hello\n", 6, &certs, &err), CLST_E_MALFORMED);
    assert_int_equal(clst_x509_from_pem("", 0, &cert, &err), CLST_E_MALFORMED);
    assert_int_equal(clst_x509_stack_from_pem(NULL, 3, &certs, &err), CLST_E_INVAL);
    assert_null(cert);
    assert_null(certs);

    /* 64 certificates are accepted, 65 are not. */
    bio = BIO_new(BIO_s_mem());
    for (int i = 0; i < 64; i++) {
        assert_int_equal(PEM_write_bio_X509(bio, p->leaf), 1);
    }
    pem_len = BIO_get_mem_data(bio, &pem);
    assert_int_equal(clst_x509_stack_from_pem(pem, (size_t)pem_len, &certs, &err), CLST_OK);
    assert_int_equal(sk_X509_num(certs), 64);
    free_stack(certs);
    certs = NULL;
    assert_int_equal(PEM_write_bio_X509(bio, p->leaf), 1);
    pem_len = BIO_get_mem_data(bio, &pem);
    assert_int_equal(clst_x509_stack_from_pem(pem, (size_t)pem_len, &certs, &err), CLST_E_LIMIT);
    assert_null(certs);
    BIO_free(bio);

    /* Oversized input. */
    size_t big = (1u << 20) + 1;
    char *huge = calloc(1, big);
    assert_int_equal(clst_x509_from_pem(huge, big, &cert, &err), CLST_E_LIMIT);
    assert_int_equal(clst_x509_from_der(huge, big, &cert, &err), CLST_E_LIMIT);
    assert_int_equal(clst_x509_stack_from_pem(huge, big, &certs, &err), CLST_E_LIMIT);
    free(huge);
}

/* ---- real AMD SEV-SNP chains ---------------------------------------------------------------- */

static void
test_amd_milan(void **state)
{
    (void)state;
    X509 *vcek = vector_der("milan_vcek.der");
    X509 *vcek2 = vector_der("milan_vcek_trustee.der");
    STACK_OF(X509) *ask_ark = vector_bundle("milan_ask_ark.pem");
    assert_int_equal(sk_X509_num(ask_ark), 2);
    X509 *ask = sk_X509_value(ask_ark, 0), *ark = sk_X509_value(ask_ark, 1);
    STACK_OF(X509) *untrusted = stack_of(ask, NULL);
    STACK_OF(X509) *roots = stack_of(ark, NULL);
    STACK_OF(X509) *chain = NULL;
    struct clst_err err;

    /* The quirks this chain exercises. */
    assert_int_equal(ASN1_INTEGER_get(X509_get0_serialNumber(vcek)), 0);
    assert_int_equal(X509_get_signature_nid(vcek), NID_rsassaPss);
    assert_int_equal(X509_get_signature_nid(ask), NID_rsassaPss);
    assert_int_equal(X509_get_signature_nid(ark), NID_rsassaPss);

    if (clst_x509_verify_chain(vcek, untrusted, roots, NULL, T_2024, &chain, &err) != CLST_OK) {
        fail_msg("Milan VCEK chain: %s", err.msg);
    }
    assert_int_equal(sk_X509_num(chain), 3);
    assert_int_equal(X509_cmp(sk_X509_value(chain, 0), vcek), 0);
    assert_int_equal(X509_cmp(sk_X509_value(chain, 2), ark), 0);
    free_stack(chain);
    if (clst_x509_verify_chain(vcek2, untrusted, roots, NULL, T_2024, NULL, &err) != CLST_OK) {
        fail_msg("second Milan VCEK chain: %s", err.msg);
    }
    /* The whole KDS bundle as untrusted works too (the ARK in it anchors nothing by itself). */
    assert_int_equal(clst_x509_verify_chain(vcek, ask_ark, roots, NULL, T_2024, NULL, &err),
                     CLST_OK);

    /* Validity: VCEK 2022-09-24T00:55:28Z .. 2029-09-24T00:55:28Z. */
    expect_chain_fail(vcek, untrusted, roots, NULL, 1663980927 /* one second early */,
                      "CN=SEV-VCEK", "certificate is not yet valid");
    assert_int_equal(clst_x509_verify_chain(vcek, untrusted, roots, NULL, 1663980928, NULL, &err),
                     CLST_OK);
    expect_chain_fail(vcek, untrusted, roots, NULL, 1884905729 /* 2029-09-24T00:55:29Z */,
                      "CN=SEV-VCEK", "certificate has expired");

    /* The tampered VCEK (edited hwID upstream): its signature fails. */
    X509 *tampered = vector_der("milan_vcek_tampered.der");
    expect_chain_fail(tampered, untrusted, roots, NULL, T_2024, "CN=SEV-VCEK",
                      "certificate signature failure");
    X509_free(tampered);

    /* Missing ASK; the ASK as the only root (partial chain). */
    expect_chain_fail(vcek, NULL, roots, NULL, T_2024, "CN=SEV-VCEK", "issuer certificate");
    STACK_OF(X509) *ask_root = stack_of(ask, NULL);
    expect_chain_fail(vcek, NULL, ask_root, NULL, T_2024, "CN=SEV-Milan", "issuer certificate");
    free_stack(ask_root);

    /* The ASVK (VLEK intermediate) instead of the ASK: same ARK, wrong issuer. */
    STACK_OF(X509) *asvk_ark = vector_bundle("milan_asvk_ark.pem");
    STACK_OF(X509) *asvk = stack_of(sk_X509_value(asvk_ark, 0), NULL);
    expect_chain_fail(vcek, asvk, roots, NULL, T_2024, "CN=SEV-VCEK", "issuer certificate");
    free_stack(asvk);
    free_stack(asvk_ark);

    /* Genoa's ASK and ARK. */
    STACK_OF(X509) *genoa = vector_bundle("genoa_ask_ark.pem");
    STACK_OF(X509) *genoa_untrusted = stack_of(sk_X509_value(genoa, 0), NULL);
    STACK_OF(X509) *genoa_roots = stack_of(sk_X509_value(genoa, 1), NULL);
    expect_chain_fail(vcek, genoa_untrusted, genoa_roots, NULL, T_2024, "CN=SEV-VCEK", NULL);
    /* Milan's ASK under Genoa's ARK. */
    expect_chain_fail(vcek, untrusted, genoa_roots, NULL, T_2024, "CN=SEV-Milan", NULL);
    free_stack(genoa_untrusted);
    free_stack(genoa_roots);
    free_stack(genoa);

    /* Revocation checking without AMD's CRL: refused, naming the VCEK. */
    STACK_OF(X509_CRL) *no_crls = sk_X509_CRL_new_null();
    expect_chain_fail(vcek, untrusted, roots, no_crls, T_2024, "CN=SEV-VCEK",
                      "unable to get certificate CRL");
    sk_X509_CRL_free(no_crls);

    X509_free(vcek);
    X509_free(vcek2);
    free_stack(untrusted);
    free_stack(roots);
    free_stack(ask_ark);
}

static void
test_amd_turin(void **state)
{
    (void)state;
    X509 *vcek = vector_der("turin_vcek.der");
    STACK_OF(X509) *ask_ark = vector_bundle("turin_ask_ark.pem");
    assert_int_equal(sk_X509_num(ask_ark), 2);
    STACK_OF(X509) *untrusted = stack_of(sk_X509_value(ask_ark, 0), NULL);
    STACK_OF(X509) *roots = stack_of(sk_X509_value(ask_ark, 1), NULL);
    struct clst_err err;

    assert_int_equal(ASN1_INTEGER_get(X509_get0_serialNumber(vcek)), 0);
    if (clst_x509_verify_chain(vcek, untrusted, roots, NULL, T_2025, NULL, &err) != CLST_OK) {
        fail_msg("Turin VCEK chain: %s", err.msg);
    }
    /* Issued 2024-11-06: not valid at the start of 2024. */
    expect_chain_fail(vcek, untrusted, roots, NULL, T_2024, "CN=SEV-VCEK",
                      "certificate is not yet valid");
    /* The Milan chain does not anchor a Turin VCEK. */
    STACK_OF(X509) *milan = vector_bundle("milan_ask_ark.pem");
    STACK_OF(X509) *milan_roots = stack_of(sk_X509_value(milan, 1), NULL);
    expect_chain_fail(vcek, milan, milan_roots, NULL, T_2025, "CN=SEV-VCEK", NULL);
    free_stack(milan_roots);
    free_stack(milan);

    /* PEM form of a VCEK parses to the same certificate. */
    BIO *bio = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_X509(bio, vcek), 1);
    char *pem;
    long pem_len = BIO_get_mem_data(bio, &pem);
    X509 *again = NULL;
    assert_int_equal(clst_x509_from_pem(pem, (size_t)pem_len, &again, &err), CLST_OK);
    assert_int_equal(X509_cmp(again, vcek), 0);
    X509_free(again);
    BIO_free(bio);

    X509_free(vcek);
    free_stack(untrusted);
    free_stack(roots);
    free_stack(ask_ark);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generated_chain), cmocka_unit_test(test_crl),
        cmocka_unit_test(test_parse),           cmocka_unit_test(test_amd_milan),
        cmocka_unit_test(test_amd_turin),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
