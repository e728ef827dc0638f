/* cloister secret: set, get, list, version history, update, delete, recover and purge secrets in
 * a Cloister vault (the key vault REST API, through the client library). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
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

/* "--name VALUE" or "--name=VALUE". Returns the value (advancing *i) or NULL when argv[*i] is not
 * this option; *missing is set when the option has no value. */
static const char *
optval(int argc, char **argv, int *i, const char *name, bool *missing)
{
    size_t n = strlen(name);
    if (strncmp(argv[*i], name, n) != 0) {
        return NULL;
    }
    if (argv[*i][n] == '=') {
        return argv[*i] + n + 1;
    }
    if (argv[*i][n] != '\0') {
        return NULL;
    }
    if (*i + 1 >= argc) {
        *missing = true;
        return NULL;
    }
    (*i)++;
    return argv[*i];
}

static int
parse(int argc, char **argv, struct opts *o)
{
    bool missing = false;
    o->enabled = -1;
    clst_client_config_init(&o->cfg);
    for (int i = 2; i < argc; i++) {
        const char *v;
        const char *a = argv[i];
        if ((v = optval(argc, argv, &i, "--url", &missing)) != NULL) {
            o->cfg.url = v;
        } else if ((v = optval(argc, argv, &i, "--token-file", &missing)) != NULL) {
            o->token_file = v;
        } else if ((v = optval(argc, argv, &i, "--token", &missing)) != NULL) {
            o->cfg.token = v;
        } else if ((v = optval(argc, argv, &i, "--ca", &missing)) != NULL) {
            o->cfg.ca_file = v;
        } else if ((v = optval(argc, argv, &i, "--value", &missing)) != NULL) {
            o->value = v;
        } else if ((v = optval(argc, argv, &i, "--file", &missing)) != NULL) {
            o->file = v;
        } else if ((v = optval(argc, argv, &i, "--out", &missing)) != NULL) {
            o->out = v;
        } else if ((v = optval(argc, argv, &i, "--version", &missing)) != NULL) {
            o->version = v;
        } else if ((v = optval(argc, argv, &i, "--content-type", &missing)) != NULL) {
            o->content_type = v;
        } else if ((v = optval(argc, argv, &i, "--nbf", &missing)) != NULL) {
            o->nbf = v;
        } else if ((v = optval(argc, argv, &i, "--exp", &missing)) != NULL) {
            o->exp = v;
        } else if ((v = optval(argc, argv, &i, "--tag", &missing)) != NULL) {
            if (o->tag_count == TAGS_MAX) {
                return cli_usage_error(CMD, "at most %d --tag options", TAGS_MAX);
            }
            if (strchr(v, '=') == NULL || v[0] == '=') {
                return cli_usage_error(CMD, "--tag takes KEY=VALUE");
            }
            o->tags[o->tag_count++] = v;
        } else if (missing) {
            return cli_usage_error(CMD, "%s needs a value", a);
        } else if (strcmp(a, "--json") == 0) {
            o->json = true;
        } else if (strcmp(a, "--stdin") == 0) {
            o->use_stdin = true;
        } else if (strcmp(a, "--disabled") == 0 || strcmp(a, "--disable") == 0) {
            o->enabled = 0;
        } else if (strcmp(a, "--enable") == 0) {
            o->enabled = 1;
        } else if (strcmp(a, "--clear-tags") == 0) {
            o->clear_tags = true;
        } else if (strcmp(a, "--deleted") == 0) {
            o->deleted = true;
        } else if (a[0] == '-' && a[1] != '\0') {
            return cli_usage_error(CMD, "unknown option '%s'", a);
        } else if (o->name == NULL) {
            o->name = a;
        } else {
            return cli_usage_error(CMD, "unexpected argument '%s'", a);
        }
        if (missing) {
            return cli_usage_error(CMD, "%s needs a value", a);
        }
    }
    return CLI_EXIT_OK;
}

/* Reads up to `max` bytes of a file (or stdin when path is NULL) into a secret buffer. */
static enum clst_status
read_all(const char *path, struct clst_buf *out, struct clst_err *err)
{
    FILE *f = path != NULL ? fopen(path, "rb") : stdin;
    uint8_t chunk[4096];
    enum clst_status st = CLST_OK;
    if (f == NULL) {
        return clst_err_set(err, CLST_E_IO, "cannot open '%s': %s", path, strerror(errno));
    }
    for (;;) {
        size_t n = fread(chunk, 1, sizeof chunk, f);
        if (n > 0 && clst_buf_append(out, chunk, n) != CLST_OK) {
            st = clst_err_set(err, CLST_E_LIMIT, "the value is larger than %u bytes",
                              VALUE_READ_MAX);
            break;
        }
        if (n < sizeof chunk) {
            if (ferror(f)) {
                st = clst_err_set(err, CLST_E_IO, "reading %s failed",
                                  path != NULL ? path : "stdin");
            }
            break;
        }
    }
    clst_wipe(chunk, sizeof chunk);
    if (path != NULL) {
        fclose(f);
    }
    return st;
}

