/*
 * Cloister attest: the attestation service engine. Evidence from a TEE becomes verified claims
 * (evidence.h), the claims are appraised (an authorization policy in the release-policy condition
 * grammar plus reference values, policy.h), and the result is a signed token (an ES256 JWT, jose.h)
 * whose claims are named as the cloud attestation service names them. The REST API
 * (`POST /attest/{type}`, `POST /attest/challenge`, `GET /certs`,
 * `GET /.well-known/openid-configuration`, `/policies/{type}`, `/attest/refvals/{type}`) is
 * registered on the server with clst_attest_register(); docs/attestation.md documents it.
 *
 * State lives in one SQLite file (attest.db in the data directory: WAL, synchronous=FULL):
 * single-use challenge nonces with their expiry (so a restart cannot enable a replay), the
 * token signing keys (sealed under a key derived from the data directory's master key) with
 * their rotation schedule, the appraisal policy per attestation type and the reference values.
 *
 * Trust: evidence, request bodies and tokens are untrusted. Hardware evidence (SevSnpVm, TdxVm,
 * SgxEnclave, Tpm, AzureVm, NitroEnclave) is verified against the vendor roots compiled into the
 * binary (TPM: the configured AK roots) and the configured collateral, never against a sim root.
 * Sim evidence (the development-only software TEE) is accepted only when the service was
 * configured with that sim root (clst_attest_config.sim_roots; `cloister serve --trust-sim
 * ROOT.pem`), and its claims keep their own names (x-ms-attestation-type "sim", x-cloister-sim-*),
 * so that no hardware policy matches; each type's default policy pins its x-ms-attestation-type.
 *
 * Threading: after clst_attest_new() every function may be called from several threads at once.
 * Ownership: `_free(NULL)` is a no-op; strings returned through `char **` are malloc'ed (free());
 * json_t results are new references (json_decref). Out-parameters are written only on success.
 */
#ifndef CLOISTER_ATTEST_H
#define CLOISTER_ATTEST_H

#include <cloister/core.h>
#include <cloister/evidence.h>
#include <cloister/jose.h>
#include <cloister/server.h>

#include <jansson.h>
#include <openssl/x509.h>

/* ---- names and limits ----------------------------------------------------------------------- */

#define CLST_ATTEST_DB_FILE "attest.db" /* inside the data directory */

/* api-version values the service answers to (the cloud's data-plane versions). */
#define CLST_ATTEST_API_VERSION_LATEST "2022-08-01"

#define CLST_ATTEST_TOKEN_VERSION "1.0" /* the x-ms-ver claim */

#define CLST_ATTEST_DEFAULT_TOKEN_LIFETIME (8 * 3600)       /* seconds */
#define CLST_ATTEST_MAX_TOKEN_LIFETIME     (7 * 86400)      /* seconds */
#define CLST_ATTEST_DEFAULT_NONCE_LIFETIME 300              /* seconds */
#define CLST_ATTEST_DEFAULT_KEY_PERIOD     (30 * 86400LL)   /* a signing key signs this long */
#define CLST_ATTEST_MIN_KEY_PERIOD         3600LL
#define CLST_ATTEST_CLOCK_SKEW             300 /* added to a retired key's publication */
#define CLST_ATTEST_MAX_NONCES             100000 /* outstanding challenges (CLST_E_LIMIT past) */

/* A request body is refused (CLST_E_LIMIT) beyond this many bytes, before any JSON parsing. */
#define CLST_ATTEST_MAX_REQUEST_SIZE  (256 * 1024)
/* Decoded runtimeData / initTimeData. */
#define CLST_ATTEST_MAX_RUNTIME_DATA  (64 * 1024)
/* Nonces the service issues: 32 random bytes as base64url (43 characters). */
#define CLST_ATTEST_NONCE_BYTES       32
#define CLST_ATTEST_NONCE_TEXT_SIZE   44 /* 43 characters and a NUL */
/* A nonce in a request is at most this long (longer ones are refused before lookup). */
#define CLST_ATTEST_MAX_NONCE_SIZE    128
#define CLST_ATTEST_MAX_ISSUER_SIZE   256
/* Reference values: values of at most this many bytes, per type at most this many. */
#define CLST_ATTEST_MAX_REFVAL_SIZE   256
#define CLST_ATTEST_MAX_REFVALS       64 /* = CLST_POLICY_MAX_REF_VALUES */

