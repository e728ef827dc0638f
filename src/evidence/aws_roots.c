/*
 * The AWS Nitro Enclaves root this build trusts, compiled in: a verifier never takes the root from
 * a document (its cabundle[0] is only compared with this one). The PEM text is AWS's, with its
 * SHA-256 fingerprint; the fingerprint is checked again when the PEM is parsed (once per process),
 * so a damaged constant fails closed.
 *
 * AWS Nitro Enclaves Root-G1: CN=aws.nitro-enclaves, O=Amazon, OU=AWS, C=US (self-signed),
 * EC P-384, ecdsa-with-SHA384, serial F9:31:75:68:1B:90:AF:E1:1D:46:CC:B4:E4:E7:F8:56,
 * valid 2019-10-28T13:28:05Z .. 2049-10-28T14:28:05Z.
 * Origin: https://aws-nitro-enclaves.amazonaws.com/AWS_NitroEnclaves_Root-G1.zip (root.pem inside;
 * the zip's SHA-256 8cf60e2b2efca96c6a9e71e851d00c1b6991cc09eadbe64a6a1d1b1eb9faff7c is the value
 * AWS publishes in aws-nitro-enclaves-nsm-api docs/attestation_process.md); the copy used here
 * is the one in blocky/nitrite (internal/assets/AWS_NitroEnclaves_Root-G1.zip @ bfba6561, MIT),
 * also kept in tests/vectors/nitro/blocky-nitrite/aws_nitro_root_g1.pem. It is byte-identical to
 * cabundle[0] of every AWS-issued document stored there (tests/unit/evidence/test_nitro_roots.c).
 * SHA-256 fingerprint of the DER certificate (openssl x509 -noout -fingerprint -sha256):
 *   64:1A:03:21:A3:E2:44:EF:E4:56:46:31:95:D6:06:31:7E:D7:CD:CC:3C:17:56:E0:98:93:F3:C6:8F:79:BB:5B
 */
#include <pthread.h>
#include <string.h>

#include <openssl/crypto.h>

#include "evidence/nitro_int.h"

static const char aws_nitro_root_g1_pem[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIICETCCAZagAwIBAgIRAPkxdWgbkK/hHUbMtOTn+FYwCgYIKoZIzj0EAwMwSTEL\n"
    "MAkGA1UEBhMCVVMxDzANBgNVBAoMBkFtYXpvbjEMMAoGA1UECwwDQVdTMRswGQYD\n"
    "VQQDDBJhd3Mubml0cm8tZW5jbGF2ZXMwHhcNMTkxMDI4MTMyODA1WhcNNDkxMDI4\n"
    "MTQyODA1WjBJMQswCQYDVQQGEwJVUzEPMA0GA1UECgwGQW1hem9uMQwwCgYDVQQL\n"
    "DANBV1MxGzAZBgNVBAMMEmF3cy5uaXRyby1lbmNsYXZlczB2MBAGByqGSM49AgEG\n"
    "BSuBBAAiA2IABPwCVOumCMHzaHDimtqQvkY4MpJzbolL//Zy2YlES1BR5TSksfbb\n"
    "48C8WBoyt7F2Bw7eEtaaP+ohG2bnUs990d0JX28TcPQXCEPZ3BABIeTPYwEoCWZE\n"
    "h8l5YoQwTcU/9KNCMEAwDwYDVR0TAQH/BAUwAwEB/zAdBgNVHQ4EFgQUkCW1DdkF\n"
    "R+eWw5b6cp3PmanfS5YwDgYDVR0PAQH/BAQDAgGGMAoGCCqGSM49BAMDA2kAMGYC\n"
    "MQCjfy+Rocm9Xue4YnwWmNJVA44fA0P5W2OpYow9OYCVRaEevL8uO1XYru5xtMPW\n"
    "rfMCMQCi85sWBbJwKKXdS6BptQFuZbT73o/gBh1qUxl/nNr12UO8Yfwr6wPLb+6N\n"
    "IwLz3/Y=\n"
    "-----END CERTIFICATE-----\n";

static const uint8_t aws_nitro_root_g1_sha256[CLST_SHA256_SIZE] = {
    0x64, 0x1a, 0x03, 0x21, 0xa3, 0xe2, 0x44, 0xef, 0xe4, 0x56, 0x46, 0x31, 0x95, 0xd6, 0x06, 0x31,
    0x7e, 0xd7, 0xcd, 0xcc, 0x3c, 0x17, 0x56, 0xe0, 0x98, 0x93, 0xf3, 0xc6, 0x8f, 0x79, 0xbb, 0x5b,
};

static pthread_once_t root_once = PTHREAD_ONCE_INIT;
static X509 *root_cert;
static enum clst_status root_status = CLST_E_INTERNAL;

static void
load_root(void)
{
    X509 *cert = NULL;
    unsigned char *der = NULL;
    uint8_t digest[CLST_SHA256_SIZE];

    if (clst_x509_from_pem(aws_nitro_root_g1_pem, sizeof(aws_nitro_root_g1_pem) - 1, &cert, NULL) !=
        CLST_OK) {
        goto out;
    }
    int der_size = i2d_X509(cert, &der);
    if (der_size <= 0 || clst_sha256(der, (size_t)der_size, digest) != CLST_OK ||
        CRYPTO_memcmp(digest, aws_nitro_root_g1_sha256, sizeof(digest)) != 0) {
        goto out;
    }
    root_cert = cert;
    cert = NULL;
    root_status = CLST_OK;
out:
    OPENSSL_free(der);
    X509_free(cert);
}

enum clst_status
evidence_nitro_builtin_root(X509 **out, struct clst_err *err)
{
    if (out == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "nitro: no output for the AWS root");
    }
    if (pthread_once(&root_once, load_root) != 0 || root_status != CLST_OK) {
        return clst_err_set(err, CLST_E_INTERNAL,
                            "nitro: the AWS Nitro Enclaves root compiled into this build does not "
                            "load or does not match its pinned fingerprint; the build is damaged");
    }
    *out = root_cert;
    return CLST_OK;
}

const char *
evidence_nitro_builtin_root_pem(const uint8_t **out_sha256)
{
    if (out_sha256 != NULL) {
        *out_sha256 = aws_nitro_root_g1_sha256;
    }
    return aws_nitro_root_g1_pem;
}

enum clst_status
clst_evidence_nitro_roots(STACK_OF(X509) **out, struct clst_err *err)
{
    X509 *root = NULL;
    STACK_OF(X509) *stack = NULL;
    enum clst_status rc = CLST_E_INTERNAL;

    if (out == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "nitro: no output for the AWS root");
    }
    rc = evidence_nitro_builtin_root(&root, err);
    if (rc != CLST_OK) {
        return rc;
    }
    stack = sk_X509_new_null();
    if (stack == NULL || X509_up_ref(root) != 1) {
        sk_X509_free(stack);
        return clst_err_set(err, CLST_E_NOMEM, "out of memory");
    }
    if (sk_X509_push(stack, root) <= 0) {
        X509_free(root);
        sk_X509_free(stack);
        return clst_err_set(err, CLST_E_NOMEM, "out of memory");
    }
    *out = stack;
    return CLST_OK;
}
