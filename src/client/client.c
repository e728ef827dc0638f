/*
 * The libcurl client (see include/cloister/client.h): HTTPS only, TLS >= 1.2, verified peer and
 * host, optional CA pinning, bearer token, JSON in and out through wiped, capped buffers.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <curl/curl.h>

#include <cloister/client.h>

#define REQUEST_BODY_MAX (1024u * 1024u)

struct clst_client {
    CURL *curl;
    char url[CLST_CLIENT_URL_MAX + 1];
    char *auth_header; /* "Authorization: Bearer …" (secret; wiped on free) */
    size_t auth_header_size;
    char *ca_file;
    char api_version[32];
    long timeout_s;
    long connect_timeout_s;
};

const char *
clst_client_url(const struct clst_client *c)
{
    return c->url;
}

/* https://host[:port] with an authority of RFC 3986 characters and no path, query, fragment or
 * user info. */
static bool
url_ok(const char *u, size_t n)
{
    if (n <= 8 || strncasecmp(u, "https://", 8) != 0) {
        return false;
    }
    for (size_t i = 8; i < n; i++) {
        char c = u[i];
        bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  c == '-' || c == '.' || c == ':' || c == '[' || c == ']' || c == '_' || c == '~';
        if (!ok) {
            return false;
        }
    }
    return true;
}

static bool
token_ok(const char *t)
{
    size_t n = strlen(t);
    if (n == 0 || n > CLST_CLIENT_TOKEN_MAX) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (t[i] <= 0x20 || t[i] >= 0x7f) {
            return false;
        }
    }
    return true;
}

void
clst_client_free(struct clst_client *c)
{
    if (c == NULL) {
        return;
    }
    if (c->curl != NULL) {
        curl_easy_cleanup(c->curl);
    }
    if (c->auth_header != NULL) {
        clst_wipe(c->auth_header, c->auth_header_size);
        free(c->auth_header);
    }
    free(c->ca_file);
    free(c);
}

enum clst_status
clst_client_new(const struct clst_client_config *cfg, struct clst_client **out,
                struct clst_err *err)
{
    enum clst_status rc = CLST_E_INVAL;
    struct clst_client *c = NULL;

