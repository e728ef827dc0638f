/* Unit tests for src/server/pki.c: the local CA and the server certificates it issues. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/x509v3.h>

#include "server/server_int.h"
#include "test_util.h"

#define T0  1767225600 /* 2026-01-01T00:00:00Z */
#define DAY 86400

struct pki {
    struct clst_clock clock;
    EVP_PKEY *ca_key;
    X509 *ca;
};

static int
setup(void **state)
{
    struct pki *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        return -1;
    }
    clst_clock_fixed_init(&p->clock, T0);
    if (clst_server_pki_ca_create(&p->clock, &p->ca_key, &p->ca, NULL) != CLST_OK) {
        free(p);
        return -1;
    }
    *state = p;
    return 0;
}

static int
teardown(void **state)
{
    struct pki *p = *state;
    EVP_PKEY_free(p->ca_key);
    X509_free(p->ca);
    free(p);
    return 0;
}

/* Verifies leaf against ca as a TLS server certificate at time `at`; returns the X509 error. */
static int
verify_at(X509 *ca, X509 *leaf, int64_t at)
{
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    assert_non_null(store);
    assert_non_null(ctx);
    assert_int_equal(X509_STORE_add_cert(store, ca), 1);
    assert_int_equal(X509_STORE_CTX_init(ctx, store, leaf, NULL), 1);
    X509_VERIFY_PARAM *vp = X509_STORE_CTX_get0_param(ctx);
    X509_VERIFY_PARAM_set_time(vp, (time_t)at);
    assert_int_equal(X509_VERIFY_PARAM_set_purpose(vp, X509_PURPOSE_SSL_SERVER), 1);
    int ok = X509_verify_cert(ctx);
    int e = ok == 1 ? X509_V_OK : X509_STORE_CTX_get_error(ctx);
    if (ok != 1 && e == X509_V_OK) {
        e = -1;
    }
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    return e;
}

static bool
is_p256(const EVP_PKEY *k)
{
    char group[64];
    size_t len = 0;
    return EVP_PKEY_is_a(k, "EC") && EVP_PKEY_get_group_name(k, group, sizeof(group), &len) == 1 &&
           strcmp(group, "prime256v1") == 0;
}

static void
test_ca(void **state)
{
    struct pki *p = *state;
    X509 *ca = p->ca;
    assert_int_equal(X509_get_version(ca), X509_VERSION_3);
    assert_true(is_p256(p->ca_key));
    /* Self-signed and marked as a CA limited to one level, for signing certificates only. */
    EVP_PKEY *pub = X509_get0_pubkey(ca);
    assert_non_null(pub);
    assert_int_equal(X509_verify(ca, pub), 1);
    assert_int_equal(X509_check_ca(ca), 1);
    BASIC_CONSTRAINTS *bc = X509_get_ext_d2i(ca, NID_basic_constraints, NULL, NULL);
    assert_non_null(bc);
    assert_true(bc->ca);
    assert_non_null(bc->pathlen);
    assert_int_equal(ASN1_INTEGER_get(bc->pathlen), 0);
    BASIC_CONSTRAINTS_free(bc);
    uint32_t ku = X509_get_key_usage(ca);
    assert_true((ku & KU_KEY_CERT_SIGN) != 0);
    assert_true((ku & KU_CRL_SIGN) != 0);
    assert_true((ku & KU_DIGITAL_SIGNATURE) == 0);
    assert_non_null(X509_get0_subject_key_id(ca));
    assert_non_null(X509_get0_authority_key_id(ca));
    /* Validity from the injected clock: backdated an hour, ten years long. */
    assert_int_equal(ASN1_TIME_cmp_time_t(X509_get0_notBefore(ca), T0 - 3600), 0);
    assert_int_equal(ASN1_TIME_cmp_time_t(X509_get0_notAfter(ca), T0 + 3652LL * DAY), 0);
    /* A positive 16-byte random serial. */
    const ASN1_INTEGER *serial = X509_get0_serialNumber(ca);
    BIGNUM *bn = ASN1_INTEGER_to_BN(serial, NULL);
    assert_non_null(bn);
    assert_false(BN_is_negative(bn));
    assert_int_equal(BN_num_bytes(bn), 16);
    BN_free(bn);
    char cn[128];
    assert_true(
        X509_NAME_get_text_by_NID(X509_get_subject_name(ca), NID_commonName, cn, sizeof(cn)) > 0);
    assert_non_null(strstr(cn, "Cloister local CA "));
    /* Two CAs differ (keys, serials, names). */
    EVP_PKEY *k2 = NULL;
    X509 *ca2 = NULL;
    assert_int_equal(clst_server_pki_ca_create(&p->clock, &k2, &ca2, NULL), CLST_OK);
    assert_int_not_equal(EVP_PKEY_eq(p->ca_key, k2), 1);
    assert_int_not_equal(ASN1_INTEGER_cmp(serial, X509_get0_serialNumber(ca2)), 0);
    EVP_PKEY_free(k2);
    X509_free(ca2);
}

