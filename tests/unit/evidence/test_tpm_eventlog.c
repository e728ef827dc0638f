/*
 * Tests for src/evidence/tpm_eventlog.c: the GCE log parses and replays to the quoted PCRs in
 * all three banks; every truncation is malformed; each structural rule (Spec ID event, algorithm
 * table, PCR index, digest list, limits) is enforced; the replay follows the PC Client rules
 * (EV_NO_ACTION not extended, StartupLocality), checked against PCR values computed here.
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_tpm_fixture.h"

static void
test_gce_replay(void **state)
{
    (void)state;
    struct tf_blob log = tf_file(TF_GCE "extracted/nonce9009.event-log.bin");
    struct tpm_eventlog_info info;
    struct tpm_replay r;
    struct clst_err err;
    static const char *const banks[] = {"sha1", "sha256", "sha384"};

    assert_int_equal(evidence_tpm_eventlog_parse(log.data, log.size, &info, &err), CLST_OK);
    assert_int_equal(info.event_count, 44);
    assert_int_equal(info.alg_count, 3);
    assert_int_equal(info.alg[0], TPM_ALG_SHA1_ID);
    assert_int_equal(info.alg[1], TPM_ALG_SHA256_ID);
    assert_int_equal(info.alg[2], TPM_ALG_SHA384_ID);
    for (size_t b = 0; b < 3; b++) {
        char rel[256];
        uint16_t alg = 0;
        assert_true(evidence_tpm_alg_from_name(banks[b], &alg));
        snprintf(rel, sizeof(rel), TF_GCE "extracted/nonce9009.quote-%s.pcrs-concat.bin", banks[b]);
        struct tf_blob quoted = tf_file(rel);
        size_t size = evidence_tpm_alg_digest_size(alg);
        assert_int_equal(evidence_tpm_eventlog_replay(log.data, log.size, alg, &r, &err), CLST_OK);
        assert_int_equal(r.digest_size, size);
        assert_int_equal(r.touched, 0x3ff); /* PCRs 0..9 */
        for (unsigned pcr = 0; pcr < 10; pcr++) {
            assert_memory_equal(r.pcr[pcr], quoted.data + pcr * size, size);
        }
        tf_blob_free(&quoted);
    }
    /* No sha512 digests in this log. */
    assert_int_equal(evidence_tpm_eventlog_replay(log.data, log.size, TPM_ALG_SHA512_ID, &r, &err),
                     CLST_E_VERIFY);
    assert_int_equal(evidence_tpm_eventlog_replay(log.data, log.size, TPM2_ALG_SM3_256, &r, &err),
                     CLST_E_VERIFY);
    tf_blob_free(&log);
}

static void
test_gce_truncations(void **state)
{
    (void)state;
    struct tf_blob log = tf_file(TF_GCE "extracted/nonce9009.event-log.bin");
    static struct tf_log_event events[64];
    struct tpm_eventlog_info info;
    struct clst_err err;
    size_t count = tf_log_walk(log.data, log.size, events, 64);
    size_t boundary = 1;

    assert_int_equal(count, 45);
    for (size_t n = 0; n < log.size; n++) {
        enum clst_status rc = evidence_tpm_eventlog_parse(log.data, n, &info, &err);
        /* A cut exactly after an event is a shorter well-formed log; anywhere else it is not. */
        if (boundary < count && n == events[boundary].offset) {
            assert_int_equal(rc, CLST_OK);
            assert_int_equal(info.event_count, boundary - 1);
            boundary++;
        } else {
            if (rc != CLST_E_MALFORMED) {
                fprintf(stderr, "cut at %zu: %d\n", n, rc);
            }
            assert_int_equal(rc, CLST_E_MALFORMED);
        }
    }
    assert_int_equal(boundary, count);
    tf_blob_free(&log);
}

/* Parses `bytes` and expects `want`. */
static void
expect(const struct clst_buf *b, enum clst_status want)
{
    struct tpm_eventlog_info info;
    struct clst_err err;
    memset(&err, 0, sizeof(err));
    enum clst_status rc = evidence_tpm_eventlog_parse(b->data, b->size, &info, &err);
    if (rc != want) {
        fprintf(stderr, "got %d (%s), want %d\n", rc, err.msg, want);
    }
    assert_int_equal(rc, want);
    if (rc != CLST_OK) {
        assert_true(err.msg[0] != '\0');
    }
}

