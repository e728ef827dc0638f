/*
 * The attestation engine: configuration, the type table, challenges, and the pipeline
 * evidence -> verified claims -> appraisal -> signed token (clst_attest_evaluate).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "attest_int.h"

/* ---- attestation types ----------------------------------------------------------------------- */

static const struct clst_attest_type types[ATTEST_TYPE_COUNT] = {
    {"SimEnclave", "sim", CLST_EVIDENCE_SIM, CLST_SIM_ATTESTATION_TYPE, CLST_SIM_CLAIM_MRENCLAVE,
     CLST_ATTEST_CLAIM_SIM_EHD},
    {"SgxEnclave", "sgx", CLST_EVIDENCE_SGX, "sgx", "x-ms-sgx-mrenclave", "x-ms-sgx-ehd"},
    {"SevSnpVm", "sevsnp", CLST_EVIDENCE_SEVSNP, "sevsnpvm", "x-ms-sevsnpvm-launchmeasurement",
     NULL},
    {"TdxVm", "tdx", CLST_EVIDENCE_TDX, "tdxvm", "tdx_mrtd", NULL},
    {"Tpm", "tpm", CLST_EVIDENCE_TPM, "tpm", "aikPubHash", NULL},
    {"AzureVm", "azure-vtpm", CLST_EVIDENCE_AZURE_VTPM, "azurevm", "x-ms-azurevm-vmid", NULL},
    {"NitroEnclave", "nitro", CLST_EVIDENCE_NITRO, "nitro", "aws-nitro-pcr0", NULL},
};

size_t
clst_attest_type_count(void)
{
    return ATTEST_TYPE_COUNT;
}

const struct clst_attest_type *
clst_attest_type_at(size_t i)
{
    return i < ATTEST_TYPE_COUNT ? &types[i] : NULL;
}

size_t
attest_type_index(const struct clst_attest_type *type)
{
    return (size_t)(type - types);
}

enum clst_status
clst_attest_type_find(const char *name, const struct clst_attest_type **out, struct clst_err *err)
{
    if (name != NULL) {
        for (size_t i = 0; i < ATTEST_TYPE_COUNT; i++) {
            if (strcmp(name, types[i].name) == 0 || strcmp(name, types[i].short_name) == 0) {
                *out = &types[i];
                return CLST_OK;
            }
        }
    }
    char shown[40];
    size_t k = 0;
    for (const char *p = name ? name : ""; *p != '\0' && k + 4 < sizeof(shown); p++) {
        shown[k++] = (*p >= 0x20 && *p < 0x7f) ? *p : '?';
    }
    shown[k] = '\0';
    return clst_err_set(err, CLST_E_NOTFOUND,
                        "unknown attestation type '%s'; the types are SimEnclave (sim), "
                        "SgxEnclave (sgx), SevSnpVm (sevsnp), TdxVm (tdx), Tpm (tpm), AzureVm "
                        "(azure-vtpm), NitroEnclave (nitro)",
                        shown);
}

/* ---- configuration and lifecycle ------------------------------------------------------------- */

void
clst_attest_config_init(struct clst_attest_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
}

enum clst_status
attest_issuer_check(const char *issuer, struct clst_err *err)
{
    size_t n = issuer ? strlen(issuer) : 0;
    if (n <= 8 || n > CLST_ATTEST_MAX_ISSUER_SIZE || strncmp(issuer, "https://", 8) != 0) {
        return clst_err_set(err, CLST_E_INVAL,
                            "the issuer must be https://HOST[:PORT] (at most %d characters)",
                            CLST_ATTEST_MAX_ISSUER_SIZE);
    }
    for (size_t i = 8; i < n; i++) {
        unsigned char c = (unsigned char)issuer[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '-' || c == ':' || c == '[' || c == ']' || c == '_';
        if (!ok) {
            return clst_err_set(err, CLST_E_INVAL,
                                "the issuer must be https://HOST[:PORT] without a path, "
                                "query or trailing '/' (character %zu is not allowed)",
                                i);
        }
    }
    return CLST_OK;
}

enum clst_status
clst_attest_issuer_set(struct clst_attest *a, const char *issuer, struct clst_err *err)
{
    enum clst_status rc;
    if (a == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "clst_attest_issuer_set: NULL engine");
    }
    if (issuer != NULL && (rc = attest_issuer_check(issuer, err)) != CLST_OK) {
        return rc;
    }
    pthread_mutex_lock(&a->issuer_lock);
    snprintf(a->issuer, sizeof(a->issuer), "%s", issuer ? issuer : "");
    pthread_mutex_unlock(&a->issuer_lock);
    return CLST_OK;
}

