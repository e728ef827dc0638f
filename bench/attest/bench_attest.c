/*
 * bench_attest: sim attestations per second through the real HTTPS service, beside the P-384
 * verify rate `openssl speed ecdsap384` measures in the same run (the floor: every sim
 * attestation verifies at least one P-384 signature, the report's).
 *
 *   bench_attest [--seconds N] [--threads T] [--connections C] [--vectors DIR] [--snp-only]
 *
 * 1b. SEV-SNP (bench_attest_snp.c): verifications/s of a real report with the parsed chain
 *    cached, beside the same openssl figure (target >= 60% per thread); --snp-only stops there.
 *    DIR is tests/vectors (default: that path under the current directory).
 *
 * 1. openssl speed -seconds N ecdsap384 -> verify/s (one core);
 * 2. the engine alone (clst_attest_evaluate in a loop, one thread) -> attestations/s;
 * 3. cloister's server in this process with T worker threads and the attestation routes, driven
 *    by wrk (POST /attest/SimEnclave with a fixed body, C connections, keep-alive) -> requests/s,
 *    checking that every answer was a 200.
 * Prints the figures and the ratio per server thread against the verify rate (target >= 60%).
 * The sim evidence verification is measured warm (the platform certificate chain in the
 * evidence component's verified-chain cache, as in a running service) and cold (the cache
 * emptied before every verification: decode + chain check every time), with the cache's
 * hit/miss counters.
 * Needs `openssl` and `wrk` on PATH. A benchmark, not a test: it asserts nothing about speed.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <sys/resource.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cloister/attest.h>
#include <cloister/crypto.h>
#include <cloister/evidence.h>
#include <cloister/server.h>

/* The sim verified-chain cache's test hooks (evidence_sim_cache_clear/_stats): private to the
 * evidence component, included here only to report whether the cache was used and to measure a
 * cold verification beside the warm one. */
#include "evidence/evidence_int.h"

#include "bench_attest.h"

static const char lua_script[] =
    "wrk.method = 'POST'\n"
    "wrk.headers['Content-Type'] = 'application/json'\n"
    "local f = assert(io.open(os.getenv('ATTEST_BODY'), 'rb'))\n"
    "wrk.body = f:read('*a')\n"
    "f:close()\n";

static void
die(const char *what, const struct clst_err *err)
{
    fprintf(stderr, "bench_attest: %s%s%s\n", what, err ? ": " : "", err ? err->msg : "");
    exit(1);
}

/* Runs a command and returns its standard output (malloc'ed). */
static char *
run(const char *cmd)
{
    FILE *p = popen(cmd, "r");
    if (p == NULL) {
        return NULL;
    }
    size_t cap = 65536, size = 0;
    char *out = malloc(cap);
    if (out == NULL) {
        pclose(p);
        return NULL;
    }
    size_t n;
    while ((n = fread(out + size, 1, cap - size - 1, p)) > 0) {
        size += n;
        if (size + 1 >= cap) {
            break;
        }
    }
    out[size] = '\0';
    int rc = pclose(p);
    if (rc != 0) {
        fprintf(stderr, "bench_attest: '%s' exited with %d\n", cmd, rc);
    }
    return out;
}

/* openssl speed: the last number of the "384 bits ecdsa" line is verify/s. By default openssl
 * divides by the CPU time it used; with -elapsed by the wall-clock time. */
static double
openssl_verify_rate(unsigned seconds, bool elapsed)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "openssl speed%s -seconds %u ecdsap384 2>/dev/null",
             elapsed ? " -elapsed" : "", seconds);
    char *out = run(cmd);
    double rate = 0;
    char *line = out ? strstr(out, "384 bits ecdsa") : NULL;
    if (line != NULL) {
        double sign_t, verify_t, sign_s, verify_s;
        char *paren = strchr(line, ')');
        if (paren != NULL && sscanf(paren + 1, " %lfs %lfs %lf %lf", &sign_t, &verify_t, &sign_s,
                                    &verify_s) == 4) {
            rate = verify_s;
        }
    }
    free(out);
    return rate;
}

