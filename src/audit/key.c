/*
 * The audit key: an ECDSA P-256 (ES256) or P-384 (ES384) key that signs checkpoints. It lives in
 * the data directory (audit.key, 0600); its public key (audit.pub) is what `cloister audit verify`
 * needs, and can be copied to wherever the log is checked. A missing key is made on first open.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit/audit_int.h"

enum clst_status
audit_key_describe(EVP_PKEY *pkey, struct audit_key *out, struct clst_err *err)
{
    struct clst_buf der;
    enum clst_status rc = CLST_E_INVAL;
    enum clst_key_kind kind = clst_pkey_kind(pkey);

    clst_buf_init(&der, 4096);
    memset(out, 0, sizeof(*out));
    if (kind == CLST_KEY_EC_P256) {
        out->hash = CLST_HASH_SHA256;
        out->alg = "ES256";
        out->sig_size = 64;
    } else if (kind == CLST_KEY_EC_P384) {
        out->hash = CLST_HASH_SHA384;
        out->alg = "ES384";
        out->sig_size = 96;
    } else {
        rc = clst_err_set(err, CLST_E_INVAL, "the audit key must be an ECDSA P-256 or P-384 key");
        goto out;
    }
    if (clst_pkey_to_der(pkey, false, &der) != CLST_OK ||
        audit_sha256_hex(der.data, der.size, out->kid) != CLST_OK) {
        rc = clst_err_set(err, CLST_E_CRYPTO, "cannot encode the audit public key");
        goto out;
    }
    out->pkey = pkey;
    rc = CLST_OK;
out:
    clst_buf_cleanup(&der);
    return rc;
}

static enum clst_status
write_new_file(const char *path, mode_t mode, const struct clst_buf *data, struct clst_err *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    size_t off = 0;
    if (fd < 0) {
        return clst_err_set(err, CLST_E_IO, "cannot create %s: %s", path, strerror(errno));
    }
    while (off < data->size) {
        ssize_t n = write(fd, data->data + off, data->size - off);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            int e = errno;
            (void)close(fd);
            (void)unlink(path);
            return clst_err_set(err, CLST_E_IO, "cannot write %s: %s", path, strerror(e));
        }
        off += (size_t)n;
    }
    if (fsync(fd) != 0) {
        int e = errno;
        (void)close(fd);
        (void)unlink(path);
        return clst_err_set(err, CLST_E_IO, "cannot sync %s: %s", path, strerror(e));
    }
    (void)close(fd);
    return CLST_OK;
}

enum clst_status
audit_key_load_or_make(const char *key_path, const char *pub_path, struct audit_key *out,
                       struct clst_err *err)
{
    EVP_PKEY *pkey = NULL;
    struct clst_buf pem, pub;
    struct stat sb;
    enum clst_status rc = CLST_E_IO;

    clst_buf_init_secret(&pem, 64 * 1024);
    clst_buf_init(&pub, 64 * 1024);
    if (stat(key_path, &sb) == 0) {
        if ((sb.st_mode & 0077) != 0) {
            rc = clst_err_set(err, CLST_E_DENIED,
                              "the audit key %s is readable by others (mode %04o): chmod 600 it",
                              key_path, (unsigned)(sb.st_mode & 07777));
            goto out;
        }
        if ((rc = clst_pkey_load_pem_file(key_path, &pkey, err)) != CLST_OK) {
            clst_err_prefix(err, "audit key %s", key_path);
            goto out;
        }
        if (!clst_pkey_has_private(pkey)) {
            rc = clst_err_set(err, CLST_E_INVAL, "the audit key %s holds no private key",
                              key_path);
            goto out;
        }
    } else if (errno == ENOENT) {
        if (clst_ec_generate(CLST_CURVE_P256, &pkey) != CLST_OK ||
            clst_pkey_to_pem(pkey, true, &pem) != CLST_OK) {
            rc = clst_err_set(err, CLST_E_CRYPTO, "cannot make an audit key");
            goto out;
        }
        if ((rc = write_new_file(key_path, 0600, &pem, err)) != CLST_OK) {
            goto out;
        }
        if (pub_path != NULL) {
            (void)unlink(pub_path); /* a stale public key of another key would mislead */
            if (clst_pkey_to_pem(pkey, false, &pub) != CLST_OK) {
                rc = clst_err_set(err, CLST_E_CRYPTO, "cannot encode the audit public key");
                goto out;
            }
            if ((rc = write_new_file(pub_path, 0644, &pub, err)) != CLST_OK) {
                goto out;
            }
        }
    } else {
        rc = clst_err_set(err, CLST_E_IO, "cannot read the audit key %s: %s", key_path,
                          strerror(errno));
        goto out;
    }
    if ((rc = audit_key_describe(pkey, out, err)) != CLST_OK) {
        goto out;
    }
    pkey = NULL;
    rc = CLST_OK;
out:
    EVP_PKEY_free(pkey);
    clst_buf_cleanup(&pem);
    clst_buf_cleanup(&pub);
    return rc;
}

enum clst_status
clst_audit_pub_load(const char *path, EVP_PKEY **out, struct clst_err *err)
{
    EVP_PKEY *pkey = NULL;
    struct audit_key k;
    enum clst_status rc = clst_pkey_load_pem_file(path, &pkey, err);
    if (rc != CLST_OK) {
        return clst_err_prefix(err, "audit public key %s", path);
    }
    if ((rc = audit_key_describe(pkey, &k, err)) != CLST_OK) {
        EVP_PKEY_free(pkey);
        return clst_err_prefix(err, "%s", path);
    }
    *out = pkey;
    return CLST_OK;
}
