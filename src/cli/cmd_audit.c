/*
 * cloister audit verify | tail: checks and reads the vault's audit log (src/audit, audit.h).
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include <cloister/audit.h>

#include "cli/cli.h"

#define MAX_FILES   4096
#define MAX_FILTERS 16

/* DIR/NAME into out; false when it does not fit. */
static bool
join(char *out, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(out, cap, "%s/%s", dir, name);
    return n >= 0 && (size_t)n < cap;
}

static void
usage(void)
{
    printf("usage: cloister audit verify [--key PUB.pem | --data DIR] [--allow-open] [FILE...]\n"
           "       cloister audit tail [-f] [--raw] [--filter KEY=VALUE ...] (FILE | --data DIR)\n"
           "\n"
           "The audit log records every request to the vault and the attestation service as\n"
           "hash-chained JSON lines with signed checkpoints (docs/operations.md, 'Audit').\n"
           "\n"
           "verify   checks the chain record by record and across rotated files, and every\n"
           "         checkpoint's signature with the audit public key; it names the first bad\n"
           "         record (file, line, seq, what is wrong) and exits 1 then.\n"
           "  --key PUB.pem      the audit public key (DATA/audit.pub)\n"
           "  --data DIR         the server's data directory: key DIR/audit.pub and, when no\n"
           "                     FILE is given, every DIR/audit/audit-*.jsonl in chain order\n"
           "  --allow-open       accept a log that does not end with a closing checkpoint (the\n"
           "                     server is running, or crashed); the records after the last\n"
           "                     checkpoint are then covered by the chain but by no signature.\n"
           "                     Without it such a log fails: it may have been truncated.\n"
           "  FILE...            log files, oldest first (a rotated file names its predecessor)\n"
           "\n"
           "tail     prints records, one line each (seq, time, type, operation, object, who,\n"
           "         status, result, request id), or as they are with --raw.\n"
           "  -f                 keep reading as the log grows, across rotations (Ctrl-C stops)\n"
           "  --filter KEY=VALUE only records whose member KEY (or notes.KEY) equals VALUE,\n"
           "                     e.g. --filter op=keys.release --filter status=403 (repeatable,\n"
           "                     all must match)\n"
           "  --raw              print the JSON lines unchanged\n");
}

/* ---- verify --------------------------------------------------------------------------------- */

static void
free_names(char **names, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        free(names[i]);
    }
    free(names);
}

