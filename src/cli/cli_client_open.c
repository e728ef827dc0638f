/* Opening a vault client for the client commands, and the requests and listings they share.
 * Apart from cli_client.c because it links the HTTPS client (libcurl), which the lightweight
 * cloister binary must not load. */
#define _POSIX_C_SOURCE 200809L /* strdup */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

#define PATH_CAP 1024

int
cli_vault_client_open(const char *cmd, const struct clst_client_config *cfg,
                      const char *token_file, struct clst_client **out)
{
    struct cli_vault_opts vo;
    struct clst_err err;
    clst_err_clear(&err);
    cli_vault_opts_init(&vo);
    vo.cfg = *cfg;
    vo.token_file = token_file;
    int rc = cli_vault_opts_finish(cmd, &vo);
    /* clst_client_new copies the configuration: the token buffer can go right after. */
    if (rc == CLI_EXIT_OK && clst_client_new(&vo.cfg, out, &err) != CLST_OK) {
        rc = cli_fail(cmd, &err);
    }
    cli_vault_opts_cleanup(&vo);
    return rc;
}

enum clst_status
cli_vault_path(const char *prefix, const char *name, const char *version, const char *suffix,
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

const char *
cli_json_last_segment(const json_t *obj, const char *member)
{
    const char *id = json_string_value(json_object_get(obj, member));
    if (id == NULL) {
        return "?";
    }
    const char *slash = strrchr(id, '/');
    return slash != NULL ? slash + 1 : id;
}

/* The collections of cmd's noun: "/keys" and "/deletedkeys" for "key". */
static void
collections(const char *cmd, char live[static 32], char deleted[static 40])
{
    snprintf(live, 32, "/%ss", cmd);
    snprintf(deleted, 40, "/deleted%ss", cmd);
}

/* Formats obj's member `key` into t when it is a Unix time (true); else t stays as it was. */
static bool
time_cell(const json_t *obj, const char *key, char t[32])
{
    json_t *v = json_object_get(obj, key);
    char s[32];
    if (!json_is_integer(v) || clst_time_format(json_integer_value(v), s, sizeof s) != CLST_OK) {
        return false;
    }
    memcpy(t, s, sizeof s);
    return true;
}

void
cli_vault_print_time(const char *label, const json_t *obj, const char *key)
{
    char t[32];
    if (time_cell(obj, key, t)) {
        printf("%-16s %s\n", label, t);
    }
}

int
cli_vault_fetch_all(const char *cmd, struct clst_client *c, const char *first_path, json_t **out)
{
    struct clst_err err = {0};
    json_t *all = json_array();
    json_t *page = NULL;
    char *next = NULL;
    int rc = CLI_EXIT_FAIL;
    const char *path = first_path;

    if (all == NULL) {
        return cli_failf(cmd, "out of memory");
    }
    for (int pages = 0; pages < 10000; pages++) {
        if (clst_client_call(c, "GET", path, NULL, NULL, &page, &err) != CLST_OK) {
            rc = cli_fail(cmd, &err);
            goto out;
        }
        json_t *items = json_object_get(page, "value");
        if (!json_is_array(items)) {
            rc = cli_failf(cmd, "the server's answer has no list");
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
    *out = all;
    all = NULL;
    rc = CLI_EXIT_OK;
out:
    free(next);
    json_decref(page);
    json_decref(all);
    return rc;
}

int
cli_vault_call(const char *cmd, struct clst_client *c, const char *method, const char *name,
               const char *version, const char *suffix, const json_t *body, json_t **out)
{
    struct clst_err err = {0};
    struct clst_buf path;
    char live[32], deleted[40];
    int rc = CLI_EXIT_OK;
    collections(cmd, live, deleted);
    clst_buf_init(&path, PATH_CAP);
    if (cli_vault_path(live, name, version, suffix, &path) != CLST_OK) {
        rc = cli_failf(cmd, "the name is too long");
    } else if (clst_client_call(c, method, (const char *)path.data, NULL, body, out, &err) !=
               CLST_OK) {
        rc = cli_fail(cmd, &err);
    }
    clst_buf_cleanup(&path);
    return rc;
}

/* The listing of cli_vault_list from first_path on. */
static int
print_list(const char *cmd, struct clst_client *c, const char *first_path,
           const struct cli_vault_list *l)
{
    json_t *all = NULL;
    int rc = cli_vault_fetch_all(cmd, c, first_path, &all);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    if (l->json) {
        cli_print_json_list(all);
        json_decref(all);
        return CLI_EXIT_OK;
    }
    if (l->versions) {
        printf("%-32s  %-7s  %-20s  %-20s  %s\n", "VERSION", "ENABLED", "CREATED", "UPDATED",
               "EXPIRES");
    } else {
        printf("%-40s  %-7s  %-20s  %s\n", "NAME", "ENABLED", l->deleted ? "DELETED" : "UPDATED",
               l->deleted ? "PURGE AFTER" : l->last_header);
    }
    size_t i;
    json_t *item;
    json_array_foreach(all, i, item)
    {
        json_t *attrs = json_object_get(item, "attributes");
        char t1[32] = "-", t2[32] = "-", t3[32] = "-";
        const char *name = cli_json_last_segment(item, l->id_member);
        const char *enabled = json_is_true(json_object_get(attrs, "enabled")) ? "yes" : "no";
        if (l->versions) {
            time_cell(attrs, "created", t1);
            time_cell(attrs, "updated", t2);
            time_cell(attrs, "exp", t3);
            printf("%-32s  %-7s  %-20s  %-20s  %s\n", name, enabled, t1, t2, t3);
        } else if (l->deleted) {
            time_cell(item, "deletedDate", t1);
            time_cell(item, "scheduledPurgeDate", t2);
            printf("%-40s  %-7s  %-20s  %s\n", name, enabled, t1, t2);
        } else {
            const char *last = t3;
            time_cell(attrs, "updated", t1);
            if (l->last_member != NULL) {
                last = json_string_value(json_object_get(item, l->last_member));
                last = last != NULL ? last : "-";
            } else {
                time_cell(attrs, "exp", t3);
            }
            printf("%-40s  %-7s  %-20s  %s\n", name, enabled, t1, last);
        }
    }
    json_decref(all);
    return CLI_EXIT_OK;
}

int
cli_vault_list(const char *cmd, struct clst_client *c, const char *name,
               const struct cli_vault_list *l)
{
    struct clst_buf path;
    char live[32], deleted[40];
    collections(cmd, live, deleted);
    clst_buf_init(&path, PATH_CAP);
    enum clst_status st =
        l->versions ? cli_vault_path(live, name, NULL, "/versions", &path)
                    : cli_vault_path(l->deleted ? deleted : live, NULL, NULL, NULL, &path);
    int rc = st == CLST_OK ? print_list(cmd, c, (const char *)path.data, l)
                           : cli_failf(cmd, "the name is too long");
    clst_buf_cleanup(&path);
    return rc;
}

int
cli_vault_name_check(const char *cmd, const char *action, const char *name, bool needs_name)
{
    if (needs_name && name == NULL) {
        return cli_usage_error(cmd, "%s needs a %s NAME", action, cmd);
    }
    if (!needs_name && name != NULL) {
        return cli_usage_error(cmd, "%s takes no NAME", action);
    }
    return CLI_EXIT_OK;
}

bool
cli_vault_flag(const char *a, bool enabled_alias, bool *json, int *enabled, bool *clear_tags,
               bool *deleted)
{
    if (strcmp(a, "--json") == 0) {
        *json = true;
    } else if (strcmp(a, "--disabled") == 0 || strcmp(a, "--disable") == 0) {
        *enabled = 0;
    } else if (strcmp(a, "--enable") == 0 || (enabled_alias && strcmp(a, "--enabled") == 0)) {
        *enabled = 1;
    } else if (strcmp(a, "--clear-tags") == 0) {
        *clear_tags = true;
    } else if (strcmp(a, "--deleted") == 0) {
        *deleted = true;
    } else {
        return false;
    }
    return true;
}

int
cli_vault_tag_opt(const char *cmd, const char *v, const char **tags, size_t *count, size_t max)
{
    if (*count == max) {
        return cli_usage_error(cmd, "at most %zu --tag options", max);
    }
    if (strchr(v, '=') == NULL || v[0] == '=') {
        return cli_usage_error(cmd, "--tag takes KEY=VALUE");
    }
    tags[(*count)++] = v;
    return CLI_EXIT_OK;
}

int
cli_vault_attrs(const char *cmd, int enabled, const char *nbf, const char *exp, bool allow_none,
                json_t *attrs)
{
    struct clst_err err = {0};
    if (enabled >= 0) {
        json_object_set_new(attrs, "enabled", json_boolean(enabled == 1));
    }
    const char *names[2] = {"nbf", "exp"};
    const char *vals[2] = {nbf, exp};
    for (int k = 0; k < 2; k++) {
        if (vals[k] == NULL) {
            continue;
        }
        if (allow_none && strcmp(vals[k], "none") == 0) {
            json_object_set_new(attrs, names[k], json_null());
            continue;
        }
        int64_t t = 0;
        if (clst_time_parse(vals[k], &t, &err) != CLST_OK || t <= 0) {
            return cli_usage_error(cmd, "--%s: '%s' is not a time (RFC 3339 or Unix seconds)",
                                   names[k], vals[k]);
        }
        json_object_set_new(attrs, names[k], json_integer(t));
    }
    return CLI_EXIT_OK;
}

int
cli_vault_tags(const char *cmd, const char *const *tags, size_t count, bool clear, json_t *body)
{
    if (count == 0 && !clear) {
        return CLI_EXIT_OK;
    }
    json_t *obj = json_object();
    if (obj == NULL) {
        return cli_failf(cmd, "out of memory");
    }
    for (size_t k = 0; k < count; k++) {
        const char *eq = strchr(tags[k], '=');
        char key[600];
        size_t n = (size_t)(eq - tags[k]);
        if (n >= sizeof key) {
            json_decref(obj);
            return cli_usage_error(cmd, "a tag name is too long (at most 512 characters)");
        }
        memcpy(key, tags[k], n);
        key[n] = '\0';
        /* json_string refuses a value that is not UTF-8, json_object_set_new such a name (and
         * a NULL value). */
        if (json_object_set_new(obj, key, json_string(eq + 1)) != 0) {
            json_decref(obj);
            return cli_usage_error(cmd, "tags must be UTF-8 text");
        }
    }
    json_object_set_new(body, "tags", obj);
    return CLI_EXIT_OK;
}

int
cli_vault_simple(const char *cmd, struct clst_client *c, const char *action, const char *name,
                 bool json)
{
    struct clst_err err = {0};
    struct clst_buf path;
    json_t *resp = NULL;
    int rc = CLI_EXIT_FAIL;
    const char *method = "DELETE";
    char live[32], deleted[40];
    enum clst_status st;
    clst_buf_init(&path, PATH_CAP);
    collections(cmd, live, deleted);
    if (strcmp(action, "rotate") == 0) {
        method = "POST";
        st = cli_vault_path(live, name, NULL, "/rotate", &path);
    } else if (strcmp(action, "delete") == 0) {
        st = cli_vault_path(live, name, NULL, NULL, &path);
    } else if (strcmp(action, "recover") == 0) {
        method = "POST";
        st = cli_vault_path(deleted, name, NULL, "/recover", &path);
    } else {
        st = cli_vault_path(deleted, name, NULL, NULL, &path);
    }
    if (st != CLST_OK) {
        rc = cli_failf(cmd, "the name is too long");
        goto out;
    }
    if (clst_client_call(c, method, (const char *)path.data, NULL, NULL, &resp, &err) != CLST_OK) {
        rc = cli_fail(cmd, &err);
        goto out;
    }
    if (json) {
        if (resp != NULL) {
            cli_print_json(resp);
        } else {
            printf("{}\n");
        }
    } else if (strcmp(action, "rotate") == 0) {
        printf("%s %s rotated: new version %s\n", cmd, name,
               cli_json_last_segment(json_object_get(resp, "key"), "kid"));
    } else if (strcmp(action, "delete") == 0) {
        char t[32] = "?";
        time_cell(resp, "scheduledPurgeDate", t);
        printf("%s %s deleted; it can be recovered until %s ('cloister %s recover %s')\n", cmd,
               name, t, cmd, name);
    } else if (strcmp(action, "recover") == 0) {
        printf("%s %s recovered\n", cmd, name);
    } else {
        printf("%s %s purged\n", cmd, name);
    }
    rc = CLI_EXIT_OK;
out:
    json_decref(resp);
    clst_buf_cleanup(&path);
    return rc;
}
