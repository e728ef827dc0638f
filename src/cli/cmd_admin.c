/*
 * cloister admin: offline administration of a data directory.
 *
 *   admin rewrap   move the vault's master key from DIR/master.key to a PKCS#11 HSM (or back)
 *   admin policy   governance rules (cmd_admin_policy.c)
 *
 * rewrap runs with the server stopped: it takes the data directory's lock (the same flock on
 * DIR/.lock that `cloister serve` holds while it runs), so it cannot run beside a server.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cloister/server.h>
#include <cloister/vault_hsm.h>
#include <cloister/vault_store.h>

#include "cli/cli.h"

static void
usage(void)
{
    printf("usage: cloister admin <command> [options]\n"
           "\n"
           "Offline administration of a data directory.\n"
           "\n"
           "commands:\n"
           "  rewrap    move the vault's master key from DIR/%s to a key held in a PKCS#11\n"
           "            HSM (or back, with --to-file); run it with the server stopped\n"
           "  policy    governance rules: 'cloister admin policy check --rules FILE [--data DIR]'\n"
           "\n"
           "'cloister admin <command> --help' describes each command.\n",
           CLST_DATADIR_MASTER_KEY);
}

static void
rewrap_usage(void)
{
    printf(
        "usage: cloister admin rewrap --data DIR --pkcs11-module PATH --pkcs11-token LABEL\n"
        "                             --pkcs11-pin-file FILE [--pkcs11-key-label LABEL]\n"
        "                             [--to-file]\n"
        "\n"
        "Re-wraps every key the vault's master key protects in DIR/vault.db: the key of every\n"
        "key and secret version (live, deleted and recoverable), the database's integrity key,\n"
        "the key-backup key and the release-signing key, from the file master key\n"
        "DIR/%s to a non-extractable AES-256 key in the HSM (made in the token when\n"
        "no key has the label). Values are not re-encrypted; only their keys' wrapping changes.\n"
        "Everything changes in one transaction: if anything fails (a wrong PIN, the HSM going\n"
        "away, a damaged row), the vault is left exactly as it was.\n"
        "\n"
        "Stop the server first (the data directory's lock is taken). Afterwards start it with\n"
        "the same --pkcs11-* options. DIR/%s stays: the vault no longer depends on it,\n"
        "but the attestation service still seals its signing keys (attest.db) with it.\n"
        "\n"
        "options:\n"
        "  --data DIR                 the data directory (of 'cloister serve --data DIR')\n"
        "  --pkcs11-module PATH       PKCS#11 module, e.g. /usr/lib/softhsm/libsofthsm2.so\n"
        "  --pkcs11-token LABEL       the token's label\n"
        "  --pkcs11-pin-file FILE     the user PIN (mode 0600)\n"
        "  --pkcs11-key-label LABEL   the master key's label (default %s)\n"
        "  --to-file                  the other way: from the HSM key back to DIR/%s\n"
        "                             (the HSM key must exist; it is not deleted)\n",
        CLST_DATADIR_MASTER_KEY, CLST_DATADIR_MASTER_KEY, CLST_PKCS11_DEFAULT_KEY_LABEL,
        CLST_DATADIR_MASTER_KEY);
}

struct rewrap_opts {
    const char *data;
    struct clst_pkcs11_config p11;
    bool to_file;
};

static int
rewrap_parse(int argc, char **argv, struct rewrap_opts *o)
{
    memset(o, 0, sizeof(*o));
    for (int i = 1; i < argc; i++) {
        const char *v;
        const char **slot = NULL;
        const char *what = NULL;
        if ((v = cli_opt_str(argc, argv, &i, "--data")) != NULL) {
            slot = &o->data;
            what = "--data needs a directory";
        } else if ((v = cli_opt_str(argc, argv, &i, "--pkcs11-module")) != NULL) {
            slot = &o->p11.module;
            what = "--pkcs11-module needs the path of a PKCS#11 module";
        } else if ((v = cli_opt_str(argc, argv, &i, "--pkcs11-token")) != NULL) {
            slot = &o->p11.token_label;
            what = "--pkcs11-token needs a token label";
        } else if ((v = cli_opt_str(argc, argv, &i, "--pkcs11-pin-file")) != NULL) {
            slot = &o->p11.pin_file;
            what = "--pkcs11-pin-file needs a file";
        } else if ((v = cli_opt_str(argc, argv, &i, "--pkcs11-key-label")) != NULL) {
            slot = &o->p11.key_label;
            what = "--pkcs11-key-label needs a label";
        } else if (strcmp(argv[i], "--to-file") == 0) {
            o->to_file = true;
            continue;
        } else {
            return cli_usage_error("admin rewrap", "unknown argument '%s'", argv[i]);
        }
        if (v[0] == '\0') {
            return cli_usage_error("admin rewrap", "%s", what);
        }
        *slot = v;
    }
    if (o->data == NULL || o->p11.module == NULL || o->p11.token_label == NULL ||
        o->p11.pin_file == NULL) {
        return cli_usage_error("admin rewrap", "--data, --pkcs11-module, --pkcs11-token and "
                                               "--pkcs11-pin-file are required");
    }
    o->p11.create_key = !o->to_file;
    return CLI_EXIT_OK;
}

/* The data directory's lock, as `cloister serve` takes it (held until the process exits or the
 * descriptor is closed). */
