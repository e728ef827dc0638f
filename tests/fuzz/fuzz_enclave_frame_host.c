/*
 * Fuzz harness for the host side of the enclave channel: the bytes an enclave writes into its
 * ring (src/enclave/ring.c, frame.c), fed to the host's receive path.
 *
 * The input becomes the enclave->host ring's contents. The harness reads frames as the host does
 * (header, validated before anything else; name; payload copied out once, within the hard caps)
 * and decodes each payload with the decoder the host would use: READY, and the requests of the
 * runtime's own services (log, file open/read/write, sealing key). It must never crash, read out
 * of bounds or loop, and the statuses must be the documented ones. Invariants: an accepted header
 * respects the caps; an accepted name is in the alphabet; decoded sizes lie within the payload.
 *
 * Seeds in tests/fuzz/corpus/enclave_frame_host/: valid RETURN, OCALL (each service) and READY
 * frames, frame sequences, and damaged, truncated and oversized variants.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "enclave/enclave_int.h"

#define FUZZ_RING (64u * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(bool ok)
{
    if (!ok) {
        abort();
    }
}

static bool
expected(enum clst_status st)
{
    return st == CLST_OK || st == CLST_E_MALFORMED || st == CLST_E_LIMIT;
}

static void
decode_request(const char *name, const uint8_t *p, size_t n)
{
    struct clst_err err = {0};
    enum clst_status st = CLST_OK;
    if (strcmp(name, SVC_LOG) == 0) {
        struct svc_log_req r;
        st = svc_log_decode(p, n, &r, &err);
        if (st == CLST_OK) {
            char text[SVC_LOG_MAX + 1];
            check(r.text_size <= SVC_LOG_MAX && r.text + r.text_size == p + n);
            frame_msg_sanitize(r.text, r.text_size, text, sizeof(text));
        }
    } else if (strcmp(name, SVC_FILE_OPEN) == 0) {
        struct svc_open_req r;
        st = svc_open_decode(p, n, &r, &err);
        if (st == CLST_OK) {
            check(frame_name_valid_str(r.name));
        }
    } else if (strcmp(name, SVC_FILE_READ) == 0) {
        struct svc_read_req r;
        st = svc_read_decode(p, n, &r, &err);
        if (st == CLST_OK) {
            check(r.max >= 1 && r.max <= CLST_ENCLAVE_FILE_IO_MAX);
        }
    } else if (strcmp(name, SVC_FILE_WRITE) == 0) {
        struct svc_write_req r;
        st = svc_write_decode(p, n, &r, &err);
        if (st == CLST_OK) {
            check(r.data_size + 4 == n);
        }
    } else if (strcmp(name, SVC_SEALKEY) == 0) {
        struct svc_sealkey_req r;
        st = svc_sealkey_decode(p, n, &r, &err);
        if (st == CLST_OK) {
            check(r.policy == CLST_SEAL_TO_MEASUREMENT || r.policy == CLST_SEAL_TO_SIGNER);
        }
    }
    check(expected(st));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct ring_ctl ctl;
    static uint8_t ring_data[FUZZ_RING];
    static uint8_t payload[FUZZ_RING];
    static struct ready_info ready;
    struct ring r;
    struct chan_wait w;
    struct frame_limits lim = {.max_payload = 16 * 1024};
    size_t n = size < FUZZ_RING ? size : FUZZ_RING;

    memset(&ctl, 0, sizeof(ctl));
    memset(&w, 0, sizeof(w));
    memcpy(ring_data, data, n);
    ring_init(&r, &ctl, ring_data, FUZZ_RING, false);
    atomic_store(&ctl.head, (uint64_t)n);
    /* The deadline has passed: running out of bytes ends the loop at once. */
    uint64_t deadline = chan_now_ns();
    for (int frames = 0; frames < 1000; frames++) {
        struct frame_hdr h;
        struct clst_err err = {0};
        char name[CLST_ENCLAVE_NAME_MAX + 1] = "";
        enum clst_status st = frame_recv_hdr(&r, &w, FRAME_E2H, &lim, &h, deadline, &err);
        check(expected(st));
        if (st != CLST_OK) {
            break;
        }
        check(h.type == FRAME_RETURN || h.type == FRAME_OCALL || h.type == FRAME_READY);
        check(h.payload_size <= lim.max_payload && h.name_size <= CLST_ENCLAVE_NAME_MAX);
        if (h.name_size > 0) {
            st = frame_recv_name(&r, &w, &h, name, deadline, &err);
            check(expected(st));
            if (st != CLST_OK) {
                break;
            }
            check(frame_name_valid_str(name) && strlen(name) == h.name_size);
        }
        st = ring_read(&r, &w, payload, h.payload_size, deadline, &err);
        check(expected(st));
        if (st != CLST_OK) {
            break;
        }
        ring_release(&r);
        if (h.type == FRAME_OCALL) {
            decode_request(name, payload, h.payload_size);
        } else if (h.type == FRAME_READY && h.status == CLST_OK) {
            st = ready_decode(payload, h.payload_size, &ready, &err);
            check(expected(st));
            if (st == CLST_OK) {
                check(ready.entry_count <= CLST_ENCLAVE_ENTRY_MAX);
                for (uint32_t i = 0; i < ready.entry_count; i++) {
                    check(frame_name_valid_str(ready.entries[i]));
                }
            }
        } else if (h.status != CLST_OK) {
            char msg[FRAME_ERR_MSG_MAX + 1];
            check(h.payload_size <= FRAME_ERR_MSG_MAX);
            frame_msg_sanitize(payload, h.payload_size, msg, sizeof(msg));
        }
    }
    return 0;
}
