/*
 * Unit tests for src/evidence/sevsnp_verify.c on synthetic evidence: a PKI made at run time
 * exactly like AMD's (RSA-PSS SHA-384 salt 48 ARK/ASK/ASVK, P-384 VCEK/VLEK with serial 0 and the
 * KDS extensions), passed to evidence_sevsnp_verify_with() as the root set, so that reports of
 * every version (2-5) and product (Milan, Genoa, Turin; VCEK and VLEK) can be signed. The real
 * AMD-signed vectors are tested in test_sevsnp_verify.c.
 *
 * Cases: each version and product accepted, with its claims (Turin's TCB layout and FMC); the
 * hwID in both encodings; VLEK -> ASVK -> ARK, and every VCEK/VLEK mix-up; each reserved field
 * and reserved bit set (re-signed, so the parser is what rejects it); unknown versions, signature
 * algorithms, signing keys and VMPLs; R or S zero, equal to n, above n or above 2^384; the
 * guest-policy knobs (debug, migration agent, SMT, VMPL, minimum TCB); an ARK carried in the
 * evidence; the wrong product (CPUID, productName); an expired intermediate; CRLs from the ARK
 * (revoked, clean, forged, expired, missing); a masked chip id; a VCEK without its TCB
 * extensions; several candidates with the furthest failure reported.
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_sevsnp_fixture.h"

/* The default VCEK/VLEK of each product for reports made by synth_report_init (made once). */
static X509 *default_leaves[SEVSNP_PRODUCT_COUNT][2];

static int
setup(void **state)
{
    struct synth *s = synth_new();
    if (s == NULL) {
        return -1;
    }
    *state = s;
    return 0;
}

static int
teardown(void **state)
{
    for (size_t p = 0; p < SEVSNP_PRODUCT_COUNT; p++) {
        X509_free(default_leaves[p][0]);
        X509_free(default_leaves[p][1]);
        default_leaves[p][0] = default_leaves[p][1] = NULL;
    }
    synth_free(*state);
    return 0;
}

static struct synth_leaf_spec leaf_spec(const struct synth *s, enum sevsnp_product p, bool vlek,
                                        const struct sevsnp_report *r);

static X509 *
default_leaf(const struct synth *s, enum sevsnp_product p, bool vlek)
{
    X509 **slot = &default_leaves[p - 1][vlek ? 1 : 0];
    if (*slot == NULL) {
        struct sevsnp_report r;
        synth_report_init(&r, p, 3);
        struct synth_leaf_spec spec = leaf_spec(s, p, vlek, &r);
        *slot = synth_leaf(s, &spec);
    }
    assert_non_null(*slot);
    return *slot;
}

static struct synth_leaf_spec
leaf_spec(const struct synth *s, enum sevsnp_product p, bool vlek, const struct sevsnp_report *r)
{
    struct synth_leaf_spec spec;
    memset(&spec, 0, sizeof(spec));
    spec.product = p;
    spec.vlek = vlek;
    spec.tcb = synth_tcb(p);
    spec.hwid = r->chip_id;
    spec.hwid_size = p == SEVSNP_PRODUCT_TURIN ? 8 : SEVSNP_CHIP_ID_SIZE;
    spec.nb = s->nb;
    spec.na = s->na;
    return spec;
}

/* A Milan version-3 report in `r`, signed with the VCEK key into `rep`; returns the spec of a
 * VCEK of `leaf_product` for it. */
static struct synth_leaf_spec
signed_milan(const struct synth *s, struct sevsnp_report *r, uint8_t rep[SEVSNP_REPORT_SIZE],
             enum sevsnp_product leaf_product)
{
    synth_report_init(r, SEVSNP_PRODUCT_MILAN, 3);
    assert_int_equal(synth_sign(r, s->vcek_key, rep), 0);
    return leaf_spec(s, leaf_product, false, r);
}

/* Verifies a signed report with (leaf, inter) as DER endorsements. */
static enum clst_status
run_ex(const struct synth *s, const uint8_t *rep, size_t size, X509 *leaf, X509 *inter,
       const json_t *opts, int64_t at, STACK_OF(X509_CRL) *crls, json_t **claims,
       struct clst_err *err)
{
    struct clst_buf e;
    clst_buf_init(&e, 1u << 16);
    assert_int_equal(synth_endorse(&e, leaf, inter, NULL), 0);
    enum clst_status rc =
        synth_verify_ex(s, rep, size, e.data, e.size, opts, at, NULL, crls, claims, err);
    clst_buf_cleanup(&e);
    return rc;
}

static void
expect_rc(enum clst_status rc, const struct clst_err *err, enum clst_status want,
          const char *needle)
{
    if (rc != want) {
        fail_msg("want %s, got %s: %s", clst_status_str(want), clst_status_str(rc), err->msg);
    }
    if (want != CLST_OK) {
        assert_int_equal(err->status, want);
        if (needle != NULL && strstr(err->msg, needle) == NULL) {
            fail_msg("message \"%s\" lacks \"%s\"", err->msg, needle);
        }
    }
}

/* Verifies rep with (leaf, inter) at `at`, without options, CRLs or claims. */
static void
expect_chain(const struct synth *s, const uint8_t rep[SEVSNP_REPORT_SIZE], X509 *leaf, X509 *inter,
             int64_t at, enum clst_status want, const char *needle)
{
    struct clst_err err = {0};
    enum clst_status rc =
        run_ex(s, rep, SEVSNP_REPORT_SIZE, leaf, inter, NULL, at, NULL, NULL, &err);
    expect_rc(rc, &err, want, needle);
}

/* Verifies rep with a VCEK made from `spec` and `inter` at SNP_T_2024. */
static void
expect_leaf(const struct synth *s, const uint8_t rep[SEVSNP_REPORT_SIZE],
            const struct synth_leaf_spec *spec, X509 *inter, enum clst_status want,
            const char *needle)
{
    X509 *leaf = synth_leaf(s, spec);
    assert_non_null(leaf);
    expect_chain(s, rep, leaf, inter, SNP_T_2024, want, needle);
    X509_free(leaf);
}

