/*
 * Unit tests for src/evidence/sim_platform.c: creating a sim platform (files, modes, certificate
 * contents, refusing to overwrite, --force, unsafe directories), loading it back (refusing
 * group/other permissions, foreign owners, symbolic links, missing files, mismatched keys and
 * certificates, a sealing secret of the wrong size), the certificate helpers and the producer's
 * argument and output-buffer checks.
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <openssl/x509v3.h>

#include "sim_fixture.h"

static void
path_of(char *out, size_t cap, const char *dir, const char *name)
{
    assert_int_equal(fx_path(out, cap, dir, name), 0);
}

static mode_t
mode_of(const char *dir, const char *name)
{
    char path[512];
    struct stat st;
    if (name != NULL) {
        path_of(path, sizeof(path), dir, name);
    } else {
        snprintf(path, sizeof(path), "%s", dir);
    }
    assert_int_equal(lstat(path, &st), 0);
    return st.st_mode & 07777;
}

static void
chmod_file(const char *dir, const char *name, mode_t mode)
{
    char path[512];
    path_of(path, sizeof(path), dir, name);
    assert_int_equal(chmod(path, mode), 0);
}

/* A new, empty path under a fresh temporary directory (the platform directory to create). */
static void
new_dir(char *out, size_t cap, char *parent, size_t parent_cap)
{
    assert_int_equal(fx_tmpdir(parent, parent_cap), 0);
    path_of(out, cap, parent, "platform");
}

static void
expect_load(const char *dir, enum clst_status want, const char *msg_part)
{
    struct clst_sim_platform *p = NULL;
    struct clst_err err = {0};
    enum clst_status rc = clst_evidence_sim_platform_load(dir, &p, &err);
    if (rc != want) {
        fail_msg("load: want %s, got %s: %s", clst_status_str(want), clst_status_str(rc), err.msg);
    }
    if (want == CLST_OK) {
        assert_non_null(p);
    } else {
        assert_null(p);
        if (msg_part != NULL && strstr(err.msg, msg_part) == NULL) {
            fail_msg("message '%s' does not mention '%s'", err.msg, msg_part);
        }
    }
    clst_evidence_sim_platform_free(p);
}

