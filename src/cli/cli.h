/* The cloister command: the subcommand table lives in main.c, one file per subcommand group. */
#ifndef CLST_CLI_H
#define CLST_CLI_H

#include <stdbool.h>

#include <cloister/client.h>
#include <cloister/core.h>
#include <cloister/evidence.h>

/* Exit codes: 0 success, 1 the operation failed, 2 usage error (unknown command or option). */
#define CLI_EXIT_OK    0
#define CLI_EXIT_FAIL  1
#define CLI_EXIT_USAGE 2

struct cli_command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv); /* argv[0] is the subcommand name */
};

/* Prints "cloister <cmd>: <message>" and a hint to run --help; returns CLI_EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints "cloister <cmd>: <err->msg>" (or the status text); returns CLI_EXIT_FAIL. */
int cli_fail(const char *cmd, const struct clst_err *err);
/* Prints "cloister <cmd>: <message>"; returns CLI_EXIT_FAIL. */
int cli_failf(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* True when argv holds -h or --help before any "--". */
int cli_wants_help(int argc, char **argv);
/*
 * Option values: argv[*i] is NAME=VALUE, or NAME (or ALIAS, when not NULL) followed by the value
 * in the next argument (*i then advances past it). Returns 1 and sets *out on a match, 0 when
 * argv[*i] is another option, -1 when the value is missing.
 */
int cli_opt_value(int argc, char **argv, int *i, const char *name, const char *alias,
                  const char **out);
/* The same for callers that test a string: NULL for another option, "" when the value is
 * missing. */
const char *cli_opt_str(int argc, char **argv, int *i, const char *name);

/*
 * Vault connection options of client commands (cli_client.c): --url, --token (avoid: visible in
 * ps), --token-file, --ca, with CLOISTER_URL / CLOISTER_TOKEN / CLOISTER_CA as defaults.
 * Set cfg.url / cfg.ca_file / token_file from the options, then call finish: it reads the
 * token file into wiped memory and applies the environment; cleanup wipes it.
 */
struct cli_vault_opts {
    struct clst_client_config cfg;
    const char *token_file;
    struct clst_buf token_buf;
};
void cli_vault_opts_init(struct cli_vault_opts *o);
int cli_vault_opts_finish(const char *cmd, struct cli_vault_opts *o); /* CLI_EXIT_* */
void cli_vault_opts_cleanup(struct cli_vault_opts *o);
/* finish, then clst_client_new: a client for cfg (url, ca_file, token as given) and token_file
 * (may be NULL). CLI_EXIT_* with the message printed. */
int cli_vault_client_open(const char *cmd, const struct clst_client_config *cfg,
                          const char *token_file, struct clst_client **out);

/* TPM helpers of 'cloister evidence' (cmd_tee.c): 'evidence get' and the tpm options of verify. */
int cli_evidence_get(int argc, char **argv);
int cli_tpm_verify_input(const char *ak_pub_path, bool allow_sha1, struct clst_evidence_input *in,
                         EVP_PKEY **out_ak);

/* Subcommand groups (one file each). */
int cmd_version(int argc, char **argv);   /* cmd_version.c */
int cmd_selftest(int argc, char **argv);  /* cmd_selftest.c */
int cmd_keygen(int argc, char **argv);    /* cmd_envelope.c */
int cmd_encrypt(int argc, char **argv);   /* cmd_envelope.c */
int cmd_decrypt(int argc, char **argv);   /* cmd_envelope.c */
int cmd_inspect(int argc, char **argv);   /* cmd_envelope.c */
int cmd_serve(int argc, char **argv);     /* cmd_serve.c */
int cmd_sim(int argc, char **argv);       /* cmd_sim.c */
int cmd_evidence(int argc, char **argv);  /* cmd_evidence.c */
int cmd_secret(int argc, char **argv);    /* cmd_secret.c */
int cmd_principal(int argc, char **argv); /* cmd_principal.c */
int cmd_key(int argc, char **argv);       /* cmd_key.c */
int cmd_attest(int argc, char **argv);    /* cmd_attest.c */
int cmd_token(int argc, char **argv);     /* cmd_token.c */
int cmd_policy(int argc, char **argv);    /* cmd_policy.c */
int cmd_enclave(int argc, char **argv);   /* cmd_enclave.c */
int cmd_run(int argc, char **argv);       /* cmd_run.c */
int cmd_audit(int argc, char **argv);     /* cmd_audit.c */
int cmd_admin(int argc, char **argv);     /* cmd_admin.c */
int cmd_admin_policy(int argc, char **argv); /* cmd_admin_policy.c: `admin policy ...` */

#endif
