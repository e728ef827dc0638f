/* The cloister command: the subcommand table lives in main.c, one file per subcommand group. */
#ifndef CLST_CLI_H
#define CLST_CLI_H

#include <stdbool.h>
#include <stdio.h>

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

/* The same for callers that keep a pointer: the value (advancing *i past it), or NULL when argv[*i]
 * is another option; *missing is set when the option has no value. */
const char *cli_opt_arg(int argc, char **argv, int *i, const char *name, bool *missing);

/* A table of valued options: name and where its value goes. */
struct cli_opt_slot {
    const char *name;
    const char **slot;
};
/* Matches argv[*i] against the table (cli_opt_value, first match wins): *matched and the value
 * stored (*i advanced) on a match. Returns CLI_EXIT_OK, or the usage error "ARG needs a value". */
int cli_opt_slots(const char *cmd, int argc, char **argv, int *i, const struct cli_opt_slot *slots,
                  size_t count, bool *matched);
/* A positional argument that may be given once: into *slot; "unknown option 'A'" when it looks
 * like an option, "unexpected argument 'A'" when *slot is taken. CLI_EXIT_* */
int cli_positional(const char *cmd, const char *a, const char **slot);
/* The start of a command with actions in argv[1]: usage() with *rc = CLI_EXIT_USAGE when there is
 * no action, CLI_EXIT_OK for -h, --help or "help"; the usage error "unknown action 'A'" for one not
 * in `actions`. True when the command is done (return *rc). */
bool cli_action_done(const char *cmd, int argc, char **argv, void (*usage)(void),
                     const char *const *actions, size_t count, int *rc);

/* The start of a command with subcommands whose usage(f) prints to f: usage(stdout) with *rc =
 * CLI_EXIT_OK for -h or --help, usage(stderr) with *rc = CLI_EXIT_USAGE without a subcommand.
 * True when the command is done (return *rc). */
bool cli_help_done(int argc, char **argv, void (*usage)(FILE *f), int *rc);

/* Reads a whole file (or standard input for "-") of at most `max` bytes into out (initialized
 * here). Prints "cannot open PATH: ...", "PATH is larger than MAX bytes" or "cannot read PATH"
 * under cmd and returns CLI_EXIT_FAIL on failure. */
int cli_read_file(const char *cmd, const char *path, size_t max, struct clst_buf *out);
/* Reads a whole file, or standard input when path is NULL (or "-" when dash_is_stdin), into out
 * (its max bounds it; the read chunks are wiped). Errors in err: "cannot open 'PATH': ...",
 * "WHAT is larger than MAX bytes" (WHAT: `what`, else PATH or "the input"), "reading PATH (or
 * stdin) failed". */
enum clst_status cli_read_all(const char *path, bool dash_is_stdin, const char *what,
                              struct clst_buf *out, struct clst_err *err);
/* Writes bytes to `path`, created 0600 (an existing file is made 0600 and replaced; never through
 * a symlink). CLI_EXIT_* with "cannot write 'PATH': ...", "cannot make 'PATH' private ..." or
 * "writing 'PATH' failed" printed under cmd. */
int cli_write_private_file(const char *cmd, const char *path, const void *data, size_t size);
/* Prints j indented by 2 with sorted keys, and a newline (nothing when it cannot be encoded). */
void cli_print_json(const json_t *j);
/* Prints {"value": items} as cli_print_json does. */
void cli_print_json_list(json_t *items);

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

/*
 * Helpers of the vault client commands (cli_client_open.c, linked into cloister-full only: some
 * call the HTTPS client). `cmd` names the command in messages; for key and secret it is also the
 * noun of the collection ("key": /keys and /deletedkeys).
 */
/* "<prefix>[/<escaped name>][/<escaped version>][suffix]", terminated. */
enum clst_status cli_vault_path(const char *prefix, const char *name, const char *version,
                                const char *suffix, struct clst_buf *b);
/* The last path segment of the string member `member` of obj ("…/keys/NAME" → NAME), or "?". */
const char *cli_json_last_segment(const json_t *obj, const char *member);
/* Prints "LABEL(16 wide) TIME" when obj's member `key` is a Unix time. */
void cli_vault_print_time(const char *label, const json_t *obj, const char *key);
/* method (with body, may be NULL) on /<cmd>s[/NAME][/VERSION][suffix]; *out: the answer. CLI_EXIT_*
 * with "the name is too long" or the server's error printed. */
int cli_vault_call(const char *cmd, struct clst_client *c, const char *method, const char *name,
                   const char *version, const char *suffix, const json_t *body, json_t **out);
/* GETs first_path and every nextLink after it; *out: the items of all pages ("value" arrays). */
int cli_vault_fetch_all(const char *cmd, struct clst_client *c, const char *first_path,
                        json_t **out);
/* A listing of keys or secrets (cli_vault_list): how rows are named, and what the plain
 * (neither --deleted nor versions) list shows in its last column. */
struct cli_vault_list {
    const char *id_member;   /* "kid" (keys) or "id" (secrets) */
    const char *last_header; /* plain list: the last column's header */
    const char *last_member; /* plain list: this string member of an item, or NULL for the
                                expiry time (attributes.exp) */
    bool json;
    bool deleted;
    bool versions;
};
/* Fetches a collection (cli_vault_fetch_all) and prints it, JSON or a table: /<cmd>s,
 * /deleted<cmd>s, or /<cmd>s/NAME/versions when l->versions. */
int cli_vault_list(const char *cmd, struct clst_client *c, const char *name,
                   const struct cli_vault_list *l);
/* The usage errors "ACTION needs a CMD NAME" and "ACTION takes no NAME". CLI_EXIT_* */
int cli_vault_name_check(const char *cmd, const char *action, const char *name, bool needs_name);
/* The flags of key and secret: --json, --disabled/--disable (*enabled 0), --enable (and
 * --enabled when enabled_alias; *enabled 1), --clear-tags, --deleted. True when `a` was one. */
bool cli_vault_flag(const char *a, bool enabled_alias, bool *json, int *enabled, bool *clear_tags,
                    bool *deleted);
/* --tag KEY=VALUE: checks v and appends it to tags (at most max). CLI_EXIT_* */
int cli_vault_tag_opt(const char *cmd, const char *v, const char **tags, size_t *count, size_t max);
/* "attributes" members from --enable/--disable (enabled: -1 unchanged, 0, 1), --nbf, --exp
 * (TIME, or "none" for null when allow_none). CLI_EXIT_* */
int cli_vault_attrs(const char *cmd, int enabled, const char *nbf, const char *exp, bool allow_none,
                    json_t *attrs);
/* body's "tags" from --tag options (replacing all) or --clear-tags; a name or value that is not
 * UTF-8 is a usage error. CLI_EXIT_* */
int cli_vault_tags(const char *cmd, const char *const *tags, size_t count, bool clear,
                   json_t *body);
/* delete, recover, purge (and, for keys, rotate) of one key or secret, with the message or JSON
 * of the result. */
int cli_vault_simple(const char *cmd, struct clst_client *c, const char *action, const char *name,
                     bool json);

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
