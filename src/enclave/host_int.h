/* Private to src/enclave: the host-side enclave object, shared by host.c and host_services.c. */
#ifndef CLST_ENCLAVE_HOST_INT_H
#define CLST_ENCLAVE_HOST_INT_H

#include <pthread.h>
#include <sys/types.h>

#include "enclave/enclave_int.h"

struct host_file {
    char name[CLST_ENCLAVE_NAME_MAX + 1];
    int fd;
    unsigned mode;
    bool own; /* we opened it, we close it */
};

struct host_svc {
    char name[CLST_ENCLAVE_NAME_MAX + 1];
    struct clst_host_service svc;
};

struct clst_host_enclave {
    pthread_mutex_t lock;
    struct clst_host_options opts; /* pointers borrowed from the caller */
    struct clst_enclave_identity id;
    struct image_mem image;

    int chan_fd;
    uint8_t *chan_map;
    size_t chan_size;
    struct chan_ctrl *ctrl;
    struct ring tx; /* host -> enclave, we produce */
    struct ring rx; /* enclave -> host, we consume */
    struct chan_wait wait;
    struct frame_limits lim;

    pid_t pid;
    int pidfd;
    bool reaped;
    bool dead;
    enum clst_status death_status;
    char death[CLST_ERR_MSG_SIZE];

    struct ready_info ready;
    uint32_t seq;
    const char *current; /* the entry point being called, for messages */

    struct host_svc svcs[SVC_MAX];
    size_t svc_count;
    struct host_file files[SVC_FILE_MAX];
    size_t file_count;
    struct host_relay *relay; /* clst.attest / clst.release (host_relay.c), or NULL */

    struct clst_buf scratch; /* service requests */
    struct clst_buf reply;   /* service replies */
    struct clst_host_stats stats;
};

/*
 * Runs service `name` for the enclave. The reply goes to `out` (whose max is the enclave's
 * out_cap); a failure's message goes to err. *wipe is set when the reply held secret bytes.
 */
enum clst_status host_service_dispatch(struct clst_host_enclave *e, const char *name,
                                       const uint8_t *in, size_t in_size, struct clst_buf *out,
                                       bool *wipe, struct clst_err *err);
bool host_service_builtin(const char *name);
void host_files_close(struct clst_host_enclave *e);

#endif
