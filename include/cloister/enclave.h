/*
 * Cloister enclave SDK, enclave side: what the sensitive part of a program sees.
 *
 * An enclave is an ELF shared object that exports one table, `clst_enclave_table`, naming its entry
 * points (CLST_ENCLAVE_DEFINE below). The host creates the enclave from a signed image
 * (include/cloister/host.h), calls entry points by name with an input and an output buffer, and
 * provides host services (files by handle, time, logging, and relayed requests to the attestation
 * service and the vault). Inside, the enclave can get evidence of its own identity for 64 bytes of
 * report data, seal and unseal data to its measurement or signer, and generate a key pair whose
 * private half never leaves it (for secure key release).
 *
 * The same source runs on every backend. On `sim` (docs/enclaves.md) the enclave runs in a
 * separate, sandboxed process: it has no files, sockets, processes or clocks of its own, only
 * memory, its channel to the host and the services below. Anything else (open(), socket(), exec,
 * ptrace, threads) kills it. Entry points run one at a time, on one thread.
 *
 * Everything an enclave receives from the host (inputs, service replies, the time) is untrusted:
 * the host may lie, replay or withhold. Inputs arrive already copied into enclave memory, so they
 * do not change while an entry point reads them.
 *
 * Functions return CLST_OK or a status (core.h); `err`, where present, may be NULL and receives a
 * message a person can act on. Outputs are written only on success.
 */
#ifndef CLOISTER_ENCLAVE_H
#define CLOISTER_ENCLAVE_H

#include <cloister/core.h>

/* ---- the entry-point table ------------------------------------------------------------------- */

#define CLST_ENCLAVE_ABI_VERSION 1
/* Entry-point and service names: 1..64 bytes of [A-Za-z0-9._-]; names starting with "clst." are
 * the runtime's own. */
#define CLST_ENCLAVE_NAME_MAX  64
#define CLST_ENCLAVE_ENTRY_MAX 256
/* The entry point `cloister run` calls (dispatched to the table's `main`). */
#define CLST_ENCLAVE_MAIN_ENTRY   "clst.main"
#define CLST_ENCLAVE_TABLE_SYMBOL "clst_enclave_table"

/*
 * An entry point reads in[0..in_size), writes at most out_cap bytes to out, sets *out_size and
 * returns CLST_OK, or returns another status (the host's call fails with it, and with the message
 * set by clst_enclave_set_error). `out` is NULL when out_cap is 0.
 */
struct clst_enclave_entry {
    const char *name;
    enum clst_status (*fn)(const uint8_t *in, size_t in_size, uint8_t *out, size_t out_cap,
                           size_t *out_size);
};

struct clst_enclave_table {
    uint32_t abi_version; /* CLST_ENCLAVE_ABI_VERSION */
    uint32_t entry_count; /* at most CLST_ENCLAVE_ENTRY_MAX */
    const struct clst_enclave_entry *entries;
    /* Optional main-like entry point for `cloister run IMAGE -- ARGS`: argv[0] is the image name;
     * the return value (0..255) becomes the exit status. */
    int (*main)(int argc, char **argv);
};

#define CLST_ENCLAVE_EXPORT __attribute__((visibility("default")))

/* Defines the table from an array of entries and an optional main (or NULL). */
#define CLST_ENCLAVE_DEFINE(entries_array, main_fn)                                                \
    CLST_ENCLAVE_EXPORT const struct clst_enclave_table clst_enclave_table = {                     \
        CLST_ENCLAVE_ABI_VERSION, (uint32_t)(sizeof(entries_array) / sizeof((entries_array)[0])),  \
        (entries_array), (main_fn)}

/* An enclave with only a main. */
#define CLST_ENCLAVE_DEFINE_MAIN(main_fn)                                                          \
    CLST_ENCLAVE_EXPORT const struct clst_enclave_table clst_enclave_table = {                     \
        CLST_ENCLAVE_ABI_VERSION, 0, NULL, (main_fn)}

/* Sets the message the host sees when the current entry point returns a failure status
 * (printf-style, truncated to 255 bytes). */
void clst_enclave_set_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- identity and evidence ------------------------------------------------------------------- */

