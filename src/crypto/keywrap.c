/*
 * AES key wrap: KW (RFC 3394, NIST SP 800-38F KW) and KWP (RFC 5649, SP 800-38F KWP) over the
 * EVP ciphers "AES-<bits>-WRAP" and "AES-<bits>-WRAP-PAD".
 *
 * Unwrapping goes through a scratch buffer of in_size bytes in secret memory: OpenSSL's KWP
 * unwrap works in place on a buffer as long as the ciphertext (and wipes that many bytes on
 * failure), which is up to 15 bytes more than the result the caller sized `out` for. The
 * caller's buffer therefore only ever receives authenticated key material.
 *
 * CT: the integrity checks (IV, length indicator, padding) are OpenSSL's CRYPTO_memcmp-based
 * checks; which check failed is not reported (always CLST_E_VERIFY).
 */
#include <cloister/crypto.h>

#include <limits.h>
#include <string.h>

#include "crypto/fetch_int.h"

/* EVP_CipherUpdate takes an int length; keys to wrap are far smaller in practice. */
#define WRAP_MAX_INPUT_SIZE ((size_t)INT_MAX - 16)
/* Both modes work on 64-bit semiblocks. */
#define SEMIBLOCK_SIZE 8

static const char *
cipher_name(size_t kek_size, bool pad)
{
    switch (kek_size) {
    case 16:
        return pad ? "AES-128-WRAP-PAD" : "AES-128-WRAP";
    case 24:
        return pad ? "AES-192-WRAP-PAD" : "AES-192-WRAP";
    case 32:
        return pad ? "AES-256-WRAP-PAD" : "AES-256-WRAP";
    default:
        return NULL;
    }
}

/*
 * One wrap (enc = 1) or unwrap (enc = 0) with kek; `out` must have room for what OpenSSL writes
 * (see the callers). When the wrap/unwrap step itself fails, returns `step_failure`: for an
 * unwrap whose sizes were checked, that can only be the integrity check.
 */
static enum clst_status
run_cipher(const uint8_t *kek, size_t kek_size, bool pad, int enc, const uint8_t *in,
           size_t in_size, uint8_t *out, size_t *out_size, enum clst_status step_failure)
{
    enum clst_status rc = CLST_E_CRYPTO;
    const EVP_CIPHER *cipher = NULL;
    EVP_CIPHER *fetched = NULL; /* ours to free when the cached one was not there */
    EVP_CIPHER_CTX *ctx = NULL;
    uint8_t final_block[2 * SEMIBLOCK_SIZE];
    int outl = 0;
    int finl = 0;

    const char *name = cipher_name(kek_size, pad);
    if (name == NULL) {
        goto out;
    }
    cipher = clst_fetched_cipher(name);
    if (cipher == NULL && (cipher = fetched = EVP_CIPHER_fetch(NULL, name, NULL)) == NULL) {
        goto out;
    }
    ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL) {
        rc = CLST_E_NOMEM;
        goto out;
    }
    /*
     * EVP_CIPHER_CTX_FLAG_WRAP_ALLOW is only consulted on OpenSSL 3's legacy ENGINE path; a
     * provider cipher works without it (checked with 3.0.19). Setting it costs nothing and keeps
     * this working should an ENGINE ever be registered for the wrap ciphers.
     */
    EVP_CIPHER_CTX_set_flags(ctx, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
    if (EVP_CipherInit_ex2(ctx, cipher, kek, NULL, enc, NULL) != 1) {
        goto out;
    }
    /* The whole input in one update: wrapping is not a streaming operation. */
    if (EVP_CipherUpdate(ctx, out, &outl, in, (int)in_size) != 1 || outl <= 0) {
        rc = step_failure;
        goto out;
    }
    if (EVP_CipherFinal_ex(ctx, final_block, &finl) != 1 || finl != 0) {
        goto out;
    }
    *out_size = (size_t)outl;
    rc = CLST_OK;
out:
    EVP_CIPHER_CTX_free(ctx); /* wipes the key schedule */
    EVP_CIPHER_free(fetched);
    return rc;
}

