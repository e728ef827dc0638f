/*
 * configfs-tsm collection (src/evidence/configfs_tsm.c) against directories that imitate a report
 * entry. A plain directory cannot generate outblob, so the entry's files are pre-seeded; for the
 * success path inblob and outblob are FIFOs served by a thread that acts as the kernel: it reads
 * what cloister writes to inblob, advances `generation` as the kernel does, then writes outblob
 * (a real SEV-SNP report from tests/vectors). The negative cases: a concurrent writer (generation
 * advanced by more than our writes, or not at all), missing/empty/oversized outblob, another
 * provider, bad names and privlevels, a missing directory, a malformed generation, and removal of
 * the entry cloister created itself.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
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

#include <cloister/evidence.h>

#include "test_util.h"

struct ctx {
    char dir[128];   /* the report directory */
    char entry[192]; /* dir/e1 */
};

static void
put(const char *entry, const char *attr, const void *data, size_t size)
{
    char p[300];
    snprintf(p, sizeof(p), "%s/%s", entry, attr);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, size, f), size);
    assert_int_equal(fclose(f), 0);
}

static void
put_str(const char *entry, const char *attr, const char *s)
{
    put(entry, attr, s, strlen(s));
}

static size_t
get(const char *entry, const char *attr, uint8_t *buf, size_t cap)
{
    char p[300];
    snprintf(p, sizeof(p), "%s/%s", entry, attr);
    FILE *f = fopen(p, "rb");
    assert_non_null(f);
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    return n;
}

static int
setup(void **state)
{
    struct ctx *c = calloc(1, sizeof(*c));
    assert_non_null(c);
    snprintf(c->dir, sizeof(c->dir), "/tmp/tsm-unit-XXXXXX");
    assert_non_null(mkdtemp(c->dir));
    snprintf(c->entry, sizeof(c->entry), "%s/e1", c->dir);
    assert_int_equal(mkdir(c->entry, 0700), 0);
    put_str(c->entry, "provider", "sev_guest\n");
    put_str(c->entry, "generation", "5\n");
    *state = c;
    return 0;
}

static int
teardown(void **state)
{
    struct ctx *c = *state;
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", c->dir);
    assert_int_equal(system(cmd), 0);
    free(c);
    return 0;
}

static void
request(struct clst_tsm_request *r, const struct ctx *c, const char *name)
{
    memset(r, 0, sizeof(*r));
    r->dir = c->dir;
    r->name = name;
    r->provider = "sev_guest";
    for (size_t i = 0; i < CLST_TSM_INBLOB_SIZE; i++) {
        r->inblob[i] = (uint8_t)(0xa0 + i);
    }
    r->privlevel = -1;
}

/* ---- the imitated kernel --------------------------------------------------------------------- */

struct kernel {
    const char *entry;
    uint64_t start_generation;
    uint64_t bump; /* how far generation advances (the writes it saw) */
    uint8_t inblob[128];
    size_t inblob_size;
    uint8_t *report;
    size_t report_size;
};

static void *
kernel_thread(void *arg)
{
    struct kernel *k = arg;
    char p[300], tmp[300], gen[32];
    snprintf(p, sizeof(p), "%s/inblob", k->entry);
    int fd = open(p, O_RDONLY);
    if (fd < 0) {
        return NULL;
    }
    ssize_t n;
    while ((n = read(fd, k->inblob + k->inblob_size, sizeof(k->inblob) - k->inblob_size)) > 0) {
        k->inblob_size += (size_t)n;
    }
    close(fd);
    snprintf(tmp, sizeof(tmp), "%s/generation.tmp", k->entry);
    snprintf(p, sizeof(p), "%s/generation", k->entry);
    FILE *g = fopen(tmp, "w");
    if (g == NULL) {
        return NULL;
    }
    snprintf(gen, sizeof(gen), "%llu\n", (unsigned long long)(k->start_generation + k->bump));
    fputs(gen, g);
    fclose(g);
    if (rename(tmp, p) != 0) {
        return NULL;
    }
    snprintf(p, sizeof(p), "%s/outblob", k->entry);
    fd = open(p, O_WRONLY);
    if (fd < 0) {
        return NULL;
    }
    size_t off = 0;
    while (off < k->report_size && (n = write(fd, k->report + off, k->report_size - off)) > 0) {
        off += (size_t)n;
    }
    close(fd);
    return NULL;
}

static void
fifos(const struct ctx *c)
{
    char p[300];
    snprintf(p, sizeof(p), "%s/inblob", c->entry);
    assert_int_equal(mkfifo(p, 0600), 0);
    snprintf(p, sizeof(p), "%s/outblob", c->entry);
    assert_int_equal(mkfifo(p, 0600), 0);
}

