/*
 * The body of a .clst file: C2SP chunked encryption, instantiated as Cobblestone-256
 * (c2sp.org/chunked-encryption with AEAD_AES_256_GCM and HKDF-Expand-SHA-512).
 *
 *   key || base_nonce || commitment = HKDF-Expand-SHA-512(prk = input key,
 *       info = "c2sp.org/chunked-encryption@v1+" || "AEAD_AES_256_GCM" || 0x00 || salt || ctx)
 *   body = salt(24) || commitment(32) || chunk_0 || ... || chunk_n
 *   chunk_k = AES-256-GCM(key, nonce = base_nonce XOR be96(k), aad = "", 16 KiB of plaintext);
 *   the final chunk holds 0..16383 bytes, so a full chunk is never final and the end of the
 *   message is implied by a short chunk.
 *
 * Trust boundary: the body bytes are untrusted. The commitment is compared (constant time)
 * before any chunk is opened; each chunk's plaintext is released only after its tag verifies;
 * any failure is sticky.
 *
 * CT: the key, nonce, commitment and plaintext do not influence control flow; only lengths do.
 */
#include "envelope/envelope_int.h"

#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#define CHUNK    CLST_ENVELOPE_CHUNK_SIZE
#define CT_CHUNK CLST_ENVELOPE_CT_CHUNK_SIZE
#define PREFIX   CLST_ENVELOPE_PREFIX_SIZE
#define TAG      CLST_ENVELOPE_TAG_SIZE

static const char INFO_PREFIX[] = "c2sp.org/chunked-encryption@v1+";
static const char AEAD_NAME[] = "AEAD_AES_256_GCM";
#define INFO_PREFIX_SIZE (sizeof(INFO_PREFIX) - 1)
#define AEAD_NAME_SIZE   (sizeof(AEAD_NAME) - 1)
#define INFO_MAX_SIZE                                                                              \
    (INFO_PREFIX_SIZE + AEAD_NAME_SIZE + 1 + CLST_ENVELOPE_SALT_SIZE +                             \
     CLST_ENVELOPE_CONTEXT_MAX_SIZE)
#define DERIVED_SIZE (CLST_ENVELOPE_KEY_SIZE + ENV_NONCE_SIZE + CLST_ENVELOPE_COMMITMENT_SIZE)

/*
 * HKDF-Expand is driven through EVP_KDF here rather than clst_hkdf_expand(): the latter follows
 * RFC 5869's "PRK of at least HashLen octets" and refuses a 32-byte PRK with SHA-512, while
 * Cobblestone-256 specifies exactly that (the input key is the PRK; HMAC accepts any key length,
 * and the Wycheproof vectors are computed this way).
 */