static void
test_spec_id_rules(void **state)
{
    (void)state;
    static const uint16_t algs[] = {TPM_ALG_SHA256_ID, TPM_ALG_SHA384_ID};
    struct tf_log l;

    tf_log_init(&l, algs, 2);
    tf_log_event(&l, 3, 0x0d, "x", 1);
    expect(&l.buf, CLST_OK);
    struct clst_buf good = l.buf;
    uint8_t *d = good.data;

    /* The first event: PCR 0, EV_NO_ACTION, zero digest, the signature, version 2. */
    static const size_t offsets[] = {0, 4, 8, 32, 32 + 15, 32 + 21};
    for (size_t i = 0; i < sizeof(offsets) / sizeof(offsets[0]); i++) {
        d[offsets[i]] ^= 0x01;
        expect(&good, CLST_E_MALFORMED);
        d[offsets[i]] ^= 0x01;
    }
    /* Algorithm table: a digest size that is not the algorithm's. */
    d[32 + 28 + 2] ^= 0x01;
    expect(&good, CLST_E_MALFORMED);
    d[32 + 28 + 2] ^= 0x01;
    /* The same algorithm twice. */
    d[32 + 28 + 4] = (uint8_t)TPM_ALG_SHA256_ID;
    d[32 + 28 + 6] = 32;
    expect(&good, CLST_E_MALFORMED);
    d[32 + 28 + 4] = (uint8_t)TPM_ALG_SHA384_ID;
    d[32 + 28 + 6] = 48;
    /* Vendor info size that overruns the event, and bytes left after it. */
    d[32 + 28 + 8] = 1;
    expect(&good, CLST_E_MALFORMED);
    d[32 + 28 + 8] = 0;
    expect(&good, CLST_OK);
    /* Spec ID event size one too large / too small. */
    d[28]++;
    expect(&good, CLST_E_MALFORMED);
    d[28] -= 2;
    expect(&good, CLST_E_MALFORMED);
    d[28]++;
    /* Zero algorithms, and too many. */
    d[32 + 24] = 0;
    expect(&good, CLST_E_MALFORMED);
    d[32 + 24] = TPM_EVENTLOG_MAX_ALGS + 1;
    expect(&good, CLST_E_LIMIT);
    d[32 + 24] = 2;
    expect(&good, CLST_OK);
    clst_buf_cleanup(&l.buf);

    /* An unknown algorithm in the table is fine if its size is sane (SM3-256, 32 bytes). */
    static const uint16_t with_sm3[] = {TPM_ALG_SHA256_ID, TPM2_ALG_SM3_256};
    tf_log_init(&l, with_sm3, 2);
    l.buf.data[32 + 28 + 4 + 2] = 32; /* the builder knows no size for SM3 */
    expect(&l.buf, CLST_OK);
    l.buf.data[32 + 28 + 4 + 2] = TPM_DIGEST_MAX_SIZE + 1;
    expect(&l.buf, CLST_E_MALFORMED);
    clst_buf_cleanup(&l.buf);
    /* Empty log, legacy (SHA-1 format only) log. */
    struct clst_buf empty = {0};
    expect(&empty, CLST_E_MALFORMED);
    struct clst_buf legacy;
    clst_buf_init(&legacy, 256);
    tf_put32(&legacy, 0);
    tf_put32(&legacy, 0x8); /* EV_S_CRTM_VERSION, a TPM 1.2 style first event */
    for (int i = 0; i < 20; i++) {
        clst_buf_append_byte(&legacy, 0xab);
    }
    tf_put32(&legacy, 0);
    expect(&legacy, CLST_E_MALFORMED);
    clst_buf_cleanup(&legacy);
}

