/* cloister serve: the HTTPS service (key vault and attestation service front end). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cloister/attest.h>
#include <cloister/crypto.h>
#include <cloister/server.h>
#include <cloister/vault.h>
#include <cloister/vault_store.h>

#include <cloister/audit.h>
#include <cloister/metrics.h>
#include <cloister/vault_governance.h>
#include <cloister/vault_hsm.h>

#include "cli/cli.h"
#include "vault/release.h"

#define DEFAULT_DATA          "./cloister-data"
#define DEFAULT_LISTEN        "127.0.0.1:8443"
#define DEFAULT_DRAIN_SECONDS 10u

static void
usage(void)
{
    printf("usage: cloister serve [options]\n"
           "\n"
           "Runs Cloister's HTTPS service (TLS 1.2/1.3 only). On first start it creates the data\n"
           "directory with a local CA and a server certificate issued by it, a master key, and a\n"
           "first administrator token, which is printed once. Clients pin the CA certificate\n"
           "(DIR/ca.pem); its SHA-256 fingerprint is printed at every start.\n"
           "\n"
           "options:\n"
           "  --data DIR                 data directory (default " DEFAULT_DATA "); must be\n"
           "                             accessible by its owner only (0700)\n"
           "  --listen HOST:PORT         address to listen on (default " DEFAULT_LISTEN
           "); HOST is\n"
           "                             an IP address or localhost, IPv6 as [ADDR]:PORT; port 0\n"
           "                             picks a free port (also written to DIR/serve.port)\n"
           "  --threads N                worker threads (default 2 x CPUs, at most %u; a request\n"
           "                             waiting for its audit record holds none of them)\n"
           "  --max-body BYTES           request body cap, larger bodies get 413 (default %u)\n"
           "  --max-connections N        simultaneous connections (default %u)\n"
           "  --idle-timeout SECONDS     close idle connections after this (default %u)\n"
           "  --drain-timeout SECONDS    on SIGTERM/SIGINT, wait this long for requests in\n"
           "                             flight before stopping (default %u)\n"
           "  --challenge-authorization URL, --challenge-resource URL\n"
           "                             values of the 401 'WWW-Authenticate: Bearer\n"
           "                             authorization=\"...\", resource=\"...\"' challenge, for\n"
           "                             SDKs that check the resource against the vault's host\n"
           "  --io epoll|poll            event loop per worker thread (default epoll)\n"
           "  --metrics public|auth|off  GET /metrics (Prometheus text format): public = no\n"
           "                             authentication, auth = any valid bearer token, off = no\n"
           "                             route (default: public on a loopback listener, else auth)\n"
           "\n"
           "attestation service (POST /attest/{type}, GET /certs; docs/attestation.md):\n"
           "  --trust-sim ROOT.pem       accept sim evidence from the sim platform with this root\n"
           "                             (repeatable; 'cloister sim init' makes it). Sim is the\n"
           "                             DEVELOPMENT-ONLY TEE: without this, sim evidence is refused\n"
           "  --token-lifetime SECONDS   lifetime of attestation tokens (60..%d, default %d)\n"
           "  --issuer URL               the tokens' issuer, https://HOST:PORT (default: the\n"
           "                             listen address with the bound port)\n"
           "  --test-fixed-time T        TEST ONLY: the attestation service's clock stands still at\n"
           "                             T (RFC 3339 UTC or Unix seconds), for recorded evidence;\n"
           "                             also the verification time of hardware evidence\n"
           "  --collateral DIR           Intel DCAP collateral for SgxEnclave/TdxVm: a directory\n"
           "                             of tcb_info.json, qe_identity.json, tcb_signing_chain.pem,\n"
           "                             pck_crl.der, root_ca_crl.der (docs/evidence-dcap.md), or\n"
           "                             a directory of such directories (one per FMSPC/TEE);\n"
           "                             read at start. Without it SgxEnclave/TdxVm are refused\n"
           "  --vcek-cache DIR           SevSnpVm: VCEK/VLEK and ASK/ASVK certificates (.pem .crt\n"
           "                             .cer .der) for reports without a certificate table; read\n"
           "                             at start (AMD roots are compiled in)\n"
           "  --tpm-ak-roots PEM         Tpm: CA certificates that issue TPM AK certificates;\n"
           "                             without it Tpm is refused\n"
           "\n",
           CLST_SERVER_MAX_THREADS, CLST_SERVER_DEFAULT_MAX_BODY, CLST_SERVER_DEFAULT_CONNECTIONS,
           CLST_SERVER_DEFAULT_IDLE_TIMEOUT, DEFAULT_DRAIN_SECONDS, CLST_ATTEST_MAX_TOKEN_LIFETIME,
           CLST_ATTEST_DEFAULT_TOKEN_LIFETIME);
    printf(
        "audit log (docs/operations.md, 'Audit'):\n"
        "  Every request to the vault and the attestation service is recorded before it takes\n"
        "  effect and before it is answered, in hash-chained JSON lines with signed checkpoints\n"
        "  (key DIR/audit.key, public key DIR/audit.pub). If the log cannot be written, requests\n"
        "  fail with 503 and change nothing. Check it with 'cloister audit verify --data DIR'.\n"
        "  --audit-dir DIR            log directory (default DATA/audit)\n"
        "  --audit-max-size BYTES     start a new file past this size (default 64 MiB)\n"
        "  --audit-checkpoint-every N sign a checkpoint every N records (default 1000)\n"
        "  --audit-commit-delay US    hold a group commit up to US microseconds while answers\n"
        "                             to read-only requests are being made, so that their\n"
        "                             records share one sync (default %d, at most %d; 0: off)\n"
        "  --no-audit                 BENCHMARK COMPARISON ONLY: no audit log at all (requests\n"
        "                             are then not recorded; never use in production)\n"
        "\n",
        CLST_AUDIT_DEFAULT_COMMIT_DELAY_US, CLST_AUDIT_MAX_COMMIT_DELAY_US);
    printf("secure key release (POST /keys/{name}/release; docs/key-release.md):\n"
           "  --trust-authority ISSUER=JWKS\n"
           "                             also trust attestation tokens from ISSUER, verified with\n"
           "                             the JWKS at an https:// URL or in a file (repeatable)\n"
           "  --authority-ca PEM         pin this CA bundle for the preceding --trust-authority's\n"
           "                             https URL (default: the system's roots)\n"
           "  --no-trust-local           do not trust this server's own attestation service (it is\n"
           "                             trusted by default)\n"
           "  --redact-denials           403 answers name the failing rule and claim but not the\n"
           "                             expected and actual values\n"
           "  Every release decision is appended to DIR/" CLST_RELEASE_DECISION_LOG ".\n"
           "\n"
           "vault master key in an HSM (docs/operations.md, 'HSM-held master key'):\n"
           "  --pkcs11-module PATH       PKCS#11 module (e.g. /usr/lib/softhsm/libsofthsm2.so); the\n"
           "                             vault's master key is a non-extractable AES-256 key in the\n"
           "                             token, and object keys are wrapped and unwrapped by the HSM\n"
           "  --pkcs11-token LABEL       the token's label\n"
           "  --pkcs11-pin-file FILE     the user PIN (mode 0600); read once, wiped after login\n"
           "  --pkcs11-key-label LABEL   the master key's label (default cloister-master); made in\n"
           "                             the token when missing\n"
           "  A vault created under DIR/master.key moves to the HSM with 'cloister admin rewrap'.\n"
           "\n"
           "governance (docs/operations.md, 'Governance rules'):\n"
           "  --governance FILE          rules (JSON) enforced on key and secret writes: allowed\n"
           "                             key types and sizes, maximum validity, required expiry\n"
           "                             and tags, release-policy rules; a bad file refuses to\n"
           "                             start\n"
           "\n"
           "It prints 'listening on https://HOST:PORT' once it accepts connections; SIGTERM or\n"
           "SIGINT stop it gracefully (exit status 0). GET /healthz answers {\"status\":\"ok\"}.\n"
           "Logs go to stderr ('cloister --log-level info serve' logs every request).\n");
}

#define MAX_SIM_ROOTS 8

struct serve_opts {
    const char *data;
    const char *listen;
    struct clst_server_config cfg;
    unsigned drain_seconds;
    const char *trust_sim[MAX_SIM_ROOTS];
    size_t trust_sim_count;
    int64_t token_lifetime;
    const char *issuer;
    bool fixed_time_set;
    int64_t fixed_time;
    /* "ISSUER=JWKS" as given (copied: clst_vault_authority_parse cuts it at the '=') */
    char authority[CLST_RELEASE_MAX_AUTHORITIES - 1]
                  [CLST_RELEASE_ISSUER_MAX + CLST_RELEASE_SOURCE_MAX + 2];
    const char *authority_ca[CLST_RELEASE_MAX_AUTHORITIES - 1];
    size_t authority_count;
    bool no_trust_local;
    bool redact_denials;
    const char *pkcs11_module, *pkcs11_token, *pkcs11_pin_file, *pkcs11_key_label;
    const char *governance;
    const char *collateral_dir, *vcek_cache_dir, *tpm_roots_file;
    const char *metrics; /* "public", "auth", "off" or NULL (default) */
    const char *audit_dir;           /* NULL: DATA/audit */
    uint64_t audit_max_size;         /* 0: CLST_AUDIT_DEFAULT_MAX_SIZE */
    uint64_t audit_checkpoint_every; /* 0: CLST_AUDIT_DEFAULT_CHECKPOINT_EVERY */
    int audit_commit_delay_us;       /* 0: default; negative: off */
    bool no_audit;
};

