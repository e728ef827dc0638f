/*
 * Unit tests for src/envelope/header.c: encode/parse round trips for every key reference kind,
 * the fixed part (magic, version, suite, flags, size bounds), truncation at every byte, a flipped
 * bit at every position (parse fails or yields a different header: never the same one), every
 * cap and alphabet on both the encoder and the parser, and hand-made headers with fields that
 * overrun or fall short of header_size.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <cloister/envelope.h>

#include "test_util.h"

static const uint8_t MAGIC[8] = {0x89, 'C', 'L', 'S', 'T', 0x0d, 0x0a, 0x1a};

static void
local_ref(struct clst_envelope_keyref *ref, struct clst_envelope_wrapped *w)
{
    memset(ref, 0, sizeof(*ref));
    memset(w, 0, sizeof(*w));
    ref->kind = CLST_ENVELOPE_REF_LOCAL;
    for (int i = 0; i < 16; i++) {
        ref->key_id[i] = (uint8_t)(0xa0 + i);
    }
    strcpy(w->alg, "A256KW");
    w->size = 40;
    for (int i = 0; i < 40; i++) {
        w->data[i] = (uint8_t)i;
    }
}

static void
vault_ref(struct clst_envelope_keyref *ref, struct clst_envelope_wrapped *w)
{
    local_ref(ref, w);
    ref->kind = CLST_ENVELOPE_REF_VAULT;
    strcpy(ref->vault_url, "https://vault.example:8443");
    strcpy(ref->key_name, "patients-dek-kek");
    strcpy(ref->key_version, "0f1e2d3c4b5a69788796a5b4c3d2e1f0");
    strcpy(w->alg, "RSA-OAEP-256");
    w->size = 256;
    memset(w->data, 0x77, 256);
}

static size_t
encode(const struct clst_envelope_keyref *ref, const struct clst_envelope_wrapped *w,
       const struct clst_envelope_meta *meta, size_t n, uint8_t *out)
{
    size_t size = 0;
    struct clst_err err;
    enum clst_status rc = clst_envelope_header_encode(ref, w, meta, n, out,
                                                      CLST_ENVELOPE_HEADER_MAX_SIZE, &size, &err);
    if (rc != CLST_OK) {
        fail_msg("encode: %s", err.msg);
    }
    return size;
}

static bool
same_header(const struct clst_envelope_header *a, const struct clst_envelope_header *b)
{
    if (a->size != b->size || a->ref.kind != b->ref.kind ||
        strcmp(a->wrapped.alg, b->wrapped.alg) != 0 || a->wrapped.size != b->wrapped.size ||
        memcmp(a->wrapped.data, b->wrapped.data, a->wrapped.size) != 0 ||
        a->meta_count != b->meta_count) {
        return false;
    }
    switch (a->ref.kind) {
    case CLST_ENVELOPE_REF_LOCAL:
        if (memcmp(a->ref.key_id, b->ref.key_id, 16) != 0) {
            return false;
        }
        break;
    case CLST_ENVELOPE_REF_RECIPIENT:
        if (a->ref.recipient_type != b->ref.recipient_type ||
            memcmp(a->ref.fingerprint, b->ref.fingerprint, 32) != 0) {
            return false;
        }
        break;
    case CLST_ENVELOPE_REF_VAULT:
        if (strcmp(a->ref.vault_url, b->ref.vault_url) != 0 ||
            strcmp(a->ref.key_name, b->ref.key_name) != 0 ||
            strcmp(a->ref.key_version, b->ref.key_version) != 0) {
            return false;
        }
        break;
    }
    for (size_t i = 0; i < a->meta_count; i++) {
        const char *an, *bn;
        const uint8_t *av, *bv;
        size_t ans, bns, avs, bvs;
        clst_envelope_header_meta(a, i, &an, &ans, &av, &avs);
        clst_envelope_header_meta(b, i, &bn, &bns, &bv, &bvs);
        if (ans != bns || avs != bvs || memcmp(an, bn, ans) != 0 ||
            (avs > 0 && memcmp(av, bv, avs) != 0)) {
            return false;
        }
    }
    return true;
}

static void
test_round_trips(void **state)
{
    (void)state;
    uint8_t buf[CLST_ENVELOPE_HEADER_MAX_SIZE + 100];
    struct clst_envelope_keyref ref;
    struct clst_envelope_wrapped w;
    struct clst_envelope_header h;
    struct clst_err err;
    const uint8_t value[] = {'c', 's', 'v', 0, 0xff};
    struct clst_envelope_meta meta[] = {
        {"content-type", value, 3},
        {"x.binary_value-1", value, sizeof(value)},
        {"empty", NULL, 0},
    };

    /* local */
    local_ref(&ref, &w);
    size_t n = encode(&ref, &w, NULL, 0, buf);
    assert_int_equal(n, 16 + 3 + 16 + 1 + 6 + 2 + 40 + 2);
    assert_memory_equal(buf, MAGIC, 8);
    assert_int_equal(buf[8], 1);
    assert_int_equal(buf[9], 1);
    assert_int_equal(buf[10] | buf[11], 0);
    assert_int_equal(((size_t)buf[12] << 24) | ((size_t)buf[13] << 16) | ((size_t)buf[14] << 8) |
                         buf[15],
                     n);
    size_t peek = 0;
    assert_int_equal(clst_envelope_header_peek_size(buf, 16, &peek, &err), CLST_OK);
    assert_int_equal(peek, n);
    /* Trailing body bytes after the header are not the header's business. */
    memset(buf + n, 0xee, 50);
    assert_int_equal(clst_envelope_header_parse(buf, n + 50, &h, &err), CLST_OK);
    assert_int_equal(h.size, n);
    assert_int_equal(h.ref.kind, CLST_ENVELOPE_REF_LOCAL);
    assert_memory_equal(h.ref.key_id, ref.key_id, 16);
    assert_string_equal(h.wrapped.alg, "A256KW");
    assert_int_equal(h.wrapped.size, 40);
    assert_int_equal(h.meta_count, 0);

    /* recipient, with metadata */
    local_ref(&ref, &w);
    ref.kind = CLST_ENVELOPE_REF_RECIPIENT;
    ref.recipient_type = CLST_ENVELOPE_RECIPIENT_P256;
    memset(ref.fingerprint, 0x42, 32);
    strcpy(w.alg, CLST_ENVELOPE_ALG_ECDH_P256);
    w.size = 105;
    n = encode(&ref, &w, meta, 3, buf);
    assert_int_equal(clst_envelope_header_parse(buf, n, &h, &err), CLST_OK);
    assert_int_equal(h.ref.recipient_type, CLST_ENVELOPE_RECIPIENT_P256);
    assert_memory_equal(h.ref.fingerprint, ref.fingerprint, 32);
    assert_int_equal(h.meta_count, 3);
    const char *name;
    const uint8_t *val;
    size_t name_size, val_size;
    assert_int_equal(clst_envelope_header_meta(&h, 1, &name, &name_size, &val, &val_size),
                     CLST_OK);
    assert_int_equal(name_size, strlen("x.binary_value-1"));
    assert_memory_equal(name, "x.binary_value-1", name_size);
    assert_int_equal(val_size, sizeof(value));
    assert_memory_equal(val, value, sizeof(value));
    assert_int_equal(clst_envelope_header_meta(&h, 2, &name, &name_size, &val, &val_size),
                     CLST_OK);
    assert_int_equal(val_size, 0);
    assert_int_equal(clst_envelope_header_meta(&h, 3, &name, &name_size, &val, &val_size),
                     CLST_E_INVAL);

    /* vault */
    vault_ref(&ref, &w);
    n = encode(&ref, &w, meta, 1, buf);
    assert_int_equal(clst_envelope_header_parse(buf, n, &h, &err), CLST_OK);
    assert_string_equal(h.ref.vault_url, ref.vault_url);
    assert_string_equal(h.ref.key_name, ref.key_name);
    assert_string_equal(h.ref.key_version, ref.key_version);
    assert_string_equal(h.wrapped.alg, "RSA-OAEP-256");
    assert_int_equal(h.wrapped.size, 256);
}

