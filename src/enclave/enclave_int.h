/*
 * Private to src/enclave: the wire formats shared by the host and the enclave runtime (frames,
 * the shared-memory channel, built-in service payloads), the signed-image manifest, the sealed
 * blob header, and the internal entry points of the host, the runtime and the sandbox.
 * docs/enclaves.md and docs/sealing.md describe the same formats for people.
 */
#ifndef CLST_ENCLAVE_INT_H
#define CLST_ENCLAVE_INT_H

#include <stdatomic.h>
#include <sys/types.h>

#include <cloister/core.h>
#include <cloister/enclave.h>
#include <cloister/evidence.h>
#include <cloister/host.h>

#include <jansson.h>
#include <openssl/x509.h>

/* ---- process interface of the loader --------------------------------------------------------- */

#define ENCL_LOADER_NAME   "cloister-enclave-loader"
#define ENCL_LOADER_ENV    "CLOISTER_ENCLAVE_LOADER"
#define ENCL_LOADER_MARKER "--clst-enclave-loader-v1"
#define ENCL_FD_CONTROL    3 /* a socket on which the host hands over the image and channel */
#define ENCL_FD_LOADER     4 /* the loader binary itself (closed at once) */
/* The hand-over: this 8-byte message with two descriptors (SCM_RIGHTS): the sealed image memfd
 * and the sealed channel memfd, in that order. */
#define ENCL_HANDOFF_MSG  "CLSTGO01"
#define ENCL_HANDOFF_SIZE 8
/*
 * The loader template (docs/enclaves.md, 4): the loader started with this marker initializes
 * itself once and then only forks loaders. The host asks for one with this 8-byte message and one
 * descriptor (SCM_RIGHTS), the new loader's control socket. The template clones a child with
 * CLONE_PARENT (so that the host is its parent: it reaps it and reads its exit status). The child
 * announces itself on that socket with ENCL_FORKED_MSG and its pid (int32, host order), then
 * takes the descriptor as ENCL_FD_CONTROL and continues as a loader; when the clone fails, the
 * template answers instead, with minus the errno.
 */
#define ENCL_TEMPLATE_MARKER "--clst-enclave-template-v1"
#define ENCL_FORK_MSG        "CLSTFK01"
#define ENCL_FORKED_MSG      "CLSTPID1"
#define ENCL_FORK_SIZE       8
#define ENCL_FORKED_SIZE     12

/* Descriptor passing on the control sockets (fdpass.c): one message of exactly `size` bytes with
 * exactly `nfds` (at most FDPASS_MAX) descriptors. fdpass_recv returns `size`, 0 when the peer
 * closed the socket, or -1 (a refused message: every descriptor it carried is closed). */
#define FDPASS_MAX 2
bool fdpass_send(int sock, const void *msg, size_t size, const int *fds, size_t nfds);
ssize_t fdpass_recv(int sock, void *msg, size_t size, int *fds, size_t nfds);

/* Exit statuses of the enclave process (the note in shared memory says more). */
#define ENCL_EXIT_OK       0
#define ENCL_EXIT_LOAD     3   /* the loader could not start the enclave */
#define ENCL_EXIT_PROTOCOL 4   /* the host broke the channel protocol */
#define ENCL_EXIT_SANDBOX  159 /* a system call outside the allow-list (128 + SIGSYS) */

/* ---- frames ------------------------------------------------------------------------------------
 */

/*
 * Every message is one frame: a 32-byte header (little-endian), then name_size bytes of name,
 * then payload_size bytes of payload.
 *
 *   0  4 magic "CLFR"        16 2 name_size
 *   4  1 version (1)         18 2 reserved (0)
 *   5  1 type                20 4 payload_size
 *   6  2 flags (0)           24 8 aux: out_cap for CALL/OCALL, 0 otherwise
 *   8  4 seq
 *  12  4 status (RETURN/ORET/READY; 0 otherwise)
 */
#define FRAME_HDR_SIZE    32
#define FRAME_VERSION     1
#define FRAME_ERR_MSG_MAX 255 /* a failure's payload is its message */

