/*
 * The audit log writer: group commit, led by the appenders themselves.
 *
 * Appenders queue a waiter (on their own stack). When no batch is being written, the appender
 * becomes the leader: it takes everything queued, gives it sequence numbers and chain hashes,
 * adds a signed checkpoint every `checkpoint_every` records, writes the batch with one write loop
 * and one fdatasync, and marks the batch's waiters finished. Appenders that arrive meanwhile wait
 * on their own futex word; when the leader is done it hands the lead to the first of them. So N
 * concurrent requests cost about one sync, and a batch costs no wake-up of a separate writer
 * thread (each wake-up is expensive on a virtual machine and slow on a loaded one).
 * Asynchronous appends (the server's) are led by a writer thread instead. Before it leads a
 * batch it may hold it, for at most the commit delay, while callers have said that an append is
 * coming (clst_audit_expect_begin: a request whose handler is running): PostgreSQL's
 * commit_delay with commit_siblings, except that the wait ends as soon as they are all queued.
 *
 * Failure is sticky: when a write or sync fails, the file is cut back to its size before the
 * batch (best effort, so the chain on disk stays whole), every waiter of the batch gets
 * CLST_E_IO, and every later append fails at once. Only a restart (which re-reads the file's
 * last record) resumes logging; nothing is recorded, so nothing may change, in between.
 *
 * Room written ahead: the current file ends in zero bytes written ahead of the records, at
 * least `reserve` of them, and batches overwrite those zeros with pwrite. An append changes the
 * file's size, so its fdatasync also writes the inode: one more synchronous device write per
 * batch (bench/audit in docs/benchmarks.md: an append costs about 1.6 times the CPU and 1.4
 * times the wall time of an overwrite per sync). Overwriting written blocks needs no new blocks
 * (where the file system writes in place: warn_copy_on_write), so the zeros are also the space
 * reserve of a full disk (keep_room). A clean close and a rotation cut the file back to its last
 * record; after a crash the zeros stay, and the readers (open_tail, verify.c, `cloister audit
 * tail`) take zero bytes after the last record as the end of the data. Zeros before a record are
 * damage (a power loss that kept only some pages of the last batch): open_tail refuses them.
 */
#define _GNU_SOURCE /* pwrite */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/vfs.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "audit/audit_int.h"

/* A waiter's state word: waiting, asked to lead the next batch, or finished (st and seq set). */
enum { W_WAITING = 0, W_LEAD = 1, W_FINISHED = 2 };

/*
 * One queued append, on its appender's stack. State changes happen under the log's lock; the
 * appender also reads its state without the lock while it sleeps on it (a futex word), and the
 * leader writes st and seq before it stores W_FINISHED (release) and wakes the word. A wake-up
 * that arrives after the appender has returned hits a dead stack address: harmless, futex
 * wake-ups may always be spurious.
 */
struct waiter {
    struct waiter *next;
    const char *members;
    uint64_t seq;
    enum clst_status st;
    bool reserved; /* CLST_AUDIT_RESERVED */
    bool no_space; /* refused for want of space (not sticky) */
    _Atomic uint32_t state;
    /* Asynchronous appends (clst_audit_append_async): the waiter and its copy of the members
     * are on the heap; the leader calls done() instead of waking a thread, then frees it. */
    clst_audit_done_fn done;
    void *done_ctx;
};

/* Sleeps while *word == expected, for at most ns nanoseconds (0: no limit); may wake early. */
static void
futex_wait(_Atomic uint32_t *word, uint32_t expected, uint64_t ns)
{
    struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000u),
                          .tv_nsec = (long)(ns % 1000000000u)};
    (void)syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_PRIVATE, expected, ns != 0 ? &ts : NULL,
                  NULL, 0);
}

static void
futex_wake(_Atomic uint32_t *word)
{
    (void)syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

struct clst_audit {
    pthread_mutex_t lock;
    pthread_cond_t idle; /* close waits here for the last batch */
    pthread_cond_t work; /* the writer thread waits here (asynchronous appends only) */
    pthread_t thread;
    bool thread_started, thread_stop;
    /* Appends expected soon (clst_audit_expect_begin), and whether the writer thread sleeps on
     * that count (a futex word) until it drops to zero or the commit delay has passed. */
    _Atomic uint32_t expected;
    _Atomic uint32_t holding;
    uint64_t commit_delay_ns;
    struct waiter *head, *tail;
    uint64_t queued;
    bool queued_sync; /* a thread waits in the queue (clst_audit_append): never held */
    bool stop, failed;
    bool writing; /* a leader is writing a batch */
    char fail_msg[160];
    struct clst_audit_stats stats;
    void (*sink)(void *ctx, const char *name, double value);
    void *sink_ctx;

    /* The writer's state: the current leader only (writing), or open/close. */
    struct audit_key key;
    char *dir;
    int fd, dir_fd;
    char file[AUDIT_NAME_MAX];
    uint64_t file_size, max_size, every, since_checkpoint;
    uint64_t seq; /* the last durable record */
    uint64_t zero_end; /* bytes in the file: file_size of records, then zeros up to here */
    uint64_t reserve;
    bool low_space;
    char last_hash[CLST_AUDIT_HASH_HEX_SIZE];
    struct clst_buf batch;
};

void
clst_audit_config_init(struct clst_audit_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
}

/* Room written ahead of the records at a time, at most the file's maximum size (keep_room). */
#define AUDIT_ZERO_AHEAD (1024u * 1024u)

/* pwrite of all n bytes at off; CLST_E_IO with errno set on failure. */
static enum clst_status
pwrite_all(int fd, const uint8_t *p, size_t n, uint64_t off)
{
    while (n > 0) {
        ssize_t w = pwrite(fd, p, n, (off_t)off);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            if (w == 0) {
                errno = EIO;
            }
            return CLST_E_IO;
        }
        p += w;
        off += (uint64_t)w;
        n -= (size_t)w;
    }
    return CLST_OK;
}

