/* cloister key: create, import, read, list, rotate, update, delete/recover/purge, back up and
 * restore keys in a Cloister vault, and use them (encrypt, decrypt, wrap, unwrap, sign, verify)
 * through the key vault REST API (the client library). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <cloister/client.h>
#include <cloister/crypto.h>
#include <cloister/jose.h>

#include "cli/cli.h"

#define CMD       "key"
#define INPUT_MAX (1024u * 1024u) /* data, documents, backups read from files or stdin */
#define TAGS_MAX  15
#define PATH_CAP  1024

static void
usage(void)
{
    printf(
        "usage: cloister key <action> [NAME] [options]\n"
        "\n"
        "Manages and uses keys in a Cloister vault (the key vault's /keys API). Key material\n"
        "never leaves the vault: only public parts are shown, and operations run in the vault.\n"
        "\n"
        "actions:\n"
        "  create NAME     a new key (or a new version of NAME): --kty RSA|EC|oct, --size BITS\n"
        "                  (RSA 2048/3072/4096, oct 128/192/256), --curve P-256|P-384|P-521,\n"
        "                  --ops LIST, --tag, --disabled, --nbf, --exp, --exportable with\n"
        "                  --release-policy FILE [--immutable]\n"
        "  import NAME     import a private key: --jwk FILE (JSON Web Key) or --pem FILE\n"
        "                  (PEM private key); the same metadata options as create\n"
        "  get NAME        show the key (public part); --version V, --pem to print the public\n"
        "                  key as PEM (RSA and EC)\n"
        "  list            the keys (latest versions); --deleted for the deleted ones\n"
        "  versions NAME   every version of a key\n"
        "  rotate NAME     a new version with new material of the same type and size\n"
        "  update NAME     change --enable/--disable, --nbf, --exp (TIME or 'none'), --ops,\n"
        "                  --tag (replaces all tags), --clear-tags, --release-policy FILE;\n"
        "                  --version V (default: the latest)\n"
        "  delete NAME     soft delete (recoverable until its scheduled purge date)\n"
        "  recover NAME    bring a deleted key back\n"
        "  purge NAME      remove a deleted key for good\n"
        "  backup NAME     --out FILE: every version, encrypted so that only this vault can\n"
        "                  restore it\n"
        "  restore         --in FILE: restore a backup (the name must be free)\n"
        "  encrypt NAME    --alg RSA-OAEP|RSA-OAEP-256|RSA1_5|A128GCM|A192GCM|A256GCM: encrypt\n"
        "                  --in FILE (or stdin, at most 256 KiB) into a JSON document\n"
        "                  {kid, alg, value, iv, tag, aad} (--out FILE or stdout); --aad TEXT\n"
        "                  or --aad-file FILE binds extra data (AES-GCM)\n"
        "  decrypt NAME    decrypt such a document (--in or stdin) to --out FILE (or stdout);\n"
        "                  the key version is taken from the document's kid\n"
        "  wrap NAME       --alg RSA-OAEP|RSA-OAEP-256|A128KW|A192KW|A256KW: wrap the key bytes\n"
        "                  of --in FILE into a JSON document\n"
        "  unwrap NAME     unwrap such a document to --out FILE (created 0600) or stdout\n"
        "  sign NAME       --alg RS256..PS512|ES256|ES384|ES512: sign --in FILE (hashed here\n"
        "                  with the algorithm's SHA-2) or --digest B64URL; prints the signature\n"
        "                  (base64url)\n"
        "  verify NAME     --alg ALG --signature B64URL (or --signature-file FILE) over --in\n"
        "                  FILE or --digest B64URL; prints 'valid' (exit 0) or 'invalid' (exit 1)\n"
        "  release NAME    secure key release, from inside a TEE: --token T (the attestation\n"
        "                  token, a file or '-'; the vault credential then comes from\n"
        "                  --token-file or CLOISTER_TOKEN), --tee-key KEY.pem (the TEE's RSA\n"
        "                  private key, whose public half is in the token's x-ms-runtime.keys),\n"
        "                  -o KEY.jwk (written 0600); --version V, --nonce N, --enc\n"
        "                  CKM_RSA_AES_KEY_WRAP|RSA_AES_KEY_WRAP_256|RSA_AES_KEY_WRAP_384. The\n"
        "                  vault's JWS is verified (x5c chain to --ca, then RS256) and key_hsm\n"
        "                  unwrapped here (docs/key-release.md)\n"
        "\n");
    printf(
        "options:\n"
        "  --url URL            the vault, https://HOST:PORT (env CLOISTER_URL)\n"
        "  --token TOKEN        bearer token (env CLOISTER_TOKEN); --token-file FILE reads it\n"
        "                       from a file instead\n"
        "  --ca FILE            CA certificate to pin, e.g. the server's DIR/ca.pem\n"
        "                       (env CLOISTER_CA; default: the system's trust store)\n"
        "  --json               print the server's JSON instead of text (for scripts)\n"
        "  --version V          a key version (32 hex characters; default: the latest)\n"
        "  --ops LIST           key_ops, comma-separated: encrypt, decrypt, sign, verify,\n"
        "                       wrapKey, unwrapKey, import, export\n"
        "  --tag KEY=VALUE      repeatable, at most 15\n"
        "  --nbf TIME, --exp TIME\n"
        "                       not-before / expiry, RFC 3339 (2030-01-01T00:00:00Z) or Unix\n"
        "                       seconds; the vault refuses operations before nbf and, from exp\n"
        "                       on, encrypt, wrap and sign\n"
        "\n"
        "examples:\n"
        "  cloister key create data-key --kty oct --size 256 --ca data/ca.pem\n"
        "  cloister key create signer --kty EC --curve P-384 --ops sign,verify\n"
        "  cloister key encrypt data-key --alg A256GCM --in secret.txt --out secret.json\n"
        "  cloister key decrypt data-key --in secret.json --out secret.txt\n"
        "  cloister key sign signer --alg ES384 --in release.tar > release.sig\n"
        "  cloister key verify signer --alg ES384 --in release.tar --signature-file release.sig\n"
        "  cloister encrypt --key vault:data-key data.csv   (the envelope, see "
        "docs/vault-keys.md)\n"
        "\n"
        "exit status: 0 success, 1 the request failed (the server's message is shown) or a\n"
        "signature is invalid, 2 usage.\n");
}

/* ---- options -------------------------------------------------------------------------------- */

struct opts {
    struct clst_client_config cfg;
    const char *token_file;
    bool json;
    const char *name;
    const char *version;
    const char *kty;
    const char *size;
    const char *curve;
    const char *ops;
    const char *tags[TAGS_MAX];
    size_t tag_count;
    bool clear_tags;
    int enabled; /* -1 unchanged, 0 disable, 1 enable */
    const char *nbf;
    const char *exp;
    bool exportable;
    const char *policy_file;
    bool immutable;
    bool deleted;
    const char *jwk_file;
    const char *pem_file;
    bool pem;
    const char *in;
    const char *out;
    const char *alg;
    const char *aad;
    const char *aad_file;
    const char *digest;
    const char *signature;
    const char *signature_file;
    /* release */
    const char *att_token;
    const char *tee_key;
    const char *nonce;
    const char *enc;
};

