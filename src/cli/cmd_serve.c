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
           "  --threads N                worker threads (default: 2 x CPUs; at most %u)\n"
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
           "\n"
           "attestation service (POST /attest/{type}, GET /certs; docs/attestation.md):\n"
           "  --trust-sim ROOT.pem       accept sim evidence from the sim platform with this root\n"
           "                             (repeatable; 'cloister sim init' makes it). Sim is the\n"
           "                             DEVELOPMENT-ONLY TEE: without this, sim evidence is refused\n"
           "  --token-lifetime SECONDS   lifetime of attestation tokens (60..%d, default %d)\n"
           "  --issuer URL               the tokens' issuer, https://HOST:PORT (default: the\n"
           "                             listen address with the bound port)\n"
           "  --test-fixed-time T        TEST ONLY: the attestation service's clock stands still at\n"
           "                             T (RFC 3339 UTC or Unix seconds), for recorded evidence\n"
           "\n"
           "secure key release (POST /keys/{name}/release; docs/key-release.md):\n"
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
           "It prints 'listening on https://HOST:PORT' once it accepts connections; SIGTERM or\n"
           "SIGINT stop it gracefully (exit status 0). GET /healthz answers {\"status\":\"ok\"}.\n"
           "Logs go to stderr ('cloister --log-level info serve' logs every request).\n",
           CLST_SERVER_MAX_THREADS, CLST_SERVER_DEFAULT_MAX_BODY, CLST_SERVER_DEFAULT_CONNECTIONS,
           CLST_SERVER_DEFAULT_IDLE_TIMEOUT, DEFAULT_DRAIN_SECONDS, CLST_ATTEST_MAX_TOKEN_LIFETIME,
           CLST_ATTEST_DEFAULT_TOKEN_LIFETIME);
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
};