enum clst_status
clst_env_derive(const uint8_t *ikm, size_t ikm_size, const uint8_t *salt, const uint8_t *ctx,
                size_t ctx_size, struct clst_env_keys *out, struct clst_err *err)
{
    enum clst_status rc = CLST_E_CRYPTO;
    uint8_t info[INFO_MAX_SIZE];
    uint8_t derived[DERIVED_SIZE];
    size_t n = 0;
    EVP_KDF *kdf = NULL;
    EVP_KDF_CTX *kctx = NULL;
    int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
    char digest[] = "SHA512";
    OSSL_PARAM params[5];

    if (ikm == NULL || salt == NULL || out == NULL || (ctx == NULL && ctx_size > 0)) {
        return clst_err_set(err, CLST_E_INVAL, "chunked encryption: missing key, salt or output");
    }
    if (ikm_size != CLST_ENVELOPE_KEY_SIZE) {
        return clst_err_set(err, CLST_E_INVAL,
                            "chunked encryption: the input key must be %d bytes, not %zu",
                            CLST_ENVELOPE_KEY_SIZE, ikm_size);
    }
    if (ctx_size > CLST_ENVELOPE_CONTEXT_MAX_SIZE) {
        return clst_err_set(err, CLST_E_LIMIT, "chunked encryption: context of %zu bytes (max %d)",
                            ctx_size, CLST_ENVELOPE_CONTEXT_MAX_SIZE);
    }
    memcpy(info, INFO_PREFIX, INFO_PREFIX_SIZE);
    n += INFO_PREFIX_SIZE;
    memcpy(info + n, AEAD_NAME, AEAD_NAME_SIZE);
    n += AEAD_NAME_SIZE;
    info[n++] = 0x00;
    memcpy(info + n, salt, CLST_ENVELOPE_SALT_SIZE);
    n += CLST_ENVELOPE_SALT_SIZE;
    if (ctx_size > 0) {
        memcpy(info + n, ctx, ctx_size);
        n += ctx_size;
    }

    kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    if (kdf == NULL) {
        clst_err_set(err, CLST_E_CRYPTO, "HKDF is not available from OpenSSL");
        goto out;
    }
    kctx = EVP_KDF_CTX_new(kdf);
    if (kctx == NULL) {
        clst_err_set(err, CLST_E_NOMEM, "out of memory");
        rc = CLST_E_NOMEM;
        goto out;
    }
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0);
    params[1] = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode);
    params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)(uintptr_t)ikm,
                                                  ikm_size);
    params[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, n);
    params[4] = OSSL_PARAM_construct_end();
    if (EVP_KDF_derive(kctx, derived, sizeof(derived), params) != 1) {
        clst_err_set(err, CLST_E_CRYPTO, "HKDF-Expand-SHA-512 failed");
        goto out;
    }
    memcpy(out->key, derived, CLST_ENVELOPE_KEY_SIZE);
    memcpy(out->base_nonce, derived + CLST_ENVELOPE_KEY_SIZE, ENV_NONCE_SIZE);
    memcpy(out->commitment, derived + CLST_ENVELOPE_KEY_SIZE + ENV_NONCE_SIZE,
           CLST_ENVELOPE_COMMITMENT_SIZE);
    memcpy(out->salt, salt, CLST_ENVELOPE_SALT_SIZE);
    rc = CLST_OK;
out:
    EVP_KDF_CTX_free(kctx);
    EVP_KDF_free(kdf);
    clst_wipe(derived, sizeof(derived));
    clst_wipe(info, sizeof(info));
    return rc;
}

/* ---- lanes: one keyed AES-GCM context per thread -------------------------------------------- */

enum clst_status
clst_env_lane_init(struct clst_env_lane *l, const struct clst_env_keys *k)
{
    enum clst_status rc = clst_aead_new(k->key, sizeof(k->key), &l->aead);
    if (rc != CLST_OK) {
        l->aead = NULL;
        return rc;
    }
    memcpy(l->base_nonce, k->base_nonce, ENV_NONCE_SIZE);
    return CLST_OK;
}

void
clst_env_lane_cleanup(struct clst_env_lane *l)
{
    if (l == NULL) {
        return;
    }
    clst_aead_free(l->aead);
    l->aead = NULL;
    clst_wipe(l->base_nonce, sizeof(l->base_nonce));
}

/* nonce = base_nonce XOR the counter as a 96-bit big-endian integer (counter < 2^38). */
static void
chunk_nonce(const uint8_t base[ENV_NONCE_SIZE], uint64_t counter, uint8_t out[ENV_NONCE_SIZE])
{
    memcpy(out, base, ENV_NONCE_SIZE);
    for (size_t i = 0; i < 8; i++) {
        out[ENV_NONCE_SIZE - 1 - i] ^= (uint8_t)(counter >> (8 * i));
    }
}

enum clst_status
clst_env_seal_chunk(struct clst_env_lane *l, uint64_t counter, const uint8_t *in, size_t size,
                    uint8_t *out)
{
    uint8_t nonce[ENV_NONCE_SIZE];

    if (counter >= CLST_ENVELOPE_MAX_CHUNKS) {
        return CLST_E_LIMIT;
    }
    chunk_nonce(l->base_nonce, counter, nonce);
    return clst_aead_seal(l->aead, nonce, sizeof(nonce), NULL, 0, in, size, out, out + size, TAG);
}

