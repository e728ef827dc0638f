/*
 * The token signing keys: EC P-256 keys (ES256), each published in the JWKS with a self-signed
 * certificate in "x5c" (what the cloud attestation service's SDKs take the key from), sealed at
 * rest in attest.db, rotated on a schedule with overlap:
 *
 *   - a key signs during [not_before, not_after) (the configured key period);
 *   - its successor is created and published `prepublish` (min(1 day, period/2)) before it
 *     starts signing, so relying parties that cache the JWKS know it before its first token;
 *   - a key stays published until publish_until = not_after + token lifetime + clock skew, so
 *     every token it signed can be verified until that token expires.
 *
 * Sealing: AES-256-GCM under seal_key (HKDF of the master key, engine.c), AAD = a label and the
 * kid, so a sealed key moved to another row does not open. sealed = nonce || ciphertext || tag.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include <openssl/x509v3.h>

#include "attest_int.h"

#define SEAL_LABEL   "cloister-attest-signing-key"
#define KEY_DER_MAX  1024
#define CERT_SUBJECT "Cloister attestation token signing key"

/* ---- sealing --------------------------------------------------------------------------------- */

static enum clst_status
seal_aad(const char *kid, struct clst_buf *aad)
{
    enum clst_status rc = clst_buf_append(aad, SEAL_LABEL, sizeof(SEAL_LABEL)); /* with NUL */
    if (rc == CLST_OK) {
        rc = clst_buf_append_str(aad, kid);
    }
    return rc;
}

enum clst_status
attest_key_seal(const uint8_t *seal_key, const char *kid, const uint8_t *pt, size_t pt_size,
                struct clst_buf *out)
{
    enum clst_status rc = CLST_E_NOMEM;
    struct clst_buf aad;
    uint8_t nonce[CLST_GCM_NONCE_SIZE];
    uint8_t tag[CLST_GCM_TAG_SIZE];
    clst_buf_init(&aad, 512);
    if ((rc = seal_aad(kid, &aad)) != CLST_OK || (rc = clst_random(nonce, sizeof(nonce))) != CLST_OK ||
        (rc = clst_buf_reserve(out, sizeof(nonce) + pt_size + sizeof(tag))) != CLST_OK) {
        goto out;
    }
    size_t start = out->size;
    memcpy(out->data + start, nonce, sizeof(nonce));
    rc = clst_aes_gcm_seal(seal_key, 32, nonce, sizeof(nonce), aad.data, aad.size, pt, pt_size,
                           out->data + start + sizeof(nonce), tag, sizeof(tag));
    if (rc != CLST_OK) {
        goto out;
    }
    memcpy(out->data + start + sizeof(nonce) + pt_size, tag, sizeof(tag));
    out->size = start + sizeof(nonce) + pt_size + sizeof(tag);
out:
    clst_buf_cleanup(&aad);
    return rc;
}

enum clst_status
attest_key_unseal(const uint8_t *seal_key, const char *kid, const uint8_t *sealed,
                  size_t sealed_size, struct clst_buf *out_secret, struct clst_err *err)
{
    enum clst_status rc = CLST_E_NOMEM;
    struct clst_buf aad;
    clst_buf_init(&aad, 512);
    if (sealed_size <= CLST_GCM_NONCE_SIZE + CLST_GCM_TAG_SIZE ||
        sealed_size - CLST_GCM_NONCE_SIZE - CLST_GCM_TAG_SIZE > KEY_DER_MAX) {
        rc = clst_err_set(err, CLST_E_VERIFY, "signing key %s: sealed key has a bad size", kid);
        goto out;
    }
    size_t ct_size = sealed_size - CLST_GCM_NONCE_SIZE - CLST_GCM_TAG_SIZE;
    if ((rc = seal_aad(kid, &aad)) != CLST_OK ||
        (rc = clst_buf_reserve(out_secret, ct_size)) != CLST_OK) {
        rc = clst_err_set(err, rc, "out of memory");
        goto out;
    }
    rc = clst_aes_gcm_open(seal_key, 32, sealed, CLST_GCM_NONCE_SIZE, aad.data, aad.size,
                           sealed + CLST_GCM_NONCE_SIZE, ct_size,
                           sealed + CLST_GCM_NONCE_SIZE + ct_size, CLST_GCM_TAG_SIZE,
                           out_secret->data + out_secret->size);
    if (rc != CLST_OK) {
        rc = clst_err_set(err, CLST_E_VERIFY,
                          "signing key %s does not open with this data directory's master key "
                          "(attest.db from another data directory, or tampered with)",
                          kid);
        goto out;
    }
    out_secret->size += ct_size;
out:
    clst_buf_cleanup(&aad);
    return rc;
}

