/* Unit tests for src/vault/objseal.c: round trips, the canonical AAD, and every way a stored
 * value can be altered (each byte of ciphertext, tag, nonce and wrapped key; sizes; algorithm;
 * master key id; the kind, name or version it is bound to; values swapped between objects) being
 * refused with CLST_E_VERIFY and no plaintext. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <cloister/crypto.h>

#include "test_util.h"
#include "vault/vault_int.h"
#include "vault_test_util.h"

static const char V1[] = "0123456789abcdef0123456789abcdef";
static const char V2[] = "fedcba9876543210fedcba9876543210";

struct fixture {
    struct tv_env env; /* only the key directory and master key are used */
};

static int
setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    if (f == NULL || tv_env_init_key(&f->env) != 0) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fixture *f = *state;
    tv_env_cleanup(&f->env);
    free(f);
    return 0;
}

/* Copies a sealed value (with its own ciphertext buffer). */
static void
sealed_copy(const struct clst_vault_sealed *in, struct clst_vault_sealed *out)
{
    *out = *in;
    out->ct = malloc(in->ct_size > 0 ? in->ct_size : 1);
    assert_non_null(out->ct);
    if (in->ct_size > 0) {
        memcpy(out->ct, in->ct, in->ct_size);
    }
}

/* Opening must fail with CLST_E_VERIFY, a tamper message, and leave *out untouched. */
static void
expect_tampered(struct clst_vault_masterkey *mk, enum clst_vault_kind kind, const char *name,
                const char *version, const struct clst_vault_sealed *s)
{
    struct clst_secret *pt = NULL;
    struct clst_err err;
    clst_err_clear(&err);
    assert_int_equal(clst_vault_objseal_open(mk, kind, name, version, s, &pt, &err), CLST_E_VERIFY);
    assert_null(pt);
    assert_non_null(strstr(err.msg, "integrity check"));
    assert_non_null(strstr(err.msg, "tampering"));
}

static void
test_round_trip(void **state)
{
    struct fixture *f = *state;
    struct clst_vault_masterkey *mk = f->env.mk;
    struct clst_vault_sealed s;
    struct clst_secret *pt = NULL;
    struct clst_err err;
    static const uint8_t value[] = "-----BEGIN PRIVATE KEY----- not really";

    assert_int_equal(clst_vault_objseal_seal(mk, CLST_VAULT_KIND_KEY, "mykey", V1, value,
                                             sizeof(value), &s, &err),
                     CLST_OK);
    assert_int_equal(s.alg, CLST_VAULT_SEAL_AES256GCM_V1);
    assert_int_equal(s.nonce_size, 12);
    assert_int_equal(s.tag_size, 16);
    assert_int_equal(s.wrapped_size, 40);
    assert_int_equal(s.ct_size, sizeof(value));
    assert_string_equal(s.mk_id, clst_vault_masterkey_id(mk));
    /* The ciphertext is not the plaintext. */
    assert_true(memcmp(s.ct, value, sizeof(value)) != 0);
    assert_int_equal(clst_vault_objseal_open(mk, CLST_VAULT_KIND_KEY, "mykey", V1, &s, &pt, &err),
                     CLST_OK);
    assert_int_equal(pt->size, sizeof(value));
    assert_memory_equal(pt->ptr, value, sizeof(value));
    clst_secret_free(pt);
    clst_vault_sealed_cleanup(&s);

    /* Empty values and the largest allowed value. */
    assert_int_equal(
        clst_vault_objseal_seal(mk, CLST_VAULT_KIND_SECRET, "empty", V1, NULL, 0, &s, &err),
        CLST_OK);
    assert_int_equal(
        clst_vault_objseal_open(mk, CLST_VAULT_KIND_SECRET, "empty", V1, &s, &pt, &err), CLST_OK);
    assert_int_equal(pt->size, 0);
    clst_secret_free(pt);
    clst_vault_sealed_cleanup(&s);

    uint8_t *big = malloc(CLST_VAULT_VALUE_MAX + 1);
    assert_non_null(big);
    memset(big, 0x42, CLST_VAULT_VALUE_MAX + 1);
    assert_int_equal(clst_vault_objseal_seal(mk, CLST_VAULT_KIND_SECRET, "big", V1, big,
                                             CLST_VAULT_VALUE_MAX, &s, &err),
                     CLST_OK);
    assert_int_equal(clst_vault_objseal_open(mk, CLST_VAULT_KIND_SECRET, "big", V1, &s, &pt, &err),
                     CLST_OK);
    assert_int_equal(pt->size, CLST_VAULT_VALUE_MAX);
    assert_memory_equal(pt->ptr, big, CLST_VAULT_VALUE_MAX);
    clst_secret_free(pt);
    clst_vault_sealed_cleanup(&s);
    assert_int_equal(clst_vault_objseal_seal(mk, CLST_VAULT_KIND_SECRET, "big", V1, big,
                                             CLST_VAULT_VALUE_MAX + 1, &s, &err),
                     CLST_E_LIMIT);
    free(big);

    /* Bad arguments. */
    assert_int_equal(
        clst_vault_objseal_seal(mk, (enum clst_vault_kind)3, "x", V1, value, 1, &s, &err),
        CLST_E_INVAL);
    assert_int_equal(clst_vault_objseal_seal(mk, CLST_VAULT_KIND_KEY, NULL, V1, value, 1, &s, &err),
                     CLST_E_INVAL);
    assert_int_equal(
        clst_vault_objseal_seal(NULL, CLST_VAULT_KIND_KEY, "x", V1, value, 1, &s, &err),
        CLST_E_INVAL);
}

