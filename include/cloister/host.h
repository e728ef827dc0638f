/*
 * Cloister enclave SDK, host side: sign and measure enclave images, create an enclave from a
 * signed image, call its entry points, offer it host services, destroy it.
 *
 * The host is untrusted by the enclave: it only ever handles inputs it chose, outputs the enclave
 * chose to return, evidence and tokens. On the `sim` TEE (docs/enclaves.md) the host process is
 * also the sim platform: it measures the image, signs evidence with the platform key and derives
 * sealing keys, so sim protects the enclave from other unprivileged processes but not from the
 * host that runs it, root or the kernel.
 *
 * Calls on one enclave are serialized (the enclave runs one entry point at a time); host services
 * run on the calling thread, inside clst_host_enclave_call. A peer that sends garbage, stalls past
 * the timeout or dies mid-call fails the call with a message that says which entry point and why
 * (CLST_E_MALFORMED, CLST_E_LIMIT, CLST_E_IO); the enclave is then terminated and every later
 * call fails.
 */
#ifndef CLOISTER_HOST_H
#define CLOISTER_HOST_H

#include <cloister/core.h>
#include <cloister/enclave.h>

#include <openssl/evp.h>

struct clst_sim_platform; /* evidence.h */

/* ---- images ------------------------------------------------------------------------------------
 */

#define CLST_HOST_IMAGE_MAX_SIZE   (256u * 1024 * 1024)
#define CLST_HOST_HEAP_DEFAULT_MIB 256u
#define CLST_HOST_HEAP_MAX_MIB     65536u

struct clst_host_sign_params {
    uint16_t product_id;
    uint16_t svn;
    bool debug;        /* the enclave may be inspected by the host (sim: it stays ptrace-able) */
    uint32_t heap_mib; /* 1..CLST_HOST_HEAP_MAX_MIB; 0 means CLST_HOST_HEAP_DEFAULT_MIB */
};

/*
 * Signs the ELF shared object at in_path (an existing manifest is replaced) with `key` (EC P-256,
 * EC P-384 or RSA 2048..4096) and writes the signed image to out_path (may equal in_path; written
 * atomically). On success *out (may be NULL) receives the identity the image will have.
 */
enum clst_status clst_host_image_sign(const char *in_path, const char *out_path, EVP_PKEY *key,
                                      const struct clst_host_sign_params *params,
                                      struct clst_enclave_identity *out, struct clst_err *err);

/*
 * Reads a signed image once, verifies its manifest (format, image hash, measurement, signature)
 * and writes its identity. CLST_E_VERIFY for a modified image or manifest; CLST_E_MALFORMED for
 * an unsigned or unparsable file.
 */
enum clst_status clst_host_image_measure(const char *path, struct clst_enclave_identity *out,
                                         struct clst_err *err);

/* ---- enclaves ----------------------------------------------------------------------------------
 */

enum clst_host_wait {
    CLST_HOST_WAIT_SLEEP = 0, /* block in the kernel at once (futex) */
    CLST_HOST_WAIT_SPIN,      /* spin briefly, then block; never spins when both ends share a
                                 CPU or only one CPU is usable */
};

#define CLST_HOST_CALL_TIMEOUT_DEFAULT_MS  60000u
#define CLST_HOST_START_TIMEOUT_DEFAULT_MS 10000u
#define CLST_HOST_RING_DEFAULT_SIZE        (2u * 1024 * 1024)
#define CLST_HOST_RING_MIN_SIZE            (64u * 1024)
#define CLST_HOST_RING_MAX_SIZE            (256u * 1024 * 1024)
#define CLST_HOST_MESSAGE_DEFAULT_MAX      (64u * 1024 * 1024)
#define CLST_HOST_MESSAGE_MAX              (1024u * 1024 * 1024)
#define CLST_HOST_NO_TIMEOUT               UINT32_MAX