/* ---- certificates ---------------------------------------------------------------------------- */

static bool
add_ext(X509 *cert, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, cert, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (ext == NULL) {
        return false;
    }
    bool ok = X509_add_ext(cert, ext, -1) == 1;
    X509_EXTENSION_free(ext);
    return ok;
}

enum clst_status
attest_key_cert(EVP_PKEY *key, int64_t not_before, int64_t not_after, X509 **out,
                struct clst_err *err)
{
    enum clst_status rc = CLST_E_CRYPTO;
    X509 *cert = X509_new();
    X509_NAME *name = X509_NAME_new();
    ASN1_INTEGER *serial = NULL;
    BIGNUM *bn = NULL;
    uint8_t serial_bytes[16];

    if (cert == NULL || name == NULL) {
        goto out;
    }
    if (clst_random(serial_bytes, sizeof(serial_bytes)) != CLST_OK) {
        goto out;
    }
    serial_bytes[0] &= 0x7f; /* positive */
    serial_bytes[0] |= 0x01; /* and non-zero */
    if ((bn = BN_bin2bn(serial_bytes, sizeof(serial_bytes), NULL)) == NULL ||
        (serial = BN_to_ASN1_INTEGER(bn, NULL)) == NULL) {
        goto out;
    }
    if (X509_set_version(cert, X509_VERSION_3) != 1 ||
        X509_set_serialNumber(cert, serial) != 1 ||
        X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"Cloister", -1,
                                   -1, 0) != 1 ||
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)CERT_SUBJECT,
                                   -1, -1, 0) != 1 ||
        X509_set_subject_name(cert, name) != 1 || X509_set_issuer_name(cert, name) != 1 ||
        ASN1_TIME_set(X509_getm_notBefore(cert), (time_t)not_before) == NULL ||
        ASN1_TIME_set(X509_getm_notAfter(cert), (time_t)not_after) == NULL ||
        X509_set_pubkey(cert, key) != 1 ||
        !add_ext(cert, NID_basic_constraints, "critical,CA:FALSE") ||
        !add_ext(cert, NID_key_usage, "critical,digitalSignature") ||
        !add_ext(cert, NID_subject_key_identifier, "hash")) {
        goto out;
    }
    if (X509_sign(cert, key, EVP_sha256()) <= 0) {
        goto out;
    }
    *out = cert;
    cert = NULL;
    rc = CLST_OK;
out:
    if (rc != CLST_OK) {
        clst_err_set(err, rc, "cannot issue the signing key's certificate");
    }
    X509_free(cert);
    X509_NAME_free(name);
    ASN1_INTEGER_free(serial);
    BN_free(bn);
    return rc;
}

/* ---- the ring -------------------------------------------------------------------------------- */

static int64_t
prepublish(const struct clst_attest *a)
{
    int64_t half = a->key_period / 2;
    return half < 86400 ? half : 86400;
}

static void
key_cleanup(struct attest_key *k)
{
    clst_jwk_free(k->jwk);
    memset(k, 0, sizeof(*k));
}

void
attest_keyring_cleanup(struct attest_keyring *ring)
{
    for (size_t i = 0; i < ring->count; i++) {
        key_cleanup(&ring->keys[i]);
    }
    free(ring->keys);
    json_decref(ring->jwks);
    memset(ring, 0, sizeof(*ring));
}

const struct attest_key *
attest_keyring_current(const struct attest_keyring *ring, int64_t now)
{
    const struct attest_key *best = NULL;
    for (size_t i = 0; i < ring->count; i++) {
        const struct attest_key *k = &ring->keys[i];
        if (k->not_before <= now && now < k->not_after &&
            (best == NULL || k->not_before > best->not_before)) {
            best = k;
        }
    }
    return best;
}

