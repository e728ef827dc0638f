/* Unit tests for src/vault/rbac.c: the role → permission table (checked cell by cell against an
 * independent copy of docs/vault.md's table), scope matching, role names and the 403 message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_util.h"
#include "vault/rest_int.h"

/* docs/vault.md's table, written out again by permission name: which roles hold it. */
struct expect {
    const char *perm;
    const char *roles; /* '|'-separated */
};

static const struct expect TABLE[] = {
    {"keys/read", "Administrator|Crypto Officer|Crypto User|Crypto Auditor"},
    {"keys/create", "Administrator|Crypto Officer|Crypto User"},
    {"keys/import", "Administrator|Crypto Officer|Crypto User"},
    {"keys/write", "Administrator|Crypto Officer|Crypto User"},
    {"keys/rotate", "Administrator|Crypto Officer|Crypto User"},
    {"keys/delete", "Administrator|Crypto Officer|Crypto User"},
    {"keys/backup", "Administrator|Crypto Officer|Crypto User"},
    {"keys/restore", "Administrator|Crypto Officer|Crypto User"},
    {"keys/encrypt", "Administrator|Crypto User"},
    {"keys/decrypt", "Administrator|Crypto User"},
    {"keys/wrap", "Administrator|Crypto User"},
    {"keys/unwrap", "Administrator|Crypto User"},
    {"keys/sign", "Administrator|Crypto User"},
    {"keys/verify", "Administrator|Crypto User"},
    {"keys/release", "Administrator|Crypto Service Release User"},
    {"keys/deletedKeys/read", "Administrator|Crypto Officer|Crypto User|Crypto Auditor"},
    {"keys/deletedKeys/recover", "Administrator|Crypto Officer"},
    {"keys/deletedKeys/delete", "Administrator|Crypto Officer"},
    {"rng", "Administrator|Crypto User"},
    {"secrets/readMetadata", "Administrator|Crypto Auditor|Secrets Officer|Secrets User"},
    {"secrets/getSecret", "Administrator|Secrets Officer|Secrets User"},
    {"secrets/setSecret", "Administrator|Secrets Officer"},
    {"secrets/update", "Administrator|Secrets Officer"},
    {"secrets/delete", "Administrator|Secrets Officer"},
    {"secrets/backup", "Administrator|Secrets Officer"},
    {"secrets/restore", "Administrator|Secrets Officer"},
    {"secrets/deletedSecrets/read", "Administrator|Crypto Auditor|Secrets Officer"},
    {"secrets/deletedSecrets/recover", "Administrator|Secrets Officer"},
    {"secrets/deletedSecrets/delete", "Administrator|Secrets Officer"},
    {"principals/read", "Administrator"},
    {"principals/write", "Administrator"},
};

static const char *const ROLES[] = {
    "Administrator", "Crypto Officer", "Crypto User", "Crypto Service Release User",
    "Crypto Auditor", "Secrets Officer", "Secrets User",
};

static bool
listed(const char *roles, const char *role)
{
    size_t n = strlen(role);
    for (const char *p = roles; p != NULL && *p != '\0';) {
        const char *bar = strchr(p, '|');
        size_t len = bar != NULL ? (size_t)(bar - p) : strlen(p);
        if (len == n && strncmp(p, role, n) == 0) {
            return true;
        }
        p = bar != NULL ? bar + 1 : NULL;
    }
    return false;
}

static void
test_table_every_cell(void **state)
{
    (void)state;
    assert_int_equal(sizeof TABLE / sizeof TABLE[0], CLST_VAULT_PERM_COUNT);
    for (int p = 0; p < CLST_VAULT_PERM_COUNT; p++) {
        const char *name = clst_vault_perm_name((enum clst_vault_perm)p);
        const struct expect *e = NULL;
        for (size_t k = 0; k < sizeof TABLE / sizeof TABLE[0]; k++) {
            if (strcmp(TABLE[k].perm, name) == 0) {
                e = &TABLE[k];
            }
        }
        assert_non_null(e);
        for (size_t r = 0; r < sizeof ROLES / sizeof ROLES[0]; r++) {
            bool want = listed(e->roles, ROLES[r]);
            if (clst_vault_role_grants(ROLES[r], (enum clst_vault_perm)p) != want) {
                fail_msg("role %s, permission %s: want %s", ROLES[r], name,
                         want ? "granted" : "denied");
            }
        }
    }
    /* Out of range and unknown roles grant nothing. */
    assert_string_equal(clst_vault_perm_name(CLST_VAULT_PERM_COUNT), "?");
    assert_false(clst_vault_role_grants("Administrator", CLST_VAULT_PERM_COUNT));
    assert_false(clst_vault_role_grants("administrator", CLST_VAULT_PERM_KEY_READ));
    assert_false(clst_vault_role_grants("Owner", CLST_VAULT_PERM_KEY_READ));
    assert_false(clst_vault_role_grants(NULL, CLST_VAULT_PERM_KEY_READ));
    assert_false(clst_vault_role_grants("", CLST_VAULT_PERM_KEY_READ));
}

