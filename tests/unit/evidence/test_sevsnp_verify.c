/*
 * Unit tests for src/evidence/sevsnp_verify.c with the real, stored SEV-SNP evidence
 * (tests/vectors/sev-snp/, each folder's README gives origin and expected outcomes), through the
 * public pipeline clst_evidence_verify() and the AMD roots compiled into the build.
 *
 * Positive: the three real Milan reports (go-sev-guest, trustee, virtee) with their VCEKs and the
 * Milan ASK, given as DER endorsements, as a PEM bundle, and as an extended report with its
 * certificate table; their claims are the values the READMEs state.
 * Negative, from the READMEs: the debug report under the default policy, the expected-stepping
 * recipe, cross-chip VCEKs, the two edited-hwID VCEKs, byte 42 and byte 384 of the trustee report,
 * byte 42 of its VCEK, the ASVK instead of the ASK, bit 0x80 of byte 21 of the virtee report.
 * Beyond them: every truncation and some extensions of the report, every byte of the report,
 * the VCEK and the ASK flipped, the wrong product's root, an unknown root, the time before and
 * after the VCEK's validity, unbound report data and runtime data, oversized evidence and
 * endorsements (rejected before any chain or signature work: the chain cache is not consulted),
 * a report with no certificate, unknown options, a TCB below the policy's minimum, and the cache
 * (a second verification hits it and agrees with the first).
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_sevsnp_fixture.h"

/* The stored vectors of one report. */
struct real {
    uint8_t *report;
    size_t report_size;
    struct clst_buf endorse; /* VCEK DER then ASK DER */
    STACK_OF(X509) *roots;
};

static void
real_free(struct real *r)
{
    free(r->report);
    clst_buf_cleanup(&r->endorse);
    sk_X509_pop_free(r->roots, X509_free);
}

/* Loads report `rep`, VCEK `vcek` and the ASK (first certificate) of `chain`. */
static void
real_load(struct real *r, const char *rep, const char *vcek, const char *chain)
{
    size_t vsize = 0, csize = 0;
    memset(r, 0, sizeof(*r));
    r->report = snp_read(rep, &r->report_size);
    uint8_t *v = snp_read(vcek, &vsize);
    uint8_t *c = snp_read(chain, &csize);
    assert_non_null(r->report);
    assert_non_null(v);
    assert_non_null(c);
    clst_buf_init(&r->endorse, 1u << 16);
    assert_int_equal(clst_buf_append(&r->endorse, v, vsize), CLST_OK);
    assert_int_equal(snp_pem_cert_der(c, csize, 0, &r->endorse), 0);
    r->roots = snp_amd_roots();
    assert_non_null(r->roots);
    free(v);
    free(c);
}

/* The trustee Milan vectors: its report, its VCEK and the ASK of milan_ask_ark_asvk.pem. */
static void
trustee_load(struct real *r)
{
    real_load(r, "trustee/test-report.bin", "trustee/test-vcek.der",
              "trustee/milan_ask_ark_asvk.pem");
}

static struct clst_evidence_input
real_input(const struct real *r, const uint8_t *ev, size_t size)
{
    struct clst_evidence_input in;
    memset(&in, 0, sizeof(in));
    in.evidence = ev;
    in.evidence_size = size;
    in.endorsements = r->endorse.data;
    in.endorsements_size = r->endorse.size;
    in.roots = r->roots;
    in.at = SNP_T_2024;
    return in;
}

static enum clst_status
verify_in(const struct clst_evidence_input *in, json_t **claims, struct clst_err *err)
{
    json_t *c = NULL;
    enum clst_status rc = clst_evidence_verify(CLST_EVIDENCE_SEVSNP, in, &c, err);
    if ((rc == CLST_OK) != (c != NULL)) {
        json_decref(c);
        return CLST_E_INTERNAL;
    }
    if (claims != NULL) {
        *claims = c;
    } else {
        json_decref(c);
    }
    return rc;
}

static void
expect_in(const struct clst_evidence_input *in, enum clst_status want, const char *needle)
{
    struct clst_err err = {0};
    enum clst_status rc = verify_in(in, NULL, &err);
    if (rc != want) {
        fail_msg("want %s, got %s: %s", clst_status_str(want), clst_status_str(rc), err.msg);
    }
    if (want != CLST_OK) {
        assert_int_equal(err.status, want);
        if (needle != NULL && strstr(err.msg, needle) == NULL) {
            fail_msg("message \"%s\" lacks \"%s\"", err.msg, needle);
        }
    }
}

