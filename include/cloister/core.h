/*
 * Cloister core: status codes and the error object, logging, the capped byte buffer, the
 * bounds-checked cursor for untrusted bytes, strict base64/base64url/hex codecs, secret memory,
 * constant-time comparison, checked integer parsing and the injectable clock.
 *
 * Conventions (see STYLE.md): functions return enum clst_status; out-parameters come last and are
 * written only on success; `_new`/`_free` allocate, `_init`/`_cleanup` use the caller's storage;
 * `_free(NULL)` and `_cleanup` of a zeroed object are no-ops.
 */
#ifndef CLOISTER_CORE_H
#define CLOISTER_CORE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- status and errors ---------------------------------------------------------------------- */

enum clst_status {
    CLST_OK = 0,
    CLST_E_INVAL,     /* caller broke the API contract */
    CLST_E_MALFORMED, /* untrusted bytes failed to parse */
    CLST_E_VERIFY,    /* signature, chain, measurement or policy mismatch */
    CLST_E_DENIED,    /* authenticated but not authorized */
    CLST_E_CRYPTO,    /* the crypto library failed for a reason other than "bad signature" */
    CLST_E_NOMEM,
    CLST_E_IO,
    CLST_E_LIMIT,     /* an explicit size or count limit was exceeded */
    CLST_E_NOTFOUND,
    CLST_E_CONFLICT,
    CLST_E_INTERNAL,
};

#define CLST_ERR_MSG_SIZE 256

/* An error a person can act on: what was wrong, and what to do. */
struct clst_err {
    enum clst_status status;
    char msg[CLST_ERR_MSG_SIZE];
};

/* "ok", "invalid argument", "malformed input", ... */
const char *clst_status_str(enum clst_status status);

/*
 * Records `status` and a printf-style message in `err` (which may be NULL) and returns `status`,
 * so callers can write `return clst_err_set(err, CLST_E_MALFORMED, "...")`. A message that does
 * not fit is truncated with "..." (it is for people, never parsed).
 */