/*
 * Appends one record (or, with sign, a checkpoint) to the batch, advancing the in-memory chain;
 * the caller restores seq/last_hash when the batch fails.
 */
static enum clst_status
add_record(struct clst_audit *a, const char *members, bool sign, uint64_t *out_seq)
{
    char time[32], hash[CLST_AUDIT_HASH_HEX_SIZE];
    enum clst_status st;
    audit_time_now(time);
    st = audit_format_line(&a->batch, a->seq + 1, time, members, a->last_hash,
                           sign ? &a->key : NULL, hash);
    if (st != CLST_OK) {
        return st;
    }
    a->seq++;
    memcpy(a->last_hash, hash, sizeof(hash));
    if (out_seq != NULL) {
        *out_seq = a->seq;
    }
    return CLST_OK;
}

static enum clst_status
add_checkpoint(struct clst_audit *a, const char *reason)
{
    char members[256];
    snprintf(members, sizeof(members),
             "\"type\":\"checkpoint\",\"reason\":\"%s\",\"alg\":\"%s\",\"kid\":\"%s\"", reason,
             a->key.alg, a->key.kid);
    a->since_checkpoint = 0;
    return add_record(a, members, true, NULL);
}

/* Writes and syncs the batch; on failure cuts the file back and restores the chain state. */
static enum clst_status
commit(struct clst_audit *a, uint64_t seq0, const char *hash0, uint64_t since0, char *msg,
       size_t cap)
{
    enum clst_status st = pwrite_all(a->fd, a->batch.data, a->batch.size, a->file_size);
    int e = errno;
    if (st == CLST_OK && fdatasync(a->fd) != 0) {
        st = CLST_E_IO;
        e = errno;
    }
    if (st != CLST_OK) {
        snprintf(msg, cap, "writing %.63s failed: %.60s", a->file, strerror(e));
        if (ftruncate(a->fd, (off_t)a->file_size) != 0) {
            clst_log_error("audit: cannot cut %s back to %" PRIu64 " bytes after a failed "
                           "write: %s (its last record may be torn)",
                           a->file, a->file_size, strerror(errno));
        }
        a->zero_end = a->file_size; /* the room ahead was cut off too */
        a->seq = seq0;
        memcpy(a->last_hash, hash0, CLST_AUDIT_HASH_HEX_SIZE);
        a->since_checkpoint = since0;
        a->batch.size = 0;
        return st;
    }
    a->file_size += a->batch.size;
    if (a->zero_end < a->file_size) {
        a->zero_end = a->file_size; /* the batch did not fit the room ahead: it appended */
    }
    a->batch.size = 0;
    return CLST_OK;
}

/*
 * Cuts the room ahead off a file that is done with (closed or rotated away), so that it ends with
 * its last record. Best effort: a file that keeps its zeros reads the same.
 */
static void
trim(struct clst_audit *a)
{
    if (a->zero_end == a->file_size) {
        return;
    }
    if (ftruncate(a->fd, (off_t)a->file_size) != 0 || fdatasync(a->fd) != 0) {
        clst_log_warn("audit: cannot cut the room written ahead off %s: %s (it reads the same)",
                      a->file, strerror(errno));
        return;
    }
    a->zero_end = a->file_size;
}

/* Creates DIR/name with one record (written, synced, then renamed into place). */
static enum clst_status
create_file(struct clst_audit *a, const char *name, const char *members, int *out_fd, char *msg,
            size_t cap)
{
    char tmp[4096], path[4096];
    int fd = -1;
    enum clst_status st;
    uint64_t seq0 = a->seq;
    char hash0[CLST_AUDIT_HASH_HEX_SIZE];

    memcpy(hash0, a->last_hash, sizeof(hash0));
    int n1 = snprintf(tmp, sizeof(tmp), "%s/%s.tmp", a->dir, name);
    int n2 = snprintf(path, sizeof(path), "%s/%s", a->dir, name);
    if (n1 < 0 || (size_t)n1 >= sizeof(tmp) || n2 < 0 || (size_t)n2 >= sizeof(path)) {
        snprintf(msg, cap, "the audit directory's path is too long");
        st = CLST_E_INVAL;
        goto fail;
    }
    a->batch.size = 0;
    st = add_record(a, members, false, NULL);
    if (st != CLST_OK) {
        snprintf(msg, cap, "cannot format the first record of %s", name);
        goto fail;
    }
    (void)unlink(tmp);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 || pwrite_all(fd, a->batch.data, a->batch.size, 0) != CLST_OK ||
        fdatasync(fd) != 0 || rename(tmp, path) != 0 || fsync(a->dir_fd) != 0) {
        snprintf(msg, cap, "cannot create the audit file %.63s: %.60s", name, strerror(errno));
        st = CLST_E_IO;
        goto fail;
    }
    *out_fd = fd;
    a->file_size = a->zero_end = a->batch.size;
    a->batch.size = 0;
    snprintf(a->file, sizeof(a->file), "%s", name);
    return CLST_OK;
fail:
    if (fd >= 0) {
        (void)close(fd);
        (void)unlink(tmp);
    }
    a->seq = seq0;
    memcpy(a->last_hash, hash0, sizeof(hash0));
    a->batch.size = 0;
    return st == CLST_OK ? CLST_E_IO : st;
}

