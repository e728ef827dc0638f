/*
 * The pure parts of in-enclave key release (src/enclave/rt_release.c): release_verify, the check
 * of the vault's release JWS (x5c chain to the pinned CA or to the host's roots, RS256, the
 * payload naming our key, nonce, enc and key pair, key_hsm's shape), fed with releases built
 * here, then forged every way; and the envelope provider over a released key (oct and RSA,
 * round trips through the envelope, wrong key name / version / algorithm, keys that cannot wrap).
 * The exchange itself needs a running enclave and a server: tests/integration/enclave_release.sh.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/x509v3.h>

#include <cloister/crypto.h>
#include <cloister/envelope.h>

#include "enclave/enclave_int.h"

#define T0      1780000000 /* certificates valid [T0 - 1 day, T0 + 1 year] */
#define DAY     86400
#define KID     "https://vault.test:8443/keys/dbkey/0123456789abcdef0123456789abcdef"
#define ENC     "RSA_AES_KEY_WRAP_256"
#define NONCE   "00112233445566778899aabbccddeeff"
#define TEE_KID "clst-enclave-release"

struct pki {
    EVP_PKEY *ca_key, *leaf_key, *other_ca_key, *other_leaf_key;
    X509 *ca, *leaf, *other_ca, *other_leaf;
    uint8_t pin[32], other_pin[32];
};
static struct pki P;

static void
add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    assert_non_null(ext);
    assert_int_equal(X509_add_ext(cert, ext, -1), 1);
    X509_EXTENSION_free(ext);
}

