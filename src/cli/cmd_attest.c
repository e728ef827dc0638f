/*
 * cloister attest: ask the attestation service for a token, and administer it (reference values,
 * appraisal policy). Talks to `cloister serve` over HTTPS (src/attest/client.c).
 *
 *   cloister attest --type sim --evidence FILE [--runtime-data FILE] [--nonce N]
 *   cloister attest challenge
 *   cloister attest refval add|list|remove --type sim ...
 *   cloister attest policy get|set|reset --type sim ...
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cloister/attest.h>

#include "cli/cli.h"

#define CMD            "attest"
#define FILE_MAX       (1u * 1024 * 1024)
#define API_VERSION    "api-version=" CLST_ATTEST_API_VERSION_LATEST

static void
usage(FILE *f)
{
    fprintf(
        f,
        "usage: cloister attest --type TYPE --evidence FILE [--runtime-data FILE]\n"
        "                       [--runtime-type json|binary] [--nonce NONCE] [--json]\n"
        "       cloister attest challenge [--json]\n"
        "       cloister attest refval add --type TYPE VALUE [--claim CLAIM] [--note TEXT]\n"
        "       cloister attest refval list --type TYPE [--json]\n"
        "       cloister attest refval remove --type TYPE VALUE [--claim CLAIM]\n"
        "       cloister attest policy get --type TYPE [--effective]\n"
        "       cloister attest policy set --type TYPE FILE\n"
        "       cloister attest policy reset --type TYPE\n"
        "\n"
        "Sends TEE evidence to the attestation service and prints the token it signs (a JWT whose\n"
        "claims say which TEE, which measurement, and the runtime data it holds), or why the\n"
        "evidence was rejected. The other forms manage the service (Administrator role).\n"
        "\n"
        "  --type TYPE            SimEnclave (sim), SgxEnclave (sgx), SevSnpVm (sevsnp), TdxVm (tdx),\n"
        "                         Tpm (tpm), AzureVm (azure-vtpm), NitroEnclave (nitro)\n"
        "                         (sim is the DEVELOPMENT-ONLY software TEE; the service accepts it\n"
        "                         only when started with --trust-sim)\n"
        "  --evidence FILE        the evidence as the TEE produced it (a quote, an SNP report, a\n"
        "                         Nitro document, 'cloister sim report -o FILE', ...); '-' for stdin\n"
        "  --runtime-data FILE    the runtime data the evidence binds (SHA-256 of it is in the\n"
        "                         report data); a JSON object becomes x-ms-runtime in the token\n"
        "  --runtime-type T       json or binary (default: json when FILE is a JSON object)\n"
        "  --nonce NONCE          a nonce from 'cloister attest challenge', bound in the runtime\n"
        "                         data (JSON: a \"nonce\" member; binary: its last bytes)\n"
        "  --claim CLAIM          the claim a reference value constrains (default: the type's\n"
        "                         measurement, x-cloister-sim-mrenclave for sim)\n"
        "  --effective            policy get: the policy in force (with reference values)\n"
        "  --json                 print JSON (the whole answer)\n"
        "\n"
        "connection (every form):\n"
        "  --data DIR             the server's data directory: URL from DIR/serve.port, CA from\n"
        "                         DIR/ca.pem, administrator token from DIR/admin-token\n"
        "  --server URL           https://HOST:PORT (env CLOISTER_URL)\n"
        "  --ca FILE              CA certificate to trust (env CLOISTER_CA)\n"
        "  --token-file FILE      bearer token for administration (env CLOISTER_TOKEN: the token)\n"
        "\n"
        "exit status: 0 success, 1 rejected or failed, 2 usage error.\n");
}

/* ---- options and connection ------------------------------------------------------------------ */

struct opts {
    const char *type, *evidence, *runtime, *runtime_type, *nonce, *claim, *note;
    const char *data, *server, *ca, *token_file;
    const char *positional[2];
    size_t npos;
    bool json, effective;
};