static int
parse_uint(const char *opt, const char *v, uint64_t min, uint64_t max, uint64_t *out)
{
    if (clst_parse_u64(v, min, max, out, NULL) != CLST_OK) {
        return cli_usage_error("serve", "%s needs a whole number from %llu to %llu", opt,
                               (unsigned long long)min, (unsigned long long)max);
    }
    return CLI_EXIT_OK;
}

static int
parse_args(int argc, char **argv, struct serve_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->data = DEFAULT_DATA;
    o->listen = DEFAULT_LISTEN;
    o->drain_seconds = DEFAULT_DRAIN_SECONDS;
    clst_server_config_init(&o->cfg);
    for (int i = 1; i < argc; i++) {
        const char *v;
        uint64_t n;
        int rc;
        if ((v = cli_opt_str(argc, argv, &i, "--data")) != NULL) {
            if (v[0] == '\0') {
                return cli_usage_error("serve", "--data needs a directory");
            }
            o->data = v;
        } else if ((v = cli_opt_str(argc, argv, &i, "--listen")) != NULL) {
            o->listen = v;
        } else if ((v = cli_opt_str(argc, argv, &i, "--threads")) != NULL) {
            if ((rc = parse_uint("--threads", v, 1, CLST_SERVER_MAX_THREADS, &n)) != 0) {
                return rc;
            }
            o->cfg.thread_count = (unsigned)n;
        } else if ((v = cli_opt_str(argc, argv, &i, "--max-body")) != NULL) {
            if ((rc = parse_uint("--max-body", v, 1, 1u << 30, &n)) != 0) {
                return rc;
            }
            o->cfg.max_body_size = (size_t)n;
        } else if ((v = cli_opt_str(argc, argv, &i, "--max-connections")) != NULL) {
            if ((rc = parse_uint("--max-connections", v, 1, 100000, &n)) != 0) {
                return rc;
            }
            o->cfg.max_connections = (unsigned)n;
        } else if ((v = cli_opt_str(argc, argv, &i, "--idle-timeout")) != NULL) {
            if ((rc = parse_uint("--idle-timeout", v, 1, 3600, &n)) != 0) {
                return rc;
            }
            o->cfg.idle_timeout_s = (unsigned)n;
        } else if ((v = cli_opt_str(argc, argv, &i, "--drain-timeout")) != NULL) {
            if ((rc = parse_uint("--drain-timeout", v, 0, 3600, &n)) != 0) {
                return rc;
            }
            o->drain_seconds = (unsigned)n;
        } else if ((v = cli_opt_str(argc, argv, &i, "--challenge-authorization")) != NULL) {
            o->cfg.challenge_authorization = v;
        } else if ((v = cli_opt_str(argc, argv, &i, "--challenge-resource")) != NULL) {
            o->cfg.challenge_resource = v;
        } else if ((v = cli_opt_str(argc, argv, &i, "--io")) != NULL) {
            if (strcmp(v, "epoll") == 0) {
                o->cfg.io = CLST_SERVER_IO_EPOLL;
            } else if (strcmp(v, "poll") == 0) {
                o->cfg.io = CLST_SERVER_IO_POLL;
            } else {
                return cli_usage_error("serve", "--io takes epoll or poll");
            }
        } else if ((v = cli_opt_str(argc, argv, &i, "--metrics")) != NULL) {
            if (strcmp(v, "public") != 0 && strcmp(v, "auth") != 0 && strcmp(v, "off") != 0) {
                return cli_usage_error("serve", "--metrics needs public, auth or off");
            }
            o->metrics = v;
        } else if ((v = cli_opt_str(argc, argv, &i, "--audit-dir")) != NULL) {
            if (v[0] == '\0') {
                return cli_usage_error("serve", "--audit-dir needs a directory");
            }
            o->audit_dir = v;
        } else if ((v = cli_opt_str(argc, argv, &i, "--audit-max-size")) != NULL) {
            struct clst_err perr;
            if (clst_parse_u64(v, CLST_AUDIT_MIN_MAX_SIZE, UINT64_MAX / 2, &o->audit_max_size,
                               &perr) != CLST_OK) {
                return cli_usage_error("serve",
                                       "--audit-max-size takes a size in bytes (at least %u)",
                                       CLST_AUDIT_MIN_MAX_SIZE);
            }
        } else if ((v = cli_opt_str(argc, argv, &i, "--audit-checkpoint-every")) != NULL) {
            struct clst_err perr;
            if (clst_parse_u64(v, 1, 1000000000u, &o->audit_checkpoint_every, &perr) != CLST_OK) {
                return cli_usage_error("serve",
                                       "--audit-checkpoint-every takes a record count >= 1");
            }
        } else if ((v = cli_opt_str(argc, argv, &i, "--audit-commit-delay")) != NULL) {
            struct clst_err perr;
            uint64_t us;
            if (clst_parse_u64(v, 0, CLST_AUDIT_MAX_COMMIT_DELAY_US, &us, &perr) != CLST_OK) {
                return cli_usage_error("serve",
                                       "--audit-commit-delay takes microseconds from 0 (off) to %d",
                                       CLST_AUDIT_MAX_COMMIT_DELAY_US);
            }
            o->audit_commit_delay_us = us == 0 ? -1 : (int)us;
        } else if (strcmp(argv[i], "--no-audit") == 0) {
            o->no_audit = true;
        } else if ((v = cli_opt_str(argc, argv, &i, "--trust-sim")) != NULL) {
            if (v[0] == '\0' || o->trust_sim_count == MAX_SIM_ROOTS) {
                return cli_usage_error("serve", "--trust-sim needs a root.pem (at most %d)",
                                       MAX_SIM_ROOTS);
            }
            o->trust_sim[o->trust_sim_count++] = v;
        } else if ((v = cli_opt_str(argc, argv, &i, "--token-lifetime")) != NULL) {
            if ((rc = parse_uint("--token-lifetime", v, 60, CLST_ATTEST_MAX_TOKEN_LIFETIME,
                                 &n)) != 0) {
                return rc;
            }
            o->token_lifetime = (int64_t)n;
        } else if ((v = cli_opt_str(argc, argv, &i, "--issuer")) != NULL) {
            o->issuer = v;
        } else if ((v = cli_opt_str(argc, argv, &i, "--test-fixed-time")) != NULL) {
            struct clst_err terr;
            if (clst_time_parse(v, &o->fixed_time, &terr) != CLST_OK) {
                return cli_usage_error("serve", "--test-fixed-time: %s", terr.msg);
            }
            o->fixed_time_set = true;
        } else if ((v = cli_opt_str(argc, argv, &i, "--trust-authority")) != NULL) {
            if (v[0] == '\0' || o->authority_count == CLST_RELEASE_MAX_AUTHORITIES - 1) {
                return cli_usage_error("serve", "--trust-authority needs ISSUER=JWKS (at most %d)",
                                       CLST_RELEASE_MAX_AUTHORITIES - 1);
            }
            if (strlen(v) >= sizeof(o->authority[0])) {
                return cli_usage_error("serve", "--trust-authority: ISSUER=JWKS is too long");
            }
            memcpy(o->authority[o->authority_count++], v, strlen(v) + 1);
        } else if ((v = cli_opt_str(argc, argv, &i, "--authority-ca")) != NULL) {
            if (v[0] == '\0' || o->authority_count == 0 ||
                o->authority_ca[o->authority_count - 1] != NULL) {
                return cli_usage_error("serve", "--authority-ca PEM follows the --trust-authority "
                                                "it pins (once)");
            }
            o->authority_ca[o->authority_count - 1] = v;
        } else if (strcmp(argv[i], "--no-trust-local") == 0) {
            o->no_trust_local = true;
        } else if (strcmp(argv[i], "--redact-denials") == 0) {
            o->redact_denials = true;
        } else if ((v = cli_opt_str(argc, argv, &i, "--pkcs11-module")) != NULL) {
            if (v[0] == '\0') {
                return cli_usage_error("serve", "--pkcs11-module needs the module's path");
            }
            o->pkcs11_module = v;
        } else if ((v = cli_opt_str(argc, argv, &i, "--pkcs11-token")) != NULL) {
            if (v[0] == '\0') {
                return cli_usage_error("serve", "--pkcs11-token needs the token's label");
            }
            o->pkcs11_token = v;
        } else if ((v = cli_opt_str(argc, argv, &i, "--pkcs11-pin-file")) != NULL) {
            if (v[0] == '\0') {
                return cli_usage_error("serve", "--pkcs11-pin-file needs a file");
            }
            o->pkcs11_pin_file = v;
        } else if ((v = cli_opt_str(argc, argv, &i, "--pkcs11-key-label")) != NULL) {
            if (v[0] == '\0') {
                return cli_usage_error("serve", "--pkcs11-key-label needs a label");
            }
            o->pkcs11_key_label = v;
        } else if ((v = cli_opt_str(argc, argv, &i, "--governance")) != NULL) {
            if (v[0] == '\0') {
                return cli_usage_error("serve", "--governance needs a rules file (JSON; see "
                                                "docs/operations.md)");
            }
            o->governance = v;
        } else if ((v = cli_opt_str(argc, argv, &i, "--collateral")) != NULL) {
            if (v[0] == '\0') {
                return cli_usage_error("serve", "--collateral needs a directory");
            }
            o->collateral_dir = v;
        } else if ((v = cli_opt_str(argc, argv, &i, "--vcek-cache")) != NULL) {
            if (v[0] == '\0') {
                return cli_usage_error("serve", "--vcek-cache needs a directory");
            }
            o->vcek_cache_dir = v;
        } else if ((v = cli_opt_str(argc, argv, &i, "--tpm-ak-roots")) != NULL) {
            if (v[0] == '\0') {
                return cli_usage_error("serve", "--tpm-ak-roots needs a PEM file");
            }
            o->tpm_roots_file = v;
        } else {
            return cli_usage_error("serve", "unknown argument '%s'", argv[i]);
        }
    }
    bool any_p11 = o->pkcs11_module != NULL || o->pkcs11_token != NULL ||
                   o->pkcs11_pin_file != NULL;
    bool all_p11 = o->pkcs11_module != NULL && o->pkcs11_token != NULL &&
                   o->pkcs11_pin_file != NULL;
    if (any_p11 && !all_p11) {
        return cli_usage_error("serve", "--pkcs11-module, --pkcs11-token and --pkcs11-pin-file "
                                        "go together");
    }
    if (o->pkcs11_key_label != NULL && o->pkcs11_module == NULL) {
        return cli_usage_error("serve", "--pkcs11-key-label needs --pkcs11-module");
    }
    return CLI_EXIT_OK;
}

