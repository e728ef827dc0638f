/*
 * Unit tests for src/enclave/frame.c: the frame header codec (round trip, every field's rule,
 * which types each direction accepts, size caps), names, message sanitizing, the READY payload,
 * the service request/reply decoders and clst.main's arguments (truncation at every length,
 * trailing bytes, NULs, limits).
 */
#define _GNU_SOURCE
#include "encl_fixture.h"

static const struct frame_limits lim = {.max_payload = 1024 * 1024};

static void
encode(uint8_t type, uint32_t seq, uint32_t status, uint16_t name, uint32_t payload, uint64_t aux,
       uint8_t out[FRAME_HDR_SIZE])
{
    struct frame_hdr h = {type, seq, status, name, payload, aux};
    frame_hdr_encode(&h, out);
}

static enum clst_status
decode(const uint8_t b[FRAME_HDR_SIZE], enum frame_dir dir, struct frame_hdr *out)
{
    struct clst_err err = {0};
    return frame_hdr_decode(b, dir, &lim, out, &err);
}

static void
test_hdr_roundtrip(void **state)
{
    (void)state;
    uint8_t b[FRAME_HDR_SIZE];
    struct frame_hdr h;
    encode(FRAME_CALL, 7, 0, 5, 1000, 4096, b);
    assert_memory_equal(b, "CLFR", 4);
    assert_int_equal(decode(b, FRAME_H2E, &h), CLST_OK);
    assert_int_equal(h.type, FRAME_CALL);
    assert_int_equal(h.seq, 7);
    assert_int_equal(h.name_size, 5);
    assert_int_equal(h.payload_size, 1000);
    assert_int_equal(h.aux, 4096);
    encode(FRAME_RETURN, 9, CLST_OK, 0, 12, 0, b);
    assert_int_equal(decode(b, FRAME_E2H, &h), CLST_OK);
    encode(FRAME_RETURN, 9, CLST_E_DENIED, 0, 255, 0, b);
    assert_int_equal(decode(b, FRAME_E2H, &h), CLST_OK);
    assert_int_equal(h.status, CLST_E_DENIED);
    encode(FRAME_EXIT, 0, 0, 0, 0, 0, b);
    assert_int_equal(decode(b, FRAME_H2E, &h), CLST_OK);
    encode(FRAME_READY, 0, 0, 0, READY_PAYLOAD_MAX, 0, b);
    assert_int_equal(decode(b, FRAME_E2H, &h), CLST_OK);
}

static void
test_hdr_direction(void **state)
{
    (void)state;
    uint8_t b[FRAME_HDR_SIZE];
    struct frame_hdr h;
    /* What the host sends is never accepted by the host, and the reverse. */
    static const uint8_t h2e[] = {FRAME_CALL, FRAME_ORET, FRAME_EXIT};
    static const uint8_t e2h[] = {FRAME_RETURN, FRAME_OCALL, FRAME_READY};
    for (size_t i = 0; i < 3; i++) {
        encode(h2e[i], 1, 0, h2e[i] == FRAME_CALL ? 1 : 0, 0, 0, b);
        assert_int_equal(decode(b, FRAME_E2H, &h), CLST_E_MALFORMED);
        encode(e2h[i], 1, 0, e2h[i] == FRAME_OCALL ? 1 : 0, 0, 0, b);
        assert_int_equal(decode(b, FRAME_H2E, &h), CLST_E_MALFORMED);
    }
    for (unsigned t = 0; t < 256; t++) {
        if (t >= FRAME_CALL && t <= FRAME_EXIT) {
            continue;
        }
        encode((uint8_t)t, 1, 0, 0, 0, 0, b);
        assert_int_equal(decode(b, FRAME_H2E, &h), CLST_E_MALFORMED);
        assert_int_equal(decode(b, FRAME_E2H, &h), CLST_E_MALFORMED);
    }
}

