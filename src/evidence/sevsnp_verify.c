/*
 * SEV-SNP verification (docs/evidence-sevsnp.md): options, the cache of verified chains, the
 * VCEK/VLEK selection, the chain to the pinned ARK, the report signature, the guest policy, the
 * claims, and the kind's evidence_ops.
 *
 * Trust: the report, the extended report's certificate table, the endorsements and the cache
 * directory behind them are all untrusted. The only anchors are the ARKs compiled into
 * amd_roots.c (tests pass their own set to evidence_sevsnp_verify_with). The caller's `roots`
 * select which of those products it accepts; an ARK inside the evidence is never used.
 *
 * Order of checks for each candidate VCEK/VLEK (the first failure of the candidate that got
 * furthest is reported): role (VCEK vs VLEK, from the SIGNING_KEY field), hwID == CHIP_ID, the
 * certificate's TCB == REPORTED_TCB (product layout), the product's ARK allowed by the caller,
 * chain VCEK -> ASK -> ARK (or VLEK -> ASVK -> ARK) with RSA-PSS SHA-384 at the caller's time,
 * the ARK's CRL when CRLs are given, the product agreeing with the report's CPUID and the
 * certificate's productName, then the ECDSA P-384 signature over bytes 0x000..0x29F. Then the
 * guest policy: migration agent, SMT, VMPL, minimum TCB. Debug and report-data binding are the
 * framework's checks (evidence.c).
 */
#include <pthread.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/x509v3.h>

#include "evidence/sevsnp_int.h"

/* ---- options -------------------------------------------------------------------------------- */

static enum clst_status
option_u8(const json_t *v, const char *name, unsigned max, uint8_t *out, struct clst_err *err)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0 ||
        json_integer_value(v) > (json_int_t)max) {
        return clst_err_set(err, CLST_E_INVAL, "sevsnp option %s must be an integer from 0 to %u",
                            name, max);
    }
    *out = (uint8_t)json_integer_value(v);
    return CLST_OK;
}

static enum clst_status
option_min_tcb(const json_t *obj, struct sevsnp_tcb *out, struct clst_err *err)
{
    const char *key;
    json_t *v;
    enum clst_status rc = CLST_OK;

    if (!json_is_object(obj)) {
        return clst_err_set(err, CLST_E_INVAL,
                            "sevsnp option min_tcb must be an object such as {\"bootloader\":3,"
                            "\"tee\":0,\"snp\":8,\"microcode\":115}");
    }
    memset(out, 0, sizeof(*out));
    json_object_foreach((json_t *)obj, key, v)
    {
        if (strcmp(key, "bootloader") == 0) {
            rc = option_u8(v, "min_tcb.bootloader", 255, &out->bootloader, err);
        } else if (strcmp(key, "tee") == 0) {
            rc = option_u8(v, "min_tcb.tee", 255, &out->tee, err);
        } else if (strcmp(key, "snp") == 0) {
            rc = option_u8(v, "min_tcb.snp", 255, &out->snp, err);
        } else if (strcmp(key, "microcode") == 0) {
            rc = option_u8(v, "min_tcb.microcode", 255, &out->microcode, err);
        } else if (strcmp(key, "fmc") == 0) {
            rc = option_u8(v, "min_tcb.fmc", 255, &out->fmc, err);
        } else {
            rc = clst_err_set(err, CLST_E_INVAL,
                              "unknown sevsnp option min_tcb.%.40s (known: bootloader, tee, snp, "
                              "microcode, fmc)",
                              key);
        }
        if (rc != CLST_OK) {
            return rc;
        }
    }
    return CLST_OK;
}

static enum clst_status
option_product(const json_t *v, enum sevsnp_product *out, struct clst_err *err)
{
    const char *name = json_string_value(v);
    for (int p = SEVSNP_PRODUCT_MILAN; name != NULL && p <= SEVSNP_PRODUCT_TURIN; p++) {
        if (strcmp(name, evidence_sevsnp_product_name((enum sevsnp_product)p)) == 0) {
            *out = (enum sevsnp_product)p;
            return CLST_OK;
        }
    }
    return clst_err_set(err, CLST_E_INVAL,
                        "sevsnp option product must be \"Milan\", \"Genoa\" or \"Turin\"");
}

enum clst_status
evidence_sevsnp_options_parse(const json_t *options, struct sevsnp_options *out,
                              struct clst_err *err)
{
    struct sevsnp_options o;
    const char *key;
    json_t *v;
    enum clst_status rc = CLST_OK;
    uint8_t vmpl = 0;

    memset(&o, 0, sizeof(o));
    o.allow_smt = true;
    if (options != NULL) {
        if (!json_is_object(options)) {
            return clst_err_set(err, CLST_E_INVAL, "sevsnp options must be a JSON object");
        }
        json_object_foreach((json_t *)options, key, v)
        {
            if (strcmp(key, "allow_migration_agent") == 0 || strcmp(key, "allow_smt") == 0) {
                if (!json_is_boolean(v)) {
                    return clst_err_set(err, CLST_E_INVAL, "sevsnp option %s must be true or false",
                                        key);
                }
                if (key[6] == 'm') {
                    o.allow_migration_agent = json_is_true(v);
                } else {
                    o.allow_smt = json_is_true(v);
                }
            } else if (strcmp(key, "max_vmpl") == 0) {
                rc = option_u8(v, "max_vmpl", SEVSNP_MAX_VMPL, &vmpl, err);
                o.max_vmpl = vmpl;
            } else if (strcmp(key, "min_tcb") == 0) {
                rc = option_min_tcb(v, &o.min_tcb, err);
                o.has_min_tcb = true;
            } else if (strcmp(key, "product") == 0) {
                rc = option_product(v, &o.product, err);
            } else if (strcmp(key, "stepping") == 0) {
                rc = option_u8(v, "stepping", 15, &o.stepping, err);
                o.has_stepping = true;
            } else {
                rc = clst_err_set(err, CLST_E_INVAL,
                                  "unknown sevsnp option '%.40s' (known: allow_migration_agent, "
                                  "allow_smt, max_vmpl, min_tcb, product, stepping)",
                                  key);
            }
            if (rc != CLST_OK) {
                return rc;
            }
        }
    }
    *out = o;
    return CLST_OK;
}

