/*
 * Cloister envelope: the .clst format for data at rest (docs/format.md specifies it byte for
 * byte).
 *
 *   file = header || body
 *   header = magic, version, suite, key reference, wrap algorithm, wrapped input key, metadata
 *   body   = C2SP chunked encryption (Cobblestone-256, c2sp.org/chunked-encryption):
 *            salt(24) || commitment(32) || 16 KiB AES-256-GCM chunks, the final one shorter
 *   context of the body = SHA-256(header), so a header cannot be moved onto another body.
 *
 * Layers, from the bottom:
 *   clst_envelope_body_*      the C2SP body alone (input key + context), streaming
 *   clst_envelope_header_*    encode / parse the Cloister header (no crypto, allocates nothing)
 *   clst_envelope_provider_*  where the input key comes from: a local key file, a public-key
 *                             recipient, or any external provider (vault, in-TEE released key)
 *   clst_envelope_enc_* / clst_envelope_dec_*   whole files, streaming (init, update, final)
 *   clst_envelope_reader_*    random access to a byte range of a file (or of a bare body)
 *   clst_envelope_encrypt_fd / clst_envelope_decrypt_fd   file descriptors, 2 threads on files
 *
 * Guarantees of every decrypting interface: no plaintext is released before the chunk that
 * holds it has been authenticated; the key commitment is checked before any chunk is decrypted;
 * truncation (at a chunk boundary or anywhere else), appended data, reordered or spliced chunks
 * and a header moved onto another body are all detected; once a decryptor has failed it keeps
 * returning the same error. A streaming decryptor may have released a verified prefix before it
 * detects a later error: callers that must not act on partial data buffer the output, or write
 * it to a temporary file that is discarded on failure (what `cloister decrypt` does).
 */
#ifndef CLOISTER_ENVELOPE_H
#define CLOISTER_ENVELOPE_H

#include <cloister/core.h>

#include <openssl/evp.h>

/* ---- sizes of the body (C2SP chunked encryption, Cobblestone-256) --------------------------- */

#define CLST_ENVELOPE_KEY_SIZE        32    /* input key (AES-256) */
#define CLST_ENVELOPE_SALT_SIZE       24
#define CLST_ENVELOPE_COMMITMENT_SIZE 32
#define CLST_ENVELOPE_PREFIX_SIZE     56    /* salt || commitment */
#define CLST_ENVELOPE_CHUNK_SIZE      16384 /* plaintext bytes of every chunk but the final one */
#define CLST_ENVELOPE_TAG_SIZE        16
#define CLST_ENVELOPE_CT_CHUNK_SIZE   (CLST_ENVELOPE_CHUNK_SIZE + CLST_ENVELOPE_TAG_SIZE)
/* The spec's hard limit: the chunk counter never reaches 2^38. */
#define CLST_ENVELOPE_MAX_CHUNKS      (UINT64_C(1) << 38)
/* Longest context accepted by the body layer (the envelope uses 32 bytes). */
#define CLST_ENVELOPE_CONTEXT_MAX_SIZE 1024

/* ---- sizes and caps of the header ------------------------------------------------------------ */

#define CLST_ENVELOPE_MAGIC_SIZE      8
#define CLST_ENVELOPE_VERSION         1
#define CLST_ENVELOPE_SUITE_C256      1    /* Cobblestone-256: AES-256-GCM, HKDF-SHA-512, 16 KiB */
#define CLST_ENVELOPE_FIXED_SIZE      16   /* magic, version, suite, flags, header_size */
#define CLST_ENVELOPE_HEADER_MAX_SIZE 16384
#define CLST_ENVELOPE_KEY_ID_SIZE     16
#define CLST_ENVELOPE_FINGERPRINT_SIZE 32  /* SHA-256 of the recipient's SubjectPublicKeyInfo */
#define CLST_ENVELOPE_URL_MAX_SIZE    1024
#define CLST_ENVELOPE_NAME_MAX_SIZE   127  /* vault key name */
#define CLST_ENVELOPE_VERSION_MAX_SIZE 64  /* vault key version */
#define CLST_ENVELOPE_ALG_MAX_SIZE    32   /* wrap algorithm name */
#define CLST_ENVELOPE_WRAPPED_MAX_SIZE 1024
#define CLST_ENVELOPE_META_MAX_COUNT  32
#define CLST_ENVELOPE_META_NAME_MAX_SIZE 64
#define CLST_ENVELOPE_META_MAX_SIZE   4096 /* names + values, all entries together */

