/* cloister selftest: exercises the crypto layer end to end, the way the platform uses it (a data
 * key sealed with AES-GCM, wrapped to a TEE's RSA key with CKM_RSA_AES_KEY_WRAP, evidence signed
 * with ECDSA P-384), including the negative cases, and says what it did at every step. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include <cloister/crypto.h>
#include <cloister/jose.h>

#include "cli/cli.h"

struct run {
    int steps;
    int failures;
};

/* Reports one check. `ok` is whether the expectation held. */
static void
check(struct run *r, bool ok, const char *what)
{
    r->steps++;
    if (!ok) {
        r->failures++;
    }
    printf("  [%s] %s\n", ok ? " ok " : "FAIL", what);
}

static double
ms_since(uint64_t t0)
{
    return (double)(clst_monotonic_ns() - t0) / 1e6;
}

static void
symmetric(struct run *r, uint8_t dek[32])
{
    static const char msg[] = "card 4111-1111-1111-1111 spent 42.00 EUR at merchant 1337";
    uint8_t nonce[CLST_GCM_NONCE_SIZE], tag[CLST_GCM_TAG_SIZE];
    uint8_t ct[sizeof(msg)], pt[sizeof(msg)];
    uint8_t aad[] = "record-17";

    printf("1. Data key and authenticated encryption (AES-256-GCM)\n");
    check(r, clst_random(dek, 32) == CLST_OK, "drew a 256-bit data key from OpenSSL's CSPRNG");
    check(r, clst_random(nonce, sizeof(nonce)) == CLST_OK, "drew a 96-bit nonce");
    bool sealed =
        clst_aes_gcm_seal(dek, 32, nonce, sizeof(nonce), aad, sizeof(aad) - 1, (const uint8_t *)msg,
                          sizeof(msg), ct, tag, sizeof(tag)) == CLST_OK;
    check(r, sealed && memcmp(ct, msg, sizeof(msg)) != 0,
          "sealed a 59-byte card record with associated data 'record-17'");
    bool opened = clst_aes_gcm_open(dek, 32, nonce, sizeof(nonce), aad, sizeof(aad) - 1, ct,
                                    sizeof(ct), tag, sizeof(tag), pt) == CLST_OK;
    check(r, opened && memcmp(pt, msg, sizeof(msg)) == 0, "opened it: plaintext matches");
    ct[7] ^= 0x01;
    check(r,
          clst_aes_gcm_open(dek, 32, nonce, sizeof(nonce), aad, sizeof(aad) - 1, ct, sizeof(ct),
                            tag, sizeof(tag), pt) == CLST_E_VERIFY,
          "flipped one ciphertext bit: rejected (tag mismatch), no plaintext released");
    ct[7] ^= 0x01;
    check(r,
          clst_aes_gcm_open(dek, 32, nonce, sizeof(nonce), (const uint8_t *)"record-18", 9, ct,
                            sizeof(ct), tag, sizeof(tag), pt) == CLST_E_VERIFY,
          "moved the record to another position (different AAD): rejected");
    OPENSSL_cleanse(pt, sizeof(pt));

    printf("2. Key derivation and key wrapping (HKDF-SHA256, HMAC-SHA256, AES-KWP)\n");
    uint8_t kek[32], kek2[32], mac[CLST_SHA256_SIZE];
    static const uint8_t info[] = "cloister selftest kek";
    bool derived = clst_hkdf(CLST_HASH_SHA256, NULL, 0, dek, 32, info, sizeof(info) - 1, kek,
                             sizeof(kek)) == CLST_OK &&
                   clst_hkdf(CLST_HASH_SHA256, NULL, 0, dek, 32, info, sizeof(info) - 1, kek2,
                             sizeof(kek2)) == CLST_OK;
    check(r, derived && memcmp(kek, kek2, 32) == 0 && memcmp(kek, dek, 32) != 0,
          "derived a key-encryption key from the data key; derivation is deterministic");
    check(r, clst_hmac(CLST_HASH_SHA256, kek, sizeof(kek), msg, sizeof(msg), mac) == CLST_OK,
          "computed an HMAC-SHA256 tag (as card-number tokenization does)");
    uint8_t wrapped[48], unwrapped[48];
    size_t wrapped_size = 0, unwrapped_size = 0;
    check(r,
          clst_aes_kwp_wrap(kek, 32, dek, 32, wrapped, sizeof(wrapped), &wrapped_size) == CLST_OK &&
              wrapped_size == 40,
          "wrapped the data key under the KEK with AES-KWP (RFC 5649): 40 bytes");
    check(r,
          clst_aes_kwp_unwrap(kek, 32, wrapped, wrapped_size, unwrapped, sizeof(unwrapped),
                              &unwrapped_size) == CLST_OK &&
              unwrapped_size == 32 && CRYPTO_memcmp(unwrapped, dek, 32) == 0,
          "unwrapped it: the same data key");
    wrapped[3] ^= 0x80;
    check(r,
          clst_aes_kwp_unwrap(kek, 32, wrapped, wrapped_size, unwrapped, sizeof(unwrapped),
                              &unwrapped_size) == CLST_E_VERIFY,
          "corrupted the wrapped key: unwrap refused (integrity check)");
    OPENSSL_cleanse(kek, sizeof(kek));
    OPENSSL_cleanse(kek2, sizeof(kek2));
    OPENSSL_cleanse(unwrapped, sizeof(unwrapped));
}

