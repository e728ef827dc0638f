/* Helpers shared by the unit tests (not part of libcloister). */
#ifndef CLST_TEST_UTIL_H
#define CLST_TEST_UTIL_H

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cloister/core.h>

#ifndef CLST_VECTORS_DIR
#define CLST_VECTORS_DIR "tests/vectors"
#endif

/* Loads tests/vectors/<rel> as JSON; fails the test (via abort-free NULL) when missing. */
static inline json_t *
tu_load_json(const char *rel)
{
    char path[1024];
    json_error_t jerr;
    int n = snprintf(path, sizeof(path), "%s/%s", CLST_VECTORS_DIR, rel);
    if (n < 0 || (size_t)n >= sizeof(path)) {
        return NULL;
    }
    json_t *j = json_load_file(path, 0, &jerr);
    if (j == NULL) {
        fprintf(stderr, "cannot load %s: %s (line %d)\n", path, jerr.text, jerr.line);
    }
    return j;
}

/* Reads a whole file into a malloc'ed buffer (NUL-terminated); NULL on error. */
static inline unsigned char *
tu_read_file(const char *path, size_t *out_size)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }
    unsigned char *data = NULL;
    size_t size = 0, cap = 0;
    for (;;) {
        if (size + 4096 + 1 > cap) {
            size_t ncap = cap ? cap * 2 : 8192;
            unsigned char *p = realloc(data, ncap);
            if (p == NULL) {
                free(data);
                fclose(f);
                return NULL;
            }
            data = p;
            cap = ncap;
        }
        size_t n = fread(data + size, 1, cap - size - 1, f);
        size += n;
        if (n == 0) {
            break;
        }
    }
    fclose(f);
    data[size] = 0;
    *out_size = size;
    return data;
}

/* Decodes a hex string from a JSON vector into a malloc'ed buffer (size may be 0). */
static inline unsigned char *
tu_hex(const char *hex, size_t *out_size)
{
    struct clst_buf b;
    clst_buf_init(&b, 1u << 24);
    if (clst_hex_decode(hex, strlen(hex), &b) != CLST_OK) {
        clst_buf_cleanup(&b);
        return NULL;
    }
    size_t size = b.size;
    unsigned char *p = clst_buf_steal(&b, &size);
    if (p == NULL) {
        p = malloc(1);
    }
    *out_size = size;
    return p;
}

#endif
