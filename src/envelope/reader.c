/*
 * Random access to a .clst file (or a bare C2SP body): plaintext byte i lives in chunk
 * i / 16384, and chunk k sits at body offset 56 + k * 16400.
 *
 * Trust boundary: the source is untrusted. open() checks the commitment, derives the number of
 * chunks from the source size (rejecting impossible lengths) and authenticates that length by
 * decrypting the final chunk at its expected index; read() verifies every chunk it touches.
 * Failures are sticky.
 */
#define _POSIX_C_SOURCE 200809L
#include "envelope/envelope_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK    CLST_ENVELOPE_CHUNK_SIZE
#define CT_CHUNK CLST_ENVELOPE_CT_CHUNK_SIZE
#define PREFIX   CLST_ENVELOPE_PREFIX_SIZE

struct clst_envelope_reader {
    struct clst_envelope_source src;
    bool failed;
    struct clst_err fail;
    uint64_t body_off;    /* where the body starts in the source */
    uint64_t chunk_count; /* including the final chunk */
    size_t final_pt_size;
    uint64_t pt_size;
    struct clst_env_keys keys;
    struct clst_env_lane lane;
    uint64_t cached;      /* index of the chunk in `pt`, or UINT64_MAX */
    uint8_t ct[CT_CHUNK];
    uint8_t pt[CHUNK];
};

/* ---- sources ------------------------------------------------------------------------------ */

static enum clst_status
mem_read(void *ctx, uint64_t offset, uint8_t *buf, size_t size)
{
    const uint8_t *data = ctx;
    if (size > 0) {
        memcpy(buf, data + offset, size);
    }
    return CLST_OK;
}

void
clst_envelope_source_mem(const uint8_t *data, size_t size, struct clst_envelope_source *out)
{
    out->read_at = mem_read;
    out->ctx = (void *)(uintptr_t)data;
    out->size = size;
}

static enum clst_status
fd_read(void *ctx, uint64_t offset, uint8_t *buf, size_t size)
{
    int fd = (int)(intptr_t)ctx;
    return clst_env_pread_all(fd, buf, size, offset, NULL);
}

enum clst_status
clst_envelope_source_fd(int fd, struct clst_envelope_source *out, struct clst_err *err)
{
    struct stat st;
    if (out == NULL || fd < 0) {
        return clst_err_set(err, CLST_E_INVAL, "source: bad file descriptor");
    }
    if (fstat(fd, &st) != 0) {
        return clst_err_set(err, CLST_E_IO, "cannot stat the input: %s", strerror(errno));
    }
    if (!S_ISREG(st.st_mode)) {
        return clst_err_set(err, CLST_E_INVAL,
                            "random access needs a regular file, not a pipe or device");
    }
    out->read_at = fd_read;
    out->ctx = (void *)(intptr_t)fd;
    out->size = (uint64_t)st.st_size;
    return CLST_OK;
}

/* ---- the reader --------------------------------------------------------------------------- */

void
clst_envelope_reader_free(struct clst_envelope_reader *r)
{
    if (r == NULL) {
        return;
    }
    clst_env_lane_cleanup(&r->lane);
    clst_wipe(r, sizeof(*r));
    clst_secret_free_raw(r, sizeof(*r));
}

static enum clst_status
reader_alloc(const struct clst_envelope_source *src, struct clst_envelope_reader **out)
{
    struct clst_envelope_reader *r = clst_secret_alloc_raw(sizeof(*r));
    if (r == NULL) {
        return CLST_E_NOMEM;
    }
    memset(r, 0, sizeof(*r));
    r->src = *src;
    r->cached = UINT64_MAX;
    *out = r;
    return CLST_OK;
}

static enum clst_status
src_read(const struct clst_envelope_source *src, uint64_t offset, uint8_t *buf, size_t size,
         struct clst_err *err)
{
    if (offset > src->size || size > src->size - offset) {
        return clst_err_set(err, CLST_E_MALFORMED, "truncated: read past the end of the input");
    }
    enum clst_status rc = src->read_at(src->ctx, offset, buf, size);
    if (rc != CLST_OK) {
        return clst_err_set(err, rc, "cannot read the input at offset %llu",
                            (unsigned long long)offset);
    }
    return CLST_OK;
}