static void
test_perm_kind(void **state)
{
    (void)state;
    assert_int_equal(clst_vault_perm_kind(CLST_VAULT_PERM_KEY_READ), CLST_VAULT_KIND_KEY);
    assert_int_equal(clst_vault_perm_kind(CLST_VAULT_PERM_KEY_PURGE), CLST_VAULT_KIND_KEY);
    assert_int_equal(clst_vault_perm_kind(CLST_VAULT_PERM_SECRET_READ), CLST_VAULT_KIND_SECRET);
    assert_int_equal(clst_vault_perm_kind(CLST_VAULT_PERM_SECRET_PURGE), CLST_VAULT_KIND_SECRET);
    assert_int_equal(clst_vault_perm_kind(CLST_VAULT_PERM_RNG), 0);
    assert_int_equal(clst_vault_perm_kind(CLST_VAULT_PERM_PRINCIPAL_WRITE), 0);
}

static void
test_role_names(void **state)
{
    (void)state;
    for (size_t r = 0; r < sizeof ROLES / sizeof ROLES[0]; r++) {
        assert_true(clst_vault_role_valid(ROLES[r]));
        assert_string_equal(clst_vault_role_canonical(ROLES[r]), ROLES[r]);
    }
    assert_string_equal(clst_vault_role_canonical("secrets user"), "Secrets User");
    assert_string_equal(clst_vault_role_canonical("CRYPTO SERVICE RELEASE USER"),
                        "Crypto Service Release User");
    assert_false(clst_vault_role_valid("secrets user")); /* stored spelling is exact */
    assert_null(clst_vault_role_canonical("Secrets"));
    assert_null(clst_vault_role_canonical("Secrets User "));
    assert_null(clst_vault_role_canonical("Key Vault Secrets User"));
    assert_null(clst_vault_role_canonical(NULL));
}

static void
test_role_scope_ok(void **state)
{
    (void)state;
    for (size_t r = 0; r < sizeof ROLES / sizeof ROLES[0]; r++) {
        assert_true(clst_vault_role_scope_ok(ROLES[r], "/"));
    }
    assert_true(clst_vault_role_scope_ok("Crypto User", "/keys/k1"));
    assert_true(clst_vault_role_scope_ok("Crypto Officer", "/keys/k1"));
    assert_true(clst_vault_role_scope_ok("Crypto Service Release User", "/keys/k1"));
    assert_false(clst_vault_role_scope_ok("Crypto User", "/secrets/s1"));
    assert_false(clst_vault_role_scope_ok("Crypto Service Release User", "/secrets/s1"));
    assert_true(clst_vault_role_scope_ok("Secrets User", "/secrets/s1"));
    assert_false(clst_vault_role_scope_ok("Secrets User", "/keys/k1"));
    assert_false(clst_vault_role_scope_ok("Secrets Officer", "/keys/k1"));
    assert_true(clst_vault_role_scope_ok("Administrator", "/keys/k1"));
    assert_true(clst_vault_role_scope_ok("Administrator", "/secrets/s1"));
    assert_true(clst_vault_role_scope_ok("Crypto Auditor", "/secrets/s1"));
    /* Bad scopes and unknown roles. */
    assert_false(clst_vault_role_scope_ok("Administrator", ""));
    assert_false(clst_vault_role_scope_ok("Administrator", "/keys/"));
    assert_false(clst_vault_role_scope_ok("Administrator", "/keys/a_b"));
    assert_false(clst_vault_role_scope_ok("Administrator", "/keys/a/b"));
    assert_false(clst_vault_role_scope_ok("Administrator", "/certificates/c"));
    assert_false(clst_vault_role_scope_ok("Administrator", "//"));
    assert_false(clst_vault_role_scope_ok("Administrator", NULL));
    assert_false(clst_vault_role_scope_ok("Owner", "/"));
}

