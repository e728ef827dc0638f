/*
 * Unit tests for src/evidence/sevsnp_report.c: the ATTESTATION_REPORT parser, the certificate
 * table parser and the encoders.
 *
 * The three stored real reports parse into the field values their READMEs state and re-encode
 * to the same bytes. Negative cases: every size but 1184 for the report parser; oversized
 * evidence (CLST_E_LIMIT); version-dependent fields (CPUID in v3+, mitigation vectors in v5) read
 * only where defined. The table: valid tables (with an entry of an unknown GUID, with zero
 * padding), and each malformed form: no terminator, an entry inside the header, past the end,
 * wrapping past 2^32, empty, overlapping, too large (LIMIT), too many entries (LIMIT), non-zero
 * bytes outside every entry, an oversized table (LIMIT). (Reserved bytes and bits of the report
 * are covered byte by byte in test_sevsnp_policy.c.)
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_sevsnp_fixture.h"

static void
hex_eq(const uint8_t *bytes, size_t size, const char *want)
{
    char hex[2 * 64 + 1];
    assert_true(2 * size < sizeof(hex));
    assert_int_equal(clst_hex_to_str(bytes, size, hex, sizeof(hex)), CLST_OK);
    assert_string_equal(hex, want);
}

static void
test_real_reports(void **state)
{
    (void)state;
    size_t size = 0;
    struct sevsnp_report r;
    uint8_t again[SEVSNP_REPORT_SIZE];

    uint8_t *g = snp_read("go-sev-guest/attestation.bin", &size);
    assert_non_null(g);
    assert_int_equal(size, SEVSNP_REPORT_SIZE);
    assert_int_equal(evidence_sevsnp_report_parse(g, size, &r, NULL), CLST_OK);
    assert_int_equal(r.version, 2);
    assert_int_equal(r.guest_svn, 0);
    assert_int_equal(r.policy, 0xb0000);
    assert_int_equal(r.vmpl, 0);
    assert_int_equal(r.sig_algo, 1);
    assert_int_equal(r.current_tcb, UINT64_C(0x4405000000000002));
    assert_int_equal(r.reported_tcb, UINT64_C(0x4405000000000002));
    assert_int_equal(r.committed_tcb, UINT64_C(0x4405000000000002));
    assert_int_equal(r.launch_tcb, UINT64_C(0x4405000000000002));
    assert_int_equal(r.platform_info, 1);
    assert_int_equal(sevsnp_signing_key(&r), SEVSNP_KEY_VCEK);
    assert_int_equal(r.current_major, 1);
    assert_int_equal(r.current_minor, 49);
    assert_int_equal(r.current_build, 3);
    assert_int_equal(r.cpuid_family, 0); /* v2: no CPUID */
    hex_eq(r.measurement, 48,
           "b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b6bdf8a9ece31a5a608eb"
           "0cf2e4872b01");
    hex_eq(r.chip_id, 64,
           "3ac3fe21e13fb0990eb28a802e3fb6a29483a6b0753590c951bdd3b8e53786184ca39e359669a2b76a19"
           "36776b564ea464cdce40c05f63c9b610c5068b006b5d");
    evidence_sevsnp_report_encode(&r, again);
    assert_memory_equal(again, g, SEVSNP_REPORT_SIZE);
    free(g);

    uint8_t *t = snp_read("trustee/test-report.bin", &size);
    assert_non_null(t);
    assert_int_equal(evidence_sevsnp_report_parse(t, size, &r, NULL), CLST_OK);
    assert_int_equal(r.guest_svn, 4);
    assert_int_equal(r.policy, 0x3001f);
    assert_int_equal(r.current_tcb, UINT64_C(0xce08000000000003));
    assert_int_equal(r.reported_tcb, UINT64_C(0x7308000000000003));
    assert_int_equal(r.family_id[0], 1);
    assert_int_equal(r.image_id[0], 2);
    assert_int_equal(r.committed_minor, 52);
    assert_int_equal(r.committed_build, 4);
    evidence_sevsnp_report_encode(&r, again);
    assert_memory_equal(again, t, SEVSNP_REPORT_SIZE);

    /* Every other size, shorter and longer, is refused by the report parser. */
    uint8_t *longer = calloc(1, SEVSNP_REPORT_SIZE + 64);
    assert_non_null(longer);
    memcpy(longer, t, SEVSNP_REPORT_SIZE);
    for (size_t n = 0; n <= SEVSNP_REPORT_SIZE + 64; n++) {
        if (n == SEVSNP_REPORT_SIZE) {
            continue;
        }
        struct clst_err err = {0};
        assert_int_equal(evidence_sevsnp_report_parse(longer, n, &r, &err), CLST_E_MALFORMED);
        assert_non_null(strstr(err.msg, "1184"));
    }
    free(longer);
    free(t);

    uint8_t *v = snp_read("virtee-sev/report_milan.bin", &size);
    assert_non_null(v);
    assert_int_equal(evidence_sevsnp_report_parse(v, size, &r, NULL), CLST_OK);
    assert_int_equal(r.policy, 0x30000);
    evidence_sevsnp_report_encode(&r, again);
    assert_memory_equal(again, v, SEVSNP_REPORT_SIZE);
    free(v);

    /* Bad arguments. */
    assert_int_equal(evidence_sevsnp_report_parse(NULL, 10, &r, NULL), CLST_E_INVAL);
    assert_int_equal(evidence_sevsnp_report_parse(again, sizeof(again), NULL, NULL), CLST_E_INVAL);
}

