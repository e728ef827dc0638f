/*
 * Master-key providers: the interface the store wraps object keys through, and the file provider
 * (a 32-byte key file with 0600 permissions, AES-256-KWP). A PKCS#11 provider will implement the
 * same ops with the key inside the HSM (CKM_AES_KEY_WRAP_KWP), so the store never sees it.
 */
#define _POSIX_C_SOURCE 200809L /* O_CLOEXEC, O_NOFOLLOW, O_DIRECTORY, fchmod, PATH_MAX */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <cloister/crypto.h>
#include <cloister/vault_store.h>

#define MASTER_KEY_SIZE 32
#define ID_HASH_BYTES   8
static const char ID_LABEL[] = "cloister master key id v1";

struct clst_vault_masterkey {
    const struct clst_vault_masterkey_ops *ops;
    void *ctx;
    char id[CLST_VAULT_MKID_MAX + 1];
};

static bool
id_valid(const char *id)
{
    size_t n = 0;
    for (; id[n] != '\0'; n++) {
        if (n >= CLST_VAULT_MKID_MAX || id[n] < 0x21 || id[n] > 0x7e) {
            return false;
        }
    }
    return n > 0;
}

enum clst_status
clst_vault_masterkey_new(const struct clst_vault_masterkey_ops *ops, void *ctx, const char *id,
                         struct clst_vault_masterkey **out)
{
    if (ops == NULL || ops->wrap == NULL || ops->unwrap == NULL || id == NULL || out == NULL ||
        !id_valid(id)) {
        return CLST_E_INVAL;
    }
    struct clst_vault_masterkey *mk = calloc(1, sizeof(*mk));
    if (mk == NULL) {
        return CLST_E_NOMEM;
    }
    mk->ops = ops;
    mk->ctx = ctx;
    memcpy(mk->id, id, strlen(id) + 1);
    *out = mk;
    return CLST_OK;
}

void
clst_vault_masterkey_free(struct clst_vault_masterkey *mk)
{
    if (mk == NULL) {
        return;
    }
    if (mk->ops->free != NULL) {
        mk->ops->free(mk->ctx);
    }
    free(mk);
}

const char *
clst_vault_masterkey_id(const struct clst_vault_masterkey *mk)
{
    return mk->id;
}

enum clst_status
clst_vault_masterkey_wrap(struct clst_vault_masterkey *mk, const uint8_t *key, size_t key_size,
                          uint8_t *out, size_t out_cap, size_t *out_size, struct clst_err *err)
{
    if (mk == NULL || key == NULL || key_size == 0 || out == NULL || out_size == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "master key wrap: missing argument");
    }
    return mk->ops->wrap(mk->ctx, key, key_size, out, out_cap, out_size, err);
}

enum clst_status
clst_vault_masterkey_unwrap(struct clst_vault_masterkey *mk, const uint8_t *blob, size_t blob_size,
                            uint8_t *out, size_t out_cap, size_t *out_size, struct clst_err *err)
{
    if (mk == NULL || blob == NULL || out == NULL || out_size == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "master key unwrap: missing argument");
    }
    return mk->ops->unwrap(mk->ctx, blob, blob_size, out, out_cap, out_size, err);
}

/* ---- the file provider ---------------------------------------------------------------------- */

struct file_provider {
    struct clst_secret *key; /* MASTER_KEY_SIZE bytes */
};

static enum clst_status
file_wrap(void *ctx, const uint8_t *key, size_t key_size, uint8_t *out, size_t out_cap,
          size_t *out_size, struct clst_err *err)
{
    const struct file_provider *fp = ctx;
    enum clst_status rc =
        clst_aes_kwp_wrap(fp->key->ptr, fp->key->size, key, key_size, out, out_cap, out_size);
    if (rc != CLST_OK) {
        return clst_err_set(err, rc, "wrapping a key under the master key failed (%s)",
                            clst_status_str(rc));
    }
    return CLST_OK;
}