static int
open_client(const char *cmd, struct opts *o, struct clst_client **out)
{
    return cli_vault_client_open(cmd, &o->cfg, o->token_file, out);
}

/* "/secrets/<escaped name>[/<escaped version>][suffix]". */
static enum clst_status
path_for(const char *prefix, const char *name, const char *version, const char *suffix,
         struct clst_buf *b)
{
    enum clst_status st = clst_buf_append_str(b, prefix);
    if (st == CLST_OK && name != NULL) {
        st = clst_buf_append_byte(b, '/');
        if (st == CLST_OK) {
            st = clst_client_path_escape(name, b);
        }
    }
    if (st == CLST_OK && version != NULL) {
        st = clst_buf_append_byte(b, '/');
        if (st == CLST_OK) {
            st = clst_client_path_escape(version, b);
        }
    }
    if (st == CLST_OK && suffix != NULL) {
        st = clst_buf_append_str(b, suffix);
    }
    if (st == CLST_OK) {
        st = clst_buf_terminate(b);
    }
    return st;
}

static void
print_time(const char *label, json_t *attrs, const char *key)
{
    json_t *v = json_object_get(attrs, key);
    char t[32];
    if (json_is_integer(v) && clst_time_format(json_integer_value(v), t, sizeof t) == CLST_OK) {
        printf("%-16s %s\n", label, t);
    }
}

static void
print_json(json_t *j)
{
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
    if (s != NULL) {
        printf("%s\n", s);
        free(s);
    }
}

/* The last path segment of an item's id ("…/secrets/NAME" → NAME, "…/NAME/VERSION" → VERSION). */
static const char *
id_last(json_t *obj)
{
    const char *id = json_string_value(json_object_get(obj, "id"));
    if (id == NULL) {
        return "?";
    }
    const char *slash = strrchr(id, '/');
    return slash != NULL ? slash + 1 : id;
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
    print_time("created", attrs, "created");
    print_time("updated", attrs, "updated");
    print_time("not before", attrs, "nbf");
    print_time("expires", attrs, "exp");
    const char *key;
    json_t *v;
    json_object_foreach (json_object_get(b, "tags"), key, v) {
        printf("%-16s %s=%s\n", "tag", key, json_string_value(v) ? json_string_value(v) : "");
    }
    print_time("deleted", b, "deletedDate");
    print_time("purge after", b, "scheduledPurgeDate");
}

/* Sets attributes members from --enable/--disable/--nbf/--exp. */
static int
attrs_from_opts(const struct opts *o, json_t *attrs)
{
    struct clst_err err = {0};
    if (o->enabled >= 0) {
        json_object_set_new(attrs, "enabled", json_boolean(o->enabled == 1));
    }
    const char *names[2] = {"nbf", "exp"};
    const char *vals[2] = {o->nbf, o->exp};
    for (int k = 0; k < 2; k++) {
        if (vals[k] == NULL) {
            continue;
        }
        if (strcmp(vals[k], "none") == 0) {
            json_object_set_new(attrs, names[k], json_null());
            continue;
        }
        int64_t t = 0;
        if (clst_time_parse(vals[k], &t, &err) != CLST_OK || t <= 0) {
            return cli_usage_error(CMD, "--%s: '%s' is not a time (RFC 3339 or Unix seconds)",
                                   names[k], vals[k]);
        }
        json_object_set_new(attrs, names[k], json_integer(t));
    }
    return CLI_EXIT_OK;
}

