/*
 * bench_snp: SEV-SNP verifications per second, beside `openssl speed ecdsap384` run in the same
 * program.
 *
 *   bench_snp [--vectors DIR] [--seconds S] [--threads N]
 *
 * DIR is tests/vectors/sev-snp (default: that path under the current directory). The evidence is
 * the real trustee Milan report with its VCEK and the Milan ASK as DER endorsements, verified
 * through the public pipeline (clst_evidence_verify: size check, parse, chain, signature, policy,
 * binding, claims) against the AMD roots compiled in, at a fixed time. Prints:
 *   - verifications/s with the parsed chain cached (the cache is keyed by the DER bytes, so only
 *     the first verification pays for parsing and the RSA-4096 chain): N threads;
 *   - verifications/s with the cache cleared before each call (every chain checked in full);
 *   - the bare ECDSA P-384 verify of the report digest through clst_ecdsa_verify_digest;
 *   - `openssl speed -seconds S ecdsap384` (one process: the per-thread reference), run via
 *     popen, its verify/s, and the same with -elapsed;
 *   - the ratio cached / openssl per thread, and whether it meets the target (>= 60%).
 * openssl speed counts operations per second of user CPU time unless -elapsed is given; on a
 * shared machine wall-clock rates depend on the other load, so our rates are measured per second
 * of each thread's CPU time (CLOCK_THREAD_CPUTIME_ID) and compared with the default figure; the
 * wall-clock figures of both are printed beside them.
 * A benchmark, not a test: it prints figures and exits 0 unless something fails to verify.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cloister/crypto.h>
#include <cloister/evidence.h>

#include "evidence/sevsnp_int.h"

#define AT_2024 INT64_C(1704067200)

struct fixture {
    uint8_t *report;
    size_t report_size;
    struct clst_buf endorse;
    STACK_OF(X509) *roots;
    EVP_PKEY *vcek_key;
};

static double seconds = 2.0;

static double
now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* CPU time of the calling thread: `openssl speed` counts operations per second of user CPU time
 * by default (not wall-clock), so on a shared machine the comparison is made in CPU time too. */
static double
thread_cpu(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* A rate measured both ways. */
struct rate {
    double per_cpu_second; /* summed over threads: each thread's count / its CPU time */
    double per_wall_second;
};

static uint8_t *
read_all(const char *dir, const char *name, size_t *out_size)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "bench_snp: cannot open %s (give --vectors DIR)\n", path);
        exit(1);
    }
    uint8_t *buf = malloc(1u << 16);
    size_t n = buf != NULL ? fread(buf, 1, 1u << 16, f) : 0;
    fclose(f);
    if (buf == NULL || n == 0 || n == (1u << 16)) {
        fprintf(stderr, "bench_snp: cannot read %s\n", path);
        exit(1);
    }
    *out_size = n;
    return buf;
}

static void
fixture_load(struct fixture *fx, const char *dir)
{
    size_t vsize = 0, psize = 0;
    STACK_OF(X509) *chain = NULL;
    X509 *vcek = NULL;
    unsigned char *der = NULL;
    memset(fx, 0, sizeof(*fx));
    fx->report = read_all(dir, "trustee/test-report.bin", &fx->report_size);
    uint8_t *v = read_all(dir, "trustee/test-vcek.der", &vsize);
    uint8_t *pem = read_all(dir, "trustee/milan_ask_ark_asvk.pem", &psize);
    clst_buf_init(&fx->endorse, 1u << 16);
    if (clst_buf_append(&fx->endorse, v, vsize) != CLST_OK ||
        clst_x509_stack_from_pem(pem, psize, &chain, NULL) != CLST_OK) {
        exit(1);
    }
    int n = i2d_X509(sk_X509_value(chain, 0), &der); /* the ASK */
    if (n <= 0 || clst_buf_append(&fx->endorse, der, (size_t)n) != CLST_OK ||
        clst_evidence_sevsnp_roots(&fx->roots, NULL) != CLST_OK ||
        clst_x509_from_der(v, vsize, &vcek, NULL) != CLST_OK ||
        clst_pkey_public_copy(X509_get0_pubkey(vcek), &fx->vcek_key) != CLST_OK) {
        fprintf(stderr, "bench_snp: cannot load the fixture\n");
        exit(1);
    }
    OPENSSL_free(der);
    X509_free(vcek);
    sk_X509_pop_free(chain, X509_free);
    free(v);
    free(pem);
}

