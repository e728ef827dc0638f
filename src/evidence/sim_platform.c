/*
 * The sim platform: a directory holding a sim root CA, the platform's report-signing key and
 * certificate, and a sealing secret (see evidence.h for the files). create() makes one, load()
 * reads one back (refusing permissions that let other users read or swap the keys), and
 * report_create() produces signed sim evidence with it.
 *
 * Trust boundary: the platform directory is as trusted as the account that owns it. The sim TEE
 * protects against other unprivileged users, not against root or the owner of this directory.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "evidence/evidence_int.h"

struct clst_sim_platform {
    X509 *root;
    X509 *cert;
    EVP_PKEY *key;
    uint8_t cert_der[CLST_SIM_CERT_MAX_SIZE];
    size_t cert_size;
    uint8_t platform_id[CLST_SIM_PLATFORM_ID_SIZE];
    struct clst_secret *sealing;
};

/* A PEM file of one key or certificate is a few KiB; anything larger is not ours. */
#define PEM_FILE_MAX (64 * 1024)
/* Certificates are valid from slightly before creation, for clocks that run a little behind. */
#define CLOCK_SKEW 300

static const char *const private_files[] = {
    CLST_SIM_ROOT_KEY_FILE,
    CLST_SIM_PLATFORM_KEY_FILE,
    CLST_SIM_SEALING_FILE,
};
static const char *const all_files[] = {
    CLST_SIM_ROOT_FILE,         CLST_SIM_ROOT_KEY_FILE, CLST_SIM_PLATFORM_FILE,
    CLST_SIM_PLATFORM_KEY_FILE, CLST_SIM_SEALING_FILE,
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* ---- certificates --------------------------------------------------------------------------- */

static enum clst_status
add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    if (ext == NULL) {
        return CLST_E_CRYPTO;
    }
    int ok = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok == 1 ? CLST_OK : CLST_E_CRYPTO;
}

static enum clst_status
set_name(X509_NAME *name, const char *common_name, const uint8_t *platform_id)
{
    char id_hex[2 * CLST_SIM_PLATFORM_ID_SIZE + 1];
    if (X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                                   (const unsigned char *)"Cloister sim (development only)", -1, -1,
                                   0) != 1 ||
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)common_name,
                                   -1, -1, 0) != 1) {
        return CLST_E_CRYPTO;
    }
    if (platform_id != NULL) {
        if (clst_hex_to_str(platform_id, CLST_SIM_PLATFORM_ID_SIZE, id_hex, sizeof(id_hex)) !=
                CLST_OK ||
            X509_NAME_add_entry_by_NID(name, NID_serialNumber, MBSTRING_ASC,
                                       (const unsigned char *)id_hex, -1, -1, 0) != 1) {
            return CLST_E_CRYPTO;
        }
    }
    return CLST_OK;
}