    if (cfg == NULL || out == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "clst_client_new: missing argument");
    }
    if (cfg->url == NULL || cfg->url[0] == '\0') {
        return clst_err_set(err, CLST_E_INVAL,
                            "no server URL: pass --url https://HOST:PORT or set %s",
                            CLST_CLIENT_ENV_URL);
    }
    size_t n = strlen(cfg->url);
    while (n > 0 && cfg->url[n - 1] == '/') {
        n--;
    }
    if (n > CLST_CLIENT_URL_MAX || !url_ok(cfg->url, n)) {
        return clst_err_set(err, CLST_E_INVAL,
                            "the server URL must be https://HOST[:PORT] without a path (plain "
                            "http is not supported)");
    }
    if (cfg->token != NULL && !token_ok(cfg->token)) {
        return clst_err_set(err, CLST_E_INVAL,
                            "the token is malformed (spaces or control characters, or longer "
                            "than %d characters); check --token or %s",
                            CLST_CLIENT_TOKEN_MAX, CLST_CLIENT_ENV_TOKEN);
    }
    if (cfg->ca_file != NULL && access(cfg->ca_file, R_OK) != 0) {
        return clst_err_set(err, CLST_E_INVAL,
                            "cannot read the CA file '%.200s'; pass the server's DIR/ca.pem with "
                            "--ca or %s",
                            cfg->ca_file, CLST_CLIENT_ENV_CA);
    }
    const char *api = cfg->api_version != NULL ? cfg->api_version : CLST_CLIENT_DEFAULT_API_VERSION;
    if (strlen(api) == 0 || strlen(api) >= 32) {
        return clst_err_set(err, CLST_E_INVAL, "the api-version is empty or too long");
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        return clst_err_set(err, CLST_E_INTERNAL, "libcurl could not be initialized");
    }
    c = calloc(1, sizeof *c);
    if (c == NULL) {
        rc = clst_err_set(err, CLST_E_NOMEM, "out of memory");
        goto out;
    }
    memcpy(c->url, cfg->url, n);
    c->url[n] = '\0';
    memcpy(c->api_version, api, strlen(api) + 1);
    c->timeout_s = cfg->timeout_s != 0 ? (long)cfg->timeout_s : (long)CLST_CLIENT_DEFAULT_TIMEOUT;
    c->connect_timeout_s = cfg->connect_timeout_s != 0 ? (long)cfg->connect_timeout_s
                                                       : (long)CLST_CLIENT_DEFAULT_CONNECT_TIMEOUT;
    if (cfg->ca_file != NULL && (c->ca_file = strdup(cfg->ca_file)) == NULL) {
        rc = clst_err_set(err, CLST_E_NOMEM, "out of memory");
        goto out;
    }
    if (cfg->token != NULL) {
        static const char prefix[] = "Authorization: Bearer ";
        c->auth_header_size = sizeof prefix + strlen(cfg->token);
        c->auth_header = malloc(c->auth_header_size);
        if (c->auth_header == NULL) {
            rc = clst_err_set(err, CLST_E_NOMEM, "out of memory");
            goto out;
        }
        snprintf(c->auth_header, c->auth_header_size, "%s%s", prefix, cfg->token);
    }
    c->curl = curl_easy_init();
    if (c->curl == NULL) {
        rc = clst_err_set(err, CLST_E_NOMEM, "libcurl could not create a handle");
        goto out;
    }
    *out = c;
    c = NULL;
    rc = CLST_OK;
out:
    clst_client_free(c);
    return rc;
}

void
clst_client_response_cleanup(struct clst_client_response *resp)
{
    if (resp != NULL) {
        json_decref(resp->body);
        memset(resp, 0, sizeof *resp);
    }
}

enum clst_status
clst_client_path_escape(const char *in, struct clst_buf *out)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)in; *p != '\0'; p++) {
        unsigned char ch = *p;
        bool unreserved = (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
                          (ch >= 'A' && ch <= 'Z') || ch == '-' || ch == '.' || ch == '_' ||
                          ch == '~';
        enum clst_status st;
        if (unreserved) {
            st = clst_buf_append_byte(out, ch);
        } else {
            char e[3] = {'%', hex[ch >> 4], hex[ch & 15]};
            st = clst_buf_append(out, e, sizeof e);
        }
        if (st != CLST_OK) {
            return st;
        }
    }
    return CLST_OK;
}

/* ---- one request ---------------------------------------------------------------------------- */

struct sink {
    struct clst_buf body;
    bool too_big;
    char request_id[64];
};

static size_t
on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
    struct sink *s = userdata;
    size_t n = size * nmemb;
    if (clst_buf_append(&s->body, data, n) != CLST_OK) {
        s->too_big = true;
        return 0; /* aborts the transfer */
    }
    return n;
}

static size_t
on_header(char *data, size_t size, size_t nmemb, void *userdata)
{
    struct sink *s = userdata;
    size_t n = size * nmemb;
    static const char name[] = "x-ms-request-id:";
    if (n > sizeof name - 1 && strncasecmp(data, name, sizeof name - 1) == 0) {
        size_t i = sizeof name - 1;
        size_t j = 0;
        while (i < n && (data[i] == ' ' || data[i] == '\t')) {
            i++;
        }
        for (; i < n && j + 1 < sizeof s->request_id; i++) {
            char ch = data[i];
            if (ch == '\r' || ch == '\n') {
                break;
            }
            s->request_id[j++] = (ch > 0x20 && ch < 0x7f) ? ch : '?';
        }
        s->request_id[j] = '\0';
    }
    return n;
}

