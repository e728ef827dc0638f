/*
 * The Cloister header of a .clst file (docs/format.md, "Header"). No cryptography here: the
 * header is authenticated because the body's context is SHA-256(header), so any change to it
 * makes the key commitment fail (or, earlier, the key lookup or unwrap).
 *
 * Trust boundary: parse() reads untrusted bytes only through the bounds-checked cursor, checks
 * every length against its cap before copying, allocates nothing, and requires the fields to end
 * exactly at header_size.
 */
#define _POSIX_C_SOURCE 200809L
#include "envelope/envelope_int.h"

#include <string.h>

static const uint8_t MAGIC[CLST_ENVELOPE_MAGIC_SIZE] = {0x89, 'C', 'L', 'S', 'T', 0x0d, 0x0a, 0x1a};

#define LOCAL_REF_SIZE     CLST_ENVELOPE_KEY_ID_SIZE
#define RECIPIENT_REF_SIZE (1 + CLST_ENVELOPE_FINGERPRINT_SIZE)
/* The smallest vault reference: url_size + 1 + name_size + 1 + version_size + 1. */
#define VAULT_REF_MIN_SIZE (2 + 1 + 1 + 1 + 1 + 1)
/* fixed part + kind + ref_size + smallest ref + alg_size + 1 + wrapped_size + 1 + meta_count */
#define HEADER_MIN_SIZE (CLST_ENVELOPE_FIXED_SIZE + 1 + 2 + VAULT_REF_MIN_SIZE + 1 + 1 + 2 + 1 + 2)

/* ---- alphabets ---------------------------------------------------------------------------- */