enum clst_status
evidence_sim_cert_issue(EVP_PKEY *issuer_key, X509 *issuer_cert, EVP_PKEY *subject_key,
                        const char *common_name, const uint8_t *platform_id, bool ca,
                        int64_t not_before, int64_t not_after, X509 **out, struct clst_err *err)
{
    enum clst_status rc = CLST_E_CRYPTO;
    X509 *x = NULL;
    X509_NAME *name = NULL;
    BIGNUM *bn = NULL;
    uint8_t serial[16];
    X509V3_CTX ctx;

    if (issuer_key == NULL || subject_key == NULL || common_name == NULL || out == NULL ||
        not_after <= not_before) {
        rc = clst_err_set(err, CLST_E_INVAL, "certificate: missing key, name or validity");
        goto out;
    }
    x = X509_new();
    name = X509_NAME_new();
    if (x == NULL || name == NULL) {
        rc = clst_err_set(err, CLST_E_NOMEM, "out of memory");
        goto out;
    }
    /* A positive 128-bit random serial (RFC 5280: at most 20 octets, non-negative). */
    rc = clst_random(serial, sizeof(serial));
    if (rc != CLST_OK) {
        rc = clst_err_set(err, rc, "certificate: no random serial number");
        goto out;
    }
    serial[0] = (uint8_t)((serial[0] & 0x7f) | 0x40);
    bn = BN_bin2bn(serial, (int)sizeof(serial), NULL);
    rc = CLST_E_CRYPTO;
    if (bn == NULL || X509_set_version(x, X509_VERSION_3) != 1 ||
        BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) == NULL ||
        set_name(name, common_name, platform_id) != CLST_OK ||
        X509_set_subject_name(x, name) != 1 ||
        X509_set_issuer_name(x, issuer_cert != NULL ? X509_get_subject_name(issuer_cert) : name) !=
            1 ||
        ASN1_TIME_set(X509_getm_notBefore(x), (time_t)not_before) == NULL ||
        ASN1_TIME_set(X509_getm_notAfter(x), (time_t)not_after) == NULL ||
        X509_set_pubkey(x, subject_key) != 1) {
        rc = clst_err_set(err, CLST_E_CRYPTO, "certificate: cannot fill in the fields");
        goto out;
    }
    X509V3_set_ctx(&ctx, issuer_cert != NULL ? issuer_cert : x, x, NULL, NULL, 0);
    if (add_ext(x, &ctx, NID_basic_constraints, ca ? "critical,CA:TRUE" : "critical,CA:FALSE") !=
            CLST_OK ||
        add_ext(x, &ctx, NID_key_usage,
                ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature") != CLST_OK ||
        add_ext(x, &ctx, NID_subject_key_identifier, "hash") != CLST_OK ||
        add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always") != CLST_OK) {
        rc = clst_err_set(err, CLST_E_CRYPTO, "certificate: cannot add the extensions");
        goto out;
    }
    /* X509_sign returns the signature's size, so success is > 0 here, not == 1. */
    if (X509_sign(x, issuer_key, clst_hash_md(CLST_HASH_SHA384)) <= 0) {
        rc = clst_err_set(err, CLST_E_CRYPTO, "certificate: signing failed");
        goto out;
    }
    *out = x;
    x = NULL;
    rc = CLST_OK;
out:
    BN_free(bn);
    X509_NAME_free(name);
    X509_free(x);
    return rc;
}

enum clst_status
evidence_sim_cert_platform_id(X509 *cert, uint8_t out[static CLST_SIM_PLATFORM_ID_SIZE],
                              struct clst_err *err)
{
    X509_NAME *name = X509_get_subject_name(cert);
    int idx = name != NULL ? X509_NAME_get_index_by_NID(name, NID_serialNumber, -1) : -1;
    if (idx < 0) {
        return clst_err_set(err, CLST_E_VERIFY,
                            "sim platform certificate has no platform id (subject serialNumber)");
    }
    if (X509_NAME_get_index_by_NID(name, NID_serialNumber, idx) >= 0) {
        return clst_err_set(err, CLST_E_VERIFY,
                            "sim platform certificate names more than one platform id");
    }
    const ASN1_STRING *s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
    const unsigned char *text = s != NULL ? ASN1_STRING_get0_data(s) : NULL;
    bool canonical = text != NULL && ASN1_STRING_length(s) == 2 * CLST_SIM_PLATFORM_ID_SIZE;
    /* The one spelling create() writes: lower-case hex digits only. */
    for (int i = 0; canonical && i < 2 * CLST_SIM_PLATFORM_ID_SIZE; i++) {
        canonical = (text[i] >= '0' && text[i] <= '9') || (text[i] >= 'a' && text[i] <= 'f');
    }
    if (!canonical || clst_hex_decode_fixed((const char *)text, 2 * CLST_SIM_PLATFORM_ID_SIZE, out,
                                            CLST_SIM_PLATFORM_ID_SIZE) != CLST_OK) {
        return clst_err_set(err, CLST_E_VERIFY,
                            "sim platform certificate's platform id is not %d lower-case hex "
                            "characters",
                            2 * CLST_SIM_PLATFORM_ID_SIZE);
    }
    return CLST_OK;
}

/* ---- files ---------------------------------------------------------------------------------- */

/* Opens the platform directory and checks that it is ours and closed to everyone else. */
static enum clst_status
open_dir(const char *dir, int *out_fd, struct clst_err *err)
{
    struct stat st;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        return clst_err_set(err, e == ENOENT ? CLST_E_NOTFOUND : CLST_E_IO,
                            "cannot open the sim platform directory %s: %s", dir, strerror(e));
    }
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return clst_err_set(err, CLST_E_IO, "cannot stat %s: %s", dir, strerror(e));
    }
    if (st.st_uid != geteuid()) {
        close(fd);
        return clst_err_set(err, CLST_E_DENIED,
                            "%s belongs to another user (uid %u); a sim platform must be in a "
                            "directory of your own",
                            dir, (unsigned)st.st_uid);
    }
    if ((st.st_mode & 077) != 0) {
        close(fd);
        return clst_err_set(err, CLST_E_DENIED,
                            "%s is open to other users (mode %04o); use a new directory or run "
                            "'chmod 700 %s'",
                            dir, (unsigned)(st.st_mode & 07777), dir);
    }
    *out_fd = fd;
    return CLST_OK;
}