/* Reads and opens chunk k into r->pt. */
static enum clst_status
load_chunk(struct clst_envelope_reader *r, uint64_t k, struct clst_err *err)
{
    enum clst_status rc;
    size_t ct_size = k + 1 == r->chunk_count ? r->final_pt_size + CLST_ENVELOPE_TAG_SIZE
                                             : CT_CHUNK;
    uint64_t off = r->body_off + PREFIX + k * CT_CHUNK;

    if (r->cached == k) {
        return CLST_OK;
    }
    r->cached = UINT64_MAX;
    rc = src_read(&r->src, off, r->ct, ct_size, err);
    if (rc != CLST_OK) {
        return rc;
    }
    rc = clst_env_open_chunk(&r->lane, k, r->ct, ct_size, r->pt);
    if (rc == CLST_E_VERIFY) {
        return clst_err_set(err, CLST_E_VERIFY,
                            "chunk %llu failed authentication: the file was modified, truncated, "
                            "reordered or spliced",
                            (unsigned long long)k);
    }
    if (rc != CLST_OK) {
        return clst_err_set(err, rc, "AES-256-GCM failed on chunk %llu", (unsigned long long)k);
    }
    r->cached = k;
    return CLST_OK;
}

static enum clst_status
reader_fail(struct clst_envelope_reader *r, struct clst_err *err, const struct clst_err *cause)
{
    r->failed = true;
    r->fail = *cause;
    if (r->fail.status == CLST_OK) {
        r->fail.status = CLST_E_INTERNAL;
    }
    r->cached = UINT64_MAX;
    clst_wipe(r->pt, sizeof(r->pt));
    if (err != NULL) {
        *err = r->fail;
    }
    return r->fail.status;
}

/* With the body at body_off and ikm/ctx known: commitment, geometry, final chunk. */
static enum clst_status
open_common(struct clst_envelope_reader *r, const uint8_t *ikm, size_t ikm_size,
            const uint8_t *ctx, size_t ctx_size, struct clst_err *err)
{
    enum clst_status rc;
    uint8_t prefix[PREFIX];

    if (r->src.size < r->body_off) {
        return clst_err_set(err, CLST_E_MALFORMED, "truncated inside the header");
    }
    rc = clst_env_geometry(r->src.size - r->body_off, &r->chunk_count, &r->final_pt_size,
                           &r->pt_size, err);
    if (rc != CLST_OK && r->src.size - r->body_off >= PREFIX) {
        /* Still check the commitment first, so a wrong key is reported as such. */
        struct clst_err e2;
        if (src_read(&r->src, r->body_off, prefix, PREFIX, &e2) == CLST_OK &&
            clst_env_derive(ikm, ikm_size, prefix, ctx, ctx_size, &r->keys, &e2) == CLST_OK &&
            !clst_ct_equal(r->keys.commitment, prefix + CLST_ENVELOPE_SALT_SIZE,
                           CLST_ENVELOPE_COMMITMENT_SIZE)) {
            clst_wipe(&r->keys, sizeof(r->keys));
            return clst_err_set(err, CLST_E_VERIFY,
                                "key commitment mismatch: wrong key, or the header, salt or "
                                "commitment was modified");
        }
        clst_wipe(&r->keys, sizeof(r->keys));
    }
    if (rc != CLST_OK) {
        return rc;
    }
    rc = src_read(&r->src, r->body_off, prefix, PREFIX, err);
    if (rc != CLST_OK) {
        return rc;
    }
    rc = clst_env_derive(ikm, ikm_size, prefix, ctx, ctx_size, &r->keys, err);
    if (rc != CLST_OK) {
        return rc;
    }
    if (!clst_ct_equal(r->keys.commitment, prefix + CLST_ENVELOPE_SALT_SIZE,
                       CLST_ENVELOPE_COMMITMENT_SIZE)) {
        return clst_err_set(err, CLST_E_VERIFY,
                            "key commitment mismatch: wrong key, or the header, salt or "
                            "commitment was modified");
    }
    rc = clst_env_lane_init(&r->lane, &r->keys);
    if (rc != CLST_OK) {
        return clst_err_set(err, rc, "cannot set up AES-256-GCM");
    }
    /* Authenticate the length: the final chunk must open at its index. */
    return load_chunk(r, r->chunk_count - 1, err);
}

enum clst_status
clst_envelope_reader_open_body(const struct clst_envelope_source *src, const uint8_t *key,
                               size_t key_size, const uint8_t *ctx, size_t ctx_size,
                               struct clst_envelope_reader **out, struct clst_err *err)
{
    enum clst_status rc;
    struct clst_envelope_reader *r = NULL;

    if (src == NULL || src->read_at == NULL || key == NULL || out == NULL ||
        (ctx == NULL && ctx_size > 0)) {
        return clst_err_set(err, CLST_E_INVAL, "reader: missing argument");
    }
    if (key_size != CLST_ENVELOPE_KEY_SIZE) {
        return clst_err_set(err, CLST_E_INVAL,
                            "chunked encryption: the input key is %zu bytes; AES-256-GCM needs %d",
                            key_size, CLST_ENVELOPE_KEY_SIZE);
    }
    rc = reader_alloc(src, &r);
    if (rc != CLST_OK) {
        return clst_err_set(err, rc, "out of memory");
    }
    rc = open_common(r, key, key_size, ctx, ctx_size, err);
    if (rc != CLST_OK) {
        goto out;
    }
    *out = r;
    r = NULL;
out:
    clst_envelope_reader_free(r);
    return rc;
}