/* Ends the current file with a rotation checkpoint and starts the next one. */
static enum clst_status
rotate(struct clst_audit *a, char *msg, size_t cap)
{
    char name[AUDIT_NAME_MAX], old[AUDIT_NAME_MAX], members[256];
    int fd = -1;
    uint64_t seq0 = a->seq, since0 = a->since_checkpoint;
    char hash0[CLST_AUDIT_HASH_HEX_SIZE];
    enum clst_status st;

    memcpy(hash0, a->last_hash, sizeof(hash0));
    a->batch.size = 0;
    if ((st = add_checkpoint(a, "rotate")) != CLST_OK ||
        (st = commit(a, seq0, hash0, since0, msg, cap)) != CLST_OK) {
        return st;
    }
    trim(a); /* the old file ends with its rotation checkpoint */
    snprintf(old, sizeof(old), "%s", a->file);
    snprintf(name, sizeof(name), AUDIT_FILE_PREFIX "%020" PRIu64 AUDIT_FILE_SUFFIX, a->seq + 1);
    snprintf(members, sizeof(members), "\"type\":\"continue\",\"prev_file\":\"%s\"", old);
    if ((st = create_file(a, name, members, &fd, msg, cap)) != CLST_OK) {
        /* The old file ends with a rotation checkpoint that nothing continues: the log stays
         * failed; a restart appends to the old file after it (verify accepts a start there). */
        return st;
    }
    (void)close(a->fd);
    a->fd = fd;
    return CLST_OK;
}

/*
 * Writes zeros from zero_end up to `target` (not synced: the next batch's fdatasync makes them
 * durable with the file's new size). On failure the file is cut back to zero_end, so that it
 * still holds exactly its records and zero_end - file_size zeros (when even the cut fails,
 * zero_end moves to the file's size: what was written is zeros too); returns errno, or 0.
 */
static int
extend_zeros(struct clst_audit *a, uint64_t target)
{
    static const uint8_t zeros[65536];
    uint64_t off = a->zero_end;
    while (off < target) {
        size_t n = target - off < sizeof(zeros) ? (size_t)(target - off) : sizeof(zeros);
        if (pwrite_all(a->fd, zeros, n, off) != CLST_OK) {
            int e = errno;
            struct stat sb;
            if (ftruncate(a->fd, (off_t)a->zero_end) != 0 && fstat(a->fd, &sb) == 0 &&
                (uint64_t)sb.st_size > a->zero_end) {
                a->zero_end = (uint64_t)sb.st_size; /* what was written stays: zeros too */
            }
            return e;
        }
        off += n;
    }
    a->zero_end = target;
    return 0;
}

/*
 * Keeps at least `reserve` zero bytes written past the last record and the `pending` bytes of the
 * batch being formed (see the file comment): when fewer remain, writes min(AUDIT_ZERO_AHEAD,
 * max_size) more, or, when the file system has not that much free (or that fails), just what is
 * needed. When even that does not fit, the disk is full: false, and low_space, under which
 * ordinary appends are refused while reserved ones still overwrite the zeros that are left.
 */
static bool
keep_room(struct clst_audit *a, uint64_t pending)
{
    uint64_t ahead = a->max_size < AUDIT_ZERO_AHEAD ? a->max_size : AUDIT_ZERO_AHEAD;
    if (a->low_space && pending < CLST_AUDIT_LINE_MAX) {
        /* Out of low_space only with room for the longest record on top of the reserve, so that
         * the next ordinary record is not refused again (no flapping). */
        pending = CLST_AUDIT_LINE_MAX;
    }
    uint64_t want = a->file_size + pending + a->reserve;
    int e = 0;
    if (a->zero_end < want) {
        /* Free space known to be short: nothing is written (writing until the disk is full and
         * cutting back would fail other writers to it for that moment). */
        struct statvfs vs;
        uint64_t avail =
            fstatvfs(a->fd, &vs) == 0 ? (uint64_t)vs.f_bavail * (uint64_t)vs.f_frsize : UINT64_MAX;
        uint64_t more = want + ahead - a->zero_end;
        e = avail >= more + AUDIT_ZERO_AHEAD ? extend_zeros(a, want + ahead) : ENOSPC;
        if (e != 0) {
            e = avail >= want - a->zero_end ? extend_zeros(a, want) : ENOSPC;
        }
    }
    if (e == 0) {
        if (a->low_space) {
            clst_log_warn("audit: %s has room again; accepting requests", a->file);
        }
        a->low_space = false;
        return true;
    }
    if (!a->low_space) {
        clst_log_error("audit: cannot write %" PRIu64 " bytes of room ahead of the records in %s "
                       "(%s): refusing new requests until there is room",
                       a->reserve, a->file, strerror(e));
    }
    a->low_space = true;
    return false;
}

/* One batch: records, due checkpoints, write, sync; then rotation when the file is full. */
static enum clst_status
write_batch(struct clst_audit *a, struct waiter *list, char *msg, size_t cap)
{
    uint64_t seq0 = a->seq, since0 = a->since_checkpoint;
    char hash0[CLST_AUDIT_HASH_HEX_SIZE];
    enum clst_status st = CLST_OK;

    memcpy(hash0, a->last_hash, sizeof(hash0));
    a->batch.size = 0;
    for (struct waiter *w = list; w != NULL && st == CLST_OK; w = w->next) {
        if (a->low_space && !w->reserved) {
            w->no_space = true; /* refused, written nowhere */
            continue;
        }
        size_t size1 = a->batch.size;
        uint64_t seq1 = a->seq, since1 = a->since_checkpoint;
        char hash1[CLST_AUDIT_HASH_HEX_SIZE];
        memcpy(hash1, a->last_hash, sizeof(hash1));
        st = add_record(a, w->members, false, &w->seq);
        if (st == CLST_OK && ++a->since_checkpoint >= a->every) {
            st = add_checkpoint(a, "every");
        }
        if (st == CLST_OK && !w->reserved && !keep_room(a, a->batch.size)) {
            /* An ordinary record may not eat into the reserve: taken out again, refused. */
            a->batch.size = size1;
            a->seq = seq1;
            memcpy(a->last_hash, hash1, sizeof(hash1));
            a->since_checkpoint = since1;
            w->seq = 0;
            w->no_space = true;
        }
    }
    if (st != CLST_OK) {
        snprintf(msg, cap, "cannot format an audit record (%s)", clst_status_str(st));
        a->seq = seq0;
        memcpy(a->last_hash, hash0, sizeof(hash0));
        a->since_checkpoint = since0;
        a->batch.size = 0;
        return st;
    }
    if (a->batch.size == 0) {
        return CLST_OK; /* every record of the batch was refused for want of space */
    }
    return commit(a, seq0, hash0, since0, msg, cap);
}