/* A daemon holding keys keeps them out of core dumps and away from same-uid debuggers. */
/* Every certificate of every --trust-sim file, parsed once at start. */
static int
load_sim_roots(const struct serve_opts *o, STACK_OF(X509) **out)
{
    struct clst_err err;
    *out = NULL;
    if (o->trust_sim_count == 0) {
        return CLI_EXIT_OK;
    }
    STACK_OF(X509) *all = sk_X509_new_null();
    if (all == NULL) {
        return cli_failf("serve", "out of memory");
    }
    for (size_t i = 0; i < o->trust_sim_count; i++) {
        char buf[65536];
        FILE *f = fopen(o->trust_sim[i], "rb");
        if (f == NULL) {
            sk_X509_pop_free(all, X509_free);
            return cli_failf("serve", "--trust-sim: cannot open %s: %s", o->trust_sim[i],
                             strerror(errno));
        }
        size_t size = fread(buf, 1, sizeof(buf), f);
        bool too_big = size == sizeof(buf);
        fclose(f);
        STACK_OF(X509) *certs = NULL;
        if (too_big || clst_x509_stack_from_pem(buf, size, &certs, &err) != CLST_OK) {
            sk_X509_pop_free(all, X509_free);
            return cli_failf("serve", "--trust-sim %s: %s", o->trust_sim[i],
                             too_big ? "larger than 64 KiB" : err.msg);
        }
        while (sk_X509_num(certs) > 0) {
            X509 *c = sk_X509_shift(certs);
            if (sk_X509_push(all, c) <= 0) {
                X509_free(c);
            }
        }
        sk_X509_free(certs);
    }
    *out = all;
    return CLI_EXIT_OK;
}