/* Wrap algorithm names written by the providers of this component. */
#define CLST_ENVELOPE_ALG_A256KW       "A256KW"       /* RFC 3394 under the local key */
#define CLST_ENVELOPE_ALG_RSA_OAEP_256 "RSA-OAEP-256" /* RSA-OAEP, SHA-256, MGF1-SHA-256 */
#define CLST_ENVELOPE_ALG_ECDH_P256    "ECDH-ES-P256+HKDF-SHA256+A256KW"

/* ---- the C2SP body ---------------------------------------------------------------------------- */

/*
 * A streaming encryptor or decryptor of a bare C2SP body. The input key must be 32 bytes
 * (CLST_E_INVAL otherwise) and the context at most CLST_ENVELOPE_CONTEXT_MAX_SIZE bytes.
 *
 * update() consumes all of `in` and writes whole chunks to `out` (which must not overlap `in`);
 * out_cap must be at least clst_envelope_body_max_output(b, in_size) (CLST_E_LIMIT otherwise,
 * with no state change). final() writes the rest: for encryption the final short chunk (and the
 * 56-byte prefix if nothing was written yet: at most 56 + CLST_ENVELOPE_CT_CHUNK_SIZE bytes), for
 * decryption the final chunk's plaintext (at most CLST_ENVELOPE_CHUNK_SIZE - 1 bytes, exactly
 * what is left of the message); a smaller out_cap is refused (CLST_E_LIMIT) without a state
 * change.
 *
 * Decryption writes plaintext only after the chunk's tag is verified. When update() or final()
 * fails, whatever it wrote to `out` is wiped, *out_size is not written, and every later call
 * fails with the same status and message.
 */
struct clst_envelope_body;

/* salt may be NULL (random, the normal case) or 24 bytes to inject (tests, known-answer). */
enum clst_status clst_envelope_body_enc_new(const uint8_t *key, size_t key_size,
                                            const uint8_t *ctx, size_t ctx_size,
                                            const uint8_t *salt, struct clst_envelope_body **out,
                                            struct clst_err *err);
enum clst_status clst_envelope_body_dec_new(const uint8_t *key, size_t key_size,
                                            const uint8_t *ctx, size_t ctx_size,
                                            struct clst_envelope_body **out,
                                            struct clst_err *err);
size_t clst_envelope_body_max_output(const struct clst_envelope_body *b, size_t in_size);
enum clst_status clst_envelope_body_update(struct clst_envelope_body *b, const uint8_t *in,
                                           size_t in_size, uint8_t *out, size_t out_cap,
                                           size_t *out_size, struct clst_err *err);
enum clst_status clst_envelope_body_final(struct clst_envelope_body *b, uint8_t *out,
                                          size_t out_cap, size_t *out_size, struct clst_err *err);
void clst_envelope_body_free(struct clst_envelope_body *b);

/* Body bytes for a plaintext of pt_size bytes (CLST_E_LIMIT past 2^38 chunks). */
enum clst_status clst_envelope_body_size(uint64_t pt_size, uint64_t *out);

/* ---- the header ------------------------------------------------------------------------------- */

enum clst_envelope_ref_kind {
    CLST_ENVELOPE_REF_LOCAL = 1,     /* a local symmetric key, named by its key id */
    CLST_ENVELOPE_REF_RECIPIENT = 2, /* a public key, named by its SPKI fingerprint */
    CLST_ENVELOPE_REF_VAULT = 3,     /* a vault key: URL + key name + version */
};

enum clst_envelope_recipient_type {
    CLST_ENVELOPE_RECIPIENT_RSA = 1,
    CLST_ENVELOPE_RECIPIENT_P256 = 2,
};