static bool
is_alnum(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool
url_char(int c)
{
    return c >= 0x21 && c <= 0x7e; /* printable ASCII, no space */
}

static bool
name_char(int c)
{
    return is_alnum(c) || c == '-';
}

static bool
version_char(int c)
{
    return is_alnum(c) || c == '-' || c == '.' || c == '_';
}

static bool
alg_char(int c)
{
    return is_alnum(c) || c == '-' || c == '+' || c == '.' || c == '_';
}

static bool
meta_name_char(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

static bool
all_in(const uint8_t *s, size_t n, bool (*ok)(int))
{
    for (size_t i = 0; i < n; i++) {
        if (!ok(s[i])) {
            return false;
        }
    }
    return true;
}

/* Checks a NUL-terminated field for encoding: length in [min, max] and alphabet. */
static enum clst_status
check_str(const char *what, const char *s, size_t min, size_t max, bool (*ok)(int),
          size_t *out_len, struct clst_err *err)
{
    size_t n = strnlen(s, max + 1);
    if (n < min || n > max) {
        return clst_err_set(err, CLST_E_INVAL, "%s must be %zu..%zu characters", what, min, max);
    }
    if (!all_in((const uint8_t *)s, n, ok)) {
        return clst_err_set(err, CLST_E_INVAL, "%s contains a character outside its alphabet",
                            what);
    }
    *out_len = n;
    return CLST_OK;
}

/* ---- encoding ----------------------------------------------------------------------------- */

struct writer {
    uint8_t *p;
    size_t cap;
    size_t size;
    bool overflow;
};

static void
put(struct writer *w, const void *data, size_t n)
{
    if (w->overflow || n > w->cap - w->size) {
        w->overflow = true;
        return;
    }
    if (n > 0) {
        memcpy(w->p + w->size, data, n);
    }
    w->size += n;
}

static void
put_u8(struct writer *w, uint8_t v)
{
    put(w, &v, 1);
}

static void
put_be16(struct writer *w, uint16_t v)
{
    uint8_t b[2];
    clst_put_be16(b, v);
    put(w, b, 2);
}

static void
put_be32(struct writer *w, uint32_t v)
{
    uint8_t b[4];
    clst_put_be32(b, v);
    put(w, b, 4);
}

static enum clst_status
check_meta(const struct clst_envelope_meta *meta, size_t meta_count, struct clst_err *err)
{
    size_t total = 0;

    if (meta_count > CLST_ENVELOPE_META_MAX_COUNT) {
        return clst_err_set(err, CLST_E_LIMIT, "%zu metadata entries (at most %d)", meta_count,
                            CLST_ENVELOPE_META_MAX_COUNT);
    }
    for (size_t i = 0; i < meta_count; i++) {
        size_t n;
        if (meta[i].name == NULL || (meta[i].value == NULL && meta[i].value_size > 0)) {
            return clst_err_set(err, CLST_E_INVAL, "metadata entry %zu has no name or value", i);
        }
        n = strnlen(meta[i].name, CLST_ENVELOPE_META_NAME_MAX_SIZE + 1);
        if (n == 0 || n > CLST_ENVELOPE_META_NAME_MAX_SIZE ||
            !all_in((const uint8_t *)meta[i].name, n, meta_name_char)) {
            return clst_err_set(err, CLST_E_INVAL,
                                "metadata name '%.64s' must be 1..64 characters of a-z 0-9 . _ -",
                                meta[i].name);
        }
        if (meta[i].value_size > CLST_ENVELOPE_META_MAX_SIZE) {
            return clst_err_set(err, CLST_E_LIMIT, "metadata value of '%s' is too long",
                                meta[i].name);
        }
        total += n + meta[i].value_size;
        if (total > CLST_ENVELOPE_META_MAX_SIZE) {
            return clst_err_set(err, CLST_E_LIMIT,
                                "metadata is larger than %d bytes (names and values together)",
                                CLST_ENVELOPE_META_MAX_SIZE);
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(meta[i].name, meta[j].name) == 0) {
                return clst_err_set(err, CLST_E_INVAL, "metadata name '%s' appears twice",
                                    meta[i].name);
            }
        }
    }
    return CLST_OK;
}

enum clst_status
clst_envelope_header_encode(const struct clst_envelope_keyref *ref,
                            const struct clst_envelope_wrapped *wrapped,
                            const struct clst_envelope_meta *meta, size_t meta_count,
                            uint8_t *out, size_t out_cap, size_t *out_size, struct clst_err *err)
{
    enum clst_status rc;
    struct writer w = {out, out_cap, 0, false};
    size_t alg_len = 0, url_len = 0, name_len = 0, version_len = 0;

    if (ref == NULL || wrapped == NULL || out == NULL || out_size == NULL ||
        (meta == NULL && meta_count > 0)) {
        return clst_err_set(err, CLST_E_INVAL, "header: missing argument");
    }
    rc = check_str("wrap algorithm", wrapped->alg, 1, CLST_ENVELOPE_ALG_MAX_SIZE, alg_char,
                   &alg_len, err);
    if (rc != CLST_OK) {
        return rc;
    }
    if (wrapped->size == 0 || wrapped->size > CLST_ENVELOPE_WRAPPED_MAX_SIZE) {
        return clst_err_set(err, CLST_E_LIMIT, "wrapped key of %zu bytes (1..%d)", wrapped->size,
                            CLST_ENVELOPE_WRAPPED_MAX_SIZE);
    }
    rc = check_meta(meta, meta_count, err);
    if (rc != CLST_OK) {
        return rc;
    }

    put(&w, MAGIC, sizeof(MAGIC));
    put_u8(&w, CLST_ENVELOPE_VERSION);
    put_u8(&w, CLST_ENVELOPE_SUITE_C256);
    put_be16(&w, 0);    /* flags */
    put_be32(&w, 0);    /* header_size, patched below */
    switch (ref->kind) {
    case CLST_ENVELOPE_REF_LOCAL:
        put_u8(&w, (uint8_t)ref->kind);
        put_be16(&w, LOCAL_REF_SIZE);
        put(&w, ref->key_id, CLST_ENVELOPE_KEY_ID_SIZE);
        break;
    case CLST_ENVELOPE_REF_RECIPIENT:
        if (ref->recipient_type != CLST_ENVELOPE_RECIPIENT_RSA &&
            ref->recipient_type != CLST_ENVELOPE_RECIPIENT_P256) {
            return clst_err_set(err, CLST_E_INVAL, "header: unknown recipient type %d",
                                (int)ref->recipient_type);
        }
        put_u8(&w, (uint8_t)ref->kind);
        put_be16(&w, RECIPIENT_REF_SIZE);
        put_u8(&w, (uint8_t)ref->recipient_type);
        put(&w, ref->fingerprint, CLST_ENVELOPE_FINGERPRINT_SIZE);
        break;
    case CLST_ENVELOPE_REF_VAULT:
        rc = check_str("vault URL", ref->vault_url, 1, CLST_ENVELOPE_URL_MAX_SIZE, url_char,
                       &url_len, err);
        if (rc == CLST_OK) {
            rc = check_str("vault key name", ref->key_name, 1, CLST_ENVELOPE_NAME_MAX_SIZE,
                           name_char, &name_len, err);
        }
        if (rc == CLST_OK) {
            rc = check_str("vault key version", ref->key_version, 1,
                           CLST_ENVELOPE_VERSION_MAX_SIZE, version_char, &version_len, err);
        }
        if (rc != CLST_OK) {
            return rc;
        }
        put_u8(&w, (uint8_t)ref->kind);
        put_be16(&w, (uint16_t)(2 + url_len + 1 + name_len + 1 + version_len));
        put_be16(&w, (uint16_t)url_len);
        put(&w, ref->vault_url, url_len);
        put_u8(&w, (uint8_t)name_len);
        put(&w, ref->key_name, name_len);
        put_u8(&w, (uint8_t)version_len);
        put(&w, ref->key_version, version_len);
        break;
    default:
        return clst_err_set(err, CLST_E_INVAL, "header: unknown key reference kind %d",
                            (int)ref->kind);
    }
    put_u8(&w, (uint8_t)alg_len);
    put(&w, wrapped->alg, alg_len);
    put_be16(&w, (uint16_t)wrapped->size);
    put(&w, wrapped->data, wrapped->size);
    put_be16(&w, (uint16_t)meta_count);
    for (size_t i = 0; i < meta_count; i++) {
        size_t n = strlen(meta[i].name);
        put_u8(&w, (uint8_t)n);
        put(&w, meta[i].name, n);
        put_be16(&w, (uint16_t)meta[i].value_size);
        put(&w, meta[i].value, meta[i].value_size);
    }
    if (w.overflow || w.size > CLST_ENVELOPE_HEADER_MAX_SIZE) {
        return clst_err_set(err, CLST_E_LIMIT, "header larger than %d bytes",
                            CLST_ENVELOPE_HEADER_MAX_SIZE);
    }
    clst_put_be32(out + 12, (uint32_t)w.size);
    *out_size = w.size;
    return CLST_OK;
}

/* ---- parsing ------------------------------------------------------------------------------ */

enum clst_status
clst_envelope_header_peek_size(const uint8_t *data, size_t size, size_t *out_size,
                               struct clst_err *err)
{
    struct clst_cursor c;
    const uint8_t *magic;
    uint8_t version, suite;
    uint16_t flags;
    uint32_t hsize;

    if ((data == NULL && size > 0) || out_size == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "header: missing argument");
    }
    c = clst_cursor_make(data, size);
    if (!clst_cursor_take(&c, CLST_ENVELOPE_MAGIC_SIZE, &magic) ||
        memcmp(magic, MAGIC, CLST_ENVELOPE_MAGIC_SIZE) != 0) {
        if (size < CLST_ENVELOPE_MAGIC_SIZE && (size == 0 || memcmp(data, MAGIC, size) == 0)) {
            return clst_err_set(err, CLST_E_MALFORMED,
                                "truncated: %zu bytes, shorter than a .clst header", size);
        }
        return clst_err_set(err, CLST_E_MALFORMED,
                            "not a .clst file (wrong magic bytes); was it produced by "
                            "'cloister encrypt'?");
    }
    if (!clst_cursor_u8(&c, &version) || !clst_cursor_u8(&c, &suite) ||
        !clst_cursor_be16(&c, &flags) || !clst_cursor_be32(&c, &hsize)) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "truncated: %zu bytes, shorter than a .clst header", size);
    }
    if (version != CLST_ENVELOPE_VERSION) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            ".clst format version %u is not supported (this cloister reads "
                            "version %d); use a matching cloister release",
                            version, CLST_ENVELOPE_VERSION);
    }
    if (suite != CLST_ENVELOPE_SUITE_C256) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "cipher suite %u is not supported (only 1, Cobblestone-256)", suite);
    }
    if (flags != 0) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "reserved header flags 0x%04x are set; the file is damaged or from a "
                            "newer cloister",
                            flags);
    }
    if (hsize < HEADER_MIN_SIZE || hsize > CLST_ENVELOPE_HEADER_MAX_SIZE) {
        return clst_err_set(err, CLST_E_MALFORMED, "header size %u is outside %d..%d",
                            (unsigned)hsize, HEADER_MIN_SIZE, CLST_ENVELOPE_HEADER_MAX_SIZE);
    }
    *out_size = hsize;
    return CLST_OK;
}

