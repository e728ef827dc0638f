/*
 * Private to src/attest: the engine object, the SQLite store (store.c), the signing-key ring
 * (keys.c), the appraisal state (appraise.c). Tests include it to reach the pieces directly.
 */
#ifndef CLST_ATTEST_INT_H
#define CLST_ATTEST_INT_H

#include <pthread.h>

#include <cloister/attest.h>
#include <cloister/crypto.h>
#include <cloister/jose.h>
#include <cloister/policy.h>

#define ATTEST_TYPE_COUNT 7 /* entries of the type table (engine.c) */

/* ---- store.c: attest.db ---------------------------------------------------------------------- */

struct attest_store;

enum clst_status attest_store_open(const char *path, struct attest_store **out,
                                   struct clst_err *err);
void attest_store_close(struct attest_store *s);

/* Purges nonces that expired before `now`, refuses (CLST_E_LIMIT) when `max` unexpired ones
 * are outstanding, and inserts `nonce` — one transaction. */
enum clst_status attest_store_nonce_insert(struct attest_store *s, const char *nonce,
                                           int64_t now, int64_t expires, size_t max,
                                           struct clst_err *err);
/* Marks `nonce` used at `now` when it exists, is unused and expires after now — one
 * transaction; CLST_E_VERIFY with the reason otherwise. */
enum clst_status attest_store_nonce_consume(struct attest_store *s, const char *nonce, int64_t now,
                                            struct clst_err *err);

/* One signing key row. sealed: nonce(12) || ciphertext || tag(16) of the PKCS#8 DER key. */
struct attest_key_row {
    char kid[64];
    int64_t created;
    int64_t not_before;    /* signs from … */
    int64_t not_after;     /* … until (exclusive) */
    int64_t publish_until; /* in the JWKS until (exclusive) */
    uint8_t *sealed;
    size_t sealed_size;
    uint8_t *cert;
    size_t cert_size;
};
void attest_key_row_cleanup(struct attest_key_row *r);

enum clst_status attest_store_keys_load(struct attest_store *s, struct attest_key_row **out,
                                        size_t *out_count, struct clst_err *err);
void attest_key_rows_free(struct attest_key_row *rows, size_t count);
enum clst_status attest_store_key_insert(struct attest_store *s, const struct attest_key_row *r,
                                         struct clst_err *err);
/* Updates the three times of `kid` (CLST_E_NOTFOUND when absent). */
enum clst_status attest_store_key_update(struct attest_store *s, const char *kid,
                                         int64_t not_before, int64_t not_after,
                                         int64_t publish_until, struct clst_err *err);
/* Deletes keys whose publication ended before `now`. */
enum clst_status attest_store_keys_prune(struct attest_store *s, int64_t now, struct clst_err *err);

/* Policies: text of the stored policy for `type`, or CLST_E_NOTFOUND. */
enum clst_status attest_store_policy_get(struct attest_store *s, const char *type, char **out,
                                         struct clst_err *err);
enum clst_status attest_store_policy_put(struct attest_store *s, const char *type, const char *text,
                                         int64_t now, struct clst_err *err);
/* CLST_OK also when none was stored. */
enum clst_status attest_store_policy_delete(struct attest_store *s, const char *type,
                                            struct clst_err *err);

/* Reference values. */
enum clst_status attest_store_refval_add(struct attest_store *s, const char *type,
                                         const char *claim, const char *value, const char *note,
                                         int64_t now, size_t max_per_claim, struct clst_err *err);
enum clst_status attest_store_refval_remove(struct attest_store *s, const char *type,
                                            const char *claim, const char *value,
                                            struct clst_err *err);
/* [{"claim","value","note"?,"created"}…] ordered by claim, value. */
enum clst_status attest_store_refval_list(struct attest_store *s, const char *type, json_t **out,
                                          struct clst_err *err);

/* ---- keys.c: the signing-key ring ------------------------------------------------------------ */

struct attest_key {
    char kid[64];
    int64_t created, not_before, not_after, publish_until;
    struct clst_jwk *jwk; /* private, ES256, with x5c */
};

struct attest_keyring {
    struct attest_key *keys; /* sorted by not_before, oldest first */
    size_t count;
    json_t *jwks;            /* the public set as published (rebuilt on every change) */
    int64_t next_event;      /* the ring must be maintained again at this time */
};

/* The key that signs at `now` (NULL when none). */
const struct attest_key *attest_keyring_current(const struct attest_keyring *ring, int64_t now);
/* Brings the ring to `now`: loads from the store when empty, creates the first/next key,
 * prunes keys past publication, rebuilds the JWKS. Caller holds the write lock. */
enum clst_status attest_keyring_maintain(struct clst_attest *a, int64_t now, bool force_rotate,
                                         struct clst_err *err);
void attest_keyring_cleanup(struct attest_keyring *ring);

/* Key sealing (exposed for tests). seal_key: 32 bytes. */
enum clst_status attest_key_seal(const uint8_t *seal_key, const char *kid, const uint8_t *pt,
                                 size_t pt_size, struct clst_buf *out);
enum clst_status attest_key_unseal(const uint8_t *seal_key, const char *kid, const uint8_t *sealed,
                                   size_t sealed_size, struct clst_buf *out_secret,
                                   struct clst_err *err);
