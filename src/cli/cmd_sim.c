/*
 * cloister sim init | report: create a sim (software, development-only) TEE platform and produce
 * sim evidence with it. The format is docs/evidence-sim.md; the library side is
 * src/evidence/sim_platform.c.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include <cloister/crypto.h>
#include <cloister/evidence.h>

#include "cli/cli.h"

#define CMD "sim"

/* Runtime data is read whole to be hashed; this bounds the memory it takes. */
#define RUNTIME_DATA_MAX (16u * 1024 * 1024)

static void
usage(FILE *f)
{
    fprintf(
        f,
        "usage: cloister sim init DIR [--force]\n"
        "       cloister sim report --platform DIR --mrenclave HEX --mrsigner HEX\n"
        "                           --product-id N --svn N [--debug]\n"
        "                           (--report-data HEX | --runtime-data FILE) -o FILE\n"
        "\n"
        "The sim TEE is a software TEE for DEVELOPMENT AND CI ONLY. It isolates a workload\n"
        "from other unprivileged processes, but NOT from root, the kernel or the host that\n"
        "runs it. Its evidence is signed by a key created on this machine, and its claims have\n"
        "their own names (x-cloister-sim-*, attestation type \"sim\"), so no policy written\n"
        "for hardware TEEs can ever match them. Never trust a sim root in production.\n"
        "\n"
        "init DIR             create a sim platform in DIR (made with mode 0700):\n"
        "                       root.pem          sim root CA certificate; give it to\n"
        "                                         verifiers ('cloister evidence verify --root')\n"
        "                       root-key.pem      its private key (0600)\n"
        "                       platform.pem      platform certificate, signed by the root\n"
        "                       platform-key.pem  report-signing key, EC P-384 (0600)\n"
        "                       sealing.key       32-byte sealing secret (0600)\n"
        "  --force            replace an existing platform (its old evidence stops verifying)\n"
        "\n"
        "report               write sim evidence for the given enclave identity\n"
        "  --platform DIR     the platform made by 'cloister sim init'\n"
        "  --mrenclave HEX    enclave measurement, 48 bytes (96 hex characters)\n"
        "  --mrsigner HEX     signer identity, 32 bytes (64 hex characters)\n"
        "  --product-id N     product id, 0..65535\n"
        "  --svn N            security version number, 0..65535\n"
        "  --debug            mark the enclave debuggable (verifiers refuse it unless\n"
        "                     told --allow-debug)\n"
        "  --report-data HEX  the 64 bytes of report data (128 hex characters)\n"
        "  --runtime-data FILE  bind FILE instead: report data = SHA-256(FILE) || 32 zero\n"
        "                     bytes, which 'cloister evidence verify --runtime-data' checks\n"
        "  -o, --output FILE  where to write the evidence ('-' for standard output)\n"
        "\n"
        "exit status: 0 success, 1 failure, 2 usage error.\n");
}

static int
sim_init(int argc, char **argv)
{
    const char *dir = NULL;
    bool force = false;
    struct clst_err err = {0};
    struct clst_sim_platform *p = NULL;
    int ret = CLI_EXIT_FAIL;
    char id_hex[2 * CLST_SIM_PLATFORM_ID_SIZE + 1];

    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--force") == 0) {
            force = true;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            return cli_usage_error(CMD, "init: unknown option '%s'", argv[i]);
        } else if (dir == NULL) {
            dir = argv[i];
        } else {
            return cli_usage_error(CMD, "init: unexpected argument '%s'", argv[i]);
        }
    }
    if (dir == NULL) {
        return cli_usage_error(CMD, "init: which directory? (cloister sim init DIR)");
    }
    if (clst_evidence_sim_platform_create(dir, clst_clock_now(clst_clock_system()), force, &err) !=
        CLST_OK) {
        ret = cli_fail(CMD, &err);
        goto out;
    }
    /* Reading it back checks the result and gives us the platform id to show. */
    if (clst_evidence_sim_platform_load(dir, &p, &err) != CLST_OK) {
        ret = cli_fail(CMD, &err);
        goto out;
    }
    if (clst_hex_to_str(clst_evidence_sim_platform_id(p), CLST_SIM_PLATFORM_ID_SIZE, id_hex,
                        sizeof(id_hex)) != CLST_OK) {
        ret = cli_failf(CMD, "cannot format the platform id");
        goto out;
    }
    printf("created a sim platform in %s (DEVELOPMENT ONLY: not protected against root, the\n"
           "kernel or the host)\n"
           "  platform id       %s\n"
           "  root certificate  %s/%s  (verifiers trust sim evidence with --root this file)\n"
           "  private keys      %s/%s, %s/%s (0600)\n"
           "  sealing secret    %s/%s (0600)\n",
           dir, id_hex, dir, CLST_SIM_ROOT_FILE, dir, CLST_SIM_ROOT_KEY_FILE, dir,
           CLST_SIM_PLATFORM_KEY_FILE, dir, CLST_SIM_SEALING_FILE);
    ret = CLI_EXIT_OK;