static X509 *
make_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key, bool ca)
{
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    assert_non_null(x);
    assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), ca ? 1 : 2), 1);
    assert_int_equal(
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0),
        1);
    assert_int_equal(X509_set_subject_name(x, name), 1);
    assert_int_equal(X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer) : name),
                     1);
    assert_non_null(ASN1_TIME_set(X509_getm_notBefore(x), (time_t)(T0 - DAY)));
    assert_non_null(ASN1_TIME_set(X509_getm_notAfter(x), (time_t)(T0 + 365 * DAY)));
    assert_int_equal(X509_set_pubkey(x, key), 1);
    X509 *iss = issuer != NULL ? issuer : x;
    add_ext(x, iss, NID_basic_constraints, ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
    add_ext(x, iss, NID_key_usage,
            ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature");
    assert_true(X509_sign(x, issuer_key, EVP_sha256()) > 0);
    X509_NAME_free(name);
    return x;
}

static void
cert_sha256(X509 *x, uint8_t out[32])
{
    unsigned char *der = NULL;
    int n = i2d_X509(x, &der);
    assert_true(n > 0);
    assert_int_equal(clst_sha256(der, (size_t)n, out), CLST_OK);
    OPENSSL_free(der);
}

static int
setup(void **state)
{
    (void)state;
    if (clst_ec_generate(CLST_CURVE_P256, &P.ca_key) != CLST_OK ||
        clst_ec_generate(CLST_CURVE_P256, &P.other_ca_key) != CLST_OK ||
        clst_rsa_generate(2048, &P.leaf_key) != CLST_OK ||
        clst_rsa_generate(2048, &P.other_leaf_key) != CLST_OK) {
        return -1;
    }
    P.ca = make_cert("vault CA", P.ca_key, NULL, P.ca_key, true);
    P.leaf = make_cert("release signing", P.leaf_key, P.ca, P.ca_key, false);
    P.other_ca = make_cert("vault CA", P.other_ca_key, NULL, P.other_ca_key, true);
    P.other_leaf =
        make_cert("release signing", P.other_leaf_key, P.other_ca, P.other_ca_key, false);
    cert_sha256(P.ca, P.pin);
    cert_sha256(P.other_ca, P.other_pin);
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    X509_free(P.ca);
    X509_free(P.leaf);
    X509_free(P.other_ca);
    X509_free(P.other_leaf);
    EVP_PKEY_free(P.ca_key);
    EVP_PKEY_free(P.leaf_key);
    EVP_PKEY_free(P.other_ca_key);
    EVP_PKEY_free(P.other_leaf_key);
    return 0;
}

/* ---- building releases ------------------------------------------------------------------------
 */

static char *
b64url_str(const void *p, size_t n)
{
    struct clst_buf b;
    clst_buf_init(&b, 4 * n + 16);
    assert_int_equal(clst_b64url_encode(p, n, &b), CLST_OK);
    assert_int_equal(clst_buf_terminate(&b), CLST_OK);
    size_t size;
    return (char *)clst_buf_steal(&b, &size);
}

static char *
b64_cert(X509 *x)
{
    unsigned char *der = NULL;
    int n = i2d_X509(x, &der);
    struct clst_buf b;
    assert_true(n > 0);
    clst_buf_init(&b, 8192);
    assert_int_equal(clst_b64_encode(der, (size_t)n, &b), CLST_OK);
    assert_int_equal(clst_buf_terminate(&b), CLST_OK);
    OPENSSL_free(der);
    size_t size;
    return (char *)clst_buf_steal(&b, &size);
}

struct rel_spec {
    const char *alg; /* header alg */
    bool crit;
    X509 *leaf, *ca;    /* x5c = [leaf, ca]; ca NULL: [leaf] only; leaf NULL: no x5c */
    EVP_PKEY *sign_key; /* signs the JWS */
    const char *req_kid, *key_kid, *enc, *nonce, *kty;
    const char *hsm_schema, *hsm_alg, *hsm_enc, *hsm_kid;
    bool hsm_garbage;
};

static struct rel_spec
good(void)
{
    struct rel_spec s = {"RS256", false, P.leaf, P.ca,  P.leaf_key, KID,     KID,  ENC,
                         NONCE,   "oct", "1.0",  "dir", ENC,        TEE_KID, false};
    return s;
}

/* A compact JWS as the vault makes it (src/vault/release.c), from the spec. */
static char *
build(const struct rel_spec *s)
{
    char hsm[512], hdr[16384], payload[4096];
    char *ct = b64url_str("\x01\x02\x03wrapped-key-bytes", 20);
    snprintf(hsm, sizeof(hsm),
             "{\"schema_version\":\"%s\",\"header\":{\"kid\":\"%s\",\"alg\":\"%s\",\"enc\":\"%s\"},"
             "\"ciphertext\":\"%s\"}",
             s->hsm_schema, s->hsm_kid, s->hsm_alg, s->hsm_enc, ct);
    char *hsm64 = s->hsm_garbage ? b64url_str("not json", 8) : b64url_str(hsm, strlen(hsm));
    snprintf(
        payload, sizeof(payload),
        "{\"request\":{\"api-version\":\"7.6\",\"enc\":\"%s\",\"kid\":\"%s\",\"nonce\":\"%s\"},"
        "\"response\":{\"key\":{\"key\":{\"kid\":\"%s\",\"kty\":\"%s\",\"key_ops\":[\"encrypt\"],"
        "\"key_hsm\":\"%s\"},\"attributes\":{\"exportable\":true}}}}",
        s->enc, s->req_kid, s->nonce, s->key_kid, s->kty, hsm64);
    char *leaf = s->leaf != NULL ? b64_cert(s->leaf) : NULL;
    char *ca = s->ca != NULL ? b64_cert(s->ca) : NULL;
    if (leaf == NULL) {
        snprintf(hdr, sizeof(hdr), "{\"alg\":\"%s\"%s}", s->alg,
                 s->crit ? ",\"crit\":[\"b64\"]" : "");
    } else if (ca == NULL) {
        snprintf(hdr, sizeof(hdr), "{\"alg\":\"%s\",\"x5c\":[\"%s\"]%s}", s->alg, leaf,
                 s->crit ? ",\"crit\":[\"b64\"]" : "");
    } else {
        snprintf(hdr, sizeof(hdr), "{\"alg\":\"%s\",\"x5c\":[\"%s\",\"%s\"]%s}", s->alg, leaf, ca,
                 s->crit ? ",\"crit\":[\"b64\"]" : "");
    }
    char *h64 = b64url_str(hdr, strlen(hdr)), *p64 = b64url_str(payload, strlen(payload));
    struct clst_buf msg, sig;
    clst_buf_init(&msg, 65536);
    clst_buf_init(&sig, 1024);
    assert_int_equal(clst_buf_appendf(&msg, "%s.%s", h64, p64), CLST_OK);
    assert_int_equal(clst_rsa_pkcs1_sign(s->sign_key, CLST_HASH_SHA256, msg.data, msg.size, &sig),
                     CLST_OK);
    char *s64 = b64url_str(sig.data, sig.size);
    assert_int_equal(clst_buf_appendf(&msg, ".%s", s64), CLST_OK);
    assert_int_equal(clst_buf_terminate(&msg), CLST_OK);
    size_t size;
    char *out = (char *)clst_buf_steal(&msg, &size);
    free(ct);
    free(hsm64);
    free(leaf);
    free(ca);
    free(h64);
    free(p64);
    free(s64);
    clst_buf_cleanup(&sig);
    return out;
}

static const struct release_expect WANT = {"dbkey", "", NONCE, ENC, TEE_KID};

static enum clst_status
verify(const char *jws, STACK_OF(X509) *roots, const uint8_t *pin, int64_t now,
       const struct release_expect *want, struct clst_err *err, struct release_opened *out)
{
    struct release_opened o;
    enum clst_status st = release_verify(jws, strlen(jws), roots, pin, now, want, &o, err);
    if (out != NULL && st == CLST_OK) {
        *out = o;
    } else if (st == CLST_OK) {
        clst_buf_cleanup(&o.ct);
        json_decref(o.key);
    }
    return st;
}

static void
expect_fail(const struct rel_spec *s, const uint8_t *pin, const struct release_expect *want,
            enum clst_status status, const char *needle)
{
    struct clst_err err = {0};
    char *jws = build(s);
    enum clst_status st = verify(jws, NULL, pin, T0, want, &err, NULL);
    if (st != status || strstr(err.msg, needle) == NULL) {
        fail_msg("got %d '%s', want %d with '%s'", (int)st, err.msg, (int)status, needle);
    }
    free(jws);
}

/* ---- release_verify -----------------------------------------------------------------------------
 */

static void
test_verify_pinned(void **state)
{
    (void)state;
    struct rel_spec s = good();
    struct clst_err err = {0};
    struct release_opened o;
    char *jws = build(&s);
    assert_int_equal(verify(jws, NULL, P.pin, T0, &WANT, &err, &o), CLST_OK);
    assert_string_equal(o.kty, "oct");
    assert_string_equal(o.kid, KID);
    assert_int_equal(o.ct.size, 20);
    assert_memory_equal(o.ct.data, "\x01\x02\x03wrapped-key-bytes", 20);
    assert_string_equal(json_string_value(json_object_get(o.key, "kid")), KID);
    clst_buf_cleanup(&o.ct);
    json_decref(o.key);
    /* The version, when asked for, must match; the name is case-insensitive (vault names). */
    struct release_expect w = WANT;
    w.version = "0123456789abcdef0123456789abcdef";
    w.name = "DBKEY";
    assert_int_equal(verify(jws, NULL, P.pin, T0, &w, &err, NULL), CLST_OK);
    free(jws);
}

static void
test_verify_roots(void **state)
{
    (void)state;
    struct rel_spec s = good();
    struct clst_err err = {0};
    STACK_OF(X509) *roots = sk_X509_new_null(), *others = sk_X509_new_null();
    assert_true(sk_X509_push(roots, X509_dup(P.ca)) > 0);
    assert_true(sk_X509_push(others, X509_dup(P.other_ca)) > 0);
    char *jws = build(&s);
    assert_int_equal(verify(jws, roots, NULL, T0, &WANT, &err, NULL), CLST_OK);
    /* The host's CA is not the one that signed: refused. */
    assert_int_equal(verify(jws, others, NULL, T0, &WANT, &err, NULL), CLST_E_VERIFY);
    assert_non_null(strstr(err.msg, "host's vault CA"));
    /* Neither a pin nor roots. */
    assert_int_equal(verify(jws, NULL, NULL, T0, &WANT, &err, NULL), CLST_E_VERIFY);
    /* Outside the certificates' validity (the host's clock). */
    assert_int_equal(verify(jws, roots, NULL, T0 + 400 * (int64_t)DAY, &WANT, &err, NULL),
                     CLST_E_VERIFY);
    free(jws);
    sk_X509_pop_free(roots, X509_free);
    sk_X509_pop_free(others, X509_free);
}

static void
test_verify_signature(void **state)
{
    (void)state;
    struct rel_spec s = good();
    struct clst_err err = {0};
    /* Another CA's chain, with our pin. */
    s.leaf = P.other_leaf;
    s.ca = P.other_ca;
    s.sign_key = P.other_leaf_key;
    expect_fail(&s, P.pin, &WANT, CLST_E_VERIFY, "pinned vault CA");
    /* Our pin but the x5c of another CA, or no CA in x5c. */
    s = good();
    s.ca = NULL;
    expect_fail(&s, P.pin, &WANT, CLST_E_VERIFY, "pinned vault CA");
    s = good();
    s.leaf = NULL;
    s.ca = NULL;
    expect_fail(&s, P.pin, &WANT, CLST_E_VERIFY, "x5c");
    /* Signed by a key other than the certificate's (e.g. the host's). */
    s = good();
    s.sign_key = P.other_leaf_key;
    expect_fail(&s, P.pin, &WANT, CLST_E_VERIFY, "RS256 does not verify");
    /* alg none / HS256 / PS256, crit. */
    s = good();
    s.alg = "none";
    expect_fail(&s, P.pin, &WANT, CLST_E_VERIFY, "RS256");
    s.alg = "HS256";
    expect_fail(&s, P.pin, &WANT, CLST_E_VERIFY, "RS256");
    s = good();
    s.crit = true;
    expect_fail(&s, P.pin, &WANT, CLST_E_VERIFY, "crit");
    /* Every character of the signature segment changed in turn fails (a sample of positions). */
    s = good();
    char *jws = build(&s);
    size_t n = strlen(jws);
    const char *last = strrchr(jws, '.');
    for (size_t i = (size_t)(last - jws) + 1; i < n; i += 17) {
        char c = jws[i];
        jws[i] = c == 'A' ? 'B' : 'A';
        assert_int_not_equal(verify(jws, NULL, P.pin, T0, &WANT, &err, NULL), CLST_OK);
        jws[i] = c;
    }
    /* A payload bit flipped (in its base64url). */
    const char *first = strchr(jws, '.');
    size_t mid = (size_t)(first - jws) + 10;
    jws[mid] = jws[mid] == 'A' ? 'B' : 'A';
    assert_int_equal(verify(jws, NULL, P.pin, T0, &WANT, &err, NULL), CLST_E_VERIFY);
    /* Not a compact JWS at all. */
    assert_int_equal(
        release_verify("a.b", 3, NULL, P.pin, T0, &WANT, &(struct release_opened){0}, &err),
        CLST_E_MALFORMED);
    assert_int_equal(
        release_verify("a.b.c.d", 7, NULL, P.pin, T0, &WANT, &(struct release_opened){0}, &err),
        CLST_E_MALFORMED);
    free(jws);
}

static void
test_verify_payload(void **state)
{
    (void)state;
    struct rel_spec s = good();
    struct release_expect w = WANT;
    /* Another key than the one asked for; another version; request and response disagree. */
    w.name = "otherkey";
    expect_fail(&s, P.pin, &w, CLST_E_VERIFY, "not key 'otherkey'");
    w = WANT;
    w.version = "ffffffffffffffffffffffffffffffff";
    expect_fail(&s, P.pin, &w, CLST_E_VERIFY, "release not for this request");
    s.key_kid = "https://vault.test:8443/keys/otherkey/0123456789abcdef0123456789abcdef";
    expect_fail(&s, P.pin, &WANT, CLST_E_VERIFY, "release not for this request");
    s = good();
    s.req_kid = s.key_kid = "https://vault.test:8443/secrets/dbkey";
    expect_fail(&s, P.pin, &WANT, CLST_E_VERIFY, "release not for this request");
    /* A replay: another nonce or enc. */
    s = good();
    s.nonce = "ffeeddccbbaa99887766554433221100";
    expect_fail(&s, P.pin, &WANT, CLST_E_VERIFY, "nonce");
    s = good();
    s.enc = "CKM_RSA_AES_KEY_WRAP";
    expect_fail(&s, P.pin, &WANT, CLST_E_VERIFY, "nonce or enc");
    /* key_hsm wrapped to another key; its shape. */
    s = good();
    s.hsm_kid = "someone-else";
    expect_fail(&s, P.pin, &WANT, CLST_E_VERIFY, "someone-else");
    s = good();
    s.hsm_alg = "RSA-OAEP";
    expect_fail(&s, P.pin, &WANT, CLST_E_MALFORMED, "key_hsm");
    s = good();
    s.hsm_enc = "CKM_RSA_AES_KEY_WRAP";
    expect_fail(&s, P.pin, &WANT, CLST_E_MALFORMED, "key_hsm");
    s = good();
    s.hsm_schema = "2.0";
    expect_fail(&s, P.pin, &WANT, CLST_E_MALFORMED, "key_hsm");
    s = good();
    s.hsm_garbage = true;
    expect_fail(&s, P.pin, &WANT, CLST_E_MALFORMED, "key_hsm");
    /* A kty too long for the struct. */
    s = good();
    s.kty = "oct-HSM-with-a-long-name";
    expect_fail(&s, P.pin, &WANT, CLST_E_MALFORMED, "lacks");
}

/* ---- the provider ------------------------------------------------------------------------------
 */

static void
released(struct clst_enclave_released_key *k, const char *kty, const void *material, size_t n,
         const char *kid)
{
    memset(k, 0, sizeof(*k));
    snprintf(k->kty, sizeof(k->kty), "%s", kty);
    snprintf(k->kid, sizeof(k->kid), "%s", kid);
    assert_int_equal(clst_secret_from(material, n, &k->material), CLST_OK);
}

static void
roundtrip(struct clst_envelope_provider *p)
{
    static const uint8_t msg[] = "card transactions of 2026, aggregated inside the enclave";
    uint8_t ct[CLST_ENVELOPE_HEADER_MAX_SIZE + 256], pt[sizeof(msg)];
    size_t ct_size = 0, pt_size = 0;
    struct clst_err err = {0};
    assert_int_equal(
        clst_envelope_encrypt_mem(msg, sizeof(msg), ct, sizeof(ct), &ct_size, p, 1, &err), CLST_OK);
    struct clst_envelope_header h;
    assert_int_equal(clst_envelope_header_parse(ct, ct_size, &h, &err), CLST_OK);
    assert_int_equal(h.ref.kind, CLST_ENVELOPE_REF_VAULT);
    assert_string_equal(h.ref.key_name, "dbkey");
    assert_string_equal(h.ref.key_version, "0123456789abcdef0123456789abcdef");
    assert_string_equal(h.ref.vault_url, "https://vault.test:8443");
    assert_int_equal(
        clst_envelope_decrypt_mem(ct, ct_size, pt, sizeof(pt), &pt_size, &p, 1, 1, &err), CLST_OK);
    assert_int_equal(pt_size, sizeof(msg));
    assert_memory_equal(pt, msg, sizeof(msg));
}

static void
test_provider_oct(void **state)
{
    (void)state;
    uint8_t aes[32], file_key[32], wrapped[40];
    size_t wn = 0;
    struct clst_enclave_released_key k;
    struct clst_envelope_provider *p = NULL;
    struct clst_err err = {0};
    for (size_t i = 0; i < 32; i++) {
        aes[i] = (uint8_t)(0xa0 + i);
        file_key[i] = (uint8_t)i;
    }
    released(&k, "oct-HSM", aes, sizeof(aes), KID);
    assert_int_equal(clst_enclave_released_key_provider(&k, &p, &err), CLST_OK);
    clst_enclave_released_key_cleanup(&k); /* the provider keeps its own copy */
    assert_null(k.material);
    roundtrip(p);
    /* A header as the vault's wrapkey (A256KW, RFC 3394) writes it, and its mutants. */
    assert_int_equal(clst_aes_kw_wrap(aes, 32, file_key, 32, wrapped, sizeof(wrapped), &wn),
                     CLST_OK);
    struct clst_envelope_keyref ref = {.kind = CLST_ENVELOPE_REF_VAULT};
    struct clst_envelope_wrapped w = {.size = wn};
    snprintf(ref.vault_url, sizeof(ref.vault_url), "https://elsewhere.test");
    snprintf(ref.key_name, sizeof(ref.key_name), "DbKey");
    snprintf(ref.key_version, sizeof(ref.key_version), "0123456789abcdef0123456789abcdef");
    snprintf(w.alg, sizeof(w.alg), "A256KW");
    memcpy(w.data, wrapped, wn);
    uint8_t hdr[CLST_ENVELOPE_HEADER_MAX_SIZE], out[CLST_ENVELOPE_HEADER_MAX_SIZE + 200];
    size_t hn = 0, on = 0;
    assert_int_equal(clst_envelope_header_encode(&ref, &w, NULL, 0, hdr, sizeof(hdr), &hn, &err),
                     CLST_OK);
    /* A file made with that header and a body under file_key decrypts with the provider. */
    struct clst_envelope_body *b = NULL;
    uint8_t ctx[32];
    assert_int_equal(clst_sha256(hdr, hn, ctx), CLST_OK);
    assert_int_equal(clst_envelope_body_enc_new(file_key, 32, ctx, 32, NULL, &b, &err), CLST_OK);
    memcpy(out, hdr, hn);
    on = hn;
    size_t n = 0;
    assert_int_equal(clst_envelope_body_update(b, (const uint8_t *)"hello", 5, out + on,
                                               sizeof(out) - on, &n, &err),
                     CLST_OK);
    on += n;
    assert_int_equal(clst_envelope_body_final(b, out + on, sizeof(out) - on, &n, &err), CLST_OK);
    on += n;
    clst_envelope_body_free(b);
    uint8_t body[256];
    size_t body_size = on - hn;
    assert_true(body_size <= sizeof(body));
    memcpy(body, out + hn, body_size);
    uint8_t pt[16];
    size_t pn = 0;
    assert_int_equal(clst_envelope_decrypt_mem(out, on, pt, sizeof(pt), &pn, &p, 1, 1, &err),
                     CLST_OK);
    assert_int_equal(pn, 5);
    assert_memory_equal(pt, "hello", 5);
    /* Another version: not ours. Another algorithm: refused. An altered wrapped key. */
    const size_t bad = 3;
    for (size_t m = 0; m < bad; m++) {
        struct clst_envelope_keyref r2 = ref;
        struct clst_envelope_wrapped w2 = w;
        enum clst_status want = CLST_E_NOTFOUND;
        if (m == 0) {
            snprintf(r2.key_version, sizeof(r2.key_version), "ffffffffffffffffffffffffffffffff");
        } else if (m == 1) {
            snprintf(w2.alg, sizeof(w2.alg), "A128KW");
            want = CLST_E_VERIFY;
        } else {
            w2.data[3] ^= 1;
            want = CLST_E_VERIFY;
        }
        assert_int_equal(
            clst_envelope_header_encode(&r2, &w2, NULL, 0, hdr, sizeof(hdr), &hn, &err), CLST_OK);
        memcpy(out, hdr, hn);
        memcpy(out + hn, body, body_size);
        enum clst_status got =
            clst_envelope_decrypt_mem(out, hn + body_size, pt, sizeof(pt), &pn, &p, 1, 1, &err);
        if (got != want) {
            fail_msg("mutant %zu: %d '%s', want %d", m, (int)got, err.msg, (int)want);
        }
    }
    clst_envelope_provider_free(p);
}

static void
test_provider_rsa(void **state)
{
    (void)state;
    struct clst_buf der;
    struct clst_enclave_released_key k;
    struct clst_envelope_provider *p = NULL;
    struct clst_err err = {0};
    clst_buf_init_secret(&der, 8192);
    assert_int_equal(clst_pkey_to_der(P.leaf_key, true, &der), CLST_OK);
    released(&k, "RSA", der.data, der.size, KID);
    assert_int_equal(clst_enclave_released_key_provider(&k, &p, &err), CLST_OK);
    roundtrip(p);
    clst_envelope_provider_free(p);
    clst_enclave_released_key_cleanup(&k);
    clst_buf_cleanup(&der);
}

static void
test_provider_refuses(void **state)
{
    (void)state;
    struct clst_enclave_released_key k;
    struct clst_envelope_provider *p = NULL;
    struct clst_err err = {0};
    uint8_t twenty[20] = {0};
    released(&k, "oct", twenty, sizeof(twenty), KID);
    assert_int_equal(clst_enclave_released_key_provider(&k, &p, &err), CLST_E_INVAL);
    assert_non_null(strstr(err.msg, "16, 24 or 32"));
    clst_enclave_released_key_cleanup(&k);
    released(&k, "EC", twenty, sizeof(twenty), KID);
    assert_int_equal(clst_enclave_released_key_provider(&k, &p, &err), CLST_E_INVAL);
    assert_non_null(strstr(err.msg, "cannot wrap"));
    clst_enclave_released_key_cleanup(&k);
    released(&k, "RSA", twenty, sizeof(twenty), KID); /* not PKCS#8 */
    assert_int_equal(clst_enclave_released_key_provider(&k, &p, &err), CLST_E_INVAL);
    clst_enclave_released_key_cleanup(&k);
    released(&k, "oct", twenty, 16, "https://vault.test/secrets/x");
    assert_int_equal(clst_enclave_released_key_provider(&k, &p, &err), CLST_E_INVAL);
    assert_non_null(strstr(err.msg, "kid"));
    clst_enclave_released_key_cleanup(&k);
    assert_int_equal(clst_enclave_released_key_provider(NULL, &p, &err), CLST_E_INVAL);
    memset(&k, 0, sizeof(k));
    assert_int_equal(clst_enclave_released_key_provider(&k, &p, &err), CLST_E_INVAL);
    clst_enclave_released_key_cleanup(&k);
    clst_enclave_released_key_cleanup(NULL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_verify_pinned),    cmocka_unit_test(test_verify_roots),
        cmocka_unit_test(test_verify_signature), cmocka_unit_test(test_verify_payload),
        cmocka_unit_test(test_provider_oct),     cmocka_unit_test(test_provider_rsa),
        cmocka_unit_test(test_provider_refuses),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