/* Refuses a private file that is not a regular file of ours with mode 0600 (or narrower). */
static enum clst_status
check_private(const struct stat *st, const char *dir, const char *name, struct clst_err *err)
{
    if (!S_ISREG(st->st_mode)) {
        return clst_err_set(err, CLST_E_DENIED, "%s/%s is not a regular file", dir, name);
    }
    if (st->st_uid != geteuid()) {
        return clst_err_set(err, CLST_E_DENIED, "%s/%s belongs to another user (uid %u)", dir, name,
                            (unsigned)st->st_uid);
    }
    if ((st->st_mode & 077) != 0) {
        return clst_err_set(err, CLST_E_DENIED,
                            "%s/%s is open to other users (mode %04o); run 'chmod 600 %s/%s'", dir,
                            name, (unsigned)(st->st_mode & 07777), dir, name);
    }
    return CLST_OK;
}

/* Reads dir/name (no symbolic links, at most `out->max` bytes) into out. */
static enum clst_status
read_at(int dfd, const char *dir, const char *name, bool private, struct clst_buf *out,
        struct clst_err *err)
{
    enum clst_status rc = CLST_E_IO;
    struct stat st;
    int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT) {
            return clst_err_set(err, CLST_E_NOTFOUND,
                                "%s/%s is missing; is %s a sim platform ('cloister sim init')?",
                                dir, name, dir);
        }
        return clst_err_set(err, e == ELOOP ? CLST_E_DENIED : CLST_E_IO, "cannot open %s/%s: %s",
                            dir, name, e == ELOOP ? "it is a symbolic link" : strerror(e));
    }
    if (fstat(fd, &st) != 0) {
        rc = clst_err_set(err, CLST_E_IO, "cannot stat %s/%s: %s", dir, name, strerror(errno));
        goto out;
    }
    if (private) {
        rc = check_private(&st, dir, name, err);
        if (rc != CLST_OK) {
            goto out;
        }
    } else if (!S_ISREG(st.st_mode)) {
        rc = clst_err_set(err, CLST_E_DENIED, "%s/%s is not a regular file", dir, name);
        goto out;
    }
    if (st.st_size < 0 || (uint64_t)st.st_size > out->max) {
        rc = clst_err_set(err, CLST_E_LIMIT, "%s/%s is larger than %zu bytes", dir, name, out->max);
        goto out;
    }
    for (;;) {
        uint8_t chunk[4096];
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            rc = clst_err_set(err, CLST_E_IO, "cannot read %s/%s: %s", dir, name, strerror(errno));
            clst_wipe(chunk, sizeof(chunk));
            goto out;
        }
        if (n == 0) {
            break;
        }
        rc = clst_buf_append(out, chunk, (size_t)n);
        clst_wipe(chunk, sizeof(chunk));
        if (rc != CLST_OK) {
            rc = clst_err_set(err, rc, "%s/%s is larger than %zu bytes", dir, name, out->max);
            goto out;
        }
    }
    rc = CLST_OK;
out:
    close(fd);
    return rc;
}

/* Writes dir/name atomically: a temporary file in the same directory, fsync, rename. */
static enum clst_status
write_at(int dfd, const char *dir, const char *name, const void *data, size_t size, mode_t mode,
         struct clst_err *err)
{
    enum clst_status rc = CLST_E_IO;
    uint8_t rnd[8];
    char rnd_hex[2 * sizeof(rnd) + 1];
    char tmp[128];
    int fd = -1;
    bool created = false;

