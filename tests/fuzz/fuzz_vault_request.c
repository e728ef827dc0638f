/*
 * Fuzz harness for the vault's request parsers (src/vault/rest_secrets.c, rest_principals.c,
 * rest_common.c) and the paging tokens clients send back as $skiptoken (src/vault/store.c).
 * The first byte, modulo 5, picks the parser; the rest is its input:
 *
 *   0  secret set body        clst_vault_secret_body_parse(…, for_update = false)
 *   1  secret update body     clst_vault_secret_body_parse(…, for_update = true)
 *   2  principal create body  clst_vault_principal_body_parse
 *   3  a paging token         clst_vault_store_list / list_versions / list_deleted /
 *                             principal_list on a small store made at first use
 *   4  a JSON object          clst_vault_attrs_from_json and clst_vault_tags_parse
 *
 * The corpus files start with 'A'..'E' (65..69, i.e. 0..4). Whatever parses must satisfy the
 * documented limits; a violation aborts.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vault/rest_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- a store for the token parser, made once -------------------------------------------------- */

static char g_dir[64];
static struct clst_vault_masterkey *g_mk;
static struct clst_vault_store *g_store;
static struct clst_clock g_clock;

static void
remove_store(void)
{
    const char *files[] = {"vault.db", "vault.db-wal", "vault.db-shm", "master.key"};
    char path[128];
    clst_vault_store_close(g_store);
    clst_vault_masterkey_free(g_mk);
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", g_dir, files[i]);
        unlink(path);
    }
    rmdir(g_dir);
}

static struct clst_vault_store *
store(void)
{
    char key[128];
    char db[128];
    if (g_store != NULL) {
        return g_store;
    }
    snprintf(g_dir, sizeof g_dir, "/tmp/clst-fuzz-vault-XXXXXX");
    if (mkdtemp(g_dir) == NULL) {
        abort();
    }
    snprintf(key, sizeof key, "%s/master.key", g_dir);
    snprintf(db, sizeof db, "%s/vault.db", g_dir);
    clst_clock_fixed_init(&g_clock, 1700000000);
    struct clst_vault_sqlite_options opt = {.path = db};
    if (clst_vault_masterkey_file_create(key, NULL) != CLST_OK ||
        clst_vault_masterkey_file_load(key, &g_mk, NULL) != CLST_OK ||
        clst_vault_store_open_sqlite(&opt, g_mk, &g_clock, &g_store, NULL) != CLST_OK) {
        abort();
    }
    atexit(remove_store);
    /* Three secrets (one with two versions, one deleted) and two principals, so that every
     * listing has more than one page at max_results 1. */
    const char *names[] = {"a", "b", "c"};
    for (size_t i = 0; i < 3; i++) {
        struct clst_vault_object o;
        memset(&o, 0, sizeof o);
        o.kind = CLST_VAULT_KIND_SECRET;
        snprintf(o.name, sizeof o.name, "%s", names[i]);
        o.attrs.enabled = true;
        for (int v = 0; v < (i == 0 ? 2 : 1); v++) {
            if (clst_vault_store_put(g_store, &o, (const uint8_t *)"v", 1, NULL, NULL) != CLST_OK) {
                abort();
            }
        }
    }
    if (clst_vault_store_delete(g_store, CLST_VAULT_KIND_SECRET, "c", 7, NULL, NULL) != CLST_OK) {
        abort();
    }
    for (int i = 0; i < 2; i++) {
        struct clst_vault_principal p;
        memset(&p, 0, sizeof p);
        snprintf(p.id, sizeof p.id, "p%d", i);
        snprintf(p.name, sizeof p.name, "fuzz %d", i);
        memset(p.token_hash, i + 1, sizeof p.token_hash);
        p.enabled = true;
        if (clst_vault_store_principal_put(g_store, &p, NULL) != CLST_OK) {
            abort();
        }
    }
    return g_store;
}

/* ---- checks on what parsed -------------------------------------------------------------------- */

static void
check_tags_text(const char *text)
{
    if (text == NULL) {
        return;
    }
    json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
    if (j == NULL || !json_is_object(j) || json_object_size(j) > CLST_VAULT_TAG_COUNT_MAX ||
        strlen(text) > CLST_VAULT_TAGS_MAX) {
        abort();
    }
    json_decref(j);
}

static void
fuzz_secret_body(json_t *j, bool update)
{
    struct clst_vault_secret_body b;
    struct clst_err err;
    memset(&b, 0, sizeof b);
    b.attrs.enabled = true;
    if (clst_vault_secret_body_parse(j, update, &b, &err) == CLST_OK) {
        if (update && b.has_value) {
            abort();
        }
        if (!update && (!b.has_value || b.value_size > CLST_VAULT_SECRET_VALUE_MAX ||
                        strlen(b.value) != b.value_size)) {
            abort();
        }
        if (b.has_content_type && strlen(b.content_type) > CLST_VAULT_CONTENT_TYPE_MAX) {
            abort();
        }
        if (b.attrs.nbf < 0 || b.attrs.exp < 0 ||
            (b.attrs.nbf != 0 && b.attrs.exp != 0 && b.attrs.nbf > b.attrs.exp &&
             (b.fields & CLST_VAULT_UPDATE_NBF) && (b.fields & CLST_VAULT_UPDATE_EXP))) {
            abort();
        }
        if ((b.fields & CLST_VAULT_UPDATE_TAGS) != 0 && b.tags == NULL) {
            abort();
        }
        check_tags_text(b.tags);
    } else if (err.status == CLST_OK || err.msg[0] == '\0') {
        abort(); /* every refusal says why */
    }
    clst_vault_secret_body_cleanup(&b);
}

