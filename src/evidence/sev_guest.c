/*
 * Evidence collection through the SEV-SNP guest driver's character device (/dev/sev-guest,
 * <linux/sev-guest.h>): SNP_GET_REPORT and SNP_GET_EXT_REPORT. The other way to the same report
 * is configfs-tsm (configfs_tsm.c, Linux 6.7+); this one also works on older guest kernels.
 *
 * Everything the driver returns is untrusted here as well: the response's status and size are
 * checked before the report is kept, the certificate buffer is bounded, and the evidence is
 * verified elsewhere (clst_evidence_verify), never trusted because of where it came from.
 *
 * What was exercised on SEV-SNP hardware: nothing (no such machine was available). The unit tests
 * (tests/unit/evidence/test_sev_guest.c) drive this code through an injected ioctl.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/sev-guest.h>

#include <cloister/crypto.h>

#include "evidence/evidence_int.h"
#include "evidence/sev_guest_int.h"

/* VMM error codes in exitinfo2[63:32] (the uapi header defines these two). */
#ifndef SNP_GUEST_VMM_ERR_INVALID_LEN
#define SNP_GUEST_VMM_ERR_INVALID_LEN 1
#endif
#ifndef SNP_GUEST_VMM_ERR_BUSY
#define SNP_GUEST_VMM_ERR_BUSY 2
#endif

_Static_assert(sizeof(struct snp_report_resp) == SEV_GUEST_RESP_SIZE, "snp_report_resp layout");
_Static_assert(sizeof(((struct snp_report_req *)0)->user_data) == CLST_EVIDENCE_REPORT_DATA_SIZE,
               "snp_report_req layout");

void
clst_sev_guest_report_cleanup(struct clst_sev_guest_report *r)
{
    if (r == NULL) {
        return;
    }
    clst_buf_cleanup(&r->report);
    clst_buf_cleanup(&r->certs);
    memset(r, 0, sizeof(*r));
}

const char *
evidence_sev_guest_fw_error_name(uint32_t code)
{
    /* SEV firmware status codes (AMD SEV-SNP firmware ABI; linux/psp-sev.h sev_ret_code). */
    switch (code) {
    case 0x00:
        return "success";
    case 0x01:
        return "invalid platform state";
    case 0x02:
        return "invalid guest state";
    case 0x04:
        return "invalid length";
    case 0x07:
        return "policy failure";
    case 0x09:
        return "invalid address";
    case 0x10:
        return "invalid guest";
    case 0x11:
        return "invalid command";
    case 0x15:
        return "unsupported";
    case 0x16:
        return "invalid parameter (e.g. a VMPL more privileged than the guest's own)";
    case 0x17:
        return "resource limit";
    case 0x18:
        return "secure data invalid";
    case 0x27:
        return "invalid key";
    case 0xffffffffu:
        return "no firmware call was made";
    default:
        return "unknown";
    }
}

static uint32_t
le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

enum clst_status
evidence_sev_guest_parse_resp(const uint8_t *resp, size_t size, struct clst_buf *report,
                              struct clst_err *err)
{
    if (resp == NULL || report == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "sev-guest: no response or no output given");
    }
    if (size < SEV_GUEST_RESP_HEADER_SIZE) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "sev-guest: the response is %zu bytes, shorter than its header", size);
    }
    uint32_t status = le32(resp);
    uint32_t report_size = le32(resp + 4);
    if (status != 0) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "sev-guest: the firmware answered with status 0x%x (%s); no report",
                            (unsigned)status, evidence_sev_guest_fw_error_name(status));
    }
    if (report_size > size - SEV_GUEST_RESP_HEADER_SIZE) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "sev-guest: the response declares a %u-byte report, more than the "
                            "%zu bytes the response holds",
                            (unsigned)report_size, size - SEV_GUEST_RESP_HEADER_SIZE);
    }
    if (report_size != CLST_SEV_GUEST_REPORT_SIZE) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "sev-guest: the response declares a %u-byte report, not the %u bytes "
                            "of an ATTESTATION_REPORT",
                            (unsigned)report_size, CLST_SEV_GUEST_REPORT_SIZE);
    }
    if (clst_buf_append(report, resp + SEV_GUEST_RESP_HEADER_SIZE, report_size) != CLST_OK) {
        return clst_err_set(err, CLST_E_NOMEM, "out of memory");
    }
    return CLST_OK;
}

