/* cloister secret: set, get, list, version history, update, delete, recover and purge secrets in
 * a Cloister vault (the key vault REST API, through the client library). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cloister/client.h>

#include "cli/cli.h"

#define CMD            "secret"
#define VALUE_READ_MAX (1024u * 1024u) /* the server caps values at 25 KiB anyway */
#define TAGS_MAX       15

static void
usage(void)
{
    printf(
        "usage: cloister secret <action> [NAME] [options]\n"
        "\n"
        "Manages secrets in a Cloister vault (the key vault's /secrets API).\n"
        "\n"
        "actions:\n"
        "  set NAME        store a new version: --value TEXT, --file PATH or --stdin (values\n"
        "                  are UTF-8 text up to 25 KiB; prefer --file or --stdin, since --value\n"
        "                  shows in the process list); also --content-type, --tag, --disabled,\n"
        "                  --nbf, --exp\n"
        "  get NAME        print the value (exactly; a newline is added only on a terminal);\n"
        "                  --version V for an older version, --out FILE to write it to a file\n"
        "                  (created 0600)\n"
        "  list            the secrets (latest versions, no values); --deleted for the deleted\n"
        "                  ones\n"
        "  versions NAME   every version of a secret\n"
        "  update NAME     change --enable/--disable, --nbf, --exp (TIME or 'none'),\n"
        "                  --content-type, --tag (replaces all tags), --clear-tags;\n"
        "                  --version V (default: the latest)\n"
        "  delete NAME     soft delete (recoverable until its scheduled purge date)\n"
        "  recover NAME    bring a deleted secret back\n"
        "  purge NAME      remove a deleted secret for good\n"
        "\n"
        "options:\n"
        "  --url URL            the vault, https://HOST:PORT (env CLOISTER_URL)\n"
        "  --token TOKEN        bearer token (env CLOISTER_TOKEN); --token-file FILE reads it\n"
        "                       from a file instead\n"
        "  --ca FILE            CA certificate to pin, e.g. the server's DIR/ca.pem\n"
        "                       (env CLOISTER_CA; default: the system's trust store)\n"
        "  --json               print the server's JSON instead of text (for scripts)\n"
        "  --content-type TYPE  e.g. text/plain\n"
        "  --tag KEY=VALUE      repeatable, at most 15\n"
        "  --nbf TIME, --exp TIME\n"
        "                       not-before / expiry, RFC 3339 (2030-01-01T00:00:00Z) or Unix\n"
        "                       seconds (informational for secrets, as in the cloud vault)\n"
        "\n"
        "examples:\n"
        "  cloister secret set db-password --file pw.txt --ca data/ca.pem\n"
        "  printf %%s \"$PW\" | cloister secret set db-password --stdin\n"
        "  cloister secret get db-password\n"
        "  cloister secret list --json\n"
        "\n"
        "exit status: 0 success, 1 the request failed (the server's message is shown), 2 usage.\n");
}

/* ---- options -------------------------------------------------------------------------------- */

struct opts {
    struct clst_client_config cfg;
    const char *token_file;
    bool json;
    const char *name;
    const char *value;
    const char *file;
    bool use_stdin;
    const char *out;
    const char *version;
    const char *content_type;
    const char *tags[TAGS_MAX];
    size_t tag_count;
    bool clear_tags;
    int enabled; /* -1 unchanged, 0 disable, 1 enable */
    const char *nbf;
    const char *exp;
    bool deleted;
};

static int
parse(int argc, char **argv, struct opts *o)
{
    const struct cli_opt_slot valued[] = {
        {"--url", &o->cfg.url},
        {"--token-file", &o->token_file},
        {"--token", &o->cfg.token},
        {"--ca", &o->cfg.ca_file},
        {"--value", &o->value},
        {"--file", &o->file},
        {"--out", &o->out},
        {"--version", &o->version},
        {"--content-type", &o->content_type},
        {"--nbf", &o->nbf},
        {"--exp", &o->exp},
    };
    bool missing = false;
    o->enabled = -1;
    clst_client_config_init(&o->cfg);
    for (int i = 2; i < argc; i++) {
        const char *v;
        const char *a = argv[i];
        bool matched;
        int rc =
            cli_opt_slots(CMD, argc, argv, &i, valued, sizeof valued / sizeof valued[0], &matched);
        if (rc != CLI_EXIT_OK) {
            return rc;
        }
        if (matched ||
            cli_vault_flag(a, false, &o->json, &o->enabled, &o->clear_tags, &o->deleted)) {
            continue;
        }
        if ((v = cli_opt_arg(argc, argv, &i, "--tag", &missing)) != NULL) {
            rc = cli_vault_tag_opt(CMD, v, o->tags, &o->tag_count, TAGS_MAX);
            if (rc != CLI_EXIT_OK) {
                return rc;
            }
        } else if (missing) {
            return cli_usage_error(CMD, "%s needs a value", a);
        } else if (strcmp(a, "--stdin") == 0) {
            o->use_stdin = true;
        } else if ((rc = cli_positional(CMD, a, &o->name)) != CLI_EXIT_OK) {
            return rc;
        }
    }
    return CLI_EXIT_OK;
}

