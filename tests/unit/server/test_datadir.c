/* Unit tests for src/server/datadir.c: bootstrap, reload, permission and integrity refusals. */
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/pem.h>

#include "server/server_int.h"
#include "test_util.h"

#define T0  1767225600 /* 2026-01-01T00:00:00Z */
#define DAY 86400

struct fx {
    char root[64];  /* mkdtemp */
    char path[128]; /* root/data, not created yet */
    struct clst_clock clock;
};

static int
setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    if (f == NULL) {
        return -1;
    }
    snprintf(f->root, sizeof(f->root), "/tmp/clst-datadir-XXXXXX");
    if (mkdtemp(f->root) == NULL) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof(f->path), "%s/data", f->root);
    clst_clock_fixed_init(&f->clock, T0);
    *state = f;
    return 0;
}

static void
rm_rf(const char *path)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
    if (system(cmd) != 0) {
        fprintf(stderr, "could not remove %s\n", path);
    }
}

static int
teardown(void **state)
{
    struct fx *f = *state;
    rm_rf(f->root);
    free(f);
    return 0;
}

static void
join(char *out, size_t cap, const struct fx *f, const char *name)
{
    int n = snprintf(out, cap, "%s/%s", f->path, name);
    assert_true(n > 0 && (size_t)n < cap);
}

static unsigned
mode_of(const struct fx *f, const char *name)
{
    char p[256];
    struct stat st;
    if (name != NULL) {
        join(p, sizeof(p), f, name);
    } else {
        snprintf(p, sizeof(p), "%s", f->path);
    }
    assert_int_equal(lstat(p, &st), 0);
    return (unsigned)(st.st_mode & 07777);
}

static void
set_mode(const struct fx *f, const char *name, unsigned mode)
{
    char p[256];
    if (name != NULL) {
        join(p, sizeof(p), f, name);
    } else {
        snprintf(p, sizeof(p), "%s", f->path);
    }
    assert_int_equal(chmod(p, (mode_t)mode), 0);
}

static unsigned char *
read_all(const struct fx *f, const char *name, size_t *size)
{
    char p[256];
    join(p, sizeof(p), f, name);
    unsigned char *data = tu_read_file(p, size);
    assert_non_null(data);
    return data;
}

static void
write_all(const struct fx *f, const char *name, const void *data, size_t size, unsigned mode)
{
    char p[256];
    join(p, sizeof(p), f, name);
    (void)unlink(p);
    int fd = open(p, O_WRONLY | O_CREAT | O_EXCL, (mode_t)mode);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, size), (ssize_t)size);
    assert_int_equal(fchmod(fd, (mode_t)mode), 0);
    close(fd);
}

static void
remove_file(const struct fx *f, const char *name)
{
    char p[256];
    join(p, sizeof(p), f, name);
    assert_int_equal(unlink(p), 0);
}

static enum clst_status
open_at(struct fx *f, const char *host, int64_t t, struct clst_server_datadir **d,
        struct clst_err *err)
{
    clst_clock_fixed_init(&f->clock, t);
    clst_err_clear(err);
    *d = NULL;
    return clst_server_datadir_open(f->path, host, &f->clock, d, err);
}

/* Opens, expects failure with `status` and a message containing `needle`. */
static void
expect_refusal(struct fx *f, enum clst_status status, const char *needle)
{
    struct clst_server_datadir *d = NULL;
    struct clst_err err;
    assert_int_equal(open_at(f, "127.0.0.1", T0, &d, &err), status);
    assert_null(d);
    if (strstr(err.msg, needle) == NULL) {
        fail_msg("message '%s' lacks '%s'", err.msg, needle);
    }
}

static void
bootstrap(struct fx *f)
{
    struct clst_server_datadir *d = NULL;
    struct clst_err err;
    assert_int_equal(open_at(f, "127.0.0.1", T0, &d, &err), CLST_OK);
    clst_server_datadir_free(d);
}