static void
test_fixed_part(void **state)
{
    (void)state;
    uint8_t buf[CLST_ENVELOPE_HEADER_MAX_SIZE];
    uint8_t copy[CLST_ENVELOPE_HEADER_MAX_SIZE];
    struct clst_envelope_keyref ref;
    struct clst_envelope_wrapped w;
    struct clst_envelope_header h;
    struct clst_err err;
    size_t peek = 0;

    local_ref(&ref, &w);
    size_t n = encode(&ref, &w, NULL, 0, buf);
    /* Every prefix shorter than the fixed part is refused, and says it is truncated. */
    for (size_t cut = 0; cut < 16; cut++) {
        assert_int_equal(clst_envelope_header_peek_size(buf, cut, &peek, &err), CLST_E_MALFORMED);
        assert_non_null(strstr(err.msg, "truncated"));
    }
    /* Every prefix shorter than the header is refused by parse. */
    for (size_t cut = 0; cut < n; cut++) {
        assert_int_not_equal(clst_envelope_header_parse(buf, cut, &h, &err), CLST_OK);
    }
    const struct {
        size_t off;
        uint8_t val;
        const char *msg;
    } bad[] = {
        {0, 0x88, "magic"}, {4, 's', "magic"},      {8, 2, "version"}, {8, 0, "version"},
        {9, 2, "suite"},    {10, 0x80, "flags"},    {11, 1, "flags"},  {12, 1, "size"},
        {14, 0x40, "size"}, {15, 0, "size"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memcpy(copy, buf, n);
        copy[bad[i].off] = bad[i].val;
        assert_int_equal(clst_envelope_header_peek_size(copy, n, &peek, &err), CLST_E_MALFORMED);
        assert_int_equal(clst_envelope_header_parse(copy, n, &h, &err), CLST_E_MALFORMED);
    }
    /* header_size one more or one less than the fields. */
    memcpy(copy, buf, n);
    copy[n] = 0;
    clst_put_be32(copy + 12, (uint32_t)(n + 1));
    assert_int_equal(clst_envelope_header_parse(copy, n + 1, &h, &err), CLST_E_MALFORMED);
    assert_non_null(strstr(err.msg, "trailing"));
    clst_put_be32(copy + 12, (uint32_t)(n - 1));
    assert_int_equal(clst_envelope_header_parse(copy, n, &h, &err), CLST_E_MALFORMED);
    /* Not a header at all. */
    assert_int_equal(clst_envelope_header_peek_size((const uint8_t *)"hello, world, plaintext", 23,
                                                    &peek, &err),
                     CLST_E_MALFORMED);
    assert_non_null(strstr(err.msg, "not a .clst file"));
}

static void
test_every_bit(void **state)
{
    (void)state;
    uint8_t buf[CLST_ENVELOPE_HEADER_MAX_SIZE];
    struct clst_envelope_keyref ref;
    struct clst_envelope_wrapped w;
    struct clst_envelope_header orig, h;
    struct clst_err err;
    const uint8_t v[] = "v";
    struct clst_envelope_meta meta[] = {{"a", v, 1}, {"bb", v, 1}};

    for (int kind = 0; kind < 3; kind++) {
        if (kind == 2) {
            vault_ref(&ref, &w);
        } else {
            local_ref(&ref, &w);
        }
        if (kind == 1) {
            ref.kind = CLST_ENVELOPE_REF_RECIPIENT;
            ref.recipient_type = CLST_ENVELOPE_RECIPIENT_RSA;
        }
        size_t n = encode(&ref, &w, meta, 2, buf);
        assert_int_equal(clst_envelope_header_parse(buf, n, &orig, &err), CLST_OK);
        size_t accepted = 0;
        for (size_t bit = 0; bit < n * 8; bit++) {
            buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            if (clst_envelope_header_parse(buf, n, &h, &err) == CLST_OK) {
                /* A change in a free-form field may parse, but never as the same header. */
                assert_false(same_header(&orig, &h));
                accepted++;
            }
            buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        }
        /* Some flips (ids, wrapped bytes) parse: the body's commitment catches those. */
        assert_true(accepted > 0);
        assert_true(accepted < n * 8);
    }
}

static void
test_encoder_caps(void **state)
{
    (void)state;
    uint8_t buf[CLST_ENVELOPE_HEADER_MAX_SIZE];
    struct clst_envelope_keyref ref;
    struct clst_envelope_wrapped w;
    struct clst_err err;
    size_t n = 0;
    static uint8_t big[CLST_ENVELOPE_META_MAX_SIZE + 1];
    struct clst_envelope_meta meta[CLST_ENVELOPE_META_MAX_COUNT + 1];
    char names[CLST_ENVELOPE_META_MAX_COUNT + 1][8];

    for (size_t i = 0; i <= CLST_ENVELOPE_META_MAX_COUNT; i++) {
        snprintf(names[i], sizeof(names[i]), "m%zu", i);
        meta[i].name = names[i];
        meta[i].value = big;
        meta[i].value_size = 1;
    }
    local_ref(&ref, &w);
#define ENC(m, c) clst_envelope_header_encode(&ref, &w, (m), (c), buf, sizeof(buf), &n, &err)
    assert_int_equal(ENC(meta, CLST_ENVELOPE_META_MAX_COUNT), CLST_OK);
    assert_int_equal(ENC(meta, CLST_ENVELOPE_META_MAX_COUNT + 1), CLST_E_LIMIT);
    /* Total metadata size: exactly the cap passes, one more byte fails. */
    meta[0].value_size = CLST_ENVELOPE_META_MAX_SIZE - 2; /* "m0" is 2 bytes */
    assert_int_equal(ENC(meta, 1), CLST_OK);
    meta[0].value_size++;
    assert_int_equal(ENC(meta, 1), CLST_E_LIMIT);
    meta[0].value_size = 1;
    const char *bad_names[] = {"", "Upper", "sp ace", "slash/", "\xc3\xa9",
                               "a23456789012345678901234567890123456789012345678901234567890abcde"};
    for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
        meta[0].name = bad_names[i];
        assert_int_equal(ENC(meta, 1), CLST_E_INVAL);
    }
    meta[0].name = "m1"; /* duplicate of meta[1] */
    assert_int_equal(ENC(meta, 2), CLST_E_INVAL);
    meta[0].name = names[0];

    strcpy(w.alg, "");
    assert_int_equal(ENC(NULL, 0), CLST_E_INVAL);
    strcpy(w.alg, "A256 KW");
    assert_int_equal(ENC(NULL, 0), CLST_E_INVAL);
    memset(w.alg, 'A', CLST_ENVELOPE_ALG_MAX_SIZE);
    w.alg[CLST_ENVELOPE_ALG_MAX_SIZE] = '\0';
    assert_int_equal(ENC(NULL, 0), CLST_OK);
    strcpy(w.alg, "A256KW");
    w.size = 0;
    assert_int_equal(ENC(NULL, 0), CLST_E_LIMIT);
    w.size = CLST_ENVELOPE_WRAPPED_MAX_SIZE;
    assert_int_equal(ENC(NULL, 0), CLST_OK);
    w.size = CLST_ENVELOPE_WRAPPED_MAX_SIZE + 1;
    assert_int_equal(ENC(NULL, 0), CLST_E_LIMIT);

    vault_ref(&ref, &w);
    strcpy(ref.vault_url, "https://vault example");
    assert_int_equal(ENC(NULL, 0), CLST_E_INVAL);
    strcpy(ref.vault_url, "");
    assert_int_equal(ENC(NULL, 0), CLST_E_INVAL);
    memset(ref.vault_url, 'u', CLST_ENVELOPE_URL_MAX_SIZE);
    ref.vault_url[CLST_ENVELOPE_URL_MAX_SIZE] = '\0';
    assert_int_equal(ENC(NULL, 0), CLST_OK);
    vault_ref(&ref, &w);
    strcpy(ref.key_name, "under_score");
    assert_int_equal(ENC(NULL, 0), CLST_E_INVAL);
    vault_ref(&ref, &w);
    strcpy(ref.key_version, "");
    assert_int_equal(ENC(NULL, 0), CLST_E_INVAL);
    vault_ref(&ref, &w);
    ref.kind = (enum clst_envelope_ref_kind)9;
    assert_int_equal(ENC(NULL, 0), CLST_E_INVAL);
    local_ref(&ref, &w);
    ref.kind = CLST_ENVELOPE_REF_RECIPIENT;
    ref.recipient_type = (enum clst_envelope_recipient_type)3;
    assert_int_equal(ENC(NULL, 0), CLST_E_INVAL);
    /* Too small an output buffer. */
    local_ref(&ref, &w);
    assert_int_equal(clst_envelope_header_encode(&ref, &w, NULL, 0, buf, 20, &n, &err),
                     CLST_E_LIMIT);
#undef ENC
}