static int
parse_opts(int argc, char **argv, int start, struct opts *o)
{
    const struct cli_opt_slot valued[] = {
        {"--type", &o->type},
        {"--evidence", &o->evidence},
        {"--runtime-data", &o->runtime},
        {"--runtime-type", &o->runtime_type},
        {"--nonce", &o->nonce},
        {"--claim", &o->claim},
        {"--note", &o->note},
        {"--data", &o->data},
        {"--server", &o->server},
        {"--ca", &o->ca},
        {"--token-file", &o->token_file},
    };
    for (int i = start; i < argc; i++) {
        const char *a = argv[i];
        bool done = false;
        if (strcmp(a, "--json") == 0) {
            o->json = true;
            continue;
        }
        if (strcmp(a, "--effective") == 0) {
            o->effective = true;
            continue;
        }
        int rc =
            cli_opt_slots(CMD, argc, argv, &i, valued, sizeof(valued) / sizeof(valued[0]), &done);
        if (rc != CLI_EXIT_OK) {
            return rc;
        }
        if (done) {
            continue;
        }
        if (a[0] == '-' && a[1] != '\0') {
            return cli_usage_error(CMD, "unknown option '%s'", a);
        }
        if (o->npos >= 2) {
            return cli_usage_error(CMD, "unexpected argument '%s'", a);
        }
        o->positional[o->npos++] = a;
    }
    return CLI_EXIT_OK;
}

/* Connection state: strings live in `store`. */
struct conn {
    struct clst_attest_client c;
    char url[128];
    char ca[4096];
    struct clst_buf token;
};

static void
conn_cleanup(struct conn *k)
{
    clst_buf_cleanup(&k->token);
}

static int
conn_setup(const struct opts *o, bool want_token, struct conn *k)
{
    memset(k, 0, sizeof(*k));
    clst_buf_init_secret(&k->token, 4096);
    const char *server = o->server ? o->server : getenv("CLOISTER_URL");
    const char *ca = o->ca ? o->ca : getenv("CLOISTER_CA");
    const char *token_file = o->token_file;
    char token_path[4096] = "";
    if (o->data != NULL) {
        char path[4096];
        struct clst_buf port = {0};
        uint64_t p = 0;
        if (server == NULL) {
            snprintf(path, sizeof(path), "%s/serve.port", o->data);
            if (cli_read_file(CMD, path, 64, &port) != CLI_EXIT_OK) {
                return cli_failf(CMD, "is 'cloister serve --data %s' running?", o->data);
            }
            while (port.size > 0 && (port.data[port.size - 1] == '\n' ||
                                     port.data[port.size - 1] == '\r')) {
                port.size--;
            }
            (void)clst_buf_terminate(&port);
            if (clst_parse_u64((const char *)port.data, 1, 65535, &p, NULL) != CLST_OK) {
                clst_buf_cleanup(&port);
                return cli_failf(CMD, "%s does not hold a port number", path);
            }
            clst_buf_cleanup(&port);
            snprintf(k->url, sizeof(k->url), "https://127.0.0.1:%u", (unsigned)p);
            server = k->url;
        }
        if (ca == NULL) {
            snprintf(k->ca, sizeof(k->ca), "%s/ca.pem", o->data);
            ca = k->ca;
        }
        if (token_file == NULL) {
            snprintf(token_path, sizeof(token_path), "%s/admin-token", o->data);
            token_file = token_path;
        }
    }
    if (server == NULL) {
        return cli_usage_error(CMD, "say which service: --data DIR, --server URL or CLOISTER_URL");
    }
    k->c.url = server;
    k->c.ca_file = ca;
    if (want_token) {
        const char *env = getenv("CLOISTER_TOKEN");
        if (o->token_file == NULL && env != NULL && env[0] != '\0') {
            (void)clst_buf_append_str(&k->token, env);
        } else if (token_file != NULL) {
            if (cli_read_file(CMD, token_file, 4000, &k->token) != CLI_EXIT_OK) {
                return cli_failf(CMD, "an administrator token is needed (--token-file FILE or "
                                      "CLOISTER_TOKEN)");
            }
            while (k->token.size > 0 && (k->token.data[k->token.size - 1] == '\n' ||
                                         k->token.data[k->token.size - 1] == '\r' ||
                                         k->token.data[k->token.size - 1] == ' ')) {
                k->token.size--;
            }
        } else {
            return cli_usage_error(CMD, "an administrator token is needed: --token-file FILE, "
                                        "CLOISTER_TOKEN or --data DIR");
        }
        if (clst_buf_terminate(&k->token) != CLST_OK) {
            return cli_failf(CMD, "out of memory");
        }
        k->c.bearer = (const char *)k->token.data;
    }
    return CLI_EXIT_OK;
}

