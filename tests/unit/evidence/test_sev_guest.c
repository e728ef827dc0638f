/*
 * Unit tests for src/evidence/sev_guest.c: collection through /dev/sev-guest.
 *
 * No SEV-SNP hardware is available, so nothing here reaches a real sev-guest driver. What is
 * tested:
 *   - the device: a missing one (CLST_E_NOTFOUND naming it and configfs-tsm; also the default
 *     /dev/sev-guest, absent on this machine), one that may not be opened (CLST_E_DENIED; as root
 *     a read-only sysfs attribute, which refuses O_RDWR even to root; otherwise a mode-000 file),
 *     a regular file with the real ioctl(2) (ENOTTY: "not the SEV-SNP guest device");
 *   - through an injected ioctl: the request marshalling of SNP_GET_REPORT and SNP_GET_EXT_REPORT
 *     (the ioctl number, msg_version, REPORT_DATA copied exactly, VMPL, reserved bytes zero, a
 *     page-aligned certificate buffer), the retry when the kernel reports a larger certificate
 *     size (VMM error INVALID_LEN, certs_len updated), a host that keeps asking, a size over the
 *     limit, an empty (all-zero) certificate buffer, firmware and VMM errors in words;
 *   - the response parsing: a real SNP report (virtee-sev report_milan.bin) wrapped in an
 *     snp_report_resp-shaped buffer (status, report_size, 24 reserved bytes, report), refused
 *     with a non-zero status, a report_size larger than the buffer, a report_size that is not
 *     1184, a truncated response;
 *   - the output's form: the real report followed by a certificate table holding its real VCEK is
 *     verified by clst_evidence_verify(CLST_EVIDENCE_SEVSNP) with the AMD roots compiled in, as
 *     an extended report (what 'evidence verify --type sevsnp' and POST /attest/SevSnpVm read).
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/sev-guest.h>
#include <openssl/bio.h>
#include <openssl/pem.h>

#include "test_util.h"

#include "evidence/sev_guest_int.h"
#include "evidence/sevsnp_int.h"

#define T_2024 INT64_C(1704067200) /* inside the Milan VCEK's validity */

static char tmpdir[256];
static char regular[320];
static uint8_t *report;
static size_t report_size;
static uint8_t *vcek;
static size_t vcek_size;

static uint8_t *
vec(const char *rel, size_t *size)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", CLST_VECTORS_DIR, rel);
    uint8_t *p = tu_read_file(path, size);
    if (p == NULL) {
        fprintf(stderr, "missing vector %s\n", path);
    }
    return p;
}

static int
setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/clst-sev-guest-XXXXXX");
    if (mkdtemp(tmpdir) == NULL) {
        return -1;
    }
    snprintf(regular, sizeof(regular), "%s/not-a-device", tmpdir);
    FILE *f = fopen(regular, "wb");
    if (f == NULL || fclose(f) != 0) {
        return -1;
    }
    report = vec("sev-snp/virtee-sev/report_milan.bin", &report_size);
    vcek = vec("sev-snp/virtee-sev/vcek_milan.der", &vcek_size);
    return report != NULL && report_size == CLST_SEV_GUEST_REPORT_SIZE && vcek != NULL ? 0 : -1;
}

static int
teardown(void **state)
{
    (void)state;
    unlink(regular);
    rmdir(tmpdir);
    free(report);
    free(vcek);
    return 0;
}

/* ---- the fake driver --------------------------------------------------------------------------
 */

struct fake {
    int calls;
    unsigned long request[4];
    uint8_t user_data[64];
    uint32_t vmpl;
    bool rsvd_zero;
    uint32_t certs_len[4];
    bool certs_aligned;
    /* behaviour */
    size_t need;      /* ext: the certificate size the host needs (0: whatever is given) */
    bool keep_asking; /* ext: always answer INVALID_LEN with a larger size */
    int fail_errno;   /* non-zero: fail every call with this errno */
    uint32_t fw_error, vmm_error;
    uint32_t status;      /* response status */
    uint32_t rsize;       /* response report_size */
    const uint8_t *table; /* written to the certificate buffer */
    size_t table_size;
};

