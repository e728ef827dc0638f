/* Helpers shared by the vault unit tests: a temporary directory with a master key file and a
 * SQLite store on a fixed clock, and object builders. Not part of libcloister. */
#ifndef CLST_VAULT_TEST_UTIL_H
#define CLST_VAULT_TEST_UTIL_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cloister/vault_store.h>

#define TV_T0 1700000000 /* the fixed clock's start */

struct tv_env {
    char dir[128];
    char db[192];
    char key[192];
    struct clst_vault_masterkey *mk;
    struct clst_vault_store *store;
    struct clst_clock clock;
};

/* Removes every file of dir (no subdirectories are made), then dir. */
static inline void
tv_rmdir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        return;
    }
    struct dirent *e;
    char path[512];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
            continue;
        }
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

/* A fresh directory with a master key file "master.key" (loaded into env->mk). */
static inline int
tv_env_init_key(struct tv_env *env)
{
    memset(env, 0, sizeof(*env));
    snprintf(env->dir, sizeof(env->dir), "/tmp/clst-vault-test-XXXXXX");
    if (mkdtemp(env->dir) == NULL) {
        return -1;
    }
    snprintf(env->db, sizeof(env->db), "%s/vault.db", env->dir);
    snprintf(env->key, sizeof(env->key), "%s/master.key", env->dir);
    clst_clock_fixed_init(&env->clock, TV_T0);
    if (clst_vault_masterkey_file_create(env->key, NULL) != CLST_OK ||
        clst_vault_masterkey_file_load(env->key, &env->mk, NULL) != CLST_OK) {
        return -1;
    }
    return 0;
}

static inline enum clst_status
tv_open(struct tv_env *env, unsigned readers, struct clst_err *err)
{
    struct clst_vault_sqlite_options opt = {
        .path = env->db, .busy_timeout_ms = 20000, .reader_count = readers};
    return clst_vault_store_open_sqlite(&opt, env->mk, &env->clock, &env->store, err);
}

/* Key directory + master key + an open store. */
static inline int
tv_env_init(struct tv_env *env)
{
    if (tv_env_init_key(env) != 0) {
        return -1;
    }
    struct clst_err err;
    if (tv_open(env, 0, &err) != CLST_OK) {
        fprintf(stderr, "open: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static inline void
tv_close(struct tv_env *env)
{
    clst_vault_store_close(env->store);
    env->store = NULL;
}

static inline void
tv_env_cleanup(struct tv_env *env)
{
    tv_close(env);
    clst_vault_masterkey_free(env->mk);
    env->mk = NULL;
    if (env->dir[0] != '\0') {
        tv_rmdir(env->dir);
    }
}

/* A key object with typical fields; strings are borrowed literals (never cleaned up). */
static inline struct clst_vault_object
tv_key(const char *name)
{
    struct clst_vault_object o;
    memset(&o, 0, sizeof(o));
    o.kind = CLST_VAULT_KIND_KEY;
    /* Bounded copy (test names are short); snprintf/strncpy trip -O2's truncation warnings. */
    size_t n = strlen(name);
    if (n >= sizeof(o.name)) {
        n = sizeof(o.name) - 1;
    }
    memcpy(o.name, name, n);
    o.name[n] = '\0';
    o.attrs.enabled = true;
    o.attrs.exportable = true;
    snprintf(o.attrs.recovery_level, sizeof(o.attrs.recovery_level), "Recoverable+Purgeable");
    o.attrs.recoverable_days = 90;
    snprintf(o.kty, sizeof(o.kty), "RSA");
    o.key_ops = (char *)"[\"sign\",\"verify\",\"wrapKey\",\"unwrapKey\"]";
    o.tags = (char *)"{\"team\":\"red\"}";
    o.release_policy = (char *)"{\"version\":\"1.0.0\",\"anyOf\":[]}";
    o.public_data = (uint8_t *)"{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\"}";
    o.public_size = strlen((const char *)o.public_data);
    return o;
}

static inline struct clst_vault_object
tv_secret(const char *name)
{
    struct clst_vault_object o;
    memset(&o, 0, sizeof(o));
    o.kind = CLST_VAULT_KIND_SECRET;
    /* Bounded copy (test names are short); snprintf/strncpy trip -O2's truncation warnings. */
    size_t n = strlen(name);
    if (n >= sizeof(o.name)) {
        n = sizeof(o.name) - 1;
    }
    memcpy(o.name, name, n);
    o.name[n] = '\0';
    o.attrs.enabled = true;
    snprintf(o.attrs.recovery_level, sizeof(o.attrs.recovery_level), "Recoverable+Purgeable");
    o.attrs.recoverable_days = 90;
    o.content_type = (char *)"text/plain";
    return o;
}

/* Puts a secret whose value is its name followed by "-value". */
static inline enum clst_status
tv_put_secret(struct clst_vault_store *s, const char *name, char *out_version)
{
    char value[256];
    struct clst_vault_object o = tv_secret(name);
    int n = snprintf(value, sizeof(value), "%s-value", name);
    return clst_vault_store_put(s, &o, (const uint8_t *)value, (size_t)n, out_version, NULL);
}

#endif /* CLST_VAULT_TEST_UTIL_H */
