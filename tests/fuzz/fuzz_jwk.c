/*
 * Fuzz harness for the JWK and JWK-set parsers (src/jose/jwk.c): the input is JSON text handed to
 * clst_jwk_parse and clst_jwks_parse; whatever parses is serialized again, thumbprinted and
 * parsed back, which must succeed and give the same thumbprint.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cloister/jose.h>

static void
exercise(const struct clst_jwk *jwk)
{
    uint8_t t1[CLST_SHA256_SIZE], t2[CLST_SHA256_SIZE];
    json_t *j = NULL;
    struct clst_jwk *back = NULL;

    if (clst_jwk_thumbprint(jwk, t1) != CLST_OK) {
        abort();
    }
    if (clst_jwk_to_json(jwk, true, &j) != CLST_OK) {
        abort();
    }
    /* What we serialize we must be able to parse again, with the same key. */
    if (clst_jwk_from_json(j, &back, NULL) != CLST_OK) {
        abort();
    }
    if (clst_jwk_thumbprint(back, t2) != CLST_OK || memcmp(t1, t2, sizeof(t1)) != 0 ||
        clst_jwk_alg(back) != clst_jwk_alg(jwk)) {
        abort();
    }
    for (size_t i = 0; i < clst_jwk_x5c_count(jwk); i++) {
        if (clst_jwk_x5c_b64(jwk, i) == NULL) {
            abort();
        }
    }
    STACK_OF(X509) *chain = NULL;
    if (clst_jwk_x5c_certs(jwk, &chain, NULL) == CLST_OK) {
        sk_X509_pop_free(chain, X509_free);
    }
    clst_jwk_free(back);
    json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct clst_jwk *jwk = NULL;
    struct clst_jwks *set = NULL;
    struct clst_err err;

    if (clst_jwk_parse((const char *)data, size, &jwk, &err) == CLST_OK) {
        exercise(jwk);
        clst_jwk_free(jwk);
    }
    if (clst_jwks_parse((const char *)data, size, &set, &err) == CLST_OK) {
        for (size_t i = 0; i < clst_jwks_count(set); i++) {
            exercise(clst_jwks_get(set, i));
        }
        json_t *j = NULL;
        if (clst_jwks_to_json(set, false, &j) != CLST_OK) {
            abort();
        }
        json_decref(j);
        clst_jwks_free(set);
    }
    return 0;
}
