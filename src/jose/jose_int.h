/* Private to src/jose: the key structure shared by jwk.c, jws.c and jwt.c. */
#ifndef CLST_JOSE_INT_H
#define CLST_JOSE_INT_H

#include <cloister/jose.h>

#include <cjose/cjose.h>

/* Bits of struct clst_jwk.key_ops (RFC 7517 §4.3). */
enum jose_key_op {
    JOSE_OP_SIGN = 1u << 0,
    JOSE_OP_VERIFY = 1u << 1,
    JOSE_OP_ENCRYPT = 1u << 2,
    JOSE_OP_DECRYPT = 1u << 3,
    JOSE_OP_WRAP_KEY = 1u << 4,
    JOSE_OP_UNWRAP_KEY = 1u << 5,
    JOSE_OP_DERIVE_KEY = 1u << 6,
    JOSE_OP_DERIVE_BITS = 1u << 7,
};

struct clst_jwk {
    EVP_PKEY *pkey;  /* public or private; we hold one reference */
    cjose_jwk_t *cj; /* the same key as cjose sees it (sign/verify go through cjose) */
    enum clst_key_kind kind;
    bool has_private;
    enum clst_jws_alg alg; /* pinned JWS algorithm, CLST_JWS_ALG_NONE when none */
    char *alg_member;      /* "alg" as given (may be a non-JWS algorithm), or NULL */
    char *kid;             /* or NULL */
    char *use;             /* or NULL */
    bool has_key_ops;
    unsigned key_ops; /* enum jose_key_op bits, when has_key_ops */
    char **x5c;       /* standard base64 DER certificates, leaf first */
    size_t x5c_count;
};

/*
 * Is `jwk` usable for a JWS operation (`op` is JOSE_OP_SIGN or JOSE_OP_VERIFY)? CLST_E_DENIED
 * with a message naming the reason otherwise.
 */
enum clst_status jose_jwk_check_usable(const struct clst_jwk *jwk, unsigned op,
                                       struct clst_err *err);

/* Parses `size` bytes of JSON text (at most `max`: CLST_E_LIMIT) as one value, rejecting
 * duplicate object members; `what` names the input in messages. */
enum clst_status jose_json_load(const char *text, size_t size, size_t max, const char *what,
                                json_t **out, struct clst_err *err);

#endif /* CLST_JOSE_INT_H */
