/* Private to src/envelope: the pieces shared by the body, stream, reader and file code. */
#ifndef CLST_ENVELOPE_INT_H
#define CLST_ENVELOPE_INT_H

#include <cloister/crypto.h>
#include <cloister/envelope.h>

#define ENV_NONCE_SIZE CLST_GCM_NONCE_SIZE

/* The per-file secrets derived from the input key (C2SP "key || base nonce || commitment"). */
struct clst_env_keys {
    uint8_t key[CLST_ENVELOPE_KEY_SIZE];
    uint8_t base_nonce[ENV_NONCE_SIZE];
    uint8_t commitment[CLST_ENVELOPE_COMMITMENT_SIZE];
    uint8_t salt[CLST_ENVELOPE_SALT_SIZE];
};

/*
 * key || base_nonce || commitment = HKDF-Expand-SHA-512(prk = ikm, info = "c2sp.org/chunked-
 * encryption@v1+" || "AEAD_AES_256_GCM" || 0x00 || salt || ctx). ikm must be 32 bytes.
 */
enum clst_status clst_env_derive(const uint8_t *ikm, size_t ikm_size, const uint8_t *salt,
                                 const uint8_t *ctx, size_t ctx_size, struct clst_env_keys *out,
                                 struct clst_err *err);

/* One AES-GCM context keyed for a file: one per thread. */
struct clst_env_lane {
    struct clst_aead *aead;
    uint8_t base_nonce[ENV_NONCE_SIZE];
};

enum clst_status clst_env_lane_init(struct clst_env_lane *l, const struct clst_env_keys *k);
void clst_env_lane_cleanup(struct clst_env_lane *l);
/* Seals `size` (< or = CHUNK_SIZE) bytes as chunk `counter`: out receives size + 16 bytes. */
enum clst_status clst_env_seal_chunk(struct clst_env_lane *l, uint64_t counter, const uint8_t *in,
                                     size_t size, uint8_t *out);
/* Opens chunk `counter` of ct_size (16..16400) bytes into ct_size - 16 bytes of out;
 * CLST_E_VERIFY (and out wiped) when the tag is wrong. */
enum clst_status clst_env_open_chunk(struct clst_env_lane *l, uint64_t counter,
                                     const uint8_t *in, size_t ct_size, uint8_t *out);

/* SHA-256 of the header: the body's context. */
enum clst_status clst_env_context(const uint8_t *header, size_t header_size,
                                  uint8_t out[CLST_SHA256_SIZE]);

/* Generates a fresh input key, has the provider wrap it and encodes the header. */
enum clst_status clst_env_make_header(struct clst_envelope_provider *provider,
                                      const struct clst_envelope_meta *meta, size_t meta_count,
                                      uint8_t *header, size_t header_cap, size_t *header_size,
                                      uint8_t ikm[CLST_ENVELOPE_KEY_SIZE], struct clst_err *err);
/* Asks each provider in turn for the input key of `h`. */
enum clst_status clst_env_unwrap(struct clst_envelope_provider *const *providers,
                                 size_t provider_count, const struct clst_envelope_header *h,
                                 uint8_t ikm[CLST_ENVELOPE_KEY_SIZE], struct clst_err *err);

/* Parses and checks the body geometry: body_size bytes of body (prefix included) hold how many
 * chunks (final one included) and how long the final chunk's plaintext is. */
enum clst_status clst_env_geometry(uint64_t body_size, uint64_t *chunk_count,
                                   size_t *final_pt_size, uint64_t *pt_size,
                                   struct clst_err *err);

/* The derived keys of a body encryptor (to set up more lanes) and a hook for tests. */
const struct clst_env_keys *clst_env_body_keys(const struct clst_envelope_body *b);
/* Bytes the next final() will write (at most CHUNK_SIZE - 1 when decrypting). */
size_t clst_env_body_final_size(const struct clst_envelope_body *b);
/* Tests only: jumps the chunk counter (to exercise the 2^38 limit without 4 PiB of data). */
void clst_env_body_set_counter(struct clst_envelope_body *b, uint64_t counter);

/* The file-descriptor and memory engine with 1 or 2 threads (file.c). */
struct clst_env_par {
    bool encrypt;
    const struct clst_env_keys *keys;
    uint64_t chunk_count;  /* including the final chunk */
    size_t final_pt_size;  /* plaintext bytes of the final chunk (< CHUNK_SIZE) */
    uint64_t in_base;      /* offset of chunk 0's input (plaintext or ciphertext) */
    uint64_t out_base;     /* offset of chunk 0's output */
    int in_fd, out_fd;     /* -1 when memory is used */
    const uint8_t *in_mem; /* memory input (whole input, indexed by offset) */
    uint8_t *out_mem;      /* memory output */
    unsigned threads;
    void (*progress)(void *ctx, uint64_t done, uint64_t total);
    void *progress_ctx;
    uint64_t progress_total;
    uint64_t *written; /* may be NULL: receives the bytes written to out_fd */
};

enum clst_status clst_env_par_run(const struct clst_env_par *job, struct clst_err *err);

/* Reads/writes exactly size bytes at offset (retrying short transfers and EINTR). */
enum clst_status clst_env_pread_all(int fd, uint8_t *buf, size_t size, uint64_t offset,
                                    struct clst_err *err);
enum clst_status clst_env_pwrite_all(int fd, const uint8_t *buf, size_t size, uint64_t offset,
                                     struct clst_err *err);

#endif