/* The local attestation service's JWKS, for the key release engine (in-process, no HTTP). */
static enum clst_status
local_jwks(void *ctx, json_t **out, struct clst_err *err)
{
    return clst_attest_jwks(ctx, out, err);
}

/*
 * Secure key release: the vault trusts this server's attestation service (unless
 * --no-trust-local) and every --trust-authority; the release-signing certificate is issued by
 * the data directory's CA, so the JWS header's x5c chains to DIR/ca.pem.
 */
static int
setup_release(struct serve_opts *o, const struct clst_server_datadir *dir, struct clst_vault *vault,
              struct clst_attest *attest, struct clst_vault_release **out)
{
    struct clst_vault_authority_config auth[CLST_RELEASE_MAX_AUTHORITIES];
    struct clst_vault_release_config rc;
    struct clst_err err;
    EVP_PKEY *ca_key = NULL;
    char path[4096], log[4096];
    size_t n = 0;
    int exit_code = CLI_EXIT_FAIL;

    memset(auth, 0, sizeof(auth));
    if (!o->no_trust_local) {
        /* Issuer: --issuer, or set once the port is bound (clst_vault_release_authority_set_issuer). */
        auth[n].issuer = o->issuer;
        auth[n].jwks_fn = local_jwks;
        auth[n].jwks_ctx = attest;
        auth[n].refresh_s = 60;
        auth[n].refetch_min_s = 1;
        n++;
    }
    for (size_t i = 0; i < o->authority_count; i++, n++) {
        if (clst_vault_authority_parse(o->authority[i], &auth[n], &err) != CLST_OK) {
            return cli_usage_error("serve", "--trust-authority: %s", err.msg);
        }
        auth[n].ca_file = o->authority_ca[i];
    }
    snprintf(path, sizeof(path), "%s/%s", dir->path, CLST_DATADIR_CA_KEY);
    snprintf(log, sizeof(log), "%s/%s", dir->path, CLST_RELEASE_DECISION_LOG);
    if (clst_pkey_load_pem_file(path, &ca_key, &err) != CLST_OK) {
        return cli_fail("serve", &err);
    }
    clst_vault_release_config_init(&rc);
    rc.authorities = auth;
    rc.authority_count = n;
    rc.redact_denials = o->redact_denials;
    rc.decision_log = log;
    rc.ca_cert = dir->ca_cert;
    rc.ca_key = ca_key;
    if (clst_vault_release_new(vault, &rc, out, &err) != CLST_OK) {
        exit_code = cli_fail("serve", &err);
        goto done;
    }
    printf("key release: trusting %s%zu other attestation authorit%s%s; decisions go to %s\n",
           o->no_trust_local ? "" : "this server's attestation service and ", o->authority_count,
           o->authority_count == 1 ? "y" : "ies", o->redact_denials ? " (denials redacted)" : "",
           log);
    exit_code = CLI_EXIT_OK;
done:
    EVP_PKEY_free(ca_key);
    return exit_code;
}

