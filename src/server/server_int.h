/* Private interfaces of the server component (not for other components). */
#ifndef CLST_SERVER_INT_H
#define CLST_SERVER_INT_H

#include <cloister/crypto.h>
#include <cloister/server.h>

/* ---- request target (parse.c) --------------------------------------------------------------- */

struct clst_http_kv {
    const char *key;
    const char *value;
};

/*
 * A parsed request target. Every string is decoded, NUL-terminated, valid UTF-8 without control
 * characters, and points into `arena`. Path segments never contain '/', and are never "." or
 * "..". The path "/" has no segments; "/a/" has two ("a" and "").
 */
struct clst_http_target {
    size_t segment_count;
    const char *segments[CLST_HTTP_SEGMENT_MAX];
    size_t query_count;
    struct clst_http_kv query[CLST_HTTP_QUERY_MAX];
    size_t path_size; /* raw bytes before '?' */
    size_t arena_used;
    /* Decoded text is never longer than its encoding; plus one NUL per segment and two per
     * query parameter. */
    char arena[CLST_HTTP_URI_MAX + CLST_HTTP_SEGMENT_MAX + 2 * CLST_HTTP_QUERY_MAX];
};

/*
 * Parses a raw origin-form request target ("/path?query"). CLST_E_MALFORMED (with a message fit
 * for the client: it names positions, never echoes input) for anything outside RFC 3986's
 * characters, bad percent-encoding, encoded '/' or control characters, "." or ".." segments,
 * invalid UTF-8, empty or repeated query keys; CLST_E_LIMIT when the target, the segment count
 * or the parameter count exceeds its cap. `out` is fully rewritten on every call.
 * CT: none (request targets are not secret).
 */
enum clst_status clst_server_target_parse(const char *raw, size_t raw_size,
                                          struct clst_http_target *out, struct clst_err *err);

/* Strict UTF-8 (RFC 3629): no overlong forms, surrogates or code points above U+10FFFF. */
bool clst_server_utf8_valid(const unsigned char *s, size_t n);

/* ---- route table (routes.c) ----------------------------------------------------------------- */

struct clst_route {
    struct clst_server_route def; /* def.pattern points at pattern_copy */
    char *pattern_copy;
    size_t segment_count;
    char *literal[CLST_HTTP_SEGMENT_MAX]; /* NULL where the segment is a parameter */
    char *param[CLST_HTTP_SEGMENT_MAX];   /* NULL where the segment is a literal */
};

struct clst_route_table {
    struct clst_route *routes;
    size_t count;
    size_t cap;
};

#define CLST_ROUTES_MAX 512

struct clst_route_match {
    const struct clst_route *route; /* NULL when nothing matched path and method */
    size_t param_count;
    const char *names[CLST_HTTP_SEGMENT_MAX];
    const char *values[CLST_HTTP_SEGMENT_MAX];
    unsigned allowed; /* bit (1 << method) for each method routed on this path */
};

enum clst_status clst_server_routes_add(struct clst_route_table *t,
                                        const struct clst_server_route *route,
                                        struct clst_err *err);
/* CLST_OK with out->route set, or CLST_E_NOTFOUND: then out->allowed != 0 means the path exists
 * with other methods (405), 0 means no route has this path (404). */
enum clst_status clst_server_routes_match(const struct clst_route_table *t,
                                          enum clst_http_method method,
                                          const struct clst_http_target *target,
                                          struct clst_route_match *out);
bool clst_server_routes_any_protected(const struct clst_route_table *t);
void clst_server_routes_cleanup(struct clst_route_table *t);
/* Writes "GET, POST" for an allowed-methods bitmask. */
void clst_server_allow_header(unsigned allowed, char *out, size_t out_cap);
/* Maps "GET" etc. to the enum (CLST_HTTP_OTHER for anything else). */
enum clst_http_method clst_server_method_parse(const char *s);

/* ---- certificates (pki.c) ------------------------------------------------------------------- */

#define CLST_PKI_CA_DAYS       3652 /* 10 years */
#define CLST_PKI_SERVER_DAYS   397
#define CLST_PKI_RENEW_DAYS    30
#define CLST_PKI_BACKDATE_SECS 3600 /* tolerate clients whose clock is a little behind */

/* A self-signed CA: EC P-256, CA:TRUE pathlen 0, keyCertSign|cRLSign, SKI/AKI. */
enum clst_status clst_server_pki_ca_create(const struct clst_clock *clock, EVP_PKEY **out_key,
                                           X509 **out_cert, struct clst_err *err);
/* A server certificate for `host` (plus 127.0.0.1, ::1 and localhost; plus the machine's name
 * when host is an unspecified address), EC P-256, serverAuth, issued by the CA; it never outlives
 * the CA. */
enum clst_status clst_server_pki_server_issue(EVP_PKEY *ca_key, X509 *ca_cert, const char *host,
                                              const struct clst_clock *clock, EVP_PKEY **out_key,
                                              X509 **out_cert, struct clst_err *err);
/* True when cert's SAN covers host (IP literal or DNS name). */
bool clst_server_pki_covers(X509 *cert, const char *host);
/* True when cert is not yet valid at `now` or expires within CLST_PKI_RENEW_DAYS. */
bool clst_server_pki_needs_renewal(X509 *cert, int64_t now);
/* True when `host` is an IP literal or a syntactically valid DNS name. */
bool clst_server_pki_host_valid(const char *host);

#endif