enum clst_status
attest_issuer_pick(struct clst_attest *a, const char *override,
                   char out[static CLST_ATTEST_MAX_ISSUER_SIZE + 1], struct clst_err *err)
{
    if (override != NULL) {
        enum clst_status rc = attest_issuer_check(override, err);
        if (rc != CLST_OK) {
            return rc;
        }
        snprintf(out, CLST_ATTEST_MAX_ISSUER_SIZE + 1, "%s", override);
        return CLST_OK;
    }
    pthread_mutex_lock(&a->issuer_lock);
    snprintf(out, CLST_ATTEST_MAX_ISSUER_SIZE + 1, "%s", a->issuer);
    pthread_mutex_unlock(&a->issuer_lock);
    if (out[0] == '\0') {
        return clst_err_set(err, CLST_E_INVAL, "the attestation service has no issuer configured");
    }
    return CLST_OK;
}

void
clst_attest_free(struct clst_attest *a)
{
    if (a == NULL) {
        return;
    }
    attest_keyring_cleanup(&a->ring);
    for (size_t i = 0; i < ATTEST_TYPE_COUNT; i++) {
        attest_appraisal_cleanup(&a->appraisal[i]);
    }
    attest_store_close(a->store);
    attest_hw_cleanup(&a->hw);
    clst_secret_free(a->seal_key);
    if (a->sim_roots != NULL) {
        sk_X509_pop_free(a->sim_roots, X509_free);
    }
    pthread_rwlock_destroy(&a->lock);
    pthread_mutex_destroy(&a->issuer_lock);
    free(a);
}

enum clst_status
clst_attest_new(const struct clst_attest_config *cfg, struct clst_attest **out,
                struct clst_err *err)
{
    enum clst_status rc = CLST_E_INVAL;
    struct clst_attest *a = NULL;
    static const char info[] = "cloister attest signing-key seal v1";

