/*
 * Whole .clst files, streaming: header || body with the body's context = SHA-256(header).
 *
 * Trust boundary (decryption): header bytes are collected up to the size announced in its fixed
 * part (capped at CLST_ENVELOPE_HEADER_MAX_SIZE), parsed strictly, and handed to the providers;
 * the body layer then checks the commitment, which authenticates the header as well, before any
 * chunk is opened. Failures are sticky.
 */
#include "envelope/envelope_int.h"

#include <stdlib.h>
#include <string.h>

/* ---- encryption --------------------------------------------------------------------------- */

struct clst_envelope_enc {
    uint8_t header[CLST_ENVELOPE_HEADER_MAX_SIZE];
    size_t header_size;
    bool header_done;
    struct clst_envelope_body *body;
};

enum clst_status
clst_envelope_enc_new(struct clst_envelope_provider *provider,
                      const struct clst_envelope_meta *meta, size_t meta_count,
                      struct clst_envelope_enc **out, struct clst_err *err)
{
    enum clst_status rc;
    struct clst_envelope_enc *e = NULL;
    uint8_t ikm[CLST_ENVELOPE_KEY_SIZE];
    uint8_t ctx[CLST_SHA256_SIZE];

    if (out == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "envelope: no output");
    }
    e = calloc(1, sizeof(*e));
    if (e == NULL) {
        return clst_err_set(err, CLST_E_NOMEM, "out of memory");
    }
    rc = clst_env_make_header(provider, meta, meta_count, e->header, sizeof(e->header),
                              &e->header_size, ikm, err);
    if (rc != CLST_OK) {
        goto out;
    }
    rc = clst_env_context(e->header, e->header_size, ctx);
    if (rc != CLST_OK) {
        clst_err_set(err, rc, "cannot hash the header");
        goto out;
    }
    rc = clst_envelope_body_enc_new(ikm, sizeof(ikm), ctx, sizeof(ctx), NULL, &e->body, err);
    if (rc != CLST_OK) {
        goto out;
    }
    *out = e;
    e = NULL;
out:
    clst_wipe(ikm, sizeof(ikm));
    clst_envelope_enc_free(e);
    return rc;
}

void
clst_envelope_enc_free(struct clst_envelope_enc *e)
{
    if (e == NULL) {
        return;
    }
    clst_envelope_body_free(e->body);
    free(e);
}

const uint8_t *
clst_envelope_enc_header(const struct clst_envelope_enc *e, size_t *out_size)
{
    if (e == NULL || out_size == NULL) {
        return NULL;
    }
    *out_size = e->header_size;
    return e->header;
}

size_t
clst_envelope_enc_max_output(const struct clst_envelope_enc *e, size_t in_size)
{
    size_t body;
    size_t head;

    if (e == NULL) {
        return 0;
    }
    body = clst_envelope_body_max_output(e->body, in_size);
    head = e->header_done ? 0 : e->header_size;
    return body > SIZE_MAX - head ? SIZE_MAX : body + head;
}

enum clst_status
clst_envelope_enc_update(struct clst_envelope_enc *e, const uint8_t *in, size_t in_size,
                         uint8_t *out, size_t out_cap, size_t *out_size, struct clst_err *err)
{
    enum clst_status rc;
    size_t head;
    size_t n = 0;

    if (e == NULL || out == NULL || out_size == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "envelope: missing argument");
    }
    if (clst_envelope_enc_max_output(e, in_size) > out_cap) {
        return clst_err_set(err, CLST_E_LIMIT, "envelope: output buffer of %zu bytes is too small",
                            out_cap);
    }
    head = e->header_done ? 0 : e->header_size;
    rc = clst_envelope_body_update(e->body, in, in_size, out + head, out_cap - head, &n, err);
    if (rc != CLST_OK) {
        return rc;
    }
    if (head > 0) {
        memcpy(out, e->header, head);
        e->header_done = true;
    }
    *out_size = head + n;
    return CLST_OK;
}

