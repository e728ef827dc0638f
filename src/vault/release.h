/*
 * Private to src/vault (and cloister serve): secure key release (docs/key-release.md).
 *
 * A key created exportable with a release policy leaves the vault only wrapped to a key that
 * exists inside an attested TEE. The caller presents an attestation token (a JWT from an
 * attestation authority the vault trusts, whose "x-ms-runtime.keys" holds the TEE's public
 * keys); the vault
 *
 *   1. verifies the token: its issuer is a trusted authority, its signature verifies with that
 *      authority's JWKS under the algorithm the JWK pins (alg none, HMAC and unknown kids are
 *      refused), and exp/nbf/iat hold at the vault's clock with the configured skew;
 *   2. checks a request nonce, when one was given, against the token's "nonce" claim (or
 *      "x-ms-runtime.nonce"), so a replayed token is refused;
 *   3. evaluates the key's release policy (policy.h) on the verified claims;
 *   4. picks the first RSA JWK of "x-ms-runtime.keys" that may encrypt (key_ops absent or
 *      holding "encrypt"/"wrapKey", "use" absent or "enc");
 *   5. answers {"value": JWS} signed (RS256) by the vault's release-signing key, whose payload
 *      carries the key with its private part wrapped by CKM_RSA_AES_KEY_WRAP to that TEE key
 *      ("key_hsm"), in the cloud key vault's format.
 *
 * Every decision (grant, denial, dry run) is handed to a decision sink as a
 * struct clst_vault_decision (the audit issue replaces the default JSON-lines file).
 *
 * Attaching: a struct clst_vault has no slot for the release engine (struct clst_vault is in
 * rest_int.h), so clst_vault_release_new() records the pair (vault, engine) in a small
 * process-wide table and clst_vault_release_of() finds it. Free the engine before the vault.
 *
 * Threading: after clst_vault_release_new() every function may be called from several threads
 * at once (the JWKS caches have their own locks).
 */
#ifndef CLST_VAULT_RELEASE_H
#define CLST_VAULT_RELEASE_H

#include <cloister/crypto.h>
#include <cloister/jose.h>
#include <cloister/policy.h>
#include <cloister/server.h>
#include <cloister/vault.h>

#include <jansson.h>
#include <openssl/x509.h>

/* ---- names and limits ----------------------------------------------------------------------- */

#define CLST_RELEASE_MAX_AUTHORITIES     16
#define CLST_RELEASE_ISSUER_MAX          256  /* bytes of an issuer URL */
#define CLST_RELEASE_SOURCE_MAX          1024 /* bytes of a JWKS file path or URL */
#define CLST_RELEASE_DEFAULT_SKEW        60   /* seconds of clock tolerance for exp/nbf/iat */
#define CLST_RELEASE_DEFAULT_REFRESH     300 /* seconds a fetched JWKS is used before re-fetching */
#define CLST_RELEASE_DEFAULT_REFETCH_MIN 30  /* seconds between two fetches of one authority */
#define CLST_RELEASE_MAX_NONCE           256 /* bytes of a request nonce */
#define CLST_RELEASE_MAX_RUNTIME_KEYS    16  /* entries of x-ms-runtime.keys examined */
#define CLST_RELEASE_MAX_JTI             128 /* bytes of a jti kept in a decision */
#define CLST_RELEASE_HASH_STR_SIZE       44  /* base64url SHA-256, 43 characters and a NUL */
#define CLST_RELEASE_TYPE_MAX            64  /* bytes of an x-ms-attestation-type kept */

/* The setting (vault_store.h meta) holding the release-signing key sealed under the master key. */
#define CLST_RELEASE_SIGNING_KEY_SETTING "vault.release-signing-key.v1"
/* The file name `cloister serve` gives the default decision log inside the data directory. */
#define CLST_RELEASE_DECISION_LOG        "release-decisions.jsonl"
#define CLST_RELEASE_POLICY_CONTENT_TYPE "application/json; charset=utf-8"
#define CLST_RELEASE_KEY_HSM_SCHEMA      "1.0"

