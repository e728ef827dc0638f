/*
 * Enclave image files: read once into a sealed memory file (what gets measured is exactly what the
 * enclave process maps, and nobody can change it afterwards), and the public sign/measure calls.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "enclave/enclave_int.h"

#define FILE_MAX_SIZE ((size_t)CLST_HOST_IMAGE_MAX_SIZE + MANIFEST_MAX_SIZE + TRAILER_SIZE)

enum clst_status
image_mem_load(const char *path, struct image_mem *out, struct clst_err *err)
{
    int fd = -1, mfd = -1;
    enum clst_status rc = CLST_E_IO;
    struct stat st;
    uint8_t buf[65536];
    size_t total = 0;
    void *map = MAP_FAILED;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = clst_err_set(err, errno == ENOENT ? CLST_E_NOTFOUND : CLST_E_IO,
                          "cannot open the enclave image %s: %s", path, strerror(errno));
        goto out;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = clst_err_set(err, CLST_E_INVAL, "the enclave image %s is not a regular file", path);
        goto out;
    }
    if (st.st_size < 64 || (uint64_t)st.st_size > FILE_MAX_SIZE) {
        rc = clst_err_set(err, CLST_E_LIMIT, "the enclave image %s has %lld bytes (64..%zu)", path,
                          (long long)st.st_size, FILE_MAX_SIZE);
        goto out;
    }
    mfd = memfd_create("clst-enclave-image", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (mfd < 0) {
        rc = clst_err_set(err, CLST_E_IO, "memfd_create: %s", strerror(errno));
        goto out;
    }
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            rc = clst_err_set(err, CLST_E_IO, "reading %s: %s", path, strerror(errno));
            goto out;
        }
        if (n == 0) {
            break;
        }
        if (total + (size_t)n > (size_t)st.st_size) {
            rc = clst_err_set(err, CLST_E_IO, "%s grew while it was being read", path);
            goto out;
        }
        for (size_t off = 0; off < (size_t)n;) {
            ssize_t w = write(mfd, buf + off, (size_t)n - off);
            if (w < 0 && errno == EINTR) {
                continue;
            }
            if (w <= 0) {
                rc = clst_err_set(err, CLST_E_IO, "copying the image to memory: %s",
                                  strerror(errno));
                goto out;
            }
            off += (size_t)w;
        }
        total += (size_t)n;
    }
    if (total != (size_t)st.st_size) {
        rc = clst_err_set(err, CLST_E_IO, "%s changed size while it was being read", path);
        goto out;
    }
    /* From here on the bytes are immutable: no writes, no resizing, no unsealing. */
    if (fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0) {
        rc = clst_err_set(err, CLST_E_IO, "sealing the image memory: %s", strerror(errno));
        goto out;
    }
    /* Populated at once: verification reads every byte, and one call is cheaper than a fault
     * per page. */
    map = mmap(NULL, total, PROT_READ, MAP_PRIVATE | MAP_POPULATE, mfd, 0);
    if (map == MAP_FAILED) {
        rc = clst_err_set(err, CLST_E_NOMEM, "mapping the image: %s", strerror(errno));
        goto out;
    }
    out->fd = mfd;
    out->map = map;
    out->size = total;
    mfd = -1;
    rc = CLST_OK;
out:
    if (fd >= 0) {
        close(fd);
    }
    if (mfd >= 0) {
        close(mfd);
    }
    explicit_bzero(buf, sizeof(buf));
    return rc;
}

void
image_mem_cleanup(struct image_mem *m)
{
    if (m->map != NULL) {
        munmap((void *)(uintptr_t)m->map, m->size);
        m->map = NULL;
    }
    if (m->fd >= 0) {
        close(m->fd);
    }
    m->fd = -1;
    m->size = 0;
}