/* A self-signed certificate for the signing key (ECDSA with SHA-256). */
enum clst_status attest_key_cert(EVP_PKEY *key, int64_t not_before, int64_t not_after, X509 **out,
                                 struct clst_err *err);

/* ---- appraise.c ------------------------------------------------------------------------------ */

struct attest_appraisal {
    json_t *stored;               /* the administrator's policy, NULL: the default */
    json_t *refvals;              /* the type's reference values (list as stored) */
    json_t *effective_json;       /* stored/default + refvals */
    struct clst_policy *effective;
    char hash[CLST_POLICY_HASH_STR_SIZE];
};

/* The default appraisal policy of a type (a new object). */
json_t *attest_default_policy(const struct clst_attest_type *type);
/* Rebuilds appraisal state i from the store. Caller holds the write lock. */
enum clst_status attest_appraisal_reload(struct clst_attest *a, size_t i, struct clst_err *err);
void attest_appraisal_cleanup(struct attest_appraisal *ap);
/* Evaluates the policy in force for type i against claims (caller holds the read lock). On
 * CLST_OK writes the hash into hash_out. */
enum clst_status attest_appraisal_check(struct clst_attest *a, size_t i, const json_t *claims,
                                        char hash_out[static CLST_POLICY_HASH_STR_SIZE],
                                        json_t **out_denial, struct clst_err *err);

/* Evaluates a draft policy text (draftPolicyForAttestation) against claims; its hash into
 * hash_out. CLST_E_MALFORMED/LIMIT when it does not parse, CLST_E_DENIED as above. */
enum clst_status attest_draft_check(const struct clst_attest_type *type, const char *text,
                                    const json_t *claims,
                                    char hash_out[static CLST_POLICY_HASH_STR_SIZE],
                                    json_t **out_denial, struct clst_err *err);

/* ---- hardware.c: roots and collateral of the hardware types ---------------------------------- */

/* One DCAP collateral set (a directory) as the verifier's bundle. */
struct attest_collateral {
    char *path;
    enum clst_evidence_kind kind; /* CLST_EVIDENCE_SGX or CLST_EVIDENCE_TDX (tcbInfo.id) */
    struct clst_buf bundle;
};

struct attest_hw {
    STACK_OF(X509) *amd_roots;   /* pinned */
    STACK_OF(X509) *intel_roots; /* pinned */
    STACK_OF(X509) *nitro_roots; /* pinned */
    STACK_OF(X509) *tpm_roots;   /* configured; NULL: Tpm refused */
    struct clst_buf vcek_certs;  /* concatenated DER; empty: none */
    struct attest_collateral *coll;
    size_t coll_count;
};

/* Loads the pinned roots and what cfg configures. */
enum clst_status attest_hw_load(struct attest_hw *hw, const struct clst_attest_config *cfg,
                                struct clst_err *err);
void attest_hw_cleanup(struct attest_hw *hw);
/*
 * Verifies hardware evidence of `type` (in: evidence, runtime data, time set by the caller;
 * roots, endorsements and kind options are set here). req_certs: certificates that came with the
 * request (SevSnpVm's VcekCertChain, concatenated DER), or NULL. CLST_E_NOTFOUND when the type is not
 * available in this build or not configured (the message says which option enables it).
 */
enum clst_status attest_hw_verify(const struct attest_hw *hw, const struct clst_attest_type *type,
                                  const struct clst_buf *req_certs,
                                  struct clst_evidence_input *in, json_t **out_claims,
                                  struct clst_err *err);

/* ---- the engine ------------------------------------------------------------------------------ */

struct clst_attest {
    struct attest_store *store;
    struct clst_secret *seal_key;  /* 32 bytes */
    STACK_OF(X509) *sim_roots;     /* own references; NULL when none is trusted */
    struct attest_hw hw;           /* hardware roots and collateral (read-only after new) */
    const struct clst_clock *clock;
    int64_t token_lifetime;
    int64_t nonce_lifetime;
    int64_t key_period;

    /* Guards keys and appraisal: readers sign and appraise, writers rotate and change policy. */
    pthread_rwlock_t lock;
    struct attest_keyring ring;
    struct attest_appraisal appraisal[ATTEST_TYPE_COUNT];

    pthread_mutex_t issuer_lock;
    char issuer[CLST_ATTEST_MAX_ISSUER_SIZE + 1]; /* "" = from the request */
};

static inline int64_t
attest_now(const struct clst_attest *a)
{
    return clst_clock_now(a->clock);
}

/* Index of a type in the table. */
size_t attest_type_index(const struct clst_attest_type *type);
/* Signs `claims` as a token of this service (alg ES256, kid, jku = issuer + "/certs", typ JWT),
 * rotating keys first when due. */
enum clst_status attest_sign(struct clst_attest *a, const char *issuer, const json_t *claims,
                             char **out, struct clst_err *err);
/* Checks an issuer text: https://host[:port], no path, no trailing '/', printable ASCII. */
enum clst_status attest_issuer_check(const char *issuer, struct clst_err *err);
/* The effective issuer: `override`, else the configured one; CLST_E_INVAL when neither. */
enum clst_status attest_issuer_pick(struct clst_attest *a, const char *override,
                                    char out[static CLST_ATTEST_MAX_ISSUER_SIZE + 1],
                                    struct clst_err *err);

#endif /* CLST_ATTEST_INT_H */
