/*
 * The relay messages of clst.attest and clst.release (src/enclave/relay.c): round trips, and
 * malformed messages both ways (enclave -> host requests, host -> enclave replies): every
 * truncation, each header byte flipped, wrong kind and field count, fields over their caps,
 * sizes that run past the end, trailing bytes, and each field's alphabet.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "enclave/enclave_int.h"

#define VERSION_HEX "0123456789abcdef0123456789abcdef"
#define TOKEN       "eyJhbGciOiJFUzI1NiJ9.eyJ4IjoxfQ.c2ln"

static void
f_set(struct relay_field *f, const void *p, size_t n)
{
    f->p = p;
    f->size = n;
}

static void
make_release(struct clst_buf *b, const char *name, const char *version, const char *token,
             const char *enc, const char *nonce)
{
    struct relay_field f[5];
    f_set(&f[0], name, strlen(name));
    f_set(&f[1], version, strlen(version));
    f_set(&f[2], token, strlen(token));
    f_set(&f[3], enc, strlen(enc));
    f_set(&f[4], nonce, strlen(nonce));
    clst_buf_init(b, RELAY_REQUEST_MAX);
    assert_int_equal(relay_encode(RELAY_RELEASE, f, 5, b), CLST_OK);
}

static void
make_attest(struct clst_buf *b, const uint8_t *ev, size_t ev_size, const char *rt)
{
    struct relay_field f[2];
    f_set(&f[0], ev, ev_size);
    f_set(&f[1], rt, strlen(rt));
    clst_buf_init(b, RELAY_REQUEST_MAX);
    assert_int_equal(relay_encode(RELAY_ATTEST, f, 2, b), CLST_OK);
}

static void
test_attest_roundtrip(void **state)
{
    (void)state;
    uint8_t ev[100];
    struct clst_buf b;
    struct relay_attest_req r;
    struct clst_err err = {0};
    for (size_t i = 0; i < sizeof(ev); i++) {
        ev[i] = (uint8_t)(i * 7);
    }
    make_attest(&b, ev, sizeof(ev), "{\"keys\":[]}");
    assert_int_equal(relay_attest_decode(b.data, b.size, &r, &err), CLST_OK);
    assert_int_equal(r.evidence.size, sizeof(ev));
    assert_memory_equal(r.evidence.p, ev, sizeof(ev));
    assert_int_equal(r.runtime.size, 11);
    assert_memory_equal(r.runtime.p, "{\"keys\":[]}", 11);
    /* The same bytes are not a release or a reply. */
    struct relay_release_req rr;
    struct relay_reply rp;
    assert_int_equal(relay_release_decode(b.data, b.size, &rr, &err), CLST_E_MALFORMED);
    assert_int_equal(relay_reply_decode(b.data, b.size, &rp, &err), CLST_E_MALFORMED);
    clst_buf_cleanup(&b);
}

static void
test_release_roundtrip(void **state)
{
    (void)state;
    struct clst_buf b;
    struct relay_release_req r;
    struct clst_err err = {0};
    make_release(&b, "db-Key-1", VERSION_HEX, TOKEN, "RSA_AES_KEY_WRAP_256", "n0nce_-x");
    assert_int_equal(relay_release_decode(b.data, b.size, &r, &err), CLST_OK);
    assert_string_equal(r.name, "db-Key-1");
    assert_string_equal(r.version, VERSION_HEX);
    assert_string_equal(r.enc, "RSA_AES_KEY_WRAP_256");
    assert_string_equal(r.nonce, "n0nce_-x");
    assert_int_equal(r.token.size, strlen(TOKEN));
    assert_memory_equal(r.token.p, TOKEN, strlen(TOKEN));
    clst_buf_cleanup(&b);
    /* Version and nonce may be empty. */
    make_release(&b, "k", "", TOKEN, "CKM_RSA_AES_KEY_WRAP", "");
    assert_int_equal(relay_release_decode(b.data, b.size, &r, &err), CLST_OK);
    assert_string_equal(r.version, "");
    assert_string_equal(r.nonce, "");
    clst_buf_cleanup(&b);
}