enum frame_type {
    FRAME_CALL = 1,   /* host -> enclave: call entry point `name` */
    FRAME_RETURN = 2, /* enclave -> host: result of the current call */
    FRAME_OCALL = 3,  /* enclave -> host: call host service `name` */
    FRAME_ORET = 4,   /* host -> enclave: result of a host service */
    FRAME_READY = 5,  /* enclave -> host, once: loaded (status OK) or failed (message) */
    FRAME_EXIT = 6,   /* host -> enclave: exit now */
};

enum frame_dir {
    FRAME_H2E = 1, /* what the enclave accepts */
    FRAME_E2H = 2, /* what the host accepts */
};

struct frame_hdr {
    uint8_t type;
    uint32_t seq;
    uint32_t status;
    uint16_t name_size;
    uint32_t payload_size;
    uint64_t aux;
};

/* Hard caps the receiver applies before reading a byte of name or payload. */
struct frame_limits {
    uint64_t max_payload; /* CALL/OCALL/RETURN/ORET payload and aux */
};

#define READY_PAYLOAD_MAX (16u * 1024)

void frame_hdr_encode(const struct frame_hdr *h, uint8_t out[static FRAME_HDR_SIZE]);
/* Validates everything the header alone can tell: magic, version, a type allowed in `dir`, flags
 * and reserved zero, name size for the type, status in range, sizes within `lim`. */
enum clst_status frame_hdr_decode(const uint8_t in[static FRAME_HDR_SIZE], enum frame_dir dir,
                                  const struct frame_limits *lim, struct frame_hdr *out,
                                  struct clst_err *err);
/* 1..CLST_ENCLAVE_NAME_MAX bytes of [A-Za-z0-9._-]. */
bool frame_name_valid(const uint8_t *name, size_t size);
bool frame_name_valid_str(const char *name);
/* A status number from the peer (0..CLST_E_INTERNAL). */
bool frame_status_valid(uint32_t status);
/* Copies a peer's message into out (NUL-terminated), replacing bytes outside printable ASCII. */
void frame_msg_sanitize(const uint8_t *msg, size_t size, char *out, size_t out_cap);

/* ---- payloads of the runtime's own messages -------------------------------------------------- */

#define SVC_LOG        "clst.log"
#define SVC_TIME       "clst.time"
#define SVC_FILE_OPEN  "clst.file.open"
#define SVC_FILE_READ  "clst.file.read"
#define SVC_FILE_WRITE "clst.file.write"
#define SVC_EVIDENCE   "clst.platform.evidence"
#define SVC_SEALKEY    "clst.platform.sealkey"

#define SVC_LOG_MAX      4096
#define SVC_FILE_MAX     64 /* files a host may offer */
#define SVC_MAX          64 /* services a host may register */
#define MAIN_ARGC_MAX    1024
#define MAIN_ARGS_MAX    (1024u * 1024)
#define SEALKEY_REQ_SIZE 40
#define SEAL_KEY_SIZE    32
#define SEAL_KEY_ID_SIZE 32

/* READY (enclave -> host) payload. */
#define READY_FLAG_LOCKED   0x1u /* mlockall succeeded */
#define READY_FLAG_HAS_MAIN 0x2u
#define READY_FLAG_HEAP     0x4u /* RLIMIT_DATA was applied */
#define READY_VERSION       1
struct ready_info {
    uint32_t flags;
    int32_t lock_errno;     /* why memory is not locked (0 when locked or not tried) */
    uint64_t memlock_limit; /* RLIMIT_MEMLOCK soft limit seen by the enclave (UINT64_MAX: none) */
    uint32_t entry_count;
    char entries[CLST_ENCLAVE_ENTRY_MAX][CLST_ENCLAVE_NAME_MAX + 1];
};
enum clst_status ready_encode(const struct ready_info *r, struct clst_buf *out);
enum clst_status ready_decode(const uint8_t *p, size_t size, struct ready_info *out,
                              struct clst_err *err);

