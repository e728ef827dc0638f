/*
 * Request-target and listen-address parsing. The target arrives raw from the network (MHD's own
 * unescaping is switched off), so this is the one place that decides what a path means: strict
 * percent-decoding, no encoded '/' inside a segment, no "." or ".." segments, no control
 * characters, valid UTF-8, hard caps on every count. Messages name positions and never echo the
 * input back.
 */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <string.h>

#include "server/server_int.h"

/* RFC 3986: unreserved and sub-delims, plus ':' and '@' (pchar without pct-encoded). */
static bool
is_pchar(unsigned char c)
{
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
        return true;
    }
    return strchr("-._~!$&'()*+,;=:@", c) != NULL && c != '\0';
}

static int
hex_val(unsigned char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF. */
bool
clst_server_utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        size_t len;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            len = 2;
            cp = c & 0x1fu;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3;
            cp = c & 0x0fu;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4;
            cp = c & 0x07u;
        } else {
            return false;
        }
        if (len > n - i) {
            return false;
        }
        for (size_t k = 1; k < len; k++) {
            unsigned char cc = s[i + k];
            if ((cc & 0xc0) != 0x80) {
                return false;
            }
            cp = (cp << 6) | (cc & 0x3fu);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff)) {
            return false;
        }
        i += len;
    }
    return true;
}

enum part { PART_SEGMENT, PART_QUERY };

/*
 * Decodes in[0..n) into the arena (NUL-terminated) and returns its start via *out. In a segment
 * '+' stays '+'; in the query it means a space (HTML form encoding, as the SDKs send it).
 */
static enum clst_status
decode(struct clst_http_target *t, const char *in, size_t n, enum part part, size_t index,
       const char **out, struct clst_err *err)
{
    const char *what = part == PART_SEGMENT ? "path segment" : "query parameter";
    /* The arena is sized so this cannot fail for inputs within CLST_HTTP_URI_MAX; check anyway. */
    if (n + 1 > sizeof(t->arena) - t->arena_used) {
        return clst_err_set(err, CLST_E_LIMIT, "request target too long");
    }
    char *dst = t->arena + t->arena_used;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == '%') {
            if (n - i < 3) {
                return clst_err_set(err, CLST_E_MALFORMED,
                                    "%s %zu has a '%%' not followed by two hex digits", what,
                                    index + 1);
            }
            int h = hex_val((unsigned char)in[i + 1]);
            int l = hex_val((unsigned char)in[i + 2]);
            if (h < 0 || l < 0) {
                return clst_err_set(err, CLST_E_MALFORMED,
                                    "%s %zu has a '%%' not followed by two hex digits", what,
                                    index + 1);
            }
            c = (unsigned char)(h * 16 + l);
            i += 2;
            if (c == '/' && part == PART_SEGMENT) {
                return clst_err_set(err, CLST_E_MALFORMED,
                                    "path segment %zu contains an encoded '/' (%%2F); names "
                                    "cannot contain '/'",
                                    index + 1);
            }
        } else if (c == '+' && part == PART_QUERY) {
            c = ' ';
        }
        if (c < 0x20 || c == 0x7f) {
            return clst_err_set(err, CLST_E_MALFORMED, "%s %zu contains a control character", what,
                                index + 1);
        }
        dst[o++] = (char)c;
    }
    dst[o] = '\0';
    if (!clst_server_utf8_valid((const unsigned char *)dst, o)) {
        return clst_err_set(err, CLST_E_MALFORMED, "%s %zu is not valid UTF-8", what, index + 1);
    }
    t->arena_used += o + 1;
    *out = dst;
    return CLST_OK;
}

static enum clst_status
parse_path(struct clst_http_target *t, const char *p, size_t n, struct clst_err *err)
{
    /* p[0] == '/' was checked by the caller. "/" alone has no segments. */
    if (n == 1) {
        return CLST_OK;
    }
    size_t start = 1;
    for (;;) {
        size_t end = start;
        while (end < n && p[end] != '/') {
            end++;
        }
        if (t->segment_count == CLST_HTTP_SEGMENT_MAX) {
            return clst_err_set(err, CLST_E_LIMIT, "request path has more than %d segments",
                                CLST_HTTP_SEGMENT_MAX);
        }
        size_t idx = t->segment_count;
        const char *seg;
        enum clst_status rc = decode(t, p + start, end - start, PART_SEGMENT, idx, &seg, err);
        if (rc != CLST_OK) {
            return rc;
        }
        if (strcmp(seg, ".") == 0 || strcmp(seg, "..") == 0) {
            return clst_err_set(err, CLST_E_MALFORMED,
                                "path segment %zu is '.' or '..'; relative paths are not allowed",
                                idx + 1);
        }
        t->segments[t->segment_count++] = seg;
        if (end == n) {
            break;
        }
        start = end + 1;
    }
    return CLST_OK;
}