static void
test_create_files_and_modes(void **state)
{
    (void)state;
    char parent[256], dir[512];
    new_dir(dir, sizeof(dir), parent, sizeof(parent));
    int64_t now = clst_clock_now(clst_clock_system());
    struct clst_err err = {0};

    assert_int_equal(clst_evidence_sim_platform_create(dir, now, false, &err), CLST_OK);
    assert_int_equal(mode_of(dir, NULL), 0700);
    assert_int_equal(mode_of(dir, CLST_SIM_ROOT_KEY_FILE), 0600);
    assert_int_equal(mode_of(dir, CLST_SIM_PLATFORM_KEY_FILE), 0600);
    assert_int_equal(mode_of(dir, CLST_SIM_SEALING_FILE), 0600);
    assert_int_equal(mode_of(dir, CLST_SIM_ROOT_FILE), 0644);
    assert_int_equal(mode_of(dir, CLST_SIM_PLATFORM_FILE), 0644);

    /* Exactly these five files: no temporary file is left behind. */
    DIR *d = opendir(dir);
    assert_non_null(d);
    int count = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] != '.') {
            count++;
        } else {
            assert_true(strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0);
        }
    }
    closedir(d);
    assert_int_equal(count, 5);

    /* The sealing secret is 32 bytes and is what load returns. */
    char path[512];
    size_t size = 0;
    path_of(path, sizeof(path), dir, CLST_SIM_SEALING_FILE);
    unsigned char *sealing = tu_read_file(path, &size);
    assert_non_null(sealing);
    assert_int_equal(size, CLST_SIM_SEALING_SECRET_SIZE);
    struct clst_sim_platform *p = NULL;
    assert_int_equal(clst_evidence_sim_platform_load(dir, &p, &err), CLST_OK);
    assert_memory_equal(clst_evidence_sim_platform_sealing_secret(p), sealing, size);
    free(sealing);

    /* The certificates: a self-signed P-384 CA root, and an end-entity platform certificate
     * issued by it whose serialNumber is the platform id. */
    X509 *root = clst_evidence_sim_platform_root(p);
    assert_non_null(root);
    assert_int_equal(clst_pkey_kind(X509_get0_pubkey(root)), CLST_KEY_EC_P384);
    assert_int_equal(X509_check_ca(root), 1);
    assert_int_equal(X509_verify(root, X509_get0_pubkey(root)), 1);
    assert_true((X509_get_key_usage(root) & KU_KEY_CERT_SIGN) != 0);

    EVP_PKEY *platform_key = NULL;
    assert_int_equal(fx_load_key(dir, CLST_SIM_PLATFORM_KEY_FILE, &platform_key), 0);
    assert_int_equal(clst_pkey_kind(platform_key), CLST_KEY_EC_P384);
    path_of(path, sizeof(path), dir, CLST_SIM_PLATFORM_FILE);
    unsigned char *pem = tu_read_file(path, &size);
    X509 *cert = NULL;
    assert_int_equal(clst_x509_from_pem(pem, size, &cert, &err), CLST_OK);
    free(pem);
    assert_true(clst_pkey_public_equal(X509_get0_pubkey(cert), platform_key));
    assert_int_equal(X509_check_ca(cert), 0);
    assert_int_equal(X509_verify(cert, X509_get0_pubkey(root)), 1);
    assert_true((X509_get_key_usage(cert) & KU_DIGITAL_SIGNATURE) != 0);
    uint8_t id[CLST_SIM_PLATFORM_ID_SIZE];
    assert_int_equal(evidence_sim_cert_platform_id(cert, id, &err), CLST_OK);
    assert_memory_equal(id, clst_evidence_sim_platform_id(p), sizeof(id));
    /* Valid from now - 5 minutes for two years (366-day years), checked at the edges. */
    assert_int_equal(X509_cmp_time(X509_get0_notBefore(cert), &(time_t){(time_t)(now - 301)}), 1);
    assert_int_equal(X509_cmp_time(X509_get0_notBefore(cert), &(time_t){(time_t)(now - 299)}), -1);
    assert_int_equal(X509_cmp_time(X509_get0_notAfter(cert),
                                   &(time_t){(time_t)(now + CLST_SIM_PLATFORM_VALIDITY - 1)}),
                     1);
    assert_int_equal(X509_cmp_time(X509_get0_notAfter(cert),
                                   &(time_t){(time_t)(now + CLST_SIM_PLATFORM_VALIDITY + 1)}),
                     -1);
    X509_free(cert);
    EVP_PKEY_free(platform_key);
    clst_evidence_sim_platform_free(p);
    fx_rm_dir(dir);
    rmdir(parent);
}

static void
test_create_refuses_overwrite(void **state)
{
    (void)state;
    char parent[256], dir[512];
    new_dir(dir, sizeof(dir), parent, sizeof(parent));
    int64_t now = clst_clock_now(clst_clock_system());
    struct clst_err err = {0};
    struct clst_sim_platform *p1 = NULL, *p2 = NULL;

    assert_int_equal(clst_evidence_sim_platform_create(dir, now, false, &err), CLST_OK);
    assert_int_equal(clst_evidence_sim_platform_load(dir, &p1, &err), CLST_OK);
    assert_int_equal(clst_evidence_sim_platform_create(dir, now, false, &err), CLST_E_CONFLICT);
    assert_non_null(strstr(err.msg, "--force"));
    /* Nothing changed. */
    assert_int_equal(clst_evidence_sim_platform_load(dir, &p2, &err), CLST_OK);
    assert_memory_equal(clst_evidence_sim_platform_id(p1), clst_evidence_sim_platform_id(p2),
                        CLST_SIM_PLATFORM_ID_SIZE);
    clst_evidence_sim_platform_free(p2);
    p2 = NULL;

    /* A single leftover file is enough to refuse. */
    char path[512];
    path_of(path, sizeof(path), dir, CLST_SIM_ROOT_FILE);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(clst_evidence_sim_platform_create(dir, now, false, &err), CLST_E_CONFLICT);

    /* --force replaces everything: a new id, root and sealing secret. */
    assert_int_equal(clst_evidence_sim_platform_create(dir, now, true, &err), CLST_OK);
    assert_int_equal(clst_evidence_sim_platform_load(dir, &p2, &err), CLST_OK);
    assert_memory_not_equal(clst_evidence_sim_platform_id(p1), clst_evidence_sim_platform_id(p2),
                            CLST_SIM_PLATFORM_ID_SIZE);
    assert_memory_not_equal(clst_evidence_sim_platform_sealing_secret(p1),
                            clst_evidence_sim_platform_sealing_secret(p2),
                            CLST_SIM_SEALING_SECRET_SIZE);
    assert_int_not_equal(
        X509_cmp(clst_evidence_sim_platform_root(p1), clst_evidence_sim_platform_root(p2)), 0);
    assert_int_equal(mode_of(dir, CLST_SIM_PLATFORM_KEY_FILE), 0600);
    clst_evidence_sim_platform_free(p1);
    clst_evidence_sim_platform_free(p2);
    fx_rm_dir(dir);
    rmdir(parent);
}