/* The full URL: base + path (or the absolute path itself) + query + api-version. */
static enum clst_status
build_url(struct clst_client *c, const char *path, const char *const *query, struct clst_buf *url,
          struct clst_err *err)
{
    enum clst_status st;
    size_t base_n = strlen(c->url);
    if (strncasecmp(path, "https://", 8) == 0 || strncasecmp(path, "http://", 7) == 0) {
        if (strncmp(path, c->url, base_n) != 0 || path[base_n] != '/') {
            return clst_err_set(err, CLST_E_INVAL,
                                "the server sent a link to another origin; refusing to send the "
                                "token there (expected it to start with %s/)",
                                c->url);
        }
        st = clst_buf_append_str(url, path);
    } else {
        if (path[0] != '/') {
            return clst_err_set(err, CLST_E_INVAL, "request paths start with '/'");
        }
        st = clst_buf_append_str(url, c->url);
        if (st == CLST_OK) {
            st = clst_buf_append_str(url, path);
        }
    }
    for (const unsigned char *p = (const unsigned char *)path; *p != '\0' && st == CLST_OK; p++) {
        if (*p <= 0x20 || *p >= 0x7f || *p == '#') {
            return clst_err_set(err, CLST_E_INVAL,
                                "the request path has a space, control or non-ASCII character; "
                                "escape names with clst_client_path_escape");
        }
    }
    bool has_query = strchr(path, '?') != NULL;
    bool has_api = strstr(path, "api-version=") != NULL || strstr(path, "api%2Dversion=") != NULL ||
                   strstr(path, "api%2dversion=") != NULL;
    if (st == CLST_OK && !has_api) {
        st = clst_buf_append_str(url, has_query ? "&api-version=" : "?api-version=");
        has_query = true;
        if (st == CLST_OK) {
            st = clst_client_path_escape(c->api_version, url);
        }
    }
    for (size_t i = 0; query != NULL && query[i] != NULL && st == CLST_OK; i += 2) {
        if (query[i + 1] == NULL) {
            return clst_err_set(err, CLST_E_INVAL, "query parameter '%s' has no value", query[i]);
        }
        st = clst_buf_append_byte(url, has_query ? '&' : '?');
        has_query = true;
        if (st == CLST_OK) {
            st = clst_client_path_escape(query[i], url);
        }
        if (st == CLST_OK) {
            st = clst_buf_append_byte(url, '=');
        }
        if (st == CLST_OK) {
            st = clst_client_path_escape(query[i + 1], url);
        }
    }
    if (st == CLST_OK) {
        st = clst_buf_terminate(url);
    }
    if (st != CLST_OK) {
        return clst_err_set(err, st, "the request URL is too long");
    }
    return CLST_OK;
}

/* Everything but the URL and method, which change per request. */
static bool
setup(struct clst_client *c, struct sink *s, struct curl_slist *headers, char *errbuf)
{
    CURL *h = c->curl;
    bool ok = curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf) == CURLE_OK &&
#if LIBCURL_VERSION_NUM >= 0x075500
              curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https") == CURLE_OK &&
              curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "https") == CURLE_OK &&
#endif
              curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L) == CURLE_OK &&
              curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2) == CURLE_OK &&
              curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L) == CURLE_OK &&
              curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L) == CURLE_OK &&
              curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
              curl_easy_setopt(h, CURLOPT_TIMEOUT, c->timeout_s) == CURLE_OK &&
              curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, c->connect_timeout_s) == CURLE_OK &&
              curl_easy_setopt(h, CURLOPT_USERAGENT, "cloister-client") == CURLE_OK &&
              curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers) == CURLE_OK &&
              curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body) == CURLE_OK &&
              curl_easy_setopt(h, CURLOPT_WRITEDATA, s) == CURLE_OK &&
              curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header) == CURLE_OK &&
              curl_easy_setopt(h, CURLOPT_HEADERDATA, s) == CURLE_OK;
    if (ok && c->ca_file != NULL) {
        /* Pinning: only this CA file, not the system store. */
        ok = curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file) == CURLE_OK &&
             curl_easy_setopt(h, CURLOPT_CAPATH, NULL) == CURLE_OK;
    }
    return ok;
}

