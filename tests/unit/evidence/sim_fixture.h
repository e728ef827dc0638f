/*
 * Shared by the evidence unit tests: a sim platform in a temporary directory, its keys loaded
 * back for building deliberately bad evidence, and helpers to sign and verify.
 * Include after <cmocka.h>.
 */
#ifndef CLST_TEST_SIM_FIXTURE_H
#define CLST_TEST_SIM_FIXTURE_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/x509.h>

#include <cloister/crypto.h>
#include <cloister/evidence.h>

#include "evidence/evidence_int.h"
#include "test_util.h"

struct fx {
    char dir[256];
    int64_t now;
    struct clst_sim_platform *p;
    STACK_OF(X509) *roots;  /* this platform's root only */
    EVP_PKEY *root_key;     /* loaded from root-key.pem */
    EVP_PKEY *platform_key; /* loaded from platform-key.pem */
    X509 *root;             /* owned by p */
    struct clst_sim_identity id;
    uint8_t report_data[CLST_SIM_REPORT_DATA_SIZE];
    struct clst_buf ev; /* valid evidence for id and report_data */
};

static inline int
fx_path(char *out, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(out, cap, "%s/%s", dir, name);
    return (n < 0 || (size_t)n >= cap) ? -1 : 0;
}

/* Removes a flat directory (the platform directories have no subdirectories). */
static inline void
fx_rm_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d != NULL) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
                continue;
            }
            char path[512];
            if (fx_path(path, sizeof(path), dir, e->d_name) == 0) {
                unlink(path);
            }
        }
        closedir(d);
    }
    rmdir(dir);
}

static inline int
fx_load_key(const char *dir, const char *name, EVP_PKEY **out)
{
    char path[512];
    if (fx_path(path, sizeof(path), dir, name) != 0) {
        return -1;
    }
    return clst_pkey_load_pem_file(path, out, NULL) == CLST_OK ? 0 : -1;
}

/* A fresh temporary directory path (the directory itself is created by the platform). */
static inline int
fx_tmpdir(char *out, size_t cap)
{
    const char *base = getenv("TMPDIR");
    if (base == NULL || base[0] == '\0') {
        base = "/tmp";
    }
    int n = snprintf(out, cap, "%s/clst-evid-XXXXXX", base);
    if (n < 0 || (size_t)n >= cap || mkdtemp(out) == NULL) {
        return -1;
    }
    return 0;
}

static inline void
fx_free(struct fx *f)
{
    if (f == NULL) {
        return;
    }
    clst_buf_cleanup(&f->ev);
    sk_X509_pop_free(f->roots, X509_free);
    EVP_PKEY_free(f->root_key);
    EVP_PKEY_free(f->platform_key);
    clst_evidence_sim_platform_free(f->p);
    fx_rm_dir(f->dir);
    free(f);
}

static inline struct fx *
fx_new(void)
{
    struct fx *f = calloc(1, sizeof(*f));
    if (f == NULL || fx_tmpdir(f->dir, sizeof(f->dir)) != 0) {
        free(f);
        return NULL;
    }
    f->now = clst_clock_now(clst_clock_system());
    clst_buf_init(&f->ev, CLST_SIM_EVIDENCE_MAX_SIZE);
    if (clst_evidence_sim_platform_create(f->dir, f->now, false, NULL) != CLST_OK ||
        clst_evidence_sim_platform_load(f->dir, &f->p, NULL) != CLST_OK ||
        fx_load_key(f->dir, CLST_SIM_ROOT_KEY_FILE, &f->root_key) != 0 ||
        fx_load_key(f->dir, CLST_SIM_PLATFORM_KEY_FILE, &f->platform_key) != 0) {
        fx_free(f);
        return NULL;
    }
    f->root = clst_evidence_sim_platform_root(f->p);
    f->roots = sk_X509_new_null();
    if (f->roots == NULL || X509_up_ref(f->root) != 1) {
        fx_free(f);
        return NULL;
    }
    if (sk_X509_push(f->roots, f->root) <= 0) {
        X509_free(f->root);
        fx_free(f);
        return NULL;
    }
    for (size_t i = 0; i < sizeof(f->id.mrenclave); i++) {
        f->id.mrenclave[i] = (uint8_t)(0xA0 + i);
    }
    for (size_t i = 0; i < sizeof(f->id.mrsigner); i++) {
        f->id.mrsigner[i] = (uint8_t)(0x10 + i);
    }
    f->id.product_id = 0x1234;
    f->id.svn = 7;
    for (size_t i = 0; i < sizeof(f->report_data); i++) {
        f->report_data[i] = (uint8_t)(0xFF - i);
    }
    if (clst_evidence_sim_report_create(f->p, &f->id, f->report_data, &f->ev, NULL) != CLST_OK) {
        fx_free(f);
        return NULL;
    }
    return f;
}

