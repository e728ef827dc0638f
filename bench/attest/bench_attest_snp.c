/*
 * bench_attest's SEV-SNP section: verifications per second of a real SEV-SNP report (trustee's
 * Milan report, its VCEK and the Milan ASK as DER endorsements, the AMD roots compiled in, at a
 * fixed time), beside the `openssl speed ecdsap384` verify rate bench_attest measured in the same
 * run:
 *   - clst_evidence_verify with the parsed chain cached (the SEV-SNP verifier's cache is keyed by
 *     the SHA-256 of the leaf's and intermediate's DER and the ARK: only the first call parses
 *     and checks the RSA-4096 chain) -> verifications/s, one thread, per CPU second;
 *   - the same with the cache cleared before every call (the full chain each time);
 *   - the whole attestation through the engine (POST /attest/SevSnpVm minus HTTP:
 *     clst_attest_evaluate with a VCEK cache directory, default policy, ES256 token) -> /s;
 * and the ratio cached / openssl per thread (target >= 60%). bench/snp/bench_snp measures the
 * same verification with N threads and the bare ECDSA digest verify.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cloister/attest.h>
#include <cloister/crypto.h>
#include <cloister/evidence.h>

#include "bench_attest.h"
#include "evidence/sevsnp_int.h" /* evidence_sevsnp_cache_clear: the cold measurement only */

#define SNP_AT INT64_C(1704067200) /* 2024-01-01T00:00:00Z, inside the VCEK's validity */

static double
wall(void)
{
    return (double)clst_monotonic_ns() / 1e9;
}

static double
cpu(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static uint8_t *
slurp(const char *dir, const char *name, size_t *out_size)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "bench_attest: cannot open %s (give --vectors DIR: tests/vectors)\n", path);
        return NULL;
    }
    uint8_t *buf = malloc(1u << 16);
    size_t n = buf != NULL ? fread(buf, 1, 1u << 16, f) : 0;
    fclose(f);
    if (buf == NULL || n == 0 || n == (1u << 16)) {
        free(buf);
        return NULL;
    }
    *out_size = n;
    return buf;
}

struct snp_rate {
    double cpu; /* per second of thread CPU time */
    double wall;
};

