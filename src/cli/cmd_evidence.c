/*
 * cloister evidence verify: verifies attestation evidence offline (no service needed) against
 * the trust roots given on the command line and prints its claims, or why it was rejected.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cloister/crypto.h>
#include <cloister/evidence.h>

#include "cli/cli.h"

#define CMD "evidence"

/* Input files are read whole; these bound what a mistaken path can make us allocate. Evidence
 * larger than its kind's own limit is still read so the library can say so precisely. */
#define EVIDENCE_FILE_MAX (1u * 1024 * 1024)
#define ROOT_FILE_MAX     (1u * 1024 * 1024)
#define RUNTIME_DATA_MAX  (16u * 1024 * 1024)

static void
usage(FILE *f)
{
    fprintf(
        f, "usage: cloister evidence verify --type KIND FILE --root ROOT.pem [--time T]\n"
           "                                [--runtime-data FILE] [--report-data HEX]\n"
           "                                [--allow-debug] [--json]\n"
           "\n"
           "Verifies attestation evidence offline, without an attestation service: the signing\n"
           "certificate must chain to a certificate in ROOT.pem at time T, the signature must\n"
           "cover the evidence as given, and the TEE must not be debuggable. Prints the claims\n"
           "on success; on rejection prints what failed and exits 1.\n"
           "\n"
           "  --type KIND          the evidence kind; this build verifies: sim\n"
           "                       (sim is the DEVELOPMENT-ONLY software TEE: it does not protect\n"
           "                       against root, the kernel or the host, and its claims are\n"
           "                       x-cloister-sim-*, which no hardware policy matches)\n"
           "  FILE                 the evidence ('-' for standard input)\n"
           "  --root ROOT.pem      trusted root certificate(s), PEM; for sim, the root.pem of\n"
           "                       the platform ('cloister sim init')\n"
           "  --time T             judge certificate validity at T (RFC 3339 UTC such as\n"
           "                       2025-01-31T12:00:00Z, or Unix seconds); default: now\n"
           "  --runtime-data FILE  require the report data to bind FILE (its first 32 bytes\n"
           "                       must be SHA-256 of FILE)\n"
           "  --report-data HEX    require the report data to be exactly these bytes\n"
           "  --allow-debug        accept a debuggable TEE (development only)\n"
           "  --json               print the claims as a JSON object only\n"
           "\n"
           "exit status: 0 verified, 1 rejected or failed, 2 usage error.\n");
}

static int
opt_value(int argc, char **argv, int *i, const char *name, const char **out)
{
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (strncmp(a, name, n) == 0 && a[n] == '=') {
        *out = a + n + 1;
        return 1;
    }
    if (strcmp(a, name) == 0) {
        if (*i + 1 >= argc) {
            return -1;
        }
        *i += 1;
        *out = argv[*i];
        return 1;
    }
    return 0;
}

/* Reads a whole file (or standard input for "-") of at most `max` bytes into out. */
static int
read_file(const char *path, size_t max, struct clst_buf *out)
{
    bool is_stdin = strcmp(path, "-") == 0;
    FILE *f = is_stdin ? stdin : fopen(path, "rb");
    if (f == NULL) {
        return cli_failf(CMD, "cannot open %s: %s", path, strerror(errno));
    }
    int ret = CLI_EXIT_OK;
    clst_buf_init(out, max);
    for (;;) {
        uint8_t chunk[4096];
        size_t n = fread(chunk, 1, sizeof(chunk), f);
        if (n > 0 && clst_buf_append(out, chunk, n) != CLST_OK) {
            ret = cli_failf(CMD, "%s is larger than %zu bytes", path, max);
            break;
        }
        if (n < sizeof(chunk)) {
            if (ferror(f)) {
                ret = cli_failf(CMD, "cannot read %s", path);
            }
            break;
        }
    }
    if (!is_stdin) {
        fclose(f);
    }
    return ret;
}

static void
print_claims(const json_t *claims)
{
    const char *name;
    json_t *value;
    json_object_foreach((json_t *)claims, name, value)
    {
        char *text = json_dumps(value, JSON_ENCODE_ANY);
        printf("  %-32s %s\n", name, text != NULL ? text : "?");
        free(text);
    }
}