static void
test_server_cert(void **state)
{
    struct pki *p = *state;
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    assert_int_equal(clst_server_pki_server_issue(p->ca_key, p->ca, "vault.example.com", &p->clock,
                                                  &key, &cert, NULL),
                     CLST_OK);
    assert_int_equal(X509_check_private_key(cert, key), 1);
    assert_true(is_p256(key));
    assert_int_equal(verify_at(p->ca, cert, T0), X509_V_OK);
    /* Not a CA, serverAuth only, digitalSignature only. */
    assert_int_equal(X509_check_ca(cert), 0);
    assert_true((X509_get_extended_key_usage(cert) & XKU_SSL_SERVER) != 0);
    assert_true((X509_get_extended_key_usage(cert) & XKU_SSL_CLIENT) == 0);
    assert_int_equal(X509_get_key_usage(cert), KU_DIGITAL_SIGNATURE);
    /* Names: the host plus the loopback names, nothing else. */
    assert_true(clst_server_pki_covers(cert, "vault.example.com"));
    assert_true(clst_server_pki_covers(cert, "127.0.0.1"));
    assert_true(clst_server_pki_covers(cert, "::1"));
    assert_true(clst_server_pki_covers(cert, "localhost"));
    assert_false(clst_server_pki_covers(cert, "other.example.com"));
    assert_false(clst_server_pki_covers(cert, "example.com"));
    assert_false(clst_server_pki_covers(cert, "x.vault.example.com"));
    assert_false(clst_server_pki_covers(cert, "10.0.0.1"));
    GENERAL_NAMES *gens = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    assert_non_null(gens);
    assert_int_equal(sk_GENERAL_NAME_num(gens), 4);
    GENERAL_NAMES_free(gens);
    /* Validity: 397 days from the clock, renewal 30 days before the end. */
    assert_int_equal(ASN1_TIME_cmp_time_t(X509_get0_notAfter(cert), T0 + 397LL * DAY), 0);
    assert_false(clst_server_pki_needs_renewal(cert, T0));
    assert_false(clst_server_pki_needs_renewal(cert, T0 + 366LL * DAY));
    assert_true(clst_server_pki_needs_renewal(cert, T0 + 368LL * DAY));
    assert_true(clst_server_pki_needs_renewal(cert, T0 - 2 * 3600)); /* not yet valid */
    assert_int_not_equal(verify_at(p->ca, cert, T0 + 398LL * DAY), X509_V_OK);
    /* Another CA does not vouch for it. */
    EVP_PKEY *k2 = NULL;
    X509 *ca2 = NULL;
    assert_int_equal(clst_server_pki_ca_create(&p->clock, &k2, &ca2, NULL), CLST_OK);
    assert_int_not_equal(verify_at(ca2, cert, T0), X509_V_OK);
    EVP_PKEY_free(k2);
    X509_free(ca2);
    EVP_PKEY_free(key);
    X509_free(cert);
}