static void
print_bundle(json_t *b)
{
    json_t *attrs = json_object_get(b, "attributes");
    const char *id = json_string_value(json_object_get(b, "id"));
    printf("%-16s %s\n", "id", id != NULL ? id : "?");
    printf("%-16s %s\n", "enabled", json_is_true(json_object_get(attrs, "enabled")) ? "yes" : "no");
    const char *ct = json_string_value(json_object_get(b, "contentType"));
    if (ct != NULL) {
        printf("%-16s %s\n", "content type", ct);
    }
    cli_vault_print_time("created", attrs, "created");
    cli_vault_print_time("updated", attrs, "updated");
    cli_vault_print_time("not before", attrs, "nbf");
    cli_vault_print_time("expires", attrs, "exp");
    const char *key;
    json_t *v;
    json_object_foreach (json_object_get(b, "tags"), key, v) {
        printf("%-16s %s=%s\n", "tag", key, json_string_value(v) ? json_string_value(v) : "");
    }
    cli_vault_print_time("deleted", b, "deletedDate");
    cli_vault_print_time("purge after", b, "scheduledPurgeDate");
}

/* ---- actions -------------------------------------------------------------------------------- */

static int
do_set(struct clst_client *c, const struct opts *o)
{
    struct clst_err err = {0};
    struct clst_buf value;
    json_t *body = NULL;
    json_t *attrs = NULL;
    json_t *resp = NULL;
    int rc = CLI_EXIT_FAIL;
    int sources = (o->value != NULL) + (o->file != NULL) + (o->use_stdin ? 1 : 0);

    clst_buf_init_secret(&value, VALUE_READ_MAX);
    if (sources != 1) {
        rc = cli_usage_error(CMD, "set needs exactly one of --value, --file or --stdin");
        goto out;
    }
    if (o->value != NULL) {
        if (clst_buf_append_str(&value, o->value) != CLST_OK) {
            rc = cli_failf(CMD, "the value is too large");
            goto out;
        }
    } else if (cli_read_all(o->file, false, "the value", &value, &err) != CLST_OK) {
        rc = cli_fail(CMD, &err);
        goto out;
    }
    body = json_object();
    attrs = json_object();
    if (body == NULL || attrs == NULL) {
        rc = cli_failf(CMD, "out of memory");
        goto out;
    }
    json_t *jv = json_stringn((const char *)value.data, value.size);
    if (jv == NULL) {
        rc = cli_failf(CMD, "the value is not UTF-8 text; base64-encode binary data first");
        goto out;
    }
    json_object_set_new(body, "value", jv);
    if (o->content_type != NULL) {
        json_object_set_new(body, "contentType", json_string(o->content_type));
    }
    if ((rc = cli_vault_attrs(CMD, o->enabled, o->nbf, o->exp, true, attrs)) != CLI_EXIT_OK ||
        (rc = cli_vault_tags(CMD, o->tags, o->tag_count, o->clear_tags, body)) != CLI_EXIT_OK) {
        goto out;
    }
    json_object_set(body, "attributes", attrs);
    if ((rc = cli_vault_call(CMD, c, "PUT", o->name, NULL, NULL, body, &resp)) != CLI_EXIT_OK) {
        goto out;
    }
    /* Never echo the value back. */
    json_object_del(resp, "value");
    if (o->json) {
        cli_print_json(resp);
    } else {
        printf("secret %s: version %s set\n", o->name, cli_json_last_segment(resp, "id"));
    }
    rc = CLI_EXIT_OK;
out:
    json_decref(resp);
    json_decref(attrs);
    json_decref(body);
    clst_buf_cleanup(&value);
    return rc;
}

