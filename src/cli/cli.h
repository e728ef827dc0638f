/* The cloister command: the subcommand table lives in main.c, one file per subcommand group. */
#ifndef CLST_CLI_H
#define CLST_CLI_H

#include <cloister/core.h>

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

/* Subcommand groups (one file each). */
int cmd_version(int argc, char **argv);   /* cmd_version.c */
int cmd_selftest(int argc, char **argv);  /* cmd_selftest.c */
int cmd_keygen(int argc, char **argv);    /* cmd_envelope.c */
int cmd_encrypt(int argc, char **argv);   /* cmd_envelope.c */
int cmd_decrypt(int argc, char **argv);   /* cmd_envelope.c */
int cmd_inspect(int argc, char **argv);   /* cmd_envelope.c */

#endif
