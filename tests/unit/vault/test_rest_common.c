/* Unit tests for src/vault/rest_common.c and the request-body parsers of rest_secrets.c and
 * rest_principals.c: names, versions, typed JSON members, attributes, tags, ids, nextLinks.
 * What needs a live request (api-version, paging parameters, error replies) is tested through
 * the server in test_vault.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_util.h"
#include "vault/rest_int.h"

static json_t *
J(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, &e);
    if (j == NULL) {
        fail_msg("bad test JSON %s: %s", text, e.text);
    }
    return j;
}

static void
test_check_name(void **state)
{
    struct clst_err err;
    char long_name[200];
    (void)state;
    assert_int_equal(clst_vault_check_name("a", CLST_VAULT_KIND_SECRET, &err), CLST_OK);
    assert_int_equal(clst_vault_check_name("Db-Password-2", CLST_VAULT_KIND_SECRET, &err), CLST_OK);
    memset(long_name, 'x', 127);
    long_name[127] = '\0';
    assert_int_equal(clst_vault_check_name(long_name, CLST_VAULT_KIND_KEY, &err), CLST_OK);
    long_name[127] = 'x';
    long_name[128] = '\0';
    assert_int_equal(clst_vault_check_name(long_name, CLST_VAULT_KIND_KEY, &err), CLST_E_INVAL);
    assert_non_null(strstr(err.msg, "1-127"));
    assert_non_null(strstr(err.msg, "...")); /* long names are cut in the message */

    const char *bad[] = {"", "bad_name", "a b", "a/b", "..", ".", "a.b", "é", "a\"b", "a\nb",
                         "%2e", "-\x01"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(clst_vault_check_name(bad[i], CLST_VAULT_KIND_SECRET, &err),
                         CLST_E_INVAL);
        /* The message never echoes quotes, control characters or non-ASCII bytes. */
        for (const char *p = err.msg; *p != '\0'; p++) {
            assert_true((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f);
        }
        assert_null(strstr(err.msg, "a\"b"));
    }
    assert_int_equal(clst_vault_check_name(NULL, CLST_VAULT_KIND_SECRET, &err), CLST_E_INVAL);
    assert_non_null(strstr(err.msg, "secret"));
}

static void
test_check_version(void **state)
{
    struct clst_err err;
    (void)state;
    assert_int_equal(clst_vault_check_version(NULL, CLST_VAULT_KIND_KEY, &err), CLST_OK);
    assert_int_equal(clst_vault_check_version("", CLST_VAULT_KIND_KEY, &err), CLST_OK);
    assert_int_equal(
        clst_vault_check_version("0123456789abcdef0123456789abcdef", CLST_VAULT_KIND_KEY, &err),
        CLST_OK);
    const char *bad[] = {"0123456789abcdef0123456789abcde", "0123456789abcdef0123456789abcdef0",
                         "0123456789abcdeg0123456789abcdef", "latest", "../x", "x y"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(clst_vault_check_version(bad[i], CLST_VAULT_KIND_SECRET, &err),
                         CLST_E_NOTFOUND);
    }
    assert_non_null(strstr(err.msg, "secret version"));
}