enum clst_status
clst_env_open_chunk(struct clst_env_lane *l, uint64_t counter, const uint8_t *in, size_t ct_size,
                    uint8_t *out)
{
    uint8_t nonce[ENV_NONCE_SIZE];

    if (counter >= CLST_ENVELOPE_MAX_CHUNKS) {
        return CLST_E_LIMIT;
    }
    if (ct_size < TAG || ct_size > CT_CHUNK) {
        return CLST_E_INVAL;
    }
    chunk_nonce(l->base_nonce, counter, nonce);
    return clst_aead_open(l->aead, nonce, sizeof(nonce), NULL, 0, in, ct_size - TAG,
                          in + ct_size - TAG, TAG, out);
}

/* ---- geometry ------------------------------------------------------------------------------- */

enum clst_status
clst_env_geometry(uint64_t body_size, uint64_t *chunk_count, size_t *final_pt_size,
                  uint64_t *pt_size, struct clst_err *err)
{
    if (body_size < PREFIX) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "truncated: the body is %llu bytes, shorter than its 56-byte "
                            "salt and commitment",
                            (unsigned long long)body_size);
    }
    uint64_t rest = body_size - PREFIX;
    uint64_t full = rest / CT_CHUNK;
    uint64_t last = rest % CT_CHUNK;
    if (last == 0) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "truncated: the body ends at a chunk boundary (after %llu chunks) "
                            "without its short final chunk",
                            (unsigned long long)full);
    }
    if (last < TAG) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "truncated: the final chunk is %llu bytes, shorter than its 16-byte "
                            "tag",
                            (unsigned long long)last);
    }
    if (full + 1 > CLST_ENVELOPE_MAX_CHUNKS) {
        return clst_err_set(err, CLST_E_LIMIT, "the body has more than 2^38 chunks");
    }
    *chunk_count = full + 1;
    *final_pt_size = (size_t)(last - TAG);
    *pt_size = full * CHUNK + (last - TAG);
    return CLST_OK;
}

enum clst_status
clst_envelope_body_size(uint64_t pt_size, uint64_t *out)
{
    uint64_t full = pt_size / CHUNK;
    uint64_t last = pt_size % CHUNK;

    if (out == NULL) {
        return CLST_E_INVAL;
    }
    if (full + 1 > CLST_ENVELOPE_MAX_CHUNKS) {
        return CLST_E_LIMIT;
    }
    /* full < 2^38, so full * CT_CHUNK < 2^53: no overflow. */
    *out = PREFIX + full * CT_CHUNK + last + TAG;
    return CLST_OK;
}

/* ---- the streaming body --------------------------------------------------------------------- */

enum body_state {
    ST_PREFIX, /* decryption: collecting salt || commitment */
    ST_CHUNKS,
    ST_DONE,
    ST_FAILED,
};

struct clst_envelope_body {
    bool encrypt;
    bool prefix_done; /* encryption: salt || commitment emitted */
    enum body_state state;
    struct clst_err fail; /* the sticky error once state == ST_FAILED */
    uint64_t counter;     /* index of the next chunk */
    struct clst_env_keys keys;
    struct clst_env_lane lane;
    uint8_t ikm[CLST_ENVELOPE_KEY_SIZE]; /* decryption: kept until the salt arrives */
    uint8_t ctx[CLST_ENVELOPE_CONTEXT_MAX_SIZE];
    size_t ctx_size;
    size_t buf_size;
    uint8_t buf[CT_CHUNK]; /* a partial chunk (plaintext or ciphertext) or the prefix */
};