/* ---- wrapping algorithms -------------------------------------------------------------------- */

enum clst_vault_release_enc {
    CLST_RELEASE_ENC_NONE = 0,
    CLST_RELEASE_ENC_CKM_RSA_AES_KEY_WRAP, /* "CKM_RSA_AES_KEY_WRAP": RSA-OAEP-SHA-1 (the default)
                                            */
    CLST_RELEASE_ENC_RSA_AES_KEY_WRAP_256, /* "RSA_AES_KEY_WRAP_256": RSA-OAEP-SHA-256 */
    CLST_RELEASE_ENC_RSA_AES_KEY_WRAP_384, /* "RSA_AES_KEY_WRAP_384": RSA-OAEP-SHA-384 */
};

/* Exact names; CLST_E_INVAL with a message listing the three otherwise. */
enum clst_status clst_vault_release_enc_parse(const char *name, enum clst_vault_release_enc *out,
                                              struct clst_err *err);
const char *clst_vault_release_enc_name(enum clst_vault_release_enc enc);
enum clst_hash clst_vault_release_enc_hash(enum clst_vault_release_enc enc);

/* ---- decisions ------------------------------------------------------------------------------ */

/*
 * One release decision, as the audit log will record it. Every string may be NULL (unknown at the
 * point of the decision); none is secret (tokens appear only as their SHA-256).
 */
struct clst_vault_decision {
    int64_t time;           /* the vault's clock */
    const char *request_id; /* the server's x-ms-request-id */
    const char *principal;  /* who asked (principal id) */
    const char *operation;  /* "release", "unwrapkey", "decrypt" */
    bool dry_run;           /* evaluated only (?dryRun=true): nothing left the vault */
    bool allowed;           /* the decision */
    const char *stage;      /* denials: "key", "token", "nonce", "policy", "tee-key" */
    const char *reason;     /* one line: why (policy denials: the failing path and claim) */
    const char *key_name;
    const char *key_version;
    const char *issuer;           /* the token's issuer */
    const char *jti;              /* the token's jti */
    const char *token_sha256;     /* base64url SHA-256 of the token text */
    const char *policy_hash;      /* canonical hash of the release policy (policy.h) */
    const char *attestation_type; /* x-ms-attestation-type of the token */
    const char *tee_key;          /* kid (or thumbprint) of the TEE key the result was wrapped to */
    const char *enc;              /* the wrapping algorithm */
};

/* Where decisions go. record() is called on the request's thread, once per decision; it must be
 * thread-safe and must not fail the request (it returns nothing). */
struct clst_vault_decision_sink {
    void (*record)(void *ctx, const struct clst_vault_decision *d);
    void *ctx;
};

/* The decision as a JSON object (members in camelCase, absent when NULL; "time" as RFC 3339). */
enum clst_status clst_vault_decision_to_json(const struct clst_vault_decision *d, json_t **out);

/* ---- configuration -------------------------------------------------------------------------- */

/*
 * A trusted attestation authority: tokens whose "iss" equals `issuer` (one trailing '/' ignored
 * on both sides) are verified with this authority's JWKS, taken from exactly one source:
 *   jwks_file  a JWKS file, read at start and again every refresh_s;
 *   jwks_url   "https://host[:port]/path", fetched with the client library (client.h: TLS 1.2+,
 *              no redirects) against the pinned CA bundle `ca_file` (NULL: the system roots);
 *   jwks_fn    an in-process source (cloister serve's own attestation service: clst_attest_jwks).
 * A fetched set is used for refresh_s seconds; a token whose kid the set lacks triggers one
 * re-fetch, and no authority is fetched more often than every refetch_min_s seconds (so forged
 * kids cannot turn the vault into a request amplifier). A failed fetch keeps the previous set.
 */