out:
    clst_evidence_sim_platform_free(p);
    return ret;
}

static int
write_output(const char *path, const uint8_t *data, size_t size)
{
    if (strcmp(path, "-") == 0) {
        if (fwrite(data, 1, size, stdout) != size || fflush(stdout) != 0) {
            return cli_failf(CMD, "cannot write to standard output");
        }
        return CLI_EXIT_OK;
    }
    /* Evidence is not secret; 0644 lets the verifier (maybe another user) read it. */
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        return cli_failf(CMD, "cannot create %s: %s", path, strerror(errno));
    }
    size_t done = 0;
    while (done < size) {
        ssize_t w = write(fd, data + done, size - done);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            int e = errno;
            close(fd);
            return cli_failf(CMD, "cannot write %s: %s", path, strerror(e));
        }
        done += (size_t)w;
    }
    if (close(fd) != 0) {
        return cli_failf(CMD, "cannot write %s: %s", path, strerror(errno));
    }
    return CLI_EXIT_OK;
}

static int
parse_hex_arg(const char *opt, const char *hex, uint8_t *out, size_t size)
{
    if (hex == NULL) {
        return cli_usage_error(CMD, "report: %s is required", opt);
    }
    if (clst_hex_decode_fixed(hex, strlen(hex), out, size) != CLST_OK) {
        return cli_usage_error(CMD, "report: %s must be %zu bytes as %zu hex characters", opt, size,
                               2 * size);
    }
    return CLI_EXIT_OK;
}

static int
parse_u16_arg(const char *opt, const char *s, uint16_t *out)
{
    uint64_t v = 0;
    if (s == NULL) {
        return cli_usage_error(CMD, "report: %s is required", opt);
    }
    if (clst_parse_u64(s, 0, UINT16_MAX, &v, NULL) != CLST_OK) {
        return cli_usage_error(CMD, "report: %s must be a number from 0 to 65535", opt);
    }
    *out = (uint16_t)v;
    return CLI_EXIT_OK;
}

