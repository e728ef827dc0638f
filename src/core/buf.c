/* A growable byte buffer with a hard cap (curl's dynbuf idea): a peer can never make it grow
 * past `max`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cloister/core.h>

void
clst_buf_init(struct clst_buf *b, size_t max)
{
    memset(b, 0, sizeof(*b));
    b->max = max;
}

void
clst_buf_init_secret(struct clst_buf *b, size_t max)
{
    clst_buf_init(b, max);
    b->secret = true;
}

static void *
buf_alloc(const struct clst_buf *b, size_t size)
{
    return b->secret ? clst_secret_alloc_raw(size) : malloc(size);
}

static void
buf_release(const struct clst_buf *b, void *p, size_t cap)
{
    if (b->secret) {
        clst_secret_free_raw(p, cap);
    } else {
        free(p);
    }
}

enum clst_status
clst_buf_reserve(struct clst_buf *b, size_t extra)
{
    /* One byte beyond `max` is allowed for the NUL of clst_buf_terminate. */
    if (extra > b->max - b->size || extra >= SIZE_MAX - b->size) {
        return CLST_E_LIMIT;
    }
    size_t need = b->size + extra + 1; /* cannot wrap: checked above */
    if (need <= b->cap) {
        return CLST_OK;
    }
    size_t ncap = b->cap ? b->cap : 64;
    while (ncap < need) {
        ncap = (ncap > SIZE_MAX / 2) ? need : ncap * 2;
    }
    size_t limit = b->max < SIZE_MAX ? b->max + 1 : SIZE_MAX; /* max + 1 wraps at SIZE_MAX */
    if (ncap > limit) {
        ncap = limit;
    }
    uint8_t *p = buf_alloc(b, ncap);
    if (p == NULL) {
        return CLST_E_NOMEM;
    }
    if (b->size > 0) {
        memcpy(p, b->data, b->size);
    }
    /* Copy, then release: secret buffers must not leave a stale copy behind as realloc would. */
    if (b->data != NULL) {
        if (b->secret) {
            clst_wipe(b->data, b->cap);
        }
        buf_release(b, b->data, b->cap);
    }
    b->data = p;
    b->cap = ncap;
    return CLST_OK;
}

enum clst_status
clst_buf_append(struct clst_buf *b, const void *data, size_t size)
{
    if (size == 0) {
        return CLST_OK;
    }
    /* Appending part of the buffer to itself is allowed: remember the offset, because growing
     * moves the data. */
    const uint8_t *src = data;
    bool inside = b->data != NULL && (uintptr_t)src >= (uintptr_t)b->data &&
                  (uintptr_t)src < (uintptr_t)b->data + b->size;
    size_t offset = inside ? (size_t)((uintptr_t)src - (uintptr_t)b->data) : 0;
    enum clst_status rc = clst_buf_reserve(b, size);
    if (rc != CLST_OK) {
        return rc;
    }
    if (inside) {
        src = b->data + offset;
    }
    memmove(b->data + b->size, src, size);
    b->size += size;
    b->data[b->size] = 0;
    return CLST_OK;
}

enum clst_status
clst_buf_append_byte(struct clst_buf *b, uint8_t byte)
{
    return clst_buf_append(b, &byte, 1);
}

enum clst_status
clst_buf_append_str(struct clst_buf *b, const char *s)
{
    return clst_buf_append(b, s, strlen(s));
}

enum clst_status
clst_buf_appendf(struct clst_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        return CLST_E_INVAL;
    }
    enum clst_status rc = clst_buf_reserve(b, (size_t)n);
    if (rc != CLST_OK) {
        return rc;
    }
    va_start(ap, fmt);
    int m = vsnprintf((char *)b->data + b->size, b->cap - b->size, fmt, ap);
    va_end(ap);
    if (m != n) {
        return CLST_E_INTERNAL;
    }
    b->size += (size_t)n;
    return CLST_OK;
}

enum clst_status
clst_buf_terminate(struct clst_buf *b)
{
    if (b->cap < b->size + 1) {
        /* reserve(0) allocates the terminator byte, which is allowed even at max. */
        enum clst_status rc = clst_buf_reserve(b, 0);
        if (rc != CLST_OK) {
            return rc;
        }
    }
    b->data[b->size] = 0;
    return CLST_OK;
}

void
clst_buf_reset(struct clst_buf *b)
{
    if (b->secret && b->data != NULL) {
        clst_wipe(b->data, b->cap);
    }
    b->size = 0;
}

void
clst_buf_cleanup(struct clst_buf *b)
{
    if (b->data != NULL) {
        if (b->secret) {
            clst_wipe(b->data, b->cap);
        }
        buf_release(b, b->data, b->cap);
    }
    b->data = NULL;
    b->size = 0;
    b->cap = 0;
}

uint8_t *
clst_buf_steal(struct clst_buf *b, size_t *out_size)
{
    uint8_t *p = b->data;
    *out_size = b->size;
    b->data = NULL;
    b->size = 0;
    b->cap = 0;
    return p;
}