/* A hand-written header: fixed part + the given field bytes; header_size patched. */
static size_t
craft(uint8_t *out, const uint8_t *fields, size_t fields_size)
{
    memcpy(out, MAGIC, 8);
    out[8] = 1;
    out[9] = 1;
    out[10] = out[11] = 0;
    clst_put_be32(out + 12, (uint32_t)(16 + fields_size));
    memcpy(out + 16, fields, fields_size);
    return 16 + fields_size;
}

static void
test_parser_hand_made(void **state)
{
    (void)state;
    uint8_t buf[CLST_ENVELOPE_HEADER_MAX_SIZE];
    uint8_t f[CLST_ENVELOPE_HEADER_MAX_SIZE];
    struct clst_envelope_header h;
    struct clst_err err;
    size_t n;

    /* A minimal valid local header, then variations. */
    size_t k = 0;
    f[k++] = 1;
    f[k++] = 0;
    f[k++] = 16;
    memset(f + k, 0x11, 16);
    k += 16;
    f[k++] = 1;
    f[k++] = 'X';
    f[k++] = 0;
    f[k++] = 1;
    f[k++] = 0xaa;
    f[k++] = 0;
    f[k++] = 0;
    n = craft(buf, f, k);
    assert_int_equal(clst_envelope_header_parse(buf, n, &h, &err), CLST_OK);

    /* Unknown kinds. */
    f[0] = 0;
    n = craft(buf, f, k);
    assert_int_equal(clst_envelope_header_parse(buf, n, &h, &err), CLST_E_MALFORMED);
    f[0] = 4;
    n = craft(buf, f, k);
    assert_int_equal(clst_envelope_header_parse(buf, n, &h, &err), CLST_E_MALFORMED);
    f[0] = 1;
    /* Local ref of the wrong size. */
    f[2] = 15;
    n = craft(buf, f, k);
    assert_int_equal(clst_envelope_header_parse(buf, n, &h, &err), CLST_E_MALFORMED);
    f[2] = 16;
    /* Empty alg, empty wrapped key. */
    f[19] = 0;
    n = craft(buf, f, k);
    assert_int_equal(clst_envelope_header_parse(buf, n, &h, &err), CLST_E_MALFORMED);
    f[19] = 1;
    f[22] = 0;
    n = craft(buf, f, k);
    assert_int_equal(clst_envelope_header_parse(buf, n, &h, &err), CLST_E_MALFORMED);
    f[22] = 1;
    /* An alg byte outside the alphabet. */
    f[20] = ' ';
    n = craft(buf, f, k);
    assert_int_equal(clst_envelope_header_parse(buf, n, &h, &err), CLST_E_MALFORMED);
    f[20] = 'X';
    /* A wrapped key longer than the cap. */
    {
        uint8_t g[2048];
        memcpy(g, f, 21);
        g[21] = 0x04;
        g[22] = 0x01; /* 1025 */
        memset(g + 23, 0, 1025);
        g[23 + 1025] = 0;
        g[24 + 1025] = 0;
        n = craft(buf, g, 25 + 1025);
        assert_int_equal(clst_envelope_header_parse(buf, n, &h, &err), CLST_E_MALFORMED);
    }
    /* Metadata: 33 entries; a name with an upper-case letter; a duplicate; too large. */
    {
        uint8_t g[CLST_ENVELOPE_HEADER_MAX_SIZE];
        size_t m = k - 2;
        memcpy(g, f, m);
        g[m++] = 0;
        g[m++] = 33;
        for (int i = 0; i < 33; i++) {
            g[m++] = 2;
            g[m++] = 'a';
            g[m++] = (uint8_t)('a' + (i % 26));
            g[m++] = 0;
            g[m++] = 0;
        }
        n = craft(buf, g, m);
        assert_int_equal(clst_envelope_header_parse(buf, n, &h, &err), CLST_E_LIMIT);

        m = k - 2;
        g[m++] = 0;
        g[m++] = 1;
        g[m++] = 1;
        g[m++] = 'A';
        g[m++] = 0;
        g[m++] = 0;
        n = craft(buf, g, m);
        assert_int_equal(clst_envelope_header_parse(buf, n, &h, &err), CLST_E_MALFORMED);

        m = k - 2;
        g[m++] = 0;
        g[m++] = 2;
        for (int i = 0; i < 2; i++) {
            g[m++] = 1;
            g[m++] = 'a';
            g[m++] = 0;
            g[m++] = 0;
        }
        n = craft(buf, g, m);
        assert_int_equal(clst_envelope_header_parse(buf, n, &h, &err), CLST_E_MALFORMED);

        m = k - 2;
        g[m++] = 0;
        g[m++] = 2;
        for (int i = 0; i < 2; i++) {
            g[m++] = 1;
            g[m++] = (uint8_t)('a' + i);
            g[m++] = 0x08; /* 2048 + 2048 + names > 4096 */
            g[m++] = 0x00;
            memset(g + m, 'v', 2048);
            m += 2048;
        }
        n = craft(buf, g, m);
        assert_int_equal(clst_envelope_header_parse(buf, n, &h, &err), CLST_E_LIMIT);

        /* A metadata value that runs past header_size. */
        m = k - 2;
        g[m++] = 0;
        g[m++] = 1;
        g[m++] = 1;
        g[m++] = 'a';
        g[m++] = 0;
        g[m++] = 10;
        memset(g + m, 'v', 5);
        m += 5;
        n = craft(buf, g, m);
        memset(buf + n, 'v', 5); /* the bytes exist, but beyond the header */
        assert_int_equal(clst_envelope_header_parse(buf, n + 5, &h, &err), CLST_E_MALFORMED);
    }
    /* Vault references with bad parts. */
    {
        uint8_t g[256];
        size_t m = 0;
        g[m++] = 3;
        g[m++] = 0;
        g[m++] = 0; /* patched */
        size_t start = m;
        g[m++] = 0;
        g[m++] = 3;
        memcpy(g + m, "u:/", 3);
        m += 3;
        g[m++] = 1;
        g[m++] = 'k';
        g[m++] = 1;
        g[m++] = '1';
        g[2] = (uint8_t)(m - start);
        memcpy(g + m, f + 19, k - 19);
        m += k - 19;
        n = craft(buf, g, m);
        assert_int_equal(clst_envelope_header_parse(buf, n, &h, &err), CLST_OK);
        assert_string_equal(h.ref.vault_url, "u:/");
        /* ref_size one too large: the inner fields leave a trailing byte. */
        g[2]++;
        memmove(g + start + 10, g + start + 9, m - start - 9);
        g[start + 9] = 0;
        n = craft(buf, g, m + 1);
        assert_int_equal(clst_envelope_header_parse(buf, n, &h, &err), CLST_E_MALFORMED);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trips),      cmocka_unit_test(test_fixed_part),
        cmocka_unit_test(test_every_bit),        cmocka_unit_test(test_encoder_caps),
        cmocka_unit_test(test_parser_hand_made),
    };
    return cmocka_run_group_tests_name("envelope/header", tests, NULL, NULL);
}
