/*
 * Inside the evidence component: the per-kind interface and the helpers the sim files share.
 * Not a public header; tests include it to build deliberately bad evidence.
 */
#ifndef CLST_EVIDENCE_INT_H
#define CLST_EVIDENCE_INT_H

#include <pthread.h>

#include <cloister/crypto.h>
#include <cloister/evidence.h>

/*
 * One TEE kind. clst_evidence_verify() drives these in a fixed order, so no kind can skip a step:
 *
 *   size <= max_size                       (before any byte is parsed: CLST_E_LIMIT)
 *   parse(bytes) -> parsed                 (pure: no allocation, no crypto, owned copies)
 *   verify(parsed, bytes, input)           (chain + signature over the original bytes)
 *   is_debuggable(parsed), report_data()   (the framework's debug and binding checks)
 *   claims(parsed) -> JSON                 (only reached after all checks passed)
 *
 * `parsed` is parsed_size bytes of zeroed storage the framework provides and wipes afterwards.
 * Hardware kinds whose collateral arrives separately read it from input->endorsements in verify.
 */
struct evidence_ops {
    enum clst_evidence_kind kind;
    const char *name;
    size_t max_size;
    size_t parsed_size;
    enum clst_status (*parse)(const uint8_t *data, size_t size, void *parsed, struct clst_err *err);
    enum clst_status (*verify)(const void *parsed, const uint8_t *data, size_t size,
                               const struct clst_evidence_input *in, struct clst_err *err);
    bool (*is_debuggable)(const void *parsed);
    /* The report data as the evidence carries it (points into `parsed`). */
    const uint8_t *(*report_data)(const void *parsed, size_t *out_size);
    /* Adds the kind's claims to `claims` (an empty object). */
    enum clst_status (*claims)(const void *parsed, json_t *claims, struct clst_err *err);
};

/* evidence.c: whether p[0..n) is all zero bytes (reserved and padding fields). */
bool evidence_all_zero(const uint8_t *p, size_t n);

/*
 * evidence.c: what the caches of verified certificate chains (sevsnp_verify.c, sim_cache.c)
 * share. Each cache keeps its own slots; its lock, LRU clock and hit/miss counters live in one
 * static struct evidence_cache_state, initialized as {.lock = PTHREAD_MUTEX_INITIALIZER}.
 */
struct evidence_cache_state {
    pthread_mutex_t lock;
    uint64_t tick; /* LRU clock: a slot's last use is ++tick */
    uint64_t hits;
    uint64_t misses;
};

/* With st->lock held: counts one lookup as a hit or a miss. */
void evidence_cache_count(struct evidence_cache_state *st, bool hit);
/* Takes st->lock and reads the counters; either out may be NULL. */
void evidence_cache_stats(struct evidence_cache_state *st, uint64_t *out_hits,
                          uint64_t *out_misses);
/* The window in which every certificate of `chain` is valid (latest notBefore, earliest
 * notAfter, seconds since the epoch); false when a time is unreadable or the window is empty
 * (such a chain is simply not cached). */
bool evidence_chain_window(STACK_OF(X509) *chain, int64_t *out_nb, int64_t *out_na);

/* sim_report.c */
extern const struct evidence_ops evidence_sim_ops;

/*
 * Serializes the signed part of sim evidence (report, certificate length, certificate) into
 * out. Reserved fields are written as zero; version, magic and sig_alg come from `r` as given so
 * tests can produce bad variants.
 */
enum clst_status evidence_sim_encode_tbs(const struct clst_sim_report *r, const uint8_t *cert_der,
                                         size_t cert_size, struct clst_buf *out);

/* sim_platform.c */

/*
 * Issues a certificate for `subject_key`, signed by `issuer_key` with SHA-384 (self-signed when
 * issuer_cert is NULL). `ca` selects a CA certificate (basicConstraints CA:TRUE, keyCertSign)
 * or an end-entity one (CA:FALSE, digitalSignature). `platform_id` (may be NULL) becomes the
 * subject's serialNumber in hex. Validity is [not_before, not_after].
 */
enum clst_status evidence_sim_cert_issue(EVP_PKEY *issuer_key, X509 *issuer_cert,
                                         EVP_PKEY *subject_key, const char *common_name,
                                         const uint8_t *platform_id, bool ca, int64_t not_before,
                                         int64_t not_after, X509 **out, struct clst_err *err);

/* Reads the platform id (hex in the subject's serialNumber) from a platform certificate:
 * CLST_E_VERIFY when it is missing or not 32 hex characters. */
enum clst_status evidence_sim_cert_platform_id(X509 *cert,
                                               uint8_t out[static CLST_SIM_PLATFORM_ID_SIZE],
                                               struct clst_err *err);

/* sim_cache.c: the process-wide cache of verified sim platform certificate chains, keyed by
 * SHA-256(platform cert DER || root cert DER). Thread-safe, bounded, nothing secret. */
#define EVIDENCE_SIM_CACHE_SLOTS 32

/* On a hit (same certificate bytes, the chain's root byte-identical to one of `roots`, `at`
 * inside the chain's validity window) hands out new references to the decoded certificate and
 * its public key (the caller frees both) and returns true. Counts a hit or a miss. */
bool evidence_sim_cache_lookup(const uint8_t *cert_der, size_t cert_size, STACK_OF(X509) *roots,
                               int64_t at, X509 **out_cert, EVP_PKEY **out_pkey);
/* Remembers a chain that clst_x509_verify_chain() accepted without CRLs (`chain` as it returned
 * it: leaf first, trust anchor last). Takes its own references; failures only skip caching. */
void evidence_sim_cache_insert(const uint8_t *cert_der, size_t cert_size, X509 *cert,
                               EVP_PKEY *pkey, STACK_OF(X509) *chain);
/* For tests and benchmarks: empty the cache and zero its counters; read the counters. */
void evidence_sim_cache_clear(void);
void evidence_sim_cache_stats(uint64_t *out_hits, uint64_t *out_misses);

#endif
