/*
 * cloister policy test | check | hash: evaluate a release or appraisal policy offline against a
 * claims file or a token and print the whole evaluation trace; validate a policy; print its
 * canonical hash. The library side is src/policy (include/cloister/policy.h); the grammar is
 * docs/policy.md.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cloister/jose.h>
#include <cloister/policy.h>

#include "cli/cli.h"

#define CMD "policy"

/* A claims file is a token's payload: bounded like one, with room for pretty-printing. */
#define CLAIMS_MAX_SIZE (1024u * 1024)
/* Seconds of clock skew accepted when a token is verified with --jwks. */
#define TOKEN_SKEW 60

static void
usage(FILE *f)
{
    fprintf(
        f,
        "usage: cloister policy test --policy FILE (--claims FILE | --token JWT ...)\n"
        "                            [--kind release|appraisal] [--issuer ISS] [--json] "
        "[--redact]\n"
        "       cloister policy check --policy FILE [--kind release|appraisal]\n"
        "       cloister policy hash --policy FILE [--kind release|appraisal]\n"
        "\n"
        "test      evaluate the policy offline and print every node's verdict, the decision and,\n"
        "          for a denial, the failing path, claim, operator, expected and actual value\n"
        "  --policy FILE      the policy (JSON; '-' for standard input)\n"
        "  --kind KIND        release (default): "
        "{\"version\":\"1.0.0\",\"anyOf\":[{\"authority\":...}]}\n"
        "                     appraisal: {\"authorizationRules\":...,\"referenceValues\":...}\n"
        "  --claims FILE      the claims: a JSON object (a token's payload)\n"
        "  --token JWT        a token (compact JWS); @FILE reads it from FILE, '-' from standard\n"
        "                     input. Its signature must be verified, with one of:\n"
        "    --jwks FILE      the issuer's signing keys (a JWK set, e.g. from GET /certs); the\n"
        "                     token's exp/nbf/iat are checked against this machine's clock\n"
        "    --audience AUD   the audience the token must name, when it has \"aud\"\n"
        "    --no-verify      do NOT verify the signature: evaluate whatever the token says\n"
        "                     (debugging a policy only; the output says UNVERIFIED)\n"
        "  --issuer ISS       the issuer authorities are matched against (default: the claims'\n"
        "                     \"iss\")\n"
        "  --json             print the result as JSON (the vault's 403 body, with the trace)\n"
        "  --redact           show values as their type (<string>, <number>, ...)\n"
        "\n"
        "check     validate a policy and print what it holds and its hash\n"
        "hash      print the policy's canonical hash (SHA-256 of its canonical JSON, base64url:\n"
        "          what x-ms-policy-hash carries)\n"
        "\n"
        "exit status: test: 0 allowed, 1 denied or an error; check/hash: 0 valid, 1 invalid or\n"
        "an error; 2 usage error. See docs/policy.md for the grammar.\n");
}

/* Reads a whole file (or standard input for "-") of at most `max` bytes into `out` (which this
 * initializes), NUL-terminated. */
static int
read_file(const char *path, size_t max, struct clst_buf *out)
{
    int ret = cli_read_file(CMD, path, max, out);
    if (ret == CLI_EXIT_OK && clst_buf_terminate(out) != CLST_OK) {
        ret = cli_failf(CMD, "out of memory reading %s", path);
    }
    return ret;
}

static int
parse_kind(const char *s, enum clst_policy_kind *out)
{
    if (strcmp(s, "release") == 0) {
        *out = CLST_POLICY_RELEASE;
        return CLI_EXIT_OK;
    }
    if (strcmp(s, "appraisal") == 0) {
        *out = CLST_POLICY_APPRAISAL;
        return CLI_EXIT_OK;
    }
    return cli_usage_error(CMD, "--kind must be 'release' or 'appraisal', not '%s'", s);
}

static int
load_policy(const char *path, enum clst_policy_kind kind, struct clst_policy **out)
{
    struct clst_buf text;
    struct clst_err err = {0};
    int ret = read_file(path, CLST_POLICY_MAX_SIZE, &text);
    if (ret == CLI_EXIT_OK &&
        clst_policy_parse((const char *)text.data, text.size, kind, out, &err) != CLST_OK) {
        ret = cli_failf(CMD, "%s: invalid %s policy: %s", path,
                        kind == CLST_POLICY_RELEASE ? "release" : "appraisal", err.msg);
    }
    clst_buf_cleanup(&text);
    return ret;
}