/* Claim names the service adds (the cloud service's names). */
#define CLST_ATTEST_CLAIM_VER         "x-ms-ver"
#define CLST_ATTEST_CLAIM_POLICY_HASH "x-ms-policy-hash"
#define CLST_ATTEST_CLAIM_RUNTIME     "x-ms-runtime"
#define CLST_ATTEST_CLAIM_INITTIME    "x-ms-inittime"
#define CLST_ATTEST_CLAIM_NONCE       "nonce"
/* Binary runtime data of sim evidence, base64url (the counterpart of x-ms-sgx-ehd). */
#define CLST_ATTEST_CLAIM_SIM_EHD     "x-cloister-sim-ehd"

/* ---- attestation types ---------------------------------------------------------------------- */

/*
 * The service's attestation types, named as in the REST path (`/attest/SimEnclave`) and in
 * `/policies/{type}`. Each maps to an evidence kind, the value of x-ms-attestation-type and the
 * claim that reference values constrain by default.
 */
struct clst_attest_type {
    const char *name;             /* "SimEnclave" */
    const char *short_name;       /* "sim" (the CLI's --type) */
    enum clst_evidence_kind kind; /* CLST_EVIDENCE_SIM */
    const char *attestation_type; /* x-ms-attestation-type: "sim" */
    const char *measurement_claim; /* "x-cloister-sim-mrenclave" */
    /* Where binary runtime data goes in the token (base64url), or NULL: "x-cloister-sim-ehd". */
    const char *ehd_claim;
};

/* Looks a type up by its REST name ("SimEnclave") or short name ("sim"), case-sensitively.
 * CLST_E_NOTFOUND with a message listing the types for anything else. */
enum clst_status clst_attest_type_find(const char *name, const struct clst_attest_type **out,
                                       struct clst_err *err);
/* All known types (some may have no verifier in this build: clst_evidence_kind_supported). */
size_t clst_attest_type_count(void);
const struct clst_attest_type *clst_attest_type_at(size_t i);

/* ---- the engine ----------------------------------------------------------------------------- */

struct clst_attest_config {
    /* attest.db (created 0600 when missing). Required. */
    const char *db_path;
    /* The data directory's master key (32 bytes, borrowed for the call): the signing keys are
     * sealed at rest under a key derived from it (HKDF-SHA256). Required. */
    const uint8_t *master_key;
    size_t master_key_size;
    /* The token issuer ("iss", and the base of "jku" and "jwks_uri"), "https://host[:port]"
     * without a trailing '/'. NULL: taken per request from the Host header; see
     * clst_attest_issuer_set() to fix it once the port is known. */
    const char *issuer;
    /* Trusted sim roots (borrowed; the engine takes its own references). NULL or empty: sim
     * evidence is refused with a message saying how to trust a sim root. */
    STACK_OF(X509) *sim_roots;
    int64_t token_lifetime;  /* seconds, 60..CLST_ATTEST_MAX_TOKEN_LIFETIME; 0 = 8 h */
    int64_t nonce_lifetime;  /* seconds, 10..3600; 0 = CLST_ATTEST_DEFAULT_NONCE_LIFETIME */
    int64_t key_period;      /* seconds a signing key signs; 0 = CLST_ATTEST_DEFAULT_KEY_PERIOD */
    /* NULL: the system clock. Borrowed: it must outlive the engine. It is also the verification
     * time of hardware evidence (certificate and collateral validity). */
    const struct clst_clock *clock;

