/* Unit tests for src/vault/store.c (the store's front end, over the SQLite backend): CRUD of
 * keys, secrets, principals and settings; versions and their order; updates and the immutable
 * release policy; paging with continuation tokens (and altered or foreign tokens refused); soft
 * delete, recover, purge and scheduled purge; validation of every input; reopening with the right
 * and the wrong master key. Storage-level tampering is in test_store_sqlite.c. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <cloister/crypto.h>

#include "test_util.h"
#include "vault_test_util.h"

#define KEY    CLST_VAULT_KIND_KEY
#define SECRET CLST_VAULT_KIND_SECRET

static int
setup(void **state)
{
    struct tv_env *env = calloc(1, sizeof(*env));
    if (env == NULL || tv_env_init(env) != 0) {
        free(env);
        return -1;
    }
    *state = env;
    return 0;
}

static int
teardown(void **state)
{
    struct tv_env *env = *state;
    tv_env_cleanup(env);
    free(env);
    return 0;
}

static void
test_key_crud(void **state)
{
    struct tv_env *env = *state;
    struct clst_vault_object in = tv_key("RsaKey-1");
    struct clst_vault_object out;
    struct clst_secret *value = NULL;
    struct clst_err err;
    char version[CLST_VAULT_VERSION_SIZE + 1];
    static const uint8_t der[] = {0x30, 0x82, 0x01, 0x00, 0x02, 0x01, 0x00, 0xde, 0xad};

    in.attrs.nbf = TV_T0 - 10;
    in.attrs.exp = TV_T0 + 86400;
    in.policy_immutable = true;
    assert_int_equal(clst_vault_store_put(env->store, &in, der, sizeof(der), version, &err),
                     CLST_OK);
    assert_true(clst_vault_version_valid(version));

    memset(&out, 0, sizeof(out));
    assert_int_equal(clst_vault_store_get(env->store, KEY, "RsaKey-1", NULL, &out, &value, &err),
                     CLST_OK);
    assert_int_equal(out.kind, KEY);
    assert_string_equal(out.name, "RsaKey-1");
    assert_string_equal(out.version, version);
    assert_true(out.attrs.enabled);
    assert_int_equal(out.attrs.nbf, TV_T0 - 10);
    assert_int_equal(out.attrs.exp, TV_T0 + 86400);
    assert_int_equal(out.attrs.created, TV_T0);
    assert_int_equal(out.attrs.updated, TV_T0);
    assert_true(out.attrs.exportable);
    assert_string_equal(out.attrs.recovery_level, "Recoverable+Purgeable");
    assert_int_equal(out.attrs.recoverable_days, 90);
    assert_string_equal(out.kty, "RSA");
    assert_string_equal(out.key_ops, in.key_ops);
    assert_string_equal(out.tags, in.tags);
    assert_string_equal(out.release_policy, in.release_policy);
    assert_true(out.policy_immutable);
    assert_null(out.content_type);
    assert_int_equal(out.public_size, in.public_size);
    assert_memory_equal(out.public_data, in.public_data, in.public_size);
    assert_int_equal(out.deleted_date, 0);
    assert_int_equal(value->size, sizeof(der));
    assert_memory_equal(value->ptr, der, sizeof(der));
    clst_secret_free(value);
    value = NULL;
    clst_vault_object_cleanup(&out);

    /* By explicit version; metadata only (no value requested). */
    assert_int_equal(clst_vault_store_get(env->store, KEY, "RsaKey-1", version, &out, NULL, &err),
                     CLST_OK);
    assert_string_equal(out.version, version);
    clst_vault_object_cleanup(&out);

    /* Not found: other name, other version, and the same name in the secrets namespace. */
    assert_int_equal(clst_vault_store_get(env->store, KEY, "nope", NULL, &out, NULL, &err),
                     CLST_E_NOTFOUND);
    assert_int_equal(clst_vault_store_get(env->store, KEY, "RsaKey-1",
                                          "00000000000000000000000000000000", &out, NULL, &err),
                     CLST_E_NOTFOUND);
    assert_int_equal(clst_vault_store_get(env->store, SECRET, "RsaKey-1", NULL, &out, NULL, &err),
                     CLST_E_NOTFOUND);

    /* An oct key without public data, caller-chosen version. */
    struct clst_vault_object oct = tv_key("aes");
    snprintf(oct.kty, sizeof(oct.kty), "oct");
    oct.public_data = NULL;
    oct.public_size = 0;
    oct.release_policy = NULL;
    oct.tags = NULL;
    snprintf(oct.version, sizeof(oct.version), "%s", "abcdefabcdefabcdefabcdefabcdef01");
    uint8_t aes[32];
    memset(aes, 7, sizeof(aes));
    assert_int_equal(clst_vault_store_put(env->store, &oct, aes, sizeof(aes), NULL, &err), CLST_OK);
    assert_int_equal(clst_vault_store_get(env->store, KEY, "AES", NULL, &out, &value, &err),
                     CLST_OK);
    assert_string_equal(out.version, "abcdefabcdefabcdefabcdefabcdef01");
    assert_null(out.public_data);
    assert_int_equal(out.public_size, 0);
    assert_null(out.tags);
    assert_null(out.release_policy);
    assert_memory_equal(value->ptr, aes, sizeof(aes));
    clst_secret_free(value);
    clst_vault_object_cleanup(&out);
    /* The same version again is a conflict. */
    assert_int_equal(clst_vault_store_put(env->store, &oct, aes, sizeof(aes), NULL, &err),
                     CLST_E_CONFLICT);
    assert_non_null(strstr(err.msg, "exists already"));
}

static void
test_secret_crud_and_namespaces(void **state)
{
    struct tv_env *env = *state;
    struct clst_vault_object s = tv_secret("db-password");
    struct clst_vault_object k = tv_key("db-password");
    struct clst_vault_object out;
    struct clst_secret *value = NULL;
    struct clst_err err;

    assert_int_equal(
        clst_vault_store_put(env->store, &s, (const uint8_t *)"hunter2", 7, NULL, &err), CLST_OK);
    /* Keys and secrets are separate namespaces. */
    assert_int_equal(clst_vault_store_put(env->store, &k, (const uint8_t *)"k", 1, NULL, &err),
                     CLST_OK);
    assert_int_equal(
        clst_vault_store_get(env->store, SECRET, "db-password", "", &out, &value, &err), CLST_OK);
    assert_string_equal(out.content_type, "text/plain");
    assert_string_equal(out.kty, "");
    assert_null(out.key_ops);
    assert_int_equal(value->size, 7);
    assert_memory_equal(value->ptr, "hunter2", 7);
    clst_secret_free(value);
    clst_vault_object_cleanup(&out);
    assert_int_equal(clst_vault_store_get(env->store, KEY, "db-password", "", &out, &value, &err),
                     CLST_OK);
    assert_memory_equal(value->ptr, "k", 1);
    clst_secret_free(value);
    clst_vault_object_cleanup(&out);

    /* An empty secret value is allowed. */
    struct clst_vault_object e = tv_secret("empty");
    e.content_type = NULL;
    assert_int_equal(clst_vault_store_put(env->store, &e, NULL, 0, NULL, &err), CLST_OK);
    assert_int_equal(clst_vault_store_get(env->store, SECRET, "empty", "", &out, &value, &err),
                     CLST_OK);
    assert_int_equal(value->size, 0);
    assert_null(out.content_type);
    clst_secret_free(value);
    clst_vault_object_cleanup(&out);
}

