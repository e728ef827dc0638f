/*
 * Sealing (docs/sealing.md): the blob format, the platform's key derivation and the enclave-side
 * seal/unseal logic. The key for a blob is derived by the platform from its sealing secret and the
 * enclave's *real* identity (never from what the enclave claims), so an enclave with another
 * measurement, signer, product or debug mode, or a lower svn, cannot obtain it; the identity
 * checks in unseal_blob only turn that into a clear message before the AEAD would fail anyway.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include <cloister/crypto.h>

#include "enclave/enclave_int.h"

#define SEAL_KDF_SALT   "cloister-sim-seal-v1"
#define SEAL_KDF_LABEL  "CLST-SEAL-KEY-V1"
#define SEAL_NONCE_SIZE 12

void
seal_hdr_encode(const struct seal_hdr *h, uint8_t out[static CLST_SEAL_HEADER_SIZE])
{
    memcpy(out, SEAL_MAGIC, 4);
    clst_put_le16(out + 4, h->version);
    clst_put_le16(out + 6, h->policy);
    clst_put_le16(out + 8, h->svn);
    clst_put_le16(out + 10, h->product_id);
    clst_put_le32(out + 12, h->flags);
    memcpy(out + 16, h->identity, 48);
    memcpy(out + 64, h->key_id, SEAL_KEY_ID_SIZE);
    memcpy(out + 96, h->nonce, SEAL_NONCE_SIZE);
    clst_put_le64(out + 108, h->plaintext_size);
}

enum clst_status
seal_hdr_parse(const uint8_t *blob, size_t size, struct seal_hdr *out, struct clst_err *err)
{
    struct clst_cursor c = clst_cursor_make(blob, size);
    uint8_t magic[4];
    struct seal_hdr h;
    if (size < CLST_SEAL_OVERHEAD) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "sealed blob: %zu bytes is shorter than the %d-byte minimum", size,
                            CLST_SEAL_OVERHEAD);
    }
    if (!clst_cursor_copy(&c, magic, 4) || !clst_cursor_le16(&c, &h.version) ||
        !clst_cursor_le16(&c, &h.policy) || !clst_cursor_le16(&c, &h.svn) ||
        !clst_cursor_le16(&c, &h.product_id) || !clst_cursor_le32(&c, &h.flags) ||
        !clst_cursor_copy(&c, h.identity, 48) ||
        !clst_cursor_copy(&c, h.key_id, SEAL_KEY_ID_SIZE) ||
        !clst_cursor_copy(&c, h.nonce, SEAL_NONCE_SIZE) ||
        !clst_cursor_le64(&c, &h.plaintext_size)) {
        return clst_err_set(err, CLST_E_MALFORMED, "sealed blob: truncated header");
    }
    if (memcmp(magic, SEAL_MAGIC, 4) != 0) {
        return clst_err_set(err, CLST_E_MALFORMED, "not a sealed blob (bad magic)");
    }
    if (h.version != SEAL_VERSION) {
        return clst_err_set(err, CLST_E_MALFORMED, "sealed blob: unsupported version %u",
                            h.version);
    }
    if (h.policy != CLST_SEAL_TO_MEASUREMENT && h.policy != CLST_SEAL_TO_SIGNER) {
        return clst_err_set(err, CLST_E_MALFORMED, "sealed blob: unknown policy %u", h.policy);
    }
    if ((h.flags & ~SEAL_FLAG_DEBUG) != 0) {
        return clst_err_set(err, CLST_E_MALFORMED, "sealed blob: reserved flags set");
    }
    if (h.policy == CLST_SEAL_TO_SIGNER) {
        static const uint8_t zeros[48 - CLST_ENCLAVE_SIGNER_SIZE];
        if (memcmp(h.identity + CLST_ENCLAVE_SIGNER_SIZE, zeros, sizeof(zeros)) != 0) {
            return clst_err_set(err, CLST_E_MALFORMED, "sealed blob: identity padding not zero");
        }
    }
    if (h.plaintext_size != size - CLST_SEAL_OVERHEAD) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "sealed blob: header says %llu bytes of data, the blob holds %zu",
                            (unsigned long long)h.plaintext_size, size - CLST_SEAL_OVERHEAD);
    }
    *out = h;
    return CLST_OK;
}

/* The identity a policy binds to: the measurement, or the signer id padded with zeros. */
static void
policy_identity(const struct clst_enclave_identity *id, uint16_t policy, uint8_t out[static 48])
{
    memset(out, 0, 48);
    if (policy == CLST_SEAL_TO_MEASUREMENT) {
        memcpy(out, id->mrenclave, 48);
    } else {
        memcpy(out, id->mrsigner, CLST_ENCLAVE_SIGNER_SIZE);
    }
}

