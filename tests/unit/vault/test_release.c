/* Unit tests for src/vault/release.c and src/vault/rest_release.c (secure key release).
 *
 * Part 1, the engine on its own: tokens built with jose.h and signed by test authority keys
 * (EC P-256, ES256) whose JWKS sit in files, a URL served by an in-process HTTPS server, or an
 * in-process source; every bad token (forged, signed by a stranger with a known kid, expired, not
 * yet valid, untrusted issuer, alg none, HMAC keyed with the public key, unknown kid, a payload
 * that is not JSON), nonces, the TEE key choice (no x-ms-runtime, no keys, only EC, RSA keys
 * whose use/key_ops forbid encryption, a 1024-bit key), policies (several authorities, a sim
 * token against a hardware policy), JWKS caching and rate-limited re-fetching, redaction, the
 * signing key's persistence and certificate, and decision records.
 *
 * Part 2, the wire format proven independently: the release JWS is verified with the signer's
 * public key, its key_hsm is opened with plain EVP (RSA-OAEP with SHA-1/256/384, then AES-KWP via
 * EVP_aes_256_wrap_pad), and the result is the released key's PKCS#8 bytes; a flipped
 * ciphertext byte fails.
 *
 * Part 3, the routes: a real server with the vault and the release engine, driven with the client
 * library: release of the latest and of a given version, 403 bodies naming the failing path and
 * claim, dry runs, the key's state (not exportable, disabled), 400s for bad bodies, 404, the
 * release permission, and the decision sink.
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include <openssl/core_names.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include <cloister/client.h>
#include <cloister/crypto.h>
#include <cloister/jose.h>
#include <cloister/server.h>
#include <cloister/vault.h>

#include "test_util.h"
#include "vault/keymat.h"
#include "vault/release.h"
#include "vault/rest_int.h"
#include "vault_test_util.h"

#define T0    1760000000
#define ISS_A "https://attest-a.example"
#define ISS_B "https://attest-b.example:8443"
#define ISS_X "https://evil.example"
#define MRENC                                                                                      \
    "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1" \
    "a1"

static _Atomic int64_t g_now = T0;

static int64_t
now_fn(const struct clst_clock *c)
{
    (void)c;
    return atomic_load(&g_now);
}

static const struct clst_clock g_clock = {now_fn, 0};

/* ---- fixtures ------------------------------------------------------------------------------- */

struct authk {
    struct clst_jwk *priv; /* private, pinned ES256, with kid */
    const char *iss;
};

static struct authk g_a, g_a2, g_b, g_x;
static EVP_PKEY *g_tee;      /* the TEE's RSA-2048 private key */
static EVP_PKEY *g_tee_1024; /* a key too small to be accepted */
static EVP_PKEY *g_tee_ec;   /* an EC key of the TEE */

static void
make_auth(struct authk *a, const char *iss, const char *kid)
{
    EVP_PKEY *k = NULL;
    assert_int_equal(clst_ec_generate(CLST_CURVE_P256, &k), CLST_OK);
    assert_int_equal(clst_jwk_from_pkey(k, kid, CLST_JWS_ALG_NONE, &a->priv, NULL), CLST_OK);
    EVP_PKEY_free(k);
    a->iss = iss;
}

static EVP_PKEY *
rsa_1024(void)
{
    EVP_PKEY *k = NULL;
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    assert_non_null(c);
    assert_int_equal(EVP_PKEY_keygen_init(c), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_keygen_bits(c, 1024), 1);
    assert_int_equal(EVP_PKEY_generate(c, &k), 1);
    EVP_PKEY_CTX_free(c);
    return k;
}

static int
group_setup(void **state)
{
    (void)state;
    make_auth(&g_a, ISS_A, "a-1");
    make_auth(&g_a2, ISS_A, "a-2"); /* authority A's next key (rotation) */
    make_auth(&g_b, ISS_B, "b-1");
    make_auth(&g_x, ISS_X, "a-1"); /* a stranger using A's kid */
    assert_int_equal(clst_rsa_generate(2048, &g_tee), CLST_OK);
    assert_int_equal(clst_ec_generate(CLST_CURVE_P256, &g_tee_ec), CLST_OK);
    g_tee_1024 = rsa_1024();
    return 0;
}

static int
group_teardown(void **state)
{
    (void)state;
    clst_jwk_free(g_a.priv);
    clst_jwk_free(g_a2.priv);
    clst_jwk_free(g_b.priv);
    clst_jwk_free(g_x.priv);
    EVP_PKEY_free(g_tee);
    EVP_PKEY_free(g_tee_ec);
    EVP_PKEY_free(g_tee_1024);
    return 0;
}

/* {"keys":[public JWKs]} */
static json_t *
jwks_of(const struct authk *const *keys, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *j = NULL;
        assert_int_equal(clst_jwk_to_json(keys[i]->priv, false, &j), CLST_OK);
        json_array_append_new(arr, j);
    }
    return json_pack("{s:o}", "keys", arr);
}

static void
write_json(const char *path, json_t *j)
{
    assert_int_equal(json_dump_file(j, path, JSON_COMPACT), 0);
}

/* A public JWK of key k with extra members (a JSON object text, may be NULL). */
static json_t *
tee_jwk(EVP_PKEY *k, const char *extra)
{
    json_t *j = NULL;
    assert_int_equal(clst_pkey_to_jwk(k, false, &j), CLST_OK);
    if (extra != NULL) {
        json_t *e = json_loads(extra, 0, NULL);
        assert_non_null(e);
        json_object_update(j, e);
        json_decref(e);
    }
    return j;
}

/* Claims of a token: times around T0, a jti, the type, and x-ms-runtime {"keys": keys}. keys
 * (stolen) may be NULL: no x-ms-runtime at all. */
static json_t *
claims(const char *iss, const char *type, json_t *keys)
{
    json_t *c = json_pack("{s:s,s:I,s:I,s:I,s:s,s:s}", "iss", iss, "iat", (json_int_t)T0 - 10,
                          "nbf", (json_int_t)T0 - 10, "exp", (json_int_t)T0 + 3600, "jti",
                          "jti-0001", "x-ms-attestation-type", type);
    assert_non_null(c);
    if (keys != NULL) {
        json_object_set_new(c, "x-ms-runtime", json_pack("{s:o}", "keys", keys));
    }
    return c;
}

static json_t *
good_keys(void)
{
    return json_pack("[o]", tee_jwk(g_tee, "{\"kid\":\"tee-1\",\"key_ops\":[\"encrypt\"]}"));
}

static json_t *
sim_claims(const char *iss)
{
    json_t *c = claims(iss, "sim", good_keys());
    json_object_set_new(c, "x-cloister-sim-mrenclave", json_string(MRENC));
    json_object_set_new(c, "x-cloister-sim-is-debuggable", json_false());
    json_object_set_new(c, "x-cloister-sim-svn", json_integer(3));
    return c;
}

static char *
sign_claims(const struct authk *a, json_t *c)
{
    char *tok = NULL;
    struct clst_err err;
    if (clst_jwt_sign(a->priv, c, NULL, &tok, &err) != CLST_OK) {
        fail_msg("sign: %s", err.msg);
    }
    json_decref(c);
    return tok;
}

static char *
b64u(const void *data, size_t size)
{
    struct clst_buf b;
    clst_buf_init(&b, 1u << 20);
    assert_int_equal(clst_b64url_encode(data, size, &b), CLST_OK);
    assert_int_equal(clst_buf_terminate(&b), CLST_OK);
    size_t n = 0;
    return (char *)clst_buf_steal(&b, &n);
}

/* header.payload.sig with the given header JSON and signature bytes (no real signing). */
static char *
raw_jws(const char *header, const json_t *payload, const uint8_t *sig, size_t sig_size)
{
    char *p = json_dumps(payload, JSON_COMPACT);
    char *h64 = b64u(header, strlen(header));
    char *p64 = b64u(p, strlen(p));
    char *s64 = sig_size > 0 ? b64u(sig, sig_size) : strdup("");
    size_t n = strlen(h64) + strlen(p64) + strlen(s64) + 3;
    char *out = malloc(n);
    snprintf(out, n, "%s.%s.%s", h64, p64, s64);
    free(p);
    free(h64);
    free(p64);
    free(s64);
    return out;
}

#define SIM_POLICY                                                                                 \
    "{\"version\":\"1.0.0\",\"anyOf\":[{\"authority\":\"" ISS_A "\",\"allOf\":["                   \
    "{\"claim\":\"x-ms-attestation-type\",\"equals\":\"sim\"},"                                    \
    "{\"claim\":\"x-cloister-sim-is-debuggable\",\"equals\":false},"                               \
    "{\"claim\":\"x-cloister-sim-mrenclave\",\"equals\":\"" MRENC "\"}]}]}"

#define SNP_POLICY                                                                                 \
    "{\"version\":\"1.0.0\",\"anyOf\":[{\"authority\":\"" ISS_A "\",\"allOf\":["                   \
    "{\"claim\":\"x-ms-attestation-type\",\"equals\":\"sevsnpvm\"},"                               \
    "{\"claim\":\"x-ms-sevsnpvm-is-debuggable\",\"equals\":false}]}]}"

/* Either authority A (sim) or authority B (sevsnpvm). */
#define TWO_AUTH_POLICY                                                                            \
    "{\"version\":\"1.0.0\",\"anyOf\":["                                                           \
    "{\"authority\":\"" ISS_A "\",\"allOf\":[{\"claim\":\"x-ms-attestation-type\",\"equals\":"     \
    "\"sim\"}]},"                                                                                  \
    "{\"authority\":\"" ISS_B "/\",\"allOf\":[{\"claim\":\"x-ms-attestation-type\",\"equals\":"    \
    "\"sevsnpvm\"},{\"claim\":\"x-ms-sevsnpvm-is-debuggable\",\"equals\":false}]}]}"

/* ---- part 1 environment: a store, a vault, an engine over JWKS files ------------------------- */

struct penv {
    struct tv_env tv;
    struct clst_vault *v;
    struct clst_vault_release *r;
    char jwks_a[256];
    char jwks_b[256];
};

static struct clst_vault_decision_sink g_no_sink;

static void
penv_start(struct penv *e, bool redact, int64_t refetch_min)
{
    struct clst_err err;
    struct clst_vault_config vc;
    memset(e, 0, sizeof(*e));
    assert_int_equal(tv_env_init(&e->tv), 0);
    atomic_store(&g_now, T0);
    clst_vault_config_init(&vc);
    vc.clock = &g_clock;
    assert_int_equal(clst_vault_new(e->tv.store, e->tv.mk, &vc, &e->v, &err), CLST_OK);
    snprintf(e->jwks_a, sizeof(e->jwks_a), "%s/a.json", e->tv.dir);
    snprintf(e->jwks_b, sizeof(e->jwks_b), "%s/b.json", e->tv.dir);
    const struct authk *ka[] = {&g_a};
    const struct authk *kb[] = {&g_b};
    json_t *ja = jwks_of(ka, 1), *jb = jwks_of(kb, 1);
    write_json(e->jwks_a, ja);
    write_json(e->jwks_b, jb);
    json_decref(ja);
    json_decref(jb);
    struct clst_vault_authority_config auth[2] = {
        {.issuer = ISS_A, .jwks_file = e->jwks_a, .refetch_min_s = refetch_min},
        {.issuer = ISS_B "/", .jwks_file = e->jwks_b, .refetch_min_s = refetch_min},
    };
    struct clst_vault_release_config rc;
    clst_vault_release_config_init(&rc);
    rc.authorities = auth;
    rc.authority_count = 2;
    rc.redact_denials = redact;
    rc.sink = g_no_sink;
    if (clst_vault_release_new(e->v, &rc, &e->r, &err) != CLST_OK) {
        fail_msg("release: %s", err.msg);
    }
}

static void
penv_stop(struct penv *e)
{
    clst_vault_release_free(e->r);
    clst_vault_free(e->v);
    tv_env_cleanup(&e->tv);
}

/* Evaluates and returns the status; ev is filled (cleaned up by the caller). */
static enum clst_status
eval(struct penv *e, const char *tok, const char *nonce, const char *policy,
     struct clst_vault_release_eval *ev)
{
    struct clst_err err;
    clst_vault_release_eval_init(ev);
    return clst_vault_release_evaluate(e->r, tok, tok != NULL ? strlen(tok) : 0, nonce, policy, ev,
                                       &err);
}

