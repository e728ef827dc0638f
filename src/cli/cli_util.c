/* Shared helpers of the subcommands: consistent usage errors and failure messages, option
 * values, whole-file input and output, JSON output. */
#define _POSIX_C_SOURCE 200809L /* fdopen, O_CLOEXEC, O_NOFOLLOW */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

const char *
cli_opt_arg(int argc, char **argv, int *i, const char *name, bool *missing)
{
    const char *v = NULL;
    int r = cli_opt_value(argc, argv, i, name, NULL, &v);
    if (r < 0) {
        *missing = true;
    }
    return r > 0 ? v : NULL;
}

/* Appends all of f to out, 4 KiB at a time (each chunk wiped after use): 0 when done, 1 when out
 * cannot take more, 2 on a read error. */
static int
read_stream(FILE *f, struct clst_buf *out)
{
    uint8_t chunk[4096];
    int r = 0;
    for (;;) {
        size_t n = fread(chunk, 1, sizeof chunk, f);
        if (n > 0 && clst_buf_append(out, chunk, n) != CLST_OK) {
            r = 1;
            break;
        }
        if (n < sizeof chunk) {
            r = ferror(f) ? 2 : 0;
            break;
        }
    }
    clst_wipe(chunk, sizeof chunk);
    return r;
}

int
cli_read_file(const char *cmd, const char *path, size_t max, struct clst_buf *out)
{
    bool is_stdin = strcmp(path, "-") == 0;
    clst_buf_init(out, max);
    FILE *f = is_stdin ? stdin : fopen(path, "rb");
    if (f == NULL) {
        return cli_failf(cmd, "cannot open %s: %s", path, strerror(errno));
    }
    int r = read_stream(f, out);
    if (!is_stdin) {
        fclose(f);
    }
    return r == 1   ? cli_failf(cmd, "%s is larger than %zu bytes", path, max)
           : r == 2 ? cli_failf(cmd, "cannot read %s", path)
                    : CLI_EXIT_OK;
}

int
cli_write_private_file(const char *cmd, const char *path, const void *data, size_t size)
{
    FILE *f = NULL;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    /* An existing file keeps its mode on open: make it private before a byte is written. */
    if (fd >= 0 && fchmod(fd, 0600) != 0) {
        int e = errno;
        close(fd);
        return cli_failf(cmd, "cannot make '%s' private (mode 0600): %s", path, strerror(e));
    }
    if (fd < 0 || (f = fdopen(fd, "wb")) == NULL) {
        if (fd >= 0) {
            close(fd);
        }
        return cli_failf(cmd, "cannot write '%s': %s", path, strerror(errno));
    }
    bool ok = fwrite(data, 1, size, f) == size;
    ok = (fclose(f) == 0) && ok;
    if (!ok) {
        return cli_failf(cmd, "writing '%s' failed", path);
    }
    return CLI_EXIT_OK;
}

void
cli_print_json(const json_t *j)
{
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
    if (s != NULL) {
        printf("%s\n", s);
        free(s);
    }
}

void
cli_print_json_list(json_t *items)
{
    json_t *wrap = json_pack("{s:O}", "value", items);
    cli_print_json(wrap);
    json_decref(wrap);
}

int
cli_opt_slots(const char *cmd, int argc, char **argv, int *i, const struct cli_opt_slot *slots,
              size_t count, bool *matched)
{
    const char *a = argv[*i];
    *matched = false;
    for (size_t k = 0; k < count; k++) {
        int r = cli_opt_value(argc, argv, i, slots[k].name, NULL, slots[k].slot);
        if (r < 0) {
            return cli_usage_error(cmd, "%s needs a value", a);
        }
        if (r > 0) {
            *matched = true;
            break;
        }
    }
    return CLI_EXIT_OK;
}

bool
cli_action_done(const char *cmd, int argc, char **argv, void (*usage)(void),
                const char *const *actions, size_t count, int *rc)
{
    if (argc < 2 || cli_wants_help(argc, argv) || strcmp(argv[1], "help") == 0) {
        usage();
        *rc = argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
        return true;
    }
    for (size_t k = 0; k < count; k++) {
        if (strcmp(argv[1], actions[k]) == 0) {
            return false;
        }
    }
    *rc = cli_usage_error(cmd, "unknown action '%s'", argv[1]);
    return true;
}

bool
cli_help_done(int argc, char **argv, void (*usage)(FILE *f), int *rc)
{
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        *rc = CLI_EXIT_OK;
        return true;
    }
    if (argc < 2) {
        usage(stderr);
        *rc = CLI_EXIT_USAGE;
        return true;
    }
    return false;
}

int
cli_positional(const char *cmd, const char *a, const char **slot)
{
    if (a[0] == '-' && a[1] != '\0') {
        return cli_usage_error(cmd, "unknown option '%s'", a);
    }
    if (*slot != NULL) {
        return cli_usage_error(cmd, "unexpected argument '%s'", a);
    }
    *slot = a;
    return CLI_EXIT_OK;
}

enum clst_status
cli_read_all(const char *path, bool dash_is_stdin, const char *what, struct clst_buf *out,
             struct clst_err *err)
{
    bool use_stdin = path == NULL || (dash_is_stdin && strcmp(path, "-") == 0);
    FILE *f = use_stdin ? stdin : fopen(path, "rb");
    if (f == NULL) {
        return clst_err_set(err, CLST_E_IO, "cannot open '%s': %s", path, strerror(errno));
    }
    int r = read_stream(f, out);
    if (!use_stdin) {
        fclose(f);
    }
    if (r == 1) {
        return clst_err_set(err, CLST_E_LIMIT, "%s is larger than %zu bytes",
                            what != NULL ? what
                            : use_stdin  ? "the input"
                                         : path,
                            out->max);
    }
    if (r == 2) {
        return clst_err_set(err, CLST_E_IO, "reading %s failed", use_stdin ? "stdin" : path);
    }
    return CLST_OK;
}