int
bench_attest_snp(const char *vectors, unsigned seconds, double ossl_cpu, double ossl_wall)
{
    int ret = 1;
    char snp[4096], tmp[] = "/tmp/bench-attest-snp-XXXXXX";
    size_t rsize = 0, vsize = 0, psize = 0;
    STACK_OF(X509) *roots = NULL, *chain = NULL;
    struct clst_buf endorse;
    struct clst_err err = {0};
    struct clst_attest *a = NULL;
    unsigned char *der = NULL;
    clst_buf_init(&endorse, 1u << 16);
    snprintf(snp, sizeof(snp), "%s/sev-snp", vectors);
    uint8_t *report = slurp(snp, "trustee/test-report.bin", &rsize);
    uint8_t *vcek = slurp(snp, "trustee/test-vcek.der", &vsize);
    uint8_t *pem = slurp(snp, "trustee/milan_ask_ark_asvk.pem", &psize);
    if (report == NULL || vcek == NULL || pem == NULL || mkdtemp(tmp) == NULL) {
        goto out;
    }
    int n = 0;
    if (clst_buf_append(&endorse, vcek, vsize) != CLST_OK ||
        clst_x509_stack_from_pem(pem, psize, &chain, &err) != CLST_OK ||
        (n = i2d_X509(sk_X509_value(chain, 0), &der)) <= 0 || /* the ASK */
        clst_buf_append(&endorse, der, (size_t)n) != CLST_OK ||
        clst_evidence_sevsnp_roots(&roots, &err) != CLST_OK) {
        fprintf(stderr, "bench_attest: SEV-SNP fixture: %s\n", err.msg);
        goto out;
    }

    struct clst_evidence_input in;
    memset(&in, 0, sizeof(in));
    in.evidence = report;
    in.evidence_size = rsize;
    in.endorsements = endorse.data;
    in.endorsements_size = endorse.size;
    in.roots = roots;
    in.at = SNP_AT;

    struct snp_rate cached = {0, 0}, cold = {0, 0}, engine = {0, 0};
    for (int pass = 0; pass < 2; pass++) {
        uint64_t count = 0;
        double w0 = wall(), c0 = cpu(), end = w0 + seconds;
        while (wall() < end) {
            json_t *claims = NULL;
            if (pass == 1) {
                evidence_sevsnp_cache_clear();
            }
            if (clst_evidence_verify(CLST_EVIDENCE_SEVSNP, &in, &claims, &err) != CLST_OK) {
                fprintf(stderr, "bench_attest: SEV-SNP verification failed: %s\n", err.msg);
                goto out;
            }
            json_decref(claims);
            count++;
        }
        struct snp_rate r = {(double)count / (cpu() - c0), (double)count / (wall() - w0)};
        if (pass == 0) {
            cached = r;
        } else {
            cold = r;
        }
    }

    /* The engine: a VCEK cache directory holding the VCEK and the ASK, a fixed clock. */
    char p[4200];
    FILE *f;
    snprintf(p, sizeof(p), "%s/vcek", tmp);
    if (mkdir(p, 0700) != 0) {
        goto out;
    }
    snprintf(p, sizeof(p), "%s/vcek/vcek.der", tmp);
    if ((f = fopen(p, "wb")) == NULL || fwrite(vcek, 1, vsize, f) != vsize || fclose(f) != 0) {
        goto out;
    }
    snprintf(p, sizeof(p), "%s/vcek/ask.der", tmp);
    if ((f = fopen(p, "wb")) == NULL || fwrite(der, 1, (size_t)n, f) != (size_t)n ||
        fclose(f) != 0) {
        goto out;
    }
    static const uint8_t master[32] = {7};
    struct clst_clock clock;
    struct clst_attest_config cfg;
    char db[4200], vdir[4200];
    clst_clock_fixed_init(&clock, SNP_AT);
    clst_attest_config_init(&cfg);
    snprintf(db, sizeof(db), "%s/attest.db", tmp);
    snprintf(vdir, sizeof(vdir), "%s/vcek", tmp);
    cfg.db_path = db;
    cfg.master_key = master;
    cfg.master_key_size = sizeof(master);
    cfg.issuer = "https://bench.invalid";
    cfg.clock = &clock;
    cfg.vcek_cache_dir = vdir;
    const struct clst_attest_type *type = NULL;
    if (clst_attest_new(&cfg, &a, &err) != CLST_OK ||
        clst_attest_type_find("SevSnpVm", &type, &err) != CLST_OK) {
        fprintf(stderr, "bench_attest: engine: %s\n", err.msg);
        goto out;
    }
    struct clst_attest_request req;
    memset(&req, 0, sizeof(req));
    req.type = type;
    clst_buf_init(&req.evidence, 1u << 16);
    if (clst_buf_append(&req.evidence, report, rsize) != CLST_OK) {
        goto out;
    }
    {
        uint64_t count = 0;
        double w0 = wall(), c0 = cpu(), end = w0 + seconds;
        while (wall() < end) {
            char *token = NULL;
            if (clst_attest_evaluate(a, &req, NULL, &token, NULL, NULL, &err) != CLST_OK) {
                fprintf(stderr, "bench_attest: SevSnpVm attestation failed: %s\n", err.msg);
                clst_attest_request_cleanup(&req);
                goto out;
            }
            free(token);
            count++;
        }
        engine.cpu = (double)count / (cpu() - c0);
        engine.wall = (double)count / (wall() - w0);
    }
    clst_attest_request_cleanup(&req);

    printf("\nSEV-SNP (trustee Milan report + VCEK + ASK, AMD roots compiled in, at "
           "2024-01-01), one thread, per CPU second [wall-clock in brackets]:\n");
    printf("  clst_evidence_verify, chain cached (keyed by the DER):  %8.1f /s [%.1f]\n",
           cached.cpu, cached.wall);
    printf("  clst_evidence_verify, chain verified every time:        %8.1f /s [%.1f]\n", cold.cpu,
           cold.wall);
    printf("  attestation through the engine (SevSnpVm, ES256 token): %8.1f /s [%.1f]\n",
           engine.cpu, engine.wall);
    printf("  openssl speed -seconds %u ecdsap384 verify (same run):   %8.1f /s [%.1f elapsed]\n",
           seconds, ossl_cpu, ossl_wall);
    double ratio = cached.cpu / ossl_cpu;
    printf("  SEV-SNP ratio per thread, cached verifications / openssl verifies: %.1f%% CPU time "
           "(target >= 60%%: %s), %.1f%% wall-clock; engine attestations: %.1f%%\n",
           100.0 * ratio, ratio >= 0.6 ? "met" : "NOT met", 100.0 * cached.wall / ossl_wall,
           100.0 * engine.cpu / ossl_cpu);
    ret = 0;
out:
    clst_attest_free(a);
    if (tmp[sizeof(tmp) - 7] != 'X') {
        char cmd[200];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
        if (system(cmd) != 0) {
            fprintf(stderr, "bench_attest: could not remove %s\n", tmp);
        }
    }
    OPENSSL_free(der);
    sk_X509_pop_free(chain, X509_free);
    sk_X509_pop_free(roots, X509_free);
    clst_buf_cleanup(&endorse);
    free(report);
    free(vcek);
    free(pem);
    return ret;
}