/* Which key the input key is wrapped to. Strings are NUL-terminated. */
struct clst_envelope_keyref {
    enum clst_envelope_ref_kind kind;
    uint8_t key_id[CLST_ENVELOPE_KEY_ID_SIZE];                /* LOCAL */
    enum clst_envelope_recipient_type recipient_type;         /* RECIPIENT */
    uint8_t fingerprint[CLST_ENVELOPE_FINGERPRINT_SIZE];      /* RECIPIENT */
    char vault_url[CLST_ENVELOPE_URL_MAX_SIZE + 1];           /* VAULT */
    char key_name[CLST_ENVELOPE_NAME_MAX_SIZE + 1];           /* VAULT */
    char key_version[CLST_ENVELOPE_VERSION_MAX_SIZE + 1];     /* VAULT */
};

/* The wrapped input key and how it was wrapped. */
struct clst_envelope_wrapped {
    char alg[CLST_ENVELOPE_ALG_MAX_SIZE + 1];
    uint8_t data[CLST_ENVELOPE_WRAPPED_MAX_SIZE];
    size_t size;
};

/* One metadata entry as given to the encoder. Names are 1..64 chars of [a-z0-9._-]; values are
 * any bytes (shown escaped by `cloister inspect`). Metadata is authenticated (it is part of the
 * header, which the body's context binds) but NOT encrypted: never put secrets in it. */
struct clst_envelope_meta {
    const char *name;
    const uint8_t *value;
    size_t value_size;
};

/* A parsed header: owned copies of every field (parsing allocates nothing). */
struct clst_envelope_header {
    uint8_t version;
    uint8_t suite;
    size_t size; /* bytes of the encoded header; the body starts here */
    struct clst_envelope_keyref ref;
    struct clst_envelope_wrapped wrapped;
    size_t meta_count;
    struct {
        uint16_t name_off, name_size, value_off, value_size; /* into meta_data */
    } meta[CLST_ENVELOPE_META_MAX_COUNT];
    uint8_t meta_data[CLST_ENVELOPE_META_MAX_SIZE];
};

/*
 * Looks at the first CLST_ENVELOPE_FIXED_SIZE bytes and returns the header's total size. Checks
 * magic, version, suite, flags and the size bounds. CLST_E_MALFORMED when `size` is too short or
 * any check fails (the message says which).
 */
enum clst_status clst_envelope_header_peek_size(const uint8_t *data, size_t size,
                                                size_t *out_size, struct clst_err *err);
/*
 * Parses the header at the start of data[0..size) (trailing bytes are the body and are not
 * looked at). Strict: every length is range-checked, reserved fields must be zero, the fields
 * must end exactly at header_size, names and strings must use their alphabets.
 */
enum clst_status clst_envelope_header_parse(const uint8_t *data, size_t size,
                                            struct clst_envelope_header *out,
                                            struct clst_err *err);
/* Encodes a header; out must have room for CLST_ENVELOPE_HEADER_MAX_SIZE bytes. */
enum clst_status clst_envelope_header_encode(const struct clst_envelope_keyref *ref,
                                             const struct clst_envelope_wrapped *wrapped,
                                             const struct clst_envelope_meta *meta,
                                             size_t meta_count, uint8_t *out, size_t out_cap,
                                             size_t *out_size, struct clst_err *err);
/* Metadata entry i of a parsed header (name is not NUL-terminated). */
enum clst_status clst_envelope_header_meta(const struct clst_envelope_header *h, size_t i,
                                           const char **name, size_t *name_size,
                                           const uint8_t **value, size_t *value_size);

/* ---- key providers ---------------------------------------------------------------------------- */

/*
 * A provider turns the per-file input key into (key reference, wrapped key) when encrypting,
 * and back when decrypting. The format does not change when a new provider is added: a vault
 * writes REF_VAULT with its own wrap algorithm name (e.g. "RSA-OAEP-256", "A256KW"), and an
 * in-TEE provider that received the vault key by secure key release unwraps the same header
 * locally.
 *
 * wrap: fills *out_ref and *out_wrapped for `key`.
 * unwrap: CLST_E_NOTFOUND when this provider does not hold the key `ref` names (err then says
 *         which key the file needs and which one the provider has); CLST_E_VERIFY when it holds
 *         it but the wrapped key does not unwrap; writes exactly CLST_ENVELOPE_KEY_SIZE bytes.
 * Either function may be NULL (an encrypt-only or decrypt-only provider). free may be NULL.
 */