/* Verifies `in`, which must pass; returns its claims (the caller frees them). */
static json_t *
verify_ok(const struct clst_evidence_input *in)
{
    json_t *claims = NULL;
    struct clst_err err = {0};
    if (verify_in(in, &claims, &err) != CLST_OK) {
        fail_msg("%s", err.msg);
    }
    return claims;
}

/* `in` with the options `o` (consumed; must not be NULL) must give want (and needle). */
static void
expect_options(struct clst_evidence_input in, json_t *o, enum clst_status want, const char *needle)
{
    assert_non_null(o);
    in.options = o;
    expect_in(&in, want, needle);
    json_decref(o);
}

static void
expect_str(const json_t *claims, const char *name, const char *want)
{
    const char *got = json_string_value(json_object_get(claims, name));
    if (got == NULL || strcmp(got, want) != 0) {
        fail_msg("claim %s: want %s, got %s", name, want, got != NULL ? got : "(none)");
    }
}

static void
expect_int(const json_t *claims, const char *name, json_int_t want)
{
    const json_t *v = json_object_get(claims, name);
    assert_true(json_is_integer(v));
    assert_int_equal(json_integer_value(v), want);
}

static void
expect_bool(const json_t *claims, const char *name, bool want)
{
    const json_t *v = json_object_get(claims, name);
    assert_true(json_is_boolean(v));
    assert_int_equal(json_is_true(v), want);
}

static const char zeros96[] = "000000000000000000000000000000000000000000000000"
                              "000000000000000000000000000000000000000000000000";

/* ---- positive ------------------------------------------------------------------------------- */

static void
test_trustee_valid_claims(void **state)
{
    (void)state;
    struct real r;
    trustee_load(&r);
    struct clst_evidence_input in = real_input(&r, r.report, r.report_size);
    json_t *claims = verify_ok(&in);
    expect_str(claims, CLST_CLAIM_ATTESTATION_TYPE, "sevsnpvm");
    expect_int(claims, SEVSNP_CLAIM_GUEST_SVN, 4);
    expect_int(claims, SEVSNP_CLAIM_BOOTLOADER_SVN, 3);
    expect_int(claims, SEVSNP_CLAIM_TEE_SVN, 0);
    expect_int(claims, SEVSNP_CLAIM_SNPFW_SVN, 8);
    expect_int(claims, SEVSNP_CLAIM_MICROCODE_SVN, 115); /* REPORTED_TCB, not CURRENT (206) */
    expect_int(claims, SEVSNP_CLAIM_VMPL, 0);
    expect_int(claims, SEVSNP_CLAIM_X_REPORT_VERSION, 2);
    expect_int(claims, SEVSNP_CLAIM_X_POLICY, 0x3001f);
    expect_bool(claims, SEVSNP_CLAIM_IS_DEBUGGABLE, false);
    expect_bool(claims, SEVSNP_CLAIM_SMT_ALLOWED, true);
    expect_bool(claims, SEVSNP_CLAIM_MIGRATION_ALLOWED, false);
    expect_str(claims, SEVSNP_CLAIM_FAMILY_ID, "01000000000000000000000000000000");
    expect_str(claims, SEVSNP_CLAIM_IMAGE_ID, "02000000000000000000000000000000");
    expect_str(claims, SEVSNP_CLAIM_ID_KEY_DIGEST,
               "0356215882a825279a85b300b0b742931d113bf7e32dde2e50ffde7ec743ca491ecdd7f336dc28a6"
               "e0b2bb57af7a44a3");
    expect_str(claims, SEVSNP_CLAIM_AUTHOR_KEY_DIGEST, zeros96);
    expect_str(claims, SEVSNP_CLAIM_LAUNCH_MEASUREMENT,
               "a1f3930413247bb38cfc171579ea3c12d5fe4901f0c792f63fd75d98f1ef827c23500644e0e692e6"
               "be917f9050d3d38c");
    expect_str(claims, SEVSNP_CLAIM_REPORT_DATA,
               "ec6c52d7533cc2c4f45be7849cf112ab82b2009fe7bd43e71ed08c14400ad7e2"
               "0000000000000000000000000000000000000000000000000000000000000000");
    expect_str(claims, SEVSNP_CLAIM_X_CHIP_ID,
               "c38427a30d4c7af9d96f7a15b97269825a64cb76a2352ffd5d18115d89ad473f8e8c0bcd9a5d9286"
               "612bad4aadfb4426205a3b9e4fea82301135a170e477524e");
    expect_str(claims, SEVSNP_CLAIM_X_SIGNING_KEY, "vcek");
    /* A version-2 report names no product (no CPUID); nor is there an FMC on Milan. */
    assert_null(json_object_get(claims, SEVSNP_CLAIM_X_PRODUCT));
    assert_null(json_object_get(claims, SEVSNP_CLAIM_X_FMC_SVN));
    json_decref(claims);

    /* The same with the exact report data, and bound to no runtime data (binding mismatch). */
    uint8_t rd[64] = {0};
    assert_int_equal(clst_hex_decode_fixed("ec6c52d7533cc2c4f45be7849cf112ab82b2009fe7bd43e71ed0"
                                           "8c14400ad7e2",
                                           64, rd, 32),
                     CLST_OK);
    in.report_data = rd;
    in.report_data_size = sizeof(rd);
    expect_in(&in, CLST_OK, NULL);
    rd[63] ^= 1;
    expect_in(&in, CLST_E_VERIFY, "report data");
    in.report_data = NULL;
    in.report_data_size = 0;
    in.runtime_data = (const uint8_t *)"some runtime data";
    in.runtime_data_size = 17;
    expect_in(&in, CLST_E_VERIFY, "runtime data");
    real_free(&r);
}