static int
do_get(struct clst_client *c, const struct opts *o)
{
    json_t *resp = NULL;
    int rc = cli_vault_call(CMD, c, "GET", o->name, o->version != NULL ? o->version : "", NULL,
                            NULL, &resp);
    if (rc != CLI_EXIT_OK) {
        goto out;
    }
    json_t *v = json_object_get(resp, "value");
    if (!json_is_string(v)) {
        rc = cli_failf(CMD, "the server's answer has no value");
        goto out;
    }
    if (o->json) {
        cli_print_json(resp);
    } else if (o->out != NULL) {
        rc = cli_write_private_file(CMD, o->out, json_string_value(v), json_string_length(v));
        if (rc != CLI_EXIT_OK) {
            goto out;
        }
    } else {
        fwrite(json_string_value(v), 1, json_string_length(v), stdout);
        if (isatty(STDOUT_FILENO)) {
            fputc('\n', stdout);
        }
    }
    rc = CLI_EXIT_OK;
out:
    json_decref(resp);
    return rc;
}

static int
do_update(struct clst_client *c, const struct opts *o)
{
    json_t *body = json_object();
    json_t *attrs = json_object();
    json_t *resp = NULL;
    int rc = CLI_EXIT_FAIL;
    if (body == NULL || attrs == NULL) {
        rc = cli_failf(CMD, "out of memory");
        goto out;
    }
    if (o->content_type != NULL) {
        json_object_set_new(body, "contentType", json_string(o->content_type));
    }
    if ((rc = cli_vault_attrs(CMD, o->enabled, o->nbf, o->exp, true, attrs)) != CLI_EXIT_OK ||
        (rc = cli_vault_tags(CMD, o->tags, o->tag_count, o->clear_tags, body)) != CLI_EXIT_OK) {
        goto out;
    }
    rc = CLI_EXIT_FAIL;
    if (json_object_size(attrs) > 0) {
        json_object_set(body, "attributes", attrs);
    }
    if (json_object_size(body) == 0) {
        rc = cli_usage_error(CMD,
                             "nothing to update: give --enable, --disable, --nbf, --exp, "
                             "--content-type, --tag or --clear-tags");
        goto out;
    }
    if ((rc = cli_vault_call(CMD, c, "PATCH", o->name, o->version != NULL ? o->version : "", NULL,
                             body, &resp)) != CLI_EXIT_OK) {
        goto out;
    }
    if (o->json) {
        cli_print_json(resp);
    } else {
        print_bundle(resp);
    }
    rc = CLI_EXIT_OK;
out:
    json_decref(resp);
    json_decref(attrs);
    json_decref(body);
    return rc;
}

int
cmd_secret(int argc, char **argv)
{
    struct opts o;
    struct clst_client *c = NULL;
    int rc;

    memset(&o, 0, sizeof o);
    static const char *const ACTIONS[] = {"set",    "get",    "list",    "versions",
                                          "update", "delete", "recover", "purge"};
    if (cli_action_done(CMD, argc, argv, usage, ACTIONS, sizeof ACTIONS / sizeof ACTIONS[0], &rc)) {
        return rc;
    }
    const char *action = argv[1];
    if ((rc = parse(argc, argv, &o)) != CLI_EXIT_OK ||
        (rc = cli_vault_name_check(CMD, action, o.name, strcmp(action, "list") != 0)) !=
            CLI_EXIT_OK ||
        (rc = cli_vault_client_open(CMD, &o.cfg, o.token_file, &c)) != CLI_EXIT_OK) {
        return rc;
    }
    if (strcmp(action, "set") == 0) {
        rc = do_set(c, &o);
    } else if (strcmp(action, "get") == 0) {
        rc = do_get(c, &o);
    } else if (strcmp(action, "list") == 0 || strcmp(action, "versions") == 0) {
        struct cli_vault_list list = {"id",   "CONTENT TYPE", "contentType",
                                      o.json, o.deleted,      action[0] == 'v'};
        rc = cli_vault_list(CMD, c, o.name, &list);
    } else if (strcmp(action, "update") == 0) {
        rc = do_update(c, &o);
    } else {
        rc = cli_vault_simple(CMD, c, action, o.name, o.json);
    }
    clst_client_free(c);
    return rc;
}