static void
test_hdr_fields(void **state)
{
    (void)state;
    uint8_t b[FRAME_HDR_SIZE];
    struct frame_hdr h;
    struct clst_err err = {0};

    encode(FRAME_CALL, 1, 0, 4, 0, 0, b);
    b[0] ^= 1; /* magic */
    assert_int_equal(decode(b, FRAME_H2E, &h), CLST_E_MALFORMED);
    encode(FRAME_CALL, 1, 0, 4, 0, 0, b);
    b[4] = 2; /* version */
    assert_int_equal(decode(b, FRAME_H2E, &h), CLST_E_MALFORMED);
    for (int byte = 6; byte < 8; byte++) { /* flags */
        encode(FRAME_CALL, 1, 0, 4, 0, 0, b);
        b[byte] = 0x80;
        assert_int_equal(decode(b, FRAME_H2E, &h), CLST_E_MALFORMED);
    }
    for (int byte = 18; byte < 20; byte++) { /* reserved */
        encode(FRAME_CALL, 1, 0, 4, 0, 0, b);
        b[byte] = 1;
        assert_int_equal(decode(b, FRAME_H2E, &h), CLST_E_MALFORMED);
    }
    /* Names: required and bounded for CALL/OCALL, absent otherwise. */
    encode(FRAME_CALL, 1, 0, 0, 0, 0, b);
    assert_int_equal(decode(b, FRAME_H2E, &h), CLST_E_MALFORMED);
    encode(FRAME_CALL, 1, 0, CLST_ENCLAVE_NAME_MAX, 0, 0, b);
    assert_int_equal(decode(b, FRAME_H2E, &h), CLST_OK);
    encode(FRAME_CALL, 1, 0, CLST_ENCLAVE_NAME_MAX + 1, 0, 0, b);
    assert_int_equal(decode(b, FRAME_H2E, &h), CLST_E_MALFORMED);
    encode(FRAME_OCALL, 1, 0, 0, 0, 0, b);
    assert_int_equal(decode(b, FRAME_E2H, &h), CLST_E_MALFORMED);
    encode(FRAME_RETURN, 1, 0, 3, 0, 0, b);
    assert_int_equal(decode(b, FRAME_E2H, &h), CLST_E_MALFORMED);
    /* Statuses: only where a result travels, and only known values. */
    encode(FRAME_CALL, 1, 1, 4, 0, 0, b);
    assert_int_equal(decode(b, FRAME_H2E, &h), CLST_E_MALFORMED);
    encode(FRAME_RETURN, 1, CLST_E_INTERNAL, 0, 0, 0, b);
    assert_int_equal(decode(b, FRAME_E2H, &h), CLST_OK);
    encode(FRAME_RETURN, 1, CLST_E_INTERNAL + 1, 0, 0, 0, b);
    assert_int_equal(decode(b, FRAME_E2H, &h), CLST_E_MALFORMED);
    encode(FRAME_ORET, 1, 0xffffffffu, 0, 0, 0, b);
    assert_int_equal(decode(b, FRAME_H2E, &h), CLST_E_MALFORMED);
    /* aux (output capacity) only on requests. */
    encode(FRAME_RETURN, 1, 0, 0, 0, 1, b);
    assert_int_equal(decode(b, FRAME_E2H, &h), CLST_E_MALFORMED);
    /* Sizes. */
    encode(FRAME_CALL, 1, 0, 4, (uint32_t)lim.max_payload, lim.max_payload, b);
    assert_int_equal(decode(b, FRAME_H2E, &h), CLST_OK);
    encode(FRAME_CALL, 1, 0, 4, (uint32_t)lim.max_payload + 1, 0, b);
    assert_int_equal(frame_hdr_decode(b, FRAME_H2E, &lim, &h, &err), CLST_E_LIMIT);
    assert_non_null(strstr(err.msg, "exceeds the limit"));
    encode(FRAME_CALL, 1, 0, 4, 0, lim.max_payload + 1, b);
    assert_int_equal(decode(b, FRAME_H2E, &h), CLST_E_LIMIT);
    encode(FRAME_RETURN, 1, CLST_E_DENIED, 0, FRAME_ERR_MSG_MAX + 1, 0, b);
    assert_int_equal(decode(b, FRAME_E2H, &h), CLST_E_LIMIT);
    encode(FRAME_EXIT, 0, 0, 0, 1, 0, b);
    assert_int_equal(decode(b, FRAME_H2E, &h), CLST_E_LIMIT);
    encode(FRAME_READY, 0, 0, 0, READY_PAYLOAD_MAX + 1, 0, b);
    assert_int_equal(decode(b, FRAME_E2H, &h), CLST_E_LIMIT);
    /* A failed READY carries only a message (found by fuzzing: it was allowed 16 KiB). */
    encode(FRAME_READY, 0, CLST_E_MALFORMED, 0, FRAME_ERR_MSG_MAX, 0, b);
    assert_int_equal(decode(b, FRAME_E2H, &h), CLST_OK);
    encode(FRAME_READY, 0, CLST_E_MALFORMED, 0, FRAME_ERR_MSG_MAX + 1, 0, b);
    assert_int_equal(decode(b, FRAME_E2H, &h), CLST_E_LIMIT);
    /* Output written only on success. */
    memset(&h, 0xa5, sizeof(h));
    struct frame_hdr before = h;
    encode(FRAME_CALL, 1, 0, 0, 0, 0, b);
    assert_int_not_equal(decode(b, FRAME_H2E, &h), CLST_OK);
    assert_memory_equal(&h, &before, sizeof(h));
}