static int
cmd_verify(int argc, char **argv)
{
    const char *key = NULL, *data = NULL;
    const char *files[MAX_FILES];
    size_t count = 0, listed_count = 0;
    char **listed = NULL;
    bool allow_open = false;
    char path[4096], dir[4096];
    EVP_PKEY *pub = NULL;
    struct clst_audit_verify v;
    struct clst_err err;
    int exit_code = CLI_EXIT_FAIL;

    clst_err_clear(&err);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--key") == 0 && i + 1 < argc) {
            key = argv[++i];
        } else if (strcmp(argv[i], "--data") == 0 && i + 1 < argc) {
            data = argv[++i];
        } else if (strcmp(argv[i], "--allow-open") == 0) {
            allow_open = true;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            return cli_usage_error("audit", "verify: unknown or incomplete option '%s'", argv[i]);
        } else if (count == MAX_FILES) {
            return cli_usage_error("audit", "verify: at most %d files", MAX_FILES);
        } else {
            files[count++] = argv[i];
        }
    }
    if (key == NULL && data == NULL) {
        return cli_usage_error("audit", "verify needs the audit public key: --key PUB.pem or "
                                        "--data DIR");
    }
    if (key == NULL) {
        if (!join(path, sizeof(path), data, CLST_AUDIT_PUB_FILE)) {
            return cli_usage_error("audit", "--data: the path is too long");
        }
        key = path;
    }
    if (count == 0) {
        if (data == NULL) {
            return cli_usage_error("audit", "verify: name the log FILEs, or --data DIR");
        }
        if (!join(dir, sizeof(dir), data, CLST_AUDIT_DIR_NAME)) {
            return cli_usage_error("audit", "--data: the path is too long");
        }
        if (clst_audit_list_files(dir, &listed, &listed_count, &err) != CLST_OK) {
            return cli_fail("audit", &err);
        }
        if (listed_count == 0) {
            free_names(listed, listed_count);
            return cli_failf("audit", "no audit-*.jsonl files in %s", dir);
        }
        if (listed_count > MAX_FILES) {
            free_names(listed, listed_count);
            return cli_failf("audit", "more than %d log files in %s: name them", MAX_FILES, dir);
        }
        for (size_t i = 0; i < listed_count; i++) {
            files[count++] = listed[i];
        }
    }
    if (clst_audit_pub_load(key, &pub, &err) != CLST_OK ||
        clst_audit_verify_init(&v, pub, &err) != CLST_OK) {
        exit_code = cli_fail("audit", &err);
        goto out;
    }
    if (clst_audit_verify_files(&v, files, count, allow_open, &err) != CLST_OK) {
        if (v.bad) {
            printf("BAD: %s line %" PRIu64 " (seq %" PRIu64 "): %s\n", v.bad_file, v.bad_line,
                   v.bad_seq, v.msg);
            fprintf(stderr, "cloister audit: verification failed at the first bad record above\n");
        } else {
            exit_code = cli_fail("audit", &err);
        }
        goto out;
    }
    printf("OK: %" PRIu64 " records in %zu file(s) up to seq %" PRIu64 ", chain intact, %" PRIu64
           " checkpoint(s) verified with key %.16s\n",
           v.records, v.file_count, v.last_seq, v.checkpoints, v.kid);
    if (v.start_note[0] != '\0') {
        printf("note: %s\n", v.start_note);
    }
    if (v.unsigned_tail > 0) {
        printf("open: the last %" PRIu64 " record(s) follow the last checkpoint (no closing "
               "checkpoint: the server is running or did not stop cleanly)\n",
               v.unsigned_tail);
    } else {
        printf("closed: the log ends with its closing checkpoint\n");
    }
    exit_code = CLI_EXIT_OK;
out:
    EVP_PKEY_free(pub);
    free_names(listed, listed_count);
    return exit_code;
}

/* ---- tail ----------------------------------------------------------------------------------- */

struct filter {
    const char *key;
    const char *value;
};

struct tail_opts {
    bool follow, raw;
    struct filter filters[MAX_FILTERS];
    size_t filter_count;
};

static const char *
member_text(json_t *obj, const char *key, char *buf, size_t cap)
{
    json_t *j = json_object_get(obj, key);
    if (j == NULL && strncmp(key, "notes.", 6) == 0) {
        j = json_object_get(json_object_get(obj, "notes"), key + 6);
    }
    if (json_is_string(j)) {
        return json_string_value(j);
    }
    if (json_is_integer(j)) {
        snprintf(buf, cap, "%" JSON_INTEGER_FORMAT, json_integer_value(j));
        return buf;
    }
    if (json_is_true(j)) {
        return "true";
    }
    if (json_is_false(j)) {
        return "false";
    }
    return NULL;
}

static bool
matches(const struct tail_opts *o, json_t *obj)
{
    char buf[32];
    for (size_t i = 0; i < o->filter_count; i++) {
        const char *v = member_text(obj, o->filters[i].key, buf, sizeof(buf));
        if (v == NULL || strcmp(v, o->filters[i].value) != 0) {
            return false;
        }
    }
    return true;
}

/* A string member, or `dflt`. */
static const char *
sv(json_t *obj, const char *key, const char *dflt)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s != NULL ? s : dflt;
}

