/*
 * Cloister server: the HTTPS front end (libmicrohttpd over GnuTLS, TLS 1.2/1.3 only) that hosts
 * the vault and attestation REST APIs, and the data directory it starts from.
 *
 * The server holds no key logic. Components register routes (method + path pattern with
 * `{name}` segments) and handlers; the vault sets the authentication hook. The server parses
 * and validates the request target (strict percent-decoding, no encoded '/', no "." or ".."
 * segments, valid UTF-8), caps request bodies (413), authenticates protected routes (401 with
 * the cloud key vault's `WWW-Authenticate: Bearer authorization="…", resource="…"` challenge),
 * and answers every error as `{"error":{"code":"…","message":"…"}}` with the right status.
 *
 * Threading: handlers and the authentication hook run on the server's worker threads, several
 * at a time; they must be thread-safe. Routes and the hook are set before clst_server_start()
 * and never change while the server runs (no locking on the request path).
 */
#ifndef CLOISTER_SERVER_H
#define CLOISTER_SERVER_H

#include <cloister/core.h>

#include <jansson.h>
#include <openssl/x509.h>

/* ---- HTTP vocabulary ------------------------------------------------------------------------ */

enum clst_http_method {
    CLST_HTTP_OTHER = 0, /* a method the server does not route (answered 405 or 404) */
    CLST_HTTP_GET,
    CLST_HTTP_HEAD, /* routed to the GET route of the path when no HEAD route exists */
    CLST_HTTP_POST,
    CLST_HTTP_PUT,
    CLST_HTTP_PATCH,
    CLST_HTTP_DELETE,
};

/* "GET", "POST", ...; "OTHER" for CLST_HTTP_OTHER. */
const char *clst_http_method_name(enum clst_http_method m);

/* Error codes of the `{"error":{"code":…}}` body, as the cloud key vault spells them. */
#define CLST_HTTP_CODE_BAD_PARAMETER       "BadParameter"
#define CLST_HTTP_CODE_UNAUTHORIZED        "Unauthorized"
#define CLST_HTTP_CODE_FORBIDDEN           "Forbidden"
#define CLST_HTTP_CODE_NOT_FOUND           "NotFound"
#define CLST_HTTP_CODE_KEY_NOT_FOUND       "KeyNotFound"
#define CLST_HTTP_CODE_SECRET_NOT_FOUND    "SecretNotFound"
#define CLST_HTTP_CODE_CONFLICT            "Conflict"
#define CLST_HTTP_CODE_METHOD_NOT_ALLOWED  "MethodNotAllowed"
#define CLST_HTTP_CODE_REQUEST_TOO_LARGE   "RequestTooLarge"
#define CLST_HTTP_CODE_URI_TOO_LONG        "RequestUriTooLong"
#define CLST_HTTP_CODE_INTERNAL            "InternalError"
#define CLST_HTTP_CODE_SERVICE_UNAVAILABLE "ServiceUnavailable"

/* Limits of the request target (path + query), enforced before any routing. */
#define CLST_HTTP_URI_MAX     4096 /* bytes of the raw request target (414 beyond) */
#define CLST_HTTP_SEGMENT_MAX 16   /* path segments */
#define CLST_HTTP_QUERY_MAX   32   /* query parameters */
#define CLST_HTTP_HEADER_MAX  16   /* extra response headers a handler may set */

#define CLST_SERVER_DEFAULT_PORT         8443
#define CLST_SERVER_DEFAULT_MAX_BODY     (1024u * 1024u) /* 1 MiB */
#define CLST_SERVER_DEFAULT_CONNECTIONS  1000u
#define CLST_SERVER_DEFAULT_IDLE_TIMEOUT 30u /* seconds */
#define CLST_SERVER_MAX_THREADS          256u
#define CLST_SERVER_REQUEST_ID_SIZE      33 /* 32 hex characters + NUL */
/* clst_server_new() sets up OpenSSL's secure heap with this size (clst_secret_heap_init) when
 * the process has not: request bodies and key material are secret memory, and a heap is far
 * cheaper per request than a locked mapping each. Larger needs fall back to mappings. */