static void
test_names_are_case_insensitive(void **state)
{
    struct tv_env *env = *state;
    struct clst_vault_object out;
    struct clst_vault_object_list list;
    struct clst_err err;
    char v1[33], v2[33];

    assert_int_equal(tv_put_secret(env->store, "MySecret", v1), CLST_OK);
    /* Another case of the same name adds a version to the same object. */
    struct clst_vault_object o = tv_secret("MYSECRET");
    assert_int_equal(clst_vault_store_put(env->store, &o, (const uint8_t *)"x", 1, v2, &err),
                     CLST_OK);
    assert_int_equal(clst_vault_store_get(env->store, SECRET, "mysecret", NULL, &out, NULL, &err),
                     CLST_OK);
    assert_string_equal(out.name, "MySecret"); /* the case given at creation */
    assert_string_equal(out.version, v2);
    clst_vault_object_cleanup(&out);
    assert_int_equal(
        clst_vault_store_list_versions(env->store, SECRET, "mYsEcReT", 0, NULL, &list, &err),
        CLST_OK);
    assert_int_equal(list.count, 2);
    assert_string_equal(list.items[0].version, v1);
    assert_string_equal(list.items[1].version, v2);
    clst_vault_object_list_cleanup(&list);
    assert_int_equal(clst_vault_store_list(env->store, SECRET, 0, NULL, &list, &err), CLST_OK);
    assert_int_equal(list.count, 1);
    clst_vault_object_list_cleanup(&list);
}

static void
test_versions_order(void **state)
{
    struct tv_env *env = *state;
    struct clst_vault_object out;
    struct clst_secret *value = NULL;
    struct clst_vault_object_list list;
    struct clst_err err;
    char v[3][33];

    for (int i = 0; i < 3; i++) {
        struct clst_vault_object o = tv_key("rotating");
        char val[8];
        snprintf(val, sizeof(val), "v%d", i);
        env->clock.fixed = TV_T0 + i * 100;
        assert_int_equal(clst_vault_store_put(env->store, &o, (const uint8_t *)val, 2, v[i], &err),
                         CLST_OK);
    }
    /* Latest = the last one created (even though version ids are random). */
    assert_int_equal(clst_vault_store_get(env->store, KEY, "rotating", NULL, &out, &value, &err),
                     CLST_OK);
    assert_string_equal(out.version, v[2]);
    assert_int_equal(out.attrs.created, TV_T0 + 200);
    assert_memory_equal(value->ptr, "v2", 2);
    clst_secret_free(value);
    clst_vault_object_cleanup(&out);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(
            clst_vault_store_get(env->store, KEY, "rotating", v[i], &out, &value, &err), CLST_OK);
        assert_int_equal(out.attrs.created, TV_T0 + i * 100);
        assert_int_equal(value->ptr[1], '0' + i);
        clst_secret_free(value);
        clst_vault_object_cleanup(&out);
    }
    assert_int_equal(
        clst_vault_store_list_versions(env->store, KEY, "rotating", 0, NULL, &list, &err), CLST_OK);
    assert_int_equal(list.count, 3);
    assert_null(list.next);
    for (int i = 0; i < 3; i++) {
        assert_string_equal(list.items[i].version, v[i]);
    }
    clst_vault_object_list_cleanup(&list);
    /* The live listing shows the latest version. */
    assert_int_equal(clst_vault_store_list(env->store, KEY, 0, NULL, &list, &err), CLST_OK);
    assert_int_equal(list.count, 1);
    assert_string_equal(list.items[0].version, v[2]);
    clst_vault_object_list_cleanup(&list);
    assert_int_equal(
        clst_vault_store_list_versions(env->store, KEY, "missing", 0, NULL, &list, &err),
        CLST_E_NOTFOUND);
}

static void
test_update(void **state)
{
    struct tv_env *env = *state;
    struct clst_vault_object out;
    struct clst_vault_object changes;
    struct clst_err err;
    char v1[33], v2[33];
    struct clst_vault_object k = tv_key("updatable");

    assert_int_equal(clst_vault_store_put(env->store, &k, (const uint8_t *)"a", 1, v1, &err),
                     CLST_OK);
    assert_int_equal(clst_vault_store_put(env->store, &k, (const uint8_t *)"b", 1, v2, &err),
                     CLST_OK);
    memset(&changes, 0, sizeof(changes));
    changes.attrs.enabled = false;
    changes.attrs.exp = TV_T0 + 5;
    changes.tags = (char *)"{\"team\":\"blue\"}";
    changes.key_ops = (char *)"[\"sign\"]"; /* not in the mask: must not change */
    env->clock.fixed = TV_T0 + 1000;
    assert_int_equal(clst_vault_store_update(env->store, KEY, "UPDATABLE", v1, &changes,
                                             CLST_VAULT_UPDATE_ENABLED | CLST_VAULT_UPDATE_EXP |
                                                 CLST_VAULT_UPDATE_TAGS,
                                             &out, &err),
                     CLST_OK);
    assert_false(out.attrs.enabled);
    assert_int_equal(out.attrs.exp, TV_T0 + 5);
    assert_int_equal(out.attrs.created, TV_T0);
    assert_int_equal(out.attrs.updated, TV_T0 + 1000);
    assert_string_equal(out.tags, "{\"team\":\"blue\"}");
    assert_string_equal(out.key_ops, k.key_ops);
    clst_vault_object_cleanup(&out);
    /* Persisted, and the other version untouched. */
    assert_int_equal(clst_vault_store_get(env->store, KEY, "updatable", v1, &out, NULL, &err),
                     CLST_OK);
    assert_false(out.attrs.enabled);
    assert_string_equal(out.tags, "{\"team\":\"blue\"}");
    clst_vault_object_cleanup(&out);
    assert_int_equal(clst_vault_store_get(env->store, KEY, "updatable", v2, &out, NULL, &err),
                     CLST_OK);
    assert_true(out.attrs.enabled);
    assert_string_equal(out.tags, k.tags);
    clst_vault_object_cleanup(&out);

    /* Removing tags (NULL), latest version by default, out may be NULL. */
    changes.tags = NULL;
    assert_int_equal(clst_vault_store_update(env->store, KEY, "updatable", NULL, &changes,
                                             CLST_VAULT_UPDATE_TAGS, NULL, &err),
                     CLST_OK);
    assert_int_equal(clst_vault_store_get(env->store, KEY, "updatable", NULL, &out, NULL, &err),
                     CLST_OK);
    assert_null(out.tags);
    assert_string_equal(out.version, v2);
    clst_vault_object_cleanup(&out);

    /* Bad updates. */
    assert_int_equal(clst_vault_store_update(env->store, KEY, "missing", NULL, &changes,
                                             CLST_VAULT_UPDATE_TAGS, NULL, &err),
                     CLST_E_NOTFOUND);
    assert_int_equal(
        clst_vault_store_update(env->store, KEY, "updatable", NULL, &changes, 0x100, NULL, &err),
        CLST_E_INVAL);
    changes.content_type = (char *)"text/plain";
    assert_int_equal(clst_vault_store_update(env->store, KEY, "updatable", NULL, &changes,
                                             CLST_VAULT_UPDATE_CONTENT_TYPE, NULL, &err),
                     CLST_E_INVAL);
    changes.content_type = NULL;
    changes.attrs.nbf = -5;
    assert_int_equal(clst_vault_store_update(env->store, KEY, "updatable", NULL, &changes,
                                             CLST_VAULT_UPDATE_NBF, NULL, &err),
                     CLST_E_INVAL);
}