static enum clst_status
parse_query(struct clst_http_target *t, const char *q, size_t n, struct clst_err *err)
{
    size_t start = 0;
    while (start <= n) {
        size_t end = start;
        while (end < n && q[end] != '&') {
            end++;
        }
        if (end > start) { /* "a=1&&b=2" and a trailing '&' carry no parameter */
            if (t->query_count == CLST_HTTP_QUERY_MAX) {
                return clst_err_set(err, CLST_E_LIMIT, "query has more than %d parameters",
                                    CLST_HTTP_QUERY_MAX);
            }
            size_t idx = t->query_count;
            size_t eq = start;
            while (eq < end && q[eq] != '=') {
                eq++;
            }
            if (eq == start) {
                return clst_err_set(err, CLST_E_MALFORMED, "query parameter %zu has no name",
                                    idx + 1);
            }
            const char *key;
            const char *value;
            enum clst_status rc = decode(t, q + start, eq - start, PART_QUERY, idx, &key, err);
            if (rc != CLST_OK) {
                return rc;
            }
            size_t vstart = eq < end ? eq + 1 : end;
            rc = decode(t, q + vstart, end - vstart, PART_QUERY, idx, &value, err);
            if (rc != CLST_OK) {
                return rc;
            }
            for (size_t k = 0; k < t->query_count; k++) {
                if (strcmp(t->query[k].key, key) == 0) {
                    return clst_err_set(err, CLST_E_MALFORMED,
                                        "query parameter %zu repeats an earlier parameter's name",
                                        idx + 1);
                }
            }
            t->query[idx].key = key;
            t->query[idx].value = value;
            t->query_count++;
        }
        if (end == n) {
            break;
        }
        start = end + 1;
    }
    return CLST_OK;
}

enum clst_status
clst_server_target_parse(const char *raw, size_t raw_size, struct clst_http_target *out,
                         struct clst_err *err)
{
    out->segment_count = 0;
    out->query_count = 0;
    out->arena_used = 0;
    out->path_size = 0;
    if (raw == NULL || raw_size == 0 || raw[0] != '/') {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "request target must be a path starting "
                            "with '/'");
    }
    if (raw_size > CLST_HTTP_URI_MAX) {
        return clst_err_set(err, CLST_E_LIMIT, "request target longer than %d bytes",
                            CLST_HTTP_URI_MAX);
    }
    size_t qpos = raw_size;
    for (size_t i = 0; i < raw_size; i++) {
        unsigned char c = (unsigned char)raw[i];
        if (qpos == raw_size && c == '?') {
            qpos = i;
            continue;
        }
        bool ok = is_pchar(c) || c == '%' || c == '/' || (qpos < raw_size && c == '?');
        if (!ok) {
            return clst_err_set(err, CLST_E_MALFORMED,
                                "request target has a character at byte %zu that must be "
                                "percent-encoded",
                                i + 1);
        }
    }
    out->path_size = qpos;
    enum clst_status rc = parse_path(out, raw, qpos, err);
    if (rc != CLST_OK) {
        return rc;
    }
    if (qpos < raw_size) {
        rc = parse_query(out, raw + qpos + 1, raw_size - qpos - 1, err);
        if (rc != CLST_OK) {
            return rc;
        }
    }
    return CLST_OK;
}

enum clst_status
clst_server_listen_parse(const char *s, char *host, size_t host_cap, uint16_t *out_port,
                         struct clst_err *err)
{
    char h[INET6_ADDRSTRLEN + 1];
    const char *port_text;
    size_t hlen;
    if (s == NULL || host == NULL || out_port == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "listen address missing");
    }
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':') {
            return clst_err_set(err, CLST_E_MALFORMED,
                                "listen address '%.64s' must look like [IPv6]:PORT", s);
        }
        hlen = (size_t)(close - s - 1);
        if (hlen == 0 || hlen >= sizeof(h)) {
            return clst_err_set(err, CLST_E_MALFORMED, "listen address has a bad IPv6 host");
        }
        memcpy(h, s + 1, hlen);
        h[hlen] = '\0';
        struct in6_addr a6;
        if (inet_pton(AF_INET6, h, &a6) != 1) {
            return clst_err_set(err, CLST_E_MALFORMED,
                                "'%s' is not an IPv6 address; use e.g. [::1]:8443", h);
        }
        port_text = close + 2;
    } else {
        const char *colon = strrchr(s, ':');
        if (colon == NULL || strchr(s, ':') != colon) {
            return clst_err_set(err, CLST_E_MALFORMED,
                                "listen address '%.64s' must look like HOST:PORT (IPv6 as "
                                "[ADDR]:PORT)",
                                s);
        }
        hlen = (size_t)(colon - s);
        if (hlen == 0 || hlen >= sizeof(h)) {
            return clst_err_set(err, CLST_E_MALFORMED, "listen address has a bad host");
        }
        memcpy(h, s, hlen);
        h[hlen] = '\0';
        struct in_addr a4;
        if (strcmp(h, "localhost") != 0 && inet_pton(AF_INET, h, &a4) != 1) {
            return clst_err_set(err, CLST_E_MALFORMED,
                                "listen host '%s' is not an IP address; use an address such as "
                                "127.0.0.1 or 0.0.0.0 (or localhost)",
                                h);
        }
        port_text = colon + 1;
    }
    uint64_t port;
    if (clst_parse_u64(port_text, 0, 65535, &port, NULL) != CLST_OK) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "listen port '%.16s' must be a number from 0 to 65535 (0 picks a "
                            "free port)",
                            port_text);
    }
    if (hlen + 1 > host_cap) {
        return clst_err_set(err, CLST_E_LIMIT, "host buffer too small");
    }
    memcpy(host, h, hlen + 1);
    *out_port = (uint16_t)port;
    return CLST_OK;
}
