/*
 * Unit tests for src/evidence/evidence.c: kind names and the registry, the framework's input
 * checks, the order of the pipeline (the size limit before parsing; claims only after every
 * check), the debug and report-data checks every kind gets, and clst_evidence_report_data_bind.
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "sim_fixture.h"

static int
setup(void **state)
{
    struct fx *f = fx_new();
    if (f == NULL) {
        return -1;
    }
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    fx_free(*state);
    return 0;
}

static void
test_kind_names(void **state)
{
    (void)state;
    static const struct {
        enum clst_evidence_kind kind;
        const char *name;
        bool supported;
    } kinds[] = {
        {CLST_EVIDENCE_SIM, "sim", true},      {CLST_EVIDENCE_SEVSNP, "sevsnp", true},
        {CLST_EVIDENCE_TDX, "tdx", true},     {CLST_EVIDENCE_SGX, "sgx", true},
        {CLST_EVIDENCE_TPM, "tpm", true},     {CLST_EVIDENCE_AZURE_VTPM, "azure-vtpm", true},
        {CLST_EVIDENCE_NITRO, "nitro", true},
    };
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        enum clst_evidence_kind k = 0;
        assert_string_equal(clst_evidence_kind_name(kinds[i].kind), kinds[i].name);
        assert_int_equal(clst_evidence_kind_parse(kinds[i].name, &k, NULL), CLST_OK);
        assert_int_equal(k, kinds[i].kind);
        assert_int_equal(clst_evidence_kind_supported(kinds[i].kind), kinds[i].supported);
        assert_int_equal(clst_evidence_max_size(kinds[i].kind) > 0, kinds[i].supported);
    }
    assert_null(clst_evidence_kind_name(0));
    assert_null(clst_evidence_kind_name(99));
    assert_false(clst_evidence_kind_supported(0));
    assert_int_equal(clst_evidence_max_size(99), 0);

    struct clst_err err = {0};
    enum clst_evidence_kind k = CLST_EVIDENCE_TDX;
    static const char *const bad[] = {"SIM", "sim ", "", "snp", "sevsnpvm", "azure_vtpm"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(clst_evidence_kind_parse(bad[i], &k, &err), CLST_E_NOTFOUND);
        assert_non_null(strstr(err.msg, "known kinds"));
    }
    assert_int_equal(k, CLST_EVIDENCE_TDX); /* untouched on failure */
    assert_int_equal(clst_evidence_kind_parse(NULL, &k, &err), CLST_E_INVAL);
    assert_int_equal(clst_evidence_kind_parse("sim", NULL, &err), CLST_E_INVAL);
}

static void
test_unsupported_kind(void **state)
{
    struct fx *f = *state;
    struct clst_evidence_input in = fx_input(f, f->ev.data, f->ev.size);
    struct clst_err err = {0};
    json_t *claims = NULL;
    assert_int_equal(clst_evidence_verify((enum clst_evidence_kind)99, &in, &claims, &err),
                     CLST_E_NOTFOUND);
    assert_non_null(strstr(err.msg, "not supported"));
    assert_int_equal(clst_evidence_verify(0, &in, &claims, &err), CLST_E_NOTFOUND);
    assert_null(claims);
}

static void
test_input_checks(void **state)
{
    struct fx *f = *state;
    struct clst_evidence_input in = fx_input(f, f->ev.data, f->ev.size);
    struct clst_err err = {0};
    json_t *claims = NULL;

    assert_int_equal(clst_evidence_verify(CLST_EVIDENCE_SIM, NULL, &claims, &err), CLST_E_INVAL);
    assert_int_equal(clst_evidence_verify(CLST_EVIDENCE_SIM, &in, NULL, &err), CLST_E_INVAL);

    in.evidence = NULL;
    assert_int_equal(clst_evidence_verify(CLST_EVIDENCE_SIM, &in, &claims, &err), CLST_E_INVAL);
    in = fx_input(f, f->ev.data, f->ev.size);
    in.runtime_data_size = 3; /* with a NULL pointer */
    assert_int_equal(clst_evidence_verify(CLST_EVIDENCE_SIM, &in, &claims, &err), CLST_E_INVAL);
    in = fx_input(f, f->ev.data, f->ev.size);
    in.endorsements_size = 3;
    assert_int_equal(clst_evidence_verify(CLST_EVIDENCE_SIM, &in, &claims, &err), CLST_E_INVAL);

    /* No trust roots: refused, never "trust anything". */
    in = fx_input(f, f->ev.data, f->ev.size);
    in.roots = NULL;
    assert_int_equal(clst_evidence_verify(CLST_EVIDENCE_SIM, &in, &claims, &err), CLST_E_INVAL);
    assert_non_null(strstr(err.msg, "trust roots"));
    STACK_OF(X509) *empty = sk_X509_new_null();
    assert_non_null(empty);
    in.roots = empty;
    assert_int_equal(clst_evidence_verify(CLST_EVIDENCE_SIM, &in, &claims, &err), CLST_E_INVAL);
    sk_X509_free(empty);

    /* Empty evidence is malformed, not a crash. */
    in = fx_input(f, NULL, 0);
    assert_int_equal(clst_evidence_verify(CLST_EVIDENCE_SIM, &in, &claims, &err), CLST_E_MALFORMED);
    assert_null(claims);
}