    /* Hardware evidence (docs/attestation.md). The vendor roots of SEV-SNP (AMD ARKs), SGX/TDX
     * (Intel SGX Root CA) and Nitro (AWS root) are compiled in; what is not is configured here,
     * read once by clst_attest_new (restart to pick up changes):
     * Intel DCAP collateral for SgxEnclave and TdxVm: a directory holding tcb_info.json,
     * qe_identity.json, tcb_signing_chain.pem, pck_crl.der and root_ca_crl.der
     * (docs/evidence-dcap.md), or a directory of such directories (one per FMSPC and TEE, at most
     * CLST_ATTEST_MAX_COLLATERAL_SETS). NULL: SgxEnclave and TdxVm are refused. */
    const char *dcap_collateral_dir;
    /* SevSnpVm: a local VCEK cache, a directory of VCEK/VLEK and ASK/ASVK certificates (.pem,
     * .crt, .cer, .der; at most 64 certificates, 256 KiB in all), for reports that do not carry
     * a certificate table. NULL: only the certificates in the evidence are used. */
    const char *vcek_cache_dir;
    /* Tpm: a PEM file of the CA certificates that issue TPM attestation-key certificates. NULL:
     * Tpm is refused (no TPM root is compiled in). */
    const char *tpm_roots_file;
};

/* Collateral sets under dcap_collateral_dir. */
#define CLST_ATTEST_MAX_COLLATERAL_SETS 32

struct clst_attest;

void clst_attest_config_init(struct clst_attest_config *cfg);

/*
 * Opens (or creates) the database, loads the signing keys (creating the first one, or rotating
 * when the current one's period is over), the policies and the reference values.
 */
enum clst_status clst_attest_new(const struct clst_attest_config *cfg, struct clst_attest **out,
                                 struct clst_err *err);
void clst_attest_free(struct clst_attest *a);

/*
 * One line saying which hardware types this engine verifies and why the others are refused, e.g.
 * "hardware: SevSnpVm, NitroEnclave, SgxEnclave+TdxVm (2 DCAP collateral sets); not configured:
 * Tpm (--tpm-ak-roots), AzureVm (not available in this build)". Always NUL-terminates.
 */
void clst_attest_hardware_summary(const struct clst_attest *a, char *out, size_t size);

/* Fixes the issuer (thread-safe; e.g. once the server knows its port). NULL: from Host. */
enum clst_status clst_attest_issuer_set(struct clst_attest *a, const char *issuer,
                                        struct clst_err *err);

/* ---- challenges (single-use nonces) --------------------------------------------------------- */

/*
 * Issues a nonce (43 base64url characters) valid until *out_expires; it is stored durably
 * before this returns. Expired nonces are purged here. CLST_E_LIMIT when
 * CLST_ATTEST_MAX_NONCES unexpired nonces are outstanding.
 */
enum clst_status clst_attest_challenge_new(struct clst_attest *a,
                                           char out_nonce[static CLST_ATTEST_NONCE_TEXT_SIZE],
                                           int64_t *out_expires, struct clst_err *err);
/*
 * Consumes a nonce in one transaction: CLST_OK the first time, for a nonce this service issued
 * and that has not expired; CLST_E_VERIFY otherwise ("unknown nonce", "already used", "expired
 * at …"). Normally called by clst_attest_evaluate.
 */
enum clst_status clst_attest_nonce_consume(struct clst_attest *a, const char *nonce,
                                           struct clst_err *err);

/* ---- requests -------------------------------------------------------------------------------- */

enum clst_attest_data_type {
    CLST_ATTEST_DATA_NONE = 0,
    CLST_ATTEST_DATA_BINARY,
    CLST_ATTEST_DATA_JSON,
};

/*
 * A parsed attestation request. Everything is owned (clst_attest_request_cleanup).
 */