/* The token must be denied at `stage` with `needle` in the reason. */
static void
expect_denied(struct penv *e, const char *tok, const char *nonce, const char *policy,
              enum clst_vault_release_stage stage, const char *needle)
{
    struct clst_vault_release_eval ev;
    enum clst_status st = eval(e, tok, nonce, policy, &ev);
    if (st != CLST_E_DENIED || ev.stage != stage ||
        (needle != NULL && strstr(ev.reason, needle) == NULL)) {
        fail_msg("expected a denial at %s containing '%s'; got status %d at %s: %s",
                 clst_vault_release_stage_name(stage), needle != NULL ? needle : "", (int)st,
                 clst_vault_release_stage_name(ev.stage), ev.reason);
    }
    assert_null(ev.tee_key);
    clst_vault_release_eval_cleanup(&ev);
}

/* ---- part 1 tests --------------------------------------------------------------------------- */

static void
test_enc_and_authority_parse(void **state)
{
    enum clst_vault_release_enc enc;
    struct clst_vault_authority_config ac;
    (void)state;
    assert_int_equal(clst_vault_release_enc_parse("CKM_RSA_AES_KEY_WRAP", &enc, NULL), CLST_OK);
    assert_int_equal(enc, CLST_RELEASE_ENC_CKM_RSA_AES_KEY_WRAP);
    assert_int_equal(clst_vault_release_enc_hash(enc), CLST_HASH_SHA1);
    assert_int_equal(clst_vault_release_enc_parse("RSA_AES_KEY_WRAP_256", &enc, NULL), CLST_OK);
    assert_int_equal(clst_vault_release_enc_hash(enc), CLST_HASH_SHA256);
    assert_int_equal(clst_vault_release_enc_parse("RSA_AES_KEY_WRAP_384", &enc, NULL), CLST_OK);
    assert_int_equal(clst_vault_release_enc_hash(enc), CLST_HASH_SHA384);
    assert_int_equal(clst_vault_release_enc_parse("ckm_rsa_aes_key_wrap", &enc, NULL),
                     CLST_E_INVAL);
    assert_int_equal(clst_vault_release_enc_parse("RSA-OAEP", &enc, NULL), CLST_E_INVAL);
    assert_int_equal(clst_vault_release_enc_parse(NULL, &enc, NULL), CLST_E_INVAL);

    char s1[] = "https://a.example=https://a.example/certs";
    assert_int_equal(clst_vault_authority_parse(s1, &ac, NULL), CLST_OK);
    assert_string_equal(ac.issuer, "https://a.example");
    assert_string_equal(ac.jwks_url, "https://a.example/certs");
    assert_null(ac.jwks_file);
    char s2[] = "https://a.example=/etc/jwks.json";
    assert_int_equal(clst_vault_authority_parse(s2, &ac, NULL), CLST_OK);
    assert_string_equal(ac.jwks_file, "/etc/jwks.json");
    char s3[] = "https://a.example=http://a.example/certs";
    assert_int_equal(clst_vault_authority_parse(s3, &ac, NULL), CLST_E_INVAL);
    char s4[] = "https://a.example";
    assert_int_equal(clst_vault_authority_parse(s4, &ac, NULL), CLST_E_INVAL);
    char s5[] = "=file";
    assert_int_equal(clst_vault_authority_parse(s5, &ac, NULL), CLST_E_INVAL);
    char s6[] = "https://a.example=";
    assert_int_equal(clst_vault_authority_parse(s6, &ac, NULL), CLST_E_INVAL);
}

static void
test_config_errors(void **state)
{
    struct tv_env tv;
    struct clst_vault *v = NULL;
    struct clst_vault_release *r = NULL, *r2 = NULL;
    struct clst_vault_release_config rc;
    struct clst_vault_config vc;
    struct clst_err err;
    (void)state;
    assert_int_equal(tv_env_init(&tv), 0);
    clst_vault_config_init(&vc);
    vc.clock = &g_clock;
    assert_int_equal(clst_vault_new(tv.store, tv.mk, &vc, &v, &err), CLST_OK);

    /* a missing JWKS file fails at start */
    struct clst_vault_authority_config bad_file = {.issuer = ISS_A,
                                                   .jwks_file = "/nonexistent/jwks.json"};
    clst_vault_release_config_init(&rc);
    rc.authorities = &bad_file;
    rc.authority_count = 1;
    assert_int_equal(clst_vault_release_new(v, &rc, &r, &err), CLST_E_IO);
    assert_non_null(strstr(err.msg, "/nonexistent/jwks.json"));
    assert_null(clst_vault_release_of(v));

    /* two sources, no source, a CA without a URL, the same issuer twice, a bad URL */
    struct clst_vault_authority_config two = {
        .issuer = ISS_A, .jwks_file = "x", .jwks_url = "https://a/certs"};
    rc.authorities = &two;
    assert_int_equal(clst_vault_release_new(v, &rc, &r, &err), CLST_E_INVAL);
    struct clst_vault_authority_config none = {.issuer = ISS_A};
    rc.authorities = &none;
    assert_int_equal(clst_vault_release_new(v, &rc, &r, &err), CLST_E_INVAL);
    struct clst_vault_authority_config ca = {.issuer = ISS_A, .jwks_file = "x", .ca_file = "c"};
    rc.authorities = &ca;
    assert_int_equal(clst_vault_release_new(v, &rc, &r, &err), CLST_E_INVAL);
    struct clst_vault_authority_config url = {.issuer = ISS_A, .jwks_url = "https:///certs"};
    rc.authorities = &url;
    assert_int_equal(clst_vault_release_new(v, &rc, &r, &err), CLST_E_INVAL);
    struct clst_vault_authority_config dup[2] = {
        {.issuer = ISS_A, .jwks_url = "https://a.example/certs"},
        {.issuer = ISS_A "/", .jwks_url = "https://a.example/certs"},
    };
    rc.authorities = dup;
    rc.authority_count = 2;
    assert_int_equal(clst_vault_release_new(v, &rc, &r, &err), CLST_E_INVAL);
    assert_non_null(strstr(err.msg, "twice"));
    rc.authority_count = 1;
    rc.skew = CLST_JWT_MAX_SKEW + 1;
    assert_int_equal(clst_vault_release_new(v, &rc, &r, &err), CLST_E_INVAL);

    /* no authorities at all is allowed (every token is then from an untrusted issuer); one
     * engine per vault */
    clst_vault_release_config_init(&rc);
    assert_int_equal(clst_vault_release_new(v, &rc, &r, &err), CLST_OK);
    assert_ptr_equal(clst_vault_release_of(v), r);
    assert_int_equal(clst_vault_release_new(v, &rc, &r2, &err), CLST_E_CONFLICT);
    clst_vault_release_free(r);
    assert_null(clst_vault_release_of(v));
    clst_vault_free(v);
    tv_env_cleanup(&tv);
}

static void
test_good_token(void **state)
{
    struct penv e;
    struct clst_vault_release_eval ev;
    uint8_t h[32];
    (void)state;
    penv_start(&e, false, 0);
    char *tok = sign_claims(&g_a, sim_claims(ISS_A));
    assert_int_equal(eval(&e, tok, NULL, SIM_POLICY, &ev), CLST_OK);
    assert_int_equal(ev.stage, CLST_RELEASE_STAGE_NONE);
    assert_non_null(ev.tee_key);
    assert_true(clst_pkey_public_equal(ev.tee_key, g_tee));
    assert_string_equal(ev.tee_kid, "tee-1");
    assert_int_equal(strlen(ev.tee_thumbprint), 43);
    assert_string_equal(ev.issuer, ISS_A);
    assert_string_equal(ev.jti, "jti-0001");
    assert_string_equal(ev.attestation_type, "sim");
    assert_int_equal(strlen(ev.policy_hash), 43);
    /* the token hash is SHA-256 of the token text */
    char hs[CLST_RELEASE_HASH_STR_SIZE];
    assert_int_equal(clst_sha256(tok, strlen(tok), h), CLST_OK);
    char *want = b64u(h, 32);
    snprintf(hs, sizeof(hs), "%s", want);
    assert_string_equal(ev.token_sha256, hs);
    free(want);
    assert_int_equal(clst_policy_result_decision(ev.result), CLST_POLICY_ALLOW);
    clst_vault_release_eval_cleanup(&ev);

    /* the other authority, whose issuer was configured with a trailing '/', and a policy that
     * names it with one: trailing slashes are ignored on both sides */
    json_t *c = claims(ISS_B, "sevsnpvm", good_keys());
    json_object_set_new(c, "x-ms-sevsnpvm-is-debuggable", json_false());
    char *tb = sign_claims(&g_b, c);
    assert_int_equal(eval(&e, tb, NULL, TWO_AUTH_POLICY, &ev), CLST_OK);
    clst_vault_release_eval_cleanup(&ev);
    /* ... and A's sim token passes the same two-authority policy by its first member */
    assert_int_equal(eval(&e, tok, NULL, TWO_AUTH_POLICY, &ev), CLST_OK);
    clst_vault_release_eval_cleanup(&ev);
    /* B's token under a policy that only names A: the authority does not match */
    expect_denied(&e, tb, NULL, SIM_POLICY, CLST_RELEASE_STAGE_POLICY, "authority");

    /* verify_token alone */
    json_t *cl = NULL;
    char iss[CLST_RELEASE_ISSUER_MAX + 1];
    assert_int_equal(clst_vault_release_verify_token(e.r, tok, strlen(tok), &cl, iss, NULL),
                     CLST_OK);
    assert_string_equal(iss, ISS_A);
    assert_string_equal(json_string_value(json_object_get(cl, "x-cloister-sim-mrenclave")), MRENC);
    json_decref(cl);
    free(tok);
    free(tb);
    penv_stop(&e);
}

