/*
 * Unit tests for src/enclave/rt.c, the enclave side, through real enclaves:
 *  - sealing across enclave identities: one .so signed as several versions, products, signers
 *    and debug modes; a signer-bound blob opens in the same or a higher svn of that signer and
 *    product only, never with another signer, product or debug mode; a measurement-bound blob
 *    opens only where the measurement is the same (the same code and identity fields);
 *  - key release material made inside: an RSA key pair, runtime data naming its public JWK,
 *    evidence binding SHA-256(runtime data) that a verifier accepts, and a key wrapped to that JWK
 *    (CKM_RSA_AES_KEY_WRAP family) unwrapped inside without the host ever seeing it;
 *  - a host that writes garbage or oversized frames: the enclave stops, and says why.
 */
#define _GNU_SOURCE
#include "encl_fixture.h"

#include <cloister/jose.h>

struct fx {
    char dir[PATH_MAX];
    char platform_dir[PATH_MAX + 16];
    struct clst_sim_platform *platform;
    EVP_PKEY *signer, *other_signer;
};

static int
setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    struct clst_err err = {0};
    if (f == NULL) {
        return -1;
    }
    fx_tmpdir(f->dir, sizeof(f->dir));
    fx_fmt(f->platform_dir, sizeof(f->platform_dir), "%s/plat", f->dir);
    if (clst_evidence_sim_platform_create(f->platform_dir, clst_clock_now(clst_clock_system()),
                                          false, &err) != CLST_OK ||
        clst_evidence_sim_platform_load(f->platform_dir, &f->platform, &err) != CLST_OK) {
        fprintf(stderr, "sim platform: %s\n", err.msg);
        return -1;
    }
    f->signer = fx_ec_key(CLST_CURVE_P256);
    f->other_signer = fx_ec_key(CLST_CURVE_P256);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;
    clst_evidence_sim_platform_free(f->platform);
    EVP_PKEY_free(f->signer);
    EVP_PKEY_free(f->other_signer);
    fx_rmdir(f->dir);
    free(f);
    return 0;
}

static struct clst_host_enclave *
start(struct fx *f, const char *name, EVP_PKEY *key, uint16_t product, uint16_t svn, bool debug)
{
    char path[PATH_MAX + 32];
    struct clst_host_options o;
    fx_sign("hello-enclave.so", f->dir, name, key, product, svn, debug, 0, path, sizeof(path));
    fx_options(&o);
    o.platform = f->platform;
    return fx_create(path, &o);
}

static size_t
seal_in(struct clst_host_enclave *e, uint8_t policy, const char *msg, uint8_t *blob, size_t cap)
{
    uint8_t in[128];
    size_t n = strlen(msg), out = 0;
    in[0] = policy;
    memcpy(in + 1, msg, n);
    fx_call_expect(e, "seal", in, n + 1, blob, cap, &out, CLST_OK, NULL);
    assert_int_equal(out, n + CLST_SEAL_OVERHEAD);
    return out;
}