struct clst_vault_authority_config {
    const char *issuer; /* may be NULL for jwks_fn sources whose issuer is set later
                           (clst_vault_release_authority_set_issuer) */
    const char *jwks_file;
    const char *jwks_url;
    const char *ca_file;
    enum clst_status (*jwks_fn)(void *ctx, json_t **out, struct clst_err *err);
    void *jwks_ctx;
    int64_t refresh_s;     /* 0: CLST_RELEASE_DEFAULT_REFRESH */
    int64_t refetch_min_s; /* 0: CLST_RELEASE_DEFAULT_REFETCH_MIN */
};

/*
 * Parses the command line's "ISSUER=SOURCE" (SOURCE: an https:// URL or a file path) into `out`
 * (pointers into a copy the caller keeps: `spec` is modified, the '=' becoming a NUL).
 * CLST_E_INVAL with a message for anything else.
 */
enum clst_status clst_vault_authority_parse(char *spec, struct clst_vault_authority_config *out,
                                            struct clst_err *err);

struct clst_vault_release_config {
    const struct clst_vault_authority_config *authorities; /* borrowed during _new only */
    size_t authority_count;
    /* Seconds of clock tolerance for exp/nbf/iat: 0..CLST_JWT_MAX_SKEW; negative = default. */
    int64_t skew;
    /* 403 bodies and messages carry the types of expected and actual values, not the values. */
    bool redact_denials;
    /* A JSON-lines file each decision is appended to (created 0600); NULL: none. */
    const char *decision_log;
    /* An additional sink (the audit log); record NULL: none. */
    struct clst_vault_decision_sink sink;
    /*
     * The release-signing certificate is issued at every start for the persistent signing key:
     * by this CA when given (cloister serve passes its data directory's CA, which clients pin
     * already, so the JWS header's x5c chains to ca.pem), else self-signed. Borrowed during _new.
     */
    X509 *ca_cert;
    EVP_PKEY *ca_key;
};

void clst_vault_release_config_init(struct clst_vault_release_config *cfg);

/* ---- the engine ----------------------------------------------------------------------------- */

struct clst_vault_release;

/*
 * Creates the release engine of vault `v` and attaches it (one per vault: CLST_E_CONFLICT for a
 * second). Loads the release-signing key (RSA-2048) from the store's setting
 * CLST_RELEASE_SIGNING_KEY_SETTING (sealed under the master key), making and storing it the first
 * time (call before the server runs threads); without a master key the signing key lives only in
 * memory (logged). File sources are read now: a missing or invalid JWKS file fails here.
 */
enum clst_status clst_vault_release_new(struct clst_vault *v,
                                        const struct clst_vault_release_config *cfg,
                                        struct clst_vault_release **out, struct clst_err *err);
/* Detaches and frees (before the vault; after the server has stopped). NULL is a no-op. */
void clst_vault_release_free(struct clst_vault_release *r);
/* The engine attached to `v`, or NULL. */
struct clst_vault_release *clst_vault_release_of(const struct clst_vault *v);

/* Sets the issuer of authority `index` (for a source whose URL is known only once the server has
 * bound its port). Thread-safe. */
enum clst_status clst_vault_release_authority_set_issuer(struct clst_vault_release *r, size_t index,
                                                         const char *issuer, struct clst_err *err);
size_t clst_vault_release_authority_count(const struct clst_vault_release *r);
/* How many times authority `index` has fetched its JWKS (for tests of caching). */
unsigned clst_vault_release_authority_fetches(struct clst_vault_release *r, size_t index);

/* The signing key (public) and its certificate chain (leaf first), borrowed. */
const struct clst_jwk *clst_vault_release_signer(const struct clst_vault_release *r);
STACK_OF(X509) *clst_vault_release_signer_chain(const struct clst_vault_release *r);
bool clst_vault_release_redacts(const struct clst_vault_release *r);

/* ---- evaluation ----------------------------------------------------------------------------- */