static void
test_json_members(void **state)
{
    struct clst_err err;
    const char *s = NULL;
    bool present = true;
    bool b = false;
    int64_t i = 0;
    json_t *o = NULL;
    (void)state;
    json_t *j = J("{\"s\":\"abc\",\"n\":null,\"b\":true,\"i\":42,\"r\":7.0,\"f\":7.5,"
                  "\"big\":1e300,\"neg\":-1,\"o\":{},\"a\":[]}");

    assert_int_equal(clst_vault_json_string(j, "s", true, 3, &s, &present, &err), CLST_OK);
    assert_string_equal(s, "abc");
    assert_true(present);
    assert_int_equal(clst_vault_json_string(j, "s", true, 2, &s, NULL, &err), CLST_E_INVAL);
    assert_non_null(strstr(err.msg, "limit"));
    assert_int_equal(clst_vault_json_string(j, "b", true, 10, &s, NULL, &err), CLST_E_INVAL);
    assert_non_null(strstr(err.msg, "'b' must be a string"));
    /* Absent and null are the same; required → an error naming the member. */
    s = "unchanged";
    assert_int_equal(clst_vault_json_string(j, "n", false, 10, &s, &present, &err), CLST_OK);
    assert_false(present);
    assert_string_equal(s, "unchanged");
    assert_int_equal(clst_vault_json_string(j, "zz", true, 10, &s, NULL, &err), CLST_E_INVAL);
    assert_non_null(strstr(err.msg, "'zz'"));
    /* Embedded NUL (when a parser lets one through) is refused. */
    json_t *withnul = json_object();
    json_object_set_new(withnul, "nul", json_stringn("a\0b", 3));
    assert_int_equal(clst_vault_json_string(withnul, "nul", true, 10, &s, NULL, &err),
                     CLST_E_INVAL);
    json_decref(withnul);

    assert_int_equal(clst_vault_json_bool(j, "b", true, &b, NULL, &err), CLST_OK);
    assert_true(b);
    assert_int_equal(clst_vault_json_bool(j, "i", true, &b, NULL, &err), CLST_E_INVAL);
    assert_int_equal(clst_vault_json_bool(j, "s", true, &b, NULL, &err), CLST_E_INVAL);

    assert_int_equal(clst_vault_json_int(j, "i", true, 0, 100, &i, NULL, &err), CLST_OK);
    assert_int_equal(i, 42);
    assert_int_equal(clst_vault_json_int(j, "r", true, 0, 100, &i, NULL, &err), CLST_OK);
    assert_int_equal(i, 7);
    assert_int_equal(clst_vault_json_int(j, "f", true, 0, 100, &i, NULL, &err), CLST_E_INVAL);
    assert_int_equal(clst_vault_json_int(j, "big", true, 0, INT64_MAX, &i, NULL, &err),
                     CLST_E_INVAL);
    assert_int_equal(clst_vault_json_int(j, "neg", true, 0, 100, &i, NULL, &err), CLST_E_INVAL);
    assert_int_equal(clst_vault_json_int(j, "i", true, 0, 41, &i, NULL, &err), CLST_E_INVAL);
    assert_int_equal(clst_vault_json_int(j, "s", true, 0, 41, &i, NULL, &err), CLST_E_INVAL);

    assert_int_equal(clst_vault_json_object(j, "o", true, &o, &err), CLST_OK);
    assert_true(json_is_object(o));
    assert_int_equal(clst_vault_json_object(j, "a", true, &o, &err), CLST_E_INVAL);
    assert_int_equal(clst_vault_json_array(j, "a", true, &o, &err), CLST_OK);
    assert_int_equal(clst_vault_json_array(j, "o", true, &o, &err), CLST_E_INVAL);
    o = (json_t *)1;
    assert_int_equal(clst_vault_json_array(j, "missing", false, &o, &err), CLST_OK);
    assert_null(o);

    /* A body that is not an object. */
    json_t *arr = J("[1]");
    assert_int_equal(clst_vault_json_string(arr, "s", false, 10, &s, NULL, &err), CLST_E_INVAL);
    json_decref(arr);
    json_decref(j);
}

static void
test_json_b64url(void **state)
{
    struct clst_err err;
    struct clst_buf b;
    bool present = false;
    (void)state;
    json_t *j = J("{\"a\":\"AQID\",\"p\":\"AQI=\",\"pp\":\"AQ==\",\"std\":\"+/8\",\"sp\":\"AQ ID\","
                  "\"bits\":\"AR\",\"n\":5,\"e\":\"\"}");
    clst_buf_init(&b, 3);
    assert_int_equal(clst_vault_json_b64url(j, "a", true, &b, &present, &err), CLST_OK);
    assert_true(present);
    assert_int_equal(b.size, 3);
    assert_memory_equal(b.data, "\x01\x02\x03", 3);
    clst_buf_reset(&b);
    assert_int_equal(clst_vault_json_b64url(j, "p", true, &b, NULL, &err), CLST_OK);
    assert_int_equal(b.size, 2);
    clst_buf_reset(&b);
    assert_int_equal(clst_vault_json_b64url(j, "pp", true, &b, NULL, &err), CLST_OK);
    assert_int_equal(b.size, 1);
    clst_buf_reset(&b);
    assert_int_equal(clst_vault_json_b64url(j, "e", true, &b, NULL, &err), CLST_OK);
    assert_int_equal(b.size, 0);
    const char *bad[] = {"std", "sp", "bits", "n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        clst_buf_reset(&b);
        assert_int_equal(clst_vault_json_b64url(j, bad[i], true, &b, NULL, &err), CLST_E_INVAL);
        assert_int_equal(b.size, 0);
    }
    /* Over the buffer's cap. */
    clst_buf_cleanup(&b);
    clst_buf_init(&b, 2);
    assert_int_equal(clst_vault_json_b64url(j, "a", true, &b, NULL, &err), CLST_E_INVAL);
    assert_non_null(strstr(err.msg, "too long"));
    present = true;
    assert_int_equal(clst_vault_json_b64url(j, "zz", false, &b, &present, &err), CLST_OK);
    assert_false(present);
    clst_buf_cleanup(&b);
    json_decref(j);
}