static enum clst_status
body_alloc(bool encrypt, struct clst_envelope_body **out)
{
    struct clst_envelope_body *b = clst_secret_alloc_raw(sizeof(*b));
    if (b == NULL) {
        return CLST_E_NOMEM;
    }
    memset(b, 0, sizeof(*b));
    b->encrypt = encrypt;
    b->state = encrypt ? ST_CHUNKS : ST_PREFIX;
    *out = b;
    return CLST_OK;
}

void
clst_envelope_body_free(struct clst_envelope_body *b)
{
    if (b == NULL) {
        return;
    }
    clst_env_lane_cleanup(&b->lane);
    clst_wipe(b, sizeof(*b));
    clst_secret_free_raw(b, sizeof(*b));
}

static enum clst_status
check_key(const uint8_t *key, size_t key_size, const uint8_t *ctx, size_t ctx_size,
          struct clst_err *err)
{
    if (key == NULL || (ctx == NULL && ctx_size > 0)) {
        return clst_err_set(err, CLST_E_INVAL, "chunked encryption: missing key or context");
    }
    if (key_size != CLST_ENVELOPE_KEY_SIZE) {
        return clst_err_set(err, CLST_E_INVAL,
                            "chunked encryption: the input key is %zu bytes; AES-256-GCM needs %d",
                            key_size, CLST_ENVELOPE_KEY_SIZE);
    }
    if (ctx_size > CLST_ENVELOPE_CONTEXT_MAX_SIZE) {
        return clst_err_set(err, CLST_E_LIMIT, "chunked encryption: context of %zu bytes (max %d)",
                            ctx_size, CLST_ENVELOPE_CONTEXT_MAX_SIZE);
    }
    return CLST_OK;
}

enum clst_status
clst_envelope_body_enc_new(const uint8_t *key, size_t key_size, const uint8_t *ctx,
                           size_t ctx_size, const uint8_t *salt, struct clst_envelope_body **out,
                           struct clst_err *err)
{
    enum clst_status rc;
    struct clst_envelope_body *b = NULL;
    uint8_t fresh[CLST_ENVELOPE_SALT_SIZE];

    if (out == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "chunked encryption: no output");
    }
    rc = check_key(key, key_size, ctx, ctx_size, err);
    if (rc != CLST_OK) {
        return rc;
    }
    if (salt == NULL) {
        rc = clst_random(fresh, sizeof(fresh));
        if (rc != CLST_OK) {
            return clst_err_set(err, rc, "cannot draw a random salt");
        }
        salt = fresh;
    }
    rc = body_alloc(true, &b);
    if (rc != CLST_OK) {
        clst_err_set(err, rc, "out of memory");
        goto out;
    }
    rc = clst_env_derive(key, key_size, salt, ctx, ctx_size, &b->keys, err);
    if (rc != CLST_OK) {
        goto out;
    }
    rc = clst_env_lane_init(&b->lane, &b->keys);
    if (rc != CLST_OK) {
        clst_err_set(err, rc, "cannot set up AES-256-GCM");
        goto out;
    }
    *out = b;
    b = NULL;
    rc = CLST_OK;
out:
    clst_envelope_body_free(b);
    return rc;
}

enum clst_status
clst_envelope_body_dec_new(const uint8_t *key, size_t key_size, const uint8_t *ctx,
                           size_t ctx_size, struct clst_envelope_body **out,
                           struct clst_err *err)
{
    enum clst_status rc;
    struct clst_envelope_body *b = NULL;

    if (out == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "chunked encryption: no output");
    }
    rc = check_key(key, key_size, ctx, ctx_size, err);
    if (rc != CLST_OK) {
        return rc;
    }
    rc = body_alloc(false, &b);
    if (rc != CLST_OK) {
        return clst_err_set(err, rc, "out of memory");
    }
    memcpy(b->ikm, key, CLST_ENVELOPE_KEY_SIZE);
    if (ctx_size > 0) {
        memcpy(b->ctx, ctx, ctx_size);
    }
    b->ctx_size = ctx_size;
    *out = b;
    return CLST_OK;
}