#define CLST_SERVER_SECURE_HEAP (32u * 1024u * 1024u)

/* ---- requests and responses ----------------------------------------------------------------- */

/* Both objects belong to the server and live for one handler call; never keep pointers to them or
 * to strings they return after the handler returns. */
struct clst_http_request;
struct clst_http_response;

enum clst_http_method clst_http_request_method(const struct clst_http_request *req);
/* The path as received (still percent-encoded, without the query), for logs. */
const char *clst_http_request_path(const struct clst_http_request *req);
/* The decoded value of the route's `{name}` segment (may be "" for an empty segment, e.g. the
 * version in "/keys/k/"), or NULL when the route has no such parameter. */
const char *clst_http_request_param(const struct clst_http_request *req, const char *name);
/* The decoded value of query parameter `key` ("" for "?key" or "?key="), or NULL when absent.
 * Keys are case-sensitive; a request naming a key twice was already refused (400). */
const char *clst_http_request_query(const struct clst_http_request *req, const char *key);
/* Shorthand for clst_http_request_query(req, "api-version"). */
const char *clst_http_request_api_version(const struct clst_http_request *req);
/* Number of query parameters, and the i-th one (for handlers that refuse unknown parameters). */
size_t clst_http_request_query_count(const struct clst_http_request *req);
bool clst_http_request_query_at(const struct clst_http_request *req, size_t i, const char **out_key,
                                const char **out_value);
/* A request header (case-insensitive name; the first one when repeated), or NULL. */
const char *clst_http_request_header(const struct clst_http_request *req, const char *name);
/* The request body (NUL-terminated past out_size; empty when the request had none). It lives in
 * wiped memory, since it may carry secrets. */
const uint8_t *clst_http_request_body(const struct clst_http_request *req, size_t *out_size);
/* Parses the body as one JSON object (duplicate members refused). CLST_E_MALFORMED with a message
 * for the client when it is empty, not JSON, or not an object. */
enum clst_status clst_http_request_json(const struct clst_http_request *req, json_t **out,
                                        struct clst_err *err);
/* 32 hex characters, also sent back as `x-ms-request-id` and written to the access log. */
const char *clst_http_request_id(const struct clst_http_request *req);
/* The peer's IP address as text ("127.0.0.1", "::1"). */
const char *clst_http_request_client_addr(const struct clst_http_request *req);
/* What the authentication hook returned for a protected route; NULL on unprotected routes. */
void *clst_http_request_principal(const struct clst_http_request *req);

/* A JSON response; takes ownership of `body` (like jansson's *_new functions). A NULL body (for
 * example a failed json_pack) turns the response into a 500. */
void clst_http_response_json_new(struct clst_http_response *resp, unsigned status, json_t *body);
/* A response with a body of another type (e.g. "text/plain; version=0.0.4" for /metrics); the
 * bytes are copied. */
enum clst_status clst_http_response_body(struct clst_http_response *resp, unsigned status,
                                         const char *content_type, const void *data, size_t size);
/* A response without a body (e.g. 204). */
void clst_http_response_empty(struct clst_http_response *resp, unsigned status);
/* `{"error":{"code":code,"message":…}}` with HTTP status `status`. The message goes to the
 * client: never put secrets in it. */