static enum clst_status
malformed(struct clst_err *err, const char *what)
{
    return clst_err_set(err, CLST_E_MALFORMED, "malformed header: %s", what);
}

/* Reads a length-prefixed string field into dst (NUL-terminated) with its alphabet. */
static bool
take_str(struct clst_cursor *c, size_t len, size_t min, size_t max, bool (*ok)(int), char *dst)
{
    const uint8_t *p;
    if (len < min || len > max || !clst_cursor_take(c, len, &p) || !all_in(p, len, ok)) {
        return false;
    }
    memcpy(dst, p, len);
    dst[len] = '\0';
    return true;
}

static enum clst_status
parse_ref(struct clst_cursor *c, struct clst_envelope_keyref *ref, struct clst_err *err)
{
    uint8_t kind, type, len8;
    uint16_t ref_size, len16;
    struct clst_cursor r;

    if (!clst_cursor_u8(c, &kind) || !clst_cursor_be16(c, &ref_size) ||
        !clst_cursor_sub(c, ref_size, &r)) {
        return malformed(err, "key reference truncated");
    }
    switch (kind) {
    case CLST_ENVELOPE_REF_LOCAL:
        ref->kind = CLST_ENVELOPE_REF_LOCAL;
        if (ref_size != LOCAL_REF_SIZE || !clst_cursor_copy(&r, ref->key_id, LOCAL_REF_SIZE)) {
            return malformed(err, "local key reference must be a 16-byte key id");
        }
        break;
    case CLST_ENVELOPE_REF_RECIPIENT:
        ref->kind = CLST_ENVELOPE_REF_RECIPIENT;
        if (ref_size != RECIPIENT_REF_SIZE || !clst_cursor_u8(&r, &type) ||
            !clst_cursor_copy(&r, ref->fingerprint, CLST_ENVELOPE_FINGERPRINT_SIZE)) {
            return malformed(err, "recipient reference must be a type byte and a 32-byte "
                                  "fingerprint");
        }
        if (type != CLST_ENVELOPE_RECIPIENT_RSA && type != CLST_ENVELOPE_RECIPIENT_P256) {
            return malformed(err, "unknown recipient key type");
        }
        ref->recipient_type = (enum clst_envelope_recipient_type)type;
        break;
    case CLST_ENVELOPE_REF_VAULT:
        ref->kind = CLST_ENVELOPE_REF_VAULT;
        if (!clst_cursor_be16(&r, &len16) ||
            !take_str(&r, len16, 1, CLST_ENVELOPE_URL_MAX_SIZE, url_char, ref->vault_url)) {
            return malformed(err, "vault URL must be 1..1024 printable ASCII characters");
        }
        if (!clst_cursor_u8(&r, &len8) ||
            !take_str(&r, len8, 1, CLST_ENVELOPE_NAME_MAX_SIZE, name_char, ref->key_name)) {
            return malformed(err, "vault key name must be 1..127 characters of A-Z a-z 0-9 -");
        }
        if (!clst_cursor_u8(&r, &len8) || !take_str(&r, len8, 1, CLST_ENVELOPE_VERSION_MAX_SIZE,
                                                    version_char, ref->key_version)) {
            return malformed(err, "vault key version must be 1..64 characters of A-Z a-z 0-9 . _ -");
        }
        if (!clst_cursor_empty(&r)) {
            return malformed(err, "trailing bytes in the vault key reference");
        }
        break;
    default:
        return malformed(err, "unknown key reference kind");
    }
    return CLST_OK;
}

