/*
 * Evidence collection through the Linux configfs-tsm report interface
 * (Documentation/ABI/testing/configfs-tsm-report): SEV-SNP guests (provider "sev_guest": outblob =
 * the attestation report, auxblob = the certificate table) and TDX guests ("tdx_guest": outblob =
 * the quote). The kernel generates outblob when it is read after inblob was written; `generation`
 * counts the writes to the entry, which is how a concurrent writer is detected.
 *
 * Everything read here comes from the kernel (or from whatever the directory really is): sizes
 * are capped before anything is kept, the generation is parsed strictly, and the evidence itself
 * is verified elsewhere (clst_evidence_verify), never trusted because of where it came from.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cloister/crypto.h>
#include <cloister/evidence.h>

#define ATTR_TEXT_MAX 64 /* generation, provider */
#define NAME_MAX_SIZE 64

void
clst_tsm_report_cleanup(struct clst_tsm_report *r)
{
    if (r == NULL) {
        return;
    }
    clst_buf_cleanup(&r->outblob);
    clst_buf_cleanup(&r->auxblob);
    memset(r, 0, sizeof(*r));
}

static enum clst_status
attr_path(const char *entry, const char *attr, char *out, size_t size, struct clst_err *err)
{
    int n = snprintf(out, size, "%s/%s", entry, attr);
    if (n < 0 || (size_t)n >= size) {
        return clst_err_set(err, CLST_E_INVAL, "the configfs-tsm path is too long");
    }
    return CLST_OK;
}

/* Reads an attribute whole: at most `max` bytes (one more is CLST_E_LIMIT). `optional`: a
 * missing attribute reads as empty. */
static enum clst_status
read_attr(const char *entry, const char *attr, size_t max, bool optional, struct clst_buf *out,
          struct clst_err *err)
{
    char path[4200];
    enum clst_status rc = attr_path(entry, attr, path, sizeof(path), err);
    if (rc != CLST_OK) {
        return rc;
    }
    clst_buf_reset(out);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        if (errno == ENOENT && optional) {
            return CLST_OK;
        }
        return clst_err_set(err, errno == ENOENT ? CLST_E_NOTFOUND : CLST_E_IO,
                            "cannot read %s: %s%s", path, strerror(errno),
                            errno == ENOENT ? " (is this a configfs-tsm report entry? the TEE "
                                              "guest driver must be loaded)"
                                            : "");
    }
    uint8_t chunk[4096];
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            rc = clst_err_set(err, CLST_E_IO, "cannot read %s: %s", path, strerror(errno));
            goto out;
        }
        if (n == 0) {
            break;
        }
        if ((size_t)n > max - out->size) {
            rc = clst_err_set(err, CLST_E_LIMIT, "%s is larger than %zu bytes", path, max);
            goto out;
        }
        if ((rc = clst_buf_append(out, chunk, (size_t)n)) != CLST_OK) {
            rc = clst_err_set(err, rc, "out of memory reading %s", path);
            goto out;
        }
    }
    rc = CLST_OK;
out:
    close(fd);
    return rc;
}

/* Writes an attribute in one write(2) (configfs takes a store as one buffer). */
static enum clst_status
write_attr(const char *entry, const char *attr, const void *data, size_t size, struct clst_err *err)
{
    char path[4200];
    enum clst_status rc = attr_path(entry, attr, path, sizeof(path), err);
    if (rc != CLST_OK) {
        return rc;
    }
    int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOCTTY); /* never O_CREAT: the kernel makes it */
    if (fd < 0) {
        return clst_err_set(err, errno == ENOENT ? CLST_E_NOTFOUND : CLST_E_IO,
                            "cannot write %s: %s%s", path, strerror(errno),
                            errno == ENOENT ? " (is this a configfs-tsm report entry? the TEE "
                                              "guest driver must be loaded)"
                                            : "");
    }
    ssize_t n;
    do {
        n = write(fd, data, size);
    } while (n < 0 && errno == EINTR);
    int saved = errno;
    if (close(fd) != 0 && n >= 0) {
        n = -1;
        saved = errno;
    }
    if (n < 0 || (size_t)n != size) {
        return clst_err_set(err, CLST_E_IO, "cannot write %s: %s", path,
                            n < 0 ? strerror(saved) : "short write");
    }
    return CLST_OK;
}

/* `generation`: decimal digits and an optional newline. */
static enum clst_status
read_generation(const char *entry, struct clst_buf *tmp, uint64_t *out, struct clst_err *err)
{
    enum clst_status rc = read_attr(entry, "generation", ATTR_TEXT_MAX, false, tmp, err);
    if (rc != CLST_OK) {
        return rc;
    }
    size_t n = tmp->size;
    if (n > 0 && tmp->data[n - 1] == '\n') {
        n--;
    }
    uint64_t v = 0;
    if (n == 0 || n > 20) {
        return clst_err_set(err, CLST_E_MALFORMED, "%s/generation is not a decimal number", entry);
    }
    for (size_t i = 0; i < n; i++) {
        uint8_t c = tmp->data[i];
        if (c < '0' || c > '9' || v > (UINT64_MAX - (uint64_t)(c - '0')) / 10) {
            return clst_err_set(err, CLST_E_MALFORMED, "%s/generation is not a decimal number",
                                entry);
        }
        v = v * 10 + (uint64_t)(c - '0');
    }
    *out = v;
    return CLST_OK;
}

static bool
name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > NAME_MAX_SIZE || strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.')) {
            return false;
        }
    }
    return true;
}

