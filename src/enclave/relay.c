/*
 * The relay messages of clst.attest and clst.release (enclave_int.h): the enclave asks the host to
 * carry its evidence to the attestation service and its token to the vault, and the host answers
 * with the service's reply. Both directions are untrusted by their receiver, so each decoder
 * checks the header, the field count, every field's size against its own cap and its alphabet,
 * and that nothing follows the last field. Decoders allocate nothing: fields point into the input,
 * which the channel has already copied into private memory.
 */
#include <string.h>

#include "enclave/enclave_int.h"

bool
relay_key_name_ok(const char *s, size_t n)
{
    if (n == 0 || n > RELAY_NAME_MAX) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == '-')) {
            return false;
        }
    }
    return true;
}

bool
relay_version_ok(const char *s, size_t n)
{
    if (n == 0) {
        return true;
    }
    if (n != RELAY_VERSION_SIZE) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return false;
        }
    }
    return true;
}

/* A compact JWS/JWT: base64url segments and dots. */
bool
relay_token_ok(const uint8_t *s, size_t n)
{
    if (n == 0 || n > RELAY_TOKEN_MAX) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        uint8_t c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == '-' || c == '_' || c == '.')) {
            return false;
        }
    }
    return true;
}

bool
relay_nonce_ok(const char *s, size_t n)
{
    if (n > RELAY_NONCE_MAX) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == '-' || c == '_')) {
            return false;
        }
    }
    return true;
}

static bool
printable(const uint8_t *p, size_t n, bool newlines)
{
    for (size_t i = 0; i < n; i++) {
        if ((p[i] < 0x20 || p[i] > 0x7e) && !(newlines && (p[i] == '\n' || p[i] == '\r'))) {
            return false;
        }
    }
    return true;
}

enum clst_status
relay_encode(enum relay_kind kind, const struct relay_field *fields, size_t count,
             struct clst_buf *out)
{
    uint8_t hdr[RELAY_HDR_SIZE], len[4];
    if (count == 0 || count > RELAY_FIELDS_MAX || fields == NULL) {
        return CLST_E_INVAL;
    }
    memcpy(hdr, RELAY_MAGIC, 4);
    hdr[4] = RELAY_VERSION;
    hdr[5] = (uint8_t)kind;
    hdr[6] = (uint8_t)count;
    hdr[7] = 0;
    enum clst_status st = clst_buf_append(out, hdr, sizeof(hdr));
    for (size_t i = 0; i < count && st == CLST_OK; i++) {
        if (fields[i].size > UINT32_MAX || (fields[i].p == NULL && fields[i].size > 0)) {
            return CLST_E_INVAL;
        }
        clst_put_le32(len, (uint32_t)fields[i].size);
        st = clst_buf_append(out, len, sizeof(len));
        if (st == CLST_OK && fields[i].size > 0) {
            st = clst_buf_append(out, fields[i].p, fields[i].size);
        }
    }
    return st;
}

/* Splits a message of `kind` into exactly `count` fields, each at most caps[i] bytes. */
static enum clst_status
split(const uint8_t *p, size_t size, enum relay_kind kind, size_t count, const size_t *caps,
      const char *const *names, struct relay_field *out, struct clst_err *err)
{
    struct clst_cursor c = clst_cursor_make(p, size);
    const uint8_t *magic;
    uint8_t version, k, n;
    if (p == NULL || !clst_cursor_take(&c, 4, &magic) || !clst_cursor_u8(&c, &version) ||
        !clst_cursor_u8(&c, &k) || !clst_cursor_u8(&c, &n) || !clst_cursor_zeros(&c, 1)) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "relay message: %zu bytes are too short for "
                            "its header",
                            size);
    }
    if (memcmp(magic, RELAY_MAGIC, 4) != 0 || version != RELAY_VERSION) {
        return clst_err_set(err, CLST_E_MALFORMED, "relay message: bad magic or version %u",
                            version);
    }
    if (k != (uint8_t)kind || n != count) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "relay message: kind %u with %u fields, expected kind %d with %zu", k,
                            n, (int)kind, count);
    }
    for (size_t i = 0; i < count; i++) {
        uint32_t len;
        if (!clst_cursor_le32(&c, &len)) {
            return clst_err_set(err, CLST_E_MALFORMED, "relay message: field '%s' is cut off",
                                names[i]);
        }
        if (len > caps[i]) {
            return clst_err_set(err, CLST_E_LIMIT,
                                "relay message: field '%s' has %u bytes "
                                "(at most %zu)",
                                names[i], len, caps[i]);
        }
        if (!clst_cursor_take(&c, len, &out[i].p)) {
            return clst_err_set(err, CLST_E_MALFORMED,
                                "relay message: field '%s' claims %u bytes, %zu are left", names[i],
                                len, c.left);
        }
        out[i].size = len;
    }
    if (!clst_cursor_empty(&c)) {
        return clst_err_set(err, CLST_E_MALFORMED, "relay message: %zu bytes after the last field",
                            c.left);
    }
    return CLST_OK;
}