    rc = clst_random(rnd, sizeof(rnd));
    if (rc != CLST_OK || clst_hex_to_str(rnd, sizeof(rnd), rnd_hex, sizeof(rnd_hex)) != CLST_OK) {
        rc = clst_err_set(err, CLST_E_CRYPTO, "no random bytes for a temporary file name");
        goto out;
    }
    int n = snprintf(tmp, sizeof(tmp), ".%s.%s.tmp", name, rnd_hex);
    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        rc = clst_err_set(err, CLST_E_INTERNAL, "temporary file name too long");
        goto out;
    }
    /* Created 0600 so that a secret is never readable by others, even for a moment. */
    fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = clst_err_set(err, CLST_E_IO, "cannot create %s/%s: %s", dir, tmp, strerror(errno));
        goto out;
    }
    created = true;
    const uint8_t *p = data;
    size_t left = size;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            rc = clst_err_set(err, CLST_E_IO, "cannot write %s/%s: %s", dir, name,
                              w < 0 ? strerror(errno) : "no progress");
            goto out;
        }
        p += w;
        left -= (size_t)w;
    }
    if (fchmod(fd, mode) != 0 || fsync(fd) != 0) {
        rc = clst_err_set(err, CLST_E_IO, "cannot sync %s/%s: %s", dir, name, strerror(errno));
        goto out;
    }
    int cr = close(fd);
    fd = -1;
    if (cr != 0) {
        rc = clst_err_set(err, CLST_E_IO, "cannot close %s/%s: %s", dir, name, strerror(errno));
        goto out;
    }
    if (renameat(dfd, tmp, dfd, name) != 0) {
        rc = clst_err_set(err, CLST_E_IO, "cannot rename %s/%s to %s: %s", dir, tmp, name,
                          strerror(errno));
        goto out;
    }
    created = false;
    rc = CLST_OK;
out:
    if (fd >= 0) {
        close(fd);
    }
    if (created) {
        unlinkat(dfd, tmp, 0);
    }
    return rc;
}

static enum clst_status
write_cert(int dfd, const char *dir, const char *name, X509 *cert, struct clst_err *err)
{
    enum clst_status rc = CLST_E_CRYPTO;
    BIO *bio = BIO_new(BIO_s_mem());
    char *pem = NULL;
    if (bio == NULL || PEM_write_bio_X509(bio, cert) != 1) {
        rc = clst_err_set(err, CLST_E_CRYPTO, "cannot encode %s", name);
        goto out;
    }
    long len = BIO_get_mem_data(bio, &pem);
    if (len <= 0 || pem == NULL) {
        rc = clst_err_set(err, CLST_E_CRYPTO, "cannot encode %s", name);
        goto out;
    }
    rc = write_at(dfd, dir, name, pem, (size_t)len, 0644, err);
out:
    BIO_free(bio);
    return rc;
}

static enum clst_status
write_key(int dfd, const char *dir, const char *name, const EVP_PKEY *key, struct clst_err *err)
{
    struct clst_buf pem;
    clst_buf_init_secret(&pem, PEM_FILE_MAX);
    enum clst_status rc = clst_pkey_to_pem(key, true, &pem);
    if (rc != CLST_OK) {
        rc = clst_err_set(err, rc, "cannot encode %s", name);
        goto out;
    }
    rc = write_at(dfd, dir, name, pem.data, pem.size, 0600, err);
out:
    clst_buf_cleanup(&pem);
    return rc;
}

/* ---- create --------------------------------------------------------------------------------- */