/* Service requests (enclave -> host), decoded by the host. */
struct svc_log_req {
    uint8_t level;
    const uint8_t *text;
    size_t text_size;
};
enum clst_status svc_log_decode(const uint8_t *p, size_t size, struct svc_log_req *out,
                                struct clst_err *err);
struct svc_open_req {
    uint32_t mode;
    char name[CLST_ENCLAVE_NAME_MAX + 1];
};
enum clst_status svc_open_decode(const uint8_t *p, size_t size, struct svc_open_req *out,
                                 struct clst_err *err);
struct svc_read_req {
    uint32_t handle;
    uint32_t max;
};
enum clst_status svc_read_decode(const uint8_t *p, size_t size, struct svc_read_req *out,
                                 struct clst_err *err);
struct svc_write_req {
    uint32_t handle;
    const uint8_t *data;
    size_t data_size;
};
enum clst_status svc_write_decode(const uint8_t *p, size_t size, struct svc_write_req *out,
                                  struct clst_err *err);
struct svc_sealkey_req {
    uint16_t policy;
    uint16_t svn;
    uint8_t key_id[SEAL_KEY_ID_SIZE];
};
enum clst_status svc_sealkey_decode(const uint8_t *p, size_t size, struct svc_sealkey_req *out,
                                    struct clst_err *err);
void svc_sealkey_encode(const struct svc_sealkey_req *r, uint8_t out[static SEALKEY_REQ_SIZE]);

/* Replies (host -> enclave), decoded by the enclave. */
enum clst_status svc_time_decode(const uint8_t *p, size_t size, int64_t *sec, uint32_t *nsec,
                                 struct clst_err *err);
enum clst_status svc_u32_decode(const uint8_t *p, size_t size, uint32_t *out, struct clst_err *err);

/*
 * clst.main's input: u32 argc (1..MAIN_ARGC_MAX), then argc times (u32 size, bytes without NUL);
 * total at most MAIN_ARGS_MAX. decode builds a NULL-terminated argv in one allocation (free()).
 */
enum clst_status main_args_encode(int argc, char *const *argv, struct clst_buf *out);
enum clst_status main_args_decode(const uint8_t *p, size_t size, int *out_argc, char ***out_argv,
                                  struct clst_err *err);

/* ---- the shared-memory channel --------------------------------------------------------------- */

/*
 * The channel is one sealed memfd: a 4 KiB control page, then the host->enclave ring, then the
 * enclave->host ring (ring_size bytes each). Each ring is single-producer single-consumer over
 * 64-bit monotonic byte counters; each side writes only its own counter and treats the other's as
 * untrusted (a counter that would put more than ring_size bytes in flight is a protocol error).
 * Wake-ups are futexes on sequence words the writer bumps after publishing.
 */
#define CHAN_CTRL_SIZE 4096
#define CHAN_MAGIC     0x4e414843u /* "CHAN" */
#define CHAN_VERSION   1

#define INIT_FLAG_DEBUG       0x1u
#define INIT_FLAG_SPIN        0x2u
#define INIT_FLAG_KEEP_STDERR 0x4u

/* Written by the host before the enclave starts; the enclave copies it once and validates it. */
struct chan_init {
    uint32_t magic;
    uint32_t version;
    uint64_t ring_size;
    uint64_t max_message;
    uint32_t flags;
    uint32_t spin_us;
    uint32_t service_timeout_ms; /* UINT32_MAX: none */
    uint32_t host_pid;
    struct clst_enclave_identity identity;
};

#define NOTE_NONE     0
#define NOTE_SANDBOX  1 /* a forbidden system call */
#define NOTE_PROTOCOL 2 /* the host broke the protocol */
#define NOTE_LOAD     3 /* the loader failed */
#define NOTE_MSG_SIZE 256

/* Written by a dying enclave; the host copies and validates it after the process is gone. */
struct chan_note {
    _Atomic uint32_t kind;
    int32_t syscall_nr;
    uint32_t arch;
    char msg[NOTE_MSG_SIZE];
};