static enum clst_status
parse_meta(struct clst_cursor *c, struct clst_envelope_header *h, struct clst_err *err)
{
    uint16_t count;
    size_t used = 0;

    if (!clst_cursor_be16(c, &count)) {
        return malformed(err, "metadata count truncated");
    }
    if (count > CLST_ENVELOPE_META_MAX_COUNT) {
        return clst_err_set(err, CLST_E_LIMIT, "malformed header: %u metadata entries (max %d)",
                            (unsigned)count, CLST_ENVELOPE_META_MAX_COUNT);
    }
    for (size_t i = 0; i < count; i++) {
        uint8_t name_size;
        uint16_t value_size;
        const uint8_t *name, *value;
        if (!clst_cursor_u8(c, &name_size) || name_size == 0 ||
            name_size > CLST_ENVELOPE_META_NAME_MAX_SIZE ||
            !clst_cursor_take(c, name_size, &name) || !all_in(name, name_size, meta_name_char)) {
            return malformed(err, "metadata name must be 1..64 characters of a-z 0-9 . _ -");
        }
        if (!clst_cursor_be16(c, &value_size) || !clst_cursor_take(c, value_size, &value)) {
            return malformed(err, "metadata value truncated");
        }
        if ((size_t)name_size + value_size > CLST_ENVELOPE_META_MAX_SIZE - used) {
            return clst_err_set(err, CLST_E_LIMIT,
                                "malformed header: metadata larger than %d bytes",
                                CLST_ENVELOPE_META_MAX_SIZE);
        }
        for (size_t j = 0; j < i; j++) {
            if (h->meta[j].name_size == name_size &&
                memcmp(h->meta_data + h->meta[j].name_off, name, name_size) == 0) {
                return malformed(err, "a metadata name appears twice");
            }
        }
        h->meta[i].name_off = (uint16_t)used;
        h->meta[i].name_size = name_size;
        memcpy(h->meta_data + used, name, name_size);
        used += name_size;
        h->meta[i].value_off = (uint16_t)used;
        h->meta[i].value_size = value_size;
        if (value_size > 0) {
            memcpy(h->meta_data + used, value, value_size);
        }
        used += value_size;
        h->meta_count = i + 1;
    }
    return CLST_OK;
}