/* Signs r with the default leaf of its product and verifies; returns the status. */
static void
expect_report(const struct synth *s, const struct sevsnp_report *r, enum sevsnp_product p,
              const json_t *opts, enum clst_status want, const char *needle)
{
    uint8_t rep[SEVSNP_REPORT_SIZE];
    bool vlek = sevsnp_signing_key(r) == SEVSNP_KEY_VLEK;
    X509 *leaf = default_leaf(s, p, vlek);
    assert_int_equal(synth_sign(r, vlek ? s->vlek_key : s->vcek_key, rep), 0);
    struct clst_err err = {0};
    enum clst_status rc = run_ex(s, rep, sizeof(rep), leaf, vlek ? s->asvk[p - 1] : s->ask[p - 1],
                                 opts, SNP_T_2024, NULL, NULL, &err);
    expect_rc(rc, &err, want, needle);
}

/* ---- versions and products ------------------------------------------------------------------ */

static void
test_versions_and_products(void **state)
{
    struct synth *s = *state;
    for (int p = SEVSNP_PRODUCT_MILAN; p <= SEVSNP_PRODUCT_TURIN; p++) {
        for (uint32_t v = SEVSNP_MIN_VERSION; v <= SEVSNP_MAX_VERSION; v++) {
            struct sevsnp_report r;
            uint8_t rep[SEVSNP_REPORT_SIZE];
            json_t *claims = NULL;
            struct clst_err err = {0};
            synth_report_init(&r, (enum sevsnp_product)p, v);
            struct synth_leaf_spec spec = leaf_spec(s, (enum sevsnp_product)p, false, &r);
            spec.hwid_wrapped = (v % 2) == 1; /* both hwID encodings */
            X509 *leaf = synth_leaf(s, &spec);
            assert_non_null(leaf);
            assert_int_equal(synth_sign(&r, s->vcek_key, rep), 0);
            enum clst_status rc = run_ex(s, rep, sizeof(rep), leaf, s->ask[p - 1], NULL, SNP_T_2024,
                                         NULL, &claims, &err);
            if (p == SEVSNP_PRODUCT_TURIN && v == 2) {
                expect_rc(rc, &err, CLST_E_VERIFY, "version-2 report with a Turin");
                X509_free(leaf);
                continue;
            }
            expect_rc(rc, &err, CLST_OK, NULL);
            assert_int_equal(
                json_integer_value(json_object_get(claims, SEVSNP_CLAIM_X_REPORT_VERSION)), v);
            assert_int_equal(
                json_integer_value(json_object_get(claims, SEVSNP_CLAIM_BOOTLOADER_SVN)), 3);
            assert_int_equal(json_integer_value(json_object_get(claims, SEVSNP_CLAIM_SNPFW_SVN)),
                             8);
            assert_int_equal(
                json_integer_value(json_object_get(claims, SEVSNP_CLAIM_MICROCODE_SVN)), 115);
            assert_int_equal(json_integer_value(json_object_get(claims, SEVSNP_CLAIM_TEE_SVN)), 0);
            const char *prod = json_string_value(json_object_get(claims, SEVSNP_CLAIM_X_PRODUCT));
            if (v >= 3) {
                assert_non_null(prod);
                assert_string_equal(prod, evidence_sevsnp_product_name((enum sevsnp_product)p));
            } else {
                assert_null(prod);
            }
            json_t *fmc = json_object_get(claims, SEVSNP_CLAIM_X_FMC_SVN);
            if (p == SEVSNP_PRODUCT_TURIN) {
                assert_int_equal(json_integer_value(fmc), 1);
            } else {
                assert_null(fmc);
            }
            json_decref(claims);
            X509_free(leaf);
        }
    }
}

/* Turin's TCB layout differs: a Turin report written with the Milan layout is refused. */
static void
test_turin_tcb_layout(void **state)
{
    struct synth *s = *state;
    struct sevsnp_report r;
    struct sevsnp_tcb t = synth_tcb(SEVSNP_PRODUCT_TURIN), d;
    uint64_t turin = evidence_sevsnp_tcb_encode(SEVSNP_PRODUCT_TURIN, &t);
    uint64_t milan = evidence_sevsnp_tcb_encode(SEVSNP_PRODUCT_MILAN, &t);
    assert_int_equal(turin, UINT64_C(0x7300000008000301));
    assert_int_equal(milan, UINT64_C(0x7308000000000003));
    assert_true(evidence_sevsnp_tcb_decode(SEVSNP_PRODUCT_TURIN, turin, &d));
    assert_int_equal(d.fmc, 1);
    assert_int_equal(d.bootloader, 3);
    assert_int_equal(d.snp, 8);
    /* The Milan encoding read as Turin has byte 6 (reserved there) set. */
    assert_false(evidence_sevsnp_tcb_decode(SEVSNP_PRODUCT_TURIN, milan, &d));
    assert_false(evidence_sevsnp_tcb_decode(SEVSNP_PRODUCT_MILAN, turin, &d));
    assert_false(evidence_sevsnp_tcb_decode(SEVSNP_PRODUCT_UNKNOWN, 0, &d));

    synth_report_init(&r, SEVSNP_PRODUCT_TURIN, 3);
    r.reported_tcb = milan;
    expect_report(s, &r, SEVSNP_PRODUCT_TURIN, NULL, CLST_E_MALFORMED, "REPORTED_TCB");
    synth_report_init(&r, SEVSNP_PRODUCT_TURIN, 3);
    r.current_tcb = milan;
    expect_report(s, &r, SEVSNP_PRODUCT_TURIN, NULL, CLST_E_MALFORMED, "CURRENT_TCB");
    /* The FMC is part of the match on Turin. */
    synth_report_init(&r, SEVSNP_PRODUCT_TURIN, 3);
    t.fmc = 2;
    r.reported_tcb = evidence_sevsnp_tcb_encode(SEVSNP_PRODUCT_TURIN, &t);
    expect_report(s, &r, SEVSNP_PRODUCT_TURIN, NULL, CLST_E_VERIFY, "REPORTED_TCB");
}

