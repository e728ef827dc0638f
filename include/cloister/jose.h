/*
 * Cloister JOSE: JSON Web Keys (RFC 7517/7518/7638), JWS compact serialization (RFC 7515) and
 * JSON Web Tokens (RFC 7519), on cjose and jansson.
 *
 * Algorithm policy (RFC 8725): every key is pinned to exactly one of the nine RS/PS/ES
 * algorithms and a token is accepted only when its header names that algorithm. "none", the HMAC
 * algorithms (HS256/384/512) and symmetric ("oct") keys are never accepted, so neither "alg":
 * "none" nor HMAC-with-a-public-key confusion is possible. An EC key's algorithm follows from its
 * curve (P-256 ES256, P-384 ES384, P-521 ES512); an RSA key has no default: RS and PS must be
 * chosen explicitly (the JWK's "alg" member, or the alg given to clst_jwk_from_pkey).
 *
 * Verification parses the protected header itself (jansson, duplicate members rejected), refuses
 * any "crit" (we understand no extension) and "b64" (RFC 7797), decodes all three segments with
 * the strict base64url decoder of core.h, checks the signature length against the key, and only
 * then lets cjose check the signature. The key is never taken from the token ("jwk", "jku",
 * "x5c" and "x5u" header members are returned to the caller, never trusted here).
 *
 * Ownership: `_free(NULL)` is a no-op; strings returned through `char **out` are malloc'ed and
 * freed with free(); json_t results are new references (json_decref). Out-parameters are written
 * only on success. Signing and verification only read a clst_jwk or clst_jwks, so a finished
 * key or set may be shared between threads (the setters below are for before that).
 */
#ifndef CLOISTER_JOSE_H
#define CLOISTER_JOSE_H

#include <cloister/core.h>
#include <cloister/crypto.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

/* ---- limits --------------------------------------------------------------------------------- */

#define CLST_JWS_MAX_SIZE        (64 * 1024)  /* a whole compact JWS/JWT, in bytes */
#define CLST_JWS_MAX_HEADER_SIZE (16 * 1024)  /* the decoded protected header JSON */
#define CLST_JWK_MAX_SIZE        (64 * 1024)  /* the JSON text of one JWK (clst_jwk_parse) */
#define CLST_JWKS_MAX_SIZE       (512 * 1024) /* the JSON text of a JWK set (clst_jwks_parse) */
#define CLST_JWKS_MAX_KEYS       64           /* members of "keys", counted before skipping */
#define CLST_JWK_MAX_KID_SIZE    256          /* bytes of "kid" */
#define CLST_JWK_MAX_X5C         10           /* certificates in "x5c" */
#define CLST_JWK_MAX_CERT_SIZE   (16 * 1024)  /* DER bytes of one "x5c" certificate */
#define CLST_JWT_MAX_SKEW        3600         /* largest accepted clst_jwt_expect.skew */

/* ---- algorithms ----------------------------------------------------------------------------- */

enum clst_jws_alg {
    CLST_JWS_ALG_NONE = 0, /* "no algorithm pinned": never valid for signing or verification */
    CLST_JWS_RS256,        /* RSASSA-PKCS1-v1_5 */
    CLST_JWS_RS384,
    CLST_JWS_RS512,
    CLST_JWS_PS256, /* RSASSA-PSS, MGF1 with the same hash, salt = hash size */
    CLST_JWS_PS384,
    CLST_JWS_PS512,
    CLST_JWS_ES256, /* ECDSA P-256, raw r || s */
    CLST_JWS_ES384, /* ECDSA P-384 */
    CLST_JWS_ES512, /* ECDSA P-521 */
};

/* "RS256" ... "ES512"; NULL for CLST_JWS_ALG_NONE or an unknown value. */
const char *clst_jws_alg_name(enum clst_jws_alg alg);
/* Exact, case-sensitive match of one of the nine names; anything else (including "none" and
 * "HS256") is CLST_E_NOTFOUND. */
enum clst_status clst_jws_alg_parse(const char *name, enum clst_jws_alg *out);
/* The hash the algorithm uses (0 for CLST_JWS_ALG_NONE). */
enum clst_hash clst_jws_alg_hash(enum clst_jws_alg alg);
/* The key kind an algorithm needs: CLST_KEY_RSA for RS/PS, the curve for ES. */
enum clst_key_kind clst_jws_alg_key_kind(enum clst_jws_alg alg);

