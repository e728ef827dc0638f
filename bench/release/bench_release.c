/*
 * bench_release: secure key releases per second, beside `openssl speed ecdsap256 rsa2048` run in
 * the same process tree, and the ratio to the two-core crypto ceiling those figures give.
 *
 *   bench_release [--seconds N] [--threads T]
 *
 * One release = clst_vault_release_evaluate (ES256 verification of the attestation token with
 * the authority's cached JWKS, the exp/nbf/iat checks, the nonce, parsing and evaluating a
 * three-condition release policy, choosing the TEE's RSA-2048 key from x-ms-runtime.keys) and
 * clst_vault_release_sign (CKM_RSA_AES_KEY_WRAP of an RSA-2048 PKCS#8 key to the TEE key:
 * RSA-OAEP + AES-KWP, the key_hsm and payload JSON, and the RS256 JWS with the vault's RSA-2048
 * release-signing key). The HTTP layer and the store are not in the loop (the key's material is
 * already unsealed), so this is the release engine's own rate. The TEE's public key is validated
 * once per distinct key (OpenSSL's SP 800-56B check of an RSA public key runs a Miller-Rabin test)
 * and then cached, as when a TEE releases several keys with one token; the cost of that first
 * validation is printed separately.
 *
 * Crypto ceiling: every release does one ECDSA P-256 verification, one RSA-2048 public-key
 * operation (OAEP) and one RSA-2048 private-key operation (the signature), so one core can do at
 * most 1 / (1/ecdsa_verify + 1/rsa_verify + 1/rsa_sign) per second; the two-core ceiling is twice
 * that. `openssl speed -elapsed` counts per wall-clock second, as this program does, so both feel
 * the same load on a shared machine. Target: >= 25% of the two-core ceiling with 2 threads.
 * A benchmark, not a test: it asserts nothing about speed.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cloister/crypto.h>
#include <cloister/jose.h>
#include <cloister/vault.h>
#include <cloister/vault_store.h>

#include "vault/keymat.h"
#include "vault/release.h"

#define ISS "https://attest.bench.example"
#define MRENC                                                                                      \
    "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1" \
    "a1"
#define POLICY                                                                                     \
    "{\"version\":\"1.0.0\",\"anyOf\":[{\"authority\":\"" ISS "\",\"allOf\":["                     \
    "{\"claim\":\"x-ms-attestation-type\",\"equals\":\"sim\"},"                                    \
    "{\"claim\":\"x-cloister-sim-is-debuggable\",\"equals\":false},"                               \
    "{\"claim\":\"x-cloister-sim-mrenclave\",\"equals\":\"" MRENC "\"}]}]}"

static void
die(const char *what, const struct clst_err *err)
{
    fprintf(stderr, "bench_release: %s%s%s\n", what, err != NULL ? ": " : "",
            err != NULL ? err->msg : "");
    exit(1);
}

/* ---- openssl speed ------------------------------------------------------------------------- */

struct speed {
    double rsa_sign, rsa_verify, ecdsa_sign, ecdsa_verify;
};

static void
openssl_speed(unsigned seconds, struct speed *out)
{
    char cmd[128], line[512];
    memset(out, 0, sizeof(*out));
    snprintf(cmd, sizeof(cmd), "openssl speed -elapsed -seconds %u ecdsap256 rsa2048 2>/dev/null",
             seconds);
    FILE *p = popen(cmd, "r");
    if (p == NULL) {
        die("cannot run openssl speed", NULL);
    }
    while (fgets(line, sizeof(line), p) != NULL) {
        double a, b, c, d;
        /* "rsa 2048 bits 0.000279s 0.000017s   3581.2  59036.4" */
        if (sscanf(line, " rsa 2048 bits %lfs %lfs %lf %lf", &a, &b, &c, &d) == 4) {
            out->rsa_sign = c;
            out->rsa_verify = d;
        }
        /* " 256 bits ecdsa (nistp256)   0.0000s   0.0001s  48206.2  16648.4" */
        if (sscanf(line, " 256 bits ecdsa (nistp256) %lfs %lfs %lf %lf", &a, &b, &c, &d) == 4) {
            out->ecdsa_sign = c;
            out->ecdsa_verify = d;
        }
    }
    pclose(p);
    if (out->rsa_sign <= 0 || out->rsa_verify <= 0 || out->ecdsa_verify <= 0) {
        die("could not read 'openssl speed ecdsap256 rsa2048' (is openssl on PATH?)", NULL);
    }
}

/* ---- the release set-up --------------------------------------------------------------------- */

static struct clst_jwk *g_auth; /* the authority's ES256 key */
static char *g_token;
static struct clst_vault_release *g_rel;
static struct clst_vault_release_key g_key;
static atomic_bool g_stop;
static atomic_uint_fast64_t g_count;

static enum clst_status
jwks_fn(void *ctx, json_t **out, struct clst_err *err)
{
    json_t *k = NULL;
    (void)ctx;
    (void)err;
    if (clst_jwk_to_json(g_auth, false, &k) != CLST_OK) {
        return CLST_E_NOMEM;
    }
    *out = json_pack("{s:[o]}", "keys", k);
    return *out != NULL ? CLST_OK : CLST_E_NOMEM;
}

