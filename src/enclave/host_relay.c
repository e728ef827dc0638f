/*
 * The host's relays for key release from inside an enclave: clst.attest carries the enclave's
 * evidence and runtime data to the attestation service and returns the token; clst.release
 * carries the token to the vault's release endpoint and returns the JWS (with the CA the host
 * pins, for enclaves that have no pin of their own).
 *
 * Trust: everything the host handles here is public (evidence, a public key in the runtime data,
 * the token, a key wrapped to the enclave's key). Requests come from the enclave, which the host
 * does not trust either: each is decoded with relay.c's strict decoders (caps, alphabets) before
 * anything goes on the network, and only to the URLs the host was configured with. Services'
 * answers are capped by the client (CLST_CLIENT_RESPONSE_MAX) and again here, and errors go back
 * to the enclave as a status, the HTTP status and the service's message (printable ASCII only).
 * Logs carry sizes and statuses, never bodies.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cloister/client.h>
#include <cloister/crypto.h>

#include "enclave/host_int.h"

#define RELAY_PATH_MAX   512
#define RELAY_TYPE_MAX   32
#define RELAY_API_MAX    32
#define RELAY_TOKEN_FILE (CLST_CLIENT_TOKEN_MAX + 2)

struct host_relay {
    struct clst_client *attest; /* NULL: no attestation URL configured */
    struct clst_client *vault;  /* NULL: no vault URL configured */
    char attest_type[RELAY_TYPE_MAX + 1];
    uint8_t *ca; /* the pinned CA's PEM text (for the enclave), or NULL */
    size_t ca_size;
};

void
host_relay_free(struct host_relay *r)
{
    if (r == NULL) {
        return;
    }
    clst_client_free(r->attest);
    clst_client_free(r->vault);
    free(r->ca);
    free(r);
}

/* Reads a whole small text file (at most cap bytes). */
static enum clst_status
read_small(const char *path, size_t cap, struct clst_buf *out, const char *what,
           struct clst_err *err)
{
    FILE *f = fopen(path, "rb");
    uint8_t chunk[4096];
    if (f == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "cannot read the %s %s: %s", what, path,
                            strerror(errno));
    }
    enum clst_status st = CLST_OK;
    for (;;) {
        size_t n = fread(chunk, 1, sizeof(chunk), f);
        if (n > 0 && (out->size + n > cap || clst_buf_append(out, chunk, n) != CLST_OK)) {
            st = clst_err_set(err, CLST_E_LIMIT, "the %s %s is larger than %zu bytes", what, path,
                              cap);
            break;
        }
        if (n < sizeof(chunk)) {
            if (ferror(f)) {
                st = clst_err_set(err, CLST_E_IO, "reading the %s %s failed", what, path);
            }
            break;
        }
    }
    fclose(f);
    return st;
}

static bool
text_ok(const char *s, size_t max)
{
    size_t n = strnlen(s, max + 1);
    if (n == 0 || n > max) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] <= 0x20 || s[i] > 0x7e) {
            return false;
        }
    }
    return true;
}

enum clst_status
host_relay_new(const struct clst_host_relay_config *cfg, struct host_relay **out,
               struct clst_err *err)
{
    struct host_relay *r = NULL;
    struct clst_buf tok;
    struct clst_client_config cc;
    enum clst_status st = CLST_E_INVAL;