static void
test_names(void **state)
{
    (void)state;
    assert_true(frame_name_valid_str("hello"));
    assert_true(frame_name_valid_str("a.b-c_D9"));
    assert_false(frame_name_valid_str(""));
    assert_false(frame_name_valid_str(NULL));
    assert_false(frame_name_valid_str("with space"));
    assert_false(frame_name_valid_str("slash/no"));
    assert_false(frame_name_valid_str("nul\x01"));
    char long_name[CLST_ENCLAVE_NAME_MAX + 2];
    memset(long_name, 'a', sizeof(long_name));
    long_name[CLST_ENCLAVE_NAME_MAX] = '\0';
    assert_true(frame_name_valid_str(long_name));
    long_name[CLST_ENCLAVE_NAME_MAX] = 'a';
    long_name[CLST_ENCLAVE_NAME_MAX + 1] = '\0';
    assert_false(frame_name_valid_str(long_name));
    assert_false(frame_name_valid((const uint8_t *)"ab\0c", 4));
}

static void
test_sanitize(void **state)
{
    (void)state;
    char out[8];
    frame_msg_sanitize((const uint8_t *)"a\x1b[2Jb\n", 7, out, sizeof(out));
    assert_string_equal(out, "a?[2Jb?");
    frame_msg_sanitize((const uint8_t *)"0123456789", 10, out, sizeof(out));
    assert_string_equal(out, "0123456");
    frame_msg_sanitize((const uint8_t *)"\xff", 1, out, sizeof(out));
    assert_string_equal(out, "?");
}

static void
test_ready(void **state)
{
    (void)state;
    struct ready_info *r = calloc(1, sizeof(*r)), *d = calloc(1, sizeof(*d));
    struct clst_buf b;
    struct clst_err err = {0};
    assert_non_null(r);
    assert_non_null(d);
    clst_buf_init(&b, READY_PAYLOAD_MAX);
    r->flags = READY_FLAG_LOCKED | READY_FLAG_HAS_MAIN;
    r->lock_errno = 0;
    r->memlock_limit = 8u << 20;
    r->entry_count = 3;
    strcpy(r->entries[0], "a");
    strcpy(r->entries[1], "bee");
    strcpy(r->entries[2], "sea.c");
    assert_int_equal(ready_encode(r, &b), CLST_OK);
    assert_int_equal(ready_decode(b.data, b.size, d, &err), CLST_OK);
    assert_int_equal(d->entry_count, 3);
    assert_string_equal(d->entries[2], "sea.c");
    assert_int_equal(d->memlock_limit, 8u << 20);
    /* Every truncation and one trailing byte fail. */
    for (size_t n = 0; n < b.size; n++) {
        assert_int_equal(ready_decode(b.data, n, d, &err), CLST_E_MALFORMED);
    }
    assert_int_equal(clst_buf_append_byte(&b, 0), CLST_OK);
    assert_int_equal(ready_decode(b.data, b.size, d, &err), CLST_E_MALFORMED);
    b.size--;
    /* Unknown flags, a bad name, too many entries. */
    b.data[4] |= 0x80;
    assert_int_equal(ready_decode(b.data, b.size, d, &err), CLST_E_MALFORMED);
    b.data[4] &= 0x7f;
    b.data[29] = ' ';
    assert_int_equal(ready_decode(b.data, b.size, d, &err), CLST_E_MALFORMED);
    b.data[29] = 'a';
    clst_put_le32(b.data + 24, CLST_ENCLAVE_ENTRY_MAX + 1);
    assert_int_equal(ready_decode(b.data, b.size, d, &err), CLST_E_LIMIT);
    clst_buf_cleanup(&b);
    free(r);
    free(d);
}