static void
test_create_refuses_open_directory(void **state)
{
    (void)state;
    char parent[256], dir[512];
    new_dir(dir, sizeof(dir), parent, sizeof(parent));
    int64_t now = clst_clock_now(clst_clock_system());
    struct clst_err err = {0};

    /* An existing directory that others may enter is not made into a platform (and not
     * chmod'ed behind the user's back: it could be /tmp). */
    assert_int_equal(mkdir(dir, 0700), 0);
    assert_int_equal(chmod(dir, 0755), 0);
    assert_int_equal(clst_evidence_sim_platform_create(dir, now, false, &err), CLST_E_DENIED);
    assert_non_null(strstr(err.msg, "chmod 700"));
    assert_int_equal(mode_of(dir, NULL), 0755);
    /* An existing empty 0700 directory is fine. */
    assert_int_equal(chmod(dir, 0700), 0);
    assert_int_equal(clst_evidence_sim_platform_create(dir, now, false, &err), CLST_OK);
    fx_rm_dir(dir);

    /* Bad arguments. */
    assert_int_equal(clst_evidence_sim_platform_create(NULL, now, false, &err), CLST_E_INVAL);
    assert_int_equal(clst_evidence_sim_platform_create("", now, false, &err), CLST_E_INVAL);
    assert_int_equal(clst_evidence_sim_platform_create(dir, -1, false, &err), CLST_E_INVAL);
    assert_int_equal(clst_evidence_sim_platform_create(dir, INT64_MAX, false, &err), CLST_E_INVAL);
    /* A path whose parent does not exist. */
    char deep[600];
    snprintf(deep, sizeof(deep), "%s/missing/platform", parent);
    assert_int_equal(clst_evidence_sim_platform_create(deep, now, false, &err), CLST_E_IO);
    rmdir(parent);
}

static void
test_load_refuses_permissions(void **state)
{
    struct fx *f = *state;
    static const char *const private_files[] = {CLST_SIM_ROOT_KEY_FILE, CLST_SIM_PLATFORM_KEY_FILE,
                                                CLST_SIM_SEALING_FILE};
    static const mode_t open_modes[] = {0640, 0604, 0660, 0644, 0601, 0610};

    expect_load(f->dir, CLST_OK, NULL);
    for (size_t i = 0; i < 3; i++) {
        for (size_t m = 0; m < sizeof(open_modes) / sizeof(open_modes[0]); m++) {
            chmod_file(f->dir, private_files[i], open_modes[m]);
            expect_load(f->dir, CLST_E_DENIED, "chmod 600");
        }
        chmod_file(f->dir, private_files[i], 0400); /* narrower is fine */
        expect_load(f->dir, CLST_OK, NULL);
        chmod_file(f->dir, private_files[i], 0600);
    }
    /* The directory itself. */
    static const mode_t dir_modes[] = {0750, 0705, 0770, 0755, 0701};
    for (size_t m = 0; m < sizeof(dir_modes) / sizeof(dir_modes[0]); m++) {
        assert_int_equal(chmod(f->dir, dir_modes[m]), 0);
        expect_load(f->dir, CLST_E_DENIED, "chmod 700");
    }
    assert_int_equal(chmod(f->dir, 0700), 0);
    expect_load(f->dir, CLST_OK, NULL);
}

static void
test_load_refuses_foreign_owner(void **state)
{
    struct fx *f = *state;
    char path[512];
    /* Only root can give a file away; as another user there is nothing to test here, so say
     * so rather than pass silently. */
    if (geteuid() != 0) {
        print_message("not root: foreign-owner checks not exercised\n");
        return;
    }
    path_of(path, sizeof(path), f->dir, CLST_SIM_PLATFORM_KEY_FILE);
    assert_int_equal(chown(path, 65534, 65534), 0);
    expect_load(f->dir, CLST_E_DENIED, "another user");
    assert_int_equal(chown(path, 0, 0), 0);
    assert_int_equal(chown(f->dir, 65534, 65534), 0);
    expect_load(f->dir, CLST_E_DENIED, "another user");
    assert_int_equal(chown(f->dir, 0, 0), 0);
    expect_load(f->dir, CLST_OK, NULL);
}

