/*
 * File descriptors and whole buffers, with one or two threads.
 *
 * Chunks are independent once the per-file key and base nonce are known (chunk k's nonce is
 * base_nonce XOR k and its position is fixed). In memory each thread takes every other batch of
 * CLST_ENVELOPE_BATCH_CHUNKS chunks. File to file the output is cut into 256 KiB units aligned on
 * the output's offsets; a thread claims the next unit, reads its chunks into its buffer, seals or
 * opens them in place with its own AES-GCM context and writes the unit at its final offset (see
 * "the parallel engine" below). Memory is one mapping of 2 MiB (a unit buffer per thread)
 * whatever the file size. Pipes and terminals (no pread/pwrite) are streamed
 * through the one-threaded clst_envelope_enc/dec API instead.
 *
 * Trust boundary: when decrypting, the header, commitment and the body's length are checked
 * before any plaintext is written, and every chunk is authenticated before it is written.
 */
#define _GNU_SOURCE
#include "envelope/envelope_int.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define CHUNK      CLST_ENVELOPE_CHUNK_SIZE
#define CT_CHUNK   CLST_ENVELOPE_CT_CHUNK_SIZE
#define PREFIX     CLST_ENVELOPE_PREFIX_SIZE
#define TAG        CLST_ENVELOPE_TAG_SIZE
#define BATCH      CLST_ENVELOPE_BATCH_CHUNKS
#define MAX_LANES  2
#define STREAM_BUF ((size_t)BATCH * CHUNK) /* small enough to stay in the core's cache */
#define READAHEAD_CHUNKS 256 /* 4 MiB ahead of the batch being read */

/* ---- I/O helpers ---------------------------------------------------------------------------- */

enum clst_status
clst_env_pread_all(int fd, uint8_t *buf, size_t size, uint64_t offset, struct clst_err *err)
{
    size_t done = 0;
    while (done < size) {
        ssize_t n = pread(fd, buf + done, size - done, (off_t)(offset + done));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return clst_err_set(err, CLST_E_IO, "read error: %s", strerror(errno));
        }
        if (n == 0) {
            return clst_err_set(err, CLST_E_IO,
                                "the input ended early (at byte %llu): was it changed while "
                                "being read?",
                                (unsigned long long)(offset + done));
        }
        done += (size_t)n;
    }
    return CLST_OK;
}

enum clst_status
clst_env_pwrite_all(int fd, const uint8_t *buf, size_t size, uint64_t offset, struct clst_err *err)
{
    size_t done = 0;
    while (done < size) {
        ssize_t n = pwrite(fd, buf + done, size - done, (off_t)(offset + done));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return clst_err_set(err, CLST_E_IO, "write error: %s",
                                n < 0 ? strerror(errno) : "no progress");
        }
        done += (size_t)n;
    }
    return CLST_OK;
}

static enum clst_status
write_all(int fd, const uint8_t *buf, size_t size, struct clst_err *err)
{
    while (size > 0) {
        ssize_t n = write(fd, buf, size);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return clst_err_set(err, CLST_E_IO, "write error: %s",
                                n < 0 ? strerror(errno) : "no progress");
        }
        buf += n;
        size -= (size_t)n;
    }
    return CLST_OK;
}

/* write_all, counting into opts->written. */
static enum clst_status
write_counted(int fd, const uint8_t *buf, size_t size, const struct clst_envelope_fd_opts *opts,
              struct clst_err *err)
{
    enum clst_status rc = write_all(fd, buf, size, err);
    if (rc == CLST_OK && opts != NULL && opts->written != NULL) {
        *opts->written += size;
    }
    return rc;
}

/* ---- buffers ---------------------------------------------------------------------------------- */

/*
 * Batch buffers are mapped with MAP_POPULATE: in a VM every first-touch page fault is expensive,
 * and a 16 MiB file goes through in a few milliseconds, so 1 MiB of buffer faulted in page by
 * page was a fifth of the time. Buffers that will hold plaintext come from secret memory
 * (mlock'ed, which populates them too, and wiped on release).
 */
static uint8_t *
buf_alloc(size_t size, bool secret)
{
    if (secret) {
        return clst_secret_alloc_raw(size);
    }
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
                   -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static void
buf_free(uint8_t *p, size_t size, bool secret)
{
    if (p == NULL) {
        return;
    }
    if (secret) {
        clst_secret_free_raw(p, size);
    } else {
        munmap(p, size);
    }
}

/*
 * The unit buffers of the file-to-file engine, one mapping for all of them. On this kind of VM
 * every 4 KiB page costs at each step (populating, locking, unlocking and unmapping: mlock moves
 * every page between LRU lists), which for 512 KiB of locked buffers came to 0.3-1.9 ms per call
 * against 6 ms for the whole 16 MiB file. So the mapping is 2 MiB-aligned and asks for a
 * transparent huge page: one page to populate, lock and free. Where THP is turned off, it is
 * just the pages the buffers need.
 * Plaintext passes through it: locked (best effort, as clst_secret_alloc_raw), kept out of core
 * dumps and wiped before it is unmapped.
 */
#define BULK_ALIGN ((size_t)2 << 20)
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14; older kernels reject it (EINVAL): pages then fault */
#endif

static pthread_once_t thp_once = PTHREAD_ONCE_INIT;
static bool thp_off;

/* With transparent huge pages turned off ("[never]"), a 2 MiB mapping would only lock more small
 * pages than the buffers need. */
static void
thp_probe(void)
{
    char line[128] = "";
    FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "re");
    if (f == NULL) {
        thp_off = true;
        return;
    }
    if (fgets(line, sizeof(line), f) != NULL) {
        thp_off = strstr(line, "[never]") != NULL;
    }
    fclose(f);
}