static void
test_vlek(void **state)
{
    struct synth *s = *state;
    for (int p = SEVSNP_PRODUCT_MILAN; p <= SEVSNP_PRODUCT_TURIN; p++) {
        struct sevsnp_report r;
        uint8_t rep[SEVSNP_REPORT_SIZE];
        json_t *claims = NULL;
        struct clst_err err = {0};
        synth_report_init(&r, (enum sevsnp_product)p, 3);
        r.key_info = (uint32_t)SEVSNP_KEY_VLEK << SEVSNP_KEYINFO_SIGNING_SHIFT;
        memset(r.chip_id, 0, sizeof(r.chip_id));
        struct synth_leaf_spec spec = leaf_spec(s, (enum sevsnp_product)p, true, &r);
        X509 *vlek = synth_leaf(s, &spec);
        spec = leaf_spec(s, (enum sevsnp_product)p, false, &r);
        X509 *vcek = synth_leaf(s, &spec);
        assert_non_null(vlek);
        assert_non_null(vcek);
        assert_int_equal(synth_sign(&r, s->vlek_key, rep), 0);
        enum clst_status rc = run_ex(s, rep, sizeof(rep), vlek, s->asvk[p - 1], NULL, SNP_T_2024,
                                     NULL, &claims, &err);
        expect_rc(rc, &err, CLST_OK, NULL);
        assert_string_equal(json_string_value(json_object_get(claims, SEVSNP_CLAIM_X_SIGNING_KEY)),
                            "vlek");
        json_decref(claims);
        /* The VLEK with the ASK instead of the ASVK: no issuer. */
        expect_chain(s, rep, vlek, s->ask[p - 1], SNP_T_2024, CLST_E_VERIFY, "does not chain");
        /* A VLEK-signed report with a VCEK. */
        expect_chain(s, rep, vcek, s->ask[p - 1], SNP_T_2024, CLST_E_VERIFY, "signed by a VLEK");
        /* A VCEK-signed report (same key bytes otherwise) with a VLEK. */
        r.key_info = 0;
        assert_int_equal(synth_sign(&r, s->vlek_key, rep), 0);
        expect_chain(s, rep, vlek, s->asvk[p - 1], SNP_T_2024, CLST_E_VERIFY, "signed by a VCEK");
        /* An unsigned report (SIGNING_KEY 7). */
        r.key_info = (uint32_t)SEVSNP_KEY_NONE << SEVSNP_KEYINFO_SIGNING_SHIFT;
        assert_int_equal(synth_sign(&r, s->vlek_key, rep), 0);
        expect_chain(s, rep, vlek, s->asvk[p - 1], SNP_T_2024, CLST_E_VERIFY, "not signed");
        X509_free(vlek);
        X509_free(vcek);
    }
}

/* ---- reserved fields and bits --------------------------------------------------------------- */

/* Sets byte `off` of a valid Milan report of `version` to `value`; expects the parser to refuse
 * it. With `full`, the report is re-signed (when the byte is signed) and verified end to end, so
 * that the reserved byte, not the signature, is what fails. */
static void
expect_reserved_byte(const struct synth *s, uint32_t version, size_t off, uint8_t value, bool full)
{
    struct sevsnp_report r, parsed;
    uint8_t rep[SEVSNP_REPORT_SIZE];
    struct clst_err err = {0};
    enum clst_status rc;
    synth_report_init(&r, SEVSNP_PRODUCT_MILAN, version);
    evidence_sevsnp_report_encode(&r, rep);
    if (full) {
        assert_int_equal(synth_sign_raw(rep, s->vcek_key), 0);
    }
    rep[off] = value;
    if (full && off < SEVSNP_SIGNED_SIZE) {
        assert_int_equal(synth_sign_raw(rep, s->vcek_key), 0);
    }
    if (full) {
        rc = run_ex(s, rep, sizeof(rep), default_leaf(s, SEVSNP_PRODUCT_MILAN, false), s->ask[0],
                    NULL, SNP_T_2024, NULL, NULL, &err);
    } else {
        rc = evidence_sevsnp_report_parse(rep, sizeof(rep), &parsed, &err);
    }
    if (rc != CLST_E_MALFORMED || strstr(err.msg, "reserved") == NULL) {
        fail_msg("v%u byte 0x%03zx = 0x%02x: want malformed, got %s: %s", (unsigned)version, off,
                 value, clst_status_str(rc), err.msg);
    }
}

static void
test_reserved_bytes(void **state)
{
    struct synth *s = *state;
    /* Every reserved byte of the report through the parser, for each version's layout, and the
     * first, a middle and the last byte of each reserved field through the whole verification
     * with a valid signature. */
    for (uint32_t v = SEVSNP_MIN_VERSION; v <= SEVSNP_MAX_VERSION; v++) {
        size_t ranges[][2] = {
            {0x04C, 0x050}, {v >= 3 ? 0x18B : 0x188, 0x1A0}, {0x1EB, 0x1EC},
            {0x1EF, 0x1F0}, {v >= 5 ? 0x208 : 0x1F8, 0x2A0}, {0x330, 0x4A0},
        };
        for (size_t k = 0; k < sizeof(ranges) / sizeof(ranges[0]); k++) {
            size_t lo = ranges[k][0], hi = ranges[k][1];
            for (size_t off = lo; off < hi; off++) {
                expect_reserved_byte(s, v, off, (uint8_t)(0x01 + (off % 0xFE)), false);
            }
            expect_reserved_byte(s, v, lo, 0x80, true);
            expect_reserved_byte(s, v, lo + (hi - lo) / 2, 0x01, true);
            expect_reserved_byte(s, v, hi - 1, 0xFF, true);
        }
    }
}