static void
test_virtee_valid_pem_bundle(void **state)
{
    (void)state;
    size_t rsize = 0, vsize = 0, csize = 0;
    uint8_t *rep = snp_read("virtee-sev/report_milan.bin", &rsize);
    uint8_t *vcek = snp_read("virtee-sev/vcek_milan.der", &vsize);
    uint8_t *chain = snp_read("virtee-sev/cert_chain_milan", &csize);
    assert_non_null(rep);
    assert_non_null(vcek);
    assert_non_null(chain);
    /* The hex form upstream stores is the same bytes. */
    size_t hsize = 0;
    uint8_t *hex = snp_read("virtee-sev/report_milan.hex", &hsize);
    assert_non_null(hex);
    while (hsize > 0 && (hex[hsize - 1] == '\n' || hex[hsize - 1] == '\r')) {
        hsize--;
    }
    struct clst_buf decoded;
    clst_buf_init(&decoded, 4096);
    assert_int_equal(clst_hex_decode((const char *)hex, hsize, &decoded), CLST_OK);
    assert_int_equal(decoded.size, rsize);
    assert_memory_equal(decoded.data, rep, rsize);
    clst_buf_cleanup(&decoded);
    free(hex);

    /* Endorsements as PEM: the VCEK (converted) followed by the stored ASK + ARK bundle; the ARK
     * in it is AMD's own and is simply not needed. */
    X509 *x = NULL;
    BIO *bio = BIO_new(BIO_s_mem());
    BUF_MEM *mem = NULL;
    assert_int_equal(clst_x509_from_der(vcek, vsize, &x, NULL), CLST_OK);
    assert_int_equal(PEM_write_bio_X509(bio, x), 1);
    assert_int_equal(BIO_write(bio, chain, (int)csize), (int)csize);
    BIO_get_mem_ptr(bio, &mem);
    STACK_OF(X509) *roots = snp_amd_roots();
    struct clst_evidence_input in;
    memset(&in, 0, sizeof(in));
    in.evidence = rep;
    in.evidence_size = rsize;
    in.endorsements = (const uint8_t *)mem->data;
    in.endorsements_size = mem->length;
    in.roots = roots;
    in.at = SNP_T_2024;
    json_t *claims = verify_ok(&in);
    expect_int(claims, SEVSNP_CLAIM_X_POLICY, 0x30000);
    expect_int(claims, SEVSNP_CLAIM_SNPFW_SVN, 8);
    expect_str(claims, SEVSNP_CLAIM_LAUNCH_MEASUREMENT,
               "7a1e5c266c0108dbc9bb94fa926951320940915d0aafb42464bd88b579ea158d3e1a0dc39b2c60bd"
               "95b9c480cd81841f");
    expect_str(claims, SEVSNP_CLAIM_REPORT_DATA,
               "d447b55d197491bfe15cf298f9de9986b7a7c4be2468b4f6e2d53b71d7c645810b0f2cdfca004043"
               "3be063fc1a8293f0f3f8dae7b79fecb3d1cd82bd6a93ebfd");
    json_decref(claims);

    /* Upstream negative (tests/certs.rs milan_report_invalid): bit 0x80 of byte 21 (inside
     * FAMILY_ID, which the signature covers). */
    rep[21] ^= 0x80;
    expect_in(&in, CLST_E_VERIFY, "signature");
    rep[21] ^= 0x80;
    /* A reserved POLICY bit (bit 47) is refused by the parser before the signature is checked. */
    rep[0x0D] ^= 0x80;
    expect_in(&in, CLST_E_MALFORMED, "POLICY");
    rep[0x0D] ^= 0x80;
    /* A different bit of the signed policy (SMT, bit 16) reaches the signature check. */
    rep[0x0A] ^= 0x01;
    expect_in(&in, CLST_E_VERIFY, "signature");
    rep[0x0A] ^= 0x01;
    expect_in(&in, CLST_OK, NULL);

    X509_free(x);
    BIO_free(bio);
    sk_X509_pop_free(roots, X509_free);
    free(rep);
    free(vcek);
    free(chain);
}