static void
test_immutable_release_policy(void **state)
{
    struct tv_env *env = *state;
    struct clst_vault_object k = tv_key("sealed-policy");
    struct clst_vault_object changes;
    struct clst_vault_object out;
    struct clst_err err;

    k.policy_immutable = true;
    assert_int_equal(clst_vault_store_put(env->store, &k, (const uint8_t *)"x", 1, NULL, &err),
                     CLST_OK);
    memset(&changes, 0, sizeof(changes));
    changes.release_policy = (char *)"{\"version\":\"1.0.0\",\"anyOf\":[{\"authority\":\"x\"}]}";
    changes.policy_immutable = true;
    assert_int_equal(clst_vault_store_update(env->store, KEY, "sealed-policy", NULL, &changes,
                                             CLST_VAULT_UPDATE_POLICY, NULL, &err),
                     CLST_E_CONFLICT);
    assert_non_null(strstr(err.msg, "immutable"));
    /* Making it mutable again is a change too. */
    changes.release_policy = k.release_policy;
    changes.policy_immutable = false;
    assert_int_equal(clst_vault_store_update(env->store, KEY, "sealed-policy", NULL, &changes,
                                             CLST_VAULT_UPDATE_POLICY, NULL, &err),
                     CLST_E_CONFLICT);
    /* Removing it as well. */
    changes.release_policy = NULL;
    assert_int_equal(clst_vault_store_update(env->store, KEY, "sealed-policy", NULL, &changes,
                                             CLST_VAULT_UPDATE_POLICY, NULL, &err),
                     CLST_E_CONFLICT);
    /* The same policy, still immutable: allowed (idempotent update). */
    changes.release_policy = k.release_policy;
    changes.policy_immutable = true;
    assert_int_equal(clst_vault_store_update(env->store, KEY, "sealed-policy", NULL, &changes,
                                             CLST_VAULT_UPDATE_POLICY, NULL, &err),
                     CLST_OK);
    /* Other fields may still change. */
    changes.attrs.enabled = false;
    assert_int_equal(clst_vault_store_update(env->store, KEY, "sealed-policy", NULL, &changes,
                                             CLST_VAULT_UPDATE_ENABLED, &out, &err),
                     CLST_OK);
    assert_false(out.attrs.enabled);
    assert_string_equal(out.release_policy, k.release_policy);
    assert_true(out.policy_immutable);
    clst_vault_object_cleanup(&out);

    /* A mutable policy can be changed, then frozen. */
    struct clst_vault_object m = tv_key("mutable-policy");
    assert_int_equal(clst_vault_store_put(env->store, &m, (const uint8_t *)"x", 1, NULL, &err),
                     CLST_OK);
    changes.release_policy = (char *)"{\"v\":2}";
    changes.policy_immutable = true;
    assert_int_equal(clst_vault_store_update(env->store, KEY, "mutable-policy", NULL, &changes,
                                             CLST_VAULT_UPDATE_POLICY, &out, &err),
                     CLST_OK);
    assert_string_equal(out.release_policy, "{\"v\":2}");
    clst_vault_object_cleanup(&out);
    changes.release_policy = (char *)"{\"v\":3}";
    assert_int_equal(clst_vault_store_update(env->store, KEY, "mutable-policy", NULL, &changes,
                                             CLST_VAULT_UPDATE_POLICY, NULL, &err),
                     CLST_E_CONFLICT);
    /* Immutable without a policy is refused at creation. */
    struct clst_vault_object bad = tv_key("bad");
    bad.release_policy = NULL;
    bad.policy_immutable = true;
    assert_int_equal(clst_vault_store_put(env->store, &bad, (const uint8_t *)"x", 1, NULL, &err),
                     CLST_E_INVAL);
}