enum clst_status
seal_key_derive(const uint8_t secret[static CLST_SIM_SEALING_SECRET_SIZE],
                const struct clst_enclave_identity *id, uint16_t policy, uint16_t svn,
                const uint8_t key_id[static SEAL_KEY_ID_SIZE], uint8_t out[static SEAL_KEY_SIZE],
                struct clst_err *err)
{
    uint8_t info[sizeof(SEAL_KDF_LABEL) - 1 + 2 + 48 + 2 + 2 + 4 + SEAL_KEY_ID_SIZE];
    uint8_t *p = info;
    if (policy != CLST_SEAL_TO_MEASUREMENT && policy != CLST_SEAL_TO_SIGNER) {
        return clst_err_set(err, CLST_E_INVAL, "unknown sealing policy %u", policy);
    }
    if (svn > id->svn) {
        return clst_err_set(err, CLST_E_DENIED,
                            "a sealing key for svn %u was asked by an enclave of svn %u: an "
                            "enclave only gets keys of its own or older versions",
                            svn, id->svn);
    }
    memcpy(p, SEAL_KDF_LABEL, sizeof(SEAL_KDF_LABEL) - 1);
    p += sizeof(SEAL_KDF_LABEL) - 1;
    clst_put_le16(p, policy);
    p += 2;
    policy_identity(id, policy, p);
    p += 48;
    clst_put_le16(p, id->product_id);
    p += 2;
    clst_put_le16(p, svn);
    p += 2;
    clst_put_le32(p, id->debug ? SEAL_FLAG_DEBUG : 0);
    p += 4;
    memcpy(p, key_id, SEAL_KEY_ID_SIZE);
    enum clst_status st =
        clst_hkdf(CLST_HASH_SHA256, (const uint8_t *)SEAL_KDF_SALT, sizeof(SEAL_KDF_SALT) - 1,
                  secret, CLST_SIM_SEALING_SECRET_SIZE, info, sizeof(info), out, SEAL_KEY_SIZE);
    if (st != CLST_OK) {
        return clst_err_set(err, st, "sealing key derivation failed");
    }
    return CLST_OK;
}

/* header || caller's aad, the AEAD's associated data. */
static enum clst_status
make_aad(const uint8_t hdr[static CLST_SEAL_HEADER_SIZE], const uint8_t *aad, size_t aad_size,
         uint8_t **out, size_t *out_size)
{
    if (aad_size > CLST_SEAL_MAX_PLAINTEXT) {
        return CLST_E_LIMIT;
    }
    uint8_t *a = malloc(CLST_SEAL_HEADER_SIZE + aad_size);
    if (a == NULL) {
        return CLST_E_NOMEM;
    }
    memcpy(a, hdr, CLST_SEAL_HEADER_SIZE);
    if (aad_size > 0) {
        memcpy(a + CLST_SEAL_HEADER_SIZE, aad, aad_size);
    }
    *out = a;
    *out_size = CLST_SEAL_HEADER_SIZE + aad_size;
    return CLST_OK;
}

enum clst_status
seal_blob(const struct seal_keysrc *ks, const struct clst_enclave_identity *self,
          enum clst_enclave_seal_policy policy, const uint8_t *aad, size_t aad_size,
          const uint8_t *in, size_t in_size, uint8_t *out, size_t out_cap, size_t *out_size,
          struct clst_err *err)
{
    struct seal_hdr h;
    uint8_t key[SEAL_KEY_SIZE];
    uint8_t *full_aad = NULL;
    size_t full_aad_size = 0;
    enum clst_status rc = CLST_E_INVAL, st;

    if (policy != CLST_SEAL_TO_MEASUREMENT && policy != CLST_SEAL_TO_SIGNER) {
        rc = clst_err_set(err, CLST_E_INVAL, "unknown sealing policy %d", (int)policy);
        goto out;
    }
    if ((in == NULL && in_size > 0) || (aad == NULL && aad_size > 0) || out == NULL) {
        rc = clst_err_set(err, CLST_E_INVAL, "seal: NULL buffer");
        goto out;
    }
    if (in_size > CLST_SEAL_MAX_PLAINTEXT) {
        rc = clst_err_set(err, CLST_E_LIMIT, "seal: %zu bytes (at most %u)", in_size,
                          CLST_SEAL_MAX_PLAINTEXT);
        goto out;
    }
    if (out_cap < in_size + CLST_SEAL_OVERHEAD) {
        rc = clst_err_set(err, CLST_E_LIMIT, "seal: the output needs %zu bytes, %zu given",
                          in_size + CLST_SEAL_OVERHEAD, out_cap);
        goto out;
    }
    memset(&h, 0, sizeof(h));
    h.version = SEAL_VERSION;
    h.policy = (uint16_t)policy;
    h.svn = self->svn;
    h.product_id = self->product_id;
    h.flags = self->debug ? SEAL_FLAG_DEBUG : 0;
    policy_identity(self, h.policy, h.identity);
    h.plaintext_size = in_size;
    if ((st = clst_random(h.key_id, sizeof(h.key_id))) != CLST_OK ||
        (st = clst_random(h.nonce, sizeof(h.nonce))) != CLST_OK) {
        rc = clst_err_set(err, st, "seal: no randomness");
        goto out;
    }
    rc = ks->get(ks->ctx, h.policy, h.svn, h.key_id, key, err);
    if (rc != CLST_OK) {
        goto out;
    }
    seal_hdr_encode(&h, out);
    if ((st = make_aad(out, aad, aad_size, &full_aad, &full_aad_size)) != CLST_OK) {
        rc = clst_err_set(err, st, "seal: cannot build the associated data");
        goto out;
    }
    st = clst_aes_gcm_seal(key, sizeof(key), h.nonce, SEAL_NONCE_SIZE, full_aad, full_aad_size, in,
                           in_size, out + CLST_SEAL_HEADER_SIZE,
                           out + CLST_SEAL_HEADER_SIZE + in_size, CLST_SEAL_TAG_SIZE);
    if (st != CLST_OK) {
        rc = clst_err_set(err, st, "seal: encryption failed");
        goto out;
    }
    *out_size = in_size + CLST_SEAL_OVERHEAD;
    rc = CLST_OK;
out:
    OPENSSL_cleanse(key, sizeof(key));
    free(full_aad);
    return rc;
}