static int
parse(int argc, char **argv, struct opts *o)
{
    const struct cli_opt_slot valued[] = {
        {"--url", &o->cfg.url},
        {"--token-file", &o->token_file},
        {"--token", &o->cfg.token},
        {"--ca", &o->cfg.ca_file},
        {"--version", &o->version},
        {"--kty", &o->kty},
        {"--size", &o->size},
        {"--curve", &o->curve},
        {"--ops", &o->ops},
        {"--nbf", &o->nbf},
        {"--exp", &o->exp},
        {"--release-policy", &o->policy_file},
        {"--jwk", &o->jwk_file},
        {"--in", &o->in},
        {"--out", &o->out},
        {"--alg", &o->alg},
        {"--aad-file", &o->aad_file},
        {"--aad", &o->aad},
        {"--digest", &o->digest},
        {"--signature-file", &o->signature_file},
        {"--signature", &o->signature},
        {"--tee-key", &o->tee_key},
        {"--nonce", &o->nonce},
        {"--enc", &o->enc},
        {"-o", &o->out},
    };
    bool missing = false;
    o->enabled = -1;
    clst_client_config_init(&o->cfg);
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *v = NULL;
        bool matched;
        int rc =
            cli_opt_slots(CMD, argc, argv, &i, valued, sizeof valued / sizeof valued[0], &matched);
        if (rc != CLI_EXIT_OK) {
            return rc;
        }
        if (matched ||
            cli_vault_flag(a, true, &o->json, &o->enabled, &o->clear_tags, &o->deleted)) {
            continue;
        }
        /* --pem is both a flag (get) and an option with a file (import). */
        if (strcmp(a, "--pem") == 0 && i + 1 < argc && argv[1] != NULL &&
            strcmp(argv[1], "import") == 0) {
            o->pem_file = argv[++i];
        } else if (strncmp(a, "--pem=", 6) == 0) {
            o->pem_file = a + 6;
        } else if (strcmp(a, "--pem") == 0) {
            o->pem = true;
        } else if ((v = cli_opt_arg(argc, argv, &i, "--tag", &missing)) != NULL) {
            rc = cli_vault_tag_opt(CMD, v, o->tags, &o->tag_count, TAGS_MAX);
            if (rc != CLI_EXIT_OK) {
                return rc;
            }
        } else if (missing) {
            return cli_usage_error(CMD, "%s needs a value", a);
        } else if (strcmp(a, "--exportable") == 0) {
            o->exportable = true;
        } else if (strcmp(a, "--immutable") == 0) {
            o->immutable = true;
        } else if ((rc = cli_positional(CMD, a, &o->name)) != CLI_EXIT_OK) {
            return rc;
        }
    }
    return CLI_EXIT_OK;
}

/* Reads a whole file (or stdin when path is NULL or "-") into `out` (its max bounds it). */
static enum clst_status
read_all(const char *path, struct clst_buf *out, struct clst_err *err)
{
    return cli_read_all(path, true, NULL, out, err);
}

/* Writes bytes to `path` (created 0600, replaced) or stdout. */
static int
write_out(const char *path, const void *data, size_t size)
{
    if (path == NULL || strcmp(path, "-") == 0) {
        if (fwrite(data, 1, size, stdout) != size || fflush(stdout) != 0) {
            return cli_failf(CMD, "writing to stdout failed");
        }
        return CLI_EXIT_OK;
    }
    return cli_write_private_file(CMD, path, data, size);
}

/* Decoded size of a base64url member (0 when absent or malformed). */
static size_t
b64_size(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    struct clst_buf b;
    size_t n = 0;
    if (s == NULL) {
        return 0;
    }
    clst_buf_init(&b, 8192);
    if (clst_b64url_decode(s, strlen(s), &b) == CLST_OK) {
        n = b.size;
    }
    clst_buf_cleanup(&b);
    return n;
}

static void
print_bundle(const json_t *b)
{
    const json_t *key = json_object_get(b, "key");
    const json_t *attrs = json_object_get(b, "attributes");
    const char *kid = json_string_value(json_object_get(key, "kid"));
    const char *kty = json_string_value(json_object_get(key, "kty"));
    const char *crv = json_string_value(json_object_get(key, "crv"));
    printf("%-16s %s\n", "kid", kid != NULL ? kid : "?");
    if (kty != NULL && strncmp(kty, "RSA", 3) == 0) {
        printf("%-16s %s %zu bits\n", "type", kty, b64_size(key, "n") * 8);
    } else if (crv != NULL) {
        printf("%-16s %s %s\n", "type", kty != NULL ? kty : "?", crv);
    } else {
        printf("%-16s %s\n", "type", kty != NULL ? kty : "?");
    }
    printf("%-16s", "key_ops");
    size_t i;
    const json_t *op;
    json_array_foreach(json_object_get(key, "key_ops"), i, op)
    {
        printf("%s%s", i == 0 ? " " : ", ", json_string_value(op) ? json_string_value(op) : "?");
    }
    printf("\n");
    printf("%-16s %s\n", "enabled", json_is_true(json_object_get(attrs, "enabled")) ? "yes" : "no");
    if (json_is_true(json_object_get(attrs, "exportable"))) {
        printf("%-16s %s\n", "exportable", "yes");
    }
    cli_vault_print_time("created", attrs, "created");
    cli_vault_print_time("updated", attrs, "updated");
    cli_vault_print_time("not before", attrs, "nbf");
    cli_vault_print_time("expires", attrs, "exp");
    const char *tk;
    json_t *tv;
    json_object_foreach(json_object_get(b, "tags"), tk, tv)
    {
        printf("%-16s %s=%s\n", "tag", tk, json_string_value(tv) ? json_string_value(tv) : "");
    }
    const json_t *rp = json_object_get(b, "release_policy");
    if (rp != NULL) {
        printf("%-16s %s\n", "release policy",
               json_is_true(json_object_get(rp, "immutable")) ? "yes (immutable)" : "yes");
    }
    const char *rl = json_string_value(json_object_get(attrs, "recoveryLevel"));
    if (rl != NULL) {
        printf("%-16s %s\n", "recovery level", rl);
    }
    cli_vault_print_time("deleted", b, "deletedDate");
    cli_vault_print_time("purge after", b, "scheduledPurgeDate");
}

/* ---- request members from options ------------------------------------------------------------ */

/* --ops encrypt,decrypt → ["encrypt","decrypt"] (the vault checks the names). */
static int
ops_from_opts(const struct opts *o, json_t *body)
{
    if (o->ops == NULL) {
        return CLI_EXIT_OK;
    }
    json_t *arr = json_array();
    const char *p = o->ops;
    while (arr != NULL && *p != '\0') {
        const char *comma = strchr(p, ',');
        size_t n = comma != NULL ? (size_t)(comma - p) : strlen(p);
        if (n > 0 && json_array_append_new(arr, json_stringn(p, n)) != 0) {
            json_decref(arr);
            return cli_failf(CMD, "out of memory");
        }
        p += n + (comma != NULL ? 1 : 0);
    }
    if (arr == NULL) {
        return cli_failf(CMD, "out of memory");
    }
    json_object_set_new(body, "key_ops", arr);
    return CLI_EXIT_OK;
}