static void
test_server_ip_hosts(void **state)
{
    struct pki *p = *state;
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    assert_int_equal(
        clst_server_pki_server_issue(p->ca_key, p->ca, "10.1.2.3", &p->clock, &key, &cert, NULL),
        CLST_OK);
    assert_true(clst_server_pki_covers(cert, "10.1.2.3"));
    assert_false(clst_server_pki_covers(cert, "10.1.2.4"));
    EVP_PKEY_free(key);
    X509_free(cert);
    /* The loopback host is not listed twice. */
    assert_int_equal(
        clst_server_pki_server_issue(p->ca_key, p->ca, "127.0.0.1", &p->clock, &key, &cert, NULL),
        CLST_OK);
    GENERAL_NAMES *gens = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    assert_int_equal(sk_GENERAL_NAME_num(gens), 3);
    GENERAL_NAMES_free(gens);
    EVP_PKEY_free(key);
    X509_free(cert);
    assert_int_equal(
        clst_server_pki_server_issue(p->ca_key, p->ca, "fd00::17", &p->clock, &key, &cert, NULL),
        CLST_OK);
    assert_true(clst_server_pki_covers(cert, "fd00::17"));
    assert_true(clst_server_pki_covers(cert, "fd00:0::17")); /* same address, other spelling */
    EVP_PKEY_free(key);
    X509_free(cert);
    /* Bound to every address: loopback plus the machine's name (when it is a DNS name). */
    assert_int_equal(
        clst_server_pki_server_issue(p->ca_key, p->ca, "0.0.0.0", &p->clock, &key, &cert, NULL),
        CLST_OK);
    assert_true(clst_server_pki_covers(cert, "0.0.0.0"));
    assert_true(clst_server_pki_covers(cert, "127.0.0.1"));
    assert_false(clst_server_pki_covers(cert, "0.0.0.1"));
    char machine[256];
    if (gethostname(machine, sizeof(machine)) == 0 && clst_server_pki_host_valid(machine) &&
        strcmp(machine, "localhost") != 0) {
        assert_true(clst_server_pki_covers(cert, machine));
    }
    EVP_PKEY_free(key);
    X509_free(cert);
}

static void
test_server_never_outlives_ca(void **state)
{
    struct pki *p = *state;
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    struct clst_clock late;
    clst_clock_fixed_init(&late, T0 + (3652LL - 100) * DAY);
    assert_int_equal(
        clst_server_pki_server_issue(p->ca_key, p->ca, "localhost", &late, &key, &cert, NULL),
        CLST_OK);
    assert_int_equal(ASN1_TIME_compare(X509_get0_notAfter(cert), X509_get0_notAfter(p->ca)), 0);
    assert_int_equal(verify_at(p->ca, cert, T0 + (3652LL - 100) * DAY), X509_V_OK);
    EVP_PKEY_free(key);
    X509_free(cert);
}

static void
test_host_validation(void **state)
{
    struct pki *p = *state;
    static const char *const good[] = {"localhost", "a",         "vault.example.com",
                                       "x-1.y2",    "127.0.0.1", "::1",
                                       "fe80::1",   "0.0.0.0",   "A.B.C"};
    static const char *const bad[] = {"",     "-a",          "a-",  "a..b", ".a",
                                      "a.",   "a b",         "a_b", "a/b",  "a,DNS:evil",
                                      "a\"b", "caf\xc3\xa9", "a:b"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        assert_true(clst_server_pki_host_valid(good[i]));
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_false(clst_server_pki_host_valid(bad[i]));
    }
    assert_false(clst_server_pki_host_valid(NULL));
    char label[80];
    memset(label, 'a', 64);
    label[64] = '\0';
    assert_false(clst_server_pki_host_valid(label)); /* a label longer than 63 */
    label[63] = '\0';
    assert_true(clst_server_pki_host_valid(label));
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    struct clst_err err;
    assert_int_equal(clst_server_pki_server_issue(p->ca_key, p->ca, "a,DNS:evil.com", &p->clock,
                                                  &key, &cert, &err),
                     CLST_E_INVAL);
    assert_null(key);
    assert_null(cert);
}

static void
test_fingerprint(void **state)
{
    struct pki *p = *state;
    uint8_t fp[32];
    char text[CLST_FINGERPRINT_TEXT_SIZE];
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    assert_int_equal(clst_server_cert_fingerprint(p->ca, fp, text), CLST_OK);
    assert_int_equal(X509_digest(p->ca, EVP_sha256(), md, &len), 1);
    assert_int_equal(len, 32);
    assert_memory_equal(fp, md, 32);
    assert_int_equal(strlen(text), 95);
    char expect[4];
    for (size_t i = 0; i < 32; i++) {
        snprintf(expect, sizeof(expect), "%02X", md[i]);
        assert_memory_equal(text + 3 * i, expect, 2);
        if (i < 31) {
            assert_int_equal(text[3 * i + 2], ':');
        }
    }
    assert_int_equal(clst_server_cert_fingerprint(NULL, fp, text), CLST_E_CRYPTO);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ca, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_cert, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_ip_hosts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_never_outlives_ca, setup, teardown),
        cmocka_unit_test_setup_teardown(test_host_validation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fingerprint, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
