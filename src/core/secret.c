/* Secret memory: OpenSSL's secure heap when initialized, otherwise private mappings that are
 * mlock'ed (best effort) and excluded from core dumps. Always wiped before release. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include <cloister/core.h>

/* Each allocation starts with a header recording its total size and origin, so it can be freed
 * and wiped correctly whatever size the caller remembers. */
#define HDR_SIZE      16
#define ORIGIN_SECURE 1u
#define ORIGIN_MMAP   2u

void
clst_wipe(void *p, size_t size)
{
    if (p != NULL && size > 0) {
        OPENSSL_cleanse(p, size);
    }
}

enum clst_status
clst_secret_heap_init(size_t size)
{
    if (CRYPTO_secure_malloc_initialized()) {
        return CLST_OK;
    }
    /* OpenSSL 3.0 OPENSSL_assert()s (aborts) unless size is a non-zero power of two. */
    if (size == 0 || (size & (size - 1)) != 0) {
        return CLST_E_INVAL;
    }
    /* Returns 1 on success, 2 when mlock failed (still usable, pages may swap). */
    int r = CRYPTO_secure_malloc_init(size, 32);
    if (r == 1 || r == 2) {
        return CLST_OK;
    }
    return CLST_E_NOMEM;
}

void *
clst_secret_alloc_raw(size_t size)
{
    if (size > SIZE_MAX / 2) {
        return NULL;
    }
    size_t total = size + HDR_SIZE;
    uint8_t *p;
    uint32_t origin;
    /* The secure heap is fixed-size; a request it cannot satisfy falls back to a locked,
     * non-dumpable private mapping rather than failing. */
    p = CRYPTO_secure_malloc_initialized() ? OPENSSL_secure_zalloc(total) : NULL;
    if (p != NULL) {
        origin = ORIGIN_SECURE;
    } else {
        long page = sysconf(_SC_PAGESIZE);
        size_t ps = page > 0 ? (size_t)page : 4096;
        total = (total + ps - 1) / ps * ps;
        void *m = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED) {
            return NULL;
        }
        /* Best effort: RLIMIT_MEMLOCK may be small for unprivileged users. */
        (void)mlock(m, total);
        (void)madvise(m, total, MADV_DONTDUMP);
        p = m;
        origin = ORIGIN_MMAP;
    }
    memcpy(p, &total, sizeof(total));
    memcpy(p + sizeof(total), &origin, sizeof(origin));
    return p + HDR_SIZE;
}

void
clst_secret_free_raw(void *ptr, size_t size)
{
    (void)size; /* the header knows the real size */
    if (ptr == NULL) {
        return;
    }
    uint8_t *p = (uint8_t *)ptr - HDR_SIZE;
    size_t total;
    uint32_t origin;
    memcpy(&total, p, sizeof(total));
    memcpy(&origin, p + sizeof(total), sizeof(origin));
    OPENSSL_cleanse(p, total);
    if (origin == ORIGIN_SECURE) {
        OPENSSL_secure_free(p);
    } else {
        (void)munlock(p, total);
        (void)munmap(p, total);
    }
}

enum clst_status
clst_secret_new(size_t size, struct clst_secret **out)
{
    struct clst_secret *s = malloc(sizeof(*s));
    if (s == NULL) {
        return CLST_E_NOMEM;
    }
    s->ptr = clst_secret_alloc_raw(size);
    if (s->ptr == NULL) {
        free(s);
        return CLST_E_NOMEM;
    }
    s->size = size;
    *out = s;
    return CLST_OK;
}

enum clst_status
clst_secret_from(const void *data, size_t size, struct clst_secret **out)
{
    struct clst_secret *s;
    enum clst_status rc = clst_secret_new(size, &s);
    if (rc != CLST_OK) {
        return rc;
    }
    if (size > 0) {
        memcpy(s->ptr, data, size);
    }
    *out = s;
    return CLST_OK;
}

void
clst_secret_free(struct clst_secret *s)
{
    if (s == NULL) {
        return;
    }
    clst_secret_free_raw(s->ptr, s->size);
    free(s);
}

bool
clst_ct_equal(const void *a, const void *b, size_t size)
{
    return CRYPTO_memcmp(a, b, size) == 0;
}
