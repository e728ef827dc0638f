/*
 * cloister evidence verify: verifies attestation evidence offline (no service needed) against
 * the trust roots given on the command line and prints its claims, or why it was rejected.
 */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cloister/crypto.h>
#include <cloister/evidence.h>

#include "cli/cli.h"

#define COLLATERAL_MAX (16u * 1024 * 1024)

/* --certs DIR: a cache of VCEK/VLEK/ASK/ASVK certificates, read whole (bounded). */
#define CERTS_DIR_MAX_FILES 64
#define CERT_FILE_MAX       (64u * 1024)
#define ENDORSEMENTS_MAX    (256u * 1024)

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
        f,
        "usage: cloister evidence verify --type KIND FILE --root ROOT.pem [--time T]\n"
        "                                [--runtime-data FILE] [--report-data HEX]\n"
        "                                [--allow-debug] [--json]\n"
        "       cloister evidence verify --type tdx|sgx FILE --collateral DIR [--time T]\n"
        "                                [--tcb-status LIST] [--root ROOT.pem] ...\n"
        "       cloister evidence verify --type sevsnp FILE [--certs DIR|FILE] [--time T]\n"
        "                                [--allow-migration-agent] [--max-vmpl N]\n"
        "                                [--min-tcb bl=N,tee=N,snp=N,ucode=N[,fmc=N]] ...\n"
        "       cloister evidence verify --type nitro FILE [--time T] [--nonce HEX] ...\n"
        "       cloister evidence verify --type azure-vtpm FILE [--certs VCEK.pem|--collateral D]\n"
        "                                [--report-data NONCE_HEX] [--time T] ...\n"
        "       cloister evidence verify --type tpm FILE (--root CA.pem | --ak-pub AK.pem)\n"
        "                                [--report-data NONCE_HEX] [--allow-sha1] ...\n"
        "       cloister evidence get --tee tpm|sev-snp|tdx ... (collect; see\n"
        "                             'cloister evidence get -h')\n"
        "\n"
        "Verifies attestation evidence offline, without an attestation service: the signing\n"
        "certificate must chain to a certificate in ROOT.pem at time T, the signature must\n"
        "cover the evidence as given, and the TEE must not be debuggable. Prints the claims\n"
        "on success; on rejection prints what failed and exits 1.\n"
        "\n"
        "  --type KIND          the evidence kind: sim, sevsnp, tdx, sgx, tpm, azure-vtpm or\n"
        "                       nitro\n"
        "                       (sim is the DEVELOPMENT-ONLY software TEE: it does not protect\n"
        "                       against root, the kernel or the host, and its claims are\n"
        "                       x-cloister-sim-*, which no hardware policy matches)\n"
        "  FILE                 the evidence ('-' for standard input)\n"
        "  --root ROOT.pem      trusted root certificate(s), PEM; for sim, the root.pem of\n"
        "                       the platform ('cloister sim init')\n"
        "  --time T             judge certificate validity at T (RFC 3339 UTC such as\n"
        "                       2025-01-31T12:00:00Z, or Unix seconds); default: now\n"
        "  --collateral DIR     tdx, sgx: Intel's collateral (tcb_info.json,\n"
        "                       qe_identity.json, tcb_signing_chain.pem, pck_crl.der,\n"
        "                       root_ca_crl.der; docs/evidence-dcap.md); --root defaults\n"
        "                       to the Intel SGX Root CA pinned in this binary\n"
        "  --tcb-status LIST    tdx, sgx: TCB statuses to accept, comma-separated\n"
        "                       (default UpToDate; e.g. UpToDate,SWHardeningNeeded)\n"
        "  --certs DIR|FILE     sevsnp: the VCEK/VLEK and its ASK/ASVK when FILE is a raw\n"
        "                       report: a directory of .pem/.crt/.cer/.der certificates (a\n"
        "                       local VCEK cache; the right VCEK is picked by chip and TCB),\n"
        "                       or one file (PEM bundle, DER, or a certificate table). An\n"
        "                       extended report carries its own certificates. --root\n"
        "                       defaults to the AMD roots compiled into this binary; an ARK\n"
        "                       from the evidence or DIR is never trusted\n"
        "  --allow-migration-agent  sevsnp: accept a guest policy that allows a migration\n"
        "                       agent\n"
        "  --max-vmpl N         sevsnp: accept reports from VMPL 0..N (default 0)\n"
        "  --min-tcb LIST       sevsnp: minimum REPORTED_TCB, e.g. bl=3,tee=0,snp=8,ucode=115\n"
        "                       (and fmc=N on Turin)\n"
        "  --runtime-data FILE  require the report data to bind FILE (its first 32 bytes\n"
        "                       must be SHA-256 of FILE)\n"
        "  --report-data HEX    require the report data to be exactly these bytes\n"
        "  --nonce HEX          nitro: require the document's nonce to be exactly these\n"
        "                       bytes (\"\" for a present but empty nonce). For nitro, FILE\n"
        "                       is the COSE_Sign1 document, raw or in base64; --root\n"
        "                       defaults to the AWS Nitro Enclaves root compiled into this\n"
        "                       binary; --report-data / --runtime-data bind user_data\n");
    /* A second literal: C11 compilers need only support 4095 characters in one. */
    fprintf(f,
            "  azure-vtpm of a TDX CVM (a TDREPORT and its \"td_quote\" inside): --collateral DIR\n"
            "                       and --tcb-status LIST as for tdx; --certs is for SEV-SNP\n"
            "  --ak-pub AK.pem      tpm: trust this enrolled attestation key (PEM or DER\n"
            "                       public key) instead of an AK certificate chain to --root;\n"
            "                       the TPM's nonce is checked with --report-data HEX\n"
            "  --allow-sha1         tpm: accept quotes over the SHA-1 PCR bank\n"
            "  --allow-debug        accept a debuggable TEE (development only)\n"
            "  --json               print the claims as a JSON object only\n"
            "\n"
            "exit status: 0 verified, 1 rejected or failed, 2 usage error.\n");
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