enum clst_status
clst_evidence_tsm_get(const struct clst_tsm_request *req, struct clst_tsm_report *out,
                      struct clst_err *err)
{
    enum clst_status rc = CLST_E_INVAL;
    struct clst_tsm_report r;
    struct clst_buf tmp;
    char name[NAME_MAX_SIZE + 1];
    char entry[4096];
    bool created = false;
    memset(&r, 0, sizeof(r));
    clst_buf_init(&r.outblob, CLST_TSM_OUTBLOB_MAX);
    clst_buf_init(&r.auxblob, CLST_TSM_AUXBLOB_MAX);
    clst_buf_init(&tmp, ATTR_TEXT_MAX);

    if (req == NULL || out == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "clst_evidence_tsm_get: NULL argument");
    }
    if (req->privlevel < -1 || req->privlevel > CLST_TSM_PRIVLEVEL_MAX) {
        return clst_err_set(err, CLST_E_INVAL, "privlevel must be 0 to %d", CLST_TSM_PRIVLEVEL_MAX);
    }
    const char *dir = req->dir ? req->dir : CLST_TSM_DEFAULT_DIR;
    if (req->name != NULL) {
        if (!name_ok(req->name)) {
            return clst_err_set(err, CLST_E_INVAL,
                                "a report entry name is 1 to %d characters of [A-Za-z0-9._-]",
                                NAME_MAX_SIZE);
        }
        snprintf(name, sizeof(name), "%s", req->name);
    } else {
        uint8_t rnd[8];
        char hex[17];
        if (clst_random(rnd, sizeof(rnd)) != CLST_OK ||
            clst_hex_to_str(rnd, sizeof(rnd), hex, sizeof(hex)) != CLST_OK) {
            return clst_err_set(err, CLST_E_INTERNAL, "cannot make a report entry name");
        }
        snprintf(name, sizeof(name), "cloister-%ld-%s", (long)getpid(), hex);
    }
    int n = snprintf(entry, sizeof(entry), "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= sizeof(entry)) {
        return clst_err_set(err, CLST_E_INVAL, "the configfs-tsm directory path is too long");
    }
    if (mkdir(entry, 0700) == 0) {
        created = true;
    } else if (!(errno == EEXIST && req->name != NULL)) {
        return clst_err_set(err, errno == ENOENT ? CLST_E_NOTFOUND : CLST_E_IO,
                            "cannot create the report entry %s: %s%s", entry, strerror(errno),
                            errno == ENOENT ? " (configfs-tsm needs Linux 6.7+, configfs "
                                              "mounted on /sys/kernel/config and a TEE guest)"
                                            : "");
    }

    /* The provider first: writing inblob of an entry for the wrong TEE is pointless. */
    if ((rc = read_attr(entry, "provider", ATTR_TEXT_MAX, false, &tmp, err)) != CLST_OK) {
        goto out;
    }
    size_t plen = tmp.size;
    while (plen > 0 && (tmp.data[plen - 1] == '\n' || tmp.data[plen - 1] == '\0')) {
        plen--;
    }
    if (plen >= sizeof(r.provider)) {
        rc = clst_err_set(err, CLST_E_MALFORMED, "%s/provider is too long", entry);
        goto out;
    }
    memcpy(r.provider, tmp.data, plen);
    r.provider[plen] = '\0';
    if (req->provider != NULL && strcmp(r.provider, req->provider) != 0) {
        rc = clst_err_set(err, CLST_E_VERIFY,
                          "the configfs-tsm provider is '%.40s', not '%s' (this guest is another "
                          "kind of TEE)",
                          r.provider, req->provider);
        goto out;
    }

    uint64_t before, after;
    uint64_t writes = 0;
    if ((rc = read_generation(entry, &tmp, &before, err)) != CLST_OK) {
        goto out;
    }
    if (req->privlevel >= 0) {
        /* One digit (0..CLST_TSM_PRIVLEVEL_MAX, checked above) and a newline. */
        const char text[2] = {(char)('0' + req->privlevel), '\n'};
        if ((rc = write_attr(entry, "privlevel", text, sizeof(text), err)) != CLST_OK) {
            goto out;
        }
        writes++;
    }
    if ((rc = write_attr(entry, "inblob", req->inblob, CLST_TSM_INBLOB_SIZE, err)) != CLST_OK) {
        goto out;
    }
    writes++;
    if ((rc = read_attr(entry, "outblob", CLST_TSM_OUTBLOB_MAX, false, &r.outblob, err)) !=
        CLST_OK) {
        goto out;
    }
    if (r.outblob.size == 0) {
        rc = clst_err_set(err, CLST_E_IO, "%s/outblob is empty: the TEE produced no report", entry);
        goto out;
    }
    if (req->want_auxblob && (rc = read_attr(entry, "auxblob", CLST_TSM_AUXBLOB_MAX, true,
                                             &r.auxblob, err)) != CLST_OK) {
        goto out;
    }
    if ((rc = read_generation(entry, &tmp, &after, err)) != CLST_OK) {
        goto out;
    }
    if (after != before + writes) {
        rc = clst_err_set(err, CLST_E_CONFLICT,
                          "another process wrote to the report entry %s while this report was "
                          "made (generation %llu before, %llu after, expected %llu): the report "
                          "may not carry our report data; try again",
                          entry, (unsigned long long)before, (unsigned long long)after,
                          (unsigned long long)(before + writes));
        goto out;
    }
    r.generation = after;
    *out = r;
    memset(&r, 0, sizeof(r));
    rc = CLST_OK;
out:
    if (created && rmdir(entry) != 0 && rc == CLST_OK) {
        /* The report is good; a left-over entry is only untidy. */
        clst_log(CLST_LOG_WARN, "could not remove the report entry %s: %s", entry, strerror(errno));
    }
    clst_tsm_report_cleanup(&r);
    clst_buf_cleanup(&tmp);
    return rc;
}