struct clst_envelope_provider_ops {
    const char *name;
    enum clst_status (*wrap)(void *ctx, const uint8_t key[CLST_ENVELOPE_KEY_SIZE],
                             struct clst_envelope_keyref *out_ref,
                             struct clst_envelope_wrapped *out_wrapped, struct clst_err *err);
    enum clst_status (*unwrap)(void *ctx, const struct clst_envelope_keyref *ref,
                               const struct clst_envelope_wrapped *wrapped,
                               uint8_t out_key[CLST_ENVELOPE_KEY_SIZE], struct clst_err *err);
    void (*free)(void *ctx);
};

struct clst_envelope_provider;

/* An external provider (vault, TEE, tests). ops must outlive the provider; ctx is handed to
 * ops->free when the provider is freed. */
enum clst_status clst_envelope_provider_new(const struct clst_envelope_provider_ops *ops,
                                            void *ctx, struct clst_envelope_provider **out);
void clst_envelope_provider_free(struct clst_envelope_provider *p);
const char *clst_envelope_provider_name(const struct clst_envelope_provider *p);

/* A local symmetric key (32 bytes; copied into secret memory). */
enum clst_status clst_envelope_provider_local_new(const uint8_t key[CLST_ENVELOPE_KEY_SIZE],
                                                  struct clst_envelope_provider **out);
/*
 * A public-key recipient: RSA (2048..4096 bits; RSA-OAEP-256) or EC P-256 (ECDH-ES + HKDF-SHA256
 * + A256KW). With a public key the provider can only encrypt; with a private key it can do both.
 * The provider takes its own reference to `key`.
 */
enum clst_status clst_envelope_provider_recipient_new(EVP_PKEY *key,
                                                      struct clst_envelope_provider **out,
                                                      struct clst_err *err);
/*
 * Loads a key file: a Cloister symmetric key file (see clst_envelope_key_*) or a PEM private key
 * (PKCS#8 or traditional). Refuses (CLST_E_DENIED) a file that group or others may read or
 * write, or that is not a regular file, saying how to fix it.
 */
enum clst_status clst_envelope_provider_from_key_file(const char *path,
                                                      struct clst_envelope_provider **out,
                                                      struct clst_err *err);
/* Loads a recipient's public key (PEM SubjectPublicKeyInfo, or a PEM private key whose public
 * part is used) for encryption. */
enum clst_status clst_envelope_provider_from_recipient_file(const char *path,
                                                            struct clst_envelope_provider **out,
                                                            struct clst_err *err);
/* "local key id 0123...", "RSA recipient SHA256:ab12...", "vault key 'k' version 'v' at URL":
 * the key a header names, for messages and `cloister inspect`. */
void clst_envelope_keyref_describe(const struct clst_envelope_keyref *ref, char *out,
                                   size_t out_cap);
/* A human-readable description of the key a provider holds ("local key id 0123...", "RSA-3072
 * recipient SHA256:ab12..."), for messages. */
void clst_envelope_provider_describe(const struct clst_envelope_provider *p, char *out,
                                     size_t out_cap);

/* ---- local symmetric key files ---------------------------------------------------------------- */

/*
 * A key file is the text "cloister-key-v1:" followed by 64 lower-case hex digits (the 32-byte
 * key) and an optional "\n". The key id is the first 16 bytes of
 * HKDF-Expand-SHA-256(prk = key, info = "cloister.envelope.key-id.v1").
 */
#define CLST_ENVELOPE_KEYFILE_PREFIX "cloister-key-v1:"
#define CLST_ENVELOPE_KEYFILE_SIZE   81 /* with the newline */

/* A fresh key file's text (out must be a secret buffer with room for 81 bytes). */
enum clst_status clst_envelope_key_generate(struct clst_buf *out);
enum clst_status clst_envelope_key_parse(const char *text, size_t size,
                                         uint8_t out_key[CLST_ENVELOPE_KEY_SIZE],
                                         struct clst_err *err);
enum clst_status clst_envelope_key_id(const uint8_t key[CLST_ENVELOPE_KEY_SIZE],
                                      uint8_t out_id[CLST_ENVELOPE_KEY_ID_SIZE]);