static void
print_pretty(json_t *obj)
{
    char b1[32];
    const char *type = json_string_value(json_object_get(obj, "type"));
    const char *s;
    printf("%-8s %s %-10s", member_text(obj, "seq", b1, sizeof(b1)),
           json_string_value(json_object_get(obj, "time")), type);
    if (strcmp(type, "attempt") == 0 || strcmp(type, "outcome") == 0) {
        const char *name = json_string_value(json_object_get(obj, "name"));
        const char *version = json_string_value(json_object_get(obj, "version"));
        const char *who = json_string_value(json_object_get(obj, "identity"));
        printf(" %-18s %s%s%s by %s from %s",
               sv(obj, "op", "-"),
               name != NULL ? name : "-", version != NULL && version[0] != '\0' ? "/" : "",
               version != NULL ? version : "", who != NULL ? who : "-",
               sv(obj, "client", "-"));
        if (strcmp(type, "outcome") == 0) {
            char b2[32];
            printf(" -> %s %s", member_text(obj, "status", b2, sizeof(b2)),
                   sv(obj, "result", ""));
            if ((s = json_string_value(json_object_get(obj, "decision"))) != NULL) {
                printf(" (release %s)", s);
            }
        }
        printf(" rid=%s", sv(obj, "rid", "-"));
    } else if (strcmp(type, "checkpoint") == 0) {
        printf(" %s, signed %s",
               sv(obj, "reason", "?"),
               sv(obj, "alg", "?"));
    } else if (strcmp(type, "continue") == 0) {
        printf(" after %s",
               sv(obj, "prev_file", "?"));
    } else if (strcmp(type, "start") == 0) {
        printf("%s", json_is_true(json_object_get(obj, "recovered"))
                         ? " (after an unclean stop)"
                         : (json_is_true(json_object_get(obj, "genesis")) ? " (new log)" : ""));
    }
    putchar('\n');
}

/* Handles one complete line; returns true when it was a rotation checkpoint. */
static bool
tail_line(const struct tail_opts *o, const char *file, uint64_t line_no, const char *line,
          size_t size)
{
    struct clst_audit_record r;
    struct clst_err err;
    bool rotated = false;
    clst_err_clear(&err);
    if (clst_audit_record_parse(line, size, &r, &err) != CLST_OK) {
        fprintf(stderr, "cloister audit: %s line %" PRIu64 ": not a valid record: %s\n", file,
                line_no, err.msg);
        return false;
    }
    json_t *obj = r.obj;
    const char *reason = json_string_value(json_object_get(obj, "reason"));
    rotated = strcmp(r.type, "checkpoint") == 0 && reason != NULL && strcmp(reason, "rotate") == 0;
    if (matches(o, obj)) {
        if (o->raw) {
            fwrite(line, 1, size, stdout);
            putchar('\n');
        } else {
            print_pretty(obj);
        }
        fflush(stdout);
    }
    clst_audit_record_cleanup(&r);
    return rotated;
}

/* The file after `path` in its directory (name order is chain order), or NULL. */
static char *
next_file(const char *path)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    char **names = NULL;
    size_t count = 0;
    char *found = NULL;
    if (slash != NULL) {
        if ((size_t)(slash - path) >= sizeof(dir)) {
            return NULL;
        }
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
    } else {
        snprintf(dir, sizeof(dir), ".");
    }
    if (clst_audit_list_files(dir, &names, &count, NULL) != CLST_OK) {
        return NULL;
    }
    const char *base = slash != NULL ? slash + 1 : path;
    for (size_t i = 0; i < count && found == NULL; i++) {
        const char *b = strrchr(names[i], '/') + 1;
        if (strcmp(b, base) > 0) {
            found = strdup(names[i]);
        }
    }
    free_names(names, count);
    return found;
}

/*
 * 1 when every byte of the file from `off` on is zero; 0 when the byte at `off` is zero but a
 * later one is not; 2 when the byte at `off` is not zero (any more: the file is being written);
 * -1 on a read error.
 */
