/*
 * Shared helpers of the enclave unit tests: where the built loader and test enclaves are, a
 * scratch directory, signer keys, signed copies of the test enclaves and a sim platform.
 *
 * The loader (cloister-enclave-loader) and the enclaves (hello-enclave.so, misbehave-enclave.so)
 * are build outputs; they are looked up in $CLST_BUILD_DIR (set by ctest), then beside the test
 * executable. A missing one fails the test: nothing is skipped.
 */
#ifndef CLST_ENCL_FIXTURE_H
#define CLST_ENCL_FIXTURE_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#define fx_call_expect(...) fx_call_expect_at(__LINE__, __VA_ARGS__)

#endif
#include <dirent.h>
#include <limits.h>
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

#include <cloister/crypto.h>
#include <cloister/evidence.h>
#include <cloister/host.h>

#include "enclave/enclave_int.h"

/* snprintf that fails the test instead of truncating (paths and messages in tests). */
static inline void fx_fmt(char *out, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static inline void
fx_fmt(char *out, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, cap, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= cap) {
        fail_msg("fx_fmt: %d bytes do not fit in %zu", n, cap);
    }
}

/* Fills out with <build dir>/<name>; returns 0 when the file exists. */
static inline int
fx_build_file(const char *name, char *out, size_t cap)
{
    const char *dir = getenv("CLST_BUILD_DIR");
    char exe[PATH_MAX];
    if (dir != NULL && dir[0] != '\0') {
        fx_fmt(out, cap, "%s/%s", dir, name);
        if (access(out, R_OK) == 0) {
            return 0;
        }
    }
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0) {
        return -1;
    }
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash != NULL) {
        *slash = '\0';
    }
    fx_fmt(out, cap, "%s/%s", exe, name);
    return access(out, R_OK) == 0 ? 0 : -1;
}

static inline void
fx_require_build_file(const char *name, char *out, size_t cap)
{
    if (fx_build_file(name, out, cap) != 0) {
        fail_msg("%s is not built: build the cloister-enclave-loader, hello-enclave and "
                 "misbehave-enclave targets (or set CLST_BUILD_DIR)",
                 name);
    }
}

/* Options pointing at the built loader. */
static inline void
fx_options(struct clst_host_options *o)
{
    static char loader[PATH_MAX];
    clst_host_options_init(o);
    fx_require_build_file(ENCL_LOADER_NAME, loader, sizeof(loader));
    o->loader_path = loader;
    o->call_timeout_ms = 20000;
}

/* A fresh directory under $TMPDIR (mode 0700). */
static inline void
fx_tmpdir(char *out, size_t cap)
{
    const char *t = getenv("TMPDIR");
    fx_fmt(out, cap, "%s/clst-encl-XXXXXX", (t != NULL && t[0] != '\0') ? t : "/tmp");
    if (mkdtemp(out) == NULL) {
        fail_msg("mkdtemp failed");
    }
}

static inline void
fx_rmdir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char path[PATH_MAX];
    if (d == NULL) {
        return;
    }
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) {
            continue;
        }
        fx_fmt(path, sizeof(path), "%s/%s", dir, de->d_name);
        struct stat st;
        if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
            fx_rmdir(path);
        } else {
            unlink(path);
        }
    }
    closedir(d);
    rmdir(dir);
}

static inline EVP_PKEY *
fx_ec_key(enum clst_curve curve)
{
    EVP_PKEY *k = NULL;
    assert_int_equal(clst_ec_generate(curve, &k), CLST_OK);
    return k;
}

/* Signs build output `module` into dir/out_name with the given identity fields. */
static inline void
fx_sign(const char *module, const char *dir, const char *out_name, EVP_PKEY *key, uint16_t product,
        uint16_t svn, bool debug, uint32_t heap_mib, char *out_path, size_t cap)
{
    char src[PATH_MAX];
    struct clst_err err = {0};
    struct clst_host_sign_params p = {product, svn, debug, heap_mib};
    fx_require_build_file(module, src, sizeof(src));
    fx_fmt(out_path, cap, "%s/%s", dir, out_name);
    if (clst_host_image_sign(src, out_path, key, &p, NULL, &err) != CLST_OK) {
        fail_msg("signing %s: %s", module, err.msg);
    }
}

/* Creates an enclave or fails the test with the message. */
static inline struct clst_host_enclave *
fx_create(const char *image, const struct clst_host_options *o)
{
    struct clst_host_enclave *e = NULL;
    struct clst_err err = {0};
    if (clst_host_enclave_create(image, o, &e, &err) != CLST_OK) {
        fail_msg("creating %s: %s", image, err.msg);
    }
    return e;
}

/* Calls and expects `want`; on failure the message must contain `msg_part` (when not NULL). */
static inline void
fx_call_expect_at(int line, struct clst_host_enclave *e, const char *entry, const void *in,
                  size_t in_size, void *out, size_t out_cap, size_t *out_size,
                  enum clst_status want, const char *msg_part)
{
    struct clst_err err = {0};
    size_t n = 0;
    enum clst_status st = clst_host_enclave_call(e, entry, in, in_size, out, out_cap, &n, &err);
    if (st != want) {
        fail_msg("line %d: %s: want %s, got %s: %s", line, entry, clst_status_str(want),
                 clst_status_str(st), err.msg);
    }
    if (msg_part != NULL && strstr(err.msg, msg_part) == NULL) {
        fail_msg("line %d: %s: message '%s' lacks '%s'", line, entry, err.msg, msg_part);
    }
    if (out_size != NULL) {
        *out_size = n;
    }
}

#define fx_call_expect(...) fx_call_expect_at(__LINE__, __VA_ARGS__)

#endif