static int
real_ioctl(int fd, unsigned long request, void *arg, void *ctx)
{
    (void)ctx;
    return ioctl(fd, request, arg);
}

/* The failure of one ioctl, in words. */
static enum clst_status
ioctl_error(const char *dev, const char *what, int e, const struct snp_guest_request_ioctl *io,
            struct clst_err *err)
{
    if (e == ENOTTY || e == ENOSYS) {
        return clst_err_set(err, CLST_E_IO,
                            "%s: %s: %s: this is not the SEV-SNP guest device (the sev-guest "
                            "driver's /dev/sev-guest)",
                            dev, what, strerror(e));
    }
    if (io->vmm_error == SNP_GUEST_VMM_ERR_BUSY || e == EAGAIN || e == EBUSY) {
        return clst_err_set(err, CLST_E_IO,
                            "%s: %s: %s: the host is busy (VMM error %u); retry later", dev, what,
                            strerror(e), (unsigned)io->vmm_error);
    }
    if (io->vmm_error != 0) {
        return clst_err_set(
            err, CLST_E_IO, "%s: %s: %s: the host (VMM) refused the request with error %u%s", dev,
            what, strerror(e), (unsigned)io->vmm_error,
            io->vmm_error == SNP_GUEST_VMM_ERR_INVALID_LEN ? " (certificate buffer length)" : "");
    }
    if (io->fw_error != 0) {
        return clst_err_set(err, CLST_E_IO,
                            "%s: %s: %s: the SEV firmware refused the request with error 0x%x "
                            "(%s)",
                            dev, what, strerror(e), (unsigned)io->fw_error,
                            evidence_sev_guest_fw_error_name(io->fw_error));
    }
    return clst_err_set(err, CLST_E_IO, "%s: %s: %s", dev, what, strerror(e));
}

