/*
 * Secure key release inside the enclave (include/cloister/enclave.h, "key release"): the whole
 * exchange runs here, the host only relays public bytes (relay.c's messages over the host
 * services clst.attest and clst.release, host_relay.c):
 *
 *   1 an RSA-3072 key pair is generated inside; runtime data names its public JWK and a fresh
 *     nonce; evidence binds SHA-256(runtime data)
 *   2 clst.attest: evidence + runtime data -> attestation token
 *   3 clst.release: key name, version, token, enc, nonce -> release JWS (+ the host's CA)
 *   4 the JWS is verified here: x5c chain to the pinned CA (or, without a pin, to the CA the host
 *     gives, logged as such), RS256 with the leaf; its payload must name the key asked for, our
 *     nonce, our enc and our key pair
 *   5 key_hsm is unwrapped with the private key, which never left; RSA/EC material must match
 *     the public key the release states
 *
 * Also the envelope provider over a released key (local unwrap, as the vault's wrapkey would).
 *
 * Trust: the host is untrusted. It can refuse to relay (denial of service) but cannot learn the
 * key (wrapped to a key only we hold) and, with a pin, cannot substitute a key of its own: that
 * would need a JWS signed under the vault's CA. The time used for the certificate check is the
 * host's (untrusted): expiry checks are advisory; the pin and the signature are what bind.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/x509.h>

#include <cloister/crypto.h>
#include <cloister/envelope.h>

#include "enclave/enclave_int.h"

#define REL_BITS         3072
#define REL_KID          "clst-enclave-release"
#define REL_ENC          "RSA_AES_KEY_WRAP_256"
#define REL_ENC_ALG      CLST_WRAP_RSA_AES_KEY_WRAP_256
#define REL_NONCE_BYTES  16
#define REL_RUNTIME_MAX  4096
#define REL_X5C_MAX      10
#define REL_MATERIAL_MAX 16384
#define REL_HSM_SCHEMA   "1.0"

/* The pin set by clst_enclave_key_release_pin (one enclave per process: see rt.c). */
static struct {
    bool set;
    uint8_t sha256[CLST_ENCLAVE_RELEASE_PIN_SIZE];
} pin_state;

enum clst_status
clst_enclave_key_release_pin(const uint8_t ca_sha256[static CLST_ENCLAVE_RELEASE_PIN_SIZE])
{
    if (ca_sha256 == NULL) {
        return CLST_E_INVAL;
    }
    memcpy(pin_state.sha256, ca_sha256, sizeof(pin_state.sha256));
    pin_state.set = true;
    return CLST_OK;
}

/* ---- verifying a release (pure) -------------------------------------------------------------- */

static json_t *
b64url_json_doc(const char *p, size_t n, struct clst_buf *scratch)
{
    clst_buf_reset(scratch);
    if (clst_b64url_decode(p, n, scratch) != CLST_OK) {
        return NULL;
    }
    json_t *j =
        json_loadb((const char *)scratch->data, scratch->size, JSON_REJECT_DUPLICATES, NULL);
    if (j != NULL && !json_is_object(j)) {
        json_decref(j);
        return NULL;
    }
    return j;
}

static const char *
str_at(const json_t *obj, const char *member)
{
    const json_t *v = json_object_get(obj, member);
    /* Reject embedded NULs: a string must mean what strcmp sees. */
    if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v)) {
        return NULL;
    }
    return json_string_value(v);
}

/* Splits ".../keys/NAME/VERSION" (the last "/keys/" of the URL). */
static bool
kid_split(const char *kid, char *url, size_t url_cap, char name[static RELAY_NAME_MAX + 1],
          char *version, size_t version_cap)
{
    const char *k = NULL;
    for (const char *p = strstr(kid, "/keys/"); p != NULL; p = strstr(p + 1, "/keys/")) {
        k = p;
    }
    if (k == NULL) {
        return false;
    }
    const char *n = k + 6;
    const char *slash = strchr(n, '/');
    if (slash == NULL || !relay_key_name_ok(n, (size_t)(slash - n))) {
        return false;
    }
    const char *v = slash + 1;
    size_t vlen = strlen(v);
    if (vlen == 0 || vlen >= version_cap || (size_t)(k - kid) >= url_cap ||
        strchr(v, '/') != NULL) {
        return false;
    }
    for (size_t i = 0; i < vlen; i++) {
        char c = v[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) {
            return false;
        }
    }
    memcpy(url, kid, (size_t)(k - kid));
    url[k - kid] = '\0';
    memcpy(name, n, (size_t)(slash - n));
    name[slash - n] = '\0';
    memcpy(version, v, vlen + 1);
    return true;
}

