/* Unit tests for src/vault/masterkey.c: the provider interface and the file provider (creation,
 * the permission, owner, type and size checks, wrap/unwrap, wrong keys and altered blobs). */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <sys/stat.h>

#include <cloister/crypto.h>

#include "test_util.h"
#include "vault_test_util.h"

struct fixture {
    char dir[128];
    char path[192];
};

static int
setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    if (f == NULL) {
        return -1;
    }
    snprintf(f->dir, sizeof(f->dir), "/tmp/clst-mk-test-XXXXXX");
    if (mkdtemp(f->dir) == NULL) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof(f->path), "%s/master.key", f->dir);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fixture *f = *state;
    tv_rmdir(f->dir);
    free(f);
    return 0;
}

static void
write_file(const char *path, const void *data, size_t size, mode_t mode)
{
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, size), (ssize_t)size);
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

static void
test_create_and_load(void **state)
{
    struct fixture *f = *state;
    struct clst_err err;
    struct clst_vault_masterkey *mk = NULL;
    struct clst_vault_masterkey *again = NULL;
    struct stat st;

    assert_int_equal(clst_vault_masterkey_file_create(f->path, &err), CLST_OK);
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(st.st_size, 32);

    assert_int_equal(clst_vault_masterkey_file_load(f->path, &mk, &err), CLST_OK);
    const char *id = clst_vault_masterkey_id(mk);
    assert_int_equal(strlen(id), 5 + 16);
    assert_memory_equal(id, "file:", 5);
    for (size_t i = 5; i < 21; i++) {
        assert_non_null(strchr("0123456789abcdef", id[i]));
    }
    /* The same file gives the same id. */
    assert_int_equal(clst_vault_masterkey_file_load(f->path, &again, &err), CLST_OK);
    assert_string_equal(clst_vault_masterkey_id(again), id);

    /* Never overwrite an existing key. */
    assert_int_equal(clst_vault_masterkey_file_create(f->path, &err), CLST_E_CONFLICT);
    assert_non_null(strstr(err.msg, "refusing to overwrite"));

    clst_vault_masterkey_free(again);
    clst_vault_masterkey_free(mk);
    clst_vault_masterkey_free(NULL);
}

static void
test_wrap_unwrap(void **state)
{
    struct fixture *f = *state;
    struct clst_err err;
    struct clst_vault_masterkey *mk = NULL;
    uint8_t key[32], wrapped[CLST_VAULT_WRAPPED_MAX], out[32];
    size_t wrapped_size = 0, out_size = 0;

    assert_int_equal(clst_vault_masterkey_file_create(f->path, &err), CLST_OK);
    assert_int_equal(clst_vault_masterkey_file_load(f->path, &mk, &err), CLST_OK);
    assert_int_equal(clst_random(key, sizeof(key)), CLST_OK);
    assert_int_equal(clst_vault_masterkey_wrap(mk, key, sizeof(key), wrapped, sizeof(wrapped),
                                               &wrapped_size, &err),
                     CLST_OK);
    assert_int_equal(wrapped_size, 40); /* KWP: 32 bytes + 8 */
    assert_true(memcmp(wrapped, key, 32) != 0);
    assert_int_equal(
        clst_vault_masterkey_unwrap(mk, wrapped, wrapped_size, out, sizeof(out), &out_size, &err),
        CLST_OK);
    assert_int_equal(out_size, 32);
    assert_memory_equal(out, key, 32);

    /* Every byte altered: refused as an integrity failure. */
    for (size_t i = 0; i < wrapped_size; i++) {
        uint8_t bad[CLST_VAULT_WRAPPED_MAX];
        memcpy(bad, wrapped, wrapped_size);
        bad[i] ^= 0x01;
        assert_int_equal(
            clst_vault_masterkey_unwrap(mk, bad, wrapped_size, out, sizeof(out), &out_size, &err),
            CLST_E_VERIFY);
    }
    /* Truncated, and of impossible sizes. */
    assert_int_equal(
        clst_vault_masterkey_unwrap(mk, wrapped, 32, out, sizeof(out), &out_size, &err),
        CLST_E_VERIFY);
    assert_int_equal(
        clst_vault_masterkey_unwrap(mk, wrapped, 39, out, sizeof(out), &out_size, &err),
        CLST_E_VERIFY);
    assert_int_equal(clst_vault_masterkey_unwrap(mk, wrapped, 0, out, sizeof(out), &out_size, &err),
                     CLST_E_VERIFY);
    /* Output too small for the key. */
    assert_int_equal(
        clst_vault_masterkey_unwrap(mk, wrapped, wrapped_size, out, 16, &out_size, &err),
        CLST_E_LIMIT);
    /* Missing arguments. */
    assert_int_equal(
        clst_vault_masterkey_wrap(mk, NULL, 32, wrapped, sizeof(wrapped), &wrapped_size, &err),
        CLST_E_INVAL);
    assert_int_equal(clst_vault_masterkey_wrap(mk, key, 32, wrapped, 16, &wrapped_size, &err),
                     CLST_E_LIMIT);
    clst_vault_masterkey_free(mk);
}