/* An input for evidence bytes, with this platform's root at the fixture's time. */
static inline struct clst_evidence_input
fx_input(const struct fx *f, const uint8_t *ev, size_t size)
{
    struct clst_evidence_input in;
    memset(&in, 0, sizeof(in));
    in.evidence = ev;
    in.evidence_size = size;
    in.roots = f->roots;
    in.at = f->now;
    return in;
}

/* Verifies with the fixture's defaults; returns the status and frees any claims. */
static inline enum clst_status
fx_verify(const struct fx *f, const uint8_t *ev, size_t size, struct clst_err *err)
{
    struct clst_evidence_input in = fx_input(f, ev, size);
    json_t *claims = NULL;
    enum clst_status rc = clst_evidence_verify(CLST_EVIDENCE_SIM, &in, &claims, err);
    if ((rc == CLST_OK) != (claims != NULL)) {
        rc = CLST_E_INTERNAL; /* claims must exist exactly on success */
    }
    json_decref(claims);
    return rc;
}

/* The report fields of the fixture's valid evidence. */
static inline struct clst_sim_report
fx_report(const struct fx *f)
{
    struct clst_sim_report r;
    memset(&r, 0, sizeof(r));
    r.version = CLST_SIM_VERSION;
    r.sig_alg = CLST_SIM_SIG_ALG_ES384;
    r.flags = f->id.debug ? CLST_SIM_FLAG_DEBUG : 0;
    r.product_id = f->id.product_id;
    r.svn = f->id.svn;
    memcpy(r.mrenclave, f->id.mrenclave, sizeof(r.mrenclave));
    memcpy(r.mrsigner, f->id.mrsigner, sizeof(r.mrsigner));
    memcpy(r.platform_id, clst_evidence_sim_platform_id(f->p), sizeof(r.platform_id));
    memcpy(r.report_data, f->report_data, sizeof(r.report_data));
    return r;
}

/* DER of a certificate into a malloc'ed buffer. */
static inline uint8_t *
fx_der(X509 *cert, size_t *out_size)
{
    int n = i2d_X509(cert, NULL);
    if (n <= 0) {
        return NULL;
    }
    uint8_t *der = malloc((size_t)n);
    uint8_t *p = der;
    if (der == NULL || i2d_X509(cert, &p) != n) {
        free(der);
        return NULL;
    }
    *out_size = (size_t)n;
    return der;
}

/* tbs || ECDSA(key, SHA-384, raw) of tbs, into out (initialized by the caller). */
static inline enum clst_status
fx_sign_ecdsa(EVP_PKEY *key, enum clst_hash h, enum clst_sig_format fmt, const struct clst_buf *tbs,
              struct clst_buf *out)
{
    struct clst_buf sig;
    clst_buf_init(&sig, 1024);
    enum clst_status rc = clst_ecdsa_sign(key, h, fmt, tbs->data, tbs->size, &sig);
    if (rc == CLST_OK) {
        /* Pad or cut to the field's size: the format has exactly 96 signature bytes. */
        uint8_t field[CLST_SIM_SIGNATURE_SIZE];
        memset(field, 0, sizeof(field));
        memcpy(field, sig.data, sig.size < sizeof(field) ? sig.size : sizeof(field));
        rc = clst_buf_append(out, tbs->data, tbs->size);
        if (rc == CLST_OK) {
            rc = clst_buf_append(out, field, sizeof(field));
        }
    }
    clst_buf_cleanup(&sig);
    return rc;
}

/* Encodes report r with certificate `cert` and signs it with `key` (P-384 SHA-384 raw). */
static inline enum clst_status
fx_build(const struct clst_sim_report *r, X509 *cert, EVP_PKEY *key, struct clst_buf *out)
{
    size_t der_size = 0;
    uint8_t *der = fx_der(cert, &der_size);
    struct clst_buf tbs;
    clst_buf_init(&tbs, CLST_SIM_EVIDENCE_MAX_SIZE);
    enum clst_status rc =
        der != NULL ? evidence_sim_encode_tbs(r, der, der_size, &tbs) : CLST_E_INTERNAL;
    if (rc == CLST_OK) {
        rc = fx_sign_ecdsa(key, CLST_HASH_SHA384, CLST_SIG_RAW, &tbs, out);
    }
    clst_buf_cleanup(&tbs);
    free(der);
    return rc;
}

/* The fixture's platform certificate (a new reference; X509_free it). */
static inline X509 *
fx_platform_cert(const struct fx *f)
{
    char path[512];
    size_t size = 0;
    X509 *cert = NULL;
    if (fx_path(path, sizeof(path), f->dir, CLST_SIM_PLATFORM_FILE) != 0) {
        return NULL;
    }
    unsigned char *pem = tu_read_file(path, &size);
    if (pem != NULL) {
        clst_x509_from_pem(pem, size, &cert, NULL);
    }
    free(pem);
    return cert;
}

#endif