struct clst_attest_request {
    const struct clst_attest_type *type;
    struct clst_buf evidence;              /* "report" or "quote", decoded */
    /* Certificates that came with the evidence, concatenated DER (untrusted; empty when none):
     * SevSnpVm's "VcekCertChain" when "report" is the cloud's JSON form (below). */
    struct clst_buf certs;
    enum clst_attest_data_type runtime_type;
    struct clst_buf runtime_data;          /* decoded "runtimeData.data" */
    json_t *runtime_json;                  /* parsed when runtime_type is JSON (an object) */
    enum clst_attest_data_type inittime_type;
    struct clst_buf inittime_data;
    json_t *inittime_json;
    char *nonce;                           /* NULL when absent */
    /* "draftPolicyForAttestation": an appraisal policy (JSON, policy.h) to evaluate instead of
     * the type's policy; the answer is then an unsecured token (alg "none") that no relying
     * party accepts. NULL when absent. */
    char *draft_policy;
};

void clst_attest_request_cleanup(struct clst_attest_request *r);

/*
 * Parses a request body for `type`:
 *   {"report"|"quote": base64url, "runtimeData"?: {"data": base64url, "dataType": "Binary"|"JSON"},
 *    "initTimeData"?: {…same…}, "nonce"?: string}
 * SevSnpVm's "report" is either the raw (or extended) SNP report or, as the cloud's clients send
 * it, base64url of the JSON {"SnpReport": base64url, "VcekCertChain"?: base64url of a PEM chain,
 * "Endorsements"?: …}: the report is taken from SnpReport and the chain into `certs`; non-empty
 * Endorsements (the cloud's UVM endorsements) are refused as unsupported.
 * Strict: exactly one of "report"/"quote"; base64url with or without padding; other members are
 * refused by name. "draftPolicyForAttestation" must be a non-empty string of at most
 * CLST_POLICY_MAX_SIZE bytes (it is parsed as a policy by clst_attest_evaluate). Sizes are
 * checked before decoding: a body over CLST_ATTEST_MAX_REQUEST_SIZE, evidence
 * over the kind's limit (clst_evidence_max_size) and runtime data over
 * CLST_ATTEST_MAX_RUNTIME_DATA are CLST_E_LIMIT. JSON runtime data must be one JSON object
 * (duplicate members refused). CLST_E_MALFORMED for everything else, naming the member.
 * `out` is written only on success (clst_attest_request_cleanup it afterwards).
 */
enum clst_status clst_attest_request_parse(const struct clst_attest_type *type, const char *body,
                                           size_t size, struct clst_attest_request *out,
                                           struct clst_err *err);

/* ---- attestation ----------------------------------------------------------------------------- */

/*
 * The whole pipeline for one request, in this order: the type has a verifier and (sim) a trusted
 * root; the evidence verifies (evidence.h: size, parse, chain, signature, debug) with the binding
 * SHA-256(runtime data) == the first 32 bytes of the report data when runtime data is given;
 * a nonce, when given, must be bound too (JSON runtime data: its "nonce" member equals it;
 * binary: the runtime data ends with the nonce's bytes); the appraisal policy of the type
 * (authorization rules and reference values) allows the claims; the nonce is consumed (single
 * use); the token is signed.
 *
 * `issuer` overrides the configured issuer for this token (NULL: the configured one; one of
 * them is required). On success *out_token is the compact JWT and *out_claims (may be NULL) its
 * claims. Failures: CLST_E_VERIFY (evidence, binding, nonce: err says what), CLST_E_DENIED (the
 * appraisal policy or the reference values denied: err names the failing rule, claim, expected
 * and actual value; *out_denial, when out_denial is non-NULL, receives the policy's JSON
 * explanation), CLST_E_NOTFOUND (no verifier for the type in this build, or the type is not
 * configured), CLST_E_LIMIT, CLST_E_MALFORMED.
 *
 * With req->draft_policy (the cloud's draftPolicyForAttestation) everything is verified the same
 * way, but the draft is evaluated instead of the type's policy, the nonce is not consumed, and
 * the token is unsecured ({"alg":"none"}, empty signature, claim x-cloister-draft-policy: true,
 * x-ms-policy-hash of the draft): a policy author's test that cannot be used as an attestation
 * (clst_attest_token_verify and the vault refuse alg "none").
 */