static int
sim_report(int argc, char **argv)
{
    const char *platform = NULL, *mrenclave = NULL, *mrsigner = NULL, *product_id = NULL;
    const char *svn = NULL, *report_data_hex = NULL, *runtime_path = NULL, *output = NULL;
    struct clst_sim_identity id;
    uint8_t report_data[CLST_SIM_REPORT_DATA_SIZE];
    struct clst_err err = {0};
    struct clst_sim_platform *p = NULL;
    struct clst_buf runtime = {0};
    struct clst_buf evidence;
    int ret = CLI_EXIT_FAIL;

    memset(&id, 0, sizeof(id));
    clst_buf_init(&evidence, CLST_SIM_EVIDENCE_MAX_SIZE);
    for (int i = 2; i < argc; i++) {
        int m = 0;
        const char *v = NULL;
        if (strcmp(argv[i], "--debug") == 0) {
            id.debug = true;
            continue;
        }
        static const struct {
            const char *name;
            const char *alias;
        } opts[] = {{"--platform", NULL},     {"--mrenclave", NULL}, {"--mrsigner", NULL},
                    {"--product-id", NULL},   {"--svn", NULL},       {"--report-data", NULL},
                    {"--runtime-data", NULL}, {"--output", "-o"}};
        const char **slots[] = {&platform, &mrenclave,       &mrsigner,     &product_id,
                                &svn,      &report_data_hex, &runtime_path, &output};
        size_t k = 0;
        for (; k < sizeof(opts) / sizeof(opts[0]); k++) {
            m = cli_opt_value(argc, argv, &i, opts[k].name, opts[k].alias, &v);
            if (m != 0) {
                break;
            }
        }
        if (m < 0) {
            ret = cli_usage_error(CMD, "report: %s needs a value", argv[i]);
            goto out;
        }
        if (m == 0) {
            ret = cli_usage_error(CMD, "report: unknown argument '%s'", argv[i]);
            goto out;
        }
        if (*slots[k] != NULL) {
            ret = cli_usage_error(CMD, "report: %s given twice", opts[k].name);
            goto out;
        }
        *slots[k] = v;
    }
    if (platform == NULL || output == NULL) {
        ret = cli_usage_error(CMD, "report: --platform and -o are required");
        goto out;
    }
    if ((report_data_hex == NULL) == (runtime_path == NULL)) {
        ret = cli_usage_error(CMD, "report: give exactly one of --report-data and --runtime-data");
        goto out;
    }
    if ((ret = parse_hex_arg("--mrenclave", mrenclave, id.mrenclave, sizeof(id.mrenclave))) != 0 ||
        (ret = parse_hex_arg("--mrsigner", mrsigner, id.mrsigner, sizeof(id.mrsigner))) != 0 ||
        (ret = parse_u16_arg("--product-id", product_id, &id.product_id)) != 0 ||
        (ret = parse_u16_arg("--svn", svn, &id.svn)) != 0) {
        goto out;
    }
    if (report_data_hex != NULL) {
        ret = parse_hex_arg("--report-data", report_data_hex, report_data, sizeof(report_data));
        if (ret != CLI_EXIT_OK) {
            goto out;
        }
    } else {
        ret = cli_read_file(CMD, runtime_path, RUNTIME_DATA_MAX, &runtime);
        if (ret != CLI_EXIT_OK) {
            goto out;
        }
        if (clst_evidence_report_data_bind(runtime.data, runtime.size, report_data) != CLST_OK) {
            ret = cli_failf(CMD, "cannot hash the runtime data");
            goto out;
        }
    }
    ret = CLI_EXIT_FAIL;
    if (clst_evidence_sim_platform_load(platform, &p, &err) != CLST_OK ||
        clst_evidence_sim_report_create(p, &id, report_data, &evidence, &err) != CLST_OK) {
        ret = cli_fail(CMD, &err);
        goto out;
    }
    ret = write_output(output, evidence.data, evidence.size);
    if (ret == CLI_EXIT_OK && strcmp(output, "-") != 0) {
        fprintf(stderr, "wrote %zu bytes of sim evidence (development only) to %s%s\n",
                evidence.size, output, id.debug ? " [debuggable enclave]" : "");
    }
out:
    clst_evidence_sim_platform_free(p);
    clst_buf_cleanup(&runtime);
    clst_buf_cleanup(&evidence);
    OPENSSL_cleanse(report_data, sizeof(report_data));
    return ret;
}

int
cmd_sim(int argc, char **argv)
{
    int rc;
    if (cli_help_done(argc, argv, usage, &rc)) {
        return rc;
    }
    if (strcmp(argv[1], "init") == 0) {
        return sim_init(argc, argv);
    }
    if (strcmp(argv[1], "report") == 0) {
        return sim_report(argc, argv);
    }
    return cli_usage_error(CMD, "unknown subcommand '%s' (init or report)", argv[1]);
}