enum clst_status clst_err_set(struct clst_err *err, enum clst_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefixes the existing message: "context: <old message>". Returns err->status; with a NULL err it
 * returns CLST_E_INTERNAL, so `return clst_err_prefix(err, ...)` on a failure path can never turn
 * into success. */
enum clst_status clst_err_prefix(struct clst_err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Clears `err` to CLST_OK with an empty message. */
void clst_err_clear(struct clst_err *err);

/* ---- logging -------------------------------------------------------------------------------- */

/* Logs go to stderr, one line each, prefixed with the level. Never pass key material or secret
 * values to a log call: only names, ids and hashes. */
enum clst_log_level {
    CLST_LOG_ERROR = 0,
    CLST_LOG_WARN,
    CLST_LOG_INFO,
    CLST_LOG_DEBUG,
};

void clst_log_set_level(enum clst_log_level level);
enum clst_log_level clst_log_get_level(void);
/* Parses "error", "warn", "info", "debug" (case-sensitive). */
enum clst_status clst_log_level_parse(const char *s, enum clst_log_level *out);
void clst_log(enum clst_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define clst_log_error(...) clst_log(CLST_LOG_ERROR, __VA_ARGS__)
#define clst_log_warn(...)  clst_log(CLST_LOG_WARN, __VA_ARGS__)
#define clst_log_info(...)  clst_log(CLST_LOG_INFO, __VA_ARGS__)
#define clst_log_debug(...) clst_log(CLST_LOG_DEBUG, __VA_ARGS__)

/* ---- growable byte buffer with a hard cap --------------------------------------------------- */

/*
 * A byte buffer that grows on demand but never beyond `max` bytes (CLST_E_LIMIT past that), so a
 * peer can never make us allocate without bound. Initialize with clst_buf_init(); a zeroed struct
 * is a valid empty buffer with max 0 (nothing may be appended). When `secret` is set, the memory is
 * wiped before it is released or moved (use for plaintext and key material).
 */
struct clst_buf {
    uint8_t *data;
    size_t size; /* bytes in use */
    size_t cap;  /* bytes allocated */
    size_t max;  /* hard cap on size */
    bool secret;
};

void clst_buf_init(struct clst_buf *b, size_t max);
void clst_buf_init_secret(struct clst_buf *b, size_t max);
/* Ensures room for `extra` more bytes. */
enum clst_status clst_buf_reserve(struct clst_buf *b, size_t extra);
enum clst_status clst_buf_append(struct clst_buf *b, const void *data, size_t size);
enum clst_status clst_buf_append_byte(struct clst_buf *b, uint8_t byte);
/* Appends a NUL-free string without its terminator. */
enum clst_status clst_buf_append_str(struct clst_buf *b, const char *s);
/* printf-style append; the buffer's contents stay NUL-terminated past `size`. */
enum clst_status clst_buf_appendf(struct clst_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Makes data[size] a NUL byte (not counted in size) so the contents can be used as a C string. */
enum clst_status clst_buf_terminate(struct clst_buf *b);
/* Size becomes 0; memory is kept (and wiped when secret). */
void clst_buf_reset(struct clst_buf *b);
/* Frees the memory (wiping it when secret) and zeroes the struct except `max` and `secret`. */
void clst_buf_cleanup(struct clst_buf *b);
/* Hands the data to the caller (who frees it with free(), or clst_secret_free_raw when secret);
 * the buffer becomes empty. */
uint8_t *clst_buf_steal(struct clst_buf *b, size_t *out_size);

/* ---- bounds-checked cursor over untrusted bytes --------------------------------------------- */

/*
 * Every read of untrusted bytes goes through a cursor. Each read checks the remaining length
 * before touching memory, never forms ptr + n first, and leaves the cursor unchanged on failure.
 */
struct clst_cursor {
    const uint8_t *ptr;
    size_t left;
};

static inline struct clst_cursor
clst_cursor_make(const void *data, size_t size)
{
    struct clst_cursor c = {(const uint8_t *)data, size};
    return c;
}

static inline bool
clst_cursor_take(struct clst_cursor *c, size_t n, const uint8_t **out)
{
    if (n > c->left) {
        return false;
    }
    *out = c->ptr;
    c->ptr += n;
    c->left -= n;
    return true;
}

bool clst_cursor_skip(struct clst_cursor *c, size_t n);
bool clst_cursor_u8(struct clst_cursor *c, uint8_t *out);
bool clst_cursor_le16(struct clst_cursor *c, uint16_t *out);
bool clst_cursor_le32(struct clst_cursor *c, uint32_t *out);
bool clst_cursor_le64(struct clst_cursor *c, uint64_t *out);
bool clst_cursor_be16(struct clst_cursor *c, uint16_t *out);
bool clst_cursor_be32(struct clst_cursor *c, uint32_t *out);
bool clst_cursor_be64(struct clst_cursor *c, uint64_t *out);
/* Copies n bytes into dst. */
bool clst_cursor_copy(struct clst_cursor *c, void *dst, size_t n);
/* Consumes n bytes and succeeds only if all of them are zero (reserved fields). */
bool clst_cursor_zeros(struct clst_cursor *c, size_t n);
/* Splits off the next n bytes as an independent cursor `out` and advances past them. */
bool clst_cursor_sub(struct clst_cursor *c, size_t n, struct clst_cursor *out);
static inline bool
clst_cursor_empty(const struct clst_cursor *c)
{
    return c->left == 0;
}

/* Writers for fixed-layout output (callers size the destination). */
void clst_put_le16(uint8_t *p, uint16_t v);
void clst_put_le32(uint8_t *p, uint32_t v);
void clst_put_le64(uint8_t *p, uint64_t v);
void clst_put_be16(uint8_t *p, uint16_t v);
void clst_put_be32(uint8_t *p, uint32_t v);
void clst_put_be64(uint8_t *p, uint64_t v);

/* ---- strict codecs -------------------------------------------------------------------------- */

/*
 * Decoders are strict: any character outside the alphabet (including whitespace), wrong or
 * missing padding (base64), padding in base64url, a length that cannot occur, or non-zero unused
 * trailing bits returns CLST_E_MALFORMED. The decoded bytes are appended to `out` (whose cap bounds
 * them: CLST_E_LIMIT). Encoders append text without a NUL terminator; call clst_buf_terminate().
 */
size_t clst_b64_encoded_size(size_t n);    /* with padding */
size_t clst_b64url_encoded_size(size_t n); /* without padding */
enum clst_status clst_b64_encode(const uint8_t *in, size_t in_size, struct clst_buf *out);
enum clst_status clst_b64_decode(const char *in, size_t in_size, struct clst_buf *out);
enum clst_status clst_b64url_encode(const uint8_t *in, size_t in_size, struct clst_buf *out);
enum clst_status clst_b64url_decode(const char *in, size_t in_size, struct clst_buf *out);
/* Lower-case on output; upper or lower case accepted on input, an odd length is malformed. */
enum clst_status clst_hex_encode(const uint8_t *in, size_t in_size, struct clst_buf *out);
enum clst_status clst_hex_decode(const char *in, size_t in_size, struct clst_buf *out);
/* Fixed-size variants: decode exactly `out_size` bytes or fail (CLST_E_MALFORMED). */
enum clst_status clst_hex_decode_fixed(const char *in, size_t in_size, uint8_t *out, size_t out_size);
/* Writes 2*in_size lower-case hex chars plus a NUL into out (out_cap >= 2*in_size+1). */
enum clst_status clst_hex_to_str(const uint8_t *in, size_t in_size, char *out, size_t out_cap);

/* ---- secret memory -------------------------------------------------------------------------- */

/*
 * Memory for key material: from the OpenSSL secure heap when it is initialized (see
 * clst_secret_heap_init), otherwise ordinary memory that is mlock'ed (best effort) and marked
 * MADV_DONTDUMP. Always wiped before it is freed.
 */
struct clst_secret {
    uint8_t *ptr;
    size_t size;
};

/* Optional, once at program start: reserves `size` bytes (a power of two) of OpenSSL secure heap. */
enum clst_status clst_secret_heap_init(size_t size);
enum clst_status clst_secret_new(size_t size, struct clst_secret **out);
/* Copies `size` bytes of `data` into a new secret. */
enum clst_status clst_secret_from(const void *data, size_t size, struct clst_secret **out);
void clst_secret_free(struct clst_secret *s);
/* Raw allocation used by the above and by secret clst_bufs. */
void *clst_secret_alloc_raw(size_t size);
void clst_secret_free_raw(void *p, size_t size);
/* Wipes memory in a way the compiler cannot elide. */
void clst_wipe(void *p, size_t size);

/* ---- constant time -------------------------------------------------------------------------- */

/* CT: the contents of a and b do not leak through timing; only `size` does. True when equal. */
bool clst_ct_equal(const void *a, const void *b, size_t size);

/* ---- checked integer parsing ---------------------------------------------------------------- */

/*
 * Parses the whole string `s` as a base-10 integer in [min, max]. Rejects empty strings, leading
 * or trailing whitespace, a '+' sign, trailing characters and overflow (CLST_E_MALFORMED for
 * syntax, CLST_E_LIMIT for out of range). `err` may be NULL.
 */
enum clst_status clst_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out,
                                struct clst_err *err);
enum clst_status clst_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out,
                                struct clst_err *err);

/* ---- injectable clock ----------------------------------------------------------------------- */

/*
 * Verification code never reads the wall clock directly: it is given a clock. Times are seconds
 * since the Unix epoch (UTC).
 */
struct clst_clock {
    int64_t (*now)(const struct clst_clock *clock);
    int64_t fixed; /* used by the fixed clock */
};

/* The system's wall clock (CLOCK_REALTIME). */
const struct clst_clock *clst_clock_system(void);
/* A clock that always returns `t`. */
void clst_clock_fixed_init(struct clst_clock *clock, int64_t t);
static inline int64_t
clst_clock_now(const struct clst_clock *clock)
{
    return clock->now(clock);
}
/* Unix time of a UTC civil date and time (proleptic Gregorian calendar; month 1-12). The fields
 * are not range-checked: callers validate them (clst_time_parse does). */
int64_t clst_time_from_civil(int64_t year, int64_t month, int64_t day, int64_t hour, int64_t minute,
                             int64_t second);
/* Parses RFC 3339 / ISO 8601 UTC ("2024-05-01T12:00:00Z") or a decimal Unix time. */
enum clst_status clst_time_parse(const char *s, int64_t *out, struct clst_err *err);
/* Formats as "YYYY-MM-DDTHH:MM:SSZ" into out (out_cap >= 21). */
enum clst_status clst_time_format(int64_t t, char *out, size_t out_cap);

/* Monotonic nanoseconds, for measuring durations (never for validity decisions). */
uint64_t clst_monotonic_ns(void);

#endif /* CLOISTER_CORE_H */