static void
kernel_start(struct kernel *k, const struct ctx *c, uint64_t bump, pthread_t *t)
{
    char p[300];
    memset(k, 0, sizeof(*k));
    k->entry = c->entry;
    k->start_generation = 5;
    k->bump = bump;
    snprintf(p, sizeof(p), "%s/sev-snp/virtee-sev/report_milan.bin", CLST_VECTORS_DIR);
    k->report = tu_read_file(p, &k->report_size);
    assert_non_null(k->report);
    assert_int_equal(pthread_create(t, NULL, kernel_thread, k), 0);
}

/* ---- tests ----------------------------------------------------------------------------------- */

static void
test_report_with_fifo_kernel(void **state)
{
    struct ctx *c = *state;
    struct clst_tsm_request r;
    struct clst_tsm_report out;
    struct clst_err err = {0};
    struct kernel k;
    pthread_t t;
    static const uint8_t certs[] = "certificate table bytes";
    fifos(c);
    put(c->entry, "auxblob", certs, sizeof(certs));
    kernel_start(&k, c, 1, &t);
    request(&r, c, "e1");
    r.want_auxblob = true;
    enum clst_status st = clst_evidence_tsm_get(&r, &out, &err);
    assert_int_equal(pthread_join(t, NULL), 0);
    if (st != CLST_OK) {
        fprintf(stderr, "%s\n", err.msg);
    }
    assert_int_equal(st, CLST_OK);
    /* What cloister wrote to inblob: exactly the 64 bytes, in one piece. */
    assert_int_equal(k.inblob_size, CLST_TSM_INBLOB_SIZE);
    assert_memory_equal(k.inblob, r.inblob, CLST_TSM_INBLOB_SIZE);
    assert_int_equal(out.outblob.size, k.report_size);
    assert_memory_equal(out.outblob.data, k.report, k.report_size);
    assert_int_equal(out.auxblob.size, sizeof(certs));
    assert_memory_equal(out.auxblob.data, certs, sizeof(certs));
    assert_string_equal(out.provider, "sev_guest");
    assert_int_equal(out.generation, 6);
    clst_tsm_report_cleanup(&out);
    /* A named entry is left in place. */
    struct stat st_;
    assert_int_equal(stat(c->entry, &st_), 0);
    free(k.report);
}

static void
test_privlevel_counts_as_a_write(void **state)
{
    struct ctx *c = *state;
    struct clst_tsm_request r;
    struct clst_tsm_report out;
    struct clst_err err = {0};
    struct kernel k;
    pthread_t t;
    uint8_t buf[16];
    fifos(c);
    put_str(c->entry, "privlevel", "");
    kernel_start(&k, c, 2, &t);
    request(&r, c, "e1");
    r.privlevel = 2;
    enum clst_status st = clst_evidence_tsm_get(&r, &out, &err);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(st, CLST_OK);
    assert_int_equal(out.generation, 7);
    assert_int_equal(out.auxblob.size, 0); /* not asked for */
    assert_int_equal(get(c->entry, "privlevel", buf, sizeof(buf)), 2);
    assert_memory_equal(buf, "2\n", 2);
    clst_tsm_report_cleanup(&out);
    free(k.report);
}

static void
test_concurrent_writer(void **state)
{
    struct ctx *c = *state;
    struct clst_tsm_request r;
    struct clst_tsm_report out;
    struct clst_err err = {0};
    struct kernel k;
    pthread_t t;
    fifos(c);
    kernel_start(&k, c, 2, &t); /* someone else wrote once more */
    request(&r, c, "e1");
    enum clst_status st = clst_evidence_tsm_get(&r, &out, &err);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(st, CLST_E_CONFLICT);
    assert_non_null(strstr(err.msg, "generation 5 before, 7 after, expected 6"));
    free(k.report);
}