static void
test_validation(void **state)
{
    struct tv_env *env = *state;
    struct clst_vault_object o;
    struct clst_vault_object out;
    struct clst_vault_object_list list;
    struct clst_err err;
    char long_name[CLST_VAULT_NAME_MAX + 2];
    static const char *const bad_names[] = {"",    "a b",         "a_b",      "a.b",
                                            "a/b", "caf\xc3\xa9", "new\nline"};

    for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
        o = tv_key("x");
        snprintf(o.name, sizeof(o.name), "%s", bad_names[i]);
        assert_int_equal(clst_vault_store_put(env->store, &o, (const uint8_t *)"x", 1, NULL, &err),
                         CLST_E_INVAL);
        assert_int_equal(
            clst_vault_store_get(env->store, KEY, bad_names[i], NULL, &out, NULL, &err),
            CLST_E_INVAL);
    }
    memset(long_name, 'a', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    assert_false(clst_vault_name_valid(long_name));
    long_name[CLST_VAULT_NAME_MAX] = '\0';
    assert_true(clst_vault_name_valid(long_name));
    o = tv_key(long_name);
    assert_int_equal(clst_vault_store_put(env->store, &o, (const uint8_t *)"x", 1, NULL, &err),
                     CLST_OK);

    /* Versions: 32 lower-case hex. */
    assert_false(clst_vault_version_valid("ABCDEFABCDEFABCDEFABCDEFABCDEFAB"));
    assert_false(clst_vault_version_valid("abc"));
    assert_false(clst_vault_version_valid("0123456789abcdef0123456789abcdeg"));
    assert_false(clst_vault_version_valid("0123456789abcdef0123456789abcdef0"));
    o = tv_key("vers");
    snprintf(o.version, sizeof(o.version), "ABCDEF");
    assert_int_equal(clst_vault_store_put(env->store, &o, (const uint8_t *)"x", 1, NULL, &err),
                     CLST_E_INVAL);
    assert_int_equal(clst_vault_store_get(env->store, KEY, "vers", "xyz", &out, NULL, &err),
                     CLST_E_INVAL);

    /* Kind-specific fields. */
    o = tv_key("nokty");
    o.kty[0] = '\0';
    assert_int_equal(clst_vault_store_put(env->store, &o, (const uint8_t *)"x", 1, NULL, &err),
                     CLST_E_INVAL);
    o = tv_key("ct");
    o.content_type = (char *)"text/plain";
    assert_int_equal(clst_vault_store_put(env->store, &o, (const uint8_t *)"x", 1, NULL, &err),
                     CLST_E_INVAL);
    o = tv_secret("kty");
    snprintf(o.kty, sizeof(o.kty), "RSA");
    assert_int_equal(clst_vault_store_put(env->store, &o, (const uint8_t *)"x", 1, NULL, &err),
                     CLST_E_INVAL);
    o = tv_secret("ops");
    o.key_ops = (char *)"[]";
    assert_int_equal(clst_vault_store_put(env->store, &o, (const uint8_t *)"x", 1, NULL, &err),
                     CLST_E_INVAL);
    o = tv_secret("pol");
    o.release_policy = (char *)"{}";
    assert_int_equal(clst_vault_store_put(env->store, &o, (const uint8_t *)"x", 1, NULL, &err),
                     CLST_E_INVAL);
    o = tv_secret("kind");
    o.kind = (enum clst_vault_kind)7;
    assert_int_equal(clst_vault_store_put(env->store, &o, (const uint8_t *)"x", 1, NULL, &err),
                     CLST_E_INVAL);

    /* Size limits. */
    size_t big_size = CLST_VAULT_POLICY_MAX + 2;
    char *big = malloc(big_size);
    assert_non_null(big);
    memset(big, 'x', big_size - 1);
    big[big_size - 1] = '\0';
    o = tv_secret("bigvalue");
    assert_int_equal(clst_vault_store_put(env->store, &o, (const uint8_t *)big,
                                          CLST_VAULT_VALUE_MAX + 1, NULL, &err),
                     CLST_E_LIMIT);
    o = tv_key("bigpolicy");
    o.release_policy = big;
    assert_int_equal(clst_vault_store_put(env->store, &o, (const uint8_t *)"x", 1, NULL, &err),
                     CLST_E_LIMIT);
    o = tv_key("bigtags");
    big[CLST_VAULT_TAGS_MAX + 1] = '\0';
    o.tags = big;
    assert_int_equal(clst_vault_store_put(env->store, &o, (const uint8_t *)"x", 1, NULL, &err),
                     CLST_E_LIMIT);
    big[CLST_VAULT_TAGS_MAX] = '\0'; /* exactly at the limit is fine */
    assert_int_equal(clst_vault_store_put(env->store, &o, (const uint8_t *)"x", 1, NULL, &err),
                     CLST_OK);
    free(big);

    /* maxresults 1..25 (0 = 25). */
    assert_int_equal(clst_vault_store_list(env->store, KEY, 26, NULL, &list, &err), CLST_E_INVAL);
    assert_int_equal(clst_vault_store_list(env->store, KEY, 25, NULL, &list, &err), CLST_OK);
    clst_vault_object_list_cleanup(&list);

    /* Missing arguments. */
    assert_int_equal(clst_vault_store_put(env->store, NULL, (const uint8_t *)"x", 1, NULL, &err),
                     CLST_E_INVAL);
    assert_int_equal(clst_vault_store_get(env->store, KEY, "x", NULL, NULL, NULL, &err),
                     CLST_E_INVAL);
    assert_int_equal(clst_vault_store_delete(env->store, KEY, long_name, 0, NULL, &err),
                     CLST_E_INVAL);
    assert_int_equal(clst_vault_store_delete(env->store, KEY, long_name, 366, NULL, &err),
                     CLST_E_INVAL);
}

/* Collects every page of a listing; returns the number of pages. */
static int
collect_pages(struct tv_env *env, int listing, enum clst_vault_kind kind, const char *name,
              size_t page, char names[][CLST_VAULT_NAME_MAX + 1],
              char versions[][CLST_VAULT_VERSION_SIZE + 1], size_t cap, size_t *count)
{
    struct clst_vault_object_list list;
    struct clst_err err;
    char *token = NULL;
    int pages = 0;
    *count = 0;
    for (;;) {
        enum clst_status rc;
        if (listing == 0) {
            rc = clst_vault_store_list(env->store, kind, page, token, &list, &err);
        } else if (listing == 1) {
            rc = clst_vault_store_list_versions(env->store, kind, name, page, token, &list, &err);
        } else {
            rc = clst_vault_store_list_deleted(env->store, kind, page, token, &list, &err);
        }
        free(token);
        token = NULL;
        assert_int_equal(rc, CLST_OK);
        pages++;
        assert_true(list.count <= page);
        for (size_t i = 0; i < list.count; i++) {
            assert_true(*count < cap);
            snprintf(names[*count], CLST_VAULT_NAME_MAX + 1, "%s", list.items[i].name);
            snprintf(versions[*count], CLST_VAULT_VERSION_SIZE + 1, "%s", list.items[i].version);
            (*count)++;
        }
        if (list.next == NULL) {
            clst_vault_object_list_cleanup(&list);
            break;
        }
        assert_int_equal(list.count, page); /* only full pages have a successor */
        token = strdup(list.next);
        clst_vault_object_list_cleanup(&list);
    }
    return pages;
}

static void
test_paging(void **state)
{
    struct tv_env *env = *state;
    static char names[80][CLST_VAULT_NAME_MAX + 1];
    static char versions[80][CLST_VAULT_VERSION_SIZE + 1];
    size_t count = 0;
    struct clst_err err;

    /* 60 secrets, inserted out of order and in mixed case. */
    for (int i = 0; i < 60; i++) {
        char name[32];
        int n = (i * 37) % 60;
        snprintf(name, sizeof(name), "%s-%02d", n % 2 ? "Item" : "item", n);
        assert_int_equal(tv_put_secret(env->store, name, NULL), CLST_OK);
    }
    assert_int_equal(collect_pages(env, 0, SECRET, NULL, 25, names, versions, 80, &count), 3);
    assert_int_equal(count, 60);
    for (size_t i = 0; i < count; i++) {
        char expect[32];
        snprintf(expect, sizeof(expect), "%s-%02zu", i % 2 ? "Item" : "item", i);
        assert_string_equal(names[i], expect); /* every one, once, in case-insensitive order */
    }
    /* Page sizes that divide exactly: the last full page has no successor only when nothing
     * follows. */
    assert_int_equal(collect_pages(env, 0, SECRET, NULL, 20, names, versions, 80, &count), 3);
    assert_int_equal(count, 60);
    assert_int_equal(collect_pages(env, 0, SECRET, NULL, 1, names, versions, 80, &count), 60);
    /* No keys at all: one empty page. */
    assert_int_equal(collect_pages(env, 0, KEY, NULL, 25, names, versions, 80, &count), 1);
    assert_int_equal(count, 0);

    /* Versions: 30 of one key, pages of 10, oldest first. */
    char made[30][33];
    for (int i = 0; i < 30; i++) {
        struct clst_vault_object k = tv_key("many");
        assert_int_equal(
            clst_vault_store_put(env->store, &k, (const uint8_t *)"v", 1, made[i], &err), CLST_OK);
    }
    assert_int_equal(collect_pages(env, 1, KEY, "many", 10, names, versions, 80, &count), 3);
    assert_int_equal(count, 30);
    for (int i = 0; i < 30; i++) {
        assert_string_equal(versions[i], made[i]);
    }
}

