/*
 * Unit tests for src/enclave/seal.c without processes: the key source is the platform's real
 * derivation (seal_key_derive) bound to the *true* identity of the enclave that asks, exactly as
 * the host does it. Covered: both policies round-trip; an enclave with a higher svn unseals older
 * blobs of its signer, never the reverse; another measurement, signer, product or debug mode
 * fails; a forged header that claims our identity still fails (the key differs); every header
 * byte, the ciphertext, the tag and the aad are authenticated; the header parser's rules; the
 * derivation's separation of identities.
 */
#define _GNU_SOURCE
#include "encl_fixture.h"

static uint8_t secret[CLST_SIM_SEALING_SECRET_SIZE];

/* The platform: derives for the true identity of the enclave that calls. */
static enum clst_status
platform(void *ctx, uint16_t policy, uint16_t svn, const uint8_t key_id[static SEAL_KEY_ID_SIZE],
         uint8_t out[static SEAL_KEY_SIZE], struct clst_err *err)
{
    const struct clst_enclave_identity *true_id = ctx;
    return seal_key_derive(secret, true_id, policy, svn, key_id, out, err);
}

static struct clst_enclave_identity
ident(uint8_t m, uint8_t s, uint16_t product, uint16_t svn, bool debug)
{
    struct clst_enclave_identity id;
    memset(&id, 0, sizeof(id));
    memset(id.mrenclave, m, sizeof(id.mrenclave));
    memset(id.mrsigner, s, sizeof(id.mrsigner));
    id.product_id = product;
    id.svn = svn;
    id.debug = debug;
    id.heap_mib = 64;
    return id;
}

static size_t
do_seal(const struct clst_enclave_identity *id, enum clst_enclave_seal_policy policy,
        const char *aad, const char *msg, uint8_t *out, size_t cap)
{
    struct seal_keysrc ks = {platform, (void *)(uintptr_t)id};
    struct clst_err err = {0};
    size_t n = 0;
    if (seal_blob(&ks, id, policy, (const uint8_t *)aad, aad ? strlen(aad) : 0,
                  (const uint8_t *)msg, strlen(msg), out, cap, &n, &err) != CLST_OK) {
        fail_msg("seal: %s", err.msg);
    }
    assert_int_equal(n, strlen(msg) + CLST_SEAL_OVERHEAD);
    return n;
}

static enum clst_status
do_unseal(const struct clst_enclave_identity *id, const char *aad, const uint8_t *blob, size_t n,
          char *out, size_t cap, struct clst_err *err)
{
    struct seal_keysrc ks = {platform, (void *)(uintptr_t)id};
    size_t m = 0;
    enum clst_status st = unseal_blob(&ks, id, (const uint8_t *)aad, aad ? strlen(aad) : 0, blob, n,
                                      (uint8_t *)out, cap, &m, err);
    if (st == CLST_OK) {
        out[m] = '\0';
    }
    return st;
}

static int
setup(void **state)
{
    (void)state;
    return clst_random(secret, sizeof(secret)) == CLST_OK ? 0 : -1;
}

static void
test_roundtrip_both_policies(void **state)
{
    (void)state;
    struct clst_enclave_identity me = ident(1, 2, 3, 4, false);
    uint8_t blob[256];
    char out[64];
    struct clst_err err = {0};
    for (int pol = CLST_SEAL_TO_MEASUREMENT; pol <= CLST_SEAL_TO_SIGNER; pol++) {
        size_t n = do_seal(&me, (enum clst_enclave_seal_policy)pol, "ctx", "secret data", blob,
                           sizeof(blob));
        assert_memory_equal(blob, SEAL_MAGIC, 4);
        assert_int_equal(do_unseal(&me, "ctx", blob, n, out, sizeof(out), &err), CLST_OK);
        assert_string_equal(out, "secret data");
        /* The aad is authenticated. */
        assert_int_equal(do_unseal(&me, "ctX", blob, n, out, sizeof(out), &err), CLST_E_VERIFY);
        assert_int_equal(do_unseal(&me, NULL, blob, n, out, sizeof(out), &err), CLST_E_VERIFY);
    }
    /* Two seals of the same data differ (fresh key id and nonce). */
    uint8_t a[256], b[256];
    size_t na = do_seal(&me, CLST_SEAL_TO_SIGNER, NULL, "x", a, sizeof(a));
    size_t nb = do_seal(&me, CLST_SEAL_TO_SIGNER, NULL, "x", b, sizeof(b));
    assert_int_equal(na, nb);
    assert_memory_not_equal(a, b, na);
    /* Empty data seals and unseals. */
    size_t ne = do_seal(&me, CLST_SEAL_TO_MEASUREMENT, NULL, "", a, sizeof(a));
    assert_int_equal(do_unseal(&me, NULL, a, ne, out, sizeof(out), &err), CLST_OK);
    assert_string_equal(out, "");
}