/* The x5c chain: leaf, then the rest (untrusted), with the trust anchor per the pin. */
static enum clst_status
check_chain(const json_t *hdr, STACK_OF(X509) *roots, const uint8_t *pin, int64_t now,
            EVP_PKEY **out_key, struct clst_err *err)
{
    const json_t *x5c = json_object_get(hdr, "x5c");
    STACK_OF(X509) *certs = sk_X509_new_null(), *anchor = NULL;
    struct clst_buf der;
    X509 *leaf = NULL;
    enum clst_status st = CLST_E_VERIFY;
    size_t n = json_array_size(x5c);

    clst_buf_init(&der, 64 * 1024);
    if (certs == NULL) {
        st = clst_err_set(err, CLST_E_NOMEM, "out of memory");
        goto out;
    }
    if (!json_is_array(x5c) || n == 0 || n > REL_X5C_MAX) {
        clst_err_set(err, CLST_E_VERIFY,
                     "release signature invalid: the JWS carries no x5c "
                     "certificate chain (1..%d certificates)",
                     REL_X5C_MAX);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const char *b64 = json_string_value(json_array_get(x5c, i));
        X509 *cert = NULL;
        clst_buf_reset(&der);
        if (b64 == NULL || clst_b64_decode(b64, strlen(b64), &der) != CLST_OK ||
            clst_x509_from_der(der.data, der.size, &cert, NULL) != CLST_OK) {
            clst_err_set(err, CLST_E_VERIFY,
                         "release signature invalid: x5c[%zu] is not a certificate", i);
            goto out;
        }
        if (pin != NULL && i == n - 1) {
            uint8_t h[CLST_SHA256_SIZE];
            if (n < 2 || clst_sha256(der.data, der.size, h) != CLST_OK ||
                !clst_ct_equal(h, pin, CLST_SHA256_SIZE)) {
                X509_free(cert);
                clst_err_set(err, CLST_E_VERIFY,
                             "release signature invalid: the JWS's certificate chain does not "
                             "end in the pinned vault CA (SHA-256 of its DER)");
                goto out;
            }
            anchor = sk_X509_new_null();
            if (anchor == NULL || sk_X509_push(anchor, cert) <= 0) {
                X509_free(cert);
                st = clst_err_set(err, CLST_E_NOMEM, "out of memory");
                goto out;
            }
            continue;
        }
        if (sk_X509_push(certs, cert) <= 0) {
            X509_free(cert);
            st = clst_err_set(err, CLST_E_NOMEM, "out of memory");
            goto out;
        }
    }
    if (pin == NULL && roots == NULL) {
        clst_err_set(err, CLST_E_VERIFY, "release signature invalid: no trusted CA to check it");
        goto out;
    }
    leaf = sk_X509_shift(certs);
    st = clst_x509_verify_chain(leaf, certs, anchor != NULL ? anchor : roots, NULL, now, NULL, err);
    if (st != CLST_OK) {
        clst_err_prefix(err,
                        "release signature invalid: the signing certificate does not chain "
                        "to the %s vault CA",
                        pin != NULL ? "pinned" : "host's");
        st = CLST_E_VERIFY;
        if (err != NULL) {
            err->status = CLST_E_VERIFY;
        }
        goto out;
    }
    EVP_PKEY *k = X509_get0_pubkey(leaf);
    if (k == NULL || clst_pkey_kind(k) != CLST_KEY_RSA || EVP_PKEY_up_ref(k) != 1) {
        st = clst_err_set(err, CLST_E_VERIFY,
                          "release signature invalid: the signing certificate holds no RSA key");
        goto out;
    }
    *out_key = k;
    st = CLST_OK;
out:
    X509_free(leaf);
    if (certs != NULL) {
        sk_X509_pop_free(certs, X509_free);
    }
    if (anchor != NULL) {
        sk_X509_pop_free(anchor, X509_free);
    }
    clst_buf_cleanup(&der);
    return st;
}