/* ---- JWK ------------------------------------------------------------------------------------ */

/*
 * One asymmetric key (RSA 2048..4096 bits, EC P-256/384/521; public or private) with its JWK
 * metadata. Parsing is strict: "kty" must be "RSA" or "EC" ("oct" and other types are refused
 * with CLST_E_DENIED); key members as clst_pkey_from_jwk checks them; RSA moduli outside
 * 2048..4096 bits, even or < 3 public exponents and moduli with the ROCA fingerprint
 * (CVE-2017-15361) are refused (CLST_E_DENIED); "kid" a string of at most
 * CLST_JWK_MAX_KID_SIZE bytes without NUL; "use" a string; "key_ops" an array of distinct
 * RFC 7517 operation names; "x5c" an array of 1..CLST_JWK_MAX_X5C standard-base64 DER
 * certificates whose first certificate holds this public key ("x5t"/"x5t#S256", when present
 * with "x5c", must match that certificate). "alg" is optional: one of the nine JWS algorithms
 * matching the key type (a mismatch, such as ES384 on a P-256 key or ES256 on an RSA key, is
 * CLST_E_MALFORMED), or any other string (for example "RSA-OAEP"), which is kept but leaves the
 * key without a JWS algorithm. Unknown members are ignored and not kept.
 *
 * A key is usable for JWS when it has a pinned algorithm, its "use" is absent or "sig", and its
 * "key_ops" (when present) contain "verify" (to verify) or "sign" (to sign).
 */
struct clst_jwk;

enum clst_status clst_jwk_from_json(const json_t *obj, struct clst_jwk **out, struct clst_err *err);
/* Parses JSON text of at most CLST_JWK_MAX_SIZE bytes (CLST_E_LIMIT beyond). */
enum clst_status clst_jwk_parse(const char *text, size_t size, struct clst_jwk **out,
                                struct clst_err *err);
/*
 * Wraps an EVP_PKEY (public or private; a reference is taken, the caller keeps its own). `kid`
 * may be NULL. `alg` may be CLST_JWS_ALG_NONE: EC keys then take the curve's algorithm, RSA keys
 * stay unpinned (usable for JWS only after clst_jwk_pin_alg). The same size checks as parsing.
 */
enum clst_status clst_jwk_from_pkey(EVP_PKEY *pkey, const char *kid, enum clst_jws_alg alg,
                                    struct clst_jwk **out, struct clst_err *err);
/*
 * Pins the JWS algorithm of a key that has none (for RSA: choose RS or PS). A key already pinned
 * to another algorithm is CLST_E_CONFLICT (pinning the same one again is a no-op); an algorithm
 * that does not fit the key is CLST_E_INVAL. Call before the key is shared between threads.
 */
enum clst_status clst_jwk_pin_alg(struct clst_jwk *jwk, enum clst_jws_alg alg,
                                  struct clst_err *err);
/*
 * Attaches an X.509 chain (leaf first, 1..CLST_JWK_MAX_X5C certificates) as "x5c". The leaf's
 * public key must be this key (CLST_E_INVAL otherwise). The chain is not validated here (use
 * clst_x509_verify_chain). Replaces any previous chain. Call before the key is shared.
 */
enum clst_status clst_jwk_set_x5c(struct clst_jwk *jwk, STACK_OF(X509) *chain,
                                  struct clst_err *err);
/*
 * A new JSON object: "kty", the key members (private ones only when include_private and the key
 * has them), then "kid", "use", "key_ops", "alg" and "x5c" when set. With include_private the
 * result holds secret material in jansson's ordinary (unwiped) memory: keep it short-lived.
 */
enum clst_status clst_jwk_to_json(const struct clst_jwk *jwk, bool include_private, json_t **out);
/* RFC 7638 JWK thumbprint: SHA-256 over the required public members in lexicographic order. */
enum clst_status clst_jwk_thumbprint(const struct clst_jwk *jwk,
                                     uint8_t out[static CLST_SHA256_SIZE]);
void clst_jwk_free(struct clst_jwk *jwk);