static void
test_bad_tokens(void **state)
{
    struct penv e;
    json_t *c;
    (void)state;
    penv_start(&e, false, 0);
    char *good = sign_claims(&g_a, sim_claims(ISS_A));

    /* forged: one bit of the signature, of the payload, of the header */
    size_t n = strlen(good);
    char *t = strdup(good);
    t[n - 5] = t[n - 5] == 'A' ? 'B' : 'A';
    expect_denied(&e, t, NULL, SIM_POLICY, CLST_RELEASE_STAGE_TOKEN, "not valid");
    free(t);
    t = strdup(good);
    char *dot = strchr(t, '.');
    dot[3] = dot[3] == 'A' ? 'B' : 'A';
    expect_denied(&e, t, NULL, SIM_POLICY, CLST_RELEASE_STAGE_TOKEN, NULL);
    free(t);
    /* claims changed after signing (mrenclave swapped): the signature no longer covers them */
    {
        json_t *c2 = sim_claims(ISS_A);
        json_object_set_new(c2, "x-cloister-sim-mrenclave", json_string("b2"));
        char *other = sign_claims(&g_x, c2); /* signed by the stranger */
        char *spliced = strdup(good);
        char *p1 = strchr(spliced, '.') + 1, *p2 = strchr(p1, '.');
        const char *o1 = strchr(other, '.') + 1, *o2 = strchr(o1, '.');
        /* header and signature from the good token, payload from the other */
        size_t cap = strlen(good) + strlen(other);
        char *s = malloc(cap);
        snprintf(s, cap, "%.*s%.*s%s", (int)(p1 - spliced), spliced, (int)(o2 - o1), o1, p2);
        expect_denied(&e, s, NULL, SIM_POLICY, CLST_RELEASE_STAGE_TOKEN, "not valid");
        free(s);
        free(spliced);
        free(other);
    }
    /* signed by a stranger who names authority A as issuer and uses A's kid */
    t = sign_claims(&g_x, sim_claims(ISS_A));
    expect_denied(&e, t, NULL, SIM_POLICY, CLST_RELEASE_STAGE_TOKEN, "not valid");
    free(t);
    /* an untrusted issuer */
    t = sign_claims(&g_x, sim_claims(ISS_X));
    expect_denied(&e, t, NULL, SIM_POLICY, CLST_RELEASE_STAGE_TOKEN, "not a trusted");
    free(t);
    /* no issuer at all */
    c = sim_claims(ISS_A);
    json_object_del(c, "iss");
    t = sign_claims(&g_a, c);
    expect_denied(&e, t, NULL, SIM_POLICY, CLST_RELEASE_STAGE_TOKEN, "no issuer");
    free(t);
    /* expired (exp + skew passed), not yet valid (nbf - skew ahead), no exp */
    c = sim_claims(ISS_A);
    json_object_set_new(c, "exp", json_integer(T0 - 61));
    t = sign_claims(&g_a, c);
    expect_denied(&e, t, NULL, SIM_POLICY, CLST_RELEASE_STAGE_TOKEN, "expired");
    free(t);
    c = sim_claims(ISS_A);
    json_object_set_new(c, "exp", json_integer(T0 - 59)); /* within the 60 s skew */
    t = sign_claims(&g_a, c);
    struct clst_vault_release_eval ev;
    assert_int_equal(eval(&e, t, NULL, SIM_POLICY, &ev), CLST_OK);
    clst_vault_release_eval_cleanup(&ev);
    free(t);
    c = sim_claims(ISS_A);
    json_object_set_new(c, "nbf", json_integer(T0 + 600));
    t = sign_claims(&g_a, c);
    expect_denied(&e, t, NULL, SIM_POLICY, CLST_RELEASE_STAGE_TOKEN, "not valid before");
    free(t);
    c = sim_claims(ISS_A);
    json_object_del(c, "exp");
    t = sign_claims(&g_a, c);
    expect_denied(&e, t, NULL, SIM_POLICY, CLST_RELEASE_STAGE_TOKEN, "exp");
    free(t);
    /* alg none, with and without a signature */
    c = sim_claims(ISS_A);
    t = raw_jws("{\"alg\":\"none\",\"kid\":\"a-1\",\"typ\":\"JWT\"}", c, NULL, 0);
    expect_denied(&e, t, NULL, SIM_POLICY, CLST_RELEASE_STAGE_TOKEN, NULL);
    free(t);
    t = raw_jws("{\"alg\":\"none\",\"typ\":\"JWT\"}", c, (const uint8_t *)"x", 1);
    expect_denied(&e, t, NULL, SIM_POLICY, CLST_RELEASE_STAGE_TOKEN, NULL);
    free(t);
    /* HMAC keyed with the authority's public key bytes (the classic confusion) */
    {
        json_t *pub = NULL;
        assert_int_equal(clst_jwk_to_json(g_a.priv, false, &pub), CLST_OK);
        char *pubtext = json_dumps(pub, JSON_COMPACT);
        const char *hdr = "{\"alg\":\"HS256\",\"kid\":\"a-1\",\"typ\":\"JWT\"}";
        char *unsigned_tok = raw_jws(hdr, c, NULL, 0); /* "h.p." */
        uint8_t mac[32];
        size_t signed_len = strlen(unsigned_tok) - 1;
        assert_int_equal(clst_hmac(CLST_HASH_SHA256, (const uint8_t *)pubtext, strlen(pubtext),
                                   unsigned_tok, signed_len, mac),
                         CLST_OK);
        t = raw_jws(hdr, c, mac, sizeof(mac));
        expect_denied(&e, t, NULL, SIM_POLICY, CLST_RELEASE_STAGE_TOKEN, NULL);
        free(t);
        free(unsigned_tok);
        free(pubtext);
        json_decref(pub);
    }
    json_decref(c);
    /* not a JWS at all, empty, two segments, four segments, a payload that is not JSON */
    expect_denied(&e, "garbage", NULL, SIM_POLICY, CLST_RELEASE_STAGE_TOKEN, "compact JWS");
    expect_denied(&e, "", NULL, SIM_POLICY, CLST_RELEASE_STAGE_TOKEN, "no attestation token");
    expect_denied(&e, "a.b", NULL, SIM_POLICY, CLST_RELEASE_STAGE_TOKEN, "compact JWS");
    expect_denied(&e, "a.b.c.d", NULL, SIM_POLICY, CLST_RELEASE_STAGE_TOKEN, "compact JWS");
    expect_denied(&e, "eyJhbGciOiJFUzI1NiJ9.bm90IGpzb24.c2ln", NULL, SIM_POLICY,
                  CLST_RELEASE_STAGE_TOKEN, "not a JSON object");
    /* a token too large */
    {
        size_t big = CLST_JWS_MAX_SIZE + 10;
        char *b = malloc(big + 1);
        memset(b, 'A', big);
        b[big] = '\0';
        b[10] = '.';
        b[20] = '.';
        expect_denied(&e, b, NULL, SIM_POLICY, CLST_RELEASE_STAGE_TOKEN, "longer than");
        free(b);
    }
    free(good);
    penv_stop(&e);
}

static void
test_unknown_kid_and_rotation(void **state)
{
    struct penv e;
    struct clst_vault_release_eval ev;
    (void)state;
    penv_start(&e, false, 30);
    assert_int_equal(clst_vault_release_authority_fetches(e.r, 0), 1);
    /* A's next key signs; the file does not have it yet: unknown kid → one re-fetch (the file
     * still lacks it) → denied */
    char *t2 = sign_claims(&g_a2, sim_claims(ISS_A));
    expect_denied(&e, t2, NULL, SIM_POLICY, CLST_RELEASE_STAGE_TOKEN, "kid");
    /* the first fetch was at T0 too, so the rate limit already held: no fetch happened */
    assert_int_equal(clst_vault_release_authority_fetches(e.r, 0), 1);
    atomic_store(&g_now, T0 + 31);
    expect_denied(&e, t2, NULL, SIM_POLICY, CLST_RELEASE_STAGE_TOKEN, "kid");
    assert_int_equal(clst_vault_release_authority_fetches(e.r, 0), 2);
    /* more unknown kids within the interval: no more fetches (no amplification) */
    for (int i = 0; i < 5; i++) {
        expect_denied(&e, t2, NULL, SIM_POLICY, CLST_RELEASE_STAGE_TOKEN, "kid");
    }
    assert_int_equal(clst_vault_release_authority_fetches(e.r, 0), 2);
    /* the authority publishes both keys; after the interval the unknown kid is found */
    const struct authk *both[] = {&g_a, &g_a2};
    json_t *j = jwks_of(both, 2);
    write_json(e.jwks_a, j);
    json_decref(j);
    char *t2b = sign_claims(&g_a2, sim_claims(ISS_A)); /* tokens are issued at T0; still valid */
    atomic_store(&g_now, T0 + 62);
    assert_int_equal(eval(&e, t2b, NULL, SIM_POLICY, &ev), CLST_OK);
    clst_vault_release_eval_cleanup(&ev);
    assert_int_equal(clst_vault_release_authority_fetches(e.r, 0), 3);
    /* a known kid does not fetch until refresh_s (300 s) has passed */
    assert_int_equal(eval(&e, t2b, NULL, SIM_POLICY, &ev), CLST_OK);
    clst_vault_release_eval_cleanup(&ev);
    assert_int_equal(clst_vault_release_authority_fetches(e.r, 0), 3);
    atomic_store(&g_now, T0 + 62 + 300);
    /* the old key was retired from the file: after the refresh, its tokens fail */
    const struct authk *only2[] = {&g_a2};
    j = jwks_of(only2, 1);
    write_json(e.jwks_a, j);
    json_decref(j);
    char *t1 = sign_claims(&g_a, sim_claims(ISS_A));
    json_t *c = sim_claims(ISS_A);
    json_object_set_new(c, "exp", json_integer(T0 + 7200));
    json_object_set_new(c, "iat", json_integer(T0 + 300));
    char *t1late = sign_claims(&g_a, c);
    expect_denied(&e, t1late, NULL, SIM_POLICY, CLST_RELEASE_STAGE_TOKEN, "kid");
    assert_int_equal(clst_vault_release_authority_fetches(e.r, 0), 4);
    /* a damaged file keeps the previous set */
    FILE *f = fopen(e.jwks_a, "w");
    fputs("{\"keys\":[{\"kty\":\"EC\"}]}", f);
    fclose(f);
    atomic_store(&g_now, T0 + 62 + 300 + 400);
    c = sim_claims(ISS_A);
    json_object_set_new(c, "exp", json_integer(T0 + 7200));
    char *t2c = sign_claims(&g_a2, c);
    assert_int_equal(eval(&e, t2c, NULL, SIM_POLICY, &ev), CLST_OK);
    clst_vault_release_eval_cleanup(&ev);
    assert_int_equal(clst_vault_release_authority_fetches(e.r, 0), 4);
    free(t1);
    free(t1late);
    free(t2);
    free(t2b);
    free(t2c);
    penv_stop(&e);
}

static void
test_nonce(void **state)
{
    struct penv e;
    struct clst_vault_release_eval ev;
    (void)state;
    penv_start(&e, false, 0);
    json_t *c = sim_claims(ISS_A);
    json_object_set_new(c, "nonce", json_string("n-123"));
    char *t = sign_claims(&g_a, c);
    assert_int_equal(eval(&e, t, "n-123", SIM_POLICY, &ev), CLST_OK);
    clst_vault_release_eval_cleanup(&ev);
    assert_int_equal(eval(&e, t, NULL, SIM_POLICY, &ev), CLST_OK); /* no nonce asked: not checked */
    clst_vault_release_eval_cleanup(&ev);
    expect_denied(&e, t, "n-124", SIM_POLICY, CLST_RELEASE_STAGE_NONCE, "replayed");
    expect_denied(&e, t, "n-12", SIM_POLICY, CLST_RELEASE_STAGE_NONCE, "replayed");
    expect_denied(&e, t, "", SIM_POLICY, CLST_RELEASE_STAGE_NONCE, "replayed");
    free(t);
    /* no nonce claim: a request nonce cannot match */
    t = sign_claims(&g_a, sim_claims(ISS_A));
    expect_denied(&e, t, "n-123", SIM_POLICY, CLST_RELEASE_STAGE_NONCE, "has none");
    free(t);
    /* the nonce inside the runtime data also counts */
    c = sim_claims(ISS_A);
    json_object_set_new(json_object_get(c, "x-ms-runtime"), "nonce", json_string("rt-9"));
    t = sign_claims(&g_a, c);
    assert_int_equal(eval(&e, t, "rt-9", SIM_POLICY, &ev), CLST_OK);
    clst_vault_release_eval_cleanup(&ev);
    expect_denied(&e, t, "rt-8", SIM_POLICY, CLST_RELEASE_STAGE_NONCE, NULL);
    free(t);
    penv_stop(&e);
}

