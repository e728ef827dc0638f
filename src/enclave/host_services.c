/*
 * Host services: the enclave's only way out. The runtime's own services (log, time, files the host
 * chose to offer, and the sim platform's evidence and sealing keys) plus those the host program
 * registers. Every request arrives as bytes already copied out of shared memory; each is decoded
 * with the checked decoders of frame.c before use. Replies are capped at the enclave's out_cap.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "enclave/host_int.h"

static const char *const builtins[] = {SVC_LOG,        SVC_TIME,     SVC_FILE_OPEN, SVC_FILE_READ,
                                       SVC_FILE_WRITE, SVC_EVIDENCE, SVC_SEALKEY};

bool
host_service_builtin(const char *name)
{
    for (size_t i = 0; i < sizeof(builtins) / sizeof(builtins[0]); i++) {
        if (strcmp(name, builtins[i]) == 0) {
            return true;
        }
    }
    return strncmp(name, "clst.platform.", 14) == 0 || strncmp(name, "clst.file.", 10) == 0;
}

/* ---- registration ---------------------------------------------------------------------------- */

enum clst_status
clst_host_service_register(struct clst_host_enclave *e, const char *name,
                           const struct clst_host_service *service, struct clst_err *err)
{
    if (e == NULL || service == NULL || service->fn == NULL || !frame_name_valid_str(name)) {
        return clst_err_set(err, CLST_E_INVAL,
                            "service names are 1..64 characters of A-Z a-z 0-9 . _ -");
    }
    if (host_service_builtin(name)) {
        return clst_err_set(err, CLST_E_CONFLICT, "'%s' is one of the runtime's own services",
                            name);
    }
    enum clst_status st = CLST_OK;
    pthread_mutex_lock(&e->lock);
    for (size_t i = 0; i < e->svc_count; i++) {
        if (strcmp(e->svcs[i].name, name) == 0) {
            st = clst_err_set(err, CLST_E_CONFLICT, "service '%s' is already registered", name);
            goto out;
        }
    }
    if (e->svc_count >= SVC_MAX) {
        st = clst_err_set(err, CLST_E_LIMIT, "at most %d services per enclave", SVC_MAX);
        goto out;
    }
    snprintf(e->svcs[e->svc_count].name, sizeof(e->svcs[0].name), "%s", name);
    e->svcs[e->svc_count].svc = *service;
    e->svc_count++;
out:
    pthread_mutex_unlock(&e->lock);
    return st;
}

static enum clst_status
add_file(struct clst_host_enclave *e, const char *name, int fd, unsigned mode, bool own,
         struct clst_err *err)
{
    enum clst_status st = CLST_OK;
    pthread_mutex_lock(&e->lock);
    for (size_t i = 0; i < e->file_count; i++) {
        if (strcmp(e->files[i].name, name) == 0) {
            st = clst_err_set(err, CLST_E_CONFLICT, "a file named '%s' is already offered", name);
            goto out;
        }
    }
    if (e->file_count >= SVC_FILE_MAX) {
        st = clst_err_set(err, CLST_E_LIMIT, "at most %d files per enclave", SVC_FILE_MAX);
        goto out;
    }
    struct host_file *f = &e->files[e->file_count++];
    snprintf(f->name, sizeof(f->name), "%s", name);
    f->fd = fd;
    f->mode = mode;
    f->own = own;
out:
    pthread_mutex_unlock(&e->lock);
    return st;
}

enum clst_status
clst_host_file_add(struct clst_host_enclave *e, const char *name, const char *path, unsigned mode,
                   struct clst_err *err)
{
    if (e == NULL || path == NULL || !frame_name_valid_str(name) ||
        (mode != CLST_ENCLAVE_FILE_READ && mode != CLST_ENCLAVE_FILE_WRITE)) {
        return clst_err_set(err, CLST_E_INVAL,
                            "file names are 1..64 characters of A-Z a-z 0-9 . _ -; mode is "
                            "read or write");
    }
    /* An output is not written through a symbolic link (one planted in a shared directory would
     * redirect it), and an existing regular file is made private before the enclave writes a
     * byte into it (open keeps an existing file's mode). */
    int fd = mode == CLST_ENCLAVE_FILE_READ
                 ? open(path, O_RDONLY | O_CLOEXEC)
                 : open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        int e0 = errno;
        return clst_err_set(err, e0 == ENOENT ? CLST_E_NOTFOUND : CLST_E_IO,
                            "cannot open %s for the enclave: %s%s", path, strerror(e0),
                            e0 == ELOOP ? " (outputs are not written through symbolic links)" : "");
    }
    struct stat sb;
    if (mode == CLST_ENCLAVE_FILE_WRITE &&
        (fstat(fd, &sb) != 0 || (S_ISREG(sb.st_mode) && fchmod(fd, 0600) != 0))) {
        int e2 = errno;
        close(fd);
        return clst_err_set(err, CLST_E_IO, "cannot make the output %s private (mode 0600): %s",
                            path, strerror(e2));
    }
    enum clst_status st = add_file(e, name, fd, mode, true, err);
    if (st != CLST_OK) {
        close(fd);
    }
    return st;
}