    clst_buf_init_secret(&tok, RELAY_TOKEN_FILE);
    if (cfg == NULL || out == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "relay: missing configuration");
    }
    if (cfg->attest_url == NULL && cfg->vault_url == NULL) {
        return clst_err_set(err, CLST_E_INVAL,
                            "relay: give the attestation service's URL, the vault's, or both");
    }
    const char *type =
        cfg->attest_type != NULL ? cfg->attest_type : CLST_HOST_RELAY_ATTEST_TYPE_DEFAULT;
    const char *api =
        cfg->attest_api != NULL ? cfg->attest_api : CLST_HOST_RELAY_ATTEST_API_DEFAULT;
    if (!frame_name_valid_str(type) || strlen(type) > RELAY_TYPE_MAX ||
        !text_ok(api, RELAY_API_MAX)) {
        return clst_err_set(err, CLST_E_INVAL, "relay: invalid attestation type or api-version");
    }
    r = calloc(1, sizeof(*r));
    if (r == NULL) {
        return clst_err_set(err, CLST_E_NOMEM, "relay: out of memory");
    }
    snprintf(r->attest_type, sizeof(r->attest_type), "%s", type);
    if (cfg->ca_file != NULL) {
        struct clst_buf ca;
        clst_buf_init(&ca, RELAY_CA_MAX);
        st = read_small(cfg->ca_file, RELAY_CA_MAX, &ca, "CA file", err);
        if (st == CLST_OK && ca.size > 0) {
            r->ca = clst_buf_steal(&ca, &r->ca_size);
        }
        clst_buf_cleanup(&ca);
        if (st != CLST_OK) {
            goto out;
        }
    }
    /* The vault credential: given, or the first line of a file. */
    const char *token = cfg->token;
    if (token == NULL && cfg->token_file != NULL) {
        st = read_small(cfg->token_file, CLST_CLIENT_TOKEN_MAX + 1, &tok, "token file", err);
        if (st != CLST_OK) {
            goto out;
        }
        size_t n = 0;
        while (n < tok.size && tok.data[n] != '\n' && tok.data[n] != '\r') {
            n++;
        }
        tok.size = n;
        if (n == 0 || clst_buf_terminate(&tok) != CLST_OK) {
            st = clst_err_set(err, CLST_E_INVAL, "the token file %s is empty", cfg->token_file);
            goto out;
        }
        token = (const char *)tok.data;
    }
    if (cfg->attest_url != NULL) {
        /* The attestation service needs no credential: the vault's token never goes there. */
        clst_client_config_init(&cc);
        cc.url = cfg->attest_url;
        cc.ca_file = cfg->ca_file;
        cc.timeout_s = cfg->timeout_s;
        cc.api_version = api;
        st = clst_client_new(&cc, &r->attest, err);
        if (st != CLST_OK) {
            clst_err_prefix(err, "attestation service");
            goto out;
        }
    }
    if (cfg->vault_url != NULL) {
        clst_client_config_init(&cc);
        cc.url = cfg->vault_url;
        cc.ca_file = cfg->ca_file;
        cc.timeout_s = cfg->timeout_s;
        cc.token = token;
        st = clst_client_new(&cc, &r->vault, err);
        if (st != CLST_OK) {
            clst_err_prefix(err, "vault");
            goto out;
        }
    }
    *out = r;
    r = NULL;
    st = CLST_OK;
out:
    clst_buf_cleanup(&tok);
    host_relay_free(r);
    return st;
}

/* ---- answering the enclave ------------------------------------------------------------------- */

static enum clst_status
reply(struct clst_buf *out, enum clst_status status, uint32_t http, const char *body,
      size_t body_size, const struct host_relay *r, bool with_ca, struct clst_err *err)
{
    enum clst_status st = relay_reply_encode(status, http, body, body_size, with_ca ? r->ca : NULL,
                                             with_ca ? r->ca_size : 0, out);
    if (st != CLST_OK) {
        return clst_err_set(err, st,
                            "relay: the answer (%zu bytes) does not fit the enclave's buffer of "
                            "%zu",
                            body_size, out->max);
    }
    return CLST_OK;
}

