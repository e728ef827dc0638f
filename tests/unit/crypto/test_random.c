/* Unit tests for src/crypto/random.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <cloister/crypto.h>

#include "test_util.h"

static void
test_arguments(void **state)
{
    (void)state;
    uint8_t b[4] = {0xAA, 0xAA, 0xAA, 0xAA};

    assert_int_equal(clst_random(NULL, 0), CLST_OK);
    assert_int_equal(clst_random(b, 0), CLST_OK);
    /* size 0 writes nothing */
    assert_int_equal(b[0], 0xAA);
    assert_int_equal(clst_random(NULL, 1), CLST_E_INVAL);
    assert_int_equal(clst_random(NULL, 32), CLST_E_INVAL);
}

/* Two draws of 32 bytes are distinct and neither is all zeros. */
static void
test_distinct(void **state)
{
    (void)state;
    uint8_t a[32] = {0}, b[32] = {0}, zero[32] = {0};

    assert_int_equal(clst_random(a, sizeof(a)), CLST_OK);
    assert_int_equal(clst_random(b, sizeof(b)), CLST_OK);
    assert_memory_not_equal(a, b, sizeof(a));
    assert_memory_not_equal(a, zero, sizeof(a));
    assert_memory_not_equal(b, zero, sizeof(b));
}

/* Exactly `size` bytes are written: the byte after the end is untouched, the last one is not
 * stuck at its old value every time. */
static void
test_exact_size(void **state)
{
    (void)state;
    uint8_t buf[65];
    int last_changed = 0;

    for (int i = 0; i < 64; i++) {
        memset(buf, 0x5C, sizeof(buf));
        assert_int_equal(clst_random(buf, 64), CLST_OK);
        assert_int_equal(buf[64], 0x5C);
        last_changed += buf[63] != 0x5C;
    }
    /* P(buf[63] == 0x5C in all 64 draws) = 256^-64. */
    assert_true(last_changed > 0);
}

/*
 * 1 MiB of output fills the whole buffer with uniformly distributed bytes: a chi-square test over
 * the 256 byte values (255 degrees of freedom, mean 255, sd ~22.6). The bound 450 is more than
 * 8 sd above the mean, so a correct generator fails it with probability far below 1e-12, while a
 * buffer left partly zero (or any gross bias) fails it with certainty.
 */
static void
test_distribution(void **state)
{
    (void)state;
    const size_t size = (size_t)1 << 20;
    uint8_t *buf = calloc(1, size);
    unsigned long count[256] = {0};
    double expected = (double)size / 256.0;
    double chi2 = 0.0;

    assert_non_null(buf);
    assert_int_equal(clst_random(buf, size), CLST_OK);
    for (size_t i = 0; i < size; i++) {
        count[buf[i]]++;
    }
    for (int v = 0; v < 256; v++) {
        double d = (double)count[v] - expected;
        chi2 += d * d / expected;
    }
    assert_true(chi2 < 450.0);
    free(buf);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_arguments),
        cmocka_unit_test(test_distinct),
        cmocka_unit_test(test_exact_size),
        cmocka_unit_test(test_distribution),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