struct ring_ctl {
    _Alignas(64) _Atomic uint64_t head; /* written by the producer */
    _Atomic uint32_t data_seq;          /* futex: bumped by the producer after publishing */
    _Atomic uint32_t consumer_waiting;
    _Atomic int32_t producer_cpu;
    _Alignas(64) _Atomic uint64_t tail; /* written by the consumer */
    _Atomic uint32_t space_seq;         /* futex: bumped by the consumer after consuming */
    _Atomic uint32_t producer_waiting;
    _Atomic int32_t consumer_cpu;
};

struct chan_ctrl {
    struct chan_init init;
    _Alignas(64) struct chan_note note;
    _Alignas(64) struct ring_ctl h2e;
    _Alignas(64) struct ring_ctl e2h;
};

_Static_assert(sizeof(struct chan_ctrl) <= CHAN_CTRL_SIZE, "control page overflow");

/* How a side waits (copied from the init block on the enclave side). */
struct chan_wait {
    bool spin;
    uint64_t spin_ns;
    /* Called every CHAN_ALIVE_SLICE_NS while blocked; false means the peer is gone. */
    bool (*alive)(void *ctx);
    void *alive_ctx;
    uint64_t slice_ns; /* how often `alive` is asked while blocked */
    uint64_t spins, sleeps, spins_skipped;
    bool timed_out; /* set when a wait ended at its deadline */
};

#define CHAN_HOST_SLICE_NS    (20ull * 1000 * 1000)  /* host: a dead enclave is seen in 20 ms */
#define CHAN_ENCLAVE_SLICE_NS (250ull * 1000 * 1000) /* enclave: an idle one wakes 4 times/s */
#define CHAN_NO_DEADLINE      UINT64_MAX

/* One end of one ring, in process-private memory. */
struct ring {
    struct ring_ctl *ctl;
    uint8_t *data;
    uint64_t cap;  /* a power of two */
    uint64_t pos;  /* our counter: head when producing, tail when consuming */
    uint64_t peer; /* the peer's counter as last read and validated */
    bool producer;
};

void ring_init(struct ring *r, struct ring_ctl *ctl, uint8_t *data, uint64_t cap, bool producer);
/* Producer: copies n bytes in, waiting for space (and publishing what is written first). */
enum clst_status ring_write(struct ring *r, struct chan_wait *w, const void *src, size_t n,
                            uint64_t deadline, struct clst_err *err);
/* Producer: makes everything written visible and wakes the consumer if it sleeps. */
void ring_publish(struct ring *r);
/* Consumer: copies n bytes out (dst NULL: discards them), waiting for data. */
enum clst_status ring_read(struct ring *r, struct chan_wait *w, void *dst, size_t n,
                           uint64_t deadline, struct clst_err *err);
/* Consumer: returns the space read so far to the producer. */
void ring_release(struct ring *r);
/* Consumer: true when at least one byte is ready (for polling without blocking). */
bool ring_ready(struct ring *r);

/* Sends one frame (header, name, payload) and publishes it. */
enum clst_status frame_send(struct ring *r, struct chan_wait *w, const struct frame_hdr *h,
                            const char *name, const void *payload, uint64_t deadline,
                            struct clst_err *err);
/* Receives and validates a header. */
enum clst_status frame_recv_hdr(struct ring *r, struct chan_wait *w, enum frame_dir dir,
                                const struct frame_limits *lim, struct frame_hdr *out,
                                uint64_t deadline, struct clst_err *err);
/* Receives and validates a name of h->name_size bytes into out (NUL-terminated). */
enum clst_status frame_recv_name(struct ring *r, struct chan_wait *w, const struct frame_hdr *h,
                                 char out[static CLST_ENCLAVE_NAME_MAX + 1], uint64_t deadline,
                                 struct clst_err *err);