struct clst_host_options {
    /* The trusted loader program (cloister-enclave-loader). NULL: $CLOISTER_ENCLAVE_LOADER, then
     * the directory of the running executable. */
    const char *loader_path;
    /* The sim platform (borrowed; must outlive the enclave). NULL: evidence and sealing requests
     * from the enclave fail with CLST_E_NOTFOUND. */
    const struct clst_sim_platform *platform;
    /* How long the enclave may go without answering or asking for a host service during a call;
     * CLST_HOST_NO_TIMEOUT for none. */
    uint32_t call_timeout_ms;
    uint32_t start_timeout_ms;
    /* How long the enclave waits for a host service's reply (CLST_HOST_NO_TIMEOUT: forever). */
    uint32_t service_timeout_ms;
    size_t ring_size;        /* bytes per direction, a power of two in [MIN, MAX] */
    size_t max_message_size; /* cap on any one input, output or service message */
    enum clst_host_wait wait;
    uint32_t spin_us; /* spin budget in CLST_HOST_WAIT_SPIN mode (1..1000) */
    /* Keep the host's standard error as the enclave's (for debugging the runtime; the default in
     * sanitizer builds); otherwise the enclave's descriptors 0-2 are /dev/null. */
    bool keep_stderr;
    /* When not NULL, refuse images whose signer id differs (32 bytes). */
    const uint8_t *expect_mrsigner;
    /* After creating this enclave, pre-start the loader for the next one (clst_host_prewarm),
     * from a short-lived background thread so that this creation does not wait for it. */
    bool prewarm;
    /*
     * Start this enclave's loader with its own exec of the loader program instead of forking it
     * from this process's loader template (the default; docs/enclaves.md, 4). Loaders forked from
     * one template share its address layout and its stack canary and pointer guard; a fresh
     * loader has its own, at the cost of the loader's whole start-up (about 3 times a forked
     * creation). For enclaves that must not trust each other, and for a process that creates a
     * single enclave (cloister run).
     */
    bool fresh_process;
};

/* Fills in the defaults (every field above). */
void clst_host_options_init(struct clst_host_options *opts);

struct clst_host_enclave;

/*
 * Reads the signed image once into a sealed memory file, verifies and measures it, and starts the
 * enclave process from that same memory file. `opts` may be NULL for the defaults.
 */
enum clst_status clst_host_enclave_create(const char *image_path,
                                          const struct clst_host_options *opts,
                                          struct clst_host_enclave **out, struct clst_err *err);

/*
 * Calls entry point `entry` with in[0..in_size) and receives at most out_cap bytes of output
 * (out may be NULL when out_cap is 0). An entry point's own failure returns its status with its
 * message; the enclave stays usable. A dead, killed, hung or misbehaving enclave fails the call
 * (CLST_E_IO, CLST_E_LIMIT, CLST_E_MALFORMED) and is terminated.
 */
enum clst_status clst_host_enclave_call(struct clst_host_enclave *e, const char *entry,
                                        const void *in, size_t in_size, void *out, size_t out_cap,
                                        size_t *out_size, struct clst_err *err);

/* Runs the enclave's main (`cloister run`) with argv; *out_exit gets its return value. */
enum clst_status clst_host_enclave_run_main(struct clst_host_enclave *e, int argc,
                                            char *const *argv, int *out_exit, struct clst_err *err);

/*
 * Starts a loader process now, so that the next clst_host_enclave_create in this process (with
 * the same loader and keep_stderr) skips process start-up: exec, dynamic linking, crypto and
 * sandbox initialization. The loader has no image, channel or secret until it is handed an
 * enclave; one is kept per process (a new one replaces the old), and it exits when this process
 * does. `opts` may be NULL.
 */
enum clst_status clst_host_prewarm(const struct clst_host_options *opts, struct clst_err *err);

/*
 * Ends this process's loader template and pre-started loader, if any (enclaves already created
 * are not affected). The next creation starts a new template. Both also end with the process.
 */
void clst_host_release(void);

/* Asks the enclave to exit, waits briefly, kills it if needed, and frees everything. NULL is a
 * no-op. */
void clst_host_enclave_destroy(struct clst_host_enclave *e);

const struct clst_enclave_identity *clst_host_enclave_identity(const struct clst_host_enclave *e);
/* The enclave process id (diagnostics, CPU pinning in benchmarks); -1 once it has exited. */
int clst_host_enclave_pid(const struct clst_host_enclave *e);
/* True when the enclave process is running and its channel is intact. */
bool clst_host_enclave_alive(const struct clst_host_enclave *e);
/* True when the enclave's memory is locked (mlockall); false with the reason in `why`. */
bool clst_host_enclave_memory_locked(const struct clst_host_enclave *e, const char **why);
/* True when the enclave exports `entry` (or a main, for CLST_ENCLAVE_MAIN_ENTRY). */
bool clst_host_enclave_has_entry(const struct clst_host_enclave *e, const char *entry);