static uint8_t *
bulk_alloc(size_t size, size_t *mapped)
{
    (void)pthread_once(&thp_once, thp_probe);
    if (thp_off) {
        size_t len = (size + 4095) / 4096 * 4096;
        uint8_t *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
            return NULL;
        }
        (void)madvise(p, len, MADV_DONTDUMP);
        if (mlock(p, len) != 0) {
            (void)madvise(p, len, MADV_POPULATE_WRITE);
        }
        *mapped = len;
        return p;
    }
    size_t len = (size + BULK_ALIGN - 1) / BULK_ALIGN * BULK_ALIGN;
    uint8_t *m = mmap(NULL, len + BULK_ALIGN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                      -1, 0);
    if (m == MAP_FAILED) {
        return NULL;
    }
    uint8_t *a = m + ((BULK_ALIGN - (uintptr_t)m % BULK_ALIGN) % BULK_ALIGN);
    if (a > m) {
        (void)munmap(m, (size_t)(a - m));
    }
    if (a + len < m + len + BULK_ALIGN) {
        (void)munmap(a + len, (size_t)(m + len + BULK_ALIGN - (a + len)));
    }
    (void)madvise(a, len, MADV_HUGEPAGE);
    (void)madvise(a, len, MADV_DONTDUMP);
    /* Best effort: RLIMIT_MEMLOCK may be small for unprivileged users; then just populate. */
    if (mlock(a, len) != 0) {
        (void)madvise(a, len, MADV_POPULATE_WRITE);
    }
    *mapped = len;
    return a;
}

static void
bulk_free(uint8_t *p, size_t used, size_t mapped)
{
    if (p != NULL) {
        clst_wipe(p, used);
        (void)munmap(p, mapped);
    }
}

/* ---- the parallel engine ----------------------------------------------------------------- */

/*
 * File to file, the output is cut into units of UNIT_BYTES aligned on the output file's offsets
 * (not on chunk boundaries): the kernel then gets page-aligned writes of a whole unit, which ext4
 * turns into large page-cache folios (on this machine a 16 MiB file written in aligned 256 KiB
 * pieces took 1.9 ms, in unaligned ones 2.7 ms). A chunk that straddles two units is sealed (or
 * opened) by both; AES-GCM is deterministic, so both produce the same bytes and each writes its
 * part (encrypting, one chunk in 16 is sealed twice; decrypting to offset 0, a unit is exactly 16
 * chunks). Each thread claims the next unit, reads its chunks into the thread's buffer, seals or
 * opens them in place and writes the unit at its offset. With aligned writes the two threads'
 * writes, which serialize on the file's inode lock, are short enough that a hand-off (one thread
 * writing what the other sealed, the sealer waiting when the queue was full) measured no better
 * at 16 MiB and at 1 GiB some runs fell to 1.1-1.7 GB/s instead of 4. Memory is one unit buffer
 * per thread in one mapping, whatever the file size.
 */
#define UNIT_BYTES ((uint64_t)256 << 10)
/* Most chunks a unit's output can touch: the unit's length over the chunk's, plus the straddling
 * chunks at both ends. */
#define UNIT_CHUNKS ((size_t)((UNIT_BYTES - 1) / CHUNK + 2))
#define UNIT_BUF    (UNIT_CHUNKS * CT_CHUNK)
_Static_assert(MAX_LANES * UNIT_BUF <= BULK_ALIGN, "the unit buffers fit in one huge page");

struct par_unit {
    uint64_t lo, hi; /* the output bytes [lo, hi) this unit writes (file offsets) */
    uint64_t c0, c1; /* the chunks whose output overlaps them (c1 included) */
    uint8_t *buf;    /* chunk c0 + i at buf + i * CT_CHUNK */
};

struct par_shared {
    const struct clst_env_par *job;
    atomic_bool stop;
    atomic_uint_fast64_t done;
    atomic_uint_fast64_t written;
    /* File to file only. */
    uint64_t out_unit;         /* output bytes per whole chunk */
    uint64_t out_end;          /* end of the output */
    uint64_t unit0;            /* index of the first unit (out_base / UNIT_BYTES) */
    uint64_t units;            /* number of units */
    atomic_uint_fast64_t next; /* next unit to claim (0-based) */
    pthread_mutex_t gate;      /* held while the buffers are allocated */
    uint8_t *bufs;             /* one buffer per lane, in one mapping */
    size_t bufs_size, bufs_mapped;
};

struct par_lane {
    struct par_shared *sh;
    unsigned index;
    struct clst_env_lane lane;
    enum clst_status rc;
    struct clst_err err;
    uint64_t fail_chunk; /* the chunk that failed, for choosing which error to report */
};

/* Plaintext bytes of chunk k. */
static size_t
pt_len(const struct clst_env_par *job, uint64_t k)
{
    return k + 1 == job->chunk_count ? job->final_pt_size : CHUNK;
}

/* preadv/pwritev of exactly the iovecs' total, retrying short transfers (iov is consumed). */
static enum clst_status
rwv_all(bool write, int fd, struct iovec *iov, int count, uint64_t offset, struct clst_err *err)
{
    size_t total = 0;
    for (int i = 0; i < count; i++) {
        total += iov[i].iov_len;
    }
    while (total > 0) {
        ssize_t n = write ? pwritev(fd, iov, count, (off_t)offset)
                          : preadv(fd, iov, count, (off_t)offset);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return clst_err_set(err, CLST_E_IO, "%s error: %s", write ? "write" : "read",
                                strerror(errno));
        }
        if (n == 0) {
            if (write) {
                return clst_err_set(err, CLST_E_IO, "write error: no progress");
            }
            return clst_err_set(err, CLST_E_IO,
                                "the input ended early (at byte %llu): was it changed while "
                                "being read?",
                                (unsigned long long)offset);
        }
        offset += (uint64_t)n;
        total -= (size_t)n;
        size_t left = (size_t)n;
        while (count > 0 && left >= iov->iov_len) {
            left -= iov->iov_len;
            iov++;
            count--;
        }
        if (count > 0) {
            iov->iov_base = (uint8_t *)iov->iov_base + left;
            iov->iov_len -= left;
        }
    }
    return CLST_OK;
}

static enum clst_status
chunk_failed(struct par_lane *l, enum clst_status rc, uint64_t k)
{
    l->fail_chunk = k;
    if (rc == CLST_E_VERIFY) {
        return clst_err_set(&l->err, rc,
                            "chunk %llu failed authentication: the file was modified, reordered "
                            "or spliced",
                            (unsigned long long)k);
    }
    if (rc == CLST_E_LIMIT) {
        return clst_err_set(&l->err, rc, "the message reached 2^38 chunks");
    }
    return clst_err_set(&l->err, rc, "AES-256-GCM failed inside OpenSSL");
}