static void
test_attrs_from_json(void **state)
{
    struct clst_err err;
    struct clst_vault_attrs a;
    unsigned f = 0;
    (void)state;

    memset(&a, 0, sizeof a);
    json_t *j = J("{\"enabled\":false,\"nbf\":1700000000,\"exp\":1800000000,\"created\":5,"
                  "\"updated\":6,\"recoveryLevel\":\"x\",\"recoverableDays\":1}");
    assert_int_equal(clst_vault_attrs_from_json(j, false, &a, &f, &err), CLST_OK);
    assert_false(a.enabled);
    assert_int_equal(a.nbf, 1700000000);
    assert_int_equal(a.exp, 1800000000);
    assert_int_equal(a.created, 0); /* read-only members are ignored */
    assert_int_equal(f, CLST_VAULT_UPDATE_ENABLED | CLST_VAULT_UPDATE_NBF | CLST_VAULT_UPDATE_EXP);
    json_decref(j);

    /* null clears nbf/exp (and marks them), null enabled changes nothing. */
    a.nbf = 9;
    a.enabled = true;
    f = 0;
    j = J("{\"nbf\":null,\"enabled\":null}");
    assert_int_equal(clst_vault_attrs_from_json(j, false, &a, &f, &err), CLST_OK);
    assert_int_equal(a.nbf, 0);
    assert_true(a.enabled);
    assert_int_equal(f, CLST_VAULT_UPDATE_NBF);
    json_decref(j);

    /* exportable: keys at creation only. */
    j = J("{\"exportable\":true}");
    f = 0;
    assert_int_equal(clst_vault_attrs_from_json(j, false, &a, &f, &err), CLST_E_INVAL);
    assert_non_null(strstr(err.msg, "exportable"));
    assert_int_equal(f, 0);
    assert_int_equal(clst_vault_attrs_from_json(j, true, &a, &f, &err), CLST_OK);
    assert_true(a.exportable);
    assert_int_equal(f, CLST_VAULT_UPDATE_EXPORTABLE);
    json_decref(j);

    const char *bad[] = {
        "{\"enabled\":1}",        "{\"enabled\":\"true\"}", "{\"nbf\":\"2024-01-01\"}",
        "{\"nbf\":-1}",           "{\"exp\":1.5}",          "{\"exp\":253402300800}",
        "{\"bogus\":1}",          "{\"Enabled\":true}",     "{\"exportable\":\"yes\"}",
        "{\"nbf\":20,\"exp\":10}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        j = J(bad[i]);
        memset(&a, 0, sizeof a);
        f = 0;
        if (clst_vault_attrs_from_json(j, true, &a, &f, &err) != CLST_E_INVAL) {
            fail_msg("accepted %s", bad[i]);
        }
        json_decref(j);
    }
    j = J("[]");
    assert_int_equal(clst_vault_attrs_from_json(j, true, &a, &f, &err), CLST_E_INVAL);
    json_decref(j);
    assert_int_equal(clst_vault_attrs_from_json(NULL, true, &a, &f, &err), CLST_OK);
}