static void
test_scope_covers(void **state)
{
    (void)state;
    assert_true(clst_vault_scope_covers("/", CLST_VAULT_KIND_KEY, "k"));
    assert_true(clst_vault_scope_covers("/", CLST_VAULT_KIND_SECRET, NULL));
    assert_true(clst_vault_scope_covers("/keys/k1", CLST_VAULT_KIND_KEY, "k1"));
    assert_true(clst_vault_scope_covers("/keys/k1", CLST_VAULT_KIND_KEY, "K1")); /* case */
    assert_true(clst_vault_scope_covers("/secrets/Db-Pw", CLST_VAULT_KIND_SECRET, "db-pw"));
    /* No listing through a scoped assignment. */
    assert_false(clst_vault_scope_covers("/keys/k1", CLST_VAULT_KIND_KEY, NULL));
    /* The other kind with the same name. */
    assert_false(clst_vault_scope_covers("/keys/k1", CLST_VAULT_KIND_SECRET, "k1"));
    assert_false(clst_vault_scope_covers("/secrets/k1", CLST_VAULT_KIND_KEY, "k1"));
    /* Prefixes are not matches, either way. */
    assert_false(clst_vault_scope_covers("/keys/k1", CLST_VAULT_KIND_KEY, "k"));
    assert_false(clst_vault_scope_covers("/keys/k", CLST_VAULT_KIND_KEY, "k1"));
    assert_false(clst_vault_scope_covers("/keys/", CLST_VAULT_KIND_KEY, ""));
    assert_false(clst_vault_scope_covers(NULL, CLST_VAULT_KIND_KEY, "k"));
    assert_false(clst_vault_scope_covers("/keys/k", 0, "k"));
}

static struct clst_vault_principal
principal(struct clst_vault_role_assignment *roles, size_t count)
{
    struct clst_vault_principal p;
    memset(&p, 0, sizeof p);
    snprintf(p.id, sizeof p.id, "app1");
    snprintf(p.name, sizeof p.name, "app one");
    p.enabled = true;
    p.roles = roles;
    p.role_count = count;
    return p;
}

static void
test_allowed(void **state)
{
    (void)state;
    struct clst_vault_role_assignment roles[] = {
        {"Secrets User", "/secrets/db"},
        {"Crypto Service Release User", "/keys/skr"},
        {"Crypto Auditor", "/"},
    };
    struct clst_vault_principal p = principal(roles, 3);
    assert_true(clst_vault_allowed(&p, CLST_VAULT_PERM_SECRET_GET, CLST_VAULT_KIND_SECRET, "db"));
    assert_true(clst_vault_allowed(&p, CLST_VAULT_PERM_SECRET_GET, CLST_VAULT_KIND_SECRET, "DB"));
    assert_false(clst_vault_allowed(&p, CLST_VAULT_PERM_SECRET_GET, CLST_VAULT_KIND_SECRET, "db2"));
    assert_false(clst_vault_allowed(&p, CLST_VAULT_PERM_SECRET_SET, CLST_VAULT_KIND_SECRET, "db"));
    /* Metadata of every secret through the vault-wide Auditor, values only of db. */
    assert_true(clst_vault_allowed(&p, CLST_VAULT_PERM_SECRET_READ, CLST_VAULT_KIND_SECRET, NULL));
    assert_true(clst_vault_allowed(&p, CLST_VAULT_PERM_SECRET_READ, CLST_VAULT_KIND_SECRET, "x"));
    assert_true(clst_vault_allowed(&p, CLST_VAULT_PERM_KEY_RELEASE, CLST_VAULT_KIND_KEY, "skr"));
    assert_false(clst_vault_allowed(&p, CLST_VAULT_PERM_KEY_RELEASE, CLST_VAULT_KIND_KEY, "other"));
    assert_false(clst_vault_allowed(&p, CLST_VAULT_PERM_KEY_RELEASE, CLST_VAULT_KIND_KEY, NULL));
    /* A permission asked for on the wrong kind fails closed. */
    assert_false(clst_vault_allowed(&p, CLST_VAULT_PERM_SECRET_GET, CLST_VAULT_KIND_KEY, "db"));
    assert_false(clst_vault_allowed(&p, CLST_VAULT_PERM_PRINCIPAL_READ, 0, NULL));
    /* A disabled principal holds nothing. */
    p.enabled = false;
    assert_false(clst_vault_allowed(&p, CLST_VAULT_PERM_SECRET_GET, CLST_VAULT_KIND_SECRET, "db"));
    assert_false(clst_vault_allowed(NULL, CLST_VAULT_PERM_SECRET_GET, CLST_VAULT_KIND_SECRET, "db"));

    /* Vault-wide permissions ignore the name: a scoped Administrator has no rng or principals. */
    struct clst_vault_role_assignment scoped_admin[] = {{"Administrator", "/keys/k1"}};
    struct clst_vault_principal a = principal(scoped_admin, 1);
    assert_true(clst_vault_allowed(&a, CLST_VAULT_PERM_KEY_DECRYPT, CLST_VAULT_KIND_KEY, "k1"));
    assert_false(clst_vault_allowed(&a, CLST_VAULT_PERM_KEY_DECRYPT, CLST_VAULT_KIND_KEY, "k2"));
    assert_false(clst_vault_allowed(&a, CLST_VAULT_PERM_RNG, 0, NULL));
    assert_false(clst_vault_allowed(&a, CLST_VAULT_PERM_RNG, CLST_VAULT_KIND_KEY, "k1"));
    assert_false(clst_vault_allowed(&a, CLST_VAULT_PERM_PRINCIPAL_WRITE, 0, NULL));
    /* Roles spelled otherwise than canonically (a tampered or foreign store) grant nothing. */
    struct clst_vault_role_assignment odd[] = {{"administrator", "/"}, {"Owner", "/"}};
    struct clst_vault_principal o = principal(odd, 2);
    assert_false(clst_vault_allowed(&o, CLST_VAULT_PERM_KEY_READ, CLST_VAULT_KIND_KEY, "k"));
    /* No roles at all. */
    struct clst_vault_principal none = principal(NULL, 0);
    assert_false(clst_vault_allowed(&none, CLST_VAULT_PERM_SECRET_READ, CLST_VAULT_KIND_SECRET,
                                    NULL));
}