/*
 * After a batch (lock held, no batch in flight): the next batch is led by the first waiter queued
 * meanwhile when it is a thread waiting in clst_audit_append, by the writer thread when it is an
 * asynchronous append; with nothing queued, close may go on.
 */
static void
hand_off(struct clst_audit *a)
{
    if (a->head == NULL) {
        pthread_cond_broadcast(&a->idle);
    } else if (a->head->done != NULL) {
        pthread_cond_signal(&a->work);
    } else {
        atomic_store_explicit(&a->head->state, W_LEAD, memory_order_release);
        futex_wake(&a->head->state); /* under the lock: it cannot have finished */
    }
}

static enum clst_status refuse(struct clst_audit *a, struct clst_err *err);

/* A finished waiter's result: CLST_OK, or the refusal its appender reports (lock not held). */
static enum clst_status
waiter_result(struct clst_audit *a, const struct waiter *w, struct clst_err *err)
{
    if (w->st == CLST_OK) {
        return CLST_OK;
    }
    if (w->no_space) {
        return clst_err_set(err, CLST_E_IO,
                            "the audit log's file system is full, so the service makes no "
                            "change it cannot record; nothing was done: free space in %s and "
                            "retry",
                            a->dir);
    }
    pthread_mutex_lock(&a->lock); /* fail_msg */
    enum clst_status st = refuse(a, err);
    pthread_mutex_unlock(&a->lock);
    return st;
}

/* Reports an asynchronous append's result to its owner and frees it (lock not held). */
static void
finish_async(struct clst_audit *a, struct waiter *w)
{
    struct clst_err err;
    clst_err_clear(&err);
    enum clst_status st = waiter_result(a, w, &err);
    w->done(w->done_ctx, st, st == CLST_OK ? w->seq : 0, &err);
    free(w);
}

/*
 * Writes everything queued as one batch. Called with the lock held and `writing` false; returns
 * with the lock held, every waiter of the batch finished, and the lead handed to the first waiter
 * queued meanwhile (or `idle` signalled when there is none).
 */
static void
lead_batch(struct clst_audit *a)
{
    char msg[160];
    struct waiter *list = a->head;
    uint64_t n = a->queued;
    bool failed = a->failed;
    a->writing = true;
    a->head = a->tail = NULL;
    a->queued = 0;
    a->queued_sync = false;
    pthread_mutex_unlock(&a->lock);

    enum clst_status st = CLST_E_IO;
    bool rotate_failed = false;
    uint64_t t0 = clst_monotonic_ns();
    msg[0] = '\0';
    if (!failed) {
        if (a->low_space) {
            (void)keep_room(a, 0); /* room again? */
        }
        st = write_batch(a, list, msg, sizeof(msg));
        if (st == CLST_OK && a->file_size >= a->max_size &&
            rotate(a, msg, sizeof(msg)) != CLST_OK) {
            rotate_failed = true; /* this batch is durable; later ones are refused */
        }
        if (st == CLST_OK && !rotate_failed) {
            (void)keep_room(a, 0);
        }
    }
    uint64_t dt = clst_monotonic_ns() - t0;
    uint64_t refused = 0;
    for (struct waiter *w = list; w != NULL; w = w->next) {
        refused += w->no_space ? 1u : 0u;
    }
    bool synced = st == CLST_OK && refused < n; /* a batch refused whole wrote nothing */
    if (synced && a->sink != NULL) {
        a->sink(a->sink_ctx, "cloister_audit_sync_seconds", (double)dt / 1e9);
    }

    pthread_mutex_lock(&a->lock);
    a->stats.low_space = a->low_space;
    if (st != CLST_OK || rotate_failed) {
        if (!a->failed) {
            a->failed = true;
            snprintf(a->fail_msg, sizeof(a->fail_msg), "%s", msg);
            clst_log_error("audit: %s; the audit log refuses every request until the "
                           "service is restarted",
                           msg);
        }
    }
    if (st == CLST_OK) {
        a->stats.records += n - refused;
        a->stats.refused_no_space += refused;
        a->stats.last_seq = a->seq;
    }
    if (synced) {
        a->stats.syncs++;
        a->stats.sync_ns_total += dt;
        if (dt > a->stats.sync_ns_max) {
            a->stats.sync_ns_max = dt;
        }
    }
    a->writing = false;
    hand_off(a);
    struct waiter *async_list = NULL, **async_tail = &async_list;
    for (struct waiter *w = list; w != NULL;) {
        struct waiter *next = w->next; /* w may be gone once it is finished */
        w->st = w->no_space ? CLST_E_IO : st;
        if (w->done != NULL) {
            w->next = NULL;
            *async_tail = w;
            async_tail = &w->next;
        } else {
            atomic_store_explicit(&w->state, W_FINISHED, memory_order_release);
            futex_wake(&w->state);
        }
        w = next;
    }
    if (async_list != NULL) {
        /* Completions run without the lock: they may resume a connection or append again. */
        pthread_mutex_unlock(&a->lock);
        for (struct waiter *w = async_list; w != NULL;) {
            struct waiter *next = w->next;
            finish_async(a, w);
            w = next;
        }
        pthread_mutex_lock(&a->lock);
    }
}