static void
test_other_key_cannot_unwrap(void **state)
{
    struct fixture *f = *state;
    struct clst_err err;
    struct clst_vault_masterkey *a = NULL, *b = NULL;
    char other[256];
    uint8_t key[32], wrapped[CLST_VAULT_WRAPPED_MAX], out[32];
    size_t wrapped_size = 0, out_size = 0;

    snprintf(other, sizeof(other), "%s/other.key", f->dir);
    assert_int_equal(clst_vault_masterkey_file_create(f->path, &err), CLST_OK);
    assert_int_equal(clst_vault_masterkey_file_create(other, &err), CLST_OK);
    assert_int_equal(clst_vault_masterkey_file_load(f->path, &a, &err), CLST_OK);
    assert_int_equal(clst_vault_masterkey_file_load(other, &b, &err), CLST_OK);
    assert_string_not_equal(clst_vault_masterkey_id(a), clst_vault_masterkey_id(b));
    assert_int_equal(clst_random(key, sizeof(key)), CLST_OK);
    assert_int_equal(
        clst_vault_masterkey_wrap(a, key, 32, wrapped, sizeof(wrapped), &wrapped_size, &err),
        CLST_OK);
    memset(out, 0xaa, sizeof(out));
    assert_int_equal(
        clst_vault_masterkey_unwrap(b, wrapped, wrapped_size, out, sizeof(out), &out_size, &err),
        CLST_E_VERIFY);
    assert_non_null(strstr(err.msg, "does not unwrap"));
    /* Nothing of the key reached the output. */
    assert_true(memcmp(out, key, sizeof(key)) != 0);
    clst_vault_masterkey_free(a);
    clst_vault_masterkey_free(b);
}

static void
test_refuses_loose_permissions(void **state)
{
    struct fixture *f = *state;
    struct clst_err err;
    struct clst_vault_masterkey *mk = NULL;
    uint8_t key[32] = {1, 2, 3};
    static const mode_t bad_modes[] = {0640, 0604, 0644, 0660, 0606, 0610, 0601, 0700 | 0004};

    for (size_t i = 0; i < sizeof(bad_modes) / sizeof(bad_modes[0]); i++) {
        write_file(f->path, key, sizeof(key), bad_modes[i]);
        mk = NULL;
        assert_int_equal(clst_vault_masterkey_file_load(f->path, &mk, &err), CLST_E_DENIED);
        assert_null(mk);
        assert_non_null(strstr(err.msg, "chmod 600"));
        assert_non_null(strstr(err.msg, f->path));
    }
    /* 0600 and 0400 are fine. */
    write_file(f->path, key, sizeof(key), 0600);
    assert_int_equal(clst_vault_masterkey_file_load(f->path, &mk, &err), CLST_OK);
    clst_vault_masterkey_free(mk);
    write_file(f->path, key, sizeof(key), 0400);
    assert_int_equal(clst_vault_masterkey_file_load(f->path, &mk, &err), CLST_OK);
    clst_vault_masterkey_free(mk);
}

static void
test_refuses_wrong_size_and_type(void **state)
{
    struct fixture *f = *state;
    struct clst_err err;
    struct clst_vault_masterkey *mk = NULL;
    uint8_t buf[64] = {0};
    static const size_t sizes[] = {0, 1, 16, 31, 33, 64};
    char missing[256];

    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        write_file(f->path, buf, sizes[i], 0600);
        assert_int_equal(clst_vault_masterkey_file_load(f->path, &mk, &err), CLST_E_MALFORMED);
        assert_non_null(strstr(err.msg, "exactly 32"));
    }
    /* 64 hex characters are not accepted as a key either. */
    write_file(f->path, "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff", 64,
               0600);
    assert_int_equal(clst_vault_masterkey_file_load(f->path, &mk, &err), CLST_E_MALFORMED);

    snprintf(missing, sizeof(missing), "%s/missing.key", f->dir);
    assert_int_equal(clst_vault_masterkey_file_load(missing, &mk, &err), CLST_E_NOTFOUND);
    /* A directory is not a key file (mode 0700 passes the permission check). */
    assert_int_equal(chmod(f->dir, 0700), 0);
    assert_int_equal(clst_vault_masterkey_file_load(f->dir, &mk, &err), CLST_E_INVAL);
    assert_null(mk);
    assert_int_equal(clst_vault_masterkey_file_load(NULL, &mk, &err), CLST_E_INVAL);
}

static void
test_symlink_is_judged_by_target(void **state)
{
    struct fixture *f = *state;
    struct clst_err err;
    struct clst_vault_masterkey *mk = NULL;
    char link[256];
    uint8_t key[32] = {9};

    snprintf(link, sizeof(link), "%s/link.key", f->dir);
    write_file(f->path, key, sizeof(key), 0600);
    assert_int_equal(symlink(f->path, link), 0);
    assert_int_equal(clst_vault_masterkey_file_load(link, &mk, &err), CLST_OK);
    clst_vault_masterkey_free(mk);
    mk = NULL;
    /* The link's own mode (0777) does not matter; the target's does. */
    assert_int_equal(chmod(f->path, 0644), 0);
    assert_int_equal(clst_vault_masterkey_file_load(link, &mk, &err), CLST_E_DENIED);
}