enum clst_status
release_verify(const char *jws, size_t jws_size, STACK_OF(X509) *roots, const uint8_t *pin,
               int64_t now, const struct release_expect *want, struct release_opened *out,
               struct clst_err *err)
{
    struct clst_buf scratch, sig;
    json_t *hdr = NULL, *payload = NULL, *kh = NULL;
    EVP_PKEY *signer = NULL;
    enum clst_status st = CLST_E_VERIFY;
    const char *d1, *d2;

    clst_buf_init(&scratch, RELAY_TOKEN_MAX);
    clst_buf_init(&sig, 1024);
    memset(out, 0, sizeof(*out));
    clst_buf_init(&out->ct, RELAY_TOKEN_MAX);
    if (jws == NULL || want == NULL || !relay_token_ok((const uint8_t *)jws, jws_size) ||
        (d1 = memchr(jws, '.', jws_size)) == NULL ||
        (d2 = memchr(d1 + 1, '.', jws_size - (size_t)(d1 + 1 - jws))) == NULL ||
        memchr(d2 + 1, '.', jws_size - (size_t)(d2 + 1 - jws)) != NULL) {
        st = clst_err_set(err, CLST_E_MALFORMED,
                          "release signature invalid: the answer is not a compact JWS");
        goto out;
    }
    hdr = b64url_json_doc(jws, (size_t)(d1 - jws), &scratch);
    const char *alg = str_at(hdr, "alg");
    if (hdr == NULL || alg == NULL || strcmp(alg, "RS256") != 0 ||
        json_object_get(hdr, "crit") != NULL) {
        st = clst_err_set(err, CLST_E_VERIFY,
                          "release signature invalid: the JWS header is not {\"alg\":\"RS256\", "
                          "\"x5c\":[...]} (or carries crit)");
        goto out;
    }
    st = check_chain(hdr, roots, pin, now, &signer, err);
    if (st != CLST_OK) {
        goto out;
    }
    const char *s = d2 + 1;
    size_t s_size = jws_size - (size_t)(s - jws);
    if (clst_b64url_decode(s, s_size, &sig) != CLST_OK ||
        clst_rsa_pkcs1_verify(signer, CLST_HASH_SHA256, jws, (size_t)(d2 - jws), sig.data,
                              sig.size) != CLST_OK) {
        st = clst_err_set(err, CLST_E_VERIFY,
                          "release signature invalid: RS256 does not verify with the signing "
                          "certificate's key");
        goto out;
    }
    /* Verified: from here on the payload is the vault's word. */
    payload = b64url_json_doc(d1 + 1, (size_t)(d2 - d1 - 1), &scratch);
    const json_t *request = json_object_get(payload, "request");
    const json_t *key =
        json_object_get(json_object_get(json_object_get(payload, "response"), "key"), "key");
    const char *rkid = str_at(request, "kid"), *kid = str_at(key, "kid");
    const char *renc = str_at(request, "enc"), *rnonce = str_at(request, "nonce");
    const char *kty = str_at(key, "kty"), *khs = str_at(key, "key_hsm");
    char url[CLST_ENVELOPE_URL_MAX_SIZE + 1], name[RELAY_NAME_MAX + 1], version[65];
    if (payload == NULL || !json_is_object(key) || rkid == NULL || kid == NULL || kty == NULL ||
        khs == NULL || strlen(kty) >= sizeof(out->kty) || strlen(kid) >= sizeof(out->kid)) {
        st = clst_err_set(err, CLST_E_MALFORMED,
                          "release not for this request: the payload lacks request.kid or "
                          "response.key.key {kid, kty, key_hsm}");
        goto out;
    }
    if (strcmp(rkid, kid) != 0 ||
        !kid_split(kid, url, sizeof(url), name, version, sizeof(version)) ||
        strcasecmp(name, want->name) != 0 ||
        (want->version[0] != '\0' && strcmp(version, want->version) != 0)) {
        st = clst_err_set(err, CLST_E_VERIFY,
                          "release not for this request: it releases %.200s, not key '%s'%s%s", kid,
                          want->name, want->version[0] != '\0' ? " version " : "", want->version);
        goto out;
    }
    if (renc == NULL || strcmp(renc, want->enc) != 0 || rnonce == NULL ||
        strcmp(rnonce, want->nonce) != 0) {
        st = clst_err_set(err, CLST_E_VERIFY,
                          "release not for this request: its nonce or enc is not the one this "
                          "enclave sent (a replayed release?)");
        goto out;
    }
    kh = b64url_json_doc(khs, strlen(khs), &scratch);
    const json_t *khdr = json_object_get(kh, "header");
    const char *schema = str_at(kh, "schema_version"), *ct = str_at(kh, "ciphertext");
    const char *kalg = str_at(khdr, "alg"), *kenc = str_at(khdr, "enc");
    const char *kkid = str_at(khdr, "kid");
    if (kh == NULL || schema == NULL || strcmp(schema, REL_HSM_SCHEMA) != 0 || kalg == NULL ||
        strcmp(kalg, "dir") != 0 || kenc == NULL || strcmp(kenc, want->enc) != 0 || ct == NULL ||
        clst_b64url_decode(ct, strlen(ct), &out->ct) != CLST_OK) {
        st = clst_err_set(err, CLST_E_MALFORMED,
                          "unwrap failed: key_hsm is not {\"schema_version\":\"1.0\", "
                          "\"header\":{\"alg\":\"dir\",\"enc\":\"%s\"}, \"ciphertext\"}",
                          want->enc);
        goto out;
    }
    if (kkid == NULL || strcmp(kkid, want->tee_kid) != 0) {
        st = clst_err_set(err, CLST_E_VERIFY,
                          "release not for this request: key_hsm is wrapped to key '%.100s', not "
                          "to this enclave's key '%s'",
                          kkid != NULL ? kkid : "(none)", want->tee_kid);
        goto out;
    }
    memcpy(out->kty, kty, strlen(kty) + 1);
    memcpy(out->kid, kid, strlen(kid) + 1);
    out->key = json_incref((json_t *)key);
    st = CLST_OK;
out:
    if (st != CLST_OK) {
        clst_buf_cleanup(&out->ct);
    }
    EVP_PKEY_free(signer);
    json_decref(hdr);
    json_decref(payload);
    json_decref(kh);
    clst_buf_cleanup(&scratch);
    clst_buf_cleanup(&sig);
    return st;
}

