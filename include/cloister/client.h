/*
 * Cloister client: a small libcurl client for the vault's REST API (and later the attestation
 * service), used by the CLI, by workloads and by the envelope's vault provider.
 *
 * Transport: HTTPS only (no plain HTTP, no redirects), TLS 1.2 or newer, the peer certificate and
 * host name always verified, against the CA file given (CA pinning: `cloister serve` prints and
 * writes DIR/ca.pem) or else the system's trust store. A bearer token goes into every request's
 * Authorization header. Request and response bodies live in wiped memory (they may carry secret
 * values); responses are capped (CLST_CLIENT_RESPONSE_MAX).
 *
 * A client is one connection's worth of state (it reuses the connection): use one per thread.
 * clst_client_new() calls curl_global_init(), which is not thread-safe on old libcurl: create the
 * first client before starting threads.
 */
#ifndef CLOISTER_CLIENT_H
#define CLOISTER_CLIENT_H

#include <cloister/core.h>

#include <jansson.h>

#define CLST_CLIENT_DEFAULT_TIMEOUT         30u /* seconds for a whole request */
#define CLST_CLIENT_DEFAULT_CONNECT_TIMEOUT 10u
#define CLST_CLIENT_DEFAULT_API_VERSION     "2025-07-01"
#define CLST_CLIENT_RESPONSE_MAX            (4u * 1024u * 1024u) /* bytes of a response body */
#define CLST_CLIENT_URL_MAX                 1024
#define CLST_CLIENT_TOKEN_MAX               4096

/* Environment variables clst_client_config_from_env() reads. */
#define CLST_CLIENT_ENV_URL   "CLOISTER_URL"
#define CLST_CLIENT_ENV_TOKEN "CLOISTER_TOKEN"
#define CLST_CLIENT_ENV_CA    "CLOISTER_CA"

struct clst_client_config {
    const char *url;            /* "https://host[:port]" (a trailing '/' is ignored; no path) */
    const char *token;          /* bearer token; NULL: requests go without Authorization */
    const char *ca_file;        /* PEM file of the CA(s) to trust instead of the system store */
    unsigned timeout_s;         /* 0: CLST_CLIENT_DEFAULT_TIMEOUT */
    unsigned connect_timeout_s; /* 0: CLST_CLIENT_DEFAULT_CONNECT_TIMEOUT */
    const char *api_version;    /* added to every request; NULL: the default above */
};

/* Zeroes cfg (all defaults, nothing set). */
void clst_client_config_init(struct clst_client_config *cfg);
/* Fills url, token and ca_file from CLOISTER_URL, CLOISTER_TOKEN and CLOISTER_CA where they are
 * still NULL (the pointers point into the environment). */
void clst_client_config_from_env(struct clst_client_config *cfg);

struct clst_client;

/* Validates and copies the configuration (CLST_E_INVAL with a message saying which setting is
 * wrong: a missing or non-https URL, a token with spaces or control characters, an unreadable
 * CA file). */
enum clst_status clst_client_new(const struct clst_client_config *cfg, struct clst_client **out,
                                 struct clst_err *err);
void clst_client_free(struct clst_client *c);
/* The base URL in use (without a trailing '/'). */
const char *clst_client_url(const struct clst_client *c);

struct clst_client_response {
    long status;       /* HTTP status */
    json_t *body;      /* the JSON body, or NULL when there was none (204) or it was not JSON */
    char request_id[64]; /* the server's x-ms-request-id ("" if none) */
};
void clst_client_response_cleanup(struct clst_client_response *resp);

/*
 * Sends one request and returns whatever status the server answered (CLST_OK with out->status).
 * `path` is either a path relative to the base URL ("/secrets/db"; escape names with
 * clst_client_path_escape) or an absolute URL that starts with the base URL (a nextLink): any
 * other absolute URL is refused (CLST_E_INVAL), so the token never goes to another host.
 * `query`: NULL or a NULL-terminated array of key, value, key, value… (escaped here);
 * api-version is added unless the path already carries one. `body` (may be NULL) is sent as
 * JSON. CLST_E_IO for transport failures (connection, TLS, timeout), with curl's explanation
 * and a hint (e.g. to pin the CA with --ca); CLST_E_LIMIT for a response over the cap.
 */
enum clst_status clst_client_request(struct clst_client *c, const char *method, const char *path,
                                     const char *const *query, const json_t *body,
                                     struct clst_client_response *out, struct clst_err *err);

/*
 * clst_client_request() that turns an error status into an error: 400 → CLST_E_INVAL,
 * 401 → CLST_E_DENIED (the message says to check the token), 403 → CLST_E_DENIED, 404 →
 * CLST_E_NOTFOUND, 409 → CLST_E_CONFLICT, 413 → CLST_E_LIMIT, anything else → CLST_E_IO;
 * err->msg = "HTTP <status> <error.code>: <error.message>" from the body (control characters
 * replaced). On success *out_body (may be NULL) receives the JSON body (NULL for 204); the
 * caller json_decref()s it.
 */
enum clst_status clst_client_call(struct clst_client *c, const char *method, const char *path,
                                  const char *const *query, const json_t *body, json_t **out_body,
                                  struct clst_err *err);

/* Appends `in` percent-encoded for one path segment (everything but RFC 3986 unreserved). */
enum clst_status clst_client_path_escape(const char *in, struct clst_buf *out);

#endif /* CLOISTER_CLIENT_H */