/* futex helpers (shared, not private: the words live in a MAP_SHARED mapping). */
int chan_futex_wait(_Atomic uint32_t *word, uint32_t expect, uint64_t timeout_ns);
void chan_futex_wake(_Atomic uint32_t *word);
uint64_t chan_now_ns(void);
uint64_t chan_deadline(uint32_t timeout_ms);

/* ---- signed images -----------------------------------------------------------------------------
 */

/*
 * A signed image is the ELF bytes, then the manifest, then a 16-byte trailer:
 *   u32 manifest_size, u32 0, "CLSTENC1"
 * The manifest (little-endian):
 *   0   4 magic "CLMF"          24  8 image_size
 *   4   2 version (1)           32 48 SHA-384 of the image bytes
 *   6   2 sig_alg               80 48 measurement (MRENCLAVE)
 *   8   4 flags (bit 0 debug)  128  2 pubkey_size (1..1024)
 *  12   2 product id           130  N signer public key, DER SubjectPublicKeyInfo
 *  14   2 svn                   ..  2 sig_size (1..512)
 *  16   4 heap MiB              ..  S signature over bytes [0, 130 + N)
 *  20   4 reserved (0)
 */
#define MANIFEST_MAGIC      "CLMF"
#define MANIFEST_VERSION    1
#define MANIFEST_FIXED_SIZE 130
#define MANIFEST_PUBKEY_MAX 1024
#define MANIFEST_SIG_MAX    512
#define MANIFEST_MAX_SIZE   (MANIFEST_FIXED_SIZE + MANIFEST_PUBKEY_MAX + 2 + MANIFEST_SIG_MAX)
#define MANIFEST_FLAG_DEBUG 0x1u
#define TRAILER_SIZE        16
#define TRAILER_MAGIC       "CLSTENC1"
#define MEASURE_DOMAIN      "CLOISTER-ENCLAVE-MEASUREMENT-V1"

enum manifest_sig_alg {
    SIG_ES256 = 1, /* ECDSA P-256, SHA-256, raw r || s */
    SIG_ES384 = 2, /* ECDSA P-384, SHA-384, raw r || s */
    SIG_PS256 = 3, /* RSA-PSS 2048..4096, SHA-256, MGF1-SHA-256, salt 32 */
};

struct manifest {
    uint16_t version;
    uint16_t sig_alg;
    uint32_t flags;
    uint16_t product_id;
    uint16_t svn;
    uint32_t heap_mib;
    uint64_t image_size;
    uint8_t image_hash[48];
    uint8_t mrenclave[48];
    uint8_t pubkey[MANIFEST_PUBKEY_MAX];
    size_t pubkey_size;
    uint8_t sig[MANIFEST_SIG_MAX];
    size_t sig_size;
    size_t signed_size;
};

/* Splits a signed file into image and manifest (CLST_E_NOTFOUND: no trailer, i.e. unsigned). */
enum clst_status image_split(const uint8_t *file, size_t size, size_t *out_image_size,
                             const uint8_t **out_manifest, size_t *out_manifest_size,
                             struct clst_err *err);
enum clst_status manifest_parse(const uint8_t *p, size_t size, struct manifest *out,
                                struct clst_err *err);
/* The measurement of an image with these identity fields. */
enum clst_status image_measure(const uint8_t *image, size_t image_size, uint32_t flags,
                               uint16_t product_id, uint16_t svn, uint32_t heap_mib,
                               uint8_t out[static 48]);
/* A minimal check that the bytes are an ELF shared object for this machine. */
enum clst_status image_elf_check(const uint8_t *image, size_t size, struct clst_err *err);
/* Verifies a whole signed file (manifest, hash, measurement, signature) and gives the identity. */
enum clst_status image_verify(const uint8_t *file, size_t size, struct clst_enclave_identity *out,
                              struct clst_err *err);
/* Appends the signed file for `elf` (which must not carry a manifest) to out. */
enum clst_status image_sign_bytes(const uint8_t *elf, size_t elf_size, EVP_PKEY *key,
                                  const struct clst_host_sign_params *params, struct clst_buf *out,
                                  struct clst_enclave_identity *id, struct clst_err *err);