/* RSA and EC material must be the private half of the public key the release states. */
static enum clst_status
check_material(const json_t *key, const char *kty, const uint8_t *m, size_t n, struct clst_err *err)
{
    if (n == 0) {
        return clst_err_set(err, CLST_E_VERIFY, "unwrap failed: the released key is empty");
    }
    if (strncmp(kty, "oct", 3) == 0) {
        return CLST_OK;
    }
    bool rsa = strcmp(kty, "RSA") == 0 || strcmp(kty, "RSA-HSM") == 0;
    bool ec = strcmp(kty, "EC") == 0 || strcmp(kty, "EC-HSM") == 0;
    if (!rsa && !ec) {
        return clst_err_set(err, CLST_E_MALFORMED, "unwrap failed: unknown key type '%s'", kty);
    }
    EVP_PKEY *priv = NULL, *stated = NULL;
    json_t *pub = json_deep_copy(key);
    enum clst_status st = CLST_E_NOMEM;
    if (pub == NULL || json_object_set_new(pub, "kty", json_string(rsa ? "RSA" : "EC")) != 0 ||
        json_object_del(pub, "key_hsm") != 0) {
        clst_err_set(err, st, "out of memory");
        goto out;
    }
    st = clst_pkey_from_der(m, n, &priv, err);
    if (st == CLST_OK) {
        st = clst_pkey_from_jwk(pub, &stated, err);
    }
    if (st != CLST_OK) {
        clst_err_prefix(err, "unwrap failed");
        goto out;
    }
    if (!clst_pkey_has_private(priv) || !clst_pkey_public_equal(priv, stated)) {
        st = clst_err_set(err, CLST_E_VERIFY,
                          "unwrap failed: the unwrapped key is not the private half of the "
                          "public key the release states");
    }
out:
    EVP_PKEY_free(priv);
    EVP_PKEY_free(stated);
    json_decref(pub);
    return st;
}

/* ---- the exchange (inside the enclave) ------------------------------------------------------- */

/*
 * Sends a relay request and decodes the reply. A service's refusal (an HTTP error) becomes
 * "<refused>: <the service's message>"; no answer at all (network, TLS, no relay) becomes
 * "<failed>: <why>".
 */