/* SHA-256 of the public key's SubjectPublicKeyInfo DER. */
enum clst_status clst_envelope_fingerprint(const EVP_PKEY *key,
                                           uint8_t out[CLST_ENVELOPE_FINGERPRINT_SIZE]);

/* ---- whole files, streaming ------------------------------------------------------------------- */

/*
 * Encryptor of a whole .clst file: a fresh random input key is wrapped by `provider`, the header
 * is built, and update()/final() emit header || body. Contracts of update()/final() are those of
 * the body layer, with clst_envelope_enc_max_output().
 */
struct clst_envelope_enc;

enum clst_status clst_envelope_enc_new(struct clst_envelope_provider *provider,
                                       const struct clst_envelope_meta *meta, size_t meta_count,
                                       struct clst_envelope_enc **out, struct clst_err *err);
/* The encoded header (valid for the encryptor's lifetime). */
const uint8_t *clst_envelope_enc_header(const struct clst_envelope_enc *e, size_t *out_size);
size_t clst_envelope_enc_max_output(const struct clst_envelope_enc *e, size_t in_size);
enum clst_status clst_envelope_enc_update(struct clst_envelope_enc *e, const uint8_t *in,
                                          size_t in_size, uint8_t *out, size_t out_cap,
                                          size_t *out_size, struct clst_err *err);
enum clst_status clst_envelope_enc_final(struct clst_envelope_enc *e, uint8_t *out,
                                         size_t out_cap, size_t *out_size, struct clst_err *err);
void clst_envelope_enc_free(struct clst_envelope_enc *e);

/*
 * Decryptor of a whole .clst file. The header is collected from the input, then each provider
 * (in order) is asked to unwrap the input key; the first that holds the key wins. When none does,
 * the error names the key the file needs and the key(s) offered.
 */
struct clst_envelope_dec;

enum clst_status clst_envelope_dec_new(struct clst_envelope_provider *const *providers,
                                       size_t provider_count, struct clst_envelope_dec **out);
/* The parsed header once it has been read (NULL before). */
const struct clst_envelope_header *clst_envelope_dec_header(const struct clst_envelope_dec *d);
size_t clst_envelope_dec_max_output(const struct clst_envelope_dec *d, size_t in_size);
enum clst_status clst_envelope_dec_update(struct clst_envelope_dec *d, const uint8_t *in,
                                          size_t in_size, uint8_t *out, size_t out_cap,
                                          size_t *out_size, struct clst_err *err);
enum clst_status clst_envelope_dec_final(struct clst_envelope_dec *d, uint8_t *out,
                                         size_t out_cap, size_t *out_size, struct clst_err *err);
void clst_envelope_dec_free(struct clst_envelope_dec *d);

/* ---- random access ---------------------------------------------------------------------------- */

/* Something that can be read at an offset: a file (pread) or memory. read_at reads exactly
 * `size` bytes or fails. */
struct clst_envelope_source {
    enum clst_status (*read_at)(void *ctx, uint64_t offset, uint8_t *buf, size_t size);
    void *ctx;
    uint64_t size;
};

/* Sources over memory (data must outlive the source) and over a file descriptor (its size is
 * taken from fstat; the descriptor stays the caller's). */
void clst_envelope_source_mem(const uint8_t *data, size_t size, struct clst_envelope_source *out);
enum clst_status clst_envelope_source_fd(int fd, struct clst_envelope_source *out,
                                         struct clst_err *err);

/*
 * A random-access reader: open() reads the header (or, for open_body, takes a bare body with its
 * key and context), unwraps the input key, checks the commitment and authenticates the plaintext
 * length by decrypting the final chunk. read() then decrypts only the chunks covering
 * [offset, offset + size) (chunk k is at body offset 56 + k * 16400), verifying each. A reader
 * that has failed keeps failing.
 */
struct clst_envelope_reader;

enum clst_status clst_envelope_reader_open(const struct clst_envelope_source *src,
                                           struct clst_envelope_provider *const *providers,
                                           size_t provider_count,
                                           struct clst_envelope_reader **out,
                                           struct clst_err *err);
enum clst_status clst_envelope_reader_open_body(const struct clst_envelope_source *src,
                                                const uint8_t *key, size_t key_size,
                                                const uint8_t *ctx, size_t ctx_size,
                                                struct clst_envelope_reader **out,
                                                struct clst_err *err);
