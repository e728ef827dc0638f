/*
 * Frames and the payloads of the runtime's own messages: pure encoders and decoders (no I/O, no
 * allocation except main_args_decode's argv). Every decoder reads through the bounds-checked
 * cursor, checks every size against a hard cap before using it, and rejects trailing bytes.
 * Both sides use them on bytes they have already copied out of shared memory.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "enclave/enclave_int.h"

static const uint8_t frame_magic[4] = {'C', 'L', 'F', 'R'};

void
frame_hdr_encode(const struct frame_hdr *h, uint8_t out[static FRAME_HDR_SIZE])
{
    memcpy(out, frame_magic, 4);
    out[4] = FRAME_VERSION;
    out[5] = h->type;
    clst_put_le16(out + 6, 0);
    clst_put_le32(out + 8, h->seq);
    clst_put_le32(out + 12, h->status);
    clst_put_le16(out + 16, h->name_size);
    clst_put_le16(out + 18, 0);
    clst_put_le32(out + 20, h->payload_size);
    clst_put_le64(out + 24, h->aux);
}

bool
frame_status_valid(uint32_t status)
{
    return status <= (uint32_t)CLST_E_INTERNAL;
}

static const char *
type_name(uint8_t t)
{
    switch (t) {
    case FRAME_CALL:
        return "CALL";
    case FRAME_RETURN:
        return "RETURN";
    case FRAME_OCALL:
        return "OCALL";
    case FRAME_ORET:
        return "ORET";
    case FRAME_READY:
        return "READY";
    case FRAME_EXIT:
        return "EXIT";
    default:
        return "unknown";
    }
}

enum clst_status
frame_hdr_decode(const uint8_t in[static FRAME_HDR_SIZE], enum frame_dir dir,
                 const struct frame_limits *lim, struct frame_hdr *out, struct clst_err *err)
{
    struct clst_cursor c = clst_cursor_make(in, FRAME_HDR_SIZE);
    uint8_t magic[4], version, type;
    uint16_t flags, name_size, reserved;
    uint32_t seq, status, payload_size;
    uint64_t aux;

    if (!clst_cursor_copy(&c, magic, 4) || !clst_cursor_u8(&c, &version) ||
        !clst_cursor_u8(&c, &type) || !clst_cursor_le16(&c, &flags) ||
        !clst_cursor_le32(&c, &seq) || !clst_cursor_le32(&c, &status) ||
        !clst_cursor_le16(&c, &name_size) || !clst_cursor_le16(&c, &reserved) ||
        !clst_cursor_le32(&c, &payload_size) || !clst_cursor_le64(&c, &aux)) {
        return clst_err_set(err, CLST_E_INTERNAL, "frame header cursor underflow");
    }
    if (memcmp(magic, frame_magic, 4) != 0) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "frame: bad magic %02x%02x%02x%02x (the peer is not speaking the "
                            "enclave protocol, or the ring is corrupt)",
                            magic[0], magic[1], magic[2], magic[3]);
    }
    if (version != FRAME_VERSION) {
        return clst_err_set(err, CLST_E_MALFORMED, "frame: unsupported version %u (want %u)",
                            version, FRAME_VERSION);
    }
    bool allowed;
    if (dir == FRAME_H2E) {
        allowed = type == FRAME_CALL || type == FRAME_ORET || type == FRAME_EXIT;
    } else {
        allowed = type == FRAME_RETURN || type == FRAME_OCALL || type == FRAME_READY;
    }
    if (!allowed) {
        return clst_err_set(err, CLST_E_MALFORMED, "frame: type %u (%s) is not allowed %s", type,
                            type_name(type),
                            dir == FRAME_H2E ? "from the host" : "from the enclave");
    }
    if (flags != 0 || reserved != 0) {
        return clst_err_set(err, CLST_E_MALFORMED, "frame: reserved bits set (flags %04x, %04x)",
                            flags, reserved);
    }
    bool named = type == FRAME_CALL || type == FRAME_OCALL;
    if (named ? (name_size == 0 || name_size > CLST_ENCLAVE_NAME_MAX) : name_size != 0) {
        return clst_err_set(err, CLST_E_MALFORMED, "frame: %s with a name of %u bytes",
                            type_name(type), name_size);
    }
    bool has_status = type == FRAME_RETURN || type == FRAME_ORET || type == FRAME_READY;
    if (has_status ? !frame_status_valid(status) : status != 0) {
        return clst_err_set(err, CLST_E_MALFORMED, "frame: %s with status %u", type_name(type),
                            status);
    }
    if (!named && aux != 0) {
        return clst_err_set(err, CLST_E_MALFORMED, "frame: %s with a non-zero output capacity",
                            type_name(type));
    }
    uint64_t max = lim->max_payload;
    if (type == FRAME_EXIT) {
        max = 0;
    } else if (has_status && status != CLST_OK) {
        max = FRAME_ERR_MSG_MAX; /* a failure carries only its message */
    } else if (type == FRAME_READY) {
        max = READY_PAYLOAD_MAX;
    }
    if (payload_size > max) {
        return clst_err_set(err, CLST_E_LIMIT,
                            "frame: %s payload of %u bytes exceeds the limit of %llu bytes",
                            type_name(type), payload_size, (unsigned long long)max);
    }
    if (named && aux > lim->max_payload) {
        return clst_err_set(
            err, CLST_E_LIMIT, "frame: %s asks for %llu bytes of output, above the limit of %llu",
            type_name(type), (unsigned long long)aux, (unsigned long long)lim->max_payload);
    }
    out->type = type;
    out->seq = seq;
    out->status = status;
    out->name_size = name_size;
    out->payload_size = payload_size;
    out->aux = aux;
    return CLST_OK;
}