static void
test_service_requests(void **state)
{
    (void)state;
    struct clst_err err = {0};
    uint8_t b[64];
    /* clst.log */
    struct svc_log_req lr;
    b[0] = CLST_LOG_INFO;
    memcpy(b + 1, "hi", 2);
    assert_int_equal(svc_log_decode(b, 3, &lr, &err), CLST_OK);
    assert_int_equal(lr.text_size, 2);
    assert_int_equal(svc_log_decode(b, 0, &lr, &err), CLST_E_MALFORMED);
    b[0] = 9;
    assert_int_equal(svc_log_decode(b, 3, &lr, &err), CLST_E_MALFORMED);
    uint8_t *big = calloc(1, SVC_LOG_MAX + 2);
    assert_non_null(big);
    assert_int_equal(svc_log_decode(big, SVC_LOG_MAX + 1, &lr, &err), CLST_OK);
    assert_int_equal(svc_log_decode(big, SVC_LOG_MAX + 2, &lr, &err), CLST_E_LIMIT);
    free(big);
    /* clst.file.open */
    struct svc_open_req orq;
    clst_put_le32(b, CLST_ENCLAVE_FILE_READ);
    memcpy(b + 4, "input", 5);
    assert_int_equal(svc_open_decode(b, 9, &orq, &err), CLST_OK);
    assert_string_equal(orq.name, "input");
    assert_int_equal(svc_open_decode(b, 4, &orq, &err), CLST_E_MALFORMED);
    assert_int_equal(svc_open_decode(b, 3, &orq, &err), CLST_E_MALFORMED);
    clst_put_le32(b, 3);
    assert_int_equal(svc_open_decode(b, 9, &orq, &err), CLST_E_MALFORMED);
    clst_put_le32(b, CLST_ENCLAVE_FILE_WRITE);
    b[6] = '/';
    assert_int_equal(svc_open_decode(b, 9, &orq, &err), CLST_E_MALFORMED);
    /* clst.file.read */
    struct svc_read_req rr;
    clst_put_le32(b, 1);
    clst_put_le32(b + 4, 100);
    assert_int_equal(svc_read_decode(b, 8, &rr, &err), CLST_OK);
    assert_int_equal(svc_read_decode(b, 7, &rr, &err), CLST_E_MALFORMED);
    assert_int_equal(svc_read_decode(b, 9, &rr, &err), CLST_E_MALFORMED);
    clst_put_le32(b + 4, 0);
    assert_int_equal(svc_read_decode(b, 8, &rr, &err), CLST_E_LIMIT);
    clst_put_le32(b + 4, CLST_ENCLAVE_FILE_IO_MAX + 1);
    assert_int_equal(svc_read_decode(b, 8, &rr, &err), CLST_E_LIMIT);
    /* clst.file.write */
    struct svc_write_req wr;
    assert_int_equal(svc_write_decode(b, 4, &wr, &err), CLST_OK);
    assert_int_equal(wr.data_size, 0);
    assert_int_equal(svc_write_decode(b, 3, &wr, &err), CLST_E_MALFORMED);
    /* clst.platform.sealkey */
    struct svc_sealkey_req sk = {.policy = CLST_SEAL_TO_SIGNER, .svn = 5}, sd;
    uint8_t req[SEALKEY_REQ_SIZE];
    memset(sk.key_id, 0x77, sizeof(sk.key_id));
    svc_sealkey_encode(&sk, req);
    assert_int_equal(svc_sealkey_decode(req, sizeof(req), &sd, &err), CLST_OK);
    assert_int_equal(sd.svn, 5);
    assert_memory_equal(sd.key_id, sk.key_id, 32);
    assert_int_equal(svc_sealkey_decode(req, sizeof(req) - 1, &sd, &err), CLST_E_MALFORMED);
    req[5] = 1; /* reserved */
    assert_int_equal(svc_sealkey_decode(req, sizeof(req), &sd, &err), CLST_E_MALFORMED);
    req[5] = 0;
    req[0] = 3; /* policy */
    assert_int_equal(svc_sealkey_decode(req, sizeof(req), &sd, &err), CLST_E_MALFORMED);
}