/* --release-policy FILE [--immutable] → {"data": base64url(file), "immutable"?}. */
static int
policy_from_opts(const struct opts *o, json_t *body)
{
    struct clst_err err = {0};
    struct clst_buf text, b64;
    int rc = CLI_EXIT_FAIL;
    if (o->policy_file == NULL) {
        if (o->immutable) {
            return cli_usage_error(CMD, "--immutable goes with --release-policy FILE");
        }
        return CLI_EXIT_OK;
    }
    clst_buf_init(&text, 64 * 1024);
    clst_buf_init(&b64, 128 * 1024);
    if (read_all(o->policy_file, &text, &err) != CLST_OK) {
        rc = cli_fail(CMD, &err);
        goto out;
    }
    if (clst_b64url_encode(text.data, text.size, &b64) != CLST_OK) {
        rc = cli_failf(CMD, "the release policy is too large");
        goto out;
    }
    json_t *rp = json_object();
    if (rp == NULL) {
        rc = cli_failf(CMD, "out of memory");
        goto out;
    }
    json_object_set_new(rp, "data", json_stringn((const char *)b64.data, b64.size));
    if (o->immutable) {
        json_object_set_new(rp, "immutable", json_true());
    }
    json_object_set_new(body, "release_policy", rp);
    rc = CLI_EXIT_OK;
out:
    clst_buf_cleanup(&text);
    clst_buf_cleanup(&b64);
    return rc;
}

/* ---- management actions ---------------------------------------------------------------------- */

/* Sends `body` with `method` to /keys[/NAME][/VERSION][suffix] and prints the key bundle the
 * vault answers. */
static int
send_bundle(struct clst_client *c, const struct opts *o, const char *method, const char *name,
            const char *version, const char *suffix, const json_t *body, const char *done)
{
    json_t *resp = NULL;
    int rc = cli_vault_call(CMD, c, method, name, version, suffix, body, &resp);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    if (o->json) {
        cli_print_json(resp);
    } else {
        if (done != NULL) {
            printf("key %s: %s version %s\n", o->name, done,
                   cli_json_last_segment(json_object_get(resp, "key"), "kid"));
        }
        print_bundle(resp);
    }
    json_decref(resp);
    return CLI_EXIT_OK;
}

/* The JWK of a PEM private key (for import). */
static int
jwk_from_pem(const char *path, json_t **out)
{
    struct clst_err err = {0};
    EVP_PKEY *key = NULL;
    if (clst_pkey_load_pem_file(path, &key, &err) != CLST_OK) {
        return cli_fail(CMD, &err);
    }
    if (!clst_pkey_has_private(key)) {
        EVP_PKEY_free(key);
        return cli_failf(CMD, "'%s' holds no private key; import needs the private key", path);
    }
    enum clst_status st = clst_pkey_to_jwk(key, true, out);
    EVP_PKEY_free(key);
    if (st != CLST_OK) {
        return cli_failf(CMD, "'%s': the key type is not supported (RSA or EC P-256/384/521)",
                         path);
    }
    return CLI_EXIT_OK;
}

static int
do_create_or_import(struct clst_client *c, const struct opts *o, bool import)
{
    struct clst_err err = {0};
    struct clst_buf jwk_text;
    json_t *body = json_object();
    json_t *attrs = json_object();
    json_t *jwk = NULL;
    int rc = CLI_EXIT_FAIL;

    clst_buf_init_secret(&jwk_text, 64 * 1024);
    if (body == NULL || attrs == NULL) {
        rc = cli_failf(CMD, "out of memory");
        goto out;
    }
    if (import) {
        if ((o->jwk_file != NULL) == (o->pem_file != NULL)) {
            rc = cli_usage_error(CMD, "import needs exactly one of --jwk FILE or --pem FILE");
            goto out;
        }
        if (o->kty != NULL || o->size != NULL || o->curve != NULL) {
            rc = cli_usage_error(CMD, "import takes the key type and size from the key itself");
            goto out;
        }
        if (o->pem_file != NULL) {
            if ((rc = jwk_from_pem(o->pem_file, &jwk)) != CLI_EXIT_OK) {
                goto out;
            }
        } else {
            if (read_all(o->jwk_file, &jwk_text, &err) != CLST_OK) {
                rc = cli_fail(CMD, &err);
                goto out;
            }
            json_error_t jerr;
            jwk = json_loadb((const char *)jwk_text.data, jwk_text.size, JSON_REJECT_DUPLICATES,
                             &jerr);
            if (!json_is_object(jwk)) {
                rc = cli_failf(CMD, "'%s' is not a JSON Web Key (a JSON object): %s", o->jwk_file,
                               jerr.text);
                goto out;
            }
        }
        json_object_set(body, "key", jwk);
    } else {
        if (o->kty == NULL) {
            rc = cli_usage_error(CMD, "create needs --kty RSA, EC or oct");
            goto out;
        }
        json_object_set_new(body, "kty", json_string(o->kty));
        if (o->size != NULL) {
            uint64_t bits = 0;
            if (clst_parse_u64(o->size, 1, 65536, &bits, NULL) != CLST_OK) {
                rc = cli_usage_error(CMD, "--size takes a number of bits, e.g. 2048 or 256");
                goto out;
            }
            json_object_set_new(body, "key_size", json_integer((json_int_t)bits));
        }
        if (o->curve != NULL) {
            json_object_set_new(body, "crv", json_string(o->curve));
        }
    }
    if (o->exportable) {
        json_object_set_new(attrs, "exportable", json_true());
    }
    if ((rc = cli_vault_attrs(CMD, o->enabled, o->nbf, o->exp, false, attrs)) != CLI_EXIT_OK ||
        (rc = cli_vault_tags(CMD, o->tags, o->tag_count, o->clear_tags, body)) != CLI_EXIT_OK ||
        (rc = ops_from_opts(o, body)) != CLI_EXIT_OK ||
        (rc = policy_from_opts(o, body)) != CLI_EXIT_OK) {
        goto out;
    }
    json_object_set(body, "attributes", attrs);
    rc = send_bundle(c, o, import ? "PUT" : "POST", o->name, NULL, import ? NULL : "/create", body,
                     import ? "imported as" : "created");
out:
    json_decref(jwk);
    json_decref(attrs);
    json_decref(body);
    clst_buf_cleanup(&jwk_text);
    return rc;
}

