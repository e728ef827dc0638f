/*
 * Relying parties: verifying an attestation token (the CLI's `cloister token verify`, and any
 * service that accepts this service's tokens). The JWT checklist is jose.h's: the key comes from
 * the caller's JWKS by "kid", never from the token ("jku" and "x5c" are not followed); the
 * algorithm must be the key's pinned one (ES256 for this service's keys), so "none" and
 * HMAC-with-a-public-key are refused; "crit" is refused; exp and iat are required, nbf honored.
 */
#define _POSIX_C_SOURCE 200809L
#include "attest_int.h"

enum clst_status
clst_attest_token_verify(const char *token, size_t size, const struct clst_jwks *jwks,
                         const struct clst_attest_token_expect *expect, json_t **out_claims,
                         json_t **out_header, struct clst_err *err)
{
    if (token == NULL || jwks == NULL || expect == NULL || expect->clock == NULL ||
        out_claims == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "clst_attest_token_verify: NULL argument");
    }
    struct clst_jwt_expect e = {
        .issuer = expect->issuer,
        .audience = NULL,
        .typ = "JWT",
        .skew = expect->skew,
        .clock = expect->clock,
        .require_exp = true,
        .require_iat = true,
    };
    return clst_jwt_verify(token, size, jwks, &e, out_claims, out_header, err);
}