    if (cfg == NULL || out == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "clst_attest_new: NULL argument");
    }
    if (cfg->master_key == NULL || cfg->master_key_size < 32) {
        return clst_err_set(err, CLST_E_INVAL,
                            "the attestation service needs the data directory's 32-byte master "
                            "key to seal its signing keys");
    }
    int64_t lifetime = cfg->token_lifetime ? cfg->token_lifetime
                                           : CLST_ATTEST_DEFAULT_TOKEN_LIFETIME;
    if (lifetime < 60 || lifetime > CLST_ATTEST_MAX_TOKEN_LIFETIME) {
        return clst_err_set(err, CLST_E_INVAL,
                            "the token lifetime must be 60 to %d seconds, not %lld",
                            CLST_ATTEST_MAX_TOKEN_LIFETIME, (long long)lifetime);
    }
    int64_t nonce_life = cfg->nonce_lifetime ? cfg->nonce_lifetime
                                             : CLST_ATTEST_DEFAULT_NONCE_LIFETIME;
    if (nonce_life < 10 || nonce_life > 3600) {
        return clst_err_set(err, CLST_E_INVAL, "the nonce lifetime must be 10 to 3600 seconds");
    }
    int64_t period = cfg->key_period ? cfg->key_period : CLST_ATTEST_DEFAULT_KEY_PERIOD;
    if (period < CLST_ATTEST_MIN_KEY_PERIOD || period > 3660 * 86400LL) {
        return clst_err_set(err, CLST_E_INVAL,
                            "the signing key period must be 1 hour to 10 years");
    }
    if (cfg->issuer != NULL && (rc = attest_issuer_check(cfg->issuer, err)) != CLST_OK) {
        return rc;
    }
    a = calloc(1, sizeof(*a));
    if (a == NULL) {
        return clst_err_set(err, CLST_E_NOMEM, "out of memory");
    }
    if (pthread_rwlock_init(&a->lock, NULL) != 0) {
        free(a);
        return clst_err_set(err, CLST_E_INTERNAL, "cannot create a lock");
    }
    if (pthread_mutex_init(&a->issuer_lock, NULL) != 0) {
        pthread_rwlock_destroy(&a->lock);
        free(a);
        return clst_err_set(err, CLST_E_INTERNAL, "cannot create a lock");
    }
    a->clock = cfg->clock ? cfg->clock : clst_clock_system();
    a->token_lifetime = lifetime;
    a->nonce_lifetime = nonce_life;
    a->key_period = period;
    snprintf(a->issuer, sizeof(a->issuer), "%s", cfg->issuer ? cfg->issuer : "");

    if ((rc = clst_secret_new(32, &a->seal_key)) != CLST_OK ||
        (rc = clst_hkdf(CLST_HASH_SHA256, NULL, 0, cfg->master_key, cfg->master_key_size,
                        (const uint8_t *)info, sizeof(info) - 1, a->seal_key->ptr, 32)) !=
            CLST_OK) {
        rc = clst_err_set(err, rc, "cannot derive the signing-key sealing key");
        goto out;
    }
    if (cfg->sim_roots != NULL && sk_X509_num(cfg->sim_roots) > 0) {
        a->sim_roots = sk_X509_new_null();
        if (a->sim_roots == NULL) {
            rc = clst_err_set(err, CLST_E_NOMEM, "out of memory");
            goto out;
        }
        for (int i = 0; i < sk_X509_num(cfg->sim_roots); i++) {
            X509 *c = sk_X509_value(cfg->sim_roots, i);
            if (X509_up_ref(c) != 1 || sk_X509_push(a->sim_roots, c) <= 0) {
                rc = clst_err_set(err, CLST_E_NOMEM, "out of memory");
                goto out;
            }
        }
    }
    if ((rc = attest_hw_load(&a->hw, cfg, err)) != CLST_OK) {
        goto out;
    }
    if ((rc = attest_store_open(cfg->db_path, &a->store, err)) != CLST_OK ||
        (rc = attest_keyring_maintain(a, attest_now(a), false, err)) != CLST_OK) {
        goto out;
    }
    for (size_t i = 0; i < ATTEST_TYPE_COUNT; i++) {
        if ((rc = attest_appraisal_reload(a, i, err)) != CLST_OK) {
            goto out;
        }
    }
    *out = a;
    a = NULL;
    rc = CLST_OK;
out:
    clst_attest_free(a);
    return rc;
}

/* ---- challenges ------------------------------------------------------------------------------ */

enum clst_status
clst_attest_challenge_new(struct clst_attest *a, char out_nonce[static CLST_ATTEST_NONCE_TEXT_SIZE],
                          int64_t *out_expires, struct clst_err *err)
{
    enum clst_status rc;
    uint8_t raw[CLST_ATTEST_NONCE_BYTES];
    struct clst_buf text;
    clst_buf_init(&text, CLST_ATTEST_NONCE_TEXT_SIZE);
    if ((rc = clst_random(raw, sizeof(raw))) != CLST_OK ||
        (rc = clst_b64url_encode(raw, sizeof(raw), &text)) != CLST_OK ||
        (rc = clst_buf_terminate(&text)) != CLST_OK) {
        rc = clst_err_set(err, rc, "cannot make a nonce");
        goto out;
    }
    int64_t now = attest_now(a);
    int64_t expires = now + a->nonce_lifetime;
    if ((rc = attest_store_nonce_insert(a->store, (const char *)text.data, now, expires,
                                        CLST_ATTEST_MAX_NONCES, err)) != CLST_OK) {
        goto out;
    }
    memcpy(out_nonce, text.data, text.size + 1);
    *out_expires = expires;
out:
    clst_buf_cleanup(&text);
    return rc;
}