enum clst_status
relay_attest_decode(const uint8_t *p, size_t size, struct relay_attest_req *out,
                    struct clst_err *err)
{
    static const size_t caps[] = {CLST_ENCLAVE_EVIDENCE_MAX_SIZE, RELAY_RUNTIME_MAX};
    static const char *const names[] = {"evidence", "runtime data"};
    struct relay_field f[2];
    enum clst_status st = split(p, size, RELAY_ATTEST, 2, caps, names, f, err);
    if (st != CLST_OK) {
        return st;
    }
    if (f[0].size == 0 || f[1].size == 0) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "attestation relay: empty evidence or "
                            "runtime data");
    }
    if (!printable(f[1].p, f[1].size, false)) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "attestation relay: the runtime data is not printable JSON text");
    }
    out->evidence = f[0];
    out->runtime = f[1];
    return CLST_OK;
}

static void
copy_str(char *dst, const struct relay_field *f)
{
    memcpy(dst, f->p, f->size);
    dst[f->size] = '\0';
}

enum clst_status
relay_release_decode(const uint8_t *p, size_t size, struct relay_release_req *out,
                     struct clst_err *err)
{
    static const size_t caps[] = {RELAY_NAME_MAX, RELAY_VERSION_SIZE, RELAY_TOKEN_MAX,
                                  RELAY_ENC_MAX, RELAY_NONCE_MAX};
    static const char *const names[] = {"key name", "version", "token", "enc", "nonce"};
    struct relay_field f[5];
    enum clst_enclave_wrap_alg alg;
    enum clst_status st = split(p, size, RELAY_RELEASE, 5, caps, names, f, err);
    if (st != CLST_OK) {
        return st;
    }
    if (!relay_key_name_ok((const char *)f[0].p, f[0].size)) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "release relay: the key name must be 1..127 of 0-9 a-z A-Z -");
    }
    if (!relay_version_ok((const char *)f[1].p, f[1].size)) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "release relay: the version must be empty or 32 lower-case hex");
    }
    if (!relay_token_ok(f[2].p, f[2].size)) {
        return clst_err_set(err, CLST_E_MALFORMED, "release relay: the token is not a compact JWS");
    }
    if (!relay_nonce_ok((const char *)f[4].p, f[4].size)) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "release relay: the nonce must be 0..128 of A-Z a-z 0-9 _ -");
    }
    struct relay_release_req r;
    copy_str(r.name, &f[0]);
    copy_str(r.version, &f[1]);
    copy_str(r.enc, &f[3]);
    copy_str(r.nonce, &f[4]);
    if (strlen(r.enc) != f[3].size || clst_enclave_wrap_alg_parse(r.enc, &alg) != CLST_OK) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "release relay: enc must be CKM_RSA_AES_KEY_WRAP, "
                            "RSA_AES_KEY_WRAP_256 or RSA_AES_KEY_WRAP_384");
    }
    r.token = f[2];
    *out = r;
    return CLST_OK;
}

enum clst_status
relay_reply_decode(const uint8_t *p, size_t size, struct relay_reply *out, struct clst_err *err)
{
    static const size_t caps[] = {4, 4, RELAY_TOKEN_MAX, RELAY_CA_MAX};
    static const char *const names[] = {"status", "HTTP status", "body", "CA"};
    struct relay_field f[4];
    struct relay_reply r;
    enum clst_status st = split(p, size, RELAY_REPLY, 4, caps, names, f, err);
    if (st != CLST_OK) {
        return st;
    }
    if (f[0].size != 4 || f[1].size != 4) {
        return clst_err_set(err, CLST_E_MALFORMED, "relay reply: status fields must be 4 bytes");
    }
    struct clst_cursor c0 = clst_cursor_make(f[0].p, 4), c1 = clst_cursor_make(f[1].p, 4);
    (void)clst_cursor_le32(&c0, &r.status);
    (void)clst_cursor_le32(&c1, &r.http);
    if (r.status > (uint32_t)CLST_E_INTERNAL || (r.http != 0 && (r.http < 100 || r.http > 599))) {
        return clst_err_set(err, CLST_E_MALFORMED, "relay reply: status %u / HTTP %u out of range",
                            r.status, r.http);
    }
    if (f[2].size == 0 || (r.status != CLST_OK && f[2].size > RELAY_MSG_MAX)) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "relay reply: the body must be 1..%u bytes (a message: at most %u)",
                            RELAY_TOKEN_MAX, RELAY_MSG_MAX);
    }
    if (!printable(f[2].p, f[2].size, false) || !printable(f[3].p, f[3].size, true)) {
        return clst_err_set(err, CLST_E_MALFORMED, "relay reply: body or CA is not printable text");
    }
    r.body = f[2];
    r.ca = f[3];
    *out = r;
    return CLST_OK;
}

enum clst_status
relay_reply_encode(enum clst_status status, uint32_t http, const void *body, size_t body_size,
                   const void *ca, size_t ca_size, struct clst_buf *out)
{
    uint8_t s[4], h[4];
    clst_put_le32(s, (uint32_t)status);
    clst_put_le32(h, http);
    struct relay_field f[4] = {{s, 4}, {h, 4}, {body, body_size}, {ca, ca_size}};
    return relay_encode(RELAY_REPLY, f, 4, out);
}