static void
test_event_rules(void **state)
{
    (void)state;
    static const uint16_t algs[] = {TPM_ALG_SHA1_ID, TPM_ALG_SHA256_ID};
    struct tf_log l;
    static struct tf_log_event ev[8];

    tf_log_init(&l, algs, 2);
    tf_log_event(&l, 7, 0x80000001, "secure boot", 11);
    tf_log_event(&l, 23, 0x0d, "last pcr", 8);
    expect(&l.buf, CLST_OK);
    size_t n = tf_log_walk(l.buf.data, l.buf.size, ev, 8);
    assert_int_equal(n, 3);
    uint8_t *d = l.buf.data;

    /* PCR index 24 and 0xffffffff. */
    d[ev[2].offset] = 24;
    expect(&l.buf, CLST_E_MALFORMED);
    memset(d + ev[2].offset, 0xff, 4);
    expect(&l.buf, CLST_E_MALFORMED);
    memset(d + ev[2].offset, 0, 4);
    d[ev[2].offset] = 23;
    /* More digests than algorithms. */
    d[ev[1].offset + 8] = 3;
    expect(&l.buf, CLST_E_MALFORMED);
    d[ev[1].offset + 8] = 2;
    /* A digest algorithm the table does not list, and one listed twice. */
    d[ev[1].offset + 12] = (uint8_t)TPM_ALG_SHA384_ID;
    expect(&l.buf, CLST_E_MALFORMED);
    d[ev[1].offset + 12] = (uint8_t)TPM_ALG_SHA256_ID; /* sha256 then sha256 (sizes differ) */
    expect(&l.buf, CLST_E_MALFORMED);
    d[ev[1].offset + 12] = (uint8_t)TPM_ALG_SHA1_ID;
    /* Event data longer than what remains. */
    d[ev[2].data_offset - 4] = 200;
    expect(&l.buf, CLST_E_MALFORMED);
    d[ev[2].data_offset - 4] = 8;
    expect(&l.buf, CLST_OK);
    /* Trailing bytes that are not an event. */
    clst_buf_append(&l.buf, "\0\0\0", 3);
    expect(&l.buf, CLST_E_MALFORMED);
    clst_buf_cleanup(&l.buf);

    /* An event without the replayed bank's digest parses, but cannot be replayed. */
    tf_log_init(&l, algs, 2);
    tf_put32(&l.buf, 1);
    tf_put32(&l.buf, 0x0d);
    tf_put32(&l.buf, 1);
    tf_put16(&l.buf, TPM_ALG_SHA1_ID);
    uint8_t sha1[20] = {0};
    clst_buf_append(&l.buf, sha1, 20);
    tf_put32(&l.buf, 0);
    expect(&l.buf, CLST_OK);
    struct tpm_replay r;
    struct clst_err err;
    assert_int_equal(
        evidence_tpm_eventlog_replay(l.buf.data, l.buf.size, TPM_ALG_SHA1_ID, &r, &err), CLST_OK);
    assert_int_equal(
        evidence_tpm_eventlog_replay(l.buf.data, l.buf.size, TPM_ALG_SHA256_ID, &r, &err),
        CLST_E_VERIFY);
    assert_non_null(strstr(err.msg, "no sha256 digest"));
    clst_buf_cleanup(&l.buf);
}