static int
find_type(const struct opts *o, const struct clst_attest_type **out)
{
    struct clst_err err = {0};
    if (o->type == NULL) {
        return cli_usage_error(CMD, "--type is required (sim, sgx, sevsnp, tdx, tpm, "
                                    "azure-vtpm, nitro)");
    }
    if (clst_attest_type_find(o->type, out, &err) != CLST_OK) {
        return cli_usage_error(CMD, "%s", err.msg);
    }
    return CLI_EXIT_OK;
}

static void
print_json(const json_t *j)
{
    char *text = json_dumps(j, JSON_INDENT(2) | JSON_ENCODE_ANY);
    if (text != NULL) {
        printf("%s\n", text);
        free(text);
    }
}

/* ---- attest ---------------------------------------------------------------------------------- */

static int
do_attest(const struct opts *o)
{
    int ret = CLI_EXIT_FAIL;
    const struct clst_attest_type *type;
    struct conn k;
    struct clst_buf ev = {0}, rt = {0}, b64 = {0}, rb64 = {0};
    json_t *body = NULL, *answer = NULL;
    struct clst_err err = {0};
    char path[128];

    if ((ret = find_type(o, &type)) != CLI_EXIT_OK) {
        return ret;
    }
    if (o->evidence == NULL) {
        return cli_usage_error(CMD, "--evidence FILE is required");
    }
    if (o->npos > 0) {
        return cli_usage_error(CMD, "unexpected argument '%s'", o->positional[0]);
    }
    memset(&k, 0, sizeof(k));
    if ((ret = conn_setup(o, false, &k)) != CLI_EXIT_OK ||
        (ret = cli_read_file(CMD, o->evidence, FILE_MAX, &ev)) != CLI_EXIT_OK) {
        goto out;
    }
    ret = CLI_EXIT_FAIL;
    clst_buf_init(&b64, 2 * FILE_MAX);
    if (clst_b64url_encode(ev.data, ev.size, &b64) != CLST_OK || clst_buf_terminate(&b64) != CLST_OK) {
        ret = cli_failf(CMD, "out of memory");
        goto out;
    }
    body = json_pack("{s:s}", "report", (const char *)b64.data);
    if (o->runtime != NULL) {
        if ((ret = cli_read_file(CMD, o->runtime, FILE_MAX, &rt)) != CLI_EXIT_OK) {
            goto out;
        }
        ret = CLI_EXIT_FAIL;
        bool is_json;
        if (o->runtime_type == NULL) {
            json_t *probe = json_loadb(rt.size ? (const char *)rt.data : "", rt.size,
                                       JSON_REJECT_DUPLICATES, NULL);
            is_json = json_is_object(probe);
            json_decref(probe);
        } else if (strcmp(o->runtime_type, "json") == 0) {
            is_json = true;
        } else if (strcmp(o->runtime_type, "binary") == 0) {
            is_json = false;
        } else {
            ret = cli_usage_error(CMD, "--runtime-type takes json or binary");
            goto out;
        }
        clst_buf_init(&rb64, 2 * FILE_MAX);
        if (clst_b64url_encode(rt.data, rt.size, &rb64) != CLST_OK ||
            clst_buf_terminate(&rb64) != CLST_OK) {
            ret = cli_failf(CMD, "out of memory");
            goto out;
        }
        json_object_set_new(body, "runtimeData",
                            json_pack("{s:s, s:s}", "data",
                                      rb64.size ? (const char *)rb64.data : "", "dataType",
                                      is_json ? "JSON" : "Binary"));
    }
    if (o->nonce != NULL) {
        json_object_set_new(body, "nonce", json_string(o->nonce));
    }
    snprintf(path, sizeof(path), "/attest/%s?" API_VERSION, type->name);
    if (clst_attest_client_json(&k.c, "POST", path, body, &answer, &err) != CLST_OK) {
        ret = cli_failf(CMD, "attestation rejected: %s", err.msg);
        goto out;
    }
    const char *token = json_string_value(json_object_get(answer, "token"));
    if (token == NULL) {
        ret = cli_failf(CMD, "the service's answer has no token");
        goto out;
    }
    if (o->json) {
        print_json(answer);
    } else {
        printf("%s\n", token);
    }
    if (type->kind == CLST_EVIDENCE_SIM) {
        fprintf(stderr, "cloister attest: note: a sim token (development-only TEE: it does not "
                        "protect against root, the kernel or the host)\n");
    }
    ret = CLI_EXIT_OK;
out:
    conn_cleanup(&k);
    clst_buf_cleanup(&ev);
    clst_buf_cleanup(&rt);
    clst_buf_cleanup(&b64);
    clst_buf_cleanup(&rb64);
    json_decref(body);
    json_decref(answer);
    return ret;
}