static enum clst_status
refuse(struct clst_audit *a, struct clst_err *err)
{
    return clst_err_set(err, CLST_E_IO,
                        "the audit log cannot be written (%s), so the service makes no change "
                        "and answers nothing it cannot record; free space or fix the disk, then "
                        "restart the service",
                        a->fail_msg[0] != '\0' ? a->fail_msg : "it is closed");
}

/*
 * Records are printable ASCII on one line (the verifier refuses anything else) and bounded:
 * checked before queuing, so that a caller's mistake fails its own append instead of the whole
 * batch and the log.
 */
static enum clst_status
check_members(const char *members, struct clst_err *err)
{
    if (members == NULL || members[0] == '\0') {
        return clst_err_set(err, CLST_E_INVAL, "audit append: members required");
    }
    for (const char *p = members; *p != '\0'; p++) {
        if (*p < 0x20 || *p > 0x7e) {
            return clst_err_set(err, CLST_E_INVAL,
                                "audit append: members must be printable ASCII on one line");
        }
    }
    if (strlen(members) > CLST_AUDIT_LINE_MAX - 512) {
        return clst_err_set(err, CLST_E_LIMIT, "audit append: the record is too long");
    }
    return CLST_OK;
}

/* Queues w (lock held); refuses when the log has failed or is closing. */
static enum clst_status
enqueue(struct clst_audit *a, struct waiter *w, struct clst_err *err)
{
    if (a->failed || a->stop) {
        return refuse(a, err);
    }
    if (a->tail != NULL) {
        a->tail->next = w;
    } else {
        a->head = w;
    }
    a->tail = w;
    a->queued++;
    a->queued_sync |= w->done == NULL;
    return CLST_OK;
}

enum clst_status
clst_audit_append(struct clst_audit *a, const char *members, unsigned flags, uint64_t *out_seq,
                  struct clst_err *err)
{
    struct waiter w;
    if (a == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "audit append: no log");
    }
    enum clst_status st = check_members(members, err);
    if (st != CLST_OK) {
        return st;
    }
    memset(&w, 0, sizeof(w));
    w.members = members;
    w.reserved = (flags & CLST_AUDIT_RESERVED) != 0;
    atomic_init(&w.state, W_WAITING);
    pthread_mutex_lock(&a->lock);
    if ((st = enqueue(a, &w, err)) != CLST_OK) {
        pthread_mutex_unlock(&a->lock);
        return st;
    }
    for (;;) {
        uint32_t state = atomic_load_explicit(&w.state, memory_order_acquire);
        if (state == W_FINISHED) {
            break;
        }
        if (!a->writing) {
            lead_batch(a); /* w is in this batch: it is queued and no batch is in flight */
            continue;
        }
        atomic_store_explicit(&w.state, W_WAITING, memory_order_relaxed); /* lead taken */
        pthread_mutex_unlock(&a->lock);
        while ((state = atomic_load_explicit(&w.state, memory_order_acquire)) == W_WAITING) {
            futex_wait(&w.state, W_WAITING, 0);
        }
        if (state == W_FINISHED) {
            goto finished;
        }
        pthread_mutex_lock(&a->lock); /* asked to lead */
    }
    pthread_mutex_unlock(&a->lock);
finished:
    st = waiter_result(a, &w, err);
    if (st == CLST_OK && out_seq != NULL) {
        *out_seq = w.seq;
    }
    return st;
}

void
clst_audit_expect_begin(struct clst_audit *a)
{
    if (a != NULL) {
        atomic_fetch_add(&a->expected, 1u);
    }
}

void
clst_audit_expect_end(struct clst_audit *a)
{
    /* seq_cst on both sides: either the writer sees the count at zero, or this sees it holding. */
    if (a != NULL && atomic_fetch_sub(&a->expected, 1u) == 1u && atomic_load(&a->holding) != 0) {
        futex_wake(&a->expected);
    }
}

/*
 * Holds the batch about to be led (lock held) while appends are expected, until they are all
 * queued or the commit delay has passed since the first hold of this batch (*held, *since).
 * Never holds a batch with a thread waiting in it (clst_audit_append), one of at least
 * CLST_AUDIT_DELAY_BATCH records, or while closing. Returns false at once when there is nothing
 * to wait for; true after a wait, with the lock taken again (the caller checks the queue anew
 * and may come back).
 */
static bool
hold_batch(struct clst_audit *a, bool *held, uint64_t *since)
{
    if (a->commit_delay_ns == 0 || a->stop || a->queued_sync ||
        a->queued >= CLST_AUDIT_DELAY_BATCH || atomic_load(&a->expected) == 0) {
        return false;
    }
    uint64_t now = clst_monotonic_ns();
    if (!*held) {
        *held = true;
        *since = now;
        a->stats.held_batches++;
    } else if (now - *since >= a->commit_delay_ns) {
        return false;
    }
    uint64_t deadline = *since + a->commit_delay_ns;
    atomic_store(&a->holding, 1u);
    pthread_mutex_unlock(&a->lock);
    for (;;) {
        uint32_t n = atomic_load(&a->expected);
        now = clst_monotonic_ns();
        if (n == 0 || now >= deadline) {
            break;
        }
        futex_wait(&a->expected, n, deadline - now);
    }
    atomic_store(&a->holding, 0u);
    pthread_mutex_lock(&a->lock);
    return true;
}

/* The writer thread: leads the batches whose first waiter is an asynchronous append. */
static void *
writer_main(void *arg)
{
    struct clst_audit *a = arg;
    bool held = false;  /* the batch at the head has been held */
    uint64_t since = 0; /* since when */
    pthread_mutex_lock(&a->lock);
    for (;;) {
        while (!a->thread_stop && (a->head == NULL || a->writing || a->head->done == NULL)) {
            held = false;
            pthread_cond_wait(&a->work, &a->lock);
        }
        if (a->thread_stop) {
            break; /* close has waited for every queued append first */
        }
        if (hold_batch(a, &held, &since)) {
            continue;
        }
        held = false;
        lead_batch(a);
    }
    pthread_mutex_unlock(&a->lock);
    return NULL;
}