static enum clst_status
relay_call(const char *service, const struct clst_buf *req, uint8_t *rep, size_t rep_cap,
           const char *refused, const char *failed, struct relay_reply *out, struct clst_err *err)
{
    size_t n = 0;
    char msg[RELAY_MSG_MAX + 1];
    enum clst_status st =
        clst_enclave_host_call(service, req->data, req->size, rep, rep_cap, &n, err);
    if (st == CLST_E_NOTFOUND) {
        return clst_err_set(err, CLST_E_NOTFOUND,
                            "%s: the host offers no %s relay (cloister run --attest-url URL "
                            "--vault-url URL --ca PEM --token-file FILE)",
                            failed, service);
    }
    if (st != CLST_OK) {
        return clst_err_prefix(err, "%s", failed);
    }
    st = relay_reply_decode(rep, n, out, err);
    if (st != CLST_OK) {
        return clst_err_prefix(err, "%s: the host's answer", failed);
    }
    if (out->status != CLST_OK) {
        frame_msg_sanitize(out->body.p, out->body.size, msg, sizeof(msg));
        return clst_err_set(err, (enum clst_status)out->status, "%s: %s",
                            out->http != 0 ? refused : failed, msg);
    }
    return CLST_OK;
}

enum clst_status
clst_enclave_key_release(const char *name, const char *version,
                         struct clst_enclave_released_key *out, struct clst_err *err)
{
    struct clst_enclave_keypair *kp = NULL;
    uint8_t nonce_raw[REL_NONCE_BYTES], *rep = NULL, *ev = NULL;
    char nonce[2 * REL_NONCE_BYTES + 1], token[RELAY_TOKEN_MAX + 1];
    uint8_t rd[REL_RUNTIME_MAX];
    size_t rd_size = 0, ev_size = 0;
    struct clst_buf req, mat;
    struct relay_reply r;
    struct release_opened opened;
    STACK_OF(X509) *roots = NULL;
    struct clst_secret *material = NULL;
    enum clst_status st = CLST_E_INVAL;