static void
test_go_sev_guest_debug(void **state)
{
    (void)state;
    struct real r;
    real_load(&r, "go-sev-guest/attestation.bin", "go-sev-guest/vcek.der",
              "go-sev-guest/ask_ark_milan.pem");
    struct clst_evidence_input in = real_input(&r, r.report, r.report_size);
    /* POLICY 0xb0000 has DEBUG: the default policy rejects it. */
    expect_in(&in, CLST_E_VERIFY, "debuggable");
    in.allow_debug = true;
    json_t *claims = verify_ok(&in);
    expect_bool(claims, SEVSNP_CLAIM_IS_DEBUGGABLE, true);
    expect_int(claims, SEVSNP_CLAIM_SNPFW_SVN, 5);
    expect_int(claims, SEVSNP_CLAIM_MICROCODE_SVN, 68);
    expect_int(claims, SEVSNP_CLAIM_BOOTLOADER_SVN, 2);
    expect_int(claims, SEVSNP_CLAIM_GUEST_SVN, 0);
    expect_str(claims, SEVSNP_CLAIM_REPORT_DATA,
               "0102030405000000000000000000000000000000000000000000000000000000"
               "0000000000000000000000000000000000000000000000000000000000000000");
    expect_str(claims, SEVSNP_CLAIM_LAUNCH_MEASUREMENT,
               "b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b6bdf8a9ece31a5a6"
               "08eb0cf2e4872b01");
    expect_str(claims, SEVSNP_CLAIM_X_CHIP_ID,
               "3ac3fe21e13fb0990eb28a802e3fb6a29483a6b0753590c951bdd3b8e53786184ca39e359669a2b7"
               "6a1936776b564ea464cdce40c05f63c9b610c5068b006b5d");
    json_decref(claims);

    /* Upstream negative (verify_test.go): the expected product Milan, stepping 12, fails; a
     * version-2 report carries no stepping ("got 0"). The product alone is fine. */
    expect_options(in, json_pack("{s:s, s:i}", "product", "Milan", "stepping", 12), CLST_E_VERIFY,
                   "stepping 12, got 0");
    expect_options(in, json_pack("{s:s}", "product", "Milan"), CLST_OK, NULL);
    expect_options(in, json_pack("{s:s}", "product", "Genoa"), CLST_E_VERIFY, "expects Genoa");
    real_free(&r);
}

/* The extended report: report || certificate table (VCEK, ASK, ARK), no endorsements. */
static void
test_extended_report(void **state)
{
    (void)state;
    struct real r;
    trustee_load(&r);
    size_t csize = 0;
    uint8_t *chain = snp_read("trustee/milan_ask_ark_asvk.pem", &csize);
    assert_non_null(chain);
    struct clst_buf vcek, ask, ark, ev;
    clst_buf_init(&vcek, 1u << 16);
    clst_buf_init(&ask, 1u << 16);
    clst_buf_init(&ark, 1u << 16);
    clst_buf_init(&ev, 1u << 17);
    size_t vsize = 0;
    uint8_t *v = snp_read("trustee/test-vcek.der", &vsize);
    assert_int_equal(clst_buf_append(&vcek, v, vsize), CLST_OK);
    assert_int_equal(snp_pem_cert_der(chain, csize, 0, &ask), 0);
    assert_int_equal(snp_pem_cert_der(chain, csize, 1, &ark), 0);
    enum sevsnp_guid_role roles[3] = {SEVSNP_GUID_VCEK, SEVSNP_GUID_ASK, SEVSNP_GUID_ARK};
    const uint8_t *certs[3] = {vcek.data, ask.data, ark.data};
    size_t sizes[3] = {vcek.size, ask.size, ark.size};
    assert_int_equal(clst_buf_append(&ev, r.report, r.report_size), CLST_OK);
    assert_int_equal(evidence_sevsnp_table_encode(roles, certs, sizes, 3, &ev), CLST_OK);
    /* Page padding after the certificates is allowed when it is zero. */
    uint8_t pad[100] = {0};
    assert_int_equal(clst_buf_append(&ev, pad, sizeof(pad)), CLST_OK);

    struct clst_evidence_input in = real_input(&r, ev.data, ev.size);
    in.endorsements = NULL;
    in.endorsements_size = 0;
    expect_in(&in, CLST_OK, NULL);
    /* Non-zero padding is not ignored. */
    ev.data[ev.size - 1] = 1;
    expect_in(&in, CLST_E_MALFORMED, "padding");
    ev.data[ev.size - 1] = 0;
    /* The raw report alone has no certificate to verify with. */
    in.evidence_size = r.report_size;
    expect_in(&in, CLST_E_VERIFY, "no VCEK");

    free(v);
    free(chain);
    clst_buf_cleanup(&vcek);
    clst_buf_cleanup(&ask);
    clst_buf_cleanup(&ark);
    clst_buf_cleanup(&ev);
    real_free(&r);
}

