/*
 * Inside the evidence component: the /dev/sev-guest collector (sev_guest.c), with its ioctl
 * injectable so that the unit tests can check the request marshalling, the certificate-buffer
 * retry and the response parsing without SEV-SNP hardware. Not a public header.
 */
#ifndef CLST_EVIDENCE_SEV_GUEST_INT_H
#define CLST_EVIDENCE_SEV_GUEST_INT_H

#include <cloister/evidence.h>

/* The response of SNP_GET_REPORT (MSG_REPORT_RSP, SEV-SNP firmware ABI): status, report_size,
 * 24 reserved bytes, then the report. */
#define SEV_GUEST_RESP_SIZE        4000 /* struct snp_report_resp */
#define SEV_GUEST_RESP_HEADER_SIZE 32
#define SEV_GUEST_CERTS_FIRST      4096 /* the first certificate buffer tried (one page) */
#define SEV_GUEST_PAGE_SIZE        4096

/* Called instead of ioctl(2): same contract (-1 and errno on failure); `arg` is the
 * struct snp_guest_request_ioctl. */
typedef int (*sev_guest_ioctl_fn)(int fd, unsigned long request, void *arg, void *ctx);

/* clst_evidence_sev_guest_get with `fn` (NULL: ioctl(2)) and its context. The device is opened
 * as in production, so tests point req->device at a regular file. */
enum clst_status evidence_sev_guest_get_with(const struct clst_sev_guest_request *req,
                                             sev_guest_ioctl_fn fn, void *ctx,
                                             struct clst_sev_guest_report *out,
                                             struct clst_err *err);

/* Parses a response buffer (SEV_GUEST_RESP_SIZE bytes as the driver fills it): appends the report
 * to `report`. CLST_E_MALFORMED for a non-zero status or a report size that is not 1184 or does
 * not fit in `size`. */
enum clst_status evidence_sev_guest_parse_resp(const uint8_t *resp, size_t size,
                                               struct clst_buf *report, struct clst_err *err);

/* The firmware error code in words ("invalid parameter", ...), or "unknown". */
const char *evidence_sev_guest_fw_error_name(uint32_t code);

#endif