static const char *
hex8(const uint8_t *b, char out[static 17])
{
    (void)clst_hex_to_str(b, 8, out, 17);
    return out;
}

enum clst_status
unseal_blob(const struct seal_keysrc *ks, const struct clst_enclave_identity *self,
            const uint8_t *aad, size_t aad_size, const uint8_t *blob, size_t blob_size,
            uint8_t *out, size_t out_cap, size_t *out_size, struct clst_err *err)
{
    struct seal_hdr h;
    uint8_t key[SEAL_KEY_SIZE], want[48];
    uint8_t *full_aad = NULL;
    size_t full_aad_size = 0;
    char a[17], b[17];
    enum clst_status rc = CLST_E_INVAL, st;

    if (blob == NULL || (aad == NULL && aad_size > 0)) {
        rc = clst_err_set(err, CLST_E_INVAL, "unseal: NULL buffer");
        goto out;
    }
    rc = seal_hdr_parse(blob, blob_size, &h, err);
    if (rc != CLST_OK) {
        goto out;
    }
    policy_identity(self, h.policy, want);
    if (CRYPTO_memcmp(h.identity, want, 48) != 0) {
        rc = clst_err_set(err, CLST_E_VERIFY,
                          h.policy == CLST_SEAL_TO_MEASUREMENT
                              ? "unseal: the blob is sealed to another measurement (%s..., "
                                "this enclave is %s...); only that exact enclave can unseal it"
                              : "unseal: the blob is sealed to another signer (%s..., this "
                                "enclave's signer is %s...)",
                          hex8(h.identity, a), hex8(want, b));
        goto out;
    }
    if (h.product_id != self->product_id) {
        rc = clst_err_set(err, CLST_E_VERIFY,
                          "unseal: the blob is sealed to product %u; this enclave is product %u",
                          h.product_id, self->product_id);
        goto out;
    }
    if (((h.flags & SEAL_FLAG_DEBUG) != 0) != self->debug) {
        rc = clst_err_set(err, CLST_E_VERIFY,
                          "unseal: the blob was sealed by a %s enclave and this one is %s",
                          (h.flags & SEAL_FLAG_DEBUG) ? "debug" : "non-debug",
                          self->debug ? "debug" : "non-debug");
        goto out;
    }
    if (h.svn > self->svn) {
        rc = clst_err_set(err, CLST_E_DENIED,
                          "unseal: the blob was sealed by svn %u, newer than this enclave's svn "
                          "%u; an enclave can unseal only data of its own or older versions",
                          h.svn, self->svn);
        goto out;
    }
    if (out == NULL || out_cap < h.plaintext_size) {
        rc = clst_err_set(err, CLST_E_LIMIT, "unseal: the output needs %llu bytes, %zu given",
                          (unsigned long long)h.plaintext_size, out_cap);
        goto out;
    }
    rc = ks->get(ks->ctx, h.policy, h.svn, h.key_id, key, err);
    if (rc != CLST_OK) {
        goto out;
    }
    if ((st = make_aad(blob, aad, aad_size, &full_aad, &full_aad_size)) != CLST_OK) {
        rc = clst_err_set(err, st, "unseal: cannot build the associated data");
        goto out;
    }
    st =
        clst_aes_gcm_open(key, sizeof(key), h.nonce, SEAL_NONCE_SIZE, full_aad, full_aad_size,
                          blob + CLST_SEAL_HEADER_SIZE, (size_t)h.plaintext_size,
                          blob + CLST_SEAL_HEADER_SIZE + h.plaintext_size, CLST_SEAL_TAG_SIZE, out);
    if (st != CLST_OK) {
        rc = clst_err_set(err, st == CLST_E_VERIFY ? CLST_E_VERIFY : st,
                          "unseal: authentication failed: the blob was altered, the associated "
                          "data differs, or it was sealed on another platform");
        goto out;
    }
    *out_size = (size_t)h.plaintext_size;
    rc = CLST_OK;
out:
    OPENSSL_cleanse(key, sizeof(key));
    free(full_aad);
    return rc;
}