enum clst_status
clst_envelope_enc_final(struct clst_envelope_enc *e, uint8_t *out, size_t out_cap,
                        size_t *out_size, struct clst_err *err)
{
    enum clst_status rc;
    size_t head;
    size_t n = 0;

    if (e == NULL || out == NULL || out_size == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "envelope: missing argument");
    }
    head = e->header_done ? 0 : e->header_size;
    if (head > out_cap) {
        return clst_err_set(err, CLST_E_LIMIT, "envelope: output buffer of %zu bytes is too small",
                            out_cap);
    }
    rc = clst_envelope_body_final(e->body, out + head, out_cap - head, &n, err);
    if (rc != CLST_OK) {
        return rc;
    }
    if (head > 0) {
        memcpy(out, e->header, head);
        e->header_done = true;
    }
    *out_size = head + n;
    return CLST_OK;
}

/* ---- decryption --------------------------------------------------------------------------- */

enum dec_state {
    DS_HEADER,
    DS_BODY,
    DS_FAILED,
};

struct clst_envelope_dec {
    enum dec_state state;
    struct clst_err fail;
    struct clst_envelope_provider **providers;
    size_t provider_count;
    uint8_t hbuf[CLST_ENVELOPE_HEADER_MAX_SIZE];
    size_t hbuf_size;
    size_t header_size; /* 0 until the fixed part has been read */
    struct clst_envelope_header header;
    struct clst_envelope_body *body;
};

enum clst_status
clst_envelope_dec_new(struct clst_envelope_provider *const *providers, size_t provider_count,
                      struct clst_envelope_dec **out)
{
    struct clst_envelope_dec *d;

    if (out == NULL || (providers == NULL && provider_count > 0)) {
        return CLST_E_INVAL;
    }
    d = calloc(1, sizeof(*d));
    if (d == NULL) {
        return CLST_E_NOMEM;
    }
    if (provider_count > 0) {
        d->providers = calloc(provider_count, sizeof(*d->providers));
        if (d->providers == NULL) {
            free(d);
            return CLST_E_NOMEM;
        }
        memcpy(d->providers, providers, provider_count * sizeof(*d->providers));
    }
    d->provider_count = provider_count;
    d->state = DS_HEADER;
    *out = d;
    return CLST_OK;
}

void
clst_envelope_dec_free(struct clst_envelope_dec *d)
{
    if (d == NULL) {
        return;
    }
    clst_envelope_body_free(d->body);
    free(d->providers);
    free(d);
}

const struct clst_envelope_header *
clst_envelope_dec_header(const struct clst_envelope_dec *d)
{
    if (d == NULL || d->header_size == 0 || d->hbuf_size < d->header_size ||
        d->header.size == 0) {
        return NULL;
    }
    return &d->header;
}

size_t
clst_envelope_dec_max_output(const struct clst_envelope_dec *d, size_t in_size)
{
    if (d == NULL) {
        return 0;
    }
    if (d->state == DS_BODY) {
        return clst_envelope_body_max_output(d->body, in_size);
    }
    /* Header bytes produce nothing; the rest starts an empty body. */
    return (in_size / CLST_ENVELOPE_CT_CHUNK_SIZE) * CLST_ENVELOPE_CHUNK_SIZE;
}

static enum clst_status
dec_fail(struct clst_envelope_dec *d, struct clst_err *err, const struct clst_err *cause)
{
    d->state = DS_FAILED;
    d->fail = *cause;
    if (d->fail.status == CLST_OK) {
        d->fail.status = CLST_E_INTERNAL;
    }
    if (err != NULL) {
        *err = d->fail;
    }
    return d->fail.status;
}

/* The header is complete in hbuf: parse it, unwrap the input key, start the body. */
static enum clst_status
start_body(struct clst_envelope_dec *d, struct clst_err *err)
{
    enum clst_status rc;
    struct clst_err e;
    uint8_t ikm[CLST_ENVELOPE_KEY_SIZE];
    uint8_t ctx[CLST_SHA256_SIZE];

    clst_err_clear(&e);
    rc = clst_envelope_header_parse(d->hbuf, d->header_size, &d->header, &e);
    if (rc == CLST_OK) {
        rc = clst_env_unwrap(d->providers, d->provider_count, &d->header, ikm, &e);
    }
    if (rc == CLST_OK) {
        rc = clst_env_context(d->hbuf, d->header_size, ctx);
        if (rc != CLST_OK) {
            clst_err_set(&e, rc, "cannot hash the header");
        }
    }
    if (rc == CLST_OK) {
        rc = clst_envelope_body_dec_new(ikm, sizeof(ikm), ctx, sizeof(ctx), &d->body, &e);
    }
    clst_wipe(ikm, sizeof(ikm));
    if (rc != CLST_OK) {
        if (e.status == CLST_OK) {
            clst_err_set(&e, rc, "%s", clst_status_str(rc));
        }
        return dec_fail(d, err, &e);
    }
    d->state = DS_BODY;
    return CLST_OK;
}

