/* Gives a libFuzzer harness a main() that replays every file of the corpus directories (or
 * files) named on the command line, so CI re-runs each corpus without clang's fuzzer. Exits
 * non-zero when no input was replayed, so an empty corpus cannot pass unnoticed. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "replay: cannot open %s\n", path);
        return -1;
    }
    uint8_t *data = NULL;
    size_t size = 0, cap = 0;
    for (;;) {
        if (size == cap) {
            cap = cap ? cap * 2 : 4096;
            uint8_t *p = realloc(data, cap);
            if (p == NULL) {
                free(data);
                fclose(f);
                return -1;
            }
            data = p;
        }
        size_t n = fread(data + size, 1, cap - size, f);
        if (n == 0) {
            break;
        }
        size += n;
    }
    fclose(f);
    /* Hand the harness an exact-size copy so ASan catches reads past the end. */
    uint8_t *exact = malloc(size ? size : 1);
    if (exact == NULL) {
        free(data);
        return -1;
    }
    if (size > 0) {
        memcpy(exact, data, size);
    }
    free(data);
    LLVMFuzzerTestOneInput(exact, size);
    free(exact);
    return 0;
}

int
main(int argc, char **argv)
{
    long count = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "replay: %s does not exist\n", argv[i]);
            return 1;
        }
        if (!S_ISDIR(st.st_mode)) {
            if (replay_file(argv[i]) != 0) {
                return 1;
            }
            count++;
            continue;
        }
        DIR *d = opendir(argv[i]);
        if (d == NULL) {
            return 1;
        }
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.') {
                continue;
            }
            char path[4096];
            int n = snprintf(path, sizeof(path), "%s/%s", argv[i], e->d_name);
            if (n < 0 || (size_t)n >= sizeof(path)) {
                closedir(d);
                return 1;
            }
            if (replay_file(path) != 0) {
                closedir(d);
                return 1;
            }
            count++;
        }
        closedir(d);
    }
    printf("replayed %ld inputs\n", count);
    return count > 0 ? 0 : 1;
}