/* Memory to memory: every chunk straight from the input to the output. */
static enum clst_status
run_batch_mem(struct par_lane *l, uint64_t first, uint64_t last)
{
    const struct clst_env_par *job = l->sh->job;
    const uint8_t *in = job->in_mem + job->in_base + first * (job->encrypt ? CHUNK : CT_CHUNK);
    uint8_t *out = job->out_mem + job->out_base + first * (job->encrypt ? CT_CHUNK : CHUNK);
    uint64_t in_total = 0;

    for (uint64_t k = first; k <= last; k++) {
        size_t n = pt_len(job, k);
        enum clst_status rc;
        if (job->encrypt) {
            rc = clst_env_seal_chunk(&l->lane, k, in, n, out);
            in += n;
            out += n + TAG;
        } else {
            rc = clst_env_open_chunk(&l->lane, k, in, n + TAG, out);
            in += n + TAG;
            out += n;
        }
        if (rc != CLST_OK) {
            return chunk_failed(l, rc, k);
        }
        in_total += job->encrypt ? n : n + TAG;
    }
    atomic_fetch_add(&l->sh->done, (uint_fast64_t)in_total);
    return CLST_OK;
}

/* Memory: thread i takes every other batch of BATCH chunks. */
static void *
lane_main_mem(void *arg)
{
    struct par_lane *l = arg;
    const struct clst_env_par *job = l->sh->job;
    uint64_t batches = (job->chunk_count + BATCH - 1) / BATCH;

    l->rc = CLST_OK;
    for (uint64_t b = l->index; b < batches; b += job->threads) {
        if (atomic_load(&l->sh->stop)) {
            break;
        }
        uint64_t first = b * BATCH;
        uint64_t count = job->chunk_count - first < BATCH ? job->chunk_count - first : BATCH;
        l->rc = run_batch_mem(l, first, first + count - 1);
        if (l->rc != CLST_OK) {
            atomic_store(&l->sh->stop, true);
            break;
        }
        if (l->index == 0 && job->progress != NULL) {
            job->progress(job->progress_ctx, (uint64_t)atomic_load(&l->sh->done),
                          job->progress_total);
        }
    }
    return NULL;
}

/* Output offset of chunk k. */
static uint64_t
out_at(const struct par_shared *sh, uint64_t k)
{
    return sh->job->out_base + k * sh->out_unit;
}

/* The output range and chunks of unit u (0-based). */
static void
unit_bounds(const struct par_shared *sh, uint64_t u, struct par_unit *pu)
{
    const struct clst_env_par *job = sh->job;
    uint64_t lo = (sh->unit0 + u) * UNIT_BYTES, hi = lo + UNIT_BYTES;

    pu->lo = lo > job->out_base ? lo : job->out_base;
    pu->hi = hi < sh->out_end ? hi : sh->out_end;
    pu->c0 = (pu->lo - job->out_base) / sh->out_unit;
    /* The last unit also takes a final chunk with no output bytes (an empty final chunk when
     * decrypting), so that every chunk is opened. */
    pu->c1 = u + 1 == sh->units || pu->hi == pu->lo ? job->chunk_count - 1
                                                      : (pu->hi - 1 - job->out_base) / sh->out_unit;
    if (pu->c0 > pu->c1) {
        pu->c0 = pu->c1;
    }
}

/* Reads the unit's chunks into its buffer and seals or opens them in place. */
static enum clst_status
unit_fill(struct par_lane *l, struct par_unit *pu)
{
    const struct clst_env_par *job = l->sh->job;
    struct iovec iov[UNIT_CHUNKS];
    int count = (int)(pu->c1 - pu->c0 + 1);
    uint64_t in_unit = job->encrypt ? CHUNK : CT_CHUNK;
    uint64_t in_total = 0;
    enum clst_status rc;

    if (pu->c1 - pu->c0 >= UNIT_CHUNKS) {
        l->fail_chunk = pu->c0;
        return clst_err_set(&l->err, CLST_E_INTERNAL, "envelope: unit of %llu chunks",
                            (unsigned long long)(pu->c1 - pu->c0 + 1));
    }
    for (int i = 0; i < count; i++) {
        size_t n = pt_len(job, pu->c0 + (uint64_t)i);
        iov[i].iov_base = pu->buf + (size_t)i * CT_CHUNK;
        iov[i].iov_len = job->encrypt ? n : n + TAG;
        in_total += iov[i].iov_len;
    }
    /* Ask for the input a few MiB ahead: the units are read interleaved by two threads, which
     * looks like small reads to the kernel's readahead; this matters for files that are not in
     * the page cache (a no-op for those that are). */
    (void)posix_fadvise(job->in_fd, (off_t)(job->in_base + (pu->c0 + READAHEAD_CHUNKS) * in_unit),
                        (off_t)in_total, POSIX_FADV_WILLNEED);
    if (job->encrypt) {
        rc = rwv_all(false, job->in_fd, iov, count, job->in_base + pu->c0 * CHUNK, &l->err);
    } else {
        /* The ciphertext chunks are contiguous, as are the slots. */
        rc = clst_env_pread_all(job->in_fd, pu->buf, (size_t)in_total,
                                job->in_base + pu->c0 * CT_CHUNK, &l->err);
    }
    if (rc != CLST_OK) {
        l->fail_chunk = pu->c0;
        return rc;
    }
    for (int i = 0; i < count; i++) {
        uint64_t k = pu->c0 + (uint64_t)i;
        uint8_t *slot = pu->buf + (size_t)i * CT_CHUNK;
        size_t n = pt_len(job, k);
        rc = job->encrypt ? clst_env_seal_chunk(&l->lane, k, slot, n, slot)
                          : clst_env_open_chunk(&l->lane, k, slot, n + TAG, slot);
        if (rc != CLST_OK) {
            return chunk_failed(l, rc, k);
        }
    }
    return CLST_OK;
}

/* Writes the unit's output bytes [lo, hi) from its buffer; counts the input of the chunks whose
 * output starts in it (each chunk once) as done. */