static void
fuzz_principal_body(json_t *j)
{
    struct clst_vault_principal_body b;
    struct clst_err err;
    if (clst_vault_principal_body_parse(j, &b, &err) == CLST_OK) {
        if (b.name[0] == '\0' || b.role_count > CLST_VAULT_ROLES_MAX ||
            (b.role_count > 0 && b.roles == NULL)) {
            abort();
        }
        for (size_t i = 0; i < b.role_count; i++) {
            if (!clst_vault_role_valid(b.roles[i].role) ||
                !clst_vault_role_scope_ok(b.roles[i].role, b.roles[i].scope)) {
                abort();
            }
            for (size_t k = 0; k < i; k++) {
                if (strcmp(b.roles[i].role, b.roles[k].role) == 0 &&
                    strcmp(b.roles[i].scope, b.roles[k].scope) == 0) {
                    abort();
                }
            }
        }
    } else if (err.msg[0] == '\0') {
        abort();
    }
    clst_vault_principal_body_cleanup(&b);
}

static void
fuzz_attrs_tags(json_t *j)
{
    struct clst_vault_attrs a;
    struct clst_err err;
    unsigned fields = 0;
    char *text = NULL;
    memset(&a, 0, sizeof a);
    if (clst_vault_attrs_from_json(j, true, &a, &fields, &err) == CLST_OK) {
        if ((fields & ~(CLST_VAULT_UPDATE_ENABLED | CLST_VAULT_UPDATE_NBF | CLST_VAULT_UPDATE_EXP |
                        CLST_VAULT_UPDATE_EXPORTABLE)) != 0 ||
            a.nbf < 0 || a.exp < 0) {
            abort();
        }
        json_t *back = clst_vault_attrs_to_json(&a, CLST_VAULT_KIND_KEY);
        if (back == NULL) {
            abort();
        }
        json_decref(back);
    }
    if (clst_vault_tags_parse(j, &text, &err) == CLST_OK) {
        check_tags_text(text);
        json_t *back = clst_vault_tags_to_json(text);
        /* Canonical text round-trips to an equal object (NULL for an empty one). */
        if ((back == NULL) != (json_object_size(j) == 0) || (back != NULL && !json_equal(back, j))) {
            abort();
        }
        json_decref(back);
        free(text);
    }
}

static void
fuzz_token(const char *token)
{
    struct clst_vault_store *s = store();
    struct clst_vault_object_list list;
    struct clst_vault_principal_list plist;
    struct clst_err err;
    enum clst_status st;

    memset(&list, 0, sizeof list);
    st = clst_vault_store_list(s, CLST_VAULT_KIND_SECRET, 1, token, &list, &err);
    if (st == CLST_OK && list.count > 1) {
        abort();
    }
    clst_vault_object_list_cleanup(&list);
    memset(&list, 0, sizeof list);
    st = clst_vault_store_list_versions(s, CLST_VAULT_KIND_SECRET, "a", 1, token, &list, &err);
    if (st == CLST_OK && list.count > 1) {
        abort();
    }
    clst_vault_object_list_cleanup(&list);
    memset(&list, 0, sizeof list);
    st = clst_vault_store_list_deleted(s, CLST_VAULT_KIND_SECRET, 1, token, &list, &err);
    clst_vault_object_list_cleanup(&list);
    memset(&plist, 0, sizeof plist);
    st = clst_vault_store_principal_list(s, 1, token, &plist, &err);
    if (st == CLST_OK && plist.count > 1) {
        abort();
    }
    clst_vault_principal_list_cleanup(&plist);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0 || size > 64 * 1024) {
        return 0;
    }
    unsigned mode = data[0] % 5u;
    const char *text = (const char *)data + 1;
    size_t n = size - 1;

    if (mode == 3) {
        char token[CLST_VAULT_TOKEN_MAX + 2];
        if (n > CLST_VAULT_TOKEN_MAX + 1 || memchr(text, '\0', n) != NULL) {
            return 0;
        }
        memcpy(token, text, n);
        token[n] = '\0';
        fuzz_token(token);
        return 0;
    }
    json_t *j = json_loadb(text, n, JSON_REJECT_DUPLICATES, NULL);
    if (j == NULL) {
        return 0;
    }
    switch (mode) {
    case 0:
        fuzz_secret_body(j, false);
        break;
    case 1:
        fuzz_secret_body(j, true);
        break;
    case 2:
        fuzz_principal_body(j);
        break;
    default:
        fuzz_attrs_tags(j);
        break;
    }
    json_decref(j);
    return 0;
}
