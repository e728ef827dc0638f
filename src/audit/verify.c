/*
 * `cloister audit verify`: the chain, record by record and file by file, and the checkpoint
 * signatures. The first record that does not check out stops verification and is named (file,
 * line, seq, what is wrong). Every byte read here is untrusted.
 */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "audit/audit_int.h"

static const char *
base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s != NULL ? s + 1 : path;
}

enum clst_status
clst_audit_verify_init(struct clst_audit_verify *v, EVP_PKEY *pub, struct clst_err *err)
{
    struct audit_key k;
    if (v == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "verify: v required");
    }
    memset(v, 0, sizeof(*v));
    if (pub != NULL) {
        enum clst_status st = audit_key_describe(pub, &k, err);
        if (st != CLST_OK) {
            return st;
        }
        memcpy(v->kid, k.kid, sizeof(v->kid));
    }
    v->pub = pub;
    return CLST_OK;
}

void
clst_audit_verify_file(struct clst_audit_verify *v, const char *name)
{
    if (v->file_count > 0) {
        snprintf(v->prev_file, sizeof(v->prev_file), "%s", v->file);
    }
    snprintf(v->file, sizeof(v->file), "%s", base_name(name));
    v->file_count++;
    v->line_no = 0;
}

static enum clst_status
fail(struct clst_audit_verify *v, uint64_t seq, enum clst_status st, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static enum clst_status
fail(struct clst_audit_verify *v, uint64_t seq, enum clst_status st, const char *fmt, ...)
{
    va_list ap;
    v->bad = true;
    v->bad_line = v->line_no;
    v->bad_seq = seq;
    snprintf(v->bad_file, sizeof(v->bad_file), "%s", v->file);
    va_start(ap, fmt);
    vsnprintf(v->msg, sizeof(v->msg), fmt, ap);
    va_end(ap);
    return st;
}

/* The checkpoint's signature over the bytes before `,"sig":"`. */
static enum clst_status
check_checkpoint(struct clst_audit_verify *v, const char *line, size_t size,
                 const struct clst_audit_record *r)
{
    json_t *obj = r->obj;
    const char *alg = json_string_value(json_object_get(obj, "alg"));
    const char *kid = json_string_value(json_object_get(obj, "kid"));
    const char *reason = json_string_value(json_object_get(obj, "reason"));
    const char *sig = json_string_value(json_object_get(obj, "sig"));
    struct audit_key k;
    struct clst_buf raw;
    size_t body = size - AUDIT_HASH_TAIL_LEN; /* bytes before ,"hash":" */
    size_t sig_len, mark;
    enum clst_status st;

    if (alg == NULL || kid == NULL || reason == NULL || sig == NULL) {
        return fail(v, r->seq, CLST_E_MALFORMED,
                    "checkpoint lacks one of alg, kid, reason, sig");
    }
    if (strcmp(reason, "every") != 0 && strcmp(reason, "rotate") != 0 &&
        strcmp(reason, "close") != 0) {
        return fail(v, r->seq, CLST_E_MALFORMED, "checkpoint reason '%.32s' is unknown", reason);
    }
    sig_len = strlen(sig);
    /* The line must read ...,"sig":"<sig>","hash":... with the parsed value at that place. */
    if (sig_len + AUDIT_SIG_MARK_LEN + 1 > body ||
        line[body - 1] != '"' ||
        memcmp(line + body - 1 - sig_len, sig, sig_len) != 0 ||
        memcmp(line + body - 1 - sig_len - AUDIT_SIG_MARK_LEN, AUDIT_SIG_MARK,
               AUDIT_SIG_MARK_LEN) != 0) {
        return fail(v, r->seq, CLST_E_MALFORMED,
                    "checkpoint: \"sig\" must be the member just before \"hash\"");
    }
    mark = body - 1 - sig_len - AUDIT_SIG_MARK_LEN;
    if (v->pub == NULL) {
        return fail(v, r->seq, CLST_E_VERIFY,
                    "checkpoint cannot be checked without the audit public key (--key "
                    "DATA/audit.pub)");
    }
    if (strcmp(kid, v->kid) != 0) {
        return fail(v, r->seq, CLST_E_VERIFY,
                    "checkpoint signed by key %.16s…, not the given public key %.16s…", kid,
                    v->kid);
    }
    if ((st = audit_key_describe(v->pub, &k, NULL)) != CLST_OK || strcmp(alg, k.alg) != 0) {
        return fail(v, r->seq, CLST_E_VERIFY, "checkpoint alg '%.16s' does not match the key (%s)",
                    alg, st == CLST_OK ? k.alg : "?");
    }
    clst_buf_init(&raw, 256);
    st = clst_b64url_decode(sig, sig_len, &raw);
    if (st == CLST_OK && raw.size != k.sig_size) {
        st = CLST_E_MALFORMED;
    }
    if (st == CLST_OK) {
        st = clst_ecdsa_verify(v->pub, k.hash, CLST_SIG_RAW, line, mark, raw.data, raw.size);
    }
    clst_buf_cleanup(&raw);
    if (st != CLST_OK) {
        return fail(v, r->seq, CLST_E_VERIFY,
                    "checkpoint signature does not verify with the audit public key (the chain "
                    "up to it was altered, or it was signed by another key)");
    }
    snprintf(v->last_reason, sizeof(v->last_reason), "%s", reason);
    return CLST_OK;
}

enum clst_status
clst_audit_verify_line(struct clst_audit_verify *v, const char *line, size_t size)
{
    struct clst_audit_record r;
    struct clst_err err;
    enum clst_status st;

    if (v->bad) {
        return CLST_E_VERIFY;
    }
    v->line_no++;
    clst_err_clear(&err);
    st = clst_audit_record_parse(line, size, &r, &err);
    if (st != CLST_OK) {
        /* r.seq is set once the seq member was read */
        return fail(v, r.seq, st, "%s", err.msg);
    }
    bool first_in_file = v->line_no == 1;
    if (!v->have_last) {
        /* The first record given: the genesis record, or a file that continues another. */
        if (strcmp(r.type, "start") == 0 && r.seq == 1 && strcmp(r.prev, AUDIT_ZERO_HASH) == 0) {
            v->anchored = true;
        } else if (strcmp(r.type, "continue") == 0) {
            const char *pf = json_string_value(json_object_get(r.obj, "prev_file"));
            snprintf(v->start_note, sizeof(v->start_note),
                     "the chain is checked from seq %" PRIu64 ": it continues %s (not given)",
                     r.seq, pf != NULL ? pf : "an earlier file");
        } else {
            st = fail(v, r.seq, CLST_E_VERIFY,
                      "the log does not start with its first record (seq 1, type start) nor with "
                      "the first record of a rotated file (type continue): records are missing "
                      "at the start");
            goto out;
        }
    } else {
        if (r.seq != v->last_seq + 1) {
            st = fail(v, r.seq, CLST_E_VERIFY,
                      "seq %" PRIu64 " follows seq %" PRIu64
                      ": records are missing, duplicated or out of order",
                      r.seq, v->last_seq);
            goto out;
        }
        if (strcmp(r.prev, v->last_hash) != 0) {
            st = fail(v, r.seq, CLST_E_VERIFY,
                      "\"prev\" is not the hash of the record before it (seq %" PRIu64
                      "): that record was changed, or records were removed or reordered",
                      v->last_seq);
            goto out;
        }
        if (first_in_file) {
            const char *pf = json_string_value(json_object_get(r.obj, "prev_file"));
            if (strcmp(r.type, "continue") != 0 || pf == NULL) {
                st = fail(v, r.seq, CLST_E_VERIFY,
                          "the first record of a file after %s must be of type continue",
                          v->prev_file);
                goto out;
            }
            if (strcmp(pf, v->prev_file) != 0) {
                st = fail(v, r.seq, CLST_E_VERIFY,
                          "this file continues %.100s, but the file before it is %.100s", pf,
                          v->prev_file);
                goto out;
            }
            if (strcmp(v->last_type, "checkpoint") != 0 || strcmp(v->last_reason, "rotate") != 0) {
                st = fail(v, r.seq, CLST_E_VERIFY,
                          "%.100s does not end with its rotation checkpoint: it was truncated",
                          v->prev_file);
                goto out;
            }
        } else if (strcmp(r.type, "continue") == 0) {
            st = fail(v, r.seq, CLST_E_VERIFY, "a continue record in the middle of a file");
            goto out;
        }
    }
    if (strcmp(r.type, "checkpoint") == 0) {
        if ((st = check_checkpoint(v, line, size, &r)) != CLST_OK) {
            goto out;
        }
        v->checkpoints++;
        v->unsigned_tail = 0;
    } else {
        if (json_object_get(r.obj, "sig") != NULL) {
            st = fail(v, r.seq, CLST_E_MALFORMED, "only checkpoints carry a signature");
            goto out;
        }
        v->last_reason[0] = '\0';
        v->unsigned_tail++;
    }
    v->have_last = true;
    v->last_seq = r.seq;
    memcpy(v->last_hash, r.hash, sizeof(v->last_hash));
    memcpy(v->last_type, r.type, sizeof(v->last_type));
    v->records++;
    st = CLST_OK;
out:
    clst_audit_record_cleanup(&r);
    return st;
}

void
clst_audit_verify_torn(struct clst_audit_verify *v)
{
    if (!v->bad) {
        v->line_no++;
        (void)fail(v, 0, CLST_E_MALFORMED,
                   "the file ends in the middle of a record (no newline): the log was truncated "
                   "or a write was torn");
    }
}

enum clst_status
clst_audit_verify_end(struct clst_audit_verify *v, bool allow_open)
{
    if (v->bad) {
        return CLST_E_VERIFY;
    }
    if (v->records == 0) {
        v->line_no++;
        return fail(v, 0, CLST_E_VERIFY, "the log holds no record (empty or truncated)");
    }
    if (strcmp(v->last_type, "checkpoint") == 0 && strcmp(v->last_reason, "rotate") == 0) {
        return fail(v, v->last_seq, CLST_E_VERIFY,
                    "%s ends with a rotation checkpoint but the next file was not given", v->file);
    }
    bool closed = strcmp(v->last_type, "checkpoint") == 0 && strcmp(v->last_reason, "close") == 0;
    if (!closed && !allow_open) {
        v->line_no++;
        return fail(v, 0, CLST_E_VERIFY,
                    "the log ends after seq %" PRIu64 " without a closing checkpoint: it was "
                    "truncated, or the server is still running or crashed (--allow-open accepts "
                    "that; %" PRIu64 " records are then covered by no signature)",
                    v->last_seq, v->unsigned_tail);
    }
    return CLST_OK;
}

static enum clst_status
verify_one_file(struct clst_audit_verify *v, const char *path, struct clst_err *err)
{
    FILE *f = fopen(path, "rb");
    char *line = NULL;
    size_t size = 0;
    bool too_long = false;
    enum clst_status st = CLST_OK;
    int c;

    if (f == NULL) {
        return clst_err_set(err, CLST_E_IO, "cannot open %s: %s", path, strerror(errno));
    }
    line = malloc(CLST_AUDIT_LINE_MAX);
    if (line == NULL) {
        fclose(f);
        return clst_err_set(err, CLST_E_NOMEM, "out of memory");
    }
    clst_audit_verify_file(v, path);
    while ((c = getc(f)) != EOF) {
        if (c == '\0') {
            /* Zero bytes end the data: room the service writes ahead of its records, left in
             * place by a running or crashed service. A record cut short before them is torn
             * (below); anything but zeros after them is damage. */
            long at = ftell(f) - 1;
            while ((c = getc(f)) == '\0') {
            }
            if (c != EOF) {
                v->line_no++;
                st = fail(v, 0, CLST_E_MALFORMED,
                          "zero bytes from offset %ld are followed by data at offset %ld: zeros "
                          "may only follow the last record (room the service writes ahead), so "
                          "the file was damaged",
                          at, ftell(f) - 1);
            }
            break;
        }
        if (c == '\n') {
            if (too_long) {
                v->line_no++;
                st = fail(v, 0, CLST_E_LIMIT, "line longer than %u bytes", CLST_AUDIT_LINE_MAX - 1);
            } else {
                st = clst_audit_verify_line(v, line, size);
            }
            size = 0;
            too_long = false;
            if (st != CLST_OK) {
                break;
            }
            continue;
        }
        if (size < CLST_AUDIT_LINE_MAX) {
            line[size++] = (char)c;
        } else {
            too_long = true;
        }
    }
    if (st == CLST_OK && ferror(f)) {
        st = clst_err_set(err, CLST_E_IO, "cannot read %s", path);
    } else if (st == CLST_OK && (size > 0 || too_long)) {
        clst_audit_verify_torn(v);
        st = CLST_E_VERIFY;
    }
    free(line);
    fclose(f);
    return st;
}

enum clst_status
clst_audit_verify_files(struct clst_audit_verify *v, const char *const *paths, size_t count,
                        bool allow_open, struct clst_err *err)
{
    enum clst_status st;
    if (v == NULL || (paths == NULL && count > 0)) {
        return clst_err_set(err, CLST_E_INVAL, "verify: files required");
    }
    for (size_t i = 0; i < count; i++) {
        st = verify_one_file(v, paths[i], err);
        if (st != CLST_OK) {
            if (v->bad) {
                return clst_err_set(err, st == CLST_E_IO ? CLST_E_VERIFY : st,
                                    "%s line %" PRIu64 " (seq %" PRIu64 "): %s", v->bad_file,
                                    v->bad_line, v->bad_seq, v->msg);
            }
            return st;
        }
    }
    st = clst_audit_verify_end(v, allow_open);
    if (st != CLST_OK) {
        return clst_err_set(err, st, "%s line %" PRIu64 ": %s", v->bad_file, v->bad_line, v->msg);
    }
    return CLST_OK;
}

static int
cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

enum clst_status
clst_audit_list_files(const char *dir, char ***out, size_t *out_count, struct clst_err *err)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char **names = NULL;
    size_t count = 0, cap = 0;
    enum clst_status rc = CLST_E_NOMEM;
    uint64_t seq;

    if (d == NULL) {
        return clst_err_set(err, CLST_E_IO, "cannot open the audit directory %s: %s", dir,
                            strerror(errno));
    }
    while ((e = readdir(d)) != NULL) {
        if (!audit_file_name_parse(e->d_name, &seq)) {
            continue;
        }
        if (count == cap) {
            size_t ncap = cap == 0 ? 16 : cap * 2;
            char **n = realloc(names, ncap * sizeof(*n));
            if (n == NULL) {
                goto out;
            }
            names = n;
            cap = ncap;
        }
        size_t len = strlen(dir) + 1 + strlen(e->d_name) + 1;
        names[count] = malloc(len);
        if (names[count] == NULL) {
            goto out;
        }
        snprintf(names[count], len, "%s/%s", dir, e->d_name);
        count++;
    }
    /* Fixed-width seq in the names: name order is chain order. */
    if (count > 1) {
        qsort(names, count, sizeof(*names), cmp_names);
    }
    *out = names;
    *out_count = count;
    names = NULL;
    count = 0;
    rc = CLST_OK;
out:
    closedir(d);
    for (size_t i = 0; i < count; i++) {
        free(names[i]);
    }
    free(names);
    if (rc != CLST_OK) {
        clst_err_set(err, rc, "out of memory");
    }
    return rc;
}