/* Builds a ring key from a private key and its certificate (references taken). */
static enum clst_status
key_from(EVP_PKEY *pkey, X509 *cert, const char *kid, struct attest_key *k, struct clst_err *err)
{
    enum clst_status rc;
    STACK_OF(X509) *chain = sk_X509_new_null();
    if (chain == NULL || sk_X509_push(chain, cert) <= 0) {
        sk_X509_free(chain);
        return clst_err_set(err, CLST_E_NOMEM, "out of memory");
    }
    rc = clst_jwk_from_pkey(pkey, kid, CLST_JWS_ES256, &k->jwk, err);
    if (rc == CLST_OK) {
        rc = clst_jwk_set_x5c(k->jwk, chain, err);
    }
    sk_X509_free(chain); /* the certificate itself stays the caller's */
    if (rc != CLST_OK) {
        clst_jwk_free(k->jwk);
        k->jwk = NULL;
    }
    snprintf(k->kid, sizeof(k->kid), "%s", kid);
    return rc;
}

static enum clst_status
ring_push(struct attest_keyring *ring, struct attest_key *k, struct clst_err *err)
{
    struct attest_key *keys = realloc(ring->keys, (ring->count + 1) * sizeof(*keys));
    if (keys == NULL) {
        return clst_err_set(err, CLST_E_NOMEM, "out of memory");
    }
    ring->keys = keys;
    /* keep sorted by not_before */
    size_t at = ring->count;
    while (at > 0 && keys[at - 1].not_before > k->not_before) {
        keys[at] = keys[at - 1];
        at--;
    }
    keys[at] = *k;
    ring->count++;
    memset(k, 0, sizeof(*k));
    return CLST_OK;
}

static enum clst_status
ring_load(struct clst_attest *a, struct clst_err *err)
{
    enum clst_status rc;
    struct attest_key_row *rows = NULL;
    size_t count = 0;
    struct clst_buf der;
    clst_buf_init_secret(&der, KEY_DER_MAX);
    if ((rc = attest_store_keys_load(a->store, &rows, &count, err)) != CLST_OK) {
        goto out;
    }
    for (size_t i = 0; i < count; i++) {
        const struct attest_key_row *r = &rows[i];
        EVP_PKEY *pkey = NULL;
        X509 *cert = NULL;
        struct attest_key k = {0};
        clst_buf_reset(&der);
        rc = attest_key_unseal(a->seal_key->ptr, r->kid, r->sealed, r->sealed_size, &der, err);
        if (rc == CLST_OK) {
            rc = clst_pkey_from_der(der.data, der.size, &pkey, err);
        }
        if (rc == CLST_OK) {
            rc = clst_x509_from_der(r->cert, r->cert_size, &cert, err);
        }
        if (rc == CLST_OK && (clst_pkey_kind(pkey) != CLST_KEY_EC_P256 ||
                              !clst_pkey_public_equal(X509_get0_pubkey(cert), pkey))) {
            rc = clst_err_set(err, CLST_E_VERIFY,
                              "signing key %s: the key is not P-256 or does not match its "
                              "certificate",
                              r->kid);
        }
        if (rc == CLST_OK) {
            k.created = r->created;
            k.not_before = r->not_before;
            k.not_after = r->not_after;
            k.publish_until = r->publish_until;
            rc = key_from(pkey, cert, r->kid, &k, err);
        }
        EVP_PKEY_free(pkey);
        X509_free(cert);
        if (rc == CLST_OK) {
            rc = ring_push(&a->ring, &k, err);
        }
        key_cleanup(&k);
        if (rc != CLST_OK) {
            clst_err_prefix(err, "loading the attestation signing keys");
            goto out;
        }
    }
    rc = CLST_OK;
out:
    clst_buf_cleanup(&der);
    attest_key_rows_free(rows, count);
    return rc;
}

/* Creates, stores and adds a key that signs during [not_before, not_after). */
static enum clst_status
ring_create(struct clst_attest *a, int64_t now, int64_t not_before, int64_t not_after,
            struct clst_err *err)
{
    enum clst_status rc;
    EVP_PKEY *pkey = NULL;
    X509 *cert = NULL;
    struct clst_jwk *tmp = NULL;
    struct attest_key k = {0};
    struct attest_key_row row = {0};
    struct clst_buf der, sealed, kid;
    uint8_t thumb[CLST_SHA256_SIZE];
    unsigned char *cert_der = NULL;
    clst_buf_init_secret(&der, KEY_DER_MAX);
    clst_buf_init(&sealed, KEY_DER_MAX + 64);
    clst_buf_init(&kid, 64);