static void
release(struct run *r, const uint8_t dek[32])
{
    EVP_PKEY *tee = NULL, *other = NULL;
    struct clst_buf wrapped, out;
    clst_buf_init(&wrapped, 4096);
    clst_buf_init_secret(&out, 4096);

    printf("3. Key release to a TEE key (RSA-3072, CKM_RSA_AES_KEY_WRAP with SHA-256)\n");
    uint64_t t0 = clst_monotonic_ns();
    bool gen =
        clst_rsa_generate(3072, &tee) == CLST_OK && clst_rsa_generate(2048, &other) == CLST_OK;
    char line[160];
    snprintf(line, sizeof(line),
             "generated the TEE's RSA-3072 key pair (and an outsider's RSA-2048) in %.0f ms",
             ms_since(t0));
    check(r, gen, line);
    if (!gen) {
        goto out;
    }
    bool w = clst_rsa_aes_wrap(tee, CLST_HASH_SHA256, dek, 32, &wrapped) == CLST_OK;
    snprintf(line, sizeof(line),
             "wrapped the data key to the TEE's public key: %zu bytes (384 RSA-OAEP + 40 AES-KWP)",
             wrapped.size);
    check(r, w && wrapped.size == 384 + 40, line);
    check(r,
          clst_rsa_aes_unwrap(tee, CLST_HASH_SHA256, wrapped.data, wrapped.size, &out) == CLST_OK &&
              out.size == 32 && CRYPTO_memcmp(out.data, dek, 32) == 0,
          "unwrapped with the TEE's private key: the same data key");
    clst_buf_reset(&out);
    check(r,
          clst_rsa_aes_unwrap(other, CLST_HASH_SHA256, wrapped.data, wrapped.size, &out) != CLST_OK,
          "an outsider's private key cannot unwrap it");
    clst_buf_reset(&out);
    check(r, clst_rsa_aes_unwrap(tee, CLST_HASH_SHA1, wrapped.data, wrapped.size, &out) != CLST_OK,
          "the SHA-1 variant of the mechanism does not unwrap a SHA-256 wrap");
out:
    clst_buf_cleanup(&wrapped);
    clst_buf_cleanup(&out);
    EVP_PKEY_free(tee);
    EVP_PKEY_free(other);
}

static void
signatures(struct run *r)
{
    EVP_PKEY *platform = NULL, *rsa = NULL;
    struct clst_buf sig;
    clst_buf_init(&sig, 1024);
    uint8_t report[1184];
    memset(report, 0x5a, sizeof(report));

    printf("4. Evidence signatures (ECDSA P-384, RSA-PSS)\n");
    bool gen = clst_ec_generate(CLST_CURVE_P384, &platform) == CLST_OK;
    check(r, gen, "generated a P-384 platform key");
    if (!gen) {
        goto out;
    }
    check(r,
          clst_ecdsa_sign(platform, CLST_HASH_SHA384, CLST_SIG_RAW, report, sizeof(report), &sig) ==
                  CLST_OK &&
              sig.size == 96,
          "signed a 1184-byte report: 96-byte r||s signature");
    check(r,
          clst_ecdsa_verify(platform, CLST_HASH_SHA384, CLST_SIG_RAW, report, sizeof(report),
                            sig.data, sig.size) == CLST_OK,
          "verified the signature");
    report[100] ^= 1;
    check(r,
          clst_ecdsa_verify(platform, CLST_HASH_SHA384, CLST_SIG_RAW, report, sizeof(report),
                            sig.data, sig.size) == CLST_E_VERIFY,
          "changed one byte of the measurement: signature rejected");
    report[100] ^= 1;
    clst_buf_reset(&sig);
    gen = clst_rsa_generate(2048, &rsa) == CLST_OK;
    check(r,
          gen &&
              clst_rsa_pss_sign(rsa, CLST_HASH_SHA256, 32, report, sizeof(report), &sig) ==
                  CLST_OK &&
              clst_rsa_pss_verify(rsa, CLST_HASH_SHA256, 32, report, sizeof(report), sig.data,
                                  sig.size) == CLST_OK,
          "RSA-2048 PSS (SHA-256, 32-byte salt): signed and verified");
    if (sig.size > 0) {
        sig.data[0] ^= 1;
    }
    check(r,
          gen && clst_rsa_pss_verify(rsa, CLST_HASH_SHA256, 32, report, sizeof(report), sig.data,
                                     sig.size) == CLST_E_VERIFY,
          "a corrupted PSS signature is rejected");
out:
    clst_buf_cleanup(&sig);
    EVP_PKEY_free(platform);
    EVP_PKEY_free(rsa);
}