static void
one_release(void)
{
    struct clst_vault_release_eval ev;
    struct clst_err err;
    char *jws = NULL;
    clst_vault_release_eval_init(&ev);
    if (clst_vault_release_evaluate(g_rel, g_token, strlen(g_token), "bench-nonce", POLICY, &ev,
                                    &err) != CLST_OK) {
        die("evaluate", &err);
    }
    if (clst_vault_release_sign(g_rel, &g_key, &ev, CLST_RELEASE_ENC_CKM_RSA_AES_KEY_WRAP, "7.6",
                                "bench-nonce", &jws, &err) != CLST_OK) {
        die("sign", &err);
    }
    free(jws);
    clst_vault_release_eval_cleanup(&ev);
}

static void *
worker(void *arg)
{
    (void)arg;
    while (!atomic_load(&g_stop)) {
        one_release();
        atomic_fetch_add(&g_count, 1);
    }
    return NULL;
}

static double
run(unsigned threads, unsigned seconds)
{
    pthread_t t[64];
    atomic_store(&g_stop, false);
    atomic_store(&g_count, 0);
    uint64_t t0 = clst_monotonic_ns();
    for (unsigned i = 0; i < threads; i++) {
        if (pthread_create(&t[i], NULL, worker, NULL) != 0) {
            die("pthread_create", NULL);
        }
    }
    sleep(seconds);
    atomic_store(&g_stop, true);
    for (unsigned i = 0; i < threads; i++) {
        pthread_join(t[i], NULL);
    }
    double el = (double)(clst_monotonic_ns() - t0) / 1e9;
    return (double)atomic_load(&g_count) / el;
}

