/*
 * Random bytes from OpenSSL's CSPRNG (the default provider's DRBG, seeded from the OS and
 * reseeded after fork by OpenSSL itself).
 */
#include <cloister/crypto.h>

#include <openssl/rand.h>

enum clst_status
clst_random(void *out, size_t size)
{
    if (size == 0) {
        return CLST_OK;
    }
    if (out == NULL) {
        return CLST_E_INVAL;
    }
    /* RAND_bytes_ex takes a size_t, so no chunking is needed; strength 0 = the DRBG's default
     * (256 bits for the default CTR-DRBG). */
    if (RAND_bytes_ex(NULL, out, size, 0) != 1) {
        /* Never leave a half-filled buffer that a careless caller could use as a key. */
        OPENSSL_cleanse(out, size);
        return CLST_E_CRYPTO;
    }
    return CLST_OK;
}