static int
do_challenge(const struct opts *o)
{
    struct conn k;
    json_t *answer = NULL;
    struct clst_err err = {0};
    int ret = conn_setup(o, false, &k);
    if (ret != CLI_EXIT_OK) {
        conn_cleanup(&k);
        return ret;
    }
    if (clst_attest_client_json(&k.c, "POST", "/attest/challenge?" API_VERSION, NULL, &answer,
                                &err) != CLST_OK) {
        ret = cli_fail(CMD, &err);
    } else if (o->json) {
        print_json(answer);
    } else {
        printf("%s\n", json_string_value(json_object_get(answer, "nonce")));
        fprintf(stderr, "cloister attest: nonce valid until %s, for one attestation\n",
                json_string_value(json_object_get(answer, "expiresAt")));
    }
    json_decref(answer);
    conn_cleanup(&k);
    return ret;
}

/* ---- refval ---------------------------------------------------------------------------------- */

static int
do_refval(const struct opts *o)
{
    const struct clst_attest_type *type;
    struct conn k;
    json_t *answer = NULL, *body = NULL;
    struct clst_err err = {0};
    char path[1024];
    int ret;
    const char *op = o->positional[0];
    if (op == NULL) {
        return cli_usage_error(CMD, "refval needs add, list or remove");
    }
    if ((ret = find_type(o, &type)) != CLI_EXIT_OK) {
        return ret;
    }
    bool list = strcmp(op, "list") == 0;
    bool add = strcmp(op, "add") == 0;
    bool remove = strcmp(op, "remove") == 0;
    if (!list && !add && !remove) {
        return cli_usage_error(CMD, "refval needs add, list or remove, not '%s'", op);
    }
    if (list && o->npos != 1) {
        return cli_usage_error(CMD, "refval list takes no value");
    }
    if (!list && o->npos != 2) {
        return cli_usage_error(CMD, "refval %s needs the value", op);
    }
    if ((ret = conn_setup(o, true, &k)) != CLI_EXIT_OK) {
        conn_cleanup(&k);
        return ret;
    }
    ret = CLI_EXIT_FAIL;
    enum clst_status st;
    if (list) {
        snprintf(path, sizeof(path), "/attest/refvals/%s?" API_VERSION, type->name);
        st = clst_attest_client_json(&k.c, "GET", path, NULL, &answer, &err);
    } else if (add) {
        snprintf(path, sizeof(path), "/attest/refvals/%s?" API_VERSION, type->name);
        body = json_pack("{s:s}", "value", o->positional[1]);
        if (o->claim != NULL) {
            json_object_set_new(body, "claim", json_string(o->claim));
        }
        if (o->note != NULL) {
            json_object_set_new(body, "note", json_string(o->note));
        }
        st = clst_attest_client_json(&k.c, "POST", path, body, &answer, &err);
    } else {
        /* The value and claim are [0-9A-Za-z._-] or printable text: percent-encode all but
         * unreserved characters. */
        char enc[3 * CLST_ATTEST_MAX_REFVAL_SIZE + 1];
        size_t w = 0;
        for (const char *p = o->positional[1]; *p != '\0' && w + 4 < sizeof(enc); p++) {
            unsigned char c = (unsigned char)*p;
            if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                c == '-' || c == '.' || c == '_' || c == '~') {
                enc[w++] = (char)c;
            } else {
                w += (size_t)snprintf(enc + w, sizeof(enc) - w, "%%%02X", c);
            }
        }
        enc[w] = '\0';
        int n = snprintf(path, sizeof(path), "/attest/refvals/%s?" API_VERSION "&value=%s%s%s",
                         type->name, enc, o->claim ? "&claim=" : "", o->claim ? o->claim : "");
        if (n < 0 || (size_t)n >= sizeof(path)) {
            ret = cli_usage_error(CMD, "the value or claim is too long");
            goto out;
        }
        st = clst_attest_client_json(&k.c, "DELETE", path, NULL, &answer, &err);
    }
    if (st != CLST_OK) {
        ret = cli_fail(CMD, &err);
        goto out;
    }
    if (o->json || list) {
        if (o->json) {
            print_json(answer);
        } else {
            const json_t *values = json_object_get(answer, "value");
            size_t i;
            const json_t *v;
            printf("reference values for %s (policy hash %s):\n", type->name,
                   json_string_value(json_object_get(answer, "policyHash")));
            if (json_array_size(values) == 0) {
                printf("  (none: any measurement passes the reference-value check)\n");
            }
            json_array_foreach(values, i, v) {
                const char *note = json_string_value(json_object_get(v, "note"));
                printf("  %s = %s%s%s\n", json_string_value(json_object_get(v, "claim")),
                       json_string_value(json_object_get(v, "value")), note ? "  # " : "",
                       note ? note : "");
            }
        }
    } else {
        printf("%s %s reference value for %s; policy hash now %s\n", add ? "added" : "removed",
               o->claim ? o->claim : type->measurement_claim, type->name,
               json_string_value(json_object_get(answer, "policyHash")));
    }
    ret = CLI_EXIT_OK;