enum clst_status
clst_envelope_header_parse(const uint8_t *data, size_t size, struct clst_envelope_header *out,
                           struct clst_err *err)
{
    enum clst_status rc;
    size_t hsize;
    struct clst_cursor c;
    uint8_t alg_size;
    uint16_t wrapped_size;

    if (out == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "header: missing argument");
    }
    rc = clst_envelope_header_peek_size(data, size, &hsize, err);
    if (rc != CLST_OK) {
        return rc;
    }
    if (hsize > size) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "truncated: the header says %zu bytes but only %zu are present", hsize,
                            size);
    }
    /* Parsed into a local copy so that *out is written only on success. */
    struct clst_envelope_header h;
    memset(&h, 0, sizeof(h));
    h.version = data[CLST_ENVELOPE_MAGIC_SIZE];
    h.suite = data[CLST_ENVELOPE_MAGIC_SIZE + 1];
    h.size = hsize;
    c = clst_cursor_make(data, hsize);
    if (!clst_cursor_skip(&c, CLST_ENVELOPE_FIXED_SIZE)) {
        return malformed(err, "truncated");
    }
    rc = parse_ref(&c, &h.ref, err);
    if (rc != CLST_OK) {
        return rc;
    }
    if (!clst_cursor_u8(&c, &alg_size) ||
        !take_str(&c, alg_size, 1, CLST_ENVELOPE_ALG_MAX_SIZE, alg_char, h.wrapped.alg)) {
        return malformed(err, "wrap algorithm must be 1..32 characters of A-Z a-z 0-9 + - . _");
    }
    if (!clst_cursor_be16(&c, &wrapped_size) || wrapped_size == 0 ||
        wrapped_size > CLST_ENVELOPE_WRAPPED_MAX_SIZE ||
        !clst_cursor_copy(&c, h.wrapped.data, wrapped_size)) {
        return malformed(err, "wrapped key must be 1..1024 bytes");
    }
    h.wrapped.size = wrapped_size;
    rc = parse_meta(&c, &h, err);
    if (rc != CLST_OK) {
        return rc;
    }
    if (!clst_cursor_empty(&c)) {
        return malformed(err, "the fields end before header_size (trailing bytes)");
    }
    *out = h;
    return CLST_OK;
}

enum clst_status
clst_envelope_header_meta(const struct clst_envelope_header *h, size_t i, const char **name,
                          size_t *name_size, const uint8_t **value, size_t *value_size)
{
    if (h == NULL || i >= h->meta_count || name == NULL || name_size == NULL || value == NULL ||
        value_size == NULL) {
        return CLST_E_INVAL;
    }
    *name = (const char *)(h->meta_data + h->meta[i].name_off);
    *name_size = h->meta[i].name_size;
    *value = h->meta_data + h->meta[i].value_off;
    *value_size = h->meta[i].value_size;
    return CLST_OK;
}