static int
do_get(struct clst_client *c, const struct opts *o)
{
    struct clst_err err = {0};
    struct clst_buf pem;
    json_t *resp = NULL;
    EVP_PKEY *key = NULL;
    clst_buf_init(&pem, 16 * 1024);
    int rc = cli_vault_call(CMD, c, "GET", o->name, o->version != NULL ? o->version : "", NULL,
                            NULL, &resp);
    if (rc != CLI_EXIT_OK) {
        goto out;
    }
    if (o->pem) {
        json_t *jwk = json_object_get(resp, "key");
        if (clst_pkey_from_jwk(jwk, &key, &err) != CLST_OK ||
            clst_pkey_to_pem(key, false, &pem) != CLST_OK) {
            rc = cli_failf(CMD, "the key has no public key to show as PEM (oct keys have none)");
            goto out;
        }
        rc = write_out(o->out, pem.data, pem.size);
        goto out;
    }
    if (o->json) {
        cli_print_json(resp);
    } else {
        print_bundle(resp);
    }
    rc = CLI_EXIT_OK;
out:
    EVP_PKEY_free(key);
    json_decref(resp);
    clst_buf_cleanup(&pem);
    return rc;
}

static int
do_update(struct clst_client *c, const struct opts *o)
{
    json_t *body = json_object();
    json_t *attrs = json_object();
    int rc = CLI_EXIT_FAIL;
    if (body == NULL || attrs == NULL) {
        rc = cli_failf(CMD, "out of memory");
        goto out;
    }
    if ((rc = cli_vault_attrs(CMD, o->enabled, o->nbf, o->exp, true, attrs)) != CLI_EXIT_OK ||
        (rc = cli_vault_tags(CMD, o->tags, o->tag_count, o->clear_tags, body)) != CLI_EXIT_OK ||
        (rc = ops_from_opts(o, body)) != CLI_EXIT_OK ||
        (rc = policy_from_opts(o, body)) != CLI_EXIT_OK) {
        goto out;
    }
    rc = CLI_EXIT_FAIL;
    if (json_object_size(attrs) > 0) {
        json_object_set(body, "attributes", attrs);
    }
    if (json_object_size(body) == 0) {
        rc = cli_usage_error(CMD, "nothing to update: give --enable, --disable, --nbf, --exp, "
                                  "--ops, --tag, --clear-tags or --release-policy");
        goto out;
    }
    rc =
        send_bundle(c, o, "PATCH", o->name, o->version != NULL ? o->version : "", NULL, body, NULL);
out:
    json_decref(attrs);
    json_decref(body);
    return rc;
}

static int
do_backup(struct clst_client *c, const struct opts *o)
{
    struct clst_buf blob;
    json_t *resp = NULL;
    int rc = CLI_EXIT_FAIL;
    clst_buf_init(&blob, INPUT_MAX);
    if (o->out == NULL && isatty(STDOUT_FILENO)) {
        return cli_usage_error(CMD, "backup writes a binary blob: give --out FILE");
    }
    if ((rc = cli_vault_call(CMD, c, "POST", o->name, NULL, "/backup", NULL, &resp)) !=
        CLI_EXIT_OK) {
        goto out;
    }
    const char *v = json_string_value(json_object_get(resp, "value"));
    if (v == NULL || clst_b64url_decode(v, strlen(v), &blob) != CLST_OK) {
        rc = cli_failf(CMD, "the server's backup answer has no usable value");
        goto out;
    }
    if ((rc = write_out(o->out, blob.data, blob.size)) == CLI_EXIT_OK && o->out != NULL) {
        fprintf(stderr, "key %s backed up to %s (%zu bytes; only this vault can restore it)\n",
                o->name, o->out, blob.size);
    }
out:
    json_decref(resp);
    clst_buf_cleanup(&blob);
    return rc;
}

static int
do_restore(struct clst_client *c, const struct opts *o)
{
    struct clst_err err = {0};
    struct clst_buf blob, b64;
    json_t *body = NULL;
    int rc = CLI_EXIT_FAIL;
    clst_buf_init(&blob, INPUT_MAX);
    clst_buf_init(&b64, 2 * INPUT_MAX);
    if (o->in == NULL) {
        return cli_usage_error(CMD, "restore needs --in FILE (a backup made by 'key backup')");
    }
    if (read_all(o->in, &blob, &err) != CLST_OK) {
        rc = cli_fail(CMD, &err);
        goto out;
    }
    if (clst_b64url_encode(blob.data, blob.size, &b64) != CLST_OK) {
        rc = cli_failf(CMD, "the backup is too large");
        goto out;
    }
    body = json_object();
    if (body == NULL ||
        json_object_set_new(body, "value", json_stringn((const char *)b64.data, b64.size)) != 0) {
        rc = cli_failf(CMD, "out of memory");
        goto out;
    }
    rc = send_bundle(c, o, "POST", NULL, NULL, "/restore", body, NULL);
out:
    json_decref(body);
    clst_buf_cleanup(&blob);
    clst_buf_cleanup(&b64);
    return rc;
}

/* ---- cryptographic operations ---------------------------------------------------------------- */

/* POST /keys/NAME/VERSION/<op>; version "" = latest. */
static enum clst_status
op_call(struct clst_client *c, const char *name, const char *version, const char *op,
        const json_t *body, json_t **out, struct clst_err *err)
{
    struct clst_buf path;
    char suffix[16];
    enum clst_status st;
    clst_buf_init(&path, PATH_CAP);
    snprintf(suffix, sizeof suffix, "/%s", op);
    st = cli_vault_path("/keys", name, version != NULL ? version : "", suffix, &path);
    if (st != CLST_OK) {
        clst_buf_cleanup(&path);
        return clst_err_set(err, st, "the name is too long");
    }
    st = clst_client_call(c, "POST", (const char *)path.data, NULL, body, out, err);
    clst_buf_cleanup(&path);
    return st;
}