static void
test_sealing_across_identities(void **state)
{
    struct fx *f = *state;
    uint8_t blob[512], out[512];
    size_t n, m = 0;
    struct clst_host_enclave *v2 = start(f, "v2", f->signer, 1, 2, false);
    struct clst_host_enclave *v2b = start(f, "v2b", f->signer, 1, 2, false); /* same image */
    struct clst_host_enclave *v3 = start(f, "v3", f->signer, 1, 3, false);
    struct clst_host_enclave *v1 = start(f, "v1", f->signer, 1, 1, false);
    struct clst_host_enclave *p2 = start(f, "p2", f->signer, 2, 2, false);
    struct clst_host_enclave *s2 = start(f, "s2", f->other_signer, 1, 2, false);
    struct clst_host_enclave *d2 = start(f, "d2", f->signer, 1, 2, true);

    n = seal_in(v2, CLST_SEAL_TO_SIGNER, "signer-bound", blob, sizeof(blob));
    fx_call_expect(v2, "unseal", blob, n, out, sizeof(out), &m, CLST_OK, NULL);
    assert_memory_equal(out, "signer-bound", 12);
    fx_call_expect(v3, "unseal", blob, n, out, sizeof(out), &m, CLST_OK, NULL);
    assert_memory_equal(out, "signer-bound", 12);
    fx_call_expect(v1, "unseal", blob, n, out, sizeof(out), NULL, CLST_E_DENIED,
                   "newer than this enclave's svn");
    fx_call_expect(p2, "unseal", blob, n, out, sizeof(out), NULL, CLST_E_VERIFY, "product");
    fx_call_expect(s2, "unseal", blob, n, out, sizeof(out), NULL, CLST_E_VERIFY, "another signer");
    fx_call_expect(d2, "unseal", blob, n, out, sizeof(out), NULL, CLST_E_VERIFY, "debug");
    /* Newer seals, older cannot read. */
    n = seal_in(v3, CLST_SEAL_TO_SIGNER, "from v3", blob, sizeof(blob));
    fx_call_expect(v2, "unseal", blob, n, out, sizeof(out), NULL, CLST_E_DENIED, "svn 3");
    /* Measurement-bound: another instance of the same build, and nothing else. */
    n = seal_in(v2, CLST_SEAL_TO_MEASUREMENT, "exact build", blob, sizeof(blob));
    fx_call_expect(v2b, "unseal", blob, n, out, sizeof(out), &m, CLST_OK, NULL);
    assert_memory_equal(out, "exact build", 11);
    fx_call_expect(v3, "unseal", blob, n, out, sizeof(out), NULL, CLST_E_VERIFY,
                   "another measurement");
    fx_call_expect(d2, "unseal", blob, n, out, sizeof(out), NULL, CLST_E_VERIFY,
                   "another measurement");
    /* The measurement covers the code and the identity fields, not the signer: the same image
     * re-signed by another key (same product, svn, debug mode and heap) is the same code and
     * unseals it, as with SGX's MRENCLAVE policy (docs/sealing.md). */
    fx_call_expect(s2, "unseal", blob, n, out, sizeof(out), &m, CLST_OK, NULL);
    /* A flipped bit anywhere is refused. */
    blob[n - 1] ^= 1;
    fx_call_expect(v2b, "unseal", blob, n, out, sizeof(out), NULL, CLST_E_VERIFY,
                   "authentication failed");
    clst_host_enclave_destroy(v2);
    clst_host_enclave_destroy(v2b);
    clst_host_enclave_destroy(v3);
    clst_host_enclave_destroy(v1);
    clst_host_enclave_destroy(p2);
    clst_host_enclave_destroy(s2);
    clst_host_enclave_destroy(d2);
}

static void
test_key_release_material(void **state)
{
    struct fx *f = *state;
    struct clst_err err = {0};
    uint8_t out[8192];
    size_t n = 0;
    struct clst_host_enclave *e = start(f, "kr", f->signer, 1, 1, false);
    fx_call_expect(e, "kr_begin", NULL, 0, out, sizeof(out), &n, CLST_OK, NULL);
    uint32_t rd_size =
        (uint32_t)out[0] | (uint32_t)out[1] << 8 | (uint32_t)out[2] << 16 | (uint32_t)out[3] << 24;
    assert_true(rd_size > 0 && 4 + (size_t)rd_size < n);
    const uint8_t *rd = out + 4, *ev = out + 4 + rd_size;
    size_t ev_size = n - 4 - rd_size;
    /* The runtime data: {"keys":[{public RSA JWK, kid, key_ops}]} and nothing private. */
    json_error_t jerr;
    json_t *doc = json_loadb((const char *)rd, rd_size, 0, &jerr);
    assert_non_null(doc);
    json_t *jwk = json_array_get(json_object_get(doc, "keys"), 0);
    assert_non_null(jwk);
    assert_string_equal(json_string_value(json_object_get(jwk, "kty")), "RSA");
    assert_string_equal(json_string_value(json_object_get(jwk, "kid")), "hello-enclave");
    assert_string_equal(json_string_value(json_array_get(json_object_get(jwk, "key_ops"), 0)),
                        "encrypt");
    assert_null(json_object_get(jwk, "d"));
    assert_null(json_object_get(jwk, "p"));
    /* The evidence binds SHA-256(runtime data) and verifies against the platform root. */
    STACK_OF(X509) *roots = sk_X509_new_null();
    assert_non_null(roots);
    assert_int_equal(sk_X509_push(roots, clst_evidence_sim_platform_root(f->platform)), 1);
    struct clst_evidence_input in = {.evidence = ev,
                                     .evidence_size = ev_size,
                                     .runtime_data = rd,
                                     .runtime_data_size = rd_size,
                                     .roots = roots,
                                     .at = clst_clock_now(clst_clock_system())};
    json_t *claims = NULL;
    if (clst_evidence_verify(CLST_EVIDENCE_SIM, &in, &claims, &err) != CLST_OK) {
        fail_msg("evidence: %s", err.msg);
    }
    json_decref(claims);
    uint8_t other_rd[3] = {'{', '}', '\n'};
    in.runtime_data = other_rd;
    in.runtime_data_size = sizeof(other_rd);
    assert_int_equal(clst_evidence_verify(CLST_EVIDENCE_SIM, &in, &claims, &err), CLST_E_VERIFY);
    sk_X509_free(roots);
    /* What the vault does at release: wrap a key to the JWK; only the enclave can unwrap it. */
    EVP_PKEY *pub = NULL;
    assert_int_equal(clst_pkey_from_jwk(jwk, &pub, &err), CLST_OK);
    uint8_t secret_key[32], digest[32];
    assert_int_equal(clst_random(secret_key, sizeof(secret_key)), CLST_OK);
    assert_int_equal(clst_sha256(secret_key, sizeof(secret_key), digest), CLST_OK);
    static const struct {
        const char *enc;
        enum clst_hash h;
    } algs[] = {{"CKM_RSA_AES_KEY_WRAP", CLST_HASH_SHA1},
                {"RSA_AES_KEY_WRAP_256", CLST_HASH_SHA256},
                {"RSA_AES_KEY_WRAP_384", CLST_HASH_SHA384}};
    for (size_t i = 0; i < 3; i++) {
        struct clst_buf wrapped, req;
        clst_buf_init(&wrapped, 4096);
        clst_buf_init(&req, 4096);
        assert_int_equal(
            clst_rsa_aes_wrap(pub, algs[i].h, secret_key, sizeof(secret_key), &wrapped), CLST_OK);
        assert_int_equal(clst_buf_append(&req, algs[i].enc, strlen(algs[i].enc) + 1), CLST_OK);
        assert_int_equal(clst_buf_append(&req, wrapped.data, wrapped.size), CLST_OK);
        fx_call_expect(e, "kr_unwrap", req.data, req.size, out, 32, &n, CLST_OK, NULL);
        assert_int_equal(n, 32);
        assert_memory_equal(out, digest, 32);
        /* Altered, or announced with the wrong algorithm: refused inside. */
        req.data[req.size - 1] ^= 1;
        fx_call_expect(e, "kr_unwrap", req.data, req.size, out, 32, NULL, CLST_E_VERIFY,
                       "does not open");
        clst_buf_cleanup(&wrapped);
        clst_buf_cleanup(&req);
    }
    json_decref(doc);
    EVP_PKEY_free(pub);
    clst_host_enclave_destroy(e);
}