static int
fake_ioctl(int fd, unsigned long request, void *arg, void *ctx)
{
    struct fake *f = ctx;
    struct snp_guest_request_ioctl *io = arg;
    const struct snp_report_req *rq;
    struct snp_ext_report_req *ext = NULL;
    (void)fd;
    assert_true(f->calls < 4);
    f->request[f->calls] = request;
    assert_int_equal(io->msg_version, 1);
    assert_true(io->req_data != 0 && io->resp_data != 0);
    if (request == SNP_GET_EXT_REPORT) {
        ext = (struct snp_ext_report_req *)(uintptr_t)io->req_data;
        rq = &ext->data;
        f->certs_len[f->calls] = ext->certs_len;
        f->certs_aligned = ext->certs_len % 4096 == 0 && ext->certs_address != 0;
    } else {
        rq = (const struct snp_report_req *)(uintptr_t)io->req_data;
    }
    memcpy(f->user_data, rq->user_data, sizeof(f->user_data));
    f->vmpl = rq->vmpl;
    f->rsvd_zero = true;
    for (size_t i = 0; i < sizeof(rq->rsvd); i++) {
        f->rsvd_zero = f->rsvd_zero && rq->rsvd[i] == 0;
    }
    f->calls++;
    if (f->fail_errno != 0) {
        io->fw_error = f->fw_error;
        io->vmm_error = f->vmm_error;
        errno = f->fail_errno;
        return -1;
    }
    if (ext != NULL && (f->keep_asking || (f->need > 0 && ext->certs_len < f->need))) {
        io->vmm_error = SNP_GUEST_VMM_ERR_INVALID_LEN;
        ext->certs_len = f->keep_asking ? ext->certs_len + 4096 : (uint32_t)f->need;
        errno = EIO;
        return -1;
    }
    if (ext != NULL && f->table != NULL) {
        assert_true(f->table_size <= ext->certs_len);
        memcpy((void *)(uintptr_t)ext->certs_address, f->table, f->table_size);
    }
    struct snp_report_resp *resp = (struct snp_report_resp *)(uintptr_t)io->resp_data;
    memset(resp->data, 0, sizeof(resp->data));
    clst_put_le32(resp->data, f->status);
    clst_put_le32(resp->data + 4, f->rsize != 0 ? f->rsize : CLST_SEV_GUEST_REPORT_SIZE);
    memcpy(resp->data + SEV_GUEST_RESP_HEADER_SIZE, report, report_size);
    return 0;
}

static struct clst_sev_guest_request
request(bool extended)
{
    struct clst_sev_guest_request r;
    memset(&r, 0, sizeof(r));
    r.device = regular;
    for (size_t i = 0; i < sizeof(r.user_data); i++) {
        r.user_data[i] = (uint8_t)(0xA0 + i);
    }
    r.vmpl = 2;
    r.extended = extended;
    return r;
}

static void
expect(const struct clst_sev_guest_request *req, struct fake *f, enum clst_status want,
       const char *part)
{
    struct clst_sev_guest_report out;
    struct clst_err err = {0};
    if (f != NULL) {
        f->calls = 0;
    }
    enum clst_status rc =
        evidence_sev_guest_get_with(req, f != NULL ? fake_ioctl : NULL, f, &out, &err);
    if (rc != want || (part != NULL && strstr(err.msg, part) == NULL)) {
        fail_msg("want %s (\"%s\"), got %s: %s", clst_status_str(want), part ? part : "",
                 clst_status_str(rc), err.msg);
    }
    if (rc == CLST_OK) {
        clst_sev_guest_report_cleanup(&out);
    } else {
        assert_int_equal(out.report.size, 0);
    }
}

/* ---- the device ---------------------------------------------------------------------------- */