static void
test_size_limit_first(void **state)
{
    /* Oversized input is refused on its size alone: even bytes that are not evidence at all
     * (a parse would say "not sim evidence") get CLST_E_LIMIT. */
    struct fx *f = *state;
    size_t size = CLST_SIM_EVIDENCE_MAX_SIZE + 1;
    uint8_t *junk = malloc(size);
    assert_non_null(junk);
    memset(junk, 'J', size);
    struct clst_evidence_input in = fx_input(f, junk, size);
    struct clst_err err = {0};
    json_t *claims = NULL;
    assert_int_equal(clst_evidence_verify(CLST_EVIDENCE_SIM, &in, &claims, &err), CLST_E_LIMIT);
    assert_non_null(strstr(err.msg, "limit"));
    in.evidence_size = size - 1;
    assert_int_equal(clst_evidence_verify(CLST_EVIDENCE_SIM, &in, &claims, &err), CLST_E_MALFORMED);
    assert_non_null(strstr(err.msg, "magic"));
    assert_null(claims);
    free(junk);
}

static void
test_checks_after_verification(void **state)
{
    /* Evidence that fails its signature reports the signature, not the debug flag or the
     * report data: the framework's checks run only on verified evidence. */
    struct fx *f = *state;
    struct clst_sim_identity id = f->id;
    id.debug = true;
    struct clst_buf ev;
    struct clst_err err = {0};
    json_t *claims = NULL;
    clst_buf_init(&ev, CLST_SIM_EVIDENCE_MAX_SIZE);
    assert_int_equal(clst_evidence_sim_report_create(f->p, &id, f->report_data, &ev, &err),
                     CLST_OK);
    ev.data[ev.size - 1] ^= 1;
    struct clst_evidence_input in = fx_input(f, ev.data, ev.size);
    uint8_t wrong[CLST_SIM_REPORT_DATA_SIZE] = {0};
    in.report_data = wrong;
    in.report_data_size = sizeof(wrong);
    assert_int_equal(clst_evidence_verify(CLST_EVIDENCE_SIM, &in, &claims, &err), CLST_E_VERIFY);
    assert_non_null(strstr(err.msg, "signature"));
    assert_null(claims);

    /* Repaired signature: now the debug flag is what fails, then the report data. */
    ev.data[ev.size - 1] ^= 1;
    assert_int_equal(clst_evidence_verify(CLST_EVIDENCE_SIM, &in, &claims, &err), CLST_E_VERIFY);
    assert_non_null(strstr(err.msg, "debuggable"));
    in.allow_debug = true;
    assert_int_equal(clst_evidence_verify(CLST_EVIDENCE_SIM, &in, &claims, &err), CLST_E_VERIFY);
    assert_non_null(strstr(err.msg, "report data"));
    in.report_data = f->report_data;
    assert_int_equal(clst_evidence_verify(CLST_EVIDENCE_SIM, &in, &claims, &err), CLST_OK);
    assert_non_null(claims);
    json_decref(claims);
    clst_buf_cleanup(&ev);
}

static void
test_claims_untouched_on_failure(void **state)
{
    struct fx *f = *state;
    json_t *sentinel = json_object();
    json_t *claims = sentinel;
    struct clst_evidence_input in = fx_input(f, f->ev.data, f->ev.size - 1);
    assert_int_equal(clst_evidence_verify(CLST_EVIDENCE_SIM, &in, &claims, NULL), CLST_E_MALFORMED);
    assert_ptr_equal(claims, sentinel);
    json_decref(sentinel);
}

static void
test_report_data_bind(void **state)
{
    (void)state;
    uint8_t out[CLST_EVIDENCE_REPORT_DATA_SIZE];
    /* SHA-256("") = e3b0c442...7852b855 */
    static const uint8_t empty[32] = {0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14,
                                      0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
                                      0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c,
                                      0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55};
    memset(out, 0xEE, sizeof(out));
    assert_int_equal(clst_evidence_report_data_bind((const uint8_t *)"", 0, out), CLST_OK);
    assert_memory_equal(out, empty, 32);
    for (size_t i = 32; i < sizeof(out); i++) {
        assert_int_equal(out[i], 0);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kind_names),
        cmocka_unit_test(test_unsupported_kind),
        cmocka_unit_test(test_input_checks),
        cmocka_unit_test(test_size_limit_first),
        cmocka_unit_test(test_checks_after_verification),
        cmocka_unit_test(test_claims_untouched_on_failure),
        cmocka_unit_test(test_report_data_bind),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