struct clst_host_stats {
    uint64_t calls;
    uint64_t service_calls;
    uint64_t spins;         /* waits that spun (CLST_HOST_WAIT_SPIN), host side */
    uint64_t sleeps;        /* waits that blocked in the kernel, host side */
    uint64_t spins_skipped; /* spin-mode waits that did not spin because the CPU is shared */
};
/* Counters since creation; read them when no call is in progress on another thread. */
void clst_host_enclave_stats(const struct clst_host_enclave *e, struct clst_host_stats *out);

/* ---- host services -----------------------------------------------------------------------------
 */

/*
 * A service the enclave can call by name with clst_enclave_host_call. `fn` gets the request bytes
 * (untrusted, already copied) and appends its reply to `out` (capped at the enclave's out_cap);
 * a failure status and message go back to the enclave. Names follow CLST_ENCLAVE_NAME_MAX's rules;
 * the runtime's own services (clst.log, clst.time, clst.file.*, clst.platform.*) cannot be
 * replaced. clst.attest and clst.release are registered by clst_host_relay_register below;
 * clst.http is reserved.
 */
struct clst_host_service {
    enum clst_status (*fn)(void *ctx, const uint8_t *in, size_t in_size, struct clst_buf *out,
                           struct clst_err *err);
    void *ctx;
};

enum clst_status clst_host_service_register(struct clst_host_enclave *e, const char *name,
                                            const struct clst_host_service *service,
                                            struct clst_err *err);

/* Offers a file to the enclave under `name`: opened now by the host (read: O_RDONLY; write:
 * created or truncated, mode 0600). mode is CLST_ENCLAVE_FILE_READ or CLST_ENCLAVE_FILE_WRITE. */
enum clst_status clst_host_file_add(struct clst_host_enclave *e, const char *name, const char *path,
                                    unsigned mode, struct clst_err *err);
/* The same for a descriptor the caller keeps owning (standard output, a pipe, ...). */
enum clst_status clst_host_file_add_fd(struct clst_host_enclave *e, const char *name, int fd,
                                       unsigned mode, struct clst_err *err);

/* ---- relays to the attestation service and the vault (key release from inside) --------------
 */

#define CLST_HOST_RELAY_ATTEST_TYPE_DEFAULT "SimEnclave"
#define CLST_HOST_RELAY_ATTEST_API_DEFAULT  "2022-08-01"

struct clst_host_relay_config {
    /* https://host[:port] of the attestation service (POST /attest/{type}) and of the vault
     * (POST /keys/{name}/{version}/release). Either may be NULL: that relay is not offered, and
     * the enclave's request fails saying which option is missing. */
    const char *attest_url;
    const char *vault_url;
    /* PEM CA bundle pinned for both (NULL: the system's roots). Its first certificate is also
     * what the enclave trusts for the release signature when it has no pin of its own. */
    const char *ca_file;
    /* The vault credential: a bearer token, or a file whose first line is one (token wins). */
    const char *token;
    const char *token_file;
    const char *attest_type; /* NULL: CLST_HOST_RELAY_ATTEST_TYPE_DEFAULT */
    const char *attest_api;  /* NULL: CLST_HOST_RELAY_ATTEST_API_DEFAULT */
    unsigned timeout_s;      /* per request; 0: the client's default */
};

/*
 * Registers the host services clst.attest and clst.release, which relay an enclave's attestation
 * and key-release requests (made by clst_enclave_key_release) to the services above over pinned
 * HTTPS. The host sees only public data: evidence, runtime data (a public key), the token and
 * the release JWS whose key is wrapped to the enclave's key. Requests are checked and capped
 * before anything is sent; a service's error (e.g. the vault's 403 naming the failing claim) goes
 * back to the enclave with its message; network and TLS errors say what failed. The settings are
 * copied (the token file is read now). CLST_E_INVAL for a bad URL, CA file or token; at most
 * once per enclave.
 */
enum clst_status clst_host_relay_register(struct clst_host_enclave *e,
                                          const struct clst_host_relay_config *cfg,
                                          struct clst_err *err);

#endif /* CLOISTER_HOST_H */