    int64_t publish_until = not_after + a->token_lifetime + CLST_ATTEST_CLOCK_SKEW;
    if ((rc = clst_ec_generate(CLST_CURVE_P256, &pkey)) != CLST_OK) {
        rc = clst_err_set(err, rc, "cannot generate a signing key");
        goto out;
    }
    if ((rc = clst_jwk_from_pkey(pkey, NULL, CLST_JWS_ES256, &tmp, err)) != CLST_OK ||
        (rc = clst_jwk_thumbprint(tmp, thumb)) != CLST_OK ||
        (rc = clst_b64url_encode(thumb, sizeof(thumb), &kid)) != CLST_OK ||
        (rc = clst_buf_terminate(&kid)) != CLST_OK) {
        rc = clst_err_set(err, rc, "cannot compute the signing key's kid");
        goto out;
    }
    /* The certificate outlives the key's publication by a day: x5c is never shown expired. */
    if ((rc = attest_key_cert(pkey, now - CLST_ATTEST_CLOCK_SKEW, publish_until + 86400, &cert,
                              err)) != CLST_OK) {
        goto out;
    }
    int cert_size = i2d_X509(cert, &cert_der);
    if (cert_size <= 0) {
        rc = clst_err_set(err, CLST_E_CRYPTO, "cannot encode the signing key's certificate");
        goto out;
    }
    if ((rc = clst_pkey_to_der(pkey, true, &der)) != CLST_OK ||
        (rc = attest_key_seal(a->seal_key->ptr, (const char *)kid.data, der.data, der.size,
                              &sealed)) != CLST_OK) {
        rc = clst_err_set(err, rc, "cannot seal the signing key");
        goto out;
    }
    snprintf(row.kid, sizeof(row.kid), "%s", (const char *)kid.data);
    row.created = now;
    row.not_before = not_before;
    row.not_after = not_after;
    row.publish_until = publish_until;
    row.sealed = sealed.data;
    row.sealed_size = sealed.size;
    row.cert = cert_der;
    row.cert_size = (size_t)cert_size;
    if ((rc = attest_store_key_insert(a->store, &row, err)) != CLST_OK) {
        goto out;
    }
    k.created = now;
    k.not_before = not_before;
    k.not_after = not_after;
    k.publish_until = publish_until;
    if ((rc = key_from(pkey, cert, (const char *)kid.data, &k, err)) != CLST_OK ||
        (rc = ring_push(&a->ring, &k, err)) != CLST_OK) {
        goto out;
    }
    clst_log_info("attest: new token signing key %s signs from %lld to %lld",
                  (const char *)kid.data, (long long)not_before, (long long)not_after);
out:
    key_cleanup(&k);
    clst_jwk_free(tmp);
    EVP_PKEY_free(pkey);
    X509_free(cert);
    OPENSSL_free(cert_der);
    clst_buf_cleanup(&der);
    clst_buf_cleanup(&sealed);
    clst_buf_cleanup(&kid);
    return rc;
}

static enum clst_status
key_set_times(struct clst_attest *a, struct attest_key *k, int64_t not_before, int64_t not_after,
              int64_t publish_until, struct clst_err *err)
{
    enum clst_status rc =
        attest_store_key_update(a->store, k->kid, not_before, not_after, publish_until, err);
    if (rc == CLST_OK) {
        k->not_before = not_before;
        k->not_after = not_after;
        k->publish_until = publish_until;
    }
    return rc;
}

