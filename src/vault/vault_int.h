/* Private to src/vault: object sealing and helpers shared by the store's files. */
#ifndef CLST_VAULT_INT_H
#define CLST_VAULT_INT_H

#include <cloister/vault_store.h>

/*
 * Seals `pt` (pt_size <= CLST_VAULT_VALUE_MAX) as the value of (kind, name, version): a fresh
 * 32-byte object key, AES-256-GCM with a random 12-byte nonce and AAD = the canonical encoding
 * below, the object key wrapped by `mk`. `out` is written only on success (release it with
 * clst_vault_sealed_cleanup).
 *
 * AAD (every string length-prefixed, so no two (kind, name, version) share an encoding):
 *   u32be(len("cloister-vault-object")) "cloister-vault-object" u8(alg) u8(kind)
 *   u32be(len(name)) name u32be(len(version)) version
 * Callers pass the case-folded name (names are case-insensitive identities).
 */
enum clst_status clst_vault_objseal_seal(struct clst_vault_masterkey *mk, enum clst_vault_kind kind,
                                         const char *name, const char *version, const uint8_t *pt,
                                         size_t pt_size, struct clst_vault_sealed *out,
                                         struct clst_err *err);

/*
 * Opens a sealed value for (kind, name, version). Anything wrong with the stored parts (sizes,
 * algorithm, master key id, wrapped key, nonce, ciphertext, tag, or AAD fields that do not match)
 * is CLST_E_VERIFY with a message saying that the stored object failed its integrity check; no
 * plaintext is returned then. Errors of the master-key provider other than CLST_E_VERIFY (an HSM
 * that is unreachable) are passed through. *out is a secret of the value's size.
 */
enum clst_status clst_vault_objseal_open(struct clst_vault_masterkey *mk, enum clst_vault_kind kind,
                                         const char *name, const char *version,
                                         const struct clst_vault_sealed *in,
                                         struct clst_secret **out, struct clst_err *err);

/* Writes the AAD for (alg, kind, name, version) into out (appends). Exposed for the tests. */
enum clst_status clst_vault_objseal_aad(uint8_t alg, enum clst_vault_kind kind, const char *name,
                                        const char *version, struct clst_buf *out);

/* ASCII lower-case copy of a valid name into out (CLST_VAULT_NAME_MAX + 1 bytes). */
void clst_vault_name_fold(const char *name, char out[static CLST_VAULT_NAME_MAX + 1]);

/*
 * The read cache (store_cache.c): wraps a backend so that version rows and principals are read
 * from memory while no write has happened through it since and they are younger than the TTL.
 * The store (store.c) puts one in front of every backend. Rows stay sealed and MAC'ed; the store
 * checks them on every use as before.
 */
#define CLST_VAULT_CACHE_TTL_MS 1000

struct clst_vault_cache_stats {
    uint64_t hits;
    uint64_t misses;
};

/* On success, *out_ops and *out_be are the cache, which owns inner_be (closed with it). */
enum clst_status clst_vault_cache_wrap(const struct clst_vault_backend_ops *inner, void *inner_be,
                                       const struct clst_vault_backend_ops **out_ops, void **out_be,
                                       struct clst_err *err);
/* Frees a cache made by clst_vault_cache_wrap without closing the backend it wraps. */
void clst_vault_cache_unwrap(const struct clst_vault_backend_ops *ops, void *be);
/* The counters of a cache backend; false when ops is not the cache. */
bool clst_vault_cache_stats(const struct clst_vault_backend_ops *ops, void *be,
                            struct clst_vault_cache_stats *out);
/* The counters of a store's read cache (false when it has none). */
struct clst_vault_store;
bool clst_vault_store_cache_stats(struct clst_vault_store *s, struct clst_vault_cache_stats *out);

#endif /* CLST_VAULT_INT_H */