static void
test_attrs_to_json(void **state)
{
    struct clst_vault_attrs a;
    (void)state;
    memset(&a, 0, sizeof a);
    a.enabled = true;
    a.created = 100;
    a.updated = 200;
    snprintf(a.recovery_level, sizeof a.recovery_level, "Recoverable+Purgeable");
    a.recoverable_days = 90;
    json_t *j = clst_vault_attrs_to_json(&a, CLST_VAULT_KIND_SECRET);
    assert_non_null(j);
    assert_true(json_is_true(json_object_get(j, "enabled")));
    assert_null(json_object_get(j, "nbf")); /* never 0: omitted */
    assert_null(json_object_get(j, "exp"));
    assert_null(json_object_get(j, "exportable"));
    assert_int_equal(json_integer_value(json_object_get(j, "created")), 100);
    assert_int_equal(json_integer_value(json_object_get(j, "updated")), 200);
    assert_int_equal(json_integer_value(json_object_get(j, "recoverableDays")), 90);
    assert_string_equal(json_string_value(json_object_get(j, "recoveryLevel")),
                        "Recoverable+Purgeable");
    json_decref(j);

    a.enabled = false;
    a.nbf = 5;
    a.exp = 6;
    a.exportable = true;
    snprintf(a.recovery_level, sizeof a.recovery_level, "Purgeable");
    j = clst_vault_attrs_to_json(&a, CLST_VAULT_KIND_KEY);
    assert_true(json_is_false(json_object_get(j, "enabled")));
    assert_int_equal(json_integer_value(json_object_get(j, "nbf")), 5);
    assert_int_equal(json_integer_value(json_object_get(j, "exp")), 6);
    assert_true(json_is_true(json_object_get(j, "exportable")));
    assert_null(json_object_get(j, "recoverableDays")); /* not a Recoverable level */
    json_decref(j);
}

static void
test_tags(void **state)
{
    struct clst_err err;
    char *text = NULL;
    (void)state;
    json_t *j = J("{\"z\":\"1\",\"a\":\"\",\"\\u00e9t\\u00e9\":\"x\"}");
    assert_int_equal(clst_vault_tags_parse(j, &text, &err), CLST_OK);
    assert_string_equal(text, "{\"a\":\"\",\"z\":\"1\",\"\xc3\xa9t\xc3\xa9\":\"x\"}");
    json_t *back = clst_vault_tags_to_json(text);
    assert_true(json_equal(back, j));
    json_decref(back);
    free(text);
    json_decref(j);

    /* 15 tags pass, 16 do not. */
    j = json_object();
    for (int i = 0; i < 15; i++) {
        char k[8];
        snprintf(k, sizeof k, "t%d", i);
        json_object_set_new(j, k, json_string("v"));
    }
    assert_int_equal(clst_vault_tags_parse(j, &text, &err), CLST_OK);
    free(text);
    json_object_set_new(j, "t15", json_string("v"));
    assert_int_equal(clst_vault_tags_parse(j, &text, &err), CLST_E_INVAL);
    assert_non_null(strstr(err.msg, "15"));
    json_decref(j);

    /* Name 512 characters (counted as characters, not bytes) passes; 513 does not. */
    char name[2 * 513 + 1];
    for (int i = 0; i < 512; i++) {
        name[2 * i] = (char)0xc3;
        name[2 * i + 1] = (char)0xa9;
    }
    name[2 * 512] = '\0';
    j = json_object();
    json_object_set_new(j, name, json_string("v"));
    assert_int_equal(clst_vault_tags_parse(j, &text, &err), CLST_OK);
    free(text);
    json_decref(j);
    name[2 * 512] = 'x';
    name[2 * 512 + 1] = '\0';
    j = json_object();
    json_object_set_new(j, name, json_string("v"));
    assert_int_equal(clst_vault_tags_parse(j, &text, &err), CLST_E_INVAL);
    json_decref(j);

    /* Value 256 characters passes; 257 does not. */
    char value[258];
    memset(value, 'v', 256);
    value[256] = '\0';
    j = json_object();
    json_object_set_new(j, "k", json_string(value));
    assert_int_equal(clst_vault_tags_parse(j, &text, &err), CLST_OK);
    free(text);
    value[256] = 'v';
    value[257] = '\0';
    json_object_set_new(j, "k", json_string(value));
    assert_int_equal(clst_vault_tags_parse(j, &text, &err), CLST_E_INVAL);
    assert_non_null(strstr(err.msg, "256"));
    json_decref(j);

    const char *bad[] = {"{\"k\":1}", "{\"k\":null}", "{\"k\":{}}", "{\"\":\"v\"}", "[]",
                         "\"k=v\""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        j = json_loads(bad[i], JSON_DECODE_ANY, NULL);
        assert_non_null(j);
        if (clst_vault_tags_parse(j, &text, &err) != CLST_E_INVAL) {
            fail_msg("accepted tags %s", bad[i]);
        }
        json_decref(j);
    }
    assert_int_equal(clst_vault_tags_parse(NULL, &text, &err), CLST_E_INVAL);

    assert_null(clst_vault_tags_to_json(NULL));
    assert_null(clst_vault_tags_to_json(""));
    assert_null(clst_vault_tags_to_json("{}"));
    assert_null(clst_vault_tags_to_json("[1]"));
    assert_null(clst_vault_tags_to_json("{bad"));
}