static void
test_plain_files(void **state)
{
    struct ctx *c = *state;
    struct clst_tsm_request r;
    struct clst_tsm_report out;
    struct clst_err err = {0};
    uint8_t buf[128];
    char p[300];

    /* Missing outblob: inblob was written (exactly 64 bytes), then the read fails. */
    put_str(c->entry, "inblob", "");
    request(&r, c, "e1");
    assert_int_equal(clst_evidence_tsm_get(&r, &out, &err), CLST_E_NOTFOUND);
    assert_non_null(strstr(err.msg, "outblob"));
    assert_int_equal(get(c->entry, "inblob", buf, sizeof(buf)), CLST_TSM_INBLOB_SIZE);
    assert_memory_equal(buf, r.inblob, CLST_TSM_INBLOB_SIZE);

    /* Empty outblob. */
    put_str(c->entry, "outblob", "");
    assert_int_equal(clst_evidence_tsm_get(&r, &out, &err), CLST_E_IO);
    assert_non_null(strstr(err.msg, "empty"));

    /* Oversized outblob (one byte past the kernel's maximum). */
    uint8_t *big = calloc(1, CLST_TSM_OUTBLOB_MAX + 1);
    assert_non_null(big);
    put(c->entry, "outblob", big, CLST_TSM_OUTBLOB_MAX + 1);
    assert_int_equal(clst_evidence_tsm_get(&r, &out, &err), CLST_E_LIMIT);
    /* Exactly the maximum is fine as far as size goes; a generation that did not advance (a
     * plain file, or a writer that reset it) is a conflict. */
    put(c->entry, "outblob", big, CLST_TSM_OUTBLOB_MAX);
    assert_int_equal(clst_evidence_tsm_get(&r, &out, &err), CLST_E_CONFLICT);
    free(big);

    /* Oversized auxblob. */
    put_str(c->entry, "outblob", "report");
    big = calloc(1, CLST_TSM_AUXBLOB_MAX + 1);
    assert_non_null(big);
    put(c->entry, "auxblob", big, CLST_TSM_AUXBLOB_MAX + 1);
    r.want_auxblob = true;
    assert_int_equal(clst_evidence_tsm_get(&r, &out, &err), CLST_E_LIMIT);
    assert_non_null(strstr(err.msg, "auxblob"));
    free(big);
    r.want_auxblob = false;

    /* A malformed generation. */
    const char *bad_gen[] = {"abc\n", "", "12 3\n", "99999999999999999999999\n", "-1\n"};
    for (size_t i = 0; i < sizeof(bad_gen) / sizeof(bad_gen[0]); i++) {
        put_str(c->entry, "generation", bad_gen[i]);
        assert_int_equal(clst_evidence_tsm_get(&r, &out, &err), CLST_E_MALFORMED);
    }
    put_str(c->entry, "generation", "5\n");

    /* Another provider: refused before inblob is written. */
    put_str(c->entry, "provider", "tdx_guest\n");
    put_str(c->entry, "inblob", "");
    assert_int_equal(clst_evidence_tsm_get(&r, &out, &err), CLST_E_VERIFY);
    assert_non_null(strstr(err.msg, "tdx_guest"));
    assert_int_equal(get(c->entry, "inblob", buf, sizeof(buf)), 0);
    /* Any provider when none is asked for (the plain files then conflict on generation). */
    r.provider = NULL;
    assert_int_equal(clst_evidence_tsm_get(&r, &out, &err), CLST_E_CONFLICT);

    /* No provider attribute at all. */
    snprintf(p, sizeof(p), "%s/provider", c->entry);
    assert_int_equal(unlink(p), 0);
    assert_int_equal(clst_evidence_tsm_get(&r, &out, &err), CLST_E_NOTFOUND);
}

static void
test_bad_requests(void **state)
{
    struct ctx *c = *state;
    struct clst_tsm_request r;
    struct clst_tsm_report out;
    struct clst_err err = {0};
    const char *names[] = {
        "..", ".",   "a/b",
        "",   "x y", "0123456789012345678901234567890123456789012345678901234567890123456"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        request(&r, c, names[i]);
        assert_int_equal(clst_evidence_tsm_get(&r, &out, &err), CLST_E_INVAL);
    }
    request(&r, c, "e1");
    r.privlevel = 4;
    assert_int_equal(clst_evidence_tsm_get(&r, &out, &err), CLST_E_INVAL);
    r.privlevel = -2;
    assert_int_equal(clst_evidence_tsm_get(&r, &out, &err), CLST_E_INVAL);
    assert_int_equal(clst_evidence_tsm_get(NULL, &out, &err), CLST_E_INVAL);
    /* No such report directory. */
    request(&r, c, NULL);
    r.dir = "/nonexistent/tsm/report";
    assert_int_equal(clst_evidence_tsm_get(&r, &out, &err), CLST_E_NOTFOUND);
    assert_non_null(strstr(err.msg, "configfs"));
}

static void
test_created_entry_is_removed(void **state)
{
    struct ctx *c = *state;
    struct clst_tsm_request r;
    struct clst_tsm_report out;
    struct clst_err err = {0};
    char other[300];
    snprintf(other, sizeof(other), "%s/fresh", c->dir);
    assert_int_equal(mkdir(other, 0700), 0);
    request(&r, c, NULL);
    r.dir = other;
    /* A plain directory: the new entry has no attributes; it is removed again. */
    assert_int_equal(clst_evidence_tsm_get(&r, &out, &err), CLST_E_NOTFOUND);
    assert_non_null(strstr(err.msg, "provider"));
    assert_int_equal(rmdir(other), 0); /* empty: the entry is gone */
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_report_with_fifo_kernel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_privlevel_counts_as_a_write, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_writer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plain_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_created_entry_is_removed, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