enum clst_status clst_attest_evaluate(struct clst_attest *a, const struct clst_attest_request *req,
                                      const char *issuer, char **out_token, json_t **out_claims,
                                      json_t **out_denial, struct clst_err *err);

/* ---- signing keys ---------------------------------------------------------------------------- */

/*
 * The published keys: {"keys":[{"kty":"EC","crv":"P-256","x","y","kid","use":"sig",
 * "alg":"ES256","x5c":[self-signed certificate]}, …]}, the current key first, then the next key
 * (published before it signs) and keys retired less than a token lifetime (+ skew) ago.
 */
enum clst_status clst_attest_jwks(struct clst_attest *a, json_t **out, struct clst_err *err);
/* The kid of the key that signs now. */
enum clst_status clst_attest_current_kid(struct clst_attest *a, char **out, struct clst_err *err);
/*
 * Starts a new signing key now: the previous one stops signing and stays published for a token
 * lifetime plus CLST_ATTEST_CLOCK_SKEW. Rotation also happens by itself when a key's period ends.
 */
enum clst_status clst_attest_keys_rotate(struct clst_attest *a, struct clst_err *err);

/* The OpenID discovery document for `issuer` (NULL: the configured one). */
enum clst_status clst_attest_openid_config(struct clst_attest *a, const char *issuer, json_t **out,
                                           struct clst_err *err);

/* ---- appraisal policy and reference values ------------------------------------------------- */

/*
 * The appraisal policy of a type (policy.h, CLST_POLICY_APPRAISAL) as stored by the
 * administrator, or the type's default when none was set (*out_is_default true).
 */
enum clst_status clst_attest_policy_get(struct clst_attest *a, const struct clst_attest_type *type,
                                        json_t **out_policy, bool *out_is_default,
                                        struct clst_err *err);
/*
 * The policy in force for a type: the stored (or default) policy with the type's reference
 * values merged into "referenceValues", and its canonical hash (x-ms-policy-hash).
 */
enum clst_status clst_attest_policy_effective(struct clst_attest *a,
                                              const struct clst_attest_type *type,
                                              json_t **out_policy, char **out_hash,
                                              struct clst_err *err);
/* Sets (validated: clst_policy_parse, CLST_POLICY_APPRAISAL) or resets a type's policy. */
enum clst_status clst_attest_policy_set(struct clst_attest *a, const struct clst_attest_type *type,
                                        const char *text, size_t size, struct clst_err *err);
enum clst_status clst_attest_policy_reset(struct clst_attest *a,
                                          const struct clst_attest_type *type,
                                          struct clst_err *err);

/*
 * Reference values: allowed values of a claim (by default the type's measurement claim) for a
 * type. Values are strings; hex measurements are stored in lower case. While a type has none, no
 * reference-value check applies to it (the authorization rules alone decide), as with the cloud
 * service's default policies. add: CLST_E_CONFLICT when present; remove: CLST_E_NOTFOUND when
 * absent; CLST_E_LIMIT past CLST_ATTEST_MAX_REFVALS per (type, claim).
 */
enum clst_status clst_attest_refval_add(struct clst_attest *a, const struct clst_attest_type *type,
                                        const char *claim, const char *value, const char *note,
                                        struct clst_err *err);
enum clst_status clst_attest_refval_remove(struct clst_attest *a,
                                           const struct clst_attest_type *type, const char *claim,
                                           const char *value, struct clst_err *err);
/* [{"claim","value","note"?,"created"}…] sorted by claim and value. */
enum clst_status clst_attest_refval_list(struct clst_attest *a, const struct clst_attest_type *type,
                                         json_t **out, struct clst_err *err);

/* ---- REST ------------------------------------------------------------------------------------ */