/* ---- the cache of verified chains ----------------------------------------------------------- */

/*
 * A verified chain (leaf, intermediate, ARK) depends only on public certificates, the pinned
 * root and the time; it is cached, keyed by the SHA-256 of each certificate's DER, together with
 * the leaf's parsed extensions and the window in which all three certificates are valid. A hit
 * is used only when the same intermediate is present in this call's certificates, its ARK is
 * allowed by this call, and the verification time is inside the window; otherwise the chain is
 * verified again in full. The state is process-wide (guarded by a mutex), bounded, and holds
 * nothing secret.
 */
struct cache_slot {
    bool used;
    uint64_t last_use;
    uint8_t leaf_hash[CLST_SHA256_SIZE];
    uint8_t inter_hash[CLST_SHA256_SIZE];
    uint8_t ark_hash[CLST_SHA256_SIZE];
    X509 *leaf;
    X509 *inter;
    struct sevsnp_cert_info info;
    int64_t not_before;
    int64_t not_after;
};

static struct cache_slot cache[SEVSNP_CACHE_SLOTS];
static struct evidence_cache_state state = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void
slot_release(struct cache_slot *s)
{
    X509_free(s->leaf);
    X509_free(s->inter);
    memset(s, 0, sizeof(*s));
}

void
evidence_sevsnp_cache_clear(void)
{
    pthread_mutex_lock(&state.lock);
    for (size_t i = 0; i < SEVSNP_CACHE_SLOTS; i++) {
        slot_release(&cache[i]);
    }
    state.hits = state.misses = 0;
    pthread_mutex_unlock(&state.lock);
}

void
evidence_sevsnp_cache_stats(uint64_t *out_hits, uint64_t *out_misses)
{
    evidence_cache_stats(&state, out_hits, out_misses);
}

/* What a lookup hands out: references the caller frees. */
struct cache_hit {
    X509 *leaf;
    X509 *inter;
    struct sevsnp_cert_info info;
};

static bool
hash_in(const uint8_t h[CLST_SHA256_SIZE], const uint8_t (*set)[CLST_SHA256_SIZE],
        const bool *valid, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        if (valid[i] && memcmp(set[i], h, CLST_SHA256_SIZE) == 0) {
            return true;
        }
    }
    return false;
}

static bool
cache_lookup(const uint8_t leaf_hash[CLST_SHA256_SIZE],
             const uint8_t (*pool_hash)[CLST_SHA256_SIZE], const bool *hashed, size_t pool_count,
             const uint8_t (*ark_hash)[CLST_SHA256_SIZE], const bool *ark_allowed, int64_t at,
             struct cache_hit *out)
{
    bool found = false;
    pthread_mutex_lock(&state.lock);
    for (size_t i = 0; i < SEVSNP_CACHE_SLOTS && !found; i++) {
        struct cache_slot *s = &cache[i];
        if (!s->used || memcmp(s->leaf_hash, leaf_hash, CLST_SHA256_SIZE) != 0 ||
            at < s->not_before || at > s->not_after ||
            !hash_in(s->inter_hash, pool_hash, hashed, pool_count) ||
            !hash_in(s->ark_hash, ark_hash, ark_allowed, SEVSNP_PRODUCT_COUNT)) {
            continue;
        }
        if (X509_up_ref(s->leaf) != 1) {
            break;
        }
        if (X509_up_ref(s->inter) != 1) {
            X509_free(s->leaf);
            break;
        }
        out->leaf = s->leaf;
        out->inter = s->inter;
        out->info = s->info;
        s->last_use = ++state.tick;
        found = true;
    }
    evidence_cache_count(&state, found);
    pthread_mutex_unlock(&state.lock);
    return found;
}