/* A failure for the enclave: printable ASCII, at most RELAY_MSG_MAX bytes. */
static enum clst_status
reply_error(struct clst_buf *out, enum clst_status status, uint32_t http, const char *msg,
            struct clst_err *err)
{
    char clean[RELAY_MSG_MAX + 1];
    size_t n = strnlen(msg, RELAY_MSG_MAX);
    frame_msg_sanitize((const uint8_t *)msg, n, clean, sizeof(clean));
    if (clean[0] == '\0') {
        snprintf(clean, sizeof(clean), "%s", clst_status_str(status));
    }
    if (status == CLST_OK) {
        status = CLST_E_INTERNAL;
    }
    return reply(out, status, http, clean, strlen(clean), NULL, false, err);
}

static enum clst_status
http_status_to(long http)
{
    switch (http) {
    case 400:
    case 401:
    case 403:
        return CLST_E_DENIED;
    case 404:
        return CLST_E_NOTFOUND;
    case 409:
        return CLST_E_CONFLICT;
    case 413:
        return CLST_E_LIMIT;
    default:
        return CLST_E_IO;
    }
}

/* "HTTP 403 Forbidden: <message>" from an error body {"error":{"code","message"}}. */
static void
error_text(const struct clst_client_response *resp, char *out, size_t cap)
{
    const json_t *e = json_object_get(resp->body, "error");
    const char *code = json_string_value(json_object_get(e, "code"));
    const char *msg = json_string_value(json_object_get(e, "message"));
    snprintf(out, cap, "HTTP %ld%s%s: %s", resp->status, code != NULL ? " " : "",
             code != NULL ? code : "", msg != NULL ? msg : "(no error message in the answer)");
}

/* Sends one request and turns the answer into a reply for the enclave. `member` names the
 * answer's string that goes back on success ("token", "value"). */
static enum clst_status
exchange(struct host_relay *r, struct clst_client *c, const char *what, const char *path,
         const json_t *body, const char *member, bool with_ca, struct clst_buf *out,
         struct clst_err *err)
{
    struct clst_client_response resp;
    struct clst_err e = {0};
    char msg[RELAY_MSG_MAX + 1];
    enum clst_status st;

    memset(&resp, 0, sizeof(resp));
    st = clst_client_request(c, "POST", path, NULL, body, &resp, &e);
    if (st != CLST_OK) {
        clst_log_debug("relay: %s at %s: no answer (%s)", what, clst_client_url(c), e.msg);
        snprintf(msg, sizeof(msg), "the host could not reach the %s at %s: %s", what,
                 clst_client_url(c), e.msg);
        st = reply_error(out, st, 0, msg, err);
        goto out;
    }
    clst_log_debug("relay: %s at %s answered HTTP %ld", what, clst_client_url(c), resp.status);
    if (resp.status != 200) {
        error_text(&resp, msg, sizeof(msg));
        st = reply_error(out, http_status_to(resp.status), (uint32_t)resp.status, msg, err);
        goto out;
    }
    const char *v = json_string_value(json_object_get(resp.body, member));
    size_t n = v != NULL ? strlen(v) : 0;
    if (v == NULL || !relay_token_ok((const uint8_t *)v, n)) {
        snprintf(msg, sizeof(msg),
                 "the %s's answer has no usable '%s' (a compact JWS of at most %u bytes)", what,
                 member, RELAY_TOKEN_MAX);
        st = reply_error(out, CLST_E_MALFORMED, 200, msg, err);
        goto out;
    }
    st = reply(out, CLST_OK, 200, v, n, r, with_ca, err);
out:
    clst_client_response_cleanup(&resp);
    return st;
}