/* Copies dir/name to tmp, applies `op`, checks load, and puts the original back. */
static void
swap_file(const char *dir, const char *name, const char *from_dir, enum clst_status want,
          const char *msg_part)
{
    char path[512], saved[600], src[512];
    path_of(path, sizeof(path), dir, name);
    snprintf(saved, sizeof(saved), "%s.saved", path);
    assert_int_equal(rename(path, saved), 0);
    if (from_dir != NULL) {
        size_t size = 0;
        path_of(src, sizeof(src), from_dir, name);
        unsigned char *data = tu_read_file(src, &size);
        assert_non_null(data);
        FILE *out = fopen(path, "wb");
        assert_non_null(out);
        assert_int_equal(fwrite(data, 1, size, out), size);
        assert_int_equal(fclose(out), 0);
        assert_int_equal(chmod(path, 0600), 0);
        free(data);
    }
    expect_load(dir, want, msg_part);
    unlink(path);
    assert_int_equal(rename(saved, path), 0);
}

static void
test_load_refuses_inconsistent(void **state)
{
    struct fx *f = *state;
    struct fx *other = fx_new();
    assert_non_null(other);

    /* Missing pieces (the root key may be moved offline; nothing else may be missing). */
    swap_file(f->dir, CLST_SIM_ROOT_FILE, NULL, CLST_E_NOTFOUND, "sim init");
    swap_file(f->dir, CLST_SIM_PLATFORM_FILE, NULL, CLST_E_NOTFOUND, "platform.pem");
    swap_file(f->dir, CLST_SIM_PLATFORM_KEY_FILE, NULL, CLST_E_NOTFOUND, "platform-key.pem");
    swap_file(f->dir, CLST_SIM_SEALING_FILE, NULL, CLST_E_NOTFOUND, "sealing.key");
    swap_file(f->dir, CLST_SIM_ROOT_KEY_FILE, NULL, CLST_OK, NULL);

    /* Pieces of another platform. */
    swap_file(f->dir, CLST_SIM_PLATFORM_KEY_FILE, other->dir, CLST_E_VERIFY, "matching");
    swap_file(f->dir, CLST_SIM_PLATFORM_FILE, other->dir, CLST_E_VERIFY, "matching");
    swap_file(f->dir, CLST_SIM_ROOT_FILE, other->dir, CLST_E_VERIFY, "not signed by");
    /* Another platform's sealing secret is indistinguishable, and fine. */
    swap_file(f->dir, CLST_SIM_SEALING_FILE, other->dir, CLST_OK, NULL);
    expect_load(f->dir, CLST_OK, NULL);
    fx_free(other);
}

static void
write_file(const char *dir, const char *name, const void *data, size_t size, mode_t mode)
{
    char path[512];
    path_of(path, sizeof(path), dir, name);
    FILE *out = fopen(path, "wb");
    assert_non_null(out);
    assert_int_equal(fwrite(data, 1, size, out), size);
    assert_int_equal(fclose(out), 0);
    assert_int_equal(chmod(path, mode), 0);
}