static void
rctx(struct clst_vault_rctx *rc)
{
    memset(rc, 0, sizeof *rc);
    snprintf(rc->base, sizeof rc->base, "https://127.0.0.1:8443");
    rc->api_version = "2025-07-01";
}

static void
test_ids(void **state)
{
    struct clst_vault_rctx rc;
    char id[CLST_VAULT_ID_MAX];
    (void)state;
    rctx(&rc);
    assert_int_equal(clst_vault_object_id(&rc, CLST_VAULT_KIND_SECRET, "s1", NULL, id, sizeof id),
                     CLST_OK);
    assert_string_equal(id, "https://127.0.0.1:8443/secrets/s1");
    assert_int_equal(clst_vault_object_id(&rc, CLST_VAULT_KIND_SECRET, "s1", "", id, sizeof id),
                     CLST_OK);
    assert_string_equal(id, "https://127.0.0.1:8443/secrets/s1");
    assert_int_equal(clst_vault_object_id(&rc, CLST_VAULT_KIND_KEY, "k", "abc", id, sizeof id),
                     CLST_OK);
    assert_string_equal(id, "https://127.0.0.1:8443/keys/k/abc");
    assert_int_equal(clst_vault_recovery_id(&rc, CLST_VAULT_KIND_KEY, "k", id, sizeof id), CLST_OK);
    assert_string_equal(id, "https://127.0.0.1:8443/deletedkeys/k");
    assert_int_equal(clst_vault_recovery_id(&rc, CLST_VAULT_KIND_SECRET, "s", id, sizeof id),
                     CLST_OK);
    assert_string_equal(id, "https://127.0.0.1:8443/deletedsecrets/s");
    /* Truncation is an error, never a short id. */
    assert_int_equal(clst_vault_object_id(&rc, CLST_VAULT_KIND_KEY, "k", "abc", id, 20),
                     CLST_E_LIMIT);
    assert_int_equal(clst_vault_recovery_id(&rc, CLST_VAULT_KIND_KEY, "k", id, 20), CLST_E_LIMIT);
}

static void
test_next_link(void **state)
{
    struct clst_vault_rctx rc;
    (void)state;
    rctx(&rc);
    json_t *j = clst_vault_next_link(&rc, "/secrets", 2, NULL);
    assert_true(json_is_null(j));
    json_decref(j);
    j = clst_vault_next_link(&rc, "/secrets", 2, "");
    assert_true(json_is_null(j));
    json_decref(j);
    j = clst_vault_next_link(&rc, "/secrets/a/versions", 25, "AbC-_x=+/&%");
    assert_string_equal(json_string_value(j),
                        "https://127.0.0.1:8443/secrets/a/versions?api-version=2025-07-01"
                        "&maxresults=25&%24skiptoken=AbC-_x%3D%2B%2F%26%25");
    json_decref(j);
}

static void
test_bundle_common(void **state)
{
    struct clst_vault_rctx rc;
    struct clst_vault_object obj;
    (void)state;
    rctx(&rc);
    memset(&obj, 0, sizeof obj);
    obj.kind = CLST_VAULT_KIND_SECRET;
    snprintf(obj.name, sizeof obj.name, "Del");
    obj.attrs.enabled = true;
    obj.attrs.created = 10;
    obj.tags = (char[]){"{\"a\":\"1\"}"};
    json_t *j = json_object();
    assert_int_equal(clst_vault_bundle_common(&rc, &obj, j), CLST_OK);
    assert_non_null(json_object_get(j, "attributes"));
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "tags"), "a")), "1");
    assert_null(json_object_get(j, "recoveryId"));
    json_decref(j);

    obj.tags = NULL;
    obj.deleted_date = 1000;
    obj.scheduled_purge_date = 2000;
    j = json_object();
    assert_int_equal(clst_vault_bundle_common(&rc, &obj, j), CLST_OK);
    assert_null(json_object_get(j, "tags"));
    assert_string_equal(json_string_value(json_object_get(j, "recoveryId")),
                        "https://127.0.0.1:8443/deletedsecrets/Del");
    assert_int_equal(json_integer_value(json_object_get(j, "deletedDate")), 1000);
    assert_int_equal(json_integer_value(json_object_get(j, "scheduledPurgeDate")), 2000);
    json_decref(j);
}

