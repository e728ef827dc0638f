/*
 * Algorithms fetched once per process (fetch_int.h). A fetch that fails leaves its slot NULL and
 * the callers fall back to fetching themselves, so a provider set up after the first use (or a
 * failed fetch) is never worse than before.
 */
#include <pthread.h>
#include <string.h>

#include "crypto/fetch_int.h"

static const char *const CIPHER_NAMES[] = {
    "AES-128-GCM",  "AES-192-GCM",      "AES-256-GCM",      "AES-128-WRAP",     "AES-192-WRAP",
    "AES-256-WRAP", "AES-128-WRAP-PAD", "AES-192-WRAP-PAD", "AES-256-WRAP-PAD",
};
#define CIPHER_COUNT (sizeof CIPHER_NAMES / sizeof CIPHER_NAMES[0])

static pthread_once_t once = PTHREAD_ONCE_INIT;
static EVP_MD *mds[4]; /* SHA1, SHA256, SHA384, SHA512 */
static EVP_CIPHER *ciphers[CIPHER_COUNT];
static EVP_MAC *hmac;

static void
fetch_all(void)
{
    static const char *const md_names[4] = {"SHA1", "SHA256", "SHA384", "SHA512"};
    for (size_t i = 0; i < 4; i++) {
        mds[i] = EVP_MD_fetch(NULL, md_names[i], NULL);
    }
    for (size_t i = 0; i < CIPHER_COUNT; i++) {
        ciphers[i] = EVP_CIPHER_fetch(NULL, CIPHER_NAMES[i], NULL);
    }
    hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
}

const EVP_MD *
clst_fetched_md(enum clst_hash h)
{
    size_t i;
    switch (h) {
    case CLST_HASH_SHA1:
        i = 0;
        break;
    case CLST_HASH_SHA256:
        i = 1;
        break;
    case CLST_HASH_SHA384:
        i = 2;
        break;
    case CLST_HASH_SHA512:
        i = 3;
        break;
    default:
        return NULL;
    }
    (void)pthread_once(&once, fetch_all);
    return mds[i];
}

const EVP_CIPHER *
clst_fetched_cipher(const char *name)
{
    (void)pthread_once(&once, fetch_all);
    for (size_t i = 0; i < CIPHER_COUNT; i++) {
        if (strcmp(CIPHER_NAMES[i], name) == 0) {
            return ciphers[i];
        }
    }
    return NULL;
}

EVP_MAC *
clst_fetched_hmac(void)
{
    (void)pthread_once(&once, fetch_all);
    return hmac;
}