static void
test_authorize_message(void **state)
{
    (void)state;
    struct clst_vault_role_assignment roles[] = {{"Secrets User", "/secrets/db"}};
    struct clst_vault_principal p = principal(roles, 1);
    struct clst_vault_rctx rc;
    struct clst_err err;
    memset(&rc, 0, sizeof rc);
    rc.principal = &p;

    assert_int_equal(clst_vault_authorize(&rc, CLST_VAULT_PERM_SECRET_GET, CLST_VAULT_KIND_SECRET,
                                          "db", &err),
                     CLST_OK);
    assert_int_equal(clst_vault_authorize(&rc, CLST_VAULT_PERM_SECRET_SET, CLST_VAULT_KIND_SECRET,
                                          "db", &err),
                     CLST_E_DENIED);
    assert_non_null(strstr(err.msg, "principal 'app1'"));
    assert_non_null(strstr(err.msg, "secrets/setSecret"));
    assert_non_null(strstr(err.msg, "/secrets/db"));
    assert_non_null(strstr(err.msg, "Secrets Officer"));
    assert_non_null(strstr(err.msg, "Administrator"));
    assert_null(strstr(err.msg, "Secrets User,"));

    assert_int_equal(clst_vault_authorize(&rc, CLST_VAULT_PERM_SECRET_READ, CLST_VAULT_KIND_SECRET,
                                          NULL, &err),
                     CLST_E_DENIED);
    assert_non_null(strstr(err.msg, "whole vault"));
    assert_non_null(strstr(err.msg, "Crypto Auditor"));
    assert_non_null(strstr(err.msg, "assigned at /"));

    assert_int_equal(clst_vault_authorize(&rc, CLST_VAULT_PERM_KEY_RELEASE, CLST_VAULT_KIND_KEY,
                                          "skr", &err),
                     CLST_E_DENIED);
    assert_non_null(strstr(err.msg, "Crypto Service Release User"));
    assert_non_null(strstr(err.msg, "/keys/skr"));

    assert_int_equal(clst_vault_authorize(&rc, CLST_VAULT_PERM_PRINCIPAL_WRITE, 0, NULL, &err),
                     CLST_E_DENIED);
    assert_non_null(strstr(err.msg, "principals/write"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_every_cell), cmocka_unit_test(test_perm_kind),
        cmocka_unit_test(test_role_names),       cmocka_unit_test(test_role_scope_ok),
        cmocka_unit_test(test_scope_covers),     cmocka_unit_test(test_allowed),
        cmocka_unit_test(test_authorize_message),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
