/*
 * cloister run IMAGE: run an enclave's main with host services for the files named on the command
 * line, so simple workloads need no host code. The runtime is src/enclave (docs/enclaves.md).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cloister/client.h>
#include <cloister/evidence.h>
#include <cloister/host.h>

#include "cli/cli.h"

#define CMD           "run"
#define RUN_FILES_MAX 32

int cmd_run(int argc, char **argv);

static void
usage(FILE *f)
{
    fprintf(f,
            "usage: cloister run IMAGE [--tee sim] [--platform DIR] [--in NAME=PATH]...\n"
            "                    [--out NAME=PATH]... [--timeout SEC] [--spin]\n"
            "                    [--attest-url URL] [--vault-url URL] [--ca PEM]\n"
            "                    [--token-file FILE] [-- ARGS...]\n"
            "\n"
            "Runs the main of a signed enclave image (see 'cloister enclave sign') and exits\n"
            "with its return value. The enclave sees only what is given here: ARGS, the files\n"
            "named with --in (read) and --out (created or truncated, made mode 0600, never\n"
            "through a symbolic link) under NAME, \"stdout\" and \"stderr\" (this command's),\n"
            "the host's clock and log, and, with a platform, evidence and sealing.\n"
            "\n"
            "  --tee sim          the TEE to run in; this build has only sim: a separate\n"
            "                     process with seccomp (no files, sockets, exec, ptrace or\n"
            "                     threads: a violation kills it and is reported), no-new-privs,\n"
            "                     non-dumpable memory, no core files, closed descriptors and an\n"
            "                     empty environment. sim is for DEVELOPMENT AND CI: it protects\n"
            "                     against other unprivileged processes, not against root, the\n"
            "                     kernel or this host.\n"
            "  --platform DIR     the sim platform from 'cloister sim init' (default\n"
            "                     $CLOISTER_SIM_PLATFORM); without one, evidence and sealing\n"
            "                     are unavailable to the enclave\n"
            "  --in NAME=PATH     offer PATH to the enclave for reading as file NAME\n"
            "  --out NAME=PATH    offer PATH to the enclave for writing as file NAME\n"
            "  --timeout SEC      fail if the enclave makes no progress for SEC seconds\n"
            "                     (default: no limit)\n"
            "  --spin             spin briefly before sleeping when waiting for the enclave\n"
            "                     (never when both share a CPU)\n"
            "\n"
            "Key release from inside the enclave (clst_enclave_key_release, docs/enclaves.md):\n"
            "this command relays the enclave's evidence to the attestation service and its\n"
            "token to the vault, and hands back the token and the release; it sees only\n"
            "public data (the key comes wrapped to a key the enclave made inside).\n"
            "  --attest-url URL   the attestation service (default $CLOISTER_URL)\n"
            "  --vault-url URL    the vault (default $CLOISTER_URL)\n"
            "  --ca PEM           the CA to pin for both (default $CLOISTER_CA; else the\n"
            "                     system's roots); also given to an enclave that has no CA\n"
            "                     pin of its own to check the release's signature (it logs a\n"
            "                     warning: this host could then substitute a key)\n"
            "  --token-file FILE  the vault credential (first line); default\n"
            "                     $CLOISTER_TOKEN_FILE, else $CLOISTER_TOKEN\n"
            "\n"
            "Locked memory: the enclave locks its memory (mlockall) when it may: as root, or\n"
            "with an unlimited RLIMIT_MEMLOCK. Otherwise a warning is logged (--log-level\n"
            "warn, the default) and its pages may be swapped to disk.\n"
            "\n"
            "environment: CLOISTER_ENCLAVE_LOADER overrides where cloister-enclave-loader is\n"
            "(default: beside this program).\n"
            "\n"
            "exit status: the enclave main's value; 1 when the image does not verify or the\n"
            "enclave fails (crash, sandbox violation, timeout), with the reason on stderr;\n"
            "2 usage error.\n");
}

struct run_file {
    const char *spec; /* NAME=PATH */
    unsigned mode;
};