enum clst_status
clst_evidence_sim_platform_create(const char *dir, int64_t now, bool force, struct clst_err *err)
{
    enum clst_status rc = CLST_E_INTERNAL;
    int dfd = -1;
    EVP_PKEY *root_key = NULL;
    EVP_PKEY *key = NULL;
    X509 *root = NULL;
    X509 *cert = NULL;
    uint8_t platform_id[CLST_SIM_PLATFORM_ID_SIZE];
    uint8_t sealing[CLST_SIM_SEALING_SECRET_SIZE];

    if (dir == NULL || dir[0] == '\0' || now < CLOCK_SKEW ||
        now > INT64_MAX / 2 - CLST_SIM_ROOT_VALIDITY) {
        rc = clst_err_set(err, CLST_E_INVAL, "sim platform: no directory or an invalid time");
        goto out;
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        rc = clst_err_set(err, CLST_E_IO, "cannot create %s: %s", dir, strerror(errno));
        goto out;
    }
    rc = open_dir(dir, &dfd, err);
    if (rc != CLST_OK) {
        goto out;
    }
    if (!force) {
        for (size_t i = 0; i < COUNT(all_files); i++) {
            struct stat st;
            if (fstatat(dfd, all_files[i], &st, AT_SYMLINK_NOFOLLOW) == 0) {
                rc = clst_err_set(err, CLST_E_CONFLICT,
                                  "%s already holds a sim platform (%s exists); use --force to "
                                  "replace it (evidence made with the old one will no longer "
                                  "verify against the new root)",
                                  dir, all_files[i]);
                goto out;
            }
            if (errno != ENOENT) {
                rc = clst_err_set(err, CLST_E_IO, "cannot stat %s/%s: %s", dir, all_files[i],
                                  strerror(errno));
                goto out;
            }
        }
    }

    int64_t not_before = now - CLOCK_SKEW;
    int64_t root_not_after = now + CLST_SIM_ROOT_VALIDITY;
    int64_t platform_not_after = now + CLST_SIM_PLATFORM_VALIDITY;
    rc = clst_ec_generate(CLST_CURVE_P384, &root_key);
    if (rc == CLST_OK) {
        rc = clst_ec_generate(CLST_CURVE_P384, &key);
    }
    if (rc == CLST_OK) {
        rc = clst_random(platform_id, sizeof(platform_id));
    }
    if (rc == CLST_OK) {
        rc = clst_random(sealing, sizeof(sealing));
    }
    if (rc != CLST_OK) {
        rc = clst_err_set(err, rc, "sim platform: cannot generate keys and secrets");
        goto out;
    }
    rc = evidence_sim_cert_issue(root_key, NULL, root_key,
                                 "Cloister sim root CA (development only, not hardware)", NULL,
                                 true, not_before, root_not_after, &root, err);
    if (rc != CLST_OK) {
        goto out;
    }
    rc = evidence_sim_cert_issue(root_key, root, key, "Cloister sim platform", platform_id, false,
                                 not_before, platform_not_after, &cert, err);
    if (rc != CLST_OK) {
        goto out;
    }
    /* Secrets first, public files last: a platform whose certificates exist is complete. */
    rc = write_key(dfd, dir, CLST_SIM_ROOT_KEY_FILE, root_key, err);
    if (rc == CLST_OK) {
        rc = write_key(dfd, dir, CLST_SIM_PLATFORM_KEY_FILE, key, err);
    }
    if (rc == CLST_OK) {
        rc = write_at(dfd, dir, CLST_SIM_SEALING_FILE, sealing, sizeof(sealing), 0600, err);
    }
    if (rc == CLST_OK) {
        rc = write_cert(dfd, dir, CLST_SIM_PLATFORM_FILE, cert, err);
    }
    if (rc == CLST_OK) {
        rc = write_cert(dfd, dir, CLST_SIM_ROOT_FILE, root, err);
    }
    if (rc != CLST_OK) {
        goto out;
    }
    if (fsync(dfd) != 0) {
        rc = clst_err_set(err, CLST_E_IO, "cannot sync %s: %s", dir, strerror(errno));
        goto out;
    }
    rc = CLST_OK;
out:
    OPENSSL_cleanse(sealing, sizeof(sealing));
    if (dfd >= 0) {
        close(dfd);
    }
    X509_free(cert);
    X509_free(root);
    EVP_PKEY_free(key);
    EVP_PKEY_free(root_key);
    return rc;
}

/* ---- load ----------------------------------------------------------------------------------- */

static enum clst_status
load_cert(int dfd, const char *dir, const char *name, X509 **out, struct clst_err *err)
{
    struct clst_buf b;
    clst_buf_init(&b, PEM_FILE_MAX);
    enum clst_status rc = read_at(dfd, dir, name, false, &b, err);
    if (rc == CLST_OK) {
        rc = clst_x509_from_pem(b.data, b.size, out, err);
        if (rc != CLST_OK) {
            clst_err_prefix(err, "%s/%s", dir, name);
        }
    }
    clst_buf_cleanup(&b);
    return rc;
}

enum clst_status
clst_evidence_sim_platform_load(const char *dir, struct clst_sim_platform **out,
                                struct clst_err *err)
{
    enum clst_status rc = CLST_E_INTERNAL;
    struct clst_sim_platform *p = NULL;
    struct clst_buf b;
    int dfd = -1;