/* encrypt / wrap: input bytes → {kid, alg, value, iv?, tag?, aad?} document. */
static int
do_forward(struct clst_client *c, const struct opts *o, bool wrap)
{
    struct clst_err err = {0};
    struct clst_buf data, aad;
    json_t *body = json_object();
    json_t *resp = NULL, *doc = NULL;
    int rc = CLI_EXIT_FAIL;
    clst_buf_init_secret(&data, wrap ? 8192 : 256 * 1024);
    clst_buf_init(&aad, 64 * 1024);
    if (o->alg == NULL) {
        rc = cli_usage_error(CMD, "%s needs --alg", wrap ? "wrap" : "encrypt");
        goto out;
    }
    if (wrap && (o->aad != NULL || o->aad_file != NULL)) {
        rc = cli_usage_error(CMD, "wrap takes no --aad");
        goto out;
    }
    if (read_all(o->in, &data, &err) != CLST_OK) {
        rc = cli_fail(CMD, &err);
        goto out;
    }
    if (o->aad != NULL && o->aad_file != NULL) {
        rc = cli_usage_error(CMD, "give --aad or --aad-file, not both");
        goto out;
    }
    if (o->aad != NULL && clst_buf_append_str(&aad, o->aad) != CLST_OK) {
        rc = cli_failf(CMD, "--aad is too long");
        goto out;
    }
    if (o->aad_file != NULL && read_all(o->aad_file, &aad, &err) != CLST_OK) {
        rc = cli_fail(CMD, &err);
        goto out;
    }
    if (body == NULL || json_object_set_new(body, "alg", json_string(o->alg)) != 0 ||
        json_object_set_new(body, "value", clst_json_b64url(data.data, data.size)) != 0 ||
        ((o->aad != NULL || o->aad_file != NULL) &&
         json_object_set_new(body, "aad", clst_json_b64url(aad.data, aad.size)) != 0)) {
        rc = cli_failf(CMD, "out of memory");
        goto out;
    }
    if (op_call(c, o->name, o->version, wrap ? "wrapkey" : "encrypt", body, &resp, &err) !=
        CLST_OK) {
        rc = cli_fail(CMD, &err);
        goto out;
    }
    /* The document: what decrypt/unwrap needs, plus the algorithm. */
    doc = json_object();
    const char *members[] = {"kid", "value", "iv", "tag", "aad"};
    if (doc == NULL || json_object_set_new(doc, "alg", json_string(o->alg)) != 0) {
        rc = cli_failf(CMD, "out of memory");
        goto out;
    }
    for (size_t k = 0; k < sizeof members / sizeof members[0]; k++) {
        json_t *v = json_object_get(resp, members[k]);
        if (v != NULL) {
            json_object_set(doc, members[k], v);
        }
    }
    char *text = json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS);
    if (text == NULL) {
        rc = cli_failf(CMD, "out of memory");
        goto out;
    }
    size_t n = strlen(text);
    text[n] = '\n'; /* replace the NUL; written without it */
    rc = write_out(o->out, text, n + 1);
    text[n] = '\0';
    free(text);
out:
    json_decref(doc);
    json_decref(resp);
    json_decref(body);
    clst_buf_cleanup(&data);
    clst_buf_cleanup(&aad);
    return rc;
}

/* The version a document's kid names, when it names this key (case-insensitively). */
static const char *
doc_version(const json_t *doc, const char *name, char *buf, size_t cap)
{
    const char *kid = json_string_value(json_object_get(doc, "kid"));
    const char *keys = kid != NULL ? strstr(kid, "/keys/") : NULL;
    if (keys == NULL) {
        return NULL;
    }
    const char *n = keys + 6;
    const char *slash = strchr(n, '/');
    if (slash == NULL || (size_t)(slash - n) != strlen(name) ||
        strncasecmp(n, name, strlen(name)) != 0 || strlen(slash + 1) + 1 > cap) {
        return NULL;
    }
    memcpy(buf, slash + 1, strlen(slash + 1) + 1);
    return buf;
}

/* decrypt / unwrap: a document (from encrypt/wrap) → the bytes. */
static int
do_backward(struct clst_client *c, const struct opts *o, bool unwrap)
{
    struct clst_err err = {0};
    struct clst_buf text, value;
    json_t *doc = NULL, *body = NULL, *resp = NULL;
    char vbuf[64];
    int rc = CLI_EXIT_FAIL;
    clst_buf_init(&text, INPUT_MAX);
    clst_buf_init_secret(&value, INPUT_MAX);
    if (o->out == NULL && isatty(STDOUT_FILENO) && unwrap) {
        rc = cli_usage_error(CMD, "unwrap writes key bytes: give --out FILE (created 0600)");
        goto out;
    }
    if (read_all(o->in, &text, &err) != CLST_OK) {
        rc = cli_fail(CMD, &err);
        goto out;
    }
    json_error_t jerr;
    doc = json_loadb((const char *)text.data, text.size, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(doc) || !json_is_string(json_object_get(doc, "value"))) {
        rc = cli_failf(CMD,
                       "the input is not a document made by 'cloister key %s' (JSON with "
                       "\"value\")",
                       unwrap ? "wrap" : "encrypt");
        goto out;
    }
    const char *alg = o->alg != NULL ? o->alg : json_string_value(json_object_get(doc, "alg"));
    if (alg == NULL) {
        rc = cli_usage_error(CMD, "the document names no algorithm: give --alg");
        goto out;
    }
    const char *version =
        o->version != NULL ? o->version : doc_version(doc, o->name, vbuf, sizeof vbuf);
    body = json_object();
    if (body == NULL || json_object_set_new(body, "alg", json_string(alg)) != 0) {
        rc = cli_failf(CMD, "out of memory");
        goto out;
    }
    const char *members[] = {"value", "iv", "tag", "aad"};
    for (size_t k = 0; k < sizeof members / sizeof members[0]; k++) {
        json_t *v = json_object_get(doc, members[k]);
        if (v != NULL) {
            json_object_set(body, members[k], v);
        }
    }
    if (op_call(c, o->name, version, unwrap ? "unwrapkey" : "decrypt", body, &resp, &err) !=
        CLST_OK) {
        rc = cli_fail(CMD, &err);
        goto out;
    }
    const char *v = json_string_value(json_object_get(resp, "value"));
    if (v == NULL || clst_b64url_decode(v, strlen(v), &value) != CLST_OK) {
        rc = cli_failf(CMD, "the server's answer has no usable value");
        goto out;
    }
    rc = write_out(o->out, value.data, value.size);
out:
    json_decref(resp);
    json_decref(body);
    json_decref(doc);
    clst_buf_cleanup(&text);
    clst_buf_cleanup(&value);
    return rc;
}

/* The hash a signature algorithm uses (RS/PS/ES + 256/384/512), or 0. */
static enum clst_hash
alg_hash(const char *alg)
{
    size_t n = strlen(alg);
    if (n != 5 ||
        !(strncmp(alg, "RS", 2) == 0 || strncmp(alg, "PS", 2) == 0 || strncmp(alg, "ES", 2) == 0)) {
        return (enum clst_hash)0;
    }
    if (strcmp(alg + 2, "256") == 0) {
        return CLST_HASH_SHA256;
    }
    if (strcmp(alg + 2, "384") == 0) {
        return CLST_HASH_SHA384;
    }
    if (strcmp(alg + 2, "512") == 0) {
        return CLST_HASH_SHA512;
    }
    return (enum clst_hash)0;
}

/* The digest to sign or verify: --digest, or the hash of --in (streamed; any size). */
static int
digest_from_opts(const struct opts *o, json_t **out)
{
    struct clst_err err = {0};
    enum clst_hash h = alg_hash(o->alg);
    if (o->digest != NULL) {
        if (o->in != NULL) {
            return cli_usage_error(CMD, "give --in FILE or --digest, not both");
        }
        *out = json_string(o->digest);
        return *out != NULL ? CLI_EXIT_OK : cli_usage_error(CMD, "--digest must be base64url");
    }
    if (h == 0) {
        return cli_usage_error(CMD, "--alg must be one of RS256, RS384, RS512, PS256, PS384, "
                                    "PS512, ES256, ES384, ES512");
    }
    bool use_stdin = o->in == NULL || strcmp(o->in, "-") == 0;
    FILE *f = use_stdin ? stdin : fopen(o->in, "rb");
    if (f == NULL) {
        return cli_failf(CMD, "cannot open '%s': %s", o->in, strerror(errno));
    }
    struct clst_hash_ctx ctx;
    uint8_t chunk[16384], digest[CLST_HASH_MAX_SIZE];
    enum clst_status st = clst_hash_init(&ctx, h);
    while (st == CLST_OK) {
        size_t n = fread(chunk, 1, sizeof chunk, f);
        if (n > 0) {
            st = clst_hash_update(&ctx, chunk, n);
        }
        if (n < sizeof chunk) {
            if (ferror(f)) {
                st = clst_err_set(&err, CLST_E_IO, "reading the input failed");
            }
            break;
        }
    }
    if (st == CLST_OK) {
        st = clst_hash_final(&ctx, digest);
    } else {
        clst_hash_cleanup(&ctx);
    }
    if (!use_stdin) {
        fclose(f);
    }
    if (st != CLST_OK) {
        return cli_failf(CMD, "hashing the input failed");
    }
    *out = clst_json_b64url(digest, clst_hash_size(h));
    return *out != NULL ? CLI_EXIT_OK : cli_failf(CMD, "out of memory");
}

