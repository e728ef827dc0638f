/*
 * cloister token verify: verifies an attestation token as a relying party would: the signature
 * with a key of the service's JWKS chosen by "kid" (never a key named by the token itself), the
 * algorithm pinned by that key (so "none" and HMAC are refused), "typ" JWT, exp/nbf/iat at the
 * given time, and the issuer when asked. Prints the claims.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cloister/attest.h>

#include "cli/cli.h"

#define CMD      "token"
#define FILE_MAX (1u * 1024 * 1024)

static void
usage(FILE *f)
{
    fprintf(f,
            "usage: cloister token verify TOKEN [--jwks URL|FILE] [--issuer URL] [--ca FILE]\n"
            "                             [--time T] [--skew SECONDS] [--json]\n"
            "\n"
            "Verifies an attestation token (a JWT from 'cloister attest' or POST /attest/...):\n"
            "its signature with the key of the service's key set named by the token's kid, its\n"
            "algorithm (the key's: ES256 for Cloister), its type, its validity times, and its\n"
            "issuer when --issuer is given. Prints the claims, or why the token was refused.\n"
            "\n"
            "  TOKEN            the token, a file holding it, or '-' for standard input\n"
            "  --jwks URL|FILE  the signing keys: https://HOST:PORT/certs, or a JWKS file;\n"
            "                   default: ISSUER/certs when --issuer is given\n"
            "  --issuer URL     require iss == URL (e.g. https://127.0.0.1:8443)\n"
            "  --ca FILE        CA certificate for an https --jwks (the server's ca.pem)\n"
            "  --time T         verify at T (RFC 3339 UTC or Unix seconds); default: now\n"
            "  --skew SECONDS   clock tolerance (default 60, at most %d)\n"
            "  --json           print the claims as one JSON object\n"
            "\n"
            "exit status: 0 valid, 1 refused or failed, 2 usage error.\n",
            CLST_JWT_MAX_SKEW);
}

/* The token argument: "-", an existing file, or the token itself. Trailing whitespace goes. */
static int
load_token(const char *arg, struct clst_buf *out)
{
    int ret;
    FILE *probe = strcmp(arg, "-") == 0 ? NULL : fopen(arg, "rb");
    if (strcmp(arg, "-") == 0 || probe != NULL) {
        if (probe != NULL) {
            fclose(probe);
        }
        if ((ret = cli_read_file(CMD, arg, CLST_JWS_MAX_SIZE, out)) != CLI_EXIT_OK) {
            return ret;
        }
    } else {
        clst_buf_init(out, CLST_JWS_MAX_SIZE);
        if (clst_buf_append_str(out, arg) != CLST_OK) {
            return cli_failf(CMD, "the token is larger than %d bytes", CLST_JWS_MAX_SIZE);
        }
    }
    while (out->size > 0 && (out->data[out->size - 1] == '\n' || out->data[out->size - 1] == '\r' ||
                             out->data[out->size - 1] == ' ' || out->data[out->size - 1] == '\t')) {
        out->size--;
    }
    if (clst_buf_terminate(out) != CLST_OK) {
        return cli_failf(CMD, "out of memory");
    }
    return CLI_EXIT_OK;
}

static int
load_jwks(const char *where, const char *ca, struct clst_jwks **out)
{
    struct clst_err err = {0};
    if (strncmp(where, "https://", 8) == 0) {
        /* https://host:port/path: split off the path for the client. */
        const char *slash = strchr(where + 8, '/');
        char base[512];
        size_t n = slash ? (size_t)(slash - where) : strlen(where);
        if (n >= sizeof(base)) {
            return cli_usage_error(CMD, "--jwks URL is too long");
        }
        memcpy(base, where, n);
        base[n] = '\0';
        struct clst_attest_client c = {base, ca, NULL, 30};
        json_t *j = NULL;
        if (clst_attest_client_json(&c, "GET", slash ? slash : "/", NULL, &j, &err) != CLST_OK) {
            return cli_failf(CMD, "cannot fetch the signing keys from %s: %s", where, err.msg);
        }
        enum clst_status st = clst_jwks_from_json(j, out, &err);
        json_decref(j);
        if (st != CLST_OK) {
            return cli_failf(CMD, "the key set at %s is not usable: %s", where, err.msg);
        }
        return CLI_EXIT_OK;
    }
    if (strncmp(where, "http://", 7) == 0) {
        return cli_usage_error(CMD, "--jwks must be https:// or a file (keys are never fetched "
                                    "over plain http)");
    }
    struct clst_buf text = {0};
    int ret = cli_read_file(CMD, where, CLST_JWKS_MAX_SIZE, &text);
    if (ret == CLI_EXIT_OK &&
        clst_jwks_parse(text.size ? (const char *)text.data : "", text.size, out, &err) !=
            CLST_OK) {
        ret = cli_failf(CMD, "%s is not a usable key set: %s", where, err.msg);
    }
    clst_buf_cleanup(&text);
    return ret;
}

