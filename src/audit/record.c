/*
 * The audit record format: formatting a line (writer) and parsing one (verifier, tail).
 *
 * A line is `{"seq":N,"time":T,<members>,"prev":P[,"sig":S],"hash":H}` in exactly this byte
 * layout: H is the SHA-256 of the bytes before `,"hash":"`, S the audit key's signature over the
 * bytes before `,"sig":"`. The checks work on the bytes (no JSON canonicalization is needed);
 * jansson then parses the line to read its members, with duplicate members refused, and the
 * members it reads must agree with the bytes that were hashed.
 */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "audit/audit_int.h"

enum clst_status
audit_sha256_hex(const void *data, size_t size, char out[static CLST_AUDIT_HASH_HEX_SIZE])
{
    uint8_t d[CLST_SHA256_SIZE];
    enum clst_status st = clst_sha256(data, size, d);
    if (st == CLST_OK) {
        st = clst_hex_to_str(d, sizeof(d), out, CLST_AUDIT_HASH_HEX_SIZE);
    }
    return st;
}

void
audit_time_now(char out[static 32])
{
    struct timespec ts;
    struct tm tm;
    (void)clock_gettime(CLOCK_REALTIME, &ts);
    if (gmtime_r(&ts.tv_sec, &tm) == NULL) {
        snprintf(out, 32, "1970-01-01T00:00:00.000Z");
        return;
    }
    char tmp[128];
    snprintf(tmp, sizeof(tmp), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000L);
    size_t n = strnlen(tmp, 31);
    memcpy(out, tmp, n);
    out[n] = '\0';
}

enum clst_status
audit_format_line(struct clst_buf *out, uint64_t seq, const char *time, const char *members,
                  const char *prev, const struct audit_key *key,
                  char out_hash[static CLST_AUDIT_HASH_HEX_SIZE])
{
    struct clst_buf sig, sig64;
    size_t start = out->size;
    enum clst_status st;

    clst_buf_init(&sig, 256);
    clst_buf_init(&sig64, 512);
    st = clst_buf_appendf(out, "{\"seq\":%" PRIu64 ",\"time\":\"%s\",%s,\"prev\":\"%s\"", seq, time,
                          members, prev);
    if (st == CLST_OK && key != NULL) {
        st = clst_ecdsa_sign(key->pkey, key->hash, CLST_SIG_RAW, out->data + start,
                             out->size - start, &sig);
        if (st == CLST_OK) {
            st = clst_b64url_encode(sig.data, sig.size, &sig64);
        }
        if (st == CLST_OK) {
            st = clst_buf_append_str(out, AUDIT_SIG_MARK);
        }
        if (st == CLST_OK) {
            st = clst_buf_append(out, sig64.data, sig64.size);
        }
        if (st == CLST_OK) {
            st = clst_buf_append_byte(out, '"');
        }
    }
    if (st == CLST_OK) {
        st = audit_sha256_hex(out->data + start, out->size - start, out_hash);
    }
    if (st == CLST_OK) {
        st = clst_buf_appendf(out, AUDIT_HASH_SUFFIX "%s\"}\n", out_hash);
    }
    if (st == CLST_OK && out->size - start > CLST_AUDIT_LINE_MAX) {
        st = CLST_E_LIMIT;
    }
    if (st != CLST_OK) {
        out->size = start;
    }
    clst_buf_cleanup(&sig);
    clst_buf_cleanup(&sig64);
    return st;
}

bool
audit_file_name_parse(const char *name, uint64_t *out_seq)
{
    size_t plen = strlen(AUDIT_FILE_PREFIX), slen = strlen(AUDIT_FILE_SUFFIX);
    char digits[21];
    uint64_t v;
    if (strlen(name) != plen + 20 + slen || strncmp(name, AUDIT_FILE_PREFIX, plen) != 0 ||
        strcmp(name + plen + 20, AUDIT_FILE_SUFFIX) != 0) {
        return false;
    }
    memcpy(digits, name + plen, 20);
    digits[20] = '\0';
    for (size_t i = 0; i < 20; i++) {
        if (digits[i] < '0' || digits[i] > '9') {
            return false;
        }
    }
    /* clst_parse_u64 refuses leading zeros? it takes base-10 text; strip them first. */
    size_t i = 0;
    while (i < 19 && digits[i] == '0') {
        i++;
    }
    if (clst_parse_u64(digits + i, 1, UINT64_MAX, &v, NULL) != CLST_OK) {
        return false;
    }
    *out_seq = v;
    return true;
}

static bool
is_hex64(const char *s, size_t n)
{
    if (n != 64) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return false;
        }
    }
    return true;
}

void
clst_audit_record_cleanup(struct clst_audit_record *r)
{
    if (r != NULL) {
        json_decref(r->obj);
        r->obj = NULL;
    }
}