enum clst_status
host_relay_attest(void *ctx, const uint8_t *in, size_t in_size, struct clst_buf *out,
                  struct clst_err *err)
{
    struct host_relay *r = ctx;
    struct relay_attest_req req;
    char path[RELAY_PATH_MAX];
    json_t *body = NULL, *rt = NULL;
    enum clst_status st = relay_attest_decode(in, in_size, &req, err);
    if (st != CLST_OK) {
        return st;
    }
    if (r->attest == NULL) {
        return reply_error(out, CLST_E_NOTFOUND, 0,
                           "the host relays no attestation requests: give it the attestation "
                           "service's URL (cloister run --attest-url URL)",
                           err);
    }
    snprintf(path, sizeof(path), "/attest/%s", r->attest_type);
    body = json_object();
    rt = json_object();
    if (body == NULL || rt == NULL ||
        json_object_set_new(body, "report", clst_json_b64url(req.evidence.p, req.evidence.size)) !=
            0 ||
        json_object_set_new(rt, "data", clst_json_b64url(req.runtime.p, req.runtime.size)) != 0 ||
        json_object_set_new(rt, "dataType", json_string("JSON")) != 0 ||
        json_object_set(body, "runtimeData", rt) != 0) {
        st = clst_err_set(err, CLST_E_NOMEM, "relay: out of memory");
        goto out;
    }
    clst_log_debug("relay: attestation request from the enclave (%zu bytes of evidence, %zu of "
                   "runtime data)",
                   req.evidence.size, req.runtime.size);
    st = exchange(r, r->attest, "attestation service", path, body, "token", false, out, err);
out:
    json_decref(rt);
    json_decref(body);
    return st;
}

enum clst_status
host_relay_release(void *ctx, const uint8_t *in, size_t in_size, struct clst_buf *out,
                   struct clst_err *err)
{
    struct host_relay *r = ctx;
    struct relay_release_req req;
    char path[RELAY_PATH_MAX];
    json_t *body = NULL;
    enum clst_status st = relay_release_decode(in, in_size, &req, err);
    if (st != CLST_OK) {
        return st;
    }
    if (r->vault == NULL) {
        return reply_error(out, CLST_E_NOTFOUND, 0,
                           "the host relays no release requests: give it the vault's URL "
                           "(cloister run --vault-url URL)",
                           err);
    }
    /* Name and version passed relay_key_name_ok / relay_version_ok: nothing to escape. */
    if (req.version[0] != '\0') {
        snprintf(path, sizeof(path), "/keys/%s/%s/release", req.name, req.version);
    } else {
        snprintf(path, sizeof(path), "/keys/%s/release", req.name);
    }
    body = json_object();
    if (body == NULL ||
        json_object_set_new(body, "target",
                            json_stringn((const char *)req.token.p, req.token.size)) != 0 ||
        json_object_set_new(body, "enc", json_string(req.enc)) != 0 ||
        (req.nonce[0] != '\0' && json_object_set_new(body, "nonce", json_string(req.nonce)) != 0)) {
        st = clst_err_set(err, CLST_E_NOMEM, "relay: out of memory");
        goto out;
    }
    clst_log_debug("relay: release request from the enclave for key '%s'%s%s (%s)", req.name,
                   req.version[0] != '\0' ? " version " : "", req.version, req.enc);
    st = exchange(r, r->vault, "vault", path, body, "value", true, out, err);
out:
    json_decref(body);
    return st;
}

/* ---- registration ---------------------------------------------------------------------------- */

enum clst_status
clst_host_relay_register(struct clst_host_enclave *e, const struct clst_host_relay_config *cfg,
                         struct clst_err *err)
{
    struct host_relay *r = NULL;
    if (e == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "relay: no enclave");
    }
    if (e->relay != NULL) {
        return clst_err_set(err, CLST_E_CONFLICT, "the relays are already registered");
    }
    enum clst_status st = host_relay_new(cfg, &r, err);
    if (st != CLST_OK) {
        return st;
    }
    struct clst_host_service a = {host_relay_attest, r}, b = {host_relay_release, r};
    st = clst_host_service_register(e, SVC_ATTEST, &a, err);
    if (st == CLST_OK) {
        st = clst_host_service_register(e, SVC_RELEASE, &b, err);
    }
    if (st != CLST_OK) {
        /* A host program registered a service under one of these names: the relays' context
         * must outlive what was registered, so keep it with the enclave. */
        clst_err_prefix(err, "registering the relays");
    }
    e->relay = r;
    return st;
}