enum clst_status
clst_host_file_add_fd(struct clst_host_enclave *e, const char *name, int fd, unsigned mode,
                      struct clst_err *err)
{
    if (e == NULL || fd < 0 || !frame_name_valid_str(name) ||
        (mode != CLST_ENCLAVE_FILE_READ && mode != CLST_ENCLAVE_FILE_WRITE)) {
        return clst_err_set(err, CLST_E_INVAL, "invalid file name, descriptor or mode");
    }
    return add_file(e, name, fd, mode, false, err);
}

void
host_files_close(struct clst_host_enclave *e)
{
    for (size_t i = 0; i < e->file_count; i++) {
        if (e->files[i].own && e->files[i].fd >= 0) {
            close(e->files[i].fd);
        }
        e->files[i].fd = -1;
    }
    e->file_count = 0;
}

/* ---- the runtime's own services -------------------------------------------------------------- */

static enum clst_status
svc_log(struct clst_host_enclave *e, const uint8_t *in, size_t n, struct clst_err *err)
{
    struct svc_log_req r;
    char text[SVC_LOG_MAX + 1], who[17];
    enum clst_status st = svc_log_decode(in, n, &r, err);
    if (st != CLST_OK) {
        return st;
    }
    /* Printable ASCII only: an enclave cannot inject terminal escapes or fake log lines. */
    frame_msg_sanitize(r.text, r.text_size, text, sizeof(text));
    (void)clst_hex_to_str(e->id.mrenclave, 8, who, sizeof(who));
    clst_log((enum clst_log_level)r.level, "enclave %s: %s", who, text);
    return CLST_OK;
}

static enum clst_status
svc_time(struct clst_buf *out, struct clst_err *err)
{
    struct timespec ts;
    uint8_t b[12];
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0) {
        return clst_err_set(err, CLST_E_IO, "clock_gettime: %s", strerror(errno));
    }
    clst_put_le64(b, (uint64_t)ts.tv_sec);
    clst_put_le32(b + 8, (uint32_t)ts.tv_nsec);
    return clst_buf_append(out, b, sizeof(b));
}

static struct host_file *
file_by_handle(struct clst_host_enclave *e, uint32_t handle, unsigned mode, struct clst_err *err)
{
    if (handle == 0 || handle > e->file_count || e->files[handle - 1].fd < 0) {
        clst_err_set(err, CLST_E_NOTFOUND, "no open file with handle %u", handle);
        return NULL;
    }
    struct host_file *f = &e->files[handle - 1];
    if (f->mode != mode) {
        clst_err_set(err, CLST_E_DENIED, "file '%s' is offered for %s only", f->name,
                     f->mode == CLST_ENCLAVE_FILE_READ ? "reading" : "writing");
        return NULL;
    }
    return f;
}

static enum clst_status
svc_open(struct clst_host_enclave *e, const uint8_t *in, size_t n, struct clst_buf *out,
         struct clst_err *err)
{
    struct svc_open_req r;
    uint8_t b[4];
    enum clst_status st = svc_open_decode(in, n, &r, err);
    if (st != CLST_OK) {
        return st;
    }
    for (size_t i = 0; i < e->file_count; i++) {
        if (strcmp(e->files[i].name, r.name) == 0) {
            if (e->files[i].mode != r.mode) {
                return clst_err_set(err, CLST_E_DENIED, "file '%s' is offered for %s only", r.name,
                                    e->files[i].mode == CLST_ENCLAVE_FILE_READ ? "reading"
                                                                               : "writing");
            }
            clst_put_le32(b, (uint32_t)(i + 1));
            return clst_buf_append(out, b, 4);
        }
    }
    return clst_err_set(err, CLST_E_NOTFOUND,
                        "the host offers no file named '%s' (cloister run --in/--out NAME=PATH)",
                        r.name);
}

static enum clst_status
svc_read(struct clst_host_enclave *e, const uint8_t *in, size_t n, struct clst_buf *out,
         struct clst_err *err)
{
    struct svc_read_req r;
    enum clst_status st = svc_read_decode(in, n, &r, err);
    if (st != CLST_OK) {
        return st;
    }
    struct host_file *f = file_by_handle(e, r.handle, CLST_ENCLAVE_FILE_READ, err);
    if (f == NULL) {
        return err != NULL ? err->status : CLST_E_NOTFOUND;
    }
    size_t want = r.max < out->max ? r.max : out->max;
    st = clst_buf_reserve(out, want > 0 ? want : 1);
    if (st != CLST_OK) {
        return clst_err_set(err, st, "no room for the read");
    }
    for (;;) {
        ssize_t got = read(f->fd, out->data + out->size, want);
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got < 0) {
            return clst_err_set(err, CLST_E_IO, "reading '%s': %s", f->name, strerror(errno));
        }
        out->size += (size_t)got;
        return CLST_OK;
    }
}

