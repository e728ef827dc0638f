/*
 * bench_audit: what one durable audit batch costs on the disk under DIR.
 *
 *   bench_audit [DIR] [COUNT]      (default: /var/tmp, 2000 batches per row)
 *
 * Rows, each COUNT batches of one 400-byte record, wall and CPU time per batch:
 *   append        write() with O_APPEND + fdatasync: the file grows, so each sync also writes
 *                 the inode (the reference, measured in the same run);
 *   overwrite     pwrite() into zeros written ahead + fdatasync: what src/audit/log.c does;
 *   clst_audit    clst_audit_append() from one thread (record formatting, chain hash, the room
 *                 written ahead, one sync per record since nothing else is queued).
 * Run it on the file system of the audit log; the figures go to docs/benchmarks.md.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cloister/audit.h>

#define RECORD_SIZE 400

static double
wall_now(void)
{
    return (double)clst_monotonic_ns() / 1e9;
}

static double
cpu_now(void)
{
    struct rusage r;
    getrusage(RUSAGE_SELF, &r);
    return (double)(r.ru_utime.tv_sec + r.ru_stime.tv_sec) +
           (double)(r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
}

static void
row(const char *name, double wall, double cpu, int count)
{
    printf("%-12s %9.0f %9.0f %10.0f\n", name, wall * 1e6 / count, cpu * 1e6 / count, count / wall);
}

/* One raw row: append (zeros == 0) or overwrite of `zeros` bytes written ahead. */
static int
raw_row(const char *dir, int count, size_t zeros)
{
    char path[4096], rec[RECORD_SIZE];
    snprintf(path, sizeof(path), "%s/bench-audit-sync.tmp", dir);
    (void)unlink(path);
    int fd =
        open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | (zeros == 0 ? O_APPEND : 0), 0600);
    if (fd < 0) {
        fprintf(stderr, "bench_audit: cannot create %s: %s\n", path, strerror(errno));
        return 1;
    }
    memset(rec, 'x', sizeof(rec));
    rec[sizeof(rec) - 1] = '\n';
    int rc = 0;
    if (zeros > 0) {
        char *z = calloc(1, 1 << 20);
        for (size_t done = 0; z != NULL && done < zeros && rc == 0; done += 1 << 20) {
            rc = write(fd, z, 1 << 20) == 1 << 20 ? 0 : 1;
        }
        free(z);
        rc = rc != 0 || z == NULL || fdatasync(fd) != 0;
    }
    double w0 = wall_now(), c0 = cpu_now();
    for (int i = 0; i < count && rc == 0; i++) {
        ssize_t n = zeros == 0 ? write(fd, rec, sizeof(rec))
                               : pwrite(fd, rec, sizeof(rec), (off_t)i * (off_t)sizeof(rec));
        rc = n != (ssize_t)sizeof(rec) || fdatasync(fd) != 0;
    }
    if (rc == 0) {
        row(zeros == 0 ? "append" : "overwrite", wall_now() - w0, cpu_now() - c0, count);
    } else {
        fprintf(stderr, "bench_audit: writing %s failed: %s\n", path, strerror(errno));
    }
    close(fd);
    unlink(path);
    return rc;
}

static int
library_row(const char *dir, int count)
{
    char logdir[2048], key[2048], cmd[4200];
    struct clst_audit_config cfg;
    struct clst_audit *a = NULL;
    struct clst_err err;
    snprintf(logdir, sizeof(logdir), "%s/bench-audit-sync.d", dir);
    snprintf(key, sizeof(key), "%s/bench-audit-sync.key", dir);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", logdir, key);
    if (system(cmd) != 0) {
        return 1;
    }
    clst_audit_config_init(&cfg);
    cfg.dir = logdir;
    cfg.key_path = key;
    clst_err_clear(&err);
    if (clst_audit_open(&cfg, &a, &err) != CLST_OK) {
        fprintf(stderr, "bench_audit: %s\n", err.msg);
        return 1;
    }
    char members[RECORD_SIZE];
    snprintf(members, sizeof(members),
             "\"type\":\"outcome\",\"op\":\"keys.encrypt\",\"method\":\"POST\",\"route\":"
             "\"/keys/{name}/{version}/encrypt\",\"identity\":\"admin\",\"client\":\"127.0.0.1\","
             "\"name\":\"bench-aes\",\"status\":200,\"result\":\"ok\"");
    int rc = 0;
    double w0 = wall_now(), c0 = cpu_now();
    for (int i = 0; i < count && rc == 0; i++) {
        rc = clst_audit_append(a, members, 0, NULL, &err) != CLST_OK;
    }
    double w = wall_now() - w0, c = cpu_now() - c0;
    if (rc == 0) {
        row("clst_audit", w, c, count);
    } else {
        fprintf(stderr, "bench_audit: append: %s\n", err.msg);
    }
    rc |= clst_audit_close(a, &err) != CLST_OK;
    if (system(cmd) != 0) {
        rc = 1;
    }
    return rc;
}

int
main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "/var/tmp";
    int count = argc > 2 ? atoi(argv[2]) : 2000;
    if (argc > 3 || count <= 0 || count > 1000000 || (argc > 1 && strcmp(argv[1], "-h") == 0)) {
        fprintf(stderr, "usage: bench_audit [DIR] [COUNT (1..1000000)]\n");
        return 2;
    }
    printf("one %d-byte record per batch, %d batches, in %s\n", RECORD_SIZE, count, dir);
    printf("%-12s %9s %9s %10s\n", "row", "wall us", "cpu us", "batches/s");
    size_t zeros = ((size_t)count * RECORD_SIZE + (1u << 20)) & ~(size_t)((1u << 20) - 1);
    int rc = raw_row(dir, count, 0);
    rc |= raw_row(dir, count, zeros);
    rc |= library_row(dir, count);
    return rc;
}