/* Reads a file once into a sealed memfd (F_SEAL_WRITE|SHRINK|GROW|SEAL) and maps it read-only. */
struct image_mem {
    int fd;
    const uint8_t *map;
    size_t size;
};
enum clst_status image_mem_load(const char *path, struct image_mem *out, struct clst_err *err);
void image_mem_cleanup(struct image_mem *m);

/* ---- sealing (docs/sealing.md) --------------------------------------------------------------- */

#define SEAL_MAGIC      "CSEL"
#define SEAL_VERSION    1
#define SEAL_FLAG_DEBUG 0x1u

struct seal_hdr {
    uint16_t version;
    uint16_t policy;
    uint16_t svn;
    uint16_t product_id;
    uint32_t flags;
    uint8_t identity[48];
    uint8_t key_id[SEAL_KEY_ID_SIZE];
    uint8_t nonce[12];
    uint64_t plaintext_size;
};

void seal_hdr_encode(const struct seal_hdr *h, uint8_t out[static CLST_SEAL_HEADER_SIZE]);
enum clst_status seal_hdr_parse(const uint8_t *blob, size_t size, struct seal_hdr *out,
                                struct clst_err *err);

/*
 * The platform's derivation (the host side on sim): the key for `policy` and `svn` of the enclave
 * whose real identity is `id`. CLST_E_DENIED when svn is above the enclave's own.
 */
enum clst_status seal_key_derive(const uint8_t secret[static CLST_SIM_SEALING_SECRET_SIZE],
                                 const struct clst_enclave_identity *id, uint16_t policy,
                                 uint16_t svn, const uint8_t key_id[static SEAL_KEY_ID_SIZE],
                                 uint8_t out[static SEAL_KEY_SIZE], struct clst_err *err);

/* Where the enclave side gets sealing keys (the platform request, or a test double). */
struct seal_keysrc {
    enum clst_status (*get)(void *ctx, uint16_t policy, uint16_t svn,
                            const uint8_t key_id[static SEAL_KEY_ID_SIZE],
                            uint8_t out[static SEAL_KEY_SIZE], struct clst_err *err);
    void *ctx;
};

enum clst_status seal_blob(const struct seal_keysrc *ks, const struct clst_enclave_identity *self,
                           enum clst_enclave_seal_policy policy, const uint8_t *aad,
                           size_t aad_size, const uint8_t *in, size_t in_size, uint8_t *out,
                           size_t out_cap, size_t *out_size, struct clst_err *err);
enum clst_status unseal_blob(const struct seal_keysrc *ks, const struct clst_enclave_identity *self,
                             const uint8_t *aad, size_t aad_size, const uint8_t *blob,
                             size_t blob_size, uint8_t *out, size_t out_cap, size_t *out_size,
                             struct clst_err *err);

/* ---- the enclave side -------------------------------------------------------------------------
 */

/* The loader's main(): everything after exec. Returns only on failure before the channel works. */
int rt_main(int argc, char **argv);

/*
 * Test hook, exported to enclaves: writes raw bytes into the enclave->host ring and publishes them,
 * so tests can check that the host rejects malformed and oversized frames. A real enclave has no
 * use for it (and could write the shared memory directly anyway).
 */
void clst_enclave_debug_send_raw(const void *bytes, size_t size);

/* The sandbox (sandbox.c). */
struct sandbox_report {
    bool locked;
    int lock_errno;
    uint64_t memlock_limit;
    bool heap_applied;
};
/* First thing after exec: non-dumpable, no new privileges, no core files. */
enum clst_status sandbox_early(struct clst_err *err);
/* Closes every descriptor except those listed (sorted ascending). */
void sandbox_close_fds(const int *keep, size_t keep_count);
/* Installs the SIGSYS handler that records a forbidden call in the note (once set) and exits. */
enum clst_status sandbox_trap_install(struct clst_err *err);
void sandbox_trap_note(struct chan_note *note);
/* A compiled seccomp filter (BPF program). */
struct sandbox_bpf {
    struct sock_filter *prog;
    unsigned short len;
};
/*
 * Both filters, compiled before the hand-over (no threads, files or sockets are needed to install
 * them later). Stage 1 (before the hand-over and dlopen): kill exec, ptrace, sockets (but
 * receiving on the control socket), process creation and signals to others. Stage 2: the final
 * allow-list (memory, futex, exit, time, randomness; nothing else).
 */