static enum clst_status
svc_write(struct clst_host_enclave *e, const uint8_t *in, size_t n, struct clst_err *err)
{
    struct svc_write_req r;
    enum clst_status st = svc_write_decode(in, n, &r, err);
    if (st != CLST_OK) {
        return st;
    }
    struct host_file *f = file_by_handle(e, r.handle, CLST_ENCLAVE_FILE_WRITE, err);
    if (f == NULL) {
        return err != NULL ? err->status : CLST_E_NOTFOUND;
    }
    for (size_t off = 0; off < r.data_size;) {
        ssize_t w = write(f->fd, r.data + off, r.data_size - off);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return clst_err_set(err, CLST_E_IO, "writing '%s': %s", f->name, strerror(errno));
        }
        off += (size_t)w;
    }
    return CLST_OK;
}

static enum clst_status
no_platform(struct clst_err *err)
{
    return clst_err_set(err, CLST_E_NOTFOUND,
                        "the host has no sim platform: create one with 'cloister sim init DIR' "
                        "and pass it to the host (cloister run --platform DIR)");
}

static enum clst_status
svc_evidence(struct clst_host_enclave *e, const uint8_t *in, size_t n, struct clst_buf *out,
             struct clst_err *err)
{
    struct clst_sim_identity sid;
    if (e->opts.platform == NULL) {
        return no_platform(err);
    }
    if (n != CLST_SIM_REPORT_DATA_SIZE) {
        return clst_err_set(err, CLST_E_MALFORMED, "%s: report data must be %d bytes, not %zu",
                            SVC_EVIDENCE, CLST_SIM_REPORT_DATA_SIZE, n);
    }
    if (out->max < CLST_SIM_EVIDENCE_MAX_SIZE) {
        return clst_err_set(err, CLST_E_LIMIT, "%s: the reply needs room for %d bytes",
                            SVC_EVIDENCE, CLST_SIM_EVIDENCE_MAX_SIZE);
    }
    /* The identity is the one this host measured, never one the enclave claims. */
    memset(&sid, 0, sizeof(sid));
    memcpy(sid.mrenclave, e->id.mrenclave, sizeof(sid.mrenclave));
    memcpy(sid.mrsigner, e->id.mrsigner, sizeof(sid.mrsigner));
    sid.product_id = e->id.product_id;
    sid.svn = e->id.svn;
    sid.debug = e->id.debug;
    return clst_evidence_sim_report_create(e->opts.platform, &sid, in, out, err);
}

static enum clst_status
svc_sealkey(struct clst_host_enclave *e, const uint8_t *in, size_t n, struct clst_buf *out,
            bool *wipe, struct clst_err *err)
{
    struct svc_sealkey_req r;
    uint8_t key[SEAL_KEY_SIZE];
    if (e->opts.platform == NULL) {
        return no_platform(err);
    }
    enum clst_status st = svc_sealkey_decode(in, n, &r, err);
    if (st != CLST_OK) {
        return st;
    }
    st = seal_key_derive(clst_evidence_sim_platform_sealing_secret(e->opts.platform), &e->id,
                         r.policy, r.svn, r.key_id, key, err);
    if (st == CLST_OK) {
        *wipe = true;
        st = clst_buf_append(out, key, sizeof(key));
        if (st != CLST_OK) {
            clst_err_set(err, st, "%s: the reply needs %d bytes", SVC_SEALKEY, SEAL_KEY_SIZE);
        }
    }
    OPENSSL_cleanse(key, sizeof(key));
    return st;
}

enum clst_status
host_service_dispatch(struct clst_host_enclave *e, const char *name, const uint8_t *in,
                      size_t in_size, struct clst_buf *out, bool *wipe, struct clst_err *err)
{
    *wipe = false;
    if (strcmp(name, SVC_LOG) == 0) {
        return svc_log(e, in, in_size, err);
    }
    if (strcmp(name, SVC_TIME) == 0) {
        return svc_time(out, err);
    }
    if (strcmp(name, SVC_FILE_OPEN) == 0) {
        return svc_open(e, in, in_size, out, err);
    }
    if (strcmp(name, SVC_FILE_READ) == 0) {
        return svc_read(e, in, in_size, out, err);
    }
    if (strcmp(name, SVC_FILE_WRITE) == 0) {
        return svc_write(e, in, in_size, err);
    }
    if (strcmp(name, SVC_EVIDENCE) == 0) {
        return svc_evidence(e, in, in_size, out, err);
    }
    if (strcmp(name, SVC_SEALKEY) == 0) {
        return svc_sealkey(e, in, in_size, out, wipe, err);
    }
    for (size_t i = 0; i < e->svc_count; i++) {
        if (strcmp(e->svcs[i].name, name) == 0) {
            enum clst_status st = e->svcs[i].svc.fn(e->svcs[i].svc.ctx, in, in_size, out, err);
            *wipe = out->secret;
            return st;
        }
    }
    return clst_err_set(err, CLST_E_NOTFOUND, "the host has no service named '%s'", name);
}
