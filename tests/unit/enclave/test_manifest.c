/*
 * Unit tests for src/enclave/manifest.c: signing and verifying images in memory with each signer
 * kind (P-256, P-384, RSA-PSS), the identity it yields, and rejection of every single-byte change
 * to the manifest and trailer, changes to the image, truncations, unsigned files, non-ELF data,
 * wrong key kinds, and measurements that move with every identity field.
 */
#define _GNU_SOURCE
#include "encl_fixture.h"

#include "test_util.h"

static uint8_t *
load_module(size_t *size)
{
    char path[PATH_MAX];
    fx_require_build_file("hello-enclave.so", path, sizeof(path));
    uint8_t *b = tu_read_file(path, size);
    assert_non_null(b);
    return b;
}

static void
sign(const uint8_t *elf, size_t n, EVP_PKEY *key, struct clst_host_sign_params *p,
     struct clst_buf *out, struct clst_enclave_identity *id)
{
    struct clst_err err = {0};
    clst_buf_init(out, n + 8192);
    if (image_sign_bytes(elf, n, key, p, out, id, &err) != CLST_OK) {
        fail_msg("sign: %s", err.msg);
    }
}

static void
test_sign_verify_each_key_kind(void **state)
{
    (void)state;
    size_t n = 0;
    uint8_t *elf = load_module(&n);
    EVP_PKEY *keys[3] = {fx_ec_key(CLST_CURVE_P256), fx_ec_key(CLST_CURVE_P384), NULL};
    assert_int_equal(clst_rsa_generate(2048, &keys[2]), CLST_OK);
    for (int k = 0; k < 3; k++) {
        struct clst_host_sign_params p = {
            .product_id = 7, .svn = 3, .debug = k == 1, .heap_mib = 0};
        struct clst_enclave_identity id, v;
        struct clst_buf b;
        struct clst_err err = {0};
        uint8_t spki_hash[32];
        struct clst_buf spki;
        sign(elf, n, keys[k], &p, &b, &id);
        assert_int_equal(image_verify(b.data, b.size, &v, &err), CLST_OK);
        assert_memory_equal(&id, &v, sizeof(id));
        assert_int_equal(v.product_id, 7);
        assert_int_equal(v.svn, 3);
        assert_int_equal(v.debug, k == 1);
        assert_int_equal(v.heap_mib, CLST_HOST_HEAP_DEFAULT_MIB);
        /* The signer id is SHA-256 of the public key's DER SubjectPublicKeyInfo. */
        clst_buf_init(&spki, 4096);
        assert_int_equal(clst_pkey_to_der(keys[k], false, &spki), CLST_OK);
        assert_int_equal(clst_sha256(spki.data, spki.size, spki_hash), CLST_OK);
        assert_memory_equal(v.mrsigner, spki_hash, 32);
        /* The measurement is the documented hash. */
        uint8_t m[48];
        assert_int_equal(image_measure(elf, n, k == 1 ? 1 : 0, 7, 3, CLST_HOST_HEAP_DEFAULT_MIB, m),
                         CLST_OK);
        assert_memory_equal(v.mrenclave, m, 48);
        /* The image bytes come first, unchanged. */
        assert_memory_equal(b.data, elf, n);
        clst_buf_cleanup(&spki);
        clst_buf_cleanup(&b);
        EVP_PKEY_free(keys[k]);
    }
    free(elf);
}