static int
do_sign(struct clst_client *c, const struct opts *o)
{
    struct clst_err err = {0};
    json_t *digest = NULL, *body = NULL, *resp = NULL;
    int rc;
    if (o->alg == NULL) {
        return cli_usage_error(CMD, "sign needs --alg");
    }
    if ((rc = digest_from_opts(o, &digest)) != CLI_EXIT_OK) {
        return rc;
    }
    rc = CLI_EXIT_FAIL;
    body = json_pack("{s:s, s:o}", "alg", o->alg, "value", digest);
    if (body == NULL) {
        rc = cli_failf(CMD, "out of memory");
        goto out;
    }
    if (op_call(c, o->name, o->version, "sign", body, &resp, &err) != CLST_OK) {
        rc = cli_fail(CMD, &err);
        goto out;
    }
    const char *sig = json_string_value(json_object_get(resp, "value"));
    if (sig == NULL) {
        rc = cli_failf(CMD, "the server's answer has no signature");
        goto out;
    }
    if (o->json) {
        json_object_set_new(resp, "alg", json_string(o->alg));
        cli_print_json(resp);
        rc = CLI_EXIT_OK;
    } else {
        size_t n = strlen(sig);
        char *line = malloc(n + 2);
        if (line == NULL) {
            rc = cli_failf(CMD, "out of memory");
            goto out;
        }
        memcpy(line, sig, n);
        line[n] = '\n';
        rc = write_out(o->out, line, n + 1);
        free(line);
    }
out:
    json_decref(resp);
    json_decref(body);
    return rc;
}

static int
do_verify(struct clst_client *c, const struct opts *o)
{
    struct clst_err err = {0};
    struct clst_buf sigbuf;
    json_t *digest = NULL, *body = NULL, *resp = NULL;
    int rc;
    if (o->alg == NULL) {
        return cli_usage_error(CMD, "verify needs --alg");
    }
    if ((o->signature != NULL) == (o->signature_file != NULL)) {
        return cli_usage_error(CMD, "verify needs exactly one of --signature or --signature-file");
    }
    clst_buf_init(&sigbuf, 8192);
    if (o->signature_file != NULL) {
        if (read_all(o->signature_file, &sigbuf, &err) != CLST_OK) {
            clst_buf_cleanup(&sigbuf);
            return cli_fail(CMD, &err);
        }
        while (sigbuf.size > 0 &&
               (sigbuf.data[sigbuf.size - 1] == '\n' || sigbuf.data[sigbuf.size - 1] == '\r')) {
            sigbuf.size--;
        }
    } else if (clst_buf_append_str(&sigbuf, o->signature) != CLST_OK) {
        clst_buf_cleanup(&sigbuf);
        return cli_usage_error(CMD, "--signature is too long");
    }
    if ((rc = digest_from_opts(o, &digest)) != CLI_EXIT_OK) {
        clst_buf_cleanup(&sigbuf);
        return rc;
    }
    rc = CLI_EXIT_FAIL;
    body = json_pack("{s:s, s:o, s:s%}", "alg", o->alg, "digest", digest, "value",
                     sigbuf.size > 0 ? (const char *)sigbuf.data : "", sigbuf.size);
    if (body == NULL) {
        rc = cli_usage_error(CMD, "the signature must be base64url text");
        goto out;
    }
    if (op_call(c, o->name, o->version, "verify", body, &resp, &err) != CLST_OK) {
        rc = cli_fail(CMD, &err);
        goto out;
    }
    bool valid = json_is_true(json_object_get(resp, "value"));
    if (o->json) {
        cli_print_json(resp);
    } else {
        printf("%s\n", valid ? "valid" : "invalid");
    }
    rc = valid ? CLI_EXIT_OK : CLI_EXIT_FAIL;
out:
    json_decref(resp);
    json_decref(body);
    clst_buf_cleanup(&sigbuf);
    return rc;
}

/* ---- dispatch -------------------------------------------------------------------------------- */

/* ---- secure key release (the TEE side) ------------------------------------------------------ */

/* The attestation token: a file, '-' (stdin), or the token text itself. */
static enum clst_status
read_att_token(const char *arg, struct clst_buf *out, struct clst_err *err)
{
    enum clst_status st;
    if (strcmp(arg, "-") == 0 || access(arg, R_OK) == 0) {
        st = read_all(arg, out, err);
    } else if (strchr(arg, '.') != NULL && strchr(arg, '/') == NULL) {
        st = clst_buf_append_str(out, arg);
        if (st != CLST_OK) {
            clst_err_set(err, st, "the token is too long");
        }
    } else {
        return clst_err_set(err, CLST_E_IO, "cannot read the attestation token '%s': %s", arg,
                            strerror(errno));
    }
    while (st == CLST_OK && out->size > 0 &&
           (out->data[out->size - 1] == '\n' || out->data[out->size - 1] == '\r' ||
            out->data[out->size - 1] == ' ')) {
        out->size--;
    }
    if (st == CLST_OK && (clst_buf_terminate(out) != CLST_OK || out->size == 0)) {
        st = clst_err_set(err, CLST_E_INVAL, "the attestation token is empty");
    }
    return st;
}

/* The JWS header's x5c: leaf first, chained to the pinned CA at now. out_leaf_key: a new
 * reference to the leaf's public key. */
static enum clst_status
release_signer(const json_t *hdr, const char *ca_file, EVP_PKEY **out_leaf_key,
               struct clst_err *err)
{
    const json_t *x5c = json_object_get(hdr, "x5c");
    STACK_OF(X509) *chain = sk_X509_new_null(), *roots = NULL;
    struct clst_buf der, pem;
    enum clst_status st = CLST_E_VERIFY;

