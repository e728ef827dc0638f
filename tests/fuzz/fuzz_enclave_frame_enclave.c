/*
 * Fuzz harness for the enclave side of the channel: the bytes a hostile host writes into the
 * host->enclave ring (src/enclave/ring.c, frame.c), fed to the enclave's receive path.
 *
 * The input becomes the ring's contents. The harness reads frames as the runtime does (header
 * validated first; name; payload copied out once) and decodes payloads with the decoders the
 * enclave uses: clst.main's arguments for CALL frames, and the clock and handle replies for ORET
 * frames. It must never crash, read out of bounds or loop; statuses are the documented ones;
 * decoded argument vectors are NULL-terminated and hold exactly the announced strings.
 *
 * Seeds in tests/fuzz/corpus/enclave_frame_enclave/: valid CALL (with and without clst.main
 * arguments), ORET and EXIT frames, sequences of them, and damaged, truncated and oversized
 * variants.
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

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct ring_ctl ctl;
    static uint8_t ring_data[FUZZ_RING];
    static uint8_t payload[FUZZ_RING];
    struct ring r;
    struct chan_wait w;
    struct frame_limits lim = {.max_payload = 16 * 1024};
    size_t n = size < FUZZ_RING ? size : FUZZ_RING;

    memset(&ctl, 0, sizeof(ctl));
    memset(&w, 0, sizeof(w));
    memcpy(ring_data, data, n);
    ring_init(&r, &ctl, ring_data, FUZZ_RING, false);
    atomic_store(&ctl.head, (uint64_t)n);
    uint64_t deadline = chan_now_ns();
    for (int frames = 0; frames < 1000; frames++) {
        struct frame_hdr h;
        struct clst_err err = {0};
        char name[CLST_ENCLAVE_NAME_MAX + 1] = "";
        enum clst_status st = frame_recv_hdr(&r, &w, FRAME_H2E, &lim, &h, deadline, &err);
        check(expected(st));
        if (st != CLST_OK) {
            break;
        }
        check(h.type == FRAME_CALL || h.type == FRAME_ORET || h.type == FRAME_EXIT);
        if (h.type == FRAME_EXIT) {
            check(h.payload_size == 0 && h.name_size == 0);
            continue;
        }
        if (h.name_size > 0) {
            st = frame_recv_name(&r, &w, &h, name, deadline, &err);
            check(expected(st));
            if (st != CLST_OK) {
                break;
            }
        }
        st = ring_read(&r, &w, payload, h.payload_size, deadline, &err);
        check(expected(st));
        if (st != CLST_OK) {
            break;
        }
        ring_release(&r);
        if (h.type == FRAME_CALL && strcmp(name, CLST_ENCLAVE_MAIN_ENTRY) == 0) {
            int argc = 0;
            char **argv = NULL;
            st = main_args_decode(payload, h.payload_size, &argc, &argv, &err);
            check(expected(st) || st == CLST_E_NOMEM);
            if (st == CLST_OK) {
                size_t total = 4;
                check(argc >= 1 && argc <= MAIN_ARGC_MAX && argv[argc] == NULL);
                for (int i = 0; i < argc; i++) {
                    total += 4 + strlen(argv[i]);
                }
                check(total == h.payload_size);
                free(argv);
            }
        } else if (h.type == FRAME_ORET && h.status == CLST_OK) {
            int64_t s;
            uint32_t ns, v;
            st = svc_time_decode(payload, h.payload_size, &s, &ns, &err);
            check(expected(st));
            if (st == CLST_OK) {
                check(ns < 1000000000u && h.payload_size == 12);
            }
            st = svc_u32_decode(payload, h.payload_size, &v, &err);
            check(expected(st));
        }
    }
    return 0;
}