static void
test_refuses_foreign_owner(void **state)
{
    struct fixture *f = *state;
    struct clst_err err;
    struct clst_vault_masterkey *mk = NULL;
    uint8_t key[32] = {7};

    write_file(f->path, key, sizeof(key), 0600);
    /* Only root can give a file away; as another user this check cannot be set up. */
    if (geteuid() != 0) {
        skip();
    }
    assert_int_equal(chown(f->path, 4242, 4242), 0);
    assert_int_equal(clst_vault_masterkey_file_load(f->path, &mk, &err), CLST_E_DENIED);
    assert_non_null(strstr(err.msg, "uid 4242"));
}

/* A provider that counts its calls and can be made to fail like an unreachable HSM. */
struct mock {
    int wraps, unwraps, frees;
    enum clst_status unwrap_rc;
};

static enum clst_status
mock_wrap(void *ctx, const uint8_t *key, size_t key_size, uint8_t *out, size_t out_cap,
          size_t *out_size, struct clst_err *err)
{
    struct mock *m = ctx;
    (void)err;
    m->wraps++;
    if (out_cap < key_size) {
        return CLST_E_LIMIT;
    }
    for (size_t i = 0; i < key_size; i++) {
        out[i] = (uint8_t)(key[i] ^ 0x5a);
    }
    *out_size = key_size;
    return CLST_OK;
}

static enum clst_status
mock_unwrap(void *ctx, const uint8_t *blob, size_t blob_size, uint8_t *out, size_t out_cap,
            size_t *out_size, struct clst_err *err)
{
    struct mock *m = ctx;
    m->unwraps++;
    if (m->unwrap_rc != CLST_OK) {
        return clst_err_set(err, m->unwrap_rc, "HSM not reachable");
    }
    if (out_cap < blob_size) {
        return CLST_E_LIMIT;
    }
    for (size_t i = 0; i < blob_size; i++) {
        out[i] = (uint8_t)(blob[i] ^ 0x5a);
    }
    *out_size = blob_size;
    return CLST_OK;
}

static void
mock_free(void *ctx)
{
    struct mock *m = ctx;
    m->frees++;
}

static const struct clst_vault_masterkey_ops MOCK_OPS = {
    .name = "mock", .wrap = mock_wrap, .unwrap = mock_unwrap, .free = mock_free};

static void
test_custom_provider(void **state)
{
    (void)state;
    struct mock m = {0};
    struct clst_vault_masterkey *mk = NULL;
    struct clst_err err;
    uint8_t key[32] = {1, 2, 3, 4}, w[64], out[32];
    size_t ws = 0, os = 0;

    /* Ids must be 1..64 printable characters without spaces. */
    assert_int_equal(clst_vault_masterkey_new(&MOCK_OPS, &m, "", &mk), CLST_E_INVAL);
    assert_int_equal(clst_vault_masterkey_new(&MOCK_OPS, &m, "has space", &mk), CLST_E_INVAL);
    char long_id[80];
    memset(long_id, 'a', sizeof(long_id) - 1);
    long_id[sizeof(long_id) - 1] = '\0';
    assert_int_equal(clst_vault_masterkey_new(&MOCK_OPS, &m, long_id, &mk), CLST_E_INVAL);
    assert_int_equal(clst_vault_masterkey_new(NULL, &m, "x", &mk), CLST_E_INVAL);
    assert_null(mk);

    assert_int_equal(clst_vault_masterkey_new(&MOCK_OPS, &m, "pkcs11:slot0/label", &mk), CLST_OK);
    assert_string_equal(clst_vault_masterkey_id(mk), "pkcs11:slot0/label");
    assert_int_equal(clst_vault_masterkey_wrap(mk, key, 32, w, sizeof(w), &ws, &err), CLST_OK);
    assert_int_equal(clst_vault_masterkey_unwrap(mk, w, ws, out, sizeof(out), &os, &err), CLST_OK);
    assert_memory_equal(out, key, 32);
    m.unwrap_rc = CLST_E_IO;
    assert_int_equal(clst_vault_masterkey_unwrap(mk, w, ws, out, sizeof(out), &os, &err),
                     CLST_E_IO);
    assert_int_equal(m.wraps, 1);
    assert_int_equal(m.unwraps, 2);
    clst_vault_masterkey_free(mk);
    assert_int_equal(m.frees, 1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_and_load, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrap_unwrap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_key_cannot_unwrap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuses_loose_permissions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuses_wrong_size_and_type, setup, teardown),
        cmocka_unit_test_setup_teardown(test_symlink_is_judged_by_target, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuses_foreign_owner, setup, teardown),
        cmocka_unit_test(test_custom_provider),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