enum clst_status
clst_envelope_reader_open(const struct clst_envelope_source *src,
                          struct clst_envelope_provider *const *providers, size_t provider_count,
                          struct clst_envelope_reader **out, struct clst_err *err)
{
    enum clst_status rc;
    struct clst_envelope_reader *r = NULL;
    struct clst_envelope_header *h = NULL;
    uint8_t hbuf[CLST_ENVELOPE_HEADER_MAX_SIZE];
    uint8_t ikm[CLST_ENVELOPE_KEY_SIZE];
    uint8_t ctx[CLST_SHA256_SIZE];
    size_t hsize = 0;

    if (src == NULL || src->read_at == NULL || out == NULL ||
        (providers == NULL && provider_count > 0)) {
        return clst_err_set(err, CLST_E_INVAL, "reader: missing argument");
    }
    h = malloc(sizeof(*h));
    if (h == NULL) {
        return clst_err_set(err, CLST_E_NOMEM, "out of memory");
    }
    if (src->size < CLST_ENVELOPE_FIXED_SIZE) {
        size_t n = (size_t)src->size;
        rc = src_read(src, 0, hbuf, n, err);
        if (rc == CLST_OK) {
            rc = clst_envelope_header_peek_size(hbuf, n, &hsize, err);
            if (rc == CLST_OK) {
                rc = clst_err_set(err, CLST_E_MALFORMED, "truncated inside the header");
            }
        }
        goto out;
    }
    rc = src_read(src, 0, hbuf, CLST_ENVELOPE_FIXED_SIZE, err);
    if (rc != CLST_OK) {
        goto out;
    }
    rc = clst_envelope_header_peek_size(hbuf, CLST_ENVELOPE_FIXED_SIZE, &hsize, err);
    if (rc != CLST_OK) {
        goto out;
    }
    if (hsize > src->size) {
        rc = clst_err_set(err, CLST_E_MALFORMED,
                          "truncated inside the header (%llu of %zu bytes)",
                          (unsigned long long)src->size, hsize);
        goto out;
    }
    rc = src_read(src, 0, hbuf, hsize, err);
    if (rc == CLST_OK) {
        rc = clst_envelope_header_parse(hbuf, hsize, h, err);
    }
    if (rc == CLST_OK) {
        rc = clst_env_unwrap(providers, provider_count, h, ikm, err);
    }
    if (rc != CLST_OK) {
        goto out;
    }
    rc = clst_env_context(hbuf, hsize, ctx);
    if (rc != CLST_OK) {
        clst_err_set(err, rc, "cannot hash the header");
        goto out;
    }
    rc = reader_alloc(src, &r);
    if (rc != CLST_OK) {
        clst_err_set(err, rc, "out of memory");
        goto out;
    }
    r->body_off = hsize;
    rc = open_common(r, ikm, sizeof(ikm), ctx, sizeof(ctx), err);
    if (rc != CLST_OK) {
        goto out;
    }
    *out = r;
    r = NULL;
out:
    clst_wipe(ikm, sizeof(ikm));
    clst_envelope_reader_free(r);
    free(h);
    return rc;
}

uint64_t
clst_envelope_reader_size(const struct clst_envelope_reader *r)
{
    return r == NULL ? 0 : r->pt_size;
}

enum clst_status
clst_envelope_reader_read(struct clst_envelope_reader *r, uint64_t offset, uint8_t *out,
                          size_t size, struct clst_err *err)
{
    enum clst_status rc;
    struct clst_err e;
    size_t done = 0;

    if (r == NULL || (out == NULL && size > 0)) {
        return clst_err_set(err, CLST_E_INVAL, "reader: missing argument");
    }
    if (r->failed) {
        if (err != NULL) {
            *err = r->fail;
        }
        return r->fail.status;
    }
    if (offset > r->pt_size || size > r->pt_size - offset) {
        return clst_err_set(err, CLST_E_INVAL,
                            "range %llu+%zu goes past the end of the %llu-byte plaintext",
                            (unsigned long long)offset, size, (unsigned long long)r->pt_size);
    }
    while (done < size) {
        uint64_t pos = offset + done;
        uint64_t k = pos / CHUNK;
        size_t in_chunk = (size_t)(pos % CHUNK);
        size_t avail = (k + 1 == r->chunk_count ? r->final_pt_size : CHUNK) - in_chunk;
        size_t n = size - done < avail ? size - done : avail;
        clst_err_clear(&e);
        rc = load_chunk(r, k, &e);
        if (rc != CLST_OK) {
            if (done > 0) {
                clst_wipe(out, done);
            }
            return reader_fail(r, err, &e);
        }
        memcpy(out + done, r->pt + in_chunk, n);
        done += n;
    }
    return CLST_OK;
}