enum clst_status
clst_host_image_measure(const char *path, struct clst_enclave_identity *out, struct clst_err *err)
{
    struct image_mem m = {.fd = -1};
    if (path == NULL || out == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "clst_host_image_measure: NULL argument");
    }
    enum clst_status st = image_mem_load(path, &m, err);
    if (st == CLST_OK) {
        st = image_verify(m.map, m.size, out, err);
        if (st != CLST_OK) {
            clst_err_prefix(err, "%s", path);
        }
    }
    image_mem_cleanup(&m);
    return st;
}

/* Writes data to path atomically: a temporary file beside it, fsync, rename. */
static enum clst_status
write_atomic(const char *path, const uint8_t *data, size_t size, mode_t mode, struct clst_err *err)
{
    char tmp[PATH_MAX];
    int n = snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path);
    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        return clst_err_set(err, CLST_E_INVAL, "output path too long");
    }
    int fd = mkstemp(tmp);
    if (fd < 0) {
        return clst_err_set(err, CLST_E_IO, "cannot create a file beside %s: %s", path,
                            strerror(errno));
    }
    enum clst_status rc = CLST_E_IO;
    for (size_t off = 0; off < size;) {
        ssize_t w = write(fd, data + off, size - off);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            rc = clst_err_set(err, CLST_E_IO, "writing %s: %s", tmp, strerror(errno));
            goto fail;
        }
        off += (size_t)w;
    }
    if (fchmod(fd, mode) != 0 || fsync(fd) != 0) {
        rc = clst_err_set(err, CLST_E_IO, "writing %s: %s", tmp, strerror(errno));
        goto fail;
    }
    if (close(fd) != 0) {
        fd = -1;
        rc = clst_err_set(err, CLST_E_IO, "writing %s: %s", tmp, strerror(errno));
        goto fail;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        rc = clst_err_set(err, CLST_E_IO, "cannot replace %s: %s", path, strerror(errno));
        goto fail;
    }
    return CLST_OK;
fail:
    if (fd >= 0) {
        close(fd);
    }
    unlink(tmp);
    return rc;
}

enum clst_status
clst_host_image_sign(const char *in_path, const char *out_path, EVP_PKEY *key,
                     const struct clst_host_sign_params *params, struct clst_enclave_identity *out,
                     struct clst_err *err)
{
    struct image_mem m = {.fd = -1};
    struct clst_buf signed_file = {0};
    struct clst_enclave_identity id;
    enum clst_status rc = CLST_E_INVAL;
    struct stat st;
    size_t elf_size, msize;
    const uint8_t *mbytes;

    if (in_path == NULL || out_path == NULL || key == NULL || params == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "clst_host_image_sign: NULL argument");
    }
    clst_buf_init(&signed_file, FILE_MAX_SIZE);
    rc = image_mem_load(in_path, &m, err);
    if (rc != CLST_OK) {
        goto out;
    }
    /* Re-signing replaces the manifest; a damaged one is refused rather than guessed around. */
    elf_size = m.size;
    rc = image_split(m.map, m.size, &elf_size, &mbytes, &msize, err);
    if (rc == CLST_OK) {
        struct manifest *old = malloc(sizeof(*old));
        rc = old == NULL ? clst_err_set(err, CLST_E_NOMEM, "out of memory")
                         : manifest_parse(mbytes, msize, old, err);
        free(old);
    }
    if (rc == CLST_E_NOTFOUND) {
        elf_size = m.size;
    } else if (rc != CLST_OK) {
        clst_err_prefix(err, "%s carries a damaged manifest; sign the original shared object",
                        in_path);
        goto out;
    }
    rc = image_sign_bytes(m.map, elf_size, key, params, &signed_file, &id, err);
    if (rc != CLST_OK) {
        clst_err_prefix(err, "%s", in_path);
        goto out;
    }
    mode_t mode = 0644;
    if (stat(in_path, &st) == 0) {
        mode = st.st_mode & 0755;
    }
    rc = write_atomic(out_path, signed_file.data, signed_file.size, mode, err);
    if (rc != CLST_OK) {
        goto out;
    }
    if (out != NULL) {
        *out = id;
    }
    rc = CLST_OK;
out:
    clst_buf_cleanup(&signed_file);
    image_mem_cleanup(&m);
    return rc;
}