enum clst_status
clst_envelope_dec_update(struct clst_envelope_dec *d, const uint8_t *in, size_t in_size,
                         uint8_t *out, size_t out_cap, size_t *out_size, struct clst_err *err)
{
    enum clst_status rc;
    struct clst_err e;

    if (d == NULL || out_size == NULL || (in == NULL && in_size > 0)) {
        return clst_err_set(err, CLST_E_INVAL, "envelope: missing argument");
    }
    if (d->state == DS_FAILED) {
        if (err != NULL) {
            *err = d->fail;
        }
        return d->fail.status;
    }
    if (clst_envelope_dec_max_output(d, in_size) > out_cap) {
        return clst_err_set(err, CLST_E_LIMIT, "envelope: output buffer of %zu bytes is too small",
                            out_cap);
    }
    if (d->state == DS_HEADER) {
        /* First the fixed part (to learn the header size), then the rest of the header. */
        size_t want = d->header_size == 0 ? CLST_ENVELOPE_FIXED_SIZE : d->header_size;
        while (d->state == DS_HEADER) {
            size_t take = want - d->hbuf_size;
            if (take > in_size) {
                take = in_size;
            }
            if (take > 0) {
                memcpy(d->hbuf + d->hbuf_size, in, take);
            }
            d->hbuf_size += take;
            in += take;
            in_size -= take;
            if (d->hbuf_size < want) {
                *out_size = 0;
                return CLST_OK;
            }
            if (d->header_size == 0) {
                clst_err_clear(&e);
                rc = clst_envelope_header_peek_size(d->hbuf, d->hbuf_size, &d->header_size, &e);
                if (rc != CLST_OK) {
                    return dec_fail(d, err, &e);
                }
                want = d->header_size;
                continue;
            }
            rc = start_body(d, err);
            if (rc != CLST_OK) {
                return rc;
            }
        }
    }
    if (in_size == 0) {
        *out_size = 0;
        return CLST_OK;
    }
    clst_err_clear(&e);
    rc = clst_envelope_body_update(d->body, in, in_size, out, out_cap, out_size, &e);
    if (rc != CLST_OK) {
        return dec_fail(d, err, &e);
    }
    return CLST_OK;
}

enum clst_status
clst_envelope_dec_final(struct clst_envelope_dec *d, uint8_t *out, size_t out_cap,
                        size_t *out_size, struct clst_err *err)
{
    enum clst_status rc;
    struct clst_err e;

    if (d == NULL || out_size == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "envelope: missing argument");
    }
    if (d->state == DS_FAILED) {
        if (err != NULL) {
            *err = d->fail;
        }
        return d->fail.status;
    }
    if (d->state == DS_BODY && clst_env_body_final_size(d->body) > out_cap) {
        /* A caller error, not sticky. */
        return clst_err_set(err, CLST_E_LIMIT,
                            "envelope: final() needs an output buffer of %zu bytes",
                            clst_env_body_final_size(d->body));
    }
    clst_err_clear(&e);
    if (d->state == DS_HEADER) {
        if (d->hbuf_size == 0) {
            clst_err_set(&e, CLST_E_MALFORMED, "the input is empty, not a .clst file");
        } else if (d->header_size == 0) {
            /* Let the peek explain (wrong magic vs. short file). */
            if (clst_envelope_header_peek_size(d->hbuf, d->hbuf_size, &d->header_size, &e) ==
                CLST_OK) {
                clst_err_set(&e, CLST_E_MALFORMED, "truncated inside the header");
            }
        } else {
            clst_err_set(&e, CLST_E_MALFORMED,
                         "truncated inside the header (%zu of %zu bytes)", d->hbuf_size,
                         d->header_size);
        }
        return dec_fail(d, err, &e);
    }
    rc = clst_envelope_body_final(d->body, out, out_cap, out_size, &e);
    if (rc != CLST_OK) {
        return dec_fail(d, err, &e);
    }
    return CLST_OK;
}