static void
test_paging_tokens_are_checked(void **state)
{
    struct tv_env *env = *state;
    struct clst_vault_object_list list, other;
    struct clst_err err;

    for (int i = 0; i < 30; i++) {
        char name[16];
        snprintf(name, sizeof(name), "s%02d", i);
        assert_int_equal(tv_put_secret(env->store, name, NULL), CLST_OK);
        struct clst_vault_object k = tv_key(name);
        assert_int_equal(clst_vault_store_put(env->store, &k, (const uint8_t *)"v", 1, NULL, &err),
                         CLST_OK);
        assert_int_equal(clst_vault_store_put(env->store, &k, (const uint8_t *)"v", 1, NULL, &err),
                         CLST_OK);
    }
    assert_int_equal(clst_vault_store_list(env->store, SECRET, 10, NULL, &list, &err), CLST_OK);
    assert_non_null(list.next);
    char *tok = strdup(list.next);
    size_t len = strlen(tok);
    clst_vault_object_list_cleanup(&list);

    /* The genuine token works. */
    assert_int_equal(clst_vault_store_list(env->store, SECRET, 10, tok, &list, &err), CLST_OK);
    assert_string_equal(list.items[0].name, "s10");
    clst_vault_object_list_cleanup(&list);

    /* Each character changed (to another base64url character). */
    for (size_t i = 0; i < len; i++) {
        char *bad = strdup(tok);
        bad[i] = bad[i] == 'A' ? 'B' : 'A';
        enum clst_status rc = clst_vault_store_list(env->store, SECRET, 10, bad, &list, &err);
        assert_int_equal(rc, CLST_E_MALFORMED);
        assert_non_null(strstr(err.msg, "continuation token"));
        free(bad);
    }
    /* Truncated, extended, garbage, oversized. */
    char *cut = strdup(tok);
    cut[len - 1] = '\0';
    assert_int_equal(clst_vault_store_list(env->store, SECRET, 10, cut, &list, &err),
                     CLST_E_MALFORMED);
    cut[len / 2] = '\0';
    assert_int_equal(clst_vault_store_list(env->store, SECRET, 10, cut, &list, &err),
                     CLST_E_MALFORMED);
    free(cut);
    char ext[1024];
    snprintf(ext, sizeof(ext), "%sAA", tok);
    assert_int_equal(clst_vault_store_list(env->store, SECRET, 10, ext, &list, &err),
                     CLST_E_MALFORMED);
    assert_int_equal(clst_vault_store_list(env->store, SECRET, 10, "!!not base64!!", &list, &err),
                     CLST_E_MALFORMED);
    memset(ext, 'A', sizeof(ext) - 1);
    ext[sizeof(ext) - 1] = '\0';
    assert_int_equal(clst_vault_store_list(env->store, SECRET, 10, ext, &list, &err),
                     CLST_E_MALFORMED);

    /* From another listing: secrets token on keys, on deleted secrets, on principals. */
    assert_int_equal(clst_vault_store_list(env->store, KEY, 10, tok, &list, &err),
                     CLST_E_MALFORMED);
    assert_int_equal(clst_vault_store_list_deleted(env->store, SECRET, 10, tok, &list, &err),
                     CLST_E_MALFORMED);
    struct clst_vault_principal_list pl;
    assert_int_equal(clst_vault_store_principal_list(env->store, 10, tok, &pl, &err),
                     CLST_E_MALFORMED);
    free(tok);

    /* A versions token of one key is not valid for another key. */
    assert_int_equal(clst_vault_store_list_versions(env->store, KEY, "s01", 1, NULL, &other, &err),
                     CLST_OK);
    assert_non_null(other.next);
    assert_int_equal(
        clst_vault_store_list_versions(env->store, KEY, "s02", 1, other.next, &list, &err),
        CLST_E_MALFORMED);
    /* ... but is for the same key in another case. */
    assert_int_equal(
        clst_vault_store_list_versions(env->store, KEY, "S01", 1, other.next, &list, &err),
        CLST_OK);
    assert_int_equal(list.count, 1);
    assert_null(list.next);
    clst_vault_object_list_cleanup(&list);
    clst_vault_object_list_cleanup(&other);

    /* A token made by another database (another integrity key) is refused. */
    assert_int_equal(clst_vault_store_list(env->store, SECRET, 10, NULL, &list, &err), CLST_OK);
    tok = strdup(list.next);
    clst_vault_object_list_cleanup(&list);
    struct tv_env env2;
    assert_int_equal(tv_env_init(&env2), 0);
    for (int i = 0; i < 12; i++) {
        char name[16];
        snprintf(name, sizeof(name), "s%02d", i);
        assert_int_equal(tv_put_secret(env2.store, name, NULL), CLST_OK);
    }
    assert_int_equal(clst_vault_store_list(env2.store, SECRET, 10, tok, &list, &err),
                     CLST_E_MALFORMED);
    free(tok);
    tv_env_cleanup(&env2);
}