static void
tokens(struct run *r)
{
    EVP_PKEY *key = NULL, *other = NULL;
    struct clst_jwk *jwk = NULL, *other_jwk = NULL;
    json_t *claims = json_pack("{s:s, s:I, s:I, s:s}", "iss", "https://attest.example", "iat",
                               (json_int_t)1700000000, "exp", (json_int_t)1700003600,
                               "x-ms-attestation-type", "sim");
    json_t *out_claims = NULL;
    char *token = NULL;
    struct clst_err err = {0};
    struct clst_clock now, later;
    clst_clock_fixed_init(&now, 1700000100);
    clst_clock_fixed_init(&later, 1700007200);
    struct clst_jwt_expect expect = {
        .issuer = "https://attest.example", .clock = &now, .require_exp = true};

    printf("5. Attestation-style tokens (JWT, ES256)\n");
    bool ok =
        claims != NULL && clst_ec_generate(CLST_CURVE_P256, &key) == CLST_OK &&
        clst_ec_generate(CLST_CURVE_P256, &other) == CLST_OK &&
        clst_jwk_from_pkey(key, "signer-1", CLST_JWS_ALG_NONE, &jwk, &err) == CLST_OK &&
        clst_jwk_from_pkey(other, "signer-1", CLST_JWS_ALG_NONE, &other_jwk, &err) == CLST_OK &&
        clst_jwt_sign(jwk, claims, NULL, &token, &err) == CLST_OK;
    check(r, ok, "signed a JWT with a P-256 key (kid signer-1), algorithm pinned by the key");
    if (!ok) {
        goto out;
    }
    ok =
        clst_jwt_verify_jwk(token, strlen(token), jwk, &expect, &out_claims, NULL, &err) == CLST_OK;
    check(r, ok && json_is_string(json_object_get(out_claims, "x-ms-attestation-type")),
          "verified it and read its claims");
    json_decref(out_claims);
    out_claims = NULL;
    check(r,
          clst_jwt_verify_jwk(token, strlen(token), other_jwk, &expect, &out_claims, NULL, &err) ==
              CLST_E_VERIFY,
          "a look-alike key with the same kid does not verify it");
    expect.clock = &later;
    check(r,
          clst_jwt_verify_jwk(token, strlen(token), jwk, &expect, &out_claims, NULL, &err) ==
              CLST_E_VERIFY,
          "two hours later the token has expired and is refused");
out:
    json_decref(out_claims);
    json_decref(claims);
    free(token);
    clst_jwk_free(jwk);
    clst_jwk_free(other_jwk);
    EVP_PKEY_free(key);
    EVP_PKEY_free(other);
}

int
cmd_selftest(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        printf("usage: cloister selftest\n\n"
               "Runs Cloister's crypto layer end to end on fresh keys and prints every step:\n"
               "authenticated encryption of a record, key derivation and wrapping, wrapping a\n"
               "data key to a TEE's RSA key as secure key release does, evidence signatures and\n"
               "signed tokens, each with the tampering it must detect. Exit status 0 when every "
               "check held.\n");
        return CLI_EXIT_OK;
    }
    if (argc > 1) {
        return cli_usage_error("selftest", "unexpected argument '%s'", argv[1]);
    }
    struct run r = {0, 0};
    uint8_t dek[32];
    uint64_t t0 = clst_monotonic_ns();
    printf("Cloister self-test of the crypto layer (%s)\n", OpenSSL_version(OPENSSL_VERSION));
    symmetric(&r, dek);
    release(&r, dek);
    OPENSSL_cleanse(dek, sizeof(dek));
    signatures(&r);
    tokens(&r);
    printf("%d checks, %d failed, %.0f ms\n", r.steps, r.failures, ms_since(t0));
    return r.failures == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}