/* Adds the DER of every certificate in `data` (a PEM bundle or one DER certificate) to out. */
static int
append_certs_der(const char *path, const uint8_t *data, size_t size, struct clst_buf *out)
{
    STACK_OF(X509) *stack = NULL;
    X509 *one = NULL;
    struct clst_err err = {0};
    int ret = CLI_EXIT_FAIL;
    bool pem = size >= 11 && memcmp(data, "-----BEGIN ", 11) == 0;

    if (pem ? clst_x509_stack_from_pem(data, size, &stack, &err) != CLST_OK
            : clst_x509_from_der(data, size, &one, &err) != CLST_OK) {
        clst_err_prefix(&err, "%s", path);
        return cli_fail(CMD, &err);
    }
    for (int i = 0; i < (pem ? sk_X509_num(stack) : 1); i++) {
        unsigned char *der = NULL;
        int n = i2d_X509(pem ? sk_X509_value(stack, i) : one, &der);
        bool ok = n > 0 && clst_buf_append(out, der, (size_t)n) == CLST_OK;
        OPENSSL_free(der);
        if (!ok) {
            ret = cli_failf(CMD, "%s: the certificates exceed %u bytes in all", path,
                            ENDORSEMENTS_MAX);
            goto out;
        }
    }
    ret = CLI_EXIT_OK;
out:
    sk_X509_pop_free(stack, X509_free);
    X509_free(one);
    return ret;
}

static bool
has_cert_suffix(const char *name)
{
    static const char *const suffixes[] = {".pem", ".crt", ".cer", ".der"};
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        size_t k = strlen(suffixes[i]);
        if (n > k && strcmp(name + n - k, suffixes[i]) == 0) {
            return true;
        }
    }
    return false;
}

/* --certs: a file is passed as it is (PEM bundle, DER or certificate table); a directory (the
 * local VCEK cache) contributes every .pem/.crt/.cer/.der file, re-encoded as DER. */