static void
test_version_fields(void **state)
{
    (void)state;
    struct sevsnp_report r, p;
    uint8_t buf[SEVSNP_REPORT_SIZE];
    for (uint32_t v = 2; v <= 5; v++) {
        synth_report_init(&r, SEVSNP_PRODUCT_GENOA, v);
        r.cpuid_family = 0x19;
        r.cpuid_model = 0x11;
        r.cpuid_stepping = 2;
        r.launch_mit_vector = 5;
        r.current_mit_vector = 6;
        evidence_sevsnp_report_encode(&r, buf);
        struct clst_err err = {0};
        enum clst_status rc = evidence_sevsnp_report_parse(buf, sizeof(buf), &p, &err);
        if (v == 2) {
            /* The CPUID bytes are reserved in v2. */
            assert_int_equal(rc, CLST_E_MALFORMED);
            assert_non_null(strstr(err.msg, "0x188"));
            continue;
        }
        if (v < 5) {
            /* The mitigation vectors are reserved before v5. */
            assert_int_equal(rc, CLST_E_MALFORMED);
            assert_non_null(strstr(err.msg, "0x1f8"));
            r.launch_mit_vector = r.current_mit_vector = 0;
            evidence_sevsnp_report_encode(&r, buf);
            rc = evidence_sevsnp_report_parse(buf, sizeof(buf), &p, &err);
        }
        assert_int_equal(rc, CLST_OK);
        assert_int_equal(p.cpuid_family, 0x19);
        assert_int_equal(p.cpuid_model, 0x11);
        assert_int_equal(p.cpuid_stepping, 2);
        assert_int_equal(p.launch_mit_vector, v >= 5 ? 5 : 0);
        assert_int_equal(p.current_mit_vector, v >= 5 ? 6 : 0);
    }
}

static void
test_evidence_sizes(void **state)
{
    (void)state;
    struct sevsnp_evidence ev;
    uint8_t *buf = calloc(1, SEVSNP_EVIDENCE_MAX_SIZE + 1);
    struct sevsnp_report r;
    struct clst_err err = {0};
    assert_non_null(buf);
    synth_report_init(&r, SEVSNP_PRODUCT_MILAN, 3);
    evidence_sevsnp_report_encode(&r, buf);
    assert_int_equal(evidence_sevsnp_parse(buf, SEVSNP_REPORT_SIZE, &ev, NULL), CLST_OK);
    assert_false(ev.has_table);
    /* A zero table of the maximum size: an empty table with padding. */
    assert_int_equal(evidence_sevsnp_parse(buf, SEVSNP_EVIDENCE_MAX_SIZE, &ev, NULL), CLST_OK);
    assert_true(ev.has_table);
    assert_int_equal(ev.table.count, 0);
    assert_int_equal(evidence_sevsnp_parse(buf, SEVSNP_EVIDENCE_MAX_SIZE + 1, &ev, &err),
                     CLST_E_LIMIT);
    assert_int_equal(evidence_sevsnp_parse(buf, SEVSNP_REPORT_SIZE - 1, &ev, &err),
                     CLST_E_MALFORMED);
    assert_non_null(strstr(err.msg, "truncated"));
    assert_int_equal(evidence_sevsnp_parse(NULL, 0, &ev, &err), CLST_E_MALFORMED);
    free(buf);
}