/* "--name VALUE" or "--name=VALUE"; advances *i past the value. */
static const char *
opt_value(int argc, char **argv, int *i, const char *name)
{
    size_t n = strlen(name);
    if (strncmp(argv[*i], name, n) != 0) {
        return NULL;
    }
    if (argv[*i][n] == '=') {
        return argv[*i] + n + 1;
    }
    if (argv[*i][n] != '\0') {
        return NULL;
    }
    if (*i + 1 >= argc) {
        return "";
    }
    (*i)++;
    return argv[*i];
}

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
        if ((v = opt_value(argc, argv, &i, "--data")) != NULL) {
            if (v[0] == '\0') {
                return cli_usage_error("serve", "--data needs a directory");
            }
            o->data = v;
        } else if ((v = opt_value(argc, argv, &i, "--listen")) != NULL) {
            o->listen = v;
        } else if ((v = opt_value(argc, argv, &i, "--threads")) != NULL) {
            if ((rc = parse_uint("--threads", v, 1, CLST_SERVER_MAX_THREADS, &n)) != 0) {
                return rc;
            }
            o->cfg.thread_count = (unsigned)n;
        } else if ((v = opt_value(argc, argv, &i, "--max-body")) != NULL) {
            if ((rc = parse_uint("--max-body", v, 1, 1u << 30, &n)) != 0) {
                return rc;
            }
            o->cfg.max_body_size = (size_t)n;
        } else if ((v = opt_value(argc, argv, &i, "--max-connections")) != NULL) {
            if ((rc = parse_uint("--max-connections", v, 1, 100000, &n)) != 0) {
                return rc;
            }
            o->cfg.max_connections = (unsigned)n;
        } else if ((v = opt_value(argc, argv, &i, "--idle-timeout")) != NULL) {
            if ((rc = parse_uint("--idle-timeout", v, 1, 3600, &n)) != 0) {
                return rc;
            }
            o->cfg.idle_timeout_s = (unsigned)n;
        } else if ((v = opt_value(argc, argv, &i, "--drain-timeout")) != NULL) {
            if ((rc = parse_uint("--drain-timeout", v, 0, 3600, &n)) != 0) {
                return rc;
            }
            o->drain_seconds = (unsigned)n;
        } else if ((v = opt_value(argc, argv, &i, "--challenge-authorization")) != NULL) {
            o->cfg.challenge_authorization = v;
        } else if ((v = opt_value(argc, argv, &i, "--challenge-resource")) != NULL) {
            o->cfg.challenge_resource = v;
        } else if ((v = opt_value(argc, argv, &i, "--io")) != NULL) {
            if (strcmp(v, "epoll") == 0) {
                o->cfg.io = CLST_SERVER_IO_EPOLL;
            } else if (strcmp(v, "poll") == 0) {
                o->cfg.io = CLST_SERVER_IO_POLL;
            } else {
                return cli_usage_error("serve", "--io takes epoll or poll");
            }
        } else if ((v = opt_value(argc, argv, &i, "--trust-sim")) != NULL) {
            if (v[0] == '\0' || o->trust_sim_count == MAX_SIM_ROOTS) {
                return cli_usage_error("serve", "--trust-sim needs a root.pem (at most %d)",
                                       MAX_SIM_ROOTS);
            }
            o->trust_sim[o->trust_sim_count++] = v;
        } else if ((v = opt_value(argc, argv, &i, "--token-lifetime")) != NULL) {
            if ((rc = parse_uint("--token-lifetime", v, 60, CLST_ATTEST_MAX_TOKEN_LIFETIME,
                                 &n)) != 0) {
                return rc;
            }
            o->token_lifetime = (int64_t)n;
        } else if ((v = opt_value(argc, argv, &i, "--issuer")) != NULL) {
            o->issuer = v;
        } else if ((v = opt_value(argc, argv, &i, "--test-fixed-time")) != NULL) {
            struct clst_err terr;
            if (clst_time_parse(v, &o->fixed_time, &terr) != CLST_OK) {
                return cli_usage_error("serve", "--test-fixed-time: %s", terr.msg);
            }
            o->fixed_time_set = true;
        } else if ((v = opt_value(argc, argv, &i, "--trust-authority")) != NULL) {
            if (v[0] == '\0' || o->authority_count == CLST_RELEASE_MAX_AUTHORITIES - 1) {
                return cli_usage_error("serve", "--trust-authority needs ISSUER=JWKS (at most %d)",
                                       CLST_RELEASE_MAX_AUTHORITIES - 1);
            }
            if (strlen(v) >= sizeof(o->authority[0])) {
                return cli_usage_error("serve", "--trust-authority: ISSUER=JWKS is too long");
            }
            memcpy(o->authority[o->authority_count++], v, strlen(v) + 1);
        } else if ((v = opt_value(argc, argv, &i, "--authority-ca")) != NULL) {
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
        } else {
            return cli_usage_error("serve", "unknown argument '%s'", argv[i]);
        }
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
        if (clst_vault_masterkey_file_load(mk_path, &mk, &err) != CLST_OK ||
            clst_vault_store_open_sqlite(&sopt, mk, NULL, &store, &err) != CLST_OK ||
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
        acfg.master_key = dir->master_key->ptr;
        acfg.master_key_size = dir->master_key->size;
        acfg.sim_roots = sim_roots;
        acfg.token_lifetime = o.token_lifetime;
        acfg.issuer = o.issuer;
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
    if (clst_server_new(&o.cfg, &server, &err) != CLST_OK ||
        clst_vault_register(vault, server, &err) != CLST_OK ||
        clst_attest_register(attest, server, &err) != CLST_OK ||
        clst_attest_register_admin(attest, server, &err) != CLST_OK ||
        clst_server_start(server, &err) != CLST_OK) {
        exit_code = cli_fail("serve", &err);
        goto out;
    }
    port = clst_server_port(server);
    if (clst_server_datadir_write_port(dir, port, &err) != CLST_OK) {
        exit_code = cli_fail("serve", &err);
        goto out;
    }
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
    clst_vault_release_free(release); /* before the vault and the attestation service */
    clst_attest_free(attest);
    if (sim_roots != NULL) {
        sk_X509_pop_free(sim_roots, X509_free);
    }
    clst_vault_free(vault);
    clst_vault_store_close(store);
    clst_vault_masterkey_free(mk);
    clst_server_datadir_free(dir);
    if (sfd >= 0) {
        close(sfd);
    }
    return exit_code;
}