static bool
verify_once(const struct fixture *fx)
{
    struct clst_evidence_input in;
    struct clst_err err = {0};
    json_t *claims = NULL;
    memset(&in, 0, sizeof(in));
    in.evidence = fx->report;
    in.evidence_size = fx->report_size;
    in.endorsements = fx->endorse.data;
    in.endorsements_size = fx->endorse.size;
    in.roots = fx->roots;
    in.at = AT_2024;
    if (clst_evidence_verify(CLST_EVIDENCE_SEVSNP, &in, &claims, &err) != CLST_OK) {
        fprintf(stderr, "bench_snp: verification failed: %s\n", err.msg);
        return false;
    }
    json_decref(claims);
    return true;
}

struct worker {
    const struct fixture *fx;
    bool clear_cache;
    uint64_t count;
    double cpu;
    bool ok;
};

static void *
run_worker(void *arg)
{
    struct worker *w = arg;
    double end = now() + seconds;
    double cpu0 = thread_cpu();
    w->ok = true;
    while (now() < end) {
        if (w->clear_cache) {
            evidence_sevsnp_cache_clear();
        }
        if (!verify_once(w->fx)) {
            w->ok = false;
            break;
        }
        w->count++;
    }
    w->cpu = thread_cpu() - cpu0;
    return NULL;
}

/* Verifications per second over `threads` threads. */
static struct rate
measure(const struct fixture *fx, int threads, bool clear_cache)
{
    struct rate r = {0, 0};
    pthread_t tid[64];
    struct worker w[64];
    double start = now();
    for (int i = 0; i < threads; i++) {
        memset(&w[i], 0, sizeof(w[i]));
        w[i].fx = fx;
        w[i].clear_cache = clear_cache;
        if (pthread_create(&tid[i], NULL, run_worker, &w[i]) != 0) {
            exit(1);
        }
    }
    uint64_t total = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(tid[i], NULL);
        if (!w[i].ok) {
            exit(1);
        }
        total += w[i].count;
        r.per_cpu_second += w[i].cpu > 0 ? (double)w[i].count / w[i].cpu : 0;
    }
    r.per_wall_second = (double)total / (now() - start);
    return r;
}

static struct rate
measure_bare_ecdsa(const struct fixture *fx)
{
    struct rate rt;
    struct sevsnp_report r;
    uint8_t digest[CLST_SHA384_SIZE], raw[96];
    if (evidence_sevsnp_report_parse(fx->report, SEVSNP_REPORT_SIZE, &r, NULL) != CLST_OK ||
        clst_hash(CLST_HASH_SHA384, fx->report, SEVSNP_SIGNED_SIZE, digest) != CLST_OK) {
        exit(1);
    }
    for (size_t i = 0; i < 48; i++) {
        raw[i] = r.sig_r[47 - i];
        raw[48 + i] = r.sig_s[47 - i];
    }
    uint64_t count = 0;
    double start = now(), end = start + seconds, cpu0 = thread_cpu();
    while (now() < end) {
        if (clst_ecdsa_verify_digest(fx->vcek_key, CLST_SIG_RAW, digest, sizeof(digest), raw,
                                     sizeof(raw)) != CLST_OK) {
            fprintf(stderr, "bench_snp: bare ECDSA verification failed\n");
            exit(1);
        }
        count++;
    }
    rt.per_cpu_second = (double)count / (thread_cpu() - cpu0);
    rt.per_wall_second = (double)count / (now() - start);
    return rt;
}

