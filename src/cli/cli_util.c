/* Shared helpers of the subcommands: consistent usage errors and failure messages. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

int
cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "cloister %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nrun 'cloister %s --help' for usage\n", cmd);
    return CLI_EXIT_USAGE;
}

int
cli_fail(const char *cmd, const struct clst_err *err)
{
    const char *msg = (err != NULL && err->msg[0] != '\0')
                          ? err->msg
                          : clst_status_str(err ? err->status : CLST_E_INTERNAL);
    fprintf(stderr, "cloister %s: %s\n", cmd, msg);
    return CLI_EXIT_FAIL;
}

int
cli_failf(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "cloister %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return CLI_EXIT_FAIL;
}

int
cli_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) {
            return 0;
        }
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            return 1;
        }
    }
    return 0;
}

int
cli_opt_value(int argc, char **argv, int *i, const char *name, const char *alias, const char **out)
{
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (strncmp(a, name, n) == 0 && a[n] == '=') {
        *out = a + n + 1;
        return 1;
    }
    if (strcmp(a, name) == 0 || (alias != NULL && strcmp(a, alias) == 0)) {
        if (*i + 1 >= argc) {
            return -1;
        }
        *i += 1;
        *out = argv[*i];
        return 1;
    }
    return 0;
}

const char *
cli_opt_str(int argc, char **argv, int *i, const char *name)
{
    const char *v = NULL;
    int r = cli_opt_value(argc, argv, i, name, NULL, &v);
    return r > 0 ? v : r < 0 ? "" : NULL;
}