static enum clst_status
unit_write(struct par_lane *l, const struct par_unit *pu)
{
    struct par_shared *sh = l->sh;
    const struct clst_env_par *job = sh->job;
    struct iovec iov[UNIT_CHUNKS];
    int count = 0;
    uint64_t in_done = 0;
    enum clst_status rc = CLST_OK;

    for (uint64_t k = pu->c0; k <= pu->c1; k++) {
        size_t n = pt_len(job, k);
        uint64_t start = out_at(sh, k);
        uint64_t end = start + (job->encrypt ? n + TAG : n);
        uint64_t a = start > pu->lo ? start : pu->lo, b = end < pu->hi ? end : pu->hi;
        if (start >= pu->lo || k == 0) {
            in_done += job->encrypt ? n : n + TAG;
        }
        if (a >= b) {
            continue;
        }
        uint8_t *p = pu->buf + (size_t)(k - pu->c0) * CT_CHUNK + (size_t)(a - start);
        /* Sealed chunks lie back to back in the buffer: one iovec for the whole unit. */
        if (job->encrypt && count > 0) {
            iov[count - 1].iov_len += (size_t)(b - a);
        } else {
            iov[count].iov_base = p;
            iov[count].iov_len = (size_t)(b - a);
            count++;
        }
    }
    if (count > 0) {
        rc = rwv_all(true, job->out_fd, iov, count, pu->lo, &l->err);
        if (rc != CLST_OK) {
            l->fail_chunk = pu->c0;
            return rc;
        }
        atomic_fetch_add(&sh->written, (uint_fast64_t)(pu->hi - pu->lo));
    }
    atomic_fetch_add(&sh->done, (uint_fast64_t)in_done);
    return CLST_OK;
}

/* File to file: each lane claims the next unit, reads and seals or opens it in its own buffer
 * and writes it at its offset. */
static void *
lane_main_fd(void *arg)
{
    struct par_lane *l = arg;
    struct par_shared *sh = l->sh;
    const struct clst_env_par *job = sh->job;
    struct par_unit pu;

    l->rc = CLST_OK;
    /* Wait for the buffers (the first lane allocates them while this one starts). */
    pthread_mutex_lock(&sh->gate);
    pthread_mutex_unlock(&sh->gate);
    if (atomic_load(&sh->stop)) {
        return NULL;
    }
    pu.buf = sh->bufs + (size_t)l->index * UNIT_BUF;
    for (;;) {
        uint64_t u = (uint64_t)atomic_fetch_add(&sh->next, 1);
        if (u >= sh->units || atomic_load(&sh->stop)) {
            break;
        }
        unit_bounds(sh, u, &pu);
        l->rc = unit_fill(l, &pu);
        if (l->rc == CLST_OK) {
            l->rc = unit_write(l, &pu);
        }
        if (l->rc != CLST_OK) {
            atomic_store(&sh->stop, true);
            break;
        }
        if (l->index == 0 && job->progress != NULL) {
            job->progress(job->progress_ctx, (uint64_t)atomic_load(&sh->done),
                          job->progress_total);
        }
    }
    return NULL;
}

static void
lane_main_first(struct par_lane *l)
{
    if (l->sh->job->in_mem != NULL) {
        (void)lane_main_mem(l);
    } else {
        (void)lane_main_fd(l);
    }
}

/* Lanes other than the first set up their AES-GCM context in their own thread, while the first
 * thread allocates the buffers. */
static void *
lane_main(void *arg)
{
    struct par_lane *l = arg;
    struct par_shared *sh = l->sh;

    if (l->index > 0 && clst_env_lane_init(&l->lane, sh->job->keys) != CLST_OK) {
        l->rc = clst_err_set(&l->err, CLST_E_INTERNAL, "cannot set up AES-256-GCM");
        l->fail_chunk = 0;
        /* The other lane carries on alone (and the run reports this failure). */
        return NULL;
    }
    return sh->job->in_mem != NULL ? lane_main_mem(arg) : lane_main_fd(arg);
}

/* File to file: the output geometry and the synchronization (buffers come later). */
static enum clst_status
fd_setup(struct par_shared *sh, struct clst_err *err)
{
    const struct clst_env_par *job = sh->job;
    uint64_t last = job->chunk_count - 1;

    sh->out_unit = job->encrypt ? CT_CHUNK : CHUNK;
    sh->out_end = out_at(sh, last) + (job->encrypt ? pt_len(job, last) + TAG : pt_len(job, last));
    sh->unit0 = job->out_base / UNIT_BYTES;
    sh->units = sh->out_end == job->out_base ? 1 : (sh->out_end - 1) / UNIT_BYTES - sh->unit0 + 1;
    atomic_init(&sh->next, 0);
    if (pthread_mutex_init(&sh->gate, NULL) != 0) {
        return clst_err_set(err, CLST_E_INTERNAL, "cannot create a mutex");
    }
    return CLST_OK;
}

/* File to file: one unit buffer per lane (called with sh->gate held, so the other lane waits
 * for them). */
static enum clst_status
fd_buffers(struct par_shared *sh, struct clst_err *err)
{
    sh->bufs_size = (size_t)sh->job->threads * UNIT_BUF;
    sh->bufs = bulk_alloc(sh->bufs_size, &sh->bufs_mapped);
    if (sh->bufs == NULL) {
        return clst_err_set(err, CLST_E_NOMEM, "out of memory");
    }
    return CLST_OK;
}

enum clst_status
clst_env_par_run(const struct clst_env_par *job, struct clst_err *err)
{
    enum clst_status rc = CLST_OK;
    struct par_shared sh;
    struct par_lane lanes[MAX_LANES];
    pthread_t threads[MAX_LANES];
    bool started[MAX_LANES] = {false, false};
    unsigned n = job->threads;
    bool fd = job->in_mem == NULL, sync_made = false;

    if (n < 1 || n > MAX_LANES || job->chunk_count == 0 ||
        (job->in_mem == NULL) != (job->out_mem == NULL)) {
        return clst_err_set(err, CLST_E_INVAL, "envelope: bad parallel job");
    }
    memset(&sh, 0, sizeof(sh));
    sh.job = job;
    atomic_init(&sh.stop, false);
    atomic_init(&sh.done, 0);
    atomic_init(&sh.written, 0);
    memset(lanes, 0, sizeof(lanes));
    for (unsigned i = 0; i < n; i++) {
        lanes[i].sh = &sh;
        lanes[i].index = i;
        lanes[i].fail_chunk = UINT64_MAX;
    }
    if (fd) {
        rc = fd_setup(&sh, err);
        if (rc != CLST_OK) {
            return rc;
        }
        sync_made = true;
        pthread_mutex_lock(&sh.gate);
    }
    /* Start the other thread first: its start-up overlaps this one's set-up. */
    for (unsigned i = 1; i < n; i++) {
        if (pthread_create(&threads[i], NULL, lane_main, &lanes[i]) != 0) {
            rc = clst_err_set(err, CLST_E_INTERNAL, "cannot start a worker thread");
            break;
        }
        started[i] = true;
    }
    if (rc == CLST_OK) {
        rc = clst_env_lane_init(&lanes[0].lane, job->keys);
        if (rc != CLST_OK) {
            clst_err_set(err, rc, "cannot set up AES-256-GCM");
        }
    }
    if (rc == CLST_OK && fd) {
        rc = fd_buffers(&sh, err);
    }
    if (rc != CLST_OK) {
        atomic_store(&sh.stop, true);
    }
    if (fd) {
        pthread_mutex_unlock(&sh.gate);
    }
    if (rc == CLST_OK) {
        lane_main_first(&lanes[0]);
    }
    for (unsigned i = 1; i < n; i++) {
        if (started[i]) {
            pthread_join(threads[i], NULL);
        }
    }
    if (rc != CLST_OK) {
        goto out;
    }
    /* Report the failure closest to the start of the file. */
    {
        struct par_lane *worst = NULL;
        for (unsigned i = 0; i < n; i++) {
            if (lanes[i].rc != CLST_OK &&
                (worst == NULL || lanes[i].fail_chunk < worst->fail_chunk)) {
                worst = &lanes[i];
            }
        }
        if (worst != NULL) {
            rc = worst->rc;
            if (err != NULL) {
                *err = worst->err;
            }
            goto out;
        }
    }
    if (job->progress != NULL) {
        job->progress(job->progress_ctx, job->progress_total, job->progress_total);
    }
out:
    if (job->written != NULL) {
        *job->written += (uint64_t)atomic_load(&sh.written);
    }
    for (unsigned i = 0; i < n; i++) {
        clst_env_lane_cleanup(&lanes[i].lane);
    }
    if (sync_made) {
        pthread_mutex_destroy(&sh.gate);
    }
    bulk_free(sh.bufs, sh.bufs_size, sh.bufs_mapped);
    return rc;
}

