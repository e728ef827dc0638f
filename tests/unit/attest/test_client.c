/*
 * Unit tests for src/attest/client.c: argument checks (https only, a path that starts with '/'),
 * failures to connect or to trust the server (the message says what to do), statuses mapped to
 * errors that carry the service's message, bearer tokens sent, bodies sent with PUT/POST/DELETE.
 */
#define FX_WITH_SERVER
#include "attest_fixture.h"

static void
test_args(void **state)
{
    (void)state;
    struct clst_attest_client c = {"http://127.0.0.1:1", NULL, NULL, 2};
    struct clst_buf b;
    struct clst_err err = {0};
    long status = 0;
    json_t *j = NULL;
    clst_buf_init(&b, 1024);
    assert_int_equal(clst_attest_client_request(&c, "GET", "/", NULL, NULL, 0, &status, &b, &err),
                     CLST_E_INVAL);
    assert_non_null(strstr(err.msg, "https://"));
    c.url = "https://127.0.0.1:1";
    assert_int_equal(clst_attest_client_request(&c, "GET", "certs", NULL, NULL, 0, &status, &b,
                                                &err),
                     CLST_E_INVAL);
    assert_int_equal(clst_attest_client_request(NULL, "GET", "/", NULL, NULL, 0, &status, &b, &err),
                     CLST_E_INVAL);
    /* Nothing listens on port 1. */
    assert_int_equal(clst_attest_client_request(&c, "GET", "/certs", NULL, NULL, 0, &status, &b,
                                                &err),
                     CLST_E_IO);
    assert_non_null(strstr(err.msg, "cannot reach"));
    assert_int_equal(clst_attest_client_json(&c, "GET", "/certs", NULL, &j, &err), CLST_E_IO);
    clst_buf_cleanup(&b);
}

static void
test_against_server(void **state)
{
    (void)state;
    struct fx f;
    struct fx_server s;
    struct clst_err err = {0};
    json_t *j = NULL;
    fx_setup(&f);
    fx_server_start(&f, &s);

    struct clst_attest_client c = {s.url, s.ca, NULL, 10};
    assert_int_equal(clst_attest_client_json(&c, "GET", "/certs", NULL, &j, &err), CLST_OK);
    assert_non_null(json_object_get(j, "keys"));
    json_decref(j);
    /* Statuses become errors with the service's message. */
    assert_int_equal(clst_attest_client_json(&c, "GET", "/nope", NULL, &j, &err), CLST_E_NOTFOUND);
    assert_non_null(strstr(err.msg, "404"));
    assert_int_equal(clst_attest_client_json(&c, "POST", "/attest/SimEnclave", NULL, &j, &err),
                     CLST_E_VERIFY);
    assert_non_null(strstr(err.msg, "api-version"));
    assert_int_equal(clst_attest_client_json(&c, "GET", "/policies/SimEnclave?api-version=2022-08-01",
                                             NULL, &j, &err),
                     CLST_E_DENIED);
    assert_non_null(strstr(err.msg, "401"));
    c.bearer = "user";
    assert_int_equal(clst_attest_client_json(&c, "GET", "/policies/SimEnclave?api-version=2022-08-01",
                                             NULL, &j, &err),
                     CLST_E_DENIED);
    assert_non_null(strstr(err.msg, "403"));
    c.bearer = "admin";
    json_t *body = json_pack("{s:s}", "value", "x");
    assert_int_equal(clst_attest_client_json(&c, "POST",
                                             "/attest/refvals/SimEnclave?api-version=2022-08-01",
                                             body, &j, &err),
                     CLST_E_VERIFY); /* "x" is not a 96-character measurement */
    json_object_set_new(body, "claim", json_string("x-cloister-sim-platform-id"));
    assert_int_equal(clst_attest_client_json(&c, "POST",
                                             "/attest/refvals/SimEnclave?api-version=2022-08-01",
                                             body, &j, &err),
                     CLST_OK);
    json_decref(j);
    assert_int_equal(clst_attest_client_json(&c, "POST",
                                             "/attest/refvals/SimEnclave?api-version=2022-08-01",
                                             body, &j, &err),
                     CLST_E_CONFLICT);
    assert_int_equal(clst_attest_client_json(
                         &c, "DELETE",
                         "/attest/refvals/SimEnclave?api-version=2022-08-01&value=x&claim=x-cloister-sim-platform-id",
                         NULL, &j, &err),
                     CLST_OK);
    json_decref(j);
    json_decref(body);

    /* Without our CA the server is not trusted, and the message says what to give. */
    c.ca_file = NULL;
    assert_int_equal(clst_attest_client_json(&c, "GET", "/certs", NULL, &j, &err), CLST_E_IO);
    assert_non_null(strstr(err.msg, "--ca"));
    /* A CA file that does not exist. */
    c.ca_file = "/nonexistent/ca.pem";
    assert_int_equal(clst_attest_client_json(&c, "GET", "/certs", NULL, &j, &err), CLST_E_IO);

    fx_server_stop(&s);
    fx_teardown(&f);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_args),
        cmocka_unit_test(test_against_server),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