/* Replaces control characters of server-provided text before it reaches a terminal. */
static void
printable(char *s)
{
    for (; *s != '\0'; s++) {
        if ((unsigned char)*s < 0x20 || *s == 0x7f) {
            *s = '?';
        }
    }
}

static const char *
transport_hint(CURLcode code)
{
    switch (code) {
    case CURLE_PEER_FAILED_VERIFICATION:
#if LIBCURL_VERSION_NUM < 0x073e00
    case CURLE_SSL_CACERT:
#endif
    case CURLE_SSL_CACERT_BADFILE:
        return " (pin the server's CA certificate with --ca DIR/ca.pem or CLOISTER_CA)";
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
        return " (is the server running, and is --url / CLOISTER_URL right?)";
    case CURLE_OPERATION_TIMEDOUT:
        return " (the server did not answer in time)";
    default:
        return "";
    }
}

enum clst_status
clst_client_request(struct clst_client *c, const char *method, const char *path,
                    const char *const *query, const json_t *body,
                    struct clst_client_response *out, struct clst_err *err)
{
    enum clst_status rc = CLST_E_INTERNAL;
    struct clst_buf url;
    struct clst_buf req_body;
    struct sink s;
    struct curl_slist *headers = NULL;
    char errbuf[CURL_ERROR_SIZE];
    bool has_body = body != NULL;

    if (c == NULL || method == NULL || path == NULL || out == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "clst_client_request: missing argument");
    }
    memset(&s, 0, sizeof s);
    errbuf[0] = '\0';
    clst_buf_init(&url, CLST_CLIENT_URL_MAX * 4);
    clst_buf_init_secret(&req_body, REQUEST_BODY_MAX);
    clst_buf_init_secret(&s.body, CLST_CLIENT_RESPONSE_MAX);
    curl_easy_reset(c->curl);

    rc = build_url(c, path, query, &url, err);
    if (rc != CLST_OK) {
        goto out;
    }
    if (has_body) {
        /* Serialized straight into wiped memory: the body may hold a secret value. */
        size_t need = json_dumpb(body, NULL, 0, JSON_COMPACT);
        if (need == 0 || clst_buf_reserve(&req_body, need) != CLST_OK) {
            rc = clst_err_set(err, CLST_E_LIMIT, "the request body is too large or not JSON");
            goto out;
        }
        req_body.size = json_dumpb(body, (char *)req_body.data, need, JSON_COMPACT);
        if (req_body.size != need) {
            rc = clst_err_set(err, CLST_E_INTERNAL, "serializing the request body failed");
            goto out;
        }
    }
    struct curl_slist *t = curl_slist_append(NULL, "Accept: application/json");
    headers = t;
    if (t != NULL) {
        /* No "Expect: 100-continue": the server answers at once anyway. */
        t = curl_slist_append(headers, "Expect:");
    }
    if (t != NULL) {
        /* "Content-Type:" with no value stops curl from adding a form type to empty POSTs. */
        t = curl_slist_append(headers, has_body ? "Content-Type: application/json" : "Content-Type:");
    }
    if (t != NULL && c->auth_header != NULL) {
        t = curl_slist_append(headers, c->auth_header);
    }
    if (t == NULL || !setup(c, &s, headers, errbuf) ||
        curl_easy_setopt(c->curl, CURLOPT_URL, (const char *)url.data) != CURLE_OK) {
        rc = clst_err_set(err, CLST_E_NOMEM, "setting up the request failed");
        goto out;
    }
    bool ok = true;
    if (strcmp(method, "GET") == 0) {
        ok = curl_easy_setopt(c->curl, CURLOPT_HTTPGET, 1L) == CURLE_OK;
    } else {
        ok = curl_easy_setopt(c->curl, CURLOPT_CUSTOMREQUEST, method) == CURLE_OK;
        if (ok && (has_body || strcmp(method, "DELETE") != 0)) {
            ok = curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS,
                                  has_body ? (const char *)req_body.data : "") == CURLE_OK &&
                 curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE,
                                  (curl_off_t)req_body.size) == CURLE_OK;
        }
    }
    if (!ok) {
        rc = clst_err_set(err, CLST_E_INTERNAL, "setting up the request failed");
        goto out;
    }
    CURLcode code = curl_easy_perform(c->curl);
    if (s.too_big) {
        rc = clst_err_set(err, CLST_E_LIMIT, "the response from %s is larger than %u bytes",
                          c->url, CLST_CLIENT_RESPONSE_MAX);
        goto out;
    }
    if (code != CURLE_OK) {
        rc = clst_err_set(err, CLST_E_IO, "%s %s: %s%s", method, c->url,
                          errbuf[0] != '\0' ? errbuf : curl_easy_strerror(code),
                          transport_hint(code));
        goto out;
    }
    long status = 0;
    curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
    memset(out, 0, sizeof *out);
    out->status = status;
    memcpy(out->request_id, s.request_id, sizeof out->request_id);
    if (s.body.size > 0) {
        out->body = json_loadb((const char *)s.body.data, s.body.size, JSON_REJECT_DUPLICATES, NULL);
    }
    rc = CLST_OK;