/* ---- the READMEs' negative cases ------------------------------------------------------------ */

static void
test_readme_negatives_trustee(void **state)
{
    (void)state;
    struct real r;
    trustee_load(&r);
    struct clst_evidence_input in = real_input(&r, r.report, r.report_size);
    expect_in(&in, CLST_OK, NULL);

    /* check_report_signature_failure: byte 42 incremented. */
    r.report[42]++;
    expect_in(&in, CLST_E_VERIFY, "signature");
    r.report[42]--;
    /* check_report_tcb_failure: byte 384 (REPORTED_TCB.bootloader) incremented. */
    r.report[384]++;
    expect_in(&in, CLST_E_VERIFY, "REPORTED_TCB");
    r.report[384]--;
    /* test-vcek.der with byte 42 incremented: the chain fails. */
    r.endorse.data[42]++;
    expect_in(&in, CLST_E_VERIFY, NULL);
    r.endorse.data[42]--;
    expect_in(&in, CLST_OK, NULL);

    /* check_milan_chain_signature_failure: the VCEK with the ASVK (and ARK) instead of the ASK. */
    size_t csize = 0, vsize = 0;
    uint8_t *chain = snp_read("trustee/milan_ask_ark_asvk.pem", &csize);
    uint8_t *vcek = snp_read("trustee/test-vcek.der", &vsize);
    struct clst_buf e;
    clst_buf_init(&e, 1u << 16);
    assert_int_equal(clst_buf_append(&e, vcek, vsize), CLST_OK);
    assert_int_equal(snp_pem_cert_der(chain, csize, 1, &e), 0); /* ARK */
    assert_int_equal(snp_pem_cert_der(chain, csize, 2, &e), 0); /* ASVK */
    in.endorsements = e.data;
    in.endorsements_size = e.size;
    expect_in(&in, CLST_E_VERIFY, "does not chain");
    clst_buf_cleanup(&e);

    /* The two VCEKs with an edited hwID (legacy raw, and "new" DER-wrapped 04 40 ..): both parse,
     * and with a report whose CHIP_ID is their hwID 00 01 .. 3f the chain is what fails (the
     * report's signature would fail too, but the chain is checked first). */
    const char *bad[2] = {"trustee/test-vcek-invalid-legacy.der",
                          "trustee/test-vcek-invalid-new.der"};
    for (size_t k = 0; k < 2; k++) {
        size_t bsize = 0;
        uint8_t *b = snp_read(bad[k], &bsize);
        assert_non_null(b);
        X509 *x = NULL;
        struct sevsnp_cert_info info;
        assert_int_equal(clst_x509_from_der(b, bsize, &x, NULL), CLST_OK);
        assert_int_equal(evidence_sevsnp_cert_info(x, &info, NULL), CLST_OK);
        assert_int_equal(info.hwid_size, 64);
        for (size_t i = 0; i < 64; i++) {
            assert_int_equal(info.hwid[i], i);
        }
        uint8_t rep[SEVSNP_REPORT_SIZE];
        memcpy(rep, r.report, sizeof(rep));
        for (size_t i = 0; i < 64; i++) {
            rep[0x1A0 + i] = (uint8_t)i;
        }
        /* Give the report the TCB the edited VCEK claims, so that only the chain is left. */
        struct sevsnp_tcb t = info.tcb;
        clst_put_le64(rep + 0x180, evidence_sevsnp_tcb_encode(SEVSNP_PRODUCT_MILAN, &t));
        clst_buf_init(&e, 1u << 16);
        assert_int_equal(clst_buf_append(&e, b, bsize), CLST_OK);
        assert_int_equal(snp_pem_cert_der(chain, csize, 0, &e), 0);
        struct clst_evidence_input in2 = real_input(&r, rep, sizeof(rep));
        in2.endorsements = e.data;
        in2.endorsements_size = e.size;
        expect_in(&in2, CLST_E_VERIFY, "does not chain");
        /* And with the genuine report, the hwID does not match. */
        in2.evidence = r.report;
        expect_in(&in2, CLST_E_VERIFY, "another chip");
        clst_buf_cleanup(&e);
        X509_free(x);
        free(b);
    }
    free(chain);
    free(vcek);
    real_free(&r);
}