const struct clst_env_keys *
clst_env_body_keys(const struct clst_envelope_body *b)
{
    return &b->keys;
}

size_t
clst_env_body_final_size(const struct clst_envelope_body *b)
{
    if (b->encrypt) {
        return (b->prefix_done ? 0 : PREFIX) + b->buf_size + TAG;
    }
    return b->state == ST_CHUNKS && b->buf_size > TAG ? b->buf_size - TAG : 0;
}

void
clst_env_body_set_counter(struct clst_envelope_body *b, uint64_t counter)
{
    b->counter = counter;
}

/* Records a sticky failure and reports it. */
static enum clst_status
body_fail(struct clst_envelope_body *b, struct clst_err *err, enum clst_status status,
          const char *msg)
{
    b->state = ST_FAILED;
    clst_err_set(&b->fail, status, "%s", msg);
    clst_env_lane_cleanup(&b->lane);
    clst_wipe(&b->keys, sizeof(b->keys));
    clst_wipe(b->ikm, sizeof(b->ikm));
    clst_wipe(b->buf, sizeof(b->buf));
    b->buf_size = 0;
    if (err != NULL) {
        *err = b->fail;
    }
    return status;
}

static enum clst_status
body_failed(const struct clst_envelope_body *b, struct clst_err *err)
{
    if (err != NULL) {
        *err = b->fail;
    }
    return b->fail.status;
}

static enum clst_status
chunk_error(struct clst_envelope_body *b, struct clst_err *err, enum clst_status rc)
{
    char msg[CLST_ERR_MSG_SIZE];
    if (rc == CLST_E_LIMIT) {
        return body_fail(b, err, CLST_E_LIMIT,
                         "the message reached 2^38 chunks, the chunked-encryption limit");
    }
    if (rc == CLST_E_VERIFY) {
        snprintf(msg, sizeof(msg),
                 "chunk %llu failed authentication: the file was modified, truncated, "
                 "reordered or spliced",
                 (unsigned long long)b->counter);
        return body_fail(b, err, CLST_E_VERIFY, msg);
    }
    return body_fail(b, err, rc == CLST_E_NOMEM ? CLST_E_NOMEM : CLST_E_CRYPTO,
                     "AES-256-GCM failed inside OpenSSL");
}

/* a + b, or SIZE_MAX when that overflows. */
static size_t
add_sat(size_t a, size_t b)
{
    return a > SIZE_MAX - b ? SIZE_MAX : a + b;
}

size_t
clst_envelope_body_max_output(const struct clst_envelope_body *b, size_t in_size)
{
    size_t total;
    size_t chunks;

    if (b == NULL) {
        return 0;
    }
    total = add_sat(b->buf_size, in_size);
    if (b->encrypt) {
        chunks = total / CHUNK;
        if (chunks > (SIZE_MAX - PREFIX) / CT_CHUNK) {
            return SIZE_MAX;
        }
        return (b->prefix_done ? 0 : PREFIX) + chunks * CT_CHUNK;
    }
    /* Decryption never yields more plaintext than whole chunks of the buffered + new input. */
    return (total / CT_CHUNK) * CHUNK;
}

static size_t
min_size(size_t a, size_t b)
{
    return a < b ? a : b;
}