#define CLST_ENCLAVE_MEASUREMENT_SIZE  48 /* SHA-384 */
#define CLST_ENCLAVE_SIGNER_SIZE       32 /* SHA-256 of the signer's public key */
#define CLST_ENCLAVE_REPORT_DATA_SIZE  64
#define CLST_ENCLAVE_EVIDENCE_MAX_SIZE 4096

/* What the platform measured when it loaded the enclave (docs/enclaves.md, "Measurement"). */
struct clst_enclave_identity {
    uint8_t mrenclave[CLST_ENCLAVE_MEASUREMENT_SIZE];
    uint8_t mrsigner[CLST_ENCLAVE_SIGNER_SIZE];
    uint16_t product_id;
    uint16_t svn;
    bool debug;        /* signed --debug: the host may inspect the enclave's memory */
    uint32_t heap_mib; /* the heap limit from the manifest */
};

enum clst_status clst_enclave_identity_get(struct clst_enclave_identity *out);

/*
 * Evidence from the platform that this enclave (its real measurement, signer, product id, svn and
 * debug flag) asked for `report_data`. On sim, the evidence format is docs/evidence-sim.md. The
 * evidence bytes are written to out (out_cap >= CLST_ENCLAVE_EVIDENCE_MAX_SIZE always suffices).
 */
enum clst_status
clst_enclave_evidence_get(const uint8_t report_data[static CLST_ENCLAVE_REPORT_DATA_SIZE],
                          uint8_t *out, size_t out_cap, size_t *out_size, struct clst_err *err);

/* Evidence binding runtime data: report data = SHA-256(runtime_data) || 32 zero bytes. */
enum clst_status clst_enclave_evidence_bind(const uint8_t *runtime_data, size_t runtime_data_size,
                                            uint8_t *out, size_t out_cap, size_t *out_size,
                                            struct clst_err *err);

/* ---- sealing (docs/sealing.md) ----------------------------------------------------------------
 */

enum clst_enclave_seal_policy {
    /* Only an enclave with exactly this measurement can unseal. */
    CLST_SEAL_TO_MEASUREMENT = 1,
    /* Any enclave from the same signer and product id whose svn is at least the sealer's. */
    CLST_SEAL_TO_SIGNER = 2,
};

#define CLST_SEAL_HEADER_SIZE   116
#define CLST_SEAL_TAG_SIZE      16
#define CLST_SEAL_OVERHEAD      (CLST_SEAL_HEADER_SIZE + CLST_SEAL_TAG_SIZE)
#define CLST_SEAL_MAX_PLAINTEXT (64u * 1024 * 1024)

/*
 * Seals `in` (at most CLST_SEAL_MAX_PLAINTEXT bytes) with AES-256-GCM under a key the platform
 * derives from its sealing secret and this enclave's identity; `aad` (may be empty) is
 * authenticated but not stored. The blob (in_size + CLST_SEAL_OVERHEAD bytes) records the policy,
 * the identity it is bound to and this enclave's svn.
 */
enum clst_status clst_enclave_seal(enum clst_enclave_seal_policy policy, const uint8_t *aad,
                                   size_t aad_size, const uint8_t *in, size_t in_size, uint8_t *out,
                                   size_t out_cap, size_t *out_size, struct clst_err *err);
/*
 * Unseals a blob made by clst_enclave_seal with the same aad. CLST_E_VERIFY when the blob is bound
 * to another measurement, signer, product or debug mode, or was altered; CLST_E_DENIED when it
 * was sealed by a higher svn than ours; CLST_E_MALFORMED when it does not parse. The plaintext
 * (blob_size - CLST_SEAL_OVERHEAD bytes) goes to out.
 */
enum clst_status clst_enclave_unseal(const uint8_t *aad, size_t aad_size, const uint8_t *blob,
                                     size_t blob_size, uint8_t *out, size_t out_cap,
                                     size_t *out_size, struct clst_err *err);

/* ---- host services -----------------------------------------------------------------------------
 */

/*
 * Calls the host service `service` with `in` and receives at most out_cap bytes of reply. The
 * reply is untrusted. CLST_E_NOTFOUND when the host has no such service; CLST_E_LIMIT when the
 * reply does not fit or the host did not answer within the service timeout.
 */