static void
test_device_errors(void **state)
{
    (void)state;
    struct clst_sev_guest_request req = request(false);
    char missing[400];
    snprintf(missing, sizeof(missing), "%s/sev-guest", tmpdir);
    req.device = missing;
    expect(&req, NULL, CLST_E_NOTFOUND, missing);
    expect(&req, NULL, CLST_E_NOTFOUND, "configfs-tsm");
    /* The default device: absent on this (non-SNP) machine. */
    struct stat st;
    assert_int_not_equal(stat(CLST_SEV_GUEST_DEFAULT_DEV, &st), 0);
    req.device = NULL;
    expect(&req, NULL, CLST_E_NOTFOUND, "/dev/sev-guest");

    /* Permission denied. */
    char denied[400];
    bool root = geteuid() == 0;
    if (root) {
        /* Root passes file modes; a read-only sysfs attribute refuses O_RDWR even to root. */
        snprintf(denied, sizeof(denied), "/sys/kernel/uevent_seqnum");
    } else {
        snprintf(denied, sizeof(denied), "%s/denied", tmpdir);
        FILE *f = fopen(denied, "wb");
        assert_non_null(f);
        fclose(f);
        assert_int_equal(chmod(denied, 0), 0);
    }
    req.device = denied;
    expect(&req, NULL, CLST_E_DENIED, denied);
    expect(&req, NULL, CLST_E_DENIED, "run as root");
    if (!root) {
        unlink(denied);
    }

    /* A regular file with the real ioctl(2): ENOTTY. */
    req.device = regular;
    expect(&req, NULL, CLST_E_IO, "not the SEV-SNP guest device");
    expect(&req, NULL, CLST_E_IO, regular);
    req.extended = true;
    expect(&req, NULL, CLST_E_IO, "SNP_GET_EXT_REPORT");

    /* A VMPL that does not exist. */
    req.vmpl = 4;
    expect(&req, NULL, CLST_E_INVAL, "VMPL 4");
}

/* ---- SNP_GET_REPORT ------------------------------------------------------------------------- */

static void
test_get_report(void **state)
{
    (void)state;
    struct clst_sev_guest_request req = request(false);
    struct clst_sev_guest_report out;
    struct clst_err err = {0};
    struct fake f;
    memset(&f, 0, sizeof(f));

    assert_int_equal(evidence_sev_guest_get_with(&req, fake_ioctl, &f, &out, &err), CLST_OK);
    assert_int_equal(f.calls, 1);
    assert_true(f.request[0] == SNP_GET_REPORT);
    assert_memory_equal(f.user_data, req.user_data, 64);
    assert_int_equal(f.vmpl, 2);
    assert_true(f.rsvd_zero);
    assert_int_equal(out.report.size, CLST_SEV_GUEST_REPORT_SIZE);
    assert_memory_equal(out.report.data, report, report_size);
    assert_int_equal(out.certs.size, 0);
    clst_sev_guest_report_cleanup(&out);

    /* Firmware and VMM errors, in words, naming the device. */
    memset(&f, 0, sizeof(f));
    f.fail_errno = EIO;
    f.fw_error = 0x16;
    expect(&req, &f, CLST_E_IO, "invalid parameter");
    expect(&req, &f, CLST_E_IO, regular);
    f.fw_error = 0;
    f.vmm_error = SNP_GUEST_VMM_ERR_BUSY;
    expect(&req, &f, CLST_E_IO, "busy");
    f.vmm_error = 7;
    expect(&req, &f, CLST_E_IO, "VMM) refused the request with error 7");
    f.vmm_error = 0;
    f.fail_errno = EINVAL;
    expect(&req, &f, CLST_E_IO, strerror(EINVAL));

    /* Responses that are not a report. */
    memset(&f, 0, sizeof(f));
    f.status = 0x16;
    expect(&req, &f, CLST_E_MALFORMED, "status 0x16");
    f.status = 0;
    f.rsize = SEV_GUEST_RESP_SIZE - SEV_GUEST_RESP_HEADER_SIZE + 1;
    expect(&req, &f, CLST_E_MALFORMED, "more than the 3968 bytes");
    f.rsize = 1000;
    expect(&req, &f, CLST_E_MALFORMED, "not the 1184 bytes");
    f.rsize = CLST_SEV_GUEST_REPORT_SIZE + 32;
    expect(&req, &f, CLST_E_MALFORMED, "not the 1184 bytes");
}