static enum clst_status
enc_update(struct clst_envelope_body *b, const uint8_t *in, size_t in_size, uint8_t *out,
           size_t *pos, struct clst_err *err)
{
    enum clst_status rc;

    if (!b->prefix_done) {
        memcpy(out, b->keys.salt, CLST_ENVELOPE_SALT_SIZE);
        memcpy(out + CLST_ENVELOPE_SALT_SIZE, b->keys.commitment, CLST_ENVELOPE_COMMITMENT_SIZE);
        *pos += PREFIX;
        b->prefix_done = true;
    }
    if (b->buf_size > 0) {
        size_t take = min_size(CHUNK - b->buf_size, in_size);
        memcpy(b->buf + b->buf_size, in, take);
        b->buf_size += take;
        in += take;
        in_size -= take;
        if (b->buf_size < CHUNK) {
            return CLST_OK;
        }
        rc = clst_env_seal_chunk(&b->lane, b->counter, b->buf, CHUNK, out + *pos);
        if (rc != CLST_OK) {
            return chunk_error(b, err, rc);
        }
        b->counter++;
        *pos += CT_CHUNK;
        b->buf_size = 0;
    }
    /* Whole chunks go straight from the caller's input to the caller's output: no copy. */
    while (in_size >= CHUNK) {
        rc = clst_env_seal_chunk(&b->lane, b->counter, in, CHUNK, out + *pos);
        if (rc != CLST_OK) {
            return chunk_error(b, err, rc);
        }
        b->counter++;
        *pos += CT_CHUNK;
        in += CHUNK;
        in_size -= CHUNK;
    }
    if (in_size > 0) {
        memcpy(b->buf, in, in_size);
        b->buf_size = in_size;
    }
    return CLST_OK;
}

static enum clst_status
check_prefix(struct clst_envelope_body *b, struct clst_err *err)
{
    enum clst_status rc;
    struct clst_err derr;

    rc = clst_env_derive(b->ikm, sizeof(b->ikm), b->buf, b->ctx, b->ctx_size, &b->keys, &derr);
    clst_wipe(b->ikm, sizeof(b->ikm));
    if (rc != CLST_OK) {
        return body_fail(b, err, rc, derr.msg);
    }
    if (!clst_ct_equal(b->keys.commitment, b->buf + CLST_ENVELOPE_SALT_SIZE,
                       CLST_ENVELOPE_COMMITMENT_SIZE)) {
        return body_fail(b, err, CLST_E_VERIFY,
                         "key commitment mismatch: wrong key, or the header, salt or commitment "
                         "was modified");
    }
    rc = clst_env_lane_init(&b->lane, &b->keys);
    if (rc != CLST_OK) {
        return body_fail(b, err, rc, "cannot set up AES-256-GCM");
    }
    b->state = ST_CHUNKS;
    b->buf_size = 0;
    return CLST_OK;
}

static enum clst_status
dec_update(struct clst_envelope_body *b, const uint8_t *in, size_t in_size, uint8_t *out,
           size_t *pos, struct clst_err *err)
{
    enum clst_status rc;

    if (b->state == ST_PREFIX) {
        size_t take = min_size(PREFIX - b->buf_size, in_size);
        memcpy(b->buf + b->buf_size, in, take);
        b->buf_size += take;
        in += take;
        in_size -= take;
        if (b->buf_size < PREFIX) {
            return CLST_OK;
        }
        rc = check_prefix(b, err);
        if (rc != CLST_OK) {
            return rc;
        }
    }
    if (b->buf_size > 0) {
        size_t take = min_size(CT_CHUNK - b->buf_size, in_size);
        memcpy(b->buf + b->buf_size, in, take);
        b->buf_size += take;
        in += take;
        in_size -= take;
        if (b->buf_size < CT_CHUNK) {
            return CLST_OK;
        }
        /* A full-size chunk is never the final one: open it now. */
        rc = clst_env_open_chunk(&b->lane, b->counter, b->buf, CT_CHUNK, out + *pos);
        if (rc != CLST_OK) {
            return chunk_error(b, err, rc);
        }
        b->counter++;
        *pos += CHUNK;
        b->buf_size = 0;
    }
    while (in_size >= CT_CHUNK) {
        rc = clst_env_open_chunk(&b->lane, b->counter, in, CT_CHUNK, out + *pos);
        if (rc != CLST_OK) {
            return chunk_error(b, err, rc);
        }
        b->counter++;
        *pos += CHUNK;
        in += CT_CHUNK;
        in_size -= CT_CHUNK;
    }
    if (in_size > 0) {
        memcpy(b->buf, in, in_size);
        b->buf_size = in_size;
    }
    return CLST_OK;
}

