/*
 * The sim kind's cache of verified platform certificate chains (used by sim_report.c).
 *
 * Verifying sim evidence decodes the platform certificate and checks the root's P-384 signature
 * on it; both depend only on public bytes (the certificate, the root) and on the verification
 * time. A chain that verified is kept here, keyed by SHA-256(platform cert DER || root cert DER),
 * with the decoded certificate, its public key, a copy of the root's DER and the window in which
 * every certificate of the chain is valid. A lookup hits only when
 *   - the evidence carries exactly the same certificate bytes (the key covers them),
 *   - the root the chain was verified against is, byte for byte, among this call's roots, and
 *   - the verification time is inside the chain's validity window;
 * otherwise the chain is decoded and verified again in full. Calls with CRLs never use the cache
 * (sim_report.c bypasses it), so revocation is judged on every such call. The report signature
 * and the certificate checks that are cheap (key type, end-entity, key usage, platform id) are
 * always done by the caller, cached or not.
 *
 * The state is process-wide, bounded (EVIDENCE_SIM_CACHE_SLOTS, least recently used evicted),
 * guarded by one mutex, and holds nothing secret.
 */
#include <pthread.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "evidence/evidence_int.h"

struct sim_slot {
    bool used;
    uint64_t last_use;
    uint8_t key[CLST_SHA256_SIZE];
    uint8_t *root_der;
    size_t root_der_size;
    X509 *cert;
    EVP_PKEY *pkey;
    int64_t not_before;
    int64_t not_after;
};

static struct sim_slot cache[EVIDENCE_SIM_CACHE_SLOTS];
static struct evidence_cache_state state = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void
slot_release(struct sim_slot *s)
{
    X509_free(s->cert);
    EVP_PKEY_free(s->pkey);
    OPENSSL_free(s->root_der);
    memset(s, 0, sizeof(*s));
}

void
evidence_sim_cache_clear(void)
{
    pthread_mutex_lock(&state.lock);
    for (size_t i = 0; i < EVIDENCE_SIM_CACHE_SLOTS; i++) {
        slot_release(&cache[i]);
    }
    state.hits = state.misses = 0;
    pthread_mutex_unlock(&state.lock);
}

void
evidence_sim_cache_stats(uint64_t *out_hits, uint64_t *out_misses)
{
    evidence_cache_stats(&state, out_hits, out_misses);
}

/* SHA-256(cert_der || root_der): the slot key. */
static bool
slot_key(const uint8_t *cert_der, size_t cert_size, const uint8_t *root_der, size_t root_size,
         uint8_t out[static CLST_SHA256_SIZE])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned int len = 0;
    bool ok = md != NULL && EVP_DigestInit_ex(md, clst_hash_md(CLST_HASH_SHA256), NULL) == 1 &&
              EVP_DigestUpdate(md, cert_der, cert_size) == 1 &&
              EVP_DigestUpdate(md, root_der, root_size) == 1 &&
              EVP_DigestFinal_ex(md, out, &len) == 1 && len == CLST_SHA256_SIZE;
    EVP_MD_CTX_free(md);
    return ok;
}

/* The DER of a certificate (allocated; OPENSSL_free it); false on failure. */
static bool
cert_der(X509 *c, uint8_t **out, size_t *out_size)
{
    unsigned char *der = NULL;
    int n = i2d_X509(c, &der);
    if (n <= 0 || der == NULL) {
        OPENSSL_free(der);
        return false;
    }
    *out = der;
    *out_size = (size_t)n;
    return true;
}

bool
evidence_sim_cache_lookup(const uint8_t *cert_der_in, size_t cert_size, STACK_OF(X509) *roots,
                          int64_t at, X509 **out_cert, EVP_PKEY **out_pkey)
{
    bool found = false;
    int root_count = roots != NULL ? sk_X509_num(roots) : 0;

    if (cert_der_in == NULL || cert_size == 0 || out_cert == NULL || out_pkey == NULL) {
        return false;
    }
    for (int r = 0; r < root_count && !found; r++) {
        uint8_t *rder = NULL;
        size_t rsize = 0;
        uint8_t key[CLST_SHA256_SIZE];
        if (!cert_der(sk_X509_value(roots, r), &rder, &rsize)) {
            continue;
        }
        if (!slot_key(cert_der_in, cert_size, rder, rsize, key)) {
            OPENSSL_free(rder);
            continue;
        }
        pthread_mutex_lock(&state.lock);
        for (size_t i = 0; i < EVIDENCE_SIM_CACHE_SLOTS; i++) {
            struct sim_slot *s = &cache[i];
            /* The key binds both DERs; the root bytes are compared as well, so a hit never rests
             * on the hash alone for the trust anchor. */
            if (!s->used || memcmp(s->key, key, sizeof(key)) != 0 || s->root_der_size != rsize ||
                memcmp(s->root_der, rder, rsize) != 0 || at < s->not_before || at > s->not_after) {
                continue;
            }
            if (X509_up_ref(s->cert) != 1) {
                break;
            }
            if (EVP_PKEY_up_ref(s->pkey) != 1) {
                X509_free(s->cert);
                break;
            }
            *out_cert = s->cert;
            *out_pkey = s->pkey;
            s->last_use = ++state.tick;
            found = true;
            break;
        }
        pthread_mutex_unlock(&state.lock);
        OPENSSL_free(rder);
    }
    pthread_mutex_lock(&state.lock);
    evidence_cache_count(&state, found);
    pthread_mutex_unlock(&state.lock);
    return found;
}

void
evidence_sim_cache_insert(const uint8_t *cert_der_in, size_t cert_size, X509 *cert, EVP_PKEY *pkey,
                          STACK_OF(X509) *chain)
{
    uint8_t *rder = NULL;
    size_t rsize = 0;
    uint8_t key[CLST_SHA256_SIZE];
    int64_t nb = 0, na = 0;

    if (cert_der_in == NULL || cert_size == 0 || cert == NULL || pkey == NULL || chain == NULL ||
        sk_X509_num(chain) < 1) {
        return;
    }
    /* The trust anchor the chain ended at is the last certificate of the verified chain. */
    if (!evidence_chain_window(chain, &nb, &na) ||
        !cert_der(sk_X509_value(chain, sk_X509_num(chain) - 1), &rder, &rsize) ||
        !slot_key(cert_der_in, cert_size, rder, rsize, key)) {
        OPENSSL_free(rder);
        return;
    }
    pthread_mutex_lock(&state.lock);
    struct sim_slot *victim = &cache[0];
    for (size_t i = 0; i < EVIDENCE_SIM_CACHE_SLOTS; i++) {
        struct sim_slot *s = &cache[i];
        if (s->used && memcmp(s->key, key, sizeof(key)) == 0) {
            victim = s; /* refresh the same chain */
            break;
        }
        if (!s->used) {
            victim = s;
            break;
        }
        if (s->last_use < victim->last_use) {
            victim = s;
        }
    }
    if (X509_up_ref(cert) == 1) {
        if (EVP_PKEY_up_ref(pkey) == 1) {
            slot_release(victim);
            victim->used = true;
            victim->last_use = ++state.tick;
            memcpy(victim->key, key, sizeof(key));
            victim->root_der = rder;
            victim->root_der_size = rsize;
            rder = NULL;
            victim->cert = cert;
            victim->pkey = pkey;
            victim->not_before = nb;
            victim->not_after = na;
        } else {
            X509_free(cert);
        }
    }
    pthread_mutex_unlock(&state.lock);
    OPENSSL_free(rder);
}