static bool
name_char(uint8_t ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '.' || ch == '_' || ch == '-';
}

bool
frame_name_valid(const uint8_t *name, size_t size)
{
    if (size == 0 || size > CLST_ENCLAVE_NAME_MAX) {
        return false;
    }
    for (size_t i = 0; i < size; i++) {
        if (!name_char(name[i])) {
            return false;
        }
    }
    return true;
}

bool
frame_name_valid_str(const char *name)
{
    if (name == NULL) {
        return false;
    }
    size_t n = strnlen(name, CLST_ENCLAVE_NAME_MAX + 1);
    return frame_name_valid((const uint8_t *)name, n);
}

void
frame_msg_sanitize(const uint8_t *msg, size_t size, char *out, size_t out_cap)
{
    if (out_cap == 0) {
        return;
    }
    size_t n = size < out_cap - 1 ? size : out_cap - 1;
    for (size_t i = 0; i < n; i++) {
        uint8_t ch = msg[i];
        out[i] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
    }
    out[n] = '\0';
}

/* ---- READY ---------------------------------------------------------------------------------- */

enum clst_status
ready_encode(const struct ready_info *r, struct clst_buf *out)
{
    uint8_t fixed[28];
    if (r->entry_count > CLST_ENCLAVE_ENTRY_MAX) {
        return CLST_E_INVAL;
    }
    clst_put_le32(fixed, READY_VERSION);
    clst_put_le32(fixed + 4, r->flags);
    clst_put_le32(fixed + 8, (uint32_t)r->lock_errno);
    clst_put_le32(fixed + 12, 0);
    clst_put_le64(fixed + 16, r->memlock_limit);
    clst_put_le32(fixed + 24, r->entry_count);
    enum clst_status st = clst_buf_append(out, fixed, sizeof(fixed));
    for (uint32_t i = 0; st == CLST_OK && i < r->entry_count; i++) {
        size_t n = strlen(r->entries[i]);
        st = clst_buf_append_byte(out, (uint8_t)n);
        if (st == CLST_OK) {
            st = clst_buf_append(out, r->entries[i], n);
        }
    }
    return st;
}