static enum clst_status
wrap(bool pad, const uint8_t *kek, size_t kek_size, const uint8_t *in, size_t in_size, uint8_t *out,
     size_t out_cap, size_t *out_size)
{
    enum clst_status rc;
    size_t need;
    size_t done = 0;

    if (kek == NULL || cipher_name(kek_size, pad) == NULL || in == NULL || out == NULL ||
        out_size == NULL) {
        return CLST_E_INVAL;
    }
    /* KW: at least two semiblocks, whole semiblocks only (SP 800-38F 5.3.1; RFC 3394 allows a
     * single semiblock, SP 800-38F does not, and neither do we). KWP: at least one byte. */
    if (pad ? (in_size == 0) : (in_size < 2 * SEMIBLOCK_SIZE || in_size % SEMIBLOCK_SIZE != 0)) {
        return CLST_E_INVAL;
    }
    if (in_size > WRAP_MAX_INPUT_SIZE) {
        return CLST_E_LIMIT;
    }
    need = (in_size + SEMIBLOCK_SIZE - 1) / SEMIBLOCK_SIZE * SEMIBLOCK_SIZE + SEMIBLOCK_SIZE;
    if (out_cap < need) {
        return CLST_E_LIMIT;
    }
    rc = run_cipher(kek, kek_size, pad, 1, in, in_size, out, &done, CLST_E_CRYPTO);
    if (rc != CLST_OK) {
        return rc;
    }
    if (done != need) {
        OPENSSL_cleanse(out, need);
        return CLST_E_INTERNAL;
    }
    *out_size = done;
    return CLST_OK;
}

static enum clst_status
unwrap(bool pad, const uint8_t *kek, size_t kek_size, const uint8_t *in, size_t in_size,
       uint8_t *out, size_t out_cap, size_t *out_size)
{
    enum clst_status rc = CLST_E_VERIFY;
    uint8_t *scratch = NULL;
    size_t done = 0;
    size_t min_result;

    if (kek == NULL || cipher_name(kek_size, pad) == NULL || (in == NULL && in_size > 0) ||
        out == NULL || out_size == NULL) {
        return CLST_E_INVAL;
    }
    /* A wrapped key is whole semiblocks: KW at least three (two of key, one of IV), KWP at
     * least two. Anything else cannot be the output of wrap. */
    if (in_size % SEMIBLOCK_SIZE != 0 || in_size < (pad ? 2u : 3u) * SEMIBLOCK_SIZE) {
        return CLST_E_MALFORMED;
    }
    if (in_size > WRAP_MAX_INPUT_SIZE) {
        return CLST_E_LIMIT;
    }
    /* KW gives exactly in_size - 8 bytes; KWP removes up to 7 bytes of padding more. */
    min_result = in_size - SEMIBLOCK_SIZE - (pad ? SEMIBLOCK_SIZE - 1 : 0);
    if (out_cap < min_result) {
        return CLST_E_LIMIT;
    }
    scratch = clst_secret_alloc_raw(in_size);
    if (scratch == NULL) {
        rc = CLST_E_NOMEM;
        goto out;
    }
    /* Sizes were checked above, so a failing unwrap step is the integrity check (IV, length
     * indicator, padding). */
    rc = run_cipher(kek, kek_size, pad, 0, in, in_size, scratch, &done, CLST_E_VERIFY);
    if (rc != CLST_OK) {
        if (rc == CLST_E_VERIFY) {
            /* Nothing reached `out` (scratch did), but the contract is to leave no key bytes. */
            OPENSSL_cleanse(out, out_cap < in_size ? out_cap : in_size);
        }
        goto out;
    }
    if (done < min_result || done > in_size - SEMIBLOCK_SIZE) {
        rc = CLST_E_INTERNAL;
        goto out;
    }
    if (done > out_cap) {
        rc = CLST_E_LIMIT;
        goto out;
    }
    memcpy(out, scratch, done);
    *out_size = done;
    rc = CLST_OK;
out:
    clst_secret_free_raw(scratch, in_size); /* wipes */
    return rc;
}

enum clst_status
clst_aes_kw_wrap(const uint8_t *kek, size_t kek_size, const uint8_t *in, size_t in_size,
                 uint8_t *out, size_t out_cap, size_t *out_size)
{
    return wrap(false, kek, kek_size, in, in_size, out, out_cap, out_size);
}

enum clst_status
clst_aes_kw_unwrap(const uint8_t *kek, size_t kek_size, const uint8_t *in, size_t in_size,
                   uint8_t *out, size_t out_cap, size_t *out_size)
{
    return unwrap(false, kek, kek_size, in, in_size, out, out_cap, out_size);
}

enum clst_status
clst_aes_kwp_wrap(const uint8_t *kek, size_t kek_size, const uint8_t *in, size_t in_size,
                  uint8_t *out, size_t out_cap, size_t *out_size)
{
    return wrap(true, kek, kek_size, in, in_size, out, out_cap, out_size);
}

enum clst_status
clst_aes_kwp_unwrap(const uint8_t *kek, size_t kek_size, const uint8_t *in, size_t in_size,
                    uint8_t *out, size_t out_cap, size_t *out_size)
{
    return unwrap(true, kek, kek_size, in, in_size, out, out_cap, out_size);
}