static void
expect_host_garbage_kills(struct fx *f, const uint8_t *junk, size_t n, const char *why)
{
    struct clst_host_options o;
    struct clst_err err = {0};
    char path[PATH_MAX + 32];
    fx_sign("hello-enclave.so", f->dir, "g.signed", f->signer, 1, 1, false, 0, path, sizeof(path));
    fx_options(&o);
    struct clst_host_enclave *e = fx_create(path, &o);
    assert_int_equal(clst_host_enclave_debug_send_raw(e, junk, n, &err), CLST_OK);
    assert_int_equal(clst_host_enclave_call(e, "null", NULL, 0, NULL, 0, NULL, &err), CLST_E_IO);
    if (strstr(err.msg, "host broke the channel protocol") == NULL ||
        strstr(err.msg, why) == NULL) {
        fail_msg("message '%s' lacks the protocol note '%s'", err.msg, why);
    }
    clst_host_enclave_destroy(e);
}

static void
test_host_sends_bad_frames(void **state)
{
    struct fx *f = *state;
    uint8_t junk[FRAME_HDR_SIZE];
    memset(junk, 'z', sizeof(junk));
    expect_host_garbage_kills(f, junk, sizeof(junk), "bad magic");
    /* A CALL whose payload exceeds the enclave's limit (64 MiB). */
    struct frame_hdr h = {
        .type = FRAME_CALL, .seq = 1, .name_size = 4, .payload_size = 0x7fffffffu};
    frame_hdr_encode(&h, junk);
    expect_host_garbage_kills(f, junk, sizeof(junk), "exceeds the limit");
    /* A RETURN, which only enclaves send. */
    struct frame_hdr r = {.type = FRAME_RETURN, .seq = 1};
    frame_hdr_encode(&r, junk);
    expect_host_garbage_kills(f, junk, sizeof(junk), "not allowed from the host");
    /* A CALL whose name has a forbidden byte. */
    uint8_t named[FRAME_HDR_SIZE + 4];
    struct frame_hdr c = {.type = FRAME_CALL, .seq = 1, .name_size = 4};
    frame_hdr_encode(&c, named);
    memcpy(named + FRAME_HDR_SIZE, "nu l", 4);
    expect_host_garbage_kills(f, named, sizeof(named), "invalid characters");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sealing_across_identities),
        cmocka_unit_test(test_key_release_material),
        cmocka_unit_test(test_host_sends_bad_frames),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