enum clst_vault_release_stage {
    CLST_RELEASE_STAGE_NONE = 0, /* allowed */
    CLST_RELEASE_STAGE_KEY,      /* the key cannot be released (disabled, nbf/exp, not
                                    exportable, no policy) */
    CLST_RELEASE_STAGE_TOKEN,    /* malformed, forged, expired, not yet valid, untrusted issuer */
    CLST_RELEASE_STAGE_NONCE,    /* the request's nonce is not the token's */
    CLST_RELEASE_STAGE_POLICY,   /* the release policy denied */
    CLST_RELEASE_STAGE_TEE_KEY,  /* no RSA key that may encrypt in x-ms-runtime.keys */
};

/* "allowed", "key", "token", "nonce", "policy", "tee-key". */
const char *clst_vault_release_stage_name(enum clst_vault_release_stage stage);

/* The evaluation of one token for one release policy. Owned; clst_vault_release_eval_cleanup. */
struct clst_vault_release_eval {
    enum clst_vault_release_stage stage; /* where it was denied; NONE when allowed */
    char reason[CLST_ERR_MSG_SIZE];      /* denials: what was wrong (not redacted) */
    json_t *claims;                      /* the verified claims; NULL when the token failed */
    char issuer[CLST_RELEASE_ISSUER_MAX + 1];
    char jti[CLST_RELEASE_MAX_JTI + 1];
    char token_sha256[CLST_RELEASE_HASH_STR_SIZE];
    char policy_hash[CLST_RELEASE_HASH_STR_SIZE];
    char attestation_type[CLST_RELEASE_TYPE_MAX + 1];
    struct clst_policy_result *result;       /* NULL when evaluation did not get to the policy */
    EVP_PKEY *tee_key;                       /* allowed: the TEE's public key */
    char tee_kid[CLST_JWK_MAX_KID_SIZE + 1]; /* its kid, or its thumbprint when it has none */
    char tee_thumbprint[CLST_RELEASE_HASH_STR_SIZE];
};

void clst_vault_release_eval_init(struct clst_vault_release_eval *ev);
void clst_vault_release_eval_cleanup(struct clst_vault_release_eval *ev);

/*
 * Steps 1–4 of the top of this file for `token` (size bytes) and the release policy
 * `policy_text` (canonical JSON as the store keeps it). `nonce` may be NULL (not checked).
 * Every step runs as far as it can, so a policy denial also reports the TEE key, and a dry run
 * explains everything. Returns CLST_OK when the release may proceed (ev->tee_key set),
 * CLST_E_DENIED when it may not (ev->stage and ev->reason say why; err too), CLST_E_IO when no
 * JWKS of the issuer could be obtained at all, other statuses for internal failures.
 */
enum clst_status clst_vault_release_evaluate(struct clst_vault_release *r, const char *token,
                                             size_t size, const char *nonce,
                                             const char *policy_text,
                                             struct clst_vault_release_eval *ev,
                                             struct clst_err *err);

/*
 * Step 1 alone: the verified claims of a token from a trusted authority (CLST_E_DENIED with the
 * reason when not trusted or not valid) and its issuer (out_issuer may be NULL; room for
 * CLST_RELEASE_ISSUER_MAX + 1).
 */
enum clst_status clst_vault_release_verify_token(struct clst_vault_release *r, const char *token,
                                                 size_t size, json_t **out_claims, char *out_issuer,
                                                 struct clst_err *err);

/*
 * Step 4 alone: the first RSA JWK of claims["x-ms-runtime"]["keys"] (at most
 * CLST_RELEASE_MAX_RUNTIME_KEYS looked at) that may encrypt: kty "RSA", 2048..4096 bits, key_ops
 * absent or holding "encrypt" or "wrapKey", use absent or "enc". CLST_E_DENIED with a message
 * saying what the token has instead. out_kid: room for CLST_JWK_MAX_KID_SIZE + 1 (the kid, or the
 * thumbprint when the JWK has none); out_thumbprint: CLST_RELEASE_HASH_STR_SIZE (may be NULL).
 */
enum clst_status clst_vault_release_tee_key(const json_t *claims, EVP_PKEY **out, char *out_kid,
                                            char *out_thumbprint, struct clst_err *err);

/* ---- the release JWS ------------------------------------------------------------------------ */