static void
test_tee_key_choice(void **state)
{
    struct penv e;
    struct clst_vault_release_eval ev;
    (void)state;
    penv_start(&e, false, 0);
    struct {
        json_t *keys; /* NULL: no x-ms-runtime */
        const char *needle;
    } bad[] = {
        {NULL, "no 'x-ms-runtime'"},
        {json_array(), "no 'keys'"},
        {json_pack("[o]", tee_jwk(g_tee_ec, "{\"kid\":\"ec\"}")), "1 key(s) of another type"},
        {json_pack("[o]", tee_jwk(g_tee, "{\"key_ops\":[\"sign\",\"verify\"]}")),
         "1 RSA key(s) whose use/key_ops"},
        {json_pack("[o]", tee_jwk(g_tee, "{\"use\":\"sig\"}")), "1 RSA key(s) whose use"},
        {json_pack("[o]", tee_jwk(g_tee_1024, NULL)), "1 invalid"},
        {json_pack("[s]", "not a key"), "1 key(s) of another type"},
        {json_pack("[o]", tee_jwk(g_tee, "{\"n\":\"AQAB\"}")), "1 invalid"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *c = claims(ISS_A, "sim", NULL);
        if (bad[i].keys != NULL) {
            json_object_set_new(c, "x-ms-runtime", json_pack("{s:o}", "keys", bad[i].keys));
        }
        json_object_set_new(c, "x-cloister-sim-mrenclave", json_string(MRENC));
        json_object_set_new(c, "x-cloister-sim-is-debuggable", json_false());
        char *t = sign_claims(&g_a, c);
        expect_denied(&e, t, NULL, SIM_POLICY, CLST_RELEASE_STAGE_TEE_KEY, bad[i].needle);
        free(t);
    }
    /* x-ms-runtime that is not an object */
    json_t *c = claims(ISS_A, "sim", NULL);
    json_object_set_new(c, "x-ms-runtime", json_string("keys"));
    char *t = sign_claims(&g_a, c);
    expect_denied(&e, t, NULL, SNP_POLICY, CLST_RELEASE_STAGE_POLICY, NULL); /* policy first */
    free(t);
    /* the first suitable RSA key wins: EC, then a signing-only RSA key, then one without kid */
    json_t *keys = json_pack("[o,o,o,o]", tee_jwk(g_tee_ec, "{\"kid\":\"ec\"}"),
                             tee_jwk(g_tee_1024, "{\"kid\":\"small\"}"),
                             tee_jwk(g_tee, "{\"kid\":\"sig\",\"use\":\"sig\"}"),
                             tee_jwk(g_tee, "{\"key_ops\":[\"wrapKey\"],\"use\":\"enc\"}"));
    c = claims(ISS_A, "sim", keys);
    json_object_set_new(c, "x-cloister-sim-mrenclave", json_string(MRENC));
    json_object_set_new(c, "x-cloister-sim-is-debuggable", json_false());
    t = sign_claims(&g_a, c);
    assert_int_equal(eval(&e, t, NULL, SIM_POLICY, &ev), CLST_OK);
    assert_true(clst_pkey_public_equal(ev.tee_key, g_tee));
    assert_string_equal(ev.tee_kid, ev.tee_thumbprint); /* no kid: the thumbprint */
    clst_vault_release_eval_cleanup(&ev);
    free(t);
    /* the key is now in the engine's cache of validated keys: a JWK with the same n and e but a
     * use or key_ops that forbid encryption is still refused, and the kid still comes from the
     * JWK at hand */
    const char *extras[] = {"{\"use\":\"sig\"}", "{\"key_ops\":[\"sign\"]}",
                            "{\"key_ops\":\"encrypt\"}", "{\"use\":1}"};
    for (size_t i = 0; i < sizeof(extras) / sizeof(extras[0]); i++) {
        c = claims(ISS_A, "sim", json_pack("[o]", tee_jwk(g_tee, extras[i])));
        json_object_set_new(c, "x-cloister-sim-mrenclave", json_string(MRENC));
        json_object_set_new(c, "x-cloister-sim-is-debuggable", json_false());
        t = sign_claims(&g_a, c);
        expect_denied(&e, t, NULL, SIM_POLICY, CLST_RELEASE_STAGE_TEE_KEY, "whose use/key_ops");
        free(t);
    }
    c = claims(ISS_A, "sim", json_pack("[o]", tee_jwk(g_tee, "{\"kid\":\"again\"}")));
    json_object_set_new(c, "x-cloister-sim-mrenclave", json_string(MRENC));
    json_object_set_new(c, "x-cloister-sim-is-debuggable", json_false());
    t = sign_claims(&g_a, c);
    assert_int_equal(eval(&e, t, NULL, SIM_POLICY, &ev), CLST_OK);
    assert_string_equal(ev.tee_kid, "again");
    assert_true(clst_pkey_public_equal(ev.tee_key, g_tee));
    clst_vault_release_eval_cleanup(&ev);
    free(t);
    /* a private key in the runtime data is refused too (a TEE must never publish it) */
    json_t *priv = NULL;
    assert_int_equal(clst_pkey_to_jwk(g_tee, true, &priv), CLST_OK);
    c = claims(ISS_A, "sim", json_pack("[o]", priv));
    json_object_set_new(c, "x-cloister-sim-mrenclave", json_string(MRENC));
    json_object_set_new(c, "x-cloister-sim-is-debuggable", json_false());
    t = sign_claims(&g_a, c);
    expect_denied(&e, t, NULL, SIM_POLICY, CLST_RELEASE_STAGE_TEE_KEY, NULL);
    free(t);
    penv_stop(&e);
}

static void
test_policy_denials_and_redaction(void **state)
{
    struct penv e;
    struct clst_vault_release_eval ev;
    char msg[1024];
    (void)state;
    penv_start(&e, false, 0);
    /* a sim token against a policy for hardware claims */
    char *t = sign_claims(&g_a, sim_claims(ISS_A));
    assert_int_equal(eval(&e, t, NULL, SNP_POLICY, &ev), CLST_E_DENIED);
    assert_int_equal(ev.stage, CLST_RELEASE_STAGE_POLICY);
    assert_non_null(strstr(ev.reason, "anyOf[0].allOf[0]"));
    assert_non_null(strstr(ev.reason, "x-ms-attestation-type"));
    /* the TEE key is still reported (evaluation runs through), but not kept */
    assert_string_equal(ev.tee_kid, "tee-1");
    assert_null(ev.tee_key);
    json_t *x = clst_vault_release_explain(e.r, &ev, false);
    assert_string_equal(json_string_value(json_object_get(x, "decision")), "deny");
    assert_string_equal(json_string_value(json_object_get(x, "stage")), "policy");
    json_t *den = json_object_get(x, "denial");
    assert_string_equal(json_string_value(json_object_get(den, "path")), "anyOf[0].allOf[0]");
    assert_string_equal(json_string_value(json_object_get(den, "claim")), "x-ms-attestation-type");
    assert_string_equal(json_string_value(json_object_get(den, "expected")), "sevsnpvm");
    assert_string_equal(json_string_value(json_object_get(den, "actual")), "sim");
    assert_null(json_object_get(x, "trace"));
    json_decref(x);
    x = clst_vault_release_explain(e.r, &ev, true);
    assert_true(json_array_size(json_object_get(x, "trace")) >= 4);
    json_decref(x);
    clst_vault_release_message(e.r, &ev, msg, sizeof(msg));
    assert_non_null(strstr(msg, "sevsnpvm"));
    clst_vault_release_eval_cleanup(&ev);
    /* the mrenclave differs: the third condition fails, naming the claim and both values */
    json_t *c = sim_claims(ISS_A);
    json_object_set_new(c, "x-cloister-sim-mrenclave", json_string("b2b2"));
    char *t2 = sign_claims(&g_a, c);
    assert_int_equal(eval(&e, t2, NULL, SIM_POLICY, &ev), CLST_E_DENIED);
    assert_non_null(strstr(ev.reason, "anyOf[0].allOf[2]"));
    assert_non_null(strstr(ev.reason, "x-cloister-sim-mrenclave"));
    assert_non_null(strstr(ev.reason, "b2b2"));
    clst_vault_release_eval_cleanup(&ev);
    /* the first failing stage is reported: a bad nonce and a policy failure → nonce */
    expect_denied(&e, t2, "zz", SIM_POLICY, CLST_RELEASE_STAGE_NONCE, NULL);
    penv_stop(&e);

    /* redacted: the values never reach the explanation or the message (only their types) */
    penv_start(&e, true, 0);
    assert_int_equal(eval(&e, t2, NULL, SIM_POLICY, &ev), CLST_E_DENIED);
    assert_true(clst_vault_release_redacts(e.r));
    x = clst_vault_release_explain(e.r, &ev, true);
    char *text = json_dumps(x, JSON_COMPACT);
    assert_null(strstr(text, "b2b2"));
    assert_null(strstr(text, MRENC));
    assert_non_null(strstr(text, "x-cloister-sim-mrenclave"));
    den = json_object_get(x, "denial");
    assert_null(json_object_get(den, "actual"));
    assert_string_equal(json_string_value(json_object_get(den, "actualType")), "string");
    free(text);
    json_decref(x);
    clst_vault_release_message(e.r, &ev, msg, sizeof(msg));
    assert_null(strstr(msg, "b2b2"));
    assert_non_null(strstr(msg, "anyOf[0].allOf[2]"));
    /* ... but the engine's own reason (for the operator's log) keeps them */
    assert_non_null(strstr(ev.reason, "b2b2"));
    clst_vault_release_eval_cleanup(&ev);
    free(t);
    free(t2);
    penv_stop(&e);
}

/* An in-process JWKS source whose issuer is set after start. */
static int g_fn_calls;
static enum clst_status
fn_source(void *ctx, json_t **out, struct clst_err *err)
{
    (void)ctx;
    (void)err;
    g_fn_calls++;
    const struct authk *k[] = {&g_b};
    *out = jwks_of(k, 1);
    return CLST_OK;
}

static void
test_fn_source_and_issuer_later(void **state)
{
    struct tv_env tv;
    struct clst_vault *v = NULL;
    struct clst_vault_release *r = NULL;
    struct clst_vault_release_config rc;
    struct clst_vault_config vc;
    struct clst_vault_release_eval ev;
    struct clst_err err;
    (void)state;
    atomic_store(&g_now, T0);
    assert_int_equal(tv_env_init(&tv), 0);
    clst_vault_config_init(&vc);
    vc.clock = &g_clock;
    assert_int_equal(clst_vault_new(tv.store, tv.mk, &vc, &v, &err), CLST_OK);
    struct clst_vault_authority_config a = {.jwks_fn = fn_source, .refresh_s = 60};
    clst_vault_release_config_init(&rc);
    rc.authorities = &a;
    rc.authority_count = 1;
    g_fn_calls = 0;
    assert_int_equal(clst_vault_release_new(v, &rc, &r, &err), CLST_OK);
    assert_int_equal(g_fn_calls, 1);
    json_t *c = claims(ISS_B, "sevsnpvm", good_keys());
    json_object_set_new(c, "x-ms-sevsnpvm-is-debuggable", json_false());
    char *t = sign_claims(&g_b, c);
    clst_vault_release_eval_init(&ev);
    /* the issuer is not known yet: untrusted */
    assert_int_equal(clst_vault_release_evaluate(r, t, strlen(t), NULL, TWO_AUTH_POLICY, &ev, &err),
                     CLST_E_DENIED);
    assert_non_null(strstr(ev.reason, "issuer not set yet"));
    clst_vault_release_eval_cleanup(&ev);
    assert_int_equal(clst_vault_release_authority_set_issuer(r, 0, ISS_B, &err), CLST_OK);
    assert_int_equal(clst_vault_release_authority_set_issuer(r, 1, ISS_B, &err), CLST_E_INVAL);
    clst_vault_release_eval_init(&ev);
    assert_int_equal(clst_vault_release_evaluate(r, t, strlen(t), NULL, TWO_AUTH_POLICY, &ev, &err),
                     CLST_OK);
    clst_vault_release_eval_cleanup(&ev);
    assert_int_equal(g_fn_calls, 1);
    atomic_store(&g_now, T0 + 61);
    clst_vault_release_eval_init(&ev);
    assert_int_equal(clst_vault_release_evaluate(r, t, strlen(t), NULL, TWO_AUTH_POLICY, &ev, &err),
                     CLST_OK);
    clst_vault_release_eval_cleanup(&ev);
    assert_int_equal(g_fn_calls, 2); /* refreshed */
    free(t);
    clst_vault_release_free(r);
    clst_vault_free(v);
    tv_env_cleanup(&tv);
}

static void
test_signing_key_persists(void **state)
{
    struct penv e;
    struct clst_err err;
    struct clst_vault_release_config rc;
    uint8_t tp1[32], tp2[32];
    (void)state;
    penv_start(&e, false, 0);
    assert_int_equal(clst_jwk_thumbprint(clst_vault_release_signer(e.r), tp1), CLST_OK);
    assert_int_equal(clst_jwk_alg(clst_vault_release_signer(e.r)), CLST_JWS_RS256);
    assert_false(clst_jwk_has_private(clst_vault_release_signer(e.r)) == false);
    /* self-signed certificate for the signing key */
    STACK_OF(X509) *chain = clst_vault_release_signer_chain(e.r);
    assert_int_equal(sk_X509_num(chain), 1);
    EVP_PKEY *leafkey = X509_get0_pubkey(sk_X509_value(chain, 0));
    assert_true(clst_pkey_public_equal(leafkey, clst_jwk_pkey(clst_vault_release_signer(e.r))));
    /* the setting is sealed: no PKCS#8 in it */
    struct clst_buf b;
    clst_buf_init(&b, 65536);
    assert_int_equal(
        clst_vault_store_meta_get(e.tv.store, CLST_RELEASE_SIGNING_KEY_SETTING, &b, &err), CLST_OK);
    assert_non_null(memchr(b.data, '{', b.size));
    clst_buf_cleanup(&b);
    clst_vault_release_free(e.r);

    /* a new engine on the same store uses the same key, now with a CA-issued certificate */
    EVP_PKEY *cakey = NULL;
    assert_int_equal(clst_ec_generate(CLST_CURVE_P256, &cakey), CLST_OK);
    X509 *ca = X509_new();
    X509_NAME *nm = X509_NAME_new();
    X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (const unsigned char *)"test CA", -1, -1, 0);
    X509_set_version(ca, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(ca), 7);
    X509_set_subject_name(ca, nm);
    X509_set_issuer_name(ca, nm);
    ASN1_TIME_set(X509_getm_notBefore(ca), (time_t)(T0 - 86400));
    ASN1_TIME_set(X509_getm_notAfter(ca), (time_t)(T0 + 10 * 86400 * 365LL));
    X509_set_pubkey(ca, cakey);
    X509V3_CTX xc;
    X509V3_set_ctx(&xc, ca, ca, NULL, NULL, 0);
    X509_EXTENSION *ext =
        X509V3_EXT_nconf_nid(NULL, &xc, NID_basic_constraints, "critical,CA:TRUE");
    X509_add_ext(ca, ext, -1);
    X509_EXTENSION_free(ext);
    ext = X509V3_EXT_nconf_nid(NULL, &xc, NID_key_usage, "critical,keyCertSign,cRLSign");
    X509_add_ext(ca, ext, -1);
    X509_EXTENSION_free(ext);
    ext = X509V3_EXT_nconf_nid(NULL, &xc, NID_subject_key_identifier, "hash");
    X509_add_ext(ca, ext, -1);
    X509_EXTENSION_free(ext);
    assert_true(X509_sign(ca, cakey, EVP_sha256()) > 0);
    X509_NAME_free(nm);

    clst_vault_release_config_init(&rc);
    rc.ca_cert = ca;
    assert_int_equal(clst_vault_release_new(e.v, &rc, &e.r, &err), CLST_E_INVAL); /* no key */
    rc.ca_key = cakey;
    assert_int_equal(clst_vault_release_new(e.v, &rc, &e.r, &err), CLST_OK);
    assert_int_equal(clst_jwk_thumbprint(clst_vault_release_signer(e.r), tp2), CLST_OK);
    assert_memory_equal(tp1, tp2, 32);
    chain = clst_vault_release_signer_chain(e.r);
    assert_int_equal(sk_X509_num(chain), 2);
    STACK_OF(X509) *roots = sk_X509_new_null();
    sk_X509_push(roots, ca);
    assert_int_equal(
        clst_x509_verify_chain(sk_X509_value(chain, 0), NULL, roots, NULL, T0, NULL, &err),
        CLST_OK);
    /* ...and not to another root */
    EVP_PKEY *k2 = NULL;
    assert_int_equal(clst_ec_generate(CLST_CURVE_P256, &k2), CLST_OK);
    X509 *other = X509_dup(ca);
    X509_set_pubkey(other, k2);
    X509_sign(other, k2, EVP_sha256());
    STACK_OF(X509) *roots2 = sk_X509_new_null();
    sk_X509_push(roots2, other);
    assert_int_not_equal(
        clst_x509_verify_chain(sk_X509_value(chain, 0), NULL, roots2, NULL, T0, NULL, &err),
        CLST_OK);
    sk_X509_pop_free(roots2, X509_free);
    sk_X509_free(roots);
    EVP_PKEY_free(k2);
    X509_free(ca);
    EVP_PKEY_free(cakey);
    penv_stop(&e);
}