out:
    json_decref(answer);
    json_decref(body);
    conn_cleanup(&k);
    return ret;
}

/* ---- policy ---------------------------------------------------------------------------------- */

/* Decodes the claims of a policy result token (verified against the service's /certs). */
static enum clst_status
policy_token_claims(const struct conn *k, const json_t *answer, json_t **out, struct clst_err *err)
{
    enum clst_status rc;
    json_t *jwks_json = NULL;
    struct clst_jwks *jwks = NULL;
    const char *token = json_string_value(json_object_get(answer, "token"));
    if (token == NULL) {
        return clst_err_set(err, CLST_E_MALFORMED, "the service's answer has no token");
    }
    if ((rc = clst_attest_client_json(&k->c, "GET", "/certs", NULL, &jwks_json, err)) != CLST_OK ||
        (rc = clst_jwks_from_json(jwks_json, &jwks, err)) != CLST_OK) {
        json_decref(jwks_json);
        return rc;
    }
    /* The signature is what matters here (the answer arrived fresh over TLS); the times are
     * the server's, which a test clock may have moved. */
    struct clst_buf payload;
    clst_buf_init(&payload, CLST_JWS_MAX_SIZE);
    rc = clst_jws_verify_jwks(token, strlen(token), jwks, &payload, NULL, NULL, err);
    if (rc != CLST_OK) {
        clst_err_prefix(err, "the policy token does not verify");
    } else {
        *out = json_loadb(payload.size ? (const char *)payload.data : "", payload.size,
                          JSON_REJECT_DUPLICATES, NULL);
        if (!json_is_object(*out)) {
            json_decref(*out);
            *out = NULL;
            rc = clst_err_set(err, CLST_E_MALFORMED, "the policy token's claims are not JSON");
        }
    }
    clst_buf_cleanup(&payload);
    clst_jwks_free(jwks);
    json_decref(jwks_json);
    return rc;
}