enum clst_status
clst_attest_nonce_consume(struct clst_attest *a, const char *nonce, struct clst_err *err)
{
    if (a == NULL || nonce == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "clst_attest_nonce_consume: NULL argument");
    }
    size_t n = strlen(nonce);
    if (n != CLST_ATTEST_NONCE_TEXT_SIZE - 1) {
        return clst_err_set(err, CLST_E_VERIFY,
                            "unknown nonce: nonces of this service are %d characters; get one "
                            "from POST /attest/challenge",
                            CLST_ATTEST_NONCE_TEXT_SIZE - 1);
    }
    return attest_store_nonce_consume(a->store, nonce, attest_now(a), err);
}

/* ---- signing --------------------------------------------------------------------------------- */

enum clst_status
attest_sign(struct clst_attest *a, const char *issuer, const json_t *claims, char **out,
            struct clst_err *err)
{
    enum clst_status rc;
    char jku[CLST_ATTEST_MAX_ISSUER_SIZE + 16];
    int64_t now = attest_now(a);
    snprintf(jku, sizeof(jku), "%s/certs", issuer);
    json_t *header = json_pack("{s:s, s:s}", "jku", jku, "typ", "JWT");
    if (header == NULL) {
        return clst_err_set(err, CLST_E_NOMEM, "out of memory");
    }
    pthread_rwlock_rdlock(&a->lock);
    if (now >= a->ring.next_event) {
        pthread_rwlock_unlock(&a->lock);
        pthread_rwlock_wrlock(&a->lock);
        if (now >= a->ring.next_event &&
            (rc = attest_keyring_maintain(a, now, false, err)) != CLST_OK) {
            goto out;
        }
    }
    const struct attest_key *k = attest_keyring_current(&a->ring, now);
    if (k == NULL) {
        rc = clst_err_set(err, CLST_E_INTERNAL, "no signing key is current");
        goto out;
    }
    rc = clst_jwt_sign(k->jwk, claims, header, out, err);
out:
    pthread_rwlock_unlock(&a->lock);
    json_decref(header);
    return rc;
}

enum clst_status
clst_attest_jwks(struct clst_attest *a, json_t **out, struct clst_err *err)
{
    enum clst_status rc = CLST_OK;
    int64_t now = attest_now(a);
    pthread_rwlock_rdlock(&a->lock);
    if (now >= a->ring.next_event) {
        pthread_rwlock_unlock(&a->lock);
        pthread_rwlock_wrlock(&a->lock);
        if (now >= a->ring.next_event) {
            rc = attest_keyring_maintain(a, now, false, err);
        }
    }
    if (rc == CLST_OK) {
        *out = json_deep_copy(a->ring.jwks);
        rc = *out ? CLST_OK : clst_err_set(err, CLST_E_NOMEM, "out of memory");
    }
    pthread_rwlock_unlock(&a->lock);
    return rc;
}

enum clst_status
clst_attest_current_kid(struct clst_attest *a, char **out, struct clst_err *err)
{
    enum clst_status rc;
    int64_t now = attest_now(a);
    pthread_rwlock_wrlock(&a->lock);
    rc = now >= a->ring.next_event ? attest_keyring_maintain(a, now, false, err) : CLST_OK;
    if (rc == CLST_OK) {
        const struct attest_key *k = attest_keyring_current(&a->ring, now);
        *out = k ? strdup(k->kid) : NULL;
        rc = *out ? CLST_OK : clst_err_set(err, CLST_E_NOMEM, "out of memory");
    }
    pthread_rwlock_unlock(&a->lock);
    return rc;
}

enum clst_status
clst_attest_keys_rotate(struct clst_attest *a, struct clst_err *err)
{
    pthread_rwlock_wrlock(&a->lock);
    enum clst_status rc = attest_keyring_maintain(a, attest_now(a), true, err);
    pthread_rwlock_unlock(&a->lock);
    return rc;
}