static enum clst_status
rebuild_jwks(struct clst_attest *a, int64_t now, struct clst_err *err)
{
    json_t *keys = json_array();
    json_t *set = json_object();
    if (keys == NULL || set == NULL || json_object_set(set, "keys", keys) != 0) {
        json_decref(keys);
        json_decref(set);
        return clst_err_set(err, CLST_E_NOMEM, "out of memory");
    }
    const struct attest_key *cur = attest_keyring_current(&a->ring, now);
    /* The current key first, then the others newest first. */
    for (size_t pass = 0; pass < 2; pass++) {
        for (size_t j = a->ring.count; j-- > 0;) {
            const struct attest_key *k = &a->ring.keys[j];
            if ((pass == 0) != (k == cur) || k->publish_until <= now) {
                continue;
            }
            json_t *jk = NULL;
            if (clst_jwk_to_json(k->jwk, false, &jk) != CLST_OK ||
                json_object_set_new(jk, "use", json_string("sig")) != 0 ||
                json_array_append_new(keys, jk) != 0) {
                json_decref(jk);
                json_decref(keys);
                json_decref(set);
                return clst_err_set(err, CLST_E_NOMEM, "out of memory");
            }
        }
    }
    json_decref(keys);
    json_decref(a->ring.jwks);
    a->ring.jwks = set;
    return CLST_OK;
}

static void
next_event(struct clst_attest *a, int64_t now)
{
    int64_t next = INT64_MAX;
    int64_t pre = prepublish(a);
    for (size_t i = 0; i < a->ring.count; i++) {
        const struct attest_key *k = &a->ring.keys[i];
        const int64_t times[] = {k->not_before, k->not_after - pre, k->not_after,
                                 k->publish_until};
        for (size_t t = 0; t < sizeof(times) / sizeof(times[0]); t++) {
            if (times[t] > now && times[t] < next) {
                next = times[t];
            }
        }
    }
    a->ring.next_event = next;
}

enum clst_status
attest_keyring_maintain(struct clst_attest *a, int64_t now, bool force_rotate,
                        struct clst_err *err)
{
    enum clst_status rc;
    if (a->ring.keys == NULL && (rc = ring_load(a, err)) != CLST_OK) {
        return rc;
    }
    struct attest_key *cur = (struct attest_key *)attest_keyring_current(&a->ring, now);
    if (force_rotate && cur != NULL) {
        struct attest_key *next = NULL;
        for (size_t i = 0; i < a->ring.count; i++) {
            if (a->ring.keys[i].not_before > now &&
                (next == NULL || a->ring.keys[i].not_before < next->not_before)) {
                next = &a->ring.keys[i];
            }
        }
        int64_t old_not_before = cur->not_before;
        /* A key that starts and stops at the same second never signs: keep it ordered. */
        if ((rc = key_set_times(a, cur, old_not_before < now ? old_not_before : now - 1, now,
                                now + a->token_lifetime + CLST_ATTEST_CLOCK_SKEW, err)) !=
            CLST_OK) {
            return rc;
        }
        if (next != NULL) {
            rc = key_set_times(a, next, now, next->not_after, next->publish_until, err);
        } else {
            rc = ring_create(a, now, now, now + a->key_period, err);
        }
        if (rc != CLST_OK) {
            return rc;
        }
    } else if (cur == NULL) {
        if ((rc = ring_create(a, now, now, now + a->key_period, err)) != CLST_OK) {
            return rc;
        }
    }
    cur = (struct attest_key *)attest_keyring_current(&a->ring, now);
    if (cur == NULL) {
        return clst_err_set(err, CLST_E_INTERNAL, "no signing key is current after rotation");
    }
    if (cur->not_after - now <= prepublish(a)) {
        bool have_next = false;
        for (size_t i = 0; i < a->ring.count; i++) {
            have_next |= a->ring.keys[i].not_before >= cur->not_after;
        }
        if (!have_next && (rc = ring_create(a, now, cur->not_after,
                                            cur->not_after + a->key_period, err)) != CLST_OK) {
            return rc;
        }
    }
    /* Drop keys whose publication has ended. */
    size_t w = 0;
    for (size_t i = 0; i < a->ring.count; i++) {
        if (a->ring.keys[i].publish_until <= now) {
            clst_log_info("attest: signing key %s is no longer published", a->ring.keys[i].kid);
            key_cleanup(&a->ring.keys[i]);
            continue;
        }
        a->ring.keys[w++] = a->ring.keys[i];
    }
    a->ring.count = w;
    if ((rc = attest_store_keys_prune(a->store, now, err)) != CLST_OK ||
        (rc = rebuild_jwks(a, now, err)) != CLST_OK) {
        return rc;
    }
    next_event(a, now);
    return CLST_OK;
}