static void
test_soft_delete_recover_purge(void **state)
{
    struct tv_env *env = *state;
    struct clst_vault_object out;
    struct clst_vault_object_list list;
    struct clst_secret *value = NULL;
    struct clst_err err;
    char v1[33], v2[33];

    struct clst_vault_object k = tv_key("doomed");
    assert_int_equal(clst_vault_store_put(env->store, &k, (const uint8_t *)"1", 1, v1, &err),
                     CLST_OK);
    assert_int_equal(clst_vault_store_put(env->store, &k, (const uint8_t *)"2", 1, v2, &err),
                     CLST_OK);
    assert_int_equal(tv_put_secret(env->store, "doomed", NULL), CLST_OK); /* other namespace */

    env->clock.fixed = TV_T0 + 50;
    assert_int_equal(clst_vault_store_delete(env->store, KEY, "Doomed", 7, &out, &err), CLST_OK);
    assert_int_equal(out.deleted_date, TV_T0 + 50);
    assert_int_equal(out.scheduled_purge_date, TV_T0 + 50 + 7 * 86400);
    assert_string_equal(out.version, v2);
    clst_vault_object_cleanup(&out);

    /* Gone from the live namespace, every version. */
    assert_int_equal(clst_vault_store_get(env->store, KEY, "doomed", NULL, &out, NULL, &err),
                     CLST_E_NOTFOUND);
    assert_int_equal(clst_vault_store_get(env->store, KEY, "doomed", v1, &out, NULL, &err),
                     CLST_E_NOTFOUND);
    assert_int_equal(
        clst_vault_store_list_versions(env->store, KEY, "doomed", 0, NULL, &list, &err),
        CLST_E_NOTFOUND);
    struct clst_vault_object ch;
    memset(&ch, 0, sizeof(ch));
    assert_int_equal(clst_vault_store_update(env->store, KEY, "doomed", NULL, &ch,
                                             CLST_VAULT_UPDATE_ENABLED, NULL, &err),
                     CLST_E_NOTFOUND);
    assert_int_equal(clst_vault_store_list(env->store, KEY, 0, NULL, &list, &err), CLST_OK);
    assert_int_equal(list.count, 0);
    clst_vault_object_list_cleanup(&list);
    /* The secret of the same name is untouched. */
    assert_int_equal(clst_vault_store_get(env->store, SECRET, "doomed", NULL, &out, NULL, &err),
                     CLST_OK);
    clst_vault_object_cleanup(&out);

    /* Visible as deleted. */
    assert_int_equal(clst_vault_store_list_deleted(env->store, KEY, 0, NULL, &list, &err), CLST_OK);
    assert_int_equal(list.count, 1);
    assert_string_equal(list.items[0].name, "doomed");
    assert_int_equal(list.items[0].deleted_date, TV_T0 + 50);
    assert_int_equal(list.items[0].scheduled_purge_date, TV_T0 + 50 + 7 * 86400);
    clst_vault_object_list_cleanup(&list);
    assert_int_equal(clst_vault_store_get_deleted(env->store, KEY, "DOOMED", &out, &err), CLST_OK);
    assert_string_equal(out.version, v2);
    clst_vault_object_cleanup(&out);

    /* The name is taken while deleted; deleting twice is not found. */
    assert_int_equal(clst_vault_store_put(env->store, &k, (const uint8_t *)"3", 1, NULL, &err),
                     CLST_E_CONFLICT);
    assert_non_null(strstr(err.msg, "recover or purge"));
    assert_int_equal(clst_vault_store_delete(env->store, KEY, "doomed", 7, NULL, &err),
                     CLST_E_NOTFOUND);

    /* Recover: everything back, values intact. */
    assert_int_equal(clst_vault_store_recover(env->store, KEY, "doomed", &err), CLST_OK);
    assert_int_equal(clst_vault_store_recover(env->store, KEY, "doomed", &err), CLST_E_NOTFOUND);
    assert_int_equal(clst_vault_store_get(env->store, KEY, "doomed", v1, &out, &value, &err),
                     CLST_OK);
    assert_memory_equal(value->ptr, "1", 1);
    assert_int_equal(out.deleted_date, 0);
    assert_int_equal(out.scheduled_purge_date, 0);
    clst_secret_free(value);
    clst_vault_object_cleanup(&out);
    assert_int_equal(clst_vault_store_get_deleted(env->store, KEY, "doomed", &out, &err),
                     CLST_E_NOTFOUND);

    /* A live object cannot be purged. */
    assert_int_equal(clst_vault_store_purge(env->store, KEY, "doomed", &err), CLST_E_NOTFOUND);
    assert_non_null(strstr(err.msg, "deleted first"));

    /* Delete and purge: gone for good, and the name is free again. */
    assert_int_equal(clst_vault_store_delete(env->store, KEY, "doomed", 90, NULL, &err), CLST_OK);
    assert_int_equal(clst_vault_store_purge(env->store, KEY, "doomed", &err), CLST_OK);
    assert_int_equal(clst_vault_store_purge(env->store, KEY, "doomed", &err), CLST_E_NOTFOUND);
    assert_int_equal(clst_vault_store_get_deleted(env->store, KEY, "doomed", &out, &err),
                     CLST_E_NOTFOUND);
    assert_int_equal(clst_vault_store_recover(env->store, KEY, "doomed", &err), CLST_E_NOTFOUND);
    assert_int_equal(clst_vault_store_put(env->store, &k, (const uint8_t *)"4", 1, NULL, &err),
                     CLST_OK);
    assert_int_equal(
        clst_vault_store_list_versions(env->store, KEY, "doomed", 0, NULL, &list, &err), CLST_OK);
    assert_int_equal(list.count, 1); /* the old versions went with the purge */
    clst_vault_object_list_cleanup(&list);
}

static void
test_purge_due(void **state)
{
    struct tv_env *env = *state;
    struct clst_vault_object_list list;
    struct clst_err err;
    size_t n = 99;

    assert_int_equal(tv_put_secret(env->store, "short", NULL), CLST_OK);
    assert_int_equal(tv_put_secret(env->store, "long", NULL), CLST_OK);
    assert_int_equal(tv_put_secret(env->store, "live", NULL), CLST_OK);
    assert_int_equal(clst_vault_store_delete(env->store, SECRET, "short", 1, NULL, &err), CLST_OK);
    assert_int_equal(clst_vault_store_delete(env->store, SECRET, "long", 30, NULL, &err), CLST_OK);
    assert_int_equal(clst_vault_store_purge_due(env->store, &n, &err), CLST_OK);
    assert_int_equal(n, 0);
    env->clock.fixed = TV_T0 + 86400; /* exactly due */
    assert_int_equal(clst_vault_store_purge_due(env->store, &n, &err), CLST_OK);
    assert_int_equal(n, 1);
    assert_int_equal(clst_vault_store_list_deleted(env->store, SECRET, 0, NULL, &list, &err),
                     CLST_OK);
    assert_int_equal(list.count, 1);
    assert_string_equal(list.items[0].name, "long");
    clst_vault_object_list_cleanup(&list);
    env->clock.fixed = TV_T0 + 31 * 86400;
    assert_int_equal(clst_vault_store_purge_due(env->store, NULL, &err), CLST_OK);
    assert_int_equal(clst_vault_store_list_deleted(env->store, SECRET, 0, NULL, &list, &err),
                     CLST_OK);
    assert_int_equal(list.count, 0);
    clst_vault_object_list_cleanup(&list);
    assert_int_equal(clst_vault_store_list(env->store, SECRET, 0, NULL, &list, &err), CLST_OK);
    assert_int_equal(list.count, 1); /* live objects are never purged */
    clst_vault_object_list_cleanup(&list);
}

static void
hash_token(const char *token, uint8_t out[32])
{
    assert_int_equal(clst_sha256(token, strlen(token), out), CLST_OK);
}

