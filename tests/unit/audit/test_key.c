/*
 * Tests of the audit key (src/audit/key.c): made on first use (0600, public key beside it),
 * reused afterwards, only ECDSA P-256/P-384 accepted, public key loading.
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "audit/audit_int.h"
#include "test_util.h"

static void
test_make_then_reuse(void **state)
{
    (void)state;
    char dir[] = "/tmp/clst-audit-key-XXXXXX";
    char key[128], pub[128];
    struct audit_key a, b;
    struct clst_err err;
    struct stat sb;
    assert_non_null(mkdtemp(dir));
    snprintf(key, sizeof(key), "%s/audit.key", dir);
    snprintf(pub, sizeof(pub), "%s/audit.pub", dir);
    assert_int_equal(audit_key_load_or_make(key, pub, &a, &err), CLST_OK);
    assert_string_equal(a.alg, "ES256");
    assert_int_equal(a.sig_size, 64);
    assert_int_equal(strlen(a.kid), 64);
    assert_int_equal(stat(key, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    /* The same key the second time. */
    assert_int_equal(audit_key_load_or_make(key, pub, &b, &err), CLST_OK);
    assert_string_equal(a.kid, b.kid);
    assert_true(clst_pkey_public_equal(a.pkey, b.pkey));
    /* The public key file holds its public part only, and describes to the same kid. */
    EVP_PKEY *p = NULL;
    struct audit_key pk;
    assert_int_equal(clst_audit_pub_load(pub, &p, &err), CLST_OK);
    assert_false(clst_pkey_has_private(p));
    assert_int_equal(audit_key_describe(p, &pk, &err), CLST_OK);
    assert_string_equal(pk.kid, a.kid);
    EVP_PKEY_free(p);
    /* A missing directory is an I/O error with the path. */
    assert_int_equal(audit_key_load_or_make("/nonexistent/dir/audit.key", NULL, &b, &err) == CLST_OK,
                     false);
    assert_int_equal(clst_audit_pub_load("/nonexistent.pem", &p, &err), CLST_E_IO);
    EVP_PKEY_free(a.pkey);
    EVP_PKEY_free(b.pkey);
    unlink(key);
    unlink(pub);
    rmdir(dir);
}

static void
test_public_key_is_not_a_signing_key(void **state)
{
    (void)state;
    char dir[] = "/tmp/clst-audit-key-XXXXXX";
    char key[128];
    struct audit_key a;
    struct clst_err err;
    EVP_PKEY *k = NULL;
    struct clst_buf pem;
    assert_non_null(mkdtemp(dir));
    snprintf(key, sizeof(key), "%s/audit.key", dir);
    clst_buf_init(&pem, 16384);
    assert_int_equal(clst_ec_generate(CLST_CURVE_P521, &k), CLST_OK);
    assert_int_equal(clst_pkey_to_pem(k, false, &pem), CLST_OK);
    FILE *f = fopen(key, "w");
    fwrite(pem.data, 1, pem.size, f);
    fclose(f);
    assert_int_equal(chmod(key, 0600), 0);
    assert_int_equal(audit_key_load_or_make(key, NULL, &a, &err), CLST_E_INVAL);
    assert_non_null(strstr(err.msg, "no private key"));
    /* P-521 is not an audit key either (as a public key to verify with). */
    assert_int_equal(audit_key_describe(k, &a, &err), CLST_E_INVAL);
    EVP_PKEY_free(k);
    clst_buf_cleanup(&pem);
    unlink(key);
    rmdir(dir);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_make_then_reuse),
        cmocka_unit_test(test_public_key_is_not_a_signing_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