static int
zeros_to_end(int fd, uint64_t off)
{
    char buf[8192];
    bool first = true;
    for (;;) {
        ssize_t n = pread(fd, buf, sizeof(buf), (off_t)off);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return -1;
        }
        if (n == 0) {
            return 1;
        }
        if (first && buf[0] != '\0') {
            return 2;
        }
        first = false;
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] != '\0') {
                return 0;
            }
        }
        off += (uint64_t)n;
    }
}

static int
tail_file(const struct tail_opts *o, const char *first)
{
    char *path = strdup(first);
    char *line = malloc(CLST_AUDIT_LINE_MAX);
    char chunk[8192];
    size_t size = 0;
    uint64_t line_no = 0, off = 0, line_start = 0; /* offsets: the next byte, the line's start */
    uint64_t suspect = UINT64_MAX;  /* where zeros were last seen with data after them */
    uint64_t clean_at = UINT64_MAX; /* where zeros were last seen with only zeros after them */
    bool too_long = false, rotated = false, retry = false;
    int fd = -1, exit_code = CLI_EXIT_FAIL;

    if (path == NULL || line == NULL) {
        exit_code = cli_failf("audit", "out of memory");
        goto out;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        exit_code = cli_failf("audit", "cannot open %s: %s", path, strerror(errno));
        goto out;
    }
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            exit_code = cli_failf("audit", "cannot read %s: %s", path, strerror(errno));
            goto out;
        }
        bool at_zero = false;
        for (ssize_t i = 0; i < n; i++) {
            if (chunk[i] == '\0') {
                /* Zeros: room the service writes ahead of its records. The data ends here for
                 * now; records (or the rest of this one) may overwrite them later. Zeros that
                 * still have data after them when looked at again are damage: said, with exit
                 * status 1, not waited on forever. */
                uint64_t at = off + (uint64_t)i;
                /* Scanned once per offset: polling again at the same zero is not re-scanning
                 * the whole room (a MiB) every 200 ms. */
                int z = at == clean_at ? 1 : zeros_to_end(fd, at);
                if (z == 1) {
                    clean_at = at;
                }
                if (z < 0) {
                    exit_code = cli_failf("audit", "cannot read %s: %s", path, strerror(errno));
                    goto out;
                }
                if (z == 0 && suspect == at) {
                    exit_code = cli_failf("audit",
                                          "%s: zero bytes at offset %" PRIu64 " are followed by "
                                          "data: the file is damaged (check it with 'cloister "
                                          "audit verify')",
                                          path, at);
                    goto out;
                }
                /* Data after the zeros may be a write seen half done: look again shortly. */
                suspect = z == 0 ? at : UINT64_MAX;
                retry = z != 1;
                at_zero = true;
                break;
            }
            if (chunk[i] == '\n') {
                line_no++;
                if (too_long) {
                    fprintf(stderr, "cloister audit: %s line %" PRIu64 ": longer than %u bytes\n",
                            path, line_no, CLST_AUDIT_LINE_MAX - 1);
                } else {
                    rotated = tail_line(o, path, line_no, line, size);
                }
                size = 0;
                too_long = false;
                line_start = off + (uint64_t)i + 1;
            } else if (size < CLST_AUDIT_LINE_MAX) {
                line[size++] = chunk[i];
            } else {
                too_long = true;
            }
        }
        off += (uint64_t)(n > 0 ? n : 0);
        if (n > 0 && !at_zero) {
            continue;
        }
        if (!o->follow && !retry) {
            break;
        }
        if (at_zero) {
            /* Read the current line again from its start once more has been written. */
            if (lseek(fd, (off_t)line_start, SEEK_SET) < 0) {
                exit_code = cli_failf("audit", "cannot read %s: %s", path, strerror(errno));
                goto out;
            }
            off = line_start;
            size = 0;
            too_long = false;
        }
        if (rotated && o->follow) {
            char *next = next_file(path);
            if (next != NULL) {
                close(fd);
                free(path);
                path = next;
                fd = open(path, O_RDONLY | O_CLOEXEC);
                if (fd < 0) {
                    exit_code = cli_failf("audit", "cannot open %s: %s", path, strerror(errno));
                    goto out;
                }
                size = 0;
                line_no = 0;
                off = line_start = 0;
                suspect = clean_at = UINT64_MAX;
                rotated = false;
                continue;
            }
        }
        if (retry && suspect == UINT64_MAX) {
            retry = false;
            continue; /* the file moved on under us: read it again now */
        }
        retry = false;
        struct timespec ts = {0, 200 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (size > 0) {
        fprintf(stderr, "cloister audit: %s ends in the middle of a record (torn or truncated)\n",
                path);
    }
    exit_code = CLI_EXIT_OK;
out:
    if (fd >= 0) {
        close(fd);
    }
    free(line);
    free(path);
    return exit_code;
}