static void
test_reply_roundtrip(void **state)
{
    (void)state;
    struct clst_buf b;
    struct relay_reply r;
    struct clst_err err = {0};
    const char *ca = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    clst_buf_init(&b, RELAY_REPLY_MAX);
    assert_int_equal(relay_reply_encode(CLST_OK, 200, TOKEN, strlen(TOKEN), ca, strlen(ca), &b),
                     CLST_OK);
    assert_int_equal(relay_reply_decode(b.data, b.size, &r, &err), CLST_OK);
    assert_int_equal(r.status, CLST_OK);
    assert_int_equal(r.http, 200);
    assert_memory_equal(r.body.p, TOKEN, strlen(TOKEN));
    assert_int_equal(r.ca.size, strlen(ca));
    clst_buf_reset(&b);
    const char *msg = "HTTP 403 Forbidden: release denied by the key's release policy";
    assert_int_equal(relay_reply_encode(CLST_E_DENIED, 403, msg, strlen(msg), NULL, 0, &b),
                     CLST_OK);
    assert_int_equal(relay_reply_decode(b.data, b.size, &r, &err), CLST_OK);
    assert_int_equal(r.status, CLST_E_DENIED);
    assert_int_equal(r.http, 403);
    assert_int_equal(r.ca.size, 0);
    clst_buf_cleanup(&b);
}

/* Every proper prefix of a valid message fails, and so does one extra byte. */
static void
test_truncations_and_trailing(void **state)
{
    (void)state;
    struct clst_buf a, rel, rep;
    struct clst_err err = {0};
    uint8_t ev[40] = {1, 2, 3};
    make_attest(&a, ev, sizeof(ev), "{}");
    make_release(&rel, "k", VERSION_HEX, TOKEN, "CKM_RSA_AES_KEY_WRAP", "abc");
    clst_buf_init(&rep, RELAY_REPLY_MAX);
    assert_int_equal(relay_reply_encode(CLST_OK, 200, TOKEN, strlen(TOKEN), "x\n", 2, &rep),
                     CLST_OK);
    struct relay_attest_req ar;
    struct relay_release_req rr;
    struct relay_reply rp;
    for (size_t n = 0; n < a.size; n++) {
        assert_int_not_equal(relay_attest_decode(a.data, n, &ar, &err), CLST_OK);
    }
    for (size_t n = 0; n < rel.size; n++) {
        assert_int_not_equal(relay_release_decode(rel.data, n, &rr, &err), CLST_OK);
    }
    for (size_t n = 0; n < rep.size; n++) {
        assert_int_not_equal(relay_reply_decode(rep.data, n, &rp, &err), CLST_OK);
    }
    assert_int_equal(clst_buf_append_byte(&a, 0), CLST_OK);
    assert_int_equal(relay_attest_decode(a.data, a.size, &ar, &err), CLST_E_MALFORMED);
    assert_int_equal(clst_buf_append_byte(&rel, 0), CLST_OK);
    assert_int_equal(relay_release_decode(rel.data, rel.size, &rr, &err), CLST_E_MALFORMED);
    assert_int_equal(clst_buf_append_byte(&rep, 0), CLST_OK);
    assert_int_equal(relay_reply_decode(rep.data, rep.size, &rp, &err), CLST_E_MALFORMED);
    assert_non_null(strstr(err.msg, "after the last field"));
    assert_int_equal(relay_attest_decode(NULL, 0, &ar, &err), CLST_E_MALFORMED);
    clst_buf_cleanup(&a);
    clst_buf_cleanup(&rel);
    clst_buf_cleanup(&rep);
}

/* Each bit of the 8-byte header matters. */
static void
test_header_flips(void **state)
{
    (void)state;
    struct clst_buf rep;
    struct relay_reply rp;
    struct clst_err err = {0};
    clst_buf_init(&rep, RELAY_REPLY_MAX);
    assert_int_equal(relay_reply_encode(CLST_OK, 200, TOKEN, strlen(TOKEN), NULL, 0, &rep),
                     CLST_OK);
    for (size_t i = 0; i < RELAY_HDR_SIZE; i++) {
        for (int bit = 0; bit < 8; bit++) {
            rep.data[i] ^= (uint8_t)(1u << bit);
            assert_int_equal(relay_reply_decode(rep.data, rep.size, &rp, &err), CLST_E_MALFORMED);
            rep.data[i] ^= (uint8_t)(1u << bit);
        }
    }
    assert_int_equal(relay_reply_decode(rep.data, rep.size, &rp, &err), CLST_OK);
    /* A field size one larger than what is there, and one that wraps. */
    size_t off = RELAY_HDR_SIZE + 4 + 4 + 4 + 4; /* the body's size field */
    clst_put_le32(rep.data + off, (uint32_t)strlen(TOKEN) + 1);
    assert_int_equal(relay_reply_decode(rep.data, rep.size, &rp, &err), CLST_E_MALFORMED);
    clst_put_le32(rep.data + off, UINT32_MAX);
    assert_int_equal(relay_reply_decode(rep.data, rep.size, &rp, &err), CLST_E_LIMIT);
    clst_buf_cleanup(&rep);
}