out:
    curl_slist_free_all(headers);
    /* The URL and headers live in curl's handle until the next reset; the body buffers are
     * ours and wiped here. */
    curl_easy_reset(c->curl);
    clst_buf_cleanup(&url);
    clst_buf_cleanup(&req_body);
    clst_buf_cleanup(&s.body);
    return rc;
}

enum clst_status
clst_client_call(struct clst_client *c, const char *method, const char *path,
                 const char *const *query, const json_t *body, json_t **out_body,
                 struct clst_err *err)
{
    struct clst_client_response resp;
    memset(&resp, 0, sizeof resp);
    enum clst_status st = clst_client_request(c, method, path, query, body, &resp, err);
    if (st != CLST_OK) {
        return st;
    }
    if (resp.status >= 200 && resp.status < 300) {
        if (out_body != NULL) {
            *out_body = resp.body;
            resp.body = NULL;
        }
        clst_client_response_cleanup(&resp);
        return CLST_OK;
    }
    char code[64] = "";
    char msg[200] = "";
    json_t *e = resp.body != NULL ? json_object_get(resp.body, "error") : NULL;
    const char *ec = json_string_value(json_object_get(e, "code"));
    const char *em = json_string_value(json_object_get(e, "message"));
    if (ec != NULL) {
        snprintf(code, sizeof code, " %s", ec);
        printable(code);
    }
    if (em != NULL) {
        snprintf(msg, sizeof msg, ": %s", em);
        printable(msg);
    }
    switch (resp.status) {
    case 400:
        st = CLST_E_INVAL;
        break;
    case 401:
    case 403:
        st = CLST_E_DENIED;
        break;
    case 404:
        st = CLST_E_NOTFOUND;
        break;
    case 409:
        st = CLST_E_CONFLICT;
        break;
    case 413:
        st = CLST_E_LIMIT;
        break;
    default:
        st = CLST_E_IO;
        break;
    }
    clst_err_set(err, st, "HTTP %ld%s%s%s%s%s", resp.status, code, msg,
                 resp.status == 401 ? " (check --token or " CLST_CLIENT_ENV_TOKEN ")" : "",
                 resp.status >= 500 && resp.request_id[0] != '\0' ? "; request id " : "",
                 resp.status >= 500 ? resp.request_id : "");
    clst_client_response_cleanup(&resp);
    return st;
}