enum clst_status
clst_audit_append_async(struct clst_audit *a, const char *members, unsigned flags,
                        clst_audit_done_fn done, void *ctx, struct clst_err *err)
{
    if (a == NULL || done == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "audit append: members and a callback required");
    }
    enum clst_status st = check_members(members, err);
    if (st != CLST_OK) {
        return st;
    }
    size_t n = strlen(members);
    struct waiter *w = calloc(1, sizeof(*w) + n + 1);
    if (w == NULL) {
        return clst_err_set(err, CLST_E_NOMEM, "out of memory");
    }
    char *copy = (char *)(w + 1);
    memcpy(copy, members, n + 1);
    w->members = copy;
    w->reserved = (flags & CLST_AUDIT_RESERVED) != 0;
    w->done = done;
    w->done_ctx = ctx;
    atomic_init(&w->state, W_WAITING);
    pthread_mutex_lock(&a->lock);
    if (!a->thread_started && !a->stop) {
        if (pthread_create(&a->thread, NULL, writer_main, a) != 0) {
            pthread_mutex_unlock(&a->lock);
            free(w);
            return clst_err_set(err, CLST_E_INTERNAL, "cannot start the audit writer thread");
        }
        a->thread_started = true;
    }
    if ((st = enqueue(a, w, err)) != CLST_OK) {
        pthread_mutex_unlock(&a->lock);
        free(w);
        return st;
    }
    if (!a->writing && a->head == w) {
        pthread_cond_signal(&a->work);
    }
    pthread_mutex_unlock(&a->lock);
    return CLST_OK;
}

void
clst_audit_sink_set(struct clst_audit *a, void (*sink)(void *ctx, const char *name, double value),
                    void *ctx)
{
    if (a == NULL) {
        return;
    }
    pthread_mutex_lock(&a->lock);
    a->sink = sink;
    a->sink_ctx = ctx;
    pthread_mutex_unlock(&a->lock);
}

void
clst_audit_stats_get(struct clst_audit *a, struct clst_audit_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (a == NULL) {
        return;
    }
    pthread_mutex_lock(&a->lock);
    *out = a->stats;
    out->expected = atomic_load(&a->expected);
    out->queue_depth = a->queued;
    out->failed = a->failed;

    pthread_mutex_unlock(&a->lock);
}

/* pread of all n bytes at off; CLST_E_IO with errno set on failure (EIO: the file is shorter). */
static enum clst_status
pread_all(int fd, void *buf, size_t n, uint64_t off)
{
    for (size_t got = 0; got < n;) {
        ssize_t r = pread(fd, (uint8_t *)buf + got, n - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            if (r == 0) {
                errno = EIO;
            }
            return CLST_E_IO;
        }
        got += (size_t)r;
    }
    return CLST_OK;
}

/* Reads the last line of `path` (size bytes) into out (cap CLST_AUDIT_LINE_MAX). */
static enum clst_status
read_last_line(int fd, uint64_t size, char *out, size_t *out_size, bool *out_torn)
{
    uint64_t want = size < CLST_AUDIT_LINE_MAX ? size : CLST_AUDIT_LINE_MAX;
    uint64_t off = size - want;
    if (pread_all(fd, out, (size_t)want, off) != CLST_OK) {
        return CLST_E_IO;
    }
    *out_torn = want == 0 || out[want - 1] != '\n';
    if (*out_torn) {
        return CLST_OK;
    }
    size_t end = (size_t)want - 1, start = end;
    while (start > 0 && out[start - 1] != '\n') {
        start--;
    }
    if (start == 0 && off != 0) {
        return CLST_E_LIMIT; /* the last line is longer than any record may be */
    }
    memmove(out, out + start, end - start);
    *out_size = end - start;
    return CLST_OK;
}

/*
 * The end of the data in a file of `size` bytes: after its last non-zero byte. The zeros after it
 * are room written ahead that a crash left in place (see the file comment).
 */
static enum clst_status
data_end(int fd, uint64_t size, uint64_t *out)
{
    uint8_t buf[8192];
    uint64_t end = size;
    while (end > 0) {
        size_t got = end < sizeof(buf) ? (size_t)end : sizeof(buf), n = got;
        if (pread_all(fd, buf, got, end - got) != CLST_OK) {
            return CLST_E_IO;
        }
        while (n > 0 && buf[n - 1] == 0) {
            n--;
        }
        if (n > 0) {
            *out = end - (got - n);
            return CLST_OK;
        }
        end -= got;
    }
    *out = 0;
    return CLST_OK;
}

/* The offset of the first zero byte before `end`: CLST_OK, CLST_E_NOTFOUND, or CLST_E_IO. */
static enum clst_status
first_zero(int fd, uint64_t end, uint64_t *out)
{
    uint8_t buf[65536];
    for (uint64_t off = 0; off < end;) {
        size_t n = end - off < sizeof(buf) ? (size_t)(end - off) : sizeof(buf);
        if (pread_all(fd, buf, n, off) != CLST_OK) {
            return CLST_E_IO;
        }
        const uint8_t *z = memchr(buf, 0, n);
        if (z != NULL) {
            *out = off + (uint64_t)(z - buf);
            return CLST_OK;
        }
        off += n;
    }
    return CLST_E_NOTFOUND;
}