/* ---- opening a ciphertext for the parallel path -------------------------------------------- */

struct opened {
    size_t header_size;
    struct clst_env_keys keys;
    uint64_t chunk_count;
    size_t final_pt_size;
    uint64_t pt_size;
};

/* Opens the final chunk of the body described by o, in place in a buffer on the stack (wiped):
 * a locked allocation for it cost 140-190 us per call on this VM, 3% of a 16 MiB file. */
static enum clst_status
check_final(const struct clst_envelope_source *src, const struct opened *o, struct clst_err *err)
{
    enum clst_status rc;
    struct clst_env_lane lane;
    uint8_t buf[CT_CHUNK];
    size_t ct_size = o->final_pt_size + TAG;
    uint64_t k = o->chunk_count - 1;

    memset(&lane, 0, sizeof(lane));
    rc = src->read_at(src->ctx, o->header_size + PREFIX + k * CT_CHUNK, buf, ct_size);
    if (rc != CLST_OK) {
        clst_err_set(err, rc, "cannot read the final chunk");
        goto out;
    }
    rc = clst_env_lane_init(&lane, &o->keys);
    if (rc != CLST_OK) {
        clst_err_set(err, rc, "cannot set up AES-256-GCM");
        goto out;
    }
    rc = clst_env_open_chunk(&lane, k, buf, ct_size, buf);
    if (rc == CLST_E_VERIFY) {
        clst_err_set(err, rc,
                     "the final chunk (%llu) failed authentication: the file was truncated, "
                     "extended or modified",
                     (unsigned long long)k);
    } else if (rc != CLST_OK) {
        clst_err_set(err, rc, "AES-256-GCM failed inside OpenSSL");
    }
out:
    clst_env_lane_cleanup(&lane);
    clst_wipe(buf, ct_size);
    return rc;
}

/* Header, unwrap, geometry and commitment of the ciphertext in src (offset 0 = file start). */
static enum clst_status
open_ct(const struct clst_envelope_source *src, struct clst_envelope_provider *const *providers,
        size_t provider_count, struct opened *o, struct clst_err *err)
{
    enum clst_status rc;
    uint8_t *hbuf = NULL;
    struct clst_envelope_header *h = NULL;
    uint8_t ikm[CLST_ENVELOPE_KEY_SIZE];
    uint8_t ctx[CLST_SHA256_SIZE];
    uint8_t prefix[PREFIX];
    size_t first = src->size < CLST_ENVELOPE_FIXED_SIZE ? (size_t)src->size
                                                         : CLST_ENVELOPE_FIXED_SIZE;

    hbuf = malloc(CLST_ENVELOPE_HEADER_MAX_SIZE);
    h = malloc(sizeof(*h));
    if (hbuf == NULL || h == NULL) {
        rc = clst_err_set(err, CLST_E_NOMEM, "out of memory");
        goto out;
    }
    if (src->size == 0) {
        rc = clst_err_set(err, CLST_E_MALFORMED, "the input is empty, not a .clst file");
        goto out;
    }
    rc = src->read_at(src->ctx, 0, hbuf, first);
    if (rc != CLST_OK) {
        clst_err_set(err, rc, "cannot read the header");
        goto out;
    }
    rc = clst_envelope_header_peek_size(hbuf, first, &o->header_size, err);
    if (rc != CLST_OK) {
        goto out;
    }
    if (o->header_size > src->size) {
        rc = clst_err_set(err, CLST_E_MALFORMED,
                          "truncated inside the header (%llu of %zu bytes)",
                          (unsigned long long)src->size, o->header_size);
        goto out;
    }
    rc = src->read_at(src->ctx, 0, hbuf, o->header_size);
    if (rc != CLST_OK) {
        clst_err_set(err, rc, "cannot read the header");
        goto out;
    }
    rc = clst_envelope_header_parse(hbuf, o->header_size, h, err);
    if (rc == CLST_OK) {
        rc = clst_env_unwrap(providers, provider_count, h, ikm, err);
    }
    if (rc != CLST_OK) {
        goto out;
    }
    rc = clst_env_context(hbuf, o->header_size, ctx);
    if (rc != CLST_OK) {
        clst_err_set(err, rc, "cannot hash the header");
        goto out;
    }
    if (src->size - o->header_size < PREFIX) {
        rc = clst_err_set(err, CLST_E_MALFORMED,
                          "truncated: the body ends inside its 56-byte salt and commitment");
        goto out;
    }
    rc = src->read_at(src->ctx, o->header_size, prefix, PREFIX);
    if (rc != CLST_OK) {
        clst_err_set(err, rc, "cannot read the body");
        goto out;
    }
    rc = clst_env_derive(ikm, sizeof(ikm), prefix, ctx, sizeof(ctx), &o->keys, err);
    if (rc != CLST_OK) {
        goto out;
    }
    if (!clst_ct_equal(o->keys.commitment, prefix + CLST_ENVELOPE_SALT_SIZE,
                       CLST_ENVELOPE_COMMITMENT_SIZE)) {
        rc = clst_err_set(err, CLST_E_VERIFY,
                          "key commitment mismatch: wrong key, or the header, salt or commitment "
                          "was modified");
        goto out;
    }
    rc = clst_env_geometry(src->size - o->header_size, &o->chunk_count, &o->final_pt_size,
                           &o->pt_size, err);
    if (rc != CLST_OK) {
        goto out;
    }
    /* Authenticate the length before anything is written: the final chunk must open at its
     * index (a truncated or extended file fails here). */
    rc = check_final(src, o, err);
out:
    if (rc != CLST_OK) {
        clst_wipe(&o->keys, sizeof(o->keys));
    }
    clst_wipe(ikm, sizeof(ikm));
    free(hbuf);
    free(h);
    return rc;
}