static int
load_certs(const char *path, struct clst_buf *out)
{
    struct stat st;
    int ret = CLI_EXIT_FAIL;
    DIR *dir = NULL;
    size_t files = 0;

    if (stat(path, &st) != 0) {
        return cli_failf(CMD, "--certs %s: %s", path, strerror(errno));
    }
    if (!S_ISDIR(st.st_mode)) {
        return cli_read_file(CMD, path, ENDORSEMENTS_MAX, out);
    }
    clst_buf_init(out, ENDORSEMENTS_MAX);
    dir = opendir(path);
    if (dir == NULL) {
        return cli_failf(CMD, "--certs %s: %s", path, strerror(errno));
    }
    for (;;) {
        errno = 0;
        struct dirent *e = readdir(dir);
        if (e == NULL) {
            if (errno != 0) {
                ret = cli_failf(CMD, "--certs %s: %s", path, strerror(errno));
                goto out;
            }
            break;
        }
        if (e->d_name[0] == '.' || !has_cert_suffix(e->d_name)) {
            continue;
        }
        if (++files > CERTS_DIR_MAX_FILES) {
            ret = cli_failf(CMD, "--certs %s: more than %d certificate files", path,
                            CERTS_DIR_MAX_FILES);
            goto out;
        }
        char file[4096];
        int n = snprintf(file, sizeof(file), "%s/%s", path, e->d_name);
        if (n < 0 || (size_t)n >= sizeof(file)) {
            ret = cli_failf(CMD, "--certs %s: a file name is too long", path);
            goto out;
        }
        if (stat(file, &st) != 0 || !S_ISREG(st.st_mode)) {
            continue;
        }
        struct clst_buf one = {0};
        if ((ret = cli_read_file(CMD, file, CERT_FILE_MAX, &one)) == CLI_EXIT_OK) {
            ret = append_certs_der(file, one.data != NULL ? one.data : (const uint8_t *)"",
                                   one.size, out);
        }
        clst_buf_cleanup(&one);
        if (ret != CLI_EXIT_OK) {
            goto out;
        }
    }
    ret = CLI_EXIT_OK;
out:
    closedir(dir);
    return ret;
}

/* nitro: attestation documents travel as base64 as often as raw (NSM tools print base64).
 * A file that does not start like a COSE_Sign1 (0x84, or tag 18: 0xd2) is decoded as base64,
 * whitespace ignored; what does not decode is left for the verifier to refuse. */
static int
nitro_unwrap_base64(const char *path, struct clst_buf *evidence)
{
    struct clst_buf text = {0}, raw = {0};
    int ret = CLI_EXIT_OK;

    if (evidence->size == 0 || evidence->data[0] == 0x84 || evidence->data[0] == 0xd2) {
        return CLI_EXIT_OK;
    }
    clst_buf_init(&text, EVIDENCE_FILE_MAX);
    clst_buf_init(&raw, EVIDENCE_FILE_MAX);
    for (size_t i = 0; i < evidence->size; i++) {
        uint8_t c = evidence->data[i];
        if (c != ' ' && c != '\n' && c != '\r' && c != '\t' &&
            clst_buf_append_byte(&text, c) != CLST_OK) {
            ret = cli_failf(CMD, "%s: out of memory", path);
            goto out;
        }
    }
    if (text.size > 0 && clst_b64_decode((const char *)text.data, text.size, &raw) == CLST_OK &&
        raw.size > 0) {
        clst_buf_cleanup(evidence);
        *evidence = raw;
        raw = (struct clst_buf){0};
    }
out:
    clst_buf_cleanup(&text);
    clst_buf_cleanup(&raw);
    return ret;
}

/* The sevsnp options object (docs/evidence-sevsnp.md) from the command line. */
static int
sevsnp_options(const char *max_vmpl, const char *min_tcb, bool allow_ma, json_t **out)
{
    static const struct {
        const char *arg;
        const char *option;
    } parts[] = {
        {"bl", "bootloader"}, {"tee", "tee"}, {"snp", "snp"}, {"ucode", "microcode"}, {"fmc", "fmc"},
    };
    json_t *o = json_object();
    json_t *tcb = NULL;
    uint64_t v = 0;

    if (o == NULL) {
        cli_failf(CMD, "out of memory");
        return -1;
    }
    if (allow_ma && json_object_set_new(o, "allow_migration_agent", json_true()) != 0) {
        goto fail;
    }
    if (max_vmpl != NULL) {
        if (clst_parse_u64(max_vmpl, 0, 3, &v, NULL) != CLST_OK) {
            cli_usage_error(CMD, "verify: --max-vmpl must be 0, 1, 2 or 3");
            goto fail;
        }
        if (json_object_set_new(o, "max_vmpl", json_integer((json_int_t)v)) != 0) {
            goto fail;
        }
    }
    if (min_tcb != NULL) {
        char buf[128];
        if (strlen(min_tcb) >= sizeof(buf)) {
            cli_usage_error(CMD, "verify: --min-tcb is too long");
            goto fail;
        }
        snprintf(buf, sizeof(buf), "%s", min_tcb);
        tcb = json_object();
        if (tcb == NULL) {
            goto fail;
        }
        char *save = NULL;
        for (char *item = strtok_r(buf, ",", &save); item != NULL;
             item = strtok_r(NULL, ",", &save)) {
            char *eq = strchr(item, '=');
            size_t k = 0;
            if (eq != NULL) {
                *eq = '\0';
                for (; k < sizeof(parts) / sizeof(parts[0]); k++) {
                    if (strcmp(item, parts[k].arg) == 0) {
                        break;
                    }
                }
            }
            if (eq == NULL || k == sizeof(parts) / sizeof(parts[0]) ||
                clst_parse_u64(eq + 1, 0, 255, &v, NULL) != CLST_OK) {
                cli_usage_error(CMD, "verify: --min-tcb takes bl=N,tee=N,snp=N,ucode=N,fmc=N "
                                     "(N from 0 to 255)");
                goto fail;
            }
            if (json_object_set_new(tcb, parts[k].option, json_integer((json_int_t)v)) != 0) {
                goto fail;
            }
        }
        if (json_object_set_new(o, "min_tcb", tcb) != 0) {
            tcb = NULL;
            goto fail;
        }
        tcb = NULL;
    }
    *out = o;
    return 0;
fail:
    json_decref(tcb);
    json_decref(o);
    return -1;
}