/* Opens the newest file and reads its last record, or creates the first file. */
static enum clst_status
open_tail(struct clst_audit *a, bool *out_recovered, bool *out_new, struct clst_err *err)
{
    char **names = NULL;
    size_t count = 0;
    char *line = NULL;
    size_t line_size = 0;
    bool torn = false;
    struct stat sb;
    struct clst_audit_record r;
    char msg[160];
    enum clst_status rc;

    memset(&r, 0, sizeof(r));
    if ((rc = clst_audit_list_files(a->dir, &names, &count, err)) != CLST_OK) {
        return rc;
    }
    if (count == 0) {
        char first[AUDIT_NAME_MAX], members[256];
        snprintf(first, sizeof(first), AUDIT_FILE_PREFIX "%020" PRIu64 AUDIT_FILE_SUFFIX,
                 (uint64_t)1);
        snprintf(members, sizeof(members),
                 "\"type\":\"start\",\"genesis\":true,\"alg\":\"%s\",\"kid\":\"%s\"", a->key.alg,
                 a->key.kid);
        a->seq = 0;
        memcpy(a->last_hash, AUDIT_ZERO_HASH, sizeof(a->last_hash));
        rc = create_file(a, first, members, &a->fd, msg, sizeof(msg));
        if (rc != CLST_OK) {
            clst_err_set(err, rc, "%s", msg);
        }
        *out_new = true;
        goto out;
    }
    const char *path = names[count - 1];
    const char *base = strrchr(path, '/') + 1;
    snprintf(a->file, sizeof(a->file), "%s", base);
    a->fd = open(path, O_RDWR | O_CLOEXEC);
    if (a->fd < 0 || fstat(a->fd, &sb) != 0) {
        rc = clst_err_set(err, CLST_E_IO, "cannot open the audit file %s: %s", path,
                          strerror(errno));
        goto out;
    }
    a->zero_end = (uint64_t)sb.st_size;
    if (data_end(a->fd, a->zero_end, &a->file_size) != CLST_OK) {
        rc = clst_err_set(err, CLST_E_IO, "cannot read the audit file %s: %s", path,
                          strerror(errno));
        goto out;
    }
    line = malloc(CLST_AUDIT_LINE_MAX);
    if (line == NULL) {
        rc = clst_err_set(err, CLST_E_NOMEM, "out of memory");
        goto out;
    }
    rc = read_last_line(a->fd, a->file_size, line, &line_size, &torn);
    if (rc != CLST_OK || torn) {
        rc = clst_err_set(err, CLST_E_IO,
                          "the audit file %s does not end with a complete record (%s): check it "
                          "with 'cloister audit verify --allow-open', move it aside or cut it back "
                          "to its last complete record, then start again",
                          path, rc != CLST_OK ? "unreadable" : "torn last line");
        goto out;
    }
    if ((rc = clst_audit_record_parse(line, line_size, &r, err)) != CLST_OK) {
        rc = clst_err_prefix(err, "the last record of the audit file %s is invalid "
                                  "(check it with 'cloister audit verify')",
                             path);
        goto out;
    }
    a->seq = r.seq;
    memcpy(a->last_hash, r.hash, sizeof(a->last_hash));
    const char *reason = json_string_value(json_object_get(r.obj, "reason"));
    *out_recovered = !(strcmp(r.type, "checkpoint") == 0 && reason != NULL &&
                       strcmp(reason, "close") == 0);
    /* After a power loss the last batch may have reached the disk in part: zeros (its lost
     * pages) before records that survived. Continuing after them would bury every later record
     * behind damage, so such a file is refused like a torn one. */
    uint64_t zero_at = 0;
    if (*out_recovered && (rc = first_zero(a->fd, a->file_size, &zero_at)) != CLST_E_NOTFOUND) {
        if (rc == CLST_OK) {
            rc = clst_err_set(err, CLST_E_IO,
                              "the audit file %s has zero bytes at offset %" PRIu64 " before "
                              "later records (part of a write was lost, as in a power failure): "
                              "check it with 'cloister audit verify --allow-open', move it aside "
                              "or cut it back to the last complete record before that offset, "
                              "then start again",
                              path, zero_at);
        } else {
            rc = clst_err_set(err, CLST_E_IO, "cannot read the audit file %s: %s", path,
                              strerror(errno));
        }
        goto out;
    }
    rc = CLST_OK;
out:
    clst_audit_record_cleanup(&r);
    free(line);
    for (size_t i = 0; i < count; i++) {
        free(names[i]);
    }
    free(names);
    return rc;
}

/*
 * On a copy-on-write file system an overwrite needs new blocks (and ZFS may store zeros as
 * holes), so the room written ahead is no space reserve there: say so once, at open.
 */
static void
warn_copy_on_write(struct clst_audit *a)
{
    const long btrfs = 0x9123683e, zfs = 0x2fc12fc1, bcachefs = 0xca451a4e;
    struct statfs fs;
    if (fstatfs(a->fd, &fs) == 0 &&
        (fs.f_type == btrfs || fs.f_type == zfs || fs.f_type == bcachefs)) {
        clst_log_warn("audit: %s is on a copy-on-write file system, where writing over the room "
                      "kept ahead needs new space: on a full disk a batch may then fail (and "
                      "stop the log until a restart) before new requests are refused",
                      a->dir);
    }
}

static void
audit_free(struct clst_audit *a)
{
    if (a->fd >= 0) {
        (void)close(a->fd);
    }
    if (a->dir_fd >= 0) {
        (void)close(a->dir_fd);
    }
    EVP_PKEY_free(a->key.pkey);
    clst_buf_cleanup(&a->batch);
    free(a->dir);
    pthread_mutex_destroy(&a->lock);
    pthread_cond_destroy(&a->idle);
    pthread_cond_destroy(&a->work);
    free(a);
}

enum clst_status
clst_audit_open(const struct clst_audit_config *cfg, struct clst_audit **out,
                struct clst_err *err)
{
    struct clst_audit *a = NULL;
    bool recovered = false, fresh = false;
    char members[256], msg[160];
    enum clst_status rc;