enum clst_status
clst_envelope_body_update(struct clst_envelope_body *b, const uint8_t *in, size_t in_size,
                          uint8_t *out, size_t out_cap, size_t *out_size, struct clst_err *err)
{
    enum clst_status rc;
    size_t pos = 0;

    if (b == NULL || out_size == NULL || (in == NULL && in_size > 0)) {
        return clst_err_set(err, CLST_E_INVAL, "chunked encryption: missing argument");
    }
    if (b->state == ST_FAILED) {
        return body_failed(b, err);
    }
    if (b->state == ST_DONE) {
        return clst_err_set(err, CLST_E_INVAL, "chunked encryption: update after final");
    }
    if (clst_envelope_body_max_output(b, in_size) > out_cap) {
        return clst_err_set(err, CLST_E_LIMIT,
                            "chunked encryption: output buffer of %zu bytes is too small",
                            out_cap);
    }
    if (out == NULL && clst_envelope_body_max_output(b, in_size) > 0) {
        return clst_err_set(err, CLST_E_INVAL, "chunked encryption: no output buffer");
    }
    rc = b->encrypt ? enc_update(b, in, in_size, out, &pos, err)
                    : dec_update(b, in, in_size, out, &pos, err);
    if (rc != CLST_OK) {
        if (pos > 0) {
            clst_wipe(out, pos);
        }
        return rc;
    }
    *out_size = pos;
    return CLST_OK;
}

enum clst_status
clst_envelope_body_final(struct clst_envelope_body *b, uint8_t *out, size_t out_cap,
                         size_t *out_size, struct clst_err *err)
{
    enum clst_status rc;
    size_t pos = 0;
    size_t need;

    if (b == NULL || out_size == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "chunked encryption: missing argument");
    }
    if (b->state == ST_FAILED) {
        return body_failed(b, err);
    }
    if (b->state == ST_DONE) {
        return clst_err_set(err, CLST_E_INVAL, "chunked encryption: final called twice");
    }
    need = clst_env_body_final_size(b);
    if (need > out_cap || (out == NULL && need > 0)) {
        return clst_err_set(err, CLST_E_LIMIT,
                            "chunked encryption: output buffer of %zu bytes is too small",
                            out_cap);
    }
    if (b->encrypt) {
        if (!b->prefix_done) {
            memcpy(out, b->keys.salt, CLST_ENVELOPE_SALT_SIZE);
            memcpy(out + CLST_ENVELOPE_SALT_SIZE, b->keys.commitment,
                   CLST_ENVELOPE_COMMITMENT_SIZE);
            pos = PREFIX;
            b->prefix_done = true;
        }
        /* The final chunk is always shorter than CHUNK (possibly empty). */
        rc = clst_env_seal_chunk(&b->lane, b->counter, b->buf, b->buf_size, out + pos);
        if (rc != CLST_OK) {
            return chunk_error(b, err, rc);
        }
        pos += b->buf_size + TAG;
    } else {
        if (b->state == ST_PREFIX) {
            return body_fail(b, err, CLST_E_MALFORMED,
                             "truncated: the body ends inside its 56-byte salt and commitment");
        }
        if (b->buf_size == 0) {
            return body_fail(b, err, CLST_E_MALFORMED,
                             "truncated: the body ends at a chunk boundary without its short "
                             "final chunk");
        }
        if (b->buf_size < TAG) {
            return body_fail(b, err, CLST_E_MALFORMED,
                             "truncated: the final chunk is shorter than its 16-byte tag");
        }
        rc = clst_env_open_chunk(&b->lane, b->counter, b->buf, b->buf_size, out);
        if (rc != CLST_OK) {
            return chunk_error(b, err, rc);
        }
        pos = b->buf_size - TAG;
    }
    b->counter++;
    b->state = ST_DONE;
    clst_wipe(b->buf, sizeof(b->buf));
    b->buf_size = 0;
    *out_size = pos;
    return CLST_OK;
}