enum clst_status clst_enclave_host_call(const char *service, const void *in, size_t in_size,
                                        void *out, size_t out_cap, size_t *out_size,
                                        struct clst_err *err);

/* Files the host offers by name (`cloister run --in NAME=PATH --out NAME=PATH`; "stdout" and
 * "stderr" under `cloister run`). Reads and writes are sequential; at most
 * CLST_ENCLAVE_FILE_IO_MAX bytes per read call (writes of any size are split). */
#define CLST_ENCLAVE_FILE_READ   1u
#define CLST_ENCLAVE_FILE_WRITE  2u
#define CLST_ENCLAVE_FILE_IO_MAX (1024u * 1024)

enum clst_status clst_enclave_file_open(const char *name, unsigned mode, uint32_t *out_handle,
                                        struct clst_err *err);
/* *out_size is 0 at the end of the file. */
enum clst_status clst_enclave_file_read(uint32_t handle, void *buf, size_t cap, size_t *out_size,
                                        struct clst_err *err);
enum clst_status clst_enclave_file_write(uint32_t handle, const void *data, size_t size,
                                         struct clst_err *err);

/* The host's wall clock (untrusted: never use it for security decisions). */
enum clst_status clst_enclave_time(int64_t *out_sec, uint32_t *out_nsec);

