/*
 * The in-enclave key pair for secure key release (ARCHITECTURE.md, the flow): an RSA key generated
 * inside the enclave, runtime data naming its public half as a JWK (what the attestation service
 * copies into x-ms-runtime and the vault wraps released keys to), and unwrapping a key released
 * with CKM_RSA_AES_KEY_WRAP. The private key never leaves this process; the host relays only the
 * runtime data, evidence, tokens and the wrapped key, none of which is secret.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <cloister/crypto.h>

#include "enclave/enclave_int.h"

#define KP_DEFAULT_BITS 3072
#define KP_DEFAULT_KID  "clst-enclave"
#define KP_KID_MAX      128

struct clst_enclave_keypair {
    EVP_PKEY *key;
    char kid[KP_KID_MAX + 1];
};

enum clst_status
clst_enclave_keypair_new(unsigned bits, const char *kid, struct clst_enclave_keypair **out,
                         struct clst_err *err)
{
    struct clst_enclave_keypair *kp = NULL;
    if (out == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "keypair: NULL output");
    }
    if (bits == 0) {
        bits = KP_DEFAULT_BITS;
    }
    if (bits < CLST_RSA_MIN_BITS || bits > CLST_RSA_MAX_BITS || bits % 8 != 0) {
        return clst_err_set(err, CLST_E_INVAL, "keypair: %u bits (2048..4096, a multiple of 8)",
                            bits);
    }
    if (kid == NULL) {
        kid = KP_DEFAULT_KID;
    }
    size_t kid_len = strnlen(kid, KP_KID_MAX + 1);
    if (kid_len == 0 || kid_len > KP_KID_MAX) {
        return clst_err_set(err, CLST_E_INVAL, "keypair: kid of 1..%d characters", KP_KID_MAX);
    }
    kp = calloc(1, sizeof(*kp));
    if (kp == NULL) {
        return clst_err_set(err, CLST_E_NOMEM, "keypair: out of memory");
    }
    memcpy(kp->kid, kid, kid_len);
    if (clst_rsa_generate((int)bits, &kp->key) != CLST_OK) {
        free(kp);
        return clst_err_set(err, CLST_E_CRYPTO, "keypair: RSA key generation failed");
    }
    *out = kp;
    return CLST_OK;
}

void
clst_enclave_keypair_free(struct clst_enclave_keypair *kp)
{
    if (kp == NULL) {
        return;
    }
    EVP_PKEY_free(kp->key);
    OPENSSL_cleanse(kp, sizeof(*kp));
    free(kp);
}

enum clst_status
clst_enclave_keypair_runtime_data(const struct clst_enclave_keypair *kp, const char *nonce,
                                  uint8_t *out, size_t out_cap, size_t *out_size,
                                  struct clst_err *err)
{
    json_t *jwk = NULL, *doc = NULL, *keys = NULL, *ops = NULL;
    char *text = NULL;
    enum clst_status rc = CLST_E_INTERNAL;

    if (kp == NULL || out == NULL || out_size == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "runtime data: NULL argument");
    }
    if (clst_pkey_to_jwk(kp->key, false, &jwk) != CLST_OK) {
        rc = clst_err_set(err, CLST_E_CRYPTO, "runtime data: cannot encode the public key");
        goto out;
    }
    ops = json_array();
    keys = json_array();
    doc = json_object();
    if (ops == NULL || keys == NULL || doc == NULL ||
        json_array_append_new(ops, json_string("encrypt")) != 0 ||
        json_object_set_new(jwk, "kid", json_string(kp->kid)) != 0 ||
        json_object_set(jwk, "key_ops", ops) != 0 || json_array_append(keys, jwk) != 0 ||
        json_object_set(doc, "keys", keys) != 0 ||
        (nonce != NULL && json_object_set_new(doc, "nonce", json_string(nonce)) != 0)) {
        rc = clst_err_set(err, CLST_E_NOMEM, "runtime data: out of memory");
        goto out;
    }
    /* Compact with sorted keys: one canonical text, which is what gets hashed into evidence. */
    text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
    if (text == NULL) {
        rc = clst_err_set(err, CLST_E_NOMEM, "runtime data: out of memory");
        goto out;
    }
    size_t n = strlen(text);
    if (n > out_cap) {
        rc = clst_err_set(err, CLST_E_LIMIT, "runtime data needs %zu bytes, %zu given", n, out_cap);
        goto out;
    }
    memcpy(out, text, n);
    *out_size = n;
    rc = CLST_OK;
out:
    free(text);
    json_decref(jwk);
    json_decref(ops);
    json_decref(keys);
    json_decref(doc);
    return rc;
}

enum clst_status
clst_enclave_wrap_alg_parse(const char *name, enum clst_enclave_wrap_alg *out)
{
    if (name == NULL || out == NULL) {
        return CLST_E_INVAL;
    }
    if (strcmp(name, "CKM_RSA_AES_KEY_WRAP") == 0) {
        *out = CLST_WRAP_RSA_AES_KEY_WRAP;
    } else if (strcmp(name, "RSA_AES_KEY_WRAP_256") == 0) {
        *out = CLST_WRAP_RSA_AES_KEY_WRAP_256;
    } else if (strcmp(name, "RSA_AES_KEY_WRAP_384") == 0) {
        *out = CLST_WRAP_RSA_AES_KEY_WRAP_384;
    } else {
        return CLST_E_NOTFOUND;
    }
    return CLST_OK;
}

enum clst_status
clst_enclave_keypair_unwrap(const struct clst_enclave_keypair *kp, enum clst_enclave_wrap_alg alg,
                            const uint8_t *wrapped, size_t wrapped_size, uint8_t *out,
                            size_t out_cap, size_t *out_size, struct clst_err *err)
{
    struct clst_buf key = {0};
    enum clst_hash h;
    enum clst_status rc = CLST_E_INVAL;

    if (kp == NULL || wrapped == NULL || out == NULL || out_size == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "unwrap: NULL argument");
    }
    switch (alg) {
    case CLST_WRAP_RSA_AES_KEY_WRAP:
        h = CLST_HASH_SHA1;
        break;
    case CLST_WRAP_RSA_AES_KEY_WRAP_256:
        h = CLST_HASH_SHA256;
        break;
    case CLST_WRAP_RSA_AES_KEY_WRAP_384:
        h = CLST_HASH_SHA384;
        break;
    default:
        return clst_err_set(err, CLST_E_INVAL, "unwrap: unknown algorithm %d", (int)alg);
    }
    clst_buf_init_secret(&key, 16384);
    rc = clst_rsa_aes_unwrap(kp->key, h, wrapped, wrapped_size, &key);
    if (rc != CLST_OK) {
        rc = clst_err_set(err, rc == CLST_E_VERIFY ? CLST_E_VERIFY : rc,
                          "unwrap: the wrapped key does not open with this enclave's key (it was "
                          "wrapped to another key, or altered)");
        goto out;
    }
    if (key.size > out_cap) {
        rc = clst_err_set(err, CLST_E_LIMIT, "unwrap: the key has %zu bytes, %zu given", key.size,
                          out_cap);
        goto out;
    }
    memcpy(out, key.data, key.size);
    *out_size = key.size;
    rc = CLST_OK;
out:
    clst_buf_cleanup(&key);
    return rc;
}