/* Runs `openssl speed` and returns its ecdsap384 verify/s (0 when it cannot be read). */
/* One process, one thread: the per-thread reference. */
static double
openssl_speed(bool elapsed)
{
    char cmd[256], line[512];
    double verify = 0;
    snprintf(cmd, sizeof(cmd), "openssl speed%s -seconds %d ecdsap384 2>/dev/null",
             elapsed ? " -elapsed" : "", (int)seconds);
    FILE *p = popen(cmd, "r");
    if (p == NULL) {
        return 0;
    }
    printf("$ %s\n", cmd);
    while (fgets(line, sizeof(line), p) != NULL) {
        /* " 384 bits ecdsa (nistp384)   0.0008s   0.0006s   1287.7   1604.6": the last number
         * is verify/s. */
        if (strstr(line, "nistp384") != NULL && strstr(line, "bits") != NULL) {
            printf("  %s", line);
            char *last = strrchr(line, ' ');
            if (last != NULL) {
                verify = strtod(last + 1, NULL);
            }
        }
    }
    pclose(p);
    return verify;
}

int
main(int argc, char **argv)
{
    const char *dir = "tests/vectors/sev-snp";
    int threads = 1;
    struct fixture fx;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--vectors") == 0 && i + 1 < argc) {
            dir = argv[++i];
        } else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
            seconds = strtod(argv[++i], NULL);
        } else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
            threads = atoi(argv[++i]);
        } else {
            fprintf(stderr, "usage: bench_snp [--vectors DIR] [--seconds S] [--threads N]\n");
            return 2;
        }
    }
    if (seconds < 1 || seconds > 60 || threads < 1 || threads > 64) {
        fprintf(stderr, "bench_snp: --seconds 1..60, --threads 1..64\n");
        return 2;
    }
    fixture_load(&fx, dir);
    if (!verify_once(&fx)) { /* warms the chain cache */
        return 1;
    }
    printf("SEV-SNP verification (trustee Milan report + VCEK + ASK, AMD roots built in)\n");
    printf("rates per second of thread CPU time (as openssl speed counts by default) and, in\n"
           "brackets, per second of wall-clock time (shared machine: the CPU figure is the one\n"
           "to compare)\n");
    struct rate cached = measure(&fx, threads, false);
    printf("  cached chain, %d thread%s:          %8.1f verifications/s [wall %.1f]\n", threads,
           threads > 1 ? "s" : " ", cached.per_cpu_second, cached.per_wall_second);
    struct rate uncached = measure(&fx, 1, true);
    printf("  chain verified every time, 1 thread: %8.1f verifications/s [wall %.1f]\n",
           uncached.per_cpu_second, uncached.per_wall_second);
    struct rate bare = measure_bare_ecdsa(&fx);
    printf("  bare ECDSA P-384 digest verify:      %8.1f verify/s        [wall %.1f]\n",
           bare.per_cpu_second, bare.per_wall_second);
    if (!verify_once(&fx)) {
        return 1;
    }
    double ossl = openssl_speed(false);
    double ossl_wall = openssl_speed(true);
    if (ossl <= 0) {
        printf("openssl speed: no ecdsap384 figure read\n");
        return 0;
    }
    double ratio = (cached.per_cpu_second / threads) / ossl;
    printf("openssl speed ecdsap384 verify, one thread: %.1f/s CPU time, %.1f/s elapsed\n", ossl,
           ossl_wall);
    printf("ratio per thread, cached SEV-SNP verifications / openssl ECDSA P-384 verifies: "
           "%.1f%% CPU time (target >= 60%%: %s)",
           100.0 * ratio, ratio >= 0.6 ? "met" : "NOT met");
    if (ossl_wall > 0) {
        printf(", %.1f%% wall-clock", 100.0 * cached.per_wall_second / threads / ossl_wall);
    }
    printf("\n");
    clst_buf_cleanup(&fx.endorse);
    sk_X509_pop_free(fx.roots, X509_free);
    EVP_PKEY_free(fx.vcek_key);
    free(fx.report);
    return 0;
}