static void
test_caps(void **state)
{
    (void)state;
    static uint8_t big[RELAY_TOKEN_MAX + 2];
    struct clst_buf b;
    struct clst_err err = {0};
    struct relay_attest_req ar;
    struct relay_release_req rr;
    struct relay_reply rp;
    memset(big, 'a', sizeof(big));
    /* Evidence over its cap; runtime data over its cap. */
    uint8_t ev[CLST_ENCLAVE_EVIDENCE_MAX_SIZE + 1] = {0};
    make_attest(&b, ev, sizeof(ev), "{}");
    assert_int_equal(relay_attest_decode(b.data, b.size, &ar, &err), CLST_E_LIMIT);
    assert_non_null(strstr(err.msg, "evidence"));
    clst_buf_cleanup(&b);
    struct relay_field f[5];
    f_set(&f[0], ev, 10);
    f_set(&f[1], big, RELAY_RUNTIME_MAX + 1);
    clst_buf_init(&b, 2 * RELAY_RUNTIME_MAX);
    assert_int_equal(relay_encode(RELAY_ATTEST, f, 2, &b), CLST_OK);
    assert_int_equal(relay_attest_decode(b.data, b.size, &ar, &err), CLST_E_LIMIT);
    clst_buf_cleanup(&b);
    /* Empty evidence, non-printable runtime data. */
    make_attest(&b, ev, 0, "{}");
    assert_int_equal(relay_attest_decode(b.data, b.size, &ar, &err), CLST_E_MALFORMED);
    clst_buf_cleanup(&b);
    make_attest(&b, ev, 4, "{\"a\":\x01}");
    assert_int_equal(relay_attest_decode(b.data, b.size, &ar, &err), CLST_E_MALFORMED);
    clst_buf_cleanup(&b);
    /* A token over its cap. */
    f_set(&f[0], "k", 1);
    f_set(&f[1], "", 0);
    f_set(&f[2], big, RELAY_TOKEN_MAX + 1);
    f_set(&f[3], "CKM_RSA_AES_KEY_WRAP", 20);
    f_set(&f[4], "", 0);
    clst_buf_init(&b, 2 * RELAY_TOKEN_MAX);
    assert_int_equal(relay_encode(RELAY_RELEASE, f, 5, &b), CLST_OK);
    assert_int_equal(relay_release_decode(b.data, b.size, &rr, &err), CLST_E_LIMIT);
    clst_buf_cleanup(&b);
    /* A failure's message over RELAY_MSG_MAX; an empty body. */
    clst_buf_init(&b, RELAY_REPLY_MAX);
    assert_int_equal(relay_reply_encode(CLST_E_DENIED, 403, big, RELAY_MSG_MAX + 1, NULL, 0, &b),
                     CLST_OK);
    assert_int_equal(relay_reply_decode(b.data, b.size, &rp, &err), CLST_E_MALFORMED);
    clst_buf_reset(&b);
    assert_int_equal(relay_reply_encode(CLST_OK, 200, NULL, 0, NULL, 0, &b), CLST_OK);
    assert_int_equal(relay_reply_decode(b.data, b.size, &rp, &err), CLST_E_MALFORMED);
    clst_buf_cleanup(&b);
    /* encode refuses a count out of range. */
    clst_buf_init(&b, 64);
    assert_int_equal(relay_encode(RELAY_ATTEST, f, 0, &b), CLST_E_INVAL);
    assert_int_equal(relay_encode(RELAY_ATTEST, f, RELAY_FIELDS_MAX + 1, &b), CLST_E_INVAL);
    clst_buf_cleanup(&b);
}

static void
expect_release_bad(const char *name, const char *version, const char *token, const char *enc,
                   const char *nonce)
{
    struct clst_buf b;
    struct relay_release_req rr;
    struct clst_err err = {0};
    make_release(&b, name, version, token, enc, nonce);
    assert_int_equal(relay_release_decode(b.data, b.size, &rr, &err), CLST_E_MALFORMED);
    clst_buf_cleanup(&b);
}