static void
test_svn_rules(void **state)
{
    (void)state;
    struct clst_enclave_identity v2 = ident(1, 2, 3, 2, false);
    struct clst_enclave_identity v3 = ident(9, 2, 3, 3, false); /* a newer build: new measurement */
    struct clst_enclave_identity v1 = ident(8, 2, 3, 1, false);
    uint8_t blob[256];
    char out[64];
    struct clst_err err = {0};
    size_t n = do_seal(&v2, CLST_SEAL_TO_SIGNER, NULL, "v2 data", blob, sizeof(blob));
    /* Newer unseals older. */
    assert_int_equal(do_unseal(&v3, NULL, blob, n, out, sizeof(out), &err), CLST_OK);
    assert_string_equal(out, "v2 data");
    /* Older never unseals newer. */
    assert_int_equal(do_unseal(&v1, NULL, blob, n, out, sizeof(out), &err), CLST_E_DENIED);
    assert_non_null(strstr(err.msg, "newer than this enclave's svn"));
    /* Even when the enclave lies about the blob's svn, the platform refuses a newer key... */
    uint8_t key[SEAL_KEY_SIZE], key_id[SEAL_KEY_ID_SIZE] = {0};
    assert_int_equal(seal_key_derive(secret, &v1, CLST_SEAL_TO_SIGNER, 2, key_id, key, &err),
                     CLST_E_DENIED);
    /* ...and rewriting the svn field to its own makes the AEAD fail (the header is the aad). */
    clst_put_le16(blob + 8, 1);
    assert_int_equal(do_unseal(&v1, NULL, blob, n, out, sizeof(out), &err), CLST_E_VERIFY);
    /* A measurement-bound blob is for that exact build only. */
    n = do_seal(&v2, CLST_SEAL_TO_MEASUREMENT, NULL, "exact", blob, sizeof(blob));
    assert_int_equal(do_unseal(&v3, NULL, blob, n, out, sizeof(out), &err), CLST_E_VERIFY);
    assert_non_null(strstr(err.msg, "another measurement"));
}

static void
test_other_identities(void **state)
{
    (void)state;
    struct clst_enclave_identity me = ident(1, 2, 3, 4, false);
    struct {
        struct clst_enclave_identity id;
        const char *why;
    } others[] = {
        {ident(1, 7, 3, 4, false), "another signer"},
        {ident(1, 2, 5, 4, false), "product"},
        {ident(1, 2, 3, 4, true), "debug"},
    };
    uint8_t blob[256];
    char out[64];
    struct clst_err err = {0};
    size_t n = do_seal(&me, CLST_SEAL_TO_SIGNER, NULL, "mine", blob, sizeof(blob));
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
        assert_int_equal(do_unseal(&others[i].id, NULL, blob, n, out, sizeof(out), &err),
                         CLST_E_VERIFY);
        assert_non_null(strstr(err.msg, others[i].why));
    }
    n = do_seal(&me, CLST_SEAL_TO_MEASUREMENT, NULL, "mine", blob, sizeof(blob));
    struct clst_enclave_identity other_m = ident(6, 2, 3, 4, false);
    assert_int_equal(do_unseal(&other_m, NULL, blob, n, out, sizeof(out), &err), CLST_E_VERIFY);
}

/* An attacker enclave rewrites a victim's header to name itself: it passes the identity checks,
 * but the platform derives the key for the attacker's true identity, so the AEAD fails. */
static void
test_forged_header(void **state)
{
    (void)state;
    struct clst_enclave_identity victim = ident(1, 2, 3, 4, false);
    struct clst_enclave_identity attacker = ident(5, 6, 3, 4, false);
    uint8_t blob[256];
    char out[64];
    struct clst_err err = {0};
    size_t n = do_seal(&victim, CLST_SEAL_TO_SIGNER, NULL, "victim", blob, sizeof(blob));
    memcpy(blob + 16, attacker.mrsigner, 32);
    assert_int_equal(do_unseal(&attacker, NULL, blob, n, out, sizeof(out), &err), CLST_E_VERIFY);
    assert_non_null(strstr(err.msg, "authentication failed"));
    n = do_seal(&victim, CLST_SEAL_TO_MEASUREMENT, NULL, "victim", blob, sizeof(blob));
    memcpy(blob + 16, attacker.mrenclave, 48);
    assert_int_equal(do_unseal(&attacker, NULL, blob, n, out, sizeof(out), &err), CLST_E_VERIFY);
}

