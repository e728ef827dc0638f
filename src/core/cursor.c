/* The bounds-checked cursor: every read checks the remaining length first and leaves the cursor
 * unchanged on failure. */
#include <string.h>

#include <cloister/core.h>

bool
clst_cursor_skip(struct clst_cursor *c, size_t n)
{
    const uint8_t *p;
    return clst_cursor_take(c, n, &p);
}

bool
clst_cursor_u8(struct clst_cursor *c, uint8_t *out)
{
    const uint8_t *p;
    if (!clst_cursor_take(c, 1, &p)) {
        return false;
    }
    *out = p[0];
    return true;
}

bool
clst_cursor_le16(struct clst_cursor *c, uint16_t *out)
{
    const uint8_t *p;
    if (!clst_cursor_take(c, 2, &p)) {
        return false;
    }
    *out = (uint16_t)(p[0] | (uint16_t)(p[1] << 8));
    return true;
}

bool
clst_cursor_le32(struct clst_cursor *c, uint32_t *out)
{
    const uint8_t *p;
    if (!clst_cursor_take(c, 4, &p)) {
        return false;
    }
    *out = (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
    return true;
}

bool
clst_cursor_le64(struct clst_cursor *c, uint64_t *out)
{
    const uint8_t *p;
    if (!clst_cursor_take(c, 8, &p)) {
        return false;
    }
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    *out = v;
    return true;
}

bool
clst_cursor_be16(struct clst_cursor *c, uint16_t *out)
{
    const uint8_t *p;
    if (!clst_cursor_take(c, 2, &p)) {
        return false;
    }
    *out = (uint16_t)(((uint16_t)p[0] << 8) | p[1]);
    return true;
}

bool
clst_cursor_be32(struct clst_cursor *c, uint32_t *out)
{
    const uint8_t *p;
    if (!clst_cursor_take(c, 4, &p)) {
        return false;
    }
    *out = ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
    return true;
}

bool
clst_cursor_be64(struct clst_cursor *c, uint64_t *out)
{
    const uint8_t *p;
    if (!clst_cursor_take(c, 8, &p)) {
        return false;
    }
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v = (v << 8) | p[i];
    }
    *out = v;
    return true;
}

bool
clst_cursor_copy(struct clst_cursor *c, void *dst, size_t n)
{
    const uint8_t *p;
    if (!clst_cursor_take(c, n, &p)) {
        return false;
    }
    if (n > 0) {
        memcpy(dst, p, n);
    }
    return true;
}

bool
clst_cursor_zeros(struct clst_cursor *c, size_t n)
{
    if (n > c->left) {
        return false;
    }
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++) {
        acc |= c->ptr[i];
    }
    if (acc != 0) {
        return false;
    }
    c->ptr += n;
    c->left -= n;
    return true;
}

bool
clst_cursor_sub(struct clst_cursor *c, size_t n, struct clst_cursor *out)
{
    const uint8_t *p;
    if (!clst_cursor_take(c, n, &p)) {
        return false;
    }
    out->ptr = p;
    out->left = n;
    return true;
}

void
clst_put_le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

void
clst_put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

void
clst_put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

void
clst_put_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

void
clst_put_be32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (24 - 8 * i));
    }
}

void
clst_put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (56 - 8 * i));
    }
}