/* ---- the response parser directly ----------------------------------------------------------- */

static void
test_parse_resp(void **state)
{
    (void)state;
    uint8_t resp[SEV_GUEST_RESP_SIZE];
    struct clst_buf out;
    struct clst_err err = {0};
    memset(resp, 0, sizeof(resp));
    clst_put_le32(resp + 4, CLST_SEV_GUEST_REPORT_SIZE);
    memcpy(resp + SEV_GUEST_RESP_HEADER_SIZE, report, report_size);
    clst_buf_init(&out, 4096);
    assert_int_equal(evidence_sev_guest_parse_resp(resp, sizeof(resp), &out, &err), CLST_OK);
    assert_int_equal(out.size, report_size);
    assert_memory_equal(out.data, report, report_size);
    /* Exactly as long as the header and the report: still fine; one byte less: not. */
    clst_buf_reset(&out);
    assert_int_equal(
        evidence_sev_guest_parse_resp(resp, SEV_GUEST_RESP_HEADER_SIZE + report_size, &out, &err),
        CLST_OK);
    assert_int_equal(evidence_sev_guest_parse_resp(
                         resp, SEV_GUEST_RESP_HEADER_SIZE + report_size - 1, &out, &err),
                     CLST_E_MALFORMED);
    assert_int_equal(evidence_sev_guest_parse_resp(resp, 31, &out, &err), CLST_E_MALFORMED);
    clst_put_le32(resp, 1);
    assert_int_equal(evidence_sev_guest_parse_resp(resp, sizeof(resp), &out, &err),
                     CLST_E_MALFORMED);
    assert_non_null(strstr(err.msg, "invalid platform state"));
    assert_string_equal(evidence_sev_guest_fw_error_name(0x99), "unknown");
    clst_buf_cleanup(&out);
}

/* ---- SNP_GET_EXT_REPORT --------------------------------------------------------------------- */

/* A certificate table as a host supplies it: the report's VCEK and the Milan ASK. */
static void
make_table(struct clst_buf *table)
{
    size_t n = 0;
    uint8_t *pem = vec("sev-snp/virtee-sev/cert_chain_milan", &n);
    assert_non_null(pem);
    BIO *bio = BIO_new_mem_buf(pem, (int)n);
    X509 *ask = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    assert_non_null(ask);
    unsigned char *ask_der = NULL;
    int ask_size = i2d_X509(ask, &ask_der);
    assert_true(ask_size > 0);
    enum sevsnp_guid_role roles[2] = {SEVSNP_GUID_VCEK, SEVSNP_GUID_ASK};
    const uint8_t *certs[2] = {vcek, ask_der};
    size_t sizes[2] = {vcek_size, (size_t)ask_size};
    clst_buf_init(table, 1u << 16);
    assert_int_equal(evidence_sevsnp_table_encode(roles, certs, sizes, 2, table), CLST_OK);
    OPENSSL_free(ask_der);
    X509_free(ask);
    BIO_free(bio);
    free(pem);
}