/*
 * Registers the service's public routes on `server` (before it starts):
 *   POST /attest/{type}            evidence -> {"token"}
 *   POST /attest/challenge         -> {"nonce","expiresAt","expiresOn"}
 *   GET  /certs                    the signing keys as a JWKS with x5c
 *   GET  /.well-known/openid-configuration
 * `a` must outlive the server's running time.
 */
enum clst_status clst_attest_register(struct clst_attest *a, struct clst_server *server,
                                      struct clst_err *err);
/*
 * Registers the administrator routes:
 *   GET  /policies/{type}          the policy as a signed policy token
 *   PUT  /policies/{type}          set the policy (body: the policy JSON, or the cloud's JWS)
 *   POST /policies/{type}:reset    back to the default
 *   GET/POST/DELETE /attest/refvals/{type}   reference values
 * They are CLST_ROUTE_PROTECTED: the server's authentication hook (the vault's bearer tokens:
 * register the vault first) authenticates them, and the handlers require the vault role
 * "Administrator" at scope "/" of the principal the hook returned (a struct
 * clst_vault_principal). Without a hook the server refuses to start.
 */
enum clst_status clst_attest_register_admin(struct clst_attest *a, struct clst_server *server,
                                            struct clst_err *err);

/* ---- relying parties: token verification ----------------------------------------------------- */

struct clst_attest_token_expect {
    const char *issuer;             /* "iss" must equal it; NULL: not checked */
    const struct clst_clock *clock; /* required */
    int64_t skew;                   /* seconds, 0..CLST_JWT_MAX_SKEW */
};

/*
 * Verifies an attestation token: the JWS signature with the key of `jwks` named by the header's
 * "kid" (alg none, HMAC and any algorithm other than the key's are refused), "typ" JWT, and the
 * times (exp and iat required, nbf when present) at the expected clock, then the issuer.
 * *out_claims receives the claims, *out_header (may be NULL) the protected header.
 */
enum clst_status clst_attest_token_verify(const char *token, size_t size,
                                          const struct clst_jwks *jwks,
                                          const struct clst_attest_token_expect *expect,
                                          json_t **out_claims, json_t **out_header,
                                          struct clst_err *err);

/* ---- a small HTTPS client for the CLI and tests --------------------------------------------- */

struct clst_attest_client {
    const char *url;     /* "https://host:port" (no trailing '/') */
    const char *ca_file; /* PEM bundle to trust (the server's ca.pem); NULL: system roots */
    const char *bearer;  /* Authorization: Bearer …; NULL: none */
    long timeout_s;      /* 0: 30 s */
};

#define CLST_ATTEST_CLIENT_MAX_RESPONSE (4u * 1024 * 1024)

/*
 * One request: `method` "GET", "POST", "PUT" or "DELETE"; `path_query` starts with '/'. The
 * response body (at most CLST_ATTEST_CLIENT_MAX_RESPONSE bytes) is appended to out_body and the
 * status is stored in *out_status. CLST_E_IO when the request could not be made (the message
 * says why: connection refused, certificate not trusted, …).
 */
enum clst_status clst_attest_client_request(const struct clst_attest_client *c, const char *method,
                                            const char *path_query, const char *content_type,
                                            const void *body, size_t body_size,
                                            long *out_status, struct clst_buf *out_body,
                                            struct clst_err *err);
/* As above for JSON answers: a 2xx answer's body parsed into *out; another status becomes an
 * error whose message carries the service's {"error":{"message"}} (CLST_E_VERIFY for 400,
 * CLST_E_DENIED for 401/403, CLST_E_NOTFOUND for 404, CLST_E_CONFLICT for 409, else CLST_E_IO). */
enum clst_status clst_attest_client_json(const struct clst_attest_client *c, const char *method,
                                         const char *path_query, const json_t *body, json_t **out,
                                         struct clst_err *err);

#endif /* CLOISTER_ATTEST_H */