static void
test_every_manifest_byte_matters(void **state)
{
    (void)state;
    size_t n, msize, image_size;
    const uint8_t *mbytes;
    uint8_t *elf = load_module(&n);
    EVP_PKEY *key = fx_ec_key(CLST_CURVE_P256);
    struct clst_host_sign_params p = {.product_id = 1, .svn = 1};
    struct clst_enclave_identity id;
    struct clst_buf b;
    struct clst_err err = {0};
    sign(elf, n, key, &p, &b, &id);
    assert_int_equal(image_split(b.data, b.size, &image_size, &mbytes, &msize, &err), CLST_OK);
    assert_int_equal(image_size, n);
    /* Verified once first: the process then remembers the original manifest's signature as good
     * (manifest.c), and no altered copy may benefit. */
    assert_int_equal(image_verify(b.data, b.size, &id, &err), CLST_OK);
    /* Flip each bit position 0 and 7 of every byte after the image: manifest and trailer. */
    size_t rejected = 0, total = 0;
    for (size_t i = n; i < b.size; i++) {
        for (int bit = 0; bit < 8; bit += 7) {
            b.data[i] ^= (uint8_t)(1u << bit);
            enum clst_status st = image_verify(b.data, b.size, &id, &err);
            b.data[i] ^= (uint8_t)(1u << bit);
            total++;
            if (st != CLST_OK) {
                rejected++;
            } else {
                fail_msg("flipping bit %d of byte %zu (manifest offset %zu) was accepted", bit, i,
                         i - n);
            }
        }
    }
    assert_int_equal(rejected, total);
    assert_int_equal(image_verify(b.data, b.size, &id, &err), CLST_OK);
    clst_buf_cleanup(&b);
    EVP_PKEY_free(key);
    free(elf);
}

static void
test_image_changes_and_truncation(void **state)
{
    (void)state;
    size_t n = 0;
    uint8_t *elf = load_module(&n);
    EVP_PKEY *key = fx_ec_key(CLST_CURVE_P256);
    struct clst_host_sign_params p = {.product_id = 1, .svn = 1};
    struct clst_enclave_identity id;
    struct clst_buf b;
    struct clst_err err = {0};
    sign(elf, n, key, &p, &b, &id);
    /* A sample of image bytes across the whole ELF. */
    for (size_t i = 0; i < n; i += 97) {
        b.data[i] ^= 0x01;
        assert_int_equal(image_verify(b.data, b.size, &id, &err), CLST_E_VERIFY);
        assert_non_null(strstr(err.msg, "modified"));
        b.data[i] ^= 0x01;
    }
    /* Truncations: at every length near the end, and the bare image. */
    for (size_t cut = 1; cut < 300; cut++) {
        assert_int_not_equal(image_verify(b.data, b.size - cut, &id, &err), CLST_OK);
    }
    assert_int_equal(image_verify(b.data, n, &id, &err), CLST_E_NOTFOUND);
    assert_non_null(strstr(err.msg, "not signed"));
    /* Bytes inserted between image and manifest: sizes no longer add up. */
    struct clst_buf c;
    clst_buf_init(&c, b.size + 1);
    assert_int_equal(clst_buf_append(&c, b.data, n), CLST_OK);
    assert_int_equal(clst_buf_append_byte(&c, 0), CLST_OK);
    assert_int_equal(clst_buf_append(&c, b.data + n, b.size - n), CLST_OK);
    assert_int_equal(image_verify(c.data, c.size, &id, &err), CLST_E_VERIFY);
    clst_buf_cleanup(&c);
    clst_buf_cleanup(&b);
    EVP_PKEY_free(key);
    free(elf);
}

static void
test_measurement_covers_identity(void **state)
{
    (void)state;
    size_t n = 0;
    uint8_t *elf = load_module(&n);
    uint8_t base[48], m[48];
    assert_int_equal(image_measure(elf, n, 0, 1, 1, 64, base), CLST_OK);
    assert_int_equal(image_measure(elf, n, 1, 1, 1, 64, m), CLST_OK);
    assert_memory_not_equal(base, m, 48);
    assert_int_equal(image_measure(elf, n, 0, 2, 1, 64, m), CLST_OK);
    assert_memory_not_equal(base, m, 48);
    assert_int_equal(image_measure(elf, n, 0, 1, 2, 64, m), CLST_OK);
    assert_memory_not_equal(base, m, 48);
    assert_int_equal(image_measure(elf, n, 0, 1, 1, 65, m), CLST_OK);
    assert_memory_not_equal(base, m, 48);
    assert_int_equal(image_measure(elf, n - 1, 0, 1, 1, 64, m), CLST_OK);
    assert_memory_not_equal(base, m, 48);
    assert_int_equal(image_measure(elf, n, 0, 1, 1, 64, m), CLST_OK);
    assert_memory_equal(base, m, 48);
    free(elf);
}