static void
test_load_refuses_bad_contents(void **state)
{
    struct fx *f = *state;
    char path[512], saved[600];
    uint8_t bytes[CLST_SIM_SEALING_SECRET_SIZE + 1];
    memset(bytes, 7, sizeof(bytes));

    path_of(path, sizeof(path), f->dir, CLST_SIM_SEALING_FILE);
    snprintf(saved, sizeof(saved), "%s.saved", path);
    assert_int_equal(rename(path, saved), 0);
    write_file(f->dir, CLST_SIM_SEALING_FILE, bytes, CLST_SIM_SEALING_SECRET_SIZE - 1, 0600);
    expect_load(f->dir, CLST_E_MALFORMED, "exactly 32 bytes");
    write_file(f->dir, CLST_SIM_SEALING_FILE, bytes, CLST_SIM_SEALING_SECRET_SIZE + 1, 0600);
    expect_load(f->dir, CLST_E_LIMIT, NULL);
    write_file(f->dir, CLST_SIM_SEALING_FILE, bytes, 0, 0600);
    expect_load(f->dir, CLST_E_MALFORMED, NULL);
    assert_int_equal(rename(saved, path), 0);

    /* Not PEM. */
    path_of(path, sizeof(path), f->dir, CLST_SIM_PLATFORM_FILE);
    snprintf(saved, sizeof(saved), "%s.saved", path);
    assert_int_equal(rename(path, saved), 0);
    write_file(f->dir, CLST_SIM_PLATFORM_FILE, "garbage\n", 8, 0644);
    expect_load(f->dir, CLST_E_MALFORMED, "platform.pem");
    assert_int_equal(rename(saved, path), 0);

    path_of(path, sizeof(path), f->dir, CLST_SIM_PLATFORM_KEY_FILE);
    snprintf(saved, sizeof(saved), "%s.saved", path);
    assert_int_equal(rename(path, saved), 0);
    write_file(f->dir, CLST_SIM_PLATFORM_KEY_FILE, "garbage\n", 8, 0600);
    expect_load(f->dir, CLST_E_MALFORMED, "platform-key.pem");
    assert_int_equal(rename(saved, path), 0);
    expect_load(f->dir, CLST_OK, NULL);
}

static void
test_load_refuses_symlinks(void **state)
{
    struct fx *f = *state;
    char path[512], saved[600];
    path_of(path, sizeof(path), f->dir, CLST_SIM_PLATFORM_KEY_FILE);
    snprintf(saved, sizeof(saved), "%s.saved", path);
    assert_int_equal(rename(path, saved), 0);
    assert_int_equal(symlink(saved, path), 0);
    expect_load(f->dir, CLST_E_DENIED, NULL);
    assert_int_equal(unlink(path), 0);
    /* A directory where a file should be. */
    assert_int_equal(mkdir(path, 0700), 0);
    expect_load(f->dir, CLST_E_DENIED, "regular file");
    assert_int_equal(rmdir(path), 0);
    assert_int_equal(rename(saved, path), 0);
    expect_load(f->dir, CLST_OK, NULL);
    /* Missing or non-directory platform paths. */
    expect_load("/nonexistent/clst-sim", CLST_E_NOTFOUND, NULL);
    expect_load(path, CLST_E_IO, NULL);
    struct clst_sim_platform *p = NULL;
    assert_int_equal(clst_evidence_sim_platform_load(NULL, &p, NULL), CLST_E_INVAL);
    assert_int_equal(clst_evidence_sim_platform_load(f->dir, NULL, NULL), CLST_E_INVAL);
    clst_evidence_sim_platform_free(NULL);
    assert_null(clst_evidence_sim_platform_root(NULL));
    assert_null(clst_evidence_sim_platform_id(NULL));
    assert_null(clst_evidence_sim_platform_sealing_secret(NULL));
}

static void
test_report_create(void **state)
{
    struct fx *f = *state;
    struct clst_buf out;
    struct clst_err err = {0};

    /* Two reports for the same input differ only in the signature (ECDSA is randomized). */
    clst_buf_init(&out, CLST_SIM_EVIDENCE_MAX_SIZE);
    assert_int_equal(clst_evidence_sim_report_create(f->p, &f->id, f->report_data, &out, &err),
                     CLST_OK);
    assert_int_equal(out.size, f->ev.size);
    assert_memory_equal(out.data, f->ev.data, out.size - CLST_SIM_SIGNATURE_SIZE);
    assert_memory_not_equal(out.data + out.size - CLST_SIM_SIGNATURE_SIZE,
                            f->ev.data + out.size - CLST_SIM_SIGNATURE_SIZE,
                            CLST_SIM_SIGNATURE_SIZE);
    clst_buf_cleanup(&out);

    /* Appends to what is there. */
    clst_buf_init(&out, 2 * CLST_SIM_EVIDENCE_MAX_SIZE);
    assert_int_equal(clst_buf_append(&out, "ab", 2), CLST_OK);
    assert_int_equal(clst_evidence_sim_report_create(f->p, &f->id, f->report_data, &out, &err),
                     CLST_OK);
    assert_int_equal(out.size, 2 + f->ev.size);
    assert_memory_equal(out.data, "ab", 2);
    assert_int_equal(fx_verify(f, out.data + 2, out.size - 2, &err), CLST_OK);
    clst_buf_cleanup(&out);

    /* A buffer that cannot take it is left as it was. */
    clst_buf_init(&out, f->ev.size - 1);
    assert_int_equal(clst_buf_append(&out, "x", 1), CLST_OK);
    assert_int_equal(clst_evidence_sim_report_create(f->p, &f->id, f->report_data, &out, &err),
                     CLST_E_LIMIT);
    assert_int_equal(out.size, 1);
    clst_buf_cleanup(&out);

    clst_buf_init(&out, CLST_SIM_EVIDENCE_MAX_SIZE);
    assert_int_equal(clst_evidence_sim_report_create(NULL, &f->id, f->report_data, &out, &err),
                     CLST_E_INVAL);
    assert_int_equal(clst_evidence_sim_report_create(f->p, NULL, f->report_data, &out, &err),
                     CLST_E_INVAL);
    assert_int_equal(clst_evidence_sim_report_create(f->p, &f->id, f->report_data, NULL, &err),
                     CLST_E_INVAL);
    assert_int_equal(out.size, 0);
    clst_buf_cleanup(&out);
}