/* ---- memory ------------------------------------------------------------------------------- */

enum clst_status
clst_envelope_ciphertext_size(size_t header_size, uint64_t pt_size, uint64_t *out)
{
    uint64_t body;
    enum clst_status rc;

    if (out == NULL) {
        return CLST_E_INVAL;
    }
    rc = clst_envelope_body_size(pt_size, &body);
    if (rc != CLST_OK) {
        return rc;
    }
    if (body > UINT64_MAX - header_size) {
        return CLST_E_LIMIT;
    }
    *out = header_size + body;
    return CLST_OK;
}

/* Makes a header, draws a salt and derives the body keys: the common start of encryption. */
static enum clst_status
start_encrypt(struct clst_envelope_provider *provider, const struct clst_envelope_meta *meta,
              size_t meta_count, uint8_t *header, size_t *header_size, struct clst_env_keys *keys,
              struct clst_err *err)
{
    enum clst_status rc;
    uint8_t ikm[CLST_ENVELOPE_KEY_SIZE];
    uint8_t ctx[CLST_SHA256_SIZE];
    uint8_t salt[CLST_ENVELOPE_SALT_SIZE];

    rc = clst_env_make_header(provider, meta, meta_count, header, CLST_ENVELOPE_HEADER_MAX_SIZE,
                              header_size, ikm, err);
    if (rc != CLST_OK) {
        return rc;
    }
    rc = clst_env_context(header, *header_size, ctx);
    if (rc == CLST_OK) {
        rc = clst_random(salt, sizeof(salt));
    }
    if (rc != CLST_OK) {
        clst_err_set(err, rc, "cannot hash the header or draw a salt");
    } else {
        rc = clst_env_derive(ikm, sizeof(ikm), salt, ctx, sizeof(ctx), keys, err);
    }
    clst_wipe(ikm, sizeof(ikm));
    return rc;
}

static unsigned
clamp_threads(unsigned threads)
{
    return threads >= 2 ? 2 : 1;
}

enum clst_status
clst_envelope_encrypt_mem(const uint8_t *in, size_t in_size, uint8_t *out, size_t out_cap,
                          size_t *out_size, struct clst_envelope_provider *provider,
                          unsigned threads, struct clst_err *err)
{
    enum clst_status rc;
    struct clst_env_keys keys;
    struct clst_env_par job;
    uint8_t *header = NULL;
    size_t hsize = 0;
    uint64_t total;

    if ((in == NULL && in_size > 0) || out == NULL || out_size == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "envelope: missing argument");
    }
    header = malloc(CLST_ENVELOPE_HEADER_MAX_SIZE);
    if (header == NULL) {
        return clst_err_set(err, CLST_E_NOMEM, "out of memory");
    }
    rc = start_encrypt(provider, NULL, 0, header, &hsize, &keys, err);
    if (rc != CLST_OK) {
        goto out;
    }
    rc = clst_envelope_ciphertext_size(hsize, in_size, &total);
    if (rc != CLST_OK || total > out_cap) {
        rc = clst_err_set(err, CLST_E_LIMIT, "envelope: output buffer of %zu bytes is too small",
                          out_cap);
        goto out;
    }
    memcpy(out, header, hsize);
    memcpy(out + hsize, keys.salt, CLST_ENVELOPE_SALT_SIZE);
    memcpy(out + hsize + CLST_ENVELOPE_SALT_SIZE, keys.commitment, CLST_ENVELOPE_COMMITMENT_SIZE);
    memset(&job, 0, sizeof(job));
    job.encrypt = true;
    job.keys = &keys;
    job.chunk_count = in_size / CHUNK + 1;
    job.final_pt_size = in_size % CHUNK;
    job.in_base = 0;
    job.out_base = hsize + PREFIX;
    job.in_fd = job.out_fd = -1;
    job.in_mem = in;
    job.out_mem = out;
    job.threads = clamp_threads(threads);
    rc = clst_env_par_run(&job, err);
    if (rc == CLST_OK) {
        *out_size = (size_t)total;
    }
out:
    clst_wipe(&keys, sizeof(keys));
    free(header);
    return rc;
}

enum clst_status
clst_envelope_decrypt_mem(const uint8_t *in, size_t in_size, uint8_t *out, size_t out_cap,
                          size_t *out_size, struct clst_envelope_provider *const *providers,
                          size_t provider_count, unsigned threads, struct clst_err *err)
{
    enum clst_status rc;
    struct clst_envelope_source src;
    struct opened o;
    struct clst_env_par job;
    uint8_t dummy[1];

    if ((in == NULL && in_size > 0) || (out == NULL && out_cap > 0) || out_size == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "envelope: missing argument");
    }
    memset(&o, 0, sizeof(o));
    clst_envelope_source_mem(in, in_size, &src);
    rc = open_ct(&src, providers, provider_count, &o, err);
    if (rc != CLST_OK) {
        return rc;
    }
    if (o.pt_size > out_cap || (out == NULL && o.pt_size > 0)) {
        rc = clst_err_set(err, CLST_E_LIMIT, "envelope: output buffer of %zu bytes is too small",
                          out_cap);
        goto out;
    }
    memset(&job, 0, sizeof(job));
    job.encrypt = false;
    job.keys = &o.keys;
    job.chunk_count = o.chunk_count;
    job.final_pt_size = o.final_pt_size;
    job.in_base = o.header_size + PREFIX;
    job.out_base = 0;
    job.in_fd = job.out_fd = -1;
    job.in_mem = in;
    /* An empty plaintext still has its final chunk to authenticate: give it somewhere to go. */
    job.out_mem = out != NULL ? out : dummy;
    job.threads = clamp_threads(threads);
    rc = clst_env_par_run(&job, err);
    if (rc != CLST_OK) {
        if (out != NULL && o.pt_size > 0) {
            clst_wipe(out, (size_t)o.pt_size);
        }
        goto out;
    }
    *out_size = (size_t)o.pt_size;