    if (cfg == NULL || cfg->dir == NULL || cfg->key_path == NULL || out == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "audit: a directory and a key path are required");
    }
    if (cfg->max_file_size != 0 && cfg->max_file_size < CLST_AUDIT_MIN_MAX_SIZE) {
        return clst_err_set(err, CLST_E_INVAL, "audit: the maximum file size must be at least %u",
                            CLST_AUDIT_MIN_MAX_SIZE);
    }
    if (cfg->commit_delay_us > CLST_AUDIT_MAX_COMMIT_DELAY_US) {
        return clst_err_set(err, CLST_E_INVAL,
                            "audit: the commit delay must be at most %d microseconds",
                            CLST_AUDIT_MAX_COMMIT_DELAY_US);
    }
    a = calloc(1, sizeof(*a));
    if (a == NULL) {
        return clst_err_set(err, CLST_E_NOMEM, "out of memory");
    }
    pthread_mutex_init(&a->lock, NULL);
    atomic_init(&a->expected, 0u);
    atomic_init(&a->holding, 0u);
    pthread_cond_init(&a->idle, NULL);
    pthread_cond_init(&a->work, NULL);
    a->fd = a->dir_fd = -1;
    a->max_size = cfg->max_file_size != 0 ? cfg->max_file_size : CLST_AUDIT_DEFAULT_MAX_SIZE;
    a->every = cfg->checkpoint_every != 0 ? cfg->checkpoint_every
                                          : CLST_AUDIT_DEFAULT_CHECKPOINT_EVERY;
    a->reserve = cfg->reserve != 0 ? cfg->reserve : CLST_AUDIT_DEFAULT_RESERVE;
    a->commit_delay_ns =
        cfg->commit_delay_us < 0
            ? 0u
            : 1000u * (uint64_t)(cfg->commit_delay_us != 0 ? cfg->commit_delay_us
                                                           : CLST_AUDIT_DEFAULT_COMMIT_DELAY_US);
    clst_buf_init(&a->batch, 64u * 1024u * 1024u);
    a->dir = strdup(cfg->dir);
    if (a->dir == NULL) {
        rc = clst_err_set(err, CLST_E_NOMEM, "out of memory");
        goto fail;
    }
    if (mkdir(a->dir, 0700) != 0 && errno != EEXIST) {
        rc = clst_err_set(err, CLST_E_IO, "cannot create the audit directory %s: %s", a->dir,
                          strerror(errno));
        goto fail;
    }
    a->dir_fd = open(a->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (a->dir_fd < 0) {
        rc = clst_err_set(err, CLST_E_IO, "cannot open the audit directory %s: %s", a->dir,
                          strerror(errno));
        goto fail;
    }
    if ((rc = audit_key_load_or_make(cfg->key_path, cfg->pub_path, &a->key, err)) != CLST_OK ||
        (rc = open_tail(a, &recovered, &fresh, err)) != CLST_OK) {
        goto fail;
    }
    if (!fresh) {
        uint64_t seq0 = a->seq, since0 = 0;
        char hash0[CLST_AUDIT_HASH_HEX_SIZE];
        memcpy(hash0, a->last_hash, sizeof(hash0));
        snprintf(members, sizeof(members),
                 "\"type\":\"start\",\"recovered\":%s,\"alg\":\"%s\",\"kid\":\"%s\"",
                 recovered ? "true" : "false", a->key.alg, a->key.kid);
        a->batch.size = 0;
        if ((rc = add_record(a, members, false, NULL)) != CLST_OK ||
            (rc = commit(a, seq0, hash0, since0, msg, sizeof(msg))) != CLST_OK) {
            rc = clst_err_set(err, CLST_E_IO, "audit log: %s", rc == CLST_E_IO ? msg : "format");
            goto fail;
        }
        if (recovered) {
            clst_log_warn("audit: %s did not end with a closing checkpoint (the service stopped "
                          "without closing the log); continuing the chain at seq %" PRIu64,
                          a->file, a->seq);
        }
    }
    a->stats.last_seq = a->seq;
    warn_copy_on_write(a);
    (void)keep_room(a, 0);
    *out = a;
    return CLST_OK;
fail:
    audit_free(a);
    return rc;
}

enum clst_status
clst_audit_close(struct clst_audit *a, struct clst_err *err)
{
    enum clst_status rc = CLST_OK;
    char msg[160];
    if (a == NULL) {
        return CLST_OK;
    }
    /* New appends are refused from here on; the ones already queued are written first. */
    pthread_mutex_lock(&a->lock);
    a->stop = true;
    while (a->writing || a->head != NULL) {
        pthread_cond_wait(&a->idle, &a->lock);
    }
    a->thread_stop = true;
    pthread_cond_signal(&a->work);
    pthread_mutex_unlock(&a->lock);
    if (a->thread_started) {
        pthread_join(a->thread, NULL);
    }
    if (a->failed) {
        rc = clst_err_set(err, CLST_E_IO,
                          "the audit log failed earlier (%s); no closing checkpoint was written",
                          a->fail_msg);
    } else {
        uint64_t seq0 = a->seq, since0 = a->since_checkpoint;
        char hash0[CLST_AUDIT_HASH_HEX_SIZE];
        memcpy(hash0, a->last_hash, sizeof(hash0));
        a->batch.size = 0;
        if ((rc = add_checkpoint(a, "close")) != CLST_OK ||
            (rc = commit(a, seq0, hash0, since0, msg, sizeof(msg))) != CLST_OK) {
            rc = clst_err_set(err, CLST_E_IO, "cannot write the closing checkpoint: %s",
                              rc == CLST_E_IO ? msg : "format");
        } else {
            trim(a); /* the file ends with the closing checkpoint */
        }
    }
    audit_free(a);
    return rc;
}
