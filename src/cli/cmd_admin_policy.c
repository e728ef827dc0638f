/*
 * cloister admin policy: the vault's governance rules (include/cloister/vault_governance.h).
 *
 *   cloister admin policy check --rules FILE [--data DIR]
 *
 * lists the key and secret versions of a data directory's vault that break the rules in FILE
 * (typically objects written before the rules were turned on), one line per broken rule:
 *
 *   key db-key 0123456789abcdef0123456789abcdef require-expiry: the key has no expiry; ...
 *
 * (kind, name, version and rule never contain spaces, so the first four fields split on
 * spaces). It only reads the vault, and works with the server stopped or running.
 * Exit: 0 no violation, 1 violations found (or the check could not run: the reason is on
 * stderr), 2 usage error.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <cloister/server.h>
#include <cloister/vault_hsm.h>
#include <cloister/vault_governance.h>
#include <cloister/vault_store.h>

#include "cli/cli.h"

#define DEFAULT_DATA "./cloister-data"

static void
usage(void)
{
    printf("usage: cloister admin policy check --rules FILE [--data DIR] [--pkcs11-...]\n"
           "\n"
           "Lists the key and secret versions of the vault in DIR that break the governance\n"
           "rules in FILE (the file `cloister serve --governance FILE` enforces), one line per\n"
           "broken rule: KIND NAME VERSION RULE: DETAIL. Reads the vault only; the server may be\n"
           "running.\n"
           "\n"
           "options:\n"
           "  --rules FILE   the governance rules (JSON; see docs/operations.md)\n"
           "  --data DIR     the data directory (default " DEFAULT_DATA ")\n"
           "  --pkcs11-module PATH, --pkcs11-token LABEL, --pkcs11-pin-file FILE,\n"
           "  --pkcs11-key-label LABEL\n"
           "                 the master key is in an HSM (as for `cloister serve`); without\n"
           "                 them it is DIR/master.key\n"
           "\n"
           "exit status: 0 no violation, 1 violations found or the check failed, 2 usage error\n");
}

static void
print_finding(void *ctx, const struct clst_vault_governance_finding *f)
{
    (void)ctx;
    printf("%s %s %s %s: %s\n", clst_vault_kind_name(f->kind), f->name, f->version, f->rule,
           f->detail);
}

static int
check(int argc, char **argv)
{
    const char *rules_path = NULL;
    const char *data = DEFAULT_DATA;
    struct clst_vault_governance *g = NULL;
    struct clst_vault_masterkey *mk = NULL;
    struct clst_vault_store *store = NULL;
    struct clst_err err = {0};
    char db_path[4096];
    char mk_path[4096];
    struct stat sb;
    size_t versions = 0, findings = 0;
    int exit_code = CLI_EXIT_FAIL;

    struct clst_pkcs11_config p11 = {0};
    static const char *const valued[] = {"--rules",          "--data",         "--pkcs11-module",
                                         "--pkcs11-token",   "--pkcs11-pin-file",
                                         "--pkcs11-key-label"};
    const char **slots[] = {&rules_path,      &data,         &p11.module,
                            &p11.token_label, &p11.pin_file, &p11.key_label};
    for (int i = 1; i < argc; i++) {
        size_t k = 0;
        while (k < sizeof valued / sizeof valued[0] && strcmp(argv[i], valued[k]) != 0) {
            k++;
        }
        if (k == sizeof valued / sizeof valued[0]) {
            return cli_usage_error("admin policy check", "unknown option '%s'", argv[i]);
        }
        if (i + 1 >= argc || argv[i + 1][0] == '\0') {
            return cli_usage_error("admin policy check", "%s needs a value", argv[i]);
        }
        *slots[k] = argv[++i];
    }
    bool any_p11 = p11.module != NULL || p11.token_label != NULL || p11.pin_file != NULL ||
                   p11.key_label != NULL;
    if (any_p11 && (p11.module == NULL || p11.token_label == NULL || p11.pin_file == NULL)) {
        return cli_usage_error("admin policy check", "--pkcs11-module, --pkcs11-token and "
                                                     "--pkcs11-pin-file go together");
    }
    if (rules_path == NULL) {
        return cli_usage_error("admin policy check",
                               "--rules FILE is required (the governance rules to check against)");
    }
    if (clst_vault_governance_load(rules_path, &g, &err) != CLST_OK) {
        exit_code = cli_fail("admin policy check", &err);
        goto out;
    }
    int n1 = snprintf(db_path, sizeof db_path, "%s/vault.db", data);
    int n2 = snprintf(mk_path, sizeof mk_path, "%s/%s", data, CLST_DATADIR_MASTER_KEY);
    if (n1 < 0 || (size_t)n1 >= sizeof db_path || n2 < 0 || (size_t)n2 >= sizeof mk_path) {
        exit_code = cli_failf("admin policy check", "the data directory path is too long");
        goto out;
    }
    /* Never create a database: opening a missing one would make an empty vault. */
    if (stat(db_path, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        exit_code = cli_failf("admin policy check",
                              "no vault database at %s; give the data directory of "
                              "`cloister serve` with --data",
                              db_path);
        goto out;
    }
    /* Read-only: never migrates, never takes the write lock, so it runs beside a live serve. */
    struct clst_vault_sqlite_options sopt = {.path = db_path, .reader_count = 1, .read_only = true};
    /* The HSM's key is only looked up, never made (create_key false). */
    enum clst_status st = any_p11 ? clst_vault_masterkey_pkcs11_open(&p11, &mk, &err)
                                  : clst_vault_masterkey_file_load(mk_path, &mk, &err);
    if (st != CLST_OK || clst_vault_store_open_sqlite(&sopt, mk, NULL, &store, &err) != CLST_OK) {
        exit_code = cli_fail("admin policy check", &err);
        goto out;
    }
    if (clst_vault_governance_check_store(g, store, print_finding, NULL, &versions, &findings,
                                          &err) != CLST_OK) {
        exit_code = cli_fail("admin policy check", &err);
        goto out;
    }
    fflush(stdout);
    fprintf(stderr,
            "checked %zu key and secret versions against %zu rules from %s: %zu "
            "violation%s\n",
            versions, clst_vault_governance_rule_count(g), rules_path, findings,
            findings == 1 ? "" : "s");
    exit_code = findings > 0 ? CLI_EXIT_FAIL : CLI_EXIT_OK;
out:
    clst_vault_store_close(store);
    clst_vault_masterkey_free(mk);
    clst_vault_governance_free(g);
    return exit_code;
}

int
cmd_admin_policy(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage();
        return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
    }
    if (strcmp(argv[1], "check") == 0) {
        if (cli_wants_help(argc - 1, argv + 1)) {
            usage();
            return CLI_EXIT_OK;
        }
        return check(argc - 1, argv + 1);
    }
    return cli_usage_error("admin policy", "unknown subcommand '%s' (try 'check')", argv[1]);
}