/* ---- part 2: the wire format, opened with plain EVP ----------------------------------------- */

/* RSA-OAEP(md) of the AES key || AES-KWP(key material), opened without Cloister's code. */
static uint8_t *
evp_unwrap(EVP_PKEY *priv, const EVP_MD *md, const uint8_t *in, size_t in_size, size_t *out_size)
{
    size_t mod = (size_t)EVP_PKEY_get_size(priv);
    uint8_t aes[512]; /* RSA decryption wants room for a whole modulus */
    size_t aes_size = sizeof(aes);
    uint8_t *out = NULL;
    int len = 0, fin = 0;
    if (in_size <= mod + 8) {
        return NULL;
    }
    EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new(priv, NULL);
    assert_non_null(pc);
    assert_int_equal(EVP_PKEY_decrypt_init(pc), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_OAEP_PADDING), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_oaep_md(pc, md), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_mgf1_md(pc, md), 1);
    int ok = EVP_PKEY_decrypt(pc, aes, &aes_size, in, mod);
    EVP_PKEY_CTX_free(pc);
    if (ok != 1) {
        return NULL;
    }
    assert_int_equal(aes_size, 32);
    EVP_CIPHER_CTX *cc = EVP_CIPHER_CTX_new();
    out = malloc(in_size);
    EVP_CIPHER_CTX_set_flags(cc, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
    assert_int_equal(EVP_DecryptInit_ex(cc, EVP_aes_256_wrap_pad(), NULL, aes, NULL), 1);
    if (EVP_DecryptUpdate(cc, out, &len, in + mod, (int)(in_size - mod)) != 1 ||
        EVP_DecryptFinal_ex(cc, out + len, &fin) != 1) {
        free(out);
        out = NULL;
    }
    EVP_CIPHER_CTX_free(cc);
    OPENSSL_cleanse(aes, sizeof(aes));
    *out_size = (size_t)(len + fin);
    return out;
}

static uint8_t *
b64url_dec(const char *s, size_t *out_size)
{
    struct clst_buf b;
    clst_buf_init(&b, 1u << 20);
    assert_int_equal(clst_b64url_decode(s, strlen(s), &b), CLST_OK);
    uint8_t *p = clst_buf_steal(&b, out_size);
    return p;
}

static void
check_release(struct penv *e, enum clst_vault_release_enc enc, const EVP_MD *md)
{
    struct clst_vault_release_eval ev;
    struct clst_err err;
    struct clst_buf der, pub;
    EVP_PKEY *k = NULL;
    (void)e;
    /* the key to release: an EC P-384 key, as the vault stores it (PKCS#8 DER) */
    assert_int_equal(clst_ec_generate(CLST_CURVE_P384, &k), CLST_OK);
    clst_buf_init_secret(&der, 8192);
    assert_int_equal(clst_pkey_to_der(k, true, &der), CLST_OK);
    json_t *pj = NULL;
    assert_int_equal(clst_pkey_to_jwk(k, false, &pj), CLST_OK);
    char *pubtext = json_dumps(pj, JSON_COMPACT);
    clst_buf_init(&pub, 4096);
    clst_buf_append_str(&pub, pubtext);
    json_t *attrs = json_pack("{s:b,s:b,s:i}", "enabled", 1, "exportable", 1, "created", T0);
    json_t *tags = json_pack("{s:s}", "team", "red");
    struct clst_vault_release_key key = {
        .kid = "https://vault.example/keys/k/0123456789abcdef0123456789abcdef",
        .kty = "EC",
        .key_ops = CLST_KEYOP_SIGN | CLST_KEYOP_VERIFY,
        .public_data = pub.data,
        .public_size = pub.size,
        .material = der.data,
        .material_size = der.size,
        .attributes = attrs,
        .tags = tags,
        .policy_text = SIM_POLICY,
        .policy_immutable = true,
    };
    json_t *c = sim_claims(ISS_A);
    json_object_set_new(c, "nonce", json_string("abc"));
    char *t = sign_claims(&g_a, c);
    char *jws = NULL;
    assert_int_equal(eval(e, t, "abc", SIM_POLICY, &ev), CLST_OK);
    assert_int_equal(clst_vault_release_sign(e->r, &key, &ev, enc, "7.6", "abc", &jws, &err),
                     CLST_OK);
    clst_vault_release_eval_cleanup(&ev);

    /* the JWS verifies with the signing key; its header carries x5c of that key */
    struct clst_buf payload;
    json_t *hdr = NULL;
    clst_buf_init(&payload, 1u << 20);
    assert_int_equal(
        clst_jws_verify(jws, strlen(jws), clst_vault_release_signer(e->r), &payload, &hdr, &err),
        CLST_OK);
    assert_string_equal(json_string_value(json_object_get(hdr, "alg")), "RS256");
    const char *x5c0 = json_string_value(json_array_get(json_object_get(hdr, "x5c"), 0));
    assert_non_null(x5c0);
    struct clst_buf certder;
    clst_buf_init(&certder, 65536);
    assert_int_equal(clst_b64_decode(x5c0, strlen(x5c0), &certder), CLST_OK);
    X509 *cert = NULL;
    assert_int_equal(clst_x509_from_der(certder.data, certder.size, &cert, NULL), CLST_OK);
    assert_true(clst_pkey_public_equal(X509_get0_pubkey(cert),
                                       clst_jwk_pkey(clst_vault_release_signer(e->r))));
    X509_free(cert);
    clst_buf_cleanup(&certder);
    assert_non_null(json_object_get(hdr, "x5t#S256"));
    json_t *p = json_loadb((const char *)payload.data, payload.size, JSON_REJECT_DUPLICATES, NULL);
    assert_non_null(p);
    json_t *rq = json_object_get(p, "request");
    assert_string_equal(json_string_value(json_object_get(rq, "enc")),
                        clst_vault_release_enc_name(enc));
    assert_string_equal(json_string_value(json_object_get(rq, "nonce")), "abc");
    assert_string_equal(json_string_value(json_object_get(rq, "kid")), key.kid);
    assert_string_equal(json_string_value(json_object_get(rq, "api-version")), "7.6");
    json_t *kb = json_object_get(json_object_get(p, "response"), "key");
    json_t *jk = json_object_get(kb, "key");
    assert_string_equal(json_string_value(json_object_get(jk, "kid")), key.kid);
    assert_string_equal(json_string_value(json_object_get(jk, "kty")), "EC");
    assert_string_equal(json_string_value(json_object_get(jk, "crv")), "P-384");
    assert_null(json_object_get(jk, "d"));
    assert_true(json_is_true(json_object_get(json_object_get(kb, "attributes"), "exportable")));
    assert_string_equal(json_string_value(json_object_get(json_object_get(kb, "tags"), "team")),
                        "red");
    json_t *rp = json_object_get(kb, "release_policy");
    size_t polsize = 0;
    uint8_t *pol = b64url_dec(json_string_value(json_object_get(rp, "data")), &polsize);
    assert_int_equal(polsize, strlen(SIM_POLICY));
    assert_memory_equal(pol, SIM_POLICY, polsize);
    free(pol);
    assert_true(json_is_true(json_object_get(rp, "immutable")));

    /* key_hsm: base64url JSON {"schema_version","header":{"kid","alg":"dir","enc"},"ciphertext"} */
    size_t khsize = 0;
    uint8_t *kh = b64url_dec(json_string_value(json_object_get(jk, "key_hsm")), &khsize);
    json_t *khj = json_loadb((const char *)kh, khsize, JSON_REJECT_DUPLICATES, NULL);
    assert_non_null(khj);
    assert_string_equal(json_string_value(json_object_get(khj, "schema_version")), "1.0");
    json_t *khh = json_object_get(khj, "header");
    assert_string_equal(json_string_value(json_object_get(khh, "kid")), "tee-1");
    assert_string_equal(json_string_value(json_object_get(khh, "alg")), "dir");
    assert_string_equal(json_string_value(json_object_get(khh, "enc")),
                        clst_vault_release_enc_name(enc));
    size_t ctsize = 0;
    uint8_t *ct = b64url_dec(json_string_value(json_object_get(khj, "ciphertext")), &ctsize);
    size_t outsize = 0;
    uint8_t *out = evp_unwrap(g_tee, md, ct, ctsize, &outsize);
    assert_non_null(out);
    assert_int_equal(outsize, der.size);
    assert_memory_equal(out, der.data, der.size);
    /* and the unwrapped PKCS#8 is the same key */
    EVP_PKEY *back = NULL;
    assert_int_equal(clst_pkey_from_der(out, outsize, &back, NULL), CLST_OK);
    assert_true(clst_pkey_public_equal(back, k));
    EVP_PKEY_free(back);
    free(out);
    /* a flipped byte in either part fails; the wrong OAEP hash fails; the wrong key fails */
    ct[10] ^= 1;
    assert_null(evp_unwrap(g_tee, md, ct, ctsize, &outsize));
    ct[10] ^= 1;
    ct[ctsize - 3] ^= 1;
    assert_null(evp_unwrap(g_tee, md, ct, ctsize, &outsize));
    ct[ctsize - 3] ^= 1;
    assert_null(
        evp_unwrap(g_tee, md == EVP_sha1() ? EVP_sha256() : EVP_sha1(), ct, ctsize, &outsize));
    EVP_PKEY *wrong = NULL;
    assert_int_equal(clst_rsa_generate(2048, &wrong), CLST_OK);
    assert_null(evp_unwrap(wrong, md, ct, ctsize, &outsize));
    EVP_PKEY_free(wrong);
    /* the library's own unwrap agrees */
    struct clst_buf mine;
    clst_buf_init_secret(&mine, 65536);
    assert_int_equal(
        clst_rsa_aes_unwrap(g_tee, clst_vault_release_enc_hash(enc), ct, ctsize, &mine), CLST_OK);
    assert_int_equal(mine.size, der.size);
    clst_buf_cleanup(&mine);

    free(ct);
    json_decref(khj);
    free(kh);
    json_decref(p);
    json_decref(hdr);
    clst_buf_cleanup(&payload);
    free(jws);
    free(t);
    json_decref(attrs);
    json_decref(tags);
    free(pubtext);
    json_decref(pj);
    clst_buf_cleanup(&pub);
    clst_buf_cleanup(&der);
    EVP_PKEY_free(k);
}