static void
print_claims(const json_t *claims)
{
    const char *name;
    json_t *value;
    json_object_foreach((json_t *)claims, name, value) {
        char *text = json_dumps(value, JSON_ENCODE_ANY | JSON_COMPACT);
        printf("  %-32s %s\n", name, text != NULL ? text : "?");
        free(text);
    }
}

static int
verify(int argc, char **argv)
{
    const char *token_arg = NULL, *jwks_arg = NULL, *issuer = NULL, *ca = NULL, *time_str = NULL;
    const char *skew_str = NULL;
    bool json = false;
    int ret = CLI_EXIT_FAIL;
    struct clst_buf token = {0};
    struct clst_jwks *jwks = NULL;
    json_t *claims = NULL, *header = NULL;
    struct clst_err err = {0};
    char jwks_url[600];

    const struct cli_opt_slot opts[] = {{"--jwks", &jwks_arg},
                                        {"--issuer", &issuer},
                                        {"--ca", &ca},
                                        {"--time", &time_str},
                                        {"--skew", &skew_str}};
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        bool done = false;
        if (strcmp(a, "--json") == 0) {
            json = true;
            continue;
        }
        int rc = cli_opt_slots(CMD, argc, argv, &i, opts, sizeof(opts) / sizeof(opts[0]), &done);
        if (rc != CLI_EXIT_OK) {
            return rc;
        }
        if (done) {
            continue;
        }
        if ((rc = cli_positional(CMD, a, &token_arg)) != CLI_EXIT_OK) {
            return rc;
        }
    }
    if (token_arg == NULL) {
        return cli_usage_error(CMD, "verify needs the TOKEN");
    }
    if (jwks_arg == NULL) {
        if (issuer == NULL) {
            return cli_usage_error(CMD, "say where the signing keys are: --jwks URL|FILE, or "
                                        "--issuer URL (keys from URL/certs)");
        }
        int n = snprintf(jwks_url, sizeof(jwks_url), "%s/certs", issuer);
        if (n < 0 || (size_t)n >= sizeof(jwks_url)) {
            return cli_usage_error(CMD, "--issuer is too long");
        }
        jwks_arg = jwks_url;
    }
    int64_t at = 0;
    struct clst_clock fixed;
    const struct clst_clock *clock = clst_clock_system();
    if (time_str != NULL) {
        if (clst_time_parse(time_str, &at, &err) != CLST_OK) {
            return cli_usage_error(CMD, "--time: %s", err.msg);
        }
        clst_clock_fixed_init(&fixed, at);
        clock = &fixed;
    }
    uint64_t skew = 60;
    if (skew_str != NULL &&
        clst_parse_u64(skew_str, 0, CLST_JWT_MAX_SKEW, &skew, NULL) != CLST_OK) {
        return cli_usage_error(CMD, "--skew takes 0 to %d seconds", CLST_JWT_MAX_SKEW);
    }
    if ((ret = load_token(token_arg, &token)) != CLI_EXIT_OK ||
        (ret = load_jwks(jwks_arg, ca, &jwks)) != CLI_EXIT_OK) {
        goto out;
    }
    ret = CLI_EXIT_FAIL;
    struct clst_attest_token_expect e = {issuer, clock, (int64_t)skew};
    if (clst_attest_token_verify((const char *)token.data, token.size, jwks, &e, &claims, &header,
                                 &err) != CLST_OK) {
        ret = cli_failf(CMD, "token refused: %s", err.msg);
        goto out;
    }
    const char *type = json_string_value(json_object_get(claims, "x-ms-attestation-type"));
    bool sim = type != NULL && strcmp(type, "sim") == 0;
    if (json) {
        char *text = json_dumps(claims, JSON_INDENT(2));
        printf("%s\n", text ? text : "{}");
        free(text);
    } else {
        char exp_text[32] = "?";
        json_t *exp = json_object_get(claims, "exp");
        if (json_is_integer(exp)) {
            (void)clst_time_format((int64_t)json_integer_value(exp), exp_text, sizeof(exp_text));
        }
        printf("token valid: signed by kid %s (%s), issuer %s, expires %s\n",
               json_string_value(json_object_get(header, "kid")),
               json_string_value(json_object_get(header, "alg")),
               json_string_value(json_object_get(claims, "iss")), exp_text);
        print_claims(claims);
    }
    if (sim) {
        fprintf(stderr, "cloister token: note: x-ms-attestation-type is sim: a development-only "
                        "TEE that does not protect against root, the kernel or the host\n");
    }
    ret = CLI_EXIT_OK;
out:
    clst_buf_cleanup(&token);
    clst_jwks_free(jwks);
    json_decref(claims);
    json_decref(header);
    return ret;
}

int
cmd_token(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    if (argc < 2 || strcmp(argv[1], "verify") != 0) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    return verify(argc, argv);
}