    memset(&opened, 0, sizeof(opened));
    clst_buf_init(&req, RELAY_REQUEST_MAX);
    clst_buf_init_secret(&mat, REL_MATERIAL_MAX);
    if (version == NULL) {
        version = "";
    }
    if (name == NULL || out == NULL || !relay_key_name_ok(name, strlen(name)) ||
        !relay_version_ok(version, strlen(version))) {
        return clst_err_set(err, CLST_E_INVAL,
                            "key release: the key name must be 1..127 of 0-9 a-z A-Z -, the "
                            "version empty or 32 lower-case hex");
    }
    rep = malloc(RELAY_REPLY_MAX);
    ev = malloc(CLST_ENCLAVE_EVIDENCE_MAX_SIZE);
    if (rep == NULL || ev == NULL) {
        st = clst_err_set(err, CLST_E_NOMEM, "key release: out of memory");
        goto out;
    }
    /* 1: the key pair, runtime data with a fresh nonce, evidence binding them. */
    st = clst_enclave_keypair_new(REL_BITS, REL_KID, &kp, err);
    if (st == CLST_OK) {
        st = clst_random(nonce_raw, sizeof(nonce_raw));
        if (st != CLST_OK ||
            clst_hex_to_str(nonce_raw, sizeof(nonce_raw), nonce, sizeof(nonce)) != CLST_OK) {
            st = clst_err_set(err, CLST_E_CRYPTO, "no randomness for the nonce");
        }
    }
    if (st == CLST_OK) {
        st = clst_enclave_keypair_runtime_data(kp, nonce, rd, sizeof(rd), &rd_size, err);
    }
    if (st == CLST_OK) {
        st = clst_enclave_evidence_bind(rd, rd_size, ev, CLST_ENCLAVE_EVIDENCE_MAX_SIZE, &ev_size,
                                        err);
    }
    if (st != CLST_OK) {
        clst_err_prefix(err, "key release: preparing the evidence");
        goto out;
    }
    /* 2: attestation, relayed. */
    struct relay_field af[2] = {{ev, ev_size}, {rd, rd_size}};
    st = relay_encode(RELAY_ATTEST, af, 2, &req);
    if (st != CLST_OK) {
        st = clst_err_set(err, st, "key release: the attestation request does not fit");
        goto out;
    }
    st = relay_call(SVC_ATTEST, &req, rep, RELAY_REPLY_MAX, "attestation refused",
                    "attestation failed", &r, err);
    if (st != CLST_OK) {
        goto out;
    }
    if (!relay_token_ok(r.body.p, r.body.size)) {
        st = clst_err_set(err, CLST_E_MALFORMED, "attestation refused: the token is not a JWT");
        goto out;
    }
    memcpy(token, r.body.p, r.body.size);
    token[r.body.size] = '\0';
    /* 3: release, relayed. */
    clst_buf_reset(&req);
    struct relay_field rf[5] = {{(const uint8_t *)name, strlen(name)},
                                {(const uint8_t *)version, strlen(version)},
                                {(const uint8_t *)token, strlen(token)},
                                {(const uint8_t *)REL_ENC, strlen(REL_ENC)},
                                {(const uint8_t *)nonce, strlen(nonce)}};
    st = relay_encode(RELAY_RELEASE, rf, 5, &req);
    if (st != CLST_OK) {
        st = clst_err_set(err, st, "key release: the release request does not fit");
        goto out;
    }
    st = relay_call(SVC_RELEASE, &req, rep, RELAY_REPLY_MAX, "release denied", "release failed", &r,
                    err);
    if (st != CLST_OK) {
        goto out;
    }
    /* 4: verify the JWS here. */
    const uint8_t *pin = pin_state.set ? pin_state.sha256 : NULL;
    if (pin == NULL) {
        if (r.ca.size == 0 ||
            clst_x509_stack_from_pem(r.ca.p, r.ca.size, &roots, NULL) != CLST_OK) {
            st = clst_err_set(err, CLST_E_VERIFY,
                              "release signature invalid: this enclave has no pin "
                              "(clst_enclave_key_release_pin) and the host gave no usable CA "
                              "(cloister run --ca)");
            goto out;
        }
        clst_enclave_log(CLST_LOG_WARN,
                         "key release: no vault CA pin in this enclave; trusting the CA the host "
                         "gave, so the host could substitute a key of its own");
    }
    int64_t now = 0;
    uint32_t nsec = 0;
    if (clst_enclave_time(&now, &nsec) != CLST_OK) {
        st = clst_err_set(err, CLST_E_IO, "key release: the host gave no time");
        goto out;
    }
    struct release_expect want = {name, version, nonce, REL_ENC, REL_KID};
    st = release_verify((const char *)r.body.p, r.body.size, roots, pin, now, &want, &opened, err);
    if (st != CLST_OK) {
        goto out;
    }
    /* 5: unwrap inside. */
    st = clst_buf_reserve(&mat, REL_MATERIAL_MAX);
    if (st == CLST_OK) {
        st = clst_enclave_keypair_unwrap(kp, REL_ENC_ALG, opened.ct.data, opened.ct.size, mat.data,
                                         REL_MATERIAL_MAX, &mat.size, err);
        if (st != CLST_OK) {
            clst_err_prefix(err, "unwrap failed");
        }
    }
    if (st == CLST_OK) {
        st = check_material(opened.key, opened.kty, mat.data, mat.size, err);
    }
    if (st == CLST_OK && clst_secret_from(mat.data, mat.size, &material) != CLST_OK) {
        st = clst_err_set(err, CLST_E_NOMEM, "key release: out of memory");
    }
    if (st != CLST_OK) {
        goto out;
    }
    memset(out, 0, sizeof(*out));
    memcpy(out->kty, opened.kty, sizeof(out->kty));
    memcpy(out->kid, opened.kid, sizeof(out->kid));
    out->material = material;
    material = NULL;
    st = CLST_OK;
out:
    clst_enclave_keypair_free(kp);
    clst_secret_free(material);
    clst_buf_cleanup(&mat);
    clst_buf_cleanup(&req);
    clst_buf_cleanup(&opened.ct);
    json_decref(opened.key);
    if (roots != NULL) {
        sk_X509_pop_free(roots, X509_free);
    }
    OPENSSL_cleanse(nonce_raw, sizeof(nonce_raw));
    free(rep);
    free(ev);
    return st;
}

void
clst_enclave_released_key_cleanup(struct clst_enclave_released_key *k)
{
    if (k == NULL) {
        return;
    }
    clst_secret_free(k->material);
    memset(k, 0, sizeof(*k));
}

/* ---- the envelope provider over a released key ---------------------------------------------- */

