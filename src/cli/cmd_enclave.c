/*
 * cloister enclave sign | measure: sign an enclave image (an ELF shared object) with a manifest,
 * and print a signed image's identity for writing release policies. Format: docs/enclaves.md;
 * library: src/enclave/manifest.c, image.c.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include <cloister/crypto.h>
#include <cloister/host.h>

#include "cli/cli.h"

#define CMD "enclave"

int cmd_enclave(int argc, char **argv);

static void
usage(FILE *f)
{
    fprintf(f,
            "usage: cloister enclave sign IMAGE --key SIGNER.pem --product-id N --svn N\n"
            "                             [--debug] [--heap MIB] [-o OUT]\n"
            "       cloister enclave measure IMAGE [--json]\n"
            "\n"
            "An enclave image is an ELF shared object (built with CLST_ENCLAVE_DEFINE from\n"
            "<cloister/enclave.h>) followed by a signed manifest. Its measurement (MRENCLAVE) is\n"
            "SHA-384 over the image bytes and the manifest's identity fields (product id, svn,\n"
            "debug, heap); its signer id (MRSIGNER) is SHA-256 of the signer's public key. A\n"
            "modified image or manifest does not load.\n"
            "\n"
            "sign IMAGE           append a signed manifest to IMAGE (replacing an existing one)\n"
            "  --key FILE         the signer's private key, PEM: EC P-256, EC P-384 or RSA\n"
            "                     2048..4096 (e.g. openssl genpkey -algorithm EC\n"
            "                     -pkeyopt ec_paramgen_curve:P-256 -out signer.pem)\n"
            "  --product-id N     product id, 0..65535 (sealing to the signer is per product)\n"
            "  --svn N            security version number, 0..65535 (raise it with each\n"
            "                     security fix: newer enclaves unseal older data, never the\n"
            "                     reverse)\n"
            "  --debug            a debug enclave: the host may inspect its memory (sim: it\n"
            "                     stays ptrace-able); its evidence says so and verifiers\n"
            "                     refuse it unless told to allow debug\n"
            "  --heap MIB         heap limit in MiB, 1..65536 (default 256)\n"
            "  -o, --output OUT   write the signed image to OUT instead of replacing IMAGE\n"
            "\n"
            "measure IMAGE        verify a signed image and print its identity and the claims\n"
            "                     a release policy for it would test\n"
            "  --json             print one JSON object instead\n"
            "\n"
            "exit status: 0 success, 1 failure (e.g. a modified image), 2 usage error.\n");
}

static void
hex(const uint8_t *b, size_t n, char *out, size_t cap)
{
    if (clst_hex_to_str(b, n, out, cap) != CLST_OK && cap > 0) {
        out[0] = '\0';
    }
}

static void
print_identity(const char *path, const struct clst_enclave_identity *id, bool json)
{
    char mre[2 * CLST_ENCLAVE_MEASUREMENT_SIZE + 1], mrs[2 * CLST_ENCLAVE_SIGNER_SIZE + 1];
    hex(id->mrenclave, sizeof(id->mrenclave), mre, sizeof(mre));
    hex(id->mrsigner, sizeof(id->mrsigner), mrs, sizeof(mrs));
    if (json) {
        printf("{\"mrenclave\":\"%s\",\"mrsigner\":\"%s\",\"product_id\":%u,\"svn\":%u,"
               "\"debug\":%s,\"heap_mib\":%u}\n",
               mre, mrs, id->product_id, id->svn, id->debug ? "true" : "false", id->heap_mib);
        return;
    }
    printf("image       %s (manifest signature, image hash and measurement verified)\n"
           "mrenclave   %s\n"
           "mrsigner    %s\n"
           "product id  %u\n"
           "svn         %u\n"
           "debug       %s\n"
           "heap        %u MiB\n"
           "\n"
           "claims a release policy for this enclave on the sim TEE tests (sim is for\n"
           "development only; hardware TEEs have their own claim names):\n"
           "  {\"claim\": \"x-ms-attestation-type\", \"equals\": \"sim\"}\n"
           "  {\"claim\": \"x-cloister-sim-mrenclave\", \"equals\": \"%s\"}\n"
           "  or, for any version from this signer and product:\n"
           "  {\"claim\": \"x-cloister-sim-mrsigner\", \"equals\": \"%s\"}\n"
           "  {\"claim\": \"x-cloister-sim-product-id\", \"equals\": %u}\n"
           "  {\"claim\": \"x-cloister-sim-is-debuggable\", \"equals\": false}\n",
           path, mre, mrs, id->product_id, id->svn, id->debug ? "yes (DEBUG enclave)" : "no",
           id->heap_mib, mre, mrs, id->product_id);
}

static int
parse_u(const char *opt, const char *v, uint64_t max, uint64_t *out)
{
    struct clst_err err = {0};
    if (clst_parse_u64(v, 0, max, out, &err) != CLST_OK) {
        return cli_usage_error(CMD, "%s: '%s' is not a number in 0..%llu", opt, v,
                               (unsigned long long)max);
    }
    return CLI_EXIT_OK;
}

static int
enclave_sign(int argc, char **argv)
{
    const char *image = NULL, *key_path = NULL, *output = NULL, *v;
    const char *pid_s = NULL, *svn_s = NULL, *heap_s = NULL;
    struct clst_host_sign_params params = {0};
    struct clst_enclave_identity id;
    struct clst_err err = {0};
    EVP_PKEY *key = NULL;
    uint64_t n;
    int r, ret = CLI_EXIT_FAIL;

    for (int i = 2; i < argc; i++) {
        if ((r = cli_opt_value(argc, argv, &i, "--key", NULL, &v)) != 0) {
            key_path = v;
        } else if ((r = cli_opt_value(argc, argv, &i, "--product-id", NULL, &v)) != 0) {
            pid_s = v;
        } else if ((r = cli_opt_value(argc, argv, &i, "--svn", NULL, &v)) != 0) {
            svn_s = v;
        } else if ((r = cli_opt_value(argc, argv, &i, "--heap", NULL, &v)) != 0) {
            heap_s = v;
        } else if ((r = cli_opt_value(argc, argv, &i, "--output", "-o", &v)) != 0) {
            output = v;
        } else if (strcmp(argv[i], "--debug") == 0) {
            params.debug = true;
            continue;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            return cli_usage_error(CMD, "sign: unknown option '%s'", argv[i]);
        } else if (image == NULL) {
            image = argv[i];
            continue;
        } else {
            return cli_usage_error(CMD, "sign: unexpected argument '%s'", argv[i]);
        }
        if (r < 0) {
            return cli_usage_error(CMD, "sign: %s needs a value", argv[i]);
        }
    }
    if (image == NULL || key_path == NULL || pid_s == NULL || svn_s == NULL) {
        return cli_usage_error(CMD, "sign needs IMAGE, --key, --product-id and --svn");
    }
    if ((r = parse_u("--product-id", pid_s, UINT16_MAX, &n)) != CLI_EXIT_OK) {
        return r;
    }
    params.product_id = (uint16_t)n;
    if ((r = parse_u("--svn", svn_s, UINT16_MAX, &n)) != CLI_EXIT_OK) {
        return r;
    }
    params.svn = (uint16_t)n;
    if (heap_s != NULL) {
        if ((r = parse_u("--heap", heap_s, CLST_HOST_HEAP_MAX_MIB, &n)) != CLI_EXIT_OK) {
            return r;
        }
        if (n == 0) {
            return cli_usage_error(CMD, "--heap must be at least 1 MiB");
        }
        params.heap_mib = (uint32_t)n;
    }
    if (clst_pkey_load_pem_file(key_path, &key, &err) != CLST_OK) {
        ret = cli_fail(CMD, &err);
        goto out;
    }
    if (clst_host_image_sign(image, output != NULL ? output : image, key, &params, &id, &err) !=
        CLST_OK) {
        ret = cli_fail(CMD, &err);
        goto out;
    }
    printf("signed %s\n", output != NULL ? output : image);
    print_identity(output != NULL ? output : image, &id, false);
    ret = CLI_EXIT_OK;
out:
    EVP_PKEY_free(key);
    return ret;
}

static int
enclave_measure(int argc, char **argv)
{
    const char *image = NULL;
    bool json = false;
    struct clst_enclave_identity id;
    struct clst_err err = {0};
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            return cli_usage_error(CMD, "measure: unknown option '%s'", argv[i]);
        } else if (image == NULL) {
            image = argv[i];
        } else {
            return cli_usage_error(CMD, "measure: unexpected argument '%s'", argv[i]);
        }
    }
    if (image == NULL) {
        return cli_usage_error(CMD, "measure: which image? (cloister enclave measure IMAGE)");
    }
    if (clst_host_image_measure(image, &id, &err) != CLST_OK) {
        return cli_fail(CMD, &err);
    }
    print_identity(image, &id, json);
    return CLI_EXIT_OK;
}

int
cmd_enclave(int argc, char **argv)
{
    if (argc < 2 || cli_wants_help(argc, argv)) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
    }
    if (strcmp(argv[1], "sign") == 0) {
        return enclave_sign(argc, argv);
    }
    if (strcmp(argv[1], "measure") == 0) {
        return enclave_measure(argc, argv);
    }
    return cli_usage_error(CMD, "unknown subcommand '%s' (sign or measure)", argv[1]);
}