static int
lock_datadir(const char *dir, int *out_fd)
{
    struct stat st;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        return cli_failf("admin rewrap", "cannot open data directory %s: %s", dir, strerror(errno));
    }
    if (fstat(dfd, &st) != 0 || st.st_uid != geteuid() || (st.st_mode & 077) != 0) {
        close(dfd);
        return cli_failf("admin rewrap",
                         "data directory %s must belong to this user and be accessible by its "
                         "owner only (0700)",
                         dir);
    }
    int fd = openat(dfd, CLST_DATADIR_LOCK, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    close(dfd);
    if (fd < 0) {
        return cli_failf("admin rewrap", "cannot open %s/%s: %s", dir, CLST_DATADIR_LOCK,
                         strerror(errno));
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        close(fd);
        if (e == EWOULDBLOCK) {
            return cli_failf("admin rewrap",
                             "data directory %s is in use by a running cloister serve; stop it "
                             "first",
                             dir);
        }
        return cli_failf("admin rewrap", "cannot lock %s: %s", dir, strerror(e));
    }
    *out_fd = fd;
    return CLI_EXIT_OK;
}

static int
cmd_rewrap(int argc, char **argv)
{
    int exit_code = CLI_EXIT_FAIL;
    struct rewrap_opts o;
    struct clst_err err;
    struct clst_vault_masterkey *file_mk = NULL;
    struct clst_vault_masterkey *hsm = NULL;
    struct clst_vault_store *store = NULL;
    struct clst_vault_rewrap_stats stats;
    char db[4096];
    char key_path[4096];
    int lock_fd = -1;
    clst_err_clear(&err);

    if (cli_wants_help(argc, argv)) {
        rewrap_usage();
        return CLI_EXIT_OK;
    }
    int rc = rewrap_parse(argc, argv, &o);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    int n1 = snprintf(db, sizeof(db), "%s/vault.db", o.data);
    int n2 = snprintf(key_path, sizeof(key_path), "%s/%s", o.data, CLST_DATADIR_MASTER_KEY);
    if (n1 < 0 || (size_t)n1 >= sizeof(db) || n2 < 0 || (size_t)n2 >= sizeof(key_path)) {
        return cli_usage_error("admin rewrap", "--data: the path is too long");
    }
    rc = lock_datadir(o.data, &lock_fd);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    if (access(db, F_OK) != 0) {
        exit_code = cli_failf("admin rewrap",
                              "%s has no vault database (vault.db); start 'cloister serve --data "
                              "%s' once to create it, or check --data",
                              o.data, o.data);
        goto out;
    }
    if (clst_vault_masterkey_file_load(key_path, &file_mk, &err) != CLST_OK ||
        clst_vault_masterkey_pkcs11_open(&o.p11, &hsm, &err) != CLST_OK) {
        exit_code = cli_fail("admin rewrap", &err);
        goto out;
    }
    struct clst_vault_masterkey *from = o.to_file ? hsm : file_mk;
    struct clst_vault_masterkey *to = o.to_file ? file_mk : hsm;
    struct clst_vault_sqlite_options sopt = {.path = db};
    memset(&stats, 0, sizeof(stats));
    if (clst_vault_store_rewrap_sqlite(&sopt, from, to, &stats, &err) != CLST_OK) {
        clst_err_prefix(&err, "nothing was changed");
        exit_code = cli_fail("admin rewrap", &err);
        goto out;
    }
    /* Read back: the store opens under the new key and its structure checks out. */
    if (clst_vault_store_open_sqlite(&sopt, to, NULL, &store, &err) != CLST_OK ||
        clst_vault_store_check(store, &err) != CLST_OK) {
        exit_code = cli_fail("admin rewrap", &err);
        goto out;
    }
    printf("re-wrapped %zu key and secret version%s and %zu internal vault key%s from master key "
           "%s to master key %s\n",
           stats.versions, stats.versions == 1 ? "" : "s", stats.settings,
           stats.settings == 1 ? "" : "s", clst_vault_masterkey_id(from),
           clst_vault_masterkey_id(to));
    if (!o.to_file) {
        printf("the vault in %s now opens only with the HSM key '%s' of token '%s': start it with\n"
               "  cloister serve --data %s --pkcs11-module %s --pkcs11-token %s "
               "--pkcs11-pin-file %s%s%s\n"
               "%s/%s no longer protects any vault key or secret; it stays because the\n"
               "attestation service still seals its signing keys (attest.db) with it. Backups of\n"
               "vault.db made before now still open with it: destroy them, or guard the key file\n"
               "as well as those backups.\n",
               o.data, o.p11.key_label != NULL ? o.p11.key_label : CLST_PKCS11_DEFAULT_KEY_LABEL,
               o.p11.token_label, o.data, o.p11.module, o.p11.token_label, o.p11.pin_file,
               o.p11.key_label != NULL ? " --pkcs11-key-label " : "",
               o.p11.key_label != NULL ? o.p11.key_label : "", o.data, CLST_DATADIR_MASTER_KEY);
    } else {
        printf("the vault in %s now opens with %s/%s again (start the server without the\n"
               "--pkcs11-* options); the HSM key was left in the token.\n",
               o.data, o.data, CLST_DATADIR_MASTER_KEY);
    }
    exit_code = CLI_EXIT_OK;
out:
    clst_vault_store_close(store);
    clst_vault_masterkey_free(hsm);
    clst_vault_masterkey_free(file_mk);
    if (lock_fd >= 0) {
        close(lock_fd);
    }
    return exit_code;
}

int
cmd_admin(int argc, char **argv)
{
    if (argc < 2) {
        usage();
        return CLI_EXIT_USAGE;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage();
        return CLI_EXIT_OK;
    }
    if (strcmp(argv[1], "rewrap") == 0) {
        return cmd_rewrap(argc - 1, argv + 1);
    }
    if (strcmp(argv[1], "policy") == 0) {
        return cmd_admin_policy(argc - 1, argv + 1);
    }
    return cli_usage_error("admin", "unknown command '%s' (try 'rewrap' or 'policy')", argv[1]);
}
