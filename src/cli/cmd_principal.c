/* cloister principal: create, list, show and delete the principals (bearer-token identities with
 * role assignments) of a Cloister vault, through its Cloister-specific /principals API. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cloister/client.h>

#include "cli/cli.h"

#define CMD       "principal"
#define ROLES_MAX 32

static void
usage(void)
{
    printf(
        "usage: cloister principal <action> [ID] [options]\n"
        "\n"
        "Manages who may use a Cloister vault. A principal authenticates with a bearer token\n"
        "(shown once, when it is created; the vault keeps only its SHA-256) and holds role\n"
        "assignments. Only an Administrator may use these actions.\n"
        "\n"
        "actions:\n"
        "  create --name NAME [--id ID] [--role ROLE[@SCOPE]]...\n"
        "                  create a principal and print its token (store it now: it cannot be\n"
        "                  shown again)\n"
        "  list            every principal with its roles\n"
        "  show ID         one principal\n"
        "  delete ID       delete a principal; its token stops working at once\n"
        "\n"
        "roles (see docs/vault.md for what each allows):\n"
        "  Administrator, Crypto Officer, Crypto User, Crypto Service Release User,\n"
        "  Crypto Auditor, Secrets Officer, Secrets User\n"
        "scopes: / (the whole vault, the default), /keys/NAME, /secrets/NAME\n"
        "\n"
        "options:\n"
        "  --url URL            the vault, https://HOST:PORT (env CLOISTER_URL)\n"
        "  --token TOKEN        an Administrator's bearer token (env CLOISTER_TOKEN);\n"
        "                       --token-file FILE reads it from a file instead\n"
        "  --ca FILE            CA certificate to pin, e.g. the server's DIR/ca.pem\n"
        "                       (env CLOISTER_CA)\n"
        "  --json               print the server's JSON (for scripts; create's JSON has the\n"
        "                       token in \"token\")\n"
        "\n"
        "examples:\n"
        "  cloister principal create --name billing-app --role 'Secrets User@/secrets/db-password'\n"
        "  cloister principal create --name ops --role 'Crypto Officer' --role 'Secrets Officer'\n"
        "  cloister principal delete p-3f9a0c1d2e4b5a69\n"
        "\n"
        "exit status: 0 success, 1 the request failed (the server's message is shown), 2 usage.\n");
}

struct opts {
    struct clst_client_config cfg;
    const char *token_file;
    bool json;
    const char *id_arg; /* positional */
    const char *name;
    const char *id;
    const char *roles[ROLES_MAX];
    size_t role_count;
};

static int
parse(int argc, char **argv, struct opts *o)
{
    const struct cli_opt_slot valued[] = {
        {"--url", &o->cfg.url},     {"--token-file", &o->token_file},
        {"--token", &o->cfg.token}, {"--ca", &o->cfg.ca_file},
        {"--name", &o->name},       {"--id", &o->id},
    };
    bool missing = false;
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
        if (matched) {
            continue;
        }
        if ((v = cli_opt_arg(argc, argv, &i, "--role", &missing)) != NULL) {
            if (o->role_count == ROLES_MAX) {
                return cli_usage_error(CMD, "at most %d --role options", ROLES_MAX);
            }
            o->roles[o->role_count++] = v;
        } else if (missing) {
            return cli_usage_error(CMD, "%s needs a value", a);
        } else if (strcmp(a, "--json") == 0) {
            o->json = true;
        } else if ((rc = cli_positional(CMD, a, &o->id_arg)) != CLI_EXIT_OK) {
            return rc;
        }
    }
    return CLI_EXIT_OK;
}

static void
print_roles(json_t *p, const char *indent)
{
    size_t i;
    json_t *r;
    json_t *roles = json_object_get(p, "roles");
    if (json_array_size(roles) == 0) {
        printf("%s(no roles)\n", indent);
    }
    json_array_foreach (roles, i, r) {
        const char *role = json_string_value(json_object_get(r, "role"));
        const char *scope = json_string_value(json_object_get(r, "scope"));
        printf("%s%s at %s\n", indent, role != NULL ? role : "?", scope != NULL ? scope : "?");
    }
}

static void
print_principal(json_t *p)
{
    const char *id = json_string_value(json_object_get(p, "id"));
    const char *name = json_string_value(json_object_get(p, "name"));
    json_t *created = json_object_get(p, "created");
    char t[32] = "-";
    if (json_is_integer(created)) {
        clst_time_format(json_integer_value(created), t, sizeof t);
    }
    printf("id       %s\nname     %s\nenabled  %s\ncreated  %s\nroles\n", id != NULL ? id : "?",
           name != NULL ? name : "?", json_is_true(json_object_get(p, "enabled")) ? "yes" : "no",
           t);
    print_roles(p, "  ");
}

/* "ROLE" or "ROLE@SCOPE" → {"role": ROLE, "scope": SCOPE or "/"}. */
static json_t *
role_json(const char *spec)
{
    const char *at = strchr(spec, '@');
    size_t n = at != NULL ? (size_t)(at - spec) : strlen(spec);
    if (n == 0 || (at != NULL && at[1] == '\0')) {
        return NULL;
    }
    json_t *role = json_stringn(spec, n);
    json_t *scope = json_string(at != NULL ? at + 1 : "/");
    json_t *j = json_object();
    if (role == NULL || scope == NULL || j == NULL) {
        json_decref(role);
        json_decref(scope);
        json_decref(j);
        return NULL;
    }
    json_object_set_new(j, "role", role);
    json_object_set_new(j, "scope", scope);
    return j;
}

