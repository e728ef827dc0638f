/*
 * bench_vault: the vault's per-request key work in isolation (no TLS, HTTP, JSON, SQLite or
 * audit), to say where the time of bench/vault/run.sh goes. For ES256 (P-256) and RS256/PS256
 * (RSA-2048) it times, single-threaded:
 *   import  clst_vault_keymat_import_private() of the sealed PKCS#8 material, which the sign
 *           handler does on every request (decoder + consistency checks);
 *   sign    clst_vault_keymat_sign() with an already imported key;
 *   both    import + sign + free, i.e. what a request pays for the key today;
 *   d2i     the same PKCS#8 parsed with d2i_PrivateKey_ex (no OSSL_DECODER context, no
 *           consistency check): what a lighter import of already-checked, HMAC-authenticated
 *           material would cost.
 * and the metrics observer's cost per request (clst_metrics_request_record). Times are the
 * thread's CPU time (CLOCK_THREAD_CPUTIME_ID), so a loaded machine does not distort them.
 *
 *   bench_vault [SECONDS per measurement, default 1]
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cloister/core.h>
#include <cloister/crypto.h>
#include <cloister/metrics.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "vault/keymat.h"

static double g_seconds = 1.0;

struct job {
    enum clst_vault_keymat_type type;
    const struct clst_buf *der;
    struct clst_vault_keymat *km;
    enum clst_vault_alg alg;
    struct clst_metrics *metrics;
};

typedef int (*op_fn)(struct job *j);

static const uint8_t g_digest[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                     17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31,
                                     32};

static int
op_import(struct job *j)
{
    struct clst_vault_keymat *km = NULL;
    struct clst_err err;
    if (clst_vault_keymat_import_private(j->type, j->der->data, j->der->size, &km, &err) !=
        CLST_OK) {
        fprintf(stderr, "import: %s\n", err.msg);
        return -1;
    }
    clst_vault_keymat_free(km);
    return 0;
}

static int
op_sign(struct job *j)
{
    struct clst_buf sig;
    struct clst_err err;
    clst_buf_init(&sig, 1024);
    enum clst_status st =
        clst_vault_keymat_sign(j->km, j->alg, g_digest, sizeof(g_digest), &sig, &err);
    clst_buf_cleanup(&sig);
    if (st != CLST_OK) {
        fprintf(stderr, "sign: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static int
op_d2i(struct job *j)
{
    const unsigned char *p = j->der->data;
    int id = j->type == CLST_KEYMAT_RSA ? EVP_PKEY_RSA : EVP_PKEY_EC;
    EVP_PKEY *key = d2i_PrivateKey_ex(id, NULL, &p, (long)j->der->size, NULL, NULL);
    if (key == NULL) {
        fprintf(stderr, "d2i_PrivateKey_ex failed\n");
        return -1;
    }
    EVP_PKEY_free(key);
    return 0;
}

static int
op_both(struct job *j)
{
    struct clst_vault_keymat *km = NULL;
    struct clst_err err;
    if (clst_vault_keymat_import_private(j->type, j->der->data, j->der->size, &km, &err) !=
        CLST_OK) {
        return -1;
    }
    struct clst_vault_keymat *saved = j->km;
    j->km = km;
    int rc = op_sign(j);
    j->km = saved;
    clst_vault_keymat_free(km);
    return rc;
}

static int
op_metrics(struct job *j)
{
    struct clst_metrics_request r = {
        .method = CLST_HTTP_POST,
        .route = "/keys/{name}/{version}/sign",
        .status = 200,
        .elapsed_ns = 150000,
    };
    clst_metrics_request_record(j->metrics, &r);
    return 0;
}

/* This thread's CPU time: the figures do not depend on how loaded the machine is. */
static uint64_t
cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Runs fn for about g_seconds of CPU; prints operations per CPU second and CPU microseconds per
 * operation. */
static int
measure(const char *label, op_fn fn, struct job *j)
{
    uint64_t start = cpu_ns(), now = start;
    uint64_t budget = (uint64_t)(g_seconds * 1e9);
    unsigned long n = 0;
    while (now - start < budget) {
        for (int i = 0; i < 16; i++) {
            if (fn(j) != 0) {
                return -1;
            }
        }
        n += 16;
        now = cpu_ns();
    }
    double s = (double)(now - start) / 1e9;
    printf("%-42s %10.0f /s per core  %9.2f us CPU\n", label, (double)n / s, 1e6 * s / (double)n);
    return 0;
}

static int
bench_key(const char *name, const struct clst_vault_keymat_spec *spec, enum clst_vault_alg alg)
{
    struct clst_vault_keymat *km = NULL;
    struct clst_buf der;
    struct clst_err err;
    char label[64];
    int rc = -1;
    clst_buf_init_secret(&der, 1u << 16);
    if (clst_vault_keymat_generate(spec, &km, &err) != CLST_OK ||
        clst_vault_keymat_export_private(km, &der) != CLST_OK) {
        fprintf(stderr, "%s: %s\n", name, err.msg);
        goto out;
    }
    struct job j = {.type = spec->type, .der = &der, .km = km, .alg = alg};
    snprintf(label, sizeof(label), "%s import (per request today)", name);
    if (measure(label, op_import, &j) != 0) {
        goto out;
    }
    snprintf(label, sizeof(label), "%s d2i_PrivateKey_ex only", name);
    if (measure(label, op_d2i, &j) != 0) {
        goto out;
    }
    snprintf(label, sizeof(label), "%s sign (key already loaded)", name);
    if (measure(label, op_sign, &j) != 0) {
        goto out;
    }
    snprintf(label, sizeof(label), "%s import + sign", name);
    if (measure(label, op_both, &j) != 0) {
        goto out;
    }
    rc = 0;
out:
    clst_vault_keymat_free(km);
    clst_buf_cleanup(&der);
    return rc;
}

int
main(int argc, char **argv)
{
    struct clst_err err;
    if (argc > 1) {
        g_seconds = strtod(argv[1], NULL);
        if (!(g_seconds > 0.0 && g_seconds < 600.0)) {
            fprintf(stderr, "usage: bench_vault [SECONDS per measurement]\n");
            return 2;
        }
    }
    struct clst_vault_keymat_spec ec = {.type = CLST_KEYMAT_EC, .bits = 0, .curve = CLST_CURVE_P256};
    struct clst_vault_keymat_spec rsa = {.type = CLST_KEYMAT_RSA, .bits = 2048};
    printf("one thread, %.1f s of CPU per line\n", g_seconds);
    if (bench_key("ES256 P-256", &ec, CLST_ALG_ES256) != 0 ||
        bench_key("RS256 RSA-2048", &rsa, CLST_ALG_RS256) != 0 ||
        bench_key("PS256 RSA-2048", &rsa, CLST_ALG_PS256) != 0) {
        return 1;
    }
    struct job j = {0};
    if (clst_metrics_new(&j.metrics, &err) != CLST_OK) {
        fprintf(stderr, "metrics: %s\n", err.msg);
        return 1;
    }
    int rc = measure("metrics observer per request", op_metrics, &j);
    clst_metrics_free(j.metrics);
    return rc == 0 ? 0 : 1;
}
