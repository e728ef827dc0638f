/*
 * cloister evidence get: collects evidence on the TEE we run on (today: a TPM 2.0 through
 * tpm2-tss; docs/evidence-tpm.md), and the TPM-specific part of `cloister evidence verify`
 * (--ak-pub, --allow-sha1). cmd_evidence.c dispatches here.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cloister/crypto.h>
#include <cloister/evidence.h>
#include <cloister/tee.h>

#include "cli/cli.h"

#define CMD "evidence get"

#define INPUT_FILE_MAX (1u * 1024 * 1024)
#define OUTPUT_MAX     (2u * 1024 * 1024)


static void
usage(FILE *f)
{
    fprintf(f,
            "usage: cloister evidence get --tee tpm [--tcti CONF] [--pcrs SPEC] [--nonce HEX]\n"
            "                             [--ak-alg rsassa|rsapss|ecdsa]\n"
            "                             [--hierarchy endorsement|owner] [--ak-cert FILE]\n"
            "                             [--ak-chain FILE] [--event-log FILE]\n"
            "                             [--ak-pub-out FILE] [-o FILE]\n"
            "\n"
            "Collects attestation evidence from this machine's TEE. For a TPM 2.0: derives the\n"
            "attestation key (AK, a restricted signing key that is the same on every call for\n"
            "the same TPM, hierarchy and algorithm), quotes the PCRs with the nonce, reads them,\n"
            "and writes the evidence container of docs/evidence-tpm.md. Verify it with\n"
            "'cloister evidence verify --type tpm FILE --ak-pub AK.pem' (an enrolled AK) or\n"
            "'--root CA.pem' (an AK certificate included with --ak-cert).\n"
            "\n"
            "  --tee tpm            the TEE (tpm is the one this command collects from today)\n"
            "  --tcti CONF          the tpm2-tss TCTI, e.g. device:/dev/tpmrm0 or\n"
            "                       swtpm:host=127.0.0.1,port=2321 (default: tpm2-tss's search)\n"
            "  --pcrs SPEC          PCRs to quote, e.g. sha256:0,1,2+sha1:7 or sha256:all\n"
            "                       (default sha256:0,1,2,3,4,5,6,7)\n"
            "  --nonce HEX          the verifier's challenge, up to %d bytes, put in the quote's\n"
            "                       extraData (verify with --report-data HEX)\n"
            "  --ak-alg ALG         rsassa (default; RSA-2048 PKCS#1 v1.5), rsapss, or ecdsa\n"
            "                       (P-256); all with SHA-256\n"
            "  --hierarchy H        endorsement (default) or owner: the seed the AK comes from\n"
            "  --ak-cert FILE       a certificate for the AK (PEM or DER) to include\n"
            "  --ak-chain FILE      its intermediates (PEM bundle) to include\n"
            "  --event-log FILE     the TCG event log to include, e.g.\n"
            "                       /sys/kernel/security/tpm0/binary_bios_measurements\n"
            "  --ak-pub-out FILE    also write the AK's public key (PEM), to enroll it\n"
            "  -o FILE              where to write the evidence (default: standard output)\n"
            "An input FILE of - is standard input.\n"
            "\n"
            "exit status: 0 collected, 1 failed, 2 usage error.\n",
            CLST_TEE_TPM_NONCE_MAX_SIZE);
}

static int
write_file(const char *path, const uint8_t *data, size_t size)
{
    bool is_stdout = strcmp(path, "-") == 0;
    FILE *f = is_stdout ? stdout : fopen(path, "wb");
    if (f == NULL) {
        return cli_failf(CMD, "cannot create %s: %s", path, strerror(errno));
    }
    bool ok = fwrite(data, 1, size, f) == size;
    ok = (is_stdout ? fflush(f) == 0 : fclose(f) == 0) && ok;
    if (!ok) {
        return cli_failf(CMD, "cannot write %s", path);
    }
    return CLI_EXIT_OK;
}

/* Certificates from a file: a PEM bundle, or one DER certificate. */
static int
load_certs(const char *path, STACK_OF(X509) **out)
{
    struct clst_buf b = {0};
    struct clst_err err = {0};
    X509 *one = NULL;
    int ret = cli_read_file(CMD, path, INPUT_FILE_MAX, &b);
    if (ret != CLI_EXIT_OK) {
        return ret;
    }
    bool pem = b.size >= 11 && memcmp(b.data, "-----BEGIN ", 11) == 0;
    if (pem ? clst_x509_stack_from_pem(b.data, b.size, out, &err) != CLST_OK
            : clst_x509_from_der(b.data, b.size, &one, &err) != CLST_OK) {
        clst_err_prefix(&err, "%s", path);
        ret = cli_fail(CMD, &err);
    } else if (!pem) {
        *out = sk_X509_new_null();
        if (*out == NULL || sk_X509_push(*out, one) <= 0) {
            sk_X509_free(*out);
            *out = NULL;
            ret = cli_failf(CMD, "out of memory");
        } else {
            one = NULL;
        }
    }
    X509_free(one);
    clst_buf_cleanup(&b);
    return ret;
}