static void
test_reserved_bits(void **state)
{
    struct synth *s = *state;
    struct sevsnp_report r;
    /* POLICY bits 26..63 and bit 17 clear. */
    for (unsigned bit = 26; bit < 64; bit++) {
        synth_report_init(&r, SEVSNP_PRODUCT_MILAN, 3);
        r.policy |= UINT64_C(1) << bit;
        expect_report(s, &r, SEVSNP_PRODUCT_MILAN, NULL, CLST_E_MALFORMED, "POLICY");
    }
    synth_report_init(&r, SEVSNP_PRODUCT_MILAN, 3);
    r.policy &= ~SEVSNP_POLICY_RESERVED_ONE;
    expect_report(s, &r, SEVSNP_PRODUCT_MILAN, NULL, CLST_E_MALFORMED, "bit 17");
    /* Defined newer POLICY bits (21..25) are accepted. */
    synth_report_init(&r, SEVSNP_PRODUCT_MILAN, 3);
    r.policy |= UINT64_C(0x1F) << 21;
    expect_report(s, &r, SEVSNP_PRODUCT_MILAN, NULL, CLST_OK, NULL);
    /* PLATFORM_INFO bits 8..63. */
    for (unsigned bit = 8; bit < 64; bit++) {
        synth_report_init(&r, SEVSNP_PRODUCT_MILAN, 3);
        r.platform_info |= UINT64_C(1) << bit;
        expect_report(s, &r, SEVSNP_PRODUCT_MILAN, NULL, CLST_E_MALFORMED, "PLATFORM_INFO");
    }
    /* Key information bits 5..31 and the reserved SIGNING_KEY values 2..6. */
    for (unsigned bit = 5; bit < 32; bit++) {
        synth_report_init(&r, SEVSNP_PRODUCT_MILAN, 3);
        r.key_info |= 1u << bit;
        expect_report(s, &r, SEVSNP_PRODUCT_MILAN, NULL, CLST_E_MALFORMED, "key information");
    }
    for (uint32_t k = 2; k <= 6; k++) {
        synth_report_init(&r, SEVSNP_PRODUCT_MILAN, 3);
        r.key_info = k << SEVSNP_KEYINFO_SIGNING_SHIFT;
        expect_report(s, &r, SEVSNP_PRODUCT_MILAN, NULL, CLST_E_MALFORMED, "SIGNING_KEY");
    }
    /* The reserved bytes of each TCB field, per layout. */
    uint64_t *fields[4] = {&r.current_tcb, &r.reported_tcb, &r.committed_tcb, &r.launch_tcb};
    for (size_t f = 0; f < 4; f++) {
        for (unsigned byte = 2; byte <= 5; byte++) {
            synth_report_init(&r, SEVSNP_PRODUCT_MILAN, 3);
            *fields[f] |= UINT64_C(1) << (8 * byte);
            expect_report(s, &r, SEVSNP_PRODUCT_MILAN, NULL, CLST_E_MALFORMED, "TCB");
        }
        for (unsigned byte = 4; byte <= 6; byte++) {
            synth_report_init(&r, SEVSNP_PRODUCT_TURIN, 3);
            *fields[f] |= UINT64_C(1) << (8 * byte);
            expect_report(s, &r, SEVSNP_PRODUCT_TURIN, NULL, CLST_E_MALFORMED, "TCB");
        }
    }
    /* MASK_CHIP_KEY with a CHIP_ID that is not zero. */
    synth_report_init(&r, SEVSNP_PRODUCT_MILAN, 3);
    r.key_info |= SEVSNP_KEYINFO_MASK_CHIP_KEY;
    expect_report(s, &r, SEVSNP_PRODUCT_MILAN, NULL, CLST_E_MALFORMED, "MASK_CHIP_KEY");
    /* ... and with a zero CHIP_ID the VCEK's hwID is not compared. */
    synth_report_init(&r, SEVSNP_PRODUCT_MILAN, 3);
    uint8_t rep[SEVSNP_REPORT_SIZE];
    struct synth_leaf_spec spec = leaf_spec(s, SEVSNP_PRODUCT_MILAN, false, &r);
    X509 *leaf = synth_leaf(s, &spec);
    r.key_info |= SEVSNP_KEYINFO_MASK_CHIP_KEY;
    memset(r.chip_id, 0, sizeof(r.chip_id));
    assert_int_equal(synth_sign(&r, s->vcek_key, rep), 0);
    expect_chain(s, rep, leaf, s->ask[0], SNP_T_2024, CLST_OK, NULL);
    X509_free(leaf);
}

static void
test_unknown_values(void **state)
{
    struct synth *s = *state;
    struct sevsnp_report r;
    const uint32_t versions[] = {0, 1, 6, 7, 0xFFFFFFFFu};
    for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
        synth_report_init(&r, SEVSNP_PRODUCT_MILAN, 3);
        r.version = versions[i];
        expect_report(s, &r, SEVSNP_PRODUCT_MILAN, NULL, CLST_E_MALFORMED, "version");
    }
    const uint32_t algos[] = {0, 2, 0x100};
    for (size_t i = 0; i < sizeof(algos) / sizeof(algos[0]); i++) {
        synth_report_init(&r, SEVSNP_PRODUCT_MILAN, 3);
        r.sig_algo = algos[i];
        expect_report(s, &r, SEVSNP_PRODUCT_MILAN, NULL, CLST_E_MALFORMED, "signature algorithm");
    }
    synth_report_init(&r, SEVSNP_PRODUCT_MILAN, 3);
    r.vmpl = 4;
    expect_report(s, &r, SEVSNP_PRODUCT_MILAN, NULL, CLST_E_MALFORMED, "VMPL");
    /* An unknown CPU (v3+). */
    synth_report_init(&r, SEVSNP_PRODUCT_MILAN, 3);
    r.cpuid_family = 0x17;
    expect_report(s, &r, SEVSNP_PRODUCT_MILAN, NULL, CLST_E_VERIFY, "not a known SEV-SNP");
}

/* ---- the signature -------------------------------------------------------------------------- */

