/* cloister: the command-line entry point. The subcommand table is here; each group of
 * subcommands lives in its own cmd_*.c file. */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static const struct cli_command commands[] = {
    {"version", "print Cloister's and OpenSSL's versions", cmd_version},
    {"selftest", "exercise the crypto layer end to end and report what it did", cmd_selftest},
    {"keygen", "create a local symmetric key file for envelope encryption", cmd_keygen},
    {"encrypt", "encrypt a file into the .clst envelope format", cmd_encrypt},
    {"decrypt", "decrypt and authenticate a .clst file", cmd_decrypt},
    {"inspect", "show a .clst file's header without decrypting", cmd_inspect},
    {"serve", "run the key vault and attestation service over HTTPS", cmd_serve},
    {"sim", "create and use a sim (software, development-only) TEE platform", cmd_sim},
    {"evidence", "verify attestation evidence offline and print its claims", cmd_evidence},
    {"key", "create, use, rotate and delete keys in the vault", cmd_key},
    {"secret", "set, get, list and delete secrets in the vault", cmd_secret},
    {"principal", "create, list and delete vault principals and their roles", cmd_principal},
    {"attest", "submit evidence to the attestation service; manage its policy", cmd_attest},
    {"token", "verify an attestation token and print its claims", cmd_token},
    {"policy", "evaluate a release or appraisal policy offline, with its trace", cmd_policy},
    {"enclave", "sign an enclave image and print its measurement", cmd_enclave},
    {"run", "run an enclave image's main in a TEE (sim: a sandboxed process)", cmd_run},
    {"audit", "verify and read the vault's tamper-evident audit log", cmd_audit},
    {"admin", "vault administration: move the master key to an HSM, check governance rules",
     cmd_admin},
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
            return commands[k].run(argc - i, argv + i);
        }
    }
    fprintf(stderr, "cloister: unknown command '%s'; run 'cloister --help' for the list\n",
            argv[i]);
    return CLI_EXIT_USAGE;
}
