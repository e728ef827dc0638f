/* cloister: the command-line entry point. The subcommand table is here; each group of
 * subcommands lives in its own cmd_*.c file.
 *
 * Built twice. `cloister-full` has every command. `cloister` (CLST_CLI_LITE) links only what the
 * data-path commands need (version, selftest, keygen, encrypt, decrypt, inspect with local keys
 * and recipients: OpenSSL, jansson, cjose) and hands every other command, and encrypt/decrypt
 * with a vault key, to `cloister-full` beside it with execv: same process, same arguments, same
 * descriptors. Loading libcurl, libmicrohttpd, GnuTLS, Kerberos, LDAP and tpm2-tss costs more
 * start-up time than encrypting a 16 MiB file, and the data path needs none of them.
 */
#define _POSIX_C_SOURCE 200809L /* setenv, readlink */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

#ifdef CLST_CLI_LITE
#define FULL(fn) NULL /* run by cloister-full */
#define CLI_LITE 1
#else
#define FULL(fn) fn
#define CLI_LITE 0
#endif

static const struct cli_command commands[] = {
    {"version", "print Cloister's and OpenSSL's versions", cmd_version},
    {"selftest", "exercise the crypto layer end to end and report what it did", cmd_selftest},
    {"keygen", "create a local symmetric key file for envelope encryption", cmd_keygen},
    {"encrypt", "encrypt a file into the .clst envelope format", cmd_encrypt},
    {"decrypt", "decrypt and authenticate a .clst file", cmd_decrypt},
    {"inspect", "show a .clst file's header without decrypting", cmd_inspect},
    {"serve", "run the key vault and attestation service over HTTPS", FULL(cmd_serve)},
    {"sim", "create and use a sim (software, development-only) TEE platform", FULL(cmd_sim)},
    {"evidence", "verify attestation evidence offline and print its claims", FULL(cmd_evidence)},
    {"key", "create, use, rotate and delete keys in the vault", FULL(cmd_key)},
    {"secret", "set, get, list and delete secrets in the vault", FULL(cmd_secret)},
    {"principal", "create, list and delete vault principals and their roles", FULL(cmd_principal)},
    {"attest", "submit evidence to the attestation service; manage its policy", FULL(cmd_attest)},
    {"token", "verify an attestation token and print its claims", FULL(cmd_token)},
    {"policy", "evaluate a release or appraisal policy offline, with its trace", FULL(cmd_policy)},
    {"enclave", "sign an enclave image and print its measurement", FULL(cmd_enclave)},
    {"run", "run an enclave image's main in a TEE (sim: a sandboxed process)", FULL(cmd_run)},
    {"audit", "verify and read the vault's tamper-evident audit log", FULL(cmd_audit)},
    {"admin", "vault administration: move the master key to an HSM, check governance rules",
     FULL(cmd_admin)},
};

#define COMMAND_COUNT (sizeof(commands) / sizeof(commands[0]))

static void
usage(FILE *f)
{
    fprintf(f,
            "usage: cloister [--log-level LEVEL] <command> [options]\n"
            "\n"
            "Cloister: confidential computing you host yourself. Encrypt data, verify\n"
            "attestation evidence, keep keys in a vault and release them only to attested TEEs.\n"
            "\n"
            "commands:\n");
    for (size_t i = 0; i < COMMAND_COUNT; i++) {
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    }
    fprintf(f, "\n"
               "options:\n"
               "  -h, --help             this text; 'cloister <command> --help' for a command\n"
               "  --log-level LEVEL      error, warn (default), info or debug; logs go to stderr\n"
               "\n"
               "exit status: 0 success, 1 the operation failed, 2 usage error.\n"
               "documentation: docs/ in the source tree (README.md to start).\n");
}

/* The full binary's path: cloister-full in the directory of this executable. */
#define FULL_NAME "cloister-full"

static int
forward(char **argv)
{
    char path[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
    if (n <= 0 || (size_t)n >= sizeof(path) - sizeof(FULL_NAME) - 1) {
        fprintf(stderr, "cloister: cannot find this program's own path (/proc/self/exe): %s\n",
                n < 0 ? strerror(errno) : "path too long");
        return CLI_EXIT_FAIL;
    }
    path[n] = '\0';
    char *slash = strrchr(path, '/');
    if (slash == NULL) {
        fprintf(stderr, "cloister: unexpected executable path '%s'\n", path);
        return CLI_EXIT_FAIL;
    }
    memcpy(slash + 1, FULL_NAME, sizeof(FULL_NAME));
    argv[0] = path;
    execv(path, argv);
    fprintf(stderr, "cloister: cannot run %s (%s); it is installed beside 'cloister' and runs "
                    "every command but the local data-path ones\n",
            path, strerror(errno));
    return CLI_EXIT_FAIL;
}

/* encrypt/decrypt with a vault key need the HTTPS client: cloister-full's. */
static bool
needs_vault(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) {
            break;
        }
        if (strcmp(argv[i], "--vault") == 0 || strncmp(argv[i], "--key=vault:", 12) == 0 ||
            (strcmp(argv[i], "--key") == 0 && i + 1 < argc &&
             strncmp(argv[i + 1], "vault:", 6) == 0)) {
            return true;
        }
    }
    return false;
}

int
main(int argc, char **argv)
{
    /* tpm2-tss logs warnings about malformed TPM structures to stderr by itself; untrusted
     * evidence is expected to be malformed at times, and our errors already say why. */
    if (getenv("TSS2_LOG") == NULL) {
        (void)setenv("TSS2_LOG", "all+none", 0);
    }
    int i = 1;
    while (i < argc && argv[i][0] == '-') {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return CLI_EXIT_OK;
        }
        if (strcmp(argv[i], "--version") == 0) {
            return cmd_version(1, argv + i);
        }
        if (strcmp(argv[i], "--log-level") == 0 || strncmp(argv[i], "--log-level=", 12) == 0) {
            const char *v = argv[i][11] == '=' ? argv[i] + 12 : (i + 1 < argc ? argv[++i] : NULL);
            enum clst_log_level level;
            if (v == NULL || clst_log_level_parse(v, &level) != CLST_OK) {
                fprintf(stderr, "cloister: --log-level needs one of error, warn, info, debug\n");
                return CLI_EXIT_USAGE;
            }
            clst_log_set_level(level);
            i++;
            continue;
        }
        fprintf(stderr, "cloister: unknown option '%s'; run 'cloister --help'\n", argv[i]);
        return CLI_EXIT_USAGE;
    }
    if (i >= argc) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (strcmp(argv[i], "help") == 0) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    for (size_t k = 0; k < COMMAND_COUNT; k++) {
        if (strcmp(argv[i], commands[k].name) == 0) {
            if (commands[k].run == NULL ||
                ((strcmp(argv[i], "encrypt") == 0 || strcmp(argv[i], "decrypt") == 0) &&
                 CLI_LITE && needs_vault(argc - i, argv + i))) {
                return forward(argv);
            }
            return commands[k].run(argc - i, argv + i);
        }
    }
    fprintf(stderr, "cloister: unknown command '%s'; run 'cloister --help' for the list\n",
            argv[i]);
    return CLI_EXIT_USAGE;
}