static void
test_fresh_key_and_nonce_each_time(void **state)
{
    struct fixture *f = *state;
    struct clst_vault_sealed a, b;
    static const uint8_t value[] = "same value";
    assert_int_equal(clst_vault_objseal_seal(f->env.mk, CLST_VAULT_KIND_SECRET, "s", V1, value,
                                             sizeof(value), &a, NULL),
                     CLST_OK);
    assert_int_equal(clst_vault_objseal_seal(f->env.mk, CLST_VAULT_KIND_SECRET, "s", V1, value,
                                             sizeof(value), &b, NULL),
                     CLST_OK);
    assert_true(memcmp(a.nonce, b.nonce, 12) != 0);
    assert_true(memcmp(a.wrapped, b.wrapped, a.wrapped_size) != 0);
    assert_true(memcmp(a.ct, b.ct, a.ct_size) != 0);
    clst_vault_sealed_cleanup(&a);
    clst_vault_sealed_cleanup(&b);
}

static void
test_aad_is_canonical(void **state)
{
    (void)state;
    struct clst_buf a, b;
    clst_buf_init(&a, 1024);
    clst_buf_init(&b, 1024);

    /* Known answer for one encoding. */
    assert_int_equal(clst_vault_objseal_aad(1, CLST_VAULT_KIND_KEY, "k", "v", &a), CLST_OK);
    static const uint8_t expect[] = {0,   0,   0,   21,  'c', 'l', 'o', 'i', 's', 't',
                                     'e', 'r', '-', 'v', 'a', 'u', 'l', 't', '-', 'o',
                                     'b', 'j', 'e', 'c', 't', 1,   1,   0,   0,   0,
                                     1,   'k', 0,   0,   0,   1,   'v'};
    assert_int_equal(a.size, sizeof(expect));
    assert_memory_equal(a.data, expect, sizeof(expect));

    /* Moving characters between name and version changes the encoding (a naive concatenation
     * would not). */
    clst_buf_reset(&a);
    assert_int_equal(clst_vault_objseal_aad(1, CLST_VAULT_KIND_KEY, "ab", "c", &a), CLST_OK);
    assert_int_equal(clst_vault_objseal_aad(1, CLST_VAULT_KIND_KEY, "a", "bc", &b), CLST_OK);
    assert_int_equal(a.size, b.size);
    assert_true(memcmp(a.data, b.data, a.size) != 0);
    /* The kind is part of it. */
    clst_buf_reset(&b);
    assert_int_equal(clst_vault_objseal_aad(1, CLST_VAULT_KIND_SECRET, "ab", "c", &b), CLST_OK);
    assert_true(memcmp(a.data, b.data, a.size) != 0);
    clst_buf_cleanup(&a);
    clst_buf_cleanup(&b);
}

