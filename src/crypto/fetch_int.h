/*
 * Algorithms fetched once per process. OpenSSL 3 looks an algorithm up in its provider store
 * (under a lock) on every EVP_CIPHER_fetch and on every use of a legacy EVP_sha256()-style
 * object; the vault does that on every request. These are fetched at first use and kept for the
 * life of the process (fetched objects are immutable and may be shared between threads).
 */
#ifndef CLST_CRYPTO_FETCH_INT_H
#define CLST_CRYPTO_FETCH_INT_H

#include <openssl/evp.h>

#include <cloister/crypto.h>

/* The digest for h (never to be freed), or NULL for an unknown h. */
const EVP_MD *clst_fetched_md(enum clst_hash h);
/* The cipher called `name` when it is one of the cached ones ("AES-{128,192,256}-GCM",
 * "AES-{128,192,256}-WRAP", "AES-{128,192,256}-WRAP-PAD"), else NULL: fetch it yourself. Never
 * to be freed. */
const EVP_CIPHER *clst_fetched_cipher(const char *name);
/* The HMAC EVP_MAC (never to be freed). */
EVP_MAC *clst_fetched_hmac(void);

#endif /* CLST_CRYPTO_FETCH_INT_H */