static double
now_s(void)
{
    return (double)clst_monotonic_ns() / 1e9;
}

/* CPU time of this thread: the in-process loops are compared per CPU second, like openssl
 * speed's default, so that a busy machine does not skew the ratios. */
static double
cpu_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
    unsigned seconds = 10, threads = 1, connections = 4;
    const char *vectors = "tests/vectors";
    bool snp_only = false;
    for (int i = 1; i < argc; i += 2) {
        if (strcmp(argv[i], "--snp-only") == 0) {
            snp_only = true;
            i--;
            continue;
        }
        if (i + 1 >= argc) {
            die("usage: bench_attest [--seconds N] [--threads T] [--connections C] "
                "[--vectors DIR] [--snp-only]",
                NULL);
        }
        if (strcmp(argv[i], "--vectors") == 0) {
            vectors = argv[i + 1];
            continue;
        }
        unsigned long v = strtoul(argv[i + 1], NULL, 10);
        if (v == 0 || v > 10000) {
            die("option values are 1..10000", NULL);
        }
        if (strcmp(argv[i], "--seconds") == 0) {
            seconds = (unsigned)v;
        } else if (strcmp(argv[i], "--threads") == 0) {
            threads = (unsigned)v;
        } else if (strcmp(argv[i], "--connections") == 0) {
            connections = (unsigned)v;
        } else {
            die("usage: bench_attest [--seconds N] [--threads T] [--connections C] "
                "[--vectors DIR] [--snp-only]",
                NULL);
        }
    }
    struct clst_err err = {0};
    char dir[] = "/tmp/bench-attest-XXXXXX";
    if (mkdtemp(dir) == NULL) {
        die("mkdtemp failed", NULL);
    }
    char path[512], data[512], body_path[512], lua_path[512], db[512];
    snprintf(path, sizeof(path), "%s/plat", dir);
    snprintf(data, sizeof(data), "%s/data", dir);
    snprintf(body_path, sizeof(body_path), "%s/body.json", dir);
    snprintf(lua_path, sizeof(lua_path), "%s/attest.lua", dir);
    snprintf(db, sizeof(db), "%s/data/%s", dir, CLST_ATTEST_DB_FILE);

    /* 1. The floor, measured first while nothing else of ours runs: per CPU second (openssl's
     * default) and per wall-clock second (-elapsed, which a busy machine lowers). */
    double verify_rate = openssl_verify_rate(seconds, false);
    double verify_wall = openssl_verify_rate(seconds, true);
    if (verify_rate <= 0 || verify_wall <= 0) {
        die("could not read 'openssl speed ecdsap384' (is openssl on PATH?)", NULL);
    }
    printf("openssl speed -seconds %u ecdsap384: %.1f verify/s (CPU time), %.1f verify/s "
           "(-elapsed)\n",
           seconds, verify_rate, verify_wall);
    /* 1b. SEV-SNP verification against the same figure (bench_attest_snp.c). */
    if (bench_attest_snp(vectors, seconds, verify_rate, verify_wall) != 0) {
        die("the SEV-SNP section failed", NULL);
    }
    if (snp_only) {
        rmdir(dir);
        return 0;
    }

    /* A sim platform, evidence binding JSON runtime data with a TEE key, the request body. */
    struct clst_sim_platform *plat = NULL;
    if (clst_evidence_sim_platform_create(path, clst_clock_now(clst_clock_system()), false,
                                          &err) != CLST_OK ||
        clst_evidence_sim_platform_load(path, &plat, &err) != CLST_OK) {
        die("sim platform", &err);
    }
    const char *runtime = "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"tee\","
                          "\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
                          "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}]}";
    struct clst_sim_identity id;
    memset(&id, 0, sizeof(id));
    memset(id.mrenclave, 0xa1, sizeof(id.mrenclave));
    memset(id.mrsigner, 0x5a, sizeof(id.mrsigner));
    id.product_id = 1;
    id.svn = 1;
    uint8_t rd[CLST_EVIDENCE_REPORT_DATA_SIZE];
    struct clst_buf ev, b64, rb64;
    clst_buf_init(&ev, CLST_SIM_EVIDENCE_MAX_SIZE);
    clst_buf_init(&b64, 8192);
    clst_buf_init(&rb64, 8192);
    if (clst_evidence_report_data_bind((const uint8_t *)runtime, strlen(runtime), rd) != CLST_OK ||
        clst_evidence_sim_report_create(plat, &id, rd, &ev, &err) != CLST_OK ||
        clst_b64url_encode(ev.data, ev.size, &b64) != CLST_OK ||
        clst_buf_terminate(&b64) != CLST_OK ||
        clst_b64url_encode((const uint8_t *)runtime, strlen(runtime), &rb64) != CLST_OK ||
        clst_buf_terminate(&rb64) != CLST_OK) {
        die("evidence", &err);
    }
    json_t *bj = json_pack("{s:s, s:{s:s, s:s}}", "report", (const char *)b64.data, "runtimeData",
                           "data", (const char *)rb64.data, "dataType", "JSON");
    char *body = json_dumps(bj, JSON_COMPACT);
    json_decref(bj);
    FILE *f = fopen(body_path, "w");
    if (f == NULL || fputs(body, f) < 0 || fclose(f) != 0) {
        die("writing the body", NULL);
    }
    f = fopen(lua_path, "w");
    if (f == NULL || fputs(lua_script, f) < 0 || fclose(f) != 0) {
        die("writing the wrk script", NULL);
    }

    /* The engine, over the data directory the server uses. */
    struct clst_server_datadir *dd = NULL;
    if (clst_server_datadir_open(data, "127.0.0.1", NULL, &dd, &err) != CLST_OK) {
        die("data directory", &err);
    }
    STACK_OF(X509) *roots = sk_X509_new_null();
    X509 *root = clst_evidence_sim_platform_root(plat);
    if (roots == NULL || X509_up_ref(root) != 1 || sk_X509_push(roots, root) <= 0) {
        die("roots", NULL);
    }
    struct clst_attest_config cfg;
    clst_attest_config_init(&cfg);
    cfg.db_path = db;
    cfg.master_key = dd->master_key->ptr;
    cfg.master_key_size = dd->master_key->size;
    cfg.sim_roots = roots;
    cfg.issuer = "https://127.0.0.1";
    struct clst_attest *a = NULL;
    if (clst_attest_new(&cfg, &a, &err) != CLST_OK) {
        die("engine", &err);
    }
    const struct clst_attest_type *sim = NULL;
    (void)clst_attest_type_find("SimEnclave", &sim, NULL);

    /* 2. The engine alone, one thread: parse the body, verify, appraise, sign. */
    size_t n = 0;
    double t0 = now_s(), limit = t0 + (seconds < 3 ? seconds : 3), c0 = cpu_s();
    while (now_s() < limit) {
        struct clst_attest_request r;
        char *token = NULL;
        if (clst_attest_request_parse(sim, body, strlen(body), &r, &err) != CLST_OK ||
            clst_attest_evaluate(a, &r, NULL, &token, NULL, NULL, &err) != CLST_OK) {
            die("attestation", &err);
        }
        clst_attest_request_cleanup(&r);
        free(token);
        n++;
    }
    double engine_rate = (double)n / (now_s() - t0);
    double engine_cpu = (double)n / (cpu_s() - c0);
    /* The evidence verification alone, for the breakdown. */
    struct clst_evidence_input in;
    memset(&in, 0, sizeof(in));
    in.evidence = ev.data;
    in.evidence_size = ev.size;
    in.runtime_data = (const uint8_t *)runtime;
    in.runtime_data_size = strlen(runtime);
    in.roots = roots;
    in.at = clst_clock_now(clst_clock_system());
    n = 0;
    t0 = now_s();
    c0 = cpu_s();
    limit = t0 + (seconds < 3 ? seconds : 3);
    while (now_s() < limit) {
        json_t *claims = NULL;
        if (clst_evidence_verify(CLST_EVIDENCE_SIM, &in, &claims, &err) != CLST_OK) {
            die("evidence verify", &err);
        }
        json_decref(claims);
        n++;
    }
    double verify_only = (double)n / (now_s() - t0);
    double verify_only_cpu = (double)n / (cpu_s() - c0);
    uint64_t hits = 0, misses = 0;
    evidence_sim_cache_stats(&hits, &misses);
    /* Cold: the cache emptied before each verification (what the first request of a platform
     * certificate costs, and what every request cost before the cache). */
    n = 0;
    c0 = cpu_s();
    limit = now_s() + (seconds < 3 ? seconds : 3);
    while (now_s() < limit) {
        json_t *claims = NULL;
        evidence_sim_cache_clear();
        if (clst_evidence_verify(CLST_EVIDENCE_SIM, &in, &claims, &err) != CLST_OK) {
            die("evidence verify (cold)", &err);
        }
        json_decref(claims);
        n++;
    }
    double verify_cold_cpu = (double)n / (cpu_s() - c0);

    /* Its parts, per CPU second: decoding the platform certificate, the chain check against
     * the root, the report signature (the P-384 verify every attestation needs). */
    struct clst_sim_evidence parsed;
    if (clst_evidence_sim_parse(ev.data, ev.size, &parsed, &err) != CLST_OK) {
        die("parse", &err);
    }
    double part[3];
    for (int k = 0; k < 3; k++) {
        const unsigned char *q = parsed.cert_der;
        X509 *pc = d2i_X509(NULL, &q, (long)parsed.cert_size);
        if (pc == NULL) {
            die("platform certificate", NULL);
        }
        n = 0;
        c0 = cpu_s();
        limit = now_s() + 1.0;
        while (now_s() < limit) {
            if (k == 0) {
                q = parsed.cert_der;
                X509_free(d2i_X509(NULL, &q, (long)parsed.cert_size));
            } else if (k == 1) {
                if (clst_x509_verify_chain(pc, NULL, roots, NULL, in.at, NULL, &err) != CLST_OK) {
                    die("chain", &err);
                }
            } else if (clst_ecdsa_verify(X509_get0_pubkey(pc), CLST_HASH_SHA384, CLST_SIG_RAW,
                                         ev.data, parsed.signed_size, parsed.signature,
                                         sizeof(parsed.signature)) != CLST_OK) {
                die("report signature", NULL);
            }
            n++;
        }
        part[k] = (double)n / (cpu_s() - c0);
        X509_free(pc);
    }

    /* 3. Through HTTPS with wrk. */
    struct clst_server_config scfg;
    clst_server_config_init(&scfg);
    scfg.port = 0;
    scfg.thread_count = threads;
    scfg.tls_cert_pem = dd->server_cert_pem;
    scfg.tls_key_pem = (const char *)dd->server_key_pem->ptr;
    struct clst_server *srv = NULL;
    if (clst_server_new(&scfg, &srv, &err) != CLST_OK ||
        clst_attest_register(a, srv, &err) != CLST_OK || clst_server_start(srv, &err) != CLST_OK) {
        die("server", &err);
    }
    char cmd[2048];
    snprintf(cmd, sizeof(cmd),
             "ATTEST_BODY='%s' wrk -t1 -c%u -d%us -s '%s' "
             "'https://127.0.0.1:%u/attest/SimEnclave?api-version=2022-08-01' 2>&1",
             body_path, connections, seconds, lua_path, (unsigned)clst_server_port(srv));
    struct rusage ru0, ru1;
    getrusage(RUSAGE_SELF, &ru0);
    char *out = run(cmd);
    getrusage(RUSAGE_SELF, &ru1);
    /* The server runs in this process and wrk in another: our CPU time is the server's. */
    double cpu = (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec) +
                 (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec) / 1e6 +
                 (double)(ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) +
                 (double)(ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) / 1e6;
    double http_rate = 0;
    char *rps = out ? strstr(out, "Requests/sec:") : NULL;
    if (rps == NULL || sscanf(rps, "Requests/sec: %lf", &http_rate) != 1) {
        fprintf(stderr, "%s\n", out ? out : "");
        die("could not read wrk's Requests/sec (is wrk on PATH?)", NULL);
    }
    bool non2xx = strstr(out, "Non-2xx") != NULL;
    (void)clst_server_stop(srv, 2000, &err);
    clst_server_free(srv);

    double per_cpu = cpu > 0 ? http_rate * seconds / cpu : 0;
    printf("bench_attest: %u s per measurement, %u server thread(s), %u connection(s), "
           "%ld online CPU(s), load average at the end in /proc/loadavg\n",
           seconds, threads, connections, sysconf(_SC_NPROCESSORS_ONLN));
    printf("  openssl speed ecdsap384 verify/s           %10.1f  per CPU second (openssl's "
           "default)\n",
           verify_rate);
    printf("  openssl speed -elapsed ecdsap384 verify/s  %10.1f  per wall-clock second\n",
           verify_wall);
    printf("  sim evidence verify/s                      %10.1f  wall, %.1f per CPU second (1 "
           "thread, in process)\n",
           verify_only, verify_only_cpu);
    printf("    (verified-chain cache: %llu hits, %llu misses over the engine and verify loops)\n",
           (unsigned long long)hits, (unsigned long long)misses);
    printf("  sim evidence verify/s, cold (no cache)     %10.1f  per CPU second (cache emptied "
           "before each)\n",
           verify_cold_cpu);
    printf("    platform certificate decode (d2i_X509)   %10.1f  per CPU second\n", part[0]);
    printf("    chain check against the sim root         %10.1f  per CPU second\n", part[1]);
    printf("    report signature (ECDSA P-384 verify)    %10.1f  per CPU second\n", part[2]);
    printf("  sim attestations/s, engine only            %10.1f  wall, %.1f per CPU second (1 "
           "thread: parse, verify, appraise, sign)\n",
           engine_rate, engine_cpu);
    printf("  sim attestations/s over HTTPS (wrk)        %10.1f  (%u server thread(s), wall "
           "clock)%s\n",
           http_rate, threads, non2xx ? "  WARNING: some answers were not 200" : "");
    printf("  sim attestations per server CPU second     %10.1f  (server CPU %.1f s)\n", per_cpu,
           cpu);
    printf("  per server thread vs P-384 verify (wall)   %9.1f%%  (target >= 60%%)\n",
           100.0 * http_rate / threads / verify_wall);
    printf("  per server CPU second vs P-384 verify/CPU s %8.1f%%\n",
           100.0 * per_cpu / verify_rate);
    printf("  engine only vs P-384 verify (wall)         %9.1f%%\n",
           100.0 * engine_rate / verify_wall);
    printf("  engine only vs P-384 verify (CPU)          %9.1f%%\n",
           100.0 * engine_cpu / verify_rate);
    FILE *la = fopen("/proc/loadavg", "r");
    char load[128] = "?";
    if (la != NULL) {
        if (fgets(load, sizeof(load), la) == NULL) {
            snprintf(load, sizeof(load), "?\n");
        }
        fclose(la);
    }
    printf("  load average                               %s", load);
    if (non2xx) {
        fprintf(stderr, "%s\n", out);
    }
    free(out);
    free(body);
    clst_attest_free(a);
    sk_X509_pop_free(roots, X509_free);
    clst_server_datadir_free(dd);
    clst_evidence_sim_platform_free(plat);
    clst_buf_cleanup(&ev);
    clst_buf_cleanup(&b64);
    clst_buf_cleanup(&rb64);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "bench_attest: could not remove %s\n", dir);
    }
    return non2xx ? 1 : 0;
}