static int
add_files(struct clst_host_enclave *e, const struct run_file *files, size_t count)
{
    struct clst_err err = {0};
    for (size_t i = 0; i < count; i++) {
        char name[CLST_ENCLAVE_NAME_MAX + 1];
        const char *eq = strchr(files[i].spec, '=');
        size_t n = eq != NULL ? (size_t)(eq - files[i].spec) : 0;
        if (eq == NULL || n == 0 || n > CLST_ENCLAVE_NAME_MAX || eq[1] == '\0') {
            return cli_usage_error(CMD, "'%s': expected NAME=PATH", files[i].spec);
        }
        memcpy(name, files[i].spec, n);
        name[n] = '\0';
        if (clst_host_file_add(e, name, eq + 1, files[i].mode, &err) != CLST_OK) {
            return cli_fail(CMD, &err);
        }
    }
    return CLI_EXIT_OK;
}

int
cmd_run(int argc, char **argv)
{
    const char *image = NULL, *platform_dir = NULL, *tee = "sim", *timeout_s = NULL, *v;
    struct clst_host_relay_config relay = {0};
    struct clst_client_config env;
    struct run_file files[RUN_FILES_MAX];
    size_t file_count = 0;
    struct clst_host_options opts;
    struct clst_host_enclave *e = NULL;
    struct clst_sim_platform *platform = NULL;
    struct clst_err err = {0};
    char **margv = NULL;
    int margc = 0, r, ret = CLI_EXIT_FAIL, code = 0;
    int i;

    clst_host_options_init(&opts);
    opts.call_timeout_ms = CLST_HOST_NO_TIMEOUT;
    /* One enclave per run: a template would only add a fork to the loader's start-up. */
    opts.fresh_process = true;
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        }
        if ((r = cli_opt_value(argc, argv, &i, "--tee", NULL, &v)) != 0) {
            tee = v;
        } else if ((r = cli_opt_value(argc, argv, &i, "--platform", NULL, &v)) != 0) {
            platform_dir = v;
        } else if ((r = cli_opt_value(argc, argv, &i, "--timeout", NULL, &v)) != 0) {
            timeout_s = v;
        } else if ((r = cli_opt_value(argc, argv, &i, "--attest-url", NULL, &v)) != 0) {
            relay.attest_url = v;
        } else if ((r = cli_opt_value(argc, argv, &i, "--vault-url", NULL, &v)) != 0) {
            relay.vault_url = v;
        } else if ((r = cli_opt_value(argc, argv, &i, "--ca", NULL, &v)) != 0) {
            relay.ca_file = v;
        } else if ((r = cli_opt_value(argc, argv, &i, "--token-file", NULL, &v)) != 0) {
            relay.token_file = v;
        } else if ((r = cli_opt_value(argc, argv, &i, "--in", NULL, &v)) != 0 ||
                   (r = cli_opt_value(argc, argv, &i, "--out", NULL, &v)) != 0) {
            if (r > 0) {
                if (file_count >= RUN_FILES_MAX) {
                    return cli_usage_error(CMD, "at most %d files", RUN_FILES_MAX);
                }
                /* v points into argv[i] itself for --in=..., else into the next argument. */
                const char *opt = v == argv[i] ? argv[i - 1] : argv[i];
                files[file_count].spec = v;
                files[file_count].mode =
                    strncmp(opt, "--in", 4) == 0 ? CLST_ENCLAVE_FILE_READ : CLST_ENCLAVE_FILE_WRITE;
                file_count++;
            }
        } else if (strcmp(argv[i], "--spin") == 0) {
            opts.wait = CLST_HOST_WAIT_SPIN;
            continue;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            return cli_usage_error(CMD, "unknown option '%s' (enclave arguments go after --)",
                                   argv[i]);
        } else if (image == NULL) {
            image = argv[i];
            continue;
        } else {
            return cli_usage_error(CMD, "unexpected argument '%s' (enclave arguments go after --)",
                                   argv[i]);
        }
        if (r < 0) {
            return cli_usage_error(CMD, "%s needs a value", argv[i]);
        }
    }
    if (image == NULL) {
        return cli_usage_error(CMD, "which enclave image? (cloister run IMAGE [-- ARGS])");
    }
    if (strcmp(tee, "sim") != 0) {
        return cli_failf(CMD, "TEE '%s' is not supported by this build (it has: sim)", tee);
    }
    if (timeout_s != NULL) {
        uint64_t sec;
        if (clst_parse_u64(timeout_s, 1, 4000000, &sec, &err) != CLST_OK) {
            return cli_usage_error(CMD, "--timeout: '%s' is not a number of seconds (1..4000000)",
                                   timeout_s);
        }
        opts.call_timeout_ms = (uint32_t)(sec * 1000u);
    }
    if (platform_dir == NULL) {
        const char *pe = getenv("CLOISTER_SIM_PLATFORM");
        platform_dir = (pe != NULL && pe[0] != '\0') ? pe : NULL;
    }
    /* Relay defaults from the client's environment (CLOISTER_URL, _CA, _TOKEN) and
     * CLOISTER_TOKEN_FILE. */
    clst_client_config_init(&env);
    clst_client_config_from_env(&env);
    if (relay.attest_url == NULL) {
        relay.attest_url = env.url;
    }
    if (relay.vault_url == NULL) {
        relay.vault_url = env.url;
    }
    if (relay.ca_file == NULL) {
        relay.ca_file = env.ca_file;
    }
    if (relay.token_file == NULL) {
        const char *tf = getenv("CLOISTER_TOKEN_FILE");
        relay.token_file = (tf != NULL && tf[0] != '\0') ? tf : NULL;
    }
    if (relay.token_file == NULL) {
        relay.token = env.token;
    }
    if (platform_dir != NULL) {
        if (clst_evidence_sim_platform_load(platform_dir, &platform, &err) != CLST_OK) {
            ret = cli_fail(CMD, &err);
            goto out;
        }
        opts.platform = platform;
    }
    /* main's argv: the image name, then everything after "--". */
    margc = 1 + (argc - i);
    margv = calloc((size_t)margc + 1, sizeof(char *));
    if (margv == NULL) {
        ret = cli_failf(CMD, "out of memory");
        goto out;
    }
    const char *base = strrchr(image, '/');
    margv[0] = (char *)(base != NULL ? base + 1 : image);
    for (int k = 1; k < margc; k++) {
        margv[k] = argv[i + k - 1];
    }
    if (clst_host_enclave_create(image, &opts, &e, &err) != CLST_OK) {
        ret = cli_fail(CMD, &err);
        goto out;
    }
    if (!clst_host_enclave_has_entry(e, CLST_ENCLAVE_MAIN_ENTRY)) {
        ret = cli_failf(CMD,
                        "%s has no main (define one with CLST_ENCLAVE_DEFINE(entries, main)); "
                        "call its entry points from a host program instead",
                        image);
        goto out;
    }
    if ((relay.attest_url != NULL || relay.vault_url != NULL) &&
        clst_host_relay_register(e, &relay, &err) != CLST_OK) {
        ret = cli_fail(CMD, &err);
        goto out;
    }
    if ((r = add_files(e, files, file_count)) != CLI_EXIT_OK) {
        ret = r;
        goto out;
    }
    if (clst_host_file_add_fd(e, "stdout", STDOUT_FILENO, CLST_ENCLAVE_FILE_WRITE, &err) !=
            CLST_OK ||
        clst_host_file_add_fd(e, "stderr", STDERR_FILENO, CLST_ENCLAVE_FILE_WRITE, &err) !=
            CLST_OK) {
        ret = cli_fail(CMD, &err); /* e.g. --out stdout=...: those two names are taken */
        goto out;
    }
    if (clst_host_enclave_run_main(e, margc, margv, &code, &err) != CLST_OK) {
        ret = cli_fail(CMD, &err);
        goto out;
    }
    fflush(stdout);
    ret = code;
out:
    clst_host_enclave_destroy(e);
    clst_evidence_sim_platform_free(platform);
    free(margv);
    return ret;
}