/*
 * With the vault's master key in an HSM, the attestation service's seal key (the key its signing
 * keys in attest.db are sealed under) is kept wrapped by the HSM in DIR/attest-seal.key, so that
 * DIR/master.key can be destroyed. The first start with the HSM wraps the current master.key
 * bytes (what attest.db is sealed under today) into that file.
 */
static int
hsm_seal_key(struct clst_server_datadir *dir, struct clst_vault_masterkey *mk,
             struct clst_secret **out)
{
    struct clst_err err;
    struct clst_buf blob;
    uint8_t key[64], wrapped[128];
    size_t key_size = 0, wrapped_size = 0;
    int rc = CLI_EXIT_FAIL;
    clst_err_clear(&err);
    clst_buf_init(&blob, 1024);
    enum clst_status st = clst_server_datadir_read(dir, CLST_DATADIR_SEAL_KEY, &blob, &err);
    if (st == CLST_OK) {
        if (clst_vault_masterkey_unwrap(mk, blob.data, blob.size, key, sizeof(key), &key_size,
                                        &err) != CLST_OK ||
            key_size != CLST_MASTER_KEY_SIZE) {
            rc = cli_failf("serve",
                           "%s/%s cannot be unwrapped by the HSM's master key (%s): is this the "
                           "token and key it was made with?",
                           dir->path, CLST_DATADIR_SEAL_KEY,
                           err.msg[0] != '\0' ? err.msg : "wrong size");
            goto out;
        }
    } else if (st == CLST_E_NOTFOUND && dir->master_key != NULL) {
        clst_err_clear(&err);
        if (clst_vault_masterkey_wrap(mk, dir->master_key->ptr, dir->master_key->size, wrapped,
                                      sizeof(wrapped), &wrapped_size, &err) != CLST_OK ||
            clst_server_datadir_create(dir, CLST_DATADIR_SEAL_KEY, wrapped, wrapped_size, &err) !=
                CLST_OK) {
            rc = cli_fail("serve", &err);
            goto out;
        }
        memcpy(key, dir->master_key->ptr, dir->master_key->size);
        key_size = dir->master_key->size;
        printf("attestation seal key: now wrapped by the HSM in %s/%s; %s/%s is no longer used by "
               "this server (keep it only as long as you keep vault backups made before "
               "'cloister admin rewrap', then destroy it)\n",
               dir->path, CLST_DATADIR_SEAL_KEY, dir->path, CLST_DATADIR_MASTER_KEY);
    } else {
        rc = cli_fail("serve", &err);
        goto out;
    }
    if (clst_secret_from(key, key_size, out) != CLST_OK) {
        rc = cli_failf("serve", "out of memory");
        goto out;
    }
    rc = CLI_EXIT_OK;
out:
    clst_wipe(key, sizeof(key));
    clst_buf_cleanup(&blob);
    return rc;
}