/* Authenticated plaintext size. */
uint64_t clst_envelope_reader_size(const struct clst_envelope_reader *r);
/* CLST_E_INVAL when the range goes past the end. */
enum clst_status clst_envelope_reader_read(struct clst_envelope_reader *r, uint64_t offset,
                                           uint8_t *out, size_t size, struct clst_err *err);
void clst_envelope_reader_free(struct clst_envelope_reader *r);

/* ---- file descriptors ------------------------------------------------------------------------- */

struct clst_envelope_fd_opts {
    /* 0 = automatic (2 threads when both ends are regular files and the input is at least
     * CLST_ENVELOPE_PARALLEL_MIN_SIZE bytes), 1 = one thread, 2 = two threads (files only). */
    unsigned threads;
    /* Called with the input bytes processed so far and the total (0 when unknown); may be NULL;
     * called from one thread only. */
    void (*progress)(void *ctx, uint64_t done, uint64_t total);
    void *progress_ctx;
    const struct clst_envelope_meta *meta; /* encryption only */
    size_t meta_count;
    /* When not NULL, receives the number of bytes written to out_fd, also on failure (so a
     * caller can tell whether any plaintext went out before an error). */
    uint64_t *written;
};

#define CLST_ENVELOPE_PARALLEL_MIN_SIZE ((uint64_t)4 << 20)
/* Chunks each thread seals or opens at a time in memory (clst_envelope_encrypt_mem and
 * decrypt_mem): 256 KiB, so that a batch stays in the core's L2 cache. File to file, the output
 * is written in 256 KiB units aligned on the output's offsets, through one 2 MiB mapping of unit
 * buffers per call, whatever the file size. */
#define CLST_ENVELOPE_BATCH_CHUNKS 16

/*
 * Encrypts everything readable from in_fd into out_fd. When both are regular files the work is
 * split between threads with pread/pwrite from the descriptors' current positions (an output
 * file that extends past the result is truncated, and both descriptors are left at the end);
 * otherwise the data is streamed. Memory use is bounded and does not grow with the input size.
 * opts may be NULL.
 */
enum clst_status clst_envelope_encrypt_fd(int in_fd, int out_fd,
                                          struct clst_envelope_provider *provider,
                                          const struct clst_envelope_fd_opts *opts,
                                          struct clst_err *err);
/*
 * Decrypts in_fd into out_fd. Only authenticated plaintext is written; on failure out_fd may
 * already hold an authenticated prefix (or, on the parallel path, authenticated chunks in
 * several places): the caller discards it. For a regular input file, a truncated or extended
 * body is detected from its size before anything is written.
 */
enum clst_status clst_envelope_decrypt_fd(int in_fd, int out_fd,
                                          struct clst_envelope_provider *const *providers,
                                          size_t provider_count,
                                          const struct clst_envelope_fd_opts *opts,
                                          struct clst_err *err);

/*
 * In-memory encryption of a whole buffer, by `threads` threads (1 or 2). out_cap must be at least
 * clst_envelope_ciphertext_size(header size, in_size); the header size depends on the provider
 * and metadata: CLST_ENVELOPE_HEADER_MAX_SIZE is always enough.
 */
enum clst_status clst_envelope_encrypt_mem(const uint8_t *in, size_t in_size, uint8_t *out,
                                           size_t out_cap, size_t *out_size,
                                           struct clst_envelope_provider *provider,
                                           unsigned threads, struct clst_err *err);
/* In-memory decryption by `threads` threads; out_cap >= plaintext size (at most in_size). On
 * failure out is wiped. */
enum clst_status clst_envelope_decrypt_mem(const uint8_t *in, size_t in_size, uint8_t *out,
                                           size_t out_cap, size_t *out_size,
                                           struct clst_envelope_provider *const *providers,
                                           size_t provider_count, unsigned threads,
                                           struct clst_err *err);

/* header_size + body size for pt_size bytes of plaintext (CLST_E_LIMIT on overflow). */
enum clst_status clst_envelope_ciphertext_size(size_t header_size, uint64_t pt_size,
                                               uint64_t *out);

#endif /* CLOISTER_ENVELOPE_H */