void clst_http_response_error(struct clst_http_response *resp, unsigned status, const char *code,
                              const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Adds a response header (copied). CLST_E_INVAL for names that are not HTTP tokens, values with
 * CR, LF or other control characters, and headers the server sets itself (Content-Type,
 * Content-Length, Connection, Transfer-Encoding, x-ms-request-id, WWW-Authenticate);
 * CLST_E_LIMIT past CLST_HTTP_HEADER_MAX. */
enum clst_status clst_http_response_header(struct clst_http_response *resp, const char *name,
                                           const char *value);

/* ---- routes and authentication -------------------------------------------------------------- */

#define CLST_ROUTE_PROTECTED 0x1u /* the authentication hook must accept the request */

/*
 * A route: `pattern` is "/" or "/seg/seg/…" where each segment is a literal (letters, digits and
 * "-._~") or a parameter "{name}" (letters, digits, '_' and '-'), e.g.
 * "/keys/{name}/{version}/encrypt". A parameter matches exactly one segment, which may be empty;
 * literals match exactly (case-sensitive). When several routes match a path, the one with a
 * literal at the first position where they differ wins ("/keys/restore" over "/keys/{name}").
 *
 * The handler fills `resp` and returns CLST_OK. Returning another status makes the server answer
 * from it instead (any partial response is discarded): CLST_E_INVAL, _MALFORMED, _VERIFY and
 * _LIMIT → 400 BadParameter, _DENIED → 403 Forbidden, _NOTFOUND → 404 NotFound, _CONFLICT →
 * 409 Conflict, all with err->msg as the message; anything else → 500 InternalError with a
 * generic message (err->msg goes to the log only). Returning CLST_OK without a response is a
 * 500 as well.
 */
struct clst_server_route {
    enum clst_http_method method;
    const char *pattern;
    unsigned flags; /* CLST_ROUTE_* */
    enum clst_status (*handler)(void *ctx, const struct clst_http_request *req,
                                struct clst_http_response *resp, struct clst_err *err);
    void *ctx;
};

/*
 * The authentication hook, called for protected routes once the headers have arrived and before
 * any body is read. `authorization` is the Authorization header or NULL. On CLST_OK it stores a
 * principal in *out_principal (handed to handlers, released with principal_free at the end of
 * the request). CLST_E_DENIED → 403 Forbidden; CLST_E_NOMEM, _IO, _CRYPTO, _INTERNAL → 500 (the
 * backend failed: fail closed without blaming the client); anything else → 401 with the
 * challenge, and err->msg (if set) as the message.
 */
struct clst_server_auth {
    enum clst_status (*authenticate)(void *ctx, const struct clst_http_request *req,
                                     const char *authorization, void **out_principal,
                                     struct clst_err *err);
    void (*principal_free)(void *ctx, void *principal); /* may be NULL */
    void *ctx;
};

struct clst_server;

/* How observers name a principal (audit records; never a secret): `name` gets the auth hook's
 * ctx and a principal it returned. Optional; set before start. */
enum clst_status clst_server_principal_namer_set(struct clst_server *s,
                                                 const char *(*name)(void *auth_ctx,
                                                                     const void *principal),
                                                 struct clst_err *err);

/* ---- request observers (audit, metrics) ----------------------------------------------------- */

/*
 * An observer sees every request. `before` runs once the request is routed, authenticated and
 * its body read, just before the handler: anything but CLST_OK means the handler does not run
 * and the client gets 503 ServiceUnavailable with err->msg (this is how the audit log fails
 * closed: no effect without a durable record of the attempt). `after` runs for every request
 * that gets a response (handled or refused by the server itself: 401, 404, 413, …) with the
 * status about to be sent, just before it is queued; anything but CLST_OK replaces the response
 * by 503 with err->msg (the handler's effect, if any, has happened by then). Both may be NULL.
 * Observers run on the worker threads, several at a time, in the order they were added;
 * `before` of a later observer is skipped when an earlier one refused, `after` always runs for
 * all of them.
 */
struct clst_server_observer {
    enum clst_status (*before)(void *ctx, const struct clst_http_request *req,
                               struct clst_err *err);
    enum clst_status (*after)(void *ctx, const struct clst_http_request *req, unsigned status,
                              struct clst_err *err);
    void *ctx;
    /*
     * Optional asynchronous forms, for steps that wait for something slow (the audit log's
     * sync) without holding a server thread. When set, the server calls them instead of
     * before/after once the whole request has been read (an answer decided earlier, e.g. a 413
     * before the body, still goes through `after`, which must then be set too). Each either
     * finishes at once (returns false, result in *out_st and err), or calls
     * clst_http_request_defer(req), hands the request to another thread and returns true; that
     * thread then calls clst_http_request_resume(req, st, err) exactly once (possibly before
     * this returns), and the server goes on with the next step in one of its own threads.
     */
    bool (*before_async)(void *ctx, struct clst_http_request *req, enum clst_status *out_st,
                         struct clst_err *err);
    bool (*after_async)(void *ctx, struct clst_http_request *req, unsigned status,
                        enum clst_status *out_st, struct clst_err *err);
    /*
     * Optional, both or neither: for an observer that batches its `after` steps (the audit
     * log's group commit) and wants to know that one is coming. handler_begins is called just
     * before the route's handler runs; when it returns true, handler_answered is called exactly
     * once for that request: right after this observer's `after` step has been called (whether
     * it finished or deferred the request), or when the request ends without one. Must not
     * block; handler_answered gets no request (the request may be gone by then).
     */
    bool (*handler_begins)(void *ctx, const struct clst_http_request *req);
    void (*handler_answered)(void *ctx);
};

/* Suspends the request's connection; only inside before_async/after_async (see above). */
void clst_http_request_defer(struct clst_http_request *req);
/* Ends a deferred step with its result (err may be NULL when st is CLST_OK); from any thread,
 * exactly once per clst_http_request_defer(). The request must not be touched afterwards. */
void clst_http_request_resume(struct clst_http_request *req, enum clst_status st,
                              const struct clst_err *err);

#define CLST_SERVER_OBSERVERS_MAX 4
#define CLST_HTTP_NOTES_MAX       16  /* notes per request */
#define CLST_HTTP_NOTE_KEY_MAX    32  /* bytes of a note's key */
#define CLST_HTTP_NOTE_VALUE_MAX  256 /* bytes of a note's value (longer values are refused) */

/* The pattern of the route that matched ("/keys/{name}/{version}/encrypt"), or NULL when the
 * request was refused before routing (400, 404, 405, 414). */
const char *clst_http_request_route(const struct clst_http_request *req);
/* The principal's name (clst_server_principal_namer_set), or NULL. */
const char *clst_http_request_identity(const struct clst_http_request *req);
/* Nanoseconds since the request arrived. */
uint64_t clst_http_request_elapsed_ns(const struct clst_http_request *req);
/*
 * Handlers attach facts for observers (the audit record): the operation, an object's version,
 * a release's token id and decision… Keys are [a-z0-9_.-]{1,32}; values are printable text (no
 * control characters), copied; never put key material or secret values here. Setting a key
 * again replaces its value. CLST_E_INVAL for a bad key or value, CLST_E_LIMIT past
 * CLST_HTTP_NOTES_MAX. The request is const for handlers; notes are the one thing they add.
 */
enum clst_status clst_http_request_note(const struct clst_http_request *req, const char *key,
                                        const char *value);
size_t clst_http_request_note_count(const struct clst_http_request *req);
bool clst_http_request_note_at(const struct clst_http_request *req, size_t i, const char **out_key,
                               const char **out_value);
/* The value of note `key`, or NULL. */
const char *clst_http_request_note_get(const struct clst_http_request *req, const char *key);

/* ---- the server ----------------------------------------------------------------------------- */

enum clst_server_io {
    CLST_SERVER_IO_EPOLL = 0, /* default: one epoll loop per worker thread */
    CLST_SERVER_IO_POLL,      /* poll() per worker thread (kept for comparison and portability) */
};

struct clst_server_config {
    const char *host;         /* IP literal or "localhost" (= 127.0.0.1) */
    uint16_t port;            /* 0: the kernel picks a free port (see clst_server_port) */
    const char *tls_cert_pem; /* server certificate (then any intermediates), PEM, NUL-ended */
    const char *tls_key_pem;  /* its private key, PEM, NUL-terminated (copied to wiped memory) */
    unsigned thread_count;    /* worker threads; 0: 2 × online CPUs */
    size_t max_body_size;     /* request body cap in bytes; 0: CLST_SERVER_DEFAULT_MAX_BODY */
    unsigned max_connections; /* 0: CLST_SERVER_DEFAULT_CONNECTIONS */
    unsigned idle_timeout_s;  /* idle connections are closed after this; 0: default */
    /* The 401 challenge: `Bearer authorization="<challenge_authorization>",
     * resource="<challenge_resource>"`. NULL: defaults documented in src/server/README.md. */
    const char *challenge_authorization;
    const char *challenge_resource;
    enum clst_server_io io;
};

struct clst_server;

/* Fills cfg with the defaults (127.0.0.1:8443, everything else 0/NULL = default). */
void clst_server_config_init(struct clst_server_config *cfg);

/* Validates and copies the configuration; registers GET /healthz. Does not listen yet. */
enum clst_status clst_server_new(const struct clst_server_config *cfg, struct clst_server **out,
                                 struct clst_err *err);
/* Adds a route (before start only). CLST_E_INVAL for a bad pattern or a route added after start,
 * CLST_E_CONFLICT for a second route with the same method and pattern shape. */
enum clst_status clst_server_route_add(struct clst_server *s, const struct clst_server_route *route,
                                       struct clst_err *err);
/* Sets the authentication hook (before start only; copied). */
enum clst_status clst_server_auth_set(struct clst_server *s, const struct clst_server_auth *auth,
                                      struct clst_err *err);
/* Adds an observer (before start only; copied). CLST_E_LIMIT past CLST_SERVER_OBSERVERS_MAX. */
enum clst_status clst_server_observer_add(struct clst_server *s,
                                          const struct clst_server_observer *observer,
                                          struct clst_err *err);
/* Binds and starts serving. Refuses (CLST_E_INVAL) when a protected route exists without a hook. */
enum clst_status clst_server_start(struct clst_server *s, struct clst_err *err);
/* The bound port (useful after starting on port 0); 0 before start. */
uint16_t clst_server_port(const struct clst_server *s);
/* Requests received and not yet completed. */
unsigned clst_server_in_flight(const struct clst_server *s);
/*
 * Graceful stop: stops accepting connections, lets requests in flight finish (responses then
 * carry "Connection: close"), waits for them up to drain_timeout_ms, then stops the daemon,
 * closing idle connections. A handler still running at the deadline is not interrupted: the
 * stop waits for it to return. CLST_OK when everything drained in time, CLST_E_LIMIT (with a
 * message) when the deadline passed; the server is stopped either way. Not async-signal-safe:
 * call it from a normal thread (the serve command uses signalfd).
 */
enum clst_status clst_server_stop(struct clst_server *s, unsigned drain_timeout_ms,
                                  struct clst_err *err);
/* Stops immediately if still running (no drain) and frees. NULL is a no-op. */
void clst_server_free(struct clst_server *s);

/* Parses "HOST:PORT" / "[IPv6]:PORT" (HOST an IP literal or "localhost"; PORT 0..65535) into
 * host (without brackets; host_cap >= 46) and port. */
enum clst_status clst_server_listen_parse(const char *s, char *host, size_t host_cap,
                                          uint16_t *out_port, struct clst_err *err);

/* ---- the data directory --------------------------------------------------------------------- */

/* File names inside the data directory. */
#define CLST_DATADIR_CA_CERT     "ca.pem" /* CA certificate: clients pin this */
#define CLST_DATADIR_CA_KEY      "ca.key" /* 0600 */
#define CLST_DATADIR_SERVER_CERT "server.pem"
#define CLST_DATADIR_SERVER_KEY  "server.key"  /* 0600 */
#define CLST_DATADIR_MASTER_KEY  "master.key"  /* 0600, 32 raw bytes */
#define CLST_DATADIR_ADMIN_TOKEN "admin-token" /* 0600, the token, for the operator (optional) */
#define CLST_DATADIR_ADMIN_HASH  "admin-token.sha256" /* 0600, hex SHA-256 of the token text */
#define CLST_DATADIR_PORT        "serve.port"         /* the bound port while serving */
#define CLST_DATADIR_LOCK        ".lock"
/* With the vault's master key in an HSM: the attestation service's seal key, wrapped by the HSM
 * (it replaces master.key, which may then be destroyed). */
#define CLST_DATADIR_SEAL_KEY "attest-seal.key"

#define CLST_MASTER_KEY_SIZE       32
#define CLST_ADMIN_TOKEN_SIZE      32 /* random bytes; the token is their base64url (43 chars) */
#define CLST_FINGERPRINT_TEXT_SIZE 96 /* "AB:CD:…" for SHA-256: 32 × 3 − 1 + NUL */

/*
 * An open data directory. On first use the directory (0700) is created and filled: a CA (EC
 * P-256, 10 years), a server certificate issued by it for the listen host, a master key and a
 * first administrator token. Later opens check ownership and permissions (refusing anything
 * readable by group or others), load and cross-check everything, and re-issue the server
 * certificate when it does not cover the listen host or expires within 30 days. An exclusive lock
 * keeps a second server off the same directory while this object lives.
 */
struct clst_server_datadir {
    char *path;
    char *ca_cert_pem;                  /* NUL-terminated */
    char *server_cert_pem;              /* NUL-terminated */
    struct clst_secret *server_key_pem; /* NUL-terminated PEM (size includes the NUL) */
    X509 *ca_cert;
    uint8_t ca_sha256[32];                           /* SHA-256 of the CA certificate's DER */
    char ca_fingerprint[CLST_FINGERPRINT_TEXT_SIZE]; /* "AB:CD:…", as openssl x509 -fingerprint */
    /* CLST_MASTER_KEY_SIZE bytes; NULL when master.key was removed after the master key moved
     * to an HSM (attest-seal.key exists then). */
    struct clst_secret *master_key;
    uint8_t admin_token_sha256[32]; /* SHA-256 of the token text (what clients send) */
    /* Only right after creation: the token text (NUL-terminated), for the caller to show once;
     * wipe it with clst_server_datadir_forget_token(). NULL otherwise. */
    struct clst_secret *first_admin_token;
    bool created;            /* this open created the directory's contents */
    bool server_cert_issued; /* a (new) server certificate was issued by this open */
    int dir_fd;
    int lock_fd;
};

/* `clock` may be NULL (system clock). listen_host goes into the server certificate. */
enum clst_status clst_server_datadir_open(const char *path, const char *listen_host,
                                          const struct clst_clock *clock,
                                          struct clst_server_datadir **out, struct clst_err *err);
/* Writes the port to DIR/serve.port ("<port>\n", replaced atomically). */
enum clst_status clst_server_datadir_write_port(struct clst_server_datadir *d, uint16_t port,
                                                struct clst_err *err);
/* Reads DIR/NAME into out (a private, regular file owned by us; CLST_E_NOTFOUND when absent). */
enum clst_status clst_server_datadir_read(struct clst_server_datadir *d, const char *name,
                                          struct clst_buf *out, struct clst_err *err);
/* Creates DIR/NAME (0600) with `data`, durably and atomically; CLST_E_CONFLICT if it exists. */
enum clst_status clst_server_datadir_create(struct clst_server_datadir *d, const char *name,
                                            const void *data, size_t size, struct clst_err *err);
/* Removes DIR/serve.port (at a clean exit). */
void clst_server_datadir_remove_port(struct clst_server_datadir *d);
void clst_server_datadir_forget_token(struct clst_server_datadir *d);
void clst_server_datadir_free(struct clst_server_datadir *d);

/* The SHA-256 fingerprint of a certificate, as raw bytes and as "AB:CD:…" text. */
enum clst_status clst_server_cert_fingerprint(X509 *cert, uint8_t out[static 32],
                                              char text[static CLST_FINGERPRINT_TEXT_SIZE]);

#endif /* CLOISTER_SERVER_H */
