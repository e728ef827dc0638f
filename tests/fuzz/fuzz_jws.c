/*
 * Fuzz harness for compact JWS/JWT verification (src/jose/jws.c, src/jose/jwt.c): the input is a
 * token verified with fixed public keys (Wycheproof's ES256 and RS256 test keys, whose valid
 * tokens are in the seed corpus), read through clst_jws_header_unverified, and verified as a JWT
 * against a key set at a fixed time. Nothing but a valid signature by those keys may verify.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cloister/jose.h>

static const char ec_jwk[] =
    "{\"alg\":\"ES256\",\"use\":\"sig\",\"x\":\"04N0xi21hshyvBp7I167sbE_bXqyqkAPfefdklMO7wY\","
    "\"y\":\"UI8exy-C06a7DUnjIdENkxeFtHM4-l_41LqEw9nVgmw\",\"crv\":\"P-256\","
    "\"kid\":\"kid-ec-sign\",\"kty\":\"EC\"}";
static const char rsa_jwk[] =
    "{\"alg\":\"RS256\",\"use\":\"sig\",\"n\":\"kqGboBfAWttWPCA-0cGRgsY6SaYoIARt0B_PkaEcIq9HPYN"
    "du9n6UuWHuuTHrjF_ZoQW97r5HaAorNvrMEGTGdxCHZdEtkHvNVVmrtxTBLiQCbCozXhFoIrVcr3qUBrdGnNn_M3jJi7"
    "Wg7p_-x62nS5gNG875oyheRkutHsQXikFZwsN3q_TsPNOVlCiHy8mxzaFTUQGm-X8UYexFyAivlDSjgDJLAZSWfxd7k9"
    "Gxuwa3AUfQqQcVcegmgKGCaErQ3qQbh1x7WB6iopE3_-GZ8HMAVtR9AmrVscqYsnjhaCehfAI0iKKs8zXr8tISc0ORba"
    "alrkk03H1ZrsEnDKEWQ\",\"e\":\"AQAB\",\"kid\":\"kid-rsa-sign\",\"kty\":\"RSA\"}";

static struct clst_jwk *ec_key, *rsa_key;
static struct clst_jwks *keys;

static void
init_keys(void)
{
    struct clst_jwk *a = NULL, *b = NULL;
    if (keys != NULL) {
        return;
    }
    if (clst_jwk_parse(ec_jwk, strlen(ec_jwk), &ec_key, NULL) != CLST_OK ||
        clst_jwk_parse(rsa_jwk, strlen(rsa_jwk), &rsa_key, NULL) != CLST_OK ||
        clst_jwk_parse(ec_jwk, strlen(ec_jwk), &a, NULL) != CLST_OK ||
        clst_jwk_parse(rsa_jwk, strlen(rsa_jwk), &b, NULL) != CLST_OK ||
        clst_jwks_new(&keys) != CLST_OK || clst_jwks_add(keys, a, NULL) != CLST_OK ||
        clst_jwks_add(keys, b, NULL) != CLST_OK) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *token = (const char *)data;
    struct clst_err err;
    struct clst_buf payload;
    json_t *hdr = NULL, *claims = NULL;
    const struct clst_jwk *used = NULL;

    init_keys();
    clst_buf_init(&payload, CLST_JWS_MAX_SIZE);
    const struct clst_jwk *both[] = {ec_key, rsa_key};
    for (size_t i = 0; i < 2; i++) {
        clst_buf_reset(&payload);
        if (clst_jws_verify(token, size, both[i], &payload, &hdr, &err) == CLST_OK) {
            /* A verified header always names the key's algorithm. */
            const char *alg = json_string_value(json_object_get(hdr, "alg"));
            if (alg == NULL || strcmp(alg, clst_jws_alg_name(clst_jwk_alg(both[i]))) != 0) {
                abort();
            }
            json_decref(hdr);
            hdr = NULL;
        }
    }
    clst_buf_reset(&payload);
    if (clst_jws_verify_jwks(token, size, keys, &payload, NULL, &used, &err) == CLST_OK &&
        used == NULL) {
        abort();
    }
    if (clst_jws_header_unverified(token, size, &hdr, &err) == CLST_OK) {
        json_decref(hdr);
    }
    struct clst_clock clock;
    clst_clock_fixed_init(&clock, INT64_C(1767225600));
    struct clst_jwt_expect expect = {.clock = &clock, .skew = 60};
    if (clst_jwt_verify(token, size, keys, &expect, &claims, NULL, &err) == CLST_OK) {
        json_decref(claims);
    }
    clst_buf_cleanup(&payload);
    return 0;
}