static void
test_principals(void **state)
{
    struct tv_env *env = *state;
    struct clst_vault_principal p, out;
    struct clst_vault_role_assignment roles[2];
    struct clst_err err;
    uint8_t h1[32], h2[32], h3[32];

    hash_token("token-one", h1);
    hash_token("token-two", h2);
    hash_token("token-three", h3);
    memset(&p, 0, sizeof(p));
    memset(roles, 0, sizeof(roles));
    snprintf(p.id, sizeof(p.id), "app-1");
    snprintf(p.name, sizeof(p.name), "Payments service");
    memcpy(p.token_hash, h1, 32);
    p.enabled = true;
    snprintf(roles[0].role, sizeof(roles[0].role), "Key Vault Secrets User");
    snprintf(roles[0].scope, sizeof(roles[0].scope), "/secrets/db-password");
    snprintf(roles[1].role, sizeof(roles[1].role), "Key Vault Crypto User");
    snprintf(roles[1].scope, sizeof(roles[1].scope), "/");
    p.roles = roles;
    p.role_count = 2;
    assert_int_equal(clst_vault_store_principal_put(env->store, &p, &err), CLST_OK);

    assert_int_equal(clst_vault_store_principal_get(env->store, "app-1", &out, &err), CLST_OK);
    assert_string_equal(out.name, "Payments service");
    assert_memory_equal(out.token_hash, h1, 32);
    assert_true(out.enabled);
    assert_int_equal(out.created, TV_T0);
    assert_int_equal(out.role_count, 2);
    /* Sorted by role, then scope. */
    assert_string_equal(out.roles[0].role, "Key Vault Crypto User");
    assert_string_equal(out.roles[0].scope, "/");
    assert_string_equal(out.roles[1].role, "Key Vault Secrets User");
    clst_vault_principal_cleanup(&out);

    assert_int_equal(clst_vault_store_principal_find_by_token(env->store, h1, &out, &err), CLST_OK);
    assert_string_equal(out.id, "app-1");
    clst_vault_principal_cleanup(&out);
    assert_int_equal(clst_vault_store_principal_find_by_token(env->store, h2, &out, &err),
                     CLST_E_NOTFOUND);

    /* Duplicates: same id, or another id with the same token. */
    assert_int_equal(clst_vault_store_principal_put(env->store, &p, &err), CLST_E_CONFLICT);
    snprintf(p.id, sizeof(p.id), "app-2");
    assert_int_equal(clst_vault_store_principal_put(env->store, &p, &err), CLST_E_CONFLICT);
    memcpy(p.token_hash, h2, 32);
    p.role_count = 0;
    assert_int_equal(clst_vault_store_principal_put(env->store, &p, &err), CLST_OK);

    /* Role assignments. */
    assert_int_equal(clst_vault_store_role_add(env->store, "app-2", "Key Vault Reader",
                                               "/keys/signing-key", &err),
                     CLST_OK);
    assert_int_equal(clst_vault_store_role_add(env->store, "app-2", "Key Vault Reader",
                                               "/keys/signing-key", &err),
                     CLST_E_CONFLICT);
    assert_int_equal(
        clst_vault_store_role_add(env->store, "app-2", "Key Vault Reader", "/keys/", &err),
        CLST_E_INVAL);
    assert_int_equal(
        clst_vault_store_role_add(env->store, "app-2", "Key Vault Reader", "/certificates/x", &err),
        CLST_E_INVAL);
    assert_int_equal(clst_vault_store_role_add(env->store, "app-2", "", "/", &err), CLST_E_INVAL);
    assert_int_equal(clst_vault_store_role_add(env->store, "nobody", "Reader", "/", &err),
                     CLST_E_NOTFOUND);
    assert_int_equal(
        clst_vault_store_role_remove(env->store, "app-2", "Key Vault Reader", "/keys/other", &err),
        CLST_E_NOTFOUND);
    assert_int_equal(clst_vault_store_principal_get(env->store, "app-2", &out, &err), CLST_OK);
    assert_int_equal(out.role_count, 1);
    assert_string_equal(out.roles[0].scope, "/keys/signing-key");
    clst_vault_principal_cleanup(&out);
    assert_int_equal(clst_vault_store_role_remove(env->store, "app-2", "Key Vault Reader",
                                                  "/keys/signing-key", &err),
                     CLST_OK);
    assert_int_equal(clst_vault_store_principal_get(env->store, "app-2", &out, &err), CLST_OK);
    assert_int_equal(out.role_count, 0);
    clst_vault_principal_cleanup(&out);

    /* At most CLST_VAULT_ROLES_MAX assignments. */
    for (int i = 0; i < CLST_VAULT_ROLES_MAX; i++) {
        char scope[32];
        snprintf(scope, sizeof(scope), "/keys/k%d", i);
        assert_int_equal(clst_vault_store_role_add(env->store, "app-2", "Reader", scope, &err),
                         CLST_OK);
    }
    assert_int_equal(clst_vault_store_role_add(env->store, "app-2", "Reader", "/", &err),
                     CLST_E_LIMIT);

    /* Rotate the token and rename; roles are kept. */
    struct clst_vault_principal upd;
    memset(&upd, 0, sizeof(upd));
    snprintf(upd.id, sizeof(upd.id), "app-1");
    snprintf(upd.name, sizeof(upd.name), "Payments v2");
    memcpy(upd.token_hash, h3, 32);
    upd.enabled = false;
    env->clock.fixed = TV_T0 + 60;
    assert_int_equal(clst_vault_store_principal_update(env->store, &upd, &err), CLST_OK);
    assert_int_equal(clst_vault_store_principal_find_by_token(env->store, h1, &out, &err),
                     CLST_E_NOTFOUND);
    assert_int_equal(clst_vault_store_principal_find_by_token(env->store, h3, &out, &err), CLST_OK);
    assert_string_equal(out.id, "app-1");
    assert_string_equal(out.name, "Payments v2");
    assert_false(out.enabled);
    assert_int_equal(out.created, TV_T0);
    assert_int_equal(out.updated, TV_T0 + 60);
    assert_int_equal(out.role_count, 2);
    clst_vault_principal_cleanup(&out);
    /* Taking another principal's token is a conflict, reported at once. */
    memcpy(upd.token_hash, h2, 32);
    assert_int_equal(clst_vault_store_principal_update(env->store, &upd, &err), CLST_E_CONFLICT);
    assert_non_null(strstr(err.msg, "token"));
    assert_null(strstr(err.msg, "kept changing"));
    snprintf(upd.id, sizeof(upd.id), "ghost");
    assert_int_equal(clst_vault_store_principal_update(env->store, &upd, &err), CLST_E_NOTFOUND);

    /* Invalid principals. */
    struct clst_vault_principal bad = p;
    snprintf(bad.id, sizeof(bad.id), "has space");
    assert_int_equal(clst_vault_store_principal_put(env->store, &bad, &err), CLST_E_INVAL);
    bad = p;
    bad.name[0] = '\0';
    assert_int_equal(clst_vault_store_principal_put(env->store, &bad, &err), CLST_E_INVAL);
    bad = p;
    snprintf(bad.id, sizeof(bad.id), "dup-roles");
    struct clst_vault_role_assignment dup[2];
    dup[0] = roles[0];
    dup[1] = roles[0];
    bad.roles = dup;
    bad.role_count = 2;
    assert_int_equal(clst_vault_store_principal_put(env->store, &bad, &err), CLST_E_INVAL);

    /* Delete. */
    assert_int_equal(clst_vault_store_principal_delete(env->store, "app-1", &err), CLST_OK);
    assert_int_equal(clst_vault_store_principal_delete(env->store, "app-1", &err), CLST_E_NOTFOUND);
    assert_int_equal(clst_vault_store_principal_get(env->store, "app-1", &out, &err),
                     CLST_E_NOTFOUND);
    assert_int_equal(clst_vault_store_principal_find_by_token(env->store, h3, &out, &err),
                     CLST_E_NOTFOUND);
}