static enum clst_status
file_unwrap(void *ctx, const uint8_t *blob, size_t blob_size, uint8_t *out, size_t out_cap,
            size_t *out_size, struct clst_err *err)
{
    const struct file_provider *fp = ctx;
    enum clst_status rc =
        clst_aes_kwp_unwrap(fp->key->ptr, fp->key->size, blob, blob_size, out, out_cap, out_size);
    if (rc == CLST_E_MALFORMED || rc == CLST_E_VERIFY) {
        /* A blob of an impossible size cannot come from this key either. */
        return clst_err_set(err, CLST_E_VERIFY,
                            "the wrapped key does not unwrap under this master key (altered, "
                            "or wrapped by another master key)");
    }
    if (rc != CLST_OK) {
        return clst_err_set(err, rc, "unwrapping a key with the master key failed (%s)",
                            clst_status_str(rc));
    }
    return CLST_OK;
}

static void
file_free(void *ctx)
{
    struct file_provider *fp = ctx;
    if (fp != NULL) {
        clst_secret_free(fp->key);
        free(fp);
    }
}

static const struct clst_vault_masterkey_ops FILE_OPS = {
    .name = "file",
    .wrap = file_wrap,
    .unwrap = file_unwrap,
    .free = file_free,
};

/* Reads exactly `size` bytes, then checks that the file ends there. */
static enum clst_status
read_exact(int fd, uint8_t *dst, size_t size)
{
    size_t got = 0;
    while (got < size) {
        ssize_t n = read(fd, dst + got, size - got);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return CLST_E_IO;
        }
        if (n == 0) {
            return CLST_E_MALFORMED;
        }
        got += (size_t)n;
    }
    uint8_t extra;
    ssize_t n;
    do {
        n = read(fd, &extra, 1);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        return CLST_E_IO;
    }
    return n == 0 ? CLST_OK : CLST_E_MALFORMED;
}

enum clst_status
clst_vault_masterkey_file_load(const char *path, struct clst_vault_masterkey **out,
                               struct clst_err *err)
{
    enum clst_status rc = CLST_E_INTERNAL;
    int fd = -1;
    struct stat st;
    struct file_provider *fp = NULL;
    struct clst_vault_masterkey *mk = NULL;
    uint8_t digest[CLST_SHA256_SIZE];
    char id[CLST_VAULT_MKID_MAX + 1];

    if (path == NULL || out == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "master key file: missing argument");
    }
    /* Symbolic links are followed (container secret mounts use them); fstat judges the file
     * that was actually opened, so there is no window between check and use. */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        rc = clst_err_set(err, errno == ENOENT ? CLST_E_NOTFOUND : CLST_E_IO,
                          "cannot open master key file %s: %s", path, strerror(errno));
        goto out;
    }
    if (fstat(fd, &st) != 0) {
        rc = clst_err_set(err, CLST_E_IO, "cannot stat master key file %s: %s", path,
                          strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = clst_err_set(err, CLST_E_INVAL, "master key file %s is not a regular file", path);
        goto out;
    }
    if ((st.st_mode & 077) != 0) {
        rc = clst_err_set(err, CLST_E_DENIED,
                          "master key file %s can be accessed by group or others (mode %04o); "
                          "restrict it with `chmod 600 %s` and try again",
                          path, (unsigned)(st.st_mode & 07777), path);
        goto out;
    }
    if (st.st_uid != geteuid() && st.st_uid != 0) {
        rc = clst_err_set(err, CLST_E_DENIED,
                          "master key file %s belongs to uid %u, not to this user (uid %u) or "
                          "root; chown it to the user that runs the vault",
                          path, (unsigned)st.st_uid, (unsigned)geteuid());
        goto out;
    }
    if (st.st_size != MASTER_KEY_SIZE) {
        rc = clst_err_set(err, CLST_E_MALFORMED,
                          "master key file %s holds %lld bytes; it must hold exactly %d random "
                          "bytes (raw, not hex or base64)",
                          path, (long long)st.st_size, MASTER_KEY_SIZE);
        goto out;
    }
    fp = calloc(1, sizeof(*fp));
    if (fp == NULL) {
        rc = clst_err_set(err, CLST_E_NOMEM, "out of memory loading the master key");
        goto out;
    }
    if (clst_secret_new(MASTER_KEY_SIZE, &fp->key) != CLST_OK) {
        rc = clst_err_set(err, CLST_E_NOMEM, "out of memory loading the master key");
        goto out;
    }
    rc = read_exact(fd, fp->key->ptr, MASTER_KEY_SIZE);
    if (rc != CLST_OK) {
        rc = clst_err_set(err, rc,
                          "master key file %s could not be read as exactly %d bytes (did it "
                          "change while being read?)",
                          path, MASTER_KEY_SIZE);
        goto out;
    }
    rc = clst_hmac(CLST_HASH_SHA256, fp->key->ptr, fp->key->size, ID_LABEL, sizeof(ID_LABEL) - 1,
                   digest);
    if (rc != CLST_OK) {
        rc = clst_err_set(err, rc, "computing the master key id failed");
        goto out;
    }
    memcpy(id, "file:", 5);
    rc = clst_hex_to_str(digest, ID_HASH_BYTES, id + 5, sizeof(id) - 5);
    if (rc != CLST_OK) {
        rc = clst_err_set(err, rc, "formatting the master key id failed");
        goto out;
    }
    rc = clst_vault_masterkey_new(&FILE_OPS, fp, id, &mk);
    if (rc != CLST_OK) {
        rc = clst_err_set(err, rc, "out of memory loading the master key");
        goto out;
    }
    fp = NULL; /* owned by mk */
    *out = mk;
    rc = CLST_OK;
out:
    file_free(fp);
    if (fd >= 0) {
        close(fd);
    }
    clst_wipe(digest, sizeof(digest));
    return rc;
}