static int
do_create(struct clst_client *c, const struct opts *o)
{
    struct clst_err err = {0};
    json_t *body = json_object();
    json_t *roles = json_array();
    json_t *resp = NULL;
    int rc = CLI_EXIT_FAIL;
    if (body == NULL || roles == NULL) {
        rc = cli_failf(CMD, "out of memory");
        goto out;
    }
    for (size_t k = 0; k < o->role_count; k++) {
        json_t *r = role_json(o->roles[k]);
        if (r == NULL) {
            rc = cli_usage_error(CMD, "--role takes ROLE or ROLE@SCOPE, e.g. 'Secrets User@/secrets/db'");
            goto out;
        }
        json_array_append_new(roles, r);
    }
    json_object_set_new(body, "name", json_string(o->name));
    if (o->id != NULL) {
        json_object_set_new(body, "id", json_string(o->id));
    }
    json_object_set(body, "roles", roles);
    if (clst_client_call(c, "POST", "/principals", NULL, body, &resp, &err) != CLST_OK) {
        rc = cli_fail(CMD, &err);
        goto out;
    }
    const char *token = json_string_value(json_object_get(resp, "token"));
    if (token == NULL) {
        rc = cli_failf(CMD, "the server's answer has no token");
        goto out;
    }
    if (o->json) {
        cli_print_json(resp);
    } else {
        print_principal(resp);
        printf("token    %s\n\nThe token is shown only this once: store it now (e.g. in "
               "CLOISTER_TOKEN or a 0600 file for --token-file).\n",
               token);
    }
    rc = CLI_EXIT_OK;
out:
    json_decref(resp);
    json_decref(roles);
    json_decref(body);
    return rc;
}

static int
do_list(struct clst_client *c, const struct opts *o)
{
    json_t *all = NULL;
    int rc = cli_vault_fetch_all(CMD, c, "/principals", &all);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    if (o->json) {
        cli_print_json_list(all);
    } else {
        size_t i;
        json_t *p;
        printf("%-24s  %-7s  %s\n", "ID", "ENABLED", "NAME / ROLES");
        json_array_foreach (all, i, p) {
            const char *id = json_string_value(json_object_get(p, "id"));
            const char *name = json_string_value(json_object_get(p, "name"));
            printf("%-24s  %-7s  %s\n", id != NULL ? id : "?",
                   json_is_true(json_object_get(p, "enabled")) ? "yes" : "no",
                   name != NULL ? name : "?");
            print_roles(p, "                                   ");
        }
    }
    json_decref(all);
    return CLI_EXIT_OK;
}

static int
do_one(struct clst_client *c, const struct opts *o, const char *method)
{
    struct clst_err err = {0};
    struct clst_buf path;
    json_t *resp = NULL;
    int rc = CLI_EXIT_FAIL;
    clst_buf_init(&path, 512);
    if (clst_buf_append_str(&path, "/principals/") != CLST_OK ||
        clst_client_path_escape(o->id_arg, &path) != CLST_OK || clst_buf_terminate(&path) != CLST_OK) {
        rc = cli_failf(CMD, "the id is too long");
        goto out;
    }
    if (clst_client_call(c, method, (const char *)path.data, NULL, NULL, &resp, &err) != CLST_OK) {
        rc = cli_fail(CMD, &err);
        goto out;
    }
    if (o->json) {
        cli_print_json(resp);
    } else if (strcmp(method, "DELETE") == 0) {
        printf("principal %s deleted; its token no longer works\n", o->id_arg);
    } else {
        print_principal(resp);
    }
    rc = CLI_EXIT_OK;
out:
    json_decref(resp);
    clst_buf_cleanup(&path);
    return rc;
}

int
cmd_principal(int argc, char **argv)
{
    struct opts o;
    struct clst_client *c = NULL;
    int rc;
    memset(&o, 0, sizeof o);
    static const char *const ACTIONS[] = {"create", "list", "show", "get", "delete"};
    if (cli_action_done(CMD, argc, argv, usage, ACTIONS, sizeof ACTIONS / sizeof ACTIONS[0], &rc)) {
        return rc;
    }
    const char *action = argv[1];
    bool create = strcmp(action, "create") == 0;
    bool list = strcmp(action, "list") == 0;
    bool show = strcmp(action, "show") == 0 || strcmp(action, "get") == 0;
    bool del = strcmp(action, "delete") == 0;
    if ((rc = parse(argc, argv, &o)) != CLI_EXIT_OK) {
        return rc;
    }
    if ((show || del) && o.id_arg == NULL) {
        return cli_usage_error(CMD, "%s needs a principal ID (see 'cloister principal list')",
                               action);
    }
    if ((create || list) && o.id_arg != NULL) {
        return cli_usage_error(CMD, "unexpected argument '%s'", o.id_arg);
    }
    if (create && o.name == NULL) {
        return cli_usage_error(CMD, "create needs --name NAME");
    }
    if (!create && (o.name != NULL || o.id != NULL || o.role_count > 0)) {
        return cli_usage_error(CMD, "--name, --id and --role belong to create");
    }
    if ((rc = cli_vault_client_open(CMD, &o.cfg, o.token_file, &c)) != CLI_EXIT_OK) {
        return rc;
    }
    if (create) {
        rc = do_create(c, &o);
    } else if (list) {
        rc = do_list(c, &o);
    } else {
        rc = do_one(c, &o, del ? "DELETE" : "GET");
    }
    clst_client_free(c);
    return rc;
}