static void
test_release_wire_format(void **state)
{
    struct penv e;
    (void)state;
    penv_start(&e, false, 0);
    check_release(&e, CLST_RELEASE_ENC_CKM_RSA_AES_KEY_WRAP, EVP_sha1());
    check_release(&e, CLST_RELEASE_ENC_RSA_AES_KEY_WRAP_256, EVP_sha256());
    check_release(&e, CLST_RELEASE_ENC_RSA_AES_KEY_WRAP_384, EVP_sha384());
    /* signing without an allowed evaluation is refused */
    struct clst_vault_release_eval ev;
    clst_vault_release_eval_init(&ev);
    struct clst_buf out;
    clst_buf_init(&out, 4096);
    assert_int_equal(clst_vault_release_wrap_for(&ev, CLST_RELEASE_ENC_CKM_RSA_AES_KEY_WRAP,
                                                 (const uint8_t *)"k", 1, &out, NULL),
                     CLST_E_INVAL);
    clst_buf_cleanup(&out);
    penv_stop(&e);
}

/* ---- decision records ----------------------------------------------------------------------- */

static void
test_decision_json(void **state)
{
    struct clst_vault_decision d;
    json_t *j = NULL;
    (void)state;
    memset(&d, 0, sizeof(d));
    d.time = T0;
    d.operation = "release";
    d.allowed = false;
    d.stage = "policy";
    d.reason = "denied at anyOf[0]";
    d.key_name = "k";
    d.jti = "j";
    assert_int_equal(clst_vault_decision_to_json(&d, &j), CLST_OK);
    assert_string_equal(json_string_value(json_object_get(j, "decision")), "deny");
    assert_string_equal(json_string_value(json_object_get(j, "time")), "2025-10-09T08:53:20Z");
    assert_string_equal(json_string_value(json_object_get(j, "stage")), "policy");
    assert_null(json_object_get(j, "issuer"));
    assert_true(json_is_false(json_object_get(j, "dryRun")));
    json_decref(j);
}

/* ---- part 3: the routes --------------------------------------------------------------------- */

struct sinkrec {
    pthread_mutex_t mu;
    unsigned count;
    char last_stage[32];
    char last_op[32];
    bool last_allowed;
    bool last_dry;
    char last_jti[64];
    char last_policy_hash[64];
};
static struct sinkrec g_sink = {PTHREAD_MUTEX_INITIALIZER, 0, "", "", false, false, "", ""};

static void
sink_record(void *ctx, const struct clst_vault_decision *d)
{
    struct sinkrec *s = ctx;
    pthread_mutex_lock(&s->mu);
    s->count++;
    snprintf(s->last_stage, sizeof(s->last_stage), "%s", d->stage != NULL ? d->stage : "");
    snprintf(s->last_op, sizeof(s->last_op), "%s", d->operation);
    snprintf(s->last_jti, sizeof(s->last_jti), "%s", d->jti != NULL ? d->jti : "");
    snprintf(s->last_policy_hash, sizeof(s->last_policy_hash), "%s",
             d->policy_hash != NULL ? d->policy_hash : "");
    s->last_allowed = d->allowed;
    s->last_dry = d->dry_run;
    pthread_mutex_unlock(&s->mu);
}

struct renv {
    char dir[128];
    char data[192];
    char log[256];
    char jwks[256];
    struct clst_server_datadir *dd;
    struct clst_vault_masterkey *mk;
    struct clst_vault_store *store;
    struct clst_vault *v;
    struct clst_vault_release *r;
    struct clst_server *srv;
    struct clst_client *cl;
    char url[64];
};

/* A JWKS served over HTTPS by the same server, for the URL source. */
static _Atomic int g_certs_hits;
static enum clst_status
h_test_certs(void *ctx, const struct clst_http_request *req, struct clst_http_response *resp,
             struct clst_err *err)
{
    (void)ctx;
    (void)req;
    (void)err;
    atomic_fetch_add(&g_certs_hits, 1);
    const struct authk *k[] = {&g_b};
    clst_http_response_json_new(resp, 200, jwks_of(k, 1));
    return CLST_OK;
}

static void
renv_start(struct renv *e)
{
    struct clst_err err;
    char path[320], ca[320];
    memset(e, 0, sizeof(*e));
    atomic_store(&g_now, T0);
    snprintf(e->dir, sizeof(e->dir), "/tmp/clst-release-XXXXXX");
    assert_non_null(mkdtemp(e->dir));
    snprintf(e->data, sizeof(e->data), "%s/data", e->dir);
    if (clst_server_datadir_open(e->data, "127.0.0.1", NULL, &e->dd, &err) != CLST_OK) {
        fail_msg("datadir: %s", err.msg);
    }
    snprintf(path, sizeof(path), "%s/master.key", e->data);
    assert_int_equal(clst_vault_masterkey_file_load(path, &e->mk, &err), CLST_OK);
    snprintf(path, sizeof(path), "%s/vault.db", e->data);
    struct clst_vault_sqlite_options so = {.path = path};
    assert_int_equal(clst_vault_store_open_sqlite(&so, e->mk, &g_clock, &e->store, &err), CLST_OK);
    struct clst_vault_config vc;
    clst_vault_config_init(&vc);
    vc.clock = &g_clock;
    assert_int_equal(clst_vault_new(e->store, e->mk, &vc, &e->v, &err), CLST_OK);
    assert_int_equal(clst_vault_bootstrap_admin(e->v, e->dd->admin_token_sha256, NULL, &err),
                     CLST_OK);
    struct clst_server_config cfg;
    clst_server_config_init(&cfg);
    cfg.host = "127.0.0.1";
    cfg.port = 0;
    cfg.thread_count = 2;
    cfg.tls_cert_pem = e->dd->server_cert_pem;
    cfg.tls_key_pem = (const char *)e->dd->server_key_pem->ptr;
    struct clst_server_route certs = {CLST_HTTP_GET, "/test-certs", 0, h_test_certs, NULL};
    if (clst_server_new(&cfg, &e->srv, &err) != CLST_OK ||
        clst_vault_register(e->v, e->srv, &err) != CLST_OK ||
        clst_server_route_add(e->srv, &certs, &err) != CLST_OK ||
        clst_server_start(e->srv, &err) != CLST_OK) {
        fail_msg("server: %s", err.msg);
    }
    snprintf(e->url, sizeof(e->url), "https://127.0.0.1:%u", (unsigned)clst_server_port(e->srv));
    snprintf(ca, sizeof(ca), "%s/ca.pem", e->data);
    struct clst_client_config cc;
    clst_client_config_init(&cc);
    cc.url = e->url;
    cc.ca_file = ca;
    cc.token = (const char *)e->dd->first_admin_token->ptr;
    assert_int_equal(clst_client_new(&cc, &e->cl, &err), CLST_OK);

    /* the engine, attached after the server started (the handlers look it up per request):
     * authority A from a file, authority B from this server's /test-certs over pinned TLS */
    snprintf(e->jwks, sizeof(e->jwks), "%s/a.json", e->dir);
    const struct authk *ka[] = {&g_a};
    json_t *ja = jwks_of(ka, 1);
    write_json(e->jwks, ja);
    json_decref(ja);
    char burl[128];
    snprintf(burl, sizeof(burl), "%s/test-certs", e->url);
    struct clst_vault_authority_config auth[2] = {
        {.issuer = ISS_A, .jwks_file = e->jwks},
        {.issuer = ISS_B, .jwks_url = burl, .ca_file = ca},
    };
    snprintf(e->log, sizeof(e->log), "%s/decisions.jsonl", e->dir);
    struct clst_vault_release_config rc;
    clst_vault_release_config_init(&rc);
    rc.authorities = auth;
    rc.authority_count = 2;
    rc.decision_log = e->log;
    rc.sink.record = sink_record;
    rc.sink.ctx = &g_sink;
    atomic_store(&g_certs_hits, 0);
    if (clst_vault_release_new(e->v, &rc, &e->r, &err) != CLST_OK) {
        fail_msg("release: %s", err.msg);
    }
    assert_int_equal(atomic_load(&g_certs_hits), 1);
}

static void
renv_stop(struct renv *e)
{
    clst_client_free(e->cl);
    clst_server_free(e->srv);
    clst_vault_release_free(e->r);
    clst_vault_free(e->v);
    clst_vault_store_close(e->store);
    clst_vault_masterkey_free(e->mk);
    clst_server_datadir_free(e->dd);
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", e->dir);
    assert_int_equal(system(cmd), 0);
}

static long
req(struct renv *e, struct clst_client *cl, const char *method, const char *path,
    const char *const *query, json_t *body, json_t **out)
{
    struct clst_client_response resp;
    struct clst_err err;
    memset(&resp, 0, sizeof(resp));
    if (clst_client_request(cl != NULL ? cl : e->cl, method, path, query, body, &resp, &err) !=
        CLST_OK) {
        fail_msg("%s %s: %s", method, path, err.msg);
    }
    long status = resp.status;
    if (out != NULL) {
        *out = resp.body;
        resp.body = NULL;
    }
    clst_client_response_cleanup(&resp);
    return status;
}

static char *
create_key(struct renv *e, const char *name, const char *kty, bool exportable, const char *policy)
{
    char path[128];
    json_t *out = NULL;
    json_t *body = json_pack("{s:s,s:{s:b}}", "kty", kty, "attributes", "exportable", exportable);
    if (policy != NULL) {
        char *p = b64u(policy, strlen(policy));
        json_object_set_new(body, "release_policy", json_pack("{s:s}", "data", p));
        free(p);
    }
    snprintf(path, sizeof(path), "/keys/%s/create", name);
    long st = req(e, NULL, "POST", path, NULL, body, &out);
    json_decref(body);
    if (st != 200) {
        char *t = json_dumps(out, 0);
        fail_msg("create %s: %ld %s", name, st, t);
    }
    const char *kid = json_string_value(json_object_get(json_object_get(out, "key"), "kid"));
    char *version = strdup(strrchr(kid, '/') + 1);
    json_decref(out);
    return version;
}

static json_t *
release_body(const char *token, const char *nonce, const char *enc)
{
    json_t *b = json_pack("{s:s}", "target", token);
    if (nonce != NULL) {
        json_object_set_new(b, "nonce", json_string(nonce));
    }
    if (enc != NULL) {
        json_object_set_new(b, "enc", json_string(enc));
    }
    return b;
}

static const json_t *
err_member(const json_t *body, const char *m)
{
    return json_object_get(json_object_get(body, "error"), m);
}