/* fsyncs the directory holding `path`, so the new file's entry survives a crash. */
static void
sync_parent_dir(const char *path)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    size_t n = slash == NULL ? 1 : (slash == path ? 1 : (size_t)(slash - path));
    if (n >= sizeof(dir)) {
        return;
    }
    if (slash == NULL) {
        dir[0] = '.';
    } else {
        memcpy(dir, path, n);
    }
    dir[n] = '\0';
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd); /* best effort: not every file system supports it */
        close(dfd);
    }
}

enum clst_status
clst_vault_masterkey_file_create(const char *path, struct clst_err *err)
{
    enum clst_status rc = CLST_E_INTERNAL;
    uint8_t key[MASTER_KEY_SIZE];
    int fd = -1;
    bool created = false;

    if (path == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "master key file: missing path");
    }
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        rc = clst_err_set(err, errno == EEXIST ? CLST_E_CONFLICT : CLST_E_IO,
                          "cannot create master key file %s: %s%s", path, strerror(errno),
                          errno == EEXIST ? " (refusing to overwrite an existing key)" : "");
        goto out;
    }
    created = true;
    if (fchmod(fd, 0600) != 0) {
        rc = clst_err_set(err, CLST_E_IO, "cannot set mode 0600 on %s: %s", path, strerror(errno));
        goto out;
    }
    rc = clst_random(key, sizeof(key));
    if (rc != CLST_OK) {
        rc = clst_err_set(err, rc, "no random bytes for the master key");
        goto out;
    }
    size_t done = 0;
    while (done < sizeof(key)) {
        ssize_t n = write(fd, key + done, sizeof(key) - done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            rc = clst_err_set(err, CLST_E_IO, "cannot write master key file %s: %s", path,
                              strerror(errno));
            goto out;
        }
        done += (size_t)n;
    }
    if (fsync(fd) != 0) {
        rc = clst_err_set(err, CLST_E_IO, "cannot fsync master key file %s: %s", path,
                          strerror(errno));
        goto out;
    }
    if (close(fd) != 0) {
        fd = -1;
        rc = clst_err_set(err, CLST_E_IO, "cannot close master key file %s: %s", path,
                          strerror(errno));
        goto out;
    }
    fd = -1;
    sync_parent_dir(path);
    rc = CLST_OK;
out:
    if (fd >= 0) {
        close(fd);
    }
    if (rc != CLST_OK && created) {
        (void)unlink(path);
    }
    clst_wipe(key, sizeof(key));
    return rc;
}
