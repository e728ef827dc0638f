/*
 * The host's relays (src/enclave/host_relay.c) without a server: configuration errors, requests
 * from the enclave that are malformed (refused before anything goes on the network), a relay
 * that is not configured, a service nobody listens on (an IO reply naming the URL), a reply that
 * does not fit the enclave's buffer. The HTTP paths (200, 403 with the vault's message, TLS
 * failures) run against a real `cloister serve` in tests/integration/enclave_release.sh.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include <cmocka.h>

#include "enclave/enclave_int.h"

#define TOKEN "eyJhbGciOiJFUzI1NiJ9.eyJ4IjoxfQ.c2ln"
/* Port 1 on loopback: nothing listens there (tcpmux), so connecting fails at once. */
#define DEAD_URL "https://127.0.0.1:1"

static void
attest_req(struct clst_buf *b)
{
    uint8_t ev[64] = {1, 2, 3};
    struct relay_field f[2] = {{ev, sizeof(ev)}, {(const uint8_t *)"{\"keys\":[]}", 11}};
    clst_buf_init(b, RELAY_REQUEST_MAX);
    assert_int_equal(relay_encode(RELAY_ATTEST, f, 2, b), CLST_OK);
}

static void
release_req(struct clst_buf *b, const char *name)
{
    struct relay_field f[5] = {{(const uint8_t *)name, strlen(name)},
                               {(const uint8_t *)"", 0},
                               {(const uint8_t *)TOKEN, strlen(TOKEN)},
                               {(const uint8_t *)"RSA_AES_KEY_WRAP_256", 20},
                               {(const uint8_t *)"abc", 3}};
    clst_buf_init(b, RELAY_REQUEST_MAX);
    assert_int_equal(relay_encode(RELAY_RELEASE, f, 5, b), CLST_OK);
}

static void
test_config(void **state)
{
    (void)state;
    struct host_relay *r = NULL;
    struct clst_err err = {0};
    struct clst_host_relay_config c = {0};
    assert_int_equal(host_relay_new(NULL, &r, &err), CLST_E_INVAL);
    assert_int_equal(host_relay_new(&c, &r, &err), CLST_E_INVAL);
    assert_non_null(strstr(err.msg, "URL"));
    c.vault_url = "http://127.0.0.1:8443"; /* not https */
    assert_int_equal(host_relay_new(&c, &r, &err), CLST_E_INVAL);
    c.vault_url = DEAD_URL;
    c.ca_file = "/nonexistent/ca.pem";
    assert_int_equal(host_relay_new(&c, &r, &err), CLST_E_INVAL);
    assert_non_null(strstr(err.msg, "/nonexistent/ca.pem"));
    c.ca_file = NULL;
    c.token_file = "/nonexistent/token";
    assert_int_equal(host_relay_new(&c, &r, &err), CLST_E_INVAL);
    c.token_file = NULL;
    c.token = "has space";
    assert_int_equal(host_relay_new(&c, &r, &err), CLST_E_INVAL);
    c.token = NULL;
    c.attest_url = DEAD_URL;
    c.attest_type = "Sim/../x";
    assert_int_equal(host_relay_new(&c, &r, &err), CLST_E_INVAL);
    c.attest_type = NULL;
    /* An empty token file. */
    char path[] = "/tmp/clst-relay-token-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "\n", 1), 1);
    close(fd);
    c.token_file = path;
    assert_int_equal(host_relay_new(&c, &r, &err), CLST_E_INVAL);
    assert_non_null(strstr(err.msg, "empty"));
    /* A token file's first line is the token. */
    fd = open(path, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "tok123\nignored\n", 15), 15);
    close(fd);
    assert_int_equal(host_relay_new(&c, &r, &err), CLST_OK);
    host_relay_free(r);
    unlink(path);
    host_relay_free(NULL);
}