/* Cross-check (go-sev-guest README): its report with another chip's VCEK fails; and each VCEK
 * with a report it was not made for. */
static void
test_cross_chip(void **state)
{
    (void)state;
    const char *reports[3] = {"go-sev-guest/attestation.bin", "trustee/test-report.bin",
                              "virtee-sev/report_milan.bin"};
    const char *vceks[3] = {"go-sev-guest/vcek.der", "trustee/test-vcek.der",
                            "virtee-sev/vcek_milan.der"};
    for (size_t i = 0; i < 3; i++) {
        for (size_t j = 0; j < 3; j++) {
            struct real r;
            real_load(&r, reports[i], vceks[j], "go-sev-guest/ask_ark_milan.pem");
            struct clst_evidence_input in = real_input(&r, r.report, r.report_size);
            in.allow_debug = true;
            expect_in(&in, i == j ? CLST_OK : CLST_E_VERIFY, i == j ? NULL : "another chip");
            real_free(&r);
        }
    }
}

/* ---- roots and products --------------------------------------------------------------------- */

static void
test_roots(void **state)
{
    (void)state;
    struct real r;
    trustee_load(&r);
    struct clst_evidence_input in = real_input(&r, r.report, r.report_size);

    /* Only ARK-Genoa trusted: the Milan report is refused (the wrong product's root). */
    STACK_OF(X509) *genoa = sk_X509_new_null();
    assert_non_null(genoa);
    X509 *g = sk_X509_value(r.roots, 1);
    assert_int_equal(X509_up_ref(g), 1);
    assert_true(sk_X509_push(genoa, g) > 0);
    in.roots = genoa;
    expect_in(&in, CLST_E_VERIFY, "ARK-Milan");
    sk_X509_pop_free(genoa, X509_free);

    /* A root that is not one of the built-in ARKs (here: the ASK) is refused outright. */
    size_t csize = 0;
    uint8_t *chain = snp_read("trustee/milan_ask_ark_asvk.pem", &csize);
    STACK_OF(X509) *other = NULL;
    assert_int_equal(clst_x509_stack_from_pem(chain, csize, &other, NULL), CLST_OK);
    in.roots = other;
    expect_in(&in, CLST_E_INVAL, "compiled into this build");
    sk_X509_pop_free(other, X509_free);

    /* The Milan VCEK with the Genoa ASK: no issuer for it, so no chain. */
    in.roots = r.roots;
    size_t vsize = 0;
    uint8_t *vcek = snp_read("trustee/test-vcek.der", &vsize);
    uint8_t *gchain = snp_read("go-sev-guest/ask_ark_genoa.pem", &csize);
    struct clst_buf e;
    clst_buf_init(&e, 1u << 16);
    assert_int_equal(clst_buf_append(&e, vcek, vsize), CLST_OK);
    assert_int_equal(snp_pem_cert_der(gchain, csize, 0, &e), 0);
    in.endorsements = e.data;
    in.endorsements_size = e.size;
    expect_in(&in, CLST_E_VERIFY, "does not chain");
    clst_buf_cleanup(&e);

    /* The ARK in the endorsements changes nothing (it is never used): with only the VCEK and the
     * ARK, there is still no chain. */
    clst_buf_init(&e, 1u << 16);
    assert_int_equal(clst_buf_append(&e, vcek, vsize), CLST_OK);
    assert_int_equal(snp_pem_cert_der(chain, csize, 1, &e), 0);
    in.endorsements = e.data;
    in.endorsements_size = e.size;
    expect_in(&in, CLST_E_VERIFY, "does not chain");
    clst_buf_cleanup(&e);

    /* No roots at all: the framework refuses. */
    in.roots = NULL;
    expect_in(&in, CLST_E_INVAL, NULL);
    free(vcek);
    free(gchain);
    free(chain);
    real_free(&r);
}

/* ---- time ----------------------------------------------------------------------------------- */