/* Logs through the host (best effort; never pass secrets). */
void clst_enclave_log(enum clst_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Formats and writes to the host file "stdout" (at most 4096 bytes per call). */
enum clst_status clst_enclave_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- in-enclave key pair for secure key release -----------------------------------------------
 */

/*
 * An RSA key pair generated inside the enclave. Its public half goes into runtime data as a JWK;
 * the vault wraps a released key to it; the private half never leaves the enclave.
 */
struct clst_enclave_keypair;

/* bits: 2048..4096, a multiple of 8 (0 means 3072). kid: the JWK's "kid" (NULL: "clst-enclave"). */
enum clst_status clst_enclave_keypair_new(unsigned bits, const char *kid,
                                          struct clst_enclave_keypair **out, struct clst_err *err);
void clst_enclave_keypair_free(struct clst_enclave_keypair *kp);

/*
 * Runtime data naming the public key: compact JSON
 *   {"keys":[{"e":…,"key_ops":["encrypt"],"kid":…,"kty":"RSA","n":…}]}
 * with "nonce" added when nonce is not NULL (what an attestation service puts in x-ms-runtime; the
 * vault wraps released keys to the first RSA key of "keys").
 */
enum clst_status clst_enclave_keypair_runtime_data(const struct clst_enclave_keypair *kp,
                                                   const char *nonce, uint8_t *out, size_t out_cap,
                                                   size_t *out_size, struct clst_err *err);

/* Wrapping algorithms a released key may come in. */
enum clst_enclave_wrap_alg {
    CLST_WRAP_RSA_AES_KEY_WRAP = 1, /* "CKM_RSA_AES_KEY_WRAP": RSA-OAEP-SHA1 + AES-KWP */
    CLST_WRAP_RSA_AES_KEY_WRAP_256, /* "RSA_AES_KEY_WRAP_256": OAEP with SHA-256 */
    CLST_WRAP_RSA_AES_KEY_WRAP_384, /* "RSA_AES_KEY_WRAP_384": OAEP with SHA-384 */
};

/* Parses the "enc" names above (CLST_E_NOTFOUND for others). */
enum clst_status clst_enclave_wrap_alg_parse(const char *name, enum clst_enclave_wrap_alg *out);

/* Unwraps key material wrapped to kp's public key; the key bytes go to out (wiped on failure). */
enum clst_status clst_enclave_keypair_unwrap(const struct clst_enclave_keypair *kp,
                                             enum clst_enclave_wrap_alg alg, const uint8_t *wrapped,
                                             size_t wrapped_size, uint8_t *out, size_t out_cap,
                                             size_t *out_size, struct clst_err *err);

/* ---- key release from the vault, inside the enclave (docs/enclaves.md, "Key release") ---------
 */

/*
 * A key the vault released to this enclave. `material` is the key itself, in secret memory:
 *   oct ("oct", "oct-HSM"):  the raw key bytes (16, 24 or 32 for AES keys);
 *   RSA ("RSA", "RSA-HSM") and EC ("EC", "EC-HSM"): the private key as PKCS#8 DER (what the
 *   vault's key_hsm carries; checked inside against the public key the release states).
 */
struct clst_enclave_released_key {
    char kty[16];  /* the JWK's kty: "oct-HSM"/"oct", "RSA-HSM"/"RSA", "EC-HSM"/"EC" */
    char kid[512]; /* the key's id URL (.../keys/NAME/VERSION) */
    struct clst_secret *material; /* see above */
};

#define CLST_ENCLAVE_RELEASE_PIN_SIZE 32 /* SHA-256 */

/*
 * Pins the vault CA that must sign releases: the SHA-256 of the DER of the vault's CA certificate
 * (`cloister serve`'s DIR/ca.pem: `openssl x509 -in ca.pem -outform DER | sha256sum`). The
 * release JWS's x5c chain must end in exactly that certificate. Without a pin, the CA is the one
 * the host relays (`cloister run --ca`), and each release logs a warning saying so: then the
 * host could hand the enclave a key of its own choosing (docs/enclaves.md explains what each
 * choice protects against). Pin from a constant compiled into the image to have the measurement
 * cover the pin. Stays set for the life of the enclave; a second call replaces it.
 */
enum clst_status
clst_enclave_key_release_pin(const uint8_t ca_sha256[static CLST_ENCLAVE_RELEASE_PIN_SIZE]);

/*
 * Secure key release of vault key `name` (version NULL or "": the current one), entirely inside
 * the enclave: a fresh RSA-3072 key pair is made inside; runtime data names its public JWK and a
 * fresh nonce; evidence binds SHA-256(runtime data); the host relays the evidence to the
 * attestation service (host service clst.attest) and the token to the vault's release endpoint
 * (clst.release); the release JWS is verified here (x5c chain to the pinned CA, RS256), must name
 * the requested key, our nonce and our key, and its key_hsm is unwrapped here. The host sees only
 * the evidence, the runtime data (a public key), the token and the wrapped key.
 *
 * Failures name the step: "attestation refused: …" (the service's message), "release denied: …"
 * (the vault's message, e.g. the failing claim of the release policy), "attestation failed: …"
 * and "release failed: …" (no answer: network or TLS errors, or the host offers no relay),
 * "release signature invalid: …", "release not for this request: …", "unwrap failed: …".
 * CLST_E_DENIED for a refusal by a service, CLST_E_VERIFY when the answer does not verify,
 * CLST_E_NOTFOUND for an unknown key or a missing relay, CLST_E_IO when no answer came.
 * *out is written only on success; release it with clst_enclave_released_key_cleanup.
 */
enum clst_status clst_enclave_key_release(const char *name, const char *version,
                                          struct clst_enclave_released_key *out,
                                          struct clst_err *err);
/* Wipes and frees the material; the struct is zeroed. NULL and a zeroed struct are no-ops. */
void clst_enclave_released_key_cleanup(struct clst_enclave_released_key *k);

struct clst_envelope_provider; /* envelope.h */

/*
 * An envelope provider (include/cloister/envelope.h) for .clst files whose header names this
 * vault key (reference kind vault, the same name and version; the URL in the header is not
 * used): it unwraps the file key locally with the released material, as the vault would (RSA
 * keys: RSA-OAEP-256, also RSA-OAEP; oct keys: A128KW/A192KW/A256KW by the key's size), and
 * encrypts to the key too (same algorithms; the header names the kid's URL, name and version).
 * EC keys cannot wrap (CLST_E_INVAL). The provider copies what it needs: `k` may be cleaned up
 * after. Free it with clst_envelope_provider_free. Inside the enclave, decrypt with one thread
 * (clst_envelope_decrypt_mem(..., 1, ...)): the sandbox has no threads.
 */
enum clst_status clst_enclave_released_key_provider(const struct clst_enclave_released_key *k,
                                                    struct clst_envelope_provider **out,
                                                    struct clst_err *err);

#endif /* CLOISTER_ENCLAVE_H */