struct rk_provider {
    EVP_PKEY *rsa;   /* RSA keys */
    uint8_t kek[32]; /* oct keys */
    size_t kek_size;
    char alg[CLST_ENVELOPE_ALG_MAX_SIZE + 1]; /* what wrap writes */
    char url[CLST_ENVELOPE_URL_MAX_SIZE + 1];
    char name[RELAY_NAME_MAX + 1];
    char version[CLST_ENVELOPE_VERSION_MAX_SIZE + 1];
};

static void
rk_free(void *ctx)
{
    struct rk_provider *p = ctx;
    if (p != NULL) {
        EVP_PKEY_free(p->rsa);
        OPENSSL_cleanse(p, sizeof(*p));
        free(p);
    }
}

static enum clst_status
rk_wrap(void *ctx, const uint8_t key[CLST_ENVELOPE_KEY_SIZE], struct clst_envelope_keyref *out_ref,
        struct clst_envelope_wrapped *out_wrapped, struct clst_err *err)
{
    struct rk_provider *p = ctx;
    struct clst_buf w;
    size_t n = 0;
    enum clst_status st;

    clst_buf_init(&w, CLST_ENVELOPE_WRAPPED_MAX_SIZE);
    memset(out_wrapped, 0, sizeof(*out_wrapped));
    if (p->rsa != NULL) {
        st = clst_rsa_oaep_encrypt(p->rsa, CLST_HASH_SHA256, key, CLST_ENVELOPE_KEY_SIZE, &w);
        if (st == CLST_OK) {
            memcpy(out_wrapped->data, w.data, w.size);
            n = w.size;
        }
    } else {
        st = clst_aes_kw_wrap(p->kek, p->kek_size, key, CLST_ENVELOPE_KEY_SIZE, out_wrapped->data,
                              sizeof(out_wrapped->data), &n);
    }
    clst_buf_cleanup(&w);
    if (st != CLST_OK) {
        return clst_err_set(err, st, "wrapping the file key with released key '%s' failed",
                            p->name);
    }
    out_wrapped->size = n;
    snprintf(out_wrapped->alg, sizeof(out_wrapped->alg), "%s", p->alg);
    memset(out_ref, 0, sizeof(*out_ref));
    out_ref->kind = CLST_ENVELOPE_REF_VAULT;
    snprintf(out_ref->vault_url, sizeof(out_ref->vault_url), "%s", p->url);
    snprintf(out_ref->key_name, sizeof(out_ref->key_name), "%s", p->name);
    snprintf(out_ref->key_version, sizeof(out_ref->key_version), "%s", p->version);
    return CLST_OK;
}

static enum clst_status
rk_unwrap(void *ctx, const struct clst_envelope_keyref *ref,
          const struct clst_envelope_wrapped *wrapped, uint8_t out_key[CLST_ENVELOPE_KEY_SIZE],
          struct clst_err *err)
{
    struct rk_provider *p = ctx;
    uint8_t key[64];
    size_t n = 0;
    enum clst_status st;

    if (ref->kind != CLST_ENVELOPE_REF_VAULT) {
        return clst_err_set(err, CLST_E_NOTFOUND,
                            "the file's key is not a vault key; this enclave holds vault key "
                            "'%s' version %s",
                            p->name, p->version);
    }
    if (strcasecmp(ref->key_name, p->name) != 0 || strcmp(ref->key_version, p->version) != 0) {
        return clst_err_set(err, CLST_E_NOTFOUND,
                            "the file needs vault key '%s' version %s; this enclave holds '%s' "
                            "version %s",
                            ref->key_name, ref->key_version, p->name, p->version);
    }
    if (wrapped->size == 0 || wrapped->size > sizeof(wrapped->data)) {
        return clst_err_set(err, CLST_E_VERIFY, "the file's wrapped key is empty or too long");
    }
    if (p->rsa != NULL) {
        enum clst_hash h;
        if (strcmp(wrapped->alg, "RSA-OAEP-256") == 0) {
            h = CLST_HASH_SHA256;
        } else if (strcmp(wrapped->alg, "RSA-OAEP") == 0) {
            h = CLST_HASH_SHA1;
        } else {
            return clst_err_set(err, CLST_E_VERIFY,
                                "the file's key is wrapped with '%s'; an RSA key unwraps "
                                "RSA-OAEP-256 or RSA-OAEP here (not RSA1_5)",
                                wrapped->alg);
        }
        struct clst_buf b;
        clst_buf_init_secret(&b, 64);
        st = clst_rsa_oaep_decrypt(p->rsa, h, wrapped->data, wrapped->size, &b);
        if (st == CLST_OK && b.size <= sizeof(key)) {
            memcpy(key, b.data, b.size);
            n = b.size;
        } else if (st == CLST_OK) {
            st = CLST_E_VERIFY;
        }
        clst_buf_cleanup(&b);
    } else {
        if (strcmp(wrapped->alg, p->alg) != 0) {
            return clst_err_set(err, CLST_E_VERIFY,
                                "the file's key is wrapped with '%s'; this %zu-bit key unwraps "
                                "%s",
                                wrapped->alg, 8 * p->kek_size, p->alg);
        }
        st = clst_aes_kw_unwrap(p->kek, p->kek_size, wrapped->data, wrapped->size, key, sizeof(key),
                                &n);
    }
    if (st == CLST_OK && n != CLST_ENVELOPE_KEY_SIZE) {
        st = CLST_E_VERIFY;
    }
    if (st == CLST_OK) {
        memcpy(out_key, key, CLST_ENVELOPE_KEY_SIZE);
    } else {
        clst_err_set(err, CLST_E_VERIFY,
                     "vault key '%s' version %s did not unwrap the file key (altered header, or "
                     "wrapped to another key)",
                     p->name, p->version);
        st = CLST_E_VERIFY;
    }
    OPENSSL_cleanse(key, sizeof(key));
    return st;
}