static void
test_time(void **state)
{
    (void)state;
    struct real r;
    trustee_load(&r);
    struct clst_evidence_input in = real_input(&r, r.report, r.report_size);
    /* VCEK 2023-01-24T17:58:26Z .. 2030-01-24T17:58:26Z */
    int64_t nb = 0, na = 0;
    assert_int_equal(clst_time_parse("2023-01-24T17:58:26Z", &nb, NULL), CLST_OK);
    assert_int_equal(clst_time_parse("2030-01-24T17:58:26Z", &na, NULL), CLST_OK);
    in.at = nb;
    expect_in(&in, CLST_OK, NULL);
    in.at = na;
    expect_in(&in, CLST_OK, NULL);
    in.at = nb - 1;
    expect_in(&in, CLST_E_VERIFY, "not yet valid");
    in.at = na + 1;
    expect_in(&in, CLST_E_VERIFY, "expired");
    /* ARK/ASK end in 2045: long after, everything is expired. */
    assert_int_equal(clst_time_parse("2046-01-01T00:00:00Z", &in.at, NULL), CLST_OK);
    expect_in(&in, CLST_E_VERIFY, "expired");
    in.at = 0;
    expect_in(&in, CLST_E_VERIFY, "not yet valid");
    real_free(&r);
}

/* ---- sizes ---------------------------------------------------------------------------------- */

static void
test_truncations(void **state)
{
    (void)state;
    struct real r;
    trustee_load(&r);
    for (size_t n = 0; n < r.report_size; n++) {
        struct clst_evidence_input in = real_input(&r, n > 0 ? r.report : NULL, n);
        expect_in(&in, CLST_E_MALFORMED, NULL);
    }
    /* 1..48 bytes after the report: a certificate table that is cut short or empty-less. */
    uint8_t big[SEVSNP_REPORT_SIZE + 48];
    memcpy(big, r.report, SEVSNP_REPORT_SIZE);
    memset(big + SEVSNP_REPORT_SIZE, 0xA5, 48);
    for (size_t n = SEVSNP_REPORT_SIZE + 1; n <= sizeof(big); n++) {
        struct clst_evidence_input in = real_input(&r, big, n);
        expect_in(&in, CLST_E_MALFORMED, "certificate table");
    }
    /* An all-zero table (just the terminator) is a valid empty table. */
    memset(big + SEVSNP_REPORT_SIZE, 0, 48);
    struct clst_evidence_input in = real_input(&r, big, SEVSNP_REPORT_SIZE + 24);
    expect_in(&in, CLST_OK, NULL);
    real_free(&r);
}

static void
test_oversized(void **state)
{
    (void)state;
    struct real r;
    uint64_t hits0 = 0, misses0 = 0, hits1 = 0, misses1 = 0;
    trustee_load(&r);
    size_t big_size = SEVSNP_EVIDENCE_MAX_SIZE + 1;
    uint8_t *big = calloc(1, SEVSNP_ENDORSEMENTS_MAX_SIZE + 1);
    assert_non_null(big);
    memcpy(big, r.report, r.report_size);
    evidence_sevsnp_cache_stats(&hits0, &misses0);
    struct clst_evidence_input in = real_input(&r, big, big_size);
    expect_in(&in, CLST_E_LIMIT, "limit");
    in = real_input(&r, r.report, r.report_size);
    in.endorsements = big;
    in.endorsements_size = SEVSNP_ENDORSEMENTS_MAX_SIZE + 1;
    expect_in(&in, CLST_E_LIMIT, "limit");
    /* Neither reached the chain cache (nor, therefore, any chain or signature check). */
    evidence_sevsnp_cache_stats(&hits1, &misses1);
    assert_int_equal(hits0, hits1);
    assert_int_equal(misses0, misses1);
    /* The largest well-formed table is accepted by size (and then judged on content). */
    in = real_input(&r, big, SEVSNP_EVIDENCE_MAX_SIZE);
    expect_in(&in, CLST_OK, NULL);
    free(big);
    real_free(&r);
}

/* ---- every byte ----------------------------------------------------------------------------- */

/* Flips one bit of every byte (the position cycling through all eight) and expects a rejection. */
static void
flip_all(uint8_t *buf, size_t size, const struct clst_evidence_input *in)
{
    for (size_t i = 0; i < size; i++) {
        unsigned bit = (unsigned)(i % 8);
        buf[i] ^= (uint8_t)(1u << bit);
        struct clst_err err = {0};
        enum clst_status rc = verify_in(in, NULL, &err);
        buf[i] ^= (uint8_t)(1u << bit);
        if (rc == CLST_OK) {
            fail_msg("flipping bit %u of byte %zu was accepted", bit, i);
        }
        /* LIMIT: a flipped DER length that now claims more than a certificate may be. */
        if (rc != CLST_E_VERIFY && rc != CLST_E_MALFORMED && rc != CLST_E_LIMIT) {
            fail_msg("flipping bit %u of byte %zu: %s: %s", bit, i, clst_status_str(rc), err.msg);
        }
    }
}

