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

#include <cloister/server.h>

#include "cli/cli.h"

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
           "It prints 'listening on https://HOST:PORT' once it accepts connections; SIGTERM or\n"
           "SIGINT stop it gracefully (exit status 0). GET /healthz answers {\"status\":\"ok\"}.\n"
           "Logs go to stderr ('cloister --log-level info serve' logs every request).\n",
           CLST_SERVER_MAX_THREADS, CLST_SERVER_DEFAULT_MAX_BODY, CLST_SERVER_DEFAULT_CONNECTIONS,
           CLST_SERVER_DEFAULT_IDLE_TIMEOUT, DEFAULT_DRAIN_SECONDS);
}

struct serve_opts {
    const char *data;
    const char *listen;
    struct clst_server_config cfg;
    unsigned drain_seconds;
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
        } else {
            return cli_usage_error("serve", "unknown argument '%s'", argv[i]);
        }
    }
    return CLI_EXIT_OK;
}

/* A daemon holding keys keeps them out of core dumps and away from same-uid debuggers. */
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
    if (clst_server_new(&o.cfg, &server, &err) != CLST_OK ||
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
    clst_server_free(server);
    clst_server_datadir_free(dir);
    if (sfd >= 0) {
        close(sfd);
    }
    return exit_code;
}