static int
load_claims(const char *path, json_t **out)
{
    struct clst_buf text;
    json_error_t jerr;
    int ret = read_file(path, CLAIMS_MAX_SIZE, &text);
    if (ret != CLI_EXIT_OK) {
        goto out;
    }
    /* Duplicate claims have no single meaning; refuse them as token parsing does. */
    json_t *j = json_loadb((const char *)text.data, text.size, JSON_REJECT_DUPLICATES, &jerr);
    if (j == NULL) {
        ret = cli_failf(CMD, "%s: not valid JSON: %s (line %d, column %d)", path, jerr.text,
                        jerr.line, jerr.column);
        goto out;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        ret = cli_failf(CMD, "%s: the claims must be a JSON object", path);
        goto out;
    }
    *out = j;
out:
    clst_buf_cleanup(&text);
    return ret;
}

/* The token text: the argument itself, @FILE or '-' (standard input); surrounding whitespace
 * (a trailing newline) removed. */
static int
load_token(const char *arg, struct clst_buf *out)
{
    int ret;
    if (arg[0] == '@' || strcmp(arg, "-") == 0) {
        ret = read_file(arg[0] == '@' ? arg + 1 : arg, CLST_JWS_MAX_SIZE + 2, out);
        if (ret != CLI_EXIT_OK) {
            return ret;
        }
    } else {
        clst_buf_init(out, CLST_JWS_MAX_SIZE + 2);
        if (clst_buf_append_str(out, arg) != CLST_OK || clst_buf_terminate(out) != CLST_OK) {
            return cli_failf(CMD, "the token is larger than %d bytes", CLST_JWS_MAX_SIZE);
        }
    }
    char *s = (char *)out->data;
    size_t n = out->size, start = 0;
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t')) {
        n--;
    }
    while (start < n && (s[start] == ' ' || s[start] == '\t' || s[start] == '\n')) {
        start++;
    }
    memmove(s, s + start, n - start);
    out->size = n - start;
    s[out->size] = '\0';
    if (out->size == 0) {
        return cli_failf(CMD, "the token is empty");
    }
    return CLI_EXIT_OK;
}

/* UNVERIFIED: the payload of a compact JWS as a JSON object. Structure checks only. */
static int
token_claims_unverified(const char *token, size_t size, json_t **out)
{
    struct clst_err err = {0};
    json_t *header = NULL;
    /* The same structural checks as verification (three segments, base64url, a JSON header). */
    if (clst_jws_header_unverified(token, size, &header, &err) != CLST_OK) {
        return cli_failf(CMD, "not a token: %s", err.msg);
    }
    json_decref(header);
    const char *dot1 = memchr(token, '.', size);
    const char *dot2 =
        dot1 != NULL ? memchr(dot1 + 1, '.', size - (size_t)(dot1 + 1 - token)) : NULL;
    if (dot1 == NULL || dot2 == NULL) {
        return cli_failf(CMD, "not a token: a compact JWS has three '.'-separated parts");
    }
    struct clst_buf payload;
    clst_buf_init(&payload, CLST_JWS_MAX_SIZE);
    int ret = CLI_EXIT_OK;
    if (clst_b64url_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), &payload) != CLST_OK) {
        ret = cli_failf(CMD, "not a token: the payload is not base64url");
        goto out;
    }
    json_error_t jerr;
    json_t *j = json_loadb((const char *)payload.data, payload.size, JSON_REJECT_DUPLICATES, &jerr);
    if (j == NULL || !json_is_object(j)) {
        json_decref(j);
        ret = cli_failf(CMD, "not a token: the payload is not a JSON object");
        goto out;
    }
    *out = j;
out:
    clst_buf_cleanup(&payload);
    return ret;
}

/* The claims of a token verified with the keys of `jwks_path`. */
static int
token_claims_verified(const char *token, size_t size, const char *jwks_path, const char *audience,
                      json_t **out)
{
    struct clst_buf text;
    struct clst_err err = {0};
    struct clst_jwks *jwks = NULL;
    int ret = read_file(jwks_path, CLST_JWKS_MAX_SIZE, &text);
    if (ret != CLI_EXIT_OK) {
        goto out;
    }
    if (clst_jwks_parse((const char *)text.data, text.size, &jwks, &err) != CLST_OK) {
        ret = cli_failf(CMD, "%s: not a usable JWK set: %s", jwks_path, err.msg);
        goto out;
    }
    struct clst_jwt_expect expect = {0};
    expect.audience = audience;
    expect.skew = TOKEN_SKEW;
    expect.clock = clst_clock_system();
    if (clst_jwt_verify(token, size, jwks, &expect, out, NULL, &err) != CLST_OK) {
        ret = cli_failf(CMD, "the token does not verify: %s", err.msg);
        goto out;
    }
out:
    clst_jwks_free(jwks);
    clst_buf_cleanup(&text);
    return ret;
}

struct test_opts {
    const char *policy, *claims, *token, *jwks, *audience, *issuer;
    enum clst_policy_kind kind;
    bool no_verify, json, redact;
};