out:
    clst_wipe(&o.keys, sizeof(o.keys));
    return rc;
}

/* ---- file descriptors --------------------------------------------------------------------- */

struct fd_src {
    int fd;
    uint64_t base;
};

static enum clst_status
fd_src_read(void *ctx, uint64_t offset, uint8_t *buf, size_t size)
{
    const struct fd_src *s = ctx;
    return clst_env_pread_all(s->fd, buf, size, s->base + offset, NULL);
}

/* After the parallel path: the output ends exactly at `end` (an output file that was longer is
 * cut, so no stale bytes follow), and the descriptor is positioned there. */
static enum clst_status
finish_output(int fd, uint64_t end, struct clst_err *err)
{
    struct stat st;
    if (fstat(fd, &st) == 0 && (uint64_t)st.st_size > end && ftruncate(fd, (off_t)end) != 0) {
        return clst_err_set(err, CLST_E_IO, "cannot truncate the output: %s", strerror(errno));
    }
    if (lseek(fd, (off_t)end, SEEK_SET) < 0) {
        return clst_err_set(err, CLST_E_IO, "cannot position the output: %s", strerror(errno));
    }
    return CLST_OK;
}

static bool
want_parallel(const struct clst_envelope_fd_opts *opts, const struct stat *in,
              const struct stat *out, int out_fd, uint64_t size)
{
    unsigned threads = opts != NULL ? opts->threads : 0;
    if (threads == 1 || !S_ISREG(in->st_mode) || !S_ISREG(out->st_mode)) {
        return false;
    }
    /* pwrite on an O_APPEND descriptor appends (Linux): stream instead. */
    if ((fcntl(out_fd, F_GETFL) & O_APPEND) != 0) {
        return false;
    }
    return threads >= 2 || size >= CLST_ENVELOPE_PARALLEL_MIN_SIZE;
}

static uint64_t
position(int fd)
{
    off_t p = lseek(fd, 0, SEEK_CUR);
    return p < 0 ? 0 : (uint64_t)p;
}

/* What both directions find out first: the two ends' stat, where the input starts and how many
 * bytes of it there are (0 when it is not a regular file, whose size is not known up front). */
static enum clst_status
probe(int in_fd, int out_fd, struct stat *ist, struct stat *ost, uint64_t *in_start, uint64_t *size,
      struct clst_err *err)
{
    if (fstat(in_fd, ist) != 0 || fstat(out_fd, ost) != 0) {
        return clst_err_set(err, CLST_E_IO, "cannot stat the input or output: %s", strerror(errno));
    }
    *in_start = S_ISREG(ist->st_mode) ? position(in_fd) : 0;
    *size = S_ISREG(ist->st_mode) && (uint64_t)ist->st_size > *in_start
                ? (uint64_t)ist->st_size - *in_start
                : 0;
    return CLST_OK;
}

/* The parallel job's fields both directions set alike; the caller adds the direction, the keys,
 * the chunk layout and the bases. */
static void
job_init(struct clst_env_par *job, int in_fd, int out_fd, uint64_t size,
         const struct clst_envelope_fd_opts *opts)
{
    memset(job, 0, sizeof(*job));
    job->in_fd = in_fd;
    job->out_fd = out_fd;
    job->threads = 2;
    job->progress = opts->progress;
    job->progress_ctx = opts->progress_ctx;
    job->progress_total = size;
    job->written = opts->written;
}

/*
 * The streaming path of both directions: reads the input a buffer at a time, puts it through the
 * encryptor `e` or the decryptor `d` (exactly one is set), writes what comes out and reports
 * progress, then finishes. The buffer that holds plaintext comes from secret memory: the input
 * when encrypting, the output when decrypting.
 */
static enum clst_status
pump(int in_fd, int out_fd, uint64_t total, struct clst_envelope_enc *e,
     struct clst_envelope_dec *d, size_t out_cap, const struct clst_envelope_fd_opts *opts,
     struct clst_err *err)
{
    enum clst_status rc;
    bool encrypt = e != NULL;
    uint8_t *inbuf = NULL, *outbuf = NULL;
    size_t n = 0;
    uint64_t done = 0;

    inbuf = buf_alloc(STREAM_BUF, encrypt);
    outbuf = buf_alloc(out_cap, !encrypt);
    if (inbuf == NULL || outbuf == NULL) {
        rc = clst_err_set(err, CLST_E_NOMEM, "out of memory");
        goto out;
    }
    for (;;) {
        ssize_t got = read(in_fd, inbuf, STREAM_BUF);
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got < 0) {
            rc = clst_err_set(err, CLST_E_IO, "read error: %s", strerror(errno));
            goto out;
        }
        if (got == 0) {
            break;
        }
        rc = encrypt ? clst_envelope_enc_update(e, inbuf, (size_t)got, outbuf, out_cap, &n, err)
                     : clst_envelope_dec_update(d, inbuf, (size_t)got, outbuf, out_cap, &n, err);
        if (rc == CLST_OK) {
            rc = write_counted(out_fd, outbuf, n, opts, err);
        }
        if (rc != CLST_OK) {
            goto out;
        }
        done += (uint64_t)got;
        if (opts != NULL && opts->progress != NULL) {
            opts->progress(opts->progress_ctx, done, total);
        }
    }
    rc = encrypt ? clst_envelope_enc_final(e, outbuf, out_cap, &n, err)
                 : clst_envelope_dec_final(d, outbuf, out_cap, &n, err);
    if (rc == CLST_OK) {
        rc = write_counted(out_fd, outbuf, n, opts, err);
    }
out:
    buf_free(inbuf, STREAM_BUF, encrypt);
    buf_free(outbuf, out_cap, !encrypt);
    return rc;
}