static void
test_service_replies(void **state)
{
    (void)state;
    struct clst_err err = {0};
    uint8_t b[16];
    int64_t s;
    uint32_t ns, v;
    clst_put_le64(b, 1700000000u);
    clst_put_le32(b + 8, 999999999u);
    assert_int_equal(svc_time_decode(b, 12, &s, &ns, &err), CLST_OK);
    assert_int_equal(s, 1700000000);
    assert_int_equal(svc_time_decode(b, 11, &s, &ns, &err), CLST_E_MALFORMED);
    assert_int_equal(svc_time_decode(b, 13, &s, &ns, &err), CLST_E_MALFORMED);
    clst_put_le32(b + 8, 1000000000u);
    assert_int_equal(svc_time_decode(b, 12, &s, &ns, &err), CLST_E_MALFORMED);
    clst_put_le32(b, 42);
    assert_int_equal(svc_u32_decode(b, 4, &v, &err), CLST_OK);
    assert_int_equal(v, 42);
    assert_int_equal(svc_u32_decode(b, 5, &v, &err), CLST_E_MALFORMED);
    assert_int_equal(svc_u32_decode(b, 3, &v, &err), CLST_E_MALFORMED);
}

static void
test_main_args(void **state)
{
    (void)state;
    char *const argv[] = {(char *)"prog", (char *)"", (char *)"two words", NULL};
    struct clst_buf b;
    struct clst_err err = {0};
    int argc = 0;
    char **out = NULL;
    clst_buf_init(&b, MAIN_ARGS_MAX + 64);
    assert_int_equal(main_args_encode(3, argv, &b), CLST_OK);
    assert_int_equal(main_args_decode(b.data, b.size, &argc, &out, &err), CLST_OK);
    assert_int_equal(argc, 3);
    assert_string_equal(out[0], "prog");
    assert_string_equal(out[1], "");
    assert_string_equal(out[2], "two words");
    assert_null(out[3]);
    free(out);
    for (size_t n = 0; n < b.size; n++) {
        assert_int_not_equal(main_args_decode(b.data, n, &argc, &out, &err), CLST_OK);
    }
    assert_int_equal(clst_buf_append_byte(&b, 'x'), CLST_OK);
    assert_int_equal(main_args_decode(b.data, b.size, &argc, &out, &err), CLST_E_MALFORMED);
    b.size--;
    b.data[8] = '\0'; /* a NUL inside "prog" */
    assert_int_equal(main_args_decode(b.data, b.size, &argc, &out, &err), CLST_E_MALFORMED);
    clst_put_le32(b.data, 0);
    assert_int_equal(main_args_decode(b.data, b.size, &argc, &out, &err), CLST_E_LIMIT);
    clst_put_le32(b.data, MAIN_ARGC_MAX + 1);
    assert_int_equal(main_args_decode(b.data, b.size, &argc, &out, &err), CLST_E_LIMIT);
    /* A length that points past the end. */
    clst_put_le32(b.data, 1);
    clst_put_le32(b.data + 4, 0xffffffffu);
    assert_int_equal(main_args_decode(b.data, b.size, &argc, &out, &err), CLST_E_MALFORMED);
    assert_int_equal(main_args_encode(0, argv, &b), CLST_E_LIMIT);
    clst_buf_cleanup(&b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hdr_roundtrip),    cmocka_unit_test(test_hdr_direction),
        cmocka_unit_test(test_hdr_fields),       cmocka_unit_test(test_names),
        cmocka_unit_test(test_sanitize),         cmocka_unit_test(test_ready),
        cmocka_unit_test(test_service_requests), cmocka_unit_test(test_service_replies),
        cmocka_unit_test(test_main_args),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