static int
parse_test_opts(int argc, char **argv, struct test_opts *o)
{
    for (int i = 2; i < argc; i++) {
        const char *kind = NULL;
        int m;
        if ((m = cli_opt_value(argc, argv, &i, "--policy", NULL, &o->policy)) != 0 ||
            (m = cli_opt_value(argc, argv, &i, "--claims", NULL, &o->claims)) != 0 ||
            (m = cli_opt_value(argc, argv, &i, "--token", NULL, &o->token)) != 0 ||
            (m = cli_opt_value(argc, argv, &i, "--jwks", NULL, &o->jwks)) != 0 ||
            (m = cli_opt_value(argc, argv, &i, "--audience", NULL, &o->audience)) != 0 ||
            (m = cli_opt_value(argc, argv, &i, "--issuer", NULL, &o->issuer)) != 0) {
            if (m < 0) {
                return cli_usage_error(CMD, "test: %s needs a value", argv[i]);
            }
            continue;
        }
        if ((m = cli_opt_value(argc, argv, &i, "--kind", NULL, &kind)) != 0) {
            if (m < 0) {
                return cli_usage_error(CMD, "test: --kind needs a value");
            }
            if (parse_kind(kind, &o->kind) != CLI_EXIT_OK) {
                return CLI_EXIT_USAGE;
            }
        } else if (strcmp(argv[i], "--no-verify") == 0) {
            o->no_verify = true;
        } else if (strcmp(argv[i], "--json") == 0) {
            o->json = true;
        } else if (strcmp(argv[i], "--redact") == 0) {
            o->redact = true;
        } else {
            return cli_usage_error(CMD, "test: unexpected argument '%s'", argv[i]);
        }
    }
    if (o->policy == NULL) {
        return cli_usage_error(CMD, "test: --policy FILE is required");
    }
    if ((o->claims == NULL) == (o->token == NULL)) {
        return cli_usage_error(CMD, "test: give the claims with exactly one of --claims FILE "
                                    "and --token JWT");
    }
    if (o->claims != NULL && (o->jwks != NULL || o->no_verify || o->audience != NULL)) {
        return cli_usage_error(CMD, "test: --jwks, --audience and --no-verify go with --token");
    }
    if (o->token != NULL && o->jwks == NULL && !o->no_verify) {
        return cli_usage_error(CMD, "test: --token needs --jwks FILE to verify its signature, or "
                                    "--no-verify to evaluate its claims unverified (debugging "
                                    "only)");
    }
    if (o->jwks != NULL && o->no_verify) {
        return cli_usage_error(CMD, "test: --jwks and --no-verify exclude each other");
    }
    int from_stdin = (strcmp(o->policy, "-") == 0) + (o->claims && strcmp(o->claims, "-") == 0) +
                     (o->token && strcmp(o->token, "-") == 0) +
                     (o->jwks && strcmp(o->jwks, "-") == 0);
    if (from_stdin > 1) {
        return cli_usage_error(CMD, "test: only one input can come from standard input ('-')");
    }
    if (o->audience != NULL && o->jwks == NULL) {
        return cli_usage_error(CMD, "test: --audience goes with --jwks");
    }
    return CLI_EXIT_OK;
}

