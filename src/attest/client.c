/*
 * A small HTTPS client (libcurl) for the attestation service's REST API, used by the CLI and the
 * tests: https only, the peer verified against the given CA bundle (the server's ca.pem) and host
 * name, the response capped at CLST_ATTEST_CLIENT_MAX_RESPONSE bytes, no redirects followed.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "attest_int.h"

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_FAILED_INIT;

static void
curl_init(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

struct sink {
    struct clst_buf *buf;
    bool too_big;
};

static size_t
on_data(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct sink *s = userdata;
    size_t n = size * nmemb;
    if (clst_buf_append(s->buf, ptr, n) != CLST_OK) {
        s->too_big = true;
        return 0;
    }
    return n;
}

enum clst_status
clst_attest_client_request(const struct clst_attest_client *c, const char *method,
                           const char *path_query, const char *content_type, const void *body,
                           size_t body_size, long *out_status, struct clst_buf *out_body,
                           struct clst_err *err)
{
    enum clst_status rc = CLST_E_IO;
    CURL *h = NULL;
    struct curl_slist *headers = NULL;
    char *url = NULL;
    char *auth = NULL;
    struct sink sink = {out_body, false};

    if (c == NULL || c->url == NULL || method == NULL || path_query == NULL ||
        path_query[0] != '/' || out_status == NULL || out_body == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "clst_attest_client_request: bad argument");
    }
    if (strncmp(c->url, "https://", 8) != 0) {
        return clst_err_set(err, CLST_E_INVAL, "the service URL must start with https:// (got %.64s)",
                            c->url);
    }
    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK) {
        return clst_err_set(err, CLST_E_INTERNAL, "libcurl failed to initialize");
    }
    size_t ulen = strlen(c->url) + strlen(path_query) + 1;
    url = malloc(ulen);
    h = curl_easy_init();
    if (url == NULL || h == NULL) {
        rc = clst_err_set(err, CLST_E_NOMEM, "out of memory");
        goto out;
    }
    snprintf(url, ulen, "%s%s", c->url, path_query);
    headers = curl_slist_append(headers, "Accept: application/json");
    if (content_type != NULL) {
        char ct[128];
        snprintf(ct, sizeof(ct), "Content-Type: %s", content_type);
        headers = curl_slist_append(headers, ct);
    }
    if (c->bearer != NULL) {
        size_t alen = strlen(c->bearer) + 32;
        auth = malloc(alen);
        if (auth == NULL) {
            rc = clst_err_set(err, CLST_E_NOMEM, "out of memory");
            goto out;
        }
        snprintf(auth, alen, "Authorization: Bearer %s", c->bearer);
        headers = curl_slist_append(headers, auth);
    }
    if (headers == NULL) {
        rc = clst_err_set(err, CLST_E_NOMEM, "out of memory");
        goto out;
    }
    long timeout = c->timeout_s > 0 ? c->timeout_s : 30;
    if (curl_easy_setopt(h, CURLOPT_URL, url) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https") != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L) != CURLE_OK ||
        (c->ca_file != NULL && curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file) != CURLE_OK) ||
        curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_TIMEOUT, timeout) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink) != CURLE_OK) {
        rc = clst_err_set(err, CLST_E_INTERNAL, "cannot configure libcurl");
        goto out;
    }
    if (strcmp(method, "GET") == 0) {
        (void)curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else if (body != NULL || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0) {
        (void)curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "");
        (void)curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_size);
    }
    CURLcode cc = curl_easy_perform(h);
    if (sink.too_big) {
        rc = clst_err_set(err, CLST_E_LIMIT, "the response from %s is too large", c->url);
        goto out;
    }
    if (cc != CURLE_OK) {
        rc = clst_err_set(err, CLST_E_IO, "cannot reach %s: %s%s", c->url, curl_easy_strerror(cc),
                          (cc == CURLE_PEER_FAILED_VERIFICATION || cc == CURLE_SSL_CACERT_BADFILE)
                              ? " (give the server's CA certificate with --ca DATA/ca.pem)"
                              : "");
        goto out;
    }
    long status = 0;
    (void)curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    *out_status = status;
    rc = CLST_OK;
out:
    curl_slist_free_all(headers);
    if (auth != NULL) {
        clst_wipe(auth, strlen(auth));
    }
    free(auth);
    free(url);
    if (h != NULL) {
        curl_easy_cleanup(h);
    }
    return rc;
}

enum clst_status
clst_attest_client_json(const struct clst_attest_client *c, const char *method,
                        const char *path_query, const json_t *body, json_t **out,
                        struct clst_err *err)
{
    enum clst_status rc;
    char *text = NULL;
    long status = 0;
    struct clst_buf resp;
    clst_buf_init(&resp, CLST_ATTEST_CLIENT_MAX_RESPONSE);
    if (body != NULL && (text = json_dumps(body, JSON_COMPACT)) == NULL) {
        return clst_err_set(err, CLST_E_NOMEM, "out of memory");
    }
    rc = clst_attest_client_request(c, method, path_query, text ? "application/json" : NULL, text,
                                    text ? strlen(text) : 0, &status, &resp, err);
    if (rc != CLST_OK) {
        goto out;
    }
    json_t *j = json_loadb(resp.size ? (const char *)resp.data : "", resp.size, 0, NULL);
    if (status >= 200 && status < 300) {
        if (j == NULL && status != 204) {
            rc = clst_err_set(err, CLST_E_MALFORMED, "%s %s: the answer is not JSON", method,
                              path_query);
            goto out;
        }
        *out = j ? j : json_object();
        rc = CLST_OK;
        goto out;
    }
    const char *msg = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
    const char *code = json_string_value(json_object_get(json_object_get(j, "error"), "code"));
    rc = status == 400   ? CLST_E_VERIFY
         : status == 401 ? CLST_E_DENIED
         : status == 403 ? CLST_E_DENIED
         : status == 404 ? CLST_E_NOTFOUND
         : status == 409 ? CLST_E_CONFLICT
                         : CLST_E_IO;
    clst_err_set(err, rc, "the service answered %ld%s%s: %s", status, code ? " " : "",
                 code ? code : "", msg ? msg : "(no message)");
    json_decref(j);
out:
    free(text);
    clst_buf_cleanup(&resp);
    return rc;
}