struct sandbox_filters {
    struct sandbox_bpf stage1;
    struct sandbox_bpf stage2;
};
/* Builds both with libseccomp (before the hand-over: it needs a memory file). */
enum clst_status sandbox_filters_build(struct sandbox_filters *out, struct clst_err *err);
void sandbox_filters_free(struct sandbox_filters *f);
/* Install a filter on every thread (TSYNC). */
enum clst_status sandbox_stage1_load(const struct sandbox_filters *f, struct clst_err *err);
enum clst_status sandbox_stage2_load(const struct sandbox_filters *f, struct clst_err *err);
/* Locks memory where allowed (now and future mappings, as pages are touched). */
void sandbox_lock_memory(struct sandbox_report *out);
/* Applies the manifest's heap limit on top of what is allocated now (after the image is loaded). */
void sandbox_limit_heap(uint32_t heap_mib, struct sandbox_report *out);

/* ---- relays: clst.attest and clst.release (relay.c, host_relay.c, rt_release.c) -------------- */

/*
 * A relay message is an 8-byte header, then `count` fields, each a u32 size (little-endian) and
 * that many bytes; nothing may follow the last field.
 *
 *   0 4 magic "CLRY"   4 1 version (1)   5 1 kind   6 1 count   7 1 reserved (0)
 *
 *   RELAY_ATTEST  (enclave -> host, clst.attest):  evidence, runtime data (JSON text)
 *   RELAY_RELEASE (enclave -> host, clst.release): key name, version ("" = current), attestation
 *                 token, enc, nonce ("" = none)
 *   RELAY_REPLY   (host -> enclave, both):         status (4 bytes, LE), HTTP status (4 bytes,
 *                 LE; 0 when no HTTP answer came), body (the token or the release JWS on success,
 *                 otherwise a message), CA (release replies: the PEM the host pins; may be empty)
 *
 * Every field has its own cap and alphabet (below); decoders allocate nothing and point into the
 * (already copied) input.
 */
#define RELAY_HDR_SIZE     8
#define RELAY_MAGIC        "CLRY"
#define RELAY_VERSION      1
#define RELAY_FIELDS_MAX   5
#define RELAY_RUNTIME_MAX  (64u * 1024)
#define RELAY_TOKEN_MAX    (64u * 1024) /* CLST_JWS_MAX_SIZE */
#define RELAY_NAME_MAX     127
#define RELAY_VERSION_SIZE 32
#define RELAY_ENC_MAX      32
#define RELAY_NONCE_MAX    128
#define RELAY_MSG_MAX      2048
#define RELAY_CA_MAX       (64u * 1024)
#define RELAY_REPLY_MAX    (RELAY_HDR_SIZE + 4 * 4 + 8 + RELAY_TOKEN_MAX + RELAY_CA_MAX)
#define RELAY_REQUEST_MAX  (RELAY_HDR_SIZE + 5 * 4 + RELAY_TOKEN_MAX + 512)

#define SVC_ATTEST  "clst.attest"
#define SVC_RELEASE "clst.release"

enum relay_kind {
    RELAY_ATTEST = 1,
    RELAY_RELEASE = 2,
    RELAY_REPLY = 3,
};

struct relay_field {
    const uint8_t *p;
    size_t size;
};

struct relay_attest_req {
    struct relay_field evidence; /* 1..CLST_ENCLAVE_EVIDENCE_MAX_SIZE bytes */
    struct relay_field runtime;  /* 1..RELAY_RUNTIME_MAX bytes of printable ASCII */
};