static void
test_malformed_requests(void **state)
{
    (void)state;
    struct host_relay *r = NULL;
    struct clst_err err = {0};
    struct clst_host_relay_config c = {.attest_url = DEAD_URL, .vault_url = DEAD_URL};
    struct clst_buf out, req;
    assert_int_equal(host_relay_new(&c, &r, &err), CLST_OK);
    clst_buf_init(&out, RELAY_REPLY_MAX);
    /* Each service refuses the other's message, garbage, truncations: nothing is sent. */
    attest_req(&req);
    assert_int_equal(host_relay_release(r, req.data, req.size, &out, &err), CLST_E_MALFORMED);
    for (size_t n = 0; n < req.size; n++) {
        assert_int_not_equal(host_relay_attest(r, req.data, n, &out, &err), CLST_OK);
    }
    assert_int_equal(out.size, 0);
    clst_buf_cleanup(&req);
    release_req(&req, "k");
    assert_int_equal(host_relay_attest(r, req.data, req.size, &out, &err), CLST_E_MALFORMED);
    for (size_t n = 0; n < req.size; n++) {
        assert_int_not_equal(host_relay_release(r, req.data, n, &out, &err), CLST_OK);
    }
    assert_int_equal(out.size, 0);
    clst_buf_cleanup(&req);
    /* A key name that would walk the vault's paths. */
    release_req(&req, "../admin");
    assert_int_equal(host_relay_release(r, req.data, req.size, &out, &err), CLST_E_MALFORMED);
    assert_int_equal(out.size, 0);
    clst_buf_cleanup(&req);
    assert_int_equal(host_relay_attest(r, (const uint8_t *)"CLRY", 4, &out, &err),
                     CLST_E_MALFORMED);
    clst_buf_cleanup(&out);
    host_relay_free(r);
}

static void
decode_reply(const struct clst_buf *out, struct relay_reply *rp)
{
    struct clst_err err = {0};
    assert_int_equal(relay_reply_decode(out->data, out->size, rp, &err), CLST_OK);
}

static void
test_unreachable_and_unconfigured(void **state)
{
    (void)state;
    struct host_relay *r = NULL;
    struct clst_err err = {0};
    struct clst_host_relay_config c = {.vault_url = DEAD_URL, .timeout_s = 5};
    struct clst_buf out, req;
    struct relay_reply rp;
    char msg[RELAY_MSG_MAX + 1];
    assert_int_equal(host_relay_new(&c, &r, &err), CLST_OK);
    clst_buf_init(&out, RELAY_REPLY_MAX);
    /* No attestation URL: a NOTFOUND reply that says which option is missing. */
    attest_req(&req);
    assert_int_equal(host_relay_attest(r, req.data, req.size, &out, &err), CLST_OK);
    decode_reply(&out, &rp);
    assert_int_equal(rp.status, CLST_E_NOTFOUND);
    assert_int_equal(rp.http, 0);
    frame_msg_sanitize(rp.body.p, rp.body.size, msg, sizeof(msg));
    assert_non_null(strstr(msg, "--attest-url"));
    clst_buf_cleanup(&req);
    /* The vault does not answer: an IO reply naming the URL; no CA was configured. */
    clst_buf_reset(&out);
    release_req(&req, "dbkey");
    assert_int_equal(host_relay_release(r, req.data, req.size, &out, &err), CLST_OK);
    decode_reply(&out, &rp);
    assert_int_equal(rp.status, CLST_E_IO);
    assert_int_equal(rp.http, 0);
    assert_int_equal(rp.ca.size, 0);
    frame_msg_sanitize(rp.body.p, rp.body.size, msg, sizeof(msg));
    assert_non_null(strstr(msg, "could not reach the vault at " DEAD_URL));
    /* A reply that does not fit the enclave's buffer is an error for the call, not a cut. */
    struct clst_buf tiny;
    clst_buf_init(&tiny, 16);
    assert_int_equal(host_relay_release(r, req.data, req.size, &tiny, &err), CLST_E_LIMIT);
    clst_buf_cleanup(&tiny);
    clst_buf_cleanup(&req);
    clst_buf_cleanup(&out);
    host_relay_free(r);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_malformed_requests),
        cmocka_unit_test(test_unreachable_and_unconfigured),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