enum clst_status
clst_audit_record_parse(const char *line, size_t size, struct clst_audit_record *out,
                        struct clst_err *err)
{
    static const char head[] = "{\"seq\":";
    char hash[CLST_AUDIT_HASH_HEX_SIZE];
    json_t *obj = NULL, *j;
    json_error_t jerr;
    const char *s;
    json_int_t seq;
    enum clst_status rc = CLST_E_MALFORMED;

    if (line == NULL || out == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "record parse: line and out required");
    }
    memset(out, 0, sizeof(*out));
    if (size == 0) {
        rc = clst_err_set(err, CLST_E_MALFORMED, "empty line (a record is missing)");
        goto out;
    }
    if (size >= CLST_AUDIT_LINE_MAX) {
        rc = clst_err_set(err, CLST_E_LIMIT, "line longer than %u bytes",
                          CLST_AUDIT_LINE_MAX - 1);
        goto out;
    }
    for (size_t i = 0; i < size; i++) {
        unsigned char c = (unsigned char)line[i];
        if (c < 0x20 || c > 0x7e) {
            rc = clst_err_set(err, CLST_E_MALFORMED,
                              "byte %zu is 0x%02x: records are printable ASCII (an edited or "
                              "corrupted record)",
                              i + 1, c);
            goto out;
        }
    }
    if (size < sizeof(head) - 1 + AUDIT_HASH_TAIL_LEN ||
        memcmp(line, head, sizeof(head) - 1) != 0) {
        rc = clst_err_set(err, CLST_E_MALFORMED, "not an audit record: it must begin with "
                                                 "{\"seq\": and end with ,\"hash\":\"<64 hex>\"}");
        goto out;
    }
    {
        const char *tail = line + size - AUDIT_HASH_TAIL_LEN;
        if (memcmp(tail, AUDIT_HASH_SUFFIX, AUDIT_HASH_SUFFIX_LEN) != 0 ||
            !is_hex64(tail + AUDIT_HASH_SUFFIX_LEN, 64) || tail[AUDIT_HASH_SUFFIX_LEN + 64] != '"' ||
            tail[AUDIT_HASH_SUFFIX_LEN + 65] != '}') {
            rc = clst_err_set(err, CLST_E_MALFORMED,
                              "the record does not end with ,\"hash\":\"<64 lower-case hex>\"} "
                              "(truncated or edited)");
            goto out;
        }
        if (audit_sha256_hex(line, size - AUDIT_HASH_TAIL_LEN, hash) != CLST_OK) {
            rc = clst_err_set(err, CLST_E_INTERNAL, "SHA-256 failed");
            goto out;
        }
        memcpy(out->hash, tail + AUDIT_HASH_SUFFIX_LEN, 64);
        out->hash[64] = '\0';
    }
    obj = json_loadb(line, size, JSON_REJECT_DUPLICATES, &jerr);
    if (obj == NULL || !json_is_object(obj)) {
        rc = clst_err_set(err, CLST_E_MALFORMED, "not a JSON object: %s",
                          obj == NULL ? jerr.text : "another JSON value");
        goto out;
    }
    j = json_object_get(obj, "seq");
    if (!json_is_integer(j) || (seq = json_integer_value(j)) < 1) {
        rc = clst_err_set(err, CLST_E_MALFORMED, "\"seq\" must be an integer >= 1");
        goto out;
    }
    out->seq = (uint64_t)seq;
    /* The line's own hash, checked once seq is known so that the message can name it. */
    if (!clst_ct_equal(hash, out->hash, 64)) {
        rc = clst_err_set(err, CLST_E_VERIFY,
                          "the record's hash does not match its contents (the record was edited)");
        goto out;
    }
    s = json_string_value(json_object_get(obj, "hash"));
    if (s == NULL || strcmp(s, out->hash) != 0) {
        rc = clst_err_set(err, CLST_E_MALFORMED, "\"hash\" member does not match the line's end");
        goto out;
    }
    s = json_string_value(json_object_get(obj, "type"));
    if (s == NULL || s[0] == '\0' || strlen(s) >= sizeof(out->type)) {
        rc = clst_err_set(err, CLST_E_MALFORMED, "\"type\" must be a short string");
        goto out;
    }
    memcpy(out->type, s, strlen(s) + 1);
    s = json_string_value(json_object_get(obj, "prev"));
    if (s == NULL || !is_hex64(s, strlen(s))) {
        rc = clst_err_set(err, CLST_E_MALFORMED, "\"prev\" must be 64 lower-case hex characters");
        goto out;
    }
    memcpy(out->prev, s, 65);
    if (!json_is_string(json_object_get(obj, "time"))) {
        rc = clst_err_set(err, CLST_E_MALFORMED, "\"time\" must be a string");
        goto out;
    }
    out->obj = obj;
    obj = NULL;
    rc = CLST_OK;
out:
    json_decref(obj);
    if (rc != CLST_OK) {
        out->obj = NULL;
    }
    return rc;
}