static void
test_every_byte_altered(void **state)
{
    struct fixture *f = *state;
    struct clst_vault_masterkey *mk = f->env.mk;
    struct clst_vault_sealed s, bad;
    static const uint8_t value[] = "top secret value of forty-odd bytes....";

    assert_int_equal(clst_vault_objseal_seal(mk, CLST_VAULT_KIND_SECRET, "victim", V1, value,
                                             sizeof(value), &s, NULL),
                     CLST_OK);
    for (size_t i = 0; i < s.ct_size; i++) {
        sealed_copy(&s, &bad);
        bad.ct[i] ^= 0x80;
        expect_tampered(mk, CLST_VAULT_KIND_SECRET, "victim", V1, &bad);
        clst_vault_sealed_cleanup(&bad);
    }
    for (size_t i = 0; i < s.tag_size; i++) {
        sealed_copy(&s, &bad);
        bad.tag[i] ^= 0x01;
        expect_tampered(mk, CLST_VAULT_KIND_SECRET, "victim", V1, &bad);
        clst_vault_sealed_cleanup(&bad);
    }
    for (size_t i = 0; i < s.nonce_size; i++) {
        sealed_copy(&s, &bad);
        bad.nonce[i] ^= 0x01;
        expect_tampered(mk, CLST_VAULT_KIND_SECRET, "victim", V1, &bad);
        clst_vault_sealed_cleanup(&bad);
    }
    for (size_t i = 0; i < s.wrapped_size; i++) {
        sealed_copy(&s, &bad);
        bad.wrapped[i] ^= 0x01;
        expect_tampered(mk, CLST_VAULT_KIND_SECRET, "victim", V1, &bad);
        clst_vault_sealed_cleanup(&bad);
    }
    clst_vault_sealed_cleanup(&s);
}

static void
test_wrong_sizes_and_fields(void **state)
{
    struct fixture *f = *state;
    struct clst_vault_masterkey *mk = f->env.mk;
    struct clst_vault_sealed s, bad;
    static const uint8_t value[] = "value";

    assert_int_equal(
        clst_vault_objseal_seal(mk, CLST_VAULT_KIND_KEY, "k", V1, value, sizeof(value), &s, NULL),
        CLST_OK);
#define MUTATE(stmt)                                                                               \
    do {                                                                                           \
        sealed_copy(&s, &bad);                                                                     \
        stmt;                                                                                      \
        expect_tampered(mk, CLST_VAULT_KIND_KEY, "k", V1, &bad);                                   \
        clst_vault_sealed_cleanup(&bad);                                                           \
    } while (0)
    MUTATE(bad.alg = 2);
    MUTATE(bad.alg = 0);
    MUTATE(bad.nonce_size = 11);
    MUTATE(bad.nonce_size = 16);
    MUTATE(bad.tag_size = 12); /* a valid GCM tag length, but not what we store */
    MUTATE(bad.tag_size = 0);
    MUTATE(bad.wrapped_size = 0);
    MUTATE(bad.wrapped_size = 32);
    MUTATE(bad.wrapped_size = 48);
    MUTATE(bad.wrapped_size = sizeof(bad.wrapped) + 1);
    MUTATE(bad.ct_size = s.ct_size - 1);
    MUTATE(bad.ct_size = 0);
    MUTATE(bad.ct_size = (size_t)CLST_VAULT_VALUE_MAX + 1);
#undef MUTATE

    /* Another master key id: named in the message. */
    struct clst_secret *pt = NULL;
    struct clst_err err;
    sealed_copy(&s, &bad);
    snprintf(bad.mk_id, sizeof(bad.mk_id), "file:0000000000000000");
    assert_int_equal(clst_vault_objseal_open(mk, CLST_VAULT_KIND_KEY, "k", V1, &bad, &pt, &err),
                     CLST_E_VERIFY);
    assert_null(pt);
    assert_non_null(strstr(err.msg, "file:0000000000000000"));
    assert_non_null(strstr(err.msg, clst_vault_masterkey_id(mk)));
    clst_vault_sealed_cleanup(&bad);
    clst_vault_sealed_cleanup(&s);
}

static void
test_bound_to_kind_name_version(void **state)
{
    struct fixture *f = *state;
    struct clst_vault_masterkey *mk = f->env.mk;
    struct clst_vault_sealed s;
    static const uint8_t value[] = "value";

    assert_int_equal(clst_vault_objseal_seal(mk, CLST_VAULT_KIND_KEY, "alpha", V1, value,
                                             sizeof(value), &s, NULL),
                     CLST_OK);
    expect_tampered(mk, CLST_VAULT_KIND_SECRET, "alpha", V1, &s); /* other kind */
    expect_tampered(mk, CLST_VAULT_KIND_KEY, "alphb", V1, &s);    /* other name */
    expect_tampered(mk, CLST_VAULT_KIND_KEY, "Alpha", V1, &s);    /* case matters here: the
                                                                     store passes folded names */
    expect_tampered(mk, CLST_VAULT_KIND_KEY, "alpha", V2, &s);    /* other version */
    expect_tampered(mk, CLST_VAULT_KIND_KEY, "alpha", "", &s);
    clst_vault_sealed_cleanup(&s);
}