static void
test_refusals(void **state)
{
    (void)state;
    size_t n = 0;
    uint8_t *elf = load_module(&n);
    struct clst_host_sign_params p = {.product_id = 1, .svn = 1};
    struct clst_buf b;
    struct clst_err err = {0};
    EVP_PKEY *p521 = fx_ec_key(CLST_CURVE_P521), *key = fx_ec_key(CLST_CURVE_P256), *pub = NULL;
    clst_buf_init(&b, n + 8192);
    /* Unsupported signer kinds and public-only keys. */
    assert_int_equal(image_sign_bytes(elf, n, p521, &p, &b, NULL, &err), CLST_E_INVAL);
    assert_int_equal(clst_pkey_public_copy(key, &pub), CLST_OK);
    assert_int_equal(image_sign_bytes(elf, n, pub, &p, &b, NULL, &err), CLST_E_INVAL);
    /* Not an ELF shared object. */
    static const uint8_t text[100] = "just some text that is not an ELF file at all.....";
    assert_int_equal(image_sign_bytes(text, sizeof(text), key, &p, &b, NULL, &err),
                     CLST_E_MALFORMED);
    assert_non_null(strstr(err.msg, "not an ELF"));
    uint8_t *exe = malloc(n);
    assert_non_null(exe);
    memcpy(exe, elf, n);
    exe[16] = 2; /* e_type = ET_EXEC */
    assert_int_equal(image_sign_bytes(exe, n, key, &p, &b, NULL, &err), CLST_E_MALFORMED);
    assert_non_null(strstr(err.msg, "shared object"));
    free(exe);
    p.heap_mib = CLST_HOST_HEAP_MAX_MIB + 1;
    assert_int_equal(image_sign_bytes(elf, n, key, &p, &b, NULL, &err), CLST_E_INVAL);
    assert_int_equal(b.size, 0);
    clst_buf_cleanup(&b);
    EVP_PKEY_free(p521);
    EVP_PKEY_free(key);
    EVP_PKEY_free(pub);
    free(elf);
}

/* Parsing rules: truncation at every length, a trailing byte, the reserved field, an unknown
 * flag, an unknown algorithm and a zero heap. */
static void
test_manifest_parse_rules(void **state)
{
    (void)state;
    size_t n, msize, image_size;
    const uint8_t *mbytes;
    uint8_t *elf = load_module(&n);
    EVP_PKEY *key = fx_ec_key(CLST_CURVE_P256);
    struct clst_host_sign_params p = {.product_id = 1, .svn = 1};
    struct clst_enclave_identity id;
    struct manifest m;
    struct clst_buf b;
    struct clst_err err = {0};
    sign(elf, n, key, &p, &b, &id);
    assert_int_equal(image_split(b.data, b.size, &image_size, &mbytes, &msize, &err), CLST_OK);
    assert_int_equal(manifest_parse(mbytes, msize, &m, &err), CLST_OK);
    assert_int_equal(m.sig_alg, SIG_ES256);
    assert_int_equal(m.sig_size, 64);
    for (size_t cut = 0; cut < msize; cut++) {
        assert_int_not_equal(manifest_parse(mbytes, cut, &m, &err), CLST_OK);
    }
    uint8_t *copy = malloc(msize + 1);
    assert_non_null(copy);
    memcpy(copy, mbytes, msize);
    copy[msize] = 0;
    assert_int_equal(manifest_parse(copy, msize + 1, &m, &err), CLST_E_MALFORMED);
    /* Reserved field, unknown flag, unknown algorithm, zero heap. */
    struct {
        size_t off;
        uint8_t val;
    } bad[] = {{20, 1}, {8, 2}, {6, 9}, {16, 0}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memcpy(copy, mbytes, msize);
        copy[bad[i].off] = bad[i].val;
        if (bad[i].off == 16) {
            memset(copy + 16, 0, 4);
        }
        assert_int_equal(manifest_parse(copy, msize, &m, &err), CLST_E_MALFORMED);
    }
    free(copy);
    clst_buf_cleanup(&b);
    EVP_PKEY_free(key);
    free(elf);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sign_verify_each_key_kind),
        cmocka_unit_test(test_every_manifest_byte_matters),
        cmocka_unit_test(test_image_changes_and_truncation),
        cmocka_unit_test(test_measurement_covers_identity),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_manifest_parse_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