    clst_buf_init_secret(&b, PEM_FILE_MAX);
    if (dir == NULL || out == NULL) {
        rc = clst_err_set(err, CLST_E_INVAL, "sim platform: no directory given");
        goto out;
    }
    p = calloc(1, sizeof(*p));
    if (p == NULL) {
        rc = clst_err_set(err, CLST_E_NOMEM, "out of memory");
        goto out;
    }
    rc = open_dir(dir, &dfd, err);
    if (rc != CLST_OK) {
        goto out;
    }
    /* The root key is not needed to make reports (it may be moved offline), but while it is
     * here its permissions must be as strict as the others'. */
    for (size_t i = 0; i < COUNT(private_files); i++) {
        struct stat st;
        if (fstatat(dfd, private_files[i], &st, AT_SYMLINK_NOFOLLOW) != 0) {
            if (errno == ENOENT && strcmp(private_files[i], CLST_SIM_ROOT_KEY_FILE) == 0) {
                continue;
            }
            rc = clst_err_set(err, errno == ENOENT ? CLST_E_NOTFOUND : CLST_E_IO,
                              "%s/%s: %s; is %s a sim platform ('cloister sim init')?", dir,
                              private_files[i], strerror(errno), dir);
            goto out;
        }
        rc = check_private(&st, dir, private_files[i], err);
        if (rc != CLST_OK) {
            goto out;
        }
    }

    rc = load_cert(dfd, dir, CLST_SIM_ROOT_FILE, &p->root, err);
    if (rc == CLST_OK) {
        rc = load_cert(dfd, dir, CLST_SIM_PLATFORM_FILE, &p->cert, err);
    }
    if (rc != CLST_OK) {
        goto out;
    }
    rc = read_at(dfd, dir, CLST_SIM_PLATFORM_KEY_FILE, true, &b, err);
    if (rc != CLST_OK) {
        goto out;
    }
    rc = clst_pkey_from_pem(b.data, b.size, &p->key, err);
    if (rc != CLST_OK) {
        clst_err_prefix(err, "%s/%s", dir, CLST_SIM_PLATFORM_KEY_FILE);
        goto out;
    }
    clst_buf_reset(&b);
    b.max = CLST_SIM_SEALING_SECRET_SIZE;
    rc = read_at(dfd, dir, CLST_SIM_SEALING_FILE, true, &b, err);
    if (rc != CLST_OK) {
        goto out;
    }
    if (b.size != CLST_SIM_SEALING_SECRET_SIZE) {
        rc = clst_err_set(err, CLST_E_MALFORMED, "%s/%s must hold exactly %d bytes", dir,
                          CLST_SIM_SEALING_FILE, CLST_SIM_SEALING_SECRET_SIZE);
        goto out;
    }
    rc = clst_secret_from(b.data, b.size, &p->sealing);
    if (rc != CLST_OK) {
        rc = clst_err_set(err, rc, "sim platform: cannot keep the sealing secret");
        goto out;
    }

    /* The pieces must belong together. */
    if (clst_pkey_kind(p->key) != CLST_KEY_EC_P384 ||
        !clst_pkey_public_equal(X509_get0_pubkey(p->cert), p->key)) {
        rc = clst_err_set(err, CLST_E_VERIFY,
                          "%s/%s is not an EC P-384 key matching %s/%s; recreate the platform "
                          "with 'cloister sim init --force'",
                          dir, CLST_SIM_PLATFORM_KEY_FILE, dir, CLST_SIM_PLATFORM_FILE);
        goto out;
    }
    EVP_PKEY *root_pub = X509_get0_pubkey(p->root);
    if (root_pub == NULL || X509_verify(p->cert, root_pub) != 1) {
        rc = clst_err_set(err, CLST_E_VERIFY,
                          "%s/%s is not signed by %s/%s; recreate the platform with 'cloister "
                          "sim init --force'",
                          dir, CLST_SIM_PLATFORM_FILE, dir, CLST_SIM_ROOT_FILE);
        goto out;
    }
    rc = evidence_sim_cert_platform_id(p->cert, p->platform_id, err);
    if (rc != CLST_OK) {
        goto out;
    }
    int der_size = i2d_X509(p->cert, NULL);
    if (der_size <= 0 || der_size > CLST_SIM_CERT_MAX_SIZE) {
        rc = clst_err_set(err, CLST_E_LIMIT, "%s/%s does not fit in sim evidence (max %d bytes)",
                          dir, CLST_SIM_PLATFORM_FILE, CLST_SIM_CERT_MAX_SIZE);
        goto out;
    }
    unsigned char *der = p->cert_der;
    if (i2d_X509(p->cert, &der) != der_size) {
        rc = clst_err_set(err, CLST_E_CRYPTO, "cannot encode %s/%s", dir, CLST_SIM_PLATFORM_FILE);
        goto out;
    }
    p->cert_size = (size_t)der_size;
    *out = p;
    p = NULL;
    rc = CLST_OK;
out:
    if (dfd >= 0) {
        close(dfd);
    }
    clst_buf_cleanup(&b);
    clst_evidence_sim_platform_free(p);
    return rc;
}