static void
test_secret_body(void **state)
{
    struct clst_err err;
    struct clst_vault_secret_body b;
    (void)state;

    json_t *j = J("{\"value\":\"hunter2\",\"contentType\":\"text/plain\",\"tags\":{\"a\":\"1\"},"
                  "\"attributes\":{\"enabled\":false},\"unknown\":1}");
    memset(&b, 0, sizeof b);
    assert_int_equal(clst_vault_secret_body_parse(j, false, &b, &err), CLST_OK);
    assert_string_equal(b.value, "hunter2");
    assert_int_equal(b.value_size, 7);
    assert_string_equal(b.content_type, "text/plain");
    assert_string_equal(b.tags, "{\"a\":\"1\"}");
    assert_false(b.attrs.enabled);
    assert_int_equal(b.fields, CLST_VAULT_UPDATE_CONTENT_TYPE | CLST_VAULT_UPDATE_TAGS |
                                   CLST_VAULT_UPDATE_ENABLED);
    clst_vault_secret_body_cleanup(&b);
    assert_null(b.tags);
    /* An update may not carry a value. */
    memset(&b, 0, sizeof b);
    assert_int_equal(clst_vault_secret_body_parse(j, true, &b, &err), CLST_E_INVAL);
    assert_non_null(strstr(err.msg, "PUT"));
    clst_vault_secret_body_cleanup(&b);
    json_decref(j);

    /* The 25 KiB cap, exactly. */
    char *big = malloc(CLST_VAULT_SECRET_VALUE_MAX + 2);
    assert_non_null(big);
    memset(big, 'x', CLST_VAULT_SECRET_VALUE_MAX);
    big[CLST_VAULT_SECRET_VALUE_MAX] = '\0';
    j = json_object();
    json_object_set_new(j, "value", json_string(big));
    memset(&b, 0, sizeof b);
    assert_int_equal(clst_vault_secret_body_parse(j, false, &b, &err), CLST_OK);
    clst_vault_secret_body_cleanup(&b);
    big[CLST_VAULT_SECRET_VALUE_MAX] = 'x';
    big[CLST_VAULT_SECRET_VALUE_MAX + 1] = '\0';
    json_object_set_new(j, "value", json_string(big));
    memset(&b, 0, sizeof b);
    assert_int_equal(clst_vault_secret_body_parse(j, false, &b, &err), CLST_E_INVAL);
    assert_non_null(strstr(err.msg, "25600"));
    clst_vault_secret_body_cleanup(&b);
    json_decref(j);
    free(big);

    const char *bad_set[] = {
        "{}",
        "{\"value\":1}",
        "{\"value\":null}",
        "{\"value\":[\"a\"]}",
        "{\"value\":\"v\",\"contentType\":5}",
        "{\"value\":\"v\",\"contentType\":\"a\\nb\"}",
        "{\"value\":\"v\",\"attributes\":[]}",
        "{\"value\":\"v\",\"attributes\":{\"exportable\":true}}",
        "{\"value\":\"v\",\"attributes\":{\"enabled\":\"no\"}}",
        "{\"value\":\"v\",\"tags\":[]}",
        "{\"value\":\"v\",\"tags\":{\"a\":1}}",
        "[]",
    };
    for (size_t i = 0; i < sizeof bad_set / sizeof bad_set[0]; i++) {
        j = J(bad_set[i]);
        memset(&b, 0, sizeof b);
        if (clst_vault_secret_body_parse(j, false, &b, &err) != CLST_E_INVAL) {
            fail_msg("accepted %s", bad_set[i]);
        }
        clst_vault_secret_body_cleanup(&b);
        json_decref(j);
    }
    /* An empty update is fine (nothing changes). */
    j = J("{}");
    memset(&b, 0, sizeof b);
    assert_int_equal(clst_vault_secret_body_parse(j, true, &b, &err), CLST_OK);
    assert_int_equal(b.fields, 0);
    json_decref(j);
}