static void
test_every_byte_authenticated(void **state)
{
    (void)state;
    struct clst_enclave_identity me = ident(1, 2, 3, 4, false);
    uint8_t blob[256];
    char out[64];
    struct clst_err err = {0};
    size_t n = do_seal(&me, CLST_SEAL_TO_SIGNER, NULL, "every byte counts", blob, sizeof(blob));
    for (size_t i = 0; i < n; i++) {
        blob[i] ^= 0x04;
        assert_int_not_equal(do_unseal(&me, NULL, blob, n, out, sizeof(out), &err), CLST_OK);
        blob[i] ^= 0x04;
    }
    for (size_t cut = 0; cut < n; cut++) {
        assert_int_equal(do_unseal(&me, NULL, blob, cut, out, sizeof(out), &err), CLST_E_MALFORMED);
    }
    assert_int_equal(do_unseal(&me, NULL, blob, n, out, sizeof(out), &err), CLST_OK);
    /* Output too small: nothing written, a clear limit. */
    assert_int_equal(do_unseal(&me, NULL, blob, n, out, 3, &err), CLST_E_LIMIT);
}

static void
test_header_rules(void **state)
{
    (void)state;
    struct clst_enclave_identity me = ident(1, 2, 3, 4, true);
    uint8_t blob[256];
    struct seal_hdr h;
    struct clst_err err = {0};
    size_t n = do_seal(&me, CLST_SEAL_TO_SIGNER, NULL, "abc", blob, sizeof(blob));
    assert_int_equal(seal_hdr_parse(blob, n, &h, &err), CLST_OK);
    assert_int_equal(h.policy, CLST_SEAL_TO_SIGNER);
    assert_int_equal(h.svn, 4);
    assert_int_equal(h.product_id, 3);
    assert_int_equal(h.flags, SEAL_FLAG_DEBUG);
    assert_int_equal(h.plaintext_size, 3);
    assert_memory_equal(h.identity, me.mrsigner, 32);
    struct {
        size_t off;
        uint8_t val;
    } bad[] = {{0, 'X'}, {4, 2}, {6, 3}, {6, 0}, {12, 2}, {50, 1}, {108, 9}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint8_t saved = blob[bad[i].off];
        blob[bad[i].off] = bad[i].val;
        assert_int_equal(seal_hdr_parse(blob, n, &h, &err), CLST_E_MALFORMED);
        blob[bad[i].off] = saved;
    }
    struct seal_keysrc ks = {platform, &me};
    size_t m;
    assert_int_equal(seal_blob(&ks, &me, (enum clst_enclave_seal_policy)3, NULL, 0,
                               (const uint8_t *)"a", 1, blob, sizeof(blob), &m, &err),
                     CLST_E_INVAL);
    assert_int_equal(seal_blob(&ks, &me, CLST_SEAL_TO_SIGNER, NULL, 0, (const uint8_t *)"a", 1,
                               blob, CLST_SEAL_OVERHEAD, &m, &err),
                     CLST_E_LIMIT);
}

static void
test_derivation_separates(void **state)
{
    (void)state;
    struct clst_enclave_identity base = ident(1, 2, 3, 4, false);
    uint8_t kid[SEAL_KEY_ID_SIZE] = {1}, k0[32], k[32];
    struct clst_err err = {0};
    assert_int_equal(seal_key_derive(secret, &base, CLST_SEAL_TO_SIGNER, 4, kid, k0, &err),
                     CLST_OK);
    struct clst_enclave_identity variants[] = {ident(1, 3, 3, 4, false), ident(1, 2, 4, 4, false),
                                               ident(1, 2, 3, 4, true)};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(
            seal_key_derive(secret, &variants[i], CLST_SEAL_TO_SIGNER, 4, kid, k, &err), CLST_OK);
        assert_memory_not_equal(k0, k, 32);
    }
    /* Same signer/product, another measurement: same signer key (that is the point). */
    struct clst_enclave_identity rebuilt = ident(9, 2, 3, 4, false);
    assert_int_equal(seal_key_derive(secret, &rebuilt, CLST_SEAL_TO_SIGNER, 4, kid, k, &err),
                     CLST_OK);
    assert_memory_equal(k0, k, 32);
    assert_int_equal(seal_key_derive(secret, &base, CLST_SEAL_TO_SIGNER, 3, kid, k, &err), CLST_OK);
    assert_memory_not_equal(k0, k, 32);
    kid[5] = 1;
    assert_int_equal(seal_key_derive(secret, &base, CLST_SEAL_TO_SIGNER, 4, kid, k, &err), CLST_OK);
    assert_memory_not_equal(k0, k, 32);
    assert_int_equal(seal_key_derive(secret, &base, CLST_SEAL_TO_MEASUREMENT, 4, kid, k, &err),
                     CLST_OK);
    assert_memory_not_equal(k0, k, 32);
    assert_int_equal(seal_key_derive(secret, &base, 3, 4, kid, k, &err), CLST_E_INVAL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_both_policies),  cmocka_unit_test(test_svn_rules),
        cmocka_unit_test(test_other_identities),         cmocka_unit_test(test_forged_header),
        cmocka_unit_test(test_every_byte_authenticated), cmocka_unit_test(test_header_rules),
        cmocka_unit_test(test_derivation_separates),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