/* ---- tables --------------------------------------------------------------------------------- */

static void
put_entry(uint8_t *t, size_t i, const uint8_t guid[16], uint32_t off, uint32_t len)
{
    memcpy(t + i * 24, guid, 16);
    clst_put_le32(t + i * 24 + 16, off);
    clst_put_le32(t + i * 24 + 20, len);
}

static enum clst_status
parse_table(const uint8_t *t, size_t size, struct sevsnp_table *out, const char *needle)
{
    struct clst_err err = {0};
    enum clst_status rc = evidence_sevsnp_table_parse(t, size, out, &err);
    if (rc != CLST_OK && needle != NULL && strstr(err.msg, needle) == NULL) {
        fail_msg("message \"%s\" lacks \"%s\"", err.msg, needle);
    }
    return rc;
}

static void
test_table(void **state)
{
    (void)state;
    static const uint8_t other[16] = {0xec, 0xae, 0x0c, 0x0f, 0x95, 0x02, 0x43, 0xb1,
                                      0xaf, 0xa2, 0x0a, 0xe2, 0xe0, 0xd5, 0x65, 0xb6};
    uint8_t t[4096];
    struct sevsnp_table tab;

    /* Three entries + terminator = 96 bytes of header, then 3 "certificates" and padding. */
    memset(t, 0, sizeof(t));
    put_entry(t, 0, sevsnp_guid_vcek, 96, 100);
    put_entry(t, 1, sevsnp_guid_ask, 196, 50);
    put_entry(t, 2, other, 246, 8);
    memset(t + 96, 0x11, 100);
    memset(t + 196, 0x22, 50);
    memset(t + 246, 0x33, 8);
    assert_int_equal(parse_table(t, 400, &tab, NULL), CLST_OK);
    assert_int_equal(tab.count, 3);
    assert_int_equal(tab.entries[0].role, SEVSNP_GUID_VCEK);
    assert_int_equal(tab.entries[1].role, SEVSNP_GUID_ASK);
    assert_int_equal(tab.entries[2].role, SEVSNP_GUID_OTHER);
    assert_int_equal(tab.entries[1].offset, 196);
    assert_int_equal(tab.entries[1].length, 50);
    /* Exactly as long as the last certificate. */
    assert_int_equal(parse_table(t, 254, &tab, NULL), CLST_OK);
    /* Cut into the last certificate. */
    assert_int_equal(parse_table(t, 253, &tab, "not inside"), CLST_E_MALFORMED);
    /* Every cut inside the header. */
    for (size_t n = 0; n < 96; n++) {
        assert_int_equal(parse_table(t, n, &tab, "terminating"), CLST_E_MALFORMED);
    }
    /* A byte that belongs to no entry: between entries, and after the last. */
    t[300] = 1;
    assert_int_equal(parse_table(t, 400, &tab, "zero padding"), CLST_E_MALFORMED);
    t[300] = 0;
    put_entry(t, 1, sevsnp_guid_ask, 197, 49); /* leaves byte 196 (0x22) uncovered */
    assert_int_equal(parse_table(t, 400, &tab, "belong"), CLST_E_MALFORMED);
    put_entry(t, 1, sevsnp_guid_ask, 196, 50);
    /* Overlap. */
    put_entry(t, 1, sevsnp_guid_ask, 150, 50);
    assert_int_equal(parse_table(t, 400, &tab, "overlaps"), CLST_E_MALFORMED);
    put_entry(t, 1, sevsnp_guid_ask, 196, 50);
    /* Inside the header. */
    put_entry(t, 1, sevsnp_guid_ask, 80, 50);
    assert_int_equal(parse_table(t, 400, &tab, "not inside"), CLST_E_MALFORMED);
    /* Past the end; wrapping past 2^32. */
    put_entry(t, 1, sevsnp_guid_ask, 396, 50);
    assert_int_equal(parse_table(t, 400, &tab, "not inside"), CLST_E_MALFORMED);
    put_entry(t, 1, sevsnp_guid_ask, 0xFFFFFFF0u, 0x20);
    assert_int_equal(parse_table(t, 400, &tab, "not inside"), CLST_E_MALFORMED);
    /* Empty and oversized entries. */
    put_entry(t, 1, sevsnp_guid_ask, 196, 0);
    assert_int_equal(parse_table(t, 400, &tab, "empty"), CLST_E_MALFORMED);
    put_entry(t, 1, sevsnp_guid_ask, 196, SEVSNP_CERT_MAX_SIZE + 1);
    assert_int_equal(parse_table(t, sizeof(t), &tab, "limit"), CLST_E_LIMIT);

    /* Too many entries. */
    memset(t, 0, sizeof(t));
    for (size_t i = 0; i <= SEVSNP_TABLE_MAX_ENTRIES; i++) {
        put_entry(t, i, other, (uint32_t)(24 * (SEVSNP_TABLE_MAX_ENTRIES + 2) + i), 1);
    }
    assert_int_equal(parse_table(t, sizeof(t), &tab, "more than"), CLST_E_LIMIT);
    /* Exactly the maximum is fine. */
    memset(t + 24 * SEVSNP_TABLE_MAX_ENTRIES, 0, 24);
    for (size_t i = 0; i < SEVSNP_TABLE_MAX_ENTRIES; i++) {
        put_entry(t, i, other, (uint32_t)(24 * (SEVSNP_TABLE_MAX_ENTRIES + 1) + i), 1);
    }
    assert_int_equal(parse_table(t, 24 * (SEVSNP_TABLE_MAX_ENTRIES + 1) + 16, &tab, NULL), CLST_OK);
    assert_int_equal(tab.count, SEVSNP_TABLE_MAX_ENTRIES);

    /* The empty table, and an oversized one. */
    memset(t, 0, sizeof(t));
    assert_int_equal(parse_table(t, 24, &tab, NULL), CLST_OK);
    assert_int_equal(tab.count, 0);
    uint8_t *big = calloc(1, SEVSNP_TABLE_MAX_SIZE + 1);
    assert_non_null(big);
    assert_int_equal(parse_table(big, SEVSNP_TABLE_MAX_SIZE + 1, &tab, "limit"), CLST_E_LIMIT);
    assert_int_equal(parse_table(big, SEVSNP_TABLE_MAX_SIZE, &tab, NULL), CLST_OK);
    free(big);
}