int
cli_evidence_get(int argc, char **argv)
{
    const char *tee = NULL, *tcti = NULL, *pcrs = NULL, *nonce_hex = NULL, *ak_alg = NULL;
    const char *hierarchy = NULL, *ak_cert_path = NULL, *ak_chain_path = NULL;
    const char *event_log_path = NULL, *ak_pub_out = NULL, *out_path = NULL;
    struct clst_buf nonce = {0}, event_log = {0}, evidence = {0}, pem = {0};
    STACK_OF(X509) *cert = NULL, *chain = NULL;
    struct clst_tee_tpm_pcrs sel;
    struct clst_tee_tpm_request req;
    struct clst_err err = {0};
    EVP_PKEY *ak = NULL;
    int ret = CLI_EXIT_FAIL;

    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    const struct {
        const char *name;
        const char **slot;
    } opts[] = {
        {"--tee", &tee},
        {"--tcti", &tcti},
        {"--pcrs", &pcrs},
        {"--nonce", &nonce_hex},
        {"--ak-alg", &ak_alg},
        {"--hierarchy", &hierarchy},
        {"--ak-cert", &ak_cert_path},
        {"--ak-chain", &ak_chain_path},
        {"--event-log", &event_log_path},
        {"--ak-pub-out", &ak_pub_out},
        {"-o", &out_path},
    };
    for (int i = 2; i < argc; i++) {
        const char *v = NULL;
        int m = 0;
        size_t k = 0;
        for (; k < sizeof(opts) / sizeof(opts[0]); k++) {
            m = cli_opt_value(argc, argv, &i, opts[k].name, NULL, &v);
            if (m != 0) {
                break;
            }
        }
        if (m < 0) {
            return cli_usage_error(CMD, "%s needs a value", argv[i]);
        }
        if (m == 0) {
            return cli_usage_error(CMD, "unknown argument '%s'", argv[i]);
        }
        if (*opts[k].slot != NULL) {
            return cli_usage_error(CMD, "%s given twice", opts[k].name);
        }
        *opts[k].slot = v;
    }
    if (tee == NULL) {
        return cli_usage_error(CMD, "--tee is required (tpm)");
    }
    if (strcmp(tee, "tpm") != 0) {
        return cli_usage_error(CMD, "--tee %s: this command collects from a TPM only (--tee tpm)",
                               tee);
    }
    memset(&req, 0, sizeof(req));
    if (clst_tee_tpm_pcrs_parse(pcrs != NULL ? pcrs : "sha256:0,1,2,3,4,5,6,7", &sel, &err) !=
        CLST_OK) {
        return cli_usage_error(CMD, "--pcrs: %s", err.msg);
    }
    req.pcrs = &sel;
    req.tcti = tcti;
    if (ak_alg == NULL || strcmp(ak_alg, "rsassa") == 0) {
        req.ak_alg = CLST_TEE_TPM_AK_RSASSA;
    } else if (strcmp(ak_alg, "rsapss") == 0) {
        req.ak_alg = CLST_TEE_TPM_AK_RSAPSS;
    } else if (strcmp(ak_alg, "ecdsa") == 0) {
        req.ak_alg = CLST_TEE_TPM_AK_ECDSA;
    } else {
        return cli_usage_error(CMD, "--ak-alg must be rsassa, rsapss or ecdsa");
    }
    if (hierarchy == NULL || strcmp(hierarchy, "endorsement") == 0) {
        req.hierarchy = CLST_TEE_TPM_ENDORSEMENT;
    } else if (strcmp(hierarchy, "owner") == 0) {
        req.hierarchy = CLST_TEE_TPM_OWNER;
    } else {
        return cli_usage_error(CMD, "--hierarchy must be endorsement or owner");
    }
    if (ak_chain_path != NULL && ak_cert_path == NULL) {
        return cli_usage_error(CMD, "--ak-chain needs --ak-cert");
    }
    if (nonce_hex != NULL) {
        clst_buf_init(&nonce, CLST_TEE_TPM_NONCE_MAX_SIZE);
        if (clst_hex_decode(nonce_hex, strlen(nonce_hex), &nonce) != CLST_OK) {
            ret = cli_usage_error(CMD, "--nonce must be hex, at most %d bytes",
                                  CLST_TEE_TPM_NONCE_MAX_SIZE);
            goto out;
        }
        req.nonce = nonce.data;
        req.nonce_size = nonce.size;
    }
    if (ak_cert_path != NULL) {
        if ((ret = load_certs(ak_cert_path, &cert)) != CLI_EXIT_OK) {
            goto out;
        }
        if (sk_X509_num(cert) != 1) {
            ret = cli_failf(CMD,
                            "%s must hold exactly one certificate (the AK's); put the "
                            "intermediates in --ak-chain",
                            ak_cert_path);
            goto out;
        }
        req.ak_cert = sk_X509_value(cert, 0);
    }
    if (ak_chain_path != NULL) {
        if ((ret = load_certs(ak_chain_path, &chain)) != CLI_EXIT_OK) {
            goto out;
        }
        req.ak_chain = chain;
    }
    if (event_log_path != NULL) {
        if ((ret = cli_read_file(CMD, event_log_path, CLST_TEE_TPM_EVENTLOG_MAX_SIZE,
                                 &event_log)) != CLI_EXIT_OK) {
            goto out;
        }
        req.event_log = event_log.data;
        req.event_log_size = event_log.size;
    }
    /* tpm2-tss logs its own errors to stderr; ours say the same with the decoded code. */
    setenv("TSS2_LOG", "all+none", 0);
    clst_buf_init(&evidence, OUTPUT_MAX);
    ret = CLI_EXIT_FAIL;
    if (clst_tee_tpm_quote(&req, &evidence, ak_pub_out != NULL ? &ak : NULL, &err) != CLST_OK) {
        ret = cli_fail(CMD, &err);
        goto out;
    }
    if (ak_pub_out != NULL) {
        clst_buf_init(&pem, 16384);
        if (clst_pkey_to_pem(ak, false, &pem) != CLST_OK) {
            ret = cli_failf(CMD, "cannot encode the AK public key");
            goto out;
        }
        if ((ret = write_file(ak_pub_out, pem.data, pem.size)) != CLI_EXIT_OK) {
            goto out;
        }
    }
    ret = write_file(out_path != NULL ? out_path : "-", evidence.data, evidence.size);
out:
    EVP_PKEY_free(ak);
    sk_X509_pop_free(cert, X509_free);
    sk_X509_pop_free(chain, X509_free);
    clst_buf_cleanup(&nonce);
    clst_buf_cleanup(&event_log);
    clst_buf_cleanup(&evidence);
    clst_buf_cleanup(&pem);
    return ret;
}

int
cli_tpm_verify_input(const char *ak_pub_path, bool allow_sha1, struct clst_evidence_input *in,
                     EVP_PKEY **out_ak)
{
    struct clst_buf b = {0};
    struct clst_err err = {0};
    int ret = CLI_EXIT_OK;

    in->tpm_allow_sha1 = allow_sha1;
    if (ak_pub_path == NULL) {
        return CLI_EXIT_OK;
    }
    if ((ret = cli_read_file("evidence verify", ak_pub_path, INPUT_FILE_MAX, &b)) != CLI_EXIT_OK) {
        return ret;
    }
    bool pem = b.size >= 11 && memcmp(b.data, "-----BEGIN ", 11) == 0;
    if ((pem ? clst_pkey_from_pem(b.data, b.size, out_ak, &err)
             : clst_pkey_from_der(b.data, b.size, out_ak, &err)) != CLST_OK) {
        clst_err_prefix(&err, "--ak-pub %s", ak_pub_path);
        ret = cli_fail("evidence", &err);
    } else {
        in->tpm_ak = *out_ak;
    }
    clst_buf_cleanup(&b);
    return ret;
}