static void
test_signature_values(void **state)
{
    struct synth *s = *state;
    struct sevsnp_report r;
    uint8_t rep[SEVSNP_REPORT_SIZE];
    static const uint8_t n_be[48] = {
        0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        0xC7, 0x63, 0x4D, 0x81, 0xF4, 0x37, 0x2D, 0xDF, 0x58, 0x1A, 0x0D, 0xB2,
        0x48, 0xB0, 0xA7, 0x7A, 0xEC, 0xEC, 0x19, 0x6A, 0xCC, 0xC5, 0x29, 0x73,
    };
    synth_report_init(&r, SEVSNP_PRODUCT_GENOA, 3);
    struct synth_leaf_spec spec = leaf_spec(s, SEVSNP_PRODUCT_GENOA, false, &r);
    X509 *leaf = synth_leaf(s, &spec);
    assert_int_equal(synth_sign(&r, s->vcek_key, rep), 0);
    expect_chain(s, rep, leaf, s->ask[1], SNP_T_2024, CLST_OK, NULL);

    for (int comp = 0; comp < 2; comp++) {
        size_t base = SEVSNP_SIGNED_SIZE + (size_t)comp * SEVSNP_SIG_COMPONENT_SIZE;
        uint8_t saved[SEVSNP_SIG_COMPONENT_SIZE];
        memcpy(saved, rep + base, sizeof(saved));
        /* zero */
        memset(rep + base, 0, SEVSNP_SIG_COMPONENT_SIZE);
        expect_chain(s, rep, leaf, s->ask[1], SNP_T_2024, CLST_E_VERIFY, "group order");
        /* n, n + 1, 2^384 - 1 (little-endian) */
        for (int k = 0; k < 3; k++) {
            memset(rep + base, 0, SEVSNP_SIG_COMPONENT_SIZE);
            for (size_t i = 0; i < 48; i++) {
                rep[base + i] = k == 2 ? 0xFF : n_be[47 - i];
            }
            if (k == 1) {
                rep[base] = (uint8_t)(rep[base] + 1); /* 0x73 + 1: no carry */
            }
            expect_chain(s, rep, leaf, s->ask[1], SNP_T_2024, CLST_E_VERIFY, "group order");
        }
        /* the valid value with a bit set above 2^384 */
        memcpy(rep + base, saved, sizeof(saved));
        rep[base + 48] = 1;
        expect_chain(s, rep, leaf, s->ask[1], SNP_T_2024, CLST_E_VERIFY, "group order");
        rep[base + 48] = 0;
        /* n - 1 is in range but not the signature */
        memset(rep + base, 0, SEVSNP_SIG_COMPONENT_SIZE);
        for (size_t i = 0; i < 48; i++) {
            rep[base + i] = n_be[47 - i];
        }
        rep[base] = (uint8_t)(rep[base] - 1);
        expect_chain(s, rep, leaf, s->ask[1], SNP_T_2024, CLST_E_VERIFY, "does not verify");
        memcpy(rep + base, saved, sizeof(saved));
    }
    expect_chain(s, rep, leaf, s->ask[1], SNP_T_2024, CLST_OK, NULL);
    /* Signed by another P-384 key (the VLEK's). */
    assert_int_equal(synth_sign(&r, s->vlek_key, rep), 0);
    expect_chain(s, rep, leaf, s->ask[1], SNP_T_2024, CLST_E_VERIFY, "does not verify");
    X509_free(leaf);
}

/* ---- guest policy --------------------------------------------------------------------------- */

static void
test_policy_knobs(void **state)
{
    struct synth *s = *state;
    struct sevsnp_report r;
    struct sevsnp_evidence ev;

    /* DEBUG: the framework's check reads is_debuggable (tested end to end with the real debug
     * report in test_sevsnp_verify.c). */
    synth_report_init(&r, SEVSNP_PRODUCT_MILAN, 3);
    r.policy |= SEVSNP_POLICY_DEBUG;
    memset(&ev, 0, sizeof(ev));
    ev.report = r;
    assert_true(evidence_sevsnp_ops.is_debuggable(&ev));
    ev.report.policy &= ~SEVSNP_POLICY_DEBUG;
    assert_false(evidence_sevsnp_ops.is_debuggable(&ev));

    /* Migration agent: refused by default, accepted when allowed. */
    synth_report_init(&r, SEVSNP_PRODUCT_MILAN, 3);
    r.policy |= SEVSNP_POLICY_MIGRATE_MA;
    expect_report(s, &r, SEVSNP_PRODUCT_MILAN, NULL, CLST_E_VERIFY, "migration agent");
    json_t *o = json_pack("{s:b}", "allow_migration_agent", 1);
    expect_report(s, &r, SEVSNP_PRODUCT_MILAN, o, CLST_OK, NULL);
    json_decref(o);

    /* VMPL: only 0 by default; max_vmpl widens it. */
    for (uint32_t v = 1; v <= 3; v++) {
        synth_report_init(&r, SEVSNP_PRODUCT_GENOA, 4);
        r.vmpl = v;
        expect_report(s, &r, SEVSNP_PRODUCT_GENOA, NULL, CLST_E_VERIFY, "VMPL");
        o = json_pack("{s:i}", "max_vmpl", (int)v - 1);
        expect_report(s, &r, SEVSNP_PRODUCT_GENOA, o, CLST_E_VERIFY, "VMPL");
        json_decref(o);
        o = json_pack("{s:i}", "max_vmpl", (int)v);
        expect_report(s, &r, SEVSNP_PRODUCT_GENOA, o, CLST_OK, NULL);
        json_decref(o);
    }

    /* SMT: allowed by default; refused with allow_smt false; a policy without SMT passes. */
    synth_report_init(&r, SEVSNP_PRODUCT_MILAN, 3);
    o = json_pack("{s:b}", "allow_smt", 0);
    expect_report(s, &r, SEVSNP_PRODUCT_MILAN, o, CLST_E_VERIFY, "SMT");
    r.policy &= ~SEVSNP_POLICY_SMT;
    expect_report(s, &r, SEVSNP_PRODUCT_MILAN, o, CLST_OK, NULL);
    json_decref(o);

    /* Minimum TCB, including Turin's FMC. */
    synth_report_init(&r, SEVSNP_PRODUCT_TURIN, 5);
    o = json_pack("{s:{s:i,s:i,s:i,s:i,s:i}}", "min_tcb", "fmc", 1, "bootloader", 3, "tee", 0,
                  "snp", 8, "microcode", 115);
    expect_report(s, &r, SEVSNP_PRODUCT_TURIN, o, CLST_OK, NULL);
    json_decref(o);
    o = json_pack("{s:{s:i}}", "min_tcb", "fmc", 2);
    expect_report(s, &r, SEVSNP_PRODUCT_TURIN, o, CLST_E_VERIFY, "below the minimum");
    json_decref(o);
    o = json_pack("{s:{s:i}}", "min_tcb", "bootloader", 4);
    expect_report(s, &r, SEVSNP_PRODUCT_TURIN, o, CLST_E_VERIFY, "below the minimum");
    json_decref(o);
    /* The product and stepping options (v3+ carries CPUID). */
    o = json_pack("{s:s, s:i}", "product", "Turin", "stepping", 1);
    expect_report(s, &r, SEVSNP_PRODUCT_TURIN, o, CLST_OK, NULL);
    json_decref(o);
    o = json_pack("{s:i}", "stepping", 2);
    expect_report(s, &r, SEVSNP_PRODUCT_TURIN, o, CLST_E_VERIFY, "stepping 2, got 1");
    json_decref(o);
}