static void
test_flip_report(void **state)
{
    (void)state;
    struct real r;
    trustee_load(&r);
    struct clst_evidence_input in = real_input(&r, r.report, r.report_size);
    expect_in(&in, CLST_OK, NULL);
    flip_all(r.report, r.report_size, &in);
    expect_in(&in, CLST_OK, NULL);
    real_free(&r);
}

static void
test_flip_certificates(void **state)
{
    (void)state;
    struct real r;
    trustee_load(&r);
    struct clst_evidence_input in = real_input(&r, r.report, r.report_size);
    expect_in(&in, CLST_OK, NULL);
    /* The VCEK is the first certificate of the endorsements, the ASK the second: every byte of
     * both (signed by the ASK and the ARK, or the signatures themselves). */
    flip_all(r.endorse.data, r.endorse.size, &in);
    expect_in(&in, CLST_OK, NULL);
    real_free(&r);
}

/* ---- options and the cache ------------------------------------------------------------------ */

static void
test_options(void **state)
{
    (void)state;
    struct real r;
    trustee_load(&r);
    struct clst_evidence_input in = real_input(&r, r.report, r.report_size);
    expect_options(in,
                   json_pack("{s:{s:i,s:i,s:i,s:i}}", "min_tcb", "bootloader", 3, "tee", 0, "snp",
                             8, "microcode", 115),
                   CLST_OK, NULL);
    /* A TCB status the policy does not allow: SNP firmware 8 < 9. */
    expect_options(in, json_pack("{s:{s:i}}", "min_tcb", "snp", 9), CLST_E_VERIFY,
                   "below the minimum");
    expect_options(in, json_pack("{s:{s:i}}", "min_tcb", "microcode", 116), CLST_E_VERIFY,
                   "below the minimum");
    expect_options(in, json_pack("{s:b}", "allow_smt", 0), CLST_E_VERIFY, "SMT");
    const char *bad[] = {
        "{\"allow_migration\":true}", "{\"max_vmpl\":4}",
        "{\"max_vmpl\":\"0\"}",       "{\"min_tcb\":{\"snp\":256}}",
        "{\"min_tcb\":{\"sn\":1}}",   "{\"min_tcb\":3}",
        "{\"product\":\"Rome\"}",     "{\"stepping\":16}",
        "{\"allow_smt\":1}",          "[]",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        expect_options(in, json_loads(bad[i], JSON_DECODE_ANY, NULL), CLST_E_INVAL, NULL);
    }
    real_free(&r);
}

static void
test_cache(void **state)
{
    (void)state;
    struct real r;
    uint64_t h0, m0, h1, m1, h2, m2;
    trustee_load(&r);
    struct clst_evidence_input in = real_input(&r, r.report, r.report_size);
    evidence_sevsnp_cache_clear();
    evidence_sevsnp_cache_stats(&h0, &m0);
    assert_int_equal(h0, 0);
    expect_in(&in, CLST_OK, NULL); /* a miss, then the chain is cached */
    evidence_sevsnp_cache_stats(&h1, &m1);
    assert_int_equal(h1, 0);
    assert_true(m1 >= 1);
    expect_in(&in, CLST_OK, NULL);
    evidence_sevsnp_cache_stats(&h2, &m2);
    assert_int_equal(h2, 1);
    /* A cached chain is not used outside its validity window: the full check says why. */
    in.at = INT64_C(1900000000); /* 2030-03-17, after the VCEK */
    expect_in(&in, CLST_E_VERIFY, "expired");
    /* Nor without its intermediate among this call's certificates. */
    in.at = SNP_T_2024;
    size_t vsize = 0;
    uint8_t *vcek = snp_read("trustee/test-vcek.der", &vsize);
    in.endorsements = vcek;
    in.endorsements_size = vsize;
    expect_in(&in, CLST_E_VERIFY, "does not chain");
    free(vcek);
    real_free(&r);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trustee_valid_claims),
        cmocka_unit_test(test_virtee_valid_pem_bundle),
        cmocka_unit_test(test_go_sev_guest_debug),
        cmocka_unit_test(test_extended_report),
        cmocka_unit_test(test_readme_negatives_trustee),
        cmocka_unit_test(test_cross_chip),
        cmocka_unit_test(test_roots),
        cmocka_unit_test(test_time),
        cmocka_unit_test(test_truncations),
        cmocka_unit_test(test_oversized),
        cmocka_unit_test(test_flip_report),
        cmocka_unit_test(test_flip_certificates),
        cmocka_unit_test(test_options),
        cmocka_unit_test(test_cache),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