static int
verify(int argc, char **argv)
{
    const char *type = NULL, *file = NULL, *root_path = NULL, *time_str = NULL;
    const char *runtime_path = NULL, *report_hex = NULL;
    const char *collateral_dir = NULL, *tcb_status = NULL;
    struct clst_buf collateral = {0};
    const char *certs_path = NULL, *max_vmpl = NULL, *min_tcb = NULL;
    bool allow_migration_agent = false;
    struct clst_buf certs = {0};
    json_t *snp_options = NULL;
    const char *nonce_hex = NULL;
    json_t *nitro_options = NULL;
    const char *ak_pub_path = NULL;
    bool allow_sha1 = false;
    EVP_PKEY *tpm_ak = NULL;
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
        {"--collateral", &collateral_dir},
        {"--tcb-status", &tcb_status},
        {"--certs", &certs_path},
        {"--max-vmpl", &max_vmpl},
        {"--min-tcb", &min_tcb},
        {"--nonce", &nonce_hex},
        {"--ak-pub", &ak_pub_path},
    };
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--allow-sha1") == 0) {
            allow_sha1 = true;
            continue;
        }
        if (strcmp(argv[i], "--allow-debug") == 0) {
            allow_debug = true;
            continue;
        }
        if (strcmp(argv[i], "--json") == 0) {
            json = true;
            continue;
        }
        if (strcmp(argv[i], "--allow-migration-agent") == 0) {
            allow_migration_agent = true;
            continue;
        }
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
        return cli_usage_error(CMD, "verify: --type is required (sim, sevsnp, tdx, sgx, tpm, "
                                    "azure-vtpm or nitro)");
    }
    if (file == NULL) {
        return cli_usage_error(CMD, "verify: which evidence file?");
    }
    if (clst_evidence_kind_parse(type, &kind, &err) != CLST_OK) {
        return cli_usage_error(CMD, "verify: %s", err.msg);
    }
    bool dcap = kind == CLST_EVIDENCE_TDX || kind == CLST_EVIDENCE_SGX;
    bool snp = kind == CLST_EVIDENCE_SEVSNP;
    /* azure-vtpm: an SNP report inside; AMD roots, VCEK chain and SNP options as for sevsnp. */
    bool azure = kind == CLST_EVIDENCE_AZURE_VTPM;
    bool nitro = kind == CLST_EVIDENCE_NITRO;
    bool tpm = kind == CLST_EVIDENCE_TPM;
    if (!tpm && (ak_pub_path != NULL || allow_sha1)) {
        return cli_usage_error(CMD, "verify: --ak-pub and --allow-sha1 are for tpm");
    }
    if (!nitro && nonce_hex != NULL) {
        return cli_usage_error(CMD, "verify: --nonce is for nitro");
    }
    if (!snp && !azure && (certs_path != NULL || max_vmpl != NULL || min_tcb != NULL ||
                 allow_migration_agent)) {
        return cli_usage_error(CMD, "verify: --certs, --max-vmpl, --min-tcb and "
                                    "--allow-migration-agent are for sevsnp and azure-vtpm");
    }
    if (root_path == NULL && !dcap && !snp && !azure && !nitro && !(tpm && ak_pub_path != NULL)) {
        return cli_usage_error(CMD, "verify: --root is required: evidence is only as good as "
                                    "the root it chains to");
    }
    if (!dcap && !azure && (collateral_dir != NULL || tcb_status != NULL)) {
        return cli_usage_error(CMD, "verify: --collateral and --tcb-status are for tdx, sgx and "
                                    "azure-vtpm (TDX)");
    }
    if (!clst_evidence_kind_supported(kind)) {
        return cli_failf(CMD,
                         "evidence of type '%s' cannot be verified by this build yet "
                         "(supported: sim, sevsnp, tdx, sgx, tpm, azure-vtpm, nitro)",
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

    if ((snp || azure) && sevsnp_options(max_vmpl, min_tcb, allow_migration_agent, &snp_options) != 0) {
        ret = CLI_EXIT_USAGE;
        goto out;
    }
    if ((ret = cli_read_file(CMD, file, EVIDENCE_FILE_MAX, &evidence)) != CLI_EXIT_OK ||
        (root_path != NULL &&
         (ret = cli_read_file(CMD, root_path, ROOT_FILE_MAX, &roots_pem)) != CLI_EXIT_OK)) {
        goto out;
    }
    if (certs_path != NULL) {
        if ((ret = load_certs(certs_path, &certs)) != CLI_EXIT_OK) {
            goto out;
        }
        in.endorsements = certs.data;
        in.endorsements_size = certs.size;
    }
    in.options = snp_options;
    if (nitro && nonce_hex != NULL) {
        nitro_options = json_pack("{s:s}", "nonce", nonce_hex);
        if (nitro_options == NULL) {
            ret = cli_failf(CMD, "out of memory");
            goto out;
        }
        in.options = nitro_options;
    }
    if (nitro && (ret = nitro_unwrap_base64(file, &evidence)) != CLI_EXIT_OK) {
        goto out;
    }
    if (collateral_dir != NULL) {
        clst_buf_init(&collateral, COLLATERAL_MAX);
        if (clst_evidence_dcap_collateral_load(collateral_dir, &collateral, &err) != CLST_OK) {
            ret = cli_fail(CMD, &err);
            goto out;
        }
        in.endorsements = collateral.data;
        in.endorsements_size = collateral.size;
    }
    in.tcb_statuses = tcb_status;
    if (azure) {
        /* The HCL report holds an SNP report (VCEK chain: --certs) or a TDREPORT with its TD
         * quote (Intel collateral: --collateral). */
        enum clst_evidence_kind inside = CLST_EVIDENCE_SEVSNP;
        if (clst_evidence_azure_tee_kind(evidence.data, evidence.size, &inside, &err) != CLST_OK) {
            ret = cli_failf(CMD, "evidence rejected: %s", err.msg);
            goto out;
        }
        if (inside == CLST_EVIDENCE_TDX && certs_path != NULL) {
            ret = cli_usage_error(CMD, "verify: this is a TDX CVM's evidence: --certs is for "
                                       "SEV-SNP; give the Intel collateral with --collateral DIR");
            goto out;
        }
        if (inside == CLST_EVIDENCE_SEVSNP && (collateral_dir != NULL || tcb_status != NULL)) {
            ret = cli_usage_error(CMD, "verify: this is an SEV-SNP CVM's evidence: --collateral "
                                       "and --tcb-status are for TDX CVMs");
            goto out;
        }
        if (inside == CLST_EVIDENCE_TDX && collateral_dir == NULL) {
            ret = cli_usage_error(CMD, "verify: this is a TDX CVM's evidence: its TD quote needs "
                                       "Intel's collateral (--collateral DIR)");
            goto out;
        }
    }
    if (tpm && (ret = cli_tpm_verify_input(ak_pub_path, allow_sha1, &in, &tpm_ak)) !=
                   CLI_EXIT_OK) {
        goto out;
    }
    if (runtime_path != NULL) {
        if ((ret = cli_read_file(CMD, runtime_path, RUNTIME_DATA_MAX, &runtime)) != CLI_EXIT_OK) {
            goto out;
        }
        in.runtime_data = runtime.data != NULL ? runtime.data : (const uint8_t *)"";
        in.runtime_data_size = runtime.size;
    }
    ret = CLI_EXIT_FAIL;
    if (root_path == NULL && (snp || azure)) {
        if (clst_evidence_sevsnp_roots(&roots, &err) != CLST_OK) {
            ret = cli_fail(CMD, &err);
            goto out;
        }
    } else if (root_path == NULL && nitro) {
        if (clst_evidence_nitro_roots(&roots, &err) != CLST_OK) {
            ret = cli_fail(CMD, &err);
            goto out;
        }
    } else if (root_path == NULL && tpm) {
        /* an enrolled AK (--ak-pub) needs no roots */
    } else if (root_path == NULL) {
        if (clst_evidence_intel_roots(&roots, &err) != CLST_OK) {
            ret = cli_fail(CMD, &err);
            goto out;
        }
    } else if (clst_x509_stack_from_pem(roots_pem.data, roots_pem.size, &roots, &err) !=
               CLST_OK) {
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
    bool debuggable = json_is_true(json_object_get(claims, CLST_SIM_CLAIM_IS_DEBUGGABLE)) ||
                      json_is_true(json_object_get(claims, "tdx_td_attributes_debug")) ||
                      json_is_true(json_object_get(claims, "x-ms-sgx-is-debuggable")) ||
                      json_is_true(json_object_get(claims, "x-ms-sevsnpvm-is-debuggable")) ||
                      json_is_true(json_object_get(claims, "aws-nitro-is-debuggable")) ||
                      json_is_true(json_object_get(json_object_get(claims, "x-ms-isolation-tee"),
                                                   "x-ms-sevsnpvm-is-debuggable")) ||
                      json_is_true(json_object_get(json_object_get(claims, "x-ms-isolation-tee"),
                                                   "tdx_td_attributes_debug"));
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
    clst_buf_cleanup(&collateral);
    clst_buf_cleanup(&certs);
    json_decref(snp_options);
    json_decref(nitro_options);
    EVP_PKEY_free(tpm_ak);
    return ret;
}

/* ---- evidence get --tee sev-snp|tdx: configfs-tsm or /dev/sev-guest -------------------------- */

static void
tsm_usage(FILE *f)
{
    fprintf(
        f, "       cloister evidence get --tee sev-snp|tdx --report-data HEX -o FILE\n"
           "                             [--tsm-dir DIR] [--tsm-entry NAME] [--privlevel N]\n"
           "                             [--certs-out FILE]\n"
           "                             [--source auto|configfs-tsm|sev-guest] [--device PATH]\n"
           "                             [--no-certs]\n"
           "\n"
           "On an SEV-SNP or TDX guest (Linux 6.7+), collects a report through configfs-tsm:\n"
           "creates a report entry under DIR (default " CLST_TSM_DEFAULT_DIR "),\n"
           "writes the 64-byte report data to inblob (and privlevel), reads outblob (and, for\n"
           "SEV-SNP, auxblob: the certificate table), checks that no other process wrote to the\n"
           "entry meanwhile (generation), and removes the entry.\n"
           "  --report-data HEX    up to 64 bytes, zero-padded (e.g. SHA-256 of your runtime\n"
           "                       data: the binding the attestation service checks)\n"
           "  -o FILE              the evidence: sev-snp: the report followed by the\n"
           "                       certificate table when the host supplied one (an extended\n"
           "                       report, as 'evidence verify --type sevsnp' reads it);\n"
           "                       tdx: the quote\n"
           "  --certs-out FILE     sev-snp: write the certificate table here instead, and only\n"
           "                       the report to -o\n"
           "  --tsm-entry NAME     use (or create and keep) this entry instead of a fresh one\n"
           "  --privlevel N        0..3 (SEV-SNP: the VMPL of the report)\n"
           "  --source S           sev-snp: configfs-tsm, or sev-guest: the SNP_GET_EXT_REPORT\n"
           "                       ioctl of the sev-guest driver (older kernels; the report\n"
           "                       and the host's certificate table, in the same form as\n"
           "                       configfs-tsm gives them); auto (default): configfs-tsm when\n"
           "                       its directory exists, else /dev/sev-guest. tdx: configfs-tsm\n"
           "  --device PATH        sev-guest: the device (default " CLST_SEV_GUEST_DEFAULT_DEV ")\n"
           "  --no-certs           sev-guest: SNP_GET_REPORT, the report only (for hosts that\n"
           "                       do not serve extended reports)\n");
}

static int
write_out(const char *path, const uint8_t *a, size_t a_size, const uint8_t *b, size_t b_size)
{
    FILE *f = strcmp(path, "-") == 0 ? stdout : fopen(path, "wb");
    if (f == NULL) {
        return cli_failf(CMD, "cannot write %s: %s", path, strerror(errno));
    }
    bool ok = (a_size == 0 || fwrite(a, 1, a_size, f) == a_size) &&
              (b_size == 0 || fwrite(b, 1, b_size, f) == b_size);
    ok = (f == stdout ? fflush(f) == 0 : fclose(f) == 0) && ok;
    return ok ? CLI_EXIT_OK : cli_failf(CMD, "cannot write %s", path);
}

static int
tsm_get(int argc, char **argv)
{
    const char *tee = NULL, *rd_hex = NULL, *out_path = NULL, *dir = NULL, *entry = NULL;
    const char *privlevel = NULL, *certs_out = NULL, *source = NULL, *device = NULL;
    bool no_certs = false;
    struct clst_tsm_request req;
    struct clst_tsm_report rep;
    struct clst_sev_guest_request sreq;
    struct clst_sev_guest_report srep;
    const struct clst_buf *outb = NULL, *auxb = NULL;
    const char *provider = NULL;
    bool use_tsm = true;
    struct clst_err err = {0};
    struct clst_buf rd = {0};
    int ret = CLI_EXIT_FAIL;
    const struct {
        const char *name;
        const char **slot;
    } opts[] = {
        {"--tee", &tee},
        {"--report-data", &rd_hex},
        {"-o", &out_path},
        {"--tsm-dir", &dir},
        {"--tsm-entry", &entry},
        {"--privlevel", &privlevel},
        {"--certs-out", &certs_out},
        {"--source", &source},
        {"--device", &device},
    };
    for (int i = 2; i < argc; i++) {
        const char *v = NULL;
        int m = 0;
        size_t k = 0;
        if (strcmp(argv[i], "--no-certs") == 0) {
            no_certs = true;
            continue;
        }
        for (; k < sizeof(opts) / sizeof(opts[0]); k++) {
            if ((m = cli_opt_value(argc, argv, &i, opts[k].name, NULL, &v)) != 0) {
                break;
            }
        }
        if (m < 0) {
            return cli_usage_error(CMD, "get: %s needs a value", argv[i]);
        }
        if (m == 0) {
            return cli_usage_error(CMD, "get: unknown option '%s' for --tee sev-snp|tdx", argv[i]);
        }
        *opts[k].slot = v;
    }
    bool snp = strcmp(tee, "sev-snp") == 0 || strcmp(tee, "sevsnp") == 0;
    if (rd_hex == NULL || out_path == NULL) {
        return cli_usage_error(CMD, "get: --report-data HEX and -o FILE are required");
    }
    if (certs_out != NULL && !snp) {
        return cli_usage_error(CMD, "get: --certs-out is for --tee sev-snp");
    }
    if (source != NULL && strcmp(source, "auto") != 0 && strcmp(source, "configfs-tsm") != 0 &&
        strcmp(source, "sev-guest") != 0) {
        return cli_usage_error(CMD, "get: --source takes auto, configfs-tsm or sev-guest");
    }
    if (source != NULL && strcmp(source, "sev-guest") == 0) {
        if (!snp) {
            return cli_usage_error(CMD, "get: --source sev-guest is for --tee sev-snp (a TDX "
                                        "guest reports through configfs-tsm)");
        }
        if (dir != NULL || entry != NULL) {
            return cli_usage_error(CMD, "get: --tsm-dir and --tsm-entry are for configfs-tsm");
        }
        use_tsm = false;
    } else if (source != NULL && strcmp(source, "configfs-tsm") == 0) {
        use_tsm = true;
    } else if (snp && dir == NULL && entry == NULL && device == NULL) {
        /* auto: configfs-tsm when its report directory exists, else /dev/sev-guest */
        struct stat st;
        use_tsm = stat(CLST_TSM_DEFAULT_DIR, &st) == 0 && S_ISDIR(st.st_mode);
    } else {
        use_tsm = device == NULL;
    }
    if ((device != NULL || no_certs) && use_tsm) {
        return cli_usage_error(CMD, "get: --device and --no-certs are for --source sev-guest");
    }
    memset(&req, 0, sizeof(req));
    memset(&rep, 0, sizeof(rep));
    memset(&sreq, 0, sizeof(sreq));
    memset(&srep, 0, sizeof(srep));
    req.dir = dir;
    req.name = entry;
    req.provider = snp ? "sev_guest" : "tdx_guest";
    req.privlevel = -1;
    req.want_auxblob = snp;
    if (privlevel != NULL) {
        if (strlen(privlevel) != 1 || privlevel[0] < '0' ||
            privlevel[0] > '0' + CLST_TSM_PRIVLEVEL_MAX) {
            return cli_usage_error(CMD, "get: --privlevel takes 0 to %d", CLST_TSM_PRIVLEVEL_MAX);
        }
        req.privlevel = privlevel[0] - '0';
    }
    clst_buf_init(&rd, CLST_TSM_INBLOB_SIZE);
    if (clst_hex_decode(rd_hex, strlen(rd_hex), &rd) != CLST_OK) {
        clst_buf_cleanup(&rd);
        return cli_usage_error(CMD, "get: --report-data takes at most %d bytes in hex",
                               CLST_TSM_INBLOB_SIZE);
    }
    memcpy(req.inblob, rd.data ? rd.data : (const uint8_t *)"", rd.size);
    memcpy(sreq.user_data, rd.data ? rd.data : (const uint8_t *)"", rd.size);
    clst_buf_cleanup(&rd);
    if (use_tsm) {
        if (clst_evidence_tsm_get(&req, &rep, &err) != CLST_OK) {
            clst_err_prefix(&err, "configfs-tsm");
            return cli_fail(CMD, &err);
        }
        outb = &rep.outblob;
        auxb = &rep.auxblob;
        provider = rep.provider;
    } else {
        sreq.device = device;
        sreq.vmpl = req.privlevel >= 0 ? (uint32_t)req.privlevel : 0;
        sreq.extended = !no_certs;
        if (clst_evidence_sev_guest_get(&sreq, &srep, &err) != CLST_OK) {
            return cli_fail(CMD, &err);
        }
        outb = &srep.report;
        auxb = &srep.certs;
        provider = "sev-guest ioctl";
    }
    if (certs_out != NULL) {
        if ((ret = write_out(certs_out, auxb->data, auxb->size, NULL, 0)) != CLI_EXIT_OK ||
            (ret = write_out(out_path, outb->data, outb->size, NULL, 0)) != CLI_EXIT_OK) {
            goto out;
        }
    } else if ((ret = write_out(out_path, outb->data, outb->size, auxb->data, auxb->size)) !=
               CLI_EXIT_OK) {
        goto out;
    }
    if (strcmp(out_path, "-") != 0) {
        fprintf(stderr, "wrote %zu bytes of %s evidence (%s%s) to %s\n",
                outb->size + (certs_out ? 0 : auxb->size), snp ? "SEV-SNP" : "TDX", provider,
                auxb->size && !certs_out ? ", with its certificate table" : "", out_path);
    }
    ret = CLI_EXIT_OK;
out:
    clst_tsm_report_cleanup(&rep);
    clst_sev_guest_report_cleanup(&srep);
    return ret;
}

/* The --tee of an 'evidence get' command line, or NULL. */
static const char *
get_tee(int argc, char **argv)
{
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--tee") == 0 && i + 1 < argc) {
            return argv[i + 1];
        }
        if (strncmp(argv[i], "--tee=", 6) == 0) {
            return argv[i] + 6;
        }
    }
    return NULL;
}

int
cmd_evidence(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "get") == 0) {
        const char *tee = get_tee(argc, argv);
        if (tee != NULL && (strcmp(tee, "sev-snp") == 0 || strcmp(tee, "sevsnp") == 0 ||
                            strcmp(tee, "tdx") == 0)) {
            if (cli_wants_help(argc, argv)) {
                tsm_usage(stdout);
                return CLI_EXIT_OK;
            }
            return tsm_get(argc, argv);
        }
        int ret = cli_evidence_get(argc, argv); /* tpm; it has its own --help */
        if (cli_wants_help(argc, argv)) {
            tsm_usage(stdout);
        }
        return ret;
    }
    int rc;
    if (cli_help_done(argc, argv, usage, &rc)) {
        return rc;
    }
    if (strcmp(argv[1], "verify") == 0) {
        return verify(argc, argv);
    }
    return cli_usage_error(CMD, "unknown subcommand '%s' (verify, get)", argv[1]);
}