/* Accessors; returned pointers belong to the key and live as long as it. */
const char *clst_jwk_kid(const struct clst_jwk *jwk);        /* NULL when absent */
enum clst_jws_alg clst_jwk_alg(const struct clst_jwk *jwk);  /* CLST_JWS_ALG_NONE: not pinned */
const char *clst_jwk_alg_member(const struct clst_jwk *jwk); /* "alg" as given, or NULL */
const char *clst_jwk_use(const struct clst_jwk *jwk);        /* "use" as given, or NULL */
enum clst_key_kind clst_jwk_kind(const struct clst_jwk *jwk);
bool clst_jwk_has_private(const struct clst_jwk *jwk);
/* The key itself (borrowed: do not free; EVP_PKEY_up_ref to keep it longer than the JWK). */
EVP_PKEY *clst_jwk_pkey(const struct clst_jwk *jwk);
/* True when "key_ops" is absent or lists `op` ("sign", "verify", "encrypt", ...). */
bool clst_jwk_allows_op(const struct clst_jwk *jwk, const char *op);
size_t clst_jwk_x5c_count(const struct clst_jwk *jwk);
/* The i-th "x5c" entry (standard base64 of the DER), or NULL when i is out of range. */
const char *clst_jwk_x5c_b64(const struct clst_jwk *jwk, size_t i);
/* The "x5c" certificates parsed, leaf first (free with sk_X509_pop_free(chain, X509_free));
 * CLST_E_NOTFOUND when the key has none. */
enum clst_status clst_jwk_x5c_certs(const struct clst_jwk *jwk, STACK_OF(X509) **out,
                                    struct clst_err *err);

/* ---- JWK set -------------------------------------------------------------------------------- */

/*
 * A set of at most CLST_JWKS_MAX_KEYS keys with distinct "kid"s. Parsing {"keys":[...]}: members
 * whose "kty" is not RSA or EC (e.g. "oct", "OKP") are skipped and counted (RFC 7517 §5:
 * implementations should ignore key types they do not understand); a member that is not an
 * object or has no string "kty", and any member of a supported type that fails to parse, fails
 * the whole set (a damaged key of a kind we use is not silently dropped), as do duplicate "kid"s
 * and a set that mixes private and public keys. Other top-level members are ignored.
 */
struct clst_jwks;

enum clst_status clst_jwks_new(struct clst_jwks **out);
enum clst_status clst_jwks_from_json(const json_t *obj, struct clst_jwks **out,
                                     struct clst_err *err);
/* Parses JSON text of at most CLST_JWKS_MAX_SIZE bytes. */
enum clst_status clst_jwks_parse(const char *text, size_t size, struct clst_jwks **out,
                                 struct clst_err *err);
/* On success the set owns `jwk`; on failure (CLST_E_CONFLICT for a duplicate kid, CLST_E_LIMIT
 * when full) the caller still does. */
enum clst_status clst_jwks_add(struct clst_jwks *jwks, struct clst_jwk *jwk, struct clst_err *err);
size_t clst_jwks_count(const struct clst_jwks *jwks);
/* Members skipped by parsing because of an unsupported "kty". */
size_t clst_jwks_skipped(const struct clst_jwks *jwks);
const struct clst_jwk *clst_jwks_get(const struct clst_jwks *jwks, size_t i);
/* Exact match of kid; NULL when no key has it. */
const struct clst_jwk *clst_jwks_find(const struct clst_jwks *jwks, const char *kid);
/* {"keys":[...]} with clst_jwk_to_json of each key. */
enum clst_status clst_jwks_to_json(const struct clst_jwks *jwks, bool include_private,
                                   json_t **out);
void clst_jwks_free(struct clst_jwks *jwks);

/* ---- JWS compact serialization -------------------------------------------------------------- */

/*
 * Signs `payload` with a private key usable for JWS. The protected header is {"alg": the key's
 * algorithm, "kid": the key's kid (when it has one), then the members of extra_header} (may be
 * NULL; e.g. "typ", "cty", "jku", "x5c"). extra_header may not set "alg", "crit" or "b64", nor a
 * "kid" other than the key's (CLST_E_INVAL). A result larger than CLST_JWS_MAX_SIZE is
 * CLST_E_LIMIT (we never produce what we would refuse to verify).
 */
enum clst_status clst_jws_sign(const struct clst_jwk *jwk, const json_t *extra_header,
                               const void *payload, size_t payload_size, char **out_compact,
                               struct clst_err *err);