static void
test_principal_body(void **state)
{
    struct clst_err err;
    struct clst_vault_principal_body b;
    (void)state;
    json_t *j = J("{\"name\":\"billing app\",\"id\":\"billing.app-1\",\"roles\":["
                  "{\"role\":\"secrets user\",\"scope\":\"/secrets/db\"},"
                  "{\"role\":\"Crypto Auditor\"}]}");
    assert_int_equal(clst_vault_principal_body_parse(j, &b, &err), CLST_OK);
    assert_string_equal(b.name, "billing app");
    assert_string_equal(b.id, "billing.app-1");
    assert_true(b.enabled);
    assert_int_equal(b.role_count, 2);
    assert_string_equal(b.roles[0].role, "Secrets User");
    assert_string_equal(b.roles[0].scope, "/secrets/db");
    assert_string_equal(b.roles[1].role, "Crypto Auditor");
    assert_string_equal(b.roles[1].scope, "/");
    clst_vault_principal_body_cleanup(&b);
    assert_null(b.roles);
    json_decref(j);

    j = J("{\"name\":\"n\"}");
    assert_int_equal(clst_vault_principal_body_parse(j, &b, &err), CLST_OK);
    assert_string_equal(b.id, "");
    assert_int_equal(b.role_count, 0);
    clst_vault_principal_body_cleanup(&b);
    json_decref(j);

    const char *bad[] = {
        "{}",
        "{\"name\":\"\"}",
        "{\"name\":5}",
        "{\"name\":\"tab\\there\"}",
        "{\"name\":\"caf\\u00e9\"}",
        "{\"name\":\"n\",\"id\":\"a b\"}",
        "{\"name\":\"n\",\"id\":\"\"}",
        "{\"name\":\"n\",\"id\":\"a/b\"}",
        "{\"name\":\"n\",\"enabled\":\"yes\"}",
        "{\"name\":\"n\",\"roles\":{}}",
        "{\"name\":\"n\",\"roles\":[\"Administrator\"]}",
        "{\"name\":\"n\",\"roles\":[{\"role\":\"Owner\"}]}",
        "{\"name\":\"n\",\"roles\":[{}]}",
        "{\"name\":\"n\",\"roles\":[{\"role\":\"Secrets User\",\"scope\":\"/keys/k\"}]}",
        "{\"name\":\"n\",\"roles\":[{\"role\":\"Crypto User\",\"scope\":\"/secrets/s\"}]}",
        "{\"name\":\"n\",\"roles\":[{\"role\":\"Administrator\",\"scope\":\"/secrets/a_b\"}]}",
        "{\"name\":\"n\",\"roles\":[{\"role\":\"Administrator\",\"scope\":\"/secrets/../x\"}]}",
        "{\"name\":\"n\",\"roles\":[{\"role\":\"Administrator\",\"scope\":\"\"}]}",
        "{\"name\":\"n\",\"roles\":[{\"role\":\"Administrator\"},{\"role\":\"administrator\"}]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        j = J(bad[i]);
        if (clst_vault_principal_body_parse(j, &b, &err) != CLST_E_INVAL) {
            fail_msg("accepted %s", bad[i]);
        }
        clst_vault_principal_body_cleanup(&b);
        json_decref(j);
    }
    /* 32 role assignments pass, 33 do not. */
    json_t *roles = json_array();
    for (int i = 0; i < 33; i++) {
        char scope[32];
        snprintf(scope, sizeof scope, "/secrets/s%d", i);
        json_array_append_new(roles, json_pack("{s:s,s:s}", "role", "Secrets User", "scope", scope));
    }
    j = json_pack("{s:s,s:O}", "name", "n", "roles", roles);
    assert_int_equal(clst_vault_principal_body_parse(j, &b, &err), CLST_E_INVAL);
    clst_vault_principal_body_cleanup(&b);
    json_decref(j);
    json_array_remove(roles, 32);
    j = json_pack("{s:s,s:O}", "name", "n", "roles", roles);
    assert_int_equal(clst_vault_principal_body_parse(j, &b, &err), CLST_OK);
    assert_int_equal(b.role_count, 32);
    clst_vault_principal_body_cleanup(&b);
    json_decref(j);
    json_decref(roles);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_name),      cmocka_unit_test(test_check_version),
        cmocka_unit_test(test_json_members),    cmocka_unit_test(test_json_b64url),
        cmocka_unit_test(test_attrs_from_json), cmocka_unit_test(test_attrs_to_json),
        cmocka_unit_test(test_tags),            cmocka_unit_test(test_ids),
        cmocka_unit_test(test_next_link),       cmocka_unit_test(test_bundle_common),
        cmocka_unit_test(test_secret_body),     cmocka_unit_test(test_principal_body),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