static int
policy_test(int argc, char **argv)
{
    struct test_opts o = {0};
    struct clst_policy *policy = NULL;
    struct clst_policy_result *result = NULL;
    struct clst_err err = {0};
    struct clst_buf token, out;
    json_t *claims = NULL, *j = NULL;
    int ret;

    o.kind = CLST_POLICY_RELEASE;
    clst_buf_init(&token, 0);
    clst_buf_init(&out, 16u * 1024 * 1024);
    ret = parse_test_opts(argc, argv, &o);
    if (ret != CLI_EXIT_OK) {
        goto out;
    }
    ret = load_policy(o.policy, o.kind, &policy);
    if (ret != CLI_EXIT_OK) {
        goto out;
    }
    if (o.claims != NULL) {
        ret = load_claims(o.claims, &claims);
    } else {
        ret = load_token(o.token, &token);
        if (ret == CLI_EXIT_OK) {
            ret = o.no_verify
                      ? token_claims_unverified((const char *)token.data, token.size, &claims)
                      : token_claims_verified((const char *)token.data, token.size, o.jwks,
                                              o.audience, &claims);
        }
    }
    if (ret != CLI_EXIT_OK) {
        goto out;
    }
    if (o.no_verify) {
        fprintf(stderr, "cloister policy: WARNING: the token's signature was NOT verified "
                        "(--no-verify): its claims may be forged; this result says nothing about "
                        "a real release\n");
    }
    enum clst_status rc = clst_policy_evaluate(policy, claims, o.issuer, &result, &err);
    if (rc != CLST_OK && rc != CLST_E_DENIED) {
        ret = cli_fail(CMD, &err);
        goto out;
    }
    unsigned flags = (o.redact ? CLST_POLICY_REDACT : 0) | CLST_POLICY_WITH_TRACE;
    if (o.json) {
        if (clst_policy_result_to_json(result, flags, &j) != CLST_OK) {
            ret = cli_failf(CMD, "cannot render the result");
            goto out;
        }
        if (o.token != NULL &&
            json_object_set_new(j, "tokenVerified", json_boolean(!o.no_verify)) != 0) {
            ret = cli_failf(CMD, "cannot render the result");
            goto out;
        }
        char *s = json_dumps(j, JSON_INDENT(2));
        if (s == NULL) {
            ret = cli_failf(CMD, "cannot render the result");
            goto out;
        }
        fputs(s, stdout);
        fputc('\n', stdout);
        free(s);
    } else {
        if (o.token != NULL) {
            printf("token:    %s\n", o.no_verify ? "UNVERIFIED (--no-verify): claims may be forged"
                                                 : "signature verified with the --jwks keys");
        }
        if (clst_policy_result_to_text(result, flags, &out) != CLST_OK) {
            ret = cli_failf(CMD, "cannot render the result");
            goto out;
        }
        fwrite(out.data, 1, out.size, stdout);
    }
    if (fflush(stdout) != 0) {
        ret = cli_failf(CMD, "cannot write to standard output");
        goto out;
    }
    ret = clst_policy_result_decision(result) == CLST_POLICY_ALLOW ? CLI_EXIT_OK : CLI_EXIT_FAIL;
out:
    json_decref(j);
    json_decref(claims);
    clst_policy_result_free(result);
    clst_policy_free(policy);
    clst_buf_cleanup(&token);
    clst_buf_cleanup(&out);
    return ret;
}

/* check and hash share their options. */
static int
policy_check_or_hash(int argc, char **argv, bool hash_only)
{
    const char *path = NULL, *kind_s = NULL;
    enum clst_policy_kind kind = CLST_POLICY_RELEASE;
    struct clst_policy *policy = NULL;
    char hash[CLST_POLICY_HASH_STR_SIZE];
    int ret;

    for (int i = 2; i < argc; i++) {
        int m;
        if ((m = cli_opt_value(argc, argv, &i, "--policy", NULL, &path)) != 0 ||
            (m = cli_opt_value(argc, argv, &i, "--kind", NULL, &kind_s)) != 0) {
            if (m < 0) {
                return cli_usage_error(CMD, "%s: %s needs a value", argv[1], argv[i]);
            }
            continue;
        }
        return cli_usage_error(CMD, "%s: unexpected argument '%s'", argv[1], argv[i]);
    }
    if (path == NULL) {
        return cli_usage_error(CMD, "%s: --policy FILE is required", argv[1]);
    }
    if (kind_s != NULL && parse_kind(kind_s, &kind) != CLI_EXIT_OK) {
        return CLI_EXIT_USAGE;
    }
    ret = load_policy(path, kind, &policy);
    if (ret != CLI_EXIT_OK) {
        return ret;
    }
    if (clst_policy_hash_b64url(policy, hash) != CLST_OK) {
        ret = cli_failf(CMD, "cannot compute the policy hash");
        goto out;
    }
    if (hash_only) {
        printf("%s\n", hash);
    } else if (kind == CLST_POLICY_RELEASE) {
        printf("valid release policy: %zu authorit%s, %zu condition%s\nhash: %s\n",
               clst_policy_authority_count(policy),
               clst_policy_authority_count(policy) == 1 ? "y" : "ies",
               clst_policy_condition_count(policy),
               clst_policy_condition_count(policy) == 1 ? "" : "s", hash);
    } else {
        printf("valid appraisal policy: %zu condition%s\nhash: %s\n",
               clst_policy_condition_count(policy),
               clst_policy_condition_count(policy) == 1 ? "" : "s", hash);
    }
    ret = fflush(stdout) == 0 ? CLI_EXIT_OK : cli_failf(CMD, "cannot write to standard output");
out:
    clst_policy_free(policy);
    return ret;
}

int
cmd_policy(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
    }
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    if (strcmp(argv[1], "test") == 0) {
        return policy_test(argc, argv);
    }
    if (strcmp(argv[1], "check") == 0) {
        return policy_check_or_hash(argc, argv, false);
    }
    if (strcmp(argv[1], "hash") == 0) {
        return policy_check_or_hash(argc, argv, true);
    }
    return cli_usage_error(CMD, "unknown subcommand '%s' (test, check or hash)", argv[1]);
}