/* ---- roots, products, chains ---------------------------------------------------------------- */

static void
test_ark_from_evidence(void **state)
{
    struct synth *s = *state;
    struct sevsnp_report r;
    uint8_t rep[SEVSNP_REPORT_SIZE];
    struct clst_err err = {0};
    /* An attacker's ARK-Milan and SEV-Milan (same names as AMD's), and a VCEK they issued. */
    X509 *evil_ark = synth_cert(s->evil_key, "ARK-Milan", NULL, s->evil_key, true, 0x10000,
                                s->nb - 86400, s->na + 86400);
    X509 *evil_ask =
        synth_cert(s->evil_key, "SEV-Milan", evil_ark, s->evil_key, true, 0x10001, s->nb, s->na);
    assert_non_null(evil_ark);
    assert_non_null(evil_ask);
    struct synth_leaf_spec spec = signed_milan(s, &r, rep, SEVSNP_PRODUCT_MILAN);
    spec.issuer = evil_ask;
    spec.signer = s->evil_key;
    X509 *leaf = synth_leaf(s, &spec);
    assert_non_null(leaf);

    /* As an extended report whose table names the attacker's ARK with the ARK GUID. */
    struct clst_buf ev, a, b, c;
    clst_buf_init(&ev, 1u << 16);
    clst_buf_init(&a, 1u << 14);
    clst_buf_init(&b, 1u << 14);
    clst_buf_init(&c, 1u << 14);
    assert_int_equal(snp_x509_der(leaf, &a), 0);
    assert_int_equal(snp_x509_der(evil_ask, &b), 0);
    assert_int_equal(snp_x509_der(evil_ark, &c), 0);
    enum sevsnp_guid_role roles[3] = {SEVSNP_GUID_VCEK, SEVSNP_GUID_ASK, SEVSNP_GUID_ARK};
    const uint8_t *certs[3] = {a.data, b.data, c.data};
    size_t sizes[3] = {a.size, b.size, c.size};
    assert_int_equal(clst_buf_append(&ev, rep, sizeof(rep)), CLST_OK);
    assert_int_equal(evidence_sevsnp_table_encode(roles, certs, sizes, 3, &ev), CLST_OK);
    expect_rc(synth_verify(s, ev.data, ev.size, NULL, 0, NULL, &err), &err, CLST_E_VERIFY,
              "does not chain");
    /* And as endorsements. */
    struct clst_buf e;
    clst_buf_init(&e, 1u << 16);
    assert_int_equal(synth_endorse(&e, leaf, evil_ask, evil_ark), 0);
    expect_rc(synth_verify(s, rep, sizeof(rep), e.data, e.size, NULL, &err), &err, CLST_E_VERIFY,
              "does not chain");
    /* The attacker's ARK passed as a trusted root is refused outright. */
    STACK_OF(X509) *roots = sk_X509_new_null();
    assert_int_equal(X509_up_ref(evil_ark), 1);
    assert_true(sk_X509_push(roots, evil_ark) > 0);
    expect_rc(synth_verify_ex(s, rep, sizeof(rep), e.data, e.size, NULL, SNP_T_2024, roots, NULL,
                              NULL, &err),
              &err, CLST_E_INVAL, "compiled into this build");
    sk_X509_pop_free(roots, X509_free);
    clst_buf_cleanup(&e);
    clst_buf_cleanup(&ev);
    clst_buf_cleanup(&a);
    clst_buf_cleanup(&b);
    clst_buf_cleanup(&c);
    X509_free(leaf);
    X509_free(evil_ark);
    X509_free(evil_ask);
}

static void
test_wrong_product(void **state)
{
    struct synth *s = *state;
    struct sevsnp_report r;
    uint8_t rep[SEVSNP_REPORT_SIZE];
    struct clst_err err = {0};

    /* A Genoa chain for a report whose CPUID says Milan. */
    struct synth_leaf_spec spec = signed_milan(s, &r, rep, SEVSNP_PRODUCT_GENOA);
    expect_leaf(s, rep, &spec, s->ask[1], CLST_E_VERIFY, "CPUID");

    /* A Milan-issued VCEK whose productName says Genoa. */
    spec = leaf_spec(s, SEVSNP_PRODUCT_MILAN, false, &r);
    spec.product_name = "Genoa";
    expect_leaf(s, rep, &spec, s->ask[0], CLST_E_VERIFY, "productName");
    spec.product_name = "Milanese";
    expect_leaf(s, rep, &spec, s->ask[0], CLST_E_VERIFY, "productName");

    /* Only ARK-Genoa trusted for a Milan report. */
    spec = leaf_spec(s, SEVSNP_PRODUCT_MILAN, false, &r);
    X509 *leaf = synth_leaf(s, &spec);
    STACK_OF(X509) *genoa = sk_X509_new_null();
    assert_int_equal(X509_up_ref(s->ark[1]), 1);
    assert_true(sk_X509_push(genoa, s->ark[1]) > 0);
    struct clst_buf e;
    clst_buf_init(&e, 1u << 16);
    assert_int_equal(synth_endorse(&e, leaf, s->ask[0], NULL), 0);
    expect_rc(synth_verify_ex(s, rep, sizeof(rep), e.data, e.size, NULL, SNP_T_2024, genoa, NULL,
                              NULL, &err),
              &err, CLST_E_VERIFY, "ARK-Milan");
    /* The Milan VCEK chained through an ASK named SEV-Milan but issued by ARK-Genoa's key...
     * here all synthetic ARKs share a key, so use the attacker-free variant: the VCEK with the
     * Genoa ASK only (no SEV-Milan at all). */
    clst_buf_reset(&e);
    assert_int_equal(synth_endorse(&e, leaf, s->ask[1], s->ark[1]), 0);
    expect_rc(synth_verify(s, rep, sizeof(rep), e.data, e.size, NULL, &err), &err, CLST_E_VERIFY,
              "does not chain");
    clst_buf_cleanup(&e);
    sk_X509_pop_free(genoa, X509_free);
    X509_free(leaf);
}