/* What is released (all borrowed). */
struct clst_vault_release_key {
    const char *kid;            /* the key id with its version */
    const char *kty;            /* as stored: "RSA", "EC", "oct" */
    unsigned key_ops;           /* keymat.h bit set */
    const uint8_t *public_data; /* the stored public text */
    size_t public_size;
    const uint8_t *material; /* the private material: PKCS#8 DER (RSA, EC) or raw bytes (oct) */
    size_t material_size;
    const json_t *attributes; /* the key's "attributes" as the bundle shows them */
    const json_t *tags;       /* NULL: none */
    const char *policy_text;  /* canonical policy JSON */
    bool policy_immutable;
};

/*
 * The release JWS for an allowed evaluation: header {"alg":"RS256","kid":<thumbprint of the
 * signing key>,"x5c":[chain],"x5t#S256":…}, payload
 *   {"request":{"api-version","enc","kid","nonce"?},
 *    "response":{"key":{"key":{"kid","kty","key_ops",<public members>,"key_hsm"},
 *                       "attributes","tags"?,"release_policy":{"contentType","data","immutable"}}}}
 * where key_hsm = base64url({"schema_version":"1.0","header":{"kid":<TEE kid>,"alg":"dir",
 * "enc":<enc>},"ciphertext":base64url(RSA-OAEP(AES key) || AES-KWP(material))}).
 */
enum clst_status clst_vault_release_sign(struct clst_vault_release *r,
                                         const struct clst_vault_release_key *key,
                                         const struct clst_vault_release_eval *ev,
                                         enum clst_vault_release_enc enc, const char *api_version,
                                         const char *nonce, char **out_jws, struct clst_err *err);

/* CKM_RSA_AES_KEY_WRAP (enc's hash) of `data` to the evaluated TEE key (recipient operations:
 * unwrapkey/decrypt with a target token). out: appended. */
enum clst_status clst_vault_release_wrap_for(const struct clst_vault_release_eval *ev,
                                             enum clst_vault_release_enc enc, const uint8_t *data,
                                             size_t size, struct clst_buf *out,
                                             struct clst_err *err);

/* Hands a decision to the log file and the sink. Never fails the caller. */
void clst_vault_release_record(struct clst_vault_release *r, const struct clst_vault_decision *d);

/* Fills the token/policy/TEE members of `d` from an evaluation (pointers into ev). */
void clst_vault_release_decision_from_eval(const struct clst_vault_release_eval *ev,
                                           struct clst_vault_decision *d);

/*
 * The explanation of a denial for the client: {"stage", "reason"} plus, for a policy denial,
 * the policy result's "denial" members (path, claim, operator, outcome, expected, actual: the
 * values left out when the engine redacts) and "policyHash". with_trace adds the whole trace
 * ("trace"), for dry runs. NULL on allocation failure.
 */
json_t *clst_vault_release_explain(const struct clst_vault_release *r,
                                   const struct clst_vault_release_eval *ev, bool with_trace);
/* The one-line message for the client (the policy summary redacted as configured). */
void clst_vault_release_message(const struct clst_vault_release *r,
                                const struct clst_vault_release_eval *ev, char *out, size_t cap);

/* ---- REST (rest_release.c) ------------------------------------------------------------------ */

struct clst_vault_rctx;

/* Answers a denied evaluation for a REST handler (also rest_keys.c's recipient operations):
 * 403 {"error":{"code":"Forbidden","message":…,"denial":clst_vault_release_explain()}}. */
enum clst_status clst_vault_release_reply_denied(struct clst_vault_rctx *rc,
                                                 const struct clst_vault_release *r,
                                                 const struct clst_vault_release_eval *ev);

/* POST /keys/{name}/release and POST /keys/{name}/{version}/release (called by
 * clst_vault_register). The handlers find the engine with clst_vault_release_of(). */
enum clst_status clst_vault_rest_release_register(struct clst_vault *v, struct clst_server *server,
                                                  struct clst_err *err);

#endif /* CLST_VAULT_RELEASE_H */