enum clst_status
ready_decode(const uint8_t *p, size_t size, struct ready_info *out, struct clst_err *err)
{
    struct clst_cursor c = clst_cursor_make(p, size);
    uint32_t version, flags, lock_errno, reserved, count;
    uint64_t limit;
    if (!clst_cursor_le32(&c, &version) || !clst_cursor_le32(&c, &flags) ||
        !clst_cursor_le32(&c, &lock_errno) || !clst_cursor_le32(&c, &reserved) ||
        !clst_cursor_le64(&c, &limit) || !clst_cursor_le32(&c, &count)) {
        return clst_err_set(err, CLST_E_MALFORMED, "READY: truncated (%zu bytes)", size);
    }
    if (version != READY_VERSION || reserved != 0 ||
        (flags & ~(READY_FLAG_LOCKED | READY_FLAG_HAS_MAIN | READY_FLAG_HEAP)) != 0) {
        return clst_err_set(err, CLST_E_MALFORMED, "READY: version %u / flags %08x not supported",
                            version, flags);
    }
    if (count > CLST_ENCLAVE_ENTRY_MAX) {
        return clst_err_set(err, CLST_E_LIMIT, "READY: %u entry points (at most %d)", count,
                            CLST_ENCLAVE_ENTRY_MAX);
    }
    out->flags = flags;
    out->lock_errno = (int32_t)lock_errno;
    out->memlock_limit = limit;
    out->entry_count = count;
    for (uint32_t i = 0; i < count; i++) {
        uint8_t n;
        const uint8_t *name;
        if (!clst_cursor_u8(&c, &n) || !clst_cursor_take(&c, n, &name)) {
            return clst_err_set(err, CLST_E_MALFORMED, "READY: entry %u truncated", i);
        }
        if (!frame_name_valid(name, n)) {
            return clst_err_set(err, CLST_E_MALFORMED, "READY: entry %u has an invalid name", i);
        }
        memcpy(out->entries[i], name, n);
        out->entries[i][n] = '\0';
    }
    if (!clst_cursor_empty(&c)) {
        return clst_err_set(err, CLST_E_MALFORMED, "READY: %zu trailing bytes", c.left);
    }
    return CLST_OK;
}

/* ---- service requests (decoded by the host) ------------------------------------------------- */

enum clst_status
svc_log_decode(const uint8_t *p, size_t size, struct svc_log_req *out, struct clst_err *err)
{
    struct clst_cursor c = clst_cursor_make(p, size);
    uint8_t level;
    if (!clst_cursor_u8(&c, &level)) {
        return clst_err_set(err, CLST_E_MALFORMED, "clst.log: empty request");
    }
    if (level > CLST_LOG_DEBUG) {
        return clst_err_set(err, CLST_E_MALFORMED, "clst.log: unknown level %u", level);
    }
    if (c.left > SVC_LOG_MAX) {
        return clst_err_set(err, CLST_E_LIMIT, "clst.log: message of %zu bytes (at most %d)",
                            c.left, SVC_LOG_MAX);
    }
    out->level = level;
    out->text = c.ptr;
    out->text_size = c.left;
    return CLST_OK;
}

enum clst_status
svc_open_decode(const uint8_t *p, size_t size, struct svc_open_req *out, struct clst_err *err)
{
    struct clst_cursor c = clst_cursor_make(p, size);
    uint32_t mode;
    if (!clst_cursor_le32(&c, &mode)) {
        return clst_err_set(err, CLST_E_MALFORMED, "clst.file.open: truncated request");
    }
    if (mode != CLST_ENCLAVE_FILE_READ && mode != CLST_ENCLAVE_FILE_WRITE) {
        return clst_err_set(err, CLST_E_MALFORMED, "clst.file.open: unknown mode %u", mode);
    }
    if (!frame_name_valid(c.ptr, c.left)) {
        return clst_err_set(err, CLST_E_MALFORMED, "clst.file.open: invalid file name");
    }
    out->mode = mode;
    memcpy(out->name, c.ptr, c.left);
    out->name[c.left] = '\0';
    return CLST_OK;
}