    clst_buf_init(&der, 64 * 1024);
    clst_buf_init(&pem, 1024 * 1024);
    if (chain == NULL) {
        st = clst_err_set(err, CLST_E_NOMEM, "out of memory");
        goto out;
    }
    if (!json_is_array(x5c) || json_array_size(x5c) == 0 || json_array_size(x5c) > 10) {
        clst_err_set(err, CLST_E_VERIFY, "the release JWS carries no x5c certificate chain");
        goto out;
    }
    for (size_t i = 0; i < json_array_size(x5c); i++) {
        const char *b64 = json_string_value(json_array_get(x5c, i));
        X509 *cert = NULL;
        clst_buf_reset(&der);
        if (b64 == NULL || clst_b64_decode(b64, strlen(b64), &der) != CLST_OK ||
            clst_x509_from_der(der.data, der.size, &cert, NULL) != CLST_OK) {
            clst_err_set(err, CLST_E_VERIFY, "x5c[%zu] of the release JWS is not a certificate", i);
            goto out;
        }
        if (sk_X509_push(chain, cert) <= 0) {
            X509_free(cert);
            st = clst_err_set(err, CLST_E_NOMEM, "out of memory");
            goto out;
        }
    }
    if (ca_file == NULL) {
        st = clst_err_set(err, CLST_E_INVAL,
                          "give --ca (the vault's CA, DIR/ca.pem): the release is verified "
                          "against it");
        goto out;
    }
    if ((st = read_all(ca_file, &pem, err)) != CLST_OK ||
        (st = clst_x509_stack_from_pem(pem.data, pem.size, &roots, err)) != CLST_OK) {
        goto out;
    }
    X509 *leaf = sk_X509_shift(chain);
    st = clst_x509_verify_chain(leaf, chain, roots, NULL, clst_clock_now(clst_clock_system()), NULL,
                                err);
    if (st == CLST_OK) {
        EVP_PKEY *k = X509_get0_pubkey(leaf);
        if (k == NULL || clst_pkey_kind(k) != CLST_KEY_RSA || EVP_PKEY_up_ref(k) != 1) {
            st = clst_err_set(err, CLST_E_VERIFY,
                              "the release-signing certificate holds no RSA "
                              "key");
        } else {
            *out_leaf_key = k;
        }
    } else {
        clst_err_prefix(err, "the release-signing certificate does not chain to %s", ca_file);
        st = CLST_E_VERIFY;
    }
    X509_free(leaf);
out:
    if (chain != NULL) {
        sk_X509_pop_free(chain, X509_free);
    }
    if (roots != NULL) {
        sk_X509_pop_free(roots, X509_free);
    }
    clst_buf_cleanup(&der);
    clst_buf_cleanup(&pem);
    return st;
}

/* The released key as a private JWK (kid, key_ops copied from the payload), checked against the
 * public members the payload states. */
static enum clst_status
released_jwk(const json_t *key, const uint8_t *material, size_t size, json_t **out,
             struct clst_err *err)
{
    const char *kty = json_string_value(json_object_get(key, "kty"));
    json_t *j = NULL;
    enum clst_status st;
    if (kty == NULL) {
        return clst_err_set(err, CLST_E_MALFORMED, "the released key has no kty");
    }
    if (strncmp(kty, "oct", 3) == 0) {
        struct clst_buf b;
        clst_buf_init_secret(&b, 2 * size + 8);
        st = clst_b64url_encode(material, size, &b);
        if (st == CLST_OK && clst_buf_terminate(&b) == CLST_OK) {
            j = json_pack("{s:s,s:s}", "kty", "oct", "k", (const char *)b.data);
        }
        clst_buf_cleanup(&b);
        if (j == NULL) {
            return clst_err_set(err, CLST_E_NOMEM, "out of memory");
        }
    } else {
        EVP_PKEY *priv = NULL, *stated = NULL;
        st = clst_pkey_from_der(material, size, &priv, err);
        if (st == CLST_OK) {
            st = clst_pkey_from_jwk(key, &stated, err);
        }
        if (st == CLST_OK && !clst_pkey_public_equal(priv, stated)) {
            st = clst_err_set(err, CLST_E_VERIFY,
                              "the unwrapped key does not match the public key the release "
                              "states");
        }
        if (st == CLST_OK && clst_pkey_to_jwk(priv, true, &j) != CLST_OK) {
            st = clst_err_set(err, CLST_E_NOMEM, "cannot encode the released key");
        }
        EVP_PKEY_free(priv);
        EVP_PKEY_free(stated);
        if (st != CLST_OK) {
            return st;
        }
    }
    json_t *kid = json_object_get(key, "kid");
    json_t *ops = json_object_get(key, "key_ops");
    if ((kid != NULL && json_object_set(j, "kid", kid) != 0) ||
        (ops != NULL && json_object_set(j, "key_ops", ops) != 0)) {
        json_decref(j);
        return clst_err_set(err, CLST_E_NOMEM, "out of memory");
    }
    *out = j;
    return CLST_OK;
}

