/*
 * The Intel SGX Root CA, pinned in the binary: the trust anchor of every DCAP quote (TDX, SGX)
 * and of Intel's signed collateral. It is never taken from a quote or from collateral: callers
 * pass it as clst_evidence_input.roots (clst_evidence_intel_roots()).
 *
 * Origin: Intel, "Intel SGX Provisioning Certification Root CA" as distributed by Intel PCS
 * (https://certificates.trustedservices.intel.com/Intel_SGX_Provisioning_Certification_RootCA.pem),
 * byte-identical to the copies in automata-network/dcap-rs (data/) and google/go-tdx-guest
 * (verify/trusted_root.pem); tests/vectors/tdx/dcap-rs/ keeps a copy.
 *   Subject/issuer: CN=Intel SGX Root CA, O=Intel Corporation, L=Santa Clara, ST=CA, C=US
 *   Serial 22650CD65A9D3489F383B49552BF501B392706AC, EC P-256, ecdsa-with-SHA256,
 *   valid 2018-05-21T10:45:10Z .. 2049-12-31T23:59:59Z
 *   SHA-256 fingerprint (of the DER):
 *   44:A0:19:6B:2B:99:F8:89:B8:E1:49:E9:5B:80:7A:35:0E:74:24:96:43:99:E8:85:A7:CB:B8:CC:FA:B6:74:D3
 * The fingerprint is checked every time the certificate is loaded.
 */
#include <string.h>

#include <openssl/crypto.h>

#include "evidence/dcap_int.h"

static const char intel_sgx_root_ca_pem[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIICjzCCAjSgAwIBAgIUImUM1lqdNInzg7SVUr9QGzknBqwwCgYIKoZIzj0EAwIw\n"
    "aDEaMBgGA1UEAwwRSW50ZWwgU0dYIFJvb3QgQ0ExGjAYBgNVBAoMEUludGVsIENv\n"
    "cnBvcmF0aW9uMRQwEgYDVQQHDAtTYW50YSBDbGFyYTELMAkGA1UECAwCQ0ExCzAJ\n"
    "BgNVBAYTAlVTMB4XDTE4MDUyMTEwNDUxMFoXDTQ5MTIzMTIzNTk1OVowaDEaMBgG\n"
    "A1UEAwwRSW50ZWwgU0dYIFJvb3QgQ0ExGjAYBgNVBAoMEUludGVsIENvcnBvcmF0\n"
    "aW9uMRQwEgYDVQQHDAtTYW50YSBDbGFyYTELMAkGA1UECAwCQ0ExCzAJBgNVBAYT\n"
    "AlVTMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEC6nEwMDIYZOj/iPWsCzaEKi7\n"
    "1OiOSLRFhWGjbnBVJfVnkY4u3IjkDYYL0MxO4mqsyYjlBalTVYxFP2sJBK5zlKOB\n"
    "uzCBuDAfBgNVHSMEGDAWgBQiZQzWWp00ifODtJVSv1AbOScGrDBSBgNVHR8ESzBJ\n"
    "MEegRaBDhkFodHRwczovL2NlcnRpZmljYXRlcy50cnVzdGVkc2VydmljZXMuaW50\n"
    "ZWwuY29tL0ludGVsU0dYUm9vdENBLmRlcjAdBgNVHQ4EFgQUImUM1lqdNInzg7SV\n"
    "Ur9QGzknBqwwDgYDVR0PAQH/BAQDAgEGMBIGA1UdEwEB/wQIMAYBAf8CAQEwCgYI\n"
    "KoZIzj0EAwIDSQAwRgIhAOW/5QkR+S9CiSDcNoowLuPRLsWGf/Yi7GSX94BgwTwg\n"
    "AiEA4J0lrHoMs+Xo5o/sX6O9QWxHRAvZUGOdRQ7cvqRXaqI=\n"
    "-----END CERTIFICATE-----\n";

static const uint8_t intel_sgx_root_ca_sha256[CLST_SHA256_SIZE] = {
    0x44, 0xA0, 0x19, 0x6B, 0x2B, 0x99, 0xF8, 0x89, 0xB8, 0xE1, 0x49, 0xE9, 0x5B, 0x80, 0x7A, 0x35,
    0x0E, 0x74, 0x24, 0x96, 0x43, 0x99, 0xE8, 0x85, 0xA7, 0xCB, 0xB8, 0xCC, 0xFA, 0xB6, 0x74, 0xD3,
};

enum clst_status
clst_evidence_intel_roots(STACK_OF(X509) * *out, struct clst_err *err)
{
    enum clst_status rc = CLST_E_INTERNAL;
    X509 *root = NULL;
    STACK_OF(X509) *roots = NULL;
    unsigned char *der = NULL;
    uint8_t digest[CLST_SHA256_SIZE];

    if (out == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "no output for the Intel root");
    }
    rc = clst_x509_from_pem(intel_sgx_root_ca_pem, sizeof(intel_sgx_root_ca_pem) - 1, &root, err);
    if (rc != CLST_OK) {
        rc = clst_err_set(err, CLST_E_INTERNAL, "the pinned Intel SGX Root CA does not parse");
        goto out;
    }
    int der_size = i2d_X509(root, &der);
    if (der_size <= 0 || clst_sha256(der, (size_t)der_size, digest) != CLST_OK ||
        CRYPTO_memcmp(digest, intel_sgx_root_ca_sha256, sizeof(digest)) != 0) {
        rc = clst_err_set(err, CLST_E_INTERNAL,
                          "the pinned Intel SGX Root CA does not have its recorded fingerprint");
        goto out;
    }
    roots = sk_X509_new_null();
    if (roots == NULL || sk_X509_push(roots, root) <= 0) {
        rc = clst_err_set(err, CLST_E_NOMEM, "out of memory");
        goto out;
    }
    root = NULL;
    *out = roots;
    roots = NULL;
    rc = CLST_OK;
out:
    OPENSSL_free(der);
    X509_free(root);
    sk_X509_pop_free(roots, X509_free);
    return rc;
}