static void
test_first_start(void **state)
{
    struct fx *f = *state;
    struct clst_server_datadir *d = NULL;
    struct clst_err err;
    assert_int_equal(open_at(f, "127.0.0.1", T0, &d, &err), CLST_OK);
    assert_true(d->created);
    assert_true(d->server_cert_issued);
    assert_int_equal(mode_of(f, NULL), 0700);
    assert_int_equal(mode_of(f, CLST_DATADIR_MASTER_KEY), 0600);
    assert_int_equal(mode_of(f, CLST_DATADIR_ADMIN_TOKEN), 0600);
    assert_int_equal(mode_of(f, CLST_DATADIR_ADMIN_HASH), 0600);
    assert_int_equal(mode_of(f, CLST_DATADIR_CA_KEY), 0600);
    assert_int_equal(mode_of(f, CLST_DATADIR_SERVER_KEY), 0600);
    assert_int_equal(mode_of(f, CLST_DATADIR_CA_CERT), 0644);
    assert_int_equal(mode_of(f, CLST_DATADIR_SERVER_CERT), 0644);

    /* The master key on disk is what the object holds: 32 bytes. */
    size_t size;
    unsigned char *mk = read_all(f, CLST_DATADIR_MASTER_KEY, &size);
    assert_int_equal(size, CLST_MASTER_KEY_SIZE);
    assert_int_equal(d->master_key->size, CLST_MASTER_KEY_SIZE);
    assert_memory_equal(mk, d->master_key->ptr, CLST_MASTER_KEY_SIZE);
    free(mk);

    /* The token: 43 base64url characters, saved with a newline; only its hash is kept. */
    assert_non_null(d->first_admin_token);
    const char *token = (const char *)d->first_admin_token->ptr;
    assert_int_equal(strlen(token), 43);
    for (size_t i = 0; i < 43; i++) {
        char c = token[i];
        assert_true((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_');
    }
    unsigned char *saved = read_all(f, CLST_DATADIR_ADMIN_TOKEN, &size);
    assert_int_equal(size, 44);
    assert_memory_equal(saved, token, 43);
    assert_int_equal(saved[43], '\n');
    free(saved);
    uint8_t h[32];
    char hex[65];
    assert_int_equal(clst_sha256(token, 43, h), CLST_OK);
    assert_memory_equal(h, d->admin_token_sha256, 32);
    assert_int_equal(clst_hex_to_str(h, 32, hex, sizeof(hex)), CLST_OK);
    unsigned char *hash_file = read_all(f, CLST_DATADIR_ADMIN_HASH, &size);
    assert_int_equal(size, 65);
    assert_memory_equal(hash_file, hex, 64);
    free(hash_file);
    clst_server_datadir_forget_token(d);
    assert_null(d->first_admin_token);

    /* The fingerprint is the SHA-256 of ca.pem's certificate; the server pair matches. */
    size_t pem_size;
    unsigned char *pem = read_all(f, CLST_DATADIR_CA_CERT, &pem_size);
    assert_string_equal((char *)pem, d->ca_cert_pem);
    BIO *b = BIO_new_mem_buf(pem, (int)pem_size);
    X509 *ca = PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    free(pem);
    assert_non_null(ca);
    uint8_t md[32];
    unsigned len = 0;
    assert_int_equal(X509_digest(ca, EVP_sha256(), md, &len), 1);
    assert_memory_equal(md, d->ca_sha256, 32);
    X509_free(ca);
    assert_int_equal(strlen(d->ca_fingerprint), 95);

    b = BIO_new_mem_buf(d->server_cert_pem, -1);
    X509 *srv = PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    b = BIO_new_mem_buf(d->server_key_pem->ptr, -1);
    EVP_PKEY *key = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
    BIO_free(b);
    assert_non_null(srv);
    assert_non_null(key);
    assert_int_equal(X509_check_private_key(srv, key), 1);
    assert_true(clst_server_pki_covers(srv, "127.0.0.1"));
    assert_int_equal(X509_verify(srv, X509_get0_pubkey(d->ca_cert)), 1);
    X509_free(srv);
    EVP_PKEY_free(key);
    clst_server_datadir_free(d);
}

static void
test_reload(void **state)
{
    struct fx *f = *state;
    struct clst_server_datadir *d = NULL;
    struct clst_err err;
    assert_int_equal(open_at(f, "127.0.0.1", T0, &d, &err), CLST_OK);
    uint8_t fp[32], mk[32], th[32];
    memcpy(fp, d->ca_sha256, 32);
    memcpy(mk, d->master_key->ptr, 32);
    memcpy(th, d->admin_token_sha256, 32);
    char *srv = strdup(d->server_cert_pem);
    clst_server_datadir_free(d);

    assert_int_equal(open_at(f, "127.0.0.1", T0 + DAY, &d, &err), CLST_OK);
    assert_false(d->created);
    assert_false(d->server_cert_issued);
    assert_null(d->first_admin_token);
    assert_memory_equal(fp, d->ca_sha256, 32);
    assert_memory_equal(mk, d->master_key->ptr, 32);
    assert_memory_equal(th, d->admin_token_sha256, 32);
    assert_string_equal(srv, d->server_cert_pem);
    clst_server_datadir_free(d);
    free(srv);

    /* The operator may move the token file away: it is optional. */
    remove_file(f, CLST_DATADIR_ADMIN_TOKEN);
    assert_int_equal(open_at(f, "127.0.0.1", T0, &d, &err), CLST_OK);
    assert_memory_equal(th, d->admin_token_sha256, 32);
    clst_server_datadir_free(d);
}

static void
test_lock(void **state)
{
    struct fx *f = *state;
    struct clst_server_datadir *d = NULL;
    struct clst_server_datadir *d2 = NULL;
    struct clst_err err;
    assert_int_equal(open_at(f, "127.0.0.1", T0, &d, &err), CLST_OK);
    assert_int_equal(open_at(f, "127.0.0.1", T0, &d2, &err), CLST_E_CONFLICT);
    assert_null(d2);
    assert_non_null(strstr(err.msg, "in use"));
    clst_server_datadir_free(d);
    assert_int_equal(open_at(f, "127.0.0.1", T0, &d2, &err), CLST_OK);
    clst_server_datadir_free(d2);
}

static void
test_permissions(void **state)
{
    struct fx *f = *state;
    bootstrap(f);
    static const char *const secrets[] = {CLST_DATADIR_MASTER_KEY, CLST_DATADIR_CA_KEY,
                                          CLST_DATADIR_SERVER_KEY, CLST_DATADIR_ADMIN_HASH,
                                          CLST_DATADIR_ADMIN_TOKEN};
    static const unsigned open_modes[] = {0644, 0640, 0604, 0660, 0606, 0700 | 0004};
    for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++) {
        for (size_t m = 0; m < sizeof(open_modes) / sizeof(open_modes[0]); m++) {
            set_mode(f, secrets[i], open_modes[m]);
            expect_refusal(f, CLST_E_DENIED, "chmod 600");
            expect_refusal(f, CLST_E_DENIED, secrets[i]);
        }
        set_mode(f, secrets[i], 0600);
    }
    /* 0400 is stricter than needed and fine. */
    set_mode(f, CLST_DATADIR_MASTER_KEY, 0400);
    bootstrap(f);
    set_mode(f, CLST_DATADIR_MASTER_KEY, 0600);
    /* Certificates may be world-readable but not writable by others. */
    set_mode(f, CLST_DATADIR_CA_CERT, 0664);
    expect_refusal(f, CLST_E_DENIED, "chmod 644");
    set_mode(f, CLST_DATADIR_CA_CERT, 0646);
    expect_refusal(f, CLST_E_DENIED, "chmod 644");
    set_mode(f, CLST_DATADIR_CA_CERT, 0644);
    set_mode(f, CLST_DATADIR_SERVER_CERT, 0666);
    expect_refusal(f, CLST_E_DENIED, CLST_DATADIR_SERVER_CERT);
    set_mode(f, CLST_DATADIR_SERVER_CERT, 0644);
    /* The directory itself. */
    set_mode(f, NULL, 0755);
    expect_refusal(f, CLST_E_DENIED, "chmod 700");
    set_mode(f, NULL, 0710);
    expect_refusal(f, CLST_E_DENIED, "chmod 700");
    set_mode(f, NULL, 0700);
    bootstrap(f);
}

static void
test_symlink_refused(void **state)
{
    struct fx *f = *state;
    bootstrap(f);
    char p[256], target[256];
    join(p, sizeof(p), f, CLST_DATADIR_MASTER_KEY);
    snprintf(target, sizeof(target), "%s/elsewhere", f->root);
    assert_int_equal(rename(p, target), 0);
    assert_int_equal(symlink(target, p), 0);
    expect_refusal(f, CLST_E_DENIED, "symbolic link");
}

static void
test_missing_and_corrupt(void **state)
{
    struct fx *f = *state;
    bootstrap(f);
    size_t size;
    unsigned char *mk = read_all(f, CLST_DATADIR_MASTER_KEY, &size);
    unsigned char *hash = read_all(f, CLST_DATADIR_ADMIN_HASH, &size);
    unsigned char *ca = read_all(f, CLST_DATADIR_CA_CERT, &size);
    size_t ca_size = size;

    remove_file(f, CLST_DATADIR_MASTER_KEY);
    expect_refusal(f, CLST_E_NOTFOUND, "master.key is missing");
    write_all(f, CLST_DATADIR_MASTER_KEY, mk, 31, 0600);
    expect_refusal(f, CLST_E_MALFORMED, "exactly 32 bytes");
    write_all(f, CLST_DATADIR_MASTER_KEY, "", 0, 0600);
    expect_refusal(f, CLST_E_MALFORMED, "exactly 32 bytes");
    unsigned char big[40] = {0};
    write_all(f, CLST_DATADIR_MASTER_KEY, big, sizeof(big), 0600);
    expect_refusal(f, CLST_E_MALFORMED, CLST_DATADIR_MASTER_KEY);
    write_all(f, CLST_DATADIR_MASTER_KEY, mk, 32, 0600);
    bootstrap(f);

    /* With the master key moved to an HSM (attest-seal.key exists), master.key may go; a damaged
     * one is still refused, and the helpers read and create private files. */
    {
        struct clst_server_datadir *d = NULL;
        struct clst_err err;
        struct clst_buf b;
        assert_int_equal(open_at(f, "127.0.0.1", T0, &d, &err), CLST_OK);
        assert_int_equal(clst_server_datadir_create(d, CLST_DATADIR_SEAL_KEY, "wrapped", 7, &err),
                         CLST_OK);
        assert_int_equal(clst_server_datadir_create(d, CLST_DATADIR_SEAL_KEY, "again", 5, &err),
                         CLST_E_CONFLICT);
        clst_buf_init(&b, 64);
        assert_int_equal(clst_server_datadir_read(d, CLST_DATADIR_SEAL_KEY, &b, &err), CLST_OK);
        assert_int_equal(b.size, 7);
        assert_memory_equal(b.data, "wrapped", 7);
        clst_buf_cleanup(&b);
        assert_int_equal(mode_of(f, CLST_DATADIR_SEAL_KEY), 0600);
        clst_server_datadir_free(d);
        remove_file(f, CLST_DATADIR_MASTER_KEY);
        assert_int_equal(open_at(f, "127.0.0.1", T0, &d, &err), CLST_OK);
        assert_null(d->master_key);
        clst_server_datadir_free(d);
        write_all(f, CLST_DATADIR_MASTER_KEY, mk, 31, 0600);
        expect_refusal(f, CLST_E_MALFORMED, "exactly 32 bytes");
        remove_file(f, CLST_DATADIR_SEAL_KEY);
        remove_file(f, CLST_DATADIR_MASTER_KEY);
        expect_refusal(f, CLST_E_NOTFOUND, "master.key is missing");
        write_all(f, CLST_DATADIR_MASTER_KEY, mk, 32, 0600);
        bootstrap(f);
    }

    write_all(f, CLST_DATADIR_ADMIN_HASH, "zz", 2, 0600);
    expect_refusal(f, CLST_E_MALFORMED, "64 hex digits");
    unsigned char badhex[65];
    memcpy(badhex, hash, 65);
    badhex[10] = 'g';
    write_all(f, CLST_DATADIR_ADMIN_HASH, badhex, 65, 0600);
    expect_refusal(f, CLST_E_MALFORMED, "64 hex digits");
    write_all(f, CLST_DATADIR_ADMIN_HASH, hash, 64, 0600); /* without the newline: fine */
    bootstrap(f);

    write_all(f, CLST_DATADIR_CA_CERT, "-----BEGIN CERTIFICATE-----\nAAAA\n", 33, 0644);
    expect_refusal(f, CLST_E_MALFORMED, "corrupt");
    /* A flipped byte inside the certificate's base64 also makes it unusable. */
    unsigned char *flipped = malloc(ca_size);
    assert_non_null(flipped);
    memcpy(flipped, ca, ca_size);
    flipped[100] = flipped[100] == 'A' ? 'B' : 'A';
    write_all(f, CLST_DATADIR_CA_CERT, flipped, ca_size, 0644);
    struct clst_server_datadir *d = NULL;
    struct clst_err err;
    enum clst_status rc = open_at(f, "127.0.0.1", T0, &d, &err);
    assert_true(rc == CLST_E_MALFORMED || rc == CLST_E_VERIFY);
    assert_non_null(strstr(err.msg, "corrupt"));
    free(flipped);
    write_all(f, CLST_DATADIR_CA_CERT, ca, ca_size, 0644);
    bootstrap(f);

    write_all(f, CLST_DATADIR_CA_KEY, "not a key", 9, 0600);
    expect_refusal(f, CLST_E_MALFORMED, "not a PEM private key");
    free(mk);
    free(hash);
    free(ca);
}

static void
test_foreign_keys_refused(void **state)
{
    struct fx *f = *state;
    bootstrap(f);
    /* Another installation's CA key: it does not belong to this ca.pem. */
    struct fx other;
    memcpy(&other, f, sizeof(other));
    snprintf(other.path, sizeof(other.path), "%s/other", f->root);
    struct clst_server_datadir *d = NULL;
    struct clst_err err;
    assert_int_equal(clst_server_datadir_open(other.path, "127.0.0.1", &f->clock, &d, &err),
                     CLST_OK);
    clst_server_datadir_free(d);
    size_t size;
    unsigned char *own = read_all(f, CLST_DATADIR_CA_KEY, &size);
    size_t own_size = size;
    unsigned char *foreign = read_all(&other, CLST_DATADIR_CA_KEY, &size);
    write_all(f, CLST_DATADIR_CA_KEY, foreign, size, 0600);
    expect_refusal(f, CLST_E_VERIFY, "does not belong");
    write_all(f, CLST_DATADIR_CA_KEY, own, own_size, 0600);
    free(own);
    free(foreign);
    /* A server pair issued by another CA. */
    unsigned char *cert = read_all(&other, CLST_DATADIR_SERVER_CERT, &size);
    write_all(f, CLST_DATADIR_SERVER_CERT, cert, size, 0644);
    free(cert);
    unsigned char *key = read_all(&other, CLST_DATADIR_SERVER_KEY, &size);
    write_all(f, CLST_DATADIR_SERVER_KEY, key, size, 0600);
    free(key);
    expect_refusal(f, CLST_E_VERIFY, "issued by this directory's CA");
    /* A mismatched pair (our cert, a foreign key) too. */
    remove_file(f, CLST_DATADIR_SERVER_CERT);
    remove_file(f, CLST_DATADIR_SERVER_KEY);
    bootstrap(f); /* both missing: a new pair is issued */
    key = read_all(&other, CLST_DATADIR_SERVER_KEY, &size);
    write_all(f, CLST_DATADIR_SERVER_KEY, key, size, 0600);
    free(key);
    expect_refusal(f, CLST_E_VERIFY, "remove both");
}

static void
test_server_cert_reissue(void **state)
{
    struct fx *f = *state;
    struct clst_server_datadir *d = NULL;
    struct clst_err err;
    bootstrap(f);
    size_t size;
    unsigned char *ca_before = read_all(f, CLST_DATADIR_CA_CERT, &size);

    /* A listen host the certificate does not cover: a new one, same CA. */
    assert_int_equal(open_at(f, "vault.example.com", T0, &d, &err), CLST_OK);
    assert_true(d->server_cert_issued);
    assert_false(d->created);
    BIO *b = BIO_new_mem_buf(d->server_cert_pem, -1);
    X509 *srv = PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    assert_true(clst_server_pki_covers(srv, "vault.example.com"));
    X509_free(srv);
    clst_server_datadir_free(d);
    unsigned char *ca_after = read_all(f, CLST_DATADIR_CA_CERT, &size);
    assert_string_equal((char *)ca_before, (char *)ca_after);
    free(ca_before);
    free(ca_after);
    /* Same host again: kept. */
    assert_int_equal(open_at(f, "vault.example.com", T0, &d, &err), CLST_OK);
    assert_false(d->server_cert_issued);
    clst_server_datadir_free(d);
    /* Close to expiry (397 days, renewed in the last 30): a new one. */
    assert_int_equal(open_at(f, "vault.example.com", T0 + 300LL * DAY, &d, &err), CLST_OK);
    assert_false(d->server_cert_issued);
    clst_server_datadir_free(d);
    assert_int_equal(open_at(f, "vault.example.com", T0 + 380LL * DAY, &d, &err), CLST_OK);
    assert_true(d->server_cert_issued);
    clst_server_datadir_free(d);
    assert_int_equal(open_at(f, "vault.example.com", T0 + 381LL * DAY, &d, &err), CLST_OK);
    assert_false(d->server_cert_issued);
    clst_server_datadir_free(d);
    /* One of the pair missing: refused, with the way out in the message. */
    remove_file(f, CLST_DATADIR_SERVER_CERT);
    expect_refusal(f, CLST_E_NOTFOUND, "remove both");
    remove_file(f, CLST_DATADIR_SERVER_KEY);
    assert_int_equal(open_at(f, "127.0.0.1", T0, &d, &err), CLST_OK);
    assert_true(d->server_cert_issued);
    clst_server_datadir_free(d);
}

static void
test_ca_expired(void **state)
{
    struct fx *f = *state;
    struct clst_server_datadir *d = NULL;
    struct clst_err err;
    bootstrap(f);
    assert_int_equal(open_at(f, "127.0.0.1", T0 + 3653LL * DAY, &d, &err), CLST_E_VERIFY);
    assert_non_null(strstr(err.msg, "expired"));
}

static void
test_incomplete_and_existing(void **state)
{
    struct fx *f = *state;
    struct clst_server_datadir *d = NULL;
    struct clst_err err;
    /* An existing empty 0700 directory is filled; an existing 0755 one is refused untouched. */
    assert_int_equal(mkdir(f->path, 0755), 0);
    assert_int_equal(chmod(f->path, 0755), 0);
    expect_refusal(f, CLST_E_DENIED, "chmod 700");
    set_mode(f, NULL, 0700);
    assert_int_equal(open_at(f, "127.0.0.1", T0, &d, &err), CLST_OK);
    assert_true(d->created);
    clst_server_datadir_free(d);
    /* A directory with our files but no ca.pem is an interrupted first start. */
    remove_file(f, CLST_DATADIR_CA_CERT);
    expect_refusal(f, CLST_E_MALFORMED, "incomplete");
    /* The parent must exist. */
    char deep[256];
    snprintf(deep, sizeof(deep), "%s/no/such/dir", f->root);
    assert_int_equal(clst_server_datadir_open(deep, "127.0.0.1", NULL, &d, &err), CLST_E_IO);
    /* Bad arguments create nothing. */
    char fresh[256];
    snprintf(fresh, sizeof(fresh), "%s/fresh", f->root);
    assert_int_equal(clst_server_datadir_open(fresh, "bad host", NULL, &d, &err), CLST_E_INVAL);
    assert_int_equal(access(fresh, F_OK), -1);
    assert_int_equal(clst_server_datadir_open("", "127.0.0.1", NULL, &d, &err), CLST_E_INVAL);
    /* A regular file where the directory should be. */
    write_all(f, "afile", "x", 1, 0600);
    char afile[256];
    join(afile, sizeof(afile), f, "afile");
    assert_int_not_equal(clst_server_datadir_open(afile, "127.0.0.1", NULL, &d, &err), CLST_OK);
}

static void
test_port_file(void **state)
{
    struct fx *f = *state;
    struct clst_server_datadir *d = NULL;
    struct clst_err err;
    assert_int_equal(open_at(f, "127.0.0.1", T0, &d, &err), CLST_OK);
    assert_int_equal(clst_server_datadir_write_port(d, 4321, &err), CLST_OK);
    size_t size;
    unsigned char *p = read_all(f, CLST_DATADIR_PORT, &size);
    assert_string_equal((char *)p, "4321\n");
    free(p);
    assert_int_equal(clst_server_datadir_write_port(d, 65535, &err), CLST_OK); /* replaced */
    p = read_all(f, CLST_DATADIR_PORT, &size);
    assert_string_equal((char *)p, "65535\n");
    free(p);
    clst_server_datadir_remove_port(d);
    char path[256];
    join(path, sizeof(path), f, CLST_DATADIR_PORT);
    assert_int_equal(access(path, F_OK), -1);
    clst_server_datadir_free(d);
    clst_server_datadir_free(NULL);
    clst_server_datadir_forget_token(NULL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_first_start, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reload, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_permissions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_symlink_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_and_corrupt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreign_keys_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_cert_reissue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ca_expired, setup, teardown),
        cmocka_unit_test_setup_teardown(test_incomplete_and_existing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_port_file, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