static int
do_release(struct clst_client *c, const struct opts *o)
{
    struct clst_err err = {0};
    struct clst_buf token, path, payload, ct, material;
    json_t *body = NULL, *resp = NULL, *hdr = NULL, *p = NULL, *kh = NULL, *jwk = NULL;
    EVP_PKEY *tee = NULL, *signer = NULL;
    struct clst_jwk *sjwk = NULL;
    char *text = NULL;
    int rc = CLI_EXIT_FAIL;

    clst_buf_init(&token, CLST_JWS_MAX_SIZE);
    clst_buf_init(&path, PATH_CAP);
    clst_buf_init(&payload, CLST_JWS_MAX_SIZE);
    clst_buf_init(&ct, CLST_JWS_MAX_SIZE);
    clst_buf_init_secret(&material, CLST_JWS_MAX_SIZE);
    if (read_att_token(o->att_token, &token, &err) != CLST_OK ||
        clst_pkey_load_pem_file(o->tee_key, &tee, &err) != CLST_OK) {
        rc = cli_fail(CMD, &err);
        goto out;
    }
    if (clst_pkey_kind(tee) != CLST_KEY_RSA || !clst_pkey_has_private(tee)) {
        rc = cli_failf(CMD, "--tee-key must be the TEE's RSA private key (PEM)");
        goto out;
    }
    body = json_pack("{s:s}", "target", (const char *)token.data);
    if (body == NULL ||
        (o->nonce != NULL && json_object_set_new(body, "nonce", json_string(o->nonce)) != 0) ||
        (o->enc != NULL && json_object_set_new(body, "enc", json_string(o->enc)) != 0) ||
        cli_vault_path("/keys", o->name, o->version, "/release", &path) != CLST_OK) {
        rc = cli_failf(CMD, "out of memory or the name is too long");
        goto out;
    }
    if (clst_client_call(c, "POST", (const char *)path.data, NULL, body, &resp, &err) != CLST_OK) {
        rc = cli_fail(CMD, &err);
        goto out;
    }
    const char *jws = json_string_value(json_object_get(resp, "value"));
    if (jws == NULL) {
        rc = cli_failf(CMD, "the vault's answer has no release JWS ('value')");
        goto out;
    }
    /* Verify: the x5c chain to the pinned CA, then the RS256 signature with its leaf. */
    if (clst_jws_header_unverified(jws, strlen(jws), &hdr, &err) != CLST_OK ||
        release_signer(hdr, o->cfg.ca_file, &signer, &err) != CLST_OK ||
        clst_jwk_from_pkey(signer, NULL, CLST_JWS_RS256, &sjwk, &err) != CLST_OK ||
        clst_jws_verify(jws, strlen(jws), sjwk, &payload, NULL, &err) != CLST_OK) {
        rc = cli_fail(CMD, &err);
        goto out;
    }
    p = json_loadb((const char *)payload.data, payload.size, JSON_REJECT_DUPLICATES, NULL);
    const json_t *key =
        json_object_get(json_object_get(json_object_get(p, "response"), "key"), "key");
    const char *enc_name = json_string_value(json_object_get(json_object_get(p, "request"), "enc"));
    const char *khs = json_string_value(json_object_get(key, "key_hsm"));
    enum clst_hash h = (enum clst_hash)0;
    if (enc_name != NULL && strcmp(enc_name, "CKM_RSA_AES_KEY_WRAP") == 0) {
        h = CLST_HASH_SHA1;
    } else if (enc_name != NULL && strcmp(enc_name, "RSA_AES_KEY_WRAP_256") == 0) {
        h = CLST_HASH_SHA256;
    } else if (enc_name != NULL && strcmp(enc_name, "RSA_AES_KEY_WRAP_384") == 0) {
        h = CLST_HASH_SHA384;
    }
    struct clst_buf khtext;
    clst_buf_init(&khtext, CLST_JWS_MAX_SIZE);
    if (khs != NULL && clst_b64url_decode(khs, strlen(khs), &khtext) == CLST_OK) {
        kh = json_loadb((const char *)khtext.data, khtext.size, JSON_REJECT_DUPLICATES, NULL);
    }
    clst_buf_cleanup(&khtext);
    const char *ctext = json_string_value(json_object_get(kh, "ciphertext"));
    const char *khenc = json_string_value(json_object_get(json_object_get(kh, "header"), "enc"));
    if (p == NULL || key == NULL || h == 0 || kh == NULL || ctext == NULL || khenc == NULL ||
        strcmp(khenc, enc_name) != 0 || clst_b64url_decode(ctext, strlen(ctext), &ct) != CLST_OK) {
        rc = cli_failf(CMD, "the release payload is not in the expected format (key_hsm)");
        goto out;
    }
    if (clst_rsa_aes_unwrap(tee, h, ct.data, ct.size, &material) != CLST_OK) {
        rc = cli_failf(CMD, "key_hsm does not unwrap with --tee-key: the release was wrapped to "
                            "another key (is this key the one in the token's x-ms-runtime.keys?)");
        goto out;
    }
    if (released_jwk(key, material.data, material.size, &jwk, &err) != CLST_OK) {
        rc = cli_fail(CMD, &err);
        goto out;
    }
    text = json_dumps(jwk, JSON_COMPACT);
    if (text == NULL) {
        rc = cli_failf(CMD, "out of memory");
        goto out;
    }
    rc = write_out(o->out, text, strlen(text));
    if (rc == CLI_EXIT_OK && strcmp(o->out, "-") != 0) {
        fprintf(stderr, "released %s (%s) to %s\n",
                json_string_value(json_object_get(key, "kid")) != NULL
                    ? json_string_value(json_object_get(key, "kid"))
                    : "?",
                json_string_value(json_object_get(key, "kty")), o->out);
    }
out:
    if (text != NULL) {
        clst_wipe(text, strlen(text));
        free(text);
    }
    json_decref(jwk);
    json_decref(kh);
    json_decref(p);
    json_decref(hdr);
    json_decref(resp);
    json_decref(body);
    clst_jwk_free(sjwk);
    EVP_PKEY_free(signer);
    EVP_PKEY_free(tee);
    clst_buf_cleanup(&material);
    clst_buf_cleanup(&ct);
    clst_buf_cleanup(&payload);
    clst_buf_cleanup(&path);
    clst_buf_cleanup(&token);
    return rc;
}

int
cmd_key(int argc, char **argv)
{
    struct opts o;
    struct clst_client *c = NULL;
    int rc;

    memset(&o, 0, sizeof o);
    static const char *const ACTIONS[] = {
        "create", "import",  "get",   "list",   "versions", "rotate",  "update",
        "delete", "recover", "purge", "backup", "restore",  "encrypt", "decrypt",
        "wrap",   "unwrap",  "sign",  "verify", "release",
    };
    if (cli_action_done(CMD, argc, argv, usage, ACTIONS, sizeof ACTIONS / sizeof ACTIONS[0], &rc)) {
        return rc;
    }
    const char *action = argv[1];
    bool needs_name = strcmp(action, "list") != 0 && strcmp(action, "restore") != 0;
    if ((rc = parse(argc, argv, &o)) != CLI_EXIT_OK ||
        (rc = cli_vault_name_check(CMD, action, o.name, needs_name)) != CLI_EXIT_OK) {
        return rc;
    }
    if (strcmp(action, "release") == 0) {
        /* --token is the attestation token here (the spelling); the vault credential
         * comes from --token-file or CLOISTER_TOKEN. */
        o.att_token = o.cfg.token;
        o.cfg.token = NULL;
        if (o.att_token == NULL || o.tee_key == NULL || o.out == NULL) {
            return cli_usage_error(CMD, "release needs --token T, --tee-key KEY.pem and -o FILE");
        }
    }
    if ((rc = cli_vault_client_open(CMD, &o.cfg, o.token_file, &c)) != CLI_EXIT_OK) {
        return rc;
    }
    if (strcmp(action, "release") == 0) {
        rc = do_release(c, &o);
    } else if (strcmp(action, "create") == 0 || strcmp(action, "import") == 0) {
        rc = do_create_or_import(c, &o, action[0] == 'i');
    } else if (strcmp(action, "get") == 0) {
        rc = do_get(c, &o);
    } else if (strcmp(action, "list") == 0 || strcmp(action, "versions") == 0) {
        struct cli_vault_list list = {"kid", "EXPIRES", NULL, o.json, o.deleted, action[0] == 'v'};
        rc = cli_vault_list(CMD, c, o.name, &list);
    } else if (strcmp(action, "update") == 0) {
        rc = do_update(c, &o);
    } else if (strcmp(action, "backup") == 0) {
        rc = do_backup(c, &o);
    } else if (strcmp(action, "restore") == 0) {
        rc = do_restore(c, &o);
    } else if (strcmp(action, "encrypt") == 0 || strcmp(action, "wrap") == 0) {
        rc = do_forward(c, &o, action[0] == 'w');
    } else if (strcmp(action, "decrypt") == 0 || strcmp(action, "unwrap") == 0) {
        rc = do_backward(c, &o, action[0] == 'u');
    } else if (strcmp(action, "sign") == 0) {
        rc = do_sign(c, &o);
    } else if (strcmp(action, "verify") == 0) {
        rc = do_verify(c, &o);
    } else {
        rc = cli_vault_simple(CMD, c, action, o.name, o.json);
    }
    clst_client_free(c);
    return rc;
}