static void
test_cert_helpers(void **state)
{
    struct fx *f = *state;
    struct clst_err err = {0};
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    uint8_t id[CLST_SIM_PLATFORM_ID_SIZE];
    assert_int_equal(clst_ec_generate(CLST_CURVE_P384, &key), CLST_OK);

    assert_int_equal(evidence_sim_cert_issue(NULL, NULL, key, "x", NULL, false, 0, 1, &cert, &err),
                     CLST_E_INVAL);
    assert_int_equal(evidence_sim_cert_issue(key, NULL, key, "x", NULL, false, 10, 10, &cert, &err),
                     CLST_E_INVAL);
    assert_null(cert);

    /* The root has no platform id. */
    assert_int_equal(evidence_sim_cert_platform_id(f->root, id, &err), CLST_E_VERIFY);

    /* A platform id that is not 32 hex characters, or that appears twice. */
    static const char *const bad_ids[] = {
        "0011",
        "zz112233445566778899aabbccddeeff",
        "00112233445566778899aabbccddee0z",
        "00112233445566778899AABBCCDDEEFF", /* upper case is not the canonical spelling */
        "00112233445566778899aabbccddeeff00",
    };
    for (size_t i = 0; i < sizeof(bad_ids) / sizeof(bad_ids[0]); i++) {
        X509_NAME *name = X509_NAME_new();
        assert_non_null(name);
        assert_int_equal(X509_NAME_add_entry_by_NID(name, NID_serialNumber, MBSTRING_ASC,
                                                    (const unsigned char *)bad_ids[i], -1, -1, 0),
                         1);
        cert = X509_new();
        assert_non_null(cert);
        assert_int_equal(X509_set_subject_name(cert, name), 1);
        assert_int_equal(evidence_sim_cert_platform_id(cert, id, &err), CLST_E_VERIFY);
        X509_free(cert);
        X509_NAME_free(name);
    }
    X509_NAME *name = X509_NAME_new();
    assert_non_null(name);
    for (int k = 0; k < 2; k++) {
        assert_int_equal(X509_NAME_add_entry_by_NID(
                             name, NID_serialNumber, MBSTRING_ASC,
                             (const unsigned char *)"00112233445566778899aabbccddeeff", -1, -1, 0),
                         1);
    }
    cert = X509_new();
    assert_non_null(cert);
    assert_int_equal(X509_set_subject_name(cert, name), 1);
    assert_int_equal(evidence_sim_cert_platform_id(cert, id, &err), CLST_E_VERIFY);
    assert_non_null(strstr(err.msg, "more than one"));
    X509_free(cert);
    X509_NAME_free(name);
    EVP_PKEY_free(key);
}

static int
setup(void **state)
{
    struct fx *f = fx_new();
    if (f == NULL) {
        return -1;
    }
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    fx_free(*state);
    return 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_files_and_modes),
        cmocka_unit_test(test_create_refuses_overwrite),
        cmocka_unit_test(test_create_refuses_open_directory),
        cmocka_unit_test(test_load_refuses_permissions),
        cmocka_unit_test(test_load_refuses_foreign_owner),
        cmocka_unit_test(test_load_refuses_inconsistent),
        cmocka_unit_test(test_load_refuses_bad_contents),
        cmocka_unit_test(test_load_refuses_symlinks),
        cmocka_unit_test(test_report_create),
        cmocka_unit_test(test_cert_helpers),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