enum clst_status
svc_read_decode(const uint8_t *p, size_t size, struct svc_read_req *out, struct clst_err *err)
{
    struct clst_cursor c = clst_cursor_make(p, size);
    uint32_t handle, max;
    if (!clst_cursor_le32(&c, &handle) || !clst_cursor_le32(&c, &max) || !clst_cursor_empty(&c)) {
        return clst_err_set(err, CLST_E_MALFORMED, "clst.file.read: request is not 8 bytes");
    }
    if (max == 0 || max > CLST_ENCLAVE_FILE_IO_MAX) {
        return clst_err_set(err, CLST_E_LIMIT, "clst.file.read: %u bytes asked (1..%u)", max,
                            CLST_ENCLAVE_FILE_IO_MAX);
    }
    out->handle = handle;
    out->max = max;
    return CLST_OK;
}

enum clst_status
svc_write_decode(const uint8_t *p, size_t size, struct svc_write_req *out, struct clst_err *err)
{
    struct clst_cursor c = clst_cursor_make(p, size);
    uint32_t handle;
    if (!clst_cursor_le32(&c, &handle)) {
        return clst_err_set(err, CLST_E_MALFORMED, "clst.file.write: truncated request");
    }
    if (c.left > CLST_ENCLAVE_FILE_IO_MAX) {
        return clst_err_set(err, CLST_E_LIMIT, "clst.file.write: %zu bytes at once (at most %u)",
                            c.left, CLST_ENCLAVE_FILE_IO_MAX);
    }
    out->handle = handle;
    out->data = c.ptr;
    out->data_size = c.left;
    return CLST_OK;
}

void
svc_sealkey_encode(const struct svc_sealkey_req *r, uint8_t out[static SEALKEY_REQ_SIZE])
{
    clst_put_le16(out, r->policy);
    clst_put_le16(out + 2, r->svn);
    clst_put_le32(out + 4, 0);
    memcpy(out + 8, r->key_id, SEAL_KEY_ID_SIZE);
}

enum clst_status
svc_sealkey_decode(const uint8_t *p, size_t size, struct svc_sealkey_req *out, struct clst_err *err)
{
    struct clst_cursor c = clst_cursor_make(p, size);
    uint16_t policy, svn;
    struct svc_sealkey_req r;
    if (size != SEALKEY_REQ_SIZE || !clst_cursor_le16(&c, &policy) || !clst_cursor_le16(&c, &svn) ||
        !clst_cursor_zeros(&c, 4) || !clst_cursor_copy(&c, r.key_id, SEAL_KEY_ID_SIZE)) {
        return clst_err_set(err, CLST_E_MALFORMED, "%s: malformed request", SVC_SEALKEY);
    }
    if (policy != CLST_SEAL_TO_MEASUREMENT && policy != CLST_SEAL_TO_SIGNER) {
        return clst_err_set(err, CLST_E_MALFORMED, "%s: unknown policy %u", SVC_SEALKEY, policy);
    }
    r.policy = policy;
    r.svn = svn;
    *out = r;
    return CLST_OK;
}

/* ---- replies (decoded by the enclave) ------------------------------------------------------- */

enum clst_status
svc_time_decode(const uint8_t *p, size_t size, int64_t *sec, uint32_t *nsec, struct clst_err *err)
{
    struct clst_cursor c = clst_cursor_make(p, size);
    uint64_t s;
    uint32_t ns;
    if (!clst_cursor_le64(&c, &s) || !clst_cursor_le32(&c, &ns) || !clst_cursor_empty(&c)) {
        return clst_err_set(err, CLST_E_MALFORMED, "clst.time: reply is not 12 bytes");
    }
    if (ns >= 1000000000u) {
        return clst_err_set(err, CLST_E_MALFORMED, "clst.time: %u nanoseconds", ns);
    }
    *sec = (int64_t)s;
    *nsec = ns;
    return CLST_OK;
}