static void
test_validity(void **state)
{
    struct synth *s = *state;
    struct sevsnp_report r;
    uint8_t rep[SEVSNP_REPORT_SIZE];
    struct clst_err err = {0};
    struct synth_leaf_spec spec = signed_milan(s, &r, rep, SEVSNP_PRODUCT_MILAN);
    spec.na = s->na + 30 * 86400; /* the VCEK outlives its ASK by 30 days */
    X509 *leaf = synth_leaf(s, &spec);
    expect_chain(s, rep, leaf, s->ask[0], s->na, CLST_OK, NULL);
    /* 10 days after the ASK's end: the VCEK is still valid, the ASK is not. */
    expect_chain(s, rep, leaf, s->ask[0], s->na + 10 * 86400, CLST_E_VERIFY, "expired");
    /* Before the VCEK. */
    expect_chain(s, rep, leaf, s->ask[0], s->nb - 1, CLST_E_VERIFY, "not yet valid");
    X509_free(leaf);

    /* Only the ARK expired: a root set whose ARK-Milan (same name and key, so the ASK chains to
     * it) ended a day before the verification time. The pinned root's own validity counts. */
    leaf = default_leaf(s, SEVSNP_PRODUCT_MILAN, false);
    X509 *old_ark = synth_cert(s->ark_key, "ARK-Milan", NULL, s->ark_key, true, 0x10000,
                               s->nb - 10 * 86400, SNP_T_2024 - 86400 + 60);
    assert_non_null(old_ark);
    struct synth s2 = *s;
    unsigned char *der = NULL;
    int n = i2d_X509(old_ark, &der);
    assert_true(n > 0);
    assert_int_equal(clst_sha256(der, (size_t)n, s2.roots.ark_sha256[0]), CLST_OK);
    OPENSSL_free(der);
    s2.roots.ark[0] = old_ark;
    STACK_OF(X509) *roots = sk_X509_new_null();
    assert_true(sk_X509_push(roots, old_ark) > 0);
    struct clst_buf e;
    clst_buf_init(&e, 1u << 16);
    assert_int_equal(synth_endorse(&e, leaf, s->ask[0], NULL), 0);
    expect_rc(synth_verify_ex(&s2, rep, sizeof(rep), e.data, e.size, NULL, SNP_T_2024, roots, NULL,
                              NULL, &err),
              &err, CLST_E_VERIFY, "expired");
    /* The same root set in the last minute of that ARK (the first of the VCEK). */
    expect_rc(synth_verify_ex(&s2, rep, sizeof(rep), e.data, e.size, NULL, SNP_T_2024 - 86400,
                              roots, NULL, NULL, &err),
              &err, CLST_OK, NULL);
    clst_buf_cleanup(&e);
    sk_X509_free(roots);
    X509_free(old_ark);
}

/* A CRL issued by `issuer` (name) signed with `key`, listing `revoked` (may be NULL). */
static X509_CRL *
make_crl(X509 *issuer, EVP_PKEY *key, X509 *revoked, int64_t last, int64_t next)
{
    X509_CRL *crl = X509_CRL_new();
    ASN1_TIME *t1 = ASN1_TIME_set(NULL, (time_t)last);
    ASN1_TIME *t2 = ASN1_TIME_set(NULL, (time_t)next);
    EVP_MD_CTX *md = NULL;
    bool ok = crl != NULL && t1 != NULL && t2 != NULL && X509_CRL_set_version(crl, 1) == 1 &&
              X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer)) == 1 &&
              X509_CRL_set1_lastUpdate(crl, t1) == 1 && X509_CRL_set1_nextUpdate(crl, t2) == 1;
    if (ok && revoked != NULL) {
        X509_REVOKED *rv = X509_REVOKED_new();
        ok = rv != NULL && X509_REVOKED_set_serialNumber(rv, X509_get_serialNumber(revoked)) == 1 &&
             X509_REVOKED_set_revocationDate(rv, t1) == 1 && X509_CRL_add0_revoked(crl, rv) == 1;
        if (!ok) {
            X509_REVOKED_free(rv);
        }
    }
    if (ok) {
        md = synth_pss_ctx(key);
        ok = md != NULL && X509_CRL_sort(crl) == 1 && X509_CRL_sign_ctx(crl, md) > 0;
    }
    EVP_MD_CTX_free(md);
    ASN1_TIME_free(t1);
    ASN1_TIME_free(t2);
    if (!ok) {
        X509_CRL_free(crl);
        return NULL;
    }
    return crl;
}