static void
test_routes(void **state)
{
    struct renv e;
    json_t *out = NULL, *body;
    (void)state;
    renv_start(&e);
    char *v1 = create_key(&e, "skr", "RSA", true, SIM_POLICY);
    char *tok = sign_claims(&g_a, sim_claims(ISS_A));
    unsigned before = g_sink.count;

    /* the SDK's form (latest version) */
    body = release_body(tok, NULL, NULL);
    assert_int_equal(req(&e, NULL, "POST", "/keys/skr/release", NULL, body, &out), 200);
    json_decref(body);
    const char *jws = json_string_value(json_object_get(out, "value"));
    assert_non_null(jws);
    struct clst_buf payload;
    clst_buf_init(&payload, 1u << 20);
    assert_int_equal(
        clst_jws_verify(jws, strlen(jws), clst_vault_release_signer(e.r), &payload, NULL, NULL),
        CLST_OK);
    json_t *p = json_loadb((const char *)payload.data, payload.size, 0, NULL);
    json_t *jk = json_object_get(json_object_get(json_object_get(p, "response"), "key"), "key");
    char kid[256];
    snprintf(kid, sizeof(kid), "%s/keys/skr/%s", e.url, v1);
    assert_string_equal(json_string_value(json_object_get(jk, "kid")), kid);
    assert_string_equal(json_string_value(json_object_get(jk, "kty")), "RSA");
    assert_null(json_object_get(jk, "d"));
    assert_non_null(json_object_get(jk, "n"));
    assert_string_equal(json_string_value(json_object_get(json_object_get(p, "request"), "enc")),
                        "CKM_RSA_AES_KEY_WRAP");
    /* the released material is the vault's key: it decrypts what the vault encrypts */
    size_t khsize = 0, ctsize = 0, msize = 0;
    uint8_t *kh = b64url_dec(json_string_value(json_object_get(jk, "key_hsm")), &khsize);
    json_t *khj = json_loadb((const char *)kh, khsize, 0, NULL);
    uint8_t *ct = b64url_dec(json_string_value(json_object_get(khj, "ciphertext")), &ctsize);
    uint8_t *m = evp_unwrap(g_tee, EVP_sha1(), ct, ctsize, &msize);
    assert_non_null(m);
    EVP_PKEY *released = NULL;
    assert_int_equal(clst_pkey_from_der(m, msize, &released, NULL), CLST_OK);
    json_t *encbody = json_pack("{s:s,s:s}", "alg", "RSA-OAEP-256", "value", "aGVsbG8gdGVl");
    json_t *encout = NULL;
    char path[256];
    snprintf(path, sizeof(path), "/keys/skr/%s/encrypt", v1);
    assert_int_equal(req(&e, NULL, "POST", path, NULL, encbody, &encout), 200);
    size_t csize = 0;
    uint8_t *c = b64url_dec(json_string_value(json_object_get(encout, "value")), &csize);
    struct clst_buf plain;
    clst_buf_init_secret(&plain, 4096);
    assert_int_equal(clst_rsa_oaep_decrypt(released, CLST_HASH_SHA256, c, csize, &plain), CLST_OK);
    assert_int_equal(plain.size, 9);
    assert_memory_equal(plain.data, "hello tee", 9);
    clst_buf_cleanup(&plain);
    free(c);
    json_decref(encout);
    json_decref(encbody);
    EVP_PKEY_free(released);
    free(m);
    free(ct);
    json_decref(khj);
    free(kh);
    json_decref(p);
    clst_buf_cleanup(&payload);
    json_decref(out);
    assert_int_equal(g_sink.count, before + 1);
    assert_true(g_sink.last_allowed);
    assert_string_equal(g_sink.last_op, "release");
    assert_string_equal(g_sink.last_jti, "jti-0001");
    assert_int_equal(strlen(g_sink.last_policy_hash), 43);

    /* a given version, the other enc values */
    snprintf(path, sizeof(path), "/keys/skr/%s/release", v1);
    body = release_body(tok, NULL, "RSA_AES_KEY_WRAP_256");
    assert_int_equal(req(&e, NULL, "POST", path, NULL, body, &out), 200);
    json_decref(out);
    json_decref(body);
    body = release_body(tok, NULL, "RSA_AES_KEY_WRAP_384");
    assert_int_equal(req(&e, NULL, "POST", "/keys/skr//release", NULL, body, &out), 200);
    json_decref(out);
    json_decref(body);

    /* a second mrenclave: 403 naming the path and the claim */
    json_t *cl = sim_claims(ISS_A);
    json_object_set_new(cl, "x-cloister-sim-mrenclave", json_string("b2b2"));
    char *tok2 = sign_claims(&g_a, cl);
    body = release_body(tok2, NULL, NULL);
    assert_int_equal(req(&e, NULL, "POST", "/keys/skr/release", NULL, body, &out), 403);
    assert_string_equal(json_string_value(err_member(out, "code")), "Forbidden");
    const char *msg = json_string_value(err_member(out, "message"));
    assert_non_null(strstr(msg, "anyOf[0].allOf[2]"));
    assert_non_null(strstr(msg, "x-cloister-sim-mrenclave"));
    const json_t *den = err_member(out, "denial");
    assert_string_equal(json_string_value(json_object_get(den, "stage")), "policy");
    const json_t *dd = json_object_get(den, "denial");
    assert_string_equal(json_string_value(json_object_get(dd, "path")), "anyOf[0].allOf[2]");
    assert_string_equal(json_string_value(json_object_get(dd, "claim")),
                        "x-cloister-sim-mrenclave");
    assert_string_equal(json_string_value(json_object_get(dd, "expected")), MRENC);
    assert_string_equal(json_string_value(json_object_get(dd, "actual")), "b2b2");
    json_decref(out);
    assert_false(g_sink.last_allowed);
    assert_string_equal(g_sink.last_stage, "policy");

    /* dry run: 200 with the decision and the whole trace, nothing released */
    const char *dq[] = {"dryRun", "true", NULL};
    assert_int_equal(req(&e, NULL, "POST", "/keys/skr/release", dq, body, &out), 200);
    assert_string_equal(json_string_value(json_object_get(out, "decision")), "deny");
    assert_true(json_is_true(json_object_get(out, "dryRun")));
    assert_null(json_object_get(out, "value"));
    assert_true(json_array_size(json_object_get(out, "trace")) >= 4);
    json_decref(out);
    assert_true(g_sink.last_dry);
    json_decref(body);
    body = release_body(tok, NULL, NULL);
    assert_int_equal(req(&e, NULL, "POST", "/keys/skr/release", dq, body, &out), 200);
    assert_string_equal(json_string_value(json_object_get(out, "decision")), "allow");
    assert_string_equal(json_string_value(json_object_get(json_object_get(out, "teeKey"), "kid")),
                        "tee-1");
    json_decref(out);
    const char *dqbad[] = {"dryRun", "maybe", NULL};
    assert_int_equal(req(&e, NULL, "POST", "/keys/skr/release", dqbad, body, NULL), 400);
    json_decref(body);

    /* bad bodies (400), an unknown key or version (404) */
    json_t *b1 = json_pack("{s:s}", "nonce", "x");
    assert_int_equal(req(&e, NULL, "POST", "/keys/skr/release", NULL, b1, NULL), 400);
    json_decref(b1);
    b1 = json_pack("{s:s,s:s}", "target", tok, "extra", "x");
    assert_int_equal(req(&e, NULL, "POST", "/keys/skr/release", NULL, b1, &out), 400);
    assert_non_null(strstr(json_string_value(err_member(out, "message")), "extra"));
    json_decref(out);
    json_decref(b1);
    b1 = release_body(tok, NULL, "RSA-OAEP");
    assert_int_equal(req(&e, NULL, "POST", "/keys/skr/release", NULL, b1, NULL), 400);
    json_decref(b1);
    b1 = json_pack("{s:i}", "target", 1);
    assert_int_equal(req(&e, NULL, "POST", "/keys/skr/release", NULL, b1, NULL), 400);
    json_decref(b1);
    b1 = release_body("", NULL, NULL);
    assert_int_equal(req(&e, NULL, "POST", "/keys/skr/release", NULL, b1, NULL), 400);
    json_decref(b1);
    b1 = release_body(tok, NULL, NULL);
    assert_int_equal(req(&e, NULL, "POST", "/keys/nope/release", NULL, b1, &out), 404);
    assert_string_equal(json_string_value(err_member(out, "code")), "KeyNotFound");
    json_decref(out);
    assert_int_equal(
        req(&e, NULL, "POST", "/keys/skr/00000000000000000000000000000000/release", NULL, b1, NULL),
        404);
    assert_int_equal(req(&e, NULL, "POST", "/keys/bad_name/release", NULL, b1, NULL), 400);

    /* a nonce that the token does not carry; a forged token; an untrusted issuer */
    json_t *bn = release_body(tok, "n-1", NULL);
    assert_int_equal(req(&e, NULL, "POST", "/keys/skr/release", NULL, bn, &out), 403);
    assert_string_equal(json_string_value(json_object_get(err_member(out, "denial"), "stage")),
                        "nonce");
    json_decref(out);
    json_decref(bn);
    char *forged = strdup(tok);
    forged[strlen(forged) - 4] = forged[strlen(forged) - 4] == 'A' ? 'B' : 'A';
    bn = release_body(forged, NULL, NULL);
    assert_int_equal(req(&e, NULL, "POST", "/keys/skr/release", NULL, bn, &out), 403);
    assert_string_equal(json_string_value(json_object_get(err_member(out, "denial"), "stage")),
                        "token");
    json_decref(out);
    json_decref(bn);
    free(forged);
    char *tx = sign_claims(&g_x, sim_claims(ISS_X));
    bn = release_body(tx, NULL, NULL);
    assert_int_equal(req(&e, NULL, "POST", "/keys/skr/release", NULL, bn, &out), 403);
    assert_non_null(strstr(json_string_value(err_member(out, "message")), "not a trusted"));
    json_decref(out);
    json_decref(bn);
    free(tx);

    /* authority B, whose JWKS comes over HTTPS from /test-certs with a pinned CA */
    char *v2 = create_key(&e, "snp", "oct", true, TWO_AUTH_POLICY);
    json_t *cb = claims(ISS_B, "sevsnpvm", good_keys());
    json_object_set_new(cb, "x-ms-sevsnpvm-is-debuggable", json_false());
    char *tb = sign_claims(&g_b, cb);
    bn = release_body(tb, NULL, NULL);
    assert_int_equal(req(&e, NULL, "POST", "/keys/snp/release", NULL, bn, &out), 200);
    json_decref(out);
    assert_int_equal(atomic_load(&g_certs_hits), 1); /* cached */
    /* the sim token of A against the same key: allowed by A's member */
    json_t *ba = release_body(tok, NULL, NULL);
    assert_int_equal(req(&e, NULL, "POST", "/keys/snp/release", NULL, ba, &out), 200);
    json_decref(out);
    json_decref(ba);
    json_decref(bn);
    free(tb);
    free(v2);

    /* the key's state: not exportable (and so without a policy), disabled */
    char *v3 = create_key(&e, "plain", "RSA", false, NULL);
    assert_int_equal(req(&e, NULL, "POST", "/keys/plain/release", NULL, b1, &out), 403);
    assert_string_equal(json_string_value(json_object_get(err_member(out, "denial"), "stage")),
                        "key");
    assert_non_null(strstr(json_string_value(err_member(out, "message")), "not exportable"));
    json_decref(out);
    free(v3);
    json_t *dis = json_pack("{s:{s:b}}", "attributes", "enabled", 0);
    assert_int_equal(req(&e, NULL, "PATCH", "/keys/skr/", NULL, dis, NULL), 200);
    json_decref(dis);
    assert_int_equal(req(&e, NULL, "POST", "/keys/skr/release", NULL, b1, &out), 403);
    assert_non_null(strstr(json_string_value(err_member(out, "message")), "disabled"));
    json_decref(out);

    /* the release permission: a Crypto User may not release; a Crypto Service Release User may */
    const char *roles[] = {"Crypto User", "Crypto Service Release User"};
    const long want[] = {403, 403 /* the key is disabled; the decision is the vault's */};
    for (int i = 0; i < 2; i++) {
        json_t *pb = json_pack("{s:s,s:[{s:s,s:s}]}", "name", roles[i], "roles", "role", roles[i],
                               "scope", "/keys/skr");
        json_t *po = NULL;
        assert_int_equal(req(&e, NULL, "POST", "/principals", NULL, pb, &po), 200);
        const char *ptok = json_string_value(json_object_get(po, "token"));
        assert_non_null(ptok);
        struct clst_client_config cc;
        struct clst_client *pc = NULL;
        char ca[320];
        snprintf(ca, sizeof(ca), "%s/ca.pem", e.data);
        clst_client_config_init(&cc);
        cc.url = e.url;
        cc.ca_file = ca;
        cc.token = ptok;
        assert_int_equal(clst_client_new(&cc, &pc, NULL), CLST_OK);
        json_t *o2 = NULL;
        assert_int_equal(req(&e, pc, "POST", "/keys/skr/release", NULL, b1, &o2), want[i]);
        const char *m2 = json_string_value(err_member(o2, "message"));
        if (i == 0) {
            assert_non_null(strstr(m2, "keys/release"));
        } else {
            assert_non_null(strstr(m2, "disabled"));
        }
        json_decref(o2);
        clst_client_free(pc);
        json_decref(po);
        json_decref(pb);
    }
    json_decref(b1);

    /* the decision log has one JSON line per decision, none with a token in it */
    size_t lsize = 0;
    unsigned char *log = tu_read_file(e.log, &lsize);
    assert_non_null(log);
    unsigned lines = 0;
    for (size_t i = 0; i < lsize; i++) {
        lines += log[i] == '\n';
    }
    assert_true(lines >= 10);
    assert_null(strstr((char *)log, tok));
    char *first_nl = strchr((char *)log, '\n');
    json_t *l1 = json_loadb((const char *)log, (size_t)(first_nl - (char *)log), 0, NULL);
    assert_non_null(l1);
    assert_string_equal(json_string_value(json_object_get(l1, "decision")), "allow");
    assert_string_equal(json_string_value(json_object_get(l1, "keyName")), "skr");
    assert_string_equal(json_string_value(json_object_get(l1, "principal")), "admin");
    assert_string_equal(json_string_value(json_object_get(l1, "teeKey")), "tee-1");
    json_decref(l1);
    struct stat sb;
    assert_int_equal(stat(e.log, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    free(log);

    free(tok);
    free(tok2);
    free(v1);
    renv_stop(&e);
}

/* unwrapkey and decrypt for a recipient TEE: the result only ever wrapped to the TEE's key. */
static void
test_recipient_ops(void **state)
{
    struct renv e;
    json_t *out = NULL, *body;
    char path[256];
    (void)state;
    renv_start(&e);
    char *v = create_key(&e, "master", "RSA", true, SIM_POLICY);
    char *tok = sign_claims(&g_a, sim_claims(ISS_A));
    const uint8_t dek[32] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16,
                             17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
    char *dek64 = b64u(dek, sizeof(dek));
    body = json_pack("{s:s,s:s}", "alg", "RSA-OAEP-256", "value", dek64);
    snprintf(path, sizeof(path), "/keys/master/%s/wrapkey", v);
    assert_int_equal(req(&e, NULL, "POST", path, NULL, body, &out), 200);
    json_decref(body);
    char *wrapped = strdup(json_string_value(json_object_get(out, "value")));
    json_decref(out);
    unsigned before = g_sink.count;

    /* allowed: ciphertextForRecipient opens with the TEE key to the DEK; no "value" */
    body = json_pack("{s:s,s:s,s:s}", "alg", "RSA-OAEP-256", "value", wrapped, "target", tok);
    snprintf(path, sizeof(path), "/keys/master/%s/unwrapkey", v);
    assert_int_equal(req(&e, NULL, "POST", path, NULL, body, &out), 200);
    assert_null(json_object_get(out, "value"));
    assert_string_equal(json_string_value(json_object_get(out, "recipient")), "tee-1");
    assert_string_equal(json_string_value(json_object_get(out, "enc")), "CKM_RSA_AES_KEY_WRAP");
    size_t csize = 0, msize = 0;
    uint8_t *c =
        b64url_dec(json_string_value(json_object_get(out, "ciphertextForRecipient")), &csize);
    uint8_t *m = evp_unwrap(g_tee, EVP_sha1(), c, csize, &msize);
    assert_non_null(m);
    assert_int_equal(msize, sizeof(dek));
    assert_memory_equal(m, dek, sizeof(dek));
    free(m);
    free(c);
    json_decref(out);
    json_decref(body);
    assert_int_equal(g_sink.count, before + 1);
    assert_true(g_sink.last_allowed);
    assert_string_equal(g_sink.last_op, "unwrapkey");

    /* decrypt too, with RSA_AES_KEY_WRAP_256 */
    body = json_pack("{s:s,s:s}", "alg", "RSA-OAEP", "value", "c2VjcmV0IGRhdGE");
    snprintf(path, sizeof(path), "/keys/master/%s/encrypt", v);
    assert_int_equal(req(&e, NULL, "POST", path, NULL, body, &out), 200);
    json_decref(body);
    body = json_pack("{s:s,s:O,s:s,s:s}", "alg", "RSA-OAEP", "value", json_object_get(out, "value"),
                     "target", tok, "enc", "RSA_AES_KEY_WRAP_256");
    json_decref(out);
    snprintf(path, sizeof(path), "/keys/master/%s/decrypt", v);
    assert_int_equal(req(&e, NULL, "POST", path, NULL, body, &out), 200);
    c = b64url_dec(json_string_value(json_object_get(out, "ciphertextForRecipient")), &csize);
    m = evp_unwrap(g_tee, EVP_sha256(), c, csize, &msize);
    assert_non_null(m);
    assert_int_equal(msize, 11);
    assert_memory_equal(m, "secret data", 11);
    free(m);
    free(c);
    json_decref(out);
    json_decref(body);
    assert_string_equal(g_sink.last_op, "decrypt");

    /* denied: another mrenclave → 403 with the explanation, nothing decrypted */
    json_t *cl = sim_claims(ISS_A);
    json_object_set_new(cl, "x-cloister-sim-mrenclave", json_string("b2b2"));
    char *tok2 = sign_claims(&g_a, cl);
    body = json_pack("{s:s,s:s,s:s}", "alg", "RSA-OAEP-256", "value", wrapped, "target", tok2);
    snprintf(path, sizeof(path), "/keys/master/%s/unwrapkey", v);
    assert_int_equal(req(&e, NULL, "POST", path, NULL, body, &out), 403);
    assert_string_equal(json_string_value(json_object_get(err_member(out, "denial"), "stage")),
                        "policy");
    assert_null(json_object_get(out, "ciphertextForRecipient"));
    json_decref(out);
    json_decref(body);
    assert_false(g_sink.last_allowed);
    assert_string_equal(g_sink.last_op, "unwrapkey");
    /* a nonce that does not match */
    body = json_pack("{s:s,s:s,s:s,s:s}", "alg", "RSA-OAEP-256", "value", wrapped, "target", tok,
                     "nonce", "n");
    assert_int_equal(req(&e, NULL, "POST", path, NULL, body, &out), 403);
    json_decref(out);
    json_decref(body);
    /* a key without a policy (non-exportable) cannot serve a recipient */
    char *v2 = create_key(&e, "plainkey", "RSA", false, NULL);
    body = json_pack("{s:s,s:s}", "alg", "RSA-OAEP-256", "value", dek64);
    snprintf(path, sizeof(path), "/keys/plainkey/%s/wrapkey", v2);
    assert_int_equal(req(&e, NULL, "POST", path, NULL, body, &out), 200);
    json_decref(body);
    body = json_pack("{s:s,s:O,s:s}", "alg", "RSA-OAEP-256", "value", json_object_get(out, "value"),
                     "target", tok);
    json_decref(out);
    snprintf(path, sizeof(path), "/keys/plainkey/%s/unwrapkey", v2);
    assert_int_equal(req(&e, NULL, "POST", path, NULL, body, &out), 403);
    assert_string_equal(json_string_value(json_object_get(err_member(out, "denial"), "stage")),
                        "key");
    json_decref(out);
    json_decref(body);
    /* target on encrypt/wrapkey/sign, nonce without target, a bad enc: 400 */
    body = json_pack("{s:s,s:s,s:s}", "alg", "RSA-OAEP", "value", "AAAA", "target", tok);
    snprintf(path, sizeof(path), "/keys/master/%s/encrypt", v);
    assert_int_equal(req(&e, NULL, "POST", path, NULL, body, NULL), 400);
    snprintf(path, sizeof(path), "/keys/master/%s/wrapkey", v);
    assert_int_equal(req(&e, NULL, "POST", path, NULL, body, NULL), 400);
    json_decref(body);
    body = json_pack("{s:s,s:s,s:s}", "alg", "RSA-OAEP-256", "value", wrapped, "nonce", "n");
    snprintf(path, sizeof(path), "/keys/master/%s/unwrapkey", v);
    assert_int_equal(req(&e, NULL, "POST", path, NULL, body, NULL), 400);
    json_decref(body);
    body = json_pack("{s:s,s:s,s:s,s:s}", "alg", "RSA-OAEP-256", "value", wrapped, "target", tok,
                     "enc", "A256KW");
    assert_int_equal(req(&e, NULL, "POST", path, NULL, body, NULL), 400);
    json_decref(body);
    /* without a target the operation is the ordinary one (plaintext to the caller) */
    body = json_pack("{s:s,s:s}", "alg", "RSA-OAEP-256", "value", wrapped);
    assert_int_equal(req(&e, NULL, "POST", path, NULL, body, &out), 200);
    assert_string_equal(json_string_value(json_object_get(out, "value")), dek64);
    json_decref(out);
    json_decref(body);

    free(v2);
    free(tok2);
    free(wrapped);
    free(dek64);
    free(tok);
    free(v);
    renv_stop(&e);
}

/* The cloud's rules at creation and update: exportable ⇔ release policy. */
static void
test_exportable_rules(void **state)
{
    struct renv e;
    json_t *out = NULL;
    (void)state;
    renv_start(&e);
    char *p64 = b64u(SIM_POLICY, strlen(SIM_POLICY));
    json_t *b = json_pack("{s:s,s:{s:b}}", "kty", "RSA", "attributes", "exportable", 1);
    assert_int_equal(req(&e, NULL, "POST", "/keys/x1/create", NULL, b, &out), 400);
    assert_non_null(strstr(json_string_value(err_member(out, "message")), "AKV.SKR.1004"));
    json_decref(out);
    json_decref(b);
    b = json_pack("{s:s,s:{s:s}}", "kty", "RSA", "release_policy", "data", p64);
    assert_int_equal(req(&e, NULL, "POST", "/keys/x2/create", NULL, b, &out), 400);
    assert_non_null(strstr(json_string_value(err_member(out, "message")), "AKV.SKR.1005"));
    json_decref(out);
    json_decref(b);
    char *v = create_key(&e, "x3", "EC", false, NULL);
    b = json_pack("{s:{s:s}}", "release_policy", "data", p64);
    assert_int_equal(req(&e, NULL, "PATCH", "/keys/x3/", NULL, b, &out), 400);
    assert_non_null(strstr(json_string_value(err_member(out, "message")), "AKV.SKR.1005"));
    json_decref(out);
    json_decref(b);
    free(v);
    free(p64);
    renv_stop(&e);
}

/* Without an engine the routes answer 403 with a message saying release is not enabled. */
static void
test_routes_without_engine(void **state)
{
    struct renv e;
    json_t *out = NULL;
    (void)state;
    renv_start(&e);
    clst_vault_release_free(e.r);
    e.r = NULL;
    char *v = create_key(&e, "k", "oct", true, SIM_POLICY);
    json_t *b = release_body("a.b.c", NULL, NULL);
    assert_int_equal(req(&e, NULL, "POST", "/keys/k/release", NULL, b, &out), 403);
    assert_non_null(strstr(json_string_value(err_member(out, "message")), "not enabled"));
    json_decref(out);
    json_decref(b);
    free(v);
    renv_stop(&e);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_enc_and_authority_parse),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_good_token),
        cmocka_unit_test(test_bad_tokens),
        cmocka_unit_test(test_unknown_kid_and_rotation),
        cmocka_unit_test(test_nonce),
        cmocka_unit_test(test_tee_key_choice),
        cmocka_unit_test(test_policy_denials_and_redaction),
        cmocka_unit_test(test_fn_source_and_issuer_later),
        cmocka_unit_test(test_signing_key_persists),
        cmocka_unit_test(test_release_wire_format),
        cmocka_unit_test(test_decision_json),
        cmocka_unit_test(test_routes),
        cmocka_unit_test(test_recipient_ops),
        cmocka_unit_test(test_exportable_rules),
        cmocka_unit_test(test_routes_without_engine),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