static int
tags_from_opts(const struct opts *o, json_t *body)
{
    if (o->tag_count == 0 && !o->clear_tags) {
        return CLI_EXIT_OK;
    }
    json_t *tags = json_object();
    if (tags == NULL) {
        return cli_failf(CMD, "out of memory");
    }
    for (size_t k = 0; k < o->tag_count; k++) {
        const char *eq = strchr(o->tags[k], '=');
        char key[600];
        size_t n = (size_t)(eq - o->tags[k]);
        if (n >= sizeof key) {
            json_decref(tags);
            return cli_usage_error(CMD, "a tag name is too long (at most 512 characters)");
        }
        memcpy(key, o->tags[k], n);
        key[n] = '\0';
        json_t *val = json_string(eq + 1);
        if (val == NULL) {
            json_decref(tags);
            return cli_usage_error(CMD, "tags must be UTF-8 text");
        }
        json_object_set_new(tags, key, val);
    }
    json_object_set_new(body, "tags", tags);
    return CLI_EXIT_OK;
}

/* ---- actions -------------------------------------------------------------------------------- */

static int
do_set(struct clst_client *c, const struct opts *o)
{
    struct clst_err err = {0};
    struct clst_buf value;
    struct clst_buf path;
    json_t *body = NULL;
    json_t *attrs = NULL;
    json_t *resp = NULL;
    int rc = CLI_EXIT_FAIL;
    int sources = (o->value != NULL) + (o->file != NULL) + (o->use_stdin ? 1 : 0);

    clst_buf_init_secret(&value, VALUE_READ_MAX);
    clst_buf_init(&path, 1024);
    if (sources != 1) {
        rc = cli_usage_error(CMD, "set needs exactly one of --value, --file or --stdin");
        goto out;
    }
    if (o->value != NULL) {
        if (clst_buf_append_str(&value, o->value) != CLST_OK) {
            rc = cli_failf(CMD, "the value is too large");
            goto out;
        }
    } else if (read_all(o->file, &value, &err) != CLST_OK) {
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
    if ((rc = attrs_from_opts(o, attrs)) != CLI_EXIT_OK ||
        (rc = tags_from_opts(o, body)) != CLI_EXIT_OK) {
        goto out;
    }
    json_object_set(body, "attributes", attrs);
    rc = CLI_EXIT_FAIL;
    if (path_for("/secrets", o->name, NULL, NULL, &path) != CLST_OK) {
        rc = cli_failf(CMD, "the name is too long");
        goto out;
    }
    if (clst_client_call(c, "PUT", (const char *)path.data, NULL, body, &resp, &err) != CLST_OK) {
        rc = cli_fail(CMD, &err);
        goto out;
    }
    /* Never echo the value back. */
    json_object_del(resp, "value");
    if (o->json) {
        print_json(resp);
    } else {
        printf("secret %s: version %s set\n", o->name, id_last(resp));
    }
    rc = CLI_EXIT_OK;
out:
    json_decref(resp);
    json_decref(attrs);
    json_decref(body);
    clst_buf_cleanup(&value);
    clst_buf_cleanup(&path);
    return rc;
}

static int
do_get(struct clst_client *c, const struct opts *o)
{
    struct clst_err err = {0};
    struct clst_buf path;
    json_t *resp = NULL;
    int rc = CLI_EXIT_FAIL;
    clst_buf_init(&path, 1024);
    if (path_for("/secrets", o->name, o->version != NULL ? o->version : "", NULL, &path) !=
        CLST_OK) {
        rc = cli_failf(CMD, "the name is too long");
        goto out;
    }
    if (clst_client_call(c, "GET", (const char *)path.data, NULL, NULL, &resp, &err) != CLST_OK) {
        rc = cli_fail(CMD, &err);
        goto out;
    }
    json_t *v = json_object_get(resp, "value");
    if (!json_is_string(v)) {
        rc = cli_failf(CMD, "the server's answer has no value");
        goto out;
    }
    if (o->json) {
        print_json(resp);
    } else if (o->out != NULL) {
        FILE *f = NULL;
        int fd = open(o->out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0 || (f = fdopen(fd, "wb")) == NULL) {
            if (fd >= 0) {
                close(fd);
            }
            rc = cli_failf(CMD, "cannot write '%s': %s", o->out, strerror(errno));
            goto out;
        }
        size_t n = json_string_length(v);
        bool ok = fwrite(json_string_value(v), 1, n, f) == n;
        ok = (fclose(f) == 0) && ok;
        if (!ok) {
            rc = cli_failf(CMD, "writing '%s' failed", o->out);
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
    clst_buf_cleanup(&path);
    return rc;
}

/* Lists a collection, following nextLinks. */
static int
do_list(struct clst_client *c, const struct opts *o, const char *first_path, bool versions)
{
    struct clst_err err = {0};
    json_t *all = json_array();
    json_t *page = NULL;
    char *next = NULL;
    int rc = CLI_EXIT_FAIL;
    const char *path = first_path;

    if (all == NULL) {
        return cli_failf(CMD, "out of memory");
    }
    for (int pages = 0; pages < 10000; pages++) {
        if (clst_client_call(c, "GET", path, NULL, NULL, &page, &err) != CLST_OK) {
            rc = cli_fail(CMD, &err);
            goto out;
        }
        json_t *items = json_object_get(page, "value");
        if (!json_is_array(items)) {
            rc = cli_failf(CMD, "the server's answer has no list");
            goto out;
        }
        json_array_extend(all, items);
        const char *nl = json_string_value(json_object_get(page, "nextLink"));
        free(next);
        next = (nl != NULL && nl[0] != '\0') ? strdup(nl) : NULL;
        json_decref(page);
        page = NULL;
        if (next == NULL) {
            break;
        }
        path = next;
    }
    if (o->json) {
        json_t *wrap = json_pack("{s:O}", "value", all);
        print_json(wrap);
        json_decref(wrap);
        rc = CLI_EXIT_OK;
        goto out;
    }
    size_t i;
    json_t *item;
    if (versions) {
        printf("%-32s  %-7s  %-20s  %-20s  %s\n", "VERSION", "ENABLED", "CREATED", "UPDATED",
               "EXPIRES");
    } else {
        printf("%-40s  %-7s  %-20s  %s\n", "NAME", "ENABLED", o->deleted ? "DELETED" : "UPDATED",
               o->deleted ? "PURGE AFTER" : "CONTENT TYPE");
    }
    json_array_foreach (all, i, item) {
        json_t *attrs = json_object_get(item, "attributes");
        char t1[32] = "-";
        char t2[32] = "-";
        char t3[32] = "-";
        json_t *cr = json_object_get(attrs, "created");
        json_t *up = json_object_get(attrs, "updated");
        json_t *ex = json_object_get(attrs, "exp");
        const char *enabled = json_is_true(json_object_get(attrs, "enabled")) ? "yes" : "no";
        if (versions) {
            if (json_is_integer(cr)) {
                clst_time_format(json_integer_value(cr), t1, sizeof t1);
            }
            if (json_is_integer(up)) {
                clst_time_format(json_integer_value(up), t2, sizeof t2);
            }
            if (json_is_integer(ex)) {
                clst_time_format(json_integer_value(ex), t3, sizeof t3);
            }
            printf("%-32s  %-7s  %-20s  %-20s  %s\n", id_last(item), enabled, t1, t2, t3);
        } else if (o->deleted) {
            json_t *dd = json_object_get(item, "deletedDate");
            json_t *pd = json_object_get(item, "scheduledPurgeDate");
            if (json_is_integer(dd)) {
                clst_time_format(json_integer_value(dd), t1, sizeof t1);
            }
            if (json_is_integer(pd)) {
                clst_time_format(json_integer_value(pd), t2, sizeof t2);
            }
            printf("%-40s  %-7s  %-20s  %s\n", id_last(item), enabled, t1, t2);
        } else {
            const char *ct = json_string_value(json_object_get(item, "contentType"));
            if (json_is_integer(up)) {
                clst_time_format(json_integer_value(up), t1, sizeof t1);
            }
            printf("%-40s  %-7s  %-20s  %s\n", id_last(item), enabled, t1,
                   ct != NULL ? ct : "-");
        }
    }
    rc = CLI_EXIT_OK;
out:
    free(next);
    json_decref(page);
    json_decref(all);
    return rc;
}

static int
do_update(struct clst_client *c, const struct opts *o)
{
    struct clst_err err = {0};
    struct clst_buf path;
    json_t *body = json_object();
    json_t *attrs = json_object();
    json_t *resp = NULL;
    int rc = CLI_EXIT_FAIL;
    clst_buf_init(&path, 1024);
    if (body == NULL || attrs == NULL) {
        rc = cli_failf(CMD, "out of memory");
        goto out;
    }
    if (o->content_type != NULL) {
        json_object_set_new(body, "contentType", json_string(o->content_type));
    }
    if ((rc = attrs_from_opts(o, attrs)) != CLI_EXIT_OK ||
        (rc = tags_from_opts(o, body)) != CLI_EXIT_OK) {
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
    if (path_for("/secrets", o->name, o->version != NULL ? o->version : "", NULL, &path) !=
        CLST_OK) {
        rc = cli_failf(CMD, "the name is too long");
        goto out;
    }
    if (clst_client_call(c, "PATCH", (const char *)path.data, NULL, body, &resp, &err) !=
        CLST_OK) {
        rc = cli_fail(CMD, &err);
        goto out;
    }
    if (o->json) {
        print_json(resp);
    } else {
        print_bundle(resp);
    }
    rc = CLI_EXIT_OK;
out:
    json_decref(resp);
    json_decref(attrs);
    json_decref(body);
    clst_buf_cleanup(&path);
    return rc;
}

/* delete, recover, purge: one request on one name. */
static int
do_simple(struct clst_client *c, const struct opts *o, const char *action)
{
    struct clst_err err = {0};
    struct clst_buf path;
    json_t *resp = NULL;
    int rc = CLI_EXIT_FAIL;
    const char *method = "DELETE";
    clst_buf_init(&path, 1024);
    enum clst_status st;
    if (strcmp(action, "delete") == 0) {
        st = path_for("/secrets", o->name, NULL, NULL, &path);
    } else if (strcmp(action, "recover") == 0) {
        method = "POST";
        st = path_for("/deletedsecrets", o->name, NULL, "/recover", &path);
    } else {
        st = path_for("/deletedsecrets", o->name, NULL, NULL, &path);
    }
    if (st != CLST_OK) {
        rc = cli_failf(CMD, "the name is too long");
        goto out;
    }
    if (clst_client_call(c, method, (const char *)path.data, NULL, NULL, &resp, &err) != CLST_OK) {
        rc = cli_fail(CMD, &err);
        goto out;
    }
    if (o->json) {
        if (resp != NULL) {
            print_json(resp);
        } else {
            printf("{}\n");
        }
    } else if (strcmp(action, "delete") == 0) {
        char t[32] = "?";
        json_t *pd = json_object_get(resp, "scheduledPurgeDate");
        if (json_is_integer(pd)) {
            clst_time_format(json_integer_value(pd), t, sizeof t);
        }
        printf("secret %s deleted; it can be recovered until %s ('cloister secret recover %s')\n",
               o->name, t, o->name);
    } else if (strcmp(action, "recover") == 0) {
        printf("secret %s recovered\n", o->name);
    } else {
        printf("secret %s purged\n", o->name);
    }
    rc = CLI_EXIT_OK;
out:
    json_decref(resp);
    clst_buf_cleanup(&path);
    return rc;
}

int
cmd_secret(int argc, char **argv)
{
    struct opts o;
    struct clst_client *c = NULL;
    int rc;

    memset(&o, 0, sizeof o);
    if (argc < 2 || cli_wants_help(argc, argv) || strcmp(argv[1], "help") == 0) {
        usage();
        return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
    }
    const char *action = argv[1];
    static const char *const ACTIONS[] = {"set",    "get",     "list",  "versions",
                                          "update", "delete",  "recover", "purge"};
    bool known = false;
    for (size_t k = 0; k < sizeof ACTIONS / sizeof ACTIONS[0]; k++) {
        known = known || strcmp(action, ACTIONS[k]) == 0;
    }
    if (!known) {
        return cli_usage_error(CMD, "unknown action '%s'", action);
    }
    if ((rc = parse(argc, argv, &o)) != CLI_EXIT_OK) {
        return rc;
    }
    bool needs_name = strcmp(action, "list") != 0;
    if (needs_name && o.name == NULL) {
        return cli_usage_error(CMD, "%s needs a secret NAME", action);
    }
    if (!needs_name && o.name != NULL) {
        return cli_usage_error(CMD, "list takes no NAME");
    }
    if ((rc = open_client(CMD, &o, &c)) != CLI_EXIT_OK) {
        return rc;
    }
    if (strcmp(action, "set") == 0) {
        rc = do_set(c, &o);
    } else if (strcmp(action, "get") == 0) {
        rc = do_get(c, &o);
    } else if (strcmp(action, "list") == 0) {
        rc = do_list(c, &o, o.deleted ? "/deletedsecrets" : "/secrets", false);
    } else if (strcmp(action, "versions") == 0) {
        struct clst_buf path;
        clst_buf_init(&path, 1024);
        if (path_for("/secrets", o.name, NULL, "/versions", &path) != CLST_OK) {
            rc = cli_failf(CMD, "the name is too long");
        } else {
            rc = do_list(c, &o, (const char *)path.data, true);
        }
        clst_buf_cleanup(&path);
    } else if (strcmp(action, "update") == 0) {
        rc = do_update(c, &o);
    } else {
        rc = do_simple(c, &o, action);
    }
    clst_client_free(c);
    return rc;
}