enum clst_status
evidence_sev_guest_get_with(const struct clst_sev_guest_request *req, sev_guest_ioctl_fn fn,
                            void *ctx, struct clst_sev_guest_report *out, struct clst_err *err)
{
    enum clst_status rc = CLST_E_IO;
    struct clst_sev_guest_report r;
    struct snp_report_req rq;
    struct snp_ext_report_req ext;
    struct snp_guest_request_ioctl io;
    struct snp_report_resp *resp = NULL;
    uint8_t *certs = NULL;
    const char *dev;
    int fd = -1;

    if (req == NULL || out == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "sev-guest: no request or no output given");
    }
    memset(out, 0, sizeof(*out));
    if (req->vmpl > CLST_SEV_GUEST_VMPL_MAX) {
        return clst_err_set(err, CLST_E_INVAL, "sev-guest: VMPL %u is not 0..%d",
                            (unsigned)req->vmpl, CLST_SEV_GUEST_VMPL_MAX);
    }
    dev = req->device != NULL ? req->device : CLST_SEV_GUEST_DEFAULT_DEV;
    fn = fn != NULL ? fn : real_ioctl;
    memset(&r, 0, sizeof(r));
    clst_buf_init(&r.report, CLST_SEV_GUEST_REPORT_SIZE);
    clst_buf_init(&r.certs, CLST_SEV_GUEST_CERTS_MAX);

    fd = open(dev, O_RDWR | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT || e == ENODEV || e == ENXIO) {
            rc = clst_err_set(err, CLST_E_NOTFOUND,
                              "cannot open %s: %s: not an SEV-SNP guest, or its sev-guest driver "
                              "is not loaded (modprobe sev-guest); on Linux 6.7+ the report is "
                              "also available through configfs-tsm (" CLST_TSM_DEFAULT_DIR ")",
                              dev, strerror(e));
        } else if (e == EACCES || e == EPERM) {
            rc = clst_err_set(err, CLST_E_DENIED,
                              "cannot open %s: %s: the device is root's by default; run as root "
                              "or grant this user access to it",
                              dev, strerror(e));
        } else {
            rc = clst_err_set(err, CLST_E_IO, "cannot open %s: %s", dev, strerror(e));
        }
        goto out;
    }
    if ((resp = calloc(1, sizeof(*resp))) == NULL) {
        rc = clst_err_set(err, CLST_E_NOMEM, "out of memory");
        goto out;
    }
    memset(&rq, 0, sizeof(rq));
    memcpy(rq.user_data, req->user_data, sizeof(rq.user_data));
    rq.vmpl = req->vmpl;

    if (!req->extended) {
        memset(&io, 0, sizeof(io));
        io.msg_version = 1;
        io.req_data = (uint64_t)(uintptr_t)&rq;
        io.resp_data = (uint64_t)(uintptr_t)resp;
        if (fn(fd, SNP_GET_REPORT, &io, ctx) != 0) {
            rc = ioctl_error(dev, "SNP_GET_REPORT", errno, &io, err);
            goto out;
        }
        r.fw_error = io.fw_error;
        r.vmm_error = io.vmm_error;
    } else {
        /* The kernel takes a page-aligned buffer; when it is too small it fails with VMM error
         * INVALID_LEN and writes the size the host needs into certs_len. One retry. */
        size_t len = SEV_GUEST_CERTS_FIRST;
        for (int attempt = 0;; attempt++) {
            free(certs);
            if ((certs = calloc(1, len)) == NULL) {
                rc = clst_err_set(err, CLST_E_NOMEM, "out of memory");
                goto out;
            }
            memset(&ext, 0, sizeof(ext));
            ext.data = rq;
            ext.certs_address = (uint64_t)(uintptr_t)certs;
            ext.certs_len = (uint32_t)len;
            memset(&io, 0, sizeof(io));
            io.msg_version = 1;
            io.req_data = (uint64_t)(uintptr_t)&ext;
            io.resp_data = (uint64_t)(uintptr_t)resp;
            memset(resp, 0, sizeof(*resp));
            if (fn(fd, SNP_GET_EXT_REPORT, &io, ctx) == 0) {
                break;
            }
            int e = errno;
            if (io.vmm_error != SNP_GUEST_VMM_ERR_INVALID_LEN) {
                rc = ioctl_error(dev, "SNP_GET_EXT_REPORT", e, &io, err);
                goto out;
            }
            size_t need = ext.certs_len;
            if (attempt > 0 || need <= len) {
                rc = clst_err_set(err, CLST_E_IO,
                                  "%s: SNP_GET_EXT_REPORT: the host still asks for a larger "
                                  "certificate buffer (%zu bytes after %zu)",
                                  dev, need, len);
                goto out;
            }
            if (need > CLST_SEV_GUEST_CERTS_MAX) {
                rc = clst_err_set(err, CLST_E_LIMIT,
                                  "%s: SNP_GET_EXT_REPORT: the host's certificate table needs %zu "
                                  "bytes, more than the limit of %u",
                                  dev, need, CLST_SEV_GUEST_CERTS_MAX);
                goto out;
            }
            /* Round up to whole pages, as the kernel requires. */
            len = (need + SEV_GUEST_PAGE_SIZE - 1) / SEV_GUEST_PAGE_SIZE * SEV_GUEST_PAGE_SIZE;
        }
        r.fw_error = io.fw_error;
        r.vmm_error = io.vmm_error;
        /* An all-zero buffer: the host supplied no certificates (an empty table). */
        if (!evidence_all_zero(certs, len) && clst_buf_append(&r.certs, certs, len) != CLST_OK) {
            rc = clst_err_set(err, CLST_E_NOMEM, "out of memory");
            goto out;
        }
    }
    rc = evidence_sev_guest_parse_resp(resp->data, sizeof(resp->data), &r.report, err);
    if (rc != CLST_OK) {
        rc = clst_err_prefix(err, "%s", dev);
        goto out;
    }
    *out = r;
    memset(&r, 0, sizeof(r));
    rc = CLST_OK;
out:
    if (fd >= 0) {
        close(fd);
    }
    free(certs);
    free(resp);
    clst_sev_guest_report_cleanup(&r);
    return rc;
}

enum clst_status
clst_evidence_sev_guest_get(const struct clst_sev_guest_request *req,
                            struct clst_sev_guest_report *out, struct clst_err *err)
{
    return evidence_sev_guest_get_with(req, NULL, NULL, out, err);
}