static int
cmd_tail(int argc, char **argv)
{
    struct tail_opts o;
    const char *file = NULL, *data = NULL;
    char **listed = NULL;
    size_t listed_count = 0;
    struct clst_err err;
    int exit_code;

    memset(&o, 0, sizeof(o));
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-f") == 0 || strcmp(argv[i], "--follow") == 0) {
            o.follow = true;
        } else if (strcmp(argv[i], "--raw") == 0) {
            o.raw = true;
        } else if (strcmp(argv[i], "--data") == 0 && i + 1 < argc) {
            data = argv[++i];
        } else if (strcmp(argv[i], "--filter") == 0 && i + 1 < argc) {
            char *eq = strchr(argv[++i], '=');
            if (eq == NULL || eq == argv[i] || o.filter_count == MAX_FILTERS) {
                return cli_usage_error("audit", "--filter takes KEY=VALUE (at most %d)",
                                       MAX_FILTERS);
            }
            *eq = '\0';
            o.filters[o.filter_count].key = argv[i];
            o.filters[o.filter_count++].value = eq + 1;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            return cli_usage_error("audit", "tail: unknown or incomplete option '%s'", argv[i]);
        } else if (file != NULL) {
            return cli_usage_error("audit", "tail reads one FILE (it follows rotations itself)");
        } else {
            file = argv[i];
        }
    }
    if ((file == NULL) == (data == NULL)) {
        return cli_usage_error("audit", "tail needs a FILE or --data DIR (one of them)");
    }
    if (data != NULL) {
        char dir[4096];
        clst_err_clear(&err);
        if (!join(dir, sizeof(dir), data, CLST_AUDIT_DIR_NAME)) {
            return cli_usage_error("audit", "--data: the path is too long");
        }
        if (clst_audit_list_files(dir, &listed, &listed_count, &err) != CLST_OK) {
            return cli_fail("audit", &err);
        }
        if (listed_count == 0) {
            free_names(listed, listed_count);
            return cli_failf("audit", "no audit-*.jsonl files in %s", dir);
        }
        /* Without -f: every file in order; with -f: from the first, following rotations. */
        exit_code = CLI_EXIT_OK;
        if (o.follow) {
            exit_code = tail_file(&o, listed[0]);
        } else {
            for (size_t i = 0; i < listed_count && exit_code == CLI_EXIT_OK; i++) {
                exit_code = tail_file(&o, listed[i]);
            }
        }
        free_names(listed, listed_count);
        return exit_code;
    }
    return tail_file(&o, file);
}

int
cmd_audit(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage();
        return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
    }
    if (cli_wants_help(argc, argv)) {
        usage();
        return CLI_EXIT_OK;
    }
    if (strcmp(argv[1], "verify") == 0) {
        return cmd_verify(argc - 1, argv + 1);
    }
    if (strcmp(argv[1], "tail") == 0) {
        return cmd_tail(argc - 1, argv + 1);
    }
    return cli_usage_error("audit", "unknown subcommand '%s' (verify or tail)", argv[1]);
}