int
main(int argc, char **argv)
{
    unsigned seconds = 3, threads = 2;
    struct clst_err err;
    for (int i = 1; i < argc; i++) {
        uint64_t v;
        if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc &&
            clst_parse_u64(argv[++i], 1, 600, &v, NULL) == CLST_OK) {
            seconds = (unsigned)v;
        } else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc &&
                   clst_parse_u64(argv[++i], 1, 64, &v, NULL) == CLST_OK) {
            threads = (unsigned)v;
        } else {
            fprintf(stderr, "usage: bench_release [--seconds 1..600] [--threads 1..64]\n");
            return 2;
        }
    }

    /* a vault over a temporary store (the engine keeps its signing key there) */
    char dir[] = "/tmp/clst-bench-release-XXXXXX";
    char mkp[128], db[128];
    if (mkdtemp(dir) == NULL) {
        die("mkdtemp", NULL);
    }
    snprintf(mkp, sizeof(mkp), "%s/master.key", dir);
    snprintf(db, sizeof(db), "%s/vault.db", dir);
    struct clst_vault_masterkey *mk = NULL;
    struct clst_vault_store *store = NULL;
    struct clst_vault *vault = NULL;
    struct clst_vault_sqlite_options so = {.path = db};
    if (clst_vault_masterkey_file_create(mkp, &err) != CLST_OK ||
        clst_vault_masterkey_file_load(mkp, &mk, &err) != CLST_OK ||
        clst_vault_store_open_sqlite(&so, mk, NULL, &store, &err) != CLST_OK ||
        clst_vault_new(store, mk, NULL, &vault, &err) != CLST_OK) {
        die("vault", &err);
    }

    /* the authority, the TEE key, the token */
    EVP_PKEY *ak = NULL, *tee = NULL, *released = NULL;
    if (clst_ec_generate(CLST_CURVE_P256, &ak) != CLST_OK ||
        clst_jwk_from_pkey(ak, "bench-1", CLST_JWS_ALG_NONE, &g_auth, &err) != CLST_OK ||
        clst_rsa_generate(2048, &tee) != CLST_OK || clst_rsa_generate(2048, &released) != CLST_OK) {
        die("keys", &err);
    }
    json_t *teejwk = NULL;
    if (clst_pkey_to_jwk(tee, false, &teejwk) != CLST_OK) {
        die("tee jwk", NULL);
    }
    json_object_set_new(teejwk, "kid", json_string("tee-1"));
    json_object_set_new(teejwk, "key_ops", json_pack("[s]", "encrypt"));
    int64_t now = clst_clock_now(clst_clock_system());
    json_t *claims = json_pack("{s:s,s:I,s:I,s:I,s:s,s:s,s:s,s:b,s:s,s:{s:[o]}}", "iss", ISS, "iat",
                               (json_int_t)now, "nbf", (json_int_t)now, "exp",
                               (json_int_t)(now + 3600), "jti", "bench", "nonce", "bench-nonce",
                               "x-ms-attestation-type", "sim", "x-cloister-sim-is-debuggable", 0,
                               "x-cloister-sim-mrenclave", MRENC, "x-ms-runtime", "keys", teejwk);
    if (claims == NULL || clst_jwt_sign(g_auth, claims, NULL, &g_token, &err) != CLST_OK) {
        die("token", &err);
    }
    json_decref(claims);

    struct clst_vault_authority_config auth = {.issuer = ISS, .jwks_fn = jwks_fn};
    struct clst_vault_release_config rc;
    clst_vault_release_config_init(&rc);
    rc.authorities = &auth;
    rc.authority_count = 1;
    if (clst_vault_release_new(vault, &rc, &g_rel, &err) != CLST_OK) {
        die("release engine", &err);
    }

    /* the key to release: RSA-2048, as the store keeps it */
    struct clst_buf der, pub;
    json_t *pubj = NULL;
    clst_buf_init_secret(&der, 8192);
    clst_buf_init(&pub, 8192);
    if (clst_pkey_to_der(released, true, &der) != CLST_OK ||
        clst_pkey_to_jwk(released, false, &pubj) != CLST_OK) {
        die("key to release", NULL);
    }
    char *pubtext = json_dumps(pubj, JSON_COMPACT);
    clst_buf_append_str(&pub, pubtext);
    json_t *attrs = json_pack("{s:b,s:b}", "enabled", 1, "exportable", 1);
    g_key.kid = "https://vault.bench.example/keys/k/0123456789abcdef0123456789abcdef";
    g_key.kty = "RSA";
    g_key.key_ops = CLST_KEYOP_ENCRYPT | CLST_KEYOP_DECRYPT;
    g_key.public_data = pub.data;
    g_key.public_size = pub.size;
    g_key.material = der.data;
    g_key.material_size = der.size;
    g_key.attributes = attrs;
    g_key.policy_text = POLICY;

    struct speed sp;
    char load[64] = "?";
    FILE *lf = fopen("/proc/loadavg", "r");
    if (lf != NULL) {
        if (fgets(load, sizeof(load), lf) == NULL) {
            snprintf(load, sizeof(load), "?");
        }
        fclose(lf);
        load[strcspn(load, "\n")] = '\0';
    }
    printf("bench_release: %u s per measurement, %ld online CPUs, load average %s\n", seconds,
           sysconf(_SC_NPROCESSORS_ONLN), load);
    fflush(stdout);
    openssl_speed(seconds, &sp);
    double per_core = 1.0 / (1.0 / sp.ecdsa_verify + 1.0 / sp.rsa_verify + 1.0 / sp.rsa_sign);
    double ceiling = 2.0 * per_core;

    /* the uncached validation of a TEE key (what the first release for a new TEE key adds) */
    json_t *cl = NULL;
    char iss[CLST_RELEASE_ISSUER_MAX + 1];
    if (clst_vault_release_verify_token(g_rel, g_token, strlen(g_token), &cl, iss, &err) !=
        CLST_OK) {
        die("verify", &err);
    }
    uint64_t v0 = clst_monotonic_ns();
    unsigned vn = 0;
    while (clst_monotonic_ns() - v0 < 1000000000ull) {
        EVP_PKEY *k = NULL;
        char kid[CLST_JWK_MAX_KID_SIZE + 1];
        if (clst_vault_release_tee_key(cl, &k, kid, NULL, &err) != CLST_OK) {
            die("tee key", &err);
        }
        EVP_PKEY_free(k);
        vn++;
    }
    double validate_ms = (double)(clst_monotonic_ns() - v0) / 1e6 / vn;
    json_decref(cl);

    one_release(); /* warm-up (and a check that a release works at all) */
    double r1 = run(1, seconds);
    double rt = run(threads, seconds);

    printf("openssl speed -elapsed ecdsap256: verify/s %10.1f   sign/s %10.1f\n", sp.ecdsa_verify,
           sp.ecdsa_sign);
    printf("openssl speed -elapsed rsa2048:   verify/s %10.1f   sign/s %10.1f\n", sp.rsa_verify,
           sp.rsa_sign);
    printf("crypto ceiling (1 P-256 verify + 1 RSA-2048 public + 1 RSA-2048 private op):\n");
    printf("  one core %10.1f releases/s, two cores %10.1f releases/s\n", per_core, ceiling);
    printf("releases/s, 1 thread   %10.1f  (%5.1f%% of the one-core ceiling)\n", r1,
           100.0 * r1 / per_core);
    printf("releases/s, %u threads  %10.1f  (%5.1f%% of the two-core ceiling; target >= 25%%)\n",
           threads, rt, 100.0 * rt / ceiling);
    printf("validating a new TEE key (RSA-2048 JWK, SP 800-56B public check + ROCA), once per key: "
           "%.2f ms\n",
           validate_ms);

    clst_vault_release_free(g_rel);
    json_decref(attrs);
    free(pubtext);
    json_decref(pubj);
    clst_buf_cleanup(&pub);
    clst_buf_cleanup(&der);
    free(g_token);
    clst_jwk_free(g_auth);
    EVP_PKEY_free(ak);
    EVP_PKEY_free(tee);
    EVP_PKEY_free(released);
    clst_vault_free(vault);
    clst_vault_store_close(store);
    clst_vault_masterkey_free(mk);
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "bench_release: could not remove %s\n", dir);
    }
    return 0;
}