static void
test_principal_paging(void **state)
{
    struct tv_env *env = *state;
    struct clst_vault_principal_list list;
    struct clst_err err;
    struct clst_vault_role_assignment role;
    int seen = 0;
    char *token = NULL;

    memset(&role, 0, sizeof(role));
    snprintf(role.role, sizeof(role.role), "Reader");
    snprintf(role.scope, sizeof(role.scope), "/");
    for (int i = 0; i < 30; i++) {
        struct clst_vault_principal p;
        memset(&p, 0, sizeof(p));
        snprintf(p.id, sizeof(p.id), "p%02d", (i * 7) % 30);
        snprintf(p.name, sizeof(p.name), "principal %d", i);
        hash_token(p.id, p.token_hash);
        p.roles = &role;
        p.role_count = 1;
        assert_int_equal(clst_vault_store_principal_put(env->store, &p, &err), CLST_OK);
    }
    for (int page = 0; page < 5; page++) {
        assert_int_equal(clst_vault_store_principal_list(env->store, 0, token, &list, &err),
                         CLST_OK);
        free(token);
        token = NULL;
        for (size_t i = 0; i < list.count; i++) {
            char expect[16];
            snprintf(expect, sizeof(expect), "p%02d", seen++);
            assert_string_equal(list.items[i].id, expect);
            assert_int_equal(list.items[i].role_count, 1);
        }
        if (list.next == NULL) {
            clst_vault_principal_list_cleanup(&list);
            break;
        }
        token = strdup(list.next);
        clst_vault_principal_list_cleanup(&list);
    }
    assert_null(token);
    assert_int_equal(seen, 30);
}

static void
test_meta(void **state)
{
    struct tv_env *env = *state;
    struct clst_buf b;
    struct clst_err err;
    clst_buf_init(&b, 1024);

    assert_int_equal(clst_vault_store_meta_get(env->store, "retention.days", &b, &err),
                     CLST_E_NOTFOUND);
    assert_int_equal(
        clst_vault_store_meta_set(env->store, "retention.days", (const uint8_t *)"90", 2, &err),
        CLST_OK);
    assert_int_equal(clst_vault_store_meta_get(env->store, "retention.days", &b, &err), CLST_OK);
    assert_int_equal(b.size, 2);
    assert_memory_equal(b.data, "90", 2);
    clst_buf_reset(&b);
    assert_int_equal(
        clst_vault_store_meta_set(env->store, "retention.days", (const uint8_t *)"7", 1, &err),
        CLST_OK);
    assert_int_equal(clst_vault_store_meta_get(env->store, "retention.days", &b, &err), CLST_OK);
    assert_int_equal(b.size, 1);
    clst_buf_reset(&b);
    /* Empty values. */
    assert_int_equal(clst_vault_store_meta_set(env->store, "empty", NULL, 0, &err), CLST_OK);
    assert_int_equal(clst_vault_store_meta_get(env->store, "empty", &b, &err), CLST_OK);
    assert_int_equal(b.size, 0);
    /* Reserved and invalid names; the integrity key is never handed out. */
    assert_int_equal(clst_vault_store_meta_get(env->store, "store.integrity_key", &b, &err),
                     CLST_E_INVAL);
    assert_int_equal(
        clst_vault_store_meta_set(env->store, "store.x", (const uint8_t *)"1", 1, &err),
        CLST_E_INVAL);
    assert_int_equal(clst_vault_store_meta_set(env->store, "a b", (const uint8_t *)"1", 1, &err),
                     CLST_E_INVAL);
    assert_int_equal(clst_vault_store_meta_set(env->store, "", (const uint8_t *)"1", 1, &err),
                     CLST_E_INVAL);
    /* Output buffer too small. */
    struct clst_buf small;
    clst_buf_init(&small, 1);
    assert_int_equal(clst_vault_store_meta_get(env->store, "retention.days", &small, &err),
                     CLST_OK);
    assert_int_equal(clst_vault_store_meta_set(env->store, "two", (const uint8_t *)"22", 2, &err),
                     CLST_OK);
    clst_buf_reset(&small);
    assert_int_equal(clst_vault_store_meta_get(env->store, "two", &small, &err), CLST_E_LIMIT);
    clst_buf_cleanup(&small);
    clst_buf_cleanup(&b);
}

static void
test_reopen_and_wrong_master_key(void **state)
{
    struct tv_env *env = *state;
    struct clst_vault_object out;
    struct clst_secret *value = NULL;
    struct clst_err err;
    char other[256];
    struct clst_vault_masterkey *wrong = NULL;
    struct clst_vault_store *s2 = NULL;

    assert_int_equal(tv_put_secret(env->store, "persisted", NULL), CLST_OK);
    tv_close(env);
    assert_int_equal(tv_open(env, 1, &err), CLST_OK);
    assert_int_equal(
        clst_vault_store_get(env->store, SECRET, "persisted", NULL, &out, &value, &err), CLST_OK);
    assert_memory_equal(value->ptr, "persisted-value", 15);
    clst_secret_free(value);
    clst_vault_object_cleanup(&out);
    tv_close(env);

    snprintf(other, sizeof(other), "%s/other.key", env->dir);
    assert_int_equal(clst_vault_masterkey_file_create(other, &err), CLST_OK);
    assert_int_equal(clst_vault_masterkey_file_load(other, &wrong, &err), CLST_OK);
    struct clst_vault_sqlite_options opt = {.path = env->db};
    assert_int_equal(clst_vault_store_open_sqlite(&opt, wrong, NULL, &s2, &err), CLST_E_VERIFY);
    assert_null(s2);
    assert_non_null(strstr(err.msg, "created under master key"));
    assert_non_null(strstr(err.msg, clst_vault_masterkey_id(env->mk)));
    clst_vault_masterkey_free(wrong);
    assert_int_equal(tv_open(env, 0, &err), CLST_OK); /* for teardown */

    struct clst_vault_store_info info;
    assert_int_equal(clst_vault_store_info(env->store, &info, &err), CLST_OK);
    assert_string_equal(info.masterkey_id, clst_vault_masterkey_id(env->mk));
    assert_string_equal(info.backend, "sqlite");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_key_crud, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_crud_and_namespaces, setup, teardown),
        cmocka_unit_test_setup_teardown(test_names_are_case_insensitive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_versions_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_update, setup, teardown),
        cmocka_unit_test_setup_teardown(test_immutable_release_policy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_validation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_paging, setup, teardown),
        cmocka_unit_test_setup_teardown(test_paging_tokens_are_checked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_soft_delete_recover_purge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_purge_due, setup, teardown),
        cmocka_unit_test_setup_teardown(test_principals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_principal_paging, setup, teardown),
        cmocka_unit_test_setup_teardown(test_meta, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_and_wrong_master_key, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