enum clst_status
clst_attest_openid_config(struct clst_attest *a, const char *issuer, json_t **out,
                          struct clst_err *err)
{
    char iss[CLST_ATTEST_MAX_ISSUER_SIZE + 1];
    char jwks_uri[CLST_ATTEST_MAX_ISSUER_SIZE + 16];
    char revoke[CLST_ATTEST_MAX_ISSUER_SIZE + 16];
    enum clst_status rc = attest_issuer_pick(a, issuer, iss, err);
    if (rc != CLST_OK) {
        return rc;
    }
    snprintf(jwks_uri, sizeof(jwks_uri), "%s/certs", iss);
    snprintf(revoke, sizeof(revoke), "%s/revoke", iss);
    json_t *claims = json_pack(
        "[s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s]", "iss", "iat",
        "nbf", "exp", "jti", "nonce", CLST_ATTEST_CLAIM_VER, CLST_CLAIM_ATTESTATION_TYPE,
        CLST_ATTEST_CLAIM_POLICY_HASH, CLST_ATTEST_CLAIM_RUNTIME, CLST_SIM_CLAIM_MRENCLAVE,
        CLST_SIM_CLAIM_MRSIGNER, CLST_SIM_CLAIM_PRODUCT_ID, CLST_SIM_CLAIM_SVN,
        CLST_SIM_CLAIM_IS_DEBUGGABLE, CLST_SIM_CLAIM_PLATFORM_ID, CLST_ATTEST_CLAIM_SIM_EHD,
        "x-ms-sgx-mrenclave", "x-ms-sgx-mrsigner", "x-ms-sgx-product-id", "x-ms-sgx-svn",
        "x-ms-sgx-is-debuggable", "x-ms-sgx-ehd", "x-ms-sgx-collateral",
        "x-ms-sevsnpvm-launchmeasurement", "x-ms-sevsnpvm-is-debuggable",
        "x-ms-sevsnpvm-reportdata", "tdx_mrtd", "tdx_report_data", "tdx_is_debuggable",
        "attester_tcb_status", "aikPubHash", "aws-nitro-pcr0");
    json_t *doc = json_pack("{s:s, s:s, s:s, s:[s,s], s:[s], s:o, s:[s]}", "issuer", iss,
                            "jwks_uri", jwks_uri, "revocation_endpoint", revoke,
                            "response_types_supported", "token", "none",
                            "id_token_signing_alg_values_supported", "ES256", "claims_supported",
                            claims, "token_endpoint_auth_methods_supported", "none");
    if (doc == NULL) {
        return clst_err_set(err, CLST_E_NOMEM, "out of memory");
    }
    *out = doc;
    return CLST_OK;
}

/* ---- the pipeline ---------------------------------------------------------------------------- */

static enum clst_status
check_nonce_binding(const struct clst_attest_request *req, struct clst_err *err)
{
    const char *nonce = req->nonce;
    size_t n = strlen(nonce);
    if (req->runtime_type == CLST_ATTEST_DATA_NONE) {
        return clst_err_set(err, CLST_E_VERIFY,
                            "a nonce must be bound to the evidence: send runtimeData that carries "
                            "it (JSON: a \"nonce\" member equal to it; Binary: ending with its "
                            "bytes), whose SHA-256 the TEE put in its report data");
    }
    if (req->runtime_type == CLST_ATTEST_DATA_JSON) {
        const json_t *v = json_object_get(req->runtime_json, "nonce");
        if (!json_is_string(v) || json_string_length(v) != n ||
            memcmp(json_string_value(v), nonce, n) != 0) {
            return clst_err_set(err, CLST_E_VERIFY,
                                "the nonce is not bound to the evidence: the JSON runtime data "
                                "needs a \"nonce\" member equal to the request's nonce");
        }
        return CLST_OK;
    }
    if (req->runtime_data.size < n ||
        memcmp(req->runtime_data.data + req->runtime_data.size - n, nonce, n) != 0) {
        return clst_err_set(err, CLST_E_VERIFY,
                            "the nonce is not bound to the evidence: binary runtime data must "
                            "end with the nonce's bytes");
    }
    return CLST_OK;
}

static enum clst_status
add_claim(json_t *claims, const char *name, json_t *value, struct clst_err *err)
{
    if (value == NULL || json_object_set_new(claims, name, value) != 0) {
        return clst_err_set(err, CLST_E_NOMEM, "out of memory");
    }
    return CLST_OK;
}

/* An unsecured JWT (RFC 7519 section 6): {"alg":"none","typ":"JWT"}.claims. (empty signature),
 * as the cloud answers a draftPolicyForAttestation. */
