/*
 * Unit tests for src/enclave/image.c: the image is read once into a sealed memfd that nobody can
 * write, resize or unseal; signing files in place and to another path (re-signing replaces the
 * manifest); measuring signed files, and the errors for tampered, unsigned, missing, too small
 * and non-regular files.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>

#include "encl_fixture.h"

#include "test_util.h"

static void
write_file(const char *path, const void *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, size, f), size);
    assert_int_equal(fclose(f), 0);
}

static void
test_sealed_memfd(void **state)
{
    (void)state;
    char path[PATH_MAX];
    struct image_mem m = {.fd = -1};
    struct clst_err err = {0};
    fx_require_build_file("hello-enclave.so", path, sizeof(path));
    assert_int_equal(image_mem_load(path, &m, &err), CLST_OK);
    size_t n = 0;
    uint8_t *orig = tu_read_file(path, &n);
    assert_non_null(orig);
    assert_int_equal(m.size, n);
    assert_memory_equal(m.map, orig, n);
    int seals = fcntl(m.fd, F_GET_SEALS);
    assert_int_equal(seals & (F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL),
                     F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
    assert_int_equal(pwrite(m.fd, "x", 1, 0), -1);
    assert_int_equal(errno, EPERM);
    assert_int_equal(ftruncate(m.fd, 10), -1);
    assert_int_equal(fcntl(m.fd, F_ADD_SEALS, 0), -1); /* F_SEAL_SEAL: no more changes */
    assert_ptr_equal(mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED, m.fd, 0), MAP_FAILED);
    image_mem_cleanup(&m);
    free(orig);
}

static void
test_load_errors(void **state)
{
    (void)state;
    char dir[PATH_MAX], path[PATH_MAX + 16];
    struct image_mem m = {.fd = -1};
    struct clst_err err = {0};
    fx_tmpdir(dir, sizeof(dir));
    fx_fmt(path, sizeof(path), "%s/missing.so", dir);
    assert_int_equal(image_mem_load(path, &m, &err), CLST_E_NOTFOUND);
    assert_non_null(strstr(err.msg, "cannot open"));
    assert_int_equal(image_mem_load(dir, &m, &err), CLST_E_INVAL);
    fx_fmt(path, sizeof(path), "%s/tiny.so", dir);
    write_file(path,
               "\x7f"
               "ELF",
               4);
    assert_int_equal(image_mem_load(path, &m, &err), CLST_E_LIMIT);
    assert_int_equal(m.fd, -1);
    fx_rmdir(dir);
}

static void
test_sign_measure_files(void **state)
{
    (void)state;
    char dir[PATH_MAX], src[PATH_MAX], a[PATH_MAX + 16], b[PATH_MAX + 16];
    struct clst_err err = {0};
    struct clst_enclave_identity id1, id2, m;
    struct clst_host_sign_params p = {.product_id = 9, .svn = 4, .heap_mib = 32};
    EVP_PKEY *key = fx_ec_key(CLST_CURVE_P256);
    fx_tmpdir(dir, sizeof(dir));
    fx_require_build_file("hello-enclave.so", src, sizeof(src));
    size_t n = 0;
    uint8_t *elf = tu_read_file(src, &n);
    assert_non_null(elf);
    fx_fmt(a, sizeof(a), "%s/a.so", dir);
    fx_fmt(b, sizeof(b), "%s/b.so", dir);
    write_file(a, elf, n);
    /* An unsigned shared object cannot be measured. */
    assert_int_equal(clst_host_image_measure(a, &m, &err), CLST_E_NOTFOUND);
    assert_non_null(strstr(err.msg, "cloister enclave sign"));
    /* In place. */
    assert_int_equal(clst_host_image_sign(a, a, key, &p, &id1, &err), CLST_OK);
    assert_int_equal(clst_host_image_measure(a, &m, &err), CLST_OK);
    assert_memory_equal(&m, &id1, sizeof(m));
    assert_int_equal(m.heap_mib, 32);
    size_t signed_size = 0;
    uint8_t *s1 = tu_read_file(a, &signed_size);
    assert_non_null(s1);
    assert_true(signed_size > n);
    /* Re-signing replaces the manifest instead of stacking another one. */
    p.svn = 5;
    assert_int_equal(clst_host_image_sign(a, b, key, &p, &id2, &err), CLST_OK);
    size_t n2 = 0;
    uint8_t *s2 = tu_read_file(b, &n2);
    assert_non_null(s2);
    assert_int_equal(n2, signed_size);
    assert_memory_equal(s2, elf, n);
    assert_memory_not_equal(id1.mrenclave, id2.mrenclave, 48);
    assert_memory_equal(id1.mrsigner, id2.mrsigner, 32);
    /* Tampering on disk: one image byte, one manifest byte. */
    s2[n / 2] ^= 0x40;
    write_file(b, s2, n2);
    assert_int_equal(clst_host_image_measure(b, &m, &err), CLST_E_VERIFY);
    assert_non_null(strstr(err.msg, "image was modified"));
    s2[n / 2] ^= 0x40;
    s2[n + 14] ^= 0x01; /* the svn field of the manifest */
    write_file(b, s2, n2);
    assert_int_equal(clst_host_image_measure(b, &m, &err), CLST_E_VERIFY);
    assert_non_null(strstr(err.msg, "manifest signature is invalid"));
    /* A damaged manifest is not silently replaced by re-signing. */
    s2[n + 14] ^= 0x01;
    s2[n2 - 16] = 0xff; /* the manifest size now points at the wrong bytes */
    write_file(b, s2, n2);
    assert_int_equal(clst_host_image_sign(b, b, key, &p, NULL, &err), CLST_E_MALFORMED);
    assert_non_null(strstr(err.msg, "damaged manifest"));
    s2[n2 - 15] = 0xff; /* and now it is larger than any manifest */
    write_file(b, s2, n2);
    assert_int_equal(clst_host_image_sign(b, b, key, &p, NULL, &err), CLST_E_MALFORMED);
    assert_non_null(strstr(err.msg, "damaged manifest"));
    free(s1);
    free(s2);
    free(elf);
    EVP_PKEY_free(key);
    fx_rmdir(dir);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sealed_memfd),
        cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_sign_measure_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