static void
test_replay_rules(void **state)
{
    (void)state;
    static const uint16_t algs[] = {TPM_ALG_SHA256_ID, TPM_ALG_SHA512_ID};
    struct tf_log l;
    struct tpm_replay r;
    struct clst_err err;
    uint8_t want0[64] = {0}, want5[64] = {0}, want0_512[64] = {0};
    uint8_t locality[17] = "StartupLocality";

    locality[16] = 3;
    tf_log_init(&l, algs, 2);
    tf_log_event(&l, 0, TPM_EV_NO_ACTION, locality, sizeof(locality));
    want0[31] = 3;
    want0_512[63] = 3;
    tf_log_event(&l, 0, 0x08, "crtm", 4);
    tf_extend(TPM_ALG_SHA256_ID, want0, "crtm", 4);
    tf_extend(TPM_ALG_SHA512_ID, want0_512, "crtm", 4);
    tf_log_event(&l, 5, TPM_EV_NO_ACTION, "not extended", 12);
    tf_log_event(&l, 5, 0x80000006, "gpt", 3);
    tf_extend(TPM_ALG_SHA256_ID, want5, "gpt", 3);
    tf_log_event(&l, 5, 0x80000007, "boot", 4);
    tf_extend(TPM_ALG_SHA256_ID, want5, "boot", 4);
    /* A second StartupLocality after PCR 0 was extended changes nothing. */
    locality[16] = 4;
    tf_log_event(&l, 0, TPM_EV_NO_ACTION, locality, sizeof(locality));

    assert_int_equal(
        evidence_tpm_eventlog_replay(l.buf.data, l.buf.size, TPM_ALG_SHA256_ID, &r, &err), CLST_OK);
    assert_int_equal(r.touched, (1u << 0) | (1u << 5));
    assert_memory_equal(r.pcr[0], want0, 32);
    assert_memory_equal(r.pcr[5], want5, 32);
    uint8_t zero[64] = {0};
    assert_memory_equal(r.pcr[1], zero, 32);
    assert_int_equal(
        evidence_tpm_eventlog_replay(l.buf.data, l.buf.size, TPM_ALG_SHA512_ID, &r, &err), CLST_OK);
    assert_int_equal(r.digest_size, 64);
    assert_memory_equal(r.pcr[0], want0_512, 64);
    clst_buf_cleanup(&l.buf);

    /* A StartupLocality event of the wrong size is an ordinary EV_NO_ACTION. */
    tf_log_init(&l, algs, 2);
    tf_log_event(&l, 0, TPM_EV_NO_ACTION, locality, 16);
    tf_log_event(&l, 0, 0x08, "crtm", 4);
    memset(want0, 0, sizeof(want0));
    tf_extend(TPM_ALG_SHA256_ID, want0, "crtm", 4);
    assert_int_equal(
        evidence_tpm_eventlog_replay(l.buf.data, l.buf.size, TPM_ALG_SHA256_ID, &r, &err), CLST_OK);
    assert_memory_equal(r.pcr[0], want0, 32);
    clst_buf_cleanup(&l.buf);
}

static void
test_limits(void **state)
{
    (void)state;
    static const uint16_t algs[] = {TPM_ALG_SHA256_ID};
    struct tf_log l;
    struct tpm_eventlog_info info;
    struct clst_err err;

    /* Events with no digests are the smallest (16 bytes): one past the event limit. */
    tf_log_init(&l, algs, 1);
    for (unsigned i = 0; i <= TPM_EVENTLOG_MAX_EVENTS; i++) {
        tf_put32(&l.buf, 1);
        tf_put32(&l.buf, 0x0d);
        tf_put32(&l.buf, 0);
        tf_put32(&l.buf, 0);
    }
    assert_true(l.buf.size <= TPM_EVENTLOG_MAX_SIZE);
    assert_int_equal(evidence_tpm_eventlog_parse(l.buf.data, l.buf.size, &info, &err),
                     CLST_E_LIMIT);
    /* Exactly at the limit it parses. */
    assert_int_equal(evidence_tpm_eventlog_parse(l.buf.data, l.buf.size - 16, &info, &err),
                     CLST_OK);
    assert_int_equal(info.event_count, TPM_EVENTLOG_MAX_EVENTS);
    clst_buf_cleanup(&l.buf);
    /* Larger than the size limit: refused before walking. */
    uint8_t *big = calloc(1, TPM_EVENTLOG_MAX_SIZE + 1);
    struct tpm_replay r;
    assert_non_null(big);
    assert_int_equal(evidence_tpm_eventlog_parse(big, TPM_EVENTLOG_MAX_SIZE + 1, &info, &err),
                     CLST_E_LIMIT);
    assert_int_equal(
        evidence_tpm_eventlog_replay(big, TPM_EVENTLOG_MAX_SIZE + 1, TPM_ALG_SHA256_ID, &r, &err),
        CLST_E_LIMIT);
    free(big);
    assert_int_equal(evidence_tpm_eventlog_parse(NULL, 0, NULL, &err), CLST_E_INVAL);
}

int
main(int argc, char **argv)
{
    if (argc > 1) {
        cmocka_set_test_filter(argv[1]);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gce_replay),    cmocka_unit_test(test_gce_truncations),
        cmocka_unit_test(test_spec_id_rules), cmocka_unit_test(test_event_rules),
        cmocka_unit_test(test_replay_rules),  cmocka_unit_test(test_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