static void
test_crl(void **state)
{
    struct synth *s = *state;
    struct sevsnp_report r;
    uint8_t rep[SEVSNP_REPORT_SIZE];
    struct clst_err err = {0};
    struct synth_leaf_spec spec = signed_milan(s, &r, rep, SEVSNP_PRODUCT_MILAN);
    X509 *leaf = synth_leaf(s, &spec);
    const int64_t at = SNP_T_2024;
    struct {
        X509_CRL *crl;
        enum clst_status want;
        const char *needle;
    } cases[] = {
        {make_crl(s->ark[0], s->ark_key, NULL, at - 86400, at + 86400), CLST_OK, NULL},
        {make_crl(s->ark[0], s->ark_key, s->asvk[0], at - 86400, at + 86400), CLST_OK, NULL},
        {make_crl(s->ark[0], s->ark_key, s->ask[0], at - 86400, at + 86400), CLST_E_VERIFY,
         "revoked"},
        {make_crl(s->ark[0], s->evil_key, NULL, at - 86400, at + 86400), CLST_E_VERIFY,
         "does not verify"},
        {make_crl(s->ark[0], s->ark_key, NULL, at - 2 * 86400, at - 86400), CLST_E_VERIFY,
         "not valid at"},
        {make_crl(s->ark[0], s->ark_key, NULL, at + 60, at + 86400), CLST_E_VERIFY, "not valid at"},
        {make_crl(s->ark[1], s->ark_key, NULL, at - 86400, at + 86400), CLST_E_VERIFY,
         "none is issued by the ARK"},
    };
    /* Round 0 with a cold chain cache for every case (the full path), round 1 with the chain
     * cached (the CRL is still checked on every call). */
    for (int round = 0; round < 2; round++) {
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
            if (round == 0) {
                evidence_sevsnp_cache_clear();
            } else {
                expect_chain(s, rep, leaf, s->ask[0], at, CLST_OK, NULL); /* warms the cache */
            }
            assert_non_null(cases[i].crl);
            STACK_OF(X509_CRL) *crls = sk_X509_CRL_new_null();
            assert_true(sk_X509_CRL_push(crls, cases[i].crl) > 0);
            enum clst_status rc =
                run_ex(s, rep, sizeof(rep), leaf, s->ask[0], NULL, at, crls, NULL, &err);
            expect_rc(rc, &err, cases[i].want, cases[i].needle);
            sk_X509_CRL_free(crls);
        }
    }
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        X509_CRL_free(cases[i].crl);
    }
    X509_free(leaf);
}

static void
test_missing_extensions(void **state)
{
    struct synth *s = *state;
    struct sevsnp_report r;
    uint8_t rep[SEVSNP_REPORT_SIZE];
    struct synth_leaf_spec spec = signed_milan(s, &r, rep, SEVSNP_PRODUCT_MILAN);
    spec.omit_snp = true;
    expect_leaf(s, rep, &spec, s->ask[0], CLST_E_MALFORMED, "lacks TCB");
    spec = leaf_spec(s, SEVSNP_PRODUCT_MILAN, false, &r);
    spec.hwid = NULL;
    expect_leaf(s, rep, &spec, s->ask[0], CLST_E_MALFORMED, "hwID");
    /* Signed by the right ASK key but not the way AMD signs (PKCS#1 v1.5 with SHA-384 or
     * SHA-256): the leaf's signature algorithm must be RSASSA-PSS with SHA-384. */
    const EVP_MD *mds[2] = {EVP_sha384(), EVP_sha256()};
    for (size_t k = 0; k < 2; k++) {
        spec = leaf_spec(s, SEVSNP_PRODUCT_MILAN, false, &r);
        spec.pkcs1_md = mds[k];
        expect_leaf(s, rep, &spec, s->ask[0], CLST_E_VERIFY, "RSASSA-PSS");
    }
    /* A Turin-sized (8-byte) hwID on a Milan VCEK. */
    spec = leaf_spec(s, SEVSNP_PRODUCT_MILAN, false, &r);
    spec.hwid_size = 8;
    expect_leaf(s, rep, &spec, s->ask[0], CLST_E_MALFORMED, "hwID");
}

/* Several candidate VCEKs (a cache directory): the right one is found, and when none fits the
 * error of the one that got furthest is reported. */
static void
test_candidates(void **state)
{
    struct synth *s = *state;
    struct sevsnp_report r, other;
    uint8_t rep[SEVSNP_REPORT_SIZE];
    struct clst_err err = {0};
    synth_report_init(&r, SEVSNP_PRODUCT_MILAN, 3);
    other = r;
    other.chip_id[0] ^= 0xFF;
    assert_int_equal(synth_sign(&r, s->vcek_key, rep), 0);
    struct synth_leaf_spec spec = leaf_spec(s, SEVSNP_PRODUCT_MILAN, false, &other);
    X509 *other_chip = synth_leaf(s, &spec);
    spec = leaf_spec(s, SEVSNP_PRODUCT_MILAN, false, &r);
    spec.tcb.snp = 7;
    X509 *old_tcb = synth_leaf(s, &spec);
    spec = leaf_spec(s, SEVSNP_PRODUCT_MILAN, false, &r);
    X509 *right = synth_leaf(s, &spec);
    struct clst_buf e;
    clst_buf_init(&e, 1u << 16);
    assert_int_equal(synth_endorse(&e, other_chip, old_tcb, s->ask[0]), 0);
    expect_rc(synth_verify(s, rep, sizeof(rep), e.data, e.size, NULL, &err), &err, CLST_E_VERIFY,
              "REPORTED_TCB");
    assert_int_equal(synth_endorse(&e, right, NULL, NULL), 0);
    expect_rc(synth_verify(s, rep, sizeof(rep), e.data, e.size, NULL, &err), &err, CLST_OK, NULL);
    clst_buf_cleanup(&e);
    X509_free(other_chip);
    X509_free(old_tcb);
    X509_free(right);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_versions_and_products),
        cmocka_unit_test(test_turin_tcb_layout),
        cmocka_unit_test(test_vlek),
        cmocka_unit_test(test_reserved_bytes),
        cmocka_unit_test(test_reserved_bits),
        cmocka_unit_test(test_unknown_values),
        cmocka_unit_test(test_signature_values),
        cmocka_unit_test(test_policy_knobs),
        cmocka_unit_test(test_ark_from_evidence),
        cmocka_unit_test(test_wrong_product),
        cmocka_unit_test(test_validity),
        cmocka_unit_test(test_crl),
        cmocka_unit_test(test_missing_extensions),
        cmocka_unit_test(test_candidates),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