static enum clst_status
unsecured_token(const json_t *claims, char **out, struct clst_err *err)
{
    static const char header[] = "{\"alg\":\"none\",\"typ\":\"JWT\"}";
    enum clst_status rc = CLST_E_NOMEM;
    struct clst_buf tok;
    char *payload = json_dumps(claims, JSON_COMPACT);
    clst_buf_init(&tok, 4u * 1024 * 1024);
    if (payload == NULL ||
        clst_b64url_encode((const uint8_t *)header, sizeof(header) - 1, &tok) != CLST_OK ||
        clst_buf_append_byte(&tok, '.') != CLST_OK ||
        clst_b64url_encode((const uint8_t *)payload, strlen(payload), &tok) != CLST_OK ||
        clst_buf_append_byte(&tok, '.') != CLST_OK || clst_buf_terminate(&tok) != CLST_OK) {
        rc = clst_err_set(err, CLST_E_NOMEM, "cannot build the draft token");
        goto out;
    }
    size_t size;
    *out = (char *)clst_buf_steal(&tok, &size);
    rc = CLST_OK;
out:
    free(payload);
    clst_buf_cleanup(&tok);
    return rc;
}

enum clst_status
clst_attest_evaluate(struct clst_attest *a, const struct clst_attest_request *req,
                     const char *issuer, char **out_token, json_t **out_claims,
                     json_t **out_denial, struct clst_err *err)
{
    enum clst_status rc = CLST_E_INVAL;
    json_t *claims = NULL;
    json_t *denial = NULL;
    char iss[CLST_ATTEST_MAX_ISSUER_SIZE + 1];
    char hash[CLST_POLICY_HASH_STR_SIZE];
    struct clst_buf b64;
    clst_buf_init(&b64, 2 * CLST_ATTEST_MAX_RUNTIME_DATA);

    if (a == NULL || req == NULL || req->type == NULL || out_token == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "clst_attest_evaluate: NULL argument");
    }
    const struct clst_attest_type *type = req->type;
    size_t idx = attest_type_index(type);
    if (idx >= ATTEST_TYPE_COUNT) {
        return clst_err_set(err, CLST_E_INVAL, "clst_attest_evaluate: not a known type");
    }
    if ((rc = attest_issuer_pick(a, issuer, iss, err)) != CLST_OK) {
        goto out;
    }
    /* Sim evidence is verified against the trusted sim roots only, hardware evidence against
     * the compiled-in vendor roots and the configured collateral only (hardware.c). */
    if (type->kind == CLST_EVIDENCE_SIM && a->sim_roots == NULL) {
        rc = clst_err_set(err, CLST_E_VERIFY,
                          "sim evidence is not accepted: this service trusts no sim root (sim is "
                          "the development-only TEE; start 'cloister serve --trust-sim ROOT.pem' "
                          "with the root.pem of the sim platform to accept it)");
        goto out;
    }
    if (req->inittime_type != CLST_ATTEST_DATA_NONE) {
        rc = clst_err_set(err, CLST_E_MALFORMED,
                          "initTimeData cannot be bound to %s evidence (its report has no "
                          "init-time field); leave it out",
                          type->name);
        goto out;
    }
    if (req->nonce != NULL && (rc = check_nonce_binding(req, err)) != CLST_OK) {
        goto out;
    }

    /* Evidence -> verified claims (size, parse, chain, signature, debug, binding). */
    struct clst_evidence_input in;
    memset(&in, 0, sizeof(in));
    in.evidence = req->evidence.data;
    in.evidence_size = req->evidence.size;
    if (req->runtime_type != CLST_ATTEST_DATA_NONE) {
        static const uint8_t empty[1] = {0};
        in.runtime_data = req->runtime_data.size ? req->runtime_data.data : empty;
        in.runtime_data_size = req->runtime_data.size;
    }
    in.at = attest_now(a);
    in.allow_debug = false;
    if (type->kind == CLST_EVIDENCE_SIM) {
        in.roots = a->sim_roots;
        rc = clst_evidence_verify(type->kind, &in, &claims, err);
    } else {
        rc = attest_hw_verify(&a->hw, type, &req->certs, &in, &claims, err);
    }
    if (rc == CLST_E_NOTFOUND) {
        goto out; /* the type is not available or not configured: err says which */
    }
    if (rc != CLST_OK) {
        clst_err_prefix(err, "evidence rejected");
        goto out;
    }
    /* What the TEE bound into its report. */
    if (req->runtime_type == CLST_ATTEST_DATA_JSON) {
        if ((rc = add_claim(claims, CLST_ATTEST_CLAIM_RUNTIME,
                            json_deep_copy(req->runtime_json), err)) != CLST_OK) {
            goto out;
        }
    } else if (req->runtime_type == CLST_ATTEST_DATA_BINARY && type->ehd_claim != NULL) {
        if ((rc = clst_b64url_encode(req->runtime_data.data, req->runtime_data.size, &b64)) !=
                CLST_OK ||
            (rc = clst_buf_terminate(&b64)) != CLST_OK ||
            (rc = add_claim(claims, type->ehd_claim,
                            json_stringn(b64.size ? (const char *)b64.data : "", b64.size),
                            err)) != CLST_OK) {
            goto out;
        }
    }
    if (req->nonce != NULL &&
        (rc = add_claim(claims, CLST_ATTEST_CLAIM_NONCE, json_string(req->nonce), err)) !=
            CLST_OK) {
        goto out;
    }

    /* Appraisal: authorization rules and reference values of the policy in force, or the
     * caller's draft (whose token is unsecured, below). */
    bool draft = req->draft_policy != NULL;
    if (draft) {
        rc = attest_draft_check(type, req->draft_policy, claims, hash, &denial, err);
    } else {
        pthread_rwlock_rdlock(&a->lock);
        rc = attest_appraisal_check(a, idx, claims, hash, &denial, err);
        pthread_rwlock_unlock(&a->lock);
    }
    if (rc != CLST_OK) {
        goto out;
    }

    /* Single use: consumed only once everything else has passed, in one transaction (a draft's
     * token attests nothing, so it does not use up the nonce). */
    if (!draft && req->nonce != NULL &&
        (rc = clst_attest_nonce_consume(a, req->nonce, err)) != CLST_OK) {
        goto out;
    }

    uint8_t jti_raw[32];
    char jti[65];
    int64_t now = attest_now(a);
    if ((rc = clst_random(jti_raw, sizeof(jti_raw))) != CLST_OK ||
        (rc = clst_hex_to_str(jti_raw, sizeof(jti_raw), jti, sizeof(jti))) != CLST_OK) {
        rc = clst_err_set(err, rc, "cannot make a token id");
        goto out;
    }
    if ((rc = add_claim(claims, "iss", json_string(iss), err)) != CLST_OK ||
        (rc = add_claim(claims, "iat", json_integer(now), err)) != CLST_OK ||
        (rc = add_claim(claims, "nbf", json_integer(now), err)) != CLST_OK ||
        (rc = add_claim(claims, "exp", json_integer(now + a->token_lifetime), err)) != CLST_OK ||
        (rc = add_claim(claims, "jti", json_string(jti), err)) != CLST_OK ||
        (rc = add_claim(claims, CLST_ATTEST_CLAIM_VER, json_string(CLST_ATTEST_TOKEN_VERSION),
                        err)) != CLST_OK ||
        (rc = add_claim(claims, CLST_ATTEST_CLAIM_POLICY_HASH, json_string(hash), err)) !=
            CLST_OK) {
        goto out;
    }
    if (draft) {
        if ((rc = add_claim(claims, "x-cloister-draft-policy", json_true(), err)) != CLST_OK ||
            (rc = unsecured_token(claims, out_token, err)) != CLST_OK) {
            goto out;
        }
    } else if ((rc = attest_sign(a, iss, claims, out_token, err)) != CLST_OK) {
        goto out;
    }
    if (out_claims != NULL) {
        *out_claims = claims;
        claims = NULL;
    }
    rc = CLST_OK;
out:
    if (rc == CLST_E_DENIED && out_denial != NULL) {
        *out_denial = denial;
        denial = NULL;
    }
    json_decref(denial);
    json_decref(claims);
    clst_buf_cleanup(&b64);
    return rc;
}