static void
cache_insert(const uint8_t leaf_hash[CLST_SHA256_SIZE], const uint8_t inter_hash[CLST_SHA256_SIZE],
             const uint8_t ark_hash[CLST_SHA256_SIZE], X509 *leaf, X509 *inter,
             const struct sevsnp_cert_info *info, int64_t nb, int64_t na)
{
    pthread_mutex_lock(&state.lock);
    struct cache_slot *victim = &cache[0];
    for (size_t i = 0; i < SEVSNP_CACHE_SLOTS; i++) {
        struct cache_slot *s = &cache[i];
        if (s->used && memcmp(s->leaf_hash, leaf_hash, CLST_SHA256_SIZE) == 0 &&
            memcmp(s->inter_hash, inter_hash, CLST_SHA256_SIZE) == 0 &&
            memcmp(s->ark_hash, ark_hash, CLST_SHA256_SIZE) == 0) {
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
    if (X509_up_ref(leaf) == 1) {
        if (X509_up_ref(inter) == 1) {
            slot_release(victim);
            victim->used = true;
            victim->last_use = ++state.tick;
            memcpy(victim->leaf_hash, leaf_hash, CLST_SHA256_SIZE);
            memcpy(victim->inter_hash, inter_hash, CLST_SHA256_SIZE);
            memcpy(victim->ark_hash, ark_hash, CLST_SHA256_SIZE);
            victim->leaf = leaf;
            victim->inter = inter;
            victim->info = *info;
            victim->not_before = nb;
            victim->not_after = na;
        } else {
            X509_free(leaf);
        }
    }
    pthread_mutex_unlock(&state.lock);
}

/* ---- the report signature ------------------------------------------------------------------- */

/* The order n of P-384, big-endian. */
static const uint8_t p384_order[SEVSNP_P384_SIZE] = {
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xC7, 0x63, 0x4D, 0x81, 0xF4, 0x37, 0x2D, 0xDF,
    0x58, 0x1A, 0x0D, 0xB2, 0x48, 0xB0, 0xA7, 0x7A, 0xEC, 0xEC, 0x19, 0x6A, 0xCC, 0xC5, 0x29, 0x73,
};

/* Converts a 72-byte little-endian component to 48 big-endian bytes and checks 0 < v < n (the
 * values are public: no constant-time requirement). */
static bool
component_to_be(const uint8_t le[SEVSNP_SIG_COMPONENT_SIZE], uint8_t be[SEVSNP_P384_SIZE])
{
    for (size_t i = SEVSNP_P384_SIZE; i < SEVSNP_SIG_COMPONENT_SIZE; i++) {
        if (le[i] != 0) {
            return false; /* >= 2^384 > n */
        }
    }
    bool nonzero = false;
    for (size_t i = 0; i < SEVSNP_P384_SIZE; i++) {
        be[i] = le[SEVSNP_P384_SIZE - 1 - i];
        nonzero = nonzero || be[i] != 0;
    }
    return nonzero && memcmp(be, p384_order, SEVSNP_P384_SIZE) < 0;
}

static enum clst_status
verify_signature(EVP_PKEY *key, const struct sevsnp_report *r, const uint8_t *data,
                 struct clst_err *err)
{
    uint8_t raw[2 * SEVSNP_P384_SIZE];
    uint8_t digest[CLST_SHA384_SIZE];
    enum clst_status rc;

    if (!component_to_be(r->sig_r, raw) || !component_to_be(r->sig_s, raw + SEVSNP_P384_SIZE)) {
        return clst_err_set(err, CLST_E_VERIFY,
                            "sevsnp evidence: the report signature's R or S (offset 0x2A0) is zero "
                            "or not below the P-384 group order; it is not a valid signature");
    }
    rc = clst_hash(CLST_HASH_SHA384, data, SEVSNP_SIGNED_SIZE, digest);
    if (rc != CLST_OK) {
        return clst_err_set(err, rc, "sevsnp evidence: cannot hash the report");
    }
    rc = clst_ecdsa_verify_digest(key, CLST_SIG_RAW, digest, sizeof(digest), raw, sizeof(raw));
    if (rc != CLST_OK) {
        if (rc != CLST_E_NOMEM && rc != CLST_E_CRYPTO) {
            rc = CLST_E_VERIFY;
        }
        return clst_err_set(err, rc,
                            "sevsnp evidence: the report signature does not verify with the "
                            "VCEK/VLEK key (the report was altered or signed by another chip)");
    }
    return CLST_OK;
}

/* ---- candidate selection -------------------------------------------------------------------- */

/* How far a candidate got; the error of the furthest one is reported. */
enum stage {
    STAGE_NONE = 0,
    STAGE_CERT,      /* the certificate does not parse or is not an AMD leaf */
    STAGE_ROLE,      /* VCEK vs VLEK */
    STAGE_HWID,      /* hwID != CHIP_ID */
    STAGE_TCB,       /* certificate TCB != REPORTED_TCB */
    STAGE_ROOT,      /* the product's ARK is not allowed */
    STAGE_CHAIN,     /* chain to the ARK */
    STAGE_CRL,       /* revocation */
    STAGE_PRODUCT,   /* CPUID / productName / TCB layout */
    STAGE_SIGNATURE, /* report signature */
};

struct ctx {
    const struct sevsnp_evidence *ev;
    const uint8_t *data;
    const struct clst_evidence_input *in;
    const struct sevsnp_roots *roots;
    bool ark_allowed[SEVSNP_PRODUCT_COUNT];
    struct sevsnp_pool pool;
    uint8_t hash[SEVSNP_POOL_MAX][CLST_SHA256_SIZE];
    bool hashed[SEVSNP_POOL_MAX]; /* false for copies of a pinned ARK (skipped) */
    X509 *x[SEVSNP_POOL_MAX];     /* parsed lazily */
    bool tried[SEVSNP_POOL_MAX];  /* as a leaf candidate */
    enum stage best;
    struct clst_err best_err;
    enum sevsnp_product product; /* of the accepted candidate */
};

static enum clst_status
fail(struct ctx *c, enum stage s, struct clst_err *e)
{
    if (s >= c->best) {
        c->best = s;
        c->best_err = *e;
    }
    return e->status;
}

static bool
role_matches(const struct sevsnp_report *r, const struct sevsnp_cert_info *info)
{
    return info->role == sevsnp_signing_key(r);
}

static const char *
role_name(enum sevsnp_signing_key k)
{
    return k == SEVSNP_KEY_VLEK ? "VLEK" : "VCEK";
}

/* Role, hwID and TCB: what can be checked from the certificate before trusting it. */
static enum clst_status
check_identity(struct ctx *c, const struct sevsnp_cert_info *info)
{
    const struct sevsnp_report *r = &c->ev->report;
    struct clst_err e = {0};
    struct sevsnp_tcb rt;

    if (!role_matches(r, info)) {
        clst_err_set(&e, CLST_E_VERIFY,
                     "sevsnp evidence: the report is signed by a %s (SIGNING_KEY), but the "
                     "certificate given is a %s",
                     role_name(sevsnp_signing_key(r)), role_name(info->role));
        return fail(c, STAGE_ROLE, &e);
    }
    if (info->role == SEVSNP_KEY_VCEK && (r->key_info & SEVSNP_KEYINFO_MASK_CHIP_KEY) == 0 &&
        (info->hwid_size == 0 || info->hwid_size > sizeof(r->chip_id) ||
         CRYPTO_memcmp(info->hwid, r->chip_id, info->hwid_size) != 0)) {
        clst_err_set(&e, CLST_E_VERIFY,
                     "sevsnp evidence: the VCEK is for another chip (its hwID is not the report's "
                     "CHIP_ID); give the VCEK of the chip that made the report");
        return fail(c, STAGE_HWID, &e);
    }
    if (!evidence_sevsnp_tcb_decode(info->product, r->reported_tcb, &rt)) {
        clst_err_set(&e, CLST_E_MALFORMED,
                     "sevsnp evidence: REPORTED_TCB (offset 0x180) has reserved bytes set for "
                     "the %s layout",
                     evidence_sevsnp_product_name(info->product));
        return fail(c, STAGE_TCB, &e);
    }
    if (rt.bootloader != info->tcb.bootloader || rt.tee != info->tcb.tee ||
        rt.snp != info->tcb.snp || rt.microcode != info->tcb.microcode ||
        (info->product == SEVSNP_PRODUCT_TURIN && rt.fmc != info->tcb.fmc)) {
        clst_err_set(&e, CLST_E_VERIFY,
                     "sevsnp evidence: REPORTED_TCB (bl %u tee %u snp %u ucode %u fmc %u) is not "
                     "the TCB the %s was issued for (bl %u tee %u snp %u ucode %u fmc %u)",
                     rt.bootloader, rt.tee, rt.snp, rt.microcode, rt.fmc, role_name(info->role),
                     info->tcb.bootloader, info->tcb.tee, info->tcb.snp, info->tcb.microcode,
                     info->tcb.fmc);
        return fail(c, STAGE_TCB, &e);
    }
    if (!c->ark_allowed[info->product - 1]) {
        clst_err_set(&e, CLST_E_VERIFY,
                     "sevsnp evidence: the certificate is for %s, whose root (ARK-%s) is not "
                     "among the trusted roots given",
                     evidence_sevsnp_product_name(info->product),
                     evidence_sevsnp_product_name(info->product));
        return fail(c, STAGE_ROOT, &e);
    }
    return CLST_OK;
}

/* The ARK issued a CRL that is valid at `at` and does not list the intermediate. */
static enum clst_status
check_crl(struct ctx *c, X509 *ark, X509 *inter)
{
    struct clst_err e = {0};
    time_t at = (time_t)c->in->at;
    bool found = false;

    for (int i = 0; i < sk_X509_CRL_num(c->in->crls); i++) {
        X509_CRL *crl = sk_X509_CRL_value(c->in->crls, i);
        X509_REVOKED *revoked = NULL;
        if (X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(ark)) != 0) {
            continue;
        }
        EVP_PKEY *key = X509_get0_pubkey(ark);
        if (key == NULL || X509_CRL_verify(crl, key) != 1) {
            clst_err_set(&e, CLST_E_VERIFY,
                         "sevsnp evidence: a CRL names the ARK as issuer but its signature does "
                         "not verify with the pinned ARK");
            return fail(c, STAGE_CRL, &e);
        }
        const ASN1_TIME *next = X509_CRL_get0_nextUpdate(crl);
        if (X509_cmp_time(X509_CRL_get0_lastUpdate(crl), &at) > 0 ||
            (next != NULL && X509_cmp_time(next, &at) < 0)) {
            clst_err_set(&e, CLST_E_VERIFY,
                         "sevsnp evidence: the ARK's CRL is not valid at the verification time; "
                         "fetch a current one");
            return fail(c, STAGE_CRL, &e);
        }
        if (X509_CRL_get0_by_cert(crl, &revoked, inter) == 1) {
            clst_err_set(&e, CLST_E_VERIFY,
                         "sevsnp evidence: the intermediate (ASK/ASVK) is revoked by the ARK's "
                         "CRL");
            return fail(c, STAGE_CRL, &e);
        }
        found = true;
    }
    if (!found) {
        clst_err_set(&e, CLST_E_VERIFY,
                     "sevsnp evidence: CRLs were given but none is issued by the ARK; give the "
                     "product's CRL (https://kdsintf.amd.com/vcek/v1/<product>/crl)");
        return fail(c, STAGE_CRL, &e);
    }
    return CLST_OK;
}

static bool
pss_sha384(X509 *cert)
{
    int md = 0, pk = 0;
    return X509_get_signature_info(cert, &md, &pk, NULL, NULL) == 1 && pk == EVP_PKEY_RSA_PSS &&
           md == NID_sha384;
}

/* Product consistency and the other TCB fields, once the chain is trusted. */
static enum clst_status
check_product(struct ctx *c, const struct sevsnp_cert_info *info)
{
    const struct sevsnp_report *r = &c->ev->report;
    const char *name = evidence_sevsnp_product_name(info->product);
    struct clst_err e = {0};
    struct sevsnp_tcb t;

    if (info->product_name[0] != '\0') {
        size_t n = strlen(name);
        if (strncmp(info->product_name, name, n) != 0 ||
            (info->product_name[n] != '\0' && info->product_name[n] != '-')) {
            clst_err_set(&e, CLST_E_VERIFY,
                         "sevsnp evidence: the certificate's productName \"%s\" is not %s, the "
                         "product of its issuer",
                         info->product_name, name);
            return fail(c, STAGE_PRODUCT, &e);
        }
    }
    if (r->version >= 3) {
        enum sevsnp_product cpu =
            evidence_sevsnp_product_from_cpuid(r->cpuid_family, r->cpuid_model);
        if (cpu != info->product) {
            clst_err_set(&e, CLST_E_VERIFY,
                         "sevsnp evidence: the report's CPUID (family 0x%02x model 0x%02x) is "
                         "%s, but the certificate chain is for %s",
                         r->cpuid_family, r->cpuid_model,
                         cpu != SEVSNP_PRODUCT_UNKNOWN ? evidence_sevsnp_product_name(cpu)
                                                       : "not a known SEV-SNP product",
                         name);
            return fail(c, STAGE_PRODUCT, &e);
        }
    } else if (info->product == SEVSNP_PRODUCT_TURIN) {
        /* The claims decode a version-2 report with the Milan/Genoa TCB layout. */
        clst_err_set(&e, CLST_E_VERIFY,
                     "sevsnp evidence: a version-2 report with a Turin certificate; Turin "
                     "firmware writes version 3 or later");
        return fail(c, STAGE_PRODUCT, &e);
    }
    if (!evidence_sevsnp_tcb_decode(info->product, r->current_tcb, &t) ||
        !evidence_sevsnp_tcb_decode(info->product, r->committed_tcb, &t) ||
        !evidence_sevsnp_tcb_decode(info->product, r->launch_tcb, &t)) {
        clst_err_set(&e, CLST_E_MALFORMED,
                     "sevsnp evidence: CURRENT_TCB, COMMITTED_TCB or LAUNCH_TCB has reserved "
                     "bytes set for the %s layout",
                     name);
        return fail(c, STAGE_PRODUCT, &e);
    }
    return CLST_OK;
}

static enum clst_status
check_signature(struct ctx *c, X509 *leaf)
{
    struct clst_err e = {0};
    EVP_PKEY *key = X509_get0_pubkey(leaf);
    if (key == NULL || clst_pkey_kind(key) != CLST_KEY_EC_P384) {
        clst_err_set(&e, CLST_E_VERIFY, "sevsnp evidence: the VCEK/VLEK key is not EC P-384");
        return fail(c, STAGE_SIGNATURE, &e);
    }
    if (verify_signature(key, &c->ev->report, c->data, &e) != CLST_OK) {
        return fail(c, STAGE_SIGNATURE, &e);
    }
    return CLST_OK;
}

/* Tries a candidate that came from the cache (its chain is already verified). */
static enum clst_status
try_cached(struct ctx *c, const struct cache_hit *hit)
{
    enum clst_status rc = check_identity(c, &hit->info);
    if (rc == CLST_OK && c->in->crls != NULL) {
        rc = check_crl(c, c->roots->ark[hit->info.product - 1], hit->inter);
    }
    if (rc == CLST_OK) {
        rc = check_product(c, &hit->info);
    }
    if (rc == CLST_OK) {
        rc = check_signature(c, hit->leaf);
    }
    if (rc == CLST_OK) {
        c->product = hit->info.product;
    }
    return rc;
}

static bool
is_leaf_shaped(X509 *x)
{
    EVP_PKEY *key = X509_get0_pubkey(x);
    return key != NULL && clst_pkey_kind(key) == CLST_KEY_EC_P384 && X509_check_ca(x) == 0;
}

static enum clst_status
parse_all(struct ctx *c)
{
    for (size_t i = 0; i < c->pool.count; i++) {
        if (c->x[i] != NULL || !c->hashed[i]) {
            continue;
        }
        struct clst_err e = {0};
        if (clst_x509_from_der(c->pool.certs[i].der, c->pool.certs[i].size, &c->x[i], &e) !=
            CLST_OK) {
            clst_err_set(&e, CLST_E_MALFORMED,
                         "sevsnp evidence: certificate %zu of %zu given does not parse as DER "
                         "X.509",
                         i + 1, c->pool.count);
            fail(c, STAGE_CERT, &e);
        }
    }
    return CLST_OK;
}

/* Tries a parsed leaf candidate: identity, chain, cache, CRL, product, signature. */
static enum clst_status
try_fresh(struct ctx *c, size_t i)
{
    enum clst_status rc = CLST_E_INTERNAL;
    struct clst_err e = {0};
    struct sevsnp_cert_info info;
    STACK_OF(X509) *untrusted = NULL, *anchor = NULL, *chain = NULL;
    X509 *leaf = c->x[i];
    X509 *ark = NULL;

    rc = evidence_sevsnp_cert_info(leaf, &info, &e);
    if (rc != CLST_OK) {
        fail(c, STAGE_CERT, &e);
        goto out;
    }
    rc = check_identity(c, &info);
    if (rc != CLST_OK) {
        goto out;
    }
    ark = c->roots->ark[info.product - 1];
    untrusted = sk_X509_new_null();
    anchor = sk_X509_new_null();
    if (untrusted == NULL || anchor == NULL || sk_X509_push(anchor, ark) <= 0) {
        rc = clst_err_set(&e, CLST_E_NOMEM, "out of memory");
        fail(c, STAGE_CHAIN, &e);
        goto out;
    }
    for (size_t k = 0; k < c->pool.count; k++) {
        if (k != i && c->x[k] != NULL && !is_leaf_shaped(c->x[k]) &&
            sk_X509_push(untrusted, c->x[k]) <= 0) {
            rc = clst_err_set(&e, CLST_E_NOMEM, "out of memory");
            fail(c, STAGE_CHAIN, &e);
            goto out;
        }
    }
    rc = clst_x509_verify_chain(leaf, untrusted, anchor, NULL, c->in->at, &chain, &e);
    if (rc != CLST_OK) {
        clst_err_prefix(&e, "sevsnp evidence: the %s does not chain to the pinned ARK-%s",
                        role_name(info.role), evidence_sevsnp_product_name(info.product));
        fail(c, STAGE_CHAIN, &e);
        goto out;
    }
    X509 *inter = sk_X509_num(chain) == 3 ? sk_X509_value(chain, 1) : NULL;
    if (inter == NULL || X509_cmp(sk_X509_value(chain, 2), ark) != 0) {
        rc = clst_err_set(&e, CLST_E_VERIFY,
                          "sevsnp evidence: the %s must be issued by an ASK/ASVK that the ARK "
                          "issued (a chain of three certificates)",
                          role_name(info.role));
        fail(c, STAGE_CHAIN, &e);
        goto out;
    }
    if (!pss_sha384(leaf) || !pss_sha384(inter)) {
        rc = clst_err_set(&e, CLST_E_VERIFY,
                          "sevsnp evidence: the %s or its issuer is not signed with RSASSA-PSS "
                          "SHA-384 as AMD signs them",
                          role_name(info.role));
        fail(c, STAGE_CHAIN, &e);
        goto out;
    }
    /* Cache the verified chain under the DER of the leaf and the intermediate. */
    for (size_t k = 0; k < c->pool.count; k++) {
        if (c->x[k] != NULL && X509_cmp(c->x[k], inter) == 0) {
            int64_t nb = 0, na = 0;
            /* chain is leaf, inter, ark (checked above). */
            if (evidence_chain_window(chain, &nb, &na)) {
                cache_insert(c->hash[i], c->hash[k], c->roots->ark_sha256[info.product - 1], leaf,
                             inter, &info, nb, na);
            }
            break;
        }
    }
    if (c->in->crls != NULL) {
        rc = check_crl(c, ark, inter);
        if (rc != CLST_OK) {
            goto out;
        }
    }
    rc = check_product(c, &info);
    if (rc != CLST_OK) {
        goto out;
    }
    rc = check_signature(c, leaf);
    if (rc != CLST_OK) {
        goto out;
    }
    c->product = info.product;
    rc = CLST_OK;
out:
    sk_X509_free(untrusted);
    sk_X509_free(anchor);
    sk_X509_pop_free(chain, X509_free);
    return rc;
}

/* Finds the candidate that verifies the report: first from the cache, then by parsing. */
static enum clst_status
select_signer(struct ctx *c)
{
    for (size_t i = 0; i < c->pool.count; i++) {
        struct cache_hit hit;
        enum sevsnp_guid_role hint = c->pool.certs[i].hint;
        if (!c->hashed[i] || hint == SEVSNP_GUID_ASK || hint == SEVSNP_GUID_ARK) {
            continue;
        }
        memset(&hit, 0, sizeof(hit));
        if (!cache_lookup(c->hash[i], (const uint8_t(*)[CLST_SHA256_SIZE])c->hash, c->hashed,
                          c->pool.count, (const uint8_t(*)[CLST_SHA256_SIZE])c->roots->ark_sha256,
                          c->ark_allowed, c->in->at, &hit)) {
            continue;
        }
        c->tried[i] = true;
        enum clst_status rc = try_cached(c, &hit);
        X509_free(hit.leaf);
        X509_free(hit.inter);
        if (rc == CLST_OK) {
            return CLST_OK;
        }
    }
    parse_all(c);
    for (size_t i = 0; i < c->pool.count; i++) {
        enum sevsnp_guid_role hint = c->pool.certs[i].hint;
        if (c->tried[i] || c->x[i] == NULL || hint == SEVSNP_GUID_ASK || hint == SEVSNP_GUID_ARK ||
            !is_leaf_shaped(c->x[i])) {
            continue;
        }
        c->tried[i] = true;
        if (try_fresh(c, i) == CLST_OK) {
            return CLST_OK;
        }
    }
    return CLST_E_VERIFY;
}

/* ---- the guest policy ----------------------------------------------------------------------- */

static enum clst_status
check_policy(const struct sevsnp_report *r, enum sevsnp_product product,
             const struct sevsnp_options *o, struct clst_err *err)
{
    struct sevsnp_tcb t;

    if ((r->policy & SEVSNP_POLICY_MIGRATE_MA) != 0 && !o->allow_migration_agent) {
        return clst_err_set(err, CLST_E_VERIFY,
                            "sevsnp evidence: the guest policy allows a migration agent (POLICY "
                            "bit 18), which can export the guest's memory; allow it explicitly "
                            "(allow_migration_agent) only if you trust that agent");
    }
    if ((r->policy & SEVSNP_POLICY_SMT) != 0 && !o->allow_smt) {
        return clst_err_set(err, CLST_E_VERIFY,
                            "sevsnp evidence: the guest policy allows SMT (POLICY bit 16), and "
                            "the verification options forbid it");
    }
    if (o->product != SEVSNP_PRODUCT_UNKNOWN && o->product != product) {
        return clst_err_set(err, CLST_E_VERIFY,
                            "sevsnp evidence: the report comes from a %s processor, but the "
                            "policy expects %s",
                            evidence_sevsnp_product_name(product),
                            evidence_sevsnp_product_name(o->product));
    }
    if (o->has_stepping && (r->version < 3 || r->cpuid_stepping != o->stepping)) {
        return clst_err_set(err, CLST_E_VERIFY,
                            "sevsnp evidence: expected processor stepping %u, got %u%s",
                            (unsigned)o->stepping, (unsigned)r->cpuid_stepping,
                            r->version < 3 ? " (a version-2 report carries no CPUID)" : "");
    }
    if (r->vmpl > o->max_vmpl) {
        return clst_err_set(err, CLST_E_VERIFY,
                            "sevsnp evidence: the report comes from VMPL %u, less privileged than "
                            "the required VMPL %u or lower (max_vmpl)",
                            (unsigned)r->vmpl, (unsigned)o->max_vmpl);
    }
    if (o->has_min_tcb) {
        if (!evidence_sevsnp_tcb_decode(product, r->reported_tcb, &t)) {
            return clst_err_set(err, CLST_E_INTERNAL, "sevsnp: TCB decoded before but not now");
        }
        if (t.bootloader < o->min_tcb.bootloader || t.tee < o->min_tcb.tee ||
            t.snp < o->min_tcb.snp || t.microcode < o->min_tcb.microcode ||
            (product == SEVSNP_PRODUCT_TURIN && t.fmc < o->min_tcb.fmc)) {
            return clst_err_set(err, CLST_E_VERIFY,
                                "sevsnp evidence: the platform's TCB (bl %u tee %u snp %u ucode "
                                "%u fmc %u) is below the minimum the policy allows (bl %u tee %u "
                                "snp %u ucode %u fmc %u); update the host's firmware",
                                t.bootloader, t.tee, t.snp, t.microcode, t.fmc,
                                o->min_tcb.bootloader, o->min_tcb.tee, o->min_tcb.snp,
                                o->min_tcb.microcode, o->min_tcb.fmc);
        }
    }
    return CLST_OK;
}

/* ---- verify --------------------------------------------------------------------------------- */

enum clst_status
evidence_sevsnp_verify_with(const struct sevsnp_evidence *ev, const uint8_t *data, size_t size,
                            const struct clst_evidence_input *in, const struct sevsnp_roots *roots,
                            struct clst_err *err)
{
    enum clst_status rc = CLST_E_INTERNAL;
    struct sevsnp_options opts;
    struct ctx *c = NULL;

    if (ev == NULL || data == NULL || in == NULL || roots == NULL || size < SEVSNP_REPORT_SIZE) {
        return clst_err_set(err, CLST_E_INVAL, "sevsnp: inconsistent verification input");
    }
    /* Sizes first: nothing oversized is parsed, let alone verified. */
    if (in->endorsements_size > SEVSNP_ENDORSEMENTS_MAX_SIZE) {
        return clst_err_set(err, CLST_E_LIMIT,
                            "sevsnp endorsements are %zu bytes, more than the limit of %u",
                            in->endorsements_size, SEVSNP_ENDORSEMENTS_MAX_SIZE);
    }
    rc = evidence_sevsnp_options_parse(in->options, &opts, err);
    if (rc != CLST_OK) {
        return rc;
    }
    if (sevsnp_signing_key(&ev->report) == SEVSNP_KEY_NONE) {
        return clst_err_set(err, CLST_E_VERIFY,
                            "sevsnp evidence: the report is not signed (SIGNING_KEY = 7, none)");
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return clst_err_set(err, CLST_E_NOMEM, "out of memory");
    }
    c->ev = ev;
    c->data = data;
    c->in = in;
    c->roots = roots;
    evidence_sevsnp_pool_init(&c->pool);

    /* The caller's roots select products; each must be one of the pinned ARKs. */
    for (int i = 0; in->roots != NULL && i < sk_X509_num(in->roots); i++) {
        X509 *r = sk_X509_value(in->roots, i);
        bool known = false;
        for (size_t p = 0; p < SEVSNP_PRODUCT_COUNT; p++) {
            if (roots->ark[p] != NULL && X509_cmp(r, roots->ark[p]) == 0) {
                c->ark_allowed[p] = true;
                known = true;
            }
        }
        if (!known) {
            rc = clst_err_set(err, CLST_E_INVAL,
                              "sevsnp evidence: trusted root %d is not one of the AMD roots "
                              "compiled into this build (ARK-Milan, ARK-Genoa, ARK-Turin); SEV-SNP "
                              "evidence chains only to those",
                              i + 1);
            goto out;
        }
    }

    /* The certificates: the extended report's table, then the endorsements. */
    if (ev->has_table) {
        rc = evidence_sevsnp_pool_add_table(&c->pool, data + SEVSNP_REPORT_SIZE,
                                            size - SEVSNP_REPORT_SIZE, &ev->table, err);
        if (rc != CLST_OK) {
            goto out;
        }
    }
    rc = evidence_sevsnp_pool_add_endorsements(&c->pool, in->endorsements, in->endorsements_size,
                                               err);
    if (rc != CLST_OK) {
        goto out;
    }
    if (c->pool.count == 0) {
        rc = clst_err_set(err, CLST_E_VERIFY,
                          "sevsnp evidence: no %s certificate given; pass an extended report "
                          "(with its certificate table) or the %s and its ASK as endorsements",
                          role_name(sevsnp_signing_key(&ev->report)),
                          role_name(sevsnp_signing_key(&ev->report)));
        goto out;
    }
    /* Hash every certificate (the cache key). A byte-identical copy of a pinned ARK is marked
     * and skipped: the pinned one is used. Any other ARK is only ever an untrusted certificate
     * that nothing chains to. */
    for (size_t i = 0; i < c->pool.count; i++) {
        const struct sevsnp_certref *cr = &c->pool.certs[i];
        rc = clst_sha256(cr->der, cr->size, c->hash[i]);
        if (rc != CLST_OK) {
            rc = clst_err_set(err, rc, "sevsnp: cannot hash a certificate");
            goto out;
        }
        c->hashed[i] = true;
        for (size_t p = 0; p < SEVSNP_PRODUCT_COUNT; p++) {
            if (roots->ark[p] != NULL &&
                memcmp(c->hash[i], roots->ark_sha256[p], CLST_SHA256_SIZE) == 0) {
                c->hashed[i] = false;
            }
        }
    }

    rc = select_signer(c);
    if (rc != CLST_OK) {
        if (c->best == STAGE_NONE) {
            rc = clst_err_set(err, CLST_E_VERIFY,
                              "sevsnp evidence: none of the %zu certificates given is a %s (an EC "
                              "P-384 end-entity certificate issued by an AMD %s)",
                              c->pool.count, role_name(sevsnp_signing_key(&ev->report)),
                              sevsnp_signing_key(&ev->report) == SEVSNP_KEY_VLEK ? "ASVK" : "ASK");
        } else {
            rc = c->best_err.status != CLST_OK ? c->best_err.status : CLST_E_VERIFY;
            if (err != NULL) {
                *err = c->best_err;
                err->status = rc;
            }
        }
        goto out;
    }
    rc = check_policy(&ev->report, c->product, &opts, err);
    if (rc != CLST_OK) {
        goto out;
    }
    rc = CLST_OK;
out:
    if (c != NULL) {
        for (size_t i = 0; i < SEVSNP_POOL_MAX; i++) {
            X509_free(c->x[i]);
        }
        evidence_sevsnp_pool_cleanup(&c->pool);
        free(c);
    }
    return rc;
}

static enum clst_status
sevsnp_parse(const uint8_t *data, size_t size, void *parsed, struct clst_err *err)
{
    return evidence_sevsnp_parse(data, size, parsed, err);
}

static enum clst_status
sevsnp_verify(const void *parsed, const uint8_t *data, size_t size,
              const struct clst_evidence_input *in, struct clst_err *err)
{
    const struct sevsnp_roots *roots = NULL;
    enum clst_status rc = evidence_sevsnp_builtin_roots(&roots, err);
    if (rc != CLST_OK) {
        return rc;
    }
    return evidence_sevsnp_verify_with(parsed, data, size, in, roots, err);
}

static bool
sevsnp_is_debuggable(const void *parsed)
{
    const struct sevsnp_evidence *ev = parsed;
    return (ev->report.policy & SEVSNP_POLICY_DEBUG) != 0;
}

static const uint8_t *
sevsnp_report_data(const void *parsed, size_t *out_size)
{
    const struct sevsnp_evidence *ev = parsed;
    *out_size = sizeof(ev->report.report_data);
    return ev->report.report_data;
}

/* ---- claims --------------------------------------------------------------------------------- */

static enum clst_status
set_new(json_t *claims, const char *name, json_t *value)
{
    return json_object_set_new(claims, name, value) == 0 ? CLST_OK : CLST_E_NOMEM;
}

static enum clst_status
set_hex(json_t *claims, const char *name, const uint8_t *bytes, size_t size)
{
    char hex[2 * SEVSNP_REPORT_DATA_SIZE + 1];
    if (2 * size + 1 > sizeof(hex) || clst_hex_to_str(bytes, size, hex, sizeof(hex)) != CLST_OK) {
        return CLST_E_INTERNAL;
    }
    return set_new(claims, name, json_string(hex));
}

static enum clst_status
sevsnp_claims(const void *parsed, json_t *claims, struct clst_err *err)
{
    const struct sevsnp_report *r = &((const struct sevsnp_evidence *)parsed)->report;
    enum sevsnp_product product = SEVSNP_PRODUCT_UNKNOWN;
    struct sevsnp_tcb t;
    enum clst_status rc = CLST_OK;

    /* verify accepted: v3+ reports name their product in CPUID (checked against the chain);
     * a v2 report is Milan or Genoa (checked), which share one TCB layout. */
    if (r->version >= 3) {
        product = evidence_sevsnp_product_from_cpuid(r->cpuid_family, r->cpuid_model);
    }
    if (!evidence_sevsnp_tcb_decode(product != SEVSNP_PRODUCT_UNKNOWN ? product
                                                                      : SEVSNP_PRODUCT_MILAN,
                                    r->reported_tcb, &t)) {
        return clst_err_set(err, CLST_E_INTERNAL, "sevsnp evidence: TCB does not decode");
    }
    const struct {
        const char *name;
        json_t *value;
    } simple[] = {
        {CLST_CLAIM_ATTESTATION_TYPE, json_string(SEVSNP_ATTESTATION_TYPE)},
        {SEVSNP_CLAIM_BOOTLOADER_SVN, json_integer(t.bootloader)},
        {SEVSNP_CLAIM_GUEST_SVN, json_integer(r->guest_svn)},
        {SEVSNP_CLAIM_IS_DEBUGGABLE, json_boolean((r->policy & SEVSNP_POLICY_DEBUG) != 0)},
        {SEVSNP_CLAIM_MICROCODE_SVN, json_integer(t.microcode)},
        {SEVSNP_CLAIM_MIGRATION_ALLOWED, json_boolean((r->policy & SEVSNP_POLICY_MIGRATE_MA) != 0)},
        {SEVSNP_CLAIM_SMT_ALLOWED, json_boolean((r->policy & SEVSNP_POLICY_SMT) != 0)},
        {SEVSNP_CLAIM_SNPFW_SVN, json_integer(t.snp)},
        {SEVSNP_CLAIM_TEE_SVN, json_integer(t.tee)},
        {SEVSNP_CLAIM_VMPL, json_integer(r->vmpl)},
        {SEVSNP_CLAIM_X_REPORT_VERSION, json_integer(r->version)},
        {SEVSNP_CLAIM_X_SIGNING_KEY,
         json_string(sevsnp_signing_key(r) == SEVSNP_KEY_VLEK ? "vlek" : "vcek")},
        {SEVSNP_CLAIM_X_POLICY, json_integer((json_int_t)r->policy)},
        {SEVSNP_CLAIM_X_PLATFORM_INFO, json_integer((json_int_t)r->platform_info)},
    };
    /* Evaluate every entry so each allocated value is handed to (and owned by) the object. */
    for (size_t i = 0; i < sizeof(simple) / sizeof(simple[0]); i++) {
        enum clst_status one = simple[i].value != NULL
                                   ? set_new(claims, simple[i].name, simple[i].value)
                                   : CLST_E_NOMEM;
        if (rc == CLST_OK) {
            rc = one;
        }
    }
    if (rc == CLST_OK) {
        rc = set_hex(claims, SEVSNP_CLAIM_AUTHOR_KEY_DIGEST, r->author_key_digest,
                     sizeof(r->author_key_digest));
    }
    if (rc == CLST_OK) {
        rc = set_hex(claims, SEVSNP_CLAIM_FAMILY_ID, r->family_id, sizeof(r->family_id));
    }
    if (rc == CLST_OK) {
        rc = set_hex(claims, SEVSNP_CLAIM_HOST_DATA, r->host_data, sizeof(r->host_data));
    }
    if (rc == CLST_OK) {
        rc =
            set_hex(claims, SEVSNP_CLAIM_ID_KEY_DIGEST, r->id_key_digest, sizeof(r->id_key_digest));
    }
    if (rc == CLST_OK) {
        rc = set_hex(claims, SEVSNP_CLAIM_IMAGE_ID, r->image_id, sizeof(r->image_id));
    }
    if (rc == CLST_OK) {
        rc = set_hex(claims, SEVSNP_CLAIM_LAUNCH_MEASUREMENT, r->measurement,
                     sizeof(r->measurement));
    }
    if (rc == CLST_OK) {
        rc = set_hex(claims, SEVSNP_CLAIM_REPORT_DATA, r->report_data, sizeof(r->report_data));
    }
    if (rc == CLST_OK) {
        rc = set_hex(claims, SEVSNP_CLAIM_REPORT_ID, r->report_id, sizeof(r->report_id));
    }
    if (rc == CLST_OK) {
        rc = set_hex(claims, SEVSNP_CLAIM_X_CHIP_ID, r->chip_id, sizeof(r->chip_id));
    }
    if (rc == CLST_OK && product != SEVSNP_PRODUCT_UNKNOWN) {
        rc = set_new(claims, SEVSNP_CLAIM_X_PRODUCT,
                     json_string(evidence_sevsnp_product_name(product)));
    }
    if (rc == CLST_OK && product == SEVSNP_PRODUCT_TURIN) {
        rc = set_new(claims, SEVSNP_CLAIM_X_FMC_SVN, json_integer(t.fmc));
    }
    if (rc != CLST_OK) {
        return clst_err_set(err, rc, "sevsnp evidence: cannot build the claim set");
    }
    return CLST_OK;
}

const struct evidence_ops evidence_sevsnp_ops = {
    .kind = CLST_EVIDENCE_SEVSNP,
    .name = "sevsnp",
    .max_size = SEVSNP_EVIDENCE_MAX_SIZE,
    .parsed_size = sizeof(struct sevsnp_evidence),
    .parse = sevsnp_parse,
    .verify = sevsnp_verify,
    .is_debuggable = sevsnp_is_debuggable,
    .report_data = sevsnp_report_data,
    .claims = sevsnp_claims,
};