struct relay_release_req {
    char name[RELAY_NAME_MAX + 1];        /* 1..127 of [0-9A-Za-z-] */
    char version[RELAY_VERSION_SIZE + 1]; /* "" or 32 lower-case hex */
    struct relay_field token;             /* 1..RELAY_TOKEN_MAX of [A-Za-z0-9._-] */
    char enc[RELAY_ENC_MAX + 1];          /* one of the clst_enclave_wrap_alg names */
    char nonce[RELAY_NONCE_MAX + 1];      /* "" or 1..128 of [A-Za-z0-9_-] */
};

struct relay_reply {
    uint32_t status;         /* a clst_status */
    uint32_t http;           /* 0, or 100..599 */
    struct relay_field body; /* OK: 1..RELAY_TOKEN_MAX; otherwise 1..RELAY_MSG_MAX; printable */
    struct relay_field ca;   /* 0..RELAY_CA_MAX of PEM text */
};

/* Appends a relay message of `count` (1..RELAY_FIELDS_MAX) fields to out. */
enum clst_status relay_encode(enum relay_kind kind, const struct relay_field *fields, size_t count,
                              struct clst_buf *out);
enum clst_status relay_attest_decode(const uint8_t *p, size_t size, struct relay_attest_req *out,
                                     struct clst_err *err);
enum clst_status relay_release_decode(const uint8_t *p, size_t size, struct relay_release_req *out,
                                      struct clst_err *err);
enum clst_status relay_reply_decode(const uint8_t *p, size_t size, struct relay_reply *out,
                                    struct clst_err *err);
/* Encodes a reply (status and HTTP status as 4-byte fields). */
enum clst_status relay_reply_encode(enum clst_status status, uint32_t http, const void *body,
                                    size_t body_size, const void *ca, size_t ca_size,
                                    struct clst_buf *out);
/* Field alphabets, shared by both sides. */
bool relay_key_name_ok(const char *s, size_t n);
bool relay_version_ok(const char *s, size_t n);
bool relay_token_ok(const uint8_t *s, size_t n);
bool relay_nonce_ok(const char *s, size_t n);

/* The host side's relay state (host_relay.c), freed with the enclave. */
struct host_relay;
void host_relay_free(struct host_relay *r);
/* The services themselves, exposed for the unit tests (ctx is a struct host_relay). */
enum clst_status host_relay_attest(void *ctx, const uint8_t *in, size_t in_size,
                                   struct clst_buf *out, struct clst_err *err);
enum clst_status host_relay_release(void *ctx, const uint8_t *in, size_t in_size,
                                    struct clst_buf *out, struct clst_err *err);
enum clst_status host_relay_new(const struct clst_host_relay_config *cfg, struct host_relay **out,
                                struct clst_err *err);

/*
 * The enclave side's check of a release (rt_release.c), pure so that tests can feed it forged
 * answers: verifies the JWS (x5c chain to `roots` at time `now`, RS256 with the leaf), that its
 * payload names key `name` (and `version` when not empty), `nonce`, `enc` and `tee_kid`, and
 * returns the key's kty, kid and the wrapped key_hsm ciphertext (a new buffer in *out_ct).
 */
struct release_expect {
    const char *name;
    const char *version; /* "" = any */
    const char *nonce;
    const char *enc;
    const char *tee_kid;
};
struct release_opened {
    char kty[16];
    char kid[512];
    struct clst_buf ct; /* key_hsm ciphertext (caller cleans up) */
    json_t *key;        /* the released JWK (public members), caller json_decref()s */
};
enum clst_status release_verify(const char *jws, size_t jws_size, STACK_OF(X509) *roots,
                                const uint8_t *pin, int64_t now, const struct release_expect *want,
                                struct release_opened *out, struct clst_err *err);

/* ---- host-side hooks for tests ------------------------------------------------------------- */

/* Writes raw bytes into the host->enclave ring and publishes them. */
enum clst_status clst_host_enclave_debug_send_raw(struct clst_host_enclave *e, const void *bytes,
                                                  size_t size, struct clst_err *err);

#endif /* CLST_ENCLAVE_INT_H */