static const struct clst_envelope_provider_ops RK_OPS = {
    .name = "released vault key",
    .wrap = rk_wrap,
    .unwrap = rk_unwrap,
    .free = rk_free,
};

enum clst_status
clst_enclave_released_key_provider(const struct clst_enclave_released_key *k,
                                   struct clst_envelope_provider **out, struct clst_err *err)
{
    struct rk_provider *p = NULL;
    enum clst_status st = CLST_E_INVAL;

    if (k == NULL || out == NULL || k->material == NULL || k->material->size == 0 ||
        strnlen(k->kid, sizeof(k->kid)) == sizeof(k->kid) ||
        strnlen(k->kty, sizeof(k->kty)) == sizeof(k->kty)) {
        return clst_err_set(err, CLST_E_INVAL, "released-key provider: no released key");
    }
    p = calloc(1, sizeof(*p));
    if (p == NULL) {
        return clst_err_set(err, CLST_E_NOMEM, "released-key provider: out of memory");
    }
    if (!kid_split(k->kid, p->url, sizeof(p->url), p->name, p->version, sizeof(p->version))) {
        st = clst_err_set(err, CLST_E_INVAL,
                          "released-key provider: the kid '%.200s' is not .../keys/NAME/VERSION",
                          k->kid);
        goto out;
    }
    if (strcmp(k->kty, "oct") == 0 || strcmp(k->kty, "oct-HSM") == 0) {
        size_t n = k->material->size;
        if (n != 16 && n != 24 && n != 32) {
            st = clst_err_set(err, CLST_E_INVAL,
                              "released-key provider: an oct key of %zu bytes cannot wrap (AES "
                              "key wrap needs 16, 24 or 32)",
                              n);
            goto out;
        }
        memcpy(p->kek, k->material->ptr, n);
        p->kek_size = n;
        snprintf(p->alg, sizeof(p->alg), "A%zuKW", 8 * n);
    } else if (strcmp(k->kty, "RSA") == 0 || strcmp(k->kty, "RSA-HSM") == 0) {
        st = clst_pkey_from_der(k->material->ptr, k->material->size, &p->rsa, err);
        if (st != CLST_OK || clst_pkey_kind(p->rsa) != CLST_KEY_RSA) {
            st = clst_err_set(err, CLST_E_INVAL,
                              "released-key provider: the RSA material is not a PKCS#8 RSA key");
            goto out;
        }
        snprintf(p->alg, sizeof(p->alg), "%s", CLST_ENVELOPE_ALG_RSA_OAEP_256);
    } else {
        st = clst_err_set(err, CLST_E_INVAL,
                          "released-key provider: a %s key cannot wrap file keys: use an RSA or "
                          "oct (AES) key",
                          k->kty);
        goto out;
    }
    st = clst_envelope_provider_new(&RK_OPS, p, out);
    if (st != CLST_OK) {
        st = clst_err_set(err, st, "released-key provider: out of memory");
        goto out;
    }
    p = NULL;
out:
    rk_free(p);
    return st;
}