static int
do_policy(const struct opts *o)
{
    const struct clst_attest_type *type;
    struct conn k;
    json_t *answer = NULL, *claims = NULL;
    struct clst_buf text = {0};
    struct clst_err err = {0};
    char path[256];
    int ret;
    const char *op = o->positional[0];
    if (op == NULL) {
        return cli_usage_error(CMD, "policy needs get, set or reset");
    }
    if ((ret = find_type(o, &type)) != CLI_EXIT_OK) {
        return ret;
    }
    bool get = strcmp(op, "get") == 0, set = strcmp(op, "set") == 0,
         reset = strcmp(op, "reset") == 0;
    if (!get && !set && !reset) {
        return cli_usage_error(CMD, "policy needs get, set or reset, not '%s'", op);
    }
    if ((set && o->npos != 2) || (!set && o->npos != 1)) {
        return cli_usage_error(CMD, set ? "policy set needs the policy FILE"
                                        : "unexpected argument '%s'",
                               o->positional[1]);
    }
    if ((ret = conn_setup(o, true, &k)) != CLI_EXIT_OK) {
        conn_cleanup(&k);
        return ret;
    }
    ret = CLI_EXIT_FAIL;
    enum clst_status st;
    if (get) {
        snprintf(path, sizeof(path), "/policies/%s?" API_VERSION, type->name);
        st = clst_attest_client_json(&k.c, "GET", path, NULL, &answer, &err);
    } else if (set) {
        if ((ret = cli_read_file(CMD, o->positional[1], CLST_ATTEST_MAX_REQUEST_SIZE, &text)) !=
            CLI_EXIT_OK) {
            goto out;
        }
        ret = CLI_EXIT_FAIL;
        long status = 0;
        struct clst_buf resp;
        clst_buf_init(&resp, CLST_ATTEST_CLIENT_MAX_RESPONSE);
        snprintf(path, sizeof(path), "/policies/%s?" API_VERSION, type->name);
        st = clst_attest_client_request(&k.c, "PUT", path, "application/json", text.data,
                                        text.size, &status, &resp, &err);
        if (st == CLST_OK) {
            answer = json_loadb(resp.size ? (const char *)resp.data : "", resp.size, 0, NULL);
            if (status != 200) {
                const char *msg = json_string_value(
                    json_object_get(json_object_get(answer, "error"), "message"));
                st = clst_err_set(&err, CLST_E_VERIFY, "the service answered %ld: %s", status,
                                  msg ? msg : "(no message)");
            }
        }
        clst_buf_cleanup(&resp);
    } else {
        snprintf(path, sizeof(path), "/policies/%s:reset?" API_VERSION, type->name);
        st = clst_attest_client_json(&k.c, "POST", path, NULL, &answer, &err);
    }
    if (st != CLST_OK || (st = policy_token_claims(&k, answer, &claims, &err)) != CLST_OK) {
        ret = cli_fail(CMD, &err);
        goto out;
    }
    if (get) {
        const json_t *p = json_object_get(claims, o->effective ? "x-cloister-policy-effective"
                                                               : "x-cloister-policy");
        if (o->json) {
            print_json(claims);
        } else {
            print_json(p);
            fprintf(stderr, "cloister attest: %s policy for %s%s; hash in force %s\n",
                    o->effective ? "effective" : "appraisal", type->name,
                    json_is_true(json_object_get(claims, "x-cloister-policy-default"))
                        ? " (the default)"
                        : "",
                    json_string_value(json_object_get(claims, "x-ms-policy-hash")));
        }
    } else if (o->json) {
        print_json(claims);
    } else {
        printf("policy for %s %s; x-ms-policy-hash now %s\n", type->name,
               set ? "set" : "reset to the default",
               json_string_value(json_object_get(claims, "x-ms-policy-hash")));
    }
    ret = CLI_EXIT_OK;
out:
    json_decref(answer);
    json_decref(claims);
    clst_buf_cleanup(&text);
    conn_cleanup(&k);
    return ret;
}

int
cmd_attest(int argc, char **argv)
{
    struct opts o;
    memset(&o, 0, sizeof(o));
    int rc;
    if (cli_help_done(argc, argv, usage, &rc)) {
        return rc;
    }
    const char *sub = argv[1];
    bool has_sub = strcmp(sub, "challenge") == 0 || strcmp(sub, "refval") == 0 ||
                   strcmp(sub, "policy") == 0;
    int ret = parse_opts(argc, argv, has_sub ? 2 : 1, &o);
    if (ret != CLI_EXIT_OK) {
        return ret;
    }
    if (!has_sub) {
        return do_attest(&o);
    }
    if (strcmp(sub, "challenge") == 0) {
        if (o.npos > 0) {
            return cli_usage_error(CMD, "unexpected argument '%s'", o.positional[0]);
        }
        return do_challenge(&o);
    }
    return strcmp(sub, "refval") == 0 ? do_refval(&o) : do_policy(&o);
}