static void
test_release_alphabets(void **state)
{
    (void)state;
    const char *enc = "CKM_RSA_AES_KEY_WRAP";
    expect_release_bad("", "", TOKEN, enc, "");
    expect_release_bad("a/b", "", TOKEN, enc, ""); /* a path in the name */
    expect_release_bad("a..", "", TOKEN, enc, "");
    expect_release_bad("k", "0123", TOKEN, enc, ""); /* version: 32 hex or nothing */
    expect_release_bad("k", "0123456789ABCDEF0123456789ABCDEF", TOKEN, enc, "");
    expect_release_bad("k", "", "", enc, "");
    expect_release_bad("k", "", "a.b c", enc, ""); /* a space in the token */
    expect_release_bad("k", "", "a.b\"c", enc, "");
    expect_release_bad("k", "", TOKEN, "A256KW", ""); /* not a release enc */
    expect_release_bad("k", "", TOKEN, "", "");
    expect_release_bad("k", "", TOKEN, enc, "a b");
    expect_release_bad("k", "", TOKEN, enc, "a&b");
    /* An embedded NUL in enc. */
    struct relay_field f[5];
    struct clst_buf b;
    struct relay_release_req rr;
    struct clst_err err = {0};
    f_set(&f[0], "k", 1);
    f_set(&f[1], "", 0);
    f_set(&f[2], TOKEN, strlen(TOKEN));
    f_set(&f[3], "CKM_RSA_AES_KEY_WRAP\0x", 22);
    f_set(&f[4], "", 0);
    clst_buf_init(&b, 4096);
    assert_int_equal(relay_encode(RELAY_RELEASE, f, 5, &b), CLST_OK);
    assert_int_equal(relay_release_decode(b.data, b.size, &rr, &err), CLST_E_MALFORMED);
    clst_buf_cleanup(&b);
}

static void
test_reply_values(void **state)
{
    (void)state;
    struct clst_buf b;
    struct relay_reply rp;
    struct clst_err err = {0};
    clst_buf_init(&b, RELAY_REPLY_MAX);
    /* A status beyond the enum, HTTP statuses out of range, control characters. */
    assert_int_equal(
        relay_reply_encode((enum clst_status)(CLST_E_INTERNAL + 1), 0, "m", 1, NULL, 0, &b),
        CLST_OK);
    assert_int_equal(relay_reply_decode(b.data, b.size, &rp, &err), CLST_E_MALFORMED);
    clst_buf_reset(&b);
    assert_int_equal(relay_reply_encode(CLST_E_IO, 99, "m", 1, NULL, 0, &b), CLST_OK);
    assert_int_equal(relay_reply_decode(b.data, b.size, &rp, &err), CLST_E_MALFORMED);
    clst_buf_reset(&b);
    assert_int_equal(relay_reply_encode(CLST_E_IO, 600, "m", 1, NULL, 0, &b), CLST_OK);
    assert_int_equal(relay_reply_decode(b.data, b.size, &rp, &err), CLST_E_MALFORMED);
    clst_buf_reset(&b);
    assert_int_equal(relay_reply_encode(CLST_E_IO, 0, "a\x1b[2Jb", 6, NULL, 0, &b), CLST_OK);
    assert_int_equal(relay_reply_decode(b.data, b.size, &rp, &err), CLST_E_MALFORMED);
    clst_buf_reset(&b);
    assert_int_equal(relay_reply_encode(CLST_OK, 200, TOKEN, strlen(TOKEN), "a\x01", 2, &b),
                     CLST_OK);
    assert_int_equal(relay_reply_decode(b.data, b.size, &rp, &err), CLST_E_MALFORMED);
    clst_buf_reset(&b);
    /* The status field must be exactly 4 bytes. */
    struct relay_field f[4];
    f_set(&f[0], "\0\0\0", 3);
    f_set(&f[1], "\0\0\0\0", 4);
    f_set(&f[2], "m", 1);
    f_set(&f[3], "", 0);
    assert_int_equal(relay_encode(RELAY_REPLY, f, 4, &b), CLST_OK);
    assert_int_equal(relay_reply_decode(b.data, b.size, &rp, &err), CLST_E_MALFORMED);
    clst_buf_cleanup(&b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_attest_roundtrip),  cmocka_unit_test(test_release_roundtrip),
        cmocka_unit_test(test_reply_roundtrip),   cmocka_unit_test(test_truncations_and_trailing),
        cmocka_unit_test(test_header_flips),      cmocka_unit_test(test_caps),
        cmocka_unit_test(test_release_alphabets), cmocka_unit_test(test_reply_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