static int
verify(int argc, char **argv)
{
    const char *type = NULL, *file = NULL, *root_path = NULL, *time_str = NULL;
    const char *runtime_path = NULL, *report_hex = NULL;
    bool allow_debug = false, json = false;
    struct clst_buf evidence = {0}, roots_pem = {0}, runtime = {0}, report_data = {0};
    STACK_OF(X509) *roots = NULL;
    json_t *claims = NULL;
    struct clst_err err = {0};
    struct clst_evidence_input in;
    enum clst_evidence_kind kind;
    int ret = CLI_EXIT_FAIL;

    memset(&in, 0, sizeof(in));
    const struct {
        const char *name;
        const char **slot;
    } opts[] = {
        {"--type", &type},
        {"--root", &root_path},
        {"--time", &time_str},
        {"--runtime-data", &runtime_path},
        {"--report-data", &report_hex},
    };
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--allow-debug") == 0) {
            allow_debug = true;
            continue;
        }
        if (strcmp(argv[i], "--json") == 0) {
            json = true;
            continue;
        }
        const char *v = NULL;
        int m = 0;
        size_t k = 0;
        for (; k < sizeof(opts) / sizeof(opts[0]); k++) {
            m = opt_value(argc, argv, &i, opts[k].name, &v);
            if (m != 0) {
                break;
            }
        }
        if (m < 0) {
            return cli_usage_error(CMD, "verify: %s needs a value", argv[i]);
        }
        if (m > 0) {
            if (*opts[k].slot != NULL) {
                return cli_usage_error(CMD, "verify: %s given twice", opts[k].name);
            }
            *opts[k].slot = v;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            return cli_usage_error(CMD, "verify: unknown option '%s'", argv[i]);
        } else if (file == NULL) {
            file = argv[i];
        } else {
            return cli_usage_error(CMD, "verify: unexpected argument '%s'", argv[i]);
        }
    }
    if (type == NULL) {
        return cli_usage_error(CMD, "verify: --type is required (sim)");
    }
    if (file == NULL) {
        return cli_usage_error(CMD, "verify: which evidence file?");
    }
    if (root_path == NULL) {
        return cli_usage_error(CMD, "verify: --root is required: evidence is only as good as "
                                    "the root it chains to");
    }
    if (clst_evidence_kind_parse(type, &kind, &err) != CLST_OK) {
        return cli_usage_error(CMD, "verify: %s", err.msg);
    }
    if (!clst_evidence_kind_supported(kind)) {
        return cli_failf(CMD,
                         "evidence of type '%s' cannot be verified by this build yet "
                         "(supported: sim)",
                         type);
    }
    if (time_str != NULL) {
        if (clst_time_parse(time_str, &in.at, &err) != CLST_OK) {
            return cli_usage_error(CMD, "verify: --time: %s", err.msg);
        }
    } else {
        in.at = clst_clock_now(clst_clock_system());
    }
    if (report_hex != NULL) {
        clst_buf_init(&report_data, CLST_EVIDENCE_REPORT_DATA_SIZE);
        if (clst_hex_decode(report_hex, strlen(report_hex), &report_data) != CLST_OK) {
            ret = cli_usage_error(CMD, "verify: --report-data must be at most %d bytes in hex",
                                  CLST_EVIDENCE_REPORT_DATA_SIZE);
            goto out;
        }
        in.report_data = report_data.data != NULL ? report_data.data : (const uint8_t *)"";
        in.report_data_size = report_data.size;
    }

    if ((ret = read_file(file, EVIDENCE_FILE_MAX, &evidence)) != CLI_EXIT_OK ||
        (ret = read_file(root_path, ROOT_FILE_MAX, &roots_pem)) != CLI_EXIT_OK) {
        goto out;
    }
    if (runtime_path != NULL) {
        if ((ret = read_file(runtime_path, RUNTIME_DATA_MAX, &runtime)) != CLI_EXIT_OK) {
            goto out;
        }
        in.runtime_data = runtime.data != NULL ? runtime.data : (const uint8_t *)"";
        in.runtime_data_size = runtime.size;
    }
    ret = CLI_EXIT_FAIL;
    if (clst_x509_stack_from_pem(roots_pem.data, roots_pem.size, &roots, &err) != CLST_OK) {
        clst_err_prefix(&err, "%s", root_path);
        ret = cli_fail(CMD, &err);
        goto out;
    }
    in.evidence = evidence.data;
    in.evidence_size = evidence.size;
    in.roots = roots;
    in.allow_debug = allow_debug;

    if (clst_evidence_verify(kind, &in, &claims, &err) != CLST_OK) {
        ret = cli_failf(CMD, "evidence rejected: %s",
                        err.msg[0] != '\0' ? err.msg : clst_status_str(err.status));
        goto out;
    }
    bool debuggable = json_is_true(json_object_get(claims, CLST_SIM_CLAIM_IS_DEBUGGABLE));
    if (json) {
        if (json_dumpf(claims, stdout, JSON_INDENT(2)) != 0 || fputc('\n', stdout) == EOF) {
            ret = cli_failf(CMD, "cannot write the claims");
            goto out;
        }
        if (kind == CLST_EVIDENCE_SIM) {
            fprintf(stderr, "note: sim evidence comes from a development-only software TEE\n");
        }
    } else {
        printf("%s evidence verified%s\n", clst_evidence_kind_name(kind),
               kind == CLST_EVIDENCE_SIM ? " (DEVELOPMENT-ONLY software TEE: not protected "
                                           "against root, the kernel or the host)"
                                         : "");
        if (debuggable) {
            printf("WARNING: the TEE is debuggable; accepted only because of --allow-debug\n");
        }
        if (runtime_path != NULL) {
            printf("runtime data %s is bound to the evidence (SHA-256 in the report data)\n",
                   runtime_path);
        }
        printf("claims:\n");
        print_claims(claims);
    }
    if (fflush(stdout) != 0) {
        ret = cli_failf(CMD, "cannot write to standard output");
        goto out;
    }
    ret = CLI_EXIT_OK;
out:
    json_decref(claims);
    sk_X509_pop_free(roots, X509_free);
    clst_buf_cleanup(&evidence);
    clst_buf_cleanup(&roots_pem);
    clst_buf_cleanup(&runtime);
    clst_buf_cleanup(&report_data);
    return ret;
}

int
cmd_evidence(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    if (argc < 2) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (strcmp(argv[1], "verify") == 0) {
        return verify(argc, argv);
    }
    return cli_usage_error(CMD, "unknown subcommand '%s' (verify)", argv[1]);
}