static void
test_swapped_values(void **state)
{
    struct fixture *f = *state;
    struct clst_vault_masterkey *mk = f->env.mk;
    struct clst_vault_sealed a, b;
    static const uint8_t va[] = "value of a";
    static const uint8_t vb[] = "value of b";

    assert_int_equal(
        clst_vault_objseal_seal(mk, CLST_VAULT_KIND_SECRET, "a", V1, va, sizeof(va), &a, NULL),
        CLST_OK);
    assert_int_equal(
        clst_vault_objseal_seal(mk, CLST_VAULT_KIND_SECRET, "b", V1, vb, sizeof(vb), &b, NULL),
        CLST_OK);
    /* Whole value of b presented as a, and the reverse. */
    expect_tampered(mk, CLST_VAULT_KIND_SECRET, "a", V1, &b);
    expect_tampered(mk, CLST_VAULT_KIND_SECRET, "b", V1, &a);
    /* Only the wrapped keys swapped. */
    uint8_t tmp[CLST_VAULT_WRAPPED_MAX];
    memcpy(tmp, a.wrapped, sizeof(tmp));
    memcpy(a.wrapped, b.wrapped, sizeof(tmp));
    memcpy(b.wrapped, tmp, sizeof(tmp));
    expect_tampered(mk, CLST_VAULT_KIND_SECRET, "a", V1, &a);
    expect_tampered(mk, CLST_VAULT_KIND_SECRET, "b", V1, &b);
    clst_vault_sealed_cleanup(&a);
    clst_vault_sealed_cleanup(&b);
}

/* A provider with the same id as the file key but another key: its unwrap fails integrity. */
struct other_kwp {
    uint8_t kek[32];
    enum clst_status fail;
};

static enum clst_status
other_wrap(void *ctx, const uint8_t *key, size_t key_size, uint8_t *out, size_t out_cap,
           size_t *out_size, struct clst_err *err)
{
    struct other_kwp *o = ctx;
    (void)err;
    return clst_aes_kwp_wrap(o->kek, 32, key, key_size, out, out_cap, out_size);
}

static enum clst_status
other_unwrap(void *ctx, const uint8_t *blob, size_t blob_size, uint8_t *out, size_t out_cap,
             size_t *out_size, struct clst_err *err)
{
    struct other_kwp *o = ctx;
    if (o->fail != CLST_OK) {
        return clst_err_set(err, o->fail, "token not present");
    }
    return clst_aes_kwp_unwrap(o->kek, 32, blob, blob_size, out, out_cap, out_size);
}

static const struct clst_vault_masterkey_ops OTHER_OPS = {
    .name = "other", .wrap = other_wrap, .unwrap = other_unwrap, .free = NULL};

static void
test_wrong_master_key_and_provider_errors(void **state)
{
    struct fixture *f = *state;
    struct clst_vault_sealed s;
    struct other_kwp o;
    struct clst_vault_masterkey *impostor = NULL;
    struct clst_secret *pt = NULL;
    struct clst_err err;
    static const uint8_t value[] = "value";

    memset(&o, 0x33, sizeof(o.kek));
    o.fail = CLST_OK;
    assert_int_equal(
        clst_vault_masterkey_new(&OTHER_OPS, &o, clst_vault_masterkey_id(f->env.mk), &impostor),
        CLST_OK);
    assert_int_equal(clst_vault_objseal_seal(f->env.mk, CLST_VAULT_KIND_KEY, "k", V1, value,
                                             sizeof(value), &s, NULL),
                     CLST_OK);
    expect_tampered(impostor, CLST_VAULT_KIND_KEY, "k", V1, &s);

    /* An HSM that cannot be reached is an operational error, not tampering. */
    o.fail = CLST_E_IO;
    assert_int_equal(clst_vault_objseal_open(impostor, CLST_VAULT_KIND_KEY, "k", V1, &s, &pt, &err),
                     CLST_E_IO);
    assert_null(pt);
    assert_null(strstr(err.msg, "tampering"));
    assert_non_null(strstr(err.msg, "token not present"));
    clst_vault_sealed_cleanup(&s);
    clst_vault_masterkey_free(impostor);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fresh_key_and_nonce_each_time, setup, teardown),
        cmocka_unit_test(test_aad_is_canonical),
        cmocka_unit_test_setup_teardown(test_every_byte_altered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_sizes_and_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bound_to_kind_name_version, setup, teardown),
        cmocka_unit_test_setup_teardown(test_swapped_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_master_key_and_provider_errors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