static void
test_ext_report(void **state)
{
    (void)state;
    struct clst_sev_guest_request req = request(true);
    struct clst_sev_guest_report out;
    struct clst_err err = {0};
    struct clst_buf table;
    struct fake f;
    make_table(&table);

    /* The first buffer (one page) is too small: the kernel says how much; one retry. */
    memset(&f, 0, sizeof(f));
    f.need = 8192 + 100;
    f.table = table.data;
    f.table_size = table.size;
    req.vmpl = 0;
    assert_int_equal(evidence_sev_guest_get_with(&req, fake_ioctl, &f, &out, &err), CLST_OK);
    assert_int_equal(f.calls, 2);
    assert_true(f.request[0] == SNP_GET_EXT_REPORT && f.request[1] == SNP_GET_EXT_REPORT);
    assert_int_equal(f.certs_len[0], 4096);
    assert_int_equal(f.certs_len[1], 12288); /* rounded up to whole pages */
    assert_true(f.certs_aligned);
    assert_memory_equal(f.user_data, req.user_data, 64);
    assert_int_equal(f.vmpl, 0);
    assert_true(f.rsvd_zero);
    assert_int_equal(out.report.size, CLST_SEV_GUEST_REPORT_SIZE);
    assert_int_equal(out.certs.size, 12288);
    assert_memory_equal(out.certs.data, table.data, table.size);

    /* The output's form: the report followed by the table is an extended report the sevsnp
     * verifier accepts with the AMD roots compiled in and nothing else. */
    struct clst_buf ev;
    STACK_OF(X509) *roots = NULL;
    json_t *claims = NULL;
    struct clst_evidence_input in;
    clst_buf_init(&ev, 1u << 17);
    assert_int_equal(clst_buf_append(&ev, out.report.data, out.report.size), CLST_OK);
    assert_int_equal(clst_buf_append(&ev, out.certs.data, out.certs.size), CLST_OK);
    assert_int_equal(clst_evidence_sevsnp_roots(&roots, &err), CLST_OK);
    memset(&in, 0, sizeof(in));
    in.evidence = ev.data;
    in.evidence_size = ev.size;
    in.roots = roots;
    in.at = T_2024;
    if (clst_evidence_verify(CLST_EVIDENCE_SEVSNP, &in, &claims, &err) != CLST_OK) {
        fail_msg("the collected form does not verify: %s", err.msg);
    }
    assert_string_equal(json_string_value(json_object_get(claims, "x-ms-attestation-type")),
                        "sevsnpvm");
    json_decref(claims);
    /* Without the table (report only) it needs the VCEK from elsewhere. */
    in.evidence_size = CLST_SEV_GUEST_REPORT_SIZE;
    assert_int_not_equal(clst_evidence_verify(CLST_EVIDENCE_SEVSNP, &in, &claims, &err), CLST_OK);
    sk_X509_pop_free(roots, X509_free);
    clst_buf_cleanup(&ev);
    clst_sev_guest_report_cleanup(&out);

    /* Big enough at once: one call. */
    memset(&f, 0, sizeof(f));
    f.table = table.data;
    f.table_size = table.size;
    f.need = 4096;
    assert_int_equal(evidence_sev_guest_get_with(&req, fake_ioctl, &f, &out, &err), CLST_OK);
    assert_int_equal(f.calls, 1);
    assert_int_equal(out.certs.size, 4096);
    clst_sev_guest_report_cleanup(&out);

    /* No certificates from the host (an all-zero buffer): the report alone. */
    memset(&f, 0, sizeof(f));
    assert_int_equal(evidence_sev_guest_get_with(&req, fake_ioctl, &f, &out, &err), CLST_OK);
    assert_int_equal(out.certs.size, 0);
    assert_int_equal(out.report.size, CLST_SEV_GUEST_REPORT_SIZE);
    clst_sev_guest_report_cleanup(&out);

    /* A host that keeps asking for more, one that asks for too much, one that asks for less. */
    memset(&f, 0, sizeof(f));
    f.keep_asking = true;
    expect(&req, &f, CLST_E_IO, "still asks");
    assert_int_equal(f.calls, 2);
    memset(&f, 0, sizeof(f));
    f.need = CLST_SEV_GUEST_CERTS_MAX + 1;
    expect(&req, &f, CLST_E_LIMIT, "more than the limit");
    memset(&f, 0, sizeof(f));
    f.fail_errno = EIO;
    f.vmm_error = SNP_GUEST_VMM_ERR_INVALID_LEN; /* but certs_len left at 4096 */
    expect(&req, &f, CLST_E_IO, "still asks");

    /* Firmware error on the extended request. */
    memset(&f, 0, sizeof(f));
    f.fail_errno = EIO;
    f.fw_error = 0x16;
    expect(&req, &f, CLST_E_IO, "SNP_GET_EXT_REPORT");
    /* A bad response after a successful ioctl. */
    memset(&f, 0, sizeof(f));
    f.rsize = 4000;
    expect(&req, &f, CLST_E_MALFORMED, "more than the");
    clst_buf_cleanup(&table);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_device_errors),
        cmocka_unit_test(test_get_report),
        cmocka_unit_test(test_parse_resp),
        cmocka_unit_test(test_ext_report),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