static enum clst_status
encrypt_stream(int in_fd, int out_fd, uint64_t total, struct clst_envelope_provider *provider,
               const struct clst_envelope_fd_opts *opts, struct clst_err *err)
{
    enum clst_status rc;
    struct clst_envelope_enc *e = NULL;

    rc = clst_envelope_enc_new(provider, opts != NULL ? opts->meta : NULL,
                               opts != NULL ? opts->meta_count : 0, &e, err);
    if (rc != CLST_OK) {
        return rc;
    }
    rc = pump(in_fd, out_fd, total, e, NULL,
              CLST_ENVELOPE_HEADER_MAX_SIZE + PREFIX + (STREAM_BUF / CHUNK + 2) * CT_CHUNK, opts,
              err);
    clst_envelope_enc_free(e);
    return rc;
}

enum clst_status
clst_envelope_encrypt_fd(int in_fd, int out_fd, struct clst_envelope_provider *provider,
                         const struct clst_envelope_fd_opts *opts, struct clst_err *err)
{
    enum clst_status rc;
    struct stat ist, ost, after;
    struct clst_env_keys keys;
    struct clst_env_par job;
    uint8_t *header = NULL;
    size_t hsize = 0;
    uint64_t in_start, out_start, size, total;

    static const struct clst_envelope_fd_opts defaults = {0, NULL, NULL, NULL, 0, NULL};

    if (in_fd < 0 || out_fd < 0 || provider == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "envelope: missing argument");
    }
    if (opts == NULL) {
        opts = &defaults;
    }
    rc = probe(in_fd, out_fd, &ist, &ost, &in_start, &size, err);
    if (rc != CLST_OK) {
        return rc;
    }
    if (!want_parallel(opts, &ist, &ost, out_fd, size)) {
        return encrypt_stream(in_fd, out_fd, size, provider, opts, err);
    }

    memset(&keys, 0, sizeof(keys));
    /* The header with room for the salt and commitment after it: written in one go. */
    header = malloc(CLST_ENVELOPE_HEADER_MAX_SIZE + PREFIX);
    if (header == NULL) {
        return clst_err_set(err, CLST_E_NOMEM, "out of memory");
    }
    rc = start_encrypt(provider, opts->meta, opts->meta_count, header, &hsize, &keys, err);
    if (rc != CLST_OK) {
        goto out;
    }
    rc = clst_envelope_ciphertext_size(hsize, size, &total);
    if (rc != CLST_OK) {
        clst_err_set(err, rc, "the input is too large for the format (2^38 chunks)");
        goto out;
    }
    out_start = position(out_fd);
    memcpy(header + hsize, keys.salt, CLST_ENVELOPE_SALT_SIZE);
    memcpy(header + hsize + CLST_ENVELOPE_SALT_SIZE, keys.commitment,
           CLST_ENVELOPE_COMMITMENT_SIZE);
    rc = clst_env_pwrite_all(out_fd, header, hsize + PREFIX, out_start, err);
    if (rc != CLST_OK) {
        goto out;
    }
    if (opts->written != NULL) {
        *opts->written += hsize + PREFIX;
    }
    job_init(&job, in_fd, out_fd, size, opts);
    job.encrypt = true;
    job.keys = &keys;
    job.chunk_count = size / CHUNK + 1;
    job.final_pt_size = (size_t)(size % CHUNK);
    job.in_base = in_start;
    job.out_base = out_start + hsize + PREFIX;
    rc = clst_env_par_run(&job, err);
    if (rc != CLST_OK) {
        goto out;
    }
    /* The size was fixed up front: a file that grew or shrank meanwhile is an error. */
    if (fstat(in_fd, &after) != 0 || after.st_size != ist.st_size) {
        rc = clst_err_set(err, CLST_E_IO,
                          "the input changed size while it was being encrypted; try again when "
                          "nothing is writing to it");
        goto out;
    }
    rc = finish_output(out_fd, out_start + total, err);
    (void)lseek(in_fd, (off_t)(in_start + size), SEEK_SET);
out:
    clst_wipe(&keys, sizeof(keys));
    free(header);
    return rc;
}

static enum clst_status
decrypt_stream(int in_fd, int out_fd, uint64_t total,
               struct clst_envelope_provider *const *providers, size_t provider_count,
               const struct clst_envelope_fd_opts *opts, struct clst_err *err)
{
    enum clst_status rc;
    struct clst_envelope_dec *d = NULL;

    rc = clst_envelope_dec_new(providers, provider_count, &d);
    if (rc != CLST_OK) {
        return clst_err_set(err, rc, "out of memory");
    }
    rc = pump(in_fd, out_fd, total, NULL, d, STREAM_BUF + CT_CHUNK, opts, err);
    clst_envelope_dec_free(d);
    return rc;
}

enum clst_status
clst_envelope_decrypt_fd(int in_fd, int out_fd, struct clst_envelope_provider *const *providers,
                         size_t provider_count, const struct clst_envelope_fd_opts *opts,
                         struct clst_err *err)
{
    enum clst_status rc;
    struct stat ist, ost;
    struct clst_envelope_source src;
    struct fd_src fs;
    struct opened o;
    struct clst_env_par job;
    uint64_t in_start, size, out_start;

    static const struct clst_envelope_fd_opts defaults = {0, NULL, NULL, NULL, 0, NULL};

    if (in_fd < 0 || out_fd < 0) {
        return clst_err_set(err, CLST_E_INVAL, "envelope: missing argument");
    }
    if (opts == NULL) {
        opts = &defaults;
    }
    rc = probe(in_fd, out_fd, &ist, &ost, &in_start, &size, err);
    if (rc != CLST_OK) {
        return rc;
    }
    if (!want_parallel(opts, &ist, &ost, out_fd, size)) {
        return decrypt_stream(in_fd, out_fd, size, providers, provider_count, opts, err);
    }
    memset(&o, 0, sizeof(o));
    fs.fd = in_fd;
    fs.base = in_start;
    src.read_at = fd_src_read;
    src.ctx = &fs;
    src.size = size;
    rc = open_ct(&src, providers, provider_count, &o, err);
    if (rc != CLST_OK) {
        return rc;
    }
    out_start = position(out_fd);
    job_init(&job, in_fd, out_fd, size, opts);
    job.encrypt = false;
    job.keys = &o.keys;
    job.chunk_count = o.chunk_count;
    job.final_pt_size = o.final_pt_size;
    job.in_base = in_start + o.header_size + PREFIX;
    job.out_base = out_start;
    rc = clst_env_par_run(&job, err);
    if (rc == CLST_OK) {
        rc = finish_output(out_fd, out_start + o.pt_size, err);
        (void)lseek(in_fd, (off_t)(in_start + size), SEEK_SET);
    }
    clst_wipe(&o.keys, sizeof(o.keys));
    return rc;
}