void
clst_evidence_sim_platform_free(struct clst_sim_platform *p)
{
    if (p == NULL) {
        return;
    }
    X509_free(p->root);
    X509_free(p->cert);
    EVP_PKEY_free(p->key);
    clst_secret_free(p->sealing);
    OPENSSL_cleanse(p, sizeof(*p));
    free(p);
}

X509 *
clst_evidence_sim_platform_root(const struct clst_sim_platform *p)
{
    return p != NULL ? p->root : NULL;
}

const uint8_t *
clst_evidence_sim_platform_id(const struct clst_sim_platform *p)
{
    return p != NULL ? p->platform_id : NULL;
}

const uint8_t *
clst_evidence_sim_platform_sealing_secret(const struct clst_sim_platform *p)
{
    return p != NULL && p->sealing != NULL ? p->sealing->ptr : NULL;
}

/* ---- produce -------------------------------------------------------------------------------- */

enum clst_status
clst_evidence_sim_report_create(const struct clst_sim_platform *p,
                                const struct clst_sim_identity *id,
                                const uint8_t report_data[static CLST_SIM_REPORT_DATA_SIZE],
                                struct clst_buf *out, struct clst_err *err)
{
    enum clst_status rc = CLST_E_INTERNAL;
    struct clst_sim_report r;
    struct clst_buf tbs;
    struct clst_buf sig;

    clst_buf_init(&tbs, CLST_SIM_EVIDENCE_MAX_SIZE);
    clst_buf_init(&sig, 2 * CLST_SIM_SIGNATURE_SIZE);
    if (p == NULL || id == NULL || out == NULL || p->key == NULL || p->cert_size == 0) {
        rc = clst_err_set(err, CLST_E_INVAL, "sim report: no platform, identity or output");
        goto out;
    }
    memset(&r, 0, sizeof(r));
    r.version = CLST_SIM_VERSION;
    r.sig_alg = CLST_SIM_SIG_ALG_ES384;
    r.flags = id->debug ? CLST_SIM_FLAG_DEBUG : 0;
    r.product_id = id->product_id;
    r.svn = id->svn;
    memcpy(r.mrenclave, id->mrenclave, sizeof(r.mrenclave));
    memcpy(r.mrsigner, id->mrsigner, sizeof(r.mrsigner));
    memcpy(r.platform_id, p->platform_id, sizeof(r.platform_id));
    memcpy(r.report_data, report_data, sizeof(r.report_data));

    rc = evidence_sim_encode_tbs(&r, p->cert_der, p->cert_size, &tbs);
    if (rc != CLST_OK) {
        rc = clst_err_set(err, rc, "sim report: cannot encode the report");
        goto out;
    }
    rc = clst_ecdsa_sign(p->key, CLST_HASH_SHA384, CLST_SIG_RAW, tbs.data, tbs.size, &sig);
    if (rc != CLST_OK || sig.size != CLST_SIM_SIGNATURE_SIZE) {
        rc = clst_err_set(err, rc != CLST_OK ? rc : CLST_E_INTERNAL,
                          "sim report: signing with the platform key failed");
        goto out;
    }
    /* Reserve first so that out is either complete or unchanged. */
    rc = clst_buf_reserve(out, tbs.size + sig.size);
    if (rc != CLST_OK) {
        rc = clst_err_set(err, rc, "sim report: the output buffer cannot take %zu more bytes",
                          tbs.size + sig.size);
        goto out;
    }
    if (clst_buf_append(out, tbs.data, tbs.size) != CLST_OK ||
        clst_buf_append(out, sig.data, sig.size) != CLST_OK) {
        rc = clst_err_set(err, CLST_E_INTERNAL, "sim report: append after reserve failed");
        goto out;
    }
    rc = CLST_OK;
out:
    clst_buf_cleanup(&tbs);
    clst_buf_cleanup(&sig);
    return rc;
}