static bool
host_is_loopback(const char *host)
{
    return strncmp(host, "127.", 4) == 0 || strcmp(host, "::1") == 0 ||
           strcmp(host, "localhost") == 0;
}

static void
harden(void)
{
    struct rlimit none = {0, 0};
    (void)setrlimit(RLIMIT_CORE, &none);
    (void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

int
cmd_serve(int argc, char **argv)
{
    int exit_code = CLI_EXIT_FAIL;
    struct serve_opts o;
    struct clst_err err;
    struct clst_server_datadir *dir = NULL;
    struct clst_server *server = NULL;
    struct clst_attest *attest = NULL;
    STACK_OF(X509) *sim_roots = NULL;
    struct clst_clock fixed_clock;
    struct clst_vault_masterkey *mk = NULL;
    struct clst_vault_store *store = NULL;
    struct clst_vault *vault = NULL;
    struct clst_vault_release *release = NULL;
    struct clst_vault_governance *gov = NULL;
    struct clst_metrics *metrics = NULL;
    struct clst_audit *audit = NULL;
    struct clst_secret *seal_key = NULL;
    char host[64];
    uint16_t port;
    int sfd = -1;
    sigset_t mask;
    clst_err_clear(&err);

    if (cli_wants_help(argc, argv)) {
        usage();
        return CLI_EXIT_OK;
    }
    int rc = parse_args(argc, argv, &o);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    if (clst_server_listen_parse(o.listen, host, sizeof(host), &port, &err) != CLST_OK) {
        return cli_usage_error("serve", "%s", err.msg);
    }
    harden();

    if (clst_server_datadir_open(o.data, host, NULL, &dir, &err) != CLST_OK) {
        exit_code = cli_fail("serve", &err);
        goto out;
    }
    if (dir->created) {
        printf("created data directory %s (CA, server certificate, master key, administrator "
               "token)\n",
               dir->path);
        printf("administrator token (shown only now; also saved in %s/%s with mode 0600):\n"
               "  %s\n",
               dir->path, CLST_DATADIR_ADMIN_TOKEN, (const char *)dir->first_admin_token->ptr);
        clst_server_datadir_forget_token(dir);
    } else if (dir->server_cert_issued) {
        printf("issued a new server certificate for %s\n", host);
    }
    /* The vault: DIR/vault.db, every value sealed under DIR/master.key; the data directory's
     * administrator token becomes the first Administrator principal. */
    {
        char mk_path[4096];
        char db_path[4096];
        struct clst_vault_sqlite_options sopt = {0};
        struct clst_vault_config vcfg;
        bool admin_created = false;
        size_t purged = 0;
        snprintf(mk_path, sizeof(mk_path), "%s/%s", dir->path, CLST_DATADIR_MASTER_KEY);
        snprintf(db_path, sizeof(db_path), "%s/vault.db", dir->path);
        sopt.path = db_path;
        clst_vault_config_init(&vcfg);
        if (o.governance != NULL) {
            if (clst_vault_governance_load(o.governance, &gov, &err) != CLST_OK) {
                exit_code = cli_fail("serve", &err);
                goto out;
            }
            vcfg.governance = gov;
            printf("governance rules: %s (%zu rules)\n", o.governance,
                   clst_vault_governance_rule_count(gov));
        }
        if (o.pkcs11_module != NULL) {
            struct clst_pkcs11_config pcfg = {
                .module = o.pkcs11_module,
                .token_label = o.pkcs11_token,
                .pin_file = o.pkcs11_pin_file,
                .key_label = o.pkcs11_key_label,
                .create_key = true,
            };
            if (clst_vault_masterkey_pkcs11_open(&pcfg, &mk, &err) != CLST_OK) {
                exit_code = cli_fail("serve", &err);
                goto out;
            }
            printf("vault master key: %s (PKCS#11 token '%s')\n", clst_vault_masterkey_id(mk),
                   o.pkcs11_token);
        } else if (dir->master_key == NULL) {
            exit_code = cli_failf("serve", "%s/%s is missing and %s/%s exists: this vault's master "
                                           "key is in an HSM; start with the --pkcs11-* options",
                                  dir->path, CLST_DATADIR_MASTER_KEY, dir->path,
                                  CLST_DATADIR_SEAL_KEY);
            goto out;
        } else if (clst_vault_masterkey_file_load(mk_path, &mk, &err) != CLST_OK) {
            exit_code = cli_fail("serve", &err);
            goto out;
        }
        if (clst_vault_store_open_sqlite(&sopt, mk, NULL, &store, &err) != CLST_OK) {
            exit_code = cli_fail("serve", &err);
            if (o.pkcs11_module != NULL && err.status == CLST_E_VERIFY) {
                fprintf(stderr, "cloister serve: (to move a vault from DIR/master.key to the HSM, "
                                "stop the server and run 'cloister admin rewrap --data DIR "
                                "--pkcs11-...')\n");
            } else if (o.pkcs11_module == NULL && err.status == CLST_E_VERIFY &&
                       strstr(err.msg, "'pkcs11:") != NULL) {
                fprintf(stderr, "cloister serve: (this vault's master key is in an HSM: start "
                                "with the --pkcs11-* options it was moved with)\n");
            }
            goto out;
        }
        if (
            clst_vault_new(store, mk, &vcfg, &vault, &err) != CLST_OK ||
            clst_vault_bootstrap_admin(vault, dir->admin_token_sha256, &admin_created, &err) !=
                CLST_OK ||
            clst_vault_store_purge_due(store, &purged, &err) != CLST_OK) {
            exit_code = cli_fail("serve", &err);
            goto out;
        }
        if (purged > 0) {
            printf("purged %zu deleted objects past their scheduled purge date\n", purged);
        }
    }
    /* The attestation service: its state is DIR/attest.db, its signing keys are sealed under a
     * key derived from the master key. */
    if ((rc = load_sim_roots(&o, &sim_roots)) != CLI_EXIT_OK) {
        exit_code = rc;
        goto out;
    }
    {
        char db[4096];
        struct clst_attest_config acfg;
        clst_attest_config_init(&acfg);
        snprintf(db, sizeof(db), "%s/%s", dir->path, CLST_ATTEST_DB_FILE);
        acfg.db_path = db;
        if (o.pkcs11_module != NULL) {
            if ((rc = hsm_seal_key(dir, mk, &seal_key)) != CLI_EXIT_OK) {
                exit_code = rc;
                goto out;
            }
            acfg.master_key = seal_key->ptr;
            acfg.master_key_size = seal_key->size;
        } else if (dir->master_key != NULL) {
            acfg.master_key = dir->master_key->ptr;
            acfg.master_key_size = dir->master_key->size;
        } else {
            exit_code = cli_failf("serve", "%s/%s is missing and this vault's master key is in "
                                           "an HSM: start with the --pkcs11-* options",
                                  dir->path, CLST_DATADIR_MASTER_KEY);
            goto out;
        }
        acfg.sim_roots = sim_roots;
        acfg.token_lifetime = o.token_lifetime;
        acfg.issuer = o.issuer;
        acfg.dcap_collateral_dir = o.collateral_dir;
        acfg.vcek_cache_dir = o.vcek_cache_dir;
        acfg.tpm_roots_file = o.tpm_roots_file;
        if (o.fixed_time_set) {
            clst_clock_fixed_init(&fixed_clock, o.fixed_time);
            acfg.clock = &fixed_clock;
            fprintf(stderr, "cloister serve: WARNING: --test-fixed-time: the attestation "
                            "service's clock stands still (tests only)\n");
        }
        if (clst_attest_new(&acfg, &attest, &err) != CLST_OK) {
            exit_code = cli_fail("serve", &err);
            goto out;
        }
    }
    {
        char hw[512];
        clst_attest_hardware_summary(attest, hw, sizeof(hw));
        printf("attestation: %s\n", hw);
    }
    if (sim_roots != NULL) {
        printf("attestation: accepting sim evidence (DEVELOPMENT-ONLY TEE) from %d trusted sim "
               "root(s)\n",
               sk_X509_num(sim_roots));
    }
    if ((rc = setup_release(&o, dir, vault, attest, &release)) != CLI_EXIT_OK) {
        exit_code = rc;
        goto out;
    }
    printf("CA certificate: %s/%s\n", dir->path, CLST_DATADIR_CA_CERT);
    printf("CA SHA-256 fingerprint: %s\n", dir->ca_fingerprint);
    fflush(stdout);

    /* Signals are taken synchronously through a signalfd: block them before any server thread
     * exists so that every thread inherits the mask and no handler ever runs. */
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    if (sigprocmask(SIG_BLOCK, &mask, NULL) != 0) {
        exit_code = cli_failf("serve", "cannot block signals: %s", strerror(errno));
        goto out;
    }
    (void)signal(SIGPIPE, SIG_IGN);
    sfd = signalfd(-1, &mask, SFD_CLOEXEC);
    if (sfd < 0) {
        exit_code = cli_failf("serve", "cannot create a signalfd: %s", strerror(errno));
        goto out;
    }

    o.cfg.host = host;
    o.cfg.port = port;
    o.cfg.tls_cert_pem = dir->server_cert_pem;
    o.cfg.tls_key_pem = (const char *)dir->server_key_pem->ptr;
    /* The attestation service's administration routes are protected: they go after the vault,
     * whose authentication hook guards them (Administrator role). */
    if (!o.no_audit) {
        char adir[4096], akey[4096], apub[4096];
        struct clst_audit_config audcfg;
        clst_audit_config_init(&audcfg);
        if (o.audit_dir != NULL) {
            snprintf(adir, sizeof(adir), "%s", o.audit_dir);
        } else {
            snprintf(adir, sizeof(adir), "%s/%s", dir->path, CLST_AUDIT_DIR_NAME);
        }
        snprintf(akey, sizeof(akey), "%s/%s", dir->path, CLST_AUDIT_KEY_FILE);
        snprintf(apub, sizeof(apub), "%s/%s", dir->path, CLST_AUDIT_PUB_FILE);
        audcfg.dir = adir;
        audcfg.key_path = akey;
        audcfg.pub_path = apub;
        audcfg.max_file_size = o.audit_max_size;
        audcfg.checkpoint_every = o.audit_checkpoint_every;
        audcfg.commit_delay_us = o.audit_commit_delay_us;
        if (clst_audit_open(&audcfg, &audit, &err) != CLST_OK) {
            exit_code = cli_fail("serve", &err);
            goto out;
        }
        printf("audit log: %s (public key %s)\n", adir, apub);
    } else {
        fprintf(stderr, "cloister serve: WARNING: --no-audit: requests are NOT recorded "
                        "(benchmark comparison only)\n");
    }
    /* The audit observer goes first: its `before` refusal (the log cannot be written) must stop
     * a request before anything else sees it. */
    bool metrics_on = o.metrics == NULL || strcmp(o.metrics, "off") != 0;
    bool metrics_protect =
        o.metrics != NULL ? strcmp(o.metrics, "auth") == 0 : !host_is_loopback(host);
    if (clst_server_new(&o.cfg, &server, &err) != CLST_OK ||
        (audit != NULL && clst_audit_observe(audit, server, &err) != CLST_OK) ||
        (metrics_on &&
         (clst_metrics_new(&metrics, &err) != CLST_OK ||
          clst_metrics_register(metrics, server, metrics_protect, &err) != CLST_OK ||
          (audit != NULL && clst_metrics_audit_attach(metrics, audit, &err) != CLST_OK))) ||
        clst_vault_register(vault, server, &err) != CLST_OK ||
        clst_attest_register(attest, server, &err) != CLST_OK ||
        clst_attest_register_admin(attest, server, &err) != CLST_OK ||
        clst_server_start(server, &err) != CLST_OK) {
        exit_code = cli_fail("serve", &err);
        goto out;
    }
    if (metrics_on) {
        printf("metrics: GET /metrics (%s)\n",
               metrics_protect ? "bearer token required" : "no authentication");
    }
    port = clst_server_port(server);
    bool v6 = strchr(host, ':') != NULL;
    if (o.issuer == NULL) {
        char issuer[CLST_ATTEST_MAX_ISSUER_SIZE + 1];
        snprintf(issuer, sizeof(issuer), "https://%s%s%s:%u", v6 ? "[" : "", host, v6 ? "]" : "",
                 (unsigned)port);
        if (clst_attest_issuer_set(attest, issuer, &err) != CLST_OK ||
            (!o.no_trust_local &&
             clst_vault_release_authority_set_issuer(release, 0, issuer, &err) != CLST_OK)) {
            exit_code = cli_fail("serve", &err);
            goto out;
        }
    }
    /* DIR/serve.port and the line below tell clients that the server is ready: both come only
     * once the tokens' issuer is set, so that no client gets a token from a half-set server. */
    if (clst_server_datadir_write_port(dir, port, &err) != CLST_OK) {
        exit_code = cli_fail("serve", &err);
        goto out;
    }
    printf("listening on https://%s%s%s:%u\n", v6 ? "[" : "", host, v6 ? "]" : "", (unsigned)port);
    fflush(stdout);

    struct signalfd_siginfo si;
    for (;;) {
        ssize_t n = read(sfd, &si, sizeof(si));
        if (n == (ssize_t)sizeof(si)) {
            break;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        exit_code = cli_failf("serve", "cannot read the signalfd: %s",
                              n < 0 ? strerror(errno) : "short read");
        goto out;
    }
    fprintf(stderr, "cloister serve: %s received; finishing requests in flight (up to %u s)\n",
            si.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM", o.drain_seconds);
    if (clst_server_stop(server, o.drain_seconds * 1000u, &err) != CLST_OK) {
        fprintf(stderr, "cloister serve: %s\n", err.msg);
    }
    clst_server_datadir_remove_port(dir);
    fprintf(stderr, "cloister serve: stopped\n");
    exit_code = CLI_EXIT_OK;
out:
    clst_server_free(server); /* first: no handler runs after this */
    if (audit != NULL) {
        struct clst_err aerr;
        clst_err_clear(&aerr);
        if (clst_audit_close(audit, &aerr) != CLST_OK) { /* writes the closing checkpoint */
            fprintf(stderr, "cloister serve: audit log: %s\n", aerr.msg);
            if (exit_code == CLI_EXIT_OK) {
                exit_code = CLI_EXIT_FAIL;
            }
        }
    }
    clst_metrics_free(metrics);
    clst_vault_release_free(release); /* before the vault and the attestation service */
    clst_attest_free(attest);
    if (sim_roots != NULL) {
        sk_X509_pop_free(sim_roots, X509_free);
    }
    clst_vault_free(vault);
    clst_vault_governance_free(gov);
    clst_vault_store_close(store);
    clst_vault_masterkey_free(mk);
    clst_secret_free(seal_key);
    clst_server_datadir_free(dir);
    if (sfd >= 0) {
        close(sfd);
    }
    return exit_code;
}