/*
 * Verifies a compact JWS (exactly three segments; `size` bytes, no NUL needed) with `jwk`. The
 * header's "alg" must equal the key's pinned algorithm, a header "kid" must equal the key's kid
 * when the key has one. On success the decoded payload is appended to out_payload (initialized by
 * the caller, whose max bounds it) and, when out_header is non-NULL, it receives the protected
 * header. Statuses: CLST_E_LIMIT (size caps), CLST_E_MALFORMED (structure, base64url, JSON),
 * CLST_E_DENIED (the key may not verify: no pinned alg, "use" not "sig", "key_ops" without
 * "verify"), CLST_E_VERIFY (alg none/HMAC/mismatch, crit, kid mismatch, bad signature).
 */
enum clst_status clst_jws_verify(const char *compact, size_t size, const struct clst_jwk *jwk,
                                 struct clst_buf *out_payload, json_t **out_header,
                                 struct clst_err *err);
/*
 * As clst_jws_verify with the key chosen from `jwks` by the header's "kid"; a header without a
 * "kid" uses the only key of a one-key set. CLST_E_NOTFOUND: "unknown kid". out_key (may be NULL)
 * receives the key that verified (owned by jwks).
 */
enum clst_status clst_jws_verify_jwks(const char *compact, size_t size,
                                      const struct clst_jwks *jwks, struct clst_buf *out_payload,
                                      json_t **out_header, const struct clst_jwk **out_key,
                                      struct clst_err *err);
/*
 * UNVERIFIED: the protected header of a compact JWS, with the same structural checks as
 * verification (sizes, three segments, strict base64url, one JSON object) but no signature check.
 * For choosing how to obtain the key (e.g. "jku", "x5c"); never trust its contents.
 */
enum clst_status clst_jws_header_unverified(const char *compact, size_t size, json_t **out,
                                            struct clst_err *err);

/* ---- JWT ------------------------------------------------------------------------------------ */

struct clst_jwt_expect {
    const char *issuer;   /* "iss" must equal it; NULL: not checked */
    const char *audience; /* must be "aud" or one of its entries; NULL: a token with "aud" fails
                             (RFC 7519 §4.1.3: a recipient not named in "aud" must reject) */
    const char *typ;      /* header "typ" must equal it (case-insensitive); NULL: not checked */
    int64_t skew;         /* seconds of clock tolerance, 0..CLST_JWT_MAX_SKEW */
    const struct clst_clock *clock; /* required */
    bool require_exp;               /* a token without "exp" fails */
    bool require_iat;               /* a token without "iat" fails */
};

/*
 * Checks the registered claims of `claims` (a JSON object): "exp", "nbf", "iat" must be numbers
 * (integers or fractional seconds within 0..253402300799); the token has expired when
 * now >= exp + skew, is not yet valid when now + skew < nbf, and was issued in the future when
 * iat > now + skew. "iss" a string, "aud" a string or a non-empty array of strings. CLST_E_VERIFY
 * for a failed check, CLST_E_MALFORMED for a claim of the wrong type; the message names the claim
 * and values, e.g. "token expired at 2026-01-01T00:00:00Z, now 2026-01-02T00:00:00Z (skew 60 s)".
 */
enum clst_status clst_jwt_validate(const json_t *claims, const struct clst_jwt_expect *expect,
                                   struct clst_err *err);
/* Signs `claims` (a JSON object, serialized compactly) as a JWS with "typ": "JWT" added to the
 * header unless extra_header sets "typ". */
enum clst_status clst_jwt_sign(const struct clst_jwk *jwk, const json_t *claims,
                               const json_t *extra_header, char **out, struct clst_err *err);
/*
 * Verifies the token's signature with the key chosen from `jwks` (as clst_jws_verify_jwks), parses
 * the payload as one JSON object (duplicate members rejected) and validates it against `expect`.
 * out_claims receives the claims; out_header (may be NULL) the protected header.
 */
enum clst_status clst_jwt_verify(const char *token, size_t size, const struct clst_jwks *jwks,
                                 const struct clst_jwt_expect *expect, json_t **out_claims,
                                 json_t **out_header, struct clst_err *err);
/* The same with a single key (as clst_jws_verify). */
enum clst_status clst_jwt_verify_jwk(const char *token, size_t size, const struct clst_jwk *jwk,
                                     const struct clst_jwt_expect *expect, json_t **out_claims,
                                     json_t **out_header, struct clst_err *err);

#endif /* CLOISTER_JOSE_H */