enum clst_status
svc_u32_decode(const uint8_t *p, size_t size, uint32_t *out, struct clst_err *err)
{
    struct clst_cursor c = clst_cursor_make(p, size);
    uint32_t v;
    if (!clst_cursor_le32(&c, &v) || !clst_cursor_empty(&c)) {
        return clst_err_set(err, CLST_E_MALFORMED, "reply is not 4 bytes (%zu)", size);
    }
    *out = v;
    return CLST_OK;
}

/* ---- clst.main arguments -------------------------------------------------------------------- */

enum clst_status
main_args_encode(int argc, char *const *argv, struct clst_buf *out)
{
    uint8_t b[4];
    if (argc < 1 || argc > MAIN_ARGC_MAX) {
        return CLST_E_LIMIT;
    }
    clst_put_le32(b, (uint32_t)argc);
    enum clst_status st = clst_buf_append(out, b, 4);
    for (int i = 0; st == CLST_OK && i < argc; i++) {
        size_t n = strlen(argv[i]);
        if (n > MAIN_ARGS_MAX) {
            return CLST_E_LIMIT;
        }
        clst_put_le32(b, (uint32_t)n);
        st = clst_buf_append(out, b, 4);
        if (st == CLST_OK) {
            st = clst_buf_append(out, argv[i], n);
        }
    }
    if (st == CLST_OK && out->size > MAIN_ARGS_MAX) {
        st = CLST_E_LIMIT;
    }
    return st;
}

enum clst_status
main_args_decode(const uint8_t *p, size_t size, int *out_argc, char ***out_argv,
                 struct clst_err *err)
{
    struct clst_cursor c = clst_cursor_make(p, size);
    uint32_t argc;
    if (size > MAIN_ARGS_MAX) {
        return clst_err_set(err, CLST_E_LIMIT, "clst.main: %zu bytes of arguments (at most %u)",
                            size, MAIN_ARGS_MAX);
    }
    if (!clst_cursor_le32(&c, &argc)) {
        return clst_err_set(err, CLST_E_MALFORMED, "clst.main: truncated arguments");
    }
    if (argc < 1 || argc > MAIN_ARGC_MAX) {
        return clst_err_set(err, CLST_E_LIMIT, "clst.main: argc %u (1..%d)", argc, MAIN_ARGC_MAX);
    }
    /* First pass: validate, and size one allocation for the pointers and the strings. */
    struct clst_cursor scan = c;
    size_t text = 0;
    for (uint32_t i = 0; i < argc; i++) {
        uint32_t n;
        const uint8_t *s;
        if (!clst_cursor_le32(&scan, &n) || !clst_cursor_take(&scan, n, &s)) {
            return clst_err_set(err, CLST_E_MALFORMED, "clst.main: argument %u truncated", i);
        }
        if (memchr(s, 0, n) != NULL) {
            return clst_err_set(err, CLST_E_MALFORMED, "clst.main: argument %u contains NUL", i);
        }
        text += (size_t)n + 1;
    }
    if (!clst_cursor_empty(&scan)) {
        return clst_err_set(err, CLST_E_MALFORMED, "clst.main: %zu trailing bytes", scan.left);
    }
    size_t ptrs = ((size_t)argc + 1) * sizeof(char *);
    char **argv = malloc(ptrs + text);
    if (argv == NULL) {
        return clst_err_set(err, CLST_E_NOMEM, "clst.main: out of memory for arguments");
    }
    char *dst = (char *)argv + ptrs;
    for (uint32_t i = 0; i < argc; i++) {
        uint32_t n = 0;
        const uint8_t *s = NULL;
        if (!clst_cursor_le32(&c, &n) || !clst_cursor_take(&c, n, &s)) {
            free(argv); /* cannot happen: the first pass checked the same bytes */
            return clst_err_set(err, CLST_E_INTERNAL, "clst.main: arguments changed");
        }
        memcpy(dst, s, n);
        dst[n] = '\0';
        argv[i] = dst;
        dst += (size_t)n + 1;
    }
    argv[argc] = NULL;
    *out_argc = (int)argc;
    *out_argv = argv;
    return CLST_OK;
}