static void
test_table_encode(void **state)
{
    (void)state;
    struct clst_buf b;
    struct sevsnp_table tab;
    const uint8_t a[3] = {1, 2, 3}, c[2] = {4, 5};
    enum sevsnp_guid_role roles[2] = {SEVSNP_GUID_VLEK, SEVSNP_GUID_ARK};
    const uint8_t *certs[2] = {a, c};
    size_t sizes[2] = {3, 2};
    clst_buf_init(&b, 4096);
    assert_int_equal(evidence_sevsnp_table_encode(roles, certs, sizes, 2, &b), CLST_OK);
    assert_int_equal(b.size, 3 * 24 + 5);
    assert_int_equal(evidence_sevsnp_table_parse(b.data, b.size, &tab, NULL), CLST_OK);
    assert_int_equal(tab.count, 2);
    assert_int_equal(tab.entries[0].role, SEVSNP_GUID_VLEK);
    assert_int_equal(tab.entries[1].role, SEVSNP_GUID_ARK);
    assert_int_equal(tab.entries[1].offset, 3 * 24 + 3);
    roles[0] = SEVSNP_GUID_OTHER;
    clst_buf_reset(&b);
    assert_int_equal(evidence_sevsnp_table_encode(roles, certs, sizes, 2, &b), CLST_E_INVAL);
    clst_buf_cleanup(&b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_reports),   cmocka_unit_test(test_version_fields),
        cmocka_unit_test(test_evidence_sizes), cmocka_unit_test(test_table),
        cmocka_unit_test(test_table_encode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
